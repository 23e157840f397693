/* SPDX-License-Identifier: MIT */
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
 *
 * A failed device commit (bind.c: the job's vms are banned, vm/vm.h): an asynchronous job's fence
 * signals with the device's errno and its user fences are still written (the one completion
 * path writes them whatever the error: the fence tells); a synchronous call returns the errno
 * and touches none of its out-syncs. Jobs pending on a banned vm commit nothing and signal -EIO
 * (cancelled by a destroy: -EIO too, the ban comes first); a bind on a banned vm fails with -EIO
 * before anything changes.
 * Locking: the vm's lock (with the device lock shared) for the vm's and its queues' lists and
 * the commit, and the device's cross lock for its pending list; a worker takes the device lock
 * shared and the vm's lock to commit. A PREFETCH runs under the device lock exclusively (it
 * orders after every pending bind of the device and re-points mappings in every vm).
 */
#include <errno.h>
#include <stdlib.h>
#include <vmbind/bind.h>
#include <vmbind/debug.h>
#include <vmbind/vm.h>

#include "core/alloc.h"
#include "sync/stop.h"
#include "vm/job.h"

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
 * returned. The vm's lock; with a PREFETCH the device lock exclusive.
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
	vmb_vm_assert_locked(job->vm);
	if (prefetch) {
		vmb_lock_assert_excl(&job->vm->dev->lock);
		vmb_list_for_each(pos, &job->vm->dev->pending) {
			if (r)
				break;
			r = fn(vmb_container_of(pos, struct vmb_bind_job, dev_link)->sj.done, arg);
		}
		return r;
	}
	/* a job met through several ranges is met once per range */
	for (unsigned int i = 0; i < job->nranges && !r; i++)
		r = ranges_each(&job->vm->pending_ranges, job->ranges[i].lo, job->ranges[i].hi, dep_overlap, &w);
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
	int err, cerr = 0;

	job_init(&job, vm);
	job.q = q;
	/* its ranges serve only to meet pending ones (it never pends itself): none, none to record */
	job.track_ranges = vm->pending_ranges.node != NULL;
	err = prepare_all(&job, reqs, n);
	if (!err) {
		ranges_merge(&job);
		job_deps_each(&job, s->in, true, prefetch, collect_unsignalled, w);
		if (w->n) {
			job_end(&job, false);
			return 1;
		}
		cerr = job_commit(&job);
	}
	job_end(&job, err == 0);
	if (err || cerr)
		return err ? err : cerr; /* a failed commit: the vm is banned, out-syncs untouched */
	vmb_device_job_done(vm->dev, NULL, 0, s->ufs, s->nufs, NULL);
	if (s->install)
		s->install(s->arg, &vm->dev->stub);
	return 0;
}

/* ---- asynchronous jobs -------------------------------------------------------------------- */

/* Under the vm's lock: commit @job (nothing on a banned vm) and take it off the pending lists;
 * job->error gets what its fence is to signal with. */
static void job_commit_locked(struct vmb_bind_job *job)
{
	vmb_vm_assert_locked(job->vm);
	job->trace.start_ns = (uint64_t)vmb_now_ns();
	job->trace.ready_ns = job->sj.ready_ns ? (uint64_t)job->sj.ready_ns : job->trace.start_ns;
	job->trace.ops = job->nops;
	job->error = atomic_load(&job->vm->banned) ? -EIO : job_commit(job);
	job->trace.error = job->error;
	job->q->npending--;
	ranges_remove(job->vm, job);
	vmb_list_del(&job->vm_link);
	vmb_dev_cross_lock(job->vm->dev);
	vmb_list_del(&job->dev_link);
	vmb_dev_cross_unlock(job->vm->dev);
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
	struct vmb_vm *vm = job->vm;
	struct vmb_device *dev = vm->dev;
	struct vmb_bind_queue *q = job->q;
	struct vmb_bind_job *chain[CHAIN_MAX];
	unsigned int n = 0;

	if (job->caller_locked) { /* vmb_vm_drain(): one job, cancelled */
		job_commit_locked(job);
		vmb_bind_queue_put(q);
		vmb_device_job_done(dev, &job->sj, job->error ? job->error : -ECANCELED, job->ufs, job->nufs, NULL);
		return VMB_SCHED_DETACHED;
	}
	vmb_dev_lock_shared(dev);
	vmb_vm_lock(vm);
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
	vmb_vm_unlock(vm);
	vmb_dev_unlock(dev);
	for (unsigned int i = 0; i <= n; i++) {
		struct vmb_bind_job *j = i ? chain[i - 1] : job;
		vmb_device_job_done(dev, &j->sj, j->error, j->ufs, j->nufs, &j->trace);
	}
	return VMB_SCHED_DETACHED;
}

