/*
 * tcp-testing-only: plain TCP, no authentication, for tests and the
 * conformance suite only.  Locator:
 *   ocapn://DESIGNATOR.tcp-testing-only?host=H&port=P   (hints are strings)
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>

#include <ocapn/runtime.h>

#include "../captp/crypto.h"
#include "stream.h"

static const ocapn_netlayer_ops tcp_ops;

static void
resolved_cb(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
	ocapn__stream_conn *c = req->data;
	if (c->state == CONN_CLOSED) {
		uv_freeaddrinfo(res);
		return;
	}
	if (status < 0 || !res) {
		char why[96];
		snprintf(why, sizeof(why), "cannot resolve host: %s",
		    uv_strerror(status));
		uv_freeaddrinfo(res);
		ocapn__stream_conn_connect_failed(c, OCAPN_E_CONNREFUSED, why);
		return;
	}
	c->creq.data = c;
	int e = uv_tcp_connect(&c->creq, &c->h.tcp, res->ai_addr,
	    ocapn__stream_on_connected);
	uv_freeaddrinfo(res);
	if (e) {
		char why[96];
		snprintf(why, sizeof(why), "cannot connect: %s",
		    uv_strerror(e));
		ocapn__stream_conn_connect_failed(c, ocapn__uv_err(e), why);
	}
}

static int
tcp_connect(ocapn_netlayer *nl, const ocapn_locator *peer, ocapn_conn **out)
{
	ocapn__stream_nl *snl = (ocapn__stream_nl *)nl;
	if (snl->stopping)
		return OCAPN_E_CLOSED;
	size_t hl, pl;
	const char *host = ocapn_locator_hint(peer, "host", &hl);
	const char *port = ocapn_locator_hint(peer, "port", &pl);
	if (!host || !port || !hl || !pl)
		return OCAPN_E_INVAL;
	char *end;
	long pn = strtol(port, &end, 10);
	if (*end || pn <= 0 || pn > 65535)
		return OCAPN_E_INVAL;
	ocapn__stream_conn *c = ocapn__stream_conn_new(snl, STREAM_TCP, true,
	    peer);
	if (!c)
		return OCAPN_E_NOMEM;
	struct addrinfo hints;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	c->gai.data = c;
	int e = uv_getaddrinfo(snl->loop, &c->gai, resolved_cb, host, port,
	    &hints);
	if (e) {
		/* the caller gets the error, not the connection */
		ocapn__stream_conn_discard(c);
		return ocapn__uv_err(e);
	}
	*out = &c->base;
	return OCAPN_OK;
}

static const ocapn_netlayer_ops tcp_ops = {
    .transport = "tcp-testing-only",
    .flags = OCAPN_NETLAYER_STREAM,
    .connect = tcp_connect,
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
ocapn_tcp_netlayer_new(uv_loop_t *loop, const char *host, unsigned port,
    const char *designator, const ocapn_allocator *alloc,
    ocapn_netlayer **out)
{
	if (!loop || !out || port > 65535)
		return OCAPN_E_INVAL;
	if (!host)
		host = "127.0.0.1";
	ocapn_allocator a;
	ocapn__alloc_init(&a, alloc);
	ocapn__stream_nl *snl = ocapn__calloc(&a, sizeof(*snl));
	uv_tcp_t *srv = ocapn__malloc(&a, sizeof(*srv));
	if (!snl || !srv) {
		ocapn__free(&a, snl, sizeof(*snl));
		ocapn__free(&a, srv, sizeof(*srv));
		return OCAPN_E_NOMEM;
	}
	struct sockaddr_storage ss;
	int e = uv_ip4_addr(host, (int)port, (struct sockaddr_in *)&ss);
	if (e)
		e = uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)&ss);
	if (e) {
		ocapn__free(&a, snl, sizeof(*snl));
		ocapn__free(&a, srv, sizeof(*srv));
		return OCAPN_E_INVAL; /* host must be a numeric address */
	}
	uv_tcp_init(loop, srv);
	srv->data = snl;
	e = uv_tcp_bind(srv, (struct sockaddr *)&ss, 0);
	if (!e)
		e = uv_listen((uv_stream_t *)srv, 128,
		    ocapn__stream_on_connection);
	int namelen = sizeof(ss);
	if (!e)
		e = uv_tcp_getsockname(srv, (struct sockaddr *)&ss, &namelen);
	if (e) {
		snl->a = a;
		ocapn__stream_discard_listener(snl, (uv_handle_t *)srv);
		return ocapn__uv_err(e);
	}
	unsigned actual = ntohs(ss.ss_family == AF_INET
		? ((struct sockaddr_in *)&ss)->sin_port
		: ((struct sockaddr_in6 *)&ss)->sin6_port);
	char des[40];
	if (!designator) {
		uint8_t r[16];
		ocapn__random(r, sizeof(r));
		for (int i = 0; i < 16; i++)
			snprintf(des + 2 * i, 3, "%02x", r[i]);
		designator = des;
	}
	char portstr[8];
	snprintf(portstr, sizeof(portstr), "%u", actual);
	ocapn_locator *loc;
	int rc = ocapn_locator_new("tcp-testing-only", 16, designator,
	    strlen(designator), &a, &loc);
	if (!rc)
		rc = ocapn_locator_set_hint(loc, "host", 4, host, strlen(host));
	if (!rc)
		rc = ocapn_locator_set_hint(loc, "port", 4, portstr,
		    strlen(portstr));
	if (rc) {
		ocapn_locator_free(loc);
		snl->a = a;
		ocapn__stream_discard_listener(snl, (uv_handle_t *)srv);
		return rc;
	}
	ocapn__stream_nl_init(snl, loop, &tcp_ops, loc, &a);
	snl->listener = (uv_handle_t *)srv;
	*out = &snl->base;
	return OCAPN_OK;
}
