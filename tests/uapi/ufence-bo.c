/* SPDX-License-Identifier: MIT */
/*
 * Description: user fences in BOs (VMB_SYNC_BO_USER_FENCE, VMB_UFENCE_WAIT_BO). A bind's and an
 * exec's out-fences named as (BO, offset) are written into the BO, where its CPU map reads them
 * and a wait by (BO, offset) sees them; the shape, lookup and range errors; and a BO destroyed
 * while its fence is pending (its last reference gone) is still written safely: the write holds
 * the BO's pages (a write into unmapped pages would crash here, or be reported by ASan).
 */
#include "lib/harness.h"

#include <errno.h>
#include <pthread.h>

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
		cmocka_unit_test(test_capability),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
