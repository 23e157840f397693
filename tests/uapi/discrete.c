/* SPDX-License-Identifier: MIT */
/*
 * Description: the soft device's discrete shape (docs/UAPI.md, "Device shapes"). Opened with
 * VMB_CLIENT_OPEN_DISCRETE or VMB_SOFT_DISCRETE=1 it is 2 MiB-granular and reports no
 * VMB_CAP_VRAM_CPU_MAP; the flag with a 4 KiB min_page_size is -EINVAL, on a live integrated
 * instance -EBUSY. vmb_bo_mmap of a BO in VRAM (or with a PREFETCH there) is -EOPNOTSUPP, in
 * SYSTEM it works; the GPU view reads and writes VRAM (through the device's copies) and the
 * contents survive moves both ways; the integrated shape maps VRAM as before.
 */
#include "lib/harness.h"

#include <errno.h>

static int open_flags(const char *name, uint32_t flags, uint64_t granule, struct vmb_client **c)
{
	struct vmb_client_opts o = {.vram_size = 64 * MiB, .system_size = 64 * MiB, .flags = flags,
				    .min_page_size = granule};
	return vmb_client_open(name, &o, c);
}

static struct vmb_device_query query(struct vmb_client *c)
{
	struct vmb_device_query d = {0};
	assert_int_equal(vmb_device_query(c, &d), 0);
	return d;
}

static int __bo_mmap(struct vmb_client *c, uint32_t bo)
{
	struct vmb_bo_mmap m = {.handle = bo};
	return vmb_bo_mmap(c, &m);
}

static void test_open(void **state)
{
	(void)state;
	struct vmb_client *c = NULL, *c2 = NULL;

	assert_int_equal(open_flags("soft", VMB_CLIENT_OPEN_DISCRETE, VMB_PAGE_4K, &c), -EINVAL);
	assert_int_equal(open_flags("soft", 1u << 1, 0, &c), -EINVAL);
	assert_null(c);

	assert_int_equal(open_flags("soft", VMB_CLIENT_OPEN_DISCRETE, 0, &c), 0);
	struct vmb_device_query d = query(c);
	assert_int_equal(d.min_page_size, VMB_PAGE_2M);
	assert_int_equal(d.page_sizes, VMB_PAGE_2M | VMB_PAGE_1G);
	assert_false(d.capabilities & VMB_CAP_VRAM_CPU_MAP);
	/* attaching: no flag, the flag, the flag with 2 MiB all take the live discrete instance */
	assert_int_equal(open_flags("soft", 0, 0, &c2), 0);
	assert_int_equal(vmb_client_close(c2), 0);
	assert_int_equal(open_flags("soft", VMB_CLIENT_OPEN_DISCRETE, VMB_PAGE_2M, &c2), 0);
	assert_int_equal(vmb_client_close(c2), 0);
	assert_int_equal(vmb_client_close(c), 0);

	/* an integrated instance: VRAM maps, and the flag does not attach to it */
	assert_int_equal(open_flags("soft", 0, 0, &c), 0);
	d = query(c);
	assert_int_equal(d.min_page_size, VMB_PAGE_4K);
	assert_true(d.capabilities & VMB_CAP_VRAM_CPU_MAP);
	c2 = NULL;
	assert_int_equal(open_flags("soft", VMB_CLIENT_OPEN_DISCRETE, 0, &c2), -EBUSY);
	assert_null(c2);
	uint32_t bo = bo_new(c, 2 * MiB, VMB_PLACE_VRAM);
	assert_int_equal(__bo_mmap(c, bo), 0);
	assert_int_equal(vmb_client_close(c), 0);

	/* the environment, where the options leave it */
	setenv("VMB_SOFT_DISCRETE", "1", 1);
	assert_int_equal(open_flags("soft", 0, 0, &c), 0);
	d = query(c);
	assert_int_equal(d.min_page_size, VMB_PAGE_2M);
	assert_false(d.capabilities & VMB_CAP_VRAM_CPU_MAP);
	assert_int_equal(vmb_client_close(c), 0);
	assert_int_equal(open_flags("soft", 0, VMB_PAGE_4K, &c), -EINVAL);
	setenv("VMB_SOFT_DISCRETE", "2", 1);
	assert_int_equal(open_flags("soft", 0, 0, &c), -EINVAL);
	unsetenv("VMB_SOFT_DISCRETE");
}

