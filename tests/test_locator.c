/*
 * Peer locators, sturdyrefs and their encodings: RFC 4648 vectors, URI
 * round trips and errors, the Syrup form, and every locator of the real
 * Goblins captures (tests/data/goblins-captures).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#include "captp/crypto.h"

/* ---- Helpers ------------------------------------------------------- */

/* An allocator that fails every request after `budget` successes and
 * counts live blocks. */
struct failing {
	long budget;
	long live;
};

static void *
failing_fn(void *user, void *ptr, size_t old_size, size_t new_size)
{
	struct failing *f = user;
	(void)old_size;
	if (new_size == 0) {
		if (ptr)
			f->live--;
		free(ptr);
		return NULL;
	}
	if (f->budget == 0)
		return NULL;
	f->budget--;
	void *p = realloc(ptr, new_size);
	if (p && !ptr)
		f->live++;
	return p;
}

static ocapn_locator *
parse_peer(const char *uri)
{
	ocapn_locator *loc = NULL;
	size_t off = 0;
	const char *why = NULL;
	int rc = ocapn_locator_parse_uri(uri, strlen(uri), NULL, &loc, &off,
	    &why);
	if (rc)
		fail_msg("%s: %s at %zu (%s)", uri, why, off,
		    ocapn_err_name(rc));
	return loc;
}

static ocapn_sturdyref *
parse_sref(const char *uri)
{
	ocapn_sturdyref *sr = NULL;
	size_t off = 0;
	const char *why = NULL;
	int rc = ocapn_sturdyref_parse_uri(uri, strlen(uri), NULL, &sr, &off,
	    &why);
	if (rc)
		fail_msg("%s: %s at %zu (%s)", uri, why, off,
		    ocapn_err_name(rc));
	return sr;
}

static char *
xstrdup(const char *s)
{
	size_t n = strlen(s) + 1;
	char *d = malloc(n);
	assert_non_null(d);
	memcpy(d, s, n);
	return d;
}

/* URI of a locator as a malloc'ed C string. */
static char *
peer_uri(const ocapn_locator *loc)
{
	ocapn_buffer b;
	ocapn_buffer_init(&b);
	assert_int_equal(ocapn_locator_to_uri(loc, &b, NULL), 0);
	assert_int_equal(strlen((char *)b.data), b.len);
	char *s = xstrdup((char *)b.data);
	ocapn_buffer_release(&b, NULL);
	return s;
}

static char *
sref_uri(const ocapn_sturdyref *sr)
{
	ocapn_buffer b;
	ocapn_buffer_init(&b);
	assert_int_equal(ocapn_sturdyref_to_uri(sr, &b, NULL), 0);
	assert_int_equal(strlen((char *)b.data), b.len);
	char *s = xstrdup((char *)b.data);
	ocapn_buffer_release(&b, NULL);
	return s;
}

static void
assert_str(const char *got, size_t glen, const char *want, size_t wlen)
{
	if (glen != wlen || memcmp(got, want, wlen))
		fail_msg("got \"%.*s\" (%zu), want \"%.*s\" (%zu)", (int)glen,
		    got, glen, (int)wlen, want, wlen);
	assert_int_equal(got[glen], 0);
}

/* `got` is evaluated before `glen` (getters set the length). */
#define ASSERT_STR(got, glen, want)                                     \
	do {                                                            \
		const char *got_ = (got);                               \
		assert_str(got_, glen, want, strlen(want));             \
	} while (0)

/* Canonical Syrup bytes of a locator (malloc'ed). */
static uint8_t *
loc_bytes(const ocapn_locator *loc, size_t *len)
{
	ocapn_syrup_writer *w = ocapn_syrup_writer_new(0, NULL);
	assert_non_null(w);
	assert_int_equal(ocapn_locator_write(loc, w), 0);
	const uint8_t *p;
	assert_int_equal(ocapn_syrup_writer_finish(w, &p, len), 0);
	uint8_t *c = malloc(*len);
	assert_non_null(c);
	memcpy(c, p, *len);
	ocapn_syrup_writer_free(w);
	return c;
}

static uint8_t *
value_bytes(const ocapn_value *v, size_t *len)
{
	ocapn_syrup_writer *w = ocapn_syrup_writer_new(0, NULL);
	assert_non_null(w);
	assert_int_equal(ocapn_syrup_write_value(w, v), 0);
	const uint8_t *p;
	assert_int_equal(ocapn_syrup_writer_finish(w, &p, len), 0);
	uint8_t *c = malloc(*len);
	assert_non_null(c);
	memcpy(c, p, *len);
	ocapn_syrup_writer_free(w);
	return c;
}

/* Two locators are identical: same peer, same hints, same hint kind. */
static void
assert_same_locator(const ocapn_locator *a, const ocapn_locator *b)
{
	assert_true(ocapn_locator_same_peer(a, b));
	assert_int_equal(ocapn_locator_hints_are_dict(a),
	    ocapn_locator_hints_are_dict(b));
	assert_int_equal(ocapn_locator_hint_count(a),
	    ocapn_locator_hint_count(b));
	for (size_t i = 0; i < ocapn_locator_hint_count(a); i++) {
		const char *ka, *va, *kb, *vb;
		size_t kal, val, kbl, vbl;
		assert_int_equal(ocapn_locator_hint_at(a, i, &ka, &kal, &va,
				     &val),
		    0);
		assert_int_equal(ocapn_locator_hint_at(b, i, &kb, &kbl, &vb,
				     &vbl),
		    0);
		assert_str(ka, kal, kb, kbl);
		assert_str(va, val, vb, vbl);
	}
	size_t la, lb;
	uint8_t *ba = loc_bytes(a, &la), *bb = loc_bytes(b, &lb);
	assert_int_equal(la, lb);
	assert_memory_equal(ba, bb, la);
	free(ba);
	free(bb);
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

/* ---- RFC 4648 ------------------------------------------------------ */

/* RFC 4648 section 10 (Test Vectors), BASE32 and BASE64 lines, written
 * here in the forms this library uses: base32 lowercase without padding,
 * base64url without padding (these inputs give no '+' or '/'). */
static const struct {
	const char *in, *b32, *b32pad, *b64, *b64pad;
} rfc4648[] = {
    {"", "", "", "", ""},
    {"f", "my", "MY======", "Zg", "Zg=="},
    {"fo", "mzxq", "MZXQ====", "Zm8", "Zm8="},
    {"foo", "mzxw6", "MZXW6===", "Zm9v", "Zm9v"},
    {"foob", "mzxw6yq", "MZXW6YQ=", "Zm9vYg", "Zm9vYg=="},
    {"fooba", "mzxw6ytb", "MZXW6YTB", "Zm9vYmE", "Zm9vYmE="},
    {"foobar", "mzxw6ytboi", "MZXW6YTBOI======", "Zm9vYmFy", "Zm9vYmFy"},
};

static void
test_rfc4648_vectors(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(rfc4648) / sizeof(*rfc4648); i++) {
		const char *in = rfc4648[i].in;
		size_t n = strlen(in);
		ocapn_buffer b;
		ocapn_buffer_init(&b);
		assert_int_equal(ocapn_base32_encode((const uint8_t *)in, n,
				     &b, NULL),
		    0);
		ASSERT_STR((char *)b.data, b.len, rfc4648[i].b32);
		b.len = 0;
		assert_int_equal(ocapn_base64url_encode((const uint8_t *)in, n,
				     &b, NULL),
		    0);
		ASSERT_STR((char *)b.data, b.len, rfc4648[i].b64);

		/* Decoding: lowercase and uppercase base32 (without the
		 * RFC's padding), base64url with and without padding. */
		const char *b32 = rfc4648[i].b32;
		char upper[32];
		size_t ul = strcspn(rfc4648[i].b32pad, "=");
		memcpy(upper, rfc4648[i].b32pad, ul);
		b.len = 0;
		assert_int_equal(ocapn_base32_decode(b32, strlen(b32), &b,
				     NULL),
		    0);
		ASSERT_STR((char *)b.data, b.len, in);
		b.len = 0;
		assert_int_equal(ocapn_base32_decode(upper, ul, &b, NULL), 0);
		ASSERT_STR((char *)b.data, b.len, in);
		const char *pad = rfc4648[i].b32pad;
		if (strchr(pad, '=')) {
			b.len = 0;
			assert_int_equal(ocapn_base32_decode(pad, strlen(pad),
					     &b, NULL),
			    OCAPN_E_SYNTAX);
			assert_int_equal(b.len, 0);
		}
		const char *forms[2] = {rfc4648[i].b64, rfc4648[i].b64pad};
		for (int f = 0; f < 2; f++) {
			b.len = 0;
			assert_int_equal(ocapn_base64url_decode(forms[f],
					     strlen(forms[f]), &b, NULL),
			    0);
			ASSERT_STR((char *)b.data, b.len, in);
		}
		ocapn_buffer_release(&b, NULL);
	}
}

