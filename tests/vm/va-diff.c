/* SPDX-License-Identifier: MIT */
/*
 * Description: VA tree differential test. Random maps and unmaps (planned, sometimes walked,
 * sometimes abandoned, sometimes applied then reverted and planned again) are run against a
 * naive model, one entry per page of a 4096-page space, once at the bottom of the 64-bit
 * space and once at its top. Contents are compared and the tree validated every 1000 ops.
 * The seed is printed; set VMB_SEED to replay.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "lib/harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/alloc.h"
#include "vm/va.h"

#define PG UINT64_C(4096)
#define NP 4096u /* pages in the model's space */
#define OPS 200000u
#define CHECK_EVERY 1000u
#define NBOS 4

static char bos[NBOS];
static unsigned long long seed;
static uint64_t rng_state;

static uint64_t rng(void)
{
	return rnd_next(&rng_state); /* lib/harness.h */
}

static uint32_t rng_below(uint32_t n)
{
	return (uint32_t)(rng() % n);
}

/* What one page maps: the obj at this page (offset already advanced to the page). */
struct mpage {
	bool mapped;
	void *bo;
	uint64_t off;
	uint32_t flags;
};

struct ctx {
	uint64_t base; /* address of page 0 of the model */
	struct vmb_va_tree t;
	struct mpage model[NP];
	unsigned long op;
	size_t peak_nodes; /* most nodes in the tree and in a plan at once */
	size_t max_gone;   /* most mappings removed in place at once (pending_mode) */
};

static uint64_t page_addr(const struct ctx *c, uint64_t pg)
{
	return c->base + pg * PG;
}

static void model_map(struct ctx *c, uint32_t s, uint32_t l, const struct vmb_va_obj *o)
{
	uint32_t pg;

	for (pg = s; pg <= l; pg++) {
		c->model[pg].mapped = true;
		c->model[pg].bo = o->bo;
		c->model[pg].flags = o->flags;
		c->model[pg].off = o->flags & VMB_VA_NULL ? 0 : o->offset + (uint64_t)(pg - s) * PG;
	}
}

static void model_unmap(struct ctx *c, uint32_t s, uint32_t l)
{
	uint32_t pg;

	for (pg = s; pg <= l; pg++)
		memset(&c->model[pg], 0, sizeof(c->model[pg]));
}

static void compare(const struct ctx *c)
{
	const struct vmb_va *va;
	uint64_t pg = 0;

	if (vmb_va_tree_validate(&c->t))
		fail_msg("op %lu: tree invalid (seed %llu)", c->op, seed);
	for (va = vmb_va_first(&c->t); va; va = vmb_va_next(va)) {
		uint64_t s, l;

		if (va->start < c->base || va->last > c->base + (NP * PG - 1))
			fail_msg("op %lu: [%#llx, %#llx] outside the space", c->op,
				 (unsigned long long)va->start, (unsigned long long)va->last);
		s = (va->start - c->base) / PG;
		l = (va->last - c->base) / PG;
		for (; pg < s; pg++)
			if (c->model[pg].mapped)
				fail_msg("op %lu: page %llu mapped in the model only (seed %llu)", c->op,
					 (unsigned long long)pg, seed);
		for (; pg <= l; pg++) {
			const struct mpage *m = &c->model[pg];
			uint64_t off = va->obj.flags & VMB_VA_NULL ? 0 : va->obj.offset + (pg - s) * PG;

			if (!m->mapped || m->bo != va->obj.bo || m->flags != va->obj.flags || m->off != off)
				fail_msg("op %lu: page %llu: tree bo %p off %#llx fl %#x, model %d bo %p off "
					 "%#llx fl %#x (seed %llu)",
					 c->op, (unsigned long long)pg, va->obj.bo,
					 (unsigned long long)off, va->obj.flags, m->mapped, m->bo,
					 (unsigned long long)m->off, m->flags, seed);
		}
	}
	for (; pg < NP; pg++)
		if (c->model[pg].mapped)
			fail_msg("op %lu: page %llu mapped in the model only (seed %llu)", c->op,
				 (unsigned long long)pg, seed);
}

