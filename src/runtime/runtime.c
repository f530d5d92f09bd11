/*
 * The runtime: a vat and its sessions on a libuv loop.
 *
 * Scheduling: a prepare handle (unreferenced, so it never keeps the loop
 * alive by itself) runs once per loop iteration, before the loop polls: it
 * runs pending turns (a bounded batch) and then writes the output of every
 * session marked dirty, so everything that arrived in one iteration is
 * answered with one write per connection.  An idle handle is started while
 * turns or output are pending, which keeps the loop from blocking.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <string.h>

#include <ocapn/runtime.h>

#include "../util/util.h"

#define TURN_BUDGET 4096
#define PEERS_CHECK_MS 3000

struct rt_conn {
	ocapn_runtime *rt;
	ocapn_conn *c;       /* NULL while reconnecting */
	ocapn_session *s;
	struct rt_conn *next, **pprev;
	struct rt_conn *dnext; /* dirty list */
	bool dirty, connected, blocked, closing, retried;
};

struct nl_entry {
	ocapn_netlayer *nl;
	bool stopped;
};

struct peer_dialect {
	char *key; /* transport '\n' designator */
	ocapn_dialect d;
};

struct ocapn_runtime {
	ocapn_allocator a;
	uv_loop_t *loop;
	uv_loop_t own_loop;
	bool owns_loop, owns_vat;
	ocapn_vat *vat;
	uv_prepare_t prepare;
	uv_idle_t idle;
	uv_timer_t peers_timer; /* safety net: ocapn_vat_check_peers() */
	bool idle_on;
	struct nl_entry *nls;
	size_t nnl, nlcap;
	struct rt_conn *conns;
	size_t nconns;
	struct rt_conn *dirty;
	ocapn_dialect dialect;
	struct peer_dialect *dialects;
	size_t ndialects, dcap;
	bool closing;
	unsigned handles_open;
	ocapn_trace_fn trace;
	void *trace_user;
	void (*done)(void *);
	void *done_user;
};

static void wake(ocapn_runtime *rt);

/* ------------------------------------------------------------------ */
/* Dirty tracking and flushing                                          */
/* ------------------------------------------------------------------ */

static void
mark_dirty(struct rt_conn *rc)
{
	if (rc->dirty)
		return;
	rc->dirty = true;
	rc->dnext = rc->rt->dirty;
	rc->rt->dirty = rc;
	wake(rc->rt);
}

static void
output_hook(void *user, ocapn_session *s)
{
	(void)s;
	mark_dirty(user);
}

static void
vat_wakeup(void *user, ocapn_vat *vat)
{
	(void)vat;
	wake(user);
}

static void rc_free(struct rt_conn *rc);

/* Everything for now was handed over: let the netlayer wake its peer. */
static void
conn_flush(ocapn_conn *c)
{
	ocapn_netlayer *nl = ocapn_conn_netlayer(c);
	if (nl->ops->flush)
		nl->ops->flush(c);
}

/* Write what the session has; close the transport once an aborted
 * session has said everything. */
static void
flush(struct rt_conn *rc)
{
	if (!rc->c || !rc->connected || rc->blocked)
		return;
	ocapn_netlayer *nl = ocapn_conn_netlayer(rc->c);
	bool stream = (nl->ops->flags & OCAPN_NETLAYER_STREAM) != 0 &&
	    !rc->rt->trace; /* tracing needs message boundaries */
	bool sent = false;
	for (;;) {
		const uint8_t *p;
		size_t n;
		if (stream)
			ocapn_session_output(rc->s, &p, &n);
		else
			ocapn_session_next_message(rc->s, &p, &n);
		if (n == 0)
			break;
		ocapn_iov iov = {p, n};
		int r = ocapn_conn_send(rc->c, &iov, 1);
		if (r == OCAPN_OK && rc->rt->trace)
			rc->rt->trace(rc->rt->trace_user, rc->s, true, p, n);
		if (r == OCAPN_E_AGAIN) {
			rc->blocked = true;
			if (sent)
				conn_flush(rc->c);
			return;
		}
		if (r) {
			/* the transport is going away; on_close follows */
			ocapn_session_consume(rc->s, n);
			return;
		}
		ocapn_session_consume(rc->s, n);
		sent = true;
	}
	if (sent)
		conn_flush(rc->c);
	if (ocapn_session_get_state(rc->s) == OCAPN_SESSION_ABORTED &&
	    !rc->closing) {
		rc->closing = true;
		ocapn_conn_close(rc->c);
	}
}

