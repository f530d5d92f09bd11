/*
 * The abstract notation: the printer's exact output for every kind, the
 * parser on every form of the grammar (the spec's examples and our
 * extensions), parse errors with their offsets, round trips of the zoo and
 * every Goblins message, and shortest round-trip floats.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "syrup_testutil.h"

#define print tu_print
#define parse tu_parse

struct pcase {
	const char *syrup;
	size_t len;
	const char *text;
	const char *ascii; /* with OCAPN_NOTATION_ASCII, if different */
};

#define P(s, t) {s, sizeof(s) - 1, t, NULL}
#define PA(s, t, a) {s, sizeof(s) - 1, t, a}

static const struct pcase print_cases[] = {
    P("t", "t"),
    P("f", "f"),
    P("0+", "0"),
    P("1-", "-1"),
    P("42+", "42"),
    P("9223372036854775808-", "-9223372036854775808"),
    P("9223372036854775808+", "9223372036854775808"),
    P("18446744073709551616-", "-18446744073709551616"),
    P("D\x3f\xf8\x00\x00\x00\x00\x00\x00", "1.5"),
    P("D\x80\x00\x00\x00\x00\x00\x00\x00", "-0.0"),
    P("D\x00\x00\x00\x00\x00\x00\x00\x00", "0.0"),
    P("D\x40\x59\x00\x00\x00\x00\x00\x00", "100.0"),
    P("D\x3f\xb9\x99\x99\x99\x99\x99\x9a", "0.1"),
    P("D\x3f\xd3\x33\x33\x33\x33\x33\x34", "0.30000000000000004"),
    P("D\x3f\x1a\x36\xe2\xeb\x1c\x43\x2d", "0.0001"),
    P("D\x3e\xe4\xf8\xb5\x88\xe3\x68\xf1", "1.0e-05"),
    P("D\x43\x38\x00\x00\x00\x00\x00\x00", "6755399441055744.0"),
    P("D\x43\x41\xc3\x79\x37\xe0\x80\x00", "1.0e+16"),
    P("D\x7e\x37\xe4\x3c\x88\x00\x75\x9c", "1.0e+300"),
    P("D\x00\x00\x00\x00\x00\x00\x00\x01", "5.0e-324"),
    P("D\x7f\xef\xff\xff\xff\xff\xff\xff", "1.7976931348623157e+308"),
    P("D\x40\x09\x21\xfb\x54\x44\x2d\x18", "3.141592653589793"),
    P("D\x7f\xf0\x00\x00\x00\x00\x00\x00", "inf"),
    P("D\xff\xf0\x00\x00\x00\x00\x00\x00", "-inf"),
    P("D\x7f\xf8\x00\x00\x00\x00\x00\x00", "nan"),
    P("F\x3f\xc0\x00\x00", "1.5f"),
    P("F\x3d\xcc\xcc\xcd", "0.1f"),
    P("F\x80\x00\x00\x00", "-0.0f"),
    P("F\x7f\x7f\xff\xff", "3.4028235e+38f"),
    P("F\x00\x00\x00\x01", "1.0e-45f"),
    P("F\x7f\x80\x00\x00", "inff"),
    P("F\xff\x80\x00\x00", "-inff"),
    P("F\x7f\xc0\x00\x00", "nanf"),
    P("0:", ":"),
    P("3:cat", ":636174"),
    P("8:\xb0\xb5\xc0\xff\xee\xfa\xca\xde", ":b0b5c0ffeefacade"),
    P("0\"", "\"\""),
    P("5\"twine", "\"twine\""),
    PA("16\"a\"b\\c\nd\te\rf\x00\x7f\xc3\xa9!",
	"\"a\\\"b\\\\c\\nd\\te\\rf\\u{0}\\u{7f}\xc3\xa9!\"",
	"\"a\\\"b\\\\c\\nd\\te\\rf\\u{0}\\u{7f}\\u{e9}!\""),
    PA("4\"\xf0\x9f\x98\x80", "\"\xf0\x9f\x98\x80\"", "\"\\u{1f600}\""),
    P("1\"'", "\"'\""),
    P("1\"|", "\"|\""),
    P("5'fetch", "'fetch"),
    P("12'fleur-de-lis", "'fleur-de-lis"),
    P("10'op:deliver", "'op:deliver"),
    P("6'alive?", "'alive?"),
    P("1't", "'t"),
    P("3'inf", "'inf"),
    P("0'", "'||"),
    P("3'a b", "'|a b|"),
    P("3'a|b", "'|a\\|b|"),
    P("2'a:", "'|a:|"),
    P("1'1", "'|1|"),
    P("2'-a", "'|-a|"),
    PA("2'\xc3\xa9", "'|\xc3\xa9|", "'|\\u{e9}|"),
    P("1'\n", "'|\\n|"),
    P("[]", "[]"),
    P("[1+2+3+]", "[1 2 3]"),
    P("[[]]", "[[]]"),
    P("{}", "{}"),
    P("{1\"a1+1'b2+}", "{\"a\": 1, 'b: 2}"),
    P("{0:t1-f}", "{:: t, -1: f}"),
    P("{D\x7f\xf0\x00\x00\x00\x00\x00\x00" "1+}", "{inf: 1}"),
    P("#$", "#{}"),
    P("#1+2+$", "#{1 2}"),
    P("<3'foo1+2+3+>", "<foo 1 2 3>"),
    P("<1't>", "<'t>"),
    P("<1'f1+>", "<'f 1>"),
    P("<3'nan>", "<'nan>"),
    P("<4'info>", "<info>"),
    P("<3\"foo1+>", "<\"foo\" 1>"),
    P("<3'a b>", "<'|a b|>"),
    P("<0'>", "<'||>"),
    P("<[]t>", "<[] t>"),
    P("<1+>", "<1>"),
    P("<10'op:deliver<11'desc:export0+>[5'fetch]0+f>",
	"<op:deliver <desc:export 0> ['fetch] 0 f>"),
};

