/* SPDX-License-Identifier: MIT */
/* The scheduler; the design is in sched.h. */
#include "sched/sched.h"

#include <errno.h>
#include <sched.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/env.h"
#include "core/lock.h"

static void run_job(struct vmb_sched_job *job);

/* The calling thread's run-here scope (sched.h): its depth, how many jobs it took (its budget:
 * at most VMB_SCHED_HERE_MAX, those made ready while its end runs them included) and those jobs,
 * in the order they became ready. Thread-local. */
static _Thread_local struct {
	unsigned int depth;
	unsigned int taken;
	struct vmb_sched_job *jobs[VMB_SCHED_HERE_MAX];
} here;

/* A job becomes ready on this thread: claimed for its run-here scope if its budget allows. */
static bool here_take(struct vmb_sched_job *job)
{
	if (!here.depth || here.taken == VMB_SCHED_HERE_MAX)
		return false;
	here.jobs[here.taken++] = job;
	return true;
}

/* Puts a ready job on the ready list (s->lock held); whether a worker must be woken. */
static bool ready_add(struct vmb_sched *s, struct vmb_sched_job *job)
{
	vmb_list_add_tail(&job->link, &s->ready);
	unsigned int n = atomic_fetch_add(&s->nready, 1) + 1;
	/* a poller takes one job; more than that needs a sleeper too */
	return s->sleepers && (!atomic_load(&s->spinning) || n > 1);
}

/* Puts a waiting job on the ready list, or claims it for the thread's run-here scope; wakes a
 * worker unless one is polling. */
static void make_ready(struct vmb_sched_job *job)
{
	struct vmb_sched *s = job->sched;
	bool wake = false, now = false;
	pthread_mutex_lock(&s->lock);
	if (atomic_load(&job->state) == VMB_JOB_WAITING && job->ops->inline_run) {
		job->ready_ns = vmb_now_ns();
		atomic_store(&job->state, VMB_JOB_CLAIMED);
		now = true;
	} else if (atomic_load(&job->state) == VMB_JOB_WAITING) {
		job->ready_ns = vmb_now_ns();
		if (here_take(job))
			atomic_store(&job->state, VMB_JOB_CLAIMED); /* nobody else runs it now */
		else
			wake = ready_add(s, job);
	}
	pthread_mutex_unlock(&s->lock);
	if (wake)
		pthread_cond_signal(&s->cond);
	if (now)
		run_job(job);
}

static void dep_put(struct vmb_sched_job *job)
{
	if (atomic_fetch_sub(&job->pending, 1) == 1)
		make_ready(job);
}

static void dep_signalled(struct vmb_fence *f, struct vmb_fence_cb *cb)
{
	(void)f;
	dep_put(vmb_container_of(cb, struct vmb_sched_dep, cb)->job);
}

void vmb_sched_job_complete(struct vmb_sched_job *job, int error)
{
	vmb_signalling_begin();
	vmb_fence_signal(job->done, error);
	vmb_signalling_end();
	job->ops->release(job);
}

static void run_job(struct vmb_sched_job *job)
{
	vmb_signalling_begin();
	int err = job->ops->run(job);
	vmb_signalling_end();
	if (err != VMB_SCHED_DETACHED)
		vmb_sched_job_complete(job, err);
}

/* Someone outside the scheduler needs the CPUs now (see sched.h). */
static bool cpu_busy(const struct vmb_sched *s)
{
	return s->cpu_busy && atomic_load_explicit(s->cpu_busy, memory_order_relaxed) > 0;
}

/* Poll for a ready job for a while, if polling pays (spin_pays) and no other worker polls;
 * true if one showed up. A poll that finds nothing turns polling off until it pays again. */
static bool poll_ready(struct vmb_sched *s)
{
	bool no = false;
	if (s->spin_ns <= 0 || !atomic_load_explicit(&s->spin_pays, memory_order_relaxed) || cpu_busy(s) ||
	    !atomic_compare_exchange_strong(&s->spinning, &no, true))
		return false;
	int64_t end = vmb_now_ns() + s->spin_ns;
	bool found = false;
	for (unsigned int i = 0; !found; i++) {
		found = atomic_load_explicit(&s->nready, memory_order_relaxed) != 0;
		if ((i & 15) == 15) {
			if (vmb_now_ns() > end || cpu_busy(s))
				break;
			/* give the CPU to whoever else can run here (the submitter, on a busy machine) */
			sched_yield();
		}
		vmb_cpu_relax();
	}
	if (!found)
		atomic_store_explicit(&s->spin_pays, false, memory_order_relaxed);
	atomic_store(&s->spinning, false);
	return found;
}

