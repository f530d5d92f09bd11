/*
 * Hostile-peer harness for the shm ring core.
 *
 * A victim endpoint runs over two heap regions while the test plays a
 * peer that rewrites the shared memory: crafted descriptors (ranges that
 * wrap in 32 and 64 bits, empty or oversized packets, fragment order
 * errors), huge index jumps, unknown, stale and duplicate acks, a sink
 * that never takes its acks, a rewritten header, and payload bytes
 * flipped by another thread while the victim decodes them with the Syrup
 * decoder.  Every violation must end in a sticky OCAPN_E_PROTOCOL with
 * the expected reason; run under ASan/UBSan nothing may read out of
 * bounds.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#include "netlayers/shm/ring.h"

/* ---- Rig: victim V (tx region T, rx region R) and an honest peer P
 * (tx R, rx T) that the test may bypass to write R and T directly. ---- */

struct rig {
	struct ocapn__shm_geom g;
	struct ocapn__shm_layout l;
	uint8_t *T, *R;
	ocapn__shm_ep *v, *p;
	int rings_v, rings_p;
};

static void
ring_count(void *user)
{
	(*(int *)user)++;
}

static void
rig_new(struct rig *r, uint32_t slots, uint64_t bulk, uint32_t max_packet,
    uint32_t max_msg, uint32_t work_bound)
{
	memset(r, 0, sizeof(*r));
	r->g = (struct ocapn__shm_geom){slots, max_packet, bulk};
	assert_int_equal(ocapn__shm_layout(&r->g, &r->l, NULL), 0);
	r->T = aligned_alloc(4096, r->l.region_size);
	r->R = aligned_alloc(4096, r->l.region_size);
	assert_non_null(r->T);
	assert_non_null(r->R);
	assert_int_equal(ocapn__shm_format(r->T, r->l.region_size, &r->g), 0);
	assert_int_equal(ocapn__shm_format(r->R, r->l.region_size, &r->g), 0);
	struct ocapn__shm_layout lt, lr;
	const char *why;
	assert_int_equal(ocapn__shm_attach(r->T, r->l.region_size, &lt, &why),
	    0);
	assert_int_equal(ocapn__shm_attach(r->R, r->l.region_size, &lr, &why),
	    0);
	struct ocapn__shm_ep_config cfg = {max_msg, max_msg, work_bound, 0,
	    0};
	assert_int_equal(ocapn__shm_ep_new(&r->v, NULL, r->T, &r->g, r->R, &lr,
	    &cfg, ring_count, &r->rings_p), 0);
	assert_int_equal(ocapn__shm_ep_new(&r->p, NULL, r->R, &r->g, r->T, &lt,
	    &cfg, ring_count, &r->rings_v), 0);
}

static void
rig_free(struct rig *r)
{
	ocapn__shm_ep_free(r->v);
	ocapn__shm_ep_free(r->p);
	free(r->T);
	free(r->R);
}

static struct ocapn__shm_ctl *
ctl(struct rig *r, uint8_t *region)
{
	return (struct ocapn__shm_ctl *)(void *)(region + r->l.ctl_off);
}

static struct ocapn__shm_desc *
desc(struct rig *r, uint8_t *region, uint32_t i)
{
	struct ocapn__shm_desc *d = (struct ocapn__shm_desc *)(void *)(region +
	    r->l.submit_off);
	return &d[i & (r->l.submit_slots - 1)];
}

static struct ocapn__shm_ack *
ackent(struct rig *r, uint8_t *region, uint32_t i)
{
	struct ocapn__shm_ack *a = (struct ocapn__shm_ack *)(void *)(region +
	    r->l.ack_off);
	return &a[i & (r->l.ack_slots - 1)];
}

/* The raw peer publishes descriptor number `i` of region R. */
static void
put_desc(struct rig *r, uint32_t i, uint32_t off, uint32_t len, uint32_t seq,
    uint32_t flags)
{
	struct ocapn__shm_desc *d = desc(r, r->R, i);
	atomic_store(&d->off, off);
	atomic_store(&d->len, len);
	atomic_store(&d->seq, seq);
	atomic_store(&d->flags, flags);
	atomic_store(&ctl(r, r->R)->submit_head.v, i + 1);
}

