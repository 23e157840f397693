/* SPDX-License-Identifier: MIT */
/*
 * Description: unbind cannot fail for lack of resources (issue 13 item 3; the source document:
 * "Unbind operations are guaranteed not to cause any errors due to resource constraints").
 * With every host allocation of the calling thread failing from the first (vmb_alloc_fail_from(1),
 * core/alloc.h) and the device's page-table pool full (another vm mapped until -ENOMEM):
 *  - an UNMAP that removes whole mappings or trims them at either end succeeds, at every leaf size
 *    the vm uses (4 KiB, 64 KiB, 2 MiB, 1 GiB; those at or above the device's granularity), cut at
 *    a leaf boundary or inside a leaf, synchronous or asynchronous with each kind of out-sync
 *    (binary syncobj, timeline syncobj: its spare point record, user fence, user fence in a BO);
 *  - a split inside a mapping (front, middle, end, across several large pages) takes its pieces
 *    from the vm's reserve (VMB_VM_UNMAP_RESERVE, vm/vm.h) and succeeds while the reserve holds;
 *    once the splits made while allocation fails have used it up, the next split is -ENOMEM with
 *    nothing changed, and trims and whole removals still succeed;
 *  - UNMAP of the whole vm range and UNMAP_ALL of a BO succeed whatever the number of mappings;
 *  - an asynchronous unbind whose in-syncs (binary, timeline) have not signalled waits for them
 *    in the call and succeeds.
 * Other shapes (attack12): a BO, READONLY or userptr mapping, in a SCRATCH_PAGE or LR vm, on a
 * bind queue of its own, with tracing on. Threads on one vm sharing its reserve: two unbinding
 * under failure (trims never fail, splits -ENOMEM with nothing changed), one refilling it.
 * Calls that still need memory (9 ops, 5 syncs, two points of one timeline) fail whole: no
 * mapping and no out-sync touched.
 * The same asynchronous unbinds with memory available (a job of their own, committed by a
 * worker) while the pool is full. After each call: the mappings are exactly the expected ones and
 * the client's check passes (tree and page tables agree).
 */
#include "lib/harness.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>

#include "core/alloc.h"
#include "core/client.h" /* a syncobj's fence, to see the call hold it */
#include "sync/syncobj.h"
#include "vm/vm.h"

#define POOL (16 * MiB)
#define BASE (4 * GiB)
#define MAXM 256

struct fixture {
	struct vmb_client *c;
	uint64_t g;       /* the device's granularity */
	uint32_t filler;  /* the vm that fills the page-table pool */
	uint32_t syncobj, timeline, fence_bo;
	uint64_t point;
	uint64_t *fence_word;
	uint64_t seq;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct vmb_client_opts o = {.vram_size = 64 * MiB, .system_size = 64 * MiB, .pt_pool_size = POOL};
	assert_int_equal(vmb_client_open("soft", &o, &f->c), 0);
	f->g = granule_of(f->c);
	f->syncobj = syncobj_new(f->c, 0);
	f->timeline = syncobj_new(f->c, VMB_SYNCOBJ_CREATE_TIMELINE);
	f->fence_bo = bo_new(f->c, f->g, place_cpu(f->c));
	f->fence_word = bo_cpu(f->c, f->fence_bo);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	vmb_alloc_fail_from(0);
	return fixture_close(f, f->c);
}

/* Maps NULL ranges into a vm of its own, biggest first, until the pool refuses every size. */
static void fill_pool(struct fixture *f)
{
	static const uint64_t sizes[] = {1 * GiB, 128 * MiB, 16 * MiB, 2 * MiB, 64 * KiB, 4 * KiB};
	uint64_t cursor = 0;
	f->filler = vm_new(f->c, 0);
	for (unsigned int k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		uint64_t s = sizes[k];
		if (s < f->g)
			continue;
		for (unsigned int i = 0; i < 100000; i++) {
			uint64_t addr = (cursor + s - 1) & ~(s - 1);
			int r = __bind1(f->c, f->filler, op_null(addr, s));
			if (r == -ENOMEM)
				break;
			assert_int_equal(r, 0);
			cursor = addr + s;
		}
	}
}

static void unfill_pool(struct fixture *f)
{
	vm_destroy1(f->c, f->filler);
	f->filler = 0;
}

struct range {
	uint64_t addr, range;
};

static uint32_t list(struct fixture *f, uint32_t vm, struct vmb_mapping_info *m)
{
	struct vmb_vm_query_mappings q = {.vm_id = vm, .num_mappings = MAXM, .mappings = (uint64_t)(uintptr_t)m};
	assert_int_equal(vmb_vm_query_mappings(f->c, &q), 0);
	assert_true(q.num_mappings <= MAXM);
	return q.num_mappings;
}

