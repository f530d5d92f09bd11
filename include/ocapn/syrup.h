/*
 * libocapn: Syrup, the canonical binary encoding under OCapN.
 *
 * Four pieces, usable separately:
 *
 *   - the value model (`ocapn_value`) and the arena that owns decoded and
 *     constructed values;
 *   - a strict decoder: one value, or a stream of values, from contiguous
 *     bytes, incremental by re-feeding (a truncated value is
 *     OCAPN_E_INCOMPLETE, never an error), plus a resumable reader that
 *     frames values out of arbitrary chunks in linear time;
 *   - a canonical writer (builder API: encode without building a tree, dict
 *     keys and set items sorted by their encoded bytes);
 *   - the abstract notation of the OCapN spec (printer and parser), see
 *     docs/syrup.md for the exact grammar and its extensions.
 *
 * Ownership in one sentence: every `ocapn_value` belongs to an arena (or to
 * the caller who built it) and every byte pointer inside a decoded value
 * points either into the caller's input buffer or into the arena; nothing
 * the decoder returns needs to be freed on its own.
 */
#ifndef OCAPN_SYRUP_H
#define OCAPN_SYRUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ocapn/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ */
/* Value model                                                          */
/* ------------------------------------------------------------------ */

typedef enum ocapn_kind {
	OCAPN_BOOL = 1,
	OCAPN_INT,     /* any size; int64 fast path, else decimal digits */
	OCAPN_FLOAT64, /* Syrup `D` */
	OCAPN_FLOAT32, /* Syrup `F`: decoded and kept, widened on output
	                * unless the writer is asked to emit it */
	OCAPN_BYTES,
	OCAPN_STRING,  /* UTF-8, no surrogates */
	OCAPN_SYMBOL,  /* UTF-8, no surrogates */
	OCAPN_LIST,
	OCAPN_DICT,
	OCAPN_SET,
	OCAPN_RECORD,
	OCAPN_REF      /* a capability reference (ocapn_ref, see vat.h): only
	                * meaningful inside CapTP arguments; the Syrup writer
	                * refuses it (the session engine encodes it as a
	                * descriptor) */
} ocapn_kind;

/* `ocapn_value.flags` bits. */
#define OCAPN_VALUE_BIGINT 0x01u   /* OCAPN_INT held as decimal digits */
#define OCAPN_VALUE_NEGATIVE 0x02u /* with OCAPN_VALUE_BIGINT: value < 0 */

/*
 * One Syrup value, 16 bytes on 64-bit targets.  The layout is public and
 * stable so C code can read values without calls; bindings can use the
 * accessor functions below instead.
 *
 *   kind      field used       len
 *   BOOL      u.b (0 or 1)     0
 *   INT       u.i              0           (fits int64_t)
 *   INT       u.p: digits      digit count (flags has BIGINT, maybe
 *                                           NEGATIVE; no sign, no leading
 *                                           zero, magnitude > INT64 range)
 *   FLOAT64   u.f64            0
 *   FLOAT32   u.f32            0
 *   BYTES,
 *   STRING,
 *   SYMBOL    u.p              byte length (not NUL-terminated)
 *   LIST, SET u.items          item count
 *   RECORD    u.items          1 + field count; items[0] is the label
 *   DICT      u.items          pair count; items[2i] key, items[2i+1] value
 *   REF       u.ref            0           (struct ocapn_ref *, borrowed)
 *
 * A record always has a label, so a valid RECORD has len >= 1.
 */
typedef struct ocapn_value ocapn_value;
struct ocapn_value {
	uint8_t kind;
	uint8_t flags;
	uint16_t reserved_; /* zero */
	uint32_t len;
	union {
		int64_t i;
		double f64;
		float f32;
		int b;
		const uint8_t *p;
		ocapn_value *items;
		struct ocapn_ref *ref;
	} u;
};

/* Largest byte length, item count or digit count a value can have. */
#define OCAPN_VALUE_MAX_LEN UINT32_MAX

/* ---- Arena -------------------------------------------------------- */

/*
 * A bump allocator for values and copied bytes.  Resetting it makes every
 * value allocated from it invalid at once and keeps its memory for reuse,
 * so decoding message after message allocates nothing once the arena has
 * grown to the working size.
 */
typedef struct ocapn_arena ocapn_arena;

/* Create an arena (NULL allocator = malloc).  Returns NULL on no memory.
 * Free it with ocapn_arena_free(). */
