/*
 * The session struct and internals shared by the engine's files
 * (session.c, handoff.c).  Never installed.
 */
#ifndef OCAPN_SESSION_INTERNAL_H
#define OCAPN_SESSION_INTERNAL_H

#include "captp_internal.h"

struct export_entry {
	ocapn_ref *ref; /* strong */
	uint64_t pos;
	uint64_t count; /* descriptors sent and not yet collected */
};

struct pending_export {
	ocapn_ref *ref;
	uint64_t pos;
	struct export_entry *existing; /* NULL: new position */
	uint64_t add;
};

/* Output: a buffer of whole messages plus their lengths (for message
 * transports). */
struct outq {
	ocapn_buffer buf;
	size_t off;       /* bytes already consumed */
	uint32_t *lens;   /* lengths of queued messages, from lhead */
	size_t nlens, lhead, lcap;
	size_t part;      /* bytes of the head message already consumed */
};

/* Exporter side of handoffs: gifts deposited by a gifter on this session
 * (the gifter-exporter session), withdrawals waiting for their gift, and
 * the handoff-count floor per receiver key (see docs/handoffs.md). */
#define GIFT_MAX 1024     /* deposited gifts kept per session */
#define WAITING_MAX 1024  /* withdrawals waiting per session */
#define FLOOR_MAX 4096    /* receiver keys remembered per session */

struct gift {
	struct gift *next;
	ocapn_ref *ref; /* strong */
	size_t idlen;
	uint8_t id[];
};

struct waiting {
	struct waiting *next;
	ocapn_ref *resolver; /* strong */
	size_t idlen;
	uint8_t id[];
};

struct floor {
	struct floor *next;
	uint8_t pk[OCAPN__PK_LEN];
	uint64_t next_count;
};

/* Receiver side of handoffs: a withdrawal waiting for a session to the
 * exporter (peer.c keeps it until one is active). */
struct pending_withdraw {
	struct pending_withdraw *next;
	uint8_t *give;          /* the signed give, as Syrup */
	size_t give_len;
	ocapn__keypair key;     /* our key in the gifter-receiver session */
	uint64_t count;         /* handoff count */
	ocapn_ref *promise;     /* strong: what the application holds */
	ocapn_ref *resolver;    /* strong: resolves `promise` */
};

struct ocapn_session {
	struct ocapn_session *next, **pprev; /* vat list */
	ocapn_vat *vat;
	const ocapn_allocator *a;
	uint32_t serial;
	ocapn_role role;
	ocapn_dialect dialect; /* AUTO until chosen */
	ocapn_session_state state;
	bool started, hello_sent, peer_hello, aborted_by_peer;
	bool version_mismatch; /* initiator waiting for a restart */
	bool crossed;          /* our dial lost a crossed-hellos decision */
	char abort_reason[200];
	char peer_version[48];

	ocapn__keypair key;
	uint8_t side_id[OCAPN__HASH_LEN];
	uint8_t peer_pk[OCAPN__PK_LEN];
	uint8_t peer_side[OCAPN__HASH_LEN];
	uint8_t session_id[OCAPN__HASH_LEN];
	ocapn_locator *self_loc, *peer_loc, *remote;

	/* input */
	ocapn_syrup_scanner *scanner;
	ocapn_syrup_decoder *dec;
	ocapn_arena *arena;
	ocapn_buffer inbuf;
	ocapn_ref **tmp; /* refs created while handling one message */
	size_t ntmp, tmpcap;

	/* output */
	struct outq out;  /* sendable */
	struct outq held; /* queued before the handshake completes */
	ocapn_syrup_writer *w;
	ocapn_syrup_writer *sigw;
	struct pending_export *pend;
	size_t npend, pendcap;

	/* tables */
	ocapn__map exports;     /* pos -> struct export_entry */
	ocapn__map export_refs; /* ref -> struct export_entry */
	uint64_t next_export;
	ocapn__map imports;   /* pos -> ocapn_ref (weak) */
	ocapn__map answers;   /* pos -> ocapn_ref (strong) */
	ocapn__map questions; /* pos -> ocapn_ref (weak) */
	uint64_t next_question;
	ocapn__pool export_pool;
	ocapn_ref *bootstrap; /* ours, export 0 */
	uint64_t nimports_live;

	/* pending GC */
	uint64_t *gce_pos, *gce_delta;
	size_t ngce, gcecap;
	uint64_t *gca_pos;
	size_t ngca, gcacap;

	/* driver hooks */
	ocapn_session_output_fn out_hook;
	void *out_user;
	void *user;

	/* events */
	uint8_t ev[16];
	unsigned evh, evn;

	/* limits and stats */
	uint64_t max_message, max_exports, max_imports, max_answers,
	    max_queued, max_output;
	uint32_t max_depth;
	uint64_t queued;
	uint64_t msgs_in, msgs_out;

	/* handoffs, exporter side (FIFO lists, oldest first) */
	struct gift *gifts;
	size_t ngifts;
	struct waiting *waitings;
	size_t nwaitings;
	struct floor *floors;
	size_t nfloors;

	/* Input from memory the peer can rewrite (shm): decoded with
	 * OCAPN_SYRUP_COPY_ATOMS (ocapn_session_feed_shared_message). */
	ocapn_syrup_decoder *dec_shared;
	bool in_shared;
	/* The peer the transport authenticated (ocapn_session_expect_peer):
	 * its op:start-session location must name it. */
	ocapn_locator *expected_peer;
};

/* Shared by session.c and handoff.c */
ocapn_syrup_writer *ocapn__out_begin(ocapn_session *s, struct outq *q,
    size_t *start);
int ocapn__out_finish(ocapn_session *s, struct outq *q, size_t start,
    int rc);
int ocapn__write_ref(ocapn_session *s, ocapn_ref *ref);
void ocapn__write_target(ocapn_session *s, ocapn_ref *t);
int ocapn__write_desc(ocapn_syrup_writer *w, const char *label, size_t llen,
    uint64_t pos);
/* Bind a pending promise to a new question on `s` at `qpos` and pipeline
 * the messages already queued on it. */
void ocapn__bind_question(ocapn_session *s, ocapn_ref *p, uint64_t qpos);
/* Gifter: write a certificate for `r` (bound to another session) into
 * the message being written for `s`, and deposit the gift (handoff.c). */
int ocapn__handoff_write_give(ocapn_session *s, ocapn_ref *r);
/* Receiver: a desc:sig-envelope inside arguments (handoff.c). */
int ocapn__handoff_receive_give(ocapn_session *s, const ocapn_value *env,
    ocapn_ref **out);
/* Tests: replace the session key (before ocapn_session_start). */
int ocapn__session_set_key_seed(ocapn_session *s, const uint8_t seed[32]);
/* Free the handoff state of a session (teardown). */
void ocapn__handoff_session_gone(ocapn_session *s, const char *why);


#endif
