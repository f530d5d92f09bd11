/*
 * Introduction server of the unix-domain-socket netlayer, speaking the
 * protocol of Goblins 0.16's server
 * (goblins/utils/unix-domain-socket-server.scm), see docs/netlayers.md.
 *
 * Each client is a non-blocking AF_UNIX stream socket under a uv_poll_t
 * (never a libuv stream: it would read ahead over the bytes that carry
 * passed descriptors), read through the exact-reading channel of
 * uds_ctl.c.  A client is identified by its designator once it proved it
 * holds the key the designator names.  Registered clients are found by a
 * linear scan: a server has at most max_clients (1024) of them and
 * introductions are rare.
 *
 * Differences from Goblins' server, each on purpose: a client that
 * disconnects is forgotten (Goblins keeps a stale entry, and a peer that
 * registers again never gets introductions); a newer registration of a
 * designator replaces a live one; queued introductions are bounded and
 * expire; a client that breaks the protocol is disconnected rather than
 * left half-served; uds:signature is accepted as raw r||s (what Goblins
 * sends) or as a sig-val list (what the draft protocol text describes).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "../captp/crypto.h"
#include "../util/util.h"
#include "stream.h"
#include "uds.h"
#include "uds_ctl.h"

static const struct ocapn__intro_limits default_limits = {
    .max_clients = 1024,   /* Goblins' max-clients */
    .queue_total = 256,
    .queue_per_target = 32,
    .queue_ttl_ms = 60000,
    .handshake_ms = 10000,
    .max_out = 64,
};

enum cstate {
	C_REGISTER = 1, /* waiting for uds:register */
	C_SIGNATURE,    /* uds:server-response sent */
	C_READY         /* registered */
};

struct client {
	struct client *next, **pprev;
	ocapn_intro_server *s;
	uv_poll_t poll;
	int fd;
	int poll_events;
	bool closing;
	bool ch_open;
	ocapn__uds_chan ch;
	enum cstate state;
	uint64_t id;
	uint64_t deadline; /* to finish registering */
	uint8_t challenge[OCAPN__UDS_CHALLENGE_LEN];
	struct ocapn__uds_peer peer;
	/* the uds:new-connection whose descriptor is awaited */
	ocapn_buffer intro;
	char intro_to[OCAPN__UDS_B32_LEN + 1];
};

/* An introduction waiting for its target to register. */
struct intro {
	struct intro *next;
	char to[OCAPN__UDS_B32_LEN + 1];
	uint64_t expires;
	int fd;
	size_t len;
	uint8_t rec[];
};

struct ocapn_intro_server {
	uv_loop_t *loop;
	ocapn_allocator a;
	int lfd;
	uv_poll_t lpoll;
	uv_timer_t timer;
	unsigned handles_open;
	ocapn__keypair key;
	char key_b32[OCAPN__UDS_B32_LEN + 1];
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	bool fixed_challenge;
	uint8_t challenge[OCAPN__UDS_CHALLENGE_LEN];
	struct ocapn__intro_limits lim;
	struct client *clients;
	size_t nclients, nregistered;
	struct intro *qhead, *qtail;
	size_t nqueued;
	uint64_t next_id;
	ocapn_syrup_decoder *dec;
	ocapn_arena *arena;
	ocapn_syrup_writer *w;
	ocapn_intro_log_fn log_fn;
	void *log_user;
	bool closing;
	void (*done)(void *);
	void *done_user;
	char line[384];
};

static void client_poll_cb(uv_poll_t *h, int status, int events);
static void rearm(ocapn_intro_server *s);

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static void
logf_(ocapn_intro_server *s, const char *fmt, ...)
{
	if (!s->log_fn)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(s->line, sizeof(s->line), fmt, ap);
	va_end(ap);
	s->log_fn(s->log_user, s->line);
}

/* "client 7" or "client 7 (DESIGNATOR)" for log lines. */
static const char *
who(const struct client *c, char *buf, size_t cap)
{
	if (c->state == C_READY)
		snprintf(buf, cap, "client %" PRIu64 " (%s)", c->id,
		    c->peer.designator);
	else
		snprintf(buf, cap, "client %" PRIu64, c->id);
	return buf;
}

