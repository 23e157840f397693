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
 * bo->planned is its (vm/job.c: a synchronous PREFETCH of the BO, or a synchronous bind that maps
 * it, waits for the move in the call; an asynchronous MAP's job follows the move, bind.c's
 * map_moving; an asynchronous PREFETCH's move is chained behind it, move_bo below). The
 * soft device's backings all map the BO's own pages (mem/bo.h), so its copy moves no bytes. A
 * banned vm's mappings are not re-mapped (its page tables are written no more, and translate
 * nothing). Device lock exclusive.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <vmbind/bind.h>
#include <vmbind/client.h>
#include <vmbind/vm.h>

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

/*
 * Move @bo to @region in @job. Where the BO is "now" is where its pending moves leave it
 * (vmb_bo_region_now): behind another job's pending move (an asynchronous PREFETCH does not wait
 * for it, vm/job.c), the move is chained: its new backing allocated now, its copy and its `from`
 * taken from the BO as that job leaves it (the copy runs, and do_move commits, after that job
 * ended: this job follows it, job_deps_each). To where the pending move goes: nothing to move
 * (if that move then fails, the BO stays where it was: allocating a second backing there now
 * could fail where waiting would not).
 */
static int move_bo(struct vmb_bind_job *job, struct vmb_bo *bo, uint32_t region, bool evict)
{
	struct vmb_device *dev = job->vm->dev;
	int err;

	if (!evict && !(bo->placements & (1u << region)))
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
	if (err == -ENOSPC && region == VMB_REGION_VRAM && !evict)
		job->evict_want += bo->size; /* the call may make room (job.c) */
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
	m->evict = evict;
	/* an exec of a vm that maps the BO, submitted before this move commits, must see it
	 * coming (vmb_vm_exec_residency: it waits for it and restores the BO) */
	if ((m->misplacing = !(bo->placements & (1u << region))))
		atomic_fetch_add(&dev->misplacing, 1);
	m->bo = bo;
	vmb_bo_get(bo);
	m->from = *vmb_bo_backing_now(bo);
	m->from_region = vmb_bo_region_now(bo);
	m->to_region = region;
	m->prev_planned = bo->planned;
	m->prev_planned_region = bo->planned_region;
	m->commit_at = job->nmaps;
	/* behind another job's pending move of the BO (a chained move: that job ends first, this
	 * one follows it, job_deps_each), the BO is where that move leaves it when this copy runs:
	 * its backing then (the new one, or the old one if that move failed or was cancelled) */
	m->copy->src = move_prev_foreign(m) ? &bo->backing : &m->from;
	m->copy->dst = &m->to;
	m->copy->size = bo->size;
	*job->moves_tail = m;
	job->moves_tail = &m->next;
	bo->planned = &m->to;
	bo->planned_region = region;
	return remap_bo(job, bo, &m->to);
}

void move_unlink(struct job_move *m)
{
	struct vmb_bo *bo = m->bo;
	if (bo->planned == &m->to) {
		bo->planned = m->prev_planned;
		bo->planned_region = m->prev_planned_region;
		return;
	}
	/* a later move of another job is the BO's latest (that job follows @m's, which committed or
	 * was cancelled first): the one just after @m now comes after what @m came after */
	for (const struct vmb_backing *p = bo->planned; p;) {
		struct job_move *n = move_of(p);
		if (n->prev_planned == &m->to) {
			n->prev_planned = m->prev_planned;
			n->prev_planned_region = m->prev_planned_region;
			return;
		}
		p = n->prev_planned;
	}
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
		if ((err = move_bo(job, vb->bo, r->region, false)))
			return err;
	}
	return 0;
}

/* The device's copy into the new backing is over (job.c): the BO lives there now; the CPU
 * mapping, of the BO's own pages, stays. */
void do_move(struct job_move *m)
{
	m->from = m->bo->backing; /* what the job frees (job_end): the BO's, whoever moved it there */
	m->from_region = m->bo->region;
	m->bo->backing = m->to;
	m->bo->region = m->to_region;
	m->done = true;
	vmb_bo_lru_region(m->bo, m->from_region, m->to_region);
	struct vmb_device *dev = m->bo->dev;
	bool was = !(m->bo->placements & (1u << m->from_region)), is = !(m->bo->placements & (1u << m->to_region));
	if (was && !is) {
		atomic_fetch_sub(&dev->misplaced, 1);
		atomic_fetch_add(&dev->restores, 1);
		atomic_fetch_add(&dev->restored_bytes, m->bo->size);
	} else if (is && !was) {
		atomic_fetch_add(&dev->misplaced, 1);
	}
	if (m->evict) {
		atomic_fetch_add(&dev->evictions, 1);
		atomic_fetch_add(&dev->evicted_bytes, m->bo->size);
	}
}

