/*
 * The shm channel on Linux: sealed memfd regions, eventfd doorbells and
 * an AF_UNIX SOCK_SEQPACKET control socket carrying them (SCM_RIGHTS).
 * Internal API (ocapn__shm_*), used by the shm netlayer, the tests and
 * the benchmark.  Never installed.
 *
 * Everything is non-blocking and nothing starts a thread.  A loop drives
 * a connection like this:
 *
 *   for (;;) {
 *       while (ocapn__shm_recv(c, &m) == OCAPN_OK) { use(m); release(m); }
 *       ...send what is queued; OCAPN_E_AGAIN keeps it queued...
 *       if (!ocapn__shm_arm(c))
 *           continue;                   // work arrived meanwhile
 *       n = ocapn__shm_pollfds(c, pfd); // doorbell + control socket
 *       poll(pfd, n, -1);
 *       ocapn__shm_progress(c, ocapn__shm_ready(pfd, n));
 *   }
 *
 * Errors: OCAPN_E_AGAIN (would block), OCAPN_E_CLOSED (the peer closed or
 * died: ocapn__shm_reason() tells which), OCAPN_E_PROTOCOL (the peer broke
 * the protocol; the connection is aborted), OCAPN_E_IO (a system call
 * failed), OCAPN_E_NOMEM, OCAPN_E_INVAL, OCAPN_E_LIMIT.
 */
#ifndef OCAPN_SHM_LINUX_H
#define OCAPN_SHM_LINUX_H

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ocapn/common.h>

#include "ring.h"

/* ---- Control protocol (fixed 16-byte records) ---------------------- */

#define OCAPN__SHM_CTL_MAGIC 0x4353434fu /* "OCSC" stored little-endian */
#define OCAPN__SHM_CTL_VERSION 1u

enum ocapn__shm_ctl_type {
	OCAPN__SHM_CTL_OFFER = 1,  /* initiator: fds [memfd, doorbell] */
	OCAPN__SHM_CTL_ACCEPT = 2, /* acceptor: fds [memfd, doorbell] */
	OCAPN__SHM_CTL_CLOSE = 3,  /* graceful close, no fds */
	OCAPN__SHM_CTL_REJECT = 4  /* handshake refused, `code` says why */
};

struct ocapn__shm_ctlmsg {
	uint32_t magic;
	uint16_t version;
	uint16_t type;
	uint32_t max_msg; /* OFFER/ACCEPT: largest message the sender takes */
	uint32_t code;    /* REJECT: an ocapn_err value */
};

/* ---- Parameters ---------------------------------------------------- */

typedef struct ocapn__shm_conn ocapn__shm_conn;
typedef struct ocapn__shm_listener ocapn__shm_listener;

/*
 * Authentication hook, run inside the rings after they are up and before
 * the connection is ready for the application (the place for the
 * designator proof: a challenge and an Ed25519 signature).  Both sides
 * run it; application messages wait until `recv` reports done, so the
 * hook must know how many messages the peer's part of the exchange has.
 */
struct ocapn__shm_auth_ops {
	/* The rings are up: send the first messages (ocapn__shm_auth_send).
	 * An error aborts the connection. */
	int (*start)(void *user, ocapn__shm_conn *c);
	/* One message from the peer, valid during the call.  Set *done when
	 * the peer is authenticated; later messages go to the application.
	 * An error aborts the connection. */
	int (*recv)(void *user, ocapn__shm_conn *c, const uint8_t *msg,
	    size_t len, bool *done);
	void *user;
};

struct ocapn__shm_params {
	uint32_t slots;           /* submit/ack slots of our region (64) */
	uint64_t bulk_size;       /* our bulk buffer (4 MiB) */
	uint32_t max_packet;      /* our largest packet (bulk_size / 2) */
	uint32_t max_msg;         /* largest message we accept (16 MiB) */
	uint64_t max_peer_region; /* largest peer region we map (1 GiB) */
	uint32_t work_bound;      /* packets per recv call (64) */
	bool defer_rings;         /* doorbells wait for ocapn__shm_flush or
	                           * ocapn__shm_arm (false) */
	const struct ocapn__shm_auth_ops *auth; /* NULL: none */
};

void ocapn__shm_params_default(struct ocapn__shm_params *p);

/* ---- Listening and connecting -------------------------------------- */

/*
 * Listen on the AF_UNIX path `path`, whose directory must be a private
 * directory of ours (owned by the effective uid, no group or other
 * permissions): the path is a rendezvous point, and only what a peer is
 * handed (the fds over the control socket) grants authority.
 * OCAPN_E_INVAL (path too long, directory not private), OCAPN_E_EXISTS
 * (path exists), OCAPN_E_IO, OCAPN_E_NOMEM.  Free with
 * ocapn__shm_listener_close(), which also unlinks the path when called
 * by the process that listened (not by a forked child).
 */
int ocapn__shm_listen(const char *path, const struct ocapn__shm_params *p,
    const ocapn_allocator *alloc, ocapn__shm_listener **out);
/* The listening socket, to poll for POLLIN. */
int ocapn__shm_listener_fd(const ocapn__shm_listener *l);
/* Accept one pending connection (the handshake then runs in
 * ocapn__shm_progress).  OCAPN_E_AGAIN when none is pending. */
int ocapn__shm_accept(ocapn__shm_listener *l, ocapn__shm_conn **out);
void ocapn__shm_listener_close(ocapn__shm_listener *l);

