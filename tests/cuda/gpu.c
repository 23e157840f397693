/* SPDX-License-Identifier: MIT */
/*
 * The CUDA device on a real GPU (issue 15 item 6): binds that kernels use, ordered by fences.
 * A plain program (the GPU machine has no cmocka): each case prints "ok" or "FAIL" with the line;
 * exit 0, 1 (a case failed) or 77 (no libcuda, no GPU: skipped, as in CI). Values, never timings,
 * decide (a bound of seconds only catches a hang).
 */
#include <errno.h>
#include <execinfo.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vmbind.h>

#include "cudrv.h"
#include "expect.h"

#define MB (1ull << 20)
#define VA0 (1ull << 32) /* where the cases map, inside the default 64 GiB */

static struct cudrv D, *d = &D;
static struct vmb_client *c;
static CUstream S;


static uint32_t vm_new(uint64_t *base, uint32_t flags)
{
	struct vmb_vm_create a = {.flags = flags};
	if (vmb_vm_create(c, &a))
		return 0;
	*base = a.gpu_base;
	return a.vm_id;
}

static uint32_t bo_new(uint64_t size, uint32_t place, uint64_t chunk)
{
	struct vmb_bo_create a = {.size = size, .placements = place, .chunk_size = chunk};
	return vmb_bo_create(c, &a) ? 0 : a.handle;
}

static uint32_t syncobj_new(void)
{
	struct vmb_syncobj_create a = {0};
	return vmb_syncobj_create(c, &a) ? 0 : a.handle;
}

static int bind_ops(uint32_t vm, uint32_t queue, struct vmb_bind_op *ops, uint32_t n, struct vmb_sync *syncs,
		    uint32_t nsyncs)
{
	struct vmb_vm_bind b = {.vm_id = vm, .queue_id = queue, .num_binds = n, .binds = (uintptr_t)ops,
				.num_syncs = nsyncs, .syncs = (uintptr_t)syncs,
				.flags = nsyncs ? VMB_VM_BIND_FLAG_ASYNC : 0};
	return vmb_vm_bind(c, &b);
}

static int map(uint32_t vm, uint32_t bo, uint64_t off, uint64_t addr, uint64_t range, uint32_t flags)
{
	struct vmb_bind_op op = {.op = VMB_BIND_OP_MAP, .flags = flags, .bo_handle = bo, .bo_offset = off,
				 .addr = addr, .range = range};
	return bind_ops(vm, 0, &op, 1, NULL, 0);
}

static int unmap(uint32_t vm, uint64_t addr, uint64_t range)
{
	struct vmb_bind_op op = {.op = VMB_BIND_OP_UNMAP, .addr = addr, .range = range};
	return bind_ops(vm, 0, &op, 1, NULL, 0);
}

static int access_rw(uint32_t vm, uint64_t addr, void *buf, uint64_t size, bool write)
{
	struct vmb_vm_access a = {.vm_id = vm, .flags = write ? VMB_ACCESS_WRITE : 0, .addr = addr, .size = size,
				  .data = (uintptr_t)buf};
	return vmb_vm_access(c, &a);
}

static int wait_syncobj(uint32_t h, int64_t ns)
{
	struct vmb_syncobj_wait w = {.handles = (uintptr_t)&h, .count = 1, .timeout_ns = ns,
				     .flags = VMB_SYNCOBJ_WAIT_RELATIVE};
	return vmb_syncobj_wait(c, &w);
}

static int stream_wait(uint32_t h)
{
	struct vmb_sync s = {.type = VMB_SYNC_SYNCOBJ, .handle = h};
	struct vmb_cuda_stream_sync a = {.stream = (uintptr_t)S, .syncs = (uintptr_t)&s, .num_syncs = 1};
	return vmb_cuda_stream_wait(c, &a);
}

static int stream_signal(uint32_t h)
{
	struct vmb_sync s = {.type = VMB_SYNC_SYNCOBJ, .flags = VMB_SYNC_FLAG_SIGNAL, .handle = h};
	struct vmb_cuda_stream_sync a = {.stream = (uintptr_t)S, .syncs = (uintptr_t)&s, .num_syncs = 1};
	return vmb_cuda_stream_signal(c, &a);
}

/* n u32 at @va through the driver (the app's view), into @out. */
static CUresult read_gpu(CUdeviceptr va, uint32_t *out, uint32_t n)
{
	CUresult r = d->cuMemcpyDtoHAsync(out, va, n * 4ull, S);
	return r ? r : d->cuStreamSynchronize(S);
}

static int vm_del(uint32_t vm)
{
	struct vmb_vm_destroy vd = {.vm_id = vm};
	return vmb_vm_destroy(c, &vd);
}

static int validate(void)
{
	struct vmb_client_validate v = {0};
	return vmb_client_validate(c, &v);
}

/* The status of a binary syncobj's fence: VMB_SYNCOBJ_STATUS_* or -errno (or the call's error). */
static int status_of(uint32_t h)
{
	int32_t st = 0;
	struct vmb_syncobj_status q = {.handles = (uintptr_t)&h, .status = (uintptr_t)&st, .count = 1};
	int err = vmb_syncobj_query_status(c, &q);
	return err ? err : st;
}

static struct vmb_sync sync_in(uint32_t h)
{
	return (struct vmb_sync){.type = VMB_SYNC_SYNCOBJ, .handle = h};
}

static struct vmb_sync sync_out(uint32_t h)
{
	return (struct vmb_sync){.type = VMB_SYNC_SYNCOBJ, .flags = VMB_SYNC_FLAG_SIGNAL, .handle = h};
}

static struct vmb_sync ufence_out(volatile uint64_t *addr, uint64_t value)
{
	return (struct vmb_sync){.type = VMB_SYNC_USER_FENCE, .flags = VMB_SYNC_FLAG_SIGNAL,
				 .addr = (uintptr_t)addr, .value = value};
}

/*
 * Pinned host memory the device maps (cuMemHostAlloc): user fences, and the words kernels copy
 * into (kread). One page per process, allocated at first use.
 */
static volatile uint64_t *pinned;
static CUdeviceptr pinned_d;
#define PINNED_BYTES (1u << 20)
#define KREAD_AT 4096 /* kread's words start here; the first page holds fence words */

static int pinned_init(void)
{
	if (pinned)
		return 0;
	void *p;
	if (d->cuMemHostAlloc(&p, PINNED_BYTES, CU_MEMHOSTALLOC_DEVICEMAP | CU_MEMHOSTALLOC_PORTABLE) ||
	    d->cuMemHostGetDevicePointer(&pinned_d, p, 0))
		return -1;
	memset(p, 0, PINNED_BYTES);
	pinned = p;
	return 0;
}

/* A kernel (vmb_copy on S) reads n u32 at @va into the pinned page: 0 and out[], or the error. */
static CUresult kread(CUdeviceptr va, uint32_t *out, uint32_t n)
{
	if (pinned_init())
		return CUDA_ERROR_OUT_OF_MEMORY;
	CUresult r = cudrv_copy(d, S, pinned_d + KREAD_AT, va, n);
	if (!r)
		r = d->cuStreamSynchronize(S);
	if (!r)
		memcpy(out, (const char *)pinned + KREAD_AT, n * 4ull);
	return r;
}

/*
 * A gate: a syncobj whose fence signals once the test opens it (a stream of the application's,
 * blocked on a word in pinned memory, then vmb_cuda_stream_signal): the in-fence of binds that
 * must stay pending until the test says so.
 */
struct gate {
	CUstream s;
	uint32_t syncobj;
	volatile uint64_t *word;
};

static int gate_new(struct gate *g, unsigned int slot)
{
	if (pinned_init() || !(g->syncobj = syncobj_new()))
		return -1;
	g->word = &pinned[slot];
	*g->word = 0;
	if (d->cuStreamCreate(&g->s, CU_STREAM_NON_BLOCKING) ||
	    d->cuStreamWaitValue64(g->s, pinned_d + slot * 8ull, 1, CU_STREAM_WAIT_VALUE_GEQ))
		return -1;
	struct vmb_sync sig = sync_out(g->syncobj);
	struct vmb_cuda_stream_sync a = {.stream = (uintptr_t)g->s, .syncs = (uintptr_t)&sig, .num_syncs = 1};
	return vmb_cuda_stream_signal(c, &a);
}

static void gate_open(struct gate *g)
{
	__atomic_store_n(g->word, 1, __ATOMIC_RELEASE);
}

/* The u64 at @addr reaches @value within 10 s (a bound that only catches a hang): 0 or -ETIME. */
static int ufence_wait(volatile uint64_t *addr, uint64_t value)
{
	struct vmb_user_fence_wait w = {.addr = (uintptr_t)addr, .value = value, .mask = ~0ull,
					.timeout = 10000000000ll, .op = VMB_UFENCE_OP_GTE};
	return vmb_user_fence_wait(c, &w);
}

/* bind -> kernel writes -> readback, through the driver and through vmb_vm_access */
static void test_bind_kernel_readback(void)
{
	uint64_t base = 0;
	uint32_t vm = vm_new(&base, 0), bo = bo_new(4 * MB, VMB_PLACE_VRAM, 0);
	EXPECT(vm && bo && base);
	EXPECT_EQ(map(vm, bo, 0, VA0, 4 * MB, 0), 0);
	EXPECT_EQ(cudrv_fill(d, S, base + VA0, 1 << 20, 1000, 0), CUDA_SUCCESS);
	uint32_t got[4];
	EXPECT_EQ(read_gpu(base + VA0 + 4 * 12345, got, 4), CUDA_SUCCESS);
	EXPECT_EQ(got[0], 1000 + 12345);
	EXPECT_EQ(got[3], 1000 + 12348);
	EXPECT_EQ(access_rw(vm, VA0 + 4 * 999, got, 4, false), 0);
	EXPECT_EQ(got[0], 1999);
	struct vmb_client_validate v = {0};
	EXPECT_EQ(vmb_client_validate(c, &v), 0);
	EXPECT_EQ(unmap(vm, VA0, 4 * MB), 0);
	EXPECT_EQ(access_rw(vm, VA0, got, 4, false), -EFAULT);
	struct vmb_vm_destroy vd = {.vm_id = vm};
	EXPECT_EQ(vmb_vm_destroy(c, &vd), 0);
}

/* partial unbind at chunk boundaries; -EINVAL inside a chunk */
static void test_partial_unbind(void)
{
	uint64_t base = 0;
	uint32_t vm = vm_new(&base, 0), bo = bo_new(8 * MB, VMB_PLACE_VRAM, 2 * MB),
		 whole = bo_new(8 * MB, VMB_PLACE_VRAM, 0);
	EXPECT(vm && bo && whole);
	EXPECT_EQ(map(vm, bo, 0, VA0, 8 * MB, 0), 0);
	EXPECT_EQ(cudrv_fill(d, S, base + VA0, 2 << 20, 0, 0), CUDA_SUCCESS);
	EXPECT_EQ(d->cuStreamSynchronize(S), CUDA_SUCCESS);
	EXPECT_EQ(unmap(vm, VA0 + 2 * MB, 2 * MB), 0); /* the second chunk */
	uint32_t got = 0;
	EXPECT_EQ(access_rw(vm, VA0 + 2 * MB, &got, 4, false), -EFAULT);
	EXPECT_EQ(access_rw(vm, VA0 + 4 * MB, &got, 4, false), 0);
	EXPECT_EQ(got, (4 * MB) / 4);
	/* a kernel on the chunks still mapped: no fault */
	EXPECT_EQ(cudrv_fill(d, S, base + VA0 + 4 * MB, 1 << 19, 7, 0), CUDA_SUCCESS);
	EXPECT_EQ(d->cuStreamSynchronize(S), CUDA_SUCCESS);
	/* a one-chunk BO cannot be cut: inside its 8 MiB chunk */
	EXPECT_EQ(map(vm, whole, 0, VA0 + 64 * MB, 8 * MB, 0), 0);
	EXPECT_EQ(unmap(vm, VA0 + 64 * MB + 2 * MB, 2 * MB), -EINVAL);
	EXPECT_EQ(map(vm, whole, 2 * MB, VA0 + 128 * MB, 2 * MB, 0), -EINVAL);
	struct vmb_client_validate v = {0};
	EXPECT_EQ(vmb_client_validate(c, &v), 0);
	struct vmb_vm_destroy vd = {.vm_id = vm};
	EXPECT_EQ(vmb_vm_destroy(c, &vd), 0);
}