static void *worker(void *arg)
{
	struct vmb_sched *s = arg;
	for (;;) {
		if (atomic_load_explicit(&s->nready, memory_order_relaxed) == 0)
			poll_ready(s);
		pthread_mutex_lock(&s->lock);
		int64_t slept = 0;
		while (vmb_list_empty(&s->ready) && vmb_list_empty(&s->deferred) && !s->stop) {
			if (!slept && s->spin_ns > 0)
				slept = vmb_now_ns();
			s->sleepers++;
			pthread_cond_wait(&s->cond, &s->lock);
			s->sleepers--;
		}
		/* woken for work that came within a poll's time: polling would have taken it
		 * without this wake-up */
		if (slept && !s->stop && vmb_now_ns() - slept < s->spin_ns)
			atomic_store_explicit(&s->spin_pays, true, memory_order_relaxed);
		if (!vmb_list_empty(&s->deferred)) {
			struct vmb_sched_work *w = vmb_container_of(s->deferred.next, struct vmb_sched_work, link);
			vmb_list_del(&w->link);
			atomic_fetch_sub(&s->nready, 1);
			pthread_mutex_unlock(&s->lock);
			w->func(w);
			continue;
		}
		if (vmb_list_empty(&s->ready)) {
			pthread_mutex_unlock(&s->lock);
			break; /* stop, and nothing left */
		}
		struct vmb_sched_job *job = vmb_container_of(s->ready.next, struct vmb_sched_job, link);
		vmb_list_del(&job->link);
		vmb_list_init(&job->link);
		atomic_fetch_sub(&s->nready, 1);
		atomic_store(&job->state, VMB_JOB_CLAIMED);
		pthread_mutex_unlock(&s->lock);
		/* an engine that its signals make busy starts here, not by a wake-up; then a job
		 * (a queue's next bind) that they make ready runs here too */
		vmb_sched_here_begin();
		vmb_sched_kick_begin();
		run_job(job);
		vmb_sched_kick_end();
		vmb_sched_here_end(true);
	}
	return NULL;
}

int vmb_sched_init(struct vmb_sched *s, unsigned int nthreads, const atomic_int *cpu_busy)
{
	uint64_t spin_us;
	memset(s, 0, sizeof(*s));
	if (nthreads < 1 || nthreads > sizeof(s->threads) / sizeof(s->threads[0]))
		return -EINVAL;
	int err = vmb_env_get(VMB_ENV_SCHED_SPIN_US, &spin_us);
	if (err)
		return err;
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->cond, NULL);
	vmb_list_init(&s->ready);
	vmb_list_init(&s->deferred);
	atomic_init(&s->nready, 0);
	atomic_init(&s->spinning, false);
	atomic_init(&s->spin_pays, false);
	s->cpu_busy = cpu_busy;
	atomic_init(&s->contexts, 0);
	s->spin_ns = (int64_t)spin_us * 1000; /* at most 10^6 us (core/env.c) */
	for (unsigned int i = 0; i < nthreads; i++) {
		if (vmb_thread_create(&s->threads[i], worker, s)) {
			vmb_sched_fini(s);
			return -EAGAIN;
		}
		s->nthreads++;
	}
	return 0;
}

void vmb_sched_fini(struct vmb_sched *s)
{
	pthread_mutex_lock(&s->lock);
	s->stop = true;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
	for (unsigned int i = 0; i < s->nthreads; i++)
		pthread_join(s->threads[i], NULL);
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->cond);
}

int vmb_sched_job_init(struct vmb_sched_job *job, struct vmb_sched *s, const struct vmb_sched_job_ops *ops)
{
	return vmb_sched_job_init_from(job, s, ops, NULL);
}

int vmb_sched_job_init_from(struct vmb_sched_job *job, struct vmb_sched *s, const struct vmb_sched_job_ops *ops,
			    struct vmb_sched_entity *e)
{
	bool armed = vmb_fault_armed(); /* then the allocations below are made, for the harness */

