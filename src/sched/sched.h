/* SPDX-License-Identifier: MIT */
/*
 * The scheduler: a few worker threads per device run jobs from entities (queues).
 *
 * - A job carries its dependencies (fences) and its out-fence `done`. It becomes ready when
 *   every dependency has signalled: each dependency has a callback, embedded in the job, that
 *   counts down; the last one puts the job on the device's ready list. No thread waits on a
 *   dependency, so a queue blocked on a fence holds up nothing else, and there is no thread per
 *   queue.
 * - FIFO per entity: a job submitted on an entity depends on the entity's previous job's `done`.
 * - A worker takes ready jobs in the order they became ready, runs job->ops->run() inside a
 *   signalling section (no allocation, no waiting), signals `done` with its result, then calls
 *   job->ops->release().
 * - Hand-off: waking a sleeping thread costs microseconds (more in a VM), paid by the thread
 *   that makes a job ready. So one worker at a time, after its last job, polls for new work for
 *   a short while before it sleeps; a job made ready meanwhile is taken without any wake-up.
 *   Only one polls, so the others (and the application) keep the CPUs. Polling is adaptive:
 *   it is off until it would have paid (a worker was woken for work that came less than the
 *   poll time after it went to sleep), and a poll that finds nothing turns it off again, so a
 *   workload whose jobs start without a hand-off (binds committed in the call, engines started
 *   by their signaller) or come far apart never polls. Nobody polls while the
 *   count `cpu_busy` that the scheduler's owner gives it is above 0 (a device whose own threads
 *   run work on the host CPUs counts them there): on a small machine the poller took the CPU
 *   such a thread needed (bench pipeline: 1.8-2.0x -> 2.2-2.3x).
 * - Deferred work (vmb_sched_defer): what may not run where it arises (a fence callback that
 *   would take the device lock, such as freeing an exec queue after its last job) runs on a
 *   worker, before the ready jobs; workers run all of it before they stop.
 * - A job can be claimed by someone else before a worker runs it (vmb_sched_job_claim: a vm
 *   being destroyed runs its pending binds itself); then the worker skips it.
 *
 * - Deferred starts (vmb_sched_kick_*): waking a sleeping engine thread costs as much as waking
 *   a worker. A thread that opens a kick scope (the bind and exec calls, once their locks are
 *   dropped; a worker around a job) lets a device engine that is idle when a job is handed to
 *   it (in a signalling path, where it may not run it) put a kick on the thread's own list
 *   instead of waking its thread; when the outermost scope ends, the thread runs each kick
 *   (the engine's first time slice of its new jobs) and only then wakes the engine thread for
 *   what is left. Kicks made while a scope's kicks run are refused (the engine wakes its
 *   thread): a thread runs at most one kick per engine per scope, bounded work.
 * - Run-here scopes (vmb_sched_here_*): the same for the scheduler's own jobs. A thread that
 *   signals fences and would otherwise wake a worker for each job its signal makes ready (a
 *   worker after its job, a soft engine thread after an exec, the CUDA device's fence watcher)
 *   opens a run-here scope: a job (not inline_run) that becomes ready on that thread while the
 *   scope is open is claimed for it (VMB_JOB_CLAIMED, off the ready list, so nobody else runs
 *   it; a vm drain waits for its fence as for a worker's job) instead of put on the ready list;
 *   when the outermost scope ends (no lock held), the thread runs them in the order they became
 *   ready, each as a worker does (signalling section, its own kick scope), or, if the caller
 *   says so (an engine with jobs of its own to run), hands them to the workers as make_ready
 *   would have. A job made ready while they run joins them (an unmap's signal makes the map
 *   that waited for it ready: both run without a wake-up). Bounded: a scope takes at most
 *   VMB_SCHED_HERE_MAX jobs in all; the others go to the workers.
 *   Order is kept: a job becomes ready only once its queue's previous job has signalled.
 *   A thread with work of its own to do first may keep the jobs instead (claimed, on the
 *   thread: vmb_sched_here_end_keep) and run them later, when it would otherwise sleep (a soft
 *   engine's thread, in its next DELAY), or hand them over (vmb_sched_here_flush): it flushes
 *   them before it waits for anything.
 *
 * Locking: `lock` protects `ready`, `deferred` and `stop`; a job's `state` and `pending` are atomic; an
 * entity's `last` is protected by whoever submits on it (the device lock for bind queues).
 */
