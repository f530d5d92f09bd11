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
	if (!strcmp(o->netlayer, "unix-domain-socket")) {
		if (!o->intro_server) {
			cli_error("unix-domain-socket needs --intro-server PATH");
			return 1;
		}
		rc = ocapn_uds_netlayer_new(loop, o->intro_server, NULL, NULL,
		    out);
		if (rc)
			cli_error("unix-domain-socket via %s: %s",
			    o->intro_server, ocapn_strerror(rc));
		return rc;
	}
	if (!strcmp(o->netlayer, "shm")) {
		if (!o->dir) {
			cli_error("shm needs --dir DIR (a private directory)");
			return 1;
		}
		rc = ocapn_shm_netlayer_new(loop, o->dir, NULL, NULL, out);
		if (rc)
			cli_error("shm in %s: %s%s", o->dir, ocapn_strerror(rc),
			    rc == OCAPN_E_INVAL ? " (the directory must be "
			    "ours, mode 0700)" : "");
		return rc;
	}
	cli_error("unknown netlayer '%s'", o->netlayer);
	return 1;
}

struct wait_reg {
	int done; /* 1 registered, 2 failed */
	char why[160];
};

static void
uds_event(void *user, ocapn_netlayer *nl, ocapn_uds_event ev, int status,
    const char *reason)
{
	struct wait_reg *w = user;
	(void)nl;
	(void)status;
	if (ev == OCAPN_UDS_REGISTERED)
		w->done = 1;
	else if (ev == OCAPN_UDS_SERVER_LOST) {
		w->done = 2;
		snprintf(w->why, sizeof(w->why), "%s", reason);
	}
}

static void
wait_timeout(uv_timer_t *t)
{
	struct wait_reg *w = t->data;
	if (!w->done) {
		w->done = 2;
		snprintf(w->why, sizeof(w->why),
		    "no registration within 10 s");
	}
}

int
netopts_wait_ready(ocapn_netlayer *nl, uv_loop_t *loop)
{
	if (strcmp(ocapn_netlayer_transport(nl), "unix-domain-socket"))
		return 0;
	struct wait_reg w = {0};
	if (ocapn_uds_netlayer_registered(nl))
		return 0;
	ocapn_uds_netlayer_set_event_cb(nl, uds_event, &w);
	uv_timer_t t;
	uv_timer_init(loop, &t);
	t.data = &w;
	uv_timer_start(&t, wait_timeout, 10000, 0);
	while (!w.done)
		uv_run(loop, UV_RUN_ONCE);
	uv_close((uv_handle_t *)&t, NULL);
	uv_run(loop, UV_RUN_NOWAIT);
	ocapn_uds_netlayer_set_event_cb(nl, NULL, NULL);
	if (w.done != 1) {
		cli_error("unix-domain-socket: cannot register: %s", w.why);
		return 1;
	}
	return 0;
}

void
trace_message(void *user, ocapn_session *s, bool outbound,
    const uint8_t *msg, size_t len)
{
	(void)user;
	(void)s;
	ocapn_syrup_decoder *dec = ocapn_syrup_decoder_new(0, NULL);
	ocapn_arena *ar = ocapn_arena_new(NULL);
	ocapn_value *v;
	ocapn_buffer text;
	ocapn_buffer_init(&text);
	if (dec && ar && ocapn_syrup_decode_one(dec, ar, msg, len, &v) == 0)
		ocapn_notation_print(v, 0, &text, NULL);
	fprintf(stderr, "%s %.*s\n", outbound ? "->" : "<-", (int)text.len,
	    text.data ? (const char *)text.data : "");
	ocapn_buffer_release(&text, NULL);
	ocapn_arena_free(ar);
	ocapn_syrup_decoder_free(dec);
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
