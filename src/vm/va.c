/* SPDX-License-Identifier: MIT */
/*
 * VA manager: the tree of mappings of one GPU virtual address space and the split/merge
 * planner.
 *
 * Overview
 * ========
 *
 * A struct vmb_va_tree holds struct vmb_va nodes, each a closed interval [start, last] of
 * whole 4 KiB pages mapping one struct vmb_va_obj (a BO at an offset, a NULL/sparse range,
 * or application memory), in a B+tree by start (core/btree.h: 63 keys a node, a node's lines
 * asked for at once, so a descent costs about one miss a level, and 10^6 mappings are 4
 * levels where a red-black tree had 20 to 40, a likely cache miss each). Intervals never
 * overlap, so the order by start is the order by last as well: one descent by s finds the
 * mapping at or below s and the one after it, and every mapping intersecting [s, l] follows in
 * order (each node knows its leaf: a step to the next one is no descent). Closed intervals let a
 * mapping end at UINT64_MAX: the planner computes l + 1 only when some mapping's last is
 * above l, and s - 1 only when some mapping's start is below s, so neither can wrap.
 *
 * A change is made in three stages, as with the kernel's GPUVA manager:
 *
 *   plan    vmb_va_plan_map() / vmb_va_plan_unmap() read the tree and write the list of
 *           steps. Every node a step will insert (the kept pieces `prev` and `next`, the new
 *           mapping) is allocated here, so this is the only stage that can fail. The tree is
 *           not touched.
 *   apply   vmb_va_apply() makes the steps true in the tree; vmb_va_revert() undoes them
 *           exactly, putting the very same nodes back, so pointers an owner keeps to them
 *           (its per-BO lists, page-table bookkeeping) stay valid. Neither can fail.
 *   fini    vmb_va_plan_fini() gives back the nodes that are out of the tree: the removed
 *           ones if the plan stayed applied, the new ones if it never was or was reverted.
 *
 * The backend sees the steps through vmb_va_plan_walk() (step_map / step_remap /
 * step_unmap) and turns them into page-table work; this file knows nothing of page tables.
 *
 * Nodes come from a per-tree cache: a free list fed by slabs of VA_SLAB_NODES nodes, one
 * malloc each (past the first 2 MiB, blocks of huge-page chunks: "Node memory"), given back
 * only by vmb_va_tree_fini(). A plan therefore allocates nothing in the steady state, and a
 * live mapping costs sizeof(struct vmb_va) (64 B, one cache line: slabs and chunks keep each
 * node on a line of its own) plus 1/VA_SLAB_NODES of a 64-byte slab header and of malloc's own
 * overhead (or a chunk's unused tail), plus its share of the
 * B+tree's nodes (16 B a mapping in a full leaf, 32 B in a half-full one; ~21 B at 10^6 in
 * `bench va`: 86.0 B a mapping in all there). Steps live in the plan's
 * inline array; only a change touching more than VMB_VA_PLAN_INLINE mappings spills them, to an
 * array of VMB_VA_PLAN_KEPT steps that the tree keeps when the plan is finished (one, for the
 * next spill: a plan of up to that many steps allocates nothing in the steady state either), or
 * past that to the heap.
 *
 * Node memory
 * ===========
 *
 * The first VA_HUGE_FROM bytes of mapping nodes are malloc'd slabs (a small vm stays small);
 * past them, nodes come in blocks of VA_SLAB_NODES from 2 MiB chunks in transparent huge pages
 * (core/alloc.h, vmb_hugebump), each node on a cache line of its own, and the B+tree's nodes
 * likewise past their first 2 MiB (core/btree.h): at 10^6 mappings (~86 MB) an op's random
 * leaf and mapping then cost no TLB miss (a two-dimensional page walk in a guest) beside
 * their cache misses. node_bytes counts whole chunks.
 *
 * Removed in place
 * ================
 *
 * Apply and revert must not fail, and an UNMAP must not fail at all for lack of memory
 * (vm/vm.h, "Unbind cannot fail"). In a B+tree only an insert takes nodes (a split); a remove
 * frees them, and a replace, even one whose key moves past a few items, takes none. So:
 *
 *  - an UNMAP step does not take its mapping out of the tree: apply marks it removed (the
 *    VA_TAG_GONE bit of its key in the leaf: "Leaves tell extents") and it stays in its slot,
 *    under its start,
 *    until vmb_va_plan_fini() of the applied plan takes it out (a remove: no node taken).
 *    Every lookup and walk (vmb_va_find_first, _lookup, _first, _next, _prev, the planner)
 *    steps over removed mappings; t->count does not count them. Revert clears the mark: the
 *    mapping is still where it was, so putting it back takes nothing, however many there are
 *    (an UNMAP of the whole vm, an UNMAP_ALL);
 *  - a REMAP puts a kept piece in the removed mapping's slot (vmb_bt_replace). The front piece
 *    has va's key; the back piece's key l + 1 is further on, past only removed mappings of
 *    [va.start, l] (a mapping unmapped earlier in the same call, then mapped over): replace
 *    moves those one slot back, taking no node. Revert replaces the other way;
 *  - the inserts, the MAP node and the back piece of a split inside a mapping, take tree nodes
 *    when their leaf is full: planning makes sure the tree's cache holds what they may take (a
 *    MAP: (height + 1) per insert, allocating; a split of an UNMAP: what its leaf needs now,
 *    usually nothing, from the cache that vmb_va_reserve() keeps at VMB_VA_TREE_RESERVE, or
 *    allocated, else -ENOMEM). Revert takes them out again: a remove.
 * A removed mapping keeps its key (its start), so keys never decrease in order; a new mapping
 * may share the key of a removed one (core/btree.h allows it). Removed mappings live only as
 * long as the plan that removed them is unfinished: for a synchronous bind, the call; for an
 * asynchronous one, until its job ends (its commit reads them). Walks step over them meanwhile:
 * an UNMAP of 10^5 mappings whose job is pending makes a later plan that lands in its range walk
 * over them.
 *
 * Leaves tell extents
 * ===================
 *
 * At 10^6 mappings the leaves (~22 MB) and the mappings (64 MB) are out of every cache, and an
 * op that read a leaf and then the mapping the leaf names waited for two misses one after the
 * other. So the leaf tells what planning needs, and the mapping is read only by a step that
 * cuts it (its obj goes to the pieces) or by the owner:
 *  - a key's low 12 bits, below the page-aligned start (the tree's `tag`: core/btree.h orders
 *    keys without them), hold the page count (bits 0 - 10; 0 when 2048 or more: read the
 *    mapping) and the removed-in-place mark (bit 11). A MAP into a hole, an UNMAP of whole
 *    mappings and the check for case 2 (then obj is compared, a read) take start and last from
 *    the leaf; vmb_va_lookup() and _find_first() too;
 *  - t->gone counts the marked mappings: while it is 0 (always between synchronous binds)
 *    the mapping the descent finds is live, and planning reads no mark; else it walks over
 *    them through the mappings, as before;
 *  - the plan keeps the leaf (and slot) where it saw the mapping below the request
 *    (map_hint) and its first step's (first_hint); apply and fini find them there
 *    (core/btree.h "Hints") instead of through the mapping's leaf link. A hint is checked
 *    against the leaf's slot, and dropped once any tree node went back to the allocator;
 *  - a node fini frees goes into a small ring unwritten (va.h); a MAP asks for the node it
 *    will take before its descent, so that the node's miss overlaps the leaf's.
 * An UNMAP of one mapping then touches no mapping in the VA manager; a MAP writes only its own
 * node. The owner's step callbacks read what they need (vm/bind.c: bo_link, priv).
 *
 * Split and merge
 * ===============
 *
 * Steps come in address order of the mapping they remove; the MAP of a map request is last.
 *   UNMAP  va          the request covers the whole of va: it goes.
 *   REMAP  va, prev, next
 *                      the request covers part of va: va goes; prev = [va.start, s - 1] and/or
 *                      next = [l + 1, va.last] come back with va's obj; next's offset is
 *                      advanced by next.start - va.start (not for NULL mappings, whose offset
 *                      stays 0; for USERPTR the offset is a host address and advances too).
 *   MAP    va          the new node [s, l] with the requested obj.
 *
 * Ranges below are in pages; "a@0" is BO a at offset 0 (in pages), "N" a NULL mapping.
 * The request is [s, l] with obj "b@0" unless written otherwise.
 *
 *  1) No overlap: the request lands in a hole.
 *
 *          0     2     4     6
 *     old: |a@0--|
 *     req:             |b@0--|
 *     new: |a@0--|     |b@0--|
 *
 *     MAP [4, 5] b@0                               (old is not a step)
 *
 *  2) Same range, same obj (bo, offset and flags all equal): nothing to do.
 *
 *     old: |a@0--------|
 *     req: |a@0--------|
 *     new: |a@0--------|
 *
 *     (empty plan)
 *
 *  3) Same range, different obj (another BO, another offset, or other flags):
 *
 *     old: |a@0--------|
 *     req: |b@0--------|
 *     new: |b@0--------|
 *
 *     UNMAP old; MAP [s, l] b@0
 *
 *  4) The request covers old (and more on either side):
 *
 *          0     2     4     6
 *     old:       |a@0--|
 *     req: |b@0--------------|
 *     new: |b@0--------------|
 *
 *     UNMAP old; MAP [0, 5] b@0
 *
 *  5) The request lies strictly inside old: both ends of old are kept.
 *
 *          0     2     4     6
 *     old: |a@0--------------|
 *     req:       |b@0--|
 *     new: |a@0--|b@0--|a@4--|
 *
 *     REMAP old, prev = [0, 1] a@0, next = [4, 5] a@4; MAP [2, 3] b@0
 *
 *     Even a request equal to the middle of old (here a@2 at page 2) is split this way: only
 *     the exact case 2 is merged into a no-op.
 *
 *  6) The request overlaps old's front: old's back is kept.
 *
 *          0     2     4     6
 *     old:       |a@0--------|
 *     req: |b@0--------|
 *     new: |b@0--------|a@2--|
 *
 *     REMAP old, next = [4, 5] a@2; MAP [0, 3] b@0
 *
 *  7) The request overlaps old's back: old's front is kept.
 *
 *          0     2     4     6
 *     old: |a@0--------|
 *     req:       |b@0--------|
 *     new: |a@0--|b@0--------|
 *
 *     REMAP old, prev = [0, 1] a@0; MAP [2, 5] b@0
 *
 *  8) The request spans many mappings: the first keeps its front, those in the middle go,
 *     the last keeps its back. Holes in between are simply filled.
 *
 *          0     2     4     6     8    10
 *     old: |a@0--------|N-|  |c@8--------|
 *     req:       |b@0--------------|
 *     new: |a@0--|b@0--------------|c@10-|
 *
 *     REMAP a, prev = [0, 1] a@0; UNMAP N; REMAP c, next = [8, 9] c@10; MAP [2, 7] b@0
 *
 *  9) Unmap of a hole: nothing intersects [s, l].
 *
 *          0     2     4     6
 *     old: |a@0--|           |c@0--|
 *     req:       xxxxxxxxxxxx
 *     new: |a@0--|           |c@0--|
 *
 *     (empty plan)
 *
 * 10) Unmap splitting one mapping in the middle:
 *
 *          0     2     4     6
 *     old: |a@0--------------|
 *     req:       xxxxxx
 *     new: |a@0--|     |a@4--|
 *
 *     REMAP old, prev = [0, 1] a@0, next = [4, 5] a@4
 *
 * An unmap plans exactly as a map of the same range (cases 1 and 3-8) without the MAP step;
 * the merge of case 2 does not apply to it.
 *
 * Cost: planning is one descent from the root (O(log n)) plus an in-order step per further
 * mapping covered. Apply does no descent in the common cases: a REMAP puts prev (or next) in
 * va's place with vmb_bt_replace() (only removed mappings lie between va's start and the
 * piece's start), and a second piece or the MAP node is linked next to a neighbour it is known
 * to follow or precede (a kept piece, or the untouched mapping below [s, l] that planning
 * found, or the first mapping it unmaps, which stays in its slot until the plan ends); only a
 * MAP with nothing below it and nothing to remove descends again. An UNMAP step is a mark; its revert clears it, and the plan's end
 * removes the mapping from its leaf.
 *
 * Locking
 * =======
 *
 * None inside. The owner (struct vmb_vm) holds the vm lock around every call, planning
 * included: a plan is only valid against the tree it was made from, and only until another
 * plan is applied or reverted.
 */
