/* SPDX-License-Identifier: MIT */
/*
 * Description: user fences in BOs (VMB_SYNC_BO_USER_FENCE, VMB_UFENCE_WAIT_BO). A bind's and an
 * exec's out-fences named as (BO, offset) are written into the BO, where its CPU map reads them
 * and a wait by (BO, offset) sees them; the shape, lookup and range errors; and a BO destroyed
 * while its fence is pending (its last reference gone) is still written safely: the write holds
 * the BO's pages (a write into unmapped pages would crash here, or be reported by ASan).
 */
#include "lib/harness.h"
#include "sync/fence.h" /* VMB_FENCE_CONDVAR: a ThreadSanitizer build */

#include <errno.h>
#include <pthread.h>
#include <sys/mman.h>

#define BO_SIZE (64 * KiB)
#define CMD_VA (1ull << 32)

static struct vmb_sync sync_bo_ufence(uint32_t bo, uint64_t offset, uint64_t value)
{
	return (struct vmb_sync){.type = VMB_SYNC_BO_USER_FENCE, .flags = VMB_SYNC_FLAG_SIGNAL, .handle = bo,
				 .addr = offset, .value = value};
}

static int bo_wait(struct vmb_client *c, uint32_t bo, uint64_t offset, uint64_t value, int64_t ns)
{
	struct vmb_user_fence_wait w = {.addr = offset, .bo_handle = bo, .flags = VMB_UFENCE_WAIT_BO,
					.value = value, .mask = ~0ull, .timeout = ns, .op = VMB_UFENCE_OP_EQ};
	return vmb_user_fence_wait(c, &w);
}

static void test_bind_writes_bo_fence(void **state)
{
	(void)state;
	struct vmb_client *c = open_soft(64 * MiB, 64 * MiB);
	uint32_t vm = vm_new(c, 0), fbo = bo_new(c, BO_SIZE, VMB_PLACE_SYSTEM), bo = bo_new(c, BO_SIZE, VMB_PLACE_VRAM);
	volatile uint64_t *cpu = bo_cpu(c, fbo);
	struct gate g = gate_new(c);
	struct vmb_bind_op op = op_map(bo, 0, 1 * MiB, BO_SIZE, 0);
	struct vmb_sync s[2] = {sync_in(g.h), sync_bo_ufence(fbo, 4 * KiB + 8, 0xfeed)};

	bind_async(c, vm, 0, &op, 1, s, 2);
	assert_int_equal(cpu[512 + 1], 0); /* behind the gate */
	assert_int_equal(bo_wait(c, fbo, 4 * KiB + 8, 0xfeed, 0), -ETIME);
	gate_open(&g);
	assert_int_equal(bo_wait(c, fbo, 4 * KiB + 8, 0xfeed, 10ll * 1000000000), 0);
	assert_int_equal(cpu[512 + 1], 0xfeed);
	/* the address form sees the same word, through the CPU map */
	ufence_wait(c, (uint64_t *)&cpu[512 + 1], 0xfeed);
	validate_client(c);
	assert_int_equal(vmb_client_close(c), 0);
}

/* An LR vm's out-fences are user fences only: one in a BO is one (no -EOPNOTSUPP). */
static void test_lr_bind_bo_fence(void **state)
{
	(void)state;
	struct vmb_client *c = open_soft(64 * MiB, 64 * MiB);
	uint32_t vm = vm_new(c, VMB_VM_CREATE_LR_MODE), fbo = bo_new(c, BO_SIZE, VMB_PLACE_VRAM);
	uint32_t bo = bo_new(c, BO_SIZE, VMB_PLACE_VRAM);
	struct vmb_bind_op op = op_map(bo, 0, 1 * MiB, BO_SIZE, 0);
	struct vmb_sync s = sync_bo_ufence(fbo, BO_SIZE - 8, 7);
	bind_async(c, vm, 0, &op, 1, &s, 1);
	assert_int_equal(bo_wait(c, fbo, BO_SIZE - 8, 7, 10ll * 1000000000), 0);
	assert_int_equal(((volatile uint64_t *)bo_cpu(c, fbo))[BO_SIZE / 8 - 1], 7);
	assert_int_equal(vmb_client_close(c), 0);
}

