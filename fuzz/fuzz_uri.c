/*
 * libFuzzer target for locators: the input is parsed as a peer URI, as a
 * sturdyref URI, as base32 and base64url text, and decoded as Syrup and
 * handed to the locator and sturdyref value parsers.  Whatever parses
 * must print, parse again and compare equal (same peer, identical hints
 * and hint kind, identical swiss number); any violation aborts.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ocapn/ocapn.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                     \
	do {                                                            \
		if (!(cond)) {                                          \
			fprintf(stderr, "%s:%d: check failed: %s\n",    \
			    __FILE__, __LINE__, #cond);                 \
			abort();                                        \
		}                                                       \
	} while (0)

static void
check_identical(const ocapn_locator *a, const ocapn_locator *b)
{
	CHECK(ocapn_locator_same_peer(a, b));
	CHECK(ocapn_locator_hints_are_dict(a) ==
	    ocapn_locator_hints_are_dict(b));
	size_t n = ocapn_locator_hint_count(a);
	CHECK(ocapn_locator_hint_count(b) == n);
	for (size_t i = 0; i < n; i++) {
		const char *ka, *va, *kb, *vb;
		size_t kal, val, kbl, vbl;
		CHECK(ocapn_locator_hint_at(a, i, &ka, &kal, &va, &val) == 0);
		CHECK(ocapn_locator_hint_at(b, i, &kb, &kbl, &vb, &vbl) == 0);
		CHECK(kal == kbl && memcmp(ka, kb, kal) == 0);
		CHECK(val == vbl && memcmp(va, vb, val) == 0);
		CHECK(ka[kal] == 0 && va[val] == 0);
	}
	CHECK(ocapn_locator_hint_at(a, n, NULL, NULL, NULL, NULL) ==
	    OCAPN_E_RANGE);
}

/* Encode a locator, decode the bytes and parse the value again. */
static void
check_syrup_round_trip(const ocapn_locator *loc)
{
	ocapn_syrup_writer *w = ocapn_syrup_writer_new(0, NULL);
	ocapn_syrup_decoder *dec = ocapn_syrup_decoder_new(0, NULL);
	ocapn_arena *arena = ocapn_arena_new(NULL);
	CHECK(w && dec && arena);
	CHECK(ocapn_locator_write(loc, w) == 0);
	const uint8_t *p;
	size_t n;
	CHECK(ocapn_syrup_writer_finish(w, &p, &n) == 0);
	ocapn_value *v;
	CHECK(ocapn_syrup_decode_one(dec, arena, p, n, &v) == 0);
	ocapn_locator *again = NULL;
	CHECK(ocapn_locator_from_value(v, NULL, &again, NULL) == 0);
	check_identical(loc, again);
	ocapn_value *v2;
	CHECK(ocapn_locator_to_value(again, arena, &v2) == 0);
	CHECK(ocapn_value_equal(v, v2));
	ocapn_locator_free(again);
	ocapn_arena_free(arena);
	ocapn_syrup_decoder_free(dec);
	ocapn_syrup_writer_free(w);
}

/* Print a locator, parse the URI again: identical, and printing is a
 * fixed point. */
static void
check_uri_round_trip(const ocapn_locator *loc)
{
	ocapn_buffer b, b2;
	ocapn_buffer_init(&b);
	ocapn_buffer_init(&b2);
	CHECK(ocapn_locator_to_uri(loc, &b, NULL) == 0);
	CHECK(b.data[b.len] == 0 && strlen((char *)b.data) == b.len);
	ocapn_locator *again = NULL;
	size_t off = 0;
	const char *why = NULL;
	int rc = ocapn_locator_parse_uri((char *)b.data, b.len, NULL, &again,
	    &off, &why);
	if (rc)
		fprintf(stderr, "reparse of %s: %s at %zu\n", b.data, why, off);
	CHECK(rc == 0);
	check_identical(loc, again);
	CHECK(ocapn_locator_to_uri(again, &b2, NULL) == 0);
	CHECK(b.len == b2.len && memcmp(b.data, b2.data, b.len) == 0);
	ocapn_buffer_release(&b2, NULL);
	ocapn_buffer_release(&b, NULL);
	ocapn_locator_free(again);
}

static void
fuzz_peer_uri(const char *s, size_t n)
{
	ocapn_locator *loc = NULL;
	size_t off = SIZE_MAX;
	const char *why = NULL;
	int rc = ocapn_locator_parse_uri(s, n, NULL, &loc, &off, &why);
	if (rc) {
		CHECK(rc == OCAPN_E_SYNTAX && loc == NULL);
		CHECK(off <= n && why && *why);
		return;
	}
	check_uri_round_trip(loc);
	check_syrup_round_trip(loc);
	ocapn_locator_free(loc);
}

static void
check_same_sturdyref(const ocapn_sturdyref *a, const ocapn_sturdyref *b)
{
	check_identical(ocapn_sturdyref_locator(a), ocapn_sturdyref_locator(b));
	size_t la, lb;
	const uint8_t *sa = ocapn_sturdyref_swiss(a, &la);
	const uint8_t *sb = ocapn_sturdyref_swiss(b, &lb);
	CHECK(la == lb && (la == 0 || memcmp(sa, sb, la) == 0));
}

