/*
 * The C platform interface (ocapn_shm/channel.h) over the portable ring
 * core.  Portable C11: compiled into Genode components by the Goa
 * project and into a Linux test of the same calls.
 */
#include <ocapn_shm/channel.h>

#include "netlayers/shm/ring.h"
#include "util/util.h"

_Static_assert(OCAPN_SHM_CHANNEL_AGAIN == OCAPN_E_AGAIN,
    "channel.h must use libocapn's error values");

struct ocapn_shm_channel {
	ocapn__shm_ep *ep;
};

static int
geom_of(struct ocapn_shm_geometry const *g, struct ocapn__shm_geom *out)
{
	if (g->slots > UINT32_MAX || g->max_packet > UINT32_MAX)
		return OCAPN_E_INVAL;
	out->slots = (uint32_t)g->slots;
	out->max_packet = (uint32_t)g->max_packet;
	out->bulk_size = g->bulk_size;
	return OCAPN_OK;
}

unsigned long
ocapn_shm_region_size(struct ocapn_shm_geometry const *g)
{
	struct ocapn__shm_geom gg;
	struct ocapn__shm_layout l;
	if (geom_of(g, &gg) || ocapn__shm_layout(&gg, &l, NULL) ||
	    l.region_size > (unsigned long)-1)
		return 0;
	return (unsigned long)l.region_size;
}

int
ocapn_shm_region_format(void *base, unsigned long size,
    struct ocapn_shm_geometry const *g)
{
	struct ocapn__shm_geom gg;
	if (geom_of(g, &gg))
		return OCAPN_E_INVAL;
	return ocapn__shm_format(base, size, &gg);
}

struct ocapn_shm_channel *
ocapn_shm_channel_create(void *tx, unsigned long tx_size, void *rx,
    unsigned long rx_size, unsigned long max_msg_in,
    unsigned long max_msg_out, ocapn_shm_ring_fn ring, void *ring_ctx,
    char const **reason)
{
	struct ocapn__shm_layout tl, rl;
	const char *why = "";
	*reason = "";
	/* Our own tx region is validated too: on Genode the server formats
	 * both regions, so for a client it is not our own writing. */
	if (ocapn__shm_attach(tx, tx_size, &tl, &why) != OCAPN_OK ||
	    ocapn__shm_attach(rx, rx_size, &rl, &why) != OCAPN_OK) {
		*reason = why;
		return NULL;
	}
	if (tl.ack_slots != tl.submit_slots) {
		*reason = "tx region must have as many ack as submit slots";
		return NULL;
	}
	if (max_msg_in == 0 || max_msg_in > UINT32_MAX || max_msg_out == 0 ||
	    max_msg_out > UINT32_MAX) {
		*reason = "bad message size limits";
		return NULL;
	}
	struct ocapn__shm_geom g = {tl.submit_slots, tl.max_packet,
	    tl.bulk_size};
	struct ocapn__shm_ep_config cfg = {(uint32_t)max_msg_in,
	    (uint32_t)max_msg_out, 64, 0, 0};
	ocapn_allocator a;
	ocapn__alloc_init(&a, NULL);
	struct ocapn_shm_channel *ch = ocapn__calloc(&a, sizeof(*ch));
	if (!ch) {
		*reason = "out of memory";
		return NULL;
	}
	if (ocapn__shm_ep_new(&ch->ep, NULL, tx, &g, rx, &rl, &cfg, ring,
		ring_ctx) != OCAPN_OK) {
		ocapn__free(&a, ch, sizeof(*ch));
		*reason = "cannot create the endpoint";
		return NULL;
	}
	return ch;
}

void
ocapn_shm_channel_destroy(struct ocapn_shm_channel *ch)
{
	if (!ch)
		return;
	ocapn__shm_ep_free(ch->ep);
	ocapn_allocator a;
	ocapn__alloc_init(&a, NULL);
	ocapn__free(&a, ch, sizeof(*ch));
}

int
ocapn_shm_channel_progress(struct ocapn_shm_channel *ch)
{
	return ocapn__shm_ep_poll(ch->ep);
}

int
ocapn_shm_channel_send(struct ocapn_shm_channel *ch, void const *buf,
    unsigned long len)
{
	struct ocapn__shm_iov iov = {buf, len};
	return ocapn__shm_ep_send(ch->ep, &iov, 1);
}

long
ocapn_shm_channel_rx(struct ocapn_shm_channel *ch, ocapn_shm_rx_fn fn,
    void *ctx, unsigned max)
{
	long n = 0;
	while ((unsigned)n < max) {
		struct ocapn__shm_msg m;
		int rc = ocapn__shm_ep_recv(ch->ep, &m);
		if (rc == OCAPN_E_AGAIN)
			break;
		if (rc != OCAPN_OK)
			return -(long)rc;
		fn(ctx, (char const *)m.data, (unsigned long)m.len);
		rc = ocapn__shm_ep_release(ch->ep, &m);
		if (rc != OCAPN_OK)
			return -(long)rc;
		n++;
	}
	return n;
}

int
ocapn_shm_channel_arm(struct ocapn_shm_channel *ch)
{
	return ocapn__shm_ep_arm(ch->ep) ? 0 : 1;
}

int
ocapn_shm_channel_error(struct ocapn_shm_channel const *ch,
    char const **reason)
{
	return ocapn__shm_ep_error(ch->ep, reason);
}
