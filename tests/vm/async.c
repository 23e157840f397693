/* SPDX-License-Identifier: MIT */
/*
 * Description: asynchronous VM_BIND on bind queues, in the way the kernel's GPU tests exercise
 * it: a queue blocked on an unsignalled in-fence while another queue's bind completes; binds of
 * one queue completing in order (10^4 binds, no out-fence before its predecessor's); binds of
 * different queues on the same range serialised in submission order; arrays of 16 and 256 ops
 * on default and explicit queues; one array vs separate calls giving the same vm; barriers
 * (no ops); synchronous binds waiting for their queue; 8 threads x 4 queues against a shadow
 * model; LR vms (in-syncobjs awaited in the call, interruptibly; syncobj out-syncs rejected); the
 * low-memory fallback (job allocation fails: the bind runs in the call); queue, vm and client
 * teardown with binds still blocked; every sync field with bad values (precise errno, nothing
 * changed; out user fences in read-only data and RELRO, next to the static data the library
 * takes as writable unchecked, among them).
 */
#include "lib/harness.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/client.h"
#include "dev/core.h"
#include "mem/bo.h"
#include "sync/fence.h"
#include "vm/vm.h"

#define SEC 1000000000ll
#define MS 1000000ll
/* Sizes and addresses are in 4 KiB pages, scaled by S to the device's granule: S is 1 on the
 * integrated shape, 512 on the discrete one (2 MiB granules; make test runs both), so every case
 * keeps its layout, its page indices and what it checks, in granules. */
static uint64_t S = 1;
#define PG (4096 * S)
#define BO_SIZE (4 * MiB * S)

struct fixture {
	struct vmb_client *c;
	uint32_t vm, bo, bo2;
};

/* Every page of a BO starts with a value naming (BO tag, page). */
static uint64_t pattern(uint32_t tag, uint64_t page) { return (uint64_t)tag << 32 | page; }

static uint32_t bo_patterned(struct vmb_client *c, uint32_t tag)
{
	uint32_t bo = bo_new(c, BO_SIZE, VMB_PLACE_VRAM);
	static uint64_t v[1024]; /* BO_SIZE / PG on both shapes */
	for (uint64_t pg = 0; pg < BO_SIZE / PG; pg++)
		v[pg] = pattern(tag, pg);
	bo_write64s(c, bo, PG, v, BO_SIZE / PG); /* the GPU view where VRAM is not CPU-mappable */
	return bo;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	const char *shape = getenv("VMB_SOFT_DISCRETE");
	S = shape && !strcmp(shape, "1") ? 512 : 1;
	/* 2 GiB BOs at S = 512: room for a few (the regions are address space until touched), and
	 * page-table memory for the worst case of thousands of pending binds of up to 96 MiB (a
	 * prepare reserves for 4 KiB leaves: a backing need not be 2 MiB-contiguous) */
	struct vmb_client_opts o = {.vram_size = 16 * GiB, .system_size = 4 * GiB, .pt_pool_size = 2 * GiB};
	if (S == 1)
		f->c = open_soft(256 * MiB, 256 * MiB);
	else
		assert_int_equal(vmb_client_open("soft", &o, &f->c), 0);
	assert_int_equal(granule_of(f->c), PG);
	f->vm = vm_new(f->c, 0);
	f->bo = bo_patterned(f->c, 1);
	f->bo2 = bo_patterned(f->c, 2);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	validate_client(f->c);
	assert_int_equal(vmb_client_close(f->c), 0);
	free(f);
	return 0;
}


/* ---- a call run on its own thread, to see whether it returns while a gate is still closed ---- */

struct call {
	struct vmb_client *c;
	struct vmb_vm_bind b;
	struct vmb_bind_op ops[2];
	struct vmb_sync syncs[2];
	unsigned long fail_after; /* the low-memory fallback: vmb_alloc_fail_after() on the thread */
	bool fired;               /* the injected failure happened */
	atomic_int result;        /* CALL_RUNNING until it returns */
	pthread_t th;
};

#define CALL_RUNNING 1

static void *call_run(void *arg)
{
	struct call *k = arg;
	if (k->fail_after)
		vmb_alloc_fail_after(k->fail_after);
	int r = vmb_vm_bind(k->c, &k->b);
	if (k->fail_after)
		k->fired = vmb_alloc_fail_after(0) == 0;
	atomic_store(&k->result, r);
	return NULL;
}

/* Starts vmb_vm_bind(@vm, @queue, @ops, @syncs) (asynchronous if @async) on a new thread. */
static void call_start(struct call *k, struct vmb_client *c, uint32_t vm, uint32_t queue, bool async,
		       const struct vmb_bind_op *ops, uint32_t n, const struct vmb_sync *syncs, uint32_t ns)
{
	assert_true(n <= 2 && ns <= 2);
	k->c = c;
	memcpy(k->ops, ops, n * sizeof(*ops));
	if (ns)
		memcpy(k->syncs, syncs, ns * sizeof(*syncs));
	k->b = (struct vmb_vm_bind){.vm_id = vm, .queue_id = queue, .num_binds = n,
				    .binds = n ? (uint64_t)(uintptr_t)k->ops : 0, .num_syncs = ns,
				    .syncs = ns ? (uint64_t)(uintptr_t)k->syncs : 0,
				    .flags = async ? VMB_VM_BIND_FLAG_ASYNC : 0};
	atomic_init(&k->result, CALL_RUNNING);
	assert_int_equal(pthread_create(&k->th, NULL, call_run, k), 0);
}

/* Whether the call returned within @ns (polled: a generous bound detects a hang, not a time). */
static bool call_returns_within(struct call *k, int64_t ns)
{
	for (int64_t waited = 0; atomic_load(&k->result) == CALL_RUNNING && waited < ns; waited += MS)
		usleep(1000);
	return atomic_load(&k->result) != CALL_RUNNING;
}

/* The call's result once it returned within 10 s; else the gate opens (so the call can end) and
 * the test fails: the call was blocked by the gate. */
static int call_result_or_fail(struct call *k, struct gate *g, const char *what)
{
	bool returned = call_returns_within(k, 10 * SEC);
	if (!returned)
		gate_open(g);
	pthread_join(k->th, NULL);
	if (!returned)
		fail_msg("%s: the call did not return while the unrelated gate was closed", what);
	return atomic_load(&k->result);
}

static void *open_later(void *arg)
{
	usleep(50000);
	gate_open(arg);
	return NULL;
}

static uint64_t load(const uint64_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }

/* Out user fences in the program's read-only data: never writable, though next to (RELRO: inside
 * the load segment of) .data and .bss, whose words the library takes as writable unchecked
 * (core/hostmem.h). Read through volatile pointers, so that the words stay in memory. */
static const uint64_t rodata_fence = 1;
static uint64_t relro_target;
static uint64_t *const relro_fence = &relro_target; /* relocated: RELRO in a PIE, else .rodata */
static const uint64_t *volatile rodata_fence_p = &rodata_fence;
static uint64_t *const *volatile relro_fence_p = &relro_fence;

static uint32_t nmappings(struct fixture *f, uint32_t vm) { return vm_stats(f->c, vm).num_mappings; }

static void test_blocked_queue_does_not_hold_others(void **state)
{
	struct fixture *f = *state;
	uint32_t qa = queue_new(f->c, f->vm), qb = queue_new(f->c, f->vm);
	static uint64_t ua, ub;
	ua = ub = 0;
	struct gate g = gate_new(f->c);
	struct vmb_bind_op a = op_map(f->bo, 0, 0, 64 * KiB * S, 0), b = op_map(f->bo, 64 * KiB * S, 1 * MiB * S, 64 * KiB * S, 0);
	struct vmb_sync sa[2] = {sync_in(g.h), sync_ufence(&ua, 1)}, sb[1] = {sync_ufence(&ub, 1)};
	bind_async(f->c, f->vm, qa, &a, 1, sa, 2);
	bind_async(f->c, f->vm, qb, &b, 1, sb, 1);
	ufence_wait(f->c, &ub, 1);
	assert_int_equal(gpu_read64(f->c, f->vm, 1 * MiB * S), pattern(1, 16));
	assert_int_equal(__ufence_wait(f->c, &ua, 1, VMB_UFENCE_OP_EQ, 20 * MS), -ETIME);
	/* the vm already shows the bind (the call prepared it), the GPU does not see it yet */
	assert_int_equal(nmappings(f, f->vm), 2);
	uint64_t v;
	assert_int_equal(__gpu_rw(f->c, f->vm, 0, &v, 8, false), -EFAULT);
	struct vmb_client_validate cv = {0};
	assert_int_equal(vmb_client_validate(f->c, &cv), -EBUSY);
	gate_open(&g);
	ufence_wait(f->c, &ua, 1);
	assert_int_equal(gpu_read64(f->c, f->vm, 0), pattern(1, 0));
	validate_client(f->c);
}

/*
 * An asynchronous bind that follows nothing unsignalled (an idle queue, no pending bind of
 * another queue on its range, its in-fences signalled) has committed and signalled when the call
 * returns: its user fence holds its value, its out-syncobj is signalled, the GPU sees the
 * mapping (or no longer sees it). IGT's hammer subtests execute right after such binds, with no
 * dependency on them, as they may on Xe, which does those binds on the CPU in the call.
 */
static void test_idle_queue_bind_done_in_call(void **state)
{
	struct fixture *f = *state;
	uint32_t q = queue_new(f->c, f->vm);
	uint32_t so = syncobj_new(f->c, 0), done = syncobj_new(f->c, VMB_SYNCOBJ_CREATE_SIGNALED);
	static uint64_t u;
	u = 0;
	for (uint64_t i = 1; i <= 200; i++) {
		bool map = i % 2;
		struct vmb_bind_op op = map ? op_map(f->bo, 16 * PG, 2 * MiB * S, 64 * KiB * S, 0)
					    : op_unmap(2 * MiB * S, 64 * KiB * S);
		/* every other call with an in-fence that has signalled */
		struct vmb_sync s[3] = {sync_ufence(&u, i), sync_out(so), sync_in(done)};
		bind_async(f->c, f->vm, i % 4 < 2 ? q : 0, &op, 1, s, i % 4 == 1 ? 3 : 2);
		if (load(&u) != i)
			fail_msg("bind %llu: its user fence not written when the call returned",
				 (unsigned long long)i);
		assert_int_equal(__syncobj_wait1(f->c, so, 0, 0, 0), 0);
		uint64_t v;
		if (map)
			assert_int_equal(gpu_read64(f->c, f->vm, 2 * MiB * S), pattern(1, 16));
		else
			assert_int_equal(__gpu_rw(f->c, f->vm, 2 * MiB * S, &v, 8, false), -EFAULT);
	}
	/* behind a bind that waits, on its queue: not done in the call, and in queue order */
	struct gate g = gate_new(f->c);
	struct vmb_bind_op a = op_map(f->bo, 0, 0, 64 * KiB * S, 0), b = op_map(f->bo, 64 * KiB * S, 1 * MiB * S, 64 * KiB * S, 0);
	struct vmb_sync sa[2] = {sync_in(g.h), sync_ufence(&u, 1000)}, sb[1] = {sync_ufence(&u, 1001)};
	bind_async(f->c, f->vm, q, &a, 1, sa, 2);
	bind_async(f->c, f->vm, q, &b, 1, sb, 1);
	assert_int_equal(load(&u), 200);
	gate_open(&g);
	ufence_wait(f->c, &u, 1001);
	assert_int_equal(gpu_read64(f->c, f->vm, 1 * MiB * S), pattern(1, 16));
	validate_client(f->c);
}

