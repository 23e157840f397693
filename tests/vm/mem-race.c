/* SPDX-License-Identifier: MIT */
/*
 * Description: the device's memory work outside the device lock exclusive (vmb_bo_create makes
 * the BO under the lock shared, vmb_bo_destroy and vmb_vm_destroy free with no lock: docs/UAPI.md
 * "Locking") raced against everything that moves or counts memory: binds that need VRAM room
 * (eviction), PREFETCH both ways, vms mapping a shared BO created and destroyed, CPU maps of BOs
 * being destroyed, exports, region and BO queries, vmb_client_validate, and a fork() in the
 * middle (the child's calls: -EIO). Every call gives one of its documented results; the regions'
 * free bytes never leave [0, capacity] and are exact once all is destroyed; nothing leaks (ASan)
 * and the sanitizers see no race (TSan). A fault injected in vmb_bo_create's handle install
 * (after its BO is made under the lock shared) gives -ENOMEM and leaves the accounting exact.
 */
#include "lib/harness.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vmbind/debug.h>

#include "core/alloc.h"

#define VRAM (8 * MiB)
#define SYS (64 * MiB)
#define ROUNDS 60

struct ctx {
	struct vmb_client *c;
	uint32_t shared_bo;       /* mapped in every churned vm */
	atomic_int running;       /* worker threads not yet done */
	unsigned int seed;
};

static void check_regions(struct vmb_client *c)
{
	for (uint32_t r = 0; r < VMB_REGION_COUNT; r++) {
		struct vmb_region_query q = {.region = r};
		assert_int_equal(vmb_region_query(c, &q), 0);
		assert_true(q.free <= q.capacity); /* an unsigned count gone below 0 shows here */
	}
}

static bool regions_whole(struct vmb_client *c)
{
	bool whole = true;
	for (uint32_t r = 0; r < VMB_REGION_COUNT; r++) {
		struct vmb_region_query q = {.region = r};
		assert_int_equal(vmb_region_query(c, &q), 0);
		whole &= q.free == q.capacity;
	}
	return whole;
}

static int create(struct vmb_client *c, uint64_t size, uint32_t placements, uint32_t *h)
{
	struct vmb_bo_create b = {.size = size, .placements = placements};
	int r = vmb_bo_create(c, &b);
	*h = b.handle;
	return r;
}

/* BOs made and dropped, some CPU-mapped and exported first (the map and the descriptor keep
 * them alive past the destroy: their last reference goes at the unmap, the close). */
static void *creator(void *arg)
{
	struct ctx *x = arg;
	for (int i = 0; i < ROUNDS; i++) {
		uint32_t h;
		uint32_t place = i % 3 == 0 ? VMB_PLACE_VRAM | VMB_PLACE_SYSTEM : VMB_PLACE_VRAM;
		assert_int_equal(create(x->c, 1 * MiB, place, &h), 0);
		void *p = NULL;
		int fd = -1;
		if (i % 2) {
			struct vmb_bo_mmap m = {.handle = h};
			int r = vmb_bo_mmap(x->c, &m);
			assert_true(r == 0 || r == -EOPNOTSUPP); /* a discrete device's VRAM */
			p = r ? NULL : (void *)(uintptr_t)m.ptr;
		}
		if (i % 4 == 1) {
			struct vmb_bo_export_fd e = {.handle = h};
			assert_int_equal(vmb_bo_export_fd(x->c, &e), 0);
			fd = e.fd;
		}
		bo_destroy1(x->c, h);
		if (p) {
			((volatile char *)p)[0] = 1; /* still mapped: the map's reference */
			struct vmb_bo_munmap u = {.ptr = (uint64_t)(uintptr_t)p};
			assert_int_equal(vmb_bo_munmap(x->c, &u), 0);
		}
		if (fd >= 0)
			close(fd);
	}
	atomic_fetch_sub(&x->running, 1);
	return NULL;
}

