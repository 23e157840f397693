/* SPDX-License-Identifier: MIT */
/*
 * Description: device commits that fail (dev/device.h: map_commit may fail; the soft device's
 * only through the test hook vmb_commit_fail_after(), core/alloc.h). An asynchronous bind whose
 * commit fails bans its vm: its out-fence signals with the device's errno, its user fence is
 * still written, the binds pending behind it signal -EIO without touching the page tables,
 * later binds (asynchronous or not), the GPU view, exec queue creation and execs fail with -EIO
 * (an exec queued before the ban ends with -ECANCELED, no command run);
 * the vm's queries and the client's check still work and destroying it frees everything; other
 * vms of the device are unaffected. A synchronous bind whose commit fails returns the errno and
 * bans the vm. A PREFETCH whose commit fails bans the vms left with unapplied operations (and
 * its own) and no other; a move it did not reach is undone.
 */
#include "lib/harness.h"

#include <errno.h>
#include <pthread.h>

#include "core/alloc.h"
#include "core/client.h"
#include "core/handle.h"
#include "dev/core.h"
#include "sync/fence.h"
#include "sync/syncobj.h"

#define BO_SIZE (2 * MiB)
#define VA_A (16 * MiB)
#define VA_B (64 * MiB)

struct fixture {
	struct vmb_client *c;
	uint32_t vm, other, bo;
	unsigned long failed_before;
};

/* The device's granularity (4 KiB, or 2 MiB on the discrete shape): the smallest bind. */
static uint64_t G;

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	f->c = open_two_vms(&f->vm, &f->other);
	G = granule_of(f->c);
	f->bo = bo_new(f->c, BO_SIZE, VMB_PLACE_VRAM | VMB_PLACE_SYSTEM);
	f->failed_before = vmb_commit_failed_count();
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	vmb_commit_fail_after(0, 0);
	return fixture_close(f, f->c);
}

static uint32_t nmappings(struct fixture *f, uint32_t vm) { return vm_stats(f->c, vm).num_mappings; }

static uint32_t exec_queue_new(struct vmb_client *c, uint32_t vm, int *err)
{
	struct vmb_exec_queue_create a = {.vm_id = vm, .engine = {.engine_class = VMB_ENGINE_CLASS_COMPUTE}};
	*err = vmb_exec_queue_create(c, &a);
	return a.exec_queue_id;
}

/* Everything a banned vm refuses, with -EIO; what it still answers. */
static void assert_banned(struct fixture *f, uint32_t vm, uint32_t xq)
{
	struct vmb_bind_op op = op_map(f->bo, 0, VA_B + 32 * MiB, G, 0);
	uint64_t v;
	int err;

	assert_int_equal(__bind1(f->c, vm, op), -EIO);
	assert_int_equal(__bind_async(f->c, vm, 0, &op, 1, NULL, 0), -EIO);
	op = op_unmap(VA_A, BO_SIZE);
	assert_int_equal(__bind1(f->c, vm, op), -EIO);
	assert_int_equal(__gpu_rw(f->c, vm, VA_A, &v, 8, false), -EIO);
	assert_int_equal(__gpu_rw(f->c, vm, VA_A, &v, 8, true), -EIO);
	/* a size-0 access too (UAPI.md: every call on a banned vm), read or write, data 0 or not */
	struct vmb_vm_access a0 = {.vm_id = vm, .addr = VA_A};
	assert_int_equal(vmb_vm_access(f->c, &a0), -EIO);
	a0.flags = VMB_ACCESS_WRITE;
	a0.data = (uintptr_t)&v;
	assert_int_equal(vmb_vm_access(f->c, &a0), -EIO);
	exec_queue_new(f->c, vm, &err);
	assert_int_equal(err, -EIO);
	if (xq) {
		struct vmb_exec x = {.exec_queue_id = xq, .address = VA_A};
		assert_int_equal(vmb_exec(f->c, &x), -EIO);
	}
	vm_stats(f->c, vm); /* queries read the tree */
	validate_client(f->c); /* a banned vm's page tables are not compared with its tree */
}

