/*
 * Peer locators and sturdyrefs: Syrup form, URI form, and the base32 /
 * base64url wrappers of include/ocapn/locator.h.  Where the spec, Goblins
 * and the conformance suite disagree, the choices are listed in
 * docs/interop.md ("Locators and URIs").
 *
 * Hints are kept sorted by the Syrup encoding of their keys (the order of
 * a canonical dict), so writing a locator never reorders anything and a
 * lookup is a binary search.
 */
#include <stdlib.h>

#include <ocapn/locator.h>

#include "../util/encoding.h"
#include "../util/util.h"

struct hint {
	char *k;
	size_t klen;
	char *v;
	size_t vlen;
	size_t off; /* where the key starts in a parsed URI */
};

struct ocapn_locator {
	ocapn_allocator a;
	char *transport;
	size_t tlen;
	char *designator;
	size_t dlen;
	bool hints_dict;
	struct hint *hints;
	size_t nhints, hcap;
};

struct ocapn_sturdyref {
	ocapn_allocator a;
	ocapn_locator *peer;
	uint8_t *swiss;
	size_t slen;
	bool swiss_string; /* arrived as a Syrup string: written back as one */
};

/* ------------------------------------------------------------------ */
/* Small helpers                                                        */
/* ------------------------------------------------------------------ */

/* Copy of p[0..n) with a NUL after it; NULL on no memory. */
static char *
dupz(const ocapn_allocator *a, const void *p, size_t n)
{
	if (n == SIZE_MAX)
		return NULL;
	char *d = ocapn__malloc(a, n + 1);
	if (!d)
		return NULL;
	if (n)
		memcpy(d, p, n);
	d[n] = 0;
	return d;
}

static void
freez(const ocapn_allocator *a, void *p, size_t n)
{
	ocapn__free(a, p, n + 1);
}

static bool
utf8_ok(const void *p, size_t n)
{
	return n == 0 || ocapn__utf8_valid(p, n);
}

static bool
mem_eq(const void *a, const void *b, size_t n)
{
	return n == 0 || memcmp(a, b, n) == 0;
}

/* Writes the Syrup prefix of a string of `n` bytes ("12\"") into
 * buf[24], returns its length. */
static size_t
str_prefix(size_t n, char buf[24])
{
	char tmp[24];
	char *p = tmp + sizeof(tmp);
	do {
		*--p = (char)('0' + n % 10);
		n /= 10;
	} while (n);
	size_t l = (size_t)(tmp + sizeof(tmp) - p);
	memcpy(buf, p, l);
	buf[l] = '"';
	return l + 1;
}

/*
 * Order of two strings as canonical dict keys: by their Syrup encodings
 * `LEN"BYTES`.  When the length prefixes differ in size, the shorter one
 * ends with '"' where the other has a digit, so the prefixes decide; when
 * they are equal the lengths are equal.
 */
static int
key_cmp(const char *a, size_t an, const char *b, size_t bn)
{
	char pa[24], pb[24];
	size_t pal = str_prefix(an, pa), pbl = str_prefix(bn, pb);
	int c = memcmp(pa, pb, pal < pbl ? pal : pbl);
	if (c || an == 0)
		return c;
	return memcmp(a, b, an);
}

static int
hint_cmp(const void *x, const void *y)
{
	const struct hint *a = x, *b = y;
	int c = key_cmp(a->k, a->klen, b->k, b->klen);
	if (c)
		return c;
	return a->off < b->off ? -1 : a->off > b->off;
}

static void
hints_free(ocapn_locator *loc)
{
	for (size_t i = 0; i < loc->nhints; i++) {
		freez(&loc->a, loc->hints[i].k, loc->hints[i].klen);
		freez(&loc->a, loc->hints[i].v, loc->hints[i].vlen);
	}
	ocapn__free(&loc->a, loc->hints, loc->hcap * sizeof(*loc->hints));
	loc->hints = NULL;
	loc->nhints = loc->hcap = 0;
}

/* Append a hint (taking ownership of k and v, freed on failure). */
static int
hints_push(ocapn_locator *loc, char *k, size_t klen, char *v, size_t vlen,
    size_t off)
{
	if (ocapn__grow(&loc->a, (void **)&loc->hints, &loc->hcap,
		loc->nhints + 1, sizeof(*loc->hints))) {
		freez(&loc->a, k, klen);
		freez(&loc->a, v, vlen);
		return OCAPN_E_NOMEM;
	}
	loc->hints[loc->nhints++] = (struct hint){k, klen, v, vlen, off};
	return OCAPN_OK;
}

/* Sort pushed hints; returns the index of the first repeated key (its
 * later occurrence) or SIZE_MAX. */
static size_t
hints_sort(ocapn_locator *loc)
{
	if (loc->nhints > 1)
		qsort(loc->hints, loc->nhints, sizeof(*loc->hints), hint_cmp);
	size_t dup = SIZE_MAX;
	for (size_t i = 1; i < loc->nhints; i++) {
		const struct hint *p = &loc->hints[i - 1], *h = &loc->hints[i];
		if (key_cmp(p->k, p->klen, h->k, h->klen) == 0 &&
		    (dup == SIZE_MAX || h->off < loc->hints[dup].off))
			dup = i;
	}
	return dup;
}

