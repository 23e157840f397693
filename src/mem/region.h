/* SPDX-License-Identifier: MIT */
/*
 * A memory region of the soft device: an arena of `capacity` bytes (a memfd, so a BO's pages
 * can also be mapped for the CPU at any address) and its allocator: a buddy allocator for VRAM
 * (contiguous, naturally aligned blocks) or a page allocator for SYSTEM (4 KiB granular).
 * An allocation is returned as extents of device physical addresses (dev/phys.h).
 *
 * Locking: `lock` protects the allocator and `free` accounting; the arena mapping is immutable
 * after init.
 */
#ifndef VMB_MEM_REGION_H
#define VMB_MEM_REGION_H

#include <pthread.h>
#include <stdint.h>

#include "dev/phys.h"
#include "mem/buddy.h"
#include "mem/pages.h"

struct vmb_region {
	uint32_t id;       /* VMB_REGION_* */
	uint64_t aperture; /* VMB_PA_APERTURE_* */
	uint64_t capacity;
	uint64_t min_alignment;
	int memfd;
	uint8_t *cpu;      /* the whole arena, mapped shared, for the device's own accesses */
	pthread_mutex_t lock;
	struct vmb_buddy buddy; /* VRAM */
	struct vmb_pages pages; /* SYSTEM */
};

int vmb_region_init(struct vmb_region *r, uint32_t id, uint64_t capacity);
void vmb_region_fini(struct vmb_region *r);
uint64_t vmb_region_free_bytes(struct vmb_region *r);

/*
 * Allocate @size bytes (multiple of min_alignment) as extents (malloc'd array in *@ext, count in
 * *@n, extents ordered by backing offset). 0, -ENOSPC, -ENOMEM.
 */
int vmb_region_alloc(struct vmb_region *r, uint64_t size, struct vmb_extent **ext, unsigned int *n);
/* Give back extents from vmb_region_alloc (also releases the pages' memory to the host). */
void vmb_region_free(struct vmb_region *r, const struct vmb_extent *ext, unsigned int n);
/* CPU pointer of a pa inside this region. */
static inline void *vmb_region_ptr(const struct vmb_region *r, uint64_t pa)
{
	return r->cpu + vmb_pa_offset(pa);
}
int vmb_region_validate(struct vmb_region *r);

#endif
