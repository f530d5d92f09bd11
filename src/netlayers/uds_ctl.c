/*
 * unix-domain-socket control protocol: records and the exact-reading
 * channel (see uds_ctl.h).
 *
 * Reading without over-reading: every read first peeks (MSG_PEEK, no
 * control buffer, so a peeked descriptor is not installed) and feeds the
 * peeked bytes to the resumable Syrup scanner, then consumes exactly the
 * bytes the scanner took: all of them while the record is unfinished, up
 * to its last byte when it ends.  So the bytes after a record stay in the
 * socket, and the four bytes that follow a uds:new-connection are read by
 * a recvmsg() with a control buffer, which is the only way to receive the
 * descriptor they carry (a read() over them makes the kernel drop it).
 * Every consuming read uses recvmsg() with a control buffer, so a
 * descriptor arriving anywhere else is noticed (and refused) rather than
 * lost or leaked.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>
#include <unistd.h>

#include "../util/util.h"
#include "uds_ctl.h"

#define PEEK_CHUNK 4096

/* ---- designators ---------------------------------------------------- */

static const char b32_alphabet[] = "abcdefghijklmnopqrstuvwxyz234567";

void
ocapn__uds_b32(const uint8_t key[OCAPN__PK_LEN],
    char out[OCAPN__UDS_B32_LEN + 1])
{
	uint32_t acc = 0;
	int bits = 0;
	size_t o = 0;
	for (size_t i = 0; i < OCAPN__PK_LEN; i++) {
		acc = (acc << 8) | key[i];
		bits += 8;
		while (bits >= 5) {
			bits -= 5;
			out[o++] = b32_alphabet[(acc >> bits) & 31];
		}
	}
	if (bits > 0)
		out[o++] = b32_alphabet[(acc << (5 - bits)) & 31];
	out[o] = '\0';
}

bool
ocapn__uds_designator_ok(const char *s, size_t len, uint8_t *key)
{
	if (len != OCAPN__UDS_B32_LEN)
		return false;
	uint8_t k[OCAPN__PK_LEN];
	uint32_t acc = 0;
	int bits = 0;
	size_t o = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned v;
		char c = s[i];
		if (c >= 'a' && c <= 'z')
			v = (unsigned)(c - 'a');
		else if (c >= '2' && c <= '7')
			v = (unsigned)(c - '2') + 26;
		else
			return false; /* uppercase too: Goblins refuses it */
		acc = (acc << 5) | v;
		bits += 5;
		if (bits >= 8) {
			bits -= 8;
			k[o++] = (uint8_t)(acc >> bits);
		}
	}
	/* 52 * 5 = 260 bits: the last 4 must be zero (one spelling only) */
	if (o != OCAPN__PK_LEN || (acc & ((1u << bits) - 1)) != 0)
		return false;
	if (key)
		memcpy(key, k, sizeof(k));
	return true;
}

/* ---- parsing -------------------------------------------------------- */

static int
reject(const char **why, const char *reason)
{
	if (why)
		*why = reason;
	return OCAPN_E_PROTOCOL;
}

int
ocapn__uds_parse_peer(const ocapn_value *v, struct ocapn__uds_peer *out,
    const char **why)
{
	if (!ocapn_value_is_record(v, "ocapn-peer", SIZE_MAX))
		return reject(why, "location is not an ocapn-peer record");
	if (v->len != 4)
		return reject(why, "ocapn-peer does not have 3 fields");
	const ocapn_value *t = &v->u.items[1];
	const ocapn_value *d = &v->u.items[2];
	const ocapn_value *h = &v->u.items[3];
	if (t->kind != OCAPN_SYMBOL)
		return reject(why, "location transport is not a symbol");
	if (!ocapn_value_is_symbol(t, OCAPN__UDS_TRANSPORT))
		return reject(why,
		    "location transport is not 'unix-domain-socket");
	if (d->kind != OCAPN_STRING)
		return reject(why, "location designator is not a string");
	if (!ocapn__uds_designator_ok((const char *)d->u.p, d->len, out->key))
		return reject(why, "location designator is not 52 lowercase "
				   "base32 characters of a 32-byte key");
	if (!(h->kind == OCAPN_DICT ||
		(h->kind == OCAPN_BOOL && h->u.b == 0)))
		return reject(why, "location hints are neither a dict nor f");
	memcpy(out->designator, d->u.p, OCAPN__UDS_B32_LEN);
	out->designator[OCAPN__UDS_B32_LEN] = '\0';
	return OCAPN_OK;
}

