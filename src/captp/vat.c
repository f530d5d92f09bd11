/*
 * The object core of a vat: references, promises, the turn queue and
 * message dispatch.  Deterministic: the caller runs turns.
 *
 * Promise invariants:
 *   - a promise is PENDING, FORWARDED (to another promise, which it then
 *     follows for every purpose), FULFILLED (with a value that is never a
 *     promise: resolving to a promise forwards instead) or BROKEN;
 *   - waiters live only on PENDING promises; forwarding moves them to the
 *     promise followed;
 *   - forwarding never forms a cycle (resolving to itself breaks).
 * So ocapn__shorten() always terminates and yields either a non-promise
 * ref, or a promise that is pending, broken, or fulfilled with data.
 */
#include <stdio.h>

#include "captp_internal.h"

static const char vat_gone_reason[] = "vat shutting down";

/* ------------------------------------------------------------------ */
/* Vat                                                                  */
/* ------------------------------------------------------------------ */

struct reg_entry {
	struct reg_entry *next;
	ocapn_ref *ref;
	size_t len;
	uint8_t swiss[];
};

static uint64_t
swiss_hash(const uint8_t *s, size_t n)
{
	uint64_t h = UINT64_C(0xcbf29ce484222325);
	for (size_t i = 0; i < n; i++) {
		h ^= s[i];
		h *= UINT64_C(0x100000001b3);
	}
	return h;
}

OCAPN_API int
ocapn_vat_new(const ocapn_allocator *alloc, ocapn_vat **out)
{
	ocapn_allocator a;
	ocapn__alloc_init(&a, alloc);
	if (ocapn__crypto_init())
		return OCAPN_E_CRYPTO;
	ocapn_vat *vat = ocapn__calloc(&a, sizeof(*vat));
	if (!vat)
		return OCAPN_E_NOMEM;
	vat->a = a;
	vat->ttail = &vat->thead;
	vat->ref_pool.size = sizeof(struct ocapn_ref);
	vat->waiter_pool.size = sizeof(struct waiter);
	vat->turn_pool.size = sizeof(struct turn);
	ocapn__map_init(&vat->registry);
	ocapn__map_init(&vat->by_serial);
	vat->scratch = ocapn_arena_new(&a);
	if (!vat->scratch) {
		ocapn__free(&a, vat, sizeof(*vat));
		return OCAPN_E_NOMEM;
	}
	*out = vat;
	return OCAPN_OK;
}

static void turn_free(ocapn_vat *vat, struct turn *t);

static void
vat_release_memory(ocapn_vat *vat)
{
	ocapn__pool_drain(&vat->turn_pool, &vat->a);
	ocapn__pool_drain(&vat->waiter_pool, &vat->a);
	ocapn__pool_drain(&vat->ref_pool, &vat->a);
	for (int i = 0; i < VBOX_CLASSES; i++)
		ocapn__pool_drain(&vat->vbox_pool[i], &vat->a);
	for (int i = 0; i < VBOX_SPARES; i++)
		if (vat->vbox_spare[i])
			ocapn__free(&vat->a, vat->vbox_spare[i],
			    vat->vbox_spare[i]->block);
	ocapn_allocator a = vat->a;
	ocapn__free(&a, vat, sizeof(*vat));
}

OCAPN_API void
ocapn_vat_free(ocapn_vat *vat)
{
	if (!vat)
		return;
	vat->freeing = true;
	/* Sessions first: they break what depends on them and release their
	 * tables. */
	while (vat->sessions)
		ocapn__session_vat_gone(vat->sessions);
	ocapn__peers_free(vat);
	/* Pending turns hold references; drop them without running. */
	while (vat->thead) {
		struct turn *t = vat->thead;
		vat->thead = t->next;
		if (t->kind == TURN_CALLBACK && t->fn) {
			ocapn_value r;
			ocapn_value_set_string(&r, vat_gone_reason,
			    sizeof(vat_gone_reason) - 1);
			t->fn(vat, false, &r, t->user);
		}
		turn_free(vat, t);
	}
	vat->ttail = &vat->thead;
	/* Registry entries hold references. */
	for (size_t i = 0; i < vat->registry.cap; i++) {
		struct reg_entry *e = vat->registry.vals[i];
		while (e) {
			struct reg_entry *n = e->next;
			ocapn_ref_release(e->ref);
			ocapn__free(&vat->a, e, sizeof(*e) + e->len);
			e = n;
		}
	}
	ocapn__map_free(&vat->registry, &vat->a);
	ocapn__map_free(&vat->by_serial, &vat->a);
	/* Turns queued by teardown (callbacks of broken promises). */
	while (vat->thead) {
		struct turn *t = vat->thead;
		vat->thead = t->next;
		if (t->kind == TURN_CALLBACK && t->fn) {
			const ocapn_value *v = t->value ? &t->value->v : NULL;
			ocapn_value r;
			if (!v && t->target && t->target->p.value)
				v = &t->target->p.value->v;
			if (!v) {
				ocapn_value_set_string(&r, vat_gone_reason,
				    sizeof(vat_gone_reason) - 1);
				v = &r;
			}
			t->fn(vat, t->ok, v, t->user);
		}
		turn_free(vat, t);
	}
	ocapn_arena_free(vat->scratch);
	vat->scratch = NULL;
	/* Refs still held by the application stay allocated as dead handles
	 * (every operation on them fails with OCAPN_E_CLOSED) and keep the
	 * vat struct as their allocator record; the last release frees it. */
	if (vat->live_refs == 0)
		vat_release_memory(vat);
	else
		vat->zombie = true;
}

OCAPN_API ocapn_arena *
ocapn_vat_arena(ocapn_vat *vat)
{
	return vat->scratch;
}

OCAPN_API bool
ocapn_vat_idle(const ocapn_vat *vat)
{
	return vat->thead == NULL;
}

