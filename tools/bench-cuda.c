/* SPDX-License-Identifier: MIT */
/*
 * `vmbind bench cuda` (issue 15 item 7): the CUDA device against the raw driver, side by side in
 * one run, on GPU 0. Exits 77 without libcuda or a GPU.
 *  (a) bind cost: a 1 GiB MAP (map + access) through vmbind for chunk sizes 1 GiB .. 2 MiB,
 *      against the raw calls: one 1 GiB handle (map + set access), and 512 handles of 2 MiB
 *      mapped one by one (map + set access each); goals 1 chunk <= 1.5x raw, 2 MiB <= 1.2x raw.
 *  (b) the return time of an asynchronous bind call (and of a synchronous one).
 *  (c) bind done (its out user fence written) -> a stream waiting on its out-point passes its
 *      wait (vmb_cuda_stream_wait), against the host writing the value the stream waits on
 *      directly (the floor); goal <= 10 us median. Both legs include the stream -> host write
 *      that timestamps the stream (a host thread polling pinned memory).
 *  (d) a stream's kernel done -> unbind committed, via vmb_cuda_stream_signal (an async unbind
 *      whose in-sync is the stream's point), against cuStreamSynchronize + cuMemUnmap; and its
 *      legs from the library's trace: the fence page's watcher, the scheduler's hand-off, the
 *      commit (cuMemUnmap) and the user fence.
 *  (e) grow and compute: 16 steps, each maps the next 256 MiB (2 MiB chunks) while a kernel works
 *      on the part mapped; asynchronous binds ordered by fences, against mapping inline (raw map,
 *      launch, synchronize: the expandable-segments way), and compute alone (all mapped first).
 *      The three sides alternate over 5 rounds (median, min..max each); compute per step sized
 *      to a step's map measured in the same run (bench_grow); goals on the ratios of the
 *      medians: async <= 1.1x compute alone, sync / async >= 1.8.
 *  (f) the device lock: cheap calls (a sync bind on another vm, a syncobj create + destroy, a
 *      small vmb_bo_create) while a 1 GiB bind of 512 chunks commits in a loop, against the
 *      same calls alone: median and max (bench_stall).
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <vmbind.h>

#include "../tests/cuda/cudrv.h"
#include "bench-util.h"
#include "cli.h"

#define MB (1ull << 20)
#define GB (1ull << 30)
#define VA0 (1ull << 32)

static struct cudrv D, *d = &D;
static struct vmb_client *c;
static CUstream S;
static volatile uint64_t *pin; /* pinned host words: [0] gate, [1] marker, [2] user fence */
static CUdeviceptr pin_d;