static int
get_challenge(const ocapn_value *v, const uint8_t **p, size_t *n,
    const char **why, const char *not_bytes, const char *bad_len)
{
	if (v->kind != OCAPN_BYTES)
		return reject(why, not_bytes);
	if (v->len < OCAPN__UDS_CHALLENGE_MIN ||
	    v->len > OCAPN__UDS_CHALLENGE_MAX)
		return reject(why, bad_len);
	*p = v->u.p;
	*n = v->len;
	return OCAPN_OK;
}

/* `<uds:signature PAYLOAD SIGNATURE>`, SIGNATURE raw r||s or a sig-val. */
static int
parse_signature(const ocapn_value *v, const uint8_t **payload, size_t *n,
    uint8_t sig[OCAPN__SIG_LEN], bool *raw, const char **why)
{
	if (!ocapn_value_is_record(v, "uds:signature", SIZE_MAX))
		return reject(why, "signature is neither a sig-val nor a "
				   "uds:signature");
	if (v->len != 3)
		return reject(why, "uds:signature does not have 2 fields");
	const ocapn_value *f = v->u.items + 1;
	int rc = get_challenge(&f[0], payload, n, why,
	    "uds:signature payload is not a bytestring",
	    "uds:signature payload is not 32 to 256 bytes");
	if (rc)
		return rc;
	*raw = f[1].kind == OCAPN_BYTES;
	if (*raw) {
		if (f[1].len != OCAPN__SIG_LEN)
			return reject(why, "uds:signature signature is not 64 "
					   "bytes");
		memcpy(sig, f[1].u.p, OCAPN__SIG_LEN);
		return OCAPN_OK;
	}
	return ocapn__parse_sigval(&f[1], sig, why);
}

int
ocapn__uds_parse(ocapn_syrup_decoder *dec, ocapn_arena *arena,
    const uint8_t *rec, size_t len, struct ocapn__uds_rec *out,
    const char **why)
{
	ocapn_value *v;
	int rc = ocapn_syrup_decode_one(dec, arena, rec, len, &v);
	if (rc) {
		if (why)
			*why = ocapn_syrup_decoder_error(dec, NULL);
		return rc;
	}
	if (v->kind != OCAPN_RECORD || v->len < 1 ||
	    v->u.items[0].kind != OCAPN_SYMBOL)
		return reject(why, "control message is not a record with a "
				   "symbol label");
	const ocapn_value *f = v->u.items + 1;
	size_t nf = v->len - 1;
	memset(out, 0, sizeof(*out));
	if (ocapn_value_is_record(v, "uds:register", SIZE_MAX)) {
		if (nf != 2)
			return reject(why, "uds:register does not have 2 "
					   "fields");
		out->kind = OCAPN__UDS_REGISTER;
		if ((rc = ocapn__uds_parse_peer(&f[0], &out->peer, why)))
			return rc;
		return get_challenge(&f[1], &out->bytes, &out->nbytes, why,
		    "uds:register challenge is not a bytestring",
		    "uds:register challenge is not 32 to 256 bytes");
	}
	if (ocapn_value_is_record(v, "uds:server-response", SIZE_MAX)) {
		if (nf != 3)
			return reject(why, "uds:server-response does not have "
					   "3 fields");
		out->kind = OCAPN__UDS_SERVER_RESPONSE;
		if ((rc = ocapn__parse_pubkey(&f[0], out->pk, why)))
			return rc;
		if ((rc = get_challenge(&f[1], &out->bytes, &out->nbytes, why,
			 "uds:server-response challenge is not a bytestring",
			 "uds:server-response challenge is not 32 to 256 "
			 "bytes")))
			return rc;
		if (f[2].kind == OCAPN_RECORD) {
			bool raw;
			return parse_signature(&f[2], &out->signed_payload,
			    &out->nsigned_payload, out->sig, &raw, why);
		}
		return ocapn__parse_sigval(&f[2], out->sig, why);
	}
	if (ocapn_value_is_record(v, "uds:signature", SIZE_MAX)) {
		out->kind = OCAPN__UDS_SIGNATURE;
		return parse_signature(v, &out->bytes, &out->nbytes, out->sig,
		    &out->sig_raw, why);
	}
	if (ocapn_value_is_record(v, "uds:new-connection", SIZE_MAX)) {
		if (nf != 2)
			return reject(why, "uds:new-connection does not have 2 "
					   "fields");
		out->kind = OCAPN__UDS_NEW_CONNECTION;
		if ((rc = ocapn__uds_parse_peer(&f[0], &out->peer, why)))
			return rc;
		return ocapn__uds_parse_peer(&f[1], &out->to, why);
	}
	return reject(why, "unknown control record");
}

