/*
 * The control protocol of the unix-domain-socket netlayer (Goblins 0.16,
 * goblins/utils/unix-domain-socket.scm): its four records, and a channel
 * that reads them from a non-blocking AF_UNIX stream socket without ever
 * reading past a record, so that the four bytes carrying a passed
 * descriptor are received with recvmsg() and a control buffer.
 *
 *   <uds:register PEER-LOCATION CLIENT-CHALLENGE>
 *   <uds:server-response SERVER-PUBKEY SERVER-CHALLENGE SIG-VAL>
 *                    (SIG-VAL may also be a nested uds:signature)
 *   <uds:signature PAYLOAD SIGNATURE>      SIGNATURE: 64 bytes or sig-val
 *   <uds:new-connection FROM TO>           then 4 bytes + SCM_RIGHTS
 *
 * Shared by the netlayer (uds.c) and the introduction server
 * (uds_intro.c).  Internal; never installed.  docs/netlayers.md has the
 * byte-level description.
 */
#ifndef OCAPN_NETLAYERS_UDS_CTL_H
#define OCAPN_NETLAYERS_UDS_CTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ocapn/locator.h>
#include <ocapn/syrup.h>

#include "../captp/crypto.h"

#define OCAPN__UDS_TRANSPORT "unix-domain-socket"
#define OCAPN__UDS_TRANSPORT_LEN 18
/* base32 (lowercase, no padding) of a 32-byte Ed25519 key */
#define OCAPN__UDS_B32_LEN 52
/* Challenges we send are 64 random bytes, as Goblins sends; we accept
 * any length in [MIN, MAX] from the other side. */
#define OCAPN__UDS_CHALLENGE_LEN 64
#define OCAPN__UDS_CHALLENGE_MIN 32
#define OCAPN__UDS_CHALLENGE_MAX 256
/* Largest control record we read (a new-connection with two locations
 * carrying a few hints is about 330 bytes). */
#define OCAPN__UDS_MAX_RECORD 16384
/* Data bytes of the sendmsg() that carries a descriptor. */
#define OCAPN__UDS_TAIL_LEN 4
/* Most descriptors one recvmsg() may bring before we call it hostile. */
#define OCAPN__UDS_MAX_FDS 8

enum ocapn__uds_kind {
	OCAPN__UDS_REGISTER = 1,
	OCAPN__UDS_SERVER_RESPONSE,
	OCAPN__UDS_SIGNATURE,
	OCAPN__UDS_NEW_CONNECTION
};

/* A unix-domain-socket location as the control protocol carries it:
 * `<ocapn-peer 'unix-domain-socket DESIGNATOR HINTS>` with HINTS `f` or a
 * dict (its contents are not interpreted: Goblins puts the string "t" or
 * the boolean t there).  DESIGNATOR is 52 lowercase base32 characters of
 * the 32-byte key `key`. */
struct ocapn__uds_peer {
	char designator[OCAPN__UDS_B32_LEN + 1];
	uint8_t key[OCAPN__PK_LEN];
};

/* One parsed control record.  `bytes` points into the arena or the input
 * (valid while both are). */
struct ocapn__uds_rec {
	enum ocapn__uds_kind kind;
	/* REGISTER: the peer; NEW_CONNECTION: FROM */
	struct ocapn__uds_peer peer;
	/* NEW_CONNECTION: TO */
	struct ocapn__uds_peer to;
	/* REGISTER: client challenge; SERVER_RESPONSE: server challenge;
	 * SIGNATURE: payload */
	const uint8_t *bytes;
	size_t nbytes;
	/* SERVER_RESPONSE: server key */
	uint8_t pk[OCAPN__PK_LEN];
	/* SERVER_RESPONSE, SIGNATURE */
	uint8_t sig[OCAPN__SIG_LEN];
	/* SIGNATURE: the raw 64-byte form (Goblins) rather than a sig-val */
	bool sig_raw;
	/* SERVER_RESPONSE whose signature came as a nested
	 * `<uds:signature PAYLOAD SIG>` (the draft text's form; Goblins
	 * sends a bare sig-val): the payload it names, else NULL */
	const uint8_t *signed_payload;
	size_t nsigned_payload;
};

/*
 * Parse one control record (exactly one Syrup value in rec[0..len),
 * leading whitespace allowed).  OCAPN_OK, or an error code with `*why`
 * (static) set: the decoder's code for malformed Syrup, OCAPN_E_PROTOCOL
 * for a wrong shape.  `dec`/`arena` are scratch (the caller resets the
 * arena).
 */
int ocapn__uds_parse(ocapn_syrup_decoder *dec, ocapn_arena *arena,
    const uint8_t *rec, size_t len, struct ocapn__uds_rec *out,
    const char **why);

/* Parse a location value as above.  OCAPN_OK or OCAPN_E_PROTOCOL. */
int ocapn__uds_parse_peer(const ocapn_value *v, struct ocapn__uds_peer *out,
    const char **why);

/* `s[0..len)` is a canonical designator: 52 lowercase base32 characters
 * naming 32 bytes (written to `key` when non-NULL). */
