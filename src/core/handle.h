/* SPDX-License-Identifier: MIT */
/*
 * Per-client handle table: u32 handles naming objects of one kind. Handle 0 is never valid.
 * Free slots form a FIFO list threaded through the slots themselves, so allocation and release
 * each read and write O(1) slots whatever the table's fill. A freed handle goes to the tail: it
 * is handed out again only after every other free slot (fresh slots of a grown table included),
 * so a destroyed handle is not reused at once and a stale handle gives -ENOENT rather than
 * another object for as long as the table has other free slots.
 * Invariants: a slot holds either an object pointer (never NULL, low bit clear) or a free link,
 * (next free slot index << 1) | 1; the links from @free_head reach exactly the cap - count free
 * slots and end at @free_tail, whose link is VMB_HANDLE_NONE.
 * Locking: none inside; the owner's lock covers every call: vmb_handle_alloc(), _remove() and
 * _pop() under it exclusively, vmb_handle_lookup() and _next() (which only read) under it at
 * least shared.
 */
#ifndef VMB_CORE_HANDLE_H
#define VMB_CORE_HANDLE_H

#include <stdint.h>

#define VMB_HANDLE_NONE UINT32_MAX /* the end of the free list */

struct vmb_handle_table {
	void **slots;       /* slots[h - 1]: the object, or a free link */
	uint32_t cap;       /* slots allocated */
	uint32_t count;     /* live handles */
	uint32_t free_head; /* first free slot (taken next), or VMB_HANDLE_NONE */
	uint32_t free_tail; /* last free slot (the latest freed), or VMB_HANDLE_NONE */
	uint64_t probes;    /* debug: slots read by vmb_handle_alloc() (a test's check that it is O(1)) */
};

void vmb_handle_table_init(struct vmb_handle_table *t);
void vmb_handle_table_fini(struct vmb_handle_table *t); /* frees the table, not the objects */
/* @obj: not NULL, at least 2-byte aligned. 0 or -ENOMEM. */
int vmb_handle_alloc(struct vmb_handle_table *t, void *obj, uint32_t *out);
void *vmb_handle_lookup(const struct vmb_handle_table *t, uint32_t h);  /* NULL if unknown */
void *vmb_handle_remove(struct vmb_handle_table *t, uint32_t h);        /* NULL if unknown */
/* Iterate: returns the next live handle > h (start with 0), or 0 at the end. */
uint32_t vmb_handle_next(const struct vmb_handle_table *t, uint32_t h);
/*
 * Drain: removes and returns the object of the next live handle > *@cursor (start with 0) and
 * sets *@cursor to that handle; NULL once none is left. Popping a whole table reads each slot
 * once (the cursor only goes up): emptying a table is linear in its size.
 */
void *vmb_handle_pop(struct vmb_handle_table *t, uint32_t *cursor);
/* Debug: slots read by vmb_handle_next() and vmb_handle_pop(), all tables of the process (a
 * test's check that a drain is linear). */
extern _Atomic unsigned long long vmb_handle_scan_steps;
int vmb_handle_table_validate(const struct vmb_handle_table *t);      /* 0 or -EUCLEAN */

#endif
