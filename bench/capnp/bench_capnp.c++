// Cap'n Proto RPC against libocapn on the same workloads, in the same run.
//
// Processes (fork): a Cap'n Proto server (EzRpcServer on a Unix socket,
// bootstrap interface Root handing out an Echo and a car-factory Builder,
// see echo.capnp), a libocapn server on the testuds netlayer (Unix socket)
// with the same objects, and a bare blocking echo responder for
// length-prefixed frames.  This process is the client of all three; each
// figure is taken in slices interleaved with the figures it is compared
// with, and repeated.
//
// Workloads (as bench_net): echo round trips with 16 B, 1 KiB, 64 KiB and
// 1 MiB bytestrings; 16 B calls with 1, 16 and 128 outstanding; the
// depth-3 car-factory chain pipelined and awaiting each step.
//
// Usage: bench_capnp [--reps R] [--quick]

#include <capnp/ez-rpc.h>
#include <kj/async.h>
#include <kj/vector.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include "echo.capnp.h"

#include "../bench_stats.h"
#include "../netbench.h"

namespace {

// ---- server ----------------------------------------------------------

class EchoImpl final : public Echo::Server {
protected:
	kj::Promise<void> echo(EchoContext ctx) override
	{
		ctx.getResults().setPayload(ctx.getParams().getPayload());
		return kj::READY_NOW;
	}
};

class CarImpl final : public Car::Server {
public:
	explicit CarImpl(kj::String text) : text(kj::mv(text)) {}

protected:
	kj::Promise<void> drive(DriveContext ctx) override
	{
		ctx.getResults().setText(text);
		return kj::READY_NOW;
	}

private:
	kj::String text;
};

class FactoryImpl final : public Factory::Server {
protected:
	kj::Promise<void> make(MakeContext ctx) override
	{
		auto p = ctx.getParams();
		ctx.getResults().setCar(kj::heap<CarImpl>(kj::str(
		    "Vroom! I am a ", p.getColor(), " ", p.getModel(),
		    " car!")));
		return kj::READY_NOW;
	}
};

class BuilderImpl final : public Builder::Server {
protected:
	kj::Promise<void> factory(FactoryContext ctx) override
	{
		ctx.getResults().setFactory(kj::heap<FactoryImpl>());
		return kj::READY_NOW;
	}
};

class RootImpl final : public Root::Server {
protected:
	kj::Promise<void> echo(EchoContext ctx) override
	{
		ctx.getResults().setEcho(kj::heap<EchoImpl>());
		return kj::READY_NOW;
	}
	kj::Promise<void> builder(BuilderContext ctx) override
	{
		ctx.getResults().setBuilder(kj::heap<BuilderImpl>());
		return kj::READY_NOW;
	}
};

pid_t capnp_pid;

void
stop_capnp_server()
{
	if (capnp_pid > 0) {
		kill(capnp_pid, SIGTERM);
		waitpid(capnp_pid, nullptr, 0);
		capnp_pid = 0;
	}
}

// Fork the Cap'n Proto server on `path`; returns once it listens.
bool
start_capnp_server(const char *path)
{
	int fds[2];
	if (pipe(fds))
		return false;
	fflush(stdout);
	fflush(stderr);
	pid_t pid = fork();
	if (pid < 0)
		return false;
	if (pid == 0) {
		close(fds[0]);
#ifdef __linux__
		prctl(PR_SET_PDEATHSIG, SIGTERM);
#endif
		signal(SIGINT, SIG_IGN);
		signal(SIGTERM, SIG_DFL);
		signal(SIGPIPE, SIG_IGN);
		capnp::EzRpcServer server(kj::heap<RootImpl>(),
		    kj::str("unix:", path));
		server.getPort().wait(server.getWaitScope());
		if (write(fds[1], "READY\n", 6) != 6)
			_exit(1);
		close(fds[1]);
		kj::NEVER_DONE.wait(server.getWaitScope());
		_exit(0);
	}
	close(fds[1]);
	capnp_pid = pid;
	atexit(stop_capnp_server);
	char buf[16] = {0};
	ssize_t k = read(fds[0], buf, sizeof(buf) - 1);
	close(fds[0]);
	return k >= 5 && strncmp(buf, "READY", 5) == 0;
}

// ---- client ----------------------------------------------------------

[[noreturn]] void
fail(const char *why)
{
	fprintf(stderr, "bench_capnp: %s\n", why);
	exit(1);
}

kj::Promise<void>
echo_loop(Echo::Client &echo, kj::ArrayPtr<const kj::byte> payload,
    size_t *remaining)
{
	if (*remaining == 0)
		return kj::READY_NOW;
	--*remaining;
	auto req = echo.echoRequest();
	req.setPayload(payload);
	return req.send().then(
	    [&echo, payload, remaining](
		capnp::Response<Echo::EchoResults> &&r) {
		    if (r.getPayload().size() != payload.size())
			    fail("wrong echo answer");
		    return echo_loop(echo, payload, remaining);
	    });
}

// `n` echo calls, at most `window` outstanding; elapsed nanoseconds.
double
capnp_echo(Echo::Client &echo, kj::WaitScope &ws, const kj::byte *payload,
    size_t size, size_t window, size_t n)
{
	size_t remaining = n;
	kj::ArrayPtr<const kj::byte> p(payload, size);
	uint64_t t0 = bench_now_ns();
	kj::Vector<kj::Promise<void>> loops;
	for (size_t i = 0; i < window && i < n; i++)
		loops.add(echo_loop(echo, p, &remaining));
	kj::joinPromises(loops.releaseAsArray()).wait(ws);
	return (double)(bench_now_ns() - t0);
}

double
capnp_chain(Builder::Client &builder, kj::WaitScope &ws, bool pipelined,
    size_t n)
{
	uint64_t t0 = bench_now_ns();
	for (size_t i = 0; i < n; i++) {
		size_t len;
		if (pipelined) {
			auto factory = builder.factoryRequest().send()
					   .getFactory();
			auto req = factory.makeRequest();
			req.setColor("red");
			req.setModel("zoom");
			auto car = req.send().getCar();
			len = car.driveRequest().send().wait(ws)
				  .getText().size();
		} else {
			auto factory = builder.factoryRequest().send()
					   .wait(ws).getFactory();
			auto req = factory.makeRequest();
			req.setColor("red");
			req.setModel("zoom");
			auto car = req.send().wait(ws).getCar();
			len = car.driveRequest().send().wait(ws)
				  .getText().size();
		}
		if (len == 0)
			fail("the car did not answer");
	}
	return (double)(bench_now_ns() - t0);
}

const size_t sizes[] = {16, 1024, 65536, 1048576};
const size_t size_calls[] = {4000, 4000, 500, 40};
const size_t nsizes = sizeof(sizes) / sizeof(sizes[0]);
const size_t windows[] = {1, 16, 128};
const size_t window_calls[] = {4000, 20000, 40000};
const size_t nwindows = sizeof(windows) / sizeof(windows[0]);
const size_t chain_calls = 1000;
const int slices = 4;

struct row {
	bench_series ours, capnp, bare, r_capnp, r_bare, r_capnp_bare;
};

void
add_row(row &r, double ours, double capnp, double bare)
{
	bench_add(&r.ours, ours);
	bench_add(&r.capnp, capnp);
	bench_add(&r.bare, bare);
	bench_add(&r.r_capnp, ours / capnp);
	bench_add(&r.r_bare, ours / bare);
	bench_add(&r.r_capnp_bare, capnp / bare);
}

void
cell(const bench_series &s, int prec)
{
	double m, lo, hi;
	char buf[64];
	bench_summary(&s, &m, &lo, &hi);
	snprintf(buf, sizeof(buf), "%.*f", prec, m);
	printf(" %9s [%.*f-%.*f]", buf, prec, lo, prec, hi);
}

void
print_row(const char *name, const row &r, int prec, bool with_bare)
{
	printf("  %-9s", name);
	cell(r.ours, prec);
	cell(r.capnp, prec);
	if (with_bare)
		cell(r.bare, prec);
	cell(r.r_capnp, 2);
	if (with_bare) {
		cell(r.r_bare, 2);
		cell(r.r_capnp_bare, 2);
	}
	printf("\n");
}

} // namespace

