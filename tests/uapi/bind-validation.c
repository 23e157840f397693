/* SPDX-License-Identifier: MIT */
/*
 * Description: every VM_BIND validation rule, one at a time: a valid call with one field made
 * bad gets the exact errno and changes nothing; the same call made valid again succeeds.
 * Boundaries at 0, page - 1, the vm's end and UINT64_MAX.
 */
#include "lib/harness.h"

#include <errno.h>
#include <sys/mman.h>

#define VA_SIZE (1ull << 40)
#define BO_SIZE (4 * MiB)

struct fixture {
	struct vmb_client *c;
	uint32_t vm, bo;
	void *uptr;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	f->c = open_soft(64 * MiB, 64 * MiB);
	struct vmb_vm_create v = {.va_size = VA_SIZE};
	assert_int_equal(vmb_vm_create(f->c, &v), 0);
	f->vm = v.vm_id;
	f->bo = bo_new(f->c, BO_SIZE, VMB_PLACE_VRAM | VMB_PLACE_SYSTEM);
	f->uptr = mmap(NULL, 1 * MiB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(f->uptr != MAP_FAILED);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	validate_client(f->c);
	assert_int_equal(vmb_client_close(f->c), 0);
	munmap(f->uptr, 1 * MiB);
	free(f);
	return 0;
}

/* A fingerprint of the vm: everything a bad call must leave alone. */
struct snap {
	struct vmb_vm_stats st;
	struct vmb_mapping_info maps[16];
	uint32_t n;
};

static void snap(struct fixture *f, struct snap *s)
{
	memset(s, 0, sizeof(*s));
	s->st = vm_stats(f->c, f->vm);
	struct vmb_vm_query_mappings q = {.vm_id = f->vm, .num_mappings = 16,
					  .mappings = (uint64_t)(uintptr_t)s->maps};
	assert_int_equal(vmb_vm_query_mappings(f->c, &q), 0);
	s->n = q.num_mappings;
}

static void assert_unchanged(struct fixture *f, const struct snap *before)
{
	struct snap now;
	snap(f, &now);
	assert_memory_equal(&now, before, sizeof(now));
	validate_client(f->c);
}

/* One rule: mutate a valid op with `bad`, expect `err`; then the valid op must succeed. */
struct op_case {
	const char *name;
	struct vmb_bind_op good;
	void (*bad)(struct vmb_bind_op *op, struct fixture *f);
	int err;
};

#define MUT(fn, stmt) static void fn(struct vmb_bind_op *op, struct fixture *f) { (void)f; stmt; }
MUT(m_reserved0, op->reserved[0] = 1)
MUT(m_reserved1, op->reserved[1] = 1ull << 63)
MUT(m_op_unknown, op->op = 5)
MUT(m_op_huge, op->op = UINT32_MAX)
MUT(m_flag_unknown, op->flags |= 1u << 2)
MUT(m_flag_top, op->flags |= 1u << 31)
MUT(m_addr_page_minus_1, op->addr = 4095)
MUT(m_addr_unaligned, op->addr += 512)
MUT(m_range_zero, op->range = 0)
MUT(m_range_unaligned, op->range += 1)
MUT(m_range_page_minus_1, op->range = 4095)
MUT(m_addr_overflow, { op->addr = UINT64_MAX - 4095; op->range = 8192; })
MUT(m_range_u64max, op->range = UINT64_MAX & ~4095ull)
MUT(m_past_vm_end, op->addr = VA_SIZE - 4096; op->range = 8192)
MUT(m_at_vm_end, op->addr = VA_SIZE)
MUT(m_addr_u64max_page, op->addr = UINT64_MAX & ~4095ull; op->range = 4096)
MUT(m_offset_unaligned, op->bo_offset = 4095)
MUT(m_offset_past_bo, op->bo_offset = BO_SIZE)
MUT(m_offset_range_past_bo, { op->bo_offset = BO_SIZE - 4096; op->range = 8192; })
MUT(m_offset_overflow, op->bo_offset = UINT64_MAX & ~4095ull)
MUT(m_bo_unknown, op->bo_handle = 9999)
MUT(m_bo_zero, op->bo_handle = 0)
MUT(m_bo_on_unmap, op->bo_handle = f->bo)
MUT(m_bo_on_null, op->bo_handle = f->bo)
MUT(m_offset_on_null, op->bo_offset = 4096)
MUT(m_readonly_on_null, op->flags |= VMB_BIND_FLAG_READONLY)
MUT(m_null_on_unmap, op->flags = VMB_BIND_FLAG_NULL)
MUT(m_readonly_on_unmap, op->flags = VMB_BIND_FLAG_READONLY)
MUT(m_offset_on_unmap, op->bo_offset = 4096)
MUT(m_userptr_on_map, op->userptr = 4096)
MUT(m_region_on_map, op->region = 1)
MUT(m_userptr_zero, op->userptr = 0)
MUT(m_userptr_unaligned, op->userptr += 8)
MUT(m_userptr_overflow, op->userptr = UINT64_MAX & ~4095ull)
MUT(m_userptr_unmapped, op->userptr = 4096) /* page 1 of the process is never mapped */
MUT(m_null_on_userptr, op->flags = VMB_BIND_FLAG_NULL)
MUT(m_bo_on_userptr, op->bo_handle = f->bo)
MUT(m_addr_on_unmap_all, op->addr = 4096)
MUT(m_range_on_unmap_all, op->range = 4096)
MUT(m_flags_on_unmap_all, op->flags = VMB_BIND_FLAG_READONLY)
MUT(m_region_bad, op->region = 2)
MUT(m_region_u32max, op->region = UINT32_MAX)
MUT(m_bo_on_prefetch, op->bo_handle = f->bo)
MUT(m_flags_on_prefetch, op->flags = VMB_BIND_FLAG_NULL)

static struct vmb_bind_op good_map(struct fixture *f) { return op_map(f->bo, 0, 1 * MiB, 64 * KiB, 0); }

static void run_case(struct fixture *f, const struct op_case *tc)
{
	struct snap before;
	struct vmb_bind_op op = tc->good;

	/* the good op, bad in one way */
	snap(f, &before);
	tc->bad(&op, f);
	int err = __bind1(f->c, f->vm, op);
	if (err != tc->err)
		fail_msg("%s: got %d, expected %d", tc->name, err, tc->err);
	assert_unchanged(f, &before);
	/* the same op, valid again, goes through; then undo it */
	assert_int_equal(__bind1(f->c, f->vm, tc->good), 0);
	struct vmb_bind_op undo = op_unmap(0, VA_SIZE);
	assert_int_equal(__bind1(f->c, f->vm, undo), 0);
}

static void test_op_rules(void **state)
{
	struct fixture *f = *state;
	struct vmb_bind_op map = good_map(f);
	struct vmb_bind_op unmap = op_unmap(1 * MiB, 64 * KiB);
	struct vmb_bind_op null = op_null(VA_SIZE - 2 * MiB, 2 * MiB);
	struct vmb_bind_op uptr = op_userptr(f->uptr, 2 * MiB, 1 * MiB, VMB_BIND_FLAG_READONLY);
	struct vmb_bind_op all = op_unmap_all(f->bo);
	struct vmb_bind_op pre = op_prefetch(0, VA_SIZE, VMB_REGION_SYSTEM);
	const struct op_case cases[] = {
		{"map reserved[0]", map, m_reserved0, -EINVAL},
		{"map reserved[1]", map, m_reserved1, -EINVAL},
		{"unknown op", map, m_op_unknown, -EINVAL},
		{"op UINT32_MAX", map, m_op_huge, -EINVAL},
		{"unknown flag", map, m_flag_unknown, -EINVAL},
		{"flag bit 31", map, m_flag_top, -EINVAL},
		{"addr page-1", map, m_addr_page_minus_1, -EINVAL},
		{"addr unaligned", map, m_addr_unaligned, -EINVAL},
		{"range 0", map, m_range_zero, -EINVAL},
		{"range unaligned", map, m_range_unaligned, -EINVAL},
		{"range page-1", map, m_range_page_minus_1, -EINVAL},
		{"addr+range overflows", map, m_addr_overflow, -EINVAL},
		{"range UINT64_MAX", map, m_range_u64max, -EINVAL},
		{"past the vm end", map, m_past_vm_end, -EINVAL},
		{"at the vm end", map, m_at_vm_end, -EINVAL},
		{"addr at UINT64_MAX page", map, m_addr_u64max_page, -EINVAL},
		{"offset page-1", map, m_offset_unaligned, -EINVAL},
		{"offset = BO size", map, m_offset_past_bo, -EINVAL},
		{"offset+range past the BO", map, m_offset_range_past_bo, -EINVAL},
		{"offset+range overflows", map, m_offset_overflow, -EINVAL},
		{"unknown BO", map, m_bo_unknown, -ENOENT},
		{"MAP without BO", map, m_bo_zero, -EINVAL},
		{"MAP with userptr", map, m_userptr_on_map, -EINVAL},
		{"MAP with region", map, m_region_on_map, -EINVAL},
		{"unmap reserved", unmap, m_reserved0, -EINVAL},
		{"UNMAP with BO", unmap, m_bo_on_unmap, -EINVAL},
		{"UNMAP with NULL", unmap, m_null_on_unmap, -EINVAL},
		{"UNMAP with READONLY", unmap, m_readonly_on_unmap, -EINVAL},
		{"UNMAP with offset", unmap, m_offset_on_unmap, -EINVAL},
		{"UNMAP range 0", unmap, m_range_zero, -EINVAL},
		{"UNMAP overflow", unmap, m_addr_overflow, -EINVAL},
		{"UNMAP past the vm end", unmap, m_past_vm_end, -EINVAL},
		{"NULL with BO", null, m_bo_on_null, -EINVAL},
		{"NULL with offset", null, m_offset_on_null, -EINVAL},
		{"NULL + READONLY", null, m_readonly_on_null, -EINVAL},
		{"NULL past the vm end", null, m_past_vm_end, -EINVAL},
		{"USERPTR 0", uptr, m_userptr_zero, -EINVAL},
		{"USERPTR unaligned", uptr, m_userptr_unaligned, -EINVAL},
		{"USERPTR overflow", uptr, m_userptr_overflow, -EINVAL},
		{"USERPTR unmapped memory", uptr, m_userptr_unmapped, -EFAULT},
		{"USERPTR with NULL", uptr, m_null_on_userptr, -EINVAL},
		{"USERPTR with BO", uptr, m_bo_on_userptr, -EINVAL},
		{"USERPTR range unaligned", uptr, m_range_unaligned, -EINVAL},
		{"UNMAP_ALL with addr", all, m_addr_on_unmap_all, -EINVAL},
		{"UNMAP_ALL with range", all, m_range_on_unmap_all, -EINVAL},
		{"UNMAP_ALL with flags", all, m_flags_on_unmap_all, -EINVAL},
		{"UNMAP_ALL without BO", all, m_bo_zero, -EINVAL},
		{"UNMAP_ALL unknown BO", all, m_bo_unknown, -ENOENT},
		{"PREFETCH region 2", pre, m_region_bad, -EINVAL},
		{"PREFETCH region UINT32_MAX", pre, m_region_u32max, -EINVAL},
		{"PREFETCH with BO", pre, m_bo_on_prefetch, -EINVAL},
		{"PREFETCH with flags", pre, m_flags_on_prefetch, -EINVAL},
		{"PREFETCH range 0", pre, m_range_zero, -EINVAL},
		{"PREFETCH past the vm end", pre, m_past_vm_end, -EINVAL},
	};
	/* give UNMAP / UNMAP_ALL / PREFETCH something to act on in each round */
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		bind1(f->c, f->vm, map);
		run_case(f, &cases[i]);
	}
}

