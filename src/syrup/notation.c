/*
 * Abstract notation (spec draft-specifications/Notation.md), printer and
 * parser, with the extensions documented in docs/syrup.md:
 *
 *   t f                         booleans
 *   42 -7 +3                    integers (any size)
 *   1.5 -0.0 1.0e300 inf -inf nan      float64
 *   1.5f inff -inff nanf        float32
 *   "text \" \\ \n \r \t \u{1F600}"   strings (raw UTF-8 allowed too)
 *   'name  '|any text|          symbols
 *   :cafe  :                    byte strings (hex)
 *   [a b c]                     lists
 *   {key: value, "k": v}        dicts (bare name key = string)
 *   #{a b c}                    sets
 *   <label field ...>           records (bare name label = symbol)
 *
 * Names: a letter, then letters, digits and - _ : ? ! * + / . =, never
 * ending in ':'.  In dict-key position a bare name stops at ':'.
 */
#include <errno.h>
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "syrup_internal.h"

/* ------------------------------------------------------------------ */
/* Printer                                                              */
/* ------------------------------------------------------------------ */

struct pr {
	ocapn_buffer *out;
	const ocapn_allocator *a;
	unsigned flags;
	int err;
};

static void
put(struct pr *pr, const void *p, size_t n)
{
	if (!pr->err && ocapn_buffer_append(pr->out, pr->a, p, n))
		pr->err = OCAPN_E_NOMEM;
}

static void
puts_(struct pr *pr, const char *s)
{
	put(pr, s, strlen(s));
}