/* a SYSTEM BO (host NUMA memory) used by a kernel */
static void test_system_bo(void)
{
	uint64_t base = 0;
	uint32_t vm = vm_new(&base, 0), bo = bo_new(2 * MB, VMB_PLACE_SYSTEM, 0);
	EXPECT(vm && bo);
	struct vmb_bo_query q = {.handle = bo};
	EXPECT_EQ(vmb_bo_query(c, &q), 0);
	EXPECT_EQ(q.region, VMB_REGION_SYSTEM);
	EXPECT_EQ(map(vm, bo, 0, VA0, 2 * MB, 0), 0);
	EXPECT_EQ(cudrv_fill(d, S, base + VA0, 1024, 5, 0), CUDA_SUCCESS);
	uint32_t got[2];
	EXPECT_EQ(read_gpu(base + VA0 + 40, got, 2), CUDA_SUCCESS);
	EXPECT_EQ(got[0], 15);
	EXPECT_EQ(got[1], 16);
	struct vmb_vm_destroy vd = {.vm_id = vm};
	EXPECT_EQ(vmb_vm_destroy(c, &vd), 0);
}

/* a kernel queued behind a bind that is not done yet starts only after it */
static void test_kernel_waits_for_bind(void)
{
	uint64_t base = 0;
	uint32_t vm = vm_new(&base, 0), bo = bo_new(2 * MB, VMB_PLACE_VRAM, 0);
	uint32_t gate = syncobj_new(), bound = syncobj_new();
	EXPECT(vm && bo && gate && bound);
	/* the gate: a fence of the application's own stream, held back by a value in pinned memory */
	uint64_t *word;
	CUdeviceptr wd;
	EXPECT_EQ(d->cuMemHostAlloc((void **)&word, 4096, CU_MEMHOSTALLOC_DEVICEMAP | CU_MEMHOSTALLOC_PORTABLE), CUDA_SUCCESS);
	EXPECT_EQ(d->cuMemHostGetDevicePointer(&wd, word, 0), CUDA_SUCCESS);
	*word = 0;
	CUstream gs;
	EXPECT_EQ(d->cuStreamCreate(&gs, CU_STREAM_NON_BLOCKING), CUDA_SUCCESS);
	EXPECT_EQ(d->cuStreamWaitValue64(gs, wd, 1, CU_STREAM_WAIT_VALUE_GEQ), CUDA_SUCCESS);
	struct vmb_sync gsig = {.type = VMB_SYNC_SYNCOBJ, .flags = VMB_SYNC_FLAG_SIGNAL, .handle = gate};
	struct vmb_cuda_stream_sync ga = {.stream = (uintptr_t)gs, .syncs = (uintptr_t)&gsig, .num_syncs = 1};
	EXPECT_EQ(vmb_cuda_stream_signal(c, &ga), 0);
	/* the bind waits for the gate; the kernel for the bind */
	struct vmb_bind_op op = {.op = VMB_BIND_OP_MAP, .bo_handle = bo, .addr = VA0, .range = 2 * MB};
	struct vmb_sync bs[2] = {{.type = VMB_SYNC_SYNCOBJ, .handle = gate},
				 {.type = VMB_SYNC_SYNCOBJ, .flags = VMB_SYNC_FLAG_SIGNAL, .handle = bound}};
	EXPECT_EQ(bind_ops(vm, 0, &op, 1, bs, 2), 0);
	EXPECT_EQ(stream_wait(bound), 0);
	EXPECT_EQ(cudrv_fill(d, S, base + VA0, 256, 77, 0), CUDA_SUCCESS);
	usleep(100000);
	EXPECT_EQ(d->cuStreamQuery(S), CUDA_ERROR_NOT_READY); /* held back by the bind */
	EXPECT_EQ(wait_syncobj(bound, 0), -ETIME);
	__atomic_store_n(word, 1, __ATOMIC_RELEASE); /* the gate opens: bind, then the kernel */
	EXPECT_EQ(wait_syncobj(bound, 10000000000ll), 0);
	uint32_t got[2];
	EXPECT_EQ(read_gpu(base + VA0 + 4, got, 2), CUDA_SUCCESS); /* on S: after the kernel */
	EXPECT_EQ(got[0], 78);
	EXPECT_EQ(got[1], 79);
	EXPECT_EQ(d->cuStreamSynchronize(gs), CUDA_SUCCESS);
	d->cuStreamDestroy(gs);
	d->cuMemFreeHost(word);
	struct vmb_vm_destroy vd = {.vm_id = vm};
	EXPECT_EQ(vmb_vm_destroy(c, &vd), 0);
}

/* an unbind whose in-fence is a running kernel's completion (vmb_cuda_stream_signal): it commits
 * after the kernel, which ran without a fault and wrote its data */
static void test_unbind_after_kernel(void)
{
	uint64_t base = 0;
	uint32_t vm = vm_new(&base, 0), bo = bo_new(2 * MB, VMB_PLACE_VRAM, 0);
	uint32_t kdone = syncobj_new(), unbound = syncobj_new();
	EXPECT(vm && bo && kdone && unbound);
	EXPECT_EQ(map(vm, bo, 0, VA0, 2 * MB, 0), 0);
	EXPECT_EQ(map(vm, bo, 0, VA0 + 64 * MB, 2 * MB, 0), 0); /* a second view that stays */
	EXPECT_EQ(cudrv_fill(d, S, base + VA0, 1 << 19, 500, 300000000ull), CUDA_SUCCESS); /* 300 ms, then writes */
	EXPECT_EQ(stream_signal(kdone), 0);
	struct vmb_bind_op op = {.op = VMB_BIND_OP_UNMAP, .addr = VA0, .range = 2 * MB};
	struct vmb_sync bs[2] = {{.type = VMB_SYNC_SYNCOBJ, .handle = kdone},
				 {.type = VMB_SYNC_SYNCOBJ, .flags = VMB_SYNC_FLAG_SIGNAL, .handle = unbound}};
	EXPECT_EQ(bind_ops(vm, 0, &op, 1, bs, 2), 0);
	EXPECT_EQ(wait_syncobj(unbound, 0), -ETIME); /* the kernel still runs */
	EXPECT_EQ(wait_syncobj(unbound, 10000000000ll), 0);
	EXPECT_EQ(d->cuStreamQuery(S), CUDA_SUCCESS); /* it finished before the unbind */
	EXPECT_EQ(d->cuCtxSynchronize(), CUDA_SUCCESS); /* no illegal address */
	uint32_t got[2];
	EXPECT_EQ(access_rw(vm, VA0 + 64 * MB + 4 * 1000, got, 8, false), 0);
	EXPECT_EQ(got[0], 1500);
	EXPECT_EQ(got[1], 1501);
	EXPECT_EQ(access_rw(vm, VA0, got, 4, false), -EFAULT);
	struct vmb_vm_destroy vd = {.vm_id = vm};
	EXPECT_EQ(vmb_vm_destroy(c, &vd), 0);
}

/* a cuMemMap failure in the middle of an array: nothing of the array stays mapped */
static void test_array_all_or_nothing(void)
{
	uint64_t base = 0;
	uint32_t vm = vm_new(&base, 0), bo = bo_new(8 * MB, VMB_PLACE_VRAM, 2 * MB);
	EXPECT(vm && bo);
	struct vmb_bind_op ops[3];
	for (int i = 0; i < 3; i++)
		ops[i] = (struct vmb_bind_op){.op = VMB_BIND_OP_MAP, .bo_handle = bo, .bo_offset = 2 * MB * i,
					      .addr = VA0 + 16 * MB * i, .range = 2 * MB};
	ops[1].range = 4 * MB; /* two chunks: the failure is the second piece of op 1 */
	/* the 3rd cuMemMap of the bind fails (op 0: one, op 1: two) */
	struct vmb_fault_inject fi = {.classes = VMB_INJECT_COMMIT, .flags = VMB_INJECT_ONCE, .nth = 3,
				      .scope = VMB_INJECT_SCOPE_PROCESS, .error = -ENOMEM};
	EXPECT_EQ(vmb_debug_fault_inject(c, &fi), 0);
	int err = bind_ops(vm, 0, ops, 3, NULL, 0);
	struct vmb_fault_inject off = {.scope = VMB_INJECT_SCOPE_PROCESS, .classes = VMB_INJECT_COMMIT};
	vmb_debug_fault_inject(c, &off);
	EXPECT(err != 0);
	/* the driver maps nothing of the array */
	for (int i = 0; i < 3; i++) {
		for (uint64_t a = 0; a < ops[i].range; a += 2 * MB) {
			CUmemGenericAllocationHandle h;
			CUresult r = d->cuMemRetainAllocationHandle(&h, (void *)(uintptr_t)(base + ops[i].addr + a));
			if (!r)
				d->cuMemRelease(h);
			EXPECT(r != CUDA_SUCCESS);
		}
	}
	struct vmb_vm_destroy vd = {.vm_id = vm};
	EXPECT_EQ(vmb_vm_destroy(c, &vd), 0);
}

/* a NULL mapping reads 0, for a kernel and for the GPU view; writes to it are -EACCES there */
static void test_null_reads_zero(void)
{
	uint64_t base = 0;
	uint32_t vm = vm_new(&base, 0), bo = bo_new(2 * MB, VMB_PLACE_VRAM, 0);
	EXPECT(vm && bo);
	EXPECT_EQ(map(vm, 0, 0, VA0, 4 * MB, VMB_BIND_FLAG_NULL), 0);
	EXPECT_EQ(map(vm, bo, 0, VA0 + 64 * MB, 2 * MB, 0), 0);
	EXPECT_EQ(cudrv_fill(d, S, base + VA0 + 64 * MB, 1024, 9, 0), CUDA_SUCCESS);
	EXPECT_EQ(cudrv_copy(d, S, base + VA0 + 64 * MB, base + VA0 + 2 * MB + 64, 1024), CUDA_SUCCESS);
	uint32_t got[4] = {1, 1, 1, 1};
	EXPECT_EQ(read_gpu(base + VA0 + 64 * MB, got, 4), CUDA_SUCCESS);
	EXPECT(!got[0] && !got[1] && !got[2] && !got[3]);
	uint32_t v = 5;
	EXPECT_EQ(access_rw(vm, VA0 + 8, &v, 4, false), 0);
	EXPECT_EQ(v, 0);
	EXPECT_EQ(access_rw(vm, VA0 + 8, &v, 4, true), -EACCES);
	EXPECT_EQ(unmap(vm, VA0 + 2 * MB, 2 * MB), 0); /* NULL ranges cut at 2 MiB */
	EXPECT_EQ(access_rw(vm, VA0 + 2 * MB, &v, 4, false), -EFAULT);
	struct vmb_client_validate val = {0};
	EXPECT_EQ(vmb_client_validate(c, &val), 0);
	struct vmb_vm_destroy vd = {.vm_id = vm};
	EXPECT_EQ(vmb_vm_destroy(c, &vd), 0);
}

