/* SPDX-License-Identifier: MIT */
/*
 * Description: stress, for a bounded time: 4 worker threads drive 8 bind queues and 4 exec
 * queues (compute 0, compute 1, copy, compute 0 again) of one vm with random asynchronous binds
 * (MAP, READONLY, NULL, UNMAP, arrays of up to 4 ops, 4 KiB to 2 MiB, some held back behind a
 * gate whose handle is destroyed at once), execs whose command buffers (in a READONLY-mapped
 * command BO) COPY from the worker's mapped pages into its results area and ATOMIC_ADD its
 * counters, and waits of every kind (syncobjs one, any, all, timeline points, user fences
 * written by binds, by execs and by the GPU, relative and absolute, polls), while a fifth thread
 * sends SIGUSR1 (no SA_RESTART) to the workers every ~1 ms: every call that can wait restarts
 * on -EINTR (absolute deadlines as they are, relative user-fence timeouts as updated, which
 * never grow). Each worker owns a 16 MiB VA slice and keeps an exact model of it (per page:
 * unmapped, NULL, or BO page and READONLY) over 3 BOs whose every 8 bytes hold a distinct value;
 * an exec waits for the binds that mapped what it reads (binary syncobjs or bind-timeline
 * points), a bind for the execs that read what it changes. Every 200 steps a worker waits for
 * all its work (barriers with user fences on the bind queues it used, its exec timeline) and
 * checks its slice (GPU view and mapping list) against the model, the data every exec copied,
 * its GPU counter, every user fence and timeline value, the exec queues (not banned) and the
 * client (validate 0 or -EBUSY); between checkpoints it probes pages whose last bind is known
 * done. At the end: validate 0, no exec queue banned, jobs_done = the execs submitted to each
 * queue, the shared GPU counter = all execs, BO mapping counts = the mapping list, a clean
 * teardown and close. Two races found while writing it, in small: validate with nothing pending
 * is 0 while another thread creates and destroys syncobjs; two threads adding points 1 and 2 to
 * one timeline at once (one call may be refused, point 1 is never added after point 2: the
 * timeline's value does not pass a point whose fence has not signalled).
 *
 * Beside the workers run adversaries, a thread each (with helper threads of their own), each
 * attacking one class of defect that issue 11 found, with its own objects (section
 * "adversaries" says what each attacks and checks):
 *   reuse     handles destroyed and taken by new objects while a call that waits holds them
 *             (a synchronous MAP behind a gated bind, an LR vm's bind waiting for its in-syncobj):
 *             the call acts on the objects named at entry or fails with -ENOENT;
 *   timeline  two claimants of one point of a fresh timeline (a held-back bind of many ops, a
 *             barrier or an exec, against a CPU timeline signal or a barrier of another queue):
 *             one gets it, the other -EINVAL; a wait on it returns after its owner's work;
 *   prefetch  CPU writes through vmb_bo_mmap's pointer while PREFETCH moves the BO between VRAM
 *             and SYSTEM: every word holds the last write, in the CPU and the GPU view;
 *   long      FILL / COPY of terabytes over scratch and NULL memory, and DELAY, on a device with a
 *             250 ms job timeout: -ETIMEDOUT within 20 s while a BO create and small execs on
 *             the same and the other engine complete.
 * Every wait of theirs is bounded; a call that does not return (a hang) is caught by the main
 * thread's watchdog, which prints what hangs and aborts.
 *
 * STRESS_SECONDS sets the run time (default 3 s: what CI runs, also under ThreadSanitizer,
 * where waits are not interruptible). The long run, by hand:
 *     STRESS_SECONDS=600 build/tests/test-stress
 * STRESS_ADVERSARIES picks the adversaries: a comma-separated list of the names above; unset:
 * all; empty: none (the workers alone), e.g. STRESS_ADVERSARIES=reuse,long.
 * VMB_SEED replays a seed (each worker's and adversary's choices; the interleaving still varies).
 */
#include "lib/harness.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "core/alloc.h" /* vmb_commit_failed_count(): the soft device never fails a commit */
#include "sync/fence.h" /* VMB_FENCE_CONDVAR: a ThreadSanitizer build (waits not interruptible) */

/* The two small races below: enough rounds for them to show in a plain build; ThreadSanitizer
 * builds are ten times slower and report a data race at its first occurrence. */
#ifdef VMB_FENCE_CONDVAR
#define VALIDATES 200
#define TL_ROUNDS 200
#else
#define VALIDATES 20000
#define TL_ROUNDS 1000
#endif

#define SEC 1000000000ll
#define US 1000ll
#define WAIT_NS (60 * SEC) /* a wait that must succeed: generous, for sanitizer builds */

#define WORKERS 4
#define BIND_QUEUES 8
#define EXEC_QUEUES 4
#define CHECK_EVERY 200

/* The patterned BOs: 8 bytes at (bo, page, word) hold pattern(bo, page, word). */
#define NBOS 3
#define BO_SIZE (4 * MiB)
#define BO_PAGES (BO_SIZE / 4096)
#define PAGE_WORDS 512u

/* Each worker's VA slice. */
#define SLICE_VA (1ull << 36)
#define SLICE (16 * MiB)
#define SLICE_PAGES (SLICE / 4096)

/* Command buffers: per worker SLOTS of CMD_SLOT_WORDS words, mapped READONLY. */
#define CMD_VA (1ull << 32)
#define SLOTS 32
#define CMD_SLOT_WORDS 64u
#define CMD_SIZE (WORKERS * SLOTS * CMD_SLOT_WORDS * 8ull)

/* Results: per worker an area of SLOTS result slots, its counter, its GPU user fences; then a
 * counter every exec increments. */
#define RES_VA (2ull << 32)
#define RES_SLOT_WORDS 128u
#define RES_AREA (64 * KiB)
#define RES_COUNTER (SLOTS * RES_SLOT_WORDS * 8ull)
#define RES_GPU_UF (RES_COUNTER + 64)
#define RES_GLOBAL (WORKERS * RES_AREA)
#define RES_SIZE (512 * KiB)

#define MAX_READS 4
#define MAX_READ_WORDS 16u
#define MAX_OPS 4
#define RECENT 8

/* A worker never waits while it holds its gate, so nothing can wait for the gate forever; the
 * bind throttle (1024 pending jobs per bind queue, VMB_BIND_QUEUE_PENDING_MAX in vm/bind.h)
 * would make a bind call wait: every worker waits for all its binds each CHECK_EVERY steps (at
 * most one bind job a step, plus a barrier per bind queue), so even all of them on one queue
 * never reach it. */
_Static_assert(WORKERS * (CHECK_EVERY + BIND_QUEUES) < 1024, "the bind throttle must not be reached");
_Static_assert(1 + MAX_READS * MAX_READ_WORDS <= RES_SLOT_WORDS, "results fit a slot");
_Static_assert(WORKERS * RES_AREA + 4096 <= RES_SIZE, "results fit the BO");

enum { PG_NONE, PG_BO, PG_NULL };

struct page {
	uint8_t kind; /* PG_* */
	uint8_t bo;   /* PG_BO: which patterned BO */
	uint8_t ro;   /* READONLY */
	uint16_t bopage;
	uint32_t so;  /* binary syncobj of the last bind that touched the page; 0: known done */
	uint64_t pt;  /* that bind's point on the worker's bind timeline */
};

struct slot {
	bool pending;  /* an exec was submitted; its results are not checked yet */
	uint32_t so;   /* its out-syncobj */
	uint64_t seq;  /* its exec-timeline point */
	uint32_t q;
	uint32_t npages;
	uint32_t pages[MAX_READS * 2]; /* the slice pages it reads */
	uint32_t nwords;               /* result words it writes */
	uint64_t expect[RES_SLOT_WORDS];
};

struct stress;
struct adv;

struct worker {
	struct stress *s;
	int t;
	pthread_t th;
	uint64_t rng;
	struct page model[SLICE_PAGES];
	uint8_t covered[SLICE_PAGES];
	struct slot slots[SLOTS];
	uint32_t next_slot;
	uint32_t tl_bind, tl_exec;   /* timelines: a point per bind, per exec */
	uint64_t bind_seq, exec_seq; /* their last points */
	uint64_t tl_bind_seen, tl_exec_seen;
	/* user fences: per bind queue (binds and barriers of this worker), per exec queue (out
	 * fences written by the library; GPU ones live in the results BO) */
	uint64_t bind_uf[BIND_QUEUES], bind_uf_val[BIND_QUEUES];
	uint64_t exec_uf[EXEC_QUEUES], exec_uf_val[EXEC_QUEUES];
	uint64_t gpu_uf_val[EXEC_QUEUES];
	uint32_t used_bq; /* bind queues used since the last checkpoint */
	uint32_t recent[RECENT], nrecent; /* bind syncobjs since the last checkpoint */
	int gate_fd, gate_steps; /* a held gate: -1 none */
	uint32_t *dead;           /* syncobjs to destroy at the next checkpoint */
	size_t ndead, capdead;
	unsigned long steps, binds, ops, execs, waits, polls, probes, checkpoints, gates, eintr;
	atomic_bool exited;
	char err[1024];
};

struct stress {
	struct vmb_client *c;
	uint32_t vm, bos[NBOS], cmd_bo, res_bo, bq[BIND_QUEUES], eq[EXEC_QUEUES];
	uint64_t *cmd;
	uint8_t *res;
	int64_t deadline;
	atomic_ulong submitted[EXEC_QUEUES];
	atomic_bool failed, stop_signals;
	unsigned long signals_sent;
	struct worker *w;
	struct adv *adv; /* the adversaries running beside the workers */
	int nadv;
};

static atomic_ulong signals_handled;

static void on_usr1(int sig)
{
	(void)sig;
	atomic_fetch_add_explicit(&signals_handled, 1, memory_order_relaxed);
}

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * SEC + ts.tv_nsec;
}

static uint64_t pattern(unsigned int bo, uint64_t page, uint64_t word)
{
	return 0x5100000000000000ull | (uint64_t)bo << 40 | page << 16 | word;
}

static uint64_t model_word(const struct page *p, uint64_t word)
{
	return p->kind == PG_BO ? pattern(p->bo, p->bopage, word) : 0;
}

static uint64_t rnd(struct worker *w, uint64_t n) { return rnd_below(&w->rng, n); }

/* ---- failures: workers cannot use cmocka's asserts; they record the first and stop ---- */