/* The raw sink publishes ack number `i` in region T. */
static void
put_ack(struct rig *r, uint32_t i, uint32_t seq, uint32_t status)
{
	struct ocapn__shm_ack *a = ackent(r, r->T, i);
	atomic_store(&a->seq, seq);
	atomic_store(&a->status, status);
	atomic_store(&ctl(r, r->T)->ack_head.v, i + 1);
}

static void
expect_abort(ocapn__shm_ep *ep, int rc, const char *reason)
{
	const char *why = "";
	int err = ocapn__shm_ep_error(ep, &why);
	if (rc != OCAPN_E_PROTOCOL || err != OCAPN_E_PROTOCOL ||
	    strcmp(why, reason) != 0)
		fail_msg("expected abort \"%s\", got %s / %s \"%s\"", reason,
		    ocapn_err_name(rc), ocapn_err_name(err), why);
	/* Sticky: every later call fails the same way. */
	struct ocapn__shm_msg m;
	assert_int_equal(ocapn__shm_ep_recv(ep, &m), OCAPN_E_PROTOCOL);
	assert_int_equal(ocapn__shm_ep_send(ep, &(struct ocapn__shm_iov){"x",
	    1}, 1), OCAPN_E_PROTOCOL);
	assert_int_equal(ocapn__shm_ep_poll(ep), OCAPN_E_PROTOCOL);
	assert_false(ocapn__shm_ep_arm(ep));
}

static int
send1(ocapn__shm_ep *ep, const void *p, size_t n)
{
	struct ocapn__shm_iov iov = {p, n};
	return ocapn__shm_ep_send(ep, &iov, 1);
}

/* ---- Header ---------------------------------------------------------- */

