/* SPDX-License-Identifier: MIT */
/*
 * Description: the signal storm (docs/UAPI.md, "Waits and signals"). The main demo's workload
 * (`vmbind demo`, tools/demo-kv.c: a KV cache that grows, a map queue mapping chunk i in 32
 * pieces from a pool of BOs, two compute queues each running a job that writes chunk i and reads
 * one entry of every chunk of the window into a results BO, an unmap queue unmapping the chunk
 * that left the window after its last reader, all ordered by timeline syncobjs), with both kinds
 * of binds as the demo runs them (asynchronous, then synchronous with the CPU waiting between),
 * plus the other waits a program makes: a synchronous bind on a queue with binds pending (it
 * waits in the call), an LR vm's bind on a job's point (its in-syncobj is waited for in the
 * call), user fences written by the unmaps and waited for (relative timeouts),
 * waits for several points at once (absolute deadlines). Each workload runs twice on a fresh
 * client: without signals, then while a POSIX timer sends SIGALRM to the test thread every
 * 100 us, its handler installed without SA_RESTART. Every call goes through CALL(), which calls
 * again, with the same struct, while it returns -EINTR, and counts those. Both runs must end
 * in the same state: every result the demo checks (and none wrong), every BO's contents, the
 * mappings (the LR vm's too), the vm's statistics, the timelines' values and fence status, the user fences, the
 * exec queues' state, a clean vmb_client_validate(). The storm must have made each kind of
 * waiting call (vm_bind, syncobj_wait, user_fence_wait) return -EINTR at least once (else it
 * tested nothing; gated_waits() blocks in each ~20 ms), except where waits are not
 * interruptible (the ThreadSanitizer build: sync/fence.h). Nothing is random: the same calls, in the same order,
 * in both runs.
 */
#include "lib/harness.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <time.h>
#include <vmbind/cmd.h>

#include "sync/fence.h" /* VMB_FENCE_CONDVAR: whether waits can report -EINTR */

#define STEPS 48 /* `vmbind demo --quick` */
#define WINDOW 8
#define PIECES 32
#define CHUNK (2 * MiB)
#define NPOOL (WINDOW + 8)
#define COMPUTE_NS 200000
#define KV_VA (1ull << 40)
#define CMD_VA (1ull << 36)
#define RES_VA (2ull << 36)
#define SCRATCH_VA (3ull << 36)
#define CMD_SLOT 16384
#define CMD_SIZE ((STEPS * CMD_SLOT + 65535) & ~65535ull)
#define RES_SIZE ((STEPS * WINDOW * 8 + 65535) & ~65535ull)
#define UF_SIZE 65536
#define SEC 1000000000ll
#define STORM_NS 100000 /* a signal every 100 us */

/* ---- the storm ---- */

static atomic_ulong handled;

static void on_alarm(int sig)
{
	(void)sig;
	atomic_fetch_add_explicit(&handled, 1, memory_order_relaxed);
}

/* -EINTR returns per kind of call, of the running workload. */
enum { K_BIND, K_SYNCOBJ_WAIT, K_UFENCE_WAIT, K_EXEC, K_OTHER, K_N };
static const char *const kind_names[K_N] = {"vm_bind", "syncobj_wait", "user_fence_wait", "exec", "other"};
/* atomic: gated_waits()'s opener thread reads them (it opens its gate once the wait it holds
 * up was interrupted) */
static _Atomic unsigned long eintr[K_N];
/* the storm is on (else no wait is interrupted: the opener does not wait for one) */
static atomic_bool storming;

/* Calls @expr again while it returns -EINTR (the application's restart), counting; asserts 0. */
#define CALL_K(kind, expr)                                                                           \
	do {                                                                                          \
		int r_;                                                                               \
		while ((r_ = (expr)) == -EINTR)                                                       \
			eintr[kind]++;                                                                \
		assert_int_equal(r_, 0);                                                              \
	} while (0)
#define CALL(expr) CALL_K(K_OTHER, expr)

struct storm {
	timer_t timer;
	struct sigaction old;
};