static void
maybe_done(ocapn_intro_server *s)
{
	if (s->closing && s->handles_open == 0 && s->done) {
		void (*done)(void *) = s->done;
		s->done = NULL;
		done(s->done_user);
	}
}

/* ---- clients ----------------------------------------------------------- */

static void
client_closed(uv_handle_t *h)
{
	struct client *c = h->data;
	ocapn_intro_server *s = c->s;
	close(c->fd);
	ocapn_buffer_release(&c->intro, &s->a);
	ocapn__free(&s->a, c, sizeof(*c));
	s->handles_open--;
	maybe_done(s);
}

/* Disconnect a client (once): what was queued to it is dropped, closing
 * the descriptors, so the peers that asked for those introductions see
 * their connection end. */
static void
drop_client(struct client *c, const char *reason)
{
	if (c->closing)
		return;
	ocapn_intro_server *s = c->s;
	char w[96];
	logf_(s, "%s disconnected: %s", who(c, w, sizeof(w)), reason);
	c->closing = true;
	if (c->state == C_READY)
		s->nregistered--;
	*c->pprev = c->next;
	if (c->next)
		c->next->pprev = c->pprev;
	s->nclients--;
	if (c->ch_open) {
		c->ch_open = false;
		ocapn__uds_chan_close(&c->ch, NULL, NULL);
	}
	uv_poll_stop(&c->poll);
	uv_close((uv_handle_t *)&c->poll, client_closed);
}

static struct client *
find_registered(ocapn_intro_server *s, const char *designator)
{
	for (struct client *c = s->clients; c; c = c->next)
		if (c->state == C_READY && !c->closing &&
		    strcmp(c->peer.designator, designator) == 0)
			return c;
	return NULL;
}

static void
update_poll(struct client *c)
{
	if (c->closing)
		return;
	int ev = UV_READABLE;
	if (ocapn__uds_chan_wants_write(&c->ch))
		ev |= UV_WRITABLE;
	if (ev == c->poll_events)
		return;
	int e = uv_poll_start(&c->poll, ev, client_poll_cb);
	if (e) {
		drop_client(c, "cannot poll its socket");
		return;
	}
	c->poll_events = ev;
}

/* Write what can be written now; false if the client was dropped. */
static bool
flush_client(struct client *c)
{
	int rc = ocapn__uds_chan_flush(&c->ch);
	if (rc && rc != OCAPN_E_AGAIN) {
		drop_client(c, c->ch.why);
		return false;
	}
	update_poll(c);
	return !c->closing;
}

/* Queue a record for `c`, optionally passing `fd` (taken over: closed on
 * failure). */
static bool
send_to(struct client *c, const uint8_t *rec, size_t len, int fd)
{
	ocapn_intro_server *s = c->s;
	if (c->ch.out_items >= s->lim.max_out) {
		if (fd >= 0)
			close(fd);
		drop_client(c, "it does not read its control connection");
		return false;
	}
	if (ocapn__uds_chan_queue(&c->ch, rec, len, fd, NULL)) {
		if (fd >= 0)
			close(fd);
		drop_client(c, "out of memory");
		return false;
	}
	return flush_client(c);
}

/* ---- the queue of introductions ------------------------------------- */

static size_t
queued_for(const ocapn_intro_server *s, const char *to)
{
	size_t n = 0;
	for (const struct intro *q = s->qhead; q; q = q->next)
		n += strcmp(q->to, to) == 0;
	return n;
}

static void
enqueue(ocapn_intro_server *s, const char *from, const char *to,
    const uint8_t *rec, size_t len, int fd)
{
	if (s->nqueued >= s->lim.queue_total ||
	    queued_for(s, to) >= s->lim.queue_per_target) {
		close(fd);
		logf_(s, "introduction from %s to %s dropped: queue full",
		    from, to);
		return;
	}
	struct intro *q = ocapn__malloc(&s->a, sizeof(*q) + len);
	if (!q) {
		close(fd);
		logf_(s, "introduction from %s to %s dropped: out of memory",
		    from, to);
		return;
	}
	memcpy(q->to, to, sizeof(q->to));
	q->expires = uv_now(s->loop) + s->lim.queue_ttl_ms;
	q->fd = fd;
	q->len = len;
	memcpy(q->rec, rec, len);
	q->next = NULL;
	if (s->qtail)
		s->qtail->next = q;
	else
		s->qhead = q;
	s->qtail = q;
	s->nqueued++;
	logf_(s, "introduction from %s to %s queued until it registers", from,
	    to);
	rearm(s);
}

