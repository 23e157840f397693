/* SPDX-License-Identifier: MIT */
#include "core/handle.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/alloc.h"

#define HANDLE_MAX 0x7fffffffu

void vmb_handle_table_init(struct vmb_handle_table *t)
{
	t->slots = NULL;
	t->cap = t->count = t->next = 0;
}

void vmb_handle_table_fini(struct vmb_handle_table *t)
{
	free(t->slots);
	vmb_handle_table_init(t);
}

int vmb_handle_alloc(struct vmb_handle_table *t, void *obj, uint32_t *out)
{
	if (t->count == t->cap) {
		uint32_t ncap = t->cap ? t->cap * 2 : 16;
		if (ncap > HANDLE_MAX || ncap < t->cap)
			return -ENOMEM;
		void **n = vmb_realloc(t->slots, (size_t)ncap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		for (uint32_t i = t->cap; i < ncap; i++)
			n[i] = NULL;
		t->slots = n;
		t->next = t->cap; /* fresh slots first: keeps handles from being reused early */
		t->cap = ncap;
	}
	/* count < cap, so a free slot exists: the cyclic scan terminates within cap steps. */
	uint32_t i = t->next;
	while (t->slots[i]) {
		if (++i == t->cap)
			i = 0;
	}
	t->slots[i] = obj;
	t->count++;
	t->next = i + 1 == t->cap ? 0 : i + 1;
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
		t->count--;
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
	uint32_t live = 0;
	for (uint32_t i = 0; i < t->cap; i++)
		live += t->slots[i] != NULL;
	if (live != t->count || (t->cap && t->next >= t->cap)) {
		fprintf(stderr, "handle table: %u live slots, count %u, next %u, cap %u\n", live, t->count,
			t->next, t->cap);
		return -EUCLEAN;
	}
	return 0;
}
