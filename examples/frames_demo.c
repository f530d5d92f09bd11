/*
 * frames-demo: a window manager's producer and compositor as OCapN vats.
 *
 * Two processes.  The compositor vat serves one object that takes a
 * frame (its number and its 1920x1080 RGBA pixels, about 8 MB, as a
 * bytestring), samples a few hundred pixels into a checksum and answers
 * [number checksum].  The producer renders frames with a band moving
 * across a gradient and sends each one as an OCapN message, keeping a
 * few frames in flight, first over the shm netlayer (shared memory, a
 * 32 MiB buffer so that every frame is one zero-copy packet), then over
 * a Unix socket (testuds).  It checks every answer and prints frames per
 * second and MB/s for both, and the ratio (each transport sends its N
 * frames twice and times the second pass: the first faults in the
 * buffers).
 *
 *   frames-demo [--frames N] [--window W]     (defaults: 120 frames, 3)
 *
 * Exits 0 only if every frame was answered with the right checksum.
 * Build: part of the meson build (build/examples/frames-demo).
 */
#define _POSIX_C_SOURCE 200809L
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <ocapn/ocapn.h>
#include <ocapn/runtime.h>

#define WIDTH 1920
#define HEIGHT 1080
#define FRAME_BYTES ((size_t)WIDTH * HEIGHT * 4)
#define SWISS "compositor"
#define BAND 48 /* columns of the moving band */

/* The checksum both sides compute: 509 pixels spread over the frame. */
static uint64_t
sample(const uint8_t *px, size_t len)
{
	uint64_t sum = 0;
	for (size_t i = 0; i < 509; i++) {
		size_t at = (i * 16381 % (len / 4)) * 4;
		uint32_t v;
		memcpy(&v, px + at, 4);
		sum = sum * 31 + v;
	}
	return sum;
}

/* ---- the compositor process ------------------------------------------ */

static int
compose(ocapn_vat *vat, ocapn_ref *self, const ocapn_value *args,
    ocapn_ref *resolver, void *user)
{
	(void)vat;
	(void)self;
	uint64_t *shown = user;
	/* [frame-number pixels] */
	if (args->len != 2 || args->u.items[0].kind != OCAPN_INT ||
	    args->u.items[1].kind != OCAPN_BYTES ||
	    args->u.items[1].len != FRAME_BYTES)
		return ocapn_break_str(resolver, "expected [number pixels]");
	(*shown)++;
	ocapn_value out[2], list;
	out[0] = args->u.items[0];
	ocapn_value_set_int(&out[1], (int64_t)(sample(args->u.items[1].u.p,
	    args->u.items[1].len) >> 1));
	ocapn_value_set_list(&list, out, 2);
	return resolver ? ocapn_resolve(resolver, &list) : OCAPN_OK;
}

static ocapn_runtime *comp_rt;

static void
on_term(uv_signal_t *h, int sig)
{
	(void)sig;
	uv_close((uv_handle_t *)h, NULL);
	ocapn_runtime_close(comp_rt, NULL, NULL);
}

static void
compositor(const char *dir, int out)
{
	static uint64_t shown;
	ocapn_netlayer *shm, *tu;
	ocapn_ref *obj;
	if (ocapn_runtime_new(NULL, NULL, NULL, &comp_rt))
		_exit(1);
	uv_loop_t *loop = ocapn_runtime_loop(comp_rt);
	ocapn_vat *vat = ocapn_runtime_vat(comp_rt);
	if (ocapn_shm_netlayer_new(loop, dir, NULL, NULL, &shm) ||
	    ocapn_shm_netlayer_set_buffer(shm, 32u << 20) ||
	    ocapn_testuds_netlayer_new(loop, dir, "compositor", NULL, &tu) ||
	    ocapn_runtime_add_netlayer(comp_rt, shm) ||
	    ocapn_runtime_add_netlayer(comp_rt, tu) ||
	    ocapn_vat_spawn(vat, compose, &shown, NULL, &obj) ||
	    ocapn_vat_register(vat, (const uint8_t *)SWISS, strlen(SWISS),
		obj))
		_exit(1);
	ocapn_ref_release(obj);
	FILE *f = fdopen(out, "w");
	ocapn_netlayer *nls[2] = {shm, tu};
	for (int i = 0; i < 2; i++) {
		ocapn_buffer uri;
		ocapn_buffer_init(&uri);
		if (ocapn_runtime_sturdyref_uri(comp_rt, nls[i],
			(const uint8_t *)SWISS, strlen(SWISS), &uri))
			_exit(1);
		fprintf(f, "%s\n", (const char *)uri.data);
		ocapn_buffer_release(&uri, NULL);
	}
	fclose(f);
	uv_signal_t term;
	uv_signal_init(loop, &term);
	uv_signal_start(&term, on_term, SIGTERM);
	ocapn_runtime_run(comp_rt);
	ocapn_runtime_free(comp_rt);
	_exit(0);
}

