/*
 * Canonical Syrup writer.
 *
 * Output goes to one `ocapn_buffer` (the writer's own, the caller's, or a
 * fixed caller array).  Dicts and sets are written in the order the caller
 * gives and put in canonical order when they are closed: the writer records
 * where each entry starts, and if the entries are not already strictly
 * increasing by encoded key it sorts an index and rewrites the container's
 * body through a scratch buffer.  Already-sorted input (every value that
 * came out of the decoder) costs one memcmp per entry.
 *
 * After OCAPN_E_NOSPACE in fixed mode the writer stops storing bytes but
 * keeps counting them, so ocapn_syrup_writer_size() tells the size needed.
 */
#include <math.h>

#include "syrup_internal.h"

struct wframe {
	uint8_t kind;  /* OCAPN_LIST, ... */
	size_t offs0;  /* index of its first entry offset in w->offs */
	size_t body;   /* output offset just after the opening byte */
	size_t nitems; /* items written directly inside */
};

struct ocapn_syrup_writer {
	ocapn_allocator a;
	unsigned flags;
	ocapn_buffer own;
	ocapn_buffer *out;
	bool fixed;
	size_t base;  /* where this output starts in *out */
	size_t len;   /* logical length of out (keeps counting after NOSPACE) */
	int err;
	const char *reason;

	struct wframe *frames;
	size_t nframes, frames_cap;
	size_t *offs; /* start offsets of entries of open dicts and sets */
	size_t noffs, offs_cap;

	/* scratch for sorting */
	size_t *idx;
	size_t idx_cap;
	uint8_t *tmp;
	size_t tmp_cap;
	ocapn_buffer fixed_buf; /* view of the caller's fixed array */
};

static int
fail(ocapn_syrup_writer *w, int err, const char *reason)
{
	if (!w->err) {
		w->err = err;
		w->reason = reason;
	}
	return w->err;
}

OCAPN_API ocapn_syrup_writer *
ocapn_syrup_writer_new(unsigned flags, const ocapn_allocator *alloc)
{
	ocapn_allocator a;
	ocapn__alloc_init(&a, alloc);
	ocapn_syrup_writer *w = ocapn__calloc(&a, sizeof(*w));
	if (!w)
		return NULL;
	w->a = a;
	w->flags = flags;
	ocapn_buffer_init(&w->own);
	ocapn_syrup_writer_reset(w);
	return w;
}

OCAPN_API void
ocapn_syrup_writer_free(ocapn_syrup_writer *w)
{
	if (!w)
		return;
	ocapn_buffer_release(&w->own, &w->a);
	ocapn__free(&w->a, w->frames, w->frames_cap * sizeof(*w->frames));
	ocapn__free(&w->a, w->offs, w->offs_cap * sizeof(*w->offs));
	ocapn__free(&w->a, w->idx, w->idx_cap * sizeof(*w->idx));
	ocapn__free(&w->a, w->tmp, w->tmp_cap);
	ocapn_allocator a = w->a;
	ocapn__free(&a, w, sizeof(*w));
}

OCAPN_API void
ocapn_syrup_writer_set_flags(ocapn_syrup_writer *w, unsigned flags)
{
	w->flags = flags;
}

static void
reset_common(ocapn_syrup_writer *w)
{
	w->err = 0;
	w->reason = "";
	w->nframes = 0;
	w->noffs = 0;
	w->base = w->out->len;
	w->len = w->out->len;
}

OCAPN_API void
ocapn_syrup_writer_reset(ocapn_syrup_writer *w)
{
	w->own.len = 0;
	w->out = &w->own;
	w->fixed = false;
	reset_common(w);
}

OCAPN_API void
ocapn_syrup_writer_reset_fixed(ocapn_syrup_writer *w, uint8_t *buf,
    size_t cap)
{
	w->fixed_buf.data = buf;
	w->fixed_buf.len = 0;
	w->fixed_buf.cap = buf ? cap : 0;
	w->out = &w->fixed_buf;
	w->fixed = true;
	reset_common(w);
}

