/*
 * Benchmark of the shm channel against the kernel primitives it competes
 * with, all measured in the same run between two processes (fork):
 *
 *   round trip of a 16-byte message:
 *     - eventfd ping-pong (the wakeup floor: two eventfds, blocking read)
 *     - Unix stream socketpair ping-pong (write + blocking read)
 *     - shm channel, sleeping on the doorbell (arm, poll, progress)
 *     - shm channel, spinning up to a bound before sleeping
 *   one-way throughput of 64 KiB, 1 MiB and 8 MiB messages, the receiver
 *   reading every byte (a checksum):
 *     - shm, single-packet zero-copy views (bulk 32 MiB)
 *     - shm, fragmented through a 4 MiB bulk buffer (reassembled copies)
 *     - Unix stream socketpair (write / read into a buffer)
 *
 * Prints times and the ratios between them.  Usage:
 *   bench_shm [--quick] [--pinned | --unpinned]   (default: both)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "netlayers/shm/shm_linux.h"

static int pin = 1;
static int pinned_ok = -1;

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
	fprintf(stderr, "bench_shm: %s (%s)\n", what, strerror(errno));
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
	int ok = sched_setaffinity(0, sizeof(s), &s) == 0;
	if (pinned_ok < 0 || !ok)
		pinned_ok = ok;
}

static pid_t
spawn(void (*child)(void *), void *arg)
{
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		pin_to(1);
		child(arg);
		_exit(0);
	}
	pin_to(0);
	return pid;
}

static void
reap(pid_t pid)
{
	int st;
	if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) ||
	    WEXITSTATUS(st) != 0) {
		fprintf(stderr, "bench_shm: child failed\n");
		exit(1);
	}
}

static void
read_full(int fd, void *p, size_t n)
{
	uint8_t *b = p;
	while (n > 0) {
		ssize_t r = read(fd, b, n);
		if (r <= 0) {
			if (r < 0 && errno == EINTR)
				continue;
			die("read");
		}
		b += r;
		n -= (size_t)r;
	}
}

static void
write_full(int fd, const void *p, size_t n)
{
	const uint8_t *b = p;
	while (n > 0) {
		ssize_t r = write(fd, b, n);
		if (r <= 0) {
			if (r < 0 && errno == EINTR)
				continue;
			die("write");
		}
		b += r;
		n -= (size_t)r;
	}
}

static uint64_t
checksum(const uint8_t *p, size_t n)
{
	uint64_t s = 0, w;
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		memcpy(&w, p + i, 8);
		s += w;
	}
	for (; i < n; i++)
		s += p[i];
	return s;
}

/* ---- eventfd ping-pong --------------------------------------------- */

struct efd_pair {
	int a, b;
	long n;
};

static void
efd_child(void *arg)
{
	struct efd_pair *e = arg;
	uint64_t v;
	for (long i = 0; i < e->n; i++) {
		read_full(e->b, &v, 8);
		v = 1;
		write_full(e->a, &v, 8);
	}
}

static double
bench_eventfd(long n)
{
	struct efd_pair e = {eventfd(0, 0), eventfd(0, 0), n};
	if (e.a < 0 || e.b < 0)
		die("eventfd");
	pid_t pid = spawn(efd_child, &e);
	uint64_t v = 1;
	double t0 = now();
	for (long i = 0; i < n; i++) {
		v = 1;
		write_full(e.b, &v, 8);
		read_full(e.a, &v, 8);
	}
	double t = now() - t0;
	reap(pid);
	close(e.a);
	close(e.b);
	return t / (double)n;
}

/* ---- Shared cache line ping-pong (the busy-poll floor) -------------- */

struct line_arg {
	_Atomic uint32_t *line;
	long n;
};

static void
line_child(void *arg)
{
	struct line_arg *l = arg;
	for (long i = 0; i < l->n; i++) {
		uint32_t want = (uint32_t)(2 * i + 1);
		while (atomic_load_explicit(l->line, memory_order_acquire) !=
		    want)
			;
		atomic_store_explicit(l->line, want + 1, memory_order_release);
	}
}