static void expect(struct fixture *f, uint32_t vm, const struct range *want, unsigned int n)
{
	struct vmb_mapping_info m[MAXM];
	uint32_t got = list(f, vm, m);
	if (got != n) {
		for (uint32_t i = 0; i < got; i++)
			fprintf(stderr, "  has [%#llx +%#llx]\n", (unsigned long long)m[i].addr,
				(unsigned long long)m[i].range);
	}
	assert_int_equal(got, n);
	for (unsigned int i = 0; i < n; i++) {
		assert_int_equal(m[i].addr, want[i].addr);
		assert_int_equal(m[i].range, want[i].range);
	}
}

/* How an unbind is submitted. */
enum mode { SYNC, ASYNC_SYNCOBJ, ASYNC_UFENCE, ASYNC_BO_UFENCE, ASYNC_TIMELINE, ASYNC_POOL_ONLY, NMODES };
static const char *const mode_name[] = {"sync", "async+syncobj", "async+ufence", "async+bo-ufence",
					 "async+timeline", "async, pool full, memory available"};

/* The call under test, allocation failing all along it (disarmed before anything is checked). */
static int unbind(struct fixture *f, uint32_t vm, enum mode m, struct vmb_bind_op *ops, uint32_t n,
		  uint64_t *host_word)
{
	struct vmb_sync s;
	uint64_t v = ++f->seq;
	switch (m) {
	case ASYNC_SYNCOBJ:
	case ASYNC_POOL_ONLY:
		s = sync_out(f->syncobj);
		break;
	case ASYNC_UFENCE:
		s = sync_ufence(host_word, v);
		break;
	case ASYNC_BO_UFENCE:
		s = (struct vmb_sync){.type = VMB_SYNC_BO_USER_FENCE, .flags = VMB_SYNC_FLAG_SIGNAL,
				      .handle = f->fence_bo, .addr = 0, .value = v};
		break;
	case ASYNC_TIMELINE:
		s = sync_tl_out(f->timeline, f->point + 1);
		break;
	default:
		break;
	}
	/* ASYNC_POOL_ONLY: a job of its own, committed by a worker, with the pool full */
	vmb_alloc_fail_from(m == ASYNC_POOL_ONLY ? 0 : 1);
	int r = m == SYNC ? __bind_ops(f->c, vm, ops, n) : __bind_async(f->c, vm, 0, ops, n, &s, 1);
	vmb_alloc_fail_from(0);
	if (r)
		return r;
	switch (m) {
	case ASYNC_SYNCOBJ:
	case ASYNC_POOL_ONLY:
		syncobj_wait1(f->c, f->syncobj);
		break;
	case ASYNC_UFENCE:
		ufence_wait(f->c, host_word, v);
		break;
	case ASYNC_BO_UFENCE:
		ufence_wait(f->c, f->fence_word, v);
		break;
	case ASYNC_TIMELINE:
		f->point++;
		assert_int_equal(__syncobj_wait1(f->c, f->timeline, f->point, 10ll * 1000000000, 0), 0);
		break;
	default:
		break;
	}
	return 0;
}

/* Leaf sizes of the soft device, those the vm can use on this shape. */
static const uint64_t leaf_sizes[] = {4 * KiB, 64 * KiB, 2 * MiB, 1 * GiB};

/*
 * One mapping of 4 leaves of size @L at BASE + L (so no bigger leaf fits), then [lo, hi) of it
 * (offsets from its start) unmapped under failure. Expects success and the rest kept.
 */
static void one_case(struct fixture *f, uint64_t L, uint64_t lo, uint64_t hi, enum mode m)
{
	uint64_t a = BASE + L, size = 4 * L;
	uint64_t word = 0;
	uint32_t vm = vm_new(f->c, 0);
	bind1(f->c, vm, op_null(a, size));
	struct vmb_mapping_info info[MAXM];
	assert_int_equal(list(f, vm, info), 1);
	assert_int_equal(info[0].page_sizes, L); /* the leaves are the size under test */
	fill_pool(f);
	/* the pool is full: a new table cannot be had */
	assert_int_equal(__bind1(f->c, vm, op_null(64 * GiB, f->g)), -ENOMEM);

	struct vmb_bind_op op = op_unmap(a + lo, hi - lo);
	int r = unbind(f, vm, m, &op, 1, &word);
	if (r)
		fprintf(stderr, "leaf %#llx [%#llx, %#llx) %s: %d\n", (unsigned long long)L, (unsigned long long)lo,
			(unsigned long long)hi, mode_name[m], r);
	assert_int_equal(r, 0);
	struct range want[2];
	unsigned int n = 0;
	if (lo > 0)
		want[n++] = (struct range){a, lo};
	if (hi < size)
		want[n++] = (struct range){a + hi, size - hi};
	expect(f, vm, want, n);
	validate_client(f->c);
	unfill_pool(f);
	vm_destroy1(f->c, vm);
}

