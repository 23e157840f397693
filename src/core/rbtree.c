/* SPDX-License-Identifier: MIT */
/*
 * Intrusive red-black tree.
 *
 * Owns nothing: nodes live inside the caller's objects, the root is one pointer. The caller
 * finds the insertion point by its own key comparison, attaches the node with vmb_rb_link()
 * and then calls vmb_rb_insert_fixup(); erase and replace need no keys at all.
 *
 * Colour lives in bit 0 of parent_color (1 = black, 0 = red); nodes are at least pointer
 * aligned, so the bit is free. An absent child (NULL) counts as black.
 *
 * Invariants after every public call:
 *   1. the root is black;
 *   2. a red node has no red child;
 *   3. every path from a node down to an absent child crosses the same number of black nodes;
 *   4. child->parent == parent for every link, and the root's parent is NULL.
 * Together they bound the height by 2 log2(n + 1), so every descent is O(log n).
 *
 * Locking: none; the owner of the tree documents its lock.
 */
#include "core/rbtree.h"

#include <assert.h>

#define RB_BLACK ((uintptr_t)1)

static inline bool rb_is_black(const struct vmb_rb_node *n)
{
	return !n || (n->parent_color & RB_BLACK);
}

static inline bool rb_is_red(const struct vmb_rb_node *n)
{
	return !rb_is_black(n);
}

static inline void rb_set_black(struct vmb_rb_node *n)
{
	n->parent_color |= RB_BLACK;
}

static inline void rb_set_red(struct vmb_rb_node *n)
{
	n->parent_color &= ~RB_BLACK;
}

static inline void rb_set_parent(struct vmb_rb_node *n, struct vmb_rb_node *p)
{
	n->parent_color = (uintptr_t)p | (n->parent_color & RB_BLACK);
}

/* Make @parent (or the root if @parent is NULL) point at @new where it pointed at @old. */
static inline void rb_change_child(struct vmb_rb_root *root, struct vmb_rb_node *parent,
				   struct vmb_rb_node *old, struct vmb_rb_node *new)
{
	if (!parent)
		root->node = new;
	else if (parent->left == old)
		parent->left = new;
	else
		parent->right = new;
}

/* After a rotation that put @y above @x: y now covers what x covered, x lost y's far side. */
static inline void rb_rotated(struct vmb_rb_node *x, struct vmb_rb_node *y, const struct vmb_rb_augment *aug)
{
	if (aug) {
		aug->copy(y, x);
		aug->recompute(x);
	}
}

/*
 *     x               y
 *    / \             / \
 *   a   y    ==>    x   c
 *      / \         / \
 *     b   c       a   b
 * Colours stay with their nodes.
 */
static void rb_rotate_left(struct vmb_rb_root *root, struct vmb_rb_node *x, const struct vmb_rb_augment *aug)
{
	struct vmb_rb_node *y = x->right;
	struct vmb_rb_node *p = vmb_rb_parent(x);

	x->right = y->left;
	if (y->left)
		rb_set_parent(y->left, x);
	rb_change_child(root, p, x, y);
	rb_set_parent(y, p);
	y->left = x;
	rb_set_parent(x, y);
	rb_rotated(x, y, aug);
}

/* Mirror image of rb_rotate_left(). */
static void rb_rotate_right(struct vmb_rb_root *root, struct vmb_rb_node *x, const struct vmb_rb_augment *aug)
{
	struct vmb_rb_node *y = x->left;
	struct vmb_rb_node *p = vmb_rb_parent(x);

	x->left = y->right;
	if (y->right)
		rb_set_parent(y->right, x);
	rb_change_child(root, p, x, y);
	rb_set_parent(y, p);
	y->right = x;
	rb_set_parent(x, y);
	rb_rotated(x, y, aug);
}

void vmb_rb_link(struct vmb_rb_node *n, struct vmb_rb_node *parent, struct vmb_rb_node **link)
{
	n->parent_color = (uintptr_t)parent; /* red */
	n->left = n->right = NULL;
	*link = n;
}

