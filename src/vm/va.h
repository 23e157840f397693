/* SPDX-License-Identifier: MIT */
/*
 * VA manager: the logical state of one GPU virtual address space.
 *
 * A tree of non-overlapping mappings (struct vmb_va), each a closed interval [start, last]
 * (last = addr + range - 1, so the top of a 64-bit space cannot overflow); the public API keeps
 * (addr, range). A B+tree (core/btree.h) keyed by start, 63 keys a node, so a lookup reads a few
 * cache lines per level and 10^6 mappings are 4 levels; since mappings never overlap,
 * "which mappings intersect [s, l]" is one descent plus in-order steps.
 *
 * Planning is separate from applying, as in the kernel's GPUVA manager:
 *   vmb_va_plan_map()/vmb_va_plan_unmap()  work out the steps (MAP, REMAP with the kept prev/next
 *                                          pieces, UNMAP) against the tree as it is now and
 *                                          allocate every node the steps will insert (and the
 *                                          tree nodes their inserts may take); the tree is not
 *                                          touched; may fail (-ENOMEM);
 *   vmb_va_plan_walk()                     hands each step to a backend through callbacks
 *                                          (the vm layer turns them into page-table work);
 *   vmb_va_apply()                         makes the steps true in the tree (cannot fail); an
 *                                          UNMAP step's mapping stays in the tree, marked
 *                                          removed and invisible to every lookup, until fini;
 *   vmb_va_revert()                        undoes an applied plan exactly (cannot fail, takes
 *                                          no memory);
 *   vmb_va_plan_fini()                     frees what the plan no longer needs: the removed
 *                                          nodes (out of the tree now) if it stays applied, the
 *                                          new ones if it was reverted or never applied.
 *
 * Locking: none inside. The owner (struct vmb_vm) holds its lock around every call.
 */
#ifndef VMB_VM_VA_H
#define VMB_VM_VA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/btree.h"
#include "core/list.h"

/* Mapping flags (struct vmb_va_obj.flags). */
#define VMB_VA_READONLY (1u << 0) /* GPU writes fault */
#define VMB_VA_NULL (1u << 1)     /* sparse: no backing, reads 0, writes dropped; obj.bo == NULL */
#define VMB_VA_USERPTR (1u << 2)  /* application memory: obj.bo == NULL, obj.offset = host address */

/* What a mapping maps. Two mappings with equal objs at matching offsets map the same memory. */
struct vmb_va_obj {
	void *bo;        /* owner's per-(vm, BO) object, opaque here; NULL for NULL/USERPTR */
	uint64_t offset; /* offset into the BO at `start` (USERPTR: host address at `start`; NULL: 0) */
	uint32_t flags;  /* VMB_VA_* */
};

/*
 * One cache line (64 B): priv lives in the tail padding of obj (an anonymous union), so a
 * whole-struct assignment to obj may overwrite it; only va.c assigns obj whole, before it sets
 * priv. Read and write obj's members and priv freely.
 */
struct vmb_va {
	uint64_t start, last; /* closed interval, both page aligned (last + 1 is) */
	union {
		struct vmb_va_obj obj;
		struct {
			unsigned char obj_bytes_[offsetof(struct vmb_va_obj, flags) + sizeof(uint32_t)];
			uint32_t priv; /* free for the owner (page sizes used, say) */
		};
	};
	struct vmb_list bo_link; /* owner's list of mappings of obj.bo; not touched here */
	struct vmb_bt_item bt;   /* the tree's link (its leaf); written by va.c only */
};

#define VMB_VA_RING 16 /* freed mapping nodes cached unwritten (struct vmb_va_tree.ring) */