struct turn *
ocapn__turn_new(ocapn_vat *vat)
{
	if (vat->zombie)
		return NULL; /* nothing will ever run it */
	struct turn *t = ocapn__pool_get(&vat->turn_pool, &vat->a);
	if (t)
		memset(t, 0, sizeof(*t));
	return t;
}

void
ocapn__turn_push(ocapn_vat *vat, struct turn *t)
{
	bool was_idle = vat->thead == NULL;
	t->next = NULL;
	*vat->ttail = t;
	vat->ttail = &t->next;
	vat->nturns++;
	if (was_idle && vat->wakeup)
		vat->wakeup(vat->wakeup_user, vat);
}

OCAPN_API void
ocapn_vat_set_wakeup(ocapn_vat *vat, ocapn_wakeup_fn fn, void *user)
{
	vat->wakeup = fn;
	vat->wakeup_user = user;
}

static void
turn_free(ocapn_vat *vat, struct turn *t)
{
	ocapn_ref_release(t->target);
	ocapn_ref_release(t->resolver);
	ocapn__vbox_free(vat, t->args);
	ocapn__vbox_free(vat, t->value);
	ocapn__pool_put(&vat->turn_pool, t);
}

static int builtin_call(ocapn_vat *vat, ocapn_ref *self,
    const ocapn_value *args, ocapn_ref *resolver);

static void
run_turn(ocapn_vat *vat, struct turn *t)
{
	if (t->kind == TURN_DELIVER) {
		ocapn_ref *self = t->target;
		int rc;
		if (self->builtin)
			rc = builtin_call(vat, self, &t->args->v, t->resolver);
		else
			rc = self->u.obj.fn(vat, self, &t->args->v,
			    t->resolver, self->u.obj.user);
		if (rc && t->resolver) {
			char msg[96];
			snprintf(msg, sizeof(msg), "method failed: %s",
			    ocapn_strerror(rc));
			if (!(t->resolver->builtin == BUILTIN_RESOLVER &&
				!t->resolver->u.res.promise))
				ocapn__resolve_ref_str(t->resolver, msg);
		}
	} else {
		const ocapn_value *v = NULL;
		if (t->value)
			v = &t->value->v;
		else if (t->target && t->target->p.value)
			v = &t->target->p.value->v;
		ocapn_value none;
		if (!v) {
			ocapn_value_set_bool(&none, false);
			v = &none;
		}
		t->fn(vat, t->ok != 0, v, t->user);
	}
}

OCAPN_API size_t
ocapn_vat_run(ocapn_vat *vat, size_t max_turns)
{
	size_t n = 0;
	while (vat->thead && (max_turns == 0 || n < max_turns)) {
		struct turn *t = vat->thead;
		vat->thead = t->next;
		if (!vat->thead)
			vat->ttail = &vat->thead;
		vat->nturns--;
		run_turn(vat, t);
		turn_free(vat, t);
		ocapn_arena_reset(vat->scratch);
		n++;
	}
	ocapn_arena_reset(vat->scratch);
	return n;
}

/* ------------------------------------------------------------------ */
/* References                                                           */
/* ------------------------------------------------------------------ */

ocapn_ref *
ocapn__ref_new(ocapn_vat *vat, uint8_t type)
{
	ocapn_ref *r = ocapn__pool_get(&vat->ref_pool, &vat->a);
	if (!r)
		return NULL;
	memset(r, 0, sizeof(*r));
	r->rc = 1;
	r->type = type;
	r->vat = vat;
	r->p.tail = &r->p.head;
	vat->live_refs++;
	return r;
}

ocapn_ref *
ocapn__promise_new(ocapn_vat *vat)
{
	return ocapn__ref_new(vat, REF_PROMISE);
}

OCAPN_API ocapn_ref *
ocapn_ref_retain(ocapn_ref *r)
{
	if (r)
		r->rc++;
	return r;
}

static void waiter_free(ocapn_vat *vat, struct waiter *w);
static void fire_waiters(ocapn_ref *p, struct waiter *list);

static void
ref_free(ocapn_ref *r)
{
	ocapn_vat *vat = r->vat;
	if (r->binding != BIND_NONE && r->session) {
		ocapn__session_unbind(r->session, r);
		r->session = NULL;
		r->binding = BIND_NONE;
	}
	if (r->type == REF_OBJECT) {
		if (r->builtin == BUILTIN_RESOLVER && r->u.res.promise) {
			/* A resolver dropped unused: nobody can resolve its
			 * promise any more, so break it rather than leave
			 * its waiters hanging. */
			ocapn_ref *p = r->u.res.promise;
			r->u.res.promise = NULL;
			if (!vat->freeing || p->p.head)
				ocapn__promise_break_str(p,
				    "resolver dropped without resolving");
			ocapn_ref_release(p);
		} else if (r->builtin == BUILTIN_NONE && r->u.obj.fin) {
			r->u.obj.fin(r->u.obj.user);
		}
	} else if (r->type == REF_PROMISE) {
		struct waiter *w = r->p.head;
		r->p.head = NULL;
		r->p.tail = &r->p.head;
		if (w && r->p.state == PROM_PENDING) {
			/* Nobody can settle it any more. */
			r->p.state = PROM_BROKEN;
			ocapn_value why;
			ocapn_value_set_string(&why, "promise dropped", 15);
			r->p.value = ocapn__vbox_new(vat, &why);
			fire_waiters(r, w);
		} else {
			while (w) {
				struct waiter *n = w->next;
				waiter_free(vat, w);
				w = n;
			}
		}
		ocapn__vbox_free(vat, r->p.value);
		r->p.value = NULL;
		ocapn_ref_release(r->p.forward);
	}
	vat->live_refs--;
	ocapn__pool_put(&vat->ref_pool, r);
	if (vat->zombie && vat->live_refs == 0)
		vat_release_memory(vat);
}

OCAPN_API void
ocapn_ref_release(ocapn_ref *r)
{
	if (!r)
		return;
	if (--r->rc == 0)
		ref_free(r);
}