/* Binary search: index of `key` or, negated minus one, where it goes. */
static ptrdiff_t
hint_find(const ocapn_locator *loc, const char *key, size_t klen)
{
	size_t lo = 0, hi = loc->nhints;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct hint *h = &loc->hints[mid];
		int c = key_cmp(h->k, h->klen, key, klen);
		if (c == 0)
			return (ptrdiff_t)mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -(ptrdiff_t)lo - 1;
}

/* A locator with copies of transport and designator and no hints; the
 * strings are trusted to be valid. */
static int
locator_alloc(const ocapn_allocator *a, const char *t, size_t tlen,
    const char *d, size_t dlen, ocapn_locator **out)
{
	ocapn_allocator al;
	ocapn__alloc_init(&al, a);
	ocapn_locator *loc = ocapn__calloc(&al, sizeof(*loc));
	if (!loc)
		return OCAPN_E_NOMEM;
	loc->a = al;
	loc->transport = dupz(&al, t, tlen);
	loc->designator = dupz(&al, d, dlen);
	if (!loc->transport || !loc->designator) {
		ocapn_locator_free(loc);
		return OCAPN_E_NOMEM;
	}
	loc->tlen = tlen;
	loc->dlen = dlen;
	*out = loc;
	return OCAPN_OK;
}

static bool
transport_ok(const char *t, size_t tlen)
{
	return tlen > 0 && memchr(t, '.', tlen) == NULL && utf8_ok(t, tlen);
}

/* ------------------------------------------------------------------ */
/* Locators                                                             */
/* ------------------------------------------------------------------ */

OCAPN_API int
ocapn_locator_new(const char *transport, size_t tlen, const char *designator,
    size_t dlen, const ocapn_allocator *alloc, ocapn_locator **out)
{
	if (!out || !transport || (!designator && dlen))
		return OCAPN_E_INVAL;
	if (!transport_ok(transport, tlen) || !utf8_ok(designator, dlen))
		return OCAPN_E_INVAL;
	return locator_alloc(alloc, transport, tlen, designator, dlen, out);
}

OCAPN_API void
ocapn_locator_free(ocapn_locator *loc)
{
	if (!loc)
		return;
	ocapn_allocator a = loc->a;
	hints_free(loc);
	if (loc->transport)
		freez(&a, loc->transport, loc->tlen);
	if (loc->designator)
		freez(&a, loc->designator, loc->dlen);
	ocapn__free(&a, loc, sizeof(*loc));
}

static int
locator_copy_with(const ocapn_locator *loc, const ocapn_allocator *a,
    ocapn_locator **out)
{
	ocapn_locator *c;
	int rc = locator_alloc(a, loc->transport, loc->tlen, loc->designator,
	    loc->dlen, &c);
	if (rc)
		return rc;
	c->hints_dict = loc->hints_dict;
	for (size_t i = 0; i < loc->nhints; i++) {
		const struct hint *h = &loc->hints[i];
		char *k = dupz(&c->a, h->k, h->klen);
		char *v = dupz(&c->a, h->v, h->vlen);
		if (!k || !v) {
			if (k)
				freez(&c->a, k, h->klen);
			if (v)
				freez(&c->a, v, h->vlen);
			ocapn_locator_free(c);
			return OCAPN_E_NOMEM;
		}
		if (hints_push(c, k, h->klen, v, h->vlen, 0)) {
			ocapn_locator_free(c);
			return OCAPN_E_NOMEM;
		}
	}
	*out = c;
	return OCAPN_OK;
}

OCAPN_API int
ocapn_locator_copy(const ocapn_locator *loc, ocapn_locator **out)
{
	if (!loc || !out)
		return OCAPN_E_INVAL;
	return locator_copy_with(loc, &loc->a, out);
}

OCAPN_API const char *
ocapn_locator_transport(const ocapn_locator *loc, size_t *len)
{
	if (len)
		*len = loc->tlen;
	return loc->transport;
}

OCAPN_API const char *
ocapn_locator_designator(const ocapn_locator *loc, size_t *len)
{
	if (len)
		*len = loc->dlen;
	return loc->designator;
}

OCAPN_API int
ocapn_locator_set_hint(ocapn_locator *loc, const char *key, size_t klen,
    const char *val, size_t vlen)
{
	if (!loc || (!key && klen) || (!val && vlen))
		return OCAPN_E_INVAL;
	if (!utf8_ok(key, klen) || !utf8_ok(val, vlen))
		return OCAPN_E_INVAL;
	char *v = dupz(&loc->a, val, vlen);
	if (!v)
		return OCAPN_E_NOMEM;
	ptrdiff_t at = hint_find(loc, key ? key : "", klen);
	if (at >= 0) {
		struct hint *h = &loc->hints[at];
		freez(&loc->a, h->v, h->vlen);
		h->v = v;
		h->vlen = vlen;
		loc->hints_dict = true;
		return OCAPN_OK;
	}
	char *k = dupz(&loc->a, key, klen);
	if (!k) {
		freez(&loc->a, v, vlen);
		return OCAPN_E_NOMEM;
	}
	if (hints_push(loc, k, klen, v, vlen, 0))
		return OCAPN_E_NOMEM;
	size_t pos = (size_t)(-at - 1);
	struct hint h = loc->hints[loc->nhints - 1];
	memmove(&loc->hints[pos + 1], &loc->hints[pos],
	    (loc->nhints - 1 - pos) * sizeof(*loc->hints));
	loc->hints[pos] = h;
	loc->hints_dict = true;
	return OCAPN_OK;
}

