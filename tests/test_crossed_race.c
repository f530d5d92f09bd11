/*
 * Crossed hellos between two real processes: each serves an object, both
 * are released at the same moment to enliven and call the other's object.
 * Both dial, so two connections cross; exactly one must survive, both
 * calls must be answered, and each side must end with one connection.
 * Repeated to vary the interleaving.  Every wait is bounded.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <ocapn/ocapn.h>
#include <ocapn/runtime.h>

#include "testutil.h"

#define ROUNDS 12

static const char *trace_name;

static void
trace(void *user, ocapn_session *sess, bool out, const uint8_t *msg,
    size_t len)
{
	(void)user;
	if (!getenv("RACE_TRACE"))
		return;
	fprintf(stderr, "%s %p %s %.*s\n", trace_name, (void *)sess,
	    out ? "->" : "<-", (int)(len > 60 ? 60 : len), (const char *)msg);
}

static int
thing_call(ocapn_vat *vat, ocapn_ref *self, const ocapn_value *args,
    ocapn_ref *resolver, void *user)
{
	(void)vat;
	(void)self;
	(void)args;
	const char *name = user;
	ocapn_value v;
	ocapn_value_set_string(&v, name, strlen(name));
	return resolver ? ocapn_resolve(resolver, &v) : OCAPN_OK;
}

struct side {
	ocapn_runtime *rt;
	uv_timer_t timer;
	uv_poll_t quit;   /* the parent closes it when both sides are done */
	int report;       /* our result goes here */
	int phase; /* 0 waiting answer, 1 waiting connections == 1 */
	int status;
	int polls;
	const char *want;
};

static void
answered(ocapn_vat *vat, bool ok, const ocapn_value *v, void *user)
{
	struct side *s = user;
	(void)vat;
	if (!ok || v->kind != OCAPN_STRING || v->len != strlen(s->want) ||
	    memcmp(v->u.p, s->want, v->len)) {
		size_t n;
		const char *t = ocapn_break_text(v, &n);
		fprintf(stderr, "  call to %s: %s %.*s\n", s->want,
		    ok ? "fulfilled with" : "broken:", (int)n, t);
		s->status = 2;
		s->phase = 2;
		return;
	}
	s->phase = 1;
}

static void
report(struct side *s)
{
	char c = (char)s->status;
	if (write(s->report, &c, 1) != 1)
		s->status = 4;
}

static void
quit_cb(uv_poll_t *p, int status, int events)
{
	struct side *s = p->data;
	(void)status;
	(void)events;
	uv_poll_stop(p);
	uv_close((uv_handle_t *)p, NULL);
	if (!uv_is_closing((uv_handle_t *)&s->timer))
		uv_close((uv_handle_t *)&s->timer, NULL);
	ocapn_runtime_close(s->rt, NULL, NULL);
}

static void
tick(uv_timer_t *t)
{
	struct side *s = t->data;
	if (s->phase == 2) {
		/* failed: already said why */
	} else if (++s->polls > 1000) { /* 10 s */
		fprintf(stderr, "  %s: not settled: phase %d, %zu connections\n",
		    trace_name, s->phase, ocapn_runtime_connections(s->rt));
		s->status = 3;
	} else if (s->phase == 1 && ocapn_runtime_connections(s->rt) <= 1) {
		/* one connection left (none once the other side, done
		 * first, has shut down): never both */
		s->status = 0;
	} else {
		return;
	}
	/* Tell the parent, keep serving the other side until told to
	 * stop. */
	uv_timer_stop(t);
	report(s);
}

/* One process: serve `me`, call `other` once `go` is readable, report on
 * `rep`, serve until `quit` reaches its end. */
