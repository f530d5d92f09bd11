/*
 * \brief  Connection to an Ocapn_shm service
 *
 * The label selects the route in init's configuration (the locator hint
 * "label=..."); it grants nothing by itself.
 */

#ifndef _INCLUDE__OCAPN_SHM_SESSION__CONNECTION_H_
#define _INCLUDE__OCAPN_SHM_SESSION__CONNECTION_H_

#include <base/connection.h>
#include <ocapn_shm_session/client.h>

namespace Ocapn_shm { struct Connection; }


struct Ocapn_shm::Connection : Genode::Connection<Session>, Session_client
{
	/**
	 * Constructor
	 *
	 * \param region_size  size of each of the two regions, as computed by
	 *                     ocapn_shm_region_size() for the geometry below;
	 *                     the quota donated covers both
	 */
	Connection(Genode::Env &env, Label const &label,
	           unsigned long slots, unsigned long max_packet,
	           unsigned long bulk_size, unsigned long region_size)
	:
		Genode::Connection<Session>(env, label,
			Ram_quota { 16*1024 + 2*region_size },
			Args("slots=", slots, ", max_packet=", max_packet,
			     ", bulk_size=", bulk_size)),
		Session_client(cap())
	{ }
};

#endif /* _INCLUDE__OCAPN_SHM_SESSION__CONNECTION_H_ */