/*
 * Connect to the listener at `path` and send our offer.  The connection
 * is usable once ocapn__shm_state() says READY (drive it with
 * ocapn__shm_progress).  OCAPN_E_CONNREFUSED (nobody listens),
 * OCAPN_E_AGAIN (the listener's backlog is full: try again later),
 * OCAPN_E_INVAL, OCAPN_E_IO, OCAPN_E_NOMEM.
 */
int ocapn__shm_connect(const char *path, const struct ocapn__shm_params *p,
    const ocapn_allocator *alloc, ocapn__shm_conn **out);

/*
 * Run the handshake over an already connected SOCK_SEQPACKET socket
 * (e.g. one end of a socketpair handed over by an introducer).  Takes
 * ownership of `fd` in every case.  Exactly one side is the initiator.
 */
int ocapn__shm_conn_from_socket(int fd, bool initiator,
    const struct ocapn__shm_params *p, const ocapn_allocator *alloc,
    ocapn__shm_conn **out);

/* ---- Driving a connection ------------------------------------------ */

enum ocapn__shm_state {
	OCAPN__SHM_HANDSHAKE = 1, /* exchanging regions over the socket */
	OCAPN__SHM_AUTH,          /* rings up, authentication hook running */
	OCAPN__SHM_READY,         /* application messages flow */
	OCAPN__SHM_DONE           /* closed or failed: see ocapn__shm_error */
};

int ocapn__shm_state(const ocapn__shm_conn *c);

/* Fill `pfd` (room for 2) with the fds to poll and their events; returns
 * how many.  The doorbell is pollable only once the rings are up. */
int ocapn__shm_pollfds(const ocapn__shm_conn *c, struct pollfd *pfd);

#define OCAPN__SHM_READY_BELL 1u
#define OCAPN__SHM_READY_CTL 2u
#define OCAPN__SHM_READY_ALL 3u
/* Summarise the poll results of entries ocapn__shm_pollfds filled (other
 * entries of the array are ignored). */
unsigned ocapn__shm_ready(const ocapn__shm_conn *c, const struct pollfd *pfd,
    int n);

/*
 * Do every pending non-blocking step: read the control socket (handshake,
 * close, hang-up) if `ready` has READY_CTL, drain the doorbell if it has
 * READY_BELL, take acks, run the authentication hook.  Returns OCAPN_OK
 * or the connection's sticky error.
 */
int ocapn__shm_progress(ocapn__shm_conn *c, unsigned ready);

/*
 * The sleep half of the wakeup protocol (ocapn__shm_ep_arm): true if the
 * caller may poll and sleep now; false if there is work already.  During
 * the handshake it is always true.
 */
bool ocapn__shm_arm(ocapn__shm_conn *c);

/*
 * With `defer_rings`: ring the peer (if it asked) for everything
 * published since the last flush, at most one ring (see
 * ocapn__shm_ep_defer).  ocapn__shm_arm() flushes first; a caller that
 * waits for the peer without arming (it busy-polls) flushes before.
 * Nothing to do before the rings exist.
 */
void ocapn__shm_flush(ocapn__shm_conn *c);

/*
 * Busy-poll the rings (no system call) for up to the current spin budget;
 * true as soon as there is work.  The budget adapts between 1 us and
 * `max_ns`: it doubles after a spin that found work, halves after one
 * that timed out, and every 16th spin probes with the full `max_ns`, so
 * spinning stops costing much when the peer shares our CPU or is idle
 * (docs/shm.md, "Busy-poll policy").  Flushes deferred doorbells first.
 */
bool ocapn__shm_spin(ocapn__shm_conn *c, uint64_t max_ns);

/* ---- Messages ------------------------------------------------------ */

/* Send one message (copied into the shared buffer).  OCAPN_E_AGAIN while
 * the handshake runs or the rings are full: for a fragmented message
 * call again with the same bytes (see ocapn__shm_ep_send). */
int ocapn__shm_send(ocapn__shm_conn *c, const void *buf, size_t len);
int ocapn__shm_sendv(ocapn__shm_conn *c, const struct ocapn__shm_iov *iov,
    size_t n);

/* Receive the next message: see ocapn__shm_ep_recv for views and their
 * rules.  OCAPN_E_CLOSED once the peer closed (or died) and every whole
 * message it sent was read. */
int ocapn__shm_recv(ocapn__shm_conn *c, struct ocapn__shm_msg *m);
int ocapn__shm_release(ocapn__shm_conn *c, struct ocapn__shm_msg *m);

/* For the authentication hook: send during the AUTH state. */
int ocapn__shm_auth_send(ocapn__shm_conn *c, const void *buf, size_t len);

/* ---- Closing ------------------------------------------------------- */

/* Graceful close: the peer reads what we sent, then OCAPN_E_CLOSED.
 * The connection stays readable until the peer closes too. */
int ocapn__shm_close(ocapn__shm_conn *c);
/* Close every fd, unmap, free. */
void ocapn__shm_free(ocapn__shm_conn *c);

/* Sticky error (OCAPN_OK while healthy) and a reason (static, "" if
 * none). */
int ocapn__shm_error(const ocapn__shm_conn *c, const char **reason);

/* True once the peer sent CLOSE (a graceful end; without it, an end of
 * the connection is the peer's death or a failure). */
bool ocapn__shm_peer_closed(const ocapn__shm_conn *c);

/* The endpoint, for statistics in tests (NULL before the rings are up). */
ocapn__shm_ep *ocapn__shm_endpoint(ocapn__shm_conn *c);

#endif /* OCAPN_SHM_LINUX_H */