int
main(int argc, char **argv)
{
	size_t reps = 7, div = 1;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--reps") && i + 1 < argc)
			reps = strtoul(argv[++i], nullptr, 10);
		else if (!strcmp(argv[i], "--quick")) {
			reps = 3;
			div = 10;
		} else {
			fprintf(stderr,
			    "usage: bench_capnp [--reps R] [--quick]\n");
			return 2;
		}
	}
	if (reps < 1)
		reps = 1;
	if (reps > BENCH_MAX_SAMPLES)
		reps = BENCH_MAX_SAMPLES;
	const char *dir = nb_tmpdir();
	if (!dir[0])
		fail("cannot make a temporary directory");
	const nb_netlayer *nl = nb_find_netlayer("testuds");
	if (!nl)
		fail("no testuds netlayer");

	// Every server before this process makes an event loop.
	char path[256];
	snprintf(path, sizeof(path), "%s/capnp.sock", dir);
	nb_proc ours_srv, bare_srv;
	if (!start_capnp_server(path))
		fail("the Cap'n Proto server did not start");
	if (nb_start_ocapn_server(nl, &ours_srv) ||
	    nb_start_bare_server(NB_UNIX, false, &bare_srv))
		fail("the libocapn or bare server did not start");

	nb_client *oc = nb_client_new(&nl, 1);
	nb_target *ot = oc ? nb_client_connect(oc, &ours_srv) : nullptr;
	int bare = nb_bare_connect(&bare_srv);
	if (!ot || bare < 0)
		fail("cannot connect to the libocapn or bare server");
	capnp::EzRpcClient client(kj::str("unix:", path));
	kj::WaitScope &ws = client.getWaitScope();
	Root::Client root = client.getMain<Root>();
	Echo::Client echo = root.echoRequest().send().wait(ws).getEcho();
	Builder::Client builder =
	    root.builderRequest().send().wait(ws).getBuilder();

	kj::Array<kj::byte> payload = kj::heapArray<kj::byte>(1 << 20);
	for (size_t i = 0; i < payload.size(); i++)
		payload[i] = (kj::byte)i;

	row echo_rows[nsizes] = {}, win_rows[nwindows] = {}, pipe_row = {},
	    wait_row = {};
	printf("Cap'n Proto %d.%d.%d RPC (EzRpc over a Unix socket) against "
	       "libocapn (testuds), %zu repetitions\n",
	    CAPNP_VERSION_MAJOR, CAPNP_VERSION_MINOR, CAPNP_VERSION_MICRO,
	    reps);
	fflush(stdout);
	for (size_t rep = 0; rep <= reps; rep++) {
		bool record = rep > 0; // the first pass warms up
		size_t d = record ? div : div * 4;
		for (size_t i = 0; i < nsizes; i++) {
			size_t n = size_calls[i] / d / slices;
			double o = 0, c = 0, b = 0;
			if (n == 0)
				n = 1;
			for (int k = 0; k < slices; k++) {
				o += nb_echo(oc, ot, sizes[i], 1, n);
				c += capnp_echo(echo, ws, payload.begin(),
				    sizes[i], 1, n);
				b += nb_bare_echo(bare, sizes[i], 1, n);
			}
			double per = (double)n * slices * 1e3;
			if (record)
				add_row(echo_rows[i], o / per, c / per,
				    b / per);
		}
		for (size_t i = 0; i < nwindows; i++) {
			size_t n = window_calls[i] / d / slices;
			double o = 0, c = 0, b = 0;
			if (n == 0)
				n = 1;
			for (int k = 0; k < slices; k++) {
				o += nb_echo(oc, ot, 16, windows[i], n);
				c += capnp_echo(echo, ws, payload.begin(), 16,
				    windows[i], n);
				b += nb_bare_echo(bare, 16, windows[i], n);
			}
			double calls = (double)n * slices * 1e9;
			if (record)
				add_row(win_rows[i], calls / o, calls / c,
				    calls / b);
		}
		size_t n = chain_calls / d / slices;
		double op = 0, cp = 0, ow = 0, cw = 0;
		if (n == 0)
			n = 1;
		for (int k = 0; k < slices; k++) {
			op += nb_chain(oc, ot, true, n);
			cp += capnp_chain(builder, ws, true, n);
			ow += nb_chain(oc, ot, false, n);
			cw += capnp_chain(builder, ws, false, n);
		}
		double per = (double)n * slices * 1e3;
		if (record) {
			add_row(pipe_row, op / per, cp / per, 1);
			add_row(wait_row, ow / per, cw / per, 1);
		}
	}

	printf("\necho round trip, us: ocapn | capnp | bare | ocapn/capnp | "
	       "ocapn/bare | capnp/bare  (median [min-max])\n");
	for (size_t i = 0; i < nsizes; i++) {
		char name[32];
		if (sizes[i] >= 1048576)
			snprintf(name, sizeof(name), "%zu MiB",
			    sizes[i] >> 20);
		else if (sizes[i] >= 1024)
			snprintf(name, sizeof(name), "%zu KiB",
			    sizes[i] >> 10);
		else
			snprintf(name, sizeof(name), "%zu B", sizes[i]);
		print_row(name, echo_rows[i], 1, true);
	}
	printf("16 B calls per second with W outstanding: ocapn | capnp | "
	       "bare | ocapn/capnp | ocapn/bare | capnp/bare\n");
	for (size_t i = 0; i < nwindows; i++) {
		char name[32];
		snprintf(name, sizeof(name), "W=%zu", windows[i]);
		print_row(name, win_rows[i], 0, true);
	}
	printf("depth-3 chain, us: ocapn | capnp | ocapn/capnp\n");
	print_row("pipelined", pipe_row, 1, false);
	print_row("awaited", wait_row, 1, false);
	printf("(ocapn/capnp below 1: libocapn faster; for calls per "
	       "second, above 1)\n");

	close(bare);
	nb_target_free(ot);
	nb_client_free(oc);
	nb_stop(&ours_srv);
	nb_stop(&bare_srv);
	stop_capnp_server();
	return 0;
}
