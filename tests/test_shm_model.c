/*
 * Deterministic model checking of the shm ring core (src/netlayers/shm/
 * ring.c, compiled into this test with OCAPN_SHM_MODEL).
 *
 * Two endpoints run as coroutines in one process over two heap regions.
 * Every shared load, store and fence of the ring core calls back into the
 * scheduler below before it happens, so the scheduler decides the
 * interleaving one shared access at a time.  Stores go through a per-
 * endpoint FIFO store buffer (x86-TSO): a store becomes visible to the
 * other endpoint only when the scheduler flushes it, when its endpoint
 * executes a seq_cst fence, or at a doorbell system call.  So the model
 * also shows that the fences of the wakeup protocol are needed: the
 * "mutant" tests remove one fence at a time and require the checker to
 * find the lost wakeup.
 *
 * Doorbells are counters (eventfd semantics: a wait consumes every ring);
 * a waiting endpoint is blocked until its counter is non-zero.
 *
 * Exploration:
 *   - bounded-exhaustive: every schedule with at most K non-default
 *     choices (a switch away from a runnable endpoint, or an early store
 *     flush), by depth-first enumeration of choice sequences;
 *   - random: uniformly random choices at every step, many seeds.
 *
 * Properties checked on every run:
 *   - exactly-once, in-order delivery with the exact bytes (fragmented and
 *     single-packet messages, views released out of order);
 *   - no lost wakeup: the run never stops with an endpoint asleep (all
 *     buffers flushed, nobody runnable) -- if its ring has pending work
 *     it is reported as a lost wakeup, otherwise as a deadlock;
 *   - after every step: in-flight packets at most the submit slots, their
 *     bulk ranges disjoint and equal to the allocator's bitmap
 *     (ocapn__shm_ep_check);
 *   - no protocol abort between honest endpoints; all packets acked and
 *     all bulk space free at the end.
 *
 * Deferred doorbells (ocapn__shm_ep_defer) are checked in two modes: the
 * application never flushes (only arm does), and the application flushes
 * after some of its steps (a burst of one or two operations).  Both must
 * hold the same properties; mutant 4 (arm does not flush) must be caught
 * when the application does not flush.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ucontext.h>

#include "testutil.h"

#include "netlayers/shm/ring.h"

#if defined(__SANITIZE_ADDRESS__)
#define MODEL_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MODEL_ASAN 1
#endif
#endif
#ifdef MODEL_ASAN
#include <sanitizer/common_interface_defs.h>
#endif

int ocapn__shm_model_mutant;

/* Doorbells: 0 at once (the default), DEFER_ARM deferred and signalled
 * only by arm, DEFER_FLUSH deferred and also flushed by the application
 * after some steps. */
enum { DEFER_OFF, DEFER_ARM, DEFER_FLUSH };
static int model_defer;

/*
 * Coroutine switch.  glibc's swapcontext() makes a sigprocmask system
 * call per switch, which dominated the run time, so on x86-64 a minimal
 * switch saves the callee-saved registers and the stack pointer (the
 * coroutines never touch the signal mask or the FPU control state).
 * Elsewhere ucontext is used.
 */
#if defined(__x86_64__) && !defined(SHM_MODEL_UCONTEXT)
#define MODEL_FAST_SWITCH 1
struct mctx {
	void *sp;
};
void model_switch(void **save_sp, void *new_sp);
__asm__(".text\n"
	".p2align 4\n"
	".type model_switch, @function\n"
	"model_switch:\n"
	"\tpushq %rbp\n\tpushq %rbx\n\tpushq %r12\n"
	"\tpushq %r13\n\tpushq %r14\n\tpushq %r15\n"
	"\tmovq %rsp, (%rdi)\n"
	"\tmovq %rsi, %rsp\n"
	"\tpopq %r15\n\tpopq %r14\n\tpopq %r13\n"
	"\tpopq %r12\n\tpopq %rbx\n\tpopq %rbp\n"
	"\tret\n"
	".size model_switch, .-model_switch\n");

static void
mctx_make(struct mctx *c, char *stack, size_t size, void (*fn)(void))
{
	uintptr_t top = ((uintptr_t)stack + size) & ~(uintptr_t)15;
	void **sp = (void **)top;
	*--sp = NULL;        /* fake return address of fn: it never returns */
	void *entry;
	memcpy(&entry, &fn, sizeof(entry));
	*--sp = entry;       /* popped by the ret of model_switch */
	for (int i = 0; i < 6; i++)
		*--sp = NULL; /* rbp rbx r12 r13 r14 r15 */
	c->sp = sp;
}

