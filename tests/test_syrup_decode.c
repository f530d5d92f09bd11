/*
 * The strict Syrup decoder: every type and its edge values, every
 * rejection class with its exact offset, limits, flags, incremental
 * decoding at every split point, and allocation behaviour.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "syrup_testutil.h"

struct fx {
	ocapn_syrup_decoder *dec;
	ocapn_arena *arena;
};

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	f->dec = ocapn_syrup_decoder_new(0, NULL);
	f->arena = ocapn_arena_new(NULL);
	if (!f->dec || !f->arena)
		return -1;
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;
	ocapn_syrup_decoder_free(f->dec);
	ocapn_arena_free(f->arena);
	free(f);
	return 0;
}

/* Decode buf as exactly one value (decode_one) and check that it
 * re-encodes to the same bytes (with F kept as F). */
static ocapn_value *
ok(struct fx *f, const uint8_t *buf, size_t len)
{
	ocapn_value *v = NULL;
	int rc = ocapn_syrup_decode_one(f->dec, f->arena, buf, len, &v);
	if (rc) {
		size_t off;
		const char *why = ocapn_syrup_decoder_error(f->dec, &off);
		fail_msg("%.*s: %s at %zu: %s", (int)len, (const char *)buf,
		    ocapn_err_name(rc), off, why);
	}
	size_t elen;
	uint8_t *enc = tu_encode(v, OCAPN_SYRUP_WRITE_FLOAT32, &elen);
	assert_int_equal(elen, len);
	assert_memory_equal(enc, buf, len);
	free(enc);
	return v;
}

/* Decoding buf fails with `code` at `offset`, with a reason containing
 * `why`, and leaves the arena as it was. */
static void
rejects_with(ocapn_syrup_decoder *dec, ocapn_arena *arena,
    const uint8_t *buf, size_t len, int code, size_t offset, const char *why)
{
	size_t before = ocapn_arena_used(arena);
	ocapn_value *v = NULL;
	int rc = ocapn_syrup_decode_one(dec, arena, buf, len, &v);
	size_t off = 12345;
	const char *reason = ocapn_syrup_decoder_error(dec, &off);
	if (rc != code || off != offset || !strstr(reason, why))
		fail_msg("input '%.*s': got %s at %zu (%s), want %s at %zu "
			 "(%s)",
		    (int)len, (const char *)buf, ocapn_err_name(rc), off,
		    reason, ocapn_err_name(code), offset, why);
	assert_int_equal(ocapn_arena_used(arena), before);
}

static void
rejects(struct fx *f, const uint8_t *buf, size_t len, int code,
    size_t offset, const char *why)
{
	rejects_with(f->dec, f->arena, buf, len, code, offset, why);
}

/* ---- atoms ---------------------------------------------------------- */

static void
test_booleans(void **state)
{
	struct fx *f = *state;
	bool b;
	ocapn_value *v = ok(f, B("t"));
	assert_int_equal(v->kind, OCAPN_BOOL);
	assert_int_equal(ocapn_value_get_bool(v, &b), 0);
	assert_true(b);
	v = ok(f, B("f"));
	assert_int_equal(ocapn_value_get_bool(v, &b), 0);
	assert_false(b);
}

static void
check_fast_int(struct fx *f, const uint8_t *buf, size_t len, int64_t want)
{
	ocapn_value *v = ok(f, buf, len);
	assert_int_equal(v->kind, OCAPN_INT);
	assert_int_equal(v->flags, 0);
	assert_true(ocapn_value_fits_int64(v));
	int64_t i;
	assert_int_equal(ocapn_value_get_int64(v, &i), 0);
	assert_true(i == want);
	uint64_t u = 77;
	if (want >= 0) {
		assert_true(ocapn_value_fits_uint64(v));
		assert_int_equal(ocapn_value_get_uint64(v, &u), 0);
		assert_true(u == (uint64_t)want);
	} else {
		assert_false(ocapn_value_fits_uint64(v));
		assert_int_equal(ocapn_value_get_uint64(v, &u), OCAPN_E_RANGE);
		assert_true(u == 77); /* untouched on failure */
	}
}

static void
test_integers_int64(void **state)
{
	struct fx *f = *state;
	check_fast_int(f, B("0+"), 0);
	check_fast_int(f, B("1+"), 1);
	check_fast_int(f, B("1-"), -1);
	check_fast_int(f, B("72+"), 72);
	check_fast_int(f, B("9223372036854775807+"), INT64_MAX);
	check_fast_int(f, B("9223372036854775807-"), -INT64_MAX);
	check_fast_int(f, B("9223372036854775808-"), INT64_MIN);
}

static void
check_bigint(struct fx *f, const uint8_t *buf, size_t len, bool neg,
    bool fits_u64)
{
	ocapn_value *v = ok(f, buf, len);
	assert_int_equal(v->kind, OCAPN_INT);
	assert_true(v->flags & OCAPN_VALUE_BIGINT);
	assert_int_equal((v->flags & OCAPN_VALUE_NEGATIVE) != 0, neg);
	assert_int_equal(v->len, len - 1);
	/* The digits are a slice of the input. */
	assert_ptr_equal(v->u.p, buf);
	assert_false(ocapn_value_fits_int64(v));
	int64_t i = 5;
	assert_int_equal(ocapn_value_get_int64(v, &i), OCAPN_E_RANGE);
	assert_true(i == 5);
	assert_int_equal(ocapn_value_fits_uint64(v), fits_u64);
	uint64_t u;
	assert_int_equal(ocapn_value_get_uint64(v, &u),
	    fits_u64 ? OCAPN_OK : OCAPN_E_RANGE);
	/* Decimal text: sign then the digits. */
	char text[1100];
	size_t need;
	assert_int_equal(ocapn_value_get_int_text(v, text, sizeof(text),
			     &need),
	    0);
	assert_int_equal(need, len - 1 + (neg ? 1 : 0) + 1);
	assert_int_equal(strlen(text), need - 1);
	assert_memory_equal(text + (neg ? 1 : 0), buf, len - 1);
	assert_int_equal(ocapn_value_get_int_text(v, text, need - 1, &need),
	    OCAPN_E_NOSPACE);
}

