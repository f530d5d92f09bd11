/*
 * The shm channel on Linux, across real processes with real fd passing:
 * random sizes with checksums, a slow consumer, messages larger than the
 * bulk buffer, many connections at once, refusal of unsealed, undersized
 * or otherwise bad regions and doorbells, a peer killed with SIGKILL
 * mid-stream, graceful close, and the authentication hook.
 *
 * Poll timeouts below are hang guards (a test that would hang fails
 * instead); nothing here measures time.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

#include "netlayers/shm/shm_linux.h"

#define HANG_MS 30000

/* In a forked child a failed check exits with status 1. */
static int in_child;

#define CHECK(cond, ...)                                                  \
	do {                                                              \
		if (!(cond)) {                                            \
			fprintf(stderr, "%s:%d: check failed: %s: ",      \
			    __FILE__, __LINE__, #cond);                   \
			fprintf(stderr, __VA_ARGS__);                     \
			fprintf(stderr, "\n");                            \
			if (in_child)                                     \
				_exit(1);                                 \
			fail();                                           \
		}                                                         \
	} while (0)

/* ---- Helpers ------------------------------------------------------- */

static char dirbuf[64];
static char pathbuf[128];

static const char *
rendezvous(void)
{
	snprintf(dirbuf, sizeof(dirbuf), "/tmp/ocapn-shm-test-XXXXXX");
	assert_non_null(mkdtemp(dirbuf));
	snprintf(pathbuf, sizeof(pathbuf), "%s/vat.sock", dirbuf);
	return pathbuf;
}

static void
rendezvous_done(void)
{
	unlink(pathbuf);
	rmdir(dirbuf);
}

static int
count_fds(void)
{
	int n = 0;
	DIR *d = opendir("/proc/self/fd");
	if (!d)
		return -1;
	struct dirent *e;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1; /* the directory's own fd */
}

/* Sleep until the connection has something to do (hang guard). */
static void
step(ocapn__shm_conn *c)
{
	if (!ocapn__shm_arm(c)) {
		ocapn__shm_progress(c, 0);
		return;
	}
	struct pollfd pfd[2];
	int n = ocapn__shm_pollfds(c, pfd);
	if (n == 0)
		return;
	int r = poll(pfd, (nfds_t)n, HANG_MS);
	CHECK(r > 0, "no event within the hang guard");
	ocapn__shm_progress(c, ocapn__shm_ready(c, pfd, n));
}

static void
wait_ready(ocapn__shm_conn *c)
{
	ocapn__shm_progress(c, OCAPN__SHM_READY_ALL);
	while (ocapn__shm_state(c) != OCAPN__SHM_READY) {
		const char *why = "";
		CHECK(ocapn__shm_state(c) != OCAPN__SHM_DONE, "handshake "
		    "failed: %s", (ocapn__shm_error(c, &why), why));
		step(c);
	}
}

static ocapn__shm_conn *
accept_one(ocapn__shm_listener *l)
{
	ocapn__shm_conn *c = NULL;
	for (;;) {
		int rc = ocapn__shm_accept(l, &c);
		if (rc == OCAPN_OK)
			return c;
		CHECK(rc == OCAPN_E_AGAIN, "accept: %s", ocapn_err_name(rc));
		struct pollfd p = {ocapn__shm_listener_fd(l), POLLIN, 0};
		CHECK(poll(&p, 1, HANG_MS) == 1, "nobody connected");
	}
}

static void
send_all(ocapn__shm_conn *c, const void *buf, size_t len)
{
	for (;;) {
		int rc = ocapn__shm_send(c, buf, len);
		if (rc == OCAPN_OK)
			return;
		const char *why = "";
		CHECK(rc == OCAPN_E_AGAIN, "send: %s (%s)", ocapn_err_name(rc),
		    (ocapn__shm_error(c, &why), why));
		step(c);
	}
}

/* Receive the next message; returns the error if not OCAPN_OK. */
static int
recv_one(ocapn__shm_conn *c, struct ocapn__shm_msg *m)
{
	for (;;) {
		ocapn__shm_progress(c, 0);
		int rc = ocapn__shm_recv(c, m);
		if (rc != OCAPN_E_AGAIN)
			return rc;
		step(c);
	}
}

static uint64_t
fnv(const uint8_t *p, size_t n)
{
	uint64_t h = 1469598103934665603ull;
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 1099511628211ull;
	return h;
}

static uint64_t
rng_next(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* A message: [u32 len][u32 seq][u64 hash of the rest][payload]. */
#define HDR 16u

static size_t
make_msg(uint8_t *buf, uint32_t seq, size_t len, uint64_t seed)
{
	uint64_t s = seed * 0x9e3779b97f4a7c15ull + seq + 1;
	for (size_t i = HDR; i < len; i++)
		buf[i] = (uint8_t)(i * 31 + (rng_next(&s) & 0xff));
	uint32_t l32 = (uint32_t)len;
	uint64_t h = fnv(buf + HDR, len - HDR);
	memcpy(buf, &l32, 4);
	memcpy(buf + 4, &seq, 4);
	memcpy(buf + 8, &h, 8);
	return len;
}

static void
check_msg(const struct ocapn__shm_msg *m, uint32_t want_seq)
{
	uint32_t l32, seq;
	uint64_t h;
	CHECK(m->len >= HDR, "short message");
	memcpy(&l32, m->data, 4);
	memcpy(&seq, m->data + 4, 4);
	memcpy(&h, m->data + 8, 8);
	CHECK(l32 == m->len, "length %u vs %zu", l32, m->len);
	CHECK(seq == want_seq, "seq %u, expected %u", seq, want_seq);
	CHECK(fnv(m->data + HDR, m->len - HDR) == h, "checksum of %u", seq);
}

static pid_t
fork_child(void)
{
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		in_child = 1;
	return pid;
}

static void
wait_child_ok(pid_t pid)
{
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

static ocapn__shm_conn *
connect_to(const char *path, const struct ocapn__shm_params *p)
{
	ocapn__shm_conn *c = NULL;
	int rc;
	while ((rc = ocapn__shm_connect(path, p, NULL, &c)) == OCAPN_E_AGAIN)
		usleep(1000);
	CHECK(rc == OCAPN_OK, "connect: %s", ocapn_err_name(rc));
	return c;
}

/* ---- Echo with random sizes and checksums -------------------------- */

static void
echo_run(const struct ocapn__shm_params *p, uint32_t count, size_t maxlen,
    uint64_t seed)
{
	const char *path = rendezvous();
	ocapn__shm_listener *l;
	assert_int_equal(ocapn__shm_listen(path, p, NULL, &l), 0);
	pid_t pid = fork_child();
	if (pid == 0) {
		ocapn__shm_listener_close(l);
		ocapn__shm_conn *c = connect_to(path, p);
		wait_ready(c);
		uint8_t *buf = malloc(maxlen);
		uint64_t s = seed;
		for (uint32_t i = 0; i < count; i++) {
			size_t len = HDR + rng_next(&s) % (maxlen - HDR + 1);
			make_msg(buf, i, len, seed);
			send_all(c, buf, len);
			struct ocapn__shm_msg m;
			int rc = recv_one(c, &m);
			CHECK(rc == OCAPN_OK, "child recv: %s",
			    ocapn_err_name(rc));
			check_msg(&m, i);
			CHECK(m.len == len, "echo length");
			CHECK(memcmp(m.data, buf, len) == 0, "echo bytes");
			ocapn__shm_release(c, &m);
		}
		ocapn__shm_close(c);
		/* Wait for the parent's close so our rings outlive its
		 * reads. */
		struct ocapn__shm_msg m;
		int rc = recv_one(c, &m);
		CHECK(rc == OCAPN_E_CLOSED, "child end: %s",
		    ocapn_err_name(rc));
		ocapn__shm_free(c);
		free(buf);
		_exit(0);
	}
	ocapn__shm_conn *c = accept_one(l);
	wait_ready(c);
	uint8_t *copy = malloc(maxlen);
	for (uint32_t i = 0; i < count; i++) {
		struct ocapn__shm_msg m;
		int rc = recv_one(c, &m);
		assert_int_equal(rc, OCAPN_OK);
		check_msg(&m, i);
		/* Echo from a private copy: the view may change under us. */
		size_t len = m.len;
		memcpy(copy, m.data, len);
		ocapn__shm_release(c, &m);
		send_all(c, copy, len);
	}
	struct ocapn__shm_msg m;
	assert_int_equal(recv_one(c, &m), OCAPN_E_CLOSED);
	const char *why;
	ocapn__shm_error(c, &why);
	assert_string_equal(why, "peer closed the connection");
	ocapn__shm_close(c);
	wait_child_ok(pid);
	ocapn__shm_free(c);
	ocapn__shm_listener_close(l);
	rendezvous_done();
	free(copy);
}

static void
test_echo_random_sizes(void **state)
{
	(void)state;
	struct ocapn__shm_params p;
	ocapn__shm_params_default(&p);
	p.slots = 16;
	p.bulk_size = 1u << 20;
	p.max_packet = 256u << 10;
	echo_run(&p, 300, 3u << 20, 42);
}

/* Messages up to 16x the bulk buffer: fragmentation both ways. */
static void
test_larger_than_bulk(void **state)
{
	(void)state;
	struct ocapn__shm_params p;
	ocapn__shm_params_default(&p);
	p.slots = 4;
	p.bulk_size = 256u << 10;
	p.max_packet = 64u << 10;
	p.max_msg = 8u << 20;
	echo_run(&p, 24, 4u << 20, 7);
}

/* A message over the peer's max_msg is refused before anything moves. */
static void
test_max_msg_enforced(void **state)
{
	(void)state;
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
	struct ocapn__shm_params pa, pb;
	ocapn__shm_params_default(&pa);
	ocapn__shm_params_default(&pb);
	pb.max_msg = 1000;
	ocapn__shm_conn *a, *b;
	assert_int_equal(ocapn__shm_conn_from_socket(sv[0], true, &pa, NULL,
	    &a), 0);
	assert_int_equal(ocapn__shm_conn_from_socket(sv[1], false, &pb, NULL,
	    &b), 0);
	while (ocapn__shm_state(a) != OCAPN__SHM_READY ||
	    ocapn__shm_state(b) != OCAPN__SHM_READY) {
		assert_int_equal(ocapn__shm_progress(b, OCAPN__SHM_READY_ALL),
		    0);
		assert_int_equal(ocapn__shm_progress(a, OCAPN__SHM_READY_ALL),
		    0);
	}
	static uint8_t big[1001];
	assert_int_equal(ocapn__shm_send(a, big, 1001), OCAPN_E_LIMIT);
	assert_int_equal(ocapn__shm_send(a, big, 1000), OCAPN_OK);
	assert_int_equal(ocapn__shm_send(a, big, 0), OCAPN_E_INVAL);
	struct ocapn__shm_msg m;
	assert_int_equal(ocapn__shm_recv(b, &m), OCAPN_OK);
	assert_int_equal(m.len, 1000);
	assert_true(m.zero_copy);
	assert_int_equal(ocapn__shm_release(b, &m), 0);
	assert_int_equal(ocapn__shm_release(b, &m), OCAPN_E_INVAL);
	ocapn__shm_free(a);
	ocapn__shm_free(b);
}

/* ---- Slow consumer ------------------------------------------------- */

static void
test_slow_consumer(void **state)
{
	(void)state;
	const uint32_t count = 3000;
	struct ocapn__shm_params p;
	ocapn__shm_params_default(&p);
	p.slots = 8;
	p.bulk_size = 64u << 10;
	p.max_packet = 16u << 10;
	const char *path = rendezvous();
	ocapn__shm_listener *l;
	assert_int_equal(ocapn__shm_listen(path, &p, NULL, &l), 0);
	pid_t pid = fork_child();
	if (pid == 0) {
		ocapn__shm_listener_close(l);
		ocapn__shm_conn *c = connect_to(path, &p);
		wait_ready(c);
		uint8_t buf[40000];
		uint64_t s = 99;
		uint64_t again = 0;
		for (uint32_t i = 0; i < count; i++) {
			size_t len = HDR + rng_next(&s) % 20000;
			make_msg(buf, i, len, 5);
			int rc;
			while ((rc = ocapn__shm_send(c, buf, len)) ==
			    OCAPN_E_AGAIN) {
				again++;
				step(c);
			}
			CHECK(rc == OCAPN_OK, "send %u: %s", i,
			    ocapn_err_name(rc));
		}
		/* The consumer is slow, so back-pressure must have hit. */
		CHECK(again > 0, "the sender never had to wait");
		ocapn__shm_close(c);
		struct ocapn__shm_msg m;
		CHECK(recv_one(c, &m) == OCAPN_E_CLOSED, "end");
		ocapn__shm_free(c);
		_exit(0);
	}
	ocapn__shm_conn *c = accept_one(l);
	wait_ready(c);
	for (uint32_t i = 0; i < count; i++) {
		if (i % 50 == 0)
			usleep(2000);
		struct ocapn__shm_msg m;
		assert_int_equal(recv_one(c, &m), OCAPN_OK);
		check_msg(&m, i);
		ocapn__shm_release(c, &m);
	}
	struct ocapn__shm_msg m;
	assert_int_equal(recv_one(c, &m), OCAPN_E_CLOSED);
	ocapn__shm_close(c);
	wait_child_ok(pid);
	ocapn__shm_free(c);
	ocapn__shm_listener_close(l);
	rendezvous_done();
}

/* ---- Many connections ---------------------------------------------- */

#define NCONN 32
#define PER_CONN 40

static void
test_many_connections(void **state)
{
	(void)state;
	struct ocapn__shm_params p;
	ocapn__shm_params_default(&p);
	p.slots = 4;
	p.bulk_size = 32u << 10;
	p.max_packet = 4u << 10;
	const char *path = rendezvous();
	ocapn__shm_listener *l;
	assert_int_equal(ocapn__shm_listen(path, &p, NULL, &l), 0);
	int fds_before = count_fds();
	pid_t pid = fork_child();
	if (pid == 0) {
		ocapn__shm_listener_close(l);
		ocapn__shm_conn *c[NCONN];
		uint32_t sent[NCONN] = {0}, got[NCONN] = {0};
		for (int i = 0; i < NCONN; i++)
			c[i] = connect_to(path, &p);
		/* Each connection sends PER_CONN messages tagged with its
		 * index and reads as many replies, all interleaved. */
		for (;;) {
			bool all = true;
			struct pollfd pfd[2 * NCONN];
			int n = 0, base[NCONN], cnt[NCONN];
			for (int i = 0; i < NCONN; i++) {
				ocapn__shm_progress(c[i], OCAPN__SHM_READY_ALL);
				int st = ocapn__shm_state(c[i]);
				CHECK(st != OCAPN__SHM_DONE, "conn %d died", i);
				if (st == OCAPN__SHM_READY && sent[i] <
				    PER_CONN) {
					uint8_t buf[300];
					size_t len = make_msg(buf, sent[i],
					    HDR + 100 + (size_t)i, (uint64_t)i);
					int rc = ocapn__shm_send(c[i], buf, len);
					CHECK(rc == OCAPN_OK ||
					    rc == OCAPN_E_AGAIN, "send");
					if (rc == OCAPN_OK)
						sent[i]++;
				}
				struct ocapn__shm_msg m;
				while (ocapn__shm_recv(c[i], &m) == OCAPN_OK) {
					check_msg(&m, got[i]);
					CHECK(m.len == HDR + 100 + (size_t)i,
					    "message crossed connections");
					got[i]++;
					ocapn__shm_release(c[i], &m);
				}
				if (got[i] < PER_CONN)
					all = false;
				base[i] = n;
				cnt[i] = 0;
				if (ocapn__shm_arm(c[i])) {
					cnt[i] = ocapn__shm_pollfds(c[i],
					    pfd + n);
					n += cnt[i];
				} else {
					all = false;
				}
			}
			if (all)
				break;
			(void)base;
			poll(pfd, (nfds_t)n, 50);
		}
		for (int i = 0; i < NCONN; i++) {
			ocapn__shm_close(c[i]);
			ocapn__shm_free(c[i]);
		}
		_exit(0);
	}
	ocapn__shm_conn *c[NCONN];
	for (int i = 0; i < NCONN; i++)
		c[i] = accept_one(l);
	/* Echo every message on the connection it came from. */
	uint32_t echoed[NCONN] = {0};
	int done = 0;
	while (done < NCONN) {
		struct pollfd pfd[2 * NCONN];
		int n = 0;
		done = 0;
		for (int i = 0; i < NCONN; i++) {
			ocapn__shm_progress(c[i], OCAPN__SHM_READY_ALL);
			struct ocapn__shm_msg m;
			int rc;
			while ((rc = ocapn__shm_recv(c[i], &m)) == OCAPN_OK) {
				uint8_t buf[300];
				size_t len = m.len;
				assert_true(len <= sizeof(buf));
				memcpy(buf, m.data, len);
				ocapn__shm_release(c[i], &m);
				send_all(c[i], buf, len);
				echoed[i]++;
			}
			if (rc == OCAPN_E_CLOSED) {
				done++;
				continue;
			}
			assert_int_equal(rc, OCAPN_E_AGAIN);
			if (ocapn__shm_arm(c[i]))
				n += ocapn__shm_pollfds(c[i], pfd + n);
		}
		if (done < NCONN)
			poll(pfd, (nfds_t)n, 50);
	}
	for (int i = 0; i < NCONN; i++) {
		assert_int_equal(echoed[i], PER_CONN);
		ocapn__shm_free(c[i]);
	}
	wait_child_ok(pid);
	/* Every fd of every connection was closed. */
	assert_int_equal(count_fds(), fds_before);
	ocapn__shm_listener_close(l);
	rendezvous_done();
}

/* ---- Peer killed mid-stream ---------------------------------------- */

static void
test_peer_killed(void **state)
{
	(void)state;
	struct ocapn__shm_params p;
	ocapn__shm_params_default(&p);
	p.slots = 8;
	p.bulk_size = 256u << 10;
	p.max_packet = 32u << 10;
	int fds_before = count_fds();
	const char *path = rendezvous();
	ocapn__shm_listener *l;
	assert_int_equal(ocapn__shm_listen(path, &p, NULL, &l), 0);
	pid_t pid = fork_child();
	if (pid == 0) {
		ocapn__shm_listener_close(l);
		ocapn__shm_conn *c = connect_to(path, &p);
		wait_ready(c);
		static uint8_t buf[200000];
		for (uint32_t i = 0;; i++) {
			/* Alternate small and fragmented messages so the
			 * kill can land mid-message. */
			size_t len = (i & 1) ? 150000 : 100;
			make_msg(buf, i, len, 3);
			send_all(c, buf, len);
		}
	}
	ocapn__shm_conn *c = accept_one(l);
	wait_ready(c);
	uint32_t i = 0;
	for (; i < 5; i++) {
		struct ocapn__shm_msg m;
		assert_int_equal(recv_one(c, &m), OCAPN_OK);
		check_msg(&m, i);
		ocapn__shm_release(c, &m);
	}
	/* The child keeps sending (or waits for room) while we take one
	 * more message and kill it.  Hold a view across the kill: the mapping must stay valid. */
	struct ocapn__shm_msg held;
	assert_int_equal(recv_one(c, &held), OCAPN_OK);
	check_msg(&held, i++);
	kill(pid, SIGKILL);
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFSIGNALED(st));
	/* Whatever was fully published is still delivered, then a clean
	 * OCAPN_E_CLOSED; no hang, no SIGBUS. */
	int rc;
	for (;;) {
		struct ocapn__shm_msg m;
		rc = recv_one(c, &m);
		if (rc != OCAPN_OK)
			break;
		check_msg(&m, i++);
		ocapn__shm_release(c, &m);
	}
	assert_int_equal(rc, OCAPN_E_CLOSED);
	const char *why;
	assert_int_equal(ocapn__shm_error(c, &why), OCAPN_E_CLOSED);
	assert_string_equal(why, "peer hung up without closing");
	check_msg(&held, 5);
	assert_int_equal(ocapn__shm_send(c, "x", 1), OCAPN_E_CLOSED);
	ocapn__shm_free(c);
	ocapn__shm_listener_close(l);
	rendezvous_done();
	assert_int_equal(count_fds(), fds_before);
}

/* ---- Refusing bad regions and doorbells ---------------------------- */

enum bad_kind {
	BAD_UNSEALED,
	BAD_NO_GROW_SEAL,
	BAD_UNDERSIZED,   /* header claims more than the file has */
	BAD_TINY,         /* smaller than a header */
	BAD_NOT_MEMFD,
	BAD_PIPE_BELL,
	BAD_ONE_FD,
	BAD_HEADER_MAGIC,
	BAD_WRITE_SEALED,
	BAD_OVERSIZED,    /* larger than the acceptor's limit */
	BAD_NONE          /* control case: a valid hand-made offer */
};

/* A hand-made initiator: sends an OFFER whose region is built by the
 * test.  Returns the acceptor's result and reason. */
static int
offer_bad(enum bad_kind kind, const char **why, uint16_t *reply_type)
{
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
	struct ocapn__shm_params p;
	ocapn__shm_params_default(&p);
	p.max_peer_region = 8u << 20;
	ocapn__shm_conn *acc;
	assert_int_equal(ocapn__shm_conn_from_socket(sv[1], false, &p, NULL,
	    &acc), 0);

	struct ocapn__shm_geom g = {8, 4096, 64u << 10};
	if (kind == BAD_OVERSIZED)
		g.bulk_size = 16u << 20, g.max_packet = 1u << 20;
	struct ocapn__shm_layout lay;
	assert_int_equal(ocapn__shm_layout(&g, &lay, NULL), 0);
	int memfd;
	if (kind == BAD_NOT_MEMFD) {
		char tmpl[] = "/tmp/ocapn-shm-file-XXXXXX";
		memfd = mkstemp(tmpl);
		unlink(tmpl);
	} else {
		memfd = memfd_create("bad", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	}
	assert_true(memfd >= 0);
	size_t size = (size_t)lay.region_size;
	assert_int_equal(ftruncate(memfd, (off_t)size), 0);
	void *map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED,
	    memfd, 0);
	assert_true(map != MAP_FAILED);
	assert_int_equal(ocapn__shm_format(map, size, &g), 0);
	if (kind == BAD_HEADER_MAGIC)
		((struct ocapn__shm_hdr *)map)->magic ^= 1;
	munmap(map, size);
	if (kind == BAD_UNDERSIZED)
		assert_int_equal(ftruncate(memfd, (off_t)size / 2), 0);
	if (kind == BAD_TINY)
		assert_int_equal(ftruncate(memfd, 16), 0);
	int seals = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL;
	if (kind == BAD_NO_GROW_SEAL)
		seals = F_SEAL_SHRINK | F_SEAL_SEAL;
	if (kind == BAD_WRITE_SEALED)
		seals |= F_SEAL_WRITE;
	if (kind != BAD_UNSEALED && kind != BAD_NOT_MEMFD)
		assert_int_equal(fcntl(memfd, F_ADD_SEALS, seals), 0);

	int bell, pp[2] = {-1, -1};
	if (kind == BAD_PIPE_BELL) {
		assert_int_equal(pipe(pp), 0);
		bell = pp[1];
	} else {
		bell = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	}
	struct ocapn__shm_ctlmsg msg = {OCAPN__SHM_CTL_MAGIC,
	    OCAPN__SHM_CTL_VERSION, OCAPN__SHM_CTL_OFFER, 1u << 20, 0};
	int fds[2] = {memfd, bell};
	int nfds = kind == BAD_ONE_FD ? 1 : 2;
	struct iovec iov = {&msg, sizeof(msg)};
	union {
		char buf[CMSG_SPACE(2 * sizeof(int))];
		struct cmsghdr align;
	} u;
	memset(&u, 0, sizeof(u));
	struct msghdr mh;
	memset(&mh, 0, sizeof(mh));
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = u.buf;
	mh.msg_controllen = CMSG_SPACE((size_t)nfds * sizeof(int));
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN((size_t)nfds * sizeof(int));
	memcpy(CMSG_DATA(cm), fds, (size_t)nfds * sizeof(int));
	assert_int_equal(sendmsg(sv[0], &mh, 0), (ssize_t)sizeof(msg));

	int rc = ocapn__shm_progress(acc, OCAPN__SHM_READY_ALL);
	ocapn__shm_error(acc, why);
	/* What did the acceptor answer? */
	struct ocapn__shm_ctlmsg reply;
	memset(&reply, 0, sizeof(reply));
	char cbuf[CMSG_SPACE(4 * sizeof(int))];
	struct iovec riov = {&reply, sizeof(reply)};
	struct msghdr rh;
	memset(&rh, 0, sizeof(rh));
	rh.msg_iov = &riov;
	rh.msg_iovlen = 1;
	rh.msg_control = cbuf;
	rh.msg_controllen = sizeof(cbuf);
	ssize_t r = recvmsg(sv[0], &rh, MSG_DONTWAIT);
	*reply_type = r == (ssize_t)sizeof(reply) ? reply.type : 0;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&rh); c;
	    c = CMSG_NXTHDR(&rh, c)) {
		int got[4];
		size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		memcpy(got, CMSG_DATA(c), n * sizeof(int));
		for (size_t i = 0; i < n; i++)
			close(got[i]);
	}
	if (kind == BAD_NONE) {
		/* Accepted: the seals hold, so the region can never
		 * shrink under the acceptor's mapping. */
		assert_int_equal(ftruncate(memfd, 0), -1);
		assert_int_equal(errno, EPERM);
	}
	ocapn__shm_free(acc);
	close(sv[0]);
	close(memfd);
	close(bell);
	if (pp[0] >= 0)
		close(pp[0]);
	return rc;
}