static void
test_base_encodings_edges(void **state)
{
	(void)state;
	ocapn_buffer b;
	ocapn_buffer_init(&b);
	/* The two characters where base64url differs from base64. */
	static const uint8_t fb[] = {0xfb, 0xff};
	assert_int_equal(ocapn_base64url_encode(fb, 2, &b, NULL), 0);
	ASSERT_STR((char *)b.data, b.len, "-_8");
	b.len = 0;
	assert_int_equal(ocapn_base64url_decode("-_8", 3, &b, NULL), 0);
	assert_int_equal(b.len, 2);
	assert_memory_equal(b.data, fb, 2);

	/* Appends after existing content, NUL not counted. */
	b.len = 0;
	assert_int_equal(ocapn_buffer_append(&b, NULL, "xy", 2), 0);
	assert_int_equal(ocapn_base32_encode((const uint8_t *)"f", 1, &b,
			     NULL),
	    0);
	ASSERT_STR((char *)b.data, b.len, "xymy");
	assert_int_equal(ocapn_base32_decode("mzxq", 4, &b, NULL), 0);
	ASSERT_STR((char *)b.data, b.len, "xymyfo");

	/* Failures leave the buffer as it was, still NUL-terminated. */
	static const char *const bad32[] = {"m", "mzx", "mzxw6y", "my1",
	    "my=", "mz", "mzxw6yr", "m y", "my======", "\xc3\xa9"};
	for (size_t i = 0; i < sizeof(bad32) / sizeof(*bad32); i++) {
		assert_int_equal(ocapn_base32_decode(bad32[i], strlen(bad32[i]),
				     &b, NULL),
		    OCAPN_E_SYNTAX);
		ASSERT_STR((char *)b.data, b.len, "xymyfo");
	}
	static const char *const bad64[] = {"Z", "Zh", "Zm9", "Zm9vY",
	    "Zg=", "Zg===", "Z=g=", "+/8", "Zm9v/w", "Zm 9v", "Zm8==",
	    "=", "Zg===="};
	for (size_t i = 0; i < sizeof(bad64) / sizeof(*bad64); i++) {
		int rc = ocapn_base64url_decode(bad64[i], strlen(bad64[i]), &b,
		    NULL);
		if (rc != OCAPN_E_SYNTAX)
			fail_msg("base64url \"%s\" accepted", bad64[i]);
		ASSERT_STR((char *)b.data, b.len, "xymyfo");
	}
	/* Empty input is valid and still terminates the buffer. */
	ocapn_buffer e;
	ocapn_buffer_init(&e);
	assert_int_equal(ocapn_base32_encode(NULL, 0, &e, NULL), 0);
	assert_int_equal(e.len, 0);
	assert_int_equal(e.data[0], 0);
	ocapn_buffer_release(&e, NULL);
	assert_int_equal(ocapn_base32_encode(NULL, 3, &b, NULL),
	    OCAPN_E_INVAL);
	assert_int_equal(ocapn_base64url_decode("Zg", 2, NULL, NULL),
	    OCAPN_E_INVAL);

	/* Every byte string of up to 12 bytes has one base32 and one
	 * base64url encoding, and it decodes back. */
	uint8_t data[12];
	for (size_t n = 0; n <= sizeof(data); n++) {
		for (size_t i = 0; i < n; i++)
			data[i] = (uint8_t)(0x9e * (i + 1) + n);
		ocapn_buffer t, u;
		ocapn_buffer_init(&t);
		ocapn_buffer_init(&u);
		assert_int_equal(ocapn_base32_encode(data, n, &t, NULL), 0);
		assert_int_equal(t.len, (n * 8 + 4) / 5);
		assert_int_equal(ocapn_base32_decode((char *)t.data, t.len, &u,
				     NULL),
		    0);
		assert_int_equal(u.len, n);
		assert_memory_equal(u.data, data, n);
		t.len = u.len = 0;
		assert_int_equal(ocapn_base64url_encode(data, n, &t, NULL), 0);
		assert_int_equal(t.len, (n * 8 + 5) / 6);
		assert_int_equal(ocapn_base64url_decode((char *)t.data, t.len,
				     &u, NULL),
		    0);
		assert_int_equal(u.len, n);
		assert_memory_equal(u.data, data, n);
		ocapn_buffer_release(&t, NULL);
		ocapn_buffer_release(&u, NULL);
	}
	ocapn_buffer_release(&b, NULL);
}

/* ---- Locator API --------------------------------------------------- */

static void
test_locator_api(void **state)
{
	(void)state;
	ocapn_locator *loc = NULL;
	assert_int_equal(ocapn_locator_new("tcp", 3, "a.b", 3, NULL, &loc), 0);
	size_t n;
	ASSERT_STR(ocapn_locator_transport(loc, &n), n, "tcp");
	ASSERT_STR(ocapn_locator_designator(loc, &n), n, "a.b");
	assert_false(ocapn_locator_hints_are_dict(loc));
	assert_int_equal(ocapn_locator_hint_count(loc), 0);
	assert_int_equal(ocapn_locator_hint_at(loc, 0, NULL, NULL, NULL, NULL),
	    OCAPN_E_RANGE);
	assert_null(ocapn_locator_hint(loc, "x", NULL));

	/* Invalid arguments. */
	ocapn_locator *bad = NULL;
	assert_int_equal(ocapn_locator_new("", 0, "d", 1, NULL, &bad),
	    OCAPN_E_INVAL);
	assert_int_equal(ocapn_locator_new("t.x", 3, "d", 1, NULL, &bad),
	    OCAPN_E_INVAL);
	assert_int_equal(ocapn_locator_new("\xff", 1, "d", 1, NULL, &bad),
	    OCAPN_E_INVAL);
	assert_int_equal(ocapn_locator_new("t", 1, "\xed\xa0\x80", 3, NULL,
			     &bad),
	    OCAPN_E_INVAL);
	assert_int_equal(ocapn_locator_new("t", 1, NULL, 1, NULL, &bad),
	    OCAPN_E_INVAL);
	assert_null(bad);
	assert_int_equal(ocapn_locator_set_hint(loc, "k", 1, "\xc3", 1),
	    OCAPN_E_INVAL);
	assert_false(ocapn_locator_hints_are_dict(loc));

	/* Hints are kept in canonical dict order, by encoded key: 0"
	 * < 1"b < 10"0123456789 < 2"aa < 2"zz ('"' sorts before digits). */
	assert_int_equal(ocapn_locator_set_hint(loc, "zz", 2, "1", 1), 0);
	assert_true(ocapn_locator_hints_are_dict(loc));
	assert_int_equal(ocapn_locator_set_hint(loc, "aa", 2, "2", 1), 0);
	assert_int_equal(ocapn_locator_set_hint(loc, "0123456789", 10, "3", 1),
	    0);
	assert_int_equal(ocapn_locator_set_hint(loc, "b", 1, "", 0), 0);
	assert_int_equal(ocapn_locator_set_hint(loc, "", 0, "empty key", 9),
	    0);
	static const char *const order[] = {"", "b", "0123456789", "aa", "zz"};
	assert_int_equal(ocapn_locator_hint_count(loc), 5);
	for (size_t i = 0; i < 5; i++) {
		const char *k, *v;
		size_t kl, vl;
		assert_int_equal(ocapn_locator_hint_at(loc, i, &k, &kl, &v,
				     &vl),
		    0);
		ASSERT_STR(k, kl, order[i]);
	}
	/* Replace. */
	assert_int_equal(ocapn_locator_set_hint(loc, "aa", 2, "two", 3), 0);
	assert_int_equal(ocapn_locator_hint_count(loc), 5);
	ASSERT_STR(ocapn_locator_hint(loc, "aa", &n), n, "two");
	ASSERT_STR(ocapn_locator_hint(loc, "b", &n), n, "");
	ASSERT_STR(ocapn_locator_hint(loc, "", &n), n, "empty key");
	assert_null(ocapn_locator_hint(loc, "a", &n));

	/* The Syrup form is canonical as built. */
	size_t len;
	uint8_t *bytes = loc_bytes(loc, &len);
	static const char want[] =
	    "<10'ocapn-peer3'tcp3\"a.b{0\"9\"empty key1\"b0\"10\"0123456789"
	    "1\"32\"aa3\"two2\"zz1\"1}>";
	assert_int_equal(len, sizeof(want) - 1);
	assert_memory_equal(bytes, want, len);
	free(bytes);

	/* Copies are deep and equal. */
	ocapn_locator *c = NULL;
	assert_int_equal(ocapn_locator_copy(loc, &c), 0);
	assert_same_locator(loc, c);
	assert_int_equal(ocapn_locator_set_hint(c, "aa", 2, "x", 1), 0);
	ASSERT_STR(ocapn_locator_hint(loc, "aa", &n), n, "two");

	/* same_peer ignores hints and their kind. */
	ocapn_locator *d = NULL;
	assert_int_equal(ocapn_locator_new("tcp", 3, "a.b", 3, NULL, &d), 0);
	assert_true(ocapn_locator_same_peer(loc, d));
	ocapn_locator_clear_hints(c, false);
	assert_false(ocapn_locator_hints_are_dict(c));
	assert_int_equal(ocapn_locator_hint_count(c), 0);
	assert_true(ocapn_locator_same_peer(c, d));
	assert_same_locator(c, d);
	ocapn_locator_clear_hints(c, true);
	assert_true(ocapn_locator_hints_are_dict(c));
	ocapn_locator_free(d);
	assert_int_equal(ocapn_locator_new("tcp", 3, "a.B", 3, NULL, &d), 0);
	assert_false(ocapn_locator_same_peer(loc, d));
	ocapn_locator_free(d);
	assert_int_equal(ocapn_locator_new("tcpx", 4, "a.b", 3, NULL, &d), 0);
	assert_false(ocapn_locator_same_peer(loc, d));
	ocapn_locator_free(d);
	/* Designators that differ only in length. */
	assert_int_equal(ocapn_locator_new("tcp", 3, "a.", 2, NULL, &d), 0);
	assert_false(ocapn_locator_same_peer(loc, d));
	ocapn_locator_free(d);

	ocapn_locator_free(c);
	ocapn_locator_free(loc);
	ocapn_locator_free(NULL);
}

