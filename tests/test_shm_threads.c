/*
 * The ring core with real concurrency: two threads, one endpoint each,
 * over heap regions, with a condition-variable doorbell.  Both send and
 * receive messages of random sizes (single packets and fragments),
 * release views out of order, and sleep through the arm/doorbell
 * protocol.  Checks exactly-once in-order delivery of the exact bytes.
 * This is also the test to run under ThreadSanitizer (docs/shm.md).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#include "netlayers/shm/ring.h"

#define NMSG 3000
#define MAXLEN 9000

struct bell {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	uint64_t count;
};

struct side {
	int id;
	ocapn__shm_ep *ep;
	struct bell bell;        /* rung by the peer */
	struct side *peer;
	uint64_t sleeps;
	const char *fail;
};

static void
ring(void *user)
{
	struct bell *b = user;
	pthread_mutex_lock(&b->mu);
	b->count++;
	pthread_cond_signal(&b->cv);
	pthread_mutex_unlock(&b->mu);
}

static void
bell_wait(struct bell *b)
{
	pthread_mutex_lock(&b->mu);
	while (b->count == 0)
		pthread_cond_wait(&b->cv, &b->mu);
	b->count = 0;
	pthread_mutex_unlock(&b->mu);
}

static uint32_t
msg_len(int dir, uint32_t i)
{
	uint32_t h = (i + 1) * 2654435761u ^ (uint32_t)dir * 40503u;
	h ^= h >> 13;
	return 1 + h % MAXLEN;
}

static uint8_t
msg_byte(int dir, uint32_t i, uint32_t k)
{
	return (uint8_t)(i * 7 + k * 13 + (uint32_t)dir);
}

static void *
run(void *arg)
{
	struct side *s = arg;
	static __thread uint8_t buf[MAXLEN];
	struct ocapn__shm_msg held[4];
	uint32_t nheld = 0, sent = 0, got = 0, rel = 0;
	while (sent < NMSG || got < NMSG || nheld > 0) {
		bool progress = false;
		if (sent < NMSG) {
			uint32_t len = msg_len(s->id, sent);
			for (uint32_t k = 0; k < len; k++)
				buf[k] = msg_byte(s->id, sent, k);
			struct ocapn__shm_iov iov = {buf, len};
			int rc = ocapn__shm_ep_send(s->ep, &iov, 1);
			if (rc == OCAPN_OK) {
				sent++;
				progress = true;
			} else if (rc != OCAPN_E_AGAIN) {
				s->fail = "send failed";
				return NULL;
			}
		}
		if (got < NMSG && nheld < 4) {
			struct ocapn__shm_msg m;
			int rc = ocapn__shm_ep_recv(s->ep, &m);
			if (rc == OCAPN_OK) {
				uint32_t len = msg_len(1 - s->id, got);
				if (m.len != len) {
					s->fail = "wrong length";
					return NULL;
				}
				for (uint32_t k = 0; k < len; k++)
					if (m.data[k] != msg_byte(1 - s->id,
					    got, k)) {
						s->fail = "wrong bytes";
						return NULL;
					}
				held[nheld++] = m;
				got++;
				progress = true;
			} else if (rc != OCAPN_E_AGAIN) {
				s->fail = "recv failed";
				return NULL;
			}
		}
		/* Release out of order: the second-newest first. */
		if (nheld == 4 || (nheld > 0 && (got == NMSG || !progress))) {
			uint32_t k = nheld >= 2 && (rel++ & 1) ? nheld - 2 :
			    nheld - 1;
			ocapn__shm_ep_release(s->ep, &held[k]);
			held[k] = held[--nheld];
			progress = true;
		}
		if (!progress) {
			if (ocapn__shm_ep_arm(s->ep)) {
				s->sleeps++;
				bell_wait(&s->bell);
			}
			if (ocapn__shm_ep_poll(s->ep) != OCAPN_OK) {
				s->fail = "poll failed";
				return NULL;
			}
		}
	}
	return NULL;
}

static void
test_two_threads(void **state)
{
	(void)state;
	struct ocapn__shm_geom g = {8, 2048, 16384};
	struct ocapn__shm_layout l, la, lb;
	assert_int_equal(ocapn__shm_layout(&g, &l, NULL), 0);
	uint8_t *ra = aligned_alloc(4096, l.region_size);
	uint8_t *rb = aligned_alloc(4096, l.region_size);
	assert_int_equal(ocapn__shm_format(ra, l.region_size, &g), 0);
	assert_int_equal(ocapn__shm_format(rb, l.region_size, &g), 0);
	const char *why;
	assert_int_equal(ocapn__shm_attach(ra, l.region_size, &la, &why), 0);
	assert_int_equal(ocapn__shm_attach(rb, l.region_size, &lb, &why), 0);
	static struct side a, b;
	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	a.id = 0;
	b.id = 1;
	a.peer = &b;
	b.peer = &a;
	pthread_mutex_init(&a.bell.mu, NULL);
	pthread_cond_init(&a.bell.cv, NULL);
	pthread_mutex_init(&b.bell.mu, NULL);
	pthread_cond_init(&b.bell.cv, NULL);
	struct ocapn__shm_ep_config cfg = {1u << 20, 1u << 20, 16, 0, 0};
	assert_int_equal(ocapn__shm_ep_new(&a.ep, NULL, ra, &g, rb, &lb, &cfg,
	    ring, &b.bell), 0);
	assert_int_equal(ocapn__shm_ep_new(&b.ep, NULL, rb, &g, ra, &la, &cfg,
	    ring, &a.bell), 0);
	pthread_t ta, tb;
	assert_int_equal(pthread_create(&ta, NULL, run, &a), 0);
	assert_int_equal(pthread_create(&tb, NULL, run, &b), 0);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	if (a.fail || b.fail)
		fail_msg("%s / %s", a.fail ? a.fail : "-",
		    b.fail ? b.fail : "-");
	fprintf(stderr, "# sleeps: %llu and %llu\n",
	    (unsigned long long)a.sleeps, (unsigned long long)b.sleeps);
	assert_int_equal(ocapn__shm_ep_poll(a.ep), 0);
	assert_int_equal(ocapn__shm_ep_poll(b.ep), 0);
	assert_null(ocapn__shm_ep_check(a.ep));
	assert_null(ocapn__shm_ep_check(b.ep));
	ocapn__shm_ep_free(a.ep);
	ocapn__shm_ep_free(b.ep);
	free(ra);
	free(rb);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_two_threads),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
