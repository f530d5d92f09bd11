/*
 * The value model and the arena: constructors, accessors on every kind
 * (and on the wrong kinds), equality, and arena allocation and reuse.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "syrup_testutil.h"

static void
test_int_text(void **state)
{
	(void)state;
	ocapn_arena *arena = ocapn_arena_new(NULL);
	static const struct {
		const char *text;
		int64_t fast;
	} fast[] = {{"0", 0}, {"-0", 0}, {"+0", 0}, {"+5", 5}, {"-42", -42},
	    {"9223372036854775807", INT64_MAX},
	    {"-9223372036854775808", INT64_MIN}};
	for (size_t i = 0; i < sizeof(fast) / sizeof(*fast); i++) {
		ocapn_value v;
		assert_int_equal(ocapn_value_set_int_text(&v, arena,
				     fast[i].text, strlen(fast[i].text)),
		    0);
		assert_int_equal(v.flags, 0);
		assert_true(v.u.i == fast[i].fast);
	}
	static const char *const big[] = {"9223372036854775808",
	    "-9223372036854775809", "18446744073709551616",
	    "-340282366920938463463374607431768211456"};
	for (size_t i = 0; i < sizeof(big) / sizeof(*big); i++) {
		char text[64];
		snprintf(text, sizeof(text), "%s", big[i]);
		ocapn_value v;
		assert_int_equal(ocapn_value_set_int_text(&v, arena, text,
				     strlen(text)),
		    0);
		assert_true(v.flags & OCAPN_VALUE_BIGINT);
		assert_int_equal((v.flags & OCAPN_VALUE_NEGATIVE) != 0,
		    text[0] == '-');
		/* The digits were copied into the arena. */
		memset(text, '0', strlen(text));
		char back[64];
		size_t need;
		assert_int_equal(ocapn_value_get_int_text(&v, back,
				     sizeof(back), &need),
		    0);
		assert_string_equal(back, big[i]);
	}
	static const char *const bad[] = {"", "-", "+", "01", "-01", "1a",
	    " 1", "--1", "1-", "0x10", "1.0"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		ocapn_value v;
		assert_int_equal(ocapn_value_set_int_text(&v, arena, bad[i],
				     strlen(bad[i])),
		    OCAPN_E_SYNTAX);
	}
	/* int text of fast values */
	ocapn_value v;
	ocapn_value_set_int(&v, INT64_MIN);
	char buf[32];
	size_t need;
	assert_int_equal(ocapn_value_get_int_text(&v, buf, sizeof(buf), &need),
	    0);
	assert_string_equal(buf, "-9223372036854775808");
	assert_int_equal(need, 21);
	assert_int_equal(ocapn_value_get_int_text(&v, buf, 20, &need),
	    OCAPN_E_NOSPACE);
	assert_int_equal(need, 21);
	ocapn_value_set_bool(&v, true);
	assert_int_equal(ocapn_value_get_int_text(&v, buf, sizeof(buf), &need),
	    OCAPN_E_TYPE);
	ocapn_arena_free(arena);
}

