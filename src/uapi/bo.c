/* SPDX-License-Identifier: MIT */
/*
 * Entry points: BO create, destroy, query, CPU map and unmap. A CPU mapping holds a reference
 * on its BO (mem/bo.h) and is found by its address in the client's `cpu_maps` tree, so that
 * vmb_bo_munmap can name it once the handle is gone. Locking: the device lock, as every field
 * of the client's BO tables.
 */
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

	if (!args || args->flags || args->pad || !VMB_ZERO(args->reserved))
		return -EINVAL;
	if (!args->placements || (args->placements & ~KNOWN_PLACEMENTS))
		return -EINVAL;
	if (!args->size || (args->size & vmb_granule_mask(c)))
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
	if (!args || args->pad || args->reserved)
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
	if (!args || args->pad || args->pad2 || !VMB_ZERO(args->reserved))
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

static struct vmb_bo *cpu_map_of(struct vmb_rb_node *n)
{
	return vmb_container_of(n, struct vmb_bo, cpu_node);
}

/* The BO whose CPU mapping starts at @ptr, or NULL. */
static struct vmb_bo *cpu_map_find(struct vmb_client *c, uint64_t ptr)
{
	struct vmb_rb_node *n = c->cpu_maps.node;
	while (n) {
		uint64_t at = (uint64_t)(uintptr_t)cpu_map_of(n)->cpu;
		if (ptr == at)
			return cpu_map_of(n);
		n = ptr < at ? n->left : n->right;
	}
	return NULL;
}

static void cpu_map_insert(struct vmb_client *c, struct vmb_bo *bo)
{
	struct vmb_rb_node **link = &c->cpu_maps.node, *parent = NULL;
	while (*link) {
		parent = *link;
		link = (uintptr_t)bo->cpu < (uintptr_t)cpu_map_of(parent)->cpu ? &parent->left : &parent->right;
	}
	vmb_rb_link(&bo->cpu_node, parent, link);
	vmb_rb_insert_fixup(&c->cpu_maps, &bo->cpu_node);
}

/* One CPU map fewer; the last one leaves the tree (and may free the BO). */
static void cpu_unmap(struct vmb_client *c, struct vmb_bo *bo)
{
	if (bo->cpu_maps == 1)
		vmb_rb_erase(&c->cpu_maps, &bo->cpu_node);
	vmb_bo_cpu_unmap(bo);
}

void vmb_bo_cpu_maps_release(struct vmb_client *c)
{
	struct vmb_rb_node *n;
	while ((n = c->cpu_maps.node)) {
		struct vmb_bo *bo = cpu_map_of(n);
		bo->cpu_maps = 1;
		cpu_unmap(c, bo);
	}
}

VMB_ENTRY(vmb_bo_mmap, struct vmb_bo_mmap, args)
{
	void *p;
	int err;

	if (!args || args->flags || args->reserved)
		return -EINVAL;
	vmb_lock(c);
	struct vmb_bo *bo = vmb_handle_lookup(&c->bos, args->handle);
	err = bo ? vmb_bo_cpu_map(bo, &p) : -ENOENT;
	if (!err) {
		if (bo->cpu_maps == 1)
			cpu_map_insert(c, bo);
		args->ptr = (uint64_t)(uintptr_t)p;
	}
	vmb_unlock(c);
	return err;
}

VMB_ENTRY(vmb_bo_munmap, struct vmb_bo_munmap, args)
{
	int err;

	if (!args || args->pad || args->reserved)
		return -EINVAL;
	vmb_lock(c);
	/* by handle: that BO's mapping; by pointer alone (handle 0): any of the client's, the
	 * mappings of destroyed handles included */
	struct vmb_bo *bo = args->handle ? vmb_handle_lookup(&c->bos, args->handle) : cpu_map_find(c, args->ptr);
	if (!bo)
		err = args->handle ? -ENOENT : -EINVAL;
	else if (!bo->cpu_maps || args->ptr != (uint64_t)(uintptr_t)bo->cpu)
		err = -EINVAL;
	else
		err = 0;
	if (!err)
		cpu_unmap(c, bo);
	vmb_unlock(c);
	return err;
}