static void test_sync_bind_waits_for_its_queue(void **state)
{
	struct fixture *f = *state;
	static uint64_t ua;
	ua = 0;
	struct gate g = gate_new(f->c);
	struct vmb_bind_op a = op_map(f->bo, 0, 0, 64 * KiB * S, 0);
	struct vmb_sync sa[2] = {sync_in(g.h), sync_ufence(&ua, 7)};
	bind_async(f->c, f->vm, 0, &a, 1, sa, 2);
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, open_later, &g), 0);
	/* elsewhere in the vm, on the same (default) queue: waits for the async bind */
	bind1(f->c, f->vm, op_map(f->bo2, 0, 8 * MiB * S, 64 * KiB * S, 0));
	assert_int_equal(load(&ua), 7);
	pthread_join(th, NULL);
	assert_int_equal(gpu_read64(f->c, f->vm, 0), pattern(1, 0));
	assert_int_equal(gpu_read64(f->c, f->vm, 8 * MiB * S), pattern(2, 0));
}

static void test_overlap_across_queues_in_submission_order(void **state)
{
	struct fixture *f = *state;
	uint32_t qa = queue_new(f->c, f->vm), qb = queue_new(f->c, f->vm);
	static uint64_t ua, ub;
	ua = ub = 0;
	struct gate g = gate_new(f->c);
	struct vmb_bind_op a = op_map(f->bo, 0, 0, 2 * MiB * S, 0), b = op_map(f->bo2, 0, 1 * MiB * S, 64 * KiB * S, 0);
	struct vmb_sync sa[2] = {sync_in(g.h), sync_ufence(&ua, 1)}, sb[1] = {sync_ufence(&ub, 1)};
	bind_async(f->c, f->vm, qa, &a, 1, sa, 2);
	bind_async(f->c, f->vm, qb, &b, 1, sb, 1);
	/* b overlaps a: it waits for a although it is on another queue */
	assert_int_equal(__ufence_wait(f->c, &ub, 1, VMB_UFENCE_OP_EQ, 30 * MS), -ETIME);
	gate_open(&g);
	ufence_wait(f->c, &ub, 1);
	assert_int_equal(load(&ua), 1);
	assert_int_equal(gpu_read64(f->c, f->vm, 1 * MiB * S), pattern(2, 0));
	assert_int_equal(gpu_read64(f->c, f->vm, 1 * MiB * S + 64 * KiB * S), pattern(1, 272));
	assert_int_equal(nmappings(f, f->vm), 3);
	validate_client(f->c);
}

/* ---- in order over 10^4 binds ---- */

#define NORDER 10000

struct order_check {
	uint64_t *slot;
	atomic_bool stop;
	atomic_long violations, scans;
};

static void *check_order(void *arg)
{
	struct order_check *o = arg;
	while (!atomic_load(&o->stop)) {
		/* from the newest down: once a slot is written, every earlier one must be */
		bool seen = false;
		for (long i = NORDER - 1; i >= 0; i--) {
			uint64_t v = load(&o->slot[i]);
			if (v)
				seen = true;
			else if (seen)
				atomic_fetch_add(&o->violations, 1);
		}
		atomic_fetch_add(&o->scans, 1);
	}
	return NULL;
}

static void test_in_order_completion(void **state)
{
	struct fixture *f = *state;
	uint32_t q = queue_new(f->c, f->vm);
	uint32_t tl = syncobj_new(f->c, VMB_SYNCOBJ_CREATE_TIMELINE);
	struct order_check o = {.slot = calloc(NORDER, sizeof(uint64_t))};
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, check_order, &o), 0);
	uint64_t last_value = 0;
	for (int i = 0; i < NORDER; i++) {
		uint64_t addr = (uint64_t)(i % 64) * 64 * KiB * S;
		struct vmb_bind_op op = i & 64 ? op_unmap(addr, 64 * KiB * S) : op_map(f->bo, addr, addr, 64 * KiB * S, 0);
		struct vmb_sync s[2] = {sync_ufence(&o.slot[i], 1), sync_tl_out(tl, (uint64_t)i + 1)};
		bind_async(f->c, f->vm, q, &op, 1, s, 2);
		if (i % 97 == 0) {
			/* the timeline's value only goes up, and never past what was submitted */
			uint64_t v;
			struct vmb_syncobj_array a = {.handles = (uint64_t)(uintptr_t)&tl,
						      .points = (uint64_t)(uintptr_t)&v, .count = 1};
			assert_int_equal(vmb_syncobj_query(f->c, &a), 0);
			assert_true(v >= last_value && v <= (uint64_t)i + 1);
			last_value = v;
		}
	}
	assert_int_equal(__syncobj_wait1(f->c, tl, NORDER, 30 * SEC, 0), 0);
	atomic_store(&o.stop, true);
	pthread_join(th, NULL);
	for (int i = 0; i < NORDER; i++)
		assert_int_equal(o.slot[i], 1);
	print_message("%ld order scans, %ld violations\n", atomic_load(&o.scans), atomic_load(&o.violations));
	assert_int_equal(atomic_load(&o.violations), 0);
	free(o.slot);
	validate_client(f->c);
}

/* ---- arrays ---- */

static void test_arrays_16_256(void **state)
{
	struct fixture *f = *state;
	uint32_t queues[2] = {0, queue_new(f->c, f->vm)};
	static struct vmb_bind_op ops[256];
	static uint64_t uf;
	uint64_t seq = 0;
	for (int qi = 0; qi < 2; qi++) {
		for (int sz = 16; sz <= 256; sz *= 16) {
			for (int rep = 0; rep < 2; rep++) {
				for (int i = 0; i < sz; i++)
					ops[i] = op_map(f->bo, (uint64_t)i * PG, (uint64_t)i * 2 * PG, PG, 0);
				struct vmb_sync s = sync_ufence(&uf, ++seq);
				bind_async(f->c, f->vm, queues[qi], ops, (uint32_t)sz, &s, 1);
				ufence_wait(f->c, &uf, seq);
				assert_int_equal(nmappings(f, f->vm), sz);
				for (int i = 0; i < sz; i += 7)
					assert_int_equal(gpu_read64(f->c, f->vm, (uint64_t)i * 2 * PG), pattern(1, i));
				validate_client(f->c);
				for (int i = 0; i < sz; i++)
					ops[i] = op_unmap((uint64_t)i * 2 * PG, PG);
				s = sync_ufence(&uf, ++seq);
				bind_async(f->c, f->vm, queues[qi], ops, (uint32_t)sz, &s, 1);
				ufence_wait(f->c, &uf, seq);
				assert_int_equal(nmappings(f, f->vm), 0);
				validate_client(f->c);
			}
		}
	}
}

static void query_all(struct vmb_client *c, uint32_t vm, struct vmb_mapping_info *out, uint32_t *n)
{
	struct vmb_vm_query_mappings q = {.vm_id = vm, .num_mappings = *n, .mappings = (uint64_t)(uintptr_t)out};
	assert_int_equal(vmb_vm_query_mappings(c, &q), 0);
	assert_true(q.num_mappings <= *n);
	*n = q.num_mappings;
}

static void test_array_equals_separate_calls(void **state)
{
	struct fixture *f = *state;
	uint64_t seed = test_seed("array-vs-calls");
	enum { N = 64 };
	struct vmb_bind_op ops[N];
	for (int i = 0; i < N; i++) {
		uint64_t pages = 1 + rnd_below(&seed, 32), start = rnd_below(&seed, 256 - pages);
		if (rnd_below(&seed, 3) == 0)
			ops[i] = op_unmap(start * PG, pages * PG);
		else
			ops[i] = op_map(rnd_below(&seed, 2) ? f->bo : f->bo2, rnd_below(&seed, 512) * PG, start * PG,
					pages * PG, 0);
	}
	uint32_t vm_array = vm_new(f->c, 0), vm_calls = vm_new(f->c, 0), vm_sync = vm_new(f->c, 0);
	static uint64_t uf;
	uf = 0;
	struct vmb_sync s = sync_ufence(&uf, 1);
	bind_async(f->c, vm_array, 0, ops, N, &s, 1);
	uint32_t q = queue_new(f->c, vm_calls);
	for (int i = 0; i < N; i++)
		bind_async(f->c, vm_calls, q, &ops[i], 1, NULL, 0);
	for (int i = 0; i < N; i++)
		bind1(f->c, vm_sync, ops[i]);
	/* a barrier: signals after the queue's earlier binds */
	static uint64_t ub;
	ub = 0;
	struct vmb_sync sb = sync_ufence(&ub, 1);
	bind_async(f->c, vm_calls, q, NULL, 0, &sb, 1);
	ufence_wait(f->c, &uf, 1);
	ufence_wait(f->c, &ub, 1);
	static struct vmb_mapping_info a[N * 3], b[N * 3], c[N * 3];
	uint32_t na = N * 3, nb = N * 3, nc = N * 3;
	query_all(f->c, vm_array, a, &na);
	query_all(f->c, vm_calls, b, &nb);
	query_all(f->c, vm_sync, c, &nc);
	assert_int_equal(na, nb);
	assert_int_equal(na, nc);
	assert_memory_equal(a, b, na * sizeof(a[0]));
	assert_memory_equal(a, c, na * sizeof(a[0]));
	for (uint64_t pg = 0; pg < 256; pg++) {
		uint64_t x = 1, y = 2, z = 3;
		int ea = __gpu_rw(f->c, vm_array, pg * PG, &x, 8, false);
		int eb = __gpu_rw(f->c, vm_calls, pg * PG, &y, 8, false);
		int ec = __gpu_rw(f->c, vm_sync, pg * PG, &z, 8, false);
		assert_int_equal(ea, eb);
		assert_int_equal(ea, ec);
		if (!ea) {
			assert_int_equal(x, y);
			assert_int_equal(x, z);
		}
	}
	validate_client(f->c);
}

static void test_barrier(void **state)
{
	struct fixture *f = *state;
	uint32_t qa = queue_new(f->c, f->vm), qb = queue_new(f->c, f->vm);
	static uint64_t ua, ba, bb;
	ua = ba = bb = 0;
	struct gate g = gate_new(f->c);
	struct vmb_bind_op a = op_map(f->bo, 0, 0, 64 * KiB * S, 0);
	struct vmb_sync sa[2] = {sync_in(g.h), sync_ufence(&ua, 1)};
	bind_async(f->c, f->vm, qa, &a, 1, sa, 2);
	uint32_t so = syncobj_new(f->c, 0);
	struct vmb_sync sba[2] = {sync_ufence(&ba, 1), sync_out(so)}, sbb[1] = {sync_ufence(&bb, 1)};
	bind_async(f->c, f->vm, qa, NULL, 0, sba, 2);
	bind_async(f->c, f->vm, qb, NULL, 0, sbb, 1);
	ufence_wait(f->c, &bb, 1); /* the other queue's barrier passes */
	assert_int_equal(__ufence_wait(f->c, &ba, 1, VMB_UFENCE_OP_EQ, 20 * MS), -ETIME);
	assert_int_equal(__syncobj_wait1(f->c, so, 0, 0, 0), -ETIME);
	gate_open(&g);
	syncobj_wait1(f->c, so);
	assert_int_equal(load(&ua), 1);
	assert_int_equal(load(&ba), 1);
	/* a barrier's in-syncs are waited for as well */
	struct gate g2 = gate_new(f->c);
	static uint64_t b2;
	b2 = 0;
	struct vmb_sync s2[2] = {sync_in(g2.h), sync_ufence(&b2, 5)};
	bind_async(f->c, f->vm, qb, NULL, 0, s2, 2);
	assert_int_equal(__ufence_wait(f->c, &b2, 5, VMB_UFENCE_OP_EQ, 20 * MS), -ETIME);
	gate_open(&g2);
	ufence_wait(f->c, &b2, 5);
}

