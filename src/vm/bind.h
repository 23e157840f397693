/* SPDX-License-Identifier: MIT */
/*
 * Binds as the entry points see them: one call, vmb_vm_bind_submit(), behind which the whole bind
 * policy lives (vm/job.c; the engine of a bind in bind.c, BO migration in migrate.c, the pending
 * ranges in pending.c). Above the vm object (vm/vm.h), which needs of it only what vm/vm.h
 * declares.
 *
 * Locking: the device lock protects what these functions change (vm/vm.h, bind.c).
 */
#ifndef VMB_VM_BIND_H
#define VMB_VM_BIND_H

#include <stdbool.h>
#include <stdint.h>

#include "sync/ufence.h"
#include "vm/vm.h"

struct vmb_fence;
struct vmb_fence_set;
struct vmb_stop;

/* One bind operation, validated in shape by the uapi layer, handles resolved. */
struct vmb_bind_req {
	uint32_t op;       /* VMB_BIND_OP_* */
	uint32_t flags;    /* VMB_BIND_FLAG_* */
	struct vmb_bo *bo; /* MAP, UNMAP_ALL */
	uint32_t region;   /* PREFETCH */
	uint64_t offset;   /* MAP: BO offset; MAP_USERPTR: host address */
	uint64_t addr, range;
};

/*
 * What a bind call brings besides its operations, parsed by the caller (uapi/sync.c) into this
 * form so that this layer needs nothing above it.
 */
#define VMB_BIND_UFS_INLINE 4 /* borrowed user fences a job copies (struct vmb_bind_job) */

struct vmb_bind_syncs {
	const struct vmb_fence_set *in; /* fences to wait for (signalled ones are skipped); may be NULL */
	struct vmb_ufence_out *ufs;     /* user fences to write once the bind has committed (vmb_malloc'd):
					 * a submitted job takes them over (then NULL); the caller frees
					 * what is left */
	unsigned int nufs;
	bool ufs_borrowed;              /* ufs is the caller's, not the heap's: a job copies up to
					 * VMB_BIND_UFS_INLINE of them into itself (the pins on BOs go
					 * with them: then NULL); with more, the bind commits in the call */
	/* Out-syncobjs get the bind's fence (the stub when it completed in the call); NULL: none.
	 * Called once, under the device lock, when the bind can no longer fail. */
	void (*install)(void *arg, struct vmb_fence *f);
	/* Called before the call first releases the device lock (to wait, or to retake it
	 * exclusively for a PREFETCH): the caller takes references on the objects it looked up
	 * under it (uapi/vm.c), which the lock kept alive until then. May be NULL. */
	void (*hold)(void *arg);
	struct vmb_stop *stop;          /* ends the call's waits with its errno (-ENODEV at close) */
	/* After each wait: an object the call holds was destroyed meanwhile (-ENOENT). May be NULL. */
	bool (*gone)(void *arg);
	void *arg;
	/* The bind's trace record's labels: the caller's handle of the vm and its queue id (objects
	 * store no client's handle). */
	uint32_t trace_vm_id, trace_queue_id;
};

/*
 * At most this many binds wait to commit per bind queue: an asynchronous call beyond it first
 * waits (interruptibly, the lock dropped) for the queue's own oldest pending bind, as a kernel
 * scheduler's credit limit makes a submitter wait for its own ring. Per queue, so that a queue's
 * backlog never holds up calls on another queue (docs/UAPI.md). It bounds the memory a queue's
 * pending binds hold.
 */
#define VMB_BIND_QUEUE_PENDING_MAX 1024u

/*
 * Runs a bind of @n operations (@n 0 with @async: a barrier) on @q of @vm, all or nothing; the
 * whole bind policy. Called with the device lock held shared, not @vm's lock (the caller holds
 * references on @vm, @q and the requests' BOs); takes @vm's lock for the bind (a PREFETCH: the
 * device lock exclusively instead), drops both while it waits and returns with the device lock
 * held shared again. Every bind is a job ordered by one
 * rule (job.c: its in-fences, its queue's previous job, overlapping pending binds of other
 * queues, with a PREFETCH every pending bind of its vm and of the vms that map the BOs it moves):
 *  - asynchronous: the job is prepared, given those dependencies and submitted; the call returns.
 *    First, on a full queue, the call waits for the queue's own oldest bind; on an LR vm, for its
 *    in-fences.
 *  - synchronous, or an asynchronous one whose job cannot be allocated: the job commits in the
 *    call once all it must follow has signalled (out-syncobjs get the stub fence, user fences are
 *    written before the call returns).
 *  - with a PREFETCH that moves BOs: a job that commits after the device's copies (job.c), which
 *    every later bind follows; a synchronous call waits for it (device work, not interrupted).
 *    A synchronous bind (or one done in the call) that maps or PREFETCHes a BO being moved, or a
 *    MAP of one in a bind with a PREFETCH, first waits for the pending move; an asynchronous
 *    PREFETCH's move goes behind it (a chained move: vm/migrate.c), an asynchronous MAP follows
 *    it (bind.c's map_moving).
 * Waits are interruptible and end at @s->stop; after a wait the call starts over with the same
 * objects. Returns 0; -EINVAL (PREFETCH to a region the BO may not use), -EFAULT (userptr memory
 * not mapped), -ENOSPC, -ENOMEM; -EINTR, @s->stop's errno, -ENOENT (@vm, @q or, by @s->gone, an
 * object of the caller's destroyed while it waited). On error nothing changed.
 */
int vmb_vm_bind_submit(struct vmb_vm *vm, struct vmb_bind_queue *q, const struct vmb_bind_req *reqs,
		       unsigned int n, bool async, struct vmb_bind_syncs *s);

/*
 * Residency before an exec on @vm (job.c): BOs bound in a non-LR vm may have been evicted to
 * SYSTEM while nothing used them; those whose placements exclude SYSTEM come back before the
 * exec runs. With the device lock shared, and @vm's lock where vmb_vm_exec_needs_lock() says
 * so (while BOs are misplaced: then it walks the vm's BOs): 0 (nothing to restore; *@fence: the
 * newest pending eviction or restore that re-maps in @vm, a new reference the exec's job is to
 * follow, or NULL; and @dep(f, @arg) for the pending move that brings back each BO misplaced
 * now, which the exec's job is to follow too); 1 (a BO to restore: call vmb_vm_restore with no
 * lock held, then again); 2 (*@fence: an eviction of such a BO still running, device work: wait
 * for it with no lock held, then again); or @dep's errno.
 */
int vmb_vm_exec_residency(struct vmb_vm *vm, struct vmb_fence **fence, int (*dep)(struct vmb_fence *f, void *arg),
			  void *arg);
/*
 * Submits the restore of @vm's evicted BOs whose placements exclude SYSTEM (moves to VRAM, as a
 * PREFETCH, evicting what nothing uses for room: device work waited for, interruptibly, up to
 * @stop). No lock held; takes the device lock exclusively. 0; -ENOSPC (no room: nothing to
 * evict), -ENOMEM, -EINTR, @stop's errno, -EIO (@vm banned), -ENOENT (@vm destroyed). Whatever
 * it returns, what it evicted or restored stays so (residency is no state a call restores).
 */
int vmb_vm_restore(struct vmb_vm *vm, struct vmb_stop *stop);

#endif
