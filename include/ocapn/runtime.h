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
 * loop.  As with any libuv program, writes to a socket whose peer has gone
 * raise SIGPIPE: applications ignore it (signal(SIGPIPE, SIG_IGN)); the
 * library does not change process-wide signal dispositions.
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

/* ---- unix-domain-socket (Goblins 0.16 compatible) -------------------- */

/*
 * unix-domain-socket: peers on one machine register with an introduction
 * server (ocapn_intro_server below, or Goblins') listening on the
 * AF_UNIX stream socket `intro_server_path`, and get connected by
 * descriptor passing; the server never sees CapTP bytes.  See
 * docs/netlayers.md.
 *
 * `seed`: 32 bytes from which the designator key is derived (the same
 * seed gives the same designator across runs), or NULL for a fresh key.
 * The control socket is connected before this returns (if the server's
 * listen queue is full, connecting is retried from the loop):
 * OCAPN_E_CONNREFUSED when no server listens on the path, OCAPN_E_INVAL
 * for a bad argument or a path too long for an AF_UNIX address,
 * OCAPN_E_NOMEM, OCAPN_E_IO, OCAPN_E_CRYPTO.  Registration then completes
 * on the loop (OCAPN_UDS_REGISTERED, or OCAPN_UDS_SERVER_LOST after at
 * most 10 s).  Connect errors known at once: OCAPN_E_INVAL (not a
 * unix-domain-socket locator with a valid designator), OCAPN_E_NOTFOUND
 * (its hints name only other introduction servers), OCAPN_E_LIMIT (1024
 * requests waiting for registration), OCAPN_E_CLOSED (server lost or
 * netlayer stopped).
 *
 * Locator: `ocapn://DESIGNATOR.unix-domain-socket?SERVERKEY=t`, in band
 * `<ocapn-peer 'unix-domain-socket "DESIGNATOR" {"SERVERKEY": "t"}>`,
 * DESIGNATOR and SERVERKEY the lowercase unpadded base32 of the two
 * Ed25519 keys.  Until registration completes the server key is unknown
 * and the locator has hints `f`: publish the locator (or sturdyref URIs)
 * after OCAPN_UDS_REGISTERED.  Connections requested before that are
 * queued and sent once registered; the CapTP sessions the runtime starts
 * for them carry the locator as it was when they were requested.
 *
 * The netlayer is freed by ocapn_netlayer_free() (after
 * ocapn_netlayer_stop() completed), or by the runtime that took it.
 */
OCAPN_API int ocapn_uds_netlayer_new(uv_loop_t *loop,
    const char *intro_server_path, const uint8_t *seed,
    const ocapn_allocator *alloc, ocapn_netlayer **out);

typedef enum ocapn_uds_event {
	/* Registered with the server: the locator now has its hint. */
	OCAPN_UDS_REGISTERED = 1,
	/* One introduction from the server was refused (not addressed to
	 * us, or not a connected unix stream socket); its descriptor was
	 * closed.  `reason` says why.  The control connection stays. */
	OCAPN_UDS_REFUSED,
	/* The control connection to the server ended (server gone,
	 * registration failed or timed out, or the server broke the
	 * protocol): `status` and `reason` say why.  Connections not yet
	 * handed to the server failed (on_connect with an error, then
	 * on_close); established CapTP connections are not affected; new
	 * ones fail with OCAPN_E_CLOSED.  Last event. */
	OCAPN_UDS_SERVER_LOST
} ocapn_uds_event;

/* Called from the loop; `reason` is valid during the call.  It may call
 * any netlayer function, including ocapn_netlayer_stop(). */
typedef void (*ocapn_uds_event_fn)(void *user, ocapn_netlayer *nl,
    ocapn_uds_event ev, int status, const char *reason);

/* Set (or clear, with NULL) the event callback of a unix-domain-socket
 * netlayer.  OCAPN_E_INVAL if `nl` is another kind of netlayer. */
OCAPN_API int ocapn_uds_netlayer_set_event_cb(ocapn_netlayer *nl,
    ocapn_uds_event_fn fn, void *user);
/* True once registered (and until the control connection is lost). */
OCAPN_API bool ocapn_uds_netlayer_registered(const ocapn_netlayer *nl);

/*
 * The introduction server of the unix-domain-socket netlayer, speaking
 * the protocol of Goblins 0.16's server.  It listens on `path` (a stale
 * socket file nobody listens on is replaced; OCAPN_E_EXISTS if a server
 * answers there), checks each peer's key with a challenge, forwards each
 * uds:new-connection and its descriptor to the target peer, and queues
 * introductions for peers that register later (bounded, expiring: see
 * docs/netlayers.md).  It never relays CapTP bytes.
 *
 * `seed`: 32 bytes for a stable server key, or NULL for a fresh one.
 * Errors: OCAPN_E_INVAL (bad argument, path too long), OCAPN_E_EXISTS,
 * OCAPN_E_NOMEM, OCAPN_E_IO (socket, bind or listen failed),
 * OCAPN_E_CRYPTO.  Everything runs on `loop`.
 */
