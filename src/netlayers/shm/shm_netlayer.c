/*
 * The shm netlayer: CapTP over the shared-memory channel (shm_linux.c) on
 * a libuv loop.
 *
 * A netlayer listens on a rendezvous socket DIR/<designator prefix>.sock
 * in a private directory and dials the path named in a peer's locator
 * (`ocapn://<base32 key>.shm?path=<socket path>`).  Each connection is a
 * channel: its control socket and its doorbell eventfd are watched with
 * one uv_poll_t each.  Before a connection is reported to the handler,
 * both sides prove their designator keys inside the rings (shm_auth.c,
 * run through the channel's authentication hook); the initiator requires
 * the key its locator names.
 *
 * Messages are handed up as the channel gives them: a zero-copy view into
 * the peer's region for a single-packet message (acked when released) or
 * a private reassembled buffer.  Views live in memory the peer can
 * rewrite, so the netlayer has OCAPN_NETLAYER_SHARED and the runtime
 * decodes them with ocapn_session_feed_shared_message().
 *
 * Work and sleep.  Every connection is driven by conn_run(): progress
 * (control socket, doorbell, acks), receive (at most RECV_BUDGET
 * messages), then conn_settle(), which either arms the wakeup protocol
 * (the doorbell then rings for anything new, and the loop may sleep) or
 * puts the connection on the work list served by an idle handle (which
 * keeps the loop from sleeping).  A connection is never left unarmed
 * while the loop may sleep.
 *
 * Doorbells are deferred (ocapn__shm_ep_defer): a send or an ack
 * publishes its index at once, and the peer is rung (if it sleeps) once
 * for everything published since: by ops->flush, which the runtime calls
 * after it wrote a loop iteration's output to the connection; else by
 * the idle callback, which flushes every connection on the work list
 * before it runs or spins them; or by arming, which flushes first.  A
 * send puts its connection on the work list, so all the messages the
 * runtime writes in one loop iteration cost at most one ring, not one
 * each; a send of FLUSH_BYTES or more rings at once (the peer starts on
 * it while we copy the next).  The acks of one run are rung at its end,
 * those of a copied (reassembled) message before it is delivered.  A
 * connection with a doorbell owed is on the work list or about to be
 * armed, so nothing owed waits while the loop sleeps.
 *
 * Busy-poll policy (docs/shm.md): after a send, a reply is likely, so the
 * connection is not armed but put on the spin list; the idle handle then
 * watches the rings of every connection on it without system calls for a
 * bounded budget (adaptive between SPIN_MIN_NS and the netlayer's spin
 * maximum, doubled after a spin that found work, halved after one that
 * did not, the full maximum every SPIN_PROBE-th spin).  A spin that finds
 * nothing arms the connections and lets the loop sleep.  Nothing spins on
 * a connection that has not sent since it last received, so an idle
 * netlayer costs no CPU.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <ocapn/runtime.h>

#include "../../util/util.h"
#include "../stream.h"
#include "shm_auth.h"
#include "shm_linux.h"
#include "shm_netlayer.h"

#define TRANSPORT "shm"
#define B32_LEN 52
#define RECV_BUDGET 64      /* messages per connection per run */
#define RECV_BYTES (256u << 10) /* message bytes per connection per run */
#define MAX_IOV 16
#define HANDSHAKE_MS 10000  /* channel handshake and authentication */
#define DRAIN_MS 2000       /* graceful close: wait for the peer's end */
#define DIAL_RETRY_MS 10    /* the listener's queue was full */
#define DIAL_MS 10000
#define MAX_HANDSHAKES 256  /* inbound connections not yet authenticated */
#define DEFAULT_SPIN_NS 50000u
#define SPIN_MIN_NS 1000u
#define SPIN_PROBE 16u
#define FLUSH_BYTES (64u << 10) /* a send this large rings at once */

typedef char sun_path_t[sizeof(((struct sockaddr_un *)0)->sun_path)];

enum sc_state {
	SC_DIALING = 1, /* waiting to connect (first try from the loop) */
	SC_HANDSHAKE,   /* channel handshake, then authentication */
	SC_OPEN,        /* reported to the handler; messages flow */
	SC_CLOSING,     /* our end sent; discarding input until the peer's */
	SC_CLOSED       /* handles closing; freed in their callbacks */
};

struct held {
	struct ocapn__shm_msg m;
};

struct shm_nl;

struct shm_conn {
	ocapn_conn base;
	struct shm_nl *nl; /* NULL once detached (netlayer freed first) */
	ocapn_allocator a;
	struct shm_conn *next, **pprev;   /* every connection */
	struct shm_conn *wnext, **wpprev; /* the work list */
	struct shm_conn *mnext, **mpprev; /* the continuation list */
	ocapn__shm_conn *ch;
	enum sc_state state;
	bool reported;  /* the handler knows it (outbound, or accepted) */
	bool need_run;  /* conn_run() must look at it */
	bool expect;    /* sent since it last received: spin for a reply */
	bool blocked;   /* a send returned OCAPN_E_AGAIN: on_drain owed */
	bool more;      /* the receive budget stopped a run */
	uv_poll_t pctl, pbell;
	int ctl_fd, bell_fd;
	bool ctl_init, bell_init;
	int ctl_ev, bell_ev; /* events the polls watch now */
	uv_timer_t timer;    /* dial retries, handshake and drain deadlines */
	unsigned handles;    /* handles still closing */
	uint64_t deadline;   /* for dial retries */
	struct ocapn__shm_auth auth;
	struct ocapn__shm_auth_ops auth_ops;
	struct ocapn__shm_msg cur; /* the message of the current on_message */
	bool cur_live, cur_held;
	struct held *held;
	size_t nheld, heldcap;
	sun_path_t path; /* outbound: where we dial */
	uint8_t peer_key[OCAPN__PK_LEN]; /* outbound: the key dialled */
	int close_status;
	const char *close_reason;
	char reason_buf[200];
};

