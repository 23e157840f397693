/* SPDX-License-Identifier: MIT */
/*
 * A B+tree of items keyed by uint64_t keys, with wide nodes so that a lookup touches a
 * few cache lines per level instead of one node (one miss) per level of a binary tree: 10^6
 * items are 4 levels (63 keys a node), against 20-40 for a red-black tree. Wide nodes keep the
 * level above the leaves small (16 B a leaf: ~0.5 MB at 10^6 items, which stays in an L2 cache),
 * so a descent through a tree far larger than the caches waits for about one miss, the leaf's.
 *
 * Items are the caller's objects; each embeds a struct vmb_bt_item, which the tree keeps
 * pointing at the leaf that holds it, so an item alone leads to its neighbours
 * (vmb_bt_next/prev) with no search from the root. Items never move in memory: pointers a
 * caller keeps to them stay valid across every update.
 *
 * Every node (leaf or internal) holds up to VMB_BT_WIDTH keys and as many slots: in a leaf the
 * items, in an internal node the children, with key[i] the smallest key of child i's subtree
 * (kept exact, so a descent never takes a wrong turn). Keys and slots are separate arrays, so a
 * search reads the header and the keys and one slot; a descent asks for all of a node's lines
 * as it reaches it (independent loads), so a level costs one miss's wait. Keys may repeat (vm/va.c keeps a removed
 * item in place until its plan ends, beside a new one of the same key): a descent by k ends at
 * the last item whose key is <= k; the order among equal keys is the caller's.
 *
 * Which updates take nodes: only inserts (a split). A replace, however far its items move, and
 * a remove never do, so an owner that must not fail can undo inserts and replaces freely.
 *
 * Nodes come from a per-tree cache that the caller fills ahead with vmb_bt_reserve(): the
 * updates themselves (insert, replace, remove) never allocate and cannot fail, which is what a
 * plan/apply split needs. An insert uses at most height + 1 nodes; a remove frees nodes (a node
 * that falls below half merges with a neighbour under the same parent when both fit). Freed
 * nodes go back to the cache; vmb_bt_trim() gives cached ones beyond a count back to the
 * allocator.
 *
 * Node memory: a node (1024 B) is on a 64-byte boundary, so that it spans 16 cache lines, not 17.
 * It is malloc'd (aligned_alloc) while the tree's malloc'd nodes are below BT_HUGE_FROM
 * (btree.c: 2 MiB, ~2000 nodes, ~100000 items), else carved from 2 MiB chunks in transparent
 * huge pages (core/alloc.h, vmb_hugebump): a descent through a large tree then costs no TLB
 * miss a level. A chunk's node is never given back to the allocator alone: vmb_bt_trim() keeps
 * it aside (`spare`) for the next reserve; vmb_bt_fini() unmaps the chunks. vmb_bt_bytes():
 * what the nodes take.
 *
 * Tagged keys: an owner may set `tag` (after vmb_bt_init) to a mask of low key bits that are its
 * own (vm/va.c keeps a mapping's page count in the 12 bits below its page-aligned start): the
 * tree orders keys by key & ~tag only, stores and returns them whole (vmb_bt_key, vmb_bt_ref), so
 * a caller reads what it keeps there from the leaf alone, without touching the item.
 *
 * Hints: a leaf an item was seen in (vmb_bt_ref.hint), which the hinted updates try before the
 * item's own leaf link, so they need not read the item (likely a cache miss) when it is still
 * there. A hint is checked against the leaf's slots, and used only while no node has been given
 * back to the allocator since it was taken (`frees`), so a stale one costs a fallback, never a
 * wrong answer or a read of freed memory.
 *
 * Locking: none; the owner of the tree documents its lock.
 */
#ifndef VMB_CORE_BTREE_H
#define VMB_CORE_BTREE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/alloc.h"

