/*
 * The runtime over real sockets (loopback TCP and Unix sockets in a
 * temporary directory): calls by sturdyref URI, pipelining, one session
 * per peer, version retry, refused connections, peers that die mid-message,
 * many idle connections, graceful shutdown.  Every wait is bounded by a
 * loop timer that fails the test; nothing asserts on time.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <ocapn/ocapn.h>
#include <ocapn/runtime.h>

#include "../tools/ocapn/suite_objects.h"
#include "rt_testutil.h"
#include "testutil.h"

#define SWISS_ECHO "IO58l1laTyhcrgDKbEzFOO32MDd6zE5w"
#define CAR_BUILDER "JadQ0++RzsD4M+40uLxTWVaVqM10DcBJ"

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

enum kind { TCP, TESTUDS };

static void
world_init(struct world *w, enum kind k, ocapn_dialect server_dialect)
{
	memset(w, 0, sizeof(*w));
	assert_int_equal(uv_loop_init(&w->loop), 0);
	assert_int_equal(ocapn_runtime_new(&w->loop, NULL, NULL, &w->server),
	    0);
	assert_int_equal(ocapn_runtime_new(&w->loop, NULL, NULL, &w->client),
	    0);
	ocapn_runtime_set_dialect(w->server, server_dialect);
	if (k == TCP) {
		assert_int_equal(ocapn_tcp_netlayer_new(&w->loop, NULL, 0,
				     "server", NULL, &w->snl),
		    0);
		assert_int_equal(ocapn_tcp_netlayer_new(&w->loop, NULL, 0,
				     "client", NULL, &w->cnl),
		    0);
	} else {
		snprintf(w->dir, sizeof(w->dir), "/tmp/ocapn-test-XXXXXX");
		assert_non_null(mkdtemp(w->dir));
		assert_int_equal(ocapn_testuds_netlayer_new(&w->loop, w->dir,
				     "server", NULL, &w->snl),
		    0);
		assert_int_equal(ocapn_testuds_netlayer_new(&w->loop, w->dir,
				     "client", NULL, &w->cnl),
		    0);
	}
	assert_int_equal(ocapn_runtime_add_netlayer(w->server, w->snl), 0);
	assert_int_equal(ocapn_runtime_add_netlayer(w->client, w->cnl), 0);
	assert_int_equal(suite_register(ocapn_runtime_vat(w->server)), 0);
	uv_timer_init(&w->loop, &w->guard);
	w->guard.data = w;
}

/* Run the loop until `*flag` is set (or fail after 20 s). */
static void
run_until(struct world *w, const int *flag)
{
	uv_timer_start(&w->guard, guard_cb, 20000, 0);
	while (!*flag && !w->timed_out)
		uv_run(&w->loop, UV_RUN_ONCE);
	uv_timer_stop(&w->guard);
	if (w->timed_out)
		fail_msg("timed out waiting");
}

static void
closed_cb(void *user)
{
	int *n = user;
	(*n)++;
}

static void
world_free(struct world *w)
{
	int closed = 0;
	ocapn_runtime_close(w->client, closed_cb, &closed);
	ocapn_runtime_close(w->server, closed_cb, &closed);
	int both = 0;
	uv_timer_start(&w->guard, guard_cb, 20000, 0);
	while (closed < 2 && !w->timed_out)
		uv_run(&w->loop, UV_RUN_ONCE);
	(void)both;
	uv_timer_stop(&w->guard);
	assert_false(w->timed_out);
	uv_close((uv_handle_t *)&w->guard, NULL);
	ocapn_runtime_free(w->client);
	ocapn_runtime_free(w->server);
	uv_run(&w->loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&w->loop), 0);
	if (w->dir[0])
		rmdir(w->dir);
}

static ocapn_ref *
enliven(struct world *w, const char *swiss)
{
	return tu_enliven(w->server, w->snl, w->client, swiss);
}