#include "vm/va.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/btree.h"

#define VA_PAGE 4096u
#define VA_SLAB_NODES 64u
#define VA_BT_KEEP 8u  /* cached tree nodes kept (at least), beyond which plan_fini trims */
#define VA_KNOWN_FLAGS (VMB_VA_READONLY | VMB_VA_NULL | VMB_VA_USERPTR)
/* Poison of a cached node: start > last, so a freed node in the tree fails validation. */
#define VA_POISON_START UINT64_C(0x6b6b6b6b6b6b6000)
#define VA_POISON_LAST UINT64_C(0)

/* A malloc'd slab: the chain word on a line of its own, then the nodes, each on one cache line
 * (the slab is 64-byte aligned): with an 8-byte header every node straddled two lines, and a
 * plan or an unlink that touches a mapping read both. */
struct va_slab {
	struct va_slab *next;
	unsigned char pad_[64 - sizeof(struct va_slab *)];
	struct vmb_va nodes[];
};

#define VA_SLAB_BYTES (sizeof(struct va_slab) + VA_SLAB_NODES * sizeof(struct vmb_va))
/* Slab bytes from which mapping nodes come from huge-page chunks ("Node memory"). */
#define VA_HUGE_FROM ((size_t)VMB_HUGEBUMP_CHUNK)

