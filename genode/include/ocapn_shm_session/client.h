/*
 * \brief  Client-side Ocapn_shm session interface
 */

#ifndef _INCLUDE__OCAPN_SHM_SESSION__CLIENT_H_
#define _INCLUDE__OCAPN_SHM_SESSION__CLIENT_H_

#include <base/rpc_client.h>
#include <ocapn_shm_session/ocapn_shm_session.h>

namespace Ocapn_shm { struct Session_client; }


struct Ocapn_shm::Session_client : Genode::Rpc_client<Session>
{
	explicit Session_client(Capability<Session> cap)
	: Rpc_client<Session>(cap) { }

	Dataspace_capability dataspace(unsigned direction) override {
		return call<Rpc_dataspace>(direction); }

	void sigh(Signal_context_capability cap) override {
		call<Rpc_sigh>(cap); }

	Signal_context_capability peer_sigh() override {
		return call<Rpc_peer_sigh>(); }
};

#endif /* _INCLUDE__OCAPN_SHM_SESSION__CLIENT_H_ */