/* The call's own fields. */
static void test_call_rules(void **state)
{
	struct fixture *f = *state;
	struct vmb_bind_op op = good_map(f);
	struct vmb_sync sync = {.type = VMB_SYNC_SYNCOBJ, .handle = 1, .flags = VMB_SYNC_FLAG_SIGNAL};
	struct snap before;
	const struct {
		const char *name;
		struct vmb_vm_bind b;
		int err;
	} cases[] = {
		{"pad", {.pad = 1}, -EINVAL},
		{"reserved", {.reserved = 1}, -EINVAL},
		{"queue_serial not the queue's (the default queue has none)", {.queue_serial = 1}, -ENOENT},
		{"restart cookie, vm without restart mode", {.restart = 1ull << 32}, -EINVAL},
		{"unknown flag", {.flags = 1u << 1}, -EINVAL},
		{"flag bit 31", {.flags = 1u << 31}, -EINVAL},
		{"too many ops", {.num_binds = VMB_VM_BIND_MAX_OPS + 1}, -EINVAL},
		{"no ops, no syncs", {.num_binds = 0}, -EINVAL},
		{"NULL ops pointer", {.binds = 0}, -EFAULT},
		{"too many syncs", {.num_syncs = VMB_VM_BIND_MAX_SYNCS + 1}, -EINVAL},
		{"NULL syncs pointer", {.num_syncs = 1, .syncs = 0, .flags = VMB_VM_BIND_FLAG_ASYNC}, -EFAULT},
		{"syncs on a synchronous bind", {.num_syncs = 1, .syncs = 1}, -EINVAL},
		{"async, unknown syncobj", {.num_syncs = 1, .syncs = 1, .flags = VMB_VM_BIND_FLAG_ASYNC}, -ENOENT},
		{"async, unknown queue", {.queue_id = 3, .flags = VMB_VM_BIND_FLAG_ASYNC}, -ENOENT},
		{"unknown vm", {.vm_id = 77}, -ENOENT},
		{"vm 0", {.vm_id = UINT32_MAX}, -ENOENT},
		{"unknown queue", {.queue_id = 3}, -ENOENT},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct vmb_vm_bind b = cases[i].b;
		if (!b.vm_id)
			b.vm_id = f->vm;
		if (b.vm_id == UINT32_MAX)
			b.vm_id = 0;
		if (!b.num_binds && strcmp(cases[i].name, "no ops, no syncs") && strcmp(cases[i].name, "NULL ops pointer"))
			b.num_binds = 1;
		if (!strcmp(cases[i].name, "NULL ops pointer"))
			b.num_binds = 1;
		else if (b.num_binds)
			b.binds = (uint64_t)(uintptr_t)&op;
		if (b.syncs == 1)
			b.syncs = (uint64_t)(uintptr_t)&sync;
		snap(f, &before);
		int err = vmb_vm_bind(f->c, &b);
		if (err != cases[i].err)
			fail_msg("%s: got %d, expected %d", cases[i].name, err, cases[i].err);
		assert_unchanged(f, &before);
	}
	assert_int_equal(vmb_vm_bind(NULL, NULL), -EINVAL);
	assert_int_equal(vmb_vm_bind(f->c, NULL), -EINVAL);
	/* and the plain call works */
	bind1(f->c, f->vm, op);
}