_Static_assert(sizeof(struct vmb_va) == 64, "a mapping's node is one cache line");
_Static_assert(offsetof(struct va_slab, nodes) == 64 && VA_SLAB_BYTES % 64 == 0,
	       "a slab's nodes on cache lines of their own");
_Static_assert(offsetof(struct vmb_va, priv) >=
		       offsetof(struct vmb_va, obj.flags) + sizeof(uint32_t),
	       "priv overlaps a member of obj");

static inline struct vmb_va *va_of(const struct vmb_bt_item *it)
{
	return it ? vmb_container_of(it, struct vmb_va, bt) : NULL;
}

/*
 * Leaf tags ("Leaves tell extents" above): the low 12 bits of a mapping's key, below its
 * page-aligned start: bits 0 - 10 its page count when that is below 2048, else 0 (the leaf does
 * not tell; read the mapping); bit 11 set while it is removed in place (an applied UNMAP step's
 * mapping, still in the tree until its plan ends: "Removed in place"), so that marking it does
 * not touch the mapping.
 */
#define VA_TAG (VA_PAGE - 1)
#define VA_TAG_GONE (VA_PAGE >> 1)
#define VA_TAG_PAGES (VA_TAG_GONE - 1)

static inline uint64_t va_key(const struct vmb_va *va)
{
	uint64_t pages = ((va->last - va->start) >> 12) + 1; /* no wrap at the top */

	return va->start | (pages <= VA_TAG_PAGES ? pages : 0);
}

/* Removed in place: its key's mark (a read of the mapping, for its leaf link). */
static inline bool va_gone(const struct vmb_va *va)
{
	return vmb_bt_key(&va->bt) & VA_TAG_GONE;
}

/* A mapping as a leaf slot tells it: its extent from the key's tag when the tag tells it (else
 * from the mapping), and the leaf it was seen in. */
struct va_ref {
	struct vmb_va *va; /* NULL: none */
	uint64_t start, last;
	struct vmb_bt_hint hint;
};

static inline struct va_ref va_ref_bt(const struct vmb_bt_ref *r)
{
	struct va_ref v = { va_of(r->it), 0, 0, r->hint };
	uint64_t pages = r->key & VA_TAG_PAGES;

	if (!v.va)
		return v;
	v.start = r->key & ~(uint64_t)VA_TAG;
	v.last = pages ? v.start + (pages * VA_PAGE - 1) : v.va->last;
	return v;
}

/* A mapping reached through the mappings (no leaf seen): extent read from it. */
static struct va_ref va_ref_va(struct vmb_va *va, const struct vmb_bt_hint *hint)
{
	struct va_ref v = { va, 0, 0, *hint };

	if (va) {
		v.start = va->start;
		v.last = va->last;
	}
	return v;
}

static void va_account(struct vmb_va_tree *t)
{
	t->node_bytes = t->slab_bytes + t->huge.bytes + vmb_bt_bytes(&t->bt);
}

/* The first mapping at or after (before) @va in order that is not removed. */
static struct vmb_va *va_live_fwd(struct vmb_va *va)
{
	while (va && va_gone(va))
		va = va_of(vmb_bt_next(&va->bt));
	return va;
}

static struct vmb_va *va_live_back(struct vmb_va *va)
{
	while (va && va_gone(va))
		va = va_of(vmb_bt_prev(&va->bt));
	return va;
}

/* ---- node cache ---- */

/* Cached nodes are chained through obj.bo (see the ring in va.h). */
static void va_node_chain(struct vmb_va_tree *t, struct vmb_va *va)
{
#ifndef NDEBUG
	va->start = VA_POISON_START;
	va->last = VA_POISON_LAST;
#endif
	va->bt.leaf = NULL;
	va->obj.bo = t->free_nodes;
	t->free_nodes = va;
	t->free_count++;
}

