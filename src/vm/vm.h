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
 * Asynchronous binds: the tree changes when the call prepares a bind; the page tables when its
 * job commits. Jobs submitted and not yet committed are on `pending` (submission order), and
 * each of their ranges (what their operations touch: per operation, merged, for UNMAP_ALL the
 * mappings it removes) is in `pending_ranges`. Two binds with overlapping ranges commit in
 * submission order whatever their queues (the later one depends on the earlier), so the page
 * tables always end as the tree says; binds whose ranges do not meet are not ordered. Between a prepare and
 * its commit the states differ: vmb_vm_validate() then reports -EBUSY.
 *
 * Locking: every field is protected by the device lock.
 */
#ifndef VMB_VM_VM_H
#define VMB_VM_VM_H

#include <stdint.h>

#include "core/handle.h"
#include "core/list.h"
#include "core/rbtree.h"
#include "dev/device.h"
#include "sched/sched.h"
#include "mem/bo.h"
#include "vm/va.h"

struct vmb_stop;

/* A bind queue: binds on it commit in submission order. */
struct vmb_bind_queue {
	uint32_t id;       /* 0: the vm's default queue (embedded in the vm, not counted) */
	atomic_uint refs;  /* the handle's and each job's */
	struct vmb_sched_entity entity;
	struct vmb_list pending; /* struct vmb_bind_job.q_link: submitted, not committed (dev lock) */
	uint32_t npending;       /* jobs on `pending` (dev lock) */
	bool closed;             /* its handle was destroyed: calls holding it fail (dev lock) */
};

void vmb_bind_queue_get(struct vmb_bind_queue *q);
void vmb_bind_queue_put(struct vmb_bind_queue *q);

struct vmb_vm {
	struct vmb_device *dev;
	uint32_t refs;       /* the handle's and each exec queue's (device lock) */
	uint32_t id;
	uint32_t flags;      /* VMB_VM_CREATE_* */
	bool closed;         /* its handle was destroyed (vmb_vm_close): calls holding it fail */
	uint64_t va_size;
	uint64_t page_sizes; /* VMB_PAGE_* */
	struct vmb_va_tree tree;
	struct vmb_dev_vm *dvm;
	struct vmb_list vm_bos; /* struct vmb_vm_bo.vm_link */
	uint64_t bytes_mapped;
	struct vmb_bind_queue default_queue;
	struct vmb_handle_table queues; /* struct vmb_bind_queue *, ids from 1 */
	struct vmb_list pending;        /* struct vmb_bind_job.vm_link, in submission order */
	struct vmb_rb_root pending_ranges; /* the same jobs' ranges, an interval tree (pending.c) */
	struct vmb_list orphans;        /* vm_bos left without mappings while jobs were pending */
};

struct vmb_vm_bo {
	struct vmb_vm *vm;
	struct vmb_bo *bo;
	struct vmb_list vas;     /* struct vmb_va.bo_link */
	struct vmb_list vm_link; /* in vm->vm_bos */
	struct vmb_list bo_link; /* in bo->vm_bos */
	struct vmb_list job_link; /* in the bind job that touched it, or in vm->orphans */
};

int vmb_vm_new(struct vmb_device *dev, uint32_t flags, uint64_t va_size, uint64_t page_sizes,
	       struct vmb_vm **out);
/*
 * Runs the vm's pending bind jobs at once, in order, whatever they wait for (their out-fences
 * signal with -ECANCELED), unmaps everything and frees the vm and its queues. Called with the
 * device lock held; drops and retakes it while a worker finishes a job it already started.
 */
void vmb_vm_free(struct vmb_vm *vm);
void vmb_vm_drain(struct vmb_vm *vm); /* the first half of vmb_vm_free() */
/*
 * The handle goes (vmb_vm_destroy): run the pending binds (vmb_vm_drain), then drop the handle's
 * reference; vm->closed tells a call that still holds the vm (it waited) that its handle is gone.
 * Exec queues hold references: the page tables live until their jobs are over.
 * vmb_vm_put() frees at the last reference (nothing pending by then: no waiting, no allocation).
 */
