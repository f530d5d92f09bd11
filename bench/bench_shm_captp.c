/*
 * CapTP through the whole stack (runtime, session, vat, netlayer) over the
 * shm netlayer and over a Unix socket (testuds), between two processes
 * (fork), all in the same run:
 *
 *   round trip of an echo call with a 16-byte bytestring, next to the
 *   eventfd ping-pong floor (two eventfds, blocking reads): shm spinning
 *   after each send (the netlayer's default), shm sleeping on the
 *   doorbell (spin 0), testuds;
 *
 *   throughput of 64 KiB, 1 MiB and 8 MiB bytestring arguments sent to a
 *   sink object (which looks at the first and last byte and answers with
 *   the length), a window of calls in flight: shm with a 32 MiB buffer
 *   (every message one zero-copy packet; --buffer MIB sets another
 *   size), shm with the default 4 MiB buffer (8 MiB messages
 *   fragmented), testuds.
 *
 * Prints medians and ratios; asserts nothing about time.  Usage:
 *   bench_shm_captp [--quick] [--pinned | --unpinned] [--buffer MIB]
 *                                                       (default: both)
 *   bench_shm_captp --one shm|shm4|testuds SIZE MIB      (one throughput
 *       case, SIZE bytes per message, MIB mebibytes in total: for perf)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <ocapn/ocapn.h>
#include <ocapn/runtime.h>

#include "netlayers/shm/shm_netlayer.h"

#define SW_ECHO "bench-echo"
#define SW_SINK "bench-sink"
#define SW_CTRL "bench-control"

static int pin = 1;
static uint32_t big_buffer = 32u << 20; /* --buffer: the sized column */

static double
now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void
die(const char *what)
{
	fprintf(stderr, "bench_shm_captp: %s (%s)\n", what, strerror(errno));
	exit(1);
}

static void
pin_to(int cpu)
{
	if (!pin)
		return;
	cpu_set_t s;
	CPU_ZERO(&s);
	CPU_SET(cpu, &s);
	if (sched_setaffinity(0, sizeof(s), &s) != 0)
		fprintf(stderr, "bench_shm_captp: cannot pin to CPU %d\n",
		    cpu);
}

static void
unpin(void)
{
	cpu_set_t s;
	CPU_ZERO(&s);
	for (int i = 0; i < CPU_SETSIZE && i < 1024; i++)
		CPU_SET(i, &s);
	sched_setaffinity(0, sizeof(s), &s);
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double
median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return v[n / 2];
}

/* ---- eventfd ping-pong: the wakeup floor ---------------------------- */

static double
bench_eventfd(long n)
{
	int a = eventfd(0, 0), b = eventfd(0, 0);
	if (a < 0 || b < 0)
		die("eventfd");
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0)
		die("fork");
	uint64_t v = 1;
	if (pid == 0) {
		pin_to(1);
		for (long i = 0; i < n; i++) {
			if (read(b, &v, 8) != 8 || write(a, &v, 8) != 8)
				_exit(1);
		}
		_exit(0);
	}
	pin_to(0);
	double t0 = now();
	for (long i = 0; i < n; i++) {
		v = 1;
		if (write(b, &v, 8) != 8 || read(a, &v, 8) != 8)
			die("eventfd ping-pong");
	}
	double t = now() - t0;
	waitpid(pid, NULL, 0);
	close(a);
	close(b);
	return t / (double)n;
}

/* ---- the server process --------------------------------------------- */

static int
echo_fn(ocapn_vat *vat, ocapn_ref *self, const ocapn_value *args,
    ocapn_ref *resolver, void *user)
{
	(void)vat;
	(void)self;
	(void)user;
	return resolver ? ocapn_resolve(resolver, args) : OCAPN_OK;
}

static volatile uint8_t sink_seen;

static int
sink_fn(ocapn_vat *vat, ocapn_ref *self, const ocapn_value *args,
    ocapn_ref *resolver, void *user)
{
	(void)vat;
	(void)self;
	(void)user;
	if (args->len != 1 || args->u.items[0].kind != OCAPN_BYTES)
		return OCAPN_E_TYPE;
	const ocapn_value *b = &args->u.items[0];
	const uint8_t *p = b->u.p;
	if (b->len)
		sink_seen ^= p[0] ^ p[b->len - 1];
	ocapn_value n;
	ocapn_value_set_int(&n, (int64_t)b->len);
	return resolver ? ocapn_resolve(resolver, &n) : OCAPN_OK;
}

static ocapn_netlayer *server_shm;

