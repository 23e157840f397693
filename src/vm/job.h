/* SPDX-License-Identifier: MIT */
/* A bind job and the internal interface between the parts of a bind (bind.c, migrate.c,
 * pending.c, job.c). */
#ifndef VMB_VM_JOB_H
#define VMB_VM_JOB_H

#include <stdbool.h>
#include <stdint.h>

#include "dev/core.h"
#include "vm/bind.h"

#define PLANS_PER_CHUNK 8
#define VMB_VM_KEPT_CHUNKS 4 /* plan chunks a vm keeps (vm.h, kept_chunks): a 40-op bind's */
#define VMB_VM_KEPT_MAPS 64  /* the map array a vm keeps (vm.h, kept_maps): a job's first growth */

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
	/* an UNMAP or UNMAP_ALL: one CLEAR per step of this plan (what each step removes, within
	 * `op`'s range: the whole space for UNMAP_ALL), one record per op however many mappings it
	 * removes (bind.c) */
	const struct vmb_va_plan *plan;
};

struct vmb_bind_job;

/* A BO moving to another region (PREFETCH): its new backing, and the device's copy into it. */
struct job_move {
	struct job_move *next;
	struct vmb_bind_job *job;
	struct vmb_bo *bo;
	/* from: where the BO is when the move commits (do_move sets them from the BO: behind another
	 * job's pending move, known only then; until then what the BO's previous move plans) */
	uint32_t from_region, to_region;
	struct vmb_backing from, to;
	/* the BO's pending move before this one (its bo->planned when this one was prepared: the
	 * same job's or another pending job's, which this job follows), or NULL; the BO's pending
	 * moves form a chain from bo->planned, the latest, down these links, each a move not yet
	 * ended (job_end unlinks one that ends: move_unlink). Written under the device lock
	 * exclusive (a move's prepare, its job's end), read under it shared (a MAP's prepare) */
	const struct vmb_backing *prev_planned;
	uint32_t prev_planned_region;
	unsigned int commit_at; /* index of the first map operation that must see the move */
	bool done;              /* the commit switched the BO (do_move) */
	bool evict;             /* an eviction: to SYSTEM, whatever the BO's placements */
	bool misplacing;        /* to a region the BO's placements exclude: counted in
				 * dev->misplacing from its prepare to its job's end */
	struct vmb_dev_copy *copy; /* from -> to, made at prepare, run by the job (job.c) */
	struct vmb_fence_cb copy_cb;
};

/* The backing of one userptr mapping (the device's: ops->backing_userptr), alive until the job
 * ends. */
struct job_userptr {
	struct job_userptr *next;
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
	int error;                         /* what its fence signals with: its commit's (job.c) */
	struct vmb_vm *vm;
	struct plan_chunk *plans; /* newest chunk first; the oldest is first_plans */
	struct job_map *maps;
	unsigned int nmaps, cap_maps;
	struct job_prep *preps;
	unsigned int npreps, cap_preps;
	struct job_move *moves, **moves_tail; /* in order */
	/* a job with moves: its copies were handed to the device (job_run), how many are still
	 * running (+ 1 while they are handed over), and its commit once they are over */
	bool evict;    /* an eviction's (evict_submit): moves only, no dependency, on no queue */
	bool restore;  /* a restore's before an exec (vmb_vm_restore): moves only, on no queue */
	uint64_t evict_want; /* the VRAM bytes a prepare's -ENOSPC missed (vm/job.c evicts them) */
	bool moves_ok; /* a job that may move BOs (the device lock exclusive, its copies run by
			* the job: bind_async); else a BO to restore is -ERESTART (job.c) */
	bool copying;
	/* it maps a BO that another pending job moves (bind.c, map_moving): it follows that job
	 * (job_deps_each finds it through the job's plans) */
	bool maps_moving;
	atomic_uint copies_left;
	struct vmb_sched_work commit_work;
	struct job_userptr *userptrs;
	struct vmb_list vm_bos; /* vm_bos touched: freed at the end if left without mappings */
	int err;                /* first error of the backend callbacks */
	struct job_userptr *cur_userptr; /* backing for the MAP step being walked */
	/* from here on: left uninitialised until used; they spare small calls any allocation */
	struct plan_chunk first_plans;
	struct job_map maps_small[8];
	struct job_prep preps_small[2];
	struct job_range ranges_small[2];
	struct vmb_ufence_out ufs_small[VMB_BIND_UFS_INLINE]; /* ufs, when borrowed (vm/bind.h) */
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
/* 0, or the device's errno: then the job's vms are banned (bind.c); job_end(job, true) either way */
int job_commit(struct vmb_bind_job *job);
void job_end(struct vmb_bind_job *job, bool ok);
int job_reserve_maps(struct vmb_bind_job *job, unsigned int more);
int job_add_map(struct vmb_bind_job *job, struct vmb_vm *vm, const struct vmb_map_op *op);
/* BO migration */
int op_prefetch(struct vmb_bind_job *job, const struct vmb_bind_req *r);
void do_move(struct job_move *m);
/* The pending move whose new backing @b is (a BO's planned one, or a move's prev_planned). */
static inline struct job_move *move_of(const struct vmb_backing *b)
{
	return vmb_container_of(b, struct job_move, to);
}
/* The pending job that moves @bo last (bo->planned is that job's move: migrate.c), or NULL. */
static inline struct vmb_bind_job *bo_move_job(const struct vmb_bo *bo)
{
	return bo->planned ? move_of(bo->planned)->job : NULL;
}
/* @m's BO's previous pending move if another job makes it (@m's job follows that one), or NULL. */
static inline struct job_move *move_prev_foreign(const struct job_move *m)
{
	struct job_move *p = m->prev_planned ? move_of(m->prev_planned) : NULL;
	return p && p->job != m->job ? p : NULL;
}
/* Takes @m, which ends, off its BO's chain of pending moves (struct job_move.prev_planned). */
void move_unlink(struct job_move *m);
/* A MAP of @bo: an evicted BO (in SYSTEM, which its placements exclude) moves back to VRAM in
 * this job first (-ERESTART if the job may not move BOs). 0 or a negative errno. */
int op_restore(struct vmb_bind_job *job, struct vmb_bo *bo);
/* Adds to @job (no other operation) the eviction to SYSTEM of BOs in VRAM that nothing uses (no
 * pending or running job of a vm that links them, no LR vm links them, @keep (may be NULL) does
 * not), least recently mapped first, about @want bytes (at least one); their mappings re-pointed
 * at the SYSTEM copies. 0, -ENOSPC (none can be moved), -ENOMEM. The device lock exclusive. */
int evict_prepare(struct vmb_bind_job *job, uint64_t want, const struct vmb_vm *keep);
/* pending ranges */
void ranges_merge(struct vmb_bind_job *job);
void ranges_insert(struct vmb_vm *vm, struct vmb_bind_job *job);
void ranges_remove(struct vmb_vm *vm, struct vmb_bind_job *job);
int ranges_each(const struct vmb_rb_root *root, uint64_t lo, uint64_t hi,
		int (*fn)(struct vmb_bind_job *p, void *arg), void *arg);

#endif