/* PREFETCH moves a BO between VRAM and SYSTEM with its bytes; the mapping follows it */
static void test_prefetch(void)
{
	uint64_t base = 0;
	uint32_t vm = vm_new(&base, 0), bo = bo_new(4 * MB, VMB_PLACE_VRAM | VMB_PLACE_SYSTEM, 2 * MB);
	EXPECT(vm && bo);
	EXPECT_EQ(map(vm, bo, 0, VA0, 4 * MB, 0), 0);
	EXPECT_EQ(cudrv_fill(d, S, base + VA0, 1 << 20, 3, 0), CUDA_SUCCESS);
	EXPECT_EQ(d->cuStreamSynchronize(S), CUDA_SUCCESS);
	for (uint32_t region = VMB_REGION_SYSTEM, k = 0; k < 2; k++, region = VMB_REGION_VRAM) {
		struct vmb_bind_op op = {.op = VMB_BIND_OP_PREFETCH, .region = region, .addr = VA0, .range = 4 * MB};
		EXPECT_EQ(bind_ops(vm, 0, &op, 1, NULL, 0), 0);
		struct vmb_bo_query q = {.handle = bo};
		EXPECT_EQ(vmb_bo_query(c, &q), 0);
		EXPECT_EQ(q.region, region);
		uint32_t got[2];
		EXPECT_EQ(read_gpu(base + VA0 + 4 * 600000, got, 2), CUDA_SUCCESS);
		EXPECT_EQ(got[0], 600003);
		EXPECT_EQ(got[1], 600004);
	}
	struct vmb_client_validate v = {0};
	EXPECT_EQ(vmb_client_validate(c, &v), 0);
	struct vmb_vm_destroy vd = {.vm_id = vm};
	EXPECT_EQ(vmb_vm_destroy(c, &vd), 0);
}

/* what this device does not have */
static void test_unsupported(void)
{
	uint64_t base = 0;
	struct vmb_device_query q = {0};
	EXPECT_EQ(vmb_device_query(c, &q), 0);
	EXPECT_EQ(q.min_page_size, 2 * MB);
	EXPECT_EQ(q.num_engines, 0);
	EXPECT(!(q.capabilities & (VMB_CAP_SCRATCH_PAGE | VMB_CAP_USERPTR | VMB_CAP_EXEC | VMB_CAP_VRAM_CPU_MAP)));
	EXPECT_EQ(vm_new(&base, VMB_VM_CREATE_SCRATCH_PAGE), 0);
	struct vmb_vm_create sc = {.flags = VMB_VM_CREATE_SCRATCH_PAGE};
	EXPECT_EQ(vmb_vm_create(c, &sc), -EOPNOTSUPP);
	uint32_t vm = vm_new(&base, 0), bo = bo_new(2 * MB, VMB_PLACE_VRAM, 0);
	EXPECT(vm && bo);
	struct vmb_bo_create small = {.size = 64 * 1024, .placements = VMB_PLACE_VRAM};
	EXPECT_EQ(vmb_bo_create(c, &small), -EINVAL);
	EXPECT_EQ(map(vm, bo, 0, VA0 + 4096, 2 * MB, 0), -EINVAL); /* 4 KiB aligned only */
	static char buf[2 << 20] __attribute__((aligned(2 << 20)));
	struct vmb_bind_op up = {.op = VMB_BIND_OP_MAP_USERPTR, .userptr = (uintptr_t)buf, .addr = VA0, .range = 2 * MB};
	EXPECT_EQ(bind_ops(vm, 0, &up, 1, NULL, 0), -EOPNOTSUPP);
	struct vmb_exec_queue_create eq = {.vm_id = vm};
	EXPECT_EQ(vmb_exec_queue_create(c, &eq), -EINVAL);
	struct vmb_bo_mmap mm = {.handle = bo};
	EXPECT_EQ(vmb_bo_mmap(c, &mm), -EOPNOTSUPP);
	/* a user fence the device cannot read (pageable memory): -EFAULT */
	static uint64_t plain_word;
	struct vmb_sync uf = {.type = VMB_SYNC_USER_FENCE, .addr = (uintptr_t)&plain_word, .value = 1};
	struct vmb_cuda_stream_sync a = {.stream = (uintptr_t)S, .syncs = (uintptr_t)&uf, .num_syncs = 1};
	EXPECT_EQ(vmb_cuda_stream_wait(c, &a), -EFAULT);
	uf.flags = VMB_SYNC_FLAG_SIGNAL;
	EXPECT_EQ(vmb_cuda_stream_signal(c, &a), -EINVAL);
	struct vmb_vm_destroy vd = {.vm_id = vm};
	EXPECT_EQ(vmb_vm_destroy(c, &vd), 0);
}

/* a stream waits for a user fence in pinned memory */
static void test_stream_waits_user_fence(void)
{
	uint64_t *word;
	EXPECT_EQ(d->cuMemHostAlloc((void **)&word, 4096, CU_MEMHOSTALLOC_DEVICEMAP | CU_MEMHOSTALLOC_PORTABLE), CUDA_SUCCESS);
	word[0] = 0;
	uint32_t done = syncobj_new();
	struct vmb_sync uf = {.type = VMB_SYNC_USER_FENCE, .addr = (uintptr_t)word, .value = 3};
	struct vmb_cuda_stream_sync a = {.stream = (uintptr_t)S, .syncs = (uintptr_t)&uf, .num_syncs = 1};
	EXPECT_EQ(vmb_cuda_stream_wait(c, &a), 0);
	EXPECT_EQ(stream_signal(done), 0);
	usleep(50000);
	EXPECT_EQ(wait_syncobj(done, 0), -ETIME);
	__atomic_store_n(word, 3, __ATOMIC_RELEASE);
	EXPECT_EQ(wait_syncobj(done, 10000000000ll), 0);
	d->cuMemFreeHost(word);
}

/*
 * An UNMAP of a one-chunk mapping and a MAP into its middle, in one call and as asynchronous
 * binds behind a gate on one queue: the MAP is prepared while the device still maps the old
 * chunk (its unmap is not committed yet), which it replaces; as on the soft device, 0.
 */
static void test_unmap_then_map_inside(void)
{
	uint64_t base = 0;
	uint32_t vm = vm_new(&base, 0), w = bo_new(8 * MB, VMB_PLACE_VRAM, 0), b = bo_new(2 * MB, VMB_PLACE_VRAM, 0);
	uint32_t done = syncobj_new(), got[1];
	struct gate g;
	EXPECT(vm && w && b && done);
	EXPECT_EQ(map(vm, w, 0, VA0, 8 * MB, 0), 0);
	struct vmb_bind_op ops[2] = {{.op = VMB_BIND_OP_UNMAP, .addr = VA0, .range = 8 * MB},
				     {.op = VMB_BIND_OP_MAP, .bo_handle = b, .addr = VA0 + 2 * MB, .range = 2 * MB}};
	EXPECT_EQ(bind_ops(vm, 0, ops, 2, NULL, 0), 0);
	EXPECT_EQ(access_rw(vm, VA0, got, 4, false), -EFAULT);
	EXPECT_EQ(access_rw(vm, VA0 + 4 * MB, got, 4, false), -EFAULT);
	EXPECT_EQ(cudrv_fill(d, S, base + VA0 + 2 * MB, 1 << 19, 40, 0), CUDA_SUCCESS);
	EXPECT_EQ(kread(base + VA0 + 2 * MB + 4 * 5, got, 1), CUDA_SUCCESS);
	EXPECT_EQ(got[0], 45);
	/* the same, asynchronous: the UNMAP waits for the gate, the MAP (same queue) for the UNMAP */
	EXPECT_EQ(map(vm, w, 0, VA0 + 64 * MB, 8 * MB, 0), 0);
	EXPECT_EQ(gate_new(&g, 0), 0);
	struct vmb_sync in = sync_in(g.syncobj), out = sync_out(done);
	ops[0].addr = VA0 + 64 * MB;
	ops[1].addr = VA0 + 64 * MB + 4 * MB;
	EXPECT_EQ(bind_ops(vm, 0, &ops[0], 1, &in, 1), 0);
	EXPECT_EQ(bind_ops(vm, 0, &ops[1], 1, &out, 1), 0);
	EXPECT_EQ(wait_syncobj(done, 0), -ETIME);
	gate_open(&g);
	EXPECT_EQ(wait_syncobj(done, 10000000000ll), 0);
	EXPECT_EQ(status_of(done), VMB_SYNCOBJ_STATUS_OK);
	EXPECT_EQ(kread(base + VA0 + 64 * MB + 4 * MB + 4 * 5, got, 1), CUDA_SUCCESS);
	EXPECT_EQ(got[0], 45); /* b's bytes */
	EXPECT_EQ(access_rw(vm, VA0 + 64 * MB, got, 4, false), -EFAULT);
	EXPECT_EQ(validate(), 0);
	EXPECT_EQ(vm_del(vm), 0);
}

/*
 * Split and merge at chunk boundaries: a 4-chunk BO mapped whole, its chunk 1 unmapped and
 * another BO mapped into the hole, then an UNMAP across two mappings (cut at a chunk boundary),
 * a MAP over part of a mapping (a REMAP), and the BO's chunks mapped back: kernels read every
 * chunk's bytes through the vm (each BO's own).
 */
static void test_split_merge_chunks(void)
{
	uint64_t base = 0;
	uint32_t vm = vm_new(&base, 0), a = bo_new(8 * MB, VMB_PLACE_VRAM, 2 * MB), b = bo_new(2 * MB, VMB_PLACE_VRAM, 0);
	const uint32_t C = (2 * MB) / 4; /* u32 per chunk */
	uint32_t got[2];
	EXPECT(vm && a && b);
	EXPECT_EQ(map(vm, a, 0, VA0, 8 * MB, 0), 0);
	EXPECT_EQ(cudrv_fill(d, S, base + VA0, 4 * C, 0, 0), CUDA_SUCCESS); /* a: word i = i */
	EXPECT_EQ(d->cuStreamSynchronize(S), CUDA_SUCCESS); /* before an unmap of what it writes */
	EXPECT_EQ(unmap(vm, VA0 + 2 * MB, 2 * MB), 0);
	EXPECT_EQ(map(vm, b, 0, VA0 + 2 * MB, 2 * MB, 0), 0);
	EXPECT_EQ(cudrv_fill(d, S, base + VA0 + 2 * MB, C, 7000000, 0), CUDA_SUCCESS); /* b */
	for (uint32_t k = 0; k < 4; k++) {
		EXPECT_EQ(kread(base + VA0 + k * 2 * MB + 8, got, 2), CUDA_SUCCESS);
		EXPECT_EQ(got[0], k == 1 ? 7000002 : k * C + 2);
		EXPECT_EQ(got[1], k == 1 ? 7000003 : k * C + 3);
	}
	/* a's chunk 1 kept its bytes while unmapped */
	EXPECT_EQ(map(vm, a, 2 * MB, VA0 + 32 * MB, 2 * MB, 0), 0);
	EXPECT_EQ(kread(base + VA0 + 32 * MB + 8, got, 1), CUDA_SUCCESS);
	EXPECT_EQ(got[0], C + 2);
	/* an UNMAP across b and a's chunk 2 (two mappings, cut at a chunk boundary of the second) */
	EXPECT_EQ(unmap(vm, VA0 + 2 * MB, 4 * MB), 0);
	EXPECT_EQ(access_rw(vm, VA0 + 2 * MB, got, 4, false), -EFAULT);
	EXPECT_EQ(access_rw(vm, VA0 + 4 * MB, got, 4, false), -EFAULT);
	EXPECT_EQ(access_rw(vm, VA0 + 6 * MB, got, 4, false), 0);
	EXPECT_EQ(got[0], 3 * C);
	EXPECT_EQ(validate(), 0);
	/* merge: a's chunks 1 and 2 back in one MAP (chunk 1 is mapped twice now) */
	EXPECT_EQ(map(vm, a, 2 * MB, VA0 + 2 * MB, 4 * MB, 0), 0);
	for (uint32_t k = 0; k < 4; k++) {
		EXPECT_EQ(kread(base + VA0 + k * 2 * MB + 4, got, 1), CUDA_SUCCESS);
		EXPECT_EQ(got[0], k * C + 1);
	}
	/* a MAP over part of a mapping (REMAP at chunk boundaries): b replaces a's chunk 2 */
	EXPECT_EQ(map(vm, b, 0, VA0 + 4 * MB, 2 * MB, 0), 0);
	EXPECT_EQ(kread(base + VA0 + 4 * MB + 4, got, 1), CUDA_SUCCESS);
	EXPECT_EQ(got[0], 7000001);
	EXPECT_EQ(kread(base + VA0 + 6 * MB + 4, got, 1), CUDA_SUCCESS);
	EXPECT_EQ(got[0], 3 * C + 1);
	EXPECT_EQ(kread(base + VA0 + 2 * MB + 4, got, 1), CUDA_SUCCESS);
	EXPECT_EQ(got[0], C + 1);
	/* one UNMAP over every mapping and the holes between */
	EXPECT_EQ(validate(), 0);
	EXPECT_EQ(unmap(vm, VA0, 64 * MB), 0);
	EXPECT_EQ(access_rw(vm, VA0 + 32 * MB, got, 4, false), -EFAULT);
	EXPECT_EQ(d->cuCtxSynchronize(), CUDA_SUCCESS);
	EXPECT_EQ(validate(), 0);
	EXPECT_EQ(vm_del(vm), 0);
}

