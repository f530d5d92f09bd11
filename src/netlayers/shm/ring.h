/*
 * Shared-memory packet rings: the portable core of the shm netlayer.
 *
 * No system calls, no threads, no clock.  The platform layer (Linux:
 * shm_linux.c; Genode: genode/ glue) provides two mapped regions and a
 * doorbell callback; everything else is here, so the same code runs and is
 * tested everywhere.  See docs/shm.md for the protocol.
 *
 * An endpoint owns two regions:
 *   - its *tx* region, created and formatted by itself, in which it is the
 *     source (it allocates bulk ranges and submits descriptors) and the peer
 *     is the sink (it consumes descriptors and returns acks);
 *   - its *rx* region, created by the peer, in which the roles are reversed.
 * Both regions are mapped read-write by both sides, so every value read
 * from either one is hostile input: it is copied into private memory once
 * and validated there, and any violation aborts the endpoint with a reason.
 *
 * Every shared load, store and fence goes through the OCAPN__SHM_* macros
 * below.  The model-checking test compiles this file with
 * OCAPN_SHM_MODEL defined, which turns each of them into a call to a
 * scheduler that may switch endpoints or delay stores (a TSO store buffer)
 * between any two shared accesses.
 */
#ifndef OCAPN_SHM_RING_H
#define OCAPN_SHM_RING_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ocapn/common.h>

