/*
 * CapTP engine benchmark: two vats, one session each, connected back to
 * back in memory (this program moves the bytes itself; no I/O, no
 * event loop).  Measured in the same run, repetition by repetition:
 *
 *   echo      a steady-state echo round trip with a 16-byte bytestring:
 *             op:deliver out, the op:deliver-only 'fulfill back, and the
 *             GC messages the round trip causes;
 *   codec     the raw Syrup decode + encode of the same wire messages,
 *             captured from a real round trip of this run: the op:deliver
 *             and the deliver-only 'fulfill, and (second figure) every
 *             message of the round trip including GC;
 *   pipeline  a depth-3 chain builder <- () <- [color model] <- () (the
 *             conformance suite's car factory) sent before anything
 *             resolves, against the same chain awaiting each step;
 *   allocs    allocator calls per steady-state round trip and per chain,
 *             counted by a counting ocapn_allocator on both vats.
 *
 * The engine's cost is reported as a ratio over the codec's, so the
 * figure means the same on a fast or a slow machine.  Instruction counts:
 * bench/callgrind_captp.sh runs the `--callgrind WHAT N` mode under
 * valgrind with --toggle-collect on one measuring function.
 *
 * Usage: bench_captp [--reps R] [--iters N] [--quick] [--show]
 *        bench_captp --callgrind engine|codec|codec-all|pipeline N
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ocapn/ocapn.h>

#include "../tools/ocapn/suite_objects.h"
#include "bench_stats.h"

#define NOINLINE __attribute__((noinline))

#define ECHO_SWISS "IO58l1laTyhcrgDKbEzFOO32MDd6zE5w"
#define BUILDER_SWISS "JadQ0++RzsD4M+40uLxTWVaVqM10DcBJ"
#define PAYLOAD 16

static void die(const char *what, int rc) __attribute__((noreturn));

static void
die(const char *what, int rc)
{
	fprintf(stderr, "bench_captp: %s: %s\n", what, ocapn_strerror(rc));
	exit(1);
}

/* ---- counting allocator ------------------------------------------- */

struct counter {
	uint64_t calls; /* allocations and resizes (frees not counted) */
};

static void *
counting_alloc(void *user, void *ptr, size_t old, size_t n)
{
	struct counter *c = user;
	(void)old;
	if (n == 0) {
		free(ptr);
		return NULL;
	}
	c->calls++;
	return realloc(ptr, n);
}

/* ---- two vats back to back ------------------------------------------ */

#define MAX_CAPTURE 16

struct wire_msg {
	int dir; /* 0: A->B, 1: B->A */
	char label[32];
	uint8_t *bytes;
	size_t len;
};

struct pair {
	struct counter ca, cb;
	ocapn_allocator aa, ab;
	ocapn_vat *va, *vb;
	ocapn_session *a, *b;
	ocapn_ref *echo, *builder;
	uint8_t payload[PAYLOAD];
	/* capture of one round trip's messages */
	bool capturing;
	struct wire_msg cap[MAX_CAPTURE];
	size_t ncap;
	uint64_t bytes_moved;
};

static void
capture(struct pair *p, int dir, const uint8_t *m, size_t n)
{
	if (p->ncap == MAX_CAPTURE)
		return;
	struct wire_msg *w = &p->cap[p->ncap++];
	w->dir = dir;
	w->bytes = malloc(n);
	if (!w->bytes)
		die("capture", OCAPN_E_NOMEM);
	memcpy(w->bytes, m, n);
	w->len = n;
	/* The label: decode once, outside every measurement. */
	ocapn_syrup_decoder *d = ocapn_syrup_decoder_new(0, NULL);
	ocapn_arena *ar = ocapn_arena_new(NULL);
	ocapn_value *v;
	snprintf(w->label, sizeof(w->label), "?");
	if (ocapn_syrup_decode_one(d, ar, m, n, &v) == OCAPN_OK &&
	    v->kind == OCAPN_RECORD && v->u.items[0].kind == OCAPN_SYMBOL)
		snprintf(w->label, sizeof(w->label), "%.*s",
		    (int)v->u.items[0].len, (const char *)v->u.items[0].u.p);
	ocapn_arena_free(ar);
	ocapn_syrup_decoder_free(d);
}