static void
mctx_swap(struct mctx *from, struct mctx *to)
{
	model_switch(&from->sp, to->sp);
}
#else
struct mctx {
	ucontext_t uc;
};

static void
mctx_make(struct mctx *c, char *stack, size_t size, void (*fn)(void))
{
	getcontext(&c->uc);
	c->uc.uc_stack.ss_sp = stack;
	c->uc.uc_stack.ss_size = size;
	c->uc.uc_link = NULL;
	makecontext(&c->uc, fn, 0);
}

static void
mctx_swap(struct mctx *from, struct mctx *to)
{
	swapcontext(&from->uc, &to->uc);
}
#endif

#define STACK_SIZE (512u * 1024u)
#define SB_MAX 8
#define MAX_STEPS 200000
#define MAX_MSGS 16
#define MAX_TRACE 20000

/* ---- Scenario ------------------------------------------------------ */

struct scenario {
	uint32_t slots;
	uint32_t bulk;       /* bytes */
	uint32_t max_packet;
	uint32_t nmsg;       /* messages each way */
	uint32_t size_max;   /* message sizes in 1..size_max */
	uint32_t hold;       /* views an endpoint keeps before releasing */
	uint32_t work_bound;
	uint32_t seed;
};

static uint32_t
mix(uint32_t a, uint32_t b, uint32_t c)
{
	uint32_t h = a * 0x9e3779b1u ^ (b + 0x7f4a7c15u) * 0x85ebca77u ^
	    (c + 0x165667b1u) * 0xc2b2ae3du;
	h ^= h >> 15;
	h *= 0x2c1b3c6du;
	h ^= h >> 12;
	return h;
}

static uint32_t
msg_size(const struct scenario *sc, int dir, uint32_t i)
{
	return 1 + mix(sc->seed, (uint32_t)dir * 1000 + i, 7) % sc->size_max;
}

static uint8_t
msg_byte(const struct scenario *sc, int dir, uint32_t i, uint32_t k)
{
	return (uint8_t)mix(sc->seed ^ 0x55u, (uint32_t)dir * 1000 + i, k);
}

/* ---- Threads, store buffers, scheduler ----------------------------- */

enum { T_RUNNABLE, T_BLOCKED, T_DONE };

struct sb_entry {
	_Atomic uint32_t *p;
	uint32_t v;
};

struct mthread {
	int id;
	struct mctx ctx;
	char *stack;
	int state;
	struct sb_entry sb[SB_MAX];
	int sb_n;
	uint64_t bell;
	ocapn__shm_ep *ep;
	/* application state */
	uint32_t sent, received, released;
	struct ocapn__shm_msg held[MAX_MSGS];
	uint32_t nheld, nrel_choice;
	const char *fail;
};

struct model {
	const struct scenario *sc;
	struct mthread t[2];
	void *region[2];
	size_t region_size;
	int cur; /* running thread, -1 in the scheduler */
	struct mctx main_ctx;
	const char *fail;
	char failbuf[256];
	/* choices */
	int mode; /* 0 exhaustive prefix, 1 random */
	uint32_t rng;
	int *prefix;
	int nprefix;
	struct {
		int n, rank, costly, cost_before;
	} *trace;
	int ntrace;
	int cost;
	uint64_t steps;
#ifdef MODEL_ASAN
	const void *main_bottom;
	size_t main_size;
#endif
};

static struct model *M;

static void
model_fail(const char *msg)
{
	if (!M->fail) {
		snprintf(M->failbuf, sizeof(M->failbuf), "%s", msg);
		M->fail = M->failbuf;
	}
}

static void
sb_commit_one(struct mthread *t)
{
	atomic_store_explicit(t->sb[0].p, t->sb[0].v, memory_order_relaxed);
	memmove(&t->sb[0], &t->sb[1], (size_t)(t->sb_n - 1) *
	    sizeof(t->sb[0]));
	t->sb_n--;
}

static void
sb_flush(struct mthread *t)
{
	while (t->sb_n > 0)
		sb_commit_one(t);
}

