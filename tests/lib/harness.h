/* SPDX-License-Identifier: MIT */
/*
 * Test helpers in the igt style: __x() returns the call's -errno, x() asserts it succeeded.
 * Include after cmocka's prerequisites.
 */
#ifndef VMB_TEST_HARNESS_H
#define VMB_TEST_HARNESS_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <errno.h>
#include <stdbool.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vmbind.h>

#define KiB (1ull << 10)
#define MiB (1ull << 20)
#define GiB (1ull << 30)

/* A client of the process's device instance @name ("soft", "soft:N"): a test that needs a
 * device of its own while another client is open names another instance. */
static inline struct vmb_client *open_soft_at(const char *name, uint64_t vram, uint64_t sys)
{
	struct vmb_client_opts o = {.vram_size = vram, .system_size = sys};
	struct vmb_client *c = NULL;
	assert_int_equal(vmb_client_open(name, &o, &c), 0);
	return c;
}

static inline struct vmb_client *open_soft(uint64_t vram, uint64_t sys)
{
	return open_soft_at("soft", vram, sys);
}

static inline uint32_t bo_new(struct vmb_client *c, uint64_t size, uint32_t placements)
{
	struct vmb_bo_create a = {.size = size, .placements = placements};
	assert_int_equal(vmb_bo_create(c, &a), 0);
	assert_int_not_equal(a.handle, 0);
	return a.handle;
}

static inline uint32_t vm_new(struct vmb_client *c, uint32_t flags)
{
	struct vmb_vm_create a = {.flags = flags};
	assert_int_equal(vmb_vm_create(c, &a), 0);
	assert_int_not_equal(a.vm_id, 0);
	return a.vm_id;
}

static inline int __bind_ops(struct vmb_client *c, uint32_t vm, struct vmb_bind_op *ops, uint32_t n)
{
	struct vmb_vm_bind b = {.vm_id = vm, .num_binds = n, .binds = (uint64_t)(uintptr_t)ops};
	return vmb_vm_bind(c, &b);
}

static inline struct vmb_bind_op op_map(uint32_t bo, uint64_t off, uint64_t addr, uint64_t range, uint32_t flags)
{
	return (struct vmb_bind_op){.op = VMB_BIND_OP_MAP, .bo_handle = bo, .bo_offset = off, .addr = addr,
				    .range = range, .flags = flags};
}
static inline struct vmb_bind_op op_unmap(uint64_t addr, uint64_t range)
{
	return (struct vmb_bind_op){.op = VMB_BIND_OP_UNMAP, .addr = addr, .range = range};
}
static inline struct vmb_bind_op op_null(uint64_t addr, uint64_t range)
{
	return (struct vmb_bind_op){.op = VMB_BIND_OP_MAP, .flags = VMB_BIND_FLAG_NULL, .addr = addr, .range = range};
}
static inline struct vmb_bind_op op_userptr(void *p, uint64_t addr, uint64_t range, uint32_t flags)
{
	return (struct vmb_bind_op){.op = VMB_BIND_OP_MAP_USERPTR, .userptr = (uint64_t)(uintptr_t)p, .addr = addr,
				    .range = range, .flags = flags};
}
static inline struct vmb_bind_op op_unmap_all(uint32_t bo)
{
	return (struct vmb_bind_op){.op = VMB_BIND_OP_UNMAP_ALL, .bo_handle = bo};
}
static inline struct vmb_bind_op op_prefetch(uint64_t addr, uint64_t range, uint32_t region)
{
	return (struct vmb_bind_op){.op = VMB_BIND_OP_PREFETCH, .addr = addr, .range = range, .region = region};
}

static inline int __bind1(struct vmb_client *c, uint32_t vm, struct vmb_bind_op op)
{
	return __bind_ops(c, vm, &op, 1);
}
#define bind1(c, vm, op) assert_int_equal(__bind1(c, vm, op), 0)

static inline int __gpu_rw(struct vmb_client *c, uint32_t vm, uint64_t addr, void *buf, uint64_t size, bool write)
{
	struct vmb_vm_access a = {.vm_id = vm, .addr = addr, .size = size, .data = (uint64_t)(uintptr_t)buf,
				  .flags = write ? VMB_ACCESS_WRITE : 0};
	return vmb_vm_access(c, &a);
}