static void
test_locator_values(void **state)
{
	(void)state;
	ocapn_arena *arena = ocapn_arena_new(NULL);
	assert_non_null(arena);
	const char *why = NULL;
	ocapn_locator *loc = NULL;

	static const char *const goods[] = {
	    "<'ocapn-peer 'tcp \"d\" f>",
	    "<'ocapn-peer 'tcp \"\" {}>",
	    ("<'ocapn-peer 'tcp-testing-only \"x.y\" {\"host\": \"[::1]\", "
		"\"port\": \"22045\"}>"),
	    "<'ocapn-peer 'onion \"\\u{e9}\" {\"\": \"\"}>",
	};
	for (size_t i = 0; i < sizeof(goods) / sizeof(*goods); i++) {
		ocapn_value *v = notation(arena, goods[i]);
		int rc = ocapn_locator_from_value(v, NULL, &loc, &why);
		if (rc)
			fail_msg("%s: %s", goods[i], why);
		/* Same bytes back, by both routes. */
		size_t l1, l2, l3;
		uint8_t *b1 = value_bytes(v, &l1), *b2 = loc_bytes(loc, &l2);
		ocapn_value *back;
		assert_int_equal(ocapn_locator_to_value(loc, arena, &back), 0);
		uint8_t *b3 = value_bytes(back, &l3);
		assert_int_equal(l1, l2);
		assert_int_equal(l1, l3);
		assert_memory_equal(b1, b2, l1);
		assert_memory_equal(b1, b3, l1);
		assert_true(ocapn_value_equal(v, back));
		free(b1);
		free(b2);
		free(b3);
		ocapn_locator_free(loc);
	}

	static const struct {
		const char *text, *why;
	} bads[] = {
	    {"['ocapn-peer 'tcp \"d\" f]", "peer locator is not a record"},
	    {"<'ocapn-node 'tcp \"d\" f>",
		"peer locator label is not 'ocapn-peer"},
	    {"<\"ocapn-peer\" 'tcp \"d\" f>",
		"peer locator label is not 'ocapn-peer"},
	    {"<'ocapn-peer 'tcp \"d\">",
		"ocapn-peer needs 3 fields: transport, designator, hints"},
	    {"<'ocapn-peer 'tcp \"d\" f f>",
		"ocapn-peer needs 3 fields: transport, designator, hints"},
	    {"<'ocapn-peer \"tcp\" \"d\" f>",
		"ocapn-peer transport is not a symbol"},
	    {"<'ocapn-peer '|| \"d\" f>", "ocapn-peer transport is empty"},
	    {"<'ocapn-peer 'a.tcp \"d\" f>",
		"ocapn-peer transport contains '.'"},
	    {"<'ocapn-peer 'tcp 'd f>",
		"ocapn-peer designator is not a string"},
	    {"<'ocapn-peer 'tcp :64 f>",
		"ocapn-peer designator is not a string"},
	    {"<'ocapn-peer 'tcp \"d\" t>",
		"ocapn-peer hints are neither a dict nor f"},
	    {"<'ocapn-peer 'tcp \"d\" [[\"k\" \"v\"]]>",
		"ocapn-peer hints are neither a dict nor f"},
	    {"<'ocapn-peer 'tcp \"d\" {'host: \"h\"}>",
		"ocapn-peer hint key is not a string"},
	    {"<'ocapn-peer 'tcp \"d\" {\"port\": 22}>",
		"ocapn-peer hint value is not a string"},
	};
	for (size_t i = 0; i < sizeof(bads) / sizeof(*bads); i++) {
		ocapn_value *v = notation(arena, bads[i].text);
		why = NULL;
		loc = NULL;
		assert_int_equal(ocapn_locator_from_value(v, NULL, &loc, &why),
		    OCAPN_E_PROTOCOL);
		assert_null(loc);
		assert_non_null(why);
		if (strcmp(why, bads[i].why))
			fail_msg("%s: got \"%s\"", bads[i].text, why);
	}
	/* Built by hand: invalid UTF-8 and a repeated key, which the
	 * decoder never produces. */
	ocapn_value *v = notation(arena,
	    "<'ocapn-peer 'tcp \"d\" {\"a\": \"1\", \"b\": \"2\"}>");
	ocapn_value *kv = v->u.items[3].u.items;
	ocapn_value_set_string(&kv[2], "a", 1);
	assert_int_equal(ocapn_locator_from_value(v, NULL, &loc, &why),
	    OCAPN_E_PROTOCOL);
	ASSERT_STR(why, strlen(why), "ocapn-peer hints repeat a key");
	ocapn_value_set_string(&kv[2], "\xff", 1);
	assert_int_equal(ocapn_locator_from_value(v, NULL, &loc, &why),
	    OCAPN_E_PROTOCOL);
	ASSERT_STR(why, strlen(why), "ocapn-peer hint is not valid UTF-8");
	ocapn_value_set_string(&v->u.items[2], "\xc0\x80", 2);
	assert_int_equal(ocapn_locator_from_value(v, NULL, &loc, &why),
	    OCAPN_E_PROTOCOL);
	ASSERT_STR(why, strlen(why),
	    "ocapn-peer designator is not valid UTF-8");
	ocapn_value_set_symbol(&v->u.items[1], "\xe0", 1);
	assert_int_equal(ocapn_locator_from_value(v, NULL, &loc, &why),
	    OCAPN_E_PROTOCOL);
	ASSERT_STR(why, strlen(why),
	    "ocapn-peer transport is not valid UTF-8");
	/* why may be NULL. */
	assert_int_equal(ocapn_locator_from_value(v, NULL, &loc, NULL),
	    OCAPN_E_PROTOCOL);
	assert_int_equal(ocapn_locator_from_value(NULL, NULL, &loc, NULL),
	    OCAPN_E_INVAL);
	ocapn_arena_free(arena);
}

/* ---- URIs ---------------------------------------------------------- */