static void
test_print(void **state)
{
	(void)state;
	ocapn_arena *arena = ocapn_arena_new(NULL);
	for (size_t i = 0; i < sizeof(print_cases) / sizeof(*print_cases);
	     i++) {
		const struct pcase *c = &print_cases[i];
		ocapn_arena_reset(arena);
		ocapn_value *v = tu_decode(arena, 0, (const uint8_t *)c->syrup,
		    c->len);
		char *s = print(v, 0);
		if (strcmp(s, c->text))
			fail_msg("%s: printed '%s', want '%s'", c->syrup, s,
			    c->text);
		free(s);
		s = print(v, OCAPN_NOTATION_ASCII);
		const char *want = c->ascii ? c->ascii : c->text;
		if (strcmp(s, want))
			fail_msg("%s: printed ASCII '%s', want '%s'", c->syrup,
			    s, want);
		free(s);
		/* And it parses back to the same value and bytes. */
		ocapn_value *back = parse(arena, c->text);
		assert_true(ocapn_value_equal(v, back));
		back = parse(arena, want);
		assert_true(ocapn_value_equal(v, back));
		size_t n;
		uint8_t *enc = tu_encode(back, OCAPN_SYRUP_WRITE_FLOAT32, &n);
		assert_int_equal(n, c->len);
		assert_memory_equal(enc, c->syrup, n);
		free(enc);
	}
	ocapn_arena_free(arena);
}

struct qcase {
	const char *text;
	const char *syrup;
	size_t len;
};

#define Q(t, s) {t, s, sizeof(s) - 1}

