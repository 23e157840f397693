/* SPDX-License-Identifier: MIT */
/*
 * Buddy allocator over an address range [0, size) (VRAM offsets). Blocks are 2^order * min_block
 * bytes, naturally aligned to their size, so a block is physically contiguous and aligned: a
 * 2 MiB block can be mapped with a 2 MiB page. Free lists per order; buddies merge on free.
 * `size` need not be a power of two: the range is covered by the largest aligned blocks that fit.
 *
 * vmb_buddy_alloc_range() allocates @size bytes (multiple of min_block) as a list of blocks,
 * greedily largest first (3 MiB -> 2 MiB + 1 MiB), each naturally aligned.
 *
 * Locking: none inside; the region owning it holds its lock.
 */
#ifndef VMB_DEV_SOFT_BUDDY_H
#define VMB_DEV_SOFT_BUDDY_H

#include <stdint.h>

#define VMB_BUDDY_MAX_ORDER 31

struct vmb_buddy_block {
	uint64_t offset;
	uint64_t size;
};

struct vmb_buddy {
	uint64_t size;      /* managed bytes, multiple of min_block */
	uint64_t min_block; /* power of two, >= 4096 */
	unsigned int max_order;
	uint64_t free_bytes;
	/* implementation state (free lists per order, per-block state) is the implementer's */
	void *impl;
};

int vmb_buddy_init(struct vmb_buddy *b, uint64_t size, uint64_t min_block); /* 0, -EINVAL, -ENOMEM */
void vmb_buddy_fini(struct vmb_buddy *b);
/* One block of 2^order * min_block bytes: 0, -ENOSPC (no block that large free), -EINVAL. */
int vmb_buddy_alloc(struct vmb_buddy *b, unsigned int order, uint64_t *offset);
void vmb_buddy_free(struct vmb_buddy *b, uint64_t offset, unsigned int order);
/*
 * @size bytes as at most @max_blocks blocks written to @out, largest first; returns the number
 * of blocks (> 0), -ENOSPC (not enough free, or too fragmented for max_blocks: nothing kept),
 * -EINVAL.
 */
int vmb_buddy_alloc_range(struct vmb_buddy *b, uint64_t size, struct vmb_buddy_block *out,
			  unsigned int max_blocks);
void vmb_buddy_free_range(struct vmb_buddy *b, const struct vmb_buddy_block *blocks, unsigned int n);
/* 0 or -EUCLEAN: free lists consistent, no overlapping blocks, free_bytes matches. */
int vmb_buddy_validate(const struct vmb_buddy *b);

#endif