/* 63: at 10^6 items, 4 levels and 0.5 MB above the leaves; 16 (sessions 9 - 12) made 6 levels and
 * 2 MB there, a second miss per descent, and a fuller tree (85 against 88 B a mapping in vm/va.c).
 * 63 keys and the 16-byte header make a node 1024 B, 16 cache lines on a 64-byte boundary (nodes
 * are allocated so: "Node memory" above), where 64 keys made 1040 B over 17 or 18 lines: a
 * descent asks for all of a node's lines at once, and a core has about 16 line fill buffers
 * (Intel's L1D), so the 17th and 18th waited for a free one (session 16). A shift inside a node
 * moves up to 1 KB. */
#define VMB_BT_WIDTH 63

struct vmb_bt_node;

/* Embedded in each item. */
struct vmb_bt_item {
	struct vmb_bt_node *leaf; /* the leaf holding the item; written by the tree only */
};

/* What a descent reads first (n, leaf) leads, next to the keys; a descent asks for every line of
 * a node at once (they are independent loads), then counts the keys <= k without branching on
 * them. */
struct vmb_bt_node {
	uint8_t n;       /* keys in use */
	uint8_t leaf;    /* 1 for a leaf */
	uint8_t chunked; /* 1: carved from the tree's huge-page chunks (never free()d) */
	struct vmb_bt_node *parent;
	uint64_t key[VMB_BT_WIDTH];
	void *slot[VMB_BT_WIDTH]; /* leaf: struct vmb_bt_item *; internal: struct vmb_bt_node * */
};
_Static_assert(sizeof(struct vmb_bt_node) == 1024, "a node is 16 whole cache lines (VMB_BT_WIDTH)");

struct vmb_bt {
	struct vmb_bt_node *root; /* NULL when empty */
	uint64_t tag;             /* key bits that are the owner's (not ordered); 0 by default */
	size_t frees;             /* times nodes went back to the allocator (hints older are void) */
	size_t count;             /* items */
	unsigned int height;      /* 0 empty, 1 a single leaf, ... */
	struct vmb_bt_node *free; /* node cache, chained through parent */
	size_t free_count;
	size_t nodes; /* nodes allocated: in the tree plus cached */
	size_t taken; /* nodes ever taken from the cache and given back to it by updates (a */
	size_t given; /* caller checks its reservations with them) */
	/* Memory ("Node memory" below): malloc'd nodes' bytes; nodes from huge-page chunks, and
	 * those of them trimmed from the cache (`spare`, chained through parent: not in `nodes`) */
	size_t malloc_bytes;
	struct vmb_hugebump huge;
	struct vmb_bt_node *spare;
	size_t spare_count;
};

/* A leaf an item was seen in, and when (see "Hints" above). */
struct vmb_bt_hint {
	struct vmb_bt_node *leaf; /* NULL: none */
	unsigned int i;           /* the item's slot there, tried first */
	size_t frees;
};

/* An item as a leaf holds it: the item, its key (tag included), where it was seen. */
struct vmb_bt_ref {
	struct vmb_bt_item *it; /* NULL: none (key is then UINT64_MAX) */
	uint64_t key;
	struct vmb_bt_hint hint;
};

void vmb_bt_init(struct vmb_bt *t);
/* Frees every node, in the tree and cached (the items are the caller's). */
void vmb_bt_fini(struct vmb_bt *t);
/* Make sure at least @n nodes are cached. 0 or -ENOMEM. */
int vmb_bt_reserve(struct vmb_bt *t, size_t n);
/* Give cached nodes beyond @keep back to the allocator. */
void vmb_bt_trim(struct vmb_bt *t, size_t keep);
/* Bytes the tree's nodes take from the allocator (in the tree, cached, spare, chunk slack). */
static inline size_t vmb_bt_bytes(const struct vmb_bt *t)
{
	return t->malloc_bytes + t->huge.bytes;
}
/* Nodes an insert may need at most (the caller reserves this many per insert, plus one per
 * level the tree may have grown by earlier inserts of the same batch). */
static inline size_t vmb_bt_insert_cost(const struct vmb_bt *t)
{
	return (size_t)t->height + 1;
}

