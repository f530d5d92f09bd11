/*
 * The shm channel on Linux: platform half of the shm netlayer.
 *
 * A connection has a control socket (AF_UNIX SOCK_SEQPACKET), one memfd
 * region per direction and one eventfd doorbell per side.  Each side
 * creates the region it sends into and its own doorbell, and hands both
 * to the peer in one SCM_RIGHTS message:
 *
 *   initiator -> acceptor   OFFER   fds [memfd_i, eventfd_i]
 *   acceptor  -> initiator  ACCEPT  fds [memfd_a, eventfd_a]
 *
 * A received region is accepted only if it is a memfd sealed against
 * shrinking, growing and further sealing (so it can never shrink under
 * our mapping: no SIGBUS), not larger than our limit, and its header
 * validates against its real size (ocapn__shm_attach).  A received
 * doorbell must be an eventfd.  Afterwards the socket stays open: it
 * carries CLOSE, and its hang-up tells us the peer died.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "shm_linux.h"
#include "../../util/util.h"

#define REQUIRED_SEALS (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)
#define MAX_CTL_FDS 4

struct ocapn__shm_listener {
	ocapn_allocator a;
	struct ocapn__shm_params p;
	int fd;
	pid_t owner; /* only the process that bound the path unlinks it */
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
};

struct ocapn__shm_conn {
	ocapn_allocator a;
	struct ocapn__shm_params p;
	struct ocapn__shm_geom geom;
	int state;
	bool initiator;
	int ctl;       /* control socket */
	int bell;      /* our doorbell: the peer writes, we poll */
	int peer_bell; /* the peer's doorbell: we write */
	int memfd;     /* our region until it is sent */
	struct stat tx_st;
	void *tx_map, *rx_map;
	size_t tx_size, rx_size;
	uint32_t peer_max_msg;
	ocapn__shm_ep *ep;
	int err;
	const char *reason;
	bool out_pending; /* a control message waits for POLLOUT */
	bool out_fds;
	struct ocapn__shm_ctlmsg out;
	bool peer_closed; /* CLOSE received */
	bool peer_gone;   /* hang-up without CLOSE */
	bool closing;     /* we sent CLOSE */
	uint64_t spin_ns; /* current adaptive spin budget */
	uint32_t spins;   /* spins so far, for the periodic probe */
};

void
ocapn__shm_params_default(struct ocapn__shm_params *p)
{
	memset(p, 0, sizeof(*p));
	p->slots = 64;
	p->bulk_size = 4u << 20;
	p->max_packet = 2u << 20;
	p->max_msg = 16u << 20;
	p->max_peer_region = 1u << 30;
	p->work_bound = 64;
}

static int fail(ocapn__shm_conn *c, int err, const char *reason);

static void
close_fd(int *fd)
{
	if (*fd >= 0) {
		close(*fd);
		*fd = -1;
	}
}

static void
ring_peer(void *user)
{
	ocapn__shm_conn *c = user;
	uint64_t one = 1;
	/* EAGAIN means the counter is saturated: the peer has been rung
	 * already.  Any other failure shows up as hang-up on the socket. */
	ssize_t r = write(c->peer_bell, &one, sizeof(one));
	(void)r;
}

/* ---- Listener ------------------------------------------------------ */