static int
run_side(const char *dir, const char *me, const char *other, int go,
    int rep, int quitfd)
{
	struct side s = {0};
	s.status = 1;
	s.report = rep;
	s.want = other;
	ocapn_netlayer *nl;
	if (ocapn_runtime_new(NULL, NULL, NULL, &s.rt) ||
	    ocapn_testuds_netlayer_new(ocapn_runtime_loop(s.rt), dir, me, NULL,
		&nl) ||
	    ocapn_runtime_add_netlayer(s.rt, nl))
		return 10;
	trace_name = me;
	ocapn_runtime_set_trace(s.rt, trace, NULL);
	ocapn_ref *thing;
	ocapn_vat *vat = ocapn_runtime_vat(s.rt);
	ocapn_vat_spawn(vat, thing_call, (void *)me, NULL, &thing);
	ocapn_vat_register(vat, (const uint8_t *)"thing", 5, thing);
	ocapn_ref_release(thing);
	char c = 'R'; /* listening */
	if (write(rep, &c, 1) != 1)
		return 13;
	if (read(go, &c, 1) != 1) /* both sides released together */
		return 11;
	char uri[256];
	snprintf(uri, sizeof(uri), "ocapn://%s.testuds/s/dGhpbmc", other);
	ocapn_ref *target, *res;
	if (ocapn_runtime_enliven_uri(s.rt, uri, strlen(uri), &target))
		return 12;
	ocapn_value none;
	ocapn_value_set_list(&none, NULL, 0);
	ocapn_send(target, &none, &res);
	ocapn_when(res, answered, &s);
	uv_timer_init(ocapn_runtime_loop(s.rt), &s.timer);
	s.timer.data = &s;
	uv_timer_start(&s.timer, tick, 10, 10);
	uv_poll_init(ocapn_runtime_loop(s.rt), &s.quit, quitfd);
	s.quit.data = &s;
	uv_poll_start(&s.quit, UV_READABLE | UV_DISCONNECT, quit_cb);
	ocapn_runtime_run(s.rt);
	ocapn_ref_release(res);
	ocapn_ref_release(target);
	ocapn_runtime_free(s.rt);
	return s.status;
}

static void
test_crossed_hellos_race(void **state)
{
	(void)state;
	signal(SIGPIPE, SIG_IGN);
	for (int round = 0; round < ROUNDS; round++) {
		char dir[] = "/tmp/ocapn-race-XXXXXX";
		assert_non_null(mkdtemp(dir));
		int go[2], rep[2], quit[2];
		assert_int_equal(pipe(go), 0);
		assert_int_equal(pipe(rep), 0);
		assert_int_equal(pipe(quit), 0);
		pid_t a = fork();
		if (a == 0) {
			close(go[1]);
			close(quit[1]);
			close(rep[0]);
			_exit(run_side(dir, "amber", "basil", go[0], rep[1],
			    quit[0]));
		}
		pid_t b = fork();
		if (b == 0) {
			close(go[1]);
			close(quit[1]);
			close(rep[0]);
			_exit(run_side(dir, "basil", "amber", go[0], rep[1],
			    quit[0]));
		}
		close(go[0]);
		close(quit[0]);
		close(rep[1]);
		/* let both listen, then release them together */
		char ready[2];
		for (int k = 0; k < 2; k++)
			assert_int_equal(read(rep[0], &ready[k], 1), 1);
		assert_int_equal(ready[0], 'R');
		assert_int_equal(ready[1], 'R');
		char path[300];
		assert_int_equal(write(go[1], "gg", 2), 2);
		close(go[1]);
		/* both report (0 = answered and one connection left), then
		 * both may stop */
		char res[2] = {9, 9};
		for (int k = 0; k < 2; k++)
			if (read(rep[0], &res[k], 1) != 1)
				res[k] = 8;
		close(rep[0]);
		close(quit[1]);
		int sa, sb;
		assert_int_equal(waitpid(a, &sa, 0), a);
		assert_int_equal(waitpid(b, &sb, 0), b);
		if (res[0] || res[1] || !WIFEXITED(sa) || !WIFEXITED(sb) ||
		    WEXITSTATUS(sa) || WEXITSTATUS(sb))
			fail_msg("round %d: reports %d and %d, exits %d and %d "
				 "(0 ok, 2 bad answer, 3 not settled to one "
				 "connection)",
			    round, res[0], res[1],
			    WIFEXITED(sa) ? WEXITSTATUS(sa) : -1,
			    WIFEXITED(sb) ? WEXITSTATUS(sb) : -1);
		snprintf(path, sizeof(path), "%s/amber.sock", dir);
		unlink(path);
		snprintf(path, sizeof(path), "%s/basil.sock", dir);
		unlink(path);
		rmdir(dir);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_crossed_hellos_race),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
