/*
 * The canonical Syrup writer: exact bytes of every atom, canonical order
 * of dicts and sets, duplicates, container errors, sticky errors, the
 * three output modes (own buffer, caller buffer, fixed array with the
 * needed size), and allocation behaviour.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "syrup_testutil.h"

#define LIT(s) (s), (sizeof(s) - 1)

static int
setup(void **state)
{
	ocapn_syrup_writer *w = ocapn_syrup_writer_new(0, NULL);
	if (!w)
		return -1;
	*state = w;
	return 0;
}

static int
teardown(void **state)
{
	ocapn_syrup_writer_free(*state);
	return 0;
}

/* Finish `w` and compare its output with want[0..n). */
static void
expect(ocapn_syrup_writer *w, const uint8_t *want, size_t n)
{
	const uint8_t *p;
	size_t len;
	int rc = ocapn_syrup_writer_finish(w, &p, &len);
	if (rc) {
		const char *why;
		ocapn_syrup_writer_error(w, &why);
		fail_msg("finish: %s (%s)", ocapn_err_name(rc), why);
	}
	if (len != n || memcmp(p, want, n) != 0)
		fail_msg("got '%.*s' (%zu bytes), want '%.*s' (%zu bytes)",
		    (int)len, (const char *)p, len, (int)n,
		    (const char *)want, n);
	assert_int_equal(ocapn_syrup_writer_size(w), n);
	ocapn_syrup_writer_reset(w);
}

static void
test_atoms(void **state)
{
	ocapn_syrup_writer *w = *state;
	ocapn_syrup_write_bool(w, true);
	expect(w, B("t"));
	ocapn_syrup_write_bool(w, false);
	expect(w, B("f"));
	ocapn_syrup_write_int(w, 0);
	expect(w, B("0+"));
	ocapn_syrup_write_int(w, -1);
	expect(w, B("1-"));
	ocapn_syrup_write_int(w, 72);
	expect(w, B("72+"));
	ocapn_syrup_write_int(w, INT64_MAX);
	expect(w, B("9223372036854775807+"));
	ocapn_syrup_write_int(w, INT64_MIN);
	expect(w, B("9223372036854775808-"));
	ocapn_syrup_write_uint(w, 0);
	expect(w, B("0+"));
	ocapn_syrup_write_uint(w, UINT64_MAX);
	expect(w, B("18446744073709551615+"));
	ocapn_syrup_write_bigint(w, false, LIT("18446744073709551616"));
	expect(w, B("18446744073709551616+"));
	ocapn_syrup_write_bigint(w, true, LIT("18446744073709551616"));
	expect(w, B("18446744073709551616-"));
	ocapn_syrup_write_bigint(w, true, LIT("0"));
	expect(w, B("0+")); /* there is no -0 */
	ocapn_syrup_write_bytes(w, "cat", 3);
	expect(w, B("3:cat"));
	ocapn_syrup_write_bytes(w, NULL, 0);
	expect(w, B("0:"));
	ocapn_syrup_write_string(w, LIT("bj\xc3\xb6rn"));
	expect(w, B("6\"bj\xc3\xb6rn"));
	ocapn_syrup_write_string(w, "", 0);
	expect(w, B("0\""));
	ocapn_syrup_write_symbol(w, LIT("fetch"));
	expect(w, B("5'fetch"));
	char big[1000];
	memset(big, 'x', sizeof(big));
	ocapn_syrup_write_bytes(w, big, sizeof(big));
	const uint8_t *p;
	size_t n;
	assert_int_equal(ocapn_syrup_writer_finish(w, &p, &n), 0);
	assert_int_equal(n, 1005);
	assert_memory_equal(p, "1000:", 5);
	ocapn_syrup_writer_reset(w);
}

static void
test_bigint_errors(void **state)
{
	ocapn_syrup_writer *w = *state;
	assert_int_equal(ocapn_syrup_write_bigint(w, false, "", 0),
	    OCAPN_E_INVAL);
	ocapn_syrup_writer_reset(w);
	assert_int_equal(ocapn_syrup_write_bigint(w, false, LIT("12a")),
	    OCAPN_E_INVAL);
	ocapn_syrup_writer_reset(w);
	assert_int_equal(ocapn_syrup_write_bigint(w, false, LIT("012")),
	    OCAPN_E_INVAL);
	ocapn_syrup_writer_reset(w);
	assert_int_equal(ocapn_syrup_write_bigint(w, true, LIT("-12")),
	    OCAPN_E_INVAL);
	ocapn_syrup_writer_reset(w);
}