/* Is the directory holding `path` ours and private (no group/other)? */
static bool
private_dir(const char *path)
{
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
	size_t n = strlen(path);
	memcpy(dir, path, n + 1);
	char *slash = strrchr(dir, '/');
	if (!slash)
		memcpy(dir, ".", 2);
	else if (slash == dir)
		dir[1] = '\0';
	else
		*slash = '\0';
	struct stat st;
	if (lstat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
		return false;
	return st.st_uid == geteuid() && (st.st_mode & 077) == 0;
}

static int
unix_addr(const char *path, struct sockaddr_un *sa)
{
	size_t n = strlen(path);
	if (n == 0 || n >= sizeof(sa->sun_path))
		return OCAPN_E_INVAL;
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	memcpy(sa->sun_path, path, n + 1);
	return OCAPN_OK;
}

int
ocapn__shm_listen(const char *path, const struct ocapn__shm_params *p,
    const ocapn_allocator *alloc, ocapn__shm_listener **out)
{
	struct sockaddr_un sa;
	*out = NULL;
	if (unix_addr(path, &sa) != OCAPN_OK)
		return OCAPN_E_INVAL;
	if (!private_dir(path))
		return OCAPN_E_INVAL;
	ocapn_allocator a;
	ocapn__alloc_init(&a, alloc);
	ocapn__shm_listener *l = ocapn__calloc(&a, sizeof(*l));
	if (!l)
		return OCAPN_E_NOMEM;
	l->a = a;
	if (p)
		l->p = *p;
	else
		ocapn__shm_params_default(&l->p);
	l->fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0);
	if (l->fd < 0) {
		ocapn__free(&a, l, sizeof(*l));
		return OCAPN_E_IO;
	}
	if (bind(l->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		int e = errno;
		close(l->fd);
		ocapn__free(&a, l, sizeof(*l));
		return e == EADDRINUSE ? OCAPN_E_EXISTS : OCAPN_E_IO;
	}
	if (listen(l->fd, 128) != 0) {
		close(l->fd);
		unlink(path);
		ocapn__free(&a, l, sizeof(*l));
		return OCAPN_E_IO;
	}
	memcpy(l->path, sa.sun_path, sizeof(l->path));
	l->owner = getpid();
	*out = l;
	return OCAPN_OK;
}

int
ocapn__shm_listener_fd(const ocapn__shm_listener *l)
{
	return l->fd;
}

void
ocapn__shm_listener_close(ocapn__shm_listener *l)
{
	if (!l)
		return;
	close(l->fd);
	if (getpid() == l->owner)
		unlink(l->path);
	ocapn_allocator a = l->a;
	ocapn__free(&a, l, sizeof(*l));
}

/* ---- Regions and doorbells ----------------------------------------- */

/* Create, map and seal our tx region, and create our doorbell. */
static int
make_local(ocapn__shm_conn *c)
{
	struct ocapn__shm_layout l;
	const char *why = "";
	c->geom.slots = c->p.slots;
	c->geom.bulk_size = c->p.bulk_size;
	c->geom.max_packet = c->p.max_packet;
	if (ocapn__shm_layout(&c->geom, &l, &why) != OCAPN_OK)
		return fail(c, OCAPN_E_INVAL, why);
	if (l.region_size > SIZE_MAX)
		return fail(c, OCAPN_E_INVAL, "region too large");
	c->memfd = memfd_create("ocapn-shm", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (c->memfd < 0)
		return fail(c, OCAPN_E_IO, "memfd_create failed");
	if (ftruncate(c->memfd, (off_t)l.region_size) != 0)
		return fail(c, OCAPN_E_IO, "ftruncate of the region failed");
	void *m = mmap(NULL, (size_t)l.region_size, PROT_READ | PROT_WRITE,
	    MAP_SHARED, c->memfd, 0);
	if (m == MAP_FAILED)
		return fail(c, OCAPN_E_IO, "mmap of our region failed");
	c->tx_map = m;
	c->tx_size = (size_t)l.region_size;
	if (ocapn__shm_format(m, c->tx_size, &c->geom) != OCAPN_OK)
		return fail(c, OCAPN_E_INVAL, "cannot format the region");
	if (fcntl(c->memfd, F_ADD_SEALS, REQUIRED_SEALS) != 0)
		return fail(c, OCAPN_E_IO, "sealing our region failed");
	if (fstat(c->memfd, &c->tx_st) != 0)
		return fail(c, OCAPN_E_IO, "fstat of our region failed");
	c->bell = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (c->bell < 0)
		return fail(c, OCAPN_E_IO, "eventfd failed");
	return OCAPN_OK;
}

static bool
same_file(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino;
}

/* Is `fd` an eventfd?  Only /proc tells reliably; fail closed. */
static bool
is_eventfd(int fd)
{
	char p[64], target[64];
	snprintf(p, sizeof(p), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(p, target, sizeof(target) - 1);
	if (n < 0)
		return false;
	target[n] = '\0';
	return strcmp(target, "anon_inode:[eventfd]") == 0;
}

/*
 * Validate and map the peer's region and doorbell; takes both fds.  On
 * failure returns the error with *why and leaves the connection as it
 * was (the caller refuses the handshake).
 */
static int
take_remote(ocapn__shm_conn *c, int memfd, int bell, const char **why)
{
	struct stat st;

	*why = NULL;
	int seals = fcntl(memfd, F_GET_SEALS);
	if (seals < 0)
		*why = "peer region is not a sealable memfd";
	else if ((seals & REQUIRED_SEALS) != REQUIRED_SEALS)
		*why = "peer region lacks the shrink, grow and seal seals";
	else if (seals & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE))
		*why = "peer region is write-sealed";
	else if (fstat(memfd, &st) != 0 || !S_ISREG(st.st_mode))
		*why = "cannot stat the peer region";
	else if (same_file(&st, &c->tx_st))
		*why = "peer handed back our own region";
	else if ((uint64_t)st.st_size < sizeof(struct ocapn__shm_hdr))
		*why = "peer region smaller than its header";
	else if ((uint64_t)st.st_size > c->p.max_peer_region)
		*why = "peer region larger than our limit";
	else if (!is_eventfd(bell))
		*why = "peer doorbell is not an eventfd";
	/* Every eventfd shares one anonymous inode, so a doorbell handed
	 * back to us cannot be recognised; it would only ring ourselves. */
	if (*why) {
		close(memfd);
		close(bell);
		return OCAPN_E_PROTOCOL;
	}
	/* Sealed against shrinking before we looked at its size, so the
	 * size cannot change under the mapping: no SIGBUS. */
	size_t size = (size_t)st.st_size;
	void *m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, memfd,
	    0);
	close(memfd);
	if (m == MAP_FAILED) {
		close(bell);
		*why = "mmap of the peer region failed";
		return OCAPN_E_IO;
	}
	c->rx_map = m;
	c->rx_size = size;
	c->peer_bell = bell;
	/* Writing the peer's doorbell must never block us. */
	int fl = fcntl(bell, F_GETFL);
	if (fl < 0 || fcntl(bell, F_SETFL, fl | O_NONBLOCK) != 0) {
		*why = "cannot make the peer doorbell non-blocking";
		return OCAPN_E_IO;
	}
	struct ocapn__shm_layout rl;
	int err = ocapn__shm_attach(m, size, &rl, why);
	if (err)
		return err;
	struct ocapn__shm_ep_config cfg = {
		.max_msg_in = c->p.max_msg,
		.max_msg_out = c->peer_max_msg,
		.work_bound = c->p.work_bound,
	};
	err = ocapn__shm_ep_new(&c->ep, &c->a, c->tx_map, &c->geom, m, &rl,
	    &cfg, ring_peer, c);
	if (err) {
		*why = "cannot create the endpoint";
		return err;
	}
	if (c->p.defer_rings)
		ocapn__shm_ep_defer(c->ep, true);
	return OCAPN_OK;
}

/* ---- Control socket ------------------------------------------------ */

static int
ctl_flush(ocapn__shm_conn *c)
{
	if (!c->out_pending)
		return OCAPN_OK;
	struct iovec iov = {&c->out, sizeof(c->out)};
	union {
		char buf[CMSG_SPACE(2 * sizeof(int))];
		struct cmsghdr align;
	} u;
	struct msghdr mh;
	memset(&mh, 0, sizeof(mh));
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	if (c->out_fds) {
		memset(&u, 0, sizeof(u));
		mh.msg_control = u.buf;
		mh.msg_controllen = sizeof(u.buf);
		struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(2 * sizeof(int));
		int fds[2] = {c->memfd, c->bell};
		memcpy(CMSG_DATA(cm), fds, sizeof(fds));
	}
	ssize_t r = sendmsg(c->ctl, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
	if (r < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
			return OCAPN_E_AGAIN;
		if (errno == EPIPE || errno == ECONNRESET) {
			c->out_pending = false;
			c->peer_gone = true;
			return OCAPN_E_CLOSED;
		}
		return OCAPN_E_IO;
	}
	c->out_pending = false;
	if (c->out_fds) {
		/* The peer holds its own reference now; our mapping stays. */
		close_fd(&c->memfd);
		c->out_fds = false;
	}
	return OCAPN_OK;
}

/* Queue one control message and try to send it; OCAPN_OK if it went or
 * waits for POLLOUT. */
static int
ctl_send(ocapn__shm_conn *c, uint16_t type, uint32_t code, bool fds)
{
	memset(&c->out, 0, sizeof(c->out));
	c->out.magic = OCAPN__SHM_CTL_MAGIC;
	c->out.version = OCAPN__SHM_CTL_VERSION;
	c->out.type = type;
	c->out.max_msg = c->p.max_msg;
	c->out.code = code;
	c->out_pending = true;
	c->out_fds = fds;
	int rc = ctl_flush(c);
	return rc == OCAPN_E_AGAIN ? OCAPN_OK : rc;
}

/*
 * Fail the connection.  The control socket is shut down so the peer sees
 * the hang-up at once; during the handshake a REJECT goes first (best
 * effort), so the peer can tell a refusal from a crash.
 */
static int
fail(ocapn__shm_conn *c, int err, const char *reason)
{
	if (c->err)
		return c->err;
	if (c->state == OCAPN__SHM_HANDSHAKE && err != OCAPN_E_CLOSED &&
	    err != OCAPN_E_CONNREFUSED && c->ctl >= 0 && !c->peer_gone)
		ctl_send(c, OCAPN__SHM_CTL_REJECT, (uint32_t)err, false);
	c->err = err;
	c->reason = reason;
	c->state = OCAPN__SHM_DONE;
	if (c->ep)
		ocapn__shm_ep_abort(c->ep, err, reason);
	if (c->ctl >= 0)
		shutdown(c->ctl, SHUT_RDWR);
	return err;
}

/* Fail with the endpoint's own error and reason. */
static int
fail_ep(ocapn__shm_conn *c)
{
	const char *why = "";
	int err = ocapn__shm_ep_error(c->ep, &why);
	return fail(c, err ? err : OCAPN_E_PROTOCOL, why);
}

static int
start_rings(ocapn__shm_conn *c)
{
	if (c->p.auth) {
		c->state = OCAPN__SHM_AUTH;
		int rc = c->p.auth->start(c->p.auth->user, c);
		if (rc)
			return fail(c, rc, "authentication hook failed");
	} else {
		c->state = OCAPN__SHM_READY;
	}
	return OCAPN_OK;
}

/* The peer's OFFER (we accept) or ACCEPT (we initiated), with fds. */
static int
ctl_regions(ocapn__shm_conn *c, const struct ocapn__shm_ctlmsg *m, int *fds,
    int nfds)
{
	const char *why;
	int rc;
	if (nfds != 2) {
		for (int i = 0; i < nfds; i++)
			close(fds[i]);
		return fail(c, OCAPN_E_PROTOCOL, "handshake message without "
		    "exactly two fds");
	}
	if (m->max_msg == 0) {
		close(fds[0]);
		close(fds[1]);
		return fail(c, OCAPN_E_PROTOCOL, "peer accepts no messages");
	}
	c->peer_max_msg = m->max_msg;
	if (!c->initiator && (rc = make_local(c)) != OCAPN_OK) {
		close(fds[0]);
		close(fds[1]);
		return rc;
	}
	if ((rc = take_remote(c, fds[0], fds[1], &why)) != OCAPN_OK)
		return fail(c, rc, why);
	if (!c->initiator &&
	    (rc = ctl_send(c, OCAPN__SHM_CTL_ACCEPT, 0, true)) != OCAPN_OK)
		return fail(c, rc, "cannot send our regions");
	return start_rings(c);
}

static int
ctl_handle(ocapn__shm_conn *c, const struct ocapn__shm_ctlmsg *m, int *fds,
    int nfds)
{
	bool regions = (m->type == OCAPN__SHM_CTL_OFFER && !c->initiator) ||
	    (m->type == OCAPN__SHM_CTL_ACCEPT && c->initiator);
	if (m->magic != OCAPN__SHM_CTL_MAGIC || m->version !=
	    OCAPN__SHM_CTL_VERSION) {
		for (int i = 0; i < nfds; i++)
			close(fds[i]);
		return fail(c, m->magic == OCAPN__SHM_CTL_MAGIC ?
		    OCAPN_E_VERSION : OCAPN_E_PROTOCOL,
		    "bad control message magic or version");
	}
	if (regions && c->state == OCAPN__SHM_HANDSHAKE && !c->ep)
		return ctl_regions(c, m, fds, nfds);
	for (int i = 0; i < nfds; i++)
		close(fds[i]);
	if (nfds)
		return fail(c, OCAPN_E_PROTOCOL, "unexpected fds on the "
		    "control socket");
	switch (m->type) {
	case OCAPN__SHM_CTL_CLOSE:
		if (c->state == OCAPN__SHM_HANDSHAKE)
			return fail(c, OCAPN_E_CLOSED, "peer closed during "
			    "the handshake");
		c->peer_closed = true;
		return OCAPN_OK;
	case OCAPN__SHM_CTL_REJECT:
		return fail(c, OCAPN_E_CONNREFUSED, "peer refused the "
		    "handshake");
	default:
		return fail(c, OCAPN_E_PROTOCOL, "unexpected control message");
	}
}

/* Read what the control socket has (bounded). */
static int
ctl_read(ocapn__shm_conn *c)
{
	for (int k = 0; k < 4 && !c->err && !c->peer_gone; k++) {
		struct ocapn__shm_ctlmsg m;
		struct iovec iov = {&m, sizeof(m)};
		union {
			char buf[CMSG_SPACE(MAX_CTL_FDS * sizeof(int))];
			struct cmsghdr align;
		} u;
		struct msghdr mh;
		memset(&mh, 0, sizeof(mh));
		mh.msg_iov = &iov;
		mh.msg_iovlen = 1;
		mh.msg_control = u.buf;
		mh.msg_controllen = sizeof(u.buf);
		ssize_t r = recvmsg(c->ctl, &mh, MSG_DONTWAIT |
		    MSG_CMSG_CLOEXEC);
		if (r < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK ||
			    errno == EINTR)
				return OCAPN_OK;
			if (errno == ECONNRESET) {
				r = 0;
			} else {
				return fail(c, OCAPN_E_IO, "recvmsg on the "
				    "control socket failed");
			}
		}
		int fds[MAX_CTL_FDS], nfds = 0;
		if (r > 0 || mh.msg_controllen > 0) {
			for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm;
			    cm = CMSG_NXTHDR(&mh, cm)) {
				if (cm->cmsg_level != SOL_SOCKET ||
				    cm->cmsg_type != SCM_RIGHTS)
					continue;
				size_t n = (cm->cmsg_len - CMSG_LEN(0)) /
				    sizeof(int);
				for (size_t i = 0; i < n; i++) {
					int fd;
					memcpy(&fd, CMSG_DATA(cm) +
					    i * sizeof(int), sizeof(fd));
					if (nfds < MAX_CTL_FDS)
						fds[nfds++] = fd;
					else
						close(fd);
				}
			}
		}
		if (r == 0 && nfds == 0) {
			c->peer_gone = true;
			if (c->state == OCAPN__SHM_HANDSHAKE)
				return fail(c, OCAPN_E_CLOSED, "peer hung up "
				    "during the handshake");
			return OCAPN_OK;
		}
		if ((size_t)r != sizeof(m) ||
		    (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC))) {
			for (int i = 0; i < nfds; i++)
				close(fds[i]);
			return fail(c, OCAPN_E_PROTOCOL, "malformed control "
			    "message");
		}
		int rc = ctl_handle(c, &m, fds, nfds);
		if (rc)
			return rc;
	}
	return OCAPN_OK;
}

