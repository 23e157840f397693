/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the VA manager (src/vm/va.h) against a naive model.
 *
 * The input is decoded into transactions, as the bind engine drives the tree: 1-4 MAP/UNMAP
 * plans, each planned against the tree as the previous ones left it and applied at once (some
 * walked, some abandoned before their apply), then either kept, or reverted newest first (a
 * failed multi-op bind); plans are finished newest first as vm/bind.c does. The model keeps one
 * entry per page of a small space (at the bottom of the 64-bit space, at its top, or in the
 * middle) holding what the page maps and which mapping (node) it belongs to, so node boundaries
 * are checked exactly, not just contents: a MAP makes one node, cuts the nodes it overlaps into
 * the pieces outside it, and is a no-op only when a node equal in range and obj is there.
 * After every step: vmb_va_tree_validate(), the tree against the model node by node, lookups,
 * the plan's shape, and the node cache's size. Any mismatch aborts.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vm/va.h"

/* The harness's own checking code is left out of the coverage libFuzzer steers by: its loops
 * would drown the library's edges in features and slow every run down. */
#define NOCOV __attribute__((no_sanitize("coverage")))

#define PG UINT64_C(4096)
#define NP 128u /* pages in the model's space: small, so that operations overlap */
#define MAX_STEPS 4000u
#define MAX_PLANS 4u
#define NBOS 4

