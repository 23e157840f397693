/* SPDX-License-Identifier: MIT */
/*
 * The bind engine: one VM_BIND call, prepare then commit.
 *
 * Prepare, per operation in order:
 *   1. plan the operation against the VA tree as the earlier operations of the call left it
 *      (va.c: MAP / REMAP / UNMAP steps) and apply the plan to the tree at once, so the next
 *      operation plans against the right logical state;
 *   2. walk the steps (the backend callbacks below) turning each into a device map operation:
 *      UNMAP -> clear the mapping, REMAP -> clear the removed middle part, MAP -> map;
 *   3. let the device prepare each map operation (allocate page-table pages, claim the reserve
 *      for future splits), into one preparation per vm touched;
 *   PREFETCH also allocates the BO's new backing and prepares re-mapping every mapping of the
 *   BO, in every vm, onto it (migrate.c).
 * Any failure: revert the applied plans newest first, release the preparations, free new
 * backings; the vm is exactly as before and the error is returned.
 *
 * Commit, in order: the device writes the page tables; a move switches the BO to its new
 * backing at its place in the sequence (after the device's copy into it: job.c, migrate.c). Then
 * the removed nodes, old backings and (vm, BO) links left without mappings are freed.
 * A device commit may fail (dev/device.h): the operations after the failing one are not applied,
 * nor the moves placed after it (their new backings are freed, the BOs stay where they were);
 * the vm of the job, the vm of the failing operation and every vm with an operation left
 * unapplied (a PREFETCH re-maps in other vms) are banned (vm/vm.h), the tree stays as prepared,
 * and the job ends as a committed one. Banned vms are left out of a PREFETCH's re-mapping.
 *
 * The other parts of a bind: migrate.c (PREFETCH), pending.c (the pending binds' ranges),
 * job.c (the one ordering rule, asynchronous jobs, binds committed in the call, the policy
 * behind vmb_vm_bind_submit()); job.h has the job structure they share.
 *
 * Locking: the caller holds the vm's lock (with the device lock shared) or the device lock
 * exclusively for the whole of a prepare and of a commit (a PREFETCH: exclusively, its moves
 * touch every vm that maps the BO); a BO's list of (vm, BO) links under the cross lock too
 * (dev/core.h).
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <vmbind/bind.h>

#include "core/alloc.h"
#include "core/hostmem.h"
#include "vm/job.h"
#include "vm/vm.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/*
 * Grow the array *@arr (of @cap elements of @size bytes, starting life in @inline_arr) to hold
 * at least @want elements. 0 or -ENOMEM (the array unchanged).
 */
static int grow(void **arr, void *inline_arr, unsigned int *cap, unsigned int want, size_t size)
{
	unsigned int ncap = *cap;
	while (ncap < want)
		ncap *= 2;
	void *n = vmb_malloc(ncap * size);
	if (!n)
		return -ENOMEM;
	memcpy(n, *arr, *cap * size);
	if (*arr != inline_arr)
		free(*arr);
	*arr = n;
	*cap = ncap;
	return 0;
}

static bool vm_bo_in_job(const struct vmb_vm_bo *vb)
{
	return !vmb_list_empty(&vb->job_link);
}

static void job_touch(struct vmb_bind_job *job, struct vmb_vm_bo *vb)
{
	if (!vm_bo_in_job(vb))
		vmb_list_add_tail(&vb->job_link, &job->vm_bos);
}

/* This vm's link to @bo, or NULL; the caller holds the cross lock (the BO's list is shared by
 * the vms). */
static struct vmb_vm_bo *vm_bo_find_locked(struct vmb_vm *vm, struct vmb_bo *bo)
{
	struct vmb_list *pos;
	vmb_list_for_each(pos, &bo->vm_bos) {
		struct vmb_vm_bo *vb = vmb_container_of(pos, struct vmb_vm_bo, bo_link);
		if (vb->vm == vm)
			return vb;
	}
	return NULL;
}

static struct vmb_vm_bo *vm_bo_find(struct vmb_vm *vm, struct vmb_bo *bo)
{
	if (vm->vb_last && vm->vb_last->bo == bo)
		return vm->vb_last;
	vmb_dev_cross_lock(vm->dev);
	struct vmb_vm_bo *found = vm_bo_find_locked(vm, bo);
	vmb_dev_cross_unlock(vm->dev);
	return found;
}

