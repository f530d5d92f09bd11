/*
 * Netlayer benchmark: echo round trips between two processes over each
 * built-in netlayer, next to bare ping-pongs over the same transport,
 * measured in the same run (repetition by repetition, so every ratio
 * compares figures taken seconds apart).
 *
 * Processes (fork): one libocapn server per netlayer (a runtime, the
 * netlayer, an echo object and the conformance suite's car-factory
 * builder), and per transport two bare responders for length-prefixed
 * frames: one with blocking reads and writes, one on a libuv loop.  This
 * process is the client of all of them: a libocapn runtime enlivening
 * the servers' sturdyrefs, and blocking sockets for the bare ones.
 *
 * Workloads:
 *   echo     16 B, 1 KiB, 64 KiB and 1 MiB bytestrings, one call after the
 *            other (round-trip time);
 *   window   16 B calls with 1, 16 and 128 outstanding (calls per second);
 *   chain    the depth-3 car-factory chain, pipelined (three sends before
 *            anything resolves) and awaiting each step.
 *
 * Usage: bench_net [--reps R] [--quick] [--netlayer NAME]...
 *        bench_net --profile SIZE N [--window W | --chain]
 *            [--netlayer NAME]...
 * The second form runs only N libocapn echo calls of SIZE bytes per
 * netlayer (W outstanding, default 1), or N pipelined depth-3 chains,
 * no baselines: a workload to run under perf or strace -c.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "bench_stats.h"
#include "netbench.h"

static const size_t sizes[] = {16, 1024, 65536, 1048576};
static const size_t size_calls[] = {4000, 4000, 500, 40};
#define NSIZES (sizeof(sizes) / sizeof(sizes[0]))
static const size_t windows[] = {1, 16, 128};
static const size_t window_calls[] = {4000, 20000, 40000};
#define NWINDOWS (sizeof(windows) / sizeof(windows[0]))
static const size_t chain_calls = 1000;

struct results {
	const struct nb_netlayer *nl;
	struct nb_proc server, bare, bare_uv;
	nb_target *target;
	int fd_bare, fd_uv;
	struct bench_series rtt[NSIZES], bare_rtt[NSIZES], uv_rtt[NSIZES];
	struct bench_series r_bare[NSIZES], r_uv[NSIZES];
	struct bench_series cpu[NSIZES], faults[NSIZES]; /* client, ocapn */
	struct bench_series win[NWINDOWS], bare_win[NWINDOWS], r_win[NWINDOWS];
	struct bench_series pipe, wait, pipe_rtt, wait_rtt, pipe_wait;
};

static const char *
family_name(enum nb_family f)
{
	return f == NB_TCP ? "TCP loopback" : "Unix socket";
}

static const char *
size_name(size_t s)
{
	static char buf[4][32];
	static int i;
	i = (i + 1) % 4;
	if (s >= 1048576)
		snprintf(buf[i], sizeof(buf[i]), "%zu MiB", s / 1048576);
	else if (s >= 1024)
		snprintf(buf[i], sizeof(buf[i]), "%zu KiB", s / 1024);
	else
		snprintf(buf[i], sizeof(buf[i]), "%zu B", s);
	return buf[i];
}

/* CPU microseconds and minor page faults of this process so far. */
static void
usage_now(double *cpu_us, double *faults)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	*cpu_us = (double)ru.ru_utime.tv_sec * 1e6 +
	    (double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_sec * 1e6 +
	    (double)ru.ru_stime.tv_usec;
	*faults = (double)ru.ru_minflt;
}

/* Each figure is taken in SLICES pieces, interleaved with the pieces of
 * the figures it is compared with, so a burst of load from elsewhere on
 * the machine falls on both sides of a ratio. */
#define SLICES 4