/* ---- 8 threads x 4 queues against a model ---- */

#define THREADS 8
#define QUEUES 4
#define SLICE_PAGES 4096
#define SLICE (SLICE_PAGES * PG) /* 16 MiB in 4 KiB pages */

struct worker {
	struct fixture *f;
	uint32_t *queues;
	uint64_t seed;
	int t, ops;
	uint64_t model[SLICE_PAGES]; /* 0: unmapped, else the pattern expected */
	bool sync; /* synchronous binds (on the same queues) */
	int err;
};

static void *bind_worker(void *arg)
{
	struct worker *w = arg;
	uint64_t base = (uint64_t)w->t * SLICE;
	for (int i = 0; i < w->ops && !w->err; i++) {
		uint64_t pages = 1 + rnd_below(&w->seed, 48), start = rnd_below(&w->seed, SLICE_PAGES - pages);
		uint32_t q = w->queues[rnd_below(&w->seed, QUEUES)];
		struct vmb_bind_op op;
		if (rnd_below(&w->seed, 3) == 0) {
			op = op_unmap(base + start * PG, pages * PG);
			for (uint64_t p = 0; p < pages; p++)
				w->model[start + p] = 0;
		} else {
			uint32_t tag = 1 + (uint32_t)rnd_below(&w->seed, 2);
			uint64_t off = rnd_below(&w->seed, BO_SIZE / PG - pages);
			op = op_map(tag == 1 ? w->f->bo : w->f->bo2, off * PG, base + start * PG, pages * PG, 0);
			for (uint64_t p = 0; p < pages; p++)
				w->model[start + p] = pattern(tag, off + p);
		}
		if (w->sync) {
			struct vmb_vm_bind b = {.vm_id = w->f->vm, .queue_id = q, .num_binds = 1,
						.binds = (uint64_t)(uintptr_t)&op};
			w->err = vmb_vm_bind(w->f->c, &b);
		} else {
			w->err = __bind_async(w->f->c, w->f->vm, q, &op, 1, NULL, 0);
		}
	}
	return NULL;
}

/* THREADS threads bind their own slices of one vm through QUEUES shared queues, the threads of
 * @sync_mask synchronously; the vm then maps what each thread's model says. */
static void threads_match_model(struct fixture *f, const char *name, unsigned int sync_mask)
{
	uint64_t seed = test_seed(name);
	uint32_t queues[QUEUES];
	for (int i = 0; i < QUEUES; i++)
		queues[i] = i ? queue_new(f->c, f->vm) : 0;
	struct worker *w = calloc(THREADS, sizeof(*w));
	pthread_t th[THREADS];
	for (int t = 0; t < THREADS; t++) {
		w[t] = (struct worker){.f = f, .queues = queues, .seed = rnd_next(&seed), .t = t, .ops = 1500,
				       .sync = sync_mask >> t & 1};
		assert_int_equal(pthread_create(&th[t], NULL, bind_worker, &w[t]), 0);
	}
	for (int t = 0; t < THREADS; t++) {
		pthread_join(th[t], NULL);
		assert_int_equal(w[t].err, 0);
	}
	static uint64_t done[QUEUES];
	for (int i = 0; i < QUEUES; i++) {
		done[i] = 0;
		struct vmb_sync s = sync_ufence(&done[i], 1);
		bind_async(f->c, f->vm, queues[i], NULL, 0, &s, 1);
	}
	for (int i = 0; i < QUEUES; i++)
		ufence_wait(f->c, &done[i], 1);
	validate_client(f->c);
	for (int t = 0; t < THREADS; t++) {
		for (uint64_t p = 0; p < SLICE_PAGES; p++) {
			uint64_t v = 0, addr = (uint64_t)t * SLICE + p * PG;
			int err = __gpu_rw(f->c, f->vm, addr, &v, 8, false);
			if (w[t].model[p] ? err || v != w[t].model[p] : err != -EFAULT)
				fail_msg("thread %d page %llu: err %d value %llx, model %llx", t, (unsigned long long)p, err,
					 (unsigned long long)v, (unsigned long long)w[t].model[p]);
		}
	}
	free(w);
}

static void test_threads_and_queues_match_model(void **state)
{
	threads_match_model(*state, "8x4", 0);
}

/* Synchronous binds of many threads on one vm: those that find the vm's lock taken are run by
 * its holder (flat combining, vm/job.c); those behind another thread's asynchronous bind on
 * their queue come back to wait in their own call. */
static void test_threads_sync_match_model(void **state)
{
	threads_match_model(*state, "8x4-sync", (1u << THREADS) - 1);
}

static void test_threads_sync_async_match_model(void **state)
{
	threads_match_model(*state, "8x4-mixed", 0xaau);
}

/*
 * ---- vms in parallel (the per-vm lock): threads on vms of their own map the same three BOs ----
 *
 * Each worker owns a vm and keeps a model of its pages; its binds (asynchronous, on its default
 * and a queue of its own, and synchronous) run beside the other vms' ones under the device lock
 * shared, so what vms share (the BOs' references, (vm, BO) lists and mapping counts, the
 * device's pending list) is touched at once from several threads; a sixth thread moves the
 * third BO between VRAM and SYSTEM with PREFETCH (the device lock exclusive: it re-points the
 * BO's mappings in every vm) and checks its own vm's view of it. Each worker checks its pages
 * through the GPU view after each batch, then destroys its vm with binds maybe still pending.
 * Under ThreadSanitizer this is the race check of the cross-vm state.
 */
#define PVM_THREADS 5
#define PVM_PAGES 64

struct pvm_worker {
	struct fixture *f;
	uint32_t bo3; /* tag 3: VRAM or SYSTEM, the one the mover moves */
	uint64_t seed;
	int ops;
	uint64_t model[PVM_PAGES];
	char err[160];
	uint64_t ufence[2]; /* per queue: the default one, its own */
};

static void *pvm_run(void *arg)
{
	struct pvm_worker *w = arg;
	struct vmb_client *c = w->f->c;
	struct vmb_vm_create vc = {0};
	int err = vmb_vm_create(c, &vc);
	uint32_t vm = vc.vm_id, q = 0;
	struct vmb_bind_queue_create qc = {.vm_id = vm};
	if (!err && !(err = vmb_bind_queue_create(c, &qc)))
		q = qc.queue_id;
	uint64_t seq[2] = {0, 0};
	for (int i = 0; i < w->ops && !err; i++) {
		uint64_t pages = 1 + rnd_below(&w->seed, 16), start = rnd_below(&w->seed, PVM_PAGES - pages);
		struct vmb_bind_op op;
		uint64_t kind = rnd_below(&w->seed, 8);
		uint32_t bos[3] = {w->f->bo, w->f->bo2, w->bo3};
		if (kind < 2) {
			op = op_unmap(start * PG, pages * PG);
			for (uint64_t p = 0; p < pages; p++)
				w->model[start + p] = 0;
		} else if (kind < 4) {
			/* the vm's link to the BO goes, and comes back with its next MAP: churn on the
			 * BO's list of links, which every vm shares */
			uint32_t tag = 1 + (uint32_t)rnd_below(&w->seed, 3);
			op = op_unmap_all(bos[tag - 1]);
			for (uint64_t p = 0; p < PVM_PAGES; p++)
				if (w->model[p] >> 32 == tag)
					w->model[p] = 0;
		} else {
			uint32_t tag = 1 + (uint32_t)rnd_below(&w->seed, 3);
			uint64_t off = rnd_below(&w->seed, BO_SIZE / PG - pages);
			op = op_map(bos[tag - 1], off * PG, start * PG, pages * PG, 0);
			for (uint64_t p = 0; p < pages; p++)
				w->model[start + p] = pattern(tag, off + p);
		}
		switch (rnd_below(&w->seed, 3)) {
		case 0:
			err = __bind1(c, vm, op);
			break;
		default: {
			uint32_t qq = (uint32_t)rnd_below(&w->seed, 2);
			struct vmb_sync s = sync_ufence(&w->ufence[qq], ++seq[qq]);
			err = __bind_async(c, vm, qq ? q : 0, &op, 1, &s, 1);
			break;
		}
		}
		if (err) {
			snprintf(w->err, sizeof(w->err), "bind %d: %d", i, err);
			break;
		}
		if (i % 32 != 31)
			continue;
		/* a batch: wait for a barrier on each queue (its binds signal in order) */
		for (uint32_t qq = 0; qq < 2 && !err; qq++) {
			struct vmb_sync s = sync_ufence(&w->ufence[qq], ++seq[qq]);
			err = __bind_async(c, vm, qq ? q : 0, NULL, 0, &s, 1);
			if (!err)
				err = __ufence_wait(c, &w->ufence[qq], seq[qq], VMB_UFENCE_OP_EQ, 10 * SEC);
		}
		for (uint64_t p = 0; p < PVM_PAGES && !err; p++) {
			uint64_t v = 0;
			int r = __gpu_rw(c, vm, p * PG, &v, 8, false);
			if (w->model[p] ? r || v != w->model[p] : r != -EFAULT) {
				snprintf(w->err, sizeof(w->err), "page %llu: err %d value %llx, model %llx",
					 (unsigned long long)p, r, (unsigned long long)v, (unsigned long long)w->model[p]);
				err = -1;
			}
		}
		if (err && !w->err[0])
			snprintf(w->err, sizeof(w->err), "batch %d: %d", i, err);
	}
	struct vmb_vm_destroy vd = {.vm_id = vm};
	if (vm && vmb_vm_destroy(c, &vd) && !w->err[0])
		snprintf(w->err, sizeof(w->err), "vm destroy failed");
	if (err && !w->err[0])
		snprintf(w->err, sizeof(w->err), "setup: %d", err);
	return NULL;
}

static atomic_bool pvm_stop;

/* Moves the third BO back and forth; its own vm maps all of it and reads it after each move. */
static void *pvm_mover(void *arg)
{
	struct pvm_worker *w = arg;
	struct vmb_client *c = w->f->c;
	uint32_t vm = vm_new(c, 0);
	int err = __bind1(c, vm, op_map(w->bo3, 0, 0, BO_SIZE, 0));
	for (int i = 0; !err && !atomic_load(&pvm_stop); i++) {
		err = __bind1(c, vm, op_prefetch(0, BO_SIZE, i & 1 ? VMB_REGION_VRAM : VMB_REGION_SYSTEM));
		uint64_t pg = rnd_below(&w->seed, BO_SIZE / PG), v = 0;
		if (!err && (err = __gpu_rw(c, vm, pg * PG, &v, 8, false)) == 0 && v != pattern(3, pg))
			err = -2;
	}
	if (err)
		snprintf(w->err, sizeof(w->err), "mover: %d", err);
	struct vmb_vm_destroy vd = {.vm_id = vm};
	vmb_vm_destroy(c, &vd);
	return NULL;
}

