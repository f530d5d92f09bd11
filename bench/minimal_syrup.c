/*
 * The benchmark's minimal Syrup codec (see minimal_syrup.h).
 */
#include <stdlib.h>
#include <string.h>

#include "minimal_syrup.h"

int
mini_init(mini_codec *m, size_t max_values, size_t max_depth,
    size_t bump_bytes)
{
	memset(m, 0, sizeof(*m));
	m->vals = malloc(max_values * sizeof(*m->vals));
	m->frames = malloc(max_depth * sizeof(*m->frames));
	m->bump = malloc(bump_bytes);
	if (!m->vals || !m->frames || !m->bump) {
		mini_free(m);
		return -1;
	}
	m->vcap = max_values;
	m->fcap = max_depth;
	m->bcap = bump_bytes;
	return 0;
}

void
mini_free(mini_codec *m)
{
	free(m->vals);
	free(m->frames);
	free(m->bump);
}

long
mini_decode(mini_codec *m, const uint8_t *buf, size_t len, ocapn_value **out)
{
	const uint8_t *p = buf, *end = buf + len;
	size_t nv = 0, nf = 0;
	m->bused = 0;
	for (;;) {
		if (p >= end)
			return -1;
		uint8_t c = *p;
		ocapn_value v;
		v.flags = 0;
		v.reserved_ = 0;
		v.len = 0;
		if (c >= '0' && c <= '9') {
			uint64_t n = 0;
			while (p < end && *p >= '0' && *p <= '9')
				n = n * 10 + (uint64_t)(*p++ - '0');
			if (p >= end)
				return -1;
			uint8_t t = *p++;
			if (t == '+' || t == '-') {
				v.kind = OCAPN_INT;
				v.u.i = t == '+' ? (int64_t)n : -(int64_t)n;
			} else {
				if ((uint64_t)(end - p) < n)
					return -1;
				v.kind = t == ':' ? OCAPN_BYTES
				    : t == '"'    ? OCAPN_STRING
						  : OCAPN_SYMBOL;
				v.len = (uint32_t)n;
				v.u.p = p;
				p += n;
			}
		} else {
			switch (c) {
			case 't':
			case 'f':
				v.kind = OCAPN_BOOL;
				v.u.i = 0;
				v.u.b = c == 't';
				p++;
				break;
			case 'D': {
				if (end - p < 9)
					return -1;
				uint64_t b = 0;
				for (int i = 1; i <= 8; i++)
					b = b << 8 | p[i];
				v.kind = OCAPN_FLOAT64;
				memcpy(&v.u.f64, &b, 8);
				p += 9;
				break;
			}
			case 'F': {
				if (end - p < 5)
					return -1;
				uint32_t b = (uint32_t)p[1] << 24 |
				    (uint32_t)p[2] << 16 | (uint32_t)p[3] << 8 |
				    p[4];
				v.kind = OCAPN_FLOAT32;
				v.u.i = 0;
				memcpy(&v.u.f32, &b, 4);
				p += 5;
				break;
			}
			case '[':
			case '{':
			case '<':
			case '#':
				if (nf == m->fcap)
					return -1;
				m->frames[nf].kind = c == '[' ? OCAPN_LIST
				    : c == '{'             ? OCAPN_DICT
				    : c == '<'             ? OCAPN_RECORD
							   : OCAPN_SET;
				m->frames[nf].first = (uint32_t)nv;
				nf++;
				p++;
				continue;
			case ']':
			case '}':
			case '>':
			case '$': {
				if (nf == 0)
					return -1;
				struct mini_frame *f = &m->frames[--nf];
				size_t count = nv - f->first;
				size_t bytes = count * sizeof(ocapn_value);
				if (m->bcap - m->bused < bytes)
					return -1;
				ocapn_value *arr =
				    (ocapn_value *)(m->bump + m->bused);
				m->bused += bytes;
				if (count)
					memcpy(arr, m->vals + f->first, bytes);
				v.kind = f->kind;
				v.len = (uint32_t)(f->kind == OCAPN_DICT
					? count / 2
					: count);
				v.u.items = arr;
				nv = f->first;
				p++;
				break;
			}
			default:
				return -1;
			}
		}
		if (nf == 0) {
			if (m->bcap - m->bused < sizeof(v))
				return -1;
			ocapn_value *res = (ocapn_value *)(m->bump + m->bused);
			m->bused += sizeof(v);
			*res = v;
			*out = res;
			return (long)(p - buf);
		}
		if (nv == m->vcap)
			return -1;
		m->vals[nv++] = v;
	}
}

static uint8_t *
put_dec(uint8_t *o, uint64_t u)
{
	char tmp[24];
	char *s = tmp + sizeof(tmp);
	do {
		*--s = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	size_t n = (size_t)(tmp + sizeof(tmp) - s);
	memcpy(o, s, n);
	return o + n;
}

static uint8_t *
enc(const ocapn_value *v, uint8_t *o, const uint8_t *end)
{
	if (!o || end - o < 32)
		return NULL;
	switch (v->kind) {
	case OCAPN_BOOL:
		*o++ = v->u.b ? 't' : 'f';
		return o;
	case OCAPN_INT:
		if (v->u.i < 0) {
			o = put_dec(o, 0 - (uint64_t)v->u.i);
			*o++ = '-';
		} else {
			o = put_dec(o, (uint64_t)v->u.i);
			*o++ = '+';
		}
		return o;
	case OCAPN_FLOAT64: {
		uint64_t b;
		memcpy(&b, &v->u.f64, 8);
		*o++ = 'D';
		for (int i = 0; i < 8; i++)
			*o++ = (uint8_t)(b >> (56 - 8 * i));
		return o;
	}
	case OCAPN_FLOAT32: {
		uint32_t b;
		memcpy(&b, &v->u.f32, 4);
		*o++ = 'F';
		for (int i = 0; i < 4; i++)
			*o++ = (uint8_t)(b >> (24 - 8 * i));
		return o;
	}
	case OCAPN_BYTES:
	case OCAPN_STRING:
	case OCAPN_SYMBOL:
		o = put_dec(o, v->len);
		*o++ = v->kind == OCAPN_BYTES ? ':'
		    : v->kind == OCAPN_STRING  ? '"'
					       : '\'';
		if ((size_t)(end - o) < v->len)
			return NULL;
		memcpy(o, v->u.p, v->len);
		return o + v->len;
	default: {
		static const char open[] = {[OCAPN_LIST] = '[',
		    [OCAPN_SET] = '#', [OCAPN_RECORD] = '<',
		    [OCAPN_DICT] = '{'};
		static const char close[] = {[OCAPN_LIST] = ']',
		    [OCAPN_SET] = '$', [OCAPN_RECORD] = '>',
		    [OCAPN_DICT] = '}'};
		size_t n = v->kind == OCAPN_DICT ? 2 * (size_t)v->len : v->len;
		*o++ = (uint8_t)open[v->kind];
		for (size_t i = 0; i < n && o; i++)
			o = enc(&v->u.items[i], o, end);
		if (!o || o == end)
			return NULL;
		*o++ = (uint8_t)close[v->kind];
		return o;
	}
	}
}

long
mini_encode(const ocapn_value *v, uint8_t *out, size_t cap)
{
	uint8_t *o = enc(v, out, out + cap);
	return o ? (long)(o - out) : -1;
}
