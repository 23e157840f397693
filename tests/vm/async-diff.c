/* SPDX-License-Identifier: MIT */
/*
 * Description: asynchronous binds on several bind queues against a page model, read back through
 * the GPU view. Overlapping binds of different queues commit in submission order (the one
 * ordering rule), so once every fence has signalled the vm maps what the calls made in the order
 * they were made, whatever order their jobs committed in. Each round some calls wait for a gate
 * (an imported eventfd, opened at the round's end), so binds that do not overlap them commit
 * first, in the call or by the workers, while the gated ones and those that follow them wait:
 * MAPs commit without clearing their range first (VMB_MAP_FRESH) with earlier jobs of other
 * queues still pending around them. Sizes: a few pages, 2045-2050, 4094-4096 pages (the VA
 * leaves' 2047-page key count), 2 MiB and 4 MiB aligned (huge leaves), NULL mappings, unmaps
 * of random ranges (cuts inside huge leaves); once the gate is open, PREFETCHes that move the BOs
 * between VRAM and SYSTEM (re-mapping their mappings) among more of them; then a PREFETCH behind
 * a second gate (of the whole window, or in a second vm that maps both BOs, whose copy fails every
 * other time: the BOs stay), and more calls of MAPs (of the moving BOs: prepared for both
 * backings, committed on the one the move leaves), NULLs and UNMAPs that return at once and
 * follow it. One call in ten fails at prepare after its
 * other ops were applied to the tree (its last op cuts a mapping of a BO of 64 KiB chunks at
 * 4 KiB: -EINVAL), reverted among the pending jobs' mappings removed in place; nothing changes.
 * After each round: every page read, validate.
 * Integrated shape only (4 KiB granules). Prints its seed; VMB_SEED replays.
 */
#include "lib/harness.h"

#include <errno.h>
#include <stdatomic.h>
#include <unistd.h>

#include "core/alloc.h" /* vmb_copy_fail_after: the soft DMA engine failing a copy */

#define PG 4096ull
#define SEC 1000000000ll
#define BASE (8ull << 30) /* 1 GiB aligned */
#define NPAGES 16384u     /* 64 MiB of VA */
#define BO_PAGES 8192u    /* 32 MiB BOs */
#define NQ 3
#define ROUNDS 24
#define CALLS 48 /* per round */
#define NULL_MARK (~0ull)

static uint64_t pattern(uint32_t tag, uint64_t page) { return (uint64_t)tag << 32 | page; }

struct ctx {
	struct vmb_client *c;
	uint32_t vm, bo[2], q[NQ], last[NQ]; /* last: each queue's latest out-syncobj */
	uint64_t seed;
	uint64_t model[NPAGES]; /* 0: unmapped, NULL_MARK: NULL mapping, else the pattern read */
	uint64_t saved[NPAGES]; /* the model before a call that must fail */
};

/* A mapping of a BO of 64 KiB chunks outside the window: an op that cuts it at 4 KiB fails at
 * prepare (-EINVAL), after the call's earlier ops were prepared and applied to the tree. */
#define CHUNK (64 * KiB)
#define CHUNKED (BASE - 1 * GiB)

static uint64_t pick_pages(struct ctx *x, bool *huge)
{
	static const uint64_t near[] = {2045, 2046, 2047, 2048, 2049, 2050, 4094, 4095, 4096};
	uint64_t r = rnd_below(&x->seed, 100);
	*huge = false;
	if (r < 45)
		return 1 + rnd_below(&x->seed, 16);
	if (r < 75)
		return near[rnd_below(&x->seed, sizeof(near) / sizeof(near[0]))];
	*huge = true;
	return 512 * (1 + rnd_below(&x->seed, 2));
}

/* One random op on the window into @op; the model follows (the call is made in this order). */
static void random_op(struct ctx *x, struct vmb_bind_op *op)
{
	bool huge;
	uint64_t pages = pick_pages(x, &huge), r = rnd_below(&x->seed, 100);
	uint64_t start = huge ? rnd_below(&x->seed, (NPAGES - pages) / 512 + 1) * 512 : rnd_below(&x->seed, NPAGES - pages + 1);
	if (r < 30) {
		*op = op_unmap(BASE + start * PG, pages * PG);
		for (uint64_t p = 0; p < pages; p++)
			x->model[start + p] = 0;
	} else if (r < 40) {
		*op = op_null(BASE + start * PG, pages * PG);
		for (uint64_t p = 0; p < pages; p++)
			x->model[start + p] = NULL_MARK;
	} else {
		uint32_t b = (uint32_t)rnd_below(&x->seed, 2);
		uint64_t off = huge ? rnd_below(&x->seed, (BO_PAGES - pages) / 512 + 1) * 512 : rnd_below(&x->seed, BO_PAGES - pages + 1);
		*op = op_map(x->bo[b], off * PG, BASE + start * PG, pages * PG, 0);
		for (uint64_t p = 0; p < pages; p++)
			x->model[start + p] = pattern(b + 1, off + p);
	}
}

