/* SPDX-License-Identifier: MIT */
/*
 * Typed interval trees on the red-black tree (core/rbtree.h): closed intervals [start, last] of
 * uint64_t (last may be UINT64_MAX; start <= last), ordered by start, in two modes:
 *
 *   VMB_ITREE_DEFINE(pfx, struct T, rb, start, last, max)
 *       Any intervals: nested, overlapping, identical (equal starts in insertion order). An
 *       augmented tree: each node keeps the largest last of its subtree in `max` (which only
 *       this code writes), so an overlap query skips every subtree that ends below it.
 *   VMB_ITREE_DEFINE_DISJOINT(pfx, struct T, rb, start, last)
 *       Intervals that never overlap (the caller guarantees it; validate checks it). The order
 *       by start is then the order by last as well, so a plain red-black tree answers an
 *       overlap query: the last interval starting at or below s if it reaches s, else its
 *       successor, then in-order steps. No subtree field, nothing to keep up on an update.
 *
 * The caller's struct embeds a struct vmb_rb_node and the uint64_t fields; the tree's root is a
 * struct vmb_rb_root. Both modes generate the same functions for one such struct, so callers
 * get their own type back and never convert a node pointer themselves:
 *
 *   struct T *pfx_entry(const struct vmb_rb_node *n)     the T of a node (NULL for NULL)
 *   void pfx_insert(root, T *x)                          by start, after equal starts
 *   void pfx_insert_after(root, T *pos, T *x)            x as pos's in-order successor, or
 *   void pfx_insert_before(root, T *pos, T *x)           predecessor: no descent from the
 *                                                        root; the caller guarantees that
 *                                                        the order by start stays true
 *   void pfx_replace(root, T *victim, T *repl)           repl takes victim's place (same
 *                                                        order by start; its last may differ)
 *   void pfx_remove(root, T *x)
 *   T *pfx_first(root), pfx_last(root), pfx_next(x), pfx_prev(x)      in order of start
 *   T *pfx_iter_first(root, s, l)     the first (in order) interval that meets [s, l], or NULL
 *   T *pfx_iter_next(x, s, l)         the first after x that meets [s, l], or NULL
 *   T *pfx_floor(root, a, T **above)  the last with start <= a, or NULL; *above (if given) gets
 *                                     the first with start > a (x's successor, one descent)
 *   T *pfx_ceil(root, a)              the first with start >= a, or NULL
 *   long pfx_validate(root)           node count, or -1 if the red-black properties, the order
 *                                     by start, start <= last, a subtree's largest last
 *                                     (DEFINE) or the disjointness (DISJOINT) is wrong (debug
 *                                     and tests)
 *
 * Every update and the queries are O(log n). Iterating over the k intervals that meet a range
 * costs O(k log n) at worst, O(log n + k) when they are consecutive (always so in DISJOINT
 * mode, where iter_next is one in-order step unless x ends more than one interval below s).
 * The generated functions are static inline (and may go unused): each user instantiates them
 * in its own .c file.
 *
 * Locking: none; the owner of the tree documents its lock.
 */
#ifndef VMB_CORE_ITREE_H
#define VMB_CORE_ITREE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/list.h" /* vmb_container_of */
#include "core/rbtree.h"

/* Where to link a new node so that it comes right after @pos in order: *@parent, return value. */
static inline struct vmb_rb_node **vmb_itree_slot_after(struct vmb_rb_node *pos,
							struct vmb_rb_node **parent)
{
	struct vmb_rb_node *p = pos;

	if (!p->right) {
		*parent = p;
		return &p->right;
	}
	/* pos's successor is the leftmost node of its right subtree: go left of it */
	for (p = p->right; p->left; p = p->left)
		;
	*parent = p;
	return &p->left;
}

/* The mirror image: right before @pos. */
static inline struct vmb_rb_node **vmb_itree_slot_before(struct vmb_rb_node *pos,
                                                         struct vmb_rb_node **parent)
{
	struct vmb_rb_node *p = pos;

	if (!p->left) {
		*parent = p;
		return &p->left;
	}
	for (p = p->left; p->right; p = p->right)
		;
	*parent = p;
	return &p->right;
}