static void
one_rep(nb_client *c, struct results *res, size_t div, bool record)
{
	for (size_t i = 0; i < NSIZES; i++) {
		size_t n = size_calls[i] / div / SLICES;
		double o = 0, b = 0, u = 0, cpu = 0, flt = 0;
		if (n == 0)
			n = 1;
		for (int k = 0; k < SLICES; k++) {
			double c0, f0, c1, f1;
			usage_now(&c0, &f0);
			o += nb_echo(c, res->target, sizes[i], 1, n);
			usage_now(&c1, &f1);
			cpu += c1 - c0;
			flt += f1 - f0;
			b += nb_bare_echo(res->fd_bare, sizes[i], 1, n);
			u += nb_bare_echo(res->fd_uv, sizes[i], 1, n);
		}
		o /= (double)n * SLICES * 1e3;
		b /= (double)n * SLICES * 1e3;
		u /= (double)n * SLICES * 1e3;
		if (!record)
			continue;
		bench_add(&res->rtt[i], o);
		bench_add(&res->bare_rtt[i], b);
		bench_add(&res->uv_rtt[i], u);
		bench_add(&res->r_bare[i], o / b);
		bench_add(&res->r_uv[i], o / u);
		bench_add(&res->cpu[i], cpu / (double)(n * SLICES));
		bench_add(&res->faults[i], flt / (double)(n * SLICES));
	}
	for (size_t i = 0; i < NWINDOWS; i++) {
		size_t n = window_calls[i] / div / SLICES;
		double o = 0, b = 0;
		if (n == 0)
			n = 1;
		for (int k = 0; k < SLICES; k++) {
			o += nb_echo(c, res->target, 16, windows[i], n);
			b += nb_bare_echo(res->fd_bare, 16, windows[i], n);
		}
		o = (double)n * SLICES / (o / 1e9);
		b = (double)n * SLICES / (b / 1e9);
		if (!record)
			continue;
		bench_add(&res->win[i], o);
		bench_add(&res->bare_win[i], b);
		bench_add(&res->r_win[i], o / b);
	}
	size_t n = chain_calls / div / SLICES;
	double p = 0, w = 0, e = 0;
	if (n == 0)
		n = 1;
	for (int k = 0; k < SLICES; k++) {
		p += nb_chain(c, res->target, true, n);
		w += nb_chain(c, res->target, false, n);
		e += nb_echo(c, res->target, 16, 1, n);
	}
	/* The chain is compared with echo round trips taken between its
	 * own slices. */
	if (!record)
		return;
	bench_add(&res->pipe, p / (double)(n * SLICES) / 1e3);
	bench_add(&res->wait, w / (double)(n * SLICES) / 1e3);
	bench_add(&res->pipe_rtt, p / e);
	bench_add(&res->wait_rtt, w / e);
	bench_add(&res->pipe_wait, p / w);
}

/* Median [min-max] with `prec` decimals. */
static void
cell(const struct bench_series *s, int prec)
{
	double m, lo, hi;
	char buf[64];
	bench_summary(s, &m, &lo, &hi);
	snprintf(buf, sizeof(buf), "%.*f", prec, m);
	printf(" %9s", buf);
	printf(" [%.*f-%.*f]", prec, lo, prec, hi);
}