bool ocapn__uds_designator_ok(const char *s, size_t len, uint8_t *key);

/* base32 of a key into out[53] (NUL-terminated). */
void ocapn__uds_b32(const uint8_t key[OCAPN__PK_LEN],
    char out[OCAPN__UDS_B32_LEN + 1]);

/* Writers: emit one record into `w` (after ocapn_syrup_writer_reset) and
 * return the writer's sticky error. */
int ocapn__uds_write_register(ocapn_syrup_writer *w, const char *designator,
    const uint8_t *challenge, size_t clen);
int ocapn__uds_write_server_response(ocapn_syrup_writer *w,
    const uint8_t pk[OCAPN__PK_LEN], const uint8_t *challenge, size_t clen,
    const uint8_t sig[OCAPN__SIG_LEN]);
/* raw: the 64 bytes r||s (what Goblins sends and its server accepts);
 * otherwise a sig-val list. */
int ocapn__uds_write_signature(ocapn_syrup_writer *w, const uint8_t *payload,
    size_t plen, const uint8_t sig[OCAPN__SIG_LEN], bool raw);
int ocapn__uds_write_new_connection(ocapn_syrup_writer *w,
    const ocapn_locator *from, const ocapn_locator *to);

/* ---- Channel ------------------------------------------------------- */

struct ocapn__uds_out;

typedef struct ocapn__uds_chan {
	int fd;                     /* not owned: the owner closes it */
	ocapn_allocator a;
	ocapn_syrup_scanner *scanner;
	ocapn_buffer rec;           /* the record being read */
	bool rec_done;              /* rec holds a whole record (returned) */
	bool want_fd;               /* the next 4 bytes carry a descriptor */
	size_t tail_got;
	int tail_fd;
	struct ocapn__uds_out *head, *tail;
	size_t out_items;
	struct ocapn__uds_out *done; /* sent, tag not yet taken */
	char why[160];
} ocapn__uds_chan;

enum ocapn__uds_in {
	OCAPN__UDS_IN_AGAIN = 1, /* nothing more to read now */
	OCAPN__UDS_IN_RECORD,    /* a whole record */
	OCAPN__UDS_IN_FD,        /* the descriptor after a new-connection */
	OCAPN__UDS_IN_EOF,       /* clean end of stream between records */
	OCAPN__UDS_IN_ERROR      /* see ch->why */
};

/* OCAPN_OK or OCAPN_E_NOMEM.  `fd` must be non-blocking. */
int ocapn__uds_chan_init(ocapn__uds_chan *ch, int fd,
    const ocapn_allocator *a);
/* Drop queued output (closing the descriptors it holds; `dropped` is
 * called for each item that has a tag), a received descriptor not yet
 * returned, and the buffers.  Does not close ch->fd.  Idempotent. */
void ocapn__uds_chan_close(ocapn__uds_chan *ch,
    void (*dropped)(void *ctx, void *tag), void *ctx);

/*
 * Read what the socket has.  RECORD: `*rec`/`*len` is the record (valid
 * until the next call); if it is a uds:new-connection the caller must
 * call ocapn__uds_chan_expect_fd() before reading again.  FD: `*fd` is
 * the passed descriptor (the caller owns it).  ERROR: `*err` is the
 * ocapn_err and ch->why the reason.
 */
enum ocapn__uds_in ocapn__uds_chan_read(ocapn__uds_chan *ch,
    const uint8_t **rec, size_t *len, int *fd, int *err);
void ocapn__uds_chan_expect_fd(ocapn__uds_chan *ch);

/*
 * Queue a record (copied), followed, when `pass_fd` >= 0, by the 4-byte
 * sendmsg() passing `pass_fd` (the channel owns it from then on, and
 * closes it once sent or dropped).  `tag` (may be NULL) is returned by
 * ocapn__uds_chan_take_done() once everything is sent.  OCAPN_E_NOMEM
 * (nothing queued, `pass_fd` still the caller's).
 */
int ocapn__uds_chan_queue(ocapn__uds_chan *ch, const uint8_t *rec,
    size_t len, int pass_fd, void *tag);
/* Write what can be written.  OCAPN_OK (queue empty), OCAPN_E_AGAIN
 * (wait for writability), or an error with ch->why. */
int ocapn__uds_chan_flush(ocapn__uds_chan *ch);
/* Tag of the next completely sent item (NULL when none). */
void *ocapn__uds_chan_take_done(ocapn__uds_chan *ch);
/* Forget `tag`: an item not started is removed (its descriptor closed);
 * one partly written keeps going (the stream must stay in sync) without
 * its tag.  True if it was removed. */
bool ocapn__uds_chan_cancel(ocapn__uds_chan *ch, void *tag);
static inline bool
ocapn__uds_chan_wants_write(const ocapn__uds_chan *ch)
{
	return ch->head != NULL;
}

/* Is `fd` a connected AF_UNIX SOCK_STREAM socket (what a passed CapTP
 * connection must be)?  `*why` (static) says why not. */
bool ocapn__uds_fd_ok(int fd, const char **why);

#endif