static void storm_start(struct storm *s)
{
	struct sigaction sa = {.sa_handler = on_alarm}; /* no SA_RESTART */
	sigemptyset(&sa.sa_mask);
	assert_int_equal(sigaction(SIGALRM, &sa, &s->old), 0);
	struct sigevent ev = {.sigev_notify = SIGEV_THREAD_ID, .sigev_signo = SIGALRM};
	ev._sigev_un._tid = (pid_t)syscall(SYS_gettid); /* this thread, not the library's */
	assert_int_equal(timer_create(CLOCK_MONOTONIC, &ev, &s->timer), 0);
	struct itimerspec its = {.it_interval = {.tv_nsec = STORM_NS}, .it_value = {.tv_nsec = STORM_NS}};
	assert_int_equal(timer_settime(s->timer, 0, &its, NULL), 0);
	atomic_store(&storming, true);
}

static void storm_stop(struct storm *s)
{
	atomic_store(&storming, false);
	assert_int_equal(timer_delete(s->timer), 0);
	assert_int_equal(sigaction(SIGALRM, &s->old, NULL), 0);
}

/*
 * ThreadSanitizer's runtime deadlocks on a signal that arrives inside its own free() while glibc
 * frees a joined thread's TLS (seen in CI and here, 1 run in ~33: the handler's wrapper waits
 * for the slot lock that MetaMap::FreeBlock holds, in pthread_join under vmb_client_close). A
 * join waits for nothing the library could interrupt: under TSan the storm's signal is held
 * back around each join of this thread (the test's own, and the close's of the library's
 * threads); elsewhere it goes on.
 */
static void tsan_quiet(bool on, sigset_t *old)
{
#ifdef VMB_FENCE_CONDVAR
	sigset_t al;
	sigemptyset(&al);
	sigaddset(&al, SIGALRM);
	if (on)
		pthread_sigmask(SIG_BLOCK, &al, old);
	else
		pthread_sigmask(SIG_SETMASK, old, NULL);
#else
	(void)on;
	(void)old;
#endif
}

static int join_quiet(pthread_t t)
{
	sigset_t old;
	tsan_quiet(true, &old);
	int r = pthread_join(t, NULL);
	tsan_quiet(false, &old);
	return r;
}

static int close_quiet(struct vmb_client *c)
{
	sigset_t old;
	tsan_quiet(true, &old);
	int r = vmb_client_close(c);
	tsan_quiet(false, &old);
	return r;
}

/* ---- the workload (tools/demo-kv.c) ---- */

struct kv {
	bool async;
	struct vmb_client *c;
	uint32_t vm, lr_vm, mapq, unmapq, xq[2], cmd_bo, res_bo, uf_bo, pool[NPOOL];
	int lr_binds; /* NULL ranges the LR vm mapped, each behind a job */
	uint32_t mapped, computed, unmapped; /* timelines */
	uint64_t *cmd, *res, *uf;            /* CPU maps; uf: a user fence per chunk */
	struct vmb_bind_op ops[PIECES];
};

/* What a run leaves, compared whole between the runs (zeroed first: padding included). */
struct outcome {
	uint64_t results[STEPS * WINDOW];
	uint64_t checked, wrong;
	uint64_t bo_sum[NPOOL];
	uint64_t uf[STEPS + STEPS / 8];
	struct vmb_mapping_info maps[8], lr_maps[8];
	uint32_t nmaps, lr_nmaps;
	uint64_t leaves[4], pt_tables[4], pt_bytes;
	uint64_t tl_value[3];
	int32_t tl_status[3];
	uint32_t xq_flags[2];
	uint64_t xq_jobs[2];
	int validate;
};

static uint64_t entry(int chunk) { return (uint64_t)(uint32_t)(chunk + 1) << 32 | (uint32_t)(chunk + 1); }
static uint64_t chunk_va(int i) { return KV_VA + (uint64_t)i * CHUNK; }

static struct vmb_sync tl(uint32_t h, uint64_t point, bool signal)
{
	return signal ? sync_tl_out(h, point) : sync_tl_in(h, point);
}

static void bind(struct kv *k, uint32_t queue, struct vmb_bind_op *ops, uint32_t n, struct vmb_sync *s,
		 uint32_t ns)
{
	struct vmb_vm_bind b = {.vm_id = k->vm, .queue_id = queue, .num_binds = n, .binds = (uint64_t)(uintptr_t)ops,
				.num_syncs = k->async ? ns : 0, .syncs = (uint64_t)(uintptr_t)s,
				.flags = k->async ? VMB_VM_BIND_FLAG_ASYNC : 0};
	CALL_K(K_BIND, vmb_vm_bind(k->c, &b));
}

