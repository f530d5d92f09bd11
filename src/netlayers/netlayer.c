/*
 * Netlayer front end: the calls users make (dispatched to the
 * implementation's ops) and the events implementations emit (dispatched
 * to the handler).
 */
#include <ocapn/netlayer.h>

#include "../util/util.h"

OCAPN_API void
ocapn_netlayer_set_handler(ocapn_netlayer *nl, const ocapn_netlayer_handler *h)
{
	nl->handler = *h;
}

OCAPN_API const ocapn_locator *
ocapn_netlayer_locator(const ocapn_netlayer *nl)
{
	return nl->locator;
}

OCAPN_API const char *
ocapn_netlayer_transport(const ocapn_netlayer *nl)
{
	return nl->ops->transport;
}

OCAPN_API int
ocapn_netlayer_connect(ocapn_netlayer *nl, const ocapn_locator *peer,
    ocapn_conn **out)
{
	if (!nl || !peer || !out)
		return OCAPN_E_INVAL;
	return nl->ops->connect(nl, peer, out);
}

OCAPN_API void
ocapn_netlayer_stop(ocapn_netlayer *nl)
{
	nl->ops->stop(nl);
}

OCAPN_API void
ocapn_netlayer_free(ocapn_netlayer *nl)
{
	if (nl)
		nl->ops->free(nl);
}

OCAPN_API int
ocapn_conn_send(ocapn_conn *c, const ocapn_iov *iov, size_t niov)
{
	return c->nl->ops->send(c, iov, niov);
}

OCAPN_API size_t
ocapn_conn_pending(const ocapn_conn *c)
{
	return c->nl->ops->pending(c);
}

OCAPN_API int
ocapn_conn_hold(ocapn_conn *c, const uint8_t *msg)
{
	return c->nl->ops->hold(c, msg);
}

OCAPN_API void
ocapn_conn_release(ocapn_conn *c, const uint8_t *msg)
{
	c->nl->ops->release(c, msg);
}

OCAPN_API void
ocapn_conn_close(ocapn_conn *c)
{
	c->nl->ops->close(c);
}

OCAPN_API void
ocapn_conn_reset(ocapn_conn *c)
{
	c->nl->ops->reset(c);
}

OCAPN_API void
ocapn_conn_set_user(ocapn_conn *c, void *user)
{
	c->user = user;
}

OCAPN_API void *
ocapn_conn_user(const ocapn_conn *c)
{
	return c->user;
}

OCAPN_API ocapn_netlayer *
ocapn_conn_netlayer(const ocapn_conn *c)
{
	return c->nl;
}

OCAPN_API bool
ocapn_conn_outbound(const ocapn_conn *c)
{
	return c->outbound;
}

OCAPN_API const ocapn_locator *
ocapn_conn_peer(const ocapn_conn *c)
{
	return c->peer;
}

OCAPN_API void
ocapn_netlayer_emit_accept(ocapn_netlayer *nl, ocapn_conn *c)
{
	if (nl->handler.on_accept)
		nl->handler.on_accept(nl->handler.user, nl, c);
}

OCAPN_API void
ocapn_netlayer_emit_connect(ocapn_conn *c, int status)
{
	ocapn_netlayer *nl = c->nl;
	if (nl->handler.on_connect)
		nl->handler.on_connect(nl->handler.user, c, status);
}

OCAPN_API void
ocapn_netlayer_emit_message(ocapn_conn *c, const uint8_t *msg, size_t len)
{
	ocapn_netlayer *nl = c->nl;
	if (nl->handler.on_message)
		nl->handler.on_message(nl->handler.user, c, msg, len);
}

OCAPN_API void
ocapn_netlayer_emit_error(ocapn_conn *c, int status, const char *reason)
{
	ocapn_netlayer *nl = c->nl;
	if (nl->handler.on_error)
		nl->handler.on_error(nl->handler.user, c, status, reason);
	else
		ocapn_conn_reset(c);
}

OCAPN_API void
ocapn_netlayer_emit_drain(ocapn_conn *c)
{
	ocapn_netlayer *nl = c->nl;
	if (nl->handler.on_drain)
		nl->handler.on_drain(nl->handler.user, c);
}

OCAPN_API void
ocapn_netlayer_emit_close(ocapn_conn *c, int status, const char *reason)
{
	ocapn_netlayer *nl = c->nl;
	if (nl->handler.on_close)
		nl->handler.on_close(nl->handler.user, c, status, reason);
}

OCAPN_API void
ocapn_netlayer_emit_stopped(ocapn_netlayer *nl)
{
	if (nl->handler.on_stopped)
		nl->handler.on_stopped(nl->handler.user, nl);
}