OCAPN_API ocapn_ref_kind
ocapn_ref_kind_of(const ocapn_ref *r)
{
	return (ocapn_ref_kind)r->type;
}

OCAPN_API ocapn_vat *
ocapn_ref_vat(const ocapn_ref *r)
{
	return r->vat;
}

OCAPN_API void *
ocapn_ref_user(const ocapn_ref *r)
{
	return r->type == REF_OBJECT && r->builtin == BUILTIN_NONE
	    ? r->u.obj.user
	    : NULL;
}

OCAPN_API bool
ocapn_ref_same(const ocapn_ref *a, const ocapn_ref *b)
{
	return a == b;
}

OCAPN_API void
ocapn_value_set_ref(ocapn_value *v, ocapn_ref *ref)
{
	v->kind = OCAPN_REF;
	v->flags = 0;
	v->reserved_ = 0;
	v->len = 0;
	v->u.ref = ref;
}

OCAPN_API int
ocapn_vat_spawn(ocapn_vat *vat, ocapn_method_fn fn, void *user,
    ocapn_finalize_fn fin, ocapn_ref **out)
{
	if (!vat || !fn || !out)
		return OCAPN_E_INVAL;
	if (vat->freeing)
		return OCAPN_E_CLOSED;
	ocapn_ref *r = ocapn__ref_new(vat, REF_OBJECT);
	if (!r)
		return OCAPN_E_NOMEM;
	r->u.obj.fn = fn;
	r->u.obj.user = user;
	r->u.obj.fin = fin;
	*out = r;
	return OCAPN_OK;
}

ocapn_ref *
ocapn__shorten(ocapn_ref *r)
{
	while (r->type == REF_PROMISE) {
		if (r->p.state == PROM_FORWARDED)
			r = r->p.forward;
		else if (r->p.state == PROM_FULFILLED &&
		    r->p.value->v.kind == OCAPN_REF)
			r = r->p.value->v.u.ref;
		else
			break;
	}
	return r;
}

/* ------------------------------------------------------------------ */
/* Promises                                                             */
/* ------------------------------------------------------------------ */

int
ocapn__promise_pair(ocapn_vat *vat, ocapn_ref **pp, ocapn_ref **rp)
{
	ocapn_ref *p = ocapn__promise_new(vat);
	ocapn_ref *r = p ? ocapn__ref_new(vat, REF_OBJECT) : NULL;
	if (!r) {
		ocapn_ref_release(p);
		return OCAPN_E_NOMEM;
	}
	r->builtin = BUILTIN_RESOLVER;
	r->u.res.promise = ocapn_ref_retain(p);
	*pp = p;
	*rp = r;
	return OCAPN_OK;
}

OCAPN_API int
ocapn_vat_promise(ocapn_vat *vat, ocapn_ref **promise, ocapn_ref **resolver)
{
	if (!vat || !promise || !resolver)
		return OCAPN_E_INVAL;
	if (vat->freeing)
		return OCAPN_E_CLOSED;
	return ocapn__promise_pair(vat, promise, resolver);
}

static struct waiter *
waiter_new(ocapn_vat *vat, uint8_t kind)
{
	struct waiter *w = ocapn__pool_get(&vat->waiter_pool, &vat->a);
	if (w) {
		memset(w, 0, sizeof(*w));
		w->kind = kind;
	}
	return w;
}

static void
set_origin(ocapn_vat *vat, struct waiter *w, ocapn_session *origin)
{
	if (origin) {
		w->origin = ocapn__session_serial(origin);
		ocapn__session_queued(vat, w->origin, +1);
	}
}

static void
waiter_free(ocapn_vat *vat, struct waiter *w)
{
	if (w->origin)
		ocapn__session_queued(vat, w->origin, -1);
	ocapn__vbox_free(vat, w->box);
	ocapn_ref_release(w->ref);
	ocapn__pool_put(&vat->waiter_pool, w);
}

/* Does anything wait for this promise's resolution (not just pipelined
 * sends)?  Then an import-bound promise must be listened to. */
static void
ensure_listening(ocapn_ref *p)
{
	if (p->binding == BIND_IMPORT && !p->p.listening &&
	    p->p.state == PROM_PENDING && ocapn__session_alive(p->session)) {
		p->p.listening = 1;
		if (ocapn__session_listen(p->session, p))
			p->p.listening = 0;
	}
}

static void
add_waiter(ocapn_ref *p, struct waiter *w)
{
	w->next = NULL;
	*p->p.tail = w;
	p->p.tail = &w->next;
	if (w->kind != WAIT_SEND)
		ensure_listening(p);
}

/* Build ['fulfill v] or ['break v] in the scratch arena. */
static int
resolution_args(ocapn_vat *vat, bool broken, const ocapn_value *v,
    ocapn_value *out)
{
	if (!vat->scratch)
		return OCAPN_E_CLOSED; /* vat freed */
	ocapn_value *items = ocapn_arena_values(vat->scratch, 2);
	if (!items)
		return OCAPN_E_NOMEM;
	if (broken)
		ocapn_value_set_symbol(&items[0], "break", 5);
	else
		ocapn_value_set_symbol(&items[0], "fulfill", 7);
	items[1] = *v;
	ocapn_value_set_list(out, items, 2);
	return OCAPN_OK;
}

static void field_compute(ocapn_ref *resolver, uint8_t op,
    const ocapn_value *key, uint64_t index, const ocapn_value *v);

