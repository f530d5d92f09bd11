/*
 * The behaviours the public conformance suite (ocapn/ocapn-test-suite)
 * checks, replayed at the engine level so CI guards them without the
 * suite: a raw peer speaks exactly as the suite does (its own exports
 * numbered from 0, version "1.0", list-form GC expected back) and the
 * test asserts on our exact replies.  Test names follow the suite's.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../tools/ocapn/suite_objects.h"
#include "captp_harness.h"

#define CAR "JadQ0++RzsD4M+40uLxTWVaVqM10DcBJ"
#define ECHO_HEX ":494f35386c316c61547968637267444b62457a464f4f33324d4464367a453577"
#define CAR_HEX ":4a616451302b2b527a7344344d2b3430754c785457566156714d31304463424a"
#define GREETER_HEX ":564d44446431766f4b5761724365324776674c627862564679734e7a52507a78"
#define PROMRES_HEX ":496f6b4378596d4d6a30346e6f73324a4e3154446f5931625438645868364c72"

struct raw {
	ocapn_vat *vat;
	ocapn_session *s;
	struct h_log out; /* everything we sent, in notation */
};

/* Our session as the suite's server, handshake done with a genuine
 * hello from a throwaway initiator in `version`. */
static void
raw_init(struct raw *r, ocapn_dialect peer)
{
	memset(r, 0, sizeof(*r));
	assert_int_equal(ocapn_vat_new(NULL, &r->vat), 0);
	assert_int_equal(suite_register(r->vat), 0);
	ocapn_locator *self = h_locator("server");
	assert_int_equal(ocapn_session_new(r->vat, OCAPN_ROLE_ACCEPTOR, self,
			     OCAPN_DIALECT_AUTO, &r->s),
	    0);
	ocapn_locator_free(self);
	assert_int_equal(ocapn_session_start(r->s), 0);
	ocapn_vat *va;
	ocapn_session *a;
	assert_int_equal(ocapn_vat_new(NULL, &va), 0);
	ocapn_locator *la = h_locator("suite");
	assert_int_equal(ocapn_session_new(va, OCAPN_ROLE_INITIATOR, la, peer,
			     &a),
	    0);
	ocapn_locator_free(la);
	assert_int_equal(ocapn_session_start(a), 0);
	const uint8_t *d;
	size_t n;
	ocapn_session_output(a, &d, &n);
	ocapn_session_feed(r->s, d, n);
	ocapn_session_free(a);
	ocapn_vat_free(va);
	assert_int_equal(ocapn_session_get_state(r->s), OCAPN_SESSION_ACTIVE);
}

static void
collect(struct raw *r)
{
	ocapn_vat_run(r->vat, 0);
	const uint8_t *d;
	size_t n;
	ocapn_session_output(r->s, &d, &n);
	h_log_messages(&r->out, d, n, NULL);
	ocapn_session_consume(r->s, n);
}

/* Send one message (notation) as the suite and collect our replies. */
static void
raw_send(struct raw *r, const char *text)
{
	size_t n;
	uint8_t *b = h_encode(text, &n);
	ocapn_session_feed(r->s, b, n);
	free(b);
	collect(r);
}

/* Assert that the replies since `*from` include `want` exactly. */
static void
raw_expect(struct raw *r, size_t *from, const char *want)
{
	for (size_t i = *from; i < r->out.n; i++)
		if (!strcmp(r->out.msgs[i], want)) {
			*from = i + 1;
			return;
		}
	h_log_dump("sent", &r->out);
	fail_msg("no message %s", want);
}

static void
raw_free(struct raw *r)
{
	ocapn_session_free(r->s);
	ocapn_vat_free(r->vat);
	h_log_clear(&r->out);
}

/* op_delivers: the suite's first export is its resolver 0; the answer
 * comes back deliver-only to <desc:export 0>. */