static void test_vms_in_parallel_share_bos(void **state)
{
	struct fixture *f = *state;
	uint64_t seed = test_seed("vms in parallel");
	struct pvm_worker *w = calloc(PVM_THREADS + 1, sizeof(*w));
	pthread_t th[PVM_THREADS + 1];
	uint32_t bo3 = bo_new(f->c, BO_SIZE, VMB_PLACE_VRAM | VMB_PLACE_SYSTEM);
	static uint64_t v3[1024]; /* BO_SIZE / PG on both shapes */
	for (uint64_t pg = 0; pg < BO_SIZE / PG; pg++)
		v3[pg] = pattern(3, pg);
	bo_write64s(f->c, bo3, PG, v3, BO_SIZE / PG);
	atomic_store(&pvm_stop, false);
	for (int t = 0; t <= PVM_THREADS; t++) {
		w[t] = (struct pvm_worker){.f = f, .bo3 = bo3, .seed = rnd_next(&seed), .ops = 320};
		assert_int_equal(pthread_create(&th[t], NULL, t < PVM_THREADS ? pvm_run : pvm_mover, &w[t]), 0);
	}
	for (int t = 0; t < PVM_THREADS; t++)
		pthread_join(th[t], NULL);
	atomic_store(&pvm_stop, true);
	pthread_join(th[PVM_THREADS], NULL);
	for (int t = 0; t <= PVM_THREADS; t++)
		if (w[t].err[0])
			fail_msg("thread %d: %s", t, w[t].err);
	/* every vm gone: no mapping of any BO is left anywhere, only the handles' references (and
	 * bo3's CPU mapping's) */
	uint32_t hs[3] = {f->bo, f->bo2, bo3};
	for (int i = 0; i < 3; i++) {
		vmb_dev_lock(f->c->dev);
		struct vmb_bo *b = vmb_handle_lookup(&f->c->bos, hs[i]);
		unsigned int m = (unsigned int)vmb_bo_vm_mappings(b), r = b->refs, want = b->cpu_maps ? 2 : 1;
		vmb_dev_unlock(f->c->dev);
		assert_int_equal(m, 0);
		assert_int_equal(r, want);
	}
	free(w);
}

/* ---- LR vms ---- */

static void on_usr1(int sig) { (void)sig; }

struct lr_call {
	struct vmb_client *c;
	uint32_t vm, bo, gate;
	uint64_t *uf;
	atomic_bool started;
	atomic_int result;
};

static void *lr_bind(void *arg)
{
	struct lr_call *l = arg;
	struct vmb_bind_op op = op_map(l->bo, 0, 0, 64 * KiB * S, 0);
	struct vmb_sync s[2] = {sync_in(l->gate), sync_ufence(l->uf, 3)};
	atomic_store(&l->started, true);
	atomic_store(&l->result, __bind_async(l->c, l->vm, 0, &op, 1, s, 2));
	return NULL;
}

static void test_lr_vm(void **state)
{
	struct fixture *f = *state;
	uint32_t lr = vm_new(f->c, VMB_VM_CREATE_LR_MODE);
	struct vmb_bind_op op = op_map(f->bo, 0, 0, 64 * KiB * S, 0);
	uint32_t so = syncobj_new(f->c, 0), tl = syncobj_new(f->c, VMB_SYNCOBJ_CREATE_TIMELINE);
	struct vmb_sync s = sync_out(so);
	assert_int_equal(__bind_async(f->c, lr, 0, &op, 1, &s, 1), -EOPNOTSUPP);
	s = sync_tl_out(tl, 1);
	assert_int_equal(__bind_async(f->c, lr, 0, &op, 1, &s, 1), -EOPNOTSUPP);
	assert_int_equal(nmappings(f, lr), 0);

	/* in-syncobjs are waited for in the call: a signal interrupts it, nothing changed */
	struct sigaction sa = {.sa_handler = on_usr1}, old;
	sigemptyset(&sa.sa_mask);
	assert_int_equal(sigaction(SIGUSR1, &sa, &old), 0);
	static uint64_t uf;
	uf = 0;
	struct gate g = gate_new(f->c);
	struct lr_call l = {.c = f->c, .vm = lr, .bo = f->bo, .gate = g.h, .uf = &uf};
	atomic_init(&l.result, 1);
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, lr_bind, &l), 0);
	while (!atomic_load(&l.started))
		usleep(100);
	usleep(20000);
#ifndef VMB_FENCE_CONDVAR
	while (atomic_load(&l.result) == 1) {
		pthread_kill(th, SIGUSR1);
		usleep(2000);
	}
	pthread_join(th, NULL);
	assert_int_equal(atomic_load(&l.result), -EINTR);
	assert_int_equal(nmappings(f, lr), 0);
	assert_int_equal(load(&uf), 0);
	/* restarted, it completes once the in-syncobj signals */
	atomic_store(&l.result, 1);
	atomic_store(&l.started, false);
	assert_int_equal(pthread_create(&th, NULL, lr_bind, &l), 0);
#endif
	assert_int_equal(atomic_load(&l.result), 1); /* still waiting */
	gate_open(&g);
	pthread_join(th, NULL);
	assert_int_equal(atomic_load(&l.result), 0);
	ufence_wait(f->c, &uf, 3);
	assert_int_equal(gpu_read64(f->c, lr, 0), pattern(1, 0));
	sigaction(SIGUSR1, &old, NULL);
}

/* ---- low memory: the job cannot be allocated, the call does the bind itself ---- */

static void test_job_allocation_fallback(void **state)
{
	struct fixture *f = *state;
	bool fell_back = false, async_seen = false;
	for (unsigned long n = 1; n < 64 && !async_seen; n++) {
		static uint64_t uf;
		uf = 0;
		struct gate g = gate_new(f->c);
		pthread_t th;
		assert_int_equal(pthread_create(&th, NULL, open_later, &g), 0);
		struct vmb_bind_op op = op_map(f->bo, 0, 0, 64 * KiB * S, 0);
		struct vmb_sync s[2] = {sync_in(g.h), sync_ufence(&uf, 9)};
		vmb_alloc_fail_after(n);
		int err = __bind_async(f->c, f->vm, 0, &op, 1, s, 2);
		bool fired = vmb_alloc_fail_after(0) == 0;
		uint64_t at_return = load(&uf);
		pthread_join(th, NULL);
		if (err) {
			assert_int_equal(err, -ENOMEM);
			assert_true(fired);
			assert_int_equal(nmappings(f, f->vm), 0);
			continue;
		}
		if (at_return == 9) {
			/* done in the call: it waited for the in-sync, committed, wrote the fence */
			fell_back = true;
			assert_true(fired);
		} else {
			async_seen = !fired;
			ufence_wait(f->c, &uf, 9);
		}
		assert_int_equal(gpu_read64(f->c, f->vm, 0), pattern(1, 0));
		bind1(f->c, f->vm, op_unmap(0, 64 * KiB * S));
		validate_client(f->c);
	}
	assert_true(fell_back);
	assert_true(async_seen);
}

/* ---- teardown with binds blocked ---- */

static void test_teardown_with_pending(void **state)
{
	struct fixture *f = *state;
	static uint64_t ua;
	ua = 0;
	/* a destroyed queue's binds still run once their in-syncs signal */
	uint32_t q = queue_new(f->c, f->vm);
	struct gate g = gate_new(f->c);
	struct vmb_bind_op op = op_map(f->bo, 0, 0, 64 * KiB * S, 0);
	struct vmb_sync s[2] = {sync_in(g.h), sync_ufence(&ua, 1)};
	bind_async(f->c, f->vm, q, &op, 1, s, 2);
	struct vmb_bind_queue_destroy d = {.vm_id = f->vm, .queue_id = q};
	assert_int_equal(vmb_bind_queue_destroy(f->c, &d), 0);
	assert_int_equal(vmb_bind_queue_destroy(f->c, &d), -ENOENT);
	assert_int_equal(__bind_async(f->c, f->vm, q, &op, 1, NULL, 0), -ENOENT);
	d.queue_id = 0;
	assert_int_equal(vmb_bind_queue_destroy(f->c, &d), -EINVAL);
	gate_open(&g);
	ufence_wait(f->c, &ua, 1);

	/* a destroyed vm runs its blocked binds at once: their fences signal (with -ECANCELED) */
	uint32_t vm = vm_new(f->c, 0), so = syncobj_new(f->c, 0);
	struct gate never = gate_new(f->c);
	struct vmb_sync s2[2] = {sync_in(never.h), sync_out(so)};
	bind_async(f->c, vm, 0, &op, 1, s2, 2);
	assert_int_equal(__syncobj_wait1(f->c, so, 0, 10 * MS, 0), -ETIME);
	struct vmb_vm_destroy vd = {.vm_id = vm};
	assert_int_equal(vmb_vm_destroy(f->c, &vd), 0);
	syncobj_wait1(f->c, so);
	gate_open(&never); /* its callback is gone: nothing happens */

	/* a client closed with binds blocked */
	struct vmb_client *c2 = open_soft_at("soft:1", 64 * MiB * (S == 1 ? 1 : 32), 64 * MiB);
	uint32_t vm2 = vm_new(c2, 0), bo = bo_new(c2, 1 * MiB * S, VMB_PLACE_VRAM);
	struct gate g2 = gate_new(c2);
	struct vmb_bind_op op2 = op_map(bo, 0, 0, 64 * KiB * S, 0);
	struct vmb_sync s3 = sync_in(g2.h);
	for (int i = 0; i < 4; i++)
		bind_async(c2, vm2, 0, &op2, 1, &s3, 1);
	assert_int_equal(vmb_client_close(c2), 0);
	close(g2.efd);
}

/* ---- bad syncs ---- */

