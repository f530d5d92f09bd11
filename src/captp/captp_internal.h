/*
 * Internal structures of the CapTP layer: the object core of a vat
 * (references, promises, turns) and the session engine that maps them to
 * CapTP positions.  Everything here is deterministic: no I/O, no clock, no
 * threads.
 */
#ifndef OCAPN_CAPTP_INTERNAL_H
#define OCAPN_CAPTP_INTERNAL_H

#include <ocapn/captp.h>
#include <ocapn/locator.h>
#include <ocapn/vat.h>

#include "../syrup/syrup_internal.h"
#include "../util/util.h"
#include "crypto.h"

/* ------------------------------------------------------------------ */
/* Hash map: uint64 key -> pointer.  Linear probing with backward-shift
 * deletion, so workloads that insert and delete forever (positions that
 * only grow) never accumulate tombstones and never rehash once the table
 * has reached its working size. */

typedef struct ocapn__map {
	uint64_t *keys;
	void **vals; /* NULL = empty slot; stored values are never NULL */
	size_t cap;  /* power of two or 0 */
	size_t count;
} ocapn__map;

void ocapn__map_init(ocapn__map *m);
void ocapn__map_free(ocapn__map *m, const ocapn_allocator *a);
void *ocapn__map_get(const ocapn__map *m, uint64_t key);
/* Insert or replace; OCAPN_E_NOMEM. */
int ocapn__map_put(ocapn__map *m, const ocapn_allocator *a, uint64_t key,
    void *val);
/* Remove; returns the old value or NULL. */
void *ocapn__map_del(ocapn__map *m, uint64_t key);
/* Iterate: for (size_t i = 0; i < m->cap; i++) if (m->vals[i]) ... */

static inline uint64_t
ocapn__ptr_key(const void *p)
{
	return (uint64_t)(uintptr_t)p;
}

/* Is `v` the symbol `lit` (a string literal)?  Lengths first, inline:
 * the engine tests every message label and descriptor against several
 * names, and most tests fail on the length. */
#define OCAPN__SYM_IS(v, lit) ocapn__sym_is((v), (lit), sizeof(lit) - 1)

static inline bool
ocapn__sym_is(const ocapn_value *v, const char *s, size_t n)
{
	return v->kind == OCAPN_SYMBOL && v->len == n &&
	    memcmp(v->u.p, s, n) == 0;
}

/* ------------------------------------------------------------------ */
/* Fixed-size object pool: a free list, so steady-state workloads make no
 * allocator calls. */

typedef struct ocapn__pool {
	size_t size;
	void *free;
	size_t nfree;
} ocapn__pool;

void *ocapn__pool_get(ocapn__pool *p, const ocapn_allocator *a);
void ocapn__pool_put(ocapn__pool *p, void *item);
void ocapn__pool_drain(ocapn__pool *p, const ocapn_allocator *a);

/* ------------------------------------------------------------------ */
/* Value boxes: a deep copy of a value in one block, holding a reference
 * on every ref inside. */

typedef struct ocapn__vbox {
	size_t block; /* allocation size (size class) */
	ocapn_value v;
	/* followed by the copied items and bytes */
} ocapn__vbox;

struct ocapn_vat;
ocapn__vbox *ocapn__vbox_new(struct ocapn_vat *vat, const ocapn_value *v);
void ocapn__vbox_free(struct ocapn_vat *vat, ocapn__vbox *box);

/* ------------------------------------------------------------------ */
/* References */

enum ref_type {
	REF_OBJECT = OCAPN_REF_OBJECT,
	REF_PROMISE = OCAPN_REF_PROMISE,
	REF_REMOTE = OCAPN_REF_REMOTE,
};

/* Local objects with built-in behaviour. */
enum ref_builtin {
	BUILTIN_NONE = 0, /* user object: u.obj.fn */
	BUILTIN_RESOLVER, /* u.res.promise */
	BUILTIN_BOOTSTRAP /* u.boot.session */
};

/* What a promise or remote ref is bound to on a session. */
enum ref_binding {
	BIND_NONE = 0,
	BIND_IMPORT,  /* the peer's export `pos` (object or promise) */
	BIND_QUESTION /* the answer `pos` of a question we asked */
};

enum prom_state {
	PROM_PENDING = 0,
	PROM_FORWARDED, /* follows u.prom.forward */
	PROM_FULFILLED,
	PROM_BROKEN
};

struct waiter;

