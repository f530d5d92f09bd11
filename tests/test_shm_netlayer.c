/*
 * The shm netlayer: designator authentication (the exchange alone, then
 * hostile peers against a real netlayer), CapTP scenarios through two
 * runtimes on one loop (echo of every value kind, pipelining, GC, abort,
 * large messages), a session decoding messages a peer rewrites while it
 * reads them, a peer killed mid-stream in another process, many sessions.
 * Every wait is bounded; nothing asserts on time.
 */
#define _GNU_SOURCE
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <ocapn/ocapn.h>
#include <ocapn/runtime.h>

#include "../src/netlayers/shm/shm_auth.h"
#include "../src/netlayers/shm/shm_linux.h"
#include "../src/netlayers/shm/shm_netlayer.h"
#include "../tools/ocapn/suite_objects.h"
#include "rt_testutil.h"
#include "testutil.h"

#define SWISS_ECHO "IO58l1laTyhcrgDKbEzFOO32MDd6zE5w"
#define CAR_BUILDER "JadQ0++RzsD4M+40uLxTWVaVqM10DcBJ"
#define GREETER "VMDDd1voKWarCe2GvgLbxbVFysNzRPzx"

static void
seed_of(uint8_t b, uint8_t seed[32])
{
	memset(seed, b, 32);
}

static void
keypair_of(uint8_t b, ocapn__keypair *kp)
{
	uint8_t seed[32];
	seed_of(b, seed);
	assert_int_equal(ocapn__keypair_from_seed(kp, seed), 0);
}

/* ------------------------------------------------------------------ */
/* The exchange alone                                                   */
/* ------------------------------------------------------------------ */

struct xchg {
	ocapn__keypair ki, ka;
	struct ocapn__shm_auth i, a;
	uint8_t hi[OCAPN__SHM_HELLO_LEN], ha[OCAPN__SHM_HELLO_LEN];
	uint8_t pi[OCAPN__SHM_PROOF_LEN], pa[OCAPN__SHM_PROOF_LEN];
};

static void
xchg_start(struct xchg *x, uint8_t ib, uint8_t ab, const uint8_t *expect)
{
	keypair_of(ib, &x->ki);
	keypair_of(ab, &x->ka);
	ocapn__shm_auth_init(&x->i, &x->ki, true, expect ? expect : x->ka.pk,
	    NULL);
	ocapn__shm_auth_init(&x->a, &x->ka, false, NULL, NULL);
	ocapn__shm_auth_hello(&x->i, x->hi);
	ocapn__shm_auth_hello(&x->a, x->ha);
}

static void
test_auth_honest(void **state)
{
	(void)state;
	struct xchg x;
	xchg_start(&x, 1, 2, NULL);
	size_t n;
	/* hellos cross, proofs cross */
	assert_int_equal(ocapn__shm_auth_input(&x.i, x.ha, sizeof(x.ha), x.pi,
			     &n),
	    0);
	assert_int_equal(n, OCAPN__SHM_PROOF_LEN);
	assert_int_equal(ocapn__shm_auth_input(&x.a, x.hi, sizeof(x.hi), x.pa,
			     &n),
	    0);
	assert_int_equal(n, OCAPN__SHM_PROOF_LEN);
	assert_int_equal(ocapn__shm_auth_input(&x.i, x.pa, sizeof(x.pa), NULL,
			     &n),
	    0);
	assert_int_equal(n, 0);
	assert_int_equal(ocapn__shm_auth_input(&x.a, x.pi, sizeof(x.pi), NULL,
			     &n),
	    0);
	assert_int_equal(x.i.state, OCAPN__SHM_AUTH_DONE);
	assert_int_equal(x.a.state, OCAPN__SHM_AUTH_DONE);
	assert_memory_equal(x.a.peer_key, x.ki.pk, 32);
	assert_memory_equal(x.i.peer_key, x.ka.pk, 32);
	/* the bytes are what docs/shm.md says */
	assert_memory_equal(x.hi, "<15'ocapn-shm:hello32:", 22);
	assert_memory_equal(x.hi + 22, x.ki.pk, 32);
	assert_memory_equal(x.hi + 54, "32:", 3);
	assert_memory_equal(x.hi + 57, x.i.nonce, 32);
	assert_int_equal(x.hi[89], '>');
	assert_memory_equal(x.pi, "<15'ocapn-shm:proof64:", 22);
	assert_int_equal(x.pi[86], '>');
	uint8_t sb[OCAPN__SHM_SIGNED_MAX];
	size_t sl = ocapn__shm_auth_signed_bytes(true, x.ki.pk, x.ka.pk,
	    x.i.nonce, x.a.nonce, sb);
	assert_int_equal(sl, 172);
	assert_memory_equal(sb, "<16'ocapn-shm:auth-19'initiator32:", 34);
	assert_int_equal(ocapn__verify(x.ki.pk, sb, sl, x.pi + 22), 0);
	sl = ocapn__shm_auth_signed_bytes(false, x.ki.pk, x.ka.pk, x.i.nonce,
	    x.a.nonce, sb);
	assert_int_equal(sl, 171);
	assert_int_equal(ocapn__verify(x.ka.pk, sb, sl, x.pa + 22), 0);
	/* nothing more is accepted */
	assert_int_equal(ocapn__shm_auth_input(&x.a, x.pi, sizeof(x.pi), NULL,
			     &n),
	    OCAPN_E_STATE);
}

static void
test_auth_wrong_key(void **state)
{
	(void)state;
	ocapn__keypair other;
	keypair_of(9, &other);
	struct xchg x;
	/* the initiator dialled key 9; key 2 answers */
	xchg_start(&x, 1, 2, other.pk);
	size_t n;
	assert_int_equal(ocapn__shm_auth_input(&x.i, x.ha, sizeof(x.ha), x.pi,
			     &n),
	    OCAPN_E_SIGNATURE);
	assert_int_equal(n, 0); /* nothing signed for the wrong peer */
	assert_string_equal(x.i.reason, "authentication: the peer's designator "
					"key is not the one dialled");
	/* sticky */
	assert_int_equal(ocapn__shm_auth_input(&x.i, x.ha, sizeof(x.ha), x.pi,
			     &n),
	    OCAPN_E_SIGNATURE);
}

static void
test_auth_replayed_proof(void **state)
{
	(void)state;
	/* A first exchange: record the initiator's proof. */
	struct xchg x;
	xchg_start(&x, 1, 2, NULL);
	size_t n;
	assert_int_equal(ocapn__shm_auth_input(&x.i, x.ha, sizeof(x.ha), x.pi,
			     &n),
	    0);
	uint8_t old_hello[OCAPN__SHM_HELLO_LEN], old_proof[OCAPN__SHM_PROOF_LEN];
	memcpy(old_hello, x.hi, sizeof(old_hello));
	memcpy(old_proof, x.pi, sizeof(old_proof));
	/* A second connection to the same acceptor: an eavesdropper
	 * replays the initiator's old hello and proof. */
	struct ocapn__shm_auth a2;
	ocapn__shm_auth_init(&a2, &x.ka, false, NULL, NULL);
	uint8_t p[OCAPN__SHM_PROOF_LEN];
	assert_int_equal(ocapn__shm_auth_input(&a2, old_hello,
			     sizeof(old_hello), p, &n),
	    0);
	assert_int_equal(ocapn__shm_auth_input(&a2, old_proof,
			     sizeof(old_proof), NULL, &n),
	    OCAPN_E_SIGNATURE);
	assert_non_null(strstr(a2.reason, "does not verify"));
	/* The acceptor's proof replayed to a new initiator fails too. */
	assert_int_equal(ocapn__shm_auth_input(&x.a, x.hi, sizeof(x.hi), x.pa,
			     &n),
	    0);
	struct ocapn__shm_auth i2;
	ocapn__shm_auth_init(&i2, &x.ki, true, x.ka.pk, NULL);
	assert_int_equal(ocapn__shm_auth_input(&i2, x.ha, sizeof(x.ha), p, &n),
	    0);
	assert_int_equal(ocapn__shm_auth_input(&i2, x.pa, sizeof(x.pa), NULL,
			     &n),
	    OCAPN_E_SIGNATURE);
}

static void
test_auth_reflection(void **state)
{
	(void)state;
	struct xchg x;
	size_t n;
	uint8_t p[OCAPN__SHM_PROOF_LEN];
	/* Our own hello comes back: refused before anything is signed. */
	xchg_start(&x, 1, 1, NULL);
	assert_int_equal(ocapn__shm_auth_input(&x.i, x.hi, sizeof(x.hi), p, &n),
	    OCAPN_E_PROTOCOL);
	assert_int_equal(n, 0);
	assert_string_equal(x.i.reason,
	    "authentication: the peer reflected our challenge");
	/* A peer claiming our key with its own nonce gets our proof, and
	 * reflects it: it was signed as the initiator's, so it does not
	 * verify as the acceptor's. */
	xchg_start(&x, 1, 1, NULL);
	assert_int_equal(ocapn__shm_auth_input(&x.i, x.ha, sizeof(x.ha), x.pi,
			     &n),
	    0);
	assert_int_equal(ocapn__shm_auth_input(&x.i, x.pi, sizeof(x.pi), NULL,
			     &n),
	    OCAPN_E_SIGNATURE);
	assert_non_null(strstr(x.i.reason, "reflected"));
}

