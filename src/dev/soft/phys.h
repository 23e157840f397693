/* SPDX-License-Identifier: MIT */
/*
 * The soft device's physical addresses and what its backings hold (extents of them).
 *
 * A device physical address (pa) of the soft device is an aperture in bits 48..51 and an offset
 * in bits 0..47: VRAM and SYSTEM offsets are into the device's region arenas, HOST is a host
 * virtual address (MAP_USERPTR). Page-table entries hold pa bits 12..51.
 */
#ifndef VMB_DEV_SOFT_PHYS_H
#define VMB_DEV_SOFT_PHYS_H

#include <stdint.h>

#include "dev/device.h"

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
 * The soft device's part of a struct vmb_backing (dev/device.h), which the core never reads:
 *  - a BO's memory in a region: dev_ptr is its extents, ordered by `off`, without gaps,
 *    ext[0].off == 0 (VRAM: buddy blocks; SYSTEM: runs of pages), dev_u64 their count;
 *  - application memory (MAP_USERPTR): dev_ptr is NULL and dev_u64 the host address, which is
 *    one HOST extent: nothing allocated.
 * `size` is the sum of the extents; `align` the bind granularity (dev/device.h), which soft.c
 * sets (the BO's chunk size, or min_page_size). vmb_soft_contig_align() is the
 * largest page size (capped at 1 GiB) that divides every extent's pa and offset, so that a leaf
 * of that size never straddles two extents.
 */
static inline uint64_t vmb_soft_align_of(uint64_t bits)
{
	uint64_t a = bits & -bits; /* lowest set bit; 0 when bits is 0 */
	return !a || a > (1ull << 30) ? 1ull << 30 : a;
}

/* A backing over @n extents (@ext stays the caller's while the backing lives). */
static inline struct vmb_backing vmb_soft_backing(const struct vmb_extent *ext, unsigned int n)
{
	struct vmb_backing b = {.dev_ptr = (void *)(uintptr_t)ext, .dev_u64 = n};
	for (unsigned int i = 0; i < n; i++)
		b.size += ext[i].size;
	return b;
}

/* A backing of @size bytes of application memory at host address @addr. */
static inline struct vmb_backing vmb_soft_backing_host(uint64_t addr, uint64_t size)
{
	return (struct vmb_backing){.size = size, .dev_u64 = addr};
}

static inline const struct vmb_extent *vmb_soft_backing_ext(const struct vmb_backing *b)
{
	return (const struct vmb_extent *)b->dev_ptr;
}
static inline unsigned int vmb_soft_backing_n(const struct vmb_backing *b)
{
	return b->dev_ptr ? (unsigned int)b->dev_u64 : 0;
}

/* The largest leaf its contiguity allows (above). */
static inline uint64_t vmb_soft_contig_align(const struct vmb_backing *b)
{
	const struct vmb_extent *ext = vmb_soft_backing_ext(b);
	uint64_t bits = ext ? 0 : b->dev_u64;
	for (unsigned int i = 0; i < vmb_soft_backing_n(b); i++)
		bits |= ext[i].off | (ext[i].pa & VMB_PA_OFFSET_MASK);
	return vmb_soft_align_of(bits);
}

/* Walks a backing forward from an offset without repeating the search. */
struct vmb_backing_cursor {
	const struct vmb_backing *b;
	unsigned int i;   /* current extent (a host backing: always 0) */
	uint64_t in;      /* offset inside ext[i] (a host backing: inside the backing) */
};

/* Position @c at byte @off (< b->size) of @b: binary search, O(log n). */
static inline void vmb_backing_seek(struct vmb_backing_cursor *c, const struct vmb_backing *b, uint64_t off)
{
	const struct vmb_extent *ext = vmb_soft_backing_ext(b);
	unsigned int lo = 0, hi = vmb_soft_backing_n(b); /* invariant: ext[lo].off <= off < ext[hi].off (hi = n: end) */
	while (hi - lo > 1) {
		unsigned int mid = lo + (hi - lo) / 2;
		if (ext[mid].off <= off)
			lo = mid;
		else
			hi = mid;
	}
	c->b = b;
	c->i = lo;
	c->in = ext ? off - ext[lo].off : off;
}

/* Physical address at the cursor and the contiguous bytes from there. */
static inline uint64_t vmb_backing_pa(const struct vmb_backing_cursor *c, uint64_t *contig)
{
	const struct vmb_extent *ext = vmb_soft_backing_ext(c->b);
	if (!ext) {
		*contig = c->b->size - c->in;
		return vmb_pa(VMB_PA_APERTURE_HOST, c->b->dev_u64 + c->in);
	}
	*contig = ext[c->i].size - c->in;
	return ext[c->i].pa + c->in;
}

/* Move @c forward by @len bytes (not past the end). */
static inline void vmb_backing_advance(struct vmb_backing_cursor *c, uint64_t len)
{
	const struct vmb_extent *ext = vmb_soft_backing_ext(c->b);
	unsigned int n = vmb_soft_backing_n(c->b);
	c->in += len;
	while (ext && c->i < n && c->in >= ext[c->i].size) {
		c->in -= ext[c->i].size;
		c->i++;
	}
}

#endif
