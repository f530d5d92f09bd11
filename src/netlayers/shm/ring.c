/*
 * Shared-memory packet rings: layout, source and sink state machines,
 * bulk allocator, framing and the wakeup protocol.  Portable C11, no
 * system calls.
 *
 * Trust rules (docs/shm.md, "Security rules"):
 *   - our own indices live in private memory and are only published; the
 *     peer's indices are loaded once per use and checked with modular
 *     arithmetic against ours (a jump larger than the ring aborts);
 *   - a descriptor or ack is read word by word, each word once, into a
 *     private struct, and validated there; ranges are checked in
 *     subtraction form, which cannot wrap;
 *   - an ack names a packet by seq; it is looked up in the private
 *     in-flight table, so an unknown, stale or duplicate ack aborts and
 *     never frees a range that belongs to another packet;
 *   - the peer's header is snapshotted and validated once at attach.
 * Every violation is a sticky OCAPN_E_PROTOCOL with a static reason.
 */
#include <string.h>

#include "ring.h"
#include "../../util/util.h"

#define PAGE 4096u

static inline uint64_t
round_up(uint64_t x, uint64_t a)
{
	return (x + a - 1) / a * a;
}

static inline bool
is_pow2(uint32_t x)
{
	return x != 0 && (x & (x - 1)) == 0;
}

static inline uint32_t
log2_u32(uint32_t x)
{
	uint32_t n = 0;
	while (x > 1) {
		x >>= 1;
		n++;
	}
	return n;
}

/* ------------------------------------------------------------------ */
/* Layout                                                               */
/* ------------------------------------------------------------------ */

/*
 * The one canonical layout for (submit_slots, ack_slots, bulk_size): the
 * header, the control lines, the descriptor ring, the ack ring, then the
 * page-aligned bulk buffer.  Inputs are bounded (slots <= 65536, bulk <
 * 2^31) so nothing here can overflow 64 bits.
 */
static void
canonical(uint32_t submit_slots, uint32_t ack_slots, uint64_t bulk_size,
    struct ocapn__shm_layout *l)
{
	l->submit_slots = submit_slots;
	l->ack_slots = ack_slots;
	l->bulk_size = bulk_size;
	l->ctl_off = round_up(sizeof(struct ocapn__shm_hdr), OCAPN__SHM_LINE);
	l->submit_off = round_up(l->ctl_off + sizeof(struct ocapn__shm_ctl),
	    OCAPN__SHM_LINE);
	l->ack_off = round_up(l->submit_off +
	    (uint64_t)submit_slots * sizeof(struct ocapn__shm_desc),
	    OCAPN__SHM_LINE);
	l->bulk_off = round_up(l->ack_off +
	    (uint64_t)ack_slots * sizeof(struct ocapn__shm_ack), PAGE);
	l->region_size = round_up(l->bulk_off + bulk_size, PAGE);
}

int
ocapn__shm_layout(const struct ocapn__shm_geom *g,
    struct ocapn__shm_layout *out, const char **reason)
{
	const char *why = NULL;
	if (!is_pow2(g->slots) || g->slots < OCAPN__SHM_MIN_SLOTS ||
	    g->slots > OCAPN__SHM_MAX_SLOTS)
		why = "slots must be a power of two in 2..65536";
	else if (g->bulk_size == 0 || g->bulk_size > OCAPN__SHM_MAX_BULK ||
	    g->bulk_size % OCAPN__SHM_BLOCK != 0)
		why = "bulk size must be a multiple of 64 up to 2 GiB";
	else if (g->max_packet == 0 || g->max_packet > g->bulk_size / 2)
		why = "max_packet must be in 1..bulk_size/2";
	if (why) {
		if (reason)
			*reason = why;
		return OCAPN_E_INVAL;
	}
	canonical(g->slots, g->slots, g->bulk_size, out);
	out->max_packet = g->max_packet;
	return OCAPN_OK;
}

int
ocapn__shm_format(void *base, size_t size, const struct ocapn__shm_geom *g)
{
	struct ocapn__shm_layout l;
	if (ocapn__shm_layout(g, &l, NULL) != OCAPN_OK || size != l.region_size)
		return OCAPN_E_INVAL;
	struct ocapn__shm_hdr h;
	memset(&h, 0, sizeof(h));
	h.magic = OCAPN__SHM_MAGIC;
	h.version = OCAPN__SHM_VERSION;
	h.hdr_size = sizeof(h);
	h.submit_slots = l.submit_slots;
	h.ack_slots = l.ack_slots;
	h.max_packet = l.max_packet;
	h.ctl_off = l.ctl_off;
	h.submit_off = l.submit_off;
	h.ack_off = l.ack_off;
	h.bulk_off = l.bulk_off;
	h.bulk_size = l.bulk_size;
	h.region_size = l.region_size;
	/* Fresh region, not yet shared: plain writes are fine. */
	memset(base, 0, (size_t)l.bulk_off);
	memcpy(base, &h, sizeof(h));
	return OCAPN_OK;
}

/* area [off, off + len) inside [0, size), in subtraction form */
static bool
inside(uint64_t off, uint64_t len, uint64_t size)
{
	return off <= size && len <= size - off;
}

int
ocapn__shm_attach(const void *base, size_t size,
    struct ocapn__shm_layout *out, const char **reason)
{
	struct ocapn__shm_hdr h;
	const char *why;
	int err = OCAPN_E_PROTOCOL;

