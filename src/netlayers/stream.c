/*
 * Stream connections on libuv.
 *
 * Input: each read goes into the connection's read buffer; the Syrup
 * scanner finds message ends; a message wholly inside the read buffer is
 * handed up in place, a message spanning reads is assembled in `inbuf`.
 * A message the handler holds keeps the buffer it lives in: that buffer
 * is detached and a fresh one is used for the next read.
 *
 * Output: uv_try_write of the whole message as one writev; whatever the
 * kernel did not take is copied once into a uv_write request.  Above the
 * high-water mark, sends fail with OCAPN_E_AGAIN (nothing queued) until
 * the queue drains below the low-water mark (on_drain).
 *
 * Close: flush, uv_shutdown (our end of stream), keep reading until the
 * peer's end of stream or DRAIN_MS, then uv_close; on_close comes from the
 * close callback, after which the connection is freed.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "stream.h"

#define READ_BUF (64u * 1024)
#define DEFAULT_MAX_MESSAGE (64u << 20)
#define DEFAULT_HWM (16u << 20)
#define DEFAULT_LWM (4u << 20)
#define DRAIN_MS 2000

struct wreq {
	uv_write_t req;
	ocapn__stream_conn *c;
	size_t len;
	uint8_t data[];
};

struct held {
	uint8_t *buf;
	size_t cap;
};

/* Held buffers: a small array kept in c->ext. */
struct held_list {
	size_t n, cap;
	struct held items[];
};

int
ocapn__uv_err(int e)
{
	switch (e) {
	case 0:
		return OCAPN_OK;
	case UV_ENOMEM:
	case UV_ENOBUFS:
		return OCAPN_E_NOMEM;
	case UV_ECONNREFUSED:
	case UV_ENOENT:
		return OCAPN_E_CONNREFUSED;
	case UV_ETIMEDOUT:
		return OCAPN_E_TIMEDOUT;
	case UV_EAGAIN:
		return OCAPN_E_AGAIN;
	case UV_EOF:
	case UV_ECONNRESET:
	case UV_EPIPE:
		return OCAPN_E_CLOSED;
	case UV_EINVAL:
		return OCAPN_E_INVAL;
	default:
		return OCAPN_E_IO;
	}
}

void
ocapn__stream_nl_init(ocapn__stream_nl *snl, uv_loop_t *loop,
    const ocapn_netlayer_ops *ops, ocapn_locator *locator,
    const ocapn_allocator *alloc)
{
	snl->base.ops = ops;
	snl->base.locator = locator;
	snl->loop = loop;
	ocapn__alloc_init(&snl->a, alloc);
	snl->max_message = DEFAULT_MAX_MESSAGE;
	snl->hwm = DEFAULT_HWM;
	snl->lwm = DEFAULT_LWM;
}

ocapn__stream_conn *
ocapn__stream_conn_new(ocapn__stream_nl *snl, enum stream_kind kind,
    bool outbound, const ocapn_locator *peer)
{
	ocapn__stream_conn *c = ocapn__calloc(&snl->a, sizeof(*c));
	if (!c)
		return NULL;
	ocapn_syrup_decoder *limits = ocapn_syrup_decoder_new(0, &snl->a);
	if (limits)
		ocapn_syrup_decoder_set_limit(limits, OCAPN_SYRUP_MAX_TOTAL,
		    snl->max_message);
	c->scanner = limits ? ocapn_syrup_scanner_new(limits, &snl->a) : NULL;
	ocapn_syrup_decoder_free(limits);
	if (!c->scanner ||
	    (peer && ocapn_locator_copy(peer, &c->base.peer))) {
		ocapn_syrup_scanner_free(c->scanner);
		ocapn__free(&snl->a, c, sizeof(*c));
		return NULL;
	}
	c->base.nl = &snl->base;
	c->base.outbound = outbound;
	c->snl = snl;
	c->state = CONN_CONNECTING;
	ocapn_buffer_init(&c->inbuf);
	if (kind == STREAM_TCP)
		uv_tcp_init(snl->loop, &c->h.tcp);
	else
		uv_pipe_init(snl->loop, &c->h.pipe, 0);
	c->h.handle.data = c;
	c->next = snl->conns;
	if (snl->conns)
		snl->conns->pprev = &c->next;
	c->pprev = &snl->conns;
	snl->conns = c;
	snl->nconns++;
	return c;
}

