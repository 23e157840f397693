/* SPDX-License-Identifier: MIT */
/* GPU virtual address spaces (vms). */
#ifndef VMBIND_VM_H
#define VMBIND_VM_H

#include <vmbind/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Unmapped reads give 0 and writes are dropped instead of faulting. */
#define VMB_VM_CREATE_SCRATCH_PAGE (1u << 0)
/* Long-running mode: binds' and execs' out-syncs are user fences only (a syncobj out-sync is
 * -EOPNOTSUPP), a bind's in-syncobjs are waited for inside the call, and jobs have no timeout
 * (bind.h, queue.h). */
#define VMB_VM_CREATE_LR_MODE (1u << 1)
/* Restart mode, the "error state saving" of a failed multi-op bind: the call is not unwound, the
 * ops it completed stay, and the vm refuses other binds (-EBUSY) until the call is restarted
 * with its cookie (bind.h, struct vmb_vm_bind.restart; docs/UAPI.md, "Restart mode"). Without
 * it (the default) a failed call is fully unwound. */
#define VMB_VM_CREATE_RESTART_MODE (1u << 2)

struct vmb_vm_create {
	uint32_t flags;      /* [in] VMB_VM_CREATE_* */
	uint32_t vm_id;      /* [out] */
	uint64_t va_size;    /* [in] bytes of VA, multiple of the device's minimum page size (its
			      * granularity: vmb_device_query), <= 2^va_bits; 0 = the device's
			      * default (soft: 2^va_bits, all of it); [out] the vm's size */
	uint64_t page_sizes; /* [in] VMB_PAGE_* mask of GPU page sizes this vm may use; must hold
			      * the device's minimum page size and only device sizes; 0 = all the
			      * device has */
	uint64_t gpu_base;   /* [out] where the vm's address 0 is in the device's own address
			      * space: a kernel of the device's own API (CUDA) reaches vm address
			      * a at gpu_base + a; 0 on the soft device (VMB_CAP_BO_CHUNK; was
			      * reserved[0], whose value in is not read) */
	uint64_t reserved;
};
/* Returns: 0, -EINVAL, -ENOMEM (host memory, page-table memory, or the device's address space
 * for the vm), -EOPNOTSUPP (VMB_VM_CREATE_SCRATCH_PAGE on a device without
 * VMB_CAP_SCRATCH_PAGE). */
VMB_API int vmb_vm_create(struct vmb_client *c, struct vmb_vm_create *args);

struct vmb_vm_destroy {
	uint32_t vm_id; /* [in] */
	uint32_t pad;
	uint64_t reserved;
};
/*
 * Unmaps everything and frees the vm. Its pending binds run at once, whatever they wait for, and
 * their fences signal with -ECANCELED; exec queues on the vm keep its page tables until they are
 * destroyed. Returns: 0, -EINVAL, -ENOENT.
 */
VMB_API int vmb_vm_destroy(struct vmb_client *c, struct vmb_vm_destroy *args);

/*
 * The vm's fault log: the GPU page faults that ended exec jobs on the vm (an exec job ends with
 * -EFAULT on its out-fence when it faults, and bans its queue: queue.h, cmd.h), oldest first.
 * The vm keeps the first VMB_VM_MAX_FAULTS (Xe's MAX_FAULTS_SAVED_PER_VM); later faults are
 * counted (`dropped`) but not kept. A fault stays in the log after its exec queue is destroyed;
 * the log goes with the vm. A fault of a vm with a scratch page is a write to a READONLY
 * mapping only (unmapped addresses read 0 there).
 */
#define VMB_VM_MAX_FAULTS 50u

/* struct vmb_vm_fault.access: VMB_FAULT_READ (0), VMB_FAULT_WRITE (1) as in queue.h, or: */
#define VMB_FAULT_ATOMIC 2u /* ATOMIC_ADD */
/* struct vmb_vm_fault.type */
#define VMB_FAULT_TYPE_NOT_PRESENT 0u  /* nothing mapped at the address */
#define VMB_FAULT_TYPE_WRITE_ACCESS 1u /* a write or atomic to a READONLY mapping */

struct vmb_vm_fault {
	uint64_t addr;          /* the GPU VA of the first byte that faulted (byte precise) */
	uint32_t exec_queue_id; /* the exec queue the job was submitted on (it may be gone) */
	uint8_t access;         /* VMB_FAULT_READ / WRITE / ATOMIC (a command fetch reads) */
	uint8_t type;           /* VMB_FAULT_TYPE_* */
	uint8_t level;          /* the page-table level whose entry stopped the walk: 0 the last
				 * level (4 KiB entries), up to the root (soft: 3); NOT_PRESENT: the
				 * level with no valid entry; WRITE_ACCESS: the leaf's */
	uint8_t pad;            /* [out] 0 */
	uint64_t reserved;      /* [out] 0 */
};

struct vmb_vm_query_faults {
	uint32_t vm_id;      /* [in] */
	uint32_t flags;      /* [in] none defined yet: must be 0 */
	uint32_t num_faults; /* [in] capacity of `faults` (0: count only); [out] faults in the log */
	uint32_t pad;
	uint64_t faults;     /* [in] pointer to struct vmb_vm_fault[num_faults], or 0 */
	uint64_t dropped;    /* [out] faults not kept since the log filled */
	uint64_t reserved[2];
};
/*
 * Lists the vm's fault log, oldest first: writes min(capacity, faults in the log) entries, from
 * a snapshot of the log taken at once (a fault recorded meanwhile is in the next call's), and
 * sets num_faults to the number in the log (call with 0 first to size the array; it is at most
 * VMB_VM_MAX_FAULTS). Returns: 0; -EINVAL (flags, pad, reserved); -ENOENT (vm); -EFAULT (faults
 * 0 with a non-zero num_faults, or the array cannot be written: entries before the bad one may
 * have been).
 */
VMB_API int vmb_vm_query_faults(struct vmb_client *c, struct vmb_vm_query_faults *args);

#ifdef __cplusplus
}
#endif
#endif