struct vmb_va_tree {
	struct vmb_bt bt;  /* the mappings by start, and the removed ones of applied plans not yet
			    * finished (va.c: "Removed in place"); its nodes come from its own cache */
	size_t count;      /* mappings in the tree (the removed ones not counted) */
	size_t gone;       /* removed ones still in the tree: while 0, planning needs no mapping
			    * to tell whether a slot's mapping is removed */
	/* node cache: freed nodes are kept for reuse; see vmb_va_node_bytes(). The last few freed
	 * are kept in `ring` (not written when freed: a node a plan removed is likely out of the
	 * caches, and the MAP that reuses it asks for it before its descent), the rest chained
	 * through obj.bo from free_nodes; free_count counts both */
	struct vmb_va *free_nodes;
	size_t free_count;
	struct vmb_va *ring[VMB_VA_RING];
	unsigned int ring_n;
	size_t node_bytes; /* bytes currently allocated for mapping and tree nodes (in the tree,
			    * in plans, cached): slab_bytes + huge.bytes + the tree's nodes */
	size_t slab_bytes; /* of which malloc'd mapping nodes */
	void *slabs;       /* nodes are malloc'd in slabs, chained here, freed by tree_fini */
	struct vmb_hugebump huge; /* mapping nodes past the first 2 MiB of slabs: from huge-page
				   * chunks (va.c, "Node memory"), unmapped by tree_fini */
	uint64_t granule;  /* the device's minimum page size (0: 4 KiB): every range planned starts
			    * and ends on one, so no split falls inside a granule (asserted) */
	/* The owner's reserve for removals that must not fail (vmb_va_reserve; 0 and NULL: none).
	 * `floor` cached nodes are kept back for trims: a MAP, or a split inside a mapping (two
	 * pieces kept), takes a cached node only if `floor` stay, else grows the cache or fails.
	 * `spare_steps`: a step array of `spare_cap`, lent to one plan at a time (`spare_busy`)
	 * when growing its own steps fails. Tree nodes: vmb_va_reserve() keeps
	 * VMB_VA_TREE_RESERVE(t) cached for the one insert of a split; trims and removals take
	 * none. */
	size_t floor;
	struct vmb_va_step *spare_steps;
	size_t spare_cap;
	bool spare_busy;
	/* the step array of VMB_VA_PLAN_KEPT steps that the last plan to finish with one left
	 * (va.c, va_plan_grow), for the next plan that spills its inline steps (an UNMAP of a
	 * chunk of 32 mappings: no malloc and realloc's, no free on the thread that commits), or
	 * NULL */
	struct vmb_va_step *kept_steps;
};

enum vmb_va_step_kind {
	VMB_VA_STEP_MAP,   /* insert `va` (new node) */
	VMB_VA_STEP_REMAP, /* remove `va`, keep `prev` and/or `next` (new nodes; either may be NULL) */
	VMB_VA_STEP_UNMAP, /* remove `va` entirely */
};

struct vmb_va_step {
	enum vmb_va_step_kind kind;
	struct vmb_va *va;
	struct vmb_va *prev, *next;
};

#define VMB_VA_PLAN_INLINE 6
#define VMB_VA_PLAN_KEPT 64 /* a plan's first spill: this many steps, an array the tree keeps */

/*
 * The steps of one MAP or UNMAP, in address order, MAP last. Steps live inline when few (the
 * common case costs no allocation) and spill to the heap otherwise.
 */
struct vmb_va_plan {
	struct vmb_va_step *steps;
	unsigned int n, cap;
	bool applied;
	struct vmb_va *map_after; /* private to va.c: a mapping the MAP node will follow, or NULL */
	struct vmb_bt_hint map_hint; /* private to va.c: the leaf map_after was seen in */
	struct vmb_bt_hint first_hint; /* private to va.c: the leaf steps[0].va was seen in (the
					* steps stay 32 B: a vm keeps a spare array of one a mapping) */
	size_t tree_nodes;        /* private to va.c: tree nodes apply may take (planned) */
	struct vmb_va_step inline_steps[VMB_VA_PLAN_INLINE];
};

struct vmb_va_ops {
	void (*step_map)(void *priv, const struct vmb_va_step *s);
	void (*step_remap)(void *priv, const struct vmb_va_step *s);
	void (*step_unmap)(void *priv, const struct vmb_va_step *s);
};

void vmb_va_tree_init(struct vmb_va_tree *t);
/* Frees every node (tree and cache). The owner must have dropped its own references first. */
void vmb_va_tree_fini(struct vmb_va_tree *t);

