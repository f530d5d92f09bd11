/*
 * The CapTP session engine.
 *
 * Inbound: bytes -> (scanner frames messages) -> strict decode into the
 * session's arena -> check the message against the session's tables ->
 * translate descriptors into refs -> hand work to the vat core (turns,
 * promise waiters).  Outbound: the vat core calls ocapn__session_send()
 * and friends, which encode messages straight into the output buffer.
 *
 * Positions (docs/captp.md):
 *   exports  ours, from 1 (0 is our bootstrap object); entry = ref + the
 *            number of descriptors we sent, decremented by the peer's
 *            op:gc-export, freed at 0
 *   imports  the peer's exports; a weak pointer to the ref standing for it
 *            and the number of descriptors received; when the ref dies we
 *            queue op:gc-export with that number
 *   answers  the peer's questions: position -> our promise (strong), freed
 *            by the peer's op:gc-answer
 *   questions ours: position -> our promise bound to it (weak); when that
 *            promise dies we queue op:gc-answer
 *
 * Outbound messages are encoded in two phases so a failure (invalid
 * string, unsendable ref, limit) leaves no trace: new export positions and
 * count increments are collected while writing and committed only when the
 * whole message encoded.
 */
#include <stdarg.h>
#include <stdio.h>

#include "session_internal.h"

#define DEFAULT_MAX_MESSAGE (16u << 20)
#define DEFAULT_MAX_DEPTH 64u
#define DEFAULT_MAX_TABLE (1u << 20)
#define DEFAULT_MAX_QUEUED (1u << 16)
#define DEFAULT_MAX_OUTPUT (256u << 20)

static const char *const dialect_versions[] = {
    [OCAPN_DIALECT_AUTO] = "1.0",
    [OCAPN_DIALECT_GOBLINS] = "goblins-0.12",
    [OCAPN_DIALECT_SUITE] = "1.0",
    [OCAPN_DIALECT_SPEC] = "1.0",
};

OCAPN_API const char *
ocapn_dialect_version(ocapn_dialect d)
{
	if ((unsigned)d > OCAPN_DIALECT_SPEC)
		return "";
	return dialect_versions[d];
}

OCAPN_API ocapn_dialect
ocapn_dialect_for_version(const char *v, size_t n)
{
	if (n == 12 && memcmp(v, "goblins-0.12", 12) == 0)
		return OCAPN_DIALECT_GOBLINS;
	if (n == 3 && memcmp(v, "1.0", 3) == 0)
		return OCAPN_DIALECT_SUITE;
	return OCAPN_DIALECT_AUTO;
}

/* ------------------------------------------------------------------ */
/* Output queues                                                        */
/* ------------------------------------------------------------------ */

static void
outq_init(struct outq *q)
{
	memset(q, 0, sizeof(*q));
	ocapn_buffer_init(&q->buf);
}

static void
outq_free(struct outq *q, const ocapn_allocator *a)
{
	ocapn_buffer_release(&q->buf, a);
	ocapn__free(a, q->lens, q->lcap * sizeof(*q->lens));
	outq_init(q);
}

static size_t
outq_pending(const struct outq *q)
{
	return q->buf.len - q->off;
}

static void
outq_clear(struct outq *q)
{
	q->buf.len = 0;
	q->off = 0;
	q->nlens = 0;
	q->lhead = 0;
	q->part = 0;
}

/* Record that the bytes from `start` to the end of the buffer are one
 * message. */
static int
outq_push_len(struct outq *q, const ocapn_allocator *a, size_t start)
{
	if (q->lhead + q->nlens == q->lcap) {
		if (q->lhead) {
			memmove(q->lens, q->lens + q->lhead,
			    q->nlens * sizeof(*q->lens));
			q->lhead = 0;
		} else if (ocapn__grow(a, (void **)&q->lens, &q->lcap,
			       q->nlens + 1, sizeof(*q->lens))) {
			return OCAPN_E_NOMEM;
		}
	}
	q->lens[q->lhead + q->nlens++] = (uint32_t)(q->buf.len - start);
	return OCAPN_OK;
}

static void
outq_consume(struct outq *q, size_t n)
{
	if (n > outq_pending(q))
		n = outq_pending(q);
	q->off += n;
	/* advance message boundaries */
	while (n && q->nlens) {
		size_t rest = q->lens[q->lhead] - q->part;
		if (n >= rest) {
			n -= rest;
			q->part = 0;
			q->lhead++;
			q->nlens--;
		} else {
			q->part += n;
			n = 0;
		}
	}
	if (q->off == q->buf.len) {
		q->buf.len = 0;
		q->off = 0;
		q->lhead = 0;
	} else if (q->off > 65536 && q->off * 2 > q->buf.len) {
		memmove(q->buf.data, q->buf.data + q->off,
		    q->buf.len - q->off);
		q->buf.len -= q->off;
		q->off = 0;
	}
}

/* Move everything queued in `from` to the end of `to`. */
static int
outq_append(struct outq *to, struct outq *from, const ocapn_allocator *a)
{
	if (outq_pending(from) == 0)
		return OCAPN_OK;
	size_t base = to->buf.len;
	if (ocapn_buffer_append(&to->buf, a, from->buf.data + from->off,
		outq_pending(from)))
		return OCAPN_E_NOMEM;
	size_t at = base;
	for (size_t i = 0; i < from->nlens; i++) {
		size_t l = from->lens[from->lhead + i] -
		    (i == 0 ? from->part : 0);
		size_t save = to->buf.len;
		to->buf.len = at + l;
		if (outq_push_len(to, a, at)) {
			to->buf.len = save;
			return OCAPN_E_NOMEM;
		}
		to->buf.len = save;
		at += l;
	}
	outq_clear(from);
	return OCAPN_OK;
}

/* ------------------------------------------------------------------ */
/* Events and abort                                                     */
/* ------------------------------------------------------------------ */

static void
push_event(ocapn_session *s, uint8_t ev)
{
	if (s->evn == sizeof(s->ev))
		return; /* only a handful of events can ever happen */
	s->ev[(s->evh + s->evn) % sizeof(s->ev)] = ev;
	s->evn++;
}

OCAPN_API void
ocapn_session_set_output_hook(ocapn_session *s, ocapn_session_output_fn fn,
    void *user)
{
	s->out_hook = fn;
	s->out_user = user;
}

OCAPN_API void
ocapn_session_set_user(ocapn_session *s, void *user)
{
	s->user = user;
}

OCAPN_API void *
ocapn_session_user(const ocapn_session *s)
{
	return s->user;
}

OCAPN_API ocapn_session_event_kind
ocapn_session_next_event(ocapn_session *s)
{
	if (!s->evn)
		return OCAPN_SESSION_EV_NONE;
	uint8_t ev = s->ev[s->evh];
	s->evh = (s->evh + 1) % sizeof(s->ev);
	s->evn--;
	return (ocapn_session_event_kind)ev;
}

static int out_end(ocapn_session *s, struct outq *q, size_t start);

#define LIT(s) (s), (sizeof(s) - 1)

static void break_everything(ocapn_session *s, const char *why);
static int send_hello(ocapn_session *s);

static void abort_session_ex(ocapn_session *s, const char *reason,
    bool send, bool hello_first);

static void
abort_session(ocapn_session *s, const char *reason, bool send)
{
	abort_session_ex(s, reason, send, true);
}

static void
abort_session_ex(ocapn_session *s, const char *reason, bool send,
    bool hello_first)
{
	if (s->state == OCAPN_SESSION_ABORTED)
		return;
	snprintf(s->abort_reason, sizeof(s->abort_reason), "%s", reason);
	outq_clear(&s->held);
	s->ngce = 0;
	s->ngca = 0;
	/* An acceptor that has not answered yet introduces itself first, as
	 * Goblins does (it always sends its hello at once): peers read up to
	 * the op:abort. */
	if (send && hello_first && !s->hello_sent && s->started)
		send_hello(s);
	if (send && (s->hello_sent || !hello_first)) {
		size_t start;
		ocapn_syrup_writer *w = ocapn__out_begin(s, &s->out, &start);
		ocapn_syrup_write_record_begin(w);
		ocapn_syrup_write_symbol(w, LIT("op:abort"));
		ocapn_syrup_write_string(w, reason, strlen(reason));
		ocapn_syrup_write_record_end(w);
		out_end(s, &s->out, start);
	}
	s->state = OCAPN_SESSION_ABORTED;
	push_event(s, OCAPN_SESSION_EV_ABORTED);
	char why[260];
	snprintf(why, sizeof(why), "session aborted: %s", reason);
	break_everything(s, why);
	ocapn__handoff_session_gone(s, reason);
	ocapn__vat_session_gone(s, why);
}

OCAPN_API void
ocapn_session_abort(ocapn_session *s, const char *reason)
{
	abort_session(s, reason ? reason : "aborted", true);
}