/* The first bad op of an array fails the whole call, whatever came before it. */
static void test_bad_op_in_array(void **state)
{
	struct fixture *f = *state;
	struct vmb_bind_op ops[3] = {good_map(f), op_null(8 * MiB, 2 * MiB), good_map(f)};
	struct snap before;
	ops[2].bo_offset = 1;
	snap(f, &before);
	assert_int_equal(__bind_ops(f->c, f->vm, ops, 3), -EINVAL);
	assert_unchanged(f, &before);
	ops[2].bo_offset = 0;
	ops[2].bo_handle = 12345;
	assert_int_equal(__bind_ops(f->c, f->vm, ops, 3), -ENOENT);
	assert_unchanged(f, &before);
	ops[2].bo_handle = f->bo;
	assert_int_equal(__bind_ops(f->c, f->vm, ops, 3), 0);
	assert_int_equal(vm_stats(f->c, f->vm).num_mappings, 2);
}

/* Valid boundaries: the first page, the last page of the vm, a whole-vm unmap. */
static void test_boundaries_ok(void **state)
{
	struct fixture *f = *state;
	bind1(f->c, f->vm, op_map(f->bo, 0, 0, 4096, 0));
	bind1(f->c, f->vm, op_map(f->bo, BO_SIZE - 4096, VA_SIZE - 4096, 4096, 0));
	bind1(f->c, f->vm, op_map(f->bo, 0, 4096, BO_SIZE, 0)); /* offset + range == BO size */
	gpu_write64(f->c, f->vm, VA_SIZE - 8, 0x1122334455667788ull);
	assert_int_equal(gpu_read64(f->c, f->vm, VA_SIZE - 8), 0x1122334455667788ull);
	/* the same BO page is visible through the second mapping of the whole BO */
	assert_int_equal(gpu_read64(f->c, f->vm, 4096 + BO_SIZE - 8), 0x1122334455667788ull);
	validate_client(f->c);
	bind1(f->c, f->vm, op_unmap(0, VA_SIZE));
	assert_int_equal(vm_stats(f->c, f->vm).num_mappings, 0);
	/* a full 48-bit vm takes a mapping at its very top */
	uint32_t big = vm_new(f->c, 0);
	bind1(f->c, big, op_map(f->bo, 0, (1ull << 48) - BO_SIZE, BO_SIZE, 0));
	bind1(f->c, big, op_unmap((1ull << 48) - 4096, 4096));
	validate_client(f->c);
	struct vmb_vm_destroy d = {.vm_id = big};
	assert_int_equal(vmb_vm_destroy(f->c, &d), 0);
}