static void
test_auth_garbage(void **state)
{
	(void)state;
	struct xchg x;
	size_t n;
	uint8_t p[OCAPN__SHM_PROOF_LEN];
	uint8_t junk[OCAPN__SHM_HELLO_LEN];
	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (uint8_t)(i * 37 + 11);
	xchg_start(&x, 1, 2, NULL);
	assert_int_equal(ocapn__shm_auth_input(&x.a, junk, sizeof(junk), p, &n),
	    OCAPN_E_PROTOCOL);
	assert_string_equal(x.a.reason,
	    "authentication: expected an ocapn-shm:hello record");
	/* one byte off in the framing */
	xchg_start(&x, 1, 2, NULL);
	x.hi[54] = '4';
	assert_int_equal(ocapn__shm_auth_input(&x.a, x.hi, sizeof(x.hi), p, &n),
	    OCAPN_E_PROTOCOL);
	/* a hello one byte short */
	xchg_start(&x, 1, 2, NULL);
	assert_int_equal(ocapn__shm_auth_input(&x.a, x.hi, sizeof(x.hi) - 1, p,
			     &n),
	    OCAPN_E_PROTOCOL);
	/* too much: refused before it is copied */
	static uint8_t big[1 << 16];
	memcpy(big, x.hi, sizeof(x.hi));
	xchg_start(&x, 1, 2, NULL);
	assert_int_equal(ocapn__shm_auth_input(&x.a, big, sizeof(big), p, &n),
	    OCAPN_E_PROTOCOL);
	assert_string_equal(x.a.reason,
	    "authentication: message too long");
	/* out of order: a proof first, a second hello */
	xchg_start(&x, 1, 2, NULL);
	assert_int_equal(ocapn__shm_auth_input(&x.i, x.ha, sizeof(x.ha), x.pi,
			     &n),
	    0);
	assert_int_equal(ocapn__shm_auth_input(&x.a, x.pi, sizeof(x.pi), p, &n),
	    OCAPN_E_PROTOCOL);
	assert_string_equal(x.a.reason, "authentication: proof before hello");
	xchg_start(&x, 1, 2, NULL);
	assert_int_equal(ocapn__shm_auth_input(&x.a, x.hi, sizeof(x.hi), p, &n),
	    0);
	assert_int_equal(ocapn__shm_auth_input(&x.a, x.hi, sizeof(x.hi), p, &n),
	    OCAPN_E_PROTOCOL);
	assert_string_equal(x.a.reason, "authentication: second hello");
	/* a proof with a flipped signature bit */
	xchg_start(&x, 1, 2, NULL);
	assert_int_equal(ocapn__shm_auth_input(&x.i, x.ha, sizeof(x.ha), x.pi,
			     &n),
	    0);
	assert_int_equal(ocapn__shm_auth_input(&x.a, x.hi, sizeof(x.hi), p, &n),
	    0);
	x.pi[40] ^= 1;
	assert_int_equal(ocapn__shm_auth_input(&x.a, x.pi, sizeof(x.pi), NULL,
			     &n),
	    OCAPN_E_SIGNATURE);
}

/* ------------------------------------------------------------------ */
/* Two runtimes on one loop                                             */
/* ------------------------------------------------------------------ */

struct world {
	uv_loop_t loop;
	ocapn_runtime *server, *client;
	ocapn_netlayer *snl, *cnl;
	uv_timer_t guard;
	bool timed_out;
	char dir[64];
};

static void
guard_cb(uv_timer_t *t)
{
	struct world *w = t->data;
	w->timed_out = true;
	uv_stop(&w->loop);
}

static void
tmpdir(char *dir, size_t n)
{
	snprintf(dir, n, "/tmp/ocapn-shmnl-XXXXXX");
	assert_non_null(mkdtemp(dir));
}

static void
world_init(struct world *w, size_t buffer)
{
	memset(w, 0, sizeof(*w));
	tmpdir(w->dir, sizeof(w->dir));
	assert_int_equal(uv_loop_init(&w->loop), 0);
	assert_int_equal(ocapn_runtime_new(&w->loop, NULL, NULL, &w->server),
	    0);
	assert_int_equal(ocapn_runtime_new(&w->loop, NULL, NULL, &w->client),
	    0);
	uint8_t s1[32], s2[32];
	seed_of(0x51, s1);
	seed_of(0xc1, s2);
	assert_int_equal(ocapn_shm_netlayer_new(&w->loop, w->dir, s1, NULL,
			     &w->snl),
	    0);
	assert_int_equal(ocapn_shm_netlayer_new(&w->loop, w->dir, s2, NULL,
			     &w->cnl),
	    0);
	if (buffer) {
		assert_int_equal(ocapn_shm_netlayer_set_buffer(w->snl, buffer),
		    0);
		assert_int_equal(ocapn_shm_netlayer_set_buffer(w->cnl, buffer),
		    0);
	}
	assert_int_equal(ocapn_runtime_add_netlayer(w->server, w->snl), 0);
	assert_int_equal(ocapn_runtime_add_netlayer(w->client, w->cnl), 0);
	assert_int_equal(suite_register(ocapn_runtime_vat(w->server)), 0);
	uv_timer_init(&w->loop, &w->guard);
	w->guard.data = w;
}

static void
run_until(struct world *w, const int *flag)
{
	uv_timer_start(&w->guard, guard_cb, 30000, 0);
	while (!*flag && !w->timed_out)
		uv_run(&w->loop, UV_RUN_ONCE);
	uv_timer_stop(&w->guard);
	if (w->timed_out)
		fail_msg("timed out waiting");
}

static void
closed_cb(void *user)
{
	(*(int *)user)++;
}

static void
world_free(struct world *w)
{
	int closed = 0;
	ocapn_runtime_close(w->client, closed_cb, &closed);
	ocapn_runtime_close(w->server, closed_cb, &closed);
	uv_timer_start(&w->guard, guard_cb, 30000, 0);
	while (closed < 2 && !w->timed_out)
		uv_run(&w->loop, UV_RUN_ONCE);
	uv_timer_stop(&w->guard);
	assert_false(w->timed_out);
	uv_close((uv_handle_t *)&w->guard, NULL);
	ocapn_runtime_free(w->client);
	ocapn_runtime_free(w->server);
	uv_run(&w->loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&w->loop), 0);
	assert_int_equal(rmdir(w->dir), 0); /* socket files removed */
}

static ocapn_ref *
enliven(struct world *w, const char *swiss)
{
	return tu_enliven(w->server, w->snl, w->client, swiss);
}

/* Send `args` to `target`, wait, return the result (caller releases). */
static ocapn_ref *
call_wait(struct world *w, ocapn_ref *target, const ocapn_value *args,
    struct tu_result *r)
{
	ocapn_ref *res;
	assert_int_equal(ocapn_send(target, args, &res), 0);
	memset(r, 0, sizeof(*r));
	ocapn_when(res, tu_settled, r);
	run_until(w, &r->done);
	return res;
}

static const char *const kinds[] = {
    "t", "f", "0", "-1", "9223372036854775807", "-9223372036854775808",
    "18446744073709551616", "-1180591620717411303424", "1.5", "-0.0", "inf",
    "nan", "1.5f", "\"unicode: \\u{e9}\\u{4e2d}\"", "'sym", ":6279746573",
    ":", "[]", "[1 \"two\" 'three]", "{\"key\": 1, \"other\": \"v\"}",
    "#{1 2 3}", "<pair 'a 'b>", "<user-record 'my-tag [1 2]>",
    "<exn:fail:mystery>", "[[[[[[[[[[\"deep\"]]]]]]]]]]",
};