	memset(job, 0, offsetof(struct vmb_sched_job, deps_small));
	if (!armed) {
		job->deps = job->deps_small;
		job->cap_deps = VMB_SCHED_DEPS_INLINE;
	}
	if (e && e->spare && !armed) {
		job->done = e->spare;
		e->spare = NULL;
		vmb_fence_init(job->done);
	} else {
		job->done = vmb_fence_create();
	}
	if (!job->done)
		return -ENOMEM;
	job->ops = ops;
	job->sched = s;
	atomic_init(&job->pending, 1);
	atomic_init(&job->state, VMB_JOB_WAITING);
	vmb_list_init(&job->link);
	return 0;
}

int vmb_sched_job_add_dep(struct vmb_sched_job *job, struct vmb_fence *f)
{
	if (!f || vmb_fence_is_signalled(f))
		return 0;
	for (unsigned int i = 0; i < job->ndeps; i++) {
		struct vmb_fence *d = job->deps[i].fence;
		if (d == f || vmb_fence_is_later(d, f))
			return 0;
		if (vmb_fence_is_later(f, d)) { /* the later one covers the earlier */
			vmb_fence_get(f);
			job->deps[i].fence = f;
			vmb_fence_unref(d);
			return 0;
		}
	}
	if (job->ndeps == job->cap_deps) {
		unsigned int cap = job->cap_deps ? job->cap_deps * 2 : 4;
		bool small = job->deps == job->deps_small;
		struct vmb_sched_dep *d = vmb_realloc(small ? NULL : job->deps, cap * sizeof(*d));
		if (!d)
			return -ENOMEM;
		if (small) /* before arming: no callback points into deps_small yet */
			memcpy(d, job->deps_small, job->ndeps * sizeof(*d));
		job->deps = d;
		job->cap_deps = cap;
	}
	vmb_fence_get(f);
	job->deps[job->ndeps++] = (struct vmb_sched_dep){.fence = f, .job = job};
	return 0;
}

static void drop_deps(struct vmb_sched_job *job)
{
	for (unsigned int i = 0; i < job->ndeps; i++)
		vmb_fence_unref(job->deps[i].fence);
	if (job->deps != job->deps_small)
		free(job->deps);
	job->deps = NULL;
	job->ndeps = job->cap_deps = 0;
}

void vmb_sched_job_fini(struct vmb_sched_job *job)
{
	drop_deps(job);
	vmb_fence_unref(job->done);
	job->done = NULL;
}

int vmb_sched_job_after(struct vmb_sched_job *job, struct vmb_sched_entity *e)
{
	int err = vmb_sched_job_add_dep(job, e->last);
	if (err)
		return err;
	if (!e->context)
		e->context = atomic_fetch_add(&job->sched->contexts, 1) + 1;
	/* before anyone else sees the fence (out-syncs are installed after this) */
	job->done->context = e->context;
	job->done->seqno = ++e->seqno;
	return 0;
}

void vmb_sched_entity_push(struct vmb_sched_entity *e, struct vmb_sched_job *job)
{
	struct vmb_fence *old = e->last;
	vmb_fence_get(job->done);
	e->last = job->done;
	/* the last reference (its job released, nobody waiting or holding it): its memory is kept
	 * for the entity's next job, not freed (one; every `last` is a job's vmb_fence_create) */
	if (old && vmb_fence_put(old)) {
		if (e->spare)
			free(old);
		else
			e->spare = old;
	}
}

void vmb_sched_entity_fini(struct vmb_sched_entity *e)
{
	vmb_fence_unref(e->last);
	e->last = NULL;
	free(e->spare);
	e->spare = NULL;
}

void vmb_sched_submit(struct vmb_sched_job *job)
{
	/* the deps array is final now: callbacks may point into it */
	atomic_store(&job->pending, job->ndeps + 1);
	for (unsigned int i = 0; i < job->ndeps; i++) {
		struct vmb_sched_dep *d = &job->deps[i];
		if (vmb_fence_add_callback(d->fence, &d->cb, dep_signalled) == -ENOENT)
			dep_put(job);
	}
	dep_put(job);
}

void vmb_sched_here_begin(void)
{
	here.depth++;
}

