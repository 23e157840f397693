/* SPDX-License-Identifier: MIT */
/*
 * Description: hostile timing and edge cases of residency, of asynchronous binds done in the
 * call and of the B+tree VA tree's unbinds (docs/UAPI.md "Residency", "Asynchronous binds",
 * "Failed commits", "Unbind under memory pressure"), written from the contract, not from the
 * code: every byte of a CPU-mapped BO over repeated evict/restore cycles with CPU writes in
 * between; a user fence in an evicted BO written by a gated bind; execs whose restore cannot fit
 * (-ENOSPC, nothing queued, then the same exec succeeds), whose restore waits behind a gated bind
 * (the call returns), whose restore is held while the vm is destroyed; eviction racing vm
 * destroy, BO destroy, client close (threads, and with the eviction's copy held by the test
 * hook), a forked child; an eviction's wait interrupted (-EINTR, restarted: 0, also in restart
 * mode); an eviction's copy failing; restart mode with an op that finds no room; an asynchronous
 * bind done in the call (out-syncobj, timeline point and user fence done when the call returns,
 * after an eviction too; a failed commit: the call 0, its fence -EIO, the vm banned), one that
 * must not be done in the call (an earlier bind of its queue, an overlapping one of another
 * queue, an eviction re-mapping in its vm), an asynchronous MAP of a BO being evicted (returns at
 * once, maps it where the eviction leaves it), an asynchronous PREFETCH of it (returns at once,
 * follows the eviction), threads on one bind queue; unbinds at 3000+ mappings
 * with every allocation failing. Bounded waits (10 s) only tell a hang. make test runs it on
 * both shapes (vm-evict-edge, vm-evict-edge-discrete).
 */
#include "lib/harness.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <vmbind/cmd.h>
#include <vmbind/debug.h>

#include "core/alloc.h" /* vmb_copy_hold, vmb_copy_fail_after: the soft DMA engine held or failing */
#include "errno-lists.h"   /* each entry point's documented errnos (generated from its header) */
#include "sync/fence.h" /* VMB_FENCE_CONDVAR: waits signals do not interrupt (TSan builds) */

#define VA (64 * MiB)
#define CMD_VA (1ull << 32)
#define TEN_S (10ll * 1000000000)

static uint32_t bo_region(struct vmb_client *c, uint32_t bo)
{
	struct vmb_bo_query q = {.handle = bo};
	assert_int_equal(vmb_bo_query(c, &q), 0);
	return q.region;
}

static struct vmb_region_query vram_query(struct vmb_client *c)
{
	struct vmb_region_query q = {.region = VMB_REGION_VRAM};
	assert_int_equal(vmb_region_query(c, &q), 0);
	return q;
}

static uint64_t word(uint32_t tag, uint64_t i) { return ((uint64_t)tag << 40) ^ (i * 0x9e3779b97f4a7c15ull); }

static void gpu_fill(struct vmb_client *c, uint32_t vm, uint64_t va, uint64_t size, uint32_t tag)
{
	uint64_t *buf = malloc(size);
	for (uint64_t i = 0; i < size / 8; i++)
		buf[i] = word(tag, i);
	assert_int_equal(__gpu_rw(c, vm, va, buf, size, true), 0);
	free(buf);
}

static void gpu_check(struct vmb_client *c, uint32_t vm, uint64_t va, uint64_t size, uint32_t tag)
{
	uint64_t *buf = malloc(size);
	assert_int_equal(__gpu_rw(c, vm, va, buf, size, false), 0);
	for (uint64_t i = 0; i < size / 8; i++)
		if (buf[i] != word(tag, i))
			fail_msg("tag %#x word %llu: %#llx", tag, (unsigned long long)i, (unsigned long long)buf[i]);
	free(buf);
}

/* @err is 0 or one of the errnos the header of entry point @name documents. */
static bool documented(const char *name, int err)
{
	if (!err)
		return true;
	for (size_t i = 0; i < sizeof(vmb_errno_lists) / sizeof(vmb_errno_lists[0]); i++)
		if (strcmp(vmb_errno_lists[i].name, name) == 0)
			for (const int *e = vmb_errno_lists[i].errnos; *e; e++)
				if (*e == err)
					return true;
	return false;
}

static bool signalled_now(struct vmb_client *c, uint32_t so, uint64_t point)
{
	int r = __syncobj_wait1(c, so, point, 0, 0);
	assert_true(r == 0 || r == -ETIME);
	return r == 0;
}

static int fence_status(struct vmb_client *c, uint32_t h)
{
	int32_t st = 0;
	struct vmb_syncobj_status a = {.handles = (uint64_t)(uintptr_t)&h, .status = (uint64_t)(uintptr_t)&st, .count = 1};
	assert_int_equal(vmb_syncobj_query_status(c, &a), 0);
	return st;
}

/*
 * A CPU-mapped VRAM BO evicted and restored 6 times, the CPU and the GPU writing it in turn:
 * after each restore the GPU reads every word the CPU wrote while it was in SYSTEM, after each
 * eviction the CPU pointer (taken once) reads every word the GPU wrote while it was in VRAM. On
 * the discrete shape (VRAM not CPU-mappable) the BO is mapped while evicted; a bind that would
 * restore it is then -EBUSY with nothing changed, and after the munmap the restore keeps the bytes.
 */
static void test_cpu_map_evict_cycles(void **state)
{
	(void)state;
	const uint64_t sz = 4 * MiB;
	struct vmb_client *c = open_soft(sz, 64 * MiB);
	bool unified = vram_cpu_mappable(c);
	uint32_t vm = vm_new(c, 0), a = bo_new(c, sz, VMB_PLACE_VRAM), b = bo_new(c, sz, VMB_PLACE_VRAM);
	uint64_t *p = NULL;
	if (unified)
		p = bo_cpu(c, a);
	uint64_t restores0 = vram_query(c).restores;
	for (uint32_t cycle = 0; cycle < 6; cycle++) {
		uint32_t ctag = 0x100 + cycle, gtag = 0x200 + cycle;
		if (cycle > 0) { /* a is in SYSTEM: the CPU writes it */
			assert_int_equal(bo_region(c, a), VMB_REGION_SYSTEM);
			struct vmb_bo_mmap m = {.handle = a};
			if (!unified) {
				assert_int_equal(vmb_bo_mmap(c, &m), 0);
				p = (uint64_t *)(uintptr_t)m.ptr;
			}
			for (uint64_t i = 0; i < sz / 8; i++)
				p[i] = word(ctag, i);
			if (!unified) {
				struct vmb_bind_op op = op_map(a, 0, VA, sz, 0);
				struct vmb_vm_stats st0 = vm_stats(c, vm);
				assert_int_equal(__bind_ops(c, vm, &op, 1), -EBUSY);
				assert_int_equal(vm_stats(c, vm).num_mappings, st0.num_mappings);
				assert_int_equal(bo_region(c, a), VMB_REGION_SYSTEM);
				struct vmb_bo_munmap u = {.handle = a, .ptr = m.ptr};
				assert_int_equal(vmb_bo_munmap(c, &u), 0);
			}
		}
		bind1(c, vm, op_map(a, 0, VA, sz, 0)); /* restore (or first backing) */
		assert_int_equal(bo_region(c, a), VMB_REGION_VRAM);
		if (cycle > 0)
			gpu_check(c, vm, VA, sz, ctag);
		gpu_fill(c, vm, VA, sz, gtag);
		bind1(c, vm, op_unmap(VA, sz));
		bind1(c, vm, op_map(b, 0, VA + sz, sz, 0)); /* evicts a */
		assert_int_equal(bo_region(c, a), VMB_REGION_SYSTEM);
		if (unified)
			for (uint64_t i = 0; i < sz / 8; i++)
				if (p[i] != word(gtag, i))
					fail_msg("cycle %u word %llu: %#llx", cycle, (unsigned long long)i, (unsigned long long)p[i]);
		bind1(c, vm, op_unmap(VA + sz, sz));
	}
	assert_int_equal(vram_query(c).restores - restores0, 10);
	validate_client(c);
	assert_int_equal(vmb_client_close(c), 0);
}

/*
 * A user fence in a VRAM BO (the integrated shape: its CPU pointer is the fence's address) whose
 * writer, an asynchronous bind, waits for a gate; meanwhile the BO, bound nowhere, is evicted.
 * The gate opened, the fence is written through the same pointer, and the GPU reads it once the
 * BO is bound (restored to VRAM).
 */
static void test_ufence_in_evicted_bo(void **state)
{
	(void)state;
	const uint64_t sz = 4 * MiB;
	struct vmb_client *c = open_soft(sz, 64 * MiB);
	if (!vram_cpu_mappable(c)) {
		assert_int_equal(vmb_client_close(c), 0);
		skip();
	}
	uint32_t vm = vm_new(c, 0), u = bo_new(c, sz, VMB_PLACE_VRAM), x = bo_new(c, sz, VMB_PLACE_VRAM);
	uint64_t *p = bo_cpu(c, u);
	assert_int_equal(bo_region(c, u), VMB_REGION_VRAM);
	uint32_t sys = bo_new(c, sz, VMB_PLACE_SYSTEM);
	struct gate g = gate_new(c);
	struct vmb_sync s[2] = {sync_in(g.h), sync_ufence(p + 8, 0x77)};
	struct vmb_bind_op op = op_map(sys, 0, VA + 32 * MiB, sz, 0);
	uint32_t gvm = vm_new(c, 0); /* the gated writer's vm: vm's own binds are not behind it */
	bind_async(c, gvm, 0, &op, 1, s, 2);
	bind1(c, vm, op_map(x, 0, VA + 8 * MiB, sz, 0)); /* evicts u */
	assert_int_equal(bo_region(c, u), VMB_REGION_SYSTEM);
	assert_int_equal(__atomic_load_n(p + 8, __ATOMIC_ACQUIRE), 0);
	gate_open(&g);
	ufence_wait(c, p + 8, 0x77);
	bind1(c, vm, op_unmap(VA + 8 * MiB, sz));
	bind1(c, vm, op_map(u, 0, VA, sz, 0));
	assert_int_equal(bo_region(c, u), VMB_REGION_VRAM);
	assert_int_equal(gpu_read64(c, vm, VA + 64), 0x77);
	validate_client(c);
	assert_int_equal(vmb_client_close(c), 0);
}

struct xq {
	uint32_t eq, cmd_bo;
	uint64_t *cmd;
};

static struct xq xq_new(struct vmb_client *c, uint32_t vm)
{
	uint64_t gran = granule_of(c), cmd_size = gran > 64 * KiB ? gran : 64 * KiB;
	struct xq x = {.cmd_bo = bo_new(c, cmd_size, VMB_PLACE_SYSTEM)};
	x.cmd = bo_cpu(c, x.cmd_bo);
	bind1(c, vm, op_map(x.cmd_bo, 0, CMD_VA, cmd_size, VMB_BIND_FLAG_READONLY));
	struct vmb_exec_queue_create qc = {.vm_id = vm, .engine = {.engine_class = VMB_ENGINE_CLASS_COMPUTE}};
	assert_int_equal(vmb_exec_queue_create(c, &qc), 0);
	x.eq = qc.exec_queue_id;
	return x;
}

static int xq_fill(struct vmb_client *c, struct xq *x, uint64_t va, uint64_t size, uint32_t v, uint32_t so)
{
	uint32_t k = 0;
	vmb_cmd_fill(x->cmd, &k, va, size, v);
	vmb_cmd_end(x->cmd, &k);
	struct vmb_sync out = sync_out(so);
	struct vmb_exec e = {.exec_queue_id = x->eq, .address = CMD_VA, .num_syncs = 1, .syncs = (uint64_t)(uintptr_t)&out};
	return vmb_exec(c, &e);
}

/*
 * An exec whose vm has an evicted VRAM-only BO that cannot come back (VRAM full of a BO bound in
 * an LR vm): -ENOSPC at once, nothing queued (its out-syncobj not signalled, the queue not
 * banned, no job done), the BO still in SYSTEM with its bytes. The LR vm unbinds its BO; the
 * same exec then succeeds: the BO restored and filled by the exec.
 */
