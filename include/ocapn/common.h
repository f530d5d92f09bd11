/*
 * libocapn: common definitions shared by every layer.
 *
 * Error codes, the allocator hook, version queries and the export macro.
 * Every public function of libocapn that can fail returns an `int` that is
 * either OCAPN_OK (0) or one of the positive `ocapn_err` values below.
 */
#ifndef OCAPN_COMMON_H
#define OCAPN_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include <ocapn/version.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32) && defined(OCAPN_SHARED_BUILD)
#define OCAPN_API __declspec(dllexport)
#elif defined(__GNUC__) || defined(__clang__)
#define OCAPN_API __attribute__((visibility("default")))
#else
#define OCAPN_API
#endif

#if defined(__GNUC__) || defined(__clang__)
#define OCAPN_NODISCARD __attribute__((warn_unused_result))
#else
#define OCAPN_NODISCARD
#endif

/*
 * The one error enumeration of the library.  Values are stable: new codes
 * are only ever appended.  OCAPN_E_INCOMPLETE and OCAPN_E_AGAIN are
 * statuses rather than failures ("feed more bytes", "try again when the
 * transport is ready").
 */
typedef enum ocapn_err {
	OCAPN_OK = 0,
	OCAPN_E_NOMEM,       /* an allocation failed */
	OCAPN_E_INVAL,       /* a caller passed an invalid argument */
	OCAPN_E_INCOMPLETE,  /* the input ends inside a value: feed more bytes */
	OCAPN_E_SYNTAX,      /* malformed input */
	OCAPN_E_NONCANONICAL,/* well-formed but not in canonical form */
	OCAPN_E_LIMIT,       /* a configured limit was exceeded */
	OCAPN_E_NOSPACE,     /* a caller-provided output buffer is too small */
	OCAPN_E_RANGE,       /* a value does not fit the requested C type */
	OCAPN_E_TYPE,        /* a value has the wrong kind */
	OCAPN_E_DUPLICATE,   /* duplicate dictionary key or set item */
	OCAPN_E_UTF8,        /* invalid UTF-8 or a surrogate code point */
	OCAPN_E_TRAILING,    /* bytes after the single value that was expected */
	OCAPN_E_STATE,       /* the call is not valid in the object's state */
	OCAPN_E_PROTOCOL,    /* the peer violated the protocol */
	OCAPN_E_SIGNATURE,   /* a signature did not verify */
	OCAPN_E_VERSION,     /* incompatible protocol version */
	OCAPN_E_ABORTED,     /* the session was aborted */
	OCAPN_E_CLOSED,      /* the object or connection is closed */
	OCAPN_E_BROKEN,      /* a promise was broken */
	OCAPN_E_NOTFOUND,    /* no such object, peer or entry */
	OCAPN_E_AGAIN,       /* would block: retry when ready */
	OCAPN_E_IO,          /* an operating-system I/O error */
	OCAPN_E_CONNREFUSED, /* the peer refused the connection */
	OCAPN_E_TIMEDOUT,    /* an operation timed out */
	OCAPN_E_UNSUPPORTED, /* the feature or transport is not supported */
	OCAPN_E_CRYPTO,      /* a cryptographic primitive failed */
	OCAPN_E_EXISTS,      /* the entry already exists */
	OCAPN_E__COUNT       /* not an error: number of codes */
} ocapn_err;

/* A short English description of `err`; never NULL, static storage. */
OCAPN_API const char *ocapn_strerror(int err);

/* The symbolic name of `err` ("OCAPN_E_SYNTAX"); never NULL, static. */
OCAPN_API const char *ocapn_err_name(int err);

/*
 * Allocator hook, one function in the style of Lua's lua_Alloc:
 *   new_size == 0          free `ptr` (which may be NULL), return NULL
 *   ptr == NULL            allocate `new_size` bytes
 *   otherwise              resize `ptr` from `old_size` to `new_size`
 * `old_size` is always the size the block was allocated or last resized
 * with (0 for a new block).  Returned memory must be aligned for any type.
 */
typedef void *(*ocapn_alloc_fn)(void *user, void *ptr, size_t old_size,
    size_t new_size);

/*
 * An allocator: a function and its user pointer.  Every object that takes
 * an `const ocapn_allocator *` copies it; NULL means the C library's
 * malloc/realloc/free.
 */
typedef struct ocapn_allocator {
	ocapn_alloc_fn fn;
	void *user;
} ocapn_allocator;

/* The default allocator (malloc/realloc/free). */
OCAPN_API const ocapn_allocator *ocapn_default_allocator(void);

/*
 * A growable byte buffer.  The fields are public; `data` is owned by
 * whoever owns the buffer and is freed with ocapn_buffer_release() using
 * the same allocator that grew it.
 */
typedef struct ocapn_buffer {
	uint8_t *data;
	size_t len;
	size_t cap;
} ocapn_buffer;

OCAPN_API void ocapn_buffer_init(ocapn_buffer *b);
/* Make room for `extra` more bytes; OCAPN_E_NOMEM. */
OCAPN_API int ocapn_buffer_reserve(ocapn_buffer *b,
    const ocapn_allocator *alloc, size_t extra);
/* Append `n` bytes; OCAPN_E_NOMEM. */
OCAPN_API int ocapn_buffer_append(ocapn_buffer *b,
    const ocapn_allocator *alloc, const void *p, size_t n);
/* Free the data and reinitialise `b`. */
OCAPN_API void ocapn_buffer_release(ocapn_buffer *b,
    const ocapn_allocator *alloc);

/* Version of the library actually linked ("0.1.0"), static storage. */
OCAPN_API const char *ocapn_version(void);

/* Same as OCAPN_VERSION_NUMBER of the linked library. */
OCAPN_API uint32_t ocapn_version_number(void);

#ifdef __cplusplus
}
#endif

#endif /* OCAPN_COMMON_H */