/* The outermost scope's end (here.depth 0) with jobs taken: runs them or hands them over. */
static void here_run(bool run, int64_t until)
{
	/* still open while its jobs run: those they make ready join them, within the budget */
	here.depth = 1;
	for (unsigned int i = 0; i < here.taken; i++) {
		struct vmb_sched_job *job = here.jobs[i];
		if (run && i && until != INT64_MAX && vmb_now_ns() >= until)
			run = false; /* out of time: this one and the rest go to the workers */
		if (run) { /* as a worker runs it */
			vmb_sched_kick_begin();
			run_job(job);
			vmb_sched_kick_end();
			continue;
		}
		struct vmb_sched *s = job->sched;
		pthread_mutex_lock(&s->lock);
		atomic_store(&job->state, VMB_JOB_WAITING); /* a worker's to take, or a drain's */
		bool wake = ready_add(s, job);
		pthread_mutex_unlock(&s->lock);
		if (wake)
			pthread_cond_signal(&s->cond);
	}
	here.taken = 0;
	here.depth = 0;
}

void vmb_sched_here_end(bool run)
{
	if (--here.depth || !here.taken)
		return;
	here_run(run, INT64_MAX);
}

bool vmb_sched_here_end_keep(void)
{
	--here.depth;
	return !here.depth && here.taken;
}

unsigned int vmb_sched_here_kept(void)
{
	return here.depth ? 0 : here.taken;
}

void vmb_sched_here_flush(bool run)
{
	if (!here.depth && here.taken)
		here_run(run, INT64_MAX);
}

void vmb_sched_here_flush_until(int64_t until)
{
	if (!here.depth && here.taken)
		here_run(true, until);
}

bool vmb_sched_job_claim(struct vmb_sched_job *job)
{
	struct vmb_sched *s = job->sched;
	bool mine = false;
	pthread_mutex_lock(&s->lock);
	if (atomic_load(&job->state) == VMB_JOB_WAITING) {
		atomic_store(&job->state, VMB_JOB_CLAIMED);
		if (!vmb_list_empty(&job->link)) {
			vmb_list_del(&job->link);
			vmb_list_init(&job->link);
			atomic_fetch_sub(&s->nready, 1);
		}
		mine = true;
	}
	pthread_mutex_unlock(&s->lock);
	return mine;
}

void vmb_sched_job_disarm(struct vmb_sched_job *job)
{
	/* a callback that already ran counted down a job nobody will make ready any more */
	for (unsigned int i = 0; i < job->ndeps; i++)
		vmb_fence_remove_callback(job->deps[i].fence, &job->deps[i].cb);
}

void vmb_sched_run_claimed(struct vmb_sched_job *job)
{
	run_job(job);
}

void vmb_sched_defer(struct vmb_sched *s, struct vmb_sched_work *w)
{
	pthread_mutex_lock(&s->lock);
	vmb_list_add_tail(&w->link, &s->deferred);
	unsigned int n = atomic_fetch_add(&s->nready, 1) + 1;
	bool wake = s->sleepers && (!atomic_load(&s->spinning) || n > 1);
	pthread_mutex_unlock(&s->lock);
	if (wake)
		pthread_cond_signal(&s->cond);
}

/* The calling thread's kick scope (sched.h): its depth, its kicks (a LIFO list, run in the
 * order queued), and whether its kicks are running (no new ones then). Thread-local: no lock. */
static _Thread_local struct {
	unsigned int depth;
	bool running;
	struct vmb_sched_kick *head;
} kicks;

void vmb_sched_kick_begin(void)
{
	kicks.depth++;
}

void vmb_sched_kick_end(void)
{
	if (--kicks.depth || !kicks.head)
		return;
	struct vmb_sched_kick *rev = NULL;
	for (struct vmb_sched_kick *k = kicks.head, *next; k; k = next) {
		next = k->next;
		k->next = rev;
		rev = k;
	}
	kicks.head = NULL;
	kicks.running = true;
	for (struct vmb_sched_kick *k = rev, *next; k; k = next) {
		next = k->next; /* k may be queued again by someone else once func has run */
		k->func(k);
	}
	kicks.running = false;
}

bool vmb_sched_kick_defer(struct vmb_sched_kick *k)
{
	if (!kicks.depth || kicks.running)
		return false;
	k->next = kicks.head;
	kicks.head = k;
	return true;
}
