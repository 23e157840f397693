/* SPDX-License-Identifier: MIT */
/*
 * Description: a client's life. Close with tens of thousands of objects frees them all (no
 * leak under ASan) and reads each handle slot a bounded number of times (linear, through the
 * tables' debug scan counter).
 */
#include "lib/harness.h"

#include <errno.h>
#include <stdatomic.h>

#include "core/handle.h" /* vmb_handle_scan_steps */

#define SEC 1000000000ll

/* ---- close with many objects ------------------------------------------------------------- */

#define MANY 8192
#define BO_VA 0x100000000ull

static void test_close_many_objects(void **state)
{
	(void)state;
	struct vmb_client *c = open_soft(32 * MiB, 64 * MiB);
	uint32_t vm = vm_new(c, 0);
	for (int i = 0; i < MANY; i++) {
		uint32_t so = syncobj_new(c, i & 1 ? VMB_SYNCOBJ_CREATE_SIGNALED : 0);
		if (i % 3 == 0) { /* holes */
			struct vmb_syncobj_destroy d = {.handle = so};
			assert_int_equal(vmb_syncobj_destroy(c, &d), 0);
		}
	}
	for (int i = 0; i < MANY / 8; i++) {
		uint32_t bo = bo_new(c, 4096, VMB_PLACE_SYSTEM);
		if (i % 16 == 0)
			bind1(c, vm, op_map(bo, 0, BO_VA + i * 4096ull, 4096, 0));
	}
	for (int i = 0; i < 256; i++) {
		vm_new(c, 0);
		queue_new(c, vm);
	}
	/* the tables hold about MANY + MANY / 8 + 256 slots (and the vm's queues 512): a drain
	 * reads each once; the quadratic drain read them MANY^2 / 2 times */
	unsigned long long before = atomic_load(&vmb_handle_scan_steps);
	assert_int_equal(vmb_client_close(c), 0);
	unsigned long long steps = atomic_load(&vmb_handle_scan_steps) - before;
	printf("close: %llu handle slots read\n", steps);
	assert_true(steps <= 4ull * (MANY + MANY / 8 + 256 + 512));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_close_many_objects),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
