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
 * computed over them).  Adding a hint makes the hints a dict.
 *
 * Handles are owned by the caller and freed with the matching _free();
 * getters return pointers owned by the handle, valid until it is changed
 * or freed.  Strings returned by getters are also NUL-terminated.
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
/* Deep copy with the same allocator. */
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

/* Same transport and designator (hints ignored). */
OCAPN_API bool ocapn_locator_same_peer(const ocapn_locator *a,
    const ocapn_locator *b);

/*
 * From the Syrup form.  Strict: exactly `<ocapn-peer SYMBOL STRING
 * HINTS>` with HINTS a dict of strings to strings or `f`.  On
 * OCAPN_E_PROTOCOL, `*why` (static, may be NULL) says what is wrong.
 */
OCAPN_API int ocapn_locator_from_value(const ocapn_value *v,
    const ocapn_allocator *alloc, ocapn_locator **out, const char **why);
/* Emit the Syrup form as one item of `w`. */
OCAPN_API int ocapn_locator_write(const ocapn_locator *loc,
    ocapn_syrup_writer *w);
/* Build the Syrup form as a value in `arena` (strings point into the
 * locator: keep it alive and unchanged while the value is used). */
OCAPN_API int ocapn_locator_to_value(const ocapn_locator *loc,
    ocapn_arena *arena, ocapn_value **out);

/*
 * Parse `ocapn://DESIGNATOR.TRANSPORT[?query]`.  The host part is
 * percent-decoded and split at its last '.'; query keys and values are
 * percent-decoded ('+' means a space, as in form encoding).  A URI with a
 * path (such as a sturdyref's /s/...) is refused: use
 * ocapn_sturdyref_parse_uri().  On OCAPN_E_SYNTAX, `*err_off` and `*why`
 * (static) say where and why.  Hints absent -> `f`.
 */
OCAPN_API int ocapn_locator_parse_uri(const char *uri, size_t len,
    const ocapn_allocator *alloc, ocapn_locator **out, size_t *err_off,
    const char **why);
/* Append the URI form to `out` (NUL-terminated; the NUL is not counted in
 * out->len).  Characters outside RFC 3986 unreserved are percent-encoded.
 */
OCAPN_API int ocapn_locator_to_uri(const ocapn_locator *loc,
    ocapn_buffer *out, const ocapn_allocator *alloc);

/* ---- Sturdyrefs --------------------------------------------------- */

/* New sturdyref: copies `peer` and the swiss number bytes. */
OCAPN_API int ocapn_sturdyref_new(const ocapn_locator *peer,
    const uint8_t *swiss, size_t swiss_len, const ocapn_allocator *alloc,
    ocapn_sturdyref **out);
OCAPN_API void ocapn_sturdyref_free(ocapn_sturdyref *sr);
OCAPN_API const ocapn_locator *ocapn_sturdyref_locator(
    const ocapn_sturdyref *sr);
OCAPN_API const uint8_t *ocapn_sturdyref_swiss(const ocapn_sturdyref *sr,
    size_t *len);

/* `<ocapn-sturdyref PEER SWISS>`; SWISS may be a bytestring or (accepted
 * on input) a string, kept as its bytes. */
OCAPN_API int ocapn_sturdyref_from_value(const ocapn_value *v,
    const ocapn_allocator *alloc, ocapn_sturdyref **out, const char **why);
OCAPN_API int ocapn_sturdyref_write(const ocapn_sturdyref *sr,
    ocapn_syrup_writer *w);
OCAPN_API int ocapn_sturdyref_to_value(const ocapn_sturdyref *sr,
    ocapn_arena *arena, ocapn_value **out);

/* `ocapn://DESIGNATOR.TRANSPORT/s/SWISS[?query]`, SWISS base64url without
 * padding (padding accepted on input). */
OCAPN_API int ocapn_sturdyref_parse_uri(const char *uri, size_t len,
    const ocapn_allocator *alloc, ocapn_sturdyref **out, size_t *err_off,
    const char **why);
OCAPN_API int ocapn_sturdyref_to_uri(const ocapn_sturdyref *sr,
    ocapn_buffer *out, const ocapn_allocator *alloc);

/* ---- Encodings used in locators ----------------------------------- */

/* RFC 4648 base32, lowercase, no padding (unix-domain-socket designators):
 * needs ceil(len*8/5) bytes + NUL.  Decoding accepts either case, no
 * padding; OCAPN_E_SYNTAX on a bad character or impossible length. */
OCAPN_API int ocapn_base32_encode(const uint8_t *in, size_t len,
    ocapn_buffer *out, const ocapn_allocator *alloc);
OCAPN_API int ocapn_base32_decode(const char *in, size_t len,
    ocapn_buffer *out, const ocapn_allocator *alloc);
/* RFC 4648 base64url without padding (swiss numbers in URIs); decoding
 * accepts optional '=' padding. */
OCAPN_API int ocapn_base64url_encode(const uint8_t *in, size_t len,
    ocapn_buffer *out, const ocapn_allocator *alloc);
OCAPN_API int ocapn_base64url_decode(const char *in, size_t len,
    ocapn_buffer *out, const ocapn_allocator *alloc);

#ifdef __cplusplus
}
#endif

#endif /* OCAPN_LOCATOR_H */