#ifdef __cplusplus
extern "C" {
#endif

#define OCAPN__SHM_MAGIC 0x4853434fu /* "OCSH" stored little-endian */
#define OCAPN__SHM_VERSION 1u
#define OCAPN__SHM_LINE 64u     /* one cache line per shared index */
#define OCAPN__SHM_BLOCK 64u    /* bulk allocation granule */
#define OCAPN__SHM_MIN_SLOTS 2u
#define OCAPN__SHM_MAX_SLOTS 65536u
#define OCAPN__SHM_MAX_BULK (1u << 31) /* descriptors hold u32 off/len */

/* Descriptor flags. */
#define OCAPN__SHM_FIRST 1u
#define OCAPN__SHM_LAST 2u

/*
 * Region header, written by the region's creator before handover.  The
 * other side snapshots it once when it attaches and never reads it again.
 * Explicit padding keeps the layout identical on every ABI.
 */
struct ocapn__shm_hdr {
	uint32_t magic;
	uint16_t version;
	uint16_t hdr_size;     /* sizeof(struct ocapn__shm_hdr) */
	uint32_t submit_slots; /* power of two */
	uint32_t ack_slots;    /* power of two, >= submit_slots */
	uint32_t max_packet;   /* 1 .. bulk_size / 2 */
	uint32_t reserved0;
	uint64_t ctl_off;
	uint64_t submit_off;
	uint64_t ack_off;
	uint64_t bulk_off;
	uint64_t bulk_size;
	uint64_t region_size;
};

/* One shared index per cache line; each line has exactly one writer. */
struct ocapn__shm_line {
	_Alignas(OCAPN__SHM_LINE) _Atomic uint32_t v;
};

struct ocapn__shm_ctl {
	struct ocapn__shm_line submit_head;  /* source: descriptors published */
	struct ocapn__shm_line submit_tail;  /* sink: descriptors consumed */
	struct ocapn__shm_line ack_head;     /* sink: acks published */
	struct ocapn__shm_line ack_tail;     /* source: acks consumed */
	struct ocapn__shm_line sink_wants;   /* sink: ring me on submit */
	struct ocapn__shm_line source_wants; /* source: ring me on ack */
	struct ocapn__shm_line closed;       /* source: no more packets */
};

/* A descriptor: four words, each read once (relaxed) by the sink. */
struct ocapn__shm_desc {
	_Atomic uint32_t off, len, seq, flags;
};

/* An ack names a packet by the seq of its descriptor, never a range. */
struct ocapn__shm_ack {
	_Atomic uint32_t seq, status;
};

/* ---- Shared-access macros ------------------------------------------ */

#ifdef OCAPN_SHM_MODEL
/* Provided by the model-checking test (tests/test_shm_model.c). */
uint32_t ocapn__shm_model_load(_Atomic uint32_t *p, int acquire);
void ocapn__shm_model_store(_Atomic uint32_t *p, uint32_t v, int release);
void ocapn__shm_model_fence(void);
#define OCAPN__SHM_LOAD_ACQ(p) ocapn__shm_model_load((p), 1)
#define OCAPN__SHM_LOAD_RLX(p) ocapn__shm_model_load((p), 0)
#define OCAPN__SHM_STORE_REL(p, x) ocapn__shm_model_store((p), (x), 1)
#define OCAPN__SHM_STORE_RLX(p, x) ocapn__shm_model_store((p), (x), 0)
#define OCAPN__SHM_FENCE() ocapn__shm_model_fence()
/* Deliberate bugs the model must find (0 = none): see test_shm_model.c. */
extern int ocapn__shm_model_mutant;
#define OCAPN__SHM_MUTANT(n) (ocapn__shm_model_mutant == (n))
#else
#define OCAPN__SHM_MUTANT(n) 0
#define OCAPN__SHM_LOAD_ACQ(p) \
	atomic_load_explicit((p), memory_order_acquire)
#define OCAPN__SHM_LOAD_RLX(p) \
	atomic_load_explicit((p), memory_order_relaxed)
#define OCAPN__SHM_STORE_REL(p, x) \
	atomic_store_explicit((p), (x), memory_order_release)
#define OCAPN__SHM_STORE_RLX(p, x) \
	atomic_store_explicit((p), (x), memory_order_relaxed)
#define OCAPN__SHM_FENCE() atomic_thread_fence(memory_order_seq_cst)
#endif

/* ---- Geometry ------------------------------------------------------ */

/* What a creator chooses for its tx region. */
struct ocapn__shm_geom {
	uint32_t slots;      /* submit and ack slots: power of two, 2..65536 */
	uint32_t max_packet; /* largest packet, <= bulk_size / 2 */
	uint64_t bulk_size;  /* multiple of OCAPN__SHM_BLOCK, <= MAX_BULK */
};

/* The validated layout of a region, computed privately. */
struct ocapn__shm_layout {
	uint32_t submit_slots, ack_slots, max_packet;
	uint64_t ctl_off, submit_off, ack_off, bulk_off, bulk_size;
	uint64_t region_size;
};

/*
 * Compute the layout for `g`.  OCAPN_E_INVAL (with *reason) if the
 * geometry is not acceptable.
 */
int ocapn__shm_layout(const struct ocapn__shm_geom *g,
    struct ocapn__shm_layout *out, const char **reason);

/*
 * Write the header and zero the control area of a fresh region of
 * `size` bytes (which must equal the layout's region_size).  Called by the
 * creator before the region is handed over.
 */
int ocapn__shm_format(void *base, size_t size,
    const struct ocapn__shm_geom *g);

/*
 * Snapshot the header of a peer-created region of `size` bytes (the size
 * the platform verified, e.g. by fstat on a sealed memfd) and validate it:
 * magic, version, power-of-two slots, offsets equal to the canonical
 * layout, every area inside the region (checked in subtraction form),
 * max_packet <= bulk_size / 2.  The result is private; the header is
 * never read again.  OCAPN_E_VERSION or OCAPN_E_PROTOCOL with *reason.
 */
int ocapn__shm_attach(const void *base, size_t size,
    struct ocapn__shm_layout *out, const char **reason);

/* ---- Endpoint ------------------------------------------------------ */

typedef struct ocapn__shm_ep ocapn__shm_ep;

/* Ring the peer's doorbell (Linux: write its eventfd; Genode:
 * Signal_transmitter::submit).  Must not block. */
typedef void (*ocapn__shm_ring_fn)(void *user);

struct ocapn__shm_ep_config {
	uint32_t max_msg_in;    /* largest message we accept (reassembly) */
	uint32_t max_msg_out;   /* largest message the peer accepts */
	uint32_t work_bound;    /* packets consumed per recv call, >= 1 */
	uint64_t view_bytes;    /* zero-copy bytes the application may pin;
	                         * 0 = half the peer's bulk buffer */
	uint32_t view_count;    /* zero-copy views the application may pin;
	                         * 0 = half the peer's submit slots */
};

/*
 * A received message.  `data` and `len` are valid until the message is
 * released with ocapn__shm_ep_release().  For a single-packet message
 * `data` points into the peer's region (zero copy): the peer can rewrite
 * the bytes at any time, so decode them in one pass and copy what escapes
 * (the Syrup decoder's OCAPN_SYRUP_COPY_ATOMS).  Otherwise `data` points
 * into private memory.  `token` identifies the message to release.
 */
struct ocapn__shm_msg {
	const uint8_t *data;
	size_t len;
	uint32_t token;
	bool zero_copy;
};

/* Gather-list element for sending. */
struct ocapn__shm_iov {
	const void *base;
	size_t len;
};

/*
 * Create an endpoint over a tx region the caller formatted with `g` and an
 * rx region it attached (layout `rxl`).  The endpoint does not own the
 * mappings.  OCAPN_E_NOMEM, OCAPN_E_INVAL.
 */
int ocapn__shm_ep_new(ocapn__shm_ep **out, const ocapn_allocator *alloc,
    void *tx_base, const struct ocapn__shm_geom *g,
    void *rx_base, const struct ocapn__shm_layout *rxl,
    const struct ocapn__shm_ep_config *cfg,
    ocapn__shm_ring_fn ring, void *ring_user);

/* Free the endpoint and every private buffer.  Held messages become
 * invalid; no acks are sent for them. */
void ocapn__shm_ep_free(ocapn__shm_ep *ep);

/*
 * Send one message made of `n` pieces.  Messages of at most max_packet
 * bytes go as one packet; longer ones are fragmented.
 *
 * OCAPN_OK: the whole message is in the rings.
 * OCAPN_E_AGAIN: no room (submit slots, bulk space or in-flight packets);
 *   a prefix of the message may already be committed, in which case the
 *   caller must call again with the same message (same total length and
 *   bytes) before sending anything else.  The endpoint asks the peer to
 *   ring when acks arrive; call again after the doorbell rang.
 * OCAPN_E_LIMIT: longer than the peer's max_msg (nothing sent).
 * OCAPN_E_INVAL: empty message, or a different message while one is
 *   partly sent.
 * OCAPN_E_CLOSED, OCAPN_E_PROTOCOL: the endpoint is closed or aborted.
 */
int ocapn__shm_ep_send(ocapn__shm_ep *ep, const struct ocapn__shm_iov *iov,
    size_t n);

/*
 * Receive the next whole message.  Consumes at most work_bound packets.
 * OCAPN_OK: *msg is filled; release it with ocapn__shm_ep_release().
 * OCAPN_E_AGAIN: no whole message yet (ocapn__shm_ep_pending() tells
 *   whether the work bound stopped it).
 * OCAPN_E_CLOSED: the peer closed its direction and everything was read.
 * OCAPN_E_PROTOCOL: the peer violated the protocol (see reason).
 * OCAPN_E_NOMEM: no memory for a private copy; the endpoint is aborted.
 */
int ocapn__shm_ep_recv(ocapn__shm_ep *ep, struct ocapn__shm_msg *msg);

/*
 * Release a received message: a zero-copy view is acked now; private
 * copies are freed.  OCAPN_E_INVAL for a token that is not held.
 */
int ocapn__shm_ep_release(ocapn__shm_ep *ep, struct ocapn__shm_msg *msg);

/*
 * Take acks the peer returned and free their bulk ranges; clear our
 * want-wakeup flags (we are awake).  Call after the doorbell rang.
 * OCAPN_OK or the sticky error.
 */
int ocapn__shm_ep_poll(ocapn__shm_ep *ep);

/*
 * The sleep half of the wakeup protocol: flush deferred doorbells, publish
 * "ring me" (for incoming packets always, for acks if a send is blocked),
 * fence, and look again.
 * Returns true if the caller may sleep on its doorbell: every later
 * publication by the peer will ring it.  Returns false if work is already
 * there (or the endpoint failed): do not sleep, call recv/send again.
 */
bool ocapn__shm_ep_arm(ocapn__shm_ep *ep);

/*
 * Deferred doorbells (off by default).  While on, a send or an ack
 * publishes its index at once but does not look at the peer's want flag
 * or ring: the caller calls ocapn__shm_ep_flush() once after a burst,
 * which does both for everything published since (at most one ring).
 * ocapn__shm_ep_arm() flushes first, so a caller that arms before every
 * sleep never sleeps on an unsignalled publication; a caller that does
 * not arm (it busy-polls, or it simply goes on working) must flush
 * before it waits for the peer.  Turning it off flushes.
 */
void ocapn__shm_ep_defer(ocapn__shm_ep *ep, bool on);
/* Whether a publication still waits for its flush. */
bool ocapn__shm_ep_owed(const ocapn__shm_ep *ep);
void ocapn__shm_ep_flush(ocapn__shm_ep *ep);

/*
 * Cheap check without side effects: is there something to do (a packet
 * to read, an ack to take, or work left by the bound)?  Used to busy-poll
 * before arming.
 */
bool ocapn__shm_ep_pending(const ocapn__shm_ep *ep);

/* Close our direction: the peer reads what was sent, then gets
 * OCAPN_E_CLOSED.  Rings the peer. */
void ocapn__shm_ep_close(ocapn__shm_ep *ep);

/* Abort with an error and a reason (static string); sticky. */
int ocapn__shm_ep_abort(ocapn__shm_ep *ep, int err, const char *reason);

/* Sticky error (OCAPN_OK while healthy) and its reason ("" if none). */
int ocapn__shm_ep_error(const ocapn__shm_ep *ep, const char **reason);

/* Statistics and invariant checks, for tests. */
struct ocapn__shm_ep_stats {
	uint32_t inflight;      /* packets submitted and not yet acked */
	uint32_t inflight_max;  /* bound: submit slots */
	uint64_t bulk_used;     /* bytes allocated in our bulk buffer */
	uint32_t views_held;    /* messages handed out and not released */
	uint64_t rings;         /* doorbells rung */
	uint64_t packets_tx, packets_rx;
};
void ocapn__shm_ep_stats(const ocapn__shm_ep *ep,
    struct ocapn__shm_ep_stats *st);

/*
 * Check the private invariants of the source side: in-flight packets at
 * most submit slots, their ranges inside the bulk buffer and pairwise
 * disjoint, the allocator's bitmap equal to their union.  Returns NULL or
 * a description of the first violation.  O(bulk blocks); tests only.
 */
const char *ocapn__shm_ep_check(const ocapn__shm_ep *ep);

#ifdef __cplusplus
}
#endif

#endif /* OCAPN_SHM_RING_H */
