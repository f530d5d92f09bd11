/*
 * Golden vectors: the Syrup zoo and every real Goblins CapTP stream must
 * decode as a sequence of values and re-encode byte-identically.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

/* Decode `buf` as a stream of values, re-encode each, and compare. */
static size_t
roundtrip_stream(const uint8_t *buf, size_t len)
{
	ocapn_syrup_decoder *dec = ocapn_syrup_decoder_new(0, NULL);
	ocapn_syrup_writer *w = ocapn_syrup_writer_new(0, NULL);
	ocapn_arena *arena = ocapn_arena_new(NULL);
	assert_non_null(dec);
	assert_non_null(w);
	assert_non_null(arena);
	size_t off = 0, count = 0;
	while (off < len) {
		ocapn_value *v;
		size_t used;
		int rc = ocapn_syrup_decode(dec, arena, buf + off, len - off,
		    &v, &used);
		if (rc) {
			size_t eo;
			const char *why = ocapn_syrup_decoder_error(dec, &eo);
			fail_msg("decode failed at %zu: %s", off + eo, why);
		}
		ocapn_syrup_writer_reset(w);
		assert_int_equal(ocapn_syrup_write_value(w, v), OCAPN_OK);
		const uint8_t *out;
		size_t olen;
		assert_int_equal(ocapn_syrup_writer_finish(w, &out, &olen), 0);
		assert_int_equal(olen, used);
		assert_memory_equal(out, buf + off, used);
		ocapn_arena_reset(arena);
		off += used;
		count++;
	}
	ocapn_arena_free(arena);
	ocapn_syrup_writer_free(w);
	ocapn_syrup_decoder_free(dec);
	return count;
}

static void
test_zoo(void **state)
{
	(void)state;
	size_t len;
	uint8_t *buf = tu_read_data("syrup/zoo.bin", &len);
	assert_int_equal(roundtrip_stream(buf, len), 1);

	/* Spot-check the decoded structure. */
	ocapn_syrup_decoder *dec = ocapn_syrup_decoder_new(0, NULL);
	ocapn_arena *arena = ocapn_arena_new(NULL);
	ocapn_value *v;
	assert_int_equal(ocapn_syrup_decode_one(dec, arena, buf, len, &v), 0);
	assert_int_equal(v->kind, OCAPN_RECORD);
	const ocapn_value *label = ocapn_record_label(v);
	assert_int_equal(label->kind, OCAPN_BYTES);
	assert_int_equal(label->len, 3);
	assert_memory_equal(label->u.p, "zoo", 3);
	assert_int_equal(ocapn_value_count(v), 2);
	const ocapn_value *animals = ocapn_value_item(v, 1);
	assert_int_equal(animals->kind, OCAPN_LIST);
	assert_int_equal(animals->len, 3);
	ocapn_arena_free(arena);
	ocapn_syrup_decoder_free(dec);
	free(buf);
}

static void
test_goblins_captp_streams(void **state)
{
	(void)state;
	static const char *const scenarios[] = {
	    "testuds-all-scenarios", "testuds-bad-swiss-fetch",
	    "testuds-op-get-index-untag", "testuds-value-encodings",
	    "uds-op-abort", "uds-pipelined-car-factory",
	    "uds-promise-resolver-break",
	    "uds-remote-exception-broken-pipeline", "uds-session-fetch-echo",
	    "uds-third-party-handoff"};
	size_t files = 0, values = 0;
	for (size_t s = 0; s < sizeof(scenarios) / sizeof(*scenarios); s++) {
		char dir[256];
		snprintf(dir, sizeof(dir), "goblins-captures/%s",
		    scenarios[s]);
		char **list = tu_list_data(dir, "captp", ".bin");
		for (char **f = list; *f; f++) {
			size_t len;
			uint8_t *buf = tu_read_data(*f, &len);
			assert_true(len > 0);
			values += roundtrip_stream(buf, len);
			files++;
			free(buf);
		}
		tu_free_list(list);
	}
	/* 10 scenarios, 2 directions each, plus 2 extra sessions in the
	 * handoff scenario. */
	assert_int_equal(files, 24);
	assert_true(values > 100);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_zoo),
	    cmocka_unit_test(test_goblins_captp_streams),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