	if (size < sizeof(h)) {
		why = "region smaller than its header";
		goto fail;
	}
	/* The one and only read of the peer's header. */
	memcpy(&h, base, sizeof(h));
	if (h.magic != OCAPN__SHM_MAGIC) {
		why = "bad region magic";
		goto fail;
	}
	if (h.version != OCAPN__SHM_VERSION) {
		err = OCAPN_E_VERSION;
		why = "unsupported region version";
		goto fail;
	}
	if (h.hdr_size != sizeof(h)) {
		why = "bad header size";
		goto fail;
	}
	if (!is_pow2(h.submit_slots) || h.submit_slots < OCAPN__SHM_MIN_SLOTS ||
	    h.submit_slots > OCAPN__SHM_MAX_SLOTS) {
		why = "submit slots not a power of two in 2..65536";
		goto fail;
	}
	if (!is_pow2(h.ack_slots) || h.ack_slots < h.submit_slots ||
	    h.ack_slots > OCAPN__SHM_MAX_SLOTS) {
		why = "ack slots not a power of two >= submit slots";
		goto fail;
	}
	if (h.bulk_size == 0 || h.bulk_size > OCAPN__SHM_MAX_BULK ||
	    h.bulk_size % OCAPN__SHM_BLOCK != 0) {
		why = "bad bulk size";
		goto fail;
	}
	if (h.max_packet == 0 || h.max_packet > h.bulk_size / 2) {
		why = "max_packet not in 1..bulk_size/2";
		goto fail;
	}
	/* Every area inside the claimed size and the claimed size inside
	 * the real one, checked without any addition that could wrap. */
	if (h.region_size != size) {
		why = "region size differs from the header";
		goto fail;
	}
	if (!inside(h.ctl_off, sizeof(struct ocapn__shm_ctl), size) ||
	    !inside(h.submit_off,
		(uint64_t)h.submit_slots * sizeof(struct ocapn__shm_desc),
		size) ||
	    !inside(h.ack_off,
		(uint64_t)h.ack_slots * sizeof(struct ocapn__shm_ack), size) ||
	    !inside(h.bulk_off, h.bulk_size, size)) {
		why = "an area lies outside the region";
		goto fail;
	}
	/* And exactly where the canonical layout puts them, which also
	 * rules out overlap and misalignment. */
	struct ocapn__shm_layout l;
	canonical(h.submit_slots, h.ack_slots, h.bulk_size, &l);
	if (h.ctl_off != l.ctl_off || h.submit_off != l.submit_off ||
	    h.ack_off != l.ack_off || h.bulk_off != l.bulk_off ||
	    h.region_size != l.region_size) {
		why = "region layout is not canonical";
		goto fail;
	}
	l.max_packet = h.max_packet;
	*out = l;
	return OCAPN_OK;
fail:
	if (reason)
		*reason = why;
	return err;
}

/* ------------------------------------------------------------------ */
/* Endpoint state                                                       */
/* ------------------------------------------------------------------ */

struct inflight {
	uint32_t seq;
	uint32_t block;  /* first bulk block */
	uint32_t blocks; /* allocated blocks */
	bool live;
};

enum held_kind { HELD_FREE = 0, HELD_VIEW, HELD_COPY };

struct held {
	uint8_t kind;
	uint16_t gen;
	uint32_t seq;    /* HELD_VIEW: the packet to ack */
	uint32_t blocks; /* HELD_VIEW: pinned blocks of the peer's bulk */
	uint8_t *buf;    /* HELD_COPY: private bytes */
	size_t cap;
};

#define MAX_HELD 65536u /* tokens carry a 16-bit index */

struct ocapn__shm_ep {
	ocapn_allocator a;
	int err;
	const char *reason;
	ocapn__shm_ring_fn ring;
	void *ring_user;
	struct ocapn__shm_ep_config cfg;

	/* tx: our region; we are the source.  Geometry from our own
	 * parameters, never read back from the header. */
	struct ocapn__shm_ctl *tx_ctl;
	struct ocapn__shm_desc *tx_desc;
	struct ocapn__shm_ack *tx_ack;
	uint8_t *tx_bulk;
	uint32_t tx_slots, tx_ack_slots, tx_max_packet, tx_slot_bits;
	uint32_t tx_head;      /* authoritative submit_head */
	uint32_t tx_ack_tail;  /* authoritative ack_tail */
	uint32_t tx_seen_tail; /* last validated submit_tail of the sink */
	uint32_t seqgen;
	struct inflight *inflight; /* tx_slots entries, by seq & mask */
	uint32_t *free_slots;
	uint32_t nfree;
	uint32_t inflight_n;
	uint64_t *bitmap; /* one bit per bulk block, 1 = allocated */
	uint32_t nblocks, cursor, used_blocks;
	bool tx_partial;  /* a fragmented message is half sent */
	size_t tx_total, tx_done;
	bool tx_blocked;  /* the last send hit back-pressure */
	bool tx_wants;    /* what we last stored in source_wants */
	bool tx_closed;

	/* rx: the peer's region; we are the sink.  Layout snapshotted. */
	struct ocapn__shm_ctl *rx_ctl;
	struct ocapn__shm_desc *rx_desc;
	struct ocapn__shm_ack *rx_ack;
	const uint8_t *rx_bulk;
	uint32_t rx_slots, rx_ack_slots, rx_max_packet;
	uint64_t rx_bulk_size;
	uint32_t rx_tail;          /* authoritative submit_tail */
	uint32_t rx_pub_tail;      /* what we last published of it */
	uint32_t rx_seen_head;     /* last validated submit_head */
	uint32_t rx_ack_head;      /* authoritative ack_head */
	uint32_t rx_seen_ack_tail; /* last validated ack_tail */
	bool rx_wants;             /* what we last stored in sink_wants */
	bool rx_more;              /* the work bound stopped a recv */
	bool rx_eof;
	bool acks_unsignalled;     /* acks published, peer not yet told */
	bool defer;                /* doorbells wait for ocapn__shm_ep_flush */
	bool owe_submit, owe_ack;  /* published, deferred, not yet signalled */
	bool in_frag;
	uint8_t *reasm;
	size_t reasm_len, reasm_cap;
	uint8_t *spare; /* a reassembly buffer kept for reuse */
	size_t spare_cap;
	struct held *held;
	size_t held_cap;
	uint32_t held_n, views_n;
	uint64_t view_blocks;
	uint64_t view_blocks_max;
	uint16_t held_gen;

	uint64_t rings, packets_tx, packets_rx;
};

int
ocapn__shm_ep_abort(ocapn__shm_ep *ep, int err, const char *reason)
{
	if (!ep->err) {
		ep->err = err;
		ep->reason = reason;
	}
	return ep->err;
}