typedef struct ocapn_intro_server ocapn_intro_server;

OCAPN_API int ocapn_intro_server_new(uv_loop_t *loop, const char *path,
    const uint8_t *seed, const ocapn_allocator *alloc,
    ocapn_intro_server **out);
/* base32 of the server's public key: the hint key peers publish.  Owned
 * by the server, valid until it is freed. */
OCAPN_API const char *ocapn_intro_server_key(const ocapn_intro_server *s);
/* One line per notable event (peer registered, introduction forwarded or
 * queued, client refused and why).  `line` is valid during the call; the
 * callback must not call back into the server. */
typedef void (*ocapn_intro_log_fn)(void *user, const char *line);
OCAPN_API void ocapn_intro_server_set_log(ocapn_intro_server *s,
    ocapn_intro_log_fn fn, void *user);
/* Stop listening, close every client and drop queued introductions,
 * remove the socket file; `done` (may be NULL) is called from the loop
 * when every handle is closed.  Idempotent. */
OCAPN_API void ocapn_intro_server_close(ocapn_intro_server *s,
    void (*done)(void *), void *user);
/* Free after `done` ran.  NULL is ignored. */
OCAPN_API void ocapn_intro_server_free(ocapn_intro_server *s);

/* ---- shm (shared memory between local processes, Linux) ------------ */

/*
 * shm: CapTP over shared-memory packet rings (docs/shm.md).  The netlayer
 * listens on the SOCK_SEQPACKET rendezvous socket
 * DIR/<first 16 characters of its designator>.sock; DIR must be a
 * directory of ours that no group or other user can enter (e.g. made
 * with mkdtemp), since only the descriptors handed over on that socket
 * grant anything.  `dir` NULL: no listener (outbound connections only;
 * the locator has no path).  A stale socket file nobody listens on is
 * replaced.
 *
 * `seed`: 32 bytes from which the designator key is derived (the same
 * seed gives the same designator), or NULL for a fresh key.
 *
 * Locator: `ocapn://DESIGNATOR.shm?path=PATH`, DESIGNATOR the lowercase
 * unpadded base32 of the 32-byte Ed25519 designator key, PATH the
 * percent-encoded socket path.  Before CapTP starts, both sides prove
 * their designator keys inside the rings (an Ed25519 signature over both
 * nonces, both keys and the signer's role); a peer dialled must prove
 * the key its locator names, and the key an initiator proved is the
 * connection's peer (ocapn_conn_peer()).
 *
 * Errors: OCAPN_E_INVAL (bad argument, path too long, directory not
 * private), OCAPN_E_EXISTS (a live listener at the path), OCAPN_E_IO,
 * OCAPN_E_NOMEM, OCAPN_E_CRYPTO; OCAPN_E_UNSUPPORTED on systems other
 * than Linux.  Connect errors known at once: OCAPN_E_INVAL (not an shm
 * locator with a valid designator, or a bad path), OCAPN_E_NOTFOUND (no
 * path hint), OCAPN_E_CLOSED (stopped).  Freed by ocapn_netlayer_free()
 * after ocapn_netlayer_stop() completed, or by the runtime that took it.
 */
OCAPN_API int ocapn_shm_netlayer_new(uv_loop_t *loop, const char *dir,
    const uint8_t *seed, const ocapn_allocator *alloc, ocapn_netlayer **out);

/*
 * Busy-poll budget: after sending on a connection the netlayer watches
 * its rings without system calls for up to `max_ns` nanoseconds (adapted
 * down to 1 us when spins find nothing) before it sleeps on the doorbell;
 * 0 never spins.  Default 50000 (about twice a doorbell wakeup here).
 * OCAPN_E_INVAL if `nl` is not an shm netlayer.
 */
OCAPN_API int ocapn_shm_netlayer_set_spin(ocapn_netlayer *nl,
    uint64_t max_ns);

/*
 * Size of the shared buffer each side sends into (default 4 MiB) for
 * connections made from now on; messages up to half of it travel as one
 * zero-copy packet, longer ones are fragmented and reassembled.
 * `bytes`: a multiple of 64 from 4096 to 1 GiB, else OCAPN_E_INVAL (also
 * if `nl` is not an shm netlayer).
 */
OCAPN_API int ocapn_shm_netlayer_set_buffer(ocapn_netlayer *nl,
    size_t bytes);

#ifdef __cplusplus
}
#endif

#endif /* OCAPN_RUNTIME_H */
