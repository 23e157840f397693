/* SPDX-License-Identifier: MIT */
/*
 * Description: differential test of VM_BIND. 1,000,000 random operations (MAP of BOs in VRAM
 * and SYSTEM at 4K/64K/2M/1G alignments, NULL, MAP_USERPTR, UNMAP, UNMAP_ALL, PREFETCH, some in
 * multi-op arrays) run on the soft device and on a naive per-page shadow model. After each
 * call, sampled addresses are translated through the GPU view and compared with the model
 * (content tag, NULL reads 0, READONLY refuses writes, holes fault); every 20,000 calls the
 * whole client is validated; at the end everything is unmapped and the page-table memory must
 * be back to the root table alone. Prints its seed; VMB_SEED replays, VMB_DIFF_OPS resizes.
 * Runs on both soft shapes (make test runs it again with VMB_SOFT_DISCRETE=1): the model's page
 * is the device's granule (4 KiB, or 2 MiB on the discrete shape, whose BOs, user buffer and
 * alignments are scaled to whole granules and whose VRAM BOs get their tags through the GPU view).
 */
#include "lib/harness.h"

#include <errno.h>
#include <sys/mman.h>

#include "core/alloc.h" /* vmb_commit_failed_count(): the soft device never fails a commit */

#define WINDOW (4 * GiB)
#define NBOS 7

static uint64_t unit;      /* the model's page: the device's granule */
static uint64_t npages;    /* WINDOW / unit */
static uint64_t user_size; /* bytes of the user buffer (MAP_USERPTR) */

enum { P_NONE, P_BO, P_NULL, P_USER };

struct page {
	uint8_t kind;
	uint8_t ro;
	uint8_t bo;     /* index into bos[] */
	uint32_t index; /* page index in the BO or in the user buffer */
};

struct bo {
	uint32_t handle;
	uint64_t size;
	uint32_t placements;
};

static struct page *model;

/* Undo log of the model for a multi-op call that the library refuses as a whole. */
struct undo {
	uint32_t page;
	struct page old;
};
static struct undo *undo_log;
static size_t undo_n, undo_cap;
static bool undo_on;

static void model_set(uint64_t pg, struct page v)
{
	if (undo_on) {
		if (undo_n == undo_cap) {
			undo_cap = undo_cap ? undo_cap * 2 : 4096;
			undo_log = realloc(undo_log, undo_cap * sizeof(*undo_log));
			assert_non_null(undo_log);
		}
		undo_log[undo_n++] = (struct undo){.page = (uint32_t)pg, .old = model[pg]};
	}
	model[pg] = v;
}
static struct bo bos[NBOS];
static uint64_t *user;
static void *user_raw; /* the mapping user is aligned in (user_size + unit bytes) */
static struct vmb_client *c;
static uint32_t vm;

static uint64_t tag(unsigned int bo, uint64_t page) { return ((uint64_t)(bo + 1) << 40) | page; }