OCAPN_API ocapn_arena *ocapn_arena_new(const ocapn_allocator *alloc);
OCAPN_API void ocapn_arena_free(ocapn_arena *arena);
/* Invalidate everything allocated from `arena`, keep the memory. */
OCAPN_API void ocapn_arena_reset(ocapn_arena *arena);
/* `size` bytes aligned for any value, owned by the arena; NULL on no
 * memory.  Zero-size requests return a valid unique pointer. */
OCAPN_API void *ocapn_arena_alloc(ocapn_arena *arena, size_t size);
/* Copy `len` bytes into the arena; NULL on no memory. */
OCAPN_API void *ocapn_arena_memdup(ocapn_arena *arena, const void *src,
    size_t len);
/* `n` zeroed values; NULL on no memory. */
OCAPN_API ocapn_value *ocapn_arena_values(ocapn_arena *arena, size_t n);
/* Bytes currently handed out and bytes reserved from the allocator. */
OCAPN_API size_t ocapn_arena_used(const ocapn_arena *arena);
OCAPN_API size_t ocapn_arena_reserved(const ocapn_arena *arena);

/* ---- Building values ---------------------------------------------- */

/*
 * Initialise `*v`.  Byte pointers are stored, not copied: the caller keeps
 * them alive as long as the value (use ocapn_arena_memdup() to copy).
 * String and symbol setters do not validate UTF-8; the writer does.
 */
OCAPN_API void ocapn_value_set_bool(ocapn_value *v, bool b);
OCAPN_API void ocapn_value_set_int(ocapn_value *v, int64_t i);
OCAPN_API void ocapn_value_set_float64(ocapn_value *v, double d);
OCAPN_API void ocapn_value_set_float32(ocapn_value *v, float f);
OCAPN_API void ocapn_value_set_bytes(ocapn_value *v, const void *p,
    size_t len);
OCAPN_API void ocapn_value_set_string(ocapn_value *v, const char *s,
    size_t len);
OCAPN_API void ocapn_value_set_symbol(ocapn_value *v, const char *s,
    size_t len);
/* Containers: `items` has `n` values (2n for a dict, 1+fields for a
 * record, the label first). */
OCAPN_API void ocapn_value_set_list(ocapn_value *v, ocapn_value *items,
    size_t n);
OCAPN_API void ocapn_value_set_set(ocapn_value *v, ocapn_value *items,
    size_t n);
OCAPN_API void ocapn_value_set_dict(ocapn_value *v, ocapn_value *kv,
    size_t npairs);
OCAPN_API void ocapn_value_set_record(ocapn_value *v, ocapn_value *items,
    size_t n_with_label);
/*
 * Any integer from its decimal text: optional sign, digits, no leading
 * zeros ("0", "-42", "1208925819614629174706176").  Values that fit int64
 * get the fast form; others copy their digits into `arena`.  Returns
 * OCAPN_E_SYNTAX for malformed text, OCAPN_E_NOMEM.
 */
OCAPN_API int ocapn_value_set_int_text(ocapn_value *v, ocapn_arena *arena,
    const char *text, size_t len);

/* ---- Reading values ----------------------------------------------- */

OCAPN_API ocapn_kind ocapn_value_kind(const ocapn_value *v);
/* OCAPN_E_TYPE if `v` is not of the kind; OCAPN_E_RANGE if it does not
 * fit.  Outputs are written only on success. */
OCAPN_API int ocapn_value_get_bool(const ocapn_value *v, bool *out);
OCAPN_API int ocapn_value_get_int64(const ocapn_value *v, int64_t *out);
OCAPN_API int ocapn_value_get_uint64(const ocapn_value *v, uint64_t *out);
OCAPN_API bool ocapn_value_fits_int64(const ocapn_value *v);
OCAPN_API bool ocapn_value_fits_uint64(const ocapn_value *v);
/* Decimal text of any integer into `buf` (NUL-terminated).  Needs
 * len + 3 bytes; OCAPN_E_NOSPACE with *needed set otherwise. */
OCAPN_API int ocapn_value_get_int_text(const ocapn_value *v, char *buf,
    size_t cap, size_t *needed);
OCAPN_API int ocapn_value_get_float64(const ocapn_value *v, double *out);
OCAPN_API int ocapn_value_get_float32(const ocapn_value *v, float *out);
/* Bytes, string or symbol payload (not NUL-terminated). */
OCAPN_API int ocapn_value_get_data(const ocapn_value *v,
    const uint8_t **data, size_t *len);
/* Items of a list or set, pairs of a dict, fields of a record (label
 * excluded).  0 for atoms. */
OCAPN_API size_t ocapn_value_count(const ocapn_value *v);
/* Item `i` of a list or set, field `i` of a record; NULL if out of range
 * or not a container. */