static void handle_events(struct rt_conn *rc);

static void
flush_dirty(ocapn_runtime *rt)
{
	while (rt->dirty) {
		struct rt_conn *rc = rt->dirty;
		rt->dirty = rc->dnext;
		rc->dirty = false;
		handle_events(rc);
		flush(rc);
	}
}

static void
prepare_cb(uv_prepare_t *h)
{
	ocapn_runtime *rt = h->data;
	ocapn_vat_run(rt->vat, TURN_BUDGET);
	flush_dirty(rt);
	if (ocapn_vat_idle(rt->vat) && !rt->dirty && rt->idle_on) {
		uv_idle_stop(&rt->idle);
		rt->idle_on = false;
	}
}

static void
peers_cb(uv_timer_t *t)
{
	ocapn_runtime *rt = t->data;
	if (!rt->closing && ocapn_vat_check_peers(rt->vat))
		wake(rt);
}

static void
idle_cb(uv_idle_t *h)
{
	(void)h; /* keeps the loop from blocking; work is in prepare_cb */
}

static void
wake(ocapn_runtime *rt)
{
	if (!rt->idle_on && !rt->closing) {
		uv_idle_start(&rt->idle, idle_cb);
		rt->idle_on = true;
	}
}

/* ------------------------------------------------------------------ */
/* Dialect memory                                                       */
/* ------------------------------------------------------------------ */

static char *
peer_key(ocapn_runtime *rt, const ocapn_locator *l)
{
	size_t tl, dl;
	const char *t = ocapn_locator_transport(l, &tl);
	const char *d = ocapn_locator_designator(l, &dl);
	char *k = ocapn__malloc(&rt->a, tl + dl + 2);
	if (!k)
		return NULL;
	memcpy(k, t, tl);
	k[tl] = '\n';
	memcpy(k + tl + 1, d, dl);
	k[tl + 1 + dl] = '\0';
	return k;
}

/* Dialect for a new outbound session: what this peer taught us, else a
 * fixed choice, else whatever the last established session spoke. */
static ocapn_dialect
dialect_for(ocapn_runtime *rt, const ocapn_locator *peer)
{
	char *k = peer_key(rt, peer);
	ocapn_dialect d = rt->dialect ? rt->dialect
				      : ocapn_vat_recent_dialect(rt->vat);
	for (size_t i = 0; k && i < rt->ndialects; i++)
		if (!strcmp(rt->dialects[i].key, k))
			d = rt->dialects[i].d;
	if (k)
		ocapn__free(&rt->a, k, strlen(k) + 1);
	return d;
}

static void
remember_dialect(ocapn_runtime *rt, const ocapn_locator *peer,
    ocapn_dialect d)
{
	char *k = peer_key(rt, peer);
	if (!k)
		return;
	for (size_t i = 0; i < rt->ndialects; i++)
		if (!strcmp(rt->dialects[i].key, k)) {
			rt->dialects[i].d = d;
			ocapn__free(&rt->a, k, strlen(k) + 1);
			return;
		}
	if (ocapn__grow(&rt->a, (void **)&rt->dialects, &rt->dcap,
		rt->ndialects + 1, sizeof(*rt->dialects))) {
		ocapn__free(&rt->a, k, strlen(k) + 1);
		return;
	}
	rt->dialects[rt->ndialects].key = k;
	rt->dialects[rt->ndialects].d = d;
	rt->ndialects++;
}

/* ------------------------------------------------------------------ */
/* Connections                                                          */
/* ------------------------------------------------------------------ */

static struct rt_conn *
rc_new(ocapn_runtime *rt, ocapn_conn *c, ocapn_session *s)
{
	struct rt_conn *rc = ocapn__calloc(&rt->a, sizeof(*rc));
	if (!rc)
		return NULL;
	rc->rt = rt;
	rc->c = c;
	rc->s = s;
	rc->next = rt->conns;
	if (rt->conns)
		rt->conns->pprev = &rc->next;
	rc->pprev = &rt->conns;
	rt->conns = rc;
	rt->nconns++;
	if (c)
		ocapn_conn_set_user(c, rc);
	ocapn_session_set_user(s, rc);
	ocapn_session_set_output_hook(s, output_hook, rc);
	return rc;
}