/*
 * The (vm, bo) link, created if absent (only this vm's lock holder adds this vm's link): looked
 * up and added in one hold of the cross lock (a MAP of a BO new to the vm takes it once). The
 * link the vm's last MAP obtained (vm->vb_last, the vm's lock), if it is @bo's and still lists a
 * mapping, is taken without the cross lock, a line that the binds of every vm write: a BO with a
 * mapping has its backing (bo->resident is set once), so there is nothing to look up or back.
 */
static int vm_bo_obtain(struct vmb_bind_job *job, struct vmb_bo *bo, struct vmb_vm_bo **out)
{
	struct vmb_vm_bo *vb = job->vm->vb_last;
	if (vb && vb->bo == bo && !vmb_list_empty(&vb->vas)) {
		job_touch(job, vb);
		*out = vb;
		return 0;
	}
	vmb_dev_cross_lock(job->vm->dev);
	vb = vm_bo_find_locked(job->vm, bo);
	if (!vb && (vb = vmb_calloc(1, sizeof(*vb)))) {
		vb->vm = job->vm;
		vb->bo = bo;
		vmb_bo_get(bo);
		vmb_list_init(&vb->vas);
		vmb_list_init(&vb->job_link);
		vmb_list_add_tail(&vb->vm_link, &job->vm->vm_bos);
		vmb_list_add_tail(&vb->bo_link, &bo->vm_bos);
		vmb_bo_lru_touch(bo); /* eviction takes the least recently mapped first */
	}
	/* a BO created past capacity gets its backing at its first MAP (prepare: nothing is
	 * allocated at commit); a failed call leaves it backed, residency is no state a call
	 * restores (mem/bo.h) */
	int err = !vb ? -ENOMEM : vmb_bo_back(bo);
	vmb_dev_cross_unlock(job->vm->dev);
	if (err == -ENOSPC && (bo->placements & VMB_PLACE_VRAM))
		job->evict_want += bo->size; /* the call may make room (job.c) */
	if (!vb)
		return err;
	job_touch(job, vb); /* a link left without mappings (a failed back) goes at the end */
	if (err)
		return err;
	job->vm->vb_last = vb;
	*out = vb;
	return 0;
}

static struct vmb_va_plan *job_new_plan(struct vmb_bind_job *job)
{
	struct plan_chunk *c = job->plans;
	if (!c) {
		c = &job->first_plans;
		c->prev = NULL;
		c->n = 0;
		job->plans = c;
	} else if (c->n == PLANS_PER_CHUNK) {
		struct vmb_vm *vm = job->vm;
		/* one the vm kept (vm.h), not where fault injection counts allocations */
		if ((c = vm->kept_chunks) && !vmb_fault_armed()) {
			vm->kept_chunks = c->prev;
			vm->nkept_chunks--;
		} else if (!(c = vmb_malloc(sizeof(*c)))) {
			return NULL;
		}
		c->prev = job->plans;
		c->n = 0;
		job->plans = c;
	}
	struct vmb_va_plan *p = &c->plans[c->n++];
	vmb_va_plan_init(p);
	return p;
}

static int job_prep_for(struct vmb_bind_job *job, struct vmb_vm *vm, struct vmb_dev_prep **out)
{
	for (unsigned int i = 0; i < job->npreps; i++) {
		if (job->preps[i].vm == vm) {
			*out = job->preps[i].prep;
			return 0;
		}
	}
	if (!job->preps) {
		job->preps = job->preps_small;
		job->cap_preps = ARRAY_SIZE(job->preps_small);
	}
	if (job->npreps == job->cap_preps &&
	    grow((void **)&job->preps, job->preps_small, &job->cap_preps, job->cap_preps + 1, sizeof(*job->preps)))
		return -ENOMEM;
	int err = vm->dev->ops->prep_create(vm->dev, vm->dvm, out);
	if (err)
		return err;
	job->preps[job->npreps++] = (struct job_prep){.vm = vm, .prep = *out};
	/* another vm (a PREFETCH's re-mapping) lives until the job has committed to it */
	if (vm != job->vm)
		vmb_vm_get(vm);
	return 0;
}