/* A node out of the tree back to the cache: into the ring, unwritten, while it has room. */
static void va_node_put(struct vmb_va_tree *t, struct vmb_va *va)
{
	if (t->ring_n < VMB_VA_RING) {
		t->ring[t->ring_n++] = va;
		t->free_count++;
		return;
	}
	va_node_chain(t, va);
}

/* The node the next va_node_get() hands out, asked for (to be written): a MAP calls it before
 * its descent, so that the node, likely out of the caches, comes beside the leaf. */
static void va_node_prefetch(const struct vmb_va_tree *t)
{
	const struct vmb_va *va = t->ring_n ? t->ring[t->ring_n - 1] : t->free_nodes;

	if (va)
		__builtin_prefetch(va, 1);
}

static int va_cache_grow(struct vmb_va_tree *t)
{
	/* one allocation site for both kinds (as vmb_bt_reserve): reached in any tree */
	struct vmb_alloc_site *site = VMB_SITE(VMB_SITE_HOST_ALLOC);
	struct vmb_va *nodes;
	unsigned int i;

	if (t->slab_bytes >= VA_HUGE_FROM) {
		/* no slab header: the chunks go whole at tree_fini; each node on a line of its own */
		nodes = vmb_hugebump_alloc_at(site, &t->huge, VA_SLAB_NODES * sizeof(struct vmb_va));
		if (!nodes)
			return -ENOMEM;
	} else {
		struct va_slab *s = vmb_malloc_aligned_at(site, 64, VA_SLAB_BYTES);

		if (!s)
			return -ENOMEM;
		s->next = t->slabs;
		t->slabs = s;
		t->slab_bytes += VA_SLAB_BYTES;
		nodes = s->nodes;
	}
	va_account(t);
	/* Backwards, so nodes are handed out in address order. */
	for (i = VA_SLAB_NODES; i-- > 0;)
		va_node_chain(t, &nodes[i]);
	return 0;
}

/* A node from the cache, leaving at least @keep there (growing it if needed). */
static struct vmb_va *va_node_get(struct vmb_va_tree *t, uint64_t start, uint64_t last,
				  const struct vmb_va_obj *obj, size_t keep)
{
	struct vmb_va *va;

	if (t->free_count <= keep && va_cache_grow(t) && t->free_count <= keep)
		return NULL;
	t->free_count--;
	if (t->ring_n) {
		va = t->ring[--t->ring_n];
	} else {
		va = t->free_nodes;
		t->free_nodes = va->obj.bo;
		/* the next get reads the next node's chain link: fetch it while this op goes on */
		if (t->free_nodes)
			__builtin_prefetch(t->free_nodes, 1);
	}
	va->start = start;
	va->last = last;
	va->obj = *obj;
	va->priv = 0;
	vmb_list_init(&va->bo_link);
	return va;
}

/* ---- tree ---- */

void vmb_va_tree_init(struct vmb_va_tree *t)
{
	vmb_bt_init(&t->bt);
	t->bt.tag = VA_TAG;
	t->count = 0;
	t->gone = 0;
	t->free_nodes = NULL;
	t->free_count = 0;
	t->ring_n = 0;
	t->node_bytes = 0;
	t->slab_bytes = 0;
	t->slabs = NULL;
	vmb_hugebump_init(&t->huge);
	t->granule = 0;
	t->floor = 0;
	t->spare_steps = NULL;
	t->spare_cap = 0;
	t->spare_busy = false;
	t->kept_steps = NULL;
}

void vmb_va_tree_fini(struct vmb_va_tree *t)
{
	struct va_slab *s = t->slabs;

	vmb_bt_fini(&t->bt);
	while (s) {
		struct va_slab *next = s->next;

		free(s);
		s = next;
	}
	vmb_hugebump_fini(&t->huge);
	free(t->spare_steps);
	free(t->kept_steps);
	vmb_va_tree_init(t);
}

/*
 * One descent by @start: *@pred is the last mapping (not removed) with va->start <= start,
 * *@succ the first with start < va->start <= @last, or none when none starts there (either may
 * be none). succ is pred's in-order successor, so a plan that covers both learns the second
 * mapping without another (cold) walk. While the tree holds no removed mapping (t->gone == 0:
 * always between synchronous binds) both come from the leaf alone, extents included ("Leaves
 * tell extents"): a mapping, 64 B of its own, is likely a cache miss, and a MAP into a hole or
 * an UNMAP of one whole mapping reads none. So do they while the tree holds removed ones but
 * neither of these two is one (their keys' VA_TAG_GONE tells): an array of UNMAPs of
 * neighbours in one call leaves its removed mappings below each next floor. Else each is read
 * to step over removed ones.
 */
static inline void va_find_pair(const struct vmb_va_tree *t, uint64_t start, uint64_t last,
			 struct va_ref *pred, struct va_ref *succ)
{
	struct vmb_bt_ref f, a;
	struct vmb_va *va;

	vmb_bt_floor_ref(&t->bt, start, last, &f, &a);
	bool a_in = (a.key & ~(uint64_t)VA_TAG) <= last;

	/* a removed mapping's key says so (VA_TAG_GONE): while neither the floor nor the one above
	 * it (if it starts in [start, last]) is removed, the leaf tells both: always while t->gone
	 * is 0, and in an array of UNMAPs of neighbours, whose removed mappings lie below the
	 * floor */
	if (!t->gone || ((!f.it || !(f.key & VA_TAG_GONE)) &&
			 (!a_in || !a.it || !(a.key & VA_TAG_GONE)))) {
		*pred = va_ref_bt(&f);
		if (a_in)
			*succ = va_ref_bt(&a);
		else
			*succ = (struct va_ref){ NULL, 0, 0, { NULL, 0, 0 } };
		/* a mapping the plan cuts is read soon (its obj goes to the pieces); one it removes
		 * whole goes to the ring, and the next MAP takes it and writes it: ask for either now,
		 * so that its miss overlaps this op's own (without this, the MAP's node came late
		 * despite va_node_prefetch(): unmap p50 fell by ~100 ns and map p50 rose as much) */
		if (pred->va && pred->last >= start)
			__builtin_prefetch(pred->va, 1);
		if (succ->va)
			__builtin_prefetch(succ->va, 1);
		return;
	}
	va = a_in ? va_live_fwd(va_of(a.it)) : NULL;
	*succ = va_ref_va(va && va->start <= last ? va : NULL, &a.hint);
	*pred = va_ref_va(va_live_back(va_of(f.it)), &f.hint);
}

