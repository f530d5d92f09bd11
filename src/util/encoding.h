/*
 * Text encodings used by locators: RFC 4648 base32 and base64url, and
 * RFC 3986 percent-encoding.  Internal; the public wrappers are in
 * include/ocapn/locator.h.
 *
 * Every function appends to an `ocapn_buffer`, keeps a NUL byte after the
 * data (not counted in `len`), and on failure leaves `len` as it was.
 */
#ifndef OCAPN_UTIL_ENCODING_H
#define OCAPN_UTIL_ENCODING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ocapn/common.h>

/* RFC 4648 section 6, lowercase, no padding. */
int ocapn__base32_encode(const uint8_t *in, size_t len, ocapn_buffer *out,
    const ocapn_allocator *a);
/* Either case, no padding.  OCAPN_E_SYNTAX with `*err_off` (index into
 * `in`) and `*why` for a bad character, an impossible length or non-zero
 * unused bits in the last character. */
int ocapn__base32_decode(const char *in, size_t len, ocapn_buffer *out,
    const ocapn_allocator *a, size_t *err_off, const char **why);

/* RFC 4648 section 5, no padding. */
int ocapn__base64url_encode(const uint8_t *in, size_t len, ocapn_buffer *out,
    const ocapn_allocator *a);
/* Optional '=' padding (complete if present), otherwise as base32. */
int ocapn__base64url_decode(const char *in, size_t len, ocapn_buffer *out,
    const ocapn_allocator *a, size_t *err_off, const char **why);

/* RFC 3986 section 2.3 unreserved: ALPHA DIGIT - . _ ~ */
static inline bool
ocapn__uri_unreserved(uint8_t c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
	    c == '~';
}

/* Append `in`, every byte outside unreserved as %XX (uppercase hex,
 * RFC 3986 section 2.1). */
int ocapn__pct_encode(const uint8_t *in, size_t len, ocapn_buffer *out,
    const ocapn_allocator *a);

/* Value of a hex digit, or -1. */
static inline int
ocapn__hexval(uint8_t c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

#endif