static void
intro_free(ocapn_intro_server *s, struct intro *q)
{
	if (q->fd >= 0)
		close(q->fd);
	ocapn__free(&s->a, q, sizeof(*q) + q->len);
}

/* A client registered: hand it what waited for it, in order. */
static void
deliver_queued(struct client *c)
{
	ocapn_intro_server *s = c->s;
	struct intro **pp = &s->qhead, *prev = NULL;
	while (*pp && !c->closing) {
		struct intro *q = *pp;
		if (strcmp(q->to, c->peer.designator) != 0) {
			prev = q;
			pp = &q->next;
			continue;
		}
		*pp = q->next;
		if (s->qtail == q)
			s->qtail = prev;
		s->nqueued--;
		int fd = q->fd;
		q->fd = -1;
		send_to(c, q->rec, q->len, fd);
		intro_free(s, q);
	}
}

/* ---- the protocol ----------------------------------------------------- */

static void
on_register(struct client *c, const struct ocapn__uds_rec *r)
{
	ocapn_intro_server *s = c->s;
	uint8_t sig[OCAPN__SIG_LEN];
	if (ocapn__sign(&s->key, r->bytes, r->nbytes, sig)) {
		drop_client(c, "cannot sign its challenge");
		return;
	}
	if (s->fixed_challenge)
		memcpy(c->challenge, s->challenge, sizeof(c->challenge));
	else
		ocapn__random(c->challenge, sizeof(c->challenge));
	c->peer = r->peer;
	ocapn_syrup_writer_reset(s->w);
	const uint8_t *p = NULL;
	size_t n = 0;
	int rc = ocapn__uds_write_server_response(s->w, s->key.pk,
	    c->challenge, sizeof(c->challenge), sig);
	if (!rc)
		rc = ocapn_syrup_writer_finish(s->w, &p, &n);
	if (rc) {
		drop_client(c, "cannot encode uds:server-response");
		return;
	}
	c->state = C_SIGNATURE;
	send_to(c, p, n, -1);
}

static void
on_signature(struct client *c, const struct ocapn__uds_rec *r)
{
	ocapn_intro_server *s = c->s;
	if (r->nbytes != sizeof(c->challenge) ||
	    !ocapn__ct_equal(r->bytes, c->challenge, sizeof(c->challenge))) {
		drop_client(c, "peer verification failed: uds:signature "
			       "payload is not the challenge we sent");
		return;
	}
	if (ocapn__verify(c->peer.key, c->challenge, sizeof(c->challenge),
		r->sig) != OCAPN_OK) {
		drop_client(c, "peer verification failed: the signature does "
			       "not verify with the key its designator names");
		return;
	}
	struct client *old = find_registered(s, c->peer.designator);
	if (old)
		drop_client(old, "replaced by a new registration of the same "
				 "peer");
	c->state = C_READY;
	s->nregistered++;
	char w[96];
	logf_(s, "%s registered (%s signature)", who(c, w, sizeof(w)),
	    r->sig_raw ? "raw" : "sig-val");
	rearm(s);
	deliver_queued(c);
}

