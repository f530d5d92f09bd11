/*
 * Strict Syrup decoder.
 *
 * Iterative: open containers live on a frame stack, finished items on a
 * value stack (the items of dicts and sets with their input spans on a
 * parallel stack).  When a container closes, its items are checked (record
 * label present, dict pairs complete, keys and set items strictly
 * increasing by encoded bytes) and moved into one array in the arena.  So
 * each value costs a store and a copy, and a message allocates only its
 * container arrays, from the arena; the stacks are reused across calls.
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

#if defined(__GNUC__) || defined(__clang__)
#define NOINLINE __attribute__((noinline))
#define COLD __attribute__((noinline, cold))
#else
#define NOINLINE
#define COLD
#endif

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
/* (kept out of decode() so that its loop stays small) */
static NOINLINE int
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
				return derr(d, OCAPN_E_DUPLICATE, y->start,
				    dup);
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
 * COPY_ATOMS: a private copy of a big integer's digits, checked again
 * because the input may have changed since it was read.
 */
static COLD int
copy_digits(ocapn_arena *arena, const uint8_t *dg, size_t nd,
    const uint8_t **out)
{
	uint8_t *cp = ocapn_arena_memdup(arena, dg, nd);
	if (!cp)
		return OCAPN_E_NOMEM;
	if (cp[0] == '0')
		return OCAPN_E_SYNTAX;
	for (size_t k = 0; k < nd; k++)
		if (!is_digit(cp[k]))
			return OCAPN_E_SYNTAX;
	*out = cp;
	return OCAPN_OK;
}

/*
 * The digits after the 19th (decode() reads up to 19 without overflow
 * checks): read up to `lim`; on overflow of uint64 *n becomes UINT64_MAX.
 * The byte that ended the digits, if one did before `lim`, is stored in
 * *stop (each byte is read once: see decode()).
 */
static COLD const uint8_t *
long_number(const uint8_t *p, const uint8_t *lim, uint64_t *n, int *stop)
{
	uint64_t x = *n;
	*stop = -1;
	for (; p < lim; p++) {
		uint8_t b = *p;
		if (!is_digit(b)) {
			*stop = b;
			break;
		}
		uint64_t dv = (uint64_t)(b - '0');
		x = x > (UINT64_MAX - dv) / 10 ? UINT64_MAX : x * 10 + dv;
	}
	*n = x;
	return p;
}

/* What a byte starts, between tokens. */
enum {
	B_BAD = 0, /* not a type byte */
	B_WS,
	B_DIGIT,
	B_OPEN,
	B_CLOSE,
	B_BOOL,
	B_F64,
	B_F32,
};

static const uint8_t byte_class[256] = {[' '] = B_WS, ['\t'] = B_WS,
    ['\r'] = B_WS, ['\n'] = B_WS, ['0'] = B_DIGIT, ['1'] = B_DIGIT,
    ['2'] = B_DIGIT, ['3'] = B_DIGIT, ['4'] = B_DIGIT, ['5'] = B_DIGIT,
    ['6'] = B_DIGIT, ['7'] = B_DIGIT, ['8'] = B_DIGIT, ['9'] = B_DIGIT,
    ['['] = B_OPEN, ['{'] = B_OPEN, ['<'] = B_OPEN, ['#'] = B_OPEN,
    [']'] = B_CLOSE, ['}'] = B_CLOSE, ['>'] = B_CLOSE, ['$'] = B_CLOSE,
    ['t'] = B_BOOL, ['f'] = B_BOOL, ['D'] = B_F64, ['F'] = B_F32};

/* Container kind opened or closed by a byte; atom kind after a length. */
static const uint8_t open_kind[256] = {['['] = OCAPN_LIST,
    ['{'] = OCAPN_DICT, ['<'] = OCAPN_RECORD, ['#'] = OCAPN_SET};
