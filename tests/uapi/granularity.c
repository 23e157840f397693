/* SPDX-License-Identifier: MIT */
/*
 * Description: the device's granularity (its minimum page size). A soft device opened with
 * min_page_size 2 MiB, as a GPU whose pages are 2 MiB at least, reports its page sizes from
 * 2 MiB up; vms, BOs and binds are whole granules (4 KiB-aligned ones: -EINVAL, nothing
 * changed), and an unmap never splits a mapping inside a granule. The default device stays
 * 4 KiB-granular.
 */
#include "lib/harness.h"

#include <errno.h>

static struct vmb_client *open_granule(uint64_t granule)
{
	struct vmb_client_opts o = {.vram_size = 64 * MiB, .system_size = 64 * MiB, .min_page_size = granule};
	struct vmb_client *c = NULL;
	assert_int_equal(vmb_client_open("soft", &o, &c), 0);
	return c;
}

static int vm_create_sizes(struct vmb_client *c, uint64_t va_size, uint64_t page_sizes)
{
	struct vmb_vm_create a = {.va_size = va_size, .page_sizes = page_sizes};
	return vmb_vm_create(c, &a);
}

static int bo_create(struct vmb_client *c, uint64_t size)
{
	struct vmb_bo_create a = {.size = size, .placements = VMB_PLACE_VRAM};
	return vmb_bo_create(c, &a);
}

static void test_query_2m(void **state)
{
	(void)state;
	struct vmb_client *c = open_granule(2 * MiB);
	struct vmb_device_query q = {0};
	assert_int_equal(vmb_device_query(c, &q), 0);
	assert_int_equal(q.page_sizes, VMB_PAGE_2M | VMB_PAGE_1G);
	assert_int_equal(q.min_page_size, VMB_PAGE_2M);
	struct vmb_region_query r = {.region = VMB_REGION_SYSTEM};
	assert_int_equal(vmb_region_query(c, &r), 0);
	assert_int_equal(r.min_alignment, 2 * MiB);
	assert_int_equal(vmb_client_close(c), 0);

	c = open_granule(0); /* default: 4 KiB */
	assert_int_equal(vmb_device_query(c, &q), 0);
	assert_int_equal(q.page_sizes, VMB_PAGE_4K | VMB_PAGE_64K | VMB_PAGE_2M | VMB_PAGE_1G);
	assert_int_equal(q.min_page_size, VMB_PAGE_4K);
	assert_int_equal(vmb_client_close(c), 0);
}

/* vm_create: page sizes relative to the device (its minimum, not 4 KiB, is required), the VA
 * size in granules */
static void test_vm_create(void **state)
{
	(void)state;
	struct vmb_client *c = open_granule(2 * MiB);
	assert_int_equal(vm_create_sizes(c, 0, 0), 0);
	assert_int_equal(vm_create_sizes(c, 0, VMB_PAGE_2M), 0);
	assert_int_equal(vm_create_sizes(c, 0, VMB_PAGE_2M | VMB_PAGE_1G), 0);
	assert_int_equal(vm_create_sizes(c, 0, VMB_PAGE_4K), -EINVAL);              /* not the device's */
	assert_int_equal(vm_create_sizes(c, 0, VMB_PAGE_4K | VMB_PAGE_2M), -EINVAL);
	assert_int_equal(vm_create_sizes(c, 0, VMB_PAGE_1G), -EINVAL);              /* no minimum */
	assert_int_equal(vm_create_sizes(c, 64 * MiB, 0), 0);
	assert_int_equal(vm_create_sizes(c, 64 * MiB + 4 * KiB, 0), -EINVAL);       /* not granules */
	assert_int_equal(vmb_client_close(c), 0);

	c = open_granule(4 * KiB);
	assert_int_equal(vm_create_sizes(c, 64 * MiB + 4 * KiB, VMB_PAGE_4K), 0);
	assert_int_equal(vm_create_sizes(c, 0, VMB_PAGE_2M), -EINVAL); /* the minimum, 4 KiB, missing */
	assert_int_equal(vmb_client_close(c), 0);
}

static void test_bo_size(void **state)
{
	(void)state;
	struct vmb_client *c = open_granule(2 * MiB);
	assert_int_equal(bo_create(c, 4 * KiB), -EINVAL);
	assert_int_equal(bo_create(c, 2 * MiB + 4 * KiB), -EINVAL);
	assert_int_equal(bo_create(c, 2 * MiB), 0);
	assert_int_equal(bo_create(c, 6 * MiB), 0);
	validate_client(c);
	assert_int_equal(vmb_client_close(c), 0);
}