/* Every leaf size, every cut, every way of submitting. */
static void test_unmap_every_size_and_position(void **state)
{
	struct fixture *f = *state;
	for (unsigned int k = 0; k < 4; k++) {
		uint64_t L = leaf_sizes[k], g = f->g;
		if (L < g)
			continue;
		/* a cut inside a leaf: one granule in from its edge (at 4 KiB leaves: the next leaf) */
		uint64_t in = L > g ? g : L;
		const struct range cuts[] = {
			{0, 4 * L},              /* the whole mapping */
			{0, L},                  /* front, at a leaf boundary */
			{3 * L, 4 * L},          /* end, at a leaf boundary */
			{0, in},                 /* front, inside the first leaf */
			{4 * L - in, 4 * L},     /* end, inside the last leaf */
			{L, 3 * L},              /* middle, whole leaves */
			{L > g ? L + g : L, L >= 3 * g ? 2 * L - g : 2 * L}, /* middle, inside one leaf (if room) */
			{L - in, 3 * L + in},    /* middle, across several large pages, both ends cut */
		};
		for (unsigned int c = 0; c < sizeof(cuts) / sizeof(cuts[0]); c++)
			for (enum mode m = 0; m < NMODES; m++)
				one_case(f, L, cuts[c].addr, cuts[c].range, m);
	}
}

/* @n mappings of 3 granules each, a granule apart, from @a: the i-th at a + i * 4g. */
static void map_row(struct fixture *f, uint32_t vm, uint64_t a, unsigned int n, uint32_t bo)
{
	for (unsigned int i = 0; i < n; i++)
		bind1(f->c, vm, bo ? op_map(bo, 0, a + i * 4 * f->g, 3 * f->g, 0) : op_null(a + i * 4 * f->g, 3 * f->g));
}

/* Splits inside mappings while allocation fails use the reserve; when it is used up: -ENOMEM,
 * nothing changed; trims and removals still succeed; a call with memory refills it. */
static void test_split_reserve(void **state)
{
	struct fixture *f = *state;
	uint64_t g = f->g;
	const unsigned int n = 100; /* more splits than the vm's cache of records can hold */
	uint32_t vm = vm_new(f->c, 0);
	map_row(f, vm, BASE, n, 0);
	fill_pool(f);

	struct range want[2 * MAXM];
	unsigned int nw = 0;
	for (unsigned int i = 0; i < n; i++)
		want[nw++] = (struct range){BASE + i * 4 * g, 3 * g};
	unsigned int splits = 0;
	int r = 0;
	for (unsigned int i = 0; i < n; i++) {
		struct vmb_bind_op op = op_unmap(BASE + i * 4 * g + g, g);
		r = unbind(f, vm, SYNC, &op, 1, NULL);
		if (r)
			break;
		splits++;
		nw = 0;
		for (unsigned int k = 0; k < n; k++) {
			uint64_t s = BASE + k * 4 * g;
			if (k <= i) {
				want[nw++] = (struct range){s, g};
				want[nw++] = (struct range){s + 2 * g, g};
			} else {
				want[nw++] = (struct range){s, 3 * g};
			}
		}
		expect(f, vm, want, nw);
	}
	/* the reserve ran out, after at least what it guarantees */
	assert_int_equal(r, -ENOMEM);
	assert_true(splits >= VMB_VM_UNMAP_RESERVE - 3);
	assert_true(splits < n - 2);
	expect(f, vm, want, nw); /* nothing changed */
	validate_client(f->c);
	/* a call of two splits fails whole: nothing changed */
	struct vmb_bind_op two[2] = {op_unmap(BASE + (n - 2) * 4 * g + g, g), op_unmap(BASE + (n - 1) * 4 * g + g, g)};
	assert_int_equal(unbind(f, vm, SYNC, two, 2, NULL), -ENOMEM);
	expect(f, vm, want, nw);
	validate_client(f->c);

	/* trims and whole removals still work: the last mapping's front, then its rest */
	uint64_t last = BASE + (n - 1) * 4 * g;
	struct vmb_bind_op op = op_unmap(last, g);
	assert_int_equal(unbind(f, vm, SYNC, &op, 1, NULL), 0);
	op = op_unmap(last + g, 2 * g);
	assert_int_equal(unbind(f, vm, SYNC, &op, 1, NULL), 0);
	nw--;
	expect(f, vm, want, nw);

	/* with memory again, a call refills the reserve: the refused split goes through */
	unfill_pool(f);
	op = op_unmap(BASE + splits * 4 * g + g, g);
	assert_int_equal(__bind1(f->c, vm, op), 0);
	validate_client(f->c);
	vm_destroy1(f->c, vm);
}