static bool wfail(struct worker *w, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static bool wfail(struct worker *w, int line, const char *fmt, ...)
{
	if (!w->err[0]) {
		int n = snprintf(w->err, sizeof(w->err), "worker %d, line %d, step %lu: ", w->t, line, w->steps);
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(w->err + n, sizeof(w->err) - (size_t)n, fmt, ap);
		va_end(ap);
	}
	atomic_store(&w->s->failed, true);
	return false;
}
#define CHECK(w, cond, ...)                                  \
	do {                                                 \
		if (!(cond))                                 \
			return wfail(w, __LINE__, __VA_ARGS__); \
	} while (0)
#define TRY(x)              \
	do {                \
		if (!(x))   \
			return false; \
	} while (0)

static uint64_t slice_va(const struct worker *w, uint64_t page) { return SLICE_VA + (uint64_t)w->t * SLICE + page * 4096; }

static bool new_syncobj(struct worker *w, uint32_t flags, uint32_t *h)
{
	struct vmb_syncobj_create a = {.flags = flags};
	int err = vmb_syncobj_create(w->s->c, &a);
	CHECK(w, err == 0, "syncobj create: %d", err);
	if (w->ndead == w->capdead) {
		w->capdead = w->capdead ? 2 * w->capdead : 256;
		w->dead = realloc(w->dead, w->capdead * sizeof(*w->dead));
		CHECK(w, w->dead, "out of memory");
	}
	w->dead[w->ndead++] = a.handle;
	*h = a.handle;
	return true;
}

static bool queue_state(struct worker *w, uint32_t qi, struct vmb_exec_queue_query *qq)
{
	*qq = (struct vmb_exec_queue_query){.exec_queue_id = w->s->eq[qi]};
	int err = vmb_exec_queue_query(w->s->c, qq);
	CHECK(w, err == 0, "exec queue %u query: %d", qi, err);
	return true;
}

static bool queues_not_banned(struct worker *w)
{
	for (uint32_t qi = 0; qi < EXEC_QUEUES; qi++) {
		struct vmb_exec_queue_query qq;
		TRY(queue_state(w, qi, &qq));
		CHECK(w, qq.flags == 0 && qq.error == 0, "exec queue %u banned: error %d, fault at %#llx (%s)", qi, qq.error,
		      (unsigned long long)qq.fault_addr, qq.fault_access == VMB_FAULT_WRITE ? "write" : "read");
	}
	return true;
}

/* ---- the gate: a bind held back behind an eventfd the worker writes a few steps later ---- */

static bool gate_release(struct worker *w)
{
	if (w->gate_fd < 0)
		return true;
	uint64_t one = 1;
	ssize_t r;
	while ((r = write(w->gate_fd, &one, 8)) < 0 && errno == EINTR)
		w->eintr++;
	CHECK(w, r == 8, "gate write: %zd", r);
	close(w->gate_fd);
	w->gate_fd = -1;
	return true;
}

/* ---- waits: every one restarts on -EINTR; a blocking one opens the held gate first ---- */

static bool wait_syncobjs(struct worker *w, uint32_t *h, uint64_t *pts, uint32_t n, uint32_t flags, int64_t deadline,
			  uint32_t *first, int *result)
{
	if (deadline > now_ns())
		TRY(gate_release(w));
	struct vmb_syncobj_wait a = {.handles = (uint64_t)(uintptr_t)h, .points = (uint64_t)(uintptr_t)pts,
				     .timeout_ns = deadline, .count = n, .flags = flags};
	int err;
	while ((err = vmb_syncobj_wait(w->s->c, &a)) == -EINTR) {
		w->eintr++;
		CHECK(w, a.timeout_ns == deadline, "an absolute deadline changed");
	}
	if (first)
		*first = a.first_signaled;
	if (result)
		*result = err;
	else
		CHECK(w, err == 0, "syncobj wait (%u handles, first %u, flags %#x): %d", n, h[0], flags, err);
	return true;
}

static bool wait_one(struct worker *w, uint32_t h, uint64_t point)
{
	return wait_syncobjs(w, &h, point ? &point : NULL, 1, 0, now_ns() + WAIT_NS, NULL, NULL);
}

/* Wait until *@loc >= @value: relative (updated in place on -EINTR) or absolute. */
static bool wait_ufence(struct worker *w, uint64_t *loc, uint64_t value, bool absolute)
{
	TRY(gate_release(w));
	int64_t deadline = now_ns() + WAIT_NS;
	struct vmb_user_fence_wait u = {.addr = (uint64_t)(uintptr_t)loc, .value = value, .mask = ~0ull,
					.op = VMB_UFENCE_OP_GTE, .timeout = absolute ? deadline : WAIT_NS,
					.flags = absolute ? VMB_UFENCE_WAIT_ABSTIME : 0};
	int64_t prev = u.timeout;
	int err;
	while ((err = vmb_user_fence_wait(w->s->c, &u)) == -EINTR) {
		w->eintr++;
		if (absolute)
			CHECK(w, u.timeout == deadline, "an absolute user-fence deadline changed");
		else
			CHECK(w, u.timeout >= 0 && u.timeout <= prev, "relative timeout went from %lld to %lld",
			      (long long)prev, (long long)u.timeout);
		prev = u.timeout;
	}
	CHECK(w, err == 0, "user fence wait for %llu (now %llu): %d", (unsigned long long)value,
	      (unsigned long long)__atomic_load_n(loc, __ATOMIC_ACQUIRE), err);
	return true;
}

static bool syncobj_signalled(struct worker *w, uint32_t h, bool *done)
{
	uint64_t v = 0;
	struct vmb_syncobj_array a = {.handles = (uint64_t)(uintptr_t)&h, .points = (uint64_t)(uintptr_t)&v, .count = 1};
	int err = vmb_syncobj_query(w->s->c, &a);
	CHECK(w, err == 0 && v <= 1, "syncobj query: %d (%llu)", err, (unsigned long long)v);
	*done = v == 1;
	return true;
}

static bool timeline_value(struct worker *w, uint32_t tl, uint64_t *v)
{
	struct vmb_syncobj_array a = {.handles = (uint64_t)(uintptr_t)&tl, .points = (uint64_t)(uintptr_t)v, .count = 1};
	int err = vmb_syncobj_query(w->s->c, &a);
	CHECK(w, err == 0, "timeline query: %d", err);
	return true;
}

/* ---- exec results ---- */

static uint64_t res_off(const struct worker *w, uint32_t si) { return (uint64_t)w->t * RES_AREA + si * RES_SLOT_WORDS * 8ull; }

/* The slot's exec is known complete: its results are exactly what the model said. */
static bool check_slot(struct worker *w, uint32_t si)
{
	struct slot *sl = &w->slots[si];
	const uint64_t *res = (const uint64_t *)(w->s->res + res_off(w, si));
	for (uint32_t i = 0; i < sl->nwords; i++) {
		if (res[i] == sl->expect[i])
			continue;
		struct vmb_exec_queue_query qq;
		TRY(queue_state(w, sl->q, &qq));
		return wfail(w, __LINE__,
			     "exec %llu (slot %u, exec queue %u): result word %u is %#llx, expected %#llx "
			     "(queue flags %#x error %d fault %#llx)",
			     (unsigned long long)sl->seq, si, sl->q, i, (unsigned long long)res[i],
			     (unsigned long long)sl->expect[i], qq.flags, qq.error, (unsigned long long)qq.fault_addr);
	}
	sl->pending = false;
	return true;
}

/* ---- the slice against the model ---- */

static bool check_page(struct worker *w, uint32_t p, bool whole)
{
	static const uint64_t poison = 0xdeadbeefdeadbeefull;
	const struct page *pg = &w->model[p];
	uint64_t buf[PAGE_WORDS];
	uint32_t word = whole ? 0 : (uint32_t)rnd(w, PAGE_WORDS), n = whole ? PAGE_WORDS : 1;
	for (uint32_t i = 0; i < n; i++)
		buf[i] = poison;
	struct vmb_vm_access a = {.vm_id = w->s->vm, .addr = slice_va(w, p) + word * 8ull, .size = n * 8ull,
				  .data = (uint64_t)(uintptr_t)buf};
	int err = vmb_vm_access(w->s->c, &a);
	if (pg->kind == PG_NONE) {
		CHECK(w, err == -EFAULT, "page %u: unmapped in the model, GPU read gives %d (%#llx)", p, err,
		      (unsigned long long)buf[0]);
		return true;
	}
	CHECK(w, err == 0, "page %u (kind %u bo %u page %u): GPU read gives %d", p, pg->kind, pg->bo, pg->bopage, err);
	for (uint32_t i = 0; i < n; i++)
		CHECK(w, buf[i] == model_word(pg, word + i), "page %u word %u: %#llx, model %#llx (kind %u bo %u page %u)", p,
		      word + i, (unsigned long long)buf[i], (unsigned long long)model_word(pg, word + i), pg->kind, pg->bo,
		      pg->bopage);
	return true;
}

/* The mapping list (the vm as submitted binds leave it) matches the model over the slice. */
static bool check_mappings(struct worker *w)
{
	struct stress *s = w->s;
	struct vmb_mapping_info *m = NULL;
	uint32_t cap = 0;
	for (;;) {
		struct vmb_vm_query_mappings q = {.vm_id = s->vm, .num_mappings = cap, .mappings = (uint64_t)(uintptr_t)m};
		int err = vmb_vm_query_mappings(s->c, &q);
		if (err) {
			free(m);
			return wfail(w, __LINE__, "query mappings: %d", err);
		}
		if (q.num_mappings <= cap) {
			cap = q.num_mappings;
			break;
		}
		cap = q.num_mappings + 64;
		free(m);
		m = calloc(cap, sizeof(*m));
		if (!m)
			return wfail(w, __LINE__, "out of memory");
	}
	bool ok = true;
	uint64_t lo = slice_va(w, 0), hi = lo + SLICE;
	memset(w->covered, 0, sizeof(w->covered));
	for (uint32_t i = 0; i < cap && ok; i++) {
		uint64_t a = m[i].addr > lo ? m[i].addr : lo, e = m[i].addr + m[i].range < hi ? m[i].addr + m[i].range : hi;
		for (; a < e && ok; a += 4096) {
			uint32_t p = (uint32_t)((a - lo) / 4096);
			const struct page *pg = &w->model[p];
			bool null = m[i].flags & VMB_MAPPING_NULL, ro = m[i].flags & VMB_MAPPING_READONLY;
			uint64_t bopage = (m[i].offset + (a - m[i].addr)) / 4096;
			if (w->covered[p]++)
				ok = wfail(w, __LINE__, "page %u in two mappings", p);
			else if (pg->kind == PG_NONE)
				ok = wfail(w, __LINE__, "page %u: unmapped in the model, mapping [%#llx, +%#llx) bo %u", p,
					   (unsigned long long)m[i].addr, (unsigned long long)m[i].range, m[i].bo_handle);
			else if (pg->kind == PG_NULL ? !null
						     : (null || m[i].bo_handle != s->bos[pg->bo] || bopage != pg->bopage ||
							ro != (pg->ro != 0)))
				ok = wfail(w, __LINE__,
					   "page %u: model kind %u bo %u page %u ro %u; mapping [%#llx, +%#llx) bo %u offset "
					   "%#llx flags %#x",
					   p, pg->kind, pg->bo, pg->bopage, pg->ro, (unsigned long long)m[i].addr,
					   (unsigned long long)m[i].range, m[i].bo_handle, (unsigned long long)m[i].offset,
					   m[i].flags);
		}
	}
	free(m);
	for (uint32_t p = 0; p < SLICE_PAGES && ok; p++)
		if (!w->covered[p] && w->model[p].kind != PG_NONE)
			ok = wfail(w, __LINE__, "page %u: mapped in the model (kind %u), in no mapping", p, w->model[p].kind);
	return ok;
}

static bool check_slice(struct worker *w)
{
	for (uint32_t p = 0; p < SLICE_PAGES; p++)
		TRY(check_page(w, p, rnd(w, 64) == 0));
	return check_mappings(w);
}

/* ---- steps ---- */

static bool submit_bind(struct worker *w, uint32_t qi, struct vmb_bind_op *ops, uint32_t n, struct vmb_sync *syncs,
			uint32_t ns)
{
	int err;
	/* an asynchronous bind waits (interruptibly) only when the vm has too many pending */
	while ((err = __bind_async(w->s->c, w->s->vm, w->s->bq[qi], ops, n, syncs, ns)) == -EINTR)
		w->eintr++;
	CHECK(w, err == 0, "bind of %u ops on bind queue %u: %d", n, qi, err);
	return true;
}

static void gen_op(struct worker *w, struct vmb_bind_op *op, uint32_t *start, uint32_t *pages)
{
	uint64_t r = rnd(w, 20), off;
	if (r == 0) { /* 2 MiB, aligned in VA and BO: a huge leaf where the placement allows */
		*pages = 512;
		*start = (uint32_t)rnd(w, SLICE_PAGES / 512) * 512;
		off = rnd(w, BO_PAGES / 512) * 512;
	} else if (r <= 3) { /* 64 KiB aligned */
		*pages = 16 * (1 + (uint32_t)rnd(w, 4));
		*start = (uint32_t)rnd(w, (SLICE_PAGES - *pages) / 16 + 1) * 16;
		off = rnd(w, (BO_PAGES - *pages) / 16 + 1) * 16;
	} else {
		*pages = 1 + (uint32_t)rnd(w, 32);
		*start = (uint32_t)rnd(w, SLICE_PAGES - *pages + 1);
		off = rnd(w, BO_PAGES - *pages + 1);
	}
	uint64_t addr = slice_va(w, *start), range = *pages * 4096ull;
	uint64_t k = rnd(w, 10);
	if (k < 3) {
		*op = op_unmap(addr, range);
	} else if (k == 3) {
		*op = op_null(addr, range);
	} else {
		uint32_t bo = (uint32_t)rnd(w, NBOS);
		*op = op_map(w->s->bos[bo], off * 4096, addr, range, rnd(w, 4) == 0 ? VMB_BIND_FLAG_READONLY : 0);
	}
}

static void model_apply(struct worker *w, const struct vmb_bind_op *op, uint32_t start, uint32_t pages, uint32_t so,
			uint64_t pt)
{
	for (uint32_t i = 0; i < pages; i++) {
		struct page *pg = &w->model[start + i];
		pg->so = so;
		pg->pt = pt;
		if (op->op == VMB_BIND_OP_UNMAP) {
			pg->kind = PG_NONE;
		} else if (op->flags & VMB_BIND_FLAG_NULL) {
			pg->kind = PG_NULL;
			pg->ro = 0;
		} else {
			pg->kind = PG_BO;
			pg->ro = (op->flags & VMB_BIND_FLAG_READONLY) != 0;
			for (uint8_t b = 0; b < NBOS; b++)
				if (w->s->bos[b] == op->bo_handle)
					pg->bo = b;
			pg->bopage = (uint16_t)(op->bo_offset / 4096 + i);
		}
	}
}

static bool do_bind(struct worker *w)
{
	struct vmb_bind_op ops[MAX_OPS];
	uint32_t start[MAX_OPS], pages[MAX_OPS];
	uint32_t n = rnd(w, 8) == 0 ? 2 + (uint32_t)rnd(w, MAX_OPS - 1) : 1;
	for (uint32_t i = 0; i < n; i++)
		gen_op(w, &ops[i], &start[i], &pages[i]);
	struct vmb_sync syncs[SLOTS + 4];
	uint32_t ns = 0;
	/* wait for the execs that read what this bind changes */
	for (uint32_t si = 0; si < SLOTS; si++) {
		const struct slot *sl = &w->slots[si];
		bool hit = false;
		for (uint32_t k = 0; sl->pending && k < sl->npages && !hit; k++)
			for (uint32_t i = 0; i < n && !hit; i++)
				hit = sl->pages[k] >= start[i] && sl->pages[k] < start[i] + pages[i];
		if (hit)
			syncs[ns++] = sync_in(sl->so);
	}
	/* now and then, held back behind a gate; its handle goes at once (the bind keeps the fence) */
	uint32_t gate = 0;
	if (w->gate_fd < 0 && rnd(w, 32) == 0) {
		int fd = eventfd(0, EFD_CLOEXEC);
		CHECK(w, fd >= 0, "eventfd: %d", errno);
		struct vmb_syncobj_fd a = {.fd = fd};
		int err = vmb_syncobj_import_fd(w->s->c, &a);
		CHECK(w, err == 0, "import fd: %d", err);
		w->gate_fd = fd;
		w->gate_steps = 1 + (int)rnd(w, 16);
		gate = a.handle;
		syncs[ns++] = sync_in(gate);
		w->gates++;
	}
	uint32_t qi = (uint32_t)rnd(w, BIND_QUEUES), so;
	TRY(new_syncobj(w, 0, &so));
	syncs[ns++] = sync_out(so);
	syncs[ns++] = sync_tl_out(w->tl_bind, ++w->bind_seq);
	if (rnd(w, 3) == 0)
		syncs[ns++] = sync_ufence(&w->bind_uf[qi], ++w->bind_uf_val[qi]);
	TRY(submit_bind(w, qi, ops, n, syncs, ns));
	if (gate) {
		struct vmb_syncobj_destroy d = {.handle = gate};
		int err = vmb_syncobj_destroy(w->s->c, &d);
		CHECK(w, err == 0, "destroy gate: %d", err);
	}
	for (uint32_t i = 0; i < n; i++)
		model_apply(w, &ops[i], start[i], pages[i], so, w->bind_seq);
	w->used_bq |= 1u << qi;
	w->recent[w->nrecent++ % RECENT] = so;
	w->binds++;
	w->ops += n;
	return true;
}

/* A mapped page of the slice, or -1. */
static int64_t mapped_page(struct worker *w)
{
	for (int tries = 0; tries < 8; tries++) {
		uint32_t p = (uint32_t)rnd(w, SLICE_PAGES);
		if (w->model[p].kind != PG_NONE)
			return p;
	}
	return -1;
}

static void add_in(struct worker *w, struct vmb_sync *syncs, uint32_t *ns, const struct page *pg)
{
	if (!pg->so)
		return; /* known done */
	for (uint32_t i = 0; i < *ns; i++)
		if (syncs[i].handle == pg->so || (syncs[i].handle == w->tl_bind && syncs[i].value >= pg->pt))
			return;
	/* the bind's own syncobj, or its point on the bind timeline (which waits for more) */
	syncs[(*ns)++] = rnd(w, 2) ? sync_in(pg->so) : sync_tl_in(w->tl_bind, pg->pt);
}

static bool do_exec(struct worker *w)
{
	struct stress *s = w->s;
	uint32_t si = w->next_slot;
	w->next_slot = (si + 1) % SLOTS;
	struct slot *sl = &w->slots[si];
	if (sl->pending) { /* its command buffer and results are about to be reused */
		TRY(wait_one(w, sl->so, 0));
		TRY(check_slot(w, si));
	}
	uint32_t qi = (uint32_t)rnd(w, EXEC_QUEUES), n = 0;
	uint64_t *cmd = s->cmd + ((uint64_t)w->t * SLOTS + si) * CMD_SLOT_WORDS;
	uint64_t cmd_va = CMD_VA + ((uint64_t)w->t * SLOTS + si) * CMD_SLOT_WORDS * 8;
	uint64_t res_va = RES_VA + res_off(w, si), area_va = RES_VA + (uint64_t)w->t * RES_AREA;
	struct vmb_sync syncs[2 * MAX_READS * 2 + 8];
	uint32_t ns = 0;
	uint64_t seq = w->exec_seq + 1, tag = (uint64_t)(w->t + 1) << 48 | seq;

	sl->npages = 0;
	sl->nwords = 1;
	sl->expect[0] = tag;
	vmb_cmd_store64(cmd, &n, res_va, tag);
	uint32_t reads = (uint32_t)rnd(w, MAX_READS + 1);
	for (uint32_t r = 0; r < reads; r++) {
		int64_t p = mapped_page(w);
		if (p < 0)
			continue;
		uint32_t word = (uint32_t)rnd(w, PAGE_WORDS), room = PAGE_WORDS - word;
		if (p + 1 < (int64_t)SLICE_PAGES && w->model[p + 1].kind != PG_NONE)
			room += PAGE_WORDS; /* may run into the next page, another mapping perhaps */
		uint32_t nw = 1 + (uint32_t)rnd(w, room < MAX_READ_WORDS ? room : MAX_READ_WORDS);
		vmb_cmd_copy(cmd, &n, res_va + sl->nwords * 8ull, slice_va(w, (uint64_t)p) + word * 8ull, nw * 8ull);
		for (uint32_t k = 0; k < nw; k++) {
			const struct page *pg = &w->model[p + (word + k) / PAGE_WORDS];
			sl->expect[sl->nwords + k] = model_word(pg, (word + k) % PAGE_WORDS);
		}
		sl->nwords += nw;
		sl->pages[sl->npages++] = (uint32_t)p;
		add_in(w, syncs, &ns, &w->model[p]);
		if (word + nw > PAGE_WORDS) {
			sl->pages[sl->npages++] = (uint32_t)p + 1;
			add_in(w, syncs, &ns, &w->model[p + 1]);
		}
	}
	vmb_cmd_atomic_add(cmd, &n, area_va + RES_COUNTER, 1);
	vmb_cmd_atomic_add(cmd, &n, RES_VA + RES_GLOBAL, 1);
	if (rnd(w, 4) == 0)
		vmb_cmd_delay(cmd, &n, (uint64_t)rnd(w, 200) * US);
	if (rnd(w, 3) == 0)
		vmb_cmd_ufence_signal(cmd, &n, area_va + RES_GPU_UF + 8ull * qi, ++w->gpu_uf_val[qi]);
	vmb_cmd_end(cmd, &n);
	/* the results start as poison: what the exec does not write shows */
	uint64_t *res = (uint64_t *)(s->res + res_off(w, si));
	for (uint32_t i = 0; i < sl->nwords; i++)
		res[i] = 0xa5a5a5a5a5a5a5a5ull;
	/* now and then after the previous exec too (an exec-timeline point) */
	if (w->exec_seq && rnd(w, 5) == 0)
		syncs[ns++] = sync_tl_in(w->tl_exec, w->exec_seq);
	uint32_t so;
	TRY(new_syncobj(w, 0, &so));
	syncs[ns++] = sync_out(so);
	syncs[ns++] = sync_tl_out(w->tl_exec, seq);
	if (rnd(w, 3) == 0)
		syncs[ns++] = sync_ufence(&w->exec_uf[qi], ++w->exec_uf_val[qi]);
	struct vmb_exec e = {.exec_queue_id = s->eq[qi], .address = cmd_va, .num_syncs = ns,
			     .syncs = (uint64_t)(uintptr_t)syncs};
	int err;
	while ((err = vmb_exec(s->c, &e)) == -EINTR)
		w->eintr++;
	if (err) {
		struct vmb_exec_queue_query qq;
		TRY(queue_state(w, qi, &qq));
		return wfail(w, __LINE__, "exec on queue %u: %d (queue flags %#x error %d fault %#llx)", qi, err, qq.flags,
			     qq.error, (unsigned long long)qq.fault_addr);
	}
	atomic_fetch_add(&s->submitted[qi], 1);
	w->exec_seq = seq;
	sl->pending = true;
	sl->so = so;
	sl->seq = seq;
	sl->q = qi;
	w->execs++;
	return true;
}

static bool do_wait(struct worker *w)
{
	uint32_t pend[SLOTS], np = 0;
	for (uint32_t si = 0; si < SLOTS; si++)
		if (w->slots[si].pending)
			pend[np++] = si;
	w->waits++;
	switch (rnd(w, 8)) {
	case 0: /* one exec */
		if (np) {
			uint32_t si = pend[rnd(w, np)];
			TRY(wait_one(w, w->slots[si].so, 0));
			TRY(check_slot(w, si));
		}
		break;
	case 1: { /* any of them: the one reported is done */
		if (!np)
			break;
		uint32_t h[SLOTS], first = ~0u;
		for (uint32_t i = 0; i < np; i++)
			h[i] = w->slots[pend[i]].so;
		TRY(wait_syncobjs(w, h, NULL, np, 0, now_ns() + WAIT_NS, &first, NULL));
		CHECK(w, first < np, "first_signaled %u of %u", first, np);
		bool done;
		TRY(syncobj_signalled(w, h[first], &done));
		CHECK(w, done, "wait any: reported syncobj %u is not signalled", h[first]);
		TRY(check_slot(w, pend[first]));
		break;
	}
	case 2: { /* all recent binds */
		uint32_t n = w->nrecent < RECENT ? w->nrecent : RECENT;
		if (n)
			TRY(wait_syncobjs(w, w->recent, NULL, n, VMB_SYNCOBJ_WAIT_ALL | VMB_SYNCOBJ_WAIT_FOR_SUBMIT,
					  now_ns() + WAIT_NS, NULL, NULL));
		break;
	}
	case 3: { /* a bind queue's user fence, relative */
		uint32_t qi = (uint32_t)rnd(w, BIND_QUEUES);
		if (w->bind_uf_val[qi])
			TRY(wait_ufence(w, &w->bind_uf[qi], w->bind_uf_val[qi], false));
		break;
	}
	case 4: { /* the GPU's user fence for an exec queue, absolute */
		uint32_t qi = (uint32_t)rnd(w, EXEC_QUEUES);
		uint64_t *loc = (uint64_t *)(w->s->res + (uint64_t)w->t * RES_AREA + RES_GPU_UF + 8ull * qi);
		if (w->gpu_uf_val[qi])
			TRY(wait_ufence(w, loc, w->gpu_uf_val[qi], true));
		break;
	}
	case 5: { /* an exec queue's out user fence */
		uint32_t qi = (uint32_t)rnd(w, EXEC_QUEUES);
		if (w->exec_uf_val[qi])
			TRY(wait_ufence(w, &w->exec_uf[qi], w->exec_uf_val[qi], rnd(w, 2)));
		break;
	}
	case 6: /* every exec so far: the exec timeline */
		if (w->exec_seq) {
			TRY(wait_one(w, w->tl_exec, w->exec_seq));
			for (uint32_t i = 0; i < np; i++)
				TRY(check_slot(w, pend[i]));
		}
		break;
	default: { /* a poll: done or -ETIME */
		w->polls++;
		if (!np)
			break;
		uint32_t si = pend[rnd(w, np)], h = w->slots[si].so;
		int err;
		TRY(wait_syncobjs(w, &h, NULL, 1, VMB_SYNCOBJ_WAIT_RELATIVE, 0, NULL, &err));
		CHECK(w, err == 0 || err == -ETIME, "poll: %d", err);
		if (!err)
			TRY(check_slot(w, si));
		break;
	}
	}
	return true;
}

/* Between checkpoints: a page whose last bind is known done reads as the model says; the
 * timelines' values only go up and never past what was submitted. */
static bool do_probe(struct worker *w)
{
	w->probes++;
	uint32_t p = (uint32_t)rnd(w, SLICE_PAGES);
	bool done = true;
	if (w->model[p].so)
		TRY(syncobj_signalled(w, w->model[p].so, &done));
	if (done)
		TRY(check_page(w, p, rnd(w, 8) == 0));
	uint64_t vb, ve;
	TRY(timeline_value(w, w->tl_bind, &vb));
	TRY(timeline_value(w, w->tl_exec, &ve));
	CHECK(w, vb >= w->tl_bind_seen && vb <= w->bind_seq, "bind timeline at %llu, was %llu, last point %llu",
	      (unsigned long long)vb, (unsigned long long)w->tl_bind_seen, (unsigned long long)w->bind_seq);
	CHECK(w, ve >= w->tl_exec_seen && ve <= w->exec_seq, "exec timeline at %llu, was %llu, last point %llu",
	      (unsigned long long)ve, (unsigned long long)w->tl_exec_seen, (unsigned long long)w->exec_seq);
	w->tl_bind_seen = vb;
	w->tl_exec_seen = ve;
	return true;
}

/* Wait for everything this worker submitted, then check all of it. */
static bool checkpoint(struct worker *w)
{
	struct stress *s = w->s;
	TRY(gate_release(w));
	/* a barrier on each bind queue used: after every earlier bind of the queue */
	uint32_t used = w->used_bq;
	for (uint32_t qi = 0; qi < BIND_QUEUES; qi++) {
		if (!(used & (1u << qi)))
			continue;
		struct vmb_sync syncs[2] = {sync_ufence(&w->bind_uf[qi], ++w->bind_uf_val[qi])};
		uint32_t ns = 1, so;
		if (rnd(w, 2)) {
			TRY(new_syncobj(w, 0, &so));
			syncs[ns++] = sync_out(so);
		}
		TRY(submit_bind(w, qi, NULL, 0, syncs, ns));
	}
	for (uint32_t qi = 0; qi < BIND_QUEUES; qi++)
		if (used & (1u << qi))
			TRY(wait_ufence(w, &w->bind_uf[qi], w->bind_uf_val[qi], rnd(w, 2)));
	w->used_bq = 0;
	/* the barriers alone cover every bind (the timeline's value says so below), or its last point */
	if (w->bind_seq && rnd(w, 2))
		TRY(wait_one(w, w->tl_bind, w->bind_seq));
	if (w->exec_seq)
		TRY(wait_one(w, w->tl_exec, w->exec_seq));
	/* all done: every exec's results, counters, fences and timeline values are final */
	for (uint32_t si = 0; si < SLOTS; si++) {
		if (!w->slots[si].pending)
			continue;
		bool done;
		TRY(syncobj_signalled(w, w->slots[si].so, &done));
		CHECK(w, done, "exec %llu: its timeline point passed, its syncobj is not signalled",
		      (unsigned long long)w->slots[si].seq);
		TRY(check_slot(w, si));
	}
	const uint8_t *area = s->res + (uint64_t)w->t * RES_AREA;
	uint64_t count = __atomic_load_n((const uint64_t *)(area + RES_COUNTER), __ATOMIC_ACQUIRE);
	CHECK(w, count == w->execs, "GPU counter %llu, execs %lu", (unsigned long long)count, w->execs);
	for (uint32_t qi = 0; qi < BIND_QUEUES; qi++) {
		uint64_t v = __atomic_load_n(&w->bind_uf[qi], __ATOMIC_ACQUIRE);
		CHECK(w, v == w->bind_uf_val[qi], "bind queue %u user fence %llu, expected %llu", qi,
		      (unsigned long long)v, (unsigned long long)w->bind_uf_val[qi]);
	}
	for (uint32_t qi = 0; qi < EXEC_QUEUES; qi++) {
		uint64_t v = __atomic_load_n(&w->exec_uf[qi], __ATOMIC_ACQUIRE);
		uint64_t g = __atomic_load_n((const uint64_t *)(area + RES_GPU_UF + 8ull * qi), __ATOMIC_ACQUIRE);
		CHECK(w, v == w->exec_uf_val[qi], "exec queue %u out user fence %llu, expected %llu", qi,
		      (unsigned long long)v, (unsigned long long)w->exec_uf_val[qi]);
		CHECK(w, g == w->gpu_uf_val[qi], "exec queue %u GPU user fence %llu, expected %llu", qi,
		      (unsigned long long)g, (unsigned long long)w->gpu_uf_val[qi]);
	}
	uint64_t vb, ve;
	TRY(timeline_value(w, w->tl_bind, &vb));
	TRY(timeline_value(w, w->tl_exec, &ve));
	CHECK(w, vb == w->bind_seq && ve == w->exec_seq, "timelines at %llu and %llu, last points %llu and %llu",
	      (unsigned long long)vb, (unsigned long long)ve, (unsigned long long)w->bind_seq,
	      (unsigned long long)w->exec_seq);
	w->tl_bind_seen = vb;
	w->tl_exec_seen = ve;
	TRY(check_slice(w));
	TRY(queues_not_banned(w));
	struct vmb_client_validate cv = {0};
	int err = vmb_client_validate(s->c, &cv);
	CHECK(w, err == 0 || err == -EBUSY, "validate: %d", err); /* -EBUSY: other workers' binds pending */
	/* every syncobj of this round is signalled and no longer needed */
	for (size_t i = 0; i < w->ndead; i++) {
		struct vmb_syncobj_destroy d = {.handle = w->dead[i]};
		err = vmb_syncobj_destroy(s->c, &d);
		CHECK(w, err == 0, "destroy syncobj %u: %d", w->dead[i], err);
	}
	w->ndead = 0;
	w->nrecent = 0;
	for (uint32_t p = 0; p < SLICE_PAGES; p++)
		w->model[p].so = 0;
	for (uint32_t si = 0; si < SLOTS; si++)
		w->slots[si].so = 0;
	w->checkpoints++;
	return true;
}

static bool step(struct worker *w)
{
	uint64_t r = rnd(w, 100);
	if (r < 40)
		return do_bind(w);
	if (r < 75)
		return do_exec(w);
	if (r < 92)
		return do_wait(w);
	return do_probe(w);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct stress *s = w->s;
	bool ok = true;
	while (ok && !atomic_load(&s->failed) && now_ns() < s->deadline) {
		w->steps++;
		ok = step(w);
		if (ok && w->gate_fd >= 0 && --w->gate_steps <= 0)
			ok = gate_release(w);
		if (ok && w->steps % CHECK_EVERY == 0)
			ok = checkpoint(w);
	}
	if (ok && !atomic_load(&s->failed))
		checkpoint(w);
	else
		gate_release(w); /* nobody may wait for it forever */
	atomic_store(&w->exited, true);
	return NULL;
}

static void *signaller(void *arg)
{
	struct stress *s = arg;
	unsigned long sent = 0;
	while (!atomic_load(&s->stop_signals)) {
		for (int t = 0; t < WORKERS; t++)
			if (!atomic_load(&s->w[t].exited) && pthread_kill(s->w[t].th, SIGUSR1) == 0)
				sent++;
		struct timespec ts = {.tv_nsec = 1000000};
		nanosleep(&ts, NULL);
	}
	s->signals_sent = sent;
	return NULL;
}

/* ==== adversaries: threads beside the workers, each attacking one class of defect ==== */

/*
 * Each adversary runs rounds until the deadline in its own thread, with its own vm, BOs and
 * queues (the timeline adversary on the workers' client, sharing their device lock and syncobj
 * table; the others on a client of their own, see each section for why). Every wait is bounded:
 * a bounded library wait, a bounded poll, or a call marked with adv_doing(), which the main
 * thread's watchdog turns into a failure (message, then abort) once it has run for HANG_NS.
 */
#define ADV_REUSE (1u << 0)
#define ADV_TIMELINE (1u << 1)
#define ADV_PREFETCH (1u << 2)
#define ADV_LONG (1u << 3)
#define ADV_ALL (ADV_REUSE | ADV_TIMELINE | ADV_PREFETCH | ADV_LONG)
#define ADV_MAX 4

#define HANG_NS (15 * SEC)   /* a marked call that has not returned by then hangs */
#define BOUND_NS (10 * SEC)  /* an adversary's own bounded waits */
#define GRACE_NS (120 * SEC) /* every thread has exited this long after the deadline */

struct adv {
	struct stress *s;
	const char *name;
	bool (*setup)(struct adv *a);
	bool (*round)(struct adv *a);
	void (*fini)(struct adv *a);
	pthread_t th;
	uint64_t rng;
	void *priv;
	_Atomic(const char *) doing; /* a call that may hang, in progress; NULL: none */
	atomic_llong since;          /* when it started */
	atomic_bool exited;
	unsigned long rounds, events; /* events: what the adversary counts (races met, moves) */
	const char *event_name;
	char err[1024];
};

static bool afail(struct adv *a, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static bool afail(struct adv *a, int line, const char *fmt, ...)
{
	if (!a->err[0]) {
		int n = snprintf(a->err, sizeof(a->err), "adversary %s, line %d, round %lu: ", a->name, line, a->rounds);
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(a->err + n, sizeof(a->err) - (size_t)n, fmt, ap);
		va_end(ap);
	}
	atomic_store(&a->s->failed, true);
	return false;
}
#define ACHECK(a, cond, ...)                                 \
	do {                                                 \
		if (!(cond))                                 \
			return afail(a, __LINE__, __VA_ARGS__); \
	} while (0)

static uint64_t arnd(struct adv *a, uint64_t n) { return rnd_below(&a->rng, n); }

/* Marks a call that must return within HANG_NS (the watchdog's), or ends the mark. */
static void adv_doing(struct adv *a, const char *what)
{
	atomic_store(&a->since, now_ns());
	atomic_store(&a->doing, what);
}
static void adv_done(struct adv *a) { atomic_store(&a->doing, NULL); }

static bool a_syncobj(struct adv *a, struct vmb_client *c, uint32_t flags, uint32_t *h)
{
	struct vmb_syncobj_create sc = {.flags = flags};
	int err = vmb_syncobj_create(c, &sc);
	ACHECK(a, err == 0, "syncobj create: %d", err);
	*h = sc.handle;
	return true;
}

static bool a_destroy_syncobj(struct adv *a, struct vmb_client *c, uint32_t h)
{
	struct vmb_syncobj_destroy d = {.handle = h};
	int err = vmb_syncobj_destroy(c, &d);
	ACHECK(a, err == 0, "syncobj %u destroy: %d", h, err);
	return true;
}

/* A gate as in the workers: an imported eventfd, open once written. */
static bool a_gate(struct adv *a, struct vmb_client *c, struct gate *g)
{
	g->efd = eventfd(0, EFD_CLOEXEC);
	ACHECK(a, g->efd >= 0, "eventfd: %d", errno);
	struct vmb_syncobj_fd f = {.fd = g->efd};
	int err = vmb_syncobj_import_fd(c, &f);
	ACHECK(a, err == 0, "import fd: %d", err);
	g->h = f.handle;
	return true;
}

static void a_gate_open(struct gate *g)
{
	if (g->efd < 0)
		return;
	uint64_t one = 1;
	while (write(g->efd, &one, 8) < 0 && errno == EINTR)
		;
	close(g->efd);
	g->efd = -1;
}

/* Waits for @h (at @point on a timeline) until the absolute @deadline; restarts on -EINTR. */
static int a_wait(struct vmb_client *c, uint32_t h, uint64_t point, int64_t deadline)
{
	struct vmb_syncobj_wait w = {.handles = (uint64_t)(uintptr_t)&h, .points = point ? (uint64_t)(uintptr_t)&point : 0,
				     .count = 1, .timeout_ns = deadline};
	int err;
	while ((err = vmb_syncobj_wait(c, &w)) == -EINTR)
		;
	return err;
}

static bool a_bo(struct adv *a, struct vmb_client *c, uint64_t size, uint32_t placements, uint32_t *h)
{
	struct vmb_bo_create bc = {.size = size, .placements = placements};
	adv_doing(a, "vmb_bo_create");
	int err = vmb_bo_create(c, &bc);
	adv_done(a);
	ACHECK(a, err == 0, "BO create (%llu bytes): %d", (unsigned long long)size, err);
	*h = bc.handle;
	return true;
}

static bool a_destroy_bo(struct adv *a, struct vmb_client *c, uint32_t h)
{
	struct vmb_bo_destroy d = {.handle = h};
	int err = vmb_bo_destroy(c, &d);
	ACHECK(a, err == 0, "BO %u destroy: %d", h, err);
	return true;
}

/* Writes tag | word index into every word of BO @h (mapped for the CPU only meanwhile). */
static bool a_bo_fill(struct adv *a, struct vmb_client *c, uint32_t h, uint64_t size, uint64_t tag)
{
	struct vmb_bo_mmap m = {.handle = h};
	int err = vmb_bo_mmap(c, &m);
	ACHECK(a, err == 0, "BO %u mmap: %d", h, err);
	uint64_t *p = (uint64_t *)(uintptr_t)m.ptr;
	for (uint64_t i = 0; i < size / 8; i++)
		p[i] = tag | i;
	struct vmb_bo_munmap u = {.handle = h, .ptr = m.ptr};
	err = vmb_bo_munmap(c, &u);
	ACHECK(a, err == 0, "BO %u munmap: %d", h, err);
	return true;
}

static bool a_vm(struct adv *a, struct vmb_client *c, uint32_t flags, uint32_t *h)
{
	struct vmb_vm_create vc = {.flags = flags};
	int err = vmb_vm_create(c, &vc);
	ACHECK(a, err == 0, "vm create: %d", err);
	*h = vc.vm_id;
	return true;
}

static bool a_destroy_vm(struct adv *a, struct vmb_client *c, uint32_t h)
{
	struct vmb_vm_destroy d = {.vm_id = h};
	adv_doing(a, "vmb_vm_destroy");
	int err = vmb_vm_destroy(c, &d);
	adv_done(a);
	ACHECK(a, err == 0, "vm %u destroy: %d", h, err);
	return true;
}

static bool a_queue(struct adv *a, struct vmb_client *c, uint32_t vm, uint32_t *h)
{
	struct vmb_bind_queue_create qc = {.vm_id = vm};
	int err = vmb_bind_queue_create(c, &qc);
	ACHECK(a, err == 0, "bind queue create: %d", err);
	*h = qc.queue_id;
	return true;
}

static bool a_destroy_queue(struct adv *a, struct vmb_client *c, uint32_t vm, uint32_t h)
{
	struct vmb_bind_queue_destroy d = {.vm_id = vm, .queue_id = h};
	int err = vmb_bind_queue_destroy(c, &d);
	ACHECK(a, err == 0, "bind queue %u destroy: %d", h, err);
	return true;
}

/* A synchronous bind of one op, marked (it may wait). */
static bool a_bind1(struct adv *a, struct vmb_client *c, uint32_t vm, struct vmb_bind_op op, const char *what)
{
	adv_doing(a, what);
	int err;
	while ((err = __bind1(c, vm, op)) == -EINTR)
		;
	adv_done(a);
	ACHECK(a, err == 0, "%s: %d", what, err);
	return true;
}

/* Reads 8 bytes at @addr of @vm through its page tables: *@err gets the result. */
static uint64_t a_gpu_read(struct vmb_client *c, uint32_t vm, uint64_t addr, int *err)
{
	uint64_t v = 0xdeadbeefdeadbeefull;
	*err = __gpu_rw(c, vm, addr, &v, 8, false);
	return v;
}

/* ---- 1. handle reuse: a call that waits acts on the objects named at entry ----
 *
 * Attacks: a call that waits (with the device lock dropped) and then looks its handles up
 * again, while another thread destroys what they named and creates objects until one takes the
 * same handle (issue 11, item 2). Each round, on a client of its own (nobody else creates BOs,
 * vms, queues or syncobjs there, so a handle comes back within a turn of its table):
 *   A. a synchronous MAP of BO X on bind queue Q2 waits behind an overlapping bind of queue Q1
 *      held back by a gate; meanwhile X and Q2 are destroyed, a new BO X' takes X's handle, a
 *      new queue Q2' takes Q2's and gets a bind of its own behind a second, closed gate;
 *   B. an asynchronous bind on an LR vm L waits for its in-syncobj (a gate) inside the call;
 *      meanwhile L and the gate's handle are destroyed, a new non-LR vm L' and a new syncobj
 *      take their handles, then the gate opens.
 * Checks: the call returns 0 or -ENOENT; with 0 it acted on X (the GPU view at the address reads
 * X's contents), with -ENOENT the gated bind's mapping is there; X' is mapped nowhere; the call
 * never waits for Q2' (it returns once the first gate opens); L' has no mapping.
 * The second thread destroys only once the call is seen asleep (/proc: state S three times, 2
 * ms apart; nothing else runs on this client), so the call did look its handles up before.
 */
#define RU_VA (1ull << 32)
#define RU_VA_B (2ull << 32)
#define RU_SIZE (64 * KiB)
#define RU_TAG_X 0x1100000000000000ull
#define RU_TAG_X2 0x1200000000000000ull
#define RU_TAG_Y 0x1300000000000000ull

struct reuse {
	struct vmb_client *c;
	/* the call that waits, made by a helper thread */
	struct vmb_vm_bind call;
	struct vmb_bind_op op;
	struct vmb_sync syncs[2];
	atomic_int tid;
	atomic_bool returned;
	int result;
	uint64_t **ufs; /* out user fences of scenario B: written late perhaps, freed after close */
	size_t nufs;
};

static void *reuse_caller(void *arg)
{
	struct reuse *r = arg;
	atomic_store(&r->tid, (int)syscall(SYS_gettid));
	int err;
	while ((err = vmb_vm_bind(r->c, &r->call)) == -EINTR)
		;
	r->result = err;
	atomic_store(&r->returned, true);
	return NULL;
}

/* Thread @tid of this process sleeps (in a wait; 'S' in /proc). */
static bool thread_asleep(int tid)
{
	char path[64], buf[512];
	snprintf(path, sizeof(path), "/proc/self/task/%d/stat", tid);
	FILE *f = fopen(path, "r");
	if (!f)
		return false;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	const char *p = strrchr(buf, ')');
	return p && p[1] == ' ' && (p[2] == 'S' || p[2] == 'D');
}

/* Starts the call in a helper thread and returns once it is seen waiting inside it. */
static bool reuse_start(struct adv *a, struct reuse *r, pthread_t *th, const char *what)
{
	atomic_store(&r->tid, 0);
	atomic_store(&r->returned, false);
	r->result = 1;
	int err = pthread_create(th, NULL, reuse_caller, r);
	ACHECK(a, err == 0, "pthread_create: %d", err);
	int asleep = 0;
	for (int64_t end = now_ns() + BOUND_NS; asleep < 3;) {
		if (atomic_load(&r->returned)) {
			pthread_join(*th, NULL);
			return afail(a, __LINE__, "%s returned %d while the work it must wait for is held back by a closed gate",
				     what, r->result);
		}
		int tid = atomic_load(&r->tid);
		asleep = tid && thread_asleep(tid) ? asleep + 1 : 0;
		if (now_ns() > end)
			return afail(a, __LINE__, "%s: never seen waiting in %lld s", what, (long long)(BOUND_NS / SEC));
		usleep(2000);
	}
	return true;
}

/* After its gate opened: true once the call has returned, false if it has not within BOUND_NS. */
static bool reuse_returns(struct reuse *r)
{
	for (int64_t end = now_ns() + BOUND_NS; now_ns() < end;) {
		if (atomic_load(&r->returned))
			return true;
		usleep(1000);
	}
	return false;
}

static bool reuse_join(struct adv *a, pthread_t th)
{
	adv_doing(a, "joining the thread of the call that waits");
	pthread_join(th, NULL);
	adv_done(a);
	return true;
}

/* Creates objects until one takes handle @h (each other one destroyed at once). */
enum reuse_kind { RK_BO, RK_VM, RK_QUEUE, RK_SYNCOBJ };
static bool reuse_handle(struct adv *a, struct vmb_client *c, enum reuse_kind k, uint32_t vm, uint32_t h)
{
	for (int i = 0; i < 4096; i++) {
		uint32_t n = 0;
		switch (k) {
		case RK_BO:
			TRY(a_bo(a, c, RU_SIZE, VMB_PLACE_SYSTEM, &n));
			break;
		case RK_VM:
			TRY(a_vm(a, c, 0, &n));
			break;
		case RK_QUEUE:
			TRY(a_queue(a, c, vm, &n));
			break;
		case RK_SYNCOBJ:
			TRY(a_syncobj(a, c, 0, &n));
			break;
		}
		if (n == h)
			return true;
		switch (k) {
		case RK_BO:
			TRY(a_destroy_bo(a, c, n));
			break;
		case RK_VM:
			TRY(a_destroy_vm(a, c, n));
			break;
		case RK_QUEUE:
			TRY(a_destroy_queue(a, c, vm, n));
			break;
		case RK_SYNCOBJ:
			TRY(a_destroy_syncobj(a, c, n));
			break;
		}
	}
	return afail(a, __LINE__, "handle %u (kind %d) not reused after 4096 creations", h, k);
}

static bool reuse_setup(struct adv *a)
{
	struct reuse *r = a->priv = calloc(1, sizeof(struct reuse));
	ACHECK(a, r, "out of memory");
	struct vmb_client_opts o = {.vram_size = 32 * MiB, .system_size = 32 * MiB};
	int err = vmb_client_open("soft:1", &o, &r->c);
	ACHECK(a, err == 0, "client open: %d", err);
	a->event_name = "reuses";
	return true;
}

/* A: a synchronous MAP behind a gated bind; its BO and queue replaced meanwhile. */
static bool reuse_sync_map(struct adv *a, struct reuse *r)
{
	struct vmb_client *c = r->c;
	uint32_t vm = 0, q1 = 0, q2 = 0, q2b = 0, x = 0, y = 0, done_b = 0;
	struct gate g = {.efd = -1}, g2 = {.efd = -1};
	TRY(a_vm(a, c, 0, &vm));
	TRY(a_queue(a, c, vm, &q1));
	TRY(a_queue(a, c, vm, &q2));
	TRY(a_bo(a, c, RU_SIZE, VMB_PLACE_SYSTEM, &y));
	TRY(a_bo(a, c, RU_SIZE, VMB_PLACE_SYSTEM, &x));
	TRY(a_bo_fill(a, c, y, RU_SIZE, RU_TAG_Y));
	TRY(a_bo_fill(a, c, x, RU_SIZE, RU_TAG_X));
	TRY(a_gate(a, c, &g));
	struct vmb_bind_op op = op_map(y, 0, RU_VA, RU_SIZE, 0);
	struct vmb_sync in = sync_in(g.h);
	int err = __bind_async(c, vm, q1, &op, 1, &in, 1);
	ACHECK(a, err == 0, "gated bind: %d", err);
	TRY(a_destroy_syncobj(a, c, g.h)); /* the bind keeps the fence */

	r->op = op_map(x, 0, RU_VA, RU_SIZE, 0);
	r->call = (struct vmb_vm_bind){.vm_id = vm, .queue_id = q2, .num_binds = 1, .binds = (uint64_t)(uintptr_t)&r->op};
	pthread_t th;
	TRY(reuse_start(a, r, &th, "a synchronous MAP behind a gated bind"));

	/* the call waits: replace its BO, and half the time its queue */
	bool new_queue = arnd(a, 2);
	TRY(a_destroy_bo(a, c, x));
	if (new_queue)
		TRY(a_destroy_queue(a, c, vm, q2));
	TRY(reuse_handle(a, c, RK_BO, 0, x)); /* X' */
	TRY(a_bo_fill(a, c, x, RU_SIZE, RU_TAG_X2));
	if (new_queue)
		TRY(reuse_handle(a, c, RK_QUEUE, vm, q2)); /* Q2', with a bind behind a closed gate */
	else
		TRY(a_queue(a, c, vm, &q2b)); /* the bind behind a closed gate on a queue the call does not name */
	q2b = new_queue ? q2 : q2b;
	TRY(a_gate(a, c, &g2));
	TRY(a_syncobj(a, c, 0, &done_b));
	struct vmb_bind_op opb = op_map(y, 0, RU_VA_B, RU_SIZE, 0);
	struct vmb_sync sb[2] = {sync_in(g2.h), sync_out(done_b)};
	err = __bind_async(c, vm, q2b, &opb, 1, sb, 2);
	ACHECK(a, err == 0, "bind on the new queue: %d", err);
	a->events++;

	a_gate_open(&g);
	bool returned = reuse_returns(r);
	a_gate_open(&g2); /* whatever happened: nothing may wait for it forever */
	TRY(reuse_join(a, th));
	ACHECK(a, returned,
	       "a synchronous MAP on bind queue %u still waits %lld s after the bind it followed ran: it waits for the "
	       "bind of %s (it returned %d once that gate opened)",
	       q2, (long long)(BOUND_NS / SEC), new_queue ? "the newer queue that took its queue's handle" : "another queue",
	       r->result);
	int res = r->result;
	ACHECK(a, res == 0 || res == -ENOENT, "a synchronous MAP whose BO and queue were replaced while it waited: %d", res);
	struct vmb_bo_query bq = {.handle = x};
	err = vmb_bo_query(c, &bq);
	ACHECK(a, err == 0 && bq.vm_mappings == 0,
	       "the newer BO that took handle %u is mapped %u times (query %d): the synchronous MAP (result %d) "
	       "mapped it instead of the BO it named",
	       x, bq.vm_mappings, err, res);
	uint64_t word = arnd(a, RU_SIZE / 8), v = a_gpu_read(c, vm, RU_VA + word * 8, &err);
	uint64_t want = (res == 0 ? RU_TAG_X : RU_TAG_Y) | word;
	ACHECK(a, err == 0 && v == want, "after a synchronous MAP (result %d): GPU view reads %#llx (%d), expected %#llx",
	       res, (unsigned long long)v, err, (unsigned long long)want);
	err = a_wait(c, done_b, 0, now_ns() + BOUND_NS);
	ACHECK(a, err == 0, "the new queue's bind: %d", err);
	TRY(a_destroy_syncobj(a, c, done_b));
	TRY(a_destroy_syncobj(a, c, g2.h));
	TRY(a_destroy_vm(a, c, vm));
	TRY(a_destroy_bo(a, c, x));
	return a_destroy_bo(a, c, y);
}

/* B: an LR vm's bind waits for its in-syncobj in the call; its vm and syncobj replaced meanwhile. */
static bool reuse_lr_bind(struct adv *a, struct reuse *r)
{
	struct vmb_client *c = r->c;
	uint32_t lr = 0, z = 0;
	struct gate g = {.efd = -1};
	TRY(a_vm(a, c, VMB_VM_CREATE_LR_MODE, &lr));
	TRY(a_bo(a, c, RU_SIZE, VMB_PLACE_SYSTEM, &z));
	TRY(a_bo_fill(a, c, z, RU_SIZE, RU_TAG_X));
	TRY(a_gate(a, c, &g));
	uint64_t **ufs = realloc(r->ufs, (r->nufs + 1) * sizeof(*ufs));
	ACHECK(a, ufs, "out of memory");
	r->ufs = ufs;
	uint64_t *uf = ufs[r->nufs++] = calloc(1, 8);
	ACHECK(a, uf, "out of memory");
	r->op = op_map(z, 0, RU_VA, RU_SIZE, 0);
	r->syncs[0] = sync_in(g.h);
	r->syncs[1] = sync_ufence(uf, 1);
	r->call = (struct vmb_vm_bind){.vm_id = lr, .num_binds = 1, .binds = (uint64_t)(uintptr_t)&r->op, .num_syncs = 2,
				       .syncs = (uint64_t)(uintptr_t)r->syncs, .flags = VMB_VM_BIND_FLAG_ASYNC};
	pthread_t th;
	TRY(reuse_start(a, r, &th, "an LR vm's bind waiting for its in-syncobj"));

	/* the call waits: replace its vm and its in-syncobj */
	TRY(a_destroy_vm(a, c, lr));
	TRY(a_destroy_syncobj(a, c, g.h));
	TRY(reuse_handle(a, c, RK_SYNCOBJ, 0, g.h)); /* nothing submitted: a wait on it is -EINVAL */
	TRY(reuse_handle(a, c, RK_VM, 0, lr));       /* L', not LR */
	a->events++;
	a_gate_open(&g);
	bool returned = reuse_returns(r);
	TRY(reuse_join(a, th));
	ACHECK(a, returned, "an LR vm's bind still waits %lld s after its in-syncobj signalled", (long long)(BOUND_NS / SEC));
	int res = r->result;
	ACHECK(a, res == 0 || res == -ENOENT, "an LR vm's bind whose vm was replaced while it waited: %d", res);
	struct vmb_vm_query_mappings q = {.vm_id = lr};
	int err = vmb_vm_query_mappings(c, &q);
	ACHECK(a, err == 0, "query the newer vm's mappings: %d", err);
	uint64_t v = a_gpu_read(c, lr, RU_VA, &err);
	ACHECK(a, q.num_mappings == 0 && err == -EFAULT,
	       "the newer vm that took handle %u has %u mappings (GPU view at the bind's address: %d, %#llx): the LR "
	       "vm's bind (result %d) landed in it",
	       lr, q.num_mappings, err, (unsigned long long)v, res);
	TRY(a_destroy_vm(a, c, lr));
	TRY(a_destroy_syncobj(a, c, g.h));
	return a_destroy_bo(a, c, z);
}

static bool reuse_round(struct adv *a)
{
	struct reuse *r = a->priv;
	return arnd(a, 2) ? reuse_sync_map(a, r) : reuse_lr_bind(a, r);
}

static void reuse_fini(struct adv *a)
{
	struct reuse *r = a->priv;
	if (!r)
		return;
	if (a->err[0])
		return; /* after a failure a thread may still be inside the library, and a job may still
			 * write a user fence: the client stays open, its memory stays allocated */
	if (r->c) {
		adv_doing(a, "vmb_client_close");
		vmb_client_close(r->c);
		adv_done(a);
	}
	for (size_t i = 0; i < r->nufs; i++)
		free(r->ufs[i]);
	free(r->ufs);
	free(r);
}

/* ---- 2. timeline signals: a point is added once ----
 *
 * Attacks: the check of a timeline point and its insertion made in two steps, so that two
 * claimants of one point both succeed (issue 11, item 3). Each round, on the workers' client, a
 * fresh timeline; thread A claims point 1 with a held-back asynchronous bind of many ops (a long
 * prepare), a held-back barrier, or a held-back exec; once A is in its call, thread B claims
 * point 1 too, from the CPU (vmb_syncobj_timeline_signal) or with a barrier on another queue.
 * Checks: exactly one claimant gets point 1, the other -EINVAL; if A holds it, a poll of point
 * 1 is -ETIME and the timeline's value 0 until A's gate opens, and once a wait on it returns,
 * A's work is visible (the bind's mappings in the GPU view, the exec's store in memory); if B
 * holds it, A changed nothing.
 */
#ifdef VMB_FENCE_CONDVAR
#define TL_OPS 128
#else
#define TL_OPS 1024
#endif
#define TL_VA (1ull << 36)
#define TL_BO_PAGES 16u
#define TL_CMD_VA (1ull << 32)
#define TL_RES_VA (2ull << 32)

struct tl {
	struct vmb_client *c;
	uint32_t vm, qa, qb, eq, bo, cmd_bo, res_bo;
	uint64_t *cmd, *res;
	struct vmb_bind_op ops[TL_OPS];
	/* a round's timeline, and B's side of it */
	uint32_t timeline, done_b;
	int b_kind, b_result;
	uint64_t spin;             /* the follower's pause after the leader's start */
	bool b_leads;              /* B starts first, A follows (else the reverse) */
	atomic_bool a_entering, b_entering;
};

static uint64_t tl_word(uint32_t page, uint32_t word) { return 0x7100000000000000ull | (uint64_t)page << 16 | word; }

static void *tl_claimer(void *arg)
{
	struct tl *t = arg;
	while (!t->b_leads && !atomic_load(&t->a_entering))
		sched_yield();
	for (volatile uint64_t i = 0; i < (t->b_leads ? 0 : t->spin); i++)
		;
	atomic_store(&t->b_entering, true);
	if (t->b_kind == 0) {
		uint64_t one = 1;
		struct vmb_syncobj_array sa = {.handles = (uint64_t)(uintptr_t)&t->timeline, .points = (uint64_t)(uintptr_t)&one,
					       .count = 1};
		t->b_result = vmb_syncobj_timeline_signal(t->c, &sa);
	} else {
		struct vmb_sync sy[2] = {sync_tl_out(t->timeline, 1), sync_out(t->done_b)};
		t->b_result = __bind_async(t->c, t->vm, t->qb, NULL, 0, sy, 2);
	}
	return NULL;
}

static bool tl_setup(struct adv *a)
{
	struct tl *t = a->priv = calloc(1, sizeof(struct tl));
	ACHECK(a, t, "out of memory");
	struct vmb_client *c = t->c = a->s->c;
	a->event_name = "claims by B";
	TRY(a_vm(a, c, 0, &t->vm));
	TRY(a_queue(a, c, t->vm, &t->qa));
	TRY(a_queue(a, c, t->vm, &t->qb));
	TRY(a_bo(a, c, TL_BO_PAGES * 4096ull, VMB_PLACE_SYSTEM, &t->bo));
	TRY(a_bo(a, c, 4096, VMB_PLACE_SYSTEM, &t->cmd_bo));
	TRY(a_bo(a, c, 4096, VMB_PLACE_SYSTEM, &t->res_bo));
	struct vmb_bo_mmap m = {.handle = t->bo};
	int err = vmb_bo_mmap(c, &m);
	ACHECK(a, err == 0, "mmap: %d", err);
	for (uint32_t i = 0; i < TL_BO_PAGES * PAGE_WORDS; i++)
		((uint64_t *)(uintptr_t)m.ptr)[i] = tl_word(i / PAGE_WORDS, i % PAGE_WORDS);
	m = (struct vmb_bo_mmap){.handle = t->cmd_bo};
	err = vmb_bo_mmap(c, &m);
	ACHECK(a, err == 0, "mmap: %d", err);
	t->cmd = (uint64_t *)(uintptr_t)m.ptr;
	m = (struct vmb_bo_mmap){.handle = t->res_bo};
	err = vmb_bo_mmap(c, &m);
	ACHECK(a, err == 0, "mmap: %d", err);
	t->res = (uint64_t *)(uintptr_t)m.ptr;
	TRY(a_bind1(a, c, t->vm, op_map(t->cmd_bo, 0, TL_CMD_VA, 4096, VMB_BIND_FLAG_READONLY), "map the command BO"));
	TRY(a_bind1(a, c, t->vm, op_map(t->res_bo, 0, TL_RES_VA, 4096, 0), "map the results BO"));
	struct vmb_exec_queue_create ec = {.vm_id = t->vm,
					   .engine = {.engine_class = VMB_ENGINE_CLASS_COMPUTE, .engine_instance = 1}};
	err = vmb_exec_queue_create(c, &ec);
	ACHECK(a, err == 0, "exec queue create: %d", err);
	t->eq = ec.exec_queue_id;
	for (uint32_t i = 0; i < TL_OPS; i++) /* every other page: one mapping per op */
		t->ops[i] = op_map(t->bo, (i % TL_BO_PAGES) * 4096ull, TL_VA + 2ull * i * 4096, 4096, 0);
	return true;
}

static bool tl_round(struct adv *a)
{
	struct tl *t = a->priv;
	struct vmb_client *c = t->c;
	static const char *const a_kinds[] = {"bind", "barrier", "exec"}, *const b_kinds[] = {"CPU signal", "barrier"};
	int a_kind = (int)arnd(a, 3), err;
	uint64_t tag = 0x7200000000000000ull | a->rounds;
	struct gate g = {.efd = -1};
	uint32_t done_a = 0;
	TRY(a_syncobj(a, c, VMB_SYNCOBJ_CREATE_TIMELINE, &t->timeline));
	TRY(a_syncobj(a, c, 0, &done_a));
	TRY(a_syncobj(a, c, 0, &t->done_b));
	TRY(a_gate(a, c, &g));
	t->b_kind = (int)arnd(a, 2);
	t->b_leads = arnd(a, 4) == 0; /* mostly A first: B meets A's prepare */
	t->spin = arnd(a, 4) == 0 ? 0 : arnd(a, 20000);
	t->b_result = 1;
	atomic_store(&t->a_entering, false);
	atomic_store(&t->b_entering, false);
	if (a_kind == 2) {
		uint32_t n = 0;
		__atomic_store_n(&t->res[0], 0, __ATOMIC_RELAXED);
		vmb_cmd_store64(t->cmd, &n, TL_RES_VA, tag);
		vmb_cmd_end(t->cmd, &n);
	}
	pthread_t th;
	err = pthread_create(&th, NULL, tl_claimer, t);
	ACHECK(a, err == 0, "pthread_create: %d", err);

	struct vmb_sync sy[3] = {sync_in(g.h), sync_tl_out(t->timeline, 1), sync_out(done_a)};
	while (t->b_leads && !atomic_load(&t->b_entering))
		sched_yield();
	for (volatile uint64_t i = 0; i < (t->b_leads ? t->spin : 0); i++)
		;
	atomic_store(&t->a_entering, true);
	int ra;
	if (a_kind == 0) {
		ra = __bind_async(c, t->vm, t->qa, t->ops, TL_OPS, sy, 3);
	} else if (a_kind == 1) {
		ra = __bind_async(c, t->vm, t->qa, NULL, 0, sy, 3);
	} else {
		struct vmb_exec e = {.exec_queue_id = t->eq, .address = TL_CMD_VA, .num_syncs = 3, .syncs = (uint64_t)(uintptr_t)sy};
		ra = vmb_exec(c, &e);
	}
	adv_doing(a, "joining the thread of the second claimant");
	pthread_join(th, NULL);
	adv_done(a);
	int rb = t->b_result;
	ACHECK(a, (ra == 0 || ra == -EINVAL) && (rb == 0 || rb == -EINVAL), "point 1 claimed by A's %s: %d, by B's %s: %d",
	       a_kinds[a_kind], ra, b_kinds[t->b_kind], rb);
	if (ra == 0 && rb == 0)
		a_gate_open(&g);
	ACHECK(a, !(ra == 0 && rb == 0), "point 1 of a fresh timeline accepted twice: by A's %s and by B's %s",
	       a_kinds[a_kind], b_kinds[t->b_kind]);
	ACHECK(a, ra == 0 || rb == 0, "point 1 of a fresh timeline refused to both A's %s and B's %s", a_kinds[a_kind],
	       b_kinds[t->b_kind]);
	uint64_t val = 99;
	struct vmb_syncobj_array qa = {.handles = (uint64_t)(uintptr_t)&t->timeline, .points = (uint64_t)(uintptr_t)&val,
				       .count = 1};
	if (ra == 0) {
		/* A holds the point: nothing of it can complete while its gate is closed */
		err = a_wait(c, t->timeline, 1, 0);
		int qerr = vmb_syncobj_query(c, &qa);
		a_gate_open(&g);
		ACHECK(a, err == -ETIME, "A's %s holds point 1 behind a closed gate: a poll of the point gives %d",
		       a_kinds[a_kind], err);
		ACHECK(a, qerr == 0 && val == 0, "A's %s holds point 1 behind a closed gate: the timeline's value is %llu (%d)",
		       a_kinds[a_kind], (unsigned long long)val, qerr);
		err = a_wait(c, t->timeline, 1, now_ns() + BOUND_NS);
		ACHECK(a, err == 0, "wait for point 1 (A's %s, its gate open): %d", a_kinds[a_kind], err);
		if (a_kind == 0) {
			for (int k = 0; k < 3; k++) {
				uint32_t i = k == 0 ? 0 : k == 1 ? TL_OPS - 1 : (uint32_t)arnd(a, TL_OPS), w = (uint32_t)arnd(a, PAGE_WORDS);
				uint64_t v = a_gpu_read(c, t->vm, TL_VA + 2ull * i * 4096 + w * 8ull, &err);
				ACHECK(a, err == 0 && v == tl_word(i % TL_BO_PAGES, w),
				       "point 1 (A's bind) complete, op %u's page reads %#llx (%d) in the GPU view", i,
				       (unsigned long long)v, err);
			}
		} else if (a_kind == 2) {
			uint64_t v = __atomic_load_n(&t->res[0], __ATOMIC_ACQUIRE);
			ACHECK(a, v == tag, "point 1 (A's exec) complete, its store reads %#llx, expected %#llx", (unsigned long long)v,
			       (unsigned long long)tag);
		}
		uint64_t done = 0;
		struct vmb_syncobj_array qd = {.handles = (uint64_t)(uintptr_t)&done_a, .points = (uint64_t)(uintptr_t)&done,
					       .count = 1};
		err = vmb_syncobj_query(c, &qd);
		ACHECK(a, err == 0 && done == 1, "point 1 (A's %s) complete, A's out-syncobj not signalled (%d)",
		       a_kinds[a_kind], err);
		if (a_kind == 0)
			TRY(a_bind1(a, c, t->vm, op_unmap(TL_VA, 2ull * TL_OPS * 4096), "unmap the round's bind"));
	} else {
		/* B holds it: a wait returns (at once for a CPU signal); A's call changed nothing */
		a->events++;
		a_gate_open(&g);
		err = a_wait(c, t->timeline, 1, now_ns() + BOUND_NS);
		ACHECK(a, err == 0, "wait for point 1 (B's %s): %d", b_kinds[t->b_kind], err);
		if (a_kind == 0) {
			uint64_t v = a_gpu_read(c, t->vm, TL_VA, &err);
			ACHECK(a, err == -EFAULT, "A's bind was refused, its first page reads %#llx (%d)", (unsigned long long)v, err);
		}
	}
	if (t->b_kind == 1 && rb == 0) {
		err = a_wait(c, t->done_b, 0, now_ns() + BOUND_NS);
		ACHECK(a, err == 0, "B's barrier: %d", err);
	}
	err = vmb_syncobj_query(c, &qa);
	ACHECK(a, err == 0 && val == 1, "point 1 complete, the timeline's value is %llu (%d)", (unsigned long long)val, err);
	TRY(a_destroy_syncobj(a, c, g.h));
	TRY(a_destroy_syncobj(a, c, done_a));
	TRY(a_destroy_syncobj(a, c, t->done_b));
	return a_destroy_syncobj(a, c, t->timeline);
}

static void tl_fini(struct adv *a)
{
	struct tl *t = a->priv;
	if (!t)
		return;
	if (t->eq) {
		struct vmb_exec_queue_destroy d = {.exec_queue_id = t->eq};
		vmb_exec_queue_destroy(t->c, &d);
	}
	if (t->vm) {
		adv_doing(a, "vmb_vm_destroy");
		struct vmb_vm_destroy d = {.vm_id = t->vm};
		vmb_vm_destroy(t->c, &d);
		adv_done(a);
	}
	uint32_t bos[3] = {t->bo, t->cmd_bo, t->res_bo};
	for (int i = 0; i < 3; i++) {
		struct vmb_bo_destroy d = {.handle = bos[i]};
		if (bos[i])
			vmb_bo_destroy(t->c, &d);
	}
	free(t);
}

/* ---- 3. CPU writes during PREFETCH: a BO's contents are never lost ----
 *
 * Attacks: a move of a BO between regions that copies its contents and then re-points the CPU
 * mapping, dropping what the CPU wrote in between (issue 11, item 4). On a client of its own
 * (a PREFETCH waits for every pending bind of its device: beside the workers it would wait for
 * theirs), a writer thread writes passes of an increasing counter through the CPU pointer of a
 * 1024-word BO (VRAM or SYSTEM) while this thread PREFETCHes it to the other region, a few
 * moves a round. Checks, after joining the writer: every word holds the last pass's value, in
 * the CPU view and in the GPU view (through the vm's page tables), and the BO is where the last
 * move put it. (The writer stores with relaxed atomics: under ThreadSanitizer a library that
 * copies the pages while the CPU writes is reported as a race.)
 */
#define PF_WORDS 1024u
#define PF_SIZE (PF_WORDS * 8ull)
#define PF_VA (1ull << 32)

struct pf {
	struct vmb_client *c;
	uint32_t vm, bo, region;
	uint64_t *p;
	atomic_bool stop;
	atomic_ullong pass; /* the last complete pass */
};

static uint64_t pf_word(uint64_t pass, uint32_t i) { return pass << 16 | i; }

static void *pf_writer(void *arg)
{
	struct pf *f = arg;
	uint64_t k = atomic_load(&f->pass);
	while (!atomic_load_explicit(&f->stop, memory_order_relaxed)) {
		k++;
		for (uint32_t i = 0; i < PF_WORDS; i++)
			__atomic_store_n(&f->p[i], pf_word(k, i), __ATOMIC_RELAXED);
		atomic_store(&f->pass, k);
	}
	return NULL;
}

static bool pf_setup(struct adv *a)
{
	struct pf *f = a->priv = calloc(1, sizeof(struct pf));
	ACHECK(a, f, "out of memory");
	struct vmb_client_opts o = {.vram_size = 32 * MiB, .system_size = 32 * MiB};
	int err = vmb_client_open("soft:2", &o, &f->c);
	ACHECK(a, err == 0, "client open: %d", err);
	a->event_name = "moves";
	TRY(a_vm(a, f->c, 0, &f->vm));
	TRY(a_bo(a, f->c, PF_SIZE, VMB_PLACE_VRAM | VMB_PLACE_SYSTEM, &f->bo));
	struct vmb_bo_mmap m = {.handle = f->bo};
	err = vmb_bo_mmap(f->c, &m);
	ACHECK(a, err == 0, "mmap: %d", err);
	f->p = (uint64_t *)(uintptr_t)m.ptr;
	for (uint32_t i = 0; i < PF_WORDS; i++)
		f->p[i] = pf_word(0, i); /* pass 0: what a round whose writer wrote nothing finds */
	TRY(a_bind1(a, f->c, f->vm, op_map(f->bo, 0, PF_VA, PF_SIZE, 0), "map the BO"));
	struct vmb_bo_query bq = {.handle = f->bo};
	err = vmb_bo_query(f->c, &bq);
	ACHECK(a, err == 0, "BO query: %d", err);
	f->region = bq.region;
	return true;
}

static bool pf_round(struct adv *a)
{
	struct pf *f = a->priv;
	atomic_store(&f->stop, false);
	pthread_t th;
	int err = pthread_create(&th, NULL, pf_writer, f);
	ACHECK(a, err == 0, "pthread_create: %d", err);
	bool ok = true;
	for (int m = 1 + (int)arnd(a, 4); m > 0 && ok; m--) {
		uint32_t to = f->region == VMB_REGION_VRAM ? VMB_REGION_SYSTEM : VMB_REGION_VRAM;
		adv_doing(a, "PREFETCH while the CPU writes");
		err = __bind1(f->c, f->vm, op_prefetch(PF_VA, PF_SIZE, to));
		adv_done(a);
		if (err)
			ok = afail(a, __LINE__, "PREFETCH to region %u: %d", to, err);
		f->region = to;
		a->events++;
	}
	atomic_store(&f->stop, true);
	adv_doing(a, "joining the writer");
	pthread_join(th, NULL);
	adv_done(a);
	TRY(ok);
	uint64_t last = atomic_load(&f->pass);
	struct vmb_bo_query bq = {.handle = f->bo};
	err = vmb_bo_query(f->c, &bq);
	ACHECK(a, err == 0 && bq.region == f->region, "the BO is in region %u (%d), moved to %u", bq.region, err, f->region);
	uint32_t bad = 0, first = 0;
	for (uint32_t i = 0; i < PF_WORDS; i++)
		if (f->p[i] != pf_word(last, i) && !bad++)
			first = i;
	ACHECK(a, !bad, "CPU view after moves while the CPU wrote: %u of %u words lost the last write (pass %llu), the "
	       "first word %u holds %#llx",
	       bad, PF_WORDS, (unsigned long long)last, first, (unsigned long long)f->p[first]);
	uint64_t buf[PF_WORDS];
	err = __gpu_rw(f->c, f->vm, PF_VA, buf, PF_SIZE, false);
	ACHECK(a, err == 0, "GPU view read: %d", err);
	for (uint32_t i = 0; i < PF_WORDS; i++)
		if (buf[i] != pf_word(last, i) && !bad++)
			first = i;
	ACHECK(a, !bad, "GPU view after moves while the CPU wrote: %u of %u words differ from the last write (pass %llu), "
	       "the first word %u holds %#llx",
	       bad, PF_WORDS, (unsigned long long)last, first, (unsigned long long)buf[first]);
	return true;
}

static void pf_fini(struct adv *a)
{
	struct pf *f = a->priv;
	if (!f)
		return;
	if (f->c && !a->err[0]) { /* after a failure, a thread may still be inside the library */
		adv_doing(a, "vmb_client_close");
		vmb_client_close(f->c);
		adv_done(a);
	}
	free(f);
}

/* ---- 4. long commands: the job timeout and time slices hold for any command ----
 *
 * Attacks: a command whose work is unbounded (FILL or COPY of terabytes of scratch, of a 64 GiB
 * NULL mapping once or 32 times in one buffer, a minute of DELAY) running to its end under the
 * device lock, past the job timeout (issue 11, item 1). On a client of its own: the job timeout
 * is a device's (a client option); this one's is LONG_TIMEOUT_MS, while the workers keep 30 s
 * for theirs, so its BO create and small execs stand for the rest of the device's users. Each
 * round one long command on a new exec queue of compute engine 0; while it runs: a BO create
 * (the device lock), a small exec on a queue of compute engine 1 (another engine) and one on
 * another queue of compute engine 0 (time slices), each within HANG_NS / BOUND_NS; now and then
 * its queue is destroyed meanwhile. Checks: its fence signals within LONG_BOUND_NS; the queue is
 * banned with -ETIMEDOUT (or, destroyed, its fence signalled all the same).
 */
#define LONG_TIMEOUT_MS 250
#define LONG_BOUND_NS (20 * SEC)
#define LONG_CMD_VA (1ull << 32)
#define LONG_RES_VA (2ull << 32)
#define LONG_NULL_VA (1ull << 37)
#define LONG_NULL_SIZE (64 * GiB) /* its page tables' split reserve: 128 MiB of the 256 MiB pool */
#define LONG_REPEAT 32u           /* commands of one kind in a buffer: work that fits one slice of 64 */
#define LONG_PROBE_WORD 256u      /* the probes' command slots (16 words each) follow the long buffer */

struct longcmd {
	struct vmb_client *c;
	uint32_t vm, cmd_bo, res_bo, q_other, q_same;
	uint64_t *cmd, *res;
};

static bool long_setup(struct adv *a)
{
	struct longcmd *l = a->priv = calloc(1, sizeof(struct longcmd));
	ACHECK(a, l, "out of memory");
	struct vmb_client_opts o = {.vram_size = 32 * MiB, .system_size = 32 * MiB, .job_timeout_ms = LONG_TIMEOUT_MS};
	int err = vmb_client_open("soft:3", &o, &l->c);
	ACHECK(a, err == 0, "client open: %d", err);
	a->event_name = "probes";
	TRY(a_vm(a, l->c, VMB_VM_CREATE_SCRATCH_PAGE, &l->vm));
	TRY(a_bo(a, l->c, 4096, VMB_PLACE_SYSTEM, &l->cmd_bo));
	TRY(a_bo(a, l->c, 4096, VMB_PLACE_SYSTEM, &l->res_bo));
	struct vmb_bo_mmap m = {.handle = l->cmd_bo};
	err = vmb_bo_mmap(l->c, &m);
	ACHECK(a, err == 0, "mmap: %d", err);
	l->cmd = (uint64_t *)(uintptr_t)m.ptr;
	m = (struct vmb_bo_mmap){.handle = l->res_bo};
	err = vmb_bo_mmap(l->c, &m);
	ACHECK(a, err == 0, "mmap: %d", err);
	l->res = (uint64_t *)(uintptr_t)m.ptr;
	TRY(a_bind1(a, l->c, l->vm, op_map(l->cmd_bo, 0, LONG_CMD_VA, 4096, VMB_BIND_FLAG_READONLY), "map the command BO"));
	TRY(a_bind1(a, l->c, l->vm, op_map(l->res_bo, 0, LONG_RES_VA, 4096, 0), "map the results BO"));
	TRY(a_bind1(a, l->c, l->vm, op_null(LONG_NULL_VA, LONG_NULL_SIZE), "a NULL mapping of 64 GiB"));
	struct vmb_exec_queue_create ec = {.vm_id = l->vm,
					   .engine = {.engine_class = VMB_ENGINE_CLASS_COMPUTE, .engine_instance = 1}};
	err = vmb_exec_queue_create(l->c, &ec);
	ACHECK(a, err == 0, "exec queue create: %d", err);
	l->q_other = ec.exec_queue_id;
	ec.engine.engine_instance = 0;
	err = vmb_exec_queue_create(l->c, &ec);
	ACHECK(a, err == 0, "exec queue create: %d", err);
	l->q_same = ec.exec_queue_id;
	return true;
}

/* A small exec (a store) on @q, from command slot @slot: done within BOUND_NS, without error. */
static bool long_probe_exec(struct adv *a, struct longcmd *l, uint32_t q, uint32_t slot, const char *what,
			    const char *kind)
{
	uint64_t tag = 0x4c00000000000000ull | (uint64_t)slot << 40 | a->rounds;
	uint32_t n = 0, so = 0;
	uint64_t *cmd = l->cmd + LONG_PROBE_WORD + slot * 16;
	vmb_cmd_store64(cmd, &n, LONG_RES_VA + slot * 8ull, tag);
	vmb_cmd_end(cmd, &n);
	TRY(a_syncobj(a, l->c, 0, &so));
	struct vmb_sync sy = sync_out(so);
	struct vmb_exec e = {.exec_queue_id = q, .address = LONG_CMD_VA + (LONG_PROBE_WORD + slot * 16) * 8ull,
			     .num_syncs = 1, .syncs = (uint64_t)(uintptr_t)&sy};
	adv_doing(a, what);
	int err = vmb_exec(l->c, &e);
	adv_done(a);
	ACHECK(a, err == 0, "%s (a %s runs): %d", what, kind, err);
	err = a_wait(l->c, so, 0, now_ns() + BOUND_NS);
	ACHECK(a, err == 0, "%s: not done within %lld s while a %s runs (%d)", what, (long long)(BOUND_NS / SEC), kind, err);
	uint64_t v = __atomic_load_n(&l->res[slot], __ATOMIC_ACQUIRE);
	ACHECK(a, v == tag, "%s (a %s runs): its store reads %#llx, expected %#llx", what, kind, (unsigned long long)v,
	       (unsigned long long)tag);
	a->events++;
	return a_destroy_syncobj(a, l->c, so);
}

static bool long_round(struct adv *a)
{
	struct longcmd *l = a->priv;
	static const char *const kinds[] = {"FILL of 64 TiB of scratch",         "COPY of 32 TiB of scratch",
					    "FILL of a 64 GiB NULL mapping",     "32 FILLs of a 64 GiB NULL mapping",
					    "32 COPYs of a 64 GiB NULL mapping", "DELAY of 60 s"};
	int kind = (int)arnd(a, 6), err;
	uint32_t n = 0, so = 0, q;
	switch (kind) {
	case 0:
		vmb_cmd_fill(l->cmd, &n, 1ull << 40, 1ull << 46, 0x5a5a5a5a);
		break;
	case 1:
		vmb_cmd_copy(l->cmd, &n, 1ull << 46, 1ull << 40, 1ull << 45);
		break;
	case 2:
		vmb_cmd_fill(l->cmd, &n, LONG_NULL_VA, LONG_NULL_SIZE, 0x5a5a5a5a);
		break;
	case 3:
		for (uint32_t i = 0; i < LONG_REPEAT; i++)
			vmb_cmd_fill(l->cmd, &n, LONG_NULL_VA, LONG_NULL_SIZE, 0x5a5a5a5a);
		break;
	case 4:
		for (uint32_t i = 0; i < LONG_REPEAT; i++)
			vmb_cmd_copy(l->cmd, &n, 1ull << 40, LONG_NULL_VA, LONG_NULL_SIZE);
		break;
	default:
		vmb_cmd_delay(l->cmd, &n, 60 * SEC);
		break;
	}
	vmb_cmd_end(l->cmd, &n);
	struct vmb_exec_queue_create ec = {.vm_id = l->vm,
					   .engine = {.engine_class = VMB_ENGINE_CLASS_COMPUTE, .engine_instance = 0}};
	err = vmb_exec_queue_create(l->c, &ec);
	ACHECK(a, err == 0, "exec queue create: %d", err);
	q = ec.exec_queue_id;
	TRY(a_syncobj(a, l->c, 0, &so));
	struct vmb_sync sy = sync_out(so);
	struct vmb_exec e = {.exec_queue_id = q, .address = LONG_CMD_VA, .num_syncs = 1, .syncs = (uint64_t)(uintptr_t)&sy};
	int64_t t0 = now_ns();
	err = vmb_exec(l->c, &e);
	ACHECK(a, err == 0, "exec of a %s: %d", kinds[kind], err);

	/* while it runs (mostly: it starts on the engine's thread), the device serves everything else */
	usleep((useconds_t)arnd(a, 50) * 1000);
	uint32_t bo = 0;
	TRY(a_bo(a, l->c, 4096, VMB_PLACE_SYSTEM, &bo)); /* marked: a hang is the watchdog's */
	TRY(a_destroy_bo(a, l->c, bo));
	TRY(long_probe_exec(a, l, l->q_other, 1, "a small exec on compute engine 1", kinds[kind]));
	TRY(long_probe_exec(a, l, l->q_same, 2, "a small exec on another queue of compute engine 0", kinds[kind]));
	bool destroyed = arnd(a, 4) == 0;
	if (destroyed) {
		struct vmb_exec_queue_destroy d = {.exec_queue_id = q};
		adv_doing(a, "destroying the exec queue of a long command");
		err = vmb_exec_queue_destroy(l->c, &d);
		adv_done(a);
		ACHECK(a, err == 0, "exec queue destroy: %d", err);
	}

	err = a_wait(l->c, so, 0, t0 + LONG_BOUND_NS);
	ACHECK(a, err == 0, "a %s on a device with a %d ms job timeout%s: its fence has not signalled after %lld s (%d)",
	       kinds[kind], LONG_TIMEOUT_MS, destroyed ? ", its queue destroyed" : "", (long long)(LONG_BOUND_NS / SEC), err);
	if (!destroyed) {
		struct vmb_exec_queue_query qq = {.exec_queue_id = q};
		err = vmb_exec_queue_query(l->c, &qq);
		ACHECK(a, err == 0, "exec queue query: %d", err);
		ACHECK(a, (qq.flags & VMB_EXEC_QUEUE_BANNED) && qq.error == -ETIMEDOUT,
		       "a %s with a %d ms job timeout ended after %.2f s with queue flags %#x, error %d (expected banned, "
		       "-ETIMEDOUT)",
		       kinds[kind], LONG_TIMEOUT_MS, (double)(now_ns() - t0) / SEC, qq.flags, qq.error);
		struct vmb_exec_queue_destroy d = {.exec_queue_id = q};
		err = vmb_exec_queue_destroy(l->c, &d);
		ACHECK(a, err == 0, "exec queue destroy: %d", err);
	}
	return a_destroy_syncobj(a, l->c, so);
}

static void long_fini(struct adv *a)
{
	struct longcmd *l = a->priv;
	if (!l)
		return;
	if (l->c && !a->err[0]) { /* after a failure, a thread may still be inside the library */
		adv_doing(a, "vmb_client_close");
		vmb_client_close(l->c);
		adv_done(a);
	}
	free(l);
}

/* ---- running them ---- */

static const struct {
	const char *name;
	unsigned int bit;
	bool (*setup)(struct adv *a);
	bool (*round)(struct adv *a);
	void (*fini)(struct adv *a);
} adversaries[ADV_MAX] = {
	{"reuse", ADV_REUSE, reuse_setup, reuse_round, reuse_fini},
	{"timeline", ADV_TIMELINE, tl_setup, tl_round, tl_fini},
	{"prefetch", ADV_PREFETCH, pf_setup, pf_round, pf_fini},
	{"long", ADV_LONG, long_setup, long_round, long_fini},
};

/* STRESS_ADVERSARIES: a comma-separated list of names; unset: all; empty: none. */
static unsigned int adversaries_selected(void)
{
	const char *e = getenv("STRESS_ADVERSARIES");
	if (!e)
		return ADV_ALL;
	unsigned int mask = 0;
	while (*e) {
		size_t n = strcspn(e, ",");
		bool known = false;
		for (int i = 0; i < ADV_MAX; i++)
			if (n == strlen(adversaries[i].name) && !strncmp(e, adversaries[i].name, n)) {
				mask |= adversaries[i].bit;
				known = true;
			}
		if (n && !known)
			fail_msg("STRESS_ADVERSARIES: unknown adversary '%.*s' (reuse, timeline, prefetch, long)", (int)n, e);
		e += n + (e[n] == ',');
	}
	return mask;
}

static void *adv_main(void *arg)
{
	struct adv *a = arg;
	struct stress *s = a->s;
	bool ok = a->setup(a);
	while (ok && !atomic_load(&s->failed) && now_ns() < s->deadline) {
		ok = a->round(a);
		if (ok)
			a->rounds++;
	}
	a->fini(a);
	atomic_store(&a->exited, true);
	return NULL;
}

static void print_failures(struct stress *s)
{
	for (int t = 0; t < WORKERS; t++)
		if (s->w[t].err[0])
			print_error("%s\n", s->w[t].err);
	for (int i = 0; i < s->nadv; i++)
		if (s->adv[i].err[0])
			print_error("%s\n", s->adv[i].err);
}

/* The main thread's watchdog: returns once every worker and adversary has exited; a marked call
 * running for HANG_NS, or a thread still running GRACE_NS after the deadline, is a hang: it
 * says which, and aborts (a thread stuck in the library cannot be joined). */
static void watch(struct stress *s)
{
	for (;;) {
		bool all = true;
		int64_t now = now_ns();
		for (int t = 0; t < WORKERS; t++)
			all &= atomic_load(&s->w[t].exited);
		for (int i = 0; i < s->nadv; i++) {
			struct adv *a = &s->adv[i];
			const char *what = atomic_load(&a->doing);
			int64_t since = atomic_load(&a->since);
			all &= atomic_load(&a->exited);
			if (what && now - since > HANG_NS) {
				print_failures(s);
				print_error("adversary %s, round %lu: %s has not returned after %.1f s: a hang\n", a->name,
					    a->rounds, what, (double)(now - since) / SEC);
				fflush(NULL);
				abort();
			}
		}
		if (all)
			return;
		if (now > s->deadline + GRACE_NS) {
			print_failures(s);
			for (int t = 0; t < WORKERS; t++)
				if (!atomic_load(&s->w[t].exited))
					print_error("worker %d still running %lld s after the deadline: a hang\n", t,
						    (long long)(GRACE_NS / SEC));
			for (int i = 0; i < s->nadv; i++)
				if (!atomic_load(&s->adv[i].exited))
					print_error("adversary %s still running %lld s after the deadline: a hang\n",
						    s->adv[i].name, (long long)(GRACE_NS / SEC));
			fflush(NULL);
			abort();
		}
		usleep(5000);
	}
}

/* ---- the test ---- */

static uint32_t exec_queue_new(struct vmb_client *c, uint32_t vm, uint16_t cls, uint16_t inst)
{
	struct vmb_exec_queue_create a = {.vm_id = vm, .engine = {.engine_class = cls, .engine_instance = inst}};
	assert_int_equal(vmb_exec_queue_create(c, &a), 0);
	return a.exec_queue_id;
}

static double run_seconds(void)
{
	const char *e = getenv("STRESS_SECONDS");
	double v = e ? strtod(e, NULL) : 3.0;
	return v > 0 ? v : 3.0;
}

static void setup_device(struct stress *s)
{
	struct vmb_client_opts o = {.vram_size = 256 * MiB, .system_size = 128 * MiB, .job_timeout_ms = 30000};
	assert_int_equal(vmb_client_open("soft", &o, &s->c), 0);
	s->vm = vm_new(s->c, 0);
	const uint32_t placements[NBOS] = {VMB_PLACE_VRAM, VMB_PLACE_SYSTEM, VMB_PLACE_VRAM | VMB_PLACE_SYSTEM};
	for (unsigned int b = 0; b < NBOS; b++) {
		s->bos[b] = bo_new(s->c, BO_SIZE, placements[b]);
		uint64_t *p = bo_cpu(s->c, s->bos[b]);
		for (uint64_t i = 0; i < BO_SIZE / 8; i++)
			p[i] = pattern(b, i / PAGE_WORDS, i % PAGE_WORDS);
	}
	s->cmd_bo = bo_new(s->c, CMD_SIZE, VMB_PLACE_VRAM);
	s->res_bo = bo_new(s->c, RES_SIZE, VMB_PLACE_SYSTEM);
	s->cmd = bo_cpu(s->c, s->cmd_bo);
	s->res = bo_cpu(s->c, s->res_bo);
	bind1(s->c, s->vm, op_map(s->cmd_bo, 0, CMD_VA, CMD_SIZE, VMB_BIND_FLAG_READONLY));
	bind1(s->c, s->vm, op_map(s->res_bo, 0, RES_VA, RES_SIZE, 0));
	for (int i = 0; i < BIND_QUEUES; i++)
		s->bq[i] = queue_new(s->c, s->vm);
	s->eq[0] = exec_queue_new(s->c, s->vm, VMB_ENGINE_CLASS_COMPUTE, 0);
	s->eq[1] = exec_queue_new(s->c, s->vm, VMB_ENGINE_CLASS_COMPUTE, 1);
	s->eq[2] = exec_queue_new(s->c, s->vm, VMB_ENGINE_CLASS_COPY, 0);
	s->eq[3] = exec_queue_new(s->c, s->vm, VMB_ENGINE_CLASS_COMPUTE, 0);
}

/* After the run, from the main thread: the worker's checks, and its failure if any. */
static void expect_ok(struct worker *w, bool ok)
{
	if (!ok)
		fail_msg("%s", w->err);
}

static void final_checks(struct stress *s, uint64_t *execs)
{
	/* every bind queue drained: a barrier on each, waited for with a user fence */
	static uint64_t done[BIND_QUEUES];
	for (int i = 0; i < BIND_QUEUES; i++) {
		done[i] = 0;
		struct vmb_sync sy = sync_ufence(&done[i], 1);
		bind_async(s->c, s->vm, s->bq[i], NULL, 0, &sy, 1);
	}
	for (int i = 0; i < BIND_QUEUES; i++)
		ufence_wait(s->c, &done[i], 1);
	validate_client(s->c);
	/* no vm banned: no commit failed (validate does not compare a banned vm's page tables) */
	assert_int_equal(vmb_commit_failed_count(), 0);

	/* the exec queues: none banned, every exec submitted to each completed without error */
	*execs = 0;
	for (int qi = 0; qi < EXEC_QUEUES; qi++) {
		struct vmb_exec_queue_query qq = {.exec_queue_id = s->eq[qi]};
		assert_int_equal(vmb_exec_queue_query(s->c, &qq), 0);
		if (qq.flags || qq.error)
			fail_msg("exec queue %d banned: error %d, fault at %#llx", qi, qq.error,
				 (unsigned long long)qq.fault_addr);
		assert_int_equal(qq.jobs_done, atomic_load(&s->submitted[qi]));
		*execs += qq.jobs_done;
	}
	uint64_t sum = 0;
	for (int t = 0; t < WORKERS; t++)
		sum += s->w[t].execs;
	assert_int_equal(*execs, sum);
	assert_int_equal(__atomic_load_n((uint64_t *)(s->res + RES_GLOBAL), __ATOMIC_ACQUIRE), sum);

	/* each slice against its model, once more, nothing pending anywhere */
	for (int t = 0; t < WORKERS; t++) {
		struct worker *w = &s->w[t];
		assert_int_equal(__atomic_load_n((uint64_t *)(s->res + (uint64_t)t * RES_AREA + RES_COUNTER), __ATOMIC_ACQUIRE),
				 w->execs);
		for (uint32_t p = 0; p < SLICE_PAGES; p++)
			expect_ok(w, check_page(w, p, true));
		expect_ok(w, check_mappings(w));
	}

	/* the mapping list, the statistics and the BOs' mapping counts agree */
	struct vmb_vm_query_mappings q = {.vm_id = s->vm};
	assert_int_equal(vmb_vm_query_mappings(s->c, &q), 0);
	struct vmb_mapping_info *m = calloc(q.num_mappings, sizeof(*m));
	q.mappings = (uint64_t)(uintptr_t)m;
	assert_int_equal(vmb_vm_query_mappings(s->c, &q), 0);
	uint64_t bytes = 0, pages = 0;
	uint32_t per_bo[NBOS] = {0};
	for (uint32_t i = 0; i < q.num_mappings; i++) {
		bytes += m[i].range;
		for (int b = 0; b < NBOS; b++)
			per_bo[b] += m[i].bo_handle == s->bos[b];
	}
	for (int t = 0; t < WORKERS; t++)
		for (uint32_t p = 0; p < SLICE_PAGES; p++)
			pages += s->w[t].model[p].kind != PG_NONE;
	assert_int_equal(bytes, CMD_SIZE + RES_SIZE + pages * 4096);
	struct vmb_vm_stats st = vm_stats(s->c, s->vm);
	assert_int_equal(st.num_mappings, q.num_mappings);
	assert_int_equal(st.bytes_mapped, bytes);
	for (int b = 0; b < NBOS; b++) {
		struct vmb_bo_query bq = {.handle = s->bos[b]};
		assert_int_equal(vmb_bo_query(s->c, &bq), 0);
		assert_int_equal(bq.vm_mappings, per_bo[b]);
	}
	free(m);
}

static void teardown_device(struct stress *s)
{
	/* unmap every slice in one asynchronous array, then tear down explicitly */
	struct vmb_bind_op ops[WORKERS];
	for (int t = 0; t < WORKERS; t++)
		ops[t] = op_unmap(SLICE_VA + (uint64_t)t * SLICE, SLICE);
	static uint64_t unmapped;
	unmapped = 0;
	struct vmb_sync sy = sync_ufence(&unmapped, 1);
	bind_async(s->c, s->vm, s->bq[0], ops, WORKERS, &sy, 1);
	ufence_wait(s->c, &unmapped, 1);
	assert_int_equal(vm_stats(s->c, s->vm).num_mappings, 2);
	for (int b = 0; b < NBOS; b++) {
		struct vmb_bo_query bq = {.handle = s->bos[b]};
		assert_int_equal(vmb_bo_query(s->c, &bq), 0);
		assert_int_equal(bq.vm_mappings, 0);
	}
	validate_client(s->c);
	for (int qi = 0; qi < EXEC_QUEUES; qi++) {
		struct vmb_exec_queue_destroy d = {.exec_queue_id = s->eq[qi]};
		assert_int_equal(vmb_exec_queue_destroy(s->c, &d), 0);
	}
	for (int i = 0; i < BIND_QUEUES; i++) {
		struct vmb_bind_queue_destroy d = {.vm_id = s->vm, .queue_id = s->bq[i]};
		assert_int_equal(vmb_bind_queue_destroy(s->c, &d), 0);
	}
	struct vmb_vm_destroy vd = {.vm_id = s->vm};
	assert_int_equal(vmb_vm_destroy(s->c, &vd), 0);
	validate_client(s->c);
	assert_int_equal(vmb_client_close(s->c), 0);
}

static void test_stress(void **state)
{
	(void)state;
	uint64_t seed = test_seed("stress");
	double secs = run_seconds();
	unsigned int sel = adversaries_selected();
	char names[64] = "";
	for (int i = 0; i < ADV_MAX; i++)
		if (sel & adversaries[i].bit)
			snprintf(names + strlen(names), sizeof(names) - strlen(names), "%s%s", names[0] ? "," : "",
				 adversaries[i].name);
	print_message("stress: %d workers, %d bind queues, %d exec queues, %.1f s (STRESS_SECONDS), adversaries: "
		      "%s (STRESS_ADVERSARIES)\n",
		      WORKERS, BIND_QUEUES, EXEC_QUEUES, secs, names[0] ? names : "none");
	struct stress *s = calloc(1, sizeof(*s));
	s->w = calloc(WORKERS, sizeof(*s->w));
	s->adv = calloc(ADV_MAX, sizeof(*s->adv));
	assert_non_null(s->w);
	assert_non_null(s->adv);
	setup_device(s);
	for (int i = 0; i < ADV_MAX; i++) {
		if (!(sel & adversaries[i].bit))
			continue;
		struct adv *a = &s->adv[s->nadv++];
		a->s = s;
		a->name = adversaries[i].name;
		a->setup = adversaries[i].setup;
		a->round = adversaries[i].round;
		a->fini = adversaries[i].fini;
		a->rng = rnd_next(&seed);
	}
	for (int t = 0; t < WORKERS; t++) {
		struct worker *w = &s->w[t];
		w->s = s;
		w->t = t;
		w->rng = rnd_next(&seed);
		w->gate_fd = -1;
		w->tl_bind = syncobj_new(s->c, VMB_SYNCOBJ_CREATE_TIMELINE);
		w->tl_exec = syncobj_new(s->c, VMB_SYNCOBJ_CREATE_TIMELINE);
	}

	/* no SA_RESTART: every interrupted wait returns -EINTR (where waits are interruptible) */
	struct sigaction sa = {.sa_handler = on_usr1}, old;
	sigemptyset(&sa.sa_mask);
	assert_int_equal(sigaction(SIGUSR1, &sa, &old), 0);
	atomic_store(&signals_handled, 0);
	int64_t t0 = now_ns();
	s->deadline = t0 + (int64_t)(secs * SEC);
	for (int t = 0; t < WORKERS; t++)
		assert_int_equal(pthread_create(&s->w[t].th, NULL, worker_main, &s->w[t]), 0);
	for (int i = 0; i < s->nadv; i++)
		assert_int_equal(pthread_create(&s->adv[i].th, NULL, adv_main, &s->adv[i]), 0);
	pthread_t sig;
	assert_int_equal(pthread_create(&sig, NULL, signaller, s), 0);
	watch(s); /* every thread has exited, or a hang aborted the test */
	for (int t = 0; t < WORKERS; t++)
		pthread_join(s->w[t].th, NULL);
	for (int i = 0; i < s->nadv; i++)
		pthread_join(s->adv[i].th, NULL);
	atomic_store(&s->stop_signals, true);
	pthread_join(sig, NULL);
	int64_t ran = now_ns() - t0;
	sigaction(SIGUSR1, &old, NULL);

	unsigned long tot[10] = {0};
	for (int t = 0; t < WORKERS; t++) {
		struct worker *w = &s->w[t];
		print_message("worker %d: %lu steps, %lu binds (%lu ops, %lu gated), %lu execs, %lu waits (%lu polls), "
			      "%lu probes, %lu checkpoints, %lu -EINTR restarts\n",
			      t, w->steps, w->binds, w->ops, w->gates, w->execs, w->waits, w->polls, w->probes,
			      w->checkpoints, w->eintr);
		unsigned long v[10] = {w->steps, w->binds, w->ops, w->gates, w->execs, w->waits, w->polls, w->probes,
				       w->checkpoints, w->eintr};
		for (int i = 0; i < 10; i++)
			tot[i] += v[i];
	}
	print_message("stress: %.2f s, %lu steps, %lu binds, %lu execs, %lu waits, %lu checkpoints; %lu signals "
		      "sent, %lu handled, %lu -EINTR restarts\n",
		      (double)ran / SEC, tot[0], tot[1], tot[4], tot[5], tot[8], s->signals_sent,
		      atomic_load(&signals_handled), tot[9]);
	for (int i = 0; i < s->nadv; i++) {
		struct adv *a = &s->adv[i];
		print_message("adversary %s: %lu rounds, %lu %s\n", a->name, a->rounds, a->events,
			      a->event_name ? a->event_name : "events");
	}
	print_failures(s);
	if (atomic_load(&s->failed)) {
		/* everything joined: nothing else to report but the failure */
		vmb_client_close(s->c);
		for (int t = 0; t < WORKERS; t++)
			free(s->w[t].dead);
		free(s->w);
		free(s->adv);
		free(s);
		fail_msg("a worker or an adversary failed (seed printed above: VMB_SEED replays its choices)");
	}
	for (int t = 0; t < WORKERS; t++)
		assert_true(s->w[t].checkpoints >= 1); /* at least the final one */

	uint64_t execs;
	final_checks(s, &execs);
	teardown_device(s);
	for (int t = 0; t < WORKERS; t++)
		free(s->w[t].dead);
	free(s->w);
	free(s->adv);
	free(s);
}

/* ---- validate while another thread creates and destroys syncobjs ---- */

struct churn {
	struct vmb_client *c;
	atomic_bool stop;
	int err;
};

static void *syncobj_churn(void *arg)
{
	struct churn *ch = arg;
	uint32_t h[64];
	while (!atomic_load(&ch->stop) && !ch->err) {
		for (int i = 0; i < 64 && !ch->err; i++) {
			struct vmb_syncobj_create a = {0};
			ch->err = vmb_syncobj_create(ch->c, &a);
			h[i] = a.handle;
		}
		for (int i = 0; i < 64 && !ch->err; i++) {
			struct vmb_syncobj_destroy d = {.handle = h[i]};
			ch->err = vmb_syncobj_destroy(ch->c, &d);
		}
	}
	return NULL;
}

/* Nothing pending: validate is 0, whatever another thread does to the syncobj table meanwhile
 * (the stress's checkpoints validate while other workers create and destroy syncobjs). */
static void test_validate_while_syncobjs_change(void **state)
{
	(void)state;
	/* a small device (validate's time goes to the tables) and a large syncobj table: its scan
	 * takes long enough for the churn to be caught in the middle */
	struct vmb_client_opts o = {.vram_size = 2 * MiB, .system_size = 64 * KiB, .pt_pool_size = 64 * KiB};
	struct churn ch = {0};
	assert_int_equal(vmb_client_open("soft", &o, &ch.c), 0);
	for (int i = 0; i < 30000; i++)
		syncobj_new(ch.c, 0);
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, syncobj_churn, &ch), 0);
	int bad = 0, first = 0;
	for (int i = 0; i < VALIDATES; i++) {
		struct vmb_client_validate v = {0};
		int err = vmb_client_validate(ch.c, &v);
		if (err && !bad++)
			first = err;
	}
	atomic_store(&ch.stop, true);
	pthread_join(th, NULL);
	if (bad || ch.err) {
		vmb_client_close(ch.c);
		fail_msg("%d of %d validates failed, the first with %d; syncobj calls: %d", bad, VALIDATES, first, ch.err);
	}
	validate_client(ch.c);
	assert_int_equal(vmb_client_close(ch.c), 0);
}

