/*
 * Shared machinery of the netlayer benchmarks: see netbench.h.
 */
#define _GNU_SOURCE
#include "netbench.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include "../tools/ocapn/suite_objects.h"
#include "bench_stats.h"

#define ECHO_SWISS "bench-echo-0123456789abcdef"
#define BUILDER_SWISS "JadQ0++RzsD4M+40uLxTWVaVqM10DcBJ"
#define DEADLINE_NS (120ull * 1000000000ull)

static void fail(const char *why) __attribute__((noreturn));
static void report(int fd, const char *text);

static void
fail(const char *why)
{
	fprintf(stderr, "netbench: %s\n", why);
	exit(1);
}

/* ---- netlayers under test ------------------------------------------- */

static int
make_tcp(uv_loop_t *loop, const char *dir, const char *name,
    ocapn_netlayer **out)
{
	(void)dir;
	(void)name;
	return ocapn_tcp_netlayer_new(loop, "127.0.0.1", 0, NULL, NULL, out);
}

static int
make_testuds(uv_loop_t *loop, const char *dir, const char *name,
    ocapn_netlayer **out)
{
	return ocapn_testuds_netlayer_new(loop, dir, name, NULL, out);
}

/* unix-domain-socket: an introduction server of our own in a process of
 * its own, at DIR/intro.sock; a netlayer is reachable once registered. */
static void
intro_server_child(const void *arg, int rfd)
{
	const char *dir = arg;
	char path[300];
	uv_loop_t loop;
	ocapn_intro_server *srv;
	snprintf(path, sizeof(path), "%s/intro.sock", dir);
	if (uv_loop_init(&loop) ||
	    ocapn_intro_server_new(&loop, path, NULL, NULL, &srv))
		_exit(1);
	report(rfd, "READY\n");
	close(rfd);
	uv_run(&loop, UV_RUN_DEFAULT);
	_exit(0);
}

static int
setup_uds(const char *dir)
{
	char buf[64];
	if (nb_spawn(intro_server_child, dir, buf, sizeof(buf)) <= 0 ||
	    strcmp(buf, "READY\n"))
		return -1;
	return 0;
}

static int
make_uds(uv_loop_t *loop, const char *dir, const char *name,
    ocapn_netlayer **out)
{
	(void)name;
	char path[300];
	snprintf(path, sizeof(path), "%s/intro.sock", dir);
	return ocapn_uds_netlayer_new(loop, path, NULL, NULL, out);
}

static int
wait_uds(uv_loop_t *loop, ocapn_netlayer *nl)
{
	uint64_t deadline = uv_hrtime() + 10000000000ull;
	while (!ocapn_uds_netlayer_registered(nl)) {
		if (uv_hrtime() > deadline)
			return -1;
		uv_run(loop, UV_RUN_ONCE);
	}
	return 0;
}

#ifdef __linux__
/* shm: rendezvous sockets in DIR; each process its own key.  The shared
 * buffer is the default (docs/shm.md); bench_shm_captp measures sized
 * buffers.  NB_SHM_SPIN=NS in the environment sets the busy-poll budget
 * (ocapn_shm_netlayer_set_spin) of every process. */
static int
make_shm(uv_loop_t *loop, const char *dir, const char *name,
    ocapn_netlayer **out)
{
	(void)name;
	int rc = ocapn_shm_netlayer_new(loop, dir, NULL, NULL, out);
	const char *spin = getenv("NB_SHM_SPIN");
	if (!rc && spin)
		rc = ocapn_shm_netlayer_set_spin(*out,
		    strtoull(spin, NULL, 10));
	return rc;
}
#endif

const struct nb_netlayer nb_netlayers[] = {
    {"tcp-testing-only", NB_TCP, make_tcp, NULL, NULL},
    {"testuds", NB_UNIX, make_testuds, NULL, NULL},
    {"unix-domain-socket", NB_UNIX, make_uds, setup_uds, wait_uds},
#ifdef __linux__
    {"shm", NB_UNIX, make_shm, NULL, NULL},
#endif
};
const size_t nb_nnetlayers = sizeof(nb_netlayers) / sizeof(nb_netlayers[0]);