static void
test_reject_bad_regions(void **state)
{
	(void)state;
	static const struct {
		enum bad_kind kind;
		const char *reason;
	} cases[] = {
		{BAD_UNSEALED, "peer region lacks the shrink, grow and seal "
		    "seals"},
		{BAD_NO_GROW_SEAL, "peer region lacks the shrink, grow and "
		    "seal seals"},
		{BAD_UNDERSIZED, "region size differs from the header"},
		{BAD_TINY, "peer region smaller than its header"},
		{BAD_NOT_MEMFD, "peer region is not a sealable memfd"},
		{BAD_PIPE_BELL, "peer doorbell is not an eventfd"},
		{BAD_ONE_FD, "handshake message without exactly two fds"},
		{BAD_HEADER_MAGIC, "bad region magic"},
		{BAD_WRITE_SEALED, "peer region is write-sealed"},
		{BAD_OVERSIZED, "peer region larger than our limit"},
	};
	int fds_before = count_fds();
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *why = "";
		uint16_t reply = 0;
		int rc = offer_bad(cases[i].kind, &why, &reply);
		if (rc != OCAPN_E_PROTOCOL || strcmp(why, cases[i].reason))
			fail_msg("case %zu: %s (%s)", i, ocapn_err_name(rc),
			    why);
		/* The initiator is told it was refused. */
		assert_int_equal(reply, OCAPN__SHM_CTL_REJECT);
	}
	const char *why = "";
	uint16_t reply = 0;
	assert_int_equal(offer_bad(BAD_NONE, &why, &reply), OCAPN_OK);
	assert_int_equal(reply, OCAPN__SHM_CTL_ACCEPT);
	/* No fd leaked by any refusal. */
	assert_int_equal(count_fds(), fds_before);
}