static void test_exec_writes_bo_fence(void **state)
{
	(void)state;
	struct vmb_client *c = open_soft(64 * MiB, 64 * MiB);
	uint32_t vm = vm_new(c, 0), fbo = bo_new(c, BO_SIZE, VMB_PLACE_VRAM), cmd_bo = bo_new(c, BO_SIZE, VMB_PLACE_VRAM);
	uint64_t *cmd = bo_cpu(c, cmd_bo);
	uint32_t n = 0;
	vmb_cmd_end(cmd, &n);
	bind1(c, vm, op_map(cmd_bo, 0, CMD_VA, BO_SIZE, VMB_BIND_FLAG_READONLY));
	struct vmb_exec_queue_create qc = {.vm_id = vm, .engine = {.engine_class = VMB_ENGINE_CLASS_COMPUTE}};
	assert_int_equal(vmb_exec_queue_create(c, &qc), 0);
	struct vmb_sync s = sync_bo_ufence(fbo, 0, 42);
	struct vmb_exec e = {.exec_queue_id = qc.exec_queue_id, .address = CMD_VA, .num_syncs = 1,
			     .syncs = (uint64_t)(uintptr_t)&s};
	assert_int_equal(vmb_exec(c, &e), 0);
	assert_int_equal(bo_wait(c, fbo, 0, 42, 10ll * 1000000000), 0);
	assert_int_equal(((volatile uint64_t *)bo_cpu(c, fbo))[0], 42);
	/* errors as for binds */
	s = sync_bo_ufence(fbo, BO_SIZE, 1);
	assert_int_equal(vmb_exec(c, &e), -EINVAL);
	s = sync_bo_ufence(fbo + 100, 0, 1);
	assert_int_equal(vmb_exec(c, &e), -ENOENT);
	validate_client(c);
	assert_int_equal(vmb_client_close(c), 0);
}

static void test_errors(void **state)
{
	(void)state;
	struct vmb_client *c = open_soft(64 * MiB, 64 * MiB);
	uint32_t vm = vm_new(c, 0), fbo = bo_new(c, BO_SIZE, VMB_PLACE_VRAM), bo = bo_new(c, BO_SIZE, VMB_PLACE_VRAM);
	uint32_t so = syncobj_new(c, 0);
	struct vmb_bind_op op = op_map(bo, 0, 1 * MiB, BO_SIZE, 0);
	const struct {
		const char *name;
		struct vmb_sync s;
		int err;
	} cases[] = {
		{"handle 0", sync_bo_ufence(0, 0, 1), -EINVAL},
		{"offset misaligned", sync_bo_ufence(fbo, 4, 1), -EINVAL},
		{"offset past the end", sync_bo_ufence(fbo, BO_SIZE, 1), -EINVAL},
		{"last word + 8", sync_bo_ufence(fbo, BO_SIZE - 4, 1), -EINVAL},
		{"huge offset", sync_bo_ufence(fbo, ~7ull, 1), -EINVAL},
		{"unknown BO", sync_bo_ufence(fbo + 100, 0, 1), -ENOENT},
		{"a syncobj's handle", sync_bo_ufence(so + 100, 0, 1), -ENOENT},
		{"in-sync", {.type = VMB_SYNC_BO_USER_FENCE, .handle = fbo, .value = 1}, -EOPNOTSUPP},
		{"pad", {.type = VMB_SYNC_BO_USER_FENCE, .flags = VMB_SYNC_FLAG_SIGNAL, .handle = fbo, .pad = 1}, -EINVAL},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct vmb_sync s[2] = {sync_out(so), cases[i].s};
		int err = __bind_async(c, vm, 0, &op, 1, s, 2);
		if (err != cases[i].err)
			fail_msg("%s: %d, want %d", cases[i].name, err, cases[i].err);
	}
	struct vmb_vm_query_mappings q = {.vm_id = vm};
	assert_int_equal(vmb_vm_query_mappings(c, &q), 0);
	assert_int_equal(q.num_mappings, 0); /* nothing changed */
	assert_int_equal(((volatile uint64_t *)bo_cpu(c, fbo))[0], 0);

	/* waits */
	assert_int_equal(bo_wait(c, 0, 0, 0, 0), -EINVAL);
	assert_int_equal(bo_wait(c, fbo, 4, 0, 0), -EINVAL);
	assert_int_equal(bo_wait(c, fbo, BO_SIZE, 0, 0), -EINVAL);
	assert_int_equal(bo_wait(c, fbo + 100, 0, 0, 0), -ENOENT);
	assert_int_equal(bo_wait(c, fbo, 0, 0, 0), 0); /* offset 0 is a place; the word is 0 */
	assert_int_equal(bo_wait(c, fbo, BO_SIZE - 8, 1, 0), -ETIME);
	struct vmb_user_fence_wait w = {.addr = 8, .bo_handle = fbo, .mask = ~0ull}; /* handle, no flag */
	assert_int_equal(vmb_user_fence_wait(c, &w), -EINVAL);
	validate_client(c);
	assert_int_equal(vmb_client_close(c), 0);
}

