/*
 * bench_syrup: nanoseconds per encode and decode of three message shapes,
 * for libocapn's Syrup codec, a minimal non-validating Syrup codec
 * (minimal_syrup.c, the baseline) and msgpack-c when it is available, all
 * measured in the same run and reported with their ratios.
 *
 *   (a) an 86-byte op:deliver record (the shape of Goblins' fetch)
 *   (b) a 1024-byte op:deliver carrying dicts, strings, a set and bytes
 *   (c) an op:deliver carrying a 1 MiB bytestring
 *
 * Method: every operation runs in batches of about 20 ms of the thread's
 * CPU time; the batches of all codecs are interleaved, repeated (21 times
 * by default) and the median is reported.  Ratios are the median of the
 * per-repetition ratios, so slow phases of a noisy machine affect both
 * sides alike.  Also reported: allocator calls per decode and encode once
 * warm (through the ocapn_allocator hook), and whether the 1 MiB payload is
 * decoded in place.
 *
 * usage: bench_syrup [--reps N] [--quick] [--callgrind [a|b|c]]
 *   --quick      3 repetitions of 5 ms batches (a smoke run)
 *   --callgrind  no timing: run each operation on one shape (default a)
 *                10000 times (100 for c) in its own function, for
 *                valgrind --tool=callgrind (see bench/callgrind.sh)
 *
 * This program only measures and prints; it asserts nothing about time.
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <ocapn/ocapn.h>

#ifdef HAVE_MSGPACK
#include <msgpack.h>
#endif

#include "minimal_syrup.h"

#define NOINLINE __attribute__((noinline))
#define LIT(s) (s), (sizeof(s) - 1)

/* CPU time of this thread: time spent descheduled by a busy machine is not
 * counted (the wall clock is the fallback). */
static uint64_t
now_ns(void)
{
	struct timespec ts;
#ifdef CLOCK_THREAD_CPUTIME_ID
	if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) == 0)
		return (uint64_t)ts.tv_sec * 1000000000u +
		    (uint64_t)ts.tv_nsec;
#endif
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void
die(const char *what)
{
	fprintf(stderr, "bench_syrup: %s\n", what);
	exit(1);
}

/* ---- the message shapes ---------------------------------------------- */

struct shape {
	const char *name;
	uint8_t *syrup;
	size_t len;
	ocapn_arena *tree_arena;
	const ocapn_value *tree; /* decoded, input of the encoders */
#ifdef HAVE_MSGPACK
	msgpack_sbuffer mp;      /* the same tree in msgpack */
#endif
};

/*
 * (a) The second message of the Goblins capture
 * tests/data/goblins-captures/uds-session-fetch-echo/captp1.c2a.bin
 * (104 bytes) with its 32-byte swiss number cut to 14 bytes: 86 bytes.
 */
static const char shape_a[] = "<10'op:deliver<11'desc:export0+>"
			      "[5'fetch14:IO58l1laTyhcrg]0+"
			      "<18'desc:import-object1+>>";

/* (b) in notation; BIO is padded so that the Syrup is 1024 bytes. */
static const char shape_b_fmt[] =
    "<op:deliver <desc:export 7> ['update-profile {"
    "\"user\": {\"id\": 1234567, \"name\": \"Ada Lovelace\", "
    "\"email\": \"ada@example.org\", \"roles\": #{'admin 'editor 'viewer}, "
    "\"active\": t, \"score\": 98.25, \"bio\": \"%s\"}, "
    "\"history\": ["
    "{\"at\": 1700000000, \"what\": \"login\", \"from\": \"10.0.0.1\"} "
    "{\"at\": 1700000360, \"what\": \"edit\", \"from\": \"10.0.0.1\"} "
    "{\"at\": 1700000720, \"what\": \"logout\", \"from\": \"10.0.0.2\"} "
    "{\"at\": 1700003600, \"what\": \"login\", \"from\": \"192.168.1.20\"}], "
    "\"tags\": [\"mathematics\" \"analytical-engine\" \"poetry\" \"notes\"], "
    "\"prefs\": {\"lang\": \"en-GB\", \"tz\": \"Europe/London\", "
    "\"theme\": 'dark, \"font-size\": 14}, "
    "\"avatar\": :89504e470d0a1a0a0000000d49484452000000100000001008060000"
    "001ff3ff61}] 42 <desc:import-object 43>>";