OCAPN_API const ocapn_value *ocapn_value_item(const ocapn_value *v,
    size_t i);
OCAPN_API const ocapn_value *ocapn_record_label(const ocapn_value *v);
OCAPN_API const ocapn_value *ocapn_dict_key(const ocapn_value *v, size_t i);
OCAPN_API const ocapn_value *ocapn_dict_val(const ocapn_value *v, size_t i);
/* The value stored under `key` in dict `v`, or NULL. */
OCAPN_API const ocapn_value *ocapn_dict_get(const ocapn_value *v,
    const ocapn_value *key);
/* True if `v` is a symbol (or, for the second, string) equal to the
 * NUL-terminated `name`. */
OCAPN_API bool ocapn_value_is_symbol(const ocapn_value *v, const char *name);
OCAPN_API bool ocapn_value_is_string(const ocapn_value *v, const char *name);
/* True if `v` is a record whose label is the symbol `label` and that has
 * exactly `nfields` fields (pass SIZE_MAX for any count). */
OCAPN_API bool ocapn_value_is_record(const ocapn_value *v, const char *label,
    size_t nfields);
/*
 * Equality of the values Syrup can distinguish: same kind and same
 * canonical encoding (so dicts and sets compare regardless of the order of
 * their entries in memory, NaNs equal each other, and -0.0 != 0.0).
 */
OCAPN_API bool ocapn_value_equal(const ocapn_value *a, const ocapn_value *b);

/* ------------------------------------------------------------------ */
/* Decoder                                                              */
/* ------------------------------------------------------------------ */

typedef struct ocapn_syrup_decoder ocapn_syrup_decoder;

/* Decoder flags (ocapn_syrup_decoder_new). */
#define OCAPN_SYRUP_LAX_ORDER 0x01u   /* accept unsorted dict keys/set items
                                      * (duplicates are still refused) */
#define OCAPN_SYRUP_NO_WHITESPACE 0x02u /* refuse whitespace between tokens */
#define OCAPN_SYRUP_COPY_ATOMS 0x04u  /* copy every byte payload into the
                                      * arena before inspecting it, and read
                                      * each input byte once: for input that
                                      * another party can rewrite (shm) */

typedef enum ocapn_syrup_limit {
	OCAPN_SYRUP_MAX_DEPTH = 1,  /* container nesting, default 64 */
	OCAPN_SYRUP_MAX_ATOM,       /* bytes in one atom / digits in one
	                             * integer, default 64 MiB */
	OCAPN_SYRUP_MAX_ITEMS,      /* items in one container, default 1M */
	OCAPN_SYRUP_MAX_TOTAL       /* bytes in one top-level value,
	                             * default 128 MiB, at most 4 GiB - 1 */
} ocapn_syrup_limit;

/* Create a decoder (NULL allocator = malloc); NULL on no memory.  The
 * decoder keeps scratch space between calls; free with
 * ocapn_syrup_decoder_free(). */
OCAPN_API ocapn_syrup_decoder *ocapn_syrup_decoder_new(unsigned flags,
    const ocapn_allocator *alloc);
OCAPN_API void ocapn_syrup_decoder_free(ocapn_syrup_decoder *dec);
/* OCAPN_E_INVAL for an unknown limit or a value of 0. */
OCAPN_API int ocapn_syrup_decoder_set_limit(ocapn_syrup_decoder *dec,
    ocapn_syrup_limit which, uint64_t value);
OCAPN_API uint64_t ocapn_syrup_decoder_get_limit(
    const ocapn_syrup_decoder *dec, ocapn_syrup_limit which);

/*
 * Decode the first value of `buf[0..len)`, skipping whitespace before it.
 * On OCAPN_OK, `*out` points to the value (allocated in `arena`) and
 * `*consumed` is the number of bytes it took, so a stream is decoded by
 * calling again at buf + *consumed.
 *
 * OCAPN_E_INCOMPLETE: `buf` ends inside the value (or holds only
 * whitespace); call again with more bytes.  Nothing was kept, but the
 * arena may have grown: reset it when convenient.
 * Any other error: the input is invalid; ocapn_syrup_decoder_error() gives
 * the byte offset and the reason.  After any failure the arena holds no
 * more than before the call.
 *
 * Unless OCAPN_SYRUP_COPY_ATOMS was given, string, symbol, bytestring and
 * big-integer payloads point into `buf`: keep `buf` alive and unchanged as
 * long as the value is used.
 */
OCAPN_API OCAPN_NODISCARD int ocapn_syrup_decode(ocapn_syrup_decoder *dec,
    ocapn_arena *arena, const uint8_t *buf, size_t len, ocapn_value **out,
    size_t *consumed);

