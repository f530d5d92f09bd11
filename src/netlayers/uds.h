/*
 * Internal entry points of the unix-domain-socket netlayer and its
 * introduction server, for tests: fixed challenges (to replay recorded
 * handshakes) and limits small enough to reach.  Never installed.
 */
#ifndef OCAPN_NETLAYERS_UDS_H
#define OCAPN_NETLAYERS_UDS_H

#include <ocapn/runtime.h>

/* As ocapn_uds_netlayer_new(), with the challenge sent in uds:register
 * fixed to `challenge` (64 bytes) when it is not NULL. */
int ocapn__uds_netlayer_new_ex(uv_loop_t *loop, const char *path,
    const uint8_t *seed, const uint8_t *challenge,
    const ocapn_allocator *alloc, ocapn_netlayer **out);

/* Limits of the introduction server (defaults in uds_intro.c). */
struct ocapn__intro_limits {
	size_t max_clients;      /* connected control sockets */
	size_t queue_total;      /* queued introductions, all targets */
	size_t queue_per_target; /* queued introductions for one target */
	uint64_t queue_ttl_ms;   /* a queued introduction expires */
	uint64_t handshake_ms;   /* time to complete the registration */
	size_t max_out;          /* records queued to one client */
};

/* As ocapn_intro_server_new(), with `limits` (NULL: the defaults). */
int ocapn__intro_server_new_ex(uv_loop_t *loop, const char *path,
    const uint8_t *seed, const struct ocapn__intro_limits *limits,
    const ocapn_allocator *alloc, ocapn_intro_server **out);
/* Send `challenge` (64 bytes) to every client that registers from now
 * on, instead of random bytes (NULL: random again). */
void ocapn__intro_server_fix_challenge(ocapn_intro_server *s,
    const uint8_t *challenge);
/* Introductions waiting for their target; registered peers. */
size_t ocapn__intro_server_queued(const ocapn_intro_server *s);
size_t ocapn__intro_server_registered(const ocapn_intro_server *s);

#endif