struct ocapn_ref {
	uint32_t rc;
	uint8_t type;    /* enum ref_type */
	uint8_t builtin; /* enum ref_builtin (objects) */
	uint8_t binding; /* enum ref_binding */
	uint8_t dead;    /* vat gone: every operation fails */
	struct ocapn_vat *vat;
	struct ocapn_session *session; /* with binding != NONE */
	uint64_t pos;                  /* import or question position */
	uint64_t wire_count; /* BIND_IMPORT: descriptors received (GC) */
	union {
		struct {
			ocapn_method_fn fn;
			void *user;
			ocapn_finalize_fn fin;
		} obj;
		struct {
			struct ocapn_ref *promise; /* strong; NULL once used */
		} res;
		struct {
			struct ocapn_session *session; /* weak */
		} boot;
	} u;
	/* promise state (type == REF_PROMISE) */
	struct {
		uint8_t state;      /* enum prom_state */
		uint8_t listening;  /* op:listen sent for BIND_IMPORT */
		ocapn__vbox *value; /* FULFILLED value / BROKEN reason */
		struct ocapn_ref *forward; /* FORWARDED: strong */
		struct waiter *head, **tail;
	} p;
};

/* Things waiting on a pending promise. */
enum waiter_kind {
	WAIT_CALLBACK = 1, /* ocapn_when */
	WAIT_LISTENER,     /* send 'fulfill/'break to a ref */
	WAIT_SEND,         /* a message sent to the promise */
	WAIT_GET,          /* op:get / op:index / op:untag */
};

enum field_op { FIELD_GET = 1, FIELD_INDEX, FIELD_UNTAG };

struct waiter {
	struct waiter *next;
	uint8_t kind;
	uint8_t flag;                  /* LISTENER: wants partial; GET: op */
	uint32_t origin;               /* serial of the session whose peer
	                                * queued it (0: local), for the
	                                * per-session queue limit */
	ocapn__vbox *box;              /* SEND: args; GET: field/tag */
	struct ocapn_ref *ref;         /* LISTENER: listener; SEND/GET:
	                                * resolver or NULL (strong) */
	uint64_t index;                /* GET index */
	ocapn_settled_fn fn;           /* CALLBACK */
	void *user;
};

/* A turn waiting to run. */
enum turn_kind { TURN_DELIVER = 1, TURN_CALLBACK };

struct turn {
	struct turn *next;
	uint8_t kind;
	uint8_t ok;              /* CALLBACK: fulfilled */
	struct ocapn_ref *target; /* DELIVER: object; CALLBACK: the promise
	                           * (keeps its value alive); strong */
	ocapn__vbox *args;        /* DELIVER */
	struct ocapn_ref *resolver; /* DELIVER, strong, may be NULL */
	ocapn_settled_fn fn;      /* CALLBACK */
	void *user;
	ocapn__vbox *value;       /* CALLBACK value when not from a promise */
};

#define VBOX_CLASSES 12 /* 64 B .. 128 KiB */
/* Large boxes kept for reuse when freed (see vbox.c): how many, and the
 * largest size kept. */
#define VBOX_SPARES 2
#define VBOX_SPARE_MAX ((size_t)16 << 20)

struct ocapn_vat {
	ocapn_allocator a;
	struct turn *thead, **ttail;
	size_t nturns;
	ocapn_arena *scratch;
	ocapn__pool ref_pool, waiter_pool, turn_pool;
	ocapn__pool vbox_pool[VBOX_CLASSES];
	ocapn__vbox *vbox_spare[VBOX_SPARES]; /* freed boxes above the
	                                       * classes, or NULL */
	ocapn__map registry; /* hash(swiss) -> struct reg_entry chain */
	struct ocapn_session *sessions; /* list */
	ocapn__map by_serial;           /* serial -> session */
	ocapn_connect_fn connect;
	void *connect_user;
	ocapn_wakeup_fn wakeup;
	void *wakeup_user;
	struct peer_rec *peers;  /* one per peer ever asked for (peer.c) */
	uint64_t handoff_count;  /* next handoff count we use as receiver */
	uint8_t recent_dialect;  /* of the last session to complete */
	bool freeing; /* ocapn_vat_free() has begun */
	bool zombie;  /* it has returned: only dead refs keep the struct */
	uint64_t live_refs;
};

/* Core operations (vat.c) used by the engine. */
struct ocapn_ref *ocapn__ref_new(struct ocapn_vat *vat, uint8_t type);
struct ocapn_ref *ocapn__promise_new(struct ocapn_vat *vat);
/* New promise + resolver pair. */
int ocapn__promise_pair(struct ocapn_vat *vat, struct ocapn_ref **p,
    struct ocapn_ref **r);
/* Follow forwarding and fulfilled-with-a-ref promises to the ref that
 * messages should go to now (borrowed). */
struct ocapn_ref *ocapn__shorten(struct ocapn_ref *ref);
/* Resolve a promise directly (not through a resolver).  `v` is copied;
 * `broken` selects break. */
void ocapn__promise_settle(struct ocapn_ref *p, bool broken,
    const ocapn_value *v);
/* Break with a C string reason. */
void ocapn__promise_break_str(struct ocapn_ref *p, const char *reason);
/* Dispatch a message: local object -> turn; promise -> queue, pipeline or
 * forward; remote -> session.  `args` is a list (borrowed, copied as
 * needed); `resolver` may be NULL (borrowed).  `origin` is the session
 * whose peer sent it, for queue limits (may be NULL). */
int ocapn__dispatch(struct ocapn_ref *target, const ocapn_value *args,
    struct ocapn_ref *resolver, struct ocapn_session *origin);