/*
 * The last mapping starting at or below start either holds start, or it and every one before
 * it end below start: then the first that can meet [start, last] is its successor.
 */
struct vmb_va *vmb_va_find_first(const struct vmb_va_tree *t, uint64_t start, uint64_t last)
{
	struct va_ref va, above;

	va_find_pair(t, start, last, &va, &above);
	if (!va.va || va.last < start)
		va = above;
	return va.va && va.start <= last ? va.va : NULL;
}

struct vmb_va *vmb_va_lookup(const struct vmb_va_tree *t, uint64_t addr)
{
	struct va_ref va, above;

	va_find_pair(t, addr & ~(uint64_t)VA_TAG, addr & ~(uint64_t)VA_TAG, &va, &above);
	return va.va && va.last >= addr ? va.va : NULL;
}

struct vmb_va *vmb_va_first(const struct vmb_va_tree *t)
{
	return va_live_fwd(va_of(vmb_bt_first(&t->bt)));
}

struct vmb_va *vmb_va_next(const struct vmb_va *va)
{
	return va_live_fwd(va_of(vmb_bt_next(&va->bt)));
}

struct vmb_va *vmb_va_prev(const struct vmb_va *va)
{
	return va_live_back(va_of(vmb_bt_prev(&va->bt)));
}

size_t vmb_va_node_size(void)
{
	return sizeof(struct vmb_va);
}

/* ---- plans ---- */

void vmb_va_plan_init(struct vmb_va_plan *p)
{
	p->steps = p->inline_steps;
	p->n = 0;
	p->cap = VMB_VA_PLAN_INLINE;
	p->applied = false;
	p->map_after = NULL;
	/* not first_hint = map_hint: that copy reads the stores just made with 16-byte loads,
	 * which the store buffer cannot forward from them (core/btree.c, vmb_bt_floor_ref) */
	p->map_hint = (struct vmb_bt_hint){ NULL, 0, 0 };
	p->first_hint = (struct vmb_bt_hint){ NULL, 0, 0 };
	p->tree_nodes = 0;
}

/* Without memory, the tree's spare array if it is free and larger. */
static int va_plan_spare(struct vmb_va_tree *t, struct vmb_va_plan *p)
{
	if (t->spare_busy || t->spare_cap <= p->n || p->steps == t->spare_steps)
		return -ENOMEM;
	memcpy(t->spare_steps, p->steps, (size_t)p->n * sizeof(*p->steps));
	if (p->steps != p->inline_steps)
		free(p->steps);
	p->steps = t->spare_steps;
	p->cap = (unsigned int)t->spare_cap;
	t->spare_busy = true;
	return 0;
}

static int va_plan_grow(struct vmb_va_tree *t, struct vmb_va_plan *p)
{
	struct vmb_va_step *steps;
	unsigned int cap;

	if (p->cap > UINT_MAX / 2)
		return -ENOMEM;
	cap = p->cap * 2;
	if (p->steps == t->spare_steps) {
		return -ENOMEM; /* as large as the tree has mappings: a plan needs no more */
	} else if (p->steps == p->inline_steps) {
		/* the first spill: VMB_VA_PLAN_KEPT steps, the tree's kept array if it has one (not
		 * where fault injection counts allocations: its sites stay reached) */
		cap = cap < VMB_VA_PLAN_KEPT ? VMB_VA_PLAN_KEPT : cap;
		if (cap == VMB_VA_PLAN_KEPT && t->kept_steps && !vmb_fault_armed()) {
			steps = t->kept_steps;
			t->kept_steps = NULL;
		} else if (!(steps = vmb_malloc((size_t)cap * sizeof(*steps)))) {
			return va_plan_spare(t, p);
		}
		memcpy(steps, p->steps, (size_t)p->n * sizeof(*steps));
	} else {
		steps = vmb_realloc(p->steps, (size_t)cap * sizeof(*steps));
		if (!steps)
			return va_plan_spare(t, p);
	}
	p->steps = steps;
	p->cap = cap;
	return 0;
}

static struct vmb_va_step *va_plan_push(struct vmb_va_tree *t, struct vmb_va_plan *p,
					enum vmb_va_step_kind kind, struct vmb_va *va)
{
	struct vmb_va_step *s;

	if (p->n == p->cap && va_plan_grow(t, p))
		return NULL;
	s = &p->steps[p->n++];
	s->kind = kind;
	s->va = va;
	s->prev = s->next = NULL;
	return s;
}

/*
 * Plan the removal of [start, last] from every mapping it intersects, working from
 * va_find_pair()'s answer. On failure the plan keeps what was planned so far, for
 * vmb_va_plan_fini() to give back.
 */