OCAPN_API void
ocapn_locator_clear_hints(ocapn_locator *loc, bool as_dict)
{
	hints_free(loc);
	loc->hints_dict = as_dict;
}

OCAPN_API bool
ocapn_locator_hints_are_dict(const ocapn_locator *loc)
{
	return loc->hints_dict;
}

OCAPN_API size_t
ocapn_locator_hint_count(const ocapn_locator *loc)
{
	return loc->nhints;
}

OCAPN_API int
ocapn_locator_hint_at(const ocapn_locator *loc, size_t i, const char **key,
    size_t *klen, const char **val, size_t *vlen)
{
	if (i >= loc->nhints)
		return OCAPN_E_RANGE;
	const struct hint *h = &loc->hints[i];
	if (key)
		*key = h->k;
	if (klen)
		*klen = h->klen;
	if (val)
		*val = h->v;
	if (vlen)
		*vlen = h->vlen;
	return OCAPN_OK;
}

OCAPN_API const char *
ocapn_locator_hint(const ocapn_locator *loc, const char *key, size_t *vlen)
{
	ptrdiff_t at = hint_find(loc, key, strlen(key));
	if (at < 0)
		return NULL;
	if (vlen)
		*vlen = loc->hints[at].vlen;
	return loc->hints[at].v;
}

OCAPN_API bool
ocapn_locator_same_peer(const ocapn_locator *a, const ocapn_locator *b)
{
	return a->tlen == b->tlen && a->dlen == b->dlen &&
	    mem_eq(a->transport, b->transport, a->tlen) &&
	    mem_eq(a->designator, b->designator, a->dlen);
}

/* ---- Syrup form --------------------------------------------------- */

static int
bad(const char **why, const char *reason)
{
	if (why)
		*why = reason;
	return OCAPN_E_PROTOCOL;
}

OCAPN_API int
ocapn_locator_from_value(const ocapn_value *v, const ocapn_allocator *alloc,
    ocapn_locator **out, const char **why)
{
	if (!v || !out)
		return OCAPN_E_INVAL;
	if (v->kind != OCAPN_RECORD || v->len == 0)
		return bad(why, "peer locator is not a record");
	if (!ocapn_value_is_symbol(&v->u.items[0], "ocapn-peer"))
		return bad(why, "peer locator label is not 'ocapn-peer");
	if (v->len != 4)
		return bad(why, "ocapn-peer needs 3 fields: "
				"transport, designator, hints");
	const ocapn_value *t = &v->u.items[1], *d = &v->u.items[2],
			  *h = &v->u.items[3];
	if (t->kind != OCAPN_SYMBOL)
		return bad(why, "ocapn-peer transport is not a symbol");
	if (t->len == 0)
		return bad(why, "ocapn-peer transport is empty");
	if (memchr(t->u.p, '.', t->len))
		return bad(why, "ocapn-peer transport contains '.'");
	if (!utf8_ok(t->u.p, t->len))
		return bad(why, "ocapn-peer transport is not valid UTF-8");
	if (d->kind != OCAPN_STRING)
		return bad(why, "ocapn-peer designator is not a string");
	if (!utf8_ok(d->u.p, d->len))
		return bad(why, "ocapn-peer designator is not valid UTF-8");
	bool dict;
	if (h->kind == OCAPN_DICT)
		dict = true;
	else if (h->kind == OCAPN_BOOL && !h->u.b)
		dict = false;
	else
		return bad(why, "ocapn-peer hints are neither a dict nor f");
	for (size_t i = 0; dict && i < h->len; i++) {
		const ocapn_value *k = &h->u.items[2 * i],
				  *hv = &h->u.items[2 * i + 1];
		if (k->kind != OCAPN_STRING)
			return bad(why, "ocapn-peer hint key is not a string");
		if (hv->kind != OCAPN_STRING)
			return bad(why,
			    "ocapn-peer hint value is not a string");
		if (!utf8_ok(k->u.p, k->len) || !utf8_ok(hv->u.p, hv->len))
			return bad(why, "ocapn-peer hint is not valid UTF-8");
	}
	ocapn_locator *loc;
	int rc = locator_alloc(alloc, (const char *)t->u.p, t->len,
	    (const char *)d->u.p, d->len, &loc);
	if (rc)
		return rc;
	loc->hints_dict = dict;
	for (size_t i = 0; dict && i < h->len; i++) {
		const ocapn_value *k = &h->u.items[2 * i],
				  *hv = &h->u.items[2 * i + 1];
		char *ks = dupz(&loc->a, k->u.p, k->len);
		char *vs = dupz(&loc->a, hv->u.p, hv->len);
		if (!ks || !vs) {
			if (ks)
				freez(&loc->a, ks, k->len);
			if (vs)
				freez(&loc->a, vs, hv->len);
			ocapn_locator_free(loc);
			return OCAPN_E_NOMEM;
		}
		if (hints_push(loc, ks, k->len, vs, hv->len, i)) {
			ocapn_locator_free(loc);
			return OCAPN_E_NOMEM;
		}
	}
	if (hints_sort(loc) != SIZE_MAX) {
		ocapn_locator_free(loc);
		return bad(why, "ocapn-peer hints repeat a key");
	}
	*out = loc;
	return OCAPN_OK;
}