/* Move everything `from` has to send into `to`.  The bytes are fed
 * straight from `from`'s output buffer: feeding `to` (another vat) never
 * touches `from`. */
static size_t
move(struct pair *p, ocapn_session *from, ocapn_session *to, int dir)
{
	const uint8_t *d;
	size_t n, total = 0;
	if (p->capturing) {
		for (;;) {
			ocapn_session_next_message(from, &d, &n);
			if (!n)
				break;
			capture(p, dir, d, n);
			ocapn_session_feed(to, d, n);
			ocapn_session_consume(from, n);
			total += n;
		}
	} else {
		ocapn_session_output(from, &d, &n);
		if (n) {
			ocapn_session_feed(to, d, n);
			ocapn_session_consume(from, n);
			total = n;
		}
	}
	p->bytes_moved += total;
	return total;
}

/* One round: A's output to B, B's turns, B's output to A, A's turns.
 * Returns whether anything happened. */
static bool
round_once(struct pair *p)
{
	size_t moved = move(p, p->a, p->b, 0);
	size_t turns = ocapn_vat_run(p->vb, 0);
	moved += move(p, p->b, p->a, 1);
	turns += ocapn_vat_run(p->va, 0);
	return moved || turns;
}

static void
pump(struct pair *p)
{
	for (int i = 0; i < 100000; i++)
		if (!round_once(p))
			return;
	fprintf(stderr, "bench_captp: the sessions never went quiet\n");
	exit(1);
}

/* Rounds until `promise` is no longer pending. */
static unsigned
rounds_until_settled(struct pair *p, ocapn_ref *promise)
{
	const ocapn_value *v;
	unsigned rounds = 0;
	while (ocapn_promise_state(promise, &v) == OCAPN_E_AGAIN) {
		if (!round_once(p)) {
			fprintf(stderr, "bench_captp: promise never settled\n");
			exit(1);
		}
		rounds++;
	}
	return rounds;
}

static ocapn_locator *
loc(const char *name)
{
	ocapn_locator *l;
	int rc = ocapn_locator_new("loopback", 8, name, strlen(name), NULL,
	    &l);
	if (rc)
		die("locator", rc);
	return l;
}

static ocapn_ref *
fetch(struct pair *p, const char *swiss)
{
	ocapn_ref *r;
	int rc = ocapn_session_fetch(p->a, (const uint8_t *)swiss,
	    strlen(swiss), &r);
	if (rc)
		die("fetch", rc);
	rounds_until_settled(p, r);
	const ocapn_value *v;
	if (ocapn_promise_state(r, &v) != OCAPN_OK || v->kind != OCAPN_REF) {
		fprintf(stderr, "bench_captp: fetch failed\n");
		exit(1);
	}
	return r;
}

static void
pair_init(struct pair *p)
{
	memset(p, 0, sizeof(*p));
	p->aa.fn = p->ab.fn = counting_alloc;
	p->aa.user = &p->ca;
	p->ab.user = &p->cb;
	int rc;
	if ((rc = ocapn_vat_new(&p->aa, &p->va)) ||
	    (rc = ocapn_vat_new(&p->ab, &p->vb)))
		die("vat", rc);
	if ((rc = suite_register(p->vb)))
		die("suite objects", rc);
	ocapn_locator *la = loc("alice"), *lb = loc("bob");
	if ((rc = ocapn_session_new(p->va, OCAPN_ROLE_INITIATOR, la,
		 OCAPN_DIALECT_AUTO, &p->a)) ||
	    (rc = ocapn_session_new(p->vb, OCAPN_ROLE_ACCEPTOR, lb,
		 OCAPN_DIALECT_AUTO, &p->b)) ||
	    (rc = ocapn_session_set_remote(p->a, lb)) ||
	    (rc = ocapn_session_start(p->a)) ||
	    (rc = ocapn_session_start(p->b)))
		die("session", rc);
	ocapn_locator_free(la);
	ocapn_locator_free(lb);
	pump(p);
	if (ocapn_session_get_state(p->a) != OCAPN_SESSION_ACTIVE ||
	    ocapn_session_get_state(p->b) != OCAPN_SESSION_ACTIVE) {
		fprintf(stderr, "bench_captp: handshake failed\n");
		exit(1);
	}
	p->echo = fetch(p, ECHO_SWISS);
	p->builder = fetch(p, BUILDER_SWISS);
	pump(p);
	for (size_t i = 0; i < PAYLOAD; i++)
		p->payload[i] = (uint8_t)('a' + i);
}