#define VIOLATION(ep, why) ocapn__shm_ep_abort((ep), OCAPN_E_PROTOCOL, (why))

int
ocapn__shm_ep_error(const ocapn__shm_ep *ep, const char **reason)
{
	if (reason)
		*reason = ep->reason;
	return ep->err;
}

int
ocapn__shm_ep_new(ocapn__shm_ep **out, const ocapn_allocator *alloc,
    void *tx_base, const struct ocapn__shm_geom *g,
    void *rx_base, const struct ocapn__shm_layout *rxl,
    const struct ocapn__shm_ep_config *cfg,
    ocapn__shm_ring_fn ring, void *ring_user)
{
	struct ocapn__shm_layout txl;
	ocapn_allocator a;

	*out = NULL;
	if (ocapn__shm_layout(g, &txl, NULL) != OCAPN_OK || !ring ||
	    cfg->max_msg_in == 0 || cfg->max_msg_out == 0)
		return OCAPN_E_INVAL;
	ocapn__alloc_init(&a, alloc);
	ocapn__shm_ep *ep = ocapn__calloc(&a, sizeof(*ep));
	if (!ep)
		return OCAPN_E_NOMEM;
	ep->a = a;
	ep->reason = "";
	ep->ring = ring;
	ep->ring_user = ring_user;
	ep->cfg = *cfg;
	if (ep->cfg.work_bound == 0)
		ep->cfg.work_bound = 64;

	uint8_t *tb = tx_base;
	ep->tx_ctl = (struct ocapn__shm_ctl *)(void *)(tb + txl.ctl_off);
	ep->tx_desc = (struct ocapn__shm_desc *)(void *)(tb + txl.submit_off);
	ep->tx_ack = (struct ocapn__shm_ack *)(void *)(tb + txl.ack_off);
	ep->tx_bulk = tb + txl.bulk_off;
	ep->tx_slots = txl.submit_slots;
	ep->tx_ack_slots = txl.ack_slots;
	ep->tx_max_packet = txl.max_packet;
	ep->tx_slot_bits = log2_u32(txl.submit_slots);
	ep->nblocks = (uint32_t)(txl.bulk_size / OCAPN__SHM_BLOCK);

	uint8_t *rb = rx_base;
	ep->rx_ctl = (struct ocapn__shm_ctl *)(void *)(rb + rxl->ctl_off);
	ep->rx_desc = (struct ocapn__shm_desc *)(void *)(rb + rxl->submit_off);
	ep->rx_ack = (struct ocapn__shm_ack *)(void *)(rb + rxl->ack_off);
	ep->rx_bulk = rb + rxl->bulk_off;
	ep->rx_slots = rxl->submit_slots;
	ep->rx_ack_slots = rxl->ack_slots;
	ep->rx_max_packet = rxl->max_packet;
	ep->rx_bulk_size = rxl->bulk_size;

	/*
	 * Pinned zero-copy views are capped at half the peer's slots and
	 * half its bulk blocks, so a peer whose in-flight packets are all
	 * pinned still has free slots and blocks to send into (see
	 * tx_alloc: it fragments into whatever is free in that case).
	 */
	uint64_t half_blocks = rxl->bulk_size / OCAPN__SHM_BLOCK / 2;
	uint64_t vb = ep->cfg.view_bytes / OCAPN__SHM_BLOCK;
	ep->view_blocks_max = (vb == 0 || vb > half_blocks) ? half_blocks : vb;
	uint32_t half_slots = rxl->submit_slots / 2;
	if (ep->cfg.view_count == 0 || ep->cfg.view_count > half_slots)
		ep->cfg.view_count = half_slots;

	ep->inflight = ocapn__calloc(&a, ep->tx_slots * sizeof(*ep->inflight));
	ep->free_slots = ocapn__malloc(&a, ep->tx_slots * sizeof(uint32_t));
	ep->bitmap = ocapn__calloc(&a, ((ep->nblocks + 63) / 64) * 8);
	if (!ep->inflight || !ep->free_slots || !ep->bitmap) {
		ocapn__shm_ep_free(ep);
		return OCAPN_E_NOMEM;
	}
	for (uint32_t i = 0; i < ep->tx_slots; i++)
		ep->free_slots[i] = ep->tx_slots - 1 - i;
	ep->nfree = ep->tx_slots;
	*out = ep;
	return OCAPN_OK;
}

void
ocapn__shm_ep_free(ocapn__shm_ep *ep)
{
	if (!ep)
		return;
	for (size_t i = 0; i < ep->held_cap; i++)
		if (ep->held[i].kind == HELD_COPY)
			ocapn__free(&ep->a, ep->held[i].buf, ep->held[i].cap);
	ocapn__free(&ep->a, ep->held, ep->held_cap * sizeof(*ep->held));
	ocapn__free(&ep->a, ep->reasm, ep->reasm_cap);
	ocapn__free(&ep->a, ep->spare, ep->spare_cap);
	ocapn__free(&ep->a, ep->inflight, ep->tx_slots * sizeof(*ep->inflight));
	ocapn__free(&ep->a, ep->free_slots, ep->tx_slots * sizeof(uint32_t));
	ocapn__free(&ep->a, ep->bitmap, ((ep->nblocks + 63) / 64) * 8);
	ocapn_allocator a = ep->a;
	ocapn__free(&a, ep, sizeof(*ep));
}

/* ------------------------------------------------------------------ */
/* Bulk allocator: a bitmap of 64-byte blocks, next-fit                 */
/* ------------------------------------------------------------------ */

/*
 * Acks may come back in any order (views are released in any order), so
 * the allocator frees by range, like Genode's bit-array Packet_allocator.
 * Next-fit from a cursor makes in-order traffic behave like a ring.
 */

static inline bool
bm_test(const uint64_t *bm, uint32_t i)
{
	return (bm[i >> 6] >> (i & 63)) & 1u;
}