OCAPN_API int
ocapn_locator_write(const ocapn_locator *loc, ocapn_syrup_writer *w)
{
	ocapn_syrup_write_record_begin(w);
	ocapn_syrup_write_symbol(w, "ocapn-peer", 10);
	ocapn_syrup_write_symbol(w, loc->transport, loc->tlen);
	ocapn_syrup_write_string(w, loc->designator, loc->dlen);
	if (loc->hints_dict) {
		ocapn_syrup_write_dict_begin(w);
		for (size_t i = 0; i < loc->nhints; i++) {
			const struct hint *h = &loc->hints[i];
			ocapn_syrup_write_string(w, h->k, h->klen);
			ocapn_syrup_write_string(w, h->v, h->vlen);
		}
		ocapn_syrup_write_dict_end(w);
	} else {
		ocapn_syrup_write_bool(w, false);
	}
	return ocapn_syrup_write_record_end(w);
}

OCAPN_API int
ocapn_locator_to_value(const ocapn_locator *loc, ocapn_arena *arena,
    ocapn_value **out)
{
	if (!loc || !arena || !out)
		return OCAPN_E_INVAL;
	if (loc->tlen > OCAPN_VALUE_MAX_LEN ||
	    loc->dlen > OCAPN_VALUE_MAX_LEN ||
	    loc->nhints > OCAPN_VALUE_MAX_LEN)
		return OCAPN_E_RANGE;
	for (size_t i = 0; i < loc->nhints; i++)
		if (loc->hints[i].klen > OCAPN_VALUE_MAX_LEN ||
		    loc->hints[i].vlen > OCAPN_VALUE_MAX_LEN)
			return OCAPN_E_RANGE;
	ocapn_value *rec = ocapn_arena_values(arena, 1);
	ocapn_value *items = ocapn_arena_values(arena, 4);
	ocapn_value *kv = loc->hints_dict
	    ? ocapn_arena_values(arena, 2 * loc->nhints)
	    : NULL;
	if (!rec || !items || (loc->hints_dict && !kv))
		return OCAPN_E_NOMEM;
	ocapn_value_set_symbol(&items[0], "ocapn-peer", 10);
	ocapn_value_set_symbol(&items[1], loc->transport, loc->tlen);
	ocapn_value_set_string(&items[2], loc->designator, loc->dlen);
	if (loc->hints_dict) {
		for (size_t i = 0; i < loc->nhints; i++) {
			const struct hint *h = &loc->hints[i];
			ocapn_value_set_string(&kv[2 * i], h->k, h->klen);
			ocapn_value_set_string(&kv[2 * i + 1], h->v, h->vlen);
		}
		ocapn_value_set_dict(&items[3], kv, loc->nhints);
	} else {
		ocapn_value_set_bool(&items[3], false);
	}
	ocapn_value_set_record(rec, items, 4);
	*out = rec;
	return OCAPN_OK;
}

/* ---- URI form ----------------------------------------------------- */

struct uri {
	const uint8_t *s;
	size_t len;
	size_t err_off;
	const char *why;
};

static int
uri_fail(struct uri *u, size_t off, const char *why)
{
	u->err_off = off;
	u->why = why;
	return OCAPN_E_SYNTAX;
}

/* RFC 3986 sub-delims. */
static bool
is_sub_delim(uint8_t c)
{
	return c == '!' || c == '$' || c == '&' || c == '\'' || c == '(' ||
	    c == ')' || c == '*' || c == '+' || c == ',' || c == ';' ||
	    c == '=';
}

/* s[i] is '%': are s[i+1] and s[i+2] hex digits before `end`? */
static bool
pct_ok(const struct uri *u, size_t i, size_t end)
{
	return i + 2 < end && ocapn__hexval(u->s[i + 1]) >= 0 &&
	    ocapn__hexval(u->s[i + 2]) >= 0;
}

/* Percent-decode s[from..to) (and '+' as a space when `plus`) into a new
 * NUL-terminated string.  The text was checked by the caller. */
static char *
pct_decode(const ocapn_allocator *a, const uint8_t *s, size_t from, size_t to,
    bool plus, size_t *olen)
{
	char *d = ocapn__malloc(a, to - from + 1);
	if (!d)
		return NULL;
	size_t n = 0;
	for (size_t i = from; i < to; i++) {
		if (s[i] == '%') {
			d[n++] = (char)(ocapn__hexval(s[i + 1]) << 4 |
			    ocapn__hexval(s[i + 2]));
			i += 2;
		} else {
			d[n++] = plus && s[i] == '+' ? ' ' : (char)s[i];
		}
	}
	d[n] = 0;
	*olen = n;
	return d;
}

