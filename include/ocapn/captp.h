/*
 * libocapn: the CapTP session engine.
 *
 * A session is one CapTP connection between a vat and a peer.  It is a
 * state machine with no I/O of its own (in the style of BearSSL's engine):
 * the caller feeds the bytes it received, takes the bytes to send, and
 * reads events; the session turns messages into turns of its vat and the
 * vat's sends into messages.  Nothing in it touches a socket, a thread, a
 * timer or a clock, so it can be driven by libuv (runtime.h), by another
 * event loop, or by a test.
 *
 *   ocapn_session_new()          bind to a vat, choose role and location
 *   ocapn_session_start()        queue our op:start-session
 *   loop:
 *     ocapn_session_feed()       bytes from the transport (any split)
 *     ocapn_vat_run()            run the turns those messages caused
 *     ocapn_session_output()     bytes to write; ocapn_session_consume()
 *     ocapn_session_next_event() ready / aborted / version mismatch
 *
 * Every inbound message is checked against the session's state; anything
 * impossible aborts this session (op:abort with a precise reason is queued
 * as output, its promises are broken, its tables freed) and leaves every
 * other session of the vat untouched.  See docs/captp.md.
 */
#ifndef OCAPN_CAPTP_H
#define OCAPN_CAPTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ocapn/common.h>
#include <ocapn/locator.h>
#include <ocapn/syrup.h>
#include <ocapn/vat.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ocapn_session ocapn_session;

typedef enum ocapn_role {
	OCAPN_ROLE_INITIATOR = 1, /* we dialled */
	OCAPN_ROLE_ACCEPTOR       /* the peer dialled */
} ocapn_role;

typedef enum ocapn_session_state {
	OCAPN_SESSION_HANDSHAKE = 1, /* waiting for the peer's start-session */
	OCAPN_SESSION_ACTIVE,
	OCAPN_SESSION_ABORTED,       /* by us or by the peer; final */
} ocapn_session_state;

/*
 * Wire dialects (docs/interop.md).  All forms are accepted on input; the
 * dialect chooses what we send.
 *   GOBLINS  version "goblins-0.12": op:deliver-only, 3-field op:listen,
 *            op:gc-export POS DELTA and op:gc-answer POS (integers)
 *   SUITE    version "1.0" as the conformance suite speaks it:
 *            op:deliver-only, 3-field op:listen, op:gc-export and
 *            op:gc-answer with lists
 *   SPEC     version "1.0" as the draft spec writes it: op:deliver with
 *            false answer and resolver, 2-field op:listen, op:gc-exports
 *            and op:gc-answers with lists
 */
typedef enum ocapn_dialect {
	OCAPN_DIALECT_AUTO = 0, /* acceptor: answer in the initiator's
	                         * version; initiator: SUITE unless a
	                         * version was set */
	OCAPN_DIALECT_GOBLINS,
	OCAPN_DIALECT_SUITE,
	OCAPN_DIALECT_SPEC
} ocapn_dialect;

/* The version string a dialect announces ("goblins-0.12" or "1.0"). */
OCAPN_API const char *ocapn_dialect_version(ocapn_dialect d);
/* Dialect for a version string (1.0 -> SUITE); 0 if unknown. */
OCAPN_API ocapn_dialect ocapn_dialect_for_version(const char *v, size_t n);

/* The dialect of the session that most recently completed its handshake
 * (OCAPN_DIALECT_AUTO if none): drivers use it as the default for new
 * outbound sessions, since peers reached through a network usually speak
 * as the network does (docs/interop.md). */
OCAPN_API ocapn_dialect ocapn_vat_recent_dialect(const ocapn_vat *vat);


typedef enum ocapn_session_limit {
	OCAPN_SESSION_MAX_MESSAGE = 1, /* bytes in one message, 16 MiB */
	OCAPN_SESSION_MAX_DEPTH,       /* Syrup nesting, 64 */
	OCAPN_SESSION_MAX_EXPORTS,     /* live export positions, 1M */
	OCAPN_SESSION_MAX_IMPORTS,     /* live import positions, 1M */
	OCAPN_SESSION_MAX_ANSWERS,     /* live answer positions, 1M */
	OCAPN_SESSION_MAX_QUEUED,      /* messages queued on unresolved
	                                * promises for this peer, 64K */
	OCAPN_SESSION_MAX_OUTPUT       /* unsent output bytes before sends
	                                * from the vat fail, 256 MiB */
} ocapn_session_limit;

typedef enum ocapn_session_event_kind {
	OCAPN_SESSION_EV_NONE = 0,
	OCAPN_SESSION_EV_READY,    /* handshake complete */
	OCAPN_SESSION_EV_ABORTED,  /* reason: ocapn_session_abort_reason() */
	OCAPN_SESSION_EV_VERSION,  /* an initiator learnt that the peer
	                            * speaks another version
	                            * (ocapn_session_peer_version()): its
	                            * transport is finished; call
	                            * ocapn_session_restart() on a new one, or
	                            * abort the session */
} ocapn_session_event_kind;