static void
test_uri_round_trips(void **state)
{
	(void)state;
	static const struct {
		const char *in;  /* parsed */
		const char *out; /* printed back */
		const char *designator, *transport;
		int dict;        /* hints kind */
		const char *hints[4][2];
	} cases[] = {
	    {"ocapn://abc.tcp", "ocapn://abc.tcp", "abc", "tcp", 0, {{0}}},
	    {"OCAPN://abc.tcp", "ocapn://abc.tcp", "abc", "tcp", 0, {{0}}},
	    {"ocapn://abc.tcp/", "ocapn://abc.tcp", "abc", "tcp", 0, {{0}}},
	    {"ocapn://abc.tcp/?", "ocapn://abc.tcp?", "abc", "tcp", 1, {{0}}},
	    /* The last '.' splits; designators may hold dots. */
	    {"ocapn://a.b.c.tcp-testing-only", "ocapn://a.b.c.tcp-testing-only",
		"a.b.c", "tcp-testing-only", 0, {{0}}},
	    {"ocapn://.t", "ocapn://.t", "", "t", 0, {{0}}},
	    /* Empty query: an empty dict, not f. */
	    {"ocapn://abc.tcp?", "ocapn://abc.tcp?", "abc", "tcp", 1, {{0}}},
	    /* Percent-decoding of the host happens before the split. */
	    {"ocapn://x%2Ey%2etcp", "ocapn://x.y.tcp", "x.y", "tcp", 0, {{0}}},
	    {"ocapn://%C3%a9t%C3%A9.tr%41nsport",
		"ocapn://%C3%A9t%C3%A9.trAnsport", "\xc3\xa9t\xc3\xa9",
		"trAnsport", 0, {{0}}},
	    /* '+' is a space only in the query. */
	    {"ocapn://a+b.t?k+1=v+2&k%2B=%2B",
		"ocapn://a%2Bb.t?k%2B=%2B&k%201=v%202", "a+b", "t", 1,
		{{"k+", "+"}, {"k 1", "v 2"}}},
	    {"ocapn://d.t?host=127.0.0.1&port=22045",
		"ocapn://d.t?host=127.0.0.1&port=22045", "d", "t", 1,
		{{"host", "127.0.0.1"}, {"port", "22045"}}},
	    /* IPv6-looking hints, raw and encoded. */
	    {"ocapn://d.tcp-testing-only?host=[::1]&port=1",
		"ocapn://d.tcp-testing-only?host=%5B%3A%3A1%5D&port=1", "d",
		"tcp-testing-only", 1, {{"host", "[::1]"}, {"port", "1"}}},
	    {"ocapn://d.t?host=%5Bfe80::1%25eth0%5D",
		"ocapn://d.t?host=%5Bfe80%3A%3A1%25eth0%5D", "d", "t", 1,
		{{"host", "[fe80::1%eth0]"}}},
	    /* Empty keys and values; canonical order on output. */
	    {"ocapn://d.t?z=&=v&0123456789=x",
		"ocapn://d.t?=v&z=&0123456789=x", "d", "t", 1,
		{{"", "v"}, {"z", ""}, {"0123456789", "x"}}},
	    /* Sub-delims and other query characters are literal. */
	    {"ocapn://d.t?a=!$'()*,;:@/?~-._",
		"ocapn://d.t?a=%21%24%27%28%29%2A%2C%3B%3A%40%2F%3F~-._", "d",
		"t", 1, {{"a", "!$'()*,;:@/?~-._"}}},
	    {"ocapn://d.t?nul=%00&sp=%20", "ocapn://d.t?sp=%20&nul=%00", "d",
		"t", 1, {{"sp", " "}, {"nul", ""}}},
	    /* Goblins' own unix-domain-socket locator (CAPTURES.md). */
	    {"ocapn://xcp5lezcbavgpb62au6ygeoztcshtahpnvddgcy7vemdqjrvi2sa."
	     "unix-domain-socket?m4txtllsy2kfqhkisvwpadlyqayhophnxxvlmnlve7sf6"
	     "wtoztgq=t",
		"ocapn://xcp5lezcbavgpb62au6ygeoztcshtahpnvddgcy7vemdqjrvi2sa."
		"unix-domain-socket?m4txtllsy2kfqhkisvwpadlyqayhophnxxvlmnlve7s"
		"f6wtoztgq=t",
		"xcp5lezcbavgpb62au6ygeoztcshtahpnvddgcy7vemdqjrvi2sa",
		"unix-domain-socket", 1,
		{{"m4txtllsy2kfqhkisvwpadlyqayhophnxxvlmnlve7sf6wtoztgq",
		    "t"}}},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		ocapn_locator *loc = parse_peer(cases[i].in);
		size_t n;
		ASSERT_STR(ocapn_locator_designator(loc, &n), n,
		    cases[i].designator);
		ASSERT_STR(ocapn_locator_transport(loc, &n), n,
		    cases[i].transport);
		assert_int_equal(ocapn_locator_hints_are_dict(loc),
		    cases[i].dict);
		size_t nh = 0;
		while (nh < 4 && cases[i].hints[nh][0])
			nh++;
		assert_int_equal(ocapn_locator_hint_count(loc), nh);
		for (size_t h = 0; h < nh; h++) {
			const char *k, *v;
			size_t kl, vl;
			assert_int_equal(ocapn_locator_hint_at(loc, h, &k, &kl,
					     &v, &vl),
			    0);
			ASSERT_STR(k, kl, cases[i].hints[h][0]);
			/* "%00" decodes to one NUL byte. */
			if (!strcmp(k, "nul")) {
				assert_int_equal(vl, 1);
				assert_int_equal(v[0], 0);
			} else {
				ASSERT_STR(v, vl, cases[i].hints[h][1]);
			}
		}
		char *out = peer_uri(loc);
		if (strcmp(out, cases[i].out))
			fail_msg("%s printed as %s", cases[i].in, out);
		ocapn_locator *again = parse_peer(out);
		assert_same_locator(loc, again);
		char *out2 = peer_uri(again);
		assert_string_equal(out, out2);
		free(out);
		free(out2);
		ocapn_locator_free(again);
		ocapn_locator_free(loc);
	}
}

static void
test_uri_printing(void **state)
{
	(void)state;
	/* Everything outside unreserved is percent-encoded, uppercase. */
	ocapn_locator *loc = NULL;
	static const char desig[] = "a b/c?d#e%f&g=h+i:j@k[l]m\x7f\xc3\xa9.n~";
	assert_int_equal(ocapn_locator_new("t-_~9", 5, desig,
			     sizeof(desig) - 1, NULL, &loc),
	    0);
	char *s = peer_uri(loc);
	assert_string_equal(s,
	    "ocapn://a%20b%2Fc%3Fd%23e%25f%26g%3Dh%2Bi%3Aj%40k%5Bl%5Dm%7F%C3"
	    "%A9.n~.t-_~9");
	ocapn_locator *back = parse_peer(s);
	assert_same_locator(loc, back);
	free(s);
	ocapn_locator_free(back);
	/* A NUL inside the designator survives too. */
	ocapn_locator_free(loc);
	assert_int_equal(ocapn_locator_new("t", 1, "a\0b", 3, NULL, &loc), 0);
	s = peer_uri(loc);
	assert_string_equal(s, "ocapn://a%00b.t");
	back = parse_peer(s);
	assert_same_locator(loc, back);
	free(s);
	ocapn_locator_free(back);

	/* to_uri appends and keeps the NUL out of len. */
	ocapn_buffer b;
	ocapn_buffer_init(&b);
	assert_int_equal(ocapn_buffer_append(&b, NULL, "uri: ", 5), 0);
	assert_int_equal(ocapn_locator_to_uri(loc, &b, NULL), 0);
	ASSERT_STR((char *)b.data, b.len, "uri: ocapn://a%00b.t");
	ocapn_buffer_release(&b, NULL);
	ocapn_locator_free(loc);
}