static void test_exec_restore_enospc(void **state)
{
	(void)state;
	const uint64_t sz = 4 * MiB;
	struct vmb_client *c = open_soft(sz, 64 * MiB);
	uint32_t vm = vm_new(c, 0), lr = vm_new(c, VMB_VM_CREATE_LR_MODE);
	uint32_t a = bo_new(c, sz, VMB_PLACE_VRAM), l = bo_new(c, sz, VMB_PLACE_VRAM);
	struct xq x = xq_new(c, vm);
	bind1(c, vm, op_map(a, 0, VA, sz, 0));
	gpu_fill(c, vm, VA, sz, 0xa1);
	bind1(c, lr, op_map(l, 0, VA, sz, 0)); /* evicts a (vm idle) */
	assert_int_equal(bo_region(c, a), VMB_REGION_SYSTEM);
	uint32_t so = syncobj_new(c, 0);
	assert_int_equal(xq_fill(c, &x, VA, sz, 0xc0ffee00u, so), -ENOSPC);
	assert_int_equal(fence_status(c, so), VMB_SYNCOBJ_STATUS_PENDING);
	struct vmb_exec_queue_query qq = {.exec_queue_id = x.eq};
	assert_int_equal(vmb_exec_queue_query(c, &qq), 0);
	assert_int_equal(qq.error, 0);
	assert_int_equal(qq.flags, 0);
	assert_int_equal(qq.jobs_done, 0);
	assert_int_equal(bo_region(c, a), VMB_REGION_SYSTEM);
	assert_int_equal(bo_region(c, l), VMB_REGION_VRAM);
	gpu_check(c, vm, VA, sz, 0xa1);
	/* again, the same answer (nothing left half-done by the first) */
	assert_int_equal(xq_fill(c, &x, VA, sz, 0xc0ffee00u, so), -ENOSPC);
	bind1(c, lr, op_unmap(VA, sz));
	assert_int_equal(xq_fill(c, &x, VA, sz, 0xc0ffee00u, so), 0);
	syncobj_wait1(c, so);
	assert_int_equal(bo_region(c, a), VMB_REGION_VRAM);
	assert_int_equal(gpu_read64(c, vm, VA + sz - 8), 0xc0ffee00c0ffee00ull);
	assert_int_equal(vmb_exec_queue_query(c, &qq), 0);
	assert_int_equal(qq.jobs_done, 1);
	validate_client(c);
	assert_int_equal(vmb_client_close(c), 0);
}

/*
 * Eviction racing teardown: a thread binds and writes BOs one after another in its vm (2 MiB
 * each, VRAM 8 MiB: every bind past the fourth evicts), unbinding each, while a second thread
 * creates vms that bind VRAM BOs and destroys them (vm first or BO first in turn) and a third
 * opens its own client on the same device, binds a VRAM BO and closes the client with the BO
 * bound. -ENOSPC retried (the others may hold VRAM busy for a moment). Afterwards every BO of the
 * first thread has every byte it wrote, and the client validates.
 */
#define RACE_N 24
struct race {
	struct vmb_client *c;
	atomic_int stop;
	int err[3];
};

static int retry_bind(struct vmb_client *c, uint32_t vm, struct vmb_bind_op op)
{
	int r;
	for (int i = 0; i < 10000; i++) {
		r = __bind1(c, vm, op);
		if (r != -ENOSPC)
			return r;
		usleep(500);
	}
	return r;
}

static uint32_t race_bo[RACE_N];

static void *race_writer(void *arg)
{
	struct race *r = arg;
	struct vmb_client *c = r->c;
	uint32_t vm = vm_new(c, 0);
	for (int i = 0; i < RACE_N && !r->err[0]; i++) {
		race_bo[i] = bo_new(c, 2 * MiB, VMB_PLACE_VRAM);
		r->err[0] = retry_bind(c, vm, op_map(race_bo[i], 0, VA, 2 * MiB, 0));
		if (!r->err[0]) {
			gpu_fill(c, vm, VA, 2 * MiB, 0x300 + (uint32_t)i);
			r->err[0] = __bind1(c, vm, op_unmap(VA, 2 * MiB));
		}
	}
	atomic_store(&r->stop, 1);
	return NULL;
}

static void *race_destroyer(void *arg)
{
	struct race *r = arg;
	struct vmb_client *c = r->c;
	for (int n = 0; !atomic_load(&r->stop) && !r->err[1]; n++) {
		uint32_t vm = vm_new(c, 0), bo = bo_new(c, 2 * MiB, VMB_PLACE_VRAM);
		r->err[1] = retry_bind(c, vm, op_map(bo, 0, VA, 2 * MiB, 0));
		if (n & 1) {
			vm_destroy1(c, vm);
			bo_destroy1(c, bo);
		} else {
			bo_destroy1(c, bo);
			vm_destroy1(c, vm);
		}
	}
	return NULL;
}

static void *race_closer(void *arg)
{
	struct race *r = arg;
	while (!atomic_load(&r->stop) && !r->err[2]) {
		struct vmb_client *c = open_soft(8 * MiB, 256 * MiB);
		uint32_t vm = vm_new(c, 0), bo = bo_new(c, 2 * MiB, VMB_PLACE_VRAM);
		r->err[2] = retry_bind(c, vm, op_map(bo, 0, VA, 2 * MiB, 0));
		if (!r->err[2])
			gpu_write64(c, vm, VA + 8, 5);
		r->err[2] = r->err[2] ? r->err[2] : vmb_client_close(c);
	}
	return NULL;
}

static void test_evict_races_teardown(void **state)
{
	(void)state;
	struct race r = {.c = open_soft(8 * MiB, 256 * MiB)};
	atomic_init(&r.stop, 0);
	pthread_t t[3];
	assert_int_equal(pthread_create(&t[0], NULL, race_writer, &r), 0);
	assert_int_equal(pthread_create(&t[1], NULL, race_destroyer, &r), 0);
	assert_int_equal(pthread_create(&t[2], NULL, race_closer, &r), 0);
	for (int i = 0; i < 3; i++)
		pthread_join(t[i], NULL);
	for (int i = 0; i < 3; i++)
		assert_int_equal(r.err[i], 0);
	uint32_t vm = vm_new(r.c, 0);
	for (int i = 0; i < RACE_N; i++) {
		bind1(r.c, vm, op_map(race_bo[i], 0, VA, 2 * MiB, 0));
		gpu_check(r.c, vm, VA, 2 * MiB, 0x300 + (uint32_t)i);
		bind1(r.c, vm, op_unmap(VA, 2 * MiB));
	}
	assert_true(vram_query(r.c).evictions > 0);
	validate_client(r.c);
	assert_int_equal(vmb_client_close(r.c), 0);
}

/*
 * A child forked while a BO is evicted: its calls are -EIO (a bind that would restore it
 * included), and it changes nothing the parent sees.
 */
static void test_fork_evicted(void **state)
{
	(void)state;
	const uint64_t sz = 4 * MiB;
	struct vmb_client *c = open_soft(sz, 64 * MiB);
	uint32_t vm = vm_new(c, 0), a = bo_new(c, sz, VMB_PLACE_VRAM), b = bo_new(c, sz, VMB_PLACE_VRAM);
	bind1(c, vm, op_map(a, 0, VA, sz, 0));
	gpu_fill(c, vm, VA, sz, 0x41);
	bind1(c, vm, op_map(b, 0, VA + sz, sz, 0)); /* evicts a: the vm has nothing pending */
	assert_int_equal(bo_region(c, a), VMB_REGION_SYSTEM);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int bad = 0;
		bad |= __bind1(c, vm, op_unmap(VA + sz, sz)) != -EIO;
		bad |= __bind1(c, vm, op_map(a, 0, VA + 2 * sz, sz, 0)) != -EIO;
		struct vmb_bo_mmap m = {.handle = a};
		bad |= vmb_bo_mmap(c, &m) != -EIO;
		bad |= vmb_client_close(c) != 0;
		_exit(bad);
	}
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(bo_region(c, a), VMB_REGION_SYSTEM);
	gpu_check(c, vm, VA, sz, 0x41);
	bind1(c, vm, op_unmap(VA + sz, sz));
	bind1(c, vm, op_map(a, 0, VA + 2 * sz, sz, 0));
	gpu_check(c, vm, VA + 2 * sz, sz, 0x41);
	validate_client(c);
	assert_int_equal(vmb_client_close(c), 0);
}

/*
 * Restart mode and eviction: a 3-op call whose op 1 maps a VRAM BO without backing while VRAM is
 * full of an LR vm's BO: -ENOSPC, op 0 done, the cookie says 1; other binds of the vm -EBUSY.
 * The LR vm (another vm: the restart-mode vm refuses them) unbinds; the restart completes ops 1
 * and 2 (cookie 0 written), the BO in VRAM and written through its mapping.
 */
static void test_restart_mode_enospc(void **state)
{
	(void)state;
	const uint64_t sz = 4 * MiB;
	struct vmb_client *c = open_soft(sz, 64 * MiB);
	if (!(device_query(c).capabilities & VMB_CAP_RESTART_MODE)) {
		assert_int_equal(vmb_client_close(c), 0);
		skip();
	}
	uint32_t vm = vm_new(c, VMB_VM_CREATE_RESTART_MODE), lr = vm_new(c, VMB_VM_CREATE_LR_MODE);
	uint32_t l = bo_new(c, sz, VMB_PLACE_VRAM), v = bo_new(c, sz, VMB_PLACE_VRAM);
	uint32_t s0 = bo_new(c, sz, VMB_PLACE_SYSTEM), s2 = bo_new(c, sz, VMB_PLACE_SYSTEM);
	bind1(c, lr, op_map(l, 0, VA, sz, 0));
	struct vmb_bind_op ops[3] = {op_map(s0, 0, VA, sz, 0), op_map(v, 0, VA + 2 * sz, sz, 0),
				     op_map(s2, 0, VA + 4 * sz, sz, 0)};
	struct vmb_vm_bind bnd = {.vm_id = vm, .num_binds = 3, .binds = (uint64_t)(uintptr_t)ops};
	assert_int_equal(vmb_vm_bind(c, &bnd), -ENOSPC);
	uint64_t cookie = bnd.restart;
	assert_int_equal(VMB_VM_BIND_RESTART_DONE(cookie), 1);
	assert_int_equal(vm_stats(c, vm).num_mappings, 1);
	assert_int_equal(__bind1(c, vm, op_unmap(VA, sz)), -EBUSY);
	assert_int_equal(bo_region(c, l), VMB_REGION_VRAM);
	bind1(c, lr, op_unmap(VA, sz));
	bnd.restart = cookie;
	assert_int_equal(vmb_vm_bind(c, &bnd), 0);
	assert_int_equal(bnd.restart, 0);
	assert_int_equal(vm_stats(c, vm).num_mappings, 3);
	assert_int_equal(bo_region(c, v), VMB_REGION_VRAM);
	gpu_fill(c, vm, VA + 2 * sz, sz, 0x52);
	gpu_check(c, vm, VA + 2 * sz, sz, 0x52);
	bind1(c, vm, op_unmap(VA, 8 * sz)); /* the vm takes binds again */
	validate_client(c);
	assert_int_equal(vmb_client_close(c), 0);
}

/*
 * An asynchronous bind with nothing to wait for is done when the call returns: its binary
 * out-syncobj and timeline point signalled, its user fence written, the mapping in the GPU view.
 * The same when the call first had to evict (VRAM full of an unbound BO; the call waited for the
 * eviction's copy).
 */
static void async_done_in_call(struct vmb_client *c, uint32_t vm, uint32_t q, uint32_t bo, uint64_t va,
			       uint64_t sz, uint64_t point)
{
	uint32_t so = syncobj_new(c, 0), tl = syncobj_new(c, VMB_SYNCOBJ_CREATE_TIMELINE);
	uint64_t *uf = calloc(1, sizeof(*uf));
	struct vmb_sync s[3] = {sync_out(so), sync_tl_out(tl, point), sync_ufence(uf, 0x1234)};
	struct vmb_bind_op op = op_map(bo, 0, va, sz, 0);
	bind_async(c, vm, q, &op, 1, s, 3);
	assert_int_equal(__atomic_load_n(uf, __ATOMIC_ACQUIRE), 0x1234);
	assert_true(signalled_now(c, so, 0));
	assert_true(signalled_now(c, tl, point));
	assert_int_equal(fence_status(c, so), VMB_SYNCOBJ_STATUS_OK);
	gpu_write64(c, vm, va + sz - 8, 9); /* mapped */
	free(uf);
}

