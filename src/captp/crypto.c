/*
 * The crypto module: libsodium behind the small interface of crypto.h.
 * This is the only file of the project that includes <sodium.h>.
 */
#include <sodium.h>

#include "../util/util.h"
#include "crypto.h"

/* Syrup encoding of a public key form up to its 32 key bytes, and what
 * follows them.  Lists are not reordered by canonicalisation, so these
 * are the exact bytes the writer produces (checked by the tests). */
static const char pubkey_head[] =
    "[10'public-key[3'ecc[5'curve7'Ed25519][5'flags5'eddsa][1'q32:";
static const char pubkey_tail[] = "]]]";

#define PUBKEY_HEAD_LEN (sizeof(pubkey_head) - 1)
#define PUBKEY_TAIL_LEN (sizeof(pubkey_tail) - 1)
#define PUBKEY_ENC_LEN (PUBKEY_HEAD_LEN + OCAPN__PK_LEN + PUBKEY_TAIL_LEN)

static const char session_prefix[] = "prot0";
#define SESSION_PREFIX_LEN (sizeof(session_prefix) - 1)

int
ocapn__crypto_init(void)
{
	/* sodium_init() is thread-safe and returns 1 once already done. */
	return sodium_init() < 0 ? OCAPN_E_CRYPTO : OCAPN_OK;
}

int
ocapn__keypair_generate(ocapn__keypair *kp)
{
	if (ocapn__crypto_init())
		return OCAPN_E_CRYPTO;
	if (crypto_sign_keypair(kp->pk, kp->sk) != 0)
		return OCAPN_E_CRYPTO;
	return OCAPN_OK;
}

int
ocapn__keypair_from_seed(ocapn__keypair *kp, const uint8_t seed[32])
{
	if (ocapn__crypto_init())
		return OCAPN_E_CRYPTO;
	if (crypto_sign_seed_keypair(kp->pk, kp->sk, seed) != 0)
		return OCAPN_E_CRYPTO;
	return OCAPN_OK;
}

void
ocapn__keypair_wipe(ocapn__keypair *kp)
{
	sodium_memzero(kp->sk, sizeof(kp->sk));
}

int
ocapn__sign(const ocapn__keypair *kp, const uint8_t *msg, size_t len,
    uint8_t sig[OCAPN__SIG_LEN])
{
	if (ocapn__crypto_init())
		return OCAPN_E_CRYPTO;
	if (crypto_sign_detached(sig, NULL, msg, (unsigned long long)len,
		kp->sk) != 0)
		return OCAPN_E_CRYPTO;
	return OCAPN_OK;
}

int
ocapn__verify(const uint8_t pk[OCAPN__PK_LEN], const uint8_t *msg,
    size_t len, const uint8_t sig[OCAPN__SIG_LEN])
{
	if (ocapn__crypto_init())
		return OCAPN_E_CRYPTO;
	if (crypto_sign_verify_detached(sig, msg, (unsigned long long)len,
		pk) != 0)
		return OCAPN_E_SIGNATURE;
	return OCAPN_OK;
}

void
ocapn__sha256(const uint8_t *msg, size_t len, uint8_t out[OCAPN__HASH_LEN])
{
	/* Pure computation: needs no sodium_init(). */
	crypto_hash_sha256(out, msg, (unsigned long long)len);
}

void
ocapn__random(uint8_t *out, size_t len)
{
	/* randombytes_buf() cannot fail once initialised; sodium_init() can
	 * only fail if the system has no entropy source, in which case
	 * libsodium itself aborts on the first request. */
	(void)ocapn__crypto_init();
	randombytes_buf(out, len);
}

bool
ocapn__ct_equal(const uint8_t *a, const uint8_t *b, size_t len)
{
	return sodium_memcmp(a, b, len) == 0;
}

void
ocapn__wipe(void *p, size_t len)
{
	sodium_memzero(p, len);
}

/* ['TAG BYTES] with BYTES of exactly `len` bytes. */
static int
write_tagged_bytes(ocapn_syrup_writer *w, const char *tag,
    const uint8_t *p, size_t len)
{
	ocapn_syrup_write_list_begin(w);
	ocapn_syrup_write_symbol(w, tag, strlen(tag));
	ocapn_syrup_write_bytes(w, p, len);
	return ocapn_syrup_write_list_end(w);
}