static void
test_uri_errors(void **state)
{
	(void)state;
	static const struct {
		const char *uri;
		size_t off;
		const char *why;
	} peer_errs[] = {
	    {"", 0, "empty URI"},
	    {"ocap", 4, "URI ends inside \"ocapn://\""},
	    {"ocapn:/", 7, "URI ends inside \"ocapn://\""},
	    {"http://a.b", 0, "URI scheme is not ocapn"},
	    {"ocapx://a.b", 4, "URI scheme is not ocapn"},
	    {"ocapn:/a.b", 7, "expected \"://\" after the scheme"},
	    {"ocapn:a.b//", 6, "expected \"://\" after the scheme"},
	    {"ocapn://", 8, "empty host"},
	    {"ocapn://?a=b", 8, "empty host"},
	    {"ocapn:///s/x", 8, "empty host"},
	    {"ocapn://user@a.tcp", 12,
		"userinfo ('@') is not allowed in an OCapN URI"},
	    {"ocapn://a.tcp:80", 13,
		"a port (':') is not allowed in an OCapN URI"},
	    {"ocapn://[::1].tcp", 8,
		"IP literals ('[') are not allowed in the host"},
	    {"ocapn://a b.tcp", 9,
		"invalid character in the host (percent-encode it)"},
	    {"ocapn://a\xc3\xa9.tcp", 9,
		"invalid character in the host (percent-encode it)"},
	    {"ocapn://a\"b.tcp", 9,
		"invalid character in the host (percent-encode it)"},
	    {"ocapn://a%2.tcp", 9,
		"malformed percent-encoding (need '%' and two hex digits)"},
	    {"ocapn://a%zz.tcp", 9,
		"malformed percent-encoding (need '%' and two hex digits)"},
	    {"ocapn://a.tcp%", 13,
		"malformed percent-encoding (need '%' and two hex digits)"},
	    {"ocapn://a.tcp%4", 13,
		"malformed percent-encoding (need '%' and two hex digits)"},
	    {"ocapn://%FF.tcp", 8, "host is not valid UTF-8"},
	    {"ocapn://a.%C3%A9%FF", 16, "host is not valid UTF-8"},
	    {"ocapn://a.%ED%A0%80", 10, "host is not valid UTF-8"},
	    {"ocapn://abc", 11,
		"host has no '.' between designator and transport"},
	    {"ocapn://abc?x=.", 11,
		"host has no '.' between designator and transport"},
	    {"ocapn://abc.", 12, "empty transport after the last '.'"},
	    {"ocapn://abc.?", 12, "empty transport after the last '.'"},
	    {"ocapn://a.tcp/s/abc", 13,
		"a peer URI has no path (for /s/... use "
		"ocapn_sturdyref_parse_uri)"},
	    {"ocapn://a.tcp//", 13,
		"a peer URI has no path (for /s/... use "
		"ocapn_sturdyref_parse_uri)"},
	    {"ocapn://a.tcp#frag", 13,
		"fragments ('#') are not allowed in an OCapN URI"},
	    {"ocapn://a.tcp/#", 14,
		"fragments ('#') are not allowed in an OCapN URI"},
	    {"ocapn://a.tcp?x=1#f", 17,
		"fragments ('#') are not allowed in an OCapN URI"},
	    {"ocapn://a.tcp?&", 14,
		"empty hint (\"&&\", or '&' at the start or end)"},
	    {"ocapn://a.tcp?a=1&", 18,
		"empty hint (\"&&\", or '&' at the start or end)"},
	    {"ocapn://a.tcp?a=1&&b=2", 18,
		"empty hint (\"&&\", or '&' at the start or end)"},
	    {"ocapn://a.tcp?a", 15, "hint without '='"},
	    {"ocapn://a.tcp?a=1&bcd&e=2", 21, "hint without '='"},
	    {"ocapn://a.tcp?a=b=c", 17,
		"'=' in a hint value must be percent-encoded"},
	    {"ocapn://a.tcp?a==", 16,
		"'=' in a hint value must be percent-encoded"},
	    {"ocapn://a.tcp?a=1&a=2", 18, "repeated hint key"},
	    {"ocapn://a.tcp?b=1&a=1&c=1&a%3D=1&b=2&a=3", 33,
		"repeated hint key"},
	    {"ocapn://a.tcp?a=%C3%28", 16, "hint value is not valid UTF-8"},
	    {"ocapn://a.tcp?%80=1", 14, "hint key is not valid UTF-8"},
	    {"ocapn://a.tcp?k=ab%F0%9F%98", 18,
		"hint value is not valid UTF-8"},
	    {"ocapn://a.tcp?a=x y", 17,
		"invalid character in the query (percent-encode it)"},
	    {"ocapn://a.tcp?a=\"", 16,
		"invalid character in the query (percent-encode it)"},
	    {"ocapn://a.tcp?a=\xc3\xa9", 16,
		"invalid character in the query (percent-encode it)"},
	    {"ocapn://a.tcp?a={}", 16,
		"invalid character in the query (percent-encode it)"},
	    {"ocapn://a.tcp?a=%", 16,
		"malformed percent-encoding (need '%' and two hex digits)"},
	    {"ocapn://a.tcp?a=%4", 16,
		"malformed percent-encoding (need '%' and two hex digits)"},
	    {"ocapn://a.tcp?a=%4g", 16,
		"malformed percent-encoding (need '%' and two hex digits)"},
	};
	for (size_t i = 0; i < sizeof(peer_errs) / sizeof(*peer_errs); i++) {
		ocapn_locator *loc = NULL;
		size_t off = 9999;
		const char *why = NULL;
		int rc = ocapn_locator_parse_uri(peer_errs[i].uri,
		    strlen(peer_errs[i].uri), NULL, &loc, &off, &why);
		if (rc != OCAPN_E_SYNTAX)
			fail_msg("%s: %s", peer_errs[i].uri,
			    ocapn_err_name(rc));
		assert_null(loc);
		if (off != peer_errs[i].off || strcmp(why, peer_errs[i].why))
			fail_msg("%s: got %zu \"%s\", want %zu \"%s\"",
			    peer_errs[i].uri, off, why, peer_errs[i].off,
			    peer_errs[i].why);
	}
	/* A NUL byte inside the text is an invalid character. */
	ocapn_locator *loc = NULL;
	size_t off;
	const char *why;
	assert_int_equal(ocapn_locator_parse_uri("ocapn://a\0.t", 12, NULL,
			     &loc, &off, &why),
	    OCAPN_E_SYNTAX);
	assert_int_equal(off, 9);
	/* Errors with NULL reporting pointers, and bad arguments. */
	assert_int_equal(ocapn_locator_parse_uri("x", 1, NULL, &loc, NULL,
			     NULL),
	    OCAPN_E_SYNTAX);
	assert_int_equal(ocapn_locator_parse_uri(NULL, 3, NULL, &loc, NULL,
			     NULL),
	    OCAPN_E_INVAL);
	assert_int_equal(ocapn_locator_parse_uri(NULL, 0, NULL, &loc, &off,
			     &why),
	    OCAPN_E_SYNTAX);
	assert_int_equal(off, 0);
	assert_int_equal(ocapn_locator_parse_uri("ocapn://a.b", 11, NULL,
			     NULL, NULL, NULL),
	    OCAPN_E_INVAL);
	/* Length is respected: the same text cut short. */
	assert_int_equal(ocapn_locator_parse_uri("ocapn://a.bc", 10, NULL,
			     &loc, &off, &why),
	    OCAPN_E_SYNTAX);
	assert_int_equal(off, 10);
}

/* ---- Sturdyrefs ---------------------------------------------------- */

static void
test_sturdyrefs(void **state)
{
	(void)state;
	static const struct {
		const char *in, *out, *swiss;
	} cases[] = {
	    {"ocapn://d.t/s/Zm9vYmFy", "ocapn://d.t/s/Zm9vYmFy", "foobar"},
	    {"ocapn://d.t/s/Zm9vYg==", "ocapn://d.t/s/Zm9vYg", "foob"},
	    {"ocapn://d.t/s/Zm9vYg%3D%3D", "ocapn://d.t/s/Zm9vYg", "foob"},
	    {"ocapn://d.t/s/Zm9vYmE?", "ocapn://d.t/s/Zm9vYmE?", "fooba"},
	    {"ocapn://d.t/s/", "ocapn://d.t/s/", ""},
	    {"ocapn://a.b.tcp-testing-only/s/Zg?host=localhost&port=22045",
		"ocapn://a.b.tcp-testing-only/s/Zg?host=localhost&port=22045",
		"f"},
	    /* Goblins' fetch swiss numbers are 32 ASCII characters. */
	    {"ocapn://d.t/s/SU81OGwxbGFUeWhjcmdES2JFekZPTzMyTURkNnpFNXc",
		"ocapn://d.t/s/SU81OGwxbGFUeWhjcmdES2JFekZPTzMyTURkNnpFNXc",
		"IO58l1laTyhcrgDKbEzFOO32MDd6zE5w"},
	};
	ocapn_arena *arena = ocapn_arena_new(NULL);
	assert_non_null(arena);
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		ocapn_sturdyref *sr = parse_sref(cases[i].in);
		size_t n;
		const uint8_t *sw = ocapn_sturdyref_swiss(sr, &n);
		ASSERT_STR((const char *)sw, n, cases[i].swiss);
		char *out = sref_uri(sr);
		assert_string_equal(out, cases[i].out);
		ocapn_sturdyref *again = parse_sref(out);
		assert_same_locator(ocapn_sturdyref_locator(sr),
		    ocapn_sturdyref_locator(again));
		sw = ocapn_sturdyref_swiss(again, &n);
		ASSERT_STR((const char *)sw, n, cases[i].swiss);
		free(out);
		/* Syrup form: bytes swiss, same bytes back. */
		ocapn_value *v;
		assert_int_equal(ocapn_sturdyref_to_value(sr, arena, &v), 0);
		assert_int_equal(ocapn_value_item(v, 1)->kind, OCAPN_BYTES);
		ocapn_sturdyref *fv = NULL;
		const char *why = NULL;
		assert_int_equal(ocapn_sturdyref_from_value(v, NULL, &fv, &why),
		    0);
		ocapn_syrup_writer *w = ocapn_syrup_writer_new(0, NULL);
		assert_int_equal(ocapn_sturdyref_write(fv, w), 0);
		const uint8_t *wb;
		size_t wl, vl;
		assert_int_equal(ocapn_syrup_writer_finish(w, &wb, &wl), 0);
		uint8_t *vb = value_bytes(v, &vl);
		assert_int_equal(wl, vl);
		assert_memory_equal(wb, vb, wl);
		free(vb);
		ocapn_syrup_writer_free(w);
		ocapn_sturdyref_free(fv);
		ocapn_sturdyref_free(again);
		ocapn_sturdyref_free(sr);
	}

	/* A string swiss number (the draft spec's form) stays a string. */
	ocapn_value *v = notation(arena,
	    "<'ocapn-sturdyref <'ocapn-peer 'tcp \"d\" f> \"my-swiss\">");
	ocapn_sturdyref *sr = NULL;
	const char *why = NULL;
	assert_int_equal(ocapn_sturdyref_from_value(v, NULL, &sr, &why), 0);
	size_t n;
	ASSERT_STR((const char *)ocapn_sturdyref_swiss(sr, &n), n, "my-swiss");
	ocapn_value *back;
	assert_int_equal(ocapn_sturdyref_to_value(sr, arena, &back), 0);
	assert_true(ocapn_value_equal(v, back));
	char *s = sref_uri(sr);
	assert_string_equal(s, "ocapn://d.tcp/s/bXktc3dpc3M");
	free(s);
	ocapn_sturdyref_free(sr);

	/* _new copies its inputs. */
	ocapn_locator *loc = parse_peer("ocapn://d.t?x=y");
	uint8_t swiss[3] = {0xfb, 0xff, 0x00};
	assert_int_equal(ocapn_sturdyref_new(loc, swiss, 3, NULL, &sr), 0);
	swiss[0] = 0;
	ocapn_locator_free(loc);
	s = sref_uri(sr);
	assert_string_equal(s, "ocapn://d.t/s/-_8A?x=y");
	free(s);
	ocapn_sturdyref_free(sr);
	assert_int_equal(ocapn_sturdyref_new(NULL, swiss, 3, NULL, &sr),
	    OCAPN_E_INVAL);

	static const struct {
		const char *text, *why;
	} bads[] = {
	    {"[1]", "sturdyref is not a record"},
	    {"<'ocapn-peer 'tcp \"d\" f>",
		"sturdyref label is not 'ocapn-sturdyref"},
	    {"<'ocapn-sturdyref <'ocapn-peer 'tcp \"d\" f>>",
		"ocapn-sturdyref needs 2 fields: peer, swiss"},
	    {"<'ocapn-sturdyref <'ocapn-peer 'tcp \"d\" f> 'sym>",
		"ocapn-sturdyref swiss number is neither bytes nor a string"},
	    {"<'ocapn-sturdyref <'ocapn-peer 'tcp \"d\" t> :00>",
		"ocapn-peer hints are neither a dict nor f"},
	    {"<'ocapn-sturdyref \"ocapn://d.tcp\" :00>",
		"peer locator is not a record"},
	};
	for (size_t i = 0; i < sizeof(bads) / sizeof(*bads); i++) {
		v = notation(arena, bads[i].text);
		sr = NULL;
		why = NULL;
		assert_int_equal(ocapn_sturdyref_from_value(v, NULL, &sr, &why),
		    OCAPN_E_PROTOCOL);
		assert_null(sr);
		if (strcmp(why, bads[i].why))
			fail_msg("%s: got \"%s\"", bads[i].text, why);
	}

	static const struct {
		const char *uri;
		size_t off;
		const char *why;
	} errs[] = {
	    {"ocapn://a.tcp", 13,
		"a sturdyref URI needs \"/s/SWISS\" after the host"},
	    {"ocapn://a.tcp?x=1", 13,
		"a sturdyref URI needs \"/s/SWISS\" after the host"},
	    {"ocapn://a.tcp/", 14, "expected \"/s/\" after the host"},
	    {"ocapn://a.tcp/s", 14, "expected \"/s/\" after the host"},
	    {"ocapn://a.tcp/c/abc", 14, "expected \"/s/\" after the host"},
	    {"ocapn://a.tcp/S/abc", 14, "expected \"/s/\" after the host"},
	    {"ocapn://a.tcp/s/ab/c", 18, "unexpected '/' in the swiss number"},
	    {"ocapn://a.tcp/s/abcd/", 20,
		"unexpected '/' in the swiss number"},
	    {"ocapn://a.tcp/s/a", 17, "impossible base64url length"},
	    {"ocapn://a.tcp/s/Zh", 17,
		"non-zero unused bits in the last base64url character"},
	    {"ocapn://a.tcp/s/ab+c", 18, "'+' or '/' is base64, not base64url"},
	    {"ocapn://a.tcp/s/Zg=", 18, "wrong base64url padding"},
	    {"ocapn://a.tcp/s/Zg===", 18, "'=' before the end of base64url"},
	    {"ocapn://a.tcp/s/Z%3Dg", 17, "'=' before the end of base64url"},
	    {"ocapn://a.tcp/s/ab!c", 18, "invalid base64url character"},
	    {"ocapn://a.tcp/s/a b", 17,
		"invalid character in the swiss number"},
	    {"ocapn://a.tcp/s/abc#x", 19,
		"fragments ('#') are not allowed in an OCapN URI"},
	    {"ocapn://a.tcp/s/Zg?a", 20, "hint without '='"},
	    {"ocapn://a:1.tcp/s/Zg", 9,
		"a port (':') is not allowed in an OCapN URI"},
	};
	for (size_t i = 0; i < sizeof(errs) / sizeof(*errs); i++) {
		sr = NULL;
		size_t off = 9999;
		why = NULL;
		int rc = ocapn_sturdyref_parse_uri(errs[i].uri,
		    strlen(errs[i].uri), NULL, &sr, &off, &why);
		if (rc != OCAPN_E_SYNTAX)
			fail_msg("%s: %s", errs[i].uri, ocapn_err_name(rc));
		assert_null(sr);
		if (off != errs[i].off || strcmp(why, errs[i].why))
			fail_msg("%s: got %zu \"%s\", want %zu \"%s\"",
			    errs[i].uri, off, why, errs[i].off, errs[i].why);
	}
	ocapn_arena_free(arena);
}