/* Binds that need VRAM room: four 2 MiB VRAM BOs mapped in turn (with the others' BOs, more
 * than VRAM holds), each new one backed at its bind by evicting idle BOs, the old one dropped. */
static void *binder(void *arg)
{
	struct ctx *x = arg;
	uint32_t vm = vm_new(x->c, 0), slot[4] = {0};
	for (int i = 0; i < ROUNDS; i++) {
		unsigned int k = (unsigned int)i % 4;
		uint64_t va = 1 * GiB + k * 2 * MiB;
		if (slot[k]) {
			bind1(x->c, vm, op_unmap(va, 2 * MiB));
			bo_destroy1(x->c, slot[k]);
		}
		assert_int_equal(create(x->c, 2 * MiB, VMB_PLACE_VRAM, &slot[k]), 0);
		int r = __bind1(x->c, vm, op_map(slot[k], 0, va, 2 * MiB, 0));
		assert_true(r == 0 || r == -ENOSPC); /* -ENOSPC: every BO in VRAM busy now */
		if (r) {
			bo_destroy1(x->c, slot[k]);
			slot[k] = 0;
		}
	}
	vm_destroy1(x->c, vm); /* the last references of the BOs, with no device lock */
	for (unsigned int k = 0; k < 4; k++)
		if (slot[k])
			bo_destroy1(x->c, slot[k]);
	atomic_fetch_sub(&x->running, 1);
	return NULL;
}

/* PREFETCH (the device lock exclusive) back and forth of a BO of its own. */
static void *prefetcher(void *arg)
{
	struct ctx *x = arg;
	uint32_t vm = vm_new(x->c, 0);
	uint32_t h;
	assert_int_equal(create(x->c, 1 * MiB, VMB_PLACE_VRAM | VMB_PLACE_SYSTEM, &h), 0);
	int r = __bind1(x->c, vm, op_map(h, 0, 1 * GiB, 1 * MiB, 0));
	assert_true(r == 0 || r == -ENOSPC);
	for (int i = 0; !r && i < ROUNDS; i++) {
		uint32_t to = i % 2 ? VMB_REGION_VRAM : VMB_REGION_SYSTEM;
		int e = __bind1(x->c, vm, op_prefetch(1 * GiB, 1 * MiB, to));
		assert_true(e == 0 || e == -ENOSPC);
	}
	vm_destroy1(x->c, vm); /* the vm's link holds the BO's last reference after the next line */
	bo_destroy1(x->c, h);
	atomic_fetch_sub(&x->running, 1);
	return NULL;
}

/* vms that map the shared BO, destroyed (freed with no device lock while others walk its
 * list of vms). */
static void *vm_churner(void *arg)
{
	struct ctx *x = arg;
	for (int i = 0; i < ROUNDS; i++) {
		uint32_t vm = vm_new(x->c, 0);
		int r = __bind1(x->c, vm, op_map(x->shared_bo, 0, 1 * GiB, 1 * MiB, 0));
		assert_true(r == 0 || r == -ENOSPC);
		vm_destroy1(x->c, vm);
	}
	atomic_fetch_sub(&x->running, 1);
	return NULL;
}

static int child_calls(struct vmb_client *c)
{
	struct vmb_region_query q = {.region = VMB_REGION_VRAM};
	struct vmb_bo_create b = {.size = 1 * MiB, .placements = VMB_PLACE_VRAM};
	struct vmb_vm_destroy d = {.vm_id = 1};
	int ok = vmb_region_query(c, &q) == -EIO && vmb_bo_create(c, &b) == -EIO && vmb_vm_destroy(c, &d) == -EIO &&
		 vmb_client_close(c) == 0;
	return ok ? 0 : 1;
}

