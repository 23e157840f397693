/* SPDX-License-Identifier: MIT */
/*
 * Exec queues and exec jobs: GPU work submitted through a vm to an engine.
 *
 * A job is a scheduler job (its dependencies: in-syncs and the queue's previous job). When the
 * scheduler runs it, the job hands the device its request (struct vmb_dev_exec: the vm's page
 * tables, the batch, the engine, the LR flag, a cancel flag) and gets back the device's fence,
 * as drm_sched's run_job does; the device never calls into exec or vm. When that fence
 * signals, its callback completes the job: fault record (the queue's first, and the vm's fault
 * log: vm/vm.h) and ban on error, then the one
 * completion path (vmb_device_job_done: out user fences, trace, the job's fence). The first
 * error bans the queue and stays its error; the queue's later jobs are handed over cancelled
 * (the device ends them with -ECANCELED before any command). A ban (a job's error, or the
 * queue's destruction) wakes the device's user-fence waiters: a wait tied to the queue
 * (vmb_user_fence_wait's exec_queue_id) holds a reference on it and ends with -EIO.
 *
 * Lifetimes: a job holds a reference on its queue, a queue on its vm (so the page tables live
 * while the device may use them). Destroying a queue bans it, ends its jobs still waiting with
 * -ECANCELED and cancels the one on the device (its next time slice). A job's end runs in a
 * fence callback, where the device lock may not be taken: the queue's last reference, if a job
 * holds it, is dropped there and the queue freed on a scheduler worker (vmb_sched_defer).
 *
 * Locking: `entity` (the queue's order) under `submit` (with the device lock shared: job
 * submission) or the device lock exclusive (creation, destruction). A submission takes its vm's
 * lock only where it reads the vm's state (vmb_vm_exec_needs_lock: the vm's first exec, whose
 * device hint marks the vm as walked by engines under that lock, and a residency check while
 * BOs are misplaced), then `submit` inside it; otherwise `submit` alone, so an exec call does
 * not wait behind a bind's preparation or commit. `lock` (after the fence locks, before the
 * scheduler's lock: job ends take it in the device fence's callback) protects `pending`, the
 * error/fault fields and jobs_done; `killed` and `banned` are atomic.
 */
#ifndef VMB_EXEC_EXEC_H
#define VMB_EXEC_EXEC_H

#include <stdatomic.h>
#include <stdbool.h>
#include <pthread.h>
#include <stdint.h>
#include <vmbind/queue.h>

#include "core/list.h"
#include "sched/sched.h"
#include "vm/vm.h"

struct vmb_exec_queue {
	atomic_uint refs; /* the handle's and each job's */
	struct vmb_vm *vm; /* a reference */
	uint32_t engine;  /* index into the device's engines */
	bool lr;          /* the vm is LR: no job timeout */
	bool intel;       /* VMB_EXEC_QUEUE_CMDSET_INTEL: set at creation */
	struct vmb_sched_entity entity; /* submit (above) */
	/* a submission's queue order: its entity, its out-syncobjs installed in that order (above);
	 * after the vm's lock, before the exec's device hint's locks and `lock` */
	struct vmb_mutex submit;
	pthread_mutex_t lock;    /* see above */
	struct vmb_list pending; /* struct vmb_exec_job.q_link: submitted, not finished */
	atomic_bool banned, killed;
	int error;
	uint32_t fault_access;
	uint64_t fault_addr;
	uint64_t jobs_done;
	struct vmb_sched_work free_work; /* its last reference went in a job's end */
};

struct vmb_exec_job {
	struct vmb_sched_job sj;
	struct vmb_exec_queue *q; /* a reference */
	struct vmb_dev_exec *x;   /* the device's request (ops->exec_create) */
	struct vmb_fence_cb x_cb; /* on x->done */
	struct vmb_ufence_out *ufs;
	unsigned int nufs;
	struct vmb_list q_link;   /* in q->pending */
	uint64_t submit_ns;
	/* its trace record's labels: the submitting client's handles of the queue and of the vm the
	 * queue was created on (objects store no client's handle: the entry point knows them); the
	 * queue's is also its fault record's exec_queue_id (vm/vm.h, the vm's fault log) */
	uint32_t trace_queue_id, trace_vm_id;
};

int vmb_exec_queue_new(struct vmb_vm *vm, uint32_t engine, bool intel, struct vmb_exec_queue **out);
void vmb_exec_queue_put(struct vmb_exec_queue *q); /* takes the device lock at the last one */
/* A queue that never got a handle nor a job; the device lock held. */
void vmb_exec_queue_free_unused(struct vmb_exec_queue *q);
/* The handle goes: ban, end waiting jobs, cancel the running one. Device lock held. */
void vmb_exec_queue_kill(struct vmb_exec_queue *q);

/* A job for @q running the buffer at @batch (NULL without memory; on an Intel queue a 4-byte
 * aligned VA below 2^48, not in canonical form); @queue_id and @vm_id label its trace record
 * (the caller's handles). The device lock held (shared: @q stays); not the vm's lock (it
 * allocates). */
struct vmb_exec_job *vmb_exec_job_new(struct vmb_exec_queue *q, uint64_t batch, uint32_t queue_id, uint32_t vm_id);
int vmb_exec_job_add_dep(struct vmb_exec_job *job, struct vmb_fence *f);
/* Orders it after the queue's previous job (its place in the queue), takes @ufs over: the
 * queue's `submit` held (and its vm's lock where vmb_vm_exec_needs_lock said so). Then, once that lock is dropped, vmb_exec_job_arm() with the device
 * lock still held (shared: a kill of the queue, which ends its waiting jobs, waits for it):
 * the job runs once its dependencies have signalled, and may end and be freed at once. */
int vmb_exec_job_queue(struct vmb_exec_job *job, struct vmb_ufence_out *ufs, unsigned int nufs);
void vmb_exec_job_arm(struct vmb_exec_job *job);
void vmb_exec_job_abort(struct vmb_exec_job *job); /* never submitted */

/* The queue's state for vmb_exec_queue_query (taken together, under its lock). */
void vmb_exec_queue_state(struct vmb_exec_queue *q, struct vmb_exec_queue_query *out);

#endif
