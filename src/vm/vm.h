/* SPDX-License-Identifier: MIT */
/*
 * A vm: one GPU virtual address space. Its logical state is the VA tree (which memory is
 * where); its physical state lives in the device (page tables). A bind changes both, in two
 * halves (bind.c): prepare (plan against the tree, apply the plan to the tree, allocate every
 * page-table page; any failure unwinds everything) and commit (page-table writes that cannot
 * fail). When no bind is in flight the two states agree exactly (vmb_vm_validate checks it).
 *
 * struct vmb_vm_bo ties one BO to one vm while the BO has mappings there: it holds a reference
 * on the BO and lists those mappings (for UNMAP_ALL and for moving the BO).
 *
 * Locking: every field is protected by the device lock.
 */
#ifndef VMB_VM_VM_H
#define VMB_VM_VM_H

#include <stdint.h>

#include "core/list.h"
#include "dev/device.h"
#include "mem/bo.h"
#include "vm/va.h"

struct vmb_vm {
	struct vmb_device *dev;
	uint32_t id;
	uint32_t flags;      /* VMB_VM_CREATE_* */
	uint64_t va_size;
	uint64_t page_sizes; /* VMB_PAGE_* */
	struct vmb_va_tree tree;
	struct vmb_dev_vm *dvm;
	struct vmb_list vm_bos; /* struct vmb_vm_bo.vm_link */
	uint64_t bytes_mapped;
};

struct vmb_vm_bo {
	struct vmb_vm *vm;
	struct vmb_bo *bo;
	struct vmb_list vas;     /* struct vmb_va.bo_link */
	struct vmb_list vm_link; /* in vm->vm_bos */
	struct vmb_list bo_link; /* in bo->vm_bos */
	struct vmb_list job_link; /* in the bind job that touched it (for clean-up) */
};

int vmb_vm_new(struct vmb_device *dev, uint32_t flags, uint64_t va_size, uint64_t page_sizes,
	       struct vmb_vm **out);
/* Unmaps everything (cannot fail) and frees the vm. */
void vmb_vm_free(struct vmb_vm *vm);

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
 * Runs @n operations on @vm in order, synchronously, all or nothing.
 * Returns 0, -EINVAL (PREFETCH to a region the BO may not use), -EFAULT (userptr memory not
 * mapped), -ENOSPC, -ENOMEM; on error the vm, its BOs and the device are exactly as before.
 */
int vmb_vm_bind_sync(struct vmb_vm *vm, const struct vmb_bind_req *reqs, unsigned int n);

/* Read (write = false) or write @size bytes at @addr through the page tables. */
int vmb_vm_rw(struct vmb_vm *vm, uint64_t addr, void *data, uint64_t size, bool write);

/* Full check of the vm: VA tree, page tables, vm_bo lists, and that both states agree. */
int vmb_vm_validate(struct vmb_vm *vm);

#endif