static void test_bad_syncs_change_nothing(void **state)
{
	struct fixture *f = *state;
	static uint64_t uf;
	uint32_t bin = syncobj_new(f->c, 0), tl = syncobj_new(f->c, VMB_SYNCOBJ_CREATE_TIMELINE);
	uint32_t sig = syncobj_new(f->c, VMB_SYNCOBJ_CREATE_SIGNALED);
	uint64_t p = 5;
	struct vmb_syncobj_array a = {.handles = (uint64_t)(uintptr_t)&tl, .points = (uint64_t)(uintptr_t)&p, .count = 1};
	assert_int_equal(vmb_syncobj_timeline_signal(f->c, &a), 0);
	uint64_t ua = (uint64_t)(uintptr_t)&uf;
	/* mapped, but not writable: the fence would be written later, by a worker thread (with
	 * only a "mapped" check, a read-only fence was accepted and the write crashed the process) */
	void *ro = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	void *none = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(ro != MAP_FAILED && none != MAP_FAILED);
	const struct {
		const char *name;
		struct vmb_sync s;
		int err;
	} cases[] = {
		{"pad", {.type = VMB_SYNC_SYNCOBJ, .handle = 1, .pad = 1}, -EINVAL},
		{"reserved", {.type = VMB_SYNC_SYNCOBJ, .handle = 1, .reserved = {0, 1}}, -EINVAL},
		{"unknown flag", {.type = VMB_SYNC_SYNCOBJ, .handle = 1, .flags = 1u << 1}, -EINVAL},
		{"unknown type", {.type = 4, .handle = 1}, -EINVAL},
		{"syncobj with addr", {.type = VMB_SYNC_SYNCOBJ, .handle = 1, .addr = 8}, -EINVAL},
		{"binary with a point", {.type = VMB_SYNC_SYNCOBJ, .handle = 1, .value = 1}, -EINVAL},
		{"syncobj handle 0", {.type = VMB_SYNC_SYNCOBJ}, -EINVAL},
		{"timeline point 0", {.type = VMB_SYNC_TIMELINE_SYNCOBJ, .handle = 2}, -EINVAL},
		{"user fence with handle", {.type = VMB_SYNC_USER_FENCE, .flags = 1, .handle = 1, .addr = ua}, -EINVAL},
		{"user fence addr 0", {.type = VMB_SYNC_USER_FENCE, .flags = 1}, -EINVAL},
		{"user fence misaligned", {.type = VMB_SYNC_USER_FENCE, .flags = 1, .addr = ua + 4}, -EINVAL},
		{"user fence as in-sync", {.type = VMB_SYNC_USER_FENCE, .addr = ua}, -EOPNOTSUPP},
		{"unknown syncobj", {.type = VMB_SYNC_SYNCOBJ, .handle = 999}, -ENOENT},
		{"binary named as timeline", {.type = VMB_SYNC_TIMELINE_SYNCOBJ, .handle = 1, .value = 9}, -EINVAL},
		{"timeline named as binary", {.type = VMB_SYNC_SYNCOBJ, .handle = 2}, -EINVAL},
		{"in-syncobj with no fence", {.type = VMB_SYNC_SYNCOBJ, .handle = 1}, -EINVAL},
		{"in-point not submitted", {.type = VMB_SYNC_TIMELINE_SYNCOBJ, .handle = 2, .value = 6}, -EINVAL},
		{"out-point not above", {.type = VMB_SYNC_TIMELINE_SYNCOBJ, .flags = 1, .handle = 2, .value = 5}, -EINVAL},
		{"user fence not mapped", {.type = VMB_SYNC_USER_FENCE, .flags = 1, .addr = 8}, -EFAULT},
		{"user fence read-only", {.type = VMB_SYNC_USER_FENCE, .flags = 1, .addr = (uint64_t)(uintptr_t)ro + 8}, -EFAULT},
		{"user fence PROT_NONE", {.type = VMB_SYNC_USER_FENCE, .flags = 1, .addr = (uint64_t)(uintptr_t)none}, -EFAULT},
		{"user fence in read-only data", {.type = VMB_SYNC_USER_FENCE, .flags = 1, .addr = (uint64_t)(uintptr_t)rodata_fence_p}, -EFAULT},
		{"user fence in RELRO", {.type = VMB_SYNC_USER_FENCE, .flags = 1, .addr = (uint64_t)(uintptr_t)relro_fence_p}, -EFAULT},
	};
	struct vmb_bind_op op = op_map(f->bo, 0, 0, 64 * KiB * S, 0);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct vmb_sync s[2] = {sync_out(bin), cases[i].s};
		if (s[1].handle == 1)
			s[1].handle = bin;
		else if (s[1].handle == 2)
			s[1].handle = tl;
		/* a good out-sync first: it must not be signalled by a failed call */
		if (s[1].handle == bin)
			s[0] = sync_out(sig);
		int err = __bind_async(f->c, f->vm, 0, &op, 1, s, 2);
		if (err != cases[i].err)
			fail_msg("%s: got %d, expected %d", cases[i].name, err, cases[i].err);
		assert_int_equal(nmappings(f, f->vm), 0);
		assert_int_equal(__syncobj_wait1(f->c, bin, 0, 0, 0), -EINVAL); /* still no fence */
		uint64_t v;
		a.points = (uint64_t)(uintptr_t)&v;
		assert_int_equal(vmb_syncobj_query(f->c, &a), 0);
		assert_int_equal(v, 5);
	}
	/* a user fence alone (the parse's one-sync path, uapi/sync.c): the same errnos, nothing done */
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct vmb_sync one = cases[i].s;
		if (one.type != VMB_SYNC_USER_FENCE)
			continue;
		int err = __bind_async(f->c, f->vm, 0, &op, 1, &one, 1);
		if (err != cases[i].err)
			fail_msg("%s alone: got %d, expected %d", cases[i].name, err, cases[i].err);
		assert_int_equal(nmappings(f, f->vm), 0);
	}
	/* the same timeline twice among a call's out-syncs, points not going up (found by fuzzing) */
	struct vmb_sync two[2] = {sync_tl_out(tl, 9), sync_tl_out(tl, 8)};
	assert_int_equal(__bind_async(f->c, f->vm, 0, &op, 1, two, 2), -EINVAL);
	two[1] = sync_tl_out(tl, 9);
	assert_int_equal(__bind_async(f->c, f->vm, 0, &op, 1, two, 2), -EINVAL);
	assert_int_equal(nmappings(f, f->vm), 0);
	two[1] = sync_tl_out(tl, 10);
	bind_async(f->c, f->vm, 0, &op, 1, two, 2);
	assert_int_equal(__syncobj_wait1(f->c, tl, 10, 10ll * SEC, 0), 0);
	validate_client(f->c);
	munmap(ro, 4096);
	munmap(none, 4096);
}

/*
 * An out user fence at an address inside one of the client's CPU maps of a BO (vmb_bo_mmap) is
 * written through the BO's pages, as a VMB_SYNC_BO_USER_FENCE at that offset: the library's own
 * mapping, the BO's pages pinned until the write, so the call needs no writability check of the
 * address (a system call). Made read-only by the application behind the library's back, the
 * mapping no longer matters: the call succeeds and the value is seen there (with the check it was
 * -EFAULT); a wait on it reads it through the BO's pages as well.
 */
static void test_ufence_in_bo_cpu_map(void **state)
{
	struct fixture *f = *state;
	uint32_t h = bo_new(f->c, PG, place_cpu(f->c));
	uint64_t *p = bo_cpu(f->c, h);
	struct vmb_bind_op map = op_map(f->bo, 0, 0, 64 * KiB * S, 0), unmap = op_unmap(0, 64 * KiB * S);
	struct vmb_sync s = sync_ufence(&p[8], 7);
	bind_async(f->c, f->vm, 0, &map, 1, &s, 1);
	ufence_wait(f->c, &p[8], 7);
	assert_int_equal(mprotect(p, PG, PROT_READ), 0);
	s = sync_ufence(&p[PG / 8 - 1], 9); /* the BO's last word */
	assert_int_equal(__bind_async(f->c, f->vm, 0, &unmap, 1, &s, 1), 0);
	ufence_wait(f->c, &p[PG / 8 - 1], 9);
	assert_int_equal(nmappings(f, f->vm), 0);
	/* a wait reads it through the BO's pages too (with the check of the address: -EFAULT) */
	assert_int_equal(mprotect(p, PG, PROT_NONE), 0);
	ufence_wait(f->c, &p[PG / 8 - 1], 9);
	assert_int_equal(mprotect(p, PG, PROT_READ | PROT_WRITE), 0);
	struct vmb_bo_munmap um = {.handle = h, .ptr = (uint64_t)(uintptr_t)p};
	assert_int_equal(vmb_bo_munmap(f->c, &um), 0);
	validate_client(f->c);
}

/* ---- who holds what (core/lock.h): the vm layer checks its caller's locks in debug builds ---- */

static struct vmb_vm *lock_rule_vm;

static void rw_unlocked(void)
{
	uint8_t x;
	vmb_vm_rw(lock_rule_vm, 0, &x, 1, false, NULL);
}

static void validate_unlocked(void) { vmb_vm_validate(lock_rule_vm); }


static void test_vm_calls_need_the_vm_lock(void **state)
{
	struct fixture *f = *state;
#ifdef NDEBUG
	skip();
#endif
	vmb_dev_lock(f->c->dev);
	lock_rule_vm = vmb_handle_lookup(&f->c->vms, f->vm);
	vmb_dev_unlock(f->c->dev);
	assert_non_null(lock_rule_vm);
	assert_true(child_aborts(rw_unlocked));
	assert_true(child_aborts(validate_unlocked));
}

/* ---- a call that waits acts on the objects its handles named when it was made ---- */

/*
 * White-box, to make the order of the tests below certain: the references on a BO or vm (the
 * handle's, plus one per call holding it). Waits until there are @want (a call has looked it up)
 * or 10 s have passed (code where calls hold nothing: the test then fails on its result).
 */
static uint32_t obj_refs(struct vmb_client *c, uint32_t h, bool vm)
{
	vmb_dev_lock(c->dev);
	struct vmb_bo *bo = vm ? NULL : vmb_handle_lookup(&c->bos, h);
	struct vmb_vm *v = vm ? vmb_handle_lookup(&c->vms, h) : NULL;
	uint32_t r = bo ? bo->refs : v ? v->refs : 0;
	vmb_dev_unlock(c->dev);
	return r;
}

static void wait_refs(struct vmb_client *c, uint32_t h, bool vm, uint32_t want)
{
	for (int i = 0; i < 10000 && obj_refs(c, h, vm) != want; i++)
		usleep(1000);
}

/* The same for bind queue @q of @vm. */
static void wait_queue_refs(struct vmb_client *c, uint32_t vm, uint32_t q, unsigned int want)
{
	for (int i = 0; i < 10000; i++) {
		vmb_dev_lock(c->dev);
		struct vmb_vm *v = vmb_handle_lookup(&c->vms, vm);
		struct vmb_bind_queue *bq = v ? vmb_handle_lookup(&v->queues, q) : NULL;
		unsigned int r = bq ? atomic_load(&bq->refs) : 0;
		vmb_dev_unlock(c->dev);
		if (r == want)
			return;
		usleep(1000);
	}
}

static void test_waiting_call_keeps_its_bo(void **state)
{
	struct fixture *f = *state;
	uint32_t qa = queue_new(f->c, f->vm);
	struct gate g = gate_new(f->c);
	static uint64_t ua;
	ua = 0;
	struct vmb_bind_op a = op_map(f->bo, 0, 0, 64 * KiB * S, 0);
	struct vmb_sync sa[2] = {sync_in(g.h), sync_ufence(&ua, 1)};
	bind_async(f->c, f->vm, qa, &a, 1, sa, 2);
	/* a synchronous MAP of X over the gated bind: it waits in the call */
	uint32_t x = bo_new(f->c, BO_SIZE, VMB_PLACE_VRAM);
	struct vmb_bind_op m = op_map(x, 0, 0, 64 * KiB * S, 0);
	struct call k;
	call_start(&k, f->c, f->vm, 0, false, &m, 1, NULL, 0);
	wait_refs(f->c, x, false, 2); /* the call looked X up: it waits now */
	assert_int_equal(atomic_load(&k.result), CALL_RUNNING);
	/* X goes, and BOs are created until one takes X's handle (the allocator is cyclic: the
	 * handle comes back within the table's capacity) */
	bo_destroy1(f->c, x);
	uint32_t y = 0;
	for (int i = 0; i < 4096 && !y; i++) {
		uint32_t h = bo_new(f->c, BO_SIZE, VMB_PLACE_VRAM);
		if (h == x)
			y = h;
		else
			bo_destroy1(f->c, h);
	}
	assert_int_equal(y, x);
	gate_open(&g);
	pthread_join(k.th, NULL);
	/* X was destroyed: the call fails; the new BO under the same handle is not mapped */
	assert_int_equal(atomic_load(&k.result), -ENOENT);
	ufence_wait(f->c, &ua, 1);
	struct vmb_bo_query bq = {.handle = y};
	assert_int_equal(vmb_bo_query(f->c, &bq), 0);
	assert_int_equal(bq.vm_mappings, 0);
	assert_int_equal(gpu_read64(f->c, f->vm, 0), pattern(1, 0));
	assert_int_equal(nmappings(f, f->vm), 1);
	validate_client(f->c);
}