static void
test_integers_big(void **state)
{
	struct fx *f = *state;
	/* 2^63 */
	check_bigint(f, B("9223372036854775808+"), false, true);
	ocapn_value *v = ok(f, B("9223372036854775808+"));
	uint64_t u;
	assert_int_equal(ocapn_value_get_uint64(v, &u), 0);
	assert_true(u == UINT64_C(9223372036854775808));
	/* -2^63 - 1 */
	check_bigint(f, B("9223372036854775809-"), true, false);
	/* 2^64 - 1, 2^64, -2^64 */
	check_bigint(f, B("18446744073709551615+"), false, true);
	v = ok(f, B("18446744073709551615+"));
	assert_int_equal(ocapn_value_get_uint64(v, &u), 0);
	assert_true(u == UINT64_MAX);
	check_bigint(f, B("18446744073709551616+"), false, false);
	check_bigint(f, B("18446744073709551616-"), true, false);
	/* The Goblins value-encodings capture carries these. */
	check_bigint(f, B("1208925819614629174706176+"), false, false);
	check_bigint(f, B("1180591620717411303424-"), true, false);
	/* A huge one: 1000 digits. */
	char huge[1002];
	huge[0] = '9';
	memset(huge + 1, '0', 999);
	huge[1000] = '-';
	huge[1001] = '\0';
	check_bigint(f, (const uint8_t *)huge, 1001, true, false);
}

static uint64_t
bits64(double d)
{
	uint64_t b;
	memcpy(&b, &d, 8);
	return b;
}

static void
check_double(struct fx *f, uint64_t bits)
{
	uint8_t buf[9] = {'D'};
	for (int i = 0; i < 8; i++)
		buf[1 + i] = (uint8_t)(bits >> (56 - 8 * i));
	ocapn_value *v = ok(f, buf, 9);
	assert_int_equal(v->kind, OCAPN_FLOAT64);
	assert_true(bits64(v->u.f64) == bits);
	double d;
	assert_int_equal(ocapn_value_get_float64(v, &d), 0);
	float x;
	assert_int_equal(ocapn_value_get_float32(v, &x), OCAPN_E_TYPE);
}

static void
test_float64(void **state)
{
	struct fx *f = *state;
	check_double(f, bits64(0.0));
	check_double(f, bits64(1.5));
	check_double(f, bits64(-0.25));
	check_double(f, bits64(-0.0));
	check_double(f, bits64(INFINITY));
	check_double(f, bits64(-INFINITY));
	check_double(f, bits64(5e-324));
	check_double(f, bits64(1.7976931348623157e308));
	check_double(f, UINT64_C(0x7ff8000000000000)); /* canonical NaN */
	ocapn_value *v = ok(f, B("D\x80\x00\x00\x00\x00\x00\x00\x00"));
	assert_true(signbit(v->u.f64));
	assert_true(v->u.f64 == 0.0);
}