static void rb_insert_fixup(struct vmb_rb_root *root, struct vmb_rb_node *n, const struct vmb_rb_augment *aug)
{
	/*
	 * Loop invariant: n is red and the only possible violation is n's parent being red too
	 * (or n being a red root).
	 */
	for (;;) {
		struct vmb_rb_node *p = vmb_rb_parent(n);
		struct vmb_rb_node *g, *u;

		if (!p) {
			rb_set_black(n);
			return;
		}
		if (rb_is_black(p))
			return;
		/* p is red, so it is not the root: g exists and is black. */
		g = vmb_rb_parent(p);
		if (p == g->left) {
			u = g->right;
			if (rb_is_red(u)) {
				/* Push g's blackness down one level; g may now clash upwards. */
				rb_set_black(p);
				rb_set_black(u);
				rb_set_red(g);
				n = g;
				continue;
			}
			if (n == p->right) {
				/* Turn the inner grandchild into an outer one. */
				rb_rotate_left(root, p, aug);
				n = p;
				p = vmb_rb_parent(n);
			}
			rb_rotate_right(root, g, aug);
		} else {
			u = g->left;
			if (rb_is_red(u)) {
				rb_set_black(p);
				rb_set_black(u);
				rb_set_red(g);
				n = g;
				continue;
			}
			if (n == p->left) {
				rb_rotate_right(root, p, aug);
				n = p;
				p = vmb_rb_parent(n);
			}
			rb_rotate_left(root, g, aug);
		}
		/* p took g's place: black on top, g red below; black heights unchanged. */
		rb_set_black(p);
		rb_set_red(g);
		return;
	}
}

void vmb_rb_insert_fixup(struct vmb_rb_root *root, struct vmb_rb_node *n)
{
	rb_insert_fixup(root, n, NULL);
}

void vmb_rb_insert_fixup_aug(struct vmb_rb_root *root, struct vmb_rb_node *n, const struct vmb_rb_augment *aug)
{
	rb_insert_fixup(root, n, aug);
}

void vmb_rb_insert_aug(struct vmb_rb_root *root, struct vmb_rb_node *n, struct vmb_rb_node *parent,
		       struct vmb_rb_node **link, const struct vmb_rb_augment *aug)
{
	vmb_rb_link(n, parent, link);
	aug->recompute(n); /* a leaf: its own value, whatever the field held before */
	/* the ancestors now cover n too; above the first one whose value stays, nothing changes */
	for (struct vmb_rb_node *a = parent; a && aug->recompute(a); a = vmb_rb_parent(a))
		;
	rb_insert_fixup(root, n, aug);
}

/*
 * One black node was taken off every path through @x (which may be NULL, hence the separate
 * parent @xp). Rebalance so that the black heights agree again.
 */
static void rb_erase_fixup(struct vmb_rb_root *root, struct vmb_rb_node *x, struct vmb_rb_node *xp,
			   const struct vmb_rb_augment *aug)
{
	/* Loop invariant: paths through x are one black short; xp is x's parent. */
	while (x != root->node && rb_is_black(x)) {
		struct vmb_rb_node *w;

		/*
		 * x == xp->left also holds when x is NULL: xp cannot have two absent children,
		 * since x's sibling side carries at least one black node more than x's.
		 */
		if (x == xp->left) {
			w = xp->right;
			if (rb_is_red(w)) {
				/* Make the sibling black (xp's other child becomes the sibling). */
				rb_set_black(w);
				rb_set_red(xp);
				rb_rotate_left(root, xp, aug);
				w = xp->right;
			}
			if (rb_is_black(w->left) && rb_is_black(w->right)) {
				/* Take one black off the sibling side too; the shortage moves up. */
				rb_set_red(w);
				x = xp;
				xp = vmb_rb_parent(x);
				continue;
			}
			if (rb_is_black(w->right)) {
				/* Make the far nephew the red one. */
				rb_set_black(w->left);
				rb_set_red(w);
				rb_rotate_right(root, w, aug);
				w = xp->right;
			}
			/* Rotate a black onto x's side; the far nephew keeps the sibling side whole. */
			w->parent_color = (w->parent_color & ~RB_BLACK) | (xp->parent_color & RB_BLACK);
			rb_set_black(xp);
			rb_set_black(w->right);
			rb_rotate_left(root, xp, aug);
		} else {
			w = xp->left;
			if (rb_is_red(w)) {
				rb_set_black(w);
				rb_set_red(xp);
				rb_rotate_right(root, xp, aug);
				w = xp->left;
			}
			if (rb_is_black(w->left) && rb_is_black(w->right)) {
				rb_set_red(w);
				x = xp;
				xp = vmb_rb_parent(x);
				continue;
			}
			if (rb_is_black(w->left)) {
				rb_set_black(w->right);
				rb_set_red(w);
				rb_rotate_left(root, w, aug);
				w = xp->left;
			}
			w->parent_color = (w->parent_color & ~RB_BLACK) | (xp->parent_color & RB_BLACK);
			rb_set_black(xp);
			rb_set_black(w->left);
			rb_rotate_right(root, xp, aug);
		}
		x = root->node;
		break;
	}
	if (x)
		rb_set_black(x);
}

