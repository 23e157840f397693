/* SPDX-License-Identifier: MIT */
/* Entry points: engines, exec queues, exec. */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <vmbind/client.h>
#include <vmbind/queue.h>
#include <vmbind/vm.h>

#include "core/alloc.h"
#include "exec/exec.h"
#include "sync/stop.h"
#include "vm/bind.h"
#include "uapi/sync.h"
#include "uapi/uapi.h"

#define SYNCS_SMALL 8

/*
 * The client's record of an exec queue, in c->execqs: the queue (the handle's reference) and the
 * client's handle of the vm it was created on. Objects store no client's handle: the queue's
 * jobs get their trace labels from here (the vm's handle stays the label after it is destroyed,
 * as the queue keeps the vm).
 */
struct execq_handle {
	struct vmb_exec_queue *q;
	uint32_t vm_id;
	uint64_t serial; /* unique in the process, from 1, never reused (queue.h); immutable */
};

/* The queue of handle @h; with @serial non-zero, only if it is that queue (queue.h: a handle
 * destroyed and taken by a new queue names another). */
static struct vmb_exec_queue *execq_lookup(struct vmb_client *c, uint32_t h, uint64_t serial, uint32_t *vm_id)
{
	struct execq_handle *e = vmb_handle_lookup(&c->execqs, h);
	if (e && serial && e->serial != serial)
		e = NULL;
	if (e && vm_id)
		*vm_id = e->vm_id;
	return e ? e->q : NULL;
}

struct vmb_exec_queue *vmb_client_execq_get(struct vmb_client *c, uint32_t h, uint64_t serial)
{
	vmb_lock_shared(c);
	struct vmb_exec_queue *q = execq_lookup(c, h, serial, NULL);
	if (q)
		atomic_fetch_add(&q->refs, 1);
	vmb_unlock(c);
	return q;
}

static struct vmb_exec_queue *execq_remove(struct vmb_client *c, uint32_t h)
{
	struct execq_handle *e = vmb_handle_remove(&c->execqs, h);
	struct vmb_exec_queue *q = e ? e->q : NULL;
	free(e);
	return q;
}

void vmb_client_execqs_release(struct vmb_client *c)
{
	struct execq_handle *e;
	uint32_t h;

	for (h = 0; (e = vmb_handle_pop(&c->execqs, &h));) {
		struct vmb_exec_queue *q = e->q;
		free(e);
		vmb_exec_queue_kill(q);
		vmb_unlock(c);
		vmb_exec_queue_put(q);
		vmb_lock(c);
	}
}

VMB_ENTRY(vmb_engines_query, struct vmb_engines_query, q)
{
	if (!q || q->pad || !VMB_ZERO(q->reserved))
		return -EINVAL;
	if (q->num_engines && !q->engines)
		return -EFAULT;
	for (uint32_t i = 0; i < q->num_engines && i < c->dev->num_engines; i++)
		if (vmb_copy_to_app_u64(q->engines, i, &c->dev->engines[i], sizeof(struct vmb_engine)))
			return -EFAULT;
	q->num_engines = c->dev->num_engines;
	return 0;
}

static int find_engine(const struct vmb_device *dev, const struct vmb_engine *e, uint32_t *idx)
{
	if (e->pad)
		return -EINVAL;
	for (uint32_t i = 0; i < dev->num_engines; i++) {
		if (dev->engines[i].engine_class == e->engine_class &&
		    dev->engines[i].engine_instance == e->engine_instance) {
			*idx = i;
			return 0;
		}
	}
	return -EINVAL;
}

