/*
 * Strict Syrup decoder.
 *
 * Iterative: open containers live on a frame stack, finished items on a
 * value stack (with their input offsets on a parallel stack).  When a
 * container closes, its items are checked (record label present, dict
 * pairs complete, keys and set items strictly increasing by encoded bytes)
 * and moved into one array in the arena.  So each value costs a push and
 * a copy, and a message allocates only its container arrays, from the
 * arena; the stacks are reused across calls.
 *
 * Ordering is checked on the input bytes themselves, which are the
 * canonical encoding of each key, unless a key's input slice might differ
 * from its canonical encoding or the input might change under us: when the
 * message contains whitespace, a NaN with a payload other than the
 * canonical one, or (with LAX_ORDER) unsorted nested dicts and sets, or
 * when the decoder copies atoms.  In those cases the keys of the container
 * are re-encoded into scratch space and compared there; with LAX_ORDER they
 * are sorted there so that duplicates anywhere in the container are found
 * in O(n log n) comparisons.
 *
 * A truncated value returns OCAPN_E_INCOMPLETE and rolls the arena back;
 * the caller re-feeds the longer buffer.  For long streams arriving in small
 * pieces use the scanner (scan.c) to find value ends in linear time first.
 */
#include "syrup_internal.h"

#define DEFAULT_MAX_DEPTH 64u
#define DEFAULT_MAX_ATOM (64u << 20)
#define DEFAULT_MAX_ITEMS (1u << 20)
#define DEFAULT_MAX_TOTAL (128u << 20)

struct frame {
	uint8_t kind;
	uint32_t first; /* index of its first item on the value stack */
	uint32_t start; /* input offset of the opening byte */
};

struct span {
	uint32_t start, end;
};

struct ocapn_syrup_decoder {
	ocapn_allocator a;
	unsigned flags;
	uint32_t max_depth, max_items;
	uint64_t max_atom, max_total;

	ocapn_value *vals;
	struct span *spans;
	size_t vcap, scap;
	struct frame *frames;
	size_t fcap;

	/* Scratch for key ordering: the canonical encodings of a container's
	 * keys, back to back in kw's buffer; key i spans koff[i]..koff[i+1].
	 * kidx (2n entries) is the sort index and its merge buffer. */
	ocapn_syrup_writer *kw;
	size_t *koff, *kidx;
	size_t kcap, kidx_cap;

	const char *err;
	size_t err_off;
};

OCAPN_API ocapn_syrup_decoder *
ocapn_syrup_decoder_new(unsigned flags, const ocapn_allocator *alloc)
{
	ocapn_allocator a;
	ocapn__alloc_init(&a, alloc);
	ocapn_syrup_decoder *d = ocapn__calloc(&a, sizeof(*d));
	if (!d)
		return NULL;
	d->a = a;
	d->flags = flags;
	d->max_depth = DEFAULT_MAX_DEPTH;
	d->max_atom = DEFAULT_MAX_ATOM;
	d->max_items = DEFAULT_MAX_ITEMS;
	d->max_total = DEFAULT_MAX_TOTAL;
	d->err = "";
	return d;
}

OCAPN_API void
ocapn_syrup_decoder_free(ocapn_syrup_decoder *d)
{
	if (!d)
		return;
	ocapn__free(&d->a, d->vals, d->vcap * sizeof(*d->vals));
	ocapn__free(&d->a, d->spans, d->scap * sizeof(*d->spans));
	ocapn__free(&d->a, d->frames, d->fcap * sizeof(*d->frames));
	ocapn_syrup_writer_free(d->kw);
	ocapn__free(&d->a, d->koff, d->kcap * sizeof(*d->koff));
	ocapn__free(&d->a, d->kidx, d->kidx_cap * sizeof(*d->kidx));
	ocapn_allocator a = d->a;
	ocapn__free(&a, d, sizeof(*d));
}