static void
pair_free(struct pair *p)
{
	ocapn_ref_release(p->echo);
	ocapn_ref_release(p->builder);
	ocapn_session_free(p->a);
	ocapn_session_free(p->b);
	ocapn_vat_free(p->va);
	ocapn_vat_free(p->vb);
	for (size_t i = 0; i < p->ncap; i++)
		free(p->cap[i].bytes);
}

/* ---- workloads ------------------------------------------------------ */

static void
echo_once(struct pair *p)
{
	ocapn_value item, args;
	ocapn_value_set_bytes(&item, p->payload, PAYLOAD);
	ocapn_value_set_list(&args, &item, 1);
	ocapn_ref *res;
	int rc = ocapn_send(p->echo, &args, &res);
	if (rc)
		die("send", rc);
	pump(p);
	const ocapn_value *v;
	if (ocapn_promise_state(res, &v) != OCAPN_OK ||
	    v->kind != OCAPN_LIST || v->len != 1 ||
	    v->u.items[0].len != PAYLOAD) {
		fprintf(stderr, "bench_captp: wrong echo answer\n");
		exit(1);
	}
	ocapn_ref_release(res);
	pump(p); /* the GC messages the round trip caused */
}

static NOINLINE void
echo_round_trips(struct pair *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		echo_once(p);
}

/* Build the car factory chain; `pipelined` sends all three before
 * anything resolves, otherwise each step waits for the previous answer.
 * Returns the rounds (A->B->A exchanges) until the car's answer. */
static unsigned
chain_once(struct pair *p, bool pipelined)
{
	ocapn_value none, spec[2], specl, args;
	ocapn_value_set_list(&none, NULL, 0);
	ocapn_value_set_symbol(&spec[0], "red", 3);
	ocapn_value_set_symbol(&spec[1], "zoom", 4);
	ocapn_value_set_list(&specl, spec, 2);
	ocapn_value_set_list(&args, &specl, 1);
	ocapn_ref *factory = NULL, *car = NULL, *text = NULL;
	unsigned rounds = 0;
	int rc = ocapn_send(p->builder, &none, &factory);
	if (!rc && !pipelined)
		rounds += rounds_until_settled(p, factory);
	if (!rc)
		rc = ocapn_send(factory, &args, &car);
	if (!rc && !pipelined)
		rounds += rounds_until_settled(p, car);
	if (!rc)
		rc = ocapn_send(car, &none, &text);
	if (rc)
		die("send", rc);
	rounds += rounds_until_settled(p, text);
	const ocapn_value *v;
	if (ocapn_promise_state(text, &v) != OCAPN_OK ||
	    v->kind != OCAPN_STRING) {
		fprintf(stderr, "bench_captp: the car did not answer\n");
		exit(1);
	}
	ocapn_ref_release(text);
	ocapn_ref_release(car);
	ocapn_ref_release(factory);
	pump(p);
	return rounds;
}

static NOINLINE void
chains(struct pair *p, size_t n, bool pipelined)
{
	for (size_t i = 0; i < n; i++)
		chain_once(p, pipelined);
}

/* ---- codec baseline ------------------------------------------------- */

struct codec {
	ocapn_syrup_decoder *dec;
	ocapn_arena *arena;
	ocapn_syrup_writer *w;
	const struct wire_msg *msgs[MAX_CAPTURE];
	size_t n;
	size_t sink;
};

/* Decode each message into the arena and encode the value again: the
 * raw codec work of one round trip's worth of these messages. */