static void
test_floats(void **state)
{
	ocapn_syrup_writer *w = *state;
	ocapn_syrup_write_float64(w, 1.5);
	expect(w, B("D\x3f\xf8\x00\x00\x00\x00\x00\x00"));
	ocapn_syrup_write_float64(w, -0.0);
	expect(w, B("D\x80\x00\x00\x00\x00\x00\x00\x00"));
	ocapn_syrup_write_float64(w, 0.0);
	expect(w, B("D\x00\x00\x00\x00\x00\x00\x00\x00"));
	ocapn_syrup_write_float64(w, INFINITY);
	expect(w, B("D\x7f\xf0\x00\x00\x00\x00\x00\x00"));
	ocapn_syrup_write_float64(w, -INFINITY);
	expect(w, B("D\xff\xf0\x00\x00\x00\x00\x00\x00"));
	/* Every NaN is written as 0x7ff8000000000000. */
	static const uint64_t nans[] = {UINT64_C(0x7ff8000000000000),
	    UINT64_C(0x7ff8000000000001), UINT64_C(0xfff8000000000000),
	    UINT64_C(0x7ff0000000000001), UINT64_C(0xffffffffffffffff)};
	for (size_t i = 0; i < sizeof(nans) / sizeof(*nans); i++) {
		double d;
		memcpy(&d, &nans[i], 8);
		assert_true(isnan(d));
		ocapn_syrup_write_float64(w, d);
		expect(w, B("D\x7f\xf8\x00\x00\x00\x00\x00\x00"));
	}
	/* write_float32 always emits F; NaN as 0x7fc00000. */
	ocapn_syrup_write_float32(w, 1.5f);
	expect(w, B("F\x3f\xc0\x00\x00"));
	ocapn_syrup_write_float32(w, -0.0f);
	expect(w, B("F\x80\x00\x00\x00"));
	uint32_t nb = UINT32_C(0xffc00001);
	float nf;
	memcpy(&nf, &nb, 4);
	ocapn_syrup_write_float32(w, nf);
	expect(w, B("F\x7f\xc0\x00\x00"));
}

static void
test_float32_values(void **state)
{
	ocapn_syrup_writer *w = *state;
	ocapn_value v;
	ocapn_value_set_float32(&v, 0.1f);
	/* By default widened to D, exactly. */
	ocapn_syrup_write_value(w, &v);
	double d = (double)0.1f;
	uint64_t b;
	memcpy(&b, &d, 8);
	uint8_t want[9] = {'D'};
	for (int i = 0; i < 8; i++)
		want[1 + i] = (uint8_t)(b >> (56 - 8 * i));
	expect(w, want, 9);
	/* Emitted as F when asked. */
	ocapn_syrup_writer_set_flags(w, OCAPN_SYRUP_WRITE_FLOAT32);
	ocapn_syrup_write_value(w, &v);
	expect(w, B("F\x3d\xcc\xcc\xcd"));
	ocapn_value_set_float32(&v, NAN);
	ocapn_syrup_write_value(w, &v);
	expect(w, B("F\x7f\xc0\x00\x00"));
	ocapn_syrup_writer_set_flags(w, 0);
	ocapn_syrup_write_value(w, &v);
	expect(w, B("D\x7f\xf8\x00\x00\x00\x00\x00\x00"));
	ocapn_value_set_float32(&v, -INFINITY);
	ocapn_syrup_write_value(w, &v);
	expect(w, B("D\xff\xf0\x00\x00\x00\x00\x00\x00"));
}

static void
test_utf8_checked(void **state)
{
	ocapn_syrup_writer *w = *state;
	static const char *const bad[] = {"\xc3\x28", "\xc0\x80",
	    "\xed\xa0\x80", "\xed\xbf\xbf", "\xf4\x90\x80\x80", "\xff",
	    "a\x80"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		assert_int_equal(ocapn_syrup_write_string(w, bad[i],
				     strlen(bad[i])),
		    OCAPN_E_UTF8);
		const char *why;
		assert_int_equal(ocapn_syrup_writer_error(w, &why),
		    OCAPN_E_UTF8);
		assert_non_null(strstr(why, "string"));
		ocapn_syrup_writer_reset(w);
		assert_int_equal(ocapn_syrup_write_symbol(w, bad[i],
				     strlen(bad[i])),
		    OCAPN_E_UTF8);
		ocapn_syrup_writer_reset(w);
	}
	/* Bytes are not text: anything goes. */
	ocapn_syrup_write_bytes(w, "\xed\xa0\x80", 3);
	expect(w, B("3:\xed\xa0\x80"));
}

