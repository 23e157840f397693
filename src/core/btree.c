/* SPDX-License-Identifier: MIT */
/*
 * B+tree of items by uint64_t keys: see core/btree.h for what it owns and promises.
 *
 * Invariants (vmb_bt_validate() checks each):
 *   - every leaf is at depth height - 1; every node but the root holds >= 1 key, an internal
 *     root >= 2;
 *   - keys never decrease within a node and from leaf to leaf in order (equal keys may
 *     repeat; their order among themselves is the caller's);
 *   - an internal node's key[i] is exactly child i's key[0] (the smallest of its subtree);
 *   - each child's parent and each item's leaf point back.
 * The smallest keys being exact, a descent by "the last child whose key is <= k, else the
 * first" ends in the leaf that holds k's floor, or in the leftmost leaf if k is below them all.
 *
 * A full leaf first hands its first or last item to a sibling (same parent) with room. Else
 * splits move the upper half of a full node into a new right sibling, except on the right
 * edge of the tree when the new key goes last: then the full node stays full and the new one
 * starts alone (ascending fills pack their leaves). A node falling below half merges with a
 * sibling under the same parent when the two fit with two slots to spare (so that a merge
 * never makes the next insert split); an empty node leaves its parent; a root with one child
 * gives the tree a level less.
 *
 * Locking: none (see the header).
 */
#include "core/btree.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"

#define W VMB_BT_WIDTH

/* ---- node cache ---- */

/* Malloc'd node bytes from which nodes come from huge-page chunks (btree.h, "Node memory"). */
#define BT_HUGE_FROM ((size_t)VMB_HUGEBUMP_CHUNK)

int vmb_bt_reserve(struct vmb_bt *t, size_t n)
{
	/* one allocation site for both kinds of node memory: fault injection reaches it in any
	 * tree, and a failure is the same -ENOMEM either way */
	struct vmb_alloc_site *site = VMB_SITE(VMB_SITE_HOST_ALLOC);

	while (t->free_count < n) {
		struct vmb_bt_node *x = t->spare;

		if (x) {
			t->spare = x->parent;
			t->spare_count--;
		} else if (t->malloc_bytes >= BT_HUGE_FROM) {
			x = vmb_hugebump_alloc_at(site, &t->huge, sizeof(*x));
			if (!x)
				return -ENOMEM;
			x->chunked = 1;
		} else {
			x = vmb_malloc_aligned_at(site, 64, sizeof(*x));
			if (!x)
				return -ENOMEM;
			x->chunked = 0;
			t->malloc_bytes += sizeof(*x);
		}
		x->parent = t->free;
		t->free = x;
		t->free_count++;
		t->nodes++;
	}
	return 0;
}

void vmb_bt_trim(struct vmb_bt *t, size_t keep)
{
	if (t->free_count > keep)
		t->frees++; /* hints taken before are void */
	while (t->free_count > keep) {
		struct vmb_bt_node *x = t->free;

		t->free = x->parent;
		t->free_count--;
		t->nodes--;
		if (x->chunked) {
			x->parent = t->spare;
			t->spare = x;
			t->spare_count++;
		} else {
			t->malloc_bytes -= sizeof(*x);
			free(x);
		}
	}
}

static struct vmb_bt_node *bt_node_get(struct vmb_bt *t, bool leaf)
{
	struct vmb_bt_node *x = t->free;

	assert(x); /* the caller reserved too few */
	t->free = x->parent;
	t->free_count--;
	t->taken++;
	x->parent = NULL;
	x->n = 0;
	x->leaf = leaf;
	return x;
}

static void bt_node_put(struct vmb_bt *t, struct vmb_bt_node *x)
{
	t->given++;
	x->n = 0;
	x->parent = t->free;
	t->free = x;
	t->free_count++;
}

void vmb_bt_init(struct vmb_bt *t)
{
	t->root = NULL;
	t->tag = 0;
	t->frees = 0;
	t->count = 0;
	t->height = 0;
	t->free = NULL;
	t->free_count = 0;
	t->nodes = 0;
	t->taken = 0;
	t->given = 0;
	t->malloc_bytes = 0;
	vmb_hugebump_init(&t->huge);
	t->spare = NULL;
	t->spare_count = 0;
}