static void
bm_assign(uint64_t *bm, uint32_t start, uint32_t n, bool set)
{
	uint32_t i = start, end = start + n;
	while (i < end) {
		if ((i & 63) == 0 && end - i >= 64) {
			bm[i >> 6] = set ? ~(uint64_t)0 : 0;
			i += 64;
			continue;
		}
		if (set)
			bm[i >> 6] |= (uint64_t)1 << (i & 63);
		else
			bm[i >> 6] &= ~((uint64_t)1 << (i & 63));
		i++;
	}
}

/* First run of `n` free blocks inside [lo, hi), or UINT32_MAX. */
static uint32_t
bm_find_in(const uint64_t *bm, uint32_t lo, uint32_t hi, uint32_t n)
{
	uint32_t run = 0, start = lo, i = lo;
	while (i < hi) {
		if ((i & 63) == 0 && hi - i >= 64) {
			uint64_t w = bm[i >> 6];
			if (w == 0) {
				if (run == 0)
					start = i;
				run += 64;
				i += 64;
				if (run >= n)
					return start;
				continue;
			}
			if (w == ~(uint64_t)0) {
				run = 0;
				i += 64;
				continue;
			}
		}
		if (bm_test(bm, i)) {
			run = 0;
		} else {
			if (run == 0)
				start = i;
			if (++run >= n)
				return start;
		}
		i++;
	}
	return UINT32_MAX;
}

/* Longest free run; its length, start in *startp. */
static uint32_t
bm_largest(const uint64_t *bm, uint32_t nblocks, uint32_t *startp)
{
	uint32_t best = 0, run = 0, start = 0;
	for (uint32_t i = 0; i < nblocks; i++) {
		if (bm_test(bm, i)) {
			run = 0;
			continue;
		}
		if (run++ == 0)
			start = i;
		if (run > best) {
			best = run;
			*startp = start;
		}
	}
	return best;
}

/*
 * Allocate `*len` bytes (rounded up to blocks) of our bulk buffer.  If no
 * contiguous run exists but at most half the blocks are allocated, the
 * peer may be pinning everything it holds (views it is not obliged to
 * release before reading more), so waiting could deadlock: shrink the
 * packet to the largest free run instead, which the framing turns into
 * fragments.  With more than half allocated, some in-flight packets are
 * not pinned (the peer caps pinned views at half), so their acks will
 * come: wait.  Returns the first block, or UINT32_MAX.
 */
static uint32_t
tx_alloc(ocapn__shm_ep *ep, uint32_t *len)
{
	uint32_t n = (uint32_t)((*len + OCAPN__SHM_BLOCK - 1) /
	    OCAPN__SHM_BLOCK);
	uint32_t b = UINT32_MAX;
	if (ep->cursor < ep->nblocks)
		b = bm_find_in(ep->bitmap, ep->cursor, ep->nblocks, n);
	if (b == UINT32_MAX)
		b = bm_find_in(ep->bitmap, 0, ep->nblocks, n);
	if (b == UINT32_MAX) {
		if (ep->used_blocks > ep->nblocks / 2)
			return UINT32_MAX;
		uint32_t start = 0;
		uint32_t best = bm_largest(ep->bitmap, ep->nblocks, &start);
		if (best == 0)
			return UINT32_MAX;
		b = start;
		n = best;
		*len = n * OCAPN__SHM_BLOCK;
	}
	bm_assign(ep->bitmap, b, n, true);
	ep->used_blocks += n;
	ep->cursor = b + n;
	return b;
}

static void
tx_free(ocapn__shm_ep *ep, uint32_t block, uint32_t blocks)
{
	bm_assign(ep->bitmap, block, blocks, false);
	ep->used_blocks -= blocks;
}

/* ------------------------------------------------------------------ */
/* Wakeups                                                              */
/* ------------------------------------------------------------------ */

/*
 * The publishing half of the wakeup protocol: after publishing an index,
 * a seq_cst fence, then read the peer's want flag and ring if it is set.
 * The sleeping half (arm) stores its flag, fences, then re-reads the
 * index.  With both fences, at least one side sees the other's store, so
 * either the sleeper finds the work or the publisher rings.
 */
static void
signal_peer(ocapn__shm_ep *ep, bool submitted, bool acked)
{
	if (!OCAPN__SHM_MUTANT(2))
		OCAPN__SHM_FENCE();
	bool want = false;
	if (submitted && OCAPN__SHM_LOAD_RLX(&ep->tx_ctl->sink_wants.v))
		want = true;
	if (acked && OCAPN__SHM_LOAD_RLX(&ep->rx_ctl->source_wants.v) &&
	    !OCAPN__SHM_MUTANT(3))
		want = true;
	if (want) {
		ep->rings++;
		ep->ring(ep->ring_user);
	}
}

/*
 * After publishing.  With deferred doorbells the fence, the look at the
 * peer's flags and the ring wait for ocapn__shm_ep_flush (or the next
 * arm): the index is already visible, and the argument above only needs
 * the fence and the look to come after it, not at once.  A burst of
 * messages then costs one ring instead of one per message.
 */
static void
notify(ocapn__shm_ep *ep, bool submitted, bool acked)
{
	if (!submitted && !acked)
		return;
	if (acked)
		ep->acks_unsignalled = false;
	if (ep->defer) {
		ep->owe_submit |= submitted;
		ep->owe_ack |= acked;
		return;
	}
	signal_peer(ep, submitted, acked);
}

void
ocapn__shm_ep_defer(ocapn__shm_ep *ep, bool on)
{
	if (!on)
		ocapn__shm_ep_flush(ep);
	ep->defer = on;
}

bool
ocapn__shm_ep_owed(const ocapn__shm_ep *ep)
{
	return ep->owe_submit || ep->owe_ack;
}

void
ocapn__shm_ep_flush(ocapn__shm_ep *ep)
{
	if (!ep->owe_submit && !ep->owe_ack)
		return;
	bool submitted = ep->owe_submit, acked = ep->owe_ack;
	ep->owe_submit = ep->owe_ack = false;
	signal_peer(ep, submitted, acked);
}

/* ------------------------------------------------------------------ */
/* Source side                                                          */
/* ------------------------------------------------------------------ */