/* Like ocapn_syrup_decode() but `buf` must hold exactly one value, with
 * only whitespace after it (OCAPN_E_TRAILING otherwise). */
OCAPN_API OCAPN_NODISCARD int ocapn_syrup_decode_one(
    ocapn_syrup_decoder *dec, ocapn_arena *arena, const uint8_t *buf,
    size_t len, ocapn_value **out);

/* Reason of the last decode failure (static string, "" if none) and its
 * byte offset relative to the `buf` passed to the failing call. */
OCAPN_API const char *ocapn_syrup_decoder_error(
    const ocapn_syrup_decoder *dec, size_t *offset);

/* ---- Framing scanner --------------------------------------------- */

/*
 * A resumable scanner that finds where each top-level value ends in a byte
 * stream delivered in arbitrary chunks, in time linear in the stream, with
 * the decoder's structural limits (depth, atom length, total size) and
 * type-byte checks applied as bytes arrive.  It does not build values:
 * decode each framed value with ocapn_syrup_decode_one().
 */
typedef struct ocapn_syrup_scanner ocapn_syrup_scanner;

OCAPN_API ocapn_syrup_scanner *ocapn_syrup_scanner_new(
    const ocapn_syrup_decoder *limits_from, const ocapn_allocator *alloc);
OCAPN_API void ocapn_syrup_scanner_free(ocapn_syrup_scanner *sc);
/* Forget any partial value. */
OCAPN_API void ocapn_syrup_scanner_reset(ocapn_syrup_scanner *sc);
/*
 * Scan `chunk[0..len)`, the bytes that follow those already scanned.
 * OCAPN_OK: a value ends inside the chunk; `*consumed` bytes of the chunk
 * (up to and including its last byte) belong to it and the scanner is
 * ready for the next value.  Whitespace before a value belongs to it.
 * OCAPN_E_INCOMPLETE: all `len` bytes were consumed, no value ended.
 * Other errors: the stream is invalid; see ocapn_syrup_scanner_error().
 */
OCAPN_API OCAPN_NODISCARD int ocapn_syrup_scanner_feed(
    ocapn_syrup_scanner *sc, const uint8_t *chunk, size_t len,
    size_t *consumed);
/* Bytes of the current (unfinished) value seen so far, whitespace
 * included. */
OCAPN_API size_t ocapn_syrup_scanner_pending(const ocapn_syrup_scanner *sc);
OCAPN_API const char *ocapn_syrup_scanner_error(
    const ocapn_syrup_scanner *sc, size_t *stream_offset);

/* ------------------------------------------------------------------ */
/* Writer (canonical encoder and builder)                               */
/* ------------------------------------------------------------------ */

typedef struct ocapn_syrup_writer ocapn_syrup_writer;

/* Writer flags. */
#define OCAPN_SYRUP_WRITE_FLOAT32 0x01u /* emit OCAPN_FLOAT32 as `F`; by
                                         * default it is widened to `D`
                                         * (exact), because Goblins cannot
                                         * read `F` */

/* Create a writer (NULL allocator = malloc); NULL on no memory.  The
 * writer starts with its own growable output buffer selected. */
OCAPN_API ocapn_syrup_writer *ocapn_syrup_writer_new(unsigned flags,
    const ocapn_allocator *alloc);
OCAPN_API void ocapn_syrup_writer_free(ocapn_syrup_writer *w);
OCAPN_API void ocapn_syrup_writer_set_flags(ocapn_syrup_writer *w,
    unsigned flags);

/* Start a new output into the writer's own buffer (memory is reused). */
OCAPN_API void ocapn_syrup_writer_reset(ocapn_syrup_writer *w);
/* Start a new output into `buf[0..cap)`.  Writing past `cap` fails with
 * OCAPN_E_NOSPACE; ocapn_syrup_writer_size() then tells how many bytes the
 * output needed so far. */
OCAPN_API void ocapn_syrup_writer_reset_fixed(ocapn_syrup_writer *w,
    uint8_t *buf, size_t cap);
/* Start a new output appended to the caller's `*buf`, grown with the
 * writer's allocator; the caller owns `*buf` throughout. */
OCAPN_API void ocapn_syrup_writer_reset_buffer(ocapn_syrup_writer *w,
    ocapn_buffer *buf);

/*
 * Emit one item.  Errors are sticky: after the first failure every call
 * returns that error and ocapn_syrup_writer_finish() reports it.
 * Strings and symbols are validated as UTF-8 (OCAPN_E_UTF8).
 */