static inline uint64_t gpu_read64(struct vmb_client *c, uint32_t vm, uint64_t addr)
{
	uint64_t v = 0xdeadbeefull;
	assert_int_equal(__gpu_rw(c, vm, addr, &v, 8, false), 0);
	return v;
}
static inline void gpu_write64(struct vmb_client *c, uint32_t vm, uint64_t addr, uint64_t v)
{
	assert_int_equal(__gpu_rw(c, vm, addr, &v, 8, true), 0);
}

static inline void validate_client(struct vmb_client *c)
{
	struct vmb_client_validate v = {0};
	assert_int_equal(vmb_client_validate(c, &v), 0);
}

/* A teardown's end: client @c passes its check and closes cleanly, fixture @f is freed. */
static inline int fixture_close(void *f, struct vmb_client *c)
{
	validate_client(c);
	assert_int_equal(vmb_client_close(c), 0);
	free(f);
	return 0;
}

/* The setup of the fault tests (tests/vm/fail.c, prefetch.c, tests/sync/status.c): a soft client
 * of 256 MiB regions with two vms, *@vm and *@other. */
static inline struct vmb_client *open_two_vms(uint32_t *vm, uint32_t *other)
{
	struct vmb_client *c = open_soft(256 * MiB, 256 * MiB);
	*vm = vm_new(c, 0);
	*other = vm_new(c, 0);
	return c;
}

static inline void vm_destroy1(struct vmb_client *c, uint32_t vm)
{
	struct vmb_vm_destroy d = {.vm_id = vm};
	assert_int_equal(vmb_vm_destroy(c, &d), 0);
}

static inline void bo_destroy1(struct vmb_client *c, uint32_t bo)
{
	struct vmb_bo_destroy d = {.handle = bo};
	assert_int_equal(vmb_bo_destroy(c, &d), 0);
}

static inline struct vmb_vm_stats vm_stats(struct vmb_client *c, uint32_t vm)
{
	struct vmb_vm_stats s = {.vm_id = vm};
	assert_int_equal(vmb_vm_query_stats(c, &s), 0);
	return s;
}

static inline void *bo_cpu(struct vmb_client *c, uint32_t bo)
{
	struct vmb_bo_mmap m = {.handle = bo};
	assert_int_equal(vmb_bo_mmap(c, &m), 0);
	return (void *)(uintptr_t)m.ptr;
}

/* ---- the device's shape (docs/UAPI.md, "Device shapes"): make test runs some suites on both,
 * the discrete one with VMB_SOFT_DISCRETE=1 ---- */

static inline struct vmb_device_query device_query(struct vmb_client *c)
{
	struct vmb_device_query d = {0};
	assert_int_equal(vmb_device_query(c, &d), 0);
	return d;
}

/* The device's granularity: every size, address and offset is a multiple of it. */
static inline uint64_t granule_of(struct vmb_client *c) { return device_query(c).min_page_size; }

/* May vmb_bo_mmap map a BO in VRAM (the integrated shape)? */
static inline bool vram_cpu_mappable(struct vmb_client *c)
{
	return device_query(c).capabilities & VMB_CAP_VRAM_CPU_MAP;
}

/* Where to place a BO that the test reads and writes through a CPU pointer: VRAM where the CPU
 * maps it, SYSTEM on the discrete shape. */
static inline uint32_t place_cpu(struct vmb_client *c)
{
	return vram_cpu_mappable(c) ? VMB_PLACE_VRAM : VMB_PLACE_SYSTEM;
}

/* Write @n u64 values into BO @bo, @v[i] at byte i * @stride: through a CPU map where the device
 * allows one, else through the GPU view of a vm of its own (the discrete shape's VRAM). */
static inline void bo_write64s(struct vmb_client *c, uint32_t bo, uint64_t stride, const uint64_t *v, uint64_t n)
{
	struct vmb_bo_mmap m = {.handle = bo};
	int err = vmb_bo_mmap(c, &m);
	if (!err) {
		for (uint64_t i = 0; i < n; i++)
			memcpy((char *)(uintptr_t)m.ptr + i * stride, &v[i], 8);
		return;
	}
	assert_int_equal(err, -EOPNOTSUPP);
	struct vmb_bo_query q = {.handle = bo};
	assert_int_equal(vmb_bo_query(c, &q), 0);
	uint32_t vm = vm_new(c, 0);
	struct vmb_bind_op op = op_map(bo, 0, 0, q.size, 0);
	assert_int_equal(__bind_ops(c, vm, &op, 1), 0);
	for (uint64_t i = 0; i < n; i++)
		assert_int_equal(__gpu_rw(c, vm, i * stride, (void *)(uintptr_t)&v[i], 8, true), 0);
	struct vmb_vm_destroy d = {.vm_id = vm};
	assert_int_equal(vmb_vm_destroy(c, &d), 0);
}