/* Take the acks the peer published; free their packets. */
static int
reclaim(ocapn__shm_ep *ep)
{
	uint32_t h = OCAPN__SHM_LOAD_ACQ(&ep->tx_ctl->ack_head.v);
	uint32_t n = h - ep->tx_ack_tail;
	if (n == 0)
		return OCAPN_OK;
	/* inflight_n <= submit slots <= ack slots, so this also rejects
	 * any jump larger than the ack ring. */
	if (n > ep->inflight_n)
		return VIOLATION(ep, "ack index moved past the packets in "
		    "flight");
	const uint32_t amask = ep->tx_ack_slots - 1;
	const uint32_t smask = ep->tx_slots - 1;
	for (uint32_t k = 0; k < n; k++) {
		struct ocapn__shm_ack *e = &ep->tx_ack[ep->tx_ack_tail & amask];
		uint32_t seq = OCAPN__SHM_LOAD_RLX(&e->seq);
		uint32_t status = OCAPN__SHM_LOAD_RLX(&e->status);
		if (status != 0)
			return VIOLATION(ep, "ack with an unknown status");
		uint32_t slot = seq & smask;
		struct inflight *f = &ep->inflight[slot];
		if (!f->live || f->seq != seq)
			return VIOLATION(ep, "ack for an unknown, stale or "
			    "duplicate packet");
		f->live = false;
		tx_free(ep, f->block, f->blocks);
		ep->free_slots[ep->nfree++] = slot;
		ep->inflight_n--;
		ep->tx_ack_tail++;
	}
	OCAPN__SHM_STORE_REL(&ep->tx_ctl->ack_tail.v, ep->tx_ack_tail);
	return OCAPN_OK;
}

/* Is there room for one more descriptor in the submit ring? */
static bool
tx_ring_room(ocapn__shm_ep *ep)
{
	if (ep->tx_head - ep->tx_seen_tail < ep->tx_slots)
		return true;
	uint32_t t = OCAPN__SHM_LOAD_ACQ(&ep->tx_ctl->submit_tail.v);
	if (ep->tx_head - t > ep->tx_slots) {
		VIOLATION(ep, "submit tail moved outside the ring");
		return false;
	}
	ep->tx_seen_tail = t;
	return ep->tx_head - t < ep->tx_slots;
}

/* Copy message bytes [from, from + n) out of the gather list. */
static void
gather(uint8_t *dst, const struct ocapn__shm_iov *iov, size_t niov,
    size_t from, size_t n)
{
	size_t i = 0;
	while (i < niov && from >= iov[i].len) {
		from -= iov[i].len;
		i++;
	}
	while (n > 0 && i < niov) {
		size_t take = iov[i].len - from;
		if (take > n)
			take = n;
		memcpy(dst, (const uint8_t *)iov[i].base + from, take);
		dst += take;
		n -= take;
		from = 0;
		i++;
	}
}

/*
 * Put one packet into the rings, or return OCAPN_E_AGAIN when there is
 * no slot, ring room or bulk space.  `*plen` may shrink (tx_alloc).
 */
static int
tx_packet(ocapn__shm_ep *ep, const struct ocapn__shm_iov *iov, size_t niov,
    size_t from, uint32_t *plen, uint32_t flags)
{
	if (ep->nfree == 0 || !tx_ring_room(ep)) {
		if (ep->err)
			return ep->err;
		return OCAPN_E_AGAIN;
	}
	uint32_t len = *plen;
	uint32_t block = tx_alloc(ep, &len);
	if (block == UINT32_MAX)
		return OCAPN_E_AGAIN;
	if (len < *plen) {
		/* Shrunk into a fragment: it cannot be the last one. */
		flags &= ~OCAPN__SHM_LAST;
		*plen = len;
	}
	uint32_t blocks = (uint32_t)((len + OCAPN__SHM_BLOCK - 1) /
	    OCAPN__SHM_BLOCK);
	uint32_t off = block * OCAPN__SHM_BLOCK;
	gather(ep->tx_bulk + off, iov, niov, from, len);

	uint32_t slot = ep->free_slots[--ep->nfree];
	uint32_t seq = (ep->seqgen++ << ep->tx_slot_bits) | slot;
	struct inflight *f = &ep->inflight[slot];
	f->seq = seq;
	f->block = block;
	f->blocks = blocks;
	f->live = true;
	ep->inflight_n++;
	uint32_t pos = ep->tx_head++;

	struct ocapn__shm_desc *d = &ep->tx_desc[pos & (ep->tx_slots - 1)];
	OCAPN__SHM_STORE_RLX(&d->off, off);
	OCAPN__SHM_STORE_RLX(&d->len, len);
	OCAPN__SHM_STORE_RLX(&d->seq, seq);
	OCAPN__SHM_STORE_RLX(&d->flags, flags);
	OCAPN__SHM_STORE_REL(&ep->tx_ctl->submit_head.v, ep->tx_head);
	ep->packets_tx++;
	return OCAPN_OK;
}

