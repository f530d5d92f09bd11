/*
 * Third-party handoffs (spec "Third Party Handoffs"; docs/handoffs.md).
 *
 *   gifter    G holds a reference imported from exporter E (session G-E)
 *             and sends it to receiver R (session G-R): it deposits the
 *             referent at E's bootstrap under a fresh gift id and sends R
 *             a certificate, <desc:sig-envelope <desc:handoff-give ...>>,
 *             signed with G's key from G-E.
 *   receiver  R turns the certificate into a promise at once, reaches E
 *             (session R-E) and asks E's bootstrap to withdraw-gift with
 *             <desc:handoff-receive ...>, signed with R's key from G-R;
 *             the promise follows the withdraw's answer, so messages sent
 *             to it pipeline.
 *   exporter  E checks both certificates against its sessions and hands
 *             over the gift, whether it was deposited before or after the
 *             withdrawal.  A bad withdrawal breaks its answer; it never
 *             disturbs the sessions (the conformance suite requires this).
 *
 * Records (field order on the wire, verified against Goblins' captures):
 *   <desc:handoff-give RECEIVER-KEY EXPORTER-LOCATION
 *                      GIFTER-EXPORTER-SESSION GIFTER-SIDE GIFT-ID>
 *   <desc:handoff-receive RECEIVER-EXPORTER-SESSION RECEIVER-SIDE
 *                         HANDOFF-COUNT SIGNED-GIVE>
 *   <desc:sig-envelope SIGNED SIG-VAL>  (signature over syrup(SIGNED))
 */
#include <stdio.h>

#include "session_internal.h"

#define LIT(s) (s), (sizeof(s) - 1)
#define GIFT_ID_LEN 32
#define GIFT_ID_MAX 256 /* longest gift id accepted from a peer */

/* ------------------------------------------------------------------ */
/* Certificate parsing                                                  */
/* ------------------------------------------------------------------ */

struct give {
	uint8_t receiver_pk[OCAPN__PK_LEN];
	const ocapn_value *exporter_loc;
	const uint8_t *session; /* 32 */
	const uint8_t *side;    /* 32 */
	const uint8_t *gift_id;
	size_t gift_len;
	const ocapn_value *signed_give; /* the whole envelope */
	const ocapn_value *give;        /* the give record */
	uint8_t sig[OCAPN__SIG_LEN];
};

static bool
is_bytes(const ocapn_value *v, size_t len)
{
	return v->kind == OCAPN_BYTES && (len == 0 || v->len == len);
}

/* Parse <desc:sig-envelope <desc:handoff-give ...> SIG>. */
static const char *
parse_give(const ocapn_value *env, struct give *g)
{
	const char *why = NULL;
	if (!ocapn_value_is_record(env, "desc:sig-envelope", 2))
		return "not a desc:sig-envelope with 2 fields";
	const ocapn_value *give = &env->u.items[1];
	if (!ocapn_value_is_record(give, "desc:handoff-give", 5))
		return "not a desc:handoff-give with 5 fields";
	if (ocapn__parse_sigval(&env->u.items[2], g->sig, &why))
		return why;
	if (ocapn__parse_pubkey(&give->u.items[1], g->receiver_pk, &why))
		return why;
	g->exporter_loc = &give->u.items[2];
	if (!ocapn_value_is_record(g->exporter_loc, "ocapn-peer", 3))
		return "exporter location is not an ocapn-peer";
	if (!is_bytes(&give->u.items[3], 32) ||
	    !is_bytes(&give->u.items[4], 32))
		return "session or side id is not 32 bytes";
	const ocapn_value *gid = &give->u.items[5];
	if (gid->kind != OCAPN_BYTES || gid->len == 0 ||
	    gid->len > GIFT_ID_MAX)
		return "gift id is not a byte string of 1 to 256 bytes";
	g->session = give->u.items[3].u.p;
	g->side = give->u.items[4].u.p;
	g->gift_id = gid->u.p;
	g->gift_len = gid->len;
	g->signed_give = env;
	g->give = give;
	return NULL;
}

/* ------------------------------------------------------------------ */
/* Gifter                                                               */
/* ------------------------------------------------------------------ */

