/* SPDX-License-Identifier: MIT */
/*
 * Description: the device's granularity (its minimum page size). A soft device opened with
 * min_page_size 2 MiB, as a GPU whose pages are 2 MiB at least, reports its page sizes from
 * 2 MiB up; vms, BOs and binds are whole granules (4 KiB-aligned ones: -EINVAL, nothing
 * changed), and an unmap never splits a mapping inside a granule. The default device stays
 * 4 KiB-granular. A BO's chunks (vmb_bo_create's chunk_size, the rule a CUDA device needs: a
 * chunk is one allocation, mapped and unmapped whole) are enforced on the soft device too: a
 * MAP of part of a chunk, or a cut inside one, is -EINVAL at prepare and changes nothing. A vm's
 * va_size and gpu_base come back from vmb_vm_create.
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

static int bo_create_chunk(struct vmb_client *c, uint64_t size, uint64_t chunk, uint32_t *handle)
{
	struct vmb_bo_create a = {.size = size, .placements = VMB_PLACE_VRAM | VMB_PLACE_SYSTEM, .chunk_size = chunk};
	int err = vmb_bo_create(c, &a);
	if (handle)
		*handle = a.handle;
	return err;
}

static uint64_t bo_chunk(struct vmb_client *c, uint32_t bo)
{
	struct vmb_bo_query q = {.handle = bo};
	assert_int_equal(vmb_bo_query(c, &q), 0);
	return q.chunk_size;
}

static uint64_t region_free_bytes(struct vmb_client *c, uint32_t region)
{
	struct vmb_region_query r = {.region = region};
	assert_int_equal(vmb_region_query(c, &r), 0);
	return r.free;
}

/* chunk_size: 0 is the device's granularity on the soft device; else a power of two of whole
 * granules dividing the size (-EINVAL otherwise, nothing allocated); vmb_bo_query reports it. */
static void test_chunk_size(void **state)
{
	(void)state;
	struct vmb_client *c = open_granule(0);
	uint32_t bo;
	struct vmb_device_query d = device_query(c);
	assert_true(d.capabilities & VMB_CAP_BO_CHUNK);
	assert_true(d.abi_version >= ((1u << 16) | 2u));

	static const uint64_t bad[] = {3 * 4 * KiB, 2 * KiB, 16 * MiB, 1ull << 63, 4 * MiB + 4 * KiB, 1};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(bo_create_chunk(c, 8 * MiB, bad[i], NULL), -EINVAL);
		assert_int_equal(region_free_bytes(c, VMB_REGION_VRAM), 64 * MiB);
	}
	assert_int_equal(bo_create_chunk(c, 3 * MiB, 2 * MiB, NULL), -EINVAL); /* not whole chunks */
	assert_int_equal(bo_create_chunk(c, 8 * MiB, 0, &bo), 0);
	assert_int_equal(bo_chunk(c, bo), 4 * KiB);
	assert_int_equal(bo_create_chunk(c, 8 * MiB, 2 * MiB, &bo), 0);
	assert_int_equal(bo_chunk(c, bo), 2 * MiB);
	assert_int_equal(bo_create_chunk(c, 8 * MiB, 8 * MiB, &bo), 0); /* one chunk */
	assert_int_equal(bo_chunk(c, bo), 8 * MiB);
	assert_int_equal(bo_create_chunk(c, 12 * KiB, 4 * KiB, &bo), 0);
	assert_int_equal(bo_chunk(c, bo), 4 * KiB);
	assert_int_equal(vmb_client_close(c), 0);

	c = open_granule(2 * MiB); /* chunks of whole granules */
	assert_int_equal(bo_create_chunk(c, 8 * MiB, 4 * KiB, NULL), -EINVAL);
	assert_int_equal(bo_create_chunk(c, 8 * MiB, 1 * MiB, NULL), -EINVAL);
	assert_int_equal(bo_create_chunk(c, 8 * MiB, 0, &bo), 0);
	assert_int_equal(bo_chunk(c, bo), 2 * MiB);
	assert_int_equal(bo_create_chunk(c, 8 * MiB, 4 * MiB, &bo), 0);
	assert_int_equal(bo_chunk(c, bo), 4 * MiB);
	validate_client(c);
	assert_int_equal(vmb_client_close(c), 0);
}