static void
fire_one(ocapn_ref *p, struct waiter *w)
{
	ocapn_vat *vat = p->vat;
	bool broken = p->p.state == PROM_BROKEN;
	const ocapn_value *v = &p->p.value->v;
	switch (w->kind) {
	case WAIT_CALLBACK: {
		struct turn *t = ocapn__turn_new(vat);
		if (!t)
			break; /* out of memory: the callback is lost */
		t->kind = TURN_CALLBACK;
		t->ok = !broken;
		t->fn = w->fn;
		t->user = w->user;
		t->target = ocapn_ref_retain(p);
		ocapn__turn_push(vat, t);
		break;
	}
	case WAIT_LISTENER: {
		ocapn_value args;
		if (resolution_args(vat, broken, v, &args) == OCAPN_OK)
			ocapn__dispatch(w->ref, &args, NULL, NULL);
		break;
	}
	case WAIT_SEND:
		if (broken) {
			if (w->ref)
				ocapn__resolve_ref(w->ref, true, v);
		} else {
			ocapn__vbox *box = w->box;
			w->box = NULL;
			ocapn__dispatch_box(p, box, w->ref,
			    ocapn__session_lookup(vat, w->origin));
		}
		break;
	case WAIT_GET:
		if (broken)
			ocapn__resolve_ref(w->ref, true, v);
		else
			field_compute(w->ref, w->flag,
			    w->box ? &w->box->v : NULL, w->index, v);
		break;
	}
}

static void
fire_waiters(ocapn_ref *p, struct waiter *list)
{
	ocapn_ref_retain(p);
	while (list) {
		struct waiter *n = list->next;
		fire_one(p, list);
		waiter_free(p->vat, list);
		list = n;
	}
	ocapn_ref_release(p);
}

/* A queued send or get (`w`) goes to `to` now, as if just made there,
 * and is freed: true.  Other waiters are left alone: false. */
static bool
redirect_waiter(ocapn_vat *vat, ocapn_ref *to, struct waiter *w)
{
	if (w->kind != WAIT_SEND && w->kind != WAIT_GET)
		return false;
	ocapn_session *origin = ocapn__session_lookup(vat, w->origin);
	if (w->kind == WAIT_SEND) {
		ocapn__vbox *box = w->box;
		w->box = NULL;
		ocapn__dispatch_box(to, box, w->ref, origin);
	} else {
		ocapn__field(to, w->flag, w->box ? &w->box->v : NULL,
		    w->index, w->ref, NULL, origin);
	}
	waiter_free(vat, w);
	return true;
}

void
ocapn__promise_settle(ocapn_ref *p, bool broken, const ocapn_value *v)
{
	if (p->type != REF_PROMISE || p->p.state != PROM_PENDING)
		return;
	ocapn_vat *vat = p->vat;
	ocapn_value why;
	if (!broken && v->kind == OCAPN_REF && v->u.ref->type == REF_PROMISE) {
		ocapn_ref *f = v->u.ref;
		while (f->p.state == PROM_FORWARDED)
			f = f->p.forward;
		if (f == p) {
			broken = true;
			ocapn_value_set_string(&why,
			    "promise resolved to itself", 26);
			v = &why;
		} else if (f->p.state == PROM_PENDING) {
			p->p.state = PROM_FORWARDED;
			p->p.forward = ocapn_ref_retain(f);
			struct waiter *w = p->p.head;
			p->p.head = NULL;
			p->p.tail = &p->p.head;
			/* Sends now go where `f` sends them (possibly over
			 * a session); everything else waits on `f`. */
			ocapn_ref_retain(p);
			while (w) {
				struct waiter *n = w->next;
				if (redirect_waiter(vat, f, w)) {
					/* sent on, freed */
				} else if (w->kind == WAIT_LISTENER && w->flag &&
				    !(f->binding != BIND_NONE &&
					f->session == w->ref->session)) {
					/* wants-partial: told of the promise
					 * followed (unless it lives on the
					 * listener's own peer: then only its
					 * settlement is news), then done. */
					ocapn_value pv, args;
					ocapn_value_set_ref(&pv, f);
					if (resolution_args(vat, false, &pv,
						&args) == OCAPN_OK)
						ocapn__dispatch(w->ref, &args,
						    NULL, NULL);
					waiter_free(vat, w);
				} else {
					add_waiter(f, w);
				}
				w = n;
			}
			ocapn_ref_release(p);
			return;
		} else {
			/* Settled already: take its outcome. */
			broken = f->p.state == PROM_BROKEN;
			if (f->p.state == PROM_FULFILLED ||
			    f->p.state == PROM_BROKEN)
				v = &f->p.value->v;
		}
	}
	ocapn__vbox *box = ocapn__vbox_new(vat, v);
	if (!box) {
		broken = true;
		ocapn_value_set_string(&why, "out of memory", 13);
		box = ocapn__vbox_new(vat, &why);
		if (!box)
			return; /* nothing sensible left to do */
	}
	p->p.state = broken ? PROM_BROKEN : PROM_FULFILLED;
	p->p.value = box;
	struct waiter *w = p->p.head;
	p->p.head = NULL;
	p->p.tail = &p->p.head;
	fire_waiters(p, w);
}

void
ocapn__promise_rebind(ocapn_ref *p)
{
	ocapn_vat *vat = p->vat;
	struct waiter *w = p->p.head, *keep = NULL, **kt = &keep;
	p->p.head = NULL;
	p->p.tail = &p->p.head;
	ocapn_ref_retain(p);
	while (w) {
		struct waiter *n = w->next;
		if (!redirect_waiter(vat, p, w)) {
			w->next = NULL;
			*kt = w;
			kt = &w->next;
		}
		w = n;
	}
	/* what is left waits for the settlement, as before */
	if (keep) {
		*p->p.tail = keep;
		p->p.tail = kt;
	}
	ocapn_ref_release(p);
}

void
ocapn__promise_break_str(ocapn_ref *p, const char *reason)
{
	ocapn_value v;
	ocapn_value_set_string(&v, reason, strlen(reason));
	ocapn__promise_settle(p, true, &v);
}