static uint8_t *
encode_tree(const ocapn_value *v, size_t *len)
{
	ocapn_syrup_writer *w = ocapn_syrup_writer_new(0, NULL);
	const uint8_t *p;
	if (!w || ocapn_syrup_write_value(w, v) ||
	    ocapn_syrup_writer_finish(w, &p, len))
		die("cannot encode a shape");
	uint8_t *copy = malloc(*len);
	memcpy(copy, p, *len);
	ocapn_syrup_writer_free(w);
	return copy;
}

static uint8_t *
shape_b_bytes(size_t *len)
{
	size_t bio = 0;
	for (int round = 0; round < 4; round++) {
		char *pad = malloc(bio + 1);
		memset(pad, 'x', bio);
		pad[bio] = '\0';
		size_t tl = sizeof(shape_b_fmt) + bio + 16;
		char *text = malloc(tl);
		snprintf(text, tl, shape_b_fmt, pad);
		free(pad);
		ocapn_arena *a = ocapn_arena_new(NULL);
		ocapn_value *v;
		size_t used, eo;
		const char *why;
		if (ocapn_notation_parse(text, strlen(text), a, &v, &used, &eo,
			&why))
			die(why);
		uint8_t *bytes = encode_tree(v, len);
		ocapn_arena_free(a);
		free(text);
		if (*len == 1024)
			return bytes;
		free(bytes);
		bio += 1024 - *len; /* the length prefix may grow a digit */
	}
	die("cannot size shape (b)");
	return NULL;
}

static uint8_t *
shape_c_bytes(size_t *len)
{
	size_t n = 1u << 20;
	uint8_t *payload = malloc(n);
	uint32_t x = 2463534242u;
	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		payload[i] = (uint8_t)x;
	}
	ocapn_syrup_writer *w = ocapn_syrup_writer_new(0, NULL);
	ocapn_syrup_write_record_begin(w);
	ocapn_syrup_write_symbol(w, LIT("op:deliver"));
	ocapn_syrup_write_record_begin(w);
	ocapn_syrup_write_symbol(w, LIT("desc:export"));
	ocapn_syrup_write_int(w, 1);
	ocapn_syrup_write_record_end(w);
	ocapn_syrup_write_list_begin(w);
	ocapn_syrup_write_symbol(w, LIT("write"));
	ocapn_syrup_write_bytes(w, payload, n);
	ocapn_syrup_write_list_end(w);
	ocapn_syrup_write_int(w, 2);
	ocapn_syrup_write_record_begin(w);
	ocapn_syrup_write_symbol(w, LIT("desc:import-object"));
	ocapn_syrup_write_int(w, 3);
	ocapn_syrup_write_record_end(w);
	ocapn_syrup_write_record_end(w);
	const uint8_t *p;
	if (ocapn_syrup_writer_finish(w, &p, len))
		die("cannot build shape (c)");
	uint8_t *copy = malloc(*len);
	memcpy(copy, p, *len);
	ocapn_syrup_writer_free(w);
	free(payload);
	return copy;
}

#ifdef HAVE_MSGPACK
/* msgpack has no records, symbols or sets: a record is an array with its
 * label first, a symbol a str, a set an array. */