/*
 * Two bind queues chained by fences: queue A maps once a gate opens (out: a syncobj and a user
 * fence in pinned memory); the stream waits for that user fence and runs a kernel on the BO;
 * queue B unmaps a chunk behind A's out-syncobj and the kernel's completion. Nothing moves
 * before the gate; then each step in order, the kernel's bytes right, no fault.
 */
static void test_two_queues_chain(void)
{
	uint64_t base = 0;
	uint32_t vm = vm_new(&base, 0), bo = bo_new(4 * MB, VMB_PLACE_VRAM, 2 * MB);
	uint32_t mapped = syncobj_new(), kdone = syncobj_new(), unmapped = syncobj_new(), got[1];
	struct gate g;
	EXPECT(vm && bo && mapped && kdone && unmapped);
	struct vmb_bind_queue_create qa = {.vm_id = vm}, qb = {.vm_id = vm};
	EXPECT_EQ(vmb_bind_queue_create(c, &qa), 0);
	EXPECT_EQ(vmb_bind_queue_create(c, &qb), 0);
	EXPECT_EQ(gate_new(&g, 0), 0);
	volatile uint64_t *uf = &pinned[1];
	struct vmb_bind_op m = {.op = VMB_BIND_OP_MAP, .bo_handle = bo, .addr = VA0, .range = 4 * MB};
	struct vmb_sync sa[3] = {sync_in(g.syncobj), sync_out(mapped), ufence_out(uf, 5)};
	EXPECT_EQ(bind_ops(vm, qa.queue_id, &m, 1, sa, 3), 0);
	struct vmb_sync w = {.type = VMB_SYNC_USER_FENCE, .addr = (uintptr_t)uf, .value = 5};
	struct vmb_cuda_stream_sync sw = {.stream = (uintptr_t)S, .syncs = (uintptr_t)&w, .num_syncs = 1};
	EXPECT_EQ(vmb_cuda_stream_wait(c, &sw), 0);
	EXPECT_EQ(cudrv_fill(d, S, base + VA0, 1 << 20, 100, 0), CUDA_SUCCESS);
	EXPECT_EQ(stream_signal(kdone), 0);
	struct vmb_bind_op u = {.op = VMB_BIND_OP_UNMAP, .addr = VA0 + 2 * MB, .range = 2 * MB};
	struct vmb_sync sb[3] = {sync_in(mapped), sync_in(kdone), sync_out(unmapped)};
	EXPECT_EQ(bind_ops(vm, qb.queue_id, &u, 1, sb, 3), 0);
	usleep(100000);
	EXPECT_EQ(*uf, 0);
	EXPECT_EQ(status_of(mapped), VMB_SYNCOBJ_STATUS_PENDING);
	EXPECT_EQ(status_of(kdone), VMB_SYNCOBJ_STATUS_PENDING);
	EXPECT_EQ(status_of(unmapped), VMB_SYNCOBJ_STATUS_PENDING);
	EXPECT_EQ(d->cuStreamQuery(S), CUDA_ERROR_NOT_READY);
	gate_open(&g);
	EXPECT_EQ(wait_syncobj(unmapped, 10000000000ll), 0);
	EXPECT_EQ(*uf, 5);
	EXPECT_EQ(status_of(mapped), VMB_SYNCOBJ_STATUS_OK);
	EXPECT_EQ(status_of(kdone), VMB_SYNCOBJ_STATUS_OK);
	EXPECT_EQ(status_of(unmapped), VMB_SYNCOBJ_STATUS_OK);
	EXPECT_EQ(d->cuStreamSynchronize(S), CUDA_SUCCESS);
	EXPECT_EQ(d->cuCtxSynchronize(), CUDA_SUCCESS); /* no illegal address */
	EXPECT_EQ(access_rw(vm, VA0 + 4 * 7, got, 4, false), 0);
	EXPECT_EQ(got[0], 107);
	EXPECT_EQ(access_rw(vm, VA0 + 2 * MB, got, 4, false), -EFAULT);
	EXPECT_EQ(validate(), 0);
	EXPECT_EQ(vm_del(vm), 0);
}

/*
 * An LR vm: syncobj out-syncs are -EOPNOTSUPP, user fences work; the stream waits for the MAP's
 * user fence, and an UNMAP whose in-syncobj is the kernel's completion waits for it in the call.
 */
static void test_lr_vm(void)
{
	uint64_t base = 0;
	uint32_t vm = vm_new(&base, VMB_VM_CREATE_LR_MODE), bo = bo_new(2 * MB, VMB_PLACE_VRAM, 0);
	uint32_t so = syncobj_new(), kdone = syncobj_new(), got[1];
	EXPECT(vm && bo && so && kdone);
	EXPECT_EQ(pinned_init(), 0);
	volatile uint64_t *uf = &pinned[2];
	struct vmb_bind_op m = {.op = VMB_BIND_OP_MAP, .bo_handle = bo, .addr = VA0, .range = 2 * MB};
	struct vmb_sync s = sync_out(so);
	EXPECT_EQ(bind_ops(vm, 0, &m, 1, &s, 1), -EOPNOTSUPP);
	s = ufence_out(uf, 1);
	EXPECT_EQ(bind_ops(vm, 0, &m, 1, &s, 1), 0);
	m.addr = VA0 + 64 * MB; /* a second view that stays */
	s = ufence_out(uf, 2);
	EXPECT_EQ(bind_ops(vm, 0, &m, 1, &s, 1), 0);
	struct vmb_sync w = {.type = VMB_SYNC_USER_FENCE, .addr = (uintptr_t)uf, .value = 2};
	struct vmb_cuda_stream_sync sw = {.stream = (uintptr_t)S, .syncs = (uintptr_t)&w, .num_syncs = 1};
	EXPECT_EQ(vmb_cuda_stream_wait(c, &sw), 0);
	EXPECT_EQ(cudrv_fill(d, S, base + VA0, 1 << 19, 900, 200000000ull), CUDA_SUCCESS); /* 200 ms */
	EXPECT_EQ(stream_signal(kdone), 0);
	struct vmb_bind_op u = {.op = VMB_BIND_OP_UNMAP, .addr = VA0, .range = 2 * MB};
	struct vmb_sync su[2] = {sync_in(kdone), ufence_out(uf, 3)};
	EXPECT_EQ(bind_ops(vm, 0, &u, 1, su, 2), 0); /* returns once the kernel is done */
	EXPECT_EQ(status_of(kdone), VMB_SYNCOBJ_STATUS_OK);
	EXPECT_EQ(ufence_wait(uf, 3), 0);
	EXPECT_EQ(d->cuStreamSynchronize(S), CUDA_SUCCESS);
	EXPECT_EQ(d->cuCtxSynchronize(), CUDA_SUCCESS);
	EXPECT_EQ(access_rw(vm, VA0, got, 4, false), -EFAULT);
	EXPECT_EQ(access_rw(vm, VA0 + 64 * MB + 4 * 33, got, 4, false), 0);
	EXPECT_EQ(got[0], 933);
	EXPECT_EQ(validate(), 0);
	EXPECT_EQ(vm_del(vm), 0);
}

/* The GPU view (vmb_vm_access): reads what a kernel wrote, writes that a kernel reads, across a
 * chunk boundary and at odd addresses; holes, read-only mappings and overflow refused. */
static void test_vm_access_rw(void)
{
	uint64_t base = 0;
	uint32_t vm = vm_new(&base, 0), bo = bo_new(4 * MB, VMB_PLACE_VRAM, 2 * MB);
	const uint32_t C = (2 * MB) / 4;
	uint32_t got[4], put[4] = {11, 22, 33, 44};
	EXPECT(vm && bo);
	EXPECT_EQ(map(vm, bo, 0, VA0, 4 * MB, 0), 0);
	EXPECT_EQ(map(vm, bo, 0, VA0 + 64 * MB, 2 * MB, VMB_BIND_FLAG_READONLY), 0);
	EXPECT_EQ(cudrv_fill(d, S, base + VA0, 2 * C, 10, 0), CUDA_SUCCESS);
	EXPECT_EQ(d->cuStreamSynchronize(S), CUDA_SUCCESS);
	EXPECT_EQ(access_rw(vm, VA0 + 2 * MB - 8, got, 16, false), 0); /* across the chunks */
	EXPECT_EQ(got[0], 10 + C - 2);
	EXPECT_EQ(got[3], 10 + C + 1);
	EXPECT_EQ(access_rw(vm, VA0 + 2 * MB - 8, put, 16, true), 0);
	EXPECT_EQ(kread(base + VA0 + 2 * MB - 8, got, 4), CUDA_SUCCESS);
	EXPECT(!memcmp(got, put, 16));
	/* odd address and size: bytes 3..7 of words 0 and 1 */
	unsigned char bytes[5], want[8];
	uint32_t w2[2] = {10, 11};
	memcpy(want, w2, 8);
	EXPECT_EQ(access_rw(vm, VA0 + 3, bytes, 5, false), 0);
	EXPECT(!memcmp(bytes, want + 3, 5));
	unsigned char one = 0xab;
	EXPECT_EQ(access_rw(vm, VA0 + 4 * 100 + 1, &one, 1, true), 0);
	EXPECT_EQ(kread(base + VA0 + 4 * 100, got, 1), CUDA_SUCCESS);
	EXPECT_EQ(got[0], (110 & ~0xff00u) | 0xab00u);
	/* the read-only view shows the same bytes and refuses writes */
	EXPECT_EQ(access_rw(vm, VA0 + 64 * MB + 4 * 100, got, 4, false), 0);
	EXPECT_EQ(got[0], (110 & ~0xff00u) | 0xab00u);
	EXPECT_EQ(access_rw(vm, VA0 + 64 * MB, put, 4, true), -EACCES);
	/* a hole: past the mapping's end, far away, past the vm */
	EXPECT_EQ(access_rw(vm, VA0 + 4 * MB - 4, got, 8, false), -EFAULT);
	EXPECT_EQ(access_rw(vm, VA0 + 4 * MB, got, 4, true), -EFAULT);
	EXPECT_EQ(access_rw(vm, 1ull << 40, got, 4, false), -EFAULT);
	EXPECT_EQ(access_rw(vm, ~0ull - 3, got, 8, false), -EINVAL); /* addr + size overflows */
	struct vmb_vm_access bad = {.vm_id = vm + 1000, .addr = VA0, .size = 4, .data = (uintptr_t)got};
	EXPECT_EQ(vmb_vm_access(c, &bad), -ENOENT);
	EXPECT_EQ(d->cuCtxSynchronize(), CUDA_SUCCESS);
	EXPECT_EQ(vm_del(vm), 0);
}

/* vmb_bo_mmap: no CPU mapping of any BO on this device (SYSTEM ones included: docs/UAPI.md, "The
 * CUDA device"); a refused map maps nothing, and the BO still works for kernels. */