static void
test_rt_echo_every_kind(void **state)
{
	(void)state;
	struct world w;
	world_init(&w, 0);
	ocapn_ref *echo = enliven(&w, SWISS_ECHO);
	for (size_t i = 0; i < sizeof(kinds) / sizeof(*kinds); i++) {
		ocapn_value *v = tu_rt_parse(w.client, kinds[i]);
		ocapn_value list;
		ocapn_value_set_list(&list, v, 1);
		struct tu_result r;
		ocapn_ref *res = call_wait(&w, echo, &list, &r);
		assert_true(r.ok);
		char want[256];
		ocapn_buffer b;
		ocapn_buffer_init(&b);
		assert_int_equal(ocapn_notation_print(v, 0, &b, NULL), 0);
		/* float32 travels as float64 */
		if (strcmp(kinds[i], "1.5f") == 0)
			snprintf(want, sizeof(want), "[1.5]");
		else
			snprintf(want, sizeof(want), "[%.*s]", (int)b.len,
			    b.data);
		ocapn_buffer_release(&b, NULL);
		assert_string_equal(r.text, want);
		ocapn_ref_release(res);
	}
	/* One session each way, authenticated: the server's session is
	 * with the client's designator. */
	assert_int_equal(ocapn_runtime_connections(w.client), 1);
	assert_int_equal(ocapn_runtime_connections(w.server), 1);
	ocapn_session *ss = ocapn_vat_find_session(ocapn_runtime_vat(w.server),
	    ocapn_netlayer_locator(w.cnl));
	assert_non_null(ss);
	assert_int_equal(ocapn_session_get_state(ss), OCAPN_SESSION_ACTIVE);
	ocapn_ref_release(echo);
	world_free(&w);
}

static void
test_rt_pipelining(void **state)
{
	(void)state;
	struct world w;
	world_init(&w, 0);
	/* builder <- (); factory <- spec; car <- (), nothing awaited */
	ocapn_ref *builder = enliven(&w, CAR_BUILDER);
	ocapn_ref *factory, *car, *vroom;
	assert_int_equal(ocapn_send(builder, tu_rt_parse(w.client, "[]"), &factory),
	    0);
	assert_int_equal(ocapn_send(factory,
			     tu_rt_parse(w.client, "[['blue 'roadster]]"), &car),
	    0);
	assert_int_equal(ocapn_send(car, tu_rt_parse(w.client, "[]"), &vroom), 0);
	struct tu_result rv = {0};
	ocapn_when(vroom, tu_settled, &rv);
	run_until(&w, &rv.done);
	assert_true(rv.ok);
	assert_string_equal(rv.text, "\"Vroom! I am a blue roadster car!\"");
	ocapn_ref *all[] = {builder, factory, car, vroom};
	for (size_t i = 0; i < 4; i++)
		ocapn_ref_release(all[i]);
	world_free(&w);
}

struct probe {
	int calls;
	char last[128];
};

static int
probe_call(ocapn_vat *vat, ocapn_ref *self, const ocapn_value *args,
    ocapn_ref *resolver, void *user)
{
	struct probe *pr = user;
	(void)vat;
	(void)self;
	pr->calls++;
	ocapn_buffer b;
	ocapn_buffer_init(&b);
	if (ocapn_notation_print(args, 0, &b, NULL) == 0)
		snprintf(pr->last, sizeof(pr->last), "%.*s", (int)b.len,
		    b.data);
	ocapn_buffer_release(&b, NULL);
	if (resolver) {
		ocapn_value t;
		ocapn_value_set_bool(&t, true);
		return ocapn_resolve(resolver, &t);
	}
	return OCAPN_OK;
}

static ocapn_session *
client_session(struct world *w)
{
	return ocapn_vat_find_session(ocapn_runtime_vat(w->client),
	    ocapn_netlayer_locator(w->snl));
}

static ocapn_session *
server_session(struct world *w)
{
	return ocapn_vat_find_session(ocapn_runtime_vat(w->server),
	    ocapn_netlayer_locator(w->cnl));
}

static bool
stat_is(ocapn_session *s, ocapn_session_stat st, uint64_t v)
{
	return s && ocapn_session_stat_get(s, st) == v;
}

