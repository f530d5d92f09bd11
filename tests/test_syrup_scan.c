/*
 * The framing scanner: the Goblins capture streams fed in chunks of every
 * size frame exactly the values the decoder finds; errors, limits, sticky
 * errors, reset, pending counts and allocation.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "syrup_testutil.h"

/* Value end offsets of a stream, by the decoder. */
static size_t
decoder_ends(const uint8_t *s, size_t len, size_t *ends, size_t max)
{
	ocapn_syrup_decoder *dec = ocapn_syrup_decoder_new(0, NULL);
	ocapn_arena *arena = ocapn_arena_new(NULL);
	size_t off = 0, n = 0;
	while (n < max) {
		ocapn_value *v;
		size_t used;
		ocapn_arena_reset(arena);
		int rc = ocapn_syrup_decode(dec, arena, s + off, len - off, &v,
		    &used);
		if (rc == OCAPN_E_INCOMPLETE)
			break;
		assert_int_equal(rc, 0);
		off += used;
		ends[n++] = off;
	}
	ocapn_arena_free(arena);
	ocapn_syrup_decoder_free(dec);
	return n;
}

/*
 * Feed s[0..len) to `sc` in chunks of `chunk` bytes; store value end
 * offsets in ends[].  Returns the count; *rc_out is the last status.
 */
static size_t
scan_chunks(ocapn_syrup_scanner *sc, const uint8_t *s, size_t len,
    size_t chunk, size_t *ends, size_t max, int *rc_out)
{
	size_t n = 0, pos = 0;
	int rc = OCAPN_E_INCOMPLETE;
	while (pos < len) {
		size_t c = len - pos < chunk ? len - pos : chunk;
		/* A private copy of the chunk: no reads outside it. */
		uint8_t *piece = malloc(c);
		memcpy(piece, s + pos, c);
		size_t done = 0;
		while (done < c) {
			size_t used = 0;
			rc = ocapn_syrup_scanner_feed(sc, piece + done,
			    c - done, &used);
			if (rc == OCAPN_OK) {
				assert_true(used > 0 && used <= c - done);
				done += used;
				assert_true(n < max);
				ends[n++] = pos + done;
			} else if (rc == OCAPN_E_INCOMPLETE) {
				assert_int_equal(used, c - done);
				done = c;
			} else {
				free(piece);
				*rc_out = rc;
				return n;
			}
		}
		free(piece);
		pos += c;
	}
	*rc_out = rc;
	return n;
}

#define MAXV 4096

static void
test_capture_streams_every_chunk_size(void **state)
{
	(void)state;
	size_t ns;
	tu_msg *st = tu_capture_streams(&ns);
	assert_int_equal(ns, 24);
	size_t *want = malloc(MAXV * sizeof(size_t));
	size_t *got = malloc(MAXV * sizeof(size_t));
	unsigned long feeds = 0;
	for (size_t s = 0; s < ns; s++) {
		size_t nw = decoder_ends(st[s].data, st[s].len, want, MAXV);
		assert_true(nw > 0);
		assert_int_equal(want[nw - 1], st[s].len);
		ocapn_syrup_scanner *sc = ocapn_syrup_scanner_new(NULL, NULL);
		for (size_t chunk = 1; chunk <= st[s].len; chunk++) {
			int rc;
			size_t ng = scan_chunks(sc, st[s].data, st[s].len,
			    chunk, got, MAXV, &rc);
			if (ng != nw || memcmp(got, want, nw * sizeof(size_t)))
				fail_msg("%s: chunks of %zu: %zu values, want "
					 "%zu",
				    st[s].origin, chunk, ng, nw);
			assert_int_equal(rc, OCAPN_OK);
			assert_int_equal(ocapn_syrup_scanner_pending(sc), 0);
			feeds++;
		}
		ocapn_syrup_scanner_free(sc);
	}
	assert_true(feeds > 10000);
	free(want);
	free(got);
	tu_free_msgs(st, ns);
}

/* Every framed value decodes on its own, to the value the decoder finds
 * in the stream. */