/* The demo's wait: one point, a relative timeout (written back on -EINTR). */
static void wait_point(struct kv *k, uint32_t h, uint64_t point)
{
	struct vmb_syncobj_wait w = {.handles = (uint64_t)(uintptr_t)&h, .points = (uint64_t)(uintptr_t)&point,
				     .count = 1, .timeout_ns = 60 * SEC, .flags = VMB_SYNCOBJ_WAIT_RELATIVE};
	CALL_K(K_SYNCOBJ_WAIT, vmb_syncobj_wait(k->c, &w));
}

/* All of several points, an absolute deadline (as it is on every restart). */
static void wait_points_all(struct kv *k, uint32_t *h, uint64_t *points, uint32_t n)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	struct vmb_syncobj_wait w = {.handles = (uint64_t)(uintptr_t)h, .points = (uint64_t)(uintptr_t)points,
				     .count = n, .flags = VMB_SYNCOBJ_WAIT_ALL,
				     .timeout_ns = (int64_t)ts.tv_sec * SEC + ts.tv_nsec + 60 * SEC};
	CALL_K(K_SYNCOBJ_WAIT, vmb_syncobj_wait(k->c, &w));
}

/* The user fence of @chunk's unmap (in the uf BO, by offset), a relative timeout. */
static void wait_unmapped_ufence(struct kv *k, int chunk)
{
	struct vmb_user_fence_wait w = {.addr = (uint64_t)chunk * 8, .value = (uint64_t)chunk + 1, .mask = ~0ull,
					.timeout = 60 * SEC, .op = VMB_UFENCE_OP_EQ, .flags = VMB_UFENCE_WAIT_BO,
					.bo_handle = k->uf_bo};
	CALL_K(K_UFENCE_WAIT, vmb_user_fence_wait(k->c, &w));
}

static void map_chunk(struct kv *k, int i)
{
	uint64_t piece = CHUNK / PIECES;
	for (int p = 0; p < PIECES; p++)
		k->ops[p] = op_map(k->pool[i % NPOOL], (uint64_t)p * piece, chunk_va(i) + (uint64_t)p * piece, piece, 0);
	struct vmb_sync s[2] = {tl(k->mapped, (uint64_t)i + 1, true)};
	uint32_t ns = 1;
	if (i >= NPOOL) /* the BO's previous chunk must be gone */
		s[ns++] = tl(k->unmapped, (uint64_t)(i - NPOOL) + 1, false);
	bind(k, k->mapq, k->ops, PIECES, s, ns);
}

static void unmap_chunk(struct kv *k, int chunk, int last_reader)
{
	struct vmb_bind_op op = op_unmap(chunk_va(chunk), CHUNK);
	struct vmb_sync s[3] = {tl(k->unmapped, (uint64_t)chunk + 1, true), tl(k->computed, (uint64_t)last_reader + 1, false),
				{.type = VMB_SYNC_BO_USER_FENCE, .flags = VMB_SYNC_FLAG_SIGNAL, .handle = k->uf_bo,
				 .addr = (uint64_t)chunk * 8, .value = (uint64_t)chunk + 1}};
	if (!k->async) {
		wait_point(k, k->computed, (uint64_t)last_reader + 1); /* the CPU waits */
		k->uf[chunk] = (uint64_t)chunk + 1; /* what the out user fence would have written */
	}
	bind(k, k->unmapq, &op, 1, s, 3);
}

static void compute(struct kv *k, int i)
{
	uint64_t *b = k->cmd + (uint64_t)i * CMD_SLOT / 8;
	uint32_t n = 0;
	uint64_t piece = CHUNK / PIECES;
	vmb_cmd_fill(b, &n, chunk_va(i) + (uint64_t)(i % PIECES) * piece, 4096, (uint32_t)(i + 1));
	int first = i - WINDOW + 1 < 0 ? 0 : i - WINDOW + 1;
	for (int j = first; j <= i; j++)
		if (j != i - 1)
			vmb_cmd_copy(b, &n, RES_VA + ((uint64_t)i * WINDOW + (uint64_t)(j - first)) * 8,
				     chunk_va(j) + (uint64_t)(j % PIECES) * piece, 8);
	vmb_cmd_delay(b, &n, COMPUTE_NS);
	vmb_cmd_end(b, &n);
	assert_true(n * 8 <= CMD_SLOT);
	struct vmb_sync s[3] = {tl(k->computed, (uint64_t)i + 1, true), tl(k->mapped, (uint64_t)i + 1, false),
				tl(k->computed, (uint64_t)i - 1, false)};
	uint32_t ns = k->async ? (i >= 2 ? 3 : 2) : (i >= 2 ? 2 : 1);
	if (!k->async)
		s[1] = s[2];
	struct vmb_exec e = {.exec_queue_id = k->xq[i & 1], .address = CMD_VA + (uint64_t)i * CMD_SLOT,
			     .num_syncs = ns, .syncs = (uint64_t)(uintptr_t)s};
	CALL_K(K_EXEC, vmb_exec(k->c, &e));
}