/* Steps are in address order inside [s, l], MAP last, and kept pieces lie outside [s, l]. */
static void check_plan(const struct ctx *c, const struct vmb_va_plan *p, uint64_t s, uint64_t l,
		       bool map)
{
	uint64_t prev_last = 0;
	unsigned int i;

	for (i = 0; i < p->n; i++) {
		const struct vmb_va_step *st = &p->steps[i];

		if (st->kind == VMB_VA_STEP_MAP) {
			assert_true(map);
			assert_int_equal(i, p->n - 1);
			assert_true(st->va->start == s && st->va->last == l);
			continue;
		}
		assert_true(st->va->start <= l && st->va->last >= s);
		if (i)
			assert_true(st->va->start > prev_last);
		prev_last = st->va->last;
		assert_ptr_equal(vmb_va_lookup(&c->t, st->va->start), st->va); /* still in the tree */
		if (st->kind == VMB_VA_STEP_UNMAP) {
			assert_true(st->va->start >= s && st->va->last <= l);
		} else {
			assert_true(st->prev || st->next);
			if (st->prev)
				assert_true(st->prev->start == st->va->start && st->prev->last == s - 1);
			if (st->next)
				assert_true(st->next->start == l + 1 && st->next->last == st->va->last);
		}
	}
	if (map && p->n == 0) {
		const struct vmb_va *va = vmb_va_lookup(&c->t, s);

		assert_non_null(va); /* only the exact no-op gives an empty map plan */
		assert_true(va->start == s && va->last == l);
	}
}

static size_t plan_new_nodes(const struct vmb_va_plan *p)
{
	size_t n = 0;
	unsigned int i;

	for (i = 0; i < p->n; i++)
		n += p->steps[i].kind == VMB_VA_STEP_MAP ? 1 :
		     (p->steps[i].prev != NULL) + (p->steps[i].next != NULL);
	return n;
}

static unsigned int walked;

static void count_step(void *priv, const struct vmb_va_step *s)
{
	(void)priv;
	(void)s;
	walked++;
}

static void random_obj(struct vmb_va_obj *o)
{
	uint32_t kind = rng_below(10);

	o->flags = rng_below(4) == 0 ? VMB_VA_READONLY : 0;
	if (kind < 7) {
		o->bo = &bos[rng_below(NBOS)];
		o->offset = (uint64_t)rng_below(1u << 20) * PG;
	} else if (kind < 9) {
		o->bo = NULL;
		o->offset = 0;
		o->flags |= VMB_VA_NULL;
	} else {
		o->bo = NULL;
		o->offset = UINT64_C(0x7f0000000000) + (uint64_t)rng_below(1u << 20) * PG;
		o->flags |= VMB_VA_USERPTR;
	}
}

/* Lengths around the leaves' page-count limit (a key tells up to 2047 pages; longer mappings
 * fall back to reading the mapping) instead of the benchmark's mix: run_extents(). */
static bool extent_mode;

/* Applied plans left unfinished, as asynchronous jobs leave theirs until they commit (their
 * removed mappings stay in the tree, marked): run_pending(). A plan finishes once no older
 * unfinished plan overlaps its range (overlapping jobs commit in submission order; others in
 * any order). */
#define NPEND 8
static bool pending_mode;
static struct vmb_va_plan pend[NPEND];
static uint64_t pend_s[NPEND], pend_l[NPEND], pend_seq[NPEND];
static bool pend_used[NPEND];
static uint64_t pend_next_seq;

/* Finishes unfinished plans in a random order the ordering rule allows: up to @max of them (all:
 * UINT32_MAX). */
static void pend_finish(struct vmb_va_tree *t, uint32_t max)
{
	for (uint32_t done = 0; done < max;) {
		uint32_t k = rng_below(NPEND), tries;
		for (tries = 0; tries < NPEND; tries++, k = (k + 1) % NPEND) {
			if (!pend_used[k])
				continue;
			bool blocked = false;
			for (uint32_t j = 0; j < NPEND; j++)
				blocked |= pend_used[j] && pend_seq[j] < pend_seq[k] && pend_s[j] <= pend_l[k] &&
					   pend_l[j] >= pend_s[k];
			if (!blocked)
				break;
		}
		if (tries == NPEND)
			return; /* none left */
		vmb_va_plan_fini(t, &pend[k]);
		pend_used[k] = false;
		done++;
	}
}