static void
test_accessors_wrong_kind(void **state)
{
	(void)state;
	ocapn_value v;
	ocapn_value_set_string(&v, "abc", 3);
	bool b;
	int64_t i;
	uint64_t u;
	double d;
	float f;
	assert_int_equal(ocapn_value_get_bool(&v, &b), OCAPN_E_TYPE);
	assert_int_equal(ocapn_value_get_int64(&v, &i), OCAPN_E_TYPE);
	assert_int_equal(ocapn_value_get_uint64(&v, &u), OCAPN_E_TYPE);
	assert_int_equal(ocapn_value_get_float64(&v, &d), OCAPN_E_TYPE);
	assert_int_equal(ocapn_value_get_float32(&v, &f), OCAPN_E_TYPE);
	assert_false(ocapn_value_fits_int64(&v));
	assert_false(ocapn_value_fits_uint64(&v));
	assert_int_equal(ocapn_value_count(&v), 0);
	assert_null(ocapn_value_item(&v, 0));
	assert_null(ocapn_record_label(&v));
	assert_null(ocapn_dict_key(&v, 0));
	assert_null(ocapn_dict_val(&v, 0));
	assert_null(ocapn_dict_get(&v, &v));
	assert_false(ocapn_value_is_record(&v, "abc", SIZE_MAX));
	assert_false(ocapn_value_is_symbol(&v, "abc"));
	assert_true(ocapn_value_is_string(&v, "abc"));
	assert_false(ocapn_value_is_string(&v, "ab"));
	assert_int_equal(ocapn_value_kind(&v), OCAPN_STRING);
	ocapn_value_set_int(&v, 3);
	const uint8_t *p;
	size_t n;
	assert_int_equal(ocapn_value_get_data(&v, &p, &n), OCAPN_E_TYPE);
	/* Records: the label is not a field. */
	ocapn_value items[3];
	ocapn_value_set_int(&items[0], 1); /* a non-symbol label */
	ocapn_value_set_int(&items[1], 2);
	ocapn_value_set_int(&items[2], 3);
	ocapn_value_set_record(&v, items, 3);
	assert_int_equal(ocapn_value_count(&v), 2);
	assert_ptr_equal(ocapn_value_item(&v, 0), &items[1]);
	assert_null(ocapn_value_item(&v, 2));
	assert_ptr_equal(ocapn_record_label(&v), &items[0]);
	assert_false(ocapn_value_is_record(&v, "x", 2));
	ocapn_value_set_record(&v, items, 0);
	assert_int_equal(ocapn_value_count(&v), 0);
	assert_null(ocapn_record_label(&v));
	assert_null(ocapn_value_item(&v, 0));
	assert_false(ocapn_value_is_record(&v, "x", SIZE_MAX));
	/* A list has items but no dict entries. */
	ocapn_value_set_list(&v, items, 3);
	assert_null(ocapn_dict_key(&v, 0));
	assert_ptr_equal(ocapn_value_item(&v, 2), &items[2]);
}

static void
test_equal(void **state)
{
	(void)state;
	ocapn_value a, b;
	ocapn_value_set_float64(&a, 0.0);
	ocapn_value_set_float64(&b, -0.0);
	assert_false(ocapn_value_equal(&a, &b));
	uint64_t n1 = UINT64_C(0x7ff8000000000001), n2 = UINT64_C(
						       0xfff0000000000002);
	double d1, d2;
	memcpy(&d1, &n1, 8);
	memcpy(&d2, &n2, 8);
	ocapn_value_set_float64(&a, d1);
	ocapn_value_set_float64(&b, d2);
	assert_true(ocapn_value_equal(&a, &b)); /* one NaN */
	ocapn_value_set_float32(&a, 1.5f);
	ocapn_value_set_float64(&b, 1.5);
	assert_false(ocapn_value_equal(&a, &b)); /* kinds differ */
	ocapn_value_set_bytes(&a, "ab", 2);
	ocapn_value_set_string(&b, "ab", 2);
	assert_false(ocapn_value_equal(&a, &b));
	ocapn_value_set_string(&a, "ab", 2);
	assert_true(ocapn_value_equal(&a, &b));
	ocapn_value_set_string(&a, "", 0);
	ocapn_value_set_string(&b, NULL, 0);
	assert_true(ocapn_value_equal(&a, &b));
	ocapn_value_set_bool(&a, true);
	b = a;
	b.u.b = 7;
	assert_true(ocapn_value_equal(&a, &b));

	/* Dicts and sets regardless of the order in memory. */
	ocapn_value k1[4], k2[4];
	ocapn_value_set_symbol(&k1[0], "a", 1);
	ocapn_value_set_int(&k1[1], 1);
	ocapn_value_set_symbol(&k1[2], "b", 1);
	ocapn_value_set_int(&k1[3], 2);
	k2[0] = k1[2];
	k2[1] = k1[3];
	k2[2] = k1[0];
	k2[3] = k1[1];
	ocapn_value_set_dict(&a, k1, 2);
	ocapn_value_set_dict(&b, k2, 2);
	assert_true(ocapn_value_equal(&a, &b));
	ocapn_value_set_int(&k2[3], 9); /* 'a -> 9 */
	assert_false(ocapn_value_equal(&a, &b));
	ocapn_value_set_set(&a, k1, 4);
	ocapn_value_set_set(&b, k1, 3);
	assert_false(ocapn_value_equal(&a, &b));
	/* Lists and records do depend on order. */
	ocapn_value_set_list(&a, k1, 2);
	ocapn_value_set_list(&b, k2 + 2, 2);
	k2[3] = k1[1];
	assert_true(ocapn_value_equal(&a, &b));
	ocapn_value_set_list(&b, k2, 2);
	assert_false(ocapn_value_equal(&a, &b));

	/* Integers: fast form and digits. */
	ocapn_arena *arena = ocapn_arena_new(NULL);
	assert_int_equal(ocapn_value_set_int_text(&a, arena,
			     "18446744073709551616", 20),
	    0);
	assert_int_equal(ocapn_value_set_int_text(&b, arena,
			     "-18446744073709551616", 21),
	    0);
	assert_false(ocapn_value_equal(&a, &b));
	assert_int_equal(ocapn_value_set_int_text(&b, arena,
			     "18446744073709551616", 20),
	    0);
	assert_true(ocapn_value_equal(&a, &b));
	ocapn_arena_free(arena);
}