/* `r` is bound to session `g` (gifter-exporter); we are writing a message
 * for session `s` (gifter-receiver). */
int
ocapn__handoff_write_give(ocapn_session *s, ocapn_ref *r)
{
	ocapn_session *g = r->session;
	if (!g || g->state != OCAPN_SESSION_ACTIVE || !g->peer_loc)
		return OCAPN_E_CLOSED;
	if (s->state != OCAPN_SESSION_ACTIVE)
		return OCAPN_E_STATE; /* the receiver key is not known yet */
	if (ocapn_locator_same_peer(g->peer_loc, s->peer_loc))
		return OCAPN_E_UNSUPPORTED; /* two sessions to one peer */
	uint8_t gift[GIFT_ID_LEN];
	ocapn__random(gift, sizeof(gift));

	/* The give, signed with our key from the gifter-exporter session. */
	ocapn_syrup_writer *gw = g->sigw;
	ocapn_syrup_writer_reset(gw);
	ocapn_syrup_write_record_begin(gw);
	ocapn_syrup_write_symbol(gw, LIT("desc:handoff-give"));
	ocapn__write_pubkey(gw, s->peer_pk);
	ocapn_locator_write(g->peer_loc, gw);
	ocapn_syrup_write_bytes(gw, g->session_id, OCAPN__HASH_LEN);
	ocapn_syrup_write_bytes(gw, g->side_id, OCAPN__HASH_LEN);
	ocapn_syrup_write_bytes(gw, gift, sizeof(gift));
	ocapn_syrup_write_record_end(gw);
	const uint8_t *give;
	size_t give_len;
	int rc = ocapn_syrup_writer_finish(gw, &give, &give_len);
	uint8_t sig[OCAPN__SIG_LEN];
	if (!rc)
		rc = ocapn__sign(&g->key, give, give_len, sig);
	if (rc)
		return rc;

	/* The certificate goes into the message being written for `s`. */
	ocapn_syrup_writer *w = s->w;
	ocapn_syrup_write_record_begin(w);
	ocapn_syrup_write_symbol(w, LIT("desc:sig-envelope"));
	ocapn_syrup_write_raw(w, give, give_len);
	ocapn__write_sigval(w, sig);
	rc = ocapn_syrup_write_record_end(w);
	if (rc)
		return rc;

	/* The deposit at the exporter's bootstrap, reply-less.  It may reach
	 * the exporter before or after the receiver's withdrawal. */
	size_t start;
	ocapn_syrup_writer *dw = ocapn__out_begin(g, &g->out, &start);
	ocapn_syrup_write_record_begin(dw);
	bool spec = g->dialect == OCAPN_DIALECT_SPEC;
	if (spec)
		ocapn_syrup_write_symbol(dw, LIT("op:deliver"));
	else
		ocapn_syrup_write_symbol(dw, LIT("op:deliver-only"));
	ocapn__write_desc(dw, LIT("desc:export"), 0);
	ocapn_syrup_write_list_begin(dw);
	ocapn_syrup_write_symbol(dw, LIT("deposit-gift"));
	ocapn_syrup_write_bytes(dw, gift, sizeof(gift));
	ocapn__write_target(g, r);
	ocapn_syrup_write_list_end(dw);
	if (spec) {
		ocapn_syrup_write_bool(dw, false);
		ocapn_syrup_write_bool(dw, false);
	}
	rc = ocapn_syrup_write_record_end(dw);
	return ocapn__out_finish(g, &g->out, start, rc);
}

/* ------------------------------------------------------------------ */
/* Receiver                                                             */
/* ------------------------------------------------------------------ */

static struct pending_withdraw *
withdraw_new(ocapn_session *s, const ocapn_value *env, ocapn_ref *p,
    ocapn_ref *r)
{
	ocapn_vat *vat = s->vat;
	ocapn_syrup_writer *w = s->sigw;
	ocapn_syrup_writer_reset(w);
	ocapn_syrup_write_value(w, env);
	const uint8_t *bytes;
	size_t len;
	if (ocapn_syrup_writer_finish(w, &bytes, &len))
		return NULL;
	struct pending_withdraw *pw = ocapn__calloc(&vat->a, sizeof(*pw));
	if (!pw)
		return NULL;
	pw->give = ocapn__malloc(&vat->a, len);
	if (!pw->give) {
		ocapn__free(&vat->a, pw, sizeof(*pw));
		return NULL;
	}
	memcpy(pw->give, bytes, len);
	pw->give_len = len;
	pw->key = s->key;
	pw->count = vat->handoff_count++;
	pw->promise = ocapn_ref_retain(p);
	pw->resolver = ocapn_ref_retain(r);
	return pw;
}