static void bt_free_subtree(struct vmb_bt_node *x)
{
	unsigned int i;

	if (!x->leaf)
		for (i = 0; i < x->n; i++)
			bt_free_subtree(x->slot[i]);
	if (!x->chunked)
		free(x); /* a chunk's goes with its chunk (vmb_bt_fini) */
}

void vmb_bt_fini(struct vmb_bt *t)
{
	uint64_t tag = t->tag;
	size_t frees = t->frees + 1;

	if (t->root)
		bt_free_subtree(t->root);
	t->root = NULL;
	vmb_bt_trim(t, 0);
	vmb_hugebump_fini(&t->huge);
	vmb_bt_init(t);
	t->tag = tag; /* the owner's, for a tree used again */
	t->frees = frees;
}

/* ---- helpers ---- */

static unsigned int bt_child_index(const struct vmb_bt_node *p, const struct vmb_bt_node *c)
{
	unsigned int i;

	for (i = 0; i < p->n; i++)
		if (p->slot[i] == c)
			return i;
	assert(!"child not in its parent");
	return 0;
}

static unsigned int bt_item_index(const struct vmb_bt_item *it)
{
	const struct vmb_bt_node *leaf = it->leaf;
	unsigned int i;

	for (i = 0; i < leaf->n; i++)
		if (leaf->slot[i] == it)
			return i;
	assert(!"item not in its leaf");
	return 0;
}

/* Move @cnt slots of x from @from to @to, keys with them: within one node, so no item's leaf
 * and no child's parent changes and none is written (an item is the caller's object, likely
 * not in the cache: a shift that wrote each one's link cost a miss per item moved). */
static void bt_shift(struct vmb_bt_node *x, unsigned int to, unsigned int from, unsigned int cnt)
{
	memmove(&x->key[to], &x->key[from], cnt * sizeof(x->key[0]));
	memmove(&x->slot[to], &x->slot[from], cnt * sizeof(x->slot[0]));
}

static void bt_set(struct vmb_bt_node *x, unsigned int i, uint64_t key, void *slot)
{
	x->key[i] = key;
	x->slot[i] = slot;
	if (x->leaf)
		((struct vmb_bt_item *)slot)->leaf = x;
	else
		((struct vmb_bt_node *)slot)->parent = x;
}

/* x's key[0] changed: carry it up while x is its parent's first child. */
static void bt_fix_min(struct vmb_bt_node *x)
{
	struct vmb_bt_node *p;

	while ((p = x->parent)) {
		unsigned int i = bt_child_index(p, x);

		if (p->key[i] == x->key[0])
			return;
		p->key[i] = x->key[0];
		if (i)
			return;
		x = p;
	}
}

/* Ask for every cache line of x at once: a descent then waits for one miss a level, not for
 * the header, two key lines and a slot line one after another. */
static inline void bt_prefetch(const struct vmb_bt_node *x)
{
	const char *c = (const char *)x;
	size_t o;

	/* unrolled: 16 prefetches, no loop (a loop of them cost more instructions than a cached
	 * descent's key compares); nodes are 64-byte aligned (btree.h, "Node memory"), so the last
	 * byte's is the 16th line again, kept for safety should one not be */
#pragma GCC unroll 32
	for (o = 0; o < sizeof(*x); o += 64)
		__builtin_prefetch(c + o);
	__builtin_prefetch(c + sizeof(*x) - 1);
}

/* Index of the last key <= k in x, or -1, keys compared under ~tag: a key's tag is below its
 * ordered part, so key & ~tag <= k exactly when key <= (k & ~tag) | tag (bt_kmax), with no mask
 * per key, and that holds for a prefix of the keys. Keys never decrease, so the index is the
 * count of keys <= k, less one, counted in two rounds (15 compares for 63 keys, not 63): the
 * blocks of 8 keys whose first key is <= k, then the keys of the last such block. No branch on
 * a key (a binary search's branches are a coin toss each, and each of its loads waited for the
 * one before); the first round reads every key line of the node, the second one of them. */
static inline uint64_t bt_kmax(const struct vmb_bt *t, uint64_t k)
{
	return (k & ~t->tag) | t->tag;
}

#define BT_BLOCK 8u

static int bt_floor_index(const struct vmb_bt_node *x, uint64_t kmax)
{
	unsigned int i, b = 0, c = 0, n = x->n, end;

	for (i = BT_BLOCK; i < n; i += BT_BLOCK)
		b += x->key[i] <= kmax;
	i = b * BT_BLOCK;
	end = i + BT_BLOCK < n ? i + BT_BLOCK : n;
	for (; i < end; i++)
		c += x->key[i] <= kmax;
	return (int)(b * BT_BLOCK + c) - 1;
}