void vmb_vm_close(struct vmb_vm *vm);
static inline void vmb_vm_get(struct vmb_vm *vm) { vm->refs++; }
void vmb_vm_put(struct vmb_vm *vm);
/* A bind queue of @vm by id (0: the default one), or NULL. */
struct vmb_bind_queue *vmb_vm_queue(struct vmb_vm *vm, uint32_t id);

/* One bind operation, validated in shape by the uapi layer, handles resolved. */
struct vmb_bind_req {
	uint32_t op;       /* VMB_BIND_OP_* */
	uint32_t flags;    /* VMB_BIND_FLAG_* */
	struct vmb_bo *bo; /* MAP, UNMAP_ALL */
	uint32_t region;   /* PREFETCH */
	uint64_t offset;   /* MAP: BO offset; MAP_USERPTR: host address */
	uint64_t addr, range;
};

/* ---- binds (bind.c: the engine; job.c: jobs and the policy) ---- */

/* A user fence an out-sync writes. */
struct vmb_ufence_out {
	uint64_t addr, value;
};

/*
 * What a bind call brings besides its operations, parsed by the caller (uapi/sync.c) into this
 * form so that this layer needs nothing above it.
 */
struct vmb_bind_syncs {
	const struct vmb_fence_set *in; /* fences to wait for (signalled ones are skipped); may be NULL */
	struct vmb_ufence_out *ufs;     /* user fences to write once the bind has committed (vmb_malloc'd):
					 * a submitted job takes them over (then NULL); the caller frees
					 * what is left */
	unsigned int nufs;
	/* Out-syncobjs get the bind's fence (the stub when it completed in the call); NULL: none.
	 * Called once, under the device lock, when the bind can no longer fail. */
	void (*install)(void *arg, struct vmb_fence *f);
	struct vmb_stop *stop;          /* ends the call's waits with its errno (-ENODEV at close) */
	/* After each wait: an object the call holds was destroyed meanwhile (-ENOENT). May be NULL. */
	bool (*gone)(void *arg);
	void *arg;
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
 * whole bind policy. Called with the device lock held (the caller holds references on @vm, @q
 * and the requests' BOs); drops and retakes it while it waits. Every bind is a job ordered by one
 * rule (job.c: its in-fences, its queue's previous job, overlapping pending binds of other
 * queues, with a PREFETCH every pending bind of the device):
 *  - asynchronous: the job is prepared, given those dependencies and submitted; the call returns.
 *    First, on a full queue, the call waits for the queue's own oldest bind; on an LR vm, for its
 *    in-fences.
 *  - synchronous, with a PREFETCH, or an asynchronous one whose job cannot be allocated: the job
 *    commits in the call once all it must follow has signalled (out-syncobjs get the stub fence,
 *    user fences are written before the call returns).
 * Waits are interruptible and end at @s->stop; after a wait the call starts over with the same
 * objects. Returns 0; -EINVAL (PREFETCH to a region the BO may not use), -EFAULT (userptr memory
 * not mapped), -ENOSPC, -ENOMEM; -EINTR, @s->stop's errno, -ENOENT (@vm, @q or, by @s->gone, an
 * object of the caller's destroyed while it waited). On error nothing changed.
 */
int vmb_vm_bind_submit(struct vmb_vm *vm, struct vmb_bind_queue *q, const struct vmb_bind_req *reqs,
		       unsigned int n, bool async, struct vmb_bind_syncs *s);

/*
 * Read (write = false) or write @size bytes at @addr through the page tables, as the GPU does:
 * 0, -EFAULT (not mapped, no scratch page) or -EACCES (write to a READONLY mapping); @fault (may
 * be NULL) gets the address that faulted.
 */
int vmb_vm_rw(struct vmb_vm *vm, uint64_t addr, void *data, uint64_t size, bool write, uint64_t *fault);
/* *(u64 *)addr += value atomically (8-byte aligned addr); the old value in *@old. Same errors. */
int vmb_vm_atomic_add(struct vmb_vm *vm, uint64_t addr, uint64_t value, uint64_t *old);

/* The pending binds' interval tree: one node per range of each pending job (each job's ranges
 * sorted and disjoint), every subtree's largest end. 0 or -EUCLEAN. */
int vmb_vm_pending_validate(struct vmb_vm *vm);

/* Full check of the vm: VA tree, page tables, vm_bo lists, and that both states agree. */
int vmb_vm_validate(struct vmb_vm *vm);

#endif
