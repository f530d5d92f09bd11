/*
 * RFC 4648 base32 / base64url and RFC 3986 percent-encoding.
 */
#include "encoding.h"
#include "util.h"

static const char b32_alpha[] = "abcdefghijklmnopqrstuvwxyz234567";
static const char b64u_alpha[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* Reserve `n` bytes plus the terminating NUL. */
static int
reserve(ocapn_buffer *out, const ocapn_allocator *a, size_t n)
{
	if (n == SIZE_MAX)
		return OCAPN_E_NOMEM;
	return ocapn_buffer_reserve(out, a, n + 1);
}

static int
syntax(size_t *err_off, const char **why, size_t off, const char *reason)
{
	if (err_off)
		*err_off = off;
	if (why)
		*why = reason;
	return OCAPN_E_SYNTAX;
}

/* Write `len` bytes as characters of `width` bits each from `alpha`, most
 * significant bits first, the last character zero-filled; no padding. */
static int
encode_bits(const uint8_t *in, size_t len, ocapn_buffer *out,
    const ocapn_allocator *a, const char *alpha, int width)
{
	if (len > (SIZE_MAX - 8) / 8)
		return OCAPN_E_NOMEM;
	size_t olen = (len * 8 + (size_t)width - 1) / (size_t)width;
	int rc = reserve(out, a, olen);
	if (rc)
		return rc;
	uint32_t mask = (1u << width) - 1;
	uint8_t *o = out->data + out->len;
	uint32_t acc = 0;
	int bits = 0;
	for (size_t i = 0; i < len; i++) {
		acc = (acc << 8) | in[i];
		bits += 8;
		while (bits >= width) {
			bits -= width;
			*o++ = (uint8_t)alpha[(acc >> bits) & mask];
		}
	}
	if (bits > 0)
		*o++ = (uint8_t)alpha[(acc << (width - bits)) & mask];
	*o = 0;
	out->len += olen;
	return OCAPN_OK;
}

/* Append the `olen` bytes carried by `n` already validated characters of
 * `width` bits each (`val` maps a character to its value). */
static int
decode_bits(const uint8_t *s, size_t n, size_t olen, int (*val)(uint8_t),
    int width, ocapn_buffer *out, const ocapn_allocator *a)
{
	int rc = reserve(out, a, olen);
	if (rc)
		return rc;
	uint8_t *o = out->data + out->len;
	uint32_t acc = 0;
	int bits = 0;
	for (size_t i = 0; i < n; i++) {
		acc = (acc << width) | (uint32_t)val(s[i]);
		bits += width;
		if (bits >= 8) {
			bits -= 8;
			*o++ = (uint8_t)(acc >> bits);
		}
	}
	*o = 0;
	out->len += olen;
	return OCAPN_OK;
}

int
ocapn__base32_encode(const uint8_t *in, size_t len, ocapn_buffer *out,
    const ocapn_allocator *a)
{
	return encode_bits(in, len, out, a, b32_alpha, 5);
}

static int
b32_val(uint8_t c)
{
	if (c >= 'a' && c <= 'z')
		return c - 'a';
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= '2' && c <= '7')
		return c - '2' + 26;
	return -1;
}

int
ocapn__base32_decode(const char *in, size_t len, ocapn_buffer *out,
    const ocapn_allocator *a, size_t *err_off, const char **why)
{
	const uint8_t *s = (const uint8_t *)in;
	/* 8 characters carry 5 bytes; a final group of 1, 3 or 6
	 * characters cannot hold a whole number of bytes. */
	size_t rem = len % 8;
	for (size_t i = 0; i < len; i++)
		if (b32_val(s[i]) < 0)
			return syntax(err_off, why, i,
			    s[i] == '=' ? "base32 padding is not accepted"
					: "invalid base32 character");
	if (rem == 1 || rem == 3 || rem == 6)
		return syntax(err_off, why, len, "impossible base32 length");
	/* The bits of the last character beyond the last whole byte must
	 * be zero, so that every byte string has one encoding. */
	unsigned unused = (unsigned)(rem * 5 % 8);
	if (unused && (b32_val(s[len - 1]) & ((1 << unused) - 1)))
		return syntax(err_off, why, len - 1,
		    "non-zero unused bits in the last base32 character");
	return decode_bits(s, len, len / 8 * 5 + rem * 5 / 8, b32_val, 5,
	    out, a);
}

int
ocapn__base64url_encode(const uint8_t *in, size_t len, ocapn_buffer *out,
    const ocapn_allocator *a)
{
	return encode_bits(in, len, out, a, b64u_alpha, 6);
}

static int
b64u_val(uint8_t c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
}

int
ocapn__base64url_decode(const char *in, size_t len, ocapn_buffer *out,
    const ocapn_allocator *a, size_t *err_off, const char **why)
{
	const uint8_t *s = (const uint8_t *)in;
	size_t n = len;
	while (n > 0 && s[n - 1] == '=' && len - n < 2)
		n--;
	size_t pad = len - n;
	for (size_t i = 0; i < n; i++)
		if (b64u_val(s[i]) < 0)
			return syntax(err_off, why, i,
			    s[i] == '=' ? "'=' before the end of base64url"
			    : s[i] == '+' || s[i] == '/'
				? "'+' or '/' is base64, not base64url"
				: "invalid base64url character");
	size_t rem = n % 4;
	if (rem == 1)
		return syntax(err_off, why, n, "impossible base64url length");
	if (pad && (n + pad) % 4 != 0)
		return syntax(err_off, why, n, "wrong base64url padding");
	unsigned unused = (unsigned)(rem * 6 % 8);
	if (unused && (b64u_val(s[n - 1]) & ((1 << unused) - 1)))
		return syntax(err_off, why, n - 1,
		    "non-zero unused bits in the last base64url character");
	return decode_bits(s, n, n / 4 * 3 + rem * 3 / 4, b64u_val, 6, out,
	    a);
}

int
ocapn__pct_encode(const uint8_t *in, size_t len, ocapn_buffer *out,
    const ocapn_allocator *a)
{
	static const char hex[] = "0123456789ABCDEF";
	if (len > (SIZE_MAX - 1) / 3)
		return OCAPN_E_NOMEM;
	size_t olen = 0;
	for (size_t i = 0; i < len; i++)
		olen += ocapn__uri_unreserved(in[i]) ? 1 : 3;
	int rc = reserve(out, a, olen);
	if (rc)
		return rc;
	uint8_t *o = out->data + out->len;
	for (size_t i = 0; i < len; i++) {
		uint8_t c = in[i];
		if (ocapn__uri_unreserved(c)) {
			*o++ = c;
		} else {
			*o++ = '%';
			*o++ = (uint8_t)hex[c >> 4];
			*o++ = (uint8_t)hex[c & 15];
		}
	}
	*o = 0;
	out->len += olen;
	return OCAPN_OK;
}
