/*
 * libocapn: the vat, its objects, references and promises.
 *
 * A vat is a single-threaded container of objects.  Everything happens in
 * turns: a turn delivers one message to one object (or runs one promise
 * callback) and runs to completion.  Messages sent during a turn are queued
 * and delivered in later turns, in the order they were sent (E-order), so
 * no callback ever runs inside the call that caused it.
 *
 * The vat itself has no clock, no thread and no I/O: something drives it by
 * calling ocapn_vat_run() when turns are pending.  That is the runtime's
 * job (libuv, see runtime.h) or, in tests, a loop that moves bytes between
 * sessions (captp.h, ocapn_loopback_*).
 *
 * References (`ocapn_ref`) are counted handles:
 *   - a local object (behaviour = a C function and user data);
 *   - a promise (local, or standing for a remote promise or the answer to a
 *     remote call); sending to an unresolved promise queues or pipelines;
 *   - a remote object imported over a CapTP session.
 * Dropping the last reference to an import tells the exporting peer (GC).
 *
 * Values passed to and from objects are `ocapn_value`s (syrup.h) that may
 * contain OCAPN_REF items.  The vat copies what it keeps: arguments given
 * to ocapn_send() and resolutions given to ocapn_resolve() may be freed by
 * the caller as soon as the call returns.
 */
#ifndef OCAPN_VAT_H
#define OCAPN_VAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ocapn/common.h>
#include <ocapn/locator.h>
#include <ocapn/syrup.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ocapn_vat ocapn_vat;
typedef struct ocapn_ref ocapn_ref;
typedef struct ocapn_session ocapn_session; /* captp.h */

typedef enum ocapn_ref_kind {
	OCAPN_REF_OBJECT = 1,  /* a local object */
	OCAPN_REF_PROMISE,     /* a promise (local or remote) */
	OCAPN_REF_REMOTE       /* an object imported from a peer */
} ocapn_ref_kind;

/* ---- Vat ---------------------------------------------------------- */

/* New vat (NULL allocator = malloc).  OCAPN_E_NOMEM, OCAPN_E_CRYPTO. */
OCAPN_API int ocapn_vat_new(const ocapn_allocator *alloc, ocapn_vat **out);
/*
 * Free the vat: aborts its sessions (reason "vat shutting down"), breaks
 * every pending promise, runs object finalizers, frees everything.  Refs
 * still held by the application become dead handles that must still be
 * released; any operation on them fails with OCAPN_E_CLOSED.
 */
OCAPN_API void ocapn_vat_free(ocapn_vat *vat);

/* Run pending turns until none is left or `max_turns` have run (0 = no
 * limit).  Returns the number of turns run. */
OCAPN_API size_t ocapn_vat_run(ocapn_vat *vat, size_t max_turns);
/* True when no turn is pending. */
OCAPN_API bool ocapn_vat_idle(const ocapn_vat *vat);

/* Called (inside whatever call caused it) when a turn is queued while none
 * was pending, so a driver can schedule ocapn_vat_run().  It must not call
 * back into the vat. */
typedef void (*ocapn_wakeup_fn)(void *user, ocapn_vat *vat);
OCAPN_API void ocapn_vat_set_wakeup(ocapn_vat *vat, ocapn_wakeup_fn fn,
    void *user);

/*
 * Scratch arena for building values during a turn (or between runs):
 * reset by the vat after every turn and at the end of ocapn_vat_run(), so
 * anything allocated from it is valid until the current turn ends.
 */
OCAPN_API ocapn_arena *ocapn_vat_arena(ocapn_vat *vat);

/* ---- Objects ------------------------------------------------------ */

/*
 * Behaviour of a local object: called in its own turn with the message
 * arguments (`args` is a list; its refs are borrowed: retain those you
 * keep) and `resolver`, the resolver of the caller's result promise, or
 * NULL for a message that wants no answer.  Resolve it now or later
 * (ocapn_resolve / ocapn_break; retain it to keep it past the call).
 * Returning a non-zero ocapn_err breaks an unresolved resolver with a
 * string reason naming the error.
 */
typedef int (*ocapn_method_fn)(ocapn_vat *vat, ocapn_ref *self,
    const ocapn_value *args, ocapn_ref *resolver, void *user);
/* Called once when the object is freed (last reference dropped, or the
 * vat freed).  May be NULL. */
typedef void (*ocapn_finalize_fn)(void *user);

/* Create a local object; `*out` holds one reference.  OCAPN_E_NOMEM. */
OCAPN_API int ocapn_vat_spawn(ocapn_vat *vat, ocapn_method_fn fn,
    void *user, ocapn_finalize_fn finalize, ocapn_ref **out);

/* ---- References --------------------------------------------------- */

OCAPN_API ocapn_ref *ocapn_ref_retain(ocapn_ref *ref);
/* Drop one reference; NULL is ignored. */
OCAPN_API void ocapn_ref_release(ocapn_ref *ref);
OCAPN_API ocapn_ref_kind ocapn_ref_kind_of(const ocapn_ref *ref);
OCAPN_API ocapn_vat *ocapn_ref_vat(const ocapn_ref *ref);
/* User data of a local object (NULL for other refs). */
OCAPN_API void *ocapn_ref_user(const ocapn_ref *ref);
/* Same object?  Promises compare by identity, not by resolution. */
OCAPN_API bool ocapn_ref_same(const ocapn_ref *a, const ocapn_ref *b);

/* Put `ref` into `v` as an OCAPN_REF value (borrowed: `v` does not own a
 * reference). */
OCAPN_API void ocapn_value_set_ref(ocapn_value *v, ocapn_ref *ref);

/* ---- Promises ----------------------------------------------------- */

/* New unresolved promise and its resolver (a local object taking
 * 'fulfill / 'break messages).  Two references returned. */
