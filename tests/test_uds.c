/*
 * unix-domain-socket netlayer and introduction server:
 *   - the control records of the real Goblins captures parse, their
 *     signatures verify, and our writers reproduce them byte for byte;
 *   - our server, fed the captured peer->server streams, answers them and
 *     forwards each introduction byte-identical to the capture;
 *   - our netlayer, fed the captured server->peer stream by a scripted
 *     server, registers and speaks the captured formats;
 *   - hostile control input on either side ends that connection with a
 *     precise reason;
 *   - live: server + two netlayers + two runtimes on one loop, an echo
 *     call over CapTP, a connect queued before the target registers, the
 *     server dying, re-registration, queue limits, the CLI.
 * Every wait is bounded by a guard timer that fails the test; nothing
 * asserts on elapsed time.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <ocapn/runtime.h>

#include "captp_harness.h"
#include "netlayers/uds.h"
#include "netlayers/uds_ctl.h"
#include "testutil.h"

#define GUARD_MS 15000

static const char *const uds_scenarios[] = {"uds-op-abort",
    "uds-pipelined-car-factory", "uds-promise-resolver-break",
    "uds-remote-exception-broken-pipeline", "uds-session-fetch-echo",
    "uds-third-party-handoff"};
#define NSCEN (sizeof(uds_scenarios) / sizeof(*uds_scenarios))

static const uint8_t tail_le[4] = {0x39, 0x30, 0x00, 0x00};

/* ---- loop helpers ------------------------------------------------------ */

static void
guard_cb(uv_timer_t *t)
{
	*(bool *)t->data = true;
}

/* Run `loop` until pred(ctx) holds; false if the guard fired first. */
static bool
run_until(uv_loop_t *loop, bool (*pred)(void *), void *ctx)
{
	uv_timer_t t;
	bool fired = false;
	uv_timer_init(loop, &t);
	t.data = &fired;
	uv_timer_start(&t, guard_cb, GUARD_MS, 0);
	while (!pred(ctx) && !fired)
		uv_run(loop, UV_RUN_ONCE);
	bool ok = pred(ctx);
	uv_close((uv_handle_t *)&t, NULL);
	uv_run(loop, UV_RUN_NOWAIT);
	return ok;
}

#define WAIT(loop, pred, ctx) assert_true(run_until((loop), (pred), (ctx)))

static bool
flag_set(void *p)
{
	return *(bool *)p;
}

static void
set_flag(void *p)
{
	*(bool *)p = true;
}

/* Close everything still open on the loop and check nothing leaked. */
static void
loop_finish(uv_loop_t *loop)
{
	for (int i = 0; i < 10; i++)
		uv_run(loop, UV_RUN_NOWAIT);
	assert_int_equal(uv_loop_close(loop), 0);
}

struct tmp {
	char dir[64];
	char path[128];
};

static void
tmp_make(struct tmp *t)
{
	const char *base = getenv("TMPDIR");
	if (!base || strlen(base) > 24)
		base = "/tmp";
	snprintf(t->dir, sizeof(t->dir), "%s/ocapn-uds-XXXXXX", base);
	assert_non_null(mkdtemp(t->dir));
	snprintf(t->path, sizeof(t->path), "%s/intro.sock", t->dir);
}

static void
tmp_remove(struct tmp *t)
{
	unlink(t->path);
	assert_int_equal(rmdir(t->dir), 0);
}

/* ---- raw sockets (the scripted side of a test) -------------------------- */

static int
raw_listen(const char *path)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	struct sockaddr_un sa;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	strcpy(sa.sun_path, path);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, 16), 0);
	return fd;
}

static int
raw_connect(const char *path)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	struct sockaddr_un sa;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	strcpy(sa.sun_path, path);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

static void
send_all(int fd, const void *p, size_t n)
{
	const uint8_t *b = p;
	while (n) {
		ssize_t r = send(fd, b, n, MSG_NOSIGNAL);
		assert_true(r > 0);
		b += r;
		n -= (size_t)r;
	}
}

/* One sendmsg() of `n` bytes carrying `nfds` descriptors. */
static void
send_fds(int fd, const void *p, size_t n, const int *fds, size_t nfds)
{
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(sizeof(int) * 4)];
	} cb;
	memset(&cb, 0, sizeof(cb));
	struct iovec iov = {(void *)p, n};
	struct msghdr m;
	memset(&m, 0, sizeof(m));
	m.msg_iov = &iov;
	m.msg_iovlen = 1;
	m.msg_control = cb.b;
	m.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
	struct cmsghdr *c = CMSG_FIRSTHDR(&m);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
	memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
	assert_int_equal(sendmsg(fd, &m, MSG_NOSIGNAL), (ssize_t)n);
}

static void
send_tail_fd(int fd, int pass)
{
	send_fds(fd, tail_le, 4, &pass, 1);
}

struct avail {
	int fd;
	size_t n;
};

static bool
has_bytes(void *p)
{
	struct avail *a = p;
	int n = 0;
	assert_int_equal(ioctl(a->fd, FIONREAD, &n), 0);
	return (size_t)n >= a->n;
}

/* Readable with nothing to read: the other side closed. */
static bool
at_eof(void *p)
{
	int fd = *(int *)p;
	struct pollfd pf = {fd, POLLIN, 0};
	if (poll(&pf, 1, 0) != 1)
		return false;
	char c;
	ssize_t r = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
	return r == 0 || (r < 0 && errno == ECONNRESET);
}

static void
recv_exact(int fd, void *p, size_t n)
{
	uint8_t *b = p;
	while (n) {
		ssize_t r = recv(fd, b, n, 0);
		assert_true(r > 0);
		b += r;
		n -= (size_t)r;
	}
}

/* Read the 4 tail bytes with recvmsg(): returns the passed descriptor. */
static int
recv_tail_fd(int fd, uint8_t tail[4])
{
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(sizeof(int) * 4)];
	} cb;
	struct iovec iov = {tail, 4};
	struct msghdr m;
	memset(&m, 0, sizeof(m));
	m.msg_iov = &iov;
	m.msg_iovlen = 1;
	m.msg_control = cb.b;
	m.msg_controllen = sizeof(cb.b);
	assert_int_equal(recvmsg(fd, &m, MSG_CMSG_CLOEXEC), 4);
	struct cmsghdr *c = CMSG_FIRSTHDR(&m);
	assert_non_null(c);
	assert_int_equal(c->cmsg_type, SCM_RIGHTS);
	assert_int_equal(c->cmsg_len, CMSG_LEN(sizeof(int)));
	int got;
	memcpy(&got, CMSG_DATA(c), sizeof(int));
	return got;
}

/* The two ends of a socketpair talk to each other. */
static void
assert_linked(int a, int b)
{
	send_all(a, "x", 1);
	char c = 0;
	recv_exact(b, &c, 1);
	assert_int_equal(c, 'x');
}

/* ---- captured streams ------------------------------------------------- */

struct rec {
	const uint8_t *p;
	size_t len;
};

struct stream {
	uint8_t *buf;
	size_t len;
	struct rec r[16];
	size_t n;
};

static bool
stream_load(struct stream *s, const char *scen, int k, const char *dir)
{
	char rel[256];
	snprintf(rel, sizeof(rel), "goblins-captures/%s/ctl%d.%s.bin", scen,
	    k, dir);
	memset(s, 0, sizeof(*s));
	if (!tu_data_exists(rel))
		return false;
	s->buf = tu_read_data(rel, &s->len);
	ocapn_syrup_decoder *dec = ocapn_syrup_decoder_new(0, NULL);
	ocapn_arena *arena = ocapn_arena_new(NULL);
	size_t off = 0;
	while (off < s->len) {
		ocapn_value *v;
		size_t used;
		assert_int_equal(ocapn_syrup_decode(dec, arena, s->buf + off,
				     s->len - off, &v, &used),
		    OCAPN_OK);
		assert_true(s->n < 16);
		s->r[s->n].p = s->buf + off;
		s->r[s->n].len = used;
		s->n++;
		off += used;
		if (ocapn_value_is_record(v, "uds:new-connection", 2)) {
			assert_memory_equal(s->buf + off, tail_le, 4);
			off += 4;
		}
	}
	ocapn_arena_free(arena);
	ocapn_syrup_decoder_free(dec);
	return true;
}

static void
parse_ok(const struct rec *r, struct ocapn__uds_rec *out, ocapn_arena *arena)
{
	ocapn_syrup_decoder *dec = ocapn_syrup_decoder_new(0, NULL);
	const char *why = "";
	int rc = ocapn__uds_parse(dec, arena, r->p, r->len, out, &why);
	if (rc)
		fail_msg("parse failed: %s", why);
	ocapn_syrup_decoder_free(dec);
}

static void
assert_writer_bytes(ocapn_syrup_writer *w, const struct rec *r)
{
	const uint8_t *p;
	size_t n;
	assert_int_equal(ocapn_syrup_writer_finish(w, &p, &n), OCAPN_OK);
	assert_int_equal(n, r->len);
	assert_memory_equal(p, r->p, n);
}

/* Locators of a captured uds:new-connection. */
static void
new_conn_locators(const struct rec *r, ocapn_locator **from,
    ocapn_locator **to)
{
	ocapn_syrup_decoder *dec = ocapn_syrup_decoder_new(0, NULL);
	ocapn_arena *arena = ocapn_arena_new(NULL);
	ocapn_value *v;
	assert_int_equal(ocapn_syrup_decode_one(dec, arena, r->p, r->len, &v),
	    OCAPN_OK);
	assert_int_equal(ocapn_locator_from_value(ocapn_value_item(v, 0), NULL,
			     from, NULL),
	    OCAPN_OK);
	assert_int_equal(ocapn_locator_from_value(ocapn_value_item(v, 1), NULL,
			     to, NULL),
	    OCAPN_OK);
	ocapn_arena_free(arena);
	ocapn_syrup_decoder_free(dec);
}

/* ---- 1. records ---------------------------------------------------------- */

static void
test_designators(void **state)
{
	(void)state;
	for (int i = 0; i < 200; i++) {
		uint8_t key[32], back[32];
		ocapn__random(key, sizeof(key));
		char d[53];
		ocapn__uds_b32(key, d);
		ocapn_buffer ref;
		ocapn_buffer_init(&ref);
		assert_int_equal(ocapn_base32_encode(key, 32, &ref, NULL), 0);
		assert_int_equal(ref.len, 52);
		assert_memory_equal(ref.data, d, 53);
		ocapn_buffer_release(&ref, NULL);
		assert_true(ocapn__uds_designator_ok(d, 52, back));
		assert_memory_equal(back, key, 32);
		/* Uppercase, a wrong length, non-zero unused bits: refused. */
		char bad[53];
		memcpy(bad, d, 53);
		bad[0] = (char)(bad[0] >= 'a' ? bad[0] - 32 : bad[0]);
		assert_int_equal(ocapn__uds_designator_ok(bad, 52, NULL),
		    bad[0] >= '2' && bad[0] <= '7');
		assert_false(ocapn__uds_designator_ok(d, 51, NULL));
		memcpy(bad, d, 53);
		bad[51] = bad[51] == 'a' ? 'b' : 'a';
		/* only characters with zero low 4 bits are canonical: a, q */
		assert_int_equal(ocapn__uds_designator_ok(bad, 52, NULL),
		    bad[51] == 'a' || bad[51] == 'q');
	}
}

