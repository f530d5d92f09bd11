#define _GNU_SOURCE
/*
 * Hostile input: each case feeds the accepting session bytes that no
 * correct peer sends, after a valid handshake (or instead of one), and
 * expects op:abort with a precise reason.  A bystander session on the same
 * vat must keep working afterwards.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../tools/ocapn/suite_objects.h"
#include "captp_harness.h"

#define ECHO "IO58l1laTyhcrgDKbEzFOO32MDd6zE5w"

struct hostile {
	const char *name;
	const char *setup;  /* notation of a valid message sent first, or NULL */
	const char *input;  /* notation, or NULL when `raw` is used */
	const char *raw;    /* raw bytes (not Syrup) */
	const char *reason; /* expected substring of the abort reason */
};

static const struct hostile cases[] = {
    {"unknown export", NULL, "<op:deliver <desc:export 99> [] f f>", NULL,
	"unknown export position 99"},
    {"unknown answer", NULL, "<op:deliver-only <desc:answer 5> []>", NULL,
	"unknown answer position 5"},
    {"args not a list", NULL, "<op:deliver <desc:export 0> 'fetch f f>",
	NULL, "arguments are not a list"},
    {"reused answer position",
	"<op:deliver <desc:export 0> ['fetch :00] 0 f>",
	"<op:deliver <desc:export 0> ['fetch :00] 0 f>",
	NULL, "answer position 0 is already in use"},
    {"negative answer position", NULL, "<op:deliver <desc:export 0> [] -1 f>",
	NULL, "answer position is invalid"},
    {"bignum answer position", NULL,
	"<op:deliver <desc:export 0> [] 99999999999999999999999 f>", NULL,
	"answer position is invalid"},
    {"target is an import", NULL,
	"<op:deliver <desc:import-object 1> [] f f>", NULL,
	"target is not desc:export or desc:answer"},
    {"deliver-only arity", NULL, "<op:deliver-only <desc:export 0>>", NULL,
	"needs 2 fields"},
    {"deliver arity", NULL, "<op:deliver <desc:export 0> [] f>", NULL,
	"needs 4 fields"},
    {"resolve-me not a descriptor", NULL,
	"<op:deliver <desc:export 0> [] 0 7>", NULL,
	"resolve-me is neither a descriptor nor false"},
    {"unknown operation", NULL, "<op:frobnicate 1>", NULL,
	"unknown operation op:frobnicate"},
    {"not a record", NULL, "[1 2 3]", NULL,
	"message is not a record with a symbol label"},
    {"string label", NULL, "<\"op:deliver\" 1>", NULL,
	"message is not a record with a symbol label"},
    {"malformed syrup", NULL, NULL, "<10'op:deliver<3'foo?", "malformed"},
    {"non-canonical syrup", NULL, NULL, "<10'op:deliver{1'b1+1'a2+}>",
	"not in canonical order"},
    {"gc of unknown export", NULL, "<op:gc-export 42 1>", NULL,
	"of unknown export 42"},
    {"gc lists differ", NULL, "<op:gc-export [1] [1 2]>", NULL,
	"lists differ in length"},
    {"gc zero delta", NULL, "<op:gc-exports [1] [0]>", NULL,
	"invalid position or delta"},
    {"gc mixed forms", NULL, "<op:gc-export 1 [1]>", NULL,
	"two integers or two lists"},
    {"gc unknown answer", NULL, "<op:gc-answer 7>", NULL,
	"of unknown answer 7"},
    {"gc answers list", NULL, "<op:gc-answers [7]>", NULL,
	"of unknown answer 7"},
    {"listener not a descriptor", NULL, "<op:listen <desc:export 0> 5 t>",
	NULL, "listener is not a descriptor"},
    {"wants-partial not boolean", NULL,
	"<op:listen <desc:export 0> <desc:import-object 1> 'maybe>", NULL,
	"wants-partial is not a boolean"},
    {"listen arity", NULL, "<op:listen <desc:export 0>>", NULL,
	"needs 2 or 3 fields"},
    {"unknown descriptor", NULL,
	"<op:deliver-only <desc:export 0> [<desc:bogus 1>]>", NULL,
	"malformed descriptor desc:bogus"},
    {"negative import position", NULL,
	"<op:deliver-only <desc:export 0> [<desc:import-object -1>]>", NULL,
	"invalid position"},
    {"import changes kind", NULL,
	"<op:deliver-only <desc:export 0> [<desc:import-object 3> "
	"<desc:import-promise 3>]>",
	NULL, "changed between object and promise"},
    {"negative index", NULL, "<op:index <desc:export 0> -3 1>", NULL,
	"index is not a non-negative integer"},
    {"field answer reused",
	"<op:get <desc:export 0> \"a\" 4>", "<op:untag <desc:export 0> 'x 4>",
	NULL, "answer position 4 is already in use"},
    {"second start-session", NULL, NULL, NULL, "second op:start-session"},
    {"handoff give not a give", NULL,
	"<op:deliver-only <desc:export 0> [<desc:sig-envelope 1 2>]>", NULL,
	"malformed handoff certificate: not a desc:handoff-give"},
    {"handoff give bad key", NULL,
	"<op:deliver-only <desc:export 0> [<desc:sig-envelope "
	"<desc:handoff-give 1 2 3 4 5> 6>]>",
	NULL, "malformed handoff certificate"},
};

