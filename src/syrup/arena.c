/*
 * Arena: a chain of chunks with a bump pointer.
 *
 * Invariants: `head` is the newest chunk and the only one allocated from;
 * older chunks hang off `head->next`.  On reset the chain is coalesced into
 * one chunk as large as everything that was reserved (up to RETAIN_MAX), so
 * after a few messages of a workload the arena serves every message from
 * one chunk and makes no allocator calls at all.
 */
#include "syrup_internal.h"

#define ALIGN OCAPN__ARENA_ALIGN
#define FIRST_CHUNK 4096u
#define RETAIN_MAX (8u << 20) /* never keep more than this across resets */

/* struct ocapn__chunk and struct ocapn_arena are in syrup_internal.h */

static struct ocapn__chunk *
chunk_new(ocapn_arena *ar, size_t size)
{
	struct ocapn__chunk *c = ocapn__malloc(&ar->a, sizeof(*c) + size);
	if (!c)
		return NULL;
	c->size = size;
	c->next = NULL;
	ar->reserved += size;
	return c;
}

static void
chunk_free(ocapn_arena *ar, struct ocapn__chunk *c)
{
	ar->reserved -= c->size;
	ocapn__free(&ar->a, c, sizeof(*c) + c->size);
}

OCAPN_API ocapn_arena *
ocapn_arena_new(const ocapn_allocator *alloc)
{
	ocapn_allocator a;
	ocapn__alloc_init(&a, alloc);
	ocapn_arena *ar = ocapn__calloc(&a, sizeof(*ar));
	if (!ar)
		return NULL;
	ar->a = a;
	return ar;
}

OCAPN_API void
ocapn_arena_free(ocapn_arena *ar)
{
	if (!ar)
		return;
	while (ar->head) {
		struct ocapn__chunk *n = ar->head->next;
		chunk_free(ar, ar->head);
		ar->head = n;
	}
	ocapn_allocator a = ar->a;
	ocapn__free(&a, ar, sizeof(*ar));
}

OCAPN_API void
ocapn_arena_reset(ocapn_arena *ar)
{
	if (!ar)
		return;
	if (ar->head && ar->head->next) {
		size_t total = ar->reserved;
		while (ar->head) {
			struct ocapn__chunk *n = ar->head->next;
			chunk_free(ar, ar->head);
			ar->head = n;
		}
		if (total > RETAIN_MAX)
			total = RETAIN_MAX;
		ar->head = chunk_new(ar, total); /* NULL is fine: lazily again */
	} else if (ar->head && ar->head->size > RETAIN_MAX) {
		chunk_free(ar, ar->head);
		ar->head = NULL;
	}
	ar->off = 0;
	ar->used = 0;
}

void *
ocapn__arena_alloc_slow(ocapn_arena *ar, size_t size)
{
	size_t want = ar->head ? ar->head->size * 2 : FIRST_CHUNK;
	if (want < size)
		want = size;
	if (want > size && want - size > RETAIN_MAX && size < RETAIN_MAX)
		want = RETAIN_MAX;
	struct ocapn__chunk *c = chunk_new(ar, want);
	if (!c)
		return NULL;
	c->next = ar->head;
	ar->head = c;
	ar->off = size;
	ar->used += size;
	return c->data;
}

OCAPN_API void *
ocapn_arena_alloc(ocapn_arena *ar, size_t size)
{
	if (size > SIZE_MAX - ALIGN)
		return NULL;
	size = (size + (ALIGN - 1)) & ~(size_t)(ALIGN - 1);
	if (size == 0)
		size = ALIGN;
	return ocapn__arena_alloc_aligned(ar, size);
}

OCAPN_API void *
ocapn_arena_memdup(ocapn_arena *ar, const void *src, size_t len)
{
	void *p = ocapn_arena_alloc(ar, len);
	if (p && len)
		memcpy(p, src, len);
	return p;
}

OCAPN_API ocapn_value *
ocapn_arena_values(ocapn_arena *ar, size_t n)
{
	if (n > SIZE_MAX / sizeof(ocapn_value))
		return NULL;
	ocapn_value *v = ocapn_arena_alloc(ar, n * sizeof(ocapn_value));
	if (v)
		memset(v, 0, n * sizeof(ocapn_value));
	return v;
}

OCAPN_API size_t
ocapn_arena_used(const ocapn_arena *ar)
{
	return ar->used;
}

OCAPN_API size_t
ocapn_arena_reserved(const ocapn_arena *ar)
{
	return ar->reserved;
}

void
ocapn__arena_rollback(ocapn_arena *ar, const ocapn__arena_mark *m)
{
	/* Free chunks added after the mark, but keep the newest one if the
	 * marked chunk was NULL (first allocation), to avoid churn. */
	while (ar->head && ar->head != m->chunk) {
		struct ocapn__chunk *c = ar->head;
		if (m->chunk == NULL && c->next == NULL) {
			ar->off = 0;
			ar->used = m->used;
			return;
		}
		ar->head = c->next;
		chunk_free(ar, c);
	}
	ar->off = m->off;
	ar->used = m->used;
}
