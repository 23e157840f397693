/* SPDX-License-Identifier: MIT */
/* Exec queues and jobs; the design is in exec.h. */
#include "exec/exec.h"

#include <errno.h>
#include <stdlib.h>
#include <vmbind/vm.h>

#include "core/alloc.h"
#include "dev/core.h"

int vmb_exec_queue_new(struct vmb_vm *vm, uint32_t engine, bool intel, struct vmb_exec_queue **out)
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
	pthread_mutex_init(&q->lock, NULL);
	vmb_mutex_init(&q->submit);
	q->vm = vm;
	vmb_vm_get(vm);
	q->engine = engine;
	q->lr = vm->flags & VMB_VM_CREATE_LR_MODE;
	q->intel = intel;
	vmb_list_init(&q->pending);
	*out = q;
	return 0;
}

void vmb_exec_queue_free_unused(struct vmb_exec_queue *q)
{
	vmb_vm_put(q->vm);
	vmb_mutex_fini(&q->submit);
	pthread_mutex_destroy(&q->lock);
	free(q);
}

static void queue_free(struct vmb_exec_queue *q)
{
	struct vmb_device *dev = q->vm->dev;
	vmb_dev_lock(dev);
	vmb_sched_entity_fini(&q->entity);
	vmb_vm_put(q->vm);
	vmb_dev_unlock(dev);
	vmb_mutex_fini(&q->submit);
	pthread_mutex_destroy(&q->lock);
	free(q);
}

static void queue_free_work(struct vmb_sched_work *w)
{
	queue_free(vmb_container_of(w, struct vmb_exec_queue, free_work));
}

void vmb_exec_queue_put(struct vmb_exec_queue *q)
{
	if (atomic_fetch_sub(&q->refs, 1) == 1)
		queue_free(q);
}

/* The job is over: out user fences, trace record, fence (the one completion path). */
static void job_end(struct vmb_exec_job *job, int error)
{
	struct vmb_exec_queue *q = job->q;
	struct vmb_trace_event t = {.kind = VMB_TRACE_EXEC, .queue_id = job->trace_queue_id, .vm_id = job->trace_vm_id,
				    .error = error,
				    .submit_ns = job->submit_ns, .ready_ns = (uint64_t)job->sj.ready_ns,
				    .start_ns = (uint64_t)job->x->start_ns,
				    .engine = q->engine};
	atomic_fetch_sub(&q->vm->execs_active, 1); /* its vm's BOs may be evicted again */
	vmb_device_job_done(q->vm->dev, &job->sj, error, job->ufs, job->nufs, &t);
}

void vmb_exec_queue_kill(struct vmb_exec_queue *q)
{
	struct vmb_list *pos, *tmp, cancelled;

	atomic_store(&q->banned, true);
	atomic_store(&q->killed, true);
	vmb_event_notify(&q->vm->dev->ufence_ev); /* user-fence waits tied to the queue: -EIO */
	/* jobs still waiting for their dependencies end here; the one on the device is cancelled
	 * there (its next time slice) */
	vmb_list_init(&cancelled);
	pthread_mutex_lock(&q->lock);
	vmb_list_for_each_safe(pos, tmp, &q->pending) {
		struct vmb_exec_job *job = vmb_container_of(pos, struct vmb_exec_job, q_link);
		if (vmb_sched_job_claim(&job->sj)) {
			vmb_list_del(&job->q_link);
			vmb_list_add_tail(&job->q_link, &cancelled);
		} else {
			atomic_store(&job->x->cancel, true);
		}
	}
	pthread_mutex_unlock(&q->lock);
	/* their fences signal with the queue's lock dropped: callbacks may end other jobs */
	vmb_list_for_each_safe(pos, tmp, &cancelled) {
		struct vmb_exec_job *job = vmb_container_of(pos, struct vmb_exec_job, q_link);
		vmb_sched_job_disarm(&job->sj);
		vmb_list_del(&job->q_link);
		vmb_list_init(&job->q_link);
		job_end(job, -ECANCELED);
	}
}

void vmb_exec_queue_state(struct vmb_exec_queue *q, struct vmb_exec_queue_query *out)
{
	pthread_mutex_lock(&q->lock);
	out->flags = atomic_load(&q->banned) ? VMB_EXEC_QUEUE_BANNED : 0;
	out->error = q->error;
	out->fault_access = q->fault_access;
	out->fault_addr = q->fault_addr;
	out->jobs_done = q->jobs_done;
	pthread_mutex_unlock(&q->lock);
}

/* The device is done with @job: record the result in its queue, then end it. Runs in the
 * device fence's callback (under its lock): no device lock here. */
static void job_finish(struct vmb_exec_job *job)
{
	struct vmb_exec_queue *q = job->q;
	const struct vmb_dev_exec *x = job->x;
	int error = x->error;
	bool write = x->fault_access != VMB_FAULT_READ; /* the queue's report: an atomic writes */
	bool ban = false;

	/* the vm's fault log (its own slots, a leaf lock: vm/vm.h), before the queue shows the
	 * ban: whoever sees the queue banned, or the job's fence signalled, finds the fault there */
	if (error == -EFAULT) {
		struct vmb_vm_fault f = {.addr = x->fault_addr,
					 .exec_queue_id = job->trace_queue_id,
					 .access = x->fault_access,
					 .type = x->fault_type,
					 .level = x->fault_level};
		vmb_vm_fault_record(q->vm, &f);
	}
	pthread_mutex_lock(&q->lock);
	vmb_list_del(&job->q_link);
	vmb_list_init(&job->q_link);
	if (error && !atomic_load(&q->banned)) {
		q->error = error;
		q->fault_addr = error == -EFAULT ? x->fault_addr : 0;
		q->fault_access = write ? VMB_FAULT_WRITE : VMB_FAULT_READ;
		atomic_store(&q->banned, true);
		ban = true;
	} else if (!error) {
		q->jobs_done++;
	}
	pthread_mutex_unlock(&q->lock);
	if (ban)
		vmb_event_notify(&q->vm->dev->ufence_ev); /* user-fence waits tied to the queue: -EIO */
	job_end(job, error);
}