/* ---- the producer ------------------------------------------------------ */

struct producer {
	ocapn_runtime *rt;
	ocapn_ref *target;
	uint8_t *px;
	long frames, window, sent, answered;
	int band;        /* where the band is now */
	uint64_t *sums;  /* expected checksum of each frame */
	int bad;
};

/* A gradient, drawn once. */
static void
render_base(uint8_t *px)
{
	for (int y = 0; y < HEIGHT; y++)
		for (int x = 0; x < WIDTH; x++) {
			uint8_t *p = px + ((size_t)y * WIDTH + (size_t)x) * 4;
			p[0] = (uint8_t)(x * 255 / WIDTH);
			p[1] = (uint8_t)(y * 255 / HEIGHT);
			p[2] = 0x40;
			p[3] = 0xff;
		}
}

/* Move the band: restore the gradient where it was, draw it further on,
 * with a colour that changes every frame. */
static void
render_next(struct producer *p, long n)
{
	for (int y = 0; y < HEIGHT; y++)
		for (int x = p->band; x < p->band + BAND; x++) {
			uint8_t *q = p->px + ((size_t)y * WIDTH + (size_t)x) * 4;
			q[0] = (uint8_t)(x * 255 / WIDTH);
			q[1] = (uint8_t)(y * 255 / HEIGHT);
			q[2] = 0x40;
		}
	p->band = (p->band + 16) % (WIDTH - BAND);
	for (int y = 0; y < HEIGHT; y++)
		for (int x = p->band; x < p->band + BAND; x++) {
			uint8_t *q = p->px + ((size_t)y * WIDTH + (size_t)x) * 4;
			q[0] = (uint8_t)(n * 7);
			q[1] = (uint8_t)(255 - y * 255 / HEIGHT);
			q[2] = 0xff;
		}
}

static void send_frame(struct producer *p);

static void
answered(ocapn_vat *vat, bool ok, const ocapn_value *v, void *user)
{
	struct producer *p = user;
	(void)vat;
	p->answered++;
	if (!ok || v->kind != OCAPN_LIST || v->len != 2 ||
	    v->u.items[0].kind != OCAPN_INT ||
	    v->u.items[1].kind != OCAPN_INT) {
		size_t n;
		const char *why = ok ? "a malformed answer" :
		    ocapn_break_text(v, &n);
		fprintf(stderr, "frames-demo: frame not shown: %s\n", why);
		p->bad++;
		return;
	}
	int64_t no = v->u.items[0].u.i;
	if (no < 0 || no >= p->frames ||
	    (uint64_t)v->u.items[1].u.i != p->sums[no] >> 1) {
		fprintf(stderr, "frames-demo: frame %lld: wrong checksum\n",
		    (long long)no);
		p->bad++;
	}
	if (p->sent < p->frames)
		send_frame(p);
}

static void
send_frame(struct producer *p)
{
	long n = p->sent++;
	render_next(p, n);
	p->sums[n] = sample(p->px, FRAME_BYTES);
	ocapn_value items[2], args;
	ocapn_value_set_int(&items[0], n);
	ocapn_value_set_bytes(&items[1], p->px, FRAME_BYTES);
	ocapn_value_set_list(&args, items, 2);
	/* The pixels are copied into the message here: the buffer is ours
	 * again when ocapn_send() returns. */
	ocapn_ref *res;
	if (ocapn_send(p->target, &args, &res)) {
		p->bad++;
		p->answered++;
		return;
	}
	ocapn_when(res, answered, p);
	ocapn_ref_release(res);
}