static uint32_t extent_len(void)
{
	static const uint32_t near[] = {2045, 2046, 2047, 2048, 2049, 2050, 4094, 4095, 4096, 1023, 1024, 1025};
	uint32_t r = rng_below(100);
	return r < 45 ? 1 + rng_below(8) : r < 85 ? near[rng_below(sizeof(near) / sizeof(near[0]))] : 1 + rng_below(NP);
}

static void run(uint64_t base)
{
	const struct vmb_va_ops ops = { count_step, count_step, count_step };
	struct ctx *c = calloc(1, sizeof(*c));
	struct vmb_va_plan p;
	unsigned long noops = 0, reverts = 0, spills = 0;

	assert_non_null(c);
	c->base = base;
	vmb_va_tree_init(&c->t);
	vmb_va_plan_init(&p);

	for (c->op = 0; c->op < (extent_mode || pending_mode ? OPS / 4 : OPS); c->op++) {
		uint32_t s = rng_below(NP), len, l, r = rng_below(100), slot = NPEND;
		struct vmb_va_plan *pp = &p;
		if (pending_mode) {
			if (rng_below(4) == 0)
				pend_finish(&c->t, 1 + rng_below(NPEND));
			for (slot = 0; slot < NPEND && pend_used[slot]; slot++)
				;
			if (slot == NPEND) {
				pend_finish(&c->t, 1);
				for (slot = 0; slot < NPEND && pend_used[slot]; slot++)
					;
			}
			assert_true(slot < NPEND); /* the oldest can always finish */
			pp = &pend[slot];
		}
		bool map = rng_below(100) < 65;
		struct vmb_va_obj o;
		int again;

		/* Mostly the benchmark's 1-8 pages; sometimes long; rarely (nearly) everything. */
		len = r < 92 ? 1 + rng_below(8) : r < 99 ? 1 + rng_below(128) : 1 + rng_below(NP);
		if (extent_mode) {
			len = extent_len();
			if (rng_below(4) == 0) /* start so that the range ends exactly at a limit's page */
				s = len < NP ? rng_below(NP - len + 1) : 0;
		}
		if (len > NP - s)
			len = NP - s;
		l = s + len - 1;
		random_obj(&o);

		if (map && rng_below(20) == 0) {
			/* Map an existing mapping again, exactly: must be a no-op. */
			const struct vmb_va *va = vmb_va_lookup(&c->t, page_addr(c, s));

			if (va) {
				s = (uint32_t)((va->start - base) / PG);
				l = (uint32_t)((va->last - base) / PG);
				o = va->obj;
			}
		}

		for (again = 0; again < 2; again++) {
			uint64_t sa = page_addr(c, s), la = page_addr(c, l) + (PG - 1);
			size_t in_use;

			if (map)
				assert_int_equal(vmb_va_plan_map(&c->t, pp, sa, la, &o), 0);
			else
				assert_int_equal(vmb_va_plan_unmap(&c->t, pp, sa, la), 0);
			check_plan(c, pp, sa, la, map);
			if (map && pp->n == 0)
				noops++;
			if (pp->n > VMB_VA_PLAN_INLINE)
				spills++;
			in_use = c->t.count + plan_new_nodes(pp);
			if (in_use > c->peak_nodes)
				c->peak_nodes = in_use;

			if (rng_below(8) == 0) {
				walked = 0;
				vmb_va_plan_walk(pp, &ops, NULL);
				assert_int_equal(walked, pp->n);
			}
			if (rng_below(50) == 0) {
				/* Abandoned plan: nothing changes. */
				vmb_va_plan_fini(&c->t, pp);
				break;
			}
			vmb_va_apply(&c->t, pp);
			if (!again && rng_below(20) == 0) {
				/* Revert: the model is still the old state; then plan again. */
				vmb_va_revert(&c->t, pp);
				vmb_va_plan_fini(&c->t, pp);
				reverts++;
				if (reverts % 16 == 0)
					compare(c);
				continue;
			}
			if (pending_mode) { /* finished later, as a job's at its commit */
				pend_used[slot] = true;
				pend_s[slot] = sa;
				pend_l[slot] = la;
				pend_seq[slot] = pend_next_seq++;
			} else {
				vmb_va_plan_fini(&c->t, pp);
			}
			if (map)
				model_map(c, s, l, &o);
			else
				model_unmap(c, s, l);
			break;
		}

		assert_true(c->t.count <= NP);
		/* The cache only grows to the peak of nodes in use, give or take one slab; the
		 * B+tree has at most a leaf per mapping and fewer internal nodes, and keeps at
		 * most 64 more cached once no plan is unfinished. */
		if (pending_mode) {
			if (c->t.gone > c->max_gone)
				c->max_gone = c->t.gone;
			if (c->op % CHECK_EVERY == 0)
				compare(c);
			continue; /* unfinished plans hold nodes: the counts below do not apply */
		}
		if (c->t.slab_bytes > (c->peak_nodes + 64) * (vmb_va_node_size() + 1))
			fail_msg("op %lu: slab_bytes %zu for a peak of %zu nodes", c->op,
				 c->t.slab_bytes, c->peak_nodes);
		if (c->t.bt.nodes > 2 * c->peak_nodes + 64 + 1)
			fail_msg("op %lu: %zu tree nodes for a peak of %zu nodes", c->op,
				 c->t.bt.nodes, c->peak_nodes);
		if (c->op % CHECK_EVERY == 0)
			compare(c);
	}
	compare(c);
	if (pending_mode) {
		pend_finish(&c->t, UINT32_MAX);
		compare(c);
		assert_int_equal(c->t.gone, 0);
		printf("base %#llx: at most %zu mappings removed in place by unfinished plans\n",
		       (unsigned long long)base, c->max_gone);
		assert_true(c->max_gone > 1);
	}
	printf("base %#llx: %zu mappings, peak %zu nodes, %zu node bytes, %lu no-ops, %lu reverts, "
	       "%lu spills\n",
	       (unsigned long long)base, c->t.count, c->peak_nodes, c->t.node_bytes, noops, reverts,
	       spills);
	assert_true(noops > 0 && reverts > 0 && spills > 0);

	/* Unmap everything. */
	assert_int_equal(vmb_va_plan_unmap(&c->t, &p, 0, UINT64_MAX), 0);
	vmb_va_apply(&c->t, &p);
	vmb_va_plan_fini(&c->t, &p);
	model_unmap(c, 0, NP - 1);
	compare(c);
	assert_int_equal(c->t.count, 0);
	vmb_va_tree_fini(&c->t);
	free(c);
}