static void maybe_stopped(ocapn__stream_nl *snl);

static void
conn_free(ocapn__stream_conn *c)
{
	ocapn__stream_nl *snl = c->snl;
	*c->pprev = c->next;
	if (c->next)
		c->next->pprev = c->pprev;
	snl->nconns--;
	ocapn_syrup_scanner_free(c->scanner);
	ocapn_buffer_release(&c->inbuf, &snl->a);
	ocapn__free(&snl->a, c->rbuf, c->rbuf_cap);
	ocapn_locator_free(c->base.peer);
	struct held_list *l = c->ext;
	if (l) {
		/* held views die with the connection */
		for (size_t i = 0; i < l->n; i++)
			ocapn__free(&snl->a, l->items[i].buf, l->items[i].cap);
		ocapn__free(&snl->a, l, sizeof(*l) + l->cap * sizeof(*l->items));
	}
	ocapn__free(&snl->a, c, sizeof(*c));
	maybe_stopped(snl);
}

static void
timer_closed(uv_handle_t *h)
{
	ocapn__stream_conn *c = h->data;
	conn_free(c);
}

static void
handle_closed(uv_handle_t *h)
{
	ocapn__stream_conn *c = h->data;
	if (!c->silent)
		ocapn_netlayer_emit_close(&c->base, c->close_status,
		    c->close_reason ? c->close_reason : "closed");
	if (c->timer_init)
		uv_close((uv_handle_t *)&c->drain_timer, timer_closed);
	else
		conn_free(c);
}

/* Close the handle now (once); on_close follows from the callback. */
static void
conn_close_now(ocapn__stream_conn *c, int status, const char *reason)
{
	if (c->state == CONN_CLOSED)
		return;
	if (!c->close_reason) {
		c->close_status = status;
		c->close_reason = reason;
	}
	c->state = CONN_CLOSED;
	if (c->timer_init)
		uv_timer_stop(&c->drain_timer);
	uv_close(&c->h.handle, handle_closed);
}

/* Record why the connection ends (first reason wins): `what`, followed by
 * ": <libuv error text>" when `uverr` is set. */
static void
set_reason(ocapn__stream_conn *c, int status, const char *what, int uverr)
{
	if (c->close_reason)
		return;
	if (uverr)
		snprintf(c->reason_buf, sizeof(c->reason_buf), "%s: %s", what,
		    uv_strerror(uverr));
	else
		snprintf(c->reason_buf, sizeof(c->reason_buf), "%s", what);
	c->close_status = status;
	c->close_reason = c->reason_buf;
}

/* ---- reading ------------------------------------------------------ */

static void
alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	ocapn__stream_conn *c = h->data;
	(void)suggested;
	if (!c->rbuf) {
		c->rbuf = ocapn__malloc(&c->snl->a, READ_BUF);
		c->rbuf_cap = c->rbuf ? READ_BUF : 0;
	}
	buf->base = (char *)c->rbuf;
	buf->len = c->rbuf_cap;
}

static void
input_failed(ocapn__stream_conn *c, int status, const char *reason)
{
	c->input_dead = true;
	if (c->reading) {
		uv_read_stop(&c->h.stream);
		c->reading = false;
	}
	ocapn_netlayer_emit_error(&c->base, status, reason);
}