/* ---- Rendezvous directory ------------------------------------------ */

static void
test_listen_needs_private_dir(void **state)
{
	(void)state;
	const char *path = rendezvous();
	ocapn__shm_listener *l = NULL;
	assert_int_equal(chmod(dirbuf, 0755), 0);
	assert_int_equal(ocapn__shm_listen(path, NULL, NULL, &l),
	    OCAPN_E_INVAL);
	assert_int_equal(chmod(dirbuf, 0700), 0);
	assert_int_equal(ocapn__shm_listen(path, NULL, NULL, &l), OCAPN_OK);
	ocapn__shm_listener *l2 = NULL;
	assert_int_equal(ocapn__shm_listen(path, NULL, NULL, &l2),
	    OCAPN_E_EXISTS);
	ocapn__shm_listener_close(l);
	ocapn__shm_conn *c = NULL;
	assert_int_equal(ocapn__shm_connect(path, NULL, NULL, &c),
	    OCAPN_E_CONNREFUSED);
	rendezvous_done();
}

/* ---- Authentication hook ------------------------------------------- */

/* A stand-in for the designator proof: each side sends "hello <name>"
 * and requires the peer's hello before application messages flow. */
struct toy_auth {
	const char *me, *expect;
	int started, got;
};

static int
toy_start(void *user, ocapn__shm_conn *c)
{
	struct toy_auth *t = user;
	t->started++;
	char buf[64];
	int n = snprintf(buf, sizeof(buf), "hello %s", t->me);
	return ocapn__shm_auth_send(c, buf, (size_t)n);
}