static void
test_containers(void **state)
{
	ocapn_syrup_writer *w = *state;
	ocapn_syrup_write_list_begin(w);
	ocapn_syrup_write_list_end(w);
	expect(w, B("[]"));
	ocapn_syrup_write_dict_begin(w);
	ocapn_syrup_write_dict_end(w);
	expect(w, B("{}"));
	ocapn_syrup_write_set_begin(w);
	ocapn_syrup_write_set_end(w);
	expect(w, B("#$"));
	ocapn_syrup_write_record_begin(w);
	ocapn_syrup_write_symbol(w, LIT("op:deliver"));
	ocapn_syrup_write_record_begin(w);
	ocapn_syrup_write_symbol(w, LIT("desc:export"));
	ocapn_syrup_write_int(w, 1);
	ocapn_syrup_write_record_end(w);
	ocapn_syrup_write_list_begin(w);
	ocapn_syrup_write_symbol(w, LIT("drive"));
	ocapn_syrup_write_list_end(w);
	ocapn_syrup_write_int(w, 0);
	ocapn_syrup_write_bool(w, false);
	ocapn_syrup_write_record_end(w);
	expect(w, B("<10'op:deliver<11'desc:export1+>[5'drive]0+f>"));
}

/* The spec's example: {"name": "Alice", "age": 30, "isAlive": true}. */
static void
test_dict_sorted(void **state)
{
	ocapn_syrup_writer *w = *state;
	ocapn_syrup_write_dict_begin(w);
	ocapn_syrup_write_bytes(w, LIT("name"));
	ocapn_syrup_write_bytes(w, LIT("Alice"));
	ocapn_syrup_write_bytes(w, LIT("age"));
	ocapn_syrup_write_int(w, 30);
	ocapn_syrup_write_bytes(w, LIT("isAlive"));
	ocapn_syrup_write_bool(w, true);
	ocapn_syrup_write_dict_end(w);
	expect(w, B("{3:age30+4:name5:Alice7:isAlivet}"));

	/* By encoded bytes: "10+" < "9+", shorter length prefix first. */
	ocapn_syrup_write_set_begin(w);
	ocapn_syrup_write_int(w, 9);
	ocapn_syrup_write_int(w, 10);
	ocapn_syrup_write_int(w, -1);
	ocapn_syrup_write_int(w, 1);
	ocapn_syrup_write_string(w, LIT("aa"));
	ocapn_syrup_write_string(w, LIT("b"));
	ocapn_syrup_write_list_begin(w);
	ocapn_syrup_write_list_end(w);
	ocapn_syrup_write_bool(w, true);
	ocapn_syrup_write_bool(w, false);
	ocapn_syrup_write_set_end(w);
	expect(w, B("#1\"b1+1-10+2\"aa9+[]ft$"));

	/* Values travel with their keys. */
	ocapn_syrup_write_dict_begin(w);
	ocapn_syrup_write_symbol(w, LIT("z"));
	ocapn_syrup_write_list_begin(w);
	ocapn_syrup_write_int(w, 1);
	ocapn_syrup_write_int(w, 2);
	ocapn_syrup_write_list_end(w);
	ocapn_syrup_write_symbol(w, LIT("m"));
	ocapn_syrup_write_string(w, LIT("middle"));
	ocapn_syrup_write_symbol(w, LIT("a"));
	ocapn_syrup_write_bool(w, true);
	ocapn_syrup_write_dict_end(w);
	expect(w, B("{1'at1'm6\"middle1'z[1+2+]}"));
}

/* Dicts as keys: the inner dicts are sorted first, the outer then sorts
 * by the inner canonical bytes. */