/* ---- Huge inputs and allocation failures --------------------------- */

static void
test_huge_inputs(void **state)
{
	(void)state;
	/* A 1 MiB designator and 20000 hints, in reverse order. */
	size_t big = 1u << 20;
	size_t nh = 20000;
	size_t cap = big + 64 + nh * 24;
	char *u = malloc(cap);
	assert_non_null(u);
	size_t n = (size_t)snprintf(u, cap, "ocapn://");
	memset(u + n, 'd', big);
	n += big;
	n += (size_t)snprintf(u + n, cap - n, ".t?");
	for (size_t i = nh; i-- > 0;)
		n += (size_t)snprintf(u + n, cap - n, "k%zu=%zu%s", i, i,
		    i ? "&" : "");
	ocapn_locator *loc = NULL;
	size_t off;
	const char *why;
	assert_int_equal(ocapn_locator_parse_uri(u, n, NULL, &loc, &off, &why),
	    0);
	size_t dl;
	ocapn_locator_designator(loc, &dl);
	assert_int_equal(dl, big);
	assert_int_equal(ocapn_locator_hint_count(loc), nh);
	size_t vl;
	ASSERT_STR(ocapn_locator_hint(loc, "k12345", &vl), vl, "12345");
	/* Canonical order: shorter keys first ("k9" before "k10"). */
	const char *k;
	size_t kl;
	assert_int_equal(ocapn_locator_hint_at(loc, 0, &k, &kl, NULL, NULL),
	    0);
	ASSERT_STR(k, kl, "k0");
	assert_int_equal(ocapn_locator_hint_at(loc, 10, &k, &kl, NULL, NULL),
	    0);
	ASSERT_STR(k, kl, "k10");
	char *s = peer_uri(loc);
	ocapn_locator *again = parse_peer(s);
	assert_same_locator(loc, again);
	free(s);
	ocapn_locator_free(again);
	ocapn_locator_free(loc);

	/* A repeated key far in: reported at its second occurrence. */
	n += (size_t)snprintf(u + n, cap - n, "&k777=x");
	assert_int_equal(ocapn_locator_parse_uri(u, n, NULL, &loc, &off, &why),
	    OCAPN_E_SYNTAX);
	assert_int_equal(off, n - 6);
	ASSERT_STR(why, strlen(why), "repeated hint key");

	/* 1 MiB of '%' fails at the first one. */
	memset(u + 8, '%', big);
	assert_int_equal(ocapn_locator_parse_uri(u, 8 + big, NULL, &loc, &off,
			     &why),
	    OCAPN_E_SYNTAX);
	assert_int_equal(off, 8);
	/* 1 MiB of '.' has an empty transport. */
	memset(u + 8, '.', big);
	assert_int_equal(ocapn_locator_parse_uri(u, 8 + big, NULL, &loc, &off,
			     &why),
	    OCAPN_E_SYNTAX);
	assert_int_equal(off, 8 + big);
	/* A 1 MiB swiss number. */
	n = (size_t)snprintf(u, cap, "ocapn://d.t/s/");
	memset(u + n, 'A', big);
	ocapn_sturdyref *sr = NULL;
	assert_int_equal(ocapn_sturdyref_parse_uri(u, n + big, NULL, &sr, &off,
			     &why),
	    0);
	size_t sl;
	ocapn_sturdyref_swiss(sr, &sl);
	assert_int_equal(sl, big / 4 * 3);
	ocapn_sturdyref_free(sr);
	free(u);

	/* Deeply nested garbage as a locator value is refused at once. */
	ocapn_arena *arena = ocapn_arena_new(NULL);
	ocapn_value *v = notation(arena,
	    "<'ocapn-peer 'tcp \"d\" "
	    "{\"a\": [[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]}>");
	assert_int_equal(ocapn_locator_from_value(v, NULL, &loc, &why),
	    OCAPN_E_PROTOCOL);
	ocapn_arena_free(arena);
}

/* Every allocation failure is reported as OCAPN_E_NOMEM and leaks
 * nothing; with enough memory the operation succeeds. */