static void test_bo_mmap(void)
{
	uint64_t base = 0;
	uint32_t vm = vm_new(&base, 0), sys = bo_new(2 * MB, VMB_PLACE_SYSTEM, 0),
		 both = bo_new(2 * MB, VMB_PLACE_VRAM | VMB_PLACE_SYSTEM, 0), got[1];
	EXPECT(vm && sys && both);
	struct vmb_bo_mmap mm = {.handle = sys};
	EXPECT_EQ(vmb_bo_mmap(c, &mm), -EOPNOTSUPP);
	mm = (struct vmb_bo_mmap){.handle = both};
	EXPECT_EQ(vmb_bo_mmap(c, &mm), -EOPNOTSUPP);
	struct vmb_bo_munmap mu = {.handle = sys};
	EXPECT_EQ(vmb_bo_munmap(c, &mu), -EINVAL); /* nothing was mapped */
	EXPECT_EQ(map(vm, sys, 0, VA0, 2 * MB, 0), 0);
	EXPECT_EQ(kread(base + VA0 + 4 * 77, got, 1), CUDA_SUCCESS);
	EXPECT_EQ(got[0], 0); /* created zeroed */
	EXPECT_EQ(cudrv_fill(d, S, base + VA0, 1024, 50, 0), CUDA_SUCCESS);
	EXPECT_EQ(kread(base + VA0 + 4 * 77, got, 1), CUDA_SUCCESS);
	EXPECT_EQ(got[0], 127);
	EXPECT_EQ(vm_del(vm), 0);
}

/* A BO whose handle is destroyed while mapped: its mapping works (kernels read and write) until
 * unbound, piece by piece. */
static void test_bo_destroyed_while_mapped(void)
{
	uint64_t base = 0;
	uint32_t vm = vm_new(&base, 0), bo = bo_new(4 * MB, VMB_PLACE_VRAM, 2 * MB), got[1];
	const uint32_t C = (2 * MB) / 4;
	EXPECT(vm && bo);
	EXPECT_EQ(map(vm, bo, 0, VA0, 4 * MB, 0), 0);
	EXPECT_EQ(cudrv_fill(d, S, base + VA0, 2 * C, 300, 0), CUDA_SUCCESS);
	struct vmb_bo_destroy bd = {.handle = bo};
	EXPECT_EQ(vmb_bo_destroy(c, &bd), 0);
	EXPECT_EQ(kread(base + VA0 + 2 * MB + 12, got, 1), CUDA_SUCCESS);
	EXPECT_EQ(got[0], 300 + C + 3);
	EXPECT_EQ(cudrv_fill(d, S, base + VA0, 2 * C, 600, 0), CUDA_SUCCESS);
	EXPECT_EQ(d->cuStreamSynchronize(S), CUDA_SUCCESS);
	EXPECT_EQ(validate(), 0);
	EXPECT_EQ(unmap(vm, VA0, 2 * MB), 0);
	EXPECT_EQ(kread(base + VA0 + 2 * MB + 12, got, 1), CUDA_SUCCESS);
	EXPECT_EQ(got[0], 600 + C + 3);
	EXPECT_EQ(access_rw(vm, VA0 + 2 * MB + 12, got, 4, false), 0);
	EXPECT_EQ(got[0], 600 + C + 3);
	EXPECT_EQ(unmap(vm, VA0 + 2 * MB, 2 * MB), 0);
	EXPECT_EQ(access_rw(vm, VA0 + 2 * MB, got, 4, false), -EFAULT);
	EXPECT_EQ(d->cuCtxSynchronize(), CUDA_SUCCESS);
	EXPECT_EQ(validate(), 0);
	EXPECT_EQ(vm_del(vm), 0);
}

/* A vm destroyed with a bind that waits for a gate never opened: the call returns, the bind's
 * out-syncobj signals -ECANCELED and its user fence is written; the gate opening later harms
 * nothing. */
static void test_vm_destroy_gated_bind(void)
{
	uint64_t base = 0;
	uint32_t vm = vm_new(&base, 0), bo = bo_new(2 * MB, VMB_PLACE_VRAM, 0), done = syncobj_new();
	struct gate g;
	EXPECT(vm && bo && done);
	EXPECT_EQ(gate_new(&g, 0), 0);
	volatile uint64_t *uf = &pinned[3];
	struct vmb_bind_op m = {.op = VMB_BIND_OP_MAP, .bo_handle = bo, .addr = VA0, .range = 2 * MB};
	struct vmb_sync s[3] = {sync_in(g.syncobj), sync_out(done), ufence_out(uf, 7)};
	EXPECT_EQ(bind_ops(vm, 0, &m, 1, s, 3), 0);
	EXPECT_EQ(status_of(done), VMB_SYNCOBJ_STATUS_PENDING);
	EXPECT_EQ(vm_del(vm), 0);
	EXPECT_EQ(wait_syncobj(done, 10000000000ll), 0);
	EXPECT_EQ(status_of(done), -ECANCELED);
	EXPECT_EQ(ufence_wait(uf, 7), 0);
	EXPECT_EQ(validate(), 0);
	gate_open(&g);
	EXPECT_EQ(wait_syncobj(g.syncobj, 10000000000ll), 0);
	EXPECT_EQ(d->cuStreamSynchronize(g.s), CUDA_SUCCESS);
	EXPECT_EQ(d->cuCtxSynchronize(), CUDA_SUCCESS);
}

/* The client closed (the device's last) while a stream waits for a bind that waits for a gate:
 * the close neither hangs nor waits for the application's blocked streams (an alarm opens the
 * gate after 5 s and tells), and the stream is released. */
static struct gate close_gate;
static volatile sig_atomic_t close_alarm;

static void on_close_alarm(int sig)
{
	(void)sig;
	close_alarm = 1;
	gate_open(&close_gate);
}

static void test_close_releases_stream(void)
{
	uint64_t base = 0;
	uint32_t vm = vm_new(&base, 0), bo = bo_new(2 * MB, VMB_PLACE_VRAM, 0), bound = syncobj_new();
	EXPECT(vm && bo && bound);
	EXPECT_EQ(gate_new(&close_gate, 0), 0);
	struct vmb_bind_op m = {.op = VMB_BIND_OP_MAP, .bo_handle = bo, .addr = VA0, .range = 2 * MB};
	struct vmb_sync s[2] = {sync_in(close_gate.syncobj), sync_out(bound)};
	EXPECT_EQ(bind_ops(vm, 0, &m, 1, s, 2), 0);
	EXPECT_EQ(stream_wait(bound), 0);
	EXPECT_EQ(d->cuStreamWriteValue64(S, pinned_d + 8 * 4, 1, CU_STREAM_WRITE_VALUE_DEFAULT), CUDA_SUCCESS);
	usleep(50000);
	EXPECT_EQ(pinned[4], 0);
	signal(SIGALRM, on_close_alarm);
	alarm(5);
	int err = vmb_client_close(c);
	int late = close_alarm;
	alarm(0);
	int reopen = vmb_client_open("cuda", NULL, &c); /* (a new device instance) */
	if (reopen)
		c = NULL;
	EXPECT_EQ(err, 0);
	EXPECT_EQ(late, 0); /* 1: the close waited for the gate (the application's stream) */
	EXPECT_EQ(d->cuStreamSynchronize(S), CUDA_SUCCESS);
	EXPECT_EQ(pinned[4], 1);
	EXPECT_EQ(reopen, 0);
	gate_open(&close_gate); /* (its stream's own signal: test_close_pending_signal) */
}

/* The client closed (the device's last) while a stream still has a vmb_cuda_stream_signal
 * ahead of it: once the stream gets there, after the close, it runs on without a fault (what
 * it writes is memory the driver still maps). */
static void test_close_pending_signal(void)
{
	struct gate *g = &close_gate;
	EXPECT_EQ(gate_new(g, 0), 0);
	EXPECT_EQ(d->cuStreamWriteValue64(g->s, pinned_d + 8 * 4, 9, CU_STREAM_WRITE_VALUE_DEFAULT), CUDA_SUCCESS);
	signal(SIGALRM, on_close_alarm);
	alarm(5);
	int err = vmb_client_close(c);
	int late = close_alarm;
	alarm(0);
	gate_open(g); /* the stream reaches its signal now, the device gone */
	CUresult r = d->cuStreamSynchronize(g->s);
	int reopen = vmb_client_open("cuda", NULL, &c);
	if (reopen)
		c = NULL;
	EXPECT_EQ(err, 0);
	EXPECT_EQ(late, 0); /* 1: the close waited for the application's blocked stream */
	EXPECT_EQ(r, CUDA_SUCCESS); /* not CUDA_ERROR_ILLEGAL_ADDRESS (700) */
	EXPECT_EQ(pinned[4], 9);
	EXPECT_EQ(d->cuCtxSynchronize(), CUDA_SUCCESS);
	EXPECT_EQ(reopen, 0);
}

/* PREFETCH VRAM -> SYSTEM -> VRAM of a 4-chunk BO mapped in pieces in two vms: kernels read the
 * bytes right after each move, through every mapping, and a kernel's write while it is in SYSTEM
 * comes back with it. */
static void test_prefetch_chunks_kernel(void)
{
	uint64_t b1 = 0, b2 = 0;
	uint32_t vm = vm_new(&b1, 0), vm2 = vm_new(&b2, 0), bo = bo_new(8 * MB, VMB_PLACE_VRAM | VMB_PLACE_SYSTEM, 2 * MB);
	const uint32_t C = (2 * MB) / 4;
	uint32_t got[1];
	EXPECT(vm && vm2 && bo);
	EXPECT_EQ(map(vm, bo, 0, VA0, 4 * MB, 0), 0);
	EXPECT_EQ(map(vm, bo, 4 * MB, VA0 + 64 * MB, 4 * MB, 0), 0);
	EXPECT_EQ(map(vm2, bo, 0, VA0, 8 * MB, 0), 0);
	EXPECT_EQ(cudrv_fill(d, S, b2 + VA0, 4 * C, 5, 0), CUDA_SUCCESS);
	EXPECT_EQ(d->cuStreamSynchronize(S), CUDA_SUCCESS);
	for (uint32_t region = VMB_REGION_SYSTEM, k = 0; k < 2; k++, region = VMB_REGION_VRAM) {
		struct vmb_bind_op op = {.op = VMB_BIND_OP_PREFETCH, .region = region, .addr = VA0, .range = 2 * MB};
		EXPECT_EQ(bind_ops(vm, 0, &op, 1, NULL, 0), 0);
		struct vmb_bo_query q = {.handle = bo};
		EXPECT_EQ(vmb_bo_query(c, &q), 0);
		EXPECT_EQ(q.region, region);
		EXPECT_EQ(q.chunk_size, 2 * MB);
		EXPECT_EQ(kread(b1 + VA0 + 2 * MB + 4, got, 1), CUDA_SUCCESS);
		EXPECT_EQ(got[0], 5 + C + 1);
		EXPECT_EQ(kread(b1 + VA0 + 64 * MB + 2 * MB + 4 * 9, got, 1), CUDA_SUCCESS);
		EXPECT_EQ(got[0], k ? 70009 : 5 + 3 * C + 9);
		EXPECT_EQ(kread(b2 + VA0 + 4 * MB + 4 * 9, got, 1), CUDA_SUCCESS);
		EXPECT_EQ(got[0], 5 + 2 * C + 9);
		if (!k) { /* a write while in SYSTEM, through vm2 */
			EXPECT_EQ(cudrv_fill(d, S, b2 + VA0 + 6 * MB, 16, 70000, 0), CUDA_SUCCESS);
			EXPECT_EQ(d->cuStreamSynchronize(S), CUDA_SUCCESS);
		}
	}
	EXPECT_EQ(d->cuCtxSynchronize(), CUDA_SUCCESS);
	EXPECT_EQ(validate(), 0);
	EXPECT_EQ(vm_del(vm), 0);
	EXPECT_EQ(vm_del(vm2), 0);
}

/*
 * A PREFETCH when every fence slot is taken (streams wait on a gate through all the others): the
 * device's copy is on its stream but nothing follows it, so the bind fails (-EIO, vm banned) at
 * once; the staging range the copy goes through must outlive the copy (unmapped under a running
 * 256 MiB copy, the GPU faults: CUDA_ERROR_ILLEGAL_ADDRESS, 700, and the context is lost).
 */
