/*
 * ocapn serve-testsuite: serve the conformance suite's objects.
 *
 * Prints "LOCATOR <uri>" and one "SREF <name> <uri>" line per object, then
 * serves until SIGINT or SIGTERM, closes every session gracefully and
 * exits 0.
 */
#include "netopts.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "suite_objects.h"

static const char usage[] =
    "usage: ocapn serve-testsuite --netlayer NAME [options]\n"
    "\n"
    "  --netlayer tcp-testing-only [--host H] [--port P]\n"
    "  --netlayer testuds --dir DIR --name NAME\n"
    "  --netlayer unix-domain-socket --intro-server PATH\n"
    "  --netlayer shm --dir DIR      (DIR private: ours, mode 0700)\n"
    "  --captp-version V     speak only version V (default: answer each\n"
    "                        peer in the version it speaks)\n"
    "  --trace               print every CapTP message on stderr\n"
    "\n"
    "Prints LOCATOR <uri>, then SREF <name> <uri> for each object, and\n"
    "serves until SIGINT or SIGTERM.\n";

struct serve {
	ocapn_runtime *rt;
	uv_signal_t sigint, sigterm;
	bool stopping;
};

static void
closed(void *user)
{
	(void)user;
}

static void
on_signal(uv_signal_t *h, int signum)
{
	struct serve *sv = h->data;
	(void)signum;
	if (sv->stopping)
		return;
	sv->stopping = true;
	uv_close((uv_handle_t *)&sv->sigint, NULL);
	uv_close((uv_handle_t *)&sv->sigterm, NULL);
	ocapn_runtime_close(sv->rt, closed, sv);
}

int
netopts_parse(int *i, int argc, char **argv, struct netopts *o)
{
	const char *a = argv[*i];
#define ARG(name)                                                              \
	(!strcmp(a, name) && (*i + 1 < argc ? 1 : (cli_error("%s needs a value", \
							name),              \
							 -1)))
	int r;
	if ((r = ARG("--netlayer"))) {
		if (r < 0)
			return -1;
		o->netlayer = argv[++*i];
	} else if ((r = ARG("--host"))) {
		if (r < 0)
			return -1;
		o->host = argv[++*i];
	} else if ((r = ARG("--port"))) {
		if (r < 0)
			return -1;
		char *end;
		long p = strtol(argv[++*i], &end, 10);
		if (*end || p < 0 || p > 65535) {
			cli_error("--port: invalid port '%s'", argv[*i]);
			return -1;
		}
		o->port = (unsigned)p;
	} else if ((r = ARG("--dir"))) {
		if (r < 0)
			return -1;
		o->dir = argv[++*i];
	} else if ((r = ARG("--name"))) {
		if (r < 0)
			return -1;
		o->name = argv[++*i];
	} else if ((r = ARG("--intro-server"))) {
		if (r < 0)
			return -1;
		o->intro_server = argv[++*i];
	} else if ((r = ARG("--captp-version"))) {
		if (r < 0)
			return -1;
		o->version = argv[++*i];
	} else if (!strcmp(a, "--trace")) {
		o->trace = true;
	} else {
		return 0;
	}
#undef ARG
	return 1;
}

int
cmd_serve_testsuite(int argc, char **argv)
{
	struct netopts o = {0};
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			fputs(usage, stdout);
			return 0;
		}
		int r = netopts_parse(&i, argc, argv, &o);
		if (r < 0)
			return 2;
		if (r == 0) {
			cli_error("serve-testsuite: unknown option '%s'",
			    argv[i]);
			return 2;
		}
	}
	ocapn_dialect dialect = OCAPN_DIALECT_AUTO;
	if (o.version) {
		dialect = ocapn_dialect_for_version(o.version,
		    strlen(o.version));
		if (!dialect) {
			cli_error("unknown CapTP version '%s' (known: 1.0, "
				  "goblins-0.12)",
			    o.version);
			return 2;
		}
	}
	struct serve sv = {0};
	int rc = ocapn_runtime_new(NULL, NULL, NULL, &sv.rt);
	if (rc) {
		cli_error("cannot create the runtime: %s", ocapn_strerror(rc));
		return 2;
	}
	uv_loop_t *loop = ocapn_runtime_loop(sv.rt);
	ocapn_runtime_set_dialect(sv.rt, dialect);
	ocapn_netlayer *nl;
	if (netopts_create(&o, loop, &nl)) {
		ocapn_runtime_free(sv.rt);
		return 2;
	}
	ocapn_runtime_add_netlayer(sv.rt, nl);
	if (o.trace)
		ocapn_runtime_set_trace(sv.rt, trace_message, NULL);
	if (netopts_wait_ready(nl, loop)) {
		ocapn_runtime_free(sv.rt);
		return 2;
	}
	rc = suite_register(ocapn_runtime_vat(sv.rt));
	if (rc) {
		cli_error("cannot create the objects: %s", ocapn_strerror(rc));
		ocapn_runtime_free(sv.rt);
		return 2;
	}
	ocapn_buffer uri;
	ocapn_buffer_init(&uri);
	rc = ocapn_locator_to_uri(ocapn_netlayer_locator(nl), &uri, NULL);
	printf("LOCATOR %s\n", rc ? "?" : (const char *)uri.data);
	for (size_t i = 0; i < suite_object_count; i++) {
		uri.len = 0;
		const char *sw = suite_objects[i].swiss;
		rc = ocapn_runtime_sturdyref_uri(sv.rt, nl,
		    (const uint8_t *)sw, strlen(sw), &uri);
		printf("SREF %s %s\n", suite_objects[i].name,
		    rc ? "?" : (const char *)uri.data);
	}
	fflush(stdout);
	ocapn_buffer_release(&uri, NULL);
	signal(SIGPIPE, SIG_IGN); /* libuv writes with write(2) */
	uv_signal_init(loop, &sv.sigint);
	uv_signal_init(loop, &sv.sigterm);
	sv.sigint.data = sv.sigterm.data = &sv;
	uv_signal_start(&sv.sigint, on_signal, SIGINT);
	uv_signal_start(&sv.sigterm, on_signal, SIGTERM);
	ocapn_runtime_run(sv.rt);
	ocapn_runtime_free(sv.rt);
	return 0;
}