static void
test_fetch_with_resolver_zero(void **state)
{
	(void)state;
	struct raw r;
	raw_init(&r, OCAPN_DIALECT_SUITE);
	size_t at = 0;
	raw_send(&r, "<op:deliver <desc:export 0> ['fetch " ECHO_HEX "] 0 "
		     "<desc:import-object 0>>");
	raw_expect(&r, &at,
	    "<op:deliver-only <desc:export 0> ['fulfill <desc:import-object "
	    "1>]>");
	raw_free(&r);
}

static void
test_send_deliver_only(void **state)
{
	(void)state;
	struct raw r;
	raw_init(&r, OCAPN_DIALECT_SUITE);
	raw_send(&r, "<op:deliver <desc:export 0> ['fetch " ECHO_HEX "] 0 "
		     "<desc:import-object 0>>");
	size_t before = r.out.n;
	raw_send(&r, "<op:deliver-only <desc:export 1> ['hello]>");
	/* nothing comes back for a deliver-only, and nothing goes wrong */
	assert_int_equal(ocapn_session_get_state(r.s), OCAPN_SESSION_ACTIVE);
	for (size_t i = before; i < r.out.n; i++)
		assert_null(strstr(r.out.msgs[i], "'hello"));
	raw_free(&r);
}

static void
test_deliver_with_resolver(void **state)
{
	(void)state;
	struct raw r;
	raw_init(&r, OCAPN_DIALECT_SUITE);
	size_t at = 0;
	raw_send(&r, "<op:deliver <desc:export 0> ['fetch " ECHO_HEX "] 0 "
		     "<desc:import-object 0>>");
	raw_send(&r, "<op:deliver <desc:export 1> [1 \"two\" 'three] 1 "
		     "<desc:import-object 1>>");
	raw_expect(&r, &at,
	    "<op:deliver-only <desc:export 1> ['fulfill [1 \"two\" "
	    "'three]]>");
	raw_free(&r);
}

static void
test_deliver_promise_pipeline(void **state)
{
	(void)state;
	struct raw r;
	raw_init(&r, OCAPN_DIALECT_SUITE);
	size_t at = 0;
	raw_send(&r, "<op:deliver <desc:export 0> ['fetch " CAR_HEX "] 0 "
		     "<desc:import-object 0>>");
	raw_send(&r, "<op:deliver <desc:answer 0> [] 1 <desc:import-object "
		     "1>>");
	raw_send(&r, "<op:deliver <desc:answer 1> [['green 'buggy]] 2 "
		     "<desc:import-object 2>>");
	raw_send(&r, "<op:deliver <desc:answer 2> [] 3 <desc:import-object "
		     "3>>");
	raw_expect(&r, &at,
	    "<op:deliver-only <desc:export 3> ['fulfill \"Vroom! I am a "
	    "green buggy car!\"]>");
	raw_free(&r);
}

static void
test_promise_pipeline_with_break(void **state)
{
	(void)state;
	struct raw r;
	raw_init(&r, OCAPN_DIALECT_SUITE);
	size_t at = 0;
	raw_send(&r, "<op:deliver <desc:export 0> ['fetch " CAR_HEX "] 0 "
		     "<desc:import-object 0>>");
	raw_send(&r, "<op:deliver <desc:answer 0> [] 1 <desc:import-object "
		     "1>>");
	raw_send(&r, "<op:deliver <desc:answer 1> ['not-a-spec] 2 "
		     "<desc:import-object 2>>");
	raw_send(&r, "<op:deliver <desc:answer 2> [] 3 <desc:import-object "
		     "3>>");
	/* both the bad call and the call pipelined on it break */
	int b2 = h_log_find(&r.out, 0,
	    "<op:deliver-only <desc:export 2> ['break ");
	int b3 = h_log_find(&r.out, 0,
	    "<op:deliver-only <desc:export 3> ['break ");
	assert_true(b2 >= 0 && b3 >= 0);
	(void)at;
	raw_free(&r);
}

/* op_gc: the greeter calls our object with an answer position and drops
 * the answer: op:gc-answer with a list. */
