/* SPDX-License-Identifier: MIT */
/*
 * Intrusive red-black tree. The caller embeds struct vmb_rb_node in its object and does the key
 * comparison itself while descending (vmb_rb_link() then vmb_rb_insert_fixup()), so the tree code
 * knows nothing of keys. Colour is kept in the low bit of the parent pointer: a node costs three
 * pointers. No locking: the owner documents its lock.
 */
#ifndef VMB_CORE_RBTREE_H
#define VMB_CORE_RBTREE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vmb_rb_node {
	uintptr_t parent_color; /* parent pointer | colour bit (1 = black) */
	struct vmb_rb_node *left, *right;
};

struct vmb_rb_root {
	struct vmb_rb_node *node;
};

/* Attach @n as a red leaf at *@link whose parent is @parent (found by the caller's descent). */
void vmb_rb_link(struct vmb_rb_node *n, struct vmb_rb_node *parent, struct vmb_rb_node **link);
/* Restore the red-black properties after vmb_rb_link(). */
void vmb_rb_insert_fixup(struct vmb_rb_root *root, struct vmb_rb_node *n);
void vmb_rb_erase(struct vmb_rb_root *root, struct vmb_rb_node *n);
/*
 * Augmented trees: each node keeps a value computed from itself and its children (an interval
 * tree's largest end in the subtree). The owner supplies @recompute (from the node's own data
 * and its children's values; returns whether the value changed) and inserts and erases with the
 * _aug calls, which keep every value. Rotations hand the rotated subtree's value to its new top
 * and recompute the node that went down.
 */
struct vmb_rb_augment {
	bool (*recompute)(struct vmb_rb_node *n);
	void (*copy)(struct vmb_rb_node *to, const struct vmb_rb_node *from); /* the value only */
};
/* vmb_rb_link() and vmb_rb_insert_fixup() in one, with @n's value and its ancestors' kept. */
void vmb_rb_insert_aug(struct vmb_rb_root *root, struct vmb_rb_node *n, struct vmb_rb_node *parent,
		       struct vmb_rb_node **link, const struct vmb_rb_augment *aug);
void vmb_rb_erase_aug(struct vmb_rb_root *root, struct vmb_rb_node *n, const struct vmb_rb_augment *aug);
/*
 * The rebalancing half of vmb_rb_insert_aug(), for an owner that attached @n with vmb_rb_link()
 * and brought @n's value and its ancestors' up to date itself (an interval tree: a new end can
 * only raise them, which needs no look at other children).
 */
void vmb_rb_insert_fixup_aug(struct vmb_rb_root *root, struct vmb_rb_node *n, const struct vmb_rb_augment *aug);

/* Put @repl in @victim's place (same key order), no rebalancing. */
void vmb_rb_replace(struct vmb_rb_root *root, struct vmb_rb_node *victim, struct vmb_rb_node *repl);

struct vmb_rb_node *vmb_rb_first(const struct vmb_rb_root *root);
struct vmb_rb_node *vmb_rb_last(const struct vmb_rb_root *root);
struct vmb_rb_node *vmb_rb_next(const struct vmb_rb_node *n);
struct vmb_rb_node *vmb_rb_prev(const struct vmb_rb_node *n);
static inline struct vmb_rb_node *vmb_rb_parent(const struct vmb_rb_node *n)
{
	return (struct vmb_rb_node *)(n->parent_color & ~(uintptr_t)1);
}

/*
 * Check the red-black properties (root black, no red node with a red child, equal black height
 * on every path, parent pointers consistent). Returns the number of nodes, or -1 if broken.
 */
long vmb_rb_validate(const struct vmb_rb_root *root);

#endif
