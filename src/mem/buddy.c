/* SPDX-License-Identifier: MIT */
/*
 * Buddy allocator (see buddy.h). State per min-block index i (offset i * min_block):
 *   state[i] = FREE | order   i heads a free block of that order (linked in free list `order`)
 *   state[i] = USED | order   i heads an allocated block of that order
 *   state[i] = 0              i is inside a larger block
 * Free lists are doubly linked through next[]/prev[] (NIL ends), so a buddy can be unlinked in
 * O(1) when it merges. Invariant: no two free buddies of equal order (they would have merged).
 */
#include "mem/buddy.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#define NIL UINT32_MAX
#define FREE 0x80u
#define USED 0x40u
#define ORDER_MASK 0x3fu

struct buddy_impl {
	uint32_t *next, *prev;
	uint8_t *state;
	uint32_t head[VMB_BUDDY_MAX_ORDER + 1];
	uint64_t nblocks;
};

static struct buddy_impl *impl(const struct vmb_buddy *b) { return b->impl; }

static void list_add(struct buddy_impl *m, uint32_t i, unsigned int order)
{
	m->state[i] = (uint8_t)(FREE | order);
	m->prev[i] = NIL;
	m->next[i] = m->head[order];
	if (m->head[order] != NIL)
		m->prev[m->head[order]] = i;
	m->head[order] = i;
}

static void list_del(struct buddy_impl *m, uint32_t i, unsigned int order)
{
	if (m->prev[i] != NIL)
		m->next[m->prev[i]] = m->next[i];
	else
		m->head[order] = m->next[i];
	if (m->next[i] != NIL)
		m->prev[m->next[i]] = m->prev[i];
	m->state[i] = 0;
}

int vmb_buddy_init(struct vmb_buddy *b, uint64_t size, uint64_t min_block)
{
	if (min_block < 4096 || (min_block & (min_block - 1)) || !size || size % min_block ||
	    size / min_block >= NIL)
		return -EINVAL;
	struct buddy_impl *m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->nblocks = size / min_block;
	m->next = malloc(m->nblocks * sizeof(uint32_t));
	m->prev = malloc(m->nblocks * sizeof(uint32_t));
	m->state = calloc(m->nblocks, 1);
	if (!m->next || !m->prev || !m->state) {
		free(m->next);
		free(m->prev);
		free(m->state);
		free(m);
		return -ENOMEM;
	}
	for (unsigned int o = 0; o <= VMB_BUDDY_MAX_ORDER; o++)
		m->head[o] = NIL;
	b->size = size;
	b->min_block = min_block;
	b->impl = m;
	b->free_bytes = size;
	b->max_order = 0;
	/* cover [0, size) with the largest naturally aligned blocks that fit */
	for (uint64_t i = 0; i < m->nblocks;) {
		unsigned int o = 0;
		while (o < VMB_BUDDY_MAX_ORDER && (i & ((2ull << o) - 1)) == 0 && i + (2ull << o) <= m->nblocks)
			o++;
		list_add(m, (uint32_t)i, o);
		if (o > b->max_order)
			b->max_order = o;
		i += 1ull << o;
	}
	return 0;
}

void vmb_buddy_fini(struct vmb_buddy *b)
{
	struct buddy_impl *m = impl(b);
	if (!m)
		return;
	free(m->next);
	free(m->prev);
	free(m->state);
	free(m);
	b->impl = NULL;
}

int vmb_buddy_alloc(struct vmb_buddy *b, unsigned int order, uint64_t *offset)
{
	struct buddy_impl *m = impl(b);
	unsigned int o = order;

	if (order > b->max_order)
		return order > VMB_BUDDY_MAX_ORDER ? -EINVAL : -ENOSPC;
	while (o <= b->max_order && m->head[o] == NIL)
		o++;
	if (o > b->max_order)
		return -ENOSPC;
	uint32_t i = m->head[o];
	list_del(m, i, o);
	while (o > order) { /* split: keep the lower half, free the upper */
		o--;
		list_add(m, i + (uint32_t)(1u << o), o);
	}
	m->state[i] = (uint8_t)(USED | order);
	b->free_bytes -= b->min_block << order;
	*offset = (uint64_t)i * b->min_block;
	return 0;
}