static double
bench_line(long n)
{
	void *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		die("mmap");
	struct line_arg l = {m, n};
	atomic_store(l.line, 0);
	pid_t pid = spawn(line_child, &l);
	double t0 = now();
	for (long i = 0; i < n; i++) {
		atomic_store_explicit(l.line, (uint32_t)(2 * i + 1),
		    memory_order_release);
		while (atomic_load_explicit(l.line, memory_order_acquire) !=
		    (uint32_t)(2 * i + 2))
			;
	}
	double t = now() - t0;
	reap(pid);
	munmap(m, 4096);
	return t / (double)n;
}

/* ---- Unix stream ping-pong ----------------------------------------- */

struct sock_arg {
	int fd;
	long n;
	size_t size;
	long warm;
};

static void
unix_pp_child(void *arg)
{
	struct sock_arg *s = arg;
	uint8_t buf[16];
	for (long i = 0; i < s->n; i++) {
		read_full(s->fd, buf, 16);
		write_full(s->fd, buf, 16);
	}
}

static double
bench_unix_pingpong(long n)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
		die("socketpair");
	struct sock_arg s = {sv[1], n, 16, 0};
	pid_t pid = spawn(unix_pp_child, &s);
	close(sv[1]);
	uint8_t buf[16] = {1};
	double t0 = now();
	for (long i = 0; i < n; i++) {
		write_full(sv[0], buf, 16);
		read_full(sv[0], buf, 16);
	}
	double t = now() - t0;
	reap(pid);
	close(sv[0]);
	return t / (double)n;
}

/* ---- shm channel --------------------------------------------------- */

struct shm_arg {
	int fd;
	long n;
	size_t size;
	uint64_t spin_ns;
	struct ocapn__shm_params p;
	long warm;
};

static void
shm_wait(ocapn__shm_conn *c, uint64_t spin_ns)
{
	/* Work appeared while spinning: no doorbell to drain and no want
	 * flag to clear (we did not arm); acks are taken by send when it
	 * needs room, in batches. */
	if (spin_ns && ocapn__shm_spin(c, spin_ns))
		return;
	if (!ocapn__shm_arm(c)) {
		ocapn__shm_progress(c, 0);
		return;
	}
	struct pollfd pfd[2];
	int k = ocapn__shm_pollfds(c, pfd);
	if (poll(pfd, (nfds_t)k, 30000) <= 0)
		die("shm: no event for 30 s");
	ocapn__shm_progress(c, ocapn__shm_ready(c, pfd, k));
}

static ocapn__shm_conn *
shm_connect_fd(int fd, bool initiator, const struct ocapn__shm_params *p)
{
	ocapn__shm_conn *c;
	if (ocapn__shm_conn_from_socket(fd, initiator, p, NULL, &c) != OCAPN_OK)
		die("shm handshake");
	ocapn__shm_progress(c, OCAPN__SHM_READY_ALL);
	while (ocapn__shm_state(c) != OCAPN__SHM_READY) {
		if (ocapn__shm_state(c) == OCAPN__SHM_DONE)
			die("shm handshake failed");
		shm_wait(c, 0);
	}
	return c;
}

static void
shm_send(ocapn__shm_conn *c, const void *buf, size_t len, uint64_t spin)
{
	int rc;
	while ((rc = ocapn__shm_send(c, buf, len)) == OCAPN_E_AGAIN)
		shm_wait(c, spin);
	if (rc != OCAPN_OK)
		die("shm send");
}

static void
shm_recv(ocapn__shm_conn *c, struct ocapn__shm_msg *m, uint64_t spin)
{
	int rc;
	while ((rc = ocapn__shm_recv(c, m)) == OCAPN_E_AGAIN)
		shm_wait(c, spin);
	if (rc != OCAPN_OK)
		die("shm recv");
}

static void
shm_pp_child(void *arg)
{
	struct shm_arg *s = arg;
	ocapn__shm_conn *c = shm_connect_fd(s->fd, false, &s->p);
	uint8_t buf[16];
	for (long i = 0; i < s->n; i++) {
		struct ocapn__shm_msg m;
		shm_recv(c, &m, s->spin_ns);
		memcpy(buf, m.data, 16);
		ocapn__shm_release(c, &m);
		shm_send(c, buf, 16, s->spin_ns);
	}
	/* Let the parent read the last reply before we unmap. */
	struct ocapn__shm_msg m;
	while (ocapn__shm_recv(c, &m) == OCAPN_E_AGAIN)
		shm_wait(c, 0);
	ocapn__shm_free(c);
}