OCAPN_API void
ocapn_syrup_writer_reset_buffer(ocapn_syrup_writer *w, ocapn_buffer *buf)
{
	w->out = buf;
	w->fixed = false;
	reset_common(w);
}

/* Make room for n more bytes; returns a pointer or NULL (error set). */
static inline uint8_t *
room(ocapn_syrup_writer *w, size_t n)
{
	if (OCAPN_UNLIKELY(w->err)) {
		if (w->err == OCAPN_E_NOSPACE)
			w->len += n;
		return NULL;
	}
	ocapn_buffer *b = w->out;
	if (OCAPN_UNLIKELY(b->cap - b->len < n)) {
		if (w->fixed) {
			fail(w, OCAPN_E_NOSPACE, "output buffer too small");
			w->len += n;
			return NULL;
		}
		if (ocapn_buffer_reserve(b, &w->a, n)) {
			fail(w, OCAPN_E_NOMEM, "out of memory");
			return NULL;
		}
	}
	uint8_t *p = b->data + b->len;
	b->len += n;
	w->len += n;
	return p;
}

static inline void
emit(ocapn_syrup_writer *w, const void *p, size_t n)
{
	uint8_t *d = room(w, n);
	if (d && n)
		memcpy(d, p, n);
}

/* Called before every item: registers it as an entry of an open dict or
 * set, and counts it. */
static inline int
item_start(ocapn_syrup_writer *w)
{
	if (w->nframes == 0)
		return w->err;
	struct wframe *f = &w->frames[w->nframes - 1];
	f->nitems++;
	if (f->kind == OCAPN_DICT || f->kind == OCAPN_SET) {
		if (OCAPN_UNLIKELY(w->noffs == w->offs_cap) &&
		    ocapn__grow(&w->a, (void **)&w->offs, &w->offs_cap,
			w->noffs + 1, sizeof(size_t)))
			return fail(w, OCAPN_E_NOMEM, "out of memory");
		w->offs[w->noffs++] = w->len;
	}
	return w->err;
}

/* Copy n <= 16 bytes with fixed-size moves (overlapping when n is not a
 * power of two) instead of a call: most atoms in CapTP are this short. */
static inline void
copy_short(uint8_t *d, const uint8_t *s, size_t n)
{
	if (n >= 8) {
		memcpy(d, s, 8);
		memcpy(d + n - 8, s + n - 8, 8);
	} else if (n >= 4) {
		memcpy(d, s, 4);
		memcpy(d + n - 4, s + n - 4, 4);
	} else if (n) {
		d[0] = s[0];
		d[n / 2] = s[n / 2];
		d[n - 1] = s[n - 1];
	}
}

/* Length-prefixed atom. */
static int
write_netstring(ocapn_syrup_writer *w, char type, const void *p, size_t n)
{
	item_start(w);
	if (OCAPN_LIKELY(n < 100)) {
		/* one or two length digits, written in place */
		size_t hl = n < 10 ? 2 : 3;
		uint8_t *d = room(w, hl + n);
		if (d) {
			if (n < 10) {
				d[0] = (uint8_t)('0' + n);
			} else {
				d[0] = (uint8_t)('0' + n / 10);
				d[1] = (uint8_t)('0' + n % 10);
			}
			d[hl - 1] = (uint8_t)type;
			if (n <= 16)
				copy_short(d + hl, p, n);
			else
				memcpy(d + hl, p, n);
		}
		return w->err;
	}
	char tmp[24];
	tmp[sizeof(tmp) - 1] = type;
	char *s = ocapn__u64_to_dec(n, tmp + sizeof(tmp) - 1);
	size_t hl = (size_t)(tmp + sizeof(tmp) - s);
	uint8_t *d = room(w, hl + n);
	if (d) {
		memcpy(d, s, hl);
		if (n)
			memcpy(d + hl, p, n);
	}
	return w->err;
}

static int
wr_bool(ocapn_syrup_writer *w, bool b)
{
	item_start(w);
	uint8_t *d = room(w, 1);
	if (d)
		*d = b ? 't' : 'f';
	return w->err;
}

