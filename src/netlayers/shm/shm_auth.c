/*
 * Designator authentication of the shm netlayer (see shm_auth.h).
 *
 * Messages have one fixed canonical Syrup encoding each (keys, nonces and
 * signatures have fixed lengths), so a message is accepted only if it is
 * byte for byte that encoding with some key, nonce or signature in the
 * fixed places: no decoder runs on unauthenticated input.  Each message is
 * copied into private memory once, after its length was checked, and only
 * the copy is looked at.
 */
#include <string.h>

#include "shm_auth.h"

static const char hello_head[] = "<15'ocapn-shm:hello32:";
static const char proof_head[] = "<15'ocapn-shm:proof64:";
#define HEAD_LEN 22 /* both heads */

static int
fail(struct ocapn__shm_auth *a, int err, const char *reason)
{
	a->state = OCAPN__SHM_AUTH_FAILED;
	a->err = err;
	a->reason = reason;
	return err;
}

void
ocapn__shm_auth_init(struct ocapn__shm_auth *a, const ocapn__keypair *kp,
    bool initiator, const uint8_t *expected, const uint8_t *nonce)
{
	memset(a, 0, sizeof(*a));
	a->kp = kp;
	a->initiator = initiator;
	if (initiator && expected) {
		a->check_key = true;
		memcpy(a->expected, expected, OCAPN__PK_LEN);
	}
	if (nonce)
		memcpy(a->nonce, nonce, OCAPN__SHM_NONCE_LEN);
	else
		ocapn__random(a->nonce, OCAPN__SHM_NONCE_LEN);
	a->state = OCAPN__SHM_AUTH_HELLO;
	a->reason = "";
}

void
ocapn__shm_auth_hello(const struct ocapn__shm_auth *a, uint8_t *out)
{
	memcpy(out, hello_head, HEAD_LEN);
	memcpy(out + HEAD_LEN, a->kp->pk, OCAPN__PK_LEN);
	memcpy(out + HEAD_LEN + 32, "32:", 3);
	memcpy(out + HEAD_LEN + 35, a->nonce, OCAPN__SHM_NONCE_LEN);
	out[OCAPN__SHM_HELLO_LEN - 1] = '>';
}

static uint8_t *
put_bytes32(uint8_t *p, const uint8_t *b)
{
	memcpy(p, "32:", 3);
	memcpy(p + 3, b, 32);
	return p + 35;
}

size_t
ocapn__shm_auth_signed_bytes(bool initiator_signs, const uint8_t *ikey,
    const uint8_t *akey, const uint8_t *inonce, const uint8_t *anonce,
    uint8_t *out)
{
	static const char label[] = "<16'ocapn-shm:auth-1";
	static const char ri[] = "9'initiator";
	static const char ra[] = "8'acceptor";
	uint8_t *p = out;
	memcpy(p, label, sizeof(label) - 1);
	p += sizeof(label) - 1;
	if (initiator_signs) {
		memcpy(p, ri, sizeof(ri) - 1);
		p += sizeof(ri) - 1;
	} else {
		memcpy(p, ra, sizeof(ra) - 1);
		p += sizeof(ra) - 1;
	}
	p = put_bytes32(p, ikey);
	p = put_bytes32(p, akey);
	p = put_bytes32(p, inonce);
	p = put_bytes32(p, anonce);
	*p++ = '>';
	return (size_t)(p - out);
}

/* The bytes a proof by the initiator (or not) covers in this exchange. */
static size_t
transcript(const struct ocapn__shm_auth *a, bool initiator_signs,
    uint8_t *out)
{
	const uint8_t *ik = a->initiator ? a->kp->pk : a->peer_key;
	const uint8_t *ak = a->initiator ? a->peer_key : a->kp->pk;
	const uint8_t *in = a->initiator ? a->nonce : a->peer_nonce;
	const uint8_t *an = a->initiator ? a->peer_nonce : a->nonce;
	return ocapn__shm_auth_signed_bytes(initiator_signs, ik, ak, in, an,
	    out);
}