/* The other vm maps, reads and writes as before. */
static void assert_working(struct fixture *f, uint32_t vm)
{
	bind1(f->c, vm, op_map(f->bo, 0, VA_A + 128 * MiB, G, 0));
	gpu_write64(f->c, vm, VA_A + 128 * MiB + 8, 0x1234);
	assert_int_equal(gpu_read64(f->c, vm, VA_A + 128 * MiB + 8), 0x1234);
	bind1(f->c, vm, op_unmap(VA_A + 128 * MiB, G));
}

/*
 * An asynchronous bind, held by a gate, whose commit fails with -ENOMEM: its fence signals
 * -ENOMEM and its user fence is written; a bind of the same queue behind it and one of another
 * queue on an overlapping range signal -EIO; the vm refuses everything with -EIO; the other vm
 * works; destroy frees it.
 */
static void test_async_commit_fails(void **state)
{
	struct fixture *f = *state;
	int err;
	uint32_t xq = exec_queue_new(f->c, f->vm, &err);
	assert_int_equal(err, 0);
	bind1(f->c, f->vm, op_map(f->bo, 0, VA_B, BO_SIZE, 0));

	struct gate g = gate_new(f->c);
	uint32_t s1 = syncobj_new(f->c, 0), s2 = syncobj_new(f->c, 0), s3 = syncobj_new(f->c, 0);
	static uint64_t uf[3];
	struct vmb_sync y1[3] = {sync_in(g.h), sync_out(s1), sync_ufence(&uf[0], 7)};
	struct vmb_sync y2[2] = {sync_out(s2), sync_ufence(&uf[1], 8)};
	struct vmb_sync y3[2] = {sync_out(s3), sync_ufence(&uf[2], 9)};
	struct vmb_bind_op m1 = op_map(f->bo, 0, VA_A, BO_SIZE, 0);
	struct vmb_bind_op m2 = op_unmap(VA_B, BO_SIZE);
	struct vmb_bind_op m3 = op_map(f->bo, 0, VA_A + BO_SIZE - G, G, 0); /* meets m1 */
	uint32_t q2 = queue_new(f->c, f->vm);
	bind_async(f->c, f->vm, 0, &m1, 1, y1, 3);
	bind_async(f->c, f->vm, 0, &m2, 1, y2, 2);
	bind_async(f->c, f->vm, q2, &m3, 1, y3, 2);
	uint32_t pt_before = vm_stats(f->c, f->vm).leaves[2] + vm_stats(f->c, f->vm).leaves[0];

	vmb_commit_fail_after(1, -ENOMEM); /* the next map operation committed: m1's only one */
	gate_open(&g);
	assert_int_equal(syncobj_error(f->c, s1), -ENOMEM);
	assert_int_equal(syncobj_error(f->c, s2), -EIO);
	assert_int_equal(syncobj_error(f->c, s3), -EIO);
	ufence_wait(f->c, &uf[0], 7);
	ufence_wait(f->c, &uf[1], 8);
	ufence_wait(f->c, &uf[2], 9);
	assert_int_equal(vmb_commit_fail_after(0, 0), 0); /* it fired */
	assert_int_equal(vmb_commit_failed_count(), f->failed_before + 1);

	/* the tree holds every bind prepared; the page tables none of the three (nothing after
	 * the failure touched them: still the one 2 MiB mapping at VA_B) */
	assert_int_equal(nmappings(f, f->vm), G < BO_SIZE ? 2 : 1); /* m3 replaced all of m1 at 2 MiB granules */
	struct vmb_vm_stats st = vm_stats(f->c, f->vm);
	assert_int_equal(st.leaves[2] + st.leaves[0], pt_before);
	assert_banned(f, f->vm, xq);
	assert_working(f, f->other);

	struct vmb_exec_queue_destroy xd = {.exec_queue_id = xq};
	assert_int_equal(vmb_exec_queue_destroy(f->c, &xd), 0);
	vm_destroy1(f->c, f->vm);
	validate_client(f->c);
	assert_working(f, f->other);
}

