/*
 * Fuzz target: the framing scanner against the decoder.
 *
 * Input: one control byte (limits, chunking), one seed byte, then a byte
 * stream.  The stream is decoded value after value and, separately, fed
 * to the scanner in pseudo-random chunks.  The scanner checks less than
 * the decoder, so:
 *   - every value the decoder accepts is framed by the scanner with the
 *     same end offset;
 *   - where the decoder needs more bytes, the scanner has framed nothing
 *     more, reports no error, and holds exactly the remaining bytes;
 *   - a scanner error means the decoder rejects that value too.
 */
#include <string.h>

#include <ocapn/ocapn.h>

#include "fuzz_common.h"

#define MAX_VALUES 256

static ocapn_syrup_decoder *dec_default, *dec_small;
static ocapn_arena *arena;

static void
setup(void)
{
	if (dec_default)
		return;
	dec_default = ocapn_syrup_decoder_new(0, NULL);
	dec_small = ocapn_syrup_decoder_new(0, NULL);
	arena = ocapn_arena_new(NULL);
	FUZZ_CHECK(dec_default && dec_small && arena);
	FUZZ_CHECK(!ocapn_syrup_decoder_set_limit(dec_small,
	    OCAPN_SYRUP_MAX_DEPTH, 3));
	FUZZ_CHECK(!ocapn_syrup_decoder_set_limit(dec_small,
	    OCAPN_SYRUP_MAX_ATOM, 12));
	FUZZ_CHECK(!ocapn_syrup_decoder_set_limit(dec_small,
	    OCAPN_SYRUP_MAX_TOTAL, 40));
}

/* xorshift32 */
static uint32_t
next(uint32_t *s)
{
	uint32_t x = *s;
	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	return *s = x;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	setup();
	if (size < 2)
		return 0;
	uint8_t ctl = data[0];
	uint32_t seed = 0x9e3779b9u ^ ((uint32_t)data[1] << 8 | ctl);
	const uint8_t *in = data + 2;
	size_t len = size - 2;
	ocapn_syrup_decoder *dec = (ctl & 1) ? dec_small : dec_default;
	/* chunk sizes: 1..max_chunk */
	size_t max_chunk = (ctl >> 1 & 3) == 0 ? 1
	    : (ctl >> 1 & 3) == 1               ? 3
	    : (ctl >> 1 & 3) == 2               ? 17
						: len + 1;

	/* The decoder's view. */
	size_t dec_ends[MAX_VALUES];
	size_t ndec = 0, off = 0;
	int dec_rc = OCAPN_OK;
	while (ndec < MAX_VALUES) {
		ocapn_value *v;
		size_t used;
		ocapn_arena_reset(arena);
		dec_rc = ocapn_syrup_decode(dec, arena, in + off, len - off, &v,
		    &used);
		if (dec_rc)
			break;
		off += used;
		dec_ends[ndec++] = off;
	}
	if (ndec == MAX_VALUES)
		return 0;

	/* The scanner's view. */
	ocapn_syrup_scanner *sc = ocapn_syrup_scanner_new(dec, NULL);
	FUZZ_CHECK(sc);
	size_t sc_ends[MAX_VALUES];
	size_t nsc = 0, pos = 0;
	int sc_rc = OCAPN_E_INCOMPLETE;
	while (pos < len && nsc < MAX_VALUES) {
		size_t n = 1 + next(&seed) % max_chunk;
		if (n > len - pos)
			n = len - pos;
		size_t c = 0;
		while (c < n) {
			size_t used = 0;
			sc_rc = ocapn_syrup_scanner_feed(sc, in + pos + c,
			    n - c, &used);
			FUZZ_CHECK(used <= n - c);
			if (sc_rc == OCAPN_OK) {
				FUZZ_CHECK(used > 0);
				c += used;
				FUZZ_CHECK(nsc < MAX_VALUES);
				sc_ends[nsc++] = pos + c;
				if (nsc == MAX_VALUES)
					break;
				continue;
			}
			if (sc_rc == OCAPN_E_INCOMPLETE) {
				FUZZ_CHECK(used == n - c);
				c = n;
				break;
			}
			break;
		}
		if (sc_rc != OCAPN_OK && sc_rc != OCAPN_E_INCOMPLETE)
			break;
		pos += c;
	}

	for (size_t i = 0; i < ndec; i++) {
		FUZZ_CHECK(i < nsc);
		FUZZ_CHECK(sc_ends[i] == dec_ends[i]);
	}
	if (nsc < MAX_VALUES) {
		if (dec_rc == OCAPN_E_INCOMPLETE) {
			FUZZ_CHECK(nsc == ndec);
			FUZZ_CHECK(sc_rc == OCAPN_E_INCOMPLETE ||
			    (sc_rc == OCAPN_OK && ndec &&
				len == dec_ends[ndec - 1]));
			size_t last = ndec ? dec_ends[ndec - 1] : 0;
			FUZZ_CHECK(ocapn_syrup_scanner_pending(sc) ==
			    len - last);
		} else if (sc_rc != OCAPN_OK && sc_rc != OCAPN_E_INCOMPLETE) {
			/* The scanner rejected value number nsc >= ndec, and
			 * the decoder rejected value number ndec. */
			size_t eo;
			const char *why = ocapn_syrup_scanner_error(sc, &eo);
			FUZZ_CHECK(why && why[0]);
			FUZZ_CHECK(eo < len);
			size_t dummy;
			FUZZ_CHECK(ocapn_syrup_scanner_feed(sc, in, len ? 1 : 0,
				       &dummy) == sc_rc);
		}
	}
	ocapn_syrup_scanner_free(sc);
	return 0;
}