static void
test_nested_dict_keys(void **state)
{
	ocapn_syrup_writer *w = *state;
	ocapn_syrup_write_dict_begin(w);
	ocapn_syrup_write_dict_begin(w); /* key {"b": 1, "a": 1} */
	ocapn_syrup_write_string(w, LIT("b"));
	ocapn_syrup_write_int(w, 1);
	ocapn_syrup_write_string(w, LIT("a"));
	ocapn_syrup_write_int(w, 1);
	ocapn_syrup_write_dict_end(w);
	ocapn_syrup_write_int(w, 1);
	ocapn_syrup_write_dict_begin(w); /* key {"a": 0} */
	ocapn_syrup_write_string(w, LIT("a"));
	ocapn_syrup_write_int(w, 0);
	ocapn_syrup_write_dict_end(w);
	ocapn_syrup_write_int(w, 2);
	ocapn_syrup_write_dict_end(w);
	expect(w, B("{{1\"a0+}2+{1\"a1+1\"b1+}1+}"));

	/* Sets of sets, inside a list inside a set. */
	ocapn_syrup_write_set_begin(w);
	ocapn_syrup_write_list_begin(w);
	ocapn_syrup_write_set_begin(w);
	ocapn_syrup_write_int(w, 3);
	ocapn_syrup_write_int(w, 2);
	ocapn_syrup_write_set_end(w);
	ocapn_syrup_write_list_end(w);
	ocapn_syrup_write_int(w, 5);
	ocapn_syrup_write_set_end(w);
	expect(w, B("#5+[#2+3+$]$"));

	/* Equal once sorted: a duplicate. */
	ocapn_syrup_write_set_begin(w);
	ocapn_syrup_write_dict_begin(w);
	ocapn_syrup_write_int(w, 2);
	ocapn_syrup_write_bool(w, true);
	ocapn_syrup_write_int(w, 1);
	ocapn_syrup_write_bool(w, true);
	ocapn_syrup_write_dict_end(w);
	ocapn_syrup_write_dict_begin(w);
	ocapn_syrup_write_int(w, 1);
	ocapn_syrup_write_bool(w, true);
	ocapn_syrup_write_int(w, 2);
	ocapn_syrup_write_bool(w, true);
	ocapn_syrup_write_dict_end(w);
	assert_int_equal(ocapn_syrup_write_set_end(w), OCAPN_E_DUPLICATE);
	ocapn_syrup_writer_reset(w);
}

static void
test_duplicates(void **state)
{
	ocapn_syrup_writer *w = *state;
	const char *why;
	/* adjacent */
	ocapn_syrup_write_dict_begin(w);
	ocapn_syrup_write_symbol(w, LIT("a"));
	ocapn_syrup_write_int(w, 1);
	ocapn_syrup_write_symbol(w, LIT("a"));
	ocapn_syrup_write_int(w, 2);
	assert_int_equal(ocapn_syrup_write_dict_end(w), OCAPN_E_DUPLICATE);
	assert_int_equal(ocapn_syrup_writer_error(w, &why), OCAPN_E_DUPLICATE);
	assert_string_equal(why, "duplicate dict key");
	ocapn_syrup_writer_reset(w);
	/* found only after sorting */
	ocapn_syrup_write_set_begin(w);
	ocapn_syrup_write_int(w, 3);
	ocapn_syrup_write_int(w, 1);
	ocapn_syrup_write_int(w, 2);
	ocapn_syrup_write_int(w, 1);
	assert_int_equal(ocapn_syrup_write_set_end(w), OCAPN_E_DUPLICATE);
	ocapn_syrup_writer_error(w, &why);
	assert_string_equal(why, "duplicate set item");
	const uint8_t *p;
	size_t n;
	assert_int_equal(ocapn_syrup_writer_finish(w, &p, &n),
	    OCAPN_E_DUPLICATE);
	ocapn_syrup_writer_reset(w);
	/* NaNs are one value */
	ocapn_syrup_write_set_begin(w);
	ocapn_syrup_write_float64(w, NAN);
	ocapn_syrup_write_float64(w, -NAN);
	assert_int_equal(ocapn_syrup_write_set_end(w), OCAPN_E_DUPLICATE);
	ocapn_syrup_writer_reset(w);
	/* but 0.0 and -0.0 are two */
	ocapn_syrup_write_set_begin(w);
	ocapn_syrup_write_float64(w, -0.0);
	ocapn_syrup_write_float64(w, 0.0);
	ocapn_syrup_write_set_end(w);
	expect(w, B("#D\x00\x00\x00\x00\x00\x00\x00\x00"
		    "D\x80\x00\x00\x00\x00\x00\x00\x00$"));
	/* a float32 widened to the same double as a float64 */
	ocapn_value items[2];
	ocapn_value_set_float32(&items[0], 1.5f);
	ocapn_value_set_float64(&items[1], 1.5);
	ocapn_value set;
	ocapn_value_set_set(&set, items, 2);
	assert_int_equal(ocapn_syrup_write_value(w, &set), OCAPN_E_DUPLICATE);
	ocapn_syrup_writer_reset(w);
	ocapn_syrup_writer_set_flags(w, OCAPN_SYRUP_WRITE_FLOAT32);
	assert_int_equal(ocapn_syrup_write_value(w, &set), 0);
	expect(w, B("#D\x3f\xf8\x00\x00\x00\x00\x00\x00"
		    "F\x3f\xc0\x00\x00$"));
	ocapn_syrup_writer_set_flags(w, 0);
}