/* ---- Connections --------------------------------------------------- */

static int
conn_new(int fd, bool initiator, const struct ocapn__shm_params *p,
    const ocapn_allocator *alloc, ocapn__shm_conn **out)
{
	ocapn_allocator a;
	ocapn__alloc_init(&a, alloc);
	ocapn__shm_conn *c = ocapn__calloc(&a, sizeof(*c));
	if (!c) {
		close(fd);
		return OCAPN_E_NOMEM;
	}
	c->a = a;
	if (p)
		c->p = *p;
	else
		ocapn__shm_params_default(&c->p);
	c->reason = "";
	c->state = OCAPN__SHM_HANDSHAKE;
	c->initiator = initiator;
	c->ctl = fd;
	c->bell = c->peer_bell = c->memfd = -1;
	*out = c;
	if (initiator) {
		int rc = make_local(c);
		if (rc == OCAPN_OK)
			rc = ctl_send(c, OCAPN__SHM_CTL_OFFER, 0, true);
		if (rc != OCAPN_OK) {
			rc = c->err ? c->err : rc;
			ocapn__shm_free(c);
			*out = NULL;
			return rc;
		}
	}
	return OCAPN_OK;
}

int
ocapn__shm_connect(const char *path, const struct ocapn__shm_params *p,
    const ocapn_allocator *alloc, ocapn__shm_conn **out)
{
	struct sockaddr_un sa;
	*out = NULL;
	if (unix_addr(path, &sa) != OCAPN_OK)
		return OCAPN_E_INVAL;
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0);
	if (fd < 0)
		return OCAPN_E_IO;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		int e = errno;
		close(fd);
		if (e == EAGAIN)
			return OCAPN_E_AGAIN;
		if (e == ECONNREFUSED || e == ENOENT)
			return OCAPN_E_CONNREFUSED;
		return OCAPN_E_IO;
	}
	return conn_new(fd, true, p, alloc, out);
}