/* The same mappings, in the same order (the state a refused call must leave). */
static void expect_mappings(struct vmb_client *c, uint32_t vm, const struct vmb_mapping_info *want, uint32_t n)
{
	struct vmb_mapping_info m[8];
	assert_int_equal(mapping_count(c, vm, m, 8), n);
	for (uint32_t i = 0; i < n; i++) {
		assert_int_equal(m[i].addr, want[i].addr);
		assert_int_equal(m[i].range, want[i].range);
		assert_int_equal(m[i].offset, want[i].offset);
	}
}

/* Binds cut a chunked BO only at its chunks' boundaries (BO offsets, whatever the VA): a MAP of
 * part of a chunk, an UNMAP or a MAP over part of a mapping that would leave a piece cut inside
 * a chunk are -EINVAL, nothing changed (an earlier op of the call undone, an async call not
 * queued); cuts at chunk boundaries and removals of whole mappings work. */
static void test_chunk_binds(void **state)
{
	(void)state;
	struct vmb_client *c = open_granule(0);
	uint32_t vm = vm_new(c, 0), bo, other = bo_new(c, 64 * KiB, VMB_PLACE_VRAM);
	const uint64_t va = 4 * KiB; /* not chunk-aligned: chunks are about the BO's offsets */
	assert_int_equal(bo_create_chunk(c, 8 * MiB, 2 * MiB, &bo), 0);

	assert_int_equal(__bind1(c, vm, op_map(bo, 4 * KiB, va, 2 * MiB, 0)), -EINVAL);  /* offset */
	assert_int_equal(__bind1(c, vm, op_map(bo, 0, va, 3 * MiB, 0)), -EINVAL);        /* range */
	assert_int_equal(__bind1(c, vm, op_map(bo, 1 * MiB, va, 2 * MiB, 0)), -EINVAL);
	expect_mappings(c, vm, NULL, 0);
	bind1(c, vm, op_map(bo, 0, va, 8 * MiB, 0));
	const struct vmb_mapping_info whole = {.addr = va, .range = 8 * MiB, .offset = 0};

	assert_int_equal(__bind1(c, vm, op_unmap(va + 1 * MiB, 2 * MiB)), -EINVAL); /* a hole inside chunks */
	assert_int_equal(__bind1(c, vm, op_unmap(va, 1 * MiB)), -EINVAL);           /* a trim at 1 MiB */
	assert_int_equal(__bind1(c, vm, op_unmap(va + 7 * MiB, 2 * MiB)), -EINVAL); /* a trim at 7 MiB */
	assert_int_equal(__bind1(c, vm, op_unmap(va + 2 * MiB + 4 * KiB, 4 * KiB)), -EINVAL);
	assert_int_equal(__bind1(c, vm, op_null(va + 2 * MiB + 4 * KiB, 4 * KiB)), -EINVAL); /* MAP over */
	assert_int_equal(__bind1(c, vm, op_map(other, 0, va + 1 * MiB, 64 * KiB, 0)), -EINVAL);
	expect_mappings(c, vm, &whole, 1);

	/* all or nothing: op 0 (a good MAP) is undone when op 1 cuts inside a chunk */
	struct vmb_bind_op ops[2] = {op_map(other, 0, 64 * MiB, 64 * KiB, 0), op_unmap(va + 3 * MiB, 2 * MiB)};
	assert_int_equal(__bind_ops(c, vm, ops, 2), -EINVAL);
	expect_mappings(c, vm, &whole, 1);
	/* asynchronous: refused in the call, nothing queued (its out-syncobj got no fence) */
	uint32_t so = syncobj_new(c, 0);
	struct vmb_sync out = sync_out(so);
	assert_int_equal(__bind_async(c, vm, 0, &ops[1], 1, &out, 1), -EINVAL);
	assert_int_equal(__syncobj_wait1(c, so, 0, 0, 0), -EINVAL);
	expect_mappings(c, vm, &whole, 1);

	/* a cut at chunk boundaries: the middle two chunks go, the outer two stay */
	gpu_write64(c, vm, va + 6 * MiB + 8, 0xc0ffee);
	bind1(c, vm, op_unmap(va + 2 * MiB, 4 * MiB));
	const struct vmb_mapping_info pieces[2] = {{.addr = va, .range = 2 * MiB, .offset = 0},
						   {.addr = va + 6 * MiB, .range = 2 * MiB, .offset = 6 * MiB}};
	expect_mappings(c, vm, pieces, 2);
	assert_int_equal(gpu_read64(c, vm, va + 6 * MiB + 8), 0xc0ffee);
	assert_int_equal(bo_read64(c, bo, 6 * MiB + 8), 0xc0ffee);
	/* a MAP over a whole piece replaces it: no cut */
	bind1(c, vm, op_map(bo, 4 * MiB, va + 6 * MiB, 2 * MiB, 0));
	/* removals of whole mappings are never refused, whatever the range's ends */
	bind1(c, vm, op_unmap(0, 16 * MiB));
	expect_mappings(c, vm, NULL, 0);
	bind1(c, vm, op_map(bo, 2 * MiB, 32 * MiB, 4 * MiB, 0));
	bind1(c, vm, op_map(bo, 2 * MiB, 48 * MiB, 2 * MiB, 0));
	bind1(c, vm, op_unmap_all(bo));
	expect_mappings(c, vm, NULL, 0);
	validate_client(c);
	assert_int_equal(vmb_client_close(c), 0);
}

