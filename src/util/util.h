/*
 * Internal helpers shared by every layer: allocation through the
 * per-object allocator hook, branch hints, UTF-8 validation.
 * Never installed.
 */
#ifndef OCAPN_UTIL_H
#define OCAPN_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <ocapn/common.h>

#if defined(__GNUC__) || defined(__clang__)
#define OCAPN_LIKELY(x) __builtin_expect(!!(x), 1)
#define OCAPN_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define OCAPN_INTERNAL __attribute__((visibility("hidden")))
#else
#define OCAPN_LIKELY(x) (x)
#define OCAPN_UNLIKELY(x) (x)
#define OCAPN_INTERNAL
#endif

#define OCAPN_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Copy of the caller's allocator, or the default one for NULL. */
void ocapn__alloc_init(ocapn_allocator *dst, const ocapn_allocator *src);

static inline void *
ocapn__malloc(const ocapn_allocator *a, size_t n)
{
	return a->fn(a->user, NULL, 0, n ? n : 1);
}

static inline void *
ocapn__calloc(const ocapn_allocator *a, size_t n)
{
	void *p = a->fn(a->user, NULL, 0, n ? n : 1);
	if (p)
		memset(p, 0, n);
	return p;
}

static inline void *
ocapn__realloc(const ocapn_allocator *a, void *p, size_t old, size_t n)
{
	return a->fn(a->user, p, p ? old : 0, n ? n : 1);
}

static inline void
ocapn__free(const ocapn_allocator *a, void *p, size_t n)
{
	if (p)
		a->fn(a->user, p, n ? n : 1, 0);
}

/* Grow an array `*pp` of `*cap` elements of `elem` bytes to hold at least
 * `need` elements (doubling).  Returns OCAPN_OK or OCAPN_E_NOMEM. */
int ocapn__grow(const ocapn_allocator *a, void **pp, size_t *cap,
    size_t need, size_t elem);

/*
 * Validate UTF-8 as Syrup and the OCapN model require: shortest forms
 * only, no surrogates (U+D800..U+DFFF), nothing above U+10FFFF.
 * Returns the length of the longest valid prefix; == len means valid.
 */
size_t ocapn__utf8_valid_prefix(const uint8_t *s, size_t len);

/* Are all n bytes ASCII?  Inline, so that the short strings and symbols
 * of protocol messages need no call. */
static inline bool
ocapn__all_ascii(const uint8_t *s, size_t n)
{
	uint64_t acc = 0, w;
	uint32_t h, t;
	if (n >= 8) {
		/* whole words, then the last 8 bytes (overlapping) */
		for (size_t i = 0; i + 8 <= n; i += 8) {
			memcpy(&w, s + i, 8);
			acc |= w;
		}
		memcpy(&w, s + n - 8, 8);
		acc |= w;
	} else if (n >= 4) {
		memcpy(&h, s, 4);
		memcpy(&t, s + n - 4, 4);
		acc = h | t;
	} else {
		for (size_t i = 0; i < n; i++)
			acc |= s[i];
	}
	return (acc & UINT64_C(0x8080808080808080)) == 0;
}

static inline bool
ocapn__utf8_valid(const uint8_t *s, size_t len)
{
	return ocapn__all_ascii(s, len) ||
	    ocapn__utf8_valid_prefix(s, len) == len;
}

/* Decode one code point at s[0..len): returns its byte length (1..4) and
 * stores it in *cp, or 0 if the bytes are not a valid scalar value. */
size_t ocapn__utf8_decode(const uint8_t *s, size_t len, uint32_t *cp);

/* Encode a scalar value (no surrogates, <= 0x10FFFF) into out[4]: returns
 * its length, or 0 if `cp` is not a scalar value. */
size_t ocapn__utf8_encode(uint32_t cp, uint8_t out[4]);

#endif /* OCAPN_UTIL_H */
