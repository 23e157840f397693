/* SPDX-License-Identifier: MIT */
/* Buffer objects: see mem/bo.h for what a BO owns, its references and its lock. */
#include "mem/bo.h"

#include <assert.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <vmbind/types.h>

#include "core/alloc.h"
#include "core/handle.h"
#include "dev/core.h"

/* VRAM first when allowed (it is the faster memory), SYSTEM when VRAM is full. */
static const uint32_t place_order[] = {VMB_REGION_VRAM, VMB_REGION_SYSTEM};

/* @chunk: what backing_alloc gets (0: the device's default at creation; afterwards the BO's
 * effective chunk, backing.align, the same in every backing it gets). */
static int bo_back(struct vmb_bo *bo, uint64_t chunk)
{
	struct vmb_device *dev = bo->dev;
	int err = -ENOSPC;

	for (unsigned int i = 0; i < 2; i++) {
		if (!(bo->placements & (1u << place_order[i])))
			continue;
		err = dev->ops->backing_alloc(dev, place_order[i], bo->size, chunk, bo->host, &bo->backing);
		if (err == 0) {
			bo->region = place_order[i];
			bo->resident = true;
			vmb_bo_lru_region(bo, VMB_REGION_SYSTEM, bo->region);
			return 0;
		}
		if (err != -ENOSPC)
			break;
	}
	return err;
}

int vmb_bo_back(struct vmb_bo *bo)
{
	vmb_dev_assert_cross(bo->dev);
	if (bo->resident)
		return 0;
	return bo_back(bo, bo->backing.align);
}

int vmb_bo_new(struct vmb_device *dev, uint64_t size, uint64_t chunk, uint32_t placements, struct vmb_bo **out)
{
	int err;
	/* larger than every region it may live in: -ENOSPC before any host memory is taken */
	bool fits = false;
	for (unsigned int i = 0; i < 2; i++)
		fits |= (placements & (1u << place_order[i])) && size <= dev->region_capacity[place_order[i]];
	if (!fits)
		return -ENOSPC;
	struct vmb_bo *bo = vmb_calloc(1, sizeof(*bo));
	if (!bo)
		return -ENOMEM;
	/* The BO's pages: shared (so the device's and the CPU's mappings are of the same pages),
	 * zero, committed as they are touched. */
	bo->host = vmb_map_should_fail() ? MAP_FAILED :
		   mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (bo->host == MAP_FAILED) {
		free(bo);
		return -ENOMEM;
	}
	bo->dev = dev;
	bo->serial = vmb_serial_next();
	vmb_list_init(&bo->lru_link);
	bo->size = size;
	bo->placements = placements;
	/* until it has a backing: the region it is to get first */
	bo->region = placements & VMB_PLACE_VRAM ? VMB_REGION_VRAM : VMB_REGION_SYSTEM;
	err = bo_back(bo, chunk);
	/* no room now in a region with VRAM allowed: the backing comes when first needed (a bind
	 * that maps it), as the region has room then (mem/bo.h); until then its bind granularity
	 * is the chunk asked for, or the device's minimum page size */
	if (err == -ENOSPC && (placements & VMB_PLACE_VRAM)) {
		memset(&bo->backing, 0, sizeof(bo->backing));
		bo->backing.align = chunk ? chunk : dev->min_page_size;
		err = 0;
	}
	if (err) {
		munmap(bo->host, size);
		free(bo);
		return err;
	}
	atomic_init(&bo->refs, 1);
	atomic_init(&bo->mem_refs, 1);
	vmb_list_init(&bo->vm_bos);
	*out = bo;
	return 0;
}

void vmb_bo_lru_region(struct vmb_bo *bo, uint32_t from, uint32_t to)
{
	struct vmb_device *dev = bo->dev;
	if (from == to)
		return;
	pthread_mutex_lock(&dev->lru_lock);
	if (!vmb_list_empty(&bo->lru_link)) {
		vmb_list_del(&bo->lru_link);
		vmb_list_init(&bo->lru_link);
	}
	if (to == VMB_REGION_VRAM)
		vmb_list_add_tail(&bo->lru_link, &dev->lru);
	pthread_mutex_unlock(&dev->lru_lock);
}

void vmb_bo_lru_touch(struct vmb_bo *bo)
{
	struct vmb_device *dev = bo->dev;
	pthread_mutex_lock(&dev->lru_lock);
	if (!vmb_list_empty(&bo->lru_link)) {
		vmb_list_del(&bo->lru_link);
		vmb_list_add_tail(&bo->lru_link, &dev->lru);
	}
	pthread_mutex_unlock(&dev->lru_lock);
}

void vmb_bo_put(struct vmb_bo *bo)
{
	if (atomic_fetch_sub(&bo->refs, 1) != 1)
		return;
	assert(!bo->cpu_maps && !bo->planned);
	/* the device stops reaching the pages, then the pages go with their last mapping (and
	 * their last pin: a pending user fence in the BO) */
	vmb_bo_lru_region(bo, bo->region, VMB_REGION_SYSTEM);
	if (bo->resident && !(bo->placements & (1u << bo->region)))
		atomic_fetch_sub(&bo->dev->misplaced, 1); /* evicted, never restored */
	if (bo->resident)
		bo->dev->ops->backing_free(bo->dev, bo->region, &bo->backing);
	vmb_bo_mem_put(bo);
}

void vmb_bo_mem_put(struct vmb_bo *bo)
{
	if (atomic_fetch_sub(&bo->mem_refs, 1) != 1)
		return;
	munmap(bo->host, bo->size);
	free(bo);
}

int vmb_bo_cpu_map(struct vmb_bo *bo, void **ptr)
{
	const struct vmb_device_ops *ops = bo->dev->ops;
	/* the first CPU map gives a BO created past capacity its backing if a region has room
	 * now; if none has, the CPU still reaches the BO's own pages (its first bind backs it) */
	if (!bo->resident)
		(void)vmb_bo_back(bo);
	int err = ops->backing_cpu_map ? ops->backing_cpu_map(bo->dev, vmb_bo_region_now(bo), &bo->backing) : 0;
	if (err)
		return err; /* asked at every map: the BO may have moved since the first */
	if (bo->cpu_maps == UINT32_MAX)
		return -ENOMEM;
	if (!bo->cpu_maps) {
		/* another mapping of the BO's pages (mremap with old size 0), where the kernel likes */
		void *p = vmb_map_should_fail() ? MAP_FAILED : mremap(bo->host, 0, bo->size, MREMAP_MAYMOVE);
		if (p == MAP_FAILED)
			return -ENOMEM;
		bo->cpu = p;
		vmb_bo_get(bo);
	}
	bo->cpu_maps++;
	*ptr = bo->cpu;
	return 0;
}

void vmb_bo_cpu_unmap(struct vmb_bo *bo)
{
	assert(bo->cpu_maps > 0);
	if (--bo->cpu_maps)
		return;
	munmap(bo->cpu, bo->size);
	bo->cpu = NULL;
	vmb_bo_put(bo);
}