/* A user instantiates every function and calls a few: unused ones are no warning (clang's). */
#define VMB_ITREE_FN static inline __attribute__((unused))

/*
 * Either mode is VMB_ITREE_HEAD_ (what reads only the order by start), the mode's own part
 * (PFX##_link, _replace, _remove, _iter_first, _iter_next, and for validate PFX##_node_ok(x)
 * and PFX##_follows(x, y): y may come right after x), then VMB_ITREE_TAIL_ (insertion and
 * validate, on the mode's link and checks).
 */
#define VMB_ITREE_HEAD_(PFX, TYPE, RB, START, LAST)                                                    \
                                                                                                       \
	VMB_ITREE_FN TYPE *PFX##_entry(const struct vmb_rb_node *n)                                    \
	{                                                                                              \
		return n ? vmb_container_of(n, TYPE, RB) : NULL;                                       \
	}                                                                                              \
                                                                                                       \
	VMB_ITREE_FN TYPE *PFX##_first(const struct vmb_rb_root *root)                                 \
	{                                                                                              \
		return PFX##_entry(vmb_rb_first(root));                                                \
	}                                                                                              \
                                                                                                       \
	VMB_ITREE_FN TYPE *PFX##_last(const struct vmb_rb_root *root)                                  \
	{                                                                                              \
		return PFX##_entry(vmb_rb_last(root));                                                 \
	}                                                                                              \
                                                                                                       \
	VMB_ITREE_FN TYPE *PFX##_next(const TYPE *x)                                                   \
	{                                                                                              \
		return PFX##_entry(vmb_rb_next(&x->RB));                                               \
	}                                                                                              \
                                                                                                       \
	VMB_ITREE_FN TYPE *PFX##_prev(const TYPE *x)                                                   \
	{                                                                                              \
		return PFX##_entry(vmb_rb_prev(&x->RB));                                               \
	}                                                                                              \
                                                                                                       \
	VMB_ITREE_FN TYPE *PFX##_floor(const struct vmb_rb_root *root, uint64_t a, TYPE **above)       \
	{                                                                                              \
		const struct vmb_rb_node *n = root->node;                                              \
		TYPE *lo = NULL, *hi = NULL;                                                           \
                                                                                                       \
		/* Loop invariant: lo->START <= a < hi->START and n's subtree lies between them. */    \
		while (n) {                                                                            \
			TYPE *x = PFX##_entry(n);                                                      \
                                                                                                       \
			if (x->START <= a) {                                                           \
				lo = x;                                                                \
				n = n->right;                                                          \
			} else {                                                                       \
				hi = x;                                                                \
				n = n->left;                                                           \
			}                                                                              \
		}                                                                                      \
		if (above)                                                                             \
			*above = hi;                                                                   \
		return lo;                                                                             \
	}                                                                                              \
                                                                                                       \
	VMB_ITREE_FN TYPE *PFX##_ceil(const struct vmb_rb_root *root, uint64_t a)                      \
	{                                                                                              \
		const struct vmb_rb_node *n = root->node;                                              \
		TYPE *hi = NULL;                                                                       \
                                                                                                       \
		while (n) {                                                                            \
			TYPE *x = PFX##_entry(n);                                                      \
                                                                                                       \
			if (x->START >= a) {                                                           \
				hi = x;                                                                \
				n = n->left;                                                           \
			} else {                                                                       \
				n = n->right;                                                          \
			}                                                                              \
		}                                                                                      \
		return hi;                                                                             \
	}