/* [spin-ns]: set the server's spin budget. */
static int
ctrl_fn(ocapn_vat *vat, ocapn_ref *self, const ocapn_value *args,
    ocapn_ref *resolver, void *user)
{
	(void)vat;
	(void)self;
	(void)user;
	if (args->len != 1 || args->u.items[0].kind != OCAPN_INT)
		return OCAPN_E_TYPE;
	ocapn_shm_netlayer_set_spin(server_shm,
	    (uint64_t)args->u.items[0].u.i);
	ocapn_value t;
	ocapn_value_set_bool(&t, true);
	return resolver ? ocapn_resolve(resolver, &t) : OCAPN_OK;
}

static void
reg(ocapn_vat *vat, const char *swiss, ocapn_method_fn fn)
{
	ocapn_ref *o;
	if (ocapn_vat_spawn(vat, fn, NULL, NULL, &o) ||
	    ocapn_vat_register(vat, (const uint8_t *)swiss, strlen(swiss), o))
		die("spawn");
	ocapn_ref_release(o);
}

static ocapn_runtime *server_rt;

static void
on_term(uv_signal_t *h, int sig)
{
	(void)sig;
	uv_close((uv_handle_t *)h, NULL);
	ocapn_runtime_close(server_rt, NULL, NULL);
}

/* Serve echo, sink and control on shm and testuds; print the URIs of
 * their sturdyrefs (shm then testuds, three each) on `out`. */
static void
serve(const char *dir, int out)
{
	pin_to(1);
	if (ocapn_runtime_new(NULL, NULL, NULL, &server_rt))
		die("runtime");
	uv_loop_t *loop = ocapn_runtime_loop(server_rt);
	ocapn_netlayer *tu = NULL;
	uint8_t seed[32];
	memset(seed, 0x5e, sizeof(seed));
	if (ocapn_shm_netlayer_new(loop, dir, seed, NULL, &server_shm) ||
	    ocapn_testuds_netlayer_new(loop, dir, "bench-server", NULL, &tu) ||
	    ocapn_runtime_add_netlayer(server_rt, server_shm) ||
	    ocapn_runtime_add_netlayer(server_rt, tu))
		die("server netlayers");
	ocapn_vat *vat = ocapn_runtime_vat(server_rt);
	reg(vat, SW_ECHO, echo_fn);
	reg(vat, SW_SINK, sink_fn);
	reg(vat, SW_CTRL, ctrl_fn);
	FILE *f = fdopen(out, "w");
	ocapn_netlayer *nls[2] = {server_shm, tu};
	const char *sw[3] = {SW_ECHO, SW_SINK, SW_CTRL};
	for (int i = 0; i < 2; i++)
		for (int k = 0; k < 3; k++) {
			ocapn_buffer b;
			ocapn_buffer_init(&b);
			if (ocapn_runtime_sturdyref_uri(server_rt, nls[i],
				(const uint8_t *)sw[k], strlen(sw[k]), &b))
				die("uri");
			fprintf(f, "%s\n", (const char *)b.data);
			ocapn_buffer_release(&b, NULL);
		}
	fclose(f);
	uv_signal_t term;
	uv_signal_init(loop, &term);
	uv_signal_start(&term, on_term, SIGTERM);
	ocapn_runtime_run(server_rt);
	ocapn_runtime_free(server_rt);
	_exit(0);
}

/* ---- the client ------------------------------------------------------- */

struct client {
	ocapn_runtime *rt[2]; /* [0] shm big_buffer + testuds, [1] shm 4 MiB */
	ocapn_ref *echo[3], *sink[3], *ctrl; /* shm, shm4, testuds */
	char dir[64];
	pid_t server;
};

struct job {
	ocapn_ref *target;
	ocapn_value args, item;
	long total, sent, done, window;
	bool failed;
};

static void job_send(struct job *j);

static void
job_settled(ocapn_vat *vat, bool ok, const ocapn_value *v, void *user)
{
	struct job *j = user;
	(void)vat;
	(void)v;
	if (!ok)
		j->failed = true;
	j->done++;
	if (j->sent < j->total)
		job_send(j);
}

static void
job_send(struct job *j)
{
	ocapn_ref *res;
	if (ocapn_send(j->target, &j->args, &res)) {
		j->failed = true;
		j->done++;
		return;
	}
	j->sent++;
	ocapn_when(res, job_settled, j);
	ocapn_ref_release(res);
}

/* `total` calls with the bytestring (`len` bytes of `src`), `window` in
 * flight; returns the seconds it took. */
