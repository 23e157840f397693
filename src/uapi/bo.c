/* SPDX-License-Identifier: MIT */
/* Entry points: BO create, destroy, query, CPU map and unmap. */
#include <errno.h>
#include <vmbind/bo.h>

#include "mem/bo.h"
#include "uapi/uapi.h"

#define KNOWN_PLACEMENTS (VMB_PLACE_SYSTEM | VMB_PLACE_VRAM)

VMB_ENTRY(vmb_bo_create, struct vmb_bo_create, args)
{
	struct vmb_bo *bo;
	uint32_t h;
	int err;

	if (!c || !args || args->flags || args->pad || !VMB_ZERO(args->reserved))
		return -EINVAL;
	if (!args->placements || (args->placements & ~KNOWN_PLACEMENTS))
		return -EINVAL;
	if (!args->size || (args->size & VMB_PAGE_MASK))
		return -EINVAL;
	vmb_lock(c);
	err = vmb_bo_new(c->dev, args->size, args->placements, &bo);
	if (!err) {
		err = vmb_handle_alloc(&c->bos, bo, &h);
		if (err) {
			vmb_bo_put(bo);
		} else {
			bo->handle = h;
			args->handle = h;
		}
	}
	vmb_unlock(c);
	return err;
}

VMB_ENTRY(vmb_bo_destroy, struct vmb_bo_destroy, args)
{
	if (!c || !args || args->pad || args->reserved)
		return -EINVAL;
	vmb_lock(c);
	struct vmb_bo *bo = vmb_handle_remove(&c->bos, args->handle);
	if (bo) {
		bo->handle = 0;
		vmb_bo_put(bo);
	}
	vmb_unlock(c);
	return bo ? 0 : -ENOENT;
}

VMB_ENTRY(vmb_bo_query, struct vmb_bo_query, args)
{
	if (!c || !args || args->pad || args->pad2 || !VMB_ZERO(args->reserved))
		return -EINVAL;
	vmb_lock(c);
	struct vmb_bo *bo = vmb_handle_lookup(&c->bos, args->handle);
	if (bo) {
		args->size = bo->size;
		args->placements = bo->placements;
		args->region = bo->region;
		args->vm_mappings = bo->mappings;
	}
	vmb_unlock(c);
	return bo ? 0 : -ENOENT;
}

VMB_ENTRY(vmb_bo_mmap, struct vmb_bo_mmap, args)
{
	void *p;
	int err;

	if (!c || !args || args->flags || args->reserved)
		return -EINVAL;
	vmb_lock(c);
	struct vmb_bo *bo = vmb_handle_lookup(&c->bos, args->handle);
	err = bo ? vmb_bo_cpu_map(bo, &p) : -ENOENT;
	if (!err)
		args->ptr = (uint64_t)(uintptr_t)p;
	vmb_unlock(c);
	return err;
}

VMB_ENTRY(vmb_bo_munmap, struct vmb_bo_munmap, args)
{
	int err;

	if (!c || !args || args->pad || args->reserved)
		return -EINVAL;
	vmb_lock(c);
	struct vmb_bo *bo = vmb_handle_lookup(&c->bos, args->handle);
	err = bo ? vmb_bo_cpu_unmap(bo, (void *)(uintptr_t)args->ptr) : -ENOENT;
	vmb_unlock(c);
	return err;
}
