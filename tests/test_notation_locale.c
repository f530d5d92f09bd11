/*
 * The notation under a host program's locale.  A program that calls
 * setlocale() switches the C library's decimal point to "," (de_DE) or to
 * the two-byte U+066B (ps_AF); the notation must still print and read '.'
 * and give exactly the values and text it gives in the "C" locale.
 *
 * The locales are compiled with localedef into a private directory
 * (LOCPATH) when the system has not installed them; if neither can be had
 * (Debian package `locales` missing), the test says so and is skipped.
 */
#define _POSIX_C_SOURCE 200809L /* mkdtemp, setenv */
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "syrup_testutil.h"

static const char *const texts[] = {
    "1.5", "0.1", "-2.5e-10", "1.0e300", "100.0", "0.0001", "-0.0",
    "3.141592653589793", "1.5f", "0.1f", "3.4028235e38f", "2.5e3",
    "[1.25 {'w: 8.2} <'r 6.02e23 -1.0e-300f>]",
};
#define NTEXTS (sizeof(texts) / sizeof(texts[0]))

/* What each text prints as in the "C" locale, and its Syrup bytes. */
static char *c_printed[NTEXTS];
static ocapn_buffer c_syrup[NTEXTS];

static char *
print(const ocapn_value *v)
{
	return tu_print(v, 0);
}

#define parse tu_parse

static void
encode(const ocapn_value *v, ocapn_buffer *out)
{
	ocapn_syrup_writer *w = ocapn_syrup_writer_new(
	    OCAPN_SYRUP_WRITE_FLOAT32, NULL);
	assert_non_null(w);
	ocapn_buffer_init(out);
	ocapn_syrup_writer_reset_buffer(w, out);
	assert_int_equal(ocapn_syrup_write_value(w, v), OCAPN_OK);
	const uint8_t *d;
	size_t n;
	assert_int_equal(ocapn_syrup_writer_finish(w, &d, &n), OCAPN_OK);
	ocapn_syrup_writer_free(w);
}

static void
record_c_locale(void)
{
	ocapn_arena *ar = ocapn_arena_new(NULL);
	for (size_t i = 0; i < NTEXTS; i++) {
		ocapn_value *v = parse(ar, texts[i]);
		c_printed[i] = print(v);
		encode(v, &c_syrup[i]);
	}
	ocapn_arena_free(ar);
}

/* Under the current locale: same values, same text, and every printed
 * float reads back exactly. */
static void
same_as_c_locale(void)
{
	ocapn_arena *ar = ocapn_arena_new(NULL);
	for (size_t i = 0; i < NTEXTS; i++) {
		ocapn_value *v = parse(ar, texts[i]);
		ocapn_buffer bytes;
		encode(v, &bytes);
		assert_int_equal(bytes.len, c_syrup[i].len);
		assert_memory_equal(bytes.data, c_syrup[i].data, bytes.len);
		ocapn_buffer_release(&bytes, NULL);
		char *s = print(v);
		assert_string_equal(s, c_printed[i]);
		ocapn_value *again = parse(ar, s);
		assert_true(ocapn_value_equal(v, again));
		free(s);
	}
	/* shortest round trip of awkward doubles */
	const double ds[] = {0.1 + 0.2, 5e-324, 1.7976931348623157e308,
	    123456.789, -1.0 / 3.0};
	for (size_t i = 0; i < sizeof(ds) / sizeof(ds[0]); i++) {
		ocapn_value x;
		ocapn_value_set_float64(&x, ds[i]);
		char *s = print(&x);
		assert_non_null(strchr(s, '.'));
		assert_null(strchr(s, ','));
		ocapn_value *back = parse(ar, s);
		double got;
		assert_int_equal(ocapn_value_get_float64(back, &got), OCAPN_OK);
		assert_memory_equal(&got, &ds[i], sizeof(got));
		free(s);
	}
	ocapn_arena_free(ar);
}

struct loc {
	const char *name;   /* e.g. "de_DE" */
	const char *point;  /* its decimal point */
	bool ok;
};
static struct loc locs[] = {
    {"de_DE", ",", false},
    {"ps_AF", "\xd9\xab", false}, /* U+066B ARABIC DECIMAL SEPARATOR */
};
static char locdir[] = "/tmp/ocapn-locale-XXXXXX";
static bool have_locdir;

static bool
active(const struct loc *l)
{
	char full[64];
	snprintf(full, sizeof(full), "%s.UTF-8", l->name);
	return setlocale(LC_ALL, full) &&
	    strcmp(localeconv()->decimal_point, l->point) == 0;
}

/*
 * Make every locale usable: if the system lacks one, compile all of them
 * into a private directory and point LOCPATH at it (once, before any
 * lookup there: the C library remembers a failed lookup).
 */
static void
prepare_locales(void)
{
	bool missing = false;
	for (size_t i = 0; i < sizeof(locs) / sizeof(locs[0]); i++)
		if (!active(&locs[i]))
			missing = true;
	setlocale(LC_ALL, "C");
	if (missing && mkdtemp(locdir)) {
		have_locdir = true;
		for (size_t i = 0; i < sizeof(locs) / sizeof(locs[0]); i++) {
			char cmd[256];
			snprintf(cmd, sizeof(cmd),
			    "localedef -c -i %s -f UTF-8 %s/%s.UTF-8 "
			    ">/dev/null 2>&1",
			    locs[i].name, locdir, locs[i].name);
			if (system(cmd) == -1)
				perror("localedef");
		}
		setenv("LOCPATH", locdir, 1);
	}
	for (size_t i = 0; i < sizeof(locs) / sizeof(locs[0]); i++)
		locs[i].ok = active(&locs[i]);
	setlocale(LC_ALL, "C");
}

static void
test_locale(void **state)
{
	struct loc *l = *state;
	assert_true(active(l));
	same_as_c_locale();
}

static int
back_to_c(void **state)
{
	(void)state;
	setlocale(LC_ALL, "C");
	return 0;
}

static void
test_back_in_c(void **state)
{
	(void)state;
	assert_string_equal(localeconv()->decimal_point, ".");
	same_as_c_locale();
}

int
main(void)
{
	record_c_locale();
	struct CMUnitTest tests[3];
	size_t n = 0;
	prepare_locales();
	for (size_t i = 0; i < sizeof(locs) / sizeof(locs[0]); i++) {
		if (!locs[i].ok) {
			printf("# %s.UTF-8 is not available and could not be "
			       "compiled (localedef and Debian package "
			       "`locales` needed): not tested\n",
			    locs[i].name);
			continue;
		}
		tests[n++] = (struct CMUnitTest){locs[i].name, test_locale,
		    NULL, back_to_c, &locs[i]};
	}
	int rc = 77; /* meson: skipped */
	if (n == 0) {
		printf("# skipped: no locale with another decimal point\n");
	} else {
		tests[n++] = (struct CMUnitTest){"back in the C locale",
		    test_back_in_c, NULL, NULL, NULL};
		rc = _cmocka_run_group_tests("notation_locale", tests, n,
		    NULL, NULL);
	}
	if (have_locdir) {
		char cmd[128];
		snprintf(cmd, sizeof(cmd), "rm -rf %s", locdir);
		if (system(cmd) == -1)
			perror("rm");
	}
	for (size_t i = 0; i < NTEXTS; i++) {
		free(c_printed[i]);
		ocapn_buffer_release(&c_syrup[i], NULL);
	}
	return rc;
}