/* UNMAP of the whole vm range and UNMAP_ALL of a BO, many mappings, every way of submitting. */
static void test_unmap_everything(void **state)
{
	struct fixture *f = *state;
	uint64_t g = f->g, word = 0;
	const unsigned int n = 40; /* more than any inline array of a call */
	uint32_t bo = bo_new(f->c, 4 * g, VMB_PLACE_SYSTEM);
	for (enum mode m = 0; m < NMODES; m++) {
		uint32_t vm = vm_new(f->c, 0);
		map_row(f, vm, BASE, n, bo);
		map_row(f, vm, BASE + 4 * g * n, n, 0);
		fill_pool(f);
		struct vmb_bind_op op = op_unmap_all(bo);
		struct range want[2 * MAXM];
		for (unsigned int i = 0; i < 2 * n; i++)
			want[i] = (struct range){BASE + 4 * g * i, 3 * g};
		assert_int_equal(unbind(f, vm, m, &op, 1, &word), 0);
		expect(f, vm, want + n, n);
		op = op_unmap(0, 1ull << 47);
		assert_int_equal(unbind(f, vm, m, &op, 1, &word), 0);
		expect(f, vm, NULL, 0);
		validate_client(f->c);
		unfill_pool(f);
		vm_destroy1(f->c, vm);
	}
}

static void *open_later(void *arg)
{
	usleep(50 * 1000); /* the call may or may not be waiting by then: the same result */
	gate_open(arg);
	return NULL;
}

/* An asynchronous unbind whose in-syncs (a binary syncobj, a timeline point) have not signalled:
 * without memory to record their fences the call waits for them, then unbinds. */
static void test_unbind_with_in_syncs(void **state)
{
	struct fixture *f = *state;
	uint64_t g = f->g;
	for (unsigned int timeline = 0; timeline < 2; timeline++) {
		uint32_t vm = vm_new(f->c, 0);
		bind1(f->c, vm, op_null(BASE, 4 * g));
		fill_pool(f);
		struct gate gate = gate_new(f->c);
		struct vmb_sync in = sync_in(gate.h);
		if (timeline) {
			uint32_t tl = syncobj_new(f->c, VMB_SYNCOBJ_CREATE_TIMELINE);
			struct vmb_syncobj_transfer t = {.src_handle = gate.h, .dst_handle = tl, .dst_point = 1};
			assert_int_equal(vmb_syncobj_transfer(f->c, &t), 0);
			in = sync_tl_in(tl, 1);
		}
		struct vmb_sync syncs[2] = {in, sync_out(f->syncobj)};
		struct vmb_bind_op op = op_unmap(BASE + g, g); /* a split */
		pthread_t t;
		assert_int_equal(pthread_create(&t, NULL, open_later, &gate), 0);
		vmb_alloc_fail_from(1);
		int r = __bind_async(f->c, vm, 0, &op, 1, syncs, 2);
		vmb_alloc_fail_from(0);
		pthread_join(t, NULL);
		assert_int_equal(r, 0);
		syncobj_wait1(f->c, f->syncobj);
		struct range want[2] = {{BASE, g}, {BASE + 2 * g, 2 * g}};
		expect(f, vm, want, 2);
		validate_client(f->c);
		unfill_pool(f);
		vm_destroy1(f->c, vm);
	}
}

/* A reference count of binary syncobj @h's fence now (the test's own reference not counted). */
static unsigned int fence_refs(struct vmb_client *c, uint32_t h, struct vmb_fence **out)
{
	pthread_mutex_lock(&c->sync_lock);
	struct vmb_syncobj *s = vmb_handle_lookup(&c->syncobjs, h);
	assert_non_null(s);
	pthread_mutex_lock(&s->lock);
	struct vmb_fence *fe = s->fence;
	assert_non_null(fe);
	vmb_fence_get(fe);
	pthread_mutex_unlock(&s->lock);
	pthread_mutex_unlock(&c->sync_lock);
	unsigned int n = atomic_load(&fe->refs) - 1;
	if (out)
		*out = fe;
	else
		vmb_fence_unref(fe);
	return n;
}

struct nomem_unbind {
	struct vmb_client *c;
	uint32_t vm;
	struct vmb_bind_op op;
	struct vmb_sync syncs[2];
	atomic_int result;
};