static void
test_float64_nan_payloads(void **state)
{
	struct fx *f = *state;
	/* Any NaN is accepted; it re-encodes as the canonical NaN. */
	static const uint8_t nans[][9] = {
	    {'D', 0x7f, 0xf8, 0, 0, 0, 0, 0, 1},
	    {'D', 0xff, 0xf8, 0, 0, 0, 0, 0, 0},
	    {'D', 0x7f, 0xf0, 0, 0, 0, 0, 0, 1}, /* signalling */
	    {'D', 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
	};
	static const uint8_t canon[9] = {'D', 0x7f, 0xf8, 0, 0, 0, 0, 0, 0};
	for (size_t i = 0; i < sizeof(nans) / sizeof(*nans); i++) {
		ocapn_value *v;
		assert_int_equal(ocapn_syrup_decode_one(f->dec, f->arena,
				     nans[i], 9, &v),
		    0);
		assert_int_equal(v->kind, OCAPN_FLOAT64);
		assert_true(isnan(v->u.f64));
		size_t n;
		uint8_t *enc = tu_encode(v, 0, &n);
		assert_int_equal(n, 9);
		assert_memory_equal(enc, canon, 9);
		free(enc);
	}
}

static void
test_float32(void **state)
{
	struct fx *f = *state;
	/* 1.5f */
	const uint8_t in[] = {'F', 0x3f, 0xc0, 0x00, 0x00};
	ocapn_value *v = ok(f, in, sizeof(in));
	assert_int_equal(v->kind, OCAPN_FLOAT32);
	float x;
	assert_int_equal(ocapn_value_get_float32(v, &x), 0);
	assert_true(x == 1.5f);
	double d;
	assert_int_equal(ocapn_value_get_float64(v, &d), OCAPN_E_TYPE);
	/* By default it is widened to D, exactly. */
	size_t n;
	uint8_t *enc = tu_encode(v, 0, &n);
	const uint8_t widened[] = {'D', 0x3f, 0xf8, 0, 0, 0, 0, 0, 0};
	assert_int_equal(n, 9);
	assert_memory_equal(enc, widened, 9);
	free(enc);
	/* 0.1f widens to the double nearest the float, not to 0.1. */
	const uint8_t tenth[] = {'F', 0x3d, 0xcc, 0xcc, 0xcd};
	v = ok(f, tenth, sizeof(tenth));
	enc = tu_encode(v, 0, &n);
	double w = (double)0.1f;
	uint8_t want[9] = {'D'};
	for (int i = 0; i < 8; i++)
		want[1 + i] = (uint8_t)(bits64(w) >> (56 - 8 * i));
	assert_memory_equal(enc, want, 9);
	free(enc);
	/* -0.0f, infinity, and NaN payloads (canonical 7fc00000). */
	v = ok(f, B("F\x80\x00\x00\x00"));
	assert_true(signbit(v->u.f32));
	v = ok(f, B("F\xff\x80\x00\x00"));
	assert_true(isinf(v->u.f32) && v->u.f32 < 0);
	v = ok(f, B("F\x7f\xc0\x00\x00"));
	assert_true(isnan(v->u.f32));
	ocapn_value *odd;
	assert_int_equal(ocapn_syrup_decode_one(f->dec, f->arena,
			     B("F\xff\x80\x00\x01"), &odd),
	    0);
	assert_true(isnan(odd->u.f32));
	enc = tu_encode(odd, OCAPN_SYRUP_WRITE_FLOAT32, &n);
	assert_int_equal(n, 5);
	assert_memory_equal(enc, "F\x7f\xc0\x00\x00", 5);
	free(enc);
	enc = tu_encode(odd, 0, &n);
	assert_memory_equal(enc, "D\x7f\xf8\x00\x00\x00\x00\x00\x00", 9);
	free(enc);
}

static void
check_data(struct fx *f, const uint8_t *buf, size_t len, ocapn_kind kind,
    size_t hdr)
{
	ocapn_value *v = ok(f, buf, len);
	assert_int_equal(v->kind, kind);
	assert_int_equal(v->len, len - hdr);
	const uint8_t *p;
	size_t n;
	assert_int_equal(ocapn_value_get_data(v, &p, &n), 0);
	assert_int_equal(n, len - hdr);
	/* Without COPY_ATOMS the payload points into the input. */
	assert_ptr_equal(p, buf + hdr);
}

static void
test_bytes_strings_symbols(void **state)
{
	struct fx *f = *state;
	check_data(f, B("0:"), OCAPN_BYTES, 2);
	check_data(f, B("3:cat"), OCAPN_BYTES, 2);
	check_data(f, B("4:\x00\xff\xed\xa0"), OCAPN_BYTES, 2);
	check_data(f, B("0\""), OCAPN_STRING, 2);
	check_data(f, B("4\"bear"), OCAPN_STRING, 2);
	check_data(f, B("6\"bj\xc3\xb6rn"), OCAPN_STRING, 2);
	check_data(f, B("3\"\xe7\x86\x8a"), OCAPN_STRING, 2);
	check_data(f, B("4\"\xf0\x9f\x98\x80"), OCAPN_STRING, 2);
	check_data(f, B("3\"\xed\x9f\xbf"), OCAPN_STRING, 2); /* U+D7FF */
	check_data(f, B("3\"\xee\x80\x80"), OCAPN_STRING, 2); /* U+E000 */
	check_data(f, B("4\"\xf4\x8f\xbf\xbf"), OCAPN_STRING, 2);
	check_data(f, B("1\"\x00"), OCAPN_STRING, 2);
	check_data(f, B("0'"), OCAPN_SYMBOL, 2);
	check_data(f, B("5'fetch"), OCAPN_SYMBOL, 2);
	check_data(f, B("6'h\xc3\xa4mta"), OCAPN_SYMBOL, 2);
	check_data(f, B("10:0123456789"), OCAPN_BYTES, 3);
	ocapn_value *v = ok(f, B("5'fetch"));
	assert_true(ocapn_value_is_symbol(v, "fetch"));
	assert_false(ocapn_value_is_string(v, "fetch"));
}

/* ---- containers ----------------------------------------------------- */

static void
test_empty_containers(void **state)
{
	struct fx *f = *state;
	ocapn_value *v = ok(f, B("[]"));
	assert_int_equal(v->kind, OCAPN_LIST);
	assert_int_equal(ocapn_value_count(v), 0);
	v = ok(f, B("{}"));
	assert_int_equal(v->kind, OCAPN_DICT);
	assert_int_equal(ocapn_value_count(v), 0);
	v = ok(f, B("#$"));
	assert_int_equal(v->kind, OCAPN_SET);
	assert_int_equal(ocapn_value_count(v), 0);
	v = ok(f, B("<0'>"));
	assert_int_equal(v->kind, OCAPN_RECORD);
	assert_int_equal(ocapn_value_count(v), 0);
	assert_int_equal(ocapn_record_label(v)->kind, OCAPN_SYMBOL);
	v = ok(f, B("[[]{}#$<t>]"));
	assert_int_equal(ocapn_value_count(v), 4);
}

static void
test_containers(void **state)
{
	struct fx *f = *state;
	ocapn_value *v = ok(f, B("[1+2+3+]"));
	assert_int_equal(ocapn_value_count(v), 3);
	int64_t i;
	assert_int_equal(ocapn_value_get_int64(ocapn_value_item(v, 2), &i), 0);
	assert_int_equal(i, 3);
	assert_null(ocapn_value_item(v, 3));

	/* The spec's dict example. */
	v = ok(f, B("{3:age30+4:name5:Alice7:isAlivet}"));
	assert_int_equal(ocapn_value_count(v), 3);
	ocapn_value key;
	ocapn_value_set_bytes(&key, "name", 4);
	const ocapn_value *name = ocapn_dict_get(v, &key);
	assert_non_null(name);
	assert_int_equal(name->kind, OCAPN_BYTES);
	assert_int_equal(ocapn_dict_key(v, 0)->len, 3);
	assert_int_equal(ocapn_dict_val(v, 2)->kind, OCAPN_BOOL);
	assert_null(ocapn_dict_key(v, 3));

	v = ok(f, B("<6:person5:Alice30+t>"));
	assert_int_equal(ocapn_value_count(v), 3);
	assert_int_equal(ocapn_record_label(v)->kind, OCAPN_BYTES);
	v = ok(f, B("#1+2+3+$"));
	assert_int_equal(ocapn_value_count(v), 3);

	v = ok(f, B("<10'op:deliver<11'desc:export1+>[5'drive]0+f>"));
	assert_true(ocapn_value_is_record(v, "op:deliver", 4));
	assert_true(ocapn_value_is_record(v, "op:deliver", SIZE_MAX));
	assert_false(ocapn_value_is_record(v, "op:deliver", 3));
	assert_true(ocapn_value_is_record(ocapn_value_item(v, 0),
	    "desc:export", 1));
}

/* Sorting is by encoded bytes, not by value. */
static void
test_canonical_order_accepted(void **state)
{
	struct fx *f = *state;
	ok(f, B("#10+9+$"));         /* "10+" < "9+" */
	ok(f, B("#1\"b2\"aa$"));     /* the shorter length first */
	ok(f, B("#1+1-$"));          /* '+' (0x2b) < '-' (0x2d) */
	ok(f, B("{0\"t0'f0:t}"));    /* '"' < '\'' < ':' */
	ok(f, B("#[]{}$"));
	ok(f, B("{{1'a1+}1+{}0+}")); /* dicts as keys: '1' < '}' */
	ok(f, B("{[1+1+]t[1+]f}"));  /* '1' (0x31) < ']' (0x5d) */
	ok(f, B("#<1'a>[]{}$"));     /* '<' < '[' < '{' */
}

static void
test_nesting_limit(void **state)
{
	struct fx *f = *state;
	uint64_t depth = ocapn_syrup_decoder_get_limit(f->dec,
	    OCAPN_SYRUP_MAX_DEPTH);
	assert_int_equal(depth, 64);
	uint8_t buf[2 * 200];
	/* Exactly the limit. */
	size_t n = (size_t)depth;
	memset(buf, '[', n);
	memset(buf + n, ']', n);
	ocapn_value *v = ok(f, buf, 2 * n);
	size_t d = 0;
	for (const ocapn_value *x = v; x->len; x = &x->u.items[0])
		d++;
	assert_int_equal(d, n - 1);
	/* One more is refused at the opening byte past the limit. */
	memset(buf, '<', n + 1);
	memset(buf + n + 1, '>', n + 1);
	rejects(f, buf, 2 * (n + 1), OCAPN_E_LIMIT, n, "depth limit");
	memset(buf, '[', n + 1);
	rejects(f, buf, n + 1, OCAPN_E_LIMIT, n, "depth limit");
	/* Records nested as labels, up to the limit. */
	for (size_t i = 0; i < n; i++)
		buf[i] = '<';
	buf[n] = 't';
	memset(buf + n + 1, '>', n);
	ok(f, buf, 2 * n + 1);
	/* A smaller configured limit. */
	assert_int_equal(ocapn_syrup_decoder_set_limit(f->dec,
			     OCAPN_SYRUP_MAX_DEPTH, 2),
	    0);
	ok(f, B("[[]]"));
	ok(f, B("[[][]]"));
	rejects(f, B("[[[]]]"), OCAPN_E_LIMIT, 2, "depth limit");
	rejects(f, B("{1'a#{}$}"), OCAPN_E_LIMIT, 5, "depth limit");
	/* A larger one. */
	assert_int_equal(ocapn_syrup_decoder_set_limit(f->dec,
			     OCAPN_SYRUP_MAX_DEPTH, 200),
	    0);
	memset(buf, '[', 200);
	memset(buf + 200, ']', 200);
	ok(f, buf, 400);
}

/* ---- rejections ----------------------------------------------------- */

struct bad {
	const char *in;
	size_t len;
	int code;
	size_t off;
	const char *why;
};

#define BAD(s, code, off, why) {s, sizeof(s) - 1, code, off, why}

static const struct bad bad_inputs[] = {
    /* leading zeros, 0- */
    BAD("01+", OCAPN_E_NONCANONICAL, 0, "leading zero"),
    BAD("00+", OCAPN_E_NONCANONICAL, 0, "leading zero"),
    BAD("007-", OCAPN_E_NONCANONICAL, 0, "leading zero"),
    BAD("[1+01-]", OCAPN_E_NONCANONICAL, 3, "leading zero"),
    BAD("0-", OCAPN_E_NONCANONICAL, 0, "negative zero"),
    BAD("[t0-]", OCAPN_E_NONCANONICAL, 2, "negative zero"),
    BAD("00:", OCAPN_E_NONCANONICAL, 0, "length with a leading zero"),
    BAD("01:a", OCAPN_E_NONCANONICAL, 0, "length with a leading zero"),
    BAD("[02\"ab]", OCAPN_E_NONCANONICAL, 1, "length with a leading zero"),
    BAD("01'a", OCAPN_E_NONCANONICAL, 0, "length with a leading zero"),
    /* order and duplicates */
    BAD("{1'b1+1'a1+}", OCAPN_E_NONCANONICAL, 6, "dict keys not in"),
    BAD("{1'a1+1'a2+}", OCAPN_E_DUPLICATE, 6, "duplicate dict key"),
    BAD("{1'a1+1'b2+1'b3+}", OCAPN_E_DUPLICATE, 11, "duplicate dict key"),
    BAD("{1'a1+1'c2+1'b3+}", OCAPN_E_NONCANONICAL, 11, "dict keys not in"),
    BAD("#2+1+$", OCAPN_E_NONCANONICAL, 3, "set items not in"),
    BAD("#1+1+$", OCAPN_E_DUPLICATE, 3, "duplicate set item"),
    BAD("#9+10+$", OCAPN_E_NONCANONICAL, 3, "set items not in"),
    BAD("#2\"aa1\"b$", OCAPN_E_NONCANONICAL, 5, "set items not in"),
    BAD("[#1+1+$]", OCAPN_E_DUPLICATE, 4, "duplicate set item"),
    BAD("{{1'b1+1'a1+}t}", OCAPN_E_NONCANONICAL, 7, "dict keys not in"),
    BAD("{[1+]t[1+1+]f}", OCAPN_E_NONCANONICAL, 6, "dict keys not in"),
    /* UTF-8 in strings and symbols: offset of the first bad byte */
    BAD("2\"\xc3\x28", OCAPN_E_UTF8, 2, "string"),
    BAD("5\"ab\xc3\x28" "c", OCAPN_E_UTF8, 4, "string"),
    BAD("1\"\x80", OCAPN_E_UTF8, 2, "string"),
    BAD("1\"\xc3", OCAPN_E_UTF8, 2, "string"),
    BAD("1\"\xff", OCAPN_E_UTF8, 2, "string"),
    BAD("2\"\xc0\x80", OCAPN_E_UTF8, 2, "string"),     /* overlong NUL */
    BAD("2\"\xc1\xbf", OCAPN_E_UTF8, 2, "string"),     /* overlong */
    BAD("3\"\xe0\x80\x80", OCAPN_E_UTF8, 2, "string"), /* overlong */
    BAD("3\"\xe0\x9f\xbf", OCAPN_E_UTF8, 2, "string"), /* overlong */
    BAD("4\"\xf0\x80\x80\x80", OCAPN_E_UTF8, 2, "string"),
    BAD("4\"\xf0\x8f\xbf\xbf", OCAPN_E_UTF8, 2, "string"),
    BAD("3\"\xed\xa0\x80", OCAPN_E_UTF8, 2, "string"), /* U+D800 */
    BAD("3\"\xed\xbf\xbf", OCAPN_E_UTF8, 2, "string"), /* U+DFFF */
    BAD("6\"\xed\xa0\xbd\xed\xb8\x80", OCAPN_E_UTF8, 2, "string"),
    BAD("4\"\xf4\x90\x80\x80", OCAPN_E_UTF8, 2, "string"), /* >10FFFF */
    BAD("4\"\xf5\x80\x80\x80", OCAPN_E_UTF8, 2, "string"),
    BAD("3'\xed\xa0\x80", OCAPN_E_UTF8, 2, "symbol"),
    BAD("2'\xc0\x80", OCAPN_E_UTF8, 2, "symbol"),
    BAD("[1+5'ab\xed\xb0\x80]", OCAPN_E_UTF8, 7, "symbol"),
    /* lengths: overflow of uint64 and the atom limit (64 MiB) */
    BAD("18446744073709551616:", OCAPN_E_LIMIT, 0, "atom limit"),
    BAD("99999999999999999999999999:", OCAPN_E_LIMIT, 0, "atom limit"),
    BAD("[67108865\"", OCAPN_E_LIMIT, 1, "atom limit"),
    /* unknown type bytes */
    BAD("x", OCAPN_E_SYNTAX, 0, "unknown type byte"),
    BAD("T", OCAPN_E_SYNTAX, 0, "unknown type byte"),
    BAD("\x00", OCAPN_E_SYNTAX, 0, "unknown type byte"),
    BAD("(", OCAPN_E_SYNTAX, 0, "unknown type byte"),
    BAD("-1", OCAPN_E_SYNTAX, 0, "unknown type byte"),
    BAD("[1+x]", OCAPN_E_SYNTAX, 3, "unknown type byte"),
    BAD("12a", OCAPN_E_SYNTAX, 2, "after digits"),
    BAD("12]", OCAPN_E_SYNTAX, 2, "after digits"),
    BAD("1 +", OCAPN_E_SYNTAX, 1, "after digits"),
    /* closers */
    BAD("]", OCAPN_E_SYNTAX, 0, "without an open container"),
    BAD("$", OCAPN_E_SYNTAX, 0, "without an open container"),
    BAD("[}", OCAPN_E_SYNTAX, 1, "does not match"),
    BAD("{1'a1+]", OCAPN_E_SYNTAX, 6, "does not match"),
    BAD("#1+>", OCAPN_E_SYNTAX, 3, "does not match"),
    BAD("<1'a$", OCAPN_E_SYNTAX, 4, "does not match"),
    BAD("[[]}", OCAPN_E_SYNTAX, 3, "does not match"),
    /* shapes */
    BAD("<>", OCAPN_E_SYNTAX, 1, "record without a label"),
    BAD("[<>]", OCAPN_E_SYNTAX, 2, "record without a label"),
    BAD("{1'a}", OCAPN_E_SYNTAX, 4, "dict key without a value"),
    BAD("{1'a1+1'b}", OCAPN_E_SYNTAX, 9, "dict key without a value"),
    /* trailing bytes after one value */
    BAD("1+x", OCAPN_E_TRAILING, 2, "bytes after the value"),
    BAD("1+2+", OCAPN_E_TRAILING, 2, "bytes after the value"),
    BAD("[] \n[]", OCAPN_E_TRAILING, 4, "bytes after the value"),
};

static void
test_rejections(void **state)
{
	struct fx *f = *state;
	for (size_t i = 0; i < sizeof(bad_inputs) / sizeof(*bad_inputs); i++) {
		const struct bad *b = &bad_inputs[i];
		rejects(f, (const uint8_t *)b->in, b->len, b->code, b->off,
		    b->why);
		/* The copying decoder finds the same fault at the same
		 * place. */
		ocapn_syrup_decoder *cp = ocapn_syrup_decoder_new(
		    OCAPN_SYRUP_COPY_ATOMS, NULL);
		rejects_with(cp, f->arena, (const uint8_t *)b->in, b->len,
		    b->code, b->off, b->why);
		ocapn_syrup_decoder_free(cp);
	}
}

/* Whitespace is accepted between tokens, and the order of dict keys is
 * still judged on their canonical encodings. */
static void
test_whitespace(void **state)
{
	struct fx *f = *state;
	ocapn_value *v;
	assert_int_equal(ocapn_syrup_decode_one(f->dec, f->arena,
			     B(" \t\r\n[ 1+ 2+\n]\n"), &v),
	    0);
	assert_int_equal(ocapn_value_count(v), 2);
	assert_int_equal(ocapn_syrup_decode_one(f->dec, f->arena,
			     B("{ 1'a 1+ 1'b 2+ }"), &v),
	    0);
	assert_int_equal(ocapn_syrup_decode_one(f->dec, f->arena,
			     B("< 1'a # $ { } >"), &v),
	    0);
	/* Raw slices "[ 2+ ]" < "[1+]" (space sorts first), but the
	 * canonical encodings "[2+]" > "[1+]": refused. */
	rejects(f, B("{[ 2+ ]t[1+]f}"), OCAPN_E_NONCANONICAL, 8,
	    "dict keys not in");
	/* And the converse is in canonical order. */
	assert_int_equal(ocapn_syrup_decode_one(f->dec, f->arena,
			     B("{[1+]t[ 2+ ]f}"), &v),
	    0);
	rejects(f, B("#[ 1+ ][1+]$"), OCAPN_E_DUPLICATE, 7,
	    "duplicate set item");
	rejects(f, B("{ 1'b 1+ 1'a 1+ }"), OCAPN_E_NONCANONICAL, 9,
	    "dict keys not in");
	/* Whitespace inside a token is not whitespace between tokens. */
	rejects(f, B("1 0+"), OCAPN_E_SYNTAX, 1, "after digits");
	/* Whitespace inside a payload is payload. */
	v = ok(f, B("3\" a "));
	assert_int_equal(v->len, 3);
}

static void
test_no_whitespace_flag(void **state)
{
	struct fx *f = *state;
	ocapn_syrup_decoder *d = ocapn_syrup_decoder_new(
	    OCAPN_SYRUP_NO_WHITESPACE, NULL);
	ocapn_value *v;
	assert_int_equal(ocapn_syrup_decode_one(d, f->arena, B("[1+2+]"), &v),
	    0);
	rejects_with(d, f->arena, B(" 1+"), OCAPN_E_SYNTAX, 0, "whitespace");
	rejects_with(d, f->arena, B("[1+ 2+]"), OCAPN_E_SYNTAX, 3,
	    "whitespace");
	rejects_with(d, f->arena, B("[1+]\n"), OCAPN_E_TRAILING, 4,
	    "bytes after the value");
	/* A stream decoder stops before the separator and then refuses
	 * it. */
	size_t used;
	assert_int_equal(ocapn_syrup_decode(d, f->arena, B("1+ 2+"), &v,
			     &used),
	    0);
	assert_int_equal(used, 2);
	ocapn_syrup_decoder_free(d);
}

static void
test_lax_order_flag(void **state)
{
	struct fx *f = *state;
	ocapn_syrup_decoder *d = ocapn_syrup_decoder_new(OCAPN_SYRUP_LAX_ORDER,
	    NULL);
	ocapn_value *v;
	assert_int_equal(ocapn_syrup_decode_one(d, f->arena,
			     B("{1'b1+1'a2+}"), &v),
	    0);
	assert_int_equal(ocapn_value_count(v), 2);
	/* The value keeps the input order; the writer sorts it. */
	assert_true(ocapn_value_is_symbol(ocapn_dict_key(v, 0), "b"));
	size_t n;
	uint8_t *enc = tu_encode(v, 0, &n);
	assert_int_equal(n, 12);
	assert_memory_equal(enc, "{1'a2+1'b1+}", 12);
	free(enc);
	assert_int_equal(ocapn_syrup_decode_one(d, f->arena, B("#3+1+2+$"),
			     &v),
	    0);
	/* Duplicates are still refused, adjacent or not, at the later
	 * one. */
	rejects_with(d, f->arena, B("#1+1+$"), OCAPN_E_DUPLICATE, 3,
	    "duplicate set item");
	rejects_with(d, f->arena, B("#1+2+1+$"), OCAPN_E_DUPLICATE, 5,
	    "duplicate set item");
	rejects_with(d, f->arena, B("{1'c1+1'a1+1'b1+1'a2+}"),
	    OCAPN_E_DUPLICATE, 16, "duplicate dict key");
	/* Keys equal once their own entries are sorted. */
	rejects_with(d, f->arena, B("{{1'b1+1'a1+}t{1'a1+1'b1+}f}"),
	    OCAPN_E_DUPLICATE, 14, "duplicate dict key");
	/* Everything else stays strict. */
	rejects_with(d, f->arena, B("01+"), OCAPN_E_NONCANONICAL, 0,
	    "leading zero");
	/* Many entries in reverse order: sorted, not compared pairwise. */
	char big[8 * 3000 + 16];
	size_t len = 0;
	big[len++] = '#';
	for (int i = 3000; i > 0; i--)
		len += (size_t)sprintf(big + len, "%d+", i);
	big[len] = '$';
	assert_int_equal(ocapn_syrup_decode_one(d, f->arena,
			     (const uint8_t *)big, len + 1, &v),
	    0);
	assert_int_equal(ocapn_value_count(v), 3000);
	/* The same with 1500 once more at the end. */
	size_t dup_at = len;
	len += (size_t)sprintf(big + len, "1500+");
	big[len++] = '$';
	rejects_with(d, f->arena, (const uint8_t *)big, len, OCAPN_E_DUPLICATE,
	    dup_at, "duplicate set item");
	ocapn_syrup_decoder_free(d);
}

/* NaNs with different payloads are one value once encoded. */
static void
test_nan_duplicates(void **state)
{
	struct fx *f = *state;
	rejects(f,
	    B("#D\x7f\xf8\x00\x00\x00\x00\x00\x00"
	      "D\x7f\xf8\x00\x00\x00\x00\x00\x01$"),
	    OCAPN_E_DUPLICATE, 10, "duplicate set item");
	rejects(f,
	    B("{D\x7f\xf8\x00\x00\x00\x00\x00\x01t"
	      "D\x7f\xf8\x00\x00\x00\x00\x00\x02"
	      "f}"),
	    OCAPN_E_DUPLICATE, 11, "duplicate dict key");
	rejects(f, B("#F\x7f\xc0\x00\x00"
		     "F\x7f\xc0\x00\x01$"),
	    OCAPN_E_DUPLICATE, 6, "duplicate set item");
	/* Two signalling NaNs with different payloads. */
	rejects(f,
	    B("#D\x7f\xf0\x00\x00\x00\x00\x00\x01"
	      "D\x7f\xf4\x00\x00\x00\x00\x00\x00$"),
	    OCAPN_E_DUPLICATE, 10, "duplicate set item");
	/* A float32 and a float64 of the same number are distinct. */
	ocapn_value *v = ok(f, B("#D\x3f\xf8\x00\x00\x00\x00\x00\x00"
				 "F\x3f\xc0\x00\x00$"));
	assert_int_equal(ocapn_value_count(v), 2);
}

/* ---- limits --------------------------------------------------------- */

static void
test_limits_api(void **state)
{
	struct fx *f = *state;
	ocapn_syrup_decoder *d = f->dec;
	assert_int_equal(ocapn_syrup_decoder_get_limit(d, OCAPN_SYRUP_MAX_ATOM),
	    64u << 20);
	assert_int_equal(ocapn_syrup_decoder_get_limit(d,
			     OCAPN_SYRUP_MAX_ITEMS),
	    1u << 20);
	assert_int_equal(ocapn_syrup_decoder_get_limit(d,
			     OCAPN_SYRUP_MAX_TOTAL),
	    128u << 20);
	assert_int_equal(ocapn_syrup_decoder_set_limit(d, OCAPN_SYRUP_MAX_ATOM,
			     0),
	    OCAPN_E_INVAL);
	assert_int_equal(ocapn_syrup_decoder_set_limit(d,
			     (ocapn_syrup_limit)99, 5),
	    OCAPN_E_INVAL);
	assert_int_equal(ocapn_syrup_decoder_get_limit(d,
			     (ocapn_syrup_limit)99),
	    0);
	assert_int_equal(ocapn_syrup_decoder_set_limit(d,
			     OCAPN_SYRUP_MAX_TOTAL, UINT64_C(1) << 32),
	    OCAPN_E_INVAL);
	assert_int_equal(ocapn_syrup_decoder_set_limit(d,
			     OCAPN_SYRUP_MAX_TOTAL, UINT32_MAX),
	    0);
}

static void
test_atom_limit(void **state)
{
	struct fx *f = *state;
	assert_int_equal(ocapn_syrup_decoder_set_limit(f->dec,
			     OCAPN_SYRUP_MAX_ATOM, 5),
	    0);
	ok(f, B("5:abcde"));
	ok(f, B("5\"abcde"));
	ok(f, B("99999+"));
	ok(f, B("99999-"));
	rejects(f, B("6:abcdef"), OCAPN_E_LIMIT, 0, "atom limit");
	rejects(f, B("[t6'abcdef]"), OCAPN_E_LIMIT, 2, "atom limit");
	/* Announced but not yet sent: refused without waiting. */
	rejects(f, B("6:"), OCAPN_E_LIMIT, 0, "atom limit");
	rejects(f, B("100000+"), OCAPN_E_LIMIT, 0, "more digits");
	rejects(f, B("[1000000"), OCAPN_E_LIMIT, 1, "more digits");
	rejects(f, B("000000:"), OCAPN_E_LIMIT, 0, "more digits");
}

static void
test_items_limit(void **state)
{
	struct fx *f = *state;
	assert_int_equal(ocapn_syrup_decoder_set_limit(f->dec,
			     OCAPN_SYRUP_MAX_ITEMS, 3),
	    0);
	ok(f, B("[1+2+3+]"));
	ok(f, B("[[1+2+3+][1+2+3+][1+2+3+]]"));
	rejects(f, B("[1+2+3+4+]"), OCAPN_E_LIMIT, 7, "more items");
	rejects(f, B("#1+2+3+4+$"), OCAPN_E_LIMIT, 7, "more items");
	/* The record label counts as an item; dict keys and values too. */
	ok(f, B("<1'a1+2+>"));
	rejects(f, B("<1'a1+2+3+>"), OCAPN_E_LIMIT, 8, "more items");
	rejects(f, B("{1'a1+1'b2+}"), OCAPN_E_LIMIT, 9, "more items");
	/* Truncated input that already exceeds it is refused. */
	rejects(f, B("[t[1+2+3+4+"), OCAPN_E_LIMIT, 9, "more items");
}

static void
test_total_limit(void **state)
{
	struct fx *f = *state;
	assert_int_equal(ocapn_syrup_decoder_set_limit(f->dec,
			     OCAPN_SYRUP_MAX_TOTAL, 10),
	    0);
	ok(f, B("[1+2+3+4+]"));          /* exactly 10 bytes */
	ok(f, B("8:abcdefgh"));          /* exactly 10 bytes */
	rejects(f, B("[1+2+3+4+5+]"), OCAPN_E_LIMIT, 10, "total size");
	rejects(f, B("9:abcdefghi"), OCAPN_E_LIMIT, 0, "total size");
	/* Refused as soon as the length shows it cannot fit. */
	rejects(f, B("[t8:"), OCAPN_E_LIMIT, 2, "total size");
	rejects(f, B("[1+D\x00\x00\x00\x00\x00\x00\x00\x00]"), OCAPN_E_LIMIT,
	    3, "total size");
	/* A long stream of small values is fine: the limit is per value. */
	ocapn_value *v;
	size_t used;
	const uint8_t s[] = "1+2+3+4+5+6+7+8+9+10+11+";
	size_t off = 0, n = 0;
	while (off < sizeof(s) - 1) {
		assert_int_equal(ocapn_syrup_decode(f->dec, f->arena, s + off,
				     sizeof(s) - 1 - off, &v, &used),
		    0);
		off += used;
		n++;
	}
	assert_int_equal(n, 11);
	/* Below the limit a truncated value is only incomplete. */
	assert_int_equal(ocapn_syrup_decode(f->dec, f->arena, B("[1+2+3+"),
			     &v, &used),
	    OCAPN_E_INCOMPLETE);
}

/* ---- streams and incremental decoding ------------------------------- */

static void
test_stream_and_incomplete(void **state)
{
	struct fx *f = *state;
	ocapn_value *v;
	size_t used = 99;
	const uint8_t s[] = "t 1+[2+] 3:abc";
	assert_int_equal(ocapn_syrup_decode(f->dec, f->arena, s,
			     sizeof(s) - 1, &v, &used),
	    0);
	assert_int_equal(used, 1);
	assert_int_equal(ocapn_syrup_decode(f->dec, f->arena, s + 1,
			     sizeof(s) - 2, &v, &used),
	    0);
	assert_int_equal(used, 3); /* whitespace before a value is its own */
	assert_int_equal(ocapn_syrup_decode(f->dec, f->arena, s + 4,
			     sizeof(s) - 5, &v, &used),
	    0);
	assert_int_equal(used, 4);
	assert_int_equal(ocapn_syrup_decode(f->dec, f->arena, s + 8,
			     sizeof(s) - 9, &v, &used),
	    0);
	assert_int_equal(used, 6);
	/* Nothing, whitespace only, and every kind of truncation. */
	static const char *const partial[] = {"", " ", " \n\t\r", "1", "12",
	    "1:", "3:ab", "D", "D\x00\x00\x00\x00\x00\x00\x00", "F\x00",
	    "[", "[1+", "{1'a", "{1'a1+", "<", "<1'a", "#", "#1+", "[[[]]",
	    "3\"\xe2\x82", "2\"\xc3"};
	for (size_t i = 0; i < sizeof(partial) / sizeof(*partial); i++) {
		size_t len = strlen(partial[i]);
		if (i == 8)
			len = 8;
		else if (i == 9)
			len = 2;
		size_t before = ocapn_arena_used(f->arena);
		assert_int_equal(ocapn_syrup_decode(f->dec, f->arena,
				     (const uint8_t *)partial[i], len, &v,
				     &used),
		    OCAPN_E_INCOMPLETE);
		assert_int_equal(ocapn_arena_used(f->arena), before);
		size_t off;
		assert_string_equal(ocapn_syrup_decoder_error(f->dec, &off),
		    "input ends inside a value");
		assert_int_equal(off, len);
	}
	/* Arguments. */
	assert_int_equal(ocapn_syrup_decode(NULL, f->arena, s, 1, &v, &used),
	    OCAPN_E_INVAL);
	assert_int_equal(ocapn_syrup_decode(f->dec, NULL, s, 1, &v, &used),
	    OCAPN_E_INVAL);
	assert_int_equal(ocapn_syrup_decode(f->dec, f->arena, NULL, 1, &v,
			     &used),
	    OCAPN_E_INVAL);
	assert_int_equal(ocapn_syrup_decode_one(f->dec, f->arena, s, 1, NULL),
	    OCAPN_E_INVAL);
	/* Success clears the error. */
	assert_int_equal(ocapn_syrup_decode(f->dec, f->arena, B("t"), &v,
			     &used),
	    0);
	assert_string_equal(ocapn_syrup_decoder_error(f->dec, NULL), "");
}

/*
 * Feed `msg` cut at every split point (a buffer holding only the prefix,
 * allocated to its exact size so over-reads are caught), then byte by byte
 * into a growing buffer: always OCAPN_E_INCOMPLETE with the arena as before,
 * then the whole value, equal to the reference.
 */
static void
feed_all_splits(struct fx *f, const uint8_t *msg, size_t len,
    const char *origin)
{
	ocapn_arena_reset(f->arena);
	ocapn_value *ref;
	size_t used;
	assert_int_equal(ocapn_syrup_decode(f->dec, f->arena, msg, len, &ref,
			     &used),
	    0);
	assert_int_equal(used, len);
	ocapn_arena *a2 = ocapn_arena_new(NULL);
	uint8_t *grow = NULL;
	for (size_t k = 0; k <= len; k++) {
		uint8_t *prefix = malloc(k ? k : 1);
		assert_non_null(prefix);
		memcpy(prefix, msg, k);
		size_t before = ocapn_arena_used(a2);
		ocapn_value *v;
		int rc = ocapn_syrup_decode(f->dec, a2, prefix, k, &v, &used);
		if (k < len) {
			if (rc != OCAPN_E_INCOMPLETE)
				fail_msg("%s: prefix of %zu/%zu bytes: %s",
				    origin, k, len, ocapn_err_name(rc));
			assert_int_equal(ocapn_arena_used(a2), before);
		} else {
			assert_int_equal(rc, 0);
			assert_int_equal(used, len);
			assert_true(ocapn_value_equal(v, ref));
		}
		free(prefix);
	}
	/* Byte at a time into one growing buffer. */
	size_t have = 0;
	for (;;) {
		grow = realloc(grow, have + 1);
		assert_non_null(grow);
		grow[have] = msg[have];
		have++;
		ocapn_value *v;
		int rc = ocapn_syrup_decode(f->dec, a2, grow, have, &v, &used);
		if (rc == OCAPN_E_INCOMPLETE) {
			assert_true(have < len);
			continue;
		}
		assert_int_equal(rc, 0);
		assert_int_equal(have, len);
		assert_true(ocapn_value_equal(v, ref));
		break;
	}
	free(grow);
	ocapn_arena_free(a2);
}

static void
test_incremental_vectors(void **state)
{
	struct fx *f = *state;
	size_t zlen;
	uint8_t *zoo = tu_read_data("syrup/zoo.bin", &zlen);
	feed_all_splits(f, zoo, zlen, "zoo");
	free(zoo);
	static const char *const edge[] = {"t", "0+", "1-",
	    "9223372036854775808+", "18446744073709551616-", "0:", "3:cat",
	    "4\"\xf0\x9f\x98\x80", "[]", "{}", "#$", "<0'>",
	    "[[[[1+]]]]", "{1'a1+1'b[2+]}", " \n[ 1+ { 1'a 2+ } ]"};
	for (size_t i = 0; i < sizeof(edge) / sizeof(*edge); i++)
		feed_all_splits(f, (const uint8_t *)edge[i], strlen(edge[i]),
		    edge[i]);
	feed_all_splits(f, B("D\x7f\xf8\x00\x00\x00\x00\x00\x00"), "D");
	feed_all_splits(f, B("F\x00\x00\x00\x00"), "F");
}

static void
test_incremental_captures(void **state)
{
	struct fx *f = *state;
	size_t n;
	tu_msg *m = tu_capture_messages(&n);
	assert_true(n > 100);
	for (size_t i = 0; i < n; i++)
		feed_all_splits(f, m[i].data, m[i].len, m[i].origin);
	tu_free_msgs(m, n);
}

/* ---- copying, allocation --------------------------------------------- */

static bool
inside(const void *p, const uint8_t *buf, size_t len)
{
	return (const uint8_t *)p >= buf && (const uint8_t *)p < buf + len;
}

static void
test_copy_atoms_flag(void **state)
{
	struct fx *f = *state;
	ocapn_syrup_decoder *d = ocapn_syrup_decoder_new(
	    OCAPN_SYRUP_COPY_ATOMS, NULL);
	const char src[] = "[3:abc5\"hello4'sym118446744073709551616-{ 1'a "
			   "t 1'b f }]";
	uint8_t *buf = malloc(sizeof(src));
	memcpy(buf, src, sizeof(src));
	size_t len = sizeof(src) - 1;
	ocapn_value *v;
	assert_int_equal(ocapn_syrup_decode_one(d, f->arena, buf, len, &v), 0);
	ocapn_value *ref = tu_decode(f->arena, 0, buf, len);
	assert_true(ocapn_value_equal(v, ref));
	for (size_t i = 0; i < 4; i++)
		assert_false(inside(v->u.items[i].u.p, buf, len));
	assert_true(inside(ref->u.items[0].u.p, buf, len));
	/* The input may now change: the copy does not. */
	memset(buf, '!', len);
	assert_memory_equal(v->u.items[0].u.p, "abc", 3);
	assert_memory_equal(v->u.items[1].u.p, "hello", 5);
	assert_memory_equal(v->u.items[2].u.p, "sym1", 4);
	assert_memory_equal(v->u.items[3].u.p, "18446744073709551616", 20);
	assert_true(v->u.items[3].flags & OCAPN_VALUE_NEGATIVE);
	free(buf);
	ocapn_syrup_decoder_free(d);
}

/* After warm-up, decoding a message allocates nothing. */
static void
test_zero_allocations_steady_state(void **state)
{
	(void)state;
	size_t n;
	tu_msg *m = tu_capture_messages(&n);
	size_t zlen;
	uint8_t *zoo = tu_read_data("syrup/zoo.bin", &zlen);
	static const char spaced[] = " { [ 1+ 1+ ] f [ 2+ ] t } ";
	static const unsigned flag_sets[] = {0, OCAPN_SYRUP_LAX_ORDER,
	    OCAPN_SYRUP_COPY_ATOMS};
	for (size_t fs = 0; fs < 3; fs++) {
		tu_counter c;
		tu_counter_init(&c);
		ocapn_syrup_decoder *d = ocapn_syrup_decoder_new(flag_sets[fs],
		    &c.alloc);
		ocapn_arena *arena = ocapn_arena_new(&c.alloc);
		unsigned long warm = 0;
		for (int round = 0; round < 3; round++) {
			if (round == 2)
				warm = c.calls;
			for (size_t i = 0; i < n; i++) {
				ocapn_value *v;
				ocapn_arena_reset(arena);
				assert_int_equal(ocapn_syrup_decode_one(d,
						     arena, m[i].data,
						     m[i].len, &v),
				    0);
			}
			ocapn_value *v;
			ocapn_arena_reset(arena);
			assert_int_equal(ocapn_syrup_decode_one(d, arena, zoo,
					     zlen, &v),
			    0);
			ocapn_arena_reset(arena);
			assert_int_equal(ocapn_syrup_decode_one(d, arena,
					     B(spaced), &v),
			    0);
		}
		/* Round 3 made no allocator call at all. */
		assert_int_equal(c.calls, warm);
		ocapn_arena_free(arena);
		ocapn_syrup_decoder_free(d);
		assert_int_equal(c.live_bytes, 0);
	}
	free(zoo);
	tu_free_msgs(m, n);
}

/* Allocation failures are reported, never crash, and leak nothing. */
static void
test_out_of_memory(void **state)
{
	(void)state;
	size_t zlen;
	uint8_t *zoo = tu_read_data("syrup/zoo.bin", &zlen);
	bool succeeded = false;
	for (unsigned long limit = 1; limit < 200 && !succeeded; limit++) {
		tu_counter c;
		tu_counter_init(&c);
		c.fail_after = limit;
		ocapn_syrup_decoder *d = ocapn_syrup_decoder_new(
		    OCAPN_SYRUP_LAX_ORDER, &c.alloc);
		ocapn_arena *arena = ocapn_arena_new(&c.alloc);
		if (d && arena) {
			ocapn_value *v;
			int rc = ocapn_syrup_decode_one(d, arena, zoo, zlen,
			    &v);
			assert_true(rc == OCAPN_OK || rc == OCAPN_E_NOMEM);
			succeeded = rc == OCAPN_OK;
		}
		ocapn_arena_free(arena);
		ocapn_syrup_decoder_free(d);
		assert_int_equal(c.live_bytes, 0);
	}
	assert_true(succeeded);
	free(zoo);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_booleans, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_integers_int64, setup,
		teardown),
	    cmocka_unit_test_setup_teardown(test_integers_big, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_float64, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_float64_nan_payloads, setup,
		teardown),
	    cmocka_unit_test_setup_teardown(test_float32, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bytes_strings_symbols, setup,
		teardown),
	    cmocka_unit_test_setup_teardown(test_empty_containers, setup,
		teardown),
	    cmocka_unit_test_setup_teardown(test_containers, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_canonical_order_accepted,
		setup, teardown),
	    cmocka_unit_test_setup_teardown(test_nesting_limit, setup,
		teardown),
	    cmocka_unit_test_setup_teardown(test_rejections, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_whitespace, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_no_whitespace_flag, setup,
		teardown),
	    cmocka_unit_test_setup_teardown(test_lax_order_flag, setup,
		teardown),
	    cmocka_unit_test_setup_teardown(test_nan_duplicates, setup,
		teardown),
	    cmocka_unit_test_setup_teardown(test_limits_api, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_atom_limit, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_items_limit, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_total_limit, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_stream_and_incomplete, setup,
		teardown),
	    cmocka_unit_test_setup_teardown(test_incremental_vectors, setup,
		teardown),
	    cmocka_unit_test_setup_teardown(test_incremental_captures, setup,
		teardown),
	    cmocka_unit_test_setup_teardown(test_copy_atoms_flag, setup,
		teardown),
	    cmocka_unit_test(test_zero_allocations_steady_state),
	    cmocka_unit_test(test_out_of_memory),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
