#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "captp_harness.h"

ocapn_locator *
h_locator(const char *name)
{
	ocapn_locator *l;
	assert_int_equal(ocapn_locator_new("loopback", 8, name, strlen(name),
			     NULL, &l),
	    OCAPN_OK);
	return l;
}

static void
pair_sessions(struct h_pair *p, ocapn_dialect da, ocapn_dialect db);

void
h_pair_init(struct h_pair *p, ocapn_dialect da, ocapn_dialect db)
{
	memset(p, 0, sizeof(*p));
	assert_int_equal(ocapn_vat_new(NULL, &p->va), 0);
	assert_int_equal(ocapn_vat_new(NULL, &p->vb), 0);
	pair_sessions(p, da, db);
}

void
h_pair_init_vats(struct h_pair *p, ocapn_vat *va, ocapn_vat *vb,
    ocapn_dialect da, ocapn_dialect db)
{
	memset(p, 0, sizeof(*p));
	p->va = va;
	p->vb = vb;
	p->shared_vats = true;
	pair_sessions(p, da, db);
}

static void
pair_sessions(struct h_pair *p, ocapn_dialect da, ocapn_dialect db)
{
	ocapn_locator *la = h_locator("alice"), *lb = h_locator("bob");
	assert_int_equal(ocapn_session_new(p->va, OCAPN_ROLE_INITIATOR, la, da,
			     &p->a),
	    0);
	assert_int_equal(ocapn_session_new(p->vb, OCAPN_ROLE_ACCEPTOR, lb, db,
			     &p->b),
	    0);
	assert_int_equal(ocapn_session_set_remote(p->a, lb), 0);
	ocapn_locator_free(la);
	ocapn_locator_free(lb);
	assert_int_equal(ocapn_session_start(p->a), 0);
	assert_int_equal(ocapn_session_start(p->b), 0);
}

void
h_log_clear(struct h_log *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->msgs[i]);
	l->n = 0;
}

void
h_log_messages(struct h_log *l, const uint8_t *p, size_t n,
    bool (*keep)(const char *))
{
	/* Output is whole messages: decode each for the log. */
	ocapn_syrup_decoder *dec = ocapn_syrup_decoder_new(0, NULL);
	ocapn_arena *ar = ocapn_arena_new(NULL);
	size_t off = 0;
	while (off < n) {
		ocapn_value *v;
		size_t used;
		int rc = ocapn_syrup_decode(dec, ar, p + off, n - off, &v,
		    &used);
		assert_int_equal(rc, OCAPN_OK);
		char buf[8192];
		h_print(v, buf, sizeof(buf));
		if (l->n < H_MAXLOG && (!keep || keep(buf)))
			l->msgs[l->n++] = strdup(buf);
		off += used;
		ocapn_arena_reset(ar);
	}
	ocapn_arena_free(ar);
	ocapn_syrup_decoder_free(dec);
}

size_t
h_move(ocapn_session *from, ocapn_session *to, struct h_log *log,
    size_t chunk)
{
	const uint8_t *d;
	size_t n;
	ocapn_session_output(from, &d, &n);
	if (!n)
		return 0;
	uint8_t *copy = malloc(n);
	assert_non_null(copy);
	memcpy(copy, d, n);
	ocapn_session_consume(from, n);
	h_log_messages(log, copy, n, NULL);
	size_t step = chunk ? chunk : n;
	for (size_t off = 0; off < n; off += step) {
		size_t k = n - off < step ? n - off : step;
		if (ocapn_session_get_state(to) != OCAPN_SESSION_ABORTED)
			ocapn_session_feed(to, copy + off, k);
	}
	free(copy);
	return n;
}

void
h_pump(struct h_pair *p)
{
	for (int round = 0; round < 10000; round++) {
		size_t moved = h_move(p->a, p->b, &p->a2b, p->chunk) +
		    h_move(p->b, p->a, &p->b2a, p->chunk);
		size_t turns = ocapn_vat_run(p->va, 0) + ocapn_vat_run(p->vb, 0);
		if (!moved && !turns) {
			if (getenv("H_DUMP_PUMP")) {
				h_log_dump("a2b", &p->a2b);
				h_log_dump("b2a", &p->b2a);
			}
			return;
		}
	}
	fail_msg("pump did not settle");
}

void
h_pair_free(struct h_pair *p)
{
	if (getenv("H_DUMP")) {
		h_log_dump("a2b", &p->a2b);
		h_log_dump("b2a", &p->b2a);
	}
	ocapn_session_free(p->a);
	ocapn_session_free(p->b);
	if (!p->shared_vats) {
		ocapn_vat_free(p->va);
		ocapn_vat_free(p->vb);
	}
	h_log_clear(&p->a2b);
	h_log_clear(&p->b2a);
}

int
h_log_find(const struct h_log *l, size_t from, const char *prefix)
{
	for (size_t i = from; i < l->n; i++)
		if (strncmp(l->msgs[i], prefix, strlen(prefix)) == 0)
			return (int)i;
	return -1;
}

