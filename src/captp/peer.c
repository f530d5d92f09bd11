/*
 * Peers of a vat: one record per peer (transport + designator) the vat was
 * asked to reach.  Nothing is bound to a connection before its handshake
 * completes: until a session to the peer is active, the peer's bootstrap
 * object is a promise, so messages sent to it queue on the promise and
 * travel on whichever session completes first.  This is what lets the
 * crossed-hellos rule drop a half-open connection without losing
 * anything, and lets an initiator retry in another CapTP version.
 *
 * Withdrawals of handed-off gifts (receiver side) wait here too, because
 * a withdrawal names the receiver-exporter session id, which exists only
 * once that session is active.
 */
#include <stdio.h>

#include "session_internal.h"

struct peer_rec {
	struct peer_rec *next;
	ocapn_locator *loc;
	ocapn_session *active;          /* weak */
	ocapn_ref *boot, *boot_res;     /* pending bootstrap promise */
	struct pending_withdraw *withdraws, **wtail;
};

static struct peer_rec *
peer_find(ocapn_vat *vat, const ocapn_locator *loc)
{
	for (struct peer_rec *r = vat->peers; r; r = r->next)
		if (ocapn_locator_same_peer(r->loc, loc))
			return r;
	return NULL;
}

static struct peer_rec *
peer_get(ocapn_vat *vat, const ocapn_locator *loc)
{
	struct peer_rec *r = peer_find(vat, loc);
	if (r)
		return r;
	r = ocapn__calloc(&vat->a, sizeof(*r));
	if (!r)
		return NULL;
	if (ocapn_locator_copy(loc, &r->loc)) {
		ocapn__free(&vat->a, r, sizeof(*r));
		return NULL;
	}
	r->wtail = &r->withdraws;
	r->next = vat->peers;
	vat->peers = r;
	return r;
}

/* A live session with this peer: active, or handshaking (its peer known
 * from its hello, or, for one we dialled, from whom we dialled). */
static ocapn_session *
live_session(ocapn_vat *vat, const ocapn_locator *loc, bool active_only)
{
	for (ocapn_session *s = vat->sessions; s; s = s->next) {
		if (s->state == OCAPN_SESSION_ABORTED)
			continue;
		if (active_only && s->state != OCAPN_SESSION_ACTIVE)
			continue;
		const ocapn_locator *l = s->peer_loc ? s->peer_loc : s->remote;
		if (l && ocapn_locator_same_peer(l, loc))
			return s;
	}
	return NULL;
}

static void
fail_pending(ocapn_vat *vat, struct peer_rec *r, const char *why)
{
	if (r->boot_res) {
		ocapn_ref *res = r->boot_res, *p = r->boot;
		r->boot_res = r->boot = NULL;
		ocapn__resolve_ref_str(res, why);
		ocapn_ref_release(res);
		ocapn_ref_release(p);
	}
	struct pending_withdraw *pw = r->withdraws;
	r->withdraws = NULL;
	r->wtail = &r->withdraws;
	while (pw) {
		struct pending_withdraw *n = pw->next;
		ocapn__handoff_drop_withdraw(vat, pw, why);
		pw = n;
	}
}

/* Make sure some session to the peer exists (dialling if needed). */
static void
ensure_connecting(ocapn_vat *vat, struct peer_rec *r)
{
	if (live_session(vat, r->loc, false))
		return;
	ocapn_session *s;
	int rc = vat->connect ? vat->connect(vat, r->loc, vat->connect_user,
					   &s)
			      : OCAPN_E_UNSUPPORTED;
	if (rc) {
		char why[120];
		snprintf(why, sizeof(why), "cannot connect to the peer: %s",
		    ocapn_strerror(rc));
		fail_pending(vat, r, why);
	}
}

