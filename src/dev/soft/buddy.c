/* SPDX-License-Identifier: MIT */
/*
 * Buddy allocator. State lives in one array with an entry per min_block ("unit"), indexed by
 * offset / min_block. Only the first unit of a block (its head) carries state: FREE or ALLOC and
 * the block's order; every other unit is NONE. Free blocks are on a doubly linked list per order
 * whose links are the heads' prev/next indices, so a specific block (a buddy) is unlinked in
 * O(1). A bitmask of non-empty orders finds the smallest free order >= a request (and the
 * largest free order) in O(1).
 *
 * Invariant kept by free(): no two free buddies of the same order coexist (they are merged), so
 * the set of free blocks is the canonical decomposition of the free units.
 */
#include "dev/soft/buddy.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/alloc.h"

#define NIL UINT32_MAX

enum unit_state {
	UNIT_NONE = 0, /* not the head of a block (inside one) */
	UNIT_FREE,
	UNIT_ALLOC,
};

struct unit {
	uint32_t prev;
	uint32_t next;
	uint8_t state;
	uint8_t order;
};

struct buddy_impl {
	uint64_t nunits;
	uint32_t head[VMB_BUDDY_MAX_ORDER + 1];
	uint64_t nonempty; /* bit o: head[o] != NIL */
	struct unit *units;
};

static unsigned int ilog2_u64(uint64_t v)
{
	return 63u - (unsigned int)__builtin_clzll(v);
}

static struct buddy_impl *impl_of(const struct vmb_buddy *b)
{
	return b->impl;
}

static void list_push(struct buddy_impl *m, uint32_t idx, unsigned int order)
{
	struct unit *u = &m->units[idx];

	u->state = UNIT_FREE;
	u->order = (uint8_t)order;
	u->prev = NIL;
	u->next = m->head[order];
	if (u->next != NIL)
		m->units[u->next].prev = idx;
	m->head[order] = idx;
	m->nonempty |= 1ull << order;
}

static void list_remove(struct buddy_impl *m, uint32_t idx)
{
	struct unit *u = &m->units[idx];
	unsigned int order = u->order;

	assert(u->state == UNIT_FREE);
	if (u->prev != NIL)
		m->units[u->prev].next = u->next;
	else
		m->head[order] = u->next;
	if (u->next != NIL)
		m->units[u->next].prev = u->prev;
	if (m->head[order] == NIL)
		m->nonempty &= ~(1ull << order);
	u->prev = NIL;
	u->next = NIL;
	u->state = UNIT_NONE;
}

int vmb_buddy_init(struct vmb_buddy *b, uint64_t size, uint64_t min_block)
{
	if (!b || min_block < 4096 || (min_block & (min_block - 1)) || size == 0 || size % min_block)
		return -EINVAL;
	uint64_t nunits = size / min_block;
	if (nunits >= NIL) /* indices must fit the 32-bit links, NIL excluded */
		return -EINVAL;

	struct buddy_impl *m = vmb_malloc(sizeof(*m));
	if (!m)
		return -ENOMEM;
	/* calloc: UNIT_NONE is 0, and untouched pages of a large array stay unpopulated */
	m->units = vmb_calloc((size_t)nunits, sizeof(*m->units));
	if (!m->units) {
		free(m);
		return -ENOMEM;
	}
	m->nunits = nunits;
	m->nonempty = 0;
	for (unsigned int o = 0; o <= VMB_BUDDY_MAX_ORDER; o++)
		m->head[o] = NIL;

	unsigned int max_order = ilog2_u64(nunits);
	if (max_order > VMB_BUDDY_MAX_ORDER)
		max_order = VMB_BUDDY_MAX_ORDER;

	/* Cover [0, nunits) with the largest naturally aligned blocks, low offsets first. */
	uint64_t idx = 0;
	while (idx < nunits) {
		unsigned int o = ilog2_u64(nunits - idx);
		if (idx) {
			unsigned int align = (unsigned int)__builtin_ctzll(idx);
			if (align < o)
				o = align;
		}
		if (o > max_order)
			o = max_order;
		list_push(m, (uint32_t)idx, o);
		idx += 1ull << o;
	}

	b->size = size;
	b->min_block = min_block;
	b->max_order = max_order;
	b->free_bytes = size;
	b->impl = m;
	return 0;
}

void vmb_buddy_fini(struct vmb_buddy *b)
{
	struct buddy_impl *m = impl_of(b);

	if (m) {
		free(m->units);
		free(m);
	}
	b->impl = NULL;
	b->free_bytes = 0;
}

