/*
 * The shm netlayer needs Linux (memfd, eventfd, SCM_RIGHTS); elsewhere
 * its constructor says so.
 */
#include <ocapn/runtime.h>

OCAPN_API int
ocapn_shm_netlayer_new(uv_loop_t *loop, const char *dir, const uint8_t *seed,
    const ocapn_allocator *alloc, ocapn_netlayer **out)
{
	(void)loop;
	(void)dir;
	(void)seed;
	(void)alloc;
	if (out)
		*out = NULL;
	return OCAPN_E_UNSUPPORTED;
}

OCAPN_API int
ocapn_shm_netlayer_set_spin(ocapn_netlayer *nl, uint64_t max_ns)
{
	(void)nl;
	(void)max_ns;
	return OCAPN_E_UNSUPPORTED;
}

OCAPN_API int
ocapn_shm_netlayer_set_buffer(ocapn_netlayer *nl, size_t bytes)
{
	(void)nl;
	(void)bytes;
	return OCAPN_E_UNSUPPORTED;
}