/* ---- writing records -------------------------------------------------- */

static void
write_sym(ocapn_syrup_writer *w, const char *s)
{
	ocapn_syrup_write_symbol(w, s, strlen(s));
}

int
ocapn__uds_write_register(ocapn_syrup_writer *w, const char *designator,
    const uint8_t *challenge, size_t clen)
{
	ocapn_syrup_write_record_begin(w);
	write_sym(w, "uds:register");
	ocapn_syrup_write_record_begin(w);
	write_sym(w, "ocapn-peer");
	write_sym(w, OCAPN__UDS_TRANSPORT);
	ocapn_syrup_write_string(w, designator, strlen(designator));
	ocapn_syrup_write_bool(w, false);
	ocapn_syrup_write_record_end(w);
	ocapn_syrup_write_bytes(w, challenge, clen);
	return ocapn_syrup_write_record_end(w);
}

int
ocapn__uds_write_server_response(ocapn_syrup_writer *w,
    const uint8_t pk[OCAPN__PK_LEN], const uint8_t *challenge, size_t clen,
    const uint8_t sig[OCAPN__SIG_LEN])
{
	ocapn_syrup_write_record_begin(w);
	write_sym(w, "uds:server-response");
	ocapn__write_pubkey(w, pk);
	ocapn_syrup_write_bytes(w, challenge, clen);
	ocapn__write_sigval(w, sig);
	return ocapn_syrup_write_record_end(w);
}

int
ocapn__uds_write_signature(ocapn_syrup_writer *w, const uint8_t *payload,
    size_t plen, const uint8_t sig[OCAPN__SIG_LEN], bool raw)
{
	ocapn_syrup_write_record_begin(w);
	write_sym(w, "uds:signature");
	ocapn_syrup_write_bytes(w, payload, plen);
	if (raw)
		ocapn_syrup_write_bytes(w, sig, OCAPN__SIG_LEN);
	else
		ocapn__write_sigval(w, sig);
	return ocapn_syrup_write_record_end(w);
}

int
ocapn__uds_write_new_connection(ocapn_syrup_writer *w,
    const ocapn_locator *from, const ocapn_locator *to)
{
	ocapn_syrup_write_record_begin(w);
	write_sym(w, "uds:new-connection");
	ocapn_locator_write(from, w);
	ocapn_locator_write(to, w);
	return ocapn_syrup_write_record_end(w);
}

/* ---- channel ---------------------------------------------------------- */

