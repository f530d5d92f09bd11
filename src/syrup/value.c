/*
 * Value constructors, accessors and equality.
 */
#include <math.h>

#include "syrup_internal.h"

static void
set(ocapn_value *v, ocapn_kind k, uint32_t len)
{
	v->kind = (uint8_t)k;
	v->flags = 0;
	v->reserved_ = 0;
	v->len = len;
}

static uint32_t
clamp_len(size_t n)
{
	/* Callers document that lengths are below 4 GiB; clamp so that an
	 * oversized value can never index past its storage. */
	return n > OCAPN_VALUE_MAX_LEN ? OCAPN_VALUE_MAX_LEN : (uint32_t)n;
}

OCAPN_API void
ocapn_value_set_bool(ocapn_value *v, bool b)
{
	set(v, OCAPN_BOOL, 0);
	v->u.i = 0;
	v->u.b = b ? 1 : 0;
}

OCAPN_API void
ocapn_value_set_int(ocapn_value *v, int64_t i)
{
	set(v, OCAPN_INT, 0);
	v->u.i = i;
}

OCAPN_API void
ocapn_value_set_float64(ocapn_value *v, double d)
{
	set(v, OCAPN_FLOAT64, 0);
	v->u.f64 = d;
}

OCAPN_API void
ocapn_value_set_float32(ocapn_value *v, float f)
{
	set(v, OCAPN_FLOAT32, 0);
	v->u.i = 0;
	v->u.f32 = f;
}

OCAPN_API void
ocapn_value_set_bytes(ocapn_value *v, const void *p, size_t len)
{
	set(v, OCAPN_BYTES, clamp_len(len));
	v->u.p = p;
}

OCAPN_API void
ocapn_value_set_string(ocapn_value *v, const char *s, size_t len)
{
	set(v, OCAPN_STRING, clamp_len(len));
	v->u.p = (const uint8_t *)s;
}

OCAPN_API void
ocapn_value_set_symbol(ocapn_value *v, const char *s, size_t len)
{
	set(v, OCAPN_SYMBOL, clamp_len(len));
	v->u.p = (const uint8_t *)s;
}

OCAPN_API void
ocapn_value_set_list(ocapn_value *v, ocapn_value *items, size_t n)
{
	set(v, OCAPN_LIST, clamp_len(n));
	v->u.items = items;
}

OCAPN_API void
ocapn_value_set_set(ocapn_value *v, ocapn_value *items, size_t n)
{
	set(v, OCAPN_SET, clamp_len(n));
	v->u.items = items;
}

OCAPN_API void
ocapn_value_set_dict(ocapn_value *v, ocapn_value *kv, size_t npairs)
{
	set(v, OCAPN_DICT, clamp_len(npairs));
	v->u.items = kv;
}

OCAPN_API void
ocapn_value_set_record(ocapn_value *v, ocapn_value *items,
    size_t n_with_label)
{
	set(v, OCAPN_RECORD, clamp_len(n_with_label));
	v->u.items = items;
}

/* Parse a digit run known to be valid; returns false on uint64 overflow. */
static bool
digits_to_u64(const uint8_t *d, size_t n, uint64_t *out)
{
	uint64_t u = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned dg = (unsigned)(d[i] - '0');
		if (u > (UINT64_MAX - dg) / 10)
			return false;
		u = u * 10 + dg;
	}
	*out = u;
	return true;
}

OCAPN_API int
ocapn_value_set_int_text(ocapn_value *v, ocapn_arena *arena,
    const char *text, size_t len)
{
	size_t i = 0;
	bool neg = false;
	if (i < len && (text[i] == '-' || text[i] == '+')) {
		neg = text[i] == '-';
		i++;
	}
	size_t nd = len - i;
	if (nd == 0 || nd > OCAPN_VALUE_MAX_LEN)
		return OCAPN_E_SYNTAX;
	const uint8_t *d = (const uint8_t *)text + i;
	for (size_t k = 0; k < nd; k++)
		if (d[k] < '0' || d[k] > '9')
			return OCAPN_E_SYNTAX;
	if (nd > 1 && d[0] == '0')
		return OCAPN_E_SYNTAX;
	uint64_t u;
	if (digits_to_u64(d, nd, &u)) {
		if (!neg && u <= (uint64_t)INT64_MAX) {
			ocapn_value_set_int(v, (int64_t)u);
			return OCAPN_OK;
		}
		if (neg && u <= (uint64_t)INT64_MAX + 1) {
			ocapn_value_set_int(v, u == 0 ? 0 : (int64_t)(0 - u));
			return OCAPN_OK;
		}
	}
	uint8_t *copy = ocapn_arena_memdup(arena, d, nd);
	if (!copy)
		return OCAPN_E_NOMEM;
	set(v, OCAPN_INT, (uint32_t)nd);
	v->flags = OCAPN_VALUE_BIGINT | (neg ? OCAPN_VALUE_NEGATIVE : 0);
	v->u.p = copy;
	return OCAPN_OK;
}

