#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "syrup_testutil.h"

static void *
counting_fn(void *user, void *ptr, size_t old, size_t n)
{
	tu_counter *c = user;
	if (n == 0) {
		if (ptr) {
			c->frees++;
			c->live_bytes -= (long long)old;
		}
		free(ptr);
		return NULL;
	}
	if (c->fail_after && c->calls >= c->fail_after)
		return NULL;
	void *p = realloc(ptr, n);
	if (!p)
		return NULL;
	c->calls++;
	c->live_bytes += (long long)n - (long long)(ptr ? old : 0);
	return p;
}

void
tu_counter_init(tu_counter *c)
{
	memset(c, 0, sizeof(*c));
	c->alloc.fn = counting_fn;
	c->alloc.user = c;
}

static const char *const scenarios[] = {"testuds-all-scenarios",
    "testuds-bad-swiss-fetch", "testuds-op-get-index-untag",
    "testuds-value-encodings", "uds-op-abort", "uds-pipelined-car-factory",
    "uds-promise-resolver-break", "uds-remote-exception-broken-pipeline",
    "uds-session-fetch-echo", "uds-third-party-handoff"};

static void
push(tu_msg **m, size_t *n, size_t *cap, const uint8_t *p, size_t len,
    const char *origin)
{
	if (*n == *cap) {
		*cap = *cap ? 2 * *cap : 64;
		*m = realloc(*m, *cap * sizeof(**m));
		assert_non_null(*m);
	}
	tu_msg *x = &(*m)[(*n)++];
	x->data = malloc(len ? len : 1);
	assert_non_null(x->data);
	memcpy(x->data, p, len);
	x->len = len;
	/* a label for failure messages: cut to fit */
	size_t olen = strlen(origin);
	if (olen > sizeof(x->origin) - 1)
		olen = sizeof(x->origin) - 1;
	memcpy(x->origin, origin, olen);
	x->origin[olen] = '\0';
}

tu_msg *
tu_capture_streams(size_t *n)
{
	tu_msg *m = NULL;
	size_t cap = 0;
	*n = 0;
	for (size_t s = 0; s < sizeof(scenarios) / sizeof(*scenarios); s++) {
		char dir[256];
		snprintf(dir, sizeof(dir), "goblins-captures/%s", scenarios[s]);
		char **list = tu_list_data(dir, "captp", ".bin");
		for (char **f = list; *f; f++) {
			size_t len;
			uint8_t *buf = tu_read_data(*f, &len);
			push(&m, n, &cap, buf, len, *f);
			free(buf);
		}
		tu_free_list(list);
	}
	return m;
}

tu_msg *
tu_capture_messages(size_t *n)
{
	size_t ns;
	tu_msg *streams = tu_capture_streams(&ns);
	tu_msg *m = NULL;
	size_t cap = 0;
	*n = 0;
	ocapn_syrup_decoder *dec = ocapn_syrup_decoder_new(0, NULL);
	ocapn_arena *arena = ocapn_arena_new(NULL);
	assert_non_null(dec);
	assert_non_null(arena);
	for (size_t s = 0; s < ns; s++) {
		size_t off = 0, k = 0;
		while (off < streams[s].len) {
			ocapn_value *v;
			size_t used;
			assert_int_equal(ocapn_syrup_decode(dec, arena,
					     streams[s].data + off,
					     streams[s].len - off, &v, &used),
			    OCAPN_OK);
			char origin[160];
			snprintf(origin, sizeof(origin), "%s #%zu",
			    streams[s].origin, k++);
			push(&m, n, &cap, streams[s].data + off, used, origin);
			off += used;
			ocapn_arena_reset(arena);
		}
	}
	ocapn_arena_free(arena);
	ocapn_syrup_decoder_free(dec);
	tu_free_msgs(streams, ns);
	return m;
}

void
tu_free_msgs(tu_msg *m, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(m[i].data);
	free(m);
}

uint8_t *
tu_encode(const ocapn_value *v, unsigned flags, size_t *len)
{
	ocapn_syrup_writer *w = ocapn_syrup_writer_new(flags, NULL);
	assert_non_null(w);
	int rc = ocapn_syrup_write_value(w, v);
	const uint8_t *p;
	if (!rc)
		rc = ocapn_syrup_writer_finish(w, &p, len);
	if (rc) {
		const char *why;
		ocapn_syrup_writer_error(w, &why);
		fail_msg("encode failed: %s (%s)", ocapn_err_name(rc), why);
	}
	uint8_t *copy = malloc(*len ? *len : 1);
	assert_non_null(copy);
	memcpy(copy, p, *len);
	ocapn_syrup_writer_free(w);
	return copy;
}

ocapn_value *
tu_decode(ocapn_arena *arena, unsigned flags, const uint8_t *buf, size_t len)
{
	ocapn_syrup_decoder *dec = ocapn_syrup_decoder_new(flags, NULL);
	assert_non_null(dec);
	ocapn_value *v = NULL;
	int rc = ocapn_syrup_decode_one(dec, arena, buf, len, &v);
	if (rc) {
		size_t off;
		const char *why = ocapn_syrup_decoder_error(dec, &off);
		fail_msg("decode failed: %s at %zu: %s", ocapn_err_name(rc),
		    off, why);
	}
	ocapn_syrup_decoder_free(dec);
	return v;
}

char *
tu_print(const ocapn_value *v, unsigned flags)
{
	ocapn_buffer b;
	ocapn_buffer_init(&b);
	int rc = ocapn_notation_print(v, flags, &b, NULL);
	if (rc)
		fail_msg("print: %s", ocapn_err_name(rc));
	char *s = malloc(b.len + 1);
	assert_non_null(s);
	memcpy(s, b.data, b.len);
	s[b.len] = '\0';
	ocapn_buffer_release(&b, NULL);
	return s;
}

ocapn_value *
tu_parse(ocapn_arena *arena, const char *text)
{
	ocapn_value *v;
	size_t used, eo;
	const char *why;
	int rc = ocapn_notation_parse(text, strlen(text), arena, &v, &used,
	    &eo, &why);
	if (rc)
		fail_msg("parse '%s': %s at %zu: %s", text, ocapn_err_name(rc),
		    eo, why);
	for (size_t i = used; text[i]; i++)
		if (!strchr(" \t\r\n", text[i]))
			fail_msg("parse '%s': stopped at %zu", text, used);
	return v;
}
