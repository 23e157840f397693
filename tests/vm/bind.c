/* SPDX-License-Identifier: MIT */
/*
 * Description: synchronous VM_BIND semantics through the public API: every op (MAP, NULL,
 * READONLY, UNMAP, UNMAP_ALL, PREFETCH, MAP_USERPTR), page-size choice and splits, the GPU
 * view, scratch vms, all-or-nothing multi-op calls under injected failures, and unmaps that
 * cannot fail for lack of page-table memory.
 */
#include "lib/harness.h"

#include <errno.h>
#include <pthread.h>
#include <sys/mman.h>

unsigned long vmb_alloc_fail_after(unsigned long nth); /* src/core/alloc.h: test hook */

static struct vmb_client *c;

static int setup(void **state)
{
	(void)state;
	c = open_soft(256 * MiB, 256 * MiB);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	validate_client(c);
	assert_int_equal(vmb_client_close(c), 0);
	return 0;
}

static uint64_t mapping_sizes(uint32_t vm, uint64_t addr)
{
	struct vmb_mapping_info m[64];
	struct vmb_vm_query_mappings q = {.vm_id = vm, .num_mappings = 64, .mappings = (uint64_t)(uintptr_t)m};
	assert_int_equal(vmb_vm_query_mappings(c, &q), 0);
	for (uint32_t i = 0; i < q.num_mappings && i < 64; i++)
		if (addr >= m[i].addr && addr - m[i].addr < m[i].range)
			return m[i].page_sizes;
	fail_msg("no mapping at 0x%llx", (unsigned long long)addr);
	return 0;
}

static void test_map_read_write(void **state)
{
	(void)state;
	uint32_t vm = vm_new(c, 0);
	uint32_t bo = bo_new(c, 8 * MiB, VMB_PLACE_VRAM);
	uint64_t *cpu = bo_cpu(c, bo);

	for (uint64_t i = 0; i < 8 * MiB / 8; i += 512)
		cpu[i] = i * 3 + 1;
	bind1(c, vm, op_map(bo, 0, 1 * GiB, 8 * MiB, 0));
	validate_client(c);
	/* a fresh VRAM BO is one 8 MiB buddy block: 2 MiB pages */
	assert_int_equal(mapping_sizes(vm, 1 * GiB), VMB_PAGE_2M);
	for (uint64_t i = 0; i < 8 * MiB / 8; i += 512)
		assert_int_equal(gpu_read64(c, vm, 1 * GiB + i * 8), i * 3 + 1);
	gpu_write64(c, vm, 1 * GiB + 4 * MiB + 8, 0xabcdef);
	assert_int_equal(cpu[4 * MiB / 8 + 1], 0xabcdef);
	/* unaligned read across a 2 MiB leaf boundary */
	uint8_t buf[64];
	memset(cpu + 2 * MiB / 8 - 4, 0x5a, 64);
	assert_int_equal(__gpu_rw(c, vm, 1 * GiB + 2 * MiB - 32, buf, 64, false), 0);
	for (int i = 0; i < 64; i++)
		assert_int_equal(buf[i], 0x5a);
	/* outside the mapping */
	assert_int_equal(__gpu_rw(c, vm, 1 * GiB - 8, buf, 8, false), -EFAULT);
	assert_int_equal(__gpu_rw(c, vm, 1 * GiB + 8 * MiB - 4, buf, 8, false), -EFAULT);
	/* a mapping at an offset that is only 64 KiB aligned uses 64 KiB pages */
	bind1(c, vm, op_map(bo, 64 * KiB, 2 * GiB, 1 * MiB, 0));
	assert_int_equal(mapping_sizes(vm, 2 * GiB), VMB_PAGE_64K);
	cpu[(64 * KiB + 512 * KiB) / 8] = 0x6464;
	assert_int_equal(gpu_read64(c, vm, 2 * GiB + 512 * KiB), 0x6464);
	/* 4 KiB aligned only: 4 KiB pages */
	bind1(c, vm, op_map(bo, 4 * KiB, 3 * GiB, 64 * KiB, 0));
	assert_int_equal(mapping_sizes(vm, 3 * GiB), VMB_PAGE_4K);
	validate_client(c);
	struct vmb_vm_destroy d = {.vm_id = vm};
	assert_int_equal(vmb_vm_destroy(c, &d), 0);
	assert_int_equal(vmb_vm_destroy(c, &d), -ENOENT);
}

