/* SPDX-License-Identifier: MIT */
/*
 * Device physical addresses and the description of a mapping's backing.
 *
 * A device physical address (pa) of the soft device is an aperture in bits 48..51 and an offset
 * in bits 0..47: VRAM and SYSTEM offsets are into the device's region arenas, HOST is a host
 * virtual address (MAP_USERPTR). Page-table entries hold pa bits 12..51.
 */
#ifndef VMB_DEV_SOFT_PHYS_H
#define VMB_DEV_SOFT_PHYS_H

#include <stdint.h>

#define VMB_PA_APERTURE_SHIFT 48
#define VMB_PA_APERTURE_VRAM 0ull
#define VMB_PA_APERTURE_SYSTEM 1ull
#define VMB_PA_APERTURE_HOST 2ull
#define VMB_PA_OFFSET_MASK ((1ull << VMB_PA_APERTURE_SHIFT) - 1)

static inline uint64_t vmb_pa(uint64_t aperture, uint64_t offset)
{
	return (aperture << VMB_PA_APERTURE_SHIFT) | (offset & VMB_PA_OFFSET_MASK);
}
static inline uint64_t vmb_pa_aperture(uint64_t pa) { return (pa >> VMB_PA_APERTURE_SHIFT) & 0xf; }
static inline uint64_t vmb_pa_offset(uint64_t pa) { return pa & VMB_PA_OFFSET_MASK; }

/* A physically contiguous piece of a backing, at byte `off` of the backing. */
struct vmb_extent {
	uint64_t off;
	uint64_t pa;
	uint64_t size;
};

/*
 * A backing: what a MAP points at, as extents ordered by `off`, without gaps, ext[0].off == 0
 * (a BO placed in VRAM: buddy blocks; in SYSTEM: runs of pages; a userptr: one HOST extent).
 */
struct vmb_backing {
	const struct vmb_extent *ext;
	unsigned int n;
	uint64_t size; /* sum of ext[i].size */
};

/* Walks a backing forward from an offset without repeating the search. */
struct vmb_backing_cursor {
	const struct vmb_backing *b;
	unsigned int i;   /* current extent */
	uint64_t in;      /* offset inside ext[i] */
};

/* Position @c at byte @off (< b->size) of @b: binary search, O(log n). */
static inline void vmb_backing_seek(struct vmb_backing_cursor *c, const struct vmb_backing *b, uint64_t off)
{
	unsigned int lo = 0, hi = b->n; /* invariant: ext[lo].off <= off < ext[hi].off (hi = n: end) */
	while (hi - lo > 1) {
		unsigned int mid = lo + (hi - lo) / 2;
		if (b->ext[mid].off <= off)
			lo = mid;
		else
			hi = mid;
	}
	c->b = b;
	c->i = lo;
	c->in = off - b->ext[lo].off;
}

/* Physical address at the cursor and the contiguous bytes from there. */
static inline uint64_t vmb_backing_pa(const struct vmb_backing_cursor *c, uint64_t *contig)
{
	const struct vmb_extent *e = &c->b->ext[c->i];
	*contig = e->size - c->in;
	return e->pa + c->in;
}

/* Move @c forward by @len bytes (not past the end). */
static inline void vmb_backing_advance(struct vmb_backing_cursor *c, uint64_t len)
{
	c->in += len;
	while (c->i < c->b->n && c->in >= c->b->ext[c->i].size) {
		c->in -= c->b->ext[c->i].size;
		c->i++;
	}
}

#endif
