/* SPDX-License-Identifier: MIT */
/*
 * Per-client handle table: u32 handles naming objects of one kind. Handle 0 is never valid.
 * Free slots are queued, by index, in a ring beside the slots (FIFO), so allocation and release
 * each touch O(1) slots and ring entries whatever the table's fill. A freed handle goes to the
 * ring's tail: it is handed out again only after every other free slot (fresh slots of a grown
 * table included), so a destroyed handle is not reused at once and a stale handle gives -ENOENT
 * rather than another object for as long as the table has other free slots. (A ring of indices
 * rather than links through the free slots: the allocation then reads a ring entry next to the
 * last one, not a slot freed long ago and out of cache; 4 bytes more per slot.)
 * Invariants: a slot holds an object (never NULL) or NULL when free; ring[(head + i) % cap] for
 * i < cap - count are the free slots' indices, each free slot once; cap is 0 or a power of 2.
 * Locking: none inside; the owner's lock covers every call: vmb_handle_alloc(), _remove() and
 * _pop() under it exclusively, vmb_handle_lookup() and _next() (which only read) under it at
 * least shared.
 */
#ifndef VMB_CORE_HANDLE_H
#define VMB_CORE_HANDLE_H

#include <stdint.h>

struct vmb_handle_table {
	void **slots;    /* slots[h - 1]: the object, NULL when free */
	uint32_t *ring;  /* free slot indices, FIFO: the next one to hand out at ring[head] */
	uint32_t cap;    /* slots allocated (and ring entries) */
	uint32_t count;  /* live handles */
	uint32_t head;   /* ring index of the oldest free slot */
	uint64_t probes; /* debug: slots read by vmb_handle_alloc() (a test's check that it is O(1)) */
};

void vmb_handle_table_init(struct vmb_handle_table *t);
void vmb_handle_table_fini(struct vmb_handle_table *t); /* frees the table, not the objects */
/* @obj: not NULL. 0 or -ENOMEM. */
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

/* A serial for a new object: unique in the process, from 1, never reused (a handle is), so a
 * call that carries one acts on that object or on none (a BO's, a vm's, a queue's). Any thread
 * (atomic). */
uint64_t vmb_serial_next(void);

#endif