void
h_log_dump(const char *title, const struct h_log *l)
{
	fprintf(stderr, "--- %s (%zu messages)\n", title, l->n);
	for (size_t i = 0; i < l->n; i++)
		fprintf(stderr, "  %s\n", l->msgs[i]);
}

/* Print with refs replaced by <ref>: copy the tree with a placeholder. */
static void
print_rec(const ocapn_value *v, ocapn_buffer *out, int depth)
{
	if (depth > 200)
		return;
	if (v->kind == OCAPN_REF) {
		ocapn_buffer_append(out, NULL, "<ref>", 5);
		return;
	}
	if (v->kind == OCAPN_LIST || v->kind == OCAPN_RECORD ||
	    v->kind == OCAPN_SET || v->kind == OCAPN_DICT) {
		/* Containers: print children ourselves only if any ref
		 * occurs below; otherwise use the library printer. */
		const char *open = v->kind == OCAPN_LIST ? "["
		    : v->kind == OCAPN_SET		 ? "#{"
		    : v->kind == OCAPN_DICT		 ? "{"
							 : "<";
		const char *close = v->kind == OCAPN_LIST ? "]"
		    : v->kind == OCAPN_RECORD		  ? ">"
							  : "}";
		size_t n = v->kind == OCAPN_DICT ? 2 * (size_t)v->len : v->len;
		ocapn_buffer_append(out, NULL, open, strlen(open));
		for (size_t i = 0; i < n; i++) {
			if (i)
				ocapn_buffer_append(out, NULL,
				    v->kind == OCAPN_DICT && i % 2 ? ": "
				    : v->kind == OCAPN_DICT	       ? ", "
									: " ",
				    v->kind == OCAPN_DICT ? 2 : 1);
			if (v->kind == OCAPN_RECORD && i == 0 &&
			    v->u.items[0].kind == OCAPN_SYMBOL) {
				ocapn_buffer_append(out, NULL, v->u.items[0].u.p,
				    v->u.items[0].len);
				continue;
			}
			print_rec(&v->u.items[i], out, depth + 1);
		}
		ocapn_buffer_append(out, NULL, close, strlen(close));
		return;
	}
	ocapn_notation_print(v, 0, out, NULL);
}

void
h_print(const ocapn_value *v, char *buf, size_t cap)
{
	ocapn_buffer out;
	ocapn_buffer_init(&out);
	print_rec(v, &out, 0);
	size_t n = out.len < cap - 1 ? out.len : cap - 1;
	memcpy(buf, out.data, n);
	buf[n] = '\0';
	ocapn_buffer_release(&out, NULL);
}

ocapn_ref *
h_fetch(ocapn_session *s, const char *swiss)
{
	ocapn_ref *p;
	assert_int_equal(ocapn_session_fetch(s, (const uint8_t *)swiss,
			     strlen(swiss), &p),
	    OCAPN_OK);
	return p;
}

static void
when_cb(ocapn_vat *vat, bool ok, const ocapn_value *v, void *user)
{
	struct h_result *r = user;
	(void)vat;
	r->done++;
	r->ok = ok;
	h_print(v, r->text, sizeof(r->text));
	if (v->kind == OCAPN_REF && !r->ref)
		r->ref = ocapn_ref_retain(v->u.ref);
}

void
h_when(ocapn_ref *target, struct h_result *r)
{
	memset(r, 0, sizeof(*r));
	assert_int_equal(ocapn_when(target, when_cb, r), OCAPN_OK);
}

void
h_result_clear(struct h_result *r)
{
	ocapn_ref_release(r->ref);
	memset(r, 0, sizeof(*r));
}

ocapn_value *
h_parse(ocapn_vat *vat, const char *text)
{
	ocapn_value *v;
	size_t used, eo;
	const char *why;
	int rc = ocapn_notation_parse(text, strlen(text), ocapn_vat_arena(vat),
	    &v, &used, &eo, &why);
	if (rc)
		fail_msg("cannot parse %s: %s at %zu", text, why, eo);
	return v;
}

uint8_t *
h_encode(const char *text, size_t *len)
{
	ocapn_arena *ar = ocapn_arena_new(NULL);
	ocapn_value *v;
	size_t used, eo;
	const char *why;
	int rc = ocapn_notation_parse(text, strlen(text), ar, &v, &used, &eo,
	    &why);
	if (rc)
		fail_msg("cannot parse %s: %s at %zu", text, why, eo);
	ocapn_syrup_writer *w = ocapn_syrup_writer_new(0, NULL);
	ocapn_syrup_write_value(w, v);
	const uint8_t *d;
	assert_int_equal(ocapn_syrup_writer_finish(w, &d, len), 0);
	uint8_t *copy = malloc(*len);
	memcpy(copy, d, *len);
	ocapn_syrup_writer_free(w);
	ocapn_arena_free(ar);
	return copy;
}
