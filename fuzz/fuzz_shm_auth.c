/*
 * libFuzzer target for the shm netlayer's designator authentication
 * (src/netlayers/shm/shm_auth.c): the peer's messages are built from an
 * honest peer's (fixed keys) with fuzzer-chosen bytes XOR-ed in, cut or
 * extended, or are raw fuzzer bytes.  Checks: no crash or overread; a
 * failure is sticky, has a reason and an expected error code; the peer
 * is authenticated only when it sent exactly the honest messages.
 *
 * Input: byte 0 = flags (bit 0: we are the initiator; bit 1: raw
 * messages), then up to four messages as [len lo][len hi][mask bytes].
 */
#include <stdlib.h>
#include <string.h>

#include "netlayers/shm/shm_auth.h"

static ocapn__keypair ours, theirs;
static int ready;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!ready) {
		uint8_t s1[32], s2[32];
		memset(s1, 1, sizeof(s1));
		memset(s2, 2, sizeof(s2));
		if (ocapn__keypair_from_seed(&ours, s1) ||
		    ocapn__keypair_from_seed(&theirs, s2))
			abort();
		ready = 1;
	}
	if (size < 1)
		return 0;
	bool initiator = data[0] & 1, raw = (data[0] & 2) != 0;
	data++;
	size--;
	/* fixed nonces: the honest peer's proof is reproducible */
	uint8_t n1[32], n2[32];
	memset(n1, 0x11, sizeof(n1));
	memset(n2, 0x22, sizeof(n2));
	struct ocapn__shm_auth me, peer;
	ocapn__shm_auth_init(&me, &ours, initiator, theirs.pk, n1);
	ocapn__shm_auth_init(&peer, &theirs, !initiator, ours.pk, n2);
	uint8_t honest[2][OCAPN__SHM_AUTH_MAX];
	size_t hlen[2] = {OCAPN__SHM_HELLO_LEN, OCAPN__SHM_PROOF_LEN};
	uint8_t myhello[OCAPN__SHM_HELLO_LEN], junk[OCAPN__SHM_PROOF_LEN];
	size_t jl;
	ocapn__shm_auth_hello(&peer, honest[0]);
	ocapn__shm_auth_hello(&me, myhello);
	if (ocapn__shm_auth_input(&peer, myhello, sizeof(myhello), honest[1],
		&jl) || jl != OCAPN__SHM_PROOF_LEN)
		abort();
	bool all_honest = true;
	int sent = 0;
	for (int k = 0; k < 4 && size >= 2; k++) {
		size_t len = (size_t)data[0] | (size_t)data[1] << 8;
		data += 2;
		size -= 2;
		size_t mlen = len < size ? len : size;
		uint8_t *msg = malloc(raw ? (mlen ? mlen : 1) :
		    OCAPN__SHM_AUTH_MAX + 64);
		if (!msg)
			return 0;
		size_t n;
		if (raw) {
			memcpy(msg, data, mlen);
			n = mlen;
			all_honest = false;
		} else {
			/* honest message k (if any), XOR the mask, length
			 * adjusted by the mask's first byte */
			size_t base = k < 2 ? hlen[k] : 0;
			memset(msg, 0, OCAPN__SHM_AUTH_MAX + 64);
			if (k < 2)
				memcpy(msg, honest[k], base);
			for (size_t i = 0; i < mlen && i < base; i++)
				msg[i] ^= data[i];
			int delta = mlen && data[0] ? (int)(data[0] % 9) - 4 : 0;
			n = (size_t)((int)base + delta);
			if ((int)base + delta < 0)
				n = 0;
			if (n > OCAPN__SHM_AUTH_MAX + 64)
				n = OCAPN__SHM_AUTH_MAX + 64;
			bool same = k < 2 && n == base;
			for (size_t i = 0; same && i < mlen && i < base; i++)
				if (data[i])
					same = false;
			if (!same)
				all_honest = false;
		}
		data += mlen;
		size -= mlen;
		int before = me.state;
		int rc = ocapn__shm_auth_input(&me, msg, n, junk, &jl);
		free(msg);
		sent++;
		if (rc) {
			if (me.state != OCAPN__SHM_AUTH_FAILED ||
			    me.reason[0] == '\0' || me.err != rc)
				abort();
			if (rc != OCAPN_E_PROTOCOL &&
			    rc != OCAPN_E_SIGNATURE && rc != OCAPN_E_STATE &&
			    rc != OCAPN_E_CRYPTO)
				abort();
			/* sticky */
			if (ocapn__shm_auth_input(&me, honest[0], hlen[0],
				junk, &jl) != rc)
				abort();
			break;
		}
		if (before == OCAPN__SHM_AUTH_HELLO &&
		    jl != OCAPN__SHM_PROOF_LEN)
			abort();
	}
	if (me.state == OCAPN__SHM_AUTH_DONE && !(all_honest && sent == 2))
		abort();
	return 0;
}