/* A call of @n (1 or 2) random ops on queue @k with @syncs; one in ten gets a last op that fails
 * at prepare (-EINVAL, after the others were applied to the tree: nothing changed, the model
 * restored). Call @i of @round: any other result fails the test. */
static void random_call(struct ctx *x, uint32_t k, uint32_t n, struct vmb_sync *syncs, uint32_t nsyncs, int round,
			int i)
{
	struct vmb_bind_op ops[3];
	bool fails = rnd_below(&x->seed, 10) == 0;
	if (fails)
		memcpy(x->saved, x->model, sizeof(x->model));
	for (uint32_t j = 0; j < n; j++)
		random_op(x, &ops[j]);
	if (fails)
		ops[n++] = op_unmap(CHUNKED + PG, PG);
	int r = __bind_async(x->c, x->vm, x->q[k], ops, n, syncs, nsyncs);
	if (r != (fails ? -EINVAL : 0))
		fail_msg("round %d call %d: %d", round, i, r);
	if (fails) /* nothing changed */
		memcpy(x->model, x->saved, sizeof(x->model));
}

static uint32_t bo_region(struct vmb_client *c, uint32_t bo)
{
	struct vmb_bo_query q = {.handle = bo};
	assert_int_equal(vmb_bo_query(c, &q), 0);
	return q.region;
}

static uint32_t other_region(uint32_t r) { return r == VMB_REGION_VRAM ? VMB_REGION_SYSTEM : VMB_REGION_VRAM; }

static void check_all(struct ctx *x, int round)
{
	for (uint64_t p = 0; p < NPAGES; p++) {
		uint64_t v = 0, m = x->model[p];
		int err = __gpu_rw(x->c, x->vm, BASE + p * PG, &v, 8, false);
		bool ok = !m ? err == -EFAULT : !err && v == (m == NULL_MARK ? 0 : m);
		if (!ok)
			fail_msg("round %d page %llu: read %d 0x%llx, model 0x%llx", round, (unsigned long long)p, err,
				 (unsigned long long)v, (unsigned long long)m);
	}
}

static uint32_t bo_patterned(struct vmb_client *c, uint32_t tag)
{
	uint32_t bo = bo_new(c, BO_PAGES * PG, VMB_PLACE_SYSTEM | VMB_PLACE_VRAM);
	uint64_t *v = malloc(BO_PAGES * sizeof(*v));
	assert_non_null(v);
	for (uint64_t p = 0; p < BO_PAGES; p++)
		v[p] = pattern(tag, p);
	bo_write64s(c, bo, PG, v, BO_PAGES);
	free(v);
	return bo;
}

