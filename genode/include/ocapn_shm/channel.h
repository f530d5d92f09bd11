/*
 * libocapn shm channel: the C platform interface between the portable
 * ring core (src/netlayers/shm/ring.c) and a platform's glue.
 *
 * The glue maps two regions (the one this side sends into and the one it
 * receives from), delivers doorbell signals by calling
 * ocapn_shm_channel_progress(), and rings the peer through the callback
 * it passes at creation.  On Genode the regions are RAM dataspaces of an
 * Ocapn_shm session and the doorbells are signal contexts (see
 * genode/src/); the same calls are exercised on Linux by
 * tests/test_shm_channel_capi.c.
 *
 * Plain C, no C11 atomics in the interface, so C++ glue can include it.
 * Modelled on Genode's genode_c_api (e.g. genode_c_api/uplink.h): an
 * opaque handle, receive by callback with a pointer into the shared
 * buffer that is valid during the call only.
 */
#ifndef OCAPN_SHM_CHANNEL_H
#define OCAPN_SHM_CHANNEL_H

#ifdef __cplusplus
extern "C" {
#endif

/* Error values are those of libocapn's ocapn_err (ocapn/common.h). */
#define OCAPN_SHM_CHANNEL_OK 0
#define OCAPN_SHM_CHANNEL_AGAIN 21 /* OCAPN_E_AGAIN */

struct ocapn_shm_channel; /* opaque, implemented over ring.c */

struct ocapn_shm_geometry {
	unsigned long slots;      /* power of two, 2..65536 */
	unsigned long max_packet; /* <= bulk_size / 2 */
	unsigned long bulk_size;  /* multiple of 64 */
};

/* Bytes a region with geometry `g` needs; 0 if `g` is invalid. */
unsigned long ocapn_shm_region_size(struct ocapn_shm_geometry const *g);

/* Format a fresh, zeroed region of exactly ocapn_shm_region_size() bytes
 * before it is handed over.  0 on success. */
int ocapn_shm_region_format(void *base, unsigned long size,
    struct ocapn_shm_geometry const *g);

/* Submit a signal to the peer (Genode: Signal_transmitter::submit). */
typedef void (*ocapn_shm_ring_fn)(void *ring_ctx);

/*
 * Create a channel over the region we send into (`tx`, formatted with a
 * canonical header whose ack slots equal its submit slots) and the region
 * we receive from (`rx`).  Both headers are snapshotted and validated
 * against the sizes given (the sizes the platform attached).  Returns
 * NULL with *reason (static) on failure.  Free with
 * ocapn_shm_channel_destroy(); the regions stay the caller's.
 */
struct ocapn_shm_channel *ocapn_shm_channel_create(void *tx,
    unsigned long tx_size, void *rx, unsigned long rx_size,
    unsigned long max_msg_in, unsigned long max_msg_out,
    ocapn_shm_ring_fn ring, void *ring_ctx, char const **reason);

void ocapn_shm_channel_destroy(struct ocapn_shm_channel *ch);

/* From the doorbell's signal handler: take acks, clear want flags.
 * 0 or the channel's sticky error. */
int ocapn_shm_channel_progress(struct ocapn_shm_channel *ch);

/* Send one message (copied into the shared buffer).  0, or
 * OCAPN_SHM_CHANNEL_AGAIN: no room; call again with the same bytes after
 * the next signal.  Other values are errors (the channel is aborted for
 * protocol errors). */
int ocapn_shm_channel_send(struct ocapn_shm_channel *ch, void const *buf,
    unsigned long len);

/*
 * Hand up to `max` whole messages to `fn`, each acked (or freed) when
 * `fn` returns.  `msg` may point into the peer's region: decode it in one
 * pass and copy what you keep.  Returns the number delivered (>= 0) or
 * the negated error.
 */
typedef void (*ocapn_shm_rx_fn)(void *ctx, char const *msg,
    unsigned long len);
long ocapn_shm_channel_rx(struct ocapn_shm_channel *ch, ocapn_shm_rx_fn fn,
    void *ctx, unsigned max);

/* Before the component goes idle: ask the peer to signal us and look
 * again.  Returns 1 if work is already pending (call rx/send again), 0 if
 * sleeping until the next signal is safe. */
int ocapn_shm_channel_arm(struct ocapn_shm_channel *ch);

/* Sticky error (0 while healthy) and its reason (static). */
int ocapn_shm_channel_error(struct ocapn_shm_channel const *ch,
    char const **reason);

#ifdef __cplusplus
}
#endif

#endif /* OCAPN_SHM_CHANNEL_H */
