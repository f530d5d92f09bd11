/*
 * \brief  Ocapn_shm test client: sends messages of growing size, checks
 *         each echo, and logs the result
 *
 * Client glue: Ocapn_shm::Connection opened with a label (the route),
 * Attached_dataspace for both regions the server allocated, one signal
 * handler as the doorbell calling the library's progress function.
 */

#include <base/attached_dataspace.h>
#include <base/heap.h>
#include <base/log.h>
#include <libc/component.h>

#include <ocapn_shm_session/connection.h>
#include <ocapn_shm/channel.h>

namespace Ocapn_shm_client {

	using namespace Genode;

	struct Main;
}


struct Ocapn_shm_client::Main
{
	Env &_env;

	Heap _heap { _env.ram(), _env.rm() };

	enum : unsigned long {
		SLOTS = 64, MAX_PACKET = 256*1024, BULK = 1024*1024,
		ROUNDS = 200, MAX_LEN = 3*1024*1024 };

	ocapn_shm_geometry const _geom { SLOTS, MAX_PACKET, BULK };

	unsigned long const _region_size =
		Libc::with_libc([&] { return ocapn_shm_region_size(&_geom); });

	Ocapn_shm::Connection _conn {
		_env, "ocapn", SLOTS, MAX_PACKET, BULK, _region_size };

	Attached_dataspace _tx {
		_env.rm(), _conn.dataspace(Ocapn_shm::Session::CLIENT_TO_SERVER) };
	Attached_dataspace _rx {
		_env.rm(), _conn.dataspace(Ocapn_shm::Session::SERVER_TO_CLIENT) };

	Signal_handler<Main> _doorbell { _env.ep(), *this, &Main::_handle_doorbell };

	Signal_context_capability const _server_sigh = _conn.peer_sigh();

	ocapn_shm_channel *_channel = nullptr;

	char * const _msg = static_cast<char *>(_heap.alloc(MAX_LEN));

	unsigned      _round    = 0;
	unsigned long _len      = 0;
	bool          _sent     = false;
	bool          _echo_ok  = false;
	bool          _finished = false;

	/*
	 * Noncopyable
	 */
	Main(Main const &);
	Main &operator = (Main const &);

	static void _ring(void *ctx)
	{
		Main &m = *static_cast<Main *>(ctx);
		Signal_transmitter(m._server_sigh).submit();
	}

	static void _on_echo(void *ctx, char const *msg, unsigned long len)
	{
		Main &m = *static_cast<Main *>(ctx);
		m._echo_ok = (len == m._len) && !Genode::memcmp(msg, m._msg, len);
	}

	void _fill(unsigned round)
	{
		_len = 1 + (round * 15731ul) % MAX_LEN;
		for (unsigned long i = 0; i < _len; i++)
			_msg[i] = char(i * 7 + round);
	}

	void _progress()
	{
		if (_finished)
			return;
		if (ocapn_shm_channel_progress(_channel) != 0) {
			_fail();
			return;
		}
		for (;;) {
			if (!_sent) {
				int rc = ocapn_shm_channel_send(_channel, _msg, _len);
				if (rc == 0) {
					_sent = true;
				} else if (rc != OCAPN_SHM_CHANNEL_AGAIN) {
					_fail();
					return;
				}
			}
			_echo_ok = false;
			long n = ocapn_shm_channel_rx(_channel, _on_echo, this, 1);
			if (n < 0) {
				_fail();
				return;
			}
			if (n == 1) {
				if (!_echo_ok) {
					error("ocapn_shm_client: echo ", _round, " differs");
					_finished = true;
					_env.parent().exit(1);
					return;
				}
				if (++_round == ROUNDS) {
					log("ocapn_shm_client: ", unsigned(ROUNDS),
					    " echoes of up to ", unsigned(MAX_LEN),
					    " bytes ok");
					_finished = true;
					_env.parent().exit(0);
					return;
				}
				_fill(_round);
				_sent = false;
				continue;
			}
			if (!ocapn_shm_channel_arm(_channel))
				return;
		}
	}

	void _fail()
	{
		char const *why = "";
		ocapn_shm_channel_error(_channel, &why);
		error("ocapn_shm_client: channel aborted: ", why);
		_finished = true;
		_env.parent().exit(1);
	}

	void _handle_doorbell() { Libc::with_libc([&] { _progress(); }); }

	Main(Env &env) : _env(env)
	{
		_conn.sigh(_doorbell);

		Libc::with_libc([&] {
			char const *why = "";
			_channel = ocapn_shm_channel_create(
				_tx.local_addr<void>(), _tx.size(),
				_rx.local_addr<void>(), _rx.size(),
				16u << 20, 16u << 20, _ring, this, &why);
			if (!_channel) {
				error("ocapn_shm_client: ", why);
				_env.parent().exit(1);
				return;
			}
			_fill(0);
			_progress();
		});
	}
};


void Libc::Component::construct(Libc::Env &env)
{
	static Ocapn_shm_client::Main main(env);
}