static void
print_results(const struct results *r, size_t reps)
{
	printf("\n== %s (baselines over %s), %zu repetitions: median "
	       "[min-max]\n",
	    r->nl->transport, family_name(r->nl->family), reps);
	printf("echo round trip, us: ocapn | bare blocking | bare libuv "
	       "responder | ocapn/bare | ocapn/bare-libuv\n");
	for (size_t i = 0; i < NSIZES; i++) {
		printf("  %-7s", size_name(sizes[i]));
		cell(&r->rtt[i], 1);
		cell(&r->bare_rtt[i], 1);
		cell(&r->uv_rtt[i], 1);
		cell(&r->r_bare[i], 2);
		cell(&r->r_uv[i], 2);
		printf("\n");
	}
	printf("ocapn client process per echo: CPU us | minor page "
	       "faults\n");
	for (size_t i = 0; i < NSIZES; i++) {
		printf("  %-7s", size_name(sizes[i]));
		cell(&r->cpu[i], 1);
		cell(&r->faults[i], 2);
		printf("\n");
	}
	printf("16 B calls per second with W outstanding: ocapn | bare "
	       "blocking | ocapn/bare\n");
	for (size_t i = 0; i < NWINDOWS; i++) {
		printf("  W=%-5zu", windows[i]);
		cell(&r->win[i], 0);
		cell(&r->bare_win[i], 0);
		cell(&r->r_win[i], 2);
		printf("\n");
	}
	printf("depth-3 chain, us: pipelined | awaiting each step | "
	       "pipelined/echo | awaited/echo | pipelined/awaited\n");
	printf("  %-7s", "");
	cell(&r->pipe, 1);
	cell(&r->wait, 1);
	cell(&r->pipe_rtt, 2);
	cell(&r->wait_rtt, 2);
	cell(&r->pipe_wait, 2);
	printf("\n");
}

static void
print_targets(struct results *res, size_t nres)
{
	printf("\n== targets\n");
	for (size_t i = 0; i < nres; i++) {
		const struct results *r = &res[i];
		double m16 = bench_median(&r->r_bare[0]);
		double w128 = bench_median(&r->win[NWINDOWS - 1]);
		double pipe = bench_median(&r->pipe_rtt);
		if (r->nl->family == NB_UNIX)
			printf("  %s: 16 B echo / bare Unix-socket ping-pong "
			       "= %.2fx (target <= 1.5x): %s\n",
			    r->nl->transport, m16,
			    m16 <= 1.5 ? "met" : "MISSED");
		printf("  %s: window-128 throughput %.0f calls/s (target "
		       "well above 100000): %s\n",
		    r->nl->transport, w128,
		    w128 >= 200000 ? "met (>= 2x)"
		    : w128 > 100000 ? "above, but not 2x"
				    : "MISSED");
		printf("  %s: pipelined depth-3 chain = %.2f echo round "
		       "trips (target about 1; awaiting each step: %.2f): "
		       "%s\n",
		    r->nl->transport, pipe, bench_median(&r->wait_rtt),
		    pipe <= 1.5 ? "met" : "MISSED");
	}
}

static void
run_all(nb_client *c, struct results *res, size_t nres, size_t reps,
    size_t div)
{
	for (size_t i = 0; i < nres; i++)
		one_rep(c, &res[i], div * 4, false); /* warm-up */
	for (size_t k = 0; k < reps; k++)
		for (size_t i = 0; i < nres; i++)
			one_rep(c, &res[i], div, true);
	for (size_t i = 0; i < nres; i++)
		print_results(&res[i], reps);
	print_targets(res, nres);
}