OCAPN_API ocapn_kind
ocapn_value_kind(const ocapn_value *v)
{
	return (ocapn_kind)v->kind;
}

OCAPN_API int
ocapn_value_get_bool(const ocapn_value *v, bool *out)
{
	if (v->kind != OCAPN_BOOL)
		return OCAPN_E_TYPE;
	*out = v->u.b != 0;
	return OCAPN_OK;
}

OCAPN_API bool
ocapn_value_fits_int64(const ocapn_value *v)
{
	return v->kind == OCAPN_INT && !(v->flags & OCAPN_VALUE_BIGINT);
}

OCAPN_API bool
ocapn_value_fits_uint64(const ocapn_value *v)
{
	if (v->kind != OCAPN_INT)
		return false;
	if (!(v->flags & OCAPN_VALUE_BIGINT))
		return v->u.i >= 0;
	uint64_t u;
	return !(v->flags & OCAPN_VALUE_NEGATIVE) &&
	    digits_to_u64(v->u.p, v->len, &u);
}

OCAPN_API int
ocapn_value_get_int64(const ocapn_value *v, int64_t *out)
{
	if (v->kind != OCAPN_INT)
		return OCAPN_E_TYPE;
	if (v->flags & OCAPN_VALUE_BIGINT)
		return OCAPN_E_RANGE;
	*out = v->u.i;
	return OCAPN_OK;
}

OCAPN_API int
ocapn_value_get_uint64(const ocapn_value *v, uint64_t *out)
{
	if (v->kind != OCAPN_INT)
		return OCAPN_E_TYPE;
	if (!(v->flags & OCAPN_VALUE_BIGINT)) {
		if (v->u.i < 0)
			return OCAPN_E_RANGE;
		*out = (uint64_t)v->u.i;
		return OCAPN_OK;
	}
	if (v->flags & OCAPN_VALUE_NEGATIVE)
		return OCAPN_E_RANGE;
	return digits_to_u64(v->u.p, v->len, out) ? OCAPN_OK : OCAPN_E_RANGE;
}

OCAPN_API int
ocapn_value_get_int_text(const ocapn_value *v, char *buf, size_t cap,
    size_t *needed)
{
	if (v->kind != OCAPN_INT)
		return OCAPN_E_TYPE;
	char tmp[24];
	const char *digits;
	size_t nd;
	bool neg;
	if (v->flags & OCAPN_VALUE_BIGINT) {
		digits = (const char *)v->u.p;
		nd = v->len;
		neg = (v->flags & OCAPN_VALUE_NEGATIVE) != 0;
	} else {
		neg = v->u.i < 0;
		uint64_t mag = neg ? 0 - (uint64_t)v->u.i : (uint64_t)v->u.i;
		digits = ocapn__u64_to_dec(mag, tmp + sizeof(tmp));
		nd = (size_t)(tmp + sizeof(tmp) - digits);
	}
	size_t need = nd + (neg ? 1 : 0) + 1;
	if (needed)
		*needed = need;
	if (cap < need)
		return OCAPN_E_NOSPACE;
	size_t o = 0;
	if (neg)
		buf[o++] = '-';
	memcpy(buf + o, digits, nd);
	buf[o + nd] = '\0';
	return OCAPN_OK;
}

OCAPN_API int
ocapn_value_get_float64(const ocapn_value *v, double *out)
{
	if (v->kind != OCAPN_FLOAT64)
		return OCAPN_E_TYPE;
	*out = v->u.f64;
	return OCAPN_OK;
}

OCAPN_API int
ocapn_value_get_float32(const ocapn_value *v, float *out)
{
	if (v->kind != OCAPN_FLOAT32)
		return OCAPN_E_TYPE;
	*out = v->u.f32;
	return OCAPN_OK;
}

OCAPN_API int
ocapn_value_get_data(const ocapn_value *v, const uint8_t **data, size_t *len)
{
	if (v->kind != OCAPN_BYTES && v->kind != OCAPN_STRING &&
	    v->kind != OCAPN_SYMBOL)
		return OCAPN_E_TYPE;
	*data = v->u.p;
	*len = v->len;
	return OCAPN_OK;
}

OCAPN_API size_t
ocapn_value_count(const ocapn_value *v)
{
	switch (v->kind) {
	case OCAPN_LIST:
	case OCAPN_SET:
	case OCAPN_DICT:
		return v->len;
	case OCAPN_RECORD:
		return v->len ? v->len - 1 : 0;
	default:
		return 0;
	}
}

OCAPN_API const ocapn_value *
ocapn_value_item(const ocapn_value *v, size_t i)
{
	switch (v->kind) {
	case OCAPN_LIST:
	case OCAPN_SET:
		return i < v->len ? &v->u.items[i] : NULL;
	case OCAPN_RECORD:
		return v->len && i < (size_t)v->len - 1 ? &v->u.items[i + 1]
							: NULL;
	default:
		return NULL;
	}
}