VMB_ENTRY(vmb_exec_queue_create, struct vmb_exec_queue_create, args)
{
	struct vmb_exec_queue *q;
	uint32_t engine, h;
	int err;

	if (!args || (args->flags & ~VMB_EXEC_QUEUE_CMDSET_INTEL) || args->pad || args->reserved)
		return -EINVAL;
	if ((err = find_engine(c->dev, &args->engine, &engine)))
		return err;
	struct execq_handle *e = vmb_malloc(sizeof(*e));
	if (!e)
		return -ENOMEM;
	vmb_lock(c);
	struct vmb_vm *vm = vmb_handle_lookup(&c->vms, args->vm_id);
	err = !vm ? -ENOENT : atomic_load(&vm->banned) ? -EIO : vmb_exec_queue_new(vm, engine, args->flags & VMB_EXEC_QUEUE_CMDSET_INTEL, &q);
	if (!err) {
		*e = (struct execq_handle){.q = q, .vm_id = args->vm_id,
					   .serial = vmb_serial_next()};
		if ((err = vmb_handle_alloc(&c->execqs, e, &h)))
			vmb_exec_queue_free_unused(q);
	}
	if (!err) {
		args->exec_queue_id = h;
		args->serial = e->serial;
	}
	vmb_unlock(c);
	if (err)
		free(e);
	return err;
}

VMB_ENTRY(vmb_exec_queue_destroy, struct vmb_exec_queue_destroy, args)
{
	if (!args || args->pad || args->reserved)
		return -EINVAL;
	vmb_lock(c);
	struct vmb_exec_queue *q = execq_remove(c, args->exec_queue_id);
	if (q)
		vmb_exec_queue_kill(q);
	vmb_unlock(c);
	if (!q)
		return -ENOENT;
	vmb_exec_queue_put(q);
	return 0;
}

VMB_ENTRY(vmb_exec_queue_query, struct vmb_exec_queue_query, args)
{
	if (!args || !VMB_ZERO(args->reserved))
		return -EINVAL;
	vmb_lock(c);
	struct vmb_exec_queue *q = execq_lookup(c, args->exec_queue_id, 0, NULL);
	if (q)
		vmb_exec_queue_state(q, args);
	vmb_unlock(c);
	return q ? 0 : -ENOENT;
}

/* vmb_vm_exec_residency's: the exec's job follows @f too. */
static int exec_dep(struct vmb_fence *f, void *arg) { return vmb_exec_job_add_dep(arg, f); }