int vmb_buddy_alloc(struct vmb_buddy *b, unsigned int order, uint64_t *offset)
{
	struct buddy_impl *m = impl_of(b);

	if (!m || !offset || order > VMB_BUDDY_MAX_ORDER)
		return -EINVAL;
	if (order > b->max_order)
		return -ENOSPC;
	uint64_t avail = m->nonempty >> order;
	if (!avail)
		return -ENOSPC;
	unsigned int o = order + (unsigned int)__builtin_ctzll(avail);
	uint32_t idx = m->head[o];

	list_remove(m, idx);
	/* Split down, keeping the lower half and freeing the upper one at each step. */
	while (o > order) {
		o--;
		list_push(m, idx + (uint32_t)(1u << o), o);
	}
	m->units[idx].state = UNIT_ALLOC;
	m->units[idx].order = (uint8_t)order;
	b->free_bytes -= b->min_block << order;
	*offset = (uint64_t)idx * b->min_block;
	return 0;
}

void vmb_buddy_free(struct vmb_buddy *b, uint64_t offset, unsigned int order)
{
	struct buddy_impl *m = impl_of(b);
	bool ok = m && offset % b->min_block == 0 && offset / b->min_block < m->nunits &&
		  order <= b->max_order;
	uint64_t idx = ok ? offset / b->min_block : 0;

	if (ok) {
		const struct unit *u = &m->units[idx];
		ok = u->state == UNIT_ALLOC && u->order == order;
	}
	if (!ok) {
		fprintf(stderr, "vmb_buddy_free: offset 0x%" PRIx64 " order %u is not an allocated block\n",
			offset, order);
		assert(!"vmb_buddy_free of a block that is not allocated");
		return;
	}

	m->units[idx].state = UNIT_NONE;
	b->free_bytes += b->min_block << order;
	while (order < b->max_order) {
		uint64_t buddy = idx ^ (1ull << order);
		if (buddy + (1ull << order) > m->nunits)
			break; /* the buddy would extend past the end: never exists */
		const struct unit *bu = &m->units[buddy];
		if (bu->state != UNIT_FREE || bu->order != order)
			break;
		list_remove(m, (uint32_t)buddy);
		if (buddy < idx)
			idx = buddy;
		order++;
	}
	list_push(m, (uint32_t)idx, order);
}

int vmb_buddy_alloc_range(struct vmb_buddy *b, uint64_t size, struct vmb_buddy_block *out,
			  unsigned int max_blocks)
{
	struct buddy_impl *m = impl_of(b);

	if (!m || !out || max_blocks == 0 || size == 0 || size % b->min_block)
		return -EINVAL;
	if (size > b->free_bytes)
		return -ENOSPC;
	if (max_blocks > INT32_MAX)
		max_blocks = INT32_MAX; /* the count is returned as an int */

	uint64_t remaining = size / b->min_block;
	unsigned int n = 0;

	while (remaining) {
		if (n == max_blocks) {
			/* too fragmented (or asked too few blocks): give everything back */
			vmb_buddy_free_range(b, out, n);
			return -ENOSPC;
		}
		/* free_bytes >= remaining guarantees a non-empty free list */
		assert(m->nonempty);
		unsigned int o = ilog2_u64(remaining);
		unsigned int largest = ilog2_u64(m->nonempty);
		if (o > largest)
			o = largest;
		if (o > b->max_order)
			o = b->max_order;
		/*
		 * A block of order o is available (by splitting) whenever o <= largest, so this
		 * loop only ever goes down if that stops holding; keep it for robustness.
		 */
		uint64_t off;
		int err;
		while ((err = vmb_buddy_alloc(b, o, &off)) == -ENOSPC && o > 0)
			o--;
		if (err) {
			vmb_buddy_free_range(b, out, n);
			return -ENOSPC;
		}
		out[n].offset = off;
		out[n].size = b->min_block << o;
		n++;
		remaining -= 1ull << o;
	}
	return (int)n;
}

void vmb_buddy_free_range(struct vmb_buddy *b, const struct vmb_buddy_block *blocks, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++) {
		uint64_t units = blocks[i].size / b->min_block;
		unsigned int order = units ? (unsigned int)__builtin_ctzll(units) : 0;

		if (units == 0 || (units & (units - 1)) || blocks[i].size % b->min_block) {
			fprintf(stderr, "vmb_buddy_free_range: block 0x%" PRIx64 "+0x%" PRIx64
				" has no buddy size\n", blocks[i].offset, blocks[i].size);
			assert(!"vmb_buddy_free_range of a block with a bad size");
			continue;
		}
		vmb_buddy_free(b, blocks[i].offset, order);
	}
}