/* A synchronous bind on the unmap queue while its asynchronous binds are pending: it waits in
 * the call for them (the one rule), then maps and unmaps a scratch range. */
static void sync_bind_behind_queue(struct kv *k)
{
	struct vmb_bind_op op = op_null(SCRATCH_VA, 64 * KiB);
	struct vmb_vm_bind b = {.vm_id = k->vm, .queue_id = k->unmapq, .num_binds = 1, .binds = (uint64_t)(uintptr_t)&op};
	CALL_K(K_BIND, vmb_vm_bind(k->c, &b));
	op = op_unmap(SCRATCH_VA, 64 * KiB);
	CALL_K(K_BIND, vmb_vm_bind(k->c, &b));
}

/* An LR vm waits for its in-syncobjs in the call: map a NULL range once job @i is done (its
 * out-sync a user fence, after the unmaps' in the uf BO). */
static void lr_bind_behind_job(struct kv *k, int i)
{
	int n = k->lr_binds++;
	struct vmb_bind_op op = op_null(SCRATCH_VA + (uint64_t)n * 64 * KiB, 64 * KiB);
	struct vmb_sync s[2] = {tl(k->computed, (uint64_t)i + 1, false),
				{.type = VMB_SYNC_BO_USER_FENCE, .flags = VMB_SYNC_FLAG_SIGNAL, .handle = k->uf_bo,
				 .addr = (uint64_t)(STEPS + n) * 8, .value = (uint64_t)(STEPS + n) + 1}};
	struct vmb_vm_bind b = {.vm_id = k->lr_vm, .num_binds = 1, .binds = (uint64_t)(uintptr_t)&op, .num_syncs = 2,
				.syncs = (uint64_t)(uintptr_t)s, .flags = VMB_VM_BIND_FLAG_ASYNC};
	CALL_K(K_BIND, vmb_vm_bind(k->c, &b));
}

/* Waits that must block. The workload's own waits may all find their points passed where the
 * submitting thread is slower than the engines (a sanitizer build on a loaded machine: CI once
 * saw 3605 signals and no -EINTR), so each kind of wait also waits here for a gate a thread
 * opens ~20 ms later, and under the storm only once the wait was interrupted: the storm (every
 * 100 us) interrupts each of them. (The opener does not count on the waiting thread reaching
 * its wait within the 20 ms: a loaded machine may not run it for longer.) */
#define GATE_NS 20000000
#define GATE_UF_SLOT 512 /* in the uf BO, past the outcome's user fences */

struct opener {
	struct gate g;
	int kind;             /* the kind of the wait the gate holds up */
	unsigned long before; /* its -EINTR count before the wait */
};

static struct opener opener_new(struct kv *k, int kind)
{
	return (struct opener){.g = gate_new(k->c), .kind = kind, .before = atomic_load(&eintr[kind])};
}

static void *open_later(void *arg)
{
	struct opener *o = arg;
	struct timespec ts = {.tv_nsec = GATE_NS};
	while (nanosleep(&ts, &ts) != 0)
		;
#ifndef VMB_FENCE_CONDVAR
	/* a state, not a time: the wait has been interrupted (a hang guard of 20 s; then
	 * storm_compare's count fails) */
	for (int i = 0; i < 20000 && atomic_load(&storming) && atomic_load(&eintr[o->kind]) == o->before; i++)
		usleep(1000);
#endif
	gate_open(&o->g);
	return NULL;
}

