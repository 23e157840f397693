/* SPDX-License-Identifier: MIT */
/*
 * A device as the core keeps it: what the device reports (name, VA bits, page sizes, regions,
 * engines), its ops (dev/device.h), the device lock, and the device-independent parts every
 * device has (dev/core.c): the scheduler, the user-fence event, the stub fence, the descriptor
 * watcher, the list of pending bind jobs, the trace ring. A backend embeds struct vmb_device at
 * the start of its own (soft: struct soft_device). Only code that touches these parts includes
 * this header; one that only stores a device or calls nothing of it needs dev/device.h.
 *
 * Locking: `lock` is the device lock, a reader-writer lock (writers first: a waiting writer
 * holds up new readers, so a stream of binds cannot starve a vm's destruction), whose readers
 * write no cache line in common (struct vmb_rwlock, core/lock.h: almost every call takes it
 * shared, so many submitters on many cores do not queue on one line for it).
 *  - Exclusive (vmb_dev_lock): whatever is not one vm's alone: the clients' handle tables of BOs,
 *    vms, bind queues and exec queues (changes), BOs (creation, destruction, CPU maps, export),
 *    vm creation and destruction, exec queue creation and destruction, PREFETCH (a move re-points the BO's mappings
 *    in every vm that maps it and orders after every pending bind of those vms), eviction. An exclusive holder may
 *    touch any vm without that vm's lock.
 *  - Shared (vmb_dev_lock_shared) plus the vm's lock (struct vmb_vm.lock, vm/vm.h): one vm's
 *    work: a bind's lookups (handle tables are only read), preparation and commit (a scheduler
 *    worker commits under them), the GPU view (vmb_vm_access, the queries), an exec's
 *    submission on a queue of the vm where it reads the vm's state (a vm's first exec, and
 *    while BOs are misplaced: vm.h, vmb_vm_exec_needs_lock; otherwise the exec queue's own
 *    submit lock, exec/exec.h). Binds and execs of different vms run in parallel. A
 *    device's engines read a vm's page tables under the device lock shared and the device's
 *    own lock of them, which a commit takes after the vm's lock (device.h: commit_begin; soft:
 *    the walk lock, soft/pt.h), not under the vm's lock.
 *  - `cross_lock` (a mutex, after a vm's lock): what binds of different vms share while they
 *    hold the device lock shared: each BO's vm_bos list (mem/bo.h), the
 *    device's `pending` list. An exclusive holder of the device lock needs it not.
 *  - `lru_lock` (a mutex, after the cross lock, before the region locks): the device's list of
 *    BOs in VRAM that eviction walks (vm/migrate.c).
 * Nobody waits on a fence while holding any of them (checked in debug builds), so a job's
 * signalling path may take them (but no fence callback: they run under the fence lock). Lock
 * order: device lock -> vm lock -> exec queue submit lock -> cross lock (or a soft vm's walk lock) -> (page-table pool, region) -> client sync lock
 * -> syncobj lock -> fence lock -> exec queue lock -> scheduler lock; a vm's fault-log lock
 * (vm/vm.h, struct vmb_vm_faults) is a leaf, taken after the fence lock. Never the device lock twice
 * in one thread (a second read lock waits behind a waiting writer: core/lock.h aborts).
 * `lock_waiters` (atomic) counts the threads other than engines blocked on the device lock, and a
 * soft vm's walk lock its own (struct vmb_mutex), so that a soft engine ends its time slice early
 * and lets them in (a lock is not fair: no GPU command holds up the CPU API for longer than a
 * slice). Taken through vmb_dev_lock*() only: debug builds record the holder (core/lock.h), so
 * a function that needs it checks at its entry (vmb_lock_assert_held(&dev->lock); vm.h:
 * vmb_vm_assert_locked()).
 */
#ifndef VMB_DEV_CORE_H
#define VMB_DEV_CORE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <vmbind/debug.h>
#include <vmbind/queue.h>

#include "core/alloc.h"
#include "core/list.h"
#include "core/lock.h"
#include "dev/device.h"
#include "sched/sched.h"
#include "sync/event.h"
#include "sync/fence.h"
#include "sync/syncfd.h"