static void test_diff_bottom(void **state)
{
	(void)state;
	run(0);
}

static void test_diff_top(void **state)
{
	(void)state;
	run(UINT64_MAX - (uint64_t)NP * PG + 1); /* the last page ends at UINT64_MAX */
}

/* The same against mappings of 2045-2050, 1023-1025 and 4094-4096 pages (the key's page count
 * holds up to 2047) cut by small maps and unmaps, at both ends of the space. */
static void test_diff_extent_limits(void **state);

/* The same with up to 8 applied plans unfinished at a time, finished in an order the jobs'
 * ordering rule allows (overlapping ones in order), with lengths of both mixes: lookups, walks,
 * plans, reverts and applies over mappings removed in place by plans still unfinished. */
static void test_diff_pending_plans(void **state)
{
	(void)state;
	pending_mode = true;
	for (unsigned int k = 0; k < NPEND; k++)
		vmb_va_plan_init(&pend[k]);
	run(0);
	extent_mode = true;
	run(UINT64_MAX - (uint64_t)NP * PG + 1);
	extent_mode = false;
	pending_mode = false;
}

static void test_diff_extent_limits(void **state)
{
	(void)state;
	extent_mode = true;
	run(0);
	run(UINT64_MAX - (uint64_t)NP * PG + 1);
	extent_mode = false;
}

/*
 * Memory per mapping: 10^5 separate one-page mappings, allocator overhead counted as 16 bytes
 * per malloc'd slab, must stay within 128 bytes each. Past 2 MiB of slabs the nodes come from
 * huge-page chunks (va.c, "Node memory"); every node is cache-line aligned, in slabs too;
 * counted; all back at fini.
 */
