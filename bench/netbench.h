/*
 * Shared machinery of the netlayer benchmarks (bench_net, and the Cap'n
 * Proto comparison in bench/capnp/): server processes, a libocapn client
 * driving echo and chain workloads on its runtime, and the bare
 * ping-pong baselines over the same transports.
 *
 * Everything is in separate processes (fork): the servers are started
 * before the client creates any event loop.
 */
#ifndef OCAPN_BENCH_NETBENCH_H
#define OCAPN_BENCH_NETBENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <ocapn/runtime.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The transports the bare baselines run on. */
enum nb_family { NB_TCP = 1, NB_UNIX };

/*
 * A netlayer under test.  Adding a netlayer to the benchmark is one entry
 * in nb_netlayers[]: its transport name, the bare transport it is
 * compared with, a constructor for a netlayer of process `name` (server
 * or client) that keeps its files, if any, in `dir`, and two optional
 * hooks for netlayers that need more than their peers (unix-domain-socket
 * needs an introduction server, and its locator is complete only once the
 * netlayer registered with it).
 */
struct nb_netlayer {
	const char *transport;
	enum nb_family family;
	int (*make)(uv_loop_t *loop, const char *dir, const char *name,
	    ocapn_netlayer **out);
	/* Optional: start what the netlayer needs besides its peers, in
	 * processes of its own (nb_spawn()); called once, before its first
	 * server starts.  0 or -1. */
	int (*setup)(const char *dir);
	/* Optional: run `loop` until `nl` can be reached at the locator it
	 * announces; the server publishes its sturdyrefs only then.  0 or
	 * -1. */
	int (*wait_ready)(uv_loop_t *loop, ocapn_netlayer *nl);
};
extern const struct nb_netlayer nb_netlayers[];
extern const size_t nb_nnetlayers;
/* The entry for `transport`, or NULL. */
const struct nb_netlayer *nb_find_netlayer(const char *transport);

/* A server process. */
struct nb_proc {
	pid_t pid;
	enum nb_family family;
	char path[200];       /* NB_UNIX: socket path */
	unsigned port;        /* NB_TCP: port on 127.0.0.1 */
	char echo_uri[512];   /* ocapn servers: sturdyrefs */
	char builder_uri[512];
};

/* A private temporary directory for socket files ("" on failure). */
const char *nb_tmpdir(void);

/* Fork a helper process running `fn(arg, report)`, which must never
 * return (_exit); whatever it writes to `report` up to closing it is
 * read into `buf` (NUL-terminated) before this returns.  The process is
 * stopped (SIGTERM) at exit.  Its pid, or -1. */
int nb_spawn(void (*fn)(const void *arg, int report), const void *arg,
    char *buf, size_t cap);

/* A libocapn server: a runtime with netlayer `nl`, an echo object (answers
 * its first argument) and the conformance suite's car-factory builder,
 * reachable by the sturdyrefs in `out`.  0 or -1. */
int nb_start_ocapn_server(const struct nb_netlayer *nl, struct nb_proc *out);

/* A bare echo responder for length-prefixed frames (4-byte little-endian
 * length, then the payload): blocking reads and writes, or a libuv loop
 * (`uv`).  0 or -1. */
int nb_start_bare_server(enum nb_family f, bool uv, struct nb_proc *out);

/* SIGTERM, wait.  Every started process is also stopped at exit. */
void nb_stop(struct nb_proc *p);

/* ---- libocapn client ------------------------------------------------- */

typedef struct nb_client nb_client;
typedef struct nb_target nb_target;

/* A client runtime with a client netlayer for each of the `n` netlayers
 * (whose servers were started first).  NULL on failure (message
 * printed). */
nb_client *nb_client_new(const struct nb_netlayer *const *nls, size_t n);
void nb_client_free(nb_client *c);
/* Enliven a server's echo and builder.  NULL on failure. */
nb_target *nb_client_connect(nb_client *c, const struct nb_proc *server);
/* Release a target (before nb_client_free()). */
void nb_target_free(nb_target *t);

/*
 * `n` echo calls with a `payload`-byte bytestring, at most `window`
 * outstanding (1 = one round trip after the other).  Returns the elapsed
 * nanoseconds (exits on failure).
 */
double nb_echo(nb_client *c, nb_target *t, size_t payload, size_t window,
    size_t n);
/* `n` depth-3 chains builder <- () <- [color model] <- (), one after the
 * other: all three sent at once (`pipelined`) or each after the previous
 * answer.  Elapsed nanoseconds. */
double nb_chain(nb_client *c, nb_target *t, bool pipelined, size_t n);

/* ---- bare client ---------------------------------------------------- */

/* A blocking connection to a bare responder; -1 on failure. */
int nb_bare_connect(const struct nb_proc *server);
/* Same contract as nb_echo() over the bare connection. */
double nb_bare_echo(int fd, size_t payload, size_t window, size_t n);

#ifdef __cplusplus
}
#endif

#endif