/* Coroutine side: give control back to the scheduler. */
static void
yield(void)
{
	struct mthread *t = &M->t[M->cur];
#ifdef MODEL_ASAN
	void *fake = NULL;
	__sanitizer_start_switch_fiber(&fake, M->main_bottom, M->main_size);
#endif
	mctx_swap(&t->ctx, &M->main_ctx);
#ifdef MODEL_ASAN
	__sanitizer_finish_switch_fiber(fake, &M->main_bottom, &M->main_size);
#endif
}

static struct mthread *
self(void)
{
	return M && M->cur >= 0 ? &M->t[M->cur] : NULL;
}

uint32_t
ocapn__shm_model_load(_Atomic uint32_t *p, int acquire)
{
	(void)acquire;
	struct mthread *t = self();
	if (!t)
		return atomic_load(p);
	yield();
	for (int i = t->sb_n - 1; i >= 0; i--)
		if (t->sb[i].p == p)
			return t->sb[i].v;
	return atomic_load_explicit(p, memory_order_relaxed);
}

void
ocapn__shm_model_store(_Atomic uint32_t *p, uint32_t v, int release)
{
	(void)release;
	struct mthread *t = self();
	if (!t) {
		atomic_store(p, v);
		return;
	}
	yield();
	if (t->sb_n == SB_MAX)
		sb_commit_one(t);
	t->sb[t->sb_n].p = p;
	t->sb[t->sb_n].v = v;
	t->sb_n++;
}

void
ocapn__shm_model_fence(void)
{
	struct mthread *t = self();
	if (!t)
		return;
	yield();
	sb_flush(t);
}

/* The doorbell: a system call, so it drains the caller's stores. */
static void
model_ring(void *user)
{
	struct mthread *peer = user;
	struct mthread *t = self();
	if (t) {
		yield();
		sb_flush(t);
	}
	peer->bell++;
	if (peer->state == T_BLOCKED)
		peer->state = T_RUNNABLE;
}

static void
model_wait(struct mthread *t)
{
	yield();
	sb_flush(t);
	if (t->bell == 0) {
		t->state = T_BLOCKED;
		yield();
	}
	t->bell = 0;
}

/* ---- The application each endpoint runs ---------------------------- */

static void
app_fail(struct mthread *t, const char *what, int rc)
{
	char buf[200];
	const char *why = "";
	ocapn__shm_ep_error(t->ep, &why);
	snprintf(buf, sizeof(buf), "endpoint %d: %s (%s: %s)", t->id, what,
	    ocapn_err_name(rc), why);
	model_fail(buf);
}

static void
app_release(struct mthread *t, uint32_t k)
{
	int rc = ocapn__shm_ep_release(t->ep, &t->held[k]);
	if (rc)
		app_fail(t, "release failed", rc);
	t->held[k] = t->held[t->nheld - 1];
	t->nheld--;
	t->released++;
}

static void
app_run(struct mthread *t)
{
	const struct scenario *sc = M->sc;
	int dir = t->id;
	uint8_t buf[4096];

	while (!M->fail) {
		bool progress = false;
		if (t->sent < sc->nmsg) {
			uint32_t len = msg_size(sc, dir, t->sent);
			for (uint32_t k = 0; k < len; k++)
				buf[k] = msg_byte(sc, dir, t->sent, k);
			/* Two pieces, to exercise the gather list. */
			struct ocapn__shm_iov iov[2] = {
				{buf, len / 2}, {buf + len / 2, len - len / 2}};
			int rc = ocapn__shm_ep_send(t->ep, iov, 2);
			if (rc == OCAPN_OK) {
				t->sent++;
				progress = true;
			} else if (rc != OCAPN_E_AGAIN) {
				app_fail(t, "send failed", rc);
				return;
			}
		}
		if (t->received < sc->nmsg) {
			struct ocapn__shm_msg m;
			int rc = ocapn__shm_ep_recv(t->ep, &m);
			if (rc == OCAPN_OK) {
				uint32_t i = t->received;
				uint32_t len = msg_size(sc, 1 - dir, i);
				if (m.len != len) {
					model_fail("message with the wrong "
					    "length (lost, duplicated or out "
					    "of order)");
					return;
				}
				for (uint32_t k = 0; k < len; k++)
					if (m.data[k] != msg_byte(sc, 1 - dir,
						i, k)) {
						model_fail("message bytes "
						    "differ");
						return;
					}
				t->held[t->nheld++] = m;
				t->received++;
				progress = true;
			} else if (rc != OCAPN_E_AGAIN) {
				app_fail(t, "recv failed", rc);
				return;
			}
		}
		/* Release out of order once over the hold budget, and
		 * everything at the end. */
		if (t->nheld > 0 && (t->nheld > sc->hold ||
			t->received == sc->nmsg)) {
			uint32_t k = mix(sc->seed, (uint32_t)dir,
			    t->nrel_choice++) % t->nheld;
			app_release(t, k);
			progress = true;
		}
		/* The end of a burst: flush after about every other step
		 * that did something (the choice depends on the state, so a
		 * schedule replays). */
		if (model_defer == DEFER_FLUSH && progress &&
		    (mix(sc->seed, (uint32_t)dir, t->sent * 7 + t->received * 3 +
			t->released) & 1))
			ocapn__shm_ep_flush(t->ep);
		if (t->sent == sc->nmsg && t->received == sc->nmsg &&
		    t->nheld == 0) {
			/* Done: as an application that sleeps from now on,
			 * whose arm flushes (here without the want flag, so
			 * the run can end). */
			if (model_defer != DEFER_OFF) {
				ocapn__shm_ep_flush(t->ep);
				if (ocapn__shm_ep_owed(t->ep))
					model_fail("a doorbell still owed "
					    "after a flush");
			}
			return;
		}
		if (!progress) {
			if (ocapn__shm_ep_arm(t->ep))
				model_wait(t);
			int rc = ocapn__shm_ep_poll(t->ep);
			if (rc) {
				app_fail(t, "poll failed", rc);
				return;
			}
		}
	}
}

