/* SPDX-License-Identifier: MIT */
/* Handle tables: see handle.h for the free list, its invariants and the lock. */
#include "core/handle.h"

#include <assert.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/alloc.h"

#define HANDLE_MAX 0x7fffffffu

/* A free slot's content: the index of the next free slot, tagged with the low bit. */
static inline void *free_link(uint32_t next)
{
	return (void *)(((uintptr_t)next << 1) | 1);
}

static inline bool is_free(const void *v)
{
	return (uintptr_t)v & 1;
}

static inline uint32_t link_next(const void *v)
{
	return (uint32_t)((uintptr_t)v >> 1);
}

void vmb_handle_table_init(struct vmb_handle_table *t)
{
	t->slots = NULL;
	t->cap = t->count = 0;
	t->free_head = t->free_tail = VMB_HANDLE_NONE;
	t->probes = 0;
}

void vmb_handle_table_fini(struct vmb_handle_table *t)
{
	free(t->slots);
	vmb_handle_table_init(t);
}

/* The table is full (an empty free list): doubles it; the fresh slots, in order, are the list. */
static int grow(struct vmb_handle_table *t)
{
	uint32_t ncap = t->cap ? t->cap * 2 : 16;
	if (ncap > HANDLE_MAX || ncap < t->cap)
		return -ENOMEM;
	void **n = vmb_realloc(t->slots, (size_t)ncap * sizeof(*n));
	if (!n)
		return -ENOMEM;
	for (uint32_t i = t->cap; i < ncap; i++)
		n[i] = free_link(i + 1 < ncap ? i + 1 : VMB_HANDLE_NONE);
	t->slots = n;
	t->free_head = t->cap;
	t->free_tail = ncap - 1;
	t->cap = ncap;
	return 0;
}

int vmb_handle_alloc(struct vmb_handle_table *t, void *obj, uint32_t *out)
{
	assert(obj && !is_free(obj));
	if (t->free_head == VMB_HANDLE_NONE) {
		int err = grow(t);
		if (err)
			return err;
	}
	uint32_t i = t->free_head;
	t->probes++;
	t->free_head = link_next(t->slots[i]);
	if (t->free_head == VMB_HANDLE_NONE)
		t->free_tail = VMB_HANDLE_NONE;
	t->slots[i] = obj;
	t->count++;
	*out = i + 1;
	return 0;
}

void *vmb_handle_lookup(const struct vmb_handle_table *t, uint32_t h)
{
	if (h == 0 || h > t->cap)
		return NULL;
	void *v = t->slots[h - 1];
	return is_free(v) ? NULL : v;
}

void *vmb_handle_remove(struct vmb_handle_table *t, uint32_t h)
{
	void *obj = vmb_handle_lookup(t, h);
	if (obj) {
		uint32_t i = h - 1;
		t->slots[i] = free_link(VMB_HANDLE_NONE);
		if (t->free_tail == VMB_HANDLE_NONE)
			t->free_head = i;
		else
			t->slots[t->free_tail] = free_link(i);
		t->free_tail = i;
		t->count--;
	}
	return obj;
}

_Atomic unsigned long long vmb_handle_scan_steps;

uint32_t vmb_handle_next(const struct vmb_handle_table *t, uint32_t h)
{
	uint32_t i = h;
	while (i < t->cap && is_free(t->slots[i]))
		i++;
	atomic_fetch_add_explicit(&vmb_handle_scan_steps, i - h + (i < t->cap), memory_order_relaxed);
	return i < t->cap ? i + 1 : 0;
}

void *vmb_handle_pop(struct vmb_handle_table *t, uint32_t *cursor)
{
	*cursor = vmb_handle_next(t, *cursor);
	return vmb_handle_remove(t, *cursor);
}

int vmb_handle_table_validate(const struct vmb_handle_table *t)
{
	uint32_t live = 0, nfree = 0, last = VMB_HANDLE_NONE;
	bool bad = false;
	for (uint32_t i = 0; i < t->cap; i++)
		live += !is_free(t->slots[i]);
	/* walk the free list: at most cap - live steps, each to a free slot in range */
	for (uint32_t i = t->free_head; i != VMB_HANDLE_NONE;) {
		if (i >= t->cap || !is_free(t->slots[i]) || ++nfree > t->cap - live) {
			bad = true;
			break;
		}
		last = i;
		i = link_next(t->slots[i]);
	}
	if (bad || live != t->count || nfree != t->cap - live || last != t->free_tail) {
		fprintf(stderr, "handle table: %u live slots, count %u, cap %u, %u on the free list (%s), tail %u of %u\n",
			live, t->count, t->cap, nfree, bad ? "broken" : "ends", last, t->free_tail);
		return -EUCLEAN;
	}
	return 0;
}