int job_reserve_maps(struct vmb_bind_job *job, unsigned int more)
{
	if (!job->maps) {
		job->maps = job->maps_small;
		job->cap_maps = ARRAY_SIZE(job->maps_small);
	}
	if (job->cap_maps - job->nmaps >= more)
		return 0;
	struct vmb_vm *vm = job->vm;
	unsigned int want = job->nmaps + more;
	if (job->maps == job->maps_small && want <= VMB_VM_KEPT_MAPS) {
		/* the first growth: VMB_VM_KEPT_MAPS records, the array the vm kept if it has one
		 * (vm.h; not where fault injection counts allocations) */
		struct job_map *maps = vm->kept_maps && !vmb_fault_armed() ? vm->kept_maps
									    : vmb_malloc(VMB_VM_KEPT_MAPS * sizeof(*maps));
		if (!maps)
			return -ENOMEM;
		if (maps == vm->kept_maps)
			vm->kept_maps = NULL;
		memcpy(maps, job->maps, job->nmaps * sizeof(*maps));
		job->maps = maps;
		job->cap_maps = VMB_VM_KEPT_MAPS;
		return 0;
	}
	return grow((void **)&job->maps, job->maps_small, &job->cap_maps, want, sizeof(*job->maps));
}

void vmb_vm_kept_free(struct vmb_vm *vm)
{
	for (struct plan_chunk *c = vm->kept_chunks, *prev; c; c = prev) {
		prev = c->prev;
		free(c);
	}
	vm->kept_chunks = NULL;
	vm->nkept_chunks = 0;
	free(vm->kept_maps);
	vm->kept_maps = NULL;
}

/* Record a device map operation and prepare it. Capacity was reserved by the caller. */
int job_add_map(struct vmb_bind_job *job, struct vmb_vm *vm, const struct vmb_map_op *op)
{
	struct vmb_dev_prep *prep;
	int err = job_prep_for(job, vm, &prep);
	if (err)
		return err;
	err = vm->dev->ops->map_prepare(vm->dvm, op, prep);
	if (err)
		return err;
	job->maps[job->nmaps++] = (struct job_map){.vm = vm, .prep = prep, .op = *op};
	return 0;
}

static void step_clear_range(const struct vmb_va_step *s, uint64_t *lo, uint64_t *hi);

static void emit_clear(struct vmb_bind_job *job, uint64_t start, uint64_t last)
{
	struct vmb_map_op op = {.kind = VMB_MAP_OP_CLEAR, .start = start, .last = last};
	if (!job->err)
		job->err = job_add_map(job, job->vm, &op);
}

/* Backend callbacks: turn the planner's steps into device map operations. */
static void step_unmap(void *priv, const struct vmb_va_step *s)
{
	emit_clear(priv, s->va->start, s->va->last);
}

static void step_remap(void *priv, const struct vmb_va_step *s)
{
	uint64_t lo, hi;
	step_clear_range(s, &lo, &hi);
	emit_clear(priv, lo, hi);
}

/* Another pending job moves @bo (bo->planned is its: migrate.c), not @job itself. */
static bool bo_moved_by_other(const struct vmb_bind_job *job, const struct vmb_bo *bo)
{
	const struct vmb_bind_job *m = bo_move_job(bo);
	return m && m != job;
}

/*
 * A MAP of a BO whose move another pending job makes (an asynchronous MAP: the call does not wait
 * for the move, vm/job.c; the job follows every pending move of the BO, job_deps_each): where the
 * BO will be when it commits is known only then: the new backing of any of the BO's pending
 * moves (bo->planned, then each one's prev_planned: a move behind another's, vm/migrate.c), as
 * the last of them that commits leaves it, or the one it has now if none does (a failed copy, a
 * cancelled job: it commits nothing, frees its new backing). So the device prepares @op for each
 * (the page tables of every layout: a device's preparation covers several MAPs of one range,
 * dev/device.h), and the record maps &bo->backing, which the commit reads as the moves left it
 * (do_move copies the new backing there). Never a freed backing, nothing allocated at commit.
 */
static void map_moving(struct vmb_bind_job *job, struct vmb_map_op *op, const struct vmb_bo *bo)
{
	struct vmb_vm *vm = job->vm;
	if (job->err || (job->err = job_add_map(job, vm, op))) /* @op maps bo->planned */
		return;
	struct job_map *jm = &job->maps[job->nmaps - 1];
	for (const struct vmb_backing *p = move_of(bo->planned)->prev_planned; p && !job->err;
	     p = move_of(p)->prev_planned) {
		jm->op.backing = p;
		job->err = vm->dev->ops->map_prepare(vm->dvm, &jm->op, jm->prep);
	}
	jm->op.backing = &bo->backing;
	if (!job->err)
		job->err = vm->dev->ops->map_prepare(vm->dvm, &jm->op, jm->prep);
	job->maps_moving = true;
}

