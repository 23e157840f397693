/* SPDX-License-Identifier: MIT */
#include "mem/bo.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <vmbind/types.h>

#include "core/alloc.h"

int vmb_bo_new(struct vmb_device *dev, uint64_t size, uint32_t placements, struct vmb_bo **out)
{
	/* VRAM first when allowed (it is the faster memory), SYSTEM when VRAM is full. */
	static const uint32_t order[] = {VMB_REGION_VRAM, VMB_REGION_SYSTEM};
	struct vmb_bo *bo = vmb_calloc(1, sizeof(*bo));
	int err = -ENOSPC;

	if (!bo)
		return -ENOMEM;
	for (unsigned int i = 0; i < 2; i++) {
		if (!(placements & (1u << order[i])))
			continue;
		err = dev->ops->backing_alloc(dev, order[i], size, &bo->backing);
		if (err == 0) {
			bo->region = order[i];
			break;
		}
		if (err != -ENOSPC)
			break;
	}
	if (err) {
		free(bo);
		return err;
	}
	bo->dev = dev;
	bo->refs = 1;
	bo->size = size;
	bo->placements = placements;
	vmb_list_init(&bo->vm_bos);
	*out = bo;
	return 0;
}

void vmb_bo_put(struct vmb_bo *bo)
{
	if (--bo->refs)
		return;
	if (bo->cpu)
		munmap(bo->cpu, bo->size);
	bo->dev->ops->backing_free(bo->dev, bo->region, &bo->backing);
	free(bo);
}

int vmb_bo_cpu_map(struct vmb_bo *bo, void **ptr)
{
	if (!bo->cpu) {
		void *p = mmap(NULL, bo->size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (p == MAP_FAILED)
			return -ENOMEM;
		int err = bo->dev->ops->backing_cpu_map(bo->dev, &bo->backing, p);
		if (err) {
			munmap(p, bo->size);
			return err;
		}
		bo->cpu = p;
	}
	bo->cpu_maps++;
	*ptr = bo->cpu;
	return 0;
}

int vmb_bo_cpu_unmap(struct vmb_bo *bo, void *ptr)
{
	if (!bo->cpu || ptr != bo->cpu)
		return -EINVAL;
	if (--bo->cpu_maps == 0) {
		munmap(bo->cpu, bo->size);
		bo->cpu = NULL;
	}
	return 0;
}

void vmb_bo_cpu_remap(struct vmb_bo *bo)
{
	if (!bo->cpu)
		return;
	/*
	 * Mapping pages over an existing mapping of ours with MAP_FIXED fails only when the
	 * process runs out of mappings; the caller is past the point of no return, so that is fatal.
	 */
	if (bo->dev->ops->backing_cpu_map(bo->dev, &bo->backing, bo->cpu)) {
		fprintf(stderr, "vmbind: cannot remap a moved BO for the CPU\n");
		abort();
	}
}
