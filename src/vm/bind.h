/* SPDX-License-Identifier: MIT */
/*
 * The bind engine (bind.c) as the entry points see it: one bind's operations run in the call
 * (vmb_vm_bind_sync) or as a job (prepare in the call, commit when its dependencies have
 * signalled). Above the vm object (vm/vm.h), which needs of it only what vm/vm.h declares.
 *
 * Locking: the device lock protects what these functions change (vm/vm.h, bind.c).
 */
#ifndef VMB_VM_BIND_H
#define VMB_VM_BIND_H

#include <stdbool.h>
#include <stdint.h>

#include "vm/vm.h"

struct vmb_fence;

/* One bind operation, validated in shape by the uapi layer, handles resolved. */
struct vmb_bind_req {
	uint32_t op;       /* VMB_BIND_OP_* */
	uint32_t flags;    /* VMB_BIND_FLAG_* */
	struct vmb_bo *bo; /* MAP, UNMAP_ALL */
	uint32_t region;   /* PREFETCH */
	uint64_t offset;   /* MAP: BO offset; MAP_USERPTR: host address */
	uint64_t addr, range;
};

/*
 * Runs @n operations on @vm in order, synchronously, all or nothing.
 * Returns 0, -EINVAL (PREFETCH to a region the BO may not use), -EFAULT (userptr memory not
 * mapped), -ENOSPC, -ENOMEM; on error the vm, its BOs and the device are exactly as before.
 */
int vmb_vm_bind_sync(struct vmb_vm *vm, const struct vmb_bind_req *reqs, unsigned int n);

/* ---- asynchronous binds ---- */

struct vmb_bind_job;

/*
 * The order of a bind that runs in the call: an unsignalled fence it must wait for first (a
 * new reference), or NULL when it may run now. It waits for the queue's earlier binds and for
 * pending binds of other queues with a range that meets one of its operations' (for UNMAP_ALL:
 * one of the BO's mappings in @vm), the rule asynchronous jobs follow; with a PREFETCH, for
 * every pending bind of the device.
 */
struct vmb_fence *vmb_vm_bind_blocker(struct vmb_vm *vm, struct vmb_bind_queue *q,
				      const struct vmb_bind_req *reqs, unsigned int n);
bool vmb_bind_reqs_prefetch(const struct vmb_bind_req *reqs, unsigned int n);

/*
 * At most this many binds wait to commit per bind queue: an asynchronous call beyond it first
 * waits (interruptibly, the lock dropped) for the queue's own oldest pending bind, as a kernel
 * scheduler's credit limit makes a submitter wait for its own ring. Per queue, so that a queue's
 * backlog never holds up calls on another queue (docs/UAPI.md). It bounds the memory a queue's
 * pending binds hold.
 */
#define VMB_BIND_QUEUE_PENDING_MAX 1024u
/* The queue's oldest pending bind's fence (a new reference) if @q is at the limit, else NULL. */
struct vmb_fence *vmb_bind_queue_throttle(struct vmb_bind_queue *q);

/* A job for @n operations on @q of @vm (NULL: no memory; the caller runs the bind in the call). */
struct vmb_bind_job *vmb_bind_job_new(struct vmb_vm *vm, struct vmb_bind_queue *q);
/* Prepare (as vmb_vm_bind_sync does; @reqs must stay valid only during the call). On error the
 * vm is as before; the job is then freed with vmb_bind_job_abort(). */
int vmb_bind_job_prepare(struct vmb_bind_job *job, const struct vmb_bind_req *reqs, unsigned int n);
/* Dependencies: in-fences, then the queue's and the vm's order. 0 or -ENOMEM. */
int vmb_bind_job_add_dep(struct vmb_bind_job *job, struct vmb_fence *f);
int vmb_bind_job_order(struct vmb_bind_job *job);
/* User fences to write after the commit; the job takes @ufs (vmb_malloc'd) over. */
void vmb_bind_job_set_ufences(struct vmb_bind_job *job, struct vmb_ufence_out *ufs, unsigned int n);
struct vmb_fence *vmb_bind_job_fence(struct vmb_bind_job *job);
/* Hands the job to the scheduler: cannot fail. */
void vmb_bind_job_submit(struct vmb_bind_job *job);
/* Undoes a prepared (or unprepared) job that was never submitted and frees it. */
void vmb_bind_job_abort(struct vmb_bind_job *job);

#endif