#define CHECK(cond, ...)                                                                  \
	do {                                                                              \
		if (!(cond)) {                                                            \
			fprintf(stderr, "va fuzz: step %u: check failed: %s: ", step, #cond); \
			fprintf(stderr, __VA_ARGS__);                                     \
			fputc('\n', stderr);                                              \
			abort();                                                          \
		}                                                                         \
	} while (0)

/* ---- input ---- */

static const uint8_t *in_p;
static size_t in_n;

NOCOV static uint8_t u8(void)
{
	if (!in_n)
		return 0;
	in_n--;
	return *in_p++;
}

NOCOV static uint16_t u16(void)
{
	uint16_t v = u8();
	return (uint16_t)(v | (uint16_t)u8() << 8);
}

NOCOV static uint32_t below(uint32_t n)
{
	return n ? u16() % n : 0;
}

/* ---- model ---- */

static char bos[NBOS];

struct mpage {
	bool mapped;
	void *bo;
	uint64_t off; /* at this page */
	uint32_t flags;
	uint32_t node; /* mapping id: pages of one mapping share it */
};

static unsigned int step;
static uint64_t base;
static struct vmb_va_tree tree;
static struct mpage model[NP];
static uint32_t next_node;
static size_t peak_nodes;

NOCOV static uint64_t page_addr(uint32_t pg)
{
	return base + (uint64_t)pg * PG;
}

/* The piece of a node on the far side of @at (pages at..) becomes a node of its own. */
NOCOV static void model_cut(uint32_t at)
{
	if (at == 0 || at >= NP || !model[at].mapped || !model[at - 1].mapped ||
	    model[at].node != model[at - 1].node)
		return;
	uint32_t old = model[at].node, id = ++next_node;
	for (uint32_t p = at; p < NP && model[p].mapped && model[p].node == old; p++)
		model[p].node = id;
}

NOCOV static void model_map(uint32_t s, uint32_t l, const struct vmb_va_obj *o)
{
	model_cut(s);
	model_cut(l + 1);
	uint32_t id = ++next_node;
	for (uint32_t pg = s; pg <= l; pg++) {
		model[pg].mapped = true;
		model[pg].bo = o->bo;
		model[pg].flags = o->flags;
		model[pg].off = o->flags & VMB_VA_NULL ? 0 : o->offset + (uint64_t)(pg - s) * PG;
		model[pg].node = id;
	}
}

NOCOV static void model_unmap(uint32_t s, uint32_t l)
{
	model_cut(s);
	model_cut(l + 1);
	for (uint32_t pg = s; pg <= l; pg++)
		memset(&model[pg], 0, sizeof(model[pg]));
}

/* The model node containing page @pg: [*s, *l]. */
NOCOV static void model_node(uint32_t pg, uint32_t *s, uint32_t *l)
{
	uint32_t id = model[pg].node;
	*s = *l = pg;
	while (*s > 0 && model[*s - 1].mapped && model[*s - 1].node == id)
		(*s)--;
	while (*l + 1 < NP && model[*l + 1].mapped && model[*l + 1].node == id)
		(*l)++;
}

NOCOV static void compare(void)
{
	const struct vmb_va *va, *prev = NULL;
	uint32_t pg = 0;
	size_t n = 0;

	CHECK(vmb_va_tree_validate(&tree) == 0, "tree invalid");
	for (va = vmb_va_first(&tree); va; prev = va, va = vmb_va_next(va), n++) {
		CHECK(vmb_va_prev(va) == prev, "prev link of [%#llx, %#llx]", (unsigned long long)va->start,
		      (unsigned long long)va->last);
		CHECK(va->start >= base && va->last <= base + (NP * PG - 1) && va->start <= va->last,
		      "[%#llx, %#llx] outside the space", (unsigned long long)va->start,
		      (unsigned long long)va->last);
		uint32_t s = (uint32_t)((va->start - base) / PG), l = (uint32_t)((va->last - base) / PG);
		for (; pg < s; pg++)
			CHECK(!model[pg].mapped, "page %u mapped in the model only", pg);
		uint32_t ms, ml;
		CHECK(model[s].mapped, "page %u mapped in the tree only", s);
		model_node(s, &ms, &ml);
		CHECK(ms == s && ml == l, "tree node pages [%u, %u], model node [%u, %u]", s, l, ms, ml);
		for (; pg <= l; pg++) {
			const struct mpage *m = &model[pg];
			uint64_t off = va->obj.flags & VMB_VA_NULL ? 0 : va->obj.offset + (pg - s) * PG;
			CHECK(m->mapped && m->bo == va->obj.bo && m->flags == va->obj.flags && m->off == off,
			      "page %u: tree bo %p off %#llx fl %#x, model %d bo %p off %#llx fl %#x", pg,
			      va->obj.bo, (unsigned long long)off, va->obj.flags, m->mapped, m->bo,
			      (unsigned long long)m->off, m->flags);
		}
	}
	for (; pg < NP; pg++)
		CHECK(!model[pg].mapped, "page %u mapped in the model only", pg);
	CHECK(n == tree.count, "%zu nodes walked, count %zu", n, tree.count);
}

/* Lookups of a few pages against the model. */
NOCOV static void check_lookups(void)
{
	for (int i = 0; i < 3; i++) {
		uint32_t pg = below(NP), len = 1 + below(NP - pg);
		const struct vmb_va *va = vmb_va_lookup(&tree, page_addr(pg) + below(PG));
		if (model[pg].mapped) {
			uint32_t s, l;
			model_node(pg, &s, &l);
			CHECK(va && va->start == page_addr(s) && va->last == page_addr(l) + PG - 1,
			      "lookup of page %u", pg);
		} else {
			CHECK(!va, "lookup of unmapped page %u found [%#llx, %#llx]", pg,
			      (unsigned long long)va->start, (unsigned long long)va->last);
		}
		uint32_t first = pg;
		while (first < pg + len && !model[first].mapped)
			first++;
		va = vmb_va_find_first(&tree, page_addr(pg), page_addr(pg + len - 1) + PG - 1);
		if (first == pg + len) {
			CHECK(!va, "find_first [%u, %u] found a mapping in a hole", pg, pg + len - 1);
		} else {
			uint32_t s, l;
			model_node(first, &s, &l);
			CHECK(va && va->start == page_addr(s), "find_first [%u, %u]: want node at page %u", pg,
			      pg + len - 1, s);
		}
	}
}

/* Steps in address order inside [s, l], MAP last, kept pieces outside [s, l]. */
NOCOV static void check_plan(const struct vmb_va_plan *p, uint64_t s, uint64_t l, bool map)
{
	uint64_t prev_last = 0;

	CHECK(!p->applied, "a new plan is applied");
	for (unsigned int i = 0; i < p->n; i++) {
		const struct vmb_va_step *st = &p->steps[i];

		if (st->kind == VMB_VA_STEP_MAP) {
			CHECK(map && i == p->n - 1, "MAP step %u of %u", i, p->n);
			CHECK(st->va->start == s && st->va->last == l, "MAP node range");
			continue;
		}
		CHECK(st->va->start <= l && st->va->last >= s, "step %u misses the range", i);
		CHECK(i == 0 || st->va->start > prev_last, "steps out of order");
		prev_last = st->va->last;
		CHECK(vmb_va_lookup(&tree, st->va->start) == st->va, "step %u node not in the tree", i);
		if (st->kind == VMB_VA_STEP_UNMAP) {
			CHECK(st->va->start >= s && st->va->last <= l, "UNMAP of a node sticking out");
		} else {
			CHECK(st->kind == VMB_VA_STEP_REMAP && (st->prev || st->next), "REMAP without pieces");
			if (st->prev)
				CHECK(st->prev->start == st->va->start && st->prev->last == s - 1, "prev piece");
			if (st->next)
				CHECK(st->next->start == l + 1 && st->next->last == st->va->last, "next piece");
			if (st->prev)
				CHECK(st->prev->obj.bo == st->va->obj.bo && st->prev->obj.flags == st->va->obj.flags &&
				      st->prev->obj.offset == st->va->obj.offset, "prev piece obj");
			if (st->next) {
				uint64_t off = st->va->obj.flags & VMB_VA_NULL
						       ? 0
						       : st->va->obj.offset + (st->next->start - st->va->start);
				CHECK(st->next->obj.bo == st->va->obj.bo && st->next->obj.flags == st->va->obj.flags &&
				      st->next->obj.offset == off, "next piece obj");
			}
		}
	}
	if (map && p->n == 0) {
		const struct vmb_va *va = vmb_va_lookup(&tree, s);
		CHECK(va && va->start == s && va->last == l, "empty MAP plan without an equal node");
	}
	if (!map && p->n == 0)
		CHECK(!vmb_va_find_first(&tree, s, l), "empty UNMAP plan over a mapping");
}

NOCOV static size_t plan_new_nodes(const struct vmb_va_plan *p)
{
	size_t n = 0;
	for (unsigned int i = 0; i < p->n; i++)
		n += p->steps[i].kind == VMB_VA_STEP_MAP ? 1 : (p->steps[i].prev != NULL) + (p->steps[i].next != NULL);
	return n;
}

static unsigned int walked[3];

NOCOV static void walk_map(void *priv, const struct vmb_va_step *s) { (void)priv; CHECK(s->kind == VMB_VA_STEP_MAP, "map cb"); walked[0]++; }
NOCOV static void walk_remap(void *priv, const struct vmb_va_step *s) { (void)priv; CHECK(s->kind == VMB_VA_STEP_REMAP, "remap cb"); walked[1]++; }
NOCOV static void walk_unmap(void *priv, const struct vmb_va_step *s) { (void)priv; CHECK(s->kind == VMB_VA_STEP_UNMAP, "unmap cb"); walked[2]++; }

static void random_obj(struct vmb_va_obj *o)
{
	uint8_t k = u8();

	o->flags = k & 0x10 ? VMB_VA_READONLY : 0;
	switch (k & 7) {
	default:
		o->bo = &bos[(k >> 5) % NBOS];
		o->offset = (uint64_t)below(64) * PG;
		break;
	case 5:
	case 6:
		o->bo = NULL;
		o->offset = 0;
		o->flags |= VMB_VA_NULL;
		break;
	case 7:
		o->bo = NULL;
		o->offset = UINT64_C(0x7f0000000000) + (uint64_t)below(64) * PG;
		o->flags |= VMB_VA_USERPTR;
		break;
	}
}

struct op {
	bool map;
	uint32_t s, l;
	struct vmb_va_obj obj;
};

static void random_op(struct op *op)
{
	uint8_t k = u8();
	uint32_t len;

	op->map = (k & 3) != 0;
	op->s = below(NP);
	switch ((k >> 2) & 7) {
	case 0: case 1: case 2: case 3: len = 1 + below(8); break;
	case 4: case 5: len = 1 + below(64); break;
	case 6: len = 1 + below(NP); break;
	default: len = NP; op->s = 0; break;
	}
	if (len > NP - op->s)
		len = NP - op->s;
	op->l = op->s + len - 1;
	random_obj(&op->obj);
	if (op->map && (k & 0x20)) {
		/* the same range and obj as an existing node (a no-op), or the same range, or the obj
		 * of the node there continued (an adjacent node with a matching offset) */
		const struct vmb_va *va = vmb_va_lookup(&tree, page_addr(op->s));
		if (va) {
			op->s = (uint32_t)((va->start - base) / PG);
			if (k & 0x40) {
				op->l = (uint32_t)((va->last - base) / PG);
				op->obj = va->obj;
			} else if (op->l < NP - 1 && (k & 0x80)) {
				op->obj = va->obj;
			}
		}
	}
}

static void one_transaction(void)
{
	static struct vmb_va_plan plans[MAX_PLANS];
	static const struct vmb_va_ops ops = {walk_map, walk_remap, walk_unmap};
	static struct mpage saved[NP];
	static uint32_t saved_next;
	struct op o[MAX_PLANS];
	uint8_t k = u8();
	unsigned int n = 1 + (k & 3), applied = 0;
	size_t held = 0;
	bool commit = (k & 0x1c) != 0, abandon_last = (k & 0xe0) == 0xe0;

	memcpy(saved, model, sizeof(model));
	saved_next = next_node;
	for (unsigned int i = 0; i < n; i++) {
		struct vmb_va_plan *p = &plans[i];
		uint64_t sa, la;
		int err;

		random_op(&o[i]);
		sa = page_addr(o[i].s);
		la = page_addr(o[i].l) + PG - 1;
		vmb_va_plan_init(p);
		err = o[i].map ? vmb_va_plan_map(&tree, p, sa, la, &o[i].obj) : vmb_va_plan_unmap(&tree, p, sa, la);
		CHECK(err == 0, "plan returned %d", err);
		check_plan(p, sa, la, o[i].map);
		/* in use: the tree, the nodes earlier applied plans removed (freed at their fini),
		 * and this plan's new ones */
		size_t in_use = tree.count + held + plan_new_nodes(p);
		if (in_use > peak_nodes)
			peak_nodes = in_use;
		if (u8() & 1) {
			memset(walked, 0, sizeof(walked));
			vmb_va_plan_walk(p, &ops, NULL);
			CHECK(walked[0] + walked[1] + walked[2] == p->n, "walk called %u callbacks for %u steps",
			      walked[0] + walked[1] + walked[2], p->n);
		}
		if (abandon_last && i == n - 1)
			break; /* planned, never applied: a failure before the apply */
		vmb_va_apply(&tree, p);
		CHECK(p->applied, "apply did not mark the plan");
		held += p->n - (o[i].map && p->n ? 1 : 0);
		applied++;
		if (o[i].map)
			model_map(o[i].s, o[i].l, &o[i].obj);
		else
			model_unmap(o[i].s, o[i].l);
		compare();
	}
	if (commit && !abandon_last) {
		for (unsigned int i = n; i-- > 0;)
			vmb_va_plan_fini(&tree, &plans[i]);
	} else {
		/* unwind as job_end() does: newest first, revert the applied ones, finish each */
		for (unsigned int i = n; i-- > 0;) {
			if (i < applied)
				vmb_va_revert(&tree, &plans[i]);
			vmb_va_plan_fini(&tree, &plans[i]);
		}
		memcpy(model, saved, sizeof(model));
		next_node = saved_next;
		/* restored node ids are the old ones: fine, ids only need to be unique per node */
		next_node += 1000;
	}
	compare();
	check_lookups();
	CHECK(tree.count <= NP, "%zu nodes", tree.count);
	/* the node cache only grows to the peak of nodes in use, give or take one slab */
	CHECK(tree.slab_bytes <= (peak_nodes + 64) * (vmb_va_node_size() + 1),
	      "slab_bytes %zu for a peak of %zu nodes", tree.slab_bytes, peak_nodes);
	/* the B+tree: at most a leaf per mapping and fewer internal nodes, 64 more cached */
	CHECK(tree.bt.nodes <= 2 * peak_nodes + 64 + 1, "%zu tree nodes for a peak of %zu nodes",
	      tree.bt.nodes, peak_nodes);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vmb_va_plan p;

	in_p = data;
	in_n = size;
	step = 0;
	switch (u8() % 3) {
	case 0: base = 0; break;
	case 1: base = UINT64_MAX - (uint64_t)NP * PG + 1; break; /* the last page ends at UINT64_MAX */
	default: base = (uint64_t)u16() << 32 | (uint64_t)u16() << 16; break;
	}
	memset(model, 0, sizeof(model));
	next_node = 0;
	peak_nodes = 0;
	vmb_va_tree_init(&tree);
	compare();
	for (step = 1; in_n && step <= MAX_STEPS; step++)
		one_transaction();

	/* unmap everything, across the whole 64-bit space */
	vmb_va_plan_init(&p);
	CHECK(vmb_va_plan_unmap(&tree, &p, 0, UINT64_MAX) == 0, "unmap all");
	vmb_va_apply(&tree, &p);
	vmb_va_plan_fini(&tree, &p);
	model_unmap(0, NP - 1);
	compare();
	CHECK(tree.count == 0, "%zu nodes left", tree.count);
	vmb_va_tree_fini(&tree);
	return 0;
}