static void test_waiting_call_keeps_its_vm(void **state)
{
	struct fixture *f = *state;
	uint32_t lr = vm_new(f->c, VMB_VM_CREATE_LR_MODE);
	struct gate g = gate_new(f->c);
	static uint64_t uf;
	uf = 0;
	/* an LR vm waits for its in-syncobjs in the call */
	struct vmb_bind_op m = op_map(f->bo, 0, 0, 64 * KiB * S, 0);
	struct vmb_sync s[2] = {sync_in(g.h), sync_ufence(&uf, 1)};
	struct call k;
	call_start(&k, f->c, lr, 0, true, &m, 1, s, 2);
	wait_refs(f->c, lr, true, 2); /* the call looked the vm up: it waits now */
	assert_int_equal(atomic_load(&k.result), CALL_RUNNING);
	/* the vm goes, and vms (not LR) are created until one takes its handle */
	struct vmb_vm_destroy d = {.vm_id = lr};
	assert_int_equal(vmb_vm_destroy(f->c, &d), 0);
	uint32_t nv = 0;
	for (int i = 0; i < 4096 && !nv; i++) {
		uint32_t h = vm_new(f->c, 0);
		if (h == lr) {
			nv = h;
		} else {
			d.vm_id = h;
			assert_int_equal(vmb_vm_destroy(f->c, &d), 0);
		}
	}
	assert_int_equal(nv, lr);
	gate_open(&g);
	pthread_join(k.th, NULL);
	/* the vm was destroyed: the call fails; the new vm under the same handle is untouched */
	assert_int_equal(atomic_load(&k.result), -ENOENT);
	assert_int_equal(nmappings(f, nv), 0);
	assert_int_equal(load(&uf), 0);
	validate_client(f->c);
}

/*
 * Randomised: a call waits holding a BO (synchronous MAP behind a gated bind of another queue),
 * an LR vm (its in-syncobj) or a bind queue (a synchronous bind behind the queue's gated bind);
 * the object is kept, destroyed, or destroyed and its handle taken over by a new object; then
 * the gate opens. The call acts on the object it named, or fails with -ENOENT, never touching
 * the newer one.
 */
static void test_handle_reuse_rounds(void **state)
{
	struct fixture *f = *state;
	uint64_t seed = test_seed("handle-reuse");
	uint32_t qa = queue_new(f->c, f->vm);
	for (int round = 0; round < 48; round++) {
		int kind = (int)rnd_below(&seed, 3); /* 0: BO, 1: LR vm, 2: bind queue */
		bool destroy = rnd_below(&seed, 3) != 0, reuse = destroy && rnd_below(&seed, 2);
		uint64_t addr = 1 * GiB * S + (uint64_t)round * 2 * MiB * S;
		struct gate g = gate_new(f->c);
		static uint64_t ua, uf;
		ua = uf = 0;
		struct vmb_sync sa[2] = {sync_in(g.h), sync_ufence(&ua, 1)};
		struct vmb_bind_op gated = op_map(f->bo, 0, addr, 64 * KiB * S, 0);
		uint32_t x = 0, lr = 0, q = 0, newer = 0;
		struct call k;
		if (kind == 0) {
			bind_async(f->c, f->vm, qa, &gated, 1, sa, 2);
			x = bo_new(f->c, BO_SIZE, VMB_PLACE_VRAM);
			struct vmb_bind_op m = op_map(x, 0, addr, 64 * KiB * S, 0);
			call_start(&k, f->c, f->vm, 0, false, &m, 1, NULL, 0);
			wait_refs(f->c, x, false, 2);
		} else if (kind == 1) {
			lr = vm_new(f->c, VMB_VM_CREATE_LR_MODE);
			struct vmb_bind_op m = op_map(f->bo, 0, 0, 64 * KiB * S, 0);
			struct vmb_sync s[2] = {sync_in(g.h), sync_ufence(&uf, 1)};
			call_start(&k, f->c, lr, 0, true, &m, 1, s, 2);
			wait_refs(f->c, lr, true, 2);
		} else {
			q = queue_new(f->c, f->vm);
			bind_async(f->c, f->vm, q, &gated, 1, sa, 2);
			struct vmb_bind_op m = op_map(f->bo2, 0, addr + 1 * MiB * S, 64 * KiB * S, 0);
			call_start(&k, f->c, f->vm, q, false, &m, 1, NULL, 0);
			wait_queue_refs(f->c, f->vm, q, 3); /* the handle's, the gated job's, the call's */
		}
		assert_int_equal(atomic_load(&k.result), CALL_RUNNING);
		if (destroy) {
			if (kind == 0) {
				bo_destroy1(f->c, x);
			} else if (kind == 1) {
				struct vmb_vm_destroy d = {.vm_id = lr};
				assert_int_equal(vmb_vm_destroy(f->c, &d), 0);
			} else {
				struct vmb_bind_queue_destroy d = {.vm_id = f->vm, .queue_id = q};
				assert_int_equal(vmb_bind_queue_destroy(f->c, &d), 0);
			}
			/* new objects of the kind until one takes the handle (cyclic tables) */
			for (int i = 0; reuse && i < 4096 && !newer; i++) {
				uint32_t h = kind == 0 ? bo_new(f->c, BO_SIZE, VMB_PLACE_VRAM)
					     : kind == 1 ? vm_new(f->c, 0)
							 : queue_new(f->c, f->vm);
				uint32_t want = kind == 0 ? x : kind == 1 ? lr : q;
				if (h == want) {
					newer = h;
				} else if (kind == 0) {
					bo_destroy1(f->c, h);
				} else if (kind == 1) {
					struct vmb_vm_destroy d = {.vm_id = h};
					assert_int_equal(vmb_vm_destroy(f->c, &d), 0);
				} else {
					struct vmb_bind_queue_destroy d = {.vm_id = f->vm, .queue_id = h};
					assert_int_equal(vmb_bind_queue_destroy(f->c, &d), 0);
				}
			}
			assert_true(!reuse || newer);
		}
		gate_open(&g);
		pthread_join(k.th, NULL);
		int result = atomic_load(&k.result);
		if (result != (destroy ? -ENOENT : 0))
			fail_msg("round %d kind %d destroy %d reuse %d: result %d", round, kind, destroy, reuse, result);
		uint64_t v;
		if (kind == 0) {
			ufence_wait(f->c, &ua, 1);
			struct vmb_bo_query bq = {.handle = destroy ? newer : x};
			if (bq.handle) {
				assert_int_equal(vmb_bo_query(f->c, &bq), 0);
				assert_int_equal(bq.vm_mappings, destroy ? 0 : 1);
			}
			assert_int_equal(gpu_read64(f->c, f->vm, addr), destroy ? pattern(1, 0) : 0);
			bind1(f->c, f->vm, op_unmap(addr, 64 * KiB * S));
			if (bq.handle)
				bo_destroy1(f->c, bq.handle);
		} else if (kind == 1) {
			uint32_t vm = destroy ? newer : lr;
			if (vm) {
				if (!destroy)
					ufence_wait(f->c, &uf, 1);
				assert_int_equal(nmappings(f, vm), destroy ? 0 : 1);
				struct vmb_vm_destroy d = {.vm_id = vm};
				assert_int_equal(vmb_vm_destroy(f->c, &d), 0);
			}
			assert_int_equal(load(&uf), destroy ? 0 : 1);
		} else {
			ufence_wait(f->c, &ua, 1);
			int err = __gpu_rw(f->c, f->vm, addr + 1 * MiB * S, &v, 8, false);
			if (destroy) {
				assert_int_equal(err, -EFAULT);
			} else {
				assert_int_equal(err, 0);
				assert_int_equal(v, pattern(2, 0));
				bind1(f->c, f->vm, op_unmap(addr + 1 * MiB * S, 64 * KiB * S));
			}
			uint32_t left = destroy ? newer : q;
			if (left) {
				struct vmb_bind_queue_destroy d = {.vm_id = f->vm, .queue_id = left};
				assert_int_equal(vmb_bind_queue_destroy(f->c, &d), 0);
			}
			bind1(f->c, f->vm, op_unmap(addr, 64 * KiB * S));
		}
		validate_client(f->c);
	}
}

/* ---- back-pressure is per queue ---- */

#define QUEUE_BACKLOG 1024 /* the per-queue limit of pending binds (docs/UAPI.md) */

static void test_backlog_of_one_queue_does_not_block_another(void **state)
{
	struct fixture *f = *state;
	uint32_t q1 = queue_new(f->c, f->vm), q2 = queue_new(f->c, f->vm);
	struct gate g = gate_new(f->c);
	static uint64_t u1, u2;
	u1 = u2 = 0;
	for (int i = 0; i < QUEUE_BACKLOG; i++) {
		struct vmb_bind_op op = i & 1 ? op_unmap(0, 64 * KiB * S) : op_map(f->bo, 0, 0, 64 * KiB * S, 0);
		struct vmb_sync s = sync_in(g.h);
		bind_async(f->c, f->vm, q1, &op, 1, &s, 1);
	}
	/* another queue, no in-syncs, an unrelated range: it neither blocks nor waits */
	struct vmb_bind_op b = op_map(f->bo2, 0, 1 * GiB * S, 64 * KiB * S, 0);
	struct vmb_sync sb = sync_ufence(&u2, 1);
	struct call k;
	call_start(&k, f->c, f->vm, q2, true, &b, 1, &sb, 1);
	assert_int_equal(call_result_or_fail(&k, &g, "queue 2 behind queue 1's backlog"), 0);
	assert_int_equal(__ufence_wait(f->c, &u2, 1, VMB_UFENCE_OP_EQ, 10 * SEC), 0);
	assert_int_equal(gpu_read64(f->c, f->vm, 1 * GiB * S), pattern(2, 0));

	/* queue 1 itself is full: its next asynchronous call waits for queue 1's oldest bind */
	struct vmb_bind_op c = op_map(f->bo2, 0, 2 * GiB * S, 64 * KiB * S, 0);
	struct vmb_sync sc = sync_ufence(&u1, 1);
	call_start(&k, f->c, f->vm, q1, true, &c, 1, &sc, 1);
	assert_false(call_returns_within(&k, 50 * MS));
#ifndef VMB_FENCE_CONDVAR
	/* interruptibly: a signal ends the wait with -EINTR, nothing changed */
	struct sigaction sa = {.sa_handler = on_usr1}, old;
	sigemptyset(&sa.sa_mask);
	assert_int_equal(sigaction(SIGUSR1, &sa, &old), 0);
	while (atomic_load(&k.result) == CALL_RUNNING) {
		pthread_kill(k.th, SIGUSR1);
		usleep(2000);
	}
	pthread_join(k.th, NULL);
	sigaction(SIGUSR1, &old, NULL);
	assert_int_equal(atomic_load(&k.result), -EINTR);
	assert_int_equal(nmappings(f, f->vm), 1); /* queue 1's binds end unmapped; queue 2's */
	call_start(&k, f->c, f->vm, q1, true, &c, 1, &sc, 1);
	assert_false(call_returns_within(&k, 10 * MS));
#endif
	gate_open(&g);
	pthread_join(k.th, NULL);
	assert_int_equal(atomic_load(&k.result), 0);
	ufence_wait(f->c, &u1, 1);
	assert_int_equal(gpu_read64(f->c, f->vm, 2 * GiB * S), pattern(2, 0));
	validate_client(f->c);
}