OCAPN_API int
ocapn_syrup_decoder_set_limit(ocapn_syrup_decoder *d, ocapn_syrup_limit which,
    uint64_t value)
{
	if (value == 0)
		return OCAPN_E_INVAL;
	switch (which) {
	case OCAPN_SYRUP_MAX_DEPTH:
		if (value > 100000)
			return OCAPN_E_INVAL;
		d->max_depth = (uint32_t)value;
		return OCAPN_OK;
	case OCAPN_SYRUP_MAX_ATOM:
		if (value > UINT32_MAX)
			return OCAPN_E_INVAL;
		d->max_atom = value;
		return OCAPN_OK;
	case OCAPN_SYRUP_MAX_ITEMS:
		if (value > UINT32_MAX)
			return OCAPN_E_INVAL;
		d->max_items = (uint32_t)value;
		return OCAPN_OK;
	case OCAPN_SYRUP_MAX_TOTAL:
		if (value > UINT32_MAX)
			return OCAPN_E_INVAL;
		d->max_total = value;
		return OCAPN_OK;
	}
	return OCAPN_E_INVAL;
}

OCAPN_API uint64_t
ocapn_syrup_decoder_get_limit(const ocapn_syrup_decoder *d,
    ocapn_syrup_limit which)
{
	switch (which) {
	case OCAPN_SYRUP_MAX_DEPTH:
		return d->max_depth;
	case OCAPN_SYRUP_MAX_ATOM:
		return d->max_atom;
	case OCAPN_SYRUP_MAX_ITEMS:
		return d->max_items;
	case OCAPN_SYRUP_MAX_TOTAL:
		return d->max_total;
	}
	return 0;
}

OCAPN_API const char *
ocapn_syrup_decoder_error(const ocapn_syrup_decoder *d, size_t *offset)
{
	if (offset)
		*offset = d->err_off;
	return d->err;
}

/*
 * Grow the value stack and its span stack.  Each keeps its own capacity so
 * that the allocator is always told a block's true size, even when the
 * second reallocation fails after the first succeeded; spans are grown
 * second, so scap <= vcap and scap bounds both.
 */
static int
grow_vals(ocapn_syrup_decoder *d, size_t need)
{
	if (need < 64)
		need = 64;
	if (ocapn__grow(&d->a, (void **)&d->vals, &d->vcap, need,
		sizeof(*d->vals)) ||
	    ocapn__grow(&d->a, (void **)&d->spans, &d->scap, need,
		sizeof(*d->spans)))
		return OCAPN_E_NOMEM;
	return OCAPN_OK;
}

/*
 * Encode the keys of a dict (stride 2) or the items of a set (stride 1)
 * canonically into the scratch writer; on success `*enc` is the base of
 * the encodings and d->koff[0..n] their boundaries.
 */
static int
encode_keys(ocapn_syrup_decoder *d, const ocapn_value *items, size_t n,
    size_t stride, const uint8_t **enc)
{
	if (!d->kw && !(d->kw = ocapn_syrup_writer_new(
			   OCAPN_SYRUP_WRITE_FLOAT32, &d->a)))
		return OCAPN_E_NOMEM;
	if (ocapn__grow(&d->a, (void **)&d->koff, &d->kcap, n + 1,
		sizeof(size_t)))
		return OCAPN_E_NOMEM;
	ocapn_syrup_writer_reset(d->kw);
	for (size_t i = 0; i < n; i++) {
		d->koff[i] = ocapn_syrup_writer_size(d->kw);
		ocapn_syrup_write_value(d->kw, &items[i * stride]);
	}
	d->koff[n] = ocapn_syrup_writer_size(d->kw);
	size_t len;
	return ocapn_syrup_writer_finish(d->kw, enc, &len);
}

static int
cmp_bytes(const uint8_t *a, size_t an, const uint8_t *b, size_t bn)
{
	size_t n = an < bn ? an : bn;
	int c = n ? memcmp(a, b, n) : 0;
	return c ? c : (an < bn ? -1 : an > bn ? 1 : 0);
}

static int
cmp_key(const ocapn_syrup_decoder *d, const uint8_t *enc, size_t x,
    size_t y)
{
	return cmp_bytes(enc + d->koff[x], d->koff[x + 1] - d->koff[x],
	    enc + d->koff[y], d->koff[y + 1] - d->koff[y]);
}

/* Bottom-up merge sort of idx[0..n) by encoded key, using tmp[0..n). */
static void
sort_keys(const ocapn_syrup_decoder *d, const uint8_t *enc, size_t *idx,
    size_t *tmp, size_t n)
{
	for (size_t width = 1; width < n; width *= 2) {
		for (size_t lo = 0; lo < n; lo += 2 * width) {
			size_t mid = lo + width < n ? lo + width : n;
			size_t hi = lo + 2 * width < n ? lo + 2 * width : n;
			size_t i = lo, j = mid, k = lo;
			while (i < mid && j < hi)
				tmp[k++] = cmp_key(d, enc, idx[i], idx[j]) <= 0
				    ? idx[i++]
				    : idx[j++];
			while (i < mid)
				tmp[k++] = idx[i++];
			while (j < hi)
				tmp[k++] = idx[j++];
		}
		memcpy(idx, tmp, n * sizeof(*idx));
	}
}