int
ocapn__shm_accept(ocapn__shm_listener *l, ocapn__shm_conn **out)
{
	*out = NULL;
	int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ||
		    errno == ECONNABORTED)
			return OCAPN_E_AGAIN;
		return OCAPN_E_IO;
	}
	return conn_new(fd, false, &l->p, &l->a, out);
}

int
ocapn__shm_conn_from_socket(int fd, bool initiator,
    const struct ocapn__shm_params *p, const ocapn_allocator *alloc,
    ocapn__shm_conn **out)
{
	*out = NULL;
	int type = 0;
	socklen_t tl = sizeof(type);
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) != 0 ||
	    type != SOCK_SEQPACKET) {
		close(fd);
		return OCAPN_E_INVAL;
	}
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0 ||
	    fcntl(fd, F_SETFD, FD_CLOEXEC) != 0) {
		close(fd);
		return OCAPN_E_IO;
	}
	return conn_new(fd, initiator, p, alloc, out);
}

void
ocapn__shm_free(ocapn__shm_conn *c)
{
	if (!c)
		return;
	ocapn__shm_ep_free(c->ep);
	if (c->tx_map)
		munmap(c->tx_map, c->tx_size);
	if (c->rx_map)
		munmap(c->rx_map, c->rx_size);
	close_fd(&c->ctl);
	close_fd(&c->bell);
	close_fd(&c->peer_bell);
	close_fd(&c->memfd);
	ocapn_allocator a = c->a;
	ocapn__free(&a, c, sizeof(*c));
}

