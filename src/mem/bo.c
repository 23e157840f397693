/* SPDX-License-Identifier: MIT */
/* Buffer objects: see mem/bo.h for what a BO owns, its references and its lock. */
#include "mem/bo.h"

#include <assert.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <vmbind/types.h>

#include "core/alloc.h"
#include "dev/core.h"

int vmb_bo_new(struct vmb_device *dev, uint64_t size, uint64_t chunk, uint32_t placements, struct vmb_bo **out)
{
	/* VRAM first when allowed (it is the faster memory), SYSTEM when VRAM is full. */
	static const uint32_t order[] = {VMB_REGION_VRAM, VMB_REGION_SYSTEM};
	int err = -ENOSPC;
	/* larger than every region it may live in: -ENOSPC before any host memory is taken */
	bool fits = false;
	for (unsigned int i = 0; i < 2; i++)
		fits |= (placements & (1u << order[i])) && size <= dev->region_capacity[order[i]];
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
	for (unsigned int i = 0; i < 2; i++) {
		if (!(placements & (1u << order[i])))
			continue;
		err = dev->ops->backing_alloc(dev, order[i], size, chunk, bo->host, &bo->backing);
		if (err == 0) {
			bo->region = order[i];
			break;
		}
		if (err != -ENOSPC)
			break;
	}
	if (err) {
		munmap(bo->host, size);
		free(bo);
		return err;
	}
	bo->dev = dev;
	atomic_init(&bo->refs, 1);
	atomic_init(&bo->mem_refs, 1);
	bo->size = size;
	bo->placements = placements;
	vmb_list_init(&bo->vm_bos);
	*out = bo;
	return 0;
}

void vmb_bo_put(struct vmb_bo *bo)
{
	if (atomic_fetch_sub(&bo->refs, 1) != 1)
		return;
	assert(!bo->cpu_maps && !bo->planned);
	/* the device stops reaching the pages, then the pages go with their last mapping (and
	 * their last pin: a pending user fence in the BO) */
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
