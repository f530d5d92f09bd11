/*
 * libocapn: netlayers, the transports CapTP runs over.
 *
 * A netlayer moves whole messages between this process and peers reached
 * through one transport (tcp-testing-only, testuds, unix-domain-socket,
 * shm, or your own).  It knows nothing of CapTP: stream netlayers find
 * message boundaries by scanning the self-delimiting Syrup; packet
 * netlayers (shm) get them from the transport.  The runtime (runtime.h)
 * puts a CapTP session on every connection.
 *
 * Everything happens on one event loop.  A netlayer reports to its
 * handler through callbacks, always invoked from the loop and never from
 * inside the call that caused them (a failing ocapn_netlayer_connect()
 * returns its error and calls nothing).
 *
 * Lifetime: a connection belongs to its netlayer; the handler sees it from
 * on_accept or ocapn_netlayer_connect() until on_close, after which the
 * pointer is invalid.  Close a connection with ocapn_conn_close()
 * (graceful) or ocapn_conn_reset().  Stop a netlayer with
 * ocapn_netlayer_stop() (stops listening, closes its connections); its
 * on_stopped callback says when ocapn_netlayer_free() may be called.
 *
 * Writing a netlayer: embed `ocapn_netlayer` as the first member of your
 * netlayer struct and `ocapn_conn` as the first member of your connection
 * struct, fill an `ocapn_netlayer_ops`, and call the ocapn_netlayer_emit_*
 * functions to report events.  docs/netlayers.md walks through it.
 */
#ifndef OCAPN_NETLAYER_H
#define OCAPN_NETLAYER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ocapn/common.h>
#include <ocapn/locator.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ocapn_netlayer ocapn_netlayer;
typedef struct ocapn_conn ocapn_conn;

/* One piece of a gather list. */
typedef struct ocapn_iov {
	const void *base;
	size_t len;
} ocapn_iov;

/* What the netlayer reports to its user (the runtime). */
typedef struct ocapn_netlayer_handler {
	/* A peer connected to us.  The connection is ready for sending. */
	void (*on_accept)(void *user, ocapn_netlayer *nl, ocapn_conn *c);
	/* An outbound connection finished connecting (status OCAPN_OK) or
	 * failed (then on_close follows). */
	void (*on_connect)(void *user, ocapn_conn *c, int status);
	/* One whole message.  `msg` is valid until the callback returns,
	 * or, if the handler calls ocapn_conn_hold() during the callback,
	 * until ocapn_conn_release(). */
	void (*on_message)(void *user, ocapn_conn *c, const uint8_t *msg,
	    size_t len);
	/* The input is unusable (e.g. it is not Syrup): no more messages
	 * will come, but the connection can still send (an op:abort) before
	 * the handler closes it. */
	void (*on_error)(void *user, ocapn_conn *c, int status,
	    const char *reason);
	/* The queued output fell below the low-water mark after a send
	 * returned OCAPN_E_AGAIN. */
	void (*on_drain)(void *user, ocapn_conn *c);
	/* The connection is gone: status OCAPN_OK after a graceful close or
	 * the peer's end of stream, else the error; `reason` is a short text
	 * (static or valid during the call).  Last callback for `c`. */
	void (*on_close)(void *user, ocapn_conn *c, int status,
	    const char *reason);
	/* ocapn_netlayer_stop() completed: no connection is left. */
	void (*on_stopped)(void *user, ocapn_netlayer *nl);
	void *user;
} ocapn_netlayer_handler;

/* ocapn_netlayer_ops.flags */
#define OCAPN_NETLAYER_STREAM 0x1u /* a byte stream: one send may carry
                                    * several messages back to back */
/* Received messages may be views into memory the peer can rewrite at any
 * time (shm): the runtime decodes them (those for which ops->shared says
 * so, if set) with ocapn_session_feed_shared_message(), which copies
 * every atom before it is inspected. */
#define OCAPN_NETLAYER_SHARED 0x2u
/* The netlayer authenticates the peer's designator before reporting a
 * connection: ocapn_conn_peer() names the peer proven (inbound) or the
 * one dialled, whose key was proven (outbound), and the runtime requires
 * the peer's op:start-session location to name that peer
 * (ocapn_session_expect_peer()). */
#define OCAPN_NETLAYER_AUTHENTICATED 0x4u