#define NSTREAMS 32 /* the slots' waits spread over streams: no stream's queue fills */
static void test_prefetch_no_slot(void)
{
	uint64_t base = 0;
	uint32_t vm = vm_new(&base, 0), bo = bo_new(256 * MB, VMB_PLACE_VRAM | VMB_PLACE_SYSTEM, 2 * MB);
	struct gate g;
	CUstream s[NSTREAMS];
	uint32_t got[1];
	EXPECT(vm && bo);
	EXPECT_EQ(map(vm, bo, 0, VA0, 256 * MB, 0), 0);
	EXPECT_EQ(cudrv_fill(d, S, base + VA0 + 255 * MB, 16, 40, 0), CUDA_SUCCESS);
	EXPECT_EQ(d->cuStreamSynchronize(S), CUDA_SUCCESS);
	EXPECT_EQ(gate_new(&g, 6), 0);
	for (int i = 0; i < NSTREAMS; i++)
		EXPECT_EQ(d->cuStreamCreate(&s[i], CU_STREAM_NON_BLOCKING), CUDA_SUCCESS);
	int err = 0, taken = 0;
	while (!err) {
		struct vmb_sync w = sync_in(g.syncobj);
		struct vmb_cuda_stream_sync a = {.stream = (uintptr_t)s[taken % NSTREAMS], .syncs = (uintptr_t)&w,
						 .num_syncs = 1};
		if (!(err = vmb_cuda_stream_wait(c, &a)))
			taken++;
	}
	struct vmb_bind_op op = {.op = VMB_BIND_OP_PREFETCH, .region = VMB_REGION_SYSTEM, .addr = VA0,
				 .range = 256 * MB};
	int prefetch = bind_ops(vm, 0, &op, 1, NULL, 0);
	gate_open(&g); /* every slot's wait passes: the streams run on */
	CUresult r = CUDA_SUCCESS;
	for (int i = 0; i < NSTREAMS; i++) {
		CUresult ri = d->cuStreamSynchronize(s[i]);
		r = r ? r : ri;
		d->cuStreamDestroy(s[i]);
	}
	EXPECT_EQ(err, -EAGAIN);
	EXPECT(taken > 4000);
	EXPECT_EQ(prefetch, -EIO);
	EXPECT_EQ(r, CUDA_SUCCESS);
	EXPECT_EQ(d->cuCtxSynchronize(), CUDA_SUCCESS); /* 700: the copy faulted */
	struct vmb_bo_query q = {.handle = bo};
	EXPECT_EQ(vmb_bo_query(c, &q), 0);
	EXPECT_EQ(q.region, VMB_REGION_VRAM);
	EXPECT_EQ(kread(base + VA0 + 255 * MB + 4, got, 1), CUDA_SUCCESS); /* the mapping still works */
	EXPECT_EQ(got[0], 41);
	EXPECT_EQ(vm_del(vm), 0);
}

struct own_args {
	uint32_t vm, bo;
	uint32_t v[4];
};

static int own_bo_create(void *arg)
{
	struct own_args *a = arg;
	return (a->bo = bo_new(64 * MB, VMB_PLACE_VRAM, 2 * MB)) ? 0 : -1;
}

static int own_prefetch(void *arg)
{
	struct own_args *a = arg;
	struct vmb_bind_op op = {.op = VMB_BIND_OP_PREFETCH, .region = VMB_REGION_SYSTEM, .addr = VA0,
				 .range = 64 * MB};
	return bind_ops(a->vm, 0, &op, 1, NULL, 0);
}

static int own_access(void *arg)
{
	struct own_args *a = arg;
	return access_rw(a->vm, VA0 + 63 * MB, a->v, 16, false);
}

/*
 * 16 of the application's streams (more than the driver's 8 hardware queues of a context) wait
 * on a fence that has not signalled: every queue of the application's context is blocked. The
 * device's own work runs on its own context's stream (src/dev/cuda/cuda.h, cu_enter_own): a
 * BO's creation (zeroing), a PREFETCH (backing zeroed, chunks copied) and the GPU view each
 * complete meanwhile (before: each waited for the fence, test_prefetch_no_slot hung so).
 */
#define OWN_STREAMS 16
static void test_own_queue(void)
{
	uint64_t base = 0;
	struct own_args a = {.vm = vm_new(&base, 0)};
	uint32_t bo = bo_new(64 * MB, VMB_PLACE_VRAM | VMB_PLACE_SYSTEM, 2 * MB);
	struct gate g;
	CUstream s[OWN_STREAMS];
	EXPECT(a.vm && bo);
	EXPECT_EQ(map(a.vm, bo, 0, VA0, 64 * MB, 0), 0);
	EXPECT_EQ(cudrv_fill(d, S, base + VA0 + 63 * MB, 4, 50, 0), CUDA_SUCCESS);
	EXPECT_EQ(d->cuStreamSynchronize(S), CUDA_SUCCESS);
	EXPECT_EQ(gate_new(&g, 7), 0);
	for (int i = 0; i < OWN_STREAMS; i++) {
		struct vmb_sync w = sync_in(g.syncobj);
		struct vmb_cuda_stream_sync sw = {.syncs = (uintptr_t)&w, .num_syncs = 1};
		EXPECT_EQ(d->cuStreamCreate(&s[i], CU_STREAM_NON_BLOCKING), CUDA_SUCCESS);
		sw.stream = (uintptr_t)s[i];
		EXPECT_EQ(vmb_cuda_stream_wait(c, &sw), 0);
	}
	int created = bounded(own_bo_create, &a, g.word);
	int prefetched = bounded(own_prefetch, &a, g.word);
	int accessed = bounded(own_access, &a, g.word);
	bool gate_was_shut = *g.word == 0;
	gate_open(&g);
	CUresult r = CUDA_SUCCESS;
	for (int i = 0; i < OWN_STREAMS; i++) {
		CUresult ri = d->cuStreamSynchronize(s[i]);
		r = r ? r : ri;
		d->cuStreamDestroy(s[i]);
	}
	EXPECT_EQ(created, 0);
	EXPECT_EQ(prefetched, 0);
	EXPECT_EQ(accessed, 0);
	EXPECT(gate_was_shut);
	EXPECT_EQ(r, CUDA_SUCCESS);
	EXPECT_EQ(a.v[0], 50);
	EXPECT_EQ(a.v[3], 53);
	struct vmb_bo_query q = {.handle = bo};
	EXPECT_EQ(vmb_bo_query(c, &q), 0);
	EXPECT_EQ(q.region, VMB_REGION_SYSTEM);
	struct vmb_bo_destroy bd = {.handle = a.bo};
	EXPECT_EQ(vmb_bo_destroy(c, &bd), 0);
	EXPECT_EQ(vm_del(a.vm), 0);
}

/*
 * BOs created on several threads at once (the device lock shared: each creates and zeroes its
 * chunks through its own staging range on the device's one stream, concurrently) while another
 * thread destroys BOs (their allocations released with no device lock): memory just freed dirty
 * by kernels comes back zero in every chunk, and every mapping reads what was written.
 */
#define ZT 4  /* creating threads */
#define ZB 3  /* BOs each */
#define ZSIZE (32 * MB)
static uint32_t zbos[ZT][ZB], zdirty[ZT * ZB];
static int zerr[ZT + 1];

static void *zero_creator(void *arg)
{
	int t = (int)(intptr_t)arg;
	for (int i = 0; i < ZB && !zerr[t]; i++)
		if (!(zbos[t][i] = bo_new(ZSIZE, VMB_PLACE_VRAM, 2 * MB)))
			zerr[t] = 1;
	return NULL;
}

static void *zero_destroyer(void *arg)
{
	(void)arg;
	for (int i = 0; i < ZT * ZB; i++) {
		struct vmb_bo_destroy bd = {.handle = zdirty[i]};
		if (vmb_bo_destroy(c, &bd))
			zerr[ZT] = 1;
	}
	return NULL;
}

static void test_concurrent_create_zeroed(void)
{
	uint64_t base = 0;
	uint32_t vm = vm_new(&base, 0), got[1];
	const uint32_t C = (2 * MB) / 4;
	EXPECT(vm);
	/* dirty: half the BOs' memory written by kernels, then unmapped, to be freed concurrently */
	for (int i = 0; i < ZT * ZB; i++) {
		EXPECT((zdirty[i] = bo_new(ZSIZE, VMB_PLACE_VRAM, 2 * MB)));
		EXPECT_EQ(map(vm, zdirty[i], 0, VA0, ZSIZE, 0), 0);
		EXPECT_EQ(cudrv_fill(d, S, base + VA0, ZSIZE / 4, 0x5a5a0000u, 0), CUDA_SUCCESS);
		EXPECT_EQ(d->cuStreamSynchronize(S), CUDA_SUCCESS);
		EXPECT_EQ(unmap(vm, VA0, ZSIZE), 0);
	}
	pthread_t th[ZT + 1];
	for (int t = 0; t < ZT; t++)
		EXPECT_EQ(pthread_create(&th[t], NULL, zero_creator, (void *)(intptr_t)t), 0);
	EXPECT_EQ(pthread_create(&th[ZT], NULL, zero_destroyer, NULL), 0);
	for (int t = 0; t <= ZT; t++)
		pthread_join(th[t], NULL);
	for (int t = 0; t <= ZT; t++)
		EXPECT_EQ(zerr[t], 0);
	for (int t = 0; t < ZT; t++)
		for (int i = 0; i < ZB; i++) {
			uint64_t at = VA0 + (uint64_t)(t * ZB + i) * ZSIZE;
			EXPECT_EQ(map(vm, zbos[t][i], 0, at, ZSIZE, 0), 0);
			for (uint32_t k = 0; k < ZSIZE / (2 * MB); k++) {
				EXPECT_EQ(kread(base + at + k * 2 * MB + 4 * (k * 37 % C), got, 1), CUDA_SUCCESS);
				EXPECT_EQ(got[0], 0);
			}
		}
	EXPECT_EQ(cudrv_fill(d, S, base + VA0, (uint32_t)(ZT * ZB * (ZSIZE / 4)), 7, 0), CUDA_SUCCESS);
	EXPECT_EQ(kread(base + VA0 + (uint64_t)ZT * ZB * ZSIZE - 4, got, 1), CUDA_SUCCESS);
	EXPECT_EQ(got[0], 7 + ZT * ZB * (ZSIZE / 4) - 1);
	EXPECT_EQ(validate(), 0);
	EXPECT_EQ(vm_del(vm), 0);
}