static double
run_job(ocapn_runtime *rt, ocapn_ref *target, const uint8_t *src,
    size_t len, long total, long window)
{
	struct job j;
	memset(&j, 0, sizeof(j));
	j.target = target;
	j.total = total;
	j.window = window;
	ocapn_value_set_bytes(&j.item, src, len);
	ocapn_value_set_list(&j.args, &j.item, 1);
	uv_loop_t *loop = ocapn_runtime_loop(rt);
	double t0 = now();
	for (long i = 0; i < window && i < total; i++)
		job_send(&j);
	while (j.done < j.total && !j.failed)
		uv_run(loop, UV_RUN_ONCE);
	double t = now() - t0;
	if (j.failed) {
		fprintf(stderr, "bench_shm_captp: a call failed\n");
		exit(1);
	}
	return t;
}

static ocapn_ref *
resolve(ocapn_runtime *rt, const char *uri)
{
	ocapn_ref *p;
	if (ocapn_runtime_enliven_uri(rt, uri, strlen(uri), &p))
		die("enliven");
	uv_loop_t *loop = ocapn_runtime_loop(rt);
	const ocapn_value *v;
	int rc;
	while ((rc = ocapn_promise_state(p, &v)) == OCAPN_E_AGAIN)
		uv_run(loop, UV_RUN_ONCE);
	if (rc || v->kind != OCAPN_REF) {
		fprintf(stderr, "bench_shm_captp: cannot reach %s\n", uri);
		exit(1);
	}
	ocapn_ref *o = ocapn_ref_retain(v->u.ref);
	ocapn_ref_release(p);
	return o;
}

static void
set_spin(struct client *c, uint64_t ns)
{
	ocapn_shm_netlayer_set_spin(ocapn_runtime_netlayer(c->rt[0], "shm"),
	    ns);
	ocapn_shm_netlayer_set_spin(ocapn_runtime_netlayer(c->rt[1], "shm"),
	    ns);
	ocapn_value v, l;
	ocapn_value_set_int(&v, (int64_t)ns);
	ocapn_value_set_list(&l, &v, 1);
	struct job j;
	memset(&j, 0, sizeof(j));
	j.target = c->ctrl;
	j.total = 1;
	j.args = l;
	job_send(&j);
	while (j.done < 1)
		uv_run(ocapn_runtime_loop(c->rt[0]), UV_RUN_ONCE);
}

static void
client_start(struct client *c)
{
	snprintf(c->dir, sizeof(c->dir), "/tmp/bench-shm-captp-XXXXXX");
	if (!mkdtemp(c->dir))
		die("mkdtemp");
	int p[2];
	if (pipe(p))
		die("pipe");
	fflush(NULL);
	c->server = fork();
	if (c->server < 0)
		die("fork");
	if (c->server == 0) {
		close(p[0]);
		serve(c->dir, p[1]);
	}
	close(p[1]);
	pin_to(0);
	char uris[6][512];
	FILE *f = fdopen(p[0], "r");
	for (int i = 0; i < 6; i++) {
		if (!fgets(uris[i], sizeof(uris[i]), f))
			die("server URIs");
		uris[i][strcspn(uris[i], "\n")] = '\0';
	}
	fclose(f);
	uv_loop_t *loop = malloc(sizeof(*loop));
	uv_loop_init(loop);
	for (int i = 0; i < 2; i++) {
		ocapn_netlayer *nl;
		if (ocapn_runtime_new(loop, NULL, NULL, &c->rt[i]) ||
		    ocapn_shm_netlayer_new(loop, c->dir, NULL, NULL, &nl) ||
		    ocapn_runtime_add_netlayer(c->rt[i], nl))
			die("client");
		if (i == 0) {
			ocapn_netlayer *tu = NULL;
			ocapn_shm_netlayer_set_buffer(nl, big_buffer);
			if (ocapn_testuds_netlayer_new(loop, c->dir,
				"bench-client", NULL, &tu) ||
			    ocapn_runtime_add_netlayer(c->rt[0], tu))
				die("client testuds");
		}
	}
	c->echo[0] = resolve(c->rt[0], uris[0]);
	c->sink[0] = resolve(c->rt[0], uris[1]);
	c->ctrl = resolve(c->rt[0], uris[2]);
	c->echo[1] = resolve(c->rt[1], uris[0]);
	c->sink[1] = resolve(c->rt[1], uris[1]);
	c->echo[2] = resolve(c->rt[0], uris[3]);
	c->sink[2] = resolve(c->rt[0], uris[4]);
}

