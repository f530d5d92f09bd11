/*
 * Internal interfaces of the Syrup layer.  Never installed.
 */
#ifndef OCAPN_SYRUP_INTERNAL_H
#define OCAPN_SYRUP_INTERNAL_H

#include <ocapn/syrup.h>

#include "../util/util.h"

/*
 * The arena (arena.c), visible here so that the decoder's allocations take
 * the bump fast path inline.  `head` is the only chunk allocated from.
 */
#define OCAPN__ARENA_ALIGN 16u

struct ocapn__chunk {
	struct ocapn__chunk *next;
	size_t size; /* usable bytes in data[] */
	size_t pad_;
	_Alignas(16) unsigned char data[];
};

struct ocapn_arena {
	ocapn_allocator a;
	struct ocapn__chunk *head;
	size_t off;      /* bytes used in head */
	size_t used;     /* bytes handed out since reset */
	size_t reserved; /* sum of chunk sizes */
};

/* A new chunk for `size` (a multiple of the alignment); NULL on no
 * memory. */
void *ocapn__arena_alloc_slow(ocapn_arena *arena, size_t size);

/* `size` bytes, already a non-zero multiple of OCAPN__ARENA_ALIGN. */
static inline void *
ocapn__arena_alloc_aligned(ocapn_arena *ar, size_t size)
{
	struct ocapn__chunk *c = ar->head;
	if (OCAPN_LIKELY(c && c->size - ar->off >= size)) {
		void *p = c->data + ar->off;
		ar->off += size;
		ar->used += size;
		return p;
	}
	return ocapn__arena_alloc_slow(ar, size);
}

/* Arena checkpoints: roll back everything allocated after a mark. */
typedef struct ocapn__arena_mark {
	void *chunk;
	size_t off;
	size_t used;
} ocapn__arena_mark;

static inline void
ocapn__arena_mark_get(const ocapn_arena *ar, ocapn__arena_mark *m)
{
	m->chunk = ar->head;
	m->off = ar->off;
	m->used = ar->used;
}

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