struct ocapn__uds_out {
	struct ocapn__uds_out *next;
	void *tag;
	int fd;          /* to pass after the record, -1 when none/passed */
	bool has_tail;
	size_t tail_off; /* tail bytes written */
	size_t len, off;
	uint8_t data[];
};

union cmsg_buf {
	struct cmsghdr h;
	char buf[CMSG_SPACE(sizeof(int) * OCAPN__UDS_MAX_FDS)];
};

int
ocapn__uds_chan_init(ocapn__uds_chan *ch, int fd, const ocapn_allocator *a)
{
	memset(ch, 0, sizeof(*ch));
	ch->fd = fd;
	ch->tail_fd = -1;
	ocapn__alloc_init(&ch->a, a);
	ocapn_syrup_decoder *limits = ocapn_syrup_decoder_new(0, &ch->a);
	if (!limits)
		return OCAPN_E_NOMEM;
	ocapn_syrup_decoder_set_limit(limits, OCAPN_SYRUP_MAX_TOTAL,
	    OCAPN__UDS_MAX_RECORD);
	ocapn_syrup_decoder_set_limit(limits, OCAPN_SYRUP_MAX_ATOM,
	    OCAPN__UDS_MAX_RECORD);
	ocapn_syrup_decoder_set_limit(limits, OCAPN_SYRUP_MAX_DEPTH, 16);
	ch->scanner = ocapn_syrup_scanner_new(limits, &ch->a);
	ocapn_syrup_decoder_free(limits);
	if (!ch->scanner)
		return OCAPN_E_NOMEM;
	ocapn_buffer_init(&ch->rec);
	return OCAPN_OK;
}

static void
out_free(ocapn__uds_chan *ch, struct ocapn__uds_out *o)
{
	if (o->fd >= 0)
		close(o->fd);
	ocapn__free(&ch->a, o, sizeof(*o) + o->len);
}

void
ocapn__uds_chan_close(ocapn__uds_chan *ch,
    void (*dropped)(void *ctx, void *tag), void *ctx)
{
	struct ocapn__uds_out *lists[2] = {ch->head, ch->done};
	ch->head = ch->tail = ch->done = NULL;
	ch->out_items = 0;
	for (int i = 0; i < 2; i++) {
		while (lists[i]) {
			struct ocapn__uds_out *o = lists[i];
			lists[i] = o->next;
			void *tag = o->tag;
			out_free(ch, o);
			if (tag && dropped)
				dropped(ctx, tag);
		}
	}
	if (ch->tail_fd >= 0) {
		close(ch->tail_fd);
		ch->tail_fd = -1;
	}
	ocapn_syrup_scanner_free(ch->scanner);
	ch->scanner = NULL;
	ocapn_buffer_release(&ch->rec, &ch->a);
}

/* Record the reason: `what`, and ": detail" when `detail` is set. */
static enum ocapn__uds_in
fail(ocapn__uds_chan *ch, int *err, int code, const char *what,
    const char *detail)
{
	if (detail)
		snprintf(ch->why, sizeof(ch->why), "%s: %s", what, detail);
	else
		snprintf(ch->why, sizeof(ch->why), "%s", what);
	*err = code;
	return OCAPN__UDS_IN_ERROR;
}

/* recvmsg() of up to `n` bytes into `p`; descriptors that come with them
 * are stored in fds[] (*nfds of them; *trunc if some were lost). */
static ssize_t
recv_with_fds(int fd, void *p, size_t n, int *fds, size_t *nfds, bool *trunc)
{
	union cmsg_buf cb;
	struct iovec iov = {p, n};
	struct msghdr m;
	memset(&m, 0, sizeof(m));
	memset(&cb, 0, sizeof(cb));
	m.msg_iov = &iov;
	m.msg_iovlen = 1;
	m.msg_control = cb.buf;
	m.msg_controllen = sizeof(cb.buf);
	ssize_t r;
	do
		r = recvmsg(fd, &m, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	while (r < 0 && errno == EINTR);
	*nfds = 0;
	*trunc = (m.msg_flags & MSG_CTRUNC) != 0;
	if (r < 0)
		return r;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c;
	    c = CMSG_NXTHDR(&m, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < k; i++) {
			int got;
			memcpy(&got, CMSG_DATA(c) + i * sizeof(int),
			    sizeof(int));
			if (*nfds < OCAPN__UDS_MAX_FDS)
				fds[(*nfds)++] = got;
			else
				close(got);
		}
	}
	return r;
}