#define CHECK(cond, ...)                                                      \
	do {                                                                  \
		if (!(cond)) {                                                \
			fprintf(stderr, "vmb_buddy_validate: " __VA_ARGS__);  \
			fputc('\n', stderr);                                  \
			return -EUCLEAN;                                      \
		}                                                             \
	} while (0)

int vmb_buddy_validate(const struct vmb_buddy *b)
{
	const struct buddy_impl *m = impl_of(b);

	CHECK(m, "not initialised");
	CHECK(b->min_block >= 4096 && !(b->min_block & (b->min_block - 1)), "bad min_block %" PRIu64,
	      b->min_block);
	CHECK(b->size == m->nunits * b->min_block, "size %" PRIu64 " != %" PRIu64 " units",
	      b->size, m->nunits);
	CHECK(b->max_order <= VMB_BUDDY_MAX_ORDER && (1ull << b->max_order) <= m->nunits,
	      "bad max_order %u", b->max_order);

	/* Free lists: linkage, state, alignment, bounds; recompute the free units. */
	uint64_t free_units = 0, listed = 0;
	for (unsigned int o = 0; o <= VMB_BUDDY_MAX_ORDER; o++) {
		bool nonempty = (m->nonempty >> o) & 1;
		CHECK(nonempty == (m->head[o] != NIL), "order %u: non-empty bit %d but head %" PRIu32,
		      o, nonempty, m->head[o]);
		CHECK(o <= b->max_order || m->head[o] == NIL, "order %u above max_order %u has blocks",
		      o, b->max_order);
		uint32_t prev = NIL;
		for (uint32_t i = m->head[o]; i != NIL; i = m->units[i].next) {
			CHECK(i < m->nunits, "order %u: index %" PRIu32 " out of range", o, i);
			const struct unit *u = &m->units[i];
			CHECK(u->state == UNIT_FREE, "order %u: listed unit %" PRIu32 " not free (state %u)",
			      o, i, u->state);
			CHECK(u->order == o, "order %u: listed unit %" PRIu32 " has order %u", o, i, u->order);
			CHECK(u->prev == prev, "order %u: unit %" PRIu32 " prev %" PRIu32 " != %" PRIu32, o,
			      i, u->prev, prev);
			CHECK(i % (1ull << o) == 0, "order %u: unit %" PRIu32 " misaligned", o, i);
			CHECK(i + (1ull << o) <= m->nunits, "order %u: unit %" PRIu32 " past the end", o, i);
			CHECK(++listed <= m->nunits, "order %u: free list cycles", o);
			free_units += 1ull << o;
			prev = i;
		}
	}
	CHECK(free_units * b->min_block == b->free_bytes,
	      "free lists hold %" PRIu64 " bytes, free_bytes %" PRIu64, free_units * b->min_block,
	      b->free_bytes);

	/*
	 * State array: the heads tile [0, nunits) exactly (so blocks neither overlap nor leave
	 * gaps), units inside a block are NONE, every FREE head is one of the listed blocks, and no
	 * free block has a free buddy of its order.
	 */
	uint64_t free_heads = 0;
	for (uint64_t i = 0; i < m->nunits;) {
		const struct unit *u = &m->units[i];
		CHECK(u->state == UNIT_FREE || u->state == UNIT_ALLOC,
		      "unit %" PRIu64 " should head a block (state %u)", i, u->state);
		unsigned int o = u->order;
		CHECK(o <= b->max_order, "unit %" PRIu64 ": order %u > max_order", i, o);
		CHECK(i % (1ull << o) == 0, "unit %" PRIu64 ": order %u misaligned", i, o);
		CHECK(i + (1ull << o) <= m->nunits, "unit %" PRIu64 ": order %u past the end", i, o);
		for (uint64_t j = i + 1; j < i + (1ull << o); j++)
			CHECK(m->units[j].state == UNIT_NONE,
			      "unit %" PRIu64 " inside block %" PRIu64 "/%u has state %u (overlap)", j, i,
			      o, m->units[j].state);
		if (u->state == UNIT_FREE) {
			free_heads++;
			uint64_t buddy = i ^ (1ull << o);
			if (o < b->max_order && buddy + (1ull << o) <= m->nunits)
				CHECK(!(m->units[buddy].state == UNIT_FREE && m->units[buddy].order == o),
				      "free buddies %" PRIu64 " and %" PRIu64 " of order %u not merged", i,
				      buddy, o);
		}
		i += 1ull << o;
	}
	CHECK(free_heads == listed, "%" PRIu64 " free blocks but %" PRIu64 " listed", free_heads,
	      listed);
	return 0;
}