/* Same with a boxed args list (ownership of `box` passes). */
int ocapn__dispatch_box(struct ocapn_ref *target, ocapn__vbox *box,
    struct ocapn_ref *resolver, struct ocapn_session *origin);
/* Add a listener (send 'fulfill/'break to `listener` once settled). */
int ocapn__promise_listen(struct ocapn_ref *p, struct ocapn_ref *listener,
    bool partial, struct ocapn_session *origin);
/* Field access on a target (op:get/index/untag); resolves `resolver`.
 * `result`, if given, is the promise `resolver` settles: it gets bound to
 * the new answer position when the access goes over a session. */
int ocapn__field(struct ocapn_ref *target, uint8_t op,
    const ocapn_value *key, uint64_t index, struct ocapn_ref *resolver,
    struct ocapn_ref *result, struct ocapn_session *origin);
/* Resolve a resolver-like ref (local resolver or remote object). */
int ocapn__resolve_ref(struct ocapn_ref *resolver, bool broken,
    const ocapn_value *v);
int ocapn__resolve_ref_str(struct ocapn_ref *resolver, const char *reason);
/* The bootstrap object's 'deposit-gift and 'withdraw-gift (handoffs). */
int ocapn__bootstrap_gift(struct ocapn_vat *vat, struct ocapn_ref *self,
    const ocapn_value *args, struct ocapn_ref *resolver);
/* Registry lookup (NULL if unknown), borrowed. */
struct ocapn_ref *ocapn__registry_get(struct ocapn_vat *vat,
    const uint8_t *swiss, size_t len);
/* Build `[sym(method) args...]` in `arena`. */
int ocapn__make_args(ocapn_arena *arena, const char *method,
    const ocapn_value *extra, size_t n, ocapn_value *out);
void ocapn__turn_push(struct ocapn_vat *vat, struct turn *t);
struct turn *ocapn__turn_new(struct ocapn_vat *vat);

/* Session engine hooks used by the core (session.c). */
/* Send a message to `target` (bound to `s`) with optional result
 * resolver; if `result` (a promise) is given and not yet bound, it is bound
 * to the question so later sends pipeline. */
int ocapn__session_send(struct ocapn_session *s, struct ocapn_ref *target,
    const ocapn_value *args, struct ocapn_ref *resolver,
    struct ocapn_ref *result_promise);
/* op:get/index/untag over the wire to `target` bound to `s`. */
int ocapn__session_field(struct ocapn_session *s, struct ocapn_ref *target,
    uint8_t op, const ocapn_value *key, uint64_t index,
    struct ocapn_ref *resolver, struct ocapn_ref *result);
/* Send op:listen for an import-bound promise. */
int ocapn__session_listen(struct ocapn_session *s, struct ocapn_ref *p);
/* The last reference to a ref bound to `s` is gone. */
void ocapn__session_unbind(struct ocapn_session *s, struct ocapn_ref *r);
/* Session is usable for sending. */
bool ocapn__session_alive(const struct ocapn_session *s);
/* Free every session of a vat (vat teardown). */
void ocapn__session_vat_gone(struct ocapn_session *s);
/* Peers (peer.c). */
struct pending_withdraw;
/* The peer's bootstrap object: an import if a session to it is active,
 * else a promise resolved when one becomes active (a connection is
 * started through the vat's connector).  One reference. */
int ocapn__peer_bootstrap(struct ocapn_vat *vat, const ocapn_locator *peer,
    struct ocapn_ref **out);
/* A session completed its handshake / ended. */
void ocapn__vat_session_ready(struct ocapn_session *s);
void ocapn__vat_session_gone(struct ocapn_session *s, const char *why);
/* Queue a withdrawal for the exporter `peer` (sent once a session to it
 * is active); takes ownership of `pw`. */
void ocapn__peer_withdraw(struct ocapn_vat *vat, const ocapn_locator *peer,
    struct pending_withdraw *pw);
/* Send a withdrawal on the active session `s` and free `pw` (handoff.c).*/
void ocapn__handoff_send_withdraw(struct ocapn_session *s,
    struct pending_withdraw *pw);
/* Break a pending withdrawal's promise and free it (handoff.c). */
void ocapn__handoff_drop_withdraw(struct ocapn_vat *vat,
    struct pending_withdraw *pw, const char *why);
void ocapn__peers_free(struct ocapn_vat *vat);
/* Re-dispatch the sends queued on `p` (it just got bound to a session). */
void ocapn__promise_rebind(struct ocapn_ref *p);

/* Per-session accounting of messages queued on unresolved promises. */
uint32_t ocapn__session_serial(const struct ocapn_session *s);
struct ocapn_vat *ocapn__session_vat(const struct ocapn_session *s);
struct ocapn_session *ocapn__session_lookup(struct ocapn_vat *vat,
    uint32_t serial);
void ocapn__session_queued(struct ocapn_vat *vat, uint32_t serial, int d);

#endif
