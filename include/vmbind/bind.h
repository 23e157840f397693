/* SPDX-License-Identifier: MIT */
/*
 * VM_BIND: change a vm's mappings.
 *
 * One call takes a vm, a bind queue (0 = the vm's default queue), an array of operations and an
 * array of syncs. Operations of one call are applied in order, all or nothing: if operation k
 * fails, operations 0..k-1 are undone and the vm is exactly as before (the call's errno is k's).
 *
 * Synchronous (no VMB_VM_BIND_FLAG_ASYNC): complete when the call returns; takes no syncs. It is
 * ordered as an asynchronous bind is: it first waits (interruptibly: -EINTR, nothing changed)
 * for the queue's earlier binds and for pending binds of other queues whose ranges overlap its
 * own, then commits in the call.
 *
 * Asynchronous (VMB_VM_BIND_FLAG_ASYNC): the call checks and prepares everything (every error is
 * reported by the call) and returns; the bind runs once its in-syncs have signalled, after the
 * queue's earlier binds and overlapping binds of other queues, then writes its out user fences
 * and signals its out-syncobjs. A bind that has nothing left to wait for (in-syncs signalled,
 * its queue idle, no pending bind of another queue on its ranges) runs in the call: it has
 * committed and signalled when the call returns. num_binds 0 with syncs is a barrier. On an LR
 * vm, in-syncobjs are waited for inside the call and out-syncs are user fences only.
 * docs/UAPI.md has the rules.
 *
 * Queues: 0 is the vm's default queue; others come from vmb_bind_queue_create() (queue.h).
 *
 * Restart mode (a vm created with VMB_VM_CREATE_RESTART_MODE, vm.h; docs/UAPI.md, "Restart
 * mode"): the ops of a call run one at a time, each all or nothing; when op k fails (k >= 1) the
 * call is not unwound: ops 0..k-1 stay done (committed; asynchronous: submitted as jobs of their
 * own), op k and the later ones untouched, and the call writes a restart cookie into `restart`
 * (VMB_VM_BIND_RESTART_DONE(cookie) == k). Until the same call (same vm, queue, flags, ops and
 * syncs) is made again with that cookie, every other bind on the vm fails with -EBUSY; the
 * restart runs ops k.. and on success writes 0. Out-syncs are signalled only by the call that
 * completes the last op. A call with the cookie, no ops and no syncs gives the restart up (ops
 * 0..k-1 stay). If op 0 fails, nothing changed and no restart is owed (`restart` written 0).
 */
#ifndef VMBIND_BIND_H
#define VMBIND_BIND_H

#include <vmbind/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Operations (struct vmb_bind_op.op). */
#define VMB_BIND_OP_MAP 0u         /* bo_handle at bo_offset -> [addr, addr + range) */
#define VMB_BIND_OP_UNMAP 1u       /* [addr, addr + range); unmapped holes are fine */
#define VMB_BIND_OP_MAP_USERPTR 2u /* application memory at userptr -> [addr, addr + range) */
#define VMB_BIND_OP_UNMAP_ALL 3u   /* every mapping of bo_handle in this vm; addr, range = 0 */
#define VMB_BIND_OP_PREFETCH 4u    /* move the BOs mapped in [addr, addr + range) to `region` */

/* Operation flags (struct vmb_bind_op.flags). */
#define VMB_BIND_FLAG_READONLY (1u << 0) /* MAP, MAP_USERPTR: GPU writes fault */
#define VMB_BIND_FLAG_NULL (1u << 1)     /* MAP with bo_handle 0: sparse, reads 0, writes dropped */

struct vmb_bind_op {
	uint32_t op;        /* [in] VMB_BIND_OP_* */
	uint32_t flags;     /* [in] VMB_BIND_FLAG_* */
	uint32_t bo_handle; /* [in] MAP (0 with NULL), UNMAP_ALL; else 0 */
	uint32_t region;    /* [in] PREFETCH: VMB_REGION_*; else 0 */
	/* "aligned": to the device's minimum page size, its granularity (vmb_device_query) */
	uint64_t bo_offset; /* [in] MAP: aligned, bo_offset + range <= BO size; else 0 */
	uint64_t userptr;   /* [in] MAP_USERPTR: aligned host address; else 0 */
	uint64_t addr;      /* [in] aligned; UNMAP_ALL: 0 */
	uint64_t range;     /* [in] aligned, > 0, addr + range <= vm size; UNMAP_ALL: 0 */
	uint64_t reserved[2];
};