OCAPN_API const ocapn_value *
ocapn_record_label(const ocapn_value *v)
{
	return v->kind == OCAPN_RECORD && v->len ? &v->u.items[0] : NULL;
}

OCAPN_API const ocapn_value *
ocapn_dict_key(const ocapn_value *v, size_t i)
{
	return v->kind == OCAPN_DICT && i < v->len ? &v->u.items[2 * i] : NULL;
}

OCAPN_API const ocapn_value *
ocapn_dict_val(const ocapn_value *v, size_t i)
{
	return v->kind == OCAPN_DICT && i < v->len ? &v->u.items[2 * i + 1]
						   : NULL;
}

OCAPN_API const ocapn_value *
ocapn_dict_get(const ocapn_value *v, const ocapn_value *key)
{
	if (v->kind != OCAPN_DICT)
		return NULL;
	for (size_t i = 0; i < v->len; i++)
		if (ocapn_value_equal(&v->u.items[2 * i], key))
			return &v->u.items[2 * i + 1];
	return NULL;
}

static bool
data_is(const ocapn_value *v, ocapn_kind k, const char *name)
{
	if (v->kind != k)
		return false;
	size_t n = strlen(name);
	return v->len == n && memcmp(v->u.p, name, n) == 0;
}

OCAPN_API bool
ocapn_value_is_symbol(const ocapn_value *v, const char *name)
{
	return data_is(v, OCAPN_SYMBOL, name);
}

OCAPN_API bool
ocapn_value_is_string(const ocapn_value *v, const char *name)
{
	return data_is(v, OCAPN_STRING, name);
}

OCAPN_API bool
ocapn_value_is_record(const ocapn_value *v, const char *label,
    size_t nfields)
{
	if (v->kind != OCAPN_RECORD || v->len == 0)
		return false;
	if (nfields != SIZE_MAX && (size_t)v->len - 1 != nfields)
		return false;
	return data_is(&v->u.items[0], OCAPN_SYMBOL, label);
}

static uint64_t
f64_bits(double d)
{
	uint64_t b;
	if (isnan(d))
		return OCAPN__CANONICAL_NAN;
	memcpy(&b, &d, 8);
	return b;
}

static uint32_t
f32_bits(float f)
{
	uint32_t b;
	if (isnan(f))
		return OCAPN__CANONICAL_NAN32;
	memcpy(&b, &f, 4);
	return b;
}

static bool
equal_depth(const ocapn_value *a, const ocapn_value *b, int depth)
{
	if (depth > OCAPN__MAX_WALK_DEPTH)
		return false;
	if (a->kind != b->kind)
		return false;
	switch (a->kind) {
	case OCAPN_BOOL:
		return (a->u.b != 0) == (b->u.b != 0);
	case OCAPN_INT:
		if ((a->flags ^ b->flags) &
		    (OCAPN_VALUE_BIGINT | OCAPN_VALUE_NEGATIVE))
			return false;
		if (!(a->flags & OCAPN_VALUE_BIGINT))
			return a->u.i == b->u.i;
		return a->len == b->len &&
		    memcmp(a->u.p, b->u.p, a->len) == 0;
	case OCAPN_FLOAT64:
		return f64_bits(a->u.f64) == f64_bits(b->u.f64);
	case OCAPN_FLOAT32:
		return f32_bits(a->u.f32) == f32_bits(b->u.f32);
	case OCAPN_BYTES:
	case OCAPN_STRING:
	case OCAPN_SYMBOL:
		return a->len == b->len &&
		    (a->len == 0 || memcmp(a->u.p, b->u.p, a->len) == 0);
	case OCAPN_LIST:
	case OCAPN_RECORD:
		if (a->len != b->len)
			return false;
		for (uint32_t i = 0; i < a->len; i++)
			if (!equal_depth(&a->u.items[i], &b->u.items[i],
				depth + 1))
				return false;
		return true;
	case OCAPN_SET:
	case OCAPN_DICT: {
		/* Entries may sit in any order in memory; both sides hold
		 * distinct entries (the writer refuses duplicates), so a
		 * one-way inclusion with equal counts is equality.  Fast path
		 * for the common case of identical order. */
		if (a->len != b->len)
			return false;
		size_t stride = a->kind == OCAPN_DICT ? 2 : 1;
		for (uint32_t i = 0; i < a->len; i++) {
			const ocapn_value *ea = &a->u.items[i * stride];
			bool found = false;
			for (uint32_t k = 0; k < b->len && !found; k++) {
				uint32_t j = (i + k) % b->len;
				const ocapn_value *eb = &b->u.items[j * stride];
				if (equal_depth(ea, eb, depth + 1) &&
				    (stride == 1 ||
					equal_depth(ea + 1, eb + 1, depth + 1)))
					found = true;
			}
			if (!found)
				return false;
		}
		return true;
	}
	default:
		return false;
	}
}

OCAPN_API bool
ocapn_value_equal(const ocapn_value *a, const ocapn_value *b)
{
	return equal_depth(a, b, 0);
}
