/* SPDX-License-Identifier: MIT */
/*
 * The CUDA device over tests/dev/cuda/fakecuda.c, a stand-in driver (run with it first on
 * LD_LIBRARY_PATH as libcuda.so.1): what a GPU run cannot show cheaply. After each case the
 * device is closed and the fake must hold nothing of it (allocations, mappings, reservations;
 * only the fence page, parked for the process's life), every context the library pushed must be
 * popped, and the fake must have seen no breach of the driver's rules (an unmap that is not one
 * map's range, access set over part of a mapping, a reservation freed with mappings, memory
 * unmapped under a stream's queued copy, a copy reaching memory not mapped). Cases: binds with
 * contents; a stream waiting for a bind and signalling a syncobj; a slot a stream still owes
 * after close stays out of use; a PREFETCH copy with no fence slot left; the close with a stream
 * blocked behind a gated bind; stream points reached or not when the device closes; the parked
 * fence page of a reset context not taken back; creation, destruction, binds and stream points on several
 * threads; a vmb_cuda_stream_wait that fails queues nothing; every failure of the driver's calls
 * in turn (errnos from the headers, nothing leaked); a second device whose own stream cannot be
 * made while an application stream is blocked; a close right after an asynchronous PREFETCH; a
 * fault of the device's own work (its context not parked); an open while the last close still
 * runs. A plain program: exit 0, 1, or 77 (the fake is not loaded). One case by name:
 * test-cuda-fake test_basic.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <vmbind.h>

#include <cuda.h>
#include "../../cuda/expect.h"
#include "core/client.h"
#include "dev/core.h"
#include "dev/cuda/cuda.h"
#include "dev/registry.h"
#include "sync/fence.h"

extern const struct vmb_backend vmb_backend_cuda;

#define MB (1ull << 20)
#define VA0 (1ull << 32)

struct fakecu_counts {
	int allocs, maps, resvs, hosts, streams, errors;
	int ctx; /* contexts pushed and not popped, over all threads */
	int ctxs; /* contexts created (cuCtxCreate_v2) and not destroyed */
};

static void (*fk_counts)(struct fakecu_counts *c, char *err, size_t n);
static void (*fk_fail)(const char *fn, int nth);
static void (*fk_fail_also)(const char *fn, int nth);
static void (*fk_hold)(int on);
static void (*fk_land_at_sync)(CUstream);
static int (*fk_host_replace)(void *);
static int (*fk_fail_left)(void);
static int (*fk_queued)(CUstream);
static CUresult (*drv_retain)(CUcontext *, CUdevice);
static CUresult (*drv_push)(CUcontext);
static CUresult (*drv_stream_create)(CUstream *, unsigned int);
static CUresult (*drv_stream_destroy)(CUstream);
static CUresult (*drv_stream_sync)(CUstream);
static CUresult (*drv_wait64)(CUstream, CUdeviceptr, cuuint64_t, unsigned int);
static CUresult (*drv_write64)(CUstream, CUdeviceptr, cuuint64_t, unsigned int);
static CUresult (*drv_host_alloc)(void **, size_t, unsigned int);
static CUresult (*drv_pop)(CUcontext *);
static CUresult (*drv_memset)(CUdeviceptr, unsigned char, size_t, CUstream);

static struct vmb_client *c;
static int base_hosts; /* the fence page, parked once a device has been */
static int base_errors; /* the fake's breaches already reported */
static int test_pushes; /* contexts this program's threads pushed (never popped) */
static int base_ctxs = 1; /* the device's own contexts, parked for the process's life */