struct vmb_device {
	const struct vmb_device_ops *ops;
	char name[16];
	uint32_t va_bits;
	uint64_t page_sizes;            /* VMB_PAGE_* */
	uint64_t min_page_size;         /* the smallest of page_sizes: the granularity of every
					 * address, size and offset of a vm, a bind and a BO */
	uint64_t va_size_default;       /* vmb_vm_create's va_size 0 (soft: 2^va_bits) */
	uint64_t caps;                  /* VMB_CAP_* that depend on the device (client.h) */
	uint64_t region_capacity[2];    /* by VMB_REGION_* */
	uint64_t region_align[2];
	uint32_t num_engines;
	struct vmb_engine engines[4];   /* class and instance of each */
	struct vmb_rwlock lock;         /* see above */
	atomic_uint lock_waiters;       /* threads blocked in vmb_dev_lock*(): an engine lets them
					 * in between its time slices (soft/engine.c) */
	pthread_mutex_t cross_lock;     /* see above; a leaf but for the pool and region locks */
	/* eviction (vm/migrate.c): the BOs with a backing in VRAM (struct vmb_bo.lru_link), least
	 * recently first mapped in a vm first, under lru_lock (a leaf but for the region locks,
	 * taken after the cross lock: a BO's last reference, which unlinks it, may go on any thread
	 * with no device lock); the counters of evictions done (atomics) */
	pthread_mutex_t lru_lock;
	struct vmb_list lru;
	atomic_uint_least64_t evictions, evicted_bytes;
	/* evicted BOs moved back to VRAM (their placements exclude SYSTEM) and their bytes; BOs
	 * living now in a region their placements exclude (evicted, not restored yet); pending
	 * moves that will leave a BO there (evictions prepared, their job not ended: changed
	 * under the device lock exclusive, vm/migrate.c), which an exec's residency check must
	 * see as it sees misplaced BOs (vm/job.c, vmb_vm_exec_residency) */
	atomic_uint_least64_t restores, restored_bytes;
	atomic_uint misplaced, misplacing;

	/* device-independent parts (dev/core.c), set up by vmb_device_core_init() */
	struct vmb_sched sched;         /* workers running bind (and later exec) jobs */
	atomic_int cpu_busy;            /* the device's own host threads that have work now (soft:
					 * engines with jobs); the scheduler's workers do not poll
					 * while > 0, the CPUs are theirs (sched/sched.h) */
	/* notified after every user-fence write by the device; its waiters announce themselves
	 * (sync/event.h: vmb_event_notify_waiters) */
	struct vmb_event ufence_ev;
	struct vmb_fence stub;          /* always signalled: out-fence of work done in the call */
	struct vmb_fdwatch fdwatch;     /* imported fence descriptors */
	/* memory of released bind jobs (vm/job.c) and exec jobs (exec/exec.c), for the next job of
	 * the kind (core/alloc.h, struct vmb_memcache: atomics), so that a job made by the
	 * application and released by a worker or an engine's thread costs no malloc arena hand-off
	 * between threads; the device's, not a queue's: a job's queue may be freed before the job
	 * is released. What is left is freed by vmb_device_core_release() */
	struct vmb_memcache bind_jobs, exec_jobs;
	struct vmb_list pending;        /* bind jobs submitted, not committed (dev_link); device
					 * lock exclusive, or shared + cross_lock */
	int64_t job_timeout_ns;         /* GPU jobs outside LR vms */
	struct vmb_trace_ring {
		pthread_mutex_t lock;   /* protects the ring; taken in signalling paths (no waits) */
		struct vmb_trace_event *ev;
		uint32_t cap, head, count, dropped; /* cap: also read without the lock */
	} trace;

	/* the instance (dev/registry.c): backend, N of "name:N", the backend's page-table memory
	 * (compared for -EBUSY with the sizes above); users and reg_link under the registry lock */
	const struct vmb_backend *backend;
	uint32_t instance;
	uint64_t pt_pool_size;
	uint32_t users;
	struct vmb_list reg_link;
};

struct vmb_trace_event;
/* Record @e if tracing is on (signalling sections allowed: no allocation). */
void vmb_trace_record(struct vmb_device *dev, const struct vmb_trace_event *e);
/* Whether tracing is on now (no lock: a hint for skipping the clock reads of a job not traced;
 * trace.cap is written under trace.lock by vmb_trace_start, atomically). */
static inline bool vmb_trace_on(struct vmb_device *dev)
{
	return __atomic_load_n(&dev->trace.cap, __ATOMIC_RELAXED) != 0;
}

/* The device lock, marked as one under which nobody may wait (core/alloc.h). A thread that
 * has to wait for it is counted in lock_waiters meanwhile. */
/* Debug builds: the device lock is before the fence locks, so a fence callback (which runs
 * under its fence's lock) never takes it: abort there (dev/core.c). */
