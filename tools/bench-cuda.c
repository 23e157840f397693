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
 *      whose in-sync is the stream's point), against cuStreamSynchronize + cuMemUnmap.
 *  (e) grow and compute: 16 steps, each maps the next 256 MiB (2 MiB chunks) while a kernel works
 *      on the part mapped; asynchronous binds ordered by fences, against mapping inline (raw map,
 *      launch, synchronize: the expandable-segments way), and compute alone (all mapped first).
 *      Compute per step about the cost of one step's mapping; goals: async <= 1.1x compute alone,
 *      sync / async >= 1.8.
 */
#include <errno.h>
#include <pthread.h>
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
	double grow_async, grow_sync, grow_alone, step_map_ms, step_map_first, step_map_last, grow_binds_alone;
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

/* (d): the stream's kernel done -> its memory unmapped */
static void bench_unbind(struct results *r, int n)
{
	uint64_t base = 0;
	uint32_t vm = vm_new(&base), bo = bo_new(2 * MB, 0), kdone = syncobj_new(), unb = syncobj_new();
	double *v = calloc((size_t)n, sizeof(double)), *raw = calloc((size_t)n, sizeof(double)),
	       *call = calloc((size_t)n, sizeof(double));
	uint64_t gen = load(1);
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
	}
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

/* (e) grow and compute */
static void bench_grow(struct results *r, int steps)
{
	const uint64_t step = 256 * MB;
	uint64_t base = 0;
	uint32_t vm = vm_new(&base), bo = bo_new(steps * step, 2 * MB);
	uint32_t *pts = calloc((size_t)steps, sizeof(*pts));
	/* one step's map cost, to size the compute: the mean of all the steps mapped in a row (a step
	 * costs more the more the vm has mapped already: the first one alone would size the compute
	 * below the map, and the async loop would be bound by its binds) */
	double sum = 0;
	for (int i = 0; i < steps; i++) {
		int64_t t0 = cudrv_now_ns();
		VK(bind(vm, VMB_BIND_OP_MAP, bo, i * step, VA0 + i * step, step, NULL, 0));
		double t = ms(t0, cudrv_now_ns());
		sum += t;
		if (!i)
			r->step_map_first = t;
		r->step_map_last = t;
	}
	r->step_map_ms = sum / steps;
	VK(bind(vm, VMB_BIND_OP_UNMAP, 0, 0, VA0, steps * step, NULL, 0));
	/* the async binds alone (no kernels): the floor of the async loop */
	for (int i = 0; i < steps; i++)
		pts[i] = syncobj_new();
	int64_t t0 = cudrv_now_ns();
	for (int i = 0; i < steps; i++) {
		struct vmb_sync out = {.type = VMB_SYNC_SYNCOBJ, .flags = VMB_SYNC_FLAG_SIGNAL, .handle = pts[i]};
		VK(bind(vm, VMB_BIND_OP_MAP, bo, i * step, VA0 + i * step, step, &out, 1));
	}
	wait_syncobj(pts[steps - 1]);
	r->grow_binds_alone = ms(t0, cudrv_now_ns());
	VK(bind(vm, VMB_BIND_OP_UNMAP, 0, 0, VA0, steps * step, NULL, 0));
	uint64_t spin = (uint64_t)(r->step_map_ms * 1e6);
	const uint32_t words = 1 << 16; /* each kernel writes 256 KiB of its step's part */

	/* compute alone: everything mapped first */
	VK(bind(vm, VMB_BIND_OP_MAP, bo, 0, VA0, steps * step, NULL, 0));
	CK(d->cuStreamSynchronize(S));
	t0 = cudrv_now_ns();
	for (int i = 0; i < steps; i++)
		CK(cudrv_fill(d, S, base + VA0 + i * step, words, (uint32_t)i, spin));
	CK(d->cuStreamSynchronize(S));
	r->grow_alone = ms(t0, cudrv_now_ns());
	VK(bind(vm, VMB_BIND_OP_UNMAP, 0, 0, VA0, steps * step, NULL, 0));

	/* async: bind step i+1 while the kernel of step i runs; kernel i waits for bind i */
	for (int i = 0; i < steps; i++)
		pts[i] = syncobj_new();
	t0 = cudrv_now_ns();
	for (int i = 0; i < steps; i++) {
		struct vmb_sync out = {.type = VMB_SYNC_SYNCOBJ, .flags = VMB_SYNC_FLAG_SIGNAL, .handle = pts[i]};
		VK(bind(vm, VMB_BIND_OP_MAP, bo, i * step, VA0 + i * step, step, &out, 1));
		stream_sync_op(false, pts[i], S);
		CK(cudrv_fill(d, S, base + VA0 + i * step, words, (uint32_t)i, spin));
	}
	CK(d->cuStreamSynchronize(S));
	r->grow_async = ms(t0, cudrv_now_ns());
	VK(bind(vm, VMB_BIND_OP_UNMAP, 0, 0, VA0, steps * step, NULL, 0));
	struct vmb_vm_destroy vd = {.vm_id = vm};
	VK(vmb_vm_destroy(c, &vd));
	bo_free(bo);

	/* sync, raw: map the step inline (2 MiB handles, map + access each), launch, synchronize */
	CUmemAllocationProp p = vram();
	CUmemAccessDesc a = rw();
	unsigned per = (unsigned)(step / (2 * MB)), n = per * (unsigned)steps;
	CUmemGenericAllocationHandle *h = calloc(n, sizeof(*h));
	CUdeviceptr va;
	CK(d->cuMemAddressReserve(&va, steps * step, 0, 0, 0));
	for (unsigned i = 0; i < n; i++)
		CK(d->cuMemCreate(&h[i], 2 * MB, &p, 0));
	t0 = cudrv_now_ns();
	for (int i = 0; i < steps; i++) {
		for (unsigned k = 0; k < per; k++) {
			CUdeviceptr at = va + i * step + k * 2 * MB;
			CK(d->cuMemMap(at, 2 * MB, 0, h[i * per + k], 0));
			CK(d->cuMemSetAccess(at, 2 * MB, &a, 1));
		}
		CK(cudrv_fill(d, S, va + i * step, words, (uint32_t)i, spin));
		CK(d->cuStreamSynchronize(S));
	}
	r->grow_sync = ms(t0, cudrv_now_ns());
	for (unsigned i = 0; i < n; i++) {
		d->cuMemUnmap(va + i * 2 * MB, 2 * MB);
		d->cuMemRelease(h[i]);
	}
	d->cuMemAddressFree(va, steps * step);
	free(h);
	free(pts);
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
	bench_grow(&r, quick ? 4 : 16);
	double ratio1 = r.vmb_map[0] / r.raw1_map, ratio512 = r.vmb_map[4] / r.raw512_map;
	double g_alone = r.grow_async / r.grow_alone, g_sync = r.grow_sync / r.grow_async;
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
		printf("\"grow_step_map_first_ms\":%.3f,\"grow_step_map_last_ms\":%.3f,\"grow_binds_alone_ms\":%.3f,",
		       r.step_map_first, r.step_map_last, r.grow_binds_alone);
		printf("\"grow_step_map_ms\":%.3f,\"grow_async_ms\":%.3f,\"grow_sync_ms\":%.3f,\"grow_compute_alone_ms\":%.3f,",
		       r.step_map_ms, r.grow_async, r.grow_sync, r.grow_alone);
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
		       "    cuStreamSynchronize + cuMemUnmap %.1f us (the caller blocked meanwhile)\n\n",
		       r.unbind_us, r.unbind_call_us, r.unbind_raw_us);
		printf("(e) grow and compute, %d steps of 256 MiB (2 MiB chunks), compute %.2f ms a step (the mean map):\n", quick ? 4 : 16,
		       r.step_map_ms);
		printf("  a step's map, sync, %d in a row: first %.2f, mean %.2f, last %.2f ms; the async binds alone %.2f ms\n",
		       quick ? 4 : 16, r.step_map_first, r.step_map_ms, r.step_map_last, r.grow_binds_alone);
		printf("  async binds %.2f ms, compute alone %.2f ms (%.2fx, goal <= 1.1x: %s)\n", r.grow_async, r.grow_alone,
		       g_alone, goal(g_alone <= 1.1));
		printf("  sync inline map %.2f ms (sync / async %.2fx, goal >= 1.8x: %s)\n", r.grow_sync, g_sync,
		       goal(g_sync >= 1.8));
	}
	vmb_client_close(c);
	return 0;
}