static void test_async_done_in_call(void **state)
{
	(void)state;
	const uint64_t sz = 4 * MiB;
	struct vmb_client *c = open_soft(sz, 64 * MiB);
	if (!(device_query(c).capabilities & VMB_CAP_TIMELINE)) {
		assert_int_equal(vmb_client_close(c), 0);
		skip();
	}
	uint32_t vm = vm_new(c, 0), q = queue_new(c, vm);
	uint32_t a = bo_new(c, sz, VMB_PLACE_VRAM), b = bo_new(c, sz, VMB_PLACE_VRAM);
	async_done_in_call(c, vm, 0, a, VA, sz, 3);
	bind1(c, vm, op_unmap(VA, sz)); /* a idle, unbound */
	uint64_t ev0 = vram_query(c).evictions;
	async_done_in_call(c, vm, q, b, VA + sz, sz, 7); /* evicts a first */
	assert_int_equal(vram_query(c).evictions, ev0 + 1);
	assert_int_equal(bo_region(c, a), VMB_REGION_SYSTEM);
	validate_client(c);
	assert_int_equal(vmb_client_close(c), 0);
}

/*
 * A bind done in the call whose device commit fails (injected, -EIO): the call returns 0 (as any
 * asynchronous bind), its fence has signalled -EIO and its user fence is written by then, the vm
 * is banned: a later asynchronous bind is -EIO and touches none of its out-syncs. @syncobj: an
 * out-syncobj beside the user fence; without one the bind is done without a fence of its own
 * (vm/job.c async_on_stack), with the same outcomes.
 */
static void async_in_call_commit_fails(bool syncobj)
{
	struct vmb_client *c = open_soft(8 * MiB, 64 * MiB);
	uint32_t vm = vm_new(c, 0), bo = bo_new(c, 2 * MiB, VMB_PLACE_VRAM);
	uint32_t so = syncobj_new(c, 0), so2 = syncobj_new(c, 0);
	uint64_t uf = 0, uf2 = 0;
	uint32_t ns = syncobj ? 2 : 1;
	struct vmb_fault_inject fi = {.classes = VMB_INJECT_COMMIT, .flags = VMB_INJECT_ONCE, .nth = 1,
				      .scope = VMB_INJECT_SCOPE_PROCESS, .error = -EIO};
	assert_int_equal(vmb_debug_fault_inject(c, &fi), 0);
	struct vmb_sync s[2] = {sync_ufence(&uf, 5), sync_out(so)};
	struct vmb_bind_op op = op_map(bo, 0, VA, 2 * MiB, 0);
	assert_int_equal(__bind_async(c, vm, 0, &op, 1, s, ns), 0);
	if (syncobj)
		assert_int_equal(fence_status(c, so), -EIO);
	assert_int_equal(__atomic_load_n(&uf, __ATOMIC_ACQUIRE), 5);
	struct vmb_fault_inject off = {.classes = VMB_INJECT_COMMIT, .scope = VMB_INJECT_SCOPE_PROCESS};
	assert_int_equal(vmb_debug_fault_inject(c, &off), 0);
	assert_int_equal(off.injected, 1);
	struct vmb_sync s2[2] = {sync_ufence(&uf2, 6), sync_out(so2)};
	op = op_map(bo, 0, VA + 4 * MiB, 2 * MiB, 0);
	assert_int_equal(__bind_async(c, vm, 0, &op, 1, s2, ns), -EIO);
	assert_int_equal(fence_status(c, so2), VMB_SYNCOBJ_STATUS_PENDING);
	assert_int_equal(uf2, 0);
	assert_int_equal(__bind1(c, vm, op_unmap(VA, 2 * MiB)), -EIO);
	vm_destroy1(c, vm);
	assert_int_equal(vmb_client_close(c), 0);
}

static void test_async_in_call_commit_fails(void **state)
{
	(void)state;
	async_in_call_commit_fails(true);
}

static void test_async_ufence_only_commit_fails(void **state)
{
	(void)state;
	async_in_call_commit_fails(false);
}

/* The order tests' start: a client, a vm with two bind queues, two SYSTEM BOs of 2 MiB whose
 * first words were written 0xb1 and 0xb2 through the vm (left unmapped). */
struct two_queues {
	struct vmb_client *c;
	uint32_t vm, q1, q2;
};

static struct two_queues two_queues_new(uint32_t *b1, uint32_t *b2)
{
	struct vmb_client *c = open_soft(8 * MiB, 64 * MiB);
	uint32_t vm = vm_new(c, 0);
	struct two_queues t = {.c = c, .vm = vm, .q1 = queue_new(c, vm), .q2 = queue_new(c, vm)};
	*b1 = bo_new(c, 2 * MiB, VMB_PLACE_SYSTEM);
	*b2 = bo_new(c, 2 * MiB, VMB_PLACE_SYSTEM);
	bind1(c, vm, op_map(*b1, 0, VA + 64 * MiB, 2 * MiB, 0));
	gpu_write64(c, vm, VA + 64 * MiB, 0xb1);
	bind1(c, vm, op_unmap(VA + 64 * MiB, 2 * MiB));
	bind1(c, vm, op_map(*b2, 0, VA + 64 * MiB, 2 * MiB, 0));
	gpu_write64(c, vm, VA + 64 * MiB, 0xb2);
	bind1(c, vm, op_unmap(VA + 64 * MiB, 2 * MiB));
	return t;
}

/*
 * Order with user fences only (no fence of its own for a bind done in the call: vm/job.c
 * async_on_stack): a bind done in the call leaves its queue idle; a later bind of the queue
 * behind a gated one is not done in the call, nor one of another queue that overlaps a pending
 * bind, nor the next one of that queue; the vm ends as submission order leaves it, and once
 * it is idle again a bind is done in the call.
 */
static void ufence_only_order(struct two_queues t, uint32_t b1, uint32_t b2)
{
	struct vmb_client *c = t.c;
	uint32_t vm = t.vm, q1 = t.q1, q2 = t.q2;
	uint64_t uf[5] = {0};
	struct vmb_sync s0 = sync_ufence(&uf[0], 1);
	struct vmb_bind_op op0 = op_map(b1, 0, VA, 2 * MiB, 0);
	bind_async(c, vm, q1, &op0, 1, &s0, 1); /* idle: done in the call */
	assert_int_equal(__atomic_load_n(&uf[0], __ATOMIC_ACQUIRE), 1);
	assert_int_equal(gpu_read64(c, vm, VA), 0xb1);

	struct gate g = gate_new(c);
	struct vmb_sync s1[2] = {sync_in(g.h), sync_ufence(&uf[1], 2)};
	struct vmb_bind_op op1 = op_unmap(VA, 2 * MiB);
	bind_async(c, vm, q1, &op1, 1, s1, 2);
	struct vmb_sync s2 = sync_ufence(&uf[2], 3);
	struct vmb_bind_op op2 = op_map(b2, 0, VA, 2 * MiB, 0);
	bind_async(c, vm, q1, &op2, 1, &s2, 1); /* behind the gated one of its queue */
	struct vmb_sync s3 = sync_ufence(&uf[3], 4);
	struct vmb_bind_op op3 = op_unmap(VA, 2 * MiB);
	bind_async(c, vm, q2, &op3, 1, &s3, 1); /* overlaps q1's pending ones */
	struct vmb_sync s4 = sync_ufence(&uf[4], 5);
	struct vmb_bind_op op4 = op_map(b2, 0, VA + 32 * MiB, 2 * MiB, 0);
	bind_async(c, vm, q2, &op4, 1, &s4, 1); /* behind op3 on q2 */
	for (int i = 1; i < 5; i++)
		assert_int_equal(__atomic_load_n(&uf[i], __ATOMIC_ACQUIRE), 0);
	assert_int_equal(gpu_read64(c, vm, VA), 0xb1); /* nothing committed since */
	gate_open(&g);
	for (int i = 1; i < 5; i++)
		ufence_wait(c, &uf[i], (uint64_t)i + 1);
	uint64_t v;
	assert_int_not_equal(__gpu_rw(c, vm, VA, &v, 8, false), 0); /* op3 unmapped op2's, last */
	assert_int_equal(gpu_read64(c, vm, VA + 32 * MiB), 0xb2);
	assert_int_equal(vm_stats(c, vm).num_mappings, 1);

	/* the vm idle again: done in the call */
	uint64_t uf5 = 0;
	struct vmb_sync s5 = sync_ufence(&uf5, 6);
	struct vmb_bind_op op5 = op_unmap(VA + 32 * MiB, 2 * MiB);
	bind_async(c, vm, q1, &op5, 1, &s5, 1);
	assert_int_equal(__atomic_load_n(&uf5, __ATOMIC_ACQUIRE), 6);
	assert_int_equal(vm_stats(c, vm).num_mappings, 0);
	validate_client(c);
	assert_int_equal(vmb_client_close(c), 0);
}

static void test_async_ufence_only_order(void **state)
{
	(void)state;
	uint32_t b1, b2;
	struct two_queues t = two_queues_new(&b1, &b2);
	ufence_only_order(t, b1, b2);
}

/*
 * Order: an asynchronous bind with no in-syncs is not done in the call while an earlier bind of
 * its queue is pending (behind a gate), nor while an overlapping bind of another queue is: its
 * fence stays unsignalled and its user fence unwritten until the gate opens, and the vm ends as
 * the binds in submission order leave it.
 */
static void test_async_no_overtake(void **state)
{
	(void)state;
	uint32_t b1, b2;
	struct two_queues t = two_queues_new(&b1, &b2);
	struct vmb_client *c = t.c;
	uint32_t vm = t.vm, q1 = t.q1, q2 = t.q2;

	/* same queue: gated MAP b1, then UNMAP + MAP b2 with nothing of its own to wait for */
	struct gate g = gate_new(c);
	uint32_t so1 = syncobj_new(c, 0), so2 = syncobj_new(c, 0);
	uint64_t uf = 0;
	struct vmb_sync s1[2] = {sync_in(g.h), sync_out(so1)};
	struct vmb_bind_op op1 = op_map(b1, 0, VA, 2 * MiB, 0);
	bind_async(c, vm, q1, &op1, 1, s1, 2);
	struct vmb_sync s2[2] = {sync_out(so2), sync_ufence(&uf, 1)};
	struct vmb_bind_op op2[2] = {op_unmap(VA, 2 * MiB), op_map(b2, 0, VA, 2 * MiB, 0)};
	bind_async(c, vm, q1, op2, 2, s2, 2);
	assert_false(signalled_now(c, so2, 0));
	assert_int_equal(__atomic_load_n(&uf, __ATOMIC_ACQUIRE), 0);
	uint64_t v;
	assert_int_not_equal(__gpu_rw(c, vm, VA, &v, 8, false), 0); /* nothing committed there */
	gate_open(&g);
	syncobj_wait1(c, so2);
	assert_true(signalled_now(c, so1, 0));
	assert_int_equal(__atomic_load_n(&uf, __ATOMIC_ACQUIRE), 1);
	assert_int_equal(gpu_read64(c, vm, VA), 0xb2);

	/* another queue, overlapping: gated MAP b1 over VA on q1, then UNMAP of VA on q2 */
	struct gate h = gate_new(c);
	uint32_t so3 = syncobj_new(c, 0), so4 = syncobj_new(c, 0);
	uint64_t uf4 = 0;
	struct vmb_sync s3[2] = {sync_in(h.h), sync_out(so3)};
	bind_async(c, vm, q1, &op1, 1, s3, 2);
	struct vmb_sync s4[2] = {sync_out(so4), sync_ufence(&uf4, 2)};
	struct vmb_bind_op op4 = op_unmap(VA, 2 * MiB);
	bind_async(c, vm, q2, &op4, 1, s4, 2);
	assert_false(signalled_now(c, so4, 0));
	assert_int_equal(__atomic_load_n(&uf4, __ATOMIC_ACQUIRE), 0);
	assert_int_equal(gpu_read64(c, vm, VA), 0xb2); /* still b2: neither committed */
	/* a bind of q2 elsewhere is not held up by q1's gate, but follows q2's pending one */
	uint32_t so5 = syncobj_new(c, 0);
	struct vmb_sync s5 = sync_out(so5);
	struct vmb_bind_op op5 = op_map(b2, 0, VA + 32 * MiB, 2 * MiB, 0);
	bind_async(c, vm, q2, &op5, 1, &s5, 1);
	assert_false(signalled_now(c, so5, 0));
	gate_open(&h);
	syncobj_wait1(c, so4);
	syncobj_wait1(c, so5);
	assert_true(signalled_now(c, so3, 0));
	assert_int_equal(__atomic_load_n(&uf4, __ATOMIC_ACQUIRE), 2);
	assert_int_not_equal(__gpu_rw(c, vm, VA, &v, 8, false), 0); /* unmapped last */
	assert_int_equal(vm_stats(c, vm).num_mappings, 1);
	assert_int_equal(gpu_read64(c, vm, VA + 32 * MiB), 0xb2);
	validate_client(c);
	assert_int_equal(vmb_client_close(c), 0);
}