static void
test_framed_values_decode(void **state)
{
	(void)state;
	size_t ns;
	tu_msg *st = tu_capture_streams(&ns);
	/* One long stream: the zoo, then every capture, whitespace between. */
	size_t zlen;
	uint8_t *zoo = tu_read_data("syrup/zoo.bin", &zlen);
	size_t total = zlen;
	for (size_t s = 0; s < ns; s++)
		total += st[s].len + 2;
	uint8_t *all = malloc(total);
	size_t len = 0;
	memcpy(all, zoo, zlen);
	len = zlen;
	for (size_t s = 0; s < ns; s++) {
		memcpy(all + len, "\n ", 2);
		len += 2;
		memcpy(all + len, st[s].data, st[s].len);
		len += st[s].len;
	}
	size_t *ends = malloc(MAXV * sizeof(size_t));
	ocapn_syrup_scanner *sc = ocapn_syrup_scanner_new(NULL, NULL);
	/* Chunk sizes from a fixed sequence. */
	uint32_t seed = 12345;
	size_t n = 0, pos = 0;
	while (pos < len) {
		seed = seed * 1103515245u + 12345u;
		size_t c = 1 + (seed >> 16) % 97;
		if (c > len - pos)
			c = len - pos;
		size_t done = 0;
		while (done < c) {
			size_t used;
			int rc = ocapn_syrup_scanner_feed(sc, all + pos + done,
			    c - done, &used);
			done += used;
			if (rc == OCAPN_OK)
				ends[n++] = pos + done;
			else
				assert_int_equal(rc, OCAPN_E_INCOMPLETE);
		}
		pos += c;
	}
	ocapn_syrup_scanner_free(sc);
	size_t *want = malloc(MAXV * sizeof(size_t));
	size_t nw = decoder_ends(all, len, want, MAXV);
	assert_int_equal(n, nw);
	assert_memory_equal(ends, want, n * sizeof(size_t));
	ocapn_syrup_decoder *dec = ocapn_syrup_decoder_new(0, NULL);
	ocapn_arena *a1 = ocapn_arena_new(NULL), *a2 = ocapn_arena_new(NULL);
	size_t start = 0;
	for (size_t i = 0; i < n; i++) {
		ocapn_value *framed, *streamed;
		size_t used;
		ocapn_arena_reset(a1);
		ocapn_arena_reset(a2);
		assert_int_equal(ocapn_syrup_decode_one(dec, a1, all + start,
				     ends[i] - start, &framed),
		    0);
		assert_int_equal(ocapn_syrup_decode(dec, a2, all + start,
				     len - start, &streamed, &used),
		    0);
		assert_int_equal(start + used, ends[i]);
		assert_true(ocapn_value_equal(framed, streamed));
		start = ends[i];
	}
	ocapn_arena_free(a1);
	ocapn_arena_free(a2);
	ocapn_syrup_decoder_free(dec);
	free(want);
	free(ends);
	free(all);
	free(zoo);
	tu_free_msgs(st, ns);
}

static void
test_whitespace_and_pending(void **state)
{
	(void)state;
	ocapn_syrup_scanner *sc = ocapn_syrup_scanner_new(NULL, NULL);
	size_t used;
	/* Whitespace before a value belongs to it. */
	assert_int_equal(ocapn_syrup_scanner_feed(sc, B(" \n1+ "), &used), 0);
	assert_int_equal(used, 4);
	assert_int_equal(ocapn_syrup_scanner_feed(sc, B(" "), &used),
	    OCAPN_E_INCOMPLETE);
	assert_int_equal(used, 1);
	assert_int_equal(ocapn_syrup_scanner_pending(sc), 1);
	/* A value split inside its length, its type byte and its payload. */
	assert_int_equal(ocapn_syrup_scanner_feed(sc, B("[1"), &used),
	    OCAPN_E_INCOMPLETE);
	assert_int_equal(ocapn_syrup_scanner_pending(sc), 3);
	assert_int_equal(ocapn_syrup_scanner_feed(sc, B("2"), &used),
	    OCAPN_E_INCOMPLETE);
	assert_int_equal(ocapn_syrup_scanner_feed(sc, B(":abcde"), &used),
	    OCAPN_E_INCOMPLETE);
	assert_int_equal(ocapn_syrup_scanner_pending(sc), 10);
	assert_int_equal(ocapn_syrup_scanner_feed(sc, B("fghijkl]t"), &used),
	    0);
	assert_int_equal(used, 8);
	assert_int_equal(ocapn_syrup_scanner_pending(sc), 0);
	/* Empty payloads end at their type byte; D and F payloads are
	 * skipped whatever they hold. */
	assert_int_equal(ocapn_syrup_scanner_feed(sc, B("0:"), &used), 0);
	assert_int_equal(ocapn_syrup_scanner_feed(sc, B("0\"0'"), &used), 0);
	assert_int_equal(used, 2);
	assert_int_equal(ocapn_syrup_scanner_feed(sc,
			     B("D]]]]]]]]F[[[[t"), &used),
	    0);
	assert_int_equal(used, 9);
	assert_int_equal(ocapn_syrup_scanner_feed(sc, B("F[[[[t"), &used), 0);
	assert_int_equal(used, 5);
	/* Zero-length feed. */
	assert_int_equal(ocapn_syrup_scanner_feed(sc, NULL, 0, &used),
	    OCAPN_E_INCOMPLETE);
	assert_int_equal(used, 0);
	/* Reset forgets the partial value. */
	assert_int_equal(ocapn_syrup_scanner_feed(sc, B("[[1+"), &used),
	    OCAPN_E_INCOMPLETE);
	ocapn_syrup_scanner_reset(sc);
	assert_int_equal(ocapn_syrup_scanner_pending(sc), 0);
	assert_int_equal(ocapn_syrup_scanner_feed(sc, B("t"), &used), 0);
	ocapn_syrup_scanner_free(sc);
}

