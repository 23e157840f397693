/* SPDX-License-Identifier: MIT */
/*
 * Attacks on the flat combining of binds (vm/job.c, core/lock.h): a synchronous or asynchronous
 * bind that finds its vm's lock taken is run by the lock's holder, on the holder's thread. What
 * belongs to the calling thread must still be the caller's: its fault-injection countdowns, the
 * signals it takes while it waits, the copy a fork()ed child makes of a client whose binds are
 * being combined. And what the bind path changed beside it: the per-(vm, BO) mapping counts that
 * vmb_bo_query sums, and the vm's last link (vm->vb_last) as links are freed and orphaned.
 * Integrated shape only (4 KiB granules). Randomized cases print their seed.
 */
#include "lib/harness.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/client.h" /* a call held in flight across close */
#include "dev/core.h" /* the device's ops, swapped for a gated map_prepare */
#include "sync/fence.h" /* VMB_FENCE_CONDVAR: whether waits can report -EINTR */
#include "vm/vm.h"     /* the vm's queue of waiting binds, counted */

#define PG 4096ull
#define BO_SIZE (1 * MiB)
#define SEC 1000000000ll

static uint64_t pattern(uint32_t tag, uint64_t page) { return (uint64_t)tag << 32 | page; }

static uint32_t bo_patterned(struct vmb_client *c, uint32_t tag)
{
	uint32_t bo = bo_new(c, BO_SIZE, VMB_PLACE_SYSTEM);
	static uint64_t v[BO_SIZE / PG];
	for (uint64_t pg = 0; pg < BO_SIZE / PG; pg++)
		v[pg] = pattern(tag, pg);
	bo_write64s(c, bo, PG, v, BO_SIZE / PG);
	return bo;
}

static int sync_bind(struct vmb_client *c, uint32_t vm, struct vmb_bind_op *ops, uint32_t n)
{
	struct vmb_vm_bind b = {.vm_id = vm, .num_binds = n, .binds = (uint64_t)(uintptr_t)ops};
	return vmb_vm_bind(c, &b);
}

static uint32_t bo_mappings(struct vmb_client *c, uint32_t bo)
{
	struct vmb_bo_query q = {.handle = bo};
	assert_int_equal(vmb_bo_query(c, &q), 0);
	return q.vm_mappings;
}

/* ---- binders with a model: threads bind their own slices of one vm synchronously ---- */

#define SLICE_PAGES 256
#define SLICE (SLICE_PAGES * PG)

struct binder {
	struct vmb_client *c;
	uint32_t vm, bo[2];
	int t, ops;
	uint64_t seed;
	uint64_t model[SLICE_PAGES];
	atomic_bool *stop; /* run until set (ops 0), else @ops binds */
	pthread_t th;
	atomic_int started, finished;
	int last; /* the call's result that ended the run (0: none failed) */
	int eintr; /* -EINTR results (allowed only where @allow_eintr) */
	bool allow_eintr;
	char err[128];
};

/* 1 to 3 random ops on the binder's slice into @ops; @next gets the model they make. */
static uint32_t binder_ops(struct binder *w, struct vmb_bind_op ops[3], uint64_t next[SLICE_PAGES])
{
	uint64_t base = (uint64_t)(w->t + 1) * SLICE * 4;
	uint32_t n = 1 + (uint32_t)rnd_below(&w->seed, 3);
	memcpy(next, w->model, SLICE_PAGES * sizeof(*next));
	for (uint32_t i = 0; i < n; i++) {
		uint64_t pages = 1 + rnd_below(&w->seed, 16), start = rnd_below(&w->seed, SLICE_PAGES - pages);
		if (rnd_below(&w->seed, 3) == 0) {
			ops[i] = op_unmap(base + start * PG, pages * PG);
			for (uint64_t p = 0; p < pages; p++)
				next[start + p] = 0;
		} else {
			uint32_t tag = 1 + (uint32_t)rnd_below(&w->seed, 2);
			uint64_t off = rnd_below(&w->seed, BO_SIZE / PG - pages);
			ops[i] = op_map(w->bo[tag - 1], off * PG, base + start * PG, pages * PG, 0);
			for (uint64_t p = 0; p < pages; p++)
				next[start + p] = pattern(tag, off + p);
		}
	}
	return n;
}

/* One synchronous call of 1 to 3 ops on the binder's slice; the model follows on success. */
static int binder_step(struct binder *w)
{
	struct vmb_bind_op ops[3];
	uint64_t next[SLICE_PAGES];
	uint32_t n = binder_ops(w, ops, next);
	int r = sync_bind(w->c, w->vm, ops, n);
	if (!r)
		memcpy(w->model, next, sizeof(next));
	return r;
}

static void *binder_run(void *arg)
{
	struct binder *w = arg;
	atomic_store(&w->started, 1);
	for (int i = 0; w->ops ? i < w->ops : !atomic_load(w->stop); i++) {
		int r = binder_step(w);
		if (r == -EINTR && w->allow_eintr) {
			w->eintr++;
			continue;
		}
		if (r) {
			w->last = r;
			snprintf(w->err, sizeof(w->err), "thread %d bind %d: %d", w->t, i, r);
			break;
		}
	}
	atomic_store(&w->finished, 1);
	return NULL;
}

/* The vm maps what each binder's model says (every page of every slice). */
static void binders_check(struct binder *w, int n)
{
	for (int t = 0; t < n; t++) {
		assert_string_equal(w[t].err, "");
		uint64_t base = (uint64_t)(w[t].t + 1) * SLICE * 4;
		for (uint64_t p = 0; p < SLICE_PAGES; p++) {
			uint64_t v = 0;
			int err = __gpu_rw(w[t].c, w[t].vm, base + p * PG, &v, 8, false);
			if (w[t].model[p] ? err || v != w[t].model[p] : err != -EFAULT)
				fail_msg("thread %d page %llu: err %d value %llx, model %llx", t, (unsigned long long)p, err,
					 (unsigned long long)v, (unsigned long long)w[t].model[p]);
		}
	}
}

/* ---- asynchronous binds combined: their syncs stay the call's ---- */

#define AQ 3        /* bind queues shared by the threads */
#define AT 4        /* threads */
#define AOPS 1500   /* calls per thread */

struct abinder {
	struct binder b;
	uint32_t q[AQ];
	uint32_t so;          /* the thread's binary syncobj: out-sync of some calls, in-sync of others */
	uint64_t uf[AQ][8];   /* [q][0]: the thread's user fence on queue q (a line of its own) */
	uint64_t last[AQ];    /* the value of its last call on queue q */
};

/* Asynchronous calls of 1 to 3 ops on the thread's slice, round-robin over the shared queues,
 * each with an out user fence of (thread, queue) counting that pair's calls; every third call also
 * signals the thread's syncobj, every fifth waits for it. Overlapping binds of one thread on
 * different queues are ordered by their ranges, so the model is the vm's state once every fence
 * has signalled; a queue's fences signal in order, so each (thread, queue) word ends at its last
 * value. */
static void *abinder_run(void *arg)
{
	struct abinder *a = arg;
	struct binder *w = &a->b;
	atomic_store(&w->started, 1);
	for (int i = 0; i < w->ops; i++) {
		struct vmb_bind_op ops[3];
		uint64_t next[SLICE_PAGES];
		uint32_t n = binder_ops(w, ops, next), qi = (uint32_t)i % AQ;
		struct vmb_sync syncs[3];
		uint32_t ns = 0;
		syncs[ns++] = sync_ufence(&a->uf[qi][0], a->last[qi] + 1);
		if (i % 3 == 2)
			syncs[ns++] = sync_out(a->so);
		if (i % 5 == 4 && i >= 3)
			syncs[ns++] = sync_in(a->so);
		int r = __bind_async(w->c, w->vm, a->q[qi], ops, n, syncs, ns);
		if (r) {
			snprintf(w->err, sizeof(w->err), "thread %d bind %d: %d", w->t, i, r);
			break;
		}
		a->last[qi]++;
		memcpy(w->model, next, sizeof(next));
	}
	atomic_store(&w->finished, 1);
	return NULL;
}

/* Threads that each run @fn on an element of @base (@n of @stride bytes, each beginning with its
 * struct binder): started, then joined. */
static void binders_run(void *base, size_t stride, int n, void *(*fn)(void *))
{
	for (int t = 0; t < n; t++) {
		struct binder *w = (struct binder *)((char *)base + (size_t)t * stride);
		assert_int_equal(pthread_create(&w->th, NULL, fn, w), 0);
	}
	for (int t = 0; t < n; t++)
		pthread_join(((struct binder *)((char *)base + (size_t)t * stride))->th, NULL);
}

/* binders_check() of the binders that begin the @n elements of @base, then frees @base, checks
 * the client and closes it. */
static void binders_finish(struct vmb_client *c, void *base, size_t stride, int n)
{
	struct binder w[8];
	assert_true(n <= 8);
	for (int t = 0; t < n; t++)
		w[t] = *(struct binder *)((char *)base + (size_t)t * stride);
	binders_check(w, n);
	free(base);
	validate_client(c);
	assert_int_equal(vmb_client_close(c), 0);
}

/* A client with one vm, two patterned BOs and AQ bind queues, for threads of combined calls. */
static struct vmb_client *combined_setup(uint32_t *vm, uint32_t bo[2], uint32_t q[AQ])
{
	struct vmb_client *c = open_soft(256 * MiB, 256 * MiB);
	*vm = vm_new(c, 0);
	bo[0] = bo_patterned(c, 1);
	bo[1] = bo_patterned(c, 2);
	for (int k = 0; k < AQ; k++)
		q[k] = queue_new(c, *vm);
	return c;
}