const struct nb_netlayer *
nb_find_netlayer(const char *transport)
{
	for (size_t i = 0; i < nb_nnetlayers; i++)
		if (!strcmp(nb_netlayers[i].transport, transport))
			return &nb_netlayers[i];
	return NULL;
}

/* ---- processes and the temporary directory ---------------------------- */

#define MAX_PROCS 16
static pid_t procs[MAX_PROCS];
static size_t nprocs;
static char tmpdir[128];
static pid_t owner; /* the process that made tmpdir and the children */

static void
cleanup(void)
{
	if (getpid() != owner)
		return;
	for (size_t i = 0; i < nprocs; i++)
		if (procs[i] > 0) {
			kill(procs[i], SIGTERM);
			waitpid(procs[i], NULL, 0);
			procs[i] = 0;
		}
	if (tmpdir[0]) {
		DIR *d = opendir(tmpdir);
		struct dirent *e;
		char path[400];
		while (d && (e = readdir(d))) {
			if (e->d_name[0] == '.')
				continue;
			snprintf(path, sizeof(path), "%s/%s", tmpdir,
			    e->d_name);
			unlink(path);
		}
		if (d)
			closedir(d);
		rmdir(tmpdir);
		tmpdir[0] = '\0';
	}
}

static void
on_fatal_signal(int sig)
{
	cleanup();
	signal(sig, SIG_DFL);
	raise(sig);
}

const char *
nb_tmpdir(void)
{
	if (tmpdir[0])
		return tmpdir;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/ocapn-bench-XXXXXX");
	if (!mkdtemp(tmpdir)) {
		tmpdir[0] = '\0';
		return tmpdir;
	}
	owner = getpid();
	atexit(cleanup);
	signal(SIGINT, on_fatal_signal);
	signal(SIGTERM, on_fatal_signal);
	signal(SIGPIPE, SIG_IGN);
	return tmpdir;
}

int
nb_spawn(void (*fn)(const void *arg, int report), const void *arg,
    char *buf, size_t cap)
{
	if (!nb_tmpdir()[0] || nprocs == MAX_PROCS)
		return -1;
	int fds[2];
	if (pipe(fds))
		return -1;
	fflush(stdout);
	fflush(stderr);
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		close(fds[0]);
		nprocs = 0;
#ifdef __linux__
		prctl(PR_SET_PDEATHSIG, SIGTERM);
#endif
		signal(SIGINT, SIG_IGN);
		signal(SIGTERM, SIG_DFL);
		fn(arg, fds[1]);
		_exit(1);
	}
	close(fds[1]);
	procs[nprocs++] = pid;
	size_t len = 0;
	for (;;) {
		ssize_t k = read(fds[0], buf + len, cap - 1 - len);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			break;
		len += (size_t)k;
		if (len == cap - 1)
			break;
	}
	buf[len] = '\0';
	close(fds[0]);
	return (int)pid;
}

void
nb_stop(struct nb_proc *p)
{
	if (p->pid <= 0)
		return;
	kill(p->pid, SIGTERM);
	waitpid(p->pid, NULL, 0);
	for (size_t i = 0; i < nprocs; i++)
		if (procs[i] == p->pid)
			procs[i] = 0;
	p->pid = 0;
}

static void
report(int fd, const char *text)
{
	size_t n = strlen(text), off = 0;
	while (off < n) {
		ssize_t k = write(fd, text + off, n - off);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return;
		off += (size_t)k;
	}
}

/* ---- libocapn server -------------------------------------------------- */

static int
echo_method(ocapn_vat *vat, ocapn_ref *self, const ocapn_value *args,
    ocapn_ref *resolver, void *user)
{
	(void)vat;
	(void)self;
	(void)user;
	if (!resolver)
		return OCAPN_OK;
	if (args->len == 1)
		return ocapn_resolve(resolver, &args->u.items[0]);
	return ocapn_resolve(resolver, args);
}

struct server {
	ocapn_runtime *rt;
	uv_signal_t sigterm;
};

static void
server_closed(void *user)
{
	(void)user;
}