static double
bench_shm_pingpong(long n, uint64_t spin_ns)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) != 0)
		die("socketpair");
	struct shm_arg s = {sv[1], n, 16, spin_ns, {0}, 0};
	ocapn__shm_params_default(&s.p);
	s.p.bulk_size = 1u << 20;
	s.p.max_packet = 256u << 10;
	pid_t pid = spawn(shm_pp_child, &s);
	close(sv[1]);
	ocapn__shm_conn *c = shm_connect_fd(sv[0], true, &s.p);
	uint8_t buf[16] = {1};
	double t0 = now();
	for (long i = 0; i < n; i++) {
		shm_send(c, buf, 16, spin_ns);
		struct ocapn__shm_msg m;
		shm_recv(c, &m, spin_ns);
		ocapn__shm_release(c, &m);
	}
	double t = now() - t0;
	ocapn__shm_close(c);
	reap(pid);
	ocapn__shm_free(c);
	return t / (double)n;
}

/* ---- Throughput ---------------------------------------------------- */

static void
shm_tp_child(void *arg)
{
	struct shm_arg *s = arg;
	ocapn__shm_conn *c = shm_connect_fd(s->fd, false, &s->p);
	uint64_t sum = 0;
	for (long i = 0; i < s->warm + s->n; i++) {
		struct ocapn__shm_msg m;
		shm_recv(c, &m, s->spin_ns);
		if (m.len != s->size)
			die("shm: wrong size");
		sum += checksum(m.data, m.len);
		ocapn__shm_release(c, &m);
		if (i == s->warm - 1) {
			/* Warm-up done: the timed part starts now. */
			sum = 0;
			shm_send(c, "r", 1, s->spin_ns);
		}
	}
	shm_send(c, &sum, sizeof(sum), s->spin_ns);
	struct ocapn__shm_msg m;
	while (ocapn__shm_recv(c, &m) == OCAPN_E_AGAIN)
		shm_wait(c, 0);
	ocapn__shm_free(c);
}

/* Bytes per second of `n` messages of `size` bytes. */
static double
bench_shm_throughput(size_t size, long n, const struct ocapn__shm_params *p,
    const uint8_t *src, uint64_t spin_ns)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) != 0)
		die("socketpair");
	/* Warm-up: every page of the bulk buffer touched once by both
	 * sides, as on a long-lived connection. */
	long warm = (long)(p->bulk_size / size) + 2;
	struct shm_arg s = {sv[1], n, size, spin_ns, *p, warm};
	pid_t pid = spawn(shm_tp_child, &s);
	close(sv[1]);
	ocapn__shm_conn *c = shm_connect_fd(sv[0], true, p);
	struct ocapn__shm_msg m;
	for (long i = 0; i < warm; i++)
		shm_send(c, src, size, spin_ns);
	shm_recv(c, &m, spin_ns);
	ocapn__shm_release(c, &m);
	double t0 = now();
	for (long i = 0; i < n; i++)
		shm_send(c, src, size, spin_ns);
	shm_recv(c, &m, spin_ns);
	double t = now() - t0;
	uint64_t sum;
	memcpy(&sum, m.data, sizeof(sum));
	if (sum != checksum(src, size) * (uint64_t)n)
		die("shm: checksum mismatch");
	ocapn__shm_release(c, &m);
	ocapn__shm_close(c);
	reap(pid);
	ocapn__shm_free(c);
	return (double)size * (double)n / t;
}

static void
unix_tp_child(void *arg)
{
	struct sock_arg *s = arg;
	uint8_t *buf = malloc(s->size);
	if (!buf)
		die("malloc");
	uint64_t sum = 0;
	for (long i = 0; i < s->warm + s->n; i++) {
		read_full(s->fd, buf, s->size);
		sum += checksum(buf, s->size);
		if (i == s->warm - 1) {
			sum = 0;
			write_full(s->fd, "r", 1);
		}
	}
	write_full(s->fd, &sum, sizeof(sum));
	free(buf);
}