static void job_release(struct vmb_sched_job *sj)
{
	struct vmb_bind_job *job = vmb_container_of(sj, struct vmb_bind_job, sj);
	vmb_sched_job_fini(&job->sj);
	vmb_ufences_free(job->ufs, job->nufs);
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
	vmb_dev_cross_lock(job->vm->dev);
	vmb_list_add_tail(&job->dev_link, &job->vm->dev->pending);
	vmb_dev_cross_unlock(job->vm->dev);
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
	job->trace.vm_id = s->trace_vm_id;
	job->trace.queue_id = s->trace_queue_id;
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

/* Takes what a bind of @vm runs under: the device lock exclusive (@excl: a PREFETCH), else the
 * vm's lock beside the device lock shared. */
static void bind_lock(struct vmb_vm *vm, bool excl)
{
	if (excl) {
		vmb_dev_lock(vm->dev);
	} else {
		vmb_dev_lock_shared(vm->dev);
		vmb_vm_lock(vm);
	}
}

static void bind_unlock(struct vmb_vm *vm, bool excl)
{
	if (!excl)
		vmb_vm_unlock(vm);
	vmb_dev_unlock(vm->dev);
}

/* An object the call holds was destroyed while it waited (@vm, @q, or one of the caller's, which
 * s->gone asks about): the call fails with -ENOENT, nothing changed. */
static bool call_objects_gone(const struct vmb_vm *vm, const struct vmb_bind_queue *q, struct vmb_bind_syncs *s)
{
	return vm->closed || q->closed || (s->gone && s->gone(s->arg));
}

int vmb_vm_bind_submit(struct vmb_vm *vm, struct vmb_bind_queue *q, const struct vmb_bind_req *reqs,
		       unsigned int n, bool async, struct vmb_bind_syncs *s)
{
	struct vmb_device *dev = vm->dev;
	bool prefetch = reqs_prefetch(reqs, n);
	bool in_call = !async || prefetch;
	int r;

	vmb_lock_assert(vmb_lock_mode(&dev->lock) == VMB_LOCK_SHARED);
	if (prefetch) {
		/* the device lock exclusive: the objects may be gone once it is taken */
		if (s->hold)
			s->hold(s->arg);
		vmb_dev_unlock(dev);
		bind_lock(vm, true);
		if (call_objects_gone(vm, q, s)) {
			r = -ENOENT;
			goto out;
		}
	} else {
		vmb_vm_lock(vm);
	}
	for (;;) {
		struct waits w = {.n = 0};
		if (atomic_load(&vm->banned)) {
			r = -EIO; /* a commit failed on it (vm/vm.h): nothing changed */
			break;
		}
		r = bind_step(vm, q, reqs, n, prefetch, &in_call, s, &w);
		if (r <= 0)
			break;
		/* all of them before trying again: one prepare per round, however many it follows */
		if (s->hold)
			s->hold(s->arg);
		bind_unlock(vm, prefetch);
		int err = 0;
		for (unsigned int i = 0; i < w.n; i++) {
			if (!err)
				err = vmb_fence_wait_stop(w.v[i], VMB_FENCE_FOREVER, true, s->stop);
			vmb_fence_unref(w.v[i]);
		}
		bind_lock(vm, prefetch);
		if (err) {
			r = err;
			break;
		}
		if (call_objects_gone(vm, q, s)) {
			r = -ENOENT; /* destroyed while the call waited: nothing changed */
			break;
		}
	}
out:
	if (prefetch) { /* back to the caller's shared hold */
		vmb_dev_unlock(dev);
		vmb_dev_lock_shared(dev);
	} else {
		vmb_vm_unlock(vm);
	}
	return r;
}

/* Run every pending job of @vm now, in order (see vm.h); the device lock is held exclusively (a
 * worker that started a job waits for it, shared, to commit: the wait below drops it). */
void vmb_vm_drain(struct vmb_vm *vm)
{
	vmb_lock_assert_excl(&vm->dev->lock);
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