static int
write_mag(ocapn_syrup_writer *w, uint64_t mag, char sign)
{
	item_start(w);
	char tmp[24];
	tmp[sizeof(tmp) - 1] = sign;
	char *s = ocapn__u64_to_dec(mag, tmp + sizeof(tmp) - 1);
	emit(w, s, (size_t)(tmp + sizeof(tmp) - s));
	return w->err;
}

static int
wr_int(ocapn_syrup_writer *w, int64_t i)
{
	if (i < 0)
		return write_mag(w, 0 - (uint64_t)i, '-');
	return write_mag(w, (uint64_t)i, '+');
}

OCAPN_API int
ocapn_syrup_write_uint(ocapn_syrup_writer *w, uint64_t u)
{
	return write_mag(w, u, '+');
}

static int
wr_bigint(ocapn_syrup_writer *w, bool negative,
    const char *digits, size_t nd)
{
	/* After NOSPACE keep going: the size needed is still counted. */
	if (w->err && w->err != OCAPN_E_NOSPACE)
		return w->err;
	if (nd == 0)
		return fail(w, OCAPN_E_INVAL, "integer without digits");
	for (size_t i = 0; i < nd; i++)
		if (digits[i] < '0' || digits[i] > '9')
			return fail(w, OCAPN_E_INVAL, "non-digit in integer");
	if (nd > 1 && digits[0] == '0')
		return fail(w, OCAPN_E_INVAL, "leading zero in integer");
	if (negative && nd == 1 && digits[0] == '0')
		negative = false; /* -0 is 0 */
	item_start(w);
	uint8_t *d = room(w, nd + 1);
	if (d) {
		memcpy(d, digits, nd);
		d[nd] = negative ? '-' : '+';
	}
	return w->err;
}

static int
wr_float64(ocapn_syrup_writer *w, double x)
{
	item_start(w);
	uint64_t b;
	if (isnan(x))
		b = OCAPN__CANONICAL_NAN;
	else
		memcpy(&b, &x, 8);
	uint8_t *d = room(w, 9);
	if (d) {
		d[0] = 'D';
		for (int i = 0; i < 8; i++)
			d[1 + i] = (uint8_t)(b >> (56 - 8 * i));
	}
	return w->err;
}

static int
wr_float32(ocapn_syrup_writer *w, float x)
{
	item_start(w);
	uint32_t b;
	if (isnan(x))
		b = OCAPN__CANONICAL_NAN32;
	else
		memcpy(&b, &x, 4);
	uint8_t *d = room(w, 5);
	if (d) {
		d[0] = 'F';
		for (int i = 0; i < 4; i++)
			d[1 + i] = (uint8_t)(b >> (24 - 8 * i));
	}
	return w->err;
}

static int
wr_bytes(ocapn_syrup_writer *w, const void *p, size_t n)
{
	return write_netstring(w, ':', p, n);
}

static int
wr_string(ocapn_syrup_writer *w, const char *s, size_t n)
{
	if (!w->err && !ocapn__utf8_valid((const uint8_t *)s, n))
		return fail(w, OCAPN_E_UTF8, "string is not valid UTF-8");
	return write_netstring(w, '"', s, n);
}

static int
wr_symbol(ocapn_syrup_writer *w, const char *s, size_t n)
{
	if (!w->err && !ocapn__utf8_valid((const uint8_t *)s, n))
		return fail(w, OCAPN_E_UTF8, "symbol is not valid UTF-8");
	return write_netstring(w, '\'', s, n);
}

static int
begin(ocapn_syrup_writer *w, ocapn_kind kind, char open)
{
	item_start(w);
	if (w->err && w->err != OCAPN_E_NOSPACE)
		return w->err;
	if (w->nframes == w->frames_cap &&
	    ocapn__grow(&w->a, (void **)&w->frames, &w->frames_cap,
		w->nframes + 1, sizeof(struct wframe)))
		return fail(w, OCAPN_E_NOMEM, "out of memory");
	uint8_t *d = room(w, 1);
	if (d)
		*d = (uint8_t)open;
	struct wframe *f = &w->frames[w->nframes++];
	f->kind = (uint8_t)kind;
	f->offs0 = w->noffs;
	f->body = w->len;
	f->nitems = 0;
	return w->err;
}

