/* SPDX-License-Identifier: MIT */
/*
 * Per-client handle table: u32 handles naming objects of one kind. Handle 0 is never valid.
 * Allocation is cyclic (the next free slot after the last one handed out), so a destroyed
 * handle is not reused at once and a stale handle gives -ENOENT rather than another object.
 * Locking: none inside; the owner's lock covers every call.
 */
#ifndef VMB_CORE_HANDLE_H
#define VMB_CORE_HANDLE_H

#include <stdint.h>

struct vmb_handle_table {
	void **slots;      /* slots[h - 1] */
	uint32_t cap;      /* slots allocated */
	uint32_t count;    /* live handles */
	uint32_t next;     /* where the cyclic search starts (slot index) */
};

void vmb_handle_table_init(struct vmb_handle_table *t);
void vmb_handle_table_fini(struct vmb_handle_table *t); /* frees the table, not the objects */
int vmb_handle_alloc(struct vmb_handle_table *t, void *obj, uint32_t *out); /* 0 or -ENOMEM */
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