static int va_plan_remove(struct vmb_va_tree *t, struct vmb_va_plan *p, const struct va_ref *pred,
			  const struct va_ref *succ, uint64_t start, uint64_t last, bool unmap)
{
	struct va_ref r = pred->va && pred->last >= start ? *pred : *succ;

	/* Loop invariant: r is the lowest mapping not yet planned that may intersect. A mapping
	 * removed whole is not read here ("Leaves tell extents"). */
	while (r.va && r.start <= last) {
		struct vmb_va *va = r.va;
		bool keep_prev = r.start < start; /* so start - 1 cannot wrap */
		bool keep_next = r.last > last;   /* so last + 1 cannot wrap */
		/* a trim of an UNMAP may take the cache's last nodes; a split or a MAP leaves the
		 * floor to trims (vmb_va_reserve) */
		size_t keep = unmap && !(keep_prev && keep_next) ? 0 : t->floor;
		struct vmb_va_step *s;

		s = va_plan_push(t, p, keep_prev || keep_next ? VMB_VA_STEP_REMAP : VMB_VA_STEP_UNMAP,
				 va);
		if (!s)
			return -ENOMEM;
		if (s == p->steps)
			p->first_hint = r.hint;
		if (keep_prev) {
			s->prev = va_node_get(t, va->start, start - 1, &va->obj, keep);
			if (!s->prev)
				return -ENOMEM;
		}
		if (keep_next) {
			struct vmb_va_obj obj = va->obj;

			if (!(obj.flags & VMB_VA_NULL))
				obj.offset += last + 1 - va->start;
			s->next = va_node_get(t, last + 1, va->last, &obj, keep);
			if (!s->next)
				return -ENOMEM;
		}
		if (r.last >= last)
			break; /* nothing further can intersect */
		r = va == pred->va ? *succ : va_ref_va(vmb_va_next(va), &r.hint);
	}
	return 0;
}

/*
 * Make sure the tree's cache holds the nodes applying @p may take ("Removed in place"): its
 * inserts are the MAP node and the back piece of a split inside a mapping. A MAP plans for the
 * worst at the tree's height (it may allocate); an UNMAP's split for what the leaf of the
 * mapping it splits needs now (usually nothing; apply follows at once, on this very tree).
 */
static int va_plan_tree_nodes(struct vmb_va_tree *t, struct vmb_va_plan *p, bool unmap,
			      uint64_t last)
{
	size_t per = (size_t)t->bt.height + 1, need = 0;
	unsigned int i;
	int err;

	for (i = 0; i < p->n; i++) {
		const struct vmb_va_step *s = &p->steps[i];

		if (s->kind == VMB_VA_STEP_MAP) {
			need += per;
		} else if (s->kind == VMB_VA_STEP_REMAP && s->prev && s->next) {
			struct vmb_va *after = va_of(vmb_bt_next(&s->va->bt));

			/* next goes right after prev (va's slot) unless removed mappings of
			 * [va.start, last] lie there: then somewhere past them */
			if (unmap && (!after || after->start > last))
				need += vmb_bt_insert_need(&t->bt, &s->va->bt, 1);
			else
				need += per;
		}
	}
	p->tree_nodes = need;
	if (t->bt.free_count >= need)
		return 0;
	err = vmb_bt_reserve(&t->bt, need);
	va_account(t);
	return err;
}

/* For asserts: a non-empty range of whole pages (last + 1 wraps to 0 at the top: aligned). */
#define VA_RANGE_OK(start, last) \
	((start) <= (last) && (start) % VA_PAGE == 0 && ((last) + 1) % VA_PAGE == 0)

/* For asserts: the range is whole granules of the tree, so a split at its ends (the remains of
 * a mapping it cuts) never falls inside a granule. */
#define VA_GRANULE_OK(t, start, last) \
	(!(t)->granule || ((start) % (t)->granule == 0 && ((last) + 1) % (t)->granule == 0))

static inline bool va_obj_equal(const struct vmb_va_obj *a, const struct vmb_va_obj *b)
{
	return a->bo == b->bo && a->offset == b->offset && a->flags == b->flags;
}

int vmb_va_plan_map(struct vmb_va_tree *t, struct vmb_va_plan *p, uint64_t start, uint64_t last,
		    const struct vmb_va_obj *obj)
{
	struct va_ref pred, succ;
	struct vmb_va *nva;

	assert(p->n == 0 && !p->applied);
	assert(VA_RANGE_OK(start, last));
	assert(VA_GRANULE_OK(t, start, last));
	assert(!(obj->flags & ~VA_KNOWN_FLAGS));
	assert(!((obj->flags & VMB_VA_NULL) && (obj->flags & VMB_VA_USERPTR)));
	assert(!(obj->flags & (VMB_VA_NULL | VMB_VA_USERPTR)) == (obj->bo != NULL));

	va_node_prefetch(t); /* the MAP node's, beside the descent's misses */
	va_find_pair(t, start, last, &pred, &succ);
	if (pred.va && pred.start == start && pred.last == last && va_obj_equal(&pred.va->obj, obj))
		return 0;
	if (va_plan_remove(t, p, &pred, &succ, start, last, false))
		goto nomem;
	nva = va_node_get(t, start, last, obj, t->floor);
	if (!nva)
		goto nomem;
	if (!va_plan_push(t, p, VMB_VA_STEP_MAP, nva)) {
		va_node_put(t, nva);
		goto nomem;
	}
	/* pred stays if it ends below start; then the new node is its successor. */
	if (pred.va && pred.last < start) {
		p->map_after = pred.va;
		p->map_hint = pred.hint;
	}
	if (va_plan_tree_nodes(t, p, false, last))
		goto nomem;
	return 0;

nomem:
	vmb_va_plan_fini(t, p);
	return -ENOMEM;
}

int vmb_va_plan_unmap(struct vmb_va_tree *t, struct vmb_va_plan *p, uint64_t start, uint64_t last)
{
	struct va_ref pred, succ;

	assert(p->n == 0 && !p->applied);
	assert(VA_RANGE_OK(start, last));
	assert(VA_GRANULE_OK(t, start, last));

	va_find_pair(t, start, last, &pred, &succ);
	if (va_plan_remove(t, p, &pred, &succ, start, last, true) ||
	    va_plan_tree_nodes(t, p, true, last)) {
		vmb_va_plan_fini(t, p);
		return -ENOMEM;
	}
	return 0;
}