static void
test_header_validation(void **state)
{
	(void)state;
	struct ocapn__shm_geom g = {8, 4096, 64u << 10};
	struct ocapn__shm_layout l;
	assert_int_equal(ocapn__shm_layout(&g, &l, NULL), 0);
	size_t size = (size_t)l.region_size;
	uint8_t *base = aligned_alloc(4096, size);
	assert_non_null(base);
	struct ocapn__shm_hdr *h = (struct ocapn__shm_hdr *)(void *)base;
	static const struct {
		int field;
		uint64_t value;
		int err;
		const char *reason;
	} cases[] = {
		{0, 0x12345678, OCAPN_E_PROTOCOL, "bad region magic"},
		{1, 2, OCAPN_E_VERSION, "unsupported region version"},
		{2, 64, OCAPN_E_PROTOCOL, "bad header size"},
		{3, 3, OCAPN_E_PROTOCOL,
		    "submit slots not a power of two in 2..65536"},
		{3, 1u << 17, OCAPN_E_PROTOCOL,
		    "submit slots not a power of two in 2..65536"},
		{4, 4, OCAPN_E_PROTOCOL,
		    "ack slots not a power of two >= submit slots"},
		/* 64-bit wrap: bulk_off + bulk_size would be 4096. */
		{6, UINT64_MAX - 4095, OCAPN_E_PROTOCOL, "bad bulk size"},
		{5, 64u << 10, OCAPN_E_PROTOCOL,
		    "max_packet not in 1..bulk_size/2"},
		{5, 0, OCAPN_E_PROTOCOL, "max_packet not in 1..bulk_size/2"},
		{7, UINT64_MAX - 4095, OCAPN_E_PROTOCOL,
		    "region size differs from the header"},
		/* Offsets that wrap or point past the end. */
		{8, UINT64_MAX - 63, OCAPN_E_PROTOCOL,
		    "an area lies outside the region"},
		{9, UINT64_MAX - 8, OCAPN_E_PROTOCOL,
		    "an area lies outside the region"},
		{10, (uint64_t)8192 << 40, OCAPN_E_PROTOCOL,
		    "an area lies outside the region"},
		/* Inside the region but overlapping the descriptor ring. */
		{11, 0, OCAPN_E_PROTOCOL, "region layout is not canonical"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(ocapn__shm_format(base, size, &g), 0);
		switch (cases[i].field) {
		case 0: h->magic = (uint32_t)cases[i].value; break;
		case 1: h->version = (uint16_t)cases[i].value; break;
		case 2: h->hdr_size = (uint16_t)cases[i].value; break;
		case 3: h->submit_slots = (uint32_t)cases[i].value; break;
		case 4: h->ack_slots = (uint32_t)cases[i].value; break;
		case 5: h->max_packet = (uint32_t)cases[i].value; break;
		case 6:
			h->bulk_off = 8192;
			h->bulk_size = cases[i].value;
			break;
		case 7: h->region_size = cases[i].value; break;
		case 8: h->ctl_off = cases[i].value; break;
		case 9: h->submit_off = cases[i].value; break;
		case 10: h->ack_off = cases[i].value; break;
		case 11: h->ack_off = h->submit_off + 64; break;
		}
		struct ocapn__shm_layout out;
		const char *why = "";
		int rc = ocapn__shm_attach(base, size, &out, &why);
		if (rc != cases[i].err || strcmp(why, cases[i].reason))
			fail_msg("case %zu: %s \"%s\"", i, ocapn_err_name(rc),
			    why);
	}
	/* The real size is what counts, whatever the header says. */
	assert_int_equal(ocapn__shm_format(base, size, &g), 0);
	struct ocapn__shm_layout out;
	const char *why = "";
	assert_int_equal(ocapn__shm_attach(base, size - 4096, &out, &why),
	    OCAPN_E_PROTOCOL);
	assert_string_equal(why, "region size differs from the header");
	assert_int_equal(ocapn__shm_attach(base, 40, &out, &why),
	    OCAPN_E_PROTOCOL);
	assert_string_equal(why, "region smaller than its header");
	assert_int_equal(ocapn__shm_attach(base, size, &out, &why), 0);
	free(base);
}

/* Rewriting the header after attach changes nothing: it was read once. */
static void
test_header_read_once(void **state)
{
	(void)state;
	struct rig r;
	rig_new(&r, 4, 8192, 1024, 4096, 64);
	struct ocapn__shm_hdr *h = (struct ocapn__shm_hdr *)(void *)r.R;
	memset(h, 0xff, sizeof(*h));
	assert_int_equal(send1(r.p, "hello", 5), OCAPN_OK);
	struct ocapn__shm_msg m;
	assert_int_equal(ocapn__shm_ep_recv(r.v, &m), OCAPN_OK);
	assert_int_equal(m.len, 5);
	assert_memory_equal(m.data, "hello", 5);
	assert_int_equal(ocapn__shm_ep_release(r.v, &m), 0);
	rig_free(&r);
}

/* ---- Descriptors ----------------------------------------------------- */

static void
test_bad_descriptors(void **state)
{
	(void)state;
	static const struct {
		uint32_t off, len, flags;
		const char *reason;
	} cases[] = {
		/* 2^32 - 4096: off + len wraps to 4096 in 32 bits. */
		{8192, 0xfffff000u, 3, "packet larger than max_packet"},
		{0xffffffc0u, 128, 3, "packet outside the bulk buffer"},
		{8192 - 64, 128, 3, "packet outside the bulk buffer"},
		{8192, 1, 3, "packet outside the bulk buffer"},
		{0, 0, 3, "empty packet"},
		{0, 2048, 3, "packet larger than max_packet"},
		{0, 16, 4, "descriptor with unknown flags"},
		{0, 16, 0x80000003u, "descriptor with unknown flags"},
		{0, 16, 2, "continuation fragment without a first fragment"},
		{0, 16, 0, "continuation fragment without a first fragment"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct rig r;
		rig_new(&r, 4, 8192, 1024, 4096, 64);
		put_desc(&r, 0, cases[i].off, cases[i].len, 0, cases[i].flags);
		struct ocapn__shm_msg m;
		int rc = ocapn__shm_ep_recv(r.v, &m);
		expect_abort(r.v, rc, cases[i].reason);
		rig_free(&r);
	}
	/* A range ending exactly at the end of the bulk buffer is fine. */
	struct rig r;
	rig_new(&r, 4, 8192, 1024, 4096, 64);
	put_desc(&r, 0, 8192 - 1024, 1024, 0, 3);
	struct ocapn__shm_msg m;
	assert_int_equal(ocapn__shm_ep_recv(r.v, &m), OCAPN_OK);
	assert_int_equal(m.len, 1024);
	assert_ptr_equal(m.data, r.R + r.l.bulk_off + 8192 - 1024);
	rig_free(&r);
}

static void
test_fragment_violations(void **state)
{
	(void)state;
	struct rig r;
	struct ocapn__shm_msg m;

	/* FIRST again inside a fragmented message. */
	rig_new(&r, 4, 8192, 1024, 4096, 64);
	put_desc(&r, 0, 0, 100, 0, OCAPN__SHM_FIRST);
	put_desc(&r, 1, 128, 100, 1, OCAPN__SHM_FIRST | OCAPN__SHM_LAST);
	expect_abort(r.v, ocapn__shm_ep_recv(r.v, &m),
	    "new message inside a fragmented one");
	rig_free(&r);

	/* Fragments adding up to more than max_msg (4096). */
	rig_new(&r, 4, 8192, 1024, 4096, 64);
	int rc = OCAPN_E_AGAIN;
	for (uint32_t i = 0; i < 5 && rc == OCAPN_E_AGAIN; i++) {
		put_desc(&r, i, 0, 1000, i, i == 0 ? OCAPN__SHM_FIRST : 0);
		rc = ocapn__shm_ep_recv(r.v, &m);
		/* Each fragment was acked at once; pretend to take acks. */
		atomic_store(&ctl(&r, r.R)->ack_tail.v, i + 1);
	}
	expect_abort(r.v, rc, "message larger than max_msg");
	rig_free(&r);

	/* A single packet larger than max_msg (max_msg 512 here). */
	rig_new(&r, 4, 8192, 1024, 512, 64);
	put_desc(&r, 0, 0, 600, 0, 3);
	expect_abort(r.v, ocapn__shm_ep_recv(r.v, &m),
	    "message larger than max_msg");
	rig_free(&r);
}

static void
test_index_jumps(void **state)
{
	(void)state;
	struct rig r;
	struct ocapn__shm_msg m;
	static const uint32_t heads[] = {5, 0xffffffffu, 0x80000000u, 1u << 20};
	for (size_t i = 0; i < sizeof(heads) / sizeof(heads[0]); i++) {
		rig_new(&r, 4, 8192, 1024, 4096, 64);
		atomic_store(&ctl(&r, r.R)->submit_head.v, heads[i]);
		/* A pending check must not be fooled either. */
		assert_true(ocapn__shm_ep_pending(r.v));
		expect_abort(r.v, ocapn__shm_ep_recv(r.v, &m),
		    "submit index jumped past the ring");
		rig_free(&r);
	}
	/* Exactly a full ring (4) is legal. */
	rig_new(&r, 4, 8192, 1024, 4096, 64);
	for (uint32_t i = 0; i < 4; i++)
		put_desc(&r, i, i * 256, 10, i, 3);
	for (uint32_t i = 0; i < 4; i++) {
		assert_int_equal(ocapn__shm_ep_recv(r.v, &m), OCAPN_OK);
		assert_int_equal(ocapn__shm_ep_release(r.v, &m), OCAPN_OK);
	}
	rig_free(&r);

	/* Ack index jumps: more acks than packets in flight. */
	rig_new(&r, 4, 8192, 1024, 4096, 64);
	assert_int_equal(send1(r.v, "a", 1), OCAPN_OK);
	atomic_store(&ctl(&r, r.T)->ack_head.v, 2);
	expect_abort(r.v, ocapn__shm_ep_poll(r.v),
	    "ack index moved past the packets in flight");
	rig_free(&r);

	rig_new(&r, 4, 8192, 1024, 4096, 64);
	atomic_store(&ctl(&r, r.T)->ack_head.v, 0xfffffff0u);
	expect_abort(r.v, ocapn__shm_ep_poll(r.v),
	    "ack index moved past the packets in flight");
	rig_free(&r);
}

/* ---- Acks ------------------------------------------------------------ */

/* The victim sends `n` packets; returns the seqs it put in descriptors. */
static void
victim_sends(struct rig *r, uint32_t n, uint32_t *seqs)
{
	for (uint32_t i = 0; i < n; i++) {
		assert_int_equal(send1(r->v, "payload", 7), OCAPN_OK);
		seqs[i] = atomic_load(&desc(r, r->T, i)->seq);
	}
}

static void
test_bad_acks(void **state)
{
	(void)state;
	struct rig r;
	uint32_t seq[4];

	/* Never sent. */
	rig_new(&r, 4, 8192, 1024, 4096, 64);
	victim_sends(&r, 1, seq);
	put_ack(&r, 0, seq[0] + 1, 0);
	expect_abort(r.v, ocapn__shm_ep_poll(r.v),
	    "ack for an unknown, stale or duplicate packet");
	rig_free(&r);

	/* Duplicate within one batch. */
	rig_new(&r, 4, 8192, 1024, 4096, 64);
	victim_sends(&r, 2, seq);
	put_ack(&r, 0, seq[0], 0);
	put_ack(&r, 1, seq[0], 0);
	expect_abort(r.v, ocapn__shm_ep_poll(r.v),
	    "ack for an unknown, stale or duplicate packet");
	rig_free(&r);

	/* Stale: acked once, taken, then acked again later. */
	rig_new(&r, 4, 8192, 1024, 4096, 64);
	victim_sends(&r, 2, seq);
	put_ack(&r, 0, seq[0], 0);
	assert_int_equal(ocapn__shm_ep_poll(r.v), OCAPN_OK);
	put_ack(&r, 1, seq[0], 0);
	expect_abort(r.v, ocapn__shm_ep_poll(r.v),
	    "ack for an unknown, stale or duplicate packet");
	rig_free(&r);

	/* Stale generation: the slot is live again for a newer packet, and
	 * the old seq must not free it. */
	rig_new(&r, 4, 8192, 1024, 4096, 64);
	victim_sends(&r, 1, seq);
	put_ack(&r, 0, seq[0], 0);
	assert_int_equal(ocapn__shm_ep_poll(r.v), OCAPN_OK);
	assert_int_equal(send1(r.v, "again", 5), OCAPN_OK);
	uint32_t newer = atomic_load(&desc(&r, r.T, 1)->seq);
	assert_int_equal(newer & 3, seq[0] & 3); /* same slot */
	assert_int_not_equal(newer, seq[0]);
	put_ack(&r, 1, seq[0], 0);
	expect_abort(r.v, ocapn__shm_ep_poll(r.v),
	    "ack for an unknown, stale or duplicate packet");
	rig_free(&r);

	/* Unknown status. */
	rig_new(&r, 4, 8192, 1024, 4096, 64);
	victim_sends(&r, 1, seq);
	put_ack(&r, 0, seq[0], 7);
	expect_abort(r.v, ocapn__shm_ep_poll(r.v), "ack with an unknown status");
	rig_free(&r);

	/* Acks also reach the victim inside send (when it is out of room). */
	rig_new(&r, 4, 8192, 1024, 4096, 64);
	victim_sends(&r, 4, seq);
	put_ack(&r, 0, 12345, 0);
	expect_abort(r.v, send1(r.v, "more", 4),
	    "ack for an unknown, stale or duplicate packet");
	rig_free(&r);
}

/* A sink that acks without consuming, then moves submit_tail past the
 * head. */
static void
test_submit_tail_jump(void **state)
{
	(void)state;
	struct rig r;
	uint32_t seq[4];
	rig_new(&r, 4, 8192, 1024, 4096, 64);
	victim_sends(&r, 4, seq);
	for (uint32_t i = 0; i < 4; i++)
		put_ack(&r, i, seq[i], 0);
	atomic_store(&ctl(&r, r.T)->submit_tail.v, 9);
	expect_abort(r.v, send1(r.v, "x", 1),
	    "submit tail moved outside the ring");
	rig_free(&r);

	/* Without the jump the victim just waits for ring room. */
	rig_new(&r, 4, 8192, 1024, 4096, 64);
	victim_sends(&r, 4, seq);
	for (uint32_t i = 0; i < 4; i++)
		put_ack(&r, i, seq[i], 0);
	assert_int_equal(send1(r.v, "x", 1), OCAPN_E_AGAIN);
	atomic_store(&ctl(&r, r.T)->submit_tail.v, 4);
	assert_int_equal(send1(r.v, "x", 1), OCAPN_OK);
	rig_free(&r);
}

/* A raw source that never takes its acks fills the victim's ack ring. */
static void
test_acks_not_taken(void **state)
{
	(void)state;
	struct rig r;
	struct ocapn__shm_msg m;
	rig_new(&r, 4, 8192, 1024, 4096, 64);
	int rc = OCAPN_OK;
	uint32_t i;
	for (i = 0; i < 8 && rc == OCAPN_OK; i++) {
		put_desc(&r, i, 0, 10, i, 3);
		rc = ocapn__shm_ep_recv(r.v, &m);
		if (rc == OCAPN_OK)
			rc = ocapn__shm_ep_release(r.v, &m);
	}
	expect_abort(r.v, rc, "peer does not take its acks");
	assert_int_equal(i, 5); /* four acks fit, the fifth does not */
	rig_free(&r);

	/* And one that moves ack_tail outside the ring. */
	rig_new(&r, 4, 8192, 1024, 4096, 64);
	rc = OCAPN_OK;
	for (i = 0; i < 8 && rc == OCAPN_OK; i++) {
		put_desc(&r, i, 0, 10, i, 3);
		if (i == 4)
			atomic_store(&ctl(&r, r.R)->ack_tail.v, 100);
		rc = ocapn__shm_ep_recv(r.v, &m);
		if (rc == OCAPN_OK)
			rc = ocapn__shm_ep_release(r.v, &m);
	}
	expect_abort(r.v, rc, "ack tail moved outside the ring");
	rig_free(&r);
}

/* ---- Bounded work ---------------------------------------------------- */

static void
test_bounded_work(void **state)
{
	(void)state;
	struct rig r;
	struct ocapn__shm_msg m;
	rig_new(&r, 64, 64u << 10, 1024, 1u << 20, 4);
	/* A flood of fragments: each recv call consumes at most 4. */
	for (uint32_t i = 0; i < 40; i++)
		put_desc(&r, i, 0, 16, i, i == 0 ? OCAPN__SHM_FIRST : 0);
	uint32_t calls = 0;
	for (;;) {
		uint32_t before = atomic_load(&ctl(&r, r.R)->submit_tail.v);
		int rc = ocapn__shm_ep_recv(r.v, &m);
		assert_int_equal(rc, OCAPN_E_AGAIN);
		uint32_t after = atomic_load(&ctl(&r, r.R)->submit_tail.v);
		assert_true(after - before <= 4);
		/* Stopped by the bound: the caller must not sleep. */
		if (after - before == 4)
			assert_false(ocapn__shm_ep_arm(r.v));
		calls++;
		/* Pretend the raw source takes its acks. */
		atomic_store(&ctl(&r, r.R)->ack_tail.v,
		    atomic_load(&ctl(&r, r.R)->ack_head.v));
		if (after == 40)
			break;
	}
	assert_int_equal(calls, 10);
	rig_free(&r);
}

/* ---- Payload flipped during decode ----------------------------------- */

struct flipper {
	uint8_t *p;
	size_t len;
	atomic_int stop;
	uint64_t flips;
};

static void *
flip_thread(void *arg)
{
	struct flipper *f = arg;
	uint64_t s = 88172645463325252ull;
	while (!atomic_load_explicit(&f->stop, memory_order_relaxed)) {
		s ^= s << 13;
		s ^= s >> 7;
		s ^= s << 17;
		/* A transient flip: the byte is wrong for a moment, then
		 * restored, so decodes see every mix of old and new. */
		size_t i = (size_t)(s % f->len);
		uint8_t bit = (uint8_t)(1u << ((s >> 32) & 7));
		f->p[i] ^= bit;
		for (volatile int k = 0; k < (int)((s >> 40) & 255); k++)
			;
		f->p[i] ^= bit;
		f->flips++;
	}
	return NULL;
}

static bool
inside_view(const void *p, const struct ocapn__shm_msg *m)
{
	const uint8_t *q = p;
	return q >= m->data && q < m->data + m->len;
}

/* Every decoded atom must live in the arena, never in the shared view. */
static void
check_copied(const ocapn_value *v, const struct ocapn__shm_msg *m)
{
	switch (v->kind) {
	case OCAPN_BYTES:
	case OCAPN_STRING:
	case OCAPN_SYMBOL:
		assert_false(v->len && inside_view(v->u.p, m));
		break;
	case OCAPN_INT:
		if (v->flags & OCAPN_VALUE_BIGINT)
			assert_false(inside_view(v->u.p, m));
		break;
	case OCAPN_LIST:
	case OCAPN_SET:
	case OCAPN_RECORD:
		for (uint32_t i = 0; i < v->len; i++)
			check_copied(&v->u.items[i], m);
		break;
	case OCAPN_DICT:
		for (uint32_t i = 0; i < 2 * v->len; i++)
			check_copied(&v->u.items[i], m);
		break;
	default:
		break;
	}
}

static void
test_payload_flipped_during_decode(void **state)
{
	(void)state;
	/* A message with every kind of atom, a few KiB long. */
	ocapn_syrup_writer *w = ocapn_syrup_writer_new(0, NULL);
	assert_non_null(w);
	ocapn_syrup_write_record_begin(w);
	ocapn_syrup_write_symbol(w, "op:deliver", 10);
	for (int k = 0; k < 20; k++) {
		ocapn_syrup_write_list_begin(w);
		ocapn_syrup_write_string(w, "h\xc3\xa9llo w\xc3\xb6rld", 14);
		ocapn_syrup_write_bytes(w, "\x00\x01\x02\x03 bytes", 10);
		ocapn_syrup_write_int(w, (int64_t)-123456789 * (k + 1));
		ocapn_syrup_write_bigint(w, k & 1, "123456789012345678901234567",
		    27);
		ocapn_syrup_write_float64(w, 1.5 * k);
		ocapn_syrup_write_bool(w, k & 1);
		ocapn_syrup_write_dict_begin(w);
		ocapn_syrup_write_symbol(w, "b", 1);
		ocapn_syrup_write_int(w, k);
		ocapn_syrup_write_symbol(w, "a", 1);
		ocapn_syrup_write_string(w, "x", 1);
		ocapn_syrup_write_dict_end(w);
		ocapn_syrup_write_set_begin(w);
		ocapn_syrup_write_int(w, 1);
		ocapn_syrup_write_int(w, 2);
		ocapn_syrup_write_set_end(w);
		ocapn_syrup_write_list_end(w);
	}
	ocapn_syrup_write_record_end(w);
	const uint8_t *enc;
	size_t enc_len;
	assert_int_equal(ocapn_syrup_writer_finish(w, &enc, &enc_len), 0);

	struct rig r;
	rig_new(&r, 4, 64u << 10, 16u << 10, 1u << 20, 64);
	assert_int_equal(send1(r.p, enc, enc_len), OCAPN_OK);
	struct ocapn__shm_msg m;
	assert_int_equal(ocapn__shm_ep_recv(r.v, &m), OCAPN_OK);
	assert_true(m.zero_copy);
	assert_int_equal(m.len, enc_len);

	ocapn_syrup_decoder *dec = ocapn_syrup_decoder_new(
	    OCAPN_SYRUP_COPY_ATOMS, NULL);
	ocapn_arena *arena = ocapn_arena_new(NULL);
	assert_non_null(dec);
	assert_non_null(arena);

	/* Untouched, it decodes and every atom is a private copy. */
	ocapn_value *v;
	assert_int_equal(ocapn_syrup_decode_one(dec, arena, m.data, m.len, &v),
	    0);
	check_copied(v, &m);

	struct flipper f = {(uint8_t *)(uintptr_t)m.data, m.len, 0, 0};
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, flip_thread, &f), 0);
	uint64_t ok = 0, bad = 0;
	for (int i = 0; i < 20000; i++) {
		ocapn_arena_reset(arena);
		int rc = ocapn_syrup_decode_one(dec, arena, m.data, m.len, &v);
		if (rc == OCAPN_OK) {
			ok++;
			check_copied(v, &m);
		} else {
			/* A clean failure with a reason and an offset
			 * inside the message. */
			size_t off = SIZE_MAX;
			const char *why = ocapn_syrup_decoder_error(dec, &off);
			assert_true(rc > 0 && rc < OCAPN_E__COUNT);
			assert_true(why[0] != '\0');
			assert_true(off <= m.len);
			bad++;
		}
	}
	atomic_store(&f.stop, 1);
	pthread_join(th, NULL);
	fprintf(stderr, "# %llu decodes ok, %llu refused, %llu flips\n",
	    (unsigned long long)ok, (unsigned long long)bad,
	    (unsigned long long)f.flips);
	assert_true(ok + bad == 20000);
	assert_int_equal(ocapn__shm_ep_release(r.v, &m), 0);
	ocapn_arena_free(arena);
	ocapn_syrup_decoder_free(dec);
	ocapn_syrup_writer_free(w);
	rig_free(&r);
}