static void *unbind_without_memory(void *arg)
{
	struct nomem_unbind *u = arg;
	vmb_alloc_fail_from(1);
	atomic_store(&u->result, __bind_async(u->c, u->vm, 0, &u->op, 1, u->syncs, 2));
	vmb_alloc_fail_from(0);
	return NULL;
}

/*
 * The in-fence of a binary in-syncobj is the fence the syncobj held when the call was made, as
 * Xe's (xe_sync_entry_parse takes it once), also when the call has no memory to record it and
 * waits for it in the call: a new fence put into the syncobj meanwhile is not the call's. Before,
 * the call looked at the syncobj again after its wait and waited for the new fence too: the
 * unbind's user fence was not written (-ETIME after 10 s) while that fence stayed unsignalled.
 */
static void test_unbind_in_fence_taken_at_call(void **state)
{
	struct fixture *f = *state;
	uint32_t vm = vm_new(f->c, 0);
	bind1(f->c, vm, op_null(BASE, 4 * f->g));
	struct gate g0 = gate_new(f->c), g1 = gate_new(f->c);
	uint32_t s = syncobj_new(f->c, 0);
	struct vmb_syncobj_transfer t = {.src_handle = g0.h, .dst_handle = s};
	assert_int_equal(vmb_syncobj_transfer(f->c, &t), 0);
	static uint64_t word;
	word = 0;
	struct nomem_unbind u = {.c = f->c, .vm = vm, .op = op_unmap(BASE, 4 * f->g),
				 .syncs = {sync_in(s), sync_ufence(&word, 1)}};
	atomic_init(&u.result, 1);
	struct vmb_fence *f0;
	unsigned int before = fence_refs(f->c, s, &f0);
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, unbind_without_memory, &u), 0);
	/* the call holds g0's fence to wait for it (it could not record it) */
	while (atomic_load(&f0->refs) - 1 == before) {
		if (atomic_load(&u.result) != 1) /* the call ended without it: fail, not hang */
			fail_msg("the unbind returned (%d) without waiting for its in-fence", atomic_load(&u.result));
		usleep(100);
	}
	t.src_handle = g1.h;
	assert_int_equal(vmb_syncobj_transfer(f->c, &t), 0);
	gate_open(&g0);
	assert_int_equal(__ufence_wait(f->c, &word, 1, VMB_UFENCE_OP_EQ, 10ll * 1000000000), 0);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(atomic_load(&u.result), 0);
	assert_int_equal(vm_stats(f->c, vm).num_mappings, 0);
	vmb_fence_unref(f0);
	gate_open(&g1);
	vm_destroy1(f->c, vm);
}

/* ---- attack12: more shapes of an unbind under pressure ---- */
enum kind { K_NULL, K_BO, K_BO_RO, K_USERPTR, NKINDS };
static const char *const kind_name[] = {"null", "bo", "bo readonly", "userptr"};

/* One mapping of @kind, 4 leaves of @L, in a vm with @vmflags, unmapped at [lo, hi) on bind
 * queue @use_q (0: the default) under failure, with tracing on if @trace. */