static void
coro_entry(void)
{
	struct mthread *t = &M->t[M->cur];
#ifdef MODEL_ASAN
	__sanitizer_finish_switch_fiber(NULL, &M->main_bottom, &M->main_size);
#endif
	app_run(t);
	sb_flush(t);
	t->state = T_DONE;
#ifdef MODEL_ASAN
	__sanitizer_start_switch_fiber(NULL, M->main_bottom, M->main_size);
#endif
	struct mctx dead;
	mctx_swap(&dead, &M->main_ctx);
}

/* ---- One execution ------------------------------------------------- */

enum act_kind { A_STEP, A_FLUSH };
struct act {
	int kind, t;
};

static int
choose(int n, int costly)
{
	int rank;
	if (M->mode == 1) {
		M->rng = M->rng * 1103515245u + 12345u;
		rank = (int)((M->rng >> 8) % (uint32_t)n);
	} else if (M->ntrace < M->nprefix) {
		rank = M->prefix[M->ntrace];
	} else {
		rank = 0;
	}
	if (M->mode == 0 && M->ntrace < MAX_TRACE) {
		M->trace[M->ntrace].n = n;
		M->trace[M->ntrace].rank = rank;
		M->trace[M->ntrace].costly = costly;
		M->trace[M->ntrace].cost_before = M->cost;
	}
	M->ntrace++;
	if (rank > 0 && costly)
		M->cost++;
	return rank;
}

static void
resume(struct mthread *t)
{
	M->cur = t->id;
#ifdef MODEL_ASAN
	void *fake = NULL;
	__sanitizer_start_switch_fiber(&fake, t->stack, STACK_SIZE);
#endif
	mctx_swap(&M->main_ctx, &t->ctx);
#ifdef MODEL_ASAN
	__sanitizer_finish_switch_fiber(fake, NULL, NULL);
#endif
	M->cur = -1;
}

static void
dump_state(void)
{
	for (int i = 0; i < 2; i++) {
		struct mthread *t = &M->t[i];
		fprintf(stderr, "#  endpoint %d: state %d sent %u received %u "
		    "held %u bell %llu\n", i, t->state, t->sent, t->received,
		    t->nheld, (unsigned long long)t->bell);
		struct ocapn__shm_ep_stats st;
		ocapn__shm_ep_stats(t->ep, &st);
		fprintf(stderr, "#   inflight %u bulk_used %llu views %u "
		    "rings %llu tx %llu rx %llu pending %d\n", st.inflight,
		    (unsigned long long)st.bulk_used, st.views_held,
		    (unsigned long long)st.rings,
		    (unsigned long long)st.packets_tx,
		    (unsigned long long)st.packets_rx,
		    (int)ocapn__shm_ep_pending(t->ep));
	}
}

static int last_step = 0;