/* Run the loop until `cond` holds (bounded). */
#define RUN_UNTIL(w, cond)                                                     \
	do {                                                                   \
		uv_timer_start(&(w)->guard, guard_cb, 30000, 0);               \
		while (!(cond) && !(w)->timed_out)                             \
			uv_run(&(w)->loop, UV_RUN_ONCE);                       \
		uv_timer_stop(&(w)->guard);                                    \
		if ((w)->timed_out)                                            \
			fail_msg("timed out waiting for " #cond);              \
	} while (0)

static void
test_rt_gc(void **state)
{
	(void)state;
	struct world w;
	world_init(&w, 0);
	struct probe pr = {0};
	ocapn_ref *probe;
	assert_int_equal(ocapn_vat_spawn(ocapn_runtime_vat(w.client),
			     probe_call, &pr, NULL, &probe),
	    0);
	/* The greeter calls our probe back: the probe is exported to the
	 * server, which drops it after the call. */
	ocapn_ref *greeter = enliven(&w, GREETER);
	ocapn_value arg, list;
	ocapn_value_set_ref(&arg, probe);
	ocapn_value_set_list(&list, &arg, 1);
	struct tu_result r;
	ocapn_ref *res = call_wait(&w, greeter, &list, &r);
	assert_true(r.ok);
	assert_int_equal(pr.calls, 1);
	assert_string_equal(pr.last, "[\"Hello\"]");
	ocapn_session *cs = client_session(&w);
	ocapn_session *ss = server_session(&w);
	/* the server collected the probe: our export is freed */
	RUN_UNTIL(&w, stat_is(cs, OCAPN_STAT_EXPORTS, 0));
	RUN_UNTIL(&w, stat_is(ss, OCAPN_STAT_IMPORTS, 0));
	/* the server still answers our questions until we drop them */
	assert_true(ocapn_session_stat_get(ss, OCAPN_STAT_ANSWERS) > 0);
	ocapn_ref_release(res);
	ocapn_ref_release(greeter);
	RUN_UNTIL(&w, stat_is(ss, OCAPN_STAT_ANSWERS, 0));
	RUN_UNTIL(&w, stat_is(cs, OCAPN_STAT_QUESTIONS, 0));
	/* the bootstrap fetch promise was dropped too */
	RUN_UNTIL(&w, stat_is(ss, OCAPN_STAT_EXPORTS, 0));
	ocapn_ref_release(probe);
	world_free(&w);
}

static void
test_rt_abort(void **state)
{
	(void)state;
	struct world w;
	world_init(&w, 0);
	ocapn_ref *echo = enliven(&w, SWISS_ECHO);
	struct tu_result r;
	ocapn_ref *res = call_wait(&w, echo, tu_rt_parse(w.client, "[1]"), &r);
	assert_true(r.ok);
	ocapn_ref_release(res);
	/* Questions in flight, then the server aborts the session. */
	ocapn_ref *r1, *r2;
	ocapn_value *args = tu_rt_parse(w.client, "[1]");
	assert_int_equal(ocapn_send(echo, args, &r1), 0);
	assert_int_equal(ocapn_send(r1, args, &r2), 0);
	struct tu_result a1 = {0}, a2 = {0};
	ocapn_when(r1, tu_settled, &a1);
	ocapn_when(r2, tu_settled, &a2);
	ocapn_session *ss = server_session(&w);
	ocapn_session *cs = client_session(&w);
	assert_non_null(ss);
	ocapn_session_abort(ss, "maintenance");
	run_until(&w, &a2.done);
	run_until(&w, &a1.done);
	assert_false(a2.ok);
	/* our session ended with the server's reason, and the transport
	 * went away on both sides */
	(void)cs;
	RUN_UNTIL(&w, ocapn_runtime_connections(w.client) == 0 &&
	    ocapn_runtime_connections(w.server) == 0);
	/* A new call opens a new session. */
	ocapn_ref *echo2 = enliven(&w, SWISS_ECHO);
	res = call_wait(&w, echo2, tu_rt_parse(w.client, "['again]"), &r);
	assert_true(r.ok);
	assert_string_equal(r.text, "['again]");
	ocapn_ref_release(res);
	ocapn_ref_release(r1);
	ocapn_ref_release(r2);
	ocapn_ref_release(echo);
	ocapn_ref_release(echo2);
	world_free(&w);
}

/* Large bytestrings both ways: one zero-copy packet (1 MiB) and a message
 * fragmented through the shared buffer (6 MiB through 4 MiB). */
static void
test_rt_large(void **state)
{
	(void)state;
	struct world w;
	world_init(&w, 0);
	ocapn_ref *echo = enliven(&w, SWISS_ECHO);
	size_t sizes[] = {1u << 20, 6u << 20};
	for (size_t k = 0; k < 2; k++) {
		size_t big = sizes[k];
		uint8_t *blob = malloc(big);
		for (size_t i = 0; i < big; i++)
			blob[i] = (uint8_t)(i * 131 + 7 + k);
		ocapn_value item, args;
		ocapn_value_set_bytes(&item, blob, big);
		ocapn_value_set_list(&args, &item, 1);
		struct tu_result r;
		ocapn_ref *res = call_wait(&w, echo, &args, &r);
		assert_true(r.ok);
		const ocapn_value *bv;
		assert_int_equal(ocapn_promise_state(res, &bv), OCAPN_OK);
		assert_int_equal(bv->u.items[0].len, big);
		assert_memory_equal(bv->u.items[0].u.p, blob, big);
		free(blob);
		ocapn_ref_release(res);
	}
	ocapn_ref_release(echo);
	world_free(&w);
}

/* ------------------------------------------------------------------ */
/* Hostile peers against a real netlayer                                */
/* ------------------------------------------------------------------ */

enum raw_mode {
	RAW_HONEST = 1,  /* the exchange as it should be */
	RAW_GARBAGE,     /* 90 bytes that are not a hello */
	RAW_TOO_MUCH,    /* a 1 MiB "hello" */
	RAW_REFLECT,     /* send the peer's own hello back */
	RAW_REPLAY,      /* a fresh hello, then an old proof */
	RAW_SILENT       /* never says anything */
};

/* A peer made from the channel and the exchange, driven by hand. */
struct raw {
	enum raw_mode mode;
	ocapn__keypair kp;
	struct ocapn__shm_auth auth;
	struct ocapn__shm_auth_ops ops;
	ocapn__shm_listener *l;
	ocapn__shm_conn *ch;
	uint8_t proof_sent[OCAPN__SHM_PROOF_LEN];
	bool sent_proof;
	const uint8_t *replay; /* RAW_REPLAY: the proof to send */
};

static int
raw_start(void *user, ocapn__shm_conn *ch)
{
	struct raw *r = user;
	uint8_t hello[OCAPN__SHM_HELLO_LEN];
	switch (r->mode) {
	case RAW_GARBAGE:
		memset(hello, 'g', sizeof(hello));
		return ocapn__shm_auth_send(ch, hello, sizeof(hello));
	case RAW_TOO_MUCH: {
		size_t n = 1u << 20;
		uint8_t *big = calloc(1, n);
		ocapn__shm_auth_hello(&r->auth, big);
		int rc = ocapn__shm_auth_send(ch, big, n);
		free(big);
		return rc;
	}
	case RAW_REFLECT:
	case RAW_SILENT:
		return OCAPN_OK;
	default:
		ocapn__shm_auth_hello(&r->auth, hello);
		return ocapn__shm_auth_send(ch, hello, sizeof(hello));
	}
}

static int
raw_recv(void *user, ocapn__shm_conn *ch, const uint8_t *msg, size_t len,
    bool *done)
{
	struct raw *r = user;
	uint8_t proof[OCAPN__SHM_PROOF_LEN];
	size_t n = 0;
	switch (r->mode) {
	case RAW_REFLECT:
		if (r->sent_proof)
			return OCAPN_OK;
		r->sent_proof = true;
		return ocapn__shm_auth_send(ch, msg, len);
	case RAW_REPLAY:
		if (r->sent_proof)
			return OCAPN_OK;
		r->sent_proof = true;
		return ocapn__shm_auth_send(ch, r->replay,
		    OCAPN__SHM_PROOF_LEN);
	case RAW_HONEST: {
		int rc = ocapn__shm_auth_input(&r->auth, msg, len, proof, &n);
		if (rc)
			return rc;
		if (n) {
			memcpy(r->proof_sent, proof, n);
			r->sent_proof = true;
			rc = ocapn__shm_auth_send(ch, proof, n);
		}
		*done = r->auth.state == OCAPN__SHM_AUTH_DONE;
		return rc;
	}
	default:
		return OCAPN_OK;
	}
}

static void
raw_init(struct raw *r, enum raw_mode mode, uint8_t keybyte, bool initiator,
    const uint8_t *expect)
{
	memset(r, 0, sizeof(*r));
	r->mode = mode;
	keypair_of(keybyte, &r->kp);
	ocapn__shm_auth_init(&r->auth, &r->kp, initiator, expect, NULL);
	r->ops.start = raw_start;
	r->ops.recv = raw_recv;
	r->ops.user = r;
}

static struct ocapn__shm_params
raw_params(struct raw *r)
{
	struct ocapn__shm_params p;
	ocapn__shm_params_default(&p);
	p.auth = &r->ops;
	return p;
}

static void
raw_step(struct raw *r)
{
	if (r->l && !r->ch)
		(void)ocapn__shm_accept(r->l, &r->ch);
	if (r->ch)
		(void)ocapn__shm_progress(r->ch, OCAPN__SHM_READY_ALL);
}

static void
raw_free(struct raw *r)
{
	ocapn__shm_free(r->ch);
	r->ch = NULL;
	if (r->l)
		ocapn__shm_listener_close(r->l);
	r->l = NULL;
}

/* Run the world's loop and the raw peer until `cond` (bounded). */
#define RAW_UNTIL(w, r, cond)                                                  \
	do {                                                                   \
		int k_;                                                        \
		for (k_ = 0; k_ < 20000 && !(cond); k_++) {                    \
			uv_run(&(w)->loop, UV_RUN_NOWAIT);                     \
			raw_step(r);                                           \
			if (k_ > 50)                                           \
				usleep(500);                                   \
		}                                                              \
		if (!(cond))                                                   \
			fail_msg("timed out waiting for " #cond);              \
	} while (0)

static const char *
shm_path_of(ocapn_netlayer *nl)
{
	size_t n;
	return ocapn_locator_hint(ocapn_netlayer_locator(nl), "path", &n);
}

static bool
refused_with(ocapn_netlayer *nl, uint64_t before, const char *want)
{
	const char *last;
	return ocapn__shm_nl_refused(nl, &last) > before &&
	    strstr(last, want) != NULL;
}

/* A hostile initiator against the server's listener: refused with a
 * reason, and the server never sees a connection. */
static void
hostile_initiator(struct world *w, enum raw_mode mode, const char *want,
    const uint8_t *replay, uint8_t keybyte)
{
	struct raw r;
	raw_init(&r, mode, keybyte, true, NULL);
	r.replay = replay;
	struct ocapn__shm_params p = raw_params(&r);
	uint64_t before = ocapn__shm_nl_refused(w->snl, NULL);
	assert_int_equal(ocapn__shm_connect(shm_path_of(w->snl), &p, NULL,
			     &r.ch),
	    0);
	RAW_UNTIL(w, &r, refused_with(w->snl, before, want));
	assert_int_equal(ocapn_runtime_connections(w->server), 0);
	/* the refused peer sees the connection end */
	RAW_UNTIL(w, &r, ocapn__shm_state(r.ch) == OCAPN__SHM_DONE);
	raw_free(&r);
}

static void
test_nl_hostile_initiators(void **state)
{
	(void)state;
	struct world w;
	world_init(&w, 0);
	hostile_initiator(&w, RAW_GARBAGE, "expected an ocapn-shm:hello", NULL,
	    0x77);
	hostile_initiator(&w, RAW_TOO_MUCH, "message too long", NULL, 0x77);
	hostile_initiator(&w, RAW_REFLECT, "reflected our challenge", NULL,
	    0x77);
	/* An honest initiator with the client's key is accepted; its
	 * proof, replayed in a new connection, is not. */
	struct raw h;
	raw_init(&h, RAW_HONEST, 0xc1, true, NULL);
	struct ocapn__shm_params p = raw_params(&h);
	assert_int_equal(ocapn__shm_connect(shm_path_of(w.snl), &p, NULL,
			     &h.ch),
	    0);
	RAW_UNTIL(&w, &h, ocapn__shm_state(h.ch) == OCAPN__SHM_READY &&
	    ocapn_runtime_connections(w.server) == 1);
	assert_memory_equal(h.auth.peer_key, "", 0);
	uint8_t old[OCAPN__SHM_PROOF_LEN];
	memcpy(old, h.proof_sent, sizeof(old));
	raw_free(&h);
	RAW_UNTIL(&w, &h, ocapn_runtime_connections(w.server) == 0);
	hostile_initiator(&w, RAW_REPLAY, "does not verify", old, 0xc1);
	/* A silent peer holds a slot only until the handshake deadline
	 * (10 s): not waited for here; the server still serves. */
	ocapn_ref *echo = enliven(&w, SWISS_ECHO);
	struct tu_result r;
	ocapn_ref *res = call_wait(&w, echo, tu_rt_parse(w.client, "['still]"), &r);
	assert_true(r.ok);
	ocapn_ref_release(res);
	ocapn_ref_release(echo);
	world_free(&w);
}

/* A hostile acceptor: the client's call fails with the reason. */
static void
hostile_acceptor(struct world *w, enum raw_mode mode, uint8_t keybyte,
    uint8_t named_key, const char *want)
{
	struct raw r;
	raw_init(&r, mode, keybyte, false, NULL);
	struct ocapn__shm_params p = raw_params(&r);
	char path[128];
	snprintf(path, sizeof(path), "%s/raw.sock", w->dir);
	assert_int_equal(ocapn__shm_listen(path, &p, NULL, &r.l), 0);
	/* a URI naming key `named_key` at the raw listener's path */
	ocapn__keypair named;
	keypair_of(named_key, &named);
	ocapn_buffer d;
	ocapn_buffer_init(&d);
	assert_int_equal(ocapn_base32_encode(named.pk, 32, &d, NULL), 0);
	ocapn_locator *loc;
	assert_int_equal(ocapn_locator_new("shm", 3, (const char *)d.data, d.len,
			     NULL, &loc),
	    0);
	assert_int_equal(ocapn_locator_set_hint(loc, "path", 4, path,
			     strlen(path)),
	    0);
	ocapn_sturdyref *sr;
	assert_int_equal(ocapn_sturdyref_new(loc, (const uint8_t *)"x", 1, NULL,
			     &sr),
	    0);
	ocapn_ref *p2;
	assert_int_equal(ocapn_vat_enliven(ocapn_runtime_vat(w->client), sr,
			     &p2),
	    0);
	struct tu_result res = {0};
	ocapn_when(p2, tu_settled, &res);
	RAW_UNTIL(w, &r, res.done);
	assert_false(res.ok);
	if (!strstr(res.text, want))
		fail_msg("broken with \"%s\", expected \"%s\"", res.text, want);
	ocapn_ref_release(p2);
	ocapn_sturdyref_free(sr);
	ocapn_locator_free(loc);
	ocapn_buffer_release(&d, NULL);
	RAW_UNTIL(w, &r, ocapn_runtime_connections(w->client) == 0);
	raw_free(&r);
}

static void
test_nl_hostile_acceptors(void **state)
{
	(void)state;
	struct world w;
	world_init(&w, 0);
	hostile_acceptor(&w, RAW_HONEST, 0x22, 0x23,
	    "designator key is not the one dialled");
	hostile_acceptor(&w, RAW_REFLECT, 0x22, 0x22,
	    "reflected our challenge");
	hostile_acceptor(&w, RAW_GARBAGE, 0x22, 0x22,
	    "expected an ocapn-shm:hello");
	world_free(&w);
}

/* The CapTP location must name the authenticated peer. */
static void
test_session_expect_peer(void **state)
{
	(void)state;
	ocapn_vat *va, *vb;
	assert_int_equal(ocapn_vat_new(NULL, &va), 0);
	assert_int_equal(ocapn_vat_new(NULL, &vb), 0);
	ocapn_locator *la, *lb, *other;
	assert_int_equal(ocapn_locator_new("loopback", 8, "alice", 5, NULL,
			     &la),
	    0);
	assert_int_equal(ocapn_locator_new("loopback", 8, "bob", 3, NULL, &lb),
	    0);
	assert_int_equal(ocapn_locator_new("loopback", 8, "mallory", 7, NULL,
			     &other),
	    0);
	ocapn_session *a, *b;
	assert_int_equal(ocapn_session_new(va, OCAPN_ROLE_INITIATOR, la,
			     OCAPN_DIALECT_AUTO, &a),
	    0);
	assert_int_equal(ocapn_session_new(vb, OCAPN_ROLE_ACCEPTOR, lb,
			     OCAPN_DIALECT_AUTO, &b),
	    0);
	assert_int_equal(ocapn_session_expect_peer(b, other), 0);
	assert_int_equal(ocapn_session_start(a), 0);
	assert_int_equal(ocapn_session_start(b), 0);
	ocapn_loopback *lp;
	assert_int_equal(ocapn_loopback_new(a, b, &lp), 0);
	ocapn_loopback_pump(lp, 100);
	assert_int_equal(ocapn_session_get_state(b), OCAPN_SESSION_ABORTED);
	assert_string_equal(ocapn_session_abort_reason(b),
	    "op:start-session location is not the peer the netlayer "
	    "authenticated");
	assert_int_equal(ocapn_session_expect_peer(b, la), OCAPN_E_STATE);
	ocapn_loopback_free(lp);
	ocapn_session_free(a);
	ocapn_session_free(b);
	ocapn_locator_free(la);
	ocapn_locator_free(lb);
	ocapn_locator_free(other);
	ocapn_vat_free(va);
	ocapn_vat_free(vb);
}

/* ------------------------------------------------------------------ */
/* A message rewritten while the session decodes it                     */
/* ------------------------------------------------------------------ */

struct flipper {
	uint8_t *p;
	size_t len;
	atomic_int stop;
	atomic_ullong flips;
};

static void *
flip_thread(void *arg)
{
	struct flipper *f = arg;
	uint64_t s = 0x9e3779b97f4a7c15ull;
	while (!atomic_load_explicit(&f->stop, memory_order_relaxed)) {
		s ^= s << 13;
		s ^= s >> 7;
		s ^= s << 17;
		size_t i = (size_t)(s % f->len);
		uint8_t bit = (uint8_t)(1u << ((s >> 32) & 7));
		/* transient: wrong for a moment, then restored */
		((volatile uint8_t *)f->p)[i] ^= bit;
		for (volatile int k = 0; k < (int)((s >> 40) & 255); k++)
			;
		((volatile uint8_t *)f->p)[i] ^= bit;
		atomic_fetch_add_explicit(&f->flips, 1, memory_order_relaxed);
	}
	return NULL;
}

static void
session_pair(ocapn_vat **va, ocapn_vat **vb, ocapn_session **a,
    ocapn_session **b)
{
	assert_int_equal(ocapn_vat_new(NULL, va), 0);
	assert_int_equal(ocapn_vat_new(NULL, vb), 0);
	assert_int_equal(suite_register(*vb), 0);
	ocapn_locator *la, *lb;
	assert_int_equal(ocapn_locator_new("loopback", 8, "alice", 5, NULL,
			     &la),
	    0);
	assert_int_equal(ocapn_locator_new("loopback", 8, "bob", 3, NULL, &lb),
	    0);
	assert_int_equal(ocapn_session_new(*va, OCAPN_ROLE_INITIATOR, la,
			     OCAPN_DIALECT_AUTO, a),
	    0);
	assert_int_equal(ocapn_session_new(*vb, OCAPN_ROLE_ACCEPTOR, lb,
			     OCAPN_DIALECT_AUTO, b),
	    0);
	assert_int_equal(ocapn_session_start(*a), 0);
	assert_int_equal(ocapn_session_start(*b), 0);
	ocapn_loopback *lp;
	assert_int_equal(ocapn_loopback_new(*a, *b, &lp), 0);
	ocapn_loopback_pump(lp, 100);
	ocapn_loopback_free(lp);
	assert_int_equal(ocapn_session_get_state(*b), OCAPN_SESSION_ACTIVE);
	ocapn_locator_free(la);
	ocapn_locator_free(lb);
}

static void
test_session_decodes_rewritten_message(void **state)
{
	(void)state;
	/* op:deliver-only to the bootstrap object with every kind of atom
	 * in its arguments, a few KiB */
	ocapn_syrup_writer *wr = ocapn_syrup_writer_new(0, NULL);
	ocapn_syrup_write_record_begin(wr);
	ocapn_syrup_write_symbol(wr, "op:deliver-only", 15);
	ocapn_syrup_write_record_begin(wr);
	ocapn_syrup_write_symbol(wr, "desc:export", 11);
	ocapn_syrup_write_int(wr, 0);
	ocapn_syrup_write_record_end(wr);
	ocapn_syrup_write_list_begin(wr);
	ocapn_syrup_write_symbol(wr, "fetch", 5);
	ocapn_syrup_write_bytes(wr, SWISS_ECHO, 32);
	for (int k = 0; k < 16; k++) {
		ocapn_syrup_write_string(wr, "h\xc3\xa9llo w\xc3\xb6rld", 14);
		ocapn_syrup_write_bytes(wr, "\x00\x01\x02 bytes", 9);
		ocapn_syrup_write_int(wr, -123456789 * (k + 1));
		ocapn_syrup_write_bigint(wr, k & 1,
		    "123456789012345678901234567", 27);
		ocapn_syrup_write_float64(wr, 1.5 * k);
		ocapn_syrup_write_dict_begin(wr);
		ocapn_syrup_write_symbol(wr, "b", 1);
		ocapn_syrup_write_int(wr, k);
		ocapn_syrup_write_symbol(wr, "a", 1);
		ocapn_syrup_write_string(wr, "x", 1);
		ocapn_syrup_write_dict_end(wr);
		ocapn_syrup_write_set_begin(wr);
		ocapn_syrup_write_int(wr, 1);
		ocapn_syrup_write_int(wr, 2);
		ocapn_syrup_write_set_end(wr);
	}
	ocapn_syrup_write_list_end(wr);
	ocapn_syrup_write_record_end(wr);
	const uint8_t *enc;
	size_t len;
	assert_int_equal(ocapn_syrup_writer_finish(wr, &enc, &len), 0);
	/* the "shared region" */
	uint8_t *region = malloc(len);
	memcpy(region, enc, len);

	/* Untouched, it is accepted. */
	ocapn_vat *va, *vb;
	ocapn_session *a, *b;
	session_pair(&va, &vb, &a, &b);
	assert_int_equal(ocapn_session_feed_shared_message(b, region, len), 0);
	ocapn_vat_run(vb, 0);
	assert_int_equal(ocapn_session_get_state(b), OCAPN_SESSION_ACTIVE);

	struct flipper f = {region, len, 0, 0};
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, flip_thread, &f), 0);
	for (int k = 0; k < 10000 && !atomic_load(&f.flips); k++)
		usleep(100);
	/* until both outcomes were seen often enough (bounded) */
	int ok = 0, aborted = 0, i;
	for (i = 0; i < 20000 && (i < 500 || ok < 20 || aborted < 20); i++) {
		int rc = ocapn_session_feed_shared_message(b, region, len);
		ocapn_vat_run(vb, 0);
		if (rc == OCAPN_OK &&
		    ocapn_session_get_state(b) == OCAPN_SESSION_ACTIVE) {
			ok++;
			continue;
		}
		/* a clean abort, with a reason */
		assert_int_equal(ocapn_session_get_state(b),
		    OCAPN_SESSION_ABORTED);
		assert_true(ocapn_session_abort_reason(b)[0] != '\0');
		aborted++;
		ocapn_session_free(a);
		ocapn_session_free(b);
		ocapn_vat_free(va);
		ocapn_vat_free(vb);
		session_pair(&va, &vb, &a, &b);
	}
	atomic_store(&f.stop, 1);
	pthread_join(th, NULL);
	fprintf(stderr, "# %d messages accepted, %d sessions aborted, %llu "
			"flips\n",
	    ok, aborted, (unsigned long long)atomic_load(&f.flips));
	assert_int_equal(ok + aborted, i);
	assert_true(atomic_load(&f.flips) > 0);
	ocapn_session_free(a);
	ocapn_session_free(b);
	ocapn_vat_free(va);
	ocapn_vat_free(vb);
	free(region);
	ocapn_syrup_writer_free(wr);
}