/* The netlayer's own handles, allocated apart so that a netlayer freed
 * before it stopped can leave them to close on their own. */
struct nl_handle {
	union {
		uv_handle_t h;
		uv_poll_t poll;
		uv_idle_t idle;
		uv_async_t async;
	} u;
	ocapn_allocator a;
	struct shm_nl *nl; /* NULL once detached */
};

struct shm_nl {
	ocapn_netlayer base;
	uv_loop_t *loop;
	ocapn_allocator a;
	ocapn__keypair key;
	char designator[B32_LEN + 1];
	sun_path_t path; /* our rendezvous socket, "" if we do not listen */
	struct ocapn__shm_params params;
	ocapn__shm_listener *listener;
	struct nl_handle *lpoll; /* NULL if we do not listen, or closed */
	struct nl_handle *idle;
	bool idle_on;
	struct nl_handle *cont; /* continues runs stopped by the budget */
	struct shm_conn *more;
	struct shm_conn *conns;
	size_t nconns, nhandshakes;
	struct shm_conn *work;
	uint64_t spin_max, spin_cur;
	uint64_t spins, spin_hits;
	bool stopping, stopped;
	unsigned handles; /* lpoll and idle not yet closed */
	uint64_t refused;
	char refused_reason[200];
};

static const ocapn_netlayer_ops shm_ops;

static void conn_run(struct shm_conn *c, unsigned ready);
static void conn_settle(struct shm_conn *c);
static void close_now(struct shm_conn *c, int status, const char *reason);
static void maybe_stopped(struct shm_nl *nl);
static void idle_cb(uv_idle_t *h);

/* ------------------------------------------------------------------ */
/* The work list and the idle handle                                    */
/* ------------------------------------------------------------------ */

static void
work_add(struct shm_conn *c)
{
	struct shm_nl *nl = c->nl;
	if (!nl || c->wpprev)
		return;
	c->wnext = nl->work;
	if (nl->work)
		nl->work->wpprev = &c->wnext;
	c->wpprev = &nl->work;
	nl->work = c;
	if (!nl->idle_on && nl->idle) {
		nl->idle_on = true;
		uv_idle_start(&nl->idle->u.idle, idle_cb);
	}
}

static void
work_del(struct shm_conn *c)
{
	if (!c->wpprev)
		return;
	*c->wpprev = c->wnext;
	if (c->wnext)
		c->wnext->wpprev = c->wpprev;
	c->wnext = NULL;
	c->wpprev = NULL;
}

/*
 * A run stopped by the receive budget continues from the uv_async handle,
 * whose callback comes in the poll phase of the next loop iteration:
 * after the runtime's prepare callback has run the turns of what was
 * delivered.  So at most one budget of messages waits in value boxes at
 * a time (large messages decoded in bursts would otherwise hold many
 * large boxes at once), and other connections and timers get their turn.
 */
static void
more_add(struct shm_conn *c)
{
	struct shm_nl *nl = c->nl;
	if (!nl || c->mpprev)
		return;
	c->mnext = nl->more;
	if (nl->more)
		nl->more->mpprev = &c->mnext;
	c->mpprev = &nl->more;
	nl->more = c;
	if (nl->cont)
		uv_async_send(&nl->cont->u.async);
}

static void
more_del(struct shm_conn *c)
{
	if (!c->mpprev)
		return;
	*c->mpprev = c->mnext;
	if (c->mnext)
		c->mnext->mpprev = c->mpprev;
	c->mnext = NULL;
	c->mpprev = NULL;
}

static void
cont_cb(uv_async_t *h)
{
	struct shm_nl *nl = ((struct nl_handle *)h->data)->nl;
	if (!nl)
		return;
	/* only what was there before: runs may add again */
	struct shm_conn *list = nl->more;
	nl->more = NULL;
	if (list)
		list->mpprev = &list;
	while (list) {
		struct shm_conn *c = list;
		more_del(c);
		conn_run(c, 0);
	}
}

static void
kick(struct shm_conn *c)
{
	c->need_run = true;
	work_add(c);
}

static inline void
cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield");
#endif
}

static uint64_t
now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/*
 * Watch the rings of every connection in `list` (linked by wnext) until
 * one has work or the budget is spent.  Marks the ones with work
 * (need_run); returns whether any had.
 */
static bool
spin_wait(struct shm_nl *nl, struct shm_conn *list)
{
	if (nl->spin_cur == 0 || nl->spin_cur > nl->spin_max)
		nl->spin_cur = nl->spin_max;
	uint64_t budget = ++nl->spins % SPIN_PROBE == 0 ? nl->spin_max :
	    nl->spin_cur;
	uint64_t t0 = now_ns();
	bool found = false;
	for (uint32_t i = 1;; i++) {
		for (struct shm_conn *c = list; c; c = c->wnext) {
			ocapn__shm_ep *ep = ocapn__shm_endpoint(c->ch);
			if (ep && ocapn__shm_ep_pending(ep)) {
				c->need_run = true;
				found = true;
			}
		}
		if (found)
			break;
		cpu_relax();
		if ((i & 63) == 0 && now_ns() - t0 >= budget)
			break;
	}
	if (found) {
		nl->spin_hits++;
		nl->spin_cur = budget * 2 > nl->spin_max ? nl->spin_max :
		    budget * 2;
	} else {
		nl->spin_cur = nl->spin_cur / 2 < SPIN_MIN_NS ? SPIN_MIN_NS :
		    nl->spin_cur / 2;
	}
	return found;
}