int
ocapn__shm_state(const ocapn__shm_conn *c)
{
	return c->state;
}

int
ocapn__shm_error(const ocapn__shm_conn *c, const char **reason)
{
	if (reason)
		*reason = c->reason;
	return c->err;
}

bool
ocapn__shm_peer_closed(const ocapn__shm_conn *c)
{
	return c->peer_closed;
}

ocapn__shm_ep *
ocapn__shm_endpoint(ocapn__shm_conn *c)
{
	return c->ep;
}

int
ocapn__shm_pollfds(const ocapn__shm_conn *c, struct pollfd *pfd)
{
	int n = 0;
	if (c->state == OCAPN__SHM_DONE)
		return 0;
	/* After the hang-up the socket is readable forever: stop polling. */
	if (!c->peer_gone) {
		pfd[n].fd = c->ctl;
		pfd[n].events = POLLIN | (c->out_pending ? POLLOUT : 0);
		pfd[n].revents = 0;
		n++;
	}
	if (c->ep) {
		pfd[n].fd = c->bell;
		pfd[n].events = POLLIN;
		pfd[n].revents = 0;
		n++;
	}
	return n;
}

unsigned
ocapn__shm_ready(const ocapn__shm_conn *c, const struct pollfd *pfd, int n)
{
	unsigned r = 0;
	for (int i = 0; i < n; i++) {
		if (!pfd[i].revents)
			continue;
		if (pfd[i].fd == c->ctl)
			r |= OCAPN__SHM_READY_CTL;
		else if (pfd[i].fd == c->bell)
			r |= OCAPN__SHM_READY_BELL;
	}
	return r;
}