static void test_bytes_per_mapping(void **state)
{
	const size_t n = 100000;
	struct vmb_va_obj o = { &bos[0], 0, 0 };
	struct vmb_va_tree t;
	struct vmb_va_plan p;
	size_t i, slabs_max;

	(void)state;
	vmb_va_tree_init(&t);
	vmb_va_plan_init(&p);
	for (i = 0; i < n; i++) {
		uint64_t a = (uint64_t)i * 2 * PG;

		assert_int_equal(vmb_va_plan_map(&t, &p, a, a + PG - 1, &o), 0);
		vmb_va_apply(&t, &p);
		vmb_va_plan_fini(&t, &p);
	}
	assert_int_equal(vmb_va_tree_validate(&t), 0);
	assert_int_equal(t.count, n);
	slabs_max = t.node_bytes / (vmb_va_node_size() * 32); /* generous count of mallocs */
	printf("%zu mappings, node %zu B, %zu node bytes = %.1f B per mapping\n", n,
	       vmb_va_node_size(), t.node_bytes, (double)t.node_bytes / (double)n);
	assert_true(t.node_bytes + 16 * slabs_max <= 128 * n);
	/* past the first 2 MiB of slabs, mapping nodes come from huge-page chunks, one cache line
	 * each, and node_bytes counts the chunks whole */
	assert_true(t.slab_bytes >= VMB_HUGEBUMP_CHUNK);
	assert_true(t.slab_bytes < VMB_HUGEBUMP_CHUNK + 8192);
	assert_true(t.huge.bytes >= (n * vmb_va_node_size() - t.slab_bytes));
	assert_int_equal(t.node_bytes, t.slab_bytes + t.huge.bytes + vmb_bt_bytes(&t.bt));
	struct vmb_va *last = vmb_va_lookup(&t, (uint64_t)(n - 1) * 2 * PG);
	assert_non_null(last);
	assert_int_equal((uintptr_t)last % 64, 0);
	/* every node, from a malloc'd slab or a chunk, on a cache line of its own */
	for (const struct vmb_va *va = vmb_va_first(&t); va; va = vmb_va_next(va))
		assert_int_equal((uintptr_t)va % 64, 0);
	/* all unmapped: the nodes stay cached, the bytes with them; fini gives all back */
	size_t bytes = t.node_bytes;
	assert_int_equal(vmb_va_plan_unmap(&t, &p, 0, UINT64_MAX), 0);
	vmb_va_apply(&t, &p);
	vmb_va_plan_fini(&t, &p);
	assert_int_equal(t.count, 0);
	assert_int_equal(vmb_va_tree_validate(&t), 0);
	assert_true(t.node_bytes <= bytes);
	assert_true(t.huge.bytes > 0);
	vmb_va_tree_fini(&t);
	assert_int_equal(t.node_bytes, 0);
	assert_int_equal(t.huge.bytes, 0);
}

/*
 * With every allocation failing (after vmb_va_reserve, as a vm does), one unmap of almost all
 * of 20000 mappings, in a tree filled in random order (leaves not packed), plans, applies,
 * reverts, applies again and reverts: an UNMAP step takes no tree node, neither does its
 * revert (asserted inside apply and revert too). Trims at either end and whole removals still
 * plan, and a split inside a mapping takes the reserve's tree nodes. Then, memory back, a map
 * over the middle half is applied and reverted; the bytes per mapping of the tree, within 128.
 */