static void shape_case(struct fixture *f, uint64_t L, enum kind kind, uint32_t vmflags, bool use_q, bool trace,
		       uint64_t lo, uint64_t hi, enum mode m)
{
	uint64_t a = BASE + L, size = 4 * L;
	uint64_t word = 0;
	struct vmb_vm_create vc = {.flags = vmflags};
	assert_int_equal(vmb_vm_create(f->c, &vc), 0);
	uint32_t vm = vc.vm_id, bo = 0, q = 0;
	void *host = NULL;
	if (use_q)
		q = queue_new(f->c, vm);
	switch (kind) {
	case K_NULL:
		bind1(f->c, vm, op_null(a, size));
		break;
	case K_BO:
	case K_BO_RO:
		bo = bo_new(f->c, size, VMB_PLACE_SYSTEM);
		bind1(f->c, vm, op_map(bo, 0, a, size, kind == K_BO_RO ? VMB_BIND_FLAG_READONLY : 0));
		break;
	default:
		host = aligned_alloc(L, size);
		assert_non_null(host);
		bind1(f->c, vm, op_userptr(host, a, size, 0));
		break;
	}
	if (trace) {
		struct vmb_trace_start ts = {.capacity = 64};
		assert_int_equal(vmb_trace_start(f->c, &ts), 0);
	}
	fill_pool(f);
	struct vmb_bind_op op = op_unmap(a + lo, hi - lo);
	int r;
	if (use_q || (vmflags & VMB_VM_CREATE_LR_MODE)) {
		/* LR: user fences only; SYNC: a synchronous bind on the queue */
		struct vmb_sync s = (vmflags & VMB_VM_CREATE_LR_MODE) || m == ASYNC_UFENCE ? sync_ufence(&word, 1) : sync_out(f->syncobj);
		struct vmb_vm_bind b = {.vm_id = vm, .queue_id = q, .num_binds = 1, .binds = (uint64_t)(uintptr_t)&op};
		vmb_alloc_fail_from(1);
		r = m == SYNC ? vmb_vm_bind(f->c, &b) : __bind_async(f->c, vm, q, &op, 1, &s, 1);
		vmb_alloc_fail_from(0);
		if (!r && m != SYNC) {
			if (s.type == VMB_SYNC_USER_FENCE)
				ufence_wait(f->c, &word, 1);
			else
				syncobj_wait1(f->c, f->syncobj);
		}
	} else {
		r = unbind(f, vm, m, &op, 1, &word);
	}
	if (r)
		fprintf(stderr, "leaf %#llx %s vmflags %#x q %d trace %d [%#llx, %#llx) %s: %d\n", (unsigned long long)L,
			kind_name[kind], vmflags, use_q, trace, (unsigned long long)lo, (unsigned long long)hi, mode_name[m], r);
	assert_int_equal(r, 0);
	if (trace) {
		struct vmb_trace_start ts = {.capacity = 0};
		assert_int_equal(vmb_trace_start(f->c, &ts), 0);
	}
	unfill_pool(f);
	/* a synchronous bind on the queue (after its unbind) */
	struct vmb_bind_op z = op_null(64 * GiB, f->g);
	struct vmb_vm_bind b = {.vm_id = vm, .queue_id = q, .num_binds = 1, .binds = (uint64_t)(uintptr_t)&z};
	assert_int_equal(vmb_vm_bind(f->c, &b), 0);
	struct range want[3];
	unsigned int n = 0;
	if (lo > 0)
		want[n++] = (struct range){a, lo};
	if (hi < size)
		want[n++] = (struct range){a + hi, size - hi};
	want[n++] = (struct range){64 * GiB, f->g};
	expect(f, vm, want, n);
	validate_client(f->c);
	vm_destroy1(f->c, vm);
	if (bo) {
		struct vmb_bo_destroy d = {.handle = bo};
		assert_int_equal(vmb_bo_destroy(f->c, &d), 0);
	}
	free(host);
}

static void test_attack_shapes(void **state)
{
	struct fixture *f = *state;
	static const uint32_t vmflags[] = {0, VMB_VM_CREATE_SCRATCH_PAGE, VMB_VM_CREATE_LR_MODE};
	for (unsigned int k = 0; k < 3; k += 2) { /* 4 KiB and 2 MiB leaves */
		uint64_t L = leaf_sizes[k], g = f->g;
		if (L < g)
			continue;
		uint64_t in = L > g ? g : L;
		/* whole, front and end trims inside a leaf, both ends cut, a split inside a leaf */
		const struct range cuts[] = {{0, 4 * L}, {0, in}, {4 * L - in, 4 * L}, {L - in, 3 * L + in}, {L + g, 2 * L}};
		for (enum kind kd = 0; kd < NKINDS; kd++)
			for (unsigned int v = 0; v < 3; v++)
				for (unsigned int qt = 0; qt < 4; qt++)
					for (unsigned int c = 0; c < sizeof(cuts) / sizeof(cuts[0]); c++)
						for (enum mode m = SYNC; m <= ASYNC_UFENCE; m++) {
							if (cuts[c].addr >= cuts[c].range)
								continue;
							shape_case(f, L, kd, vmflags[v], qt & 1, qt & 2, cuts[c].addr, cuts[c].range, m);
						}
	}
}

/* Threads on one vm share its reserve: two unbind under failure (each its own mappings: trims
 * that must succeed, splits that may be -ENOMEM with nothing changed), a third maps and unmaps
 * with memory (refilling it). No trim fails; the tree and page tables agree at the end. */
struct refiller {
	struct fixture *f;
	uint32_t vm;
	uint64_t base;
	int id;
	int trim_err, split_ok, split_enomem, other_err;
};