static void
execute(void)
{
	const struct scenario *sc = M->sc;
	struct ocapn__shm_geom g = {sc->slots, sc->max_packet, sc->bulk};
	struct ocapn__shm_layout l;
	assert_int_equal(ocapn__shm_layout(&g, &l, NULL), 0);
	M->region_size = l.region_size;
	for (int i = 0; i < 2; i++) {
		memset(M->region[i], 0xa5, l.region_size);
		assert_int_equal(ocapn__shm_format(M->region[i], l.region_size,
		    &g), 0);
	}
	struct ocapn__shm_ep_config cfg = {
		.max_msg_in = 4096, .max_msg_out = 4096,
		.work_bound = sc->work_bound};
	for (int i = 0; i < 2; i++) {
		struct mthread *t = &M->t[i];
		struct ocapn__shm_layout rl;
		const char *why;
		assert_int_equal(ocapn__shm_attach(M->region[1 - i],
		    l.region_size, &rl, &why), 0);
		t->id = i;
		t->state = T_RUNNABLE;
		t->sb_n = 0;
		t->bell = 0;
		t->sent = t->received = t->released = 0;
		t->nheld = 0;
		t->nrel_choice = 0;
		assert_int_equal(ocapn__shm_ep_new(&t->ep, NULL, M->region[i],
		    &g, M->region[1 - i], &rl, &cfg, model_ring,
		    &M->t[1 - i]), 0);
		if (model_defer != DEFER_OFF)
			ocapn__shm_ep_defer(t->ep, true);
		mctx_make(&t->ctx, t->stack, STACK_SIZE, coro_entry);
	}
	M->cur = -1;
	M->fail = NULL;
	M->ntrace = 0;
	M->cost = 0;
	M->steps = 0;
	last_step = 0;

	while (!M->fail) {
		for (int i = 0; i < 2; i++) {
			const char *bad = ocapn__shm_ep_check(M->t[i].ep);
			if (bad) {
				model_fail(bad);
				break;
			}
		}
		if (M->fail)
			break;
		struct act acts[4];
		int n = 0, def = -1;
		for (int i = 0; i < 2; i++)
			if (M->t[i].state == T_RUNNABLE) {
				if (i == last_step)
					def = n;
				acts[n++] = (struct act){A_STEP, i};
			}
		bool any_runnable = n > 0;
		for (int i = 0; i < 2; i++)
			if (M->t[i].sb_n > 0)
				acts[n++] = (struct act){A_FLUSH, i};
		if (n == 0)
			break;
		if (def < 0)
			def = 0;
		/* Rank 0 is the default action, then the others in order. */
		int rank = n > 1 ? choose(n, any_runnable) : 0;
		int pick = rank == 0 ? def : (rank <= def ? rank - 1 : rank);
		struct act a = acts[pick];
		if (++M->steps > MAX_STEPS) {
			model_fail("no termination within the step bound");
			break;
		}
		if (a.kind == A_FLUSH) {
			sb_commit_one(&M->t[a.t]);
		} else {
			last_step = a.t;
			resume(&M->t[a.t]);
		}
	}

	if (!M->fail) {
		for (int i = 0; i < 2; i++) {
			struct mthread *t = &M->t[i];
			if (t->state == T_BLOCKED) {
				bool pend = ocapn__shm_ep_pending(t->ep);
				char buf[200];
				snprintf(buf, sizeof(buf), "endpoint %d asleep "
				    "forever: %s", i, pend ? "lost wakeup "
				    "(work is pending)" : "deadlock");
				model_fail(buf);
				break;
			}
		}
	}
	if (!M->fail) {
		/* Both done: every packet acked, every block free. */
		for (int i = 0; i < 2; i++) {
			struct mthread *t = &M->t[i];
			if (t->received != sc->nmsg || t->sent != sc->nmsg) {
				model_fail("an endpoint stopped early");
				break;
			}
			assert_int_equal(ocapn__shm_ep_poll(t->ep), 0);
			struct ocapn__shm_ep_stats st;
			ocapn__shm_ep_stats(t->ep, &st);
			if (st.inflight != 0 || st.bulk_used != 0)
				model_fail("packets left unacked at the end");
		}
	}
	if (M->fail && getenv("SHM_MODEL_VERBOSE"))
		dump_state();
	for (int i = 0; i < 2; i++) {
		ocapn__shm_ep_free(M->t[i].ep);
		M->t[i].ep = NULL;
	}
}