/* Lowest-addressed mapping intersecting [start, last], or NULL. */
struct vmb_va *vmb_va_find_first(const struct vmb_va_tree *t, uint64_t start, uint64_t last);
/* The mapping containing @addr, or NULL. */
struct vmb_va *vmb_va_lookup(const struct vmb_va_tree *t, uint64_t addr);
struct vmb_va *vmb_va_first(const struct vmb_va_tree *t);
struct vmb_va *vmb_va_next(const struct vmb_va *va);
struct vmb_va *vmb_va_prev(const struct vmb_va *va);

void vmb_va_plan_init(struct vmb_va_plan *p);
/*
 * Plan mapping [start, last] to @obj over whatever is there. An existing mapping equal in range
 * and obj gives an empty plan (nothing to do). Returns 0 or -ENOMEM (plan left empty).
 */
int vmb_va_plan_map(struct vmb_va_tree *t, struct vmb_va_plan *p, uint64_t start, uint64_t last,
		    const struct vmb_va_obj *obj);
/*
 * Plan removing everything in [start, last]; a hole gives an empty plan. 0 or -ENOMEM. A mapping
 * cut at one end (a trim) takes its kept piece from the cache down to the last node; one cut
 * inside (two pieces kept) leaves t->floor nodes in it, and its second piece, an insert into
 * the tree, takes tree nodes when the leaf it goes into is full: from the tree's cache
 * (VMB_VA_TREE_RESERVE), else allocated, else -ENOMEM. Whole removals and trims take no tree
 * node, and neither does any apply or revert but the inserts planned here.
 */
int vmb_va_plan_unmap(struct vmb_va_tree *t, struct vmb_va_plan *p, uint64_t start, uint64_t last);
/*
 * Add to @p (not applied) the removal of the whole of @va, a mapping of the tree not yet in @p:
 * an UNMAP step, no node allocated (UNMAP_ALL plans the mappings of a BO this way, in any
 * order). 0 or -ENOMEM (the steps could not grow and the spare array is too small or lent).
 */
int vmb_va_plan_unmap_node(struct vmb_va_tree *t, struct vmb_va_plan *p, struct vmb_va *va);
/*
 * Tree nodes vmb_va_reserve() keeps cached: two inserts' worst case at the tree's height (an
 * insert splits a full leaf and each full level above it, a new root too when all are).
 */
#define VMB_VA_TREE_RESERVE(t) (2 * ((size_t)(t)->bt.height + 1))

/*
 * The owner's reserve (refilled outside the paths that must not fail): at least @nodes cached
 * nodes, VMB_VA_TREE_RESERVE(t) cached tree nodes (for a split's insert), and a spare step
 * array for as many steps as the tree has mappings (one plan can then remove them all without
 * allocating). 0 or -ENOMEM (what could be had is kept).
 */
int vmb_va_reserve(struct vmb_va_tree *t, size_t nodes);
void vmb_va_plan_walk(const struct vmb_va_plan *p, const struct vmb_va_ops *ops, void *priv);
void vmb_va_apply(struct vmb_va_tree *t, struct vmb_va_plan *p);
void vmb_va_revert(struct vmb_va_tree *t, struct vmb_va_plan *p);
void vmb_va_plan_fini(struct vmb_va_tree *t, struct vmb_va_plan *p);

/* sizeof(struct vmb_va): the bytes one mapping's node needs (its share of the tree's nodes,
 * allocator and cache overhead not counted). */
size_t vmb_va_node_size(void);

/*
 * Bytes malloc'd for nodes right now: in the tree, held by plans and cached. The cache never
 * shrinks before vmb_va_tree_fini(), so node_bytes / count is the cost of a live mapping.
 */
static inline size_t vmb_va_node_bytes(const struct vmb_va_tree *t)
{
	return t->node_bytes;
}

/*
 * Debug check of the whole tree: the B+tree's shape and links and keys, intervals ordered and
 * non-overlapping, page aligned, count matches, flags consistent with obj (NULL/USERPTR have no
 * bo). Returns 0 or -EUCLEAN (and prints the first problem to stderr).
 */
int vmb_va_tree_validate(const struct vmb_va_tree *t);

#endif