static void
test_gc_answer(void **state)
{
	(void)state;
	struct raw r;
	raw_init(&r, OCAPN_DIALECT_SUITE);
	size_t at = 0;
	raw_send(&r, "<op:deliver <desc:export 0> ['fetch " GREETER_HEX "] 0 "
		     "<desc:import-object 0>>");
	raw_send(&r, "<op:deliver-only <desc:export 1> [<desc:import-object "
		     "5>]>");
	raw_expect(&r, &at,
	    "<op:deliver <desc:export 5> [\"Hello\"] 0 <desc:import-object 2>>");
	/* the suite answers the greeting; the greeter kept no reference to
	 * its result, so we collect the answer position */
	raw_send(&r, "<op:deliver-only <desc:export 2> ['fulfill 'hi]>");
	raw_expect(&r, &at, "<op:gc-answer [0]>");
	raw_free(&r);
}

static void
test_gc_export_emitted_single_object(void **state)
{
	(void)state;
	struct raw r;
	raw_init(&r, OCAPN_DIALECT_SUITE);
	size_t at = 0;
	raw_send(&r, "<op:deliver <desc:export 0> ['fetch " ECHO_HEX "] 0 "
		     "<desc:import-object 0>>");
	raw_expect(&r, &at, "<op:gc-export [0] [1]>"); /* the resolver */
	raw_send(&r, "<op:deliver-only <desc:export 1> [<desc:import-object "
		     "5>]>");
	raw_expect(&r, &at, "<op:gc-export [5] [1]>");
	raw_free(&r);
}

static void
test_gc_export_with_multiple_references(void **state)
{
	(void)state;
	struct raw r;
	raw_init(&r, OCAPN_DIALECT_SUITE);
	size_t at = 0;
	raw_send(&r, "<op:deliver <desc:export 0> ['fetch " ECHO_HEX "] 0 "
		     "<desc:import-object 0>>");
	raw_send(&r, "<op:deliver-only <desc:export 1> [<desc:import-object 5> "
		     "<desc:import-object 5> <desc:import-object 5>]>");
	raw_expect(&r, &at, "<op:gc-export [5] [3]>");
	raw_free(&r);
}

static void
test_gc_export_in_different_messages(void **state)
{
	(void)state;
	struct raw r;
	raw_init(&r, OCAPN_DIALECT_SUITE);
	raw_send(&r, "<op:deliver <desc:export 0> ['fetch " ECHO_HEX "] 0 "
		     "<desc:import-object 0>>");
	/* two messages before we get to run: one collection of 2 */
	size_t n1, n2;
	uint8_t *m1 = h_encode("<op:deliver-only <desc:export 1> "
			       "[<desc:import-object 5>]>",
	    &n1);
	uint8_t *m2 = h_encode("<op:deliver-only <desc:export 1> "
			       "[<desc:import-object 5>]>",
	    &n2);
	ocapn_session_feed(r.s, m1, n1);
	ocapn_session_feed(r.s, m2, n2);
	free(m1);
	free(m2);
	collect(&r);
	size_t at = 0;
	raw_expect(&r, &at, "<op:gc-export [5] [2]>");
	raw_free(&r);
}

/* op_listen */
static void
listen_case(int mode)
{
	struct raw r;
	raw_init(&r, OCAPN_DIALECT_SUITE);
	size_t at = 0;
	raw_send(&r, "<op:deliver <desc:export 0> ['fetch " PROMRES_HEX "] 0 "
		     "<desc:import-object 0>>");
	raw_send(&r, "<op:deliver <desc:answer 0> [] 1 <desc:import-object "
		     "1>>");
	raw_expect(&r, &at,
	    "<op:deliver-only <desc:export 1> ['fulfill [<desc:import-promise "
	    "2> <desc:import-object 3>]]>");
	if (mode == 0) {
		/* resolve first, then listen: answered at once */
		raw_send(&r, "<op:deliver-only <desc:export 3> ['fulfill "
			     "'done]>");
		raw_send(&r, "<op:listen <desc:export 2> <desc:import-object "
			     "7> f>");
		raw_expect(&r, &at,
		    "<op:deliver-only <desc:export 7> ['fulfill 'done]>");
	} else {
		raw_send(&r, "<op:listen <desc:export 2> <desc:import-object "
			     "7> f>");
		raw_send(&r, mode == 1 ? "<op:deliver-only <desc:export 3> "
					 "['break 'oops]>"
				       : "<op:deliver-only <desc:export 3> "
					 "['fulfill 'yay]>");
		raw_expect(&r, &at,
		    mode == 1 ? "<op:deliver-only <desc:export 7> ['break "
				"'oops]>"
			      : "<op:deliver-only <desc:export 7> ['fulfill "
				"'yay]>");
	}
	raw_free(&r);
}

