/*
 * unix-domain-socket netlayer, compatible with Spritely Goblins 0.16
 * (goblins/ocapn/netlayer/unix-domain-socket.scm).
 *
 * One control connection to an introduction server, driven by a uv_poll_t
 * on the raw socket (a libuv stream would read ahead over the bytes that
 * carry passed descriptors): uds:register, the two challenges, then
 * uds:new-connection records in both directions, each followed by a
 * sendmsg() passing one end of a socketpair.  Every CapTP connection is a
 * socketpair end wrapped by the stream machinery (stream.c), outbound ones
 * from connect(), inbound ones from the descriptors the server forwards.
 *
 * Lifetime of the handles: the poll handle and the timer belong to this
 * file; ocapn_netlayer_stop() closes them and, once both are closed, hands
 * over to ocapn__stream_stop(), which closes the connections and emits
 * on_stopped.  The control socket is closed only from the poll handle's
 * close callback, never while libuv may still watch its number.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "../captp/crypto.h"
#include "stream.h"
#include "uds.h"
#include "uds_ctl.h"

#define REGISTER_TIMEOUT_MS 10000
#define CONNECT_RETRY_MS 10
#define MAX_PENDING 1024

enum ctl_state {
	CTL_CONNECTING = 1, /* connect() said EAGAIN: retrying */
	CTL_REGISTERING,    /* uds:register sent, waiting for the answer */
	CTL_READY,
	CTL_DEAD
};

/* An outbound connection whose descriptor the server has not got yet. */
struct pconn {
	struct pconn *next, **pprev;
	ocapn__stream_conn *c;
	int their_fd;  /* ours until queued on the channel, then -1 */
	bool queued;
};

struct uds_nl {
	ocapn__stream_nl snl; /* first */
	uv_poll_t poll;
	uv_timer_t timer;
	unsigned handles_open;
	bool poll_closing;
	int poll_events;
	int fd;
	struct sockaddr_un sa;
	ocapn__uds_chan ch;
	bool ch_open;
	enum ctl_state state;
	uint64_t deadline;
	ocapn__keypair key;
	char designator[OCAPN__UDS_B32_LEN + 1];
	char server_key[OCAPN__UDS_B32_LEN + 1];
	uint8_t challenge[OCAPN__UDS_CHALLENGE_LEN];
	struct pconn *pending;
	size_t npending;
	/* the introduction being received: is it for us? */
	bool intro_for_us;
	ocapn_syrup_decoder *dec;
	ocapn_arena *arena;
	ocapn_syrup_writer *w;
	ocapn_uds_event_fn ev_fn;
	void *ev_user;
	bool stopping;
	char reason[224];
};

static const ocapn_netlayer_ops uds_ops;

static void poll_cb(uv_poll_t *h, int status, int events);

static void
emit_event(struct uds_nl *u, ocapn_uds_event ev, int status,
    const char *reason)
{
	if (u->ev_fn && !u->stopping)
		u->ev_fn(u->ev_user, &u->snl.base, ev, status, reason);
}

static void
maybe_stream_stop(struct uds_nl *u)
{
	if (u->stopping && u->handles_open == 0)
		ocapn__stream_stop(&u->snl.base);
}

static void
poll_closed(uv_handle_t *h)
{
	struct uds_nl *u = h->data;
	if (u->fd >= 0) {
		close(u->fd);
		u->fd = -1;
	}
	u->handles_open--;
	maybe_stream_stop(u);
}

static void
timer_closed(uv_handle_t *h)
{
	struct uds_nl *u = h->data;
	u->handles_open--;
	maybe_stream_stop(u);
}

static void
pconn_unlink(struct uds_nl *u, struct pconn *pc)
{
	*pc->pprev = pc->next;
	if (pc->next)
		pc->next->pprev = pc->pprev;
	u->npending--;
	if (pc->their_fd >= 0)
		close(pc->their_fd);
	ocapn__free(&u->snl.a, pc, sizeof(*pc));
}

static void
chan_dropped(void *ctx, void *tag)
{
	struct pconn *pc = tag;
	(void)ctx;
	pc->queued = false; /* the channel closed its descriptor */
}

/* Close the control connection (once).  Pending connections fail with
 * `status`/`reason`; the event is reported unless we are stopping. */