/* ---- Drivers ------------------------------------------------------- */
static void
model_init(struct model *m, const struct scenario *sc)
{
	memset(m, 0, sizeof(*m));
	m->sc = sc;
	struct ocapn__shm_geom g = {sc->slots, sc->max_packet, sc->bulk};
	struct ocapn__shm_layout l;
	assert_int_equal(ocapn__shm_layout(&g, &l, NULL), 0);
	for (int i = 0; i < 2; i++) {
		m->region[i] = aligned_alloc(4096, l.region_size);
		m->t[i].stack = malloc(STACK_SIZE);
		assert_non_null(m->region[i]);
		assert_non_null(m->t[i].stack);
	}
	m->trace = calloc(MAX_TRACE, sizeof(*m->trace));
	m->prefix = calloc(MAX_TRACE, sizeof(int));
	assert_non_null(m->trace);
	M = m;
}

static void
model_fini(struct model *m)
{
	for (int i = 0; i < 2; i++) {
		free(m->region[i]);
		free(m->t[i].stack);
	}
	free(m->trace);
	free(m->prefix);
	M = NULL;
}

/*
 * Enumerate every schedule with at most `bound` costly non-default
 * choices.  Returns the number of executions; on a failure, *fail is set
 * and the failing choice sequence is printed.
 */
static uint64_t
explore(const struct scenario *sc, int bound, const char **fail,
    uint64_t max_runs)
{
	static struct model m;
	model_init(&m, sc);
	m.mode = 0;
	m.nprefix = 0;
	uint64_t runs = 0;
	*fail = NULL;
	for (;;) {
		execute();
		runs++;
		if (m.fail) {
			fprintf(stderr, "# schedule %llu failed: %s; choices:",
			    (unsigned long long)runs, m.fail);
			for (int i = 0; i < m.ntrace && i < MAX_TRACE; i++)
				if (m.trace[i].rank)
					fprintf(stderr, " %d:%d", i,
					    m.trace[i].rank);
			fprintf(stderr, "\n");
			*fail = m.fail;
			break;
		}
		if (m.ntrace > MAX_TRACE) {
			*fail = "trace longer than the model supports";
			break;
		}
		if (runs >= max_runs) {
			*fail = "exploration did not finish within its budget";
			break;
		}
		/* Backtrack to the deepest point with an affordable
		 * alternative. */
		int i = m.ntrace - 1;
		for (; i >= 0; i--) {
			int r = m.trace[i].rank + 1;
			if (r >= m.trace[i].n)
				continue;
			int c = m.trace[i].cost_before + (m.trace[i].costly ?
			    1 : 0);
			if (c <= bound)
				break;
		}
		if (i < 0)
			break;
		for (int k = 0; k < i; k++)
			m.prefix[k] = m.trace[k].rank;
		m.prefix[i] = m.trace[i].rank + 1;
		m.nprefix = i + 1;
	}
	model_fini(&m);
	return runs;
}

static const char *
random_runs(const struct scenario *sc, uint32_t seeds)
{
	static struct model m;
	model_init(&m, sc);
	m.mode = 1;
	const char *fail = NULL;
	for (uint32_t s = 1; s <= seeds && !fail; s++) {
		m.rng = s * 2654435761u;
		execute();
		if (m.fail) {
			fprintf(stderr, "# random seed %u failed: %s\n", s,
			    m.fail);
			fail = m.fail;
		}
	}
	model_fini(&m);
	return fail;
}

/* Scenarios (sizes in bytes; the bulk allocator works in 64-byte
 * blocks, so a 256-byte bulk buffer has 4 blocks). */
static const struct scenario tiny[] = {
	/* slots bulk max_packet nmsg size_max hold bound seed */
	{2, 256, 128, 2, 100, 0, 64, 1},    /* single packets */
	{2, 256, 64, 2, 200, 0, 64, 2},     /* fragmented */
	{4, 512, 128, 3, 300, 1, 2, 3},     /* held views, work bound 2 */
	{2, 128, 64, 2, 150, 2, 64, 4},     /* pinned views, tiny bulk */
};