static void test_split_huge_page(void **state)
{
	(void)state;
	uint32_t vm = vm_new(c, 0);
	uint32_t bo = bo_new(c, 4 * MiB, VMB_PLACE_VRAM);
	uint64_t *cpu = bo_cpu(c, bo);
	for (uint64_t i = 0; i < 4 * MiB / 8; i++)
		cpu[i] = i;
	bind1(c, vm, op_map(bo, 0, 0, 4 * MiB, 0));
	struct vmb_vm_stats before = vm_stats(c, vm);
	assert_int_equal(before.leaves[2], 2);
	assert_int_equal(before.pt_reserve_bytes, 2 * 4096); /* one split table per 2 MiB leaf */
	/* punch 4 KiB out of the middle of the first 2 MiB page */
	bind1(c, vm, op_unmap(1 * MiB, 4 * KiB));
	struct vmb_vm_stats after = vm_stats(c, vm);
	assert_int_equal(after.leaves[2], 1);
	assert_int_equal(after.pt_reserve_bytes, 1 * 4096);
	assert_int_equal(after.pt_bytes, before.pt_bytes + 4096); /* the split table, from the reserve */
	assert_int_equal(after.num_mappings, 2);
	uint64_t v;
	assert_int_equal(__gpu_rw(c, vm, 1 * MiB, &v, 8, false), -EFAULT);
	assert_int_equal(gpu_read64(c, vm, 1 * MiB - 8), (1 * MiB - 8) / 8);
	assert_int_equal(gpu_read64(c, vm, 1 * MiB + 4096), (1 * MiB + 4096) / 8);
	/* below the hole: 64 KiB pages; above: the rest of its 64 KiB group in 4 KiB pages */
	assert_int_equal(mapping_sizes(vm, 0), VMB_PAGE_64K);
	assert_int_equal(mapping_sizes(vm, 1 * MiB + 4 * KiB), VMB_PAGE_4K | VMB_PAGE_64K | VMB_PAGE_2M);
	validate_client(c);
	/* map it back: the VA tree does not merge, the page tables hold 4K + 64K again */
	bind1(c, vm, op_map(bo, 1 * MiB, 1 * MiB, 4 * KiB, 0));
	assert_int_equal(gpu_read64(c, vm, 1 * MiB), 1 * MiB / 8);
	validate_client(c);
	/* unmap everything: page-table memory returns to the root alone */
	bind1(c, vm, op_unmap(0, 4 * MiB));
	struct vmb_vm_stats empty = vm_stats(c, vm);
	assert_int_equal(empty.num_mappings, 0);
	assert_int_equal(empty.pt_bytes, 4096);
	assert_int_equal(empty.pt_reserve_bytes, 0);
	validate_client(c);
}

static void test_null_readonly_scratch(void **state)
{
	(void)state;
	uint32_t vm = vm_new(c, 0), svm = vm_new(c, VMB_VM_CREATE_SCRATCH_PAGE);
	uint32_t bo = bo_new(c, 64 * KiB, VMB_PLACE_SYSTEM);
	uint64_t v = 7, *cpu = bo_cpu(c, bo);

	bind1(c, vm, op_null(1 * GiB, 1 * GiB)); /* one 1 GiB NULL leaf */
	assert_int_equal(mapping_sizes(vm, 1 * GiB), VMB_PAGE_1G);
	assert_int_equal(__gpu_rw(c, vm, 1 * GiB + 12345, &v, 8, true), 0); /* dropped */
	assert_int_equal(gpu_read64(c, vm, 1 * GiB + 12345), 0);
	bind1(c, vm, op_map(bo, 0, 4 * GiB, 64 * KiB, VMB_BIND_FLAG_READONLY));
	cpu[1] = 99;
	assert_int_equal(gpu_read64(c, vm, 4 * GiB + 8), 99);
	assert_int_equal(__gpu_rw(c, vm, 4 * GiB + 8, &v, 8, true), -EACCES);
	assert_int_equal(cpu[1], 99);
	/* unmapped: fault in a normal vm, zero / dropped in a scratch vm */
	assert_int_equal(__gpu_rw(c, vm, 8 * GiB, &v, 8, false), -EFAULT);
	assert_int_equal(__gpu_rw(c, vm, 8 * GiB, &v, 8, true), -EFAULT);
	v = 5;
	assert_int_equal(__gpu_rw(c, svm, 8 * GiB, &v, 8, false), 0);
	assert_int_equal(v, 0);
	assert_int_equal(__gpu_rw(c, svm, 8 * GiB, &v, 8, true), 0);
	assert_int_equal(__gpu_rw(c, svm, (1ull << 48) - 4, &v, 4, false), 0);
	/* scratch covers holes but READONLY still holds */
	bind1(c, svm, op_map(bo, 0, 0, 64 * KiB, VMB_BIND_FLAG_READONLY));
	assert_int_equal(__gpu_rw(c, svm, 8, &v, 8, true), -EACCES);
	validate_client(c);
}

/* The GPU view (the device's vm_access) ends at the vm's va_size: past it a normal vm faults, a
 * scratch vm reads 0, and a read that crosses the end faults as a whole. */