struct capture_counts {
	size_t streams, registers, signatures, responses, new_conns;
};

static void
check_capture_stream(const char *scen, int k, struct capture_counts *cc)
{
	struct stream p2s, s2p;
	if (!stream_load(&p2s, scen, k, "p2s"))
		return;
	assert_true(stream_load(&s2p, scen, k, "s2p"));
	cc->streams++;
	ocapn_arena *arena = ocapn_arena_new(NULL);
	ocapn_syrup_writer *w = ocapn_syrup_writer_new(0, NULL);
	struct ocapn__uds_rec reg, sig, resp;
	assert_true(p2s.n >= 2 && s2p.n >= 1);
	parse_ok(&p2s.r[0], &reg, arena);
	parse_ok(&p2s.r[1], &sig, arena);
	parse_ok(&s2p.r[0], &resp, arena);
	assert_int_equal(reg.kind, OCAPN__UDS_REGISTER);
	assert_int_equal(sig.kind, OCAPN__UDS_SIGNATURE);
	assert_int_equal(resp.kind, OCAPN__UDS_SERVER_RESPONSE);
	assert_true(sig.sig_raw); /* Goblins sends r||s, not a sig-val */
	assert_int_equal(p2s.r[0].len, 176);
	assert_int_equal(p2s.r[1].len, 152);
	assert_int_equal(s2p.r[0].len, 287);
	/* Both directions' signatures verify with our crypto. */
	assert_int_equal(ocapn__verify(resp.pk, reg.bytes, reg.nbytes,
			     resp.sig),
	    OCAPN_OK);
	assert_int_equal(sig.nbytes, resp.nbytes);
	assert_memory_equal(sig.bytes, resp.bytes, sig.nbytes);
	assert_int_equal(ocapn__verify(reg.peer.key, resp.bytes, resp.nbytes,
			     sig.sig),
	    OCAPN_OK);
	uint8_t bad[64];
	memcpy(bad, sig.sig, 64);
	bad[3] ^= 1;
	assert_int_equal(ocapn__verify(reg.peer.key, resp.bytes, resp.nbytes,
			     bad),
	    OCAPN_E_SIGNATURE);
	cc->registers++;
	cc->signatures++;
	cc->responses++;
	/* Our writers give the same bytes. */
	ocapn_syrup_writer_reset(w);
	ocapn__uds_write_register(w, reg.peer.designator, reg.bytes,
	    reg.nbytes);
	assert_writer_bytes(w, &p2s.r[0]);
	ocapn_syrup_writer_reset(w);
	ocapn__uds_write_signature(w, sig.bytes, sig.nbytes, sig.sig, true);
	assert_writer_bytes(w, &p2s.r[1]);
	ocapn_syrup_writer_reset(w);
	ocapn__uds_write_server_response(w, resp.pk, resp.bytes, resp.nbytes,
	    resp.sig);
	assert_writer_bytes(w, &s2p.r[0]);
	/* The peer's in-band location: our format for our own locator. */
	char server_key[53];
	ocapn__uds_b32(resp.pk, server_key);
	ocapn_locator *own;
	assert_int_equal(ocapn_locator_new(OCAPN__UDS_TRANSPORT, 18,
			     reg.peer.designator, 52, NULL, &own),
	    0);
	assert_int_equal(ocapn_locator_set_hint(own, server_key, 52, "t", 1),
	    0);
	/* Introductions: sent ones come from this peer, received ones are
	 * for it; all re-encode identically. */
	for (int dir = 0; dir < 2; dir++) {
		struct stream *s = dir ? &s2p : &p2s;
		for (size_t i = dir ? 1 : 2; i < s->n; i++) {
			struct ocapn__uds_rec nc;
			parse_ok(&s->r[i], &nc, arena);
			assert_int_equal(nc.kind, OCAPN__UDS_NEW_CONNECTION);
			const char *me = dir ? nc.to.designator
					     : nc.peer.designator;
			assert_string_equal(me, reg.peer.designator);
			ocapn_locator *from, *to;
			new_conn_locators(&s->r[i], &from, &to);
			ocapn_syrup_writer_reset(w);
			ocapn__uds_write_new_connection(w, from, to);
			assert_writer_bytes(w, &s->r[i]);
			if (!dir) {
				ocapn_syrup_writer_reset(w);
				ocapn__uds_write_new_connection(w, own, to);
				assert_writer_bytes(w, &s->r[i]);
			}
			ocapn_locator_free(from);
			ocapn_locator_free(to);
			cc->new_conns++;
		}
	}
	ocapn_locator_free(own);
	ocapn_syrup_writer_free(w);
	ocapn_arena_free(arena);
	free(p2s.buf);
	free(s2p.buf);
}

static void
test_capture_records(void **state)
{
	(void)state;
	struct capture_counts cc;
	memset(&cc, 0, sizeof(cc));
	for (size_t d = 0; d < NSCEN; d++)
		for (int k = 1; k <= 3; k++)
			check_capture_stream(uds_scenarios[d], k, &cc);
	assert_int_equal(cc.streams, 5 * 2 + 3);
	assert_int_equal(cc.registers, 13);
	/* 5 scenarios with one introduction, the handoff with three; each
	 * is seen once sent and once received. */
	assert_int_equal(cc.new_conns, 2 * (5 + 3));
}

/* Shapes our parser refuses, each with its reason. */
static void
test_record_parser_refuses(void **state)
{
	(void)state;
	static const struct {
		const char *notation;
		const char *why;
	} cases[] = {
	    {"'foo", "not a record"},
	    {"<'uds:hello 1>", "unknown control record"},
	    {"<'uds:register 1>", "does not have 2 fields"},
	    {"<'uds:register 1 2>", "not an ocapn-peer"},
	    {"<'uds:register <'ocapn-peer 'testuds \"x\" f> :00>",
		"not 'unix-domain-socket"},
	    {"<'uds:register <'ocapn-peer 'unix-domain-socket \"ABC\" f> "
	     ":00>",
		"designator"},
	    {"<'uds:server-response 1 2>", "does not have 3 fields"},
	    {"<'uds:signature 1 2 3>", "does not have 2 fields"},
	    {"<'uds:new-connection 1>", "does not have 2 fields"},
	};
	ocapn_arena *arena = ocapn_arena_new(NULL);
	ocapn_syrup_decoder *dec = ocapn_syrup_decoder_new(0, NULL);
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		ocapn_value *v;
		size_t used, eo;
		const char *why = NULL;
		assert_int_equal(ocapn_notation_parse(cases[i].notation,
				     strlen(cases[i].notation), arena, &v,
				     &used, &eo, &why),
		    0);
		ocapn_syrup_writer *w = ocapn_syrup_writer_new(0, NULL);
		ocapn_syrup_write_value(w, v);
		const uint8_t *p;
		size_t n;
		assert_int_equal(ocapn_syrup_writer_finish(w, &p, &n), 0);
		struct ocapn__uds_rec r;
		why = NULL;
		assert_int_not_equal(ocapn__uds_parse(dec, arena, p, n, &r,
					 &why),
		    OCAPN_OK);
		if (!why || !strstr(why, cases[i].why))
			fail_msg("%s: reason '%s', expected '%s'",
			    cases[i].notation, why ? why : "(none)",
			    cases[i].why);
		ocapn_syrup_writer_free(w);
	}
	/* Challenges: 32..256 bytes; signatures: 64 raw bytes or sig-val. */
	uint8_t ch[300], sig[64];
	memset(ch, 7, sizeof(ch));
	memset(sig, 9, sizeof(sig));
	ocapn_syrup_writer *w = ocapn_syrup_writer_new(0, NULL);
	const uint8_t *p;
	size_t n;
	struct ocapn__uds_rec r;
	const char *why;
	static const size_t lens[] = {16, 31, 32, 64, 256, 257};
	for (size_t i = 0; i < 6; i++) {
		ocapn_syrup_writer_reset(w);
		ocapn__uds_write_signature(w, ch, lens[i], sig, i % 2 == 0);
		assert_int_equal(ocapn_syrup_writer_finish(w, &p, &n), 0);
		int rc = ocapn__uds_parse(dec, arena, p, n, &r, &why);
		bool ok = lens[i] >= 32 && lens[i] <= 256;
		assert_int_equal(rc == OCAPN_OK, ok);
		if (ok) {
			assert_int_equal(r.sig_raw, i % 2 == 0);
			assert_memory_equal(r.sig, sig, 64);
		}
	}
	ocapn_syrup_writer_free(w);
	ocapn_syrup_decoder_free(dec);
	ocapn_arena_free(arena);
}

/* ---- 2. our server replays the captured peers ------------------------ */

struct logbook {
	char lines[64][320];
	size_t n;
};

static void
log_cb(void *user, const char *line)
{
	struct logbook *lb = user;
	if (lb->n < 64)
		snprintf(lb->lines[lb->n++], sizeof(lb->lines[0]), "%s",
		    line);
}

static bool
log_has(const struct logbook *lb, const char *needle)
{
	for (size_t i = 0; i < lb->n; i++)
		if (strstr(lb->lines[i], needle))
			return true;
	return false;
}

static void
log_dump(const struct logbook *lb)
{
	for (size_t i = 0; i < lb->n; i++)
		print_message("  log: %s\n", lb->lines[i]);
}

struct regwait {
	ocapn_intro_server *s;
	size_t n;
};

static bool
registered_n(void *p)
{
	struct regwait *r = p;
	return ocapn__intro_server_registered(r->s) == r->n;
}

static bool
queued_n(void *p)
{
	struct regwait *r = p;
	return ocapn__intro_server_queued(r->s) == r->n;
}

static void
server_close_free(uv_loop_t *loop, ocapn_intro_server *s)
{
	bool done = false;
	ocapn_intro_server_close(s, set_flag, &done);
	WAIT(loop, flag_set, &done);
	ocapn_intro_server_free(s);
}