static void
test_arena(void **state)
{
	(void)state;
	tu_counter c;
	tu_counter_init(&c);
	ocapn_arena *a = ocapn_arena_new(&c.alloc);
	assert_int_equal(ocapn_arena_used(a), 0);
	assert_int_equal(ocapn_arena_reserved(a), 0);
	/* Alignment and distinct zero-size blocks. */
	void *z1 = ocapn_arena_alloc(a, 0), *z2 = ocapn_arena_alloc(a, 0);
	assert_non_null(z1);
	assert_true(z1 != z2);
	for (size_t n = 1; n < 100; n += 7) {
		void *p = ocapn_arena_alloc(a, n);
		assert_int_equal((uintptr_t)p % 16, 0);
		memset(p, 0xab, n);
	}
	char *s = ocapn_arena_memdup(a, "hello", 5);
	assert_memory_equal(s, "hello", 5);
	ocapn_value *v = ocapn_arena_values(a, 10);
	for (int i = 0; i < 10; i++)
		assert_int_equal(v[i].kind, 0);
	assert_null(ocapn_arena_alloc(a, SIZE_MAX));
	assert_null(ocapn_arena_values(a, SIZE_MAX / 8));
	/* Grow into several chunks, then reset: one chunk remains, large
	 * enough that the same work needs no allocator call. */
	for (int i = 0; i < 100; i++)
		assert_non_null(ocapn_arena_alloc(a, 1000));
	size_t reserved = ocapn_arena_reserved(a);
	assert_true(ocapn_arena_used(a) > 100000);
	ocapn_arena_reset(a);
	assert_int_equal(ocapn_arena_used(a), 0);
	assert_int_equal(ocapn_arena_reserved(a), reserved);
	unsigned long calls = c.calls;
	for (int i = 0; i < 100; i++)
		assert_non_null(ocapn_arena_alloc(a, 1000));
	assert_int_equal(c.calls, calls);
	/* A huge block is not kept across resets. */
	assert_non_null(ocapn_arena_alloc(a, 16u << 20));
	ocapn_arena_reset(a);
	assert_true(ocapn_arena_reserved(a) <= (8u << 20));
	ocapn_arena_free(a);
	assert_int_equal(c.live_bytes, 0);
	ocapn_arena_free(NULL);
	ocapn_arena_reset(NULL);

	/* Allocation failure: NULL, nothing leaked. */
	tu_counter_init(&c);
	c.fail_after = 1;
	a = ocapn_arena_new(&c.alloc);
	assert_non_null(a);
	assert_null(ocapn_arena_alloc(a, 10));
	assert_null(ocapn_arena_memdup(a, "x", 1));
	ocapn_arena_free(a);
	assert_int_equal(c.live_bytes, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_int_text),
	    cmocka_unit_test(test_accessors_wrong_kind),
	    cmocka_unit_test(test_equal),
	    cmocka_unit_test(test_arena),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