static void device_done(struct vmb_fence *f, struct vmb_fence_cb *cb)
{
	(void)f;
	job_finish(vmb_container_of(cb, struct vmb_exec_job, x_cb));
}

static int job_run(struct vmb_sched_job *sj)
{
	struct vmb_exec_job *job = vmb_container_of(sj, struct vmb_exec_job, sj);
	struct vmb_device *dev = job->q->vm->dev;
	/* banned by an earlier job's error, its vm banned (vm/vm.h), or destroyed: none of its
	 * commands runs (a kill from now on finds it in q->pending, unclaimable, and sets the flag
	 * itself) */
	if (atomic_load(&job->q->banned) || atomic_load(&job->q->vm->banned))
		atomic_store(&job->x->cancel, true);
	struct vmb_fence *done = dev->ops->exec_run(dev, job->x);
	if (vmb_fence_add_callback(done, &job->x_cb, device_done) == -ENOENT)
		job_finish(job); /* over already (an engine that has stopped) */
	return VMB_SCHED_DETACHED;
}

static void job_release(struct vmb_sched_job *sj)
{
	struct vmb_exec_job *job = vmb_container_of(sj, struct vmb_exec_job, sj);
	struct vmb_exec_queue *q = job->q;
	struct vmb_device *dev = q->vm->dev;
	vmb_sched_job_fini(&job->sj);
	dev->ops->exec_destroy(dev, job->x);
	vmb_ufences_free(job->ufs, job->nufs);
	vmb_memcache_put(&dev->exec_jobs, job);
	/* maybe in the device fence's callback: freeing the queue takes the device lock */
	if (atomic_fetch_sub(&q->refs, 1) == 1) {
		q->free_work.func = queue_free_work;
		vmb_sched_defer(&dev->sched, &q->free_work);
	}
}

/* Handing a job to its engine is a list insertion: done by whoever makes it ready. */
static const struct vmb_sched_job_ops exec_job_ops = {.run = job_run, .release = job_release, .inline_run = true};

struct vmb_exec_job *vmb_exec_job_new(struct vmb_exec_queue *q, uint64_t batch, uint32_t queue_id, uint32_t vm_id)
{
	struct vmb_device *dev = q->vm->dev;
	/* the memory of a job released on an engine's thread, else the heap (dev/core.h) */
	struct vmb_exec_job *job = vmb_memcache_zalloc(&dev->exec_jobs, sizeof(*job));
	if (!job)
		return NULL;
	if (dev->ops->exec_create(dev, &job->x)) {
		vmb_memcache_put(&dev->exec_jobs, job);
		return NULL;
	}
	if (vmb_sched_job_init(&job->sj, &dev->sched, &exec_job_ops)) {
		dev->ops->exec_destroy(dev, job->x);
		vmb_memcache_put(&dev->exec_jobs, job);
		return NULL;
	}
	job->q = q;
	atomic_fetch_add(&q->refs, 1);
	job->x->vm = q->vm->dvm;
	job->x->batch = batch;
	job->x->engine = q->engine;
	job->x->lr = q->lr;
	job->x->intel = q->intel;
	job->submit_ns = vmb_now_ns();
	job->trace_queue_id = queue_id;
	job->trace_vm_id = vm_id;
	vmb_list_init(&job->q_link);
	return job;
}

int vmb_exec_job_add_dep(struct vmb_exec_job *job, struct vmb_fence *f)
{
	return vmb_sched_job_add_dep(&job->sj, f);
}

int vmb_exec_job_queue(struct vmb_exec_job *job, struct vmb_ufence_out *ufs, unsigned int nufs)
{
	vmb_lock_assert_held(&job->q->submit);
	int err = vmb_sched_job_after(&job->sj, &job->q->entity);
	if (err)
		return err;
	job->ufs = ufs;
	job->nufs = nufs;
	/* the device lock shared: evictions, which read it, hold it exclusive */
	atomic_fetch_add(&job->q->vm->execs_active, 1);
	pthread_mutex_lock(&job->q->lock);
	vmb_list_add_tail(&job->q_link, &job->q->pending);
	pthread_mutex_unlock(&job->q->lock);
	vmb_sched_entity_push(&job->q->entity, &job->sj);
	const struct vmb_device_ops *ops = job->q->vm->dev->ops;
	if (ops->exec_hint)
		ops->exec_hint(job->x);
	vmb_vm_exec_queued(job->q->vm);
	return 0;
}

void vmb_exec_job_arm(struct vmb_exec_job *job)
{
	/* the batch's first page touched here, before the vm lock of its first slice (device.h) */
	const struct vmb_device_ops *ops = job->q->vm->dev->ops;
	if (ops->exec_prefault)
		ops->exec_prefault(job->x);
	vmb_sched_submit(&job->sj);
}

void vmb_exec_job_abort(struct vmb_exec_job *job)
{
	struct vmb_device *dev = job->q->vm->dev;
	/* the queue reference goes with the job, but the caller holds the device lock: the
	 * queue's handle reference is still there, so this is not the last one */
	atomic_fetch_sub(&job->q->refs, 1);
	vmb_sched_job_fini(&job->sj);
	dev->ops->exec_destroy(dev, job->x);
	vmb_memcache_put(&dev->exec_jobs, job);
}
