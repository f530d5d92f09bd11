/*
 * Fuzz target: the strict Syrup decoder.
 *
 * The input is decoded as a stream of values.  For every value accepted:
 *   - re-encoding succeeds, decodes again, and the result is equal;
 *   - when the value was written without whitespace and holds no NaN with
 *     a non-canonical payload, the re-encoding is byte-identical to the
 *     bytes the decoder consumed (the decoder accepts canonical input only);
 *   - the notation printer (plain and ASCII-only) and parser round-trip it;
 *   - every proper prefix tried is OCAPN_E_INCOMPLETE and leaves the arena
 *     as it was;
 *   - the COPY_ATOMS and LAX_ORDER decoders accept it with an equal value,
 *     and the NO_WHITESPACE decoder agrees whenever it accepts.
 * Rejections must carry a reason and an offset inside the input.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ocapn/ocapn.h>

#include "fuzz_common.h"

static ocapn_syrup_decoder *dec, *dec_copy, *dec_lax, *dec_nows;
static ocapn_syrup_writer *w;
static ocapn_arena *arena, *arena2;
static ocapn_buffer text;

static void
setup(void)
{
	if (dec)
		return;
	dec = ocapn_syrup_decoder_new(0, NULL);
	dec_copy = ocapn_syrup_decoder_new(OCAPN_SYRUP_COPY_ATOMS, NULL);
	dec_lax = ocapn_syrup_decoder_new(OCAPN_SYRUP_LAX_ORDER, NULL);
	dec_nows = ocapn_syrup_decoder_new(OCAPN_SYRUP_NO_WHITESPACE, NULL);
	w = ocapn_syrup_writer_new(OCAPN_SYRUP_WRITE_FLOAT32, NULL);
	arena = ocapn_arena_new(NULL);
	arena2 = ocapn_arena_new(NULL);
	FUZZ_CHECK(dec && dec_copy && dec_lax && dec_nows && w && arena &&
	    arena2);
	ocapn_buffer_init(&text);
}

/* Does `v` hold a float whose bits are a NaN other than the canonical
 * one?  Such input is accepted but re-encodes differently. */
static bool
has_odd_nan(const ocapn_value *v)
{
	switch (v->kind) {
	case OCAPN_FLOAT64: {
		uint64_t b;
		memcpy(&b, &v->u.f64, 8);
		return isnan(v->u.f64) && b != UINT64_C(0x7ff8000000000000);
	}
	case OCAPN_FLOAT32: {
		uint32_t b;
		memcpy(&b, &v->u.f32, 4);
		return isnan(v->u.f32) && b != UINT32_C(0x7fc00000);
	}
	case OCAPN_LIST:
	case OCAPN_SET:
	case OCAPN_RECORD:
	case OCAPN_DICT: {
		size_t n = v->kind == OCAPN_DICT ? 2 * (size_t)v->len : v->len;
		for (size_t i = 0; i < n; i++)
			if (has_odd_nan(&v->u.items[i]))
				return true;
		return false;
	}
	default:
		return false;
	}
}

static void
check_notation(const ocapn_value *v, unsigned flags)
{
	text.len = 0;
	int rc = ocapn_notation_print(v, flags, &text, NULL);
	FUZZ_CHECK(rc == OCAPN_OK);
	ocapn_value *back;
	size_t used, eo;
	const char *why;
	rc = ocapn_notation_parse((const char *)text.data, text.len, arena2,
	    &back, &used, &eo, &why);
	if (rc) {
		fprintf(stderr, "notation does not parse back: %s at %zu\n"
		    "%.*s\n", why, eo, (int)text.len, (const char *)text.data);
		FUZZ_CHECK(0);
	}
	FUZZ_CHECK(used == text.len);
	FUZZ_CHECK(ocapn_value_equal(v, back));
	if (flags & OCAPN_NOTATION_ASCII)
		for (size_t i = 0; i < text.len; i++)
			FUZZ_CHECK(text.data[i] < 0x80);
}

static void
check_value(const uint8_t *in, size_t len, const ocapn_value *v,
    size_t used)
{
	/* Re-encode and decode again. */
	ocapn_syrup_writer_reset(w);
	FUZZ_CHECK(ocapn_syrup_write_value(w, v) == OCAPN_OK);
	const uint8_t *enc;
	size_t elen;
	FUZZ_CHECK(ocapn_syrup_writer_finish(w, &enc, &elen) == OCAPN_OK);
	ocapn_value *v2;
	ocapn_arena_reset(arena2);
	int rc = ocapn_syrup_decode_one(dec, arena2, enc, elen, &v2);
	FUZZ_CHECK(rc == OCAPN_OK);
	FUZZ_CHECK(ocapn_value_equal(v, v2));

	/* Byte identity for input without whitespace or odd NaNs. */
	ocapn_value *v3;
	size_t used3;
	ocapn_arena_reset(arena2);
	rc = ocapn_syrup_decode(dec_nows, arena2, in, len, &v3, &used3);
	if (rc == OCAPN_OK) {
		FUZZ_CHECK(used3 == used);
		FUZZ_CHECK(ocapn_value_equal(v, v3));
		if (!has_odd_nan(v)) {
			FUZZ_CHECK(elen == used);
			FUZZ_CHECK(memcmp(enc, in, used) == 0);
		}
	}

	/* The other decoders agree. */
	ocapn_arena_reset(arena2);
	rc = ocapn_syrup_decode(dec_copy, arena2, in, len, &v3, &used3);
	FUZZ_CHECK(rc == OCAPN_OK && used3 == used);
	FUZZ_CHECK(ocapn_value_equal(v, v3));
	ocapn_arena_reset(arena2);
	rc = ocapn_syrup_decode(dec_lax, arena2, in, len, &v3, &used3);
	FUZZ_CHECK(rc == OCAPN_OK && used3 == used);
	FUZZ_CHECK(ocapn_value_equal(v, v3));

	/* Proper prefixes are incomplete and leave the arena untouched. */
	size_t cuts[3] = {used - 1, used / 2, 1};
	for (int k = 0; k < 3; k++) {
		if (cuts[k] >= used)
			continue;
		size_t before = ocapn_arena_used(arena2);
		rc = ocapn_syrup_decode(dec, arena2, in, cuts[k], &v3, &used3);
		FUZZ_CHECK(rc == OCAPN_E_INCOMPLETE);
		FUZZ_CHECK(ocapn_arena_used(arena2) == before);
	}

	ocapn_arena_reset(arena2);
	check_notation(v, 0);
	ocapn_arena_reset(arena2);
	check_notation(v, OCAPN_NOTATION_ASCII);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	setup();
	size_t off = 0;
	for (int n = 0; n < 64 && off < size; n++) {
		ocapn_value *v;
		size_t used;
		ocapn_arena_reset(arena);
		int rc = ocapn_syrup_decode(dec, arena, data + off, size - off,
		    &v, &used);
		if (rc == OCAPN_E_INCOMPLETE)
			break;
		if (rc) {
			size_t eo;
			const char *why = ocapn_syrup_decoder_error(dec, &eo);
			FUZZ_CHECK(why && why[0]);
			FUZZ_CHECK(eo <= size - off);
			/* The copying decoder rejects it the same way. */
			int rc2 = ocapn_syrup_decode(dec_copy, arena,
			    data + off, size - off, &v, &used);
			FUZZ_CHECK(rc2 == rc);
			break;
		}
		FUZZ_CHECK(used > 0 && used <= size - off);
		check_value(data + off, size - off, v, used);
		off += used;
	}
	return 0;
}
