/*
 * \brief  Ocapn_shm server: provides the shm channel as a Genode session
 *
 * For each session the server allocates both regions from the client's
 * quota (Attached_ram_dataspace), formats their headers, and runs the
 * portable ring core over them.  Its doorbell is a signal handler that
 * calls the library's progress function.  The application here is an
 * echo (every message is sent back), which is what the client component
 * and the Goa run scenario check; a vat would hand the messages to its
 * CapTP session instead.
 *
 * Libc component: the ring core and libocapn's allocator use the C
 * library, so every library call from a signal handler goes through
 * Libc::with_libc.
 */

#include <base/attached_ram_dataspace.h>
#include <base/heap.h>
#include <base/log.h>
#include <base/rpc_server.h>
#include <libc/component.h>
#include <root/component.h>
#include <util/arg_string.h>

#include <ocapn_shm_session/ocapn_shm_session.h>
#include <ocapn_shm/channel.h>

namespace Ocapn_shm_server {

	using namespace Genode;

	struct Session_component;
	struct Root;
	struct Main;
}


struct Ocapn_shm_server::Session_component
:
	Rpc_object<Ocapn_shm::Session, Session_component>
{
	Env &_env;
	Allocator &_alloc;

	ocapn_shm_geometry const _geom;
	size_t             const _region_size;

	/* zero-initialised RAM, formatted below before it is handed out */
	Attached_ram_dataspace _c2s { _env.ram(), _env.rm(), _region_size };
	Attached_ram_dataspace _s2c { _env.ram(), _env.rm(), _region_size };

	Signal_handler<Session_component> _doorbell {
		_env.ep(), *this, &Session_component::_handle_doorbell };

	Signal_context_capability _client_sigh { };

	ocapn_shm_channel *_channel = nullptr;

	/* a message waiting for room to be echoed */
	char          *_pending     = nullptr;
	unsigned long  _pending_len = 0;
	unsigned long  _pending_cap = 0;

	/*
	 * Noncopyable
	 */
	Session_component(Session_component const &);
	Session_component &operator = (Session_component const &);

	static void _ring(void *ctx)
	{
		Session_component &s = *static_cast<Session_component *>(ctx);

		/* submit on an invalid capability is a no-op */
		Signal_transmitter(s._client_sigh).submit();
	}

	static void _on_msg(void *ctx, char const *msg, unsigned long len)
	{
		Session_component &s = *static_cast<Session_component *>(ctx);

		if (len > s._pending_cap) {
			if (s._pending)
				s._alloc.free(s._pending, s._pending_cap);
			s._alloc.try_alloc(len).with_result(
				[&] (Allocator::Allocation &a) {
					a.deallocate = false;
					s._pending     = static_cast<char *>(a.ptr);
					s._pending_cap = len; },
				[&] (Alloc_error) {
					s._pending = nullptr; s._pending_cap = 0; });
		}
		if (!s._pending) {
			s._pending_len = 0;
			return;
		}
		/* copy out: the view lives in memory the client can rewrite */
		Genode::memcpy(s._pending, msg, len);
		s._pending_len = len;
	}

	void _progress()
	{
		if (ocapn_shm_channel_progress(_channel) != 0) {
			_report_error();
			return;
		}
		for (;;) {
			if (_pending_len) {
				int rc = ocapn_shm_channel_send(_channel, _pending,
				                                _pending_len);
				if (rc == OCAPN_SHM_CHANNEL_AGAIN) {
					/* asks the client to signal when acks arrive */
					if (ocapn_shm_channel_arm(_channel))
						continue;
					return;
				}
				if (rc != 0) {
					_report_error();
					return;
				}
				_pending_len = 0;
			}
			long n = ocapn_shm_channel_rx(_channel, _on_msg, this, 1);
			if (n < 0) {
				_report_error();
				return;
			}
			if (n == 0 && !ocapn_shm_channel_arm(_channel))
				return; /* idle until the next signal */
		}
	}

	void _report_error()
	{
		char const *why = "";
		int const err = ocapn_shm_channel_error(_channel, &why);
		error("ocapn_shm session aborted: ", why, " (", err, ")");
	}

	void _handle_doorbell() { Libc::with_libc([&] { _progress(); }); }

	Session_component(Env &env, Allocator &alloc,
	                  ocapn_shm_geometry const &geom, size_t region_size)
	:
		_env(env), _alloc(alloc), _geom(geom), _region_size(region_size)
	{
		Libc::with_libc([&] {
			ocapn_shm_region_format(_c2s.local_addr<void>(), _region_size, &_geom);
			ocapn_shm_region_format(_s2c.local_addr<void>(), _region_size, &_geom);

			char const *why = "";
			_channel = ocapn_shm_channel_create(
				_s2c.local_addr<void>(), _region_size,
				_c2s.local_addr<void>(), _region_size,
				16u << 20, 16u << 20, _ring, this, &why);
			if (!_channel)
				error("ocapn_shm: cannot create channel: ", why);
		});
		if (!_channel)
			throw Service_denied();
	}

	~Session_component()
	{
		Libc::with_libc([&] { ocapn_shm_channel_destroy(_channel); });
		if (_pending)
			_alloc.free(_pending, _pending_cap);
	}


	/********************************
	 ** Ocapn_shm session interface **
	 ********************************/

	Dataspace_capability dataspace(unsigned direction) override
	{
		switch (direction) {
		case CLIENT_TO_SERVER: return _c2s.cap();
		case SERVER_TO_CLIENT: return _s2c.cap();
		}
		return Dataspace_capability();
	}

	void sigh(Signal_context_capability cap) override { _client_sigh = cap; }

	Signal_context_capability peer_sigh() override { return _doorbell; }
};


struct Ocapn_shm_server::Root : Root_component<Session_component>
{
	Env &_env;

	Create_result _create_session(char const *args) override
	{
		size_t const ram_quota =
			Arg_string::find_arg(args, "ram_quota").ulong_value(0);

		ocapn_shm_geometry const geom {
			.slots      = Arg_string::find_arg(args, "slots").ulong_value(64),
			.max_packet = Arg_string::find_arg(args, "max_packet").ulong_value(1u << 19),
			.bulk_size  = Arg_string::find_arg(args, "bulk_size").ulong_value(1u << 20),
		};

		size_t const region = Libc::with_libc([&] {
			return size_t(ocapn_shm_region_size(&geom)); });
		if (region == 0) {
			error("ocapn_shm: invalid geometry requested");
			return Create_error::DENIED;
		}

		/* both regions come out of the donated quota, overflow-safe */
		size_t const overhead = 16*1024;
		if (region > (~size_t(0) - overhead) / 2 ||
		    2*region + overhead > ram_quota) {
			error("ocapn_shm: insufficient ram_quota ", ram_quota,
			      ", need ", 2*region + overhead);
			return Create_error::INSUFFICIENT_RAM;
		}
		return _alloc_obj(_env, *md_alloc(), geom, region);
	}

	Root(Env &env, Allocator &md_alloc)
	:
		Root_component<Session_component>(&env.ep().rpc_ep(), &md_alloc),
		_env(env)
	{ }
};


struct Ocapn_shm_server::Main
{
	Env &_env;

	Sliced_heap _heap { _env.ram(), _env.rm() };

	Root _root { _env, _heap };

	Main(Env &env) : _env(env)
	{
		_env.parent().announce(_env.ep().manage(_root));
	}
};


void Libc::Component::construct(Libc::Env &env)
{
	static Ocapn_shm_server::Main main(env);
}