int
ocapn__shm_ep_send(ocapn__shm_ep *ep, const struct ocapn__shm_iov *iov,
    size_t n)
{
	if (ep->err)
		return ep->err;
	if (ep->tx_closed)
		return OCAPN_E_CLOSED;
	size_t total = 0;
	for (size_t i = 0; i < n; i++) {
		if (iov[i].len > SIZE_MAX - total)
			return OCAPN_E_INVAL;
		total += iov[i].len;
	}
	if (total == 0)
		return OCAPN_E_INVAL;
	if (ep->tx_partial) {
		if (total != ep->tx_total)
			return OCAPN_E_INVAL;
	} else {
		if (total > ep->cfg.max_msg_out)
			return OCAPN_E_LIMIT;
		ep->tx_total = total;
		ep->tx_done = 0;
	}

	bool submitted = false, reclaimed = false;
	int rc = OCAPN_OK;
	while (ep->tx_done < total) {
		size_t left = total - ep->tx_done;
		uint32_t plen = left > ep->tx_max_packet ? ep->tx_max_packet
							: (uint32_t)left;
		uint32_t flags = 0;
		if (ep->tx_done == 0)
			flags |= OCAPN__SHM_FIRST;
		if (plen == left)
			flags |= OCAPN__SHM_LAST;
		rc = tx_packet(ep, iov, n, ep->tx_done, &plen, flags);
		if (rc == OCAPN_E_AGAIN && !reclaimed) {
			/* Take acks once, then try again. */
			reclaimed = true;
			if ((rc = reclaim(ep)) != OCAPN_OK)
				break;
			rc = tx_packet(ep, iov, n, ep->tx_done, &plen, flags);
		}
		if (rc != OCAPN_OK)
			break;
		submitted = true;
		ep->tx_done += plen;
		ep->tx_partial = ep->tx_done < total;
	}
	if (rc == OCAPN_OK) {
		ep->tx_partial = false;
		ep->tx_blocked = false;
	} else if (rc == OCAPN_E_AGAIN) {
		ep->tx_blocked = true;
	}
	notify(ep, submitted, false);
	return ep->err ? ep->err : rc;
}

/* ------------------------------------------------------------------ */
/* Sink side                                                            */
/* ------------------------------------------------------------------ */

/* Write an ack for packet `seq` and publish it. */
static int
push_ack(ocapn__shm_ep *ep, uint32_t seq)
{
	/*
	 * Publish consumption before the ack: then every packet the source
	 * sees acked is also out of its submit ring, so an honest sink never
	 * leaves the source with acks but no ring room (which would need a
	 * wakeup of its own).
	 */
	if (ep->rx_tail != ep->rx_pub_tail) {
		ep->rx_pub_tail = ep->rx_tail;
		OCAPN__SHM_STORE_REL(&ep->rx_ctl->submit_tail.v, ep->rx_tail);
	}
	if (ep->rx_ack_head - ep->rx_seen_ack_tail >= ep->rx_ack_slots) {
		uint32_t t = OCAPN__SHM_LOAD_ACQ(&ep->rx_ctl->ack_tail.v);
		if (ep->rx_ack_head - t > ep->rx_ack_slots)
			return VIOLATION(ep, "ack tail moved outside the ring");
		ep->rx_seen_ack_tail = t;
		/* An honest source keeps at most submit_slots <= ack_slots
		 * packets in flight, so it never lets this ring fill. */
		if (ep->rx_ack_head - t >= ep->rx_ack_slots)
			return VIOLATION(ep, "peer does not take its acks");
	}
	struct ocapn__shm_ack *e = &ep->rx_ack[ep->rx_ack_head &
	    (ep->rx_ack_slots - 1)];
	OCAPN__SHM_STORE_RLX(&e->seq, seq);
	OCAPN__SHM_STORE_RLX(&e->status, 0);
	ep->rx_ack_head++;
	OCAPN__SHM_STORE_REL(&ep->rx_ctl->ack_head.v, ep->rx_ack_head);
	ep->acks_unsignalled = true;
	return OCAPN_OK;
}

/* A free entry of the held table; its index, or -1 (error set). */
static long
held_new(ocapn__shm_ep *ep)
{
	for (size_t i = 0; i < ep->held_cap; i++)
		if (ep->held[i].kind == HELD_FREE)
			return (long)i;
	if (ep->held_cap >= MAX_HELD) {
		ocapn__shm_ep_abort(ep, OCAPN_E_LIMIT,
		    "too many received messages held");
		return -1;
	}
	size_t old = ep->held_cap;
	void *p = ep->held;
	if (ocapn__grow(&ep->a, &p, &ep->held_cap, old + 1,
		sizeof(*ep->held)) != OCAPN_OK) {
		ocapn__shm_ep_abort(ep, OCAPN_E_NOMEM, "out of memory");
		return -1;
	}
	ep->held = p;
	memset(&ep->held[old], 0, (ep->held_cap - old) * sizeof(*ep->held));
	return (long)old;
}

static void
held_fill(ocapn__shm_ep *ep, long i, struct ocapn__shm_msg *m)
{
	struct held *h = &ep->held[i];
	h->gen = ++ep->held_gen;
	ep->held_n++;
	m->token = ((uint32_t)h->gen << 16) | (uint32_t)i;
}

/* Make sure the reassembly buffer can hold `need` bytes. */
static int
reasm_reserve(ocapn__shm_ep *ep, size_t need)
{
	if (need <= ep->reasm_cap)
		return OCAPN_OK;
	size_t ncap = ep->reasm_cap ? ep->reasm_cap : 4096;
	while (ncap < need && ncap <= SIZE_MAX / 2)
		ncap *= 2;
	if (ncap < need || ncap > ep->cfg.max_msg_in)
		ncap = need > ep->cfg.max_msg_in ? need : ep->cfg.max_msg_in;
	uint8_t *p = ocapn__realloc(&ep->a, ep->reasm, ep->reasm_cap, ncap);
	if (!p)
		return ocapn__shm_ep_abort(ep, OCAPN_E_NOMEM, "out of memory");
	ep->reasm = p;
	ep->reasm_cap = ncap;
	return OCAPN_OK;
}

/* Start reassembly into the spare buffer if there is one. */
static void
reasm_start(ocapn__shm_ep *ep)
{
	if (!ep->reasm && ep->spare) {
		ep->reasm = ep->spare;
		ep->reasm_cap = ep->spare_cap;
		ep->spare = NULL;
		ep->spare_cap = 0;
	}
	ep->reasm_len = 0;
	ep->in_frag = true;
}

/* Hand the reassembly buffer (or a fresh copy) to the application. */
static int
deliver_private(ocapn__shm_ep *ep, struct ocapn__shm_msg *m)
{
	long i = held_new(ep);
	if (i < 0)
		return ep->err;
	struct held *h = &ep->held[i];
	h->kind = HELD_COPY;
	h->buf = ep->reasm;
	h->cap = ep->reasm_cap;
	m->data = ep->reasm;
	m->len = ep->reasm_len;
	m->zero_copy = false;
	held_fill(ep, i, m);
	ep->reasm = NULL;
	ep->reasm_cap = 0;
	ep->reasm_len = 0;
	ep->in_frag = false;
	return OCAPN_OK;
}