static void
client_stop(struct client *c)
{
	for (int i = 0; i < 3; i++) {
		ocapn_ref_release(c->echo[i]);
		ocapn_ref_release(c->sink[i]);
	}
	ocapn_ref_release(c->ctrl);
	uv_loop_t *loop = ocapn_runtime_loop(c->rt[0]);
	for (int i = 0; i < 2; i++)
		ocapn_runtime_free(c->rt[i]);
	uv_run(loop, UV_RUN_DEFAULT);
	uv_loop_close(loop);
	free(loop);
	kill(c->server, SIGTERM);
	int st;
	waitpid(c->server, &st, 0);
	rmdir(c->dir);
	unpin();
}

#define REPS 5

static void
latency(struct client *c, long n)
{
	static uint8_t small[16] = "0123456789abcdef";
	double v[4][REPS];
	for (int r = 0; r < REPS; r++) {
		v[0][r] = bench_eventfd(n);
		set_spin(c, 50000);
		run_job(c->rt[0], c->echo[0], small, 16, n / 10, 1);
		v[1][r] = run_job(c->rt[0], c->echo[0], small, 16, n, 1) /
		    (double)n;
		set_spin(c, 0);
		run_job(c->rt[0], c->echo[0], small, 16, n / 10, 1);
		v[2][r] = run_job(c->rt[0], c->echo[0], small, 16, n, 1) /
		    (double)n;
		run_job(c->rt[0], c->echo[2], small, 16, n / 10, 1);
		v[3][r] = run_job(c->rt[0], c->echo[2], small, 16, n, 1) /
		    (double)n;
	}
	set_spin(c, 50000);
	static const char *const names[4] = {
		"eventfd ping-pong (wakeup floor)",
		"CapTP echo over shm, spin <= 50 us",
		"CapTP echo over shm, sleep on doorbell",
		"CapTP echo over testuds (Unix socket)",
	};
	double m[4];
	for (int k = 0; k < 4; k++)
		m[k] = median(v[k], REPS);
	printf("round trip, 16-byte bytestring, median of %d runs of %ld\n",
	    REPS, n);
	for (int k = 0; k < 4; k++) {
		printf("  %-40s %9.2f us", names[k], m[k] * 1e6);
		if (k)
			printf("  %5.2fx eventfd  %5.2fx testuds", m[k] / m[0],
			    m[k] / m[3]);
		printf("\n");
	}
}

static void
throughput(struct client *c, int quick, const uint8_t *src)
{
	static const size_t sizes[] = {64u << 10, 1u << 20, 8u << 20};
	static const long windows[] = {16, 8, 3};
	printf("throughput, bytestring arguments to a sink, median of 3 runs "
	    "(GB/s = 1e9 B/s)\n");
	char big[32], ratio[32];
	snprintf(big, sizeof(big), "shm %u MiB", (unsigned)(big_buffer >> 20));
	snprintf(ratio, sizeof(ratio), "%uM/tu", (unsigned)(big_buffer >> 20));
	printf("  %-8s %6s %12s %12s %12s %9s %9s\n", "message", "window",
	    big, "shm 4 MiB", "testuds", ratio, "4M/tu");
	for (size_t k = 0; k < 3; k++) {
		size_t size = sizes[k];
		long total = (quick ? (64l << 20) : (256l << 20)) / (long)size;
		double a[3], b[3], u[3];
		/* warm-up: fault in every page of the shared buffers (the
		 * allocator walks through all of them), grow the arenas */
		long warm = (long)((64u << 20) / size) + 8;
		run_job(c->rt[0], c->sink[0], src, size, warm, windows[k]);
		run_job(c->rt[1], c->sink[1], src, size, warm, windows[k]);
		run_job(c->rt[0], c->sink[2], src, size, warm, windows[k]);
		for (int r = 0; r < 3; r++) {
			double bytes = (double)size * (double)total;
			a[r] = bytes / run_job(c->rt[0], c->sink[0], src, size,
			    total, windows[k]);
			b[r] = bytes / run_job(c->rt[1], c->sink[1], src, size,
			    total, windows[k]);
			u[r] = bytes / run_job(c->rt[0], c->sink[2], src, size,
			    total, windows[k]);
		}
		double ma = median(a, 3), mb = median(b, 3), mu = median(u, 3);
		char name[32];
		if (size >= (1u << 20))
			snprintf(name, sizeof(name), "%zu MiB", size >> 20);
		else
			snprintf(name, sizeof(name), "%zu KiB", size >> 10);
		printf("  %-8s %6ld %12.2f %12.2f %12.2f %8.2fx %8.2fx\n",
		    name, windows[k], ma / 1e9, mb / 1e9, mu / 1e9, ma / mu,
		    mb / mu);
	}
}