VMB_ENTRY(vmb_exec, struct vmb_exec, args)
{
	struct vmb_sync syncs_small[SYNCS_SMALL] = {0}, *syncs = syncs_small;
	struct vmb_sync_set set;
	int err;

	if (!args || args->flags || args->pad || args->reserved)
		return -EINVAL;
	/* an Intel queue's batch: 4-byte aligned, below 2^48 or canonical (checked once the queue
	 * is known); any other queue's 8-byte aligned */
	if (args->num_syncs > VMB_EXEC_MAX_SYNCS || (args->address & 3))
		return -EINVAL;
	if (args->num_syncs && !args->syncs)
		return -EFAULT;
	if (args->num_syncs > SYNCS_SMALL && !(syncs = vmb_malloc(args->num_syncs * sizeof(*syncs))))
		return -ENOMEM;
	err = vmb_copy_from_app_u64(syncs, args->syncs, 0, args->num_syncs * sizeof(*syncs));
	if (!err)
		err = vmb_syncs_check(syncs, args->num_syncs);
	if (!err)
		err = vmb_syncs_parse(c, syncs, args->num_syncs, &set);
	if (syncs != syncs_small)
		free(syncs);
	if (err)
		return err;

	uint32_t vm_id = 0;
	/* an idle engine starts the job on this thread once the locks are dropped (sched.h) */
	vmb_sched_kick_begin();
	vmb_lock_shared(c); /* the lookup; the submission (exec/exec.h, "Locking") */
	struct vmb_exec_queue *q = execq_lookup(c, args->exec_queue_id, args->exec_queue_serial, &vm_id);
	struct vmb_exec_job *job = NULL;
	bool held = false; /* a reference on q, taken for a residency wait: the same queue after it */
	for (unsigned int round = 0;; round++) {
		job = NULL;
		uint64_t batch = args->address, top = batch >> 47;
		if (q && q->intel)
			batch &= (1ull << 48) - 1;
		/* the job and its in-fences before the vm's lock (allocations: the lock is the vm's
		 * binds' and its engines' slices'); used once the checks below pass */
		struct vmb_exec_job *pre = q ? vmb_exec_job_new(q, batch, args->exec_queue_id, vm_id) : NULL;
		int derr = 0;
		for (unsigned int i = 0; pre && !derr && i < set.in.n; i++)
			derr = vmb_exec_job_add_dep(pre, set.in.v[i]);
		/* the vm's lock only where the submission reads the vm's state (exec/exec.h) */
		bool vm_locked = q && vmb_vm_exec_needs_lock(q->vm);
		if (vm_locked)
			vmb_vm_lock(q->vm);
		if (q)
			vmb_mutex_lock(&q->submit);
		if (q && q->intel ? top > 1 && top != 0x1ffff : (args->address & 7))
			err = -EINVAL; /* (an unknown queue is no Intel one: misaligned comes before -ENOENT) */
		else if (!q || (held && atomic_load(&q->killed)))
			err = -ENOENT; /* (held: destroyed while the call waited) */
		else if (atomic_load(&q->vm->banned))
			err = -EIO; /* a bind's commit failed on its vm (vm/vm.h): before the queue's own ban */
		else if (atomic_load(&q->banned))
			err = -ECANCELED;
		else if (q->lr && set.syncobj_outs)
			err = -EOPNOTSUPP; /* LR: out-fences are user fences */
		else if (!pre)
			err = -ENOMEM;
		else
			err = derr;
		if (!err)
			job = pre;
		else if (pre)
			vmb_exec_job_abort(pre);
		/* residency (vm/bind.h): evicted BOs of the vm that must be in VRAM come back first, and
		 * the job follows the pending evictions and restores that re-map in its vm */
		struct vmb_fence *res = NULL;
		int rr = err ? 0 : vmb_vm_exec_residency(q->vm, &res, exec_dep, job);
		if (rr < 0) {
			err = rr;
			rr = 0;
		}
		if (!err && !rr && res)
			err = vmb_exec_job_add_dep(job, res);
		if (!err && rr && round < 64) {
			vmb_exec_job_abort(job);
			if (!held)
				atomic_fetch_add(&q->refs, 1);
			held = true;
			vmb_mutex_unlock(&q->submit);
			if (vm_locked)
				vmb_vm_unlock(q->vm);
			vmb_unlock(c);
			err = rr == 2 ? vmb_fence_wait_stop(res, VMB_FENCE_FOREVER, true, &c->stop)
				      : vmb_vm_restore(q->vm, &c->stop);
			vmb_fence_unref(res);
			vmb_lock_shared(c);
			if (!err)
				continue;
			job = NULL;
			vmb_unlock(c);
			break;
		}
		if (!err && rr)
			err = -ENOSPC; /* evicted again each time: no room that lasts */
		/* queued under the queue's submit lock (the queue's order, and the out-syncobjs'
		 * installs in that order), armed once it is dropped: from then on the job may run, end
		 * and be freed */
		if (!err && !(err = vmb_exec_job_queue(job, set.ufs, set.nufs))) {
			set.ufs = NULL;
			set.nufs = 0;
			vmb_syncs_install(&set, job->sj.done);
		}
		vmb_fence_unref(res);
		if (err && job)
			vmb_exec_job_abort(job);
		if (q)
			vmb_mutex_unlock(&q->submit);
		if (vm_locked)
			vmb_vm_unlock(q->vm);
		if (!err)
			vmb_exec_job_arm(job); /* the device lock shared: a kill waits for it */
		vmb_unlock(c);
		break;
	}
	if (held)
		vmb_exec_queue_put(q);
	vmb_sched_kick_end();
	vmb_syncs_fini(&set);
	return err;
}