static bool bt_rightmost(const struct vmb_bt_node *x)
{
	for (; x->parent; x = x->parent)
		if (bt_child_index(x->parent, x) != x->parent->n - 1u)
			return false;
	return true;
}

static struct vmb_bt_node *bt_next_leaf(const struct vmb_bt_node *x)
{
	const struct vmb_bt_node *p;

	for (; (p = x->parent); x = p) {
		unsigned int i = bt_child_index(p, x);

		if (i + 1u < p->n) {
			struct vmb_bt_node *y = p->slot[i + 1];

			while (!y->leaf)
				y = y->slot[0];
			return y;
		}
	}
	return NULL;
}

static struct vmb_bt_node *bt_prev_leaf(const struct vmb_bt_node *x)
{
	const struct vmb_bt_node *p;

	for (; (p = x->parent); x = p) {
		unsigned int i = bt_child_index(p, x);

		if (i > 0) {
			struct vmb_bt_node *y = p->slot[i - 1];

			while (!y->leaf)
				y = y->slot[y->n - 1];
			return y;
		}
	}
	return NULL;
}

/* ---- insert ---- */

static void bt_insert_at(struct vmb_bt *t, struct vmb_bt_node *x, unsigned int i, uint64_t key,
			 void *slot)
{
	struct vmb_bt_node *r;
	unsigned int m, j;

	if (x->n < W) {
		bt_shift(x, i + 1, i, x->n - i);
		bt_set(x, i, key, slot);
		x->n++;
		if (i == 0)
			bt_fix_min(x);
		return;
	}

	/* A full leaf first hands one item to a sibling with room (fuller leaves, fewer of them). */
	if (x->leaf && x->parent) {
		struct vmb_bt_node *p = x->parent, *s;
		unsigned int k = bt_child_index(p, x);

		if (k > 0 && (s = p->slot[k - 1])->n < W) {
			if (i == 0) {
				bt_set(s, s->n++, key, slot);
				return;
			}
			bt_set(s, s->n++, x->key[0], x->slot[0]);
			bt_shift(x, 0, 1, i - 1);
			bt_set(x, i - 1, key, slot);
			bt_fix_min(x);
			return;
		}
		if (k + 1u < p->n && (s = p->slot[k + 1])->n < W) {
			bt_shift(s, 1, 0, s->n);
			s->n++;
			if (i == W) {
				bt_set(s, 0, key, slot);
			} else {
				bt_set(s, 0, x->key[W - 1], x->slot[W - 1]);
				bt_shift(x, i + 1, i, W - 1 - i);
				bt_set(x, i, key, slot);
				if (i == 0)
					bt_fix_min(x);
			}
			bt_fix_min(s);
			return;
		}
	}

	/* Split: the upper part moves to a new right sibling r. */
	r = bt_node_get(t, x->leaf);
	m = i == W && bt_rightmost(x) ? W : W / 2;
	for (j = m; j < W; j++)
		bt_set(r, j - m, x->key[j], x->slot[j]);
	r->n = (uint8_t)(W - m);
	x->n = (uint8_t)m;
	if (i < m)
		bt_insert_at(t, x, i, key, slot);
	else
		bt_insert_at(t, r, i - m, key, slot); /* r has no parent yet: nothing carried up */

	if (!x->parent) {
		struct vmb_bt_node *root = bt_node_get(t, false);

		bt_set(root, 0, x->key[0], x);
		bt_set(root, 1, r->key[0], r);
		root->n = 2;
		t->root = root;
		t->height++;
		return;
	}
	bt_insert_at(t, x->parent, bt_child_index(x->parent, x) + 1, r->key[0], r);
}

