/*
 * Resumable framing scanner: finds where each top-level Syrup value ends in
 * a byte stream that arrives in arbitrary pieces.  Every byte is looked at
 * once (payloads are skipped by count), so framing a stream costs time
 * linear in its length however it is split.  The full strict checks are
 * left to the decoder, which then decodes each framed value in one pass.
 */
#include "syrup_internal.h"

enum state {
	S_TOKEN,  /* between tokens */
	S_DIGITS, /* inside a digit run */
	S_SKIP,   /* skipping an atom payload */
};

struct ocapn_syrup_scanner {
	ocapn_allocator a;
	uint32_t max_depth;
	uint64_t max_atom, max_total;
	uint8_t *stack; /* expected closing byte per open container */
	uint32_t depth;
	enum state state;
	uint64_t num;
	uint64_t ndigits;
	bool overflow;
	uint64_t skip;
	uint64_t pos;        /* bytes of the current value so far */
	uint64_t stream_off; /* bytes of the stream consumed before it */
	int err_code; /* sticky: every feed after an error returns it */
	const char *err;
	uint64_t err_off;
};

OCAPN_API ocapn_syrup_scanner *
ocapn_syrup_scanner_new(const ocapn_syrup_decoder *limits_from,
    const ocapn_allocator *alloc)
{
	ocapn_allocator a;
	ocapn__alloc_init(&a, alloc);
	ocapn_syrup_scanner *s = ocapn__calloc(&a, sizeof(*s));
	if (!s)
		return NULL;
	s->a = a;
	if (limits_from) {
		s->max_depth = (uint32_t)ocapn_syrup_decoder_get_limit(
		    limits_from, OCAPN_SYRUP_MAX_DEPTH);
		s->max_atom = ocapn_syrup_decoder_get_limit(limits_from,
		    OCAPN_SYRUP_MAX_ATOM);
		s->max_total = ocapn_syrup_decoder_get_limit(limits_from,
		    OCAPN_SYRUP_MAX_TOTAL);
	} else {
		s->max_depth = 64;
		s->max_atom = 64u << 20;
		s->max_total = 128u << 20;
	}
	s->stack = ocapn__malloc(&a, s->max_depth);
	if (!s->stack) {
		ocapn__free(&a, s, sizeof(*s));
		return NULL;
	}
	s->err = "";
	return s;
}

OCAPN_API void
ocapn_syrup_scanner_free(ocapn_syrup_scanner *s)
{
	if (!s)
		return;
	ocapn_allocator a = s->a;
	ocapn__free(&a, s->stack, s->max_depth);
	ocapn__free(&a, s, sizeof(*s));
}

OCAPN_API void
ocapn_syrup_scanner_reset(ocapn_syrup_scanner *s)
{
	s->stream_off += s->pos;
	s->depth = 0;
	s->state = S_TOKEN;
	s->pos = 0;
	s->err_code = 0;
	s->err = "";
}

OCAPN_API size_t
ocapn_syrup_scanner_pending(const ocapn_syrup_scanner *s)
{
	return (size_t)s->pos;
}

OCAPN_API const char *
ocapn_syrup_scanner_error(const ocapn_syrup_scanner *s, size_t *off)
{
	if (off)
		*off = (size_t)s->err_off;
	return s->err;
}

static int
serr(ocapn_syrup_scanner *s, int code, uint64_t at, const char *why)
{
	s->err_code = code;
	s->err = why;
	s->err_off = s->stream_off + at;
	return code;
}

OCAPN_API int
ocapn_syrup_scanner_feed(ocapn_syrup_scanner *s, const uint8_t *chunk,
    size_t len, size_t *consumed)
{
	if (s->err_code)
		return s->err_code;
	size_t i = 0;
	while (i < len) {
		if (s->state == S_SKIP) {
			uint64_t take = len - i < s->skip ? len - i : s->skip;
			if (s->pos + take > s->max_total)
				return serr(s, OCAPN_E_LIMIT, s->max_total,
				    "value exceeds the total size limit");
			i += (size_t)take;
			s->pos += take;
			s->skip -= take;
			if (s->skip)
				break;
			s->state = S_TOKEN;
			goto value_done;
		}
		uint8_t c = chunk[i++];
		s->pos++;
		if (s->pos > s->max_total) {
			int rc = serr(s, OCAPN_E_LIMIT, s->pos - 1,
			    "value exceeds the total size limit");
			return rc;
		}
		if (s->state == S_DIGITS) {
			if (c >= '0' && c <= '9') {
				uint64_t dv = (uint64_t)(c - '0');
				if (s->num > (UINT64_MAX - dv) / 10)
					s->overflow = true;
				else
					s->num = s->num * 10 + dv;
				if (++s->ndigits > s->max_atom)
					return serr(s, OCAPN_E_LIMIT,
					    s->pos - s->ndigits,
					    "number has more digits than the "
					    "atom limit");
				continue;
			}
			s->state = S_TOKEN;
			if (c == '+' || c == '-')
				goto value_done;
			if (c == ':' || c == '"' || c == '\'') {
				/* Limit errors point at the length, as the
				 * decoder's do. */
				if (s->overflow || s->num > s->max_atom)
					return serr(s, OCAPN_E_LIMIT,
					    s->pos - 1 - s->ndigits,
					    "length exceeds the atom limit");
				if (s->pos + s->num > s->max_total)
					return serr(s, OCAPN_E_LIMIT,
					    s->pos - 1 - s->ndigits,
					    "value exceeds the total size "
					    "limit");
				if (s->num == 0)
					goto value_done;
				s->skip = s->num;
				s->state = S_SKIP;
				continue;
			}
			return serr(s, OCAPN_E_SYNTAX, s->pos - 1,
			    "expected + - : \" or ' after digits");
		}
		/* S_TOKEN */
		switch (c) {
		case ' ':
		case '\t':
		case '\r':
		case '\n':
			continue;
		case '0':
		case '1':
		case '2':
		case '3':
		case '4':
		case '5':
		case '6':
		case '7':
		case '8':
		case '9':
			s->state = S_DIGITS;
			s->num = (uint64_t)(c - '0');
			s->ndigits = 1;
			s->overflow = false;
			continue;
		case 't':
		case 'f':
			goto value_done;
		case 'D':
			s->skip = 8;
			s->state = S_SKIP;
			continue;
		case 'F':
			s->skip = 4;
			s->state = S_SKIP;
			continue;
		case '[':
		case '{':
		case '<':
		case '#':
			if (s->depth >= s->max_depth)
				return serr(s, OCAPN_E_LIMIT, s->pos - 1,
				    "nesting deeper than the depth limit");
			s->stack[s->depth++] = c == '[' ? ']'
			    : c == '{'                  ? '}'
			    : c == '<'                  ? '>'
							: '$';
			continue;
		case ']':
		case '}':
		case '>':
		case '$':
			if (s->depth == 0 || s->stack[s->depth - 1] != c)
				return serr(s, OCAPN_E_SYNTAX, s->pos - 1,
				    "closing byte does not match the open "
				    "container");
			s->depth--;
			goto value_done;
		default:
			return serr(s, OCAPN_E_SYNTAX, s->pos - 1,
			    "unknown type byte");
		}
	value_done:
		if (s->depth == 0) {
			*consumed = i;
			s->stream_off += s->pos;
			s->pos = 0;
			return OCAPN_OK;
		}
	}
	*consumed = len;
	return OCAPN_E_INCOMPLETE;
}