static const struct qcase parse_cases[] = {
    /* The spec's examples (Notation.md). */
    Q("f", "f"),
    Q("t", "t"),
    Q("42", "42+"),
    Q("-1", "1-"),
    Q("0", "0+"),
    Q("nan", "D\x7f\xf8\x00\x00\x00\x00\x00\x00"),
    Q("\"twine\"", "5\"twine"),
    Q("'fleur-de-lis", "12'fleur-de-lis"),
    Q(":b0b5c0ffeefacade", "8:\xb0\xb5\xc0\xff\xee\xfa\xca\xde"),
    Q("{ a: 10, b: 2 }", "{1\"a10+1\"b2+}"),
    Q("{ \"a\": 10, \"b\": 2 }", "{1\"a10+1\"b2+}"),
    Q("{ 'a: 10, 'b: 2 }", "{1'a10+1'b2+}"),
    Q("[ 1 2 3 ]", "[1+2+3+]"),
    Q("<foo 1 2 3>", "<3'foo1+2+3+>"),
    Q("<'foo 1 2 3>", "<3'foo1+2+3+>"),
    Q("<\"foo\" 1 2 3>", "<3\"foo1+2+3+>"),
    /* Integers. */
    Q("+3", "3+"),
    Q("-0", "0+"),
    Q("+0", "0+"),
    Q("-9223372036854775808", "9223372036854775808-"),
    Q("-9223372036854775809", "9223372036854775809-"),
    Q("18446744073709551616", "18446744073709551616+"),
    /* Floats: the spec's forms, exponents, float32. */
    Q("1.", "D\x3f\xf0\x00\x00\x00\x00\x00\x00"),
    Q("1.5", "D\x3f\xf8\x00\x00\x00\x00\x00\x00"),
    Q(".5", "D\x3f\xe0\x00\x00\x00\x00\x00\x00"),
    Q("-.5", "D\xbf\xe0\x00\x00\x00\x00\x00\x00"),
    Q("+.5", "D\x3f\xe0\x00\x00\x00\x00\x00\x00"),
    Q("-0.0", "D\x80\x00\x00\x00\x00\x00\x00\x00"),
    Q("1e2", "D\x40\x59\x00\x00\x00\x00\x00\x00"),
    Q("1E2", "D\x40\x59\x00\x00\x00\x00\x00\x00"),
    Q("1.0e+2", "D\x40\x59\x00\x00\x00\x00\x00\x00"),
    Q("10000e-2", "D\x40\x59\x00\x00\x00\x00\x00\x00"),
    Q("inf", "D\x7f\xf0\x00\x00\x00\x00\x00\x00"),
    Q("+inf", "D\x7f\xf0\x00\x00\x00\x00\x00\x00"),
    Q("-inf", "D\xff\xf0\x00\x00\x00\x00\x00\x00"),
    Q("1.5f", "F\x3f\xc0\x00\x00"),
    Q("1e2f", "F\x42\xc8\x00\x00"),
    Q("-2.5e-1f", "F\xbe\x80\x00\x00"),
    Q("inff", "F\x7f\x80\x00\x00"),
    Q("-inff", "F\xff\x80\x00\x00"),
    Q("nanf", "F\x7f\xc0\x00\x00"),
    /* Strings, escapes, raw UTF-8. */
    Q("\"\\u{1F600}\\u{0}\\\"\\\\\\n\\r\\t\\'\\|\"",
	"12\"\xf0\x9f\x98\x80\x00\"\\\n\r\t'|"),
    Q("\"\\u{e9}\xc3\xa9\"", "4\"\xc3\xa9\xc3\xa9"),
    Q("\"\\u{10FFFF}\"", "4\"\xf4\x8f\xbf\xbf"),
    Q("\"line\nbreak\"", "10\"line\nbreak"),
    /* Symbols. */
    Q("'a", "1'a"),
    Q("'op:deliver", "10'op:deliver"),
    Q("'a:b", "3'a:b"),
    Q("'|a:b:|", "4'a:b:"), /* a bare name never ends with ':' */
    Q("'|a\\|b|", "3'a|b"),
    Q("'||", "0'"),
    Q("'|\\u{1F600}|", "4'\xf0\x9f\x98\x80"),
    Q("'t", "1't"),
    Q("'inf", "3'inf"),
    /* Bytes. */
    Q(":", "0:"),
    Q(":CAFE", "2:\xca\xfe"),
    /* Containers, separators, whitespace. */
    Q("#{3 1 2}", "#1+2+3+$"),
    Q("#{}", "#$"),
    Q("{a: 1,}", "{1\"a1+}"),
    Q("{a: 1 b: 2}", "{1\"a1+1\"b2+}"),
    Q("{b: 1, a: 2}", "{1\"a2+1\"b1+}"),
    Q("{t:1, inf:2}", "{D\x7f\xf0\x00\x00\x00\x00\x00\x00" "2+t1+}"),
    Q("{t: 1, nan: 2, inf: 3, -inf: 4, inff: 5}",
	"{D\x7f\xf0\x00\x00\x00\x00\x00\x00" "3+D\x7f\xf8\x00\x00\x00\x00"
	"\x00\x00" "2+D\xff\xf0\x00\x00\x00\x00\x00\x00" "4+F\x7f\x80\x00"
	"\x00" "5+t1+}"),
    Q("{[1]: 2, {}: 3, :00: 4, 5: 6}", "{1:\x00" "4+5+6+[1+]2+{}3+}"),
    Q(" \n[\t1\r\n2 ] ", "[1+2+]"),
    Q("<a:b 1>", "<3'a:b1+>"),
    Q("<op:deliver <desc:export 0> ['fetch] 0 f>",
	"<10'op:deliver<11'desc:export0+>[5'fetch]0+f>"),
    Q("<t>", "<t>"),
    Q("<inf>", "<D\x7f\xf0\x00\x00\x00\x00\x00\x00>"),
    Q("<info>", "<4'info>"),
    Q("<[1] 2>", "<[1+]2+>"),
};