int
ocapn__peer_bootstrap(ocapn_vat *vat, const ocapn_locator *peer,
    ocapn_ref **out)
{
	ocapn_session *s = live_session(vat, peer, true);
	if (s)
		return ocapn_session_bootstrap(s, out);
	struct peer_rec *r = peer_get(vat, peer);
	if (!r)
		return OCAPN_E_NOMEM;
	if (!r->boot) {
		int rc = ocapn__promise_pair(vat, &r->boot, &r->boot_res);
		if (rc)
			return rc;
	}
	ocapn_ref *boot = ocapn_ref_retain(r->boot);
	ensure_connecting(vat, r); /* may break r->boot at once */
	*out = boot;
	return OCAPN_OK;
}

void
ocapn__peer_withdraw(ocapn_vat *vat, const ocapn_locator *peer,
    struct pending_withdraw *pw)
{
	ocapn_session *s = live_session(vat, peer, true);
	if (s) {
		ocapn__handoff_send_withdraw(s, pw);
		return;
	}
	struct peer_rec *r = peer_get(vat, peer);
	if (!r) {
		ocapn__handoff_drop_withdraw(vat, pw, "out of memory");
		return;
	}
	pw->next = NULL;
	*r->wtail = pw;
	r->wtail = &pw->next;
	ensure_connecting(vat, r);
}

OCAPN_API ocapn_dialect
ocapn_vat_recent_dialect(const ocapn_vat *vat)
{
	return (ocapn_dialect)vat->recent_dialect;
}

void
ocapn__vat_session_ready(ocapn_session *s)
{
	ocapn_vat *vat = s->vat;
	vat->recent_dialect = (uint8_t)s->dialect;
	struct peer_rec *r = peer_get(vat, s->peer_loc);
	if (!r)
		return;
	if (!r->active || r->active->state != OCAPN_SESSION_ACTIVE)
		r->active = s;
	if (r->active != s)
		return; /* another session already serves this peer */
	if (r->boot_res) {
		ocapn_ref *b;
		ocapn_ref *res = r->boot_res, *p = r->boot;
		r->boot_res = r->boot = NULL;
		if (ocapn_session_bootstrap(s, &b) == 0) {
			ocapn_value v;
			ocapn_value_set_ref(&v, b);
			ocapn__resolve_ref(res, false, &v);
			ocapn_ref_release(b);
		} else {
			ocapn__resolve_ref_str(res, "out of memory");
		}
		ocapn_ref_release(res);
		ocapn_ref_release(p);
	}
	struct pending_withdraw *pw = r->withdraws;
	r->withdraws = NULL;
	r->wtail = &r->withdraws;
	while (pw) {
		struct pending_withdraw *n = pw->next;
		ocapn__handoff_send_withdraw(s, pw);
		pw = n;
	}
}

void
ocapn__vat_session_gone(ocapn_session *s, const char *why)
{
	ocapn_vat *vat = s->vat;
	for (struct peer_rec *r = vat->peers; r; r = r->next) {
		const ocapn_locator *l = s->peer_loc ? s->peer_loc : s->remote;
		if (r->active != s && !(l && ocapn_locator_same_peer(l, r->loc)))
			continue;
		if (r->active == s)
			r->active = live_session(vat, r->loc, true);
		/* Pending work fails only when no other connection to the
		 * peer is alive (one may be completing: crossed hellos), and
		 * not when the peer told us it keeps its own connection to
		 * us: ocapn_vat_check_peers() dials again if that never
		 * comes. */
		if ((r->boot_res || r->withdraws) && !s->crossed &&
		    !live_session(vat, r->loc, false))
			fail_pending(vat, r, why);
	}
}

void
ocapn__peers_free(ocapn_vat *vat)
{
	while (vat->peers) {
		struct peer_rec *r = vat->peers;
		vat->peers = r->next;
		fail_pending(vat, r, "vat shutting down");
		ocapn_locator_free(r->loc);
		ocapn__free(&vat->a, r, sizeof(*r));
	}
}

OCAPN_API size_t
ocapn_vat_check_peers(ocapn_vat *vat)
{
	size_t n = 0;
	for (struct peer_rec *r = vat->peers; r; r = r->next) {
		if (!(r->boot_res || r->withdraws) ||
		    live_session(vat, r->loc, false))
			continue;
		n++;
		ensure_connecting(vat, r);
	}
	return n;
}