static void
test_allocation_failures(void **state)
{
	(void)state;
	static const char uri[] =
	    "ocapn://d%2E1.t/s/Zm9vYmFy?b=2&a=1&%C3%A9=%C3%A9";
	ocapn_sturdyref *model = parse_sref(uri);
	ocapn_arena *arena = ocapn_arena_new(NULL);
	ocapn_value *mv;
	assert_int_equal(ocapn_sturdyref_to_value(model, arena, &mv), 0);
	for (int op = 0; op < 6; op++) {
		long budget;
		for (budget = 0; budget < 1000; budget++) {
			struct failing f = {budget, 0};
			ocapn_allocator a = {failing_fn, &f};
			ocapn_sturdyref *sr = NULL;
			ocapn_locator *loc = NULL;
			ocapn_buffer b;
			ocapn_buffer_init(&b);
			int rc;
			switch (op) {
			case 0:
				rc = ocapn_sturdyref_parse_uri(uri,
				    strlen(uri), &a, &sr, NULL, NULL);
				break;
			case 1:
				rc = ocapn_sturdyref_from_value(mv, &a, &sr,
				    NULL);
				break;
			case 2:
				rc = ocapn_sturdyref_new(
				    ocapn_sturdyref_locator(model),
				    (const uint8_t *)"x", 1, &a, &sr);
				break;
			case 3:
				rc = ocapn_sturdyref_to_uri(model, &b, &a);
				break;
			case 4:
				rc = ocapn_locator_parse_uri("ocapn://d.t?a=1",
				    15, &a, &loc, NULL, NULL);
				if (!rc) {
					ocapn_locator *c = NULL;
					rc = ocapn_locator_copy(loc, &c);
					ocapn_locator_free(c);
				}
				break;
			default:
				rc = ocapn_locator_new("t", 1, "d", 1, &a,
				    &loc);
				if (!rc)
					rc = ocapn_locator_set_hint(loc, "k",
					    1, "v", 1);
				if (!rc)
					rc = ocapn_locator_set_hint(loc, "a",
					    1, "w", 1);
				if (!rc)
					rc = ocapn_base32_encode(
					    (const uint8_t *)"x", 1, &b, &a);
				break;
			}
			if (rc) {
				assert_int_equal(rc, OCAPN_E_NOMEM);
				assert_int_equal(b.len, 0);
			}
			ocapn_sturdyref_free(sr);
			ocapn_locator_free(loc);
			ocapn_buffer_release(&b, &a);
			assert_int_equal(f.live, 0);
			if (!rc)
				break;
		}
		/* Failures were seen, then success. */
		assert_true(budget > 0);
		assert_true(budget < 1000);
	}
	ocapn_arena_free(arena);
	ocapn_sturdyref_free(model);
}

/* ---- Goblins captures ---------------------------------------------- */

struct walk {
	ocapn_arena *arena;
	size_t peers, f_hints, dict_hints;
};

/* Check one in-band locator: parse, re-encode byte-identically, and go
 * through the URI form and back without change. */
static void
check_peer(struct walk *wk, const ocapn_value *v)
{
	ocapn_locator *loc = NULL;
	const char *why = NULL;
	if (ocapn_locator_from_value(v, NULL, &loc, &why))
		fail_msg("captured ocapn-peer refused: %s", why);
	size_t l1, l2;
	uint8_t *b1 = value_bytes(v, &l1), *b2 = loc_bytes(loc, &l2);
	assert_int_equal(l1, l2);
	assert_memory_equal(b1, b2, l1);
	ocapn_value *back;
	assert_int_equal(ocapn_locator_to_value(loc, wk->arena, &back), 0);
	assert_true(ocapn_value_equal(v, back));
	char *s = peer_uri(loc);
	ocapn_locator *again = parse_peer(s);
	assert_same_locator(loc, again);
	/* The unix-domain-socket designator and hint keys are base32 of
	 * 32-byte keys. */
	size_t n;
	const char *t = ocapn_locator_transport(loc, &n);
	if (n == 18 && !memcmp(t, "unix-domain-socket", 18)) {
		const char *d = ocapn_locator_designator(loc, &n);
		ocapn_buffer kb, eb;
		ocapn_buffer_init(&kb);
		ocapn_buffer_init(&eb);
		assert_int_equal(n, 52);
		assert_int_equal(ocapn_base32_decode(d, n, &kb, NULL), 0);
		assert_int_equal(kb.len, 32);
		assert_int_equal(ocapn_base32_encode(kb.data, kb.len, &eb,
				     NULL),
		    0);
		assert_str((char *)eb.data, eb.len, d, n);
		ocapn_buffer_release(&kb, NULL);
		ocapn_buffer_release(&eb, NULL);
	}
	if (ocapn_locator_hints_are_dict(loc))
		wk->dict_hints++;
	else
		wk->f_hints++;
	wk->peers++;
	free(s);
	free(b1);
	free(b2);
	ocapn_locator_free(again);
	ocapn_locator_free(loc);
}

static void
walk_value(struct walk *wk, const ocapn_value *v)
{
	if (ocapn_value_is_record(v, "ocapn-peer", SIZE_MAX))
		check_peer(wk, v);
	if (v->kind == OCAPN_LIST || v->kind == OCAPN_SET ||
	    v->kind == OCAPN_RECORD || v->kind == OCAPN_DICT) {
		size_t n = v->kind == OCAPN_DICT ? 2 * (size_t)v->len : v->len;
		for (size_t i = 0; i < n; i++)
			walk_value(wk, &v->u.items[i]);
	}
}

/*
 * Decode a capture stream (for control streams, skipping the 4 bytes
 * sent with each passed descriptor after uds:new-connection) and call
 * `fn` on each value.
 */
static void
for_each_value(const char *rel, void (*fn)(void *, const ocapn_value *),
    void *ctx, ocapn_arena *arena)
{
	size_t len;
	uint8_t *buf = tu_read_data(rel, &len);
	ocapn_syrup_decoder *dec = ocapn_syrup_decoder_new(0, NULL);
	assert_non_null(dec);
	size_t off = 0;
	while (off < len) {
		ocapn_value *v;
		size_t used;
		int rc = ocapn_syrup_decode(dec, arena, buf + off, len - off,
		    &v, &used);
		if (rc) {
			size_t eo;
			const char *why = ocapn_syrup_decoder_error(dec, &eo);
			fail_msg("%s: decode failed at %zu: %s", rel, off + eo,
			    why);
		}
		off += used;
		fn(ctx, v);
		if (ocapn_value_is_record(v, "uds:new-connection", 2)) {
			assert_true(len - off >= 4);
			assert_memory_equal(buf + off, "\x39\x30\x00\x00", 4);
			off += 4;
		}
	}
	ocapn_syrup_decoder_free(dec);
	free(buf);
}

static void
walk_cb(void *ctx, const ocapn_value *v)
{
	walk_value(ctx, v);
}

static const char *const scenarios[] = {"testuds-all-scenarios",
    "testuds-bad-swiss-fetch", "testuds-op-get-index-untag",
    "testuds-value-encodings", "uds-op-abort", "uds-pipelined-car-factory",
    "uds-promise-resolver-break", "uds-remote-exception-broken-pipeline",
    "uds-session-fetch-echo", "uds-third-party-handoff"};

/* Every ocapn-peer record Goblins sent re-encodes byte-identically and
 * survives the URI form. */
static void
test_goblins_inband_locators(void **state)
{
	(void)state;
	struct walk wk = {ocapn_arena_new(NULL), 0, 0, 0};
	assert_non_null(wk.arena);
	size_t files = 0;
	for (size_t d = 0; d < sizeof(scenarios) / sizeof(*scenarios); d++) {
		char dir[256];
		snprintf(dir, sizeof(dir), "goblins-captures/%s",
		    scenarios[d]);
		static const char *const prefixes[] = {"captp", "ctl"};
		for (int p = 0; p < 2; p++) {
			char **list = tu_list_data(dir, prefixes[p], ".bin");
			for (char **f = list; *f; f++) {
				for_each_value(*f, walk_cb, &wk, wk.arena);
				ocapn_arena_reset(wk.arena);
				files++;
			}
			tu_free_list(list);
		}
	}
	assert_int_equal(files, 24 + 6 * 4 + 2);
	/* uds:register and the testuds peers carry hints f; every other
	 * locator a dict. */
	assert_int_equal(wk.f_hints, 13 + 8);
	/* Counted independently in the raw bytes. */
	assert_int_equal(wk.dict_hints, 52);
	ocapn_arena_free(wk.arena);
}

/* The peer URIs of CAPTURES.md name exactly the locators the peers sent
 * in their op:start-session. */