static int
cmp_range(const uint8_t *a, size_t an, const uint8_t *b, size_t bn)
{
	size_t n = an < bn ? an : bn;
	int c = n ? memcmp(a, b, n) : 0;
	if (c)
		return c;
	return an < bn ? -1 : an > bn ? 1 : 0;
}

/*
 * Sort the entries of the container whose body is out[body..end).
 * `starts[0..n)` are entry starts; for a dict (pairs), entry i spans
 * starts[2i]..starts[2i+2] and its key starts[2i]..starts[2i+1].
 */
struct sortctx {
	const uint8_t *buf;
	const size_t *starts;
	size_t nentries;
	size_t stride; /* 1 for sets, 2 for dicts */
	size_t end;
};

static inline void
key_of(const struct sortctx *c, size_t e, const uint8_t **p, size_t *n)
{
	size_t s = c->starts[e * c->stride];
	size_t k_end = c->stride == 2 ? c->starts[e * 2 + 1]
	    : (e + 1 < c->nentries ? c->starts[e + 1] : c->end);
	*p = c->buf + s;
	*n = k_end - s;
}

static inline int
key_cmp(const struct sortctx *c, size_t x, size_t y)
{
	const uint8_t *a, *b;
	size_t an, bn;
	key_of(c, x, &a, &an);
	key_of(c, y, &b, &bn);
	return cmp_range(a, an, b, bn);
}

