/*
 * Designator authentication of the shm netlayer: each side proves that it
 * holds the Ed25519 key its designator names, inside the rings and before
 * CapTP starts.  Pure computation (no I/O, no system call): the netlayer
 * carries the messages through the channel's authentication hook, and
 * the tests run the exchange in memory.  docs/shm.md, "Designator
 * authentication", gives the bytes.
 *
 *   both sides at once:   <15'ocapn-shm:hello 32:KEY 32:NONCE>     90 B
 *   after the peer's hello: <15'ocapn-shm:proof 64:SIGNATURE>      87 B
 *
 * The signature covers the canonical Syrup bytes of
 *
 *   <16'ocapn-shm:auth-1 ROLE 32:IKEY 32:AKEY 32:INONCE 32:ANONCE>
 *
 * where ROLE is the signer's role, 9'initiator or 8'acceptor, IKEY/INONCE
 * the initiator's key and nonce and AKEY/ANONCE the acceptor's.  Both
 * nonces (fresh random per connection) make an old proof useless in a new
 * connection; the role makes a proof useless when reflected to its
 * signer; the label names the protocol and its version.
 */
#ifndef OCAPN_SHM_AUTH_H
#define OCAPN_SHM_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../../captp/crypto.h"

#define OCAPN__SHM_NONCE_LEN 32
#define OCAPN__SHM_HELLO_LEN 90
#define OCAPN__SHM_PROOF_LEN 87
/* Signed bytes: 172 for the initiator's proof, 171 for the acceptor's. */
#define OCAPN__SHM_SIGNED_MAX 172
/* Anything longer is refused before it is copied. */
#define OCAPN__SHM_AUTH_MAX 128

enum ocapn__shm_auth_state {
	OCAPN__SHM_AUTH_HELLO = 1, /* waiting for the peer's hello */
	OCAPN__SHM_AUTH_PROOF,     /* waiting for the peer's proof */
	OCAPN__SHM_AUTH_DONE,      /* the peer proved its key */
	OCAPN__SHM_AUTH_FAILED     /* see err and reason */
};

struct ocapn__shm_auth {
	const ocapn__keypair *kp; /* ours (borrowed) */
	bool initiator;
	bool check_key;           /* initiator: the key dialled */
	uint8_t expected[OCAPN__PK_LEN];
	uint8_t nonce[OCAPN__SHM_NONCE_LEN];
	uint8_t peer_key[OCAPN__PK_LEN];
	uint8_t peer_nonce[OCAPN__SHM_NONCE_LEN];
	int state;
	int err;
	const char *reason; /* static; "" unless failed */
};

/*
 * Start an exchange.  `expected` (initiator only, may be NULL): the key
 * the dialled designator names; the peer must prove exactly that key.
 * `nonce` NULL: a fresh random one (tests pass their own).
 */
void ocapn__shm_auth_init(struct ocapn__shm_auth *a, const ocapn__keypair *kp,
    bool initiator, const uint8_t *expected, const uint8_t *nonce);

/* Our hello (OCAPN__SHM_HELLO_LEN bytes into `out`). */
void ocapn__shm_auth_hello(const struct ocapn__shm_auth *a, uint8_t *out);

/*
 * One message from the peer (`msg` may be shared memory the peer can
 * rewrite: it is copied once before it is looked at).  On OCAPN_OK,
 * `*proof_len` is OCAPN__SHM_PROOF_LEN when our proof (in `proof`) must
 * be sent now, else 0; the state says whether the peer is authenticated
 * (DONE).  Failures are sticky: OCAPN_E_PROTOCOL (garbage, wrong order,
 * too long, a reflected challenge), OCAPN_E_SIGNATURE (a proof that does
 * not verify: wrong key, replayed, reflected), OCAPN_E_STATE (message
 * after DONE), OCAPN_E_CRYPTO; `a->reason` says which.
 */
int ocapn__shm_auth_input(struct ocapn__shm_auth *a, const uint8_t *msg,
    size_t len, uint8_t *proof, size_t *proof_len);

/* The bytes a proof signs, for a signer in the initiator's role or not,
 * into `out` (room for OCAPN__SHM_SIGNED_MAX); returns their length.
 * Exposed for the tests. */
size_t ocapn__shm_auth_signed_bytes(bool initiator_signs,
    const uint8_t *ikey, const uint8_t *akey, const uint8_t *inonce,
    const uint8_t *anonce, uint8_t *out);

#endif