static int
toy_recv(void *user, ocapn__shm_conn *c, const uint8_t *msg, size_t len,
    bool *done)
{
	(void)c;
	struct toy_auth *t = user;
	char want[64];
	int n = snprintf(want, sizeof(want), "hello %s", t->expect);
	t->got++;
	if (len != (size_t)n || memcmp(msg, want, len) != 0)
		return OCAPN_E_SIGNATURE;
	*done = true;
	return OCAPN_OK;
}

static void
auth_pair(struct toy_auth *ta, struct toy_auth *tb, ocapn__shm_conn **a,
    ocapn__shm_conn **b)
{
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
	static struct ocapn__shm_auth_ops oa, ob;
	oa = (struct ocapn__shm_auth_ops){toy_start, toy_recv, ta};
	ob = (struct ocapn__shm_auth_ops){toy_start, toy_recv, tb};
	struct ocapn__shm_params pa, pb;
	ocapn__shm_params_default(&pa);
	ocapn__shm_params_default(&pb);
	pa.auth = &oa;
	pb.auth = &ob;
	assert_int_equal(ocapn__shm_conn_from_socket(sv[0], true, &pa, NULL,
	    a), 0);
	assert_int_equal(ocapn__shm_conn_from_socket(sv[1], false, &pb, NULL,
	    b), 0);
}

