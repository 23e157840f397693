/* SPDX-License-Identifier: MIT */
/*
 * The soft GPU's engines: one thread each, running exec jobs' command buffers
 * (include/vmbind/cmd.h) through their vm's page tables: the soft command set, or Intel's MI
 * dwords for a request marked `intel` (VMB_EXEC_QUEUE_CMDSET_INTEL; docs/COMMANDS.md, "The
 * Intel command set"), whose MI_ARB_CHECK ends the slice and, in a slice that stored nothing,
 * counts as a wait (so a lone spinner polls instead of spinning a CPU).
 *
 * A job is a device request (struct vmb_dev_exec, dev/device.h) wrapped in the engine's own
 * state of it (struct soft_exec); the engine never calls into exec or vm: it reads and writes
 * memory through its vm's page tables (soft_vm_access) and ends a job by signalling the
 * request's `done` fence with its error, as a GPU's hardware fence. An engine keeps a run list
 * of the jobs handed to it (at most one per exec queue: the scheduler orders a queue's jobs).
 * It runs them round-robin in time slices bounded by work (bytes touched, docs/COMMANDS.md): a
 * slice ends after 1 MiB of work, or 64 KiB once another thread waits for the device lock, or
 * one slice (0.5 ms) of a DELAY. A FILL or COPY of any size runs in 4 KiB pieces across as many
 * slices as it needs; its progress (and its latched operands) stays in the job. Between two
 * slices the device lock is free (the engine lets waiting threads take it first), the job
 * timeout is checked (on the job's wall-clock time and on the modelled time of its work) and a
 * cancelled job (its queue destroyed or banned: the request's flag) ends. A job whose SEM_WAIT
 * is not satisfied yields at once, so a waiting queue never stops the others. When no job can
 * progress, the engine sleeps on the device's user-fence event (every user-fence write by the
 * library wakes it) for at most a poll interval (a fence written by the CPU directly is
 * seen then), or until the nearest DELAY end or job timeout.
 *
 * A slice's commands run under one hold of the device lock shared and of its vm's page tables'
 * walk lock (dev/soft/pt.h, "Locking"), not the vm's lock: a bind's preparation (the VA tree,
 * pins, page reservations: often the longest hold of the vm's lock, in the application's call)
 * runs meanwhile, and neither waits for the other. A bind's commit holds the walk lock from its
 * first operation to its last (on a vm that has had an exec queued: soft.c, `walked`), so a
 * slice sees the page tables between two bind commits, never in the middle of one (a FILL/COPY spanning slices may see a commit between two of its
 * pieces, as a GPU's long copy sees a page-table update).
 *
 * Teardown (soft_engine_stop, from the device's engines_stop before the scheduler stops): the
 * thread ends the jobs it still has with -ECANCELED and is joined; a job submitted after that
 * (a signaller already on its way when the engine stopped) is ended with -ECANCELED at once by
 * its submitter, which holds no device lock then (every exec queue was killed before).
 *
 * Starting without a wake-up: an engine that is idle (no job, its thread asleep) when a job is
 * handed to it by a thread with a kick scope open (sched.h: the bind and exec calls, scheduler
 * workers) is reserved for that thread (owner KICKER) instead of woken, unless the job is known
 * to need the thread anyway (soft_exec.needs_thread: a DELAY or a kick's work among its first
 * commands; the kick would run those on the submitting thread, an application's, and then wake
 * the engine's thread all the same: bench pipeline's bind-heavy case, where the application's
 * thread is the bottleneck, paid ~10k instructions a step for it): once the thread has
 * dropped its locks it runs the engine's first round itself, each new job one time slice of at
 * most KICK_WORK (their jobs are fresh: no DELAY to sleep through, nothing to wait for), then
 * hands the engine back and wakes its thread only if jobs are left. The engine thread runs
 * slices only as owner THREAD, which it takes when it wakes with jobs and the engine is not
 * reserved, and gives up when it goes to sleep idle; at stop it waits for a kicker to finish.
 * The other way round, the engine's thread ends a job in a run-here scope (sched.h): a bind
 * that waited for the job (an unmap after an exec's last read, and the map that waited for that
 * unmap: at most VMB_SCHED_HERE_MAX) runs on the engine's thread once the job's fence is out, no
 * lock held, if the engine has no job left then. Else the thread keeps it (claimed) and runs it
 * in its next DELAY, when it would sleep (the engine's own jobs go first; the time counts as the
 * DELAY's; once the DELAY is over, the binds still kept go to the workers: at most one commit
 * overruns it), or, with no DELAY in that round or the next, hands it to the scheduler's workers, as
 * without the scope; never across a wait of the thread. While its thread runs them the engine is
 * nobody's (owner NONE): a job handed to it then is started by its kicker, not after the binds;
 * if a kicker took it, the thread ends its round and waits for the kicker.
 *
 * Locking: `lock` protects `jobs`, `njobs`, `stop`, `owner`. `waking` (atomic) counts the kickers
 * that, handing the engine back with jobs left, signal `cond` after dropping `lock` (the thread
 * then wakes once, not to wait for the lock); soft_engine_stop waits for it to be 0 after the
 * join, so the engine outlives their signals. `started` is under the device lock: the
 * thread starts with the first exec queue on the engine (soft_engine_open) and stops with the
 * device. `joined` belongs to the thread that tears the device down; the mutex and condition
 * variable live until soft_engine_release().
 */
