/*
 * Shared machinery of the stream netlayers (tcp-testing-only, testuds,
 * unix-domain-socket): connections over libuv streams, with Syrup
 * framing on input, one writev per message on output, back-pressure, and
 * graceful close (flush, shut down our side, drain the peer's until its
 * end of stream or a timeout).  Internal; never installed.
 */
#ifndef OCAPN_NETLAYERS_STREAM_H
#define OCAPN_NETLAYERS_STREAM_H

#include <uv.h>

#include <ocapn/netlayer.h>
#include <ocapn/syrup.h>

#include "../util/util.h"

typedef struct ocapn__stream_nl ocapn__stream_nl;
typedef struct ocapn__stream_conn ocapn__stream_conn;

enum stream_kind { STREAM_TCP = 1, STREAM_PIPE };

enum conn_state {
	CONN_CONNECTING = 1,
	CONN_OPEN,
	CONN_CLOSING,  /* flushing, then shutdown, then draining */
	CONN_CLOSED    /* uv_close called */
};

struct ocapn__stream_conn {
	ocapn_conn base;
	union {
		uv_handle_t handle;
		uv_stream_t stream;
		uv_tcp_t tcp;
		uv_pipe_t pipe;
	} h;
	ocapn__stream_nl *snl;
	ocapn__stream_conn *next, **pprev;
	enum conn_state state;
	bool reading, input_dead, over_hwm, shutdown_sent, emitted_connect;
	bool silent; /* never reported to the handler: no on_close either */
	ocapn_syrup_scanner *scanner;
	ocapn_buffer inbuf;    /* partial message */
	uint8_t *rbuf;         /* read buffer */
	size_t rbuf_cap;
	size_t pending;        /* bytes in uv_write requests */
	unsigned nwrites;      /* uv_write requests in flight */
	uv_timer_t drain_timer;
	bool timer_init;
	int close_status;
	const char *close_reason;
	char reason_buf[96];
	/* set by a specific netlayer (e.g. connect state) */
	void *ext;
	uv_getaddrinfo_t gai;
	uv_connect_t creq;
};

struct ocapn__stream_nl {
	ocapn_netlayer base;
	uv_loop_t *loop;
	ocapn_allocator a;
	ocapn__stream_conn *conns;
	size_t nconns;
	uv_handle_t *listener;  /* owned by the specific netlayer, or NULL */
	bool listener_closing, stopping, stopped;
	size_t max_message;
	size_t hwm, lwm;
	/* called when the stream layer has freed everything it owns */
	void (*free_ext)(ocapn__stream_nl *snl);
};

/* Initialise the base; `locator` is taken over. */
void ocapn__stream_nl_init(ocapn__stream_nl *snl, uv_loop_t *loop,
    const ocapn_netlayer_ops *ops, ocapn_locator *locator,
    const ocapn_allocator *alloc);

/* New connection handle of `kind` (TCP or pipe), registered with the
 * netlayer; for outbound ones `peer` is copied.  NULL on no memory. */
ocapn__stream_conn *ocapn__stream_conn_new(ocapn__stream_nl *snl,
    enum stream_kind kind, bool outbound, const ocapn_locator *peer);

/* The connection is established (accepted or connected): start reading.
 * For outbound ones, on_connect(OK) is emitted. */
int ocapn__stream_conn_established(ocapn__stream_conn *c);

/* Connecting failed: emit on_connect(status) and close. */
void ocapn__stream_conn_connect_failed(ocapn__stream_conn *c, int status,
    const char *reason);

/* Close a connection the handler has never seen, reporting nothing. */
void ocapn__stream_conn_discard(ocapn__stream_conn *c);

/* Wrap an already-connected stream socket (one end of a socketpair, say)
 * as a connection: takes ownership of `fd` (closed on failure, and then
 * nothing is reported to the handler). */
int ocapn__stream_adopt_fd(ocapn__stream_nl *snl, int fd, bool outbound,
    const ocapn_locator *peer, ocapn__stream_conn **out);

/* A netlayer whose construction failed after its listener handle was
 * initialised: close the handle and free both it and the netlayer struct
 * (through snl->free_ext, or as a bare ocapn__stream_nl) from the close
 * callback. */
void ocapn__stream_discard_listener(ocapn__stream_nl *snl, uv_handle_t *h);

/* libuv callbacks shared by the listening and connecting stream
 * netlayers.  The listener's data is its ocapn__stream_nl; an accepted
 * connection is of the listener's kind (TCP ones get Nagle off) and is
 * reported with on_accept.  A connect request's data is its connection:
 * success starts reading and reports on_connect(OK), failure reports
 * on_connect(error) and closes. */
void ocapn__stream_on_connection(uv_stream_t *server, int status);
void ocapn__stream_on_connected(uv_connect_t *req, int status);

/* A unix socket file nobody listens on was left by a dead process: remove
 * it.  `type` is the socket type listening there (SOCK_STREAM,
 * SOCK_SEQPACKET).  OCAPN_E_EXISTS when a live listener has it,
 * OCAPN_E_IO when no probe socket could be made, else OCAPN_OK (removed,
 * or nothing there to remove).  `path` fits sun_path. */
int ocapn__unix_clear_stale(const char *path, int type);

/* Map a libuv error to an ocapn_err. */
int ocapn__uv_err(int uverr);

/* Generic ops shared by every stream netlayer. */
int ocapn__stream_send(ocapn_conn *c, const ocapn_iov *iov, size_t niov);
size_t ocapn__stream_pending(const ocapn_conn *c);
int ocapn__stream_hold(ocapn_conn *c, const uint8_t *msg);
void ocapn__stream_release(ocapn_conn *c, const uint8_t *msg);
void ocapn__stream_close(ocapn_conn *c);
void ocapn__stream_reset(ocapn_conn *c);
void ocapn__stream_stop(ocapn_netlayer *nl);
void ocapn__stream_free(ocapn_netlayer *nl);

#endif
