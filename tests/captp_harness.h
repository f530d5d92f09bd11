/*
 * Test harness for the CapTP engine: two vats with one session each,
 * connected in memory, with every message logged in notation so tests can
 * assert on the exact wire traffic.
 */
#ifndef OCAPN_CAPTP_HARNESS_H
#define OCAPN_CAPTP_HARNESS_H

#include <ocapn/ocapn.h>

#include "testutil.h"

#define H_MAXLOG 512

struct h_log {
	char *msgs[H_MAXLOG]; /* notation of each message, malloc'ed */
	size_t n;
};

struct h_pair {
	ocapn_vat *va, *vb;
	ocapn_session *a, *b; /* a: initiator ("alice"), b: acceptor ("bob") */
	struct h_log a2b, b2a;
	size_t chunk;         /* feed in pieces of this size (0: whole) */
	bool shared_vats;     /* vats not owned */
};

/* Create vats, sessions (dialects as given) and start both. */
void h_pair_init(struct h_pair *p, ocapn_dialect da, ocapn_dialect db);
/* Same with existing vats (not freed by h_pair_free when `own_vats` is
 * false). */
void h_pair_init_vats(struct h_pair *p, ocapn_vat *va, ocapn_vat *vb,
    ocapn_dialect da, ocapn_dialect db);
/* Encode notation text as Syrup bytes (malloc'ed). */
uint8_t *h_encode(const char *text, size_t *len);
/* Move bytes both ways and run both vats until quiet. */
void h_pump(struct h_pair *p);
void h_pair_free(struct h_pair *p);
void h_log_clear(struct h_log *l);
/* Index of the first message of `l` at or after `from` that starts with
 * `prefix`, or -1. */
int h_log_find(const struct h_log *l, size_t from, const char *prefix);
/* Append to `l` the notation of each whole message in p[0..n) for which
 * `keep` (NULL: every one) returns true. */
void h_log_messages(struct h_log *l, const uint8_t *p, size_t n,
    bool (*keep)(const char *));
/* Move everything `from` has written to `to` (in pieces of `chunk` bytes,
 * 0 for one piece; nothing is fed to an aborted session), logging it in
 * `log`.  Returns the number of bytes moved. */
size_t h_move(ocapn_session *from, ocapn_session *to, struct h_log *log,
    size_t chunk);
/* Print a log (for failing tests). */
void h_log_dump(const char *title, const struct h_log *l);

/* A locator "NAME.loopback". */
ocapn_locator *h_locator(const char *name);

/* Fetch `swiss` through session s; returns the promise. */
ocapn_ref *h_fetch(ocapn_session *s, const char *swiss);

/* Settlement recorder for ocapn_when. */
struct h_result {
	int done;          /* number of callbacks */
	bool ok;
	char text[4096];   /* notation of the value (refs as <ref>) */
	ocapn_ref *ref;    /* if the value is a ref: retained */
};
void h_when(ocapn_ref *target, struct h_result *r);
void h_result_clear(struct h_result *r);

/* Notation of a value that may contain refs (printed as <ref>). */
void h_print(const ocapn_value *v, char *buf, size_t cap);

/* Parse notation into the vat scratch arena (fails the test on error). */
ocapn_value *h_parse(ocapn_vat *vat, const char *text);

#endif