static void
idle_cb(uv_idle_t *h)
{
	struct shm_nl *nl = ((struct nl_handle *)h->data)->nl;
	if (!nl)
		return;
	/* Ring once for everything published since the last iteration
	 * (the runtime's sends), before anything waits for the answers. */
	for (struct shm_conn *c = nl->work; c; c = c->wnext)
		if (c->ch && c->state != SC_CLOSED)
			ocapn__shm_flush(c->ch);
	/* Take the list: runs below may put connections back on it. */
	struct shm_conn *list = nl->work, *spin = NULL, **spin_tail = &spin;
	nl->work = NULL;
	if (list)
		list->wpprev = &list;
	while (list) {
		struct shm_conn *c = list;
		work_del(c);
		if (c->need_run) {
			c->need_run = false;
			conn_run(c, 0);
		} else if (c->expect && c->state == SC_OPEN && nl->spin_max) {
			/* a private list, linked the same way */
			c->wnext = NULL;
			c->wpprev = spin_tail;
			*spin_tail = c;
			spin_tail = &c->wnext;
		} else {
			conn_settle(c);
		}
	}
	if (spin) {
		bool found = spin_wait(nl, spin);
		while (spin) {
			struct shm_conn *c = spin;
			spin = c->wnext;
			if (spin)
				spin->wpprev = &spin;
			c->wnext = NULL;
			c->wpprev = NULL;
			if (c->need_run) {
				c->need_run = false;
				conn_run(c, 0);
			} else {
				/* no reply within the budget: sleep */
				if (!found)
					c->expect = false;
				conn_settle(c);
			}
		}
	}
	if (!nl->work && nl->idle_on && nl->idle) {
		uv_idle_stop(&nl->idle->u.idle);
		nl->idle_on = false;
	}
}

/* ------------------------------------------------------------------ */
/* Polls                                                                */
/* ------------------------------------------------------------------ */

static void
poll_cb(uv_poll_t *h, int status, int events)
{
	struct shm_conn *c = h->data;
	(void)events;
	unsigned ready = h == &c->pctl ? OCAPN__SHM_READY_CTL :
	    OCAPN__SHM_READY_BELL;
	if (status < 0) {
		/* libuv stopped the handle; the control socket read will
		 * report what happened, and conn_settle() restarts it */
		if (h == &c->pctl)
			c->ctl_ev = 0;
		else
			c->bell_ev = 0;
	}
	conn_run(c, ready);
}

static int
uv_events(short ev)
{
	return ((ev & POLLIN) ? UV_READABLE : 0) |
	    ((ev & POLLOUT) ? UV_WRITABLE : 0);
}

static void
set_poll(struct shm_conn *c, uv_poll_t *h, bool *init, int fd, int *cur,
    int want)
{
	if (!*init) {
		if (!want || !c->nl)
			return;
		if (uv_poll_init(c->nl->loop, h, fd) != 0) {
			/* cannot watch it: fail rather than hang */
			ocapn__shm_close(c->ch);
			close_now(c, OCAPN_E_IO, "cannot watch the channel");
			return;
		}
		h->data = c;
		*init = true;
	}
	if (want == *cur)
		return;
	if (want)
		uv_poll_start(h, want, poll_cb);
	else
		uv_poll_stop(h);
	*cur = want;
}

static void
update_polls(struct shm_conn *c)
{
	struct pollfd pfd[2];
	int n = ocapn__shm_pollfds(c->ch, pfd);
	int want_ctl = 0, want_bell = 0, bell = -1;
	for (int i = 0; i < n; i++) {
		if (pfd[i].fd == c->ctl_fd)
			want_ctl = uv_events(pfd[i].events);
		else {
			bell = pfd[i].fd;
			want_bell = uv_events(pfd[i].events);
		}
	}
	if (bell >= 0 && c->bell_fd < 0)
		c->bell_fd = bell;
	set_poll(c, &c->pctl, &c->ctl_init, c->ctl_fd, &c->ctl_ev, want_ctl);
	if (c->state == SC_CLOSED)
		return;
	set_poll(c, &c->pbell, &c->bell_init, c->bell_fd, &c->bell_ev,
	    want_bell);
}

/* ------------------------------------------------------------------ */
/* Connections                                                          */
/* ------------------------------------------------------------------ */

static int auth_start(void *user, ocapn__shm_conn *ch);
static int auth_recv(void *user, ocapn__shm_conn *ch, const uint8_t *msg,
    size_t len, bool *done);
static void timer_cb(uv_timer_t *t);

static struct shm_conn *
conn_new(struct shm_nl *nl, bool outbound, const ocapn_locator *peer)
{
	struct shm_conn *c = ocapn__calloc(&nl->a, sizeof(*c));
	if (!c)
		return NULL;
	if (peer && ocapn_locator_copy(peer, &c->base.peer)) {
		ocapn__free(&nl->a, c, sizeof(*c));
		return NULL;
	}
	c->base.nl = &nl->base;
	c->base.outbound = outbound;
	c->nl = nl;
	c->a = nl->a;
	c->ctl_fd = c->bell_fd = -1;
	c->auth_ops.start = auth_start;
	c->auth_ops.recv = auth_recv;
	c->auth_ops.user = c;
	uv_timer_init(nl->loop, &c->timer);
	c->timer.data = c;
	c->next = nl->conns;
	if (nl->conns)
		nl->conns->pprev = &c->next;
	c->pprev = &nl->conns;
	nl->conns = c;
	nl->nconns++;
	return c;
}

static void
conn_free(struct shm_conn *c)
{
	struct shm_nl *nl = c->nl;
	if (c->pprev) {
		*c->pprev = c->next;
		if (c->next)
			c->next->pprev = c->pprev;
	}
	ocapn__shm_free(c->ch);
	ocapn_locator_free(c->base.peer);
	ocapn_allocator a = c->a;
	ocapn__free(&a, c->held, c->heldcap * sizeof(*c->held));
	ocapn__free(&a, c, sizeof(*c));
	if (nl) {
		nl->nconns--;
		maybe_stopped(nl);
	}
}

static void
handle_closed(uv_handle_t *h)
{
	struct shm_conn *c = h->data;
	if (--c->handles)
		return;
	if (c->reported && c->nl)
		ocapn_netlayer_emit_close(&c->base, c->close_status,
		    c->close_reason ? c->close_reason : "closed");
	conn_free(c);
}