/* Offset in s[from..) of the `k`-th decoded byte. */
static size_t
raw_offset(const uint8_t *s, size_t from, size_t k)
{
	size_t i = from;
	while (k--)
		i += s[i] == '%' ? 3 : 1;
	return i;
}

/* Free a string from pct_decode (allocated with its raw size). */
static void
pct_free(const ocapn_allocator *a, char *p, size_t from, size_t to)
{
	ocapn__free(a, p, to - from + 1);
}

/*
 * Check the characters of s[from..to): `extra` lists the characters
 * allowed besides unreserved, sub-delims and percent-encodings.
 */
static int
check_chars(struct uri *u, size_t from, size_t to, const char *extra,
    const char *what)
{
	for (size_t i = from; i < to; i++) {
		uint8_t c = u->s[i];
		if (c == '%') {
			if (!pct_ok(u, i, to))
				return uri_fail(u, i,
				    "malformed percent-encoding "
				    "(need '%' and two hex digits)");
			i += 2;
			continue;
		}
		if (ocapn__uri_unreserved(c) || is_sub_delim(c) ||
		    (c && strchr(extra, c)))
			continue;
		return uri_fail(u, i, what);
	}
	return OCAPN_OK;
}

/* Decode s[from..to) and require valid UTF-8. */
static int
decode_part(struct uri *u, const ocapn_allocator *a, size_t from, size_t to,
    bool plus, const char *what, char **out, size_t *olen)
{
	*out = pct_decode(a, u->s, from, to, plus, olen);
	if (!*out)
		return OCAPN_E_NOMEM;
	size_t ok = ocapn__utf8_valid_prefix((const uint8_t *)*out, *olen);
	if (ok != *olen) {
		pct_free(a, *out, from, to);
		*out = NULL;
		return uri_fail(u, raw_offset(u->s, from, ok), what);
	}
	return OCAPN_OK;
}

static int
parse_query(struct uri *u, ocapn_locator *loc, size_t from, size_t to)
{
	loc->hints_dict = true;
	if (from == to)
		return OCAPN_OK;
	/* Query characters (RFC 3986 pchar, '/', '?'), plus '[' and ']'
	 * which people write in IPv6 hints. */
	int rc = check_chars(u, from, to, ":@/?[]",
	    "invalid character in the query (percent-encode it)");
	if (rc)
		return rc;
	size_t i = from;
	while (i <= to) {
		size_t end = i;
		while (end < to && u->s[end] != '&')
			end++;
		if (end == i)
			return uri_fail(u, i,
			    "empty hint (\"&&\", or '&' at the start or end)");
		const uint8_t *eq = memchr(u->s + i, '=', end - i);
		if (!eq)
			return uri_fail(u, end, "hint without '='");
		size_t e = (size_t)(eq - u->s);
		const uint8_t *eq2 = memchr(u->s + e + 1, '=', end - e - 1);
		if (eq2)
			return uri_fail(u, (size_t)(eq2 - u->s),
			    "'=' in a hint value must be percent-encoded");
		char *k, *v;
		size_t klen, vlen;
		rc = decode_part(u, &loc->a, i, e, true,
		    "hint key is not valid UTF-8", &k, &klen);
		if (rc)
			return rc;
		rc = decode_part(u, &loc->a, e + 1, end, true,
		    "hint value is not valid UTF-8", &v, &vlen);
		if (rc) {
			pct_free(&loc->a, k, i, e);
			return rc;
		}
		/* Keep exact allocation sizes: re-copy to klen/vlen + 1. */
		char *k2 = dupz(&loc->a, k, klen), *v2 = dupz(&loc->a, v, vlen);
		pct_free(&loc->a, k, i, e);
		pct_free(&loc->a, v, e + 1, end);
		if (!k2 || !v2) {
			if (k2)
				freez(&loc->a, k2, klen);
			if (v2)
				freez(&loc->a, v2, vlen);
			return OCAPN_E_NOMEM;
		}
		if (hints_push(loc, k2, klen, v2, vlen, i))
			return OCAPN_E_NOMEM;
		i = end + 1;
	}
	size_t dup = hints_sort(loc);
	if (dup != SIZE_MAX)
		return uri_fail(u, loc->hints[dup].off, "repeated hint key");
	return OCAPN_OK;
}

/*
 * Parse a peer URI (want_swiss false) or a sturdyref URI.  On success
 * *loc is set and, for a sturdyref, the swiss number is appended to
 * `swiss`.
 */