static void
deliver(ocapn__stream_conn *c, const uint8_t *p, size_t n)
{
	size_t off = 0;
	while (off < n && c->state == CONN_OPEN && !c->input_dead) {
		size_t used;
		int rc = ocapn_syrup_scanner_feed(c->scanner, p + off, n - off,
		    &used);
		if (rc == OCAPN_E_INCOMPLETE) {
			if (ocapn_buffer_append(&c->inbuf, &c->snl->a, p + off,
				n - off))
				input_failed(c, OCAPN_E_NOMEM,
				    "out of memory for a partial message");
			return;
		}
		if (rc) {
			size_t eo;
			const char *why =
			    ocapn_syrup_scanner_error(c->scanner, &eo);
			snprintf(c->reason_buf, sizeof(c->reason_buf),
			    "malformed message at stream byte %zu: %s", eo,
			    why);
			input_failed(c, rc, c->reason_buf);
			return;
		}
		if (c->inbuf.len == 0) {
			ocapn_netlayer_emit_message(&c->base, p + off, used);
		} else {
			if (ocapn_buffer_append(&c->inbuf, &c->snl->a, p + off,
				used)) {
				input_failed(c, OCAPN_E_NOMEM,
				    "out of memory for a message");
				return;
			}
			ocapn_netlayer_emit_message(&c->base, c->inbuf.data,
			    c->inbuf.len);
			c->inbuf.len = 0;
		}
		off += used;
	}
}

static void
read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	ocapn__stream_conn *c = s->data;
	(void)buf;
	if (nread == 0)
		return;
	if (nread < 0) {
		if (c->state == CONN_CLOSING) {
			/* end of the drain after our shutdown */
			conn_close_now(c, OCAPN_OK, "closed");
			return;
		}
		if (nread == UV_EOF) {
			if (c->inbuf.len || ocapn_syrup_scanner_pending(
						c->scanner))
				set_reason(c, OCAPN_E_CLOSED,
				    "connection closed in the middle of a "
				    "message",
				    0);
			else
				set_reason(c, OCAPN_OK,
				    "peer closed the connection", 0);
		} else {
			set_reason(c, ocapn__uv_err((int)nread),
			    "read error", (int)nread);
		}
		conn_close_now(c, c->close_status, c->close_reason);
		return;
	}
	if (c->state == CONN_CLOSING || c->input_dead)
		return; /* draining: discard */
	deliver(c, c->rbuf, (size_t)nread);
}

int
ocapn__stream_conn_established(ocapn__stream_conn *c)
{
	c->state = CONN_OPEN;
	int e = uv_read_start(&c->h.stream, alloc_cb, read_cb);
	if (e)
		return ocapn__uv_err(e);
	c->reading = true;
	if (c->base.outbound && !c->emitted_connect) {
		c->emitted_connect = true;
		ocapn_netlayer_emit_connect(&c->base, OCAPN_OK);
	}
	return OCAPN_OK;
}

void
ocapn__stream_conn_connect_failed(ocapn__stream_conn *c, int status,
    const char *reason)
{
	if (!c->close_reason) {
		c->close_status = status;
		snprintf(c->reason_buf, sizeof(c->reason_buf), "%s", reason);
		c->close_reason = c->reason_buf;
	}
	if (!c->emitted_connect) {
		c->emitted_connect = true;
		ocapn_netlayer_emit_connect(&c->base, status);
	}
	conn_close_now(c, status, c->close_reason);
}

void
ocapn__stream_on_connection(uv_stream_t *server, int status)
{
	ocapn__stream_nl *snl = server->data;
	if (status < 0 || snl->stopping)
		return;
	bool tcp = server->type == UV_TCP;
	ocapn__stream_conn *c = ocapn__stream_conn_new(snl,
	    tcp ? STREAM_TCP : STREAM_PIPE, false, NULL);
	if (!c)
		return;
	if (uv_accept(server, &c->h.stream) ||
	    ocapn__stream_conn_established(c)) {
		ocapn__stream_conn_discard(c); /* never reported */
		return;
	}
	if (tcp)
		uv_tcp_nodelay(&c->h.tcp, 1);
	ocapn_netlayer_emit_accept(&snl->base, &c->base);
}

void
ocapn__stream_on_connected(uv_connect_t *req, int status)
{
	ocapn__stream_conn *c = req->data;
	if (c->state == CONN_CLOSED)
		return;
	if (status < 0) {
		char why[96];
		snprintf(why, sizeof(why), "cannot connect: %s",
		    uv_strerror(status));
		ocapn__stream_conn_connect_failed(c, ocapn__uv_err(status),
		    why);
		return;
	}
	if (c->h.handle.type == UV_TCP)
		uv_tcp_nodelay(&c->h.tcp, 1);
	if (ocapn__stream_conn_established(c))
		ocapn__stream_conn_connect_failed(c, OCAPN_E_IO,
		    "cannot start reading");
}

