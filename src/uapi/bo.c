/* SPDX-License-Identifier: MIT */
/*
 * Entry points: BO create, destroy, query, CPU map and unmap.
 *
 * A BO belongs to its device; what a client knows of it is kept in the client, never in the
 * BO (a BO may be known to several clients: vmb_bo_import_fd, uapi/prime.c):
 *   - its handle: the client's table `bos` (handle -> BO, holding a reference) and the record
 *     `struct bo_name` in `bo_names` (BO -> handle, by the BO's address), so that an import of a
 *     BO the client knows gives its handle, and a query names the client's handle of a mapped BO;
 *   - its CPU mappings: one `struct cpu_map` per (client, BO) in `cpu_maps`, by address, counting
 *     the client's vmb_bo_mmap calls. The BO keeps one CPU mapping for all clients (mem/bo.h:
 *     cpu_maps counts every client's maps; the mapping holds one BO reference), so two clients of
 *     one BO get the same pointer; each can unmap only what it mapped (a pointer another client
 *     mapped is not in its tree: -EINVAL), and closing one leaves the other's mapping working.
 *     A record is found by its address, so vmb_bo_munmap names it once the handle is gone.
 * Locking: the device lock, as every field of the client's BO tables.
 */
#include <errno.h>
#include <stdlib.h>
#include <vmbind/bo.h>

#include "core/alloc.h"
#include "mem/bo.h"
#include "uapi/uapi.h"
#include "vm/vm.h"

#define KNOWN_PLACEMENTS (VMB_PLACE_SYSTEM | VMB_PLACE_VRAM)

/* The client's name for one BO: its handle. */
struct bo_name {
	struct vmb_rb_node node; /* in c->bo_names, by bo */
	struct vmb_bo *bo;
	uint32_t handle;
};

static struct bo_name *name_of(struct vmb_rb_node *n)
{
	return vmb_container_of(n, struct bo_name, node);
}

static struct bo_name *name_find(const struct vmb_client *c, const struct vmb_bo *bo)
{
	struct vmb_rb_node *n = c->bo_names.node;
	while (n && name_of(n)->bo != bo)
		n = (uintptr_t)bo < (uintptr_t)name_of(n)->bo ? n->left : n->right;
	return n ? name_of(n) : NULL;
}

uint32_t vmb_client_bo_handle(const struct vmb_client *c, const struct vmb_bo *bo)
{
	struct bo_name *nm = name_find(c, bo);
	return nm ? nm->handle : 0;
}

int vmb_client_bo_install(struct vmb_client *c, struct vmb_bo *bo, uint32_t *handle)
{
	struct bo_name *nm = vmb_malloc(sizeof(*nm));
	if (!nm)
		return -ENOMEM;
	int err = vmb_handle_alloc(&c->bos, bo, &nm->handle);
	if (err) {
		free(nm);
		return err;
	}
	nm->bo = bo;
	struct vmb_rb_node **link = &c->bo_names.node, *parent = NULL;
	while (*link) {
		parent = *link;
		link = (uintptr_t)bo < (uintptr_t)name_of(parent)->bo ? &parent->left : &parent->right;
	}
	vmb_rb_link(&nm->node, parent, link);
	vmb_rb_insert_fixup(&c->bo_names, &nm->node);
	*handle = nm->handle;
	return 0;
}

/* The handle's BO leaves the client's tables; its reference is the caller's to drop. */
static void name_drop(struct vmb_client *c, struct vmb_bo *bo)
{
	struct bo_name *nm = name_find(c, bo);
	vmb_rb_erase(&c->bo_names, &nm->node);
	free(nm);
}

void vmb_client_bos_release(struct vmb_client *c)
{
	struct vmb_bo *bo;
	for (uint32_t h = 0; (bo = vmb_handle_pop(&c->bos, &h));) {
		name_drop(c, bo);
		vmb_bo_put(bo);
	}
}