static void
mp_pack(msgpack_packer *pk, const ocapn_value *v)
{
	switch (v->kind) {
	case OCAPN_BOOL:
		if (v->u.b)
			msgpack_pack_true(pk);
		else
			msgpack_pack_false(pk);
		break;
	case OCAPN_INT:
		msgpack_pack_int64(pk, v->u.i);
		break;
	case OCAPN_FLOAT64:
		msgpack_pack_double(pk, v->u.f64);
		break;
	case OCAPN_FLOAT32:
		msgpack_pack_float(pk, v->u.f32);
		break;
	case OCAPN_BYTES:
		msgpack_pack_bin(pk, v->len);
		msgpack_pack_bin_body(pk, v->u.p, v->len);
		break;
	case OCAPN_STRING:
	case OCAPN_SYMBOL:
		msgpack_pack_str(pk, v->len);
		msgpack_pack_str_body(pk, v->u.p, v->len);
		break;
	case OCAPN_DICT:
		msgpack_pack_map(pk, v->len);
		for (size_t i = 0; i < 2 * (size_t)v->len; i++)
			mp_pack(pk, &v->u.items[i]);
		break;
	default:
		msgpack_pack_array(pk, v->len);
		for (size_t i = 0; i < v->len; i++)
			mp_pack(pk, &v->u.items[i]);
		break;
	}
}
#endif

static void
shape_init(struct shape *s, const char *name, uint8_t *bytes, size_t len)
{
	s->name = name;
	s->syrup = bytes;
	s->len = len;
	s->tree_arena = ocapn_arena_new(NULL);
	ocapn_syrup_decoder *d = ocapn_syrup_decoder_new(0, NULL);
	ocapn_value *v;
	if (ocapn_syrup_decode_one(d, s->tree_arena, bytes, len, &v))
		die("a shape does not decode");
	s->tree = v;
	ocapn_syrup_decoder_free(d);
#ifdef HAVE_MSGPACK
	msgpack_sbuffer_init(&s->mp);
	msgpack_packer pk;
	msgpack_packer_init(&pk, &s->mp, msgpack_sbuffer_write);
	mp_pack(&pk, s->tree);
#endif
}

/* ---- codec state and the timed loops -------------------------------- */

struct ctx {
	const struct shape *s;
	ocapn_syrup_decoder *dec;
	ocapn_arena *arena;
	ocapn_syrup_writer *w;
	mini_codec mini;
	uint8_t *mini_out;
	size_t mini_cap;
#ifdef HAVE_MSGPACK
	msgpack_zone zone;
	msgpack_unpacked unpacked;
	msgpack_sbuffer sbuf;
	msgpack_packer pk;
#endif
	uintptr_t sink;
};

/* Each loop is its own function (for callgrind) and keeps a result alive
 * through c->sink so that nothing is optimised away. */
#define TIMED(name, body)                                                      \
	static NOINLINE double name(struct ctx *c, long iters)                \
	{                                                                      \
		const struct shape *s = c->s;                                  \
		(void)s;                                                       \
		uint64_t t0 = now_ns();                                        \
		for (long i = 0; i < iters; i++) {                             \
			body                                                   \
		}                                                              \
		return (double)(now_ns() - t0) / (double)iters;                \
	}

TIMED(decode_ocapn, {
	ocapn_value *v;
	ocapn_arena_reset(c->arena);
	if (ocapn_syrup_decode_one(c->dec, c->arena, s->syrup, s->len, &v))
		die("decode failed");
	c->sink += v->len;
})

TIMED(decode_minimal, {
	ocapn_value *v;
	if (mini_decode(&c->mini, s->syrup, s->len, &v) < 0)
		die("minimal decode failed");
	c->sink += v->len;
})

TIMED(encode_ocapn, {
	const uint8_t *p;
	size_t n;
	ocapn_syrup_writer_reset(c->w);
	ocapn_syrup_write_value(c->w, s->tree);
	if (ocapn_syrup_writer_finish(c->w, &p, &n))
		die("encode failed");
	c->sink += n + p[0];
})

TIMED(encode_minimal, {
	long n = mini_encode(s->tree, c->mini_out, c->mini_cap);
	if (n < 0)
		die("minimal encode failed");
	c->sink += (uintptr_t)n + c->mini_out[0];
})

#ifdef HAVE_MSGPACK
TIMED(decode_msgpack_next, {
	size_t off = 0;
	if (msgpack_unpack_next(&c->unpacked, (const char *)s->mp.data,
		s->mp.size, &off) != MSGPACK_UNPACK_SUCCESS)
		die("msgpack_unpack_next failed");
	c->sink += c->unpacked.data.via.array.size;
})