static void step_map(void *priv, const struct vmb_va_step *s)
{
	struct vmb_bind_job *job = priv;
	const struct vmb_va *va = s->va;
	struct vmb_map_op op = {
		.kind = VMB_MAP_OP_MAP,
		.start = va->start,
		.last = va->last,
		/* the plan's UNMAP and REMAP steps cleared what was in [start, last] (va.c: a MAP
		 * node is the request's range, never merged with a neighbour) */
		.flags = (va->obj.flags & VMB_VA_READONLY ? VMB_MAP_READONLY : 0) |
			 (va->obj.flags & VMB_VA_NULL ? VMB_MAP_NULL : 0) | VMB_MAP_FRESH,
	};
	if (va->obj.flags & VMB_VA_USERPTR) {
		op.backing = &job->cur_userptr->b;
		op.offset = 0;
	} else if (!(va->obj.flags & VMB_VA_NULL)) {
		const struct vmb_vm_bo *vb = va->obj.bo;
		op.backing = vmb_bo_backing_now(vb->bo);
		op.offset = va->obj.offset;
		if (bo_moved_by_other(job, vb->bo)) {
			map_moving(job, &op, vb->bo);
			return;
		}
	}
	if (!job->err)
		job->err = job_add_map(job, job->vm, &op);
}

static const struct vmb_va_ops backend = {
	.step_map = step_map,
	.step_remap = step_remap,
	.step_unmap = step_unmap,
};

static void link_va(struct vmb_bind_job *job, struct vmb_va *va)
{
	job->vm->bytes_mapped += va->last - va->start + 1;
	if (va->obj.bo) {
		struct vmb_vm_bo *vb = va->obj.bo;
		vmb_list_add_tail(&va->bo_link, &vb->vas);
		vb->nvas++;
	}
}

static void unlink_va(struct vmb_bind_job *job, struct vmb_va *va)
{
	job->vm->bytes_mapped -= va->last - va->start + 1;
	if (va->obj.bo) {
		struct vmb_vm_bo *vb = va->obj.bo;
		vmb_list_del(&va->bo_link);
		vb->nvas--;
		job_touch(job, vb);
	}
}

/* The mappings that @p removes leave their BO's list (unlink_va): their neighbours there are
 * other mappings of the BO, anywhere in the vm (at 10^5 mappings, lines not in cache). Fetched
 * for writing now, as soon as the plan names them, so that plan_apply's stores to them do not
 * wait in the store buffer (each such store holds up every later one, and the locked
 * instructions at the call's end wait for them all). */
static void plan_prefetch_unlinks(const struct vmb_va_plan *p)
{
	/* a 1-op bind's plan has a few steps; a large one's first lines would be gone by then */
	for (unsigned int i = 0; i < p->n && i < 8; i++) {
		const struct vmb_va *va = p->steps[i].va;
		if (p->steps[i].kind != VMB_VA_STEP_MAP && va->obj.bo) {
			__builtin_prefetch(va->bo_link.prev, 1);
			__builtin_prefetch(va->bo_link.next, 1);
		}
	}
}

/* Apply @p to the tree and keep the vm_bo lists and byte count in step. */
static void plan_apply(struct vmb_bind_job *job, struct vmb_va_plan *p)
{
	vmb_va_apply(&job->vm->tree, p);
	for (unsigned int i = 0; i < p->n; i++) {
		struct vmb_va_step *s = &p->steps[i];
		if (s->kind != VMB_VA_STEP_MAP)
			unlink_va(job, s->va);
		if (s->kind == VMB_VA_STEP_REMAP) {
			if (s->prev)
				link_va(job, s->prev);
			if (s->next)
				link_va(job, s->next);
		}
		if (s->kind == VMB_VA_STEP_MAP)
			link_va(job, s->va);
	}
}

static void plan_revert(struct vmb_bind_job *job, struct vmb_va_plan *p)
{
	for (unsigned int i = p->n; i-- > 0;) {
		struct vmb_va_step *s = &p->steps[i];
		if (s->kind == VMB_VA_STEP_MAP)
			unlink_va(job, s->va);
		if (s->kind == VMB_VA_STEP_REMAP) {
			if (s->next)
				unlink_va(job, s->next);
			if (s->prev)
				unlink_va(job, s->prev);
		}
		if (s->kind != VMB_VA_STEP_MAP)
			link_va(job, s->va);
	}
	vmb_va_revert(&job->vm->tree, p);
}