/* ---- two threads adding points to one timeline ---- */

#define HOG_VA (1ull << 32)
#define HOG_SIZE (2 * MiB)

struct tl_race {
	struct vmb_client *c;
	uint32_t vm, qb, tl, gate_b, done_b;
	pthread_barrier_t start, end;
	atomic_bool stop;
	int rb;
};

/* Holds the device lock now and then, so that two calls meet there after checking their points. */
static void *lock_hog(void *arg)
{
	struct tl_race *r = arg;
	static uint8_t buf[HOG_SIZE];
	while (!atomic_load(&r->stop)) {
		struct vmb_vm_access a = {.vm_id = r->vm, .addr = HOG_VA, .size = HOG_SIZE, .data = (uint64_t)(uintptr_t)buf};
		if (vmb_vm_access(r->c, &a))
			break;
		/* a pause: a mutex is not fair, and a hog that relocks at once starved the other
		 * threads (a round took ~40 ms on an idle 2-CPU machine instead of ~1 ms) */
		usleep(50);
	}
	return NULL;
}

static int barrier_point(struct vmb_client *c, uint32_t vm, uint32_t q, uint32_t tl, uint64_t point, uint32_t gate,
			 uint32_t done)
{
	struct vmb_sync s[3] = {sync_tl_out(tl, point), sync_in(gate), sync_out(done)};
	return __bind_async(c, vm, q, NULL, 0, s, 3);
}

