/*
 * Internal interfaces of the Syrup layer.  Never installed.
 */
#ifndef OCAPN_SYRUP_INTERNAL_H
#define OCAPN_SYRUP_INTERNAL_H

#include <ocapn/syrup.h>

#include "../util/util.h"

/* Arena checkpoints: roll back everything allocated after a mark. */
typedef struct ocapn__arena_mark {
	void *chunk;
	size_t off;
	size_t used;
} ocapn__arena_mark;

void ocapn__arena_mark_get(const ocapn_arena *arena, ocapn__arena_mark *m);
void ocapn__arena_rollback(ocapn_arena *arena, const ocapn__arena_mark *m);

/* Canonical NaN bit pattern written for every NaN (Preserves/Syrup). */
#define OCAPN__CANONICAL_NAN UINT64_C(0x7ff8000000000000)
/* The float32 NaN written by the writer (the same quiet NaN, narrowed). */
#define OCAPN__CANONICAL_NAN32 UINT32_C(0x7fc00000)

/* Write the decimal digits of `u` ending at `end`; returns the start. */
static inline char *
ocapn__u64_to_dec(uint64_t u, char *end)
{
	char *p = end;
	do {
		*--p = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	return p;
}

/* Deepest value tree the writer and printer walk (recursion bound). */
#define OCAPN__MAX_WALK_DEPTH 1024

/* Is `c` whitespace in the sense of Notation.md (SP, HT, CR, LF)? */
static inline bool
ocapn__is_ws(uint8_t c)
{
	return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

#endif