/* An asynchronous job touches [lo, hi]: remembered for its order against other queues. A range
 * that meets or touches the last one recorded extends it, as ranges_merge would (a MAP of many
 * pieces side by side, the KV cache's 32-op chunk of bench pipeline, records one range: no array
 * grown under the vm's lock, no sort, one node in the pending ranges' tree). */
static int job_track_range(struct vmb_bind_job *job, uint64_t lo, uint64_t hi)
{
	if (!job->track_ranges)
		return 0;
	if (!job->ranges) {
		job->ranges = job->ranges_small;
		job->cap_ranges = ARRAY_SIZE(job->ranges_small);
	}
	if (job->nranges) {
		struct job_range *r = &job->ranges[job->nranges - 1];
		if (lo <= r->hi + 1 && hi + 1 >= r->lo) {
			r->lo = lo < r->lo ? lo : r->lo;
			r->hi = hi > r->hi ? hi : r->hi;
			return 0;
		}
	}
	if (job->nranges == job->cap_ranges &&
	    grow((void **)&job->ranges, job->ranges_small, &job->cap_ranges, job->cap_ranges + 1,
		 sizeof(*job->ranges))) {
		/* no memory: the last range grows to cover this one too. Wider ranges only order the
		 * job after more pending binds, never fewer: an UNMAP does not fail here */
		struct job_range *r = &job->ranges[job->nranges - 1];
		r->lo = lo < r->lo ? lo : r->lo;
		r->hi = hi > r->hi ? hi : r->hi;
		return 0;
	}
	job->ranges[job->nranges++] = (struct job_range){.job = job, .lo = lo, .hi = hi};
	return 0;
}

/* The page-table range a removing step clears: the mapping less the pieces it keeps. */
static void step_clear_range(const struct vmb_va_step *s, uint64_t *lo, uint64_t *hi)
{
	*lo = s->prev ? s->prev->last + 1 : s->va->start;
	*hi = s->next ? s->next->start - 1 : s->va->last;
}

/* The same at commit, from the removed node (the plan's own until the job ends) and the op's
 * range: the kept pieces are live mappings that a later bind may have changed meanwhile. */
static void step_clear_in(const struct vmb_va_step *s, const struct vmb_map_op *range, struct vmb_map_op *op)
{
	op->start = s->va->start > range->start ? s->va->start : range->start;
	op->last = s->va->last < range->last ? s->va->last : range->last;
}

/*
 * An applied removal plan (UNMAP, UNMAP_ALL) becomes one job record, whatever its number of
 * steps: each step's clear is prepared now and committed from the plan (job_commit), whose
 * removed nodes stay untouched until the job ends. Nothing here allocates but the preparation
 * (a device gives one that holds nothing without allocating) and the record, of which the job
 * holds 8 inline: see vm/vm.h, "Unbind cannot fail".
 */
static int job_add_clears(struct vmb_bind_job *job, const struct vmb_va_plan *p, uint64_t start, uint64_t last)
{
	struct vmb_vm *vm = job->vm;
	struct vmb_dev_prep *prep;
	int err;

	if (!p->n)
		return 0;
	if ((err = job_prep_for(job, vm, &prep)))
		return err;
	struct vmb_map_op range = {.kind = VMB_MAP_OP_CLEAR, .start = start, .last = last};
	for (unsigned int i = 0; i < p->n; i++) {
		struct vmb_map_op op = {.kind = VMB_MAP_OP_CLEAR};
		step_clear_in(&p->steps[i], &range, &op);
		if ((err = vm->dev->ops->map_prepare(vm->dvm, &op, prep)))
			return err;
	}
	job->maps[job->nmaps++] = (struct job_map){.vm = vm, .prep = prep, .op = range, .plan = p};
	return 0;
}

/* @x is a multiple of @align (a backing's bind granularity: any value, usually a power of two). */
static bool granule_ok(uint64_t x, uint64_t align)
{
	return !(align & (align - 1)) ? !(x & (align - 1)) : x % align == 0;
}

/*
 * A plan's cuts inside mappings of BOs (the kept pieces of its REMAP steps) fall at multiples of
 * the BO's bind granularity (dev/device.h, struct vmb_backing.align): -EINVAL otherwise, before
 * the plan is applied. A device that maps a BO only in whole chunks (CUDA) could not unmap part
 * of one. Mappings of no BO (NULL, USERPTR) are cut at any granule; removing a whole mapping is
 * never refused (an UNMAP fails for no other reason than its shape: vm/vm.h).
 */
