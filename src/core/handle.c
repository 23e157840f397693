/* SPDX-License-Identifier: MIT */
/* Handle tables: see handle.h for the ring of free slots, the invariants and the lock. */
#include "core/handle.h"

#include <assert.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/alloc.h"

#define HANDLE_MAX 0x7fffffffu

void vmb_handle_table_init(struct vmb_handle_table *t)
{
	t->slots = NULL;
	t->ring = NULL;
	t->cap = t->count = t->head = 0;
	t->probes = 0;
}

void vmb_handle_table_fini(struct vmb_handle_table *t)
{
	free(t->slots);
	free(t->ring);
	vmb_handle_table_init(t);
}

/* The table is full (the ring is empty): doubles it; the fresh slots, in order, are the ring. */
static int grow(struct vmb_handle_table *t)
{
	uint32_t ncap = t->cap ? t->cap * 2 : 16;
	if (ncap > HANDLE_MAX || ncap < t->cap)
		return -ENOMEM;
	uint32_t *r = vmb_realloc(t->ring, (size_t)ncap * sizeof(*r));
	if (!r)
		return -ENOMEM;
	t->ring = r; /* a larger ring is harmless if the slots can't follow */
	void **n = vmb_realloc(t->slots, (size_t)ncap * sizeof(*n));
	if (!n)
		return -ENOMEM;
	for (uint32_t i = t->cap; i < ncap; i++) {
		n[i] = NULL;
		r[i - t->cap] = i;
	}
	t->slots = n;
	t->head = 0;
	t->cap = ncap;
	return 0;
}

int vmb_handle_alloc(struct vmb_handle_table *t, void *obj, uint32_t *out)
{
	assert(obj);
	if (t->count == t->cap) {
		int err = grow(t);
		if (err)
			return err;
	}
	uint32_t i = t->ring[t->head];
	t->head = (t->head + 1) & (t->cap - 1);
	t->probes++;
	t->slots[i] = obj;
	t->count++;
	*out = i + 1;
	return 0;
}

void *vmb_handle_lookup(const struct vmb_handle_table *t, uint32_t h)
{
	if (h == 0 || h > t->cap)
		return NULL;
	return t->slots[h - 1];
}

void *vmb_handle_remove(struct vmb_handle_table *t, uint32_t h)
{
	void *obj = vmb_handle_lookup(t, h);
	if (obj) {
		t->slots[h - 1] = NULL;
		/* the tail: cap - count free slots follow head */
		t->ring[(t->head + (t->cap - t->count)) & (t->cap - 1)] = h - 1;
		t->count--;
		/* the slot the next allocation fills was freed long ago: fetch it now, while the
		 * caller destroys the object (under churn its miss then overlaps this one) */
		__builtin_prefetch(&t->slots[t->ring[t->head]], 1);
	}
	return obj;
}

_Atomic unsigned long long vmb_handle_scan_steps;

uint32_t vmb_handle_next(const struct vmb_handle_table *t, uint32_t h)
{
	uint32_t i = h;
	while (i < t->cap && !t->slots[i])
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
	uint32_t live = 0, bad = 0, nfree = t->cap - t->count;
	for (uint32_t i = 0; i < t->cap; i++)
		live += t->slots[i] != NULL;
	/* the ring's cap - count entries: free slots, each once (marked by a set bit) */
	unsigned char *seen = t->cap ? calloc(t->cap / 8 + 1, 1) : NULL;
	if (t->cap && !seen)
		return 0; /* no memory to check with: not a corruption */
	for (uint32_t k = 0; live == t->count && k < nfree && !bad; k++) {
		uint32_t i = t->ring[(t->head + k) & (t->cap - 1)];
		if (i >= t->cap || t->slots[i] || (seen[i / 8] & (1u << (i % 8))))
			bad = i + 1;
		else
			seen[i / 8] |= (unsigned char)(1u << (i % 8));
	}
	free(seen);
	if (bad || live != t->count || (t->cap & (t->cap - 1)) || (t->cap && t->head >= t->cap)) {
		fprintf(stderr, "handle table: %u live slots, count %u, cap %u, head %u, bad ring entry %u\n", live,
			t->count, t->cap, t->head, bad ? bad - 1 : 0);
		return -EUCLEAN;
	}
	return 0;
}

/* the serials handed out so far, every kind of object together */
static atomic_ullong serials;

uint64_t vmb_serial_next(void)
{
	return atomic_fetch_add(&serials, 1) + 1;
}