/* Many entries in reverse order come out sorted and decode strictly. */
static void
test_large_sort(void **state)
{
	ocapn_syrup_writer *w = *state;
	ocapn_syrup_write_dict_begin(w);
	for (int i = 5000; i > 0; i--) {
		char k[16];
		int n = snprintf(k, sizeof(k), "k%d", i);
		ocapn_syrup_write_string(w, k, (size_t)n);
		ocapn_syrup_write_int(w, i);
	}
	assert_int_equal(ocapn_syrup_write_dict_end(w), 0);
	const uint8_t *p;
	size_t n;
	assert_int_equal(ocapn_syrup_writer_finish(w, &p, &n), 0);
	ocapn_arena *arena = ocapn_arena_new(NULL);
	ocapn_value *v = tu_decode(arena, 0, p, n);
	assert_int_equal(ocapn_value_count(v), 5000);
	/* Each key still has its own value. */
	for (size_t i = 0; i < 5000; i++) {
		const ocapn_value *k = ocapn_dict_key(v, i);
		int64_t x;
		assert_int_equal(ocapn_value_get_int64(ocapn_dict_val(v, i),
				     &x),
		    0);
		char want[16];
		int wn = snprintf(want, sizeof(want), "k%lld", (long long)x);
		assert_int_equal(k->len, (uint32_t)wn);
		assert_memory_equal(k->u.p, want, (size_t)wn);
	}
	ocapn_arena_free(arena);
	ocapn_syrup_writer_reset(w);
}

static void
test_container_errors(void **state)
{
	ocapn_syrup_writer *w = *state;
	const uint8_t *p;
	size_t n;
	/* closing the wrong kind */
	ocapn_syrup_write_list_begin(w);
	assert_int_equal(ocapn_syrup_write_dict_end(w), OCAPN_E_STATE);
	ocapn_syrup_writer_reset(w);
	/* closing what was never opened */
	assert_int_equal(ocapn_syrup_write_set_end(w), OCAPN_E_STATE);
	ocapn_syrup_writer_reset(w);
	/* a record without a label */
	ocapn_syrup_write_record_begin(w);
	assert_int_equal(ocapn_syrup_write_record_end(w), OCAPN_E_INVAL);
	ocapn_syrup_writer_reset(w);
	/* a dict key without a value */
	ocapn_syrup_write_dict_begin(w);
	ocapn_syrup_write_int(w, 1);
	ocapn_syrup_write_int(w, 2);
	ocapn_syrup_write_int(w, 3);
	assert_int_equal(ocapn_syrup_write_dict_end(w), OCAPN_E_INVAL);
	ocapn_syrup_writer_reset(w);
	/* finishing with a container open */
	ocapn_syrup_write_list_begin(w);
	ocapn_syrup_write_int(w, 1);
	assert_int_equal(ocapn_syrup_writer_finish(w, &p, &n), OCAPN_E_STATE);
	ocapn_syrup_writer_reset(w);
	/* value trees that are not well formed */
	ocapn_value rec;
	ocapn_value_set_record(&rec, NULL, 0);
	assert_int_equal(ocapn_syrup_write_value(w, &rec), OCAPN_E_INVAL);
	ocapn_syrup_writer_reset(w);
	ocapn_value odd;
	memset(&odd, 0, sizeof(odd));
	odd.kind = 99;
	assert_int_equal(ocapn_syrup_write_value(w, &odd), OCAPN_E_INVAL);
	ocapn_syrup_writer_reset(w);
	/* nesting beyond what the writer walks */
	ocapn_value *chain = calloc(1100, sizeof(*chain));
	for (size_t i = 0; i + 1 < 1100; i++)
		ocapn_value_set_list(&chain[i], &chain[i + 1], 1);
	ocapn_value_set_list(&chain[1099], NULL, 0);
	assert_int_equal(ocapn_syrup_write_value(w, &chain[0]), OCAPN_E_LIMIT);
	ocapn_syrup_writer_reset(w);
	assert_int_equal(ocapn_syrup_write_value(w, &chain[100]), 0);
	assert_int_equal(ocapn_syrup_writer_finish(w, &p, &n), 0);
	assert_int_equal(n, 2 * 1000);
	ocapn_syrup_writer_reset(w);
	free(chain);
}