/*
 * MAP_USERPTR memory must be accessible as the GPU mapping needs it: readable for READONLY,
 * writable otherwise (the call faults the pages in as the GPU will use them). With only a
 * "mapped" check, a writable mapping of read-only memory was accepted, and the first GPU write
 * killed the process; PROT_NONE memory the first read.
 */
static void test_userptr_protection(void **state)
{
	struct fixture *f = *state;
	uint8_t *ro = mmap(NULL, 64 * KiB, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	void *none = mmap(NULL, 64 * KiB, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(ro != MAP_FAILED && none != MAP_FAILED);
	struct snap before;
	snap(f, &before);
	struct vmb_bind_op op = op_userptr(ro, 4 * MiB, 64 * KiB, 0);
	struct vmb_vm_bind b = {.vm_id = f->vm, .num_binds = 1, .binds = (uint64_t)(uintptr_t)&op};
	assert_int_equal(vmb_vm_bind(f->c, &b), -EFAULT);
	assert_unchanged(f, &before);
	op = op_userptr(none, 4 * MiB, 64 * KiB, VMB_BIND_FLAG_READONLY);
	assert_int_equal(vmb_vm_bind(f->c, &b), -EFAULT);
	assert_unchanged(f, &before);
	/* read-only memory, read-only GPU mapping: fine, and the GPU reads it (zeros) */
	op = op_userptr(ro, 4 * MiB, 64 * KiB, VMB_BIND_FLAG_READONLY);
	assert_int_equal(vmb_vm_bind(f->c, &b), 0);
	uint64_t v = 7;
	struct vmb_vm_access a = {.vm_id = f->vm, .addr = 4 * MiB + 8, .size = 8, .data = (uint64_t)(uintptr_t)&v};
	assert_int_equal(vmb_vm_access(f->c, &a), 0);
	assert_int_equal(v, 0);
	a.flags = VMB_ACCESS_WRITE;
	assert_int_equal(vmb_vm_access(f->c, &a), -EACCES);
	op = (struct vmb_bind_op){.op = VMB_BIND_OP_UNMAP, .addr = 4 * MiB, .range = 64 * KiB};
	assert_int_equal(vmb_vm_bind(f->c, &b), 0);
	assert_int_equal(vm_stats(f->c, f->vm).num_mappings, before.st.num_mappings);
	munmap(ro, 64 * KiB);
	munmap(none, 64 * KiB);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_op_rules, setup, teardown),
		cmocka_unit_test_setup_teardown(test_call_rules, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_op_in_array, setup, teardown),
		cmocka_unit_test_setup_teardown(test_boundaries_ok, setup, teardown),
		cmocka_unit_test_setup_teardown(test_userptr_protection, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
