/* SPDX-License-Identifier: MIT */
/*
 * Description: devices are shared, clients attach. The backend list (vmb_backend_query). Two
 * clients of "soft" see one device (one region, one set of engines); "soft" and "soft:N" are
 * independent; options that conflict with a live instance: -EBUSY; malformed names: -ENODEV;
 * the device lives until its last client; a fork child opening "soft" gets a fresh device.
 */
#include "lib/harness.h"

#include <errno.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sync/fence.h" /* VMB_FENCE_CONDVAR: a ThreadSanitizer build */

static uint64_t region_free(struct vmb_client *c, uint32_t region)
{
	struct vmb_region_query q = {.region = region};
	assert_int_equal(vmb_region_query(c, &q), 0);
	return q.free;
}

static uint64_t region_capacity(struct vmb_client *c, uint32_t region)
{
	struct vmb_region_query q = {.region = region};
	assert_int_equal(vmb_region_query(c, &q), 0);
	return q.capacity;
}

static int open_opts(const char *name, uint64_t vram, uint64_t sys, uint64_t pool, uint32_t timeout_ms,
		     struct vmb_client **c)
{
	struct vmb_client_opts o = {.vram_size = vram, .system_size = sys, .pt_pool_size = pool,
				    .job_timeout_ms = timeout_ms};
	return vmb_client_open(name, &o, c);
}

static void test_backend_query(void **state)
{
	(void)state;
	struct vmb_backend_query q = {0};
	assert_int_equal(vmb_backend_query(&q), 0);
	assert_string_equal(q.name, "soft");
	assert_int_equal(q.available, 1);
	assert_string_equal(q.reason, "");
	q = (struct vmb_backend_query){.index = 1};
	assert_int_equal(vmb_backend_query(&q), 0);
	assert_string_equal(q.name, "cuda");
	assert_int_equal(q.available, 0);
	assert_string_equal(q.reason, "not built");
	q = (struct vmb_backend_query){.index = 2};
	assert_int_equal(vmb_backend_query(&q), -ENOENT);
	q = (struct vmb_backend_query){.reserved = {0, 1}};
	assert_int_equal(vmb_backend_query(&q), -EINVAL);
	assert_int_equal(vmb_backend_query(NULL), -EINVAL);
	/* an unavailable backend cannot be opened */
	struct vmb_client *c = NULL;
	assert_int_equal(vmb_client_open("cuda", NULL, &c), -ENODEV);
}

static void test_malformed_names(void **state)
{
	(void)state;
	static const char *const bad[] = {"", "soft:", "soft:01", "soft:00", "soft:64", "soft:-1", "soft:+1",
					  "soft:1x", "soft: 1", "soft1", "soft::1", "Soft", "nope", "soft:99999999999"};
	struct vmb_client *c = NULL;
	for (unsigned int i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		print_message("%s\n", bad[i]);
		assert_int_equal(vmb_client_open(bad[i], NULL, &c), -ENODEV);
	}
	/* the bounds work, and "soft:0" is "soft" */
	struct vmb_client *a, *b, *z;
	assert_int_equal(open_opts("soft:63", 2 * MiB, 64 * KiB, 0, 0, &z), 0);
	assert_int_equal(open_opts("soft", 4 * MiB, 64 * KiB, 0, 0, &a), 0);
	assert_int_equal(vmb_client_open("soft:0", NULL, &b), 0);
	assert_int_equal(region_capacity(b, VMB_REGION_VRAM), 4 * MiB);
	assert_int_equal(region_capacity(z, VMB_REGION_VRAM), 2 * MiB);
	assert_int_equal(vmb_client_close(a), 0);
	assert_int_equal(vmb_client_close(b), 0);
	assert_int_equal(vmb_client_close(z), 0);
}