static void
test_parse(void **state)
{
	(void)state;
	ocapn_arena *arena = ocapn_arena_new(NULL);
	for (size_t i = 0; i < sizeof(parse_cases) / sizeof(*parse_cases);
	     i++) {
		const struct qcase *c = &parse_cases[i];
		ocapn_arena_reset(arena);
		ocapn_value *v = parse(arena, c->text);
		size_t n;
		uint8_t *enc = tu_encode(v, OCAPN_SYRUP_WRITE_FLOAT32, &n);
		if (n != c->len || memcmp(enc, c->syrup, n))
			fail_msg("'%s': encodes as '%.*s', want '%.*s'",
			    c->text, (int)n, (const char *)enc, (int)c->len,
			    c->syrup);
		free(enc);
		/* Printing and parsing again gives the same value. */
		char *s = print(v, 0);
		assert_true(ocapn_value_equal(v, parse(arena, s)));
		free(s);
	}
	ocapn_arena_free(arena);
}

static void
test_parse_sequence(void **state)
{
	(void)state;
	ocapn_arena *arena = ocapn_arena_new(NULL);
	const char text[] = "1 2\n'x \"y\"[]<a>  ";
	size_t off = 0, n = 0;
	static const size_t ends[] = {1, 3, 6, 10, 12, 15};
	for (;;) {
		ocapn_value *v;
		size_t used, eo;
		const char *why;
		int rc = ocapn_notation_parse(text + off,
		    sizeof(text) - 1 - off, arena, &v, &used, &eo, &why);
		if (rc == OCAPN_E_INCOMPLETE)
			break;
		assert_int_equal(rc, 0);
		off += used;
		assert_int_equal(off, ends[n]);
		n++;
	}
	assert_int_equal(n, 6);
	ocapn_arena_free(arena);
}

struct ecase {
	const char *text;
	size_t len;
	int code;
	size_t off;
	const char *why;
};

#define E(t, code, off, why) {t, sizeof(t) - 1, code, off, why}