static void
assert_aborted(ocapn_session *s, const char *want)
{
	if (ocapn_session_get_state(s) != OCAPN_SESSION_ABORTED)
		fail_msg("session not aborted (expected \"%s\")", want);
	const char *why = ocapn_session_abort_reason(s);
	if (!strstr(why, want))
		fail_msg("abort reason \"%s\" lacks \"%s\"", why, want);
}

/* The abort went out on the wire as the last message. */
static void
assert_abort_sent(struct h_pair *p, const char *want)
{
	h_pump(p);
	assert_true(p->b2a.n > 0);
	const char *last = p->b2a.msgs[p->b2a.n - 1];
	if (strncmp(last, "<op:abort \"", 11) || !strstr(last, want))
		fail_msg("last message %s is not the abort", last);
	assert_int_equal(ocapn_session_get_state(p->a), OCAPN_SESSION_ABORTED);
	assert_true(ocapn_session_aborted_by_peer(p->a));
}

static void
bystander_still_works(ocapn_vat *vb)
{
	ocapn_vat *va;
	assert_int_equal(ocapn_vat_new(NULL, &va), 0);
	struct h_pair q;
	h_pair_init_vats(&q, va, vb, OCAPN_DIALECT_AUTO, OCAPN_DIALECT_AUTO);
	ocapn_ref *echo = h_fetch(q.a, ECHO);
	ocapn_value *args = h_parse(va, "[\"still here\"]");
	ocapn_ref *res;
	assert_int_equal(ocapn_send(echo, args, &res), 0);
	struct h_result r;
	h_when(res, &r);
	h_pump(&q);
	assert_true(r.ok);
	assert_string_equal(r.text, "[\"still here\"]");
	h_result_clear(&r);
	ocapn_ref_release(res);
	ocapn_ref_release(echo);
	h_pair_free(&q);
	ocapn_vat_free(va);
}

static void
feed_text(ocapn_session *s, const char *text)
{
	size_t n;
	uint8_t *b = h_encode(text, &n);
	ocapn_session_feed(s, b, n);
	free(b);
}