static void
echo_and_pipeline(enum kind k)
{
	struct world w;
	world_init(&w, k, OCAPN_DIALECT_AUTO);
	ocapn_ref *echo = enliven(&w, SWISS_ECHO);
	ocapn_ref *res;
	assert_int_equal(ocapn_send(echo, tu_rt_parse(w.client,
					      "[\"hi\" 42 {\"k\": [1 2]}]"),
			     &res),
	    0);
	struct tu_result r = {0};
	ocapn_when(res, tu_settled, &r);
	run_until(&w, &r.done);
	assert_true(r.ok);
	assert_string_equal(r.text, "[\"hi\" 42 {\"k\": [1 2]}]");

	/* Pipelining: builder <- (); factory <- spec; car <- () */
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
	/* Both sturdyrefs went over one session. */
	assert_int_equal(ocapn_runtime_connections(w.client), 1);
	assert_int_equal(ocapn_runtime_connections(w.server), 1);

	/* A large message in both directions (1 MiB bytestring). */
	size_t big = 1u << 20;
	uint8_t *blob = malloc(big);
	for (size_t i = 0; i < big; i++)
		blob[i] = (uint8_t)(i * 131 + 7);
	ocapn_value item, args;
	ocapn_value_set_bytes(&item, blob, big);
	ocapn_value_set_list(&args, &item, 1);
	ocapn_ref *bres;
	assert_int_equal(ocapn_send(echo, &args, &bres), 0);
	struct tu_result rb = {0};
	ocapn_when(bres, tu_settled, &rb);
	run_until(&w, &rb.done);
	assert_true(rb.ok);
	const ocapn_value *bv;
	assert_int_equal(ocapn_promise_state(bres, &bv), OCAPN_OK);
	assert_int_equal(bv->u.items[0].len, big);
	assert_memory_equal(bv->u.items[0].u.p, blob, big);
	free(blob);

	ocapn_ref *all[] = {echo, res, builder, factory, car, vroom, bres};
	for (size_t i = 0; i < sizeof(all) / sizeof(*all); i++)
		ocapn_ref_release(all[i]);
	world_free(&w);
}

static void
test_tcp_echo_and_pipeline(void **state)
{
	(void)state;
	echo_and_pipeline(TCP);
}

static void
test_testuds_echo_and_pipeline(void **state)
{
	(void)state;
	echo_and_pipeline(TESTUDS);
}

/* The server speaks only goblins-0.12: the client's 1.0 hello is refused,
 * it retries once in the server's version, remembers it, and the caller
 * sees nothing of it. */
static void
test_version_retry(void **state)
{
	(void)state;
	struct world w;
	world_init(&w, TCP, OCAPN_DIALECT_GOBLINS);
	ocapn_ref *echo = enliven(&w, SWISS_ECHO);
	ocapn_ref *res;
	assert_int_equal(ocapn_send(echo, tu_rt_parse(w.client, "['retry]"), &res),
	    0);
	struct tu_result r = {0};
	ocapn_when(res, tu_settled, &r);
	run_until(&w, &r.done);
	assert_true(r.ok);
	assert_string_equal(r.text, "['retry]");
	ocapn_ref_release(res);
	ocapn_ref_release(echo);
	world_free(&w);
}

static void
test_connection_refused(void **state)
{
	(void)state;
	struct world w;
	world_init(&w, TCP, OCAPN_DIALECT_AUTO);
	/* a port nobody listens on: bind one, close it, use its number */
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = {0};
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	socklen_t sl = sizeof(sa);
	getsockname(fd, (struct sockaddr *)&sa, &sl);
	close(fd);
	char uri[200];
	snprintf(uri, sizeof(uri),
	    "ocapn://nobody.tcp-testing-only/s/AAAA?host=127.0.0.1&port=%u",
	    ntohs(sa.sin_port));
	ocapn_ref *p;
	assert_int_equal(ocapn_runtime_enliven_uri(w.client, uri, strlen(uri),
			     &p),
	    0);
	struct tu_result r = {0};
	ocapn_when(p, tu_settled, &r);
	run_until(&w, &r.done);
	assert_false(r.ok);
	fprintf(stderr, "  refused -> %s\n", r.text);
	assert_non_null(strstr(r.text, "session aborted"));
	ocapn_ref_release(p);
	world_free(&w);
}

