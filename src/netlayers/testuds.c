/*
 * testuds (Goblins' test netlayer): peer NAME listens on DIR/NAME.sock;
 * plain stream, no authentication.  Locator: ocapn://NAME.testuds
 * Every peer of a test shares DIR, which is configuration, not part of
 * the locator.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <ocapn/runtime.h>

#include "stream.h"

struct testuds_nl {
	ocapn__stream_nl snl;
	char dir[200];
	char path[300];
};

static bool
name_ok(const char *s, size_t n)
{
	if (n == 0 || n > 64)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] == '/' || s[i] == '\0' || (i == 0 && s[i] == '.'))
			return false;
	return true;
}

static int
testuds_connect(ocapn_netlayer *nl, const ocapn_locator *peer,
    ocapn_conn **out)
{
	struct testuds_nl *t = (struct testuds_nl *)nl;
	if (t->snl.stopping)
		return OCAPN_E_CLOSED;
	size_t n;
	const char *name = ocapn_locator_designator(peer, &n);
	if (!name_ok(name, n))
		return OCAPN_E_INVAL;
	char path[300];
	if ((size_t)snprintf(path, sizeof(path), "%s/%.*s.sock", t->dir, (int)n,
		name) >= sizeof(((struct sockaddr_un *)0)->sun_path))
		return OCAPN_E_INVAL;
	ocapn__stream_conn *c = ocapn__stream_conn_new(&t->snl, STREAM_PIPE,
	    true, peer);
	if (!c)
		return OCAPN_E_NOMEM;
	c->creq.data = c;
	uv_pipe_connect(&c->creq, &c->h.pipe, path,
	    ocapn__stream_on_connected);
	*out = &c->base;
	return OCAPN_OK;
}

static void
testuds_free_ext(ocapn__stream_nl *snl)
{
	struct testuds_nl *t = (struct testuds_nl *)snl;
	unlink(t->path);
	ocapn_allocator a = snl->a;
	ocapn__free(&a, t, sizeof(*t));
}

static void
testuds_free_struct(ocapn__stream_nl *snl)
{
	ocapn_allocator a = snl->a;
	ocapn__free(&a, snl, sizeof(struct testuds_nl));
}

static const ocapn_netlayer_ops testuds_ops = {
    .transport = "testuds",
    .flags = OCAPN_NETLAYER_STREAM,
    .connect = testuds_connect,
    .send = ocapn__stream_send,
    .pending = ocapn__stream_pending,
    .hold = ocapn__stream_hold,
    .release = ocapn__stream_release,
    .close = ocapn__stream_close,
    .reset = ocapn__stream_reset,
    .stop = ocapn__stream_stop,
    .free = ocapn__stream_free,
};

OCAPN_API int
ocapn_testuds_netlayer_new(uv_loop_t *loop, const char *dir,
    const char *name, const ocapn_allocator *alloc, ocapn_netlayer **out)
{
	if (!loop || !dir || !name || !out || !name_ok(name, strlen(name)))
		return OCAPN_E_INVAL;
	ocapn_allocator a;
	ocapn__alloc_init(&a, alloc);
	struct testuds_nl *t = ocapn__calloc(&a, sizeof(*t));
	uv_pipe_t *srv = ocapn__malloc(&a, sizeof(*srv));
	if (!t || !srv) {
		ocapn__free(&a, t, sizeof(*t));
		ocapn__free(&a, srv, sizeof(*srv));
		return OCAPN_E_NOMEM;
	}
	if ((size_t)snprintf(t->dir, sizeof(t->dir), "%s", dir) >=
		sizeof(t->dir) ||
	    (size_t)snprintf(t->path, sizeof(t->path), "%s/%s.sock", dir,
		name) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
		ocapn__free(&a, t, sizeof(*t));
		ocapn__free(&a, srv, sizeof(*srv));
		return OCAPN_E_INVAL;
	}
	int rc = ocapn__unix_clear_stale(t->path, SOCK_STREAM);
	if (rc) {
		ocapn__free(&a, t, sizeof(*t));
		ocapn__free(&a, srv, sizeof(*srv));
		return rc;
	}
	uv_pipe_init(loop, srv, 0);
	srv->data = t;
	int e = uv_pipe_bind(srv, t->path);
	if (!e)
		e = uv_listen((uv_stream_t *)srv, 128,
		    ocapn__stream_on_connection);
	ocapn_locator *loc = NULL;
	if (!e)
		rc = ocapn_locator_new("testuds", 7, name, strlen(name), &a,
		    &loc);
	if (e || rc) {
		if (!e)
			unlink(t->path);
		t->snl.a = a;
		t->snl.free_ext = testuds_free_struct;
		ocapn__stream_discard_listener(&t->snl, (uv_handle_t *)srv);
		return e ? ocapn__uv_err(e) : rc;
	}
	ocapn__stream_nl_init(&t->snl, loop, &testuds_ops, loc, &a);
	t->snl.listener = (uv_handle_t *)srv;
	t->snl.free_ext = testuds_free_ext;
	*out = &t->snl.base;
	return OCAPN_OK;
}