/* Timeline @tl reaches @point (20 s at most) and its value is then exactly @point. */
static void timeline_at(struct vmb_client *c, uint32_t tl, uint64_t point)
{
	assert_int_equal(__syncobj_wait1(c, tl, point, 20 * SEC, 0), 0);
	uint64_t value = 0;
	struct vmb_syncobj_array qa = {.handles = (uint64_t)(uintptr_t)&tl, .points = (uint64_t)(uintptr_t)&value,
				       .count = 1};
	assert_int_equal(vmb_syncobj_query(c, &qa), 0);
	assert_int_equal(value, point);
}

/* User fence @word reaches @value and stays there. */
static void ufence_at(struct vmb_client *c, uint64_t *word, uint64_t value)
{
	ufence_wait(c, word, value);
	assert_int_equal(__atomic_load_n(word, __ATOMIC_ACQUIRE), value);
}

#define CHUNK (64 * KiB)

/* A SYSTEM BO of one 64 KiB chunk (a MAP or cut of it must be in whole chunks), patterned with
 * tag 9. */
static uint32_t chunk_bo_new(struct vmb_client *c)
{
	struct vmb_bo_create bc = {.size = CHUNK, .placements = VMB_PLACE_SYSTEM, .chunk_size = CHUNK};
	assert_int_equal(vmb_bo_create(c, &bc), 0);
	uint64_t v[CHUNK / PG];
	for (uint64_t pg = 0; pg < CHUNK / PG; pg++)
		v[pg] = pattern(9, pg);
	bo_write64s(c, bc.handle, PG, v, CHUNK / PG);
	return bc.handle;
}

static void test_async_combined(void **state)
{
	(void)state;
	uint32_t vm, bo[2], q[AQ];
	struct vmb_client *c = combined_setup(&vm, bo, q);
	uint32_t bo1 = bo[0], bo2 = bo[1];
	uint64_t seed = test_seed("async-combined");
	struct abinder *a = calloc(AT, sizeof(*a)); /* not on the stack: a failure leaves threads */
	assert_non_null(a);
	for (int t = 0; t < AT; t++) {
		a[t].b = (struct binder){.c = c, .vm = vm, .bo = {bo1, bo2}, .t = t, .ops = AOPS, .seed = rnd_next(&seed)};
		memcpy(a[t].q, q, sizeof(q));
		a[t].so = syncobj_new(c, 0);
	}
	binders_run(a, sizeof(*a), AT, abinder_run);
	for (int t = 0; t < AT; t++) {
		assert_string_equal(a[t].b.err, "");
		for (int k = 0; k < AQ; k++) {
			ufence_at(c, &a[t].uf[k][0], a[t].last[k]);
		}
		assert_int_equal(syncobj_error(c, a[t].so), 0);
	}
	binders_finish(c, a, sizeof(*a), AT);
}

/* ---- a thread's fault injection stays on its thread ---- */

#define ARMED_ROUNDS 200
#define FAR (1ull << 40) /* page tables no bind of the binders touches */

struct armed {
	struct vmb_client *c;
	uint32_t vm, bo;
	int enomem, other;
	atomic_bool *stop;
};

static void arm_host(struct vmb_client *c, uint64_t nth)
{
	struct vmb_fault_inject fi = {.classes = VMB_INJECT_HOST_ALLOC, .flags = nth ? VMB_INJECT_PERSISTENT : 0,
				      .nth = nth, .scope = VMB_INJECT_SCOPE_THREAD};
	assert_int_equal(vmb_debug_fault_inject(c, &fi), 0);
}

/* Every host allocation of this thread fails: each MAP of a BO new to the vm (its (vm, BO) link
 * to allocate) must fail with -ENOMEM, whoever holds the vm's lock meanwhile. Run on another
 * thread (the lock's holder, its countdown not armed), it would succeed. */
static void *armed_run(void *arg)
{
	struct armed *a = arg;
	struct vmb_fault_inject fi = {.classes = VMB_INJECT_HOST_ALLOC, .flags = VMB_INJECT_PERSISTENT, .nth = 1,
				      .scope = VMB_INJECT_SCOPE_THREAD};
	if (vmb_debug_fault_inject(a->c, &fi)) {
		a->other = -1000;
		atomic_store(a->stop, true);
		return NULL;
	}
	for (int i = 0; i < ARMED_ROUNDS; i++) {
		struct vmb_bind_op op = op_map(a->bo, 0, FAR + (uint64_t)(i % 64) * (1ull << 30), 64 * PG, 0);
		if (i % 4 == 3) /* another offset and size */
			op = op_map(a->bo, PG, FAR + (uint64_t)(i % 64) * (1ull << 30), 16 * PG, 0);
		int r = sync_bind(a->c, a->vm, &op, 1);
		if (r == -ENOMEM)
			a->enomem++;
		else if (!a->other)
			a->other = r ? r : 1000 + i; /* 0: run where the countdown was not armed */
	}
	struct vmb_fault_inject off = {.classes = VMB_INJECT_HOST_ALLOC, .scope = VMB_INJECT_SCOPE_THREAD};
	vmb_debug_fault_inject(a->c, &off);
	atomic_store(a->stop, true);
	return NULL;
}

static void test_armed_thread_not_combined(void **state)
{
	(void)state;
	struct vmb_client *c = open_soft(256 * MiB, 256 * MiB);
	uint32_t vm = vm_new(c, 0);
	uint32_t bo1 = bo_patterned(c, 1), bo2 = bo_patterned(c, 2), bo3 = bo_patterned(c, 3);
	uint64_t seed = test_seed("armed-thread");

	/* alone first: the injection does fail such a MAP on this thread */
	arm_host(c, 1);
	struct vmb_bind_op op = op_map(bo3, 0, FAR, 64 * PG, 0);
	int r = sync_bind(c, vm, &op, 1);
	arm_host(c, 0);
	assert_int_equal(r, -ENOMEM);

	atomic_bool stop = false;
	struct binder w[3];
	memset(w, 0, sizeof(w));
	for (int t = 0; t < 3; t++) {
		w[t] = (struct binder){.c = c, .vm = vm, .bo = {bo1, bo2}, .t = t, .seed = rnd_next(&seed), .stop = &stop};
		assert_int_equal(pthread_create(&w[t].th, NULL, binder_run, &w[t]), 0);
	}
	for (int t = 0; t < 3; t++)
		while (!atomic_load(&w[t].started))
			sched_yield();
	struct armed a = {.c = c, .vm = vm, .bo = bo3, .stop = &stop};
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, armed_run, &a), 0);
	pthread_join(th, NULL);
	for (int t = 0; t < 3; t++)
		pthread_join(w[t].th, NULL);
	if (a.other)
		fail_msg("armed thread: %d (1000 + i: bind i succeeded; else its errno)", a.other);
	assert_int_equal(a.enomem, ARMED_ROUNDS);
	binders_check(w, 3);
	/* nothing the armed thread tried is mapped */
	for (int i = 0; i < 64; i++) {
		uint64_t v;
		assert_int_equal(__gpu_rw(c, vm, FAR + (uint64_t)i * (1ull << 30), &v, 8, false), -EFAULT);
	}
	assert_int_equal(bo_mappings(c, bo3), 0);
	validate_client(c);
	assert_int_equal(vmb_client_close(c), 0);
}

/* ---- signals to threads whose binds are queued or being run by the holder ---- */

static atomic_long sigs_taken;
static void on_usr1(int sig)
{
	(void)sig;
	atomic_fetch_add(&sigs_taken, 1);
}

#define SIG_THREADS 4

static void test_signals_to_combining_waiters(void **state)
{
	(void)state;
	struct vmb_client *c = open_soft(256 * MiB, 256 * MiB);
	uint32_t vm = vm_new(c, 0);
	uint32_t bo1 = bo_patterned(c, 1), bo2 = bo_patterned(c, 2);
	uint64_t seed = test_seed("signals");
	struct sigaction sa = {.sa_handler = on_usr1}, old; /* no SA_RESTART */
	sigemptyset(&sa.sa_mask);
	assert_int_equal(sigaction(SIGUSR1, &sa, &old), 0);
	atomic_store(&sigs_taken, 0);

	struct binder w[SIG_THREADS];
	atomic_bool stop = false;
	memset(w, 0, sizeof(w));
	for (int t = 0; t < SIG_THREADS; t++) {
		/* no asynchronous bind anywhere: a synchronous one never waits in the call, so a
		 * signal must never turn into -EINTR (nor change a result). They bind until stopped:
		 * with a fixed count they could finish before the first signal (binds got faster) */
		w[t] = (struct binder){.c = c, .vm = vm, .bo = {bo1, bo2}, .t = t, .seed = rnd_next(&seed), .stop = &stop};
		assert_int_equal(pthread_create(&w[t].th, NULL, binder_run, &w[t]), 0);
	}
	/* signal them while they run: until 4000 signals were taken, or 160k sent */
	for (int i = 0; i < 40000 && atomic_load(&sigs_taken) < 4000; i++) {
		bool any = false;
		for (int t = 0; t < SIG_THREADS; t++) {
			if (!atomic_load(&w[t].finished)) {
				pthread_kill(w[t].th, SIGUSR1);
				any = true;
			}
		}
		if (!any)
			break;
		if (i % 8 == 7)
			sched_yield();
	}
	atomic_store(&stop, true);
	for (int t = 0; t < SIG_THREADS; t++)
		pthread_join(w[t].th, NULL);
	printf("signals taken: %ld\n", atomic_load(&sigs_taken));
	assert_true(atomic_load(&sigs_taken) > 0);
	binders_check(w, SIG_THREADS);
	validate_client(c);
	assert_int_equal(sigaction(SIGUSR1, &old, NULL), 0);
	assert_int_equal(vmb_client_close(c), 0);
}