OCAPN_API int ocapn_syrup_write_bool(ocapn_syrup_writer *w, bool b);
OCAPN_API int ocapn_syrup_write_int(ocapn_syrup_writer *w, int64_t i);
OCAPN_API int ocapn_syrup_write_uint(ocapn_syrup_writer *w, uint64_t u);
/* An integer from decimal digits without sign (no leading zeros). */
OCAPN_API int ocapn_syrup_write_bigint(ocapn_syrup_writer *w, bool negative,
    const char *digits, size_t ndigits);
OCAPN_API int ocapn_syrup_write_float64(ocapn_syrup_writer *w, double d);
/* Emits `F` regardless of the flags: an explicit request. */
OCAPN_API int ocapn_syrup_write_float32(ocapn_syrup_writer *w, float f);
OCAPN_API int ocapn_syrup_write_bytes(ocapn_syrup_writer *w, const void *p,
    size_t len);
OCAPN_API int ocapn_syrup_write_string(ocapn_syrup_writer *w, const char *s,
    size_t len);
OCAPN_API int ocapn_syrup_write_symbol(ocapn_syrup_writer *w, const char *s,
    size_t len);
/* Containers.  A record's first item is its label.  Dict entries are
 * written key, value, key, value in any order; the writer sorts them (and
 * set items) by encoded bytes at *_end and fails with OCAPN_E_DUPLICATE on
 * a repeated key or item. */
OCAPN_API int ocapn_syrup_write_list_begin(ocapn_syrup_writer *w);
OCAPN_API int ocapn_syrup_write_list_end(ocapn_syrup_writer *w);
OCAPN_API int ocapn_syrup_write_dict_begin(ocapn_syrup_writer *w);
OCAPN_API int ocapn_syrup_write_dict_end(ocapn_syrup_writer *w);
OCAPN_API int ocapn_syrup_write_set_begin(ocapn_syrup_writer *w);
OCAPN_API int ocapn_syrup_write_set_end(ocapn_syrup_writer *w);
OCAPN_API int ocapn_syrup_write_record_begin(ocapn_syrup_writer *w);
OCAPN_API int ocapn_syrup_write_record_end(ocapn_syrup_writer *w);
/* A whole value tree. */
OCAPN_API int ocapn_syrup_write_value(ocapn_syrup_writer *w,
    const ocapn_value *v);
/* Bytes that are already one canonical Syrup value (not checked). */
OCAPN_API int ocapn_syrup_write_raw(ocapn_syrup_writer *w, const void *p,
    size_t len);

/*
 * Finish the output: every container must be closed.  On success `*data`
 * and `*len` describe the whole output (for the writer's own buffer, owned
 * by the writer and valid until the next reset; otherwise the caller's).
 */
OCAPN_API OCAPN_NODISCARD int ocapn_syrup_writer_finish(
    ocapn_syrup_writer *w, const uint8_t **data, size_t *len);
/* Bytes written (or, after OCAPN_E_NOSPACE, needed) so far. */
OCAPN_API size_t ocapn_syrup_writer_size(const ocapn_syrup_writer *w);
/* The sticky error and a reason string (static, "" if none). */
OCAPN_API int ocapn_syrup_writer_error(const ocapn_syrup_writer *w,
    const char **reason);

/* ------------------------------------------------------------------ */
/* Abstract notation                                                    */
/* ------------------------------------------------------------------ */

/* Printer flags. */
#define OCAPN_NOTATION_ASCII 0x01u /* escape every non-ASCII character */

/*
 * Append the notation of `v` (one line, no newline) to `out`, grown with
 * `alloc` (NULL = malloc).  OCAPN_E_NOMEM, or OCAPN_E_INVAL for a value
 * that is not well formed (e.g. a record without a label).
 */
OCAPN_API int ocapn_notation_print(const ocapn_value *v, unsigned flags,
    ocapn_buffer *out, const ocapn_allocator *alloc);

/*
 * Parse the first value written in notation in `text[0..len)`, skipping
 * whitespace before it; values are allocated in `arena`.  On success
 * `*consumed` is the number of bytes used (parse a sequence by calling
 * again).  On failure `*err_offset` and `*reason` (static) tell why;
 * OCAPN_E_INCOMPLETE when the text holds only whitespace.
 */
OCAPN_API OCAPN_NODISCARD int ocapn_notation_parse(const char *text,
    size_t len, ocapn_arena *arena, ocapn_value **out, size_t *consumed,
    size_t *err_offset, const char **reason);

#ifdef __cplusplus
}
#endif

#endif /* OCAPN_SYRUP_H */