/* ---- binds of different queues are ordered where their ops' ranges overlap, nowhere else ---- */

/* far apart: no page table in common below the root (scaled: within the 48-bit VA at S = 512,
 * FAR_HI by 256 only) */
#define FAR_LO (0x100000ull * S)
#define FAR_MID (0x7000000000ull * S)
#define FAR_HI (0xF000000000ull * (S > 1 ? 256 : 1))

/* A bind of queue @q at FAR_MID, blocked on @g. */
static void gated_bind_mid(struct fixture *f, uint32_t q, struct gate *g, uint64_t *uf)
{
	struct vmb_bind_op a = op_map(f->bo, 0, FAR_MID, 64 * KiB * S, 0);
	struct vmb_sync sa[2] = {sync_in(g->h), sync_ufence(uf, 1)};
	bind_async(f->c, f->vm, q, &a, 1, sa, 2);
}

static void test_order_by_op_ranges_not_span(void **state)
{
	struct fixture *f = *state;
	uint32_t q1 = queue_new(f->c, f->vm), q2 = queue_new(f->c, f->vm);
	struct gate g = gate_new(f->c);
	static uint64_t ua, ub;
	ua = ub = 0;
	gated_bind_mid(f, q1, &g, &ua);
	/* two ops on either side of the gated range, asynchronous on queue 2: not ordered after it */
	struct vmb_bind_op two[2] = {op_map(f->bo2, 0, FAR_LO, 64 * KiB * S, 0), op_map(f->bo2, 0, FAR_HI, 64 * KiB * S, 0)};
	struct vmb_sync sb = sync_ufence(&ub, 1);
	bind_async(f->c, f->vm, q2, two, 2, &sb, 1);
	int err = __ufence_wait(f->c, &ub, 1, VMB_UFENCE_OP_EQ, 10 * SEC);
	if (err)
		gate_open(&g);
	assert_int_equal(err, 0);
	assert_int_equal(gpu_read64(f->c, f->vm, FAR_LO), pattern(2, 0));
	assert_int_equal(gpu_read64(f->c, f->vm, FAR_HI), pattern(2, 0));
	/* the same, synchronous (it runs in the call once nothing it overlaps is pending) */
	struct vmb_bind_op unmap2[2] = {op_unmap(FAR_LO, 64 * KiB * S), op_unmap(FAR_HI, 64 * KiB * S)};
	struct call k;
	call_start(&k, f->c, f->vm, 0, false, unmap2, 2, NULL, 0);
	assert_int_equal(call_result_or_fail(&k, &g, "synchronous 2-op bind"), 0);
	uint64_t v;
	assert_int_equal(__gpu_rw(f->c, f->vm, FAR_LO, &v, 8, false), -EFAULT);
	assert_int_equal(__gpu_rw(f->c, f->vm, FAR_HI, &v, 8, false), -EFAULT);
	/* an op that does overlap is still ordered after the gated bind */
	struct vmb_bind_op over = op_map(f->bo2, 0, FAR_MID + 32 * KiB * S, 64 * KiB * S, 0);
	sb = sync_ufence(&ub, 2);
	bind_async(f->c, f->vm, q2, &over, 1, &sb, 1);
	assert_int_equal(__ufence_wait(f->c, &ub, 2, VMB_UFENCE_OP_EQ, 20 * MS), -ETIME);
	gate_open(&g);
	ufence_wait(f->c, &ub, 2);
	assert_int_equal(load(&ua), 1);
	assert_int_equal(gpu_read64(f->c, f->vm, FAR_MID), pattern(1, 0));
	assert_int_equal(gpu_read64(f->c, f->vm, FAR_MID + 32 * KiB * S), pattern(2, 0));
	validate_client(f->c);
}

/*
 * The ranges of a bind's ops side by side are recorded as one (vm/bind.c, job_track_range), ops
 * apart as two: a bind of another queue in the gap between them is not ordered after it, one
 * that meets any of its pieces is.
 */
static void test_order_by_adjacent_op_ranges(void **state)
{
	struct fixture *f = *state;
	uint32_t q1 = queue_new(f->c, f->vm), q2 = queue_new(f->c, f->vm);
	struct gate g = gate_new(f->c);
	static uint64_t ua, ub;
	ua = ub = 0;
	uint64_t p = 64 * KiB * S;
	/* queue 1, gated: pieces at 0, p, 3p of FAR_MID (0 and p side by side, 3p apart) */
	struct vmb_bind_op three[3] = {op_map(f->bo, 0, FAR_MID, p, 0), op_map(f->bo, p, FAR_MID + p, p, 0),
				       op_map(f->bo, 0, FAR_MID + 3 * p, p, 0)};
	struct vmb_sync sa[2] = {sync_in(g.h), sync_ufence(&ua, 1)};
	bind_async(f->c, f->vm, q1, three, 3, sa, 2);
	/* queue 2 in the gap [2p, 3p): not ordered after it */
	struct vmb_bind_op gap = op_map(f->bo2, 0, FAR_MID + 2 * p, p, 0);
	struct vmb_sync sb = sync_ufence(&ub, 1);
	bind_async(f->c, f->vm, q2, &gap, 1, &sb, 1);
	int err = __ufence_wait(f->c, &ub, 1, VMB_UFENCE_OP_EQ, 10 * SEC);
	if (err)
		gate_open(&g);
	assert_int_equal(err, 0);
	assert_int_equal(gpu_read64(f->c, f->vm, FAR_MID + 2 * p), pattern(2, 0));
	/* queue 2 over the second piece's last page only: ordered after queue 1's bind */
	struct vmb_bind_op over = op_map(f->bo2, 0, FAR_MID + 2 * p - 4096 * S, 4096 * S, 0);
	sb = sync_ufence(&ub, 2);
	bind_async(f->c, f->vm, q2, &over, 1, &sb, 1);
	assert_int_equal(__ufence_wait(f->c, &ub, 2, VMB_UFENCE_OP_EQ, 20 * MS), -ETIME);
	gate_open(&g);
	ufence_wait(f->c, &ub, 2);
	assert_int_equal(load(&ua), 1);
	assert_int_equal(gpu_read64(f->c, f->vm, FAR_MID), pattern(1, 0));
	assert_int_equal(gpu_read64(f->c, f->vm, FAR_MID + 3 * p), pattern(1, 0));
	assert_int_equal(gpu_read64(f->c, f->vm, FAR_MID + 2 * p - 4096 * S), pattern(2, 0));
	validate_client(f->c);
}

/* The vm's kept arrays (vm.h, kept_*; va.h, kept_steps), read under its lock. */
struct kept {
	void *chunks, *maps, *steps;
	unsigned int nchunks;
};

static struct kept kept_of(struct fixture *f)
{
	struct vmb_vm *vm = vmb_handle_lookup(&f->c->vms, f->vm); /* no vm is created or destroyed meanwhile */
	assert_non_null(vm);
	vmb_dev_lock_shared(f->c->dev);
	vmb_vm_lock(vm);
	struct kept k = {vm->kept_chunks, vm->kept_maps, vm->tree.kept_steps, vm->nkept_chunks};
	vmb_vm_unlock(vm);
	vmb_dev_unlock(f->c->dev);
	return k;
}

/*
 * A 32-op MAP grows its job's plan chunks and map array, and an UNMAP of the 32 mappings its
 * plan's steps: when the job ends the vm keeps them (vm.h, kept_*; va.h, kept_steps), and the
 * next such bind takes them instead of allocating (gated: seen taken while it is pending), with
 * the same results. (Before: nothing was kept, every such bind allocated them and its commit
 * freed them.)
 */
static void test_grown_arrays_kept_for_next_bind(void **state)
{
	struct fixture *f = *state;
	static struct vmb_bind_op ops[32];
	static uint64_t uf;
	uf = 0;
	uint64_t seq = 0;
	struct kept first = {0};
	for (int round = 0; round < 2; round++) {
		struct gate g = gate_new(f->c);
		for (int i = 0; i < 32; i++)
			ops[i] = op_map(round ? f->bo2 : f->bo, (uint64_t)i * PG, FAR_MID + (uint64_t)i * PG, PG, 0);
		struct vmb_sync s[2] = {sync_in(g.h), sync_ufence(&uf, ++seq)};
		bind_async(f->c, f->vm, 0, ops, 32, s, 2);
		struct kept pending = kept_of(f); /* the job holds what it took */
		gate_open(&g);
		ufence_wait(f->c, &uf, seq);
		if (round) {
			assert_null(pending.maps);
			assert_int_equal(pending.nchunks, 0);
		}
		struct kept mapped = kept_of(f);
		assert_non_null(mapped.maps);
		assert_int_equal(mapped.nchunks, 3); /* 32 plans: the job's own chunk and 3 more */
		for (int i = 0; i < 32; i += 5)
			assert_int_equal(gpu_read64(f->c, f->vm, FAR_MID + (uint64_t)i * PG), pattern(round ? 2 : 1, i));
		validate_client(f->c);
		struct vmb_bind_op un = op_unmap(FAR_MID, 32 * PG);
		g = gate_new(f->c);
		s[0] = sync_in(g.h);
		s[1] = sync_ufence(&uf, ++seq);
		bind_async(f->c, f->vm, 0, &un, 1, s, 2);
		pending = kept_of(f);
		gate_open(&g);
		ufence_wait(f->c, &uf, seq);
		if (round)
			assert_null(pending.steps);
		struct kept unmapped = kept_of(f);
		assert_non_null(unmapped.steps);
		assert_int_equal(nmappings(f, f->vm), 0);
		assert_int_equal(__gpu_rw(f->c, f->vm, FAR_MID, &(uint64_t){0}, 8, false), -EFAULT);
		validate_client(f->c);
		if (!round) {
			first = unmapped;
		} else { /* the same memory went round */
			assert_ptr_equal(unmapped.maps, first.maps);
			assert_ptr_equal(unmapped.steps, first.steps);
		}
	}
}