/* ---- Honest traffic still works after all this ----------------------- */

static void
test_honest_pair(void **state)
{
	(void)state;
	struct rig r;
	rig_new(&r, 4, 4096, 1024, 1u << 16, 64);
	/* Out-of-order release and fragmentation through a tiny buffer. */
	static uint8_t big[10000];
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)(i * 7);
	struct ocapn__shm_msg held[2];
	assert_int_equal(send1(r.p, "one", 3), OCAPN_OK);
	assert_int_equal(send1(r.p, "two", 3), OCAPN_OK);
	assert_int_equal(ocapn__shm_ep_recv(r.v, &held[0]), OCAPN_OK);
	assert_int_equal(ocapn__shm_ep_recv(r.v, &held[1]), OCAPN_OK);
	assert_int_equal(ocapn__shm_ep_release(r.v, &held[1]), OCAPN_OK);
	assert_int_equal(ocapn__shm_ep_release(r.v, &held[0]), OCAPN_OK);
	int rc;
	struct ocapn__shm_msg m;
	while ((rc = send1(r.p, big, sizeof(big))) == OCAPN_E_AGAIN) {
		rc = ocapn__shm_ep_recv(r.v, &m);
		assert_int_equal(rc, OCAPN_E_AGAIN);
		assert_int_equal(ocapn__shm_ep_poll(r.p), OCAPN_OK);
	}
	assert_int_equal(rc, OCAPN_OK);
	assert_int_equal(ocapn__shm_ep_recv(r.v, &m), OCAPN_OK);
	assert_int_equal(m.len, sizeof(big));
	assert_false(m.zero_copy);
	assert_memory_equal(m.data, big, sizeof(big));
	assert_int_equal(ocapn__shm_ep_release(r.v, &m), OCAPN_OK);
	assert_int_equal(ocapn__shm_ep_poll(r.p), OCAPN_OK);
	assert_null(ocapn__shm_ep_check(r.p));
	struct ocapn__shm_ep_stats st;
	ocapn__shm_ep_stats(r.p, &st);
	assert_int_equal(st.inflight, 0);
	assert_int_equal(st.bulk_used, 0);
	/* Close: the reader drains, then sees OCAPN_E_CLOSED. */
	assert_int_equal(send1(r.p, "last", 4), OCAPN_OK);
	ocapn__shm_ep_close(r.p);
	assert_int_equal(send1(r.p, "late", 4), OCAPN_E_CLOSED);
	assert_int_equal(ocapn__shm_ep_recv(r.v, &m), OCAPN_OK);
	assert_int_equal(ocapn__shm_ep_release(r.v, &m), OCAPN_OK);
	assert_int_equal(ocapn__shm_ep_recv(r.v, &m), OCAPN_E_CLOSED);
	rig_free(&r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_header_validation),
		cmocka_unit_test(test_header_read_once),
		cmocka_unit_test(test_bad_descriptors),
		cmocka_unit_test(test_fragment_violations),
		cmocka_unit_test(test_index_jumps),
		cmocka_unit_test(test_bad_acks),
		cmocka_unit_test(test_submit_tail_jump),
		cmocka_unit_test(test_acks_not_taken),
		cmocka_unit_test(test_bounded_work),
		cmocka_unit_test(test_payload_flipped_during_decode),
		cmocka_unit_test(test_honest_pair),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