OCAPN_API int ocapn_vat_promise(ocapn_vat *vat, ocapn_ref **promise,
    ocapn_ref **resolver);

/*
 * Resolve through a resolver: fulfil with `value` (copied; it may be a
 * reference, including another promise, which the promise then follows)
 * or break with `reason` (any value; NULL = a generic reason).  Works for
 * local resolvers and for remote ones (sends 'fulfill / 'break).  A second
 * resolution of a local resolver is ignored (OCAPN_E_STATE).
 */
OCAPN_API int ocapn_resolve(ocapn_ref *resolver, const ocapn_value *value);
OCAPN_API int ocapn_break(ocapn_ref *resolver, const ocapn_value *reason);
/* Break with a string reason. */
OCAPN_API int ocapn_break_str(ocapn_ref *resolver, const char *reason);

/*
 * Callback when `target` settles: `fulfilled` true with its value (for a
 * non-promise ref: the ref itself), or false with the break reason.  The
 * value is valid during the call only.  Always called in a later turn,
 * exactly once (also when the vat is freed: broken).
 */
typedef void (*ocapn_settled_fn)(ocapn_vat *vat, bool fulfilled,
    const ocapn_value *value, void *user);
OCAPN_API int ocapn_when(ocapn_ref *target, ocapn_settled_fn fn,
    void *user);

/* State of a promise right now: OCAPN_OK fulfilled (value in *out, valid
 * until the promise is released), OCAPN_E_BROKEN (reason in *out),
 * OCAPN_E_AGAIN unresolved.  Non-promises are "fulfilled" with themselves.
 */
OCAPN_API int ocapn_promise_state(ocapn_ref *promise,
    const ocapn_value **out);

/* ---- Eventual send ------------------------------------------------ */

/*
 * Send `args` (a list value, copied) to `target` in a later turn.  With
 * `result` non-NULL, `*result` receives a promise for the answer (one
 * reference); sending to that promise before it resolves pipelines the
 * message to where the answer will be.  Sending to a remote object goes
 * out over its session.  OCAPN_E_TYPE if args is not a list,
 * OCAPN_E_CLOSED if the target's vat or session is gone (the result, if
 * asked, is then a broken promise and OCAPN_OK is returned).
 */
OCAPN_API int ocapn_send(ocapn_ref *target, const ocapn_value *args,
    ocapn_ref **result);
/* Convenience: args = [symbol(method), extra...] built from a method name
 * and `nargs` values. */
OCAPN_API int ocapn_call(ocapn_ref *target, const char *method,
    const ocapn_value *extra, size_t nargs, ocapn_ref **result);

/* Pipelined field access on a (promise for a) value: struct field, list
 * index, tagged-value payload.  `*result` is a promise. */
OCAPN_API int ocapn_get(ocapn_ref *target, const ocapn_value *field,
    ocapn_ref **result);
OCAPN_API int ocapn_index(ocapn_ref *target, uint64_t index,
    ocapn_ref **result);
OCAPN_API int ocapn_untag(ocapn_ref *target, const ocapn_value *tag,
    ocapn_ref **result);

/* ---- Sturdyrefs ----------------------------------------------------- */

/* Make `obj` reachable by swiss number through the bootstrap object's
 * 'fetch (the vat keeps a reference).  OCAPN_E_EXISTS if taken. */
OCAPN_API int ocapn_vat_register(ocapn_vat *vat, const uint8_t *swiss,
    size_t len, ocapn_ref *obj);
OCAPN_API int ocapn_vat_unregister(ocapn_vat *vat, const uint8_t *swiss,
    size_t len);

/* ---- Peers -------------------------------------------------------- */

/*
 * How the vat reaches a peer it has no session with: the driver (the
 * runtime, a test) creates an initiator session towards `peer`, arranges
 * for its transport, and returns it (not yet connected is fine: output is
 * held until the handshake completes).  Return an ocapn_err to refuse.
 */
typedef int (*ocapn_connect_fn)(ocapn_vat *vat, const ocapn_locator *peer,
    void *user, ocapn_session **out);
OCAPN_API void ocapn_vat_set_connector(ocapn_vat *vat, ocapn_connect_fn fn,
    void *user);

/* The live (handshaking or active) session with `peer`, or NULL.  Peers
 * are the same when transport and designator match. */
OCAPN_API ocapn_session *ocapn_vat_find_session(ocapn_vat *vat,
    const ocapn_locator *peer);
/* The session with `peer`, created through the connector if needed. */
OCAPN_API int ocapn_vat_session_for(ocapn_vat *vat,
    const ocapn_locator *peer, ocapn_session **out);

/*
 * Work waiting for a peer normally travels as soon as a session to it is
 * active.  When a connection attempt ended without one (the peer answered
 * crossed hellos by keeping its own connection to us, which then never
 * came), drivers call this now and then: it dials again for every peer
 * with work waiting and no live connection, and returns how many.
 */
OCAPN_API size_t ocapn_vat_check_peers(ocapn_vat *vat);

/* Enliven a sturdyref: reuse or open the session to its peer and fetch
 * its swiss number; `*result` is a promise for the object. */
OCAPN_API int ocapn_vat_enliven(ocapn_vat *vat, const ocapn_sturdyref *sr,
    ocapn_ref **result);

/* ---- Break reasons ------------------------------------------------ */

/* A short text for a break reason: the string itself for strings and
 * symbols, "remote exception (no details)" for Goblins'
 * <exn:fail:mystery>, else a generic text.  Static or borrowed from
 * `reason`; `*len` set. */
OCAPN_API const char *ocapn_break_text(const ocapn_value *reason,
    size_t *len);

#ifdef __cplusplus
}
#endif

#endif /* OCAPN_VAT_H */
