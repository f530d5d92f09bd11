/*
 * Netlayer selection shared by the CLI commands.
 */
#ifndef OCAPN_CLI_NETOPTS_H
#define OCAPN_CLI_NETOPTS_H

#define _POSIX_C_SOURCE 200809L
#include <ocapn/ocapn.h>
#include <ocapn/runtime.h>

struct netopts {
	const char *netlayer;     /* transport name */
	const char *host;         /* tcp */
	unsigned port;            /* tcp */
	const char *dir;          /* testuds, shm */
	const char *name;         /* testuds */
	const char *intro_server; /* unix-domain-socket */
	const char *version;      /* --captp-version */
	bool trace;               /* --trace */
};

/* Create the netlayer described by `o` on `loop`.  On failure prints an
 * error and returns non-zero. */
int netopts_create(const struct netopts *o, uv_loop_t *loop,
    ocapn_netlayer **out);

/* For netlayers whose locator is complete only after a setup exchange
 * (unix-domain-socket registration): run the loop until ready.  Returns 0
 * or prints an error and returns non-zero. */
int netopts_wait_ready(ocapn_netlayer *nl, uv_loop_t *loop);

/* ocapn_trace_fn printing each message in notation on stderr. */
void trace_message(void *user, ocapn_session *s, bool outbound,
    const uint8_t *msg, size_t len);

/* Print a value that may contain references (shown as <ref KIND>), one
 * line, to a buffer (appended, NUL-terminated). */
int print_value(const ocapn_value *v, ocapn_buffer *out);

#endif