/* The fence's BO is destroyed (its last reference: no mapping, no CPU map) while the bind that
 * writes the fence waits behind a gate; the write lands in the pages the fence holds. */
static void test_bo_destroyed_before_write(void **state)
{
	(void)state;
	struct vmb_client *c = open_soft(64 * MiB, 64 * MiB);
	uint32_t vm = vm_new(c, 0), bo = bo_new(c, BO_SIZE, VMB_PLACE_VRAM);
	struct gate g = gate_new(c);
	uint32_t so = syncobj_new(c, 0);
	struct vmb_bind_op op = op_map(bo, 0, 1 * MiB, BO_SIZE, 0);
	for (int i = 0; i < 8; i++) {
		uint32_t fbo = bo_new(c, BO_SIZE, i & 1 ? VMB_PLACE_SYSTEM : VMB_PLACE_VRAM);
		struct vmb_sync s[3] = {sync_in(g.h), sync_bo_ufence(fbo, 8 * (uint64_t)i, 1), sync_out(so)};
		bind_async(c, vm, 0, &op, 1, s, 3);
		struct vmb_bo_destroy d = {.handle = fbo};
		assert_int_equal(vmb_bo_destroy(c, &d), 0);
	}
	/* new BOs now, perhaps where the destroyed ones' structs were: they stay zero */
	uint32_t fresh = bo_new(c, BO_SIZE, VMB_PLACE_VRAM);
	gate_open(&g);
	syncobj_wait1(c, so);
	for (int i = 0; i < 8; i++)
		assert_int_equal(((volatile uint64_t *)bo_cpu(c, fresh))[i], 0);
	validate_client(c);
	assert_int_equal(vmb_client_close(c), 0);
}

/* A wait by (BO, offset) holds the BO's pages: destroying the BO meanwhile does not end it or
 * make it read freed memory; it times out. */
struct waiter {
	struct vmb_client *c;
	uint32_t bo;
	int ret;
};

static void *wait_thread(void *arg)
{
	struct waiter *w = arg;
	w->ret = bo_wait(w->c, w->bo, 0, 1, 200 * 1000000ll);
	return NULL;
}