static void
server_signal(uv_signal_t *h, int signum)
{
	struct server *sv = h->data;
	(void)signum;
	uv_close((uv_handle_t *)&sv->sigterm, NULL);
	ocapn_runtime_close(sv->rt, server_closed, sv);
}

static int
register_obj(ocapn_vat *vat, const char *swiss, ocapn_ref *obj)
{
	int rc = ocapn_vat_register(vat, (const uint8_t *)swiss,
	    strlen(swiss), obj);
	ocapn_ref_release(obj);
	return rc;
}

static void
ocapn_server_child(const void *arg, int rfd)
{
	const struct nb_netlayer *nl = arg;
	struct server sv;
	ocapn_netlayer *n;
	ocapn_ref *echo, *builder;
	signal(SIGPIPE, SIG_IGN);
	if (ocapn_runtime_new(NULL, NULL, NULL, &sv.rt))
		_exit(1);
	uv_loop_t *loop = ocapn_runtime_loop(sv.rt);
	ocapn_vat *vat = ocapn_runtime_vat(sv.rt);
	if (nl->make(loop, tmpdir, "server", &n) ||
	    ocapn_runtime_add_netlayer(sv.rt, n) ||
	    (nl->wait_ready && nl->wait_ready(loop, n)) ||
	    ocapn_vat_spawn(vat, echo_method, NULL, NULL, &echo) ||
	    register_obj(vat, ECHO_SWISS, echo) ||
	    suite_car_factory_builder(vat, &builder) ||
	    register_obj(vat, BUILDER_SWISS, builder))
		_exit(1);
	ocapn_buffer u1, u2;
	ocapn_buffer_init(&u1);
	ocapn_buffer_init(&u2);
	if (ocapn_runtime_sturdyref_uri(sv.rt, n, (const uint8_t *)ECHO_SWISS,
		strlen(ECHO_SWISS), &u1) ||
	    ocapn_runtime_sturdyref_uri(sv.rt, n,
		(const uint8_t *)BUILDER_SWISS, strlen(BUILDER_SWISS), &u2))
		_exit(1);
	char line[1200];
	snprintf(line, sizeof(line), "ECHO %s\nBUILDER %s\n",
	    (const char *)u1.data, (const char *)u2.data);
	ocapn_buffer_release(&u1, NULL);
	ocapn_buffer_release(&u2, NULL);
	uv_signal_init(loop, &sv.sigterm);
	sv.sigterm.data = &sv;
	uv_signal_start(&sv.sigterm, server_signal, SIGTERM);
	report(rfd, line);
	close(rfd);
	ocapn_runtime_run(sv.rt);
	ocapn_runtime_free(sv.rt);
	_exit(0);
}

int
nb_start_ocapn_server(const struct nb_netlayer *nl, struct nb_proc *out)
{
	static bool set_up[8];
	size_t idx = (size_t)(nl - nb_netlayers);
	char buf[1400];
	memset(out, 0, sizeof(*out));
	if (nl->setup && idx < 8 && !set_up[idx]) {
		if (!nb_tmpdir()[0] || nl->setup(nb_tmpdir())) {
			fprintf(stderr, "netbench: %s: set-up failed\n",
			    nl->transport);
			return -1;
		}
		set_up[idx] = true;
	}
	int pid = nb_spawn(ocapn_server_child, nl, buf, sizeof(buf));
	if (pid <= 0)
		return -1;
	out->pid = pid;
	out->family = nl->family;
	if (sscanf(buf, "ECHO %511s\nBUILDER %511s", out->echo_uri,
		out->builder_uri) != 2) {
		fprintf(stderr, "netbench: the %s server did not start\n",
		    nl->transport);
		return -1;
	}
	return 0;
}

/* ---- bare responders ------------------------------------------------ */

static uint32_t
le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	    (uint32_t)p[3] << 24;
}