static bool
is_alpha(uint8_t c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool
is_digit(uint8_t c)
{
	return c >= '0' && c <= '9';
}

static bool
is_name_char(uint8_t c)
{
	return is_alpha(c) || is_digit(c) || c == '-' || c == '_' ||
	    c == ':' || c == '?' || c == '!' || c == '*' || c == '+' ||
	    c == '/' || c == '.' || c == '=';
}

static bool
is_keyword(const uint8_t *s, size_t n)
{
	static const char *const kw[] = {"t", "f", "inf", "nan", "inff",
	    "nanf"};
	for (size_t i = 0; i < OCAPN_ARRAY_LEN(kw); i++)
		if (strlen(kw[i]) == n && memcmp(kw[i], s, n) == 0)
			return true;
	return false;
}

/* Can this symbol text be written as a bare name? */
static bool
bare_ok(const uint8_t *s, size_t n)
{
	if (n == 0 || !is_alpha(s[0]) || s[n - 1] == ':')
		return false;
	for (size_t i = 1; i < n; i++)
		if (!is_name_char(s[i]))
			return false;
	return true;
}

static void
put_escaped(struct pr *pr, const uint8_t *s, size_t n, char quote)
{
	size_t i = 0;
	while (i < n) {
		size_t j = i;
		while (j < n && s[j] >= 0x20 && s[j] < 0x7f && s[j] != '\\' &&
		    s[j] != (uint8_t)quote)
			j++;
		put(pr, s + i, j - i);
		i = j;
		if (i >= n)
			break;
		uint8_t c = s[i];
		char esc[16];
		if (c == '\\' || c == (uint8_t)quote) {
			esc[0] = '\\';
			esc[1] = (char)c;
			put(pr, esc, 2);
			i++;
		} else if (c == '\n') {
			puts_(pr, "\\n");
			i++;
		} else if (c == '\r') {
			puts_(pr, "\\r");
			i++;
		} else if (c == '\t') {
			puts_(pr, "\\t");
			i++;
		} else if (c < 0x80) {
			snprintf(esc, sizeof(esc), "\\u{%x}", c);
			puts_(pr, esc);
			i++;
		} else {
			uint32_t cp;
			size_t l = ocapn__utf8_decode(s + i, n - i, &cp);
			if (l == 0) {
				/* Not valid UTF-8: the value is malformed. */
				pr->err = OCAPN_E_UTF8;
				return;
			}
			if (pr->flags & OCAPN_NOTATION_ASCII) {
				snprintf(esc, sizeof(esc), "\\u{%x}",
				    (unsigned)cp);
				puts_(pr, esc);
			} else {
				put(pr, s + i, l);
			}
			i += l;
		}
	}
}

/*
 * The C library formats and reads numbers with the current locale's
 * decimal point, which a host program may have set (setlocale): "," in
 * most of Europe, the two-byte U+066B in some locales.  The notation
 * always uses '.', so numbers are converted in both directions here.
 */
static const char *
locale_point(void)
{
	const char *dp = localeconv()->decimal_point;
	return dp && dp[0] && strcmp(dp, ".") ? dp : NULL;
}

/* printf `d` as %.*e with a '.' whatever the locale. */
static void
fmt_num(char *buf, size_t cap, int prec, double d)
{
	snprintf(buf, cap, "%.*e", prec, d);
	const char *dp = locale_point();
	char *at = dp ? strstr(buf, dp) : NULL;
	if (at) {
		size_t dl = strlen(dp);
		*at = '.';
		memmove(at + 1, at + dl, strlen(at + dl) + 1);
	}
}

/* strtod (or strtof) of the '.'-text `s`, whatever the locale: a number
 * of the grammar, so at most one '.' and shorter than 512 bytes. */
static double
read_num(const char *s, bool single)
{
	char tmp[600];
	const char *dp = locale_point();
	if (dp) {
		size_t dl = strlen(dp), o = 0;
		for (; *s && o + dl + 1 < sizeof(tmp); s++) {
			if (*s == '.') {
				memcpy(tmp + o, dp, dl);
				o += dl;
			} else {
				tmp[o++] = *s;
			}
		}
		tmp[o] = '\0';
		s = tmp;
	}
	return single ? strtof(s, NULL) : strtod(s, NULL);
}

/* Does the '.'-text `s` read back as exactly `d`? */
static bool
reads_back(const char *s, double d, bool single)
{
	return single ? (float)read_num(s, true) == (float)d :
	    read_num(s, false) == d;
}

/*
 * The shortest decimal text that reads back to the same double (or float
 * with the 'f' suffix).  Positional, as in the spec's grammar, when the
 * decimal exponent is in -4..15 (the shortest digits, padded with zeros:
 * 100.0, 0.0001); otherwise d.ddde+XX.  Always with a '.' so that it
 * reads as a float.
 */
static void
put_float(struct pr *pr, double d, bool single)
{
	const char *sfx = single ? "f" : "";
	char buf[64];
	if (isnan(d)) {
		snprintf(buf, sizeof(buf), "nan%s", sfx);
		puts_(pr, buf);
		return;
	}
	if (isinf(d)) {
		snprintf(buf, sizeof(buf), "%sinf%s", d < 0 ? "-" : "", sfx);
		puts_(pr, buf);
		return;
	}
	int maxp = single ? 9 : 17, prec;
	for (prec = 1; prec < maxp; prec++) {
		fmt_num(buf, sizeof(buf), prec - 1, d);
		if (reads_back(buf, d, single))
			break;
	}
	fmt_num(buf, sizeof(buf), prec - 1, d);
	/* buf is [-]d[.ddd]e(+|-)XX: take its digits and exponent. */
	char *e = strchr(buf, 'e');
	int x = atoi(e + 1);
	if (x >= -4 && x < 16) {
		char dg[24];
		int n = 0;
		for (const char *q = buf; q < e; q++)
			if (*q >= '0' && *q <= '9')
				dg[n++] = *q;
		if (buf[0] == '-')
			put(pr, "-", 1);
		if (x < 0) {
			put(pr, "0.", 2);
			for (int k = 0; k < -x - 1; k++)
				put(pr, "0", 1);
			put(pr, dg, (size_t)n);
		} else if (x >= n - 1) {
			put(pr, dg, (size_t)n);
			for (int k = 0; k < x - (n - 1); k++)
				put(pr, "0", 1);
			put(pr, ".0", 2);
		} else {
			put(pr, dg, (size_t)x + 1);
			put(pr, ".", 1);
			put(pr, dg + x + 1, (size_t)(n - x - 1));
		}
	} else {
		put(pr, buf, (size_t)(e - buf));
		if (!memchr(buf, '.', (size_t)(e - buf)))
			puts_(pr, ".0");
		puts_(pr, e);
	}
	puts_(pr, sfx);
}

static void print_value(struct pr *pr, const ocapn_value *v, int depth);

static void
print_symbol(struct pr *pr, const ocapn_value *v, bool bare)
{
	if (bare_ok(v->u.p, v->len)) {
		if (!bare || is_keyword(v->u.p, v->len))
			put(pr, "'", 1);
		put(pr, v->u.p, v->len);
	} else {
		put(pr, "'|", 2);
		put_escaped(pr, v->u.p, v->len, '|');
		put(pr, "|", 1);
	}
}

static void
print_value(struct pr *pr, const ocapn_value *v, int depth)
{
	if (pr->err)
		return;
	if (depth > OCAPN__MAX_WALK_DEPTH) {
		pr->err = OCAPN_E_LIMIT;
		return;
	}
	char buf[32];
	switch (v->kind) {
	case OCAPN_BOOL:
		put(pr, v->u.b ? "t" : "f", 1);
		break;
	case OCAPN_INT:
		if (v->flags & OCAPN_VALUE_BIGINT) {
			if (v->flags & OCAPN_VALUE_NEGATIVE)
				put(pr, "-", 1);
			put(pr, v->u.p, v->len);
		} else {
			snprintf(buf, sizeof(buf), "%lld", (long long)v->u.i);
			puts_(pr, buf);
		}
		break;
	case OCAPN_FLOAT64:
		put_float(pr, v->u.f64, false);
		break;
	case OCAPN_FLOAT32:
		put_float(pr, (double)v->u.f32, true);
		break;
	case OCAPN_STRING:
		put(pr, "\"", 1);
		put_escaped(pr, v->u.p, v->len, '"');
		put(pr, "\"", 1);
		break;
	case OCAPN_SYMBOL:
		print_symbol(pr, v, false);
		break;
	case OCAPN_BYTES: {
		static const char hex[] = "0123456789abcdef";
		put(pr, ":", 1);
		for (uint32_t i = 0; i < v->len;) {
			char chunk[128];
			size_t k = 0;
			while (i < v->len && k + 2 <= sizeof(chunk)) {
				chunk[k++] = hex[v->u.p[i] >> 4];
				chunk[k++] = hex[v->u.p[i] & 15];
				i++;
			}
			put(pr, chunk, k);
		}
		break;
	}
	case OCAPN_LIST:
	case OCAPN_SET:
		put(pr, v->kind == OCAPN_LIST ? "[" : "#{",
		    v->kind == OCAPN_LIST ? 1 : 2);
		for (uint32_t i = 0; i < v->len; i++) {
			if (i)
				put(pr, " ", 1);
			print_value(pr, &v->u.items[i], depth + 1);
		}
		put(pr, v->kind == OCAPN_LIST ? "]" : "}", 1);
		break;
	case OCAPN_DICT:
		put(pr, "{", 1);
		for (uint32_t i = 0; i < v->len; i++) {
			if (i)
				put(pr, ", ", 2);
			print_value(pr, &v->u.items[2 * i], depth + 1);
			put(pr, ": ", 2);
			print_value(pr, &v->u.items[2 * i + 1], depth + 1);
		}
		put(pr, "}", 1);
		break;
	case OCAPN_RECORD:
		if (v->len == 0) {
			pr->err = OCAPN_E_INVAL;
			return;
		}
		put(pr, "<", 1);
		if (v->u.items[0].kind == OCAPN_SYMBOL)
			print_symbol(pr, &v->u.items[0], true);
		else
			print_value(pr, &v->u.items[0], depth + 1);
		for (uint32_t i = 1; i < v->len; i++) {
			put(pr, " ", 1);
			print_value(pr, &v->u.items[i], depth + 1);
		}
		put(pr, ">", 1);
		break;
	default:
		pr->err = OCAPN_E_INVAL;
	}
}

OCAPN_API int
ocapn_notation_print(const ocapn_value *v, unsigned flags, ocapn_buffer *out,
    const ocapn_allocator *alloc)
{
	ocapn_allocator a;
	ocapn__alloc_init(&a, alloc);
	struct pr pr = {out, &a, flags, 0};
	size_t mark = out->len;
	print_value(&pr, v, 0);
	if (pr.err)
		out->len = mark;
	return pr.err;
}

/* ------------------------------------------------------------------ */
/* Parser                                                               */
/* ------------------------------------------------------------------ */

#define PARSE_MAX_DEPTH 1000 /* nested containers */

struct ps {
	const uint8_t *s;
	size_t n, i;
	ocapn_arena *arena;
	int err;
	size_t err_off;
	const char *reason;
	/* growable temporary stack for container items */
	ocapn_value *stk;
	size_t nstk, capstk;
	ocapn_allocator a;
	ocapn_syrup_writer *w1, *w2;
};

static int
perr(struct ps *ps, int code, size_t off, const char *why)
{
	if (!ps->err) {
		ps->err = code;
		ps->err_off = off;
		ps->reason = why;
	}
	return ps->err;
}

static void
skip_ws(struct ps *ps)
{
	while (ps->i < ps->n && ocapn__is_ws(ps->s[ps->i]))
		ps->i++;
}

static int parse_value(struct ps *ps, ocapn_value *v, int depth);

static int
push(struct ps *ps, const ocapn_value *v)
{
	if (ps->nstk == ps->capstk &&
	    ocapn__grow(&ps->a, (void **)&ps->stk, &ps->capstk, ps->nstk + 1,
		sizeof(ocapn_value)))
		return perr(ps, OCAPN_E_NOMEM, ps->i, "out of memory");
	ps->stk[ps->nstk++] = *v;
	return OCAPN_OK;
}

/* Move stack items [base, nstk) into the arena. */
static ocapn_value *
pop_items(struct ps *ps, size_t base)
{
	size_t n = ps->nstk - base;
	ocapn_value *arr = ocapn_arena_alloc(ps->arena,
	    (n ? n : 1) * sizeof(ocapn_value));
	if (!arr) {
		perr(ps, OCAPN_E_NOMEM, ps->i, "out of memory");
		return NULL;
	}
	if (n)
		memcpy(arr, ps->stk + base, n * sizeof(ocapn_value));
	ps->nstk = base;
	return arr;
}

/* Name token at ps->i (no prefix).  `stop_colon`: in dict-key position. */
static size_t
scan_name(struct ps *ps, bool stop_colon)
{
	size_t j = ps->i;
	if (j >= ps->n || !is_alpha(ps->s[j]))
		return 0;
	j++;
	while (j < ps->n && is_name_char(ps->s[j]) &&
	    !(stop_colon && ps->s[j] == ':'))
		j++;
	while (j > ps->i + 1 && ps->s[j - 1] == ':')
		j--; /* a name never ends with ':' */
	return j - ps->i;
}

static int
hexval(uint8_t c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Quoted text up to `quote`, with escapes; result copied into the arena. */
static int
parse_quoted(struct ps *ps, uint8_t quote, const uint8_t **out, size_t *len)
{
	size_t start = ps->i; /* after the opening quote */
	/* First pass: find the end and the decoded length. */
	size_t j = start;
	bool esc = false;
	while (j < ps->n && ps->s[j] != quote) {
		if (ps->s[j] == '\\') {
			esc = true;
			j += 2;
		} else {
			j++;
		}
	}
	if (j >= ps->n)
		return perr(ps, OCAPN_E_SYNTAX, start - 1,
		    "unterminated quoted text");
	if (!esc) {
		size_t ok = ocapn__utf8_valid_prefix(ps->s + start, j - start);
		if (ok != j - start)
			return perr(ps, OCAPN_E_UTF8, start + ok,
			    "invalid UTF-8 in quoted text");
		uint8_t *cp = ocapn_arena_memdup(ps->arena, ps->s + start,
		    j - start);
		if (!cp)
			return perr(ps, OCAPN_E_NOMEM, start, "out of memory");
		*out = cp;
		*len = j - start;
		ps->i = j + 1;
		return OCAPN_OK;
	}
	/* No escape expands: the output is never longer than the source. */
	uint8_t *buf = ocapn_arena_alloc(ps->arena, (j - start) + 1);
	if (!buf)
		return perr(ps, OCAPN_E_NOMEM, start, "out of memory");
	size_t o = 0, k = start;
	while (k < j) {
		uint8_t c = ps->s[k];
		if (c != '\\') {
			uint32_t cp;
			size_t l = ocapn__utf8_decode(ps->s + k, j - k, &cp);
			if (l == 0)
				return perr(ps, OCAPN_E_UTF8, k,
				    "invalid UTF-8 in quoted text");
			memcpy(buf + o, ps->s + k, l);
			o += l;
			k += l;
			continue;
		}
		if (k + 1 >= ps->n)
			return perr(ps, OCAPN_E_SYNTAX, k, "dangling escape");
		uint8_t e = ps->s[k + 1];
		switch (e) {
		case 'n':
			buf[o++] = '\n';
			k += 2;
			break;
		case 'r':
			buf[o++] = '\r';
			k += 2;
			break;
		case 't':
			buf[o++] = '\t';
			k += 2;
			break;
		case '\\':
		case '"':
		case '|':
		case '\'':
			buf[o++] = e;
			k += 2;
			break;
		case 'u': {
			size_t q = k + 2;
			if (q >= j || ps->s[q] != '{')
				return perr(ps, OCAPN_E_SYNTAX, k,
				    "expected \\u{HEX}");
			q++;
			uint32_t cp = 0;
			size_t nd = 0;
			while (q < j && hexval(ps->s[q]) >= 0 && nd < 7) {
				cp = cp * 16 + (uint32_t)hexval(ps->s[q]);
				q++;
				nd++;
			}
			if (nd == 0 || q >= j || ps->s[q] != '}')
				return perr(ps, OCAPN_E_SYNTAX, k,
				    "expected \\u{HEX}");
			size_t l = ocapn__utf8_encode(cp, buf + o);
			if (l == 0)
				return perr(ps, OCAPN_E_UTF8, k,
				    "escape is not a Unicode scalar value");
			o += l;
			k = q + 1;
			break;
		}
		default:
			return perr(ps, OCAPN_E_SYNTAX, k, "unknown escape");
		}
	}
	*out = buf;
	*len = o;
	ps->i = j + 1;
	return OCAPN_OK;
}

static int
parse_number(struct ps *ps, ocapn_value *v)
{
	size_t st = ps->i, j = ps->i;
	bool neg = false;
	if (j < ps->n && (ps->s[j] == '+' || ps->s[j] == '-')) {
		neg = ps->s[j] == '-';
		j++;
	}
	/* inf / nan after a sign */
	if (j + 3 <= ps->n && memcmp(ps->s + j, "inf", 3) == 0) {
		j += 3;
		bool single = j < ps->n && ps->s[j] == 'f';
		if (single)
			j++;
		/* ':' may follow, as after any number: "{inf: 1}" */
		if (j < ps->n && is_name_char(ps->s[j]) && ps->s[j] != ':')
			return perr(ps, OCAPN_E_SYNTAX, st, "bad number");
		ps->i = j;
		if (single)
			ocapn_value_set_float32(v, neg ? -INFINITY : INFINITY);
		else
			ocapn_value_set_float64(v,
			    neg ? -(double)INFINITY : (double)INFINITY);
		return OCAPN_OK;
	}
	size_t ds = j;
	while (j < ps->n && is_digit(ps->s[j]))
		j++;
	size_t int_digits = j - ds;
	bool is_float = false;
	if (j < ps->n && ps->s[j] == '.') {
		is_float = true;
		j++;
		size_t fs = j;
		while (j < ps->n && is_digit(ps->s[j]))
			j++;
		if (int_digits == 0 && j == fs)
			return perr(ps, OCAPN_E_SYNTAX, st, "bad number");
	} else if (int_digits == 0) {
		return perr(ps, OCAPN_E_SYNTAX, st, "bad number");
	}
	if (int_digits > 1 && ps->s[ds] == '0')
		return perr(ps, OCAPN_E_SYNTAX, st,
		    "number with a leading zero");
	if (j < ps->n && (ps->s[j] == 'e' || ps->s[j] == 'E')) {
		size_t q = j + 1;
		if (q < ps->n && (ps->s[q] == '+' || ps->s[q] == '-'))
			q++;
		size_t es = q;
		while (q < ps->n && is_digit(ps->s[q]))
			q++;
		if (q == es)
			return perr(ps, OCAPN_E_SYNTAX, st, "bad exponent");
		is_float = true;
		j = q;
	}
	bool single = false;
	if (is_float && j < ps->n && ps->s[j] == 'f') {
		single = true;
		j++;
	}
	if (j < ps->n && (is_name_char(ps->s[j]) && ps->s[j] != ':'))
		return perr(ps, OCAPN_E_SYNTAX, j, "unexpected character in "
						   "number");
	ps->i = j;
	if (!is_float) {
		int rc = ocapn_value_set_int_text(v, ps->arena,
		    (const char *)ps->s + st, j - st);
		if (rc == OCAPN_E_SYNTAX)
			return perr(ps, rc, st, "bad integer");
		if (rc)
			return perr(ps, rc, st, "out of memory");
		return OCAPN_OK;
	}
	size_t tl = j - st - (single ? 1 : 0);
	char tmp[512];
	if (tl >= sizeof(tmp))
		return perr(ps, OCAPN_E_LIMIT, st, "number text too long");
	memcpy(tmp, ps->s + st, tl);
	tmp[tl] = '\0';
	if (single)
		ocapn_value_set_float32(v, (float)read_num(tmp, true));
	else
		ocapn_value_set_float64(v, read_num(tmp, false));
	return OCAPN_OK;
}

/* The keyword (t f inf nan inff nanf) of `nl` bytes at ps->i. */
static void
keyword_value(struct ps *ps, size_t nl, ocapn_value *v)
{
	const uint8_t *s = ps->s + ps->i;
	ps->i += nl;
	if (nl == 1)
		ocapn_value_set_bool(v, s[0] == 't');
	else if (nl == 3)
		ocapn_value_set_float64(v,
		    s[0] == 'n' ? (double)NAN : (double)INFINITY);
	else
		ocapn_value_set_float32(v, s[0] == 'n' ? NAN : INFINITY);
}

/* Sort-free duplicate check of dict keys / set items via encodings. */
static int
check_unique(struct ps *ps, const ocapn_value *items, size_t n,
    size_t stride, size_t off)
{
	if (n < 2)
		return OCAPN_OK;
	if (!ps->w1 &&
	    !(ps->w1 = ocapn_syrup_writer_new(OCAPN_SYRUP_WRITE_FLOAT32,
		  &ps->a)))
		return perr(ps, OCAPN_E_NOMEM, off, "out of memory");
	/* Encode the container: the writer sorts and reports duplicates. */
	ocapn_syrup_writer_reset(ps->w1);
	if (stride == 2)
		ocapn_syrup_write_dict_begin(ps->w1);
	else
		ocapn_syrup_write_set_begin(ps->w1);
	for (size_t i = 0; i < n * stride; i++)
		ocapn_syrup_write_value(ps->w1, &items[i]);
	if (stride == 2)
		ocapn_syrup_write_dict_end(ps->w1);
	else
		ocapn_syrup_write_set_end(ps->w1);
	const char *why;
	int rc = ocapn_syrup_writer_error(ps->w1, &why);
	if (rc == OCAPN_E_DUPLICATE)
		return perr(ps, rc, off,
		    stride == 2 ? "duplicate dict key" : "duplicate set item");
	if (rc)
		return perr(ps, rc, off, why);
	return OCAPN_OK;
}

static int
parse_container(struct ps *ps, ocapn_value *v, int depth, uint8_t kind)
{
	size_t open_off = ps->i;
	ps->i += kind == OCAPN_SET ? 2 : 1;
	size_t base = ps->nstk;
	uint8_t close = kind == OCAPN_LIST ? ']'
	    : kind == OCAPN_RECORD         ? '>'
					   : '}';
	bool first = true;
	for (;;) {
		skip_ws(ps);
		if (ps->i >= ps->n)
			return perr(ps, OCAPN_E_INCOMPLETE, open_off,
			    "unterminated container");
		if (kind == OCAPN_DICT && !first && ps->s[ps->i] == ',') {
			ps->i++;
			skip_ws(ps);
			if (ps->i >= ps->n)
				return perr(ps, OCAPN_E_INCOMPLETE, open_off,
				    "unterminated container");
		}
		if (ps->s[ps->i] == close) {
			ps->i++;
			break;
		}
		ocapn_value item;
		if (kind == OCAPN_DICT) {
			/* key: a bare name is a string */
			size_t nl = scan_name(ps, true);
			if (nl && !is_keyword(ps->s + ps->i, nl)) {
				uint8_t *cp = ocapn_arena_memdup(ps->arena,
				    ps->s + ps->i, nl);
				if (!cp)
					return perr(ps, OCAPN_E_NOMEM, ps->i,
					    "out of memory");
				ocapn_value_set_string(&item, (char *)cp, nl);
				ps->i += nl;
			} else if (nl) {
				/* a keyword, which like a name stops at ':' */
				keyword_value(ps, nl, &item);
			} else if (parse_value(ps, &item, depth + 1)) {
				return ps->err;
			}
			if (push(ps, &item))
				return ps->err;
			skip_ws(ps);
			if (ps->i >= ps->n || ps->s[ps->i] != ':')
				return perr(ps, OCAPN_E_SYNTAX, ps->i,
				    "expected ':' after dict key");
			ps->i++;
			if (parse_value(ps, &item, depth + 1))
				return ps->err;
		} else if (kind == OCAPN_RECORD && first) {
			size_t nl = scan_name(ps, false);
			if (nl && !is_keyword(ps->s + ps->i, nl)) {
				uint8_t *cp = ocapn_arena_memdup(ps->arena,
				    ps->s + ps->i, nl);
				if (!cp)
					return perr(ps, OCAPN_E_NOMEM, ps->i,
					    "out of memory");
				ocapn_value_set_symbol(&item, (char *)cp, nl);
				ps->i += nl;
			} else if (parse_value(ps, &item, depth + 1)) {
				return ps->err;
			}
		} else if (parse_value(ps, &item, depth + 1)) {
			return ps->err;
		}
		if (push(ps, &item))
			return ps->err;
		first = false;
	}
	size_t n = ps->nstk - base;
	if (kind == OCAPN_RECORD && n == 0)
		return perr(ps, OCAPN_E_SYNTAX, open_off,
		    "record without a label");
	if (n > OCAPN_VALUE_MAX_LEN)
		return perr(ps, OCAPN_E_LIMIT, open_off, "too many items");
	if ((kind == OCAPN_DICT || kind == OCAPN_SET) && n > 0 &&
	    check_unique(ps, ps->stk + base,
		kind == OCAPN_DICT ? n / 2 : n, kind == OCAPN_DICT ? 2 : 1,
		open_off))
		return ps->err;
	ocapn_value *arr = pop_items(ps, base);
	if (!arr)
		return ps->err;
	switch (kind) {
	case OCAPN_LIST:
		ocapn_value_set_list(v, arr, n);
		break;
	case OCAPN_SET:
		ocapn_value_set_set(v, arr, n);
		break;
	case OCAPN_DICT:
		ocapn_value_set_dict(v, arr, n / 2);
		break;
	default:
		ocapn_value_set_record(v, arr, n);
	}
	return OCAPN_OK;
}

static int
parse_value(struct ps *ps, ocapn_value *v, int depth)
{
	if (depth >= PARSE_MAX_DEPTH)
		return perr(ps, OCAPN_E_LIMIT, ps->i, "nesting too deep");
	skip_ws(ps);
	if (ps->i >= ps->n)
		return perr(ps, OCAPN_E_INCOMPLETE, ps->i, "expected a value");
	uint8_t c = ps->s[ps->i];
	switch (c) {
	case '[':
		return parse_container(ps, v, depth, OCAPN_LIST);
	case '{':
		return parse_container(ps, v, depth, OCAPN_DICT);
	case '<':
		return parse_container(ps, v, depth, OCAPN_RECORD);
	case '#':
		if (ps->i + 1 < ps->n && ps->s[ps->i + 1] == '{')
			return parse_container(ps, v, depth, OCAPN_SET);
		return perr(ps, OCAPN_E_SYNTAX, ps->i, "expected '#{'");
	case '"': {
		const uint8_t *p;
		size_t l;
		ps->i++;
		if (parse_quoted(ps, '"', &p, &l))
			return ps->err;
		ocapn_value_set_string(v, (const char *)p, l);
		return OCAPN_OK;
	}
	case '\'': {
		ps->i++;
		if (ps->i < ps->n && ps->s[ps->i] == '|') {
			const uint8_t *p;
			size_t l;
			ps->i++;
			if (parse_quoted(ps, '|', &p, &l))
				return ps->err;
			ocapn_value_set_symbol(v, (const char *)p, l);
			return OCAPN_OK;
		}
		size_t nl = scan_name(ps, false);
		if (nl == 0)
			return perr(ps, OCAPN_E_SYNTAX, ps->i - 1,
			    "expected a name after '");
		uint8_t *cp = ocapn_arena_memdup(ps->arena, ps->s + ps->i, nl);
		if (!cp)
			return perr(ps, OCAPN_E_NOMEM, ps->i, "out of memory");
		ocapn_value_set_symbol(v, (const char *)cp, nl);
		ps->i += nl;
		return OCAPN_OK;
	}
	case ':': {
		size_t st = ps->i++;
		size_t j = ps->i;
		while (j < ps->n && hexval(ps->s[j]) >= 0)
			j++;
		size_t nh = j - ps->i;
		if (nh % 2)
			return perr(ps, OCAPN_E_SYNTAX, st,
			    "odd number of hex digits");
		uint8_t *b = ocapn_arena_alloc(ps->arena, nh / 2);
		if (!b)
			return perr(ps, OCAPN_E_NOMEM, st, "out of memory");
		for (size_t k = 0; k < nh / 2; k++)
			b[k] = (uint8_t)(hexval(ps->s[ps->i + 2 * k]) << 4 |
			    hexval(ps->s[ps->i + 2 * k + 1]));
		ocapn_value_set_bytes(v, b, nh / 2);
		ps->i = j;
		return OCAPN_OK;
	}
	default:
		break;
	}
	if (is_digit(c) || c == '-' || c == '+' || c == '.')
		return parse_number(ps, v);
	if (is_alpha(c)) {
		size_t nl = scan_name(ps, false);
		if (is_keyword(ps->s + ps->i, nl)) {
			keyword_value(ps, nl, v);
			return OCAPN_OK;
		}
		return perr(ps, OCAPN_E_SYNTAX, ps->i,
		    "bare name: write 'name for a symbol or \"name\" for a "
		    "string");
	}
	return perr(ps, OCAPN_E_SYNTAX, ps->i, "unexpected character");
}

OCAPN_API int
ocapn_notation_parse(const char *text, size_t len, ocapn_arena *arena,
    ocapn_value **out, size_t *consumed, size_t *err_offset,
    const char **reason)
{
	struct ps ps;
	memset(&ps, 0, sizeof(ps));
	ps.s = (const uint8_t *)text;
	ps.n = len;
	ps.arena = arena;
	ps.reason = "";
	ocapn__alloc_init(&ps.a, &arena->a);
	ocapn__arena_mark mark;
	ocapn__arena_mark_get(arena, &mark);
	ocapn_value v;
	skip_ws(&ps);
	int rc;
	if (ps.i >= ps.n) {
		rc = perr(&ps, OCAPN_E_INCOMPLETE, ps.i, "no value");
	} else {
		rc = parse_value(&ps, &v, 0);
	}
	if (!rc) {
		ocapn_value *res = ocapn_arena_alloc(arena, sizeof(v));
		if (!res) {
			rc = perr(&ps, OCAPN_E_NOMEM, ps.i, "out of memory");
		} else {
			*res = v;
			*out = res;
			if (consumed)
				*consumed = ps.i;
		}
	}
	ocapn__free(&ps.a, ps.stk, ps.capstk * sizeof(ocapn_value));
	ocapn_syrup_writer_free(ps.w1);
	ocapn_syrup_writer_free(ps.w2);
	if (rc) {
		ocapn__arena_rollback(arena, &mark);
		if (err_offset)
			*err_offset = ps.err_off;
		if (reason)
			*reason = ps.reason;
	}
	return rc;
}