VMB_ENTRY(vmb_bo_create, struct vmb_bo_create, args)
{
	struct vmb_bo *bo;
	uint32_t h;
	int err;

	if (!args || args->flags || !VMB_ZERO(args->reserved))
		return -EINVAL;
	if (!args->placements || (args->placements & ~KNOWN_PLACEMENTS))
		return -EINVAL;
	/* whole allocation units of every region it may live in (each at least a granule) */
	uint64_t unit = c->dev->min_page_size, chunk = args->chunk_size;
	for (uint32_t r = 0; r < VMB_REGION_COUNT; r++)
		if ((args->placements & (1u << r)) && c->dev->region_align[r] > unit)
			unit = c->dev->region_align[r];
	if (!args->size || args->size % unit)
		return -EINVAL;
	/* a chunk: a power of two, whole granules, whole chunks in the BO (0: the device's) */
	if (chunk && ((chunk & (chunk - 1)) || (chunk & vmb_granule_mask(c)) || args->size % chunk))
		return -EINVAL;
	/* The BO's memory under the device lock shared: the device's work there (CUDA creates and
	 * zeroes its allocations, milliseconds for a large BO) holds up no other call, only the
	 * exclusive ones (which see the regions as they are). Nothing else sees the BO until its
	 * handle is installed, under the lock exclusive. A bind that backs a BO meanwhile may find
	 * the room taken and evicts again, as when another vm's bind takes it. */
	vmb_lock_shared(c);
	/* a private BO's vm: looked up first (-ENOENT before -ENOSPC, as Xe's GEM_CREATE), and
	 * again where its handle is installed, which is where the BO gets its owner: a vm destroyed
	 * meanwhile is -ENOENT, never an owner that a later vm under its id would be taken for */
	err = args->vm_id && !vmb_handle_lookup(&c->vms, args->vm_id) ? -ENOENT
		: vmb_bo_new(c->dev, args->size, chunk, args->placements, &bo);
	vmb_unlock(c);
	if (err)
		return err;
	vmb_lock(c);
	struct vmb_vm *vm = args->vm_id ? vmb_handle_lookup(&c->vms, args->vm_id) : NULL;
	if (args->vm_id && !vm) {
		err = -ENOENT;
	} else {
		bo->vm_serial = vm ? vm->serial : 0;
		err = vmb_client_bo_install(c, bo, &h);
	}
	if (!err)
		args->handle = h;
	vmb_unlock(c);
	if (err)
		vmb_bo_put(bo);
	return err;
}

VMB_ENTRY(vmb_bo_destroy, struct vmb_bo_destroy, args)
{
	if (!args || args->pad || args->reserved)
		return -EINVAL;
	vmb_lock(c);
	struct vmb_bo *bo = vmb_handle_remove(&c->bos, args->handle);
	if (bo)
		name_drop(c, bo);
	vmb_unlock(c);
	/* the handle's reference, perhaps the last: the device frees its memory (CUDA: releases its
	 * allocations) with no device lock held, as when a job drops the last one */
	if (bo)
		vmb_bo_put(bo);
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
		args->vm_mappings = (uint32_t)vmb_bo_vm_mappings(bo);
		args->chunk_size = bo->backing.align;
	}
	vmb_unlock(c);
	return bo ? 0 : -ENOENT;
}

/* The client's CPU maps of one BO (the BO's mapping at bo->cpu). */
struct cpu_map {
	struct vmb_rb_node node; /* in c->cpu_maps, by bo->cpu */
	struct vmb_bo *bo;
	uint32_t count;          /* this client's vmb_bo_mmap calls not yet unmapped */
};

static struct cpu_map *cpu_map_of(struct vmb_rb_node *n)
{
	return vmb_container_of(n, struct cpu_map, node);
}

static uint64_t cpu_map_addr(const struct cpu_map *m)
{
	return (uint64_t)(uintptr_t)m->bo->cpu;
}

/* The client's record of the CPU mapping at @ptr, or NULL. */
static struct cpu_map *cpu_map_find(const struct vmb_client *c, uint64_t ptr)
{
	struct vmb_rb_node *n = c->cpu_maps.node;
	while (n) {
		uint64_t at = cpu_map_addr(cpu_map_of(n));
		if (ptr == at)
			return cpu_map_of(n);
		n = ptr < at ? n->left : n->right;
	}
	return NULL;
}