static void
rc_free(struct rt_conn *rc)
{
	ocapn_runtime *rt = rc->rt;
	if (rc->dirty) {
		struct rt_conn **pp = &rt->dirty;
		while (*pp != rc)
			pp = &(*pp)->dnext;
		*pp = rc->dnext;
	}
	*rc->pprev = rc->next;
	if (rc->next)
		rc->next->pprev = rc->pprev;
	rt->nconns--;
	ocapn_session_free(rc->s);
	ocapn__free(&rt->a, rc, sizeof(*rc));
}

static ocapn_netlayer *
netlayer_for(ocapn_runtime *rt, const char *transport, size_t tl)
{
	for (size_t i = 0; i < rt->nnl; i++) {
		const char *t = ocapn_netlayer_transport(rt->nls[i].nl);
		if (strlen(t) == tl && !memcmp(t, transport, tl))
			return rt->nls[i].nl;
	}
	return NULL;
}

OCAPN_API ocapn_netlayer *
ocapn_runtime_netlayer(ocapn_runtime *rt, const char *transport)
{
	return netlayer_for(rt, transport, strlen(transport));
}

static void
reconnect(struct rt_conn *rc)
{
	ocapn_runtime *rt = rc->rt;
	const ocapn_locator *peer = NULL;
	/* the peer we dialled: kept by the session */
	peer = ocapn_session_remote(rc->s);
	size_t tl;
	const char *t = peer ? ocapn_locator_transport(peer, &tl) : NULL;
	ocapn_netlayer *nl = t ? netlayer_for(rt, t, tl) : NULL;
	ocapn_conn *c;
	if (!nl || ocapn_netlayer_connect(nl, peer, &c)) {
		ocapn_session_abort(rc->s, "cannot reconnect to the peer");
		return;
	}
	rc->c = c;
	rc->connected = false;
	rc->blocked = false;
	rc->closing = false;
	ocapn_conn_set_user(c, rc);
}

static void
handle_events(struct rt_conn *rc)
{
	ocapn_session_event_kind ev;
	while ((ev = ocapn_session_next_event(rc->s)) !=
	    OCAPN_SESSION_EV_NONE) {
		if (ev == OCAPN_SESSION_EV_VERSION && !rc->retried) {
			/* Goblins (or another peer) speaks another version:
			 * start over in it on a new transport. */
			const char *v = ocapn_session_peer_version(rc->s);
			ocapn_dialect d = ocapn_dialect_for_version(v,
			    strlen(v));
			const ocapn_locator *peer = ocapn_session_remote(rc->s);
			if (d && peer) {
				rc->retried = true;
				remember_dialect(rc->rt, peer, d);
				if (ocapn_session_restart(rc->s, d) == 0) {
					if (rc->c) {
						ocapn_conn *old = rc->c;
						rc->c = NULL;
						ocapn_conn_set_user(old, NULL);
						ocapn_conn_reset(old);
					}
					reconnect(rc);
					continue;
				}
			}
			ocapn_session_abort(rc->s,
			    "CapTP version is incompatible");
		}
		if (ev == OCAPN_SESSION_EV_VERSION)
			ocapn_session_abort(rc->s,
			    "CapTP version is incompatible");
	}
}

static int
connector(ocapn_vat *vat, const ocapn_locator *peer, void *user,
    ocapn_session **out)
{
	ocapn_runtime *rt = user;
	size_t tl;
	const char *t = ocapn_locator_transport(peer, &tl);
	ocapn_netlayer *nl = netlayer_for(rt, t, tl);
	if (!nl || rt->closing)
		return OCAPN_E_UNSUPPORTED;
	ocapn_session *s;
	int r = ocapn_session_new(vat, OCAPN_ROLE_INITIATOR,
	    ocapn_netlayer_locator(nl), dialect_for(rt, peer), &s);
	if (r)
		return r;
	/* Started (hello written) when the transport connects: the
	 * netlayer's locator may be completed by then (unix-domain-socket
	 * adds its introduction server hint once registered). */
	if ((r = ocapn_session_set_remote(s, peer))) {
		ocapn_session_free(s);
		return r;
	}
	/* The netlayer proves the dialled designator before on_connect. */
	if ((nl->ops->flags & OCAPN_NETLAYER_AUTHENTICATED) &&
	    (r = ocapn_session_expect_peer(s, peer))) {
		ocapn_session_free(s);
		return r;
	}
	ocapn_conn *c;
	r = ocapn_netlayer_connect(nl, peer, &c);
	if (r) {
		ocapn_session_free(s);
		return r;
	}
	struct rt_conn *rc = rc_new(rt, c, s);
	if (!rc) {
		ocapn_conn_set_user(c, NULL);
		ocapn_conn_reset(c);
		ocapn_session_free(s);
		return OCAPN_E_NOMEM;
	}
	*out = s;
	return OCAPN_OK;
}