static void
close_fds(int *fds, size_t n)
{
	for (size_t i = 0; i < n; i++)
		close(fds[i]);
}

static enum ocapn__uds_in
read_tail(ocapn__uds_chan *ch, int *fd, int *err)
{
	while (ch->tail_got < OCAPN__UDS_TAIL_LEN) {
		uint8_t b[OCAPN__UDS_TAIL_LEN];
		int fds[OCAPN__UDS_MAX_FDS];
		size_t nfds;
		bool trunc;
		ssize_t r = recv_with_fds(ch->fd, b,
		    OCAPN__UDS_TAIL_LEN - ch->tail_got, fds, &nfds, &trunc);
		if (r < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return OCAPN__UDS_IN_AGAIN;
			return fail(ch, err, OCAPN_E_IO, "read error",
			    strerror(errno));
		}
		if (r == 0)
			return fail(ch, err, OCAPN_E_CLOSED,
			    "connection closed before the descriptor of a "
			    "uds:new-connection", NULL);
		/* Goblins may pass two (a padded cmsg_len): keep the
		 * first, close the rest. */
		for (size_t i = 0; i < nfds; i++) {
			if (ch->tail_fd < 0)
				ch->tail_fd = fds[i];
			else
				close(fds[i]);
		}
		if (trunc)
			return fail(ch, err, OCAPN_E_PROTOCOL,
			    "too many descriptors passed with a "
			    "uds:new-connection", NULL);
		ch->tail_got += (size_t)r;
	}
	ch->want_fd = false;
	ch->tail_got = 0;
	if (ch->tail_fd < 0)
		return fail(ch, err, OCAPN_E_PROTOCOL,
		    "uds:new-connection was not followed by a passed "
		    "descriptor", NULL);
	*fd = ch->tail_fd;
	ch->tail_fd = -1;
	return OCAPN__UDS_IN_FD;
}

enum ocapn__uds_in
ocapn__uds_chan_read(ocapn__uds_chan *ch, const uint8_t **rec, size_t *len,
    int *fd, int *err)
{
	if (!ch->scanner)
		return fail(ch, err, OCAPN_E_CLOSED, "channel closed", NULL);
	if (ch->rec_done) {
		ch->rec.len = 0;
		ch->rec_done = false;
	}
	if (ch->want_fd)
		return read_tail(ch, fd, err);
	for (;;) {
		if (ocapn_buffer_reserve(&ch->rec, &ch->a, PEEK_CHUNK))
			return fail(ch, err, OCAPN_E_NOMEM,
			    "out of memory for a control record", NULL);
		uint8_t *p = ch->rec.data + ch->rec.len;
		ssize_t n;
		do
			n = recv(ch->fd, p, PEEK_CHUNK,
			    MSG_PEEK | MSG_DONTWAIT);
		while (n < 0 && errno == EINTR);
		if (n < 0 && errno != ECONNRESET) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return OCAPN__UDS_IN_AGAIN;
			return fail(ch, err, OCAPN_E_IO, "read error",
			    strerror(errno));
		}
		/* A reset (the peer closed with our bytes unread) ends the
		 * stream like an end of file. */
		if (n <= 0) {
			if (ch->rec.len == 0)
				return OCAPN__UDS_IN_EOF;
			return fail(ch, err, OCAPN_E_CLOSED,
			    "connection closed in the middle of a control "
			    "record", NULL);
		}
		size_t used;
		int rc = ocapn_syrup_scanner_feed(ch->scanner, p, (size_t)n,
		    &used);
		if (rc == OCAPN_E_INCOMPLETE)
			used = (size_t)n;
		else if (rc) {
			size_t eo;
			const char *why = ocapn_syrup_scanner_error(ch->scanner,
			    &eo);
			snprintf(ch->why, sizeof(ch->why),
			    "malformed control record at stream byte %zu: %s",
			    eo, why);
			*err = rc;
			return OCAPN__UDS_IN_ERROR;
		}
		/* Consume exactly the bytes peeked and scanned. */
		size_t got = 0;
		while (got < used) {
			int fds[OCAPN__UDS_MAX_FDS];
			size_t nfds;
			bool trunc;
			ssize_t r = recv_with_fds(ch->fd, p + got, used - got,
			    fds, &nfds, &trunc);
			if (nfds || trunc) {
				close_fds(fds, nfds);
				return fail(ch, err, OCAPN_E_PROTOCOL,
				    "a descriptor was passed inside a "
				    "control record", NULL);
			}
			if (r <= 0)
				return fail(ch, err, OCAPN_E_IO,
				    "read error", r == 0 ?
				    "end of stream after peeking" :
				    strerror(errno));
			got += (size_t)r;
		}
		ch->rec.len += used;
		if (rc == OCAPN_OK) {
			ch->rec_done = true;
			*rec = ch->rec.data;
			*len = ch->rec.len;
			return OCAPN__UDS_IN_RECORD;
		}
	}
}