int
ocapn__resolve_ref(ocapn_ref *res, bool broken, const ocapn_value *v)
{
	if (!res)
		return OCAPN_OK;
	if (res->dead)
		return OCAPN_E_CLOSED;
	if (res->type == REF_OBJECT && res->builtin == BUILTIN_RESOLVER) {
		ocapn_ref *p = res->u.res.promise;
		if (!p)
			return OCAPN_E_STATE;
		res->u.res.promise = NULL;
		ocapn__promise_settle(p, broken, v);
		ocapn_ref_release(p);
		return OCAPN_OK;
	}
	ocapn_value args;
	int rc = resolution_args(res->vat, broken, v, &args);
	if (rc)
		return rc;
	return ocapn__dispatch(res, &args, NULL, NULL);
}

int
ocapn__resolve_ref_str(ocapn_ref *res, const char *reason)
{
	ocapn_value v;
	ocapn_value_set_string(&v, reason, strlen(reason));
	return ocapn__resolve_ref(res, true, &v);
}

OCAPN_API int
ocapn_resolve(ocapn_ref *resolver, const ocapn_value *value)
{
	if (!resolver || !value)
		return OCAPN_E_INVAL;
	return ocapn__resolve_ref(resolver, false, value);
}

OCAPN_API int
ocapn_break(ocapn_ref *resolver, const ocapn_value *reason)
{
	if (!resolver)
		return OCAPN_E_INVAL;
	if (!reason)
		return ocapn__resolve_ref_str(resolver, "broken");
	return ocapn__resolve_ref(resolver, true, reason);
}

OCAPN_API int
ocapn_break_str(ocapn_ref *resolver, const char *reason)
{
	if (!resolver || !reason)
		return OCAPN_E_INVAL;
	if (!ocapn__utf8_valid((const uint8_t *)reason, strlen(reason)))
		return OCAPN_E_UTF8;
	return ocapn__resolve_ref_str(resolver, reason);
}

OCAPN_API int
ocapn_when(ocapn_ref *target, ocapn_settled_fn fn, void *user)
{
	if (!target || !fn)
		return OCAPN_E_INVAL;
	if (target->dead)
		return OCAPN_E_CLOSED;
	ocapn_vat *vat = target->vat;
	ocapn_ref *p = target;
	while (p->type == REF_PROMISE && p->p.state == PROM_FORWARDED)
		p = p->p.forward;
	if (p->type == REF_PROMISE && p->p.state == PROM_PENDING) {
		struct waiter *w = waiter_new(vat, WAIT_CALLBACK);
		if (!w)
			return OCAPN_E_NOMEM;
		w->fn = fn;
		w->user = user;
		add_waiter(p, w);
		return OCAPN_OK;
	}
	struct turn *t = ocapn__turn_new(vat);
	if (!t)
		return OCAPN_E_NOMEM;
	t->kind = TURN_CALLBACK;
	t->fn = fn;
	t->user = user;
	if (p->type == REF_PROMISE) {
		t->ok = p->p.state == PROM_FULFILLED;
		t->target = ocapn_ref_retain(p);
	} else {
		ocapn_value v;
		ocapn_value_set_ref(&v, p);
		t->ok = 1;
		t->value = ocapn__vbox_new(vat, &v);
		if (!t->value) {
			turn_free(vat, t);
			return OCAPN_E_NOMEM;
		}
	}
	ocapn__turn_push(vat, t);
	return OCAPN_OK;
}

OCAPN_API int
ocapn_promise_state(ocapn_ref *promise, const ocapn_value **out)
{
	if (!promise || !out)
		return OCAPN_E_INVAL;
	ocapn_ref *p = promise;
	while (p->type == REF_PROMISE && p->p.state == PROM_FORWARDED)
		p = p->p.forward;
	if (p->type != REF_PROMISE) {
		/* A non-promise is its own value: describe it with a value
		 * stored in the ref's vat scratch arena. */
		ocapn_value *v = ocapn_arena_values(p->vat->scratch, 1);
		if (!v)
			return OCAPN_E_NOMEM;
		ocapn_value_set_ref(v, p);
		*out = v;
		return OCAPN_OK;
	}
	switch (p->p.state) {
	case PROM_FULFILLED:
		*out = &p->p.value->v;
		return OCAPN_OK;
	case PROM_BROKEN:
		*out = &p->p.value->v;
		return OCAPN_E_BROKEN;
	default:
		return OCAPN_E_AGAIN;
	}
}

/* ------------------------------------------------------------------ */
/* Dispatch                                                             */
/* ------------------------------------------------------------------ */

static int
dispatch(ocapn_ref *target, const ocapn_value *args, ocapn__vbox *box,
    ocapn_ref *resolver, ocapn_ref *result, ocapn_session *origin)
{
	ocapn_vat *vat = target->vat;
	const ocapn_value *a = box ? &box->v : args;
	ocapn_ref *t = ocapn__shorten(target);
	if (t->dead || vat->freeing) {
		ocapn__vbox_free(vat, box);
		if (resolver)
			ocapn__resolve_ref_str(resolver, vat_gone_reason);
		return OCAPN_E_CLOSED;
	}
	switch (t->type) {
	case REF_OBJECT: {
		struct turn *tn = ocapn__turn_new(vat);
		if (!tn)
			goto nomem;
		if (!box && !(box = ocapn__vbox_new(vat, a))) {
			ocapn__pool_put(&vat->turn_pool, tn);
			goto nomem;
		}
		tn->kind = TURN_DELIVER;
		tn->target = ocapn_ref_retain(t);
		tn->args = box;
		tn->resolver = ocapn_ref_retain(resolver);
		ocapn__turn_push(vat, tn);
		return OCAPN_OK;
	}
	case REF_REMOTE:
		break;
	case REF_PROMISE:
		if (t->p.state == PROM_BROKEN) {
			ocapn__vbox_free(vat, box);
			if (resolver)
				ocapn__resolve_ref(resolver, true,
				    &t->p.value->v);
			return OCAPN_OK;
		}
		if (t->p.state == PROM_FULFILLED) {
			ocapn__vbox_free(vat, box);
			if (resolver)
				ocapn__resolve_ref_str(resolver,
				    "message sent to a value that is not an "
				    "object");
			return OCAPN_OK;
		}
		if (t->binding != BIND_NONE)
			break; /* pipeline over its session */
		{
			struct waiter *w = waiter_new(vat, WAIT_SEND);
			if (!w)
				goto nomem;
			if (!box && !(box = ocapn__vbox_new(vat, a))) {
				ocapn__pool_put(&vat->waiter_pool, w);
				goto nomem;
			}
			w->box = box;
			w->ref = ocapn_ref_retain(resolver);
			set_origin(vat, w, origin);
			add_waiter(t, w);
			return OCAPN_OK;
		}
	}
	/* Over the session `t` is bound to. */
	if (!ocapn__session_alive(t->session)) {
		ocapn__vbox_free(vat, box);
		if (resolver)
			ocapn__resolve_ref_str(resolver,
			    "the session to this object is gone");
		return OCAPN_OK;
	}
	int rc = ocapn__session_send(t->session, t, a, resolver, result);
	ocapn__vbox_free(vat, box);
	if (rc && resolver)
		ocapn__resolve_ref_str(resolver, ocapn_strerror(rc));
	return rc;
nomem:
	ocapn__vbox_free(vat, box);
	if (resolver)
		ocapn__resolve_ref_str(resolver, "out of memory");
	return OCAPN_E_NOMEM;
}

