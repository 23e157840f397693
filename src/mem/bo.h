/* SPDX-License-Identifier: MIT */
/*
 * Buffer objects: memory with a size, allowed placements and a current region.
 *
 * What a BO owns: its bytes, as its own shared memory (`host`: a MAP_SHARED anonymous mapping,
 * a shmem object of the BO's size, from creation to the BO's end), and a backing in a region
 * (struct vmb_backing, opaque to the core: where the device reaches those pages, e.g. through
 * its region's arena). The host pages never move: a move (PREFETCH) gives the BO a backing in
 * another region over the same pages and drops the old one (the device's copy between them,
 * vm/migrate.c, has no bytes to move on the soft device), so a write through any view, at any
 * time, lands in the one copy of the bytes. The CPU mapping
 * (vmb_bo_mmap) is one more mapping of those pages, at an address of its own; it is never
 * remapped.
 *
 * A BO belongs to its device and knows no client: each client's handle and CPU-map records are
 * the client's (uapi/bo.c).
 *
 * References: each client's handle holds one, an exported descriptor holds one (uapi/prime.c),
 * each (vm, BO) pair with live mappings (struct
 * vmb_vm_bo) holds one, and the CPU mapping holds one while cpu_maps > 0. So a BO whose handle
 * is destroyed lives, with its place in the region, until its last GPU and CPU mapping is gone
 * (as a DRM mmap keeps a GEM object alive), and its CPU address is not reused before.
 *
 * Locking: every field is protected by the device lock held exclusively (dev/core.h), with two
 * exceptions for binds of different vms, which run in parallel under the device lock held
 * shared: `refs` is atomic (the last reference may go on an engine thread, when a
 * killed exec queue's running job releases its vm, or on a scheduler worker committing a bind),
 * and `vm_bos` is also changed and walked under the device lock shared plus its cross lock. Its
 * mappings are counted per vm (struct vmb_vm_bo.nvas, vm/vm.h), not here: a count in the BO was
 * a line that every vm's binds of the BO wrote.
 * Every other field changes only under the exclusive lock (a PREFETCH's move among them),
 * but while the BO is being made: vmb_bo_new runs under the device lock shared (the device's
 * memory work holds up no other call), and nothing else sees the BO before its handle is
 * installed, under the lock exclusive.
 *
 * Memory pins (`mem_refs`, atomic): a user fence in a BO (VMB_SYNC_BO_USER_FENCE) is written by
 * the device when its work completes, which may be after the BO's last reference went. It holds
 * a pin instead, taken under the device lock while the BO is alive and dropped anywhere, with
 * no lock (the completion and release paths run with and without the device lock): the last
 * reference frees the backing (the device no longer reaches the pages) and drops the references'
 * pin; the last pin unmaps the pages and frees the struct. So a fence write never lands in freed
 * memory, and nothing but the pages (and `host`, `size`, immutable) outlives the last reference.
 */
#ifndef VMB_MEM_BO_H
#define VMB_MEM_BO_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/list.h"
#include "core/rbtree.h"
#include "dev/device.h"