static const struct ecase parse_errors[] = {
    E("", OCAPN_E_INCOMPLETE, 0, "no value"),
    E("  \n", OCAPN_E_INCOMPLETE, 3, "no value"),
    E("[1 2", OCAPN_E_INCOMPLETE, 0, "unterminated container"),
    E("{a: 1", OCAPN_E_INCOMPLETE, 0, "unterminated container"),
    E("[1 {a: [", OCAPN_E_INCOMPLETE, 7, "unterminated container"),
    E("01", OCAPN_E_SYNTAX, 0, "leading zero"),
    E("-01", OCAPN_E_SYNTAX, 0, "leading zero"),
    E("00.5", OCAPN_E_SYNTAX, 0, "leading zero"),
    E("1.5ff", OCAPN_E_SYNTAX, 4, "unexpected character in number"),
    E("1x", OCAPN_E_SYNTAX, 1, "unexpected character in number"),
    E("1f", OCAPN_E_SYNTAX, 1, "unexpected character in number"),
    E("[1 2a]", OCAPN_E_SYNTAX, 4, "unexpected character in number"),
    E("1e", OCAPN_E_SYNTAX, 0, "bad exponent"),
    E("1e+", OCAPN_E_SYNTAX, 0, "bad exponent"),
    E("-", OCAPN_E_SYNTAX, 0, "bad number"),
    E(".", OCAPN_E_SYNTAX, 0, "bad number"),
    E("-x", OCAPN_E_SYNTAX, 0, "bad number"),
    E("-infx", OCAPN_E_SYNTAX, 0, "bad number"),
    E("-nan", OCAPN_E_SYNTAX, 0, "bad number"),
    E(":abc", OCAPN_E_SYNTAX, 0, "odd number of hex digits"),
    E("[t :a]", OCAPN_E_SYNTAX, 3, "odd number of hex digits"),
    E("\"abc", OCAPN_E_SYNTAX, 0, "unterminated quoted text"),
    E("\"abc\\\"", OCAPN_E_SYNTAX, 0, "unterminated quoted text"),
    E("\"\\q\"", OCAPN_E_SYNTAX, 1, "unknown escape"),
    E("\"ab\\x41\"", OCAPN_E_SYNTAX, 3, "unknown escape"),
    E("\"\\u{D800}\"", OCAPN_E_UTF8, 1, "not a Unicode scalar value"),
    E("\"\\u{110000}\"", OCAPN_E_UTF8, 1, "not a Unicode scalar value"),
    E("\"\\u{}\"", OCAPN_E_SYNTAX, 1, "expected \\u{HEX}"),
    E("\"\\u1234\"", OCAPN_E_SYNTAX, 1, "expected \\u{HEX}"),
    E("\"\\u{12345678}\"", OCAPN_E_SYNTAX, 1, "expected \\u{HEX}"),
    E("\"\xc3\x28\"", OCAPN_E_UTF8, 1, "invalid UTF-8"),
    E("\"ab\xed\xa0\x80\"", OCAPN_E_UTF8, 3, "invalid UTF-8"),
    E("\"\\n\xff\"", OCAPN_E_UTF8, 3, "invalid UTF-8"),
    E("'", OCAPN_E_SYNTAX, 0, "expected a name"),
    E("'1a", OCAPN_E_SYNTAX, 0, "expected a name"),
    E("' a", OCAPN_E_SYNTAX, 0, "expected a name"),
    E("'|abc", OCAPN_E_SYNTAX, 1, "unterminated quoted text"),
    E("'|\xff|", OCAPN_E_UTF8, 2, "invalid UTF-8"),
    E("<>", OCAPN_E_SYNTAX, 0, "record without a label"),
    E("[<  >]", OCAPN_E_SYNTAX, 1, "record without a label"),
    E("{a 1}", OCAPN_E_SYNTAX, 3, "expected ':'"),
    E("{'a 1}", OCAPN_E_SYNTAX, 4, "expected ':'"),
    E("{a: }", OCAPN_E_SYNTAX, 4, "unexpected character"),
    E("{, a: 1}", OCAPN_E_SYNTAX, 1, "unexpected character"),
    E("#(", OCAPN_E_SYNTAX, 0, "expected '#{'"),
    E("#", OCAPN_E_SYNTAX, 0, "expected '#{'"),
    E("bare", OCAPN_E_SYNTAX, 0, "bare name"),
    E("[x]", OCAPN_E_SYNTAX, 1, "bare name"),
    E("?", OCAPN_E_SYNTAX, 0, "unexpected character"),
    E("]", OCAPN_E_SYNTAX, 0, "unexpected character"),
    E("[1 }", OCAPN_E_SYNTAX, 3, "unexpected character"),
    E("#{1 1}", OCAPN_E_DUPLICATE, 0, "duplicate set item"),
    E("#{nan nan}", OCAPN_E_DUPLICATE, 0, "duplicate set item"),
    E("[#{[1] [1]}]", OCAPN_E_DUPLICATE, 1, "duplicate set item"),
    E("{a: 1, a: 2}", OCAPN_E_DUPLICATE, 0, "duplicate dict key"),
    E("{a: 1, \"a\": 2}", OCAPN_E_DUPLICATE, 0, "duplicate dict key"),
    E("{{a: 1, b: 2}: 1, {b: 2, a: 1}: 2}", OCAPN_E_DUPLICATE, 0,
	"duplicate dict key"),
};