static void test_async_queues_diff(void **state)
{
	(void)state;
	struct ctx *x = calloc(1, sizeof(*x));
	assert_non_null(x);
	x->c = open_soft(256 * MiB, 256 * MiB);
	x->vm = vm_new(x->c, 0);
	x->bo[0] = bo_patterned(x->c, 1);
	x->bo[1] = bo_patterned(x->c, 2);
	x->seed = test_seed("async-diff");
	struct vmb_bo_create bc = {.size = CHUNK, .placements = VMB_PLACE_SYSTEM, .chunk_size = CHUNK};
	assert_int_equal(vmb_bo_create(x->c, &bc), 0);
	bind1(x->c, x->vm, op_map(bc.handle, 0, CHUNKED, CHUNK, 0));
	for (int k = 0; k < NQ; k++) {
		x->q[k] = queue_new(x->c, x->vm);
		x->last[k] = syncobj_new(x->c, 0);
	}
	for (int round = 0; round < ROUNDS; round++) {
		struct gate g = gate_new(x->c);
		for (int i = 0; i < CALLS; i++) {
			uint32_t n = 1 + (uint32_t)rnd_below(&x->seed, 4) / 3, k = (uint32_t)rnd_below(&x->seed, NQ);
			struct vmb_sync s[2] = {sync_out(x->last[k]), sync_in(g.h)};
			bool gated = rnd_below(&x->seed, 8) == 0;
			random_call(x, k, n, s, gated ? 2 : 1, round, i);
		}
		gate_open(&g);
		/* PREFETCHes of random ranges (their BOs move between VRAM and SYSTEM: every mapping of
		 * them re-mapped, not FRESH), between asynchronous MAPs and UNMAPs, none gated: a
		 * PREFETCH of a BO whose move is pending waits for the move in the call
		 * (docs/INTERNALS.md), so a move behind the gate would hold the test's own thread */
		for (int i = 0; i < CALLS / 4; i++) {
			bool huge;
			uint64_t pages = pick_pages(x, &huge), start = rnd_below(&x->seed, NPAGES - pages + 1);
			struct vmb_bind_op ops[2] = {op_prefetch(BASE + start * PG, pages * PG,
								 (uint32_t)rnd_below(&x->seed, VMB_REGION_COUNT))};
			uint32_t k = (uint32_t)rnd_below(&x->seed, NQ), n = 1;
			if (i % 2)
				random_op(x, &ops[n++]);
			struct vmb_sync out = sync_out(x->last[k]);
			int r = __bind_async(x->c, x->vm, x->q[k], ops, n, &out, 1);
			if (r)
				fail_msg("round %d prefetch %d: %d", round, i, r);
		}
		/* the PREFETCHes above moved what they move: the BOs' regions are settled */
		for (int k = 0; k < NQ; k++)
			assert_int_equal(__syncobj_wait1(x->c, x->last[k], 0, 20 * SEC, 0), 0);
		/* A PREFETCH behind a second gate: of the whole window (it moves the BOs mapped there),
		 * or one in a second vm that maps both BOs whole, whose copy fails every other time
		 * (that vm banned, the BOs stay). Then asynchronous MAPs, NULLs and UNMAPs on every
		 * queue: a MAP of a BO whose move is pending returns at once (a call that waited would
		 * hold the test's own thread: the test's timeout), its job follows the move and maps the
		 * backing the move leaves (it was prepared for both); some calls fail at prepare */
		int kind = round % 3;
		struct gate g2 = gate_new(x->c);
		uint32_t to = bo_region(x->c, x->bo[0]) == VMB_REGION_VRAM ? VMB_REGION_SYSTEM : VMB_REGION_VRAM;
		uint32_t k0 = (uint32_t)rnd_below(&x->seed, NQ), vm2 = 0, spf = syncobj_new(x->c, 0);
		struct vmb_sync ps[2] = {sync_out(spf), sync_in(g2.h)};
		if (kind == 0) {
			struct vmb_bind_op pf = op_prefetch(BASE, NPAGES * PG, to);
			bind_async(x->c, x->vm, x->q[k0], &pf, 1, ps, 2);
		} else {
			vm2 = vm_new(x->c, 0);
			bind1(x->c, vm2, op_map(x->bo[0], 0, BASE, BO_PAGES * PG, 0));
			bind1(x->c, vm2, op_map(x->bo[1], 0, BASE + BO_PAGES * PG, BO_PAGES * PG, 0));
			struct vmb_bind_op pf = op_prefetch(BASE, 2 * BO_PAGES * PG, to);
			bind_async(x->c, vm2, 0, &pf, 1, ps, 2);
		}
		for (int i = 0; i < CALLS / 2; i++) {
			uint32_t n = 1 + (uint32_t)rnd_below(&x->seed, 2), k = (uint32_t)rnd_below(&x->seed, NQ);
			struct vmb_sync out = sync_out(x->last[k]);
			random_call(x, k, n, &out, 1, round, CALLS + i);
		}
		if (kind == 2)
			vmb_copy_fail_after(1, -EIO);
		gate_open(&g2);
		assert_int_equal(syncobj_error(x->c, spf), kind == 2 ? -EIO : 0);
		if (kind == 2) /* it fired: bo[0] was to move */
			assert_int_equal(vmb_copy_fail_after(0, 0), 0);
		assert_int_equal(bo_region(x->c, x->bo[0]), kind == 2 ? other_region(to) : to);
		for (int k = 0; k < NQ; k++) {
			assert_int_equal(__syncobj_wait1(x->c, x->last[k], 0, 20 * SEC, 0), 0);
			assert_int_equal(syncobj_error(x->c, x->last[k]), 0);
		}
		struct vmb_syncobj_destroy d = {.handle = g.h}, d2 = {.handle = g2.h};
		assert_int_equal(vmb_syncobj_destroy(x->c, &d), 0);
		assert_int_equal(vmb_syncobj_destroy(x->c, &d2), 0);
		if (vm2) {
			struct vmb_vm_destroy vd = {.vm_id = vm2};
			assert_int_equal(vmb_vm_destroy(x->c, &vd), 0);
		}
		check_all(x, round);
		validate_client(x->c);
	}
	assert_int_equal(vmb_client_close(x->c), 0);
	free(x);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_async_queues_diff),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