static void test_large_unmap_revert(void **state)
{
	const size_t n = 20000;
	struct vmb_va_obj o = { &bos[1], 0, 0 };
	struct vmb_va_tree t;
	struct vmb_va_plan p;
	size_t *order = malloc(n * sizeof(*order)), i;

	(void)state;
	assert_non_null(order);
	for (i = 0; i < n; i++)
		order[i] = i;
	for (i = n - 1; i > 0; i--) {
		size_t j = (size_t)(rng() % (i + 1)), x = order[i];

		order[i] = order[j];
		order[j] = x;
	}
	vmb_va_tree_init(&t);
	vmb_va_plan_init(&p);
	for (i = 0; i < n; i++) {
		uint64_t a = (uint64_t)order[i] * 2 * PG;

		assert_int_equal(vmb_va_plan_map(&t, &p, a, a + PG - 1, &o), 0);
		vmb_va_apply(&t, &p);
		vmb_va_plan_fini(&t, &p);
	}
	assert_int_equal(vmb_va_tree_validate(&t), 0);
	printf("%zu mappings in random order: %zu node bytes = %.1f B per mapping, height %u\n", n,
	       t.node_bytes, (double)t.node_bytes / (double)n, t.bt.height);
	assert_true(t.node_bytes <= 128 * n);

	/* three mappings of 8 pages above the others, to cut while allocation fails */
	const uint64_t hi = (uint64_t)2 * n * PG;
	for (i = 0; i < 3; i++) {
		uint64_t a = hi + (uint64_t)i * 16 * PG;

		assert_int_equal(vmb_va_plan_map(&t, &p, a, a + 8 * PG - 1, &o), 0);
		vmb_va_apply(&t, &p);
		vmb_va_plan_fini(&t, &p);
	}

	/* unmap all but the two ends, revert, apply again, revert: no allocation */
	assert_int_equal(vmb_va_reserve(&t, 16), 0);
	size_t taken = t.bt.taken, nodes = t.bt.nodes;
	vmb_alloc_fail_from(1);
	assert_int_equal(vmb_va_plan_unmap(&t, &p, 2 * PG, (uint64_t)(2 * n - 2) * PG - 1), 0);
	assert_int_equal(p.n, n - 2);
	vmb_va_apply(&t, &p);
	assert_int_equal(t.count, 2 + 3);
	assert_null(vmb_va_lookup(&t, 4 * PG));
	assert_int_equal(vmb_va_tree_validate(&t), 0);
	vmb_va_revert(&t, &p);
	assert_int_equal(t.count, n + 3);
	assert_int_equal(vmb_va_tree_validate(&t), 0);
	vmb_va_apply(&t, &p);
	vmb_va_revert(&t, &p);
	assert_int_equal(vmb_va_tree_validate(&t), 0);
	assert_int_equal(t.bt.taken, taken);
	vmb_va_plan_fini(&t, &p);
	assert_int_equal(t.bt.nodes, nodes);

	/* a trim of the front of the first, of the back of the second, a split of the third,
	 * the removal of one of the small ones, then the whole vm range, applied and reverted */
	const uint64_t cut[4][2] = {
		{ hi, hi + 2 * PG - 1 },
		{ hi + 16 * PG + 6 * PG, hi + 16 * PG + 8 * PG - 1 },
		{ hi + 32 * PG + 3 * PG, hi + 32 * PG + 4 * PG - 1 },
		{ 0, PG - 1 },
	};
	for (i = 0; i < 4; i++) {
		assert_int_equal(vmb_va_plan_unmap(&t, &p, cut[i][0], cut[i][1]), 0);
		assert_int_equal(p.n, 1);
		vmb_va_apply(&t, &p);
		vmb_va_plan_fini(&t, &p);
		assert_int_equal(vmb_va_tree_validate(&t), 0);
	}
	assert_int_equal(t.count, n + 3); /* the split added one, the removal took one */
	assert_null(vmb_va_lookup(&t, hi + 35 * PG));
	assert_non_null(vmb_va_lookup(&t, hi + 36 * PG));
	assert_int_equal(vmb_va_plan_unmap(&t, &p, 0, UINT64_MAX), 0);
	assert_int_equal(p.n, n + 3);
	vmb_va_apply(&t, &p);
	assert_int_equal(t.count, 0);
	assert_null(vmb_va_first(&t));
	vmb_va_revert(&t, &p);
	assert_int_equal(t.count, n + 3);
	assert_int_equal(vmb_va_tree_validate(&t), 0);
	vmb_va_plan_fini(&t, &p);
	vmb_alloc_fail_from(0);

	/* a map over the middle half: the UNMAPs of the mappings there, then one MAP */
	assert_int_equal(vmb_va_plan_map(&t, &p, (uint64_t)n / 2 * PG,
					 (uint64_t)n * 3 / 2 * PG - 1, &o), 0);
	vmb_va_apply(&t, &p);
	assert_int_equal(vmb_va_tree_validate(&t), 0);
	vmb_va_revert(&t, &p);
	assert_int_equal(t.count, n + 3);
	assert_int_equal(vmb_va_tree_validate(&t), 0);
	vmb_va_plan_fini(&t, &p);
	vmb_va_tree_fini(&t);
	free(order);
}

/*
 * Removed mappings stay in the tree until their plan ends: one call (plans applied in turn,
 * then reverted newest first, or finished) unmaps B, maps N over B's range and part of A, then
 * trims N's front, whose kept piece must move past B in the tree's order. Lookups never see B;
 * the trim and every revert take no tree node (also while allocation fails); the revert gives
 * back A and B exactly; done again and finished, the tree is A's front, N's back.
 */