/* After the first error every call returns it; reset clears it. */
static void
test_sticky_errors(void **state)
{
	ocapn_syrup_writer *w = *state;
	ocapn_syrup_write_list_begin(w);
	assert_int_equal(ocapn_syrup_write_string(w, "\xff", 1), OCAPN_E_UTF8);
	assert_int_equal(ocapn_syrup_write_int(w, 1), OCAPN_E_UTF8);
	assert_int_equal(ocapn_syrup_write_bool(w, true), OCAPN_E_UTF8);
	assert_int_equal(ocapn_syrup_write_bigint(w, false, LIT("1")),
	    OCAPN_E_UTF8);
	assert_int_equal(ocapn_syrup_write_list_end(w), OCAPN_E_UTF8);
	assert_int_equal(ocapn_syrup_write_dict_end(w), OCAPN_E_UTF8);
	assert_int_equal(ocapn_syrup_write_raw(w, "t", 1), OCAPN_E_UTF8);
	const char *why;
	assert_int_equal(ocapn_syrup_writer_error(w, &why), OCAPN_E_UTF8);
	assert_string_equal(why, "string is not valid UTF-8");
	const uint8_t *p = NULL;
	size_t n = 7;
	assert_int_equal(ocapn_syrup_writer_finish(w, &p, &n), OCAPN_E_UTF8);
	assert_null(p);
	assert_int_equal(n, 7);
	ocapn_syrup_writer_reset(w);
	assert_int_equal(ocapn_syrup_writer_error(w, &why), 0);
	assert_string_equal(why, "");
	ocapn_syrup_write_int(w, 1);
	expect(w, B("1+"));
}

static void
test_raw(void **state)
{
	ocapn_syrup_writer *w = *state;
	ocapn_syrup_write_set_begin(w);
	ocapn_syrup_write_raw(w, "3:zzz", 5);
	ocapn_syrup_write_raw(w, "[1+]", 4);
	ocapn_syrup_write_int(w, 7);
	ocapn_syrup_write_set_end(w);
	expect(w, B("#3:zzz7+[1+]$"));
}

/* Build a value tree that needs sorting, big integers and nesting. */
static void
build_sample(ocapn_syrup_writer *w)
{
	ocapn_syrup_write_record_begin(w);
	ocapn_syrup_write_symbol(w, LIT("op:deliver"));
	ocapn_syrup_write_dict_begin(w);
	ocapn_syrup_write_string(w, LIT("zeta"));
	ocapn_syrup_write_bigint(w, true,
	    LIT("123456789012345678901234567890"));
	ocapn_syrup_write_string(w, LIT("alpha"));
	ocapn_syrup_write_set_begin(w);
	ocapn_syrup_write_int(w, 3);
	ocapn_syrup_write_float64(w, 2.5);
	ocapn_syrup_write_int(w, 1);
	ocapn_syrup_write_set_end(w);
	ocapn_syrup_write_dict_end(w);
	ocapn_syrup_write_bytes(w, "0123456789abcdef", 16);
	ocapn_syrup_write_uint(w, UINT64_MAX);
	ocapn_syrup_write_record_end(w);
}

static void
test_fixed_buffer(void **state)
{
	ocapn_syrup_writer *w = *state;
	build_sample(w);
	const uint8_t *ref;
	size_t rlen;
	assert_int_equal(ocapn_syrup_writer_finish(w, &ref, &rlen), 0);
	uint8_t *want = malloc(rlen);
	memcpy(want, ref, rlen);

	for (size_t cap = 0; cap <= rlen + 1; cap++) {
		uint8_t *buf = cap ? malloc(cap) : NULL;
		ocapn_syrup_writer_reset_fixed(w, buf, cap);
		build_sample(w);
		const uint8_t *p;
		size_t n;
		int rc = ocapn_syrup_writer_finish(w, &p, &n);
		if (cap < rlen) {
			assert_int_equal(rc, OCAPN_E_NOSPACE);
			/* The size the output needs, counted on. */
			assert_int_equal(ocapn_syrup_writer_size(w), rlen);
			const char *why;
			assert_int_equal(ocapn_syrup_writer_error(w, &why),
			    OCAPN_E_NOSPACE);
		} else {
			assert_int_equal(rc, 0);
			assert_ptr_equal(p, buf);
			assert_int_equal(n, rlen);
			assert_memory_equal(buf, want, rlen);
		}
		free(buf);
	}
	/* Size-only pass: no buffer at all. */
	ocapn_syrup_writer_reset_fixed(w, NULL, 0);
	build_sample(w);
	assert_int_equal(ocapn_syrup_writer_size(w), rlen);
	free(want);
	ocapn_syrup_writer_reset(w);
}