static int plan_check_cuts(const struct vmb_va_plan *p)
{
	for (unsigned int i = 0; i < p->n; i++) {
		const struct vmb_va_step *s = &p->steps[i];
		const struct vmb_vm_bo *vb = s->va->obj.bo;
		if (s->kind != VMB_VA_STEP_REMAP || !vb)
			continue;
		uint64_t align = vmb_bo_backing_now(vb->bo)->align;
		uint64_t off = s->va->obj.offset - s->va->start; /* + VA: the BO's byte there (mod 2^64) */
		if ((s->prev && !granule_ok(off + s->prev->last + 1, align)) ||
		    (s->next && !granule_ok(off + s->next->start, align)))
			return -EINVAL;
	}
	return 0;
}

/* Plan, apply and prepare one MAP or UNMAP of [start, last]; @obj NULL for UNMAP. */
static int job_map_range(struct vmb_bind_job *job, uint64_t start, uint64_t last, const struct vmb_va_obj *obj)
{
	struct vmb_va_plan *p = job_new_plan(job);
	int err;

	if (!p)
		return -ENOMEM;
	/* page-table writes stay inside [start, last]: a REMAP clears only the removed middle */
	if ((err = job_track_range(job, start, last)))
		return err;
	if (job->vm->dev->ops->map_hint) /* its misses overlap the VA tree's */
		job->vm->dev->ops->map_hint(job->vm->dvm, start, last);
	err = obj ? vmb_va_plan_map(&job->vm->tree, p, start, last, obj)
		  : vmb_va_plan_unmap(&job->vm->tree, p, start, last);
	if (err)
		return err;
	plan_prefetch_unlinks(p);
	if ((err = plan_check_cuts(p)) || (err = job_reserve_maps(job, obj ? p->n : 1)))
		return err;
	plan_apply(job, p);
	if (!obj)
		return job_add_clears(job, p, start, last);
	job->err = 0;
	vmb_va_plan_walk(p, &backend, job);
	return job->err;
}

static int op_map(struct vmb_bind_job *job, const struct vmb_bind_req *r)
{
	struct vmb_va_obj obj = {
		.flags = r->flags & VMB_BIND_FLAG_READONLY ? VMB_VA_READONLY : 0,
	};
	int err;

	if (r->op == VMB_BIND_OP_MAP_USERPTR) {
		/* readable, and writable unless READONLY: else the GPU's first access kills the process */
		if ((err = vmb_host_check(r->offset, r->range, !(r->flags & VMB_BIND_FLAG_READONLY))))
			return err;
		struct job_userptr *u = vmb_malloc(sizeof(*u));
		if (!u)
			return -ENOMEM;
		struct vmb_device *dev = job->vm->dev;
		if ((err = dev->ops->backing_userptr(dev, r->offset, r->range, &u->b))) {
			free(u);
			return err;
		}
		u->next = job->userptrs;
		job->userptrs = u;
		job->cur_userptr = u;
		obj.flags |= VMB_VA_USERPTR;
		obj.offset = r->offset;
	} else if (r->flags & VMB_BIND_FLAG_NULL) {
		obj.flags |= VMB_VA_NULL;
	} else {
		struct vmb_vm_bo *vb = NULL;
		/* whole units of the BO's bind granularity (dev/device.h) */
		uint64_t align = vmb_bo_backing_now(r->bo)->align;
		if (!granule_ok(r->offset, align) || !granule_ok(r->range, align))
			return -EINVAL;
		if ((err = vm_bo_obtain(job, r->bo, &vb)) || (err = op_restore(job, r->bo)))
			return err;
		obj.bo = vb;
		obj.offset = r->offset;
	}
	return job_map_range(job, r->addr, r->addr + r->range - 1, &obj);
}

static int op_unmap_all(struct vmb_bind_job *job, const struct vmb_bind_req *r)
{
	struct vmb_vm_bo *vb = vm_bo_find(job->vm, r->bo);
	int err;

	if (!vb || vmb_list_empty(&vb->vas))
		return 0;
	/* one plan removing every mapping of the BO: nothing allocated per mapping (vm/vm.h) */
	struct vmb_va_plan *p = job_new_plan(job);
	struct vmb_list *pos;
	if (!p)
		return -ENOMEM;
	vmb_list_for_each(pos, &vb->vas) {
		struct vmb_va *va = vmb_container_of(pos, struct vmb_va, bo_link);
		if ((err = job_track_range(job, va->start, va->last)) ||
		    (err = vmb_va_plan_unmap_node(&job->vm->tree, p, va)))
			return err;
	}
	if ((err = job_reserve_maps(job, 1)))
		return err;
	plan_apply(job, p);
	return job_add_clears(job, p, 0, UINT64_MAX);
}