static void
withdraw_free(ocapn_vat *vat, struct pending_withdraw *pw)
{
	ocapn__keypair_wipe(&pw->key);
	ocapn__free(&vat->a, pw->give, pw->give_len);
	ocapn_ref_release(pw->promise);
	ocapn_ref_release(pw->resolver);
	ocapn__free(&vat->a, pw, sizeof(*pw));
}

void
ocapn__handoff_drop_withdraw(ocapn_vat *vat, struct pending_withdraw *pw,
    const char *why)
{
	ocapn__resolve_ref_str(pw->resolver, why);
	withdraw_free(vat, pw);
}

/*
 * A certificate arrived inside arguments on session `s` (gifter-receiver).
 * A signed handoff-receive is not a reference (it is the argument of
 * withdraw-gift): *out stays NULL and OCAPN_OK is returned.  Otherwise *out
 * is a new promise (one reference) for the handed-off object; a
 * certificate not addressed to us gives a broken promise.  A malformed
 * certificate aborts the session.
 */
int
ocapn__handoff_receive_give(ocapn_session *s, const ocapn_value *env,
    ocapn_ref **out)
{
	*out = NULL;
	if (env->len == 3 &&
	    ocapn_value_is_record(&env->u.items[1], "desc:handoff-receive",
		SIZE_MAX))
		return OCAPN_OK;
	struct give g;
	const char *why = parse_give(env, &g);
	if (why) {
		char msg[160];
		snprintf(msg, sizeof(msg), "malformed handoff certificate: %s",
		    why);
		ocapn_session_abort(s, msg);
		return OCAPN_E_PROTOCOL;
	}
	ocapn_ref *p, *r;
	int rc = ocapn__promise_pair(s->vat, &p, &r);
	if (rc)
		return rc;
	*out = p;
	ocapn_locator *exporter = NULL;
	if (!ocapn__ct_equal(g.receiver_pk, s->key.pk, OCAPN__PK_LEN))
		why = "the handoff certificate names another receiver";
	else if (ocapn_locator_from_value(g.exporter_loc, s->a, &exporter,
		     &why))
		why = "the handoff names an invalid exporter location";
	else if (ocapn_locator_same_peer(exporter, s->self_loc))
		why = "the handoff points at ourselves";
	if (why) {
		ocapn__resolve_ref_str(r, why);
		ocapn_ref_release(r);
		ocapn_locator_free(exporter);
		return OCAPN_OK;
	}
	struct pending_withdraw *pw = withdraw_new(s, env, p, r);
	ocapn_ref_release(r);
	if (!pw) {
		ocapn__promise_break_str(p, "out of memory");
		ocapn_locator_free(exporter);
		return OCAPN_OK;
	}
	ocapn__peer_withdraw(s->vat, exporter, pw);
	ocapn_locator_free(exporter);
	return OCAPN_OK;
}