TIMED(decode_msgpack_zone, {
	size_t off = 0;
	msgpack_object obj;
	msgpack_zone_clear(&c->zone);
	if (msgpack_unpack((const char *)s->mp.data, s->mp.size, &off,
		&c->zone, &obj) != MSGPACK_UNPACK_SUCCESS)
		die("msgpack_unpack failed");
	c->sink += obj.via.array.size;
})

TIMED(encode_msgpack, {
	c->sbuf.size = 0;
	mp_pack(&c->pk, s->tree);
	c->sink += c->sbuf.size + (uint8_t)c->sbuf.data[0];
})
#endif

static void
ctx_init(struct ctx *c)
{
	memset(c, 0, sizeof(*c));
	c->dec = ocapn_syrup_decoder_new(0, NULL);
	c->arena = ocapn_arena_new(NULL);
	c->w = ocapn_syrup_writer_new(0, NULL);
	if (!c->dec || !c->arena || !c->w ||
	    mini_init(&c->mini, 4096, 64, 1u << 20))
		die("out of memory");
	c->mini_cap = (2u << 20);
	c->mini_out = malloc(c->mini_cap);
#ifdef HAVE_MSGPACK
	msgpack_zone_init(&c->zone, MSGPACK_ZONE_CHUNK_SIZE);
	msgpack_unpacked_init(&c->unpacked);
	msgpack_sbuffer_init(&c->sbuf);
	msgpack_packer_init(&c->pk, &c->sbuf, msgpack_sbuffer_write);
#endif
}

struct op {
	const char *codec;
	bool decode;
	double (*fn)(struct ctx *, long);
};

static const struct op ops[] = {
    {"libocapn", true, decode_ocapn},
    {"minimal", true, decode_minimal},
#ifdef HAVE_MSGPACK
    {"msgpack-c unpack_next", true, decode_msgpack_next},
    {"msgpack-c unpack+zone", true, decode_msgpack_zone},
#endif
    {"libocapn", false, encode_ocapn},
    {"minimal", false, encode_minimal},
#ifdef HAVE_MSGPACK
    {"msgpack-c pack", false, encode_msgpack},
#endif
};
#define NOPS (sizeof(ops) / sizeof(*ops))
#define MAXREPS 101

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double
median(const double *v, int n)
{
	double tmp[MAXREPS];
	memcpy(tmp, v, (size_t)n * sizeof(double));
	qsort(tmp, (size_t)n, sizeof(double), cmp_double);
	return n % 2 ? tmp[n / 2] : (tmp[n / 2 - 1] + tmp[n / 2]) / 2;
}

static int
op_index(const char *codec, bool decode)
{
	for (size_t i = 0; i < NOPS; i++)
		if (ops[i].decode == decode && !strcmp(ops[i].codec, codec))
			return (int)i;
	return -1;
}

/* Median over repetitions of ns[a][r] / ns[b][r]. */
static double
ratio(double ns[][MAXREPS], int a, int b, int reps)
{
	double r[MAXREPS];
	for (int i = 0; i < reps; i++)
		r[i] = ns[a][i] / ns[b][i];
	return median(r, reps);
}

/* Allocator calls per operation once warm, through the allocator hook. */
static unsigned long alloc_calls;

static void *
counting_alloc(void *user, void *ptr, size_t old, size_t n)
{
	(void)user;
	(void)old;
	if (n == 0) {
		free(ptr);
		return NULL;
	}
	alloc_calls++;
	return realloc(ptr, n);
}