static void
put_le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static int
write_full(int fd, const uint8_t *p, size_t n)
{
	while (n) {
		ssize_t k = write(fd, p, n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return -1;
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

/* Buffered frame reader: as few read() calls as the kernel allows. */
struct rdbuf {
	uint8_t *b;
	size_t off, len, cap;
};

/* The next whole frame (header included), valid until the next call.
 * 1, 0 at end of stream, -1 on error. */
static int
next_frame(int fd, struct rdbuf *r, const uint8_t **f, size_t *flen)
{
	for (;;) {
		size_t avail = r->len - r->off, need = 4;
		if (avail >= 4) {
			need = 4 + (size_t)le32(r->b + r->off);
			if (avail >= need) {
				*f = r->b + r->off;
				*flen = need;
				r->off += need;
				return 1;
			}
		}
		if (r->off) {
			memmove(r->b, r->b + r->off, avail);
			r->off = 0;
			r->len = avail;
		}
		if (r->cap < need || r->cap == 0) {
			size_t cap = r->cap ? r->cap : 65536;
			while (cap < need)
				cap *= 2;
			uint8_t *nb = realloc(r->b, cap);
			if (!nb)
				return -1;
			r->b = nb;
			r->cap = cap;
		}
		ssize_t k = read(fd, r->b + r->len, r->cap - r->len);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return -1;
		if (k == 0)
			return 0;
		r->len += (size_t)k;
	}
}

static int
listen_socket(enum nb_family f, const char *path, unsigned *port)
{
	int fd;
	if (f == NB_UNIX) {
		struct sockaddr_un sa;
		memset(&sa, 0, sizeof(sa));
		sa.sun_family = AF_UNIX;
		if (strlen(path) >= sizeof(sa.sun_path))
			return -1;
		memcpy(sa.sun_path, path, strlen(path) + 1);
		fd = socket(AF_UNIX, SOCK_STREAM, 0);
		if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)))
			return -1;
	} else {
		struct sockaddr_in sa;
		socklen_t sl = sizeof(sa);
		memset(&sa, 0, sizeof(sa));
		sa.sin_family = AF_INET;
		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		fd = socket(AF_INET, SOCK_STREAM, 0);
		int one = 1;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) ||
		    getsockname(fd, (struct sockaddr *)&sa, &sl))
			return -1;
		*port = ntohs(sa.sin_port);
	}
	if (listen(fd, 16))
		return -1;
	return fd;
}

static void
nodelay(int fd, enum nb_family f)
{
	int one = 1;
	if (f == NB_TCP)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

struct bare_arg {
	enum nb_family f;
	bool uv;
	char path[200];
};

static void
report_listening(int rfd, const struct bare_arg *a, unsigned port)
{
	char line[300];
	snprintf(line, sizeof(line), "LISTEN %u %s\n", port, a->path);
	report(rfd, line);
	close(rfd);
}

static void
bare_blocking_child(const struct bare_arg *a, int rfd)
{
	unsigned port = 0;
	int lfd = listen_socket(a->f, a->path, &port);
	if (lfd < 0)
		_exit(1);
	report_listening(rfd, a, port);
	struct rdbuf r = {0};
	for (;;) {
		int fd = accept(lfd, NULL, NULL);
		if (fd < 0)
			continue;
		nodelay(fd, a->f);
		const uint8_t *f;
		size_t n;
		r.off = r.len = 0;
		while (next_frame(fd, &r, &f, &n) == 1)
			if (write_full(fd, f, n))
				break;
		close(fd);
	}
}

/* libuv responder: one read buffer per connection, frames parsed in
 * place, each echoed with uv_try_write (the rest copied into a write
 * request), exactly the work a minimal libuv server does. */
struct uvconn {
	union {
		uv_handle_t h;
		uv_stream_t s;
		uv_tcp_t tcp;
		uv_pipe_t pipe;
	} h;
	uint8_t *buf;
	size_t len, cap;
	unsigned nwrites;
};

struct uvwrite {
	uv_write_t req;
	struct uvconn *c;
	uint8_t data[];
};

static enum nb_family uv_family;

static void
uvconn_closed(uv_handle_t *h)
{
	struct uvconn *c = h->data;
	free(c->buf);
	free(c);
}

static void
uv_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
	struct uvconn *c = h->data;
	(void)suggested;
	if (c->cap - c->len < 65536) {
		size_t cap = c->cap ? c->cap * 2 : 131072;
		while (cap - c->len < 65536)
			cap *= 2;
		uint8_t *nb = realloc(c->buf, cap);
		if (!nb)
			abort();
		c->buf = nb;
		c->cap = cap;
	}
	b->base = (char *)c->buf + c->len;
	b->len = c->cap - c->len;
}