/*
 * A vm whose own VRAM-only working set outgrew VRAM (its third BO's bind evicted its first, the vm
 * idle): its exec must restore the first without evicting its own others: -ENOSPC at once,
 * nothing queued, no ping-pong; with the third unbound the same exec succeeds.
 */
static void test_exec_own_set_too_big(void **state)
{
	(void)state;
	const uint64_t sz = 4 * MiB;
	struct vmb_client *c = open_soft(2 * sz, 64 * MiB);
	uint32_t vm = vm_new(c, 0), bo[3];
	struct xq x = xq_new(c, vm);
	for (int i = 0; i < 3; i++) {
		bo[i] = bo_new(c, sz, VMB_PLACE_VRAM);
		bind1(c, vm, op_map(bo[i], 0, VA + (uint64_t)i * sz, sz, 0));
		gpu_fill(c, vm, VA + (uint64_t)i * sz, sz, 0x60 + (uint32_t)i);
	}
	assert_int_equal(bo_region(c, bo[0]), VMB_REGION_SYSTEM);
	uint32_t so = syncobj_new(c, 0);
	uint64_t ev = vram_query(c).evictions, rs = vram_query(c).restores;
	assert_int_equal(xq_fill(c, &x, VA, sz, 0x61616161u, so), -ENOSPC);
	assert_int_equal(fence_status(c, so), VMB_SYNCOBJ_STATUS_PENDING);
	assert_int_equal(vram_query(c).evictions, ev);
	assert_int_equal(vram_query(c).restores, rs);
	assert_int_equal(bo_region(c, bo[0]), VMB_REGION_SYSTEM);
	assert_int_equal(bo_region(c, bo[1]), VMB_REGION_VRAM);
	assert_int_equal(bo_region(c, bo[2]), VMB_REGION_VRAM);
	for (int i = 0; i < 3; i++)
		gpu_check(c, vm, VA + (uint64_t)i * sz, sz, 0x60 + (uint32_t)i);
	bind1(c, vm, op_unmap(VA + 2 * sz, sz));
	assert_int_equal(xq_fill(c, &x, VA, sz, 0x61616161u, so), 0);
	syncobj_wait1(c, so);
	assert_int_equal(bo_region(c, bo[0]), VMB_REGION_VRAM);
	assert_int_equal(gpu_read64(c, vm, VA + 8), 0x6161616161616161ull);
	gpu_check(c, vm, VA + sz, sz, 0x61);
	validate_client(c);
	assert_int_equal(vmb_client_close(c), 0);
}

/*
 * A BO bound both in an LR vm and in a non-LR one is never evicted, even with the non-LR vm
 * idle and the LR vm's mapping the only thing keeping it: a bind needing its room is -ENOSPC.
 * And an evicted BO that may live in SYSTEM is not restored by an exec (restores unchanged).
 */
static void test_shared_with_lr_and_system_ok(void **state)
{
	(void)state;
	const uint64_t sz = 4 * MiB;
	struct vmb_client *c = open_soft(sz, 64 * MiB);
	uint32_t vm = vm_new(c, 0), lr = vm_new(c, VMB_VM_CREATE_LR_MODE);
	uint32_t s = bo_new(c, sz, VMB_PLACE_VRAM), n = bo_new(c, sz, VMB_PLACE_VRAM);
	bind1(c, vm, op_map(s, 0, VA, sz, 0));
	bind1(c, lr, op_map(s, 0, VA, sz, 0));
	bind1(c, vm, op_unmap(VA, sz));
	struct vmb_bind_op op = op_map(n, 0, VA + sz, sz, 0);
	assert_int_equal(__bind_ops(c, vm, &op, 1), -ENOSPC);
	bind1(c, vm, op_map(s, 0, VA, sz, 0));
	assert_int_equal(__bind_ops(c, vm, &op, 1), -ENOSPC); /* LR still binds it */
	assert_int_equal(bo_region(c, s), VMB_REGION_VRAM);
	bind1(c, lr, op_unmap(VA, sz));
	assert_int_equal(__bind_ops(c, vm, &op, 1), 0); /* s evicted, its mapping in vm re-pointed */
	assert_int_equal(bo_region(c, s), VMB_REGION_SYSTEM);
	bind1(c, vm, op_unmap(VA, 2 * sz));
	bo_destroy1(c, n);
	bo_destroy1(c, s);
	/* VRAM|SYSTEM: evicted, then an exec of its vm leaves it in SYSTEM */
	uint32_t e = vm_new(c, 0), vs = bo_new(c, sz, VMB_PLACE_VRAM | VMB_PLACE_SYSTEM);
	n = bo_new(c, sz, VMB_PLACE_VRAM); /* no room: backed at its bind */
	struct xq x = xq_new(c, e);
	bind1(c, e, op_map(vs, 0, VA, sz, 0));
	assert_int_equal(bo_region(c, vs), VMB_REGION_VRAM);
	bind1(c, vm, op_map(n, 0, VA, sz, 0)); /* evicts vs */
	assert_int_equal(bo_region(c, vs), VMB_REGION_SYSTEM);
	uint64_t rs = vram_query(c).restores;
	uint32_t so = syncobj_new(c, 0);
	assert_int_equal(xq_fill(c, &x, VA, sz, 0x77777777u, so), 0);
	syncobj_wait1(c, so);
	assert_int_equal(vram_query(c).restores, rs);
	assert_int_equal(bo_region(c, vs), VMB_REGION_SYSTEM);
	assert_int_equal(gpu_read64(c, e, VA + sz - 8), 0x7777777777777777ull);
	validate_client(c);
	assert_int_equal(vmb_client_close(c), 0);
}

/*
 * An exec that must restore a BO of its vm while a bind of that vm waits for a gate: the call
 * returns 0 without waiting for the gate (a thread, 10 s: a hang otherwise), the exec's fence
 * signals only after the gate opens, and the exec wrote the restored BO.
 */
struct exec_call {
	struct vmb_client *c;
	struct xq *x;
	uint32_t so;
	atomic_int result; /* 1 while running */
};

static void *exec_call_run(void *arg)
{
	struct exec_call *e = arg;
	atomic_store(&e->result, xq_fill(e->c, e->x, VA, 4 * MiB, 0x42424242u, e->so));
	return NULL;
}

static void test_exec_restore_behind_gated_bind(void **state)
{
	(void)state;
	const uint64_t sz = 4 * MiB;
	struct vmb_client *c = open_soft(sz, 64 * MiB);
	uint32_t vm = vm_new(c, 0), other = vm_new(c, 0);
	uint32_t a = bo_new(c, sz, VMB_PLACE_VRAM), b = bo_new(c, sz, VMB_PLACE_VRAM);
	uint32_t sys = bo_new(c, sz, VMB_PLACE_SYSTEM);
	struct xq x = xq_new(c, vm);
	bind1(c, vm, op_map(a, 0, VA, sz, 0));
	gpu_fill(c, vm, VA, sz, 0x70);
	bind1(c, other, op_map(b, 0, VA, sz, 0)); /* evicts a */
	bind1(c, other, op_unmap(VA, sz));          /* b idle: evictable for a's return */
	assert_int_equal(bo_region(c, a), VMB_REGION_SYSTEM);
	struct gate g = gate_new(c);
	uint32_t sg = syncobj_new(c, 0);
	struct vmb_sync gs[2] = {sync_in(g.h), sync_out(sg)};
	struct vmb_bind_op gop = op_map(sys, 0, VA + 16 * MiB, sz, 0);
	bind_async(c, vm, 0, &gop, 1, gs, 2);
	struct exec_call e = {.c = c, .x = &x, .so = syncobj_new(c, 0)};
	atomic_init(&e.result, 1);
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, exec_call_run, &e), 0);
	for (int i = 0; i < 1000 && atomic_load(&e.result) == 1; i++)
		usleep(10000);
	int r = atomic_load(&e.result);
	int st = fence_status(c, e.so);
	if (r == 1)
		gate_open(&g);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(r, 0);
	assert_int_equal(st, VMB_SYNCOBJ_STATUS_PENDING);
	gate_open(&g);
	syncobj_wait1(c, e.so);
	syncobj_wait1(c, sg);
	assert_int_equal(bo_region(c, a), VMB_REGION_VRAM);
	assert_int_equal(gpu_read64(c, vm, VA + 8), 0x4242424242424242ull);
	assert_int_equal(gpu_read64(c, vm, VA + sz - 8), 0x4242424242424242ull);
	validate_client(c);
	assert_int_equal(vmb_client_close(c), 0);
}

/*
 * The wait for an eviction's copy (held back by the test hook) interrupted by signals (a handler
 * without SA_RESTART, sent until the call returns): a MAP in vm Y that needs a's room, a bound in
 * idle vm X, returns -EINTR with Y unchanged; once the copy is released the same call succeeds,
 * a's bytes intact in SYSTEM through X's re-pointed mapping. Then an exec of X that must restore a
 * (evicting Y's idle b) interrupted the same way: -EINTR, nothing queued; again after: done.
 */
static void on_usr1(int sig) { (void)sig; }

struct intr_call {
	struct vmb_client *c;
	uint32_t vm, bo;
	struct xq *x;
	uint32_t so;
	atomic_int result;
};

static void *intr_call_run(void *arg)
{
	struct intr_call *w = arg;
	int r = w->x ? xq_fill(w->c, w->x, VA, 4 * MiB, 0x13131313u, w->so)
		     : __bind1(w->c, w->vm, op_map(w->bo, 0, VA, 4 * MiB, 0));
	atomic_store(&w->result, r);
	return NULL;
}

static int interrupted_call(struct intr_call *w)
{
	atomic_init(&w->result, 1);
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, intr_call_run, w), 0);
	for (int i = 0; i < 1000 && atomic_load(&w->result) == 1; i++) {
		pthread_kill(t, SIGUSR1);
		usleep(10000);
	}
	if (atomic_load(&w->result) == 1)
		vmb_copy_hold(false); /* a hang: let it end before failing */
	assert_int_equal(pthread_join(t, NULL), 0);
	return atomic_load(&w->result);
}

static void test_evict_wait_eintr(void **state)
{
	(void)state;
#ifdef VMB_FENCE_CONDVAR
	skip();
#endif
	const uint64_t sz = 4 * MiB;
	struct sigaction sa = {.sa_handler = on_usr1}, old;
	assert_int_equal(sigaction(SIGUSR1, &sa, &old), 0);
	struct vmb_client *c = open_soft(sz, 64 * MiB);
	uint32_t x = vm_new(c, 0), y = vm_new(c, 0);
	uint32_t a = bo_new(c, sz, VMB_PLACE_VRAM), b = bo_new(c, sz, VMB_PLACE_VRAM);
	struct xq xq = xq_new(c, x);
	bind1(c, x, op_map(a, 0, VA, sz, 0));
	gpu_fill(c, x, VA, sz, 0x90);
	vmb_copy_hold(true);
	struct intr_call w = {.c = c, .vm = y, .bo = b};
	int r = interrupted_call(&w);
	vmb_copy_hold(false);
	assert_int_equal(r, -EINTR);
	assert_int_equal(vm_stats(c, y).num_mappings, 0);
	bind1(c, y, op_map(b, 0, VA, sz, 0));
	assert_int_equal(bo_region(c, a), VMB_REGION_SYSTEM);
	assert_int_equal(bo_region(c, b), VMB_REGION_VRAM);
	gpu_check(c, x, VA, sz, 0x90);
	bind1(c, y, op_unmap(VA, sz)); /* b idle, unbound: a's exec may evict it */

	vmb_copy_hold(true);
	struct intr_call e = {.c = c, .x = &xq, .so = syncobj_new(c, 0)};
	r = interrupted_call(&e);
	vmb_copy_hold(false);
	assert_int_equal(r, -EINTR);
	assert_int_equal(fence_status(c, e.so), VMB_SYNCOBJ_STATUS_PENDING);
	struct vmb_exec_queue_query qq = {.exec_queue_id = xq.eq};
	assert_int_equal(vmb_exec_queue_query(c, &qq), 0);
	assert_int_equal(qq.jobs_done, 0);
	assert_int_equal(xq_fill(c, &xq, VA, sz, 0x13131313u, e.so), 0);
	syncobj_wait1(c, e.so);
	assert_int_equal(bo_region(c, a), VMB_REGION_VRAM);
	assert_int_equal(gpu_read64(c, x, VA + sz - 8), 0x1313131313131313ull);
	validate_client(c);
	assert_int_equal(vmb_client_close(c), 0);
	assert_int_equal(sigaction(SIGUSR1, &old, NULL), 0);
}