#define VMB_ITREE_TAIL_(PFX, TYPE, RB, START, LAST)                                                    \
                                                                                                       \
	VMB_ITREE_FN void PFX##_insert(struct vmb_rb_root *root, TYPE *x)                              \
	{                                                                                              \
		struct vmb_rb_node **link = &root->node, *parent = NULL;                               \
                                                                                                       \
		while (*link) {                                                                        \
			parent = *link;                                                                \
			link = x->START < PFX##_entry(parent)->START ? &parent->left : &parent->right; \
		}                                                                                      \
		PFX##_link(root, x, parent, link);                                                     \
	}                                                                                              \
                                                                                                       \
	VMB_ITREE_FN void PFX##_insert_after(struct vmb_rb_root *root, TYPE *pos, TYPE *x)             \
	{                                                                                              \
		struct vmb_rb_node *parent, **link = vmb_itree_slot_after(&pos->RB, &parent);          \
                                                                                                       \
		PFX##_link(root, x, parent, link);                                                     \
	}                                                                                              \
                                                                                                       \
	VMB_ITREE_FN void PFX##_insert_before(struct vmb_rb_root *root, TYPE *pos, TYPE *x)            \
	{                                                                                              \
		struct vmb_rb_node *parent, **link = vmb_itree_slot_before(&pos->RB, &parent);         \
                                                                                                       \
		PFX##_link(root, x, parent, link);                                                     \
	}                                                                                              \
                                                                                                       \
	VMB_ITREE_FN long PFX##_validate(const struct vmb_rb_root *root)                               \
	{                                                                                              \
		long n = vmb_rb_validate(root);                                                        \
		const TYPE *x, *before = NULL;                                                         \
                                                                                                       \
		if (n < 0)                                                                             \
			return -1;                                                                     \
		/* each node, and the whole order: each against the one before it (not its parent) */  \
		for (x = PFX##_first(root); x; before = x, x = PFX##_next(x)) {                        \
			if (x->START > x->LAST || !PFX##_node_ok(x))                                   \
				return -1;                                                             \
			if (before && !PFX##_follows(before, x))                                       \
				return -1;                                                             \
		}                                                                                      \
		return n;                                                                              \
	}

/* ---- any intervals: the augmented tree ---- */

#define VMB_ITREE_DEFINE(PFX, TYPE, RB, START, LAST, MAX)                                              \
                                                                                                       \
	VMB_ITREE_HEAD_(PFX, TYPE, RB, START, LAST)                                                    \
                                                                                                       \
	/* the largest of the node's own last and its children's subtree maxima */                     \
	VMB_ITREE_FN uint64_t PFX##_max_of(const struct vmb_rb_node *n)                                \
	{                                                                                              \
		uint64_t m = PFX##_entry(n)->LAST;                                                     \
                                                                                                       \
		if (n->left && PFX##_entry(n->left)->MAX > m)                                          \
			m = PFX##_entry(n->left)->MAX;                                                 \
		if (n->right && PFX##_entry(n->right)->MAX > m)                                        \
			m = PFX##_entry(n->right)->MAX;                                                \
		return m;                                                                              \
	}                                                                                              \
                                                                                                       \
	/* whether MAX changed */                                                                      \
	VMB_ITREE_FN bool PFX##_aug_recompute(struct vmb_rb_node *n)                                   \
	{                                                                                              \
		TYPE *x = PFX##_entry(n);                                                              \
		uint64_t m = PFX##_max_of(n);                                                          \
                                                                                                       \
		if (x->MAX == m)                                                                       \
			return false;                                                                  \
		x->MAX = m;                                                                            \
		return true;                                                                           \
	}                                                                                              \
                                                                                                       \
	VMB_ITREE_FN void PFX##_aug_copy(struct vmb_rb_node *to, const struct vmb_rb_node *from)       \
	{                                                                                              \
		PFX##_entry(to)->MAX = PFX##_entry(from)->MAX;                                         \
	}                                                                                              \
                                                                                                       \
	VMB_ITREE_FN const struct vmb_rb_augment *PFX##_aug(void)                                      \
	{                                                                                              \
		static const struct vmb_rb_augment aug = {                                             \
			.recompute = PFX##_aug_recompute,                                              \
			.copy = PFX##_aug_copy,                                                        \
		};                                                                                     \
		return &aug;                                                                           \
	}                                                                                              \
                                                                                                       \
	/* Raise the values from @a up to @last, as far as they are below it. */                       \
	VMB_ITREE_FN void PFX##_raise(struct vmb_rb_node *a, uint64_t last)                            \
	{                                                                                              \
		for (; a && PFX##_entry(a)->MAX < last; a = vmb_rb_parent(a))                          \
			PFX##_entry(a)->MAX = last;                                                    \
	}                                                                                              \
                                                                                                       \
	/* Attach @x at *@link below @parent, then rebalance. */                                       \
	VMB_ITREE_FN void PFX##_link(struct vmb_rb_root *root, TYPE *x, struct vmb_rb_node *parent,    \
				     struct vmb_rb_node **link)                                        \
	{                                                                                              \
		x->MAX = x->LAST;                                                                      \
		vmb_rb_link(&x->RB, parent, link);                                                     \
		PFX##_raise(parent, x->LAST); /* a new last can only raise its ancestors' values */    \
		vmb_rb_insert_fixup_aug(root, &x->RB, PFX##_aug());                                    \
	}                                                                                              \
                                                                                                       \
	VMB_ITREE_FN void PFX##_replace(struct vmb_rb_root *root, TYPE *victim, TYPE *repl)            \
	{                                                                                              \
		struct vmb_rb_node *a = &repl->RB;                                                     \
                                                                                                       \
		/* repl starts from victim's value, so the climb stops where nothing changes */        \
		repl->MAX = victim->MAX;                                                               \
		vmb_rb_replace(root, &victim->RB, &repl->RB);                                          \
		if (repl->LAST >= victim->LAST) {                                                      \
			PFX##_raise(a, repl->LAST); /* victim's own last can have counted no more */   \
			return;                                                                        \
		}                                                                                      \
		while (a && PFX##_aug_recompute(a))                                                    \
			a = vmb_rb_parent(a);                                                          \
	}                                                                                              \
                                                                                                       \
	VMB_ITREE_FN void PFX##_remove(struct vmb_rb_root *root, TYPE *x)                              \
	{                                                                                              \
		vmb_rb_erase_aug(root, &x->RB, PFX##_aug());                                           \
	}                                                                                              \
                                                                                                       \
	/*                                                                                             \
	 * The first node (in order) of the subtree at @x that meets [s, l], given x->MAX >= s. If     \
	 * the left subtree reaches s, the answer is there or nowhere: a node of it that ends at or    \
	 * after s either meets [s, l] or starts after l, and so does everything after it.             \
	 */                                                                                            \
	VMB_ITREE_FN TYPE *PFX##_subtree_first(TYPE *x, uint64_t s, uint64_t l)                        \
	{                                                                                              \
		for (;;) {                                                                             \
			TYPE *left = PFX##_entry(x->RB.left), *right;                                  \
                                                                                                       \
			if (left && left->MAX >= s) {                                                  \
				x = left;                                                              \
				continue;                                                              \
			}                                                                              \
			if (x->START > l)                                                              \
				return NULL; /* so does everything to the right */                     \
			if (x->LAST >= s)                                                              \
				return x;                                                              \
			right = PFX##_entry(x->RB.right);                                              \
			if (!right || right->MAX < s)                                                  \
				return NULL;                                                           \
			x = right;                                                                     \
		}                                                                                      \
	}                                                                                              \
                                                                                                       \
	VMB_ITREE_FN TYPE *PFX##_iter_first(const struct vmb_rb_root *root, uint64_t s, uint64_t l)    \
	{                                                                                              \
		TYPE *x = PFX##_entry(root->node);                                                     \
                                                                                                       \
		return x && x->MAX >= s ? PFX##_subtree_first(x, s, l) : NULL;                         \
	}                                                                                              \
                                                                                                       \
	VMB_ITREE_FN TYPE *PFX##_iter_next(const TYPE *x, uint64_t s, uint64_t l)                      \
	{                                                                                              \
		const struct vmb_rb_node *n = &x->RB, *r = n->right, *p;                               \
                                                                                                       \
		/* Loop invariant: the answer, if any, is r's subtree or comes after n's subtree. */   \
		for (;;) {                                                                             \
			if (r && PFX##_entry(r)->MAX >= s)                                             \
				return PFX##_subtree_first(PFX##_entry(r), s, l);                      \
			/* climb to the first ancestor reached from its left: the next in order */     \
			while ((p = vmb_rb_parent(n)) && p->right == n)                                \
				n = p;                                                                 \
			if (!p)                                                                        \
				return NULL;                                                           \
			n = p;                                                                         \
			if (PFX##_entry(n)->START > l)                                                 \
				return NULL;                                                           \
			if (PFX##_entry(n)->LAST >= s)                                                 \
				return PFX##_entry(n);                                                 \
			r = n->right;                                                                  \
		}                                                                                      \
	}                                                                                              \
                                                                                                       \
	VMB_ITREE_FN bool PFX##_node_ok(const TYPE *x)                                                 \
	{                                                                                              \
		return x->MAX == PFX##_max_of(&x->RB); /* each node right: every subtree's is */       \
	}                                                                                              \
                                                                                                       \
	VMB_ITREE_FN bool PFX##_follows(const TYPE *x, const TYPE *y)                                  \
	{                                                                                              \
		return y->START >= x->START;                                                           \
	}                                                                                              \
                                                                                                       \
	VMB_ITREE_TAIL_(PFX, TYPE, RB, START, LAST)

/* ---- disjoint intervals: a plain red-black tree ---- */

#define VMB_ITREE_DEFINE_DISJOINT(PFX, TYPE, RB, START, LAST)                                          \
                                                                                                       \
	VMB_ITREE_HEAD_(PFX, TYPE, RB, START, LAST)                                                    \
                                                                                                       \
	VMB_ITREE_FN void PFX##_link(struct vmb_rb_root *root, TYPE *x, struct vmb_rb_node *parent,    \
				     struct vmb_rb_node **link)                                        \
	{                                                                                              \
		vmb_rb_link(&x->RB, parent, link);                                                     \
		vmb_rb_insert_fixup(root, &x->RB);                                                     \
	}                                                                                              \
                                                                                                       \
	VMB_ITREE_FN void PFX##_replace(struct vmb_rb_root *root, TYPE *victim, TYPE *repl)            \
	{                                                                                              \
		vmb_rb_replace(root, &victim->RB, &repl->RB);                                          \
	}                                                                                              \
                                                                                                       \
	VMB_ITREE_FN void PFX##_remove(struct vmb_rb_root *root, TYPE *x)                              \
	{                                                                                              \
		vmb_rb_erase(root, &x->RB);                                                            \
	}                                                                                              \
                                                                                                       \
	/*                                                                                             \
	 * The last interval starting at or below s either holds s, or it and every one before it      \
	 * end below s: then the first that can meet [s, l] is its successor.                          \
	 */                                                                                            \
	VMB_ITREE_FN TYPE *PFX##_iter_first(const struct vmb_rb_root *root, uint64_t s, uint64_t l)    \
	{                                                                                              \
		TYPE *above, *x = PFX##_floor(root, s, &above);                                        \
                                                                                                       \
		if (!x || x->LAST < s)                                                                 \
			x = above;                                                                     \
		return x && x->START <= l ? x : NULL;                                                  \
	}                                                                                              \
                                                                                                       \
	VMB_ITREE_FN TYPE *PFX##_iter_next(const TYPE *x, uint64_t s, uint64_t l)                      \
	{                                                                                              \
		TYPE *y = PFX##_next(x);                                                               \
                                                                                                       \
		if (y && y->LAST < s) {                                                                \
			/* x's successor still ends below s: descend again, from the top */            \
			struct vmb_rb_root top = {&y->RB};                                             \
                                                                                                       \
			while (vmb_rb_parent(top.node))                                                \
				top.node = vmb_rb_parent(top.node);                                    \
			return PFX##_iter_first(&top, s, l);                                           \
		}                                                                                      \
		return y && y->START <= l ? y : NULL;                                                  \
	}                                                                                              \
                                                                                                       \
	VMB_ITREE_FN bool PFX##_node_ok(const TYPE *x)                                                 \
	{                                                                                              \
		return true;                                                                           \
	}                                                                                              \
                                                                                                       \
	VMB_ITREE_FN bool PFX##_follows(const TYPE *x, const TYPE *y)                                  \
	{                                                                                              \
		return y->START > x->LAST; /* and so after x's start: x's start <= last is checked */  \
	}                                                                                              \
                                                                                                       \
	VMB_ITREE_TAIL_(PFX, TYPE, RB, START, LAST)

#endif