static void test_memory_races(void **state)
{
	(void)state;
	struct ctx x = {.c = open_soft(VRAM, SYS)};
	/* a BO in VRAM that a long-lived vm keeps mapped, and the churned vms map too */
	uint32_t keep = vm_new(x.c, 0);
	assert_int_equal(create(x.c, 1 * MiB, VMB_PLACE_VRAM, &x.shared_bo), 0);
	bind1(x.c, keep, op_map(x.shared_bo, 0, 1 * GiB, 1 * MiB, 0));
	void *(*fns[])(void *) = {creator, binder, prefetcher, vm_churner};
	pthread_t t[4];
	atomic_init(&x.running, 4);
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&t[i], NULL, fns[i], &x), 0);
	bool forked = false;
	while (atomic_load(&x.running)) {
		check_regions(x.c);
		struct vmb_bo_query q = {.handle = x.shared_bo};
		assert_int_equal(vmb_bo_query(x.c, &q), 0);
		assert_true(q.vm_mappings >= 1 && q.vm_mappings <= 2);
		struct vmb_client_validate v = {0};
		int e = vmb_client_validate(x.c, &v);
		assert_true(e == 0 || e == -EBUSY); /* -EBUSY: a bind (an eviction, a PREFETCH) pending */
		if (!forked) {
			forked = true;
			fflush(NULL);
			pid_t pid = fork();
			assert_true(pid >= 0);
			if (pid == 0)
				_exit(child_calls(x.c));
			int status;
			assert_int_equal(waitpid(pid, &status, 0), pid);
			assert_true(WIFEXITED(status));
			assert_int_equal(WEXITSTATUS(status), 0);
		}
	}
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_join(t[i], NULL), 0);
	vm_destroy1(x.c, keep);
	bo_destroy1(x.c, x.shared_bo);
	/* every BO gone: the regions are whole again (once the export watcher has seen the last
	 * descriptors closed: a state, waited for up to 20 s) */
	for (int i = 0; i < 20000 && !regions_whole(x.c); i++)
		usleep(1000);
	assert_true(regions_whole(x.c));
	struct vmb_region_query q = {.region = VMB_REGION_VRAM};
	assert_int_equal(vmb_region_query(x.c, &q), 0);
	fprintf(stderr, "evictions %" PRIu64 " restores %u\n", q.evictions, q.restores);
	validate_client(x.c);
	assert_int_equal(vmb_client_close(x.c), 0);
}

/* vmb_bo_create's allocations failing one at a time (the BO's, then the handle install's after
 * the BO was made under the lock shared): -ENOMEM, nothing changed, the regions whole. */
static void test_create_fault_keeps_accounting(void **state)
{
	(void)state;
	struct vmb_client *c = open_soft(VRAM, SYS);
	bool done = false;
	for (unsigned long nth = 1; !done && nth < 64; nth++) {
		uint32_t h = 0;
		vmb_alloc_fail_after(nth);
		int r = create(c, 1 * MiB, VMB_PLACE_VRAM, &h);
		vmb_alloc_fail_after(0);
		if (r == 0) {
			done = true;
			bo_destroy1(c, h);
		} else {
			assert_int_equal(r, -ENOMEM);
		}
		for (uint32_t g = 0; g < VMB_REGION_COUNT; g++) {
			struct vmb_region_query q = {.region = g};
			assert_int_equal(vmb_region_query(c, &q), 0);
			assert_int_equal(q.free, q.capacity);
		}
	}
	assert_true(done);
	validate_client(c);
	assert_int_equal(vmb_client_close(c), 0);
}

/* A PREFETCH to SYSTEM of [1 GiB, + 1 MiB) in @vm, pending behind the gate returned; *@s
 * (a new syncobj) gets its fence. */
static struct gate prefetch_gated(struct vmb_client *c, uint32_t vm, uint32_t *s)
{
	struct gate g = gate_new(c);
	*s = syncobj_new(c, 0);
	struct vmb_sync y[2] = {sync_in(g.h), sync_out(*s)};
	struct vmb_bind_op op = op_prefetch(1 * GiB, 1 * MiB, VMB_REGION_SYSTEM);
	bind_async(c, vm, 0, &op, 1, y, 2);
	return g;
}