/* Two clients of "soft": one device. A BO of one takes room that the other sees go. */
static void test_one_device_two_clients(void **state)
{
	(void)state;
	struct vmb_client *a = open_soft(32 * MiB, 32 * MiB), *b = NULL;
	assert_int_equal(vmb_client_open("soft", NULL, &b), 0);
	struct vmb_device_query qa = {0}, qb = {0};
	assert_int_equal(vmb_device_query(a, &qa), 0);
	assert_int_equal(vmb_device_query(b, &qb), 0);
	assert_memory_equal(&qa, &qb, sizeof(qa));
	assert_int_equal(region_capacity(b, VMB_REGION_VRAM), 32 * MiB);
	uint64_t before = region_free(b, VMB_REGION_VRAM);
	uint32_t bo = bo_new(a, 4 * MiB, VMB_PLACE_VRAM);
	assert_int_equal(region_free(b, VMB_REGION_VRAM), before - 4 * MiB);
	/* handles are per client: B does not know A's */
	struct vmb_bo_query bq = {.handle = bo};
	assert_int_equal(vmb_bo_query(b, &bq), -ENOENT);
	validate_client(a);
	validate_client(b);
	assert_int_equal(vmb_client_close(a), 0);
	/* A's BO went with A */
	assert_int_equal(region_free(b, VMB_REGION_VRAM), before);
	assert_int_equal(vmb_client_close(b), 0);
}

/* "soft" and "soft:1": independent capacities, regions, engines. */
static void test_instances_independent(void **state)
{
	(void)state;
	struct vmb_client *a = open_soft(32 * MiB, 32 * MiB);
	struct vmb_client *b = open_soft_at("soft:1", 16 * MiB, 8 * MiB);
	assert_int_equal(region_capacity(a, VMB_REGION_VRAM), 32 * MiB);
	assert_int_equal(region_capacity(b, VMB_REGION_VRAM), 16 * MiB);
	assert_int_equal(region_capacity(b, VMB_REGION_SYSTEM), 8 * MiB);
	uint64_t fb = region_free(b, VMB_REGION_VRAM);
	bo_new(a, 8 * MiB, VMB_PLACE_VRAM);
	assert_int_equal(region_free(b, VMB_REGION_VRAM), fb);
	assert_int_equal(region_free(a, VMB_REGION_VRAM), 24 * MiB);
	/* each runs its own binds */
	uint32_t va = vm_new(a, 0), vb = vm_new(b, 0);
	uint32_t ba = bo_new(a, 64 * KiB, VMB_PLACE_SYSTEM), bb = bo_new(b, 64 * KiB, VMB_PLACE_SYSTEM);
	bind1(a, va, op_map(ba, 0, 1 * MiB, 64 * KiB, 0));
	bind1(b, vb, op_map(bb, 0, 1 * MiB, 64 * KiB, 0));
	gpu_write64(a, va, 1 * MiB, 1);
	gpu_write64(b, vb, 1 * MiB, 2);
	assert_int_equal(gpu_read64(a, va, 1 * MiB), 1);
	assert_int_equal(gpu_read64(b, vb, 1 * MiB), 2);
	validate_client(a);
	validate_client(b);
	assert_int_equal(vmb_client_close(a), 0);
	assert_int_equal(vmb_client_close(b), 0);
}

/* Options given to an open of a live instance: each non-zero one must match. */
static void test_conflicting_opts(void **state)
{
	(void)state;
	struct vmb_client *a, *b;
	assert_int_equal(open_opts("soft", 32 * MiB, 16 * MiB, 64 * KiB, 3000, &a), 0);
	assert_int_equal(open_opts("soft", 64 * MiB, 0, 0, 0, &b), -EBUSY);
	assert_int_equal(open_opts("soft", 0, 32 * MiB, 0, 0, &b), -EBUSY);
	assert_int_equal(open_opts("soft", 0, 0, 128 * KiB, 0, &b), -EBUSY);
	assert_int_equal(open_opts("soft", 0, 0, 0, 4000, &b), -EBUSY);
	/* still -EINVAL first for bad options */
	struct vmb_client_opts bad = {.flags = 1};
	assert_int_equal(vmb_client_open("soft", &bad, &b), -EINVAL);
	/* the same values, zeros, or no options: attach */
	assert_int_equal(open_opts("soft", 32 * MiB, 16 * MiB, 64 * KiB, 3000, &b), 0);
	assert_int_equal(vmb_client_close(b), 0);
	assert_int_equal(open_opts("soft", 0, 16 * MiB, 0, 0, &b), 0);
	assert_int_equal(vmb_client_close(b), 0);
	assert_int_equal(vmb_client_open("soft", NULL, &b), 0);
	assert_int_equal(vmb_client_close(b), 0);
	/* another instance takes other values */
	assert_int_equal(open_opts("soft:1", 64 * MiB, 0, 0, 0, &b), 0);
	assert_int_equal(vmb_client_close(b), 0);
	assert_int_equal(vmb_client_close(a), 0);
	/* once the last client is gone, the next open makes a new instance with its own values */
	assert_int_equal(open_opts("soft", 64 * MiB, 0, 0, 0, &a), 0);
	assert_int_equal(region_capacity(a, VMB_REGION_VRAM), 64 * MiB);
	assert_int_equal(vmb_client_close(a), 0);
}