static void
uv_written(uv_write_t *req, int status)
{
	struct uvwrite *w = (struct uvwrite *)req;
	(void)status;
	w->c->nwrites--;
	free(w);
}

static void
uv_echo_frame(struct uvconn *c, const uint8_t *p, size_t n)
{
	size_t done = 0;
	if (c->nwrites == 0) {
		uv_buf_t b = uv_buf_init((char *)p, (unsigned)n);
		int k = uv_try_write(&c->h.s, &b, 1);
		if (k > 0)
			done = (size_t)k;
	}
	if (done == n)
		return;
	struct uvwrite *w = malloc(sizeof(*w) + n - done);
	if (!w)
		abort();
	memcpy(w->data, p + done, n - done);
	w->c = c;
	uv_buf_t b = uv_buf_init((char *)w->data, (unsigned)(n - done));
	if (uv_write(&w->req, &c->h.s, &b, 1, uv_written)) {
		free(w);
		return;
	}
	c->nwrites++;
}

static void
uv_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
	struct uvconn *c = s->data;
	(void)b;
	if (nread < 0) {
		uv_close(&c->h.h, uvconn_closed);
		return;
	}
	c->len += (size_t)nread;
	size_t off = 0;
	while (c->len - off >= 4) {
		size_t need = 4 + (size_t)le32(c->buf + off);
		if (c->len - off < need)
			break;
		uv_echo_frame(c, c->buf + off, need);
		off += need;
	}
	if (off) {
		memmove(c->buf, c->buf + off, c->len - off);
		c->len -= off;
	}
}

static void
uv_connection(uv_stream_t *server, int status)
{
	if (status < 0)
		return;
	struct uvconn *c = calloc(1, sizeof(*c));
	if (!c)
		abort();
	if (uv_family == NB_TCP)
		uv_tcp_init(server->loop, &c->h.tcp);
	else
		uv_pipe_init(server->loop, &c->h.pipe, 0);
	c->h.h.data = c;
	if (uv_accept(server, &c->h.s)) {
		uv_close(&c->h.h, uvconn_closed);
		return;
	}
	if (uv_family == NB_TCP)
		uv_tcp_nodelay(&c->h.tcp, 1);
	uv_read_start(&c->h.s, uv_alloc, uv_read);
}

static void
bare_uv_child(const struct bare_arg *a, int rfd)
{
	uv_loop_t *loop = uv_default_loop();
	union {
		uv_handle_t h;
		uv_stream_t s;
		uv_tcp_t tcp;
		uv_pipe_t pipe;
	} l;
	unsigned port = 0;
	uv_family = a->f;
	if (a->f == NB_TCP) {
		struct sockaddr_in sa;
		int sl = sizeof(sa);
		uv_ip4_addr("127.0.0.1", 0, &sa);
		uv_tcp_init(loop, &l.tcp);
		if (uv_tcp_bind(&l.tcp, (struct sockaddr *)&sa, 0) ||
		    uv_tcp_getsockname(&l.tcp, (struct sockaddr *)&sa, &sl))
			_exit(1);
		port = ntohs(sa.sin_port);
	} else {
		uv_pipe_init(loop, &l.pipe, 0);
		if (uv_pipe_bind(&l.pipe, a->path))
			_exit(1);
	}
	if (uv_listen(&l.s, 16, uv_connection))
		_exit(1);
	report_listening(rfd, a, port);
	uv_run(loop, UV_RUN_DEFAULT);
	_exit(0);
}

static void
bare_child(const void *arg, int rfd)
{
	const struct bare_arg *a = arg;
	signal(SIGPIPE, SIG_IGN);
	if (a->uv)
		bare_uv_child(a, rfd);
	else
		bare_blocking_child(a, rfd);
	_exit(0);
}