size_t vmb_bt_insert_need(const struct vmb_bt *t, const struct vmb_bt_item *near,
			  unsigned int extra)
{
	const struct vmb_bt_node *x;
	size_t need = 1;

	if (!t->root)
		return 1; /* a leaf for a root: up to W items */
	if (near) {
		x = near->leaf;
	} else {
		for (x = t->root; !x->leaf; x = x->slot[0])
			;
	}
	if (x->n + extra <= W)
		return 0;
	if (extra == 1 && x->parent) {
		/* a full leaf hands an item to a sibling with room (bt_insert_at) */
		const struct vmb_bt_node *p = x->parent;
		unsigned int k = bt_child_index(p, x);

		if ((k > 0 && ((const struct vmb_bt_node *)p->slot[k - 1])->n < W) ||
		    (k + 1u < p->n && ((const struct vmb_bt_node *)p->slot[k + 1])->n < W))
			return 0;
	}
	/* The leaf splits once (either half then has room for the other insert); each parent
	 * gains one child. */
	for (x = x->parent; x && x->n == W; x = x->parent)
		need++;
	if (!x)
		need++; /* a new root */
	return need;
}

void vmb_bt_insert(struct vmb_bt *t, uint64_t key, struct vmb_bt_item *it)
{
	struct vmb_bt_node *x = t->root;

	if (!x) {
		x = bt_node_get(t, true);
		t->root = x;
		t->height = 1;
	}
	bt_prefetch(x);
	while (!x->leaf) {
		int i = bt_floor_index(x, bt_kmax(t, key));

		x = x->slot[i < 0 ? 0 : i];
		bt_prefetch(x);
	}
	bt_insert_at(t, x, (unsigned int)(bt_floor_index(x, bt_kmax(t, key)) + 1), key, it);
	t->count++;
}

/* A place between two slots of the leaf order: before slot i of leaf x (i == x->n: after its
 * last). */
struct bt_pos {
	struct vmb_bt_node *x;
	unsigned int i;
};

/* The slot at or after p (NULL x: none). */
static struct bt_pos bt_pos_norm(struct bt_pos p)
{
	if (p.i >= p.x->n) {
		struct vmb_bt_node *y = bt_next_leaf(p.x);

		if (y)
			return (struct bt_pos){ y, 0 };
		return (struct bt_pos){ NULL, 0 };
	}
	return p;
}

/* Where @it is: the hint's leaf if it holds it and no node was freed since the hint was taken
 * (then the leaf is still a node of this tree or of its cache, and its slots tell), else the
 * item's own link (a read of the item). */
static struct bt_pos bt_locate(const struct vmb_bt *t, const struct vmb_bt_item *it,
			       const struct vmb_bt_hint *h)
{
	if (h && h->leaf && h->frees == t->frees && h->leaf->leaf) {
		struct vmb_bt_node *x = h->leaf;
		unsigned int i = h->i;

		if (i < x->n && x->slot[i] == it)
			return (struct bt_pos){ x, i };
		if (i + 1u < x->n && x->slot[i + 1] == it) /* one insert before it since */
			return (struct bt_pos){ x, i + 1 };
		for (i = 0; i < x->n; i++)
			if (x->slot[i] == it)
				return (struct bt_pos){ x, i };
	}
	return (struct bt_pos){ it->leaf, bt_item_index(it) };
}

void vmb_bt_insert_after_hint(struct vmb_bt *t, struct vmb_bt_item *pos,
			      const struct vmb_bt_hint *h, uint64_t key, struct vmb_bt_item *it)
{
	struct bt_pos p = bt_locate(t, pos, h), q;
	uint64_t m = ~t->tag, k = key & m;

	p.i++;
	/* past items with smaller keys (the caller's pos is usually right) */
	for (q = bt_pos_norm(p); q.x && (q.x->key[q.i] & m) < k; q = bt_pos_norm(p))
		p = (struct bt_pos){ q.x, q.i + 1 };
	bt_insert_at(t, p.x, p.i, key, it);
	t->count++;
}

void vmb_bt_insert_after(struct vmb_bt *t, struct vmb_bt_item *pos, uint64_t key,
			 struct vmb_bt_item *it)
{
	vmb_bt_insert_after_hint(t, pos, NULL, key, it);
}

void vmb_bt_insert_before_hint(struct vmb_bt *t, struct vmb_bt_item *pos,
			       const struct vmb_bt_hint *h, uint64_t key, struct vmb_bt_item *it)
{
	struct bt_pos p = bt_locate(t, pos, h);
	struct vmb_bt_node *x = p.x;
	unsigned int i = p.i;
	uint64_t m = ~t->tag, k = key & m;

	/* back past items with larger keys */
	for (;;) {
		if (i == 0) {
			struct vmb_bt_node *y = bt_prev_leaf(x);

			if (!y || (y->key[y->n - 1] & m) <= k)
				break;
			x = y;
			i = y->n;
		}
		if ((x->key[i - 1] & m) <= k)
			break;
		i--;
	}
	bt_insert_at(t, x, i, key, it);
	t->count++;
}