/*
 * An eviction's copy that fails (the test hook, -EIO): the MAP that needed the room fails with
 * -EIO and bans its own vm (the eviction is its device work, docs/UAPI.md "Residency"); the
 * evicted candidate stays where it was, its vm X untouched: a still in VRAM, X's mapping reads
 * every byte and X takes binds and execs.
 */
static void test_evict_copy_fails(void **state)
{
	(void)state;
	const uint64_t sz = 4 * MiB;
	struct vmb_client *c = open_soft(sz, 64 * MiB);
	uint32_t x = vm_new(c, 0), y = vm_new(c, 0);
	uint32_t a = bo_new(c, sz, VMB_PLACE_VRAM), b = bo_new(c, sz, VMB_PLACE_VRAM);
	struct xq xq = xq_new(c, x);
	bind1(c, x, op_map(a, 0, VA, sz, 0));
	gpu_fill(c, x, VA, sz, 0x91);
	vmb_copy_fail_after(1, -EIO);
	struct vmb_bind_op op = op_map(b, 0, VA, sz, 0);
	int r = __bind_ops(c, y, &op, 1);
	vmb_copy_fail_after(0, 0);
	assert_int_equal(r, -EIO);
	assert_int_equal(vm_stats(c, y).num_mappings, 0);
	assert_int_equal(bo_region(c, a), VMB_REGION_VRAM);
	gpu_check(c, x, VA, sz, 0x91);
	uint32_t so = syncobj_new(c, 0);
	assert_int_equal(xq_fill(c, &xq, VA, sz, 0x14141414u, so), 0);
	assert_int_equal(syncobj_error(c, so), 0);
	assert_int_equal(gpu_read64(c, x, VA + 8), 0x1414141414141414ull);
	bind1(c, x, op_unmap(VA, sz));
	validate_client(c);
	assert_int_equal(vmb_client_close(c), 0);
}

/*
 * An eviction in flight (its copy held) that re-maps a's mapping in vm X, while X is destroyed
 * and a's handle too (another thread: the destroy may wait for the copy): once the copy is
 * released the MAP that evicted returns 0, the destroy returns, and the client validates and
 * closes (a freed when nothing holds it).
 */
struct destroy_call {
	struct vmb_client *c;
	uint32_t vm, bo;
	atomic_int result;
};

static void *destroy_run(void *arg)
{
	struct destroy_call *d = arg;
	struct vmb_vm_destroy vd = {.vm_id = d->vm};
	int r = vmb_vm_destroy(d->c, &vd);
	struct vmb_bo_destroy bd = {.handle = d->bo};
	if (!r)
		r = vmb_bo_destroy(d->c, &bd);
	atomic_store(&d->result, r);
	return NULL;
}

static void test_evict_held_vm_destroy(void **state)
{
	(void)state;
	const uint64_t sz = 4 * MiB;
	struct vmb_client *c = open_soft(sz, 64 * MiB);
	uint32_t x = vm_new(c, 0), y = vm_new(c, 0);
	uint32_t a = bo_new(c, sz, VMB_PLACE_VRAM), b = bo_new(c, sz, VMB_PLACE_VRAM);
	bind1(c, x, op_map(a, 0, VA, sz, 0));
	gpu_fill(c, x, VA, sz, 0x92);
	vmb_copy_hold(true);
	struct intr_call w = {.c = c, .vm = y, .bo = b};
	atomic_init(&w.result, 1);
	pthread_t t, u;
	assert_int_equal(pthread_create(&t, NULL, intr_call_run, &w), 0);
	usleep(50000); /* the eviction submitted (or not yet: either order must work) */
	struct destroy_call d = {.c = c, .vm = x, .bo = a};
	atomic_init(&d.result, 1);
	assert_int_equal(pthread_create(&u, NULL, destroy_run, &d), 0);
	usleep(50000);
	vmb_copy_hold(false);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(pthread_join(u, NULL), 0);
	assert_int_equal(atomic_load(&w.result), 0);
	assert_int_equal(atomic_load(&d.result), 0);
	assert_int_equal(bo_region(c, b), VMB_REGION_VRAM);
	gpu_write64(c, y, VA + 8, 3);
	assert_int_equal(gpu_read64(c, y, VA + 8), 3);
	validate_client(c);
	assert_int_equal(vmb_client_close(c), 0);
}

/*
 * The soft DMA engine held, @w's MAP (on thread *@t) needs the room of a BO of @sz bytes in VRAM:
 * its call submits that BO's eviction and waits for it. True once the eviction is submitted (the
 * BO's SYSTEM copy allocated), false after a generous bound. The caller releases the copy.
 */
static bool eviction_held(struct vmb_client *c, struct intr_call *w, pthread_t *t, uint64_t sz)
{
	struct vmb_region_query sq = {.region = VMB_REGION_SYSTEM};
	assert_int_equal(vmb_region_query(c, &sq), 0);
	uint64_t sys_free = sq.free;
	vmb_copy_hold(true);
	atomic_init(&w->result, 1);
	assert_int_equal(pthread_create(t, NULL, intr_call_run, w), 0);
	for (int i = 0; i < 1000; i++) {
		assert_int_equal(vmb_region_query(c, &sq), 0);
		if (sq.free + sz <= sys_free)
			return true;
		usleep(10000);
	}
	return false;
}

/*
 * A bind of a vm whose BO an eviction in flight (its copy held) is re-mapping follows that move:
 * an asynchronous bind of the vm with nothing else to wait for (another range, its own queue
 * idle) is not done in the call: its user fence and out-syncobj wait for the copy; after it,
 * the vm reads the evicted BO's bytes and the new mapping's.
 */
static void test_bind_follows_pending_eviction(void **state)
{
	(void)state;
	const uint64_t sz = 4 * MiB;
	struct vmb_client *c = open_soft(sz, 64 * MiB);
	uint32_t x = vm_new(c, 0), y = vm_new(c, 0), q = queue_new(c, x);
	uint32_t a = bo_new(c, sz, VMB_PLACE_VRAM), b = bo_new(c, sz, VMB_PLACE_VRAM);
	uint32_t sys = bo_new(c, sz, VMB_PLACE_SYSTEM);
	bind1(c, x, op_map(a, 0, VA, sz, 0));
	gpu_fill(c, x, VA, sz, 0x93);
	struct intr_call w = {.c = c, .vm = y, .bo = b};
	pthread_t t;
	bool submitted = eviction_held(c, &w, &t, sz);
	uint32_t so = syncobj_new(c, 0);
	uint64_t uf = 0;
	struct vmb_sync sy[2] = {sync_out(so), sync_ufence(&uf, 8)};
	struct vmb_bind_op op = op_map(sys, 0, VA + 16 * MiB, sz, 0);
	int r = __bind_async(c, x, q, &op, 1, sy, 2);
	uint64_t uf_at_return = __atomic_load_n(&uf, __ATOMIC_ACQUIRE);
	int st = fence_status(c, so);
	vmb_copy_hold(false);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_true(submitted);
	assert_int_equal(r, 0);
	assert_int_equal(uf_at_return, 0);
	assert_int_equal(st, VMB_SYNCOBJ_STATUS_PENDING);
	assert_int_equal(atomic_load(&w.result), 0);
	syncobj_wait1(c, so);
	assert_int_equal(__atomic_load_n(&uf, __ATOMIC_ACQUIRE), 8);
	gpu_check(c, x, VA, sz, 0x93);
	gpu_write64(c, x, VA + 16 * MiB, 4);
	assert_int_equal(bo_read64(c, sys, 0), 4);
	validate_client(c);
	assert_int_equal(vmb_client_close(c), 0);
}

/*
 * An asynchronous MAP of a BO whose eviction is in flight (its copy held), in a vm that does not
 * map it: the call returns at once (the eviction is device work, but the MAP need not wait for it
 * in the call), its job follows the eviction and maps the BO where the eviction leaves it (SYSTEM:
 * its placements allow it): the bytes read back there, the client's check passes. Before, the
 * call waited for the copy (a hang here: the test's own thread holds it). The same for an
 * asynchronous PREFETCH of the BO to SYSTEM in the vm that maps it (no move of its own: its job
 * follows the eviction; before, it waited for the copy too).
 */
struct async_bind {
	struct vmb_client *c;
	uint32_t vm, so;
	struct vmb_bind_op op;
	atomic_int result;
};

static void *async_bind_run(void *arg)
{
	struct async_bind *m = arg;
	struct vmb_sync out = sync_out(m->so);
	atomic_store(&m->result, __bind_async(m->c, m->vm, 0, &m->op, 1, &out, 1));
	return NULL;
}

static void async_bind_follows_pending_eviction(bool prefetch)
{
	const uint64_t sz = 4 * MiB;
	struct vmb_client *c = open_soft(sz, 64 * MiB);
	uint32_t x = vm_new(c, 0), y = vm_new(c, 0), z = vm_new(c, 0);
	uint32_t a = bo_new(c, sz, VMB_PLACE_VRAM | VMB_PLACE_SYSTEM), b = bo_new(c, sz, VMB_PLACE_VRAM);
	bind1(c, x, op_map(a, 0, VA, sz, 0));
	assert_int_equal(bo_region(c, a), VMB_REGION_VRAM);
	gpu_fill(c, x, VA, sz, 0x94);
	struct intr_call w = {.c = c, .vm = y, .bo = b};
	pthread_t t, u;
	bool submitted = eviction_held(c, &w, &t, sz);
	struct async_bind m = {.c = c, .vm = prefetch ? x : z, .so = syncobj_new(c, 0),
			       .op = prefetch ? op_prefetch(VA, sz, VMB_REGION_SYSTEM) : op_map(a, 0, VA, sz, 0)};
	atomic_init(&m.result, 1);
	assert_int_equal(pthread_create(&u, NULL, async_bind_run, &m), 0);
	int j;
	for (j = 0; j < 1000 && atomic_load(&m.result) == 1; j++)
		usleep(10000);
	int r = atomic_load(&m.result);
	int st = fence_status(c, m.so);
	vmb_copy_hold(false); /* also ends a hang before the asserts */
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(pthread_join(u, NULL), 0);
	assert_true(submitted);
	assert_int_equal(r, 0); /* returned while the copy was held */
	assert_int_equal(st, VMB_SYNCOBJ_STATUS_PENDING);
	assert_int_equal(atomic_load(&w.result), 0);
	assert_int_equal(syncobj_error(c, m.so), 0);
	assert_int_equal(bo_region(c, a), VMB_REGION_SYSTEM);
	if (!prefetch)
		gpu_check(c, z, VA, sz, 0x94);
	gpu_check(c, x, VA, sz, 0x94);
	validate_client(c);
	assert_int_equal(vmb_client_close(c), 0);
}

static void test_async_bind_follows_pending_eviction(void **state)
{
	(void)state;
	async_bind_follows_pending_eviction(false); /* a MAP */
	async_bind_follows_pending_eviction(true);  /* a PREFETCH */
}

/*
 * A vm that maps two BOs moved by two pending jobs of other vms: the first move (a PREFETCH of
 * vm w1) gated, the second (a PREFETCH of vm w2, or an eviction a bind of vm u needs for room;
 * or the PREFETCH of w2, then w2 destroyed: its job cancelled if it had not started, its fence
 * signalled at once) submitted after it. A later bind of the vm follows both moves, not only
 * the last one: an asynchronous UNMAP of the gated move's range stays pending until the gate
 * opens, and the move
 * then does not map the BO there again (before: the UNMAP followed only the second move, which
 * ended first, and committed in the call; the gated move then re-mapped the range: the client's
 * check found page tables mapping 4 MiB more than the tree, and the GPU view read the BO
 * through the unmapped range). The second move may also wait for the first, or (an eviction) not
 * be made (the bind that needs room: -ENOSPC, then the same call succeeds once the gate has
 * opened): whichever, the vm's binds never overtake the first.
 */
enum second_move { SECOND_PREFETCH, SECOND_EVICT, SECOND_CANCELLED };