static void
test_auth_hook(void **state)
{
	(void)state;
	struct toy_auth ta = {"alice", "bob", 0, 0};
	struct toy_auth tb = {"bob", "alice", 0, 0};
	ocapn__shm_conn *a, *b;
	auth_pair(&ta, &tb, &a, &b);
	/* Application sends wait for the hook. */
	assert_int_equal(ocapn__shm_send(a, "early", 5), OCAPN_E_AGAIN);
	for (int k = 0; k < 10 && (ocapn__shm_state(a) != OCAPN__SHM_READY ||
	    ocapn__shm_state(b) != OCAPN__SHM_READY); k++) {
		ocapn__shm_progress(b, OCAPN__SHM_READY_ALL);
		ocapn__shm_progress(a, OCAPN__SHM_READY_ALL);
	}
	assert_int_equal(ocapn__shm_state(a), OCAPN__SHM_READY);
	assert_int_equal(ocapn__shm_state(b), OCAPN__SHM_READY);
	assert_int_equal(ta.started, 1);
	assert_int_equal(ta.got, 1);
	assert_int_equal(tb.got, 1);
	/* The first application message is the application's, not the
	 * hook's. */
	assert_int_equal(ocapn__shm_send(a, "app", 3), OCAPN_OK);
	struct ocapn__shm_msg m;
	assert_int_equal(ocapn__shm_recv(b, &m), OCAPN_OK);
	assert_int_equal(m.len, 3);
	assert_memory_equal(m.data, "app", 3);
	ocapn__shm_release(b, &m);
	ocapn__shm_free(a);
	ocapn__shm_free(b);

	/* A hook that refuses the peer aborts the connection. */
	struct toy_auth tc = {"alice", "bob", 0, 0};
	struct toy_auth td = {"mallory", "alice", 0, 0};
	auth_pair(&tc, &td, &a, &b);
	for (int k = 0; k < 10; k++) {
		ocapn__shm_progress(b, OCAPN__SHM_READY_ALL);
		ocapn__shm_progress(a, OCAPN__SHM_READY_ALL);
	}
	const char *why;
	assert_int_equal(ocapn__shm_error(a, &why), OCAPN_E_SIGNATURE);
	assert_string_equal(why, "authentication failed");
	assert_int_equal(ocapn__shm_state(a), OCAPN__SHM_DONE);
	/* The peer sees the hang-up. */
	assert_int_equal(ocapn__shm_recv(b, &m), OCAPN_E_CLOSED);
	ocapn__shm_free(a);
	ocapn__shm_free(b);
}

int
main(void)
{
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_echo_random_sizes),
		cmocka_unit_test(test_larger_than_bulk),
		cmocka_unit_test(test_max_msg_enforced),
		cmocka_unit_test(test_slow_consumer),
		cmocka_unit_test(test_many_connections),
		cmocka_unit_test(test_peer_killed),
		cmocka_unit_test(test_reject_bad_regions),
		cmocka_unit_test(test_listen_needs_private_dir),
		cmocka_unit_test(test_auth_hook),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