void vmb_bt_insert_before(struct vmb_bt *t, struct vmb_bt_item *pos, uint64_t key,
			  struct vmb_bt_item *it)
{
	vmb_bt_insert_before_hint(t, pos, NULL, key, it);
}

/* The slot after (before) p, which holds an item; NULL x: none. */
static struct bt_pos bt_slot_next(struct bt_pos p)
{
	return bt_pos_norm((struct bt_pos){ p.x, p.i + 1 });
}

static struct bt_pos bt_slot_prev(struct bt_pos p)
{
	if (p.i > 0)
		return (struct bt_pos){ p.x, p.i - 1 };
	p.x = bt_prev_leaf(p.x);
	return (struct bt_pos){ p.x, p.x ? p.x->n - 1u : 0 };
}

/* Put (key, slot) at p, carrying a new smallest key up. */
static void bt_put(struct bt_pos p, uint64_t key, void *slot)
{
	bool first = p.i == 0 && p.x->key[0] != key;

	bt_set(p.x, p.i, key, slot);
	if (first)
		bt_fix_min(p.x);
}

void vmb_bt_replace(struct vmb_bt *t, struct vmb_bt_item *victim, uint64_t key,
		    struct vmb_bt_item *repl)
{
	struct bt_pos p = { victim->leaf, bt_item_index(victim) }, q;
	uint64_t m = ~t->tag, k = key & m;

	/* Items between victim's place and key's move one slot towards victim's: no node gains
	 * or loses a slot. */
	if (k > (p.x->key[p.i] & m)) {
		for (q = bt_slot_next(p); q.x && (q.x->key[q.i] & m) < k; p = q, q = bt_slot_next(q))
			bt_put(p, q.x->key[q.i], q.x->slot[q.i]);
	} else {
		for (q = bt_slot_prev(p); q.x && (q.x->key[q.i] & m) > k; p = q, q = bt_slot_prev(q))
			bt_put(p, q.x->key[q.i], q.x->slot[q.i]);
	}
	bt_put(p, key, repl);
}

/* ---- remove ---- */

static void bt_remove_at(struct vmb_bt *t, struct vmb_bt_node *x, unsigned int i)
{
	struct vmb_bt_node *p, *s;
	unsigned int j;

	bt_shift(x, i, i + 1, x->n - 1u - i);
	x->n--;

	p = x->parent;
	if (!p) {
		if (x->n == 0) {
			/* only a leaf root gets here: an internal one goes at one child */
			bt_node_put(t, x);
			t->root = NULL;
			t->height = 0;
		} else if (!x->leaf && x->n == 1) {
			t->root = x->slot[0];
			t->root->parent = NULL;
			t->height--;
			bt_node_put(t, x);
		}
		return;
	}
	if (x->n == 0) {
		bt_node_put(t, x);
		bt_remove_at(t, p, bt_child_index(p, x));
		return;
	}
	if (i == 0)
		bt_fix_min(x);
	if (x->n >= W / 2)
		return; /* the common case: the parent is not read */
	j = bt_child_index(p, x);
	/* Merge with a sibling when both fit with two slots to spare. */
	if (j > 0 && (s = p->slot[j - 1])->n + x->n <= W - 2) {
		for (i = 0; i < x->n; i++)
			bt_set(s, s->n + i, x->key[i], x->slot[i]);
		s->n = (uint8_t)(s->n + x->n);
		bt_node_put(t, x);
		bt_remove_at(t, p, j);
	} else if (j + 1u < p->n && (s = p->slot[j + 1])->n + x->n <= W - 2) {
		for (i = 0; i < s->n; i++)
			bt_set(x, x->n + i, s->key[i], s->slot[i]);
		x->n = (uint8_t)(x->n + s->n);
		bt_node_put(t, s);
		bt_remove_at(t, p, j + 1);
	}
}

void vmb_bt_remove_hint(struct vmb_bt *t, struct vmb_bt_item *it, const struct vmb_bt_hint *h)
{
	struct bt_pos p = bt_locate(t, it, h);

	bt_remove_at(t, p.x, p.i);
	t->count--;
}