struct scan_bad {
	const char *in;
	size_t len;
	int code;
	size_t off;
	const char *why;
};

#define SBAD(s, code, off, why) {s, sizeof(s) - 1, code, off, why}

static void
check_bad(const ocapn_syrup_decoder *limits, const struct scan_bad *b)
{
	/* Byte at a time, so that the failing feed is the offending
	 * byte's. */
	ocapn_syrup_scanner *sc = ocapn_syrup_scanner_new(limits, NULL);
	int rc = OCAPN_E_INCOMPLETE;
	size_t i;
	for (i = 0; i < b->len; i++) {
		size_t used;
		rc = ocapn_syrup_scanner_feed(sc, (const uint8_t *)b->in + i, 1,
		    &used);
		if (rc != OCAPN_OK && rc != OCAPN_E_INCOMPLETE)
			break;
	}
	size_t off = 999;
	const char *why = ocapn_syrup_scanner_error(sc, &off);
	if (rc != b->code || off != b->off || !strstr(why, b->why))
		fail_msg("'%.*s': got %s at %zu (%s), want %s at %zu (%s)",
		    (int)b->len, b->in, ocapn_err_name(rc), off, why,
		    ocapn_err_name(b->code), b->off, b->why);
	/* Sticky, with the same code. */
	size_t used;
	assert_int_equal(ocapn_syrup_scanner_feed(sc, B("t"), &used), rc);
	assert_int_equal(ocapn_syrup_scanner_feed(sc, NULL, 0, &used), rc);
	ocapn_syrup_scanner_error(sc, &off);
	assert_int_equal(off, b->off);
	/* Reset clears it. */
	ocapn_syrup_scanner_reset(sc);
	assert_string_equal(ocapn_syrup_scanner_error(sc, NULL), "");
	assert_int_equal(ocapn_syrup_scanner_feed(sc, B("t"), &used), 0);
	ocapn_syrup_scanner_free(sc);
}