static void
replay_scenario(const char *scen)
{
	struct stream p2s[3], s2p[3];
	int n = 0;
	while (n < 3 && stream_load(&p2s[n], scen, n + 1, "p2s")) {
		assert_true(stream_load(&s2p[n], scen, n + 1, "s2p"));
		n++;
	}
	assert_true(n >= 2);
	struct tmp t;
	tmp_make(&t);
	uv_loop_t loop;
	uv_loop_init(&loop);
	uint8_t seed[32];
	memset(seed, 0x5a, sizeof(seed));
	ocapn_intro_server *srv;
	assert_int_equal(ocapn__intro_server_new_ex(&loop, t.path, seed, NULL,
			     NULL, &srv),
	    OCAPN_OK);
	struct logbook lb = {.n = 0};
	ocapn_intro_server_set_log(srv, log_cb, &lb);
	uint8_t server_pk[32];
	assert_true(ocapn__uds_designator_ok(ocapn_intro_server_key(srv), 52,
	    server_pk));
	ocapn_arena *arena = ocapn_arena_new(NULL);
	int fd[3];
	char desig[3][53];
	for (int k = 0; k < n; k++) {
		struct ocapn__uds_rec reg, cap_resp, resp;
		parse_ok(&p2s[k].r[0], &reg, arena);
		parse_ok(&s2p[k].r[0], &cap_resp, arena);
		memcpy(desig[k], reg.peer.designator, 53);
		/* Our server sends the challenge this peer answered. */
		ocapn__intro_server_fix_challenge(srv, cap_resp.bytes);
		fd[k] = raw_connect(t.path);
		send_all(fd[k], p2s[k].r[0].p, p2s[k].r[0].len);
		struct avail a = {fd[k], s2p[k].r[0].len};
		WAIT(&loop, has_bytes, &a);
		struct rec got = {malloc(a.n), a.n};
		recv_exact(fd[k], (void *)got.p, a.n);
		parse_ok(&got, &resp, arena);
		assert_int_equal(resp.kind, OCAPN__UDS_SERVER_RESPONSE);
		assert_memory_equal(resp.pk, server_pk, 32);
		assert_memory_equal(resp.bytes, cap_resp.bytes, 64);
		/* it signed the captured peer's challenge */
		assert_int_equal(ocapn__verify(server_pk, reg.bytes,
				     reg.nbytes, resp.sig),
		    OCAPN_OK);
		free((void *)got.p);
		send_all(fd[k], p2s[k].r[1].p, p2s[k].r[1].len);
		struct regwait rw = {srv, (size_t)k + 1};
		WAIT(&loop, registered_n, &rw);
		assert_true(log_has(&lb, "(raw signature)"));
	}
	/* Every introduction reaches its target byte for byte. */
	size_t forwarded = 0;
	for (int k = 0; k < n; k++) {
		for (size_t i = 2; i < p2s[k].n; i++) {
			const struct rec *r = &p2s[k].r[i];
			struct ocapn__uds_rec nc;
			parse_ok(r, &nc, arena);
			int tgt = -1;
			for (int j = 0; j < n; j++)
				if (!strcmp(desig[j], nc.to.designator))
					tgt = j;
			assert_true(tgt >= 0);
			int sp[2];
			assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0,
					     sp),
			    0);
			send_all(fd[k], r->p, r->len);
			send_tail_fd(fd[k], sp[1]);
			close(sp[1]);
			struct avail a = {fd[tgt], r->len + 4};
			WAIT(&loop, has_bytes, &a);
			uint8_t *got = malloc(r->len);
			recv_exact(fd[tgt], got, r->len);
			bool in_capture = false;
			for (size_t j = 1; j < s2p[tgt].n; j++)
				if (s2p[tgt].r[j].len == r->len &&
				    !memcmp(s2p[tgt].r[j].p, got, r->len))
					in_capture = true;
			assert_true(in_capture);
			assert_memory_equal(got, r->p, r->len);
			free(got);
			uint8_t tail[4];
			int passed = recv_tail_fd(fd[tgt], tail);
			assert_memory_equal(tail, tail_le, 4);
			assert_linked(sp[0], passed);
			assert_linked(passed, sp[0]);
			close(passed);
			close(sp[0]);
			forwarded++;
		}
	}
	assert_true(forwarded >= 1);
	for (int k = 0; k < n; k++) {
		close(fd[k]);
		free(p2s[k].buf);
		free(s2p[k].buf);
	}
	struct regwait rw = {srv, 0};
	WAIT(&loop, registered_n, &rw);
	ocapn_arena_free(arena);
	server_close_free(&loop, srv);
	loop_finish(&loop);
	tmp_remove(&t);
}

static void
test_server_replays_captures(void **state)
{
	(void)state;
	for (size_t d = 0; d < NSCEN; d++)
		replay_scenario(uds_scenarios[d]);
}

/* ---- netlayer harness -------------------------------------------------- */

struct nlrec {
	ocapn_netlayer *nl;
	int accepts, connects_ok, connects_err, closes, messages, stopped;
	int last_connect_status;
	ocapn_conn *accepted, *connected;
	uint8_t msg[512];
	size_t msglen;
	int registered, refused, lost;
	int lost_status;
	int want;
	char lost_reason[256], refused_reason[256];
};

static void
h_on_accept(void *user, ocapn_netlayer *nl, ocapn_conn *c)
{
	struct nlrec *r = user;
	(void)nl;
	r->accepts++;
	r->accepted = c;
}

static void
h_on_connect(void *user, ocapn_conn *c, int status)
{
	struct nlrec *r = user;
	r->last_connect_status = status;
	if (status == OCAPN_OK) {
		r->connects_ok++;
		r->connected = c;
	} else {
		r->connects_err++;
	}
}

static void
h_on_message(void *user, ocapn_conn *c, const uint8_t *m, size_t n)
{
	struct nlrec *r = user;
	(void)c;
	r->messages++;
	r->msglen = n < sizeof(r->msg) ? n : sizeof(r->msg);
	memcpy(r->msg, m, r->msglen);
}

static void
h_on_error(void *user, ocapn_conn *c, int status, const char *reason)
{
	(void)user;
	(void)status;
	(void)reason;
	ocapn_conn_reset(c);
}

static void
h_on_close(void *user, ocapn_conn *c, int status, const char *reason)
{
	struct nlrec *r = user;
	(void)status;
	(void)reason;
	r->closes++;
	if (r->accepted == c)
		r->accepted = NULL;
	if (r->connected == c)
		r->connected = NULL;
}

static void
h_on_stopped(void *user, ocapn_netlayer *nl)
{
	struct nlrec *r = user;
	(void)nl;
	r->stopped++;
}

static void
h_on_event(void *user, ocapn_netlayer *nl, ocapn_uds_event ev, int status,
    const char *reason)
{
	struct nlrec *r = user;
	(void)nl;
	if (ev == OCAPN_UDS_REGISTERED) {
		assert_int_equal(status, OCAPN_OK);
		r->registered++;
	} else if (ev == OCAPN_UDS_REFUSED) {
		r->refused++;
		snprintf(r->refused_reason, sizeof(r->refused_reason), "%s",
		    reason);
	} else {
		r->lost++;
		r->lost_status = status;
		snprintf(r->lost_reason, sizeof(r->lost_reason), "%s", reason);
	}
}

static void
nl_attach(struct nlrec *r, ocapn_netlayer *nl)
{
	memset(r, 0, sizeof(*r));
	r->nl = nl;
	ocapn_netlayer_handler h = {
	    .on_accept = h_on_accept,
	    .on_connect = h_on_connect,
	    .on_message = h_on_message,
	    .on_error = h_on_error,
	    .on_close = h_on_close,
	    .on_stopped = h_on_stopped,
	    .user = r,
	};
	ocapn_netlayer_set_handler(nl, &h);
	assert_int_equal(ocapn_uds_netlayer_set_event_cb(nl, h_on_event, r),
	    OCAPN_OK);
}

static bool
is_registered(void *p)
{
	return ((struct nlrec *)p)->registered > 0;
}

static bool
is_lost(void *p)
{
	return ((struct nlrec *)p)->lost > 0;
}

static bool
is_stopped(void *p)
{
	return ((struct nlrec *)p)->stopped > 0;
}

static void
nl_stop_free(uv_loop_t *loop, struct nlrec *r)
{
	ocapn_netlayer_stop(r->nl);
	WAIT(loop, is_stopped, r);
	ocapn_netlayer_free(r->nl);
	r->nl = NULL;
}

static ocapn_netlayer *
nl_new(uv_loop_t *loop, const char *path, uint8_t seedbyte,
    const uint8_t *challenge, struct nlrec *r)
{
	uint8_t seed[32];
	memset(seed, seedbyte, sizeof(seed));
	ocapn_netlayer *nl;
	assert_int_equal(ocapn__uds_netlayer_new_ex(loop, path, seed,
			     challenge, NULL, &nl),
	    OCAPN_OK);
	nl_attach(r, nl);
	return nl;
}

static void
designator_of(uint8_t seedbyte, char out[53])
{
	uint8_t seed[32];
	memset(seed, seedbyte, sizeof(seed));
	ocapn__keypair kp;
	assert_int_equal(ocapn__keypair_from_seed(&kp, seed), 0);
	ocapn__uds_b32(kp.pk, out);
	ocapn__keypair_wipe(&kp);
}

static ocapn_locator *
loc_for(const char *designator, const char *server_key)
{
	ocapn_locator *l;
	assert_int_equal(ocapn_locator_new(OCAPN__UDS_TRANSPORT, 18,
			     designator, strlen(designator), NULL, &l),
	    0);
	if (server_key)
		assert_int_equal(ocapn_locator_set_hint(l, server_key,
				     strlen(server_key), "t", 1),
		    0);
	return l;
}

static void
assert_uri(const ocapn_locator *l, const char *expect)
{
	ocapn_buffer b;
	ocapn_buffer_init(&b);
	assert_int_equal(ocapn_locator_to_uri(l, &b, NULL), 0);
	assert_string_equal((const char *)b.data, expect);
	ocapn_buffer_release(&b, NULL);
}

/* ---- 3. our netlayer against the captured server ---------------------- */

static bool
n_accepts(void *p)
{
	return ((struct nlrec *)p)->accepts > 0;
}

static bool
n_refused(void *p)
{
	return ((struct nlrec *)p)->refused > 0;
}

static bool
n_messages(void *p)
{
	return ((struct nlrec *)p)->messages > 0;
}

static bool
n_connected(void *p)
{
	return ((struct nlrec *)p)->connects_ok > 0;
}

static bool
n_connected_all(void *p)
{
	struct nlrec *r = p;
	return r->connects_ok >= r->want;
}

static bool
n_accepts_all(void *p)
{
	struct nlrec *r = p;
	return r->accepts >= r->want;
}

