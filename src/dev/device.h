/* SPDX-License-Identifier: MIT */
/*
 * The device interface: what a device (soft today, CUDA later) implements so that the core
 * (vm, bind, BOs) never knows which device it runs on. The core plans; the device applies.
 *
 * Memory: a device owns its regions' physical address space and gives a BO a backing (extents
 * of device physical addresses) in a region; the bytes are the BO's own host pages, which the
 * device reaches at those addresses. A move is a new backing over the same pages: no copy.
 * Page tables: per vm, the device turns map/clear operations into its own page-table writes in
 * two halves: prepare (allocates everything, may fail) and commit (cannot fail).
 * Execution: an exec is device work (struct vmb_dev_exec) that completes a fence the device
 * returns, as drm_sched's run_job; the GPU view is a device op (vm_access). The device never
 * calls into exec or vm.
 *
 * Locking: `lock` is the device lock. It serialises every state-changing entry point of the
 * device's clients (handle tables of BOs and vms, BOs, vms, bind preparation, GPU-view accesses)
 * and the commit of bind jobs by the scheduler's workers. Nobody waits on a fence while holding
 * it, so a job's signalling path may take it (but no fence callback: they run under the fence
 * lock). Lock order: device lock -> client sync lock -> syncobj lock -> fence lock -> exec queue
 * lock -> scheduler lock. `lock_waiters` (atomic) counts the threads
 * other than engines blocked on it, so that a soft engine ends its time slice early and lets them in (a mutex is
 * not fair: no GPU command holds up the CPU API for longer than a slice).
 */
#ifndef VMB_DEV_DEVICE_H
#define VMB_DEV_DEVICE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/alloc.h"
#include "core/list.h"
#include "dev/phys.h"
#include <vmbind/debug.h>
#include <vmbind/queue.h>
#include "sched/sched.h"
#include "sync/event.h"
#include "sync/fence.h"
#include "sync/syncfd.h"

struct vmb_device;
struct vmb_dev_vm; /* a device's per-vm state (soft: page tables) */

/* One page-table change over [start, last]. */
enum vmb_map_kind { VMB_MAP_OP_MAP, VMB_MAP_OP_CLEAR };
#define VMB_MAP_READONLY (1u << 0)
#define VMB_MAP_NULL (1u << 1)
struct vmb_map_op {
	enum vmb_map_kind kind;
	uint32_t flags;                    /* VMB_MAP_* */
	uint64_t start, last;
	const struct vmb_backing *backing; /* MAP without NULL */
	uint64_t offset;                   /* byte of the backing at start */
};

/* A device's record of what one bind prepared in one vm; opaque to the core. */
struct vmb_dev_prep;

/* vm_access's @flags (neither: a read) */
#define VMB_DEV_ACCESS_WRITE (1u << 0)
#define VMB_DEV_ACCESS_ATOMIC_ADD (1u << 1) /* 8 bytes: the u64 to add in, the old value out */

/* What one VA translates to (translate: the consistency check's view of the page tables). */
struct vmb_dev_walk {
	void *cpu;          /* host pointer of the byte (NULL for NULL leaves) */
	uint64_t pa;        /* device physical address of the byte (0 for NULL leaves) */
	uint64_t page_size; /* bytes of the leaf */
	uint64_t page_left; /* bytes from the byte to the end of its leaf */
	bool writable;
	bool null;
};

/*
 * An exec as device work: what the exec layer asks of an engine, and what the device reports
 * back. The device never calls into exec or vm: it runs the command buffer through @vm's page
 * tables (its own), and signals `done` when it is over.
 */
struct vmb_dev_exec {
	/* in, set before exec_run by the exec layer, which keeps @vm alive until `done` signals */
	struct vmb_dev_vm *vm;
	uint64_t batch;   /* GPU VA of the command buffer */
	uint32_t engine;  /* index into dev->engines */
	bool lr;          /* no job timeout (dev->job_timeout_ns otherwise) */
	atomic_bool cancel; /* set by the exec layer at any time (a killed or banned queue): the
			     * device ends the work with -ECANCELED at its next time slice, before
			     * any command if it has not started */
	/* out, written by the device before `done` signals */
	int error;           /* 0, -EFAULT (fault_*), -EINVAL (malformed), -ETIMEDOUT, -ECANCELED */
	uint64_t fault_addr; /* -EFAULT: the first address that faulted */
	bool fault_write;
	int64_t start_ns;    /* its first time slice (0: it never ran) */
	struct vmb_fence *done; /* the device's fence, made by exec_create */
};