static void
set_reason(struct shm_conn *c, int status, const char *reason)
{
	if (c->close_reason)
		return;
	c->close_status = status;
	snprintf(c->reason_buf, sizeof(c->reason_buf), "%s", reason);
	c->close_reason = c->reason_buf;
}

/* Close every handle; on_close (if the handler knows the connection)
 * and the free follow from the last close callback. */
static void
close_now(struct shm_conn *c, int status, const char *reason)
{
	if (c->state == SC_CLOSED)
		return;
	set_reason(c, status, reason);
	if (c->state == SC_HANDSHAKE && !c->base.outbound && c->nl)
		c->nl->nhandshakes--;
	c->state = SC_CLOSED;
	work_del(c);
	more_del(c);
	c->handles = 1;
	uv_close((uv_handle_t *)&c->timer, handle_closed);
	if (c->ctl_init) {
		c->handles++;
		uv_close((uv_handle_t *)&c->pctl, handle_closed);
	}
	if (c->bell_init) {
		c->handles++;
		uv_close((uv_handle_t *)&c->pbell, handle_closed);
	}
}

/* An inbound connection that never reached the handler. */
static void
refuse(struct shm_conn *c, const char *reason)
{
	if (c->nl) {
		c->nl->refused++;
		snprintf(c->nl->refused_reason, sizeof(c->nl->refused_reason),
		    "%s", reason);
	}
	close_now(c, OCAPN_E_PROTOCOL, reason);
}

/* The connection failed before it opened, at `status` with `reason`. */
static void
fail_early(struct shm_conn *c, int status, const char *reason)
{
	if (!c->base.outbound) {
		refuse(c, reason);
		return;
	}
	set_reason(c, status, reason);
	ocapn_netlayer_emit_connect(&c->base, status);
	close_now(c, status, reason);
}

/* The channel failed (its error is sticky): close with the best reason. */
static void
channel_failed(struct shm_conn *c)
{
	const char *why = "";
	int err = ocapn__shm_error(c->ch, &why);
	if (c->auth.state == OCAPN__SHM_AUTH_FAILED) {
		err = c->auth.err;
		why = c->auth.reason;
	}
	char buf[200];
	if (c->state == SC_HANDSHAKE) {
		snprintf(buf, sizeof(buf), "cannot connect: %s", why);
		fail_early(c, err ? err : OCAPN_E_PROTOCOL,
		    c->base.outbound ? buf : why);
		return;
	}
	if (err == OCAPN_E_CLOSED && c->state == SC_CLOSING) {
		close_now(c, OCAPN_OK, "closed");
		return;
	}
	if (err == OCAPN_E_CLOSED && ocapn__shm_peer_closed(c->ch)) {
		close_now(c, OCAPN_OK, why);
		return;
	}
	close_now(c, err ? err : OCAPN_E_PROTOCOL, why);
}

/* Channel up and the peer authenticated: report the connection. */
static void
conn_open(struct shm_conn *c)
{
	uv_timer_stop(&c->timer);
	c->state = SC_OPEN;
	c->reported = true;
	if (c->base.outbound) {
		ocapn_netlayer_emit_connect(&c->base, OCAPN_OK);
		return;
	}
	c->nl->nhandshakes--;
	ocapn_buffer b;
	ocapn_buffer_init(&b);
	ocapn_locator *peer = NULL;
	if (ocapn_base32_encode(c->auth.peer_key, OCAPN__PK_LEN, &b, &c->a) ||
	    ocapn_locator_new(TRANSPORT, strlen(TRANSPORT), (char *)b.data,
		b.len, &c->a, &peer)) {
		ocapn_buffer_release(&b, &c->a);
		c->reported = false;
		refuse(c, "out of memory");
		return;
	}
	ocapn_buffer_release(&b, &c->a);
	c->base.peer = peer;
	ocapn_netlayer_emit_accept(&c->nl->base, &c->base);
}

static void
deliver(struct shm_conn *c, struct ocapn__shm_msg *m)
{
	c->cur = *m;
	c->cur_live = true;
	c->cur_held = false;
	c->expect = false; /* something came back */
	/* A copied message (reassembled, or copied out at the pin caps) was
	 * acked inside the receive: tell a sender blocked on those acks now,
	 * so that it refills the buffer while this message is delivered. */
	if (!m->zero_copy)
		ocapn__shm_flush(c->ch);
	ocapn_netlayer_emit_message(&c->base, m->data, m->len);
	c->cur_live = false;
	if (c->state == SC_CLOSED)
		return; /* reset inside: the free releases everything */
	if (!c->cur_held)
		ocapn__shm_release(c->ch, m);
}

static void
conn_read(struct shm_conn *c)
{
	size_t bytes = 0;
	c->more = false;
	for (int k = 0; k < RECV_BUDGET && bytes < RECV_BYTES; k++) {
		if (c->state != SC_OPEN && c->state != SC_CLOSING)
			return;
		struct ocapn__shm_msg m;
		int r = ocapn__shm_recv(c->ch, &m);
		if (r == OCAPN_E_AGAIN)
			return;
		if (r == OCAPN_OK) {
			bytes += m.len;
			if (c->state == SC_CLOSING)
				ocapn__shm_release(c->ch, &m); /* draining */
			else
				deliver(c, &m);
			continue;
		}
		channel_failed(c);
		return;
	}
	c->more = true;
}

static void
conn_run(struct shm_conn *c, unsigned ready)
{
	if (c->state == SC_CLOSED || c->state == SC_DIALING)
		return;
	if (ocapn__shm_progress(c->ch, ready) != OCAPN_OK) {
		channel_failed(c);
		return;
	}
	if (c->state == SC_HANDSHAKE) {
		if (ocapn__shm_state(c->ch) != OCAPN__SHM_READY) {
			conn_settle(c);
			return;
		}
		conn_open(c);
		if (c->state != SC_OPEN)
			return;
	}
	conn_read(c);
	if (c->state == SC_CLOSED)
		return;
	if (c->blocked && c->state == SC_OPEN) {
		/* acks may have made room: let the handler try again */
		c->blocked = false;
		ocapn_netlayer_emit_drain(&c->base);
		if (c->state == SC_CLOSED)
			return;
	}
	conn_settle(c);
}