static void gated_waits(struct kv *k)
{
	pthread_t t;
	struct opener o = opener_new(k, K_BIND);
	/* an LR vm's bind waits in the call for its in-syncobj */
	int n = k->lr_binds++;
	struct vmb_bind_op op = op_null(SCRATCH_VA + (uint64_t)n * 64 * KiB, 64 * KiB);
	struct vmb_sync s[2] = {sync_in(o.g.h),
				{.type = VMB_SYNC_BO_USER_FENCE, .flags = VMB_SYNC_FLAG_SIGNAL, .handle = k->uf_bo,
				 .addr = (uint64_t)(STEPS + n) * 8, .value = (uint64_t)(STEPS + n) + 1}};
	struct vmb_vm_bind b = {.vm_id = k->lr_vm, .num_binds = 1, .binds = (uint64_t)(uintptr_t)&op, .num_syncs = 2,
				.syncs = (uint64_t)(uintptr_t)s, .flags = VMB_VM_BIND_FLAG_ASYNC};
	assert_int_equal(pthread_create(&t, NULL, open_later, &o), 0);
	CALL_K(K_BIND, vmb_vm_bind(k->c, &b));
	assert_int_equal(join_quiet(t), 0);
	struct vmb_syncobj_destroy d = {.handle = o.g.h};
	CALL(vmb_syncobj_destroy(k->c, &d));

	/* a syncobj wait */
	o = opener_new(k, K_SYNCOBJ_WAIT);
	assert_int_equal(pthread_create(&t, NULL, open_later, &o), 0);
	struct vmb_syncobj_wait w = {.handles = (uint64_t)(uintptr_t)&o.g.h, .count = 1, .timeout_ns = 60 * SEC,
				     .flags = VMB_SYNCOBJ_WAIT_RELATIVE};
	CALL_K(K_SYNCOBJ_WAIT, vmb_syncobj_wait(k->c, &w));
	assert_int_equal(join_quiet(t), 0);
	d.handle = o.g.h;
	CALL(vmb_syncobj_destroy(k->c, &d));

	/* a user fence wait: the library writes it (an application's own write wakes no waiter),
	 * at the end of an UNMAP of nothing behind a gate */
	o = opener_new(k, K_UFENCE_WAIT);
	op = op_unmap(SCRATCH_VA, 64 * KiB);
	s[0] = sync_in(o.g.h);
	s[1].addr = GATE_UF_SLOT * 8;
	s[1].value = 1;
	b = (struct vmb_vm_bind){.vm_id = k->vm, .queue_id = k->mapq, .num_binds = 1, .binds = (uint64_t)(uintptr_t)&op,
				 .num_syncs = 2, .syncs = (uint64_t)(uintptr_t)s, .flags = VMB_VM_BIND_FLAG_ASYNC};
	CALL_K(K_BIND, vmb_vm_bind(k->c, &b));
	assert_int_equal(pthread_create(&t, NULL, open_later, &o), 0);
	struct vmb_user_fence_wait uw = {.addr = GATE_UF_SLOT * 8, .value = 1, .mask = ~0ull, .timeout = 60 * SEC,
					 .op = VMB_UFENCE_OP_EQ, .flags = VMB_UFENCE_WAIT_BO, .bo_handle = k->uf_bo};
	CALL_K(K_UFENCE_WAIT, vmb_user_fence_wait(k->c, &uw));
	assert_int_equal(join_quiet(t), 0);
	d.handle = o.g.h;
	CALL(vmb_syncobj_destroy(k->c, &d));
}

static void *cpu_map(struct kv *k, uint32_t bo)
{
	struct vmb_bo_mmap m = {.handle = bo};
	CALL(vmb_bo_mmap(k->c, &m));
	return (void *)(uintptr_t)m.ptr;
}