#define FAIL(code, off, why)                                                   \
	do {                                                                   \
		rc = (code);                                                   \
		d->err = (why);                                                \
		d->err_off = (size_t)(off);                                    \
		goto fail;                                                     \
	} while (0)

/* Float bit patterns: a NaN is anything above infinity, sign ignored. */
#define F64_SIGN UINT64_C(0x8000000000000000)
#define F64_INF UINT64_C(0x7ff0000000000000)
#define F32_SIGN UINT32_C(0x80000000)
#define F32_INF UINT32_C(0x7f800000)

static int
derr(ocapn_syrup_decoder *d, int code, size_t off, const char *why)
{
	d->err = why;
	d->err_off = off;
	return code;
}

/*
 * Check that the keys (dict, stride 2) or items (set, stride 1) of a
 * closing container are strictly increasing by canonical encoding, or with
 * `lax` merely distinct.  `raw`: each input slice is the canonical
 * encoding of its value, so slices are compared in place.
 */
static int
check_order(ocapn_syrup_decoder *d, const uint8_t *buf,
    const ocapn_value *items, const struct span *sp, size_t count,
    size_t stride, bool raw, bool lax)
{
	const char *dup = stride == 2 ? "duplicate dict key"
				      : "duplicate set item";
	const char *unsorted = stride == 2
	    ? "dict keys not in canonical order"
	    : "set items not in canonical order";
	size_t n = count / stride;
	if (raw) {
		for (size_t k = 1; k < n; k++) {
			const struct span *x = &sp[(k - 1) * stride];
			const struct span *y = &sp[k * stride];
			int r = cmp_bytes(buf + x->start, x->end - x->start,
			    buf + y->start, y->end - y->start);
			if (r == 0)
				return derr(d, OCAPN_E_DUPLICATE, y->start, dup);
			if (r > 0)
				return derr(d, OCAPN_E_NONCANONICAL, y->start,
				    unsorted);
		}
		return OCAPN_OK;
	}
	const uint8_t *enc;
	int rc = encode_keys(d, items, n, stride, &enc);
	if (rc)
		return derr(d, rc, sp[0].start,
		    "cannot encode keys to compare them");
	if (!lax) {
		for (size_t k = 1; k < n; k++) {
			int r = cmp_key(d, enc, k - 1, k);
			if (r == 0)
				return derr(d, OCAPN_E_DUPLICATE,
				    sp[k * stride].start, dup);
			if (r > 0)
				return derr(d, OCAPN_E_NONCANONICAL,
				    sp[k * stride].start, unsorted);
		}
		return OCAPN_OK;
	}
	if (ocapn__grow(&d->a, (void **)&d->kidx, &d->kidx_cap, 2 * n,
		sizeof(size_t)))
		return derr(d, OCAPN_E_NOMEM, sp[0].start, "out of memory");
	for (size_t k = 0; k < n; k++)
		d->kidx[k] = k;
	sort_keys(d, enc, d->kidx, d->kidx + n, n);
	for (size_t k = 1; k < n; k++) {
		size_t x = d->kidx[k - 1], y = d->kidx[k];
		if (cmp_key(d, enc, x, y) == 0)
			return derr(d, OCAPN_E_DUPLICATE,
			    sp[(x > y ? x : y) * stride].start, dup);
	}
	return OCAPN_OK;
}

static inline bool
is_digit(uint8_t c)
{
	return (unsigned)(c - '0') < 10u;
}

/*
 * Decode one value.  `one` requires the rest of the buffer to be
 * whitespace.
 */
