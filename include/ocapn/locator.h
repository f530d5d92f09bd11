/*
 * libocapn: peer locators and sturdyrefs, in their Syrup form and their
 * URI form (spec draft-specifications/Locators.md).
 *
 *   <ocapn-peer TRANSPORT-SYMBOL DESIGNATOR-STRING HINTS>  HINTS: dict|f
 *   <ocapn-sturdyref PEER SWISS>                           SWISS: bytes
 *   ocapn://DESIGNATOR.TRANSPORT?k=v&k2=v2
 *   ocapn://DESIGNATOR.TRANSPORT/s/SWISS?k=v               SWISS: base64url
 *
 * Two locators name the same peer when transport and designator match;
 * hints do not count (ocapn_locator_same_peer()).
 *
 * A locator remembers whether its hints were `f` or a dict, so that a
 * locator decoded from a peer re-encodes to the same bytes (signatures are
 * computed over them).  Adding a hint makes the hints a dict.  Hints are
 * kept in canonical order (by the Syrup encoding of their keys, as in a
 * canonical dict): ocapn_locator_hint_at() and the URI form use it.
 *
 * Handles are owned by the caller and freed with the matching _free();
 * getters return pointers owned by the handle, valid until it is changed
 * or freed.  Strings returned by getters are also NUL-terminated (they
 * may contain NUL bytes themselves: use the lengths).
 *
 * Functions that append to an `ocapn_buffer` grow it with the given
 * allocator (NULL = malloc), append their output, and keep a NUL byte
 * after it that is not counted in `out->len`; on failure `out->len` is
 * unchanged.
 *
 * Where the spec, Goblins and the conformance suite disagree about URIs,
 * the choices made here are listed in docs/interop.md.
 */
#ifndef OCAPN_LOCATOR_H
#define OCAPN_LOCATOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ocapn/common.h>
#include <ocapn/syrup.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ocapn_locator ocapn_locator;
typedef struct ocapn_sturdyref ocapn_sturdyref;

/* ---- Peer locators ------------------------------------------------ */

/*
 * New locator with no hints (`f`).  The transport must be non-empty valid
 * UTF-8 without '.', the designator valid UTF-8 (OCAPN_E_INVAL otherwise).
 * NULL allocator = malloc.  OCAPN_E_NOMEM.
 */
OCAPN_API int ocapn_locator_new(const char *transport, size_t tlen,
    const char *designator, size_t dlen, const ocapn_allocator *alloc,
    ocapn_locator **out);
OCAPN_API void ocapn_locator_free(ocapn_locator *loc);
/* Deep copy with the same allocator.  OCAPN_E_NOMEM. */
OCAPN_API int ocapn_locator_copy(const ocapn_locator *loc,
    ocapn_locator **out);

OCAPN_API const char *ocapn_locator_transport(const ocapn_locator *loc,
    size_t *len);
OCAPN_API const char *ocapn_locator_designator(const ocapn_locator *loc,
    size_t *len);

/* Set (or replace) a hint; keys and values are UTF-8 strings.  The hints
 * become a dict.  OCAPN_E_INVAL for invalid UTF-8, OCAPN_E_NOMEM. */
OCAPN_API int ocapn_locator_set_hint(ocapn_locator *loc, const char *key,
    size_t klen, const char *val, size_t vlen);
/* Remove every hint; `as_dict` chooses `{}` (true) or `f` (false). */
OCAPN_API void ocapn_locator_clear_hints(ocapn_locator *loc, bool as_dict);
/* True when the hints are a dict (possibly empty), false for `f`. */
OCAPN_API bool ocapn_locator_hints_are_dict(const ocapn_locator *loc);
OCAPN_API size_t ocapn_locator_hint_count(const ocapn_locator *loc);
/* Hint `i` (in canonical order); OCAPN_E_RANGE past the end. */
OCAPN_API int ocapn_locator_hint_at(const ocapn_locator *loc, size_t i,
    const char **key, size_t *klen, const char **val, size_t *vlen);
/* Value of hint `key` (NUL-terminated key) or NULL. */
OCAPN_API const char *ocapn_locator_hint(const ocapn_locator *loc,
    const char *key, size_t *vlen);

/* Same transport and designator, compared bytewise (hints ignored). */
OCAPN_API bool ocapn_locator_same_peer(const ocapn_locator *a,
    const ocapn_locator *b);

/*
 * From the Syrup form.  Strict: exactly `<ocapn-peer SYMBOL STRING
 * HINTS>` with HINTS a dict of strings to strings or `f`, the symbol
 * non-empty and without '.', every text valid UTF-8, no repeated hint
 * key.  On OCAPN_E_PROTOCOL, `*why` (static; `why` may be NULL) says what
 * is wrong.  OCAPN_E_NOMEM; OCAPN_E_INVAL for NULL arguments.  The
 * locator copies what it needs: `v` may be freed afterwards.
 */
OCAPN_API int ocapn_locator_from_value(const ocapn_value *v,
    const ocapn_allocator *alloc, ocapn_locator **out, const char **why);
/* Emit the Syrup form as one item of `w`; returns the writer's (sticky)
 * error. */
OCAPN_API int ocapn_locator_write(const ocapn_locator *loc,
    ocapn_syrup_writer *w);
/* Build the Syrup form as a value in `arena` (strings point into the
 * locator: keep it alive and unchanged while the value is used).
 * OCAPN_E_NOMEM; OCAPN_E_RANGE if a string is 4 GiB or longer. */
OCAPN_API int ocapn_locator_to_value(const ocapn_locator *loc,
    ocapn_arena *arena, ocapn_value **out);