static double
now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* Send `frames` frames to the object at `uri`; seconds taken, or -1. */
static double
run(struct producer *p, const char *uri)
{
	uv_loop_t *loop = ocapn_runtime_loop(p->rt);
	ocapn_ref *promise;
	if (ocapn_runtime_enliven_uri(p->rt, uri, strlen(uri), &promise))
		return -1;
	const ocapn_value *v;
	int rc;
	while ((rc = ocapn_promise_state(promise, &v)) == OCAPN_E_AGAIN)
		uv_run(loop, UV_RUN_ONCE);
	if (rc || v->kind != OCAPN_REF) {
		ocapn_ref_release(promise);
		return -1;
	}
	p->target = ocapn_ref_retain(v->u.ref);
	ocapn_ref_release(promise);
	/* A few frames first, not timed: the first frames through a
	 * connection fault in its buffers. */
	double t0 = 0;
	for (int pass = 0; pass < 2; pass++) {
		p->sent = p->answered = 0;
		t0 = now();
		for (long i = 0; i < p->window && i < p->frames; i++)
			send_frame(p);
		while (p->answered < p->frames)
			uv_run(loop, UV_RUN_ONCE);
	}
	double t = now() - t0;
	ocapn_ref_release(p->target);
	return t;
}

int
main(int argc, char **argv)
{
	long frames = 120, window = 3;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--frames") && i + 1 < argc)
			frames = strtol(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--window") && i + 1 < argc)
			window = strtol(argv[++i], NULL, 10);
		else {
			fprintf(stderr, "usage: frames-demo [--frames N] "
			    "[--window W]\n");
			return 2;
		}
	}
	if (frames < 1 || window < 1) {
		fprintf(stderr, "frames-demo: N and W must be positive\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	char dir[] = "/tmp/frames-demo-XXXXXX";
	if (!mkdtemp(dir)) {
		perror("frames-demo: mkdtemp");
		return 1;
	}
	int pfd[2];
	if (pipe(pfd)) {
		perror("frames-demo: pipe");
		return 1;
	}
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0) {
		perror("frames-demo: fork");
		return 1;
	}
	if (pid == 0) {
		close(pfd[0]);
		compositor(dir, pfd[1]);
	}
	close(pfd[1]);
	char uris[2][512];
	FILE *f = fdopen(pfd[0], "r");
	for (int i = 0; i < 2; i++) {
		if (!fgets(uris[i], sizeof(uris[i]), f)) {
			fprintf(stderr, "frames-demo: the compositor did not "
			    "start\n");
			return 1;
		}
		uris[i][strcspn(uris[i], "\n")] = '\0';
	}
	fclose(f);

	struct producer p;
	memset(&p, 0, sizeof(p));
	p.frames = frames;
	p.window = window;
	p.px = malloc(FRAME_BYTES);
	p.sums = calloc((size_t)frames, sizeof(*p.sums));
	ocapn_netlayer *shm, *tu;
	if (!p.px || !p.sums || ocapn_runtime_new(NULL, NULL, NULL, &p.rt) ||
	    ocapn_shm_netlayer_new(ocapn_runtime_loop(p.rt), dir, NULL, NULL,
		&shm) ||
	    ocapn_shm_netlayer_set_buffer(shm, 32u << 20) ||
	    ocapn_testuds_netlayer_new(ocapn_runtime_loop(p.rt), dir,
		"producer", NULL, &tu) ||
	    ocapn_runtime_add_netlayer(p.rt, shm) ||
	    ocapn_runtime_add_netlayer(p.rt, tu)) {
		fprintf(stderr, "frames-demo: cannot set up the producer\n");
		kill(pid, SIGTERM);
		return 1;
	}
	render_base(p.px);
	printf("frames-demo: %dx%d RGBA frames (%.1f MB each) to a "
	    "compositor in another process, %ld in flight\n", WIDTH, HEIGHT,
	    (double)FRAME_BYTES / 1e6, window);
	static const char *const names[2] = {"shm", "testuds"};
	double fps[2] = {0, 0};
	for (int i = 0; i < 2; i++) {
		double t = run(&p, uris[i]);
		if (t < 0) {
			fprintf(stderr, "frames-demo: cannot reach the "
			    "compositor over %s\n", names[i]);
			p.bad++;
			break;
		}
		fps[i] = (double)frames / t;
		printf("  %-8s %ld frames in %.3f s: %7.1f frames/s, %8.1f "
		    "MB/s\n", names[i], frames, t, fps[i],
		    fps[i] * (double)FRAME_BYTES / 1e6);
		fflush(stdout);
	}
	if (fps[1] > 0)
		printf("  shm/testuds: %.2fx\n", fps[0] / fps[1]);
	ocapn_runtime_free(p.rt);
	kill(pid, SIGTERM);
	int st;
	waitpid(pid, &st, 0);
	rmdir(dir);
	free(p.px);
	free(p.sums);
	if (p.bad || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		fprintf(stderr, "frames-demo: %d frames went wrong\n", p.bad);
		return 1;
	}
	return 0;
}
