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

#ifdef __cplusplus
}
#endif
#endif