/* ---- netlayer handler --------------------------------------------- */

static void
on_accept(void *user, ocapn_netlayer *nl, ocapn_conn *c)
{
	ocapn_runtime *rt = user;
	ocapn_session *s;
	ocapn_dialect d = rt->dialect;
	if (rt->closing ||
	    ocapn_session_new(rt->vat, OCAPN_ROLE_ACCEPTOR,
		ocapn_netlayer_locator(nl), d, &s)) {
		ocapn_conn_reset(c);
		return;
	}
	if ((nl->ops->flags & OCAPN_NETLAYER_AUTHENTICATED) &&
	    (!ocapn_conn_peer(c) ||
		ocapn_session_expect_peer(s, ocapn_conn_peer(c)))) {
		ocapn_session_free(s);
		ocapn_conn_reset(c);
		return;
	}
	struct rt_conn *rc = rc_new(rt, c, s);
	if (!rc) {
		ocapn_session_free(s);
		ocapn_conn_reset(c);
		return;
	}
	rc->connected = true;
	ocapn_session_start(s);
	mark_dirty(rc);
}

static void
on_connect(void *user, ocapn_conn *c, int status)
{
	(void)user;
	struct rt_conn *rc = ocapn_conn_user(c);
	if (!rc)
		return;
	if (status == OCAPN_OK) {
		rc->connected = true;
		if (ocapn_session_get_state(rc->s) == OCAPN_SESSION_HANDSHAKE &&
		    !ocapn_session_started(rc->s)) {
			ocapn_session_set_location(rc->s,
			    ocapn_netlayer_locator(ocapn_conn_netlayer(c)));
			ocapn_session_start(rc->s);
		}
		mark_dirty(rc);
	}
	/* failures: on_close follows and aborts the session */
}

static void
on_message(void *user, ocapn_conn *c, const uint8_t *msg, size_t len)
{
	(void)user;
	struct rt_conn *rc = ocapn_conn_user(c);
	if (!rc)
		return;
	if (rc->rt->trace)
		rc->rt->trace(rc->rt->trace_user, rc->s, false, msg, len);
	const ocapn_netlayer_ops *ops = ocapn_conn_netlayer(c)->ops;
	if ((ops->flags & OCAPN_NETLAYER_SHARED) &&
	    (!ops->shared || ops->shared(c, msg)))
		ocapn_session_feed_shared_message(rc->s, msg, len);
	else
		ocapn_session_feed_message(rc->s, msg, len);
	mark_dirty(rc); /* events, replies, or an abort to send */
}

static void
on_error(void *user, ocapn_conn *c, int status, const char *reason)
{
	(void)user;
	(void)status;
	struct rt_conn *rc = ocapn_conn_user(c);
	if (!rc) {
		ocapn_conn_reset(c);
		return;
	}
	ocapn_session_abort(rc->s, reason);
	mark_dirty(rc);
}

static void
on_drain(void *user, ocapn_conn *c)
{
	(void)user;
	struct rt_conn *rc = ocapn_conn_user(c);
	if (!rc)
		return;
	rc->blocked = false;
	mark_dirty(rc);
}

static void maybe_done(ocapn_runtime *rt);

static void
on_close(void *user, ocapn_conn *c, int status, const char *reason)
{
	ocapn_runtime *rt = user;
	struct rt_conn *rc = ocapn_conn_user(c);
	(void)status;
	if (!rc) {
		maybe_done(rt);
		return;
	}
	rc->c = NULL;
	/* A session waiting for a restart keeps its rt_conn (reconnect()
	 * gave it a new connection). */
	if (status == OCAPN_OK)
		ocapn_session_eof(rc->s);
	else
		ocapn_session_transport_lost(rc->s, reason);
	if (ocapn_session_get_state(rc->s) == OCAPN_SESSION_ABORTED)
		rc_free(rc);
	maybe_done(rt);
}

static void
on_stopped(void *user, ocapn_netlayer *nl)
{
	ocapn_runtime *rt = user;
	for (size_t i = 0; i < rt->nnl; i++)
		if (rt->nls[i].nl == nl)
			rt->nls[i].stopped = true;
	maybe_done(rt);
}

