/*
 * Helpers shared by the Syrup tests: a counting allocator, the Goblins
 * capture messages as a list, and small encode/decode shortcuts.
 */
#ifndef OCAPN_SYRUP_TESTUTIL_H
#define OCAPN_SYRUP_TESTUTIL_H

#include "testutil.h"

/* A byte-string literal and its length (without the final NUL). */
#define B(s) (const uint8_t *)(s), (sizeof(s) - 1)

/* Allocation counter behind an ocapn_allocator. */
typedef struct tu_counter {
	unsigned long calls;  /* allocations and reallocations */
	unsigned long frees;
	long long live_bytes;
	unsigned long fail_after; /* 0: never fail; else fail call N+1.. */
	ocapn_allocator alloc;
} tu_counter;

void tu_counter_init(tu_counter *c);

/* One message of a capture stream (a private malloc'ed copy). */
typedef struct tu_msg {
	uint8_t *data;
	size_t len;
	char origin[128]; /* "scenario/file #n" */
} tu_msg;

/* Every captp*.bin stream of tests/data/goblins-captures, whole. */
tu_msg *tu_capture_streams(size_t *n);
/* Every message of those streams, split with the decoder. */
tu_msg *tu_capture_messages(size_t *n);
void tu_free_msgs(tu_msg *m, size_t n);

/* Encode `v` with a fresh writer (flags) into a malloc'ed buffer; fails
 * the test on error. */
uint8_t *tu_encode(const ocapn_value *v, unsigned flags, size_t *len);

/* Decode exactly one value of buf[0..len) with `flags`; fails the test on
 * error.  The value lives in `arena`. */
ocapn_value *tu_decode(ocapn_arena *arena, unsigned flags,
    const uint8_t *buf, size_t len);

/* The notation of `v` as a malloc'ed NUL-terminated string (`flags` of
 * ocapn_notation_print); fails the test on error. */
char *tu_print(const ocapn_value *v, unsigned flags);

/* Parse all of `text` (only whitespace may follow the value) as one
 * notation value in `arena`; fails the test otherwise. */
ocapn_value *tu_parse(ocapn_arena *arena, const char *text);

#endif