static void
allocations(const struct shape *s, double *per_decode, double *per_encode)
{
	ocapn_allocator a = {counting_alloc, NULL};
	ocapn_syrup_decoder *d = ocapn_syrup_decoder_new(0, &a);
	ocapn_arena *arena = ocapn_arena_new(&a);
	ocapn_syrup_writer *w = ocapn_syrup_writer_new(0, &a);
	const int warm = 10, n = 1000;
	unsigned long before = 0;
	for (int i = 0; i < warm + n; i++) {
		if (i == warm)
			before = alloc_calls;
		ocapn_value *v;
		ocapn_arena_reset(arena);
		if (ocapn_syrup_decode_one(d, arena, s->syrup, s->len, &v))
			die("decode failed");
	}
	*per_decode = (double)(alloc_calls - before) / n;
	for (int i = 0; i < warm + n; i++) {
		if (i == warm)
			before = alloc_calls;
		const uint8_t *p;
		size_t len;
		ocapn_syrup_writer_reset(w);
		ocapn_syrup_write_value(w, s->tree);
		if (ocapn_syrup_writer_finish(w, &p, &len))
			die("encode failed");
	}
	*per_encode = (double)(alloc_calls - before) / n;
	ocapn_syrup_writer_free(w);
	ocapn_arena_free(arena);
	ocapn_syrup_decoder_free(d);
}

/* The largest bytestring of a value tree. */
static const ocapn_value *
largest_bytes(const ocapn_value *v)
{
	const ocapn_value *best = v->kind == OCAPN_BYTES ? v : NULL;
	if (v->kind >= OCAPN_LIST) {
		size_t n = v->kind == OCAPN_DICT ? 2 * (size_t)v->len : v->len;
		for (size_t i = 0; i < n; i++) {
			const ocapn_value *b = largest_bytes(&v->u.items[i]);
			if (b && (!best || b->len > best->len))
				best = b;
		}
	}
	return best;
}

static void
bench_shape(struct ctx *c, const struct shape *s, int reps, double batch_ms)
{
	c->s = s;
	static double ns[NOPS][MAXREPS];
	long iters[NOPS];
	/* Calibrate: iterations for a batch of about batch_ms. */
	for (size_t k = 0; k < NOPS; k++) {
		long n = 1;
		double t;
		ops[k].fn(c, 1); /* warm up */
		for (;;) {
			t = ops[k].fn(c, n) * (double)n;
			if (t > batch_ms * 1e6 / 8 || n > (1L << 28))
				break;
			n *= 2;
		}
		iters[k] = (long)((double)n * batch_ms * 1e6 / t);
		if (iters[k] < 1)
			iters[k] = 1;
	}
	for (int r = 0; r < reps; r++)
		for (size_t k = 0; k < NOPS; k++)
			ns[k][r] = ops[k].fn(c, iters[k]);

	printf("\n%s: %zu bytes of Syrup", s->name, s->len);
#ifdef HAVE_MSGPACK
	printf(", %zu bytes of msgpack", s->mp.size);
#endif
	printf("\n  %-24s %12s %12s\n", "ns per operation", "decode", "encode");
	const char *seen[NOPS];
	size_t nseen = 0;
	for (size_t k = 0; k < NOPS; k++) {
		const char *name = ops[k].codec;
		bool dup = false;
		for (size_t j = 0; j < nseen; j++)
			dup |= !strcmp(seen[j], name);
		if (dup)
			continue;
		seen[nseen++] = name;
		int di = op_index(name, true), ei = op_index(name, false);
		/* msgpack's encoder is listed with its first decoder */
		if (ei < 0 && !strncmp(name, "msgpack-c unpack_next", 21))
			ei = op_index("msgpack-c pack", false);
		if (di < 0)
			continue;
		printf("  %-24s %12.1f", name, median(ns[di], reps));
		if (ei >= 0)
			printf(" %12.1f", median(ns[ei], reps));
		printf("\n");
	}
	int od = op_index("libocapn", true), oe = op_index("libocapn", false);
	int md = op_index("minimal", true), me = op_index("minimal", false);
	printf("  ratios (median of %d per-repetition ratios):\n", reps);
	printf("    libocapn / minimal      decode %.2f   encode %.2f\n",
	    ratio(ns, od, md, reps), ratio(ns, oe, me, reps));
#ifdef HAVE_MSGPACK
	int pn = op_index("msgpack-c unpack_next", true);
	int pz = op_index("msgpack-c unpack+zone", true);
	int pe = op_index("msgpack-c pack", false);
	printf("    libocapn / msgpack-c    decode %.2f (unpack_next) "
	       "%.2f (unpack+zone)   encode %.2f\n",
	    ratio(ns, od, pn, reps), ratio(ns, od, pz, reps),
	    ratio(ns, oe, pe, reps));
#endif
	double ad, ae;
	allocations(s, &ad, &ae);
	printf("  libocapn allocator calls once warm: %.3f per decode, %.3f "
	       "per encode\n",
	    ad, ae);
	const ocapn_value *big = largest_bytes(s->tree);
	if (big && big->len >= (1u << 20)) {
		ocapn_value *v;
		ocapn_arena_reset(c->arena);
		if (ocapn_syrup_decode_one(c->dec, c->arena, s->syrup, s->len,
			&v))
			die("decode failed");
		const ocapn_value *b = largest_bytes(v);
		bool inside = b->u.p >= s->syrup && b->u.p < s->syrup + s->len;
		printf("  1 MiB payload decoded in place (points into the "
		       "input): %s; %.1f GB/s of input\n",
		    inside ? "yes" : "NO",
		    (double)s->len / median(ns[od], reps));
	}
}