void vmb_dev_lock_check(void);

static inline void vmb_dev_lock_mode(struct vmb_device *dev, bool excl, bool count)
{
	vmb_dev_lock_check();
	(excl ? vmb_rwlock_wrlock : vmb_rwlock_rdlock)(&dev->lock, count ? &dev->lock_waiters : NULL);
	vmb_lock_note(&dev->lock, excl ? VMB_LOCK_EXCL : VMB_LOCK_SHARED);
	vmb_lock_nowait_begin();
}
/* Exclusive: device-wide state (above). */
static inline void vmb_dev_lock(struct vmb_device *dev) { vmb_dev_lock_mode(dev, true, true); }
/* Shared: one vm's work, with that vm's lock (vm/vm.h). */
static inline void vmb_dev_lock_shared(struct vmb_device *dev) { vmb_dev_lock_mode(dev, false, true); }
/* Shared, for a device's own engines, not counted in lock_waiters: engines take turns with
 * each other anyway, and two engines counting each other would end every slice of both early
 * and hand the lock back and forth (bench pipeline 2.1x -> 1.8x). */
static inline void vmb_dev_lock_engine(struct vmb_device *dev) { vmb_dev_lock_mode(dev, false, false); }
/* Either mode. */
static inline void vmb_dev_unlock(struct vmb_device *dev)
{
	vmb_lock_nowait_end();
	vmb_lock_unnote(&dev->lock);
	vmb_rwlock_unlock(&dev->lock);
}
/* The cross-vm state under the device lock held shared (above); nothing waits under it. */
static inline void vmb_dev_cross_lock(struct vmb_device *dev)
{
	pthread_mutex_lock(&dev->cross_lock);
	vmb_lock_note(&dev->cross_lock, VMB_LOCK_EXCL);
}
static inline void vmb_dev_cross_unlock(struct vmb_device *dev)
{
	vmb_lock_unnote(&dev->cross_lock);
	pthread_mutex_unlock(&dev->cross_lock);
}
/* Debug builds: the caller may touch cross-vm state (the device lock exclusive, or its cross
 * lock). */
#define vmb_dev_assert_cross(dev)                                                                  \
	vmb_lock_assert(vmb_lock_mode(&(dev)->lock) == VMB_LOCK_EXCL ||                           \
			vmb_lock_mode(&(dev)->cross_lock) != VMB_LOCK_NONE)

/* The device lock (writers first) and the cross lock, first thing and last thing of a device. */
void vmb_device_lock_init(struct vmb_device *dev);
void vmb_device_lock_fini(struct vmb_device *dev);
/* Starts the scheduler (VMB_SCHED_WORKERS workers, default 2) and the rest; the job timeout
 * from @opts, VMB_JOB_TIMEOUT_MS or 5 s (core/env.c bounds both knobs). 0 or -errno (-EINVAL: a
 * bad knob; -EAGAIN: no thread). */
struct vmb_client_opts;
int vmb_device_core_init(struct vmb_device *dev, const struct vmb_client_opts *opts);
/* Teardown, once the client's queues are killed and its vms closed: stops the producers of
 * ready jobs first (the descriptor watcher, then the engines, whose last jobs' fences may make
 * bind jobs ready), then the scheduler's workers, which run what is ready before they stop. */
void vmb_device_core_fini(struct vmb_device *dev);
/* Last, from the device's destroy once its engines have stopped: the event and the stub. */
void vmb_device_core_release(struct vmb_device *dev);
/* Write @value at the user fence @addr and wake its waiters (signalling sections allowed). */
void vmb_device_ufence_write(struct vmb_device *dev, uint64_t addr, uint64_t value);
/*
 * The one completion path of a job's out-syncs (bind and exec jobs, and binds done in the call):
 * writes the @nufs user fences @ufs and wakes their waiters (written whatever @error: the job's
 * queue or fence tells what failed), records @trace if not NULL (end_ns now; a start_ns of 0,
 * work that never ran, becomes end_ns too), then signals @sj's fence with @error and releases
 * @sj (NULL: work done in the call, whose out-syncobjs got the stub fence). Signalling sections
 * allowed (no allocation, no waiting); @ufs is read before @sj is released.
 */
struct vmb_ufence_out;
void vmb_device_job_done(struct vmb_device *dev, struct vmb_sched_job *sj, int error,
			 const struct vmb_ufence_out *ufs, unsigned int nufs, struct vmb_trace_event *trace);

#endif