static void
ctl_dead(struct uds_nl *u, int status, const char *reason)
{
	if (u->state == CTL_DEAD)
		return;
	u->state = CTL_DEAD;
	if (reason != u->reason)
		snprintf(u->reason, sizeof(u->reason), "%s", reason);
	uv_timer_stop(&u->timer);
	if (!u->poll_closing) {
		u->poll_closing = true;
		uv_poll_stop(&u->poll);
		uv_close((uv_handle_t *)&u->poll, poll_closed);
	}
	if (u->ch_open) {
		u->ch_open = false;
		ocapn__uds_chan_close(&u->ch, chan_dropped, u);
	}
	while (u->pending) {
		struct pconn *pc = u->pending;
		ocapn__stream_conn *c = pc->c;
		pconn_unlink(u, pc);
		if (!u->stopping)
			ocapn__stream_conn_connect_failed(c, status, u->reason);
	}
	emit_event(u, OCAPN_UDS_SERVER_LOST, status, u->reason);
}

static void
update_poll(struct uds_nl *u)
{
	if (u->state == CTL_DEAD || u->state == CTL_CONNECTING)
		return;
	int ev = UV_READABLE;
	if (ocapn__uds_chan_wants_write(&u->ch))
		ev |= UV_WRITABLE;
	if (ev != u->poll_events) {
		int e = uv_poll_start(&u->poll, ev, poll_cb);
		if (e) {
			snprintf(u->reason, sizeof(u->reason),
			    "cannot poll the control socket: %s",
			    uv_strerror(e));
			ctl_dead(u, OCAPN_E_IO, u->reason);
			return;
		}
		u->poll_events = ev;
	}
}

/* Does `peer` say it can be reached through our server?  A peer without
 * hints is tried through it; one whose hints name only other servers
 * cannot be reached (Goblins: "No server found to connect to peer"). */
static bool
reachable(const struct uds_nl *u, const ocapn_locator *peer)
{
	if (ocapn_locator_hint_count(peer) == 0)
		return true;
	size_t vl;
	return ocapn_locator_hint(peer, u->server_key, &vl) != NULL;
}

/* Queue `<uds:new-connection OUR-LOCATION TARGET>` and the descriptor. */
static int
queue_intro(struct uds_nl *u, const ocapn_locator *peer, int fd, void *tag)
{
	ocapn_syrup_writer_reset(u->w);
	int rc = ocapn__uds_write_new_connection(u->w, u->snl.base.locator,
	    peer);
	const uint8_t *p = NULL;
	size_t n = 0;
	if (!rc)
		rc = ocapn_syrup_writer_finish(u->w, &p, &n);
	if (!rc)
		rc = ocapn__uds_chan_queue(&u->ch, p, n, fd, tag);
	return rc;
}

/* ---- control input -------------------------------------------------- */

static void
server_response(struct uds_nl *u, const struct ocapn__uds_rec *r)
{
	if (r->signed_payload &&
	    (r->nsigned_payload != sizeof(u->challenge) ||
		!ocapn__ct_equal(r->signed_payload, u->challenge,
		    sizeof(u->challenge)))) {
		ctl_dead(u, OCAPN_E_SIGNATURE,
		    "introduction server signed something other than our "
		    "challenge");
		return;
	}
	if (ocapn__verify(r->pk, u->challenge, sizeof(u->challenge),
		r->sig) != OCAPN_OK) {
		ctl_dead(u, OCAPN_E_SIGNATURE,
		    "introduction server's signature of our challenge does "
		    "not verify with the key it sent");
		return;
	}
	uint8_t sig[OCAPN__SIG_LEN];
	int rc = ocapn__sign(&u->key, r->bytes, r->nbytes, sig);
	const uint8_t *p = NULL;
	size_t n = 0;
	if (!rc) {
		ocapn_syrup_writer_reset(u->w);
		rc = ocapn__uds_write_signature(u->w, r->bytes, r->nbytes, sig,
		    true);
	}
	if (!rc)
		rc = ocapn_syrup_writer_finish(u->w, &p, &n);
	if (!rc)
		rc = ocapn__uds_chan_queue(&u->ch, p, n, -1, NULL);
	ocapn__uds_b32(r->pk, u->server_key);
	if (!rc)
		rc = ocapn_locator_set_hint(u->snl.base.locator, u->server_key,
		    OCAPN__UDS_B32_LEN, "t", 1);
	if (rc) {
		ctl_dead(u, rc, "cannot answer the introduction server's "
				"challenge");
		return;
	}
	u->state = CTL_READY;
	uv_timer_stop(&u->timer);
	/* Requests made while registering go out now. */
	for (struct pconn *pc = u->pending, *next; pc; pc = next) {
		next = pc->next;
		if (pc->queued)
			continue;
		ocapn__stream_conn *c = pc->c;
		if (!reachable(u, c->base.peer)) {
			pconn_unlink(u, pc);
			ocapn__stream_conn_connect_failed(c, OCAPN_E_NOTFOUND,
			    "the peer's hints name no introduction server we "
			    "are registered with");
			continue;
		}
		rc = queue_intro(u, c->base.peer, pc->their_fd, pc);
		if (rc) {
			pconn_unlink(u, pc);
			ocapn__stream_conn_connect_failed(c, rc,
			    "cannot queue the introduction request");
			continue;
		}
		pc->their_fd = -1;
		pc->queued = true;
	}
	emit_event(u, OCAPN_UDS_REGISTERED, OCAPN_OK, "registered");
}