/* ------------------------------------------------------------------ */
/* A peer killed mid-stream; many sessions                              */
/* ------------------------------------------------------------------ */

#define SWISS_COLLECT "test-collector-swiss-0123456789ab"
#define SWISS_SINK "test-sink-swiss-0123456789abcdefg"

struct server_obs {
	int collected;      /* the collector called the peer's object */
	int broken;         /* ... and that call broke */
	char why[256];
	uint64_t sunk;      /* messages the sink received */
};

static struct server_obs obs;

static void
collect_settled(ocapn_vat *vat, bool ok, const ocapn_value *v, void *user)
{
	(void)vat;
	(void)user;
	if (ok)
		return;
	size_t n;
	const char *t = ocapn_break_text(v, &n);
	snprintf(obs.why, sizeof(obs.why), "%.*s", (int)n, t);
	obs.broken = 1;
}

/* Calls the object it is given; the answer never comes. */
static int
collector(ocapn_vat *vat, ocapn_ref *self, const ocapn_value *args,
    ocapn_ref *resolver, void *user)
{
	(void)self;
	(void)user;
	if (args->len != 1 || args->u.items[0].kind != OCAPN_REF)
		return OCAPN_E_TYPE;
	ocapn_value none;
	ocapn_value_set_list(&none, NULL, 0);
	ocapn_ref *res;
	int rc = ocapn_send(args->u.items[0].u.ref, &none, &res);
	if (rc)
		return rc;
	ocapn_when(res, collect_settled, NULL);
	ocapn_ref_release(res);
	obs.collected = 1;
	(void)vat;
	ocapn_value t;
	ocapn_value_set_bool(&t, true);
	return resolver ? ocapn_resolve(resolver, &t) : OCAPN_OK;
}

