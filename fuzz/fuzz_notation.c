/*
 * Fuzz target: the abstract-notation parser.
 *
 * The input is parsed as a sequence of values.  For every value accepted:
 *   - printing it and parsing the text gives an equal value, and printing
 *     that value gives the same text (the printer is deterministic);
 *   - encoding it to Syrup succeeds, the bytes decode (strictly) to an
 *     equal value and re-encode to the same bytes.
 * Rejections must carry a reason and an offset inside the input.
 */
#include <string.h>

#include <ocapn/ocapn.h>

#include "fuzz_common.h"

static ocapn_syrup_decoder *dec;
static ocapn_syrup_writer *w, *w2;
static ocapn_arena *arena, *arena2;
static ocapn_buffer t1, t2;

static void
setup(void)
{
	if (dec)
		return;
	dec = ocapn_syrup_decoder_new(0, NULL);
	w = ocapn_syrup_writer_new(OCAPN_SYRUP_WRITE_FLOAT32, NULL);
	w2 = ocapn_syrup_writer_new(OCAPN_SYRUP_WRITE_FLOAT32, NULL);
	arena = ocapn_arena_new(NULL);
	arena2 = ocapn_arena_new(NULL);
	FUZZ_CHECK(dec && w && w2 && arena && arena2);
	/* The notation parser nests up to 1000 levels. */
	FUZZ_CHECK(ocapn_syrup_decoder_set_limit(dec, OCAPN_SYRUP_MAX_DEPTH,
		       2000) == OCAPN_OK);
	ocapn_buffer_init(&t1);
	ocapn_buffer_init(&t2);
}

static void
check_value(const ocapn_value *v)
{
	t1.len = 0;
	FUZZ_CHECK(ocapn_notation_print(v, 0, &t1, NULL) == OCAPN_OK);
	ocapn_value *back;
	size_t used, eo;
	const char *why;
	ocapn_arena_reset(arena2);
	int rc = ocapn_notation_parse((const char *)t1.data, t1.len, arena2,
	    &back, &used, &eo, &why);
	if (rc) {
		fprintf(stderr, "printed text does not parse: %s at %zu\n"
		    "%.*s\n", why, eo, (int)t1.len, (const char *)t1.data);
		FUZZ_CHECK(0);
	}
	FUZZ_CHECK(used == t1.len);
	FUZZ_CHECK(ocapn_value_equal(v, back));
	t2.len = 0;
	FUZZ_CHECK(ocapn_notation_print(back, 0, &t2, NULL) == OCAPN_OK);
	FUZZ_CHECK(t2.len == t1.len && memcmp(t1.data, t2.data, t1.len) == 0);

	ocapn_syrup_writer_reset(w);
	FUZZ_CHECK(ocapn_syrup_write_value(w, v) == OCAPN_OK);
	const uint8_t *enc, *enc2;
	size_t elen, elen2;
	FUZZ_CHECK(ocapn_syrup_writer_finish(w, &enc, &elen) == OCAPN_OK);
	ocapn_arena_reset(arena2);
	ocapn_value *v2;
	rc = ocapn_syrup_decode_one(dec, arena2, enc, elen, &v2);
	if (rc) {
		size_t off;
		fprintf(stderr, "encoding does not decode: %s at %zu\n",
		    ocapn_syrup_decoder_error(dec, &off), off);
		FUZZ_CHECK(0);
	}
	FUZZ_CHECK(ocapn_value_equal(v, v2));
	ocapn_syrup_writer_reset(w2);
	FUZZ_CHECK(ocapn_syrup_write_value(w2, v2) == OCAPN_OK);
	FUZZ_CHECK(ocapn_syrup_writer_finish(w2, &enc2, &elen2) == OCAPN_OK);
	FUZZ_CHECK(elen == elen2 && memcmp(enc, enc2, elen) == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	setup();
	size_t off = 0;
	for (int n = 0; n < 64 && off < size; n++) {
		ocapn_value *v;
		size_t used, eo;
		const char *why;
		ocapn_arena_reset(arena);
		int rc = ocapn_notation_parse((const char *)data + off,
		    size - off, arena, &v, &used, &eo, &why);
		if (rc) {
			FUZZ_CHECK(why && why[0]);
			FUZZ_CHECK(eo <= size - off);
			break;
		}
		FUZZ_CHECK(used > 0 && used <= size - off);
		check_value(v);
		off += used;
	}
	return 0;
}