static void
exhaustive_tiny(int defer)
{
	ocapn__shm_model_mutant = 0;
	model_defer = defer;
	for (size_t i = 0; i < (sizeof(tiny) / sizeof(tiny[0])); i++) {
		const char *fail;
		uint64_t runs = explore(&tiny[i], 2, &fail, 5000000);
		fprintf(stderr, "# defer mode %d, scenario %zu: %llu "
		    "schedules (<= 2 preemptions or early flushes)\n", defer,
		    i, (unsigned long long)runs);
		if (fail)
			fail_msg("defer mode %d, scenario %zu: %s", defer, i,
			    fail);
	}
	model_defer = DEFER_OFF;
}

static void
test_exhaustive_tiny(void **state)
{
	(void)state;
	exhaustive_tiny(DEFER_OFF);
}

/* The same with deferred doorbells, signalled by arm only, and by arm
 * and the application's flushes. */
static void
test_exhaustive_tiny_defer(void **state)
{
	(void)state;
	exhaustive_tiny(DEFER_ARM);
	exhaustive_tiny(DEFER_FLUSH);
}

/*
 * The smallest scenarios again with one more non-default choice allowed
 * (three preemptions or early store flushes).
 */
static void
test_exhaustive_bound3(void **state)
{
	(void)state;
	ocapn__shm_model_mutant = 0;
	static const struct scenario sc[] = {
		{2, 256, 128, 1, 100, 0, 64, 5},
		{2, 256, 128, 2, 100, 0, 64, 1},
	};
	for (size_t i = 0; i < sizeof(sc) / sizeof(sc[0]); i++) {
		const char *fail;
		uint64_t runs = explore(&sc[i], 3, &fail, 20000000);
		fprintf(stderr, "# bound 3, scenario %zu: %llu schedules\n", i,
		    (unsigned long long)runs);
		if (fail)
			fail_msg("scenario %zu: %s", i, fail);
	}
}

static void
test_random_schedules(void **state)
{
	(void)state;
	ocapn__shm_model_mutant = 0;
	static const struct scenario more[] = {
		{2, 256, 64, 6, 300, 1, 3, 11},
		{4, 1024, 256, 8, 900, 2, 4, 12},
		{8, 2048, 512, 10, 2000, 3, 64, 13},
		{2, 128, 64, 8, 500, 4, 1, 14},
		{4, 256, 128, 10, 100, 8, 8, 15},
	};
	for (int defer = DEFER_OFF; defer <= DEFER_FLUSH; defer++) {
		model_defer = defer;
		for (size_t i = 0; i < (sizeof(more) / sizeof(more[0]));
		    i++) {
			const char *fail = random_runs(&more[i], 400);
			if (fail)
				fail_msg("defer mode %d, scenario %zu: %s",
				    defer, i, fail);
		}
	}
	model_defer = DEFER_OFF;
}

/*
 * The checker must find each deliberate bug: without the fence in the
 * sleeper's arm, without the fence after publishing, or without the ring
 * after an ack, with doorbells at once; the first two also with deferred
 * doorbells, and the fourth (arm does not flush deferred doorbells) when
 * only arm flushes.  The third is not required with deferred
 * doorbells: there a flush that carries acks nearly always carries a
 * submission too, whose ring (the sleeping peer's sink flag is always
 * set) wakes the peer anyway, and no schedule within the bound is left
 * where only the ack's ring would have helped.
 */
static void
test_mutants_are_caught(void **state)
{
	(void)state;
	static const struct scenario sc = {2, 256, 128, 4, 100, 0, 64, 21};
	static const struct {
		int mutant, defer;
	} cases[] = {
		{1, DEFER_OFF}, {2, DEFER_OFF}, {3, DEFER_OFF},
		{1, DEFER_FLUSH}, {2, DEFER_FLUSH},
		{4, DEFER_ARM},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ocapn__shm_model_mutant = cases[i].mutant;
		model_defer = cases[i].defer;
		const char *fail;
		uint64_t runs = explore(&sc, 2, &fail, 5000000);
		fprintf(stderr, "# mutant %d, defer mode %d: %s after %llu "
		    "schedules\n", cases[i].mutant, cases[i].defer,
		    fail ? fail : "NOT FOUND", (unsigned long long)runs);
		assert_non_null(fail);
		assert_non_null(strstr(fail, "asleep forever"));
	}
	ocapn__shm_model_mutant = 0;
	model_defer = DEFER_OFF;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_exhaustive_tiny),
		cmocka_unit_test(test_exhaustive_tiny_defer),
		cmocka_unit_test(test_exhaustive_bound3),
		cmocka_unit_test(test_random_schedules),
		cmocka_unit_test(test_mutants_are_caught),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