int
main(int argc, char **argv)
{
	size_t reps = 7, div = 1, prof_size = 0, prof_n = 0, prof_w = 1;
	int prof_chain = 0;
	const char *only[8];
	size_t nonly = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--profile") && i + 2 < argc) {
			prof_size = (size_t)strtoul(argv[++i], NULL, 10);
			prof_n = (size_t)strtoul(argv[++i], NULL, 10);
		} else if (!strcmp(argv[i], "--window") && i + 1 < argc) {
			prof_w = (size_t)strtoul(argv[++i], NULL, 10);
		} else if (!strcmp(argv[i], "--chain")) {
			prof_chain = 1;
		} else if (!strcmp(argv[i], "--reps") && i + 1 < argc)
			reps = (size_t)strtoul(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--quick")) {
			reps = 3;
			div = 10;
		} else if (!strcmp(argv[i], "--netlayer") && i + 1 < argc &&
		    nonly < 8)
			only[nonly++] = argv[++i];
		else {
			fprintf(stderr, "usage: bench_net [--reps R] [--quick] "
					"[--netlayer NAME]...\n"
					"       bench_net --profile SIZE N "
					"[--window W | --chain] "
					"[--netlayer NAME]...\n");
			return 2;
		}
	}
	if (reps < 1)
		reps = 1;
	if (reps > BENCH_MAX_SAMPLES)
		reps = BENCH_MAX_SAMPLES;
	if (!nb_tmpdir()[0]) {
		perror("bench_net: temporary directory");
		return 1;
	}

	/* Every server first: fork before this process has a loop. */
	struct results *res = calloc(nb_nnetlayers, sizeof(*res));
	size_t nres = 0;
	if (!res)
		return 1;
	for (size_t i = 0; i < nb_nnetlayers; i++) {
		bool want = nonly == 0;
		for (size_t k = 0; k < nonly; k++)
			want |= !strcmp(only[k], nb_netlayers[i].transport);
		if (!want)
			continue;
		struct results *r = &res[nres++];
		r->nl = &nb_netlayers[i];
		if (nb_start_ocapn_server(r->nl, &r->server) ||
		    (!prof_n &&
			(nb_start_bare_server(r->nl->family, false,
			     &r->bare) ||
			    nb_start_bare_server(r->nl->family, true,
				&r->bare_uv)))) {
			fprintf(stderr, "bench_net: cannot start the servers "
					"for %s\n",
			    r->nl->transport);
			return 1;
		}
	}
	if (nres == 0) {
		fprintf(stderr, "bench_net: no such netlayer\n");
		return 2;
	}
	const struct nb_netlayer *nls[8];
	for (size_t i = 0; i < nres && i < 8; i++)
		nls[i] = res[i].nl;
	nb_client *c = nb_client_new(nls, nres < 8 ? nres : 8);
	if (!c)
		return 1;
	for (size_t i = 0; i < nres; i++) {
		struct results *r = &res[i];
		r->target = nb_client_connect(c, &r->server);
		r->fd_bare = prof_n ? -2 : nb_bare_connect(&r->bare);
		r->fd_uv = prof_n ? -2 : nb_bare_connect(&r->bare_uv);
		if (!r->target || r->fd_bare == -1 || r->fd_uv == -1) {
			fprintf(stderr, "bench_net: cannot connect (%s)\n",
			    r->nl->transport);
			return 1;
		}
	}

	if (prof_n) {
		for (size_t i = 0; i < nres; i++) {
			double c0, f0, c1, f1;
			nb_echo(c, res[i].target, prof_size, prof_w,
			    prof_n / 10 + 1); /* warm-up */
			usage_now(&c0, &f0);
			double ns = prof_chain ?
			    nb_chain(c, res[i].target, true, prof_n) :
			    nb_echo(c, res[i].target, prof_size, prof_w,
				prof_n);
			usage_now(&c1, &f1);
			char what[64];
			if (prof_chain)
				snprintf(what, sizeof(what), "pipelined "
				    "chains");
			else
				snprintf(what, sizeof(what), "echo calls of "
				    "%zu bytes, window %zu", prof_size,
				    prof_w);
			printf("%s: %zu %s: %.1f us per call, client CPU "
			       "%.1f us and %.2f page faults per call\n",
			    res[i].nl->transport, prof_n, what,
			    ns / (double)prof_n / 1e3,
			    (c1 - c0) / (double)prof_n,
			    (f1 - f0) / (double)prof_n);
		}
	} else {
		printf("netlayer benchmark: client and servers in separate "
		       "processes, %zu repetitions\n",
		    reps);
		fflush(stdout);
		run_all(c, res, nres, reps, div);
	}
	for (size_t i = 0; i < nres; i++) {
		if (res[i].fd_bare >= 0)
			close(res[i].fd_bare);
		if (res[i].fd_uv >= 0)
			close(res[i].fd_uv);
		nb_target_free(res[i].target);
	}
	nb_client_free(c);
	for (size_t i = 0; i < nres; i++) {
		nb_stop(&res[i].server);
		nb_stop(&res[i].bare);
		nb_stop(&res[i].bare_uv);
	}
	free(res);
	return 0;
}