int
ocapn__unix_clear_stale(const char *path, int type)
{
	int fd = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return OCAPN_E_IO;
	struct sockaddr_un sa;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, path, strlen(path));
	int r = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	int err = errno;
	close(fd);
	if (r == 0)
		return OCAPN_E_EXISTS;
	if (err == ECONNREFUSED)
		unlink(path);
	return OCAPN_OK;
}

int
ocapn__stream_adopt_fd(ocapn__stream_nl *snl, int fd, bool outbound,
    const ocapn_locator *peer, ocapn__stream_conn **out)
{
	ocapn__stream_conn *c = ocapn__stream_conn_new(snl, STREAM_PIPE,
	    outbound, peer);
	if (!c)
		return OCAPN_E_NOMEM;
	int e = uv_pipe_open(&c->h.pipe, fd);
	if (e) {
		close(fd); /* not libuv's: ours to close */
		ocapn__stream_conn_discard(c);
		return ocapn__uv_err(e);
	}
	*out = c;
	return OCAPN_OK;
}

void
ocapn__stream_conn_discard(ocapn__stream_conn *c)
{
	c->silent = true;
	c->emitted_connect = true;
	conn_close_now(c, OCAPN_OK, "discarded");
}

/* ---- writing ------------------------------------------------------ */

static void do_shutdown(ocapn__stream_conn *c);

static void
write_cb(uv_write_t *req, int status)
{
	struct wreq *w = (struct wreq *)req;
	ocapn__stream_conn *c = w->c;
	ocapn__stream_nl *snl = c->snl;
	c->pending -= w->len;
	c->nwrites--;
	ocapn__free(&snl->a, w, sizeof(*w) + w->len);
	if (status < 0) {
		if (status != UV_ECANCELED && c->state != CONN_CLOSED) {
			set_reason(c, ocapn__uv_err(status),
			    "write error", status);
			conn_close_now(c, c->close_status, c->close_reason);
		}
		return;
	}
	if (c->state == CONN_CLOSING && c->nwrites == 0 && !c->shutdown_sent)
		do_shutdown(c);
	if (c->over_hwm && c->pending <= snl->lwm && c->state == CONN_OPEN) {
		c->over_hwm = false;
		ocapn_netlayer_emit_drain(&c->base);
	}
}

int
ocapn__stream_send(ocapn_conn *base, const ocapn_iov *iov, size_t niov)
{
	ocapn__stream_conn *c = (ocapn__stream_conn *)base;
	ocapn__stream_nl *snl = c->snl;
	if (c->state != CONN_OPEN)
		return OCAPN_E_CLOSED;
	if (c->pending > snl->hwm) {
		c->over_hwm = true;
		return OCAPN_E_AGAIN;
	}
	size_t total = 0;
	for (size_t i = 0; i < niov; i++)
		total += iov[i].len;
	if (total == 0)
		return OCAPN_OK;
	size_t done = 0;
	if (c->nwrites == 0) {
		/* Fast path: straight to the kernel, no copy. */
		uv_buf_t bufs[16];
		size_t nb = niov < 16 ? niov : 16;
		for (size_t i = 0; i < nb; i++)
			bufs[i] = uv_buf_init((char *)iov[i].base,
			    (unsigned)iov[i].len);
		int n = uv_try_write(&c->h.stream, bufs, (unsigned)nb);
		if (n > 0)
			done = (size_t)n;
		else if (n < 0 && n != UV_EAGAIN && n != UV_ENOSYS) {
			set_reason(c, ocapn__uv_err(n), "write error", n);
			conn_close_now(c, c->close_status, c->close_reason);
			return OCAPN_E_CLOSED;
		}
	}
	if (done == total)
		return OCAPN_OK;
	size_t rest = total - done;
	struct wreq *w = ocapn__malloc(&snl->a, sizeof(*w) + rest);
	if (!w)
		return OCAPN_E_NOMEM; /* the peer saw a partial message only
				       * if done > 0: then the stream is
				       * broken */
	size_t skip = done, o = 0;
	for (size_t i = 0; i < niov; i++) {
		const uint8_t *p = iov[i].base;
		size_t l = iov[i].len;
		if (skip >= l) {
			skip -= l;
			continue;
		}
		memcpy(w->data + o, p + skip, l - skip);
		o += l - skip;
		skip = 0;
	}
	w->c = c;
	w->len = rest;
	uv_buf_t b = uv_buf_init((char *)w->data, (unsigned)rest);
	int e = uv_write(&w->req, &c->h.stream, &b, 1, write_cb);
	if (e) {
		ocapn__free(&snl->a, w, sizeof(*w) + rest);
		set_reason(c, ocapn__uv_err(e), "write error", e);
		conn_close_now(c, c->close_status, c->close_reason);
		return OCAPN_E_CLOSED;
	}
	c->pending += rest;
	c->nwrites++;
	if (c->pending > snl->hwm)
		c->over_hwm = true;
	return OCAPN_OK;
}