static void test_gpu_view_ends_at_va_size(void **state)
{
	(void)state;
	struct vmb_vm_create a = {.va_size = 1 * GiB}, s = {.va_size = 1 * GiB, .flags = VMB_VM_CREATE_SCRATCH_PAGE};
	assert_int_equal(vmb_vm_create(c, &a), 0);
	assert_int_equal(vmb_vm_create(c, &s), 0);
	uint32_t bo = bo_new(c, 64 * KiB, VMB_PLACE_SYSTEM);
	uint64_t v[2] = {5, 5}, *cpu = bo_cpu(c, bo);
	bind1(c, a.vm_id, op_map(bo, 0, 1 * GiB - 64 * KiB, 64 * KiB, 0));
	cpu[8191] = 42;
	assert_int_equal(gpu_read64(c, a.vm_id, 1 * GiB - 8), 42);
	assert_int_equal(__gpu_rw(c, a.vm_id, 1 * GiB - 8, v, 16, false), -EFAULT);
	assert_int_equal(__gpu_rw(c, a.vm_id, 1 * GiB, v, 8, true), -EFAULT);
	assert_int_equal(__gpu_rw(c, s.vm_id, 1 * GiB, v, 16, false), 0);
	assert_int_equal(v[0], 0);
	assert_int_equal(v[1], 0);
	assert_int_equal(__gpu_rw(c, s.vm_id, 1 * GiB, v, 8, true), 0); /* dropped */
	validate_client(c);
}

static void test_unmap_all_and_handles(void **state)
{
	(void)state;
	uint32_t vm = vm_new(c, 0);
	uint32_t a = bo_new(c, 2 * MiB, VMB_PLACE_VRAM), b = bo_new(c, 2 * MiB, VMB_PLACE_VRAM);
	struct vmb_bind_op ops[] = {
		op_map(a, 0, 0, 2 * MiB, 0), op_map(b, 0, 2 * MiB, 2 * MiB, 0),
		op_map(a, 1 * MiB, 8 * MiB, 1 * MiB, 0), op_map(a, 0, 16 * MiB, 64 * KiB, VMB_BIND_FLAG_READONLY),
	};
	assert_int_equal(__bind_ops(c, vm, ops, 4), 0);
	struct vmb_bo_query q = {.handle = a};
	assert_int_equal(vmb_bo_query(c, &q), 0);
	assert_int_equal(q.vm_mappings, 3);
	bind1(c, vm, op_unmap_all(a));
	assert_int_equal(vmb_bo_query(c, &q), 0);
	assert_int_equal(q.vm_mappings, 0);
	assert_int_equal(vm_stats(c, vm).num_mappings, 1);
	assert_int_equal(mapping_sizes(vm, 2 * MiB), VMB_PAGE_2M);
	bind1(c, vm, op_unmap_all(a)); /* nothing mapped: fine */
	/* destroying a mapped BO's handle keeps the memory alive for the mapping */
	gpu_write64(c, vm, 2 * MiB, 42);
	struct vmb_bo_destroy d = {.handle = b};
	assert_int_equal(vmb_bo_destroy(c, &d), 0);
	assert_int_equal(vmb_bo_destroy(c, &d), -ENOENT);
	assert_int_equal(gpu_read64(c, vm, 2 * MiB), 42);
	assert_int_equal(__bind1(c, vm, op_unmap_all(b)), -ENOENT);
	validate_client(c);
	struct vmb_region_query rq = {.region = VMB_REGION_VRAM};
	assert_int_equal(vmb_region_query(c, &rq), 0);
	uint64_t vram_free = rq.free;
	bind1(c, vm, op_unmap(0, 1ull << 47));
	/* the last mapping of the destroyed BO is gone: its 2 MiB go back to VRAM */
	assert_int_equal(vmb_region_query(c, &rq), 0);
	assert_int_equal(rq.free, vram_free + 2 * MiB);
	validate_client(c);
}