int vmb_va_plan_unmap_node(struct vmb_va_tree *t, struct vmb_va_plan *p, struct vmb_va *va)
{
	assert(!p->applied);
	return va_plan_push(t, p, VMB_VA_STEP_UNMAP, va) ? 0 : -ENOMEM;
}

int vmb_va_reserve(struct vmb_va_tree *t, size_t nodes)
{
	int err;

	while (t->free_count < nodes)
		if (va_cache_grow(t))
			return -ENOMEM;
	err = vmb_bt_reserve(&t->bt, VMB_VA_TREE_RESERVE(t));
	va_account(t);
	if (err)
		return err;
	if (t->spare_busy || t->spare_cap >= t->count + 1)
		return 0;
	size_t cap = t->spare_cap ? t->spare_cap : 16;
	while (cap < t->count + 1)
		cap *= 2;
	struct vmb_va_step *s = vmb_realloc(t->spare_steps, cap * sizeof(*s));
	if (!s)
		return -ENOMEM;
	t->spare_steps = s;
	t->spare_cap = cap;
	return 0;
}

void vmb_va_plan_walk(const struct vmb_va_plan *p, const struct vmb_va_ops *ops, void *priv)
{
	unsigned int i;

	for (i = 0; i < p->n; i++) {
		const struct vmb_va_step *s = &p->steps[i];

		switch (s->kind) {
		case VMB_VA_STEP_MAP:
			if (ops->step_map)
				ops->step_map(priv, s);
			break;
		case VMB_VA_STEP_REMAP:
			if (ops->step_remap)
				ops->step_remap(priv, s);
			break;
		case VMB_VA_STEP_UNMAP:
			if (ops->step_unmap)
				ops->step_unmap(priv, s);
			break;
		}
	}
}

void vmb_va_apply(struct vmb_va_tree *t, struct vmb_va_plan *p)
{
	size_t taken = t->bt.taken;
	unsigned int i;

	assert(!p->applied);
	for (i = 0; i < p->n; i++) {
		struct vmb_va_step *s = &p->steps[i];

		switch (s->kind) {
		case VMB_VA_STEP_UNMAP:
			/* stays in its slot until the plan ends ("Removed in place"); marked in its
			 * leaf, which planning saw, so the mapping is not touched */
			vmb_bt_set_tag(&t->bt, &s->va->bt, i == 0 ? &p->first_hint : NULL,
				       VA_TAG_GONE, VA_TAG_GONE);
			t->gone++;
			t->count--;
			break;
		case VMB_VA_STEP_REMAP:
			/* A piece takes va's slot (see "Removed in place" and "Apply" above). */
			if (s->prev) {
				vmb_bt_replace(&t->bt, &s->va->bt, va_key(s->prev), &s->prev->bt);
				if (s->next) {
					vmb_bt_insert_after(&t->bt, &s->prev->bt, va_key(s->next),
							    &s->next->bt);
					t->count++;
				}
			} else {
				assert(s->next);
				vmb_bt_replace(&t->bt, &s->va->bt, va_key(s->next), &s->next->bt);
			}
			break;
		case VMB_VA_STEP_MAP:
			/*
			 * MAP is last. Everything between the mapping below [start, last] (the
			 * first step's prev, or map_after if nothing below was cut) and the one
			 * above it (the last step's next) was removed, so the new node is linked
			 * next to one of them without a descent from the root (past removed
			 * mappings, which may lie on either side of start); else before the first
			 * mapping removed whole (an UNMAP step's stays in the tree till fini).
			 */
			assert(i == p->n - 1);
			if (i > 0 && p->steps[i - 1].next)
				vmb_bt_insert_before(&t->bt, &p->steps[i - 1].next->bt, va_key(s->va),
						     &s->va->bt);
			else if (i > 0 && p->steps[0].prev)
				vmb_bt_insert_after(&t->bt, &p->steps[0].prev->bt, va_key(s->va),
						    &s->va->bt);
			else if (p->map_after)
				vmb_bt_insert_after_hint(&t->bt, &p->map_after->bt, &p->map_hint,
							 va_key(s->va), &s->va->bt);
			else if (i > 0 && p->steps[0].kind == VMB_VA_STEP_UNMAP)
				/* still in its slot, marked, and at or above start */
				vmb_bt_insert_before_hint(&t->bt, &p->steps[0].va->bt,
							  &p->first_hint, va_key(s->va),
							  &s->va->bt);
			else
				vmb_bt_insert(&t->bt, va_key(s->va), &s->va->bt);
			t->count++;
			break;
		}
	}
	/* what planning made sure of ("Removed in place") */
	assert(t->bt.taken - taken <= p->tree_nodes);
	(void)taken;
	p->applied = true;
}

/* Takes no tree node: removes, replaces, and clears marks. */
void vmb_va_revert(struct vmb_va_tree *t, struct vmb_va_plan *p)
{
	size_t taken = t->bt.taken;
	unsigned int i;

	assert(p->applied);
	/* Backwards, so each step is undone against the tree it was applied to. */
	for (i = p->n; i-- > 0;) {
		struct vmb_va_step *s = &p->steps[i];

		switch (s->kind) {
		case VMB_VA_STEP_MAP:
			vmb_bt_remove(&t->bt, &s->va->bt);
			t->count--;
			break;
		case VMB_VA_STEP_REMAP:
			if (s->prev) {
				if (s->next) {
					vmb_bt_remove(&t->bt, &s->next->bt);
					t->count--;
				}
				vmb_bt_replace(&t->bt, &s->prev->bt, va_key(s->va), &s->va->bt);
			} else {
				vmb_bt_replace(&t->bt, &s->next->bt, va_key(s->va), &s->va->bt);
			}
			break;
		case VMB_VA_STEP_UNMAP:
			assert(va_gone(s->va));
			vmb_bt_set_tag(&t->bt, &s->va->bt, NULL, VA_TAG_GONE, 0);
			t->gone--;
			t->count++;
			break;
		}
	}
	assert(t->bt.taken == taken);
	(void)taken;
	p->applied = false;
}

