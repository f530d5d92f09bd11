/*
 * libFuzzer target: arbitrary bytes fed to a CapTP session after a valid
 * op:start-session (a real Goblins hello), with the conformance-suite
 * objects registered so that deliveries reach real objects.  The session
 * may abort (that is the expected outcome for most inputs) but must never
 * crash, hang or leak.
 */
#include <stddef.h>
#include <stdint.h>

#include <ocapn/ocapn.h>

#include "../tools/ocapn/suite_objects.h"
#include "goblins_hello.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	ocapn_vat *vat;
	if (ocapn_vat_new(NULL, &vat))
		return 0;
	suite_register(vat);
	ocapn_locator *self;
	ocapn_locator_new("testuds", 7, "fuzz", 4, NULL, &self);
	ocapn_session *s;
	if (ocapn_session_new(vat, OCAPN_ROLE_ACCEPTOR, self,
		OCAPN_DIALECT_AUTO, &s) == 0) {
		ocapn_session_set_limit(s, OCAPN_SESSION_MAX_MESSAGE, 1 << 16);
		ocapn_session_start(s);
		ocapn_session_feed(s, goblins_hello, sizeof(goblins_hello));
		/* First byte: chunk size for feeding the rest (0 = whole). */
		size_t chunk = size ? data[0] : 0;
		const uint8_t *p = size ? data + 1 : data;
		size_t n = size ? size - 1 : 0;
		for (size_t off = 0; off < n;) {
			size_t k = chunk && n - off > chunk ? chunk : n - off;
			ocapn_session_feed(s, p + off, k);
			ocapn_vat_run(vat, 10000);
			const uint8_t *out;
			size_t olen;
			ocapn_session_output(s, &out, &olen);
			ocapn_session_consume(s, olen);
			off += k;
		}
		ocapn_vat_run(vat, 10000);
		ocapn_session_free(s);
	}
	ocapn_locator_free(self);
	ocapn_vat_free(vat);
	return 0;
}
