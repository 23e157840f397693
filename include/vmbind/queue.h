/* SPDX-License-Identifier: MIT */
/*
 * Bind queues and exec queues: argument shapes.
 *
 * Exec queues run command buffers (include/vmbind/cmd.h) on an engine of the device, through
 * one vm. Jobs of one exec queue run in submission order; each starts once its in-syncs have
 * signalled, so binds and execs pipeline: an exec waits for a bind's out-fence, an unbind for an
 * exec's. A job that faults, runs a malformed command or (outside LR vms) outlives the job
 * timeout ends with -EFAULT, -EINVAL or -ETIMEDOUT on its out-fence, and its queue is banned:
 * later execs on it return -ECANCELED, and the jobs already queued behind the failed one are
 * cancelled: none of their commands runs, their out-fences signal -ECANCELED, in order, when
 * each would have started (its in-syncs still count), and their out user fences are written.
 * The queue keeps reporting the first error and fault (vmb_exec_queue_query). On an LR vm, exec out-syncs are user fences only and jobs
 * may wait on user fences (SEM_WAIT) for as long as they like.
 */
#ifndef VMBIND_QUEUE_H
#define VMBIND_QUEUE_H

#include <vmbind/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A bind queue ("bind engine"): binds on one queue complete in submission order. */
struct vmb_bind_queue_create {
	uint32_t vm_id;    /* [in] */
	uint32_t flags;    /* [in] none defined yet: must be 0 */
	uint32_t queue_id; /* [out] non-zero, numbered by the vm (each vm from 1); 0 names its default queue */
	uint32_t pad;
	uint64_t serial;   /* [out] this queue's serial (below; VMB_CAP_QUEUE_SERIAL; was reserved[0]) */
	uint64_t reserved;
};

struct vmb_bind_queue_destroy {
	uint32_t vm_id;    /* [in] */
	uint32_t queue_id; /* [in] */
	uint64_t serial;   /* [in] 0, or the queue's serial: another is -ENOENT (was reserved) */
};

/*
 * A queue's serial names that queue alone: unique among the process's bind queues (and among
 * its exec queues), never reused, where ids are (a vm destroyed with its queues may come back
 * under its id with new queues under the same numbers, each vm numbering its own from 1; a
 * destroyed exec queue's id is given to a later one). A call that passes it (bind queues:
 * vmb_bind_queue_destroy's serial, vmb_vm_bind's queue_serial; exec queues: vmb_exec's and
 * vmb_user_fence_wait's exec_queue_serial) acts on that queue or on none: the id naming
 * another queue is -ENOENT, decided where the call looks the queue up. A layer that keeps ids
 * for later calls (an Xe-uAPI translation) reaches no other queue under them. 0: not checked.
 */

struct vmb_client;
/* Returns: 0; -EINVAL (flags, pad, reserved); -ENOENT (vm); -ENOMEM. */
VMB_API int vmb_bind_queue_create(struct vmb_client *c, struct vmb_bind_queue_create *args);
/*
 * Returns: 0; -EINVAL (queue 0, the default queue, lives as long as its vm); -ENOENT (unknown vm
 * or queue; serial not 0 and not the queue's).
 * Binds already submitted on the queue still run, in order, once their in-syncs signal.
 */
VMB_API int vmb_bind_queue_destroy(struct vmb_client *c, struct vmb_bind_queue_destroy *args);

/* Engine classes of a device (struct vmb_engine.engine_class). */
#define VMB_ENGINE_CLASS_COMPUTE 0u
#define VMB_ENGINE_CLASS_COPY 1u

struct vmb_engine {
	uint16_t engine_class;    /* VMB_ENGINE_CLASS_* */
	uint16_t engine_instance; /* index within the class */
	uint32_t pad;
};

/* Exec queue flags. CMDSET_INTEL: its jobs' command buffers hold Intel's MI commands (dwords;
 * the subset of vmbind/cmd.h, VMB_MI_*, that IGT's Xe tests use) instead of the soft GPU's. */
#define VMB_EXEC_QUEUE_CMDSET_INTEL (1u << 0)

/* An exec queue: GPU jobs on one engine, through one vm. */
struct vmb_exec_queue_create {
	uint32_t vm_id;           /* [in] */
	uint32_t flags;           /* [in] VMB_EXEC_QUEUE_CMDSET_INTEL or 0 */
	struct vmb_engine engine; /* [in] */
	uint32_t exec_queue_id;   /* [out] */
	uint32_t pad;
	uint64_t serial;          /* [out] this queue's serial (above; VMB_CAP_QUEUE_SERIAL; was
				   * reserved[0]) */
	uint64_t reserved;
};