struct vmb_bo {
	struct vmb_device *dev;
	atomic_uint refs;
	uint64_t size;
	uint32_t placements; /* VMB_PLACE_* */
	uint32_t region;     /* VMB_REGION_* it lives in (not resident: the one it is to get first) */
	/* it has a backing (`backing`, in `region`); false: created while no allowed region had
	 * room, it gets one when first needed (vmb_bo_back: a bind that maps it, the first CPU
	 * map). Set once (false -> true), under the device lock exclusive or the cross lock. */
	bool resident;
	/* in dev->lru while its backing is in VRAM (dev->lru_lock; vmb_bo_lru_*) */
	struct vmb_list lru_link;
	void *host;          /* the BO's pages (see above); immutable */
	struct vmb_backing backing;
	/* from the prepare of a bind that moves this BO to its commit (a pending PREFETCH job,
	 * vm/job.c): its backing as it will be if that job commits, else NULL (a bind of another
	 * job that maps the BO meanwhile maps `backing` as that job leaves it: vm/bind.c) */
	const struct vmb_backing *planned;
	uint32_t planned_region;
	void *cpu;           /* CPU mapping, while cpu_maps > 0 (it holds one reference) */
	uint32_t cpu_maps;   /* vmb_bo_mmap calls of all clients not yet unmapped */
	struct vmb_list vm_bos; /* struct vmb_vm_bo.bo_link (cross lock, above) */
	atomic_uint mem_refs;   /* pins of host and of the struct: 1 for all the references, + 1
				 * per pin (see above); atomic, no lock */
	/* unique in the process, from 1, never reused (a handle is): what a restart-mode call
	 * recorded of its BOs (uapi/vm.c); immutable */
	uint64_t serial;
	/* the serial of the vm it is private to (vmb_bo_create's vm_id: a MAP into any other vm
	 * is refused, uapi/vm.c), 0 if none; set before its first handle is installed, immutable
	 * after */
	uint64_t vm_serial;
};

/* A BO of @size bytes (zero) with its backing in the first allowed region with room (VRAM before
 * SYSTEM); with VRAM allowed and no room anywhere now, without one (`resident` false). 0,
 * -ENOSPC (larger than every allowed region, or no room and VRAM not allowed), -ENOMEM. */
/* @chunk: vmb_bo_create's chunk_size (0: the device's default); the BO's effective one is then
 * backing.align (dev/device.h), the same in every backing it gets (a BO created without one:
 * @chunk, or the device's minimum page size). */
int vmb_bo_new(struct vmb_device *dev, uint64_t size, uint64_t chunk, uint32_t placements, struct vmb_bo **out);
/* Gives a BO without backing one in the first allowed region with room (VRAM before SYSTEM);
 * 0 at once if it has one. 0, -ENOSPC (no allowed region has room), -ENOMEM. The device lock
 * exclusive, or the cross lock (a bind's prepare under the device lock shared). */
int vmb_bo_back(struct vmb_bo *bo);
/* The BO's backing is now in @region (a move's commit: vm/migrate.c): it joins or leaves the
 * device's list of BOs in VRAM. The device lock exclusive. */
void vmb_bo_lru_region(struct vmb_bo *bo, uint32_t from, uint32_t to);
/* The BO was just mapped in a vm it was not mapped in: the most recently used of VRAM's. The
 * cross lock or the device lock exclusive. */
void vmb_bo_lru_touch(struct vmb_bo *bo);
static inline void vmb_bo_get(struct vmb_bo *bo) { atomic_fetch_add(&bo->refs, 1); }
void vmb_bo_put(struct vmb_bo *bo);
/* A pin on the BO's pages (bo->host stays mapped, the struct allocated): under the device lock,
 * on a live BO. */
static inline void vmb_bo_mem_get(struct vmb_bo *bo) { atomic_fetch_add(&bo->mem_refs, 1); }
/* Drops a pin: any thread, any lock held or none. The last one unmaps the pages. */
void vmb_bo_mem_put(struct vmb_bo *bo);
/* The backing at this point of the bind being prepared (the planned one during a move). */
static inline const struct vmb_backing *vmb_bo_backing_now(const struct vmb_bo *bo)
{
	return bo->planned ? bo->planned : &bo->backing;
}
static inline uint32_t vmb_bo_region_now(const struct vmb_bo *bo)
{
	return bo->planned ? bo->planned_region : bo->region;
}
/* One more CPU map (the same pointer while any is left): 0, -ENOMEM, -EOPNOTSUPP (the device
 * cannot give the CPU the BO's region: ops->backing_cpu_map). The first one maps the pages and
 * takes a reference. */
int vmb_bo_cpu_map(struct vmb_bo *bo, void **ptr);
/* Drop one CPU map (cpu_maps > 0); the last one unmaps and drops its reference, which may
 * free the BO. */
void vmb_bo_cpu_unmap(struct vmb_bo *bo);

#endif
