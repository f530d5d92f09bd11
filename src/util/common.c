/*
 * Error strings, the default allocator, version queries, array growth.
 */
#include <stdlib.h>

#include "util.h"

static const struct {
	const char *name;
	const char *text;
} errtab[OCAPN_E__COUNT] = {
	[OCAPN_OK] = {"OCAPN_OK", "success"},
	[OCAPN_E_NOMEM] = {"OCAPN_E_NOMEM", "out of memory"},
	[OCAPN_E_INVAL] = {"OCAPN_E_INVAL", "invalid argument"},
	[OCAPN_E_INCOMPLETE] = {"OCAPN_E_INCOMPLETE",
	    "input ends inside a value (need more bytes)"},
	[OCAPN_E_SYNTAX] = {"OCAPN_E_SYNTAX", "malformed input"},
	[OCAPN_E_NONCANONICAL] = {"OCAPN_E_NONCANONICAL",
	    "input is not in canonical form"},
	[OCAPN_E_LIMIT] = {"OCAPN_E_LIMIT", "a configured limit was exceeded"},
	[OCAPN_E_NOSPACE] = {"OCAPN_E_NOSPACE", "output buffer too small"},
	[OCAPN_E_RANGE] = {"OCAPN_E_RANGE", "value out of range"},
	[OCAPN_E_TYPE] = {"OCAPN_E_TYPE", "value has the wrong kind"},
	[OCAPN_E_DUPLICATE] = {"OCAPN_E_DUPLICATE",
	    "duplicate dictionary key or set item"},
	[OCAPN_E_UTF8] = {"OCAPN_E_UTF8",
	    "invalid UTF-8 or surrogate code point"},
	[OCAPN_E_TRAILING] = {"OCAPN_E_TRAILING",
	    "unexpected bytes after the value"},
	[OCAPN_E_STATE] = {"OCAPN_E_STATE",
	    "operation not valid in the current state"},
	[OCAPN_E_PROTOCOL] = {"OCAPN_E_PROTOCOL",
	    "the peer violated the protocol"},
	[OCAPN_E_SIGNATURE] = {"OCAPN_E_SIGNATURE",
	    "signature verification failed"},
	[OCAPN_E_VERSION] = {"OCAPN_E_VERSION",
	    "incompatible protocol version"},
	[OCAPN_E_ABORTED] = {"OCAPN_E_ABORTED", "session aborted"},
	[OCAPN_E_CLOSED] = {"OCAPN_E_CLOSED", "closed"},
	[OCAPN_E_BROKEN] = {"OCAPN_E_BROKEN", "promise broken"},
	[OCAPN_E_NOTFOUND] = {"OCAPN_E_NOTFOUND", "not found"},
	[OCAPN_E_AGAIN] = {"OCAPN_E_AGAIN",
	    "operation would block; try again"},
	[OCAPN_E_IO] = {"OCAPN_E_IO", "input/output error"},
	[OCAPN_E_CONNREFUSED] = {"OCAPN_E_CONNREFUSED",
	    "connection refused"},
	[OCAPN_E_TIMEDOUT] = {"OCAPN_E_TIMEDOUT", "timed out"},
	[OCAPN_E_UNSUPPORTED] = {"OCAPN_E_UNSUPPORTED", "not supported"},
	[OCAPN_E_CRYPTO] = {"OCAPN_E_CRYPTO",
	    "cryptographic operation failed"},
	[OCAPN_E_EXISTS] = {"OCAPN_E_EXISTS", "already exists"},
};

OCAPN_API const char *
ocapn_strerror(int err)
{
	if (err < 0 || err >= OCAPN_E__COUNT)
		return "unknown error";
	return errtab[err].text;
}

OCAPN_API const char *
ocapn_err_name(int err)
{
	if (err < 0 || err >= OCAPN_E__COUNT)
		return "OCAPN_E_UNKNOWN";
	return errtab[err].name;
}

static void *
default_alloc(void *user, void *ptr, size_t old_size, size_t new_size)
{
	(void)user;
	(void)old_size;
	if (new_size == 0) {
		free(ptr);
		return NULL;
	}
	return realloc(ptr, new_size);
}

static const ocapn_allocator default_allocator = {default_alloc, NULL};

OCAPN_API const ocapn_allocator *
ocapn_default_allocator(void)
{
	return &default_allocator;
}

void
ocapn__alloc_init(ocapn_allocator *dst, const ocapn_allocator *src)
{
	*dst = (src && src->fn) ? *src : default_allocator;
}

int
ocapn__grow(const ocapn_allocator *a, void **pp, size_t *cap, size_t need,
    size_t elem)
{
	if (need <= *cap)
		return OCAPN_OK;
	size_t ncap = *cap ? *cap : 8;
	while (ncap < need) {
		if (ncap > SIZE_MAX / 2)
			return OCAPN_E_NOMEM;
		ncap *= 2;
	}
	if (ncap > SIZE_MAX / elem)
		return OCAPN_E_NOMEM;
	void *np = ocapn__realloc(a, *pp, *cap * elem, ncap * elem);
	if (!np)
		return OCAPN_E_NOMEM;
	*pp = np;
	*cap = ncap;
	return OCAPN_OK;
}

OCAPN_API const char *
ocapn_version(void)
{
	return OCAPN_VERSION_STRING;
}

OCAPN_API uint32_t
ocapn_version_number(void)
{
	return OCAPN_VERSION_NUMBER;
}

OCAPN_API void
ocapn_buffer_init(ocapn_buffer *b)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
}

OCAPN_API int
ocapn_buffer_reserve(ocapn_buffer *b, const ocapn_allocator *alloc,
    size_t extra)
{
	ocapn_allocator a;
	ocapn__alloc_init(&a, alloc);
	if (extra > SIZE_MAX - b->len)
		return OCAPN_E_NOMEM;
	size_t need = b->len + extra;
	if (need <= b->cap)
		return OCAPN_OK;
	size_t ncap = b->cap ? b->cap : 64;
	while (ncap < need)
		ncap = ncap > SIZE_MAX / 2 ? need : ncap * 2;
	uint8_t *np = ocapn__realloc(&a, b->data, b->cap, ncap);
	if (!np)
		return OCAPN_E_NOMEM;
	b->data = np;
	b->cap = ncap;
	return OCAPN_OK;
}

OCAPN_API int
ocapn_buffer_append(ocapn_buffer *b, const ocapn_allocator *alloc,
    const void *p, size_t n)
{
	if (n == 0)
		return OCAPN_OK;
	int rc = ocapn_buffer_reserve(b, alloc, n);
	if (rc)
		return rc;
	memcpy(b->data + b->len, p, n);
	b->len += n;
	return OCAPN_OK;
}

OCAPN_API void
ocapn_buffer_release(ocapn_buffer *b, const ocapn_allocator *alloc)
{
	ocapn_allocator a;
	ocapn__alloc_init(&a, alloc);
	ocapn__free(&a, b->data, b->cap);
	ocapn_buffer_init(b);
}