static void
test_hostile_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		const struct hostile *c = &cases[i];
		struct h_pair p;
		h_pair_init(&p, OCAPN_DIALECT_AUTO, OCAPN_DIALECT_AUTO);
		assert_int_equal(suite_register(p.vb), 0);
		h_pump(&p);
		assert_int_equal(ocapn_session_get_state(p.b),
		    OCAPN_SESSION_ACTIVE);
		if (c->setup) {
			feed_text(p.b, c->setup);
			ocapn_vat_run(p.vb, 0);
			if (ocapn_session_get_state(p.b) !=
			    OCAPN_SESSION_ACTIVE)
				fail_msg("%s: setup aborted: %s", c->name,
				    ocapn_session_abort_reason(p.b));
		}
		if (c->input) {
			feed_text(p.b, c->input);
		} else if (c->raw) {
			ocapn_session_feed(p.b, (const uint8_t *)c->raw,
			    strlen(c->raw));
		} else {
			/* second start-session: replay Alice's own hello */
			const char *hello = p.a2b.msgs[0];
			feed_text(p.b, hello);
		}
		ocapn_vat_run(p.vb, 0);
		fprintf(stderr, "  %-28s -> %s\n", c->name,
		    ocapn_session_abort_reason(p.b));
		assert_aborted(p.b, c->reason);
		assert_abort_sent(&p, c->reason);
		/* further input is refused */
		assert_int_equal(ocapn_session_feed(p.b,
				     (const uint8_t *)"t", 1),
		    OCAPN_E_ABORTED);
		bystander_still_works(p.vb);
		h_pair_free(&p);
	}
}

/* Handshake-time attacks: a bad first message. */
static void
test_hostile_handshake(void **state)
{
	(void)state;
	struct {
		const char *name;
		const char *reason;
	} hs[] = {
	    {"message before start-session", "message before op:start-session"},
	    {"bad signature", "Invalid location signature"},
	    {"bad key", "invalid session key"},
	    {"bad version", "CapTP version is incompatible"},
	    {"start-session arity", "needs 4 fields"},
	    {"bad location", "invalid location"},
	};
	for (size_t i = 0; i < sizeof(hs) / sizeof(*hs); i++) {
		ocapn_vat *vat;
		assert_int_equal(ocapn_vat_new(NULL, &vat), 0);
		ocapn_locator *l = h_locator("bob");
		ocapn_session *b;
		assert_int_equal(ocapn_session_new(vat, OCAPN_ROLE_ACCEPTOR, l,
				     i == 3 ? OCAPN_DIALECT_GOBLINS
					    : OCAPN_DIALECT_AUTO,
				     &b),
		    0);
		ocapn_locator_free(l);
		assert_int_equal(ocapn_session_start(b), 0);
		/* A genuine hello from a real initiator, then tampered. */
		ocapn_vat *va;
		assert_int_equal(ocapn_vat_new(NULL, &va), 0);
		ocapn_locator *la = h_locator("alice");
		ocapn_session *a;
		assert_int_equal(ocapn_session_new(va, OCAPN_ROLE_INITIATOR, la,
				     OCAPN_DIALECT_AUTO, &a),
		    0);
		ocapn_locator_free(la);
		assert_int_equal(ocapn_session_start(a), 0);
		const uint8_t *d;
		size_t n;
		ocapn_session_output(a, &d, &n);
		uint8_t *hello = malloc(n);
		memcpy(hello, d, n);
		switch (i) {
		case 0:
			feed_text(b, "<op:deliver-only <desc:export 0> []>");
			break;
		case 1: {
			/* flip a bit in the last signature byte */
			hello[n - 6] ^= 1;
			ocapn_session_feed(b, hello, n);
			break;
		}
		case 2: {
			/* 'Ed25519 -> 'Ed25518 */
			uint8_t *k = memmem(hello, n, "Ed25519", 7);
			assert_non_null(k);
			k[6] = '8';
			ocapn_session_feed(b, hello, n);
			break;
		}
		case 3:
			ocapn_session_feed(b, hello, n);
			break;
		case 4:
			feed_text(b, "<op:start-session \"1.0\">");
			break;
		case 5: {
			/* 'loopback -> 'loop.ack: a transport with a dot */
			uint8_t *k = memmem(hello, n, "loopback", 8);
			assert_non_null(k);
			k[4] = '.';
			ocapn_session_feed(b, hello, n);
			break;
		}
		}
		fprintf(stderr, "  %-28s -> %s\n", hs[i].name,
		    ocapn_session_abort_reason(b));
		assert_aborted(b, hs[i].reason);
		free(hello);
		ocapn_session_free(a);
		ocapn_session_free(b);
		ocapn_vat_free(va);
		ocapn_vat_free(vat);
	}
}