/* A BO keeps its chunk size across a move, and the rule with it. */
static void test_chunk_prefetch(void **state)
{
	(void)state;
	struct vmb_client *c = open_granule(0);
	uint32_t vm = vm_new(c, 0), bo;
	assert_int_equal(bo_create_chunk(c, 4 * MiB, 1 * MiB, &bo), 0);
	bind1(c, vm, op_map(bo, 0, 0, 4 * MiB, 0));
	bind1(c, vm, op_prefetch(0, 4 * MiB, VMB_REGION_SYSTEM));
	struct vmb_bo_query q = {.handle = bo};
	assert_int_equal(vmb_bo_query(c, &q), 0);
	assert_int_equal(q.region, VMB_REGION_SYSTEM);
	assert_int_equal(q.chunk_size, 1 * MiB);
	assert_int_equal(__bind1(c, vm, op_unmap(512 * KiB, 1 * MiB)), -EINVAL);
	bind1(c, vm, op_unmap(1 * MiB, 1 * MiB));
	validate_client(c);
	assert_int_equal(vmb_client_close(c), 0);
}

/* Restart mode: a cut inside a chunk at op 1 leaves op 0 done and a restart owed, which fails
 * the same way (the shape stays wrong); giving it up frees the vm. */
static void test_chunk_restart_mode(void **state)
{
	(void)state;
	struct vmb_client *c = open_granule(0);
	uint32_t vm = vm_new(c, VMB_VM_CREATE_RESTART_MODE), bo, other = bo_new(c, 64 * KiB, VMB_PLACE_VRAM);
	assert_int_equal(bo_create_chunk(c, 4 * MiB, 2 * MiB, &bo), 0);
	bind1(c, vm, op_map(bo, 0, 0, 4 * MiB, 0));
	struct vmb_bind_op ops[2] = {op_map(other, 0, 64 * MiB, 64 * KiB, 0), op_unmap(1 * MiB, 2 * MiB)};
	struct vmb_vm_bind b = {.vm_id = vm, .num_binds = 2, .binds = (uint64_t)(uintptr_t)ops};
	assert_int_equal(vmb_vm_bind(c, &b), -EINVAL);
	assert_int_equal(VMB_VM_BIND_RESTART_DONE(b.restart), 1);
	const struct vmb_mapping_info after[2] = {{.addr = 0, .range = 4 * MiB, .offset = 0},
						  {.addr = 64 * MiB, .range = 64 * KiB, .offset = 0}};
	expect_mappings(c, vm, after, 2);
	assert_int_equal(vmb_vm_bind(c, &b), -EINVAL); /* the restart: op 1 again */
	assert_int_not_equal(b.restart, 0);
	struct vmb_vm_bind give_up = {.vm_id = vm, .restart = b.restart};
	assert_int_equal(vmb_vm_bind(c, &give_up), 0);
	bind1(c, vm, op_unmap(2 * MiB, 2 * MiB));
	validate_client(c);
	assert_int_equal(vmb_client_close(c), 0);
}