/* A bind pending on a banned vm when the vm is destroyed: it signals -EIO (the ban first). */
static void test_pending_at_destroy(void **state)
{
	struct fixture *f = *state;
	struct gate g = gate_new(f->c), g2 = gate_new(f->c);
	uint32_t s1 = syncobj_new(f->c, 0), s2 = syncobj_new(f->c, 0);
	struct vmb_sync y1[2] = {sync_in(g.h), sync_out(s1)};
	struct vmb_sync y2[2] = {sync_in(g2.h), sync_out(s2)};
	struct vmb_bind_op m1 = op_map(f->bo, 0, VA_A, BO_SIZE, 0);
	struct vmb_bind_op m2 = op_null(VA_B, BO_SIZE);
	uint32_t q2 = queue_new(f->c, f->vm);
	bind_async(f->c, f->vm, 0, &m1, 1, y1, 2);
	bind_async(f->c, f->vm, q2, &m2, 1, y2, 2); /* waits for its own gate only */
	vmb_commit_fail_after(1, -EIO);
	gate_open(&g);
	assert_int_equal(syncobj_error(f->c, s1), -EIO);
	vm_destroy1(f->c, f->vm); /* m2 still waits for g2: run at once, -EIO */
	assert_int_equal(syncobj_error(f->c, s2), -EIO);
	gate_open(&g2);
	assert_working(f, f->other);
}

/* An exec queued (behind a gate) before its vm is banned ends with -ECANCELED when it would have
 * started: none of its commands runs through page tables that are no longer trusted. */
static void test_exec_queued_before_ban(void **state)
{
	struct fixture *f = *state;
	int err;
	uint32_t xq = exec_queue_new(f->c, f->vm, &err);
	assert_int_equal(err, 0);
	struct gate g = gate_new(f->c), gx = gate_new(f->c);
	uint32_t s1 = syncobj_new(f->c, 0), sx = syncobj_new(f->c, 0);
	struct vmb_sync y1[2] = {sync_in(g.h), sync_out(s1)};
	struct vmb_sync yx[2] = {sync_in(gx.h), sync_out(sx)};
	struct vmb_bind_op m1 = op_map(f->bo, 0, VA_A, BO_SIZE, 0);
	bind_async(f->c, f->vm, 0, &m1, 1, y1, 2);
	struct vmb_exec x = {.exec_queue_id = xq, .address = VA_A, .num_syncs = 2,
			     .syncs = (uint64_t)(uintptr_t)yx};
	assert_int_equal(vmb_exec(f->c, &x), 0);
	vmb_commit_fail_after(1, -EIO);
	gate_open(&g);
	assert_int_equal(syncobj_error(f->c, s1), -EIO);
	gate_open(&gx);
	assert_int_equal(syncobj_error(f->c, sx), -ECANCELED);
	assert_banned(f, f->vm, xq);
	struct vmb_exec_queue_destroy xd = {.exec_queue_id = xq};
	assert_int_equal(vmb_exec_queue_destroy(f->c, &xd), 0);
}

/* A synchronous bind of three operations whose second commit fails: the call returns the errno,
 * the vm is banned, the tree holds all three. */
static void test_sync_commit_fails(void **state)
{
	struct fixture *f = *state;
	struct vmb_bind_op ops[3] = {op_map(f->bo, 0, VA_A, BO_SIZE, 0), op_null(VA_B, BO_SIZE),
				     op_map(f->bo, 0, VA_B + BO_SIZE, G, 0)};
	vmb_commit_fail_after(2, -EIO);
	assert_int_equal(__bind_ops(f->c, f->vm, ops, 3), -EIO);
	assert_int_equal(vmb_commit_failed_count(), f->failed_before + 1);
	assert_int_equal(nmappings(f, f->vm), 3);
	assert_banned(f, f->vm, 0);
	assert_working(f, f->other);
	/* client close frees the banned vm (teardown) */
}

static uint32_t bo_region(struct fixture *f, uint32_t bo)
{
	struct vmb_bo_query q = {.handle = bo};
	assert_int_equal(vmb_bo_query(f->c, &q), 0);
	return q.region;
}

/*
 * PREFETCH re-maps the BO in every vm: the other vm first (mapped first), then its own. The
 * second operation fails: the other vm got its re-mapping onto the moved BO and is not banned
 * (validate checks its page tables against the BO's new place), its own vm is.
 */