#ifndef VMB_SCHED_SCHED_H
#define VMB_SCHED_SCHED_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "core/list.h"
#include "sync/fence.h"

struct vmb_sched_job;

/* run() returned this: the job went on elsewhere (an engine), which calls vmb_sched_job_complete(). */
#define VMB_SCHED_DETACHED 1

struct vmb_sched_job_ops {
	/* Runs the job (signalling section); returns the error `done` signals with, or
	 * VMB_SCHED_DETACHED. */
	int (*run)(struct vmb_sched_job *job);
	/* After `done` signalled: frees the job. */
	void (*release)(struct vmb_sched_job *job);
	/* run() only hands the job on (to an engine): cheap, never blocks, takes no lock that a
	 * signaller may hold. Then the thread that makes the job ready runs it at once, with no
	 * hand-off to a worker. */
	bool inline_run;
};

struct vmb_sched_dep {
	struct vmb_fence_cb cb;
	struct vmb_fence *fence; /* a reference */
	struct vmb_sched_job *job;
};

enum { VMB_JOB_WAITING, VMB_JOB_CLAIMED };

struct vmb_sched_job {
	const struct vmb_sched_job_ops *ops;
	struct vmb_sched *sched;
	struct vmb_fence *done;       /* the out-fence: a reference */
	struct vmb_sched_dep *deps;   /* ndeps entries, owned by the job: deps_small, or the heap */
	unsigned int ndeps, cap_deps;
	atomic_uint pending;          /* unsignalled deps + 1 until submitted */
	atomic_int state;             /* VMB_JOB_* */
	struct vmb_list link;         /* in sched->ready */
	int64_t ready_ns;             /* when it became ready (statistics, tracing) */
	/* the first VMB_SCHED_DEPS_INLINE dependencies, in the job (most jobs have no more): no
	 * array allocated by the submitting thread and freed by the one that releases the job
	 * (a malloc arena hand-off between threads). Not on a thread whose allocations fault
	 * injection counts (core/alloc.h: the array's allocation is then reached). Left
	 * uninitialised until used */
#define VMB_SCHED_DEPS_INLINE 4
	struct vmb_sched_dep deps_small[VMB_SCHED_DEPS_INLINE];
};

/* A piece of deferred work, embedded in its owner: func(w) runs once on a worker, no lock held. */
struct vmb_sched_work {
	struct vmb_list link;
	void (*func)(struct vmb_sched_work *w);
};

struct vmb_sched_entity {
	struct vmb_fence *last; /* done of the newest job submitted, or NULL */
	uint64_t context;       /* its jobs' fences' context (0 until the first job) */
	uint64_t seqno;         /* the last seqno handed out */
	/* the memory of the fence whose last reference vmb_sched_entity_push dropped (a replaced
	 * `last` nobody else held), for the entity's next job (vmb_sched_job_init_from); NULL: none.
	 * Under the entity's owner's lock, as `last` */
	struct vmb_fence *spare;
};

struct vmb_sched {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct vmb_list ready; /* struct vmb_sched_job.link */
	struct vmb_list deferred; /* struct vmb_sched_work.link */
	bool stop;
	unsigned int sleepers;  /* workers in pthread_cond_wait (lock) */
	atomic_uint nready;     /* entries on `ready` and `deferred`, read without the lock by the
				 * spinner */
	atomic_bool spinning;   /* a worker polls `nready` before it sleeps */
	atomic_bool spin_pays;  /* the last poll found work, or a worker was woken for work less
				 * than spin_ns after it went to sleep (adaptive polling, above) */
	int64_t spin_ns;        /* how long it polls (VMB_SCHED_SPIN_US, default 50 us; 0: never) */
	const atomic_int *cpu_busy; /* the owner's count of threads outside the scheduler that
				     * need the CPUs now: nobody polls while > 0 (NULL: none) */
	atomic_ullong contexts; /* fence contexts handed out to entities */
	unsigned int nthreads;
	pthread_t threads[8];
};

/* Starts @nthreads workers (1..8); @cpu_busy (may be NULL) as above, read while they run. 0 or a
 * negative errno. */
int vmb_sched_init(struct vmb_sched *s, unsigned int nthreads, const atomic_int *cpu_busy);
/* Runs what is ready, then stops and joins the workers. Jobs still waiting must be gone. */
void vmb_sched_fini(struct vmb_sched *s);