static void
on_new_connection(struct client *c, const struct ocapn__uds_rec *r,
    const uint8_t *rec, size_t len)
{
	ocapn_intro_server *s = c->s;
	if (strcmp(r->peer.designator, c->peer.designator) != 0) {
		char why[200];
		snprintf(why, sizeof(why),
		    "it asked for a connection to %s claiming to be %s",
		    r->to.designator, r->peer.designator);
		drop_client(c, why);
		return;
	}
	/* Forward the record as received, minus whitespace before it. */
	while (len && (*rec == ' ' || *rec == '\t' || *rec == '\n' ||
			  *rec == '\r')) {
		rec++;
		len--;
	}
	c->intro.len = 0;
	if (ocapn_buffer_append(&c->intro, &s->a, rec, len)) {
		drop_client(c, "out of memory");
		return;
	}
	memcpy(c->intro_to, r->to.designator, sizeof(c->intro_to));
	ocapn__uds_chan_expect_fd(&c->ch);
}

static void
on_record(struct client *c, const uint8_t *rec, size_t len)
{
	ocapn_intro_server *s = c->s;
	struct ocapn__uds_rec r;
	const char *why = "";
	ocapn_arena_reset(s->arena);
	int rc = ocapn__uds_parse(s->dec, s->arena, rec, len, &r, &why);
	if (rc) {
		char buf[200];
		snprintf(buf, sizeof(buf), "invalid control record: %s", why);
		drop_client(c, buf);
		return;
	}
	static const enum ocapn__uds_kind expected[] = {
	    [C_REGISTER] = OCAPN__UDS_REGISTER,
	    [C_SIGNATURE] = OCAPN__UDS_SIGNATURE,
	    [C_READY] = OCAPN__UDS_NEW_CONNECTION,
	};
	static const char *const unexpected[] = {
	    [C_REGISTER] = "expected uds:register first",
	    [C_SIGNATURE] = "expected uds:signature after uds:server-response",
	    [C_READY] = "expected uds:new-connection after registration",
	};
	if (r.kind != expected[c->state]) {
		drop_client(c, unexpected[c->state]);
		return;
	}
	switch (c->state) {
	case C_REGISTER:
		on_register(c, &r);
		break;
	case C_SIGNATURE:
		on_signature(c, &r);
		break;
	case C_READY:
		on_new_connection(c, &r, rec, len);
		break;
	}
}

static void
on_fd(struct client *c, int fd)
{
	ocapn_intro_server *s = c->s;
	const char *why;
	if (!ocapn__uds_fd_ok(fd, &why)) {
		close(fd);
		drop_client(c, why);
		return;
	}
	const char *from = c->peer.designator;
	struct client *t = find_registered(s, c->intro_to);
	if (!t) {
		enqueue(s, from, c->intro_to, c->intro.data, c->intro.len, fd);
		return;
	}
	logf_(s, "introduction from %s to %s forwarded", from, c->intro_to);
	send_to(t, c->intro.data, c->intro.len, fd);
}

static void
client_poll_cb(uv_poll_t *h, int status, int events)
{
	struct client *c = h->data;
	if (c->closing)
		return;
	if (status < 0) {
		drop_client(c, uv_strerror(status));
		return;
	}
	while ((events & UV_READABLE) && !c->closing) {
		const uint8_t *rec = NULL;
		size_t len = 0;
		int fd = -1, err = 0;
		enum ocapn__uds_in in = ocapn__uds_chan_read(&c->ch, &rec,
		    &len, &fd, &err);
		if (in == OCAPN__UDS_IN_AGAIN)
			break;
		if (in == OCAPN__UDS_IN_EOF)
			drop_client(c, "it closed the connection");
		else if (in == OCAPN__UDS_IN_ERROR)
			drop_client(c, c->ch.why);
		else if (in == OCAPN__UDS_IN_RECORD)
			on_record(c, rec, len);
		else
			on_fd(c, fd);
	}
	if ((events & UV_WRITABLE) && !c->closing && !flush_client(c))
		return;
	update_poll(c);
}