static void *refill_worker(void *arg)
{
	struct refiller *w = arg;
	struct fixture *f = w->f;
	uint64_t g = f->g;
	for (unsigned int i = 0; i < 24; i++) {
		uint64_t s = w->base + i * 8 * g;
		if (w->id == 2) { /* memory available: map, split, unmap */
			int r = __bind1(f->c, w->vm, op_null(s, 4 * g));
			r = r ? r : __bind1(f->c, w->vm, op_unmap(s + g, g));
			r = r ? r : __bind1(f->c, w->vm, op_unmap(s, 4 * g));
			if (r)
				w->other_err = r;
			continue;
		}
		vmb_alloc_fail_from(1);
		int r = __bind1(f->c, w->vm, op_unmap(s, g)); /* front trim */
		if (r)
			w->trim_err = r;
		r = __bind1(f->c, w->vm, op_unmap(s + 2 * g, g)); /* split of [s+g, s+4g) */
		if (!r)
			w->split_ok++;
		else if (r == -ENOMEM)
			w->split_enomem++;
		else
			w->trim_err = r;
		r = __bind1(f->c, w->vm, op_unmap(s + 3 * g, g)); /* end trim (of what is left) */
		if (r)
			w->trim_err = r;
		vmb_alloc_fail_from(0);
	}
	return NULL;
}

static void test_reserve_threads(void **state)
{
	struct fixture *f = *state;
	uint64_t g = f->g;
	uint32_t vm = vm_new(f->c, 0);
	struct refiller w[3];
	for (int k = 0; k < 3; k++) {
		w[k] = (struct refiller){.f = f, .vm = vm, .base = BASE + (uint64_t)k * 256 * g, .id = k};
		if (k < 2)
			for (unsigned int i = 0; i < 24; i++)
				bind1(f->c, vm, op_null(w[k].base + i * 8 * g, 4 * g));
	}
	pthread_t t[3];
	for (int k = 0; k < 3; k++)
		assert_int_equal(pthread_create(&t[k], NULL, refill_worker, &w[k]), 0);
	for (int k = 0; k < 3; k++)
		assert_int_equal(pthread_join(t[k], NULL), 0);
	for (int k = 0; k < 2; k++) {
		assert_int_equal(w[k].trim_err, 0);
		assert_int_equal(w[k].split_ok + w[k].split_enomem, 24);
	}
	assert_int_equal(w[2].other_err, 0);
	/* one piece left of each mapping: [s+g, s+2g) if its split went through, else [s+g, s+3g) */
	struct vmb_mapping_info m[MAXM];
	assert_int_equal(list(f, vm, m), 48);
	for (unsigned int i = 0; i < 48; i++)
		assert_true(m[i].range == g || m[i].range == 2 * g);
	validate_client(f->c);
	vm_destroy1(f->c, vm);
}

/* What still needs memory fails whole (attack12): under failure, with the pool full, a call of
 * 9 removals (past the 8 inline ops), a call of 5 out-syncs, and one of a trim then a split past
 * the reserve's reach (two timeline out-points on one timeline) are -ENOMEM with every mapping
 * as before, no out-sync touched (the binary syncobj still without a fence, the timeline's
 * value unchanged, the user fence unwritten). */
static void test_fails_whole(void **state)
{
	struct fixture *f = *state;
	uint64_t g = f->g, word = 0;
	uint32_t vm = vm_new(f->c, 0);
	map_row(f, vm, BASE, 9, 0);
	fill_pool(f);
	uint32_t so = syncobj_new(f->c, 0), tl = syncobj_new(f->c, VMB_SYNCOBJ_CREATE_TIMELINE);
	struct range want[9];
	for (unsigned int i = 0; i < 9; i++)
		want[i] = (struct range){BASE + i * 4 * g, 3 * g};
	struct vmb_bind_op ops[9];
	for (unsigned int i = 0; i < 9; i++)
		ops[i] = op_unmap(BASE + i * 4 * g, 3 * g);
	struct vmb_sync s5[5] = {sync_out(so), sync_tl_out(tl, 1), sync_ufence(&word, 1), sync_out(f->syncobj),
				 sync_tl_out(f->timeline, f->point + 1)};
	struct vmb_sync s2tl[2] = {sync_tl_out(tl, 1), sync_tl_out(tl, 2)};
	struct vmb_sync s3[3] = {sync_out(so), sync_tl_out(tl, 1), sync_ufence(&word, 1)};
	struct {
		struct vmb_bind_op *ops;
		uint32_t nops;
		struct vmb_sync *s;
		uint32_t ns;
	} calls[] = {{ops, 9, s3, 3}, {ops, 1, s5, 5}, {ops, 2, s2tl, 2}};
	for (unsigned int c = 0; c < 3; c++) {
		vmb_alloc_fail_from(1);
		int r = __bind_async(f->c, vm, 0, calls[c].ops, calls[c].nops, calls[c].s, calls[c].ns);
		vmb_alloc_fail_from(0);
		if (r != -ENOMEM)
			fprintf(stderr, "call %u: %d\n", c, r);
		assert_int_equal(r, -ENOMEM);
		expect(f, vm, want, 9);
		assert_int_equal(word, 0);
		int32_t status = 9;
		struct vmb_syncobj_status st = {.handles = (uint64_t)(uintptr_t)&so, .status = (uint64_t)(uintptr_t)&status, .count = 1};
		assert_int_equal(vmb_syncobj_query_status(f->c, &st), 0);
		assert_int_equal(status, 0); /* nothing submitted */
		uint64_t v = 99;
		struct vmb_syncobj_array q = {.handles = (uint64_t)(uintptr_t)&tl, .points = (uint64_t)(uintptr_t)&v, .count = 1};
		assert_int_equal(vmb_syncobj_query(f->c, &q), 0);
		assert_int_equal(v, 0);
		validate_client(f->c);
	}
	unfill_pool(f);
	vm_destroy1(f->c, vm);
}