static void
test_parse_errors(void **state)
{
	(void)state;
	ocapn_arena *arena = ocapn_arena_new(NULL);
	ocapn_value *keep = parse(arena, "[1 2 3]");
	size_t used_before = ocapn_arena_used(arena);
	for (size_t i = 0; i < sizeof(parse_errors) / sizeof(*parse_errors);
	     i++) {
		const struct ecase *c = &parse_errors[i];
		ocapn_value *v = NULL;
		size_t used = 77, eo = 99;
		const char *why = NULL;
		int rc = ocapn_notation_parse(c->text, c->len, arena, &v, &used,
		    &eo, &why);
		if (rc != c->code || eo != c->off || !why ||
		    !strstr(why, c->why))
			fail_msg("'%s': got %s at %zu (%s), want %s at %zu "
				 "(%s)",
			    c->text, ocapn_err_name(rc), eo, why ? why : "-",
			    ocapn_err_name(c->code), c->off, c->why);
		assert_null(v);
		assert_int_equal(used, 77);
		/* A failed parse leaves the arena as it was. */
		assert_int_equal(ocapn_arena_used(arena), used_before);
	}
	assert_int_equal(ocapn_value_count(keep), 3);
	ocapn_arena_free(arena);
}

static void
test_parse_limits(void **state)
{
	(void)state;
	ocapn_arena *arena = ocapn_arena_new(NULL);
	/* 1000 levels parse; one more is refused. */
	char deep[2 * 1002 + 1];
	memset(deep, '[', 1000);
	memset(deep + 1000, ']', 1000);
	deep[2000] = '\0';
	parse(arena, deep);
	memset(deep, '[', 1001);
	memset(deep + 1001, ']', 1001);
	deep[2002] = '\0';
	ocapn_value *v;
	size_t used, eo;
	const char *why;
	assert_int_equal(ocapn_notation_parse(deep, 2002, arena, &v, &used,
			     &eo, &why),
	    OCAPN_E_LIMIT);
	assert_int_equal(eo, 1000);
	assert_non_null(strstr(why, "nesting"));
	/* A float with more than 511 characters of text. */
	char *longf = malloc(600);
	memcpy(longf, "1.", 2);
	memset(longf + 2, '5', 597);
	longf[599] = '\0';
	assert_int_equal(ocapn_notation_parse(longf, 599, arena, &v, &used,
			     &eo, &why),
	    OCAPN_E_LIMIT);
	assert_non_null(strstr(why, "too long"));
	/* but a long integer is exact */
	memset(longf, '7', 599);
	v = parse(arena, longf);
	assert_int_equal(v->len, 599);
	assert_true(v->flags & OCAPN_VALUE_BIGINT);
	free(longf);
	ocapn_arena_free(arena);
}