/*
 * Consume one descriptor at rx_tail.  Returns OCAPN_OK with *done set if
 * it completed a message in *m.
 */
static int
rx_packet(ocapn__shm_ep *ep, struct ocapn__shm_msg *m, bool *done)
{
	struct ocapn__shm_desc *s = &ep->rx_desc[ep->rx_tail &
	    (ep->rx_slots - 1)];
	/* Snapshot: each word read exactly once. */
	uint32_t off = OCAPN__SHM_LOAD_RLX(&s->off);
	uint32_t len = OCAPN__SHM_LOAD_RLX(&s->len);
	uint32_t seq = OCAPN__SHM_LOAD_RLX(&s->seq);
	uint32_t flags = OCAPN__SHM_LOAD_RLX(&s->flags);

	if (flags & ~(uint32_t)(OCAPN__SHM_FIRST | OCAPN__SHM_LAST))
		return VIOLATION(ep, "descriptor with unknown flags");
	if (len == 0)
		return VIOLATION(ep, "empty packet");
	if (len > ep->rx_max_packet)
		return VIOLATION(ep, "packet larger than max_packet");
	if (off > ep->rx_bulk_size || len > ep->rx_bulk_size - off)
		return VIOLATION(ep, "packet outside the bulk buffer");

	ep->rx_tail++;
	ep->packets_rx++;
	const uint8_t *p = ep->rx_bulk + off;
	*done = false;

	if (!ep->in_frag) {
		if (!(flags & OCAPN__SHM_FIRST))
			return VIOLATION(ep, "continuation fragment without "
			    "a first fragment");
		if (len > ep->cfg.max_msg_in)
			return VIOLATION(ep, "message larger than max_msg");
		if (flags & OCAPN__SHM_LAST) {
			uint32_t blocks = (len + OCAPN__SHM_BLOCK - 1) /
			    OCAPN__SHM_BLOCK;
			if (ep->views_n < ep->cfg.view_count &&
			    blocks <= ep->view_blocks_max - ep->view_blocks) {
				long i = held_new(ep);
				if (i < 0)
					return ep->err;
				struct held *h = &ep->held[i];
				h->kind = HELD_VIEW;
				h->seq = seq;
				h->blocks = blocks;
				ep->views_n++;
				ep->view_blocks += blocks;
				m->data = p;
				m->len = len;
				m->zero_copy = true;
				held_fill(ep, i, m);
				*done = true;
				return OCAPN_OK;
			}
			/* Over the pin cap: copy out and ack at once. */
			reasm_start(ep);
			int rc = reasm_reserve(ep, len);
			if (rc)
				return rc;
			memcpy(ep->reasm, p, len);
			ep->reasm_len = len;
			if ((rc = push_ack(ep, seq)) != OCAPN_OK)
				return rc;
			*done = true;
			return deliver_private(ep, m);
		}
		reasm_start(ep);
	} else if (flags & OCAPN__SHM_FIRST) {
		return VIOLATION(ep, "new message inside a fragmented one");
	}
	/*
	 * A fragment: copy it out and ack it at once, so a message larger
	 * than the bulk buffer cannot deadlock.
	 */
	if (len > ep->cfg.max_msg_in - ep->reasm_len)
		return VIOLATION(ep, "message larger than max_msg");
	int rc = reasm_reserve(ep, ep->reasm_len + len);
	if (rc)
		return rc;
	memcpy(ep->reasm + ep->reasm_len, p, len);
	ep->reasm_len += len;
	if ((rc = push_ack(ep, seq)) != OCAPN_OK)
		return rc;
	if (flags & OCAPN__SHM_LAST) {
		*done = true;
		return deliver_private(ep, m);
	}
	return OCAPN_OK;
}

int
ocapn__shm_ep_recv(ocapn__shm_ep *ep, struct ocapn__shm_msg *m)
{
	if (ep->err)
		return ep->err;
	int rc = OCAPN_E_AGAIN;
	uint32_t budget = ep->cfg.work_bound;
	ep->rx_more = false;
	while (budget > 0) {
		if (ep->rx_tail == ep->rx_seen_head) {
			uint32_t h = OCAPN__SHM_LOAD_ACQ(
			    &ep->rx_ctl->submit_head.v);
			if (h - ep->rx_tail > ep->rx_slots) {
				rc = VIOLATION(ep, "submit index jumped past "
				    "the ring");
				break;
			}
			ep->rx_seen_head = h;
			if (h == ep->rx_tail) {
				rc = OCAPN_E_AGAIN;
				if (OCAPN__SHM_LOAD_ACQ(&ep->rx_ctl->closed.v)) {
					/* Everything published before the
					 * close is visible now. */
					h = OCAPN__SHM_LOAD_ACQ(
					    &ep->rx_ctl->submit_head.v);
					if (h == ep->rx_tail) {
						ep->rx_eof = true;
						rc = OCAPN_E_CLOSED;
					}
				}
				break;
			}
		}
		bool done;
		budget--;
		rc = rx_packet(ep, m, &done);
		if (rc != OCAPN_OK)
			break;
		if (done)
			break;
		rc = OCAPN_E_AGAIN;
	}
	if (budget == 0 && rc == OCAPN_E_AGAIN)
		ep->rx_more = true;
	if (ep->rx_tail != ep->rx_pub_tail) {
		ep->rx_pub_tail = ep->rx_tail;
		OCAPN__SHM_STORE_REL(&ep->rx_ctl->submit_tail.v, ep->rx_tail);
	}
	notify(ep, false, ep->acks_unsignalled);
	return ep->err ? ep->err : rc;
}

