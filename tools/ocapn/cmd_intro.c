/*
 * ocapn intro-server PATH: run a unix-domain-socket introduction server
 * until SIGINT or SIGTERM.
 */
#define _POSIX_C_SOURCE 200809L
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include <ocapn/runtime.h>

#include "cli.h"

static const char intro_usage[] =
    "usage: ocapn intro-server [--quiet] PATH\n"
    "\n"
    "Listen on the unix socket PATH as an introduction server of the\n"
    "unix-domain-socket netlayer (compatible with Goblins 0.16).  Prints\n"
    "'KEY <base32 server key>' and 'HINT <key>=t' (the query hint of the\n"
    "peers' URIs), then serves until SIGINT or SIGTERM.  Events are logged\n"
    "on stderr unless --quiet is given.\n";

struct intro_cli {
	ocapn_intro_server *s;
	uv_signal_t sigint, sigterm;
	int signo;
};

static void
log_line(void *user, const char *line)
{
	(void)user;
	fprintf(stderr, "ocapn intro-server: %s\n", line);
}

static void
on_signal(uv_signal_t *h, int signo)
{
	struct intro_cli *st = h->data;
	st->signo = signo;
	uv_close((uv_handle_t *)&st->sigint, NULL);
	uv_close((uv_handle_t *)&st->sigterm, NULL);
	ocapn_intro_server_close(st->s, NULL, NULL);
}

int
cmd_intro(int argc, char **argv)
{
	bool quiet = false;
	const char *path = NULL;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			fputs(intro_usage, stdout);
			return 0;
		}
		if (!strcmp(argv[i], "--quiet")) {
			quiet = true;
		} else if (argv[i][0] == '-' || path) {
			fputs(intro_usage, stderr);
			return 2;
		} else {
			path = argv[i];
		}
	}
	if (!path) {
		fputs(intro_usage, stderr);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	uv_loop_t loop;
	if (uv_loop_init(&loop)) {
		cli_error("cannot initialise the event loop");
		return 1;
	}
	struct intro_cli st;
	memset(&st, 0, sizeof(st));
	int rc = ocapn_intro_server_new(&loop, path, NULL, NULL, &st.s);
	if (rc) {
		cli_error("cannot serve on %s: %s", path, ocapn_strerror(rc));
		uv_loop_close(&loop);
		return 1;
	}
	if (!quiet)
		ocapn_intro_server_set_log(st.s, log_line, NULL);
	const char *key = ocapn_intro_server_key(st.s);
	printf("KEY %s\nHINT %s=t\n", key, key);
	fflush(stdout);
	uv_signal_init(&loop, &st.sigint);
	uv_signal_init(&loop, &st.sigterm);
	st.sigint.data = st.sigterm.data = &st;
	uv_signal_start(&st.sigint, on_signal, SIGINT);
	uv_signal_start(&st.sigterm, on_signal, SIGTERM);
	uv_run(&loop, UV_RUN_DEFAULT);
	ocapn_intro_server_free(st.s);
	uv_loop_close(&loop);
	if (!quiet)
		fprintf(stderr, "ocapn intro-server: stopped by %s\n",
		    st.signo == SIGINT ? "SIGINT" : "SIGTERM");
	return 0;
}