static void later_bind_follows_every_move(enum second_move second)
{
	bool evict = second == SECOND_EVICT;
	const uint64_t sz = 4 * MiB;
	struct vmb_client *c = open_soft(evict ? 2 * sz : 8 * sz, 64 * MiB);
	uint32_t v = vm_new(c, 0), w1 = vm_new(c, 0), w2 = vm_new(c, 0), u = vm_new(c, 0);
	uint32_t a1 = bo_new(c, sz, VMB_PLACE_VRAM | VMB_PLACE_SYSTEM), a2 = bo_new(c, sz, VMB_PLACE_VRAM | VMB_PLACE_SYSTEM);
	bind1(c, v, op_map(a1, 0, VA, sz, 0));
	bind1(c, v, op_map(a2, 0, VA + 16 * MiB, sz, 0));
	bind1(c, w1, op_map(a1, 0, VA, sz, 0));
	bind1(c, w2, op_map(a2, 0, VA, sz, 0));
	assert_int_equal(bo_region(c, a1), VMB_REGION_VRAM);
	assert_int_equal(bo_region(c, a2), VMB_REGION_VRAM);
	gpu_fill(c, v, VA, sz, 0x51);
	gpu_fill(c, v, VA + 16 * MiB, sz, 0x52);

	struct gate g = gate_new(c);
	struct vmb_sync in = sync_in(g.h);
	struct vmb_bind_op p1 = op_prefetch(VA, sz, VMB_REGION_SYSTEM);
	bind_async(c, w1, 0, &p1, 1, &in, 1); /* moves a1, re-mapping it in v: gated */
	uint32_t so2 = syncobj_new(c, 0), cbo = 0;
	int mr = 0;
	if (evict) {
		/* VRAM is full (a1, a2): u's MAP of a new VRAM BO needs a2's room (a1 is moving) */
		cbo = bo_new(c, sz, VMB_PLACE_VRAM);
		mr = __bind1(c, u, op_map(cbo, 0, VA, sz, 0));
		assert_true(mr == 0 || mr == -ENOSPC);
		if (!mr)
			assert_int_equal(bo_region(c, a2), VMB_REGION_SYSTEM);
	} else {
		struct vmb_sync out = sync_out(so2);
		struct vmb_bind_op p2 = op_prefetch(VA, sz, VMB_REGION_SYSTEM);
		bind_async(c, w2, 0, &p2, 1, &out, 1); /* moves a2, re-mapping it in v */
		int r = __syncobj_wait1(c, so2, 0, 1000000000, 0); /* done, or following the first */
		assert_true(r == 0 || r == -ETIME);
		if (second == SECOND_CANCELLED) /* its vm's destroy runs its job: cancelled if not started */
			vm_destroy1(c, w2);
	}
	uint32_t so3 = syncobj_new(c, 0);
	struct vmb_sync out3 = sync_out(so3);
	struct vmb_bind_op un = op_unmap(VA, sz);
	int ur = __bind_async(c, v, 0, &un, 1, &out3, 1);
	int r3 = ur ? ur : __syncobj_wait1(c, so3, 0, 200000000, 0); /* a bind that did not wait ends */
	gate_open(&g);
	assert_int_equal(ur, 0);
	assert_int_equal(r3, -ETIME); /* it waits for the gated move */
	syncobj_wait1(c, so3);
	assert_int_equal(syncobj_error(c, so3), 0);
	if (second == SECOND_PREFETCH) {
		syncobj_wait1(c, so2);
		assert_int_equal(syncobj_error(c, so2), 0);
	} else if (mr) {
		/* the room came with the gated move: the same call again succeeds */
		assert_int_equal(__bind1(c, u, op_map(cbo, 0, VA, sz, 0)), 0);
	}
	assert_int_equal(bo_region(c, a1), VMB_REGION_SYSTEM);
	uint64_t x;
	assert_int_equal(__gpu_rw(c, v, VA, &x, 8, false), -EFAULT); /* unmapped: no stale entry */
	gpu_check(c, w1, VA, sz, 0x51);
	gpu_check(c, v, VA + 16 * MiB, sz, 0x52);
	if (second != SECOND_CANCELLED)
		gpu_check(c, w2, VA, sz, 0x52);
	validate_client(c);
	assert_int_equal(vmb_client_close(c), 0);
}

static void test_later_bind_follows_every_move(void **state)
{
	(void)state;
	later_bind_follows_every_move(SECOND_PREFETCH);
	later_bind_follows_every_move(SECOND_EVICT);
	later_bind_follows_every_move(SECOND_CANCELLED); /* a second PREFETCH, then its vm destroyed */
}

/*
 * Discrete shape: an exec whose vm maps an evicted VRAM-only BO that the CPU maps (possible while
 * it is in SYSTEM) cannot bring it back (the CPU pointer would outlive its reach, as for a bind
 * that would restore it): -EBUSY, a documented errno of vmb_exec (before: -EBUSY, which its
 * header and docs/UAPI.md did not list), nothing queued (the out-syncobj gets no fence, the
 * queue is not banned, the BO stays in SYSTEM with its bytes); after the munmap the same exec
 * runs with the BO back in VRAM.
 */
static void test_exec_restore_cpu_mapped(void **state)
{
	(void)state;
	const uint64_t sz = 2 * MiB;
	struct vmb_client *c = open_soft(2 * sz, 64 * MiB);
	if (vram_cpu_mappable(c)) { /* integrated: the BO may move to VRAM mapped */
		assert_int_equal(vmb_client_close(c), 0);
		skip();
	}
	uint32_t x = vm_new(c, 0), y = vm_new(c, 0);
	uint32_t a = bo_new(c, sz, VMB_PLACE_VRAM), d = bo_new(c, sz, VMB_PLACE_VRAM), e = bo_new(c, sz, VMB_PLACE_VRAM);
	struct xq xq = xq_new(c, x);
	bind1(c, x, op_map(a, 0, VA, sz, 0));
	bind1(c, x, op_map(d, 0, VA + 8 * MiB, sz, 0));
	gpu_fill(c, x, VA, sz, 0x61);
	bind1(c, y, op_map(e, 0, VA, sz, 0)); /* evicts a (the least recently mapped) */
	assert_int_equal(bo_region(c, a), VMB_REGION_SYSTEM);
	struct vmb_bo_mmap m = {.handle = a};
	assert_int_equal(vmb_bo_mmap(c, &m), 0);
	uint64_t *p = (uint64_t *)(uintptr_t)m.ptr;
	assert_int_equal(p[1], word(0x61, 1));
	uint32_t so = syncobj_new(c, 0);
	uint64_t rs = vram_query(c).restores;
	int r = xq_fill(c, &xq, VA, sz, 0x62626262u, so);
	assert_true(documented("vmb_exec", r));
	assert_int_equal(r, -EBUSY);
	assert_int_equal(__syncobj_wait1(c, so, 0, 0, 0), -EINVAL); /* nothing submitted */
	struct vmb_exec_queue_query qq = {.exec_queue_id = xq.eq};
	assert_int_equal(vmb_exec_queue_query(c, &qq), 0);
	assert_int_equal(qq.flags & VMB_EXEC_QUEUE_BANNED, 0);
	assert_int_equal(bo_region(c, a), VMB_REGION_SYSTEM);
	assert_int_equal(vram_query(c).restores, rs);
	assert_int_equal(p[sz / 8 - 1], word(0x61, sz / 8 - 1));
	struct vmb_bo_munmap u = {.handle = a, .ptr = m.ptr};
	assert_int_equal(vmb_bo_munmap(c, &u), 0);
	assert_int_equal(xq_fill(c, &xq, VA, sz, 0x62626262u, so), 0);
	syncobj_wait1(c, so);
	assert_int_equal(syncobj_error(c, so), 0);
	assert_int_equal(bo_region(c, a), VMB_REGION_VRAM);
	assert_int_equal(gpu_read64(c, x, VA + sz - 8), 0x6262626262626262ull);
	validate_client(c);
	assert_int_equal(vmb_client_close(c), 0);
}

/*
 * An exec of a vm whose two evicted VRAM-only BOs come back by two moves: b1's by an asynchronous
 * MAP in vm z, behind a gated bind of z (pending), b2's by an asynchronous MAP in vm z2 (or the
 * exec's own restore). The exec follows both (docs/UAPI.md "Restore": its out-fence never
 * signals before, its commands see the BO in VRAM): it has not run while the gate is closed,
 * then writes b1 in VRAM. Before: it
 * followed only the vm's newest move (resident_last, b2's), which does not follow b1's (a job
 * of another vm), and ran with b1 in SYSTEM ("0 != -ETIME").
 */
static void test_exec_follows_every_restore(void **state)
{
	(void)state;
	const uint64_t sz = 2 * MiB;
	struct vmb_client *c = open_soft(2 * sz, 64 * MiB);
	uint32_t v = vm_new(c, 0), z = vm_new(c, 0), u = vm_new(c, 0);
	uint32_t b1 = bo_new(c, sz, VMB_PLACE_VRAM), b2 = bo_new(c, sz, VMB_PLACE_VRAM), e = bo_new(c, 2 * sz, VMB_PLACE_VRAM);
	struct xq xq = xq_new(c, v);
	bind1(c, v, op_map(b1, 0, VA, sz, 0));
	bind1(c, v, op_map(b2, 0, VA + 8 * MiB, sz, 0));
	bind1(c, u, op_map(e, 0, VA, 2 * sz, 0)); /* evicts b1 and b2 */
	bind1(c, u, op_unmap(VA, 2 * sz));
	bo_destroy1(c, e);
	assert_int_equal(bo_region(c, b1), VMB_REGION_SYSTEM);
	assert_int_equal(bo_region(c, b2), VMB_REGION_SYSTEM);
	struct gate g = gate_new(c);
	uint32_t nb = bo_new(c, sz, VMB_PLACE_SYSTEM), s1 = syncobj_new(c, 0);
	struct vmb_sync in = sync_in(g.h), out1 = sync_out(s1);
	struct vmb_bind_op o1 = op_map(nb, 0, 512 * MiB, sz, 0), o2 = op_map(b1, 0, VA, sz, 0);
	bind_async(c, z, 0, &o1, 1, &in, 1); /* gated */
	bind_async(c, z, 0, &o2, 1, &out1, 1); /* restores b1 behind it */
	uint32_t z2 = vm_new(c, 0), s2 = syncobj_new(c, 0);
	struct vmb_sync out2 = sync_out(s2);
	struct vmb_bind_op o3 = op_map(b2, 0, VA, sz, 0);
	bind_async(c, z2, 0, &o3, 1, &out2, 1); /* b2's move: not behind the gate */
	int w2 = __syncobj_wait1(c, s2, 0, 2000000000, 0);
	assert_true(w2 == 0 || w2 == -ETIME);
	uint32_t so = syncobj_new(c, 0);
	int r = xq_fill(c, &xq, VA, sz, 0x63636363u, so);
	int w = r ? r : __syncobj_wait1(c, so, 0, 300000000, 0);
	uint32_t reg = bo_region(c, b1);
	gate_open(&g);
	assert_int_equal(r, 0);
	assert_int_equal(w, -ETIME); /* behind b1's restore */
	assert_int_equal(reg, VMB_REGION_SYSTEM);
	syncobj_wait1(c, so);
	syncobj_wait1(c, s1);
	assert_int_equal(syncobj_error(c, so), 0);
	assert_int_equal(bo_region(c, b1), VMB_REGION_VRAM);
	assert_int_equal(gpu_read64(c, v, VA + sz - 8), 0x6363636363636363ull);
	validate_client(c);
	assert_int_equal(vmb_client_close(c), 0);
}

/*
 * Threads each binding a new VRAM BO in its own vm, writing it, reading it back and unbinding it,
 * VRAM room for 4 of the 2 MiB BOs and 4 threads: whatever the others are doing, VRAM always
 * holds an idle BO (unbound, or bound in a vm with nothing pending) or one on its way out, so no
 * bind may fail with -ENOSPC (before: a bind whose only candidates were being evicted by another
 * thread's call found nothing to pick). Every BO's bytes are checked at the end.
 */
#define NT 4
#define NI 24
struct churn {
	struct vmb_client *c;
	int idx, err;
	uint32_t bo[NI];
};