/* The device lives until its last client: B keeps working after A (the first) closed. */
static void test_device_outlives_first_client(void **state)
{
	(void)state;
	struct vmb_client *a = open_soft(32 * MiB, 32 * MiB), *b = NULL;
	uint32_t vma = vm_new(a, 0);
	uint32_t boa = bo_new(a, 64 * KiB, VMB_PLACE_VRAM);
	bind1(a, vma, op_map(boa, 0, 2 * MiB, 64 * KiB, 0));
	assert_int_equal(vmb_client_open("soft", NULL, &b), 0);
	assert_int_equal(vmb_client_close(a), 0);
	uint32_t vm = vm_new(b, 0), bo = bo_new(b, 64 * KiB, VMB_PLACE_VRAM);
	bind1(b, vm, op_map(bo, 0, 2 * MiB, 64 * KiB, 0));
	gpu_write64(b, vm, 2 * MiB + 8, 42);
	assert_int_equal(((uint64_t *)bo_cpu(b, bo))[1], 42);
	assert_int_equal(region_capacity(b, VMB_REGION_VRAM), 32 * MiB);
	assert_int_equal(region_free(b, VMB_REGION_VRAM), 32 * MiB - 64 * KiB);
	validate_client(b);
	assert_int_equal(vmb_client_close(b), 0);
}

#if defined(__SANITIZE_ADDRESS__)
#define SANITIZER_ALLOCATOR 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANITIZER_ALLOCATOR 1
#endif
#endif

/* A child that opens "soft" gets a device of its own, never the parent's (whose threads do
 * not exist in the child): options the parent's instance would refuse work, and its regions
 * are empty. */
static void test_fork_child_fresh_device(void **state)
{
	(void)state;
#if defined(VMB_FENCE_CONDVAR) || defined(SANITIZER_ALLOCATOR)
	/* as in uapi/lifecycle.c: sanitizers cannot start threads in a child of a threaded
	 * parent reliably; the plain build runs this test */
	skip();
#endif
	struct vmb_client *p = open_soft(32 * MiB, 32 * MiB);
	bo_new(p, 4 * MiB, VMB_PLACE_VRAM);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		alarm(10); /* a hang ends the child with SIGALRM */
		struct vmb_client *c;
		if (open_opts("soft", 64 * MiB, 0, 0, 0, &c))
			_exit(2);
		struct vmb_region_query q = {.region = VMB_REGION_VRAM};
		if (vmb_region_query(c, &q) || q.capacity != 64 * MiB || q.free != q.capacity)
			_exit(3);
		_exit(vmb_client_close(c) ? 4 : 0);
	}
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	assert_int_equal(region_free(p, VMB_REGION_VRAM), 28 * MiB);
	assert_int_equal(vmb_client_close(p), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_backend_query),
		cmocka_unit_test(test_malformed_names),
		cmocka_unit_test(test_one_device_two_clients),
		cmocka_unit_test(test_instances_independent),
		cmocka_unit_test(test_conflicting_opts),
		cmocka_unit_test(test_device_outlives_first_client),
		cmocka_unit_test(test_fork_child_fresh_device),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