static const uint8_t close_kind[256] = {[']'] = OCAPN_LIST,
    ['}'] = OCAPN_DICT, ['>'] = OCAPN_RECORD, ['$'] = OCAPN_SET};
static const uint8_t atom_kind[256] = {[':'] = OCAPN_BYTES,
    ['"'] = OCAPN_STRING, ['\''] = OCAPN_SYMBOL};

static inline bool
is_sorted_kind(uint8_t kind)
{
	return kind == OCAPN_DICT || kind == OCAPN_SET;
}

/*
 * The value stack is full at nv, or the innermost container has reached
 * the item limit: fail at `off` for the limit, else grow the stacks and
 * update *lim.
 */
static NOINLINE int
make_room(ocapn_syrup_decoder *d, size_t nf, size_t nv, size_t *lim,
    size_t off)
{
	size_t pf = d->frames[nf - 1].first;
	if (nv - pf >= d->max_items)
		return derr(d, OCAPN_E_LIMIT, off,
		    "container has more items than the limit");
	if (grow_vals(d, nv + 1))
		return derr(d, OCAPN_E_NOMEM, off, "out of memory");
	*lim = pf + d->max_items < d->scap ? pf + d->max_items : d->scap;
	return OCAPN_OK;
}

/*
 * Decode one value from buf[0..len); with `one`, only whitespace may
 * follow it.
 *
 * Invariants of the loop: the open containers are d->frames[0..nf), the
 * finished items of all of them vals[0..nv), those of the innermost from
 * d->frames[nf - 1].first on.  Each value is written straight into its
 * slot: the next item of the innermost container, or `top`.  Input spans
 * are recorded only for the items of dicts and sets (`sorted`), the only
 * ones whose order is checked.  What the loop needs most is kept in
 * locals, and token classes are told apart by a chain of well-predicted
 * branches, most frequent first (this measured faster than a switch).
 */