/* Sync types (struct vmb_sync.type). */
#define VMB_SYNC_SYNCOBJ 0u          /* binary syncobj `handle` */
#define VMB_SYNC_TIMELINE_SYNCOBJ 1u /* timeline syncobj `handle` at point `value` */
#define VMB_SYNC_USER_FENCE 2u       /* 64-bit location `addr` (8-byte aligned), `value` */
/* (An out user fence inside the caller's CPU map of a BO, vmb_bo_mmap, is written through the
 * BO's pages as a VMB_SYNC_BO_USER_FENCE at that offset: no writability check, no -EFAULT.) */
/* A user fence in a BO: the 64-bit location at offset `addr` of BO `handle` (8-byte aligned,
 * inside the BO), `value`; in memory another process can share (the BO's), read through the
 * BO's CPU map or waited for by (BO, offset) (VMB_UFENCE_WAIT_BO). The write holds the BO's
 * pages until it is done: a BO destroyed meanwhile is still written, never freed memory. A device
 * whose memory is not the BO's host pages (CUDA) has no VMB_CAP_USER_FENCE_BO: -EOPNOTSUPP. */
#define VMB_SYNC_BO_USER_FENCE 3u
/* Sync flags. */
#define VMB_SYNC_FLAG_SIGNAL (1u << 0) /* out-sync: signalled on completion; else waited for */

struct vmb_sync {
	uint32_t type;   /* [in] VMB_SYNC_* */
	uint32_t flags;  /* [in] VMB_SYNC_FLAG_* */
	uint32_t handle; /* [in] syncobj handle (syncobj types), BO handle (BO_USER_FENCE); 0 for
			  * USER_FENCE */
	uint32_t pad;
	uint64_t addr;   /* [in] USER_FENCE: address; BO_USER_FENCE: offset in the BO; syncobjs: 0 */
	uint64_t value;  /* [in] timeline point or user-fence value; 0 for binary syncobjs */
	uint64_t reserved[2];
};

/* Call flags (struct vmb_vm_bind.flags). */
#define VMB_VM_BIND_FLAG_ASYNC (1u << 0)

struct vmb_vm_bind {
	uint32_t vm_id;     /* [in] */
	uint32_t queue_id;  /* [in] bind queue, 0 = the vm's default queue */
	uint32_t num_binds; /* [in] entries at `binds` (0 only as a barrier with syncs) */
	uint32_t num_syncs; /* [in] entries at `syncs` */
	uint64_t binds;     /* [in] pointer to struct vmb_bind_op[num_binds] */
	uint64_t syncs;     /* [in] pointer to struct vmb_sync[num_syncs] */
	uint32_t flags;     /* [in] VMB_VM_BIND_FLAG_* */
	uint32_t pad;
	uint64_t queue_serial; /* [in] 0, or the serial of the queue that vm_id and queue_id name
				* (queue.h): another queue under them is -ENOENT (VMB_CAP_QUEUE_SERIAL;
				* was reserved[0]) */
	uint64_t reserved;
	/* [in/out] restart mode only (VMB_VM_CREATE_RESTART_MODE), else 0: in, 0 for a new call or
	 * the cookie of the failed call this one restarts; out, written when the call ran an op:
	 * the cookie of a restart now owed, 0 if none (below). Was reserved[2]: same size, offsets */
	uint64_t restart;
};

/* The number of ops of the call that completed before it failed, from its restart cookie. */
#define VMB_VM_BIND_RESTART_DONE(cookie) ((uint32_t)((cookie) & 0xffffffffu))

#define VMB_VM_BIND_MAX_OPS 65536u
#define VMB_VM_BIND_MAX_SYNCS 1024u