static int
on_hello(struct ocapn__shm_auth *a, const uint8_t *m, size_t len,
    uint8_t *proof, size_t *proof_len)
{
	if (len != OCAPN__SHM_HELLO_LEN || memcmp(m, hello_head, HEAD_LEN) ||
	    memcmp(m + HEAD_LEN + 32, "32:", 3) ||
	    m[OCAPN__SHM_HELLO_LEN - 1] != '>') {
		if (len == OCAPN__SHM_PROOF_LEN &&
		    !memcmp(m, proof_head, HEAD_LEN))
			return fail(a, OCAPN_E_PROTOCOL, "authentication: "
			    "proof before hello");
		return fail(a, OCAPN_E_PROTOCOL, "authentication: expected "
		    "an ocapn-shm:hello record");
	}
	memcpy(a->peer_key, m + HEAD_LEN, OCAPN__PK_LEN);
	memcpy(a->peer_nonce, m + HEAD_LEN + 35, OCAPN__SHM_NONCE_LEN);
	if (memcmp(a->peer_nonce, a->nonce, OCAPN__SHM_NONCE_LEN) == 0)
		return fail(a, OCAPN_E_PROTOCOL, "authentication: the peer "
		    "reflected our challenge");
	if (a->check_key && memcmp(a->peer_key, a->expected, OCAPN__PK_LEN))
		return fail(a, OCAPN_E_SIGNATURE, "authentication: the peer's "
		    "designator key is not the one dialled");
	uint8_t tb[OCAPN__SHM_SIGNED_MAX];
	size_t tl = transcript(a, a->initiator, tb);
	uint8_t sig[OCAPN__SIG_LEN];
	if (ocapn__sign(a->kp, tb, tl, sig))
		return fail(a, OCAPN_E_CRYPTO, "authentication: signing "
		    "failed");
	memcpy(proof, proof_head, HEAD_LEN);
	memcpy(proof + HEAD_LEN, sig, OCAPN__SIG_LEN);
	proof[OCAPN__SHM_PROOF_LEN - 1] = '>';
	*proof_len = OCAPN__SHM_PROOF_LEN;
	a->state = OCAPN__SHM_AUTH_PROOF;
	return OCAPN_OK;
}

static int
on_proof(struct ocapn__shm_auth *a, const uint8_t *m, size_t len)
{
	if (len != OCAPN__SHM_PROOF_LEN || memcmp(m, proof_head, HEAD_LEN) ||
	    m[OCAPN__SHM_PROOF_LEN - 1] != '>') {
		if (len == OCAPN__SHM_HELLO_LEN &&
		    !memcmp(m, hello_head, HEAD_LEN))
			return fail(a, OCAPN_E_PROTOCOL, "authentication: "
			    "second hello");
		return fail(a, OCAPN_E_PROTOCOL, "authentication: expected "
		    "an ocapn-shm:proof record");
	}
	uint8_t tb[OCAPN__SHM_SIGNED_MAX];
	size_t tl = transcript(a, !a->initiator, tb);
	if (ocapn__verify(a->peer_key, tb, tl, m + HEAD_LEN) != OCAPN_OK)
		return fail(a, OCAPN_E_SIGNATURE, "authentication: the peer's "
		    "proof does not verify (wrong key, replayed or "
		    "reflected)");
	a->state = OCAPN__SHM_AUTH_DONE;
	return OCAPN_OK;
}

int
ocapn__shm_auth_input(struct ocapn__shm_auth *a, const uint8_t *msg,
    size_t len, uint8_t *proof, size_t *proof_len)
{
	*proof_len = 0;
	if (a->state == OCAPN__SHM_AUTH_FAILED)
		return a->err;
	if (a->state == OCAPN__SHM_AUTH_DONE)
		return fail(a, OCAPN_E_STATE, "authentication: message after "
		    "the exchange ended");
	if (len > OCAPN__SHM_AUTH_MAX)
		return fail(a, OCAPN_E_PROTOCOL, "authentication: message "
		    "too long");
	/* One private copy; the peer may rewrite `msg` meanwhile. */
	uint8_t m[OCAPN__SHM_AUTH_MAX];
	memcpy(m, msg, len);
	if (a->state == OCAPN__SHM_AUTH_HELLO)
		return on_hello(a, m, len, proof, proof_len);
	return on_proof(a, m, len);
}
