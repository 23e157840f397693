/* SPDX-License-Identifier: MIT */
/*
 * A memory region of the soft device: `capacity` bytes of device physical address space, an
 * allocator for it (a buddy allocator for VRAM: contiguous, naturally aligned blocks; a page
 * allocator for SYSTEM: 4 KiB granular) and its arena, the host view of that address space
 * through which the device reaches a physical address (dev/soft/phys.h: pa -> cpu + offset).
 *
 * What the region owns is the address space, never the bytes: a BO's bytes are its own shared
 * memory (mem/bo.h: `host`), and allocating extents for a BO maps those host pages into the
 * arena at the extents' offsets (mremap of the shared mapping, no copy). So a BO that moves
 * keeps its pages; only the physical address the device reaches them at changes.
 *
 * Invariants:
 *  - an allocated extent of the arena shows exactly the pages of the BO it was allocated for,
 *    at the extent's byte `off` of that BO;
 *  - free address space is private anonymous memory, reading zero: freeing extents replaces
 *    the BO's pages there with it, and never punches holes in or truncates a BO's memory
 *    (the pages belong to their BO and to every other mapping of it, in any process);
 *  - host mappings: the arena is one reservation; each run of extents of one BO that is
 *    contiguous both in physical and in BO offsets is one mapping of the BO's memory. The
 *    process's limit on mappings (vm.max_map_count, 65530 by default) bounds them: when it is
 *    reached, allocating fails with -ENOMEM, nothing kept. Freeing never needs a new mapping
 *    except where a run is part of a larger merged one; if replacing a run fails there, the
 *    BO's pages stay visible in free space (nothing reaches free space) until the range is
 *    allocated again, which replaces them.
 *
 * Locking: `lock` protects the allocator and `free` accounting; the arena reservation is
 * immutable after init, and the host mappings inside it follow the allocator: an extent is
 * mapped only by the one allocating it (before anyone else knows its address) and reset only
 * by the one freeing it (after the last user is gone), so they need no lock.
 */
#ifndef VMB_DEV_SOFT_REGION_H
#define VMB_DEV_SOFT_REGION_H

#include <pthread.h>
#include <stdint.h>

#include "dev/soft/phys.h"
#include "dev/soft/buddy.h"
#include "dev/soft/pages.h"

struct vmb_region {
	uint32_t id;       /* VMB_REGION_* */
	uint64_t aperture; /* VMB_PA_APERTURE_* */
	uint64_t capacity;
	uint64_t min_alignment;
	uint8_t *cpu;      /* the arena: capacity bytes (and a guard page), for the device's accesses */
	pthread_mutex_t lock;
	struct vmb_buddy buddy; /* VRAM */
	struct vmb_pages pages; /* SYSTEM */
};

int vmb_region_init(struct vmb_region *r, uint32_t id, uint64_t capacity);
void vmb_region_fini(struct vmb_region *r);
uint64_t vmb_region_free_bytes(struct vmb_region *r);

/*
 * Allocate @size bytes (multiple of min_alignment) for the memory at @host (a MAP_SHARED
 * mapping of at least @size bytes: a BO's pages) as extents (malloc'd array in *@ext, count in
 * *@n, ordered by BO offset) and map those pages into the arena at the extents.
 * 0, -ENOSPC, -ENOMEM (host memory, or the process's mappings).
 */
int vmb_region_alloc(struct vmb_region *r, uint64_t size, const void *host, struct vmb_extent **ext,
		     unsigned int *n);
/* Give back extents from vmb_region_alloc: the arena there reads zero again; the BO's pages
 * themselves are untouched (they go when the BO's last mapping goes). */
void vmb_region_free(struct vmb_region *r, const struct vmb_extent *ext, unsigned int n);
/* CPU pointer of a pa inside this region. */
static inline void *vmb_region_ptr(const struct vmb_region *r, uint64_t pa)
{
	return r->cpu + vmb_pa_offset(pa);
}
int vmb_region_validate(struct vmb_region *r);

#endif