static void
test_caller_buffer(void **state)
{
	ocapn_syrup_writer *w = *state;
	ocapn_buffer b;
	ocapn_buffer_init(&b);
	assert_int_equal(ocapn_buffer_append(&b, NULL, "head", 4), 0);
	ocapn_syrup_writer_reset_buffer(w, &b);
	ocapn_syrup_write_set_begin(w);
	ocapn_syrup_write_int(w, 2);
	ocapn_syrup_write_int(w, 1);
	ocapn_syrup_write_set_end(w);
	const uint8_t *p;
	size_t n;
	assert_int_equal(ocapn_syrup_writer_finish(w, &p, &n), 0);
	assert_int_equal(n, 6);
	assert_ptr_equal(p, b.data + 4);
	/* A second output appended after the first. */
	ocapn_syrup_writer_reset_buffer(w, &b);
	build_sample(w);
	assert_int_equal(ocapn_syrup_writer_finish(w, &p, &n), 0);
	assert_ptr_equal(p, b.data + 10);
	assert_int_equal(b.len, 10 + n);
	assert_memory_equal(b.data, "head#1+2+$", 10);
	ocapn_buffer_release(&b, NULL);
	assert_null(b.data);
	ocapn_syrup_writer_reset(w);
}

/* Values built with the setters encode and decode back equal. */
static void
test_value_tree(void **state)
{
	ocapn_syrup_writer *w = *state;
	ocapn_arena *arena = ocapn_arena_new(NULL);
	ocapn_value *items = ocapn_arena_values(arena, 8);
	ocapn_value_set_symbol(&items[0], LIT("label"));
	ocapn_value_set_int(&items[1], -42);
	assert_int_equal(ocapn_value_set_int_text(&items[2], arena,
			     LIT("-18446744073709551617")),
	    0);
	ocapn_value_set_bytes(&items[3], "\x00\x01", 2);
	ocapn_value_set_string(&items[4], LIT("str"));
	ocapn_value *kv = ocapn_arena_values(arena, 4);
	ocapn_value_set_symbol(&kv[0], LIT("b"));
	ocapn_value_set_bool(&kv[1], true);
	ocapn_value_set_symbol(&kv[2], LIT("a"));
	ocapn_value_set_float64(&kv[3], -0.0);
	ocapn_value_set_dict(&items[5], kv, 2);
	ocapn_value_set_list(&items[6], NULL, 0);
	ocapn_value_set_set(&items[7], NULL, 0);
	ocapn_value rec;
	ocapn_value_set_record(&rec, items, 8);
	assert_int_equal(ocapn_syrup_write_value(w, &rec), 0);
	expect(w, B("<5'label42-18446744073709551617-2:\x00\x01"
		    "3\"str{1'aD\x80\x00\x00\x00\x00\x00\x00\x00"
		    "1'bt}[]#$>"));
	/* The tree is untouched by the sort. */
	assert_true(ocapn_value_is_symbol(&kv[0], "b"));
	size_t n;
	uint8_t *enc = tu_encode(&rec, 0, &n);
	ocapn_value *back = tu_decode(arena, 0, enc, n);
	assert_true(ocapn_value_equal(&rec, back));
	free(enc);
	ocapn_arena_free(arena);
}

/* Round trips of the zoo and every Goblins message through value trees
 * and through the builder with the entries of each dict reversed. */
static void
rewrite_reversed(ocapn_syrup_writer *w, const ocapn_value *v)
{
	switch (v->kind) {
	case OCAPN_DICT:
		ocapn_syrup_write_dict_begin(w);
		for (size_t i = v->len; i-- > 0;) {
			rewrite_reversed(w, &v->u.items[2 * i]);
			rewrite_reversed(w, &v->u.items[2 * i + 1]);
		}
		ocapn_syrup_write_dict_end(w);
		break;
	case OCAPN_SET:
		ocapn_syrup_write_set_begin(w);
		for (size_t i = v->len; i-- > 0;)
			rewrite_reversed(w, &v->u.items[i]);
		ocapn_syrup_write_set_end(w);
		break;
	case OCAPN_LIST:
	case OCAPN_RECORD:
		if (v->kind == OCAPN_LIST)
			ocapn_syrup_write_list_begin(w);
		else
			ocapn_syrup_write_record_begin(w);
		for (size_t i = 0; i < v->len; i++)
			rewrite_reversed(w, &v->u.items[i]);
		if (v->kind == OCAPN_LIST)
			ocapn_syrup_write_list_end(w);
		else
			ocapn_syrup_write_record_end(w);
		break;
	default:
		ocapn_syrup_write_value(w, v);
	}
}