void
ocapn__uds_chan_expect_fd(ocapn__uds_chan *ch)
{
	ch->want_fd = true;
	ch->tail_got = 0;
}

int
ocapn__uds_chan_queue(ocapn__uds_chan *ch, const uint8_t *rec, size_t len,
    int pass_fd, void *tag)
{
	struct ocapn__uds_out *o = ocapn__malloc(&ch->a, sizeof(*o) + len);
	if (!o)
		return OCAPN_E_NOMEM;
	memcpy(o->data, rec, len);
	o->next = NULL;
	o->tag = tag;
	o->fd = pass_fd;
	o->has_tail = pass_fd >= 0;
	o->tail_off = 0;
	o->len = len;
	o->off = 0;
	if (ch->tail)
		ch->tail->next = o;
	else
		ch->head = o;
	ch->tail = o;
	ch->out_items++;
	return OCAPN_OK;
}

/* The 4 data bytes: the native-endian 32-bit integer 12345, as Goblins
 * sends them (`(s32vector 12345)`); receivers ignore their value. */
static void
tail_bytes(uint8_t out[OCAPN__UDS_TAIL_LEN])
{
	int32_t v = 12345;
	memcpy(out, &v, sizeof(v));
}

static ssize_t
send_fd(int sock, const uint8_t *data, size_t len, int fd)
{
	union cmsg_buf cb;
	memset(&cb, 0, sizeof(cb));
	struct iovec iov = {(void *)data, len};
	struct msghdr m;
	memset(&m, 0, sizeof(m));
	m.msg_iov = &iov;
	m.msg_iovlen = 1;
	m.msg_control = cb.buf;
	m.msg_controllen = CMSG_SPACE(sizeof(int));
	struct cmsghdr *c = CMSG_FIRSTHDR(&m);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	ssize_t r;
	do
		r = sendmsg(sock, &m, MSG_DONTWAIT | MSG_NOSIGNAL);
	while (r < 0 && errno == EINTR);
	return r;
}

static int
write_failed(ocapn__uds_chan *ch)
{
	int e = errno;
	snprintf(ch->why, sizeof(ch->why), "write error: %s", strerror(e));
	return e == EPIPE || e == ECONNRESET ? OCAPN_E_CLOSED : OCAPN_E_IO;
}

