/* SPDX-License-Identifier: MIT */
/*
 * ---- jobs ----
 *
 * Every bind is a job (struct vmb_bind_job) ordered by one rule (job_deps_each below).
 * vmb_vm_bind_submit() holds the policy: an asynchronous bind's job goes to the scheduler,
 * which commits it in a worker once its dependencies have signalled (job_run), unless they all
 * have already: then the job commits in the call and its fence signals before the call returns
 * (job_commit_in_call: no hand-off to a worker); a synchronous bind and the low-memory
 * fallback commit in the call (bind_in_call). A PREFETCH that moves BOs
 * is always a submitted job (a synchronous one waits for it: prefetch_in_call): once its
 * dependencies have signalled it hands the device its copies, and commits once they are over
 * (job_run_copies); every later bind of a vm it re-maps in follows it (vm->move_last), and so
 * does an asynchronous MAP of a BO it moves (job_movers_each; bind.c's map_moving maps the BO
 * where the move leaves it), and an asynchronous PREFETCH of one (its move chained behind it:
 * vm/migrate.c), while a synchronous PREFETCH or bind that maps one waits for it in the call
 * (bind_step).
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
 * No room in VRAM (-ENOSPC from a prepare that missed VRAM) or an evicted BO to map back
 * (-ERESTART: only a job that may move BOs does that): the call retakes the device lock
 * exclusively, as a PREFETCH; then on -ENOSPC it submits an eviction job (evict_submit: BOs no
 * pending job and no vm uses, vm/migrate.c), waits for it (interruptibly) and prepares again,
 * until nothing is left to evict (-ENOSPC, nothing changed). An eviction job follows nothing (its
 * BOs are used by no job): it is device work only, so a call never waits for a job that may sit
 * behind a user's fence.
 * Locking: the vm's lock (with the device lock shared) for the vm's and its queues' lists and
 * the commit, and the device's cross lock for its pending list; a worker takes the device lock
 * shared and the vm's lock to commit. A job that moves BOs is prepared and committed under the
 * device lock exclusively (it re-points the BO's mappings in every vm that maps it).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <vmbind/bind.h>
#include <vmbind/debug.h>
#include <vmbind/vm.h>

#include "core/alloc.h"
#include "sync/stop.h"
#include "vm/job.h"

/* An eviction's or a restore's job: no bind of the caller's, so on no queue (vm/job.h). */
static bool job_off_queue(const struct vmb_bind_job *job) { return job->evict || job->restore; }

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
 * removes), the last pending job that moves a BO linked to its vm (vm->move_last: its moves
 * re-point mappings here after the device's copies) and every other pending job with moves that
 * re-maps in its vm (vm->nremaps of them, remaps_each: an older one may end after the newest);
 * and a job that moves BOs (a PREFETCH, a
 * restore: its moves re-point the moved BOs' mappings in every vm that maps them) every pending
 * job of its vm and of each vm that links a BO it moves (struct vmb_vm_bo: a mapping, or a
 * pending bind's), never the jobs of other vms. Calls @fn for each such fence,
 * signalled or not, until it returns non-zero, which is returned. The vm's lock; with a
 * PREFETCH the device lock exclusive.
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

static int vm_pending_each(struct vmb_vm *vm, int (*fn)(struct vmb_fence *f, void *arg), void *arg)
{
	struct vmb_list *pos;
	int r = 0;
	vmb_list_for_each(pos, &vm->pending) {
		if ((r = fn(vmb_container_of(pos, struct vmb_bind_job, vm_link)->sj.done, arg)))
			break;
	}
	return r;
}

/*
 * For each pending job other than @job that moves a BO one of @job's MAPs maps (an asynchronous
 * MAP does not wait for the move in the call: it follows the move's job, and maps the BO where
 * the move leaves it, bind.c's map_moving), every one of the BO's chain of pending moves (a
 * later one may end first: cancelled by vmb_vm_drain), latest first: @fn on it until it returns
 * non-zero, which is returned. Through the MAP steps of the job's plans, kept until it ends; only
 * a job that has such a MAP (job->maps_moving) has any. The device lock (a move's job ends under
 * it exclusive).
 */
static int job_movers_each(struct vmb_bind_job *job, int (*fn)(struct vmb_bind_job *mover, void *arg), void *arg)
{
	int r = 0;
	if (!job->maps_moving)
		return 0;
	for (struct plan_chunk *c = job->plans; c && !r; c = c->prev) {
		for (unsigned int i = 0; i < c->n && !r; i++) {
			const struct vmb_va_plan *p = &c->plans[i];
			for (unsigned int k = 0; k < p->n && !r; k++) {
				const struct vmb_va_step *st = &p->steps[k];
				const struct vmb_vm_bo *vb = st->va->obj.bo;
				if (st->kind != VMB_VA_STEP_MAP || !vb)
					continue;
				for (const struct vmb_backing *b = vb->bo->planned; b && !r; b = move_of(b)->prev_planned)
					if (move_of(b)->job != job)
						r = fn(move_of(b)->job, arg);
			}
		}
	}
	return r;
}

static int dep_mover(struct vmb_bind_job *m, void *arg)
{
	struct dep_walk *w = arg;
	return w->fn(m->sj.done, w->arg);
}

/* @job (with moves) re-maps in @vm: its own vm, or one of its map operations'. */
static bool job_remaps_in(const struct vmb_bind_job *job, const struct vmb_vm *vm)
{
	if (job->vm == vm)
		return true;
	for (unsigned int i = 0; i < job->nmaps; i++)
		if (job->maps[i].vm == vm)
			return true;
	return false;
}

/* Adds @d to the nremaps of each vm @job (with moves) re-maps in, once per vm (vm.h). From its
 * submission to its end (job_commit_locked, before job_end frees its maps); the device lock
 * exclusive. */
static void remaps_count(struct vmb_bind_job *job, int d)
{
	const void *mark = (const char *)job + (d > 0); /* this pass's, not the last one's */
	vmb_lock_assert_excl(&job->vm->dev->lock);
	job->vm->remaps_mark = mark;
	job->vm->nremaps += (unsigned int)d;
	for (unsigned int i = 0; i < job->nmaps; i++) {
		struct vmb_vm *o = job->maps[i].vm;
		if (o->remaps_mark == mark)
			continue;
		o->remaps_mark = mark;
		o->nremaps += (unsigned int)d;
	}
}

/* @fn on the fence of every pending job with moves that re-maps in @vm (vm->nremaps of them),
 * until it returns non-zero, which is returned. The device lock (such jobs end under it
 * exclusive), the cross lock taken for the device's pending list. */
static int remaps_each(struct vmb_vm *vm, int (*fn)(struct vmb_fence *f, void *arg), void *arg)
{
	struct vmb_device *dev = vm->dev;
	struct vmb_list *pos;
	int r = 0;
	vmb_dev_cross_lock(dev);
	vmb_list_for_each(pos, &dev->pending) {
		struct vmb_bind_job *j = vmb_container_of(pos, struct vmb_bind_job, dev_link);
		if (j->moves && job_remaps_in(j, vm) && (r = fn(j->sj.done, arg)))
			break;
	}
	vmb_dev_cross_unlock(dev);
	return r;
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
	/* a pending job that moves a BO mapped in this vm (or moves one in it) re-maps it here:
	 * every later bind of the vm follows it */
	if (!r && job->vm->move_last)
		r = fn(job->vm->move_last, arg);
	/* and every other pending move that re-maps here: move_last is only the newest */
	if (!r && job->vm->nremaps)
		r = remaps_each(job->vm, fn, arg);
	/* a MAP of a BO that a pending job moves (in any vm) maps it once that job has committed */
	if (!r && job->maps_moving)
		r = job_movers_each(job, dep_mover, &w);
	if (prefetch && job->moves) {
		/* every pending job of the vms it may re-map in: its own, and each vm that links a BO
		 * it moves (the device lock exclusive: their lists hold still); and the job of a BO's
		 * previous pending move (a chained move: an eviction's job is on a vm that may link
		 * none of them) */
		vmb_lock_assert_excl(&job->vm->dev->lock);
		if (!r)
			r = vm_pending_each(job->vm, fn, arg);
		for (struct job_move *m = job->moves; m && !r; m = m->next) {
			struct job_move *prev = move_prev_foreign(m);
			if (prev && (r = fn(prev->job->sj.done, arg)))
				break;
			vmb_list_for_each(pos, &m->bo->vm_bos) {
				struct vmb_vm *o = vmb_container_of(pos, struct vmb_vm_bo, bo_link)->vm;
				if (r)
					break;
				if (o != job->vm)
					r = vm_pending_each(o, fn, arg);
			}
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
	uint64_t evict_want; /* a prepare failed with -ENOSPC: the VRAM bytes it missed */
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
 * Nothing that the one rule orders a bind of @q on @vm after can be unsignalled, whatever its
 * ranges: no job of the vm is pending (so no pending range), no pending move re-maps in it
 * (nremaps), the queue's last fence, the vm's move_last and the in-fences @in (may be NULL) have
 * signalled. Not covered: the moves a MAP of
 * a moving BO follows (job->maps_moving) and a PREFETCH's. The vm's lock held.
 */
static bool follows_nothing(const struct vmb_vm *vm, const struct vmb_bind_queue *q, const struct vmb_fence_set *in)
{
	if (!vmb_list_empty(&vm->pending) || vm->nremaps || (q->entity.last && !vmb_fence_is_signalled(q->entity.last)) ||
	    (vm->move_last && !vmb_fence_is_signalled(vm->move_last)))
		return false;
	for (unsigned int i = 0; in && i < in->n; i++)
		if (!vmb_fence_is_signalled(in->v[i]))
			return false;
	return true;
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
			unsigned int n, bool prefetch, bool async, struct vmb_bind_syncs *s, struct waits *w)
{
	struct vmb_bind_job job;
	int err, cerr = 0;

	job_init(&job, vm);
	job.q = q;
	/* its ranges serve only to meet pending ones (it never pends itself): none, none to record */
	job.track_ranges = vm->pending_ranges.node != NULL;
	err = prepare_all(&job, reqs, n);
	w->evict_want = job.evict_want;
	if (!err) {
		ranges_merge(&job);
		/* the walk only where it may find something (the usual synchronous bind: nothing) */
		if (prefetch || job.maps_moving || !follows_nothing(vm, q, s->in))
			job_deps_each(&job, s->in, true, prefetch, collect_unsignalled, w);
		if (w->n) {
			job_end(&job, false);
			return 1;
		}
		cerr = job_commit(&job);
	}
	job_end(&job, err == 0);
	if (err)
		return err;
	/* a failed commit bans the vm: a synchronous call returns its errno, out-syncs untouched; an
	 * asynchronous one (async_on_stack: user fences only) returns 0 and writes them, as a job
	 * committed in the call does (its fence's error has nobody to read it) */
	if (cerr && !async)
		return cerr;
	vmb_device_job_done(vm->dev, NULL, 0, s->ufs, s->nufs, NULL);
	if (s->install)
		s->install(s->arg, &vm->dev->stub);
	return 0;
}

/* ---- asynchronous jobs -------------------------------------------------------------------- */

/*
 * An asynchronous bind that would commit in the call (job_commit_in_call) and whose fence nobody
 * could see is done as a synchronous one (bind_in_call: a job on the stack, no fence, no
 * scheduler job): it has no out-syncobj (@s->install) and is not traced, and everything it
 * follows by the one rule has signalled: its in-fences, its queue's last fence, the vm's
 * move_last, no job of the vm is pending (so no range of a pending bind meets it) and no move
 * re-maps in it (nremaps). Its queue's
 * last fence stays the previous one, signalled: the queue's next bind follows nothing more (a
 * queue's fences serve only its own order, sched.h). What the one rule may still find (a MAP of a
 * BO that another vm's pending job moves) sends it back to a job (bind_step). The vm's lock held.
 */
static bool async_on_stack(const struct vmb_vm *vm, const struct vmb_bind_queue *q, const struct vmb_bind_syncs *s)
{
	return !s->install && !vmb_trace_on(vm->dev) && follows_nothing(vm, q, s->in);
}

/*
 * A job with moves commits only once the device's copies into the new backings are over
 * (job_run hands them over): a copy that failed bans the job's vm as a failed commit does
 * (nothing committed: the BOs stay where they were, whose mappings in other vms still point
 * there), and a job whose copies never ran (cancelled by vmb_vm_drain) commits nothing. 0, or
 * what its fence is to signal with.
 */
static int job_copies_error(struct vmb_bind_job *job)
{
	if (!job->moves)
		return 0;
	if (!job->copying)
		return -ECANCELED;
	for (struct job_move *m = job->moves; m; m = m->next) {
		int err = m->copy->error;
		if (err) {
			vmb_commit_failed_note();
			vmb_vm_ban(job->vm, err);
			return err;
		}
	}
	return 0;
}

/* Under the vm's lock: commit @job (nothing on a banned vm) and take it off the pending lists;
 * job->error gets what its fence is to signal with. */
static void job_commit_locked(struct vmb_bind_job *job)
{
	vmb_vm_assert_locked(job->vm);
	if (job->trace.submit_ns) { /* traced (job_new) */
		job->trace.start_ns = (uint64_t)vmb_now_ns();
		job->trace.ready_ns = job->sj.ready_ns ? (uint64_t)job->sj.ready_ns : job->trace.start_ns;
	}
	job->trace.ops = job->nops;
	job->error = atomic_load(&job->vm->banned) ? -EIO : job_copies_error(job);
	if (!job->error)
		job->error = job_commit(job);
	job->trace.error = job->error;
	if (job->moves)
		remaps_count(job, -1);
	if (!job_off_queue(job))
		job->q->npending--; /* an eviction or a restore is on no queue */
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

/*
 * ---- a job that moves BOs (PREFETCH) ----
 *
 * Its dependencies have signalled: job_run hands the device its copies (ops->copy_run, as an
 * exec's run_job: no allocation, no lock) and returns; the last copy's signal defers the commit
 * to a worker (fence callbacks may not take the device lock), which commits under the device
 * lock exclusive (the moves re-point mappings in every vm and switch the BOs) and signals the
 * job's fence: never before the copies are over; the old backings are freed then.
 */
static void job_commit_moves(struct vmb_sched_work *w)
{
	struct vmb_bind_job *job = vmb_container_of(w, struct vmb_bind_job, commit_work);
	struct vmb_device *dev = job->vm->dev;

	vmb_signalling_begin();
	vmb_dev_lock(dev);
	job_commit_locked(job);
	vmb_bind_queue_put(job->q);
	vmb_dev_unlock(dev);
	vmb_device_job_done(dev, &job->sj, job->error, job->ufs, job->nufs, &job->trace);
	vmb_signalling_end();
}

static void copy_put(struct vmb_bind_job *job)
{
	if (atomic_fetch_sub(&job->copies_left, 1) == 1)
		vmb_sched_defer(&job->vm->dev->sched, &job->commit_work);
}

static void copy_signalled(struct vmb_fence *f, struct vmb_fence_cb *cb)
{
	(void)f;
	copy_put(vmb_container_of(cb, struct job_move, copy_cb)->job);
}

static void job_run_copies(struct vmb_bind_job *job)
{
	struct vmb_device *dev = job->vm->dev;
	unsigned int n = 0;

	for (struct job_move *m = job->moves; m; m = m->next)
		n++;
	job->copying = true;
	job->commit_work.func = job_commit_moves;
	atomic_store(&job->copies_left, n + 1); /* + 1: until every copy is handed over */
	for (struct job_move *m = job->moves; m; m = m->next) {
		struct vmb_fence *f = dev->ops->copy_run(dev, m->copy);
		if (vmb_fence_add_callback(f, &m->copy_cb, copy_signalled))
			copy_put(job); /* over already */
	}
	copy_put(job);
}

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
	if (job->moves) { /* committed once the device's copies are over */
		job_run_copies(job);
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
		if (next->moves || !only_waits_for(next, cur->sj.done) || !vmb_sched_job_claim(&next->sj))
			break; /* a job with moves commits after its copies */
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

/* The job's user fences: their pins, and the array unless it is the job's own (borrowed). */
static void job_ufs_free(struct vmb_bind_job *job)
{
	vmb_ufences_put(job->ufs, job->nufs);
	if (job->ufs != job->ufs_small)
		free(job->ufs);
}

static void job_release(struct vmb_sched_job *sj)
{
	struct vmb_bind_job *job = vmb_container_of(sj, struct vmb_bind_job, sj);
	/* the device from the scheduler: the job's vm may be gone by now (job_run), its device not */
	struct vmb_device *dev = vmb_container_of(job->sj.sched, struct vmb_device, sched);
	vmb_sched_job_fini(&job->sj);
	job_ufs_free(job);
	vmb_memcache_put(&dev->bind_jobs, job);
}

static const struct vmb_sched_job_ops bind_job_ops = {.run = job_run, .release = job_release};

/* A job committed in the call is released there, while the call holds its queue and the vm's
 * lock (job_signal_in_call's callers): its memory stays with the queue (q->spare, one) for the
 * queue's next job, instead of free + malloc. */
static void job_release_to_queue(struct vmb_sched_job *sj)
{
	struct vmb_bind_job *job = vmb_container_of(sj, struct vmb_bind_job, sj);
	vmb_vm_assert_locked(job->vm);
	vmb_sched_job_fini(&job->sj);
	job_ufs_free(job);
	if (!job->q->spare)
		job->q->spare = job;
	else
		vmb_memcache_put(&job->vm->dev->bind_jobs, job);
}

static const struct vmb_sched_job_ops bind_job_in_call_ops = {.run = job_run, .release = job_release_to_queue};

static struct vmb_bind_job *job_new(struct vmb_vm *vm, struct vmb_bind_queue *q)
{
	vmb_vm_assert_locked(vm);
	struct vmb_bind_job *job = q->spare; /* (the vm's lock: vm.h) */
	q->spare = NULL;
	if (!job)
		job = vmb_memcache_get(&vm->dev->bind_jobs);
	if (!job)
		job = vmb_malloc(sizeof(*job));
	if (!job)
		return NULL;
	/* the fence in the memory of the queue's last fence that nothing holds any more (the
	 * queue's entity is under the vm's lock, held here) */
	if (vmb_sched_job_init_from(&job->sj, &vm->dev->sched, &bind_job_ops, &q->entity)) {
		vmb_memcache_put(&vm->dev->bind_jobs, job);
		return NULL;
	}
	job_init(job, vm);
	job->q = q;
	job->track_ranges = true;
	/* stamped only while tracing (a clock read costs tens of ns in some VMs): a job submitted
	 * with tracing off is never recorded (vmb_device_job_done) */
	job->trace = (struct vmb_trace_event){.kind = VMB_TRACE_BIND,
					      .submit_ns = vmb_trace_on(vm->dev) ? (uint64_t)vmb_now_ns() : 0};
	/* no reference on @q yet: the call holds it while the job is prepared, and a job committed
	 * in the call never outlives it; job_submit takes one */
	return job;
}

/* Undoes a prepared (or unprepared) job that was never submitted and frees it. */
static void job_abort(struct vmb_bind_job *job)
{
	if (job->prepared)
		job_end(job, false);
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

/* Hands the job to the scheduler: cannot fail. The job holds its queue until it commits. */
static void job_submit(struct vmb_bind_job *job)
{
	vmb_bind_queue_get(job->q);
	vmb_list_add_tail(&job->vm_link, &job->vm->pending);
	ranges_insert(job->vm, job);
	vmb_dev_cross_lock(job->vm->dev);
	vmb_list_add_tail(&job->dev_link, &job->vm->dev->pending);
	vmb_dev_cross_unlock(job->vm->dev);
	if (!job_off_queue(job)) { /* an eviction or a restore is on no queue */
		job->q->npending++;
		vmb_list_add_tail(&job->q_link, &job->q->pending);
		vmb_sched_entity_push(&job->q->entity, &job->sj);
	}
	vmb_sched_submit(&job->sj);
}

/* Every dependency of @job has signalled (vmb_sched_job_add_dep skipped those signalled then;
 * the others may have since). */
static bool deps_signalled(const struct vmb_bind_job *job)
{
	for (unsigned int i = 0; i < job->sj.ndeps; i++)
		if (!vmb_fence_is_signalled(job->sj.deps[i].fence))
			return false;
	return true;
}

/*
 * An asynchronous job that follows nothing unsignalled commits in the call (a CPU bind, as
 * the kernel's Xe does): its queue is idle (its previous job's fence, a dependency, has
 * signalled, and a queue's fences signal in order), no pending bind of another queue meets its
 * ranges and its in-fences have signalled, so a worker would commit it at once, in the same
 * order, with the same result. It never joins the pending lists; it becomes its queue's last
 * job, as a submitted one does. The vm's lock held; vmb_vm_bind_submit signals its fence (with
 * its commit's result: an asynchronous job's semantics) before it drops the vm's lock (no fence
 * callback takes a vm's or the device lock): a bind of the same queue that takes the lock next
 * (another thread's) then finds the queue idle and commits in its call too, where with the
 * signal after the release it found this fence unsignalled in the gap and went to a worker
 * (with every later bind of the queue until the queue drained).
 */
static void job_commit_in_call(struct vmb_bind_job *job)
{
	vmb_vm_assert_locked(job->vm);
	if (job->trace.submit_ns) { /* traced (job_new) */
		int64_t now = vmb_now_ns();
		job->sj.ready_ns = now;
		job->trace.ready_ns = job->trace.start_ns = (uint64_t)now;
	}
	job->trace.ops = job->nops;
	job->error = atomic_load(&job->vm->banned) ? -EIO : job_commit(job);
	job->trace.error = job->error;
	job_end(job, true);
	job->prepared = false;
	vmb_sched_entity_push(&job->q->entity, &job->sj);
	job->sj.ops = &bind_job_in_call_ops; /* released in the call: its memory stays */
}

/* Signals a job committed in the call: user fences, trace, its fence; then it is released. */
static void job_signal_in_call(struct vmb_bind_job *job)
{
	vmb_device_job_done(job->vm->dev, &job->sj, job->error, job->ufs, job->nufs, &job->trace);
}

static void set_move_last(struct vmb_fence **last, struct vmb_fence *f)
{
	if (*last == f)
		return;
	vmb_fence_unref(*last);
	vmb_fence_get(f);
	*last = f;
}

/*
 * Prepares @job, gives it its dependencies by the one rule (the scheduler commits it once they
 * have signalled), installs its fence in the out-syncobjs, hands it the user fences and submits
 * it. On error the job is freed and nothing changed. A job that moves BOs becomes the move_last
 * of every vm it may re-map in. @hold (may be NULL) gets a reference on the job's fence. @w (may
 * be NULL) gets what a prepare's -ENOSPC missed in VRAM. @probe (a synchronous PREFETCH, may be
 * NULL): if something the job follows has not signalled, the job is unwound and freed, @probe
 * gets those fences, returns 1. An eviction (job->evict, its moves added by evict_prepare) has no
 * dependency and no place in its queue. With @now (may be NULL), a job without moves whose
 * dependencies have all signalled commits in the call instead (job_commit_in_call): *@now gets
 * it, for the caller to signal once it has dropped the vm's lock.
 */
static int bind_async(struct vmb_bind_job *job, const struct vmb_bind_req *reqs, unsigned int n,
		      bool prefetch, struct vmb_bind_syncs *s, struct vmb_fence **hold, struct waits *w,
		      struct waits *probe, struct vmb_bind_job **now)
{
	job->moves_ok = prefetch; /* its copies run before its commit (job_run) */
	int err = job_off_queue(job) ? 0 : prepare_all(job, reqs, n);
	if (w)
		w->evict_want = job->evict_want;
	if (err) {
		job_end(job, false);
	} else {
		job->prepared = true;
		job->nops = n;
		ranges_merge(job);
		/* a synchronous PREFETCH: submitted only once everything it follows is over */
		if (probe) {
			job_deps_each(job, s->in, true, prefetch, collect_unsignalled, probe);
			if (probe->n) {
				job_abort(job);
				return 1;
			}
		}
		if (!job_off_queue(job))
			err = vmb_sched_job_after(&job->sj, &job->q->entity);
	}
	if (!err && !job->evict) /* an eviction follows nothing: no job uses its BOs */
		err = job_deps_each(job, s->in, false, prefetch, add_dep, &job->sj);
	if (err) {
		job_abort(job);
		return err;
	}
	if (job->moves) {
		/* later binds of every vm it re-maps in follow it; later execs too where it evicts or
		 * restores (an exec must not run before its vm's BOs are back where they may live) */
		vmb_lock_assert_excl(&job->vm->dev->lock);
		if (!job->evict)
			set_move_last(&job->vm->move_last, job->sj.done);
		for (struct job_move *m = job->moves; m; m = m->next) {
			struct vmb_list *pos;
			bool res = m->evict || !(m->bo->placements & (1u << m->from_region));
			vmb_list_for_each(pos, &m->bo->vm_bos) {
				struct vmb_vm *o = vmb_container_of(pos, struct vmb_vm_bo, bo_link)->vm;
				set_move_last(&o->move_last, job->sj.done);
				if (res)
					set_move_last(&o->resident_last, job->sj.done);
			}
		}
	}
	if (hold) {
		vmb_fence_get(job->sj.done);
		*hold = job->sj.done;
	}
	if (s->install)
		s->install(s->arg, job->sj.done);
	job->ufs = s->ufs;
	job->nufs = s->nufs;
	if (s->ufs_borrowed) { /* the caller's array: copied (vmb_vm_bind_submit: they fit) */
		job->ufs = s->nufs ? job->ufs_small : NULL;
		if (s->nufs == 1) /* the usual one: a move, not a call of memcpy for 24 bytes */
			job->ufs_small[0] = s->ufs[0];
		else if (s->nufs)
			memcpy(job->ufs_small, s->ufs, s->nufs * sizeof(*s->ufs));
	}
	s->ufs = NULL;
	s->nufs = 0;
	job->trace.vm_id = s->trace_vm_id;
	job->trace.queue_id = s->trace_queue_id;
	if (now && !job->moves && deps_signalled(job)) {
		job_commit_in_call(job);
		*now = job;
		return 0;
	}
	if (job->moves)
		remaps_count(job, 1);
	job_submit(job);
	return 0;
}

/* The fence of the pending job that moves @bo, or NULL. */
static struct vmb_fence *bo_moving(const struct vmb_bo *bo)
{
	struct vmb_bind_job *j = bo_move_job(bo);
	return j ? j->sj.done : NULL;
}

/* Unless @follow, a PREFETCH's range maps a BO that a pending job moves; unless @follow and
 * @maps_follow, a MAP of @reqs names one: collects those jobs' fences (the call waits for them).
 * @follow: an asynchronous bind not done in the call, whose job follows the moves instead
 * (job_deps_each): a PREFETCH's move goes behind them (vm/migrate.c, a chained move), a MAP maps
 * the BO where they leave it (bind.c's map_moving). @maps_follow: no PREFETCH may move a BO
 * that such a MAP names in the same job (a bind with a PREFETCH, the -ERESTART/-ENOSPC retry
 * that moves BOs: their MAPs wait). */
static void moving_bos(struct vmb_vm *vm, const struct vmb_bind_req *reqs, unsigned int n, bool follow,
		       bool maps_follow, struct waits *w)
{
	for (unsigned int i = 0; i < n && w->n < WAIT_MAX; i++) {
		const struct vmb_bind_req *r = &reqs[i];
		struct vmb_fence *f;
		if (r->op == VMB_BIND_OP_MAP && r->bo && !(follow && maps_follow) && (f = bo_moving(r->bo)))
			collect_unsignalled(f, w);
		if (r->op != VMB_BIND_OP_PREFETCH || follow)
			continue;
		uint64_t last = r->addr + r->range - 1;
		for (struct vmb_va *va = vmb_va_find_first(&vm->tree, r->addr, last);
		     va && va->start <= last && w->n < WAIT_MAX; va = vmb_va_next(va))
			if (va->obj.bo && (f = bo_moving(((struct vmb_vm_bo *)va->obj.bo)->bo)))
				collect_unsignalled(f, w);
	}
}

/*
 * A synchronous PREFETCH (the device lock exclusive): once nothing it follows is pending, it is
 * a job like an asynchronous one, which runs at once (its copies, then its commit) and which the
 * call waits for (*@wait, returned 2: device work, not interruptible), its out-syncs left to the
 * call. Returns 0 is never; 1: wait for @w first, as bind_in_call; 2; or an errno (nothing
 * changed).
 */
static int prefetch_in_call(struct vmb_vm *vm, struct vmb_bind_queue *q, const struct vmb_bind_req *reqs,
			    unsigned int n, struct vmb_bind_syncs *s, struct waits *w, struct vmb_fence **wait)
{
	struct vmb_bind_job *job = job_new(vm, q);
	if (!job)
		return -ENOMEM;
	struct vmb_bind_syncs own = {.in = s->in, .trace_vm_id = s->trace_vm_id, .trace_queue_id = s->trace_queue_id};
	int err = bind_async(job, reqs, n, true, &own, wait, w, w, NULL);
	return err ? err : 2;
}

/*
 * One attempt under the device lock. Returns 0 (done), an errno, 1: wait for @w with the lock
 * dropped, then again, or 2 (a synchronous PREFETCH submitted): wait for *@wait, its result is
 * the call's. *@in_call: the bind commits in the call (set for good once a job could not be
 * allocated).
 */
static int bind_step(struct vmb_vm *vm, struct vmb_bind_queue *q, const struct vmb_bind_req *reqs,
		     unsigned int n, bool prefetch, bool async, bool *in_call, struct vmb_bind_syncs *s,
		     struct waits *w, struct vmb_fence **wait, struct vmb_bind_job **now)
{
	if (atomic_load(&vm->banned)) /* a commit failed on it (vm/vm.h) */
		return -EIO;          /* nothing changed */
	/* A job moving BOs is pending: an asynchronous bind's job follows it (job_deps_each), as
	 * every other bind of a vm it re-maps in does: a PREFETCH of a BO it moves moves the BO
	 * behind it (a chained move), a MAP maps the BO where it leaves it. A synchronous bind or
	 * one that commits in the call waits for it in the call, and so does a MAP in a bind that
	 * may move BOs (with a PREFETCH, or the retry that restores: the device lock exclusive). */
	moving_bos(vm, reqs, n, async && !*in_call, !prefetch, w);
	if (w->n)
		return 1;
	if (prefetch && !async)
		return prefetch_in_call(vm, q, reqs, n, s, w, wait);
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
		if (!prefetch && async_on_stack(vm, q, s)) {
			int r = bind_in_call(vm, q, reqs, n, false, true, s, w);
			if (r != 1)
				return r;
			for (unsigned int i = 0; i < w->n; i++) /* as a job, following what it found */
				vmb_fence_unref(w->v[i]);
			w->n = 0;
		}
		struct vmb_bind_job *job = job_new(vm, q);
		if (job)
			return bind_async(job, reqs, n, prefetch, s, NULL, w, NULL, now);
		if (prefetch)
			return -ENOMEM; /* its copies are device work: no commit in the call */
		*in_call = true; /* no memory for a job: the call does the work (the low-memory fallback) */
	}
	return bind_in_call(vm, q, reqs, n, prefetch, false, s, w);
}

/* The fence of an eviction still pending on the device (another call's, or one whose call was
 * interrupted), a reference taken, or NULL. The device lock exclusive (dev->pending). */
static struct vmb_fence *eviction_pending(struct vmb_device *dev)
{
	struct vmb_list *pos;
	vmb_list_for_each(pos, &dev->pending) {
		struct vmb_bind_job *job = vmb_container_of(pos, struct vmb_bind_job, dev_link);
		if (job->evict && !vmb_fence_is_signalled(job->sj.done)) {
			vmb_fence_get(job->sj.done);
			return job->sj.done;
		}
	}
	return NULL;
}

/*
 * No room in VRAM for the bind (vm/migrate.c, eviction): submits a job that moves to SYSTEM BOs
 * in VRAM that nothing uses, about @want bytes (what the bind's prepare missed), @fence a
 * reference on its fence. It follows nothing and nothing follows it but the binds that map its
 * BOs (they wait in the call: bind_step); it is on no queue (it is no bind of the caller's).
 * Nothing to pick while another eviction is pending: @fence is that one's, to wait for.
 * 0, -ENOSPC (nothing to evict, none pending), -ENOMEM. The device lock exclusive.
 */
static int evict_submit(struct vmb_vm *vm, struct vmb_bind_queue *q, uint64_t want, const struct vmb_vm *keep,
			struct vmb_bind_syncs *s, struct vmb_fence **fence)
{
	struct vmb_bind_job *job = job_new(vm, q);
	if (!job)
		return -ENOMEM;
	job->evict = true;
	int err = evict_prepare(job, want, keep);
	if (err) {
		job->prepared = true; /* its moves undone */
		job_abort(job);
		/* nothing left to pick, but an eviction in flight (its BOs being moved are no
		 * candidates) is making room: wait for it and try again, not -ENOSPC */
		if (err == -ENOSPC && (*fence = eviction_pending(vm->dev)))
			return 0;
		return err;
	}
	job->trace.kind = VMB_TRACE_EVICT;
	struct vmb_bind_syncs own = {.trace_vm_id = s->trace_vm_id, .trace_queue_id = s->trace_queue_id};
	return bind_async(job, NULL, 0, true, &own, fence, NULL, NULL, NULL);
}

/* Rounds of eviction one call may do before it gives up with -ENOSPC (each moves at least one BO
 * out of VRAM; other threads may take the room each time) */
#define EVICT_ROUNDS 64

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

/*
 * ---- binds run by the holder of the vm's lock (flat combining, core/lock.h) ----
 *
 * A bind (synchronous: it has no syncs; or asynchronous, without a PREFETCH) that finds
 * the vm's lock taken queues itself for the holder, which runs it, as bind_step would in the
 * call's own thread, before it releases the lock: with many submitters on one vm, binds run one
 * after the other on the core whose cache holds the vm (its tree, page tables, links), and
 * the others hand over a request and get back a result, instead of each taking the lock in turn
 * and pulling the vm's lines to its own core. The call still holds the device lock shared, so
 * its objects stay alive; the holder holds the device lock shared and the vm's lock, as the
 * call would. A result that needs the call's own thread comes back as COMBINE_AGAIN (binds to
 * wait for first: 1; the device lock exclusive: -ERESTART, -ENOSPC with VRAM to make room in):
 * the call then takes the vm's lock and runs the bind itself, from the start (nothing changed).
 * An asynchronous bind's syncs are the call's (struct vmb_bind_syncs, on its stack while it
 * waits): the holder parses nothing and waits for nothing of them; it gives the job the call's
 * in-fences as dependencies, installs its fence in the call's out-syncobjs and hands the job
 * the call's user fences (already checked by the call), all under the locks the call would
 * hold; a job that commits at once signals under the vm's lock, as in the call
 * (job_commit_in_call). The call's thread keeps the waits (the queue's limit, an LR vm's
 * in-fences) and the device lock exclusive, through COMBINE_AGAIN.
 * A thread whose fault-injection countdowns are armed neither queues nor runs other threads'
 * binds (they would count the allocations of the wrong thread). Holders that run the queue:
 * calls, before they release the lock (not a worker's commit or an engine's time slice): a bind
 * queued behind those takes the lock itself (its waiter tries the lock now and then:
 * core/lock.h).
 */
#define COMBINE_AGAIN 1
/* binds of other calls after which a hold takes no new snapshot of the queue (the holder's own
 * call waits); what is left of the current one still runs (core/lock.h) */
#define COMBINE_MAX 64
#define COMBINE_WAKES 128 /* requests whose waiters may be woken after the release; more: at once */
#define COMBINE_ROUNDS 2 /* retakes of the lock for binds queued as it was released */

/* What the holder reads and writes of a queued bind: its first two cache lines (a 1-op call's
 * op copied in beside the header), written by the waiting thread and fetched by the holder while
 * the request before it runs (vmb_combine_next prefetches both); `w` only for COMBINE_AGAIN. */
struct bind_request {
	struct vmb_combine_req req;
	int result;
	unsigned int n;
	struct vmb_bind_queue *q;
	const struct vmb_bind_req *reqs; /* &one for a 1-op call */
	struct vmb_bind_syncs *s;        /* an asynchronous call's (its own); NULL: synchronous */
	struct vmb_bind_req one;
	struct waits w; /* COMBINE_AGAIN: fences the holder collected (references), the caller drops */
} __attribute__((aligned(64)));

/* No PREFETCH (the device lock exclusive); a synchronous call has no syncs (in-fences and user
 * fences would be the thread's to wait for and write), so the holder runs it with none (no
 * install either: no out-syncobjs); an asynchronous one with the call's. */
static bool bind_combinable(const struct vmb_bind_syncs *s, bool async, bool prefetch)
{
	return !prefetch && (async || ((!s->in || !s->in->n) && !s->nufs)) && !vmb_fault_armed();
}

/* Whether an asynchronous call with @s commits in the call whatever it follows: the caller's
 * user fences are too many for a job to copy (vm/bind.h: ufs_borrowed). */
static bool async_in_call(const struct vmb_bind_syncs *s)
{
	return s->ufs_borrowed && s->nufs > VMB_BIND_UFS_INLINE;
}

/* The vm's lock held (by another call than @b's): @b's bind, its result in b->result. */
static void bind_request_run(struct vmb_vm *vm, struct bind_request *b)
{
	struct vmb_bind_syncs none = {.in = NULL}, *s = b->s ? b->s : &none;
	struct vmb_fence *wait = NULL;
	struct vmb_bind_job *now = NULL;
	struct waits w = {.n = 0};
	bool in_call = !b->s || async_in_call(s);
	int r = bind_step(vm, b->q, b->reqs, b->n, false, b->s != NULL, &in_call, s, &w, &wait, &now);

	if (!r) /* as vmb_vm_bind_submit does on success */
		(void)vmb_va_reserve(&vm->tree, VMB_VM_UNMAP_RESERVE);
	if (now) /* committed at once: signalled under the vm's lock, as vmb_vm_bind_submit does */
		job_signal_in_call(now);
	if (r == 1 || r == -ERESTART || (r == -ENOSPC && w.evict_want)) {
		r = COMBINE_AGAIN;
		b->w = w;
	}
	b->result = r;
}

/* @n state words of a hold's requests in @wake, @asleep[i]: its waiter was seen asleep: those
 * to wake (the seen ones, or all if more may sleep: core/lock.h) come first; how many. */
static unsigned int wakes_pick(struct vmb_vm *vm, _Atomic uint32_t **wake, const bool *asleep, unsigned int n,
			       unsigned int seen)
{
	if (!n || vmb_combine_sleepers(&vm->combine, seen))
		return n;
	unsigned int k = 0;
	for (unsigned int i = 0; i < n; i++)
		if (asleep[i])
			wake[k++] = wake[i];
	return k;
}

/* The vm's lock held, this thread's fault-injection countdowns off: runs the binds queued for it
 * (snapshots of the queue up to COMBINE_MAX binds); @wake gets the state words of the waiters to
 * wake once the lock is released (past COMBINE_WAKES requests, at once), returns how many. */
static unsigned int bind_requests_run(struct vmb_vm *vm, _Atomic uint32_t **wake)
{
	bool asleep[COMBINE_WAKES];
	struct vmb_combine_req *r;
	unsigned int done = 0, n = 0, seen = 0;

	while ((r = vmb_combine_next(&vm->combine, done < COMBINE_MAX))) {
		_Atomic uint32_t *state = &r->state;
		bind_request_run(vm, vmb_container_of(r, struct bind_request, req));
		done++;
		if (n == COMBINE_WAKES) {
			unsigned int k = wakes_pick(vm, wake, asleep, n, seen);
			for (unsigned int i = 0; i < k; i++)
				vmb_combine_wake(wake[i]);
			n = seen = 0;
		}
		/* its call may return at once: not touched after */
		asleep[n] = vmb_combine_done(r);
		seen += asleep[n];
		wake[n++] = state;
	}
	return wakes_pick(vm, wake, asleep, n, seen);
}

/* Releases the vm's lock after running the binds queued for it; those queued as it was released
 * are run too if the lock can be retaken at once (else their calls take it). */
static void bind_vm_unlock(struct vmb_vm *vm)
{
	_Atomic uint32_t *wake[COMBINE_WAKES];

	for (unsigned int round = 0;; round++) {
		/* nothing queued (the uncontended case): two loads (the stack, the taken list), no more */
		bool run = vmb_combine_pending(&vm->combine) && !vmb_fault_armed();
		unsigned int nwake = run ? bind_requests_run(vm, wake) : 0;
		vmb_vm_unlock(vm);
		for (unsigned int i = 0; i < nwake; i++)
			vmb_combine_wake(wake[i]);
		if (round == COMBINE_ROUNDS || !vmb_combine_pending(&vm->combine) || vmb_fault_armed() ||
		    !vmb_mutex_trylock(&vm->lock))
			return;
	}
}

/* A combinable bind (@s: an asynchronous call's syncs, NULL for a synchronous one): true once the
 * call holds the vm's lock to run the bind itself; false when the lock's holder ran it, *@r its
 * result (the lock not held). */
static bool bind_lock_or_hand_over(struct vmb_vm *vm, struct vmb_bind_queue *q, const struct vmb_bind_req *reqs,
				   unsigned int n, struct vmb_bind_syncs *s, int *r)
{
	if (vmb_mutex_trylock(&vm->lock))
		return true;
	struct bind_request b = {.n = n, .q = q, .reqs = reqs, .s = s};
	if (n == 1) {
		b.one = reqs[0];
		b.reqs = &b.one;
	}
	switch (vmb_combine_wait(&vm->combine, &vm->lock, &b.req)) {
	case VMB_COMBINE_OWN:
		return true;
	case VMB_COMBINE_RAN_LOCKED:
		bind_vm_unlock(vm);
		break;
	case VMB_COMBINE_RAN:
		break;
	}
	for (unsigned int i = 0; i < b.w.n; i++)
		vmb_fence_unref(b.w.v[i]);
	if (b.result == COMBINE_AGAIN) {
		vmb_vm_lock(vm);
		return true;
	}
	*r = b.result;
	return false;
}

int vmb_vm_bind_submit(struct vmb_vm *vm, struct vmb_bind_queue *q, const struct vmb_bind_req *reqs,
		       unsigned int n, bool async, struct vmb_bind_syncs *s)
{
	struct vmb_device *dev = vm->dev;
	bool prefetch = reqs_prefetch(reqs, n);
	/* borrowed user fences: a job copies a few (bind_async), more stay the caller's */
	bool in_call = !async || async_in_call(s);
	struct vmb_bind_job *now = NULL; /* an asynchronous job committed in the call */
	unsigned int evict_rounds = 0;
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
	} else if (bind_combinable(s, async, prefetch)) {
		if (!bind_lock_or_hand_over(vm, q, reqs, n, async ? s : NULL, &r))
			return r; /* run by the lock's holder */
	} else {
		vmb_vm_lock(vm);
	}
	for (;;) {
		struct waits w = {.n = 0};
		struct vmb_fence *job_fence = NULL;
		r = bind_step(vm, q, reqs, n, prefetch, async, &in_call, s, &w, &job_fence, &now);
		if (r == -ERESTART && prefetch)
			r = -ENOMEM; /* a BO to restore in the low-memory fallback: no job for its copy */
		if (r == -ERESTART || (r == -ENOSPC && w.evict_want && !prefetch)) {
			/* an evicted BO to restore (a move), or no room in VRAM (eviction may make
			 * some): again under the device lock exclusive, as a PREFETCH; nothing changed */
			if (s->hold)
				s->hold(s->arg);
			bind_unlock(vm, false);
			prefetch = true;
			bind_lock(vm, true);
			if (call_objects_gone(vm, q, s)) {
				r = -ENOENT;
				break;
			}
			continue;
		}
		if (r == -ENOSPC && w.evict_want && evict_rounds++ < EVICT_ROUNDS) {
			/* make room: evict what nothing uses (device work), wait for it, again */
			r = evict_submit(vm, q, w.evict_want, NULL, s, &job_fence);
			if (r)
				break; /* -ENOSPC: nothing to evict; nothing changed */
			if (s->hold)
				s->hold(s->arg);
			bind_unlock(vm, true);
			r = vmb_fence_wait_stop(job_fence, VMB_FENCE_FOREVER, true, s->stop);
			vmb_fence_unref(job_fence);
			bind_lock(vm, true);
			if (r)
				break;
			if (call_objects_gone(vm, q, s)) {
				r = -ENOENT;
				break;
			}
			continue;
		}
		if (r <= 0)
			break;
		if (r == 2) { /* a synchronous PREFETCH's job: device work, then its commit */
			bind_unlock(vm, prefetch);
			vmb_fence_wait(job_fence, VMB_FENCE_FOREVER, false);
			r = vmb_fence_error(job_fence);
			vmb_fence_unref(job_fence);
			bind_lock(vm, prefetch);
			if (!r) { /* as a bind done in the call (bind_in_call) */
				vmb_device_job_done(dev, NULL, 0, s->ufs, s->nufs, NULL);
				if (s->install)
					s->install(s->arg, &dev->stub);
			}
			break;
		}
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
	if (!r) /* refill what an unbind may need, where failing is harmless (vm/vm.h) */
		(void)vmb_va_reserve(&vm->tree, VMB_VM_UNMAP_RESERVE);
	/* before the lock is dropped: the queue's next bind (another thread's) finds it signalled
	 * and commits in its call too, instead of following it through a worker */
	if (now)
		job_signal_in_call(now);
	if (prefetch) { /* back to the caller's shared hold */
		vmb_dev_unlock(dev);
		vmb_dev_lock_shared(dev);
	} else {
		bind_vm_unlock(vm); /* with the binds queued for it */
	}
	return r;
}

/*
 * ---- residency before an exec ----
 *
 * A BO bound in a non-LR vm may be evicted while no job of any vm that binds it runs or is
 * pending (vm/migrate.c): its mappings then point at its SYSTEM copy. One whose placements exclude
 * SYSTEM must be back in VRAM before the next exec of such a vm runs: the exec's call finds it
 * (vmb_vm_exec_residency) and submits a restore job (vmb_vm_restore: moves to VRAM, ordered as a
 * PREFETCH's, on no queue), which the exec's job follows through vm->resident_last, as it follows
 * every pending eviction or restore that re-maps in its vm. An eviction of such a BO still
 * running is waited for in the call (device work) before its restore is prepared (one move of a
 * BO at a time).
 */
int vmb_vm_exec_residency(struct vmb_vm *vm, struct vmb_fence **fence, int (*dep)(struct vmb_fence *f, void *arg),
			  void *arg)
{
	struct vmb_list *pos;

	*fence = NULL;
	vmb_lock_assert_held(&vm->dev->lock); /* resident_last (vm.h) */
	/* BOs misplaced, or about to be (an eviction prepared and not ended: its BO is not
	 * misplaced until it commits, and an exec that only followed it would run with the BO
	 * out of VRAM) */
	if (vmb_vm_residency_unsettled(vm)) {
		vmb_vm_assert_locked(vm); /* vmb_vm_exec_needs_lock said so */
		vmb_list_for_each(pos, &vm->vm_bos) {
			struct vmb_vm_bo *vb = vmb_container_of(pos, struct vmb_vm_bo, vm_link);
			struct vmb_bo *bo = vb->bo;
			struct vmb_bind_job *j = bo_move_job(bo);
			if (vmb_list_empty(&vb->vas))
				continue; /* not mapped here (any more) */
			if (j && j->evict && !(bo->placements & (1u << bo->planned_region))) {
				*fence = j->sj.done;
				vmb_fence_get(*fence);
				return 2;
			}
			if (!j && !(bo->placements & (1u << bo->region)))
				return 1;
			/* misplaced, and a pending move (a restore, perhaps behind a gated bind of
			 * another vm) brings it back: the exec follows it; resident_last alone may be a
			 * newer restore of another BO that does not follow it (another vm's) */
			int err;
			if (j && !(bo->placements & (1u << bo->region)) && (err = dep(j->sj.done, arg)))
				return err;
		}
	}
	struct vmb_fence *f = vm->resident_last;
	if (f && !vmb_fence_is_signalled(f)) {
		vmb_fence_get(f);
		*fence = f;
	}
	return 0;
}

/* Under the device lock exclusive: a restore job for @vm's evicted BOs (submitted: 0), 1 (wait
 * for @w: evictions of BOs it maps still running, up to WAIT_MAX of them; what else failed is
 * tried again after them), or an errno with @w empty (-ENOSPC: w->evict_want). */
static int restore_step(struct vmb_vm *vm, struct waits *w)
{
	struct vmb_list *pos;
	int err = 0;

	struct vmb_bind_job *job = job_new(vm, &vm->default_queue);
	if (!job)
		return -ENOMEM;
	job->restore = true;
	job->moves_ok = true;
	vmb_list_for_each(pos, &vm->vm_bos) {
		struct vmb_vm_bo *vb = vmb_container_of(pos, struct vmb_vm_bo, vm_link);
		struct vmb_bind_job *j = bo_move_job(vb->bo);
		if (vmb_list_empty(&vb->vas))
			continue;
		if (j) {
			/* up to WAIT_MAX of them (then enough to wait for: @w holds no more) */
			if (j->evict && collect_unsignalled(j->sj.done, w))
				break;
			continue;
		}
		if ((err = op_restore(job, vb->bo)))
			break;
	}
	w->evict_want = job->evict_want;
	if (err || w->n || !job->moves) {
		job->prepared = true; /* its moves undone */
		job_abort(job);
		/* evictions running first, whatever failed after them (they make room): the caller
		 * waits for @w's fences (references) and tries again; an errno only with @w empty */
		return w->n ? 1 : err;
	}
	job->trace.kind = VMB_TRACE_EVICT;
	struct vmb_bind_syncs own = {0};
	return bind_async(job, NULL, 0, true, &own, NULL, NULL, NULL, NULL);
}

int vmb_vm_restore(struct vmb_vm *vm, struct vmb_stop *stop)
{
	struct vmb_device *dev = vm->dev;
	unsigned int evict_rounds = 0;
	int r;

	vmb_dev_lock(dev);
	for (;;) {
		struct waits w = {.n = 0};
		struct vmb_fence *f = NULL;
		if (vm->closed) {
			r = -ENOENT;
			break;
		}
		if (atomic_load(&vm->banned)) {
			r = -EIO;
			break;
		}
		r = restore_step(vm, &w);
		if (r == -ENOSPC && w.evict_want && evict_rounds++ < EVICT_ROUNDS) {
			/* none of @vm's own: they are to be resident together */
			if ((r = evict_submit(vm, &vm->default_queue, w.evict_want, vm, &(struct vmb_bind_syncs){0}, &f)))
				break;
			w.v[0] = f;
			w.n = 1;
			r = 1;
		}
		if (r != 1)
			break;
		vmb_dev_unlock(dev);
		int err = 0;
		for (unsigned int i = 0; i < w.n; i++) {
			if (!err)
				err = vmb_fence_wait_stop(w.v[i], VMB_FENCE_FOREVER, true, stop);
			vmb_fence_unref(w.v[i]);
		}
		vmb_dev_lock(dev);
		if ((r = err))
			break;
	}
	vmb_dev_unlock(dev);
	return r;
}

/* A pending job of the device that moves BOs and maps in @vm (its own or a re-mapping), or NULL. */
static struct vmb_bind_job *moves_into(struct vmb_vm *vm)
{
	struct vmb_list *pos;
	vmb_list_for_each(pos, &vm->dev->pending) {
		struct vmb_bind_job *job = vmb_container_of(pos, struct vmb_bind_job, dev_link);
		if (job->moves && job_remaps_in(job, vm))
			return job;
	}
	return NULL;
}

bool vmb_vm_remaps_pending(struct vmb_vm *vm)
{
	vmb_lock_assert_excl(&vm->dev->lock);
	return moves_into(vm) != NULL;
}

static int first_mover(struct vmb_bind_job *m, void *arg)
{
	*(struct vmb_bind_job **)arg = m;
	return 1;
}

/* A pending job that moves a BO which a pending job of @vm maps, and which that job follows
 * (job_movers_each), or NULL. The device lock exclusive. */
static struct vmb_bind_job *moves_mapped(struct vmb_vm *vm)
{
	struct vmb_bind_job *m = NULL;
	struct vmb_list *pos;
	vmb_list_for_each(pos, &vm->pending) {
		if (job_movers_each(vmb_container_of(pos, struct vmb_bind_job, vm_link), first_mover, &m))
			break;
	}
	return m;
}

/* The first pending job of the chain of moves that @job (moving BOs) is in: the job of a
 * previous pending move of a BO it moves (another job's, which it follows: vm/migrate.c), of that
 * one's, and so on; @job if none. The device lock exclusive. */
static struct vmb_bind_job *chain_first(struct vmb_bind_job *job)
{
	for (;;) {
		struct job_move *prev = NULL;
		for (struct job_move *m = job->moves; m && !prev; m = m->next)
			prev = move_prev_foreign(m);
		if (!prev)
			return job;
		job = prev->job;
	}
}

/*
 * @job's queue's previous bind if it has committed (it left vm->pending) but its fence has not
 * signalled yet (its thread writes its user fences and signals with no lock held: soon, waiting
 * for nothing); NULL if there is none, or it is still pending (it runs first, in turn). A job
 * cancelled before then would complete before it, against the queue's order.
 */
static struct vmb_fence *queue_prev_signalling(struct vmb_bind_job *job)
{
	const struct vmb_fence *me = job->sj.done;
	for (unsigned int i = 0; i < job->sj.ndeps; i++) {
		struct vmb_fence *f = job->sj.deps[i].fence;
		if (!me->context || f->context != me->context || vmb_fence_is_signalled(f))
			continue;
		struct vmb_list *pos;
		vmb_list_for_each(pos, &job->vm->pending)
			if (vmb_container_of(pos, struct vmb_bind_job, vm_link)->sj.done == f)
				return NULL;
		return f;
	}
	return NULL;
}

/*
 * Run every pending job of @vm now, in order (see vm.h); the device lock is held exclusively (a
 * worker that started a job waits for it, shared, to commit: the wait below drops it). First, if
 * @vm has pending jobs, a pending PREFETCH that re-maps in @vm (@vm's later jobs follow it, and
 * would otherwise run before it), or that moves a BO which a pending asynchronous MAP of @vm maps
 * (that MAP follows it: run first, it would map the BO where the move then frees it): cancelled
 * if its copies were not handed over yet (it commits nothing, and no job maps its new backings),
 * else waited for (device work).
 */
void vmb_vm_drain(struct vmb_vm *vm)
{
	vmb_lock_assert_excl(&vm->dev->lock);
	struct vmb_device *dev = vm->dev;
	for (;;) {
		if (vmb_list_empty(&vm->pending))
			break;
		struct vmb_bind_job *job = moves_into(vm);
		if (!job)
			job = moves_mapped(vm);
		if (job) /* a move behind another job's: that one first (it ran first anyway) */
			job = chain_first(job);
		if (!job)
			job = vmb_container_of(vm->pending.next, struct vmb_bind_job, vm_link);
		struct vmb_fence *prev = queue_prev_signalling(job);
		if (!prev && vmb_sched_job_claim(&job->sj)) {
			vmb_sched_job_disarm(&job->sj);
			job->caller_locked = true;
			vmb_sched_run_claimed(&job->sj);
		} else {
			/* a worker started it and waits for the lock: let it finish; or its queue's
			 * previous bind, committed, still signals: that one first */
			struct vmb_fence *f = prev ? prev : job->sj.done;
			vmb_fence_get(f);
			vmb_dev_unlock(dev);
			vmb_fence_wait(f, VMB_FENCE_FOREVER, false);
			vmb_dev_lock(dev);
			vmb_fence_unref(f);
		}
	}
}