/* The discrete shape (2 MiB granules) with 4 MiB chunks: a cut on a granule inside a chunk is
 * still refused. */
static void test_chunk_discrete(void **state)
{
	(void)state;
	struct vmb_client *c = open_granule(2 * MiB);
	uint32_t vm = vm_new(c, 0), bo;
	assert_int_equal(bo_create_chunk(c, 8 * MiB, 4 * MiB, &bo), 0);
	assert_int_equal(__bind1(c, vm, op_map(bo, 2 * MiB, 2 * MiB, 4 * MiB, 0)), -EINVAL);
	bind1(c, vm, op_map(bo, 0, 2 * MiB, 8 * MiB, 0));
	assert_int_equal(__bind1(c, vm, op_unmap(2 * MiB, 2 * MiB)), -EINVAL);
	bind1(c, vm, op_unmap(2 * MiB, 4 * MiB));
	const struct vmb_mapping_info left = {.addr = 6 * MiB, .range = 4 * MiB, .offset = 4 * MiB};
	expect_mappings(c, vm, &left, 1);
	validate_client(c);
	assert_int_equal(vmb_client_close(c), 0);
}

/* vmb_vm_create writes back the vm's size (0 in: the device's default, all 2^48 of the soft
 * device's VA) and its gpu_base (0 on the soft device; the value in is not read). */
static void test_vm_create_out(void **state)
{
	(void)state;
	struct vmb_client *c = open_granule(0);
	struct vmb_vm_create a = {.gpu_base = 0xdead0000};
	assert_int_equal(vmb_vm_create(c, &a), 0);
	assert_int_equal(a.va_size, 1ull << 48);
	assert_int_equal(a.gpu_base, 0);
	a = (struct vmb_vm_create){.va_size = 1 * GiB, .gpu_base = 1};
	assert_int_equal(vmb_vm_create(c, &a), 0);
	assert_int_equal(a.va_size, 1 * GiB);
	assert_int_equal(a.gpu_base, 0);
	/* the size is the vm's: past it nothing maps */
	uint32_t bo = bo_new(c, 64 * KiB, VMB_PLACE_VRAM);
	assert_int_equal(__bind1(c, a.vm_id, op_map(bo, 0, 1 * GiB, 64 * KiB, 0)), -EINVAL);
	assert_int_equal(__bind1(c, a.vm_id, op_map(bo, 0, 1 * GiB - 64 * KiB, 64 * KiB, 0)), 0);
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
		cmocka_unit_test(test_chunk_size),
		cmocka_unit_test(test_chunk_binds),
		cmocka_unit_test(test_chunk_prefetch),
		cmocka_unit_test(test_chunk_restart_mode),
		cmocka_unit_test(test_chunk_discrete),
		cmocka_unit_test(test_vm_create_out),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
