/* SPDX-License-Identifier: MIT */
/* The device-independent parts of a device: scheduler, user-fence event, stub fence. */
#include <stdio.h>
#include <stdlib.h>
#include <vmbind/client.h>

#include "core/env.h"
#include "dev/core.h"
#include "sync/ufence.h"

void vmb_device_lock_init(struct vmb_device *dev)
{
	vmb_rwlock_init(&dev->lock);
	atomic_init(&dev->lock_waiters, 0);
	/* adaptive, as a vm's lock (core/lock.h): held for a few list operations, by binds of
	 * every vm of the device */
	pthread_mutexattr_t a;
	pthread_mutexattr_init(&a);
	pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ADAPTIVE_NP);
	pthread_mutex_init(&dev->cross_lock, &a);
	pthread_mutexattr_destroy(&a);
	pthread_mutex_init(&dev->lru_lock, NULL);
	vmb_list_init(&dev->lru);
	atomic_init(&dev->evictions, 0);
	atomic_init(&dev->evicted_bytes, 0);
	atomic_init(&dev->restores, 0);
	atomic_init(&dev->restored_bytes, 0);
	atomic_init(&dev->misplaced, 0);
	atomic_init(&dev->misplacing, 0);
}

void vmb_device_lock_fini(struct vmb_device *dev)
{
	pthread_mutex_destroy(&dev->lru_lock);
	pthread_mutex_destroy(&dev->cross_lock);
	vmb_rwlock_fini(&dev->lock);
}

int vmb_device_core_init(struct vmb_device *dev, const struct vmb_client_opts *opts)
{
	uint64_t ms = opts ? opts->job_timeout_ms : 0, n;
	int err;
	/* both knobs bounded (core/env.c): ms <= UINT32_MAX, so ms * 10^6 fits */
	if ((!ms && (err = vmb_env_get(VMB_ENV_JOB_TIMEOUT_MS, &ms))) ||
	    (err = vmb_env_get(VMB_ENV_SCHED_WORKERS, &n)))
		return err;
	dev->job_timeout_ns = (int64_t)ms * 1000000;
	/* what vmb_device_core_release() undoes first: the device's destroy calls it either way */
	vmb_event_init(&dev->ufence_ev);
	vmb_fence_init(&dev->stub);
	vmb_fence_signal(&dev->stub, 0);
	vmb_fdwatch_init(&dev->fdwatch);
	vmb_list_init(&dev->pending);
	pthread_mutex_init(&dev->trace.lock, NULL);
	atomic_init(&dev->cpu_busy, 0);
	vmb_memcache_init(&dev->bind_jobs);
	vmb_memcache_init(&dev->exec_jobs);
	err = vmb_sched_init(&dev->sched, (unsigned int)n, &dev->cpu_busy);
	if (err)
		vmb_fdwatch_fini(&dev->fdwatch);
	return err;
}

void vmb_device_core_fini(struct vmb_device *dev)
{
	/* producers before what they touch: an engine finishing a job signals its fence, which
	 * makes dependent jobs ready on the scheduler (its lock, its condition variable) */
	vmb_fdwatch_fini(&dev->fdwatch);
	dev->ops->engines_stop(dev);
	vmb_sched_fini(&dev->sched);
}

void vmb_trace_record(struct vmb_device *dev, const struct vmb_trace_event *e)
{
	struct vmb_trace_ring *t = &dev->trace;
	pthread_mutex_lock(&t->lock);
	if (t->cap && t->count < t->cap)
		t->ev[(t->head + t->count++) % t->cap] = *e;
	else if (t->cap)
		t->dropped++;
	pthread_mutex_unlock(&t->lock);
}

void vmb_device_core_release(struct vmb_device *dev)
{
	vmb_memcache_fini(&dev->bind_jobs);
	vmb_memcache_fini(&dev->exec_jobs);
	free(dev->trace.ev);
	pthread_mutex_destroy(&dev->trace.lock);
	vmb_event_fini(&dev->ufence_ev);
	vmb_fence_put(&dev->stub);
}

void vmb_device_ufence_write(struct vmb_device *dev, uint64_t addr, uint64_t value)
{
	__atomic_store_n((uint64_t *)(uintptr_t)addr, value, __ATOMIC_RELEASE);
	/* its waiters announce themselves (uapi/sync.c, the soft engines): with none, nothing is
	 * written to the device-wide event (every asynchronous bind of every vm comes here) */
	vmb_event_notify_waiters(&dev->ufence_ev);
}

void vmb_device_job_done(struct vmb_device *dev, struct vmb_sched_job *sj, int error,
			 const struct vmb_ufence_out *ufs, unsigned int nufs, struct vmb_trace_event *trace)
{
	for (unsigned int i = 0; i < nufs; i++)
		vmb_device_ufence_write(dev, ufs[i].addr, ufs[i].value);
	if (trace && trace->submit_ns && vmb_trace_on(dev)) { /* a job submitted while tracing */
		trace->end_ns = (uint64_t)vmb_now_ns();
		if (!trace->start_ns)
			trace->start_ns = trace->end_ns; /* never ran (cancelled) */
		vmb_trace_record(dev, trace);
	}
	if (sj)
		vmb_sched_job_complete(sj, error);
}

void vmb_dev_lock_check(void)
{
#ifndef NDEBUG
	if (vmb_fence_in_callback()) {
		fprintf(stderr, "vmbind: the device lock taken in a fence callback\n");
		abort();
	}
#endif
}