static void kv_setup(struct kv *k)
{
	struct vmb_client_opts co = {.vram_size = 256 * MiB, .system_size = 256 * MiB};
	CALL(vmb_client_open("soft", &co, &k->c));
	struct vmb_vm_create vc = {0};
	CALL(vmb_vm_create(k->c, &vc));
	k->vm = vc.vm_id;
	struct vmb_vm_create lc = {.flags = VMB_VM_CREATE_LR_MODE};
	CALL(vmb_vm_create(k->c, &lc));
	k->lr_vm = lc.vm_id;
	struct vmb_bind_queue_create bq = {.vm_id = k->vm};
	CALL(vmb_bind_queue_create(k->c, &bq));
	k->mapq = bq.queue_id;
	CALL(vmb_bind_queue_create(k->c, &bq));
	k->unmapq = bq.queue_id;
	for (int e = 0; e < 2; e++) {
		struct vmb_exec_queue_create xc = {.vm_id = k->vm,
						   .engine = {.engine_class = VMB_ENGINE_CLASS_COMPUTE, .engine_instance = (uint16_t)e}};
		CALL(vmb_exec_queue_create(k->c, &xc));
		k->xq[e] = xc.exec_queue_id;
	}
	uint32_t *tls[3] = {&k->mapped, &k->computed, &k->unmapped};
	for (int t = 0; t < 3; t++) {
		struct vmb_syncobj_create sc = {.flags = VMB_SYNCOBJ_CREATE_TIMELINE};
		CALL(vmb_syncobj_create(k->c, &sc));
		*tls[t] = sc.handle;
	}
	for (int p = 0; p < NPOOL; p++) {
		struct vmb_bo_create b = {.size = CHUNK, .placements = VMB_PLACE_VRAM};
		CALL(vmb_bo_create(k->c, &b));
		k->pool[p] = b.handle;
		memset(cpu_map(k, b.handle), 0, CHUNK);
	}
	struct vmb_bo_create cb = {.size = CMD_SIZE, .placements = VMB_PLACE_SYSTEM};
	struct vmb_bo_create rb = {.size = RES_SIZE, .placements = VMB_PLACE_SYSTEM};
	struct vmb_bo_create ub = {.size = UF_SIZE, .placements = VMB_PLACE_SYSTEM};
	CALL(vmb_bo_create(k->c, &cb));
	CALL(vmb_bo_create(k->c, &rb));
	CALL(vmb_bo_create(k->c, &ub));
	k->cmd_bo = cb.handle;
	k->res_bo = rb.handle;
	k->uf_bo = ub.handle;
	k->cmd = cpu_map(k, cb.handle);
	k->res = cpu_map(k, rb.handle);
	k->uf = cpu_map(k, ub.handle);
	struct vmb_bind_op setup[2] = {op_map(cb.handle, 0, CMD_VA, CMD_SIZE, VMB_BIND_FLAG_READONLY),
				       op_map(rb.handle, 0, RES_VA, RES_SIZE, 0)};
	struct vmb_vm_bind b = {.vm_id = k->vm, .num_binds = 2, .binds = (uint64_t)(uintptr_t)setup};
	CALL_K(K_BIND, vmb_vm_bind(k->c, &b));
}

static uint64_t checksum(const uint64_t *p, uint64_t n)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (uint64_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 0x100000001b3ull;
	return h;
}

/* Everything the run leaves, into @o. */
static void kv_outcome(struct kv *k, struct outcome *o)
{
	memset(o, 0, sizeof(*o));
	memcpy(o->results, k->res, sizeof(o->results));
	for (int i = 0; i < STEPS; i++) {
		int first = i - WINDOW + 1 < 0 ? 0 : i - WINDOW + 1;
		for (int j = first; j <= i; j++) {
			if (j == i - 1)
				continue;
			o->checked++;
			o->wrong += k->res[(uint64_t)i * WINDOW + (uint64_t)(j - first)] != entry(j);
		}
	}
	for (int p = 0; p < NPOOL; p++)
		o->bo_sum[p] = checksum(cpu_map(k, k->pool[p]), CHUNK / 8);
	memcpy(o->uf, k->uf, sizeof(o->uf));
	struct vmb_vm_query_mappings q = {.vm_id = k->vm, .num_mappings = 8, .mappings = (uint64_t)(uintptr_t)o->maps};
	CALL(vmb_vm_query_mappings(k->c, &q));
	o->nmaps = q.num_mappings;
	q = (struct vmb_vm_query_mappings){.vm_id = k->lr_vm, .num_mappings = 8, .mappings = (uint64_t)(uintptr_t)o->lr_maps};
	CALL(vmb_vm_query_mappings(k->c, &q));
	o->lr_nmaps = q.num_mappings;
	struct vmb_vm_stats st = {.vm_id = k->vm};
	CALL(vmb_vm_query_stats(k->c, &st));
	memcpy(o->leaves, st.leaves, sizeof(o->leaves));
	memcpy(o->pt_tables, st.pt_tables, sizeof(o->pt_tables));
	o->pt_bytes = st.pt_bytes;
	uint32_t h[3] = {k->mapped, k->computed, k->unmapped};
	struct vmb_syncobj_array a = {.handles = (uint64_t)(uintptr_t)h, .points = (uint64_t)(uintptr_t)o->tl_value,
				      .count = 3};
	CALL(vmb_syncobj_query(k->c, &a));
	uint64_t at[3];
	for (int t = 0; t < 3; t++)
		at[t] = o->tl_value[t] ? o->tl_value[t] : 1;
	struct vmb_syncobj_status ss = {.handles = (uint64_t)(uintptr_t)h, .points = (uint64_t)(uintptr_t)at,
					.status = (uint64_t)(uintptr_t)o->tl_status, .count = 3};
	CALL(vmb_syncobj_query_status(k->c, &ss));
	for (int e = 0; e < 2; e++) {
		struct vmb_exec_queue_query x = {.exec_queue_id = k->xq[e]};
		CALL(vmb_exec_queue_query(k->c, &x));
		o->xq_flags[e] = x.flags;
		o->xq_jobs[e] = x.jobs_done;
	}
	struct vmb_client_validate v = {0};
	o->validate = vmb_client_validate(k->c, &v);
}