struct vmb_exec_queue_destroy {
	uint32_t exec_queue_id; /* [in] */
	uint32_t pad;
	uint64_t reserved;
};

struct vmb_client;
/* flags: VMB_EXEC_QUEUE_CMDSET_INTEL, the Intel command set (vmbind/cmd.h, docs/COMMANDS.md).
 * Returns: 0; -EINVAL (unknown flags, pad, reserved, unknown engine); -ENOENT (vm); -ENOMEM; -EAGAIN (the
 * first exec queue on an engine starts its thread, and the system would not start one); -EIO
 * (the vm is banned: the device failed to commit one of its binds). */
VMB_API int vmb_exec_queue_create(struct vmb_client *c, struct vmb_exec_queue_create *args);
/*
 * Returns: 0; -EINVAL (pad, reserved); -ENOENT. Jobs still waiting for their in-syncs end with
 * -ECANCELED on their out-fences (their out user fences are written); a running job is stopped
 * at its next time slice.
 */
VMB_API int vmb_exec_queue_destroy(struct vmb_client *c, struct vmb_exec_queue_destroy *args);

#define VMB_EXEC_QUEUE_BANNED (1u << 0)
#define VMB_FAULT_READ 0u
#define VMB_FAULT_WRITE 1u

/* An exec queue's state, and the fault that banned it. */
struct vmb_exec_queue_query {
	uint32_t exec_queue_id; /* [in] */
	uint32_t flags;         /* [out] VMB_EXEC_QUEUE_BANNED */
	int32_t error;          /* [out] what banned it (the first failed job's error, never
				 * overwritten): -EFAULT, -EINVAL, -ETIMEDOUT, or 0 */
	uint32_t fault_access;  /* [out] VMB_FAULT_READ / WRITE (error -EFAULT) */
	uint64_t fault_addr;    /* [out] the GPU VA that faulted (error -EFAULT) */
	uint64_t jobs_done;     /* [out] jobs completed without error */
	uint64_t reserved[2];   /* [in] must be 0 */
};
/* Returns: 0; -EINVAL (reserved); -ENOENT. */
VMB_API int vmb_exec_queue_query(struct vmb_client *c, struct vmb_exec_queue_query *args);

/* Submit one command buffer, fetched by the engine at its GPU VA. */
struct vmb_exec {
	uint32_t exec_queue_id; /* [in] */
	uint32_t num_syncs;     /* [in] entries at `syncs` (struct vmb_sync, bind.h) */
	uint64_t syncs;         /* [in] pointer to struct vmb_sync[num_syncs] */
	uint64_t address;       /* [in] GPU VA of the command buffer (an Intel queue's: canonical
				 * form accepted, docs/COMMANDS.md) */
	uint32_t flags;         /* [in] none defined yet: must be 0 */
	uint32_t pad;
	uint64_t exec_queue_serial; /* [in] 0, or the queue's serial (above): another queue under
				     * the id is -ENOENT (was reserved[0]) */
	uint64_t reserved;
};

#define VMB_EXEC_MAX_SYNCS 1024u
/*
 * Returns: 0 (the job is queued; its out-syncs signal when it ends, with its error if any);
 * -EINVAL (flags, pad, reserved, too many syncs, address not 8-byte aligned (an Intel queue's:
 * not 4-byte aligned, or bits 48-63 neither 0 nor the sign extension of bit 47), a sync as in
 * vmb_vm_bind); -EFAULT (syncs 0 with num_syncs, an out user fence the process cannot write);
 * -ENOENT (queue, syncobj; exec_queue_serial not 0 and not the queue's); -ECANCELED (the queue
 * is banned); -EIO (the queue's vm is banned: the
 * device failed to commit one of its binds, whether the queue is banned or not; jobs queued
 * before the ban end with -ECANCELED, none of their commands run, and ban the queue); -EOPNOTSUPP (syncobj out-sync on an LR vm; user fence as
 * in-sync; a BO user fence without VMB_CAP_USER_FENCE_BO); -ENOMEM; -ENOSPC (a BO of the vm evicted to SYSTEM whose placements exclude SYSTEM
 * must come back to VRAM before the job runs, and VRAM has no room: nothing in it can be evicted;
 * nothing queued, unbind what is not needed and restart); -EBUSY (on a device without
 * VMB_CAP_VRAM_CPU_MAP, such a BO is mapped for the CPU: it may not go back to VRAM until
 * vmb_bo_munmap; nothing queued); -EINTR (a signal while the call waited
 * for an eviction's copy or to make room for that restore: nothing queued, call again); -ENODEV
 * (the client closing meanwhile). Residency: docs/UAPI.md "Residency".
 */
VMB_API int vmb_exec(struct vmb_client *c, struct vmb_exec *args);

#ifdef __cplusplus
}
#endif
#endif