static void
handle_record(struct uds_nl *u, const uint8_t *rec, size_t len)
{
	struct ocapn__uds_rec r;
	const char *why = "";
	ocapn_arena_reset(u->arena);
	int rc = ocapn__uds_parse(u->dec, u->arena, rec, len, &r, &why);
	if (rc) {
		snprintf(u->reason, sizeof(u->reason),
		    "introduction server sent an invalid control record: %s",
		    why);
		ctl_dead(u, OCAPN_E_PROTOCOL, u->reason);
		return;
	}
	if (u->state == CTL_REGISTERING) {
		if (r.kind != OCAPN__UDS_SERVER_RESPONSE) {
			ctl_dead(u, OCAPN_E_PROTOCOL,
			    "introduction server sent something other than "
			    "uds:server-response to our uds:register");
			return;
		}
		server_response(u, &r);
		return;
	}
	if (r.kind != OCAPN__UDS_NEW_CONNECTION) {
		ctl_dead(u, OCAPN_E_PROTOCOL,
		    "introduction server sent a control record other than "
		    "uds:new-connection after registration");
		return;
	}
	u->intro_for_us = strcmp(r.to.designator, u->designator) == 0;
	ocapn__uds_chan_expect_fd(&u->ch);
}

static void
handle_fd(struct uds_nl *u, int fd)
{
	const char *why = NULL;
	bool ok = u->intro_for_us && ocapn__uds_fd_ok(fd, &why);
	if (!u->intro_for_us)
		why = "introduction addressed to another peer";
	if (!ok) {
		close(fd);
		emit_event(u, OCAPN_UDS_REFUSED, OCAPN_E_PROTOCOL, why);
		return;
	}
	ocapn__stream_conn *c;
	int rc = ocapn__stream_adopt_fd(&u->snl, fd, false, NULL, &c);
	if (rc) {
		/* ocapn__stream_adopt_fd() closed the fd */
		emit_event(u, OCAPN_UDS_REFUSED, rc,
		    "cannot adopt the passed connection");
		return;
	}
	if (ocapn__stream_conn_established(c)) {
		ocapn__stream_conn_discard(c); /* never reported */
		return;
	}
	ocapn_netlayer_emit_accept(&u->snl.base, &c->base);
}

/* False once the control connection is gone or the netlayer stopping
 * (the caller must then return: callbacks may have stopped us). */
static bool
alive(const struct uds_nl *u)
{
	return u->state != CTL_DEAD && !u->stopping;
}

static void
read_ctl(struct uds_nl *u)
{
	while (alive(u)) {
		const uint8_t *rec = NULL;
		size_t len = 0;
		int fd = -1, err = 0;
		switch (ocapn__uds_chan_read(&u->ch, &rec, &len, &fd, &err)) {
		case OCAPN__UDS_IN_AGAIN:
			return;
		case OCAPN__UDS_IN_EOF:
			ctl_dead(u, OCAPN_E_CLOSED,
			    u->state == CTL_REGISTERING
				? "introduction server closed the connection "
				  "during registration"
				: "introduction server closed the connection");
			return;
		case OCAPN__UDS_IN_ERROR:
			snprintf(u->reason, sizeof(u->reason),
			    "introduction server connection: %s", u->ch.why);
			ctl_dead(u, err, u->reason);
			return;
		case OCAPN__UDS_IN_RECORD:
			handle_record(u, rec, len);
			break;
		case OCAPN__UDS_IN_FD:
			handle_fd(u, fd);
			break;
		}
	}
}

/* ---- control output ------------------------------------------------- */