int
ocapn__dispatch(ocapn_ref *target, const ocapn_value *args,
    ocapn_ref *resolver, ocapn_session *origin)
{
	return dispatch(target, args, NULL, resolver, NULL, origin);
}

int
ocapn__dispatch_box(ocapn_ref *target, ocapn__vbox *box,
    ocapn_ref *resolver, ocapn_session *origin)
{
	return dispatch(target, NULL, box, resolver, NULL, origin);
}

int
ocapn__promise_listen(ocapn_ref *p, ocapn_ref *listener, bool partial,
    ocapn_session *origin)
{
	ocapn_vat *vat = p->vat;
	while (p->type == REF_PROMISE && p->p.state == PROM_FORWARDED)
		p = p->p.forward;
	if (p->type != REF_PROMISE || p->p.state != PROM_PENDING) {
		/* Settled (or not a promise): answer at once. */
		ocapn_value args, self;
		const ocapn_value *v;
		bool broken = false;
		if (p->type != REF_PROMISE) {
			ocapn_value_set_ref(&self, p);
			v = &self;
		} else {
			broken = p->p.state == PROM_BROKEN;
			v = &p->p.value->v;
		}
		int rc = resolution_args(vat, broken, v, &args);
		if (rc)
			return rc;
		return ocapn__dispatch(listener, &args, NULL, NULL);
	}
	struct waiter *w = waiter_new(vat, WAIT_LISTENER);
	if (!w)
		return OCAPN_E_NOMEM;
	w->ref = ocapn_ref_retain(listener);
	w->flag = partial;
	add_waiter(p, w);
	return OCAPN_OK;
}

/* ------------------------------------------------------------------ */
/* Field access: op:get, op:index, op:untag                             */
/* ------------------------------------------------------------------ */

static bool
same_text(const ocapn_value *a, const ocapn_value *b)
{
	bool ta = a->kind == OCAPN_STRING || a->kind == OCAPN_SYMBOL;
	bool tb = b->kind == OCAPN_STRING || b->kind == OCAPN_SYMBOL;
	if (ta && tb)
		return a->len == b->len &&
		    (a->len == 0 || memcmp(a->u.p, b->u.p, a->len) == 0);
	return ocapn_value_equal(a, b);
}

static void
field_compute(ocapn_ref *resolver, uint8_t op, const ocapn_value *key,
    uint64_t index, const ocapn_value *v)
{
	switch (op) {
	case FIELD_GET:
		if (v->kind == OCAPN_DICT) {
			for (uint32_t i = 0; i < v->len; i++)
				if (same_text(&v->u.items[2 * i], key)) {
					ocapn__resolve_ref(resolver, false,
					    &v->u.items[2 * i + 1]);
					return;
				}
			ocapn__resolve_ref_str(resolver, "no such field");
			return;
		}
		ocapn__resolve_ref_str(resolver, "op:get on a value that is "
						 "not a struct");
		return;
	case FIELD_INDEX:
		if (v->kind == OCAPN_LIST) {
			if (index < v->len)
				ocapn__resolve_ref(resolver, false,
				    &v->u.items[index]);
			else
				ocapn__resolve_ref_str(resolver,
				    "index out of range");
			return;
		}
		ocapn__resolve_ref_str(resolver, "op:index on a value that is "
						 "not a list");
		return;
	case FIELD_UNTAG:
		/* Tagged values: <TAG PAYLOAD>, or Goblins'
		 * <user-record TAG PAYLOAD>, or <desc:tagged TAG PAYLOAD>. */
		if (v->kind == OCAPN_RECORD) {
			const ocapn_value *label = &v->u.items[0];
			if (v->len == 2 && same_text(label, key)) {
				ocapn__resolve_ref(resolver, false,
				    &v->u.items[1]);
				return;
			}
			if (v->len == 3 &&
			    (OCAPN__SYM_IS(label, "user-record") ||
				OCAPN__SYM_IS(label, "desc:tagged")) &&
			    same_text(&v->u.items[1], key)) {
				ocapn__resolve_ref(resolver, false,
				    &v->u.items[2]);
				return;
			}
			ocapn__resolve_ref_str(resolver, "tag does not match");
			return;
		}
		ocapn__resolve_ref_str(resolver, "op:untag on a value that is "
						 "not tagged");
		return;
	}
}