/* The errnos of the device's rules, each with nothing changed. */
static void test_errnos(void)
{
	uint64_t base = 0;
	uint32_t vm = vm_new(&base, 0), w = bo_new(8 * MB, VMB_PLACE_VRAM, 0), a = bo_new(8 * MB, VMB_PLACE_VRAM, 2 * MB);
	uint32_t got[1];
	EXPECT(vm && w && a);
	/* not 2 MiB: address, offset, range */
	EXPECT_EQ(map(vm, a, 0, VA0 + MB, 2 * MB, 0), -EINVAL);
	EXPECT_EQ(map(vm, a, MB, VA0, 2 * MB, 0), -EINVAL);
	EXPECT_EQ(map(vm, a, 0, VA0, 3 * MB, 0), -EINVAL);
	EXPECT_EQ(unmap(vm, VA0 + MB, 2 * MB), -EINVAL);
	/* a cut inside a chunk: refused, the old mapping still right for a kernel */
	EXPECT_EQ(map(vm, w, 0, VA0, 8 * MB, 0), 0);
	EXPECT_EQ(cudrv_fill(d, S, base + VA0, (8 * MB) / 4, 0, 0), CUDA_SUCCESS);
	EXPECT_EQ(unmap(vm, VA0 + 2 * MB, 2 * MB), -EINVAL);
	EXPECT_EQ(map(vm, a, 0, VA0 + 6 * MB, 4 * MB, 0), -EINVAL); /* a MAP that would cut w */
	EXPECT_EQ(kread(base + VA0 + 7 * MB, got, 1), CUDA_SUCCESS);
	EXPECT_EQ(got[0], (7 * MB) / 4);
	EXPECT_EQ(validate(), 0);
	/* chunk_size: not a power of two, not dividing the size, below 2 MiB */
	struct vmb_bo_create bc = {.size = 12 * MB, .placements = VMB_PLACE_VRAM, .chunk_size = 6 * MB};
	EXPECT_EQ(vmb_bo_create(c, &bc), -EINVAL);
	bc = (struct vmb_bo_create){.size = 6 * MB, .placements = VMB_PLACE_VRAM, .chunk_size = 4 * MB};
	EXPECT_EQ(vmb_bo_create(c, &bc), -EINVAL);
	bc = (struct vmb_bo_create){.size = 2 * MB, .placements = VMB_PLACE_VRAM, .chunk_size = MB};
	EXPECT_EQ(vmb_bo_create(c, &bc), -EINVAL);
	bc = (struct vmb_bo_create){.size = 3 * MB, .placements = VMB_PLACE_VRAM};
	EXPECT_EQ(vmb_bo_create(c, &bc), -EINVAL);
	/* no such GPU */
	struct vmb_client *c99 = NULL;
	EXPECT_EQ(vmb_client_open("cuda:99", NULL, &c99), -ENODEV);
	/* a user fence in plain malloc memory: the GPU cannot read it */
	uint64_t *heap = calloc(1, 64);
	EXPECT(heap);
	struct vmb_sync uf = {.type = VMB_SYNC_USER_FENCE, .addr = (uintptr_t)heap, .value = 1};
	struct vmb_cuda_stream_sync sw = {.stream = (uintptr_t)S, .syncs = (uintptr_t)&uf, .num_syncs = 1};
	EXPECT_EQ(vmb_cuda_stream_wait(c, &sw), -EFAULT);
	free(heap);
	EXPECT_EQ(d->cuStreamQuery(S), CUDA_SUCCESS); /* nothing queued */
	/* larger than VRAM: -ENOSPC at creation */
	struct vmb_region_query rq = {.region = VMB_REGION_VRAM};
	EXPECT_EQ(vmb_region_query(c, &rq), 0);
	bc = (struct vmb_bo_create){.size = (rq.capacity / (2 * MB) + 1) * 2 * MB, .placements = VMB_PLACE_VRAM};
	EXPECT_EQ(vmb_bo_create(c, &bc), -ENOSPC);
	EXPECT_EQ(d->cuCtxSynchronize(), CUDA_SUCCESS);
	EXPECT_EQ(vm_del(vm), 0);
}

/*
 * Past the free VRAM but within its capacity: the BO is created without backing (bo.h), and the
 * MAP that needs its memory is -ENOSPC, nothing mapped; a kernel still works after.
 */
static void test_vram_full(void)
{
	struct vmb_vm_create vc = {.va_size = 1ull << 38}; /* room for the whole VRAM */
	uint32_t got[1];
	EXPECT_EQ(vmb_vm_create(c, &vc), 0);
	uint32_t vm = vc.vm_id;
	uint64_t base = vc.gpu_base;
	struct vmb_region_query rq = {.region = VMB_REGION_VRAM};
	EXPECT_EQ(vmb_region_query(c, &rq), 0);
	size_t free_b = 0, total = 0;
	EXPECT_EQ(d->cuMemGetInfo(&free_b, &total), CUDA_SUCCESS);
	const uint64_t chunk = 64 * MB; /* ~1300 allocations, not ~40000 */
	uint64_t size = ((uint64_t)free_b / chunk + 1) * chunk; /* up to 64 MiB past the free VRAM */
	if (size > rq.capacity) {
		printf("  (skipped: free VRAM %zu is within 64 MiB of the capacity %llu)\n", free_b,
		       (unsigned long long)rq.capacity);
		return;
	}
	uint32_t big = bo_new(size, VMB_PLACE_VRAM, chunk);
	EXPECT(big);
	EXPECT_EQ(map(vm, big, 0, VA0, size, 0), -ENOSPC);
	EXPECT_EQ(access_rw(vm, VA0, got, 4, false), -EFAULT);
	struct vmb_bo_destroy bd = {.handle = big};
	EXPECT_EQ(vmb_bo_destroy(c, &bd), 0);
	uint32_t small = bo_new(2 * MB, VMB_PLACE_VRAM, 0);
	EXPECT(small);
	EXPECT_EQ(map(vm, small, 0, VA0, 2 * MB, 0), 0);
	EXPECT_EQ(cudrv_fill(d, S, base + VA0, 64, 8, 0), CUDA_SUCCESS);
	EXPECT_EQ(kread(base + VA0 + 4, got, 1), CUDA_SUCCESS);
	EXPECT_EQ(got[0], 9);
	EXPECT_EQ(validate(), 0);
	EXPECT_EQ(vm_del(vm), 0);
}

/* The validator after a sequence of binds checks the device's record against the driver: 0;
 * then a chunk the application unmaps behind the library's back: -EUCLEAN. */
static void test_validate_against_driver(void)
{
	uint64_t base = 0;
	uint32_t vm = vm_new(&base, 0), a = bo_new(8 * MB, VMB_PLACE_VRAM, 2 * MB), w = bo_new(4 * MB, VMB_PLACE_SYSTEM, 0);
	EXPECT(vm && a && w);
	EXPECT_EQ(map(vm, a, 0, VA0, 8 * MB, 0), 0);
	EXPECT_EQ(map(vm, w, 0, VA0 + 16 * MB, 4 * MB, VMB_BIND_FLAG_READONLY), 0);
	EXPECT_EQ(map(vm, 0, 0, VA0 + 32 * MB, 8 * MB, VMB_BIND_FLAG_NULL), 0);
	EXPECT_EQ(unmap(vm, VA0 + 2 * MB, 4 * MB), 0);
	EXPECT_EQ(unmap(vm, VA0 + 34 * MB, 2 * MB), 0);
	EXPECT_EQ(map(vm, a, 2 * MB, VA0 + 34 * MB, 2 * MB, 0), 0);
	EXPECT_EQ(validate(), 0);
	EXPECT_EQ(d->cuMemUnmap(base + VA0 + 6 * MB, 2 * MB), CUDA_SUCCESS);
	EXPECT_EQ(validate(), -EUCLEAN);
	EXPECT_EQ(d->cuCtxSynchronize(), CUDA_SUCCESS);
	EXPECT_EQ(vm_del(vm), 0); /* (its unmap of that chunk warns) */
}

/*
 * A user fence in a BO (VMB_SYNC_BO_USER_FENCE, VMB_UFENCE_WAIT_BO): the library would write it
 * into host pages that are not this device's memory (a kernel reading the BO there sees 0), so
 * the device has no VMB_CAP_USER_FENCE_BO and both are -EOPNOTSUPP, nothing bound.
 */
static void test_bo_user_fence(void)
{
	uint64_t base = 0;
	uint32_t vm = vm_new(&base, 0), bo = bo_new(2 * MB, VMB_PLACE_SYSTEM, 0), got[1];
	EXPECT(vm && bo);
	struct vmb_device_query q = {0};
	EXPECT_EQ(vmb_device_query(c, &q), 0);
	EXPECT(!(q.capabilities & VMB_CAP_USER_FENCE_BO));
	struct vmb_bind_op m = {.op = VMB_BIND_OP_MAP, .bo_handle = bo, .addr = VA0, .range = 2 * MB};
	struct vmb_sync uf = {.type = VMB_SYNC_BO_USER_FENCE, .flags = VMB_SYNC_FLAG_SIGNAL, .handle = bo,
			      .addr = 64, .value = 77};
	int err = bind_ops(vm, 0, &m, 1, &uf, 1);
	if (!err && !kread(base + VA0 + 64, got, 1))
		printf("  (the bind returned 0; a kernel reads %u at the fence's offset, not 77)\n", got[0]);
	EXPECT_EQ(err, -EOPNOTSUPP);
	EXPECT_EQ(access_rw(vm, VA0, got, 4, false), -EFAULT); /* nothing bound */
	struct vmb_user_fence_wait w = {.addr = 64, .value = 77, .mask = ~0ull, .timeout = 0,
					.op = VMB_UFENCE_OP_GTE, .flags = VMB_UFENCE_WAIT_BO, .bo_handle = bo};
	EXPECT_EQ(vmb_user_fence_wait(c, &w), -EOPNOTSUPP);
	EXPECT_EQ(vm_del(vm), 0);
}

/*
 * An asynchronous bind whose commit fails (the 2nd cuMemMap, injected): its out-syncobj carries
 * the error, the driver maps nothing of it, the bind queued behind it ends -EIO, later calls on
 * the vm are -EIO; what was committed before stays mapped (a kernel still reads it).
 */
static void test_async_commit_failure(void)
{
	uint64_t base = 0;
	uint32_t vm = vm_new(&base, 0), a = bo_new(8 * MB, VMB_PLACE_VRAM, 2 * MB), keep = bo_new(2 * MB, VMB_PLACE_VRAM, 0);
	uint32_t s1 = syncobj_new(), s2 = syncobj_new(), got[1];
	struct gate g;
	EXPECT(vm && a && keep && s1 && s2);
	EXPECT_EQ(map(vm, keep, 0, VA0 + 64 * MB, 2 * MB, 0), 0);
	EXPECT_EQ(cudrv_fill(d, S, base + VA0 + 64 * MB, 1 << 19, 3, 0), CUDA_SUCCESS);
	EXPECT_EQ(d->cuStreamSynchronize(S), CUDA_SUCCESS);
	EXPECT_EQ(gate_new(&g, 0), 0);
	struct vmb_bind_op m1 = {.op = VMB_BIND_OP_MAP, .bo_handle = a, .addr = VA0, .range = 8 * MB},
			  m2 = {.op = VMB_BIND_OP_MAP, .bo_handle = keep, .addr = VA0 + 128 * MB, .range = 2 * MB};
	struct vmb_sync y1[2] = {sync_in(g.syncobj), sync_out(s1)}, y2 = sync_out(s2);
	EXPECT_EQ(bind_ops(vm, 0, &m1, 1, y1, 2), 0);
	EXPECT_EQ(bind_ops(vm, 0, &m2, 1, &y2, 1), 0);
	struct vmb_fault_inject fi = {.classes = VMB_INJECT_COMMIT, .flags = VMB_INJECT_ONCE, .nth = 2,
				      .scope = VMB_INJECT_SCOPE_PROCESS, .error = -ENOMEM};
	EXPECT_EQ(vmb_debug_fault_inject(c, &fi), 0);
	gate_open(&g);
	int w = wait_syncobj(s2, 10000000000ll);
	struct vmb_fault_inject off = {.scope = VMB_INJECT_SCOPE_PROCESS, .classes = VMB_INJECT_COMMIT};
	vmb_debug_fault_inject(c, &off);
	EXPECT_EQ(w, 0);
	EXPECT_EQ(status_of(s1), -ENOMEM);
	EXPECT_EQ(status_of(s2), -EIO);
	for (uint64_t at = 0; at < 8 * MB; at += 2 * MB) { /* nothing of the failed bind */
		CUmemGenericAllocationHandle h;
		CUresult r = d->cuMemRetainAllocationHandle(&h, (void *)(uintptr_t)(base + VA0 + at));
		if (!r)
			d->cuMemRelease(h);
		EXPECT(r != CUDA_SUCCESS);
	}
	EXPECT_EQ(map(vm, keep, 0, VA0 + 192 * MB, 2 * MB, 0), -EIO);
	EXPECT_EQ(access_rw(vm, VA0 + 64 * MB, got, 4, false), -EIO);
	EXPECT_EQ(kread(base + VA0 + 64 * MB + 4 * 5, got, 1), CUDA_SUCCESS);
	EXPECT_EQ(got[0], 8);
	EXPECT_EQ(d->cuCtxSynchronize(), CUDA_SUCCESS);
	EXPECT_EQ(validate(), 0);
	EXPECT_EQ(vm_del(vm), 0);
}