static void
test_op_listen_already_has_answer(void **state)
{
	(void)state;
	listen_case(0);
}

static void
test_op_listen_to_promise_and_break(void **state)
{
	(void)state;
	listen_case(1);
}

static void
test_op_listen_to_promise_and_fulfill(void **state)
{
	(void)state;
	listen_case(2);
}

/* wants-partial: a listener asking for partial resolution hears of the
 * promise followed at once (unless it lives on the listener's own peer);
 * one that does not waits for the settlement. */
static void
test_listen_wants_partial(void **state)
{
	(void)state;
	struct raw r;
	raw_init(&r, OCAPN_DIALECT_SUITE);
	size_t at = 0;
	raw_send(&r, "<op:deliver <desc:export 0> ['fetch " PROMRES_HEX "] 0 "
		     "<desc:import-object 0>>");
	/* two promise/resolver pairs: exports 2,3 and 4,5 */
	raw_send(&r, "<op:deliver <desc:answer 0> [] 1 <desc:import-object "
		     "1>>");
	raw_send(&r, "<op:deliver <desc:answer 0> [] 2 <desc:import-object "
		     "2>>");
	raw_expect(&r, &at,
	    "<op:deliver-only <desc:export 2> ['fulfill [<desc:import-promise "
	    "4> <desc:import-object 5>]]>");
	raw_send(&r, "<op:listen <desc:export 2> <desc:import-object 7> t>");
	raw_send(&r, "<op:listen <desc:export 2> <desc:import-object 8> f>");
	/* resolve the first promise to our second one */
	raw_send(&r, "<op:deliver-only <desc:export 3> ['fulfill "
		     "<desc:export 4>]>");
	raw_expect(&r, &at,
	    "<op:deliver-only <desc:export 7> ['fulfill <desc:import-promise "
	    "4>]>");
	assert_int_equal(h_log_find(&r.out, at, "<op:deliver-only "
						"<desc:export 8>"),
	    -1);
	raw_send(&r, "<op:deliver-only <desc:export 5> ['fulfill 'settled]>");
	raw_expect(&r, &at,
	    "<op:deliver-only <desc:export 8> ['fulfill 'settled]>");
	/* the partial listener was told once only */
	assert_int_equal(h_log_find(&r.out, at, "<op:deliver-only "
						"<desc:export 7>"),
	    -1);
	raw_free(&r);

	/* A promise on the listener's own peer is no news. */
	raw_init(&r, OCAPN_DIALECT_SUITE);
	at = 0;
	raw_send(&r, "<op:deliver <desc:export 0> ['fetch " PROMRES_HEX "] 0 "
		     "<desc:import-object 0>>");
	raw_send(&r, "<op:deliver <desc:answer 0> [] 1 <desc:import-object "
		     "1>>");
	raw_send(&r, "<op:listen <desc:export 2> <desc:import-object 7> t>");
	raw_send(&r, "<op:deliver-only <desc:export 3> ['fulfill "
		     "<desc:import-promise 9>]>");
	assert_int_equal(h_log_find(&r.out, 0, "<op:deliver-only "
					       "<desc:export 7>"),
	    -1);
	/* we listen to the peer's promise to learn its settlement */
	assert_true(h_log_find(&r.out, at,
			"<op:listen <desc:export 9> <desc:import-object ") >= 0);
	raw_free(&r);
}