size_t
ocapn__stream_pending(const ocapn_conn *base)
{
	const ocapn__stream_conn *c = (const ocapn__stream_conn *)base;
	return c->pending;
}

/* ---- holding messages --------------------------------------------- */

int
ocapn__stream_hold(ocapn_conn *base, const uint8_t *msg)
{
	ocapn__stream_conn *c = (ocapn__stream_conn *)base;
	ocapn__stream_nl *snl = c->snl;
	struct held h;
	if (c->rbuf && msg >= c->rbuf && msg < c->rbuf + c->rbuf_cap) {
		h.buf = c->rbuf;
		h.cap = c->rbuf_cap;
		c->rbuf = NULL; /* the next read gets a fresh buffer */
		c->rbuf_cap = 0;
	} else if (c->inbuf.data && msg >= c->inbuf.data &&
	    msg < c->inbuf.data + c->inbuf.cap) {
		h.buf = c->inbuf.data;
		h.cap = c->inbuf.cap;
		ocapn_buffer_init(&c->inbuf);
	} else {
		return OCAPN_E_INVAL;
	}
	struct held_list *l = c->ext;
	if (!l || l->n == l->cap) {
		size_t ncap = l ? l->cap * 2 : 4;
		struct held_list *nl = ocapn__realloc(&snl->a, l,
		    l ? sizeof(*l) + l->cap * sizeof(struct held) : 0,
		    sizeof(*nl) + ncap * sizeof(struct held));
		if (!nl) {
			ocapn__free(&snl->a, h.buf, h.cap);
			return OCAPN_E_NOMEM;
		}
		if (!l)
			nl->n = 0;
		nl->cap = ncap;
		l = nl;
		c->ext = l;
	}
	l->items[l->n++] = h;
	return OCAPN_OK;
}

void
ocapn__stream_release(ocapn_conn *base, const uint8_t *msg)
{
	ocapn__stream_conn *c = (ocapn__stream_conn *)base;
	struct held_list *l = c->ext;
	for (size_t i = 0; l && i < l->n; i++) {
		struct held *h = &l->items[i];
		if (msg >= h->buf && msg < h->buf + h->cap) {
			ocapn__free(&c->snl->a, h->buf, h->cap);
			l->items[i] = l->items[--l->n];
			return;
		}
	}
}

/* ---- closing ------------------------------------------------------ */

static void
drain_timeout(uv_timer_t *t)
{
	ocapn__stream_conn *c = t->data;
	conn_close_now(c, OCAPN_OK, "closed (the peer did not finish)");
}