/*
 * Decide how the connection waits: on the work list (more to do now, or
 * spinning for a reply) or armed, so that the peer rings the doorbell for
 * anything new and the loop may sleep.
 */
static void
conn_settle(struct shm_conn *c)
{
	if (c->state == SC_CLOSED || c->state == SC_DIALING)
		return;
	update_polls(c);
	if (c->state == SC_CLOSED)
		return;
	if (c->more) {
		/* the acks of this run; the rest follows after the turns */
		ocapn__shm_flush(c->ch);
		work_del(c);
		more_add(c);
		return;
	}
	if (c->need_run) {
		kick(c);
		return;
	}
	if (c->expect && c->state == SC_OPEN && c->nl && c->nl->spin_max) {
		work_add(c);
		return;
	}
	if (!ocapn__shm_arm(c->ch)) {
		kick(c);
		return;
	}
	work_del(c);
}

/* ---- authentication hook ------------------------------------------- */

static int
auth_start(void *user, ocapn__shm_conn *ch)
{
	struct shm_conn *c = user;
	uint8_t hello[OCAPN__SHM_HELLO_LEN];
	ocapn__shm_auth_hello(&c->auth, hello);
	return ocapn__shm_auth_send(ch, hello, sizeof(hello));
}

static int
auth_recv(void *user, ocapn__shm_conn *ch, const uint8_t *msg, size_t len,
    bool *done)
{
	struct shm_conn *c = user;
	uint8_t proof[OCAPN__SHM_PROOF_LEN];
	size_t n;
	int rc = ocapn__shm_auth_input(&c->auth, msg, len, proof, &n);
	if (rc)
		return rc;
	if (n && (rc = ocapn__shm_auth_send(ch, proof, n)) != OCAPN_OK)
		return rc;
	*done = c->auth.state == OCAPN__SHM_AUTH_DONE;
	return OCAPN_OK;
}

/* ---- establishing -------------------------------------------------- */

static void
start_channel(struct shm_conn *c, ocapn__shm_conn *ch)
{
	c->ch = ch;
	c->state = SC_HANDSHAKE;
	struct pollfd pfd[2];
	int n = ocapn__shm_pollfds(ch, pfd);
	c->ctl_fd = n > 0 ? pfd[0].fd : -1;
	uv_timer_start(&c->timer, timer_cb, HANDSHAKE_MS, 0);
	conn_run(c, 0);
}

static struct ocapn__shm_params
conn_params(struct shm_conn *c)
{
	struct ocapn__shm_params p = c->nl->params;
	p.auth = &c->auth_ops;
	p.defer_rings = true; /* flushed by idle_cb and by arming */
	return p;
}

static void
dial(struct shm_conn *c)
{
	struct shm_nl *nl = c->nl;
	struct ocapn__shm_params p = conn_params(c);
	ocapn__shm_conn *ch;
	int rc = ocapn__shm_connect(c->path, &p, &nl->a, &ch);
	if (rc == OCAPN_OK) {
		start_channel(c, ch);
		return;
	}
	if (rc == OCAPN_E_AGAIN && uv_now(nl->loop) < c->deadline) {
		uv_timer_start(&c->timer, timer_cb, DIAL_RETRY_MS, 0);
		return;
	}
	char why[200];
	snprintf(why, sizeof(why), "cannot connect: %s",
	    rc == OCAPN_E_AGAIN ? "the listener stayed busy" :
	    ocapn_strerror(rc));
	fail_early(c, rc == OCAPN_E_AGAIN ? OCAPN_E_TIMEDOUT : rc, why);
}

static void
timer_cb(uv_timer_t *t)
{
	struct shm_conn *c = t->data;
	switch (c->state) {
	case SC_DIALING:
		dial(c);
		break;
	case SC_HANDSHAKE:
		fail_early(c, OCAPN_E_TIMEDOUT, c->base.outbound ?
		    "cannot connect: handshake timed out" :
		    "handshake timed out");
		break;
	case SC_CLOSING:
		close_now(c, OCAPN_OK, "closed (the peer did not finish)");
		break;
	default:
		break;
	}
}

/* Accept one pending connection; false when none was pending. */
static bool
accept_one(struct shm_nl *nl)
{
	int fd = accept4(ocapn__shm_listener_fd(nl->listener), NULL, NULL,
	    SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0)
		return errno == ECONNABORTED || errno == EINTR;
	if (nl->nhandshakes >= MAX_HANDSHAKES) {
		close(fd);
		nl->refused++;
		snprintf(nl->refused_reason, sizeof(nl->refused_reason),
		    "too many connections authenticating");
		return true;
	}
	struct shm_conn *c = conn_new(nl, false, NULL);
	if (!c) {
		close(fd);
		return true;
	}
	nl->nhandshakes++;
	c->state = SC_HANDSHAKE;
	ocapn__shm_auth_init(&c->auth, &nl->key, false, NULL, NULL);
	struct ocapn__shm_params p = conn_params(c);
	ocapn__shm_conn *ch;
	int rc = ocapn__shm_conn_from_socket(fd, false, &p, &nl->a, &ch);
	if (rc) {
		refuse(c, "cannot set up the channel");
		return true;
	}
	start_channel(c, ch);
	return true;
}

static void
listen_cb(uv_poll_t *h, int status, int events)
{
	struct shm_nl *nl = ((struct nl_handle *)h->data)->nl;
	(void)events;
	if (!nl || status < 0 || !nl->listener)
		return;
	/* bounded: a flood of connects cannot hold the loop */
	for (int k = 0; k < 16 && !nl->stopping; k++)
		if (!accept_one(nl))
			break;
}