int
nb_start_bare_server(enum nb_family f, bool uv, struct nb_proc *out)
{
	static unsigned seq;
	struct bare_arg a;
	char buf[400];
	memset(out, 0, sizeof(*out));
	memset(&a, 0, sizeof(a));
	a.f = f;
	a.uv = uv;
	if (f == NB_UNIX)
		snprintf(a.path, sizeof(a.path), "%s/bare-%u.sock",
		    nb_tmpdir(), seq++);
	int pid = nb_spawn(bare_child, &a, buf, sizeof(buf));
	if (pid <= 0)
		return -1;
	out->pid = pid;
	out->family = f;
	if (sscanf(buf, "LISTEN %u", &out->port) != 1) {
		fprintf(stderr, "netbench: a bare responder did not start\n");
		return -1;
	}
	snprintf(out->path, sizeof(out->path), "%s", a.path);
	return 0;
}

/* ---- bare client ---------------------------------------------------- */

int
nb_bare_connect(const struct nb_proc *s)
{
	int fd;
	if (s->family == NB_UNIX) {
		struct sockaddr_un sa;
		memset(&sa, 0, sizeof(sa));
		sa.sun_family = AF_UNIX;
		if (strlen(s->path) >= sizeof(sa.sun_path))
			return -1;
		memcpy(sa.sun_path, s->path, strlen(s->path) + 1);
		fd = socket(AF_UNIX, SOCK_STREAM, 0);
		if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)))
			return -1;
	} else {
		struct sockaddr_in sa;
		memset(&sa, 0, sizeof(sa));
		sa.sin_family = AF_INET;
		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		sa.sin_port = htons((uint16_t)s->port);
		fd = socket(AF_INET, SOCK_STREAM, 0);
		if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)))
			return -1;
	}
	nodelay(fd, s->family);
	return fd;
}

double
nb_bare_echo(int fd, size_t payload, size_t window, size_t n)
{
	static uint8_t *frame;
	static size_t framecap;
	static struct rdbuf r;
	if (framecap < 4 + payload) {
		free(frame);
		frame = malloc(4 + payload);
		if (!frame)
			fail("out of memory");
		framecap = 4 + payload;
	}
	put_le32(frame, (uint32_t)payload);
	for (size_t i = 0; i < payload; i++)
		frame[4 + i] = (uint8_t)i;
	r.off = r.len = 0;
	if (window < 1)
		window = 1;
	size_t sent = 0, got = 0;
	uint64_t t0 = bench_now_ns();
	while (sent < window && sent < n) {
		if (write_full(fd, frame, 4 + payload))
			fail("bare write failed");
		sent++;
	}
	while (got < n) {
		const uint8_t *f;
		size_t len;
		if (next_frame(fd, &r, &f, &len) != 1 || len != 4 + payload)
			fail("bare read failed");
		got++;
		if (sent < n) {
			if (write_full(fd, frame, 4 + payload))
				fail("bare write failed");
			sent++;
		}
	}
	return (double)(bench_now_ns() - t0);
}

/* ---- libocapn client ------------------------------------------------ */

struct nb_client {
	ocapn_runtime *rt;
	uv_loop_t *loop;
	uv_timer_t watchdog;
	uint64_t deadline;
	uint8_t *payload;
	size_t paycap;
};

struct nb_target {
	ocapn_ref *echo, *builder;
};

static void
watchdog(uv_timer_t *t)
{
	nb_client *c = t->data;
	if (c->deadline && bench_now_ns() > c->deadline)
		fail("no progress for 120 s: is a server dead?");
}

/* Set a completion flag from a callback: uv_stop() keeps the loop from
 * blocking for input in the iteration that is running. */
static void
finish(nb_client *c, bool *flag)
{
	*flag = true;
	uv_stop(c->loop);
}

/* Run the loop until `*flag` is set.  UV_RUN_DEFAULT, as an application
 * runs its loop: with UV_RUN_ONCE libuv polls once more without blocking
 * after every iteration in which the runtime had work, which would add a
 * system call per round trip that applications do not pay. */
static void
wait_for(nb_client *c, const bool *flag)
{
	c->deadline = bench_now_ns() + DEADLINE_NS;
	while (!*flag)
		uv_run(c->loop, UV_RUN_DEFAULT);
	c->deadline = 0;
}