#define CK(call) CUDRV_CHECK(d, call)
#define VK(call)                                                                                   \
	do {                                                                                       \
		int e_ = (call);                                                                   \
		if (e_) {                                                                          \
			fprintf(stderr, "%s:%d: %s = %d\n", __FILE__, __LINE__, #call, e_);        \
			exit(1);                                                                   \
		}                                                                                  \
	} while (0)

static double med(double *v, int n) { return median_double(v, (size_t)n); }
static double ms(int64_t a, int64_t b) { return (double)(b - a) / 1e6; }

static uint32_t vm_new(uint64_t *base)
{
	struct vmb_vm_create a = {0};
	VK(vmb_vm_create(c, &a));
	*base = a.gpu_base;
	return a.vm_id;
}

static uint32_t bo_new(uint64_t size, uint64_t chunk)
{
	struct vmb_bo_create a = {.size = size, .placements = VMB_PLACE_VRAM, .chunk_size = chunk};
	VK(vmb_bo_create(c, &a));
	return a.handle;
}

static void bo_free(uint32_t h)
{
	struct vmb_bo_destroy a = {.handle = h};
	VK(vmb_bo_destroy(c, &a));
}

static uint32_t syncobj_new(void)
{
	struct vmb_syncobj_create a = {0};
	VK(vmb_syncobj_create(c, &a));
	return a.handle;
}

static int bind(uint32_t vm, uint32_t op, uint32_t bo, uint64_t off, uint64_t addr, uint64_t range,
		struct vmb_sync *syncs, uint32_t n)
{
	struct vmb_bind_op o = {.op = op, .bo_handle = op == VMB_BIND_OP_MAP ? bo : 0,
				.bo_offset = op == VMB_BIND_OP_MAP ? off : 0, .addr = addr, .range = range};
	struct vmb_vm_bind b = {.vm_id = vm, .num_binds = 1, .binds = (uintptr_t)&o, .num_syncs = n,
				.syncs = (uintptr_t)syncs, .flags = n ? VMB_VM_BIND_FLAG_ASYNC : 0};
	return vmb_vm_bind(c, &b);
}

static void wait_syncobj(uint32_t h)
{
	struct vmb_syncobj_wait w = {.handles = (uintptr_t)&h, .count = 1, .timeout_ns = 10000000000ll,
				     .flags = VMB_SYNCOBJ_WAIT_RELATIVE};
	VK(vmb_syncobj_wait(c, &w));
}

static void stream_sync_op(bool signal, uint32_t h, CUstream s)
{
	struct vmb_sync y = {.type = VMB_SYNC_SYNCOBJ, .flags = signal ? VMB_SYNC_FLAG_SIGNAL : 0, .handle = h};
	struct vmb_cuda_stream_sync a = {.stream = (uintptr_t)s, .syncs = (uintptr_t)&y, .num_syncs = 1};
	VK(signal ? vmb_cuda_stream_signal(c, &a) : vmb_cuda_stream_wait(c, &a));
}

static uint64_t load(int i) { return __atomic_load_n((uint64_t *)&pin[i], __ATOMIC_ACQUIRE); }
static void store(int i, uint64_t v) { __atomic_store_n((uint64_t *)&pin[i], v, __ATOMIC_RELEASE); }

/* Spins until pin[i] >= v (10 s at most): the time it was seen. */
static int64_t seen_at(int i, uint64_t v)
{
	int64_t start = cudrv_now_ns();
	while (load(i) < v)
		if (cudrv_now_ns() - start > 10000000000ll) {
			fprintf(stderr, "bench cuda: hang waiting for word %d\n", i);
			exit(1);
		}
	return cudrv_now_ns();
}

static CUmemAccessDesc rw(void)
{
	CUmemAccessDesc a = {0};
	a.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
	a.flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
	return a;
}

static CUmemAllocationProp vram(void)
{
	CUmemAllocationProp p = {0};
	p.type = CU_MEM_ALLOCATION_TYPE_PINNED;
	p.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
	return p;
}

/* raw: @n handles of @each bytes, mapped + access one by one; ms of map+access, of unmap */
static void raw_map(unsigned n, uint64_t each, int reps, double *map_ms, double *unmap_ms)
{
	CUmemAllocationProp p = vram();
	CUmemAccessDesc a = rw();
	CUdeviceptr va;
	CUmemGenericAllocationHandle *h = calloc(n, sizeof(*h));
	double mm[16], um[16];
	CK(d->cuMemAddressReserve(&va, n * each, 0, 0, 0));
	for (unsigned i = 0; i < n; i++)
		CK(d->cuMemCreate(&h[i], each, &p, 0));
	for (int r = 0; r < reps; r++) {
		int64_t t0 = cudrv_now_ns();
		for (unsigned i = 0; i < n; i++) {
			CK(d->cuMemMap(va + i * each, each, 0, h[i], 0));
			CK(d->cuMemSetAccess(va + i * each, each, &a, 1));
		}
		int64_t t1 = cudrv_now_ns();
		for (unsigned i = 0; i < n; i++)
			CK(d->cuMemUnmap(va + i * each, each));
		int64_t t2 = cudrv_now_ns();
		mm[r] = ms(t0, t1);
		um[r] = ms(t1, t2);
	}
	for (unsigned i = 0; i < n; i++)
		d->cuMemRelease(h[i]);
	d->cuMemAddressFree(va, n * each);
	free(h);
	*map_ms = med(mm, reps);
	*unmap_ms = med(um, reps);
}

struct results {
	double raw1_map, raw1_unmap, raw512_map, raw512_unmap;
	double vmb_map[5], vmb_unmap[5];
	double async_call_us, sync_call_us;
	double handoff_us, handoff_raw_us;
	double unbind_us, unbind_raw_us, unbind_call_us;
	double unbind_watch_us, unbind_handoff_us, unbind_commit_us; /* (d)'s legs, medians */
	double grow_async, grow_sync, grow_alone, step_map_ms, step_map_first, step_map_last, grow_binds_alone;
	/* (e): medians above; the spread over the rounds; the step's raw map, the compute a step;
	 * the map the sync side paid / the compute (median, min, max over the rounds) */
	double grow_async_min, grow_async_max, grow_sync_min, grow_sync_max, grow_alone_min, grow_alone_max;
	double step_map_raw_ms, step_compute_ms;
	double grow_map_over_compute, grow_map_over_compute_min, grow_map_over_compute_max;
	int grow_rounds;
	/* (f): each cheap call's median and max, us, [kind][0 idle, 1 during the big bind] */
	double stall_med[5][2], stall_max[5][2], stall_big_map_ms, stall_big_unmap_ms, stall_big_create_ms;
	int stall_cycles, stall_n[5][2];
};
static const uint64_t chunks[5] = {GB, 256 * MB, 64 * MB, 8 * MB, 2 * MB};

static void bench_bind_cost(struct results *r, int reps)
{
	raw_map(1, GB, reps, &r->raw1_map, &r->raw1_unmap);
	raw_map(512, 2 * MB, reps, &r->raw512_map, &r->raw512_unmap);
	uint64_t base = 0;
	uint32_t vm = vm_new(&base);
	for (int k = 0; k < 5; k++) {
		uint32_t bo = bo_new(GB, chunks[k]);
		double mm[16], um[16];
		for (int i = 0; i < reps; i++) {
			int64_t t0 = cudrv_now_ns();
			VK(bind(vm, VMB_BIND_OP_MAP, bo, 0, VA0, GB, NULL, 0));
			int64_t t1 = cudrv_now_ns();
			VK(bind(vm, VMB_BIND_OP_UNMAP, 0, 0, VA0, GB, NULL, 0));
			mm[i] = ms(t0, t1);
			um[i] = ms(t1, cudrv_now_ns());
		}
		r->vmb_map[k] = med(mm, reps);
		r->vmb_unmap[k] = med(um, reps);
		bo_free(bo);
		fprintf(stderr, "bench cuda: 1 GiB in %llu MiB chunks: map %.3f ms\n",
			(unsigned long long)(chunks[k] / MB), r->vmb_map[k]);
	}
	struct vmb_vm_destroy vd = {.vm_id = vm};
	VK(vmb_vm_destroy(c, &vd));
}

static void bench_async_call(struct results *r, int n)
{
	uint64_t base = 0;
	uint32_t vm = vm_new(&base), bo = bo_new(2 * MB, 0), done = syncobj_new();
	double *as = calloc((size_t)n, sizeof(double)), *sy = calloc((size_t)n, sizeof(double));
	struct vmb_sync out = {.type = VMB_SYNC_SYNCOBJ, .flags = VMB_SYNC_FLAG_SIGNAL, .handle = done};
	for (int i = 0; i < n; i++) {
		int64_t t0 = cudrv_now_ns();
		VK(bind(vm, VMB_BIND_OP_MAP, bo, 0, VA0, 2 * MB, &out, 1));
		as[i] = (double)(cudrv_now_ns() - t0) / 1e3;
		VK(bind(vm, VMB_BIND_OP_UNMAP, 0, 0, VA0, 2 * MB, &out, 1));
	}
	wait_syncobj(done);
	for (int i = 0; i < n; i++) {
		int64_t t0 = cudrv_now_ns();
		VK(bind(vm, VMB_BIND_OP_MAP, bo, 0, VA0, 2 * MB, NULL, 0));
		sy[i] = (double)(cudrv_now_ns() - t0) / 1e3;
		VK(bind(vm, VMB_BIND_OP_UNMAP, 0, 0, VA0, 2 * MB, NULL, 0));
	}
	r->async_call_us = med(as, n);
	r->sync_call_us = med(sy, n);
	free(as);
	free(sy);
	struct vmb_vm_destroy vd = {.vm_id = vm};
	VK(vmb_vm_destroy(c, &vd));
	bo_free(bo);
}

/* (c): bind done -> waiting stream passes; the floor: the host's own write releasing the stream */
static void bench_handoff(struct results *r, int n)
{
	uint64_t base = 0;
	uint32_t vm = vm_new(&base), bo = bo_new(2 * MB, 0), gate = syncobj_new(), bound = syncobj_new();
	double *h = calloc((size_t)n, sizeof(double)), *raw = calloc((size_t)n, sizeof(double));
	CUstream g;
	CK(d->cuStreamCreate(&g, CU_STREAM_NON_BLOCKING));
	uint64_t gen = load(0);
	for (int i = 0; i < n; i++) {
		/* a gate on stream g holds the bind back until everything is queued */
		gen++;
		CK(d->cuStreamWaitValue64(g, pin_d, gen, CU_STREAM_WAIT_VALUE_GEQ));
		stream_sync_op(true, gate, g);
		struct vmb_sync ys[3] = {{.type = VMB_SYNC_SYNCOBJ, .handle = gate},
					 {.type = VMB_SYNC_SYNCOBJ, .flags = VMB_SYNC_FLAG_SIGNAL, .handle = bound},
					 {.type = VMB_SYNC_USER_FENCE, .flags = VMB_SYNC_FLAG_SIGNAL,
					  .addr = (uintptr_t)&pin[2], .value = gen}};
		VK(bind(vm, i & 1 ? VMB_BIND_OP_UNMAP : VMB_BIND_OP_MAP, bo, 0, VA0, 2 * MB, ys, 3));
		stream_sync_op(false, bound, S);
		CK(d->cuStreamWriteValue64(S, pin_d + 8, gen, 0));
		usleep(300);
		store(0, gen);
		int64_t t_uf = seen_at(2, gen), t_m = seen_at(1, gen);
		h[i] = (double)(t_m - t_uf) / 1e3;
		/* the floor: the stream waits on a word the host writes */
		gen++;
		CK(d->cuStreamWaitValue64(S, pin_d, gen, CU_STREAM_WAIT_VALUE_GEQ));
		CK(d->cuStreamWriteValue64(S, pin_d + 8, gen, 0));
		usleep(300);
		int64_t t0 = cudrv_now_ns();
		store(0, gen);
		raw[i] = (double)(seen_at(1, gen) - t0) / 1e3;
		CK(d->cuStreamSynchronize(g));
	}
	CK(d->cuStreamSynchronize(S));
	r->handoff_us = med(h, n);
	r->handoff_raw_us = med(raw, n);
	free(h);
	free(raw);
	d->cuStreamDestroy(g);
	struct vmb_vm_destroy vd = {.vm_id = vm};
	VK(vmb_vm_destroy(c, &vd));
	bo_free(bo);
}

struct spin_arg { int i; uint64_t v; int64_t t; };
static void *spin_main(void *p)
{
	struct spin_arg *a = p;
	a->t = seen_at(a->i, a->v);
	return NULL;
}

/* The last bind job traced (the ring holds a few): its event, or false. */
static bool last_traced(struct vmb_trace_event *out)
{
	struct vmb_trace_event ev[16];
	struct vmb_trace_read rd = {.events = (uintptr_t)ev, .num_events = 16};
	bool got = false;
	do {
		rd.num_events = 16;
		VK(vmb_trace_read(c, &rd));
		if (rd.num_events) {
			*out = ev[rd.num_events - 1];
			got = true;
		}
	} while (rd.num_events == 16);
	return got;
}

/*
 * (d): the stream's kernel done -> its memory unmapped. The legs, from the library's trace of the
 * unbind job (CLOCK_MONOTONIC, as the host's timestamps): the stream passes its marker (a host
 * thread polling pinned memory sees it) -> the job is ready (its in-fence, the stream's point,
 * signalled: the fence page's watcher saw the slot) -> its commit begins (a scheduler worker
 * took it) -> its out user fence is seen (cuMemUnmap done, the fence written).
 */
static void bench_unbind(struct results *r, int n)
{
	uint64_t base = 0;
	uint32_t vm = vm_new(&base), bo = bo_new(2 * MB, 0), kdone = syncobj_new(), unb = syncobj_new();
	double *v = calloc((size_t)n, sizeof(double)), *raw = calloc((size_t)n, sizeof(double)),
	       *call = calloc((size_t)n, sizeof(double)), *lw = calloc((size_t)n, sizeof(double)),
	       *lh = calloc((size_t)n, sizeof(double)), *lc = calloc((size_t)n, sizeof(double));
	int nl = 0;
	uint64_t gen = load(1);
	struct vmb_trace_start ts = {.capacity = 64};
	VK(vmb_trace_start(c, &ts));
	for (int i = 0; i < n; i++) {
		VK(bind(vm, VMB_BIND_OP_MAP, bo, 0, VA0, 2 * MB, NULL, 0));
		gen++;
		CK(cudrv_fill(d, S, base + VA0, 1024, 1, 2000000)); /* 2 ms */
		CK(d->cuStreamWriteValue64(S, pin_d + 8, gen, 0));
		stream_sync_op(true, kdone, S);
		struct vmb_sync ys[3] = {{.type = VMB_SYNC_SYNCOBJ, .handle = kdone},
					 {.type = VMB_SYNC_SYNCOBJ, .flags = VMB_SYNC_FLAG_SIGNAL, .handle = unb},
					 {.type = VMB_SYNC_USER_FENCE, .flags = VMB_SYNC_FLAG_SIGNAL,
					  .addr = (uintptr_t)&pin[2], .value = gen + (1ull << 40)}};
		int64_t t0 = cudrv_now_ns();
		VK(bind(vm, VMB_BIND_OP_UNMAP, 0, 0, VA0, 2 * MB, ys, 3));
		call[i] = (double)(cudrv_now_ns() - t0) / 1e3;
		int64_t t_m = seen_at(1, gen), t_u = seen_at(2, gen + (1ull << 40));
		v[i] = (double)(t_u - t_m) / 1e3;
		wait_syncobj(unb);
		struct vmb_trace_event e;
		/* the unbind is the last job traced (the MAP before it was done in its call) */
		if (last_traced(&e) && e.submit_ns >= (uint64_t)t0 && e.ready_ns >= (uint64_t)t0) {
			lw[nl] = ((double)e.ready_ns - (double)t_m) / 1e3;
			lh[nl] = ((double)e.start_ns - (double)e.ready_ns) / 1e3;
			lc[nl] = ((double)t_u - (double)e.start_ns) / 1e3;
			nl++;
		}
	}
	ts.capacity = 0;
	VK(vmb_trace_start(c, &ts));
	r->unbind_watch_us = nl ? med(lw, nl) : -1;
	r->unbind_handoff_us = nl ? med(lh, nl) : -1;
	r->unbind_commit_us = nl ? med(lc, nl) : -1;
	free(lw);
	free(lh);
	free(lc);
	/* raw: synchronize the stream, then unmap */
	CUmemAllocationProp p = vram();
	CUmemAccessDesc a = rw();
	CUdeviceptr va;
	CUmemGenericAllocationHandle hd;
	CK(d->cuMemAddressReserve(&va, 2 * MB, 0, 0, 0));
	CK(d->cuMemCreate(&hd, 2 * MB, &p, 0));
	for (int i = 0; i < n; i++) {
		CK(d->cuMemMap(va, 2 * MB, 0, hd, 0));
		CK(d->cuMemSetAccess(va, 2 * MB, &a, 1));
		gen++;
		CK(cudrv_fill(d, S, va, 1024, 1, 2000000));
		CK(d->cuStreamWriteValue64(S, pin_d + 8, gen, 0));
		struct spin_arg sa = {1, gen, 0};
		pthread_t th;
		pthread_create(&th, NULL, spin_main, &sa);
		CK(d->cuStreamSynchronize(S));
		CK(d->cuMemUnmap(va, 2 * MB));
		int64_t t_u = cudrv_now_ns();
		pthread_join(th, NULL);
		raw[i] = (double)(t_u - sa.t) / 1e3;
	}
	d->cuMemRelease(hd);
	d->cuMemAddressFree(va, 2 * MB);
	r->unbind_us = med(v, n);
	r->unbind_raw_us = med(raw, n);
	r->unbind_call_us = med(call, n);
	free(v);
	free(raw);
	free(call);
	struct vmb_vm_destroy vd = {.vm_id = vm};
	VK(vmb_vm_destroy(c, &vd));
	bo_free(bo);
}

/*
 * (e) grow and compute. The three sides run alternately, `rounds` times each (the order rotated
 * every round, so that drift of the machine hits all alike); each side's median and min..max
 * are printed, and the goals are judged on the ratios of the medians.
 * The compute per step is sized in this run, before the rounds: the mean cost of a step's map
 * (256 MiB in 2 MiB chunks, the vm growing), measured CAL_PASSES times both through vmbind
 * (synchronous binds) and raw (map + set access per handle, as the sync side does), the median
 * of the passes of each; the compute is the mean of the two, so neither side's mapping is
 * favoured. Each round's sync side also tells the mapping it really paid ((sync - compute
 * alone) / steps): map / compute near 1 is the premise of the 1.8x goal, whose ceiling with N
 * steps is 2N / (N + 1) (1.88x at 16): async pays N computes and one map, sync N of each.
 */
#define CAL_PASSES 3

struct grow {
	int steps;
	uint64_t step, base;
	uint32_t vm, bo;
	unsigned per, n;                /* raw handles a step, in all */
	CUmemGenericAllocationHandle *h;
	CUdeviceptr va;                 /* the raw side's range */
	uint64_t spin;                  /* compute a step, ns */
};

static const uint32_t grow_words = 1 << 16; /* each kernel writes 256 KiB of its step's part */

/* vmbind, synchronous: each step mapped in a row; the mean ms a step (first and last too) */
static double grow_vmb_maps(struct grow *g, double *first, double *last)
{
	double sum = 0;
	for (int i = 0; i < g->steps; i++) {
		int64_t t0 = cudrv_now_ns();
		VK(bind(g->vm, VMB_BIND_OP_MAP, g->bo, i * g->step, VA0 + i * g->step, g->step, NULL, 0));
		double t = ms(t0, cudrv_now_ns());
		sum += t;
		if (!i && first)
			*first = t;
		if (last)
			*last = t;
	}
	VK(bind(g->vm, VMB_BIND_OP_UNMAP, 0, 0, VA0, g->steps * g->step, NULL, 0));
	return sum / g->steps;
}

static void grow_raw_map_step(struct grow *g, int i)
{
	CUmemAccessDesc a = rw();
	for (unsigned k = 0; k < g->per; k++) {
		CUdeviceptr at = g->va + i * g->step + k * 2 * MB;
		CK(d->cuMemMap(at, 2 * MB, 0, g->h[i * g->per + k], 0));
		CK(d->cuMemSetAccess(at, 2 * MB, &a, 1));
	}
}

static void grow_raw_unmap(struct grow *g)
{
	for (unsigned i = 0; i < g->n; i++)
		CK(d->cuMemUnmap(g->va + i * 2 * MB, 2 * MB));
}

/* raw: each step mapped in a row; the mean ms a step */
static double grow_raw_maps(struct grow *g)
{
	int64_t t0 = cudrv_now_ns();
	for (int i = 0; i < g->steps; i++)
		grow_raw_map_step(g, i);
	double t = ms(t0, cudrv_now_ns()) / g->steps;
	grow_raw_unmap(g);
	return t;
}

/* compute alone: everything mapped first */
static double grow_alone(struct grow *g)
{
	VK(bind(g->vm, VMB_BIND_OP_MAP, g->bo, 0, VA0, g->steps * g->step, NULL, 0));
	CK(d->cuStreamSynchronize(S));
	int64_t t0 = cudrv_now_ns();
	for (int i = 0; i < g->steps; i++)
		CK(cudrv_fill(d, S, g->base + VA0 + i * g->step, grow_words, (uint32_t)i, g->spin));
	CK(d->cuStreamSynchronize(S));
	double t = ms(t0, cudrv_now_ns());
	VK(bind(g->vm, VMB_BIND_OP_UNMAP, 0, 0, VA0, g->steps * g->step, NULL, 0));
	return t;
}

static void syncobj_free(uint32_t h)
{
	struct vmb_syncobj_destroy a = {.handle = h};
	VK(vmb_syncobj_destroy(c, &a));
}

/* async: bind step i+1 while the kernel of step i runs; kernel i waits for bind i */
static double grow_async(struct grow *g)
{
	uint32_t *pts = calloc((size_t)g->steps, sizeof(*pts));
	for (int i = 0; i < g->steps; i++)
		pts[i] = syncobj_new();
	int64_t t0 = cudrv_now_ns();
	for (int i = 0; i < g->steps; i++) {
		struct vmb_sync out = {.type = VMB_SYNC_SYNCOBJ, .flags = VMB_SYNC_FLAG_SIGNAL, .handle = pts[i]};
		VK(bind(g->vm, VMB_BIND_OP_MAP, g->bo, i * g->step, VA0 + i * g->step, g->step, &out, 1));
		stream_sync_op(false, pts[i], S);
		CK(cudrv_fill(d, S, g->base + VA0 + i * g->step, grow_words, (uint32_t)i, g->spin));
	}
	CK(d->cuStreamSynchronize(S));
	double t = ms(t0, cudrv_now_ns());
	VK(bind(g->vm, VMB_BIND_OP_UNMAP, 0, 0, VA0, g->steps * g->step, NULL, 0));
	for (int i = 0; i < g->steps; i++)
		syncobj_free(pts[i]);
	free(pts);
	return t;
}

/* sync, raw: map the step inline (2 MiB handles, map + access each), launch, synchronize */
static double grow_sync(struct grow *g)
{
	int64_t t0 = cudrv_now_ns();
	for (int i = 0; i < g->steps; i++) {
		grow_raw_map_step(g, i);
		CK(cudrv_fill(d, S, g->va + i * g->step, grow_words, (uint32_t)i, g->spin));
		CK(d->cuStreamSynchronize(S));
	}
	double t = ms(t0, cudrv_now_ns());
	grow_raw_unmap(g);
	return t;
}

/* median, min and max of @n values (sorts a copy) */
struct spread {
	double med, min, max;
};
static struct spread spread_of(const double *v, int n)
{
	double *t = calloc((size_t)n, sizeof(double));
	memcpy(t, v, (size_t)n * sizeof(double));
	struct spread s = {.med = med(t, n), .min = t[0], .max = t[n - 1]}; /* (sorted) */
	free(t);
	return s;
}

enum { SIDE_ASYNC, SIDE_SYNC, SIDE_ALONE, SIDES };

static void bench_grow(struct results *r, int steps, int rounds)
{
	struct grow G = {.steps = steps, .step = 256 * MB}, *g = &G;
	g->vm = vm_new(&g->base);
	g->bo = bo_new(steps * g->step, 2 * MB);
	g->per = (unsigned)(g->step / (2 * MB));
	g->n = g->per * (unsigned)steps;
	g->h = calloc(g->n, sizeof(*g->h));
	CUmemAllocationProp p = vram();
	CK(d->cuMemAddressReserve(&g->va, steps * g->step, 0, 0, 0));
	for (unsigned i = 0; i < g->n; i++)
		CK(d->cuMemCreate(&g->h[i], 2 * MB, &p, 0));

	/* the map of a step, both ways, CAL_PASSES times (the first pass of each is a warm-up too) */
	double vm_pass[CAL_PASSES], raw_pass[CAL_PASSES];
	for (int k = 0; k < CAL_PASSES; k++) {
		vm_pass[k] = grow_vmb_maps(g, k ? NULL : &r->step_map_first, k ? NULL : &r->step_map_last);
		raw_pass[k] = grow_raw_maps(g);
	}
	r->step_map_ms = med(vm_pass, CAL_PASSES);
	r->step_map_raw_ms = med(raw_pass, CAL_PASSES);
	r->step_compute_ms = (r->step_map_ms + r->step_map_raw_ms) / 2;
	g->spin = (uint64_t)(r->step_compute_ms * 1e6);

	/* the async binds alone (no kernels): the floor of the async loop */
	uint32_t *pts = calloc((size_t)steps, sizeof(*pts));
	for (int i = 0; i < steps; i++)
		pts[i] = syncobj_new();
	int64_t t0 = cudrv_now_ns();
	for (int i = 0; i < steps; i++) {
		struct vmb_sync out = {.type = VMB_SYNC_SYNCOBJ, .flags = VMB_SYNC_FLAG_SIGNAL, .handle = pts[i]};
		VK(bind(g->vm, VMB_BIND_OP_MAP, g->bo, i * g->step, VA0 + i * g->step, g->step, &out, 1));
	}
	wait_syncobj(pts[steps - 1]);
	r->grow_binds_alone = ms(t0, cudrv_now_ns());
	VK(bind(g->vm, VMB_BIND_OP_UNMAP, 0, 0, VA0, steps * g->step, NULL, 0));
	for (int i = 0; i < steps; i++)
		syncobj_free(pts[i]);
	free(pts);

	/* the rounds: A S C, S C A, C A S, ... */
	double t[SIDES][16], seen[16];
	for (int k = 0; k < rounds; k++) {
		for (int j = 0; j < SIDES; j++) {
			int side = (j + k) % SIDES;
			t[side][k] = side == SIDE_ASYNC ? grow_async(g) : side == SIDE_SYNC ? grow_sync(g) : grow_alone(g);
		}
		/* the mapping the sync side paid, against the compute */
		seen[k] = (t[SIDE_SYNC][k] - t[SIDE_ALONE][k]) / steps / r->step_compute_ms;
		fprintf(stderr, "bench cuda: grow round %d: async %.2f sync %.2f alone %.2f ms\n", k + 1,
			t[SIDE_ASYNC][k], t[SIDE_SYNC][k], t[SIDE_ALONE][k]);
	}
	struct spread a = spread_of(t[SIDE_ASYNC], rounds), sy = spread_of(t[SIDE_SYNC], rounds),
		      al = spread_of(t[SIDE_ALONE], rounds), mc = spread_of(seen, rounds);
	r->grow_async = a.med;
	r->grow_async_min = a.min;
	r->grow_async_max = a.max;
	r->grow_sync = sy.med;
	r->grow_sync_min = sy.min;
	r->grow_sync_max = sy.max;
	r->grow_alone = al.med;
	r->grow_alone_min = al.min;
	r->grow_alone_max = al.max;
	r->grow_map_over_compute = mc.med;
	r->grow_map_over_compute_min = mc.min;
	r->grow_map_over_compute_max = mc.max;
	r->grow_rounds = rounds;

	struct vmb_vm_destroy vd = {.vm_id = g->vm};
	VK(vmb_vm_destroy(c, &vd));
	bo_free(g->bo);
	for (unsigned i = 0; i < g->n; i++)
		d->cuMemRelease(g->h[i]);
	d->cuMemAddressFree(g->va, steps * g->step);
	free(g->h);
}

/*
 * (f) the device lock behind a long commit: a 1 GiB MAP of 512 chunks of 2 MiB takes ~16 ms in
 * the driver, under the device lock held shared and its vm's lock (dev/core.h). A thread maps
 * and unmaps it in a loop on one vm while this one times cheap calls, spaced by pseudo-random
 * gaps of 0..2 ms so that they land anywhere in the cycle, against the same calls with the loop
 * stopped: a synchronous 2 MiB bind on another vm (the device lock shared), a syncobj create +
 * destroy (no device lock), a 2 MiB vmb_bo_create (the device's work under the device lock
 * shared, then the lock exclusive briefly to install the handle), and the bind again while a
 * third thread creates BOs (the lock is writers-first: a waiting install holds up the readers
 * after it, the other vm's bind among them). The last row's "during" is the bind while the
 * background thread creates and destroys a 1 GiB BO of 512 chunks in a loop instead of binding
 * one (the device creates and zeroes every chunk, then releases them: before session 11 under
 * the device lock exclusive, now shared and none: what is left is the driver's own).
 */
enum { STALL_BIND, STALL_SYNCOBJ, STALL_BO, STALL_BIND_W, STALL_BIND_BIGBO, STALLS };
static const char *const stall_name[STALLS] = {"bind_other_vm", "syncobj_create_destroy", "bo_create",
					       "bind_other_vm_bo_creator", "bind_big_bo_created"};
static const char *const stall_label[STALLS] = {
	"sync bind 2 MiB, another vm", "syncobj create + destroy", "bo_create 2 MiB",
	"sync bind 2 MiB, another vm, BOs created beside", "sync bind 2 MiB, a 1 GiB BO created instead *"};

struct stall_bg {
	pthread_t th;
	atomic_bool stop;
	uint32_t vm, bo;
	int cycles, creates;
	double map_ms, unmap_ms, create_ms; /* sums */
};

static void *binder_main(void *p)
{
	struct stall_bg *b = p;
	while (!atomic_load(&b->stop)) {
		int64_t t0 = cudrv_now_ns();
		VK(bind(b->vm, VMB_BIND_OP_MAP, b->bo, 0, VA0, GB, NULL, 0));
		int64_t t1 = cudrv_now_ns();
		VK(bind(b->vm, VMB_BIND_OP_UNMAP, 0, 0, VA0, GB, NULL, 0));
		b->map_ms += ms(t0, t1);
		b->unmap_ms += ms(t1, cudrv_now_ns());
		b->cycles++;
	}
	return NULL;
}

static void *big_creator_main(void *p)
{
	struct stall_bg *b = p;
	while (!atomic_load(&b->stop)) {
		int64_t t0 = cudrv_now_ns();
		uint32_t h = bo_new(GB, 2 * MB);
		b->create_ms += ms(t0, cudrv_now_ns());
		b->creates++;
		bo_free(h);
	}
	return NULL;
}

static void *creator_main(void *p)
{
	struct stall_bg *b = p;
	while (!atomic_load(&b->stop)) {
		bo_free(bo_new(2 * MB, 0));
		usleep(500);
	}
	return NULL;
}

/* One call of @kind; its time in us. */
static double stall_call(int kind, uint32_t vm, uint32_t bo)
{
	int64_t t0 = cudrv_now_ns(), t1;
	if (kind == STALL_BIND || kind == STALL_BIND_W || kind == STALL_BIND_BIGBO) {
		VK(bind(vm, VMB_BIND_OP_MAP, bo, 0, VA0, 2 * MB, NULL, 0));
		t1 = cudrv_now_ns();
		VK(bind(vm, VMB_BIND_OP_UNMAP, 0, 0, VA0, 2 * MB, NULL, 0));
	} else if (kind == STALL_SYNCOBJ) {
		syncobj_free(syncobj_new());
		t1 = cudrv_now_ns();
	} else {
		uint32_t h = bo_new(2 * MB, 0);
		t1 = cudrv_now_ns();
		bo_free(h);
	}
	return (double)(t1 - t0) / 1e3;
}

#define STALL_ROW_NS 3000000000ll
static void bench_stall(struct results *r, int n)
{
	uint64_t base = 0;
	struct stall_bg big = {0}, creator = {0};
	big.vm = vm_new(&base);
	big.bo = bo_new(GB, 2 * MB);
	uint32_t vm = vm_new(&base), bo = bo_new(2 * MB, 0);
	double *v = calloc((size_t)n, sizeof(double));
	uint64_t rnd = 0x9e3779b97f4a7c15ull;

	for (int kind = 0; kind < STALLS; kind++) {
		for (int busy = 0; busy < 2; busy++) {
			atomic_store(&big.stop, false);
			atomic_store(&creator.stop, false);
			if (busy)
				pthread_create(&big.th, NULL, kind == STALL_BIND_BIGBO ? big_creator_main : binder_main, &big);
			if (kind == STALL_BIND_W)
				pthread_create(&creator.th, NULL, creator_main, &creator);
			usleep(busy ? (kind == STALL_BIND_BIGBO ? 100000 : 20000) : 1000); /* the loop under way */
			/* n samples, or as many as fit in STALL_ROW_NS (a row behind 1 GiB creations of
			 * 512 chunks each waits out whole creations: the table gives the count) */
			int m = 0;
			for (int64_t t0 = cudrv_now_ns(); m < n && cudrv_now_ns() - t0 < STALL_ROW_NS; m++) {
				rnd = rnd * 6364136223846793005ull + 1442695040888963407ull;
				usleep((useconds_t)((rnd >> 33) % 2000));
				v[m] = stall_call(kind, vm, bo);
			}
			r->stall_n[kind][busy] = m;
			atomic_store(&big.stop, true);
			atomic_store(&creator.stop, true);
			if (busy)
				pthread_join(big.th, NULL);
			if (kind == STALL_BIND_W)
				pthread_join(creator.th, NULL);
			struct spread s = spread_of(v, m);
			r->stall_med[kind][busy] = s.med;
			r->stall_max[kind][busy] = s.max;
		}
		fprintf(stderr, "bench cuda: stall %s: idle %.1f/%.1f us, during %.1f/%.1f us (median/max of %d/%d)\n",
			stall_name[kind], r->stall_med[kind][0], r->stall_max[kind][0], r->stall_med[kind][1],
			r->stall_max[kind][1], r->stall_n[kind][0], r->stall_n[kind][1]);
	}
	r->stall_cycles = big.cycles;
	r->stall_big_map_ms = big.cycles ? big.map_ms / big.cycles : 0;
	r->stall_big_unmap_ms = big.cycles ? big.unmap_ms / big.cycles : 0;
	r->stall_big_create_ms = big.creates ? big.create_ms / big.creates : 0;
	free(v);
	struct vmb_vm_destroy vd = {.vm_id = vm};
	VK(vmb_vm_destroy(c, &vd));
	vd.vm_id = big.vm;
	VK(vmb_vm_destroy(c, &vd));
	bo_free(bo);
	bo_free(big.bo);
}

static const char *goal(bool ok) { return ok ? "met" : "MISSED"; }

int cmd_bench_cuda(bool json, bool quick)
{
	int rc = cudrv_open(d);
	if (rc)
		return rc;
	VK(vmb_client_open("cuda", NULL, &c));
	CK(d->cuStreamCreate(&S, CU_STREAM_NON_BLOCKING));
	void *hp;
	CK(d->cuMemHostAlloc(&hp, 4096, CU_MEMHOSTALLOC_PORTABLE | CU_MEMHOSTALLOC_DEVICEMAP));
	CK(d->cuMemHostGetDevicePointer(&pin_d, hp, 0));
	memset(hp, 0, 4096);
	pin = hp;
	struct results r = {0};
	int reps = quick ? 2 : 5, n = quick ? 20 : 200;
	fprintf(stderr, "bench cuda: %s, driver %d\n", d->name, d->version);
	bench_bind_cost(&r, reps);
	bench_async_call(&r, n);
	bench_handoff(&r, n);
	bench_unbind(&r, quick ? 5 : 50);
	int steps = quick ? 4 : 16;
	bench_grow(&r, steps, quick ? 2 : 5);
	bench_stall(&r, quick ? 20 : 100);
	double ratio1 = r.vmb_map[0] / r.raw1_map, ratio512 = r.vmb_map[4] / r.raw512_map;
	/* (e): ratios of the medians; the most sync / async can be at map = compute */
	double g_alone = r.grow_async / r.grow_alone, g_sync = r.grow_sync / r.grow_async;
	double ceiling = 2.0 * steps / (steps + 1);
	if (json) {
		printf("{\"bench\":\"cuda\",\"device\":\"%s\",\"driver\":%d,", d->name, d->version);
		bench_json_machine();
		printf("\"raw_1GiB_one_handle_map_ms\":%.4f,\"raw_1GiB_one_handle_unmap_ms\":%.4f,", r.raw1_map, r.raw1_unmap);
		printf("\"raw_1GiB_512_handles_map_ms\":%.4f,\"raw_1GiB_512_handles_unmap_ms\":%.4f,", r.raw512_map,
		       r.raw512_unmap);
		printf("\"vmbind_1GiB_map_ms\":{");
		for (int k = 0; k < 5; k++)
			printf("%s\"%llu\":%.4f", k ? "," : "", (unsigned long long)(chunks[k] / MB), r.vmb_map[k]);
		printf("},\"vmbind_1GiB_unmap_ms\":{");
		for (int k = 0; k < 5; k++)
			printf("%s\"%llu\":%.4f", k ? "," : "", (unsigned long long)(chunks[k] / MB), r.vmb_unmap[k]);
		printf("},\"ratio_one_chunk\":%.3f,\"ratio_2MiB_chunks\":%.3f,", ratio1, ratio512);
		printf("\"async_call_us\":%.2f,\"sync_call_us\":%.2f,", r.async_call_us, r.sync_call_us);
		printf("\"handoff_us\":%.2f,\"handoff_raw_us\":%.2f,", r.handoff_us, r.handoff_raw_us);
		printf("\"unbind_after_stream_us\":%.2f,\"unbind_call_us\":%.2f,\"sync_then_unmap_us\":%.2f,", r.unbind_us,
		       r.unbind_call_us, r.unbind_raw_us);
		printf("\"unbind_leg_watcher_us\":%.2f,\"unbind_leg_handoff_us\":%.2f,\"unbind_leg_commit_us\":%.2f,",
		       r.unbind_watch_us, r.unbind_handoff_us, r.unbind_commit_us);
		printf("\"grow_step_map_first_ms\":%.3f,\"grow_step_map_last_ms\":%.3f,\"grow_binds_alone_ms\":%.3f,",
		       r.step_map_first, r.step_map_last, r.grow_binds_alone);
		printf("\"grow_step_map_ms\":%.3f,\"grow_async_ms\":%.3f,\"grow_sync_ms\":%.3f,\"grow_compute_alone_ms\":%.3f,",
		       r.step_map_ms, r.grow_async, r.grow_sync, r.grow_alone);
		printf("\"grow_rounds\":%d,\"grow_steps\":%d,\"grow_step_map_raw_ms\":%.3f,\"grow_step_compute_ms\":%.3f,",
		       r.grow_rounds, steps, r.step_map_raw_ms, r.step_compute_ms);
		printf("\"grow_async_ms_min\":%.3f,\"grow_async_ms_max\":%.3f,\"grow_sync_ms_min\":%.3f,\"grow_sync_ms_max\":%.3f,"
		       "\"grow_compute_alone_ms_min\":%.3f,\"grow_compute_alone_ms_max\":%.3f,",
		       r.grow_async_min, r.grow_async_max, r.grow_sync_min, r.grow_sync_max, r.grow_alone_min, r.grow_alone_max);
		printf("\"grow_map_over_compute\":%.3f,\"grow_map_over_compute_min\":%.3f,\"grow_map_over_compute_max\":%.3f,"
		       "\"grow_async_over_alone\":%.3f,\"grow_sync_over_async\":%.3f,\"grow_sync_over_async_ceiling\":%.3f,",
		       r.grow_map_over_compute, r.grow_map_over_compute_min, r.grow_map_over_compute_max, g_alone, g_sync,
		       ceiling);
		printf("\"stall_big_map_ms\":%.3f,\"stall_big_unmap_ms\":%.3f,\"stall_big_cycles\":%d,"
		       "\"stall_big_bo_create_ms\":%.3f,", r.stall_big_map_ms, r.stall_big_unmap_ms, r.stall_cycles,
		       r.stall_big_create_ms);
		for (int k = 0; k < STALLS; k++)
			printf("\"stall_%s_idle_med_us\":%.2f,\"stall_%s_idle_max_us\":%.2f,\"stall_%s_busy_med_us\":%.2f,"
			       "\"stall_%s_busy_max_us\":%.2f,",
			       stall_name[k], r.stall_med[k][0], stall_name[k], r.stall_max[k][0], stall_name[k],
			       r.stall_med[k][1], stall_name[k], r.stall_max[k][1]);
		printf("\"goals\":{\"one_chunk_le_1.5x\":%s,\"2MiB_le_1.2x\":%s,\"handoff_le_10us\":%s,"
		       "\"grow_le_1.1x_alone\":%s,\"grow_sync_ge_1.8x\":%s}}\n",
		       ratio1 <= 1.5 ? "true" : "false", ratio512 <= 1.2 ? "true" : "false",
		       r.handoff_us <= 10 ? "true" : "false", g_alone <= 1.1 ? "true" : "false",
		       g_sync >= 1.8 ? "true" : "false");
	} else {
		bench_print_machine();
		printf("device: %s, driver %d%s\n\n", d->name, d->version, quick ? " (--quick)" : "");
		printf("(a) 1 GiB bind (map + access), median of %d           map ms   unmap ms\n", reps);
		printf("  raw: one 1 GiB handle                             %8.3f  %8.3f\n", r.raw1_map, r.raw1_unmap);
		printf("  raw: 512 handles of 2 MiB, one by one             %8.3f  %8.3f\n", r.raw512_map, r.raw512_unmap);
		for (int k = 0; k < 5; k++)
			printf("  vmbind: chunk %4llu MiB (%3llu chunks)              %8.3f  %8.3f\n",
			       (unsigned long long)(chunks[k] / MB), (unsigned long long)(GB / chunks[k]), r.vmb_map[k],
			       r.vmb_unmap[k]);
		printf("  one chunk / raw one handle: %.2fx (goal <= 1.5x: %s)\n", ratio1, goal(ratio1 <= 1.5));
		printf("  2 MiB chunks / raw loop:    %.2fx (goal <= 1.2x: %s)\n\n", ratio512, goal(ratio512 <= 1.2));
		printf("(b) bind call return, 2 MiB, median of %d: async %.1f us, sync %.1f us\n\n", n, r.async_call_us,
		       r.sync_call_us);
		printf("(c) bind done -> waiting stream passes: %.1f us median (goal <= 10 us: %s);\n"
		       "    host write -> stream passes (floor): %.1f us (both include the stream -> host leg)\n\n",
		       r.handoff_us, goal(r.handoff_us <= 10), r.handoff_raw_us);
		printf("(d) kernel done -> unbind committed: vmb_cuda_stream_signal %.1f us (the call returned in %.1f us),\n"
		       "    cuStreamSynchronize + cuMemUnmap %.1f us (the caller blocked meanwhile)\n",
		       r.unbind_us, r.unbind_call_us, r.unbind_raw_us);
		printf("    its legs (medians, the library's trace): stream passes -> fence signalled (watcher) %.1f us,\n"
		       "    -> commit begins (scheduler hand-off) %.1f us, -> unmapped and its user fence seen %.1f us\n\n",
		       r.unbind_watch_us, r.unbind_handoff_us, r.unbind_commit_us);
		printf("(e) grow and compute, %d steps of 256 MiB (2 MiB chunks), %d rounds (the sides alternate):\n", steps,
		       r.grow_rounds);
		printf("  a step's map, %d in a row, median of %d passes: vmbind (sync) %.2f ms, raw %.2f ms\n", steps,
		       CAL_PASSES, r.step_map_ms, r.step_map_raw_ms);
		printf("    (first pass through vmbind: first step %.2f, last %.2f ms); the async binds alone %.2f ms\n",
		       r.step_map_first, r.step_map_last, r.grow_binds_alone);
		printf("  compute %.2f ms a step (the mean of the two)        median  min..max ms\n", r.step_compute_ms);
		printf("    async binds                                     %7.2f  %.2f..%.2f\n", r.grow_async, r.grow_async_min,
		       r.grow_async_max);
		printf("    sync inline map                                 %7.2f  %.2f..%.2f\n", r.grow_sync, r.grow_sync_min,
		       r.grow_sync_max);
		printf("    compute alone                                   %7.2f  %.2f..%.2f\n", r.grow_alone, r.grow_alone_min,
		       r.grow_alone_max);
		printf("  map / compute as the sync side paid it: %.2f (%.2f..%.2f)\n", r.grow_map_over_compute,
		       r.grow_map_over_compute_min, r.grow_map_over_compute_max);
		printf("  async / compute alone (medians) %.2fx (goal <= 1.1x: %s)\n", g_alone, goal(g_alone <= 1.1));
		printf("  sync / async (medians) %.2fx (goal >= 1.8x: %s; at most %.2fx with %d steps, at map = compute)\n",
		       g_sync, goal(g_sync >= 1.8), ceiling, steps);
		printf("\n(f) cheap calls while another vm's 1 GiB bind of 512 chunks commits (map %.2f ms, unmap %.2f ms,\n"
		       "    %d cycles), up to %d calls each (3 s a row), 0..2 ms apart idle: median  max  during: median  max us (calls)\n",
		       r.stall_big_map_ms, r.stall_big_unmap_ms, r.stall_cycles, quick ? 20 : 100);
		for (int k = 0; k < STALLS; k++)
			printf("  %-48s %8.1f %8.1f        %8.1f %8.1f (%d/%d)\n", stall_label[k], r.stall_med[k][0],
			       r.stall_max[k][0], r.stall_med[k][1], r.stall_max[k][1], r.stall_n[k][0], r.stall_n[k][1]);
		printf("  * 1 GiB BO of 512 chunks: vmb_bo_create %.2f ms (the device lock shared meanwhile)\n",
		       r.stall_big_create_ms);
	}
	vmb_client_close(c);
	return 0;
}