static void
test_client_replays_capture(void **state)
{
	(void)state;
	const char *scen = "uds-session-fetch-echo";
	struct stream p2s, s2p, p2s_other;
	assert_true(stream_load(&p2s, scen, 1, "p2s"));
	assert_true(stream_load(&s2p, scen, 1, "s2p"));
	assert_true(stream_load(&p2s_other, scen, 2, "p2s"));
	ocapn_arena *arena = ocapn_arena_new(NULL);
	struct ocapn__uds_rec cap_reg, cap_resp;
	parse_ok(&p2s.r[0], &cap_reg, arena);
	parse_ok(&s2p.r[0], &cap_resp, arena);

	struct tmp t;
	tmp_make(&t);
	uv_loop_t loop;
	uv_loop_init(&loop);
	int lfd = raw_listen(t.path);
	struct nlrec r;
	ocapn_netlayer *nl = nl_new(&loop, t.path, 0x11, cap_reg.bytes, &r);
	char me[53];
	designator_of(0x11, me);
	assert_false(ocapn_uds_netlayer_registered(nl));
	/* hints f until registered, as in uds:register */
	assert_false(ocapn_locator_hints_are_dict(ocapn_netlayer_locator(nl)));
	int srv = accept(lfd, NULL, NULL);
	assert_true(srv >= 0);

	/* uds:register: the captured bytes with our designator. */
	struct avail a = {srv, 176};
	WAIT(&loop, has_bytes, &a);
	uint8_t got[512];
	recv_exact(srv, got, 176);
	uint8_t expect[176];
	memcpy(expect, p2s.r[0].p, 176);
	uint8_t *dp = memmem(expect, 176, cap_reg.peer.designator, 52);
	assert_non_null(dp);
	memcpy(dp, me, 52);
	assert_memory_equal(got, expect, 176);

	/* The captured uds:server-response (it signed this challenge). */
	send_all(srv, s2p.r[0].p, s2p.r[0].len);
	WAIT(&loop, is_registered, &r);
	assert_true(ocapn_uds_netlayer_registered(nl));
	a.n = 152;
	WAIT(&loop, has_bytes, &a);
	recv_exact(srv, got, 152);
	struct ocapn__uds_rec sig;
	struct rec gr = {got, 152};
	parse_ok(&gr, &sig, arena);
	assert_int_equal(sig.kind, OCAPN__UDS_SIGNATURE);
	assert_true(sig.sig_raw);
	assert_memory_equal(sig.bytes, cap_resp.bytes, 64);
	uint8_t my_pk[32];
	assert_true(ocapn__uds_designator_ok(me, 52, my_pk));
	assert_int_equal(ocapn__verify(my_pk, cap_resp.bytes, 64, sig.sig),
	    OCAPN_OK);

	/* Locator: URI and in-band form, as Goblins writes them. */
	/* the hint of CAPTURES.md */
	const char *skey =
	    "phz23am6ucxkeuezdxrkxmjgxawfqhoxvs4gqrdxhgjwqfaeszoq";
	char b32[53];
	ocapn__uds_b32(cap_resp.pk, b32);
	assert_string_equal(b32, skey);
	char uri[256];
	snprintf(uri, sizeof(uri), "ocapn://%s.unix-domain-socket?%s=t", me,
	    skey);
	assert_uri(ocapn_netlayer_locator(nl), uri);
	ocapn_syrup_writer *w = ocapn_syrup_writer_new(0, NULL);
	ocapn_locator_write(ocapn_netlayer_locator(nl), w);
	const uint8_t *lp;
	size_t ln;
	assert_int_equal(ocapn_syrup_writer_finish(w, &lp, &ln), 0);
	char inband[256];
	snprintf(inband, sizeof(inband),
	    "<10'ocapn-peer18'unix-domain-socket52\"%s{52\"%s1\"t}>", me,
	    skey);
	assert_int_equal(ln, strlen(inband));
	assert_memory_equal(lp, inband, ln);

	/* The captured introduction is for another peer: refused. */
	int sp[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
	send_all(srv, s2p.r[1].p, s2p.r[1].len);
	send_tail_fd(srv, sp[1]);
	close(sp[1]);
	WAIT(&loop, n_refused, &r);
	assert_non_null(strstr(r.refused_reason, "another peer"));
	WAIT(&loop, at_eof, &sp[0]); /* its descriptor was closed */
	close(sp[0]);
	assert_int_equal(r.accepts, 0);

	/* One for us, sent as Goblins' server sends it: accepted. */
	ocapn_locator *from, *cap_to;
	new_conn_locators(&s2p.r[1], &from, &cap_to);
	ocapn_syrup_writer_reset(w);
	ocapn__uds_write_new_connection(w, from, ocapn_netlayer_locator(nl));
	assert_int_equal(ocapn_syrup_writer_finish(w, &lp, &ln), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
	send_all(srv, lp, ln);
	send_tail_fd(srv, sp[1]);
	close(sp[1]);
	WAIT(&loop, n_accepts, &r);
	assert_false(ocapn_conn_outbound(r.accepted));
	send_all(sp[0], "<5'hello1+>", 11);
	WAIT(&loop, n_messages, &r);
	assert_int_equal(r.msglen, 11);
	assert_memory_equal(r.msg, "<5'hello1+>", 11);

	/* Outbound: exactly the captured request, with our designator. */
	ocapn_conn *oc;
	assert_int_equal(ocapn_netlayer_connect(nl, cap_to, &oc), OCAPN_OK);
	assert_int_equal(r.connects_ok + r.connects_err, 0); /* not inside */
	const struct rec *cap_nc = &p2s_other.r[2];
	a.n = cap_nc->len + 4;
	WAIT(&loop, has_bytes, &a);
	recv_exact(srv, got, cap_nc->len);
	uint8_t want[512];
	memcpy(want, cap_nc->p, cap_nc->len);
	struct ocapn__uds_rec cnc;
	parse_ok(cap_nc, &cnc, arena);
	dp = memmem(want, cap_nc->len, cnc.peer.designator, 52);
	assert_non_null(dp);
	memcpy(dp, me, 52);
	assert_memory_equal(got, want, cap_nc->len);
	uint8_t tail[4];
	int passed = recv_tail_fd(srv, tail);
	assert_memory_equal(tail, tail_le, 4);
	WAIT(&loop, n_connected, &r);
	assert_ptr_equal(r.connected, oc);
	ocapn_iov iov = {"<3'bye>", 7};
	assert_int_equal(ocapn_conn_send(oc, &iov, 1), OCAPN_OK);
	recv_exact(passed, got, 7);
	assert_memory_equal(got, "<3'bye>", 7);

	/* A peer reachable only through another server. */
	ocapn_locator *elsewhere = loc_for(cnc.to.designator,
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
	assert_int_equal(ocapn_netlayer_connect(nl, elsewhere, &oc),
	    OCAPN_E_NOTFOUND);
	ocapn_locator_free(elsewhere);

	close(passed);
	close(sp[0]);
	nl_stop_free(&loop, &r);
	close(srv);
	close(lfd);
	ocapn_locator_free(from);
	ocapn_locator_free(cap_to);
	ocapn_syrup_writer_free(w);
	ocapn_arena_free(arena);
	free(p2s.buf);
	free(s2p.buf);
	free(p2s_other.buf);
	loop_finish(&loop);
	tmp_remove(&t);
}

/* ---- 4. hostile control input to the netlayer --------------------------- */

struct fake {
	struct tmp t;
	uv_loop_t loop;
	int lfd, srv;
	struct nlrec r;
	ocapn_netlayer *nl;
	ocapn__keypair key;
	char key_b32[53];
	char me[53];
	ocapn_arena *arena;
	ocapn_syrup_writer *w;
};

static void
fake_start(struct fake *f)
{
	tmp_make(&f->t);
	uv_loop_init(&f->loop);
	f->lfd = raw_listen(f->t.path);
	f->nl = nl_new(&f->loop, f->t.path, 0x22, NULL, &f->r);
	designator_of(0x22, f->me);
	f->srv = accept(f->lfd, NULL, NULL);
	assert_true(f->srv >= 0);
	uint8_t seed[32];
	memset(seed, 0x33, sizeof(seed));
	assert_int_equal(ocapn__keypair_from_seed(&f->key, seed), 0);
	ocapn__uds_b32(f->key.pk, f->key_b32);
	f->arena = ocapn_arena_new(NULL);
	f->w = ocapn_syrup_writer_new(0, NULL);
}

/* Read uds:register; return a valid server-response in f->w. */
static void
fake_response(struct fake *f, bool corrupt)
{
	struct avail a = {f->srv, 176};
	WAIT(&f->loop, has_bytes, &a);
	uint8_t got[176];
	recv_exact(f->srv, got, 176);
	struct ocapn__uds_rec reg;
	struct rec gr = {got, 176};
	parse_ok(&gr, &reg, f->arena);
	uint8_t sig[64], ch[64];
	assert_int_equal(ocapn__sign(&f->key, reg.bytes, reg.nbytes, sig), 0);
	if (corrupt)
		sig[10] ^= 4;
	ocapn__random(ch, sizeof(ch));
	ocapn_syrup_writer_reset(f->w);
	ocapn__uds_write_server_response(f->w, f->key.pk, ch, 64, sig);
}

static void
fake_send_writer(struct fake *f)
{
	const uint8_t *p;
	size_t n;
	assert_int_equal(ocapn_syrup_writer_finish(f->w, &p, &n), 0);
	send_all(f->srv, p, n);
}

static void
fake_register(struct fake *f)
{
	fake_response(f, false);
	fake_send_writer(f);
	WAIT(&f->loop, is_registered, &f->r);
	struct avail a = {f->srv, 152};
	WAIT(&f->loop, has_bytes, &a);
	uint8_t got[152];
	recv_exact(f->srv, got, 152);
}

/* A new-connection record for us (or `to`) into f->w. */
static void
fake_intro(struct fake *f, const char *to)
{
	char other[53];
	designator_of(0x44, other);
	ocapn_locator *from = loc_for(other, f->key_b32);
	ocapn_locator *tl = loc_for(to ? to : f->me, f->key_b32);
	ocapn_syrup_writer_reset(f->w);
	ocapn__uds_write_new_connection(f->w, from, tl);
	ocapn_locator_free(from);
	ocapn_locator_free(tl);
}

static void
fake_end(struct fake *f)
{
	if (f->nl)
		nl_stop_free(&f->loop, &f->r);
	if (f->srv >= 0)
		close(f->srv);
	close(f->lfd);
	ocapn__keypair_wipe(&f->key);
	ocapn_arena_free(f->arena);
	ocapn_syrup_writer_free(f->w);
	loop_finish(&f->loop);
	tmp_remove(&f->t);
}

enum hostile_mode {
	H_BYTES,        /* send `data` */
	H_BYTES_EOF,    /* send `data`, then close */
	H_BAD_SIG,      /* a server-response whose signature is wrong */
	H_INTRO_NO_FD,  /* a valid introduction, 4 bytes but no descriptor */
	H_INTRO_FD_IN,  /* the descriptor rides on the record's bytes */
	H_INTRO_UPPER   /* an introduction naming an uppercase designator */
};

struct hostile {
	const char *name;
	bool after_registration;
	enum hostile_mode mode;
	const char *data;
	const char *reason;
	int status;
};

static void
run_hostile_client(const struct hostile *h)
{
	struct fake f;
	fake_start(&f);
	if (h->after_registration)
		fake_register(&f);
	/* A connect waiting for registration fails with the server. */
	char peer[53];
	designator_of(0x55, peer);
	ocapn_locator *pl = loc_for(peer, NULL);
	ocapn_conn *pc = NULL;
	if (!h->after_registration)
		assert_int_equal(ocapn_netlayer_connect(f.nl, pl, &pc),
		    OCAPN_OK);
	const uint8_t *p;
	size_t n;
	switch (h->mode) {
	case H_BYTES:
	case H_BYTES_EOF:
		if (h->data[0] == '@') {
			uint8_t *b = h_encode(h->data + 1, &n);
			send_all(f.srv, b, n);
			free(b);
		} else {
			send_all(f.srv, h->data, strlen(h->data));
		}
		if (h->mode == H_BYTES_EOF) {
			close(f.srv);
			f.srv = -1;
		}
		break;
	case H_BAD_SIG:
		fake_response(&f, true);
		fake_send_writer(&f);
		break;
	case H_INTRO_NO_FD:
		fake_intro(&f, NULL);
		fake_send_writer(&f);
		send_all(f.srv, tail_le, 4);
		break;
	case H_INTRO_FD_IN: {
		fake_intro(&f, NULL);
		assert_int_equal(ocapn_syrup_writer_finish(f.w, &p, &n), 0);
		int sp[2];
		assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
		send_fds(f.srv, p, n, &sp[1], 1);
		close(sp[0]);
		close(sp[1]);
		break;
	}
	case H_INTRO_UPPER: {
		fake_intro(&f, NULL);
		assert_int_equal(ocapn_syrup_writer_finish(f.w, &p, &n), 0);
		uint8_t *b = malloc(n);
		memcpy(b, p, n);
		uint8_t *dp = memmem(b, n, f.me, 52);
		assert_non_null(dp);
		for (int i = 0; i < 52; i++)
			if (dp[i] >= 'a' && dp[i] <= 'z')
				dp[i] = (uint8_t)(dp[i] - 32);
		send_all(f.srv, b, n);
		free(b);
		break;
	}
	}
	if (!run_until(&f.loop, is_lost, &f.r))
		fail_msg("%s: the netlayer did not give up", h->name);
	if (!strstr(f.r.lost_reason, h->reason))
		fail_msg("%s: reason '%s', expected '%s'", h->name,
		    f.r.lost_reason, h->reason);
	assert_int_equal(f.r.lost_status, h->status);
	assert_false(ocapn_uds_netlayer_registered(f.nl));
	if (!h->after_registration) {
		/* the queued connect failed: on_connect(error), on_close */
		assert_int_equal(f.r.connects_err, 1);
		assert_int_equal(f.r.last_connect_status, h->status);
		while (f.r.closes == 0)
			uv_run(&f.loop, UV_RUN_ONCE);
	}
	/* Connecting now fails at once. */
	ocapn_conn *c2;
	assert_int_equal(ocapn_netlayer_connect(f.nl, pl, &c2),
	    OCAPN_E_CLOSED);
	ocapn_locator_free(pl);
	fake_end(&f);
}

static void
test_client_hostile_server(void **state)
{
	(void)state;
	static const struct hostile cases[] = {
	    {"garbage", false, H_BYTES, "hello",
		"malformed control record at stream byte 0",
		OCAPN_E_SYNTAX},
	    {"unknown record", false, H_BYTES, "@<'uds:hello 1>",
		"unknown control record", OCAPN_E_PROTOCOL},
	    {"wrong arity", false, H_BYTES, "@<'uds:server-response 1 2>",
		"does not have 3 fields", OCAPN_E_PROTOCOL},
	    {"not a response", false, H_BYTES,
		"@<'uds:signature #x" /* filled below */, NULL, 0},
	    {"bad signature", false, H_BAD_SIG, NULL, "does not verify",
		OCAPN_E_SIGNATURE},
	    {"oversized", false, H_BYTES, "20000:", "malformed control "
						  "record",
		OCAPN_E_LIMIT},
	    {"cut short", false, H_BYTES_EOF, "<19'uds:server-resp",
		"closed in the middle of a control record", OCAPN_E_CLOSED},
	    {"eof while registering", false, H_BYTES_EOF, "",
		"closed the connection during registration", OCAPN_E_CLOSED},
	    {"second response", true, H_BYTES,
		"@<'uds:server-response 1 2 3>", "invalid control record",
		OCAPN_E_PROTOCOL},
	    {"signature after registration", true, H_BYTES,
		"@<'uds:register <'ocapn-peer 'unix-domain-socket "
		"\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\" f> "
		":0000000000000000000000000000000000000000000000000000000000"
		"000000>",
		"other than uds:new-connection", OCAPN_E_PROTOCOL},
	    {"intro without descriptor", true, H_INTRO_NO_FD, NULL,
		"not followed by a passed descriptor", OCAPN_E_PROTOCOL},
	    {"descriptor inside the record", true, H_INTRO_FD_IN, NULL,
		"descriptor was passed inside a control record",
		OCAPN_E_PROTOCOL},
	    {"uppercase designator", true, H_INTRO_UPPER, NULL,
		"designator is not 52 lowercase", OCAPN_E_PROTOCOL},
	    {"eof after registration", true, H_BYTES_EOF, "",
		"introduction server closed the connection", OCAPN_E_CLOSED},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		if (!cases[i].reason) {
			/* a well-formed record of the wrong kind */
			char buf[400];
			snprintf(buf, sizeof(buf),
			    "@<'uds:signature :%0128d :%0128d>", 0, 0);
			struct hostile h = {cases[i].name, false, H_BYTES, buf,
			    "other than uds:server-response",
			    OCAPN_E_PROTOCOL};
			run_hostile_client(&h);
			continue;
		}
		run_hostile_client(&cases[i]);
	}
}

/* The draft text nests a uds:signature in uds:server-response (Goblins
 * sends a bare sig-val): accepted when it names our challenge. */
static void
draft_response(bool wrong_payload)
{
	struct fake f;
	fake_start(&f);
	struct avail a = {f.srv, 176};
	WAIT(&f.loop, has_bytes, &a);
	uint8_t got[176];
	recv_exact(f.srv, got, 176);
	struct ocapn__uds_rec reg;
	struct rec gr = {got, 176};
	parse_ok(&gr, &reg, f.arena);
	uint8_t payload[64], sig[64], ch[64];
	memcpy(payload, reg.bytes, 64);
	if (wrong_payload)
		payload[5] ^= 1;
	assert_int_equal(ocapn__sign(&f.key, payload, 64, sig), 0);
	memset(ch, 0x42, sizeof(ch));
	ocapn_syrup_writer_reset(f.w);
	ocapn_syrup_write_record_begin(f.w);
	ocapn_syrup_write_symbol(f.w, "uds:server-response", 19);
	ocapn__write_pubkey(f.w, f.key.pk);
	ocapn_syrup_write_bytes(f.w, ch, 64);
	ocapn__uds_write_signature(f.w, payload, 64, sig, false);
	ocapn_syrup_write_record_end(f.w);
	fake_send_writer(&f);
	if (wrong_payload) {
		WAIT(&f.loop, is_lost, &f.r);
		assert_non_null(strstr(f.r.lost_reason,
		    "signed something other than our challenge"));
	} else {
		WAIT(&f.loop, is_registered, &f.r);
	}
	fake_end(&f);
}

static void
test_client_accepts_draft_response(void **state)
{
	(void)state;
	draft_response(false);
	draft_response(true);
}

/* Introductions we refuse one by one, keeping the control connection;
 * and the two descriptors Goblins may pass (padded cmsg_len). */
static void
test_client_refuses_bad_descriptors(void **state)
{
	(void)state;
	signal(SIGPIPE, SIG_IGN);
	struct fake f;
	fake_start(&f);
	fake_register(&f);
	const uint8_t *p;
	size_t n;
	/* A pipe is not a socket. */
	int pp[2];
	assert_int_equal(pipe(pp), 0);
	fake_intro(&f, NULL);
	fake_send_writer(&f);
	send_tail_fd(f.srv, pp[0]);
	close(pp[0]);
	WAIT(&f.loop, n_refused, &f.r);
	assert_non_null(strstr(f.r.refused_reason, "not a socket"));
	assert_int_equal(write(pp[1], "x", 1), -1); /* read end closed */
	assert_int_equal(errno, EPIPE);
	close(pp[1]);
	/* A datagram socket is not a stream. */
	int dg[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_DGRAM, 0, dg), 0);
	f.r.refused = 0;
	fake_intro(&f, NULL);
	fake_send_writer(&f);
	send_tail_fd(f.srv, dg[0]);
	close(dg[0]);
	close(dg[1]);
	WAIT(&f.loop, n_refused, &f.r);
	assert_non_null(strstr(f.r.refused_reason, "not a stream socket"));
	/* Two descriptors: the first is the connection, the second is
	 * closed. */
	int sp[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
	assert_int_equal(pipe(pp), 0);
	fake_intro(&f, NULL);
	assert_int_equal(ocapn_syrup_writer_finish(f.w, &p, &n), 0);
	send_all(f.srv, p, n);
	int two[2] = {sp[1], pp[0]};
	send_fds(f.srv, tail_le, 4, two, 2);
	close(sp[1]);
	close(pp[0]);
	WAIT(&f.loop, n_accepts, &f.r);
	assert_int_equal(write(pp[1], "x", 1), -1);
	assert_int_equal(errno, EPIPE);
	close(pp[1]);
	send_all(sp[0], "<1'a>", 5);
	WAIT(&f.loop, n_messages, &f.r);
	assert_int_equal(f.r.lost, 0);
	close(sp[0]);
	fake_end(&f);
}

/* Partial writes and would-block on the control socket: many requests
 * queued while the scripted server does not read, then all delivered in
 * order once it does. */
static void
test_client_control_backpressure(void **state)
{
	(void)state;
	struct fake f;
	fake_start(&f);
	int small = 4096;
	setsockopt(f.srv, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	fake_register(&f);
	char peer[53];
	designator_of(0x66, peer);
	ocapn_locator *pl = loc_for(peer, f.key_b32);
	enum { N = 200 };
	ocapn_conn *cs[N];
	for (int i = 0; i < N; i++)
		assert_int_equal(ocapn_netlayer_connect(f.nl, pl, &cs[i]),
		    OCAPN_OK);
	/* Let the netlayer fill the socket until it would block. */
	for (int i = 0; i < 50; i++)
		uv_run(&f.loop, UV_RUN_NOWAIT);
	assert_true(f.r.connects_ok < N);
	ocapn_syrup_writer_reset(f.w);
	ocapn__uds_write_new_connection(f.w, ocapn_netlayer_locator(f.nl), pl);
	const uint8_t *p;
	size_t n;
	assert_int_equal(ocapn_syrup_writer_finish(f.w, &p, &n), 0);
	for (int i = 0; i < N; i++) {
		struct avail a = {f.srv, n + 4};
		WAIT(&f.loop, has_bytes, &a);
		uint8_t got[512];
		recv_exact(f.srv, got, n);
		assert_memory_equal(got, p, n);
		uint8_t tail[4];
		int fd = recv_tail_fd(f.srv, tail);
		close(fd);
	}
	f.r.want = N;
	WAIT(&f.loop, n_connected_all, &f.r);
	assert_int_equal(f.r.connects_ok, N);
	assert_int_equal(f.r.lost, 0);
	ocapn_locator_free(pl);
	fake_end(&f);
}

/* ---- 5. hostile control input to the server ------------------------------ */

struct rawpeer {
	int fd;
	ocapn__keypair key;
	char designator[53];
	uint8_t challenge[64]; /* the server's */
};

static void
rawpeer_hello(uv_loop_t *loop, const char *path, struct rawpeer *p,
    uint8_t seedbyte)
{
	uint8_t seed[32];
	memset(seed, seedbyte, sizeof(seed));
	assert_int_equal(ocapn__keypair_from_seed(&p->key, seed), 0);
	ocapn__uds_b32(p->key.pk, p->designator);
	p->fd = raw_connect(path);
	uint8_t ch[64];
	memset(ch, seedbyte, sizeof(ch));
	ocapn_syrup_writer *w = ocapn_syrup_writer_new(0, NULL);
	ocapn__uds_write_register(w, p->designator, ch, 64);
	const uint8_t *b;
	size_t n;
	assert_int_equal(ocapn_syrup_writer_finish(w, &b, &n), 0);
	send_all(p->fd, b, n);
	struct avail a = {p->fd, 287};
	WAIT(loop, has_bytes, &a);
	uint8_t got[287];
	recv_exact(p->fd, got, 287);
	ocapn_arena *arena = ocapn_arena_new(NULL);
	struct ocapn__uds_rec r;
	struct rec gr = {got, 287};
	parse_ok(&gr, &r, arena);
	assert_int_equal(ocapn__verify(r.pk, ch, 64, r.sig), OCAPN_OK);
	memcpy(p->challenge, r.bytes, 64);
	ocapn_arena_free(arena);
	ocapn_syrup_writer_free(w);
}

/* Answer the challenge; `how`: 0 raw, 1 sig-val, 2 wrong key, 3 wrong
 * payload. */
static void
rawpeer_answer(struct rawpeer *p, int how)
{
	uint8_t sig[64], payload[64];
	memcpy(payload, p->challenge, 64);
	if (how == 3)
		payload[0] ^= 1;
	ocapn__keypair other;
	uint8_t seed[32];
	memset(seed, 0x99, sizeof(seed));
	assert_int_equal(ocapn__keypair_from_seed(&other, seed), 0);
	assert_int_equal(ocapn__sign(how == 2 ? &other : &p->key,
			     p->challenge, 64, sig),
	    0);
	ocapn_syrup_writer *w = ocapn_syrup_writer_new(0, NULL);
	ocapn__uds_write_signature(w, payload, 64, sig, how != 1);
	const uint8_t *b;
	size_t n;
	assert_int_equal(ocapn_syrup_writer_finish(w, &b, &n), 0);
	send_all(p->fd, b, n);
	ocapn_syrup_writer_free(w);
}

static void
rawpeer_intro(struct rawpeer *p, const char *from, const char *to)
{
	ocapn_locator *fl = loc_for(from, NULL), *tl = loc_for(to, NULL);
	ocapn_syrup_writer *w = ocapn_syrup_writer_new(0, NULL);
	ocapn__uds_write_new_connection(w, fl, tl);
	const uint8_t *b;
	size_t n;
	assert_int_equal(ocapn_syrup_writer_finish(w, &b, &n), 0);
	send_all(p->fd, b, n);
	ocapn_syrup_writer_free(w);
	ocapn_locator_free(fl);
	ocapn_locator_free(tl);
}

enum srv_case {
	S_GARBAGE,
	S_INTRO_FIRST,
	S_UPPERCASE,
	S_SHORT_CHALLENGE,
	S_WRONG_KEY,
	S_WRONG_PAYLOAD,
	S_CLAIMS_OTHER,
	S_NO_FD,
	S_PIPE_FD,
	S_SILENT,
	S_EOF
};

static void
run_hostile_server(enum srv_case sc, const char *reason)
{
	struct tmp t;
	tmp_make(&t);
	uv_loop_t loop;
	uv_loop_init(&loop);
	struct ocapn__intro_limits lim = {
	    .max_clients = 8,
	    .queue_total = 4,
	    .queue_per_target = 2,
	    .queue_ttl_ms = 60000,
	    .handshake_ms = sc == S_SILENT ? 50 : 60000,
	    .max_out = 8,
	};
	ocapn_intro_server *srv;
	assert_int_equal(ocapn__intro_server_new_ex(&loop, t.path, NULL, &lim,
			     NULL, &srv),
	    0);
	struct logbook lb = {.n = 0};
	ocapn_intro_server_set_log(srv, log_cb, &lb);
	struct rawpeer p;
	memset(&p, 0, sizeof(p));
	char other[53];
	designator_of(0x77, other);
	int pp[2] = {-1, -1};
	switch (sc) {
	case S_GARBAGE:
		p.fd = raw_connect(t.path);
		send_all(p.fd, "hello", 5);
		break;
	case S_INTRO_FIRST:
		p.fd = raw_connect(t.path);
		rawpeer_intro(&p, other, other);
		break;
	case S_UPPERCASE:
	case S_SHORT_CHALLENGE: {
		p.fd = raw_connect(t.path);
		uint8_t ch[64] = {0};
		char d[53];
		memcpy(d, other, 53);
		if (sc == S_UPPERCASE)
			d[0] = (char)(d[0] - 32 * (d[0] >= 'a'));
		ocapn_syrup_writer *w = ocapn_syrup_writer_new(0, NULL);
		ocapn__uds_write_register(w, d, ch,
		    sc == S_UPPERCASE ? 64 : 16);
		const uint8_t *b;
		size_t n;
		assert_int_equal(ocapn_syrup_writer_finish(w, &b, &n), 0);
		send_all(p.fd, b, n);
		ocapn_syrup_writer_free(w);
		break;
	}
	case S_WRONG_KEY:
	case S_WRONG_PAYLOAD:
		rawpeer_hello(&loop, t.path, &p, 0x12);
		rawpeer_answer(&p, sc == S_WRONG_KEY ? 2 : 3);
		break;
	case S_CLAIMS_OTHER:
	case S_NO_FD:
	case S_PIPE_FD: {
		rawpeer_hello(&loop, t.path, &p, 0x12);
		rawpeer_answer(&p, 1); /* the sig-val form is accepted too */
		struct regwait rw = {srv, 1};
		WAIT(&loop, registered_n, &rw);
		assert_true(log_has(&lb, "(sig-val signature)"));
		rawpeer_intro(&p, sc == S_CLAIMS_OTHER ? other : p.designator,
		    other);
		if (sc == S_NO_FD)
			send_all(p.fd, tail_le, 4);
		if (sc == S_PIPE_FD) {
			assert_int_equal(pipe(pp), 0);
			send_tail_fd(p.fd, pp[0]);
		}
		break;
	}
	case S_SILENT:
		p.fd = raw_connect(t.path);
		break;
	case S_EOF:
		rawpeer_hello(&loop, t.path, &p, 0x12);
		rawpeer_answer(&p, 0);
		struct regwait rw = {srv, 1};
		WAIT(&loop, registered_n, &rw);
		shutdown(p.fd, SHUT_WR);
		break;
	}
	if (!run_until(&loop, at_eof, &p.fd)) {
		log_dump(&lb);
		fail_msg("the server kept the client (%d)", (int)sc);
	}
	if (!log_has(&lb, reason)) {
		log_dump(&lb);
		fail_msg("no log line with '%s'", reason);
	}
	assert_int_equal(ocapn__intro_server_registered(srv), 0);
	assert_int_equal(ocapn__intro_server_queued(srv), 0);
	close(p.fd);
	if (pp[0] >= 0) {
		close(pp[0]);
		close(pp[1]);
	}
	ocapn__keypair_wipe(&p.key);
	server_close_free(&loop, srv);
	loop_finish(&loop);
	tmp_remove(&t);
}

static void
test_server_hostile_clients(void **state)
{
	(void)state;
	run_hostile_server(S_GARBAGE, "malformed control record");
	run_hostile_server(S_INTRO_FIRST, "expected uds:register first");
	run_hostile_server(S_UPPERCASE, "designator is not 52 lowercase");
	run_hostile_server(S_SHORT_CHALLENGE, "challenge is not 32 to 256");
	run_hostile_server(S_WRONG_KEY, "does not verify with the key");
	run_hostile_server(S_WRONG_PAYLOAD, "payload is not the challenge");
	run_hostile_server(S_CLAIMS_OTHER, "claiming to be");
	run_hostile_server(S_NO_FD, "not followed by a passed descriptor");
	run_hostile_server(S_PIPE_FD, "not a socket");
	run_hostile_server(S_SILENT, "registration not completed in time");
	run_hostile_server(S_EOF, "it closed the connection");
}

/* ---- 6. live: server, netlayers and runtimes on one loop ---------------- */

static int
echo_method(ocapn_vat *vat, ocapn_ref *self, const ocapn_value *args,
    ocapn_ref *resolver, void *user)
{
	(void)vat;
	(void)self;
	(void)user;
	if (resolver)
		return ocapn_resolve(resolver, args);
	return OCAPN_OK;
}

struct peer {
	ocapn_runtime *rt;
	ocapn_netlayer *nl;
	struct nlrec ev; /* only the uds events are used */
	bool closed;
};

static void
rt_event(void *user, ocapn_netlayer *nl, ocapn_uds_event ev, int status,
    const char *reason)
{
	h_on_event(user, nl, ev, status, reason);
}

static void
peer_start(uv_loop_t *loop, const char *path, uint8_t seedbyte,
    struct peer *p, bool with_echo)
{
	memset(p, 0, sizeof(*p));
	assert_int_equal(ocapn_runtime_new(loop, NULL, NULL, &p->rt), 0);
	uint8_t seed[32];
	memset(seed, seedbyte, sizeof(seed));
	assert_int_equal(ocapn_uds_netlayer_new(loop, path, seed, NULL,
			     &p->nl),
	    0);
	assert_int_equal(ocapn_uds_netlayer_set_event_cb(p->nl, rt_event,
			     &p->ev),
	    0);
	assert_int_equal(ocapn_runtime_add_netlayer(p->rt, p->nl), 0);
	if (with_echo) {
		ocapn_ref *echo;
		ocapn_vat *vat = ocapn_runtime_vat(p->rt);
		assert_int_equal(ocapn_vat_spawn(vat, echo_method, NULL, NULL,
				     &echo),
		    0);
		assert_int_equal(ocapn_vat_register(vat,
				     (const uint8_t *)"echo-swiss", 10, echo),
		    0);
		ocapn_ref_release(echo);
	}
}

static void
peer_close(uv_loop_t *loop, struct peer *p)
{
	ocapn_runtime_close(p->rt, set_flag, &p->closed);
	WAIT(loop, flag_set, &p->closed);
	ocapn_runtime_free(p->rt);
}

static char *
echo_uri(const char *designator, const char *server_key)
{
	ocapn_locator *l = loc_for(designator, server_key);
	ocapn_sturdyref *sr;
	assert_int_equal(ocapn_sturdyref_new(l, (const uint8_t *)"echo-swiss",
			     10, NULL, &sr),
	    0);
	ocapn_buffer b;
	ocapn_buffer_init(&b);
	assert_int_equal(ocapn_sturdyref_to_uri(sr, &b, NULL), 0);
	ocapn_sturdyref_free(sr);
	ocapn_locator_free(l);
	return (char *)b.data;
}

static bool
result_done(void *p)
{
	return ((struct h_result *)p)->done > 0;
}

/* Call echo on `target` with ("hi", 42) and wait for the answer. */
static void
call_echo(uv_loop_t *loop, ocapn_ref *target, struct h_result *res)
{
	ocapn_value extra[2];
	ocapn_value_set_string(&extra[0], "hi", 2);
	ocapn_value_set_int(&extra[1], 42);
	ocapn_ref *result;
	assert_int_equal(ocapn_call(target, "echo", extra, 2, &result), 0);
	h_when(result, res);
	ocapn_ref_release(result);
	WAIT(loop, result_done, res);
}

static void
assert_echoed(const struct h_result *res)
{
	if (!res->ok)
		fail_msg("echo broken: %s", res->text);
	assert_string_equal(res->text, "['echo \"hi\" 42]");
}

struct live {
	struct tmp t;
	uv_loop_t loop;
	ocapn_intro_server *srv;
	struct logbook lb;
};

static void
live_start(struct live *l, const struct ocapn__intro_limits *lim)
{
	signal(SIGPIPE, SIG_IGN);
	tmp_make(&l->t);
	uv_loop_init(&l->loop);
	assert_int_equal(ocapn__intro_server_new_ex(&l->loop, l->t.path, NULL,
			     lim, NULL, &l->srv),
	    0);
	l->lb.n = 0;
	ocapn_intro_server_set_log(l->srv, log_cb, &l->lb);
}

static void
live_end(struct live *l)
{
	if (l->srv)
		server_close_free(&l->loop, l->srv);
	loop_finish(&l->loop);
	tmp_remove(&l->t);
}

static void
test_live_echo(void **state)
{
	(void)state;
	struct live l;
	live_start(&l, NULL);
	struct peer a, b;
	peer_start(&l.loop, l.t.path, 0xa1, &a, true);
	peer_start(&l.loop, l.t.path, 0xb2, &b, false);
	WAIT(&l.loop, is_registered, &a.ev);
	WAIT(&l.loop, is_registered, &b.ev);
	ocapn_buffer uri;
	ocapn_buffer_init(&uri);
	assert_int_equal(ocapn_runtime_sturdyref_uri(a.rt, a.nl,
			     (const uint8_t *)"echo-swiss", 10, &uri),
	    0);
	char want[256];
	char ad[53];
	designator_of(0xa1, ad);
	snprintf(want, sizeof(want),
	    "ocapn://%s.unix-domain-socket/s/ZWNoby1zd2lzcw?%s=t", ad,
	    ocapn_intro_server_key(l.srv));
	assert_string_equal((const char *)uri.data, want);
	ocapn_ref *obj;
	assert_int_equal(ocapn_runtime_enliven_uri(b.rt,
			     (const char *)uri.data, uri.len, &obj),
	    0);
	struct h_result res;
	call_echo(&l.loop, obj, &res);
	assert_echoed(&res);
	h_result_clear(&res);
	/* A second call reuses the session. */
	call_echo(&l.loop, obj, &res);
	assert_echoed(&res);
	h_result_clear(&res);
	assert_true(log_has(&l.lb, "forwarded"));
	/* A peer that dials before its own registration completes: its
	 * session starts once the server has the request. */
	struct peer c;
	peer_start(&l.loop, l.t.path, 0xc3, &c, false);
	ocapn_ref *obj_c;
	assert_int_equal(ocapn_runtime_enliven_uri(c.rt,
			     (const char *)uri.data, uri.len, &obj_c),
	    0);
	assert_int_equal(c.ev.registered, 0);
	call_echo(&l.loop, obj_c, &res);
	assert_echoed(&res);
	h_result_clear(&res);
	ocapn_ref_release(obj_c);
	peer_close(&l.loop, &c);
	ocapn_ref_release(obj);
	ocapn_buffer_release(&uri, NULL);
	peer_close(&l.loop, &b);
	peer_close(&l.loop, &a);
	live_end(&l);
}

static bool
queued_one(void *p)
{
	return ocapn__intro_server_queued(p) == 1;
}

/* B asks for A before A exists: the server queues the introduction and
 * hands it over when A registers. */
static void
test_live_queued_introduction(void **state)
{
	(void)state;
	struct live l;
	live_start(&l, NULL);
	struct peer a, b;
	peer_start(&l.loop, l.t.path, 0xb2, &b, false);
	WAIT(&l.loop, is_registered, &b.ev);
	char ad[53];
	designator_of(0xa1, ad);
	char *uri = echo_uri(ad, ocapn_intro_server_key(l.srv));
	ocapn_ref *obj;
	assert_int_equal(ocapn_runtime_enliven_uri(b.rt, uri, strlen(uri),
			     &obj),
	    0);
	ocapn_value extra[2];
	ocapn_value_set_string(&extra[0], "hi", 2);
	ocapn_value_set_int(&extra[1], 42);
	ocapn_ref *result;
	assert_int_equal(ocapn_call(obj, "echo", extra, 2, &result), 0);
	struct h_result res;
	h_when(result, &res);
	ocapn_ref_release(result);
	WAIT(&l.loop, queued_one, l.srv);
	assert_true(log_has(&l.lb, "queued until it registers"));
	assert_int_equal(res.done, 0);
	peer_start(&l.loop, l.t.path, 0xa1, &a, true);
	WAIT(&l.loop, result_done, &res);
	assert_echoed(&res);
	h_result_clear(&res);
	assert_int_equal(ocapn__intro_server_queued(l.srv), 0);
	free(uri);
	ocapn_ref_release(obj);
	peer_close(&l.loop, &b);
	peer_close(&l.loop, &a);
	live_end(&l);
}

/* The server dies: established sessions go on, new connections fail,
 * both netlayers report it. */
static void
test_live_server_dies(void **state)
{
	(void)state;
	struct live l;
	live_start(&l, NULL);
	struct peer a, b;
	peer_start(&l.loop, l.t.path, 0xa1, &a, true);
	peer_start(&l.loop, l.t.path, 0xb2, &b, false);
	WAIT(&l.loop, is_registered, &a.ev);
	WAIT(&l.loop, is_registered, &b.ev);
	char ad[53];
	designator_of(0xa1, ad);
	char key[53];
	snprintf(key, sizeof(key), "%s", ocapn_intro_server_key(l.srv));
	char *uri = echo_uri(ad, key);
	ocapn_ref *obj;
	assert_int_equal(ocapn_runtime_enliven_uri(b.rt, uri, strlen(uri),
			     &obj),
	    0);
	struct h_result res;
	call_echo(&l.loop, obj, &res);
	assert_echoed(&res);
	h_result_clear(&res);

	server_close_free(&l.loop, l.srv);
	l.srv = NULL;
	WAIT(&l.loop, is_lost, &a.ev);
	WAIT(&l.loop, is_lost, &b.ev);
	assert_int_equal(b.ev.lost_status, OCAPN_E_CLOSED);
	assert_non_null(strstr(b.ev.lost_reason, "closed the connection"));
	assert_false(ocapn_uds_netlayer_registered(b.nl));
	/* the CapTP session does not need the server */
	call_echo(&l.loop, obj, &res);
	assert_echoed(&res);
	h_result_clear(&res);
	/* a new peer cannot be reached any more */
	char cd[53];
	designator_of(0xc3, cd);
	char *uri2 = echo_uri(cd, key);
	ocapn_ref *obj2 = NULL;
	int rc = ocapn_runtime_enliven_uri(b.rt, uri2, strlen(uri2), &obj2);
	if (rc == OCAPN_OK) {
		h_when(obj2, &res);
		WAIT(&l.loop, result_done, &res);
		assert_false(res.ok);
		h_result_clear(&res);
		ocapn_ref_release(obj2);
	} else {
		assert_int_equal(rc, OCAPN_E_CLOSED);
	}
	free(uri);
	free(uri2);
	ocapn_ref_release(obj);
	peer_close(&l.loop, &b);
	peer_close(&l.loop, &a);
	live_end(&l);
}

static bool
connect_failed_and_closed(void *p)
{
	struct nlrec *r = p;
	return r->connects_err > 0 && r->closes > 0 && r->lost > 0;
}

/* Connections requested before registration fail when the server goes
 * away before answering. */
static void
test_server_dies_before_registration(void **state)
{
	(void)state;
	struct live l;
	live_start(&l, NULL);
	struct nlrec r;
	ocapn_netlayer *nl = nl_new(&l.loop, l.t.path, 0xc3, NULL, &r);
	char other[53];
	designator_of(0xd4, other);
	ocapn_locator *pl = loc_for(other, NULL);
	ocapn_conn *c;
	assert_int_equal(ocapn_netlayer_connect(nl, pl, &c), OCAPN_OK);
	assert_int_equal(ocapn_netlayer_connect(nl, pl, &c), OCAPN_OK);
	/* the server never accepts our control connection */
	server_close_free(&l.loop, l.srv);
	l.srv = NULL;
	WAIT(&l.loop, connect_failed_and_closed, &r);
	while (r.closes < 2)
		uv_run(&l.loop, UV_RUN_ONCE);
	assert_int_equal(r.connects_err, 2);
	assert_int_equal(r.connects_ok, 0);
	assert_int_not_equal(r.last_connect_status, OCAPN_OK);
	assert_int_equal(r.last_connect_status, r.lost_status);
	ocapn_locator_free(pl);
	nl_stop_free(&l.loop, &r);
	live_end(&l);
}

static bool
n_server_registered_1(void *p)
{
	return ocapn__intro_server_registered(p) == 1;
}

static bool
n_server_registered_2(void *p)
{
	return ocapn__intro_server_registered(p) == 2;
}

/* B connects to A and exchanges one message. */
static void
exchange(uv_loop_t *loop, struct nlrec *b, struct nlrec *a)
{
	ocapn_conn *c;
	a->accepts = a->messages = 0;
	b->connects_ok = 0;
	assert_int_equal(ocapn_netlayer_connect(b->nl,
			     ocapn_netlayer_locator(a->nl), &c),
	    0);
	WAIT(loop, n_connected, b);
	WAIT(loop, n_accepts, a);
	ocapn_iov iov = {"<4'ping>", 8};
	assert_int_equal(ocapn_conn_send(c, &iov, 1), 0);
	WAIT(loop, n_messages, a);
	assert_memory_equal(a->msg, "<4'ping>", 8);
}

/* A peer that disconnected registers again and gets introductions (the
 * Goblins server keeps a stale entry there); a second registration of a
 * live peer replaces the first. */
static void
test_reregistration(void **state)
{
	(void)state;
	struct live l;
	live_start(&l, NULL);
	struct nlrec a, b, a2, a3;
	nl_new(&l.loop, l.t.path, 0xa1, NULL, &a);
	nl_new(&l.loop, l.t.path, 0xb2, NULL, &b);
	WAIT(&l.loop, is_registered, &a);
	WAIT(&l.loop, is_registered, &b);
	exchange(&l.loop, &b, &a);
	nl_stop_free(&l.loop, &a);
	WAIT(&l.loop, n_server_registered_1, l.srv);

	nl_new(&l.loop, l.t.path, 0xa1, NULL, &a2);
	WAIT(&l.loop, is_registered, &a2);
	WAIT(&l.loop, n_server_registered_2, l.srv);
	exchange(&l.loop, &b, &a2);

	/* The same peer registers again while still connected. */
	int a2_accepts = a2.accepts;
	nl_new(&l.loop, l.t.path, 0xa1, NULL, &a3);
	WAIT(&l.loop, is_registered, &a3);
	WAIT(&l.loop, is_lost, &a2);
	assert_true(log_has(&l.lb, "replaced by a new registration"));
	exchange(&l.loop, &b, &a3);
	assert_int_equal(a2.accepts, a2_accepts);
	nl_stop_free(&l.loop, &a2);
	nl_stop_free(&l.loop, &a3);
	nl_stop_free(&l.loop, &b);
	live_end(&l);
}

/* Connections requested before our registration completes wait for it,
 * then go out in order. */
static void
test_connect_before_registration(void **state)
{
	(void)state;
	struct live l;
	live_start(&l, NULL);
	struct nlrec a, b;
	nl_new(&l.loop, l.t.path, 0xa1, NULL, &a);
	WAIT(&l.loop, is_registered, &a);
	nl_new(&l.loop, l.t.path, 0xb2, NULL, &b);
	ocapn_conn *c1, *c2;
	assert_int_equal(ocapn_netlayer_connect(b.nl,
			     ocapn_netlayer_locator(a.nl), &c1),
	    0);
	assert_int_equal(ocapn_netlayer_connect(b.nl,
			     ocapn_netlayer_locator(a.nl), &c2),
	    0);
	assert_int_equal(b.registered, 0);
	b.want = 2;
	WAIT(&l.loop, n_connected_all, &b);
	assert_int_equal(b.registered, 1);
	a.want = 2;
	WAIT(&l.loop, n_accepts_all, &a);
	ocapn_iov iov = {"<4'ping>", 8};
	assert_int_equal(ocapn_conn_send(c2, &iov, 1), 0);
	WAIT(&l.loop, n_messages, &a);
	nl_stop_free(&l.loop, &b);
	nl_stop_free(&l.loop, &a);
	live_end(&l);
}

static bool
three_closed(void *p)
{
	return ((struct nlrec *)p)->closes >= 3;
}

static bool
one_closed(void *p)
{
	return ((struct nlrec *)p)->closes >= 1;
}

/* Queue limits and expiry: the introductions the server cannot keep end
 * the requesters' connections. */
static void
test_queue_limits(void **state)
{
	(void)state;
	struct ocapn__intro_limits lim = {
	    .max_clients = 8,
	    .queue_total = 3,
	    .queue_per_target = 2,
	    .queue_ttl_ms = 200,
	    .handshake_ms = 10000,
	    .max_out = 8,
	};
	struct live l;
	live_start(&l, &lim);
	struct nlrec b;
	nl_new(&l.loop, l.t.path, 0xb2, NULL, &b);
	WAIT(&l.loop, is_registered, &b);
	char x[53], y[53];
	designator_of(0xe1, x);
	designator_of(0xe2, y);
	ocapn_locator *lx = loc_for(x, NULL), *ly = loc_for(y, NULL);
	ocapn_conn *c;
	for (int i = 0; i < 3; i++)
		assert_int_equal(ocapn_netlayer_connect(b.nl, lx, &c), 0);
	/* two queued for x, the third dropped: its connection ends */
	WAIT(&l.loop, one_closed, &b);
	assert_true(log_has(&l.lb, "dropped: queue full"));
	assert_int_equal(ocapn__intro_server_queued(l.srv), 2);
	assert_int_equal(ocapn_netlayer_connect(b.nl, ly, &c), 0);
	struct regwait rw = {l.srv, 3};
	WAIT(&l.loop, queued_n, &rw);
	/* all expire */
	rw.n = 0;
	WAIT(&l.loop, queued_n, &rw);
	WAIT(&l.loop, three_closed, &b);
	while (b.closes < 4)
		uv_run(&l.loop, UV_RUN_ONCE);
	assert_true(log_has(&l.lb, "expired"));
	assert_int_equal(b.connects_ok, 4);
	ocapn_locator_free(lx);
	ocapn_locator_free(ly);
	nl_stop_free(&l.loop, &b);
	live_end(&l);
}

static void
test_no_server(void **state)
{
	(void)state;
	struct tmp t;
	tmp_make(&t);
	uv_loop_t loop;
	uv_loop_init(&loop);
	ocapn_netlayer *nl = NULL;
	assert_int_equal(ocapn_uds_netlayer_new(&loop, t.path, NULL, NULL,
			     &nl),
	    OCAPN_E_CONNREFUSED);
	/* a socket file nobody listens on */
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un sa;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	strcpy(sa.sun_path, t.path);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd);
	assert_int_equal(ocapn_uds_netlayer_new(&loop, t.path, NULL, NULL,
			     &nl),
	    OCAPN_E_CONNREFUSED);
	/* ...is replaced by a server; a live server's path is taken */
	ocapn_intro_server *s, *s2;
	assert_int_equal(ocapn_intro_server_new(&loop, t.path, NULL, NULL,
			     &s),
	    0);
	assert_int_equal(ocapn_intro_server_new(&loop, t.path, NULL, NULL,
			     &s2),
	    OCAPN_E_EXISTS);
	/* the same seed gives the same key */
	uint8_t seed[32] = {1};
	char other[200];
	snprintf(other, sizeof(other), "%s/second.sock", t.dir);
	assert_int_equal(ocapn_intro_server_new(&loop, other, seed, NULL,
			     &s2),
	    0);
	char k1[53];
	snprintf(k1, sizeof(k1), "%s", ocapn_intro_server_key(s2));
	server_close_free(&loop, s2);
	assert_int_equal(ocapn_intro_server_new(&loop, other, seed, NULL,
			     &s2),
	    0);
	assert_string_equal(k1, ocapn_intro_server_key(s2));
	server_close_free(&loop, s2);
	char longp[200];
	memset(longp, 'x', sizeof(longp));
	longp[0] = '/';
	longp[199] = '\0';
	assert_int_equal(ocapn_uds_netlayer_new(&loop, longp, NULL, NULL,
			     &nl),
	    OCAPN_E_INVAL);
	assert_int_equal(ocapn_intro_server_new(&loop, longp, NULL, NULL,
			     &s2),
	    OCAPN_E_INVAL);
	/* the event API refuses other netlayers */
	ocapn_netlayer *tcp;
	assert_int_equal(ocapn_tcp_netlayer_new(&loop, NULL, 0, NULL, NULL,
			     &tcp),
	    0);
	assert_int_equal(ocapn_uds_netlayer_set_event_cb(tcp, NULL, NULL),
	    OCAPN_E_INVAL);
	assert_false(ocapn_uds_netlayer_registered(tcp));
	struct nlrec tr;
	memset(&tr, 0, sizeof(tr));
	ocapn_netlayer_handler h = {.on_stopped = h_on_stopped, .user = &tr};
	ocapn_netlayer_set_handler(tcp, &h);
	ocapn_netlayer_stop(tcp);
	WAIT(&loop, is_stopped, &tr);
	ocapn_netlayer_free(tcp);
	server_close_free(&loop, s);
	loop_finish(&loop);
	tmp_remove(&t);
}

/* ---- 7. the CLI -------------------------------------------------------- */

#ifdef OCAPN_CLI
static void
test_cli_intro_server(void **state)
{
	(void)state;
	struct tmp t;
	tmp_make(&t);
	int out[2];
	assert_int_equal(pipe(out), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(out[1], 1);
		close(out[0]);
		close(out[1]);
		execl(OCAPN_CLI, OCAPN_CLI, "intro-server", "--quiet", t.path,
		    (char *)NULL);
		_exit(127);
	}
	close(out[1]);
	FILE *f = fdopen(out[0], "r");
	char l1[128], l2[128];
	assert_non_null(fgets(l1, sizeof(l1), f));
	assert_non_null(fgets(l2, sizeof(l2), f));
	assert_int_equal(strlen(l1), 4 + 52 + 1);
	assert_memory_equal(l1, "KEY ", 4);
	char key[53];
	memcpy(key, l1 + 4, 52);
	key[52] = '\0';
	assert_true(ocapn__uds_designator_ok(key, 52, NULL));
	char hint[80];
	snprintf(hint, sizeof(hint), "HINT %s=t\n", key);
	assert_string_equal(l2, hint);
	/* A netlayer registers with it and publishes that hint. */
	uv_loop_t loop;
	uv_loop_init(&loop);
	struct nlrec r;
	nl_new(&loop, t.path, 0x31, NULL, &r);
	WAIT(&loop, is_registered, &r);
	size_t vl;
	assert_non_null(ocapn_locator_hint(ocapn_netlayer_locator(r.nl), key,
	    &vl));
	assert_int_equal(kill(pid, SIGTERM), 0);
	WAIT(&loop, is_lost, &r);
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	struct stat sb;
	assert_int_not_equal(stat(t.path, &sb), 0); /* socket removed */
	nl_stop_free(&loop, &r);
	fclose(f);
	loop_finish(&loop);
	tmp_remove(&t);
}
#endif

int
main(void)
{
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_designators),
	    cmocka_unit_test(test_capture_records),
	    cmocka_unit_test(test_record_parser_refuses),
	    cmocka_unit_test(test_server_replays_captures),
	    cmocka_unit_test(test_client_replays_capture),
	    cmocka_unit_test(test_client_hostile_server),
	    cmocka_unit_test(test_client_accepts_draft_response),
	    cmocka_unit_test(test_client_refuses_bad_descriptors),
	    cmocka_unit_test(test_client_control_backpressure),
	    cmocka_unit_test(test_server_hostile_clients),
	    cmocka_unit_test(test_live_echo),
	    cmocka_unit_test(test_live_queued_introduction),
	    cmocka_unit_test(test_live_server_dies),
	    cmocka_unit_test(test_server_dies_before_registration),
	    cmocka_unit_test(test_connect_before_registration),
	    cmocka_unit_test(test_reregistration),
	    cmocka_unit_test(test_queue_limits),
	    cmocka_unit_test(test_no_server),
#ifdef OCAPN_CLI
	    cmocka_unit_test(test_cli_intro_server),
#endif
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