struct vmb_bo *vmb_client_cpu_map_pin(struct vmb_client *c, uint64_t addr, uint64_t len, uint64_t *offset)
{
	struct vmb_rb_node *n = c->cpu_maps.node;
	struct cpu_map *below = NULL; /* the map that starts last at or below addr */
	while (n) {
		struct cpu_map *m = cpu_map_of(n);
		if (cpu_map_addr(m) <= addr) {
			below = m;
			n = n->right;
		} else {
			n = n->left;
		}
	}
	if (!below || len > below->bo->size || addr - cpu_map_addr(below) > below->bo->size - len)
		return NULL;
	vmb_bo_mem_get(below->bo);
	*offset = addr - cpu_map_addr(below);
	return below->bo;
}

static void cpu_map_insert(struct vmb_client *c, struct cpu_map *m)
{
	struct vmb_rb_node **link = &c->cpu_maps.node, *parent = NULL;
	while (*link) {
		parent = *link;
		link = cpu_map_addr(m) < cpu_map_addr(cpu_map_of(parent)) ? &parent->left : &parent->right;
	}
	vmb_rb_link(&m->node, parent, link);
	vmb_rb_insert_fixup(&c->cpu_maps, &m->node);
	atomic_fetch_add_explicit(&c->ncpu_maps, 1, memory_order_relaxed);
}

/* One of the client's CPU maps fewer; its last one leaves the tree (and the BO's last may free
 * the BO). */
static void cpu_unmap(struct vmb_client *c, struct cpu_map *m)
{
	struct vmb_bo *bo = m->bo;
	if (--m->count == 0) {
		vmb_rb_erase(&c->cpu_maps, &m->node);
		atomic_fetch_sub_explicit(&c->ncpu_maps, 1, memory_order_relaxed);
		free(m);
	}
	vmb_bo_cpu_unmap(bo);
}

void vmb_bo_cpu_maps_release(struct vmb_client *c)
{
	struct vmb_rb_node *n;
	while ((n = c->cpu_maps.node)) {
		struct cpu_map *m = cpu_map_of(n);
		while (m->count > 1)
			cpu_unmap(c, m);
		cpu_unmap(c, m);
	}
}

VMB_ENTRY(vmb_bo_mmap, struct vmb_bo_mmap, args)
{
	struct cpu_map *m = NULL, *fresh = NULL;
	void *p;
	int err;

	if (!args || args->flags || args->reserved)
		return -EINVAL;
	vmb_lock(c);
	struct vmb_bo *bo = vmb_handle_lookup(&c->bos, args->handle);
	if (!bo)
		err = -ENOENT;
	else if (bo->cpu_maps && (m = cpu_map_find(c, (uint64_t)(uintptr_t)bo->cpu)))
		err = m->count == UINT32_MAX ? -ENOMEM : 0;
	else
		err = (m = fresh = vmb_malloc(sizeof(*m))) ? 0 : -ENOMEM;
	if (!err)
		err = vmb_bo_cpu_map(bo, &p);
	if (!err) {
		if (fresh) {
			*fresh = (struct cpu_map){.bo = bo};
			cpu_map_insert(c, fresh);
		}
		m->count++;
		args->ptr = (uint64_t)(uintptr_t)p;
	} else {
		free(fresh);
	}
	vmb_unlock(c);
	return err;
}

VMB_ENTRY(vmb_bo_munmap, struct vmb_bo_munmap, args)
{
	int err = 0;

	if (!args || args->pad || args->reserved)
		return -EINVAL;
	vmb_lock(c);
	/* by handle: that BO's mapping; by pointer alone (handle 0): any of the client's, the
	 * mappings of destroyed handles included; never another client's */
	struct vmb_bo *bo = args->handle ? vmb_handle_lookup(&c->bos, args->handle) : NULL;
	struct cpu_map *m = cpu_map_find(c, args->ptr);
	if (args->handle && !bo)
		err = -ENOENT;
	else if (!m || (bo && m->bo != bo))
		err = -EINVAL;
	if (!err)
		cpu_unmap(c, m);
	vmb_unlock(c);
	return err;
}