static void *point_two(void *arg)
{
	struct tl_race *r = arg;
	for (;;) {
		pthread_barrier_wait(&r->start);
		if (atomic_load(&r->stop))
			break;
		r->rb = barrier_point(r->c, r->vm, r->qb, r->tl, 2, r->gate_b, r->done_b);
		pthread_barrier_wait(&r->end);
	}
	return NULL;
}

/*
 * Two threads submit barriers at the same time with out-points 1 (this thread) and 2 (the
 * other) of a fresh timeline, each behind its own gate. Point 1 may be refused (-EINVAL: 2 was
 * added first), never accepted after 2 was added: once both are accepted, opening the gate of
 * point 2 alone must leave the timeline's value at 0 (point 1 has not signalled).
 */
static void test_timeline_points_from_two_threads(void **state)
{
	(void)state;
	struct tl_race r = {.c = open_soft(64 * MiB, 64 * MiB)};
	r.vm = vm_new(r.c, 0);
	uint32_t qa = queue_new(r.c, r.vm);
	r.qb = queue_new(r.c, r.vm);
	bind1(r.c, r.vm, op_map(bo_new(r.c, HOG_SIZE, VMB_PLACE_SYSTEM), 0, HOG_VA, HOG_SIZE, 0));
	assert_int_equal(pthread_barrier_init(&r.start, NULL, 2), 0);
	assert_int_equal(pthread_barrier_init(&r.end, NULL, 2), 0);
	pthread_t hog, two;
	assert_int_equal(pthread_create(&hog, NULL, lock_hog, &r), 0);
	assert_int_equal(pthread_create(&two, NULL, point_two, &r), 0);
	int both = 0, refused = 0, bad_round = -1;
	uint64_t bad_value = 0;
	for (int round = 0; round < TL_ROUNDS && bad_round < 0; round++) {
		struct gate ga = gate_new(r.c), gb = gate_new(r.c);
		uint32_t done_a = syncobj_new(r.c, 0);
		r.tl = syncobj_new(r.c, VMB_SYNCOBJ_CREATE_TIMELINE);
		r.gate_b = gb.h;
		r.done_b = syncobj_new(r.c, 0);
		pthread_barrier_wait(&r.start);
		int ra = barrier_point(r.c, r.vm, qa, r.tl, 1, ga.h, done_a);
		pthread_barrier_wait(&r.end);
		assert_int_equal(r.rb, 0); /* nothing can be above 2 */
		if (ra == -EINVAL) {
			refused++;
		} else {
			assert_int_equal(ra, 0);
			both++;
			gate_open(&gb);
			syncobj_wait1(r.c, r.done_b);
			uint64_t v = 99;
			struct vmb_syncobj_array q = {.handles = (uint64_t)(uintptr_t)&r.tl, .points = (uint64_t)(uintptr_t)&v,
						      .count = 1};
			assert_int_equal(vmb_syncobj_query(r.c, &q), 0);
			if (v != 0) {
				bad_round = round;
				bad_value = v;
			}
		}
		if (ra) {
			gate_open(&gb);
			syncobj_wait1(r.c, r.done_b);
		}
		gate_open(&ga);
		if (!ra)
			syncobj_wait1(r.c, done_a);
		uint32_t hs[5] = {ga.h, gb.h, done_a, r.tl, r.done_b};
		for (int i = 0; i < 5; i++) {
			struct vmb_syncobj_destroy d = {.handle = hs[i]};
			assert_int_equal(vmb_syncobj_destroy(r.c, &d), 0);
		}
	}
	atomic_store(&r.stop, true);
	pthread_barrier_wait(&r.start);
	pthread_join(two, NULL);
	pthread_join(hog, NULL);
	print_message("timeline race: %d rounds with both points accepted, %d with point 1 refused\n", both, refused);
	if (bad_round >= 0) {
		vmb_client_close(r.c);
		fail_msg("round %d: points 1 and 2 both accepted, point 2 signalled, point 1 not: the timeline's "
			 "value is %llu (point 1 was added after point 2)",
			 bad_round, (unsigned long long)bad_value);
	}
	validate_client(r.c);
	assert_int_equal(vmb_client_close(r.c), 0);
	pthread_barrier_destroy(&r.start);
	pthread_barrier_destroy(&r.end);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stress),
		cmocka_unit_test(test_validate_while_syncobjs_change),
		cmocka_unit_test(test_timeline_points_from_two_threads),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