static int
parse_uri(struct uri *u, const ocapn_allocator *alloc, bool want_swiss,
    ocapn_locator **out, ocapn_buffer *swiss, const ocapn_allocator *sa)
{
	static const char scheme[] = "ocapn://";
	const uint8_t *s = u->s;
	size_t len = u->len;
	if (len == 0)
		return uri_fail(u, 0, "empty URI");
	for (size_t i = 0; i < 8; i++) {
		if (i >= len)
			return uri_fail(u, len, "URI ends inside \"ocapn://\"");
		uint8_t c = s[i];
		if (i < 5 && c >= 'A' && c <= 'Z')
			c = (uint8_t)(c - 'A' + 'a');
		if (c != (uint8_t)scheme[i])
			return uri_fail(u, i, i < 5 ? "URI scheme is not ocapn"
						    : "expected \"://\" after "
						      "the scheme");
	}
	/* Authority: a host only (no userinfo, no port). */
	size_t h0 = 8, h1 = h0;
	while (h1 < len && s[h1] != '/' && s[h1] != '?' && s[h1] != '#')
		h1++;
	if (h1 == h0)
		return uri_fail(u, h0, "empty host");
	for (size_t i = h0; i < h1; i++) {
		if (s[i] == '@')
			return uri_fail(u, i,
			    "userinfo ('@') is not allowed in an OCapN URI");
		if (s[i] == ':')
			return uri_fail(u, i,
			    "a port (':') is not allowed in an OCapN URI");
		if (s[i] == '[' || s[i] == ']')
			return uri_fail(u, i,
			    "IP literals ('[') are not allowed in the host");
	}
	int rc = check_chars(u, h0, h1, "",
	    "invalid character in the host (percent-encode it)");
	if (rc)
		return rc;
	ocapn_allocator a;
	ocapn__alloc_init(&a, alloc);
	char *host;
	size_t hlen;
	rc = decode_part(u, &a, h0, h1, false, "host is not valid UTF-8",
	    &host, &hlen);
	if (rc)
		return rc;
	const char *dot = NULL;
	for (size_t i = hlen; i > 0; i--)
		if (host[i - 1] == '.') {
			dot = host + i - 1;
			break;
		}
	if (!dot) {
		pct_free(&a, host, h0, h1);
		return uri_fail(u, h1,
		    "host has no '.' between designator and transport");
	}
	size_t dlen = (size_t)(dot - host), tlen = hlen - dlen - 1;
	if (tlen == 0) {
		pct_free(&a, host, h0, h1);
		return uri_fail(u, h1, "empty transport after the last '.'");
	}
	ocapn_locator *loc;
	rc = locator_alloc(&a, dot + 1, tlen, host, dlen, &loc);
	pct_free(&a, host, h0, h1);
	if (rc)
		return rc;

	size_t p = h1;
	if (want_swiss) {
		if (p >= len || s[p] != '/') {
			rc = uri_fail(u, p,
			    "a sturdyref URI needs \"/s/SWISS\" after the "
			    "host");
			goto fail;
		}
		if (len - p < 3 || s[p + 1] != 's' || s[p + 2] != '/') {
			rc = uri_fail(u, p + 1,
			    "expected \"/s/\" after the host");
			goto fail;
		}
		size_t w0 = p + 3, w1 = w0;
		while (w1 < len && s[w1] != '?' && s[w1] != '#')
			w1++;
		const uint8_t *slash = memchr(s + w0, '/', w1 - w0);
		if (slash) {
			rc = uri_fail(u, (size_t)(slash - s),
			    "unexpected '/' in the swiss number");
			goto fail;
		}
		rc = check_chars(u, w0, w1, ":@",
		    "invalid character in the swiss number");
		if (rc)
			goto fail;
		size_t blen;
		char *b64 = pct_decode(&a, s, w0, w1, false, &blen);
		if (!b64) {
			rc = OCAPN_E_NOMEM;
			goto fail;
		}
		size_t eo = 0;
		const char *why = NULL;
		rc = ocapn__base64url_decode(b64, blen, swiss, sa, &eo, &why);
		pct_free(&a, b64, w0, w1);
		if (rc == OCAPN_E_SYNTAX)
			uri_fail(u, raw_offset(s, w0, eo), why);
		if (rc)
			goto fail;
		p = w1;
	} else if (p < len && s[p] == '/') {
		/* "ocapn://D.T/" names the peer too (Goblins accepts it). */
		if (p + 1 < len && s[p + 1] != '?' && s[p + 1] != '#') {
			rc = uri_fail(u, p,
			    "a peer URI has no path (for /s/... use "
			    "ocapn_sturdyref_parse_uri)");
			goto fail;
		}
		p++;
	}
	size_t q0 = len;
	if (p < len && s[p] == '?') {
		q0 = p + 1;
		const uint8_t *hash = memchr(s + q0, '#', len - q0);
		if (hash) {
			rc = uri_fail(u, (size_t)(hash - s),
			    "fragments ('#') are not allowed in an OCapN URI");
			goto fail;
		}
		rc = parse_query(u, loc, q0, len);
		if (rc)
			goto fail;
	} else if (p < len) {
		/* Only '#' can be here. */
		rc = uri_fail(u, p,
		    "fragments ('#') are not allowed in an OCapN URI");
		goto fail;
	}
	*out = loc;
	return OCAPN_OK;
fail:
	ocapn_locator_free(loc);
	return rc;
}

static void
report(const struct uri *u, int rc, size_t *err_off, const char **why)
{
	if (rc != OCAPN_E_SYNTAX)
		return;
	if (err_off)
		*err_off = u->err_off;
	if (why)
		*why = u->why;
}

OCAPN_API int
ocapn_locator_parse_uri(const char *uri, size_t len,
    const ocapn_allocator *alloc, ocapn_locator **out, size_t *err_off,
    const char **why)
{
	if (!out || (!uri && len))
		return OCAPN_E_INVAL;
	struct uri u = {(const uint8_t *)uri, len, 0, ""};
	int rc = parse_uri(&u, alloc, false, out, NULL, NULL);
	report(&u, rc, err_off, why);
	return rc;
}

