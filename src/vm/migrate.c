/* SPDX-License-Identifier: MIT */
/*
 * ---- BO migration (PREFETCH) ----
 *
 * PREFETCH moves each BO mapped in its range to the region it names: prepare allocates the BO's
 * new backing and the device's copy request into it (ops->copy_create: nothing is allocated
 * later), and prepares re-mapping every mapping of the BO, in every vm, onto it (bo->planned
 * points at it, so the job's later operations map the BO where it will be). The job hands the
 * copies to the device once its dependencies have signalled and commits once the device has
 * signalled them all (job.c): commit switches the BO to its new backing at its place in the
 * sequence of map operations, and the old backing is freed after; a failed copy commits nothing
 * and bans the job's vm (job.c); unwind, a cancelled job and a commit that fails before the
 * move's place free the new backing and restore bo->planned (bind.c). While the job is pending,
 * bo->planned is its (vm/job.c: a bind that maps the BO waits for the move in the call). The
 * soft device's backings all map the BO's own pages (mem/bo.h), so its copy moves no bytes. A
 * banned vm's mappings are not re-mapped (its page tables are written no more, and translate
 * nothing). Device lock exclusive.
 */
#include <errno.h>
#include <stdlib.h>
#include <vmbind/bind.h>

#include "core/alloc.h"
#include "vm/job.h"

/* Re-map every mapping of @bo, in every vm, onto @b. */
static int remap_bo(struct vmb_bind_job *job, struct vmb_bo *bo, const struct vmb_backing *b)
{
	struct vmb_list *pos, *v;
	int err;

	vmb_list_for_each(pos, &bo->vm_bos) {
		struct vmb_vm_bo *vb = vmb_container_of(pos, struct vmb_vm_bo, bo_link);
		if (atomic_load(&vb->vm->banned))
			continue; /* its page tables are written no more (vm/vm.h) */
		vmb_list_for_each(v, &vb->vas) {
			struct vmb_va *va = vmb_container_of(v, struct vmb_va, bo_link);
			struct vmb_map_op op = {
				.kind = VMB_MAP_OP_MAP,
				.start = va->start,
				.last = va->last,
				.flags = va->obj.flags & VMB_VA_READONLY ? VMB_MAP_READONLY : 0,
				.backing = b,
				.offset = va->obj.offset,
			};
			if ((err = job_reserve_maps(job, 1)) || (err = job_add_map(job, vb->vm, &op)))
				return err;
		}
	}
	return 0;
}

static int move_bo(struct vmb_bind_job *job, struct vmb_bo *bo, uint32_t region)
{
	struct vmb_device *dev = job->vm->dev;
	int err;

	if (!(bo->placements & (1u << region)))
		return -EINVAL;
	if (vmb_bo_region_now(bo) == region)
		return 0;
	/* a CPU mapping stays valid: the BO may not move where the CPU cannot reach it (a discrete
	 * device's VRAM) while one is alive (the application unmaps first) */
	if (bo->cpu_maps && dev->ops->backing_cpu_map &&
	    dev->ops->backing_cpu_map(dev, region, vmb_bo_backing_now(bo)))
		return -EBUSY;
	struct job_move *m = vmb_calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	err = dev->ops->backing_alloc(dev, region, bo->size, bo->backing.align, bo->host, &m->to);
	if (err) {
		free(m);
		return err;
	}
	if ((err = dev->ops->copy_create(dev, &m->copy))) {
		dev->ops->backing_free(dev, region, &m->to);
		free(m);
		return err;
	}
	m->job = job;
	m->bo = bo;
	vmb_bo_get(bo);
	m->from = *vmb_bo_backing_now(bo);
	m->from_region = vmb_bo_region_now(bo);
	m->to_region = region;
	m->prev_planned = bo->planned;
	m->prev_planned_region = bo->planned_region;
	m->commit_at = job->nmaps;
	m->copy->src = &m->from;
	m->copy->dst = &m->to;
	m->copy->size = bo->size;
	*job->moves_tail = m;
	job->moves_tail = &m->next;
	bo->planned = &m->to;
	bo->planned_region = region;
	return remap_bo(job, bo, &m->to);
}

int op_prefetch(struct vmb_bind_job *job, const struct vmb_bind_req *r)
{
	uint64_t last = r->addr + r->range - 1;
	struct vmb_va *va = vmb_va_find_first(&job->vm->tree, r->addr, last);
	int err;

	/* A BO met twice in the range is moved once: the second time it is already there. */
	for (; va && va->start <= last; va = vmb_va_next(va)) {
		if (!va->obj.bo)
			continue;
		struct vmb_vm_bo *vb = va->obj.bo;
		if ((err = move_bo(job, vb->bo, r->region)))
			return err;
	}
	return 0;
}

/* The device's copy into the new backing is over (job.c): the BO lives there now; the CPU
 * mapping, of the BO's own pages, stays. */
void do_move(struct job_move *m)
{
	m->bo->backing = m->to;
	m->bo->region = m->to_region;
	m->done = true;
}
