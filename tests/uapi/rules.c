/* SPDX-License-Identifier: MIT */
/*
 * Description: the ioctl rules, for every entry point at once. Each call is made valid, then
 * broken one way at a time: a NULL client, NULL arguments, and every byte of every pad, reserved
 * and flags field set (flags: every undefined bit); each must give -EINVAL and change nothing,
 * and the valid call must then succeed. Then every creating call is run with its n-th
 * allocation failing, n = 1, 2, ... until it succeeds: each failure is -ENOMEM and leaves no
 * object behind (the handle tables and the client check stay as they were).
 */
#include "lib/harness.h"

#include <errno.h>

#include "core/alloc.h"

struct field {
	size_t off, size;
	uint64_t known; /* flags: the defined bits (any other bit is an error); 0 for pad/reserved */
};

#define F(type, member) {offsetof(type, member), sizeof(((type *)0)->member), 0}
#define FLAGS(type, member, known_) {offsetof(type, member), sizeof(((type *)0)->member), known_}

struct fixture {
	struct vmb_client *c;
	uint32_t vm, bo, q, syncobj, xq;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	f->c = open_soft(64 * MiB, 64 * MiB);
	f->vm = vm_new(f->c, 0);
	f->bo = bo_new(f->c, 64 * KiB, VMB_PLACE_VRAM);
	f->q = queue_new(f->c, f->vm);
	f->syncobj = syncobj_new(f->c, VMB_SYNCOBJ_CREATE_SIGNALED);
	struct vmb_exec_queue_create xc = {.vm_id = f->vm};
	assert_int_equal(vmb_exec_queue_create(f->c, &xc), 0);
	f->xq = xc.exec_queue_id;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	validate_client(f->c);
	assert_int_equal(vmb_client_close(f->c), 0);
	free(f);
	return 0;
}

typedef int (*call_fn)(struct vmb_client *, void *);

/* @good (size bytes) is a valid argument for @fn; every field in @fields, broken, must fail. */
static void check_call(struct vmb_client *c, const char *name, call_fn fn, const void *good, size_t size,
		       const struct field *fields, size_t nfields, bool call_valid)
{
	uint8_t *a = malloc(size);
	if (fn(NULL, memcpy(a, good, size)) != -EINVAL)
		fail_msg("%s: NULL client accepted", name);
	if (fn(c, NULL) != -EINVAL)
		fail_msg("%s: NULL arguments accepted", name);
	for (size_t i = 0; i < nfields; i++) {
		const struct field *fl = &fields[i];
		if (fl->known) { /* every undefined bit of a flags field, one at a time */
			for (unsigned int bit = 0; bit < fl->size * 8; bit++) {
				if (fl->known & (1ull << bit))
					continue;
				memcpy(a, good, size);
				uint64_t v = 0;
				memcpy(&v, a + fl->off, fl->size);
				v |= 1ull << bit;
				memcpy(a + fl->off, &v, fl->size);
				int err = fn(c, a);
				if (err != -EINVAL)
					fail_msg("%s: flag bit %u at offset %zu gave %d", name, bit, fl->off, err);
			}
			continue;
		}
		for (size_t b = 0; b < fl->size; b++) { /* every byte of a pad/reserved field */
			memcpy(a, good, size);
			a[fl->off + b] = 0x01;
			int err = fn(c, a);
			if (err != -EINVAL)
				fail_msg("%s: byte %zu of the field at offset %zu gave %d", name, b, fl->off, err);
		}
	}
	validate_client(c);
	if (call_valid && fn(c, memcpy(a, good, size)) != 0)
		fail_msg("%s: the valid call failed", name);
	free(a);
}