static void test_mmap_and_gpu_view(void **state)
{
	(void)state;
	struct vmb_client *c = NULL;
	assert_int_equal(open_flags("soft", VMB_CLIENT_OPEN_DISCRETE, 0, &c), 0);
	uint32_t vm = vm_new(c, 0);
	uint32_t vram = bo_new(c, 2 * MiB, VMB_PLACE_VRAM);
	uint32_t sys = bo_new(c, 2 * MiB, VMB_PLACE_SYSTEM);
	uint32_t both = bo_new(c, 4 * MiB, VMB_PLACE_VRAM | VMB_PLACE_SYSTEM); /* made in VRAM */

	assert_int_equal(__bo_mmap(c, vram), -EOPNOTSUPP);
	assert_int_equal(__bo_mmap(c, both), -EOPNOTSUPP);
	uint64_t *s = bo_cpu(c, sys);

	/* the GPU view reaches VRAM: reads, writes, READONLY refused */
	bind1(c, vm, op_map(vram, 0, 0, 2 * MiB, 0));
	bind1(c, vm, op_map(both, 0, 4 * MiB, 4 * MiB, 0));
	bind1(c, vm, op_map(vram, 0, 16 * MiB, 2 * MiB, VMB_BIND_FLAG_READONLY));
	bind1(c, vm, op_map(sys, 0, 32 * MiB, 2 * MiB, 0));
	gpu_write64(c, vm, 4096, 0x1234);
	assert_int_equal(gpu_read64(c, vm, 16 * MiB + 4096), 0x1234);
	uint64_t v = 1;
	assert_int_equal(__gpu_rw(c, vm, 16 * MiB, &v, 8, true), -EACCES);
	/* a copy across a VRAM leaf and into the next mapping */
	uint8_t buf[8192], back[8192];
	for (unsigned int i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 7 + 1);
	assert_int_equal(__gpu_rw(c, vm, 6 * MiB - 4096, buf, sizeof(buf), true), 0);
	assert_int_equal(__gpu_rw(c, vm, 6 * MiB - 4096, back, sizeof(back), false), 0);
	assert_memory_equal(buf, back, sizeof(buf));
	/* SYSTEM: the CPU and the GPU view see the same bytes */
	s[1] = 0x5151;
	assert_int_equal(gpu_read64(c, vm, 32 * MiB + 8), 0x5151);

	/* moves keep the contents; the CPU map follows where the BO is (or is going) */
	gpu_write64(c, vm, 4 * MiB + 8, 0xb0b0);
	bind1(c, vm, op_prefetch(4 * MiB, 4 * MiB, VMB_REGION_SYSTEM));
	uint64_t *b = bo_cpu(c, both);
	assert_int_equal(b[1], 0xb0b0);
	b[2] = 0xc0c0;
	bind1(c, vm, op_prefetch(4 * MiB, 4 * MiB, VMB_REGION_VRAM));
	struct vmb_bo_query q = {.handle = both};
	assert_int_equal(vmb_bo_query(c, &q), 0);
	assert_int_equal(q.region, VMB_REGION_VRAM);
	assert_int_equal(gpu_read64(c, vm, 4 * MiB + 16), 0xc0c0);
	assert_int_equal(__bo_mmap(c, both), -EOPNOTSUPP); /* a new map: no */
	validate_client(c);
	assert_int_equal(vmb_client_close(c), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_open),
		cmocka_unit_test(test_mmap_and_gpu_view),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
