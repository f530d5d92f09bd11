/*
 * libFuzzer target for the shm ring core: the input is a geometry, an
 * optional raw header for the peer's region, and a schedule of
 * operations interleaving an honest peer, raw writes of peer-controlled
 * memory (indices, descriptors, acks, header, payload) and every call of
 * the victim endpoint.
 *
 * Properties: the victim never crashes or reads out of bounds (the
 * sanitizers), its private invariants hold after every operation
 * whatever the peer wrote (ocapn__shm_ep_check), every message it hands
 * out lies inside the peer's bulk buffer (zero copy) or in private memory
 * and respects max_msg, and its errors are sticky.
 */
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <ocapn/ocapn.h>

#include "netlayers/shm/ring.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct in {
	const uint8_t *p;
	size_t n;
};

static uint32_t
take(struct in *in, int bytes)
{
	uint32_t v = 0;
	for (int i = 0; i < bytes; i++) {
		v <<= 8;
		if (in->n) {
			v |= *in->p++;
			in->n--;
		}
	}
	return v;
}

static void
ring_nop(void *user)
{
	(*(unsigned *)user)++;
}

#define MAX_HELD 8

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct in in = {data, size};
	uint32_t cfg = take(&in, 2);
	static const uint32_t slots_c[] = {2, 4, 8, 16};
	static const uint32_t bulk_c[] = {4096, 8192, 65536, 1024};
	struct ocapn__shm_geom g;
	g.slots = slots_c[cfg & 3];
	g.bulk_size = bulk_c[(cfg >> 2) & 3];
	g.max_packet = (uint32_t)(g.bulk_size >> (1 + ((cfg >> 4) & 3)));
	uint32_t max_msg = 64u << ((cfg >> 6) & 7);
	uint32_t work_bound = 1 + ((cfg >> 9) & 7);

	struct ocapn__shm_layout l, lr, lt;
	if (ocapn__shm_layout(&g, &l, NULL) != OCAPN_OK)
		return 0;
	size_t rsize = (size_t)l.region_size;
	uint8_t *T = aligned_alloc(4096, rsize);
	uint8_t *R = aligned_alloc(4096, rsize);
	if (!T || !R) {
		free(T);
		free(R);
		return 0;
	}
	ocapn__shm_format(T, rsize, &g);
	ocapn__shm_format(R, rsize, &g);
	/* Optionally a raw header for the peer's region. */
	if (cfg & 0x8000) {
		size_t n = in.n < sizeof(struct ocapn__shm_hdr) ? in.n :
		    sizeof(struct ocapn__shm_hdr);
		memcpy(R, in.p, n);
		in.p += n;
		in.n -= n;
	}
	const char *why;
	ocapn__shm_ep *v = NULL, *p = NULL;
	unsigned rings_v = 0, rings_p = 0;
	struct ocapn__shm_ep_config ec = {max_msg, max_msg, work_bound, 0, 0};
	if (ocapn__shm_attach(R, rsize, &lr, &why) != OCAPN_OK ||
	    ocapn__shm_attach(T, rsize, &lt, &why) != OCAPN_OK)
		goto out;
	if (ocapn__shm_ep_new(&v, NULL, T, &g, R, &lr, &ec, ring_nop,
		&rings_p) != OCAPN_OK)
		goto out;
	/* The honest peer uses our geometry for its own region. */
	if (ocapn__shm_ep_new(&p, NULL, R, &g, T, &lt, &ec, ring_nop,
		&rings_v) != OCAPN_OK)
		goto out;

	struct ocapn__shm_msg held[MAX_HELD];
	int nheld = 0;
	static uint8_t buf[1 << 16];
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 13);
	int sticky = 0;
	const uint8_t *bulk = R + lr.bulk_off;

	while (in.n > 0) {
		uint32_t op = take(&in, 1);
		uint32_t a = take(&in, 2), b = take(&in, 4);
		struct ocapn__shm_msg m;
		struct ocapn__shm_iov iov;
		int rc = OCAPN_OK;
		switch (op % 16) {
		case 0: /* raw u32 write anywhere in either region */
		case 1: {
			uint8_t *reg = (op & 1) ? T : R;
			size_t off = ((size_t)a * 4) % rsize;
			memcpy(reg + (off & ~(size_t)3), &b, 4);
			break;
		}
		case 2: /* raw write into the control area */
			memcpy((op & 16 ? T : R) + lr.ctl_off +
			    (a % (sizeof(struct ocapn__shm_ctl) / 4)) * 4,
			    &b, 4);
			break;
		case 3: /* honest peer sends */
			iov.base = buf;
			iov.len = 1 + a % (max_msg + 1);
			rc = ocapn__shm_ep_send(p, &iov, 1);
			(void)rc;
			rc = OCAPN_OK;
			break;
		case 4: /* victim receives */
			rc = ocapn__shm_ep_recv(v, &m);
			if (rc == OCAPN_OK) {
				if (m.len == 0 || m.len > max_msg)
					abort();
				if (m.zero_copy && (m.data < bulk ||
				    m.len > (size_t)(bulk + lr.bulk_size -
				    m.data)))
					abort();
				if (!m.zero_copy && m.data >= R &&
				    m.data < R + rsize)
					abort();
				/* Touch every byte: ASan checks bounds. */
				uint8_t x = 0;
				for (size_t k = 0; k < m.len; k++)
					x ^= m.data[k];
				(void)x;
				if (nheld < MAX_HELD)
					held[nheld++] = m;
				else
					ocapn__shm_ep_release(v, &m);
			}
			break;
		case 5: /* victim releases a held message */
			if (nheld > 0) {
				int k = (int)(a % (uint32_t)nheld);
				ocapn__shm_ep_release(v, &held[k]);
				held[k] = held[--nheld];
			}
			break;
		case 6: /* victim sends */
			iov.base = buf;
			iov.len = a % (max_msg + 2);
			rc = ocapn__shm_ep_send(v, &iov, 1);
			break;
		case 7:
			rc = ocapn__shm_ep_poll(v);
			break;
		case 8:
			ocapn__shm_ep_arm(v);
			ocapn__shm_ep_pending(v);
			break;
		case 9: /* honest peer receives and releases */
			if (ocapn__shm_ep_recv(p, &m) == OCAPN_OK)
				ocapn__shm_ep_release(p, &m);
			ocapn__shm_ep_poll(p);
			break;
		case 10: { /* crafted descriptor at the victim's next slot */
			uint32_t head = atomic_load(
			    &((struct ocapn__shm_ctl *)(void *)(R +
			    lr.ctl_off))->submit_head.v);
			struct ocapn__shm_desc *d = (struct ocapn__shm_desc *)
			    (void *)(R + lr.submit_off);
			d += head & (lr.submit_slots - 1);
			atomic_store(&d->off, b);
			atomic_store(&d->len, take(&in, 4));
			atomic_store(&d->seq, take(&in, 4));
			atomic_store(&d->flags, a & 0xff);
			atomic_store(&((struct ocapn__shm_ctl *)(void *)(R +
			    lr.ctl_off))->submit_head.v, head + (a >> 8));
			break;
		}
		case 11: { /* crafted ack for the victim */
			struct ocapn__shm_ctl *c = (struct ocapn__shm_ctl *)
			    (void *)(T + l.ctl_off);
			uint32_t head = atomic_load(&c->ack_head.v);
			struct ocapn__shm_ack *e = (struct ocapn__shm_ack *)
			    (void *)(T + l.ack_off);
			e += head & (l.ack_slots - 1);
			atomic_store(&e->seq, b);
			atomic_store(&e->status, a >> 8);
			atomic_store(&c->ack_head.v, head + (a & 0xff));
			break;
		}
		case 12: /* payload bytes of the peer's bulk buffer */
			memset(R + lr.bulk_off + (a % lr.bulk_size), (int)b,
			    1 + (b >> 24) % 64 > lr.bulk_size - a %
			    lr.bulk_size ? lr.bulk_size - a % lr.bulk_size :
			    1 + (b >> 24) % 64);
			break;
		case 13:
			ocapn__shm_ep_close(op & 16 ? v : p);
			break;
		case 14: /* the victim's header (never read back) */
			memcpy(T + (a % (sizeof(struct ocapn__shm_hdr) - 3)),
			    &b, 4);
			break;
		default:
			rc = ocapn__shm_ep_poll(p);
			rc = OCAPN_OK;
			break;
		}
		(void)rc;
		if (ocapn__shm_ep_check(v) != NULL)
			abort();
		int err = ocapn__shm_ep_error(v, &why);
		if (sticky && err != sticky)
			abort();
		sticky = err;
	}
	while (nheld > 0)
		ocapn__shm_ep_release(v, &held[--nheld]);
out:
	ocapn__shm_ep_free(v);
	ocapn__shm_ep_free(p);
	free(T);
	free(R);
	return 0;
}
