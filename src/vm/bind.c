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
 *   BO, in every vm, onto it.
 * Any failure: revert the applied plans newest first, release the preparations, free new
 * backings; the vm is exactly as before and the error is returned.
 *
 * Commit, in order: the device writes the page tables (cannot fail); a move switches the BO to
 * its new backing at its place in the sequence (the backing maps the BO's own pages: no copy). Then the removed nodes, old backings and (vm, BO)
 * links left without mappings are freed.
 *
 * Locking: the caller holds the device lock for the whole call.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <vmbind/bind.h>
#include <vmbind/vm.h>

#include "core/alloc.h"
#include "core/hostmem.h"
#include "sync/stop.h"
#include "vm/vm.h"

#define PLANS_PER_CHUNK 8

/* Plans live in chunks that never move: a plan keeps its steps inline. */
struct plan_chunk {
	struct plan_chunk *prev;
	unsigned int n;
	struct vmb_va_plan plans[PLANS_PER_CHUNK];
};

struct job_prep {
	struct vmb_vm *vm;
	struct vmb_dev_prep *prep;
};

struct job_map {
	struct vmb_vm *vm;
	struct vmb_dev_prep *prep;
	struct vmb_map_op op;
};

/* A BO moving to another region (PREFETCH). */
struct job_move {
	struct job_move *next;
	struct vmb_bo *bo;
	uint32_t from_region, to_region;
	struct vmb_backing from, to;
	const struct vmb_backing *prev_planned; /* to restore on unwind */
	uint32_t prev_planned_region;
	unsigned int commit_at; /* index of the first map operation that must see the move */
};

/* The backing of one userptr mapping: one HOST extent, alive until the job ends. */
struct job_userptr {
	struct job_userptr *next;
	struct vmb_extent ext;
	struct vmb_backing b;
};

struct vmb_bind_job;

/* One range a pending asynchronous job touches: a node of its vm's interval tree. */
struct job_range {
	struct vmb_rb_node node;
	struct vmb_bind_job *job;
	uint64_t lo, hi;
	uint64_t sub_hi; /* the largest hi under node */
};

struct vmb_bind_job {
	struct vmb_sched_job sj; /* asynchronous jobs only */
	struct vmb_bind_queue *q;
	struct vmb_list vm_link, dev_link; /* in vm->pending, dev->pending while submitted */
	struct vmb_list q_link;            /* in q->pending while submitted */
	/* asynchronous jobs: the ranges its operations touch, sorted and disjoint once prepared;
	 * each a node of vm->pending_ranges while the job is submitted */
	struct job_range *ranges;
	unsigned int nranges, cap_ranges;
	bool track_ranges;
	struct vmb_ufence_out *ufs;        /* written after the commit */
	unsigned int nufs;
	bool prepared;                     /* prepare succeeded: commit or unwind still to do */
	unsigned int nops;
	struct vmb_trace_event trace;      /* filled as it goes, recorded when it signals */
	bool caller_locked;                /* run by vmb_vm_free(), which holds the device lock */
	struct vmb_vm *vm;
	struct plan_chunk *plans; /* newest chunk first; the oldest is first_plans */
	struct job_map *maps;
	unsigned int nmaps, cap_maps;
	struct job_prep *preps;
	unsigned int npreps, cap_preps;
	struct job_move *moves, **moves_tail; /* in order */
	struct job_userptr *userptrs;
	struct vmb_list vm_bos; /* vm_bos touched: freed at the end if left without mappings */
	int err;                /* first error of the backend callbacks */
	struct job_userptr *cur_userptr; /* backing for the MAP step being walked */
	/* from here on: left uninitialised until used; they spare small calls any allocation */
	struct plan_chunk first_plans;
	struct job_map maps_small[8];
	struct job_prep preps_small[2];
	struct job_range ranges_small[2];
};

/*
 * The parts of a bind and how they call each other: the engine (plan, prepare, commit, unwind
 * of a bind's operations), BO migration (PREFETCH), the pending binds' ranges (their order
 * across queues), the jobs (the one ordering rule, submission, commit in a worker or in the
 * call). All under the device lock.
 */
/* engine */
void job_init(struct vmb_bind_job *job, struct vmb_vm *vm);
int prepare_all(struct vmb_bind_job *job, const struct vmb_bind_req *reqs, unsigned int n);
void job_commit(struct vmb_bind_job *job);
void job_end(struct vmb_bind_job *job, bool ok);
int job_reserve_maps(struct vmb_bind_job *job, unsigned int more);
int job_add_map(struct vmb_bind_job *job, struct vmb_vm *vm, const struct vmb_map_op *op);
/* BO migration */
int op_prefetch(struct vmb_bind_job *job, const struct vmb_bind_req *r);
void do_move(struct job_move *m);
/* pending ranges */
void ranges_merge(struct vmb_bind_job *job);
void ranges_insert(struct vmb_vm *vm, struct vmb_bind_job *job);
void ranges_remove(struct vmb_vm *vm, struct vmb_bind_job *job);
int ranges_each(const struct vmb_rb_node *n, uint64_t lo, uint64_t hi,
		int (*fn)(struct vmb_bind_job *p, void *arg), void *arg);

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

/* The (vm, bo) link, created if absent. */
static int vm_bo_obtain(struct vmb_bind_job *job, struct vmb_bo *bo, struct vmb_vm_bo **out)
{
	struct vmb_list *pos;
	vmb_list_for_each(pos, &bo->vm_bos) {
		struct vmb_vm_bo *vb = vmb_container_of(pos, struct vmb_vm_bo, bo_link);
		if (vb->vm == job->vm) {
			job_touch(job, vb);
			*out = vb;
			return 0;
		}
	}
	struct vmb_vm_bo *vb = vmb_calloc(1, sizeof(*vb));
	if (!vb)
		return -ENOMEM;
	vb->vm = job->vm;
	vb->bo = bo;
	vmb_bo_get(bo);
	vmb_list_init(&vb->vas);
	vmb_list_init(&vb->job_link);
	vmb_list_add_tail(&vb->vm_link, &job->vm->vm_bos);
	vmb_list_add_tail(&vb->bo_link, &bo->vm_bos);
	job_touch(job, vb);
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
		c = vmb_malloc(sizeof(*c));
		if (!c)
			return NULL;
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
	int err = vm->dev->ops->prep_create(vm->dev, out);
	if (err)
		return err;
	job->preps[job->npreps++] = (struct job_prep){.vm = vm, .prep = *out};
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
	return grow((void **)&job->maps, job->maps_small, &job->cap_maps, job->nmaps + more, sizeof(*job->maps));
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
	uint64_t lo = s->prev ? s->prev->last + 1 : s->va->start;
	uint64_t hi = s->next ? s->next->start - 1 : s->va->last;
	emit_clear(priv, lo, hi);
}

static void step_map(void *priv, const struct vmb_va_step *s)
{
	struct vmb_bind_job *job = priv;
	const struct vmb_va *va = s->va;
	struct vmb_map_op op = {
		.kind = VMB_MAP_OP_MAP,
		.start = va->start,
		.last = va->last,
		.flags = (va->obj.flags & VMB_VA_READONLY ? VMB_MAP_READONLY : 0) |
			 (va->obj.flags & VMB_VA_NULL ? VMB_MAP_NULL : 0),
	};
	if (va->obj.flags & VMB_VA_USERPTR) {
		op.backing = &job->cur_userptr->b;
		op.offset = 0;
	} else if (!(va->obj.flags & VMB_VA_NULL)) {
		const struct vmb_vm_bo *vb = va->obj.bo;
		op.backing = vmb_bo_backing_now(vb->bo);
		op.offset = va->obj.offset;
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
		vb->bo->mappings++;
	}
}

static void unlink_va(struct vmb_bind_job *job, struct vmb_va *va)
{
	job->vm->bytes_mapped -= va->last - va->start + 1;
	if (va->obj.bo) {
		struct vmb_vm_bo *vb = va->obj.bo;
		vmb_list_del(&va->bo_link);
		vb->bo->mappings--;
		job_touch(job, vb);
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

/* An asynchronous job touches [lo, hi]: remembered for its order against other queues. */
static int job_track_range(struct vmb_bind_job *job, uint64_t lo, uint64_t hi)
{
	if (!job->track_ranges)
		return 0;
	if (!job->ranges) {
		job->ranges = job->ranges_small;
		job->cap_ranges = ARRAY_SIZE(job->ranges_small);
	}
	if (job->nranges == job->cap_ranges &&
	    grow((void **)&job->ranges, job->ranges_small, &job->cap_ranges, job->cap_ranges + 1,
		 sizeof(*job->ranges)))
		return -ENOMEM;
	job->ranges[job->nranges++] = (struct job_range){.job = job, .lo = lo, .hi = hi};
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
	err = obj ? vmb_va_plan_map(&job->vm->tree, p, start, last, obj)
		  : vmb_va_plan_unmap(&job->vm->tree, p, start, last);
	if (err)
		return err;
	if ((err = job_reserve_maps(job, p->n)))
		return err;
	plan_apply(job, p);
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
		u->ext = (struct vmb_extent){.off = 0, .pa = vmb_pa(VMB_PA_APERTURE_HOST, r->offset), .size = r->range};
		u->b = (struct vmb_backing){.ext = &u->ext, .n = 1, .size = r->range};
		u->next = job->userptrs;
		job->userptrs = u;
		job->cur_userptr = u;
		obj.flags |= VMB_VA_USERPTR;
		obj.offset = r->offset;
	} else if (r->flags & VMB_BIND_FLAG_NULL) {
		obj.flags |= VMB_VA_NULL;
	} else {
		struct vmb_vm_bo *vb;
		if ((err = vm_bo_obtain(job, r->bo, &vb)))
			return err;
		obj.bo = vb;
		obj.offset = r->offset;
	}
	return job_map_range(job, r->addr, r->addr + r->range - 1, &obj);
}

static int op_unmap_all(struct vmb_bind_job *job, const struct vmb_bind_req *r)
{
	struct vmb_vm_bo *vb = NULL;
	struct vmb_list *pos;
	int err;

	vmb_list_for_each(pos, &r->bo->vm_bos) {
		struct vmb_vm_bo *x = vmb_container_of(pos, struct vmb_vm_bo, bo_link);
		if (x->vm == job->vm)
			vb = x;
	}
	/* Each unmap removes the first mapping of the list, until none is left. */
	while (vb && !vmb_list_empty(&vb->vas)) {
		struct vmb_va *va = vmb_container_of(vb->vas.next, struct vmb_va, bo_link);
		if ((err = job_map_range(job, va->start, va->last, NULL)))
			return err;
	}
	return 0;
}

/*
 * ---- BO migration (PREFETCH) ----
 *
 * PREFETCH moves each BO mapped in its range to the region it names: prepare allocates the BO's
 * new backing and prepares re-mapping every mapping of the BO, in every vm, onto it (bo->planned
 * points at it, so later binds map the BO where it will be); commit switches the BO to it at its
 * place in the sequence of map operations; unwind frees it and restores bo->planned. The BO's
 * pages never move (mem/bo.h): nothing is copied. Device lock.
 */
/* Re-map every mapping of @bo, in every vm, onto @b. */
static int remap_bo(struct vmb_bind_job *job, struct vmb_bo *bo, const struct vmb_backing *b)
{
	struct vmb_list *pos, *v;
	int err;

	vmb_list_for_each(pos, &bo->vm_bos) {
		struct vmb_vm_bo *vb = vmb_container_of(pos, struct vmb_vm_bo, bo_link);
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
	struct job_move *m = vmb_calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	err = dev->ops->backing_alloc(dev, region, bo->size, bo->host, &m->to);
	if (err) {
		free(m);
		return err;
	}
	m->bo = bo;
	vmb_bo_get(bo);
	m->from = *vmb_bo_backing_now(bo);
	m->from_region = vmb_bo_region_now(bo);
	m->to_region = region;
	m->prev_planned = bo->planned;
	m->prev_planned_region = bo->planned_region;
	m->commit_at = job->nmaps;
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
		return op_prefetch(job, r);
	default:
		return -EINVAL;
	}
}

/* The new backing shows the BO's own pages (mem/bo.h): nothing to copy, the CPU mapping stays. */
void do_move(struct job_move *m)
{
	m->bo->backing = m->to;
	m->bo->region = m->to_region;
}

void job_commit(struct vmb_bind_job *job)
{
	struct job_move *m = job->moves;
	for (unsigned int i = 0; i < job->nmaps; i++) {
		for (; m && m->commit_at == i; m = m->next)
			do_move(m);
		struct job_map *jm = &job->maps[i];
		jm->vm->dev->ops->map_commit(jm->vm->dvm, &jm->op, jm->prep);
	}
	for (; m; m = m->next)
		do_move(m);
}

static void vm_bo_free(struct vmb_vm_bo *vb)
{
	vmb_list_del(&vb->vm_link);
	vmb_list_del(&vb->bo_link);
	vmb_bo_put(vb->bo);
	free(vb);
}

/* Frees everything the job holds; @ok: it committed (else it is unwound). */
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
		if (c != &job->first_plans)
			free(c);
	}
	for (unsigned int i = 0; i < job->npreps; i++)
		dev->ops->prep_release(job->preps[i].vm->dvm, job->preps[i].prep);
	if (job->preps != job->preps_small)
		free(job->preps);
	if (job->maps != job->maps_small)
		free(job->maps);
	if (job->ranges != job->ranges_small)
		free(job->ranges);
	job->ranges = NULL;
	job->nranges = 0;

	/* moves: undo newest first so each BO's planned pointer returns to its first value */
	struct job_move *rev = NULL;
	for (struct job_move *m = job->moves, *next; m; m = next) {
		next = m->next;
		m->next = rev;
		rev = m;
	}
	for (struct job_move *m = rev, *next; m; m = next) {
		next = m->next;
		if (ok) {
			dev->ops->backing_free(dev, m->from_region, &m->from);
			m->bo->planned = NULL;
		} else {
			dev->ops->backing_free(dev, m->to_region, &m->to);
			m->bo->planned = m->prev_planned;
			m->bo->planned_region = m->prev_planned_region;
		}
		vmb_bo_put(m->bo);
		free(m);
	}
	for (struct job_userptr *u = job->userptrs, *next; u; u = next) {
		next = u->next;
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

/* Everything but the embedded arrays (set up when first used) starts zeroed. */
void job_init(struct vmb_bind_job *job, struct vmb_vm *vm)
{
	memset((char *)job + offsetof(struct vmb_bind_job, q), 0,
	       offsetof(struct vmb_bind_job, first_plans) - offsetof(struct vmb_bind_job, q));
	job->vm = vm;
	job->moves_tail = &job->moves;
	vmb_list_init(&job->vm_bos);
	vmb_list_init(&job->vm_link);
	vmb_list_init(&job->dev_link);
	vmb_list_init(&job->q_link);
}

/*
 * ---- the pending binds' ranges: an interval tree ----
 *
 * Binds of different queues are ordered only where their operations' ranges overlap: each
 * pending asynchronous job puts each of its ranges (what its operations touch, merged into
 * sorted disjoint ranges: for UNMAP_ALL the mappings it removes, found at prepare) in the tree,
 * so a 2-op bind at both ends of the vm is not ordered after a bind in the middle. The tree is
 * keyed by lo (equal keys in any order) and keeps each subtree's largest hi, so the overlaps
 * of a range are found in O(log n + k) (a scan of every pending bind took a third of the time
 * with 32 submitters). Device lock.
 */
static struct job_range *range_of(const struct vmb_rb_node *n)
{
	return n ? vmb_container_of(n, struct job_range, node) : NULL;
}

static bool range_recompute(struct vmb_rb_node *n)
{
	struct job_range *j = range_of(n);
	uint64_t m = j->hi;
	if (n->left && range_of(n->left)->sub_hi > m)
		m = range_of(n->left)->sub_hi;
	if (n->right && range_of(n->right)->sub_hi > m)
		m = range_of(n->right)->sub_hi;
	bool changed = m != j->sub_hi;
	j->sub_hi = m;
	return changed;
}

static void range_copy(struct vmb_rb_node *to, const struct vmb_rb_node *from)
{
	range_of(to)->sub_hi = range_of(from)->sub_hi;
}

static const struct vmb_rb_augment range_aug = {.recompute = range_recompute, .copy = range_copy};

static int range_cmp(const void *a, const void *b)
{
	const struct job_range *x = a, *y = b;
	return x->lo < y->lo ? -1 : x->lo > y->lo;
}

/* Sorts the job's ranges and merges those that overlap or touch: sorted and disjoint. */
void ranges_merge(struct vmb_bind_job *job)
{
	unsigned int n = 0;
	if (job->nranges > 1)
		qsort(job->ranges, job->nranges, sizeof(*job->ranges), range_cmp);
	for (unsigned int i = 0; i < job->nranges; i++) {
		struct job_range *r = &job->ranges[i];
		if (n && r->lo <= job->ranges[n - 1].hi + 1) {
			if (r->hi > job->ranges[n - 1].hi)
				job->ranges[n - 1].hi = r->hi;
		} else {
			job->ranges[n++] = *r;
		}
	}
	job->nranges = n;
}

void ranges_insert(struct vmb_vm *vm, struct vmb_bind_job *job)
{
	for (unsigned int i = 0; i < job->nranges; i++) {
		struct job_range *r = &job->ranges[i];
		struct vmb_rb_node **link = &vm->pending_ranges.node, *parent = NULL;
		while (*link) {
			parent = *link;
			link = r->lo < range_of(parent)->lo ? &parent->left : &parent->right;
		}
		vmb_rb_insert_aug(&vm->pending_ranges, &r->node, parent, link, &range_aug);
	}
}

void ranges_remove(struct vmb_vm *vm, struct vmb_bind_job *job)
{
	for (unsigned int i = 0; i < job->nranges; i++)
		vmb_rb_erase_aug(&vm->pending_ranges, &job->ranges[i].node, &range_aug);
}

/*
 * Calls @fn for the job of each pending range under @n that meets [@lo, @hi] (until it returns
 * non-zero, which is returned); a job with several such ranges is met once per range. The
 * recursion follows the tree's height: O(log n).
 */
int ranges_each(const struct vmb_rb_node *n, uint64_t lo, uint64_t hi,
		       int (*fn)(struct vmb_bind_job *p, void *arg), void *arg)
{
	while (n && range_of(n)->sub_hi >= lo) {
		int r = ranges_each(n->left, lo, hi, fn, arg);
		struct job_range *p = range_of(n);
		if (r || p->lo > hi)
			return r; /* everything to the right starts even later */
		if (p->hi >= lo && (r = fn(p->job, arg)))
			return r;
		n = n->right;
	}
	return 0;
}

static long ranges_check(const struct vmb_rb_node *n, uint64_t *max)
{
	if (!n) {
		*max = 0;
		return 0;
	}
	uint64_t l, r;
	long cl = ranges_check(n->left, &l), cr = ranges_check(n->right, &r);
	const struct job_range *j = range_of(n);
	uint64_t m = j->hi > l ? j->hi : l;
	m = m > r ? m : r;
	*max = m;
	/* a node of a job's own array, that job pending */
	bool owned = j->job && j >= j->job->ranges && j < j->job->ranges + j->job->nranges &&
		     !vmb_list_empty(&j->job->vm_link);
	if (cl < 0 || cr < 0 || !owned || j->lo > j->hi || j->sub_hi != m ||
	    (n->left && range_of(n->left)->lo > j->lo) || (n->right && range_of(n->right)->lo < j->lo))
		return -1;
	return cl + cr + 1;
}

int vmb_vm_pending_validate(struct vmb_vm *vm)
{
	long nranges = 0;
	struct vmb_list *pos;
	vmb_list_for_each(pos, &vm->pending) {
		const struct vmb_bind_job *job = vmb_container_of(pos, struct vmb_bind_job, vm_link);
		/* each job's ranges sorted and disjoint (not even touching: they were merged) */
		for (unsigned int i = 0; i < job->nranges; i++) {
			const struct job_range *r = &job->ranges[i];
			if (r->job != job || r->lo > r->hi || (i && r->lo <= job->ranges[i - 1].hi + 1))
				return -EUCLEAN;
		}
		nranges += job->nranges;
	}
	uint64_t max;
	if (vmb_rb_validate(&vm->pending_ranges) != nranges || ranges_check(vm->pending_ranges.node, &max) != nranges)
		return -EUCLEAN;
	return 0;
}

int prepare_all(struct vmb_bind_job *job, const struct vmb_bind_req *reqs, unsigned int n)
{
	int err = 0;
	for (unsigned int i = 0; i < n && !err; i++)
		err = job_prepare_op(job, &reqs[i]);
	return err;
}

/*
 * ---- jobs ----
 *
 * Every bind is a job (struct vmb_bind_job) ordered by one rule (job_deps_each below).
 * vmb_vm_bind_submit() holds the policy: an asynchronous bind's job goes to the scheduler,
 * which commits it in a worker once its dependencies have signalled (job_run); a synchronous
 * bind, one with a PREFETCH and the low-memory fallback commit in the call (bind_in_call).
 * Submitted jobs are on their vm's, their device's and their queue's pending lists and their
 * ranges in the vm's tree of pending ranges until they commit; at most
 * VMB_BIND_QUEUE_PENDING_MAX per queue. vmb_vm_drain() runs a vm's pending jobs at once.
 * Device lock: every list and the commit; a worker takes it to commit.
 */
static bool reqs_prefetch(const struct vmb_bind_req *reqs, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++)
		if (reqs[i].op == VMB_BIND_OP_PREFETCH)
			return true;
	return false;
}

/*
 * ---- the order of a bind: one rule for every bind ----
 *
 * A prepared job must follow: its in-fences; its queue's previous job (unless @queue is false:
 * an asynchronous job gets that one, with its place in the queue's fence context, from
 * vmb_sched_job_after()); the pending jobs of other queues with a range that meets one of its
 * own (its ranges are recorded at prepare: each MAP/UNMAP range, each mapping an UNMAP_ALL
 * removes); with a PREFETCH (a move re-points mappings in every vm), every pending job of the
 * device. Calls @fn for each such fence, signalled or not, until it returns non-zero, which is
 * returned. Device lock.
 */
struct dep_walk {
	struct vmb_bind_job *job;
	int (*fn)(struct vmb_fence *f, void *arg);
	void *arg;
};

static int dep_overlap(struct vmb_bind_job *p, void *arg)
{
	struct dep_walk *w = arg;
	return p->q == w->job->q ? 0 : w->fn(p->sj.done, w->arg);
}

static int job_deps_each(struct vmb_bind_job *job, const struct vmb_fence_set *in, bool queue, bool prefetch,
			 int (*fn)(struct vmb_fence *f, void *arg), void *arg)
{
	struct dep_walk w = {.job = job, .fn = fn, .arg = arg};
	struct vmb_list *pos;
	int r = 0;

	for (unsigned int i = 0; in && i < in->n && !r; i++)
		r = fn(in->v[i], arg);
	if (!r && queue && job->q->entity.last)
		r = fn(job->q->entity.last, arg);
	if (prefetch) {
		vmb_list_for_each(pos, &job->vm->dev->pending) {
			if (r)
				break;
			r = fn(vmb_container_of(pos, struct vmb_bind_job, dev_link)->sj.done, arg);
		}
		return r;
	}
	/* a job met through several ranges is met once per range */
	for (unsigned int i = 0; i < job->nranges && !r; i++)
		r = ranges_each(job->vm->pending_ranges.node, job->ranges[i].lo, job->ranges[i].hi, dep_overlap, &w);
	return r;
}

/* Fences a call waits for before it tries again (new references). */
#define WAIT_MAX 8
struct waits {
	struct vmb_fence *v[WAIT_MAX];
	unsigned int n;
};

/* Collects the unsignalled fences, up to WAIT_MAX (then 1: enough to wait for). */
static int collect_unsignalled(struct vmb_fence *f, void *arg)
{
	struct waits *w = arg;
	if (vmb_fence_is_signalled(f))
		return 0;
	for (unsigned int i = 0; i < w->n; i++)
		if (w->v[i] == f)
			return 0;
	vmb_fence_get(f);
	w->v[w->n++] = f;
	return w->n == WAIT_MAX;
}

/*
 * ---- a bind that commits in the call ----
 *
 * Synchronous binds, binds with a PREFETCH and the low-memory fallback. The bind is prepared as
 * a job on the stack (its ranges recorded as for an asynchronous job) and the one rule says
 * what it must follow. If some of that has not signalled, the preparation is unwound (nothing
 * changed) and @w gets those fences (up to WAIT_MAX): the caller waits for them with the lock
 * dropped, interruptibly, and starts over. Else everything it follows has committed: it commits
 * now, in the same lock hold, so it never joins the pending lists (no bind can be ordered after
 * it before it has committed, and nothing but its own commit is left to wait for), writes its
 * user fences and installs the always-signalled stub fence in its out-syncobjs. Returns 0, 1
 * (wait) or an errno.
 *
 * Why unwind rather than submit and wait: a call that fails (-EINTR, -ENODEV at close, -ENOENT)
 * must have changed nothing, and a submitted job cannot be taken back once later binds have
 * been prepared on top of it.
 *
 * Livelock: each round waits for binds that were pending when it looked, so the call completes
 * once no new bind that it must follow (on its queue; overlapping its ranges on another queue;
 * with a PREFETCH, any bind of the device) is submitted while it waits. A thread that submits
 * such binds without pause can hold it up indefinitely, as a stream of readers holds up a
 * writer on a reader-preferring lock: there is no fairness between a waiting call and later
 * submitters, only this bound. Per round the call prepares once, whatever the number of binds
 * it follows (it waits for all it found, up to WAIT_MAX).
 */
static int bind_in_call(struct vmb_vm *vm, struct vmb_bind_queue *q, const struct vmb_bind_req *reqs,
			unsigned int n, bool prefetch, struct vmb_bind_syncs *s, struct waits *w)
{
	struct vmb_bind_job job;
	int err;

	job_init(&job, vm);
	job.q = q;
	job.track_ranges = true;
	err = prepare_all(&job, reqs, n);
	if (!err) {
		ranges_merge(&job);
		job_deps_each(&job, s->in, true, prefetch, collect_unsignalled, w);
		if (w->n) {
			job_end(&job, false);
			return 1;
		}
		job_commit(&job);
	}
	job_end(&job, err == 0);
	if (err)
		return err;
	for (unsigned int i = 0; i < s->nufs; i++)
		vmb_device_ufence_write(vm->dev, s->ufs[i].addr, s->ufs[i].value);
	if (s->install)
		s->install(s->arg, &vm->dev->stub);
	return 0;
}

/* ---- asynchronous jobs -------------------------------------------------------------------- */

/* Under the device lock: commit @job and take it off the pending lists. */
static void job_commit_locked(struct vmb_bind_job *job)
{
	job->trace.start_ns = (uint64_t)vmb_now_ns();
	job->trace.ready_ns = job->sj.ready_ns ? (uint64_t)job->sj.ready_ns : job->trace.start_ns;
	job->trace.vm_id = job->vm->id;
	job->trace.queue_id = job->q->id;
	job->trace.ops = job->nops;
	job_commit(job);
	job->q->npending--;
	ranges_remove(job->vm, job);
	vmb_list_del(&job->vm_link);
	vmb_list_del(&job->dev_link);
	vmb_list_del(&job->q_link);
	job_end(job, true);
	job->prepared = false;
}

/* @next waits for nothing but @f (and fences already signalled). */
static bool only_waits_for(const struct vmb_bind_job *next, const struct vmb_fence *f)
{
	for (unsigned int i = 0; i < next->sj.ndeps; i++)
		if (next->sj.deps[i].fence != f && !vmb_fence_is_signalled(next->sj.deps[i].fence))
			return false;
	return true;
}

#define CHAIN_MAX 64

static int job_run(struct vmb_sched_job *sj)
{
	struct vmb_bind_job *job = vmb_container_of(sj, struct vmb_bind_job, sj);
	struct vmb_device *dev = job->vm->dev;
	struct vmb_bind_queue *q = job->q;
	struct vmb_bind_job *chain[CHAIN_MAX];
	unsigned int n = 0;

	if (job->caller_locked) { /* vmb_vm_drain(): one job, cancelled */
		job_commit_locked(job);
		vmb_bind_queue_put(q);
		for (unsigned int i = 0; i < job->nufs; i++)
			vmb_device_ufence_write(dev, job->ufs[i].addr, job->ufs[i].value);
		return -ECANCELED;
	}
	vmb_dev_lock(dev);
	job_commit_locked(job);
	/*
	 * The queue's next binds that wait for nothing else than this one commit in the same lock
	 * hold (a queue drains in one go instead of one hand-off per bind); their fences signal
	 * after this one's, in order.
	 */
	for (struct vmb_bind_job *cur = job; n < CHAIN_MAX && !vmb_list_empty(&q->pending);) {
		struct vmb_bind_job *next = vmb_container_of(q->pending.next, struct vmb_bind_job, q_link);
		if (!only_waits_for(next, cur->sj.done) || !vmb_sched_job_claim(&next->sj))
			break;
		vmb_sched_job_disarm(&next->sj);
		job_commit_locked(next);
		chain[n++] = cur = next;
	}
	/* before the signals: once they are out, the vm (and its default queue) may go */
	for (unsigned int i = 0; i < n; i++)
		vmb_bind_queue_put(q);
	vmb_bind_queue_put(q);
	vmb_dev_unlock(dev);
	for (unsigned int i = 0; i <= n; i++) {
		struct vmb_bind_job *j = i ? chain[i - 1] : job;
		for (unsigned int k = 0; k < j->nufs; k++)
			vmb_device_ufence_write(dev, j->ufs[k].addr, j->ufs[k].value);
		j->trace.end_ns = (uint64_t)vmb_now_ns();
		vmb_trace_record(dev, &j->trace);
		vmb_sched_job_complete(&j->sj, 0);
	}
	return VMB_SCHED_DETACHED;
}

static void job_release(struct vmb_sched_job *sj)
{
	struct vmb_bind_job *job = vmb_container_of(sj, struct vmb_bind_job, sj);
	vmb_sched_job_fini(&job->sj);
	free(job->ufs);
	free(job);
}

static const struct vmb_sched_job_ops bind_job_ops = {.run = job_run, .release = job_release};

static struct vmb_bind_job *job_new(struct vmb_vm *vm, struct vmb_bind_queue *q)
{
	struct vmb_bind_job *job = vmb_malloc(sizeof(*job));
	if (!job)
		return NULL;
	if (vmb_sched_job_init(&job->sj, &vm->dev->sched, &bind_job_ops)) {
		free(job);
		return NULL;
	}
	job_init(job, vm);
	job->q = q;
	job->track_ranges = true;
	job->trace = (struct vmb_trace_event){.kind = VMB_TRACE_BIND, .submit_ns = (uint64_t)vmb_now_ns()};
	vmb_bind_queue_get(q);
	return job;
}

/* Undoes a prepared (or unprepared) job that was never submitted and frees it. */
static void job_abort(struct vmb_bind_job *job)
{
	if (job->prepared)
		job_end(job, false);
	vmb_bind_queue_put(job->q);
	job_release(&job->sj);
}

static int add_dep(struct vmb_fence *f, void *arg)
{
	return vmb_sched_job_add_dep(arg, f);
}

/* The queue's oldest pending bind's fence (a new reference) if @q is at the limit, else NULL. */
static struct vmb_fence *queue_throttle(struct vmb_bind_queue *q)
{
	if (q->npending < VMB_BIND_QUEUE_PENDING_MAX)
		return NULL;
	struct vmb_fence *f = vmb_container_of(q->pending.next, struct vmb_bind_job, q_link)->sj.done;
	vmb_fence_get(f);
	return f;
}

/* Hands the job to the scheduler: cannot fail. */
static void job_submit(struct vmb_bind_job *job)
{
	job->q->npending++;
	vmb_list_add_tail(&job->vm_link, &job->vm->pending);
	ranges_insert(job->vm, job);
	vmb_list_add_tail(&job->dev_link, &job->vm->dev->pending);
	vmb_list_add_tail(&job->q_link, &job->q->pending);
	vmb_sched_entity_push(&job->q->entity, &job->sj);
	vmb_sched_submit(&job->sj);
}

/*
 * Prepares @job, gives it its dependencies by the one rule (the scheduler commits it once they
 * have signalled), installs its fence in the out-syncobjs, hands it the user fences and submits
 * it. On error the job is freed and nothing changed.
 */
static int bind_async(struct vmb_bind_job *job, const struct vmb_bind_req *reqs, unsigned int n,
		      struct vmb_bind_syncs *s)
{
	int err = prepare_all(job, reqs, n);
	if (err) {
		job_end(job, false);
	} else {
		job->prepared = true;
		job->nops = n;
		ranges_merge(job);
		err = vmb_sched_job_after(&job->sj, &job->q->entity);
	}
	if (!err)
		err = job_deps_each(job, s->in, false, false, add_dep, &job->sj);
	if (err) {
		job_abort(job);
		return err;
	}
	if (s->install)
		s->install(s->arg, job->sj.done);
	job->ufs = s->ufs;
	job->nufs = s->nufs;
	s->ufs = NULL;
	s->nufs = 0;
	job_submit(job);
	return 0;
}

/*
 * One attempt under the device lock. Returns 0 (done), an errno, or 1: wait for *@wait with
 * the lock dropped, then again. *@in_call: the bind commits in the call (set for good once a
 * job could not be allocated).
 */
static int bind_step(struct vmb_vm *vm, struct vmb_bind_queue *q, const struct vmb_bind_req *reqs,
		     unsigned int n, bool prefetch, bool *in_call, struct vmb_bind_syncs *s, struct waits *w)
{
	if (!*in_call) {
		if ((w->v[0] = queue_throttle(q))) {
			w->n = 1;
			return 1;
		} /* the queue is full: wait for its own oldest bind first */
		/* an LR vm waits for its in-fences in the call: its job never depends on a fence that
		 * nothing bounds (a long-running workload's), the rule of long-running contexts */
		if ((vm->flags & VMB_VM_CREATE_LR_MODE) && s->in) {
			for (unsigned int i = 0; i < s->in->n && w->n < WAIT_MAX; i++)
				collect_unsignalled(s->in->v[i], w);
			if (w->n)
				return 1;
		}
		struct vmb_bind_job *job = job_new(vm, q);
		if (job)
			return bind_async(job, reqs, n, s);
		*in_call = true; /* no memory for a job: the call does the work (the low-memory fallback) */
	}
	return bind_in_call(vm, q, reqs, n, prefetch, s, w);
}

int vmb_vm_bind_submit(struct vmb_vm *vm, struct vmb_bind_queue *q, const struct vmb_bind_req *reqs,
		       unsigned int n, bool async, struct vmb_bind_syncs *s)
{
	struct vmb_device *dev = vm->dev;
	bool prefetch = reqs_prefetch(reqs, n);
	bool in_call = !async || prefetch;

	for (;;) {
		struct waits w = {.n = 0};
		int r = bind_step(vm, q, reqs, n, prefetch, &in_call, s, &w);
		if (r <= 0)
			return r;
		/* all of them before trying again: one prepare per round, however many it follows */
		vmb_dev_unlock(dev);
		int err = 0;
		for (unsigned int i = 0; i < w.n; i++) {
			if (!err)
				err = vmb_fence_wait_stop(w.v[i], VMB_FENCE_FOREVER, true, s->stop);
			vmb_fence_unref(w.v[i]);
		}
		vmb_dev_lock(dev);
		if (err)
			return err;
		if (vm->closed || q->closed || (s->gone && s->gone(s->arg)))
			return -ENOENT; /* destroyed while the call waited: nothing changed */
	}
}

/* Run every pending job of @vm now, in order (see vm.h); the device lock is held. */
void vmb_vm_drain(struct vmb_vm *vm)
{
	struct vmb_device *dev = vm->dev;
	while (!vmb_list_empty(&vm->pending)) {
		struct vmb_bind_job *job = vmb_container_of(vm->pending.next, struct vmb_bind_job, vm_link);
		if (vmb_sched_job_claim(&job->sj)) {
			vmb_sched_job_disarm(&job->sj);
			job->caller_locked = true;
			vmb_sched_run_claimed(&job->sj);
		} else {
			/* a worker started it and waits for the lock: let it finish */
			struct vmb_fence *f = job->sj.done;
			vmb_fence_get(f);
			vmb_dev_unlock(dev);
			vmb_fence_wait(f, VMB_FENCE_FOREVER, false);
			vmb_dev_lock(dev);
			vmb_fence_unref(f);
		}
	}
}