struct vmb_dev_vm_stats {
	uint64_t pt_bytes, pt_reserve_bytes;
	uint64_t tables[4];
	uint64_t leaves[4]; /* 4K, 64K, 2M, 1G */
};

struct vmb_device_ops {
	void (*destroy)(struct vmb_device *dev);

	/* memory */
	uint64_t (*region_free)(struct vmb_device *dev, uint32_t region);
	/* Place the BO memory at @host (a MAP_SHARED mapping of @size bytes, which outlives the
	 * backing) in @region: the device reaches those pages at the backing's addresses. */
	int (*backing_alloc)(struct vmb_device *dev, uint32_t region, uint64_t size, const void *host,
			     struct vmb_backing *out); /* 0, -ENOSPC, -ENOMEM */
	/* The device stops reaching the pages there; the pages themselves are not touched. */
	void (*backing_free)(struct vmb_device *dev, uint32_t region, struct vmb_backing *b);

	/* page tables */
	/* @va_size: nothing at or past it translates; @scratch: unmapped bytes read 0 and writes
	 * to them are dropped (VMB_VM_CREATE_SCRATCH_PAGE), for the GPU view and the engines. */
	int (*vm_create)(struct vmb_device *dev, uint64_t va_size, uint64_t page_sizes, bool scratch,
			 struct vmb_dev_vm **out);
	void (*vm_destroy)(struct vmb_device *dev, struct vmb_dev_vm *vm);
	int (*prep_create)(struct vmb_device *dev, struct vmb_dev_prep **out);
	int (*map_prepare)(struct vmb_dev_vm *vm, const struct vmb_map_op *op, struct vmb_dev_prep *p);
	void (*map_commit)(struct vmb_dev_vm *vm, const struct vmb_map_op *op, struct vmb_dev_prep *p);
	/* Releases what @p still holds in @vm, then frees @p. */
	void (*prep_release)(struct vmb_dev_vm *vm, struct vmb_dev_prep *p);
	int (*translate)(struct vmb_dev_vm *vm, uint64_t va, struct vmb_dev_walk *w); /* 0 or -EFAULT */
	/* The GPU view: read @size bytes at @addr into @buf, write them (VMB_DEV_ACCESS_WRITE), or
	 * add atomically (VMB_DEV_ACCESS_ATOMIC_ADD), through the page tables as the device's
	 * engines see them; the device does it however its memory is reached (no CPU pointer
	 * needed). 0, -EFAULT (not mapped, no scratch page) or -EACCES (a write to a read-only
	 * mapping); @fault (may be NULL) gets the address that faulted. Device lock held. */
	int (*vm_access)(struct vmb_dev_vm *vm, uint64_t addr, void *buf, uint64_t size, uint32_t flags,
			 uint64_t *fault);
	uint64_t (*sizes_in)(struct vmb_dev_vm *vm, uint64_t start, uint64_t last);
	void (*vm_stats)(struct vmb_dev_vm *vm, struct vmb_dev_vm_stats *s);
	int (*validate)(struct vmb_device *dev); /* allocators, pools */
	int (*vm_validate)(struct vmb_dev_vm *vm);