/* ---- fork() while binds are being combined ---- */

static void test_fork_while_combining(void **state)
{
	(void)state;
	struct vmb_client *c = open_soft(256 * MiB, 256 * MiB);
	uint32_t vm = vm_new(c, 0);
	uint32_t bo1 = bo_patterned(c, 1), bo2 = bo_patterned(c, 2);
	uint64_t seed = test_seed("fork");
	atomic_bool stop = false;
	struct binder w[3];
	memset(w, 0, sizeof(w));
	for (int t = 0; t < 3; t++) {
		w[t] = (struct binder){.c = c, .vm = vm, .bo = {bo1, bo2}, .t = t, .seed = rnd_next(&seed), .stop = &stop};
		assert_int_equal(pthread_create(&w[t].th, NULL, binder_run, &w[t]), 0);
	}
	for (int t = 0; t < 3; t++)
		while (!atomic_load(&w[t].started))
			sched_yield();
	for (int i = 0; i < 8; i++) {
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			alarm(10); /* a hang (a lock copied held) kills the child: the parent sees it */
			struct vmb_bind_op op = op_map(bo1, 0, 0, PG, 0);
			int r = sync_bind(c, vm, &op, 1);
			int cl = vmb_client_close(c);
			_exit(r == -EIO && cl == 0 ? 0 : 1);
		}
		int st = 0;
		assert_int_equal(waitpid(pid, &st, 0), pid);
		if (!WIFEXITED(st) || WEXITSTATUS(st))
			fail_msg("child %d: status %#x (a signal: %d)", i, st, WIFSIGNALED(st) ? WTERMSIG(st) : 0);
		/* some binds in between */
		for (int k = 0; k < 200 && !w[0].err[0]; k++)
			sched_yield();
	}
	atomic_store(&stop, true);
	for (int t = 0; t < 3; t++)
		pthread_join(w[t].th, NULL);
	binders_check(w, 3);
	validate_client(c);
	assert_int_equal(vmb_client_close(c), 0);
}

/* ---- a BO's mapping count over several vms binding at once ---- */

#define CNT_VMS 4
#define CNT_MAPS 8 /* mappings of the BO a vm holds at most */

struct counter {
	struct vmb_client *c;
	uint32_t vm, bo;
	int t, rounds;
	char err[96];
	pthread_t th;
};

static void *counter_run(void *arg)
{
	struct counter *k = arg;
	for (int i = 0; i < k->rounds && !k->err[0]; i++) {
		/* CNT_MAPS mappings, one call each or one call for all, then all gone at once or by range */
		struct vmb_bind_op ops[CNT_MAPS];
		for (int m = 0; m < CNT_MAPS; m++)
			ops[m] = op_map(k->bo, (uint64_t)m * PG, (uint64_t)m * 16 * PG, PG, 0);
		int r = 0;
		if (i & 1) {
			r = sync_bind(k->c, k->vm, ops, CNT_MAPS);
		} else {
			for (int m = 0; m < CNT_MAPS && !r; m++)
				r = sync_bind(k->c, k->vm, &ops[m], 1);
		}
		struct vmb_bind_op un = i & 2 ? op_unmap_all(k->bo) : op_unmap(0, CNT_MAPS * 16 * PG);
		if (!r)
			r = sync_bind(k->c, k->vm, &un, 1);
		if (r)
			snprintf(k->err, sizeof(k->err), "vm %d round %d: %d", k->t, i, r);
	}
	/* leave t + 1 mappings */
	for (int m = 0; m <= k->t && !k->err[0]; m++) {
		struct vmb_bind_op op = op_map(k->bo, 0, (uint64_t)m * 16 * PG, PG, 0);
		int r = sync_bind(k->c, k->vm, &op, 1);
		if (r)
			snprintf(k->err, sizeof(k->err), "vm %d final %d: %d", k->t, m, r);
	}
	return NULL;
}

static void test_bo_mapping_count_across_vms(void **state)
{
	(void)state;
	struct vmb_client *c = open_soft(256 * MiB, 256 * MiB);
	uint32_t bo = bo_patterned(c, 1);
	struct counter k[CNT_VMS];
	memset(k, 0, sizeof(k));
	for (int t = 0; t < CNT_VMS; t++) {
		k[t] = (struct counter){.c = c, .vm = vm_new(c, 0), .bo = bo, .t = t, .rounds = 300};
		assert_int_equal(pthread_create(&k[t].th, NULL, counter_run, &k[t]), 0);
	}
	/* each query sees some state between the binds: never more than all vms' most */
	uint32_t max = CNT_VMS * CNT_MAPS;
	for (int i = 0; i < 2000; i++) {
		uint32_t n = bo_mappings(c, bo);
		if (n > max)
			fail_msg("query %d: %u mappings, at most %u", i, n, max);
		if (i % 16 == 15)
			sched_yield();
	}
	for (int t = 0; t < CNT_VMS; t++) {
		pthread_join(k[t].th, NULL);
		assert_string_equal(k[t].err, "");
	}
	assert_int_equal(bo_mappings(c, bo), 1 + 2 + 3 + 4);
	validate_client(c);
	/* a vm destroyed with its mappings: they go from the count */
	vm_destroy1(c, k[1].vm);
	assert_int_equal(bo_mappings(c, bo), 1 + 3 + 4);
	/* the handle gone, the links keep the BO; their last mappings go by range, in one vm
	 * while another still maps it, then the vms */
	bo_destroy1(c, bo);
	struct vmb_bind_op un = op_unmap(0, CNT_MAPS * 16 * PG);
	assert_int_equal(sync_bind(c, k[0].vm, &un, 1), 0);
	assert_int_equal(sync_bind(c, k[3].vm, &un, 1), 0);
	uint64_t v = 0;
	assert_int_equal(__gpu_rw(c, k[2].vm, 2 * 16 * PG, &v, 8, false), 0);
	assert_int_equal(v, pattern(1, 0));
	validate_client(c);
	vm_destroy1(c, k[0].vm);
	vm_destroy1(c, k[2].vm);
	vm_destroy1(c, k[3].vm);
	assert_int_equal(vmb_client_close(c), 0);
}

/* ---- the vm's last link: freed, orphaned while a job is pending, found again ---- */