/* Deliver messages to the authentication hook until it is done. */
static int
run_auth(ocapn__shm_conn *c)
{
	for (uint32_t k = 0; k < c->p.work_bound && c->state ==
	    OCAPN__SHM_AUTH; k++) {
		struct ocapn__shm_msg m;
		int rc = ocapn__shm_ep_recv(c->ep, &m);
		if (rc == OCAPN_E_AGAIN) {
			if (c->peer_gone || c->peer_closed)
				return fail(c, OCAPN_E_CLOSED, "peer went away "
				    "during authentication");
			return OCAPN_OK;
		}
		if (rc == OCAPN_E_CLOSED)
			return fail(c, OCAPN_E_CLOSED, "peer closed during "
			    "authentication");
		if (rc)
			return fail_ep(c);
		bool done = false;
		int hr = c->p.auth->recv(c->p.auth->user, c, m.data, m.len,
		    &done);
		ocapn__shm_ep_release(c->ep, &m);
		if (hr)
			return fail(c, hr, "authentication failed");
		if (done)
			c->state = OCAPN__SHM_READY;
	}
	return OCAPN_OK;
}

int
ocapn__shm_progress(ocapn__shm_conn *c, unsigned ready)
{
	int rc;
	if (c->err)
		return c->err;
	if (c->out_pending) {
		rc = ctl_flush(c);
		if (rc != OCAPN_OK && rc != OCAPN_E_AGAIN)
			return fail(c, rc, rc == OCAPN_E_CLOSED ? "peer hung "
			    "up" : "sendmsg on the control socket failed");
	}
	if ((ready & OCAPN__SHM_READY_CTL) && !c->peer_gone &&
	    (rc = ctl_read(c)) != OCAPN_OK)
		return rc;
	if ((ready & OCAPN__SHM_READY_BELL) && c->bell >= 0 && c->ep) {
		uint64_t v;
		ssize_t r = read(c->bell, &v, sizeof(v));
		(void)r;
	}
	if (c->ep && c->state != OCAPN__SHM_DONE) {
		if (ocapn__shm_ep_poll(c->ep) != OCAPN_OK)
			return fail_ep(c);
		if (c->state == OCAPN__SHM_AUTH && (rc = run_auth(c)) != 0)
			return rc;
	}
	return c->err;
}