#ifndef VMB_DEV_SOFT_ENGINE_H
#define VMB_DEV_SOFT_ENGINE_H

#include <pthread.h>
#include <stdbool.h>
#include <vmbind/queue.h>

#include "core/list.h"
#include "dev/core.h"
#include "sched/sched.h"

/* A job on a soft engine: the request and the engine's progress in it. */
struct soft_exec {
	struct vmb_dev_exec base;
	struct vmb_device *dev;
	struct vmb_list link;     /* in the engine's run list */
	uint64_t pc;              /* GPU VA of the next command */
	int64_t delay_end_ns;     /* a DELAY in progress ends then (0: none) */
	bool end_after_delay;     /* the BATCH_END after that DELAY was fetched with it: the job
				   * ends when the DELAY does (engine.c, step) */
	uint64_t work;            /* work done (bytes touched, COMMANDS.md): its modelled time */
	bool in_cmd;              /* a FILL/COPY at pc is in progress: */
	uint64_t cmd[4];          /* its header and operands, as fetched */
	uint64_t cmd_done;        /* its bytes done */
	/* exec_hint's note (soft.c): the host address of the batch's first byte in a region's
	 * arena, always mapped (NULL: none); read once by exec_prefault, before the job runs */
	const volatile uint8_t *prefault;
	/* exec_prefault's reading of the batch's first page (soft_batch_needs_thread): before its
	 * first slice could end, the job reaches a DELAY or a kick's work (the engine's thread has
	 * to be woken for it whatever a kick does), so soft_engine_submit wakes the thread at once
	 * instead of running that slice on the submitting thread. Written before the job is armed */
	bool needs_thread;
};

/* Who runs the engine's time slices (engine.c, "Starting without a wake-up"). */
enum soft_engine_owner { SOFT_OWNER_NONE, SOFT_OWNER_THREAD, SOFT_OWNER_KICKER };

struct soft_engine {
	struct vmb_device *dev;
	struct vmb_engine desc;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct vmb_list jobs; /* struct soft_exec.link */
	unsigned int njobs;
	enum soft_engine_owner owner; /* lock */
	struct vmb_sched_kick kick;   /* queued on a kicker's thread while owner is KICKER */
	atomic_uint waking;           /* kickers signalling `cond` after dropping `lock` */
	bool stop, started, joined;
};

int soft_engine_start(struct soft_engine *e, struct vmb_device *dev, struct vmb_engine desc);
/* Ends the jobs it still has with -ECANCELED and joins the thread (once; later submits are
 * cancelled at once). */
void soft_engine_stop(struct soft_engine *e);
/* Last: frees the lock and condition variable (after soft_engine_stop, or if never started). */
void soft_engine_release(struct soft_engine *e);
void soft_engine_submit(struct soft_engine *e, struct soft_exec *job);
/*
 * Whether a job whose batch starts at @cmd (the host address of its first byte, in a region's
 * arena; soft command set) reaches, among the commands on that 4 KiB page before its
 * BATCH_END, a DELAY of more than 0 ns, or as much work as a kick's slice (KICK_WORK): a kick
 * would then run the job's first commands on the submitting thread and still wake the engine's
 * thread. A hint: the page is read without a lock (the CPU may be writing it; a command that
 * runs off the page, an unknown or malformed one ends the reading: false).
 */
bool soft_batch_needs_thread(const volatile uint8_t *cmd);

/* soft.c: the GPU view of @vm (ops->vm_access), which is also how the engines reach memory;
 * the vm's lock or its walk lock held. */
int soft_vm_access(struct vmb_dev_vm *vm, uint64_t addr, void *data, uint64_t size, uint32_t flags,
		   uint64_t *fault);
/* Where an access of soft_gpu_access() faulted: the first byte that did, and the page-table
 * level whose entry stopped the walk (struct vmb_dev_exec.fault_level). */
struct soft_fault {
	uint64_t addr;
	uint8_t level;
};
/* soft_vm_access with the fault's level: what the engines use. -EFAULT (not mapped) or -EACCES
 * (a write or atomic to a read-only leaf) fill @fault (may be NULL). */
int soft_gpu_access(struct vmb_dev_vm *vm, uint64_t addr, void *data, uint64_t size, uint32_t flags,
		    struct soft_fault *fault);
/* soft.c: the lock of @vm's page tables that an engine holds for a time slice instead of the
 * vm's lock (dev/soft/pt.h, "Locking"). */
struct vmb_mutex *soft_vm_walk_lock(struct vmb_dev_vm *vm);

#endif
