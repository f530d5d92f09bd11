/*
 * car-demo: OCapN in one screen.
 *
 * Two processes.  The server vat makes a "car factory builder" object
 * reachable by a sturdyref (a URI naming the object and how to reach its
 * vat).  The client vat enlivens that URI and then, without waiting for any
 * answer, asks the builder for a factory, asks that (not yet existing)
 * factory for a car, and asks that (not yet existing) car to drive: promise
 * pipelining.  Every CapTP message that crosses the connection is printed.
 *
 * The connection uses the testuds netlayer (a Unix socket in a temporary
 * directory).  Build: part of the meson build (build/examples/car-demo).
 */
#define _POSIX_C_SOURCE 200809L
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <ocapn/ocapn.h>
#include <ocapn/runtime.h>

#define SWISS "car-factory"

/* ---- the server's objects ------------------------------------------ */

static int
car(ocapn_vat *vat, ocapn_ref *self, const ocapn_value *args,
    ocapn_ref *resolver, void *user)
{
	(void)vat;
	(void)self;
	(void)args;
	const char *text = user;
	ocapn_value v;
	ocapn_value_set_string(&v, text, strlen(text));
	printf("[server] a car drives: %s\n", text);
	fflush(stdout);
	return resolver ? ocapn_resolve(resolver, &v) : OCAPN_OK;
}

static int
factory(ocapn_vat *vat, ocapn_ref *self, const ocapn_value *args,
    ocapn_ref *resolver, void *user)
{
	(void)self;
	(void)user;
	/* args: [color model], both symbols */
	if (args->len != 2 || args->u.items[0].kind != OCAPN_SYMBOL ||
	    args->u.items[1].kind != OCAPN_SYMBOL)
		return ocapn_break_str(resolver, "expected color and model");
	char *text = malloc(64 + args->u.items[0].len + args->u.items[1].len);
	if (!text)
		return OCAPN_E_NOMEM;
	sprintf(text, "Vroom! I am a %.*s %.*s car!",
	    (int)args->u.items[0].len, (const char *)args->u.items[0].u.p,
	    (int)args->u.items[1].len, (const char *)args->u.items[1].u.p);
	ocapn_ref *c;
	int rc = ocapn_vat_spawn(vat, car, text, free, &c);
	if (rc) {
		free(text);
		return rc;
	}
	printf("[server] the factory builds a car\n");
	fflush(stdout);
	ocapn_value v;
	ocapn_value_set_ref(&v, c);
	rc = ocapn_resolve(resolver, &v);
	ocapn_ref_release(c);
	return rc;
}

static int
builder(ocapn_vat *vat, ocapn_ref *self, const ocapn_value *args,
    ocapn_ref *resolver, void *user)
{
	(void)self;
	(void)args;
	(void)user;
	ocapn_ref *f;
	int rc = ocapn_vat_spawn(vat, factory, NULL, NULL, &f);
	if (rc)
		return rc;
	printf("[server] the builder makes a car factory\n");
	fflush(stdout);
	ocapn_value v;
	ocapn_value_set_ref(&v, f);
	rc = ocapn_resolve(resolver, &v);
	ocapn_ref_release(f);
	return rc;
}

static volatile sig_atomic_t stop_server;

static void
on_term(int sig)
{
	(void)sig;
	stop_server = 1;
}

static void
check_stop(uv_timer_t *t)
{
	if (stop_server)
		ocapn_runtime_close(t->data, NULL, NULL), uv_close(
							      (uv_handle_t *)t,
							      NULL);
}

static int
server(const char *dir, int urifd)
{
	ocapn_runtime *rt;
	ocapn_netlayer *nl;
	if (ocapn_runtime_new(NULL, NULL, NULL, &rt) ||
	    ocapn_testuds_netlayer_new(ocapn_runtime_loop(rt), dir, "carlot",
		NULL, &nl) ||
	    ocapn_runtime_add_netlayer(rt, nl))
		return 1;
	ocapn_vat *vat = ocapn_runtime_vat(rt);
	ocapn_ref *b;
	ocapn_vat_spawn(vat, builder, NULL, NULL, &b);
	ocapn_vat_register(vat, (const uint8_t *)SWISS, strlen(SWISS), b);
	ocapn_ref_release(b);
	ocapn_buffer uri;
	ocapn_buffer_init(&uri);
	ocapn_runtime_sturdyref_uri(rt, nl, (const uint8_t *)SWISS,
	    strlen(SWISS), &uri);
	printf("[server] the car factory builder is at %s\n",
	    (const char *)uri.data);
	fflush(stdout);
	if (write(urifd, uri.data, uri.len + 1) != (ssize_t)uri.len + 1)
		return 1;
	close(urifd);
	ocapn_buffer_release(&uri, NULL);
	signal(SIGTERM, on_term);
	uv_timer_t t;
	uv_timer_init(ocapn_runtime_loop(rt), &t);
	t.data = rt;
	uv_timer_start(&t, check_stop, 20, 20);
	ocapn_runtime_run(rt);
	ocapn_runtime_free(rt);
	return 0;
}

/* ---- the client ----------------------------------------------------- */