static void make_bos(void)
{
	static const uint64_t sizes[NBOS] = {4 * MiB, 2 * MiB + 64 * KiB, 1 * MiB, 64 * KiB, 2 * MiB, 3 * MiB,
					     12 * KiB};
	/* 2 MiB granules: sizes in granules as varied (a single one, odd counts) */
	static const uint64_t units2m[NBOS] = {16, 6, 4, 1, 8, 12, 3};
	for (unsigned int i = 0; i < NBOS; i++) {
		bos[i].size = unit == 4 * KiB ? sizes[i] : units2m[i] * unit;
		/* one VRAM-only BO makes PREFETCH to SYSTEM fail now and then */
		bos[i].placements = i == 5 ? VMB_PLACE_VRAM : VMB_PLACE_VRAM | VMB_PLACE_SYSTEM;
		bos[i].handle = bo_new(c, bos[i].size, bos[i].placements);
		uint64_t n = bos[i].size / unit, *t = calloc(n, 8);
		for (uint64_t pg = 0; pg < n; pg++)
			t[pg] = tag(i, pg);
		bo_write64s(c, bos[i].handle, unit, t, n); /* the GPU view where the CPU cannot map */
		free(t);
	}
	/* granule-aligned (a userptr is whole granules) */
	user_size = unit == 4 * KiB ? 8 * MiB : 16 * unit;
	uint8_t *raw = mmap(NULL, user_size + unit, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(raw != MAP_FAILED);
	user = (uint64_t *)(uintptr_t)(((uintptr_t)raw + unit - 1) & ~(uintptr_t)(unit - 1));
	user_raw = raw;
	for (uint64_t pg = 0; pg < user_size / unit; pg++)
		user[pg * (unit / 8)] = tag(100, pg);
}

static uint64_t pick_align(uint64_t *s)
{
	uint64_t r = rnd_below(s, 100);
	uint64_t g = r < 50 ? 4 * KiB : r < 75 ? 64 * KiB : r < 97 ? 2 * MiB : 1 * GiB;
	return g < unit ? unit : g; /* nothing finer than the granule */
}

/* A random range of 1-8 units of @g inside the window. */
static void pick_range(uint64_t *s, uint64_t g, uint64_t *addr, uint64_t *range)
{
	*addr = rnd_below(s, WINDOW / g) * g;
	*range = (1 + rnd_below(s, g == 1 * GiB ? 2 : 8)) * g; /* 1G units: the model pays per page */
	if (*addr + *range > WINDOW)
		*range = WINDOW - *addr;
}

/* One random op; fills the model's view of it into *pending (applied if the call succeeds). */
static struct vmb_bind_op random_op(uint64_t *s)
{
	uint64_t r = rnd_below(s, 100), g = pick_align(s), addr, range;
	pick_range(s, g, &addr, &range);
	if (r < 45) {
		unsigned int b = (unsigned int)rnd_below(s, NBOS);
		if (range > bos[b].size)
			range = bos[b].size & ~(g - 1) ? bos[b].size & ~(g - 1) : bos[b].size;
		if (addr + range > WINDOW)
			range = WINDOW - addr;
		uint64_t slack = (bos[b].size - range) / unit;
		uint64_t off = rnd_below(s, slack + 1) * unit;
		if (rnd_below(s, 2))
			off &= ~(g - 1); /* keep it as aligned as the VA half the time */
		return op_map(bos[b].handle, off, addr, range, rnd_below(s, 8) == 0 ? VMB_BIND_FLAG_READONLY : 0);
	}
	if (r < 52)
		return op_null(addr, range);
	if (r < 58) {
		if (range > user_size)
			range = user_size;
		uint64_t off = rnd_below(s, (user_size - range) / unit + 1) * unit;
		return op_userptr((char *)user + off, addr, range, rnd_below(s, 4) == 0 ? VMB_BIND_FLAG_READONLY : 0);
	}
	if (r < 98 || (r == 98 && rnd_below(s, 4)))
		return op_unmap(addr, range);
	/* UNMAP_ALL 0.25% (the model scans every page for it), PREFETCH 1% (it copies the BO) */
	if (r == 98)
		return op_unmap_all(bos[rnd_below(s, NBOS)].handle);
	return op_prefetch(addr, range, (uint32_t)rnd_below(s, 2));
}

static int bo_index(uint32_t handle)
{
	for (int i = 0; i < NBOS; i++)
		if (bos[i].handle == handle)
			return i;
	return -1;
}

/* The model's own version of each op. PREFETCH changes nothing visible. */
static void model_apply(const struct vmb_bind_op *op)
{
	uint64_t first = op->addr / unit, n = op->range / unit;
	switch (op->op) {
	case VMB_BIND_OP_MAP:
		for (uint64_t i = 0; i < n; i++) {
			if (op->flags & VMB_BIND_FLAG_NULL)
				model_set(first + i, (struct page){.kind = P_NULL});
			else
				model_set(first + i, (struct page){.kind = P_BO, .ro = !!(op->flags & VMB_BIND_FLAG_READONLY),
								 .bo = (uint8_t)bo_index(op->bo_handle),
								 .index = (uint32_t)(op->bo_offset / unit + i)});
		}
		break;
	case VMB_BIND_OP_MAP_USERPTR:
		for (uint64_t i = 0; i < n; i++)
			model_set(first + i, (struct page){.kind = P_USER, .ro = !!(op->flags & VMB_BIND_FLAG_READONLY),
							   .index = (uint32_t)((op->userptr - (uint64_t)(uintptr_t)user) / unit + i)});
		break;
	case VMB_BIND_OP_UNMAP:
		for (uint64_t i = 0; i < n; i++)
			if (model[first + i].kind != P_NONE)
				model_set(first + i, (struct page){0});
		break;
	case VMB_BIND_OP_UNMAP_ALL: {
		int b = bo_index(op->bo_handle);
		for (uint64_t i = 0; i < npages; i++)
			if (model[i].kind == P_BO && model[i].bo == b)
				model_set(i, (struct page){0});
		break;
	}
	default:
		break;
	}
}

/* Would the library refuse this PREFETCH? (a VRAM-only BO mapped in the range, moving to SYSTEM) */
static bool prefetch_fails(const struct vmb_bind_op *op)
{
	if (op->op != VMB_BIND_OP_PREFETCH || op->region != VMB_REGION_SYSTEM)
		return false;
	for (uint64_t i = op->addr / unit; i < (op->addr + op->range) / unit; i++)
		if (model[i].kind == P_BO && !(bos[model[i].bo].placements & VMB_PLACE_SYSTEM))
			return true;
	return false;
}

static void check_page(uint64_t pg, uint64_t ops_done)
{
	const struct page *p = &model[pg];
	uint64_t addr = pg * unit, v = 0, expect = 0;
	int err = __gpu_rw(c, vm, addr, &v, 8, false);

	switch (p->kind) {
	case P_NONE:
		if (err != -EFAULT)
			fail_msg("after %llu ops: page 0x%llx should fault, read %d", (unsigned long long)ops_done,
				 (unsigned long long)addr, err);
		return;
	case P_NULL:
		expect = 0;
		break;
	case P_BO:
		expect = tag(p->bo, p->index);
		break;
	case P_USER:
		expect = tag(100, p->index);
		break;
	}
	if (err || v != expect)
		fail_msg("after %llu ops: page 0x%llx (kind %d) read %d 0x%llx, expected 0x%llx",
			 (unsigned long long)ops_done, (unsigned long long)addr, p->kind, err, (unsigned long long)v,
			 (unsigned long long)expect);
	/* writing the same value back: refused exactly on READONLY mappings, and harmless otherwise */
	err = __gpu_rw(c, vm, addr, &v, 8, true);
	if (err != (p->ro ? -EACCES : 0))
		fail_msg("after %llu ops: write to page 0x%llx gave %d, ro %d", (unsigned long long)ops_done,
			 (unsigned long long)addr, err, p->ro);
}

static void test_diff(void **state)
{
	(void)state;
	uint64_t seed = test_seed("bind-diff"), s = seed;
	const char *env = getenv("VMB_DIFF_OPS");
	uint64_t total = env ? strtoull(env, NULL, 0) : 1000000, calls = 0, failed_calls = 0, ops_done = 0;
	uint64_t op_counts[5] = {0};
	bool trace = getenv("VMB_DIFF_TRACE") != NULL; /* print every call, validate after each */

	c = open_soft(256 * MiB, 256 * MiB);
	unit = granule_of(c);
	npages = WINDOW / unit;
	print_message("bind-diff: %s shape, %llu KiB granule\n", vram_cpu_mappable(c) ? "integrated" : "discrete",
		      (unsigned long long)(unit / KiB));
	struct vmb_vm_create vc = {.va_size = WINDOW};
	assert_int_equal(vmb_vm_create(c, &vc), 0);
	vm = vc.vm_id;
	model = calloc(npages, sizeof(*model));
	make_bos();

	while (ops_done < total) {
		struct vmb_bind_op ops[4];
		uint32_t n = rnd_below(&s, 10) == 0 ? 1 + (uint32_t)rnd_below(&s, 4) : 1;
		bool expect_fail = false;
		for (uint32_t i = 0; i < n; i++) {
			ops[i] = random_op(&s);
			op_counts[ops[i].op]++;
		}
		/* the model runs the ops in order to know whether a PREFETCH will be refused */
		undo_on = n > 1;
		undo_n = 0;
		for (uint32_t i = 0; i < n && !expect_fail; i++) {
			expect_fail = prefetch_fails(&ops[i]);
			if (!expect_fail)
				model_apply(&ops[i]);
		}
		if (trace)
			for (uint32_t i = 0; i < n; i++)
				printf("call %llu op %u/%u: op %u flags %u bo %u off 0x%llx uptr 0x%llx addr 0x%llx range 0x%llx region %u\n",
				       (unsigned long long)calls, i, n, ops[i].op, ops[i].flags, ops[i].bo_handle,
				       (unsigned long long)ops[i].bo_offset, (unsigned long long)ops[i].userptr,
				       (unsigned long long)ops[i].addr, (unsigned long long)ops[i].range, ops[i].region);
		int err = __bind_ops(c, vm, ops, n);
		if (trace)
			validate_client(c);
		if (expect_fail) {
			if (err != -EINVAL)
				fail_msg("call %llu: expected -EINVAL (prefetch of a VRAM-only BO), got %d",
					 (unsigned long long)calls, err);
			while (undo_n > 0) {
				undo_n--;
				model[undo_log[undo_n].page] = undo_log[undo_n].old;
			}
			failed_calls++;
		} else if (err) {
			fail_msg("call %llu (%u ops, first op %u addr 0x%llx range 0x%llx): %d", (unsigned long long)calls,
				 n, ops[0].op, (unsigned long long)ops[0].addr, (unsigned long long)ops[0].range, err);
		}
		calls++;
		ops_done += n;
		/* sampled pages: the edges of each op and random ones */
		for (uint32_t i = 0; i < n; i++) {
			if (ops[i].op == VMB_BIND_OP_UNMAP_ALL)
				continue;
			uint64_t a = ops[i].addr / unit, z = (ops[i].addr + ops[i].range) / unit;
			check_page(a, ops_done);
			check_page(z - 1, ops_done);
			if (a > 0)
				check_page(a - 1, ops_done);
			if (z < npages)
				check_page(z, ops_done);
		}
		for (int k = 0; k < 4; k++)
			check_page(rnd_below(&s, npages), ops_done);
		if (calls % 20000 == 0)
			validate_client(c);
	}
	validate_client(c);
	/* every page, once, at the end */
	for (uint64_t pg = 0; pg < npages; pg += unit == 4 * KiB ? 1 + rnd_below(&s, 64) : 1)
		check_page(pg, ops_done);
	bind1(c, vm, op_unmap(0, WINDOW));
	struct vmb_vm_stats st = vm_stats(c, vm);
	assert_int_equal(st.num_mappings, 0);
	assert_int_equal(st.pt_bytes, 4096);
	assert_int_equal(st.pt_reserve_bytes, 0);
	validate_client(c);
	/* no vm banned: no commit failed (validate does not compare a banned vm's page tables) */
	assert_int_equal(vmb_commit_failed_count(), 0);
	print_message("bind-diff: %llu ops in %llu calls (%llu refused as expected); MAP %llu UNMAP %llu USERPTR %llu "
		      "UNMAP_ALL %llu PREFETCH %llu; seed %llu\n",
		      (unsigned long long)ops_done, (unsigned long long)calls, (unsigned long long)failed_calls,
		      (unsigned long long)op_counts[0], (unsigned long long)op_counts[1], (unsigned long long)op_counts[2],
		      (unsigned long long)op_counts[3], (unsigned long long)op_counts[4], (unsigned long long)seed);
	assert_int_equal(vmb_client_close(c), 0);
	munmap(user_raw, user_size + unit);
	free(model);
	free(undo_log);
}

int main(void)
{
	const struct CMUnitTest tests[] = {cmocka_unit_test(test_diff)};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
