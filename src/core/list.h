/* SPDX-License-Identifier: MIT */
/*
 * Intrusive doubly linked circular list. An empty list is a head pointing at itself.
 * No locking: the owner of the list documents the lock that protects it.
 */
#ifndef VMB_CORE_LIST_H
#define VMB_CORE_LIST_H

#include <stdbool.h>
#include <stddef.h>

struct vmb_list {
	struct vmb_list *next, *prev;
};

#define vmb_container_of(ptr, type, member) ((type *)(void *)((char *)(ptr) - offsetof(type, member)))

static inline void vmb_list_init(struct vmb_list *h) { h->next = h->prev = h; }
static inline bool vmb_list_empty(const struct vmb_list *h) { return h->next == h; }

static inline void vmb_list_add_tail(struct vmb_list *n, struct vmb_list *h)
{
	n->prev = h->prev;
	n->next = h;
	h->prev->next = n;
	h->prev = n;
}

static inline void vmb_list_del(struct vmb_list *n)
{
	n->prev->next = n->next;
	n->next->prev = n->prev;
	n->next = n->prev = n;
}

#define vmb_list_for_each(pos, head) for ((pos) = (head)->next; (pos) != (head); (pos) = (pos)->next)
#define vmb_list_for_each_safe(pos, tmp, head) \
	for ((pos) = (head)->next, (tmp) = (pos)->next; (pos) != (head); (pos) = (tmp), (tmp) = (pos)->next)

#endif
