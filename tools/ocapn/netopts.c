/*
 * Netlayer selection and value printing for the CLI.
 */
#include "netopts.h"

#include <stdio.h>
#include <string.h>

#include "cli.h"

int
netopts_create(const struct netopts *o, uv_loop_t *loop, ocapn_netlayer **out)
{
	int rc;
	if (!o->netlayer) {
		cli_error("--netlayer is required");
		return 1;
	}
	if (!strcmp(o->netlayer, "tcp-testing-only")) {
		rc = ocapn_tcp_netlayer_new(loop, o->host, o->port, NULL, NULL,
		    out);
		if (rc)
			cli_error("tcp-testing-only on %s:%u: %s",
			    o->host ? o->host : "127.0.0.1", o->port,
			    ocapn_strerror(rc));
		return rc;
	}
	if (!strcmp(o->netlayer, "testuds")) {
		if (!o->dir || !o->name) {
			cli_error("testuds needs --dir DIR and --name NAME");
			return 1;
		}
		rc = ocapn_testuds_netlayer_new(loop, o->dir, o->name, NULL,
		    out);
		if (rc)
			cli_error("testuds %s/%s.sock: %s", o->dir, o->name,
			    ocapn_strerror(rc));
		return rc;
	}
	cli_error("unknown netlayer '%s'", o->netlayer);
	return 1;
}

/* Copy `v` into `arena`, replacing refs by <ref KIND> records. */
static int
strip_refs(const ocapn_value *v, ocapn_arena *arena, ocapn_value *out,
    int depth)
{
	if (depth > 1000)
		return OCAPN_E_LIMIT;
	if (v->kind == OCAPN_REF) {
		ocapn_value *items = ocapn_arena_values(arena, 2);
		if (!items)
			return OCAPN_E_NOMEM;
		ocapn_value_set_symbol(&items[0], "ref", 3);
		const char *k;
		switch (ocapn_ref_kind_of(v->u.ref)) {
		case OCAPN_REF_OBJECT:
			k = "object";
			break;
		case OCAPN_REF_PROMISE:
			k = "promise";
			break;
		default:
			k = "remote";
		}
		ocapn_value_set_symbol(&items[1], k, strlen(k));
		ocapn_value_set_record(out, items, 2);
		return OCAPN_OK;
	}
	*out = *v;
	if (v->kind == OCAPN_LIST || v->kind == OCAPN_SET ||
	    v->kind == OCAPN_RECORD || v->kind == OCAPN_DICT) {
		size_t n = v->kind == OCAPN_DICT ? 2 * (size_t)v->len : v->len;
		ocapn_value *items = ocapn_arena_values(arena, n ? n : 1);
		if (!items)
			return OCAPN_E_NOMEM;
		for (size_t i = 0; i < n; i++) {
			int rc = strip_refs(&v->u.items[i], arena, &items[i],
			    depth + 1);
			if (rc)
				return rc;
		}
		out->u.items = items;
	}
	return OCAPN_OK;
}

int
print_value(const ocapn_value *v, ocapn_buffer *out)
{
	ocapn_arena *arena = ocapn_arena_new(NULL);
	if (!arena)
		return OCAPN_E_NOMEM;
	ocapn_value copy;
	int rc = strip_refs(v, arena, &copy, 0);
	if (!rc)
		rc = ocapn_notation_print(&copy, 0, out, NULL);
	if (!rc)
		rc = ocapn_buffer_append(out, NULL, "", 1);
	if (!rc)
		out->len--; /* NUL-terminated, not counted */
	ocapn_arena_free(arena);
	return rc;
}