static uint32_t mapping_count(struct vmb_client *c, uint32_t vm, struct vmb_mapping_info *m, uint32_t room)
{
	struct vmb_vm_query_mappings q = {.vm_id = vm, .num_mappings = room, .mappings = (uint64_t)(uintptr_t)m};
	assert_int_equal(vmb_vm_query_mappings(c, &q), 0);
	return q.num_mappings;
}

/* A 2 MiB device rejects every 4 KiB-aligned field of a bind with -EINVAL and changes nothing;
 * 2 MiB-aligned binds work, and their data is there. */
static void test_bind_alignment(void **state)
{
	(void)state;
	struct vmb_client *c = open_granule(2 * MiB);
	uint32_t vm = vm_new(c, 0), bo = bo_new(c, 8 * MiB, VMB_PLACE_VRAM);
	static uint8_t host[4 * MiB] __attribute__((aligned(2 * 1024 * 1024)));
	struct vmb_mapping_info m[4];

	assert_int_equal(__bind1(c, vm, op_map(bo, 0, 4 * KiB, 2 * MiB, 0)), -EINVAL);     /* addr */
	assert_int_equal(__bind1(c, vm, op_map(bo, 0, 2 * MiB, 4 * KiB, 0)), -EINVAL);     /* range */
	assert_int_equal(__bind1(c, vm, op_map(bo, 4 * KiB, 2 * MiB, 2 * MiB, 0)), -EINVAL); /* offset */
	assert_int_equal(__bind1(c, vm, op_map(bo, 0, 2 * MiB, 2 * MiB + 4 * KiB, 0)), -EINVAL);
	assert_int_equal(__bind1(c, vm, op_null(4 * KiB, 2 * MiB)), -EINVAL);
	assert_int_equal(__bind1(c, vm, op_userptr(host + 4 * KiB, 2 * MiB, 2 * MiB, 0)), -EINVAL);
	assert_int_equal(__bind1(c, vm, op_prefetch(4 * KiB, 2 * MiB, VMB_REGION_SYSTEM)), -EINVAL);
	assert_int_equal(mapping_count(c, vm, m, 4), 0);

	assert_int_equal(__bind1(c, vm, op_map(bo, 2 * MiB, 4 * MiB, 4 * MiB, 0)), 0);
	assert_int_equal(__bind1(c, vm, op_userptr(host, 16 * MiB, 4 * MiB, 0)), 0);
	gpu_write64(c, vm, 4 * MiB + 8, 0x1234);
	assert_int_equal(((uint64_t *)bo_cpu(c, bo))[2 * MiB / 8 + 1], 0x1234);
	gpu_write64(c, vm, 18 * MiB, 0x5678);
	assert_int_equal(((uint64_t *)host)[2 * MiB / 8], 0x5678);
	assert_int_equal(mapping_count(c, vm, m, 4), 2);
	validate_client(c);
	assert_int_equal(vmb_client_close(c), 0);
}

/* Splits fall on granules: a partial unmap at 4 KiB is -EINVAL and leaves the mapping whole; at
 * 2 MiB it cuts the mapping into granule-aligned remains. */
static void test_split_on_granules(void **state)
{
	(void)state;
	struct vmb_client *c = open_granule(2 * MiB);
	uint32_t vm = vm_new(c, 0), bo = bo_new(c, 6 * MiB, VMB_PLACE_VRAM);
	struct vmb_mapping_info m[4];

	assert_int_equal(__bind1(c, vm, op_map(bo, 0, 2 * MiB, 6 * MiB, 0)), 0);
	assert_int_equal(__bind1(c, vm, op_unmap(4 * MiB + 4 * KiB, 4 * KiB)), -EINVAL);
	assert_int_equal(__bind1(c, vm, op_unmap(4 * MiB, 4 * KiB)), -EINVAL);
	assert_int_equal(__bind1(c, vm, op_map(bo, 0, 4 * MiB + 4 * KiB, 4 * KiB, 0)), -EINVAL);
	assert_int_equal(mapping_count(c, vm, m, 4), 1);
	assert_int_equal(m[0].addr, 2 * MiB);
	assert_int_equal(m[0].range, 6 * MiB);

	assert_int_equal(__bind1(c, vm, op_unmap(4 * MiB, 2 * MiB)), 0); /* the middle granule */
	assert_int_equal(mapping_count(c, vm, m, 4), 2);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(m[i].addr % (2 * MiB), 0);
		assert_int_equal(m[i].range, 2 * MiB);
		assert_int_equal(m[i].offset % (2 * MiB), 0);
	}
	assert_int_equal(m[1].offset, 4 * MiB);
	validate_client(c);
	assert_int_equal(vmb_client_close(c), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_query_2m),
		cmocka_unit_test(test_vm_create),
		cmocka_unit_test(test_bo_size),
		cmocka_unit_test(test_bind_alignment),
		cmocka_unit_test(test_split_on_granules),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