static void
shutdown_cb(uv_shutdown_t *req, int status)
{
	ocapn__stream_conn *c = req->data;
	ocapn__free(&c->snl->a, req, sizeof(*req));
	if (c->state == CONN_CLOSED)
		return;
	if (status < 0) {
		conn_close_now(c, OCAPN_OK, "closed");
		return;
	}
	/* Our end is sent; wait (bounded) for the peer's. */
	if (!c->reading && uv_read_start(&c->h.stream, alloc_cb, read_cb) == 0)
		c->reading = true;
	if (!c->reading) {
		conn_close_now(c, OCAPN_OK, "closed");
		return;
	}
	if (!c->timer_init) {
		uv_timer_init(c->snl->loop, &c->drain_timer);
		c->drain_timer.data = c;
		c->timer_init = true;
	}
	uv_timer_start(&c->drain_timer, drain_timeout, DRAIN_MS, 0);
}

static void
do_shutdown(ocapn__stream_conn *c)
{
	c->shutdown_sent = true;
	uv_shutdown_t *req = ocapn__malloc(&c->snl->a, sizeof(*req));
	if (!req) {
		conn_close_now(c, OCAPN_OK, "closed");
		return;
	}
	req->data = c;
	if (uv_shutdown(req, &c->h.stream, shutdown_cb)) {
		ocapn__free(&c->snl->a, req, sizeof(*req));
		conn_close_now(c, OCAPN_OK, "closed");
	}
}

void
ocapn__stream_close(ocapn_conn *base)
{
	ocapn__stream_conn *c = (ocapn__stream_conn *)base;
	if (c->state == CONN_CLOSING || c->state == CONN_CLOSED)
		return;
	if (c->state == CONN_CONNECTING) {
		/* The handler closed it itself: no on_connect (never from
		 * inside this call); on_close follows from the loop. */
		c->emitted_connect = true;
		conn_close_now(c, OCAPN_E_CLOSED, "closed before connecting");
		return;
	}
	c->state = CONN_CLOSING;
	set_reason(c, OCAPN_OK, "closed", 0);
	if (c->nwrites == 0)
		do_shutdown(c);
}

void
ocapn__stream_reset(ocapn_conn *base)
{
	ocapn__stream_conn *c = (ocapn__stream_conn *)base;
	if (c->state == CONN_CONNECTING)
		c->emitted_connect = true; /* as in ocapn__stream_close() */
	conn_close_now(c, OCAPN_OK, "reset");
}

/* ---- stopping ----------------------------------------------------- */

static void
maybe_stopped(ocapn__stream_nl *snl)
{
	if (snl->stopping && !snl->stopped && snl->nconns == 0 &&
	    !snl->listener) {
		snl->stopped = true;
		ocapn_netlayer_emit_stopped(&snl->base);
	}
}

static void
listener_closed(uv_handle_t *h)
{
	ocapn__stream_nl *snl = h->data;
	ocapn__free(&snl->a, h, uv_handle_size(h->type));
	snl->listener = NULL;
	maybe_stopped(snl);
}

void
ocapn__stream_stop(ocapn_netlayer *nl)
{
	ocapn__stream_nl *snl = (ocapn__stream_nl *)nl;
	if (snl->stopping)
		return;
	snl->stopping = true;
	if (snl->listener && !snl->listener_closing) {
		snl->listener_closing = true;
		uv_close(snl->listener, listener_closed);
	}
	for (ocapn__stream_conn *c = snl->conns; c; c = c->next)
		ocapn__stream_close(&c->base);
	maybe_stopped(snl);
}

void
ocapn__stream_free(ocapn_netlayer *nl)
{
	ocapn__stream_nl *snl = (ocapn__stream_nl *)nl;
	if (!snl)
		return;
	ocapn_locator_free(snl->base.locator);
	ocapn_allocator a = snl->a;
	if (snl->free_ext)
		snl->free_ext(snl); /* frees the whole struct */
	else
		ocapn__free(&a, snl, sizeof(*snl));
}

static void
discarded(uv_handle_t *h)
{
	ocapn__stream_nl *snl = h->data;
	ocapn_allocator a = snl->a;
	ocapn__free(&a, h, uv_handle_size(h->type));
	if (snl->free_ext)
		snl->free_ext(snl);
	else
		ocapn__free(&a, snl, sizeof(*snl));
}

void
ocapn__stream_discard_listener(ocapn__stream_nl *snl, uv_handle_t *h)
{
	h->data = snl;
	uv_close(h, discarded);
}