static void
test_print_errors(void **state)
{
	(void)state;
	ocapn_buffer b;
	ocapn_buffer_init(&b);
	assert_int_equal(ocapn_buffer_append(&b, NULL, "keep", 4), 0);
	ocapn_value items[2], v;
	ocapn_value_set_int(&items[0], 1);
	ocapn_value_set_record(&items[1], NULL, 0); /* no label */
	ocapn_value_set_list(&v, items, 2);
	assert_int_equal(ocapn_notation_print(&v, 0, &b, NULL), OCAPN_E_INVAL);
	assert_int_equal(b.len, 4);
	ocapn_value_set_string(&items[1], "\xc3\x28", 2);
	assert_int_equal(ocapn_notation_print(&v, 0, &b, NULL), OCAPN_E_UTF8);
	assert_int_equal(b.len, 4);
	ocapn_value_set_symbol(&items[1], "a\xff", 2);
	assert_int_equal(ocapn_notation_print(&v, 0, &b, NULL), OCAPN_E_UTF8);
	memset(&items[1], 0, sizeof(items[1]));
	items[1].kind = 42;
	assert_int_equal(ocapn_notation_print(&v, 0, &b, NULL), OCAPN_E_INVAL);
	assert_int_equal(b.len, 4);
	/* Printing appends. */
	ocapn_value_set_bool(&items[1], true);
	assert_int_equal(ocapn_notation_print(&v, 0, &b, NULL), 0);
	assert_int_equal(b.len, 9);
	assert_memory_equal(b.data, "keep[1 t]", 9);
	ocapn_buffer_release(&b, NULL);
	/* Too deep for the printer. */
	ocapn_value *chain = calloc(1100, sizeof(*chain));
	for (size_t i = 0; i + 1 < 1100; i++)
		ocapn_value_set_list(&chain[i], &chain[i + 1], 1);
	ocapn_value_set_list(&chain[1099], NULL, 0);
	assert_int_equal(ocapn_notation_print(&chain[0], 0, &b, NULL),
	    OCAPN_E_LIMIT);
	assert_int_equal(b.len, 0);
	ocapn_buffer_release(&b, NULL);
	free(chain);
}

/* The zoo and every Goblins message: print, parse, equal, same bytes. */
static void
test_roundtrip_vectors(void **state)
{
	(void)state;
	size_t n;
	tu_msg *m = tu_capture_messages(&n);
	size_t zlen;
	uint8_t *zoo = tu_read_data("syrup/zoo.bin", &zlen);
	ocapn_arena *arena = ocapn_arena_new(NULL);
	for (size_t i = 0; i <= n; i++) {
		const uint8_t *in = i < n ? m[i].data : zoo;
		size_t len = i < n ? m[i].len : zlen;
		for (unsigned fl = 0; fl <= OCAPN_NOTATION_ASCII; fl++) {
			ocapn_arena_reset(arena);
			ocapn_value *v = tu_decode(arena, 0, in, len);
			char *s = print(v, fl);
			assert_null(strchr(s, '\n'));
			ocapn_value *back = parse(arena, s);
			assert_true(ocapn_value_equal(v, back));
			size_t elen;
			uint8_t *enc = tu_encode(back, 0, &elen);
			assert_int_equal(elen, len);
			assert_memory_equal(enc, in, len);
			free(enc);
			free(s);
		}
	}
	ocapn_arena_free(arena);
	free(zoo);
	tu_free_msgs(m, n);
}

/* The significant digits of a printed float: its mantissa's digits
 * without leading or trailing zeros ("100.0" has one, "0.25" two). */
static int
sig_digits(const char *s)
{
	char d[64];
	int n = 0;
	for (; *s && *s != 'e' && *s != 'f' && n < 63; s++)
		if (*s >= '0' && *s <= '9' && (n || *s != '0'))
			d[n++] = *s;
	while (n && d[n - 1] == '0')
		n--;
	return n;
}