static void kv_run(bool async, struct outcome *o)
{
	struct kv k = {.async = async};
	kv_setup(&k);
	for (int i = 0; i < STEPS; i++) {
		map_chunk(&k, i);
		compute(&k, i);
		if (i >= WINDOW - 1)
			unmap_chunk(&k, i - WINDOW + 1, i);
		if (async && i % 8 == 7) {
			/* the program waits for job i (on its engine for 200 us at least), in
			 * turn: a bind in the call behind the unmap queue (whose last unmap waits
			 * for job i), the user fence of that unmap, an LR vm's bind on job i's
			 * point, all of three points at once */
			if (i / 8 % 4 == 0) {
				sync_bind_behind_queue(&k);
			} else if (i / 8 % 4 == 1) {
				wait_unmapped_ufence(&k, i - WINDOW + 1);
			} else if (i / 8 % 4 == 2) {
				lr_bind_behind_job(&k, i);
			} else {
				uint32_t h[3] = {k.mapped, k.computed, k.computed};
				uint64_t pts[3] = {(uint64_t)i + 1, (uint64_t)i + 1, (uint64_t)i};
				wait_points_all(&k, h, pts, 3);
			}
		}
		if (i == STEPS / 2)
			gated_waits(&k);
	}
	for (int c = STEPS - WINDOW + 1; c < STEPS; c++)
		unmap_chunk(&k, c, STEPS - 1);
	if (async)
		wait_point(&k, k.unmapped, STEPS);
	wait_point(&k, k.computed, STEPS);
	for (int c = 0; c < STEPS + k.lr_binds; c++) /* the LR binds' fences: after the unmaps' */
		wait_unmapped_ufence(&k, c);
	kv_outcome(&k, o);
	CALL(close_quiet(k.c));
}

static unsigned long eintr_total(void)
{
	unsigned long t = 0;
	for (int i = 0; i < K_N; i++)
		t += eintr[i];
	return t;
}

static void storm_compare(bool async)
{
	static struct outcome calm, storm;
	for (int i = 0; i < K_N; i++)
		atomic_store(&eintr[i], 0);
	kv_run(async, &calm);
	assert_int_equal(eintr_total(), 0); /* no signal, no -EINTR */
	assert_int_equal(calm.wrong, 0);
	assert_true(calm.checked > 0);
	assert_int_equal(calm.nmaps, 2); /* the command and results buffers */
	assert_int_equal(calm.validate, 0);
	assert_int_equal(calm.tl_value[1], STEPS);
	assert_int_equal(calm.tl_status[1], VMB_SYNCOBJ_STATUS_OK);
	assert_int_equal(calm.xq_flags[0] | calm.xq_flags[1], 0);

	struct storm s;
	atomic_store(&handled, 0);
	storm_start(&s);
	kv_run(async, &storm);
	storm_stop(&s);
	print_message("%s binds: %lu signals handled; -EINTR restarts:", async ? "async" : "sync",
		      atomic_load(&handled));
	for (int i = 0; i < K_N; i++)
		print_message(" %lu %s%s", eintr[i], kind_names[i], i + 1 < K_N ? "," : "\n");
	assert_true(atomic_load(&handled) > 0);
#ifndef VMB_FENCE_CONDVAR
	/* else the storm tested nothing: gated_waits() blocks in each kind */
	assert_true(eintr[K_BIND] > 0);
	assert_true(eintr[K_SYNCOBJ_WAIT] > 0);
	assert_true(eintr[K_UFENCE_WAIT] > 0);
#endif
	/* only calls that wait may be interrupted */
	assert_int_equal(eintr[K_EXEC] + eintr[K_OTHER], 0);
	assert_int_equal(storm.wrong, 0);
	assert_int_equal(memcmp(storm.results, calm.results, sizeof(calm.results)), 0);
	assert_int_equal(memcmp(storm.bo_sum, calm.bo_sum, sizeof(calm.bo_sum)), 0);
	assert_int_equal(memcmp(&storm, &calm, sizeof(calm)), 0);
}