static bool
flush_ctl(struct uds_nl *u)
{
	int rc = ocapn__uds_chan_flush(&u->ch);
	if (rc && rc != OCAPN_E_AGAIN) {
		snprintf(u->reason, sizeof(u->reason),
		    "introduction server connection: %s", u->ch.why);
		ctl_dead(u, rc, u->reason);
		return false;
	}
	struct pconn *pc;
	while (alive(u) && (pc = ocapn__uds_chan_take_done(&u->ch))) {
		/* The server has the other end: CapTP can start. */
		ocapn__stream_conn *c = pc->c;
		pconn_unlink(u, pc);
		if (ocapn__stream_conn_established(c))
			ocapn__stream_conn_connect_failed(c, OCAPN_E_IO,
			    "cannot start reading the connection");
	}
	return alive(u);
}

static void
poll_cb(uv_poll_t *h, int status, int events)
{
	struct uds_nl *u = h->data;
	if (!alive(u))
		return;
	if (status < 0) {
		snprintf(u->reason, sizeof(u->reason),
		    "introduction server connection: %s", uv_strerror(status));
		ctl_dead(u, ocapn__uv_err(status), u->reason);
		return;
	}
	/* Input first: when the server goes away, what it said last
	 * explains it better than our failing write. */
	if (events & UV_READABLE)
		read_ctl(u);
	if ((events & UV_WRITABLE) && alive(u) && !flush_ctl(u))
		return;
	if (alive(u))
		update_poll(u);
}

/* ---- connecting to the server ---------------------------------------- */

/* OCAPN_OK, OCAPN_E_AGAIN (listen queue full), or an error. */
static int
try_connect(struct uds_nl *u)
{
	int r;
	do
		r = connect(u->fd, (struct sockaddr *)&u->sa, sizeof(u->sa));
	while (r < 0 && errno == EINTR);
	if (r == 0)
		return OCAPN_OK;
	switch (errno) {
	case EAGAIN:
		return OCAPN_E_AGAIN;
	case ENOENT:
	case ECONNREFUSED:
	case ENOTSOCK:
		return OCAPN_E_CONNREFUSED;
	default:
		return OCAPN_E_IO;
	}
}

static void
timer_cb(uv_timer_t *t)
{
	struct uds_nl *u = t->data;
	if (!alive(u))
		return;
	if (u->state == CTL_REGISTERING) {
		ctl_dead(u, OCAPN_E_TIMEDOUT,
		    "introduction server did not answer the registration");
		return;
	}
	int rc = try_connect(u);
	if (rc == OCAPN_OK) {
		u->state = CTL_REGISTERING;
		uint64_t now = uv_now(u->snl.loop);
		uv_timer_start(&u->timer, timer_cb,
		    u->deadline > now ? u->deadline - now : 0, 0);
		update_poll(u);
		return;
	}
	if (rc == OCAPN_E_AGAIN && uv_now(u->snl.loop) < u->deadline) {
		uv_timer_start(&u->timer, timer_cb, CONNECT_RETRY_MS, 0);
		return;
	}
	ctl_dead(u, rc == OCAPN_E_AGAIN ? OCAPN_E_TIMEDOUT : rc,
	    rc == OCAPN_E_AGAIN
		? "introduction server's listen queue stayed full"
		: "cannot connect to the introduction server");
}

/* ---- netlayer ops ----------------------------------------------------- */

