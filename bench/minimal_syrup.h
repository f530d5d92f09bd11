/*
 * A minimal, non-validating Syrup codec used only as the benchmark's
 * baseline: the least work a decoder that builds the same value tree (and
 * an encoder that writes the same bytes) can do.  It checks bounds and
 * nothing else: no UTF-8, no canonical order, no leading zeros, no limits,
 * no whitespace, no incremental decoding, no sorting when encoding.
 */
#ifndef OCAPN_BENCH_MINIMAL_SYRUP_H
#define OCAPN_BENCH_MINIMAL_SYRUP_H

#include <stddef.h>
#include <stdint.h>

#include <ocapn/syrup.h>

typedef struct mini_codec {
	ocapn_value *vals; /* value stack */
	size_t vcap;
	struct mini_frame {
		uint8_t kind;
		uint32_t first;
	} *frames;
	size_t fcap;
	uint8_t *bump; /* container arrays */
	size_t bcap, bused;
} mini_codec;

/* Fixed capacities; returns 0 or -1. */
int mini_init(mini_codec *m, size_t max_values, size_t max_depth,
    size_t bump_bytes);
void mini_free(mini_codec *m);

/* Decode one value of buf[0..len): returns the bytes used, or -1.  The
 * value lives in m's bump area until the next call. */
long mini_decode(mini_codec *m, const uint8_t *buf, size_t len,
    ocapn_value **out);

/* Encode `v` into out[0..cap): returns the length, or -1 if it does not
 * fit.  Dicts and sets are written in the order they are in memory. */
long mini_encode(const ocapn_value *v, uint8_t *out, size_t cap);

#endif