static void
fuzz_sturdyref_uri(const char *s, size_t n)
{
	ocapn_sturdyref *sr = NULL;
	size_t off = SIZE_MAX;
	const char *why = NULL;
	int rc = ocapn_sturdyref_parse_uri(s, n, NULL, &sr, &off, &why);
	if (rc) {
		CHECK(rc == OCAPN_E_SYNTAX && sr == NULL);
		CHECK(off <= n && why && *why);
		return;
	}
	ocapn_buffer b;
	ocapn_buffer_init(&b);
	CHECK(ocapn_sturdyref_to_uri(sr, &b, NULL) == 0);
	CHECK(b.data[b.len] == 0);
	ocapn_sturdyref *again = NULL;
	rc = ocapn_sturdyref_parse_uri((char *)b.data, b.len, NULL, &again,
	    &off, &why);
	if (rc)
		fprintf(stderr, "reparse of %s: %s at %zu\n", b.data, why, off);
	CHECK(rc == 0);
	check_same_sturdyref(sr, again);
	/* The peer part alone is a peer URI. */
	ocapn_buffer pb;
	ocapn_buffer_init(&pb);
	CHECK(ocapn_locator_to_uri(ocapn_sturdyref_locator(sr), &pb, NULL) ==
	    0);
	ocapn_locator *peer = NULL;
	CHECK(ocapn_locator_parse_uri((char *)pb.data, pb.len, NULL, &peer,
		  NULL, NULL) == 0);
	check_identical(peer, ocapn_sturdyref_locator(sr));
	ocapn_locator_free(peer);
	ocapn_buffer_release(&pb, NULL);
	ocapn_buffer_release(&b, NULL);
	ocapn_sturdyref_free(again);
	ocapn_sturdyref_free(sr);
}

static void
fuzz_base_encodings(const char *s, size_t n)
{
	ocapn_buffer raw, enc;
	ocapn_buffer_init(&raw);
	ocapn_buffer_init(&enc);
	if (ocapn_base32_decode(s, n, &raw, NULL) == 0) {
		CHECK(ocapn_base32_encode(raw.data, raw.len, &enc, NULL) == 0);
		CHECK(enc.len == n);
		for (size_t i = 0; i < n; i++) {
			char c = s[i];
			if (c >= 'A' && c <= 'Z')
				c = (char)(c - 'A' + 'a');
			CHECK(enc.data[i] == (uint8_t)c);
		}
	}
	raw.len = enc.len = 0;
	if (ocapn_base64url_decode(s, n, &raw, NULL) == 0) {
		CHECK(ocapn_base64url_encode(raw.data, raw.len, &enc, NULL) ==
		    0);
		size_t m = n;
		while (m > 0 && s[m - 1] == '=')
			m--;
		CHECK(enc.len == m && (m == 0 || memcmp(enc.data, s, m) == 0));
	}
	ocapn_buffer_release(&raw, NULL);
	ocapn_buffer_release(&enc, NULL);
}

/* Encoded bytes of a value, or of a locator / sturdyref, must agree. */
static void
fuzz_values(const uint8_t *data, size_t size)
{
	ocapn_syrup_decoder *dec = ocapn_syrup_decoder_new(0, NULL);
	ocapn_arena *arena = ocapn_arena_new(NULL);
	ocapn_syrup_writer *w1 = ocapn_syrup_writer_new(0, NULL);
	ocapn_syrup_writer *w2 = ocapn_syrup_writer_new(0, NULL);
	CHECK(dec && arena && w1 && w2);
	ocapn_value *v;
	if (ocapn_syrup_decode_one(dec, arena, data, size, &v) != 0)
		goto out;
	const uint8_t *p1, *p2;
	size_t n1, n2;
	ocapn_syrup_write_value(w1, v);
	if (ocapn_syrup_writer_finish(w1, &p1, &n1) != 0)
		goto out;
	ocapn_locator *loc = NULL;
	const char *why = NULL;
	int rc = ocapn_locator_from_value(v, NULL, &loc, &why);
	if (rc == 0) {
		CHECK(ocapn_locator_write(loc, w2) == 0);
		CHECK(ocapn_syrup_writer_finish(w2, &p2, &n2) == 0);
		CHECK(n1 == n2 && memcmp(p1, p2, n1) == 0);
		check_uri_round_trip(loc);
		ocapn_locator_free(loc);
	} else {
		CHECK(rc == OCAPN_E_PROTOCOL && why && *why && !loc);
	}
	ocapn_sturdyref *sr = NULL;
	rc = ocapn_sturdyref_from_value(v, NULL, &sr, &why);
	if (rc == 0) {
		ocapn_syrup_writer_reset(w2);
		CHECK(ocapn_sturdyref_write(sr, w2) == 0);
		CHECK(ocapn_syrup_writer_finish(w2, &p2, &n2) == 0);
		CHECK(n1 == n2 && memcmp(p1, p2, n1) == 0);
		ocapn_buffer b;
		ocapn_buffer_init(&b);
		CHECK(ocapn_sturdyref_to_uri(sr, &b, NULL) == 0);
		ocapn_sturdyref *again = NULL;
		CHECK(ocapn_sturdyref_parse_uri((char *)b.data, b.len, NULL,
			  &again, NULL, NULL) == 0);
		check_same_sturdyref(sr, again);
		ocapn_sturdyref_free(again);
		ocapn_buffer_release(&b, NULL);
		ocapn_sturdyref_free(sr);
	} else {
		CHECK(rc == OCAPN_E_PROTOCOL && why && *why && !sr);
	}
out:
	ocapn_syrup_writer_free(w2);
	ocapn_syrup_writer_free(w1);
	ocapn_arena_free(arena);
	ocapn_syrup_decoder_free(dec);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	fuzz_peer_uri(s, size);
	fuzz_sturdyref_uri(s, size);
	fuzz_base_encodings(s, size);
	fuzz_values(data, size);
	return 0;
}