static void *churn_run(void *arg)
{
	struct churn *t = arg;
	uint32_t vm = vm_new(t->c, 0);
	uint64_t *buf = malloc(2 * MiB);
	for (int i = 0; i < NI && !t->err; i++) {
		uint32_t tag = 0x1000u + (uint32_t)(t->idx * NI + i);
		t->bo[i] = bo_new(t->c, 2 * MiB, VMB_PLACE_VRAM);
		if ((t->err = __bind1(t->c, vm, op_map(t->bo[i], 0, VA, 2 * MiB, 0)))) {
			print_error("thread %d BO %d: bind %d\n", t->idx, i, t->err);
			break;
		}
		for (uint64_t w = 0; w < 2 * MiB / 8; w++)
			buf[w] = word(tag, w);
		t->err = __gpu_rw(t->c, vm, VA, buf, 2 * MiB, true);
		if (!t->err)
			t->err = __bind1(t->c, vm, op_unmap(VA, 2 * MiB));
	}
	free(buf);
	return NULL;
}

static void test_threads_no_spurious_enospc(void **state)
{
	(void)state;
	struct vmb_client *c = open_soft_at("soft:2", NT * 2 * MiB, 256 * MiB); /* its own instance */
	struct churn t[NT];
	pthread_t th[NT];
	for (int i = 0; i < NT; i++) {
		t[i] = (struct churn){.c = c, .idx = i};
		assert_int_equal(pthread_create(&th[i], NULL, churn_run, &t[i]), 0);
	}
	for (int i = 0; i < NT; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < NT; i++)
		assert_int_equal(t[i].err, 0);
	uint32_t vm = vm_new(c, 0);
	for (int i = 0; i < NT; i++)
		for (int j = 0; j < NI; j++) {
			bind1(c, vm, op_map(t[i].bo[j], 0, VA, 2 * MiB, 0));
			gpu_check(c, vm, VA, 2 * MiB, 0x1000u + (uint32_t)(i * NI + j));
			bind1(c, vm, op_unmap(VA, 2 * MiB));
		}
	validate_client(c);
	assert_int_equal(vmb_client_close(c), 0);
}

/*
 * Another client's BO, bound in that client's idle vm, evicted by this client's MAP while its
 * copy is held; that client closed meanwhile from another thread: the MAP returns 0, the close
 * returns 0 (once the copy is released at the latest), nothing leaks or is used after free (ASan).
 */
struct close_call {
	struct vmb_client *c;
	atomic_int result;
};

static void *close_run(void *arg)
{
	struct close_call *k = arg;
	atomic_store(&k->result, vmb_client_close(k->c));
	return NULL;
}

static void test_evict_held_client_close(void **state)
{
	(void)state;
	const uint64_t sz = 4 * MiB;
	struct vmb_client *c = open_soft(sz, 64 * MiB), *o = open_soft(sz, 64 * MiB);
	uint32_t ovm = vm_new(o, 0), obo = bo_new(o, sz, VMB_PLACE_VRAM);
	bind1(o, ovm, op_map(obo, 0, VA, sz, 0));
	gpu_fill(o, ovm, VA, sz, 0x94);
	uint32_t y = vm_new(c, 0), b = bo_new(c, sz, VMB_PLACE_VRAM);
	vmb_copy_hold(true);
	struct intr_call w = {.c = c, .vm = y, .bo = b};
	atomic_init(&w.result, 1);
	pthread_t t, u;
	assert_int_equal(pthread_create(&t, NULL, intr_call_run, &w), 0);
	usleep(50000);
	struct close_call k = {.c = o};
	atomic_init(&k.result, 1);
	assert_int_equal(pthread_create(&u, NULL, close_run, &k), 0);
	usleep(50000);
	vmb_copy_hold(false);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(pthread_join(u, NULL), 0);
	assert_int_equal(atomic_load(&w.result), 0);
	assert_int_equal(atomic_load(&k.result), 0);
	assert_int_equal(bo_region(c, b), VMB_REGION_VRAM);
	gpu_fill(c, y, VA, sz, 0x95);
	gpu_check(c, y, VA, sz, 0x95);
	validate_client(c);
	assert_int_equal(vmb_client_close(c), 0);
}

/*
 * An exec whose restore's copy is held, its vm destroyed from another thread before the copy is
 * released: the exec's call returned 0 and its fence signals (done or cancelled: it must not
 * hang) within 10 s of the release; the client validates and closes.
 */
struct vm_destroy_call {
	struct vmb_client *c;
	uint32_t vm;
	atomic_int result;
};

static void *vm_destroy_run(void *arg)
{
	struct vm_destroy_call *d = arg;
	struct vmb_vm_destroy vd = {.vm_id = d->vm};
	atomic_store(&d->result, vmb_vm_destroy(d->c, &vd));
	return NULL;
}

static void test_exec_restore_held_vm_destroy(void **state)
{
	(void)state;
	const uint64_t sz = 4 * MiB;
	struct vmb_client *c = open_soft(sz, 64 * MiB);
	uint32_t x = vm_new(c, 0), y = vm_new(c, 0);
	uint32_t a = bo_new(c, sz, VMB_PLACE_VRAM), b = bo_new(c, sz, VMB_PLACE_VRAM);
	struct xq xq = xq_new(c, x);
	bind1(c, x, op_map(a, 0, VA, sz, 0));
	bind1(c, y, op_map(b, 0, VA, sz, 0)); /* evicts a */
	bind1(c, y, op_unmap(VA, sz));
	assert_int_equal(bo_region(c, a), VMB_REGION_SYSTEM);
	vmb_copy_hold(true);
	uint32_t so = syncobj_new(c, 0);
	struct exec_call e = {.c = c, .x = &xq, .so = so};
	atomic_init(&e.result, 1);
	pthread_t t, u;
	struct vmb_region_query sq = {.region = VMB_REGION_SYSTEM};
	assert_int_equal(vmb_region_query(c, &sq), 0);
	uint64_t sys_free = sq.free;
	assert_int_equal(pthread_create(&t, NULL, exec_call_run, &e), 0);
	for (int i = 0; i < 1000; i++) { /* the exec waits: b's eviction (for a's room) submitted */
		assert_int_equal(vmb_region_query(c, &sq), 0);
		if (sq.free + sz <= sys_free)
			break;
		usleep(10000);
	}
	struct vm_destroy_call d = {.c = c, .vm = x};
	atomic_init(&d.result, 1);
	assert_int_equal(pthread_create(&u, NULL, vm_destroy_run, &d), 0);
	usleep(50000);
	vmb_copy_hold(false);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(pthread_join(u, NULL), 0);
	int r = atomic_load(&e.result);
	assert_true(r == 0 || r == -ENOENT); /* the exec queued before the destroy, or not */
	assert_int_equal(atomic_load(&d.result), 0);
	if (r == 0)
		assert_int_equal(__syncobj_wait1(c, so, 0, TEN_S, 0), 0);
	validate_client(c);
	assert_int_equal(vmb_client_close(c), 0);
}

/*
 * Threads submitting asynchronous binds on one explicit bind queue (each its own range: most
 * are done in the call, the others queued behind a bind of another thread; the queue's spare
 * job record is passed between them): every bind's user fence is written by the time a barrier
 * of the queue signals, the binds of one thread took effect in its order (its last MAP is what
 * the GPU reads), and the client validates. Run under TSan too.
 */
#define HT 4
#define HN 200
struct hammer {
	struct vmb_client *c;
	uint32_t vm, q, bo;
	int idx, err;
	uint64_t uf[HN];
};

static void *hammer_run(void *arg)
{
	struct hammer *h = arg;
	uint64_t va = VA + (uint64_t)h->idx * 16 * MiB;
	for (int i = 0; i < HN && !h->err; i++) {
		struct vmb_sync s = sync_ufence(&h->uf[i], (uint64_t)i + 1);
		struct vmb_bind_op op = (i & 1) ? op_unmap(va, 64 * KiB) : op_map(h->bo, (uint64_t)(i % 8) * 64 * KiB, va, 64 * KiB, 0);
		h->err = __bind_async(h->c, h->vm, h->q, &op, 1, &s, 1);
	}
	if (!h->err) { /* last: a MAP of offset 192 KiB */
		struct vmb_bind_op op = op_map(h->bo, 192 * KiB, va, 64 * KiB, 0);
		h->err = __bind_async(h->c, h->vm, h->q, &op, 1, NULL, 0);
	}
	return NULL;
}

static void test_async_one_queue_threads(void **state)
{
	(void)state;
	struct vmb_client *c = open_soft(8 * MiB, 64 * MiB);
	if (granule_of(c) > 64 * KiB) {
		assert_int_equal(vmb_client_close(c), 0);
		skip();
	}
	uint32_t vm = vm_new(c, 0), q = queue_new(c, vm), bo = bo_new(c, 512 * KiB, VMB_PLACE_SYSTEM);
	for (uint64_t off = 0; off < 512 * KiB; off += 64 * KiB) {
		uint64_t v = off;
		struct vmb_bo_mmap m = {.handle = bo};
		assert_int_equal(vmb_bo_mmap(c, &m), 0);
		*(uint64_t *)(uintptr_t)(m.ptr + off) = v | 0xabc;
	}
	struct hammer h[HT];
	pthread_t t[HT];
	for (int i = 0; i < HT; i++) {
		h[i] = (struct hammer){.c = c, .vm = vm, .q = q, .bo = bo, .idx = i};
		assert_int_equal(pthread_create(&t[i], NULL, hammer_run, &h[i]), 0);
	}
	for (int i = 0; i < HT; i++)
		pthread_join(t[i], NULL);
	uint32_t so = syncobj_new(c, 0);
	struct vmb_sync bs = sync_out(so);
	assert_int_equal(__bind_async(c, vm, q, NULL, 0, &bs, 1), 0); /* a barrier */
	syncobj_wait1(c, so);
	for (int i = 0; i < HT; i++) {
		assert_int_equal(h[i].err, 0);
		for (int j = 0; j < HN; j++)
			assert_int_equal(__atomic_load_n(&h[i].uf[j], __ATOMIC_ACQUIRE), (uint64_t)j + 1);
		assert_int_equal(gpu_read64(c, vm, VA + (uint64_t)i * 16 * MiB), (192 * KiB) | 0xabc);
	}
	assert_int_equal(vm_stats(c, vm).num_mappings, HT);
	validate_client(c);
	assert_int_equal(vmb_client_close(c), 0);
}

/*
 * The B+tree VA tree: unbinds never allocate, whatever the tree's height. 3000 mappings (one
 * granule each, a gap between: a tree of several levels), then every host allocation failing
 * from the first: a split inside each of 400 3-granule mappings elsewhere (the first from the
 * vm's reserve, then -ENOMEM with nothing changed: the mapping count as before), every other
 * mapping removed one by one (leaves underflow and merge), the others trimmed at the front, and
 * at last the whole range unmapped. Each removal and trim 0; the tree and the page tables agree after each phase.
 */
static void test_btree_unmap_nofail(void **state)
{
	(void)state;
	enum { NM = 3000, NS = 400 };
	struct vmb_client *c = open_soft(8 * MiB, 64 * MiB);
	uint64_t g = granule_of(c);
	uint32_t vm = vm_new(c, 0), bo = bo_new(c, 4 * g, VMB_PLACE_SYSTEM);
	const uint64_t base = 1ull << 40, sbase = 1ull << 41;
	for (unsigned int i = 0; i < NM; i++)
		bind1(c, vm, op_map(bo, 0, base + (uint64_t)i * 4 * g, 2 * g, 0));
	for (unsigned int i = 0; i < NS; i++)
		bind1(c, vm, op_map(bo, 0, sbase + (uint64_t)i * 4 * g, 3 * g, 0));
	validate_client(c);
	vmb_alloc_fail_from(1);
	int bad = 0, splits = 0, enomem = 0;
	for (unsigned int i = 0; i < NS && !bad; i++) { /* splits first: no node freed yet */
		uint32_t before = vm_stats(c, vm).num_mappings;
		int r = __bind1(c, vm, op_unmap(sbase + (uint64_t)i * 4 * g + g, g));
		if (r == 0)
			splits++;
		else if (r == -ENOMEM && vm_stats(c, vm).num_mappings == before)
			enomem++;
		else
			bad = r ? r : -1;
	}
	int splits1 = splits, enomem1 = enomem; /* some from the reserve, then -ENOMEM */
	splits = enomem = 0;
	for (unsigned int i = 0; i < NS && !bad; i++) /* the split ones: trim their back piece */
		bad = __bind1(c, vm, op_unmap(sbase + (uint64_t)i * 4 * g + 2 * g, g));
	for (unsigned int i = 0; i < NM && !bad; i += 2)
		bad = __bind1(c, vm, op_unmap(base + (uint64_t)i * 4 * g, 2 * g));
	for (unsigned int i = 1; i < NM && !bad; i += 2)
		bad = __bind1(c, vm, op_unmap(base + (uint64_t)i * 4 * g, g));
	for (unsigned int i = 0; i < NS && !bad; i++) {
		uint32_t before = vm_stats(c, vm).num_mappings;
		int r = __bind1(c, vm, op_unmap(sbase + (uint64_t)i * 4 * g + g, g));
		if (r == 0)
			splits++;
		else if (r == -ENOMEM && vm_stats(c, vm).num_mappings == before)
			enomem++;
		else
			bad = r ? r : -1;
	}
	vmb_alloc_fail_from(0);
	assert_int_equal(bad, 0);
	assert_int_equal(splits + enomem, NS);
	assert_int_equal(vm_stats(c, vm).num_mappings, NM / 2 + NS);
	assert_true(splits1 > 0);
	assert_true(enomem1 > 0);
	validate_client(c);
	vmb_alloc_fail_from(1);
	int r = __bind1(c, vm, op_unmap(0, 1ull << 47));
	vmb_alloc_fail_from(0);
	assert_int_equal(r, 0);
	assert_int_equal(vm_stats(c, vm).num_mappings, 0);
	validate_client(c);
	assert_int_equal(vmb_client_close(c), 0);
}