/* ------------------------------------------------------------------ */
/* Public API                                                           */
/* ------------------------------------------------------------------ */

OCAPN_API int
ocapn_runtime_new(uv_loop_t *loop, ocapn_vat *vat,
    const ocapn_allocator *alloc, ocapn_runtime **out)
{
	ocapn_allocator a;
	ocapn__alloc_init(&a, alloc);
	ocapn_runtime *rt = ocapn__calloc(&a, sizeof(*rt));
	if (!rt)
		return OCAPN_E_NOMEM;
	rt->a = a;
	if (!loop) {
		if (uv_loop_init(&rt->own_loop)) {
			ocapn__free(&a, rt, sizeof(*rt));
			return OCAPN_E_IO;
		}
		rt->owns_loop = true;
		loop = &rt->own_loop;
	}
	rt->loop = loop;
	if (!vat) {
		int r = ocapn_vat_new(&a, &vat);
		if (r) {
			if (rt->owns_loop)
				uv_loop_close(&rt->own_loop);
			ocapn__free(&a, rt, sizeof(*rt));
			return r;
		}
		rt->owns_vat = true;
	}
	rt->vat = vat;
	ocapn_vat_set_connector(vat, connector, rt);
	ocapn_vat_set_wakeup(vat, vat_wakeup, rt);
	uv_prepare_init(loop, &rt->prepare);
	rt->prepare.data = rt;
	uv_prepare_start(&rt->prepare, prepare_cb);
	uv_unref((uv_handle_t *)&rt->prepare);
	uv_idle_init(loop, &rt->idle);
	rt->idle.data = rt;
	uv_timer_init(loop, &rt->peers_timer);
	rt->peers_timer.data = rt;
	uv_timer_start(&rt->peers_timer, peers_cb, PEERS_CHECK_MS,
	    PEERS_CHECK_MS);
	uv_unref((uv_handle_t *)&rt->peers_timer);
	rt->handles_open = 3;
	if (!ocapn_vat_idle(vat))
		wake(rt);
	*out = rt;
	return OCAPN_OK;
}

OCAPN_API uv_loop_t *
ocapn_runtime_loop(ocapn_runtime *rt)
{
	return rt->loop;
}

OCAPN_API ocapn_vat *
ocapn_runtime_vat(ocapn_runtime *rt)
{
	return rt->vat;
}

OCAPN_API void
ocapn_runtime_set_dialect(ocapn_runtime *rt, ocapn_dialect d)
{
	rt->dialect = d;
}

OCAPN_API int
ocapn_runtime_add_netlayer(ocapn_runtime *rt, ocapn_netlayer *nl)
{
	if (!nl)
		return OCAPN_E_INVAL;
	if (ocapn__grow(&rt->a, (void **)&rt->nls, &rt->nlcap, rt->nnl + 1,
		sizeof(*rt->nls)))
		return OCAPN_E_NOMEM;
	rt->nls[rt->nnl].nl = nl;
	rt->nls[rt->nnl].stopped = false;
	rt->nnl++;
	ocapn_netlayer_handler h = {
	    .on_accept = on_accept,
	    .on_connect = on_connect,
	    .on_message = on_message,
	    .on_error = on_error,
	    .on_drain = on_drain,
	    .on_close = on_close,
	    .on_stopped = on_stopped,
	    .user = rt,
	};
	ocapn_netlayer_set_handler(nl, &h);
	return OCAPN_OK;
}

OCAPN_API int
ocapn_runtime_run(ocapn_runtime *rt)
{
	return uv_run(rt->loop, UV_RUN_DEFAULT);
}

static void
handle_closed(uv_handle_t *h)
{
	ocapn_runtime *rt = h->data;
	rt->handles_open--;
	if (rt->handles_open == 0 && rt->done) {
		void (*done)(void *) = rt->done;
		rt->done = NULL;
		done(rt->done_user);
	}
}

static void
maybe_done(ocapn_runtime *rt)
{
	if (!rt->closing || rt->conns)
		return;
	for (size_t i = 0; i < rt->nnl; i++)
		if (!rt->nls[i].stopped)
			return;
	if (!uv_is_closing((uv_handle_t *)&rt->prepare)) {
		uv_close((uv_handle_t *)&rt->prepare, handle_closed);
		uv_close((uv_handle_t *)&rt->idle, handle_closed);
		uv_close((uv_handle_t *)&rt->peers_timer, handle_closed);
	}
}