static int
uds_connect(ocapn_netlayer *nl, const ocapn_locator *peer, ocapn_conn **out)
{
	struct uds_nl *u = (struct uds_nl *)nl;
	if (u->stopping || u->state == CTL_DEAD)
		return OCAPN_E_CLOSED;
	size_t tl, dl;
	const char *t = ocapn_locator_transport(peer, &tl);
	const char *d = ocapn_locator_designator(peer, &dl);
	if (tl != OCAPN__UDS_TRANSPORT_LEN ||
	    memcmp(t, OCAPN__UDS_TRANSPORT, tl) != 0 ||
	    !ocapn__uds_designator_ok(d, dl, NULL))
		return OCAPN_E_INVAL;
	if (u->state == CTL_READY && !reachable(u, peer))
		return OCAPN_E_NOTFOUND;
	if (u->npending >= MAX_PENDING)
		return OCAPN_E_LIMIT;
	struct pconn *pc = ocapn__calloc(&u->snl.a, sizeof(*pc));
	if (!pc)
		return OCAPN_E_NOMEM;
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
		ocapn__free(&u->snl.a, pc, sizeof(*pc));
		return errno == EMFILE || errno == ENFILE ? OCAPN_E_LIMIT
							  : OCAPN_E_IO;
	}
	pc->their_fd = sv[1];
	if (u->state == CTL_READY) {
		/* Nothing is written here: the poll callback flushes, so no
		 * callback runs inside this call. */
		int rc = queue_intro(u, peer, sv[1], pc);
		if (rc) {
			close(sv[0]);
			close(sv[1]);
			ocapn__free(&u->snl.a, pc, sizeof(*pc));
			return rc;
		}
		pc->their_fd = -1;
		pc->queued = true;
	}
	ocapn__stream_conn *c;
	int rc = ocapn__stream_adopt_fd(&u->snl, sv[0], true, peer, &c);
	if (rc) {
		/* ocapn__stream_adopt_fd() closed sv[0] */
		if (pc->queued)
			ocapn__uds_chan_cancel(&u->ch, pc); /* closes sv[1] */
		else
			close(sv[1]);
		ocapn__free(&u->snl.a, pc, sizeof(*pc));
		return rc;
	}
	pc->c = c;
	pc->next = u->pending;
	if (u->pending)
		u->pending->pprev = &pc->next;
	pc->pprev = &u->pending;
	u->pending = pc;
	u->npending++;
	update_poll(u);
	*out = &c->base;
	return OCAPN_OK;
}

/* A connection closed before its descriptor was sent: withdraw the
 * request if it has not started going out. */
static void
forget_pending(struct uds_nl *u, ocapn_conn *c)
{
	for (struct pconn *pc = u->pending; pc; pc = pc->next) {
		if (&pc->c->base != c)
			continue;
		if (pc->queued && u->ch_open)
			ocapn__uds_chan_cancel(&u->ch, pc);
		pconn_unlink(u, pc);
		return;
	}
}

static void
uds_close(ocapn_conn *c)
{
	forget_pending((struct uds_nl *)c->nl, c);
	ocapn__stream_close(c);
}

static void
uds_reset(ocapn_conn *c)
{
	forget_pending((struct uds_nl *)c->nl, c);
	ocapn__stream_reset(c);
}

static void
uds_stop(ocapn_netlayer *nl)
{
	struct uds_nl *u = (struct uds_nl *)nl;
	if (u->stopping)
		return;
	u->stopping = true;
	/* Connections not handed over are closed by ocapn__stream_stop()
	 * ("closed before connecting"). */
	ctl_dead(u, OCAPN_E_CLOSED, "netlayer stopped");
	while (u->pending)
		pconn_unlink(u, u->pending);
	uv_timer_stop(&u->timer);
	uv_close((uv_handle_t *)&u->timer, timer_closed);
}

static void
uds_free_ext(ocapn__stream_nl *snl)
{
	struct uds_nl *u = (struct uds_nl *)snl;
	ocapn_allocator a = snl->a;
	ocapn__keypair_wipe(&u->key);
	ocapn_syrup_decoder_free(u->dec);
	ocapn_arena_free(u->arena);
	ocapn_syrup_writer_free(u->w);
	ocapn__free(&a, u, sizeof(*u));
}

static const ocapn_netlayer_ops uds_ops = {
    .transport = OCAPN__UDS_TRANSPORT,
    .flags = OCAPN_NETLAYER_STREAM,
    .connect = uds_connect,
    .send = ocapn__stream_send,
    .pending = ocapn__stream_pending,
    .hold = ocapn__stream_hold,
    .release = ocapn__stream_release,
    .close = uds_close,
    .reset = uds_reset,
    .stop = uds_stop,
    .free = ocapn__stream_free,
};

/* ---- construction ----------------------------------------------------- */

/* Free a netlayer whose handles were never initialised. */
static void
discard(struct uds_nl *u, ocapn_locator *loc)
{
	ocapn_allocator a = u->snl.a;
	if (u->ch_open)
		ocapn__uds_chan_close(&u->ch, NULL, NULL);
	if (u->fd >= 0)
		close(u->fd);
	ocapn_locator_free(loc);
	ocapn__keypair_wipe(&u->key);
	ocapn_syrup_decoder_free(u->dec);
	ocapn_arena_free(u->arena);
	ocapn_syrup_writer_free(u->w);
	ocapn__free(&a, u, sizeof(*u));
}