	/* execution. engine_open: engine @engine (an index into dev->engines) will get work; called
	 * with the device lock held when an exec queue on it is created, before any exec_run for
	 * it. A device starts what the engine needs there (the soft device: its thread), so that a
	 * client that never executes starts none. 0 or a negative errno (-EAGAIN: no thread).
	 * exec_create: a request (struct vmb_dev_exec, around which the device keeps its own state
	 * of the work) with its `done` fence; 0 or -ENOMEM. Called where allocating is allowed.
	 * exec_run: hand @x to engine x->engine, as drm_sched's run_job: returns x->done, which
	 * the device signals with x->error once the work is over (maybe before exec_run returns).
	 * Signalling path (no allocation, no waiting, no device lock), called under fence locks.
	 * exec_destroy: frees @x, once `done` signalled or if @x never ran; maybe from a callback
	 * of `done` (the device holds its own reference while it signals).
	 * engines_stop: teardown, before the scheduler stops (vmb_device_core_fini): every engine
	 * ends the work it has with -ECANCELED and its thread is joined, so no engine signals a
	 * fence afterwards; a request handed over later (a signaller that was already on its way)
	 * is ended with -ECANCELED in exec_run. Idempotent. */
	int (*engine_open)(struct vmb_device *dev, uint32_t engine);
	int (*exec_create)(struct vmb_device *dev, struct vmb_dev_exec **out);
	struct vmb_fence *(*exec_run)(struct vmb_device *dev, struct vmb_dev_exec *x);
	void (*exec_destroy)(struct vmb_device *dev, struct vmb_dev_exec *x);
	void (*engines_stop)(struct vmb_device *dev);
};

struct vmb_device {
	const struct vmb_device_ops *ops;
	char name[16];
	uint32_t va_bits;
	uint64_t page_sizes;            /* VMB_PAGE_* */
	uint64_t region_capacity[2];    /* by VMB_REGION_* */
	uint64_t region_align[2];
	uint32_t num_engines;
	struct vmb_engine engines[4];   /* class and instance of each */
	pthread_mutex_t lock;           /* see above */
	atomic_uint lock_waiters;       /* threads blocked in vmb_dev_lock(): an engine lets them
					 * in between its time slices (soft/engine.c) */

	/* device-independent parts (dev/core.c), set up by vmb_device_core_init() */
	struct vmb_sched sched;         /* workers running bind (and later exec) jobs */
	atomic_int cpu_busy;            /* the device's own host threads that have work now (soft:
					 * engines with jobs); the scheduler's workers do not poll
					 * while > 0, the CPUs are theirs (sched/sched.h) */
	struct vmb_event ufence_ev;     /* bumped after every user-fence write by the device */
	struct vmb_fence stub;          /* always signalled: out-fence of work done in the call */
	struct vmb_fdwatch fdwatch;     /* imported fence descriptors */
	struct vmb_list pending;        /* bind jobs submitted, not committed (dev_link); dev lock */
	int64_t job_timeout_ns;         /* GPU jobs outside LR vms */
	struct vmb_trace_ring {
		pthread_mutex_t lock;   /* protects the ring; taken in signalling paths (no waits) */
		struct vmb_trace_event *ev;
		uint32_t cap, head, count, dropped;
	} trace;
};

struct vmb_trace_event;
/* Record @e if tracing is on (signalling sections allowed: no allocation). */
void vmb_trace_record(struct vmb_device *dev, const struct vmb_trace_event *e);

/* The device lock, marked as one under which nobody may wait (core/alloc.h). A thread that
 * has to wait for it is counted in lock_waiters meanwhile. */
/* Debug builds: the device lock is before the fence locks, so a fence callback (which runs
 * under its fence's lock) never takes it: abort there (dev/core.c). */
void vmb_dev_lock_check(void);

static inline void vmb_dev_lock(struct vmb_device *dev)
{
	vmb_dev_lock_check();
	if (pthread_mutex_trylock(&dev->lock)) {
		atomic_fetch_add_explicit(&dev->lock_waiters, 1, memory_order_relaxed);
		pthread_mutex_lock(&dev->lock);
		atomic_fetch_sub_explicit(&dev->lock_waiters, 1, memory_order_relaxed);
	}
	vmb_nowait_begin();
}
/* The same lock for a device's own engines, not counted in lock_waiters: engines take turns
 * with each other anyway, and two engines counting each other would end every slice of both
 * early and hand the lock back and forth (bench pipeline 2.1x -> 1.8x). */
static inline void vmb_dev_lock_engine(struct vmb_device *dev)
{
	vmb_dev_lock_check();
	pthread_mutex_lock(&dev->lock);
	vmb_nowait_begin();
}
static inline void vmb_dev_unlock(struct vmb_device *dev)
{
	vmb_nowait_end();
	pthread_mutex_unlock(&dev->lock);
}

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

struct vmb_client_opts;
int vmb_soft_device_create(const struct vmb_client_opts *opts, struct vmb_device **out);

#endif