/*
 * Returns: 0; -EINVAL (bad field, flag, op, alignment, overflow, range outside the vm or the
 * BO, `restart` not 0 and not the cookie the vm owes a restart to, or not with the same call,
 * op/flag combination, too many ops or syncs, syncs on a synchronous call, a bad sync, an
 * in-syncobj with nothing submitted, an out-point not above the timeline's last or claimed by a
 * call in flight, PREFETCH to a region the BO may not use, a MAP of part of a chunk of its BO or
 * a MAP or UNMAP that would cut a BO's mapping inside a chunk: bo.h, chunk_size; a MAP of a BO
 * private to another vm: bo.h, vm_id); -ENOENT (unknown vm, queue, BO or syncobj handle;
 * queue_serial not 0 and not the serial of the queue named: queue.h; or a vm, queue or BO
 * destroyed while the call waited: a call acts on the
 * objects its handles named when it was made, never on a later object under a reused handle);
 * -EFAULT (a NULL array pointer with a non-zero count, MAP_USERPTR memory the process cannot
 * access as mapped, an out user fence it cannot write); -EOPNOTSUPP (a user fence as in-sync, a
 * syncobj out-sync on an LR vm, an op the device lacks: MAP_USERPTR, NULL or PREFETCH without
 * its VMB_CAP_*; a VMB_SYNC_BO_USER_FENCE without VMB_CAP_USER_FENCE_BO); -EINTR (a wait in the call was interrupted by a signal: an LR
 * vm's in-syncobjs, a bind run in the call waiting for what it follows, an asynchronous call on
 * a queue with 1024 pending binds waiting for that queue's oldest, a PREFETCH or a MAP of a BO
 * being moved waiting for the pending move (a PREFETCH, an eviction), a bind needing room in
 * VRAM waiting for an eviction's copy, an in-sync waited for without memory to record
 * it; nothing changed, call again; restart mode: ops before it done, restart); -EBUSY (PREFETCH
 * of a BO the CPU maps to a region the CPU cannot reach: a discrete device's VRAM; nothing
 * changed, unmap it first. Restart mode: the vm owes a restart to another call (or one with
 * the cookie is running): nothing changed, restart or give up that call first); -ENOSPC (PREFETCH: the region is full; a MAP of a BO without backing yet, created past
 * its regions' room, or evicted, when none of its allowed regions has room and no BO in VRAM can
 * be evicted, every one bound in an LR vm or in a vm with work pending or running: nothing changed, unbind what
 * is not needed and restart; UAPI.md "Residency"); -EAGAIN
 * (PREFETCH: the device's first copy starts its DMA engine's thread, and the system would not
 * start one; nothing changed); -ENOMEM (page-table or host memory; or the
 * device's error when it failed to write the page tables, as -EIO. Not for unbinds: an UNMAP
 * that removes or trims mappings, an UNMAP of the whole vm and UNMAP_ALL never fail for lack of
 * memory; a split inside a mapping draws on the vm's reserve while allocation fails: docs/UAPI.md,
 * "Unbind under memory pressure"); -ENODEV
 * (vmb_client_close() of the client began while the call waited: nothing changed); -EIO (the vm
 * is banned: the device failed to commit one of its binds; nothing changed. Or a bind that
 * commits in the call failed so, or a synchronous PREFETCH's device copy failed, and banned the
 * vm: the device's error, out-syncs untouched).
 * A banned vm (docs/UAPI.md, "Failed commits"): the asynchronous bind whose commit failed
 * signals its out-fences with the device's error and still writes its user fences; binds
 * pending on the vm signal -EIO without touching its page tables.
 * PREFETCH is device work (docs/UAPI.md): the device copies each BO it moves into its new
 * backing, and the bind commits, and signals its out-fences, only once the copy is over; a copy
 * that fails bans the vm as a failed commit does, nothing of the bind committed.
 */
VMB_API int vmb_vm_bind(struct vmb_client *c, struct vmb_vm_bind *args);

#ifdef __cplusplus
}
#endif
#endif