/* Bottom-up merge sort of idx[0..n) using tmp[0..n). */
static void
merge_sort(const struct sortctx *c, size_t *idx, size_t *tmp, size_t n)
{
	for (size_t width = 1; width < n; width *= 2) {
		for (size_t lo = 0; lo < n; lo += 2 * width) {
			size_t mid = lo + width < n ? lo + width : n;
			size_t hi = lo + 2 * width < n ? lo + 2 * width : n;
			size_t i = lo, j = mid, k = lo;
			while (i < mid && j < hi)
				tmp[k++] = key_cmp(c, idx[i], idx[j]) <= 0
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

static int
canonicalize(ocapn_syrup_writer *w, struct wframe *f)
{
	size_t nstarts = w->noffs - f->offs0;
	size_t stride = f->kind == OCAPN_DICT ? 2 : 1;
	if (nstarts % stride)
		return fail(w, OCAPN_E_INVAL, "dict has a key without a value");
	if (w->err) /* NOSPACE: bytes are not there to sort, size is exact */
		return w->err;
	struct sortctx c = {
	    .buf = w->out->data,
	    .starts = w->offs + f->offs0,
	    .nentries = nstarts / stride,
	    .stride = stride,
	    .end = w->len, /* absolute offset; no error, so len == out->len */
	};
	size_t n = c.nentries;
	bool sorted = true;
	for (size_t e = 1; e < n; e++) {
		int r = key_cmp(&c, e - 1, e);
		if (r == 0)
			return fail(w, OCAPN_E_DUPLICATE,
			    stride == 2 ? "duplicate dict key"
					: "duplicate set item");
		if (r > 0)
			sorted = false;
	}
	if (sorted)
		return OCAPN_OK;
	if (ocapn__grow(&w->a, (void **)&w->idx, &w->idx_cap, 2 * n,
		sizeof(size_t)))
		return fail(w, OCAPN_E_NOMEM, "out of memory");
	for (size_t e = 0; e < n; e++)
		w->idx[e] = e;
	merge_sort(&c, w->idx, w->idx + n, n);
	for (size_t e = 1; e < n; e++)
		if (key_cmp(&c, w->idx[e - 1], w->idx[e]) == 0)
			return fail(w, OCAPN_E_DUPLICATE,
			    stride == 2 ? "duplicate dict key"
					: "duplicate set item");
	size_t body = c.starts[0];
	size_t total = c.end - body;
	if (ocapn__grow(&w->a, (void **)&w->tmp, &w->tmp_cap, total, 1))
		return fail(w, OCAPN_E_NOMEM, "out of memory");
	size_t o = 0;
	for (size_t k = 0; k < n; k++) {
		size_t e = w->idx[k];
		size_t s = c.starts[e * stride];
		size_t t = e + 1 < n ? c.starts[(e + 1) * stride] : c.end;
		memcpy(w->tmp + o, c.buf + s, t - s);
		o += t - s;
	}
	memcpy(w->out->data + body, w->tmp, total);
	return OCAPN_OK;
}

static int
end(ocapn_syrup_writer *w, ocapn_kind kind, char close)
{
	if (w->err && w->err != OCAPN_E_NOSPACE)
		return w->err;
	if (w->nframes == 0 || w->frames[w->nframes - 1].kind != kind)
		return fail(w, OCAPN_E_STATE,
		    "container end does not match the open container");
	struct wframe *f = &w->frames[w->nframes - 1];
	if (kind == OCAPN_RECORD && f->nitems == 0)
		return fail(w, OCAPN_E_INVAL, "record without a label");
	if ((kind == OCAPN_DICT || kind == OCAPN_SET) && f->nitems)
		canonicalize(w, f);
	if (w->err && w->err != OCAPN_E_NOSPACE)
		return w->err;
	w->noffs = f->offs0;
	w->nframes--;
	uint8_t *d = room(w, 1);
	if (d)
		*d = (uint8_t)close;
	return w->err;
}

OCAPN_API int
ocapn_syrup_write_list_begin(ocapn_syrup_writer *w)
{
	return begin(w, OCAPN_LIST, '[');
}

OCAPN_API int
ocapn_syrup_write_list_end(ocapn_syrup_writer *w)
{
	return end(w, OCAPN_LIST, ']');
}

OCAPN_API int
ocapn_syrup_write_dict_begin(ocapn_syrup_writer *w)
{
	return begin(w, OCAPN_DICT, '{');
}

OCAPN_API int
ocapn_syrup_write_dict_end(ocapn_syrup_writer *w)
{
	return end(w, OCAPN_DICT, '}');
}

OCAPN_API int
ocapn_syrup_write_set_begin(ocapn_syrup_writer *w)
{
	return begin(w, OCAPN_SET, '#');
}

OCAPN_API int
ocapn_syrup_write_set_end(ocapn_syrup_writer *w)
{
	return end(w, OCAPN_SET, '$');
}

OCAPN_API int
ocapn_syrup_write_record_begin(ocapn_syrup_writer *w)
{
	return begin(w, OCAPN_RECORD, '<');
}

OCAPN_API int
ocapn_syrup_write_record_end(ocapn_syrup_writer *w)
{
	return end(w, OCAPN_RECORD, '>');
}

OCAPN_API int
ocapn_syrup_write_raw(ocapn_syrup_writer *w, const void *p, size_t n)
{
	item_start(w);
	emit(w, p, n);
	return w->err;
}

/* The public writers (the value walker calls the static ones directly,
 * without going through the exported symbols). */
OCAPN_API int
ocapn_syrup_write_bool(ocapn_syrup_writer *w, bool b)
{
	return wr_bool(w, b);
}

OCAPN_API int
ocapn_syrup_write_int(ocapn_syrup_writer *w, int64_t i)
{
	return wr_int(w, i);
}

OCAPN_API int
ocapn_syrup_write_bigint(ocapn_syrup_writer *w, bool negative,
    const char *digits, size_t nd)
{
	return wr_bigint(w, negative, digits, nd);
}

OCAPN_API int
ocapn_syrup_write_float64(ocapn_syrup_writer *w, double x)
{
	return wr_float64(w, x);
}

OCAPN_API int
ocapn_syrup_write_float32(ocapn_syrup_writer *w, float x)
{
	return wr_float32(w, x);
}

OCAPN_API int
ocapn_syrup_write_bytes(ocapn_syrup_writer *w, const void *p, size_t n)
{
	return wr_bytes(w, p, n);
}

OCAPN_API int
ocapn_syrup_write_string(ocapn_syrup_writer *w, const char *s, size_t n)
{
	return wr_string(w, s, n);
}

OCAPN_API int
ocapn_syrup_write_symbol(ocapn_syrup_writer *w, const char *s, size_t n)
{
	return wr_symbol(w, s, n);
}

static int
write_value_depth(ocapn_syrup_writer *w, const ocapn_value *v, int depth)
{
	if (w->err && w->err != OCAPN_E_NOSPACE)
		return w->err;
	if (depth > OCAPN__MAX_WALK_DEPTH)
		return fail(w, OCAPN_E_LIMIT, "value nested too deeply");
	switch (v->kind) {
	case OCAPN_BOOL:
		return wr_bool(w, v->u.b != 0);
	case OCAPN_INT:
		if (v->flags & OCAPN_VALUE_BIGINT)
			return wr_bigint(w,
			    (v->flags & OCAPN_VALUE_NEGATIVE) != 0,
			    (const char *)v->u.p, v->len);
		return wr_int(w, v->u.i);
	case OCAPN_FLOAT64:
		return wr_float64(w, v->u.f64);
	case OCAPN_FLOAT32:
		if (w->flags & OCAPN_SYRUP_WRITE_FLOAT32)
			return wr_float32(w, v->u.f32);
		return wr_float64(w, (double)v->u.f32);
	case OCAPN_BYTES:
		return wr_bytes(w, v->u.p, v->len);
	case OCAPN_STRING:
		return wr_string(w, (const char *)v->u.p,
		    v->len);
	case OCAPN_SYMBOL:
		return wr_symbol(w, (const char *)v->u.p,
		    v->len);
	case OCAPN_LIST:
	case OCAPN_SET:
	case OCAPN_RECORD:
	case OCAPN_DICT: {
		static const char open[] = {[OCAPN_LIST] = '[',
		    [OCAPN_SET] = '#', [OCAPN_RECORD] = '<',
		    [OCAPN_DICT] = '{'};
		static const char close[] = {[OCAPN_LIST] = ']',
		    [OCAPN_SET] = '$', [OCAPN_RECORD] = '>',
		    [OCAPN_DICT] = '}'};
		if (v->kind == OCAPN_RECORD && v->len == 0)
			return fail(w, OCAPN_E_INVAL,
			    "record without a label");
		size_t n = v->kind == OCAPN_DICT ? 2 * (size_t)v->len : v->len;
		begin(w, (ocapn_kind)v->kind, open[v->kind]);
		for (size_t i = 0; i < n; i++)
			if (write_value_depth(w, &v->u.items[i], depth + 1) &&
			    w->err != OCAPN_E_NOSPACE)
				return w->err;
		return end(w, (ocapn_kind)v->kind, close[v->kind]);
	}
	default:
		return fail(w, OCAPN_E_INVAL, "value of unknown kind");
	}
}

OCAPN_API int
ocapn_syrup_write_value(ocapn_syrup_writer *w, const ocapn_value *v)
{
	return write_value_depth(w, v, 0);
}

OCAPN_API int
ocapn_syrup_writer_finish(ocapn_syrup_writer *w, const uint8_t **data,
    size_t *len)
{
	if (!w->err && w->nframes)
		fail(w, OCAPN_E_STATE, "a container is still open");
	if (w->err)
		return w->err;
	if (data)
		*data = w->out->data + w->base;
	if (len)
		*len = w->len - w->base;
	return OCAPN_OK;
}

OCAPN_API size_t
ocapn_syrup_writer_size(const ocapn_syrup_writer *w)
{
	return w->len - w->base;
}

OCAPN_API int
ocapn_syrup_writer_error(const ocapn_syrup_writer *w, const char **reason)
{
	if (reason)
		*reason = w->err ? w->reason : "";
	return w->err;
}