int
ocapn__field(ocapn_ref *target, uint8_t op, const ocapn_value *key,
    uint64_t index, ocapn_ref *resolver, ocapn_ref *result,
    ocapn_session *origin)
{
	ocapn_vat *vat = target->vat;
	ocapn_ref *t = target;
	while (t->type == REF_PROMISE && t->p.state == PROM_FORWARDED)
		t = t->p.forward;
	if (t->type == REF_PROMISE && t->p.state == PROM_PENDING) {
		if (t->binding != BIND_NONE &&
		    ocapn__session_alive(t->session))
			return ocapn__session_field(t->session, t, op, key,
			    index, resolver, result);
		struct waiter *w = waiter_new(vat, WAIT_GET);
		if (!w)
			return OCAPN_E_NOMEM;
		if (key && !(w->box = ocapn__vbox_new(vat, key))) {
			ocapn__pool_put(&vat->waiter_pool, w);
			return OCAPN_E_NOMEM;
		}
		w->flag = op;
		w->index = index;
		w->ref = ocapn_ref_retain(resolver);
		set_origin(vat, w, origin);
		add_waiter(t, w);
		return OCAPN_OK;
	}
	if (t->type == REF_PROMISE) {
		if (t->p.state == PROM_BROKEN)
			return ocapn__resolve_ref(resolver, true,
			    &t->p.value->v);
		field_compute(resolver, op, key, index, &t->p.value->v);
		return OCAPN_OK;
	}
	if (t->type == REF_REMOTE && ocapn__session_alive(t->session))
		return ocapn__session_field(t->session, t, op, key, index,
		    resolver, result);
	return ocapn__resolve_ref_str(resolver,
	    "field access on an object reference");
}

/* ------------------------------------------------------------------ */
/* Eventual send API                                                    */
/* ------------------------------------------------------------------ */

static int
send_common(ocapn_ref *target, const ocapn_value *args, ocapn_ref **result)
{
	if (!target || !args)
		return OCAPN_E_INVAL;
	if (args->kind != OCAPN_LIST)
		return OCAPN_E_TYPE;
	ocapn_vat *vat = target->vat;
	if (target->dead || vat->freeing)
		return OCAPN_E_CLOSED;
	ocapn_ref *p = NULL, *r = NULL;
	if (result) {
		int rc = ocapn__promise_pair(vat, &p, &r);
		if (rc)
			return rc;
	}
	int rc = dispatch(target, args, NULL, r, p, NULL);
	ocapn_ref_release(r);
	if (result) {
		*result = p;
		return rc == OCAPN_E_NOMEM ? rc : OCAPN_OK;
	}
	return rc;
}

OCAPN_API int
ocapn_send(ocapn_ref *target, const ocapn_value *args, ocapn_ref **result)
{
	return send_common(target, args, result);
}

int
ocapn__make_args(ocapn_arena *arena, const char *method,
    const ocapn_value *extra, size_t n, ocapn_value *out)
{
	ocapn_value *items = ocapn_arena_values(arena, n + 1);
	if (!items)
		return OCAPN_E_NOMEM;
	ocapn_value_set_symbol(&items[0], method, strlen(method));
	for (size_t i = 0; i < n; i++)
		items[i + 1] = extra[i];
	ocapn_value_set_list(out, items, n + 1);
	return OCAPN_OK;
}

OCAPN_API int
ocapn_call(ocapn_ref *target, const char *method, const ocapn_value *extra,
    size_t nargs, ocapn_ref **result)
{
	if (!target || !method || (nargs && !extra))
		return OCAPN_E_INVAL;
	ocapn_value args;
	int rc = ocapn__make_args(target->vat->scratch, method, extra, nargs,
	    &args);
	if (rc)
		return rc;
	return send_common(target, &args, result);
}

static int
field_api(ocapn_ref *target, uint8_t op, const ocapn_value *key,
    uint64_t index, ocapn_ref **result)
{
	if (!target || !result || (op != FIELD_INDEX && !key))
		return OCAPN_E_INVAL;
	if (target->dead || target->vat->freeing)
		return OCAPN_E_CLOSED;
	ocapn_ref *p, *r;
	int rc = ocapn__promise_pair(target->vat, &p, &r);
	if (rc)
		return rc;
	rc = ocapn__field(target, op, key, index, r, p, NULL);
	ocapn_ref_release(r);
	*result = p;
	return rc == OCAPN_E_NOMEM ? rc : OCAPN_OK;
}

OCAPN_API int
ocapn_get(ocapn_ref *target, const ocapn_value *field, ocapn_ref **result)
{
	return field_api(target, FIELD_GET, field, 0, result);
}

OCAPN_API int
ocapn_index(ocapn_ref *target, uint64_t index, ocapn_ref **result)
{
	return field_api(target, FIELD_INDEX, NULL, index, result);
}

OCAPN_API int
ocapn_untag(ocapn_ref *target, const ocapn_value *tag, ocapn_ref **result)
{
	return field_api(target, FIELD_UNTAG, tag, 0, result);
}

/* ------------------------------------------------------------------ */
/* Built-in objects                                                     */
/* ------------------------------------------------------------------ */

static int bootstrap_call(ocapn_vat *vat, ocapn_ref *self,
    const ocapn_value *args, ocapn_ref *resolver);

static int
builtin_call(ocapn_vat *vat, ocapn_ref *self, const ocapn_value *args,
    ocapn_ref *resolver)
{
	if (self->builtin == BUILTIN_BOOTSTRAP)
		return bootstrap_call(vat, self, args, resolver);
	/* Resolver: ['fulfill v] or ['break e] */
	if (args->len == 2 &&
	    OCAPN__SYM_IS(&args->u.items[0], "fulfill")) {
		ocapn__resolve_ref(self, false, &args->u.items[1]);
	} else if (args->len == 2 &&
	    OCAPN__SYM_IS(&args->u.items[0], "break")) {
		ocapn__resolve_ref(self, true, &args->u.items[1]);
	} else {
		if (resolver)
			ocapn__resolve_ref_str(resolver,
			    "a resolver takes 'fulfill or 'break with one "
			    "value");
		return OCAPN_OK;
	}
	if (resolver) {
		ocapn_value t;
		ocapn_value_set_bool(&t, true);
		ocapn__resolve_ref(resolver, false, &t);
	}
	return OCAPN_OK;
}