/*
 * New session of `vat` in `role`.  `self` is the location we announce
 * (copied).  `dialect` AUTO or a fixed dialect.  The session starts in
 * HANDSHAKE; call ocapn_session_start().  A fresh Ed25519 session key is
 * generated.  Free with ocapn_session_free() (the vat also frees its
 * sessions when it is freed).  OCAPN_E_NOMEM, OCAPN_E_CRYPTO.
 */
OCAPN_API int ocapn_session_new(ocapn_vat *vat, ocapn_role role,
    const ocapn_locator *self, ocapn_dialect dialect, ocapn_session **out);
/* Detach from the vat and free.  A session that is not aborted is
 * aborted first (reason "session closed"); queued output is discarded. */
OCAPN_API void ocapn_session_free(ocapn_session *s);

/* Replace the location we announce (copied); only before
 * ocapn_session_start(), e.g. once a netlayer knows its full locator. */
OCAPN_API int ocapn_session_set_location(ocapn_session *s,
    const ocapn_locator *self);

/* For an initiator: the peer we dial (copied), so the vat can find this
 * session before the handshake names the peer. */
OCAPN_API int ocapn_session_set_remote(ocapn_session *s,
    const ocapn_locator *peer);

/*
 * After OCAPN_SESSION_EV_VERSION on an initiator: start over (on a new
 * transport) in dialect `d`.  Messages queued since the start are kept and
 * sent after the new handshake, so callers see nothing of the retry.  Until
 * then the session stays in HANDSHAKE, ignores input and end-of-stream,
 * and keeps queueing.  OCAPN_E_STATE otherwise.
 */
OCAPN_API int ocapn_session_restart(ocapn_session *s, ocapn_dialect d);

/* OCAPN_E_INVAL for an unknown limit or 0; only before start. */
OCAPN_API int ocapn_session_set_limit(ocapn_session *s,
    ocapn_session_limit which, uint64_t value);

/* Queue our op:start-session.  An initiator sends it at once; an AUTO
 * acceptor sends it when the initiator's arrives, in its version. */
OCAPN_API int ocapn_session_start(ocapn_session *s);
/* Has ocapn_session_start() been called? */
OCAPN_API bool ocapn_session_started(const ocapn_session *s);

/*
 * Feed bytes received from the transport, any split.  Complete messages
 * are processed at once (turns they cause are queued on the vat).
 * Returns OCAPN_OK, or OCAPN_E_ABORTED once the session is aborted (the
 * bytes are then ignored).
 */
OCAPN_API int ocapn_session_feed(ocapn_session *s, const uint8_t *data,
    size_t len);
/* Feed exactly one whole message (for message-oriented transports). */
OCAPN_API int ocapn_session_feed_message(ocapn_session *s,
    const uint8_t *msg, size_t len);
/*
 * Feed one whole message that lives in memory the peer can rewrite while
 * we read it (a view into shared memory, netlayers with
 * OCAPN_NETLAYER_SHARED).  The message is decoded with
 * OCAPN_SYRUP_COPY_ATOMS: every byte is read once and every string,
 * symbol, bytestring and big integer is copied into the session's arena
 * before anything inspects it, so a rewrite during the call can only
 * make the message invalid (the session aborts with the decoder's reason)
 * or turn it into another well-formed message; nothing kept refers to
 * `msg` after the call.  Costs one copy of the message's atoms.  Returns
 * as ocapn_session_feed_message().
 */
OCAPN_API int ocapn_session_feed_shared_message(ocapn_session *s,
    const uint8_t *msg, size_t len);
/*
 * The transport authenticated the peer as `peer` (copied; NULL clears):
 * the location in its op:start-session must name the same peer
 * (transport and designator, ocapn_locator_same_peer()), else the session
 * aborts with "op:start-session location is not the peer the netlayer
 * authenticated".  Call before the peer's op:start-session arrives
 * (OCAPN_E_STATE after); OCAPN_E_NOMEM.  The runtime calls it for
 * netlayers with OCAPN_NETLAYER_AUTHENTICATED.
 */
OCAPN_API int ocapn_session_expect_peer(ocapn_session *s,
    const ocapn_locator *peer);
/* The peer closed the transport: abort with "connection closed". */
OCAPN_API void ocapn_session_eof(ocapn_session *s);
/* The transport failed (`reason`, e.g. "cannot connect: connection
 * refused"): abort with that reason, sending nothing. */
OCAPN_API void ocapn_session_transport_lost(ocapn_session *s,
    const char *reason);

/*
 * Bytes waiting to be sent: all of them, contiguous, owned by the
 * session, valid until the next call on the session or its vat.  Remove
 * sent bytes with ocapn_session_consume().
 */
OCAPN_API void ocapn_session_output(ocapn_session *s, const uint8_t **data,
    size_t *len);