/*
 * ---- eviction ----
 *
 * When VRAM has no room for a bind (a BO's first backing, the restore of an evicted BO, a
 * PREFETCH to VRAM) or for an exec's restore (job.c), the call submits a job that moves to SYSTEM
 * BOs in VRAM that nothing uses, with the PREFETCH machinery (a copy on the device's DMA engine,
 * committed once it is over, re-pointing the BO's mappings at the SYSTEM copy: nothing ever maps
 * freed VRAM) but ordered after nothing (no job uses those BOs: so the call never waits behind a
 * user's fence), waits for it and tries again. A BO nothing uses: every vm that links it (a
 * mapping, or a pending bind's link) is not LR (an LR vm's BOs stay resident: nothing tells its
 * long-running work to stop), has no pending bind and no exec submitted and not ended, is of a
 * device whose work the library sees (vm_idle: not CUDA's), and it is not being moved. Later binds and execs of those vms follow the eviction
 * (vm->move_last, vm->resident_last). An evicted BO whose placements exclude SYSTEM moves back
 * to VRAM at the next bind that maps it (op_restore, in that bind's job) or before the next exec
 * of a vm that maps it (vmb_vm_restore); one that allows SYSTEM stays there. Its contents are
 * kept (its own pages: mem/bo.h). The device lock exclusive.
 */
#define EVICT_BATCH 16

/* No job of @vm may use its BOs now or reach them through its page tables: not LR (its BOs stay
 * resident), no pending bind, no exec submitted and not ended; and its device runs no work the
 * library does not see (one without VMB_CAP_EXEC, CUDA, runs the application's kernels, which
 * may use a mapped BO at any time: re-mapping it under them faults). The device lock exclusive
 * (no bind or exec is submitted meanwhile). */
static bool vm_idle(struct vmb_vm *vm)
{
	return (vm->dev->caps & VMB_CAP_EXEC) && !(vm->flags & VMB_VM_CREATE_LR_MODE) &&
	       vmb_list_empty(&vm->pending) && atomic_load(&vm->execs_active) == 0;
}

static bool evictable(struct vmb_bo *bo, const struct vmb_vm *keep)
{
	struct vmb_list *pos;
	if (!bo->resident || bo->region != VMB_REGION_VRAM || bo->planned)
		return false;
	vmb_list_for_each(pos, &bo->vm_bos) {
		struct vmb_vm *vm = vmb_container_of(pos, struct vmb_vm_bo, bo_link)->vm;
		if (vm == keep || !vm_idle(vm))
			return false;
	}
	return true;
}

int evict_prepare(struct vmb_bind_job *job, uint64_t want, const struct vmb_vm *keep)
{
	struct vmb_device *dev = job->vm->dev;
	struct vmb_bo *pick[EVICT_BATCH];
	unsigned int n = 0, moved = 0;
	uint64_t bytes = 0;
	struct vmb_list *pos;
	int err = 0;

	vmb_lock_assert_excl(&dev->lock);
	/* a reference on each (a BO's last one may go meanwhile on another thread: skip those) */
	pthread_mutex_lock(&dev->lru_lock);
	vmb_list_for_each(pos, &dev->lru) {
		struct vmb_bo *bo = vmb_container_of(pos, struct vmb_bo, lru_link);
		if (n == EVICT_BATCH)
			break;
		if (!evictable(bo, keep))
			continue;
		unsigned int r = atomic_load(&bo->refs);
		while (r && !atomic_compare_exchange_weak(&bo->refs, &r, r + 1))
			;
		if (!r)
			continue;
		pick[n++] = bo;
	}
	pthread_mutex_unlock(&dev->lru_lock);
	/* in order until @want bytes moved: one SYSTEM has no room for is passed over */
	for (unsigned int i = 0; i < n; i++) {
		if (!err && bytes < want) {
			int e = move_bo(job, pick[i], VMB_REGION_SYSTEM, true);
			if (!e) {
				moved++;
				bytes += pick[i]->size;
			} else if (e != -ENOSPC) {
				err = e;
			}
		}
		vmb_bo_put(pick[i]);
	}
	return err ? err : moved ? 0 : -ENOSPC;
}

int op_restore(struct vmb_bind_job *job, struct vmb_bo *bo)
{
	if (bo->placements & (1u << vmb_bo_region_now(bo)))
		return 0;
	if (!job->moves_ok)
		return -ERESTART;
	return move_bo(job, bo, VMB_REGION_VRAM, false);
}