static void test_removed_in_place(void **state)
{
	struct vmb_va_obj a = { &bos[1], 0, 0 }, b = { &bos[2], 0, 0 }, nobj = { &bos[3], 0, 0 };
	struct vmb_va_tree t;
	struct vmb_va_plan p[3];
	struct vmb_va *va_a, *va_b;
	int round;

	(void)state;
	vmb_va_tree_init(&t);
	vmb_va_plan_init(&p[0]);
	assert_int_equal(vmb_va_plan_map(&t, &p[0], 0, 10 * PG - 1, &a), 0);
	vmb_va_apply(&t, &p[0]);
	vmb_va_plan_fini(&t, &p[0]);
	assert_int_equal(vmb_va_plan_map(&t, &p[0], 10 * PG, 20 * PG - 1, &b), 0);
	vmb_va_apply(&t, &p[0]);
	vmb_va_plan_fini(&t, &p[0]);
	va_a = vmb_va_lookup(&t, 0);
	va_b = vmb_va_lookup(&t, 10 * PG);
	assert_int_equal(vmb_va_reserve(&t, 16), 0);

	for (round = 0; round < 2; round++) {
		size_t taken;

		for (int i = 0; i < 3; i++)
			vmb_va_plan_init(&p[i]);
		assert_int_equal(vmb_va_plan_unmap(&t, &p[0], 10 * PG, 20 * PG - 1), 0);
		vmb_va_apply(&t, &p[0]);
		assert_null(vmb_va_lookup(&t, 12 * PG));
		assert_int_equal(vmb_va_plan_map(&t, &p[1], 5 * PG, 30 * PG - 1, &nobj), 0);
		vmb_va_apply(&t, &p[1]);
		assert_int_equal(vmb_va_tree_validate(&t), 0);
		assert_ptr_equal(vmb_va_lookup(&t, 10 * PG)->obj.bo, &bos[3]);
		/* N's front goes: its back piece [15, 29] sorts after B (10), still in the tree */
		vmb_alloc_fail_from(1);
		taken = t.bt.taken;
		assert_int_equal(vmb_va_plan_unmap(&t, &p[2], 5 * PG, 15 * PG - 1), 0);
		vmb_va_apply(&t, &p[2]);
		assert_int_equal(t.bt.taken, taken);
		assert_int_equal(vmb_va_tree_validate(&t), 0);
		assert_null(vmb_va_lookup(&t, 12 * PG));
		assert_null(vmb_va_find_first(&t, 5 * PG, 15 * PG - 1));
		assert_int_equal(vmb_va_lookup(&t, 15 * PG)->start, 15 * PG);
		assert_int_equal(vmb_va_lookup(&t, 15 * PG)->obj.offset, 10 * PG);
		assert_int_equal(vmb_va_lookup(&t, 0)->last, 5 * PG - 1);
		assert_int_equal(t.count, 2);
		if (round == 0) {
			for (int i = 3; i-- > 0;) {
				vmb_va_revert(&t, &p[i]);
				assert_int_equal(vmb_va_tree_validate(&t), 0);
				vmb_va_plan_fini(&t, &p[i]);
			}
			assert_int_equal(t.bt.taken, taken);
			vmb_alloc_fail_from(0);
			assert_int_equal(t.count, 2);
			assert_ptr_equal(vmb_va_lookup(&t, 0), va_a);
			assert_ptr_equal(vmb_va_lookup(&t, 19 * PG), va_b);
			assert_int_equal(va_a->last, 10 * PG - 1);
		} else {
			vmb_alloc_fail_from(0);
			for (int i = 3; i-- > 0;)
				vmb_va_plan_fini(&t, &p[i]);
			assert_int_equal(vmb_va_tree_validate(&t), 0);
			assert_int_equal(t.bt.count, 2); /* B out of the tree at last */
		}
	}
	vmb_va_tree_fini(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_diff_bottom),
		cmocka_unit_test(test_diff_top),
		cmocka_unit_test(test_diff_extent_limits),
		cmocka_unit_test(test_diff_pending_plans),
		cmocka_unit_test(test_bytes_per_mapping),
		cmocka_unit_test(test_large_unmap_revert),
		cmocka_unit_test(test_removed_in_place),
	};
	seed = test_seed("va-diff");
	rng_state = seed;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