/*
 * Trims and removals under failure of mappings whose page counts straddle the VA leaves' key
 * limit (a key tells up to 2047 pages; longer mappings fall back), among 128 one-granule
 * neighbours (several full 63-key leaves): a mapping of P granules (P around 2047 and 4096) loses
 * one granule at its front or end, is cut to exactly 2047 or 2048 granules, or goes whole, each
 * synchronously and asynchronously (timeline, user fence), with every host allocation failing
 * and the pool full. A split in its middle takes a piece from the reserve. Expects success and
 * exactly the expected mappings. Integrated shape (4 KiB granules) only.
 */
static void test_unmap_extent_limits(void **state)
{
	struct fixture *f = *state;
	uint64_t g = f->g, word = 0;
	static const uint64_t sizes[] = {2046, 2047, 2048, 2049, 4095, 4096, 4097};
	static const enum mode modes[] = {SYNC, ASYNC_TIMELINE, ASYNC_UFENCE};
	if (g != 4 * KiB)
		skip(); /* the key counts 4 KiB pages: 2 MiB granules are far past it */
	for (unsigned int k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		uint64_t P = sizes[k];
		/* [lo, hi) in granules of the mapping, unmapped */
		const struct range cuts[] = {
			{0, 1}, {P - 1, P}, {0, P > 2047 ? P - 2047 : 0}, {P > 2047 ? P - 2047 : P, P},
			{0, P > 2048 ? P - 2048 : 1},
			{P > 2048 ? 2048 : P - 1, P}, {0, P}, {P / 2, P / 2 + 1},
		};
		for (unsigned int c = 0; c < sizeof(cuts) / sizeof(cuts[0]); c++) {
			if (cuts[c].addr >= cuts[c].range)
				continue; /* an empty cut (no 2047 granules to leave) */
			enum mode m = modes[(k + c) % 3];
			uint32_t vm = vm_new(f->c, 0);
			uint64_t big = BASE + 64 * 2 * g;
			for (unsigned int i = 0; i < 64; i++) {
				bind1(f->c, vm, op_null(BASE + i * 2 * g, g));
				bind1(f->c, vm, op_null(big + (P + 1 + 2 * i) * g, g));
			}
			bind1(f->c, vm, op_null(big, P * g));
			fill_pool(f);
			struct vmb_bind_op op = op_unmap(big + cuts[c].addr * g, (cuts[c].range - cuts[c].addr) * g);
			int r = unbind(f, vm, m, &op, 1, &word);
			if (r)
				fprintf(stderr, "%llu granules, [%llu, %llu) %s: %d\n", (unsigned long long)P,
					(unsigned long long)cuts[c].addr, (unsigned long long)cuts[c].range, mode_name[m], r);
			assert_int_equal(r, 0);
			struct range want[MAXM];
			unsigned int n = 0;
			for (unsigned int i = 0; i < 64; i++)
				want[n++] = (struct range){BASE + i * 2 * g, g};
			if (cuts[c].addr > 0)
				want[n++] = (struct range){big, cuts[c].addr * g};
			if (cuts[c].range < P)
				want[n++] = (struct range){big + cuts[c].range * g, (P - cuts[c].range) * g};
			for (unsigned int i = 0; i < 64; i++)
				want[n++] = (struct range){big + (P + 1 + 2 * i) * g, g};
			expect(f, vm, want, n);
			validate_client(f->c);
			unfill_pool(f);
			vm_destroy1(f->c, vm);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_unmap_every_size_and_position, setup, teardown),
		cmocka_unit_test_setup_teardown(test_split_reserve, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unmap_everything, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unbind_with_in_syncs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unbind_in_fence_taken_at_call, setup, teardown),
		cmocka_unit_test_setup_teardown(test_attack_shapes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reserve_threads, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fails_whole, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unmap_extent_limits, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