/* Protocol violation by the peer: abort with a formatted reason. */
static int
violation(ocapn_session *s, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

static int
violation(ocapn_session *s, const char *fmt, ...)
{
	char buf[200];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	abort_session(s, buf, true);
	return OCAPN_E_PROTOCOL;
}

/* ------------------------------------------------------------------ */
/* Creation                                                             */
/* ------------------------------------------------------------------ */

OCAPN_API int
ocapn_session_new(ocapn_vat *vat, ocapn_role role, const ocapn_locator *self,
    ocapn_dialect dialect, ocapn_session **out)
{
	static uint32_t serials;
	if (!vat || !self || !out ||
	    (role != OCAPN_ROLE_INITIATOR && role != OCAPN_ROLE_ACCEPTOR) ||
	    (unsigned)dialect > OCAPN_DIALECT_SPEC)
		return OCAPN_E_INVAL;
	if (vat->freeing)
		return OCAPN_E_CLOSED;
	ocapn_session *s = ocapn__calloc(&vat->a, sizeof(*s));
	if (!s)
		return OCAPN_E_NOMEM;
	s->vat = vat;
	s->a = &vat->a;
	s->serial = ++serials;
	s->role = role;
	s->dialect = dialect;
	s->state = OCAPN_SESSION_HANDSHAKE;
	s->max_message = DEFAULT_MAX_MESSAGE;
	s->max_depth = DEFAULT_MAX_DEPTH;
	s->max_exports = s->max_imports = s->max_answers = DEFAULT_MAX_TABLE;
	s->max_queued = DEFAULT_MAX_QUEUED;
	s->max_output = DEFAULT_MAX_OUTPUT;
	s->next_export = 1;
	s->export_pool.size = sizeof(struct export_entry);
	outq_init(&s->out);
	outq_init(&s->held);
	ocapn_buffer_init(&s->inbuf);
	ocapn__map_init(&s->exports);
	ocapn__map_init(&s->export_refs);
	ocapn__map_init(&s->imports);
	ocapn__map_init(&s->answers);
	ocapn__map_init(&s->questions);
	int rc = OCAPN_E_NOMEM;
	if (ocapn_locator_copy(self, &s->self_loc))
		goto fail;
	if (!(s->w = ocapn_syrup_writer_new(0, s->a)) ||
	    !(s->sigw = ocapn_syrup_writer_new(0, s->a)) ||
	    !(s->dec = ocapn_syrup_decoder_new(0, s->a)) ||
	    !(s->arena = ocapn_arena_new(s->a)))
		goto fail;
	if (ocapn__keypair_generate(&s->key)) {
		rc = OCAPN_E_CRYPTO;
		goto fail;
	}
	ocapn__side_id(s->key.pk, s->side_id);
	/* Our bootstrap object at export position 0. */
	s->bootstrap = ocapn__ref_new(vat, REF_OBJECT);
	if (!s->bootstrap)
		goto fail;
	s->bootstrap->builtin = BUILTIN_BOOTSTRAP;
	s->bootstrap->u.boot.session = s;
	struct export_entry *e = ocapn__pool_get(&s->export_pool, s->a);
	if (!e)
		goto fail;
	e->ref = ocapn_ref_retain(s->bootstrap);
	e->pos = 0;
	e->count = 0;
	if (ocapn__map_put(&s->exports, s->a, 0, e) ||
	    ocapn__map_put(&s->export_refs, s->a,
		ocapn__ptr_key(s->bootstrap), e)) {
		ocapn_ref_release(e->ref);
		ocapn__pool_put(&s->export_pool, e);
		goto fail;
	}
	if (ocapn__map_put(&vat->by_serial, &vat->a, s->serial, s))
		goto fail;
	s->next = vat->sessions;
	if (vat->sessions)
		vat->sessions->pprev = &s->next;
	s->pprev = &vat->sessions;
	vat->sessions = s;
	*out = s;
	return OCAPN_OK;
fail:
	s->state = OCAPN_SESSION_ABORTED;
	s->pprev = NULL;
	ocapn_session_free(s);
	return rc;
}

OCAPN_API int
ocapn_session_set_limit(ocapn_session *s, ocapn_session_limit which,
    uint64_t value)
{
	if (value == 0 || s->started)
		return value == 0 ? OCAPN_E_INVAL : OCAPN_E_STATE;
	switch (which) {
	case OCAPN_SESSION_MAX_MESSAGE:
		if (value > UINT32_MAX)
			return OCAPN_E_INVAL;
		s->max_message = value;
		return OCAPN_OK;
	case OCAPN_SESSION_MAX_DEPTH:
		if (value > 10000)
			return OCAPN_E_INVAL;
		s->max_depth = (uint32_t)value;
		return OCAPN_OK;
	case OCAPN_SESSION_MAX_EXPORTS:
		s->max_exports = value;
		return OCAPN_OK;
	case OCAPN_SESSION_MAX_IMPORTS:
		s->max_imports = value;
		return OCAPN_OK;
	case OCAPN_SESSION_MAX_ANSWERS:
		s->max_answers = value;
		return OCAPN_OK;
	case OCAPN_SESSION_MAX_QUEUED:
		s->max_queued = value;
		return OCAPN_OK;
	case OCAPN_SESSION_MAX_OUTPUT:
		s->max_output = value;
		return OCAPN_OK;
	}
	return OCAPN_E_INVAL;
}

int
ocapn__session_set_key_seed(ocapn_session *s, const uint8_t seed[32])
{
	if (s->started)
		return OCAPN_E_STATE;
	int rc = ocapn__keypair_from_seed(&s->key, seed);
	if (!rc)
		ocapn__side_id(s->key.pk, s->side_id);
	return rc;
}

OCAPN_API int
ocapn_session_set_location(ocapn_session *s, const ocapn_locator *self)
{
	if (s->started)
		return OCAPN_E_STATE;
	ocapn_locator *copy;
	int rc = ocapn_locator_copy(self, &copy);
	if (rc)
		return rc;
	ocapn_locator_free(s->self_loc);
	s->self_loc = copy;
	return OCAPN_OK;
}

OCAPN_API int
ocapn_session_set_remote(ocapn_session *s, const ocapn_locator *peer)
{
	ocapn_locator *copy;
	int rc = ocapn_locator_copy(peer, &copy);
	if (rc)
		return rc;
	ocapn_locator_free(s->remote);
	s->remote = copy;
	return OCAPN_OK;
}

/* ------------------------------------------------------------------ */
/* Writing messages                                                     */
/* ------------------------------------------------------------------ */

ocapn_syrup_writer *
ocapn__out_begin(ocapn_session *s, struct outq *q, size_t *start)
{
	*start = q->buf.len;
	ocapn_syrup_writer_reset_buffer(s->w, &q->buf);
	s->npend = 0;
	return s->w;
}

/* Commit pending export changes after a message encoded completely. */
static int
commit_exports(ocapn_session *s)
{
	for (size_t i = 0; i < s->npend; i++) {
		struct pending_export *pe = &s->pend[i];
		if (pe->existing) {
			pe->existing->count += pe->add;
			continue;
		}
		struct export_entry *e =
		    ocapn__pool_get(&s->export_pool, s->a);
		if (!e)
			return OCAPN_E_NOMEM;
		e->ref = ocapn_ref_retain(pe->ref);
		e->pos = pe->pos;
		e->count = pe->add;
		if (ocapn__map_put(&s->exports, s->a, e->pos, e) ||
		    ocapn__map_put(&s->export_refs, s->a,
			ocapn__ptr_key(e->ref), e)) {
			ocapn__map_del(&s->exports, e->pos);
			ocapn_ref_release(e->ref);
			ocapn__pool_put(&s->export_pool, e);
			return OCAPN_E_NOMEM;
		}
	}
	s->npend = 0;
	return OCAPN_OK;
}

static void
notify_output(ocapn_session *s)
{
	if (s->out_hook)
		s->out_hook(s->out_user, s);
}

static int
out_end(ocapn_session *s, struct outq *q, size_t start)
{
	int rc = ocapn_syrup_writer_finish(s->w, NULL, NULL);
	if (!rc && q->buf.len - start > UINT32_MAX)
		rc = OCAPN_E_LIMIT;
	if (!rc && outq_pending(&s->out) + outq_pending(&s->held) >
	    s->max_output)
		rc = OCAPN_E_LIMIT;
	if (!rc)
		rc = outq_push_len(q, s->a, start);
	if (!rc)
		rc = commit_exports(s);
	if (rc) {
		/* Undo: the message never happened. */
		q->buf.len = start;
		if (s->next_export > 0)
			for (size_t i = 0; i < s->npend; i++)
				if (!s->pend[i].existing &&
				    s->pend[i].pos + 1 == s->next_export)
					s->next_export--;
		s->npend = 0;
		return rc;
	}
	s->msgs_out++;
	if (q == &s->out && outq_pending(q) == q->buf.len - start &&
	    q->nlens == 1)
		notify_output(s); /* the queue was empty */
	return OCAPN_OK;
}

/* Where the vat's messages go: held until the handshake completes. */
static struct outq *
vat_queue(ocapn_session *s)
{
	return s->state == OCAPN_SESSION_ACTIVE ? &s->out : &s->held;
}

int
ocapn__write_desc(ocapn_syrup_writer *w, const char *label, size_t llen,
    uint64_t pos)
{
	ocapn_syrup_write_record_begin(w);
	ocapn_syrup_write_symbol(w, label, llen);
	ocapn_syrup_write_uint(w, pos);
	return ocapn_syrup_write_record_end(w);
}

/* Export a local ref (object or promise) on this session: position. */
static int
export_pos(ocapn_session *s, ocapn_ref *r, uint64_t *pos)
{
	for (size_t i = 0; i < s->npend; i++)
		if (s->pend[i].ref == r) {
			s->pend[i].add++;
			*pos = s->pend[i].pos;
			return OCAPN_OK;
		}
	if (s->npend == s->pendcap &&
	    ocapn__grow(s->a, (void **)&s->pend, &s->pendcap, s->npend + 1,
		sizeof(*s->pend)))
		return OCAPN_E_NOMEM;
	struct pending_export *pe = &s->pend[s->npend];
	struct export_entry *e =
	    ocapn__map_get(&s->export_refs, ocapn__ptr_key(r));
	pe->ref = r;
	pe->add = 1;
	pe->existing = e;
	if (e) {
		pe->pos = e->pos;
	} else {
		if (s->exports.count >= s->max_exports)
			return OCAPN_E_LIMIT;
		pe->pos = s->next_export++;
	}
	s->npend++;
	*pos = pe->pos;
	return OCAPN_OK;
}


/* Write the descriptor for `ref` as seen by this session's peer. */
int
ocapn__write_ref(ocapn_session *s, ocapn_ref *ref)
{
	ocapn_syrup_writer *w = s->w;
	ocapn_ref *r = ref;
	/* A promise that settled to an object travels as that object. */
	while (r->type == REF_PROMISE &&
	    (r->p.state == PROM_FORWARDED ||
		(r->p.state == PROM_FULFILLED &&
		    r->p.value->v.kind == OCAPN_REF)))
		r = r->p.state == PROM_FORWARDED ? r->p.forward
						 : r->p.value->v.u.ref;
	if (r->dead)
		return OCAPN_E_CLOSED;
	if (r->binding != BIND_NONE && r->session == s) {
		if (r->binding == BIND_IMPORT)
			return ocapn__write_desc(w, LIT("desc:export"), r->pos);
		return ocapn__write_desc(w, LIT("desc:answer"), r->pos);
	}
	if (r->type == REF_REMOTE ||
	    (r->binding != BIND_NONE && r->session != s))
		return ocapn__handoff_write_give(s, r);
	uint64_t pos;
	int rc = export_pos(s, r, &pos);
	if (rc)
		return rc;
	if (r->type == REF_PROMISE)
		return ocapn__write_desc(w, LIT("desc:import-promise"), pos);
	return ocapn__write_desc(w, LIT("desc:import-object"), pos);
}

/* Write a value that may contain refs. */
static int
write_value(ocapn_session *s, const ocapn_value *v, int depth)
{
	ocapn_syrup_writer *w = s->w;
	if (depth > OCAPN__MAX_WALK_DEPTH)
		return OCAPN_E_LIMIT;
	switch (v->kind) {
	case OCAPN_REF:
		return ocapn__write_ref(s, v->u.ref);
	case OCAPN_LIST:
	case OCAPN_SET:
	case OCAPN_RECORD:
	case OCAPN_DICT: {
		size_t n = v->kind == OCAPN_DICT ? 2 * (size_t)v->len : v->len;
		/* Fast path: no refs below means the writer can do it. */
		int rc;
		if (v->kind == OCAPN_LIST)
			rc = ocapn_syrup_write_list_begin(w);
		else if (v->kind == OCAPN_SET)
			rc = ocapn_syrup_write_set_begin(w);
		else if (v->kind == OCAPN_DICT)
			rc = ocapn_syrup_write_dict_begin(w);
		else
			rc = v->len ? ocapn_syrup_write_record_begin(w)
				    : OCAPN_E_INVAL;
		for (size_t i = 0; !rc && i < n; i++)
			rc = write_value(s, &v->u.items[i], depth + 1);
		if (rc)
			return rc;
		if (v->kind == OCAPN_LIST)
			return ocapn_syrup_write_list_end(w);
		if (v->kind == OCAPN_SET)
			return ocapn_syrup_write_set_end(w);
		if (v->kind == OCAPN_DICT)
			return ocapn_syrup_write_dict_end(w);
		return ocapn_syrup_write_record_end(w);
	}
	default: {
		int rc = ocapn_syrup_write_value(w, v);
		return rc;
	}
	}
}

void
ocapn__write_target(ocapn_session *s, ocapn_ref *t)
{
	if (t->binding == BIND_QUESTION)
		ocapn__write_desc(s->w, LIT("desc:answer"), t->pos);
	else
		ocapn__write_desc(s->w, LIT("desc:export"), t->pos);
}

/* A message to a resolver that takes no answer: deliver-only, or in the
 * spec dialect op:deliver with false answer position and resolver. */
static bool
spec_dialect(const ocapn_session *s)
{
	return s->dialect == OCAPN_DIALECT_SPEC;
}

int
ocapn__out_finish(ocapn_session *s, struct outq *q, size_t start, int rc)
{
	if (rc) {
		const char *why;
		int werr = ocapn_syrup_writer_error(s->w, &why);
		q->buf.len = start;
		s->npend = 0;
		(void)why;
		return werr ? werr : rc;
	}
	return out_end(s, q, start);
}

int
ocapn__session_send(ocapn_session *s, ocapn_ref *target,
    const ocapn_value *args, ocapn_ref *resolver, ocapn_ref *result)
{
	if (!ocapn__session_alive(s))
		return OCAPN_E_CLOSED;
	struct outq *q = vat_queue(s);
	size_t start;
	ocapn_syrup_writer *w = ocapn__out_begin(s, q, &start);
	/* The promise the resolver settles is what later sends would
	 * pipeline on: give it an answer position. */
	if (!result && resolver && resolver->type == REF_OBJECT &&
	    resolver->builtin == BUILTIN_RESOLVER)
		result = resolver->u.res.promise;
	bool with_answer = resolver && result &&
	    result->binding == BIND_NONE && result->type == REF_PROMISE &&
	    result->p.state == PROM_PENDING;
	uint64_t qpos = s->next_question;
	int rc;
	ocapn_syrup_write_record_begin(w);
	if (!resolver && !spec_dialect(s))
		ocapn_syrup_write_symbol(w, LIT("op:deliver-only"));
	else
		ocapn_syrup_write_symbol(w, LIT("op:deliver"));
	ocapn__write_target(s, target);
	rc = write_value(s, args, 0);
	if (!rc && (resolver || spec_dialect(s))) {
		if (with_answer)
			ocapn_syrup_write_uint(w, qpos);
		else
			ocapn_syrup_write_bool(w, false);
		if (resolver)
			rc = ocapn__write_ref(s, resolver);
		else
			ocapn_syrup_write_bool(w, false);
	}
	if (!rc)
		rc = ocapn_syrup_write_record_end(w);
	rc = ocapn__out_finish(s, q, start, rc);
	if (rc)
		return rc;
	if (with_answer) {
		s->next_question++;
		ocapn__bind_question(s, result, qpos);
	}
	return OCAPN_OK;
}

void
ocapn__bind_question(ocapn_session *s, ocapn_ref *p, uint64_t qpos)
{
	if (p->binding != BIND_NONE || p->type != REF_PROMISE ||
	    p->p.state != PROM_PENDING ||
	    ocapn__map_put(&s->questions, s->a, qpos, p)) {
		/* Nothing local stands for the position: let the peer drop
		 * it once answered. */
		if (!ocapn__grow(s->a, (void **)&s->gca_pos, &s->gcacap,
			s->ngca + 1, sizeof(uint64_t)))
			s->gca_pos[s->ngca++] = qpos;
		return;
	}
	p->binding = BIND_QUESTION;
	p->session = s;
	p->pos = qpos;
	ocapn__promise_rebind(p);
}

int
ocapn__session_field(ocapn_session *s, ocapn_ref *target, uint8_t op,
    const ocapn_value *key, uint64_t index, ocapn_ref *resolver,
    ocapn_ref *result)
{
	if (!ocapn__session_alive(s))
		return ocapn__resolve_ref_str(resolver,
		    "the session to this object is gone");
	struct outq *q = vat_queue(s);
	uint64_t qpos = s->next_question;
	size_t start;
	ocapn_syrup_writer *w = ocapn__out_begin(s, q, &start);
	int rc = ocapn_syrup_write_record_begin(w);
	const char *name = op == FIELD_GET ? "op:get"
	    : op == FIELD_INDEX		   ? "op:index"
					   : "op:untag";
	ocapn_syrup_write_symbol(w, name, strlen(name));
	ocapn__write_target(s, target);
	if (op == FIELD_INDEX)
		ocapn_syrup_write_uint(w, index);
	else
		rc = write_value(s, key, 0);
	ocapn_syrup_write_uint(w, qpos);
	if (!rc)
		rc = ocapn_syrup_write_record_end(w);
	rc = ocapn__out_finish(s, q, start, rc);
	if (rc)
		return ocapn__resolve_ref_str(resolver, ocapn_strerror(rc));
	s->next_question++;
	/* The answer comes back through op:listen on the new position. */
	w = ocapn__out_begin(s, q, &start);
	ocapn_syrup_write_record_begin(w);
	ocapn_syrup_write_symbol(w, LIT("op:listen"));
	ocapn__write_desc(w, LIT("desc:answer"), qpos);
	rc = ocapn__write_ref(s, resolver);
	if (!spec_dialect(s))
		ocapn_syrup_write_bool(w, false);
	if (!rc)
		rc = ocapn_syrup_write_record_end(w);
	rc = ocapn__out_finish(s, q, start, rc);
	if (rc)
		return rc;
	if (!result && resolver && resolver->type == REF_OBJECT &&
	    resolver->builtin == BUILTIN_RESOLVER)
		result = resolver->u.res.promise;
	/* Later sends to `result` pipeline on the new position; it is
	 * collected when `result` dies (our op:listen is registered). */
	ocapn__bind_question(s, result ? result : target, qpos);
	return OCAPN_OK;
}

int
ocapn__session_listen(ocapn_session *s, ocapn_ref *p)
{
	if (!ocapn__session_alive(s))
		return OCAPN_E_CLOSED;
	ocapn_ref *lp, *r;
	/* A resolver whose promise forwards into `p`'s settlement: we make
	 * `p` itself the resolver's promise. */
	r = ocapn__ref_new(s->vat, REF_OBJECT);
	if (!r)
		return OCAPN_E_NOMEM;
	r->builtin = BUILTIN_RESOLVER;
	r->u.res.promise = ocapn_ref_retain(p);
	lp = p;
	struct outq *q = vat_queue(s);
	size_t start;
	ocapn_syrup_writer *w = ocapn__out_begin(s, q, &start);
	ocapn_syrup_write_record_begin(w);
	ocapn_syrup_write_symbol(w, LIT("op:listen"));
	ocapn__write_desc(w, LIT("desc:export"), lp->pos);
	int rc = ocapn__write_ref(s, r);
	if (!spec_dialect(s))
		ocapn_syrup_write_bool(w, false);
	if (!rc)
		rc = ocapn_syrup_write_record_end(w);
	rc = ocapn__out_finish(s, q, start, rc);
	ocapn_ref_release(r); /* the export table keeps it */
	return rc;
}

/* Queue GC messages for the peer, flushed when output is taken. */
static void
queue_gc_export(ocapn_session *s, uint64_t pos, uint64_t delta)
{
	if (s->ngce == s->gcecap) {
		size_t cap = s->gcecap;
		if (ocapn__grow(s->a, (void **)&s->gce_pos, &cap,
			s->ngce + 1, sizeof(uint64_t)))
			return;
		size_t cap2 = s->gcecap;
		if (ocapn__grow(s->a, (void **)&s->gce_delta, &cap2,
			s->ngce + 1, sizeof(uint64_t)))
			return;
		s->gcecap = cap < cap2 ? cap : cap2;
	}
	s->gce_pos[s->ngce] = pos;
	s->gce_delta[s->ngce] = delta;
	s->ngce++;
	if (s->ngce == 1 && !s->ngca)
		notify_output(s);
}

void
ocapn__session_unbind(ocapn_session *s, ocapn_ref *r)
{
	if (r->binding == BIND_IMPORT) {
		if (ocapn__map_get(&s->imports, r->pos) == r) {
			ocapn__map_del(&s->imports, r->pos);
			s->nimports_live--;
		}
		if (s->state != OCAPN_SESSION_ABORTED && r->wire_count)
			queue_gc_export(s, r->pos, r->wire_count);
	} else if (r->binding == BIND_QUESTION) {
		if (ocapn__map_get(&s->questions, r->pos) == r)
			ocapn__map_del(&s->questions, r->pos);
		if (s->state != OCAPN_SESSION_ABORTED &&
		    !ocapn__grow(s->a, (void **)&s->gca_pos, &s->gcacap,
			s->ngca + 1, sizeof(uint64_t))) {
			s->gca_pos[s->ngca++] = r->pos;
			if (s->ngca == 1 && !s->ngce)
				notify_output(s);
		}
	}
}

static void
write_pos_list(ocapn_syrup_writer *w, const uint64_t *v, size_t n)
{
	ocapn_syrup_write_list_begin(w);
	for (size_t i = 0; i < n; i++)
		ocapn_syrup_write_uint(w, v[i]);
	ocapn_syrup_write_list_end(w);
}

static void
flush_gc(ocapn_session *s)
{
	if (s->state != OCAPN_SESSION_ACTIVE || (!s->ngce && !s->ngca))
		return;
	size_t start;
	ocapn_syrup_writer *w;
	if (s->dialect == OCAPN_DIALECT_GOBLINS) {
		for (size_t i = 0; i < s->ngce; i++) {
			w = ocapn__out_begin(s, &s->out, &start);
			ocapn_syrup_write_record_begin(w);
			ocapn_syrup_write_symbol(w, LIT("op:gc-export"));
			ocapn_syrup_write_uint(w, s->gce_pos[i]);
			ocapn_syrup_write_uint(w, s->gce_delta[i]);
			ocapn_syrup_write_record_end(w);
			out_end(s, &s->out, start);
		}
		for (size_t i = 0; i < s->ngca; i++) {
			w = ocapn__out_begin(s, &s->out, &start);
			ocapn_syrup_write_record_begin(w);
			ocapn_syrup_write_symbol(w, LIT("op:gc-answer"));
			ocapn_syrup_write_uint(w, s->gca_pos[i]);
			ocapn_syrup_write_record_end(w);
			out_end(s, &s->out, start);
		}
	} else {
		bool spec = spec_dialect(s);
		if (s->ngce) {
			w = ocapn__out_begin(s, &s->out, &start);
			ocapn_syrup_write_record_begin(w);
			if (spec)
				ocapn_syrup_write_symbol(w,
				    LIT("op:gc-exports"));
			else
				ocapn_syrup_write_symbol(w,
				    LIT("op:gc-export"));
			write_pos_list(w, s->gce_pos, s->ngce);
			write_pos_list(w, s->gce_delta, s->ngce);
			ocapn_syrup_write_record_end(w);
			out_end(s, &s->out, start);
		}
		if (s->ngca) {
			w = ocapn__out_begin(s, &s->out, &start);
			ocapn_syrup_write_record_begin(w);
			if (spec)
				ocapn_syrup_write_symbol(w,
				    LIT("op:gc-answers"));
			else
				ocapn_syrup_write_symbol(w,
				    LIT("op:gc-answer"));
			write_pos_list(w, s->gca_pos, s->ngca);
			ocapn_syrup_write_record_end(w);
			out_end(s, &s->out, start);
		}
	}
	s->ngce = 0;
	s->ngca = 0;
}

/* ------------------------------------------------------------------ */
/* Handshake                                                            */
/* ------------------------------------------------------------------ */

static int
build_my_location(ocapn_arena *arena, const ocapn_value *loc,
    ocapn_value *out)
{
	ocapn_value *items = ocapn_arena_values(arena, 2);
	if (!items)
		return OCAPN_E_NOMEM;
	ocapn_value_set_symbol(&items[0], LIT("my-location"));
	items[1] = *loc;
	ocapn_value_set_record(out, items, 2);
	return OCAPN_OK;
}

static int
send_hello(ocapn_session *s)
{
	ocapn_dialect d = s->dialect ? s->dialect : OCAPN_DIALECT_SUITE;
	const char *version = ocapn_dialect_version(d);
	ocapn_arena_reset(s->arena);
	ocapn_value *loc;
	int rc = ocapn_locator_to_value(s->self_loc, s->arena, &loc);
	ocapn_value ml;
	if (!rc)
		rc = build_my_location(s->arena, loc, &ml);
	uint8_t sig[OCAPN__SIG_LEN];
	if (!rc)
		rc = ocapn__sign_value(&s->key, s->sigw, &ml, sig);
	if (rc)
		return rc;
	size_t start;
	ocapn_syrup_writer *w = ocapn__out_begin(s, &s->out, &start);
	ocapn_syrup_write_record_begin(w);
	ocapn_syrup_write_symbol(w, LIT("op:start-session"));
	ocapn_syrup_write_string(w, version, strlen(version));
	ocapn__write_pubkey(w, s->key.pk);
	ocapn_syrup_write_value(w, loc);
	ocapn__write_sigval(w, sig);
	ocapn_syrup_write_record_end(w);
	rc = out_end(s, &s->out, start);
	if (!rc)
		s->hello_sent = true;
	ocapn_arena_reset(s->arena);
	return rc;
}

OCAPN_API int
ocapn_session_start(ocapn_session *s)
{
	if (s->started)
		return OCAPN_E_STATE;
	s->started = true;
	s->scanner = ocapn_syrup_scanner_new(NULL, s->a);
	if (!s->scanner)
		return OCAPN_E_NOMEM;
	ocapn_syrup_decoder_set_limit(s->dec, OCAPN_SYRUP_MAX_TOTAL,
	    s->max_message);
	ocapn_syrup_decoder_set_limit(s->dec, OCAPN_SYRUP_MAX_DEPTH,
	    s->max_depth);
	ocapn_syrup_decoder_set_limit(s->dec, OCAPN_SYRUP_MAX_ATOM,
	    s->max_message);
	ocapn_syrup_scanner_free(s->scanner);
	s->scanner = ocapn_syrup_scanner_new(s->dec, s->a);
	if (!s->scanner)
		return OCAPN_E_NOMEM;
	if (s->role == OCAPN_ROLE_INITIATOR || s->dialect != OCAPN_DIALECT_AUTO)
		return send_hello(s);
	return OCAPN_OK;
}

OCAPN_API bool
ocapn_session_started(const ocapn_session *s)
{
	return s->started;
}

OCAPN_API int
ocapn_session_restart(ocapn_session *s, ocapn_dialect d)
{
	if (!s->version_mismatch || s->state != OCAPN_SESSION_HANDSHAKE ||
	    (unsigned)d > OCAPN_DIALECT_SPEC)
		return OCAPN_E_STATE;
	s->version_mismatch = false;
	s->dialect = d;
	s->hello_sent = false;
	s->peer_version[0] = '\0';
	outq_clear(&s->out);
	ocapn_buffer_release(&s->inbuf, s->a);
	ocapn_syrup_scanner_reset(s->scanner);
	return send_hello(s);
}

static void complete_handshake(ocapn_session *s);

/*
 * Crossed hellos: both peers dialled each other, so we hold a connection
 * we initiated (hello sent, none received) and this inbound one.  The
 * connection whose initiator has the lower side id (in that connection) is
 * aborted, as Goblins and the spec do; both peers reach the same decision.
 * Nothing is lost: nothing was bound to the half-open connection (peer.c).
 * Returns true when `s` itself was aborted.
 */
static bool
crossed_hellos(ocapn_session *s)
{
	for (ocapn_session *o = s->vat->sessions; o; o = o->next) {
		if (o == s || o->role != OCAPN_ROLE_INITIATOR ||
		    o->state != OCAPN_SESSION_HANDSHAKE || !o->hello_sent ||
		    o->peer_hello || o->version_mismatch || !o->remote ||
		    !ocapn_locator_same_peer(o->remote, s->peer_loc))
			continue;
		if (memcmp(o->side_id, s->peer_side, OCAPN__HASH_LEN) < 0) {
			abort_session(o, "Crossed hellos mitigation", true);
			continue;
		}
		/* No hello first: the peer must never take this connection
		 * for an established session. */
		abort_session_ex(s, "Crossed hellos mitigation", true, false);
		return true;
	}
	return false;
}

static int
handle_hello(ocapn_session *s, const ocapn_value *m)
{
	if (m->len != 5)
		return violation(s, "op:start-session needs 4 fields, "
					  "got %u",
		    (unsigned)(m->len - 1));
	const ocapn_value *ver = &m->u.items[1];
	if (ver->kind != OCAPN_STRING)
		return violation(s,
		    "op:start-session version is not a string");
	snprintf(s->peer_version, sizeof(s->peer_version), "%.*s",
	    (int)(ver->len < 47 ? ver->len : 47), (const char *)ver->u.p);
	ocapn_dialect theirs =
	    ocapn_dialect_for_version((const char *)ver->u.p, ver->len);
	bool compatible;
	if (s->dialect == OCAPN_DIALECT_AUTO) {
		if (s->role == OCAPN_ROLE_ACCEPTOR) {
			compatible = theirs != OCAPN_DIALECT_AUTO;
			if (compatible)
				s->dialect = theirs;
		} else {
			compatible = theirs == OCAPN_DIALECT_SUITE;
		}
	} else {
		compatible = theirs != OCAPN_DIALECT_AUTO &&
		    strcmp(ocapn_dialect_version(theirs),
			ocapn_dialect_version(s->dialect)) == 0;
	}
	if (!compatible) {
		if (!s->hello_sent)
			send_hello(s);
		if (s->role == OCAPN_ROLE_INITIATOR &&
		    theirs != OCAPN_DIALECT_AUTO) {
			/* The peer dropped this connection, having seen
			 * nothing but our hello: keep everything queued for
			 * a restart in its version on a new transport. */
			size_t start;
			ocapn_syrup_writer *w = ocapn__out_begin(s, &s->out, &start);
			ocapn_syrup_write_record_begin(w);
			ocapn_syrup_write_symbol(w, LIT("op:abort"));
			ocapn_syrup_write_string(w,
			    LIT("CapTP version is incompatible"));
			ocapn_syrup_write_record_end(w);
			out_end(s, &s->out, start);
			s->version_mismatch = true;
			push_event(s, OCAPN_SESSION_EV_VERSION);
			return OCAPN_E_VERSION;
		}
		abort_session(s, "CapTP version is incompatible", true);
		return OCAPN_E_VERSION;
	}
	const char *why = NULL;
	if (ocapn__parse_pubkey(&m->u.items[2], s->peer_pk, &why))
		return violation(s, "invalid session key: %s", why);
	ocapn_locator *loc = NULL;
	if (ocapn_locator_from_value(&m->u.items[3], s->a, &loc, &why))
		return violation(s, "invalid location: %s",
		    why ? why : "malformed");
	uint8_t sig[OCAPN__SIG_LEN];
	if (ocapn__parse_sigval(&m->u.items[4], sig, &why)) {
		ocapn_locator_free(loc);
		return violation(s, "invalid location signature: %s",
		    why);
	}
	ocapn_value ml;
	if (build_my_location(s->arena, &m->u.items[3], &ml) ||
	    ocapn__verify_value(s->peer_pk, s->sigw, &ml, sig)) {
		ocapn_locator_free(loc);
		return violation(s, "Invalid location signature");
	}
	if (s->expected_peer && !ocapn_locator_same_peer(loc,
	    s->expected_peer)) {
		ocapn_locator_free(loc);
		return violation(s, "op:start-session location is not the "
				    "peer the netlayer authenticated");
	}
	s->peer_loc = loc;
	ocapn__side_id(s->peer_pk, s->peer_side);
	ocapn__session_id(s->side_id, s->peer_side, s->session_id);
	s->peer_hello = true;
	if (s->role == OCAPN_ROLE_ACCEPTOR && crossed_hellos(s))
		return OCAPN_OK;
	if (!s->hello_sent && send_hello(s)) {
		abort_session(s, "cannot send op:start-session", false);
		return OCAPN_E_PROTOCOL;
	}
	complete_handshake(s);
	return OCAPN_OK;
}

static void
complete_handshake(ocapn_session *s)
{
	s->state = OCAPN_SESSION_ACTIVE;
	bool had = outq_pending(&s->held) > 0;
	if (outq_append(&s->out, &s->held, s->a)) {
		abort_session(s, "out of memory", false);
		return;
	}
	push_event(s, OCAPN_SESSION_EV_READY);
	if (had)
		notify_output(s);
	ocapn__vat_session_ready(s);
}

/* ------------------------------------------------------------------ */
/* Inbound messages                                                     */
/* ------------------------------------------------------------------ */

static bool
get_pos(const ocapn_value *v, uint64_t *out)
{
	return v->kind == OCAPN_INT && ocapn_value_get_uint64(v, out) == 0;
}

static int
tmp_push(ocapn_session *s, ocapn_ref *r)
{
	if (s->ntmp == s->tmpcap &&
	    ocapn__grow(s->a, (void **)&s->tmp, &s->tmpcap, s->ntmp + 1,
		sizeof(*s->tmp)))
		return OCAPN_E_NOMEM;
	s->tmp[s->ntmp++] = r;
	return OCAPN_OK;
}

static void
tmp_release(ocapn_session *s)
{
	/* Releasing may free refs, whose unbinding may touch s->tmp only
	 * through the imports map, never the array itself. */
	size_t n = s->ntmp;
	s->ntmp = 0;
	for (size_t i = 0; i < n; i++)
		ocapn_ref_release(s->tmp[i]);
}

/* Import position `pos` (object or promise), counting one descriptor. */
static ocapn_ref *
get_import(ocapn_session *s, uint64_t pos, bool promise)
{
	ocapn_ref *r = ocapn__map_get(&s->imports, pos);
	if (r) {
		if ((r->type == REF_PROMISE) != promise) {
			violation(s, "import %llu changed between object and "
				     "promise",
			    (unsigned long long)pos);
			return NULL;
		}
		r->wire_count++;
		ocapn_ref_retain(r);
	} else {
		if (s->nimports_live >= s->max_imports) {
			violation(s, "too many imports (limit %llu)",
			    (unsigned long long)s->max_imports);
			return NULL;
		}
		r = ocapn__ref_new(s->vat, promise ? REF_PROMISE : REF_REMOTE);
		if (!r) {
			abort_session(s, "out of memory", true);
			return NULL;
		}
		r->binding = BIND_IMPORT;
		r->session = s;
		r->pos = pos;
		r->wire_count = 1;
		if (ocapn__map_put(&s->imports, s->a, pos, r)) {
			r->binding = BIND_NONE;
			r->session = NULL;
			ocapn_ref_release(r);
			abort_session(s, "out of memory", true);
			return NULL;
		}
		s->nimports_live++;
	}
	if (tmp_push(s, r)) {
		ocapn_ref_release(r);
		abort_session(s, "out of memory", true);
		return NULL;
	}
	return r;
}


/*
 * Translate a descriptor record into a ref (borrowed; kept alive by the
 * session's tables or by the message's temporary list).  NULL means the
 * session was aborted with a reason.
 */
static ocapn_ref *
in_desc(ocapn_session *s, const ocapn_value *d)
{
	const ocapn_value *label = &d->u.items[0];
	uint64_t pos;
	if (d->len == 2 && label->len >= 11 &&
	    memcmp(label->u.p, "desc:", 5) == 0) {
		if (!get_pos(&d->u.items[1], &pos)) {
			violation(s, "descriptor %.*s has an invalid position",
			    (int)label->len, (const char *)label->u.p);
			return NULL;
		}
		if (OCAPN__SYM_IS(label, "desc:export")) {
			struct export_entry *e =
			    ocapn__map_get(&s->exports, pos);
			if (!e) {
				violation(s, "unknown export position %llu",
				    (unsigned long long)pos);
				return NULL;
			}
			return e->ref;
		}
		if (OCAPN__SYM_IS(label, "desc:answer")) {
			ocapn_ref *r = ocapn__map_get(&s->answers, pos);
			if (!r) {
				violation(s, "unknown answer position %llu",
				    (unsigned long long)pos);
				return NULL;
			}
			return r;
		}
		if (OCAPN__SYM_IS(label, "desc:import-object"))
			return get_import(s, pos, false);
		if (OCAPN__SYM_IS(label, "desc:import-promise"))
			return get_import(s, pos, true);
	}
	if (OCAPN__SYM_IS(label, "desc:sig-envelope")) {
		ocapn_ref *r = NULL;
		if (ocapn__handoff_receive_give(s, d, &r) || !r)
			return NULL;
		if (tmp_push(s, r)) {
			ocapn_ref_release(r);
			abort_session(s, "out of memory", true);
			return NULL;
		}
		return r;
	}
	violation(s, "malformed descriptor %.*s",
	    (int)(label->kind == OCAPN_SYMBOL ? label->len : 1),
	    label->kind == OCAPN_SYMBOL ? (const char *)label->u.p : "?");
	return NULL;
}

static bool
is_desc_label(const ocapn_value *label)
{
	return label->kind == OCAPN_SYMBOL && label->len > 5 &&
	    memcmp(label->u.p, "desc:", 5) == 0;
}

/* Replace descriptors inside `v` (in our arena) with refs. */
static int
translate(ocapn_session *s, ocapn_value *v, int depth)
{
	switch (v->kind) {
	case OCAPN_RECORD:
		if (is_desc_label(&v->u.items[0])) {
			if (ocapn_value_is_record(v, "desc:sig-envelope", 2) &&
			    ocapn_value_is_record(&v->u.items[1],
				"desc:handoff-receive", SIZE_MAX))
				return OCAPN_OK; /* data for withdraw-gift */
			ocapn_ref *r = in_desc(s, v);
			if (!r)
				return OCAPN_E_PROTOCOL;
			ocapn_value_set_ref(v, r);
			return OCAPN_OK;
		}
		/* fallthrough */
	case OCAPN_LIST:
	case OCAPN_SET:
	case OCAPN_DICT: {
		size_t n = v->kind == OCAPN_DICT ? 2 * (size_t)v->len : v->len;
		for (size_t i = 0; i < n; i++)
			if (translate(s, &v->u.items[i], depth + 1))
				return OCAPN_E_PROTOCOL;
		return OCAPN_OK;
	}
	default:
		return OCAPN_OK;
	}
}

/* A target position: desc:export or desc:answer, to a local ref. */
static ocapn_ref *
in_target(ocapn_session *s, const ocapn_value *d, const char *op)
{
	if (d->kind != OCAPN_RECORD || d->len != 2 ||
	    !(OCAPN__SYM_IS(&d->u.items[0], "desc:export") ||
		OCAPN__SYM_IS(&d->u.items[0], "desc:answer"))) {
		violation(s, "%s target is not desc:export or desc:answer", op);
		return NULL;
	}
	return in_desc(s, d);
}

static bool
queue_ok(ocapn_session *s)
{
	return s->queued < s->max_queued;
}

uint32_t
ocapn__session_serial(const ocapn_session *s)
{
	return s->serial;
}

ocapn_vat *
ocapn__session_vat(const ocapn_session *s)
{
	return s->vat;
}

ocapn_session *
ocapn__session_lookup(ocapn_vat *vat, uint32_t serial)
{
	return serial ? ocapn__map_get(&vat->by_serial, serial) : NULL;
}

void
ocapn__session_queued(ocapn_vat *vat, uint32_t serial, int d)
{
	ocapn_session *s = ocapn__session_lookup(vat, serial);
	if (s)
		s->queued += (uint64_t)(int64_t)d;
}

/* The answer promise a peer asked for at answer position `apos` of message
 * `name`: checks the position (valid, unused, within the limit) and
 * registers a new promise there.  *p is the answer (owned by the answer
 * table), *r its resolver (the caller releases it).  OCAPN_E_PROTOCOL once
 * the session is aborted. */
static int
new_answer(ocapn_session *s, const ocapn_value *apos, const char *name,
    ocapn_ref **p, ocapn_ref **r)
{
	uint64_t pos;
	if (!get_pos(apos, &pos))
		return violation(s, "%s answer position is invalid", name);
	if (ocapn__map_get(&s->answers, pos))
		return violation(s, "answer position %llu is already "
					  "in use",
		    (unsigned long long)pos);
	if (s->answers.count >= s->max_answers)
		return violation(s, "too many answers (limit %llu)",
		    (unsigned long long)s->max_answers);
	if (ocapn__promise_pair(s->vat, p, r) ||
	    ocapn__map_put(&s->answers, s->a, pos, *p)) {
		abort_session(s, "out of memory", true);
		return OCAPN_E_PROTOCOL;
	}
	return OCAPN_OK;
}

static int
handle_deliver(ocapn_session *s, ocapn_value *m, bool only)
{
	const char *op = only ? "op:deliver-only" : "op:deliver";
	size_t nf = m->len - 1;
	if (only ? nf != 2 : nf != 4)
		return violation(s, "%s needs %d fields, got %zu", op,
		    only ? 2 : 4, nf);
	ocapn_ref *target = in_target(s, &m->u.items[1], op);
	if (!target)
		return OCAPN_E_PROTOCOL;
	ocapn_value *args = &m->u.items[2];
	if (args->kind != OCAPN_LIST)
		return violation(s, "%s arguments are not a list", op);
	if (translate(s, args, 0))
		return OCAPN_E_PROTOCOL;
	if (!queue_ok(s))
		return violation(s, "too many queued messages");
	if (only) {
		ocapn__dispatch(target, args, NULL, s);
		return OCAPN_OK;
	}
	const ocapn_value *apos = &m->u.items[3];
	ocapn_value *rme = &m->u.items[4];
	ocapn_ref *resolve_me = NULL;
	if (rme->kind == OCAPN_RECORD) {
		if (!is_desc_label(&rme->u.items[0]))
			return violation(s, "op:deliver resolve-me is "
						  "not a descriptor");
		if (!(resolve_me = in_desc(s, rme)))
			return OCAPN_E_PROTOCOL;
	} else if (!(rme->kind == OCAPN_BOOL && !rme->u.b)) {
		return violation(s, "op:deliver resolve-me is neither "
					  "a descriptor nor false");
	}
	if (apos->kind == OCAPN_BOOL && !apos->u.b) {
		ocapn__dispatch(target, args, resolve_me, s);
		return OCAPN_OK;
	}
	ocapn_ref *p, *r;
	if (new_answer(s, apos, "op:deliver", &p, &r))
		return OCAPN_E_PROTOCOL;
	if (resolve_me)
		ocapn__promise_listen(p, resolve_me, false, s);
	ocapn__dispatch(target, args, r, s);
	ocapn_ref_release(r);
	return OCAPN_OK;
}

static int
handle_listen(ocapn_session *s, ocapn_value *m)
{
	size_t nf = m->len - 1;
	if (nf != 2 && nf != 3)
		return violation(s, "op:listen needs 2 or 3 fields, "
					  "got %zu",
		    nf);
	ocapn_ref *to = in_target(s, &m->u.items[1], "op:listen");
	if (!to)
		return OCAPN_E_PROTOCOL;
	ocapn_value *l = &m->u.items[2];
	if (l->kind != OCAPN_RECORD || !is_desc_label(&l->u.items[0]))
		return violation(s, "op:listen listener is not a "
					  "descriptor");
	ocapn_ref *listener = in_desc(s, l);
	if (!listener)
		return OCAPN_E_PROTOCOL;
	bool partial = false;
	if (nf == 3) {
		if (m->u.items[3].kind != OCAPN_BOOL)
			return violation(s, "op:listen wants-partial is "
						  "not a boolean");
		partial = m->u.items[3].u.b != 0;
	}
	ocapn__promise_listen(to, listener, partial, s);
	return OCAPN_OK;
}

static int
handle_field(ocapn_session *s, ocapn_value *m, uint8_t op, const char *name)
{
	if (m->len != 4)
		return violation(s, "%s needs 3 fields, got %u", name,
		    (unsigned)(m->len - 1));
	ocapn_ref *to = in_target(s, &m->u.items[1], name);
	if (!to)
		return OCAPN_E_PROTOCOL;
	ocapn_value *key = &m->u.items[2];
	uint64_t index = 0;
	if (op == FIELD_INDEX) {
		if (!get_pos(key, &index))
			return violation(s, "op:index index is not a "
						  "non-negative integer");
	} else if (translate(s, key, 0)) {
		return OCAPN_E_PROTOCOL;
	}
	ocapn_ref *p, *r;
	if (new_answer(s, &m->u.items[3], name, &p, &r))
		return OCAPN_E_PROTOCOL;
	ocapn__field(to, op, op == FIELD_INDEX ? NULL : key, index, r, NULL,
	    s);
	ocapn_ref_release(r);
	return OCAPN_OK;
}

/* A GC field in either form, an integer or a list of them, as an array
 * of `*n` values; false for any other kind. */
static bool
gc_items(const ocapn_value *v, const ocapn_value **items, size_t *n)
{
	if (v->kind == OCAPN_LIST) {
		*items = v->u.items;
		*n = v->len;
		return true;
	}
	*items = v;
	*n = 1;
	return v->kind == OCAPN_INT;
}

/* Both GC forms: (INT INT) and ([INT...] [INT...]); answers: INT or
 * [INT...]. */
static int
handle_gc_export(ocapn_session *s, ocapn_value *m, const char *name)
{
	if (m->len != 3)
		return violation(s, "%s needs 2 fields", name);
	const ocapn_value *pv = &m->u.items[1], *dv = &m->u.items[2];
	size_t n, nd;
	const ocapn_value *ps, *ds;
	if (!gc_items(pv, &ps, &n) || !gc_items(dv, &ds, &nd) ||
	    pv->kind != dv->kind)
		return violation(s, "%s fields must be two integers or "
					  "two lists",
		    name);
	if (n != nd)
		return violation(s, "%s lists differ in length", name);
	for (size_t i = 0; i < n; i++) {
		uint64_t pos, delta;
		if (!get_pos(&ps[i], &pos) || !get_pos(&ds[i], &delta) ||
		    delta == 0)
			return violation(s, "%s has an invalid position "
						  "or delta",
			    name);
		if (pos == 0)
			continue; /* the bootstrap object is never collected */
		struct export_entry *e = ocapn__map_get(&s->exports, pos);
		if (!e)
			return violation(s, "%s of unknown export %llu",
			    name, (unsigned long long)pos);
		if (delta > e->count)
			return violation(s, "%s delta %llu exceeds the "
						  "%llu references sent",
			    name, (unsigned long long)delta,
			    (unsigned long long)e->count);
		e->count -= delta;
		if (e->count == 0) {
			ocapn__map_del(&s->exports, pos);
			ocapn__map_del(&s->export_refs,
			    ocapn__ptr_key(e->ref));
			ocapn_ref *r = e->ref;
			ocapn__pool_put(&s->export_pool, e);
			ocapn_ref_release(r);
		}
	}
	return OCAPN_OK;
}

static int
handle_gc_answer(ocapn_session *s, ocapn_value *m, const char *name)
{
	if (m->len != 2)
		return violation(s, "%s needs 1 field", name);
	const ocapn_value *ps;
	size_t n;
	if (!gc_items(&m->u.items[1], &ps, &n))
		return violation(s, "%s field must be an integer or a "
					  "list",
		    name);
	for (size_t i = 0; i < n; i++) {
		uint64_t pos;
		if (!get_pos(&ps[i], &pos))
			return violation(s, "%s has an invalid position",
			    name);
		ocapn_ref *p = ocapn__map_del(&s->answers, pos);
		if (!p)
			return violation(s, "%s of unknown answer %llu",
			    name, (unsigned long long)pos);
		ocapn_ref_release(p);
	}
	return OCAPN_OK;
}

static void
handle_abort(ocapn_session *s, const ocapn_value *m)
{
	char reason[160] = "peer aborted";
	if (m->len == 2 && (m->u.items[1].kind == OCAPN_STRING ||
			       m->u.items[1].kind == OCAPN_SYMBOL))
		snprintf(reason, sizeof(reason), "%.*s",
		    (int)(m->u.items[1].len < 159 ? m->u.items[1].len : 159),
		    (const char *)m->u.items[1].u.p);
	s->aborted_by_peer = true;
	/* The peer kept its own connection to us (the same rule on both
	 * sides): work waiting for this peer waits for that one. */
	if (s->role == OCAPN_ROLE_INITIATOR && !s->peer_hello &&
	    strcmp(reason, "Crossed hellos mitigation") == 0)
		s->crossed = true;
	abort_session(s, reason, false);
}

static void
handle_message(ocapn_session *s, const uint8_t *msg, size_t len)
{
	ocapn_value *m;
	ocapn_syrup_decoder *dec = s->in_shared ? s->dec_shared : s->dec;
	ocapn_arena_reset(s->arena);
	int rc = ocapn_syrup_decode_one(dec, s->arena, msg, len, &m);
	if (rc) {
		size_t off;
		const char *why = ocapn_syrup_decoder_error(dec, &off);
		violation(s, "malformed message at byte %zu: %s", off, why);
		return;
	}
	s->msgs_in++;
	if (m->kind != OCAPN_RECORD || m->u.items[0].kind != OCAPN_SYMBOL) {
		violation(s, "message is not a record with a symbol label");
		return;
	}
	const ocapn_value *label = &m->u.items[0];
	if (OCAPN__SYM_IS(label, "op:abort")) {
		handle_abort(s, m);
		return;
	}
	if (!s->peer_hello) {
		if (OCAPN__SYM_IS(label, "op:start-session"))
			handle_hello(s, m);
		else
			violation(s, "message before op:start-session");
		return;
	}
#define IS(name) OCAPN__SYM_IS(label, name)
	if (IS("op:deliver"))
		handle_deliver(s, m, false);
	else if (IS("op:deliver-only"))
		handle_deliver(s, m, true);
	else if (IS("op:listen"))
		handle_listen(s, m);
	else if (IS("op:get"))
		handle_field(s, m, FIELD_GET, "op:get");
	else if (IS("op:index"))
		handle_field(s, m, FIELD_INDEX, "op:index");
	else if (IS("op:untag"))
		handle_field(s, m, FIELD_UNTAG, "op:untag");
	else if (IS("op:gc-export") || IS("op:gc-exports"))
		handle_gc_export(s, m, IS("op:gc-export") ? "op:gc-export"
							  : "op:gc-exports");
	else if (IS("op:gc-answer") || IS("op:gc-answers"))
		handle_gc_answer(s, m, IS("op:gc-answer") ? "op:gc-answer"
							  : "op:gc-answers");
	else if (IS("op:start-session"))
		violation(s, "second op:start-session");
	else
		violation(s, "unknown operation %.*s", (int)label->len,
		    (const char *)label->u.p);
#undef IS
	tmp_release(s);
}

OCAPN_API int
ocapn_session_feed_message(ocapn_session *s, const uint8_t *msg, size_t len)
{
	if (!s->started)
		return OCAPN_E_STATE;
	if (s->version_mismatch)
		return OCAPN_E_VERSION;
	if (s->state == OCAPN_SESSION_ABORTED)
		return OCAPN_E_ABORTED;
	if (len > s->max_message) {
		violation(s, "message of %zu bytes exceeds the limit", len);
		return OCAPN_E_ABORTED;
	}
	handle_message(s, msg, len);
	tmp_release(s);
	ocapn_arena_reset(s->arena);
	return s->state == OCAPN_SESSION_ABORTED ? OCAPN_E_ABORTED : OCAPN_OK;
}

/*
 * Shared memory: the peer can rewrite `msg` while we decode it, so the
 * decoder copies every atom into the arena before anything inspects it
 * and reads each input byte once (OCAPN_SYRUP_COPY_ATOMS).  A rewrite can
 * then only make the message invalid (a clean abort) or turn it into
 * another valid message, never make a checked value change afterwards.
 */
OCAPN_API int
ocapn_session_feed_shared_message(ocapn_session *s, const uint8_t *msg,
    size_t len)
{
	if (s->started && !s->dec_shared) {
		s->dec_shared = ocapn_syrup_decoder_new(OCAPN_SYRUP_COPY_ATOMS,
		    s->a);
		if (!s->dec_shared) {
			abort_session(s, "out of memory", true);
			return OCAPN_E_ABORTED;
		}
		static const ocapn_syrup_limit lims[] = {OCAPN_SYRUP_MAX_TOTAL,
		    OCAPN_SYRUP_MAX_DEPTH, OCAPN_SYRUP_MAX_ATOM,
		    OCAPN_SYRUP_MAX_ITEMS};
		for (size_t i = 0; i < sizeof(lims) / sizeof(*lims); i++)
			(void)ocapn_syrup_decoder_set_limit(s->dec_shared,
			    lims[i], ocapn_syrup_decoder_get_limit(s->dec,
			    lims[i]));
	}
	s->in_shared = true;
	int rc = ocapn_session_feed_message(s, msg, len);
	s->in_shared = false;
	return rc;
}

OCAPN_API int
ocapn_session_expect_peer(ocapn_session *s, const ocapn_locator *peer)
{
	if (s->peer_hello || s->state != OCAPN_SESSION_HANDSHAKE)
		return OCAPN_E_STATE;
	ocapn_locator *copy = NULL;
	if (peer) {
		int rc = ocapn_locator_copy(peer, &copy);
		if (rc)
			return rc;
	}
	ocapn_locator_free(s->expected_peer);
	s->expected_peer = copy;
	return OCAPN_OK;
}

OCAPN_API int
ocapn_session_feed(ocapn_session *s, const uint8_t *data, size_t len)
{
	if (!s->started)
		return OCAPN_E_STATE;
	if (s->version_mismatch)
		return OCAPN_E_VERSION;
	size_t off = 0;
	while (off < len && s->state != OCAPN_SESSION_ABORTED &&
	    !s->version_mismatch) {
		size_t used;
		int rc = ocapn_syrup_scanner_feed(s->scanner, data + off,
		    len - off, &used);
		if (rc == OCAPN_E_INCOMPLETE) {
			if (ocapn_buffer_append(&s->inbuf, s->a, data + off,
				len - off)) {
				abort_session(s, "out of memory", true);
				break;
			}
			break;
		}
		if (rc) {
			size_t eo;
			const char *why =
			    ocapn_syrup_scanner_error(s->scanner, &eo);
			violation(s, "malformed message at stream byte %zu: %s",
			    eo, why);
			break;
		}
		if (s->inbuf.len == 0) {
			/* Whole message inside this chunk: no copy. */
			handle_message(s, data + off, used);
		} else {
			if (ocapn_buffer_append(&s->inbuf, s->a, data + off,
				used)) {
				abort_session(s, "out of memory", true);
				break;
			}
			handle_message(s, s->inbuf.data, s->inbuf.len);
			s->inbuf.len = 0;
		}
		tmp_release(s);
		off += used;
	}
	ocapn_arena_reset(s->arena);
	return s->state == OCAPN_SESSION_ABORTED ? OCAPN_E_ABORTED : OCAPN_OK;
}

OCAPN_API void
ocapn_session_eof(ocapn_session *s)
{
	ocapn_session_transport_lost(s, "connection closed");
}

OCAPN_API void
ocapn_session_transport_lost(ocapn_session *s, const char *reason)
{
	if (!s->version_mismatch) /* that transport was expected to end */
		abort_session(s, reason ? reason : "connection lost", false);
}

/* ------------------------------------------------------------------ */
/* Output                                                               */
/* ------------------------------------------------------------------ */

OCAPN_API void
ocapn_session_output(ocapn_session *s, const uint8_t **data, size_t *len)
{
	flush_gc(s);
	*len = outq_pending(&s->out);
	*data = *len ? s->out.buf.data + s->out.off : NULL;
}

OCAPN_API void
ocapn_session_consume(ocapn_session *s, size_t n)
{
	outq_consume(&s->out, n);
}

OCAPN_API void
ocapn_session_next_message(ocapn_session *s, const uint8_t **msg,
    size_t *len)
{
	flush_gc(s);
	if (!s->out.nlens) {
		*msg = NULL;
		*len = 0;
		return;
	}
	*msg = s->out.buf.data + s->out.off;
	*len = s->out.lens[s->out.lhead] - s->out.part;
}

/* ------------------------------------------------------------------ */
/* Teardown                                                             */
/* ------------------------------------------------------------------ */

/* Break everything that depends on this session and release its
 * tables. */
static void
break_everything(ocapn_session *s, const char *why)
{
	ocapn_value reason;
	ocapn_value_set_string(&reason, why, strlen(why));
	/* Keep ourselves from being re-entered through unbinding: collect
	 * first, then act. */
	for (size_t i = 0; i < s->questions.cap; i++) {
		ocapn_ref *p = s->questions.vals[i];
		if (!p)
			continue;
		ocapn_ref_retain(p);
		tmp_push(s, p);
	}
	for (size_t i = 0; i < s->imports.cap; i++) {
		ocapn_ref *r = s->imports.vals[i];
		if (!r)
			continue;
		ocapn_ref_retain(r);
		tmp_push(s, r);
	}
	size_t n = s->ntmp;
	for (size_t i = 0; i < n; i++) {
		ocapn_ref *r = s->tmp[i];
		if (r->type == REF_PROMISE && r->p.state == PROM_PENDING)
			ocapn__promise_settle(r, true, &reason);
	}
	tmp_release(s);
	/* Answers we owe and exports we hold: drop them. */
	for (size_t i = 0; i < s->answers.cap; i++) {
		ocapn_ref *p = s->answers.vals[i];
		if (p) {
			s->answers.vals[i] = NULL;
			ocapn_ref_release(p);
		}
	}
	ocapn__map_free(&s->answers, s->a);
	for (size_t i = 0; i < s->exports.cap; i++) {
		struct export_entry *e = s->exports.vals[i];
		if (e) {
			s->exports.vals[i] = NULL;
			ocapn_ref *r = e->ref;
			ocapn__pool_put(&s->export_pool, e);
			ocapn_ref_release(r);
		}
	}
	ocapn__map_free(&s->exports, s->a);
	ocapn__map_free(&s->export_refs, s->a);
}

bool
ocapn__session_alive(const ocapn_session *s)
{
	return s && s->state != OCAPN_SESSION_ABORTED;
}

/* Detach refs still bound to this session (they outlive it). */
static void
detach_refs(ocapn_session *s)
{
	for (size_t i = 0; i < s->imports.cap; i++) {
		ocapn_ref *r = s->imports.vals[i];
		if (r) {
			r->binding = BIND_NONE;
			r->session = NULL;
			r->dead = r->type == REF_REMOTE;
		}
	}
	ocapn__map_free(&s->imports, s->a);
	for (size_t i = 0; i < s->questions.cap; i++) {
		ocapn_ref *r = s->questions.vals[i];
		if (r) {
			r->binding = BIND_NONE;
			r->session = NULL;
		}
	}
	ocapn__map_free(&s->questions, s->a);
}

OCAPN_API void
ocapn_session_free(ocapn_session *s)
{
	if (!s)
		return;
	if (s->state != OCAPN_SESSION_ABORTED)
		abort_session(s, "session closed", true);
	else
		break_everything(s, "session closed");
	detach_refs(s);
	if (s->pprev) {
		*s->pprev = s->next;
		if (s->next)
			s->next->pprev = s->pprev;
	}
	if (ocapn__map_get(&s->vat->by_serial, s->serial) == s)
		ocapn__map_del(&s->vat->by_serial, s->serial);
	if (s->bootstrap) {
		s->bootstrap->u.boot.session = NULL;
		ocapn_ref_release(s->bootstrap);
	}
	ocapn__pool_drain(&s->export_pool, s->a);
	outq_free(&s->out, s->a);
	outq_free(&s->held, s->a);
	ocapn_buffer_release(&s->inbuf, s->a);
	ocapn__free(s->a, s->tmp, s->tmpcap * sizeof(*s->tmp));
	ocapn__free(s->a, s->pend, s->pendcap * sizeof(*s->pend));
	ocapn__free(s->a, s->gce_pos, s->gcecap * sizeof(uint64_t));
	ocapn__free(s->a, s->gce_delta, s->gcecap * sizeof(uint64_t));
	ocapn__free(s->a, s->gca_pos, s->gcacap * sizeof(uint64_t));
	ocapn_syrup_writer_free(s->w);
	ocapn_syrup_writer_free(s->sigw);
	ocapn_syrup_decoder_free(s->dec);
	ocapn_syrup_decoder_free(s->dec_shared);
	ocapn_locator_free(s->expected_peer);
	ocapn_syrup_scanner_free(s->scanner);
	ocapn_arena_free(s->arena);
	ocapn_locator_free(s->self_loc);
	ocapn_locator_free(s->peer_loc);
	ocapn_locator_free(s->remote);
	ocapn__keypair_wipe(&s->key);
	ocapn_vat *vat = s->vat;
	ocapn__free(&vat->a, s, sizeof(*s));
}

void
ocapn__session_vat_gone(ocapn_session *s)
{
	abort_session(s, "vat shutting down", true);
	ocapn_session_free(s);
}

/* ------------------------------------------------------------------ */
/* Accessors                                                            */
/* ------------------------------------------------------------------ */

OCAPN_API ocapn_session_state
ocapn_session_get_state(const ocapn_session *s)
{
	return s->state;
}

OCAPN_API const char *
ocapn_session_abort_reason(const ocapn_session *s)
{
	return s->abort_reason;
}

OCAPN_API bool
ocapn_session_aborted_by_peer(const ocapn_session *s)
{
	return s->aborted_by_peer;
}

OCAPN_API ocapn_role
ocapn_session_role(const ocapn_session *s)
{
	return s->role;
}

OCAPN_API ocapn_dialect
ocapn_session_dialect(const ocapn_session *s)
{
	return s->dialect;
}

OCAPN_API const ocapn_locator *
ocapn_session_peer_locator(const ocapn_session *s)
{
	return s->peer_loc;
}

OCAPN_API const ocapn_locator *
ocapn_session_remote(const ocapn_session *s)
{
	return s->remote;
}

OCAPN_API const char *
ocapn_session_peer_version(const ocapn_session *s)
{
	return s->peer_version;
}

OCAPN_API const uint8_t *
ocapn_session_id(const ocapn_session *s)
{
	return s->peer_hello ? s->session_id : NULL;
}

OCAPN_API const uint8_t *
ocapn_session_local_side_id(const ocapn_session *s)
{
	return s->side_id;
}

OCAPN_API const uint8_t *
ocapn_session_peer_side_id(const ocapn_session *s)
{
	return s->peer_hello ? s->peer_side : NULL;
}

OCAPN_API int
ocapn_session_bootstrap(ocapn_session *s, ocapn_ref **out)
{
	if (!ocapn__session_alive(s))
		return OCAPN_E_CLOSED;
	ocapn_ref *r = ocapn__map_get(&s->imports, 0);
	if (r) {
		*out = ocapn_ref_retain(r);
		return OCAPN_OK;
	}
	r = ocapn__ref_new(s->vat, REF_REMOTE);
	if (!r)
		return OCAPN_E_NOMEM;
	r->binding = BIND_IMPORT;
	r->session = s;
	r->pos = 0;
	r->wire_count = 0; /* implicit: never collected */
	if (ocapn__map_put(&s->imports, s->a, 0, r)) {
		r->binding = BIND_NONE;
		ocapn_ref_release(r);
		return OCAPN_E_NOMEM;
	}
	s->nimports_live++;
	*out = r;
	return OCAPN_OK;
}

OCAPN_API int
ocapn_session_fetch(ocapn_session *s, const uint8_t *swiss, size_t len,
    ocapn_ref **result)
{
	ocapn_ref *boot;
	int rc = ocapn_session_bootstrap(s, &boot);
	if (rc)
		return rc;
	ocapn_value sw;
	ocapn_value_set_bytes(&sw, swiss, len);
	rc = ocapn_call(boot, "fetch", &sw, 1, result);
	ocapn_ref_release(boot);
	return rc;
}

OCAPN_API uint64_t
ocapn_session_stat_get(const ocapn_session *s, ocapn_session_stat which)
{
	switch (which) {
	case OCAPN_STAT_EXPORTS:
		return s->exports.count ? s->exports.count - 1 : 0;
	case OCAPN_STAT_IMPORTS:
		return s->nimports_live -
		    (ocapn__map_get(&s->imports, 0) ? 1 : 0);
	case OCAPN_STAT_ANSWERS:
		return s->answers.count;
	case OCAPN_STAT_QUESTIONS:
		return s->questions.count;
	case OCAPN_STAT_MSGS_IN:
		return s->msgs_in;
	case OCAPN_STAT_MSGS_OUT:
		return s->msgs_out;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* Vat-level session lookup                                             */
/* ------------------------------------------------------------------ */

OCAPN_API ocapn_session *
ocapn_vat_find_session(ocapn_vat *vat, const ocapn_locator *peer)
{
	for (ocapn_session *s = vat->sessions; s; s = s->next) {
		if (s->state == OCAPN_SESSION_ABORTED)
			continue;
		const ocapn_locator *l = s->peer_loc ? s->peer_loc : s->remote;
		if (l && ocapn_locator_same_peer(l, peer))
			return s;
	}
	return NULL;
}