static NOINLINE void
codec_round_trips(struct codec *c, size_t iters)
{
	for (size_t it = 0; it < iters; it++) {
		for (size_t i = 0; i < c->n; i++) {
			ocapn_value *v;
			const uint8_t *d;
			size_t len;
			ocapn_arena_reset(c->arena);
			if (ocapn_syrup_decode_one(c->dec, c->arena,
				c->msgs[i]->bytes, c->msgs[i]->len, &v) ||
			    (ocapn_syrup_writer_reset(c->w),
				ocapn_syrup_write_value(c->w, v)) ||
			    ocapn_syrup_writer_finish(c->w, &d, &len)) {
				fprintf(stderr, "bench_captp: codec failed\n");
				exit(1);
			}
			c->sink += len;
		}
	}
}

static void
codec_init(struct codec *c, const struct pair *p, bool all)
{
	memset(c, 0, sizeof(*c));
	c->dec = ocapn_syrup_decoder_new(0, NULL);
	c->arena = ocapn_arena_new(NULL);
	c->w = ocapn_syrup_writer_new(0, NULL);
	if (!c->dec || !c->arena || !c->w)
		die("codec", OCAPN_E_NOMEM);
	for (size_t i = 0; i < p->ncap; i++) {
		const struct wire_msg *m = &p->cap[i];
		if (all || (m->dir == 0 && !strcmp(m->label, "op:deliver")) ||
		    (m->dir == 1 && !strcmp(m->label, "op:deliver-only")))
			c->msgs[c->n++] = m;
	}
	/* The encoder must give back the very bytes of the wire. */
	for (size_t i = 0; i < c->n; i++) {
		ocapn_value *v;
		const uint8_t *d;
		size_t len;
		ocapn_arena_reset(c->arena);
		if (ocapn_syrup_decode_one(c->dec, c->arena, c->msgs[i]->bytes,
			c->msgs[i]->len, &v) ||
		    (ocapn_syrup_writer_reset(c->w),
			ocapn_syrup_write_value(c->w, v)) ||
		    ocapn_syrup_writer_finish(c->w, &d, &len) ||
		    len != c->msgs[i]->len ||
		    memcmp(d, c->msgs[i]->bytes, len)) {
			fprintf(stderr, "bench_captp: %s does not re-encode to "
					"its wire bytes\n",
			    c->msgs[i]->label);
			exit(1);
		}
	}
}

static void
codec_free(struct codec *c)
{
	ocapn_syrup_decoder_free(c->dec);
	ocapn_arena_free(c->arena);
	ocapn_syrup_writer_free(c->w);
}

/* ---- callgrind mode ------------------------------------------------- */

/* Entry points for valgrind --toggle-collect: only what runs inside one
 * of these is counted. */
static NOINLINE void
measure_engine(struct pair *p, size_t n)
{
	echo_round_trips(p, n);
}

static NOINLINE void
measure_codec(struct codec *c, size_t n)
{
	codec_round_trips(c, n);
}

static NOINLINE void
measure_pipeline(struct pair *p, size_t n)
{
	chains(p, n, true);
}

static void
capture_round_trip(struct pair *p)
{
	p->capturing = true;
	echo_once(p);
	p->capturing = false;
}

static int
callgrind_mode(const char *what, size_t n)
{
	struct pair p;
	pair_init(&p);
	echo_round_trips(&p, 2000); /* warm: pools, maps, buffers */
	chains(&p, 200, true);
	capture_round_trip(&p);
	struct codec c;
	codec_init(&c, &p, !strcmp(what, "codec-all"));
	codec_round_trips(&c, 2000);
	if (!strcmp(what, "engine"))
		measure_engine(&p, n);
	else if (!strcmp(what, "codec") || !strcmp(what, "codec-all"))
		measure_codec(&c, n);
	else if (!strcmp(what, "pipeline"))
		measure_pipeline(&p, n);
	else {
		fprintf(stderr, "bench_captp: unknown --callgrind mode '%s'\n",
		    what);
		return 2;
	}
	printf("%s %zu\n", what, n);
	codec_free(&c);
	pair_free(&p);
	return 0;
}