static int
sink(ocapn_vat *vat, ocapn_ref *self, const ocapn_value *args,
    ocapn_ref *resolver, void *user)
{
	(void)vat;
	(void)self;
	(void)args;
	(void)user;
	obs.sunk++;
	ocapn_value n;
	ocapn_value_set_int(&n, (int64_t)obs.sunk);
	return resolver ? ocapn_resolve(resolver, &n) : OCAPN_OK;
}

static void
register_obj(ocapn_runtime *rt, const char *swiss, ocapn_method_fn fn)
{
	ocapn_ref *o;
	ocapn_vat *vat = ocapn_runtime_vat(rt);
	assert_int_equal(ocapn_vat_spawn(vat, fn, NULL, NULL, &o), 0);
	assert_int_equal(ocapn_vat_register(vat, (const uint8_t *)swiss,
			     strlen(swiss), o),
	    0);
	ocapn_ref_release(o);
}

static int
count_fds(void)
{
	int n = 0;
	char p[64];
	for (int fd = 0; fd < 4096; fd++) {
		snprintf(p, sizeof(p), "/proc/self/fd/%d", fd);
		if (access(p, F_OK) == 0)
			n++;
	}
	return n;
}

/* ---- the child: streams until it is killed ---- */

struct streamer {
	ocapn_ref *sink;
	ocapn_value args, item;
	uint8_t *blob;
	ocapn_ref *keep[64];
	int nkeep;
};

static int
never(ocapn_vat *vat, ocapn_ref *self, const ocapn_value *args,
    ocapn_ref *resolver, void *user)
{
	struct streamer *st = user;
	(void)vat;
	(void)self;
	(void)args;
	if (resolver && st->nkeep < 64)
		st->keep[st->nkeep++] = ocapn_ref_retain(resolver);
	return OCAPN_OK;
}

static void stream_one(struct streamer *st);

static void
streamed(ocapn_vat *vat, bool ok, const ocapn_value *v, void *user)
{
	(void)vat;
	(void)ok;
	(void)v;
	stream_one(user);
}

static void
stream_one(struct streamer *st)
{
	ocapn_ref *res;
	if (ocapn_send(st->sink, &st->args, &res) == 0) {
		ocapn_when(res, streamed, st);
		ocapn_ref_release(res);
	}
}

static void
child_stream(int rfd)
{
	char uri[2][512];
	FILE *f = fdopen(rfd, "r");
	if (!f || !fgets(uri[0], sizeof(uri[0]), f) ||
	    !fgets(uri[1], sizeof(uri[1]), f))
		_exit(3);
	for (int i = 0; i < 2; i++)
		uri[i][strcspn(uri[i], "\n")] = '\0';
	char dir[64];
	snprintf(dir, sizeof(dir), "/tmp/ocapn-shmnl-child-XXXXXX");
	if (!mkdtemp(dir))
		_exit(3);
	ocapn_runtime *rt;
	ocapn_netlayer *nl;
	if (ocapn_runtime_new(NULL, NULL, NULL, &rt) ||
	    ocapn_shm_netlayer_new(ocapn_runtime_loop(rt), dir, NULL, NULL,
		&nl) ||
	    ocapn_runtime_add_netlayer(rt, nl))
		_exit(3);
	static struct streamer st;
	ocapn_ref *coll, *nev, *res;
	if (ocapn_runtime_enliven_uri(rt, uri[0], strlen(uri[0]), &coll) ||
	    ocapn_runtime_enliven_uri(rt, uri[1], strlen(uri[1]), &st.sink) ||
	    ocapn_vat_spawn(ocapn_runtime_vat(rt), never, &st, NULL, &nev))
		_exit(3);
	ocapn_value a;
	ocapn_value_set_ref(&a, nev);
	ocapn_value l;
	ocapn_value_set_list(&l, &a, 1);
	if (ocapn_send(coll, &l, &res))
		_exit(3);
	size_t n = 64u << 10;
	st.blob = malloc(n);
	memset(st.blob, 0x5a, n);
	ocapn_value_set_bytes(&st.item, st.blob, n);
	ocapn_value_set_list(&st.args, &st.item, 1);
	for (int i = 0; i < 8; i++)
		stream_one(&st);
	ocapn_runtime_run(rt); /* until killed */
	_exit(4);
}

static void
test_nl_peer_killed(void **state)
{
	(void)state;
	int fds_before = count_fds();
	int pfd[2];
	assert_int_equal(pipe(pfd), 0);
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(pfd[1]);
		child_stream(pfd[0]);
	}
	close(pfd[0]);
	memset(&obs, 0, sizeof(obs));
	struct world w;
	world_init(&w, 0);
	register_obj(w.server, SWISS_COLLECT, collector);
	register_obj(w.server, SWISS_SINK, sink);
	const char *sw[2] = {SWISS_COLLECT, SWISS_SINK};
	for (int i = 0; i < 2; i++) {
		ocapn_buffer uri;
		ocapn_buffer_init(&uri);
		assert_int_equal(ocapn_runtime_sturdyref_uri(w.server, w.snl,
				     (const uint8_t *)sw[i], strlen(sw[i]), &uri),
		    0);
		assert_int_equal(write(pfd[1], uri.data, uri.len),
		    (ssize_t)uri.len);
		assert_int_equal(write(pfd[1], "\n", 1), 1);
		ocapn_buffer_release(&uri, NULL);
	}
	close(pfd[1]);
	RUN_UNTIL(&w, obs.collected && obs.sunk >= 100);
	assert_int_equal(ocapn_runtime_connections(w.server), 1);
	assert_int_equal(kill(pid, SIGKILL), 0);
	RUN_UNTIL(&w, obs.broken);
	fprintf(stderr, "# after %llu messages: %s\n",
	    (unsigned long long)obs.sunk, obs.why);
	assert_non_null(strstr(obs.why, "peer hung up without closing"));
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFSIGNALED(st));
	RUN_UNTIL(&w, ocapn_runtime_connections(w.server) == 0);
	/* still serving */
	ocapn_ref *echo = enliven(&w, SWISS_ECHO);
	struct tu_result r;
	ocapn_ref *res = call_wait(&w, echo, tu_rt_parse(w.client, "['alive]"), &r);
	assert_true(r.ok);
	assert_string_equal(r.text, "['alive]");
	ocapn_ref_release(res);
	ocapn_ref_release(echo);
	world_free(&w);
	assert_int_equal(count_fds(), fds_before);
}