static void test_wait_outlives_bo(void **state)
{
	(void)state;
	struct vmb_client *c = open_soft(64 * MiB, 64 * MiB);
	struct waiter w = {.c = c, .bo = bo_new(c, BO_SIZE, VMB_PLACE_VRAM)};
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, wait_thread, &w), 0);
	struct vmb_bo_destroy d = {.handle = w.bo};
	assert_int_equal(vmb_bo_destroy(c, &d), 0);
	/* other BOs' fences wake the waiter: it reads its own word again each time */
	uint32_t vm = vm_new(c, 0), fbo = bo_new(c, BO_SIZE, VMB_PLACE_VRAM);
	struct vmb_bind_op op = op_null(1 * MiB, BO_SIZE);
	for (int i = 0; i < 4; i++) {
		struct vmb_sync s = sync_bo_ufence(fbo, 0, (uint64_t)i + 1);
		bind_async(c, vm, 0, &op, 1, &s, 1);
	}
	assert_int_equal(pthread_join(t, NULL), 0);
	/* -ENOENT if the destroy came first, else the wait ran to its timeout on the pinned pages */
	assert_true(w.ret == -ETIME || w.ret == -ENOENT);
	assert_int_equal(bo_wait(c, fbo, 0, 4, 10ll * 1000000000), 0);
	validate_client(c);
	assert_int_equal(vmb_client_close(c), 0);
}

/* ---- address user fences inside the client's CPU map of a BO (vmb_bo_mmap): written and read
 * through the BO's pages, whatever becomes of the mapping meanwhile ---- */

static void cpu_unmap(struct vmb_client *c, uint32_t bo, void *p)
{
	struct vmb_bo_munmap um = {.handle = bo, .ptr = (uint64_t)(uintptr_t)p};
	assert_int_equal(vmb_bo_munmap(c, &um), 0);
}

/*
 * Fences at the first, a middle and the last word of a CPU map, pending behind a gate; the
 * application unmaps the BO's CPU map and puts memory of its own at the same address
 * (MAP_FIXED_NOREPLACE: never over someone else's). The writes go to the BO's pages (seen
 * through a new CPU map and by (BO, offset)), never to the application's memory that now lies at
 * the old address; a fence there named after the replacement is an ordinary address fence.
 */