/*
 * VRAM full and a MAP that needs room: a BO mapped in a plain vm is not evicted to make it (the
 * library cannot see the kernels using it: moving it would unmap it under them, and a kernel
 * touching it in between faults the context). VRAM is filled by a BO bound in an LR vm (never
 * evicted); `a` (256 MiB) is mapped and used by a kernel; `b` needs more than is free: -ENOSPC,
 * `a` stays in VRAM with the kernel's bytes.
 */
static void test_no_evict_in_use(void)
{
	uint64_t base = 0;
	uint32_t vm = vm_new(&base, 0), got[1];
	struct vmb_vm_create lc = {.flags = VMB_VM_CREATE_LR_MODE, .va_size = 1ull << 38};
	EXPECT(vm);
	EXPECT_EQ(vmb_vm_create(c, &lc), 0);
	EXPECT_EQ(pinned_init(), 0);
	const uint64_t chunk = 64 * MB;
	size_t free_b = 0, total = 0;
	EXPECT_EQ(d->cuMemGetInfo(&free_b, &total), CUDA_SUCCESS);
	if (free_b < 2048 * MB) {
		printf("  (skipped: %zu bytes of VRAM free)\n", free_b);
		return;
	}
	uint64_t fsize = ((uint64_t)free_b - 640 * MB) / chunk * chunk;
	uint32_t fill = bo_new(fsize, VMB_PLACE_VRAM, chunk), a = bo_new(256 * MB, VMB_PLACE_VRAM, 0);
	EXPECT(fill && a);
	struct vmb_sync uf = ufence_out(&pinned[6], 1);
	struct vmb_bind_op fm = {.op = VMB_BIND_OP_MAP, .bo_handle = fill, .addr = VA0, .range = fsize};
	EXPECT_EQ(bind_ops(lc.vm_id, 0, &fm, 1, &uf, 1), 0);
	EXPECT_EQ(ufence_wait(&pinned[6], 1), 0);
	EXPECT_EQ(map(vm, a, 0, VA0, 256 * MB, 0), 0);
	struct vmb_bo_query q = {.handle = a};
	EXPECT_EQ(vmb_bo_query(c, &q), 0);
	EXPECT_EQ(q.region, VMB_REGION_VRAM);
	/* b: more than is free now, less than that plus a */
	EXPECT_EQ(d->cuMemGetInfo(&free_b, &total), CUDA_SUCCESS);
	uint64_t bsize = ((uint64_t)free_b / chunk + 1) * chunk;
	if (bsize + chunk > (uint64_t)free_b + 256 * MB) {
		printf("  (skipped: %zu bytes free after the filler)\n", free_b);
		return;
	}
	uint32_t b = bo_new(bsize, VMB_PLACE_VRAM, chunk);
	EXPECT(b);
	/* 16 blocks spin 2 s, then write: the GPU has room for the device's own work meanwhile */
	EXPECT_EQ(cudrv_fill(d, S, base + VA0, 4096, 20, 2000000000ull), CUDA_SUCCESS);
	EXPECT_EQ(map(vm, b, 0, VA0 + 1024 * MB, bsize, 0), -ENOSPC);
	EXPECT_EQ(vmb_bo_query(c, &q), 0);
	EXPECT_EQ(q.region, VMB_REGION_VRAM); /* not moved under the kernel */
	EXPECT_EQ(d->cuStreamSynchronize(S), CUDA_SUCCESS);
	EXPECT_EQ(kread(base + VA0 + 4 * 1000, got, 1), CUDA_SUCCESS);
	EXPECT_EQ(got[0], 1020);
	struct vmb_region_query rq = {.region = VMB_REGION_VRAM};
	EXPECT_EQ(vmb_region_query(c, &rq), 0);
	EXPECT_EQ(rq.evictions, 0);
	EXPECT_EQ(validate(), 0);
	EXPECT_EQ(vm_del(vm), 0);
	EXPECT_EQ(vm_del(lc.vm_id), 0);
}

/*
 * A BO shared with a second client of the same GPU (export, import): the importer's vm maps the
 * same chunks (a kernel reads through it what one wrote through the exporter's), and a chunk of
 * it can be unbound in one vm while the other keeps it.
 */
static void test_export_import(void)
{
	uint64_t base = 0, base2 = 0;
	uint32_t vm = vm_new(&base, 0), bo = bo_new(4 * MB, VMB_PLACE_VRAM, 2 * MB), got[1];
	EXPECT(vm && bo);
	struct vmb_client *c2 = NULL;
	EXPECT_EQ(vmb_client_open("cuda", NULL, &c2), 0);
	EXPECT_EQ(map(vm, bo, 0, VA0, 4 * MB, 0), 0);
	EXPECT_EQ(cudrv_fill(d, S, base + VA0, 1 << 20, 4000, 0), CUDA_SUCCESS);
	EXPECT_EQ(d->cuStreamSynchronize(S), CUDA_SUCCESS);
	struct vmb_bo_export_fd ex = {.handle = bo};
	EXPECT_EQ(vmb_bo_export_fd(c, &ex), 0);
	struct vmb_bo_import_fd im = {.fd = ex.fd};
	EXPECT_EQ(vmb_bo_import_fd(c2, &im), 0);
	close(ex.fd);
	struct vmb_vm_create vc = {0};
	EXPECT_EQ(vmb_vm_create(c2, &vc), 0);
	base2 = vc.gpu_base;
	EXPECT(base2 != base); /* its own reservation */
	struct vmb_bind_op op = {.op = VMB_BIND_OP_MAP, .bo_handle = im.handle, .addr = VA0 + 64 * MB, .range = 4 * MB};
	struct vmb_vm_bind b = {.vm_id = vc.vm_id, .num_binds = 1, .binds = (uintptr_t)&op};
	EXPECT_EQ(vmb_vm_bind(c2, &b), 0);
	EXPECT_EQ(kread(base2 + VA0 + 64 * MB + 2 * MB + 4 * 3, got, 1), CUDA_SUCCESS);
	EXPECT_EQ(got[0], 4000 + (2 * MB) / 4 + 3);
	EXPECT_EQ(unmap(vm, VA0 + 2 * MB, 2 * MB), 0); /* the exporter's second chunk */
	EXPECT_EQ(cudrv_fill(d, S, base2 + VA0 + 64 * MB + 2 * MB, 16, 9000, 0), CUDA_SUCCESS);
	EXPECT_EQ(kread(base2 + VA0 + 64 * MB + 2 * MB + 4 * 3, got, 1), CUDA_SUCCESS);
	EXPECT_EQ(got[0], 9003);
	EXPECT_EQ(map(vm, bo, 2 * MB, VA0 + 2 * MB, 2 * MB, 0), 0);
	EXPECT_EQ(access_rw(vm, VA0 + 2 * MB + 4 * 3, got, 4, false), 0);
	EXPECT_EQ(got[0], 9003);
	struct vmb_client_validate v = {0};
	EXPECT_EQ(vmb_client_validate(c2, &v), 0);
	EXPECT_EQ(validate(), 0);
	EXPECT_EQ(vmb_client_close(c2), 0);
	EXPECT_EQ(access_rw(vm, VA0 + 2 * MB + 4 * 3, got, 4, false), 0); /* the exporter's view stays */
	EXPECT_EQ(got[0], 9003);
	EXPECT_EQ(vm_del(vm), 0);
}

/* a crash names the case and the frames (stdout to a file is unbuffered: nothing is lost) */
static void on_crash(int sig)
{
	void *frames[32];
	int n = backtrace(frames, 32);
	static const char msg[] = "  CRASH (signal), frames:\n";
	(void)!write(1, msg, sizeof(msg) - 1);
	backtrace_symbols_fd(frames, n, 1);
	signal(sig, SIG_DFL);
	raise(sig);
}

/*
 * fork(): the CUDA driver does not survive it. In the child, the inherited client is -EIO (as
 * on every device) and a new "cuda" client is -ENODEV (the driver was initialised before the
 * fork: every call would fail or misbehave); the parent goes on binding and computing. Failed
 * before the loader's check: the child's vmb_client_open("cuda") retained the primary context
 * of a driver the child cannot use.
 */
static void test_fork_child(void)
{
	fflush(stdout);
	pid_t pid = fork();
	EXPECT(pid >= 0);
	if (pid == 0) {
		struct vmb_client *c2 = NULL;
		struct vmb_syncobj_create sc = {0};
		int code = 0;
		if (vmb_syncobj_create(c, &sc) != -EIO)
			code |= 1;
		if (vmb_client_open("cuda", NULL, &c2) != -ENODEV)
			code |= 2;
		if (vmb_client_open("soft", NULL, &c2) == 0) /* the soft device still works */
			vmb_client_close(c2);
		else
			code |= 4;
		_exit(code);
	}
	int st = 0;
	EXPECT_EQ(waitpid(pid, &st, 0), pid);
	EXPECT(WIFEXITED(st));
	EXPECT_EQ(WEXITSTATUS(st), 0);
	uint64_t base = 0;
	uint32_t vm = vm_new(&base, 0), bo = bo_new(2 * MB, VMB_PLACE_VRAM, 0), got[1];
	EXPECT(vm && bo);
	EXPECT_EQ(map(vm, bo, 0, VA0, 2 * MB, 0), 0);
	EXPECT_EQ(cudrv_fill(d, S, base + VA0, 1024, 9, 0), CUDA_SUCCESS);
	EXPECT_EQ(read_gpu(base + VA0 + 4 * 3, got, 1), CUDA_SUCCESS);
	EXPECT_EQ(got[0], 12);
	EXPECT_EQ(vm_del(vm), 0);
	struct vmb_bo_destroy bd = {.handle = bo};
	EXPECT_EQ(vmb_bo_destroy(c, &bd), 0);
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IONBF, 0);
	signal(SIGSEGV, on_crash);
	signal(SIGBUS, on_crash);
	signal(SIGABRT, on_crash);
	int rc = cudrv_open(d);
	if (rc)
		return rc;
	int err = vmb_client_open("cuda", NULL, &c);
	if (err) {
		printf("FAIL: vmb_client_open(\"cuda\") = %d with a GPU\n", err);
		return 1;
	}
	if (d->cuStreamCreate(&S, CU_STREAM_NON_BLOCKING))
		return 1;
	static const struct expect_case cases[] = {
		CASE(test_bind_kernel_readback), CASE(test_partial_unbind), CASE(test_system_bo),
		CASE(test_kernel_waits_for_bind), CASE(test_unbind_after_kernel), CASE(test_array_all_or_nothing),
		CASE(test_null_reads_zero), CASE(test_prefetch), CASE(test_unsupported), CASE(test_stream_waits_user_fence),
		CASE(test_unmap_then_map_inside), CASE(test_split_merge_chunks), CASE(test_two_queues_chain),
		CASE(test_lr_vm), CASE(test_vm_access_rw), CASE(test_bo_mmap), CASE(test_bo_destroyed_while_mapped),
		CASE(test_vm_destroy_gated_bind), CASE(test_close_releases_stream), CASE(test_close_pending_signal),
		CASE(test_prefetch_chunks_kernel), CASE(test_errnos), CASE(test_vram_full),
		CASE(test_validate_against_driver), CASE(test_bo_user_fence),
		CASE(test_async_commit_failure), CASE(test_no_evict_in_use),
		CASE(test_export_import), CASE(test_fork_child), CASE(test_prefetch_no_slot),
		CASE(test_concurrent_create_zeroed), CASE(test_own_queue),
	};
	printf("GPU %s, driver %d\n", d->name, d->version);
	run_cases(cases, sizeof(cases) / sizeof(cases[0]), argc, argv, NULL);
	if (c)
		vmb_client_close(c);
	printf("%d failed\n", failed);
	return failed ? 1 : 0;
}