/* ['TAG 'SYM] */
static int
write_tagged_symbol(ocapn_syrup_writer *w, const char *tag, const char *sym)
{
	ocapn_syrup_write_list_begin(w);
	ocapn_syrup_write_symbol(w, tag, strlen(tag));
	ocapn_syrup_write_symbol(w, sym, strlen(sym));
	return ocapn_syrup_write_list_end(w);
}

int
ocapn__write_pubkey(ocapn_syrup_writer *w, const uint8_t pk[OCAPN__PK_LEN])
{
	ocapn_syrup_write_list_begin(w);
	ocapn_syrup_write_symbol(w, "public-key", 10);
	ocapn_syrup_write_list_begin(w);
	ocapn_syrup_write_symbol(w, "ecc", 3);
	write_tagged_symbol(w, "curve", "Ed25519");
	write_tagged_symbol(w, "flags", "eddsa");
	write_tagged_bytes(w, "q", pk, OCAPN__PK_LEN);
	ocapn_syrup_write_list_end(w);
	return ocapn_syrup_write_list_end(w);
}

int
ocapn__write_sigval(ocapn_syrup_writer *w, const uint8_t sig[OCAPN__SIG_LEN])
{
	ocapn_syrup_write_list_begin(w);
	ocapn_syrup_write_symbol(w, "sig-val", 7);
	ocapn_syrup_write_list_begin(w);
	ocapn_syrup_write_symbol(w, "eddsa", 5);
	write_tagged_bytes(w, "r", sig, 32);
	write_tagged_bytes(w, "s", sig + 32, 32);
	ocapn_syrup_write_list_end(w);
	return ocapn_syrup_write_list_end(w);
}

static int
reject(const char **why, const char *reason)
{
	if (why)
		*why = reason;
	return OCAPN_E_PROTOCOL;
}

static bool
is_list(const ocapn_value *v, uint32_t n)
{
	return v->kind == OCAPN_LIST && v->len == n;
}

/* Is `v` the list ['TAG 'SYM]? */
static bool
is_tagged_symbol(const ocapn_value *v, const char *tag, const char *sym)
{
	return is_list(v, 2) && ocapn_value_is_symbol(&v->u.items[0], tag) &&
	    ocapn_value_is_symbol(&v->u.items[1], sym);
}

/*
 * Check that `v` is ['TAG <len bytes>] and copy the bytes to out.
 * Returns NULL on success or the reason.
 */
static const char *
get_tagged_bytes(const ocapn_value *v, const char *tag, uint8_t *out,
    size_t len, const char *bad_shape, const char *bad_len)
{
	if (!is_list(v, 2) || !ocapn_value_is_symbol(&v->u.items[0], tag))
		return bad_shape;
	const ocapn_value *b = &v->u.items[1];
	if (b->kind != OCAPN_BYTES)
		return bad_shape;
	if (b->len != len)
		return bad_len;
	memcpy(out, b->u.p, len);
	return NULL;
}

int
ocapn__parse_pubkey(const ocapn_value *v, uint8_t pk[OCAPN__PK_LEN],
    const char **why)
{
	if (!is_list(v, 2))
		return reject(why, "public key is not a 2-item list");
	if (!ocapn_value_is_symbol(&v->u.items[0], "public-key"))
		return reject(why,
		    "public key does not start with 'public-key");
	const ocapn_value *ecc = &v->u.items[1];
	if (!is_list(ecc, 4) || !ocapn_value_is_symbol(&ecc->u.items[0], "ecc"))
		return reject(why,
		    "public key body is not ['ecc CURVE FLAGS Q]");
	if (!is_tagged_symbol(&ecc->u.items[1], "curve", "Ed25519"))
		return reject(why, "public key curve is not ['curve 'Ed25519]");
	if (!is_tagged_symbol(&ecc->u.items[2], "flags", "eddsa"))
		return reject(why, "public key flags are not ['flags 'eddsa]");
	const char *r = get_tagged_bytes(&ecc->u.items[3], "q", pk,
	    OCAPN__PK_LEN, "public key point is not ['q BYTES]",
	    "public key point is not 32 bytes");
	return r ? reject(why, r) : OCAPN_OK;
}