static void
accept_clients(ocapn_intro_server *s)
{
	for (;;) {
		int fd = accept4(s->lfd, NULL, NULL,
		    SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				logf_(s, "accept failed: %s", strerror(errno));
			return;
		}
		uint64_t id = ++s->next_id;
		if (s->nclients >= s->lim.max_clients) {
			close(fd);
			logf_(s, "client %" PRIu64 " refused: %zu clients "
			    "already", id, s->nclients);
			continue;
		}
		struct client *c = ocapn__calloc(&s->a, sizeof(*c));
		if (!c || ocapn__uds_chan_init(&c->ch, fd, &s->a)) {
			if (c) {
				ocapn__uds_chan_close(&c->ch, NULL, NULL);
				ocapn__free(&s->a, c, sizeof(*c));
			}
			close(fd);
			logf_(s, "client %" PRIu64 " refused: out of memory",
			    id);
			continue;
		}
		if (uv_poll_init(s->loop, &c->poll, fd)) {
			ocapn__uds_chan_close(&c->ch, NULL, NULL);
			ocapn__free(&s->a, c, sizeof(*c));
			close(fd);
			continue;
		}
		c->ch_open = true;
		c->s = s;
		c->fd = fd;
		c->id = id;
		c->state = C_REGISTER;
		c->deadline = uv_now(s->loop) + s->lim.handshake_ms;
		c->poll.data = c;
		ocapn_buffer_init(&c->intro);
		c->next = s->clients;
		if (s->clients)
			s->clients->pprev = &c->next;
		c->pprev = &s->clients;
		s->clients = c;
		s->nclients++;
		s->handles_open++;
		update_poll(c);
		rearm(s);
	}
}

static void
listen_cb(uv_poll_t *h, int status, int events)
{
	ocapn_intro_server *s = h->data;
	(void)events;
	if (s->closing)
		return;
	if (status < 0) {
		logf_(s, "listening socket: %s", uv_strerror(status));
		return;
	}
	accept_clients(s);
}

/* ---- deadlines -------------------------------------------------------- */

static void
timer_cb(uv_timer_t *t)
{
	ocapn_intro_server *s = t->data;
	uint64_t now = uv_now(s->loop);
	while (s->qhead && s->qhead->expires <= now) {
		struct intro *q = s->qhead;
		s->qhead = q->next;
		if (!s->qhead)
			s->qtail = NULL;
		s->nqueued--;
		logf_(s, "introduction to %s expired: the peer did not "
		    "register", q->to);
		intro_free(s, q);
	}
	for (struct client *c = s->clients, *next; c; c = next) {
		next = c->next;
		if (c->state != C_READY && c->deadline <= now)
			drop_client(c, "registration not completed in time");
	}
	rearm(s);
}

/* Run the timer at the earliest deadline (queued introductions expire in
 * order: they all live queue_ttl_ms). */
static void
rearm(ocapn_intro_server *s)
{
	if (s->closing)
		return;
	uint64_t next = UINT64_MAX;
	if (s->qhead)
		next = s->qhead->expires;
	for (struct client *c = s->clients; c; c = c->next)
		if (c->state != C_READY && c->deadline < next)
			next = c->deadline;
	if (next == UINT64_MAX) {
		uv_timer_stop(&s->timer);
		return;
	}
	uint64_t now = uv_now(s->loop);
	uv_timer_start(&s->timer, timer_cb, next > now ? next - now : 0, 0);
}

/* ---- public ----------------------------------------------------------- */

static void
server_discard(ocapn_intro_server *s)
{
	ocapn_allocator a = s->a;
	if (s->lfd >= 0)
		close(s->lfd);
	ocapn__keypair_wipe(&s->key);
	ocapn_syrup_decoder_free(s->dec);
	ocapn_arena_free(s->arena);
	ocapn_syrup_writer_free(s->w);
	ocapn__free(&a, s, sizeof(*s));
}

