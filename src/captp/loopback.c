/*
 * In-memory loopback between two sessions: each side's output becomes the
 * other side's input.  Deterministic, for tests and single-process use.
 */
#include "captp_internal.h"

struct ocapn_loopback {
	ocapn_session *a, *b;
	size_t chunk; /* 0 = whole output at once */
	ocapn_allocator alloc;
};

OCAPN_API int
ocapn_loopback_new(ocapn_session *a, ocapn_session *b, ocapn_loopback **out)
{
	if (!a || !b || a == b || !out)
		return OCAPN_E_INVAL;
	ocapn_allocator al;
	ocapn__alloc_init(&al, NULL);
	ocapn_loopback *lb = ocapn__calloc(&al, sizeof(*lb));
	if (!lb)
		return OCAPN_E_NOMEM;
	lb->alloc = al;
	lb->a = a;
	lb->b = b;
	*out = lb;
	return OCAPN_OK;
}

OCAPN_API void
ocapn_loopback_free(ocapn_loopback *lb)
{
	if (lb) {
		ocapn_allocator al = lb->alloc;
		ocapn__free(&al, lb, sizeof(*lb));
	}
}

OCAPN_API void
ocapn_loopback_set_chunk(ocapn_loopback *lb, size_t n)
{
	lb->chunk = n;
}

/* Move `from`'s output into `to`; returns bytes moved. */
static size_t
move(ocapn_loopback *lb, ocapn_session *from, ocapn_session *to)
{
	size_t moved = 0;
	for (;;) {
		const uint8_t *p;
		size_t n;
		ocapn_session_output(from, &p, &n);
		if (n == 0)
			break;
		if (lb->chunk && n > lb->chunk)
			n = lb->chunk;
		/* Copy out: feeding `to` may append to `from`'s output when
		 * both sessions belong to one vat. */
		uint8_t stackbuf[4096];
		uint8_t *copy = n <= sizeof(stackbuf)
		    ? stackbuf
		    : ocapn__malloc(&lb->alloc, n);
		if (!copy)
			break;
		memcpy(copy, p, n);
		ocapn_session_consume(from, n);
		if (ocapn_session_get_state(to) != OCAPN_SESSION_ABORTED)
			ocapn_session_feed(to, copy, n);
		if (copy != stackbuf)
			ocapn__free(&lb->alloc, copy, n);
		moved += n;
	}
	return moved;
}

OCAPN_API size_t
ocapn_loopback_pump(ocapn_loopback *lb, size_t max_rounds)
{
	size_t total = 0;
	for (size_t round = 0; max_rounds == 0 || round < max_rounds;
	     round++) {
		size_t moved = move(lb, lb->a, lb->b) + move(lb, lb->b, lb->a);
		ocapn_vat *va = ocapn__session_vat(lb->a);
		ocapn_vat *vb = ocapn__session_vat(lb->b);
		size_t turns = ocapn_vat_run(va, 0);
		if (vb != va)
			turns += ocapn_vat_run(vb, 0);
		total += moved;
		if (moved == 0 && !turns)
			break;
	}
	return total;
}