void vmb_buddy_free(struct vmb_buddy *b, uint64_t offset, unsigned int order)
{
	struct buddy_impl *m = impl(b);
	uint32_t i = (uint32_t)(offset / b->min_block);

	if (m->state[i] != (USED | order)) {
		fprintf(stderr, "buddy: free of 0x%llx order %u, not an allocated block\n", (unsigned long long)offset,
			order);
		abort();
	}
	m->state[i] = 0;
	b->free_bytes += b->min_block << order;
	while (order < b->max_order) {
		uint64_t buddy = (uint64_t)i ^ (1ull << order);
		if (buddy >= m->nblocks || m->state[buddy] != (FREE | order))
			break;
		list_del(m, (uint32_t)buddy, order);
		if (buddy < i)
			i = (uint32_t)buddy;
		order++;
	}
	list_add(m, i, order);
}

int vmb_buddy_alloc_range(struct vmb_buddy *b, uint64_t size, struct vmb_buddy_block *out, unsigned int max_blocks)
{
	unsigned int n = 0;
	uint64_t left = size;

	if (!size || size % b->min_block || !max_blocks)
		return -EINVAL;
	if (size > b->free_bytes)
		return -ENOSPC;
	while (left) {
		/* the largest order not larger than what is left, then smaller ones if none is free */
		unsigned int o = 63 - (unsigned int)__builtin_clzll(left / b->min_block);
		if (o > b->max_order)
			o = b->max_order;
		uint64_t off;
		int err;
		while ((err = vmb_buddy_alloc(b, o, &off)) == -ENOSPC && o > 0)
			o--;
		if (err || n == max_blocks) {
			if (!err)
				vmb_buddy_free(b, off, o);
			vmb_buddy_free_range(b, out, n);
			return -ENOSPC;
		}
		out[n].offset = off;
		out[n].size = b->min_block << o;
		left -= out[n].size;
		n++;
	}
	return (int)n;
}

void vmb_buddy_free_range(struct vmb_buddy *b, const struct vmb_buddy_block *blocks, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++)
		vmb_buddy_free(b, blocks[i].offset, (unsigned int)__builtin_ctzll(blocks[i].size / b->min_block));
}

int vmb_buddy_validate(const struct vmb_buddy *b)
{
	const struct buddy_impl *m = impl(b);
	uint64_t free_blocks = 0, covered = 0;

	for (unsigned int o = 0; o <= VMB_BUDDY_MAX_ORDER; o++) {
		uint32_t prev = NIL;
		for (uint32_t i = m->head[o]; i != NIL; prev = i, i = m->next[i]) {
			uint64_t buddy = (uint64_t)i ^ (1ull << o);
			if (i >= m->nblocks || m->state[i] != (FREE | o) || m->prev[i] != prev || (i & ((1ull << o) - 1)) ||
			    i + (1ull << o) > m->nblocks) {
				fprintf(stderr, "buddy: bad free block %u order %u\n", i, o);
				return -EUCLEAN;
			}
			if (o < b->max_order && buddy < m->nblocks && m->state[buddy] == (FREE | o)) {
				fprintf(stderr, "buddy: free buddies %u and %llu of order %u not merged\n", i,
					(unsigned long long)buddy, o);
				return -EUCLEAN;
			}
			free_blocks += 1ull << o;
		}
	}
	/* every min-block is inside exactly one head's block: walk the heads in address order */
	for (uint64_t i = 0; i < m->nblocks;) {
		uint8_t s = m->state[i];
		if (!(s & (FREE | USED))) {
			fprintf(stderr, "buddy: block %llu is not covered by any block\n", (unsigned long long)i);
			return -EUCLEAN;
		}
		uint64_t len = 1ull << (s & ORDER_MASK);
		for (uint64_t j = i + 1; j < i + len && j < m->nblocks; j++)
			if (m->state[j]) {
				fprintf(stderr, "buddy: block %llu overlaps block %llu\n", (unsigned long long)j,
					(unsigned long long)i);
				return -EUCLEAN;
			}
		covered += len;
		i += len;
	}
	if (free_blocks * b->min_block != b->free_bytes || covered != m->nblocks) {
		fprintf(stderr, "buddy: free lists hold %llu bytes, free_bytes %llu\n",
			(unsigned long long)(free_blocks * b->min_block), (unsigned long long)b->free_bytes);
		return -EUCLEAN;
	}
	return 0;
}