static void test_last_link_freed_and_orphaned(void **state)
{
	(void)state;
	struct vmb_client *c = open_soft(256 * MiB, 256 * MiB);
	uint32_t vm = vm_new(c, 0);
	uint32_t a = bo_patterned(c, 1), b = bo_patterned(c, 2);
	uint32_t q = queue_new(c, vm);

	/* the last link freed by UNMAP_ALL, then by a range UNMAP, each time mapped again */
	struct vmb_bind_op ops[] = {op_map(a, 0, 0, PG, 0), op_map(a, PG, PG, PG, 0), op_unmap_all(a),
				    op_map(b, 0, 2 * PG, PG, 0), op_unmap(2 * PG, PG), op_map(a, 2 * PG, 3 * PG, PG, 0)};
	for (unsigned int i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
		assert_int_equal(sync_bind(c, vm, &ops[i], 1), 0);
	assert_int_equal(bo_mappings(c, a), 1);
	assert_int_equal(bo_mappings(c, b), 0);
	assert_int_equal(gpu_read64(c, vm, 3 * PG), pattern(1, 2));

	/* a job pending on another queue: a link left without mappings is an orphan, kept; the
	 * vm's last link still names it; mapped again, unmapped again, its BO's handle gone */
	struct gate g = gate_new(c);
	static uint64_t done;
	done = 0;
	struct vmb_bind_op far = op_map(b, 0, 64 * PG, PG, 0);
	struct vmb_sync s[2] = {sync_in(g.h), sync_ufence(&done, 1)};
	assert_int_equal(__bind_async(c, vm, q, &far, 1, s, 2), 0);
	struct vmb_bind_op un = op_unmap(3 * PG, PG), re = op_map(a, 5 * PG, 8 * PG, PG, 0),
			   un2 = op_unmap(8 * PG, PG), multi[3] = {op_map(a, 0, 9 * PG, PG, 0), op_unmap(9 * PG, PG),
								   op_map(a, PG, 10 * PG, PG, 0)};
	assert_int_equal(sync_bind(c, vm, &un, 1), 0);
	assert_int_equal(bo_mappings(c, a), 0);
	assert_int_equal(sync_bind(c, vm, &re, 1), 0);
	assert_int_equal(bo_mappings(c, a), 1);
	assert_int_equal(sync_bind(c, vm, &un2, 1), 0);
	assert_int_equal(sync_bind(c, vm, multi, 3), 0);
	assert_int_equal(bo_mappings(c, a), 1);
	assert_int_equal(gpu_read64(c, vm, 10 * PG), pattern(1, 1));
	struct vmb_bind_op un3 = op_unmap(10 * PG, PG);
	assert_int_equal(sync_bind(c, vm, &un3, 1), 0);
	bo_destroy1(c, a); /* its link (an orphan) holds it */
	gate_open(&g);
	ufence_wait(c, &done, 1);
	/* nothing pending: the next job's end frees the orphan (and clears the last link) */
	uint32_t a2 = bo_patterned(c, 3);
	struct vmb_bind_op m2 = op_map(a2, 0, 11 * PG, PG, 0), m3 = op_map(a2, PG, 12 * PG, PG, 0);
	assert_int_equal(sync_bind(c, vm, &m2, 1), 0);
	assert_int_equal(sync_bind(c, vm, &m3, 1), 0);
	assert_int_equal(bo_mappings(c, a2), 2);
	assert_int_equal(gpu_read64(c, vm, 12 * PG), pattern(3, 1));
	assert_int_equal(gpu_read64(c, vm, 64 * PG), pattern(2, 0));
	validate_client(c);
	vm_destroy1(c, vm);
	assert_int_equal(bo_mappings(c, a2), 0);
	assert_int_equal(vmb_client_close(c), 0);
}

/* ---- a failed commit: its error goes to its own call, whoever ran it ---- */

#define FC_THREADS 4

struct fc_worker {
	struct vmb_client *c;
	uint32_t vm, bo;
	int t;
	int ok, injected, eio, other;
	pthread_t th;
};

static void *fc_run(void *arg)
{
	struct fc_worker *k = arg;
	uint64_t base = (uint64_t)(k->t + 1) * SLICE * 4;
	for (int i = 0; i < 4000 && !k->other; i++) {
		uint64_t p = (uint64_t)(i / 2 % 64); /* mapped, then unmapped: each call commits */
		struct vmb_bind_op op = i & 1 ? op_unmap(base + p * PG, PG) : op_map(k->bo, p * PG, base + p * PG, PG, 0);
		int r = sync_bind(k->c, k->vm, &op, 1);
		if (!r) {
			/* no call succeeds once a call saw the ban (the ban comes before its result) */
			if (k->eio || k->injected)
				k->other = 1000 + i;
			k->ok++;
		} else if (r == -ENOMEM) {
			k->injected++;
		} else if (r == -EIO) {
			k->eio++;
		} else {
			k->other = r;
		}
		if (k->eio > 16)
			break;
	}
	return NULL;
}

/* The process's COMMIT countdown fires on the 200th commit, whichever thread runs it (the holder
 * of the vm's lock, for a combined bind): exactly one call returns the injected -ENOMEM, the vm is
 * banned, every later call fails with -EIO. A result handed to the wrong request would show as a
 * second -ENOMEM, none, or a success after the ban. */
static void test_failed_commit_result_to_its_call(void **state)
{
	(void)state;
	struct vmb_client *c = open_soft(256 * MiB, 256 * MiB);
	uint32_t vm = vm_new(c, 0);
	uint32_t bo = bo_patterned(c, 1);
	struct vmb_fault_inject fi = {.classes = VMB_INJECT_COMMIT, .flags = VMB_INJECT_ONCE, .nth = 200,
				      .scope = VMB_INJECT_SCOPE_PROCESS, .error = -ENOMEM};
	assert_int_equal(vmb_debug_fault_inject(c, &fi), 0);
	struct fc_worker k[FC_THREADS];
	memset(k, 0, sizeof(k));
	for (int t = 0; t < FC_THREADS; t++) {
		k[t] = (struct fc_worker){.c = c, .vm = vm, .bo = bo, .t = t};
		assert_int_equal(pthread_create(&k[t].th, NULL, fc_run, &k[t]), 0);
	}
	int injected = 0, ok = 0;
	for (int t = 0; t < FC_THREADS; t++) {
		pthread_join(k[t].th, NULL);
		if (k[t].other)
			fail_msg("thread %d: %d (1000 + i: call i succeeded after a failure)", t, k[t].other);
		injected += k[t].injected;
		ok += k[t].ok;
	}
	struct vmb_fault_inject off = {.classes = VMB_INJECT_COMMIT, .scope = VMB_INJECT_SCOPE_PROCESS};
	assert_int_equal(vmb_debug_fault_inject(c, &off), 0);
	assert_int_equal(off.injected, 1);
	assert_int_equal(injected, 1);
	assert_int_equal(ok, 199);
	struct vmb_bind_op op = op_map(bo, 0, 0, PG, 0);
	assert_int_equal(sync_bind(c, vm, &op, 1), -EIO);
	assert_int_equal(vmb_client_close(c), 0);
}

/* ---- one snapshot of queued binds, good and bad: each call gets its own result ---- */

#define SN 6       /* calls queued behind the holder */
#define SN_BAD 3   /* the one whose bind fails (-EINVAL: 4 KiB out of a 64 KiB chunk's mapping) */

static const struct vmb_device_ops *sn_real;
static struct vmb_device_ops sn_ops;
static atomic_int sn_armed, sn_blocked, sn_open;

/* The first map_prepare once armed (the holder's bind) waits, under the vm's lock, until opened. */
static int sn_map_prepare(struct vmb_dev_vm *dvm, const struct vmb_map_op *op, struct vmb_dev_prep *p)
{
	if (atomic_exchange(&sn_armed, 0)) {
		atomic_store(&sn_blocked, 1);
		while (!atomic_load(&sn_open))
			sched_yield();
	}
	return sn_real->map_prepare(dvm, op, p);
}

struct sn_call {
	struct vmb_client *c;
	uint32_t vm;
	struct vmb_bind_op op;
	atomic_int result; /* 1 until the call returns */
	pthread_t th;
};

static void *sn_run(void *arg)
{
	struct sn_call *k = arg;
	atomic_store(&k->result, sync_bind(k->c, k->vm, &k->op, 1));
	return NULL;
}

/* Requests on the vm's queue (the holder is blocked: nobody takes or unlinks them meanwhile). */
static int sn_queued(struct vmb_vm *v)
{
	int n = 0;
	for (struct vmb_combine_req *r = atomic_load_explicit(&v->combine.head, memory_order_acquire); r; r = r->next)
		n++;
	return n;
}

/* A holder blocked in its bind's preparation while SN synchronous 1-op calls queue behind it:
 * MAPs and UNMAPs of their own pages, and one UNMAP of 4 KiB inside a 64 KiB chunk's mapping
 * (-EINVAL in the preparation). Once opened, the holder runs them (one snapshot, whatever the
 * holder batches): each call gets its own result, the bad one -EINVAL with nothing changed (the
 * chunk still mapped whole), the good ones done. A result handed to the wrong call, or one call's
 * failure taken for its neighbours', shows. */
static void test_snapshot_results_to_their_calls(void **state)
{
	(void)state;
	struct vmb_client *c = open_soft(256 * MiB, 256 * MiB);
	uint32_t vm = vm_new(c, 0);
	uint32_t bo = bo_patterned(c, 1), chunk = chunk_bo_new(c);
	const uint64_t base = 64 * MiB, chunked = 128 * MiB;
	struct vmb_bind_op m = op_map(chunk, 0, chunked, CHUNK, 0);
	assert_int_equal(sync_bind(c, vm, &m, 1), 0);
	for (int t = 0; t < SN; t++) /* the odd ones unmap a page mapped here */
		if (t % 2 && t != SN_BAD) {
			struct vmb_bind_op pre = op_map(bo, (uint64_t)t * PG, base + (uint64_t)t * 16 * PG, PG, 0);
			assert_int_equal(sync_bind(c, vm, &pre, 1), 0);
		}
	struct vmb_vm *v = vmb_handle_lookup(&c->vms, vm); /* no vm is created or destroyed meanwhile */
	assert_non_null(v);
	for (int round = 0; round < 4; round++) {
		sn_real = c->dev->ops;
		sn_ops = *sn_real;
		sn_ops.map_prepare = sn_map_prepare;
		atomic_store(&sn_blocked, 0);
		atomic_store(&sn_open, 0);
		atomic_store(&sn_armed, 1);
		c->dev->ops = &sn_ops;
		struct sn_call h = {.c = c, .vm = vm, .op = op_map(bo, 0, base + 1 * MiB, PG, 0)};
		atomic_init(&h.result, 1);
		assert_int_equal(pthread_create(&h.th, NULL, sn_run, &h), 0);
		int64_t end = vmb_now_ns() + 20 * SEC;
		while (!atomic_load(&sn_blocked) && vmb_now_ns() < end)
			sched_yield();
		assert_true(atomic_load(&sn_blocked));
		struct sn_call k[SN];
		for (int t = 0; t < SN; t++) {
			uint64_t a = base + (uint64_t)t * 16 * PG;
			bool unmap = t % 2 == (round % 2 == 0); /* rounds alternate which ones map */
			k[t] = (struct sn_call){.c = c, .vm = vm,
						.op = t == SN_BAD ? op_unmap(chunked + PG, PG)
						      : unmap ? op_unmap(a, PG) : op_map(bo, (uint64_t)t * PG, a, PG, 0)};
			atomic_init(&k[t].result, 1);
			assert_int_equal(pthread_create(&k[t].th, NULL, sn_run, &k[t]), 0);
		}
		while (sn_queued(v) < SN && vmb_now_ns() < end)
			sched_yield();
		int queued = sn_queued(v);
		atomic_store(&sn_open, 1);
		assert_int_equal(pthread_join(h.th, NULL), 0);
		for (int t = 0; t < SN; t++)
			assert_int_equal(pthread_join(k[t].th, NULL), 0);
		c->dev->ops = sn_real;
		assert_int_equal(queued, SN);
		assert_int_equal(atomic_load(&h.result), 0);
		for (int t = 0; t < SN; t++) {
			int r = atomic_load(&k[t].result);
			if (r != (t == SN_BAD ? -EINVAL : 0))
				fail_msg("round %d: call %d: %d", round, t, r);
		}
		for (uint64_t pg = 0; pg < CHUNK / PG; pg++) /* the failed call changed nothing */
			assert_int_equal(gpu_read64(c, vm, chunked + pg * PG), pattern(9, pg));
		for (int t = 0; t < SN; t++) {
			if (t == SN_BAD)
				continue;
			uint64_t a = base + (uint64_t)t * 16 * PG, got = 0;
			bool mapped = k[t].op.op == VMB_BIND_OP_MAP;
			int r = __gpu_rw(c, vm, a, &got, 8, false);
			if (mapped ? r || got != pattern(1, (uint64_t)t) : !r)
				fail_msg("round %d: call %d's page (%s): read %d, %llx", round, t, mapped ? "mapped" : "unmapped",
					 r, (unsigned long long)got);
		}
		struct vmb_bind_op un = op_unmap(base + 1 * MiB, PG);
		assert_int_equal(sync_bind(c, vm, &un, 1), 0);
	}
	validate_client(c);
	assert_int_equal(vmb_client_close(c), 0);
}

/* ---- the vm destroyed while binds are being combined ---- */

static void test_vm_destroy_while_combining(void **state)
{
	(void)state;
	struct vmb_client *c = open_soft(256 * MiB, 256 * MiB);
	uint32_t bo1 = bo_patterned(c, 1), bo2 = bo_patterned(c, 2);
	uint64_t seed = test_seed("destroy");
	for (int round = 0; round < 8; round++) {
		uint32_t vm = vm_new(c, 0);
		atomic_bool stop = false;
		struct binder w[3];
		memset(w, 0, sizeof(w));
		for (int t = 0; t < 3; t++) {
			w[t] = (struct binder){.c = c, .vm = vm, .bo = {bo1, bo2}, .t = t, .seed = rnd_next(&seed),
					       .stop = &stop};
			assert_int_equal(pthread_create(&w[t].th, NULL, binder_run, &w[t]), 0);
		}
		for (int t = 0; t < 3; t++)
			while (!atomic_load(&w[t].started))
				sched_yield();
		for (int k = 0; k < 20 * round; k++)
			sched_yield();
		vm_destroy1(c, vm);
		/* every binder ends on -ENOENT (the vm's handle gone) */
		for (int t = 0; t < 3; t++) {
			pthread_join(w[t].th, NULL);
			if (w[t].last != -ENOENT)
				fail_msg("round %d thread %d: %s", round, t, w[t].err[0] ? w[t].err : "no failure");
		}
		validate_client(c);
	}
	assert_int_equal(vmb_client_close(c), 0);
}

/* ---- restart mode under combining: calls failing partway on several threads ---- */

#define RS_THREADS 4
#define RS_CALLS 300
#define RS_OPS 6

struct rs_binder {
	struct vmb_client *c;
	uint32_t vm, bo[2];
	int t;
	uint64_t seed;
	uint64_t model[SLICE_PAGES];
	int partial, busy, restarts;
	atomic_int *ready; /* all start together */
	char err[160];
	pthread_t th;
};

/* The model after op @op (MAP/UNMAP inside the binder's slice). */
static void rs_apply(struct rs_binder *w, const struct vmb_bind_op *op, const uint32_t *tags)
{
	uint64_t base = (uint64_t)(w->t + 1) * SLICE * 4;
	uint64_t start = (op->addr - base) / PG, pages = op->range / PG;
	for (uint64_t p = 0; p < pages; p++)
		w->model[start + p] = op->op == VMB_BIND_OP_UNMAP ? 0 : pattern(tags[0], op->bo_offset / PG + p);
}

/* Each call: 2..RS_OPS ops on the thread's slice, synchronous, sometimes with this thread's
 * N-th host allocation failing. -EBUSY (another thread's call owes a restart): nothing changed,
 * the same call again. A failure after op 0: ops 0..k-1 done, the restart (nothing armed) does
 * the rest, or (one in 4) the restart is given up; the model follows op by op. */
static void *rs_run(void *arg)
{
	struct rs_binder *w = arg;
	uint64_t base = (uint64_t)(w->t + 1) * SLICE * 4;
	atomic_fetch_add(w->ready, 1);
	while (atomic_load(w->ready) < RS_THREADS)
		sched_yield();
	for (int i = 0; i < RS_CALLS && !w->err[0]; i++) {
		struct vmb_bind_op ops[RS_OPS];
		uint32_t tags[RS_OPS];
		uint32_t n = 2 + (uint32_t)rnd_below(&w->seed, RS_OPS - 1);
		for (uint32_t k = 0; k < n; k++) {
			uint64_t pages = 1 + rnd_below(&w->seed, 16), start = rnd_below(&w->seed, SLICE_PAGES - pages);
			tags[k] = 1 + (uint32_t)rnd_below(&w->seed, 2);
			uint64_t off = rnd_below(&w->seed, BO_SIZE / PG - pages);
			ops[k] = rnd_below(&w->seed, 3) == 0 ? op_unmap(base + start * PG, pages * PG)
							     : op_map(w->bo[tags[k] - 1], off * PG, base + start * PG, pages * PG, 0);
		}
		uint64_t nth = rnd_below(&w->seed, 2) ? 1 + rnd_below(&w->seed, 3 * n) : 0;
		struct vmb_vm_bind b = {.vm_id = w->vm, .num_binds = n, .binds = (uint64_t)(uintptr_t)ops};
		int r;
		for (;;) {
			if (nth) {
				struct vmb_fault_inject fi = {.classes = VMB_INJECT_HOST_ALLOC, .flags = VMB_INJECT_ONCE,
							      .nth = nth, .scope = VMB_INJECT_SCOPE_THREAD};
				vmb_debug_fault_inject(w->c, &fi);
			}
			r = vmb_vm_bind(w->c, &b);
			struct vmb_fault_inject off = {.classes = VMB_INJECT_HOST_ALLOC, .scope = VMB_INJECT_SCOPE_THREAD};
			vmb_debug_fault_inject(w->c, &off);
			if (r != -EBUSY)
				break;
			if (b.restart) {
				snprintf(w->err, sizeof(w->err), "thread %d call %d: -EBUSY wrote restart %llx", w->t, i,
					 (unsigned long long)b.restart);
				return NULL;
			}
			w->busy++;
			sched_yield();
		}
		uint32_t done = r ? VMB_VM_BIND_RESTART_DONE(b.restart) : n;
		if (r && r != -ENOMEM) {
			snprintf(w->err, sizeof(w->err), "thread %d call %d: %d", w->t, i, r);
			return NULL;
		}
		if (r && (done >= n || (done == 0) != (b.restart == 0))) {
			snprintf(w->err, sizeof(w->err), "thread %d call %d: -ENOMEM, cookie %llx", w->t, i,
				 (unsigned long long)b.restart);
			return NULL;
		}
		for (uint32_t k = 0; k < done; k++)
			rs_apply(w, &ops[k], &tags[k]);
		if (!r || !done)
			continue;
		w->partial++;
		if (rnd_below(&w->seed, 4) == 0) { /* given up: ops 0..k-1 stay */
			struct vmb_vm_bind give_up = {.vm_id = w->vm, .restart = b.restart};
			r = vmb_vm_bind(w->c, &give_up);
			if (r || give_up.restart) {
				snprintf(w->err, sizeof(w->err), "thread %d call %d: giving up: %d", w->t, i, r);
				return NULL;
			}
			continue;
		}
		/* its restart: nothing armed, it completes (nobody else knows the cookie) */
		r = vmb_vm_bind(w->c, &b);
		if (r || b.restart) {
			snprintf(w->err, sizeof(w->err), "thread %d call %d: restart from %u: %d, cookie %llx", w->t, i,
				 done, r, (unsigned long long)b.restart);
			return NULL;
		}
		w->restarts++;
		for (uint32_t k = done; k < n; k++)
			rs_apply(w, &ops[k], &tags[k]);
	}
	return NULL;
}

static void test_restart_mode_combined(void **state)
{
	(void)state;
	struct vmb_client *c = open_soft(256 * MiB, 256 * MiB);
	uint32_t vm = vm_new(c, VMB_VM_CREATE_RESTART_MODE);
	uint32_t bo1 = bo_patterned(c, 1), bo2 = bo_patterned(c, 2);
	uint64_t seed = test_seed("restart-mode");
	struct rs_binder *w = calloc(RS_THREADS, sizeof(*w)); /* not on the stack: a failure leaves threads */
	assert_non_null(w);
	static atomic_int ready;
	atomic_store(&ready, 0);
	for (int t = 0; t < RS_THREADS; t++) {
		w[t] = (struct rs_binder){.c = c, .vm = vm, .bo = {bo1, bo2}, .t = t, .seed = rnd_next(&seed), .ready = &ready};
		assert_int_equal(pthread_create(&w[t].th, NULL, rs_run, &w[t]), 0);
	}
	int partial = 0, busy = 0;
	for (int t = 0; t < RS_THREADS; t++) {
		pthread_join(w[t].th, NULL);
		if (w[t].err[0])
			fail_msg("%s", w[t].err);
		partial += w[t].partial;
		busy += w[t].busy;
	}
	print_message("calls failed partway (restarted or given up): %d; -EBUSY: %d\n", partial, busy);
	assert_true(partial > 0);
	for (int t = 0; t < RS_THREADS; t++) {
		uint64_t sbase = (uint64_t)(t + 1) * SLICE * 4;
		for (uint64_t p = 0; p < SLICE_PAGES; p++) {
			uint64_t v = 0;
			int err = __gpu_rw(c, vm, sbase + p * PG, &v, 8, false);
			if (w[t].model[p] ? err || v != w[t].model[p] : err != -EFAULT)
				fail_msg("thread %d page %llu: err %d value %llx, model %llx", t, (unsigned long long)p, err,
					 (unsigned long long)v, (unsigned long long)w[t].model[p]);
		}
	}
	/* nothing owed: a new bind is taken */
	struct vmb_bind_op op = op_map(bo1, 0, 0, PG, 0);
	assert_int_equal(sync_bind(c, vm, &op, 1), 0);
	free(w);
	validate_client(c);
	assert_int_equal(vmb_client_close(c), 0);
}

/* ---- waiters whose bind the holder hands back (it must wait): interrupted in their own call ---- */

#ifndef VMB_FENCE_CONDVAR
#define GATED (1ull << 38) /* a range no binder's slice reaches */
#define WAITERS 3

struct waiter {
	struct vmb_client *c;
	uint32_t vm, bo;
	int t;
	atomic_int eintr;
	atomic_bool *stop;
	atomic_bool done; /* its loop ended */
	int other;
	pthread_t th;
};

/* Synchronous MAPs of one page inside a range a gated bind of another queue maps: each must
 * wait for it (whoever holds the vm's lock hands the bind back to its call), so with the gate
 * closed a call ends only by a signal: -EINTR, nothing changed. */
static void *waiter_run(void *arg)
{
	struct waiter *w = arg;
	for (int i = 0; !atomic_load(w->stop); i++) {
		struct vmb_bind_op op = op_map(w->bo, 0, GATED + (uint64_t)(w->t * 8 + i % 8) * PG, PG, 0);
		int r = sync_bind(w->c, w->vm, &op, 1);
		if (r == -EINTR) {
			atomic_fetch_add(&w->eintr, 1);
			continue;
		}
		w->other = r ? r : 1000 + i;
		break;
	}
	atomic_store(&w->done, true);
	return NULL;
}
#endif

static void test_handed_back_binds_interrupted(void **state)
{
	(void)state;
#ifdef VMB_FENCE_CONDVAR
	skip(); /* waits are not interruptible in this build */
#else
	struct vmb_client *c = open_soft(256 * MiB, 256 * MiB);
	uint32_t vm = vm_new(c, 0), q = queue_new(c, vm);
	uint32_t bo1 = bo_patterned(c, 1), bo2 = bo_patterned(c, 2);
	uint64_t seed = test_seed("handed-back");
	struct sigaction sa = {.sa_handler = on_usr1}, old; /* no SA_RESTART */
	sigemptyset(&sa.sa_mask);
	assert_int_equal(sigaction(SIGUSR1, &sa, &old), 0);
	struct gate g = gate_new(c);
	struct vmb_sync in = sync_in(g.h);
	struct vmb_bind_op gated = op_map(bo1, 0, GATED, 64 * PG, 0);
	assert_int_equal(__bind_async(c, vm, q, &gated, 1, &in, 1), 0);

	atomic_bool stop = false, wstop = false;
	struct binder *b = calloc(2, sizeof(*b));
	struct waiter *w = calloc(WAITERS, sizeof(*w));
	assert_true(b && w);
	for (int t = 0; t < 2; t++) {
		b[t] = (struct binder){.c = c, .vm = vm, .bo = {bo1, bo2}, .t = t, .seed = rnd_next(&seed), .stop = &stop};
		assert_int_equal(pthread_create(&b[t].th, NULL, binder_run, &b[t]), 0);
	}
	for (int t = 0; t < WAITERS; t++) {
		w[t] = (struct waiter){.c = c, .vm = vm, .bo = bo2, .t = t, .stop = &wstop};
		assert_int_equal(pthread_create(&w[t].th, NULL, waiter_run, &w[t]), 0);
	}
	/* signal the waiters until each was interrupted 20 times (a hang: 20 s) */
	for (int i = 0; i < 10000; i++) {
		bool all = true;
		for (int t = 0; t < WAITERS; t++) {
			all &= atomic_load(&w[t].eintr) >= 20 || w[t].other;
			pthread_kill(w[t].th, SIGUSR1);
		}
		if (all)
			break;
		usleep(2000);
	}
	atomic_store(&wstop, true);
	/* until each has seen the stop: a call begun meanwhile waits until a signal ends it */
	for (int k = 0; k < 20000; k++) {
		bool all = true;
		for (int t = 0; t < WAITERS; t++) {
			if (!atomic_load(&w[t].done)) {
				pthread_kill(w[t].th, SIGUSR1);
				all = false;
			}
		}
		if (all)
			break;
		usleep(1000);
	}
	for (int t = 0; t < WAITERS; t++) {
		pthread_join(w[t].th, NULL);
		if (w[t].other)
			fail_msg("waiter %d: %d (1000 + i: call i succeeded with the gate closed)", t, w[t].other);
		assert_true(atomic_load(&w[t].eintr) >= 20);
	}
	atomic_store(&stop, true);
	for (int t = 0; t < 2; t++)
		pthread_join(b[t].th, NULL);
	gate_open(&g);
	/* the gated bind commits; none of the interrupted MAPs changed anything */
	for (uint64_t p = 0; p < 64; p++) {
		uint64_t v = 0;
		while (__gpu_rw(c, vm, GATED + p * PG, &v, 8, false) == -EFAULT)
			sched_yield();
		assert_int_equal(v, pattern(1, p));
	}
	binders_check(b, 2);
	validate_client(c);
	free(b);
	free(w);
	assert_int_equal(sigaction(SIGUSR1, &old, NULL), 0);
	assert_int_equal(vmb_client_close(c), 0);
#endif
}

/* ---- asynchronous binds combined, with timeline points and exported/imported sync files ---- */

#define TT 4       /* threads */
#define TOPS 1200  /* calls per thread */

struct tbinder {
	struct binder b;
	uint32_t q[AQ];
	uint32_t tl;               /* the thread's timeline: its call i signals point i + 1 */
	uint32_t so;               /* a binary syncobj some calls both wait for and signal */
	struct tbinder *next;      /* the thread whose submitted points some calls wait for */
	_Atomic uint64_t submitted; /* points of @tl whose calls returned */
};

static int tl_export_import(struct vmb_client *c, uint32_t tl, uint64_t point, uint32_t *imported)
{
	struct vmb_syncobj_fd e = {.handle = tl, .point = point};
	int r = vmb_syncobj_export_fd(c, &e);
	if (r)
		return r;
	struct vmb_syncobj_fd i = {.fd = e.fd};
	r = vmb_syncobj_import_fd(c, &i);
	close(e.fd);
	*imported = i.handle;
	return r;
}

/* Asynchronous calls of 1 to 3 ops on the thread's slice, round-robin over the shared queues:
 * call i signals the thread's timeline at point i + 1 and waits for its point i (so the points
 * signal in order although they go through different queues), often for the latest point
 * another thread has submitted, sometimes waits for and signals the thread's binary syncobj in
 * the same call, and sometimes waits for point i through a sync file exported from the timeline
 * and imported again (signalled by the library's fd watcher thread). */
static void *tbinder_run(void *arg)
{
	struct tbinder *a = arg;
	struct binder *w = &a->b;
	atomic_store(&w->started, 1);
	for (int i = 0; i < w->ops; i++) {
		struct vmb_bind_op ops[3];
		uint64_t next[SLICE_PAGES];
		uint32_t n = binder_ops(w, ops, next), qi = (uint32_t)i % AQ, imported = 0;
		struct vmb_sync syncs[6];
		uint32_t ns = 0;
		syncs[ns++] = sync_tl_out(a->tl, (uint64_t)i + 1);
		if (i)
			syncs[ns++] = sync_tl_in(a->tl, (uint64_t)i);
		uint64_t other = atomic_load(&a->next->submitted);
		if (other && i % 2)
			syncs[ns++] = sync_tl_in(a->next->tl, other);
		if (i % 4 == 3) {
			syncs[ns++] = sync_in(a->so);
			syncs[ns++] = sync_out(a->so);
		} else if (i % 4 == 1) {
			syncs[ns++] = sync_out(a->so);
		}
		if (i && i % 16 == 5) {
			int r = tl_export_import(w->c, a->tl, (uint64_t)i, &imported);
			if (r) {
				snprintf(w->err, sizeof(w->err), "thread %d call %d: export/import %d", w->t, i, r);
				break;
			}
			syncs[ns++] = sync_in(imported);
		}
		int r = __bind_async(w->c, w->vm, a->q[qi], ops, n, syncs, ns);
		if (imported) {
			struct vmb_syncobj_destroy d = {.handle = imported};
			assert_int_equal(vmb_syncobj_destroy(w->c, &d), 0);
		}
		if (r) {
			snprintf(w->err, sizeof(w->err), "thread %d bind %d: %d", w->t, i, r);
			break;
		}
		atomic_store(&a->submitted, (uint64_t)i + 1);
		memcpy(w->model, next, sizeof(next));
	}
	atomic_store(&w->finished, 1);
	return NULL;
}

static void test_async_combined_timelines(void **state)
{
	(void)state;
	uint32_t vm, bo[2], q[AQ];
	struct vmb_client *c = combined_setup(&vm, bo, q);
	uint32_t bo1 = bo[0], bo2 = bo[1];
	uint64_t seed = test_seed("async-combined-timelines");
	struct tbinder *a = calloc(TT, sizeof(*a));
	assert_non_null(a);
	for (int t = 0; t < TT; t++) {
		a[t].b = (struct binder){.c = c, .vm = vm, .bo = {bo1, bo2}, .t = t, .ops = TOPS, .seed = rnd_next(&seed)};
		memcpy(a[t].q, q, sizeof(q));
		a[t].tl = syncobj_new(c, VMB_SYNCOBJ_CREATE_TIMELINE);
		a[t].so = syncobj_new(c, 0);
		a[t].next = &a[(t + 1) % TT];
	}
	binders_run(a, sizeof(*a), TT, tbinder_run);
	for (int t = 0; t < TT; t++) {
		assert_string_equal(a[t].b.err, "");
		timeline_at(c, a[t].tl, TOPS);
		int32_t st = 0;
		uint64_t pt = TOPS;
		struct vmb_syncobj_status sa = {.handles = (uint64_t)(uintptr_t)&a[t].tl, .points = (uint64_t)(uintptr_t)&pt,
						.status = (uint64_t)(uintptr_t)&st, .count = 1};
		assert_int_equal(vmb_syncobj_query_status(c, &sa), 0);
		assert_int_equal(st, VMB_SYNCOBJ_STATUS_OK);
		assert_int_equal(syncobj_error(c, a[t].so), 0);
	}
	binders_finish(c, a, sizeof(*a), TT);
}

/* ---- combined asynchronous calls that fail at prepare: all or nothing, syncs untouched ---- */

#define FT 4      /* threads */
#define FOPS 900  /* calls per thread */

struct fbinder {
	struct binder b;
	uint32_t q[AQ];
	uint32_t tl;        /* out point of every call: the next after the last successful call's */
	uint64_t point;     /* the last point a successful call signalled */
	uint64_t uf[8];     /* out user fence of every call: the call's number + 1 */
	uint64_t uf_last;   /* the value of the last successful call's */
	uint64_t chunked;   /* where the thread's mapping of the 64 KiB-chunk BO lies */
	int failed;
};

/* Asynchronous calls of 1 to 3 ops on the thread's slice; every third has one more op last that
 * cuts the thread's mapping of a BO of 64 KiB chunks at 4 KiB (-EINVAL at prepare, plan_check_cuts,
 * after the earlier ops were prepared and applied to the tree). Each call signals the timeline
 * point after the last successful call's and writes its number in the user fence: a failed call
 * must leave the vm, its point (free for the next call) and the fence as they were. */
static void *fbinder_run(void *arg)
{
	struct fbinder *a = arg;
	struct binder *w = &a->b;
	atomic_store(&w->started, 1);
	for (int i = 0; i < w->ops; i++) {
		struct vmb_bind_op ops[4];
		uint64_t next[SLICE_PAGES];
		uint32_t n = binder_ops(w, ops, next), qi = (uint32_t)i % AQ;
		bool fail = i % 3 == 1;
		if (fail)
			ops[n++] = op_unmap(a->chunked + PG, PG);
		struct vmb_sync syncs[2] = {sync_tl_out(a->tl, a->point + 1), sync_ufence(&a->uf[0], (uint64_t)i + 1)};
		int r = __bind_async(w->c, w->vm, a->q[qi], ops, n, syncs, 2);
		if (r != (fail ? -EINVAL : 0)) {
			snprintf(w->err, sizeof(w->err), "thread %d call %d (%s): %d", w->t, i, fail ? "failing" : "valid", r);
			break;
		}
		if (fail) {
			a->failed++;
			continue;
		}
		a->point++;
		a->uf_last = (uint64_t)i + 1;
		memcpy(w->model, next, sizeof(next));
	}
	atomic_store(&w->finished, 1);
	return NULL;
}

static void test_async_combined_failures(void **state)
{
	(void)state;
	uint32_t vm, bo[2], q[AQ];
	struct vmb_client *c = combined_setup(&vm, bo, q);
	uint64_t seed = test_seed("async-combined-failures");
	uint32_t chunk_bo = chunk_bo_new(c);
	struct fbinder *a = calloc(FT, sizeof(*a));
	assert_non_null(a);
	for (int t = 0; t < FT; t++) {
		a[t].b = (struct binder){.c = c, .vm = vm, .bo = {bo[0], bo[1]}, .t = t, .ops = FOPS, .seed = rnd_next(&seed)};
		memcpy(a[t].q, q, sizeof(q));
		a[t].tl = syncobj_new(c, VMB_SYNCOBJ_CREATE_TIMELINE);
		a[t].chunked = (uint64_t)(t + 1) * SLICE * 4 + 2 * SLICE; /* beside the thread's slice */
		struct vmb_bind_op m = op_map(chunk_bo, 0, a[t].chunked, CHUNK, 0);
		assert_int_equal(sync_bind(c, vm, &m, 1), 0);
	}
	binders_run(a, sizeof(*a), FT, fbinder_run);
	for (int t = 0; t < FT; t++) {
		assert_string_equal(a[t].b.err, "");
		assert_true(a[t].failed > 0);
		timeline_at(c, a[t].tl, a[t].point);
		/* the fence went up with the successful calls only: a failed call's never shows */
		ufence_at(c, &a[t].uf[0], a[t].uf_last);
		for (uint64_t pg = 0; pg < CHUNK / PG; pg++)
			assert_int_equal(gpu_read64(c, vm, a[t].chunked + pg * PG), pattern(9, pg));
	}
	binders_finish(c, a, sizeof(*a), FT);
}

/* ---- client close while asynchronous calls are combined ---- */

#define CT 4        /* threads */
#define CFDS 64     /* sync files each thread keeps */

struct cbinder {
	struct binder b;
	uint32_t q[AQ], so, tl, gate;
	uint64_t uf[8];
	int fds[CFDS];
	int nfds;
	atomic_int calls;
	int ret; /* the result that ended the loop */
};

/* Asynchronous calls until one fails (-ENODEV once close has begun): round-robin over the shared
 * queues, every call with a binary out-syncobj, a timeline point and a user fence, one in four
 * gated on an eventfd nobody writes (so the queue's later binds stay pending too); the first
 * CFDS calls' fences are exported as sync files. */
static void *cbinder_run(void *arg)
{
	struct cbinder *a = arg;
	struct binder *w = &a->b;
	for (int i = 0;; i++) {
		struct vmb_bind_op ops[3];
		uint64_t next[SLICE_PAGES];
		uint32_t n = binder_ops(w, ops, next), qi = (uint32_t)i % AQ;
		struct vmb_sync s[4] = {sync_out(a->so), sync_tl_out(a->tl, (uint64_t)i + 1),
					sync_ufence(&a->uf[0], (uint64_t)i + 1), sync_in(a->gate)};
		int r = __bind_async(w->c, w->vm, a->q[qi], ops, n, s, i % 4 == 3 ? 4 : 3);
		if (r) {
			a->ret = r;
			return NULL;
		}
		if (a->nfds < CFDS) {
			struct vmb_syncobj_fd e = {.handle = a->so};
			if ((r = vmb_syncobj_export_fd(w->c, &e))) {
				a->ret = r;
				return NULL;
			}
			a->fds[a->nfds++] = e.fd;
		}
		atomic_fetch_add(&a->calls, 1);
	}
}

struct closer_arg {
	struct vmb_client *c;
	int ret;
};

static void *close_run(void *arg)
{
	struct closer_arg *k = arg;
	k->ret = vmb_client_close(k->c);
	return NULL;
}

/* Close while threads call: each ends with -ENODEV, close returns 0 once the call held open
 * ends, and every exported sync file becomes readable (its fence signalled: run or cancelled
 * at close), none left pending for good. */
static void test_close_while_combining(void **state)
{
	(void)state;
	uint32_t vm, bo[2], q[AQ];
	struct vmb_client *c = combined_setup(&vm, bo, q);
	uint64_t seed = test_seed("close-while-combining");
	struct cbinder *a = calloc(CT, sizeof(*a));
	assert_non_null(a);
	struct gate g = gate_new(c);
	for (int t = 0; t < CT; t++) {
		a[t].b = (struct binder){.c = c, .vm = vm, .bo = {bo[0], bo[1]}, .t = t, .seed = rnd_next(&seed)};
		memcpy(a[t].q, q, sizeof(q));
		a[t].so = syncobj_new(c, 0);
		a[t].tl = syncobj_new(c, VMB_SYNCOBJ_CREATE_TIMELINE);
		a[t].gate = g.h;
	}
	assert_int_equal(vmb_client_enter(c), 0); /* a call in flight: close waits for it */
	for (int t = 0; t < CT; t++)
		assert_int_equal(pthread_create(&a[t].b.th, NULL, cbinder_run, &a[t]), 0);
	/* CT * 200 calls in all, not 200 each: every queue's binds pend behind its first gated one,
	 * and a queue at VMB_BIND_QUEUE_PENDING_MAX makes its next call wait for its oldest bind,
	 * which only close cancels. A thread that the others outran (2 CPUs, 4 threads) could still
	 * be short of 200 when they had filled all AQ queues, and nobody closed (a hang, once in
	 * ~12 parallel runs). Round-robin over AQ queues, CT * 200 calls put at most ~270 on a queue. */
	for (;;) {
		int calls = 0, done = 0;
		for (int t = 0; t < CT; t++) {
			calls += atomic_load(&a[t].calls);
			done |= a[t].ret;
		}
		if (calls >= CT * 200 || done)
			break;
		usleep(1000);
	}
	pthread_t closer;
	struct closer_arg ca = {c, 1};
	assert_int_equal(pthread_create(&closer, NULL, close_run, &ca), 0);
	for (int t = 0; t < CT; t++) {
		pthread_join(a[t].b.th, NULL);
		assert_int_equal(a[t].ret, -ENODEV);
	}
	vmb_client_leave(c);
	pthread_join(closer, NULL);
	assert_int_equal(ca.ret, 0);
	for (int t = 0; t < CT; t++) {
		for (int k = 0; k < a[t].nfds; k++) {
			struct pollfd p = {.fd = a[t].fds[k], .events = POLLIN};
			int r = poll(&p, 1, 10000);
			if (r != 1)
				fail_msg("thread %d sync file %d: poll %d (never signalled)", t, k, r);
			close(a[t].fds[k]);
		}
	}
	close(g.efd);
	free(a);
}

/* ---- restart mode: asynchronous calls combined, some failing partway ---- */

#define RT 3      /* threads */
#define ROPS 400  /* calls per thread */

struct rbinder {
	struct binder b;
	uint32_t q[AQ], tl;
	uint64_t point;   /* the last point a completed call signalled */
	uint64_t uf[8];   /* out user fence: the completed call's number + 1 */
	uint64_t uf_last;
	uint64_t chunked; /* the thread's mapping of the 64 KiB-chunk BO */
	int partial, busy;
};

/* Asynchronous calls of 1 to 3 ops on the thread's slice on a restart-mode vm, each with a
 * timeline out point and a user fence; every fifth has an op appended that fails at prepare
 * (-EINVAL): ops before it stay done (submitted as jobs of their own, no out-sync signalled, no
 * point claimed), a cookie says how many, and the thread gives the restart up. Calls of other
 * threads meanwhile get -EBUSY and are made again. */
static void *rbinder_run(void *arg)
{
	struct rbinder *a = arg;
	struct binder *w = &a->b;
	atomic_store(&w->started, 1);
	for (int i = 0; i < w->ops; i++) {
		struct vmb_bind_op ops[4];
		uint64_t next[SLICE_PAGES];
		uint32_t n = binder_ops(w, ops, next), qi = (uint32_t)i % AQ;
		bool fail = i % 5 == 4;
		if (fail)
			ops[n++] = op_unmap(a->chunked + PG, PG);
		struct vmb_sync syncs[2] = {sync_tl_out(a->tl, a->point + 1), sync_ufence(&a->uf[0], (uint64_t)i + 1)};
		struct vmb_vm_bind b = {.vm_id = w->vm, .queue_id = a->q[qi], .num_binds = n, .binds = (uint64_t)(uintptr_t)ops,
					.num_syncs = 2, .syncs = (uint64_t)(uintptr_t)syncs, .flags = VMB_VM_BIND_FLAG_ASYNC};
		int r;
		while ((r = vmb_vm_bind(w->c, &b)) == -EBUSY) {
			a->busy++;
			sched_yield();
		}
		if (!fail) {
			if (r || b.restart) {
				snprintf(w->err, sizeof(w->err), "thread %d call %d: %d, cookie %llx", w->t, i, r,
					 (unsigned long long)b.restart);
				break;
			}
			a->point++;
			a->uf_last = (uint64_t)i + 1;
			memcpy(w->model, next, sizeof(next));
			continue;
		}
		if (r != -EINVAL || VMB_VM_BIND_RESTART_DONE(b.restart) != n - 1) {
			snprintf(w->err, sizeof(w->err), "thread %d failing call %d: %d, cookie %llx", w->t, i, r,
				 (unsigned long long)b.restart);
			break;
		}
		memcpy(w->model, next, sizeof(next)); /* ops 0..n-2 stay */
		a->partial++;
		struct vmb_vm_bind give_up = {.vm_id = w->vm, .queue_id = a->q[qi], .restart = b.restart,
					      .flags = VMB_VM_BIND_FLAG_ASYNC};
		if ((r = vmb_vm_bind(w->c, &give_up)) || give_up.restart) {
			snprintf(w->err, sizeof(w->err), "thread %d call %d: giving up: %d", w->t, i, r);
			break;
		}
	}
	atomic_store(&w->finished, 1);
	return NULL;
}

static void test_restart_mode_async_combined(void **state)
{
	(void)state;
	struct vmb_client *c = open_soft(256 * MiB, 256 * MiB);
	uint32_t vm = vm_new(c, VMB_VM_CREATE_RESTART_MODE), q[AQ];
	uint32_t bo1 = bo_patterned(c, 1), bo2 = bo_patterned(c, 2);
	for (int k = 0; k < AQ; k++)
		q[k] = queue_new(c, vm);
	uint64_t seed = test_seed("restart-async-combined");
	uint32_t chunk_bo = chunk_bo_new(c);
	struct rbinder *a = calloc(RT, sizeof(*a));
	assert_non_null(a);
	for (int t = 0; t < RT; t++) {
		a[t].b = (struct binder){.c = c, .vm = vm, .bo = {bo1, bo2}, .t = t, .ops = ROPS, .seed = rnd_next(&seed)};
		memcpy(a[t].q, q, sizeof(q));
		a[t].tl = syncobj_new(c, VMB_SYNCOBJ_CREATE_TIMELINE);
		a[t].chunked = (uint64_t)(t + 1) * SLICE * 4 + 2 * SLICE;
		struct vmb_bind_op m = op_map(chunk_bo, 0, a[t].chunked, CHUNK, 0);
		assert_int_equal(sync_bind(c, vm, &m, 1), 0);
	}
	binders_run(a, sizeof(*a), RT, rbinder_run);
	for (int t = 0; t < RT; t++) {
		assert_string_equal(a[t].b.err, "");
		assert_true(a[t].partial > 0);
		timeline_at(c, a[t].tl, a[t].point);
		ufence_at(c, &a[t].uf[0], a[t].uf_last);
	}
	/* the partial calls' own jobs signal nothing: a barrier on each queue, then the model */
	for (int k = 0; k < AQ; k++) {
		uint32_t so = syncobj_new(c, 0);
		struct vmb_sync out = sync_out(so);
		assert_int_equal(__bind_async(c, vm, q[k], NULL, 0, &out, 1), 0);
		syncobj_wait1(c, so);
	}
	binders_finish(c, a, sizeof(*a), RT);
}

/* ---- user-fence waiters woken by asynchronous binds (814003d: only announced ones) ---- */

#define UW 3       /* waiting threads */
#define UROUNDS 2000

struct ufwaiter {
	struct vmb_client *c;
	uint64_t *word;
	pthread_t th;
	int err;       /* the first wait that did not pass */
	uint64_t at;
};

/* Waits for each value 1..UROUNDS in turn (GTE), 10 s each: a write that woke nobody leaves the
 * wait asleep until its timeout (-ETIME). */
static void *ufwaiter_run(void *arg)
{
	struct ufwaiter *u = arg;
	for (uint64_t v = 1; v <= UROUNDS; v++) {
		int r = __ufence_wait(u->c, u->word, v, VMB_UFENCE_OP_GTE, 10 * SEC);
		if (r) {
			u->err = r;
			u->at = v;
			return NULL;
		}
	}
	return NULL;
}

/* Threads sleep in vmb_user_fence_wait on words that asynchronous binds of one queue write as
 * their out user fences, committed in the call or, behind a gate opened a moment later, by a
 * worker: every write must wake its waiters. */
static void test_ufence_waiters_woken(void **state)
{
	(void)state;
	uint32_t vm, bo[2], q[AQ];
	struct vmb_client *c = combined_setup(&vm, bo, q);
	static uint64_t words[UW][8];
	memset(words, 0, sizeof(words));
	struct ufwaiter u[UW];
	for (int t = 0; t < UW; t++) {
		u[t] = (struct ufwaiter){.c = c, .word = &words[t][0]};
		assert_int_equal(pthread_create(&u[t].th, NULL, ufwaiter_run, &u[t]), 0);
	}
	uint32_t so = syncobj_new(c, 0);
	for (uint64_t v = 1; v <= UROUNDS; v++) {
		uint64_t va = 1 * GiB + (v % 4) * MiB;
		struct vmb_bind_op op = v % 8 < 4 ? op_map(bo[0], 0, va, 64 * KiB, 0) : op_unmap(va, 64 * KiB);
		struct vmb_sync s[UW + 2];
		uint32_t ns = 0;
		for (int t = 0; t < UW; t++)
			s[ns++] = sync_ufence(&words[t][0], v);
		s[ns++] = sync_out(so);
		struct gate g = {.efd = -1};
		if (v % 16 == 0) { /* this bind and the queue's next ones commit on a worker */
			g = gate_new(c);
			s[ns++] = sync_in(g.h);
		}
		/* one queue: its fences, and so the words, go up in call order */
		assert_int_equal(__bind_async(c, vm, q[0], &op, 1, s, ns), 0);
		if (g.efd >= 0) {
			usleep(200); /* the waiters fall asleep */
			gate_open(&g);
			struct vmb_syncobj_destroy d = {.handle = g.h};
			assert_int_equal(vmb_syncobj_destroy(c, &d), 0);
		}
	}
	for (int t = 0; t < UW; t++) {
		pthread_join(u[t].th, NULL);
		if (u[t].err)
			fail_msg("waiter %d: %d waiting for %llu (word %llu)", t, u[t].err, (unsigned long long)u[t].at,
				 (unsigned long long)__atomic_load_n(&words[t][0], __ATOMIC_ACQUIRE));
	}
	syncobj_wait1(c, so);
	validate_client(c);
	assert_int_equal(vmb_client_close(c), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_armed_thread_not_combined),
		cmocka_unit_test(test_signals_to_combining_waiters),
		cmocka_unit_test(test_fork_while_combining),
		cmocka_unit_test(test_bo_mapping_count_across_vms),
		cmocka_unit_test(test_last_link_freed_and_orphaned),
		cmocka_unit_test(test_failed_commit_result_to_its_call),
		cmocka_unit_test(test_snapshot_results_to_their_calls),
		cmocka_unit_test(test_vm_destroy_while_combining),
		cmocka_unit_test(test_restart_mode_combined),
		cmocka_unit_test(test_handed_back_binds_interrupted),
		cmocka_unit_test(test_async_combined),
		cmocka_unit_test(test_async_combined_timelines),
		cmocka_unit_test(test_async_combined_failures),
		cmocka_unit_test(test_close_while_combining),
		cmocka_unit_test(test_restart_mode_async_combined),
		cmocka_unit_test(test_ufence_waiters_woken),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