/* Send the withdrawal on the receiver-exporter session `s` (active). */
void
ocapn__handoff_send_withdraw(ocapn_session *s, struct pending_withdraw *pw)
{
	ocapn_vat *vat = s->vat;
	/* The receive, signed with our key from the gifter-receiver
	 * session (the key the give names). */
	ocapn_syrup_writer *rw = s->sigw;
	ocapn_syrup_writer_reset(rw);
	ocapn_syrup_write_record_begin(rw);
	ocapn_syrup_write_symbol(rw, LIT("desc:handoff-receive"));
	ocapn_syrup_write_bytes(rw, s->session_id, OCAPN__HASH_LEN);
	ocapn_syrup_write_bytes(rw, s->side_id, OCAPN__HASH_LEN);
	ocapn_syrup_write_uint(rw, pw->count);
	ocapn_syrup_write_raw(rw, pw->give, pw->give_len);
	ocapn_syrup_write_record_end(rw);
	const uint8_t *recv;
	size_t recv_len;
	uint8_t sig[OCAPN__SIG_LEN];
	int rc = ocapn_syrup_writer_finish(rw, &recv, &recv_len);
	if (!rc)
		rc = ocapn__sign(&pw->key, recv, recv_len, sig);
	if (rc) {
		ocapn__handoff_drop_withdraw(vat, pw, ocapn_strerror(rc));
		return;
	}
	/* <op:deliver <desc:export 0> ['withdraw-gift ENVELOPE] Q R> */
	uint64_t qpos = s->next_question;
	size_t start;
	ocapn_syrup_writer *w = ocapn__out_begin(s, &s->out, &start);
	ocapn_syrup_write_record_begin(w);
	ocapn_syrup_write_symbol(w, LIT("op:deliver"));
	ocapn__write_desc(w, LIT("desc:export"), 0);
	ocapn_syrup_write_list_begin(w);
	ocapn_syrup_write_symbol(w, LIT("withdraw-gift"));
	ocapn_syrup_write_record_begin(w);
	ocapn_syrup_write_symbol(w, LIT("desc:sig-envelope"));
	ocapn_syrup_write_raw(w, recv, recv_len);
	ocapn__write_sigval(w, sig);
	ocapn_syrup_write_record_end(w);
	ocapn_syrup_write_list_end(w);
	ocapn_syrup_write_uint(w, qpos);
	rc = ocapn__write_ref(s, pw->resolver);
	if (!rc)
		rc = ocapn_syrup_write_record_end(w);
	rc = ocapn__out_finish(s, &s->out, start, rc);
	if (rc) {
		ocapn__handoff_drop_withdraw(vat, pw, ocapn_strerror(rc));
		return;
	}
	s->next_question++;
	/* The promise follows the withdraw's answer: messages already sent
	 * to it, and later ones, pipeline there. */
	ocapn__bind_question(s, pw->promise, qpos);
	withdraw_free(vat, pw);
}

/* ------------------------------------------------------------------ */
/* Exporter                                                             */
/* ------------------------------------------------------------------ */

static ocapn_session *
session_by_id(ocapn_vat *vat, const uint8_t *id)
{
	for (ocapn_session *s = vat->sessions; s; s = s->next)
		if (s->state == OCAPN_SESSION_ACTIVE &&
		    memcmp(s->session_id, id, OCAPN__HASH_LEN) == 0)
			return s;
	return NULL;
}

static void
deliver_gift(ocapn_ref *resolver, ocapn_ref *gift)
{
	ocapn_value v;
	ocapn_value_set_ref(&v, gift);
	ocapn__resolve_ref(resolver, false, &v);
}

static int
deposit(ocapn_session *ge, const ocapn_value *args, ocapn_ref *resolver)
{
	ocapn_vat *vat = ge->vat;
	if (args->len != 3 || args->u.items[1].kind != OCAPN_BYTES ||
	    args->u.items[1].len == 0 ||
	    args->u.items[1].len > GIFT_ID_MAX ||
	    args->u.items[2].kind != OCAPN_REF)
		return ocapn__resolve_ref_str(resolver,
		    "deposit-gift takes a gift id and a reference");
	const ocapn_value *id = &args->u.items[1];
	ocapn_ref *gift = args->u.items[2].u.ref;
	/* A withdrawal may be waiting for it. */
	for (struct waiting **pp = &ge->waitings; *pp; pp = &(*pp)->next) {
		struct waiting *w = *pp;
		if (w->idlen == id->len && !memcmp(w->id, id->u.p, id->len)) {
			*pp = w->next;
			ge->nwaitings--;
			deliver_gift(w->resolver, gift);
			ocapn_ref_release(w->resolver);
			ocapn__free(&vat->a, w, sizeof(*w) + w->idlen);
			goto done;
		}
	}
	struct gift *g = ocapn__malloc(&vat->a, sizeof(*g) + id->len);
	if (!g)
		return ocapn__resolve_ref_str(resolver, "out of memory");
	g->next = NULL;
	g->ref = ocapn_ref_retain(gift);
	g->idlen = id->len;
	memcpy(g->id, id->u.p, id->len);
	struct gift **tail = &ge->gifts;
	while (*tail)
		tail = &(*tail)->next;
	*tail = g;
	if (++ge->ngifts > GIFT_MAX) {
		/* bounded: the oldest undelivered gift is dropped */
		struct gift *old = ge->gifts;
		ge->gifts = old->next;
		ge->ngifts--;
		ocapn_ref_release(old->ref);
		ocapn__free(&vat->a, old, sizeof(*old) + old->idlen);
	}
done:
	if (resolver) {
		ocapn_value t;
		ocapn_value_set_bool(&t, true);
		ocapn__resolve_ref(resolver, false, &t);
	}
	return OCAPN_OK;
}