static void test_prefetch(void **state)
{
	(void)state;
	uint32_t vm = vm_new(c, 0), vm2 = vm_new(c, 0);
	uint32_t bo = bo_new(c, 4 * MiB, VMB_PLACE_VRAM | VMB_PLACE_SYSTEM);
	uint32_t vonly = bo_new(c, 64 * KiB, VMB_PLACE_VRAM);
	uint64_t *cpu = bo_cpu(c, bo);
	struct vmb_region_query rs = {.region = VMB_REGION_SYSTEM}, rv = {.region = VMB_REGION_VRAM};

	for (uint64_t i = 0; i < 4 * MiB / 8; i++)
		cpu[i] = ~i;
	bind1(c, vm, op_map(bo, 0, 0, 4 * MiB, 0));
	bind1(c, vm2, op_map(bo, 2 * MiB, 1 * GiB, 2 * MiB, VMB_BIND_FLAG_READONLY));
	bind1(c, vm, op_map(vonly, 0, 8 * MiB, 64 * KiB, 0));
	assert_int_equal(vmb_region_query(c, &rs), 0);
	uint64_t sys_free = rs.free;
	/* a VRAM-only BO in the range: the whole op fails, nothing moves */
	assert_int_equal(__bind1(c, vm, op_prefetch(0, 16 * MiB, VMB_REGION_SYSTEM)), -EINVAL);
	struct vmb_bo_query q = {.handle = bo};
	assert_int_equal(vmb_bo_query(c, &q), 0);
	assert_int_equal(q.region, VMB_REGION_VRAM);
	assert_int_equal(vmb_region_query(c, &rs), 0);
	assert_int_equal(rs.free, sys_free);
	validate_client(c);
	/* move it to SYSTEM: contents, CPU pointer and both vms follow */
	bind1(c, vm, op_prefetch(0, 4 * MiB, VMB_REGION_SYSTEM));
	assert_int_equal(vmb_bo_query(c, &q), 0);
	assert_int_equal(q.region, VMB_REGION_SYSTEM);
	assert_int_equal(vmb_region_query(c, &rs), 0);
	assert_int_equal(rs.free, sys_free - 4 * MiB);
	for (uint64_t i = 0; i < 4 * MiB / 8; i += 1000)
		assert_int_equal(gpu_read64(c, vm, i * 8), ~i);
	assert_int_equal(gpu_read64(c, vm2, 1 * GiB + 8), ~(2 * MiB / 8 + 1));
	gpu_write64(c, vm, 3 * MiB, 777);
	assert_int_equal(cpu[3 * MiB / 8], 777); /* same CPU pointer, new pages */
	validate_client(c);
	/* and back to VRAM, with a map of the moved BO in the same call */
	struct vmb_bind_op ops[] = {op_prefetch(0, 4 * MiB, VMB_REGION_VRAM), op_map(bo, 0, 2 * GiB, 2 * MiB, 0)};
	assert_int_equal(__bind_ops(c, vm, ops, 2), 0);
	assert_int_equal(vmb_bo_query(c, &q), 0);
	assert_int_equal(q.region, VMB_REGION_VRAM);
	assert_int_equal(gpu_read64(c, vm, 2 * GiB + 3 * MiB - 2 * MiB - 1 * MiB), ~0ull);
	assert_int_equal(gpu_read64(c, vm2, 1 * GiB + 1 * MiB), 777);
	validate_client(c);
	/* a region too small to take the BO: -ENOSPC, nothing changed */
	assert_int_equal(vmb_region_query(c, &rv), 0);
	assert_int_equal(vmb_region_query(c, &rs), 0);
	uint32_t filler = bo_new(c, rs.free - 1 * MiB, VMB_PLACE_SYSTEM);
	assert_int_equal(__bind1(c, vm, op_prefetch(0, 4 * MiB, VMB_REGION_SYSTEM)), -ENOSPC);
	assert_int_equal(vmb_bo_query(c, &q), 0);
	assert_int_equal(q.region, VMB_REGION_VRAM);
	assert_int_equal(gpu_read64(c, vm, 3 * MiB), 777);
	validate_client(c);
	struct vmb_bo_destroy d = {.handle = filler};
	assert_int_equal(vmb_bo_destroy(c, &d), 0);
}

/*
 * CPU writes while the BO moves: a thread writes a counter pattern through the CPU pointer
 * (every word gets 1, 2, 3, ... in turn; before each write it reads the word back, which must
 * hold the value it wrote last) while this thread PREFETCHes the BO between VRAM and SYSTEM.
 * No write may be lost: neither seen lost by the writer, nor missing at the end in the CPU view
 * or in the GPU view.
 */
#define RACE_WORDS 1024u
#define RACE_STRIDE 8u /* one word every 64 bytes: the 1024 words cover all 16 pages */
#define RACE_MIN_MOVES 200u

struct race {
	uint64_t *cpu;
	unsigned int moves;     /* atomic: completed PREFETCHes */
	unsigned int done;      /* atomic: the writer finished */
	uint64_t last;          /* the writer's last value, read after the join */
	uint64_t lost;          /* words found holding an older value than written, after the join */
};