int
ocapn__parse_sigval(const ocapn_value *v, uint8_t sig[OCAPN__SIG_LEN],
    const char **why)
{
	if (!is_list(v, 2))
		return reject(why, "signature is not a 2-item list");
	if (!ocapn_value_is_symbol(&v->u.items[0], "sig-val"))
		return reject(why, "signature does not start with 'sig-val");
	const ocapn_value *e = &v->u.items[1];
	if (!is_list(e, 3) || !ocapn_value_is_symbol(&e->u.items[0], "eddsa"))
		return reject(why, "signature body is not ['eddsa R S]");
	uint8_t tmp[OCAPN__SIG_LEN];
	const char *r = get_tagged_bytes(&e->u.items[1], "r", tmp, 32,
	    "signature r is not ['r BYTES]", "signature r is not 32 bytes");
	if (!r)
		r = get_tagged_bytes(&e->u.items[2], "s", tmp + 32, 32,
		    "signature s is not ['s BYTES]",
		    "signature s is not 32 bytes");
	if (r)
		return reject(why, r);
	memcpy(sig, tmp, OCAPN__SIG_LEN);
	return OCAPN_OK;
}

void
ocapn__side_id(const uint8_t pk[OCAPN__PK_LEN], uint8_t out[OCAPN__HASH_LEN])
{
	uint8_t enc[PUBKEY_ENC_LEN];
	memcpy(enc, pubkey_head, PUBKEY_HEAD_LEN);
	memcpy(enc + PUBKEY_HEAD_LEN, pk, OCAPN__PK_LEN);
	memcpy(enc + PUBKEY_HEAD_LEN + OCAPN__PK_LEN, pubkey_tail,
	    PUBKEY_TAIL_LEN);
	uint8_t h[OCAPN__HASH_LEN];
	ocapn__sha256(enc, sizeof(enc), h);
	ocapn__sha256(h, sizeof(h), out);
}

void
ocapn__session_id(const uint8_t a[OCAPN__HASH_LEN],
    const uint8_t b[OCAPN__HASH_LEN], uint8_t out[OCAPN__HASH_LEN])
{
	uint8_t buf[SESSION_PREFIX_LEN + 2 * OCAPN__HASH_LEN];
	bool a_first = memcmp(a, b, OCAPN__HASH_LEN) <= 0;
	memcpy(buf, session_prefix, SESSION_PREFIX_LEN);
	memcpy(buf + SESSION_PREFIX_LEN, a_first ? a : b, OCAPN__HASH_LEN);
	memcpy(buf + SESSION_PREFIX_LEN + OCAPN__HASH_LEN, a_first ? b : a,
	    OCAPN__HASH_LEN);
	uint8_t h[OCAPN__HASH_LEN];
	ocapn__sha256(buf, sizeof(buf), h);
	ocapn__sha256(h, sizeof(h), out);
}

/* Canonical encoding of `v` into the writer's own buffer. */
static int
encode_value(ocapn_syrup_writer *w, const ocapn_value *v,
    const uint8_t **data, size_t *len)
{
	ocapn_syrup_writer_reset(w);
	ocapn_syrup_write_value(w, v);
	int rc = ocapn_syrup_writer_finish(w, data, len);
	if (rc == OCAPN_E_NOMEM)
		return rc;
	return rc ? OCAPN_E_INVAL : OCAPN_OK;
}

int
ocapn__sign_value(const ocapn__keypair *kp, ocapn_syrup_writer *w,
    const ocapn_value *v, uint8_t sig[OCAPN__SIG_LEN])
{
	const uint8_t *data;
	size_t len;
	int rc = encode_value(w, v, &data, &len);
	if (rc)
		return rc;
	return ocapn__sign(kp, data, len, sig);
}

int
ocapn__verify_value(const uint8_t pk[OCAPN__PK_LEN], ocapn_syrup_writer *w,
    const ocapn_value *v, const uint8_t sig[OCAPN__SIG_LEN])
{
	const uint8_t *data;
	size_t len;
	int rc = encode_value(w, v, &data, &len);
	if (rc)
		return rc;
	return ocapn__verify(pk, data, len, sig);
}