static void
test_roundtrip_vectors(void **state)
{
	ocapn_syrup_writer *w = *state;
	size_t n;
	tu_msg *m = tu_capture_messages(&n);
	size_t zlen;
	uint8_t *zoo = tu_read_data("syrup/zoo.bin", &zlen);
	ocapn_arena *arena = ocapn_arena_new(NULL);
	for (size_t i = 0; i <= n; i++) {
		const uint8_t *in = i < n ? m[i].data : zoo;
		size_t len = i < n ? m[i].len : zlen;
		ocapn_arena_reset(arena);
		ocapn_value *v = tu_decode(arena, 0, in, len);
		ocapn_syrup_writer_reset(w);
		rewrite_reversed(w, v);
		expect(w, in, len);
	}
	ocapn_arena_free(arena);
	free(zoo);
	tu_free_msgs(m, n);
}

/* Every atom length around the writer's short paths (1 and 2 length
 * digits, payloads copied in place up to 16 bytes), for bytes, strings
 * and symbols, alone and as neighbours in a list. */
static void
test_atom_lengths(void **state)
{
	ocapn_syrup_writer *w = *state;
	static const char types[] = {':', '"', '\''};
	uint8_t src[300], want[1200];
	for (size_t i = 0; i < sizeof(src); i++)
		src[i] = (uint8_t)('a' + i % 26);
	for (size_t t = 0; t < sizeof(types); t++) {
		for (size_t n = 0; n <= 260; n++) {
			ocapn_syrup_writer_reset(w);
			ocapn_syrup_write_list_begin(w);
			size_t len = 0;
			want[len++] = '[';
			for (size_t k = 0; k < 3; k++) {
				/* n, then two shorter neighbours */
				size_t m = k == 0 ? n : n / (k + 1);
				int rc = t == 0 ?
				    ocapn_syrup_write_bytes(w, src + k, m) :
				    t == 1 ? ocapn_syrup_write_string(w,
						 (const char *)src + k, m) :
					     ocapn_syrup_write_symbol(w,
						 (const char *)src + k, m);
				assert_int_equal(rc, OCAPN_OK);
				len += (size_t)sprintf((char *)want + len,
				    "%zu%c", m, types[t]);
				memcpy(want + len, src + k, m);
				len += m;
			}
			ocapn_syrup_write_list_end(w);
			want[len++] = ']';
			expect(w, want, len);
		}
	}
}

/* Once its buffers have grown, the writer allocates nothing. */
static void
test_zero_allocations(void **state)
{
	(void)state;
	tu_counter c;
	tu_counter_init(&c);
	ocapn_syrup_writer *w = ocapn_syrup_writer_new(0, &c.alloc);
	unsigned long warm = 0;
	for (int round = 0; round < 3; round++) {
		if (round == 2)
			warm = c.calls;
		for (int k = 0; k < 10; k++) {
			ocapn_syrup_writer_reset(w);
			build_sample(w);
			const uint8_t *p;
			size_t n;
			assert_int_equal(ocapn_syrup_writer_finish(w, &p, &n),
			    0);
		}
	}
	assert_int_equal(c.calls, warm);
	ocapn_syrup_writer_free(w);
	assert_int_equal(c.live_bytes, 0);

	/* Allocation failures: reported, no leak. */
	bool succeeded = false;
	for (unsigned long limit = 1; limit < 100 && !succeeded; limit++) {
		tu_counter_init(&c);
		c.fail_after = limit;
		w = ocapn_syrup_writer_new(0, &c.alloc);
		if (w) {
			build_sample(w);
			const uint8_t *p;
			size_t n;
			int rc = ocapn_syrup_writer_finish(w, &p, &n);
			assert_true(rc == 0 || rc == OCAPN_E_NOMEM);
			succeeded = rc == 0;
		}
		ocapn_syrup_writer_free(w);
		assert_int_equal(c.live_bytes, 0);
	}
	assert_true(succeeded);
}

int
main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	const struct CMUnitTest tests[] = {
	    T(test_atoms),
	    T(test_atom_lengths),
	    T(test_bigint_errors),
	    T(test_floats),
	    T(test_float32_values),
	    T(test_utf8_checked),
	    T(test_containers),
	    T(test_dict_sorted),
	    T(test_nested_dict_keys),
	    T(test_duplicates),
	    T(test_large_sort),
	    T(test_container_errors),
	    T(test_sticky_errors),
	    T(test_raw),
	    T(test_fixed_buffer),
	    T(test_caller_buffer),
	    T(test_value_tree),
	    T(test_roundtrip_vectors),
	    cmocka_unit_test(test_zero_allocations),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