/* Sets up @job with its out-fence (a new one: 0 or -ENOMEM). */
int vmb_sched_job_init(struct vmb_sched_job *job, struct vmb_sched *s, const struct vmb_sched_job_ops *ops);
/* The same, the fence made in @e's spare memory if it has one (under the lock that protects @e's
 * `last`), unless fault injection counts this thread's allocations (its countdowns then see the
 * same allocations whatever ran before). */
int vmb_sched_job_init_from(struct vmb_sched_job *job, struct vmb_sched *s, const struct vmb_sched_job_ops *ops,
			    struct vmb_sched_entity *e);
/* Adds a dependency on @f (skipped if signalled, or covered by a later fence of its context
 * already there; replaces an earlier one of its context). Allocates: call before submitting. */
int vmb_sched_job_add_dep(struct vmb_sched_job *job, struct vmb_fence *f);
/* Frees what init and add_dep allocated, for a job that is never submitted. */
void vmb_sched_job_fini(struct vmb_sched_job *job);
/* Orders @job after the entity's previous job; its fence joins the entity's context. Allocates. */
int vmb_sched_job_after(struct vmb_sched_job *job, struct vmb_sched_entity *e);
void vmb_sched_entity_push(struct vmb_sched_entity *e, struct vmb_sched_job *job);
/* Arms the dependencies: the job runs once they have all signalled. Cannot fail. */
void vmb_sched_submit(struct vmb_sched_job *job);
/* Take the job away from the workers: true if it had not started (the caller now runs it). */
bool vmb_sched_job_claim(struct vmb_sched_job *job);
/* For a claimed job: drop the dependency callbacks that have not fired. */
void vmb_sched_job_disarm(struct vmb_sched_job *job);
/* For a claimed job: run it, signal `done` (with what run returned), release it. */
void vmb_sched_run_claimed(struct vmb_sched_job *job);
/* A detached job is over: signal `done` with @error (signalling section), release it. */
void vmb_sched_job_complete(struct vmb_sched_job *job, int error);

void vmb_sched_entity_fini(struct vmb_sched_entity *e);

/* A deferred start (above), embedded in its owner: func(k) runs once, at the end of the
 * thread's outermost kick scope, no lock held. */
struct vmb_sched_kick {
	struct vmb_sched_kick *next;
	void (*func)(struct vmb_sched_kick *k);
};

/* Opens a kick scope on the calling thread (nests); it must hold no lock at the matching end. */
void vmb_sched_kick_begin(void);
/* Closes it; the outermost end runs the kicks queued in it, in order. */
void vmb_sched_kick_end(void);
/* In a scope that is not running its kicks: queues @k (true; not queued already). Else false:
 * the caller starts the work as it would without a scope. No allocation, no waiting. */
bool vmb_sched_kick_defer(struct vmb_sched_kick *k);

/* At most this many jobs are claimed by one run-here scope (sched.h, "Run-here scopes"). */
#define VMB_SCHED_HERE_MAX 2

/* Opens a run-here scope on the calling thread (nests); it must hold no lock at the matching
 * end. */
void vmb_sched_here_begin(void);
/* Closes it; the outermost end runs the jobs claimed in it, in order (@run), or hands them to
 * the workers (!@run). */
void vmb_sched_here_end(bool run);
/* Closes it; the outermost end keeps the jobs claimed in it on the thread, still claimed (nobody
 * else runs them), until vmb_sched_here_flush() (a soft engine's thread: until its next DELAY,
 * when it would sleep). The thread must flush before it waits for anything and before it
 * ends: a vm drain waits for their fences. Whether jobs are kept. */
bool vmb_sched_here_end_keep(void);
/* The jobs a scope's end kept on this thread (0: none). */
unsigned int vmb_sched_here_kept(void);
/* No scope open: runs the kept jobs (@run), as vmb_sched_here_end does, those they make ready
 * joining them within the budget, or hands them to the workers (!@run). No lock held. */
void vmb_sched_here_flush(bool run);
/* The same, running them until @until (vmb_now_ns() clock): the first one runs whatever the
 * time; once @until has passed, the others go to the workers. */
void vmb_sched_here_flush_until(int64_t until);

/* Run @w->func(@w) on a worker soon (callable from signalling paths and fence callbacks: no
 * allocation, no waiting). Not after vmb_sched_fini() has returned. */
void vmb_sched_defer(struct vmb_sched *s, struct vmb_sched_work *w);

#endif
