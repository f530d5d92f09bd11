/*
 * The crypto module: known-answer tests, the Syrup forms of keys and
 * signatures, and the identifiers and signatures of real Goblins sessions
 * (tests/data/goblins-captures).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#include "captp/crypto.h"

static void
unhex(const char *hex, uint8_t *out, size_t n)
{
	assert_int_equal(strlen(hex), 2 * n);
	for (size_t i = 0; i < n; i++) {
		unsigned b;
		assert_int_equal(sscanf(hex + 2 * i, "%2x", &b), 1);
		out[i] = (uint8_t)b;
	}
}

/* ---- Known answers ------------------------------------------------- */

/* RFC 8032, section 7.1 (Test Vectors for Ed25519), TEST 1, TEST 2 and
 * TEST 3: SECRET KEY is the 32-byte seed. */
static const struct {
	const char *seed, *pk, *msg, *sig;
} rfc8032[] = {
    {"9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
	"d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
	"",
	"e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
	"5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"},
    {"4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
	"3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
	"72",
	"92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da"
	"085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"},
    {"c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
	"fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
	"af82",
	"6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac"
	"18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a"},
};

static void
test_ed25519_rfc8032(void **state)
{
	(void)state;
	assert_int_equal(ocapn__crypto_init(), OCAPN_OK);
	for (size_t t = 0; t < sizeof(rfc8032) / sizeof(*rfc8032); t++) {
		uint8_t seed[32], pk[32], sig[64], got[64], msg[8];
		size_t mlen = strlen(rfc8032[t].msg) / 2;
		unhex(rfc8032[t].seed, seed, 32);
		unhex(rfc8032[t].pk, pk, 32);
		unhex(rfc8032[t].sig, sig, 64);
		unhex(rfc8032[t].msg, msg, mlen);
		ocapn__keypair kp;
		assert_int_equal(ocapn__keypair_from_seed(&kp, seed), 0);
		assert_memory_equal(kp.pk, pk, 32);
		assert_int_equal(ocapn__sign(&kp, msg, mlen, got), 0);
		assert_memory_equal(got, sig, 64);
		assert_int_equal(ocapn__verify(pk, msg, mlen, sig), OCAPN_OK);
		/* Any flipped bit of the signature, the message or the key
		 * must fail. */
		for (size_t bit = 0; bit < 64 * 8; bit += 37) {
			got[bit / 8] ^= (uint8_t)(1u << (bit % 8));
			assert_int_equal(ocapn__verify(pk, msg, mlen, got),
			    OCAPN_E_SIGNATURE);
			got[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		}
		uint8_t other[9];
		memcpy(other, msg, mlen);
		other[mlen] = 0;
		assert_int_equal(ocapn__verify(pk, other, mlen + 1, sig),
		    OCAPN_E_SIGNATURE);
		pk[5] ^= 0x10;
		assert_int_equal(ocapn__verify(pk, msg, mlen, sig),
		    OCAPN_E_SIGNATURE);
		ocapn__keypair_wipe(&kp);
		uint8_t zero[64] = {0};
		assert_memory_equal(kp.sk, zero, 64);
	}
}

/* FIPS 180-2, Appendix B.1 and B.2. */
static void
test_sha256_fips180(void **state)
{
	(void)state;
	uint8_t out[32], want[32];
	ocapn__sha256((const uint8_t *)"abc", 3, out);
	unhex("ba7816bf8f01cfea414140de5dae2223"
	      "b00361a396177a9cb410ff61f20015ad",
	    want, 32);
	assert_memory_equal(out, want, 32);
	const char *m2 =
	    "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
	ocapn__sha256((const uint8_t *)m2, strlen(m2), out);
	unhex("248d6a61d20638b8e5c026930c3e6039"
	      "a33ce45964ff2167f6ecedd419db06c1",
	    want, 32);
	assert_memory_equal(out, want, 32);
}

static void
test_random_and_compare(void **state)
{
	(void)state;
	uint8_t a[64] = {0}, b[64] = {0}, zero[64] = {0};
	ocapn__random(a, sizeof(a));
	ocapn__random(b, sizeof(b));
	/* 2^-512 chance of a false failure. */
	assert_memory_not_equal(a, b, sizeof(a));
	assert_memory_not_equal(a, zero, sizeof(a));
	assert_true(ocapn__ct_equal(a, a, sizeof(a)));
	memcpy(b, a, sizeof(a));
	assert_true(ocapn__ct_equal(a, b, sizeof(a)));
	b[63] ^= 1;
	assert_false(ocapn__ct_equal(a, b, sizeof(a)));
	assert_true(ocapn__ct_equal(a, b, 63));
	ocapn__wipe(b, sizeof(b));
	assert_memory_equal(b, zero, sizeof(b));

	ocapn__keypair k1, k2;
	assert_int_equal(ocapn__keypair_generate(&k1), 0);
	assert_int_equal(ocapn__keypair_generate(&k2), 0);
	assert_memory_not_equal(k1.pk, k2.pk, 32);
	/* libsodium's secret key layout: seed || public key. */
	assert_memory_equal(k1.sk + 32, k1.pk, 32);
	uint8_t sig[64];
	assert_int_equal(ocapn__sign(&k1, a, sizeof(a), sig), 0);
	assert_int_equal(ocapn__verify(k1.pk, a, sizeof(a), sig), OCAPN_OK);
	assert_int_equal(ocapn__verify(k2.pk, a, sizeof(a), sig),
	    OCAPN_E_SIGNATURE);
	ocapn__keypair_wipe(&k1);
	ocapn__keypair_wipe(&k2);
}

/* ---- Syrup forms --------------------------------------------------- */

static const char pk_head[] =
    "[10'public-key[3'ecc[5'curve7'Ed25519][5'flags5'eddsa][1'q32:";

static ocapn_value *
decode_one(ocapn_arena *arena, const void *p, size_t n)
{
	ocapn_syrup_decoder *dec = ocapn_syrup_decoder_new(0, NULL);
	assert_non_null(dec);
	ocapn_value *v = NULL;
	int rc = ocapn_syrup_decode_one(dec, arena, p, n, &v);
	if (rc) {
		size_t off;
		const char *why = ocapn_syrup_decoder_error(dec, &off);
		fail_msg("decode failed at %zu: %s", off, why);
	}
	ocapn_syrup_decoder_free(dec);
	return v;
}

static ocapn_value *
notation(ocapn_arena *arena, const char *text)
{
	ocapn_value *v = NULL;
	size_t used, eo;
	const char *why;
	int rc = ocapn_notation_parse(text, strlen(text), arena, &v, &used,
	    &eo, &why);
	if (rc)
		fail_msg("notation %s: %s at %zu", text, why, eo);
	return v;
}

static void
test_pubkey_sigval_forms(void **state)
{
	(void)state;
	uint8_t pk[32], sig[64], got[64];
	for (int i = 0; i < 32; i++)
		pk[i] = (uint8_t)(0xa0 + i);
	for (int i = 0; i < 64; i++)
		sig[i] = (uint8_t)i;
	ocapn_syrup_writer *w = ocapn_syrup_writer_new(0, NULL);
	ocapn_arena *arena = ocapn_arena_new(NULL);
	assert_non_null(w);
	assert_non_null(arena);
	const uint8_t *out;
	size_t len;

	assert_int_equal(ocapn__write_pubkey(w, pk), 0);
	assert_int_equal(ocapn_syrup_writer_finish(w, &out, &len), 0);
	size_t hl = strlen(pk_head);
	assert_int_equal(len, hl + 32 + 3);
	assert_int_equal(len, 96);
	assert_memory_equal(out, pk_head, hl);
	assert_memory_equal(out + hl, pk, 32);
	assert_memory_equal(out + hl + 32, "]]]", 3);
	/* The side id hashes exactly these bytes, twice. */
	uint8_t h[32], side[32], side2[32];
	ocapn__sha256(out, len, h);
	ocapn__sha256(h, 32, side);
	ocapn__side_id(pk, side2);
	assert_memory_equal(side, side2, 32);

	const char *why = NULL;
	ocapn_value *v = decode_one(arena, out, len);
	assert_int_equal(ocapn__parse_pubkey(v, got, &why), OCAPN_OK);
	assert_memory_equal(got, pk, 32);
	/* A signature is not a key and the reverse. */
	assert_int_equal(ocapn__parse_sigval(v, got, &why), OCAPN_E_PROTOCOL);

	ocapn_syrup_writer_reset(w);
	assert_int_equal(ocapn__write_sigval(w, sig), 0);
	assert_int_equal(ocapn_syrup_writer_finish(w, &out, &len), 0);
	static const char sig_head[] = "[7'sig-val[5'eddsa[1'r32:";
	assert_memory_equal(out, sig_head, strlen(sig_head));
	assert_int_equal(len, strlen(sig_head) + 32 + strlen("][1's32:") + 32
		+ 3);
	v = decode_one(arena, out, len);
	memset(got, 0, sizeof(got));
	assert_int_equal(ocapn__parse_sigval(v, got, &why), OCAPN_OK);
	assert_memory_equal(got, sig, 64);
	assert_int_equal(ocapn__parse_pubkey(v, got, &why), OCAPN_E_PROTOCOL);
	assert_non_null(why);
	/* why may be NULL. */
	assert_int_equal(ocapn__parse_pubkey(v, got, NULL), OCAPN_E_PROTOCOL);

	ocapn_arena_free(arena);
	ocapn_syrup_writer_free(w);
}

/* Every malformed key and signature is refused with its own reason. */
static void
test_pubkey_sigval_rejects(void **state)
{
	(void)state;
#define Q32 ":0001020304050607080910111213141516171819202122232425262728293031"
	static const struct {
		const char *text, *why;
	} bad_keys[] = {
	    {"'public-key", "public key is not a 2-item list"},
	    {"['public-key]", "public key is not a 2-item list"},
	    {"['pubkey ['ecc]]", "public key does not start with 'public-key"},
	    {"[\"public-key\" 1]",
		"public key does not start with 'public-key"},
	    {"['public-key ['ecc ['curve 'Ed25519] ['flags 'eddsa]]]",
		"public key body is not ['ecc CURVE FLAGS Q]"},
	    {"['public-key ['rsa 1 2 3]]",
		"public key body is not ['ecc CURVE FLAGS Q]"},
	    {"['public-key ['ecc ['curve 'Ed448] ['flags 'eddsa] ['q 1]]]",
		"public key curve is not ['curve 'Ed25519]"},
	    {"['public-key ['ecc ['flags 'eddsa] ['curve 'Ed25519] ['q 1]]]",
		"public key curve is not ['curve 'Ed25519]"},
	    {"['public-key ['ecc ['curve 'Ed25519] ['flags 'ecdsa] ['q 1]]]",
		"public key flags are not ['flags 'eddsa]"},
	    {"['public-key ['ecc ['curve 'Ed25519] ['flags 'eddsa] ['q 1]]]",
		"public key point is not ['q BYTES]"},
	    {"['public-key ['ecc ['curve 'Ed25519] ['flags 'eddsa] ['p :00]]]",
		"public key point is not ['q BYTES]"},
	    {"['public-key ['ecc ['curve 'Ed25519] ['flags 'eddsa] "
	     "['q :00 1]]]",
		"public key point is not ['q BYTES]"},
	    {"['public-key ['ecc ['curve 'Ed25519] ['flags 'eddsa] ['q :00]]]",
		"public key point is not 32 bytes"},
	    {"['public-key ['ecc ['curve 'Ed25519] ['flags 'eddsa] ['q "
		":0001020304050607080910111213141516"
		"17181920212223242526272829303132]]]",
		"public key point is not 32 bytes"},
	};
	static const struct {
		const char *text, *why;
	} bad_sigs[] = {
	    {"{}", "signature is not a 2-item list"},
	    {"['sig-val 1 2]", "signature is not a 2-item list"},
	    {"['sig ['eddsa]]", "signature does not start with 'sig-val"},
	    {"['sig-val ['eddsa ['r " Q32 "]]]",
		"signature body is not ['eddsa R S]"},
	    {"['sig-val ['ecdsa ['r " Q32 "] ['s " Q32 "]]]",
		"signature body is not ['eddsa R S]"},
	    {"['sig-val ['eddsa ['s " Q32 "] ['r " Q32 "]]]",
		"signature r is not ['r BYTES]"},
	    {"['sig-val ['eddsa ['r \"x\"] ['s " Q32 "]]]",
		"signature r is not ['r BYTES]"},
	    {"['sig-val ['eddsa ['r :00] ['s " Q32 "]]]",
		"signature r is not 32 bytes"},
	    {"['sig-val ['eddsa ['r " Q32 "] ['s 5]]]",
		"signature s is not ['s BYTES]"},
	    {"['sig-val ['eddsa ['r " Q32 "] ['s :]]]",
		"signature s is not 32 bytes"},
	};
	ocapn_arena *arena = ocapn_arena_new(NULL);
	assert_non_null(arena);
	uint8_t pk[32], sig[64], zero[64] = {0};
	for (size_t i = 0; i < sizeof(bad_keys) / sizeof(*bad_keys); i++) {
		ocapn_value *v = notation(arena, bad_keys[i].text);
		const char *why = NULL;
		memset(pk, 0, sizeof(pk));
		assert_int_equal(ocapn__parse_pubkey(v, pk, &why),
		    OCAPN_E_PROTOCOL);
		assert_non_null(why);
		if (strcmp(why, bad_keys[i].why))
			fail_msg("%s: got \"%s\"", bad_keys[i].text, why);
		assert_memory_equal(pk, zero, 32);
	}
	for (size_t i = 0; i < sizeof(bad_sigs) / sizeof(*bad_sigs); i++) {
		ocapn_value *v = notation(arena, bad_sigs[i].text);
		const char *why = NULL;
		memset(sig, 0, sizeof(sig));
		assert_int_equal(ocapn__parse_sigval(v, sig, &why),
		    OCAPN_E_PROTOCOL);
		assert_non_null(why);
		if (strcmp(why, bad_sigs[i].why))
			fail_msg("%s: got \"%s\"", bad_sigs[i].text, why);
		/* Nothing is written on failure. */
		assert_memory_equal(sig, zero, 64);
	}
	ocapn_arena_free(arena);
#undef Q32
}

static void
test_session_id_properties(void **state)
{
	(void)state;
	uint8_t a[32], b[32], s1[32], s2[32], s3[32];
	memset(a, 0x11, 32);
	memset(b, 0x22, 32);
	ocapn__session_id(a, b, s1);
	ocapn__session_id(b, a, s2);
	assert_memory_equal(s1, s2, 32);
	/* sha256(sha256("prot0" || a || b)) with a < b. */
	uint8_t buf[5 + 64], h[32];
	memcpy(buf, "prot0", 5);
	memcpy(buf + 5, a, 32);
	memcpy(buf + 37, b, 32);
	ocapn__sha256(buf, sizeof(buf), h);
	ocapn__sha256(h, 32, s3);
	assert_memory_equal(s1, s3, 32);
	/* Order is bytewise, not by the first differing bit of a word. */
	a[31] = 0xff;
	b[0] = 0x11;
	b[31] = 0x00;
	b[1] = 0x12;
	ocapn__session_id(a, b, s1);
	ocapn__session_id(b, a, s2);
	assert_memory_equal(s1, s2, 32);
	memcpy(buf + 5, a, 32);
	memcpy(buf + 37, b, 32);
	ocapn__sha256(buf, sizeof(buf), h);
	ocapn__sha256(h, 32, s3);
	assert_memory_equal(s1, s3, 32);
}

static void
test_sign_value(void **state)
{
	(void)state;
	ocapn_arena *arena = ocapn_arena_new(NULL);
	ocapn_syrup_writer *w = ocapn_syrup_writer_new(0, NULL);
	assert_non_null(arena);
	assert_non_null(w);
	ocapn__keypair kp;
	assert_int_equal(ocapn__keypair_generate(&kp), 0);
	/* Entries out of canonical order: the signature covers the
	 * canonical bytes, so an equal value in another order verifies. */
	ocapn_value *v = notation(arena,
	    "<my-location <ocapn-peer 'tcp \"x\" "
	    "{\"b\": \"2\", \"a\": \"1\"}>>");
	ocapn_value *v2 = notation(arena,
	    "<my-location <ocapn-peer 'tcp \"x\" "
	    "{\"a\": \"1\", \"b\": \"2\"}>>");
	ocapn_value *v3 = notation(arena,
	    "<my-location <ocapn-peer 'tcp \"x\" "
	    "{\"a\": \"1\", \"b\": \"3\"}>>");
	uint8_t sig[64];
	assert_int_equal(ocapn__sign_value(&kp, w, v, sig), 0);
	assert_int_equal(ocapn__verify_value(kp.pk, w, v2, sig), OCAPN_OK);
	assert_int_equal(ocapn__verify_value(kp.pk, w, v3, sig),
	    OCAPN_E_SIGNATURE);
	/* Same as signing the encoded bytes directly. */
	const uint8_t *out;
	size_t len;
	ocapn_syrup_writer_reset(w);
	ocapn_syrup_write_value(w, v2);
	assert_int_equal(ocapn_syrup_writer_finish(w, &out, &len), 0);
	assert_int_equal(ocapn__verify(kp.pk, out, len, sig), OCAPN_OK);
	/* A value that cannot be encoded. */
	ocapn_value bad;
	ocapn_value_set_record(&bad, NULL, 0);
	assert_int_equal(ocapn__sign_value(&kp, w, &bad, sig), OCAPN_E_INVAL);
	assert_int_equal(ocapn__verify_value(kp.pk, w, &bad, sig),
	    OCAPN_E_INVAL);
	ocapn__keypair_wipe(&kp);
	ocapn_syrup_writer_free(w);
	ocapn_arena_free(arena);
}

/* ---- Real Goblins sessions ----------------------------------------- */

/* One decoded capture stream: the values live in `arena` and point into
 * `buf`. */
struct stream {
	uint8_t *buf;
	size_t len;
	ocapn_value **vals;
	size_t n;
};

static void
stream_load(struct stream *s, ocapn_arena *arena, const char *rel)
{
	ocapn_syrup_decoder *dec = ocapn_syrup_decoder_new(0, NULL);
	assert_non_null(dec);
	s->buf = tu_read_data(rel, &s->len);
	s->vals = NULL;
	s->n = 0;
	size_t off = 0, cap = 0;
	while (off < s->len) {
		ocapn_value *v;
		size_t used;
		int rc = ocapn_syrup_decode(dec, arena, s->buf + off,
		    s->len - off, &v, &used);
		if (rc) {
			size_t eo;
			const char *why = ocapn_syrup_decoder_error(dec, &eo);
			fail_msg("%s: decode failed at %zu: %s", rel, off + eo,
			    why);
		}
		if (s->n == cap) {
			cap = cap ? 2 * cap : 16;
			s->vals = realloc(s->vals, cap * sizeof(*s->vals));
			assert_non_null(s->vals);
		}
		s->vals[s->n++] = v;
		off += used;
	}
	ocapn_syrup_decoder_free(dec);
}

static void
stream_free(struct stream *s)
{
	free(s->buf);
	free(s->vals);
}

/* The op:start-session of a stream: its first message. */
struct start {
	uint8_t pk[32];
	uint8_t sig[64];
	const ocapn_value *location;
	uint8_t side[32];
};

static void
get_start(const struct stream *s, struct start *st)
{
	assert_true(s->n > 0);
	const ocapn_value *m = s->vals[0];
	assert_true(ocapn_value_is_record(m, "op:start-session", 4));
	assert_true(ocapn_value_is_string(ocapn_value_item(m, 0),
	    "goblins-0.12"));
	const char *why = NULL;
	if (ocapn__parse_pubkey(ocapn_value_item(m, 1), st->pk, &why))
		fail_msg("start-session key: %s", why);
	st->location = ocapn_value_item(m, 2);
	assert_true(ocapn_value_is_record(st->location, "ocapn-peer", 3));
	if (ocapn__parse_sigval(ocapn_value_item(m, 3), st->sig, &why))
		fail_msg("start-session signature: %s", why);
	ocapn__side_id(st->pk, st->side);
}

/* <my-location LOCATION> */
static ocapn_value *
my_location(ocapn_arena *arena, const ocapn_value *loc)
{
	ocapn_value *items = ocapn_arena_values(arena, 2);
	ocapn_value *rec = ocapn_arena_values(arena, 1);
	assert_non_null(items);
	assert_non_null(rec);
	ocapn_value_set_symbol(&items[0], "my-location", 11);
	items[1] = *loc;
	ocapn_value_set_record(rec, items, 2);
	return rec;
}

static const char *const scenarios[] = {"testuds-all-scenarios",
    "testuds-bad-swiss-fetch", "testuds-op-get-index-untag",
    "testuds-value-encodings", "uds-op-abort", "uds-pipelined-car-factory",
    "uds-promise-resolver-break", "uds-remote-exception-broken-pipeline",
    "uds-session-fetch-echo", "uds-third-party-handoff"};

/* Every op:start-session Goblins sent carries a location signature that
 * our code verifies; a flipped bit anywhere makes it fail. */
static void
test_goblins_location_signatures(void **state)
{
	(void)state;
	ocapn_syrup_writer *w = ocapn_syrup_writer_new(0, NULL);
	assert_non_null(w);
	size_t verified = 0, messages = 0;
	for (size_t d = 0; d < sizeof(scenarios) / sizeof(*scenarios); d++) {
		char dir[256];
		snprintf(dir, sizeof(dir), "goblins-captures/%s",
		    scenarios[d]);
		char **list = tu_list_data(dir, "captp", ".bin");
		for (char **f = list; *f; f++) {
			ocapn_arena *arena = ocapn_arena_new(NULL);
			assert_non_null(arena);
			struct stream s;
			stream_load(&s, arena, *f);
			for (size_t i = 0; i < s.n; i++) {
				messages++;
				if (!ocapn_value_is_record(s.vals[i],
					"op:start-session", SIZE_MAX))
					continue;
				/* Only the first message starts a session. */
				assert_int_equal(i, 0);
				struct start st;
				get_start(&s, &st);
				ocapn_value *ml = my_location(arena,
				    st.location);
				int rc = ocapn__verify_value(st.pk, w, ml,
				    st.sig);
				if (rc)
					fail_msg("%s: location signature: %s",
					    *f, ocapn_err_name(rc));
				verified++;
				/* The bare location (what the draft spec's
				 * text says) is not what Goblins signs. */
				assert_int_equal(ocapn__verify_value(st.pk, w,
						     st.location, st.sig),
				    OCAPN_E_SIGNATURE);
				for (size_t bit = 0; bit < 512; bit += 61) {
					st.sig[bit / 8] ^=
					    (uint8_t)(1u << (bit % 8));
					assert_int_equal(
					    ocapn__verify_value(st.pk, w, ml,
						st.sig),
					    OCAPN_E_SIGNATURE);
					st.sig[bit / 8] ^=
					    (uint8_t)(1u << (bit % 8));
				}
				st.pk[7] ^= 0x04;
				assert_int_equal(ocapn__verify_value(st.pk, w,
						     ml, st.sig),
				    OCAPN_E_SIGNATURE);
				st.pk[7] ^= 0x04;
				/* Change one byte of the designator. */
				ocapn_value loc = *st.location;
				ocapn_value items[4];
				memcpy(items, loc.u.items, sizeof(items));
				uint8_t desig[256];
				assert_true(items[2].len <= sizeof(desig));
				memcpy(desig, items[2].u.p, items[2].len);
				desig[0] ^= 0x01;
				items[2].u.p = desig;
				loc.u.items = items;
				ocapn_value *ml2 = my_location(arena, &loc);
				assert_int_equal(ocapn__verify_value(st.pk, w,
						     ml2, st.sig),
				    OCAPN_E_SIGNATURE);
			}
			stream_free(&s);
			ocapn_arena_free(arena);
		}
		tu_free_list(list);
	}
	/* 24 streams, each starting with one op:start-session. */
	assert_int_equal(verified, 24);
	assert_true(messages > 100);
	ocapn_syrup_writer_free(w);
}

/* Depth-first search for a record labelled `label` with `nfields`
 * fields; `skip` matches are passed over. */
static const ocapn_value *
find_record(const ocapn_value *v, const char *label, size_t nfields,
    size_t *skip)
{
	if (ocapn_value_is_record(v, label, nfields)) {
		if (*skip == 0)
			return v;
		(*skip)--;
	}
	if (v->kind == OCAPN_LIST || v->kind == OCAPN_SET ||
	    v->kind == OCAPN_RECORD || v->kind == OCAPN_DICT) {
		size_t n = v->kind == OCAPN_DICT ? 2 * (size_t)v->len : v->len;
		for (size_t i = 0; i < n; i++) {
			const ocapn_value *r = find_record(&v->u.items[i],
			    label, nfields, skip);
			if (r)
				return r;
		}
	}
	return NULL;
}

static const ocapn_value *
find_in_stream(const struct stream *s, const char *label, size_t nfields,
    size_t nth)
{
	for (size_t i = 0; i < s->n; i++) {
		const ocapn_value *r = find_record(s->vals[i], label, nfields,
		    &nth);
		if (r)
			return r;
	}
	return NULL;
}

static void
assert_bytes_field(const ocapn_value *rec, size_t field, const uint8_t *want)
{
	const ocapn_value *f = ocapn_value_item(rec, field);
	assert_non_null(f);
	assert_int_equal(f->kind, OCAPN_BYTES);
	assert_int_equal(f->len, 32);
	assert_memory_equal(f->u.p, want, 32);
}

/* Check one signed handoff-give against the capture's sessions. */
static void
check_give(ocapn_syrup_writer *w, const ocapn_value *env,
    const struct start *gifter_at_exporter,
    const struct start *exporter_at_gifter,
    const struct start *receiver_at_gifter)
{
	const char *why = NULL;
	assert_true(ocapn_value_is_record(env, "desc:sig-envelope", 2));
	const ocapn_value *give = ocapn_value_item(env, 0);
	assert_true(ocapn_value_is_record(give, "desc:handoff-give", 5));
	uint8_t sig[64], rk[32];
	if (ocapn__parse_sigval(ocapn_value_item(env, 1), sig, &why))
		fail_msg("give signature: %s", why);
	/* RECEIVER-KEY: the receiver's key of the gifter-receiver
	 * session. */
	if (ocapn__parse_pubkey(ocapn_value_item(give, 0), rk, &why))
		fail_msg("give receiver key: %s", why);
	assert_memory_equal(rk, receiver_at_gifter->pk, 32);
	/* EXPORTER-LOCATION: where the exporter said it is. */
	assert_true(ocapn_value_equal(ocapn_value_item(give, 1),
	    exporter_at_gifter->location));
	/* GIFTER-EXPORTER-SESSION-ID and GIFTER-SIDE computed by us. */
	uint8_t sid[32];
	ocapn__session_id(gifter_at_exporter->side, exporter_at_gifter->side,
	    sid);
	assert_bytes_field(give, 2, sid);
	assert_bytes_field(give, 3, gifter_at_exporter->side);
	const ocapn_value *gift_id = ocapn_value_item(give, 4);
	assert_int_equal(gift_id->kind, OCAPN_BYTES);
	assert_int_equal(gift_id->len, 32);
	/* Signed by the gifter's key of the gifter-exporter session. */
	assert_int_equal(ocapn__verify_value(gifter_at_exporter->pk, w, give,
			     sig),
	    OCAPN_OK);
	assert_int_equal(ocapn__verify_value(receiver_at_gifter->pk, w, give,
			     sig),
	    OCAPN_E_SIGNATURE);
	sig[40] ^= 0x80;
	assert_int_equal(ocapn__verify_value(gifter_at_exporter->pk, w, give,
			     sig),
	    OCAPN_E_SIGNATURE);
}

/*
 * The three-party handoff: the gifter 3grqvuhl (connector of captp1 and
 * captp2) gives the receiver k7h5qvxh (acceptor of captp2) a reference to
 * an object of the exporter yyfbb73u (acceptor of captp1); the receiver
 * then withdraws it on captp3 (receiver -> exporter).
 */
static void
test_goblins_handoff_certificates(void **state)
{
	(void)state;
	static const char *const names[6] = {"captp1.c2a.bin",
	    "captp1.a2c.bin", "captp2.c2a.bin", "captp2.a2c.bin",
	    "captp3.c2a.bin", "captp3.a2c.bin"};
	ocapn_arena *arena = ocapn_arena_new(NULL);
	ocapn_syrup_writer *w = ocapn_syrup_writer_new(0, NULL);
	assert_non_null(arena);
	assert_non_null(w);
	struct stream s[6];
	struct start st[6];
	for (int i = 0; i < 6; i++) {
		char rel[256];
		snprintf(rel, sizeof(rel),
		    "goblins-captures/uds-third-party-handoff/%s", names[i]);
		stream_load(&s[i], arena, rel);
		get_start(&s[i], &st[i]);
	}
	const struct start *gifter_at_exporter = &st[0];
	const struct start *exporter_at_gifter = &st[1];
	const struct start *gifter_at_receiver = &st[2];
	const struct start *receiver_at_gifter = &st[3];
	const struct start *receiver_at_exporter = &st[4];
	const struct start *exporter_at_receiver = &st[5];
	/* The gifter used a fresh key per session. */
	assert_memory_not_equal(gifter_at_exporter->pk, gifter_at_receiver->pk,
	    32);

	/* The gifter sends two gives to the receiver on captp2. */
	size_t gives = 0;
	for (size_t k = 0;; k++) {
		const ocapn_value *env = find_in_stream(&s[2],
		    "desc:sig-envelope", 2, k);
		if (!env)
			break;
		check_give(w, env, gifter_at_exporter, exporter_at_gifter,
		    receiver_at_gifter);
		gives++;
	}
	assert_int_equal(gives, 2);

	/* The receiver withdraws both on captp3 with handoff-receives. */
	size_t receives = 0;
	for (size_t k = 0;; k++) {
		const ocapn_value *rcv = find_in_stream(&s[4],
		    "desc:handoff-receive", 4, k);
		if (!rcv)
			break;
		/* Its envelope is the record holding it. */
		const ocapn_value *env = NULL;
		for (size_t j = 0;; j++) {
			env = find_in_stream(&s[4], "desc:sig-envelope", 2, j);
			assert_non_null(env);
			if (ocapn_value_item(env, 0) == rcv)
				break;
		}
		const char *why = NULL;
		uint8_t sig[64];
		if (ocapn__parse_sigval(ocapn_value_item(env, 1), sig, &why))
			fail_msg("receive signature: %s", why);
		/* RECEIVER-EXPORTER-SESSION-ID and RECEIVER-SIDE. */
		uint8_t sid[32];
		ocapn__session_id(receiver_at_exporter->side,
		    exporter_at_receiver->side, sid);
		assert_bytes_field(rcv, 0, sid);
		assert_bytes_field(rcv, 1, receiver_at_exporter->side);
		/* HANDOFF-COUNT counts from 0 in the session. */
		int64_t count;
		assert_int_equal(ocapn_value_get_int64(ocapn_value_item(rcv,
				     2), &count),
		    0);
		assert_int_equal(count, (int64_t)receives);
		/* The give inside is one the gifter sent. */
		check_give(w, ocapn_value_item(rcv, 3), gifter_at_exporter,
		    exporter_at_gifter, receiver_at_gifter);
		/* Signed by the receiver's key of the gifter-receiver
		 * session (the key named in the give), not by its key of
		 * the receiver-exporter session. */
		assert_int_equal(ocapn__verify_value(receiver_at_gifter->pk, w,
				     rcv, sig),
		    OCAPN_OK);
		assert_int_equal(ocapn__verify_value(receiver_at_exporter->pk,
				     w, rcv, sig),
		    OCAPN_E_SIGNATURE);
		sig[3] ^= 0x01;
		assert_int_equal(ocapn__verify_value(receiver_at_gifter->pk, w,
				     rcv, sig),
		    OCAPN_E_SIGNATURE);
		receives++;
	}
	assert_int_equal(receives, 2);

	for (int i = 0; i < 6; i++)
		stream_free(&s[i]);
	ocapn_syrup_writer_free(w);
	ocapn_arena_free(arena);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_ed25519_rfc8032),
	    cmocka_unit_test(test_sha256_fips180),
	    cmocka_unit_test(test_random_and_compare),
	    cmocka_unit_test(test_pubkey_sigval_forms),
	    cmocka_unit_test(test_pubkey_sigval_rejects),
	    cmocka_unit_test(test_session_id_properties),
	    cmocka_unit_test(test_sign_value),
	    cmocka_unit_test(test_goblins_location_signatures),
	    cmocka_unit_test(test_goblins_handoff_certificates),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
