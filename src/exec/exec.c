/* SPDX-License-Identifier: MIT */
/* Exec queues and jobs; the design is in exec.h. */
#include "exec/exec.h"

#include <errno.h>
#include <stdlib.h>
#include <vmbind/vm.h>

#include "core/alloc.h"

int vmb_exec_queue_new(struct vmb_vm *vm, uint32_t engine, struct vmb_exec_queue **out)
{
	int err = vm->dev->ops->engine_open(vm->dev, engine);
	if (err)
		return err;
	struct vmb_exec_queue *q = vmb_calloc(1, sizeof(*q));
	if (!q)
		return -ENOMEM;
	atomic_init(&q->refs, 1);
	atomic_init(&q->banned, false);
	atomic_init(&q->killed, false);
	q->vm = vm;
	vmb_vm_get(vm);
	q->engine = engine;
	q->lr = vm->flags & VMB_VM_CREATE_LR_MODE;
	vmb_list_init(&q->pending);
	*out = q;
	return 0;
}

void vmb_exec_queue_free_unused(struct vmb_exec_queue *q)
{
	vmb_vm_put(q->vm);
	free(q);
}

void vmb_exec_queue_put(struct vmb_exec_queue *q)
{
	if (atomic_fetch_sub(&q->refs, 1) != 1)
		return;
	struct vmb_device *dev = q->vm->dev;
	vmb_dev_lock(dev);
	vmb_sched_entity_fini(&q->entity);
	vmb_vm_put(q->vm);
	vmb_dev_unlock(dev);
	free(q);
}

/* The job is over: out user fences, trace record, fence (the one completion path). */
static void job_end(struct vmb_exec_job *job, int error)
{
	struct vmb_exec_queue *q = job->q;
	struct vmb_trace_event t = {.kind = VMB_TRACE_EXEC, .queue_id = q->id, .vm_id = q->vm->id, .error = error,
				    .submit_ns = job->submit_ns, .ready_ns = (uint64_t)job->sj.ready_ns,
				    .start_ns = (uint64_t)job->start_ns,
				    .engine = q->engine};
	vmb_device_job_done(q->vm->dev, &job->sj, error, job->ufs, job->nufs, &t);
}

void vmb_exec_queue_kill(struct vmb_exec_queue *q)
{
	struct vmb_list *pos, *tmp;

	atomic_store(&q->banned, true);
	atomic_store(&q->killed, true);
	/* jobs still waiting for their dependencies end here; the engine stops the running one */
	vmb_list_for_each_safe(pos, tmp, &q->pending) {
		struct vmb_exec_job *job = vmb_container_of(pos, struct vmb_exec_job, q_link);
		if (vmb_sched_job_claim(&job->sj)) {
			vmb_sched_job_disarm(&job->sj);
			vmb_list_del(&job->q_link);
			vmb_list_init(&job->q_link);
			job_end(job, -ECANCELED);
		}
	}
}

static int job_run(struct vmb_sched_job *sj)
{
	struct vmb_exec_job *job = vmb_container_of(sj, struct vmb_exec_job, sj);
	struct vmb_device *dev = job->q->vm->dev;
	dev->ops->exec_start(dev, job);
	return VMB_SCHED_DETACHED;
}

static void job_release(struct vmb_sched_job *sj)
{
	struct vmb_exec_job *job = vmb_container_of(sj, struct vmb_exec_job, sj);
	vmb_sched_job_fini(&job->sj);
	free(job->ufs);
	vmb_exec_queue_put(job->q);
	free(job);
}

/* Handing a job to its engine is a list insertion: done by whoever makes it ready. */
static const struct vmb_sched_job_ops exec_job_ops = {.run = job_run, .release = job_release, .inline_run = true};

struct vmb_exec_job *vmb_exec_job_new(struct vmb_exec_queue *q, uint64_t batch)
{
	struct vmb_exec_job *job = vmb_calloc(1, sizeof(*job));
	if (!job)
		return NULL;
	if (vmb_sched_job_init(&job->sj, &q->vm->dev->sched, &exec_job_ops)) {
		free(job);
		return NULL;
	}
	job->q = q;
	atomic_fetch_add(&q->refs, 1);
	job->batch = job->pc = batch;
	job->submit_ns = vmb_now_ns();
	vmb_list_init(&job->q_link);
	vmb_list_init(&job->link);
	return job;
}

int vmb_exec_job_add_dep(struct vmb_exec_job *job, struct vmb_fence *f)
{
	return vmb_sched_job_add_dep(&job->sj, f);
}

int vmb_exec_job_submit(struct vmb_exec_job *job, struct vmb_ufence_out *ufs, unsigned int nufs)
{
	int err = vmb_sched_job_after(&job->sj, &job->q->entity);
	if (err)
		return err;
	job->ufs = ufs;
	job->nufs = nufs;
	vmb_list_add_tail(&job->q_link, &job->q->pending);
	vmb_sched_entity_push(&job->q->entity, &job->sj);
	vmb_sched_submit(&job->sj);
	return 0;
}

void vmb_exec_job_abort(struct vmb_exec_job *job)
{
	/* the queue reference goes with the job, but the caller holds the device lock: the
	 * queue's handle reference is still there, so this is not the last one */
	atomic_fetch_sub(&job->q->refs, 1);
	vmb_sched_job_fini(&job->sj);
	free(job);
}

void vmb_exec_job_finish(struct vmb_exec_job *job, int error, uint64_t fault_addr, bool write)
{
	struct vmb_exec_queue *q = job->q;
	struct vmb_device *dev = q->vm->dev;

	vmb_dev_lock(dev);
	vmb_list_del(&job->q_link);
	vmb_list_init(&job->q_link);
	if (error && !atomic_load(&q->banned)) {
		q->error = error;
		q->fault_addr = error == -EFAULT ? fault_addr : 0;
		q->fault_access = write ? VMB_FAULT_WRITE : VMB_FAULT_READ;
		atomic_store(&q->banned, true);
	} else if (!error) {
		q->jobs_done++;
	}
	vmb_dev_unlock(dev);
	job_end(job, error);
}
