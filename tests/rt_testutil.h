/*
 * Helpers for tests that run a client and a server runtime: awaiting a
 * promise's result as text, enlivening the server's objects from the
 * client, parsing arguments written in notation.
 */
#ifndef OCAPN_RT_TESTUTIL_H
#define OCAPN_RT_TESTUTIL_H

#include <stdbool.h>

#include <ocapn/ocapn.h>
#include <ocapn/runtime.h>

/* What a promise settled to: `done` once settled, `ok` if fulfilled,
 * `text` its notation ("<ref>" for a reference) or the break reason. */
struct tu_result {
	int done;
	bool ok;
	char text[1024];
};

/* An ocapn_settled_fn filling the struct tu_result at `user`. */
void tu_settled(ocapn_vat *vat, bool ok, const ocapn_value *v, void *user);

/* Enliven, from `client`, the server's object registered under the
 * NUL-terminated `swiss`, through its sturdyref URI on `snl`: a promise
 * (one reference).  Fails the test on error. */
ocapn_ref *tu_enliven(ocapn_runtime *server, ocapn_netlayer *snl,
    ocapn_runtime *client, const char *swiss);

/* One notation value allocated in the vat arena of `rt`; fails the test
 * on error. */
ocapn_value *tu_rt_parse(ocapn_runtime *rt, const char *text);

#endif