static void test_unmap_all_ordered_by_bo_ranges(void **state)
{
	struct fixture *f = *state;
	uint32_t q1 = queue_new(f->c, f->vm), q2 = queue_new(f->c, f->vm);
	struct gate g = gate_new(f->c);
	static uint64_t ua, ub;
	ua = ub = 0;
	gated_bind_mid(f, q1, &g, &ua);
	uint32_t x = bo_new(f->c, 1 * MiB * S, VMB_PLACE_VRAM);
	bind1(f->c, f->vm, op_map(x, 0, 0x200000 * S, 64 * KiB * S, 0));
	/* synchronous UNMAP_ALL of a BO mapped only at 0x200000 */
	struct vmb_bind_op ua_op = op_unmap_all(x);
	struct call k;
	call_start(&k, f->c, f->vm, 0, false, &ua_op, 1, NULL, 0);
	assert_int_equal(call_result_or_fail(&k, &g, "synchronous UNMAP_ALL"), 0);
	struct vmb_bo_query bq = {.handle = x};
	assert_int_equal(vmb_bo_query(f->c, &bq), 0);
	assert_int_equal(bq.vm_mappings, 0);
	/* asynchronous, on queue 2 */
	bind1(f->c, f->vm, op_map(x, 0, 0x200000 * S, 64 * KiB * S, 0));
	struct vmb_sync sb = sync_ufence(&ub, 1);
	bind_async(f->c, f->vm, q2, &ua_op, 1, &sb, 1);
	int err = __ufence_wait(f->c, &ub, 1, VMB_UFENCE_OP_EQ, 10 * SEC);
	if (err)
		gate_open(&g);
	assert_int_equal(err, 0);
	assert_int_equal(vmb_bo_query(f->c, &bq), 0);
	assert_int_equal(bq.vm_mappings, 0);
	/* a BO mapped at the gated range: its UNMAP_ALL is ordered after the gated bind */
	bind_async(f->c, f->vm, q1, (struct vmb_bind_op[]){op_map(x, 0, FAR_MID + 64 * KiB * S, 64 * KiB * S, 0)}, 1, NULL, 0);
	sb = sync_ufence(&ub, 2);
	bind_async(f->c, f->vm, q2, &ua_op, 1, &sb, 1);
	assert_int_equal(__ufence_wait(f->c, &ub, 2, VMB_UFENCE_OP_EQ, 20 * MS), -ETIME);
	gate_open(&g);
	ufence_wait(f->c, &ub, 2);
	assert_int_equal(load(&ua), 1);
	assert_int_equal(vmb_bo_query(f->c, &bq), 0);
	assert_int_equal(bq.vm_mappings, 0);
	validate_client(f->c);
}

static void test_fallback_ordered_by_op_ranges(void **state)
{
	struct fixture *f = *state;
	uint32_t q1 = queue_new(f->c, f->vm), q2 = queue_new(f->c, f->vm);
	struct gate g = gate_new(f->c);
	static uint64_t ua;
	ua = 0;
	gated_bind_mid(f, q1, &g, &ua);
	bool fell_back = false, async_seen = false;
	for (unsigned long n = 1; n < 64 && !async_seen; n++) {
		struct vmb_bind_op two[2] = {op_map(f->bo2, 0, FAR_LO, 64 * KiB * S, 0),
					     op_map(f->bo2, 0, FAR_HI, 64 * KiB * S, 0)};
		struct call k = {.fail_after = n};
		call_start(&k, f->c, f->vm, q2, true, two, 2, NULL, 0);
		int err = call_result_or_fail(&k, &g, "low-memory fallback");
		if (err) {
			assert_int_equal(err, -ENOMEM);
			assert_int_equal(nmappings(f, f->vm), 1);
			continue;
		}
		fell_back |= k.fired;
		async_seen = !k.fired;
		/* on queue 2 as well: after the bind, whether it ran in the call or not */
		struct vmb_bind_op unmap2[2] = {op_unmap(FAR_LO, 64 * KiB * S), op_unmap(FAR_HI, 64 * KiB * S)};
		static uint64_t uc;
		uc = 0;
		struct vmb_sync sc = sync_ufence(&uc, 1);
		bind_async(f->c, f->vm, q2, unmap2, 2, &sc, 1);
		err = __ufence_wait(f->c, &uc, 1, VMB_UFENCE_OP_EQ, 10 * SEC);
		if (err)
			gate_open(&g);
		assert_int_equal(err, 0);
	}
	assert_true(fell_back);
	assert_true(async_seen);
	assert_int_equal(load(&ua), 0);
	gate_open(&g);
	ufence_wait(f->c, &ua, 1);
	validate_client(f->c);
}

/*
 * A synchronous bind is a job ordered by the rule of asynchronous ones: on another queue it
 * waits for the pending bind its range overlaps and for nothing else; while it waits it has
 * changed nothing (a signal ends the wait with -EINTR and leaves no trace: no mapping, no (vm,
 * BO) link, no reference); restarted, it commits after the bind it overlaps.
 */
static void test_sync_bind_one_rule_across_queues(void **state)
{
	struct fixture *f = *state;
	uint32_t q1 = queue_new(f->c, f->vm), q2 = queue_new(f->c, f->vm);
	struct gate g = gate_new(f->c);
	static uint64_t ua;
	ua = 0;
	gated_bind_mid(f, q1, &g, &ua);
	uint32_t x = bo_patterned(f->c, 3);
	uint32_t refs = obj_refs(f->c, x, false);
	(void)refs; /* checked only where signals interrupt waits (not under VMB_FENCE_CONDVAR) */
	struct vmb_bind_op over = op_map(x, 0, FAR_MID + 32 * KiB * S, 64 * KiB * S, 0);
	struct call k;
	call_start(&k, f->c, f->vm, q2, false, &over, 1, NULL, 0);
	assert_false(call_returns_within(&k, 50 * MS));
	/* the same queue, a range nothing pending meets: not held up by the waiting call */
	struct call k2;
	struct vmb_bind_op far = op_map(f->bo2, 0, FAR_LO, 64 * KiB * S, 0);
	call_start(&k2, f->c, f->vm, q2, false, &far, 1, NULL, 0);
	assert_int_equal(call_result_or_fail(&k2, &g, "synchronous bind elsewhere"), 0);
	assert_int_equal(gpu_read64(f->c, f->vm, FAR_LO), pattern(2, 0));
#ifndef VMB_FENCE_CONDVAR
	struct sigaction sa = {.sa_handler = on_usr1}, old;
	sigemptyset(&sa.sa_mask);
	assert_int_equal(sigaction(SIGUSR1, &sa, &old), 0);
	while (atomic_load(&k.result) == CALL_RUNNING) {
		pthread_kill(k.th, SIGUSR1);
		usleep(2000);
	}
	pthread_join(k.th, NULL);
	sigaction(SIGUSR1, &old, NULL);
	assert_int_equal(atomic_load(&k.result), -EINTR);
	struct vmb_bo_query bq = {.handle = x};
	assert_int_equal(vmb_bo_query(f->c, &bq), 0);
	assert_int_equal(bq.vm_mappings, 0);
	assert_int_equal(obj_refs(f->c, x, false), refs);
	assert_int_equal(nmappings(f, f->vm), 2); /* the gated bind's and FAR_LO */
	assert_int_equal(load(&ua), 0);
	call_start(&k, f->c, f->vm, q2, false, &over, 1, NULL, 0);
	assert_false(call_returns_within(&k, 10 * MS));
#endif
	gate_open(&g);
	pthread_join(k.th, NULL);
	assert_int_equal(atomic_load(&k.result), 0);
	assert_int_equal(load(&ua), 1); /* it committed after the gated bind */
	assert_int_equal(gpu_read64(f->c, f->vm, FAR_MID), pattern(1, 0));
	assert_int_equal(gpu_read64(f->c, f->vm, FAR_MID + 32 * KiB * S), pattern(3, 0));
	validate_client(f->c);
}

/*
 * BO user fences are the device's (VMB_CAP_USER_FENCE_BO): a device that does not write them
 * where the BO's memory is (CUDA: the GPU's allocations, not the host pages the library keeps)
 * does not report the bit and refuses them, in bind out-syncs and in BO waits, with -EOPNOTSUPP,
 * nothing changed. The soft device has the bit; here it is taken away as a CUDA device lacks it.
 */
static void test_bo_user_fence_needs_device_cap(void **state)
{
	struct fixture *f = *state;
	struct vmb_device *dev = f->c->dev;
	uint32_t fbo = bo_new(f->c, BO_SIZE, VMB_PLACE_SYSTEM);
	struct vmb_bind_op op = op_map(f->bo, 0, 1 * GiB * S, PG, 0);
	struct vmb_sync s = {.type = VMB_SYNC_BO_USER_FENCE, .flags = VMB_SYNC_FLAG_SIGNAL, .handle = fbo,
			     .addr = 8, .value = 1};
	struct vmb_user_fence_wait w = {.addr = 8, .bo_handle = fbo, .flags = VMB_UFENCE_WAIT_BO, .value = 1,
					.mask = ~0ull, .timeout = 0, .op = VMB_UFENCE_OP_EQ};

	assert_true(device_query(f->c).capabilities & VMB_CAP_USER_FENCE_BO);
	dev->caps &= ~VMB_CAP_USER_FENCE_BO; /* (no call in flight: read-only to everyone else) */
	assert_false(device_query(f->c).capabilities & VMB_CAP_USER_FENCE_BO);
	uint32_t before = nmappings(f, f->vm);
	assert_int_equal(__bind_async(f->c, f->vm, 0, &op, 1, &s, 1), -EOPNOTSUPP);
	assert_int_equal(nmappings(f, f->vm), before);
	assert_int_equal(vmb_user_fence_wait(f->c, &w), -EOPNOTSUPP);
	dev->caps |= VMB_CAP_USER_FENCE_BO;
	/* with the bit, both work */
	bind_async(f->c, f->vm, 0, &op, 1, &s, 1);
	w.timeout = 10 * SEC;
	assert_int_equal(vmb_user_fence_wait(f->c, &w), 0);
	assert_int_equal(nmappings(f, f->vm), before + 1);
	validate_client(f->c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_blocked_queue_does_not_hold_others, setup, teardown),
		cmocka_unit_test_setup_teardown(test_idle_queue_bind_done_in_call, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sync_bind_waits_for_its_queue, setup, teardown),
		cmocka_unit_test_setup_teardown(test_overlap_across_queues_in_submission_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_in_order_completion, setup, teardown),
		cmocka_unit_test_setup_teardown(test_arrays_16_256, setup, teardown),
		cmocka_unit_test_setup_teardown(test_array_equals_separate_calls, setup, teardown),
		cmocka_unit_test_setup_teardown(test_barrier, setup, teardown),
		cmocka_unit_test_setup_teardown(test_threads_and_queues_match_model, setup, teardown),
		cmocka_unit_test_setup_teardown(test_threads_sync_match_model, setup, teardown),
		cmocka_unit_test_setup_teardown(test_threads_sync_async_match_model, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lr_vm, setup, teardown),
		cmocka_unit_test_setup_teardown(test_job_allocation_fallback, setup, teardown),
		cmocka_unit_test_setup_teardown(test_teardown_with_pending, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ufence_in_bo_cpu_map, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_syncs_change_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_waiting_call_keeps_its_bo, setup, teardown),
		cmocka_unit_test_setup_teardown(test_waiting_call_keeps_its_vm, setup, teardown),
		cmocka_unit_test_setup_teardown(test_handle_reuse_rounds, setup, teardown),
		cmocka_unit_test_setup_teardown(test_backlog_of_one_queue_does_not_block_another, setup, teardown),
		cmocka_unit_test_setup_teardown(test_order_by_op_ranges_not_span, setup, teardown),
		cmocka_unit_test_setup_teardown(test_order_by_adjacent_op_ranges, setup, teardown),
		cmocka_unit_test_setup_teardown(test_grown_arrays_kept_for_next_bind, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unmap_all_ordered_by_bo_ranges, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fallback_ordered_by_op_ranges, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sync_bind_one_rule_across_queues, setup, teardown),
		cmocka_unit_test_setup_teardown(test_vm_calls_need_the_vm_lock, setup, teardown),
		cmocka_unit_test_setup_teardown(test_vms_in_parallel_share_bos, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bo_user_fence_needs_device_cap, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