static int
decode(ocapn_syrup_decoder *d, ocapn_arena *arena, const uint8_t *buf,
    size_t len, ocapn_value **out, size_t *consumed, bool one)
{
	int rc;
	ocapn__arena_mark mark;
	ocapn__arena_mark_get(arena, &mark);
	const bool copy = (d->flags & OCAPN_SYRUP_COPY_ATOMS) != 0;
	const uint64_t max_atom = d->max_atom;
	const bool capped = len > d->max_total;
	const uint8_t *const end = buf + (capped ? d->max_total : len);
	ocapn_value *vals = d->vals; /* reloaded when the stacks grow */
	const uint8_t *p = buf;
	size_t nv = 0, nf = 0;
	/* Items may be pushed up to `lim` = min(first item of the innermost
	 * container + max_items, stack capacity) before the slow path. */
	size_t lim = 0;
	bool sorted = false; /* the innermost container is a dict or set */
	/* Are the input slices of keys their canonical encodings? */
	bool raw_keys = !(d->flags & (OCAPN_SYRUP_COPY_ATOMS |
	    OCAPN_SYRUP_LAX_ORDER));
	ocapn_value top, *slot;

/* The slot of the next item, growing the stack or failing at the item
 * limit when `lim` is reached. */
#define NEXT_SLOT()                                                            \
	do {                                                                   \
		if (OCAPN_UNLIKELY(nf == 0)) {                                 \
			slot = &top;                                           \
			break;                                                 \
		}                                                              \
		if (OCAPN_UNLIKELY(nv >= lim)) {                               \
			rc = make_room(d, nf, nv, &lim,                        \
			    (size_t)(start - buf));                            \
			if (rc)                                                \
				goto fail_noset;                               \
			vals = d->vals;                                        \
		}                                                              \
		slot = &vals[nv];                                              \
	} while (0)

	d->err = "";
	d->err_off = 0;

	for (;;) {
		if (OCAPN_UNLIKELY(p >= end))
			goto incomplete;
		const uint8_t *start = p;
		uint8_t c = *p;
		uint8_t cls = byte_class[c];

		if (cls == B_DIGIT) {
			/* An integer (+ -) or a length (: " ').  The first 19
			 * digits cannot overflow; beyond them long_number()
			 * reads at most max_atom + 1 digits and saturates n at
			 * UINT64_MAX, which every later test treats as too
			 * big. */
			NEXT_SLOT();
			const uint8_t *dg = p;
			const uint8_t *fast = end - p > 19 ? p + 19 : end;
			/* Every byte is read once, the one ending the digits
			 * too (it is the type byte): input in shared memory
			 * may change between two reads. */
			uint64_t n = (uint64_t)(c - '0');
			int stop = -1;
			for (p++; p < fast; p++) {
				uint8_t b = *p;
				if (!is_digit(b)) {
					stop = b;
					break;
				}
				n = n * 10 + (uint64_t)(b - '0');
			}
			if (OCAPN_UNLIKELY(p == dg + 19) && p < end)
				p = long_number(p,
				    (uint64_t)(end - dg) > max_atom
					? dg + max_atom + 1
					: end,
				    &n, &stop);
			size_t nd = (size_t)(p - dg);
			if (OCAPN_UNLIKELY(nd > max_atom))
				FAIL(OCAPN_E_LIMIT, start - buf,
				    "number has more digits than the atom "
				    "limit");
			if (OCAPN_UNLIKELY(stop < 0))
				goto incomplete;
			uint8_t t = (uint8_t)stop;
			p++;
			uint8_t kind = atom_kind[t];
			if (kind) {
				if (OCAPN_UNLIKELY(c == '0' && nd > 1))
					FAIL(OCAPN_E_NONCANONICAL, start - buf,
					    "length with a leading zero");
				if (OCAPN_UNLIKELY(n > max_atom))
					FAIL(OCAPN_E_LIMIT, start - buf,
					    "length exceeds the atom limit");
				if (OCAPN_UNLIKELY(n > (uint64_t)(end - p))) {
					/* Refuse now rather than wait for
					 * bytes that could never be
					 * accepted. */
					if ((uint64_t)(p - buf) + n >
					    d->max_total)
						FAIL(OCAPN_E_LIMIT, start - buf,
						    "value exceeds the total "
						    "size limit");
					goto incomplete;
				}
				const uint8_t *pl = p;
				if (OCAPN_UNLIKELY(copy)) {
					pl = ocapn_arena_memdup(arena, p,
					    (size_t)n);
					if (!pl)
						FAIL(OCAPN_E_NOMEM, start - buf,
						    "out of memory");
				}
				if (kind != OCAPN_BYTES && OCAPN_UNLIKELY(
					!ocapn__all_ascii(pl, (size_t)n))) {
					size_t ok = ocapn__utf8_valid_prefix(
					    pl, (size_t)n);
					if (ok != n)
						FAIL(OCAPN_E_UTF8,
						    (p - buf) + ok,
						    kind == OCAPN_STRING
							? "invalid UTF-8 or "
							  "surrogate in "
							  "string"
							: "invalid UTF-8 or "
							  "surrogate in "
							  "symbol");
				}
				slot->kind = kind;
				slot->flags = 0;
				slot->reserved_ = 0;
				slot->len = (uint32_t)n;
				slot->u.p = pl;
				p += n;
			} else if (t == '+' || t == '-') {
				if (OCAPN_UNLIKELY(c == '0' && nd > 1))
					FAIL(OCAPN_E_NONCANONICAL, start - buf,
					    "integer with a leading zero");
				if (OCAPN_UNLIKELY(t == '-' && n == 0))
					FAIL(OCAPN_E_NONCANONICAL, start - buf,
					    "negative zero (0-)");
				if (OCAPN_LIKELY(n <= (uint64_t)INT64_MAX +
						(t == '-'))) {
					slot->kind = OCAPN_INT;
					slot->flags = 0;
					slot->reserved_ = 0;
					slot->len = 0;
					slot->u.i = t == '+' ? (int64_t)n
							     : (int64_t)(0 - n);
				} else {
					const uint8_t *digits = dg;
					if (copy && (rc = copy_digits(arena, dg,
							 nd, &digits)))
						FAIL(rc, start - buf,
						    rc == OCAPN_E_NOMEM
							? "out of memory"
							: "integer changed "
							  "while read");
					slot->kind = OCAPN_INT;
					slot->flags = OCAPN_VALUE_BIGINT |
					    (t == '-' ? OCAPN_VALUE_NEGATIVE
						      : 0);
					slot->reserved_ = 0;
					slot->len = (uint32_t)nd;
					slot->u.p = digits;
				}
			} else {
				FAIL(OCAPN_E_SYNTAX, p - 1 - buf,
				    "expected + - : \" or ' after digits");
			}
		} else if (cls == B_OPEN) {
			if (OCAPN_UNLIKELY(nf >= d->max_depth))
				FAIL(OCAPN_E_LIMIT, start - buf,
				    "nesting deeper than the depth limit");
			if (OCAPN_UNLIKELY(nf == d->fcap) &&
			    ocapn__grow(&d->a, (void **)&d->frames, &d->fcap,
				nf + 1, sizeof(struct frame)))
				FAIL(OCAPN_E_NOMEM, start - buf,
				    "out of memory");
			struct frame *f = &d->frames[nf++];
			f->kind = open_kind[c];
			f->first = (uint32_t)nv;
			f->start = (uint32_t)(start - buf);
			lim = nv + d->max_items < d->scap ? nv + d->max_items
							  : d->scap;
			sorted = is_sorted_kind(f->kind);
			p++;
			continue;
		} else if (cls == B_CLOSE) {
			uint8_t want = close_kind[c];
			if (OCAPN_UNLIKELY(nf == 0 ||
				d->frames[nf - 1].kind != want))
				FAIL(OCAPN_E_SYNTAX, start - buf,
				    nf == 0 ? "closing byte without an open "
					      "container"
					    : "closing byte does not match the "
					      "open container");
			const struct frame *f = &d->frames[nf - 1];
			size_t first = f->first;
			size_t count = nv - first;
			if (OCAPN_UNLIKELY(want == OCAPN_RECORD && count == 0))
				FAIL(OCAPN_E_SYNTAX, start - buf,
				    "record without a label");
			if (OCAPN_UNLIKELY(want == OCAPN_DICT && (count & 1)))
				FAIL(OCAPN_E_SYNTAX, start - buf,
				    "dict key without a value");
			if (sorted && count > (want == OCAPN_DICT ? 2u : 1u)) {
				rc = check_order(d, buf, vals + first,
				    d->spans + first, count,
				    want == OCAPN_DICT ? 2 : 1, raw_keys,
				    (d->flags & OCAPN_SYRUP_LAX_ORDER) != 0);
				if (rc)
					goto fail_noset;
			}
			ocapn_value *arr = NULL;
			if (count) {
				arr = ocapn__arena_alloc_aligned(arena,
				    count * sizeof(ocapn_value));
				if (OCAPN_UNLIKELY(!arr))
					FAIL(OCAPN_E_NOMEM, start - buf,
					    "out of memory");
				for (size_t k = 0; k < count; k++)
					arr[k] = vals[first + k];
			}
			/* The container becomes an item of its parent. */
			start = buf + f->start;
			nv = first;
			if (--nf) {
				size_t pf = d->frames[nf - 1].first;
				lim = pf + d->max_items < d->scap
				    ? pf + d->max_items
				    : d->scap;
				sorted = is_sorted_kind(d->frames[nf - 1].kind);
			}
			NEXT_SLOT();
			slot->kind = want;
			slot->flags = 0;
			slot->reserved_ = 0;
			slot->len = (uint32_t)(want == OCAPN_DICT ? count / 2
								  : count);
			slot->u.items = arr;
			p++;
		} else if (OCAPN_UNLIKELY(cls == B_WS)) {
			if (d->flags & OCAPN_SYRUP_NO_WHITESPACE)
				FAIL(OCAPN_E_SYNTAX, p - buf,
				    "whitespace between values");
			raw_keys = false;
			p++; /* one byte per round: each is read once */
			continue;
		} else if (cls == B_BOOL) {
			NEXT_SLOT();
			slot->kind = OCAPN_BOOL;
			slot->flags = 0;
			slot->reserved_ = 0;
			slot->len = 0;
			slot->u.i = 0;
			slot->u.b = c == 't';
			p++;
		} else if (cls == B_F64) {
			if (OCAPN_UNLIKELY(end - p < 9)) {
				if (capped)
					FAIL(OCAPN_E_LIMIT, start - buf,
					    "value exceeds the total size "
					    "limit");
				goto incomplete;
			}
			NEXT_SLOT();
			uint64_t bits = 0;
			for (int i = 1; i <= 8; i++)
				bits = (bits << 8) | p[i];
			if ((bits & ~F64_SIGN) > F64_INF &&
			    bits != OCAPN__CANONICAL_NAN)
				raw_keys = false;
			slot->kind = OCAPN_FLOAT64;
			slot->flags = 0;
			slot->reserved_ = 0;
			slot->len = 0;
			memcpy(&slot->u.f64, &bits, 8);
			p += 9;
		} else if (cls == B_F32) {
			if (OCAPN_UNLIKELY(end - p < 5)) {
				if (capped)
					FAIL(OCAPN_E_LIMIT, start - buf,
					    "value exceeds the total size "
					    "limit");
				goto incomplete;
			}
			NEXT_SLOT();
			uint32_t bits = (uint32_t)p[1] << 24 |
			    (uint32_t)p[2] << 16 | (uint32_t)p[3] << 8 | p[4];
			if ((bits & ~F32_SIGN) > F32_INF &&
			    bits != OCAPN__CANONICAL_NAN32)
				raw_keys = false;
			slot->kind = OCAPN_FLOAT32;
			slot->flags = 0;
			slot->reserved_ = 0;
			slot->len = 0;
			slot->u.i = 0;
			memcpy(&slot->u.f32, &bits, 4);
			p += 5;
		} else {
			FAIL(OCAPN_E_SYNTAX, start - buf, "unknown type byte");
		}

		if (OCAPN_UNLIKELY(slot == &top)) {
			ocapn_value *res = ocapn__arena_alloc_aligned(arena,
			    sizeof(top));
			if (!res)
				FAIL(OCAPN_E_NOMEM, start - buf,
				    "out of memory");
			*res = top;
			if (one && p != buf + len) {
				for (const uint8_t *q = p; q < buf + len; q++)
					if (!ocapn__is_ws(*q) ||
					    (d->flags &
						OCAPN_SYRUP_NO_WHITESPACE))
						FAIL(OCAPN_E_TRAILING, q - buf,
						    "bytes after the value");
			}
			*out = res;
			*consumed = (size_t)(p - buf);
			return OCAPN_OK;
		}
		if (sorted) {
			d->spans[nv].start = (uint32_t)(start - buf);
			d->spans[nv].end = (uint32_t)(p - buf);
		}
		nv++;
	}
#undef NEXT_SLOT

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
	return decode(d, arena, buf, len, out, consumed, false);
}

OCAPN_API int
ocapn_syrup_decode_one(ocapn_syrup_decoder *d, ocapn_arena *arena,
    const uint8_t *buf, size_t len, ocapn_value **out)
{
	size_t used;
	if (!d || !arena || (!buf && len) || !out)
		return OCAPN_E_INVAL;
	return decode(d, arena, buf, len, out, &used, true);
}