void vmb_bt_set_tag(struct vmb_bt *t, struct vmb_bt_item *it, const struct vmb_bt_hint *h,
		    uint64_t mask, uint64_t bits)
{
	struct bt_pos p = bt_locate(t, it, h);

	assert(!(mask & ~t->tag) && !(bits & ~mask));
	p.x->key[p.i] = (p.x->key[p.i] & ~mask) | bits;
	if (p.i == 0)
		bt_fix_min(p.x); /* the ancestors hold the smallest key whole */
}

void vmb_bt_remove(struct vmb_bt *t, struct vmb_bt_item *it)
{
	vmb_bt_remove_hint(t, it, NULL);
}

/* ---- queries ---- */

void vmb_bt_floor_ref(const struct vmb_bt *t, uint64_t key, uint64_t above_max,
		      struct vmb_bt_ref *floor, struct vmb_bt_ref *above)
{
	const struct vmb_bt_node *x = t->root, *p = NULL, *c;
	uint64_t m = ~t->tag, kmax = bt_kmax(t, key);
	unsigned int k, j = 0;
	int i;

	/* both from constants: `*above = *floor` read back the stores just made with 16-byte
	 * loads, which the store buffer cannot forward from 8- and 4-byte stores (a stall of ~15
	 * cycles; with the same in vmb_va_plan_init, ~5 ns of the ~110 ns a bind in an array of
	 * 100 costs on the 2-core VM) */
	*floor = (struct vmb_bt_ref){ NULL, UINT64_MAX, { NULL, 0, 0 } };
	*above = (struct vmb_bt_ref){ NULL, UINT64_MAX, { NULL, 0, 0 } };
	if (!x)
		return;
	bt_prefetch(x);
	while (!x->leaf) {
		i = bt_floor_index(x, kmax);
		p = x;
		j = (unsigned int)(i < 0 ? 0 : i);
		x = x->slot[j];
		bt_prefetch(x);
	}
	/* A leaf that an insert would find full, or a remove below half, has its siblings' counts
	 * read (bt_insert_at, bt_remove_at): ask for their headers now, beside each other and beside
	 * the rest of the caller's planning. */
	if (p && (x->n == W || x->n <= W / 2)) {
		if (j > 0)
			__builtin_prefetch(p->slot[j - 1]);
		if (j + 1u < p->n)
			__builtin_prefetch(p->slot[j + 1]);
	}
	i = bt_floor_index(x, kmax);
	if (i >= 0)
		*floor = (struct vmb_bt_ref){ x->slot[i], x->key[i],
					     { (struct vmb_bt_node *)x, (unsigned int)i, t->frees } };
	k = (unsigned int)(i + 1);
	if (k < x->n) {
		*above = (struct vmb_bt_ref){ x->slot[k], x->key[k], { (struct vmb_bt_node *)x, k, t->frees } };
		return;
	}
	/* The next leaf's smallest key is in the ancestor that leads to it: the leaf itself is
	 * read only if the caller wants its item. */
	for (c = x; (p = c->parent); c = p) {
		k = bt_child_index(p, c) + 1;
		if (k < p->n)
			break;
	}
	if (!p)
		return;
	above->key = p->key[k];
	if ((above->key & m) > above_max)
		return;
	for (x = p->slot[k]; !x->leaf; x = x->slot[0])
		;
	*above = (struct vmb_bt_ref){ x->slot[0], x->key[0], { (struct vmb_bt_node *)x, 0, t->frees } };
}

struct vmb_bt_item *vmb_bt_floor(const struct vmb_bt *t, uint64_t key, struct vmb_bt_item **above)
{
	struct vmb_bt_ref f, a;

	vmb_bt_floor_ref(t, key, UINT64_MAX, &f, &a);
	if (above)
		*above = a.it;
	return f.it;
}

struct vmb_bt_item *vmb_bt_first(const struct vmb_bt *t)
{
	const struct vmb_bt_node *x = t->root;

	if (!x)
		return NULL;
	while (!x->leaf)
		x = x->slot[0];
	return x->slot[0];
}

struct vmb_bt_item *vmb_bt_last(const struct vmb_bt *t)
{
	const struct vmb_bt_node *x = t->root;

	if (!x)
		return NULL;
	while (!x->leaf)
		x = x->slot[x->n - 1];
	return x->slot[x->n - 1];
}

struct vmb_bt_item *vmb_bt_next(const struct vmb_bt_item *it)
{
	const struct vmb_bt_node *x = it->leaf, *y;
	unsigned int i = bt_item_index(it);