/*
 * Parse `ocapn://DESIGNATOR.TRANSPORT[?query]` (URIs are ASCII: other
 * bytes must be percent-encoded).
 *   - The scheme is case-insensitive.  The authority is a host only: no
 *     userinfo ('@'), port (':') or IP literal ('[').
 *   - The host is percent-decoded and split at its last '.': the
 *     designator (may contain '.', may be empty) and the transport
 *     (non-empty).  Both must decode to valid UTF-8.
 *   - A URI with a path (such as a sturdyref's /s/...) is refused: use
 *     ocapn_sturdyref_parse_uri().  A lone "/" is accepted as no path.
 *   - The query is `k=v` pairs separated by '&'; keys and values are
 *     percent-decoded, '+' means a space (as in form encoding), a raw
 *     '=' inside a value, an empty pair and a repeated key are refused.
 *     No '?' gives hints `f`; a '?' with nothing after it gives `{}`.
 *   - Fragments ('#') are refused.
 * On OCAPN_E_SYNTAX, `*err_off` (byte offset in `uri`) and `*why`
 * (static) say where and why; either pointer may be NULL.  OCAPN_E_NOMEM;
 * OCAPN_E_INVAL for NULL arguments.
 */
OCAPN_API int ocapn_locator_parse_uri(const char *uri, size_t len,
    const ocapn_allocator *alloc, ocapn_locator **out, size_t *err_off,
    const char **why);
/* Append the URI form to `out` (see the buffer rule at the top).  Every
 * byte outside RFC 3986 unreserved (ALPHA DIGIT - . _ ~) is written as
 * %XX with uppercase hex; hints in canonical order; hints `f` give no
 * '?', an empty dict a trailing '?'.  OCAPN_E_NOMEM, OCAPN_E_INVAL. */
OCAPN_API int ocapn_locator_to_uri(const ocapn_locator *loc,
    ocapn_buffer *out, const ocapn_allocator *alloc);

/* ---- Sturdyrefs --------------------------------------------------- */

/* New sturdyref: copies `peer` (with `alloc`) and the swiss number
 * bytes (any length, 0 included).  OCAPN_E_NOMEM, OCAPN_E_INVAL. */
OCAPN_API int ocapn_sturdyref_new(const ocapn_locator *peer,
    const uint8_t *swiss, size_t swiss_len, const ocapn_allocator *alloc,
    ocapn_sturdyref **out);
OCAPN_API void ocapn_sturdyref_free(ocapn_sturdyref *sr);
OCAPN_API const ocapn_locator *ocapn_sturdyref_locator(
    const ocapn_sturdyref *sr);
OCAPN_API const uint8_t *ocapn_sturdyref_swiss(const ocapn_sturdyref *sr,
    size_t *len);

/* `<ocapn-sturdyref PEER SWISS>`; SWISS may be a bytestring or (accepted
 * on input, as the draft spec describes it) a string, kept as its bytes;
 * the sturdyref remembers which, so that _write() and _to_value() give the
 * same bytes back (a sturdyref made by _new() or _parse_uri() has a
 * bytestring).  Errors as for ocapn_locator_from_value(). */
OCAPN_API int ocapn_sturdyref_from_value(const ocapn_value *v,
    const ocapn_allocator *alloc, ocapn_sturdyref **out, const char **why);
OCAPN_API int ocapn_sturdyref_write(const ocapn_sturdyref *sr,
    ocapn_syrup_writer *w);
OCAPN_API int ocapn_sturdyref_to_value(const ocapn_sturdyref *sr,
    ocapn_arena *arena, ocapn_value **out);

/* `ocapn://DESIGNATOR.TRANSPORT/s/SWISS[?query]`, SWISS base64url without
 * padding (complete '=' padding accepted on input; unused bits of the
 * last character must be zero).  Otherwise as ocapn_locator_parse_uri().
 * _to_uri() appends the URI form (see the buffer rule at the top). */
OCAPN_API int ocapn_sturdyref_parse_uri(const char *uri, size_t len,
    const ocapn_allocator *alloc, ocapn_sturdyref **out, size_t *err_off,
    const char **why);
OCAPN_API int ocapn_sturdyref_to_uri(const ocapn_sturdyref *sr,
    ocapn_buffer *out, const ocapn_allocator *alloc);

/* ---- Encodings used in locators ----------------------------------- */

/* RFC 4648 base32 (section 6 alphabet), lowercase, no padding
 * (unix-domain-socket designators): appends ceil(len*8/5) characters.
 * Decoding accepts either case and no padding; OCAPN_E_SYNTAX on a bad
 * character (or '='), an impossible length (len % 8 of 1, 3 or 6) or
 * non-zero unused bits in the last character, so that every byte string
 * has exactly one lowercase encoding.  Buffers follow the rule at the
 * top; OCAPN_E_NOMEM, OCAPN_E_INVAL. */
OCAPN_API int ocapn_base32_encode(const uint8_t *in, size_t len,
    ocapn_buffer *out, const ocapn_allocator *alloc);
OCAPN_API int ocapn_base32_decode(const char *in, size_t len,
    ocapn_buffer *out, const ocapn_allocator *alloc);
/* RFC 4648 base64url (section 5 alphabet) without padding (swiss numbers
 * in URIs): appends ceil(len*8/6) characters.  Decoding accepts optional
 * '=' padding, which must then be complete; OCAPN_E_SYNTAX as for
 * base32 (len % 4 of 1 is impossible). */
OCAPN_API int ocapn_base64url_encode(const uint8_t *in, size_t len,
    ocapn_buffer *out, const ocapn_allocator *alloc);
OCAPN_API int ocapn_base64url_decode(const char *in, size_t len,
    ocapn_buffer *out, const ocapn_allocator *alloc);

#ifdef __cplusplus
}
#endif

#endif /* OCAPN_LOCATOR_H */
