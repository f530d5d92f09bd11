/*
 * \brief  Ocapn_shm session interface: a packet-stream-style channel for
 *         the libocapn shm netlayer
 *
 * The server allocates two RAM dataspaces out of the client's quota, one
 * per direction, formats their headers (ocapn_shm/channel.h) and hands
 * them out.  Each side has one signal context as its doorbell.  Only the
 * ring protocol runs over the dataspaces; the same portable ring code as
 * on Linux (src/netlayers/shm/ring.c) validates everything it reads.
 */

#ifndef _INCLUDE__OCAPN_SHM_SESSION__OCAPN_SHM_SESSION_H_
#define _INCLUDE__OCAPN_SHM_SESSION__OCAPN_SHM_SESSION_H_

#include <session/session.h>
#include <base/rpc.h>
#include <base/signal.h>
#include <dataspace/capability.h>

namespace Ocapn_shm {

	using namespace Genode;

	struct Session;
}


struct Ocapn_shm::Session : Genode::Session
{
	/**
	 * \noapi
	 */
	static const char *service_name() { return "Ocapn_shm"; }

	/*
	 * The session object's dataspace, the session capability, two buffer
	 * dataspaces and two signal contexts.
	 */
	static constexpr unsigned CAP_QUOTA = 6;

	enum Direction : unsigned { CLIENT_TO_SERVER = 0, SERVER_TO_CLIENT = 1 };

	/**
	 * Return the region of one direction (invalid capability for an
	 * unknown direction)
	 */
	virtual Dataspace_capability dataspace(unsigned direction) = 0;

	/**
	 * Register the client's doorbell, signalled by the server
	 */
	virtual void sigh(Signal_context_capability) = 0;

	/**
	 * Return the server's doorbell, to be signalled by the client
	 */
	virtual Signal_context_capability peer_sigh() = 0;


	/*******************
	 ** RPC interface **
	 *******************/

	GENODE_RPC(Rpc_dataspace, Dataspace_capability, dataspace, unsigned);
	GENODE_RPC(Rpc_sigh, void, sigh, Signal_context_capability);
	GENODE_RPC(Rpc_peer_sigh, Signal_context_capability, peer_sigh);

	GENODE_RPC_INTERFACE(Rpc_dataspace, Rpc_sigh, Rpc_peer_sigh);
};

#endif /* _INCLUDE__OCAPN_SHM_SESSION__OCAPN_SHM_SESSION_H_ */