static int job_prepare_op(struct vmb_bind_job *job, const struct vmb_bind_req *r)
{
	switch (r->op) {
	case VMB_BIND_OP_MAP:
	case VMB_BIND_OP_MAP_USERPTR:
		return op_map(job, r);
	case VMB_BIND_OP_UNMAP:
		return job_map_range(job, r->addr, r->addr + r->range - 1, NULL);
	case VMB_BIND_OP_UNMAP_ALL:
		return op_unmap_all(job, r);
	case VMB_BIND_OP_PREFETCH:
		/* its range, for its order against other queues: a PREFETCH of a mapping that a
		 * pending bind of another queue makes (an asynchronous MAP following the BO's move)
		 * follows it, even with nothing of its own to move (migrate.c); job_track_range
		 * never fails */
		(void)job_track_range(job, r->addr, r->addr + r->range - 1);
		return op_prefetch(job, r);
	default:
		return -EINVAL;
	}
}

/* The device's commit_begin/end (dev/device.h) around @vm's page-table writes, if it has them. */
static void commit_begin(struct vmb_vm *vm)
{
	if (vm->dev->ops->commit_begin)
		vm->dev->ops->commit_begin(vm->dvm);
}

static void commit_end(struct vmb_vm *vm)
{
	if (vm->dev->ops->commit_end)
		vm->dev->ops->commit_end(vm->dvm);
}

int job_commit(struct vmb_bind_job *job)
{
	struct job_move *m = job->moves;
	unsigned int i;
	int err = 0;

	/* the job's own vm once for all its maps there (a 32-op MAP: one pair, not 32); a move's
	 * re-pointed mappings in other vms (the device lock exclusive) a pair each */
	commit_begin(job->vm);
	for (i = 0; i < job->nmaps; i++) {
		for (; m && m->commit_at == i; m = m->next)
			do_move(m);
		struct job_map *jm = &job->maps[i];
		bool other = jm->vm != job->vm;
		if (other)
			commit_begin(jm->vm);
		if (!jm->plan) {
			err = jm->vm->dev->ops->map_commit(jm->vm->dvm, &jm->op, jm->prep);
		} else {
			for (unsigned int k = 0; k < jm->plan->n && !err; k++) {
				struct vmb_map_op op = {.kind = VMB_MAP_OP_CLEAR};
				step_clear_in(&jm->plan->steps[k], &jm->op, &op);
				err = jm->vm->dev->ops->map_commit(jm->vm->dvm, &op, jm->prep);
			}
		}
		if (other)
			commit_end(jm->vm);
		if (err)
			break;
	}
	commit_end(job->vm);
	if (!err) {
		for (; m; m = m->next)
			do_move(m);
		return 0;
	}
	/* maps[i] failed, maybe in part: its vm and every vm with an operation after it */
	vmb_commit_failed_note();
	vmb_vm_ban(job->vm, err);
	for (; i < job->nmaps; i++)
		vmb_vm_ban(job->maps[i].vm, err);
	return err;
}

static void vm_bo_free(struct vmb_vm_bo *vb)
{
	if (vb->vm->vb_last == vb)
		vb->vm->vb_last = NULL;
	vmb_list_del(&vb->vm_link);
	vmb_dev_cross_lock(vb->vm->dev);
	vmb_list_del(&vb->bo_link);
	vmb_dev_cross_unlock(vb->vm->dev);
	vmb_bo_put(vb->bo);
	free(vb);
}

/* Frees everything the job holds; @ok: it committed, or its commit failed (job_commit: moves not
 * done are undone), else it is unwound. */