static double
bench_unix_throughput(size_t size, long n, const uint8_t *src)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
		die("socketpair");
	struct sock_arg s = {sv[1], n, size, 8};
	pid_t pid = spawn(unix_tp_child, &s);
	close(sv[1]);
	for (long i = 0; i < s.warm; i++)
		write_full(sv[0], src, size);
	char r;
	read_full(sv[0], &r, 1);
	double t0 = now();
	for (long i = 0; i < n; i++)
		write_full(sv[0], src, size);
	uint64_t sum;
	read_full(sv[0], &sum, sizeof(sum));
	double t = now() - t0;
	if (sum != checksum(src, size) * (uint64_t)n)
		die("unix: checksum mismatch");
	reap(pid);
	close(sv[0]);
	return (double)size * (double)n / t;
}

/* ---- Ring core alone, one process (for instruction counts) ---------- */

static void
ring_nop(void *user)
{
	(void)user;
}

/*
 * One endpoint sends `n` messages of `size` bytes to the other, which
 * receives and releases each; the sender takes acks when it needs room.
 * No system call, no second process: what the ring core itself costs.
 * Run under `valgrind --tool=callgrind` for instruction counts.
 */
static double
bench_ring_core(long n, size_t size)
{
	struct ocapn__shm_geom g = {64, 64u << 10, 1u << 20};
	struct ocapn__shm_layout l, la, lb;
	if (ocapn__shm_layout(&g, &l, NULL) != OCAPN_OK)
		die("layout");
	uint8_t *ra = aligned_alloc(4096, l.region_size);
	uint8_t *rb = aligned_alloc(4096, l.region_size);
	if (!ra || !rb)
		die("alloc");
	ocapn__shm_format(ra, l.region_size, &g);
	ocapn__shm_format(rb, l.region_size, &g);
	const char *why;
	if (ocapn__shm_attach(ra, l.region_size, &la, &why) ||
	    ocapn__shm_attach(rb, l.region_size, &lb, &why))
		die("attach");
	struct ocapn__shm_ep_config cfg = {1u << 20, 1u << 20, 64, 0, 0};
	ocapn__shm_ep *a, *b;
	if (ocapn__shm_ep_new(&a, NULL, ra, &g, rb, &lb, &cfg, ring_nop,
		NULL) || ocapn__shm_ep_new(&b, NULL, rb, &g, ra, &la, &cfg,
		ring_nop, NULL))
		die("endpoint");
	uint8_t msg[256] = {1};
	struct ocapn__shm_iov iov = {msg, size};
	double t0 = now();
	for (long i = 0; i < n; i++) {
		if (ocapn__shm_ep_send(a, &iov, 1) != OCAPN_OK)
			die("ring send");
		struct ocapn__shm_msg m;
		if (ocapn__shm_ep_recv(b, &m) != OCAPN_OK)
			die("ring recv");
		ocapn__shm_ep_release(b, &m);
	}
	double t = now() - t0;
	ocapn__shm_ep_free(a);
	ocapn__shm_ep_free(b);
	free(ra);
	free(rb);
	return t / (double)n;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

#define REPS 5

struct stat3 {
	double med, lo, hi;
};

static struct stat3
summarize(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	struct stat3 s = {v[n / 2], v[0], v[n - 1]};
	return s;
}

static void
latency(long n_rt, uint64_t spin_ns)
{
	double v[5][REPS];
	/* Interleave the variants so drift hits all of them alike. */
	for (int r = 0; r < REPS; r++) {
		v[0][r] = bench_line(n_rt * 10);
		v[1][r] = bench_eventfd(n_rt);
		v[2][r] = bench_unix_pingpong(n_rt);
		v[3][r] = bench_shm_pingpong(n_rt, 0);
		v[4][r] = bench_shm_pingpong(n_rt, spin_ns);
	}
	static const char *const names[5] = {
		"shared cache line ping-pong (spin floor)",
		"eventfd ping-pong (wakeup floor)",
		"unix stream socketpair ping-pong",
		"shm channel, sleep on doorbell",
		"shm channel, spin <= 50 us, then sleep",
	};
	struct stat3 st[5];
	for (int k = 0; k < 5; k++)
		st[k] = summarize(v[k], REPS);
	printf("round trip of a 16-byte message, median of %d runs of %ld "
	    "(min..max)\n", REPS, n_rt);
	for (int k = 0; k < 5; k++) {
		printf("  %-42s %9.2f us  (%.2f..%.2f)", names[k],
		    st[k].med * 1e6, st[k].lo * 1e6, st[k].hi * 1e6);
		if (k >= 3)
			printf("  %.2fx eventfd, %.2fx unix", st[k].med /
			    st[1].med, st[k].med / st[2].med);
		printf("\n");
	}
}

static void
throughput(int quick, uint64_t spin_ns, const uint8_t *src)
{
	static const size_t sizes[] = {64u << 10, 1u << 20, 8u << 20};
	printf("one-way throughput, receiver reads every byte, median of 3 "
	    "runs (GB/s = 1e9 B/s)\n");
	printf("  %-8s %14s %14s %12s %9s %9s\n", "message", "shm sized",
	    "shm defaults", "unix stream", "sized/ux", "dflt/ux");
	for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		size_t size = sizes[k];
		long total = quick ? (64l << 20) : (512l << 20);
		long n = total / (long)size;
		/* Sized: every message is one zero-copy packet and four
		 * fit in the bulk buffer.  Defaults: the library's 4 MiB
		 * bulk and 2 MiB packets (8 MiB messages are fragmented and
		 * reassembled into private memory). */
		struct ocapn__shm_params sized, dflt;
		ocapn__shm_params_default(&sized);
		sized.bulk_size = 4 * size;
		sized.max_packet = (uint32_t)size;
		ocapn__shm_params_default(&dflt);
		double a[3], b[3], c[3];
		for (int r = 0; r < 3; r++) {
			a[r] = bench_shm_throughput(size, n, &sized, src,
			    spin_ns);
			b[r] = bench_shm_throughput(size, n, &dflt, src,
			    spin_ns);
			c[r] = bench_unix_throughput(size, n, src);
		}
		double zs = summarize(a, 3).med, ds = summarize(b, 3).med;
		double us = summarize(c, 3).med;
		char name[32];
		if (size >= (1u << 20))
			snprintf(name, sizeof(name), "%zu MiB", size >> 20);
		else
			snprintf(name, sizeof(name), "%zu KiB", size >> 10);
		printf("  %-8s %14.2f %14.2f %12.2f %8.2fx %8.2fx\n", name,
		    zs / 1e9, ds / 1e9, us / 1e9, zs / us, ds / us);
	}
}

