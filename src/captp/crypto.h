/*
 * Internal crypto module of the CapTP layer: the only code that includes
 * <sodium.h> is crypto.c.  Ed25519 keys and signatures, SHA-256, random
 * bytes, and the Syrup forms OCapN uses for keys and signatures (the
 * gcrypt s-expression shapes Goblins and the conformance suite use):
 *
 *   public key: ['public-key ['ecc ['curve 'Ed25519] ['flags 'eddsa]
 *                                  ['q <32 bytes>]]]
 *   signature:  ['sig-val ['eddsa ['r <32 bytes>] ['s <32 bytes>]]]
 *
 * Identifiers, as Goblins computes them (goblins/ocapn/captp.scm,
 * ^coordinator) and as checked by tests/test_crypto.c against the
 * session ids and side ids inside the handoff certificates of a real
 * Goblins capture:
 *   side id    = sha256(sha256(syrup(public key form)))
 *                (the 96 bytes [10'public-key ... [1'q32:<pk>]]])
 *   session id = sha256(sha256("prot0" ++ lo ++ hi))
 *                where lo, hi are the two 32-byte side ids in bytewise
 *                (memcmp) order, "prot0" the 5 ASCII bytes
 *
 * Signatures are plain Ed25519 (RFC 8032) over the Syrup bytes: the
 * location signature of op:start-session covers `<my-location LOCATION>`,
 * a desc:sig-envelope covers the Syrup bytes of its first field.
 *
 * Functions that need libsodium initialise it on first use; calling
 * ocapn__crypto_init() early only moves that cost.
 */
#ifndef OCAPN_CAPTP_CRYPTO_H
#define OCAPN_CAPTP_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ocapn/syrup.h>

#define OCAPN__PK_LEN 32
#define OCAPN__SK_LEN 64
#define OCAPN__SIG_LEN 64
#define OCAPN__HASH_LEN 32

typedef struct ocapn__keypair {
	uint8_t pk[OCAPN__PK_LEN];
	uint8_t sk[OCAPN__SK_LEN]; /* libsodium layout: seed || pk */
} ocapn__keypair;

/* Initialise libsodium once (thread-safe, idempotent). OCAPN_E_CRYPTO. */
int ocapn__crypto_init(void);

/* Fresh random key pair.  OCAPN_OK or OCAPN_E_CRYPTO. */
int ocapn__keypair_generate(ocapn__keypair *kp);
/* Key pair from a 32-byte seed (deterministic; for tests and for keys
 * persisted by the application). */
int ocapn__keypair_from_seed(ocapn__keypair *kp, const uint8_t seed[32]);
/* Wipe the secret (sodium_memzero). */
void ocapn__keypair_wipe(ocapn__keypair *kp);

/* Detached Ed25519 signature of msg.  OCAPN_OK or OCAPN_E_CRYPTO. */
int ocapn__sign(const ocapn__keypair *kp, const uint8_t *msg, size_t len,
    uint8_t sig[OCAPN__SIG_LEN]);
/* OCAPN_OK if `sig` is a valid signature of msg by `pk`, else
 * OCAPN_E_SIGNATURE.  Must be checked. */
OCAPN_NODISCARD int ocapn__verify(const uint8_t pk[OCAPN__PK_LEN],
    const uint8_t *msg, size_t len, const uint8_t sig[OCAPN__SIG_LEN]);

void ocapn__sha256(const uint8_t *msg, size_t len,
    uint8_t out[OCAPN__HASH_LEN]);
/* Cryptographically secure random bytes. */
void ocapn__random(uint8_t *out, size_t len);
/* Constant-time comparison: true when equal. */
bool ocapn__ct_equal(const uint8_t *a, const uint8_t *b, size_t len);
/* Wipe memory that held secrets. */
void ocapn__wipe(void *p, size_t len);

/* Write the Syrup form of a public key / signature (see above). */
int ocapn__write_pubkey(ocapn_syrup_writer *w,
    const uint8_t pk[OCAPN__PK_LEN]);
int ocapn__write_sigval(ocapn_syrup_writer *w,
    const uint8_t sig[OCAPN__SIG_LEN]);
/* Parse those forms strictly (exact shapes, item order and lengths; the
 * point itself is not validated: a bad point just fails to verify).
 * OCAPN_OK or OCAPN_E_PROTOCOL; `*why` (static, `why` may be NULL) says
 * what is wrong.  The output is written only on success. */
int ocapn__parse_pubkey(const ocapn_value *v, uint8_t pk[OCAPN__PK_LEN],
    const char **why);
int ocapn__parse_sigval(const ocapn_value *v, uint8_t sig[OCAPN__SIG_LEN],
    const char **why);

/* side id of a session public key (see above). */
void ocapn__side_id(const uint8_t pk[OCAPN__PK_LEN],
    uint8_t out[OCAPN__HASH_LEN]);
/* session id from the two side ids (order does not matter). */
void ocapn__session_id(const uint8_t a[OCAPN__HASH_LEN],
    const uint8_t b[OCAPN__HASH_LEN], uint8_t out[OCAPN__HASH_LEN]);

/*
 * Sign / verify the Syrup encoding of an arbitrary value: the signature
 * covers the canonical bytes of `v` (for a location: the value
 * `<my-location LOC>`, built by the caller).  verify returns OCAPN_OK or
 * OCAPN_E_SIGNATURE (or OCAPN_E_NOMEM / OCAPN_E_INVAL if `v` cannot be
 * encoded).  `w` is scratch: reset and overwritten.
 */
int ocapn__sign_value(const ocapn__keypair *kp, ocapn_syrup_writer *w,
    const ocapn_value *v, uint8_t sig[OCAPN__SIG_LEN]);
OCAPN_NODISCARD int ocapn__verify_value(const uint8_t pk[OCAPN__PK_LEN],
    ocapn_syrup_writer *w, const ocapn_value *v,
    const uint8_t sig[OCAPN__SIG_LEN]);

#endif