/* The u64 at @off of BO @bo: through a CPU map where the device allows one, else through the
 * GPU view of a vm of its own. */
static inline uint64_t bo_read64(struct vmb_client *c, uint32_t bo, uint64_t off)
{
	uint64_t v = 0;
	struct vmb_bo_mmap m = {.handle = bo};
	int err = vmb_bo_mmap(c, &m);
	if (!err)
		return __atomic_load_n((uint64_t *)(uintptr_t)(m.ptr + off), __ATOMIC_ACQUIRE);
	assert_int_equal(err, -EOPNOTSUPP);
	struct vmb_bo_query q = {.handle = bo};
	assert_int_equal(vmb_bo_query(c, &q), 0);
	uint32_t vm = vm_new(c, 0);
	struct vmb_bind_op op = op_map(bo, 0, 0, q.size, 0);
	assert_int_equal(__bind_ops(c, vm, &op, 1), 0);
	assert_int_equal(__gpu_rw(c, vm, off, &v, 8, false), 0);
	struct vmb_vm_destroy d = {.vm_id = vm};
	assert_int_equal(vmb_vm_destroy(c, &d), 0);
	return v;
}

/* ---- syncs ---- */

static inline uint32_t syncobj_new(struct vmb_client *c, uint32_t flags)
{
	struct vmb_syncobj_create a = {.flags = flags};
	assert_int_equal(vmb_syncobj_create(c, &a), 0);
	assert_int_not_equal(a.handle, 0);
	return a.handle;
}

static inline struct vmb_sync sync_out(uint32_t syncobj)
{
	return (struct vmb_sync){.type = VMB_SYNC_SYNCOBJ, .flags = VMB_SYNC_FLAG_SIGNAL, .handle = syncobj};
}
static inline struct vmb_sync sync_in(uint32_t syncobj)
{
	return (struct vmb_sync){.type = VMB_SYNC_SYNCOBJ, .handle = syncobj};
}
static inline struct vmb_sync sync_tl_out(uint32_t syncobj, uint64_t point)
{
	return (struct vmb_sync){.type = VMB_SYNC_TIMELINE_SYNCOBJ, .flags = VMB_SYNC_FLAG_SIGNAL,
				 .handle = syncobj, .value = point};
}
static inline struct vmb_sync sync_tl_in(uint32_t syncobj, uint64_t point)
{
	return (struct vmb_sync){.type = VMB_SYNC_TIMELINE_SYNCOBJ, .handle = syncobj, .value = point};
}
static inline struct vmb_sync sync_ufence(uint64_t *addr, uint64_t value)
{
	return (struct vmb_sync){.type = VMB_SYNC_USER_FENCE, .flags = VMB_SYNC_FLAG_SIGNAL,
				 .addr = (uint64_t)(uintptr_t)addr, .value = value};
}

/* An asynchronous bind of @n ops on @queue with @ns syncs; returns the call's result. */
static inline int __bind_async(struct vmb_client *c, uint32_t vm, uint32_t queue, struct vmb_bind_op *ops,
			       uint32_t n, struct vmb_sync *syncs, uint32_t ns)
{
	struct vmb_vm_bind b = {.vm_id = vm, .queue_id = queue, .num_binds = n, .binds = (uint64_t)(uintptr_t)ops,
				.num_syncs = ns, .syncs = (uint64_t)(uintptr_t)syncs, .flags = VMB_VM_BIND_FLAG_ASYNC};
	return vmb_vm_bind(c, &b);
}
#define bind_async(c, vm, q, ops, n, syncs, ns) assert_int_equal(__bind_async(c, vm, q, ops, n, syncs, ns), 0)