int
main(int argc, char **argv)
{
	int quick = 0, modes = 3;
	const char *one = NULL;
	size_t one_size = 0;
	long one_mib = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--quick"))
			quick = 1;
		else if (!strcmp(argv[i], "--pinned"))
			modes = 1;
		else if (!strcmp(argv[i], "--unpinned"))
			modes = 2;
		else if (!strcmp(argv[i], "--buffer") && i + 1 < argc) {
			unsigned long mib = strtoul(argv[++i], NULL, 10);
			if (mib < 1 || mib > 1024) {
				fprintf(stderr, "bench_shm_captp: --buffer "
				    "takes 1 to 1024 (MiB)\n");
				return 2;
			}
			big_buffer = (uint32_t)(mib << 20);
		} else if (!strcmp(argv[i], "--one") && i + 3 < argc) {
			one = argv[++i];
			one_size = (size_t)strtoul(argv[++i], NULL, 10);
			one_mib = strtol(argv[++i], NULL, 10);
		} else {
			fprintf(stderr, "usage: bench_shm_captp [--quick] "
			    "[--pinned | --unpinned] [--buffer MIB]\n"
			    "       bench_shm_captp --one shm|shm4|testuds "
			    "SIZE MIB\n");
			return 2;
		}
	}
	signal(SIGPIPE, SIG_IGN);
	uint8_t *src = malloc(8u << 20);
	if (!src)
		die("malloc");
	for (size_t i = 0; i < (8u << 20); i++)
		src[i] = (uint8_t)(i * 2654435761u >> 13);
	if (one && !strncmp(one, "rt-", 3)) {
		/* round trips only: rt-shm, rt-shm0 (no spin), rt-testuds */
		pin = modes != 2;
		struct client c;
		client_start(&c);
		static uint8_t small[16] = "0123456789abcdef";
		int k = !strcmp(one, "rt-testuds") ? 2 : 0;
		set_spin(&c, !strcmp(one, "rt-shm0") ? 0 : 50000);
		long n = (long)one_size;
		run_job(c.rt[0], c.echo[k], small, 16, n / 10, 1);
		double t = run_job(c.rt[0], c.echo[k], small, 16, n, 1);
		printf("%s: %.2f us per round trip\n", one, t / (double)n *
		    1e6);
		client_stop(&c);
		return 0;
	}
	if (one) {
		pin = modes != 2;
		struct client c;
		client_start(&c);
		int k = !strcmp(one, "shm") ? 0 : !strcmp(one, "shm4") ? 1 : 2;
		ocapn_runtime *rt = c.rt[k == 1];
		long total = (one_mib << 20) / (long)one_size;
		long window = one_size >= (8u << 20) ? 3 :
		    one_size >= (1u << 20) ? 8 : 16;
		run_job(rt, c.sink[k], src, one_size,
		    (long)((64u << 20) / one_size) + 8, window);
		double t = run_job(rt, c.sink[k], src, one_size, total,
		    window);
		printf("%s: %ld messages of %zu bytes: %.2f GB/s\n", one,
		    total, one_size, (double)one_size * (double)total / t /
		    1e9);
		client_stop(&c);
		struct rusage ru, rc;
		getrusage(RUSAGE_SELF, &ru);
		getrusage(RUSAGE_CHILDREN, &rc);
		printf("  client: %ld minor faults, %ld voluntary and %ld "
		    "involuntary switches; server: %ld, %ld, %ld\n",
		    ru.ru_minflt, ru.ru_nvcsw, ru.ru_nivcsw, rc.ru_minflt,
		    rc.ru_nvcsw, rc.ru_nivcsw);
		return 0;
	}
	char load[64] = "?\n";
	FILE *lf = fopen("/proc/loadavg", "r");
	if (lf) {
		if (!fgets(load, sizeof(load), lf))
			snprintf(load, sizeof(load), "?\n");
		fclose(lf);
	}
	printf("CapTP over shm and testuds, two processes; %ld CPUs online; "
	    "load average at start: %s", sysconf(_SC_NPROCESSORS_ONLN), load);
	for (int mode = 1; mode <= 2; mode++) {
		if (!(modes & mode))
			continue;
		pin = mode == 1;
		printf("\n== %s ==\n", pin ? "pinned: client on CPU 0, server "
		    "on CPU 1" : "unpinned");
		struct client c;
		client_start(&c);
		if (!getenv("BENCH_NO_LAT"))
			latency(&c, quick ? 500 : 2000);
		throughput(&c, quick, src);
		client_stop(&c);
	}
	free(src);
	return 0;
}