static void
test_goblins_uris(void **state)
{
	(void)state;
	static const struct {
		const char *dir, *uri;
	} peers[] = {
	    {"testuds-all-scenarios", "ocapn://testsuitepeer.testuds"},
	    {"uds-op-abort",
		"ocapn://xcp5lezcbavgpb62au6ygeoztcshtahpnvddgcy7vemdqjrvi2sa."
		"unix-domain-socket?m4txtllsy2kfqhkisvwpadlyqayhophnxxvlmnlve7"
		"sf6wtoztgq=t"},
	    {"uds-pipelined-car-factory",
		"ocapn://4hfqugycdl5wittzb7xyaxsml2n64im2psa5tv7uluhow4hvyo6q."
		"unix-domain-socket?zjt57eoixeowqjtirshus5h64kws5uysdzw2jxb2bh"
		"iuvaarl3nq=t"},
	    {"uds-third-party-handoff",
		"ocapn://yyfbb73ugwbym75jcnas3bzmmnantmy7r3d6swujli6myzjam4xq."
		"unix-domain-socket?ililvojykqsvqtzbftuhs23ecbmghlbsjbo56d5eal"
		"rgzeomztcq=t"},
	};
	for (size_t i = 0; i < sizeof(peers) / sizeof(*peers); i++) {
		ocapn_locator *loc = parse_peer(peers[i].uri);
		char *s = peer_uri(loc);
		assert_string_equal(s, peers[i].uri);
		free(s);
		/* The acceptor's start-session (captp1.a2c) or, for the
		 * testuds captures where the relay sits the other way, the
		 * one of either direction naming the same peer. */
		int matched = 0;
		static const char *const files[] = {"captp1.a2c.bin",
		    "captp1.c2a.bin"};
		for (int f = 0; f < 2; f++) {
			char rel[256];
			snprintf(rel, sizeof(rel), "goblins-captures/%s/%s",
			    peers[i].dir, files[f]);
			size_t len;
			uint8_t *buf = tu_read_data(rel, &len);
			ocapn_syrup_decoder *dec = ocapn_syrup_decoder_new(0,
			    NULL);
			ocapn_arena *arena = ocapn_arena_new(NULL);
			ocapn_value *v;
			size_t used;
			assert_int_equal(ocapn_syrup_decode(dec, arena, buf,
					     len, &v, &used),
			    0);
			assert_true(ocapn_value_is_record(v,
			    "op:start-session", 4));
			const ocapn_value *lv = ocapn_value_item(v, 2);
			ocapn_locator *cap = NULL;
			assert_int_equal(ocapn_locator_from_value(lv, NULL,
					     &cap, NULL),
			    0);
			if (ocapn_locator_same_peer(loc, cap)) {
				/* Byte-identical to what Goblins sent: the
				 * record starts 4 bytes ("<10'") before its
				 * label's text. */
				size_t bl;
				uint8_t *bb = loc_bytes(loc, &bl);
				const uint8_t *lab = lv->u.items[0].u.p;
				assert_true(lab >= buf + 4);
				size_t at = (size_t)(lab - buf) - 4;
				assert_true(at + bl <= len);
				assert_memory_equal(buf + at, "<10'", 4);
				assert_memory_equal(buf + at, bb, bl);
				free(bb);
				matched++;
			}
			ocapn_locator_free(cap);
			ocapn_arena_free(arena);
			ocapn_syrup_decoder_free(dec);
			free(buf);
		}
		assert_int_equal(matched, 1);
		ocapn_locator_free(loc);
	}
}

/*
 * The unix-domain-socket designators and hint keys are base32 of real
 * Ed25519 keys: in each introduction-server handshake, the server's
 * signature of the peer's challenge verifies with the key whose base32 is
 * the hint key, and the peer's signature of the server's challenge
 * verifies with the key decoded from its designator.
 */
struct uds_ctl {
	ocapn_locator *registered;
	uint8_t client_challenge[64], server_challenge[64], peer_sig[64];
	uint8_t server_pk[32], server_sig[64];
	int seen;
};

static void
copy64(uint8_t *out, const ocapn_value *v)
{
	assert_non_null(v);
	assert_int_equal(v->kind, OCAPN_BYTES);
	assert_int_equal(v->len, 64);
	memcpy(out, v->u.p, 64);
}

static void
uds_p2s_cb(void *ctx, const ocapn_value *v)
{
	struct uds_ctl *c = ctx;
	if (ocapn_value_is_record(v, "uds:register", 2)) {
		assert_int_equal(ocapn_locator_from_value(ocapn_value_item(v,
								 0),
				     NULL, &c->registered, NULL),
		    0);
		copy64(c->client_challenge, ocapn_value_item(v, 1));
		c->seen |= 1;
	} else if (ocapn_value_is_record(v, "uds:signature", 2)) {
		copy64(c->server_challenge, ocapn_value_item(v, 0));
		copy64(c->peer_sig, ocapn_value_item(v, 1));
		c->seen |= 2;
	}
}

static void
uds_s2p_cb(void *ctx, const ocapn_value *v)
{
	struct uds_ctl *c = ctx;
	if (!ocapn_value_is_record(v, "uds:server-response", 3))
		return;
	const char *why = NULL;
	if (ocapn__parse_pubkey(ocapn_value_item(v, 0), c->server_pk, &why) ||
	    ocapn__parse_sigval(ocapn_value_item(v, 2), c->server_sig, &why))
		fail_msg("uds:server-response: %s", why);
	uint8_t ch[64];
	copy64(ch, ocapn_value_item(v, 1));
	/* The challenge the peer answers is the one the server sent. */
	if (c->seen & 2)
		assert_memory_equal(ch, c->server_challenge, 64);
	memcpy(c->server_challenge, ch, 64);
	c->seen |= 4;
}

static void
test_goblins_uds_keys(void **state)
{
	(void)state;
	size_t checked = 0;
	for (size_t d = 4; d < sizeof(scenarios) / sizeof(*scenarios); d++) {
		char dir[256];
		snprintf(dir, sizeof(dir), "goblins-captures/%s",
		    scenarios[d]);
		for (int n = 1; n <= 3; n++) {
			char p2s[300], s2p[300];
			snprintf(p2s, sizeof(p2s), "%s/ctl%d.p2s.bin", dir, n);
			snprintf(s2p, sizeof(s2p), "%s/ctl%d.s2p.bin", dir, n);
			if (!tu_data_exists(p2s))
				continue;
			struct uds_ctl c;
			memset(&c, 0, sizeof(c));
			ocapn_arena *arena = ocapn_arena_new(NULL);
			for_each_value(s2p, uds_s2p_cb, &c, arena);
			for_each_value(p2s, uds_p2s_cb, &c, arena);
			assert_int_equal(c.seen, 7);
			assert_false(
			    ocapn_locator_hints_are_dict(c.registered));
			/* The server signed the peer's challenge. */
			assert_int_equal(ocapn__verify(c.server_pk,
					     c.client_challenge, 64,
					     c.server_sig),
			    OCAPN_OK);
			/* The peer signed the server's challenge with the
			 * key its designator names. */
			size_t dl;
			const char *desig = ocapn_locator_designator(
			    c.registered, &dl);
			ocapn_buffer key;
			ocapn_buffer_init(&key);
			assert_int_equal(ocapn_base32_decode(desig, dl, &key,
					     NULL),
			    0);
			assert_int_equal(key.len, 32);
			assert_int_equal(ocapn__verify(key.data,
					     c.server_challenge, 64,
					     c.peer_sig),
			    OCAPN_OK);
			c.peer_sig[9] ^= 2;
			assert_int_equal(ocapn__verify(key.data,
					     c.server_challenge, 64,
					     c.peer_sig),
			    OCAPN_E_SIGNATURE);
			ocapn_buffer_release(&key, NULL);
			/* The hint key of the peers' in-band locators is
			 * the server key in base32. */
			ocapn_buffer hk;
			ocapn_buffer_init(&hk);
			assert_int_equal(ocapn_base32_encode(c.server_pk, 32,
					     &hk, NULL),
			    0);
			char cap[300];
			snprintf(cap, sizeof(cap), "%s/captp1.a2c.bin", dir);
			size_t len;
			uint8_t *buf = tu_read_data(cap, &len);
			ocapn_syrup_decoder *dec = ocapn_syrup_decoder_new(0,
			    NULL);
			ocapn_value *v;
			size_t used;
			assert_int_equal(ocapn_syrup_decode(dec, arena, buf,
					     len, &v, &used),
			    0);
			ocapn_locator *loc = NULL;
			assert_int_equal(ocapn_locator_from_value(
					     ocapn_value_item(v, 2), NULL,
					     &loc, NULL),
			    0);
			assert_int_equal(ocapn_locator_hint_count(loc), 1);
			size_t vl;
			ASSERT_STR(ocapn_locator_hint(loc, (char *)hk.data,
				       &vl),
			    vl, "t");
			ocapn_locator_free(loc);
			ocapn_syrup_decoder_free(dec);
			free(buf);
			ocapn_buffer_release(&hk, NULL);
			ocapn_locator_free(c.registered);
			ocapn_arena_free(arena);
			checked++;
		}
	}
	/* Five two-peer scenarios and the three-peer handoff. */
	assert_int_equal(checked, 5 * 2 + 3);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_rfc4648_vectors),
	    cmocka_unit_test(test_base_encodings_edges),
	    cmocka_unit_test(test_locator_api),
	    cmocka_unit_test(test_locator_values),
	    cmocka_unit_test(test_uri_round_trips),
	    cmocka_unit_test(test_uri_printing),
	    cmocka_unit_test(test_uri_errors),
	    cmocka_unit_test(test_sturdyrefs),
	    cmocka_unit_test(test_huge_inputs),
	    cmocka_unit_test(test_allocation_failures),
	    cmocka_unit_test(test_goblins_inband_locators),
	    cmocka_unit_test(test_goblins_uris),
	    cmocka_unit_test(test_goblins_uds_keys),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