static void test_storm_async_binds(void **state)
{
	(void)state;
	storm_compare(true);
}

static void test_storm_sync_binds(void **state)
{
	(void)state;
	storm_compare(false);
}

/* ---- signals sent to the process ---- */

static _Atomic pid_t handler_tid[64];
static atomic_uint handler_runs;

static void on_usr1_where(int sig)
{
	(void)sig;
	unsigned int n = atomic_fetch_add(&handler_runs, 1);
	if (n < 64)
		atomic_store(&handler_tid[n], (pid_t)syscall(SYS_gettid));
}

/*
 * The library's threads (scheduler workers, engines, the watchers of exported BOs and imported
 * syncobj descriptors) take no asynchronous signal: a signal sent to the process (kill, a
 * setitimer timer) runs the application's handler on one of the application's threads, whose
 * call it interrupts, never on a library thread. Here the test thread, the process's only
 * thread of its own, blocks SIGUSR1 while signals are sent to the process: they stay pending
 * until it unblocks, then all run on it.
 */
static void test_process_signals_skip_library_threads(void **state)
{
	(void)state;
	struct vmb_client *c = open_soft_at("soft:7", 64 * MiB, 64 * MiB); /* not the storm's */
	/* every kind of library thread: workers (at open), an engine, both watchers */
	struct vmb_vm_create vc = {0};
	CALL(vmb_vm_create(c, &vc));
	struct vmb_exec_queue_create xc = {.vm_id = vc.vm_id, .engine = {.engine_class = VMB_ENGINE_CLASS_COMPUTE}};
	CALL(vmb_exec_queue_create(c, &xc));
	struct vmb_bo_export_fd ex = {.handle = bo_new(c, 64 * KiB, VMB_PLACE_SYSTEM)};
	CALL(vmb_bo_export_fd(c, &ex));
	struct gate g = gate_new(c); /* an imported descriptor: the syncobj watcher */

	struct sigaction sa = {.sa_handler = on_usr1_where}, old;
	sigemptyset(&sa.sa_mask);
	assert_int_equal(sigaction(SIGUSR1, &sa, &old), 0);
	sigset_t usr1, prev;
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	atomic_store(&handler_runs, 0);
	assert_int_equal(pthread_sigmask(SIG_BLOCK, &usr1, &prev), 0);
	for (int i = 0; i < 16; i++) {
		assert_int_equal(kill(getpid(), SIGUSR1), 0);
		usleep(1000);
	}
	unsigned int early = atomic_load(&handler_runs); /* ran on another thread: a library's */
	assert_int_equal(pthread_sigmask(SIG_SETMASK, &prev, NULL), 0); /* the pending one runs here */
	unsigned int runs = atomic_load(&handler_runs);
	pid_t self = (pid_t)syscall(SYS_gettid);
	for (unsigned int i = 0; i < runs && i < 64; i++)
		if (atomic_load(&handler_tid[i]) != self)
			print_message("handler run %u on thread %d, not the test's %d\n", i,
				      (int)atomic_load(&handler_tid[i]), (int)self);
	assert_int_equal(early, 0);
	assert_int_equal(runs, 1); /* one pending SIGUSR1, however many were sent */
	assert_int_equal(atomic_load(&handler_tid[0]), self);
	assert_int_equal(sigaction(SIGUSR1, &old, NULL), 0);

	gate_open(&g);
	close(ex.fd);
	CALL(vmb_client_close(c));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_storm_async_binds),
		cmocka_unit_test(test_storm_sync_binds),
		cmocka_unit_test(test_process_signals_skip_library_threads),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