/* op_start_session / op_abort */
static void
test_captp_remote_version(void **state)
{
	(void)state;
	struct raw r;
	raw_init(&r, OCAPN_DIALECT_SUITE);
	assert_string_equal(ocapn_session_peer_version(r.s), "1.0");
	raw_free(&r);
	raw_init(&r, OCAPN_DIALECT_GOBLINS);
	assert_int_equal(ocapn_session_dialect(r.s), OCAPN_DIALECT_GOBLINS);
	raw_free(&r);
}

static void
test_start_session_with_invalid_version(void **state)
{
	(void)state;
	ocapn_vat *vat;
	assert_int_equal(ocapn_vat_new(NULL, &vat), 0);
	ocapn_locator *self = h_locator("server");
	ocapn_session *s;
	assert_int_equal(ocapn_session_new(vat, OCAPN_ROLE_ACCEPTOR, self,
			     OCAPN_DIALECT_AUTO, &s),
	    0);
	ocapn_locator_free(self);
	ocapn_session_start(s);
	size_t n;
	uint8_t *b = h_encode("<op:start-session \"0.0-bogus\" 1 2 3>", &n);
	ocapn_session_feed(s, b, n);
	free(b);
	assert_int_equal(ocapn_session_get_state(s), OCAPN_SESSION_ABORTED);
	assert_string_equal(ocapn_session_abort_reason(s),
	    "CapTP version is incompatible");
	/* our hello, then the abort */
	const uint8_t *d;
	ocapn_session_output(s, &d, &n);
	assert_non_null(memmem(d, n, "16'op:start-session", 19));
	assert_non_null(memmem(d, n, "8'op:abort29\"CapTP version is "
				     "incompatible>",
	    42));
	ocapn_session_free(s);
	ocapn_vat_free(vat);
}

static void
test_abort_before_setup(void **state)
{
	(void)state;
	ocapn_vat *vat;
	assert_int_equal(ocapn_vat_new(NULL, &vat), 0);
	ocapn_locator *self = h_locator("server");
	ocapn_session *s;
	assert_int_equal(ocapn_session_new(vat, OCAPN_ROLE_ACCEPTOR, self,
			     OCAPN_DIALECT_AUTO, &s),
	    0);
	ocapn_locator_free(self);
	ocapn_session_start(s);
	size_t n;
	uint8_t *b = h_encode("<op:abort \"test-abort-before-setup\">", &n);
	ocapn_session_feed(s, b, n);
	free(b);
	assert_int_equal(ocapn_session_get_state(s), OCAPN_SESSION_ABORTED);
	assert_true(ocapn_session_aborted_by_peer(s));
	/* no reply: neither a hello nor an abort of our own */
	const uint8_t *d;
	ocapn_session_output(s, &d, &n);
	assert_int_equal(n, 0);
	ocapn_session_free(s);
	ocapn_vat_free(vat);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_fetch_with_resolver_zero),
	    cmocka_unit_test(test_send_deliver_only),
	    cmocka_unit_test(test_deliver_with_resolver),
	    cmocka_unit_test(test_deliver_promise_pipeline),
	    cmocka_unit_test(test_promise_pipeline_with_break),
	    cmocka_unit_test(test_gc_answer),
	    cmocka_unit_test(test_gc_export_emitted_single_object),
	    cmocka_unit_test(test_gc_export_with_multiple_references),
	    cmocka_unit_test(test_gc_export_in_different_messages),
	    cmocka_unit_test(test_op_listen_already_has_answer),
	    cmocka_unit_test(test_op_listen_to_promise_and_break),
	    cmocka_unit_test(test_op_listen_to_promise_and_fulfill),
	    cmocka_unit_test(test_listen_wants_partial),
	    cmocka_unit_test(test_captp_remote_version),
	    cmocka_unit_test(test_start_session_with_invalid_version),
	    cmocka_unit_test(test_abort_before_setup),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