static void test_prefetch_fails_in_own_vm(void **state)
{
	struct fixture *f = *state;
	bind1(f->c, f->other, op_map(f->bo, 0, VA_A, BO_SIZE, 0));
	bind1(f->c, f->vm, op_map(f->bo, 0, VA_A, BO_SIZE, 0));
	gpu_write64(f->c, f->other, VA_A + 16, 0xfeed);
	vmb_commit_fail_after(2, -EIO);
	assert_int_equal(__bind1(f->c, f->vm, op_prefetch(VA_A, BO_SIZE, VMB_REGION_SYSTEM)), -EIO);
	assert_int_equal(bo_region(f, f->bo), VMB_REGION_SYSTEM);
	assert_banned(f, f->vm, 0);
	assert_int_equal(gpu_read64(f->c, f->other, VA_A + 16), 0xfeed);
	assert_working(f, f->other);
	/* a later PREFETCH leaves the banned vm out, and moves the BO for the other one */
	bind1(f->c, f->other, op_prefetch(VA_A, BO_SIZE, VMB_REGION_VRAM));
	assert_int_equal(bo_region(f, f->bo), VMB_REGION_VRAM);
	assert_int_equal(gpu_read64(f->c, f->other, VA_A + 16), 0xfeed);
	validate_client(f->c);
}

/*
 * A PREFETCH after a MAP in one call, the MAP's commit failing: the move was not reached (the
 * BO stays in VRAM, its new SYSTEM backing freed), and the other vm, whose re-mapping was not
 * applied, is banned too: its page tables still point where the BO was.
 */
static void test_prefetch_move_not_reached(void **state)
{
	struct fixture *f = *state;
	struct vmb_device *dev = f->c->dev;
	uint32_t bo2 = bo_new(f->c, BO_SIZE, VMB_PLACE_VRAM);
	bind1(f->c, f->other, op_map(f->bo, 0, VA_A, BO_SIZE, 0));
	bind1(f->c, f->vm, op_map(f->bo, 0, VA_A, BO_SIZE, 0));
	uint64_t sys_free = dev->ops->region_free(dev, VMB_REGION_SYSTEM);
	struct vmb_bind_op ops[2] = {op_map(bo2, 0, VA_B, BO_SIZE, 0), op_prefetch(VA_A, BO_SIZE, VMB_REGION_SYSTEM)};
	vmb_commit_fail_after(1, -EIO);
	assert_int_equal(__bind_ops(f->c, f->vm, ops, 2), -EIO);
	assert_int_equal(bo_region(f, f->bo), VMB_REGION_VRAM);
	assert_int_equal(dev->ops->region_free(dev, VMB_REGION_SYSTEM), sys_free);
	assert_banned(f, f->vm, 0);
	assert_banned(f, f->other, 0);
	vm_destroy1(f->c, f->other);
	f->other = vm_new(f->c, 0);
	assert_working(f, f->other);
}

/* Without the hook, nothing in this file's binds failed but what it armed. */
static void test_no_failure_without_hook(void **state)
{
	struct fixture *f = *state;
	for (int i = 0; i < 64; i++) {
		bind1(f->c, f->vm, op_map(f->bo, 0, VA_A + (uint64_t)i * BO_SIZE, BO_SIZE, 0));
		struct vmb_bind_op op = op_unmap(VA_A + (uint64_t)i * BO_SIZE, G);
		bind_async(f->c, f->vm, 0, &op, 1, NULL, 0);
	}
	bind1(f->c, f->vm, op_null(VA_B, G)); /* waits for its queue's binds */
	assert_int_equal(vmb_commit_failed_count(), f->failed_before);
	assert_working(f, f->vm);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_async_commit_fails, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pending_at_destroy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_exec_queued_before_ban, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sync_commit_fails, setup, teardown),
		cmocka_unit_test_setup_teardown(test_prefetch_fails_in_own_vm, setup, teardown),
		cmocka_unit_test_setup_teardown(test_prefetch_move_not_reached, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_failure_without_hook, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
