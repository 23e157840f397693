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
 * Meanwhile a mover thread PREFETCHes, through a vm of its own, the VRAM|SYSTEM patterned BO
 * (which the workers map and their execs read) and a small BO back and forth between VRAM and
 * SYSTEM, while a writer thread writes a counter pattern into the small BO through its CPU
 * pointer (reading each word back first): no write is lost, and at the end the CPU and GPU
 * views of the small BO hold the last values written (the workers' checks cover the big one).
 *
 * STRESS_SECONDS sets the run time (default 3 s: what CI runs, also under ThreadSanitizer,
 * where waits are not interruptible). The long run, by hand:
 *     STRESS_SECONDS=600 build/tests/test-stress
 * VMB_SEED replays a seed (each worker's choices; the interleaving still varies).
 */
#include "lib/harness.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <time.h>
#include <unistd.h>

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
 * vm's bind throttle (1024 pending jobs, vm/vm.h) would make a bind call wait: every worker
 * waits for all its binds each CHECK_EVERY steps (at most one bind job a step, plus a barrier
 * per bind queue), so it is never reached. */
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

/* ---- PREFETCH while the CPU writes: a mover and a writer, on a vm of their own ---- */

#define MOVE_VA (1ull << 30)
#define MOVE_WBO_VA (MOVE_VA + BO_SIZE)
#define MOVE_WBO_SIZE (64 * KiB)
#define MOVE_WORDS 1024u
#define MOVE_STRIDE (MOVE_WBO_SIZE / 8 / MOVE_WORDS)

struct mover {
	struct vmb_client *c;
	uint32_t vm, wbo;
	uint64_t *cpu;
	int64_t deadline;
	atomic_uint moves;
	atomic_bool stop; /* the mover is done: the writer ends its round and stops */
	int err;          /* the mover's first failed PREFETCH */
	uint64_t last, lost; /* the writer's last value, words it found older than written */
};

static void *mover_main(void *arg)
{
	struct mover *m = arg;
	for (unsigned int i = 0; now_ns() < m->deadline; i++) {
		uint32_t to = i % 2 ? VMB_REGION_VRAM : VMB_REGION_SYSTEM;
		int r;
		while ((r = __bind1(m->c, m->vm, op_prefetch(MOVE_VA, MOVE_WBO_VA + MOVE_WBO_SIZE - MOVE_VA, to))) == -EINTR)
			;
		if (r) {
			m->err = r;
			break;
		}
		atomic_fetch_add(&m->moves, 1);
	}
	atomic_store(&m->stop, true);
	return NULL;
}

static void *writer_main(void *arg)
{
	struct mover *m = arg;
	uint64_t v = 0;
	while (!atomic_load(&m->stop)) {
		v++;
		for (unsigned int i = 0; i < MOVE_WORDS; i++) {
			uint64_t *w = &m->cpu[i * MOVE_STRIDE];
			if (__atomic_load_n(w, __ATOMIC_RELAXED) != v - 1)
				m->lost++;
			__atomic_store_n(w, v, __ATOMIC_RELAXED);
		}
	}
	m->last = v;
	return NULL;
}

static void mover_setup(struct stress *s, struct mover *m)
{
	m->c = s->c;
	m->vm = vm_new(s->c, 0);
	m->wbo = bo_new(s->c, MOVE_WBO_SIZE, VMB_PLACE_VRAM | VMB_PLACE_SYSTEM);
	m->cpu = bo_cpu(s->c, m->wbo);
	m->deadline = s->deadline;
	bind1(s->c, m->vm, op_map(s->bos[2], 0, MOVE_VA, BO_SIZE, VMB_BIND_FLAG_READONLY));
	bind1(s->c, m->vm, op_map(m->wbo, 0, MOVE_WBO_VA, MOVE_WBO_SIZE, 0));
}

/* After both joined: nothing lost, both views hold the last values; then the vm goes. */
static void mover_check(struct stress *s, struct mover *m)
{
	static uint64_t gpu[MOVE_WBO_SIZE / 8];
	uint64_t stale_cpu = 0, stale_gpu = 0;
	assert_int_equal(__gpu_rw(s->c, m->vm, MOVE_WBO_VA, gpu, MOVE_WBO_SIZE, false), 0);
	for (unsigned int i = 0; i < MOVE_WORDS; i++) {
		stale_cpu += m->cpu[i * MOVE_STRIDE] != m->last;
		stale_gpu += gpu[i * MOVE_STRIDE] != m->last;
	}
	print_message("stress: %u PREFETCHes of the patterned and the written BO, %llu CPU write rounds; "
		      "%llu writes lost, %llu/%llu words stale in the CPU/GPU view\n", atomic_load(&m->moves),
		      (unsigned long long)m->last, (unsigned long long)m->lost, (unsigned long long)stale_cpu,
		      (unsigned long long)stale_gpu);
	assert_int_equal(m->err, 0);
	assert_int_equal(m->lost, 0);
	assert_int_equal(stale_cpu, 0);
	assert_int_equal(stale_gpu, 0);
	assert_true(atomic_load(&m->moves) >= 1);
	for (unsigned int i = 0; i < MOVE_WORDS; i += 97)
		assert_int_equal(gpu_read64(s->c, m->vm, MOVE_VA + i * 4096 + 8), pattern(2, i, 1));
	struct vmb_vm_destroy d = {.vm_id = m->vm};
	assert_int_equal(vmb_vm_destroy(s->c, &d), 0);
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
	print_message("stress: %d workers, %d bind queues, %d exec queues, %.1f s (STRESS_SECONDS)\n", WORKERS,
		      BIND_QUEUES, EXEC_QUEUES, secs);
	struct stress *s = calloc(1, sizeof(*s));
	s->w = calloc(WORKERS, sizeof(*s->w));
	assert_non_null(s->w);
	setup_device(s);
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
	static struct mover mv;
	mv = (struct mover){0};
	mover_setup(s, &mv);
	for (int t = 0; t < WORKERS; t++)
		assert_int_equal(pthread_create(&s->w[t].th, NULL, worker_main, &s->w[t]), 0);
	pthread_t sig, mover, writer;
	assert_int_equal(pthread_create(&sig, NULL, signaller, s), 0);
	assert_int_equal(pthread_create(&mover, NULL, mover_main, &mv), 0);
	assert_int_equal(pthread_create(&writer, NULL, writer_main, &mv), 0);
	for (int t = 0; t < WORKERS; t++)
		pthread_join(s->w[t].th, NULL);
	atomic_store(&s->stop_signals, true);
	pthread_join(sig, NULL);
	pthread_join(mover, NULL);
	pthread_join(writer, NULL);
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
	for (int t = 0; t < WORKERS; t++)
		if (s->w[t].err[0])
			print_error("%s\n", s->w[t].err);
	if (atomic_load(&s->failed)) {
		/* everything joined: nothing else to report but the failure */
		vmb_client_close(s->c);
		for (int t = 0; t < WORKERS; t++)
			free(s->w[t].dead);
		free(s->w);
		free(s);
		fail_msg("a worker failed (seed printed above: VMB_SEED replays its choices)");
	}
	for (int t = 0; t < WORKERS; t++)
		assert_true(s->w[t].checkpoints >= 1); /* at least the final one */

	mover_check(s, &mv);
	uint64_t execs;
	final_checks(s, &execs);
	teardown_device(s);
	for (int t = 0; t < WORKERS; t++)
		free(s->w[t].dead);
	free(s->w);
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
