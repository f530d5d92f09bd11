#define _POSIX_C_SOURCE 200809L
/*
 * Replay of real Goblins sessions (tests/data/goblins-captures): our engine
 * takes the accepting peer's place, is fed the bytes the Goblins client
 * sent (c2a), and must answer what the Goblins peer answered (a2c): the
 * same messages in the same order, once the start-session (different keys)
 * and GC messages (timing-dependent) are set aside.
 *
 * Where Goblins hides an exception behind <exn:fail:mystery> we break with
 * a string reason, so for those messages only the shape is compared.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../tools/ocapn/suite_objects.h"
#include "captp_harness.h"

static bool
is_compared(const char *m)
{
	return strncmp(m, "<op:start-session ", 18) &&
	    strncmp(m, "<op:gc-export", 13) && strncmp(m, "<op:gc-answer", 13);
}

/* Run one scenario; returns the number of messages compared. */
static size_t
replay(const char *scenario, bool expect_abort_from_client)
{
	char path[256];
	size_t clen, alen;
	snprintf(path, sizeof(path), "goblins-captures/%s/captp1.c2a.bin",
	    scenario);
	uint8_t *c2a = tu_read_data(path, &clen);
	snprintf(path, sizeof(path), "goblins-captures/%s/captp1.a2c.bin",
	    scenario);
	uint8_t *a2c = tu_read_data(path, &alen);

	ocapn_vat *vat;
	assert_int_equal(ocapn_vat_new(NULL, &vat), 0);
	assert_int_equal(suite_register(vat), 0);
	ocapn_locator *self = h_locator("testsuitepeer");
	ocapn_session *s;
	assert_int_equal(ocapn_session_new(vat, OCAPN_ROLE_ACCEPTOR, self,
			     OCAPN_DIALECT_AUTO, &s),
	    0);
	ocapn_locator_free(self);
	assert_int_equal(ocapn_session_start(s), 0);

	/* Feed the client's stream message by message (as it arrived),
	 * running turns in between, and collect what we send. */
	ocapn_buffer out;
	ocapn_buffer_init(&out);
	ocapn_syrup_scanner *sc = ocapn_syrup_scanner_new(NULL, NULL);
	size_t off = 0;
	while (off < clen) {
		size_t used;
		int rc = ocapn_syrup_scanner_feed(sc, c2a + off, clen - off,
		    &used);
		assert_int_equal(rc, OCAPN_OK);
		ocapn_session_feed(s, c2a + off, used);
		ocapn_vat_run(vat, 0);
		off += used;
	}
	ocapn_vat_run(vat, 0);
	const uint8_t *d;
	size_t n;
	ocapn_session_output(s, &d, &n);
	ocapn_buffer_append(&out, NULL, d, n);
	ocapn_session_consume(s, n);
	ocapn_syrup_scanner_free(sc);

	if (expect_abort_from_client) {
		assert_int_equal(ocapn_session_get_state(s),
		    OCAPN_SESSION_ABORTED);
		assert_true(ocapn_session_aborted_by_peer(s));
	} else {
		if (ocapn_session_get_state(s) != OCAPN_SESSION_ACTIVE)
			fail_msg("%s: session aborted: %s", scenario,
			    ocapn_session_abort_reason(s));
	}
	assert_int_equal(ocapn_session_dialect(s), OCAPN_DIALECT_GOBLINS);

	struct h_log want = {0}, got = {0}, all = {0};
	h_log_messages(&want, a2c, alen, is_compared);
	h_log_messages(&got, out.data, out.len, is_compared);
	h_log_messages(&all, out.data, out.len, NULL);
	/* our first message is our own start-session, in Goblins' version */
	assert_true(all.n > 0);
	assert_int_equal(strncmp(all.msgs[0],
			     "<op:start-session \"goblins-0.12\" ", 33),
	    0);
	if (want.n != got.n) {
		for (size_t i = 0; i < want.n; i++)
			fprintf(stderr, "want %s\n", want.msgs[i]);
		for (size_t i = 0; i < got.n; i++)
			fprintf(stderr, "got  %s\n", got.msgs[i]);
		fail_msg("%s: %zu messages expected, %zu sent", scenario,
		    want.n, got.n);
	}
	for (size_t i = 0; i < want.n; i++) {
		const char *mystery = strstr(want.msgs[i],
		    "['break <exn:fail:mystery>]>");
		if (mystery) {
			size_t k = (size_t)(mystery - want.msgs[i]);
			assert_int_equal(strncmp(want.msgs[i], got.msgs[i], k), 0);
			assert_non_null(strstr(got.msgs[i] + k, "['break \""));
			continue;
		}
		if (strcmp(want.msgs[i], got.msgs[i])) {
			fprintf(stderr, "%s message %zu:\n want %s\n got  %s\n",
			    scenario, i, want.msgs[i], got.msgs[i]);
			fail();
		}
	}
	/* every GC message we sent is well formed goblins-dialect GC */
	for (size_t i = 0; i < all.n; i++)
		if (!strncmp(all.msgs[i], "<op:gc-", 7))
			assert_true(!strncmp(all.msgs[i], "<op:gc-export ", 14) ||
			    !strncmp(all.msgs[i], "<op:gc-answer ", 14));
	size_t compared = want.n;
	h_log_clear(&want);
	h_log_clear(&got);
	h_log_clear(&all);
	ocapn_buffer_release(&out, NULL);
	ocapn_session_free(s);
	ocapn_vat_free(vat);
	free(c2a);
	free(a2c);
	return compared;
}

static void
test_session_fetch_echo(void **state)
{
	(void)state;
	assert_int_equal(replay("uds-session-fetch-echo", false), 2);
}

static void
test_pipelined_car_factory(void **state)
{
	(void)state;
	assert_int_equal(replay("uds-pipelined-car-factory", false), 4);
}

static void
test_promise_resolver_break(void **state)
{
	(void)state;
	assert_int_equal(replay("uds-promise-resolver-break", false), 3);
}

static void
test_remote_exception(void **state)
{
	(void)state;
	assert_int_equal(replay("uds-remote-exception-broken-pipeline", false),
	    4);
}

static void
test_op_abort(void **state)
{
	(void)state;
	assert_int_equal(replay("uds-op-abort", true), 2);
}

static void
test_get_index_untag(void **state)
{
	(void)state;
	assert_int_equal(replay("testuds-op-get-index-untag", false), 8);
}

static void
test_value_encodings(void **state)
{
	(void)state;
	assert_int_equal(replay("testuds-value-encodings", false), 2);
}

static void
test_bad_swiss(void **state)
{
	(void)state;
	assert_int_equal(replay("testuds-bad-swiss-fetch", false), 2);
}

static void
test_all_scenarios(void **state)
{
	(void)state;
	assert_true(replay("testuds-all-scenarios", false) >= 8);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_session_fetch_echo),
	    cmocka_unit_test(test_pipelined_car_factory),
	    cmocka_unit_test(test_promise_resolver_break),
	    cmocka_unit_test(test_remote_exception),
	    cmocka_unit_test(test_op_abort),
	    cmocka_unit_test(test_get_index_untag),
	    cmocka_unit_test(test_value_encodings),
	    cmocka_unit_test(test_bad_swiss),
	    cmocka_unit_test(test_all_scenarios),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