/*
 * Restart mode, an op interrupted in its eviction's wait: a 3-op call whose op 1 needs room (an
 * idle vm's BO to evict, its copy held) gets -EINTR with op 0 done (cookie 1); once the copy is
 * released the restart completes ops 1 and 2 (before the pending-eviction wait: -ENOSPC, the
 * only candidate being on its way out).
 */
struct rbind_call {
	struct vmb_client *c;
	struct vmb_vm_bind *b;
	atomic_int result;
};

static void *rbind_run(void *arg)
{
	struct rbind_call *k = arg;
	atomic_store(&k->result, vmb_vm_bind(k->c, k->b));
	return NULL;
}

static void test_restart_mode_eintr_eviction(void **state)
{
	(void)state;
#ifdef VMB_FENCE_CONDVAR
	skip();
#endif
	const uint64_t sz = 4 * MiB;
	struct sigaction sa = {.sa_handler = on_usr1}, old;
	assert_int_equal(sigaction(SIGUSR1, &sa, &old), 0);
	struct vmb_client *c = open_soft(sz, 64 * MiB);
	uint32_t vm = vm_new(c, VMB_VM_CREATE_RESTART_MODE), x = vm_new(c, 0);
	uint32_t a = bo_new(c, sz, VMB_PLACE_VRAM), v = bo_new(c, sz, VMB_PLACE_VRAM);
	uint32_t s0 = bo_new(c, sz, VMB_PLACE_SYSTEM), s2 = bo_new(c, sz, VMB_PLACE_SYSTEM);
	bind1(c, x, op_map(a, 0, VA, sz, 0));
	gpu_fill(c, x, VA, sz, 0x96);
	struct vmb_bind_op ops[3] = {op_map(s0, 0, VA, sz, 0), op_map(v, 0, VA + 2 * sz, sz, 0),
				     op_map(s2, 0, VA + 4 * sz, sz, 0)};
	struct vmb_vm_bind bnd = {.vm_id = vm, .num_binds = 3, .binds = (uint64_t)(uintptr_t)ops};
	vmb_copy_hold(true);
	struct rbind_call k = {.c = c, .b = &bnd};
	atomic_init(&k.result, 1);
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, rbind_run, &k), 0);
	for (int i = 0; i < 1000 && atomic_load(&k.result) == 1; i++) {
		pthread_kill(t, SIGUSR1);
		usleep(10000);
	}
	vmb_copy_hold(false);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(atomic_load(&k.result), -EINTR);
	assert_int_equal(VMB_VM_BIND_RESTART_DONE(bnd.restart), 1);
	assert_int_equal(vm_stats(c, vm).num_mappings, 1);
	assert_int_equal(vmb_vm_bind(c, &bnd), 0);
	assert_int_equal(bnd.restart, 0);
	assert_int_equal(vm_stats(c, vm).num_mappings, 3);
	assert_int_equal(bo_region(c, v), VMB_REGION_VRAM);
	assert_int_equal(bo_region(c, a), VMB_REGION_SYSTEM);
	gpu_check(c, x, VA, sz, 0x96);
	validate_client(c);
	assert_int_equal(vmb_client_close(c), 0);
	assert_int_equal(sigaction(SIGUSR1, &old, NULL), 0);
}

/*
 * What else may be done to an evicted BO: its handle destroyed while still mapped (an exec of
 * its vm restores it all the same, the exec's writes land in it); UNMAP_ALL of an evicted BO
 * mapped twice (0, both mappings gone, nothing restored); a PREFETCH of an evicted BO's range to
 * VRAM (back in VRAM, bytes intact).
 */
static void test_evicted_bo_ops(void **state)
{
	(void)state;
	const uint64_t sz = 2 * MiB;
	struct vmb_client *c = open_soft(2 * sz, 64 * MiB);
	uint32_t x = vm_new(c, 0), y = vm_new(c, 0);
	uint32_t a = bo_new(c, sz, VMB_PLACE_VRAM), b = bo_new(c, 2 * sz, VMB_PLACE_VRAM);
	struct xq xq = xq_new(c, x);
	bind1(c, x, op_map(a, 0, VA, sz, 0));
	gpu_fill(c, x, VA, sz, 0x97);
	bo_destroy1(c, a); /* the mapping keeps it */
	bind1(c, y, op_map(b, 0, VA, 2 * sz, 0)); /* evicts a */
	bind1(c, y, op_unmap(VA, 2 * sz));
	gpu_check(c, x, VA, sz, 0x97);
	uint32_t so = syncobj_new(c, 0);
	assert_int_equal(xq_fill(c, &xq, VA, sz, 0x98989898u, so), 0);
	assert_int_equal(syncobj_error(c, so), 0);
	assert_int_equal(gpu_read64(c, x, VA + sz - 8), 0x9898989898989898ull);
	bind1(c, x, op_unmap(VA, sz));

	uint32_t d = bo_new(c, sz, VMB_PLACE_VRAM);
	bind1(c, x, op_map(d, 0, VA, sz, 0));
	bind1(c, x, op_map(d, 0, VA + 8 * MiB, sz, 0));
	gpu_fill(c, x, VA, sz, 0x99);
	bind1(c, y, op_map(b, 0, VA, 2 * sz, 0)); /* evicts d */
	bind1(c, y, op_unmap(VA, 2 * sz));
	assert_int_equal(bo_region(c, d), VMB_REGION_SYSTEM);
	uint64_t rs = vram_query(c).restores;
	bind1(c, x, op_unmap_all(d));
	assert_int_equal(vm_stats(c, x).num_mappings, 1); /* the command buffer's */
	assert_int_equal(bo_region(c, d), VMB_REGION_SYSTEM);
	assert_int_equal(vram_query(c).restores, rs);

	if (device_query(c).capabilities & VMB_CAP_PREFETCH) {
		bind1(c, x, op_map(d, 0, VA, sz, 0)); /* restores it (a bind that maps it) */
		gpu_check(c, x, VA, sz, 0x99);
		bind1(c, y, op_map(b, 0, VA, 2 * sz, 0)); /* evicts it again */
		bind1(c, y, op_unmap(VA, 2 * sz));
		assert_int_equal(bo_region(c, d), VMB_REGION_SYSTEM);
		bind1(c, x, op_prefetch(VA, sz, VMB_REGION_VRAM));
		assert_int_equal(bo_region(c, d), VMB_REGION_VRAM);
		gpu_check(c, x, VA, sz, 0x99);
	}
	validate_client(c);
	assert_int_equal(vmb_client_close(c), 0);
}

/*
 * A synchronous MAP that restores an evicted BO (room free: no eviction first) while the copy is
 * held and signals arrive: the restore is the call's own device work, begun, so the call does not
 * return -EINTR with it done: it returns 0 after the copy is released, the BO in VRAM, its bytes
 * intact (or, if a signal came before the job was submitted, -EINTR with nothing changed).
 */
static void test_sync_restore_signals(void **state)
{
	(void)state;
#ifdef VMB_FENCE_CONDVAR
	skip();
#endif
	const uint64_t sz = 4 * MiB;
	struct sigaction sa = {.sa_handler = on_usr1}, old;
	assert_int_equal(sigaction(SIGUSR1, &sa, &old), 0);
	struct vmb_client *c = open_soft(sz, 64 * MiB);
	uint32_t x = vm_new(c, 0), y = vm_new(c, 0);
	uint32_t a = bo_new(c, sz, VMB_PLACE_VRAM), b = bo_new(c, sz, VMB_PLACE_VRAM);
	bind1(c, x, op_map(a, 0, VA, sz, 0));
	gpu_fill(c, x, VA, sz, 0x9a);
	bind1(c, x, op_unmap(VA, sz));
	bind1(c, y, op_map(b, 0, VA, sz, 0)); /* evicts a */
	bind1(c, y, op_unmap(VA, sz));
	bo_destroy1(c, b); /* VRAM free: a's restore needs no eviction */
	assert_int_equal(bo_region(c, a), VMB_REGION_SYSTEM);
	vmb_copy_hold(true);
	struct intr_call w = {.c = c, .vm = x, .bo = a};
	atomic_init(&w.result, 1);
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, intr_call_run, &w), 0);
	for (int i = 0; i < 30 && atomic_load(&w.result) == 1; i++) {
		pthread_kill(t, SIGUSR1);
		usleep(10000);
	}
	vmb_copy_hold(false);
	for (int i = 0; i < 1000 && atomic_load(&w.result) == 1; i++)
		usleep(10000);
	assert_int_equal(pthread_join(t, NULL), 0);
	int r = atomic_load(&w.result);
	if (r == -EINTR) {
		assert_int_equal(vm_stats(c, x).num_mappings, 0);
		bind1(c, x, op_map(a, 0, VA, sz, 0));
	} else {
		assert_int_equal(r, 0);
	}
	assert_int_equal(vm_stats(c, x).num_mappings, 1);
	assert_int_equal(bo_region(c, a), VMB_REGION_VRAM);
	gpu_check(c, x, VA, sz, 0x9a);
	validate_client(c);
	assert_int_equal(vmb_client_close(c), 0);
	assert_int_equal(sigaction(SIGUSR1, &old, NULL), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cpu_map_evict_cycles),
		cmocka_unit_test(test_ufence_in_evicted_bo),
		cmocka_unit_test(test_exec_restore_enospc),
		cmocka_unit_test(test_evict_races_teardown),
		cmocka_unit_test(test_fork_evicted),
		cmocka_unit_test(test_restart_mode_enospc),
		cmocka_unit_test(test_async_done_in_call),
		cmocka_unit_test(test_async_in_call_commit_fails),
		cmocka_unit_test(test_async_ufence_only_commit_fails),
		cmocka_unit_test(test_async_ufence_only_order),
		cmocka_unit_test(test_async_no_overtake),
		cmocka_unit_test(test_exec_own_set_too_big),
		cmocka_unit_test(test_shared_with_lr_and_system_ok),
		cmocka_unit_test(test_exec_restore_behind_gated_bind),
		cmocka_unit_test(test_evict_wait_eintr),
		cmocka_unit_test(test_evict_copy_fails),
		cmocka_unit_test(test_evict_held_vm_destroy),
		cmocka_unit_test(test_bind_follows_pending_eviction),
		cmocka_unit_test(test_async_bind_follows_pending_eviction),
		cmocka_unit_test(test_later_bind_follows_every_move),
		cmocka_unit_test(test_exec_restore_cpu_mapped),
		cmocka_unit_test(test_exec_follows_every_restore),
		cmocka_unit_test(test_threads_no_spurious_enospc),
		cmocka_unit_test(test_evict_held_client_close),
		cmocka_unit_test(test_exec_restore_held_vm_destroy),
		cmocka_unit_test(test_async_one_queue_threads),
		cmocka_unit_test(test_btree_unmap_nofail),
		cmocka_unit_test(test_restart_mode_eintr_eviction),
		cmocka_unit_test(test_evicted_bo_ops),
		cmocka_unit_test(test_sync_restore_signals),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