int
ocapn__uds_netlayer_new_ex(uv_loop_t *loop, const char *path,
    const uint8_t *seed, const uint8_t *challenge,
    const ocapn_allocator *alloc, ocapn_netlayer **out)
{
	if (!loop || !path || !out || !*path ||
	    strlen(path) >= sizeof(((struct sockaddr_un *)0)->sun_path))
		return OCAPN_E_INVAL;
	ocapn_allocator a;
	ocapn__alloc_init(&a, alloc);
	struct uds_nl *u = ocapn__calloc(&a, sizeof(*u));
	if (!u)
		return OCAPN_E_NOMEM;
	u->snl.a = a;
	u->fd = -1;
	ocapn_locator *loc = NULL;
	int rc = seed ? ocapn__keypair_from_seed(&u->key, seed)
		      : ocapn__keypair_generate(&u->key);
	if (rc) {
		discard(u, loc);
		return rc;
	}
	ocapn__uds_b32(u->key.pk, u->designator);
	if (challenge)
		memcpy(u->challenge, challenge, sizeof(u->challenge));
	else
		ocapn__random(u->challenge, sizeof(u->challenge));
	u->dec = ocapn_syrup_decoder_new(0, &a);
	u->arena = ocapn_arena_new(&a);
	u->w = ocapn_syrup_writer_new(0, &a);
	if (!u->dec || !u->arena || !u->w) {
		discard(u, loc);
		return OCAPN_E_NOMEM;
	}
	if ((rc = ocapn_locator_new(OCAPN__UDS_TRANSPORT,
		 OCAPN__UDS_TRANSPORT_LEN, u->designator, OCAPN__UDS_B32_LEN,
		 &a, &loc))) {
		discard(u, loc);
		return rc;
	}
	u->sa.sun_family = AF_UNIX;
	memcpy(u->sa.sun_path, path, strlen(path));
	u->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (u->fd < 0) {
		discard(u, loc);
		return OCAPN_E_IO;
	}
	rc = try_connect(u);
	if (rc && rc != OCAPN_E_AGAIN) {
		discard(u, loc);
		return rc;
	}
	u->state = rc ? CTL_CONNECTING : CTL_REGISTERING;
	if ((rc = ocapn__uds_chan_init(&u->ch, u->fd, &a))) {
		u->ch_open = true;
		discard(u, loc);
		return rc;
	}
	u->ch_open = true;
	ocapn_syrup_writer_reset(u->w);
	const uint8_t *p = NULL;
	size_t n = 0;
	rc = ocapn__uds_write_register(u->w, u->designator, u->challenge,
	    sizeof(u->challenge));
	if (!rc)
		rc = ocapn_syrup_writer_finish(u->w, &p, &n);
	if (!rc)
		rc = ocapn__uds_chan_queue(&u->ch, p, n, -1, NULL);
	if (rc) {
		discard(u, loc);
		return rc;
	}
	int e = uv_poll_init(loop, &u->poll, u->fd);
	if (e) {
		discard(u, loc);
		return ocapn__uv_err(e);
	}
	/* From here on the handles own the cleanup. */
	ocapn__stream_nl_init(&u->snl, loop, &uds_ops, loc, &a);
	u->snl.free_ext = uds_free_ext;
	u->poll.data = u;
	uv_timer_init(loop, &u->timer);
	u->timer.data = u;
	u->handles_open = 2;
	u->deadline = uv_now(loop) + REGISTER_TIMEOUT_MS;
	uv_timer_start(&u->timer, timer_cb,
	    u->state == CTL_CONNECTING ? CONNECT_RETRY_MS
				       : REGISTER_TIMEOUT_MS,
	    0);
	update_poll(u);
	*out = &u->snl.base;
	return OCAPN_OK;
}

OCAPN_API int
ocapn_uds_netlayer_new(uv_loop_t *loop, const char *intro_server_path,
    const uint8_t *seed, const ocapn_allocator *alloc, ocapn_netlayer **out)
{
	return ocapn__uds_netlayer_new_ex(loop, intro_server_path, seed, NULL,
	    alloc, out);
}

OCAPN_API int
ocapn_uds_netlayer_set_event_cb(ocapn_netlayer *nl, ocapn_uds_event_fn fn,
    void *user)
{
	if (!nl || nl->ops != &uds_ops)
		return OCAPN_E_INVAL;
	struct uds_nl *u = (struct uds_nl *)nl;
	u->ev_fn = fn;
	u->ev_user = user;
	return OCAPN_OK;
}

OCAPN_API bool
ocapn_uds_netlayer_registered(const ocapn_netlayer *nl)
{
	return nl && nl->ops == &uds_ops &&
	    ((const struct uds_nl *)nl)->state == CTL_READY;
}