static void *race_writer(void *arg)
{
	struct race *r = arg;
	uint64_t v = 0;

	/* each round writes every word once; go on until the moves have overlapped enough rounds */
	while (v < 64 || __atomic_load_n(&r->moves, __ATOMIC_RELAXED) < RACE_MIN_MOVES) {
		v++;
		for (unsigned int i = 0; i < RACE_WORDS; i++) {
			uint64_t *w = &r->cpu[i * RACE_STRIDE];
			if (__atomic_load_n(w, __ATOMIC_RELAXED) != v - 1)
				r->lost++;
			__atomic_store_n(w, v, __ATOMIC_RELAXED);
		}
	}
	r->last = v;
	__atomic_store_n(&r->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

static void test_prefetch_cpu_writes(void **state)
{
	(void)state;
	uint32_t vm = vm_new(c, 0);
	uint32_t bo = bo_new(c, 64 * KiB, VMB_PLACE_VRAM | VMB_PLACE_SYSTEM);
	struct race r = {.cpu = bo_cpu(c, bo)};
	pthread_t t;

	bind1(c, vm, op_map(bo, 0, 4 * GiB, 64 * KiB, 0));
	assert_int_equal(pthread_create(&t, NULL, race_writer, &r), 0);
	unsigned int moves = 0;
	while (!__atomic_load_n(&r.done, __ATOMIC_ACQUIRE)) {
		uint32_t to = moves % 2 ? VMB_REGION_VRAM : VMB_REGION_SYSTEM;
		bind1(c, vm, op_prefetch(4 * GiB, 64 * KiB, to));
		__atomic_store_n(&r.moves, ++moves, __ATOMIC_RELAXED);
	}
	assert_int_equal(pthread_join(t, NULL), 0);

	uint64_t stale_cpu = 0, stale_gpu = 0;
	static uint64_t gpu[64 * KiB / 8];
	assert_int_equal(__gpu_rw(c, vm, 4 * GiB, gpu, 64 * KiB, false), 0);
	for (unsigned int i = 0; i < RACE_WORDS; i++) {
		stale_cpu += r.cpu[i * RACE_STRIDE] != r.last;
		stale_gpu += gpu[i * RACE_STRIDE] != r.last;
	}
	print_message("prefetch vs CPU writes: %u moves, %llu rounds; %llu writes seen lost, %llu of %u words "
		      "stale in the CPU view, %llu in the GPU view\n", moves, (unsigned long long)r.last,
		      (unsigned long long)r.lost, (unsigned long long)stale_cpu, RACE_WORDS,
		      (unsigned long long)stale_gpu);
	assert_int_equal(r.lost, 0);
	assert_int_equal(stale_cpu, 0);
	assert_int_equal(stale_gpu, 0);
	validate_client(c);
	struct vmb_vm_destroy d = {.vm_id = vm};
	assert_int_equal(vmb_vm_destroy(c, &d), 0);
	struct vmb_bo_destroy bd = {.handle = bo};
	assert_int_equal(vmb_bo_destroy(c, &bd), 0);
}

/*
 * A BO moved into a fragmented SYSTEM region lands in several runs of pages, each mapped on its
 * own: contents, the CPU pointer and the GPU view stay one memory, both ways.
 */
static void test_prefetch_fragmented(void **state)
{
	(void)state;
	struct vmb_client *s = open_soft_at("soft:1", 2 * MiB, 64 * KiB);
	uint32_t fill[16], vm = vm_new(s, 0);
	for (unsigned int i = 0; i < 16; i++)
		fill[i] = bo_new(s, 4 * KiB, VMB_PLACE_SYSTEM);
	for (unsigned int i = 1; i < 16; i += 4) { /* holes at pages 1, 5, 9, 13 */
		struct vmb_bo_destroy d = {.handle = fill[i]};
		assert_int_equal(vmb_bo_destroy(s, &d), 0);
	}
	uint32_t bo = bo_new(s, 16 * KiB, VMB_PLACE_VRAM | VMB_PLACE_SYSTEM);
	uint64_t *cpu = bo_cpu(s, bo);
	for (unsigned int i = 0; i < 16 * KiB / 8; i++)
		cpu[i] = 0x5000 + i;
	bind1(s, vm, op_map(bo, 0, 1 * GiB, 16 * KiB, 0));
	for (unsigned int round = 0; round < 4; round++) {
		uint32_t to = round % 2 ? VMB_REGION_VRAM : VMB_REGION_SYSTEM;
		bind1(s, vm, op_prefetch(1 * GiB, 16 * KiB, to));
		struct vmb_bo_query q = {.handle = bo};
		assert_int_equal(vmb_bo_query(s, &q), 0);
		assert_int_equal(q.region, to);
		if (to == VMB_REGION_SYSTEM) {
			struct vmb_region_query rq = {.region = VMB_REGION_SYSTEM};
			assert_int_equal(vmb_region_query(s, &rq), 0);
			assert_int_equal(rq.free, 0); /* it took the four one-page holes */
		}
		for (unsigned int i = 0; i < 16 * KiB / 8; i++) {
			/* word 7 of each page: the previous round's GPU write */
			uint64_t want = round && i % 512 == 7 ? 0x9000 + (round - 1) * 0x100 + i : 0x5000 + i;
			assert_int_equal(cpu[i], want);
			assert_int_equal(gpu_read64(s, vm, 1 * GiB + i * 8), want);
		}
		/* a GPU write to word 7 of each page shows through the CPU pointer */
		for (unsigned int p = 0; p < 4; p++) {
			unsigned int i = p * 512 + 7;
			gpu_write64(s, vm, 1 * GiB + i * 8, 0x9000 + round * 0x100 + i);
			assert_int_equal(cpu[i], 0x9000 + round * 0x100 + i);
		}
	}
	validate_client(s);
	assert_int_equal(vmb_client_close(s), 0);
}

static void test_userptr(void **state)
{
	(void)state;
	uint32_t vm = vm_new(c, 0);
	uint64_t *mem = mmap(NULL, 4 * MiB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(mem != MAP_FAILED);
	mem[0] = 11;
	bind1(c, vm, op_userptr(mem, 1 * GiB, 4 * MiB, 0));
	assert_int_equal(gpu_read64(c, vm, 1 * GiB), 11);
	gpu_write64(c, vm, 1 * GiB + 3 * MiB, 33);
	assert_int_equal(mem[3 * MiB / 8], 33);
	/* partial unmap keeps the rest pointing at the right host pages */
	bind1(c, vm, op_unmap(1 * GiB + 1 * MiB, 1 * MiB));
	gpu_write64(c, vm, 1 * GiB + 2 * MiB + 16, 44);
	assert_int_equal(mem[(2 * MiB + 16) / 8], 44);
	validate_client(c);
	bind1(c, vm, op_userptr(mem, 2 * GiB, 4 * KiB, VMB_BIND_FLAG_READONLY));
	uint64_t v = 1;
	assert_int_equal(__gpu_rw(c, vm, 2 * GiB, &v, 8, true), -EACCES);
	struct vmb_vm_destroy d = {.vm_id = vm};
	assert_int_equal(vmb_vm_destroy(c, &d), 0);
	munmap(mem, 4 * MiB);
}

/* Checksum of everything observable in a vm: mappings, stats, and contents of every mapping. */
static uint64_t vm_fingerprint(uint32_t vm)
{
	struct vmb_mapping_info m[256];
	struct vmb_vm_query_mappings q = {.vm_id = vm, .num_mappings = 256, .mappings = (uint64_t)(uintptr_t)m};
	assert_int_equal(vmb_vm_query_mappings(c, &q), 0);
	assert_true(q.num_mappings <= 256);
	struct vmb_vm_stats st = vm_stats(c, vm);
	uint64_t h = 1469598103934665603ull;
#define MIX(x) (h = (h ^ (uint64_t)(x)) * 1099511628211ull)
	MIX(st.num_mappings);
	MIX(st.bytes_mapped);
	MIX(st.pt_bytes);
	MIX(st.pt_reserve_bytes);
	for (uint32_t i = 0; i < q.num_mappings; i++) {
		MIX(m[i].addr);
		MIX(m[i].range);
		MIX(m[i].offset);
		MIX(m[i].bo_handle);
		MIX(m[i].flags);
		MIX(m[i].page_sizes);
		for (uint64_t off = 0; off < m[i].range; off += 4096)
			MIX(gpu_read64(c, vm, m[i].addr + off));
	}
	return h;
}

/* Op k of an array fails at each possible allocation: every time, the vm is as before. */
static void test_all_or_nothing(void **state)
{
	(void)state;
	uint32_t vm = vm_new(c, 0);
	uint32_t a = bo_new(c, 4 * MiB, VMB_PLACE_VRAM | VMB_PLACE_SYSTEM), b = bo_new(c, 1 * MiB, VMB_PLACE_SYSTEM);
	uint64_t *ca = bo_cpu(c, a);
	for (uint64_t i = 0; i < 4 * MiB / 8; i += 512)
		ca[i] = i + 5;
	bind1(c, vm, op_map(a, 0, 0, 4 * MiB, 0));
	bind1(c, vm, op_null(64 * MiB, 2 * MiB));
	uint64_t before = vm_fingerprint(vm);
	struct vmb_bind_op ops[] = {
		op_unmap(1 * MiB, 8 * KiB),               /* split a 2 MiB page */
		op_map(b, 0, 1 * GiB, 1 * MiB, 0),        /* new tables */
		op_map(b, 0, 3 * MiB, 64 * KiB, 0),       /* over a */
		op_prefetch(0, 4 * MiB, VMB_REGION_SYSTEM), /* move a */
		op_map(a, 0, 2 * GiB, 4 * MiB, 0),        /* map the moved BO */
		op_unmap(64 * MiB + 4 * KiB, 4 * KiB),     /* split the NULL page */
		op_unmap_all(b),
	};
	unsigned long n;
	int err = -ENOMEM;
	for (n = 1; err == -ENOMEM && n < 10000; n++) {
		vmb_alloc_fail_after(n);
		err = __bind_ops(c, vm, ops, 7);
		vmb_alloc_fail_after(0);
		if (err) {
			assert_int_equal(err, -ENOMEM);
			assert_int_equal(vm_fingerprint(vm), before);
			validate_client(c);
		}
	}
	assert_int_equal(err, 0);
	print_message("all-or-nothing: the call succeeded once %lu allocations were allowed\n", n - 1);
	assert_true(n > 3);
	assert_int_not_equal(vm_fingerprint(vm), before);
	assert_int_equal(gpu_read64(c, vm, 2 * GiB + 512 * 8), 512 + 5);
	validate_client(c);
}

/* Page-table memory runs out: MAP fails cleanly, UNMAP (splitting huge pages) never does. */
static void test_pt_pool_exhaustion(void **state)
{
	(void)state;
	struct vmb_client_opts o = {.vram_size = 64 * MiB, .system_size = 64 * MiB, .pt_pool_size = 64 * 4096};
	struct vmb_client *s = NULL;
	assert_int_equal(vmb_client_open("soft:1", &o, &s), 0);
	struct vmb_vm_create vc = {0};
	assert_int_equal(vmb_vm_create(s, &vc), 0);
	struct vmb_bo_create bc = {.size = 2 * MiB, .placements = VMB_PLACE_VRAM};
	assert_int_equal(vmb_bo_create(s, &bc), 0);
	/* 2 MiB pages, each in its own 1 GiB slot: 1 level-1 table + 1 reserve page each */
	int err = 0;
	uint64_t mapped = 0;
	for (uint64_t i = 0; i < 200 && !err; i++) {
		struct vmb_bind_op op = op_map(bc.handle, 0, i * GiB, 2 * MiB, 0);
		struct vmb_vm_bind b = {.vm_id = vc.vm_id, .num_binds = 1, .binds = (uint64_t)(uintptr_t)&op};
		err = vmb_vm_bind(s, &b);
		mapped += err == 0;
	}
	assert_int_equal(err, -ENOMEM);
	assert_true(mapped > 10);
	struct vmb_client_validate v = {0};
	assert_int_equal(vmb_client_validate(s, &v), 0);
	/* every mapping can still be split by an unmap */
	for (uint64_t i = 0; i < mapped; i++) {
		struct vmb_bind_op op = op_unmap(i * GiB + 1 * MiB, 4 * KiB);
		struct vmb_vm_bind b = {.vm_id = vc.vm_id, .num_binds = 1, .binds = (uint64_t)(uintptr_t)&op};
		assert_int_equal(vmb_vm_bind(s, &b), 0);
	}
	assert_int_equal(vmb_client_validate(s, &v), 0);
	assert_int_equal(vmb_client_close(s), 0);
}

/* Page-table memory runs out at op k of an array: ops 0..k-1 are undone, nothing leaks. */
static void test_pt_pool_exhaustion_mid_array(void **state)
{
	(void)state;
	struct vmb_client_opts o = {.vram_size = 64 * MiB, .system_size = 64 * MiB, .pt_pool_size = 16 * 4096};
	struct vmb_client *s = NULL;
	assert_int_equal(vmb_client_open("soft:1", &o, &s), 0);
	struct vmb_vm_create vc = {0};
	assert_int_equal(vmb_vm_create(s, &vc), 0);
	struct vmb_bo_create bc = {.size = 64 * KiB, .placements = VMB_PLACE_SYSTEM};
	assert_int_equal(vmb_bo_create(s, &bc), 0);
	struct vmb_bind_op first = op_map(bc.handle, 0, 0, 64 * KiB, 0);
	struct vmb_vm_bind b1 = {.vm_id = vc.vm_id, .num_binds = 1, .binds = (uint64_t)(uintptr_t)&first};
	assert_int_equal(vmb_vm_bind(s, &b1), 0);
	struct vmb_vm_stats before = {.vm_id = vc.vm_id}, after = {.vm_id = vc.vm_id};
	assert_int_equal(vmb_vm_query_stats(s, &before), 0);
	/* each op in its own 512 GiB slot needs three new tables; the pool holds 16 pages */
	struct vmb_bind_op ops[8];
	for (int i = 0; i < 8; i++)
		ops[i] = op_map(bc.handle, 0, (uint64_t)(i + 1) << 39, 64 * KiB, 0);
	struct vmb_vm_bind b = {.vm_id = vc.vm_id, .num_binds = 8, .binds = (uint64_t)(uintptr_t)ops};
	assert_int_equal(vmb_vm_bind(s, &b), -ENOMEM);
	assert_int_equal(vmb_vm_query_stats(s, &after), 0);
	assert_memory_equal(&after, &before, sizeof(before));
	struct vmb_client_validate v = {0};
	assert_int_equal(vmb_client_validate(s, &v), 0);
	/* root + 3 tables of the first mapping + 4 x 3 = 16 pages: four of them fit */
	b.num_binds = 4;
	assert_int_equal(vmb_vm_bind(s, &b), 0);
	assert_int_equal(vmb_vm_query_stats(s, &after), 0);
	assert_int_equal(after.num_mappings, 5);
	assert_int_equal(after.pt_bytes, before.pt_bytes + 4 * 3 * 4096);
	assert_int_equal(vmb_client_validate(s, &v), 0);
	assert_int_equal(vmb_client_close(s), 0);
}

/*
 * Page-table memory runs out while the free pages sit in another vm's table cache (the soft
 * device's, issue 16): the cache is reclaimed, so a call fails (-ENOMEM, nothing changed) or
 * succeeds exactly as it would without caches. Pool of 16 pages: vm a maps and unmaps four
 * mappings of three tables each (its cache keeps 8 of the 12 pages); vm b then has 16 - 2 roots
 * = 14 pages: an array of 8 such MAPs fails, one of 4 (12 pages) fits, one more fails.
 */
static void test_pt_pool_exhaustion_other_vm_cache(void **state)
{
	(void)state;
	struct vmb_client_opts o = {.vram_size = 64 * MiB, .system_size = 64 * MiB, .pt_pool_size = 16 * 4096};
	struct vmb_client *s = NULL;
	assert_int_equal(vmb_client_open("soft:1", &o, &s), 0);
	struct vmb_vm_create va = {0}, vb = {0};
	assert_int_equal(vmb_vm_create(s, &va), 0);
	struct vmb_bo_create bc = {.size = 64 * KiB, .placements = VMB_PLACE_SYSTEM};
	assert_int_equal(vmb_bo_create(s, &bc), 0);
	struct vmb_bind_op ops[8], unmaps[4];
	for (int i = 0; i < 8; i++)
		ops[i] = op_map(bc.handle, 0, (uint64_t)(i + 1) << 39, 64 * KiB, 0);
	for (int i = 0; i < 4; i++)
		unmaps[i] = op_unmap((uint64_t)(i + 1) << 39, 64 * KiB);
	struct vmb_vm_bind b = {.vm_id = va.vm_id, .num_binds = 4, .binds = (uint64_t)(uintptr_t)ops};
	assert_int_equal(vmb_vm_bind(s, &b), 0);
	b.binds = (uint64_t)(uintptr_t)unmaps;
	assert_int_equal(vmb_vm_bind(s, &b), 0);

	assert_int_equal(vmb_vm_create(s, &vb), 0);
	struct vmb_vm_stats before = {.vm_id = vb.vm_id}, after = {.vm_id = vb.vm_id};
	assert_int_equal(vmb_vm_query_stats(s, &before), 0);
	b = (struct vmb_vm_bind){.vm_id = vb.vm_id, .num_binds = 8, .binds = (uint64_t)(uintptr_t)ops};
	assert_int_equal(vmb_vm_bind(s, &b), -ENOMEM);
	assert_int_equal(vmb_vm_query_stats(s, &after), 0);
	assert_int_equal(after.num_mappings, 0);
	assert_int_equal(after.pt_bytes, before.pt_bytes);
	b.num_binds = 4;
	assert_int_equal(vmb_vm_bind(s, &b), 0);
	assert_int_equal(vmb_vm_query_stats(s, &after), 0);
	assert_int_equal(after.pt_bytes, before.pt_bytes + 4 * 3 * 4096);
	b.binds = (uint64_t)(uintptr_t)&ops[4];
	b.num_binds = 1;
	assert_int_equal(vmb_vm_bind(s, &b), -ENOMEM);
	struct vmb_client_validate v = {0};
	assert_int_equal(vmb_client_validate(s, &v), 0);
	/* a's pages are all in use by b now: a MAP in a fails too, one in b after an unmap fits */
	b = (struct vmb_vm_bind){.vm_id = va.vm_id, .num_binds = 1, .binds = (uint64_t)(uintptr_t)ops};
	assert_int_equal(vmb_vm_bind(s, &b), -ENOMEM);
	b = (struct vmb_vm_bind){.vm_id = vb.vm_id, .num_binds = 1, .binds = (uint64_t)(uintptr_t)unmaps};
	assert_int_equal(vmb_vm_bind(s, &b), 0);
	b.vm_id = va.vm_id;
	b.binds = (uint64_t)(uintptr_t)ops;
	assert_int_equal(vmb_vm_bind(s, &b), 0);
	assert_int_equal(vmb_client_validate(s, &v), 0);
	assert_int_equal(vmb_client_close(s), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_map_read_write),
		cmocka_unit_test(test_pt_pool_exhaustion_other_vm_cache),
		cmocka_unit_test(test_split_huge_page),
		cmocka_unit_test(test_null_readonly_scratch),
		cmocka_unit_test(test_gpu_view_ends_at_va_size),
		cmocka_unit_test(test_unmap_all_and_handles),
		cmocka_unit_test(test_prefetch),
		cmocka_unit_test(test_prefetch_cpu_writes),
		cmocka_unit_test(test_prefetch_fragmented),
		cmocka_unit_test(test_userptr),
		cmocka_unit_test(test_all_or_nothing),
		cmocka_unit_test(test_pt_pool_exhaustion),
		cmocka_unit_test(test_pt_pool_exhaustion_mid_array),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