/* A PREFETCH pending behind a gate re-maps its BO in another vm too (its preparation holds that
 * vm's page tables pinned until it commits): vmb_client_validate meanwhile is -EBUSY (binds still
 * pending), as for a vm's own pending bind, not -EUCLEAN; 0 once the PREFETCH is over. The other
 * vm comes first in the client's vms, so it is checked before the PREFETCH's own. */
static void test_validate_during_cross_vm_prefetch(void **state)
{
	(void)state;
	struct vmb_client *c = open_soft(VRAM, SYS);
	uint32_t other = vm_new(c, 0), vm = vm_new(c, 0);
	uint32_t h;
	assert_int_equal(create(c, 1 * MiB, VMB_PLACE_VRAM | VMB_PLACE_SYSTEM, &h), 0);
	bind1(c, other, op_map(h, 0, 1 * GiB, 1 * MiB, 0));
	bind1(c, vm, op_map(h, 0, 1 * GiB, 1 * MiB, 0));
	uint32_t s;
	struct gate g = prefetch_gated(c, vm, &s);
	struct vmb_client_validate v = {0};
	assert_int_equal(vmb_client_validate(c, &v), -EBUSY);
	gate_open(&g);
	assert_int_equal(syncobj_error(c, s), 0);
	struct vmb_bo_query q = {.handle = h};
	assert_int_equal(vmb_bo_query(c, &q), 0);
	assert_int_equal(q.region, VMB_REGION_SYSTEM);
	assert_int_equal(vmb_client_validate(c, &v), 0);
	vm_destroy1(c, vm);
	vm_destroy1(c, other);
	bo_destroy1(c, h);
	assert_int_equal(vmb_client_close(c), 0);
}

/* A vm destroyed while another vm's PREFETCH, pending behind a gate, will re-map its BO there
 * (the job holds a reference on it): the destroy drops its own reference under its lock, and
 * the job's end, on a worker under the device lock shared, frees the vm (leaving its BOs' lists
 * under the cross lock). The BO moved, mapped once, the regions whole at the end. */
static void test_vm_destroyed_under_pending_prefetch(void **state)
{
	(void)state;
	struct vmb_client *c = open_soft(VRAM, SYS);
	uint32_t vm = vm_new(c, 0), victim = vm_new(c, 0);
	uint32_t h;
	assert_int_equal(create(c, 1 * MiB, VMB_PLACE_VRAM | VMB_PLACE_SYSTEM, &h), 0);
	bind1(c, vm, op_map(h, 0, 1 * GiB, 1 * MiB, 0));
	bind1(c, victim, op_map(h, 0, 2 * GiB, 1 * MiB, 0));
	uint32_t s;
	struct gate g = prefetch_gated(c, vm, &s);
	vm_destroy1(c, victim);
	struct vmb_bo_query q = {.handle = h};
	assert_int_equal(vmb_bo_query(c, &q), 0);
	assert_int_equal(q.vm_mappings, 2); /* the victim's link lives until the job's end */
	gate_open(&g);
	assert_int_equal(syncobj_error(c, s), 0);
	for (int i = 0; i < 20000 && (vmb_bo_query(c, &q), q.vm_mappings != 1); i++) /* the job's end: a state */
		usleep(1000);
	assert_int_equal(q.vm_mappings, 1);
	assert_int_equal(q.region, VMB_REGION_SYSTEM);
	validate_client(c);
	vm_destroy1(c, vm);
	bo_destroy1(c, h);
	for (int i = 0; i < 20000 && !regions_whole(c); i++)
		usleep(1000);
	assert_true(regions_whole(c));
	assert_int_equal(vmb_client_close(c), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_memory_races),
		cmocka_unit_test(test_create_fault_keeps_accounting),
		cmocka_unit_test(test_validate_during_cross_vm_prefetch),
		cmocka_unit_test(test_vm_destroyed_under_pending_prefetch),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