nb_client *
nb_client_new(const struct nb_netlayer *const *nls, size_t nnl)
{
	nb_client *c = calloc(1, sizeof(*c));
	if (!c || ocapn_runtime_new(NULL, NULL, NULL, &c->rt)) {
		fprintf(stderr, "netbench: cannot create the client runtime\n");
		free(c);
		return NULL;
	}
	c->loop = ocapn_runtime_loop(c->rt);
	char name[40];
	snprintf(name, sizeof(name), "client-%ld", (long)getpid());
	for (size_t i = 0; i < nnl; i++) {
		ocapn_netlayer *nl;
		int rc = nls[i]->make(c->loop, nb_tmpdir(), name, &nl);
		if (!rc)
			rc = ocapn_runtime_add_netlayer(c->rt, nl);
		if (rc) {
			fprintf(stderr, "netbench: client netlayer %s: %s\n",
			    nls[i]->transport, ocapn_strerror(rc));
			ocapn_runtime_free(c->rt);
			free(c);
			return NULL;
		}
	}
	uv_timer_init(c->loop, &c->watchdog);
	c->watchdog.data = c;
	uv_timer_start(&c->watchdog, watchdog, 1000, 1000);
	uv_unref((uv_handle_t *)&c->watchdog);
	return c;
}

struct settle {
	nb_client *c;
	bool done, ok;
	ocapn_ref *ref;
};

static void
settle_cb(ocapn_vat *vat, bool ok, const ocapn_value *v, void *user)
{
	struct settle *s = user;
	(void)vat;
	s->ok = ok && v->kind == OCAPN_REF;
	if (s->ok)
		s->ref = ocapn_ref_retain(v->u.ref);
	finish(s->c, &s->done);
}

static ocapn_ref *
enliven(nb_client *c, const char *uri)
{
	ocapn_ref *p;
	struct settle s = {0};
	s.c = c;
	int rc = ocapn_runtime_enliven_uri(c->rt, uri, strlen(uri), &p);
	if (rc || ocapn_when(p, settle_cb, &s)) {
		fprintf(stderr, "netbench: cannot enliven %s\n", uri);
		return NULL;
	}
	wait_for(c, &s.done);
	ocapn_ref_release(p);
	if (!s.ok)
		fprintf(stderr, "netbench: %s did not answer\n", uri);
	return s.ref;
}

nb_target *
nb_client_connect(nb_client *c, const struct nb_proc *server)
{
	nb_target *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->echo = enliven(c, server->echo_uri);
	t->builder = t->echo ? enliven(c, server->builder_uri) : NULL;
	if (!t->builder) {
		ocapn_ref_release(t->echo);
		free(t);
		return NULL;
	}
	return t;
}

void
nb_target_free(nb_target *t)
{
	if (!t)
		return;
	ocapn_ref_release(t->echo);
	ocapn_ref_release(t->builder);
	free(t);
}

static void
close_done(void *user)
{
	*(bool *)user = true;
}

void
nb_client_free(nb_client *c)
{
	if (!c)
		return;
	bool closed = false;
	uv_close((uv_handle_t *)&c->watchdog, NULL);
	ocapn_runtime_close(c->rt, close_done, &closed);
	while (!closed && uv_run(c->loop, UV_RUN_DEFAULT))
		;
	ocapn_runtime_free(c->rt);
	free(c->payload);
	free(c);
}

/* -- echo -- */

struct echo_run;

struct echo_slot {
	struct echo_run *run;
	ocapn_ref *p;
};

struct echo_run {
	nb_client *c;
	nb_target *t;
	size_t payload, n, issued, done;
	bool finished;
	ocapn_value item, args;
	struct echo_slot *slots;
};

static void echo_settled(ocapn_vat *vat, bool ok, const ocapn_value *v,
    void *user);

static void
echo_issue(struct echo_slot *s)
{
	struct echo_run *r = s->run;
	if (ocapn_send(r->t->echo, &r->args, &s->p) ||
	    ocapn_when(s->p, echo_settled, s))
		fail("cannot send");
	r->issued++;
}