/* ------------------------------------------------------------------ */
/* Operations                                                           */
/* ------------------------------------------------------------------ */

/* The key a designator names: 52 lowercase base32 characters, the one
 * spelling of 32 bytes. */
static bool
designator_key(const char *d, size_t n, uint8_t key[OCAPN__PK_LEN])
{
	if (n != B32_LEN)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((d[i] >= 'a' && d[i] <= 'z') ||
			(d[i] >= '2' && d[i] <= '7')))
			return false;
	ocapn_buffer b;
	ocapn_buffer_init(&b);
	bool ok = ocapn_base32_decode(d, n, &b, NULL) == 0 &&
	    b.len == OCAPN__PK_LEN;
	if (ok)
		memcpy(key, b.data, OCAPN__PK_LEN);
	ocapn_buffer_release(&b, NULL);
	return ok;
}

static int
shm_connect(ocapn_netlayer *base, const ocapn_locator *peer,
    ocapn_conn **out)
{
	struct shm_nl *nl = (struct shm_nl *)base;
	if (nl->stopping)
		return OCAPN_E_CLOSED;
	size_t tl, dl, pl;
	const char *t = ocapn_locator_transport(peer, &tl);
	const char *d = ocapn_locator_designator(peer, &dl);
	uint8_t key[OCAPN__PK_LEN];
	if (tl != strlen(TRANSPORT) || memcmp(t, TRANSPORT, tl) ||
	    !designator_key(d, dl, key))
		return OCAPN_E_INVAL;
	const char *path = ocapn_locator_hint(peer, "path", &pl);
	if (!path)
		return OCAPN_E_NOTFOUND;
	if (pl == 0 || pl >= sizeof(sun_path_t) || memchr(path, '\0', pl))
		return OCAPN_E_INVAL;
	struct shm_conn *c = conn_new(nl, true, peer);
	if (!c)
		return OCAPN_E_NOMEM;
	memcpy(c->path, path, pl);
	c->path[pl] = '\0';
	memcpy(c->peer_key, key, sizeof(key));
	ocapn__shm_auth_init(&c->auth, &nl->key, true, key, NULL);
	c->reported = true;
	c->state = SC_DIALING;
	c->deadline = uv_now(nl->loop) + DIAL_MS;
	/* the first try from the loop: nothing is reported from inside */
	uv_timer_start(&c->timer, timer_cb, 0, 0);
	*out = &c->base;
	return OCAPN_OK;
}

static int
shm_send(ocapn_conn *base, const ocapn_iov *iov, size_t niov)
{
	struct shm_conn *c = (struct shm_conn *)base;
	if (c->state != SC_OPEN)
		return OCAPN_E_CLOSED;
	if (niov > MAX_IOV)
		return OCAPN_E_INVAL;
	struct ocapn__shm_iov v[MAX_IOV];
	size_t total = 0;
	for (size_t i = 0; i < niov; i++) {
		v[i].base = iov[i].base;
		v[i].len = iov[i].len;
		total += iov[i].len;
	}
	if (total == 0)
		return OCAPN_OK;
	int rc = ocapn__shm_sendv(c->ch, v, niov);
	switch (rc) {
	case OCAPN_OK:
	case OCAPN_E_AGAIN:
		/* on AGAIN, acks will ring (or the spin sees them): on_drain */
		if (rc == OCAPN_E_AGAIN)
			c->blocked = true;
		c->expect = true;
		/* The doorbell waits for ops->flush or the idle callback
		 * (one ring for every message of this loop iteration);
		 * the idle callback then spins for the reply or arms.  A
		 * large message rings at once: the peer starts on it while
		 * we copy the next, and a ring is cheap next to the copy. */
		if (total >= FLUSH_BYTES)
			ocapn__shm_flush(c->ch);
		work_add(c);
		return rc;
	case OCAPN_E_LIMIT:
		/* the session would miss a message: end the connection */
		ocapn__shm_close(c->ch);
		close_now(c, OCAPN_E_LIMIT, "message larger than the peer "
		    "accepts");
		return OCAPN_E_LIMIT;
	case OCAPN_E_INVAL:
		/* another message while a fragmented one was half sent */
		ocapn__shm_close(c->ch);
		close_now(c, OCAPN_E_PROTOCOL, "a message was abandoned half "
		    "sent");
		return OCAPN_E_CLOSED;
	default:
		/* closed or failed: conn_run() reports it */
		kick(c);
		return rc;
	}
}

/* The runtime sent what it had: ring the peer now (one ring for the
 * burst) rather than from the idle callback after the poll phase. */
static void
shm_flush(ocapn_conn *base)
{
	struct shm_conn *c = (struct shm_conn *)base;
	if (!c->ch || (c->state != SC_OPEN && c->state != SC_CLOSING))
		return;
	ocapn__shm_flush(c->ch);
	/* Not spinning: arm now, so the loop may sleep in this iteration's
	 * poll instead of going round once more through the idle callback. */
	if (c->nl && !c->nl->spin_max)
		conn_settle(c);
}

static size_t
shm_pending(const ocapn_conn *c)
{
	(void)c;
	return 0; /* a send is either in the rings or refused */
}

static int
shm_hold(ocapn_conn *base, const uint8_t *msg)
{
	struct shm_conn *c = (struct shm_conn *)base;
	if (!c->cur_live || c->cur_held || msg != c->cur.data)
		return OCAPN_E_INVAL;
	if (c->nheld == c->heldcap &&
	    ocapn__grow(&c->a, (void **)&c->held, &c->heldcap, c->nheld + 1,
		sizeof(*c->held)))
		return OCAPN_E_NOMEM;
	c->held[c->nheld++].m = c->cur;
	c->cur_held = true;
	return OCAPN_OK;
}