/* Under callgrind: each operation in its own function. */
static void
callgrind_run(struct ctx *c, const struct shape *a, long n)
{
	c->s = a;
	for (size_t k = 0; k < NOPS; k++) {
		ops[k].fn(c, n);
		printf("%s %s: %ld iterations\n", ops[k].decode ? "decode"
								 : "encode",
		    ops[k].codec, n);
	}
}

int
main(int argc, char **argv)
{
	int reps = 21;
	double batch_ms = 20;
	bool cg = false;
	char cg_shape = 'a';
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--quick")) {
			reps = 3;
			batch_ms = 5;
		} else if (!strcmp(argv[i], "--reps") && i + 1 < argc) {
			reps = atoi(argv[++i]);
			if (reps < 1 || reps > MAXREPS)
				die("--reps must be 1..101");
		} else if (!strcmp(argv[i], "--callgrind")) {
			cg = true;
			if (i + 1 < argc && strlen(argv[i + 1]) == 1 &&
			    strchr("abc", argv[i + 1][0]))
				cg_shape = argv[++i][0];
		} else {
			fprintf(stderr, "usage: bench_syrup [--reps N] "
					"[--quick] [--callgrind [a|b|c]]\n");
			return 2;
		}
	}
	struct shape sa, sb, sc;
	size_t len;
	uint8_t *a = malloc(sizeof(shape_a) - 1);
	memcpy(a, shape_a, sizeof(shape_a) - 1);
	if (sizeof(shape_a) - 1 != 86)
		die("shape (a) is not 86 bytes");
	shape_init(&sa, "(a) op:deliver", a, 86);
	uint8_t *b = shape_b_bytes(&len);
	shape_init(&sb, "(b) mixed message", b, len);
	uint8_t *cc = shape_c_bytes(&len);
	shape_init(&sc, "(c) 1 MiB bytestring", cc, len);

	struct ctx c;
	ctx_init(&c);
	if (cg) {
		callgrind_run(&c, cg_shape == 'a' ? &sa
			: cg_shape == 'b'      ? &sb
					       : &sc,
		    cg_shape == 'c' ? 100 : 10000);
		return 0;
	}
	printf("libocapn %s Syrup codec benchmark: %d repetitions of %.0f ms "
	       "batches, medians\n",
	    ocapn_version(), reps, batch_ms);
#ifndef HAVE_MSGPACK
	printf("(msgpack-c not found at build time: install libmsgpack-dev "
	       "and reconfigure to compare with it)\n");
#endif
	bench_shape(&c, &sa, reps, batch_ms);
	bench_shape(&c, &sb, reps, batch_ms);
	bench_shape(&c, &sc, reps, batch_ms);
	printf("\n(sink %lu)\n", (unsigned long)(c.sink & 1));
	return 0;
}