/* ---- main ----------------------------------------------------------- */

static void
print_series(const char *name, const struct bench_series *s,
    const char *unit)
{
	double m, lo, hi;
	bench_summary(s, &m, &lo, &hi);
	printf("  %-34s %10.1f %-6s (min %.1f, max %.1f)\n", name, m, unit,
	    lo, hi);
}

static void
print_ratio(const char *name, const struct bench_series *s)
{
	double m, lo, hi;
	bench_summary(s, &m, &lo, &hi);
	printf("  %-34s %10.2fx        (min %.2f, max %.2f)\n", name, m, lo,
	    hi);
}

int
main(int argc, char **argv)
{
	size_t reps = 15, iters = 20000;
	bool show = false;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--callgrind") && i + 2 < argc)
			return callgrind_mode(argv[i + 1],
			    (size_t)strtoul(argv[i + 2], NULL, 10));
		if (!strcmp(argv[i], "--reps") && i + 1 < argc)
			reps = (size_t)strtoul(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--iters") && i + 1 < argc)
			iters = (size_t)strtoul(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--quick")) {
			reps = 5;
			iters = 2000;
		} else if (!strcmp(argv[i], "--show"))
			show = true;
		else {
			fprintf(stderr,
			    "usage: bench_captp [--reps R] [--iters N] "
			    "[--quick] [--show]\n"
			    "       bench_captp --callgrind "
			    "engine|codec|codec-all|pipeline N\n");
			return 2;
		}
	}
	if (reps < 1)
		reps = 1;
	if (reps > BENCH_MAX_SAMPLES)
		reps = BENCH_MAX_SAMPLES;
	if (iters < 10)
		iters = 10;

	struct pair p;
	pair_init(&p);
	echo_round_trips(&p, iters / 4 + 1000); /* warm-up */
	chains(&p, iters / 40 + 100, true);
	chains(&p, iters / 40 + 100, false);

	/* One steady-state round trip, message by message. */
	uint64_t out_a = ocapn_session_stat_get(p.a, OCAPN_STAT_MSGS_OUT);
	uint64_t out_b = ocapn_session_stat_get(p.b, OCAPN_STAT_MSGS_OUT);
	capture_round_trip(&p);
	out_a = ocapn_session_stat_get(p.a, OCAPN_STAT_MSGS_OUT) - out_a;
	out_b = ocapn_session_stat_get(p.b, OCAPN_STAT_MSGS_OUT) - out_b;
	size_t wire = 0;
	for (size_t i = 0; i < p.ncap; i++)
		wire += p.cap[i].len;

	struct codec c2, call;
	codec_init(&c2, &p, false);
	codec_init(&call, &p, true);
	codec_round_trips(&c2, iters / 4 + 1000);
	codec_round_trips(&call, iters / 4 + 1000);
	unsigned rounds_pipe = chain_once(&p, true);
	unsigned rounds_wait = chain_once(&p, false);

	struct bench_series echo_ns = {0}, codec_ns = {0}, codec_all_ns = {0},
			    ratio = {0}, ratio_all = {0}, pipe_ns = {0},
			    wait_ns = {0}, pipe_vs_wait = {0},
			    pipe_vs_echo = {0}, echo_rate = {0};
	size_t nchains = iters / 10 + 1;
	uint64_t allocs_echo = 0, allocs_chain = 0, echo_total = 0,
		 chain_total = 0;
	for (size_t r = 0; r < reps; r++) {
		uint64_t a0 = p.ca.calls + p.cb.calls;
		uint64_t t0 = bench_now_ns();
		echo_round_trips(&p, iters);
		uint64_t t1 = bench_now_ns();
		allocs_echo += p.ca.calls + p.cb.calls - a0;
		echo_total += iters;
		codec_round_trips(&c2, iters);
		uint64_t t2 = bench_now_ns();
		codec_round_trips(&call, iters);
		uint64_t t3 = bench_now_ns();
		a0 = p.ca.calls + p.cb.calls;
		chains(&p, nchains, true);
		uint64_t t4 = bench_now_ns();
		allocs_chain += p.ca.calls + p.cb.calls - a0;
		chain_total += nchains;
		chains(&p, nchains, false);
		uint64_t t5 = bench_now_ns();

		double e = (double)(t1 - t0) / (double)iters;
		double cd = (double)(t2 - t1) / (double)iters;
		double ca = (double)(t3 - t2) / (double)iters;
		double pp = (double)(t4 - t3) / (double)nchains;
		double pw = (double)(t5 - t4) / (double)nchains;
		bench_add(&echo_ns, e);
		bench_add(&echo_rate, 1e9 / e);
		bench_add(&codec_ns, cd);
		bench_add(&codec_all_ns, ca);
		bench_add(&ratio, e / cd);
		bench_add(&ratio_all, e / ca);
		bench_add(&pipe_ns, pp);
		bench_add(&wait_ns, pw);
		bench_add(&pipe_vs_wait, pp / pw);
		bench_add(&pipe_vs_echo, pp / e);
	}

	printf("CapTP engine: two vats back to back in memory, no I/O\n");
	printf("  %zu repetitions of %zu echo round trips, %zu chains each; "
	       "medians (min, max)\n",
	    reps, iters, nchains);
	printf("\none steady-state echo round trip (%d-byte bytestring): "
	       "%llu messages A->B, %llu B->A, %zu bytes on the wire\n",
	    PAYLOAD, (unsigned long long)out_a, (unsigned long long)out_b,
	    wire);
	for (size_t i = 0; i < p.ncap; i++) {
		printf("  %s %-16s %4zu bytes", p.cap[i].dir ? "B->A" : "A->B",
		    p.cap[i].label, p.cap[i].len);
		if (show) {
			ocapn_buffer nb;
			ocapn_buffer_init(&nb);
			ocapn_syrup_decoder *d = ocapn_syrup_decoder_new(0, NULL);
			ocapn_arena *ar = ocapn_arena_new(NULL);
			ocapn_value *v;
			if (!ocapn_syrup_decode_one(d, ar, p.cap[i].bytes,
				p.cap[i].len, &v) &&
			    !ocapn_notation_print(v, 0, &nb, NULL))
				printf("  %.*s", (int)nb.len,
				    (const char *)nb.data);
			ocapn_buffer_release(&nb, NULL);
			ocapn_arena_free(ar);
			ocapn_syrup_decoder_free(d);
		}
		printf("\n");
	}
	printf("\n");
	print_series("echo round trip", &echo_ns, "ns");
	print_series("echo round trips per second", &echo_rate, "/s");
	print_series("codec: deliver + fulfil", &codec_ns, "ns");
	print_series("codec: every message of the trip", &codec_all_ns, "ns");
	print_ratio("engine / codec (deliver + fulfil)", &ratio);
	print_ratio("engine / codec (every message)", &ratio_all);
	print_series("depth-3 chain, pipelined", &pipe_ns, "ns");
	print_series("depth-3 chain, awaiting each step", &wait_ns, "ns");
	print_ratio("pipelined / awaited", &pipe_vs_wait);
	print_ratio("pipelined chain / echo round trip", &pipe_vs_echo);
	printf("  %-34s %10u (awaited: %u)\n",
	    "rounds until the chain's answer", rounds_pipe, rounds_wait);
	printf("  %-34s %10.3f (%llu calls in %llu round trips)\n",
	    "allocations per echo round trip", (double)allocs_echo /
	    (double)echo_total, (unsigned long long)allocs_echo,
	    (unsigned long long)echo_total);
	printf("  %-34s %10.3f (%llu calls in %llu chains)\n",
	    "allocations per pipelined chain", (double)allocs_chain /
	    (double)chain_total, (unsigned long long)allocs_chain,
	    (unsigned long long)chain_total);
	printf("  target: zero allocations per round trip: %s\n",
	    allocs_echo == 0 ? "met" : "MISSED");
	codec_free(&c2);
	codec_free(&call);
	pair_free(&p);
	return 0;
}