/* Wait for binary syncobj @h (relative timeout @ns). */
static inline int __syncobj_wait1(struct vmb_client *c, uint32_t h, uint64_t point, int64_t ns, uint32_t flags)
{
	struct vmb_syncobj_wait w = {.handles = (uint64_t)(uintptr_t)&h, .count = 1,
				     .points = point ? (uint64_t)(uintptr_t)&point : 0, .timeout_ns = ns,
				     .flags = flags | VMB_SYNCOBJ_WAIT_RELATIVE};
	return vmb_syncobj_wait(c, &w);
}
#define syncobj_wait1(c, h) assert_int_equal(__syncobj_wait1(c, h, 0, 10ll * 1000000000, 0), 0)

/* The error binary syncobj @h's fence signalled with, 0 for none (waits for it first; read with
 * the public vmb_syncobj_query_status). */
static inline int syncobj_error(struct vmb_client *c, uint32_t h)
{
	syncobj_wait1(c, h);
	int32_t st = 0;
	struct vmb_syncobj_status a = {.handles = (uint64_t)(uintptr_t)&h, .status = (uint64_t)(uintptr_t)&st,
				       .count = 1};
	assert_int_equal(vmb_syncobj_query_status(c, &a), 0);
	assert_int_not_equal(st, VMB_SYNCOBJ_STATUS_PENDING);
	return st == VMB_SYNCOBJ_STATUS_OK ? 0 : st;
}

static inline int __ufence_wait(struct vmb_client *c, uint64_t *addr, uint64_t value, uint16_t op, int64_t ns)
{
	struct vmb_user_fence_wait w = {.addr = (uint64_t)(uintptr_t)addr, .value = value, .mask = ~0ull,
					.timeout = ns, .op = op};
	return vmb_user_fence_wait(c, &w);
}
#define ufence_wait(c, addr, v) assert_int_equal(__ufence_wait(c, addr, v, VMB_UFENCE_OP_EQ, 10ll * 1000000000), 0)

/* A gate: a binary syncobj whose fence signals when the test opens it (an imported eventfd):
 * the test's own controllable in-fence. */
struct gate {
	int efd;
	uint32_t h;
};

static inline struct gate gate_new(struct vmb_client *c)
{
	struct gate g = {.efd = eventfd(0, EFD_CLOEXEC)};
	assert_true(g.efd >= 0);
	struct vmb_syncobj_fd a = {.fd = g.efd};
	assert_int_equal(vmb_syncobj_import_fd(c, &a), 0);
	g.h = a.handle;
	return g;
}

static inline void gate_open(struct gate *g)
{
	uint64_t one = 1;
	assert_int_equal(write(g->efd, &one, 8), 8);
	close(g->efd);
}

static inline uint32_t queue_new(struct vmb_client *c, uint32_t vm)
{
	struct vmb_bind_queue_create a = {.vm_id = vm};
	assert_int_equal(vmb_bind_queue_create(c, &a), 0);
	assert_int_not_equal(a.queue_id, 0);
	return a.queue_id;
}

/* Seed from VMB_SEED or the clock; printed so a failure can be replayed. */
static inline uint64_t test_seed(const char *name)
{
	const char *s = getenv("VMB_SEED");
	uint64_t seed = s ? strtoull(s, NULL, 0) : (uint64_t)time(NULL) ^ ((uint64_t)clock() << 20);
	printf("%s: seed %llu (replay with VMB_SEED=%llu)\n", name, (unsigned long long)seed, (unsigned long long)seed);
	fflush(stdout);
	return seed;
}

/* splitmix64: small, fast, good enough for test inputs */
static inline uint64_t rnd_next(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}
static inline uint64_t rnd_below(uint64_t *s, uint64_t n) { return rnd_next(s) % n; }


/* Runs @fn in a child process; true if the child died of SIGABRT (a debug check that fired). */
static inline bool child_aborts(void (*fn)(void))
{
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		fclose(stderr); /* the expected message is noise here */
		fn();
		_exit(0);
	}
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT;
}

/* SANITIZER_ALLOCATOR: built with AddressSanitizer, whose allocator lock a thread of the parent
 * may hold at fork(): a child that allocates may hang in it (tests that fork and then open
 * their own client in the child run in the plain build only). */
#if defined(__SANITIZE_ADDRESS__)
#define SANITIZER_ALLOCATOR 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANITIZER_ALLOCATOR 1
#endif
#endif

#endif