#define CHECK(c, fn, good, ...)                                                                  \
	do {                                                                                     \
		const struct field fl_[] = {__VA_ARGS__};                                        \
		check_call(c, #fn, (call_fn)(void *)fn, &(good), sizeof(good), fl_, sizeof(fl_) / sizeof(fl_[0]), true); \
	} while (0)

static void test_fields(void **state)
{
	struct fixture *f = *state;
	struct vmb_client *c = f->c;

	struct vmb_bo_create bc = {.size = 4096, .placements = VMB_PLACE_SYSTEM};
	CHECK(c, vmb_bo_create, bc, FLAGS(struct vmb_bo_create, flags, 0),
	      F(struct vmb_bo_create, reserved));
	struct vmb_bo_query bq = {.handle = f->bo};
	CHECK(c, vmb_bo_query, bq, F(struct vmb_bo_query, pad), F(struct vmb_bo_query, pad2),
	      F(struct vmb_bo_query, reserved));
	struct vmb_bo_mmap bm = {.handle = f->bo};
	CHECK(c, vmb_bo_mmap, bm, FLAGS(struct vmb_bo_mmap, flags, 0), F(struct vmb_bo_mmap, reserved));
	struct vmb_bo_munmap bu = {.handle = f->bo, .ptr = bm.ptr};
	assert_int_equal(vmb_bo_mmap(c, &bm), 0);
	bu.ptr = bm.ptr;
	CHECK(c, vmb_bo_munmap, bu, F(struct vmb_bo_munmap, pad), F(struct vmb_bo_munmap, reserved));
	struct vmb_vm_create vc = {0};
	CHECK(c, vmb_vm_create, vc, FLAGS(struct vmb_vm_create, flags,
					 VMB_VM_CREATE_SCRATCH_PAGE | VMB_VM_CREATE_LR_MODE | VMB_VM_CREATE_RESTART_MODE),
	      F(struct vmb_vm_create, reserved));
	struct vmb_vm_stats vs = {.vm_id = f->vm};
	CHECK(c, vmb_vm_query_stats, vs, F(struct vmb_vm_stats, pad), F(struct vmb_vm_stats, reserved));
	struct vmb_bind_queue_create qc = {.vm_id = f->vm};
	CHECK(c, vmb_bind_queue_create, qc, FLAGS(struct vmb_bind_queue_create, flags, 0),
	      F(struct vmb_bind_queue_create, pad), F(struct vmb_bind_queue_create, reserved));
	struct vmb_exec_queue_create xc = {.vm_id = f->vm};
	CHECK(c, vmb_exec_queue_create, xc, FLAGS(struct vmb_exec_queue_create, flags, VMB_EXEC_QUEUE_CMDSET_INTEL),
	      F(struct vmb_exec_queue_create, pad), F(struct vmb_exec_queue_create, reserved),
	      F(struct vmb_exec_queue_create, engine.pad));
	struct vmb_exec_queue_query xq = {.exec_queue_id = f->xq};
	CHECK(c, vmb_exec_queue_query, xq, F(struct vmb_exec_queue_query, reserved));
	struct vmb_syncobj_create sc = {0};
	CHECK(c, vmb_syncobj_create, sc,
	      FLAGS(struct vmb_syncobj_create, flags, VMB_SYNCOBJ_CREATE_SIGNALED | VMB_SYNCOBJ_CREATE_TIMELINE),
	      F(struct vmb_syncobj_create, reserved));
	struct vmb_syncobj_fd sf = {.handle = f->syncobj};
	CHECK(c, vmb_syncobj_export_fd, sf, FLAGS(struct vmb_syncobj_fd, flags, 0), F(struct vmb_syncobj_fd, pad),
	      F(struct vmb_syncobj_fd, reserved));
	close(sf.fd);
	struct vmb_device_query dq = {0};
	CHECK(c, vmb_device_query, dq, F(struct vmb_device_query, reserved));
	struct vmb_region_query rq = {.region = VMB_REGION_VRAM};
	CHECK(c, vmb_region_query, rq, F(struct vmb_region_query, pad), F(struct vmb_region_query, reserved));
	struct vmb_engines_query eq = {0};
	CHECK(c, vmb_engines_query, eq, F(struct vmb_engines_query, pad), F(struct vmb_engines_query, reserved));
	struct vmb_client_validate cv = {0};
	CHECK(c, vmb_client_validate, cv, FLAGS(struct vmb_client_validate, flags, 0), F(struct vmb_client_validate, pad),
	      F(struct vmb_client_validate, reserved));
	struct vmb_trace_start ts = {.capacity = 8};
	CHECK(c, vmb_trace_start, ts, FLAGS(struct vmb_trace_start, flags, 0), F(struct vmb_trace_start, reserved));
	struct vmb_trace_event ev[1];
	struct vmb_trace_read tr = {.events = (uint64_t)(uintptr_t)ev, .num_events = 1};
	CHECK(c, vmb_trace_read, tr, F(struct vmb_trace_read, reserved));
	uint64_t val = 0;
	struct vmb_user_fence_wait uw = {.addr = (uint64_t)(uintptr_t)&val, .value = 0, .mask = ~0ull};
	CHECK(c, vmb_user_fence_wait, uw,
	      FLAGS(struct vmb_user_fence_wait, flags, VMB_UFENCE_WAIT_ABSTIME | VMB_UFENCE_WAIT_BO),
	      F(struct vmb_user_fence_wait, bo_handle), F(struct vmb_user_fence_wait, pad),
	      F(struct vmb_user_fence_wait, exec_queue_serial)); /* without exec_queue_id */
	uint32_t h = f->syncobj;
	struct vmb_syncobj_wait sw = {.handles = (uint64_t)(uintptr_t)&h, .count = 1};
	CHECK(c, vmb_syncobj_wait, sw,
	      FLAGS(struct vmb_syncobj_wait, flags,
		    VMB_SYNCOBJ_WAIT_ALL | VMB_SYNCOBJ_WAIT_FOR_SUBMIT | VMB_SYNCOBJ_WAIT_AVAILABLE | VMB_SYNCOBJ_WAIT_RELATIVE),
	      F(struct vmb_syncobj_wait, pad), F(struct vmb_syncobj_wait, reserved));
	struct vmb_syncobj_array sa = {.handles = (uint64_t)(uintptr_t)&h, .count = 1};
	CHECK(c, vmb_syncobj_reset, sa, FLAGS(struct vmb_syncobj_array, flags, 0), F(struct vmb_syncobj_array, reserved));
	CHECK(c, vmb_syncobj_signal, sa, FLAGS(struct vmb_syncobj_array, flags, 0), F(struct vmb_syncobj_array, reserved));
	struct vmb_syncobj_transfer st = {.src_handle = f->syncobj, .dst_handle = f->syncobj};
	CHECK(c, vmb_syncobj_transfer, st, FLAGS(struct vmb_syncobj_transfer, flags, 0),
	      F(struct vmb_syncobj_transfer, pad), F(struct vmb_syncobj_transfer, reserved));
	struct vmb_bind_op op = op_map(f->bo, 0, 0, 4096, 0);
	struct vmb_vm_bind vb = {.vm_id = f->vm, .num_binds = 1, .binds = (uint64_t)(uintptr_t)&op};
	CHECK(c, vmb_vm_bind, vb, FLAGS(struct vmb_vm_bind, flags, VMB_VM_BIND_FLAG_ASYNC), F(struct vmb_vm_bind, pad),
	      F(struct vmb_vm_bind, reserved));
	/* destroys last: their valid call removes the object */
	struct vmb_exec_queue_destroy xd = {.exec_queue_id = f->xq};
	CHECK(c, vmb_exec_queue_destroy, xd, F(struct vmb_exec_queue_destroy, pad), F(struct vmb_exec_queue_destroy, reserved));
	struct vmb_bind_queue_destroy qd = {.vm_id = f->vm, .queue_id = f->q};
	assert_int_equal(vmb_bind_queue_destroy(c, &qd), 0);
	struct vmb_syncobj_destroy sd = {.handle = f->syncobj};
	CHECK(c, vmb_syncobj_destroy, sd, F(struct vmb_syncobj_destroy, pad), F(struct vmb_syncobj_destroy, reserved));
	struct vmb_bo_destroy bd = {.handle = f->bo};
	CHECK(c, vmb_bo_destroy, bd, F(struct vmb_bo_destroy, pad), F(struct vmb_bo_destroy, reserved));
	struct vmb_vm_destroy vd = {.vm_id = f->vm};
	CHECK(c, vmb_vm_destroy, vd, F(struct vmb_vm_destroy, pad), F(struct vmb_vm_destroy, reserved));
	/* and the unknown handles of what was just destroyed */
	assert_int_equal(vmb_bind_queue_destroy(c, &qd), -ENOENT);
	assert_int_equal(vmb_vm_destroy(c, &vd), -ENOENT);
	struct vmb_bind_queue_create qc2 = {.vm_id = f->vm};
	assert_int_equal(vmb_bind_queue_create(c, &qc2), -ENOENT);
}

/* Runs @fn until it stops failing with its n-th allocation failing: each failure -ENOMEM. */
static void alloc_walk(struct vmb_client *c, const char *name, call_fn fn, const void *good, size_t size)
{
	uint8_t *a = malloc(size);
	unsigned long n;
	for (n = 1; n < 100; n++) {
		memcpy(a, good, size);
		vmb_alloc_fail_after(n);
		int err = fn(c, a);
		bool fired = vmb_alloc_fail_after(0) == 0;
		if (!err)
			break;
		if (err != -ENOMEM || !fired)
			fail_msg("%s: allocation %lu failing gave %d", name, n, err);
		validate_client(c);
	}
	assert_true(n > 1); /* it does allocate */
	print_message("%s: %lu allocations, each failure handled\n", name, n - 1);
	free(a);
}

#define WALK(c, fn, good) alloc_walk(c, #fn, (call_fn)(void *)fn, &(good), sizeof(good))

static void test_allocation_failures(void **state)
{
	struct fixture *f = *state;
	struct vmb_bo_create bc = {.size = 64 * KiB, .placements = VMB_PLACE_VRAM};
	WALK(f->c, vmb_bo_create, bc);
	struct vmb_vm_create vc = {0};
	WALK(f->c, vmb_vm_create, vc);
	struct vmb_bind_queue_create qc = {.vm_id = f->vm};
	WALK(f->c, vmb_bind_queue_create, qc);
	struct vmb_exec_queue_create xc = {.vm_id = f->vm};
	WALK(f->c, vmb_exec_queue_create, xc);
	struct vmb_syncobj_create sc = {.flags = VMB_SYNCOBJ_CREATE_TIMELINE};
	WALK(f->c, vmb_syncobj_create, sc);
	struct vmb_trace_start ts = {.capacity = 16};
	WALK(f->c, vmb_trace_start, ts);
	/* a timeline signal allocates its point; a wait its entries */
	uint64_t point = 1;
	uint32_t h = syncobj_new(f->c, VMB_SYNCOBJ_CREATE_TIMELINE);
	struct vmb_syncobj_array sa = {.handles = (uint64_t)(uintptr_t)&h, .points = (uint64_t)(uintptr_t)&point, .count = 1};
	WALK(f->c, vmb_syncobj_timeline_signal, sa);
	struct vmb_syncobj_wait sw = {.handles = (uint64_t)(uintptr_t)&h, .points = (uint64_t)(uintptr_t)&point, .count = 1};
	WALK(f->c, vmb_syncobj_wait, sw);
	/* an asynchronous bind with syncs: every allocation of the call */
	uint32_t out = syncobj_new(f->c, VMB_SYNCOBJ_CREATE_TIMELINE);
	static uint64_t uf, uf2[2];
	/* more syncs than a bind call parses without the heap (uapi/sync.h, VMB_SYNCS_INLINE): its
	 * first allocation fails the call instead of being absorbed, so the walk goes on */
	struct vmb_sync syncs[5] = {sync_in(f->syncobj), sync_tl_out(out, 1), sync_ufence(&uf, 1),
				    sync_ufence(&uf2[0], 1), sync_ufence(&uf2[1], 1)};
	struct vmb_bind_op op = op_map(f->bo, 0, 0, 4096, 0);
	struct vmb_vm_bind vb = {.vm_id = f->vm, .num_binds = 1, .binds = (uint64_t)(uintptr_t)&op, .num_syncs = 5,
				 .syncs = (uint64_t)(uintptr_t)syncs, .flags = VMB_VM_BIND_FLAG_ASYNC};
	WALK(f->c, vmb_vm_bind, vb);
	ufence_wait(f->c, &uf, 1);
	assert_int_equal(vm_stats(f->c, f->vm).num_mappings, 1);
	/* an exec with syncs */
	uint32_t xo = syncobj_new(f->c, 0);
	struct vmb_sync xs[2] = {sync_in(f->syncobj), sync_out(xo)};
	struct vmb_exec ex = {.exec_queue_id = f->xq, .address = 0, .num_syncs = 2, .syncs = (uint64_t)(uintptr_t)xs};
	WALK(f->c, vmb_exec, ex);
	syncobj_wait1(f->c, xo); /* it faults (no commands there): the queue says so */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_fields, setup, teardown),
		cmocka_unit_test_setup_teardown(test_allocation_failures, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