void job_end(struct vmb_bind_job *job, bool ok)
{
	struct vmb_device *dev = job->vm->dev;

	/* plans: newest first, so a revert sees the tree as its apply left it */
	for (struct plan_chunk *c = job->plans, *prev; c; c = prev) {
		for (unsigned int i = c->n; i-- > 0;) {
			if (!ok && c->plans[i].applied)
				plan_revert(job, &c->plans[i]);
			vmb_va_plan_fini(&job->vm->tree, &c->plans[i]);
		}
		prev = c->prev;
		if (c == &job->first_plans)
			continue;
		if (job->vm->nkept_chunks < VMB_VM_KEPT_CHUNKS) { /* for the vm's next binds (vm.h) */
			c->prev = job->vm->kept_chunks;
			job->vm->kept_chunks = c;
			job->vm->nkept_chunks++;
		} else {
			free(c);
		}
	}
	for (unsigned int i = 0; i < job->npreps; i++) {
		dev->ops->prep_release(job->preps[i].vm->dvm, job->preps[i].prep);
		if (job->preps[i].vm != job->vm)
			vmb_vm_put(job->preps[i].vm); /* the device lock exclusive: a PREFETCH's */
	}
	if (job->preps != job->preps_small)
		free(job->preps);
	if (job->maps != job->maps_small && job->cap_maps == VMB_VM_KEPT_MAPS && !job->vm->kept_maps)
		job->vm->kept_maps = job->maps; /* for the vm's next binds (vm.h) */
	else if (job->maps != job->maps_small)
		free(job->maps);
	if (job->ranges != job->ranges_small)
		free(job->ranges);
	job->ranges = NULL;
	job->nranges = 0;

	/* moves: undo newest first, each taken off its BO's chain of pending moves (a later move
	 * of another job stays the BO's planned one) */
	struct job_move *rev = NULL;
	for (struct job_move *m = job->moves, *next; m; m = next) {
		next = m->next;
		m->next = rev;
		rev = m;
	}
	for (struct job_move *m = rev, *next; m; m = next) {
		next = m->next;
		/* not done: unwound, or the commit failed before it (job_commit), or nothing was
		 * committed (a failed copy, a cancelled job) */
		if (ok && m->done)
			dev->ops->backing_free(dev, m->from_region, &m->from);
		else
			dev->ops->backing_free(dev, m->to_region, &m->to);
		move_unlink(m);
		if (m->misplacing)
			atomic_fetch_sub(&dev->misplacing, 1); /* misplaced now if it was done */
		dev->ops->copy_destroy(dev, m->copy); /* signalled, or never handed over */
		vmb_bo_put(m->bo);
		free(m);
	}
	for (struct job_userptr *u = job->userptrs, *next; u; u = next) {
		next = u->next;
		dev->ops->backing_userptr_free(dev, &u->b);
		free(u);
	}
	struct vmb_list *pos, *tmp;
	vmb_list_for_each_safe(pos, tmp, &job->vm_bos) {
		struct vmb_vm_bo *vb = vmb_container_of(pos, struct vmb_vm_bo, job_link);
		vmb_list_del(&vb->job_link);
		vmb_list_init(&vb->job_link);
		if (!vmb_list_empty(&vb->vas))
			continue;
		/* a pending job may still have page-table entries to clear for it: keep the BO; but
		 * one left without mappings by an unwound job is one it created (the revert gave every
		 * other its mappings back, and those without were not touched: they are orphans) */
		if (!ok || vmb_list_empty(&job->vm->pending))
			vm_bo_free(vb);
		else
			vmb_list_add_tail(&vb->job_link, &job->vm->orphans);
	}
	if (vmb_list_empty(&job->vm->pending)) {
		vmb_list_for_each_safe(pos, tmp, &job->vm->orphans) {
			struct vmb_vm_bo *vb = vmb_container_of(pos, struct vmb_vm_bo, job_link);
			vmb_list_del(&vb->job_link);
			vmb_list_init(&vb->job_link);
			if (vmb_list_empty(&vb->vas))
				vm_bo_free(vb);
		}
	}
}

/* Everything but the embedded arrays (set up when first used) starts zeroed. The size goes to
 * memset() hidden from the compiler: gcc expands a memset of this constant size (272 bytes)
 * inline as `rep stosq`, whose start-up cost 15 ns more than libc's memset on the machine of
 * docs/PERFORMANCE.md, 5% of a 1-op synchronous bind. */
void job_init(struct vmb_bind_job *job, struct vmb_vm *vm)
{
	size_t n = offsetof(struct vmb_bind_job, first_plans) - offsetof(struct vmb_bind_job, q);
	__asm__("" : "+r"(n));
	memset((char *)job + offsetof(struct vmb_bind_job, q), 0, n);
	job->vm = vm;
	job->moves_tail = &job->moves;
	vmb_list_init(&job->vm_bos);
	vmb_list_init(&job->vm_link);
	vmb_list_init(&job->dev_link);
	vmb_list_init(&job->q_link);
}

int prepare_all(struct vmb_bind_job *job, const struct vmb_bind_req *reqs, unsigned int n)
{
	int err = 0;
	for (unsigned int i = 0; i < n && !err; i++)
		err = job_prepare_op(job, &reqs[i]);
	return err;
}