/* Check and consume the handoff count of (G-E, receiver key). */
static bool
count_fresh(ocapn_session *ge, const uint8_t *pk, uint64_t count)
{
	ocapn_vat *vat = ge->vat;
	struct floor *f;
	for (f = ge->floors; f; f = f->next)
		if (!memcmp(f->pk, pk, OCAPN__PK_LEN))
			break;
	if (f) {
		if (count < f->next_count)
			return false;
		f->next_count = count + 1;
		return true;
	}
	f = ocapn__malloc(&vat->a, sizeof(*f));
	if (!f)
		return false;
	memcpy(f->pk, pk, OCAPN__PK_LEN);
	f->next_count = count + 1;
	f->next = NULL;
	struct floor **tail = &ge->floors;
	while (*tail)
		tail = &(*tail)->next;
	*tail = f;
	if (++ge->nfloors > FLOOR_MAX) {
		struct floor *old = ge->floors;
		ge->floors = old->next;
		ge->nfloors--;
		ocapn__free(&vat->a, old, sizeof(*old));
	}
	return true;
}

static int
withdraw(ocapn_session *re, const ocapn_value *args, ocapn_ref *resolver)
{
	ocapn_vat *vat = re->vat;
	if (!resolver)
		return OCAPN_OK; /* nobody to hand the gift to */
	const char *why = NULL;
	if (args->len != 2)
		return ocapn__resolve_ref_str(resolver,
		    "withdraw-gift takes one signed handoff-receive");
	const ocapn_value *env = &args->u.items[1];
	if (!ocapn_value_is_record(env, "desc:sig-envelope", 2) ||
	    !ocapn_value_is_record(&env->u.items[1], "desc:handoff-receive",
		4))
		return ocapn__resolve_ref_str(resolver,
		    "withdraw-gift: not a signed desc:handoff-receive");
	const ocapn_value *recv = &env->u.items[1];
	uint8_t rsig[OCAPN__SIG_LEN];
	uint64_t count;
	if (ocapn__parse_sigval(&env->u.items[2], rsig, &why))
		return ocapn__resolve_ref_str(resolver, why);
	if (!is_bytes(&recv->u.items[1], 32) ||
	    !is_bytes(&recv->u.items[2], 32) ||
	    recv->u.items[3].kind != OCAPN_INT ||
	    ocapn_value_get_uint64(&recv->u.items[3], &count))
		return ocapn__resolve_ref_str(resolver,
		    "withdraw-gift: malformed handoff-receive");
	struct give g;
	if ((why = parse_give(&recv->u.items[4], &g)))
		return ocapn__resolve_ref_str(resolver, why);

	/* The gifter's session, named by the give. */
	ocapn_session *ge = session_by_id(vat, g.session);
	if (!ge)
		return ocapn__resolve_ref_str(resolver,
		    "handoff: no open session with the gifter named by the "
		    "certificate");
	if (memcmp(g.side, ge->peer_side, OCAPN__HASH_LEN))
		return ocapn__resolve_ref_str(resolver,
		    "handoff: gifter side id does not match its session");
	ocapn_locator *loc = NULL;
	bool ours = ocapn_locator_from_value(g.exporter_loc, re->a, &loc,
			NULL) == 0 &&
	    ocapn_locator_same_peer(loc, ge->self_loc);
	ocapn_locator_free(loc);
	if (!ours)
		return ocapn__resolve_ref_str(resolver,
		    "handoff: the certificate names another exporter");
	if (ocapn__verify_value(ge->peer_pk, re->sigw, g.give, g.sig))
		return ocapn__resolve_ref_str(resolver,
		    "handoff: invalid handoff-give signature");
	/* The receive: for this session, signed by the receiver the give
	 * names. */
	if (memcmp(recv->u.items[1].u.p, re->session_id, OCAPN__HASH_LEN))
		return ocapn__resolve_ref_str(resolver,
		    "handoff: the receive names another session");
	if (memcmp(recv->u.items[2].u.p, re->peer_side, OCAPN__HASH_LEN))
		return ocapn__resolve_ref_str(resolver,
		    "handoff: receiver side id does not match this session");
	if (ocapn__verify_value(g.receiver_pk, re->sigw, recv, rsig))
		return ocapn__resolve_ref_str(resolver,
		    "handoff: invalid handoff-receive signature");
	if (!count_fresh(ge, g.receiver_pk, count))
		return ocapn__resolve_ref_str(resolver,
		    "handoff: handoff count already used (replay)");

	/* Hand over the gift, now or when it is deposited. */
	for (struct gift **pp = &ge->gifts; *pp; pp = &(*pp)->next) {
		struct gift *gf = *pp;
		if (gf->idlen == g.gift_len &&
		    !memcmp(gf->id, g.gift_id, g.gift_len)) {
			*pp = gf->next;
			ge->ngifts--;
			deliver_gift(resolver, gf->ref);
			ocapn_ref_release(gf->ref);
			ocapn__free(&vat->a, gf, sizeof(*gf) + gf->idlen);
			return OCAPN_OK;
		}
	}
	struct waiting *w = ocapn__malloc(&vat->a, sizeof(*w) + g.gift_len);
	if (!w)
		return ocapn__resolve_ref_str(resolver, "out of memory");
	w->next = NULL;
	w->resolver = ocapn_ref_retain(resolver);
	w->idlen = g.gift_len;
	memcpy(w->id, g.gift_id, g.gift_len);
	struct waiting **tail = &ge->waitings;
	while (*tail)
		tail = &(*tail)->next;
	*tail = w;
	if (++ge->nwaitings > WAITING_MAX) {
		struct waiting *old = ge->waitings;
		ge->waitings = old->next;
		ge->nwaitings--;
		ocapn__resolve_ref_str(old->resolver,
		    "handoff: too many withdrawals waiting for their gift");
		ocapn_ref_release(old->resolver);
		ocapn__free(&vat->a, old, sizeof(*old) + old->idlen);
	}
	return OCAPN_OK;
}