static void
shm_release(ocapn_conn *base, const uint8_t *msg)
{
	struct shm_conn *c = (struct shm_conn *)base;
	for (size_t i = 0; i < c->nheld; i++) {
		if (c->held[i].m.data != msg)
			continue;
		struct ocapn__shm_msg m = c->held[i].m;
		c->held[i] = c->held[--c->nheld];
		if (c->state != SC_CLOSED) {
			ocapn__shm_release(c->ch, &m);
			work_add(c); /* re-arm after the ack */
		}
		return;
	}
}

static bool
shm_shared(const ocapn_conn *base, const uint8_t *msg)
{
	const struct shm_conn *c = (const struct shm_conn *)base;
	/* reassembled messages are private copies: no second copy needed */
	return !(c->cur_live && msg == c->cur.data && !c->cur.zero_copy);
}

static void
shm_close(ocapn_conn *base)
{
	struct shm_conn *c = (struct shm_conn *)base;
	switch (c->state) {
	case SC_DIALING:
	case SC_HANDSHAKE:
		/* the handler gave up on it: no on_connect; on_close
		 * follows from the loop */
		if (c->ch)
			ocapn__shm_close(c->ch);
		close_now(c, OCAPN_E_CLOSED, "closed before connecting");
		return;
	case SC_OPEN:
		c->state = SC_CLOSING;
		set_reason(c, OCAPN_OK, "closed");
		ocapn__shm_close(c->ch);
		uv_timer_start(&c->timer, timer_cb, DRAIN_MS, 0);
		kick(c);
		return;
	default:
		return;
	}
}

static void
shm_reset(ocapn_conn *base)
{
	struct shm_conn *c = (struct shm_conn *)base;
	close_now(c, OCAPN_OK, "reset");
}

static void
nl_handle_closed(uv_handle_t *h)
{
	struct nl_handle *w = h->data;
	struct shm_nl *nl = w->nl;
	ocapn_allocator a = w->a;
	if (nl) {
		if (w == nl->lpoll) {
			ocapn__shm_listener_close(nl->listener);
			nl->listener = NULL;
			nl->lpoll = NULL;
		} else if (w == nl->cont) {
			nl->cont = NULL;
		} else {
			nl->idle = NULL;
		}
		nl->handles--;
	}
	ocapn__free(&a, w, sizeof(*w));
	if (nl)
		maybe_stopped(nl);
}

static void
maybe_stopped(struct shm_nl *nl)
{
	if (!nl->stopping || nl->stopped || nl->nconns)
		return;
	/* The idle handle serves closing connections: it goes last. */
	if (nl->idle && !uv_is_closing(&nl->idle->u.h)) {
		nl->idle_on = false;
		uv_close(&nl->idle->u.h, nl_handle_closed);
	}
	if (nl->cont && !uv_is_closing(&nl->cont->u.h))
		uv_close(&nl->cont->u.h, nl_handle_closed);
	if (nl->handles == 0) {
		nl->stopped = true;
		ocapn_netlayer_emit_stopped(&nl->base);
	}
}

static void
shm_stop(ocapn_netlayer *base)
{
	struct shm_nl *nl = (struct shm_nl *)base;
	if (nl->stopping)
		return;
	nl->stopping = true;
	if (nl->lpoll)
		uv_close(&nl->lpoll->u.h, nl_handle_closed);
	for (struct shm_conn *c = nl->conns, *n; c; c = n) {
		n = c->next;
		if (!c->reported)
			close_now(c, OCAPN_E_CLOSED, "netlayer stopped");
		else
			shm_close(&c->base);
	}
	maybe_stopped(nl);
}

static void
shm_free(ocapn_netlayer *base)
{
	struct shm_nl *nl = (struct shm_nl *)base;
	if (!nl)
		return;
	/* Freed before it stopped (e.g. never run): detach what is still
	 * open; its callbacks then free only their own memory. */
	for (struct shm_conn *c = nl->conns; c; c = c->next) {
		c->nl = NULL;
		c->pprev = NULL;
		c->reported = false;
		c->wpprev = NULL;
		c->mpprev = NULL;
		close_now(c, OCAPN_E_CLOSED, "netlayer freed");
	}
	if (nl->lpoll) {
		nl->lpoll->nl = NULL;
		if (!uv_is_closing(&nl->lpoll->u.h))
			uv_close(&nl->lpoll->u.h, nl_handle_closed);
	}
	ocapn__shm_listener_close(nl->listener);
	if (nl->idle) {
		nl->idle->nl = NULL;
		if (!uv_is_closing(&nl->idle->u.h))
			uv_close(&nl->idle->u.h, nl_handle_closed);
	}
	if (nl->cont) {
		nl->cont->nl = NULL;
		if (!uv_is_closing(&nl->cont->u.h))
			uv_close(&nl->cont->u.h, nl_handle_closed);
	}
	ocapn_locator_free(nl->base.locator);
	ocapn__keypair_wipe(&nl->key);
	ocapn_allocator a = nl->a;
	ocapn__free(&a, nl, sizeof(*nl));
}

static const ocapn_netlayer_ops shm_ops = {
    .transport = TRANSPORT,
    .flags = OCAPN_NETLAYER_SHARED | OCAPN_NETLAYER_AUTHENTICATED,
    .connect = shm_connect,
    .send = shm_send,
    .pending = shm_pending,
    .hold = shm_hold,
    .release = shm_release,
    .close = shm_close,
    .reset = shm_reset,
    .stop = shm_stop,
    .free = shm_free,
    .shared = shm_shared,
    .flush = shm_flush,
};

/* ------------------------------------------------------------------ */
/* Construction                                                         */
/* ------------------------------------------------------------------ */