static void
test_nl_many_sessions(void **state)
{
	(void)state;
	enum { N = 24 };
	struct world w;
	world_init(&w, 64u << 10);
	ocapn_runtime *rt[N];
	ocapn_ref *echo[N], *res[N];
	struct tu_result r[N];
	ocapn_buffer uri;
	ocapn_buffer_init(&uri);
	assert_int_equal(ocapn_runtime_sturdyref_uri(w.server, w.snl,
			     (const uint8_t *)SWISS_ECHO, strlen(SWISS_ECHO),
			     &uri),
	    0);
	for (int i = 0; i < N; i++) {
		ocapn_netlayer *nl;
		uint8_t seed[32];
		seed_of((uint8_t)(0x10 + i), seed);
		assert_int_equal(ocapn_runtime_new(&w.loop, NULL, NULL, &rt[i]),
		    0);
		assert_int_equal(ocapn_shm_netlayer_new(&w.loop, w.dir, seed,
				     NULL, &nl),
		    0);
		assert_int_equal(ocapn_shm_netlayer_set_buffer(nl, 64u << 10),
		    0);
		assert_int_equal(ocapn_runtime_add_netlayer(rt[i], nl), 0);
		assert_int_equal(ocapn_runtime_enliven_uri(rt[i],
				     (const char *)uri.data, uri.len, &echo[i]),
		    0);
		char text[32];
		snprintf(text, sizeof(text), "[%d \"from %d\"]", i, i);
		ocapn_value *v;
		size_t used, eo;
		const char *why;
		assert_int_equal(ocapn_notation_parse(text, strlen(text),
				     ocapn_vat_arena(ocapn_runtime_vat(rt[i])),
				     &v, &used, &eo, &why),
		    0);
		assert_int_equal(ocapn_send(echo[i], v, &res[i]), 0);
		memset(&r[i], 0, sizeof(r[i]));
		ocapn_when(res[i], tu_settled, &r[i]);
	}
	int all = 0;
	uv_timer_start(&w.guard, guard_cb, 60000, 0);
	while (!all && !w.timed_out) {
		uv_run(&w.loop, UV_RUN_ONCE);
		all = 1;
		for (int i = 0; i < N; i++)
			all &= r[i].done;
	}
	uv_timer_stop(&w.guard);
	assert_false(w.timed_out);
	for (int i = 0; i < N; i++) {
		char want[32];
		snprintf(want, sizeof(want), "[%d \"from %d\"]", i, i);
		assert_true(r[i].ok);
		assert_string_equal(r[i].text, want);
	}
	assert_int_equal(ocapn_runtime_connections(w.server), N);
	int closed = 0;
	for (int i = 0; i < N; i++) {
		ocapn_ref_release(res[i]);
		ocapn_ref_release(echo[i]);
		ocapn_runtime_close(rt[i], closed_cb, &closed);
	}
	RUN_UNTIL(&w, closed == N && ocapn_runtime_connections(w.server) == 0);
	for (int i = 0; i < N; i++)
		ocapn_runtime_free(rt[i]);
	ocapn_buffer_release(&uri, NULL);
	world_free(&w);
}

/* ------------------------------------------------------------------ */
/* The netlayer contract, with a handler of our own                     */
/* ------------------------------------------------------------------ */

struct hrec {
	ocapn_conn *c;
	int accepts, drains, closes, msgs;
	int close_status;
	char close_reason[200];
	size_t lens[8];
	bool shared[8];
	const uint8_t *held;
	bool hold_next;
};

static void
h_accept(void *user, ocapn_netlayer *nl, ocapn_conn *c)
{
	struct hrec *h = user;
	(void)nl;
	h->c = c;
	h->accepts++;
}

static void
h_message(void *user, ocapn_conn *c, const uint8_t *msg, size_t len)
{
	struct hrec *h = user;
	const ocapn_netlayer_ops *ops = ocapn_conn_netlayer(c)->ops;
	if (h->msgs < 8) {
		h->lens[h->msgs] = len;
		h->shared[h->msgs] = ops->shared(c, msg);
	}
	h->msgs++;
	if (h->hold_next) {
		h->hold_next = false;
		assert_int_equal(ocapn_conn_hold(c, msg), 0);
		assert_int_equal(ocapn_conn_hold(c, msg), OCAPN_E_INVAL);
		h->held = msg;
	}
}

static void
h_drain(void *user, ocapn_conn *c)
{
	(void)c;
	((struct hrec *)user)->drains++;
}

static void
h_close(void *user, ocapn_conn *c, int status, const char *reason)
{
	struct hrec *h = user;
	(void)c;
	h->closes++;
	h->close_status = status;
	snprintf(h->close_reason, sizeof(h->close_reason), "%s", reason);
}

static void
h_stopped(void *user, ocapn_netlayer *nl)
{
	(void)nl;
	((struct hrec *)user)->accepts += 1000;
}

