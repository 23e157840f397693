/* SPDX-License-Identifier: MIT */
/*
 * Exec queues and exec jobs: GPU work submitted through a vm to an engine.
 *
 * A job is a scheduler job (its dependencies: in-syncs and the queue's previous job). When the
 * scheduler runs it, it is handed to the device (ops->exec_start: the soft device queues it on
 * its engine), which runs the command buffer and calls vmb_exec_job_finish() with the result:
 * that writes the out user fences, records a fault and bans the queue on error, and signals
 * the job's fence. The first error bans the queue and stays its error; the engine cancels the
 * queue's later jobs (-ECANCELED) at their first time slice, before any command.
 *
 * Lifetimes: a job holds a reference on its queue, a queue on its vm (so the page tables live
 * while work may use them). Destroying a queue bans it, ends its jobs still waiting with
 * -ECANCELED and asks the engine to stop the running one.
 *
 * Locking: `pending`, `entity`, error/fault fields and jobs_done under the device lock;
 * `killed` and `banned` are atomic (the engine reads them at every time slice).
 */
#ifndef VMB_EXEC_EXEC_H
#define VMB_EXEC_EXEC_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/list.h"
#include "sched/sched.h"
#include "vm/vm.h"

struct vmb_exec_queue {
	uint32_t id;      /* trace label: its handle in the one client that has it (not shared) */
	atomic_uint refs; /* the handle's and each job's */
	struct vmb_vm *vm; /* a reference */
	uint32_t engine;  /* index into the device's engines */
	bool lr;          /* the vm is LR: no job timeout */
	struct vmb_sched_entity entity;
	struct vmb_list pending; /* struct vmb_exec_job.q_link: submitted, not finished */
	atomic_bool banned, killed;
	int error;
	uint32_t fault_access;
	uint64_t fault_addr;
	uint64_t jobs_done;
};

struct vmb_exec_job {
	struct vmb_sched_job sj;
	struct vmb_exec_queue *q; /* a reference */
	uint64_t batch;           /* GPU VA of the command buffer */
	struct vmb_ufence_out *ufs;
	unsigned int nufs;
	struct vmb_list q_link;   /* in q->pending */
	uint64_t submit_ns;
	/* the engine's: */
	struct vmb_list link;     /* in the engine's run list */
	uint64_t pc;              /* GPU VA of the next command */
	int64_t start_ns;         /* first time slice (job timeout) */
	int64_t delay_end_ns;     /* a DELAY in progress ends then (0: none) */
	uint64_t work;            /* work done (bytes touched, COMMANDS.md): its modelled time */
	bool in_cmd;              /* a FILL/COPY at pc is in progress: */
	uint64_t cmd[4];          /* its header and operands, as fetched */
	uint64_t cmd_done;        /* its bytes done */
};

int vmb_exec_queue_new(struct vmb_vm *vm, uint32_t engine, struct vmb_exec_queue **out);
void vmb_exec_queue_put(struct vmb_exec_queue *q); /* takes the device lock at the last one */
/* A queue that never got a handle nor a job; the device lock held. */
void vmb_exec_queue_free_unused(struct vmb_exec_queue *q);
/* The handle goes: ban, end waiting jobs, stop the running one. Device lock held. */
void vmb_exec_queue_kill(struct vmb_exec_queue *q);

/* A job for @q running the buffer at @batch (NULL without memory). */
struct vmb_exec_job *vmb_exec_job_new(struct vmb_exec_queue *q, uint64_t batch);
int vmb_exec_job_add_dep(struct vmb_exec_job *job, struct vmb_fence *f);
/* Orders it after the queue's previous job, takes @ufs over, submits. Device lock held. */
int vmb_exec_job_submit(struct vmb_exec_job *job, struct vmb_ufence_out *ufs, unsigned int nufs);
void vmb_exec_job_abort(struct vmb_exec_job *job); /* never submitted */

/*
 * The device is done with @job: @error 0, or -EFAULT (with @fault_addr, @write), -EINVAL,
 * -ETIMEDOUT, -ECANCELED. Called without the device lock, from the engine.
 */
void vmb_exec_job_finish(struct vmb_exec_job *job, int error, uint64_t fault_addr, bool write);

#endif