static int
bootstrap_call(ocapn_vat *vat, ocapn_ref *self, const ocapn_value *args,
    ocapn_ref *resolver)
{
	const ocapn_value *m = args->len ? &args->u.items[0] : NULL;
	if (m && OCAPN__SYM_IS(m, "fetch")) {
		if (args->len != 2 || (args->u.items[1].kind != OCAPN_BYTES &&
					  args->u.items[1].kind !=
					      OCAPN_STRING)) {
			return ocapn__resolve_ref_str(resolver,
			    "fetch takes one swiss number");
		}
		const ocapn_value *sw = &args->u.items[1];
		ocapn_ref *obj = ocapn__registry_get(vat, sw->u.p, sw->len);
		if (!obj)
			return ocapn__resolve_ref_str(resolver,
			    "no object is registered under this swiss "
			    "number");
		ocapn_value v;
		ocapn_value_set_ref(&v, obj);
		return ocapn__resolve_ref(resolver, false, &v);
	}
	if (m && (OCAPN__SYM_IS(m, "deposit-gift") ||
		     OCAPN__SYM_IS(m, "withdraw-gift")))
		return ocapn__bootstrap_gift(vat, self, args, resolver);
	return ocapn__resolve_ref_str(resolver,
	    "unknown method of the bootstrap object");
}

/* ------------------------------------------------------------------ */
/* Registry                                                             */
/* ------------------------------------------------------------------ */

ocapn_ref *
ocapn__registry_get(ocapn_vat *vat, const uint8_t *swiss, size_t len)
{
	struct reg_entry *e =
	    ocapn__map_get(&vat->registry, swiss_hash(swiss, len));
	for (; e; e = e->next)
		if (e->len == len && memcmp(e->swiss, swiss, len) == 0)
			return e->ref;
	return NULL;
}

OCAPN_API int
ocapn_vat_register(ocapn_vat *vat, const uint8_t *swiss, size_t len,
    ocapn_ref *obj)
{
	if (!vat || (!swiss && len) || !obj || obj->vat != vat)
		return OCAPN_E_INVAL;
	if (ocapn__registry_get(vat, swiss, len))
		return OCAPN_E_EXISTS;
	struct reg_entry *e = ocapn__malloc(&vat->a, sizeof(*e) + len);
	if (!e)
		return OCAPN_E_NOMEM;
	uint64_t h = swiss_hash(swiss, len);
	e->next = ocapn__map_get(&vat->registry, h);
	e->ref = ocapn_ref_retain(obj);
	e->len = len;
	if (len)
		memcpy(e->swiss, swiss, len);
	if (ocapn__map_put(&vat->registry, &vat->a, h, e)) {
		ocapn_ref_release(obj);
		ocapn__free(&vat->a, e, sizeof(*e) + len);
		return OCAPN_E_NOMEM;
	}
	return OCAPN_OK;
}

OCAPN_API int
ocapn_vat_unregister(ocapn_vat *vat, const uint8_t *swiss, size_t len)
{
	uint64_t h = swiss_hash(swiss, len);
	struct reg_entry *head = ocapn__map_get(&vat->registry, h);
	struct reg_entry **pp = &head;
	for (; *pp; pp = &(*pp)->next) {
		struct reg_entry *e = *pp;
		if (e->len == len && memcmp(e->swiss, swiss, len) == 0) {
			*pp = e->next;
			if (head)
				ocapn__map_put(&vat->registry, &vat->a, h,
				    head); /* replaces: no allocation */
			else
				ocapn__map_del(&vat->registry, h);
			ocapn_ref_release(e->ref);
			ocapn__free(&vat->a, e, sizeof(*e) + e->len);
			return OCAPN_OK;
		}
	}
	return OCAPN_E_NOTFOUND;
}

/* ------------------------------------------------------------------ */
/* Peers                                                                */
/* ------------------------------------------------------------------ */

OCAPN_API void
ocapn_vat_set_connector(ocapn_vat *vat, ocapn_connect_fn fn, void *user)
{
	vat->connect = fn;
	vat->connect_user = user;
}

OCAPN_API int
ocapn_vat_session_for(ocapn_vat *vat, const ocapn_locator *peer,
    ocapn_session **out)
{
	ocapn_session *s = ocapn_vat_find_session(vat, peer);
	if (s) {
		*out = s;
		return OCAPN_OK;
	}
	if (!vat->connect)
		return OCAPN_E_UNSUPPORTED;
	return vat->connect(vat, peer, vat->connect_user, out);
}

OCAPN_API int
ocapn_vat_enliven(ocapn_vat *vat, const ocapn_sturdyref *sr,
    ocapn_ref **result)
{
	if (!vat || !sr || !result)
		return OCAPN_E_INVAL;
	ocapn_ref *boot;
	int rc = ocapn__peer_bootstrap(vat, ocapn_sturdyref_locator(sr), &boot);
	if (rc)
		return rc;
	size_t len;
	const uint8_t *swiss = ocapn_sturdyref_swiss(sr, &len);
	ocapn_value sw;
	ocapn_value_set_bytes(&sw, swiss, len);
	rc = ocapn_call(boot, "fetch", &sw, 1, result);
	ocapn_ref_release(boot);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Break reasons                                                        */
/* ------------------------------------------------------------------ */

OCAPN_API const char *
ocapn_break_text(const ocapn_value *reason, size_t *len)
{
	static const char mystery[] = "remote exception (no details)";
	static const char generic[] = "broken (reason is not text)";
	if (reason && (reason->kind == OCAPN_STRING ||
			  reason->kind == OCAPN_SYMBOL)) {
		*len = reason->len;
		return (const char *)reason->u.p;
	}
	if (reason && ocapn_value_is_record(reason, "exn:fail:mystery", 0)) {
		*len = sizeof(mystery) - 1;
		return mystery;
	}
	*len = sizeof(generic) - 1;
	return generic;
}