int
ocapn__bootstrap_gift(ocapn_vat *vat, ocapn_ref *self, const ocapn_value *args,
    ocapn_ref *resolver)
{
	(void)vat;
	ocapn_session *s = self->u.boot.session;
	if (!s || s->state != OCAPN_SESSION_ACTIVE)
		return ocapn__resolve_ref_str(resolver,
		    "the session of this bootstrap object is gone");
	if (ocapn_value_is_symbol(&args->u.items[0], "deposit-gift"))
		return deposit(s, args, resolver);
	return withdraw(s, args, resolver);
}

void
ocapn__handoff_session_gone(ocapn_session *s, const char *why)
{
	ocapn_vat *vat = s->vat;
	while (s->gifts) {
		struct gift *g = s->gifts;
		s->gifts = g->next;
		ocapn_ref_release(g->ref);
		ocapn__free(&vat->a, g, sizeof(*g) + g->idlen);
	}
	s->ngifts = 0;
	while (s->waitings) {
		struct waiting *w = s->waitings;
		s->waitings = w->next;
		char msg[200];
		snprintf(msg, sizeof(msg),
		    "handoff: the gifter's session ended (%s)", why);
		ocapn__resolve_ref_str(w->resolver, msg);
		ocapn_ref_release(w->resolver);
		ocapn__free(&vat->a, w, sizeof(*w) + w->idlen);
	}
	s->nwaitings = 0;
	while (s->floors) {
		struct floor *f = s->floors;
		s->floors = f->next;
		ocapn__free(&vat->a, f, sizeof(*f));
	}
	s->nfloors = 0;
}