/* Limits: each one aborts the offending session. */
static void
test_limits(void **state)
{
	(void)state;
	struct {
		ocapn_session_limit which;
		uint64_t value;
		const char *input;
		const char *reason;
	} lim[] = {
	    {OCAPN_SESSION_MAX_DEPTH, 8,
		"<op:deliver-only <desc:export 0> [[[[[[[[[[1]]]]]]]]]]>",
		"nesting deeper"},
	    {OCAPN_SESSION_MAX_MESSAGE, 64,
		"<op:deliver-only <desc:export 0> [\"a string that makes this "
		"message longer than sixty-four bytes\"]>",
		"exceeds the total size limit"},
	    {OCAPN_SESSION_MAX_IMPORTS, 2,
		"<op:deliver-only <desc:export 0> [<desc:import-object 1> "
		"<desc:import-object 2> <desc:import-object 3>]>",
		"too many imports"},
	    {OCAPN_SESSION_MAX_ANSWERS, 1,
		"<op:deliver-only <desc:export 0> []>",
		"too many answers"},
	};
	for (size_t i = 0; i < sizeof(lim) / sizeof(*lim); i++) {
		ocapn_vat *va, *vb;
		assert_int_equal(ocapn_vat_new(NULL, &va), 0);
		assert_int_equal(ocapn_vat_new(NULL, &vb), 0);
		struct h_pair p;
		memset(&p, 0, sizeof(p));
		p.va = va;
		p.vb = vb;
		ocapn_locator *la = h_locator("alice"), *lb = h_locator("bob");
		assert_int_equal(ocapn_session_new(va, OCAPN_ROLE_INITIATOR, la,
				     OCAPN_DIALECT_AUTO, &p.a),
		    0);
		assert_int_equal(ocapn_session_new(vb, OCAPN_ROLE_ACCEPTOR, lb,
				     OCAPN_DIALECT_AUTO, &p.b),
		    0);
		ocapn_locator_free(la);
		ocapn_locator_free(lb);
		assert_int_equal(ocapn_session_set_limit(p.b, lim[i].which,
				     lim[i].value),
		    0);
		if (lim[i].which == OCAPN_SESSION_MAX_MESSAGE) {
			/* the hello itself is larger: raise after it */
		}
		assert_int_equal(ocapn_session_start(p.a), 0);
		assert_int_equal(ocapn_session_start(p.b), 0);
		if (lim[i].which == OCAPN_SESSION_MAX_MESSAGE) {
			/* hellos exceed 64 bytes: expect the abort at the
			 * first message, the hello */
			h_pump(&p);
			assert_aborted(p.b, lim[i].reason);
		} else {
			h_pump(&p);
			assert_int_equal(ocapn_session_get_state(p.b),
			    OCAPN_SESSION_ACTIVE);
			if (lim[i].which == OCAPN_SESSION_MAX_ANSWERS) {
				feed_text(p.b, "<op:deliver <desc:export 0> "
					       "['fetch :00] 0 f>");
				feed_text(p.b, "<op:deliver <desc:export 0> "
					       "['fetch :00] 1 f>");
			} else {
				feed_text(p.b, lim[i].input);
			}
			ocapn_vat_run(p.vb, 0);
			assert_aborted(p.b, lim[i].reason);
		}
		fprintf(stderr, "  limit %d -> %s\n", (int)lim[i].which,
		    ocapn_session_abort_reason(p.b));
		ocapn_session_free(p.a);
		ocapn_session_free(p.b);
		ocapn_vat_free(va);
		ocapn_vat_free(vb);
		h_log_clear(&p.a2b);
		h_log_clear(&p.b2a);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_hostile_table),
	    cmocka_unit_test(test_hostile_handshake),
	    cmocka_unit_test(test_limits),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