/* Operations a netlayer implements. */
typedef struct ocapn_netlayer_ops {
	const char *transport; /* the locator transport it serves */
	unsigned flags;
	/* Start an outbound connection to `peer`; the result arrives in
	 * on_connect.  Errors known at once are returned (nothing called). */
	int (*connect)(ocapn_netlayer *nl, const ocapn_locator *peer,
	    ocapn_conn **out);
	/* Queue one whole message (the concatenation of `iov`).  Returns
	 * OCAPN_E_AGAIN without queueing when over the high-water mark,
	 * OCAPN_E_CLOSED after close. */
	int (*send)(ocapn_conn *c, const ocapn_iov *iov, size_t niov);
	/* Bytes queued and not yet handed to the transport. */
	size_t (*pending)(const ocapn_conn *c);
	/* Keep / give back the message view of the current on_message. */
	int (*hold)(ocapn_conn *c, const uint8_t *msg);
	void (*release)(ocapn_conn *c, const uint8_t *msg);
	/* Graceful close: send what is queued, end our direction, wait for
	 * the peer's end (bounded), then on_close. */
	void (*close)(ocapn_conn *c);
	/* Close at once, dropping queued output; on_close follows. */
	void (*reset)(ocapn_conn *c);
	/* Stop listening and close every connection; on_stopped follows. */
	void (*stop)(ocapn_netlayer *nl);
	/* Free the netlayer (only after on_stopped, or before it started). */
	void (*free)(ocapn_netlayer *nl);
	/* With OCAPN_NETLAYER_SHARED, optional: is the view of the current
	 * on_message in memory the peer can rewrite?  (shm: single-packet
	 * messages are, reassembled ones are private.)  NULL: every
	 * message is treated as shared. */
	bool (*shared)(const ocapn_conn *c, const uint8_t *msg);
	/* Optional: the caller has sent everything it has for now (the
	 * runtime calls it after it wrote a loop iteration's output to the
	 * connection, or was refused with OCAPN_E_AGAIN).  A netlayer that
	 * wakes its peer once per burst rather than once per message (shm)
	 * does it now instead of later in the loop iteration.  Delivery
	 * never depends on it.  NULL: nothing to do. */
	void (*flush)(ocapn_conn *c);
} ocapn_netlayer_ops;

/* Base of every netlayer (first member of the implementation). */
struct ocapn_netlayer {
	const ocapn_netlayer_ops *ops;
	ocapn_netlayer_handler handler;
	ocapn_locator *locator; /* the location it serves; owned */
};

/* Base of every connection (first member of the implementation). */
struct ocapn_conn {
	ocapn_netlayer *nl;
	void *user;       /* for the handler */
	bool outbound;    /* we dialled */
	ocapn_locator *peer; /* for outbound: whom we dialled; for inbound:
	                      * the authenticated peer, if the netlayer
	                      * authenticates (else NULL); owned */
};

/* ---- Using a netlayer ----------------------------------------------- */

/* Set the handler (copied).  Must be done before the first event. */
OCAPN_API void ocapn_netlayer_set_handler(ocapn_netlayer *nl,
    const ocapn_netlayer_handler *h);
/* The locator this netlayer serves (owned by the netlayer). */
OCAPN_API const ocapn_locator *ocapn_netlayer_locator(
    const ocapn_netlayer *nl);
OCAPN_API const char *ocapn_netlayer_transport(const ocapn_netlayer *nl);
OCAPN_API int ocapn_netlayer_connect(ocapn_netlayer *nl,
    const ocapn_locator *peer, ocapn_conn **out);
OCAPN_API void ocapn_netlayer_stop(ocapn_netlayer *nl);
OCAPN_API void ocapn_netlayer_free(ocapn_netlayer *nl);

OCAPN_API int ocapn_conn_send(ocapn_conn *c, const ocapn_iov *iov,
    size_t niov);
OCAPN_API size_t ocapn_conn_pending(const ocapn_conn *c);
OCAPN_API int ocapn_conn_hold(ocapn_conn *c, const uint8_t *msg);
OCAPN_API void ocapn_conn_release(ocapn_conn *c, const uint8_t *msg);
OCAPN_API void ocapn_conn_close(ocapn_conn *c);
OCAPN_API void ocapn_conn_reset(ocapn_conn *c);
OCAPN_API void ocapn_conn_set_user(ocapn_conn *c, void *user);
OCAPN_API void *ocapn_conn_user(const ocapn_conn *c);
OCAPN_API ocapn_netlayer *ocapn_conn_netlayer(const ocapn_conn *c);
OCAPN_API bool ocapn_conn_outbound(const ocapn_conn *c);
/* The peer of the connection (see ocapn_conn.peer): owned by the
 * connection, valid until on_close; NULL if unknown. */
OCAPN_API const ocapn_locator *ocapn_conn_peer(const ocapn_conn *c);

/* ---- Implementing a netlayer ----------------------------------------- */

/* Report events to the handler (call only from the loop). */
OCAPN_API void ocapn_netlayer_emit_accept(ocapn_netlayer *nl,
    ocapn_conn *c);
OCAPN_API void ocapn_netlayer_emit_connect(ocapn_conn *c, int status);
OCAPN_API void ocapn_netlayer_emit_message(ocapn_conn *c,
    const uint8_t *msg, size_t len);
OCAPN_API void ocapn_netlayer_emit_error(ocapn_conn *c, int status,
    const char *reason);
OCAPN_API void ocapn_netlayer_emit_drain(ocapn_conn *c);
OCAPN_API void ocapn_netlayer_emit_close(ocapn_conn *c, int status,
    const char *reason);
OCAPN_API void ocapn_netlayer_emit_stopped(ocapn_netlayer *nl);

#ifdef __cplusplus
}
#endif

#endif /* OCAPN_NETLAYER_H */