	if (i + 1u < x->n)
		return x->slot[i + 1];
	y = bt_next_leaf(x);
	return y ? y->slot[0] : NULL;
}

struct vmb_bt_item *vmb_bt_prev(const struct vmb_bt_item *it)
{
	const struct vmb_bt_node *x = it->leaf, *y;
	unsigned int i = bt_item_index(it);

	if (i > 0)
		return x->slot[i - 1];
	y = bt_prev_leaf(x);
	return y ? y->slot[y->n - 1] : NULL;
}

uint64_t vmb_bt_key(const struct vmb_bt_item *it)
{
	return it->leaf->key[bt_item_index(it)];
}

/* ---- debug ---- */

#define BT_BAD(...)                                              \
	do {                                                     \
		fprintf(stderr, "vmb_bt_validate: " __VA_ARGS__); \
		return -1;                                       \
	} while (0)

static long bt_validate_node(const struct vmb_bt_node *x, unsigned int depth, unsigned int height,
			     uint64_t tag, bool *have_prev, uint64_t *prev, size_t *nodes)
{
	long items = 0;
	unsigned int i;

	(*nodes)++;
	if (x->n == 0 || x->n > W)
		BT_BAD("node with %u keys\n", x->n);
	if (!x->leaf && !x->parent && x->n < 2)
		BT_BAD("internal root with one child\n");
	if (!!x->leaf != (depth == height - 1))
		BT_BAD("leaf at depth %u of %u\n", depth, height);
	for (i = 0; i < x->n; i++) {
		if (i && (x->key[i] & ~tag) < (x->key[i - 1] & ~tag))
			BT_BAD("keys out of order in a node\n");
		if (x->leaf) {
			const struct vmb_bt_item *it = x->slot[i];

			if (it->leaf != x)
				BT_BAD("item's leaf link wrong\n");
			if (*have_prev && (x->key[i] & ~tag) < (*prev & ~tag))
				BT_BAD("keys out of order across leaves\n");
			*have_prev = true;
			*prev = x->key[i];
			items++;
		} else {
			const struct vmb_bt_node *c = x->slot[i];
			long sub;

			if (c->parent != x)
				BT_BAD("child's parent link wrong\n");
			if (c->n && c->key[0] != x->key[i])
				BT_BAD("key %#" PRIx64 " is not its child's smallest %#" PRIx64 "\n",
				       x->key[i], c->key[0]);
			sub = bt_validate_node(c, depth + 1, height, tag, have_prev, prev, nodes);
			if (sub < 0)
				return -1;
			items += sub;
		}
	}
	return items;
}

long vmb_bt_validate(const struct vmb_bt *t)
{
	const struct vmb_bt_node *f;
	bool have_prev = false;
	uint64_t prev = 0;
	size_t nodes = 0, n = 0, spare = 0;
	long items = 0;

	if (t->root) {
		if (t->root->parent)
			BT_BAD("root has a parent\n");
		if (!t->height)
			BT_BAD("height 0 with a root\n");
		items = bt_validate_node(t->root, 0, t->height, t->tag, &have_prev, &prev, &nodes);
		if (items < 0)
			return -1;
	} else if (t->height) {
		BT_BAD("height %u without a root\n", t->height);
	}
	if ((size_t)items != t->count)
		BT_BAD("count %zu but %ld items\n", t->count, items);
	for (f = t->free; f && n <= t->free_count; f = f->parent)
		n++;
	if (n != t->free_count)
		BT_BAD("free_count %zu does not match the cache\n", t->free_count);
	for (f = t->spare; f && spare <= t->spare_count; f = f->parent) {
		if (!f->chunked)
			BT_BAD("a malloc'd node kept spare\n");
		spare++;
	}
	if (spare != t->spare_count)
		BT_BAD("spare_count %zu does not match the spare nodes\n", t->spare_count);
	if ((nodes + t->free_count + t->spare_count) * sizeof(struct vmb_bt_node) > vmb_bt_bytes(t))
		BT_BAD("%zu bytes for %zu nodes\n", vmb_bt_bytes(t),
		       nodes + t->free_count + t->spare_count);
	if (nodes + n != t->nodes)
		BT_BAD("%zu nodes in the tree and %zu cached, %zu allocated\n", nodes, n, t->nodes);
	return items;
}