void
ocapn__shm_flush(ocapn__shm_conn *c)
{
	if (c->ep)
		ocapn__shm_ep_flush(c->ep);
}

bool
ocapn__shm_arm(ocapn__shm_conn *c)
{
	if (c->err || c->peer_gone || c->peer_closed)
		return false;
	if (c->state == OCAPN__SHM_HANDSHAKE || !c->ep)
		return true;
	return ocapn__shm_ep_arm(c->ep);
}

static inline void
cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield");
#endif
}

/*
 * Adaptive bound: a spin that sees work doubles the next budget (up to
 * max_ns), a spin that times out halves it (down to SPIN_MIN_NS), and
 * every SPIN_PROBE-th spin uses the full max_ns as a probe.  With the
 * peer running on another CPU the spins succeed and stay long (a probe
 * restores them after a noisy stretch); with the peer on our own CPU (it
 * cannot run while we spin) or idle they fail and shrink, so the loop
 * sleeps almost at once and pays a full spin only once per SPIN_PROBE
 * waits.
 */
#define SPIN_MIN_NS 1000u
#define SPIN_PROBE 16u

bool
ocapn__shm_spin(ocapn__shm_conn *c, uint64_t max_ns)
{
	if (!c->ep || c->state != OCAPN__SHM_READY || max_ns == 0)
		return false;
	ocapn__shm_ep_flush(c->ep); /* waiting without arming */
	if (c->spin_ns == 0 || c->spin_ns > max_ns)
		c->spin_ns = max_ns;
	uint64_t budget = ++c->spins % SPIN_PROBE == 0 ? max_ns : c->spin_ns;
	struct timespec t0, t;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (uint32_t i = 1;; i++) {
		if (ocapn__shm_ep_pending(c->ep)) {
			c->spin_ns = budget * 2 > max_ns ? max_ns : budget * 2;
			return true;
		}
		cpu_relax();
		if ((i & 63) == 0) {
			clock_gettime(CLOCK_MONOTONIC, &t);
			uint64_t ns = (uint64_t)(t.tv_sec - t0.tv_sec) *
			    1000000000u + (uint64_t)t.tv_nsec -
			    (uint64_t)t0.tv_nsec;
			if (ns >= budget)
				break;
		}
	}
	c->spin_ns = c->spin_ns / 2 < SPIN_MIN_NS ? SPIN_MIN_NS :
	    c->spin_ns / 2;
	return false;
}