/* Append the host and, when `swiss`, the path; then the query. */
static int
append_uri(const ocapn_locator *loc, const uint8_t *swiss, size_t slen,
    bool with_swiss, ocapn_buffer *out, const ocapn_allocator *alloc)
{
	size_t start = out->len;
	int rc = ocapn_buffer_append(out, alloc, "ocapn://", 8);
	if (!rc)
		rc = ocapn__pct_encode((const uint8_t *)loc->designator,
		    loc->dlen, out, alloc);
	if (!rc)
		rc = ocapn_buffer_append(out, alloc, ".", 1);
	if (!rc)
		rc = ocapn__pct_encode((const uint8_t *)loc->transport,
		    loc->tlen, out, alloc);
	if (!rc && with_swiss) {
		rc = ocapn_buffer_append(out, alloc, "/s/", 3);
		if (!rc)
			rc = ocapn__base64url_encode(swiss, slen, out, alloc);
	}
	if (!rc && loc->hints_dict)
		rc = ocapn_buffer_append(out, alloc, "?", 1);
	for (size_t i = 0; !rc && i < loc->nhints; i++) {
		const struct hint *h = &loc->hints[i];
		if (i)
			rc = ocapn_buffer_append(out, alloc, "&", 1);
		if (!rc)
			rc = ocapn__pct_encode((const uint8_t *)h->k, h->klen,
			    out, alloc);
		if (!rc)
			rc = ocapn_buffer_append(out, alloc, "=", 1);
		if (!rc)
			rc = ocapn__pct_encode((const uint8_t *)h->v, h->vlen,
			    out, alloc);
	}
	if (!rc)
		rc = ocapn_buffer_reserve(out, alloc, 1);
	if (rc) {
		out->len = start;
		if (out->data)
			out->data[start] = 0;
		return rc;
	}
	out->data[out->len] = 0;
	return OCAPN_OK;
}

OCAPN_API int
ocapn_locator_to_uri(const ocapn_locator *loc, ocapn_buffer *out,
    const ocapn_allocator *alloc)
{
	if (!loc || !out)
		return OCAPN_E_INVAL;
	return append_uri(loc, NULL, 0, false, out, alloc);
}

/* ------------------------------------------------------------------ */
/* Sturdyrefs                                                           */
/* ------------------------------------------------------------------ */

/* A sturdyref taking ownership of `peer`, copying the swiss number. */
static int
sturdyref_make(const ocapn_allocator *alloc, ocapn_locator *peer,
    const uint8_t *swiss, size_t slen, bool as_string, ocapn_sturdyref **out)
{
	ocapn_allocator a;
	ocapn__alloc_init(&a, alloc);
	ocapn_sturdyref *sr = ocapn__calloc(&a, sizeof(*sr));
	char *sw = dupz(&a, swiss, slen);
	if (!sr || !sw) {
		if (sr)
			ocapn__free(&a, sr, sizeof(*sr));
		if (sw)
			freez(&a, sw, slen);
		ocapn_locator_free(peer);
		return OCAPN_E_NOMEM;
	}
	sr->a = a;
	sr->peer = peer;
	sr->swiss = (uint8_t *)sw;
	sr->slen = slen;
	sr->swiss_string = as_string;
	*out = sr;
	return OCAPN_OK;
}

OCAPN_API int
ocapn_sturdyref_new(const ocapn_locator *peer, const uint8_t *swiss,
    size_t swiss_len, const ocapn_allocator *alloc, ocapn_sturdyref **out)
{
	if (!peer || !out || (!swiss && swiss_len))
		return OCAPN_E_INVAL;
	ocapn_allocator a;
	ocapn__alloc_init(&a, alloc);
	ocapn_locator *c;
	int rc = locator_copy_with(peer, &a, &c);
	if (rc)
		return rc;
	return sturdyref_make(&a, c, swiss, swiss_len, false, out);
}

OCAPN_API void
ocapn_sturdyref_free(ocapn_sturdyref *sr)
{
	if (!sr)
		return;
	ocapn_allocator a = sr->a;
	ocapn_locator_free(sr->peer);
	freez(&a, sr->swiss, sr->slen);
	ocapn__free(&a, sr, sizeof(*sr));
}

OCAPN_API const ocapn_locator *
ocapn_sturdyref_locator(const ocapn_sturdyref *sr)
{
	return sr->peer;
}

OCAPN_API const uint8_t *
ocapn_sturdyref_swiss(const ocapn_sturdyref *sr, size_t *len)
{
	if (len)
		*len = sr->slen;
	return sr->swiss;
}