int
main(int argc, char **argv)
{
	int quick = 0, modes = 3; /* 1 pinned, 2 unpinned */
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--quick"))
			quick = 1;
		else if (!strcmp(argv[i], "--pinned"))
			modes = 1;
		else if (!strcmp(argv[i], "--unpinned"))
			modes = 2;
		else if (!strcmp(argv[i], "--ring")) {
			/* 16-byte messages through the ring core alone. */
			long n = 1000000;
			double t = bench_ring_core(n, 16);
			printf("ring core alone, one process: %.1f ns per "
			    "16-byte message (send, receive, release, ack)\n",
			    t * 1e9);
			return 0;
		}
		else {
			fprintf(stderr, "usage: bench_shm [--quick] "
			    "[--pinned | --unpinned] | --ring\n");
			return 2;
		}
	}
	signal(SIGPIPE, SIG_IGN);
	long n_rt = quick ? 1000 : 5000;
	const uint64_t spin_ns = 50000;
	uint8_t *src = malloc(8u << 20);
	if (!src)
		die("malloc");
	for (size_t i = 0; i < (8u << 20); i++)
		src[i] = (uint8_t)(i * 2654435761u >> 13);
	cpu_set_t all;
	if (sched_getaffinity(0, sizeof(all), &all) != 0)
		die("sched_getaffinity");
	char load[64] = "?";
	FILE *lf = fopen("/proc/loadavg", "r");
	if (lf) {
		if (!fgets(load, sizeof(load), lf))
			snprintf(load, sizeof(load), "?\n");
		fclose(lf);
	}
	printf("shm channel benchmark; two processes (fork); %ld CPUs "
	    "online; load average at start: %s", sysconf(_SC_NPROCESSORS_ONLN),
	    load);
	for (int mode = 1; mode <= 2; mode++) {
		if (!(modes & mode))
			continue;
		pin = mode == 1;
		pinned_ok = -1;
		sched_setaffinity(0, sizeof(all), &all);
		printf("\n== %s ==\n", pin ? "pinned: parent on CPU 0, child "
		    "on CPU 1" : "unpinned: the kernel places both");
		latency(n_rt, spin_ns);
		throughput(quick, spin_ns, src);
		if (pin && pinned_ok != 1)
			printf("  (pinning failed: these ran unpinned)\n");
	}
	free(src);
	return 0;
}