static void
echo_settled(ocapn_vat *vat, bool ok, const ocapn_value *v, void *user)
{
	struct echo_slot *s = user;
	struct echo_run *r = s->run;
	(void)vat;
	if (!ok || v->kind != OCAPN_BYTES || v->len != r->payload)
		fail("wrong echo answer");
	ocapn_ref_release(s->p);
	s->p = NULL;
	r->done++;
	if (r->issued < r->n)
		echo_issue(s);
	else if (r->done == r->n)
		finish(r->c, &r->finished);
}

double
nb_echo(nb_client *c, nb_target *t, size_t payload, size_t window, size_t n)
{
	if (c->paycap < payload || !c->payload) {
		free(c->payload);
		c->payload = malloc(payload ? payload : 1);
		if (!c->payload)
			fail("out of memory");
		c->paycap = payload;
		for (size_t i = 0; i < payload; i++)
			c->payload[i] = (uint8_t)i;
	}
	if (window < 1)
		window = 1;
	if (window > n)
		window = n;
	struct echo_run r;
	memset(&r, 0, sizeof(r));
	r.c = c;
	r.t = t;
	r.payload = payload;
	r.n = n;
	ocapn_value_set_bytes(&r.item, c->payload, payload);
	ocapn_value_set_list(&r.args, &r.item, 1);
	r.slots = calloc(window, sizeof(*r.slots));
	if (!r.slots)
		fail("out of memory");
	uint64_t t0 = bench_now_ns();
	for (size_t i = 0; i < window; i++) {
		r.slots[i].run = &r;
		echo_issue(&r.slots[i]);
	}
	wait_for(c, &r.finished);
	uint64_t t1 = bench_now_ns();
	free(r.slots);
	return (double)(t1 - t0);
}

/* -- chains -- */

struct chain_run {
	nb_client *c;
	nb_target *t;
	bool pipelined, finished;
	size_t n, done;
	ocapn_ref *p[3];
	int step;
	ocapn_value none, spec[2], specl, args;
};

static void chain_settled(ocapn_vat *vat, bool ok, const ocapn_value *v,
    void *user);

static void
chain_send(struct chain_run *r, int i)
{
	ocapn_ref *to = i == 0 ? r->t->builder : r->p[i - 1];
	const ocapn_value *a = i == 1 ? &r->args : &r->none;
	if (ocapn_send(to, a, &r->p[i]))
		fail("cannot send");
}

static void
chain_start(struct chain_run *r)
{
	if (r->pipelined) {
		chain_send(r, 0);
		chain_send(r, 1);
		chain_send(r, 2);
		r->step = 2;
	} else {
		chain_send(r, 0);
		r->step = 0;
	}
	if (ocapn_when(r->p[r->step], chain_settled, r))
		fail("cannot listen");
}

static void
chain_settled(ocapn_vat *vat, bool ok, const ocapn_value *v, void *user)
{
	struct chain_run *r = user;
	(void)vat;
	if (!ok)
		fail("a chain broke");
	if (r->step < 2) {
		r->step++;
		chain_send(r, r->step);
		if (ocapn_when(r->p[r->step], chain_settled, r))
			fail("cannot listen");
		return;
	}
	if (v->kind != OCAPN_STRING)
		fail("the car did not answer with a string");
	for (int i = 0; i < 3; i++) {
		ocapn_ref_release(r->p[i]);
		r->p[i] = NULL;
	}
	if (++r->done == r->n)
		finish(r->c, &r->finished);
	else
		chain_start(r);
}

double
nb_chain(nb_client *c, nb_target *t, bool pipelined, size_t n)
{
	struct chain_run r;
	memset(&r, 0, sizeof(r));
	r.c = c;
	r.t = t;
	r.pipelined = pipelined;
	r.n = n ? n : 1;
	ocapn_value_set_list(&r.none, NULL, 0);
	ocapn_value_set_symbol(&r.spec[0], "red", 3);
	ocapn_value_set_symbol(&r.spec[1], "zoom", 4);
	ocapn_value_set_list(&r.specl, r.spec, 2);
	ocapn_value_set_list(&r.args, &r.specl, 1);
	uint64_t t0 = bench_now_ns();
	chain_start(&r);
	wait_for(c, &r.finished);
	return (double)(bench_now_ns() - t0);
}