int
ocapn__uds_chan_flush(ocapn__uds_chan *ch)
{
	while (ch->head) {
		struct ocapn__uds_out *o = ch->head;
		ssize_t r;
		if (o->off < o->len) {
			do
				r = send(ch->fd, o->data + o->off,
				    o->len - o->off,
				    MSG_DONTWAIT | MSG_NOSIGNAL);
			while (r < 0 && errno == EINTR);
			if (r < 0) {
				if (errno == EAGAIN || errno == EWOULDBLOCK)
					return OCAPN_E_AGAIN;
				return write_failed(ch);
			}
			o->off += (size_t)r;
			continue;
		}
		if (o->has_tail && o->tail_off < OCAPN__UDS_TAIL_LEN) {
			uint8_t t[OCAPN__UDS_TAIL_LEN];
			tail_bytes(t);
			if (o->tail_off == 0) {
				/* the descriptor rides on the first byte */
				r = send_fd(ch->fd, t, sizeof(t), o->fd);
			} else {
				do
					r = send(ch->fd, t + o->tail_off,
					    sizeof(t) - o->tail_off,
					    MSG_DONTWAIT | MSG_NOSIGNAL);
				while (r < 0 && errno == EINTR);
			}
			if (r < 0) {
				if (errno == EAGAIN || errno == EWOULDBLOCK)
					return OCAPN_E_AGAIN;
				return write_failed(ch);
			}
			if (r > 0 && o->fd >= 0) {
				close(o->fd); /* the peer has its copy */
				o->fd = -1;
			}
			o->tail_off += (size_t)r;
			continue;
		}
		ch->head = o->next;
		if (!ch->head)
			ch->tail = NULL;
		ch->out_items--;
		if (o->tag) {
			/* keep it until its tag is taken */
			o->next = NULL;
			struct ocapn__uds_out **pp = &ch->done;
			while (*pp)
				pp = &(*pp)->next;
			*pp = o;
		} else {
			out_free(ch, o);
		}
	}
	return OCAPN_OK;
}

void *
ocapn__uds_chan_take_done(ocapn__uds_chan *ch)
{
	struct ocapn__uds_out *o = ch->done;
	if (!o)
		return NULL;
	ch->done = o->next;
	void *tag = o->tag;
	out_free(ch, o);
	return tag;
}

bool
ocapn__uds_chan_cancel(ocapn__uds_chan *ch, void *tag)
{
	struct ocapn__uds_out **pp = &ch->head, *prev = NULL;
	for (; *pp; prev = *pp, pp = &(*pp)->next) {
		struct ocapn__uds_out *o = *pp;
		if (o->tag != tag)
			continue;
		if (o->off > 0) {
			o->tag = NULL;
			return false;
		}
		*pp = o->next;
		if (ch->tail == o)
			ch->tail = prev;
		ch->out_items--;
		out_free(ch, o);
		return true;
	}
	for (pp = &ch->done; *pp; pp = &(*pp)->next) {
		struct ocapn__uds_out *o = *pp;
		if (o->tag == tag) {
			*pp = o->next;
			out_free(ch, o);
			return false;
		}
	}
	return false;
}

bool
ocapn__uds_fd_ok(int fd, const char **why)
{
	int v;
	socklen_t l = sizeof(v);
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &v, &l) != 0) {
		*why = "passed descriptor is not a socket";
		return false;
	}
	if (v != SOCK_STREAM) {
		*why = "passed descriptor is not a stream socket";
		return false;
	}
	struct sockaddr_un sa;
	l = sizeof(sa);
	if (getsockname(fd, (struct sockaddr *)&sa, &l) != 0 ||
	    l < sizeof(sa_family_t) || sa.sun_family != AF_UNIX) {
		*why = "passed descriptor is not a unix-domain socket";
		return false;
	}
	l = sizeof(v);
	if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &v, &l) == 0 && v) {
		*why = "passed descriptor is a listening socket";
		return false;
	}
	l = sizeof(sa);
	if (getpeername(fd, (struct sockaddr *)&sa, &l) != 0) {
		*why = "passed descriptor is not a connected socket";
		return false;
	}
	return true;
}