static void rb_erase(struct vmb_rb_root *root, struct vmb_rb_node *n, const struct vmb_rb_augment *aug)
{
	struct vmb_rb_node *x, *xp, *y = NULL;
	bool removed_black;

	if (!n->left || !n->right) {
		/* At most one child: splice n out, the child (if any) takes its place. */
		x = n->left ? n->left : n->right;
		xp = vmb_rb_parent(n);
		removed_black = rb_is_black(n);
		rb_change_child(root, xp, n, x);
		if (x)
			rb_set_parent(x, xp);
	} else {
		/*
		 * Two children: the successor y (leftmost of the right subtree, no left child)
		 * leaves its own spot and takes n's place and colour, so the black node
		 * missing is the one y was, at y's old position.
		 */
		y = n->right;
		while (y->left)
			y = y->left;
		removed_black = rb_is_black(y);
		x = y->right;
		if (vmb_rb_parent(y) == n) {
			xp = y;
		} else {
			xp = vmb_rb_parent(y);
			xp->left = x;
			if (x)
				rb_set_parent(x, xp);
			y->right = n->right;
			rb_set_parent(n->right, y);
		}
		rb_change_child(root, vmb_rb_parent(n), n, y);
		y->parent_color = n->parent_color;
		y->left = n->left;
		rb_set_parent(n->left, y);
	}
	/*
	 * Every node from xp up lost n (and y moved): recompute them, before any rotation. y
	 * starts from n's value, as it took n's place; from y up (from xp up if no y moved), the
	 * first node whose value stays ends the climb: everything above saw that same value.
	 */
	if (aug) {
		bool past_y = !y;

		if (y)
			aug->copy(y, n);
		for (struct vmb_rb_node *a = xp; a; a = vmb_rb_parent(a)) {
			past_y = past_y || a == y;
			if (!aug->recompute(a) && past_y)
				break;
		}
	}
	if (removed_black)
		rb_erase_fixup(root, x, xp, aug);
}

void vmb_rb_erase(struct vmb_rb_root *root, struct vmb_rb_node *n)
{
	rb_erase(root, n, NULL);
}

void vmb_rb_erase_aug(struct vmb_rb_root *root, struct vmb_rb_node *n, const struct vmb_rb_augment *aug)
{
	rb_erase(root, n, aug);
}

void vmb_rb_replace(struct vmb_rb_root *root, struct vmb_rb_node *victim, struct vmb_rb_node *repl)
{
	struct vmb_rb_node *p = vmb_rb_parent(victim);

	*repl = *victim;
	rb_change_child(root, p, victim, repl);
	if (repl->left)
		rb_set_parent(repl->left, repl);
	if (repl->right)
		rb_set_parent(repl->right, repl);
}

struct vmb_rb_node *vmb_rb_first(const struct vmb_rb_root *root)
{
	struct vmb_rb_node *n = root->node;

	if (!n)
		return NULL;
	while (n->left)
		n = n->left;
	return n;
}

struct vmb_rb_node *vmb_rb_last(const struct vmb_rb_root *root)
{
	struct vmb_rb_node *n = root->node;

	if (!n)
		return NULL;
	while (n->right)
		n = n->right;
	return n;
}

struct vmb_rb_node *vmb_rb_next(const struct vmb_rb_node *n)
{
	struct vmb_rb_node *p;

	if (n->right) {
		n = n->right;
		while (n->left)
			n = n->left;
		return (struct vmb_rb_node *)n;
	}
	/* Climb while n is a right child; the first ancestor reached from its left is next. */
	while ((p = vmb_rb_parent(n)) && n == p->right)
		n = p;
	return p;
}

struct vmb_rb_node *vmb_rb_prev(const struct vmb_rb_node *n)
{
	struct vmb_rb_node *p;

	if (n->left) {
		n = n->left;
		while (n->right)
			n = n->right;
		return (struct vmb_rb_node *)n;
	}
	while ((p = vmb_rb_parent(n)) && n == p->left)
		n = p;
	return p;
}

/*
 * Returns the black height of the subtree at @n (absent children count 1) and adds its nodes
 * to *@count, or -1 if a property is broken. Recursion depth is the tree height, O(log n) for
 * a valid tree; a broken one is caught at the first bad level.
 */
static long rb_check(const struct vmb_rb_node *n, const struct vmb_rb_node *parent, long *count)
{
	long lh, rh;

	if (!n)
		return 1;
	if (vmb_rb_parent(n) != parent)
		return -1;
	if (rb_is_red(n) && (rb_is_red(n->left) || rb_is_red(n->right)))
		return -1;
	if (n == n->left || n == n->right || (n->left && n->left == n->right))
		return -1;
	lh = rb_check(n->left, n, count);
	if (lh < 0)
		return -1;
	rh = rb_check(n->right, n, count);
	if (rh < 0 || lh != rh)
		return -1;
	++*count;
	return lh + (rb_is_black(n) ? 1 : 0);
}

long vmb_rb_validate(const struct vmb_rb_root *root)
{
	long count = 0;

	if (!root->node)
		return 0;
	if (!rb_is_black(root->node))
		return -1;
	if (rb_check(root->node, NULL, &count) < 0)
		return -1;
	return count;
}
