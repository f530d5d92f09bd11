/*
 * libocapn: the runtime, a vat driven by a libuv loop over netlayers.
 *
 * The runtime owns the glue: it is the handler of its netlayers, puts a
 * CapTP session on every connection (acceptor for inbound, initiator for
 * outbound), feeds received messages to the sessions, runs the vat's turns
 * when they are pending, and writes the sessions' output.  The vat dials
 * through it (one session per peer, reused by every reference to that
 * peer and by both directions).  An initiator refused for its CapTP version
 * reconnects once in the version the peer announced and remembers it for
 * that peer.
 *
 * Everything runs on the loop's thread; every callback comes from the
 * loop.
 */
#ifndef OCAPN_RUNTIME_H
#define OCAPN_RUNTIME_H

#include <uv.h>

#include <ocapn/captp.h>
#include <ocapn/netlayer.h>
#include <ocapn/vat.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ocapn_runtime ocapn_runtime;

/*
 * New runtime on `loop` (NULL: it creates and owns one) driving `vat`
 * (NULL: it creates and owns one).  OCAPN_E_NOMEM, OCAPN_E_IO.
 */
OCAPN_API int ocapn_runtime_new(uv_loop_t *loop, ocapn_vat *vat,
    const ocapn_allocator *alloc, ocapn_runtime **out);
/* Free the runtime, the netlayers it was given, and the loop and vat if
 * it created them.  Call it after ocapn_runtime_close() completed; if it
 * was not closed, it closes first and runs the loop until that is done. */
OCAPN_API void ocapn_runtime_free(ocapn_runtime *rt);
OCAPN_API uv_loop_t *ocapn_runtime_loop(ocapn_runtime *rt);
OCAPN_API ocapn_vat *ocapn_runtime_vat(ocapn_runtime *rt);

/* Take over `nl` (the runtime becomes its handler and will free it). */
OCAPN_API int ocapn_runtime_add_netlayer(ocapn_runtime *rt,
    ocapn_netlayer *nl);
/* The netlayer serving `transport`, or NULL. */
OCAPN_API ocapn_netlayer *ocapn_runtime_netlayer(ocapn_runtime *rt,
    const char *transport);

/* Dialect for new outbound sessions (default AUTO: version 1.0 unless a
 * peer taught us otherwise).  Inbound sessions always answer in the
 * initiator's version unless this is set to a fixed dialect. */
OCAPN_API void ocapn_runtime_set_dialect(ocapn_runtime *rt, ocapn_dialect d);

/* Run the loop until it has nothing left to do (UV_RUN_DEFAULT). */
OCAPN_API int ocapn_runtime_run(ocapn_runtime *rt);

/*
 * Graceful shutdown: every session is aborted (op:abort "shutting down"),
 * its output flushed, its transport closed (our end first, then the
 * peer's drained), every netlayer stopped.  `done` (may be NULL) is called
 * from the loop when everything is closed.
 */
OCAPN_API void ocapn_runtime_close(ocapn_runtime *rt,
    void (*done)(void *user), void *user);

/* URI of a sturdyref to our `swiss` on netlayer `nl` (appended to `out`,
 * NUL-terminated). */
OCAPN_API int ocapn_runtime_sturdyref_uri(ocapn_runtime *rt,
    ocapn_netlayer *nl, const uint8_t *swiss, size_t len,
    ocapn_buffer *out);
/* Enliven a sturdyref URI: `*result` is a promise for the object. */
OCAPN_API int ocapn_runtime_enliven_uri(ocapn_runtime *rt, const char *uri,
    size_t len, ocapn_ref **result);

/*
 * Trace every whole CapTP message the runtime sends (`outbound` true) or
 * receives, for debugging and demos.  `msg` is valid during the call.
 * NULL stops tracing.
 */
typedef void (*ocapn_trace_fn)(void *user, ocapn_session *s, bool outbound,
    const uint8_t *msg, size_t len);
OCAPN_API void ocapn_runtime_set_trace(ocapn_runtime *rt, ocapn_trace_fn fn,
    void *user);

/* Number of live connections (for tests and monitoring). */
OCAPN_API size_t ocapn_runtime_connections(const ocapn_runtime *rt);

/* ---- Built-in netlayers ---------------------------------------------- */

/*
 * tcp-testing-only, listening on `host` (a numeric address; NULL =
 * 127.0.0.1) and `port` (0 = any free port, reflected in the locator).
 * `designator` NULL = random.  No authentication: for tests only.
 */
OCAPN_API int ocapn_tcp_netlayer_new(uv_loop_t *loop, const char *host,
    unsigned port, const char *designator, const ocapn_allocator *alloc,
    ocapn_netlayer **out);

/* testuds: listens on DIR/NAME.sock and reaches peer P at DIR/P.sock. */
OCAPN_API int ocapn_testuds_netlayer_new(uv_loop_t *loop, const char *dir,
    const char *name, const ocapn_allocator *alloc, ocapn_netlayer **out);

#ifdef __cplusplus
}
#endif

#endif /* OCAPN_RUNTIME_H */