void vmb_va_plan_fini(struct vmb_va_tree *t, struct vmb_va_plan *p)
{
	unsigned int i;

	for (i = 0; i < p->n; i++) {
		struct vmb_va_step *s = &p->steps[i];

		if (p->applied) {
			if (s->kind == VMB_VA_STEP_UNMAP) {
				/* out of the tree at last, found by the leaf planning saw it in
				 * while that still holds it */
				vmb_bt_remove_hint(&t->bt, &s->va->bt,
						   i == 0 ? &p->first_hint : NULL);
				t->gone--;
			}
			if (s->kind != VMB_VA_STEP_MAP)
				va_node_put(t, s->va);
		} else if (s->kind == VMB_VA_STEP_MAP) {
			va_node_put(t, s->va);
		} else {
			if (s->prev)
				va_node_put(t, s->prev);
			if (s->next)
				va_node_put(t, s->next);
		}
	}
	if (p->steps == t->spare_steps)
		t->spare_busy = false;
	else if (p->steps != p->inline_steps && p->cap == VMB_VA_PLAN_KEPT && !t->kept_steps)
		t->kept_steps = p->steps; /* for the next plan that spills (va_plan_grow) */
	else if (p->steps != p->inline_steps)
		free(p->steps);
	/* removes give nodes back to the tree's cache: keep what vmb_va_reserve() would */
	size_t keep = VMB_VA_TREE_RESERVE(t);

	if (keep < VA_BT_KEEP)
		keep = VA_BT_KEEP;
	if (t->bt.free_count > keep) {
		vmb_bt_trim(&t->bt, keep);
		va_account(t);
	}
	vmb_va_plan_init(p);
}

/* ---- debug ---- */

#define VA_BAD(...)                                                  \
	do {                                                         \
		fprintf(stderr, "vmb_va_tree_validate: " __VA_ARGS__); \
		return -EUCLEAN;                                     \
	} while (0)

int vmb_va_tree_validate(const struct vmb_va_tree *t)
{
	const struct vmb_va *va, *before = NULL;
	const struct vmb_va *f;
	long bt = vmb_bt_validate(&t->bt);
	size_t n = 0, gone = 0;

	if (bt < 0)
		VA_BAD("B+tree broken\n");

	/* every item in order, removed ones too: each under its start */
	for (va = va_of(vmb_bt_first(&t->bt)); va; va = va_of(vmb_bt_next(&va->bt))) {
		uint32_t kind = va->obj.flags & (VMB_VA_NULL | VMB_VA_USERPTR);

		if ((vmb_bt_key(&va->bt) & ~(uint64_t)VA_TAG_GONE) != va_key(va))
			VA_BAD("[%#" PRIx64 ", %#" PRIx64 "] held under key %#" PRIx64 "\n", va->start,
			       va->last, vmb_bt_key(&va->bt));
		if (va->start > va->last)
			VA_BAD("[%#" PRIx64 ", %#" PRIx64 "] is empty (freed node?)\n", va->start,
			       va->last);
		for (unsigned int r = 0; r < t->ring_n; r++)
			if (t->ring[r] == va)
				VA_BAD("[%#" PRIx64 ", %#" PRIx64 "] in the tree and cached\n", va->start,
				       va->last);
		if (va_gone(va)) {
			gone++;
			continue; /* overlaps what was mapped since: its plan is unfinished */
		}
		n++;
		/* last + 1 wraps to 0 for a mapping ending at UINT64_MAX: aligned. */
		if (va->start % VA_PAGE || (va->last + 1) % VA_PAGE)
			VA_BAD("[%#" PRIx64 ", %#" PRIx64 "] not page aligned\n", va->start, va->last);
		if (before && before->last >= va->start)
			VA_BAD("[%#" PRIx64 ", %#" PRIx64 "] overlaps or precedes [%#" PRIx64
			       ", %#" PRIx64 "]\n",
			       before->start, before->last, va->start, va->last);
		if (va->obj.flags & ~VA_KNOWN_FLAGS)
			VA_BAD("[%#" PRIx64 ", %#" PRIx64 "] unknown flags %#x\n", va->start, va->last,
			       va->obj.flags);
		if (kind == (VMB_VA_NULL | VMB_VA_USERPTR))
			VA_BAD("[%#" PRIx64 ", %#" PRIx64 "] both NULL and USERPTR\n", va->start,
			       va->last);
		if (kind && va->obj.bo)
			VA_BAD("[%#" PRIx64 ", %#" PRIx64 "] NULL/USERPTR mapping with a bo\n",
			       va->start, va->last);
		if (!kind && !va->obj.bo)
			VA_BAD("[%#" PRIx64 ", %#" PRIx64 "] BO mapping without a bo\n", va->start,
			       va->last);
		before = va;
	}
	if (n != t->count)
		VA_BAD("count %zu but %zu mappings in order\n", t->count, n);
	if (gone != t->gone)
		VA_BAD("%zu removed mappings in the tree but gone %zu\n", gone, t->gone);
	if ((size_t)bt != n + gone)
		VA_BAD("%ld items in the B+tree but %zu mappings and %zu removed\n", bt, n, gone);

	n = t->ring_n;
	for (f = t->free_nodes; f; f = f->obj.bo)
		if (++n > t->free_count)
			break;
	if (n != t->free_count)
		VA_BAD("free_count %zu does not match the cache\n", t->free_count);
	if ((t->count + gone + t->free_count) * sizeof(struct vmb_va) > t->slab_bytes + t->huge.bytes ||
	    t->node_bytes != t->slab_bytes + t->huge.bytes + vmb_bt_bytes(&t->bt))
		VA_BAD("node_bytes %zu too small for %zu nodes\n", t->node_bytes,
		       t->count + t->free_count);
	return 0;
}