static void
test_errors(void **state)
{
	(void)state;
	/* Offsets count from the start of the stream, across values. */
	static const struct scan_bad bad[] = {
	    SBAD("x", OCAPN_E_SYNTAX, 0, "unknown type byte"),
	    SBAD("1+2+x", OCAPN_E_SYNTAX, 4, "unknown type byte"),
	    SBAD("t [ 1+ ( ]", OCAPN_E_SYNTAX, 7, "unknown type byte"),
	    SBAD("]", OCAPN_E_SYNTAX, 0, "does not match"),
	    SBAD("[}", OCAPN_E_SYNTAX, 1, "does not match"),
	    SBAD("t<1'a$", OCAPN_E_SYNTAX, 5, "does not match"),
	    SBAD("12a", OCAPN_E_SYNTAX, 2, "after digits"),
	    SBAD("1 +", OCAPN_E_SYNTAX, 1, "after digits"),
	    SBAD("99999999999999999999999:", OCAPN_E_LIMIT, 0, "atom limit"),
	    SBAD("[t67108865'", OCAPN_E_LIMIT, 2, "atom limit"),
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
		check_bad(NULL, &bad[i]);

	ocapn_syrup_decoder *lim = ocapn_syrup_decoder_new(0, NULL);
	assert_int_equal(ocapn_syrup_decoder_set_limit(lim,
			     OCAPN_SYRUP_MAX_DEPTH, 2),
	    0);
	assert_int_equal(ocapn_syrup_decoder_set_limit(lim,
			     OCAPN_SYRUP_MAX_ATOM, 5),
	    0);
	assert_int_equal(ocapn_syrup_decoder_set_limit(lim,
			     OCAPN_SYRUP_MAX_TOTAL, 10),
	    0);
	static const struct scan_bad limited[] = {
	    SBAD("[[[", OCAPN_E_LIMIT, 2, "depth limit"),
	    SBAD("[[]][{#", OCAPN_E_LIMIT, 6, "depth limit"),
	    SBAD("6:abcdef", OCAPN_E_LIMIT, 0, "atom limit"),
	    SBAD("t[6\"", OCAPN_E_LIMIT, 2, "atom limit"),
	    SBAD("100000+", OCAPN_E_LIMIT, 0, "more digits"),
	    SBAD("1+[1000000", OCAPN_E_LIMIT, 3, "more digits"),
	    /* total: per value, whitespace before it included */
	    SBAD("[1+2+3+4+5+]", OCAPN_E_LIMIT, 10, "total size"),
	    SBAD("t  [1+2+3+4+]", OCAPN_E_LIMIT, 11, "total size"),
	    SBAD("[tttt5:", OCAPN_E_LIMIT, 5, "total size"),
	    SBAD("[1+D\x00\x00\x00\x00\x00\x00\x00\x00]", OCAPN_E_LIMIT, 10,
		"total size"),
	};
	for (size_t i = 0; i < sizeof(limited) / sizeof(*limited); i++)
		check_bad(lim, &limited[i]);
	/* Within the limits. */
	ocapn_syrup_scanner *sc = ocapn_syrup_scanner_new(lim, NULL);
	size_t used;
	assert_int_equal(ocapn_syrup_scanner_feed(sc, B("[[]]"), &used), 0);
	assert_int_equal(ocapn_syrup_scanner_feed(sc, B("5:abcde"), &used), 0);
	assert_int_equal(ocapn_syrup_scanner_feed(sc, B("[1+2+3+4+]"), &used),
	    0);
	assert_int_equal(ocapn_syrup_scanner_feed(sc, B("[t5:abcde]"), &used),
	    0);
	assert_int_equal(ocapn_syrup_scanner_feed(sc, B("99999-"), &used), 0);
	ocapn_syrup_scanner_free(sc);
	ocapn_syrup_decoder_free(lim);

	/* Default depth limit (64) without a decoder. */
	uint8_t deep[65];
	memset(deep, '[', sizeof(deep));
	struct scan_bad d = {(const char *)deep, 65, OCAPN_E_LIMIT, 64,
	    "depth limit"};
	check_bad(NULL, &d);
}

/* A big bytestring is skipped by count, across many chunks. */
static void
test_large_payload(void **state)
{
	(void)state;
	size_t n = 1u << 20;
	uint8_t *s = malloc(n + 32);
	int h = sprintf((char *)s, "<3'big%zu:", n);
	memset(s + h, '[', n); /* payload bytes that look like syntax */
	s[h + n] = '>';
	size_t len = (size_t)h + n + 1;
	ocapn_syrup_scanner *sc = ocapn_syrup_scanner_new(NULL, NULL);
	size_t ends[4];
	int rc;
	assert_int_equal(scan_chunks(sc, s, len, 4096, ends, 4, &rc), 1);
	assert_int_equal(rc, 0);
	assert_int_equal(ends[0], len);
	ocapn_syrup_scanner_free(sc);
	free(s);
}

static void
test_no_allocation_while_feeding(void **state)
{
	(void)state;
	tu_counter c;
	tu_counter_init(&c);
	ocapn_syrup_scanner *sc = ocapn_syrup_scanner_new(NULL, &c.alloc);
	assert_non_null(sc);
	unsigned long after_new = c.calls;
	size_t ns;
	tu_msg *st = tu_capture_streams(&ns);
	size_t *ends = malloc(MAXV * sizeof(size_t));
	for (size_t s = 0; s < ns; s++) {
		int rc;
		scan_chunks(sc, st[s].data, st[s].len, 7, ends, MAXV, &rc);
		assert_int_equal(rc, 0);
	}
	assert_int_equal(c.calls, after_new);
	ocapn_syrup_scanner_free(sc);
	assert_int_equal(c.live_bytes, 0);
	/* Creation failure is clean. */
	for (unsigned long lim = 1; lim <= 2; lim++) {
		tu_counter_init(&c);
		c.fail_after = lim;
		sc = ocapn_syrup_scanner_new(NULL, &c.alloc);
		if (lim < 2)
			assert_null(sc);
		ocapn_syrup_scanner_free(sc);
		assert_int_equal(c.live_bytes, 0);
	}
	free(ends);
	tu_free_msgs(st, ns);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_capture_streams_every_chunk_size),
	    cmocka_unit_test(test_framed_values_decode),
	    cmocka_unit_test(test_whitespace_and_pending),
	    cmocka_unit_test(test_errors),
	    cmocka_unit_test(test_large_payload),
	    cmocka_unit_test(test_no_allocation_while_feeding),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