static int one_of(int v, const int *set, int n)
{
	for (int i = 0; i < n; i++)
		if (v == set[i])
			return 1;
	return 0;
}
#define EXPECT_IN(v, ...)                                                                          \
	do {                                                                                       \
		static const int set_[] = {__VA_ARGS__};                                           \
		int v_ = (v);                                                                      \
		if (!one_of(v_, set_, (int)(sizeof(set_) / sizeof(set_[0])))) {                    \
			printf("  FAIL %s:%d: %s == %d, not one of " #__VA_ARGS__ "\n", __FILE__,  \
			       __LINE__, #v, v_);                                                  \
			failed++;                                                                  \
			return;                                                                    \
		}                                                                                  \
	} while (0)

static uint32_t vm_new(uint64_t *base)
{
	struct vmb_vm_create a = {0};
	if (vmb_vm_create(c, &a))
		return 0;
	*base = a.gpu_base;
	return a.vm_id;
}

static int bo_new(uint64_t size, uint32_t place, uint64_t chunk, uint32_t *h)
{
	struct vmb_bo_create a = {.size = size, .placements = place, .chunk_size = chunk};
	int err = vmb_bo_create(c, &a);
	*h = err ? 0 : a.handle;
	return err;
}

static uint32_t syncobj_new(void)
{
	struct vmb_syncobj_create a = {0};
	return vmb_syncobj_create(c, &a) ? 0 : a.handle;
}

static int bind(uint32_t vm, struct vmb_bind_op *op, struct vmb_sync *syncs, uint32_t n)
{
	struct vmb_vm_bind b = {.vm_id = vm, .num_binds = 1, .binds = (uintptr_t)op, .num_syncs = n,
				.syncs = (uintptr_t)syncs, .flags = n ? VMB_VM_BIND_FLAG_ASYNC : 0};
	return vmb_vm_bind(c, &b);
}

static int map(uint32_t vm, uint32_t bo, uint64_t off, uint64_t addr, uint64_t range, uint32_t flags)
{
	struct vmb_bind_op op = {.op = VMB_BIND_OP_MAP, .flags = flags, .bo_handle = bo, .bo_offset = off,
				 .addr = addr, .range = range};
	return bind(vm, &op, NULL, 0);
}

static int prefetch(uint32_t vm, uint64_t addr, uint64_t range, uint32_t region)
{
	struct vmb_bind_op op = {.op = VMB_BIND_OP_PREFETCH, .region = region, .addr = addr, .range = range};
	return bind(vm, &op, NULL, 0);
}

static int access_rw(uint32_t vm, uint64_t addr, void *buf, uint64_t size, bool write)
{
	struct vmb_vm_access a = {.vm_id = vm, .flags = write ? VMB_ACCESS_WRITE : 0, .addr = addr, .size = size,
				  .data = (uintptr_t)buf};
	return vmb_vm_access(c, &a);
}

static int stream_sync(uint64_t stream, uint32_t h, bool signal)
{
	struct vmb_sync s = {.type = VMB_SYNC_SYNCOBJ, .handle = h, .flags = signal ? VMB_SYNC_FLAG_SIGNAL : 0};
	struct vmb_cuda_stream_sync a = {.stream = stream, .syncs = (uintptr_t)&s, .num_syncs = 1};
	return signal ? vmb_cuda_stream_signal(c, &a) : vmb_cuda_stream_wait(c, &a);
}

static int wait_syncobj(uint32_t h)
{
	struct vmb_syncobj_wait w = {.handles = (uintptr_t)&h, .count = 1, .timeout_ns = 20000000000ll,
				     .flags = VMB_SYNCOBJ_WAIT_RELATIVE};
	return vmb_syncobj_wait(c, &w);
}

/* The device closed: the fake holds nothing of it and saw no breach. */
static void expect_clean(void)
{
	struct fakecu_counts n;
	char err[256] = "";
	fk_counts(&n, err, sizeof(err));
	int errors = n.errors - base_errors;
	base_errors = n.errors;
	if (errors)
		printf("  driver rule broken: %s\n", err);
	EXPECT_EQ(errors, 0);
	EXPECT_EQ(n.allocs, 0);
	EXPECT_EQ(n.maps, 0);
	EXPECT_EQ(n.resvs, 0);
	EXPECT_EQ(n.hosts, base_hosts);
	EXPECT_EQ(n.ctx, __atomic_load_n(&test_pushes, __ATOMIC_SEQ_CST)); /* the library's balance */
	EXPECT_EQ(n.ctxs, base_ctxs); /* the devices' own contexts, parked for the next device (never destroyed) */
}

static void reopen(void);

/* The client closed (the device's last): nothing of it left in the fake. */
static void close_check(void)
{
	if (c)
		vmb_client_close(c);
	c = NULL;
	expect_clean();
}

static void reopen(void)
{
	if (c)
		vmb_client_close(c);
	c = NULL;
	if (vmb_client_open("cuda", NULL, &c))
		c = NULL;
}

/* Before each case: a client, if the case before closed it. */
static void reopen_if_closed(void)
{
	if (!c)
		reopen();
}

/* Two non-blocking streams (@gs the one a gate blocks, @s) and a zeroed page of host memory the
 * device maps (@w: the words the tests' gates and stream writes use; counted in base_hosts). */
static CUresult two_streams(CUstream *gs, CUstream *s, volatile uint64_t **w)
{
	void *host;
	CUresult r = drv_stream_create(gs, CU_STREAM_NON_BLOCKING);
	if (!r)
		r = drv_stream_create(s, CU_STREAM_NON_BLOCKING);
	if (!r)
		r = drv_host_alloc(&host, 4096, CU_MEMHOSTALLOC_DEVICEMAP);
	if (r)
		return r;
	base_hosts++;
	memset(host, 0, 4096);
	*w = host;
	return CUDA_SUCCESS;
}

/* two_streams()' streams run to their end, then destroyed: the first failure of the two. */
static CUresult two_streams_end(CUstream gs, CUstream s)
{
	CUresult r = drv_stream_sync(s), rg = drv_stream_sync(gs);
	drv_stream_destroy(s);
	drv_stream_destroy(gs);
	return r ? r : rg;
}

/* binds with contents: chunks written and read back, a partial unmap, NULL, PREFETCH both ways */
static void test_basic(void)
{
	uint64_t base = 0;
	uint32_t vm = vm_new(&base), bo = 0;
	EXPECT(vm);
	EXPECT_EQ(bo_new(8 * MB, VMB_PLACE_VRAM | VMB_PLACE_SYSTEM, 2 * MB, &bo), 0);
	EXPECT_EQ(map(vm, bo, 0, VA0, 8 * MB, 0), 0);
	uint32_t v = 0;
	EXPECT_EQ(access_rw(vm, VA0 + 6 * MB + 4, &v, 4, false), 0);
	EXPECT_EQ(v, 0); /* created zeroed */
	v = 1234;
	EXPECT_EQ(access_rw(vm, VA0 + 6 * MB + 4, &v, 4, true), 0);
	EXPECT_EQ(prefetch(vm, VA0, 8 * MB, VMB_REGION_SYSTEM), 0);
	v = 0;
	EXPECT_EQ(access_rw(vm, VA0 + 6 * MB + 4, &v, 4, false), 0);
	EXPECT_EQ(v, 1234);
	EXPECT_EQ(prefetch(vm, VA0, 8 * MB, VMB_REGION_VRAM), 0);
	v = 0;
	EXPECT_EQ(access_rw(vm, VA0 + 6 * MB + 4, &v, 4, false), 0);
	EXPECT_EQ(v, 1234);
	struct vmb_bind_op un = {.op = VMB_BIND_OP_UNMAP, .addr = VA0 + 2 * MB, .range = 2 * MB};
	EXPECT_EQ(bind(vm, &un, NULL, 0), 0);
	EXPECT_EQ(access_rw(vm, VA0 + 2 * MB, &v, 4, false), -EFAULT);
	EXPECT_EQ(map(vm, 0, 0, VA0 + 64 * MB, 4 * MB, VMB_BIND_FLAG_NULL), 0);
	v = 7;
	EXPECT_EQ(access_rw(vm, VA0 + 66 * MB, &v, 4, false), 0);
	EXPECT_EQ(v, 0);
	/* access set in calls of 64 MiB (set_access): one 70 MiB allocation (the whole BO, no
	 * chunk), 65 chunks of 2 MiB, 100 NULL granules; each call over whole mappings */
	uint32_t big = 0, many = 0;
	EXPECT_EQ(bo_new(70 * MB, VMB_PLACE_VRAM, 0, &big), 0);
	EXPECT_EQ(bo_new(130 * MB, VMB_PLACE_VRAM, 2 * MB, &many), 0);
	EXPECT_EQ(map(vm, big, 0, VA0 + 256 * MB, 70 * MB, 0), 0);
	EXPECT_EQ(map(vm, many, 0, VA0 + 512 * MB, 130 * MB, 0), 0);
	EXPECT_EQ(map(vm, 0, 0, VA0 + 1024 * MB, 200 * MB, VMB_BIND_FLAG_NULL), 0);
	v = 31;
	EXPECT_EQ(access_rw(vm, VA0 + 256 * MB + 69 * MB, &v, 4, true), 0);
	EXPECT_EQ(access_rw(vm, VA0 + 512 * MB + 129 * MB, &v, 4, true), 0);
	v = 0;
	EXPECT_EQ(access_rw(vm, VA0 + 512 * MB + 129 * MB, &v, 4, false), 0);
	EXPECT_EQ(v, 31);
	EXPECT_EQ(access_rw(vm, VA0 + 1024 * MB + 199 * MB, &v, 4, false), 0);
	EXPECT_EQ(v, 0);
	struct vmb_client_validate val = {0};
	EXPECT_EQ(vmb_client_validate(c, &val), 0);
	close_check();
}

/* a stream waits for a bind gated by another stream, and signals a syncobj */
static void test_streams(void)
{
	CUstream gs, s;
	volatile uint64_t *w;
	EXPECT_EQ(two_streams(&gs, &s, &w), CUDA_SUCCESS);
	uint64_t base = 0;
	uint32_t vm = vm_new(&base), bo = 0, gate = syncobj_new(), bound = syncobj_new(), after = syncobj_new();
	EXPECT(vm && gate && bound && after);
	EXPECT_EQ(bo_new(2 * MB, VMB_PLACE_VRAM, 0, &bo), 0);
	EXPECT_EQ(drv_wait64(gs, (CUdeviceptr)(uintptr_t)&w[0], 1, CU_STREAM_WAIT_VALUE_GEQ), CUDA_SUCCESS);
	EXPECT_EQ(stream_sync((uintptr_t)gs, gate, true), 0);
	struct vmb_bind_op op = {.op = VMB_BIND_OP_MAP, .bo_handle = bo, .addr = VA0, .range = 2 * MB};
	struct vmb_sync syncs[2] = {{.type = VMB_SYNC_SYNCOBJ, .handle = gate},
				    {.type = VMB_SYNC_SYNCOBJ, .flags = VMB_SYNC_FLAG_SIGNAL, .handle = bound}};
	EXPECT_EQ(bind(vm, &op, syncs, 2), 0);
	EXPECT_EQ(stream_sync((uintptr_t)s, bound, false), 0);
	EXPECT_EQ(drv_write64(s, (CUdeviceptr)(uintptr_t)&w[1], 5, 0), CUDA_SUCCESS);
	EXPECT_EQ(stream_sync((uintptr_t)s, after, true), 0);
	__atomic_store_n(&w[0], 1, __ATOMIC_RELEASE); /* the gate opens */
	EXPECT_EQ(wait_syncobj(bound), 0);
	EXPECT_EQ(wait_syncobj(after), 0);
	EXPECT_EQ(__atomic_load_n(&w[1], __ATOMIC_ACQUIRE), 5);
	EXPECT_EQ(two_streams_end(gs, s), CUDA_SUCCESS);
	close_check();
}

/* slots until -EAGAIN, each a stream's wait on @h (a fence that has not signalled) */
static int fill_slots(CUstream s, uint32_t h)
{
	int n = 0;
	while (!stream_sync((uintptr_t)s, h, false))
		n++;
	return n;
}

/* A stream_signal still ahead of a stream when the device closes: its slot stays out of use in
 * the next device of the context until the stream has written it (a late write of the old value
 * would undo a newer one's), then comes back. */
static void test_owed_slot(void)
{
	CUstream gs, s;
	volatile uint64_t *w;
	EXPECT_EQ(two_streams(&gs, &s, &w), CUDA_SUCCESS);
	uint32_t late = syncobj_new();
	EXPECT(late);
	EXPECT_EQ(drv_wait64(gs, (CUdeviceptr)(uintptr_t)&w[0], 1, CU_STREAM_WAIT_VALUE_GEQ), CUDA_SUCCESS);
	EXPECT_EQ(stream_sync((uintptr_t)gs, late, true), 0);
	reopen(); /* the signal is owed: its slot is kept out */
	EXPECT(c);
	uint32_t g2 = syncobj_new(), g3 = syncobj_new();
	EXPECT(g2 && g3);
	/* (gs, still blocked, signals g2 later: one slot for it) */
	EXPECT_EQ(stream_sync((uintptr_t)gs, g2, true), 0);
	EXPECT_EQ(fill_slots(s, g2), 4096 - 2);
	__atomic_store_n(&w[0], 1, __ATOMIC_RELEASE); /* the late write, then g2: every wait passes */
	EXPECT_EQ(wait_syncobj(g2), 0);
	EXPECT_EQ(drv_stream_sync(s), CUDA_SUCCESS);
	EXPECT_EQ(drv_stream_sync(gs), CUDA_SUCCESS);
	reopen(); /* written: the slot is free again */
	EXPECT(c);
	uint32_t g4 = syncobj_new();
	EXPECT(g4);
	w[0] = 0;
	EXPECT_EQ(drv_wait64(gs, (CUdeviceptr)(uintptr_t)&w[0], 1, CU_STREAM_WAIT_VALUE_GEQ), CUDA_SUCCESS);
	EXPECT_EQ(stream_sync((uintptr_t)gs, g4, true), 0);
	EXPECT_EQ(fill_slots(s, g4), 4096 - 1);
	__atomic_store_n(&w[0], 1, __ATOMIC_RELEASE);
	EXPECT_EQ(wait_syncobj(g4), 0);
	EXPECT_EQ(two_streams_end(gs, s), CUDA_SUCCESS);
	close_check();
}

/* A PREFETCH when no fence slot is free: the copy is queued on the device's stream with nothing
 * following it, the bind fails -EIO, and the staging range the copy goes through must not be
 * unmapped before the copy has run (the fake holds the streams until they are synchronised). */
static void test_prefetch_no_slot(void)
{
	CUstream gs, s;
	volatile uint64_t *w;
	EXPECT_EQ(two_streams(&gs, &s, &w), CUDA_SUCCESS);
	uint64_t base = 0;
	uint32_t vm = vm_new(&base), bo = 0, gate = syncobj_new();
	EXPECT(vm && gate);
	EXPECT_EQ(bo_new(4 * MB, VMB_PLACE_VRAM | VMB_PLACE_SYSTEM, 2 * MB, &bo), 0);
	EXPECT_EQ(map(vm, bo, 0, VA0, 4 * MB, 0), 0);
	uint32_t v = 99;
	EXPECT_EQ(access_rw(vm, VA0 + 8, &v, 4, true), 0);
	EXPECT_EQ(drv_wait64(gs, (CUdeviceptr)(uintptr_t)&w[0], 1, CU_STREAM_WAIT_VALUE_GEQ), CUDA_SUCCESS);
	EXPECT_EQ(stream_sync((uintptr_t)gs, gate, true), 0);
	EXPECT(fill_slots(s, gate) > 4000);
	fk_hold(1);
	int err = prefetch(vm, VA0, 4 * MB, VMB_REGION_SYSTEM);
	fk_hold(0);
	__atomic_store_n(&w[0], 1, __ATOMIC_RELEASE);
	EXPECT_EQ(wait_syncobj(gate), 0);
	EXPECT_EQ(two_streams_end(gs, s), CUDA_SUCCESS);
	EXPECT_EQ(err, -EIO);
	struct vmb_bo_query q = {.handle = bo};
	EXPECT_EQ(vmb_bo_query(c, &q), 0);
	EXPECT_EQ(q.region, VMB_REGION_VRAM);
	close_check();
}

struct own_args {
	uint32_t vm, bo;
	uint32_t v;
};

static int own_bo_create(void *arg)
{
	struct own_args *a = arg;
	return bo_new(4 * MB, VMB_PLACE_VRAM, 2 * MB, &a->bo);
}

static int own_prefetch(void *arg)
{
	struct own_args *a = arg;
	return prefetch(a->vm, VA0, 4 * MB, VMB_REGION_SYSTEM);
}

static int own_access(void *arg)
{
	struct own_args *a = arg;
	return access_rw(a->vm, VA0 + 8, &a->v, 4, false);
}

/*
 * The driver runs a context's streams on a few hardware queues, in order (the fake: 8, as
 * CUDA_DEVICE_MAX_CONNECTIONS): with eight of the application's streams waiting on a fence that
 * has not signalled, every queue of its context is blocked. The device's own work (a BO's
 * zeroing, a PREFETCH's copy, the GPU view) must not queue behind them: each of these calls
 * completes while the streams still wait (before: each hung until the fence signalled; on the
 * H100 the GPU suite's test_prefetch_no_slot hung so, the fence waiting for the test itself).
 */
#define OWN_STREAMS 8
static void test_own_queue(void)
{
	CUstream gs, s[OWN_STREAMS];
	volatile uint64_t *w;
	EXPECT_EQ(two_streams(&gs, &s[0], &w), CUDA_SUCCESS);
	for (int i = 1; i < OWN_STREAMS; i++)
		EXPECT_EQ(drv_stream_create(&s[i], CU_STREAM_NON_BLOCKING), CUDA_SUCCESS);
	uint64_t base = 0;
	struct own_args a = {.vm = vm_new(&base)};
	uint32_t gate = syncobj_new(), bo = 0;
	EXPECT(a.vm && gate);
	EXPECT_EQ(bo_new(4 * MB, VMB_PLACE_VRAM | VMB_PLACE_SYSTEM, 2 * MB, &bo), 0);
	EXPECT_EQ(map(a.vm, bo, 0, VA0, 4 * MB, 0), 0);
	uint32_t v = 77;
	EXPECT_EQ(access_rw(a.vm, VA0 + 8, &v, 4, true), 0);
	EXPECT_EQ(drv_wait64(gs, (CUdeviceptr)(uintptr_t)&w[0], 1, CU_STREAM_WAIT_VALUE_GEQ), CUDA_SUCCESS);
	EXPECT_EQ(stream_sync((uintptr_t)gs, gate, true), 0);
	for (int i = 0; i < OWN_STREAMS; i++)
		EXPECT_EQ(stream_sync((uintptr_t)s[i], gate, false), 0);
	EXPECT_EQ(bounded(own_bo_create, &a, &w[0]), 0);
	EXPECT_EQ(bounded(own_prefetch, &a, &w[0]), 0);
	EXPECT_EQ(bounded(own_access, &a, &w[0]), 0);
	EXPECT_EQ(a.v, 77);
	EXPECT_EQ(__atomic_load_n(&w[0], __ATOMIC_ACQUIRE), 0); /* (none of them needed the gate) */
	__atomic_store_n(&w[0], 1, __ATOMIC_RELEASE);
	EXPECT_EQ(wait_syncobj(gate), 0);
	for (int i = 0; i < OWN_STREAMS; i++) {
		EXPECT_EQ(drv_stream_sync(s[i]), CUDA_SUCCESS);
		drv_stream_destroy(s[i]);
	}
	EXPECT_EQ(drv_stream_sync(gs), CUDA_SUCCESS);
	drv_stream_destroy(gs);
	struct vmb_bo_query q = {.handle = bo};
	EXPECT_EQ(vmb_bo_query(c, &q), 0);
	EXPECT_EQ(q.region, VMB_REGION_SYSTEM);
	close_check();
}

/*
 * The close of the last client while a stream waits for a bind gated by another stream's point:
 * the bind is cancelled, the waiting stream released (its slot written), the gate's pending
 * point left owed; the gate opening later harms nothing.
 */
static void test_close_blocked(void)
{
	CUstream gs, s;
	volatile uint64_t *w;
	EXPECT_EQ(two_streams(&gs, &s, &w), CUDA_SUCCESS);
	uint64_t base = 0;
	uint32_t vm = vm_new(&base), bo = 0, gate = syncobj_new(), bound = syncobj_new();
	EXPECT(vm && gate && bound);
	EXPECT_EQ(bo_new(2 * MB, VMB_PLACE_VRAM, 0, &bo), 0);
	EXPECT_EQ(drv_wait64(gs, (CUdeviceptr)(uintptr_t)&w[0], 1, CU_STREAM_WAIT_VALUE_GEQ), CUDA_SUCCESS);
	EXPECT_EQ(stream_sync((uintptr_t)gs, gate, true), 0);
	struct vmb_bind_op op = {.op = VMB_BIND_OP_MAP, .bo_handle = bo, .addr = VA0, .range = 2 * MB};
	struct vmb_sync syncs[2] = {{.type = VMB_SYNC_SYNCOBJ, .handle = gate},
				    {.type = VMB_SYNC_SYNCOBJ, .flags = VMB_SYNC_FLAG_SIGNAL, .handle = bound}};
	EXPECT_EQ(bind(vm, &op, syncs, 2), 0);
	EXPECT_EQ(stream_sync((uintptr_t)s, bound, false), 0);
	EXPECT_EQ(drv_write64(s, (CUdeviceptr)(uintptr_t)&w[1], 3, 0), CUDA_SUCCESS);
	close_check();
	EXPECT_EQ(drv_stream_sync(s), CUDA_SUCCESS); /* released by the close */
	EXPECT_EQ(__atomic_load_n(&w[1], __ATOMIC_ACQUIRE), 3);
	__atomic_store_n(&w[0], 1, __ATOMIC_RELEASE); /* the gate's point, the device gone */
	EXPECT_EQ(drv_stream_sync(gs), CUDA_SUCCESS);
	drv_stream_destroy(s);
	drv_stream_destroy(gs);
	reopen();
	EXPECT(c);
	close_check();
}

/*
 * Stream points pending when the device closes: one its stream has reached (the slot written
 * after the watcher's last look: the fake lands the write in the close's first synchronisation)
 * is done and signals 0; one its stream has not reached (behind a gate) signals -ENODEV and its
 * slot stays owed. The points are the device's own (cu_signal_on), so that their fences outlive
 * the close and can be looked at.
 */
static void test_reached_at_close(void)
{
	CUstream gs, s;
	volatile uint64_t *w;
	EXPECT_EQ(two_streams(&gs, &s, &w), CUDA_SUCCESS);
	reopen();
	EXPECT(c);
	struct cu_device *cd = to_cu(c->dev);
	struct vmb_fence *done = vmb_fence_create(), *owed = vmb_fence_create();
	EXPECT(done && owed);
	fk_land_at_sync(s);
	EXPECT_EQ(cu_signal_on(cd, s, done), 0);
	EXPECT_EQ(drv_wait64(gs, (CUdeviceptr)(uintptr_t)&w[0], 1, CU_STREAM_WAIT_VALUE_GEQ), CUDA_SUCCESS);
	EXPECT_EQ(cu_signal_on(cd, gs, owed), 0);
	close_check();
	EXPECT(vmb_fence_is_signalled(done));
	EXPECT_EQ(vmb_fence_error(done), 0);
	EXPECT(vmb_fence_is_signalled(owed));
	EXPECT_EQ(vmb_fence_error(owed), -ENODEV);
	vmb_fence_unref(done);
	vmb_fence_unref(owed);
	__atomic_store_n(&w[0], 1, __ATOMIC_RELEASE);
	EXPECT_EQ(two_streams_end(gs, s), CUDA_SUCCESS);
	reopen();
	EXPECT(c);
	close_check();
}

/*
 * The parked fence page after its context was reset: the page went with the context, and the
 * application's own pinned memory may now be at its address (the fake: the same address, pinned,
 * another allocation). The next device must not take it (its slots would be the application's
 * memory): a new page; that one is taken back by the device after.
 */
static void test_parked_replaced(void)
{
	reopen();
	EXPECT(c);
	volatile uint64_t *old = to_cu(c->dev)->fences.host;
	close_check(); /* parked */
	EXPECT_EQ(fk_host_replace((void *)old), 0);
	base_hosts++; /* the application's allocation now */
	reopen();
	EXPECT(c);
	volatile uint64_t *now = to_cu(c->dev)->fences.host;
	EXPECT(now != old);
	reopen();
	EXPECT(c);
	EXPECT(to_cu(c->dev)->fences.host == now);
	close_check();
}

/*
 * Several threads at once (device lock shared): BOs created (each zeroed through its own
 * staging range on the device's one stream) and destroyed (released with no device lock), binds
 * and GPU-view reads in a vm, stream points round trips, PREFETCHes back and forth of another
 * BO (its contents kept). Every new BO reads zero; under TSan, no race.
 */
#define CT 3
#define CROUNDS 6
static uint32_t cvm;
static int cerr[CT + 2];

static void *conc_creator(void *arg)
{
	int t = (int)(intptr_t)arg;
	for (int i = 0; i < CROUNDS && !cerr[t]; i++) {
		uint32_t bo = 0, v = 1;
		uint64_t at = VA0 + (uint64_t)(t * CROUNDS + i) * 8 * MB;
		if (bo_new(6 * MB, VMB_PLACE_VRAM, 2 * MB, &bo) || map(cvm, bo, 0, at, 6 * MB, 0) ||
		    access_rw(cvm, at + 4 * MB + 12, &v, 4, false) || v) {
			cerr[t] = 1;
			break;
		}
		v = 0xdead;
		struct vmb_bind_op un = {.op = VMB_BIND_OP_UNMAP, .addr = at, .range = 6 * MB};
		struct vmb_bo_destroy bd = {.handle = bo};
		if (access_rw(cvm, at + 4 * MB + 12, &v, 4, true) || bind(cvm, &un, NULL, 0) || vmb_bo_destroy(c, &bd))
			cerr[t] = 2;
	}
	return NULL;
}

static void *conc_streams(void *arg)
{
	CUstream s;
	CUcontext ctx;
	if (drv_retain(&ctx, 0) || drv_push(ctx)) {
		cerr[CT] = 1;
		return NULL;
	}
	__atomic_fetch_add(&test_pushes, 1, __ATOMIC_SEQ_CST);
	if (drv_stream_create(&s, CU_STREAM_NON_BLOCKING)) {
		cerr[CT] = 1;
		return NULL;
	}
	for (int i = 0; i < 4 * CROUNDS && !cerr[CT]; i++) {
		uint32_t h = syncobj_new();
		if (!h || stream_sync((uintptr_t)s, h, true) || stream_sync((uintptr_t)s, h, false) || wait_syncobj(h))
			cerr[CT] = 2;
		struct vmb_syncobj_destroy d = {.handle = h};
		vmb_syncobj_destroy(c, &d);
	}
	if (drv_stream_sync(s))
		cerr[CT] = 3;
	drv_stream_destroy(s);
	return NULL;
}

static void *conc_prefetch(void *arg)
{
	uint32_t bo = 0, v = 77;
	uint64_t at = VA0 + 1024 * MB;
	if (bo_new(4 * MB, VMB_PLACE_VRAM | VMB_PLACE_SYSTEM, 2 * MB, &bo) || map(cvm, bo, 0, at, 4 * MB, 0) ||
	    access_rw(cvm, at + 2 * MB + 40, &v, 4, true)) {
		cerr[CT + 1] = 1;
		return NULL;
	}
	for (int i = 0; i < 2 * CROUNDS && !cerr[CT + 1]; i++) {
		v = 0;
		if (prefetch(cvm, at, 4 * MB, i & 1 ? VMB_REGION_VRAM : VMB_REGION_SYSTEM) ||
		    access_rw(cvm, at + 2 * MB + 40, &v, 4, false) || v != 77)
			cerr[CT + 1] = 2;
	}
	return NULL;
}

static void test_concurrent(void)
{
	uint64_t base = 0;
	EXPECT((cvm = vm_new(&base)));
	pthread_t th[CT + 2];
	memset(cerr, 0, sizeof(cerr));
	for (int t = 0; t < CT; t++)
		EXPECT_EQ(pthread_create(&th[t], NULL, conc_creator, (void *)(intptr_t)t), 0);
	EXPECT_EQ(pthread_create(&th[CT], NULL, conc_streams, NULL), 0);
	EXPECT_EQ(pthread_create(&th[CT + 1], NULL, conc_prefetch, NULL), 0);
	for (int t = 0; t <= CT + 1; t++)
		pthread_join(th[t], NULL);
	for (int t = 0; t <= CT + 1; t++)
		EXPECT_EQ(cerr[t], 0);
	close_check();
}

/*
 * "A failed call changes nothing" (UAPI.md): a vmb_cuda_stream_wait of two pending syncobjs with
 * one fence slot left is -EAGAIN and must leave nothing queued on the stream; nor one of two user
 * fences the second of which the device cannot read (-EFAULT).
 */
static void test_stream_wait_partial(void)
{
	CUstream gs, s, t;
	volatile uint64_t *w;
	EXPECT_EQ(two_streams(&gs, &s, &w), CUDA_SUCCESS);
	EXPECT_EQ(drv_stream_create(&t, CU_STREAM_NON_BLOCKING), CUDA_SUCCESS);
	/* a fresh device (every slot free but those owed: counted, not assumed), then three
	 * signal points behind a gate and waits on them through every slot but one */
	reopen();
	EXPECT(c);
	uint32_t gate = syncobj_new(), a = syncobj_new(), b = syncobj_new();
	EXPECT(gate && a && b);
	EXPECT_EQ(drv_wait64(gs, (CUdeviceptr)(uintptr_t)&w[0], 1, CU_STREAM_WAIT_VALUE_GEQ), CUDA_SUCCESS);
	EXPECT_EQ(stream_sync((uintptr_t)gs, gate, true), 0);
	EXPECT_EQ(stream_sync((uintptr_t)gs, a, true), 0);
	EXPECT_EQ(stream_sync((uintptr_t)gs, b, true), 0);
	int n = fill_slots(s, gate); /* (nothing gives a slot back while the gate is shut) */
	EXPECT(n > 4000);
	__atomic_store_n(&w[0], 1, __ATOMIC_RELEASE);
	EXPECT_EQ(wait_syncobj(b), 0);
	EXPECT_EQ(drv_stream_sync(s), CUDA_SUCCESS);
	EXPECT_EQ(drv_stream_sync(gs), CUDA_SUCCESS);
	reopen(); /* the same count free again */
	EXPECT(c);
	w[0] = 0;
	gate = syncobj_new(), a = syncobj_new(), b = syncobj_new();
	EXPECT(gate && a && b);
	EXPECT_EQ(drv_wait64(gs, (CUdeviceptr)(uintptr_t)&w[0], 1, CU_STREAM_WAIT_VALUE_GEQ), CUDA_SUCCESS);
	EXPECT_EQ(stream_sync((uintptr_t)gs, gate, true), 0);
	EXPECT_EQ(stream_sync((uintptr_t)gs, a, true), 0);
	EXPECT_EQ(stream_sync((uintptr_t)gs, b, true), 0);
	for (int i = 0; i < n - 1; i++)
		EXPECT_EQ(stream_sync((uintptr_t)s, gate, false), 0);
	struct vmb_sync two[2] = {{.type = VMB_SYNC_SYNCOBJ, .handle = a}, {.type = VMB_SYNC_SYNCOBJ, .handle = b}};
	struct vmb_cuda_stream_sync args = {.stream = (uintptr_t)t, .syncs = (uintptr_t)two, .num_syncs = 2};
	int err = vmb_cuda_stream_wait(c, &args);
	int queued = fk_queued(t);
	/* two user fences, the second in memory the device cannot read */
	static uint64_t pageable;
	struct vmb_sync uf[2] = {{.type = VMB_SYNC_USER_FENCE, .addr = (uintptr_t)&w[8], .value = 1},
				 {.type = VMB_SYNC_USER_FENCE, .addr = (uintptr_t)&pageable, .value = 1}};
	struct vmb_cuda_stream_sync args2 = {.stream = (uintptr_t)t, .syncs = (uintptr_t)uf, .num_syncs = 2};
	int err2 = vmb_cuda_stream_wait(c, &args2);
	int queued2 = fk_queued(t);
	w[8] = 1;
	__atomic_store_n(&w[0], 1, __ATOMIC_RELEASE);
	EXPECT_EQ(wait_syncobj(b), 0);
	EXPECT_EQ(drv_stream_sync(s), CUDA_SUCCESS);
	EXPECT_EQ(drv_stream_sync(gs), CUDA_SUCCESS);
	EXPECT_EQ(drv_stream_sync(t), CUDA_SUCCESS);
	drv_stream_destroy(s);
	drv_stream_destroy(gs);
	drv_stream_destroy(t);
	EXPECT_EQ(err, -EAGAIN);
	EXPECT_EQ(queued, 0);
	EXPECT_EQ(err2, -EFAULT);
	EXPECT_EQ(queued2, 0);
	close_check();
}

/* A second device of the GPU, made and destroyed as the registry does (vmb_device_attach, put):
 * what a close still running while the next open comes sees (the first holds its own context) */
static int second_device(void *arg)
{
	struct vmb_device *d = NULL;
	int err = vmb_backend_cuda.create_at(NULL, 0, &d);
	(void)arg;
	if (err)
		return err;
	if (!(err = vmb_device_core_init(d, NULL)))
		vmb_device_core_fini(d);
	d->ops->destroy(d);
	return err;
}

/*
 * The own context of a second device whose stream cannot be created, while an application stream
 * is blocked on a gate: the open fails at once (cuCtxDestroy of the half-made context would wait
 * for every context's work, the gated stream's too), and the context is not lost: the next such
 * open takes it and makes its stream.
 */
static void test_own_stream_fails(void)
{
	CUstream gs, s;
	volatile uint64_t *w;
	struct fakecu_counts n;
	EXPECT_EQ(two_streams(&gs, &s, &w), CUDA_SUCCESS);
	EXPECT(c); /* holds the parked context */
	EXPECT_EQ(drv_wait64(gs, (CUdeviceptr)(uintptr_t)&w[0], 1, CU_STREAM_WAIT_VALUE_GEQ), CUDA_SUCCESS);
	fk_fail("cuStreamCreate", 1);
	int err = bounded(second_device, NULL, &w[0]);
	fk_fail("", 0);
	fk_counts(&n, NULL, 0);
	int after_fail = n.ctxs;
	/* the next takes it: its push failing (the open's second push) parks it again */
	fk_fail("cuCtxPushCurrent", 2);
	int err_push = bounded(second_device, NULL, &w[0]);
	int push_left = fk_fail_left();
	fk_fail("", 0);
	EXPECT_EQ(bounded(second_device, NULL, &w[0]), 0);
	fk_counts(&n, NULL, 0);
	base_ctxs = n.ctxs;
	base_hosts++; /* the second device's fence page, parked */
	__atomic_store_n(&w[0], 1, __ATOMIC_RELEASE);
	EXPECT_EQ(drv_stream_sync(gs), CUDA_SUCCESS);
	drv_stream_destroy(s);
	drv_stream_destroy(gs);
	EXPECT_EQ(err, -ENOMEM);
	EXPECT_EQ(err_push, -ENODEV);
	EXPECT_EQ(push_left, 0);
	EXPECT_EQ(n.ctxs, after_fail); /* the failed open's context, taken by the next one */
	EXPECT_EQ(n.ctxs, 2);
	close_check();
}

/*
 * The close of the last client right after an asynchronous PREFETCH: its copy may still be on the
 * device's own stream. Nothing may be unmapped under it (the fake: a GPU fault), and the own
 * stream, parked, is idle and error-free for the next device (its first zeroing works).
 */
static void test_close_prefetch(void)
{
	int was = failed;
	for (int round = 0; round < 8; round++) {
		reopen();
		EXPECT(c);
		uint64_t base = 0;
		uint32_t vm = vm_new(&base), bo = 0, done = syncobj_new();
		EXPECT(vm && done);
		EXPECT_EQ(bo_new(32 * MB, VMB_PLACE_VRAM | VMB_PLACE_SYSTEM, 2 * MB, &bo), 0);
		EXPECT_EQ(map(vm, bo, 0, VA0, 32 * MB, 0), 0);
		struct vmb_bind_op op = {.op = VMB_BIND_OP_PREFETCH, .region = round & 1 ? VMB_REGION_VRAM : VMB_REGION_SYSTEM,
					 .addr = VA0, .range = 32 * MB};
		struct vmb_sync sig = {.type = VMB_SYNC_SYNCOBJ, .flags = VMB_SYNC_FLAG_SIGNAL, .handle = done};
		EXPECT_EQ(bind(vm, &op, &sig, 1), 0);
		close_check();
		if (failed != was)
			return;
	}
	reopen();
	EXPECT(c);
	uint32_t bo = 0;
	EXPECT_EQ(bo_new(2 * MB, VMB_PLACE_VRAM, 0, &bo), 0);
	close_check();
}

/*
 * A fault of the device's own work (the fake: a memset to memory nothing maps, on the own stream
 * with the own context current): the context's error is sticky, every later call in it fails. The
 * close must not park it: the next device of the GPU gets a context that works (its zeroing).
 */
static void test_own_fault(void)
{
	reopen();
	EXPECT(c);
	struct cu_device *cd = to_cu(c->dev);
	CUcontext top;
	EXPECT_EQ(drv_push(cd->wctx), CUDA_SUCCESS);
	CUresult r = drv_memset((CUdeviceptr)4096, 0, 8, cd->stream);
	CUresult sr = drv_stream_sync(cd->stream);
	drv_pop(&top);
	EXPECT_EQ(r, CUDA_SUCCESS);
	EXPECT_EQ(sr, CUDA_ERROR_ILLEGAL_ADDRESS);
	base_errors++; /* the fault, the fake's breach */
	close_check();
	reopen();
	EXPECT(c);
	uint32_t bo = 0;
	EXPECT_EQ(bo_new(2 * MB, VMB_PLACE_VRAM, 0, &bo), 0);
	struct fakecu_counts n;
	fk_counts(&n, NULL, 0);
	/* the faulted one dropped, neither destroyed nor parked: a new one unless another was parked */
	EXPECT_IN(n.ctxs - base_ctxs, 0, 1);
	base_ctxs = n.ctxs;
	close_check();
}

/*
 * An open while the last close of the GPU's device is still running (its destroy runs without the
 * registry's lock): two devices at once, each with an own context (own_get, own_lock). The fake
 * holds the close in its synchronisation of the own stream (fakecu_land_at_sync: an application
 * stream gated first). The new device works meanwhile (a BO zeroed, an access) and, closed, leaves
 * nothing but parked contexts and fence pages: at most one more of each than before.
 */
static void *close_main(void *arg)
{
	vmb_client_close(arg);
	return NULL;
}

static void test_open_during_close(void)
{
	CUstream gs, s;
	volatile uint64_t *w;
	EXPECT_EQ(two_streams(&gs, &s, &w), CUDA_SUCCESS);
	reopen();
	EXPECT(c);
	EXPECT_EQ(drv_wait64(gs, (CUdeviceptr)(uintptr_t)&w[0], 1, CU_STREAM_WAIT_VALUE_GEQ), CUDA_SUCCESS);
	fk_land_at_sync(gs);
	pthread_t th;
	EXPECT_EQ(pthread_create(&th, NULL, close_main, c), 0);
	c = NULL;
	usleep(100000); /* (the close likely in its synchronisation: the case holds either way) */
	reopen();
	uint64_t base = 0;
	uint32_t vm = c ? vm_new(&base) : 0, bo = 0, v = 9;
	int e1 = c ? bo_new(2 * MB, VMB_PLACE_VRAM, 0, &bo) : -1;
	int e2 = bo ? map(vm, bo, 0, VA0, 2 * MB, 0) : -1;
	int e3 = e2 ? -1 : access_rw(vm, VA0, &v, 4, true);
	__atomic_store_n(&w[0], 1, __ATOMIC_RELEASE);
	pthread_join(th, NULL);
	EXPECT_EQ(drv_stream_sync(gs), CUDA_SUCCESS);
	drv_stream_destroy(s);
	drv_stream_destroy(gs);
	EXPECT(vm);
	EXPECT_EQ(e1, 0);
	EXPECT_EQ(e2, 0);
	EXPECT_EQ(e3, 0);
	if (c)
		vmb_client_close(c);
	c = NULL;
	struct fakecu_counts n;
	fk_counts(&n, NULL, 0);
	EXPECT_IN(n.ctxs - base_ctxs, 0, 1);
	EXPECT_IN(n.hosts - base_hosts, 0, 1);
	base_ctxs = n.ctxs;
	base_hosts = n.hosts;
	expect_clean();
}

/* One scenario of the device's memory calls, each call's errno one its header lists. */
static void scenario(void)
{
	uint64_t base = 0;
	struct vmb_vm_create vc = {0};
	int err = vmb_vm_create(c, &vc);
	EXPECT_IN(err, 0, -ENOMEM);
	if (err)
		return;
	uint32_t vm = vc.vm_id, bo = 0, bo2 = 0, sig = syncobj_new();
	base = vc.gpu_base;
	(void)base;
	EXPECT_IN(bo_new(6 * MB, VMB_PLACE_VRAM | VMB_PLACE_SYSTEM, 2 * MB, &bo), 0, -ENOMEM, -ENOSPC);
	EXPECT_IN(bo_new(2 * MB, VMB_PLACE_SYSTEM, 0, &bo2), 0, -ENOMEM, -ENOSPC);
	if (bo)
		EXPECT_IN(map(vm, bo, 0, VA0, 6 * MB, 0), 0, -ENOMEM, -ENOSPC, -EIO);
	EXPECT_IN(map(vm, 0, 0, VA0 + 64 * MB, 4 * MB, VMB_BIND_FLAG_NULL), 0, -ENOMEM, -EIO);
	if (bo2)
		EXPECT_IN(map(vm, bo2, 0, VA0 + 128 * MB, 2 * MB, VMB_BIND_FLAG_READONLY), 0, -ENOMEM, -ENOSPC, -EIO);
	if (bo)
		EXPECT_IN(prefetch(vm, VA0, 6 * MB, VMB_REGION_SYSTEM), 0, -ENOMEM, -ENOSPC, -EIO);
	if (sig) {
		EXPECT_IN(stream_sync(0, sig, true), 0, -EINVAL);
	}
	/* a wait slot for a fence that stays pending (an eventfd never written): the close
	 * releases it */
	int efd = eventfd(0, EFD_CLOEXEC);
	struct vmb_syncobj_fd imp = {.fd = efd};
	EXPECT(efd >= 0);
	EXPECT_EQ(vmb_syncobj_import_fd(c, &imp), 0);
	close(efd);
	EXPECT_IN(stream_sync(0, imp.handle, false), 0, -EINVAL);
	uint32_t v = 5;
	if (bo) {
		EXPECT_IN(access_rw(vm, VA0 + 4 * MB, &v, 4, true), 0, -EFAULT, -EIO);
		EXPECT_IN(access_rw(vm, VA0 + 4 * MB, &v, 4, false), 0, -EFAULT, -EIO);
	}
	struct vmb_bind_op un = {.op = VMB_BIND_OP_UNMAP, .addr = VA0 + 2 * MB, .range = 2 * MB};
	EXPECT_IN(bind(vm, &un, NULL, 0), 0, -EIO);
	struct vmb_vm_destroy vd = {.vm_id = vm};
	EXPECT_EQ(vmb_vm_destroy(c, &vd), 0);
}

/* every failure of the driver's memory calls, in turn, from the device's creation on */
static void test_driver_failures(void)
{
	static const char *const fns[] = {"cuMemCreate", "cuMemMap", "cuMemSetAccess", "cuMemsetD8Async",
					  "cuMemAddressReserve", "cuMemcpyDtoDAsync", "cuStreamWriteValue64",
					  "cuStreamWaitValue64", "cuMemcpyDtoHAsync",
					  "cuMemcpyHtoDAsync", "cuCtxPushCurrent"};
	for (unsigned int f = 0; f < sizeof(fns) / sizeof(fns[0]); f++) {
		int nth;
		for (nth = 1; nth < 1000; nth++) {
			if (c)
				vmb_client_close(c);
			c = NULL;
			fk_fail(fns[f], nth);
			int err = vmb_client_open("cuda", NULL, &c);
			if (err)
				c = NULL;
			if (c)
				scenario();
			if (c)
				vmb_client_close(c);
			c = NULL;
			bool reached = !fk_fail_left();
			fk_fail("", 0);
			int before = failed;
			EXPECT_IN(err, 0, -ENOMEM, -ENODEV);
			expect_clean();
			if (failed != before) {
				printf("  (%s failing at its call %d)\n", fns[f], nth);
				return;
			}
			if (!reached)
				break; /* the scenario has fewer calls: each has failed once */
		}
		printf("  %s: failed at each of its %d calls\n", fns[f], nth - 1);
		EXPECT(nth > 1);
	}
	reopen();
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IONBF, 0);
	void *lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_NOLOAD);
	if (!lib)
		lib = dlopen("libcuda.so.1", RTLD_NOW);
	if (!lib || !(fk_counts = (void (*)(struct fakecu_counts *, char *, size_t))dlsym(lib, "fakecu_counts"))) {
		printf("SKIP: not the fake driver (tests/dev/cuda/fakecuda.c) as libcuda.so.1\n");
		return 77;
	}
	*(void **)&fk_fail = dlsym(lib, "fakecu_fail");
	*(void **)&fk_fail_also = dlsym(lib, "fakecu_fail_also");
	*(void **)&fk_hold = dlsym(lib, "fakecu_hold");
	*(void **)&fk_land_at_sync = dlsym(lib, "fakecu_land_at_sync");
	*(void **)&fk_host_replace = dlsym(lib, "fakecu_host_replace");
	*(void **)&fk_fail_left = dlsym(lib, "fakecu_fail_left");
	*(void **)&fk_queued = dlsym(lib, "fakecu_queued");
	*(void **)&drv_retain = dlsym(lib, "cuDevicePrimaryCtxRetain");
	*(void **)&drv_push = dlsym(lib, "cuCtxPushCurrent_v2");
	*(void **)&drv_stream_create = dlsym(lib, "cuStreamCreate");
	*(void **)&drv_stream_destroy = dlsym(lib, "cuStreamDestroy_v2");
	*(void **)&drv_stream_sync = dlsym(lib, "cuStreamSynchronize");
	*(void **)&drv_wait64 = dlsym(lib, "cuStreamWaitValue64_v2");
	*(void **)&drv_write64 = dlsym(lib, "cuStreamWriteValue64_v2");
	*(void **)&drv_host_alloc = dlsym(lib, "cuMemHostAlloc");
	*(void **)&drv_pop = dlsym(lib, "cuCtxPopCurrent_v2");
	*(void **)&drv_memset = dlsym(lib, "cuMemsetD8Async");
	CUcontext ctx;
	if (drv_retain(&ctx, 0) || drv_push(ctx))
		return 1;
	test_pushes = 1;
	/* the process's first open creates the device's own context (later ones reuse it, parked):
	 * its failure fails the open and leaves nothing but a context whose stream failed (parked,
	 * never destroyed: the next open makes its stream) */
	/* no context of its own can be made, and the fence page fails after it: the open fails,
	 * the device's stream (in the primary context) destroyed, nothing left */
	{
		fk_fail("cuCtxCreate_v2", 1);
		fk_fail_also("cuMemHostAlloc", 1);
		int err = vmb_client_open("cuda", NULL, &c);
		struct fakecu_counts n;
		fk_counts(&n, NULL, 0);
		fk_fail("", 0);
		if (err != -ENOMEM || n.ctxs || n.allocs || n.streams || n.hosts || n.ctx != 1 || n.errors) {
			printf("FAIL: vmb_client_open with cuCtxCreate_v2 and cuMemHostAlloc failing: %d (contexts %d, "
			       "allocations %d, streams %d, host allocations %d)\n", err, n.ctxs, n.allocs, n.streams, n.hosts);
			return 1;
		}
		c = NULL;
	}
	/* no context of its own can be made (an exclusive compute mode, VRAM nearly full): the
	 * device's stream in the primary context, the open works, the close destroys that stream
	 * and parks nothing (the next open tries again) */
	{
		fk_fail("cuCtxCreate_v2", 1);
		int err = vmb_client_open("cuda", NULL, &c);
		struct fakecu_counts n, m;
		fk_counts(&n, NULL, 0);
		fk_fail("", 0);
		uint32_t bo = 0;
		int berr = err ? err : bo_new(4 * MB, VMB_PLACE_VRAM, 2 * MB, &bo);
		if (!err)
			vmb_client_close(c);
		c = NULL;
		fk_counts(&m, NULL, 0);
		if (err || berr || n.ctxs || n.streams != 1 || m.ctxs || m.streams || m.allocs || m.ctx != 1 || m.errors) {
			printf("FAIL: vmb_client_open with cuCtxCreate_v2 failing: %d, bo %d (contexts %d, streams %d; "
			       "after the close: contexts %d, streams %d, allocations %d)\n",
			       err, berr, n.ctxs, n.streams, m.ctxs, m.streams, m.allocs);
			return 1;
		}
	}
	/* the own context made, its stream not: the open fails, the context is parked (never
	 * destroyed) for the next open to retry */
	{
		fk_fail("cuStreamCreate", 1);
		int err = vmb_client_open("cuda", NULL, &c);
		struct fakecu_counts n;
		fk_counts(&n, NULL, 0);
		fk_fail("", 0);
		if (err != -ENOMEM || n.ctxs != 1 || n.allocs || n.streams || n.ctx != 1 || n.errors) {
			printf("FAIL: vmb_client_open with cuStreamCreate failing: %d (contexts %d, allocations %d, streams %d)\n",
			       err, n.ctxs, n.allocs, n.streams);
			return 1;
		}
	}
	if (vmb_client_open("cuda", NULL, &c)) {
		printf("FAIL: vmb_client_open(\"cuda\") over the fake\n");
		return 1;
	}
	base_hosts = 1; /* the fence page, from now on */
	static const struct expect_case cases[] = {
		CASE(test_basic), CASE(test_streams), CASE(test_owed_slot), CASE(test_prefetch_no_slot),
		CASE(test_close_blocked), CASE(test_reached_at_close), CASE(test_parked_replaced),
		CASE(test_concurrent), CASE(test_stream_wait_partial),
		CASE(test_driver_failures), CASE(test_own_queue), CASE(test_own_stream_fails),
		CASE(test_close_prefetch), CASE(test_own_fault),
		CASE(test_open_during_close),
	};
	run_cases(cases, sizeof(cases) / sizeof(cases[0]), argc, argv, reopen_if_closed);
	if (c)
		vmb_client_close(c);
	printf("%d failed\n", failed);
	return failed ? 1 : 0;
}
