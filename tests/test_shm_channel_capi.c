/*
 * The C platform interface of the Genode port kit (genode/include/
 * ocapn_shm/channel.h, genode/src/lib/ocapn_shm_channel.c), exercised on
 * Linux over heap regions the way the Genode glue uses it: the "server"
 * formats both regions, each side creates a channel, signals are
 * callbacks that the test delivers by calling progress.
 */
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#include <ocapn_shm/channel.h>

struct side {
	struct ocapn_shm_channel *ch;
	int signals; /* signals submitted to this side */
	unsigned got;
	char last[64];
};

static void
submit(void *ctx)
{
	((struct side *)ctx)->signals++;
}

static void
on_msg(void *ctx, char const *msg, unsigned long len)
{
	struct side *s = ctx;
	if (len >= sizeof(s->last))
		len = sizeof(s->last) - 1;
	memcpy(s->last, msg, len);
	s->last[len] = '\0';
	s->got++;
}

static void
test_channel_pair(void **state)
{
	(void)state;
	struct ocapn_shm_geometry g = {8, 1024, 4096};
	unsigned long size = ocapn_shm_region_size(&g);
	assert_true(size > 4096);
	struct ocapn_shm_geometry bad = {3, 1024, 4096};
	assert_int_equal(ocapn_shm_region_size(&bad), 0);
	/* The server allocates and formats both regions. */
	void *c2s = aligned_alloc(4096, size), *s2c = aligned_alloc(4096, size);
	assert_int_equal(ocapn_shm_region_format(c2s, size, &g), 0);
	assert_int_equal(ocapn_shm_region_format(s2c, size, &g), 0);

	struct side client = {0}, server = {0};
	char const *why = "";
	client.ch = ocapn_shm_channel_create(c2s, size, s2c, size, 1 << 16,
	    1 << 16, submit, &server, &why);
	assert_non_null(client.ch);
	server.ch = ocapn_shm_channel_create(s2c, size, c2s, size, 1 << 16,
	    1 << 16, submit, &client, &why);
	assert_non_null(server.ch);

	/* The server goes idle: nothing pending, so it arms and sleeps. */
	assert_int_equal(ocapn_shm_channel_arm(server.ch), 0);
	assert_int_equal(ocapn_shm_channel_send(client.ch, "ping", 4), 0);
	assert_int_equal(server.signals, 1);
	/* Its signal handler. */
	assert_int_equal(ocapn_shm_channel_progress(server.ch), 0);
	assert_int_equal(ocapn_shm_channel_rx(server.ch, on_msg, &server, 8),
	    1);
	assert_string_equal(server.last, "ping");
	assert_int_equal(ocapn_shm_channel_send(server.ch, "pong", 4), 0);
	assert_int_equal(ocapn_shm_channel_rx(client.ch, on_msg, &client, 8),
	    1);
	assert_string_equal(client.last, "pong");

	/* Back-pressure: fill the client's bulk buffer with a server that
	 * does not read, then drain. */
	static char big[1024];
	int sent = 0, rc;
	while ((rc = ocapn_shm_channel_send(client.ch, big, sizeof(big))) ==
	    0)
		sent++;
	assert_int_equal(rc, OCAPN_SHM_CHANNEL_AGAIN);
	assert_int_equal(ocapn_shm_channel_arm(client.ch), 0);
	long n = ocapn_shm_channel_rx(server.ch, on_msg, &server, 100);
	assert_int_equal(n, sent);
	/* Acks went back with a signal because the client asked for it. */
	assert_true(client.signals >= 1);
	assert_int_equal(ocapn_shm_channel_progress(client.ch), 0);
	assert_int_equal(ocapn_shm_channel_send(client.ch, big, sizeof(big)),
	    0);

	/* A region with a bad header is refused with a reason. */
	void *junk = calloc(1, size);
	assert_null(ocapn_shm_channel_create(c2s, size, junk, size, 1 << 16,
	    1 << 16, submit, &server, &why));
	assert_string_equal(why, "bad region magic");
	free(junk);

	assert_int_equal(ocapn_shm_channel_error(client.ch, &why), 0);
	ocapn_shm_channel_destroy(client.ch);
	ocapn_shm_channel_destroy(server.ch);
	free(c2s);
	free(s2c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_channel_pair),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