static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static uint64_t
next64(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* Floats print with the fewest digits that read back exactly. */
static void
test_float_shortest(void **state)
{
	(void)state;
	ocapn_arena *arena = ocapn_arena_new(NULL);
	for (int i = 0; i < 20000; i++) {
		ocapn_value v;
		uint64_t bits = next64();
		if (i % 3 == 1) /* nearer to 1 */
			bits = (bits & UINT64_C(0x800fffffffffffff)) |
			    ((uint64_t)(1023 - 40 + (int)(bits >> 52) % 80)
				<< 52);
		double d;
		memcpy(&d, &bits, 8);
		bool single = i % 2 == 1;
		float f = (float)d;
		if (single)
			ocapn_value_set_float32(&v, f);
		else
			ocapn_value_set_float64(&v, d);
		if (single ? isnan(f) : isnan(d))
			continue;
		ocapn_arena_reset(arena);
		char *s = print(&v, 0);
		ocapn_value *back = parse(arena, s);
		assert_int_equal(back->kind, v.kind);
		if (single)
			assert_memory_equal(&back->u.f32, &f, 4);
		else
			assert_memory_equal(&back->u.f64, &d, 8);
		/* One digit fewer does not read back. */
		int p = sig_digits(s);
		if (p > 1 && !isinf(single ? f : d)) {
			char shorter[64];
			snprintf(shorter, sizeof(shorter), "%.*e", p - 2,
			    single ? (double)f : d);
			if (single && strtof(shorter, NULL) == f)
				fail_msg("%s: %s is shorter", s, shorter);
			if (single)
				assert_false(strtof(shorter, NULL) == f);
			else
				assert_false(strtod(shorter, NULL) == d);
		}
		free(s);
	}
	ocapn_arena_free(arena);
}

/* The parser allocates through the arena's allocator only, and survives
 * its failures without leaks. */
static void
test_parse_allocator(void **state)
{
	(void)state;
	char *text = malloc(8 * 2000 + 3);
	size_t len = 0;
	text[len++] = '[';
	for (int i = 0; i < 2000; i++)
		len += (size_t)sprintf(text + len, "%d ", i);
	text[len++] = ']';
	tu_counter c;
	tu_counter_init(&c);
	ocapn_arena *arena = ocapn_arena_new(&c.alloc);
	/* One chunk big enough for the values, kept across the reset. */
	assert_non_null(ocapn_arena_alloc(arena, 512 * 1024));
	ocapn_arena_reset(arena);
	long long arena_bytes = c.live_bytes;
	unsigned long before = c.calls;
	ocapn_value *v;
	size_t used, eo;
	const char *why;
	assert_int_equal(ocapn_notation_parse(text, len, arena, &v, &used, &eo,
			     &why),
	    0);
	assert_int_equal(ocapn_value_count(v), 2000);
	/* Its item stack grew through our allocator, and was freed. */
	assert_true(c.calls > before);
	assert_int_equal(c.live_bytes, arena_bytes);
	ocapn_arena_free(arena);
	assert_int_equal(c.live_bytes, 0);

	bool succeeded = false;
	for (unsigned long lim = 1; lim < 40 && !succeeded; lim++) {
		tu_counter_init(&c);
		c.fail_after = lim;
		arena = ocapn_arena_new(&c.alloc);
		if (arena) {
			int rc = ocapn_notation_parse(text, len, arena, &v,
			    &used, &eo, &why);
			assert_true(rc == OCAPN_OK || rc == OCAPN_E_NOMEM);
			succeeded = rc == OCAPN_OK;
		}
		ocapn_arena_free(arena);
		assert_int_equal(c.live_bytes, 0);
	}
	assert_true(succeeded);
	free(text);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_allocator),
	    cmocka_unit_test(test_print),
	    cmocka_unit_test(test_parse),
	    cmocka_unit_test(test_parse_sequence),
	    cmocka_unit_test(test_parse_errors),
	    cmocka_unit_test(test_parse_limits),
	    cmocka_unit_test(test_print_errors),
	    cmocka_unit_test(test_roundtrip_vectors),
	    cmocka_unit_test(test_float_shortest),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