int
ocapn__intro_server_new_ex(uv_loop_t *loop, const char *path,
    const uint8_t *seed, const struct ocapn__intro_limits *limits,
    const ocapn_allocator *alloc, ocapn_intro_server **out)
{
	if (!loop || !path || !*path || !out)
		return OCAPN_E_INVAL;
	ocapn_allocator a;
	ocapn__alloc_init(&a, alloc);
	ocapn_intro_server *s = ocapn__calloc(&a, sizeof(*s));
	if (!s)
		return OCAPN_E_NOMEM;
	s->a = a;
	s->lfd = -1;
	s->loop = loop;
	s->lim = limits ? *limits : default_limits;
	if (strlen(path) >= sizeof(s->path)) {
		server_discard(s);
		return OCAPN_E_INVAL;
	}
	memcpy(s->path, path, strlen(path) + 1);
	int rc = seed ? ocapn__keypair_from_seed(&s->key, seed)
		      : ocapn__keypair_generate(&s->key);
	if (rc) {
		server_discard(s);
		return rc;
	}
	ocapn__uds_b32(s->key.pk, s->key_b32);
	s->dec = ocapn_syrup_decoder_new(0, &a);
	s->arena = ocapn_arena_new(&a);
	s->w = ocapn_syrup_writer_new(0, &a);
	if (!s->dec || !s->arena || !s->w) {
		server_discard(s);
		return OCAPN_E_NOMEM;
	}
	if ((rc = ocapn__unix_clear_stale(path, SOCK_STREAM))) {
		server_discard(s);
		return rc;
	}
	s->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0);
	struct sockaddr_un sa;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, path, strlen(path));
	if (s->lfd < 0 ||
	    bind(s->lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		rc = errno == EADDRINUSE ? OCAPN_E_EXISTS : OCAPN_E_IO;
		server_discard(s);
		return rc;
	}
	if (listen(s->lfd, SOMAXCONN) != 0 ||
	    uv_poll_init(loop, &s->lpoll, s->lfd) != 0) {
		unlink(path);
		server_discard(s);
		return OCAPN_E_IO;
	}
	s->lpoll.data = s;
	uv_timer_init(loop, &s->timer);
	s->timer.data = s;
	s->handles_open = 2;
	uv_poll_start(&s->lpoll, UV_READABLE, listen_cb);
	*out = s;
	return OCAPN_OK;
}

OCAPN_API int
ocapn_intro_server_new(uv_loop_t *loop, const char *path, const uint8_t *seed,
    const ocapn_allocator *alloc, ocapn_intro_server **out)
{
	return ocapn__intro_server_new_ex(loop, path, seed, NULL, alloc, out);
}

OCAPN_API const char *
ocapn_intro_server_key(const ocapn_intro_server *s)
{
	return s->key_b32;
}

OCAPN_API void
ocapn_intro_server_set_log(ocapn_intro_server *s, ocapn_intro_log_fn fn,
    void *user)
{
	s->log_fn = fn;
	s->log_user = user;
}

static void
listener_closed(uv_handle_t *h)
{
	ocapn_intro_server *s = h->data;
	close(s->lfd);
	s->lfd = -1;
	s->handles_open--;
	maybe_done(s);
}

static void
timer_closed(uv_handle_t *h)
{
	ocapn_intro_server *s = h->data;
	s->handles_open--;
	maybe_done(s);
}

OCAPN_API void
ocapn_intro_server_close(ocapn_intro_server *s, void (*done)(void *),
    void *user)
{
	if (s->closing)
		return;
	s->closing = true;
	s->done = done;
	s->done_user = user;
	unlink(s->path);
	uv_poll_stop(&s->lpoll);
	uv_close((uv_handle_t *)&s->lpoll, listener_closed);
	while (s->clients)
		drop_client(s->clients, "server closing");
	while (s->qhead) {
		struct intro *q = s->qhead;
		s->qhead = q->next;
		intro_free(s, q);
	}
	s->qtail = NULL;
	s->nqueued = 0;
	uv_timer_stop(&s->timer);
	uv_close((uv_handle_t *)&s->timer, timer_closed);
}

OCAPN_API void
ocapn_intro_server_free(ocapn_intro_server *s)
{
	if (!s)
		return;
	s->lfd = -1; /* closed by listener_closed */
	server_discard(s);
}

void
ocapn__intro_server_fix_challenge(ocapn_intro_server *s,
    const uint8_t *challenge)
{
	s->fixed_challenge = challenge != NULL;
	if (challenge)
		memcpy(s->challenge, challenge, sizeof(s->challenge));
}

size_t
ocapn__intro_server_queued(const ocapn_intro_server *s)
{
	return s->nqueued;
}

size_t
ocapn__intro_server_registered(const ocapn_intro_server *s)
{
	return s->nregistered;
}