static void test_cpu_map_fence_after_munmap(void **state)
{
	(void)state;
	struct vmb_client *c = open_soft(64 * MiB, 64 * MiB);
	uint32_t vm = vm_new(c, 0), bo = bo_new(c, BO_SIZE, VMB_PLACE_VRAM), so = syncobj_new(c, 0);
	uint32_t fbo = bo_new(c, BO_SIZE, VMB_PLACE_SYSTEM);
	uint64_t *p = bo_cpu(c, fbo);
	struct gate g = gate_new(c);
	const unsigned int words[3] = {0, 7, BO_SIZE / 8 - 1};
	for (unsigned int i = 0; i < 3; i++) {
		struct vmb_bind_op op = op_map(bo, 0, (1 + i) * MiB, BO_SIZE, 0);
		struct vmb_sync s[3] = {sync_in(g.h), sync_ufence(&p[words[i]], 0x100 + i), sync_out(so)};
		bind_async(c, vm, 0, &op, 1, s, 3);
	}
	cpu_unmap(c, fbo, p);
	uint64_t *mine = mmap(p, BO_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	bool replaced = mine == p;
	if (mine != MAP_FAILED && !replaced)
		assert_int_equal(munmap(mine, BO_SIZE), 0); /* an old kernel: the hint was not kept */
	if (replaced) {
		/* the application's memory now: checked and written as any address */
		struct vmb_bind_op op = op_unmap(1 * MiB, BO_SIZE);
		struct vmb_sync s[2] = {sync_ufence(&p[9], 0x200), sync_out(so)};
		bind_async(c, vm, 0, &op, 1, s, 2);
	}
	gate_open(&g);
	syncobj_wait1(c, so);
	for (unsigned int i = 0; i < 3; i++)
		assert_int_equal(bo_wait(c, fbo, 8 * words[i], 0x100 + i, 10ll * 1000000000), 0);
	if (replaced) {
		ufence_wait(c, &p[9], 0x200);
		for (unsigned int i = 0; i < 3; i++)
			assert_int_equal(p[words[i]], 0); /* the BO's writes never landed here */
		assert_int_equal(munmap(p, BO_SIZE), 0);
	}
	uint64_t *q = bo_cpu(c, fbo);
	for (unsigned int i = 0; i < 3; i++) {
		assert_int_equal(q[words[i]], 0x100 + i);
		ufence_wait(c, &q[words[i]], 0x100 + i); /* the address form, through the new map */
	}
	assert_int_equal(q[9], 0);
	cpu_unmap(c, fbo, q);
	validate_client(c);
	assert_int_equal(vmb_client_close(c), 0);
}

/*
 * The CPU map unmapped and the BO destroyed (its last reference) while fences in the map are
 * pending, many times over: the writes land in the pinned pages, never in freed memory (ASan)
 * nor in new BOs made meanwhile; a wait on the old address that began before the unmap holds
 * the pages too and ends at its timeout (or sees the value), never crashes.
 */
struct map_waiter {
	struct vmb_client *c;
	uint64_t *addr;
	pthread_t t;
	void *keep;
	int ret;
};

static void *map_wait_thread(void *arg)
{
	struct map_waiter *w = arg;
	w->ret = __ufence_wait(w->c, w->addr, 1, VMB_UFENCE_OP_EQ, 300 * 1000000ll);
	return NULL;
}

static void test_cpu_map_fence_bo_destroyed(void **state)
{
	(void)state;
#ifdef VMB_FENCE_CONDVAR
	/* ThreadSanitizer: the application's mmap over an address a waiter reads is the race this
	 * test makes on purpose (TSan reports it whenever the wait has read the old address before
	 * the new map: 1 run in a few); the plain and ASan builds run it */
	skip();
#endif
	struct vmb_client *c = open_soft(64 * MiB, 64 * MiB);
	uint32_t vm = vm_new(c, 0), bo = bo_new(c, BO_SIZE, VMB_PLACE_VRAM), so = syncobj_new(c, 0);
	struct gate g = gate_new(c);
	struct vmb_bind_op op = op_map(bo, 0, 1 * MiB, BO_SIZE, 0);
	struct map_waiter *w = calloc(8, sizeof(*w)); /* not on the stack: a failed assertion leaves the threads */
	assert_non_null(w);
	for (int i = 0; i < 8; i++) {
		uint32_t fbo = bo_new(c, BO_SIZE, i & 1 ? VMB_PLACE_SYSTEM : VMB_PLACE_VRAM);
		uint64_t *p = bo_cpu(c, fbo);
		struct vmb_sync s[3] = {sync_in(g.h), sync_ufence(&p[i], 1), sync_out(so)};
		bind_async(c, vm, 0, &op, 1, s, 3);
		w[i] = (struct map_waiter){.c = c, .addr = &p[BO_SIZE / 8 - 1 - i]};
		assert_int_equal(pthread_create(&w[i].t, NULL, map_wait_thread, &w[i]), 0);
		struct vmb_bo_destroy d = {.handle = fbo};
		assert_int_equal(vmb_bo_destroy(c, &d), 0);
		cpu_unmap(c, 0, p); /* by pointer alone: the handle is gone */
		/* the old address kept the application's (zeros, readable) until the waits end: no
		 * later CPU map lands there, which a wait that found no map there would read */
		void *keep = mmap(p, BO_SIZE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
		if (keep != MAP_FAILED && keep != p)
			assert_int_equal(munmap(keep, BO_SIZE), 0); /* an old kernel: the hint was not kept */
		w[i].keep = keep == p ? keep : NULL; /* NULL: taken already (the sanitizers' memory) */
	}
	uint32_t fresh = bo_new(c, BO_SIZE, VMB_PLACE_SYSTEM);
	uint64_t *z = bo_cpu(c, fresh);
	gate_open(&g);
	syncobj_wait1(c, so);
	for (int i = 0; i < 8; i++) {
		assert_int_equal(pthread_join(w[i].t, NULL), 0);
		/* -EFAULT: the unmap came before the wait looked the address up */
		if (!w[i].keep)
			continue; /* the wait may have read whatever took the address */
		assert_true(w[i].ret == -ETIME || w[i].ret == -EFAULT);
		assert_int_equal(((uint64_t *)w[i].keep)[i], 0); /* the BO's write never landed here */
		assert_int_equal(munmap(w[i].keep, BO_SIZE), 0);
	}
	free(w);
	for (int i = 0; i < 8; i++)
		assert_int_equal(z[i], 0);
	validate_client(c);
	assert_int_equal(vmb_client_close(c), 0);
}

/* An exec's out fence in a CPU map, the map unmapped and its BO destroyed while the exec waits
 * behind a gate: the engine's thread writes the pinned pages (ASan: no freed memory). */
static void test_cpu_map_exec_fence_bo_destroyed(void **state)
{
	(void)state;
	struct vmb_client *c = open_soft(64 * MiB, 64 * MiB);
	uint32_t vm = vm_new(c, 0), cmd_bo = bo_new(c, BO_SIZE, VMB_PLACE_SYSTEM), so = syncobj_new(c, 0);
	uint64_t *cmd = bo_cpu(c, cmd_bo);
	uint32_t n = 0;
	vmb_cmd_end(cmd, &n);
	bind1(c, vm, op_map(cmd_bo, 0, CMD_VA, BO_SIZE, VMB_BIND_FLAG_READONLY));
	struct vmb_exec_queue_create qc = {.vm_id = vm, .engine = {.engine_class = VMB_ENGINE_CLASS_COMPUTE}};
	assert_int_equal(vmb_exec_queue_create(c, &qc), 0);
	struct gate g = gate_new(c);
	uint32_t fbo = bo_new(c, BO_SIZE, VMB_PLACE_SYSTEM);
	uint64_t *p = bo_cpu(c, fbo);
	struct vmb_sync s[3] = {sync_in(g.h), sync_ufence(&p[BO_SIZE / 8 - 1], 5), sync_out(so)};
	struct vmb_exec e = {.exec_queue_id = qc.exec_queue_id, .address = CMD_VA, .num_syncs = 3,
			     .syncs = (uint64_t)(uintptr_t)s};
	assert_int_equal(vmb_exec(c, &e), 0);
	struct vmb_bo_destroy d = {.handle = fbo};
	assert_int_equal(vmb_bo_destroy(c, &d), 0);
	cpu_unmap(c, 0, p);
	uint32_t fresh = bo_new(c, BO_SIZE, VMB_PLACE_SYSTEM);
	uint64_t *z = bo_cpu(c, fresh);
	gate_open(&g);
	syncobj_wait1(c, so);
	assert_int_equal(z[BO_SIZE / 8 - 1], 0);
	validate_client(c);
	assert_int_equal(vmb_client_close(c), 0);
}

/*
 * Two clients of one device share a BO (export/import): one CPU mapping, the same pointer. A
 * fence in the second client's map stays the BO's when the first unmaps, then the second too,
 * then the first closes: written through the pages; a client whose map it is not writes it as a
 * plain address (checked). A misaligned fence address is -EINVAL, in a map or not.
 */
static void test_cpu_map_fence_shared_bo(void **state)
{
	(void)state;
	struct vmb_client *a = open_soft(64 * MiB, 64 * MiB), *b;
	assert_int_equal(vmb_client_open("soft", NULL, &b), 0);
	uint32_t fa = bo_new(a, BO_SIZE, VMB_PLACE_SYSTEM);
	struct vmb_bo_export_fd ex = {.handle = fa};
	assert_int_equal(vmb_bo_export_fd(a, &ex), 0);
	struct vmb_bo_import_fd im = {.fd = ex.fd};
	assert_int_equal(vmb_bo_import_fd(b, &im), 0);
	close(ex.fd);
	uint32_t fb = im.handle;
	uint64_t *pa = bo_cpu(a, fa), *pb = bo_cpu(b, fb);
	assert_ptr_equal(pa, pb);
	uint32_t vm = vm_new(b, 0), bo = bo_new(b, BO_SIZE, VMB_PLACE_VRAM), so = syncobj_new(b, 0);
	struct gate g = gate_new(b);
	struct vmb_bind_op op = op_map(bo, 0, 1 * MiB, BO_SIZE, 0);
	struct vmb_sync s[3] = {sync_in(g.h), sync_ufence(&pb[3], 33), sync_out(so)};
	s[1].addr += 4;
	assert_int_equal(__bind_async(b, vm, 0, &op, 1, s, 3), -EINVAL);
	s[1].addr -= 4;
	bind_async(b, vm, 0, &op, 1, s, 3);
	cpu_unmap(a, fa, pa);
	cpu_unmap(b, fb, pb);
	assert_int_equal(vmb_client_close(a), 0);
	gate_open(&g);
	syncobj_wait1(b, so);
	assert_int_equal(bo_wait(b, fb, 24, 33, 10ll * 1000000000), 0);
	uint64_t *q = bo_cpu(b, fb);
	assert_int_equal(q[3], 33);
	cpu_unmap(b, fb, q);
	validate_client(b);
	assert_int_equal(vmb_client_close(b), 0);
}

/*
 * fork() while a fence in a CPU map is pending: the child's inherited map is a shared mapping of
 * the same pages (UAPI.md, "fork()"), so it sees the parent's write there; the child's calls are
 * -EIO and its close frees nothing of the parent's.
 */
static void test_cpu_map_fence_fork(void **state)
{
	(void)state;
	struct vmb_client *c = open_soft(64 * MiB, 64 * MiB);
	uint32_t vm = vm_new(c, 0), bo = bo_new(c, BO_SIZE, VMB_PLACE_VRAM), so = syncobj_new(c, 0);
	uint32_t fbo = bo_new(c, BO_SIZE, VMB_PLACE_SYSTEM);
	volatile uint64_t *p = bo_cpu(c, fbo);
	struct gate g = gate_new(c);
	struct vmb_bind_op op = op_map(bo, 0, 1 * MiB, BO_SIZE, 0);
	struct vmb_sync s[3] = {sync_in(g.h), sync_ufence((uint64_t *)&p[5], 55), sync_out(so)};
	bind_async(c, vm, 0, &op, 1, s, 3);
	int go[2];
	assert_int_equal(pipe(go), 0);
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char x;
		close(go[1]);
		if (read(go[0], &x, 1) != 1)
			_exit(2);
		struct vmb_bo_munmap um = {.handle = fbo, .ptr = (uint64_t)(uintptr_t)p};
		if (vmb_bo_munmap(c, &um) != -EIO)
			_exit(3);
		/* the parent's write, seen through the inherited map: within 10 s, else a hang */
		for (int i = 0; i < 10000 && __atomic_load_n(&p[5], __ATOMIC_ACQUIRE) != 55; i++)
			usleep(1000);
		_exit(p[5] == 55 && vmb_client_close(c) == 0 ? 0 : 1);
	}
	close(go[0]);
	assert_int_equal(write(go[1], "x", 1), 1);
	close(go[1]);
	gate_open(&g);
	syncobj_wait1(c, so);
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	ufence_wait(c, (uint64_t *)&p[5], 55);
	cpu_unmap(c, fbo, (void *)p);
	validate_client(c);
	assert_int_equal(vmb_client_close(c), 0);
}

static void test_capability(void **state)
{
	(void)state;
	struct vmb_client *c = open_soft(64 * MiB, 64 * MiB);
	struct vmb_device_query q = {0};
	assert_int_equal(vmb_device_query(c, &q), 0);
	assert_true(q.capabilities & VMB_CAP_USER_FENCE_BO);
	assert_int_equal(vmb_client_close(c), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bind_writes_bo_fence),
		cmocka_unit_test(test_lr_bind_bo_fence),
		cmocka_unit_test(test_exec_writes_bo_fence),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_bo_destroyed_before_write),
		cmocka_unit_test(test_wait_outlives_bo),
		cmocka_unit_test(test_cpu_map_fence_after_munmap),
		cmocka_unit_test(test_cpu_map_fence_bo_destroyed),
		cmocka_unit_test(test_cpu_map_exec_fence_bo_destroyed),
		cmocka_unit_test(test_cpu_map_fence_shared_bo),
		cmocka_unit_test(test_cpu_map_fence_fork),
		cmocka_unit_test(test_capability),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