/* Run `loop` and the raw peer until `cond` (bounded). */
#define LOOP_UNTIL(loop, r, cond)                                              \
	do {                                                                   \
		int k_;                                                        \
		for (k_ = 0; k_ < 20000 && !(cond); k_++) {                    \
			uv_run((loop), UV_RUN_NOWAIT);                         \
			raw_step(r);                                           \
			if (k_ > 50)                                           \
				usleep(500);                                   \
		}                                                              \
		if (!(cond))                                                   \
			fail_msg("timed out waiting for " #cond);              \
	} while (0)

static int
raw_inflight(struct raw *r)
{
	struct ocapn__shm_ep_stats st;
	ocapn__shm_ep_stats(ocapn__shm_endpoint(r->ch), &st);
	return (int)st.inflight;
}

static void
test_nl_contract(void **state)
{
	(void)state;
	char dir[64];
	tmpdir(dir, sizeof(dir));
	uv_loop_t loop;
	assert_int_equal(uv_loop_init(&loop), 0);
	uint8_t seed[32];
	seed_of(0x61, seed);
	ocapn_netlayer *nl;
	assert_int_equal(ocapn_shm_netlayer_new(&loop, dir, seed, NULL, &nl),
	    0);
	/* small rings so that back-pressure comes quickly */
	struct ocapn__shm_params sp;
	ocapn__shm_params_default(&sp);
	sp.slots = 4;
	sp.bulk_size = 64u << 10;
	sp.max_packet = 32u << 10;
	ocapn__shm_nl_set_params(nl, &sp);
	struct hrec h;
	memset(&h, 0, sizeof(h));
	ocapn_netlayer_handler hd = {
	    .on_accept = h_accept,
	    .on_message = h_message,
	    .on_drain = h_drain,
	    .on_close = h_close,
	    .on_stopped = h_stopped,
	    .user = &h,
	};
	ocapn_netlayer_set_handler(nl, &hd);
	/* an honest peer, with the same small geometry */
	struct raw r;
	raw_init(&r, RAW_HONEST, 0x62, true, NULL);
	struct ocapn__shm_params p = raw_params(&r);
	p.slots = 4;
	p.bulk_size = 64u << 10;
	p.max_packet = 32u << 10;
	assert_int_equal(ocapn__shm_connect(shm_path_of(nl), &p, NULL, &r.ch),
	    0);
	LOOP_UNTIL(&loop, &r, h.accepts == 1 &&
	    ocapn__shm_state(r.ch) == OCAPN__SHM_READY);
	/* the connection's peer is the key the initiator proved */
	ocapn_buffer d;
	ocapn_buffer_init(&d);
	assert_int_equal(ocapn_base32_encode(r.kp.pk, 32, &d, NULL), 0);
	size_t dl, tl;
	const ocapn_locator *peer = ocapn_conn_peer(h.c);
	assert_non_null(peer);
	assert_string_equal(ocapn_locator_designator(peer, &dl), d.data);
	assert_string_equal(ocapn_locator_transport(peer, &tl), "shm");
	assert_false(ocapn_conn_outbound(h.c));
	ocapn_buffer_release(&d, NULL);

	/* one packet (shared view, held), one fragmented (private copy) */
	static uint8_t big[100000];
	memset(big, 'b', sizeof(big));
	h.hold_next = true;
	assert_int_equal(ocapn__shm_send(r.ch, "small", 5), 0);
	int rc;
	for (int k = 0; k < 20000 && (rc = ocapn__shm_send(r.ch, big,
	    sizeof(big))) == OCAPN_E_AGAIN; k++) {
		uv_run(&loop, UV_RUN_NOWAIT);
		raw_step(&r);
		if (k > 50)
			usleep(500);
	}
	assert_int_equal(rc, 0);
	LOOP_UNTIL(&loop, &r, h.msgs == 2);
	assert_int_equal(h.lens[0], 5);
	assert_true(h.shared[0]);
	assert_int_equal(h.lens[1], sizeof(big));
	assert_false(h.shared[1]);
	/* the held view stays unacked until released */
	LOOP_UNTIL(&loop, &r, raw_inflight(&r) == 1);
	assert_memory_equal(h.held, "small", 5);
	ocapn_conn_release(h.c, h.held);
	LOOP_UNTIL(&loop, &r, raw_inflight(&r) == 0);

	/* back-pressure: the peer reads nothing, sends refuse, and on_drain
	 * comes once it reads */
	ocapn_iov iov = {big, 20000};
	int sent = 0;
	while ((rc = ocapn_conn_send(h.c, &iov, 1)) == OCAPN_OK)
		sent++;
	assert_int_equal(rc, OCAPN_E_AGAIN);
	assert_true(sent >= 1);
	assert_int_equal(ocapn_conn_pending(h.c), 0);
	struct ocapn__shm_msg m;
	int got = 0;
	for (int k = 0; k < 20000 && (got < sent || !h.drains); k++) {
		uv_run(&loop, UV_RUN_NOWAIT);
		raw_step(&r);
		while (ocapn__shm_recv(r.ch, &m) == OCAPN_OK) {
			assert_int_equal(m.len, 20000);
			ocapn__shm_release(r.ch, &m);
			got++;
		}
		if (k > 50)
			usleep(500);
	}
	assert_int_equal(got, sent);
	assert_true(h.drains >= 1);
	assert_int_equal(ocapn_conn_send(h.c, &iov, 1), OCAPN_OK);

	/* graceful close: the peer reads to the end, closes, and we get
	 * on_close OK */
	ocapn_conn_close(h.c);
	for (int k = 0; k < 20000 && h.closes == 0; k++) {
		uv_run(&loop, UV_RUN_NOWAIT);
		raw_step(&r);
		rc = ocapn__shm_recv(r.ch, &m);
		if (rc == OCAPN_OK)
			ocapn__shm_release(r.ch, &m);
		else if (rc == OCAPN_E_CLOSED)
			ocapn__shm_close(r.ch);
		if (k > 50)
			usleep(500);
	}
	assert_int_equal(h.closes, 1);
	assert_int_equal(h.close_status, OCAPN_OK);
	raw_free(&r);

	/* a second peer dies without closing */
	raw_init(&r, RAW_HONEST, 0x63, true, NULL);
	p = raw_params(&r);
	assert_int_equal(ocapn__shm_connect(shm_path_of(nl), &p, NULL, &r.ch),
	    0);
	LOOP_UNTIL(&loop, &r, h.accepts == 2);
	raw_free(&r);
	for (int k = 0; k < 20000 && h.closes < 2; k++) {
		uv_run(&loop, UV_RUN_NOWAIT);
		if (k > 50)
			usleep(500);
	}
	assert_int_equal(h.closes, 2);
	assert_int_equal(h.close_status, OCAPN_E_CLOSED);
	assert_string_equal(h.close_reason, "peer hung up without closing");

	/* stop, then free; the socket file goes */
	ocapn_netlayer_stop(nl);
	for (int k = 0; k < 20000 && h.accepts < 1000; k++)
		uv_run(&loop, UV_RUN_NOWAIT);
	assert_true(h.accepts >= 1000);
	ocapn_netlayer_free(nl);
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&loop), 0);
	assert_int_equal(rmdir(dir), 0);
}

/* A netlayer freed without being stopped (never run) leaves nothing
 * behind; a directory others can enter is refused. */
static void
test_nl_lifecycle(void **state)
{
	(void)state;
	char dir[64];
	tmpdir(dir, sizeof(dir));
	uv_loop_t loop;
	assert_int_equal(uv_loop_init(&loop), 0);
	ocapn_netlayer *nl;
	assert_int_equal(ocapn_shm_netlayer_new(&loop, dir, NULL, NULL, &nl),
	    0);
	/* a second netlayer with the same key: its socket is taken */
	ocapn_netlayer *nl2;
	uint8_t seed[32];
	seed_of(0x71, seed);
	assert_int_equal(ocapn_shm_netlayer_new(&loop, dir, seed, NULL, &nl2),
	    0);
	ocapn_netlayer *nl3;
	assert_int_equal(ocapn_shm_netlayer_new(&loop, dir, seed, NULL, &nl3),
	    OCAPN_E_EXISTS);
	ocapn_netlayer_free(nl);
	ocapn_netlayer_free(nl2);
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&loop), 0);
	assert_int_equal(rmdir(dir), 0);
	/* not private */
	tmpdir(dir, sizeof(dir));
	chmod(dir, 0755);
	assert_int_equal(uv_loop_init(&loop), 0);
	assert_int_equal(ocapn_shm_netlayer_new(&loop, dir, NULL, NULL, &nl),
	    OCAPN_E_INVAL);
	/* no directory: no listener, no path in the locator */
	assert_int_equal(ocapn_shm_netlayer_new(&loop, NULL, NULL, NULL, &nl),
	    0);
	size_t n;
	assert_null(ocapn_locator_hint(ocapn_netlayer_locator(nl), "path", &n));
	assert_int_equal(ocapn_shm_netlayer_set_buffer(nl, 100), OCAPN_E_INVAL);
	/* locators it refuses at once */
	static const struct {
		const char *uri;
		int rc;
	} bad[] = {
	    /* a valid key (seed 0x71's) without a path */
	    {"ocapn://", OCAPN_E_NOTFOUND},
	    /* uppercase, short, not base32 */
	    {"ocapn://AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA.shm"
	     "?path=%2Fx", OCAPN_E_INVAL},
	    {"ocapn://aaaa.shm?path=%2Fx", OCAPN_E_INVAL},
	    {"ocapn://1aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.shm"
	     "?path=%2Fx", OCAPN_E_INVAL},
	    /* non-zero trailing bits: a second spelling of a key */
	    {"ocapn://aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab.shm"
	     "?path=%2Fx", OCAPN_E_INVAL},
	    {"ocapn://aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.shm"
	     "?path=", OCAPN_E_INVAL},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		ocapn_locator *l;
		char uri[256];
		if (i == 0) {
			size_t dl;
			const char *dsg = ocapn_locator_designator(
			    ocapn_netlayer_locator(nl), &dl);
			snprintf(uri, sizeof(uri), "ocapn://%.*s.shm", (int)dl,
			    dsg);
		} else {
			snprintf(uri, sizeof(uri), "%s", bad[i].uri);
		}
		assert_int_equal(ocapn_locator_parse_uri(uri, strlen(uri), NULL,
				     &l, NULL, NULL),
		    0);
		ocapn_conn *c;
		assert_int_equal(ocapn_netlayer_connect(nl, l, &c), bad[i].rc);
		ocapn_locator_free(l);
	}
	assert_int_equal(ocapn_shm_netlayer_set_spin(nl, 0), 0);
	ocapn_netlayer_free(nl);
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&loop), 0);
	assert_int_equal(rmdir(dir), 0);
}

int
main(void)
{
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_auth_honest),
	    cmocka_unit_test(test_auth_wrong_key),
	    cmocka_unit_test(test_auth_replayed_proof),
	    cmocka_unit_test(test_auth_reflection),
	    cmocka_unit_test(test_auth_garbage),
	    cmocka_unit_test(test_rt_echo_every_kind),
	    cmocka_unit_test(test_rt_pipelining),
	    cmocka_unit_test(test_rt_gc),
	    cmocka_unit_test(test_rt_abort),
	    cmocka_unit_test(test_rt_large),
	    cmocka_unit_test(test_nl_hostile_initiators),
	    cmocka_unit_test(test_nl_hostile_acceptors),
	    cmocka_unit_test(test_session_expect_peer),
	    cmocka_unit_test(test_session_decodes_rewritten_message),
	    cmocka_unit_test(test_nl_peer_killed),
	    cmocka_unit_test(test_nl_many_sessions),
	    cmocka_unit_test(test_nl_contract),
	    cmocka_unit_test(test_nl_lifecycle),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