/* ---- Messages ------------------------------------------------------ */

int
ocapn__shm_sendv(ocapn__shm_conn *c, const struct ocapn__shm_iov *iov,
    size_t n)
{
	if (c->err)
		return c->err;
	if (c->closing || c->peer_gone || c->peer_closed)
		return OCAPN_E_CLOSED;
	if (c->state != OCAPN__SHM_READY)
		return OCAPN_E_AGAIN;
	int rc = ocapn__shm_ep_send(c->ep, iov, n);
	if (rc == OCAPN_E_PROTOCOL || rc == OCAPN_E_NOMEM)
		return fail_ep(c);
	return rc;
}

int
ocapn__shm_send(ocapn__shm_conn *c, const void *buf, size_t len)
{
	struct ocapn__shm_iov iov = {buf, len};
	return ocapn__shm_sendv(c, &iov, 1);
}

int
ocapn__shm_auth_send(ocapn__shm_conn *c, const void *buf, size_t len)
{
	if (c->state != OCAPN__SHM_AUTH)
		return OCAPN_E_STATE;
	struct ocapn__shm_iov iov = {buf, len};
	int rc = ocapn__shm_ep_send(c->ep, &iov, 1);
	if (rc == OCAPN_E_PROTOCOL || rc == OCAPN_E_NOMEM)
		return fail_ep(c);
	return rc;
}

int
ocapn__shm_recv(ocapn__shm_conn *c, struct ocapn__shm_msg *m)
{
	if (c->err)
		return c->err;
	if (c->state == OCAPN__SHM_AUTH) {
		int rc = run_auth(c);
		if (rc)
			return rc;
	}
	if (c->state != OCAPN__SHM_READY)
		return OCAPN_E_AGAIN;
	int rc = ocapn__shm_ep_recv(c->ep, m);
	if (rc == OCAPN_OK)
		return OCAPN_OK;
	if (rc == OCAPN_E_AGAIN) {
		if ((c->peer_gone || c->peer_closed) &&
		    !ocapn__shm_ep_pending(c->ep))
			return fail(c, OCAPN_E_CLOSED, c->peer_closed ?
			    "peer closed the connection" :
			    "peer hung up without closing");
		return OCAPN_E_AGAIN;
	}
	if (rc == OCAPN_E_CLOSED)
		return fail(c, OCAPN_E_CLOSED, "peer closed the connection");
	return fail_ep(c);
}

int
ocapn__shm_release(ocapn__shm_conn *c, struct ocapn__shm_msg *m)
{
	if (!c->ep)
		return OCAPN_E_INVAL;
	return ocapn__shm_ep_release(c->ep, m);
}

int
ocapn__shm_close(ocapn__shm_conn *c)
{
	if (c->closing)
		return OCAPN_OK;
	c->closing = true;
	if (c->err)
		return c->err;
	if (c->ep)
		ocapn__shm_ep_close(c->ep);
	if (c->state == OCAPN__SHM_HANDSHAKE) {
		shutdown(c->ctl, SHUT_RDWR);
		return OCAPN_OK;
	}
	int rc = ctl_send(c, OCAPN__SHM_CTL_CLOSE, 0, false);
	if (rc == OCAPN_E_CLOSED)
		return OCAPN_OK;
	return rc;
}