int
ocapn__shm_ep_release(ocapn__shm_ep *ep, struct ocapn__shm_msg *m)
{
	uint32_t idx = m->token & 0xffffu;
	uint16_t gen = (uint16_t)(m->token >> 16);
	if (idx >= ep->held_cap || ep->held[idx].kind == HELD_FREE ||
	    ep->held[idx].gen != gen)
		return OCAPN_E_INVAL;
	struct held *h = &ep->held[idx];
	int rc = OCAPN_OK;
	if (h->kind == HELD_VIEW) {
		ep->views_n--;
		ep->view_blocks -= h->blocks;
		if (!ep->err) {
			rc = push_ack(ep, h->seq);
			notify(ep, false, ep->acks_unsignalled);
		}
	} else {
		/* Keep the largest buffer for the next reassembly. */
		if (h->cap > ep->spare_cap) {
			ocapn__free(&ep->a, ep->spare, ep->spare_cap);
			ep->spare = h->buf;
			ep->spare_cap = h->cap;
		} else {
			ocapn__free(&ep->a, h->buf, h->cap);
		}
	}
	h->kind = HELD_FREE;
	h->buf = NULL;
	h->cap = 0;
	ep->held_n--;
	m->data = NULL;
	m->len = 0;
	return rc;
}

/* ------------------------------------------------------------------ */
/* Sleeping and waking                                                  */
/* ------------------------------------------------------------------ */

int
ocapn__shm_ep_poll(ocapn__shm_ep *ep)
{
	if (ep->err)
		return ep->err;
	/* Awake: the peer need not ring until we arm again. */
	if (ep->rx_wants) {
		OCAPN__SHM_STORE_RLX(&ep->rx_ctl->sink_wants.v, 0);
		ep->rx_wants = false;
	}
	if (ep->tx_wants) {
		OCAPN__SHM_STORE_RLX(&ep->tx_ctl->source_wants.v, 0);
		ep->tx_wants = false;
	}
	return reclaim(ep);
}

bool
ocapn__shm_ep_pending(const ocapn__shm_ep *ep)
{
	if (ep->err || ep->rx_more || ep->acks_unsignalled)
		return true;
	if (ep->rx_tail != ep->rx_seen_head)
		return true;
	if (OCAPN__SHM_LOAD_ACQ(&ep->rx_ctl->submit_head.v) != ep->rx_tail)
		return true;
	if (!ep->rx_eof && OCAPN__SHM_LOAD_ACQ(&ep->rx_ctl->closed.v))
		return true;
	if (ep->tx_blocked &&
	    OCAPN__SHM_LOAD_ACQ(&ep->tx_ctl->ack_head.v) != ep->tx_ack_tail)
		return true;
	return false;
}

bool
ocapn__shm_ep_arm(ocapn__shm_ep *ep)
{
	/* About to sleep: signal what we published first, or the peer may
	 * sleep too, each waiting for the other (mutant 4 in the model). */
	if (!OCAPN__SHM_MUTANT(4))
		ocapn__shm_ep_flush(ep);
	if (ep->err || ep->rx_more)
		return false;
	if (!ep->rx_wants) {
		OCAPN__SHM_STORE_RLX(&ep->rx_ctl->sink_wants.v, 1);
		ep->rx_wants = true;
	}
	if (ep->tx_blocked && !ep->tx_wants) {
		OCAPN__SHM_STORE_RLX(&ep->tx_ctl->source_wants.v, 1);
		ep->tx_wants = true;
	}
	if (!OCAPN__SHM_MUTANT(1))
		OCAPN__SHM_FENCE();
	return !ocapn__shm_ep_pending(ep);
}

void
ocapn__shm_ep_close(ocapn__shm_ep *ep)
{
	if (ep->tx_closed)
		return;
	ep->tx_closed = true;
	OCAPN__SHM_STORE_REL(&ep->tx_ctl->closed.v, 1);
	OCAPN__SHM_FENCE();
	/* the unconditional ring below covers anything deferred */
	ep->owe_submit = ep->owe_ack = false;
	ep->rings++;
	ep->ring(ep->ring_user);
}

/* ------------------------------------------------------------------ */
/* Tests                                                                */
/* ------------------------------------------------------------------ */

void
ocapn__shm_ep_stats(const ocapn__shm_ep *ep, struct ocapn__shm_ep_stats *st)
{
	st->inflight = ep->inflight_n;
	st->inflight_max = ep->tx_slots;
	st->bulk_used = (uint64_t)ep->used_blocks * OCAPN__SHM_BLOCK;
	st->views_held = ep->held_n;
	st->rings = ep->rings;
	st->packets_tx = ep->packets_tx;
	st->packets_rx = ep->packets_rx;
}

const char *
ocapn__shm_ep_check(const ocapn__shm_ep *ep)
{
	if (ep->inflight_n > ep->tx_slots)
		return "more packets in flight than submit slots";
	if (ep->inflight_n + ep->nfree != ep->tx_slots)
		return "in-flight count and free slots disagree";
	uint64_t sum = 0;
	uint32_t live = 0;
	for (uint32_t s = 0; s < ep->tx_slots; s++) {
		const struct inflight *f = &ep->inflight[s];
		if (!f->live)
			continue;
		live++;
		if ((f->seq & (ep->tx_slots - 1)) != s)
			return "in-flight entry under the wrong slot";
		if (f->blocks == 0 || f->block > ep->nblocks ||
		    f->blocks > ep->nblocks - f->block)
			return "in-flight range outside the bulk buffer";
		for (uint32_t b = f->block; b < f->block + f->blocks; b++)
			if (!bm_test(ep->bitmap, b))
				return "in-flight range not marked allocated";
		sum += f->blocks;
	}
	if (live != ep->inflight_n)
		return "live entries and in-flight count disagree";
	uint64_t pop = 0;
	for (uint32_t b = 0; b < ep->nblocks; b++)
		pop += bm_test(ep->bitmap, b);
	/* Every live range is inside the bitmap; if two overlapped, the sum
	 * of their sizes would exceed the number of allocated blocks. */
	if (pop != sum)
		return "in-flight ranges overlap or allocation leaked";
	if (pop != ep->used_blocks)
		return "allocated block count is wrong";
	if (ep->tx_head - ep->tx_ack_tail < ep->inflight_n)
		return "fewer packets submitted than in flight";
	return NULL;
}
