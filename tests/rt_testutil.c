#define _POSIX_C_SOURCE 200809L /* <uv.h> needs the POSIX types */
#include "rt_testutil.h"

#include <stdio.h>
#include <string.h>

#include "testutil.h"

void
tu_settled(ocapn_vat *vat, bool ok, const ocapn_value *v, void *user)
{
	struct tu_result *r = user;
	(void)vat;
	r->done = 1;
	r->ok = ok;
	if (v->kind == OCAPN_REF) {
		snprintf(r->text, sizeof(r->text), "<ref>");
		return;
	}
	if (!ok) {
		size_t n;
		const char *t = ocapn_break_text(v, &n);
		snprintf(r->text, sizeof(r->text), "%.*s", (int)n, t);
		return;
	}
	ocapn_buffer b;
	ocapn_buffer_init(&b);
	if (ocapn_notation_print(v, 0, &b, NULL) == 0)
		snprintf(r->text, sizeof(r->text), "%.*s", (int)b.len, b.data);
	else
		snprintf(r->text, sizeof(r->text), "<unprintable>");
	ocapn_buffer_release(&b, NULL);
}

ocapn_ref *
tu_enliven(ocapn_runtime *server, ocapn_netlayer *snl, ocapn_runtime *client,
    const char *swiss)
{
	ocapn_buffer uri;
	ocapn_buffer_init(&uri);
	assert_int_equal(ocapn_runtime_sturdyref_uri(server, snl,
			     (const uint8_t *)swiss, strlen(swiss), &uri),
	    0);
	ocapn_ref *p;
	assert_int_equal(ocapn_runtime_enliven_uri(client,
			     (const char *)uri.data, uri.len, &p),
	    0);
	ocapn_buffer_release(&uri, NULL);
	return p;
}

ocapn_value *
tu_rt_parse(ocapn_runtime *rt, const char *text)
{
	ocapn_value *v;
	size_t used, eo;
	const char *why;
	assert_int_equal(ocapn_notation_parse(text, strlen(text),
			     ocapn_vat_arena(ocapn_runtime_vat(rt)), &v, &used,
			     &eo, &why),
	    0);
	return v;
}