OCAPN_API int
ocapn_shm_netlayer_new(uv_loop_t *loop, const char *dir, const uint8_t *seed,
    const ocapn_allocator *alloc, ocapn_netlayer **out)
{
	if (!loop || !out)
		return OCAPN_E_INVAL;
	*out = NULL;
	ocapn_allocator a;
	ocapn__alloc_init(&a, alloc);
	struct shm_nl *nl = ocapn__calloc(&a, sizeof(*nl));
	if (!nl)
		return OCAPN_E_NOMEM;
	nl->a = a;
	nl->loop = loop;
	nl->base.ops = &shm_ops;
	nl->spin_max = DEFAULT_SPIN_NS;
	ocapn__shm_params_default(&nl->params);
	int rc = seed ? ocapn__keypair_from_seed(&nl->key, seed) :
	    ocapn__keypair_generate(&nl->key);
	ocapn_buffer b;
	ocapn_buffer_init(&b);
	if (!rc)
		rc = ocapn_base32_encode(nl->key.pk, OCAPN__PK_LEN, &b, &a);
	if (!rc) {
		memcpy(nl->designator, b.data, B32_LEN);
		nl->designator[B32_LEN] = '\0';
	}
	ocapn_buffer_release(&b, &a);
	ocapn_locator *loc = NULL;
	if (!rc)
		rc = ocapn_locator_new(TRANSPORT, strlen(TRANSPORT),
		    nl->designator, B32_LEN, &a, &loc);
	if (!rc && dir) {
		/* one socket per designator: several netlayers may share
		 * a directory */
		if ((size_t)snprintf(nl->path, sizeof(nl->path), "%s/%.16s.sock",
			dir, nl->designator) >= sizeof(nl->path))
			rc = OCAPN_E_INVAL;
		if (!rc)
			rc = ocapn__shm_listen(nl->path, &nl->params, &a,
			    &nl->listener);
		if (rc == OCAPN_E_EXISTS &&
		    (rc = ocapn__unix_clear_stale(nl->path,
			 SOCK_SEQPACKET)) == 0)
			rc = ocapn__shm_listen(nl->path, &nl->params, &a,
			    &nl->listener);
		if (!rc)
			rc = ocapn_locator_set_hint(loc, "path", 4, nl->path,
			    strlen(nl->path));
	}
	if (!rc && (!(nl->idle = ocapn__calloc(&a, sizeof(*nl->idle))) ||
		!(nl->cont = ocapn__calloc(&a, sizeof(*nl->cont)))))
		rc = OCAPN_E_NOMEM;
	if (!rc && nl->listener &&
	    !(nl->lpoll = ocapn__calloc(&a, sizeof(*nl->lpoll))))
		rc = OCAPN_E_NOMEM;
	if (!rc && nl->lpoll &&
	    uv_poll_init(loop, &nl->lpoll->u.poll,
		ocapn__shm_listener_fd(nl->listener)) != 0)
		rc = OCAPN_E_IO;
	if (!rc && uv_async_init(loop, &nl->cont->u.async, cont_cb) != 0)
		rc = OCAPN_E_IO;
	if (rc) {
		if (nl->lpoll && nl->lpoll->u.h.loop) {
			/* initialised: only its close callback may free it */
			nl->lpoll->a = a;
			nl->lpoll->u.h.data = nl->lpoll;
			uv_close(&nl->lpoll->u.h, nl_handle_closed);
			nl->lpoll = NULL;
		}
		ocapn__free(&a, nl->lpoll, sizeof(*nl->lpoll));
		ocapn__free(&a, nl->idle, sizeof(*nl->idle));
		ocapn__free(&a, nl->cont, sizeof(*nl->cont));
		ocapn__shm_listener_close(nl->listener);
		ocapn_locator_free(loc);
		ocapn__keypair_wipe(&nl->key);
		ocapn__free(&a, nl, sizeof(*nl));
		return rc;
	}
	nl->base.locator = loc;
	uv_idle_init(loop, &nl->idle->u.idle);
	nl->idle->a = a;
	nl->idle->nl = nl;
	nl->idle->u.h.data = nl->idle;
	nl->cont->a = a;
	nl->cont->nl = nl;
	nl->cont->u.h.data = nl->cont;
	uv_unref(&nl->cont->u.h); /* the connections keep the loop alive */
	nl->handles = 2;
	if (nl->lpoll) {
		nl->lpoll->a = a;
		nl->lpoll->nl = nl;
		nl->lpoll->u.h.data = nl->lpoll;
		uv_poll_start(&nl->lpoll->u.poll, UV_READABLE, listen_cb);
		nl->handles++;
	}
	*out = &nl->base;
	return OCAPN_OK;
}

OCAPN_API int
ocapn_shm_netlayer_set_spin(ocapn_netlayer *base, uint64_t max_ns)
{
	if (!base || base->ops != &shm_ops)
		return OCAPN_E_INVAL;
	struct shm_nl *nl = (struct shm_nl *)base;
	nl->spin_max = max_ns;
	nl->spin_cur = 0;
	return OCAPN_OK;
}

OCAPN_API int
ocapn_shm_netlayer_set_buffer(ocapn_netlayer *base, size_t bytes)
{
	if (!base || base->ops != &shm_ops || bytes < 4096 ||
	    bytes > ((size_t)1 << 30) || bytes % 64)
		return OCAPN_E_INVAL;
	struct shm_nl *nl = (struct shm_nl *)base;
	nl->params.bulk_size = bytes;
	nl->params.max_packet = (uint32_t)(bytes / 2);
	return OCAPN_OK;
}

uint64_t
ocapn__shm_nl_refused(const ocapn_netlayer *base, const char **last)
{
	const struct shm_nl *nl = (const struct shm_nl *)base;
	if (last)
		*last = nl->refused_reason;
	return nl->refused;
}

void
ocapn__shm_nl_set_params(ocapn_netlayer *base,
    const struct ocapn__shm_params *p)
{
	struct shm_nl *nl = (struct shm_nl *)base;
	nl->params = *p;
	nl->params.auth = NULL;
}

void
ocapn__shm_nl_spin_stats(const ocapn_netlayer *base, uint64_t *spins,
    uint64_t *hits)
{
	const struct shm_nl *nl = (const struct shm_nl *)base;
	*spins = nl->spins;
	*hits = nl->spin_hits;
}