static int ncalls, nreceived, calls_before_first_answer = -1;

static void
trace(void *user, ocapn_session *s, bool outbound, const uint8_t *msg,
    size_t len)
{
	(void)user;
	(void)s;
	static const char deliver[] = "<10'op:deliver";
	if (outbound && len > sizeof(deliver) &&
	    !memcmp(msg, deliver, sizeof(deliver) - 1))
		ncalls++;
	else if (!outbound && ++nreceived == 2) /* after the peer's hello */
		calls_before_first_answer = ncalls;
	ocapn_syrup_decoder *dec = ocapn_syrup_decoder_new(0, NULL);
	ocapn_arena *ar = ocapn_arena_new(NULL);
	ocapn_value *v;
	ocapn_buffer text;
	ocapn_buffer_init(&text);
	if (ocapn_syrup_decode_one(dec, ar, msg, len, &v) == 0)
		ocapn_notation_print(v, 0, &text, NULL);
	/* keys, signatures and swiss numbers are long: keep it to a line */
	int n = text.len > 96 ? 93 : (int)text.len;
	printf("   %s %.*s%s\n", outbound ? "->" : "<-", n,
	    (const char *)text.data, text.len > 96 ? "..." : "");
	ocapn_buffer_release(&text, NULL);
	ocapn_arena_free(ar);
	ocapn_syrup_decoder_free(dec);
}

static int finished;

static void
drove(ocapn_vat *vat, bool ok, const ocapn_value *v, void *user)
{
	(void)vat;
	ocapn_runtime *rt = user;
	if (ok && v->kind == OCAPN_STRING)
		printf("[client] the car says: \"%.*s\"\n", (int)v->len,
		    (const char *)v->u.p);
	else {
		size_t n;
		const char *t = ocapn_break_text(v, &n);
		printf("[client] broken: %.*s\n", (int)n, t);
	}
	finished = ok ? 1 : 2;
	ocapn_runtime_close(rt, NULL, NULL);
}

static int
client(const char *dir, const char *uri)
{
	ocapn_runtime *rt;
	ocapn_netlayer *nl;
	if (ocapn_runtime_new(NULL, NULL, NULL, &rt) ||
	    ocapn_testuds_netlayer_new(ocapn_runtime_loop(rt), dir, "driver",
		NULL, &nl) ||
	    ocapn_runtime_add_netlayer(rt, nl))
		return 1;
	ocapn_runtime_set_trace(rt, trace, NULL);
	ocapn_vat *vat = ocapn_runtime_vat(rt);
	ocapn_arena *ar = ocapn_vat_arena(vat);

	printf("[client] enliven the sturdyref (this opens a CapTP session)\n");
	ocapn_ref *b, *f, *c, *vroom;
	ocapn_runtime_enliven_uri(rt, uri, strlen(uri), &b);
	ocapn_value none;
	ocapn_value_set_list(&none, NULL, 0);
	printf("[client] factory = builder <- ()           "
	       "(a promise, sent at once)\n");
	ocapn_send(b, &none, &f);
	ocapn_value *spec = ocapn_arena_values(ar, 2), args;
	ocapn_value_set_symbol(&spec[0], "red", 3);
	ocapn_value_set_symbol(&spec[1], "zoomracer", 9);
	ocapn_value_set_list(&args, spec, 2);
	printf("[client] car = factory <- ('red 'zoomracer) "
	       "(sent to a promise: pipelined)\n");
	ocapn_send(f, &args, &c);
	printf("[client] vroom = car <- ()                 (pipelined again)\n");
	ocapn_send(c, &none, &vroom);
	ocapn_when(vroom, drove, rt);
	printf("[client] nothing has been answered yet; the wire:\n");
	fflush(stdout);
	ocapn_runtime_run(rt);
	if (finished == 1)
		printf("[client] %d calls went out before the first answer "
		       "came back:\n"
		       "         the calls travelled ahead of their results "
		       "(promise pipelining).\n",
		    calls_before_first_answer);
	ocapn_ref_release(vroom);
	ocapn_ref_release(c);
	ocapn_ref_release(f);
	ocapn_ref_release(b);
	ocapn_runtime_free(rt);
	return finished == 1 ? 0 : 1;
}

int
main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0); /* both processes print */
	signal(SIGPIPE, SIG_IGN);          /* see runtime.h */
	char dir[] = "/tmp/ocapn-demo-XXXXXX";
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	printf("OCapN demo: a car factory served by one process, used by "
	       "another,\nover a Unix socket (the testuds netlayer).\n\n");
	fflush(stdout);
	int p[2];
	if (pipe(p))
		return 1;
	pid_t pid = fork();
	if (pid == 0) {
		close(p[0]);
		_exit(server(dir, p[1]));
	}
	close(p[1]);
	char uri[512];
	size_t n = 0;
	ssize_t r;
	while (n < sizeof(uri) - 1 && (r = read(p[0], uri + n, 1)) == 1 &&
	    uri[n] != '\0')
		n++;
	uri[n] = '\0';
	close(p[0]);
	int rc = n ? client(dir, uri) : 1;
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
	rmdir(dir);
	return rc;
}