/* Raw TCP client of the server netlayer. */
static int
raw_connect(struct world *w)
{
	size_t n;
	const char *port = ocapn_locator_hint(ocapn_netlayer_locator(w->snl),
	    "port", &n);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = {0};
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sa.sin_port = htons((uint16_t)atoi(port));
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

static void
spin(struct world *w, int rounds)
{
	for (int i = 0; i < rounds; i++)
		uv_run(&w->loop, UV_RUN_NOWAIT);
}

/* A peer that sends half a message and dies: the session is torn down
 * and its connection freed; the server keeps serving. */
static void
test_peer_dies_mid_message(void **state)
{
	(void)state;
	struct world w;
	world_init(&w, TCP, OCAPN_DIALECT_AUTO);
	int fd = raw_connect(&w);
	const char half[] = "<16'op:start-session3\"1.0[10'public-key[3'ecc";
	assert_int_equal(write(fd, half, sizeof(half) - 1),
	    (ssize_t)sizeof(half) - 1);
	int seen = 0;
	uv_timer_start(&w.guard, guard_cb, 20000, 0);
	while (ocapn_runtime_connections(w.server) != 1 && !w.timed_out)
		uv_run(&w.loop, UV_RUN_ONCE);
	(void)seen;
	close(fd);
	while (ocapn_runtime_connections(w.server) != 0 && !w.timed_out)
		uv_run(&w.loop, UV_RUN_ONCE);
	uv_timer_stop(&w.guard);
	assert_false(w.timed_out);
	/* still serving */
	ocapn_ref *echo = enliven(&w, SWISS_ECHO);
	ocapn_ref *res;
	assert_int_equal(ocapn_send(echo, tu_rt_parse(w.client, "[1]"), &res), 0);
	struct tu_result r = {0};
	ocapn_when(res, tu_settled, &r);
	run_until(&w, &r.done);
	assert_true(r.ok);
	ocapn_ref_release(res);
	ocapn_ref_release(echo);
	world_free(&w);
}

/* Garbage instead of Syrup: the server answers with op:abort and closes. */
static void
test_garbage_gets_abort(void **state)
{
	(void)state;
	struct world w;
	world_init(&w, TCP, OCAPN_DIALECT_AUTO);
	int fd = raw_connect(&w);
	assert_int_equal(write(fd, "GET / HTTP/1.0\r\n\r\n", 18), 18);
	uv_timer_start(&w.guard, guard_cb, 20000, 0);
	char buf[4096];
	size_t got = 0;
	/* read until EOF while the loop runs the server */
	for (;;) {
		spin(&w, 4);
		ssize_t n = recv(fd, buf + got, sizeof(buf) - 1 - got,
		    MSG_DONTWAIT);
		if (n == 0)
			break;
		if (n > 0)
			got += (size_t)n;
		if (w.timed_out)
			fail_msg("no end of stream");
		uv_run(&w.loop, UV_RUN_ONCE);
	}
	uv_timer_stop(&w.guard);
	buf[got] = '\0';
	/* hello first, then the abort with its reason */
	assert_non_null(memmem(buf, got, "op:start-session", 16));
	assert_non_null(memmem(buf, got, "op:abort", 8));
	assert_non_null(memmem(buf, got, "unknown type byte", 17));
	close(fd);
	world_free(&w);
}

/* Many idle connections are fine, and closing them frees everything. */
static void
test_many_idle_connections(void **state)
{
	(void)state;
	struct world w;
	world_init(&w, TCP, OCAPN_DIALECT_AUTO);
	enum { N = 300 };
	int fds[N];
	for (int i = 0; i < N; i++) {
		fds[i] = raw_connect(&w);
		if (i % 32 == 0)
			spin(&w, 8);
	}
	uv_timer_start(&w.guard, guard_cb, 20000, 0);
	while (ocapn_runtime_connections(w.server) < N && !w.timed_out)
		uv_run(&w.loop, UV_RUN_ONCE);
	uv_timer_stop(&w.guard);
	assert_false(w.timed_out);
	/* still serving a real client among them */
	ocapn_ref *echo = enliven(&w, SWISS_ECHO);
	ocapn_ref *res;
	assert_int_equal(ocapn_send(echo, tu_rt_parse(w.client, "[\"busy\"]"), &res),
	    0);
	struct tu_result r = {0};
	ocapn_when(res, tu_settled, &r);
	run_until(&w, &r.done);
	assert_true(r.ok);
	for (int i = 0; i < N; i++)
		close(fds[i]);
	uv_timer_start(&w.guard, guard_cb, 20000, 0);
	while (ocapn_runtime_connections(w.server) > 1 && !w.timed_out)
		uv_run(&w.loop, UV_RUN_ONCE);
	uv_timer_stop(&w.guard);
	assert_false(w.timed_out);
	ocapn_ref_release(res);
	ocapn_ref_release(echo);
	world_free(&w);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_tcp_echo_and_pipeline),
	    cmocka_unit_test(test_testuds_echo_and_pipeline),
	    cmocka_unit_test(test_version_retry),
	    cmocka_unit_test(test_connection_refused),
	    cmocka_unit_test(test_peer_dies_mid_message),
	    cmocka_unit_test(test_garbage_gets_abort),
	    cmocka_unit_test(test_many_idle_connections),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