/*
 * Nodes that @extra (1 or 2) inserts next to @near (an item; NULL: the tree's first) take at
 * most, in the tree as it is now: 0 while its leaf has room (or, for one insert, a sibling of
 * the leaf under the same parent has), else one per full level above it
 * (a new root too when all are). Removes made before those inserts never raise it (a merge
 * leaves both nodes with room). A bound for a known place, cheaper than vmb_bt_insert_cost().
 */
size_t vmb_bt_insert_need(const struct vmb_bt *t, const struct vmb_bt_item *near,
			  unsigned int extra);

/* Insert @it under @key (not in the tree yet). Needs vmb_bt_insert_cost() cached nodes. */
void vmb_bt_insert(struct vmb_bt *t, uint64_t key, struct vmb_bt_item *it);
/* Insert @it under @key right after (before) @pos, or further on (back) past the items whose
 * keys sort below (above) key: the caller knows its place is at or near pos. Same cost; no
 * descent from the root. */
void vmb_bt_insert_after(struct vmb_bt *t, struct vmb_bt_item *pos, uint64_t key,
			 struct vmb_bt_item *it);
void vmb_bt_insert_before(struct vmb_bt *t, struct vmb_bt_item *pos, uint64_t key,
			  struct vmb_bt_item *it);
/* @repl takes @victim's place under @key. When key does not sort where victim's did, the items
 * between victim and key's place move one slot towards victim's place, each with its key (no
 * node gains or loses a slot: never takes a node); the caller knows there are few. Touches the
 * leaves of those slots (and the ancestors' copy of a smallest key). */
void vmb_bt_replace(struct vmb_bt *t, struct vmb_bt_item *victim, uint64_t key,
		    struct vmb_bt_item *repl);
void vmb_bt_remove(struct vmb_bt *t, struct vmb_bt_item *it);
/* The same with a hint (NULL: none) of the leaf holding @pos (@it): the item's own link is read
 * only when the hint is stale. */
void vmb_bt_insert_after_hint(struct vmb_bt *t, struct vmb_bt_item *pos,
			      const struct vmb_bt_hint *h, uint64_t key, struct vmb_bt_item *it);
void vmb_bt_insert_before_hint(struct vmb_bt *t, struct vmb_bt_item *pos,
			       const struct vmb_bt_hint *h, uint64_t key, struct vmb_bt_item *it);
void vmb_bt_remove_hint(struct vmb_bt *t, struct vmb_bt_item *it, const struct vmb_bt_hint *h);
/* Set the bits @mask (within t->tag) of @it's key to @bits: its place does not change. With a
 * hint as above. */
void vmb_bt_set_tag(struct vmb_bt *t, struct vmb_bt_item *it, const struct vmb_bt_hint *h,
		    uint64_t mask, uint64_t bits);

/* The item with the largest key <= @key, or NULL; *@above (if given) gets the next one. */
struct vmb_bt_item *vmb_bt_floor(const struct vmb_bt *t, uint64_t key, struct vmb_bt_item **above);
/* The same read from the leaves alone: *@floor the item with the largest key <= @key, *@above the
 * next one (either may be none), each with its key and its leaf as a hint. above's item is left
 * NULL (its key set) when its key (under ~tag) is above @above_max and it lies in another leaf:
 * that leaf is then not read. */
void vmb_bt_floor_ref(const struct vmb_bt *t, uint64_t key, uint64_t above_max,
		      struct vmb_bt_ref *floor, struct vmb_bt_ref *above);
struct vmb_bt_item *vmb_bt_first(const struct vmb_bt *t);
struct vmb_bt_item *vmb_bt_last(const struct vmb_bt *t);
struct vmb_bt_item *vmb_bt_next(const struct vmb_bt_item *it);
struct vmb_bt_item *vmb_bt_prev(const struct vmb_bt_item *it);
/* The key the tree holds @it under (tag included). */
uint64_t vmb_bt_key(const struct vmb_bt_item *it);

/* Debug: shape, key order, exact smallest keys, parent and leaf links, count, cache. Returns
 * the item count or -1 (and prints the first problem to stderr). */
long vmb_bt_validate(const struct vmb_bt *t);

#endif