static int
decode(ocapn_syrup_decoder *d, ocapn_arena *arena, const uint8_t *buf,
    size_t len, ocapn_value **out, size_t *consumed)
{
	int rc;
	ocapn__arena_mark mark;
	ocapn__arena_mark_get(arena, &mark);
	const bool copy = (d->flags & OCAPN_SYRUP_COPY_ATOMS) != 0;
	const bool allow_ws = !(d->flags & OCAPN_SYRUP_NO_WHITESPACE);
	const bool lax = (d->flags & OCAPN_SYRUP_LAX_ORDER) != 0;
	bool capped = len > d->max_total;
	const uint8_t *const end = buf + (capped ? d->max_total : len);
	const uint8_t *p = buf;
	size_t nv = 0, nf = 0;
	/* Are the input slices of keys their canonical encodings? */
	bool raw_keys = !copy && !lax;
	ocapn_value v;

	d->err = "";
	d->err_off = 0;

	for (;;) {
		while (p < end && ocapn__is_ws(*p)) {
			if (!allow_ws)
				FAIL(OCAPN_E_SYNTAX, p - buf,
				    "whitespace between values");
			raw_keys = false;
			p++;
		}
		if (p >= end)
			goto incomplete;
		const uint8_t *start = p;
		uint8_t c = *p;

		if (is_digit(c)) {
			/* Digits: an integer (+ -) or a length (: " '). */
			uint64_t n = (uint64_t)(c - '0');
			const uint8_t *dg = p++;
			bool overflow = false;
			while (p < end && is_digit(*p)) {
				uint64_t dv = (uint64_t)(*p - '0');
				if (n > (UINT64_MAX - dv) / 10)
					overflow = true;
				else
					n = n * 10 + dv;
				p++;
				if (OCAPN_UNLIKELY((uint64_t)(p - dg) >
					d->max_atom))
					FAIL(OCAPN_E_LIMIT, start - buf,
					    "number has more digits than the "
					    "atom limit");
			}
			if (p >= end)
				goto incomplete;
			size_t nd = (size_t)(p - dg);
			uint8_t t = *p++;
			if (t == '+' || t == '-') {
				if (nd > 1 && dg[0] == '0')
					FAIL(OCAPN_E_NONCANONICAL, start - buf,
					    "integer with a leading zero");
				if (t == '-' && n == 0 && !overflow)
					FAIL(OCAPN_E_NONCANONICAL, start - buf,
					    "negative zero (0-)");
				if (!overflow &&
				    n <= (t == '+' ? (uint64_t)INT64_MAX
						   : (uint64_t)INT64_MAX + 1)) {
					v.kind = OCAPN_INT;
					v.flags = 0;
					v.reserved_ = 0;
					v.len = 0;
					v.u.i = t == '+' ? (int64_t)n
							 : (int64_t)(0 - n);
				} else {
					const uint8_t *digits = dg;
					if (copy) {
						uint8_t *cp = ocapn_arena_memdup(
						    arena, dg, nd);
						if (!cp)
							FAIL(OCAPN_E_NOMEM,
							    start - buf,
							    "out of memory");
						/* re-check the private copy */
						for (size_t k = 0; k < nd; k++)
							if (!is_digit(cp[k]))
								FAIL(OCAPN_E_SYNTAX,
								    start - buf,
								    "integer "
								    "changed "
								    "while read");
						if (cp[0] == '0')
							FAIL(OCAPN_E_SYNTAX,
							    start - buf,
							    "integer changed "
							    "while read");
						digits = cp;
					}
					v.kind = OCAPN_INT;
					v.flags = OCAPN_VALUE_BIGINT |
					    (t == '-' ? OCAPN_VALUE_NEGATIVE
						      : 0);
					v.reserved_ = 0;
					v.len = (uint32_t)nd;
					v.u.p = digits;
				}
			} else if (t == ':' || t == '"' || t == '\'') {
				if (nd > 1 && dg[0] == '0')
					FAIL(OCAPN_E_NONCANONICAL, start - buf,
					    "length with a leading zero");
				if (overflow || n > d->max_atom)
					FAIL(OCAPN_E_LIMIT, start - buf,
					    "length exceeds the atom limit");
				/* Refuse now rather than wait for bytes that
				 * could never be accepted. */
				if ((uint64_t)(p - buf) + n > d->max_total)
					FAIL(OCAPN_E_LIMIT, start - buf,
					    "value exceeds the total size "
					    "limit");
				if ((uint64_t)(end - p) < n) {
					if (capped)
						FAIL(OCAPN_E_LIMIT, start - buf,
						    "value exceeds the total "
						    "size limit");
					goto incomplete;
				}
				const uint8_t *pl = p;
				if (copy) {
					pl = ocapn_arena_memdup(arena, p,
					    (size_t)n);
					if (!pl)
						FAIL(OCAPN_E_NOMEM, start - buf,
						    "out of memory");
				}
				if (t != ':') {
					size_t ok = ocapn__utf8_valid_prefix(
					    pl, (size_t)n);
					if (OCAPN_UNLIKELY(ok != n))
						FAIL(OCAPN_E_UTF8,
						    (p - buf) + ok,
						    t == '"'
							? "invalid UTF-8 or "
							  "surrogate in string"
							: "invalid UTF-8 or "
							  "surrogate in symbol");
				}
				v.kind = t == ':' ? OCAPN_BYTES
				    : t == '"'    ? OCAPN_STRING
						  : OCAPN_SYMBOL;
				v.flags = 0;
				v.reserved_ = 0;
				v.len = (uint32_t)n;
				v.u.p = pl;
				p += n;
			} else {
				FAIL(OCAPN_E_SYNTAX, p - 1 - buf,
				    "expected + - : \" or ' after digits");
			}
		} else {
			switch (c) {
			case 't':
			case 'f':
				v.kind = OCAPN_BOOL;
				v.flags = 0;
				v.reserved_ = 0;
				v.len = 0;
				v.u.i = 0;
				v.u.b = c == 't';
				p++;
				break;
			case 'D': {
				if (end - p < 9) {
					if (capped)
						FAIL(OCAPN_E_LIMIT, start - buf,
						    "value exceeds the total "
						    "size limit");
					goto incomplete;
				}
				uint8_t b8[8];
				memcpy(b8, p + 1, 8);
				uint64_t bits = 0;
				for (int i = 0; i < 8; i++)
					bits = (bits << 8) | b8[i];
				if ((bits & ~F64_SIGN) > F64_INF &&
				    bits != OCAPN__CANONICAL_NAN)
					raw_keys = false;
				v.kind = OCAPN_FLOAT64;
				v.flags = 0;
				v.reserved_ = 0;
				v.len = 0;
				memcpy(&v.u.f64, &bits, 8);
				p += 9;
				break;
			}
			case 'F': {
				if (end - p < 5) {
					if (capped)
						FAIL(OCAPN_E_LIMIT, start - buf,
						    "value exceeds the total "
						    "size limit");
					goto incomplete;
				}
				uint8_t b4[4];
				memcpy(b4, p + 1, 4);
				uint32_t bits = (uint32_t)b4[0] << 24 |
				    (uint32_t)b4[1] << 16 |
				    (uint32_t)b4[2] << 8 | b4[3];
				if ((bits & ~F32_SIGN) > F32_INF &&
				    bits != OCAPN__CANONICAL_NAN32)
					raw_keys = false;
				v.kind = OCAPN_FLOAT32;
				v.flags = 0;
				v.reserved_ = 0;
				v.len = 0;
				v.u.i = 0;
				memcpy(&v.u.f32, &bits, 4);
				p += 5;
				break;
			}
			case '[':
			case '{':
			case '<':
			case '#': {
				if (nf >= d->max_depth)
					FAIL(OCAPN_E_LIMIT, start - buf,
					    "nesting deeper than the depth "
					    "limit");
				if (nf == d->fcap &&
				    ocapn__grow(&d->a, (void **)&d->frames,
					&d->fcap, nf + 1, sizeof(struct frame)))
					FAIL(OCAPN_E_NOMEM, start - buf,
					    "out of memory");
				struct frame *f = &d->frames[nf++];
				f->kind = c == '[' ? OCAPN_LIST
				    : c == '{'     ? OCAPN_DICT
				    : c == '<'     ? OCAPN_RECORD
						   : OCAPN_SET;
				f->first = (uint32_t)nv;
				f->start = (uint32_t)(start - buf);
				p++;
				continue;
			}
			case ']':
			case '}':
			case '>':
			case '$': {
				uint8_t want = c == ']' ? OCAPN_LIST
				    : c == '}'          ? OCAPN_DICT
				    : c == '>'          ? OCAPN_RECORD
							: OCAPN_SET;
				if (nf == 0 || d->frames[nf - 1].kind != want)
					FAIL(OCAPN_E_SYNTAX, start - buf,
					    nf == 0 ? "closing byte without an "
						      "open container"
						    : "closing byte does not "
						      "match the open "
						      "container");
				struct frame *f = &d->frames[nf - 1];
				size_t first = f->first;
				size_t count = nv - first;
				/* (no arithmetic on the stacks before their
				 * first allocation) */
				ocapn_value *items = count ? d->vals + first
							   : NULL;
				struct span *sp = count ? d->spans + first
							: NULL;
				if (want == OCAPN_RECORD && count == 0)
					FAIL(OCAPN_E_SYNTAX, start - buf,
					    "record without a label");
				if (want == OCAPN_DICT && (count & 1))
					FAIL(OCAPN_E_SYNTAX, start - buf,
					    "dict key without a value");
				if ((want == OCAPN_DICT || want == OCAPN_SET) &&
				    count > (want == OCAPN_DICT ? 2u : 1u)) {
					rc = check_order(d, buf, items, sp,
					    count, want == OCAPN_DICT ? 2 : 1,
					    raw_keys, lax);
					if (rc)
						goto fail_noset;
				}
				ocapn_value *arr = NULL;
				if (count) {
					arr = ocapn_arena_alloc(arena,
					    count * sizeof(ocapn_value));
					if (!arr)
						FAIL(OCAPN_E_NOMEM,
						    start - buf,
						    "out of memory");
					memcpy(arr, items,
					    count * sizeof(ocapn_value));
				}
				v.kind = want;
				v.flags = 0;
				v.reserved_ = 0;
				v.len = (uint32_t)(want == OCAPN_DICT
					? count / 2
					: count);
				v.u.items = arr;
				start = buf + f->start;
				nv = first;
				nf--;
				p++;
				break;
			}
			default:
				FAIL(OCAPN_E_SYNTAX, start - buf,
				    "unknown type byte");
			}
		}

		if (nf == 0) {
			ocapn_value *res = ocapn_arena_alloc(arena, sizeof(v));
			if (!res)
				FAIL(OCAPN_E_NOMEM, start - buf, "out of memory");
			*res = v;
			*out = res;
			*consumed = (size_t)(p - buf);
			return OCAPN_OK;
		}
		if (OCAPN_UNLIKELY(nv - d->frames[nf - 1].first >=
			d->max_items))
			FAIL(OCAPN_E_LIMIT, start - buf,
			    "container has more items than the limit");
		if (OCAPN_UNLIKELY(nv == d->scap) && grow_vals(d, nv + 1))
			FAIL(OCAPN_E_NOMEM, start - buf, "out of memory");
		d->vals[nv] = v;
		d->spans[nv].start = (uint32_t)(start - buf);
		d->spans[nv].end = (uint32_t)(p - buf);
		nv++;
	}

incomplete:
	ocapn__arena_rollback(arena, &mark);
	if (capped) {
		d->err = "value exceeds the total size limit";
		d->err_off = d->max_total;
		return OCAPN_E_LIMIT;
	}
	d->err = "input ends inside a value";
	d->err_off = len;
	return OCAPN_E_INCOMPLETE;
fail:
	ocapn__arena_rollback(arena, &mark);
	return rc;
fail_noset: /* d->err and d->err_off are set */
	ocapn__arena_rollback(arena, &mark);
	return rc;
}

OCAPN_API int
ocapn_syrup_decode(ocapn_syrup_decoder *d, ocapn_arena *arena,
    const uint8_t *buf, size_t len, ocapn_value **out, size_t *consumed)
{
	if (!d || !arena || (!buf && len) || !out || !consumed)
		return OCAPN_E_INVAL;
	return decode(d, arena, buf, len, out, consumed);
}

OCAPN_API int
ocapn_syrup_decode_one(ocapn_syrup_decoder *d, ocapn_arena *arena,
    const uint8_t *buf, size_t len, ocapn_value **out)
{
	size_t used;
	if (!d || !arena || (!buf && len) || !out)
		return OCAPN_E_INVAL;
	ocapn__arena_mark mark;
	ocapn__arena_mark_get(arena, &mark);
	int rc = decode(d, arena, buf, len, out, &used);
	if (rc)
		return rc;
	for (size_t i = used; i < len; i++) {
		if (!ocapn__is_ws(buf[i]) ||
		    (d->flags & OCAPN_SYRUP_NO_WHITESPACE)) {
			ocapn__arena_rollback(arena, &mark);
			d->err = "bytes after the value";
			d->err_off = i;
			return OCAPN_E_TRAILING;
		}
	}
	return OCAPN_OK;
}