OCAPN_API void ocapn_session_consume(ocapn_session *s, size_t n);
/* The next whole message waiting to be sent (message transports); 0
 * length when none.  Consume it with ocapn_session_consume(s, len). */
OCAPN_API void ocapn_session_next_message(ocapn_session *s,
    const uint8_t **msg, size_t *len);

/*
 * Called (inside whatever call caused it) when the session gets output to
 * send while it had none, or GC messages to flush: a driver schedules a
 * flush.  It must not call back into the session or its vat.
 */
typedef void (*ocapn_session_output_fn)(void *user, ocapn_session *s);
OCAPN_API void ocapn_session_set_output_hook(ocapn_session *s,
    ocapn_session_output_fn fn, void *user);
/* Opaque pointer for the driver. */
OCAPN_API void ocapn_session_set_user(ocapn_session *s, void *user);
OCAPN_API void *ocapn_session_user(const ocapn_session *s);

/* Next event, or OCAPN_SESSION_EV_NONE. */
OCAPN_API ocapn_session_event_kind ocapn_session_next_event(
    ocapn_session *s);

OCAPN_API ocapn_session_state ocapn_session_get_state(
    const ocapn_session *s);
/* Abort reason (ours or the peer's), "" while not aborted. */
OCAPN_API const char *ocapn_session_abort_reason(const ocapn_session *s);
/* True when the peer sent the op:abort. */
OCAPN_API bool ocapn_session_aborted_by_peer(const ocapn_session *s);
/* Abort: queue op:abort with `reason`, break everything pending. */
OCAPN_API void ocapn_session_abort(ocapn_session *s, const char *reason);

OCAPN_API ocapn_role ocapn_session_role(const ocapn_session *s);
OCAPN_API ocapn_dialect ocapn_session_dialect(const ocapn_session *s);
/* The peer's location once it sent start-session, else NULL. */
OCAPN_API const ocapn_locator *ocapn_session_peer_locator(
    const ocapn_session *s);
/* The peer this initiator dialled (ocapn_session_set_remote), or NULL. */
OCAPN_API const ocapn_locator *ocapn_session_remote(const ocapn_session *s);
/* Version the peer announced ("" before). */
OCAPN_API const char *ocapn_session_peer_version(const ocapn_session *s);
/* Session id (32 bytes) once ACTIVE, else NULL. */
OCAPN_API const uint8_t *ocapn_session_id(const ocapn_session *s);
/* Our / the peer's side id (32 bytes); the peer's is NULL before its
 * start-session. */
OCAPN_API const uint8_t *ocapn_session_local_side_id(const ocapn_session *s);
OCAPN_API const uint8_t *ocapn_session_peer_side_id(const ocapn_session *s);

/* The peer's bootstrap object (import position 0): one reference. */
OCAPN_API int ocapn_session_bootstrap(ocapn_session *s, ocapn_ref **out);
/* Fetch an object by swiss number from the peer's bootstrap object:
 * `*result` is a promise for it. */
OCAPN_API int ocapn_session_fetch(ocapn_session *s, const uint8_t *swiss,
    size_t len, ocapn_ref **result);

/* Counters for tests and monitoring. */
typedef enum ocapn_session_stat {
	OCAPN_STAT_EXPORTS = 1, /* live export positions (bootstrap excluded) */
	OCAPN_STAT_IMPORTS,     /* live import positions (bootstrap excluded) */
	OCAPN_STAT_ANSWERS,     /* live answer positions */
	OCAPN_STAT_QUESTIONS,   /* our unanswered/unreleased questions */
	OCAPN_STAT_MSGS_IN,
	OCAPN_STAT_MSGS_OUT
} ocapn_session_stat;
OCAPN_API uint64_t ocapn_session_stat_get(const ocapn_session *s,
    ocapn_session_stat which);

/* ---- In-memory loopback ----------------------------------------------- */

/*
 * Connect two sessions (of two vats, or of the same vat) back to back in
 * memory: ocapn_loopback_pump() moves each side's output into the other
 * side's input and runs both vats until nothing moves.  For tests,
 * examples and single-process use.  The loopback does not own the
 * sessions.
 */
typedef struct ocapn_loopback ocapn_loopback;
OCAPN_API int ocapn_loopback_new(ocapn_session *a, ocapn_session *b,
    ocapn_loopback **out);
OCAPN_API void ocapn_loopback_free(ocapn_loopback *lb);
/* Pump until quiet or `max_rounds` (0 = no limit); returns the number of
 * bytes moved. */
OCAPN_API size_t ocapn_loopback_pump(ocapn_loopback *lb, size_t max_rounds);
/* Deliver bytes to the other side in chunks of at most `n` bytes
 * (default: everything at once), to exercise partial messages. */
OCAPN_API void ocapn_loopback_set_chunk(ocapn_loopback *lb, size_t n);

#ifdef __cplusplus
}
#endif

#endif /* OCAPN_CAPTP_H */
