/*
 * Value boxes: deep copies of values that outlive the message or turn
 * they came from (queued arguments, promise resolutions).  A box is one
 * block from a per-vat size-class pool: header, then the value tree's
 * items, then its bytes.  Every OCAPN_REF inside holds a reference.
 *
 * Boxes above the largest class come from the allocator, but the vat
 * keeps the largest VBOX_SPARES of those freed (each up to VBOX_SPARE_MAX)
 * for the next large values: with malloc, a large block freed at the top
 * of the heap goes back to the system, and writing its successor faults
 * every page in again, which costs more than the copy itself.  Two,
 * because a large call keeps two boxes alive at once (the arguments of
 * its turn and the answer it resolves).
 */
#include "captp_internal.h"

struct sizes {
	size_t nvals;
	size_t nbytes;
};

static bool
measure(const ocapn_value *v, struct sizes *s, int depth)
{
	if (depth > OCAPN__MAX_WALK_DEPTH)
		return false;
	switch (v->kind) {
	case OCAPN_BYTES:
	case OCAPN_STRING:
	case OCAPN_SYMBOL:
		s->nbytes += v->len;
		return true;
	case OCAPN_INT:
		if (v->flags & OCAPN_VALUE_BIGINT)
			s->nbytes += v->len;
		return true;
	case OCAPN_LIST:
	case OCAPN_SET:
	case OCAPN_RECORD:
	case OCAPN_DICT: {
		size_t n = v->kind == OCAPN_DICT ? 2 * (size_t)v->len : v->len;
		s->nvals += n;
		for (size_t i = 0; i < n; i++)
			if (!measure(&v->u.items[i], s, depth + 1))
				return false;
		return true;
	}
	default:
		return true;
	}
}

struct cursor {
	ocapn_value *vals;
	uint8_t *bytes;
};

static void
copy_into(ocapn_value *dst, const ocapn_value *src, struct cursor *c)
{
	*dst = *src;
	switch (src->kind) {
	case OCAPN_BYTES:
	case OCAPN_STRING:
	case OCAPN_SYMBOL:
		if (src->len)
			memcpy(c->bytes, src->u.p, src->len);
		dst->u.p = c->bytes;
		c->bytes += src->len;
		break;
	case OCAPN_INT:
		if (src->flags & OCAPN_VALUE_BIGINT) {
			memcpy(c->bytes, src->u.p, src->len);
			dst->u.p = c->bytes;
			c->bytes += src->len;
		}
		break;
	case OCAPN_REF:
		ocapn_ref_retain(src->u.ref);
		break;
	case OCAPN_LIST:
	case OCAPN_SET:
	case OCAPN_RECORD:
	case OCAPN_DICT: {
		size_t n = src->kind == OCAPN_DICT ? 2 * (size_t)src->len
						   : src->len;
		ocapn_value *items = c->vals;
		c->vals += n;
		dst->u.items = items;
		for (size_t i = 0; i < n; i++)
			copy_into(&items[i], &src->u.items[i], c);
		break;
	}
	default:
		break;
	}
}

static void
release_refs(const ocapn_value *v)
{
	switch (v->kind) {
	case OCAPN_REF:
		ocapn_ref_release(v->u.ref);
		break;
	case OCAPN_LIST:
	case OCAPN_SET:
	case OCAPN_RECORD:
	case OCAPN_DICT: {
		size_t n = v->kind == OCAPN_DICT ? 2 * (size_t)v->len : v->len;
		for (size_t i = 0; i < n; i++)
			release_refs(&v->u.items[i]);
		break;
	}
	default:
		break;
	}
}

static int
size_class(size_t n)
{
	size_t c = 64;
	for (int i = 0; i < VBOX_CLASSES; i++, c <<= 1)
		if (n <= c)
			return i;
	return -1;
}

ocapn__vbox *
ocapn__vbox_new(struct ocapn_vat *vat, const ocapn_value *v)
{
	struct sizes s = {0, 0};
	if (!measure(v, &s, 0))
		return NULL;
	size_t need = sizeof(ocapn__vbox) + s.nvals * sizeof(ocapn_value) +
	    s.nbytes;
	int cls = size_class(need);
	ocapn__vbox *box;
	size_t block;
	if (cls >= 0) {
		block = (size_t)64 << cls;
		ocapn__pool *p = &vat->vbox_pool[cls];
		if (!p->size)
			p->size = block;
		box = ocapn__pool_get(p, &vat->a);
	} else {
		box = NULL;
		for (int i = 0; i < VBOX_SPARES && !box; i++) {
			ocapn__vbox *sp = vat->vbox_spare[i];
			if (sp && sp->block >= need) {
				box = sp;
				vat->vbox_spare[i] = NULL;
			}
		}
		block = box ? box->block : need;
		if (!box)
			box = ocapn__malloc(&vat->a, block);
	}
	if (!box)
		return NULL;
	box->block = block;
	struct cursor c;
	c.vals = (ocapn_value *)(box + 1);
	c.bytes = (uint8_t *)(c.vals + s.nvals);
	copy_into(&box->v, v, &c);
	return box;
}

void
ocapn__vbox_free(struct ocapn_vat *vat, ocapn__vbox *box)
{
	if (!box)
		return;
	/* Copy the tree header first: releasing refs may run finalizers
	 * that never touch this box, but keep the walk simple. */
	release_refs(&box->v);
	int cls = size_class(box->block);
	if (cls >= 0 && ((size_t)64 << cls) == box->block) {
		ocapn__pool_put(&vat->vbox_pool[cls], box);
		return;
	}
	/* Keep it in place of an empty or the smallest smaller spare. */
	if (box->block <= VBOX_SPARE_MAX && !vat->zombie) {
		int k = -1;
		for (int i = 0; i < VBOX_SPARES; i++) {
			ocapn__vbox *sp = vat->vbox_spare[i];
			if (!sp) {
				k = i;
				break;
			}
			if (sp->block < box->block &&
			    (k < 0 || sp->block < vat->vbox_spare[k]->block))
				k = i;
		}
		if (k >= 0) {
			ocapn__vbox *old = vat->vbox_spare[k];
			vat->vbox_spare[k] = box;
			box = old;
		}
	}
	if (box)
		ocapn__free(&vat->a, box, box->block);
}