OCAPN_API int
ocapn_sturdyref_from_value(const ocapn_value *v, const ocapn_allocator *alloc,
    ocapn_sturdyref **out, const char **why)
{
	if (!v || !out)
		return OCAPN_E_INVAL;
	if (v->kind != OCAPN_RECORD || v->len == 0)
		return bad(why, "sturdyref is not a record");
	if (!ocapn_value_is_symbol(&v->u.items[0], "ocapn-sturdyref"))
		return bad(why, "sturdyref label is not 'ocapn-sturdyref");
	if (v->len != 3)
		return bad(why, "ocapn-sturdyref needs 2 fields: peer, swiss");
	const ocapn_value *sw = &v->u.items[2];
	if (sw->kind != OCAPN_BYTES && sw->kind != OCAPN_STRING)
		return bad(why, "ocapn-sturdyref swiss number is neither "
				"bytes nor a string");
	if (sw->kind == OCAPN_STRING && !utf8_ok(sw->u.p, sw->len))
		return bad(why, "ocapn-sturdyref swiss number string is not "
				"valid UTF-8");
	ocapn_locator *peer;
	int rc = ocapn_locator_from_value(&v->u.items[1], alloc, &peer, why);
	if (rc)
		return rc;
	return sturdyref_make(alloc, peer, sw->u.p, sw->len,
	    sw->kind == OCAPN_STRING, out);
}

OCAPN_API int
ocapn_sturdyref_write(const ocapn_sturdyref *sr, ocapn_syrup_writer *w)
{
	ocapn_syrup_write_record_begin(w);
	ocapn_syrup_write_symbol(w, "ocapn-sturdyref", 15);
	ocapn_locator_write(sr->peer, w);
	if (sr->swiss_string)
		ocapn_syrup_write_string(w, (const char *)sr->swiss, sr->slen);
	else
		ocapn_syrup_write_bytes(w, sr->swiss, sr->slen);
	return ocapn_syrup_write_record_end(w);
}

OCAPN_API int
ocapn_sturdyref_to_value(const ocapn_sturdyref *sr, ocapn_arena *arena,
    ocapn_value **out)
{
	if (!sr || !arena || !out)
		return OCAPN_E_INVAL;
	if (sr->slen > OCAPN_VALUE_MAX_LEN)
		return OCAPN_E_RANGE;
	ocapn_value *peer;
	int rc = ocapn_locator_to_value(sr->peer, arena, &peer);
	if (rc)
		return rc;
	ocapn_value *rec = ocapn_arena_values(arena, 1);
	ocapn_value *items = ocapn_arena_values(arena, 3);
	if (!rec || !items)
		return OCAPN_E_NOMEM;
	ocapn_value_set_symbol(&items[0], "ocapn-sturdyref", 15);
	items[1] = *peer;
	if (sr->swiss_string)
		ocapn_value_set_string(&items[2], (const char *)sr->swiss,
		    sr->slen);
	else
		ocapn_value_set_bytes(&items[2], sr->swiss, sr->slen);
	ocapn_value_set_record(rec, items, 3);
	*out = rec;
	return OCAPN_OK;
}

OCAPN_API int
ocapn_sturdyref_parse_uri(const char *uri, size_t len,
    const ocapn_allocator *alloc, ocapn_sturdyref **out, size_t *err_off,
    const char **why)
{
	if (!out || (!uri && len))
		return OCAPN_E_INVAL;
	ocapn_allocator a;
	ocapn__alloc_init(&a, alloc);
	struct uri u = {(const uint8_t *)uri, len, 0, ""};
	ocapn_buffer swiss;
	ocapn_buffer_init(&swiss);
	ocapn_locator *peer;
	int rc = parse_uri(&u, &a, true, &peer, &swiss, &a);
	if (rc) {
		ocapn_buffer_release(&swiss, &a);
		report(&u, rc, err_off, why);
		return rc;
	}
	rc = sturdyref_make(&a, peer, swiss.data, swiss.len, false, out);
	ocapn_buffer_release(&swiss, &a);
	return rc;
}

OCAPN_API int
ocapn_sturdyref_to_uri(const ocapn_sturdyref *sr, ocapn_buffer *out,
    const ocapn_allocator *alloc)
{
	if (!sr || !out)
		return OCAPN_E_INVAL;
	return append_uri(sr->peer, sr->swiss, sr->slen, true, out, alloc);
}

/* ------------------------------------------------------------------ */
/* Public wrappers of the encodings                                     */
/* ------------------------------------------------------------------ */

OCAPN_API int
ocapn_base32_encode(const uint8_t *in, size_t len, ocapn_buffer *out,
    const ocapn_allocator *alloc)
{
	if (!out || (!in && len))
		return OCAPN_E_INVAL;
	return ocapn__base32_encode(in, len, out, alloc);
}

OCAPN_API int
ocapn_base32_decode(const char *in, size_t len, ocapn_buffer *out,
    const ocapn_allocator *alloc)
{
	if (!out || (!in && len))
		return OCAPN_E_INVAL;
	return ocapn__base32_decode(in, len, out, alloc, NULL, NULL);
}

OCAPN_API int
ocapn_base64url_encode(const uint8_t *in, size_t len, ocapn_buffer *out,
    const ocapn_allocator *alloc)
{
	if (!out || (!in && len))
		return OCAPN_E_INVAL;
	return ocapn__base64url_encode(in, len, out, alloc);
}

OCAPN_API int
ocapn_base64url_decode(const char *in, size_t len, ocapn_buffer *out,
    const ocapn_allocator *alloc)
{
	if (!out || (!in && len))
		return OCAPN_E_INVAL;
	return ocapn__base64url_decode(in, len, out, alloc, NULL, NULL);
}
