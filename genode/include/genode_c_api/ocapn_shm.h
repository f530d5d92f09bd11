/*
 * \brief  C interface for opening an Ocapn_shm client session, in the
 *         style of Genode's genode_c_api (e.g. genode_c_api/terminal.h)
 *
 * For C code such as libocapn's vat runtime on Genode: it opens a session
 * by label, gets the shm channel of that session and drives it with the
 * calls of ocapn_shm/channel.h from the I/O signal handler it passed to
 * genode_ocapn_shm_init().
 */

#ifndef _INCLUDE__GENODE_C_API__OCAPN_SHM_H_
#define _INCLUDE__GENODE_C_API__OCAPN_SHM_H_

#include <genode_c_api/base.h>
#include <ocapn_shm/channel.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * Initialize the C API
 *
 * \param sigh_ptr  signal handler that becomes the doorbell of every
 *                  session created afterwards; it should call
 *                  ocapn_shm_channel_progress() and then receive
 */
void genode_ocapn_shm_init(struct genode_env *,
                           struct genode_allocator *,
                           struct genode_signal_handler *sigh_ptr);

struct genode_ocapn_shm; /* definition is private to the implementation */

struct genode_ocapn_shm_args
{
	char const   *label;      /* session label: selects the route */
	unsigned long slots;      /* geometry of both regions */
	unsigned long max_packet;
	unsigned long bulk_size;
	unsigned long max_msg;    /* largest message either way */
};

/**
 * Open a session, attach both regions and create the channel
 *
 * \return  NULL on failure (the reason is logged)
 */
struct genode_ocapn_shm *genode_ocapn_shm_create(struct genode_ocapn_shm_args const *);

void genode_ocapn_shm_destroy(struct genode_ocapn_shm *);

/**
 * Channel of the session, valid until genode_ocapn_shm_destroy()
 */
struct ocapn_shm_channel *genode_ocapn_shm_channel(struct genode_ocapn_shm *);

#ifdef __cplusplus
}
#endif

#endif /* _INCLUDE__GENODE_C_API__OCAPN_SHM_H_ */
