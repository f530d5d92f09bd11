/*
 * \brief  genode_c_api-style client glue for Ocapn_shm sessions
 *
 * Modelled on Genode's genode_c_api/terminal.cc: statics hold the
 * environment, allocator and signal handler given at init; each created
 * session is a registered C++ object owning the connection, both
 * attachments and the channel.
 */

#include <base/attached_dataspace.h>
#include <base/log.h>
#include <base/registry.h>
#include <base/session_label.h>
#include <genode_c_api/ocapn_shm.h>
#include <ocapn_shm_session/connection.h>

using namespace Genode;


namespace {

	struct Statics
	{
		Env       *env_ptr;
		Allocator *alloc_ptr;

		Signal_context_capability sigh { };
	};

	Statics &statics()
	{
		static Statics instance { };
		return instance;
	}
}


struct genode_ocapn_shm : private Noncopyable, private Interface
{
	private:

		/*
		 * Noncopyable
		 */
		genode_ocapn_shm(genode_ocapn_shm const &);
		genode_ocapn_shm &operator = (genode_ocapn_shm const &);

		static void _ring(void *ctx)
		{
			genode_ocapn_shm &s = *static_cast<genode_ocapn_shm *>(ctx);
			Signal_transmitter(s._server_sigh).submit();
		}

		ocapn_shm_geometry const _geom;

		unsigned long const _region_size = ocapn_shm_region_size(&_geom);

		Ocapn_shm::Connection _conn;

		Attached_dataspace _tx;
		Attached_dataspace _rx;

		Signal_context_capability const _server_sigh = _conn.peer_sigh();

		ocapn_shm_channel *_channel = nullptr;

	public:

		genode_ocapn_shm(Env &env, Signal_context_capability const &sigh,
		                 genode_ocapn_shm_args const &args)
		:
			_geom { args.slots, args.max_packet, args.bulk_size },
			_conn(env, Session_label(args.label), args.slots,
			      args.max_packet, args.bulk_size, _region_size),
			_tx(env.rm(), _conn.dataspace(Ocapn_shm::Session::CLIENT_TO_SERVER)),
			_rx(env.rm(), _conn.dataspace(Ocapn_shm::Session::SERVER_TO_CLIENT))
		{
			_conn.sigh(sigh);

			char const *why = "";
			_channel = ocapn_shm_channel_create(
				_tx.local_addr<void>(), _tx.size(),
				_rx.local_addr<void>(), _rx.size(),
				args.max_msg, args.max_msg, _ring, this, &why);
			if (!_channel)
				error("genode_ocapn_shm: ", why);
		}

		~genode_ocapn_shm() { ocapn_shm_channel_destroy(_channel); }

		ocapn_shm_channel *channel() { return _channel; }
};


void genode_ocapn_shm_init(genode_env            *env_ptr,
                           genode_allocator      *alloc_ptr,
                           genode_signal_handler *sigh_ptr)
{
	statics().env_ptr   = env_ptr;
	statics().alloc_ptr = alloc_ptr;
	statics().sigh      = cap(sigh_ptr);
}


struct genode_ocapn_shm *genode_ocapn_shm_create(genode_ocapn_shm_args const *args)
{
	if (!statics().env_ptr || !statics().alloc_ptr) {
		error("genode_ocapn_shm_create: missing call of genode_ocapn_shm_init");
		return nullptr;
	}
	ocapn_shm_geometry const geom { args->slots, args->max_packet,
	                                args->bulk_size };
	if (ocapn_shm_region_size(&geom) == 0) {
		error("genode_ocapn_shm_create: invalid geometry");
		return nullptr;
	}
	genode_ocapn_shm *s = new (*statics().alloc_ptr)
		genode_ocapn_shm(*statics().env_ptr, statics().sigh, *args);
	if (!s->channel()) {
		destroy(*statics().alloc_ptr, s);
		return nullptr;
	}
	return s;
}


void genode_ocapn_shm_destroy(struct genode_ocapn_shm *s)
{
	destroy(*statics().alloc_ptr, s);
}


struct ocapn_shm_channel *genode_ocapn_shm_channel(struct genode_ocapn_shm *s)
{
	return s->channel();
}