OCAPN_API void
ocapn_runtime_close(ocapn_runtime *rt, void (*done)(void *), void *user)
{
	if (rt->closing)
		return;
	rt->done = done;
	rt->done_user = user;
	/* Abort sessions first: their op:abort goes out before the
	 * transports close. */
	for (struct rt_conn *rc = rt->conns; rc; rc = rc->next) {
		ocapn_session_abort(rc->s, "shutting down");
		handle_events(rc);
		flush(rc);
		if (rc->c && !rc->closing) {
			rc->closing = true;
			ocapn_conn_close(rc->c);
		}
	}
	rt->closing = true;
	if (rt->idle_on) {
		uv_idle_stop(&rt->idle);
		rt->idle_on = false;
	}
	for (size_t i = 0; i < rt->nnl; i++)
		ocapn_netlayer_stop(rt->nls[i].nl);
	maybe_done(rt);
}

static void
free_closed(void *user)
{
	*(bool *)user = true;
}

OCAPN_API void
ocapn_runtime_free(ocapn_runtime *rt)
{
	if (!rt)
		return;
	if (!rt->closing) {
		/* Not closed yet: close now and let the loop finish it (our
		 * handles make every iteration return). */
		bool done = false;
		ocapn_runtime_close(rt, free_closed, &done);
		while (!done && uv_run(rt->loop, UV_RUN_ONCE))
			;
	}
	while (rt->conns) {
		struct rt_conn *rc = rt->conns;
		if (rc->c)
			ocapn_conn_set_user(rc->c, NULL);
		rc_free(rc);
	}
	for (size_t i = 0; i < rt->nnl; i++)
		ocapn_netlayer_free(rt->nls[i].nl);
	ocapn__free(&rt->a, rt->nls, rt->nlcap * sizeof(*rt->nls));
	for (size_t i = 0; i < rt->ndialects; i++)
		ocapn__free(&rt->a, rt->dialects[i].key,
		    strlen(rt->dialects[i].key) + 1);
	ocapn__free(&rt->a, rt->dialects, rt->dcap * sizeof(*rt->dialects));
	ocapn_vat_set_connector(rt->vat, NULL, NULL);
	ocapn_vat_set_wakeup(rt->vat, NULL, NULL);
	if (rt->owns_vat)
		ocapn_vat_free(rt->vat);
	if (rt->owns_loop) {
		if (!uv_is_closing((uv_handle_t *)&rt->prepare)) {
			uv_close((uv_handle_t *)&rt->prepare, NULL);
			uv_close((uv_handle_t *)&rt->idle, NULL);
			uv_close((uv_handle_t *)&rt->peers_timer, NULL);
		}
		uv_run(&rt->own_loop, UV_RUN_DEFAULT);
		uv_loop_close(&rt->own_loop);
	}
	ocapn_allocator a = rt->a;
	ocapn__free(&a, rt, sizeof(*rt));
}

OCAPN_API int
ocapn_runtime_sturdyref_uri(ocapn_runtime *rt, ocapn_netlayer *nl,
    const uint8_t *swiss, size_t len, ocapn_buffer *out)
{
	ocapn_sturdyref *sr;
	int r = ocapn_sturdyref_new(ocapn_netlayer_locator(nl), swiss, len,
	    &rt->a, &sr);
	if (r)
		return r;
	r = ocapn_sturdyref_to_uri(sr, out, NULL);
	ocapn_sturdyref_free(sr);
	return r;
}

OCAPN_API int
ocapn_runtime_enliven_uri(ocapn_runtime *rt, const char *uri, size_t len,
    ocapn_ref **result)
{
	ocapn_sturdyref *sr;
	size_t eo;
	const char *why;
	int r = ocapn_sturdyref_parse_uri(uri, len, &rt->a, &sr, &eo, &why);
	if (r)
		return r;
	r = ocapn_vat_enliven(rt->vat, sr, result);
	ocapn_sturdyref_free(sr);
	return r;
}

OCAPN_API void
ocapn_runtime_set_trace(ocapn_runtime *rt, ocapn_trace_fn fn, void *user)
{
	rt->trace = fn;
	rt->trace_user = user;
}

OCAPN_API size_t
ocapn_runtime_connections(const ocapn_runtime *rt)
{
	return rt->nconns;
}
