/* SPDX-License-Identifier: MIT */
/*
 * A vm: one GPU virtual address space (vm.c). Its logical state is the VA tree (which memory is
 * where); its physical state lives in the device (page tables). A bind changes both, in two
 * halves (bind.c, interface in vm/bind.h): prepare (plan against the tree, apply the plan to the tree, allocate every
 * page-table page; any failure unwinds everything) and commit (page-table writes, which only a
 * device's own failure stops: then the vm is banned, below). When no bind is in flight the two
 * states of a vm that is not banned agree exactly (vmb_vm_validate checks it).
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
 * A banned vm: the device failed a commit (dev/device.h: map_commit may fail; vm/job.c). The vm
 * is banned for good with that errno (`banned`), and the device told (vm_ban: nothing
 * translates through its page tables any more). Its state then: the VA tree holds every bind
 * prepared on it (the failed one and those pending behind it included: none is reverted); the
 * page tables hold the binds committed before the failed one and a prefix of the failed one's
 * operations (those before the failing operation, and maybe a part of it), and are never
 * written again. What the vm refuses from then on with -EIO: binds (at entry, before anything
 * changes), the GPU view, exec queue creation and execs; its pending binds commit nothing and
 * signal -EIO. Destroying it frees everything as for any vm; queries read the tree;
 * vmb_vm_validate() checks the tree and the vm_bo lists but not the page tables.
 *
 * Locking (dev/core.h has the whole order): `lock`, the vm's lock, protects the vm's state (every
 * field below but the immutable ones and `refs`), its bind queues' pending lists and entities,
 * and its page tables in the device (`dvm`). It is taken with the device lock held shared, after
 * it (vmb_vm_lock()); a holder of the device lock exclusively (vm creation and destruction,
 * PREFETCH, client close) may touch the vm without it. Who takes it: a bind's call for the
 * preparation (and the commit of a bind in the call), the scheduler's worker for an
 * asynchronous job's commit (vm/job.c), the GPU view (uapi/vm.c), an exec's submission on an
 * exec queue of the vm (its entity: exec/exec.h). A device's engines read the page tables
 * under the device's own lock of them (soft: dev/soft/pt.h, "Locking"), which a commit takes
 * beside this one, not under this one: a bind's preparation and an exec's time slice do not
 * wait for each other. Nobody waits on a fence while holding it. A bind that has to wait drops
 * both locks (vmb_vm_bind_submit). `refs` is atomic, and so is
 * `banned` (the exec layer reads it without the lock). A vm's (vm, BO) links are on their BO's
 * list too: that list changes under the device's cross lock as well (mem/bo.h).
 */
#ifndef VMB_VM_VM_H
#define VMB_VM_VM_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <vmbind/vm.h>

#include "core/handle.h"
#include "core/list.h"
#include "core/lock.h"
#include "core/rbtree.h"
#include "dev/device.h"
#include "sched/sched.h"
#include "sync/ufence.h"
#include "mem/bo.h"
#include "vm/va.h"

struct vmb_stop;

/*
 * Unbind cannot fail for lack of resources (docs/UAPI.md, "Unbind under memory pressure"); only
 * its shape can be refused (-EINVAL, nothing changed: a cut inside a granule, or inside a chunk of
 * a BO's mapping, vm/bind.c plan_check_cuts). What an
 * UNMAP (and UNMAP_ALL) needs, and where it comes from when host allocation fails:
 *  - page-table pages to split a huge leaf it cuts: the device's reserve, which every huge leaf
 *    holds from its MAP on (dev/soft/pt.h: 1 page per 2 MiB leaf, 513 per 1 GiB leaf);
 *  - a VA node for each piece of a mapping it keeps: the tree's node cache (vm/va.h), which holds
 *    at least VMB_VM_UNMAP_RESERVE nodes after the vm's creation and after every bind call that
 *    succeeds (refilled there, where allocation may fail harmlessly). A trim (one end of a
 *    mapping kept) may take the cache's last node; a split inside a mapping (both ends kept)
 *    and a MAP leave VMB_VM_UNMAP_FLOOR nodes for trims. A call gives back the nodes of the
 *    mappings it removed or cut when it ends: a trim or a removal never lowers the cache; each
 *    split lowers it by one until the next refill. So while allocation fails, a vm takes at least
 *    VMB_VM_UNMAP_RESERVE - VMB_VM_UNMAP_FLOOR - 1 splits (one per call), and every UNMAP op that
 *    only removes and trims (at most VMB_VM_UNMAP_FLOOR pieces kept) succeeds; a call needing more
 *    nodes than are left fails with -ENOMEM, nothing changed;
 *  - B+tree nodes (the VA tree's own, vm/va.c "Removed in place"): none for a removal or a trim,
 *    nor for undoing any part of a call (an UNMAP's mapping stays in its leaf until the plan
 *    ends). A split inserts its second piece: nothing when the leaf it goes into, or a sibling
 *    of it, has room; else one node for the leaf and one per full level above it. The tree's
 *    cache holds VMB_VA_TREE_RESERVE = 2 * (height + 1) nodes after the same refills (two
 *    worst-case splits); a split that needs more than are left while allocation fails is
 *    -ENOMEM, nothing changed;
 *  - a step per mapping it removes beyond the plan's inline ones: the tree's spare step array,
 *    as large as the tree has mappings (refilled with the cache): so an UNMAP of the whole vm
 *    and an UNMAP_ALL plan any number of mappings;
 *  - one job record per UNMAP op (its page-table clears are read from its plan at commit; the
 *    job's inline records: 8 ops), the call's inline arrays (32 ops), and a device preparation that holds nothing (a device gives
 *    one without allocating: dev/device.h, prep_create).
 * Memory: VMB_VM_UNMAP_RESERVE cached nodes (sizeof(struct vmb_va), 64 bytes on LP64: 1024
 * bytes; the cache is filled in slabs of 64, so at most one slab, 4 KiB, beyond what the
 * mappings use), VMB_VA_TREE_RESERVE cached tree nodes (sizeof(struct vmb_bt_node), 1024 bytes:
 * 4 for a vm of up to 63 mappings, 4 KiB; 10 at 10^6, 10 KiB; the cache keeps at least 8,
 * 8 KiB) and 32 bytes (sizeof(struct vmb_va_step)) per mapping for the spare
 * steps.
 */
#define VMB_VM_UNMAP_RESERVE 16u
#define VMB_VM_UNMAP_FLOOR 2u

/*
 * A bind queue: binds on it commit in submission order. Its id is the vm's name for it, not a
 * client's handle: ids come from the vm's own table (vm->queues), so they are a namespace of the
 * vm, which every user of the vm shares (one client's today).
 */
struct vmb_bind_job;

struct vmb_bind_queue {
	uint32_t id;       /* in vm->queues; 0: the vm's default queue (embedded in the vm, not counted) */
	atomic_uint refs;  /* the handle's and each job's */
	/* unique in the process, from 1 (0: a default queue), never reused (an id is): what a
	 * restart-mode call recorded of its queue (uapi/vm.c); immutable */
	uint64_t serial;
	struct vmb_sched_entity entity;
	struct vmb_list pending; /* struct vmb_bind_job.q_link: submitted, not committed (vm lock) */
	uint32_t npending;       /* jobs on `pending` (vm lock) */
	bool closed;             /* its handle was destroyed: calls holding it fail (device lock
				  * exclusive; read under the vm lock) */
	/* the memory of its last job committed in the call, for its next job (vm/job.c). Under
	 * the vm's lock (or the device lock exclusive), which job_new and the release of a job
	 * committed in the call hold; freed with the queue. A plain pointer: an exchange and a
	 * compare-and-swap on it were ~25 ns of an async 1-op call (issue 16) */
	struct vmb_bind_job *spare;
};

void vmb_bind_queue_get(struct vmb_bind_queue *q);
void vmb_bind_queue_put(struct vmb_bind_queue *q);

/*
 * Cache lines: what every bind call reads before it takes the vm's lock (dev, flags, banned,
 * va_size, the queue table) comes first; `lock`, `combine` (written by every call that contends
 * for the lock) and the state a bind writes (from `tree` on) each start 64 bytes or more after
 * the group before them, so that no line holds fields of two groups (no alignment needed: the
 * struct comes from malloc) and a call's reads do not take a line from the lock's holder.
 */
#define VMB_VM_PAD 64

/*
 * A vm's fault log (vmbind/vm.h: vmb_vm_query_faults): the GPU page faults that ended its exec
 * jobs, oldest first, the first VMB_VM_MAX_FAULTS of them. Written where an exec job ends with a
 * fault (exec/exec.c, job_finish: in the device fence's callback, a signalling path), so its
 * slots are the vm's own, made with it: recording allocates nothing and waits for nothing but
 * `lock`, held for a copy of one record. `lock` (a mutex, a leaf: taken after the fence lock
 * and the exec queue's lock, nothing taken under it, never held across a copy to the
 * application) guards `n`, `dropped` and `rec`.
 */
struct vmb_vm_faults {
	pthread_mutex_t lock;
	uint32_t n;       /* records in `rec` */
	uint64_t dropped; /* faults that came after the log filled */
	struct vmb_vm_fault rec[VMB_VM_MAX_FAULTS];
};

struct vmb_vm {
	struct vmb_device *dev;
	atomic_uint refs;    /* the handle's, each exec queue's, each bind call's, each pending
			      * PREFETCH job's that re-maps in it (atomic) */
	uint32_t flags;      /* VMB_VM_CREATE_* */
	/* unique in the process, from 1, never reused (an id is): the owner a BO private to this
	 * vm records (struct vmb_bo.vm_serial); immutable */
	uint64_t serial;
	bool closed;         /* its handle was destroyed (vmb_vm_close): calls holding it fail
			      * (device lock exclusive) */
	bool unlinked;       /* it left its BOs' vm_bos lists (vmb_vm_unlink_bos): nothing reaches
			      * it through a BO (the device lock exclusive, or shared + cross lock) */
	atomic_int banned;   /* 0, or the errno of the device commit that failed (see above):
			      * written once, under the vm's lock (vmb_vm_ban) */
	/* an exec has been queued on the vm: set once (release), under its lock, after the
	 * device's hint of its first exec (vmb_vm_exec_queued); later execs may be submitted
	 * without the vm's lock (vmb_vm_exec_needs_lock) */
	atomic_bool exec_queued;
	uint64_t va_size;
	uint64_t gpu_base;   /* the device's address of the vm's 0 (ops->vm_create; soft 0) */
	uint64_t page_sizes; /* VMB_PAGE_* */
	char pad0[VMB_VM_PAD];
	struct vmb_mutex lock; /* the vm lock (above) */
	char pad1[VMB_VM_PAD];
	/* binds (synchronous, or asynchronous without a PREFETCH) waiting for the holder of `lock`
	 * to run them (flat combining: its own lock, core/lock.h; vm/job.c) */
	struct vmb_combine combine;
	char pad2[VMB_VM_PAD];
	struct vmb_va_tree tree;
	struct vmb_dev_vm *dvm;
	struct vmb_list vm_bos; /* struct vmb_vm_bo.vm_link */
	/* the link a MAP last obtained, or NULL (cleared when it is freed): the next MAP of that BO
	 * finds it without the cross lock (vm/bind.c, vm_bo_obtain) */
	struct vmb_vm_bo *vb_last;
	/* the memory of bind jobs' grown arrays (vm/bind.c), kept when a job ends for the vm's
	 * next binds: plan chunks (at most VMB_VM_KEPT_CHUNKS, chained), one map array of
	 * VMB_VM_KEPT_MAPS records, or NULL; so a 32-op bind allocates none of them, nor frees
	 * them on the thread that commits it */
	void *kept_chunks;
	unsigned int nkept_chunks;
	void *kept_maps;
	uint64_t bytes_mapped;
	struct vmb_bind_queue default_queue;
	struct vmb_handle_table queues; /* struct vmb_bind_queue *, ids from 1: changed under the
					 * device lock exclusive, looked up under it shared */
	struct vmb_list pending;        /* struct vmb_bind_job.vm_link, in submission order */
	struct vmb_rb_root pending_ranges; /* the same jobs' ranges, an interval tree (pending.c) */
	struct vmb_list orphans;        /* vm_bos left without mappings while jobs were pending */
	/* the newest job that moves a BO linked to this vm (a reference), or NULL: later binds
	 * follow it (vm/job.c); written under the device lock exclusive, read under the vm's lock */
	struct vmb_fence *move_last;
	/* pending jobs that move BOs and re-map here (vm/job.c, remaps_count: a job's own vm, and
	 * every vm of its map operations), counted once per job: while > 0 a bind of this vm follows
	 * each of them (remaps_each), not only move_last, which stands for the newest alone (an
	 * older one may end after it: an eviction follows nothing, a PREFETCH no other vm's
	 * PREFETCH, and a cancelled job signals at once). Written under the device lock exclusive
	 * (a move's job is submitted and ends under it), read under the vm's lock */
	unsigned int nremaps;
	const void *remaps_mark; /* remaps_count's, within one pass (the device lock exclusive) */
	/* the newest eviction or restore job that re-maps in this vm (a reference), or NULL: later
	 * execs follow it (vm/job.c, vmb_vm_exec_residency); written under the device lock
	 * exclusive, read under the vm's lock or by an exec's submission under the device lock
	 * shared */
	struct vmb_fence *resident_last;
	/* exec jobs of this vm submitted and not ended (atomic: ended with no lock): while > 0 no
	 * BO bound here is evicted (vm/migrate.c) */
	atomic_uint execs_active;
	/* restart mode (uapi/vm.c), under the vm's lock: the calls owed a restart (struct
	 * vmb_vm_restart.link; several calls that began before the first of them failed may each
	 * fail partway), the cookies' sequence */
	struct vmb_list restarts;
	uint64_t restart_seq;
	struct vmb_vm_faults faults; /* its own lock (above) */
};

/* A call of a restart-mode vm owed a restart (uapi/vm.c), under the vm's lock. Allocated by a
 * call of several ops before its first op; linked on vm->restarts when it fails after op 0;
 * unlinked and freed by the restart that completes it, by giving it up, or with the vm (no
 * call runs then: a running call holds the vm). */
struct vmb_vm_restart {
	struct vmb_list link;
	uint64_t cookie; /* what the call was given (VMB_VM_BIND_RESTART_DONE: its ops done) */
	uint64_t hash;   /* of the call's vm, queue, flags, ops and syncs */
	uint64_t objs;   /* of the serials of its queue and BOs: a restart acts on the same objects */
	bool running;    /* a restart with this cookie runs: its record is that call's */
};

struct vmb_vm_bo {
	struct vmb_vm *vm;
	struct vmb_bo *bo;
	struct vmb_list vas;     /* struct vmb_va.bo_link */
	/* mappings on `vas` (the vm's lock, as the list): a BO's count over all vms is the sum
	 * (vmb_bo_vm_mappings), kept per vm so that a bind writes nothing the binds of other vms
	 * write (one shared counter in the BO was an atomic on a line every vm's MAP and UNMAP of
	 * the BO wrote: docs/PERFORMANCE.md, "shared lines of a synchronous bind") */
	uint64_t nvas;
	struct vmb_list vm_link; /* in vm->vm_bos */
	struct vmb_list bo_link; /* in bo->vm_bos */
	struct vmb_list job_link; /* in the bind job that touched it, or in vm->orphans */
};

/* @bo's live GPU mappings in every vm: the device lock exclusive (each vm's count is under its
 * lock). */
uint64_t vmb_bo_vm_mappings(const struct vmb_bo *bo);

int vmb_vm_new(struct vmb_device *dev, uint32_t flags, uint64_t va_size, uint64_t page_sizes,
	       struct vmb_vm **out);
/*
 * Runs the vm's pending bind jobs at once, in order, whatever they wait for (their out-fences
 * signal with -ECANCELED), unmaps everything and frees the vm and its queues. Called with the
 * device lock held; drops and retakes it while a worker finishes a job it already started.
 */
void vmb_vm_free(struct vmb_vm *vm);
/*
 * The handle goes (vmb_vm_destroy): run the pending binds (vmb_vm_drain), then drop the handle's
 * reference; vm->closed tells a call that still holds the vm (it waited) that its handle is gone.
 * Exec queues hold references: the page tables live until their jobs are over.
 * vmb_vm_put() frees at the last reference (nothing pending by then: no waiting, no allocation).
 */
void vmb_vm_close(struct vmb_vm *vm);
static inline void vmb_vm_get(struct vmb_vm *vm) { atomic_fetch_add(&vm->refs, 1); }
void vmb_vm_put(struct vmb_vm *vm);
/* The vm leaves every BO's list of vms (struct vmb_vm_bo.bo_link), where PREFETCH's and
 * eviction's re-mapping (which prepares in its page tables and takes a reference on it) and
 * vmb_bo_query find it; its links stay in vm->vm_bos, holding their BO references, until
 * vmb_vm_free(). The device lock exclusive, or shared + the cross lock. vmb_vm_destroy calls it
 * for a vm whose last reference it holds, so that the free after its lock (no device lock held)
 * touches nothing another thread reaches. */
void vmb_vm_unlink_bos(struct vmb_vm *vm);
/* Debug builds: abort unless the caller holds what protects @vm's state: its lock, or the device
 * lock exclusively (dev/core.h needed). */
#define vmb_vm_assert_locked(vm)                                                                   \
	vmb_lock_assert(vmb_lock_mode(&(vm)->lock) != VMB_LOCK_NONE ||                             \
			vmb_lock_mode(&(vm)->dev->lock) == VMB_LOCK_EXCL)
/* The vm's lock; the caller holds the device lock shared (vmb_dev_lock_shared). */
void vmb_vm_lock(struct vmb_vm *vm);
void vmb_vm_unlock(struct vmb_vm *vm);

/*
 * An exec's submission on an exec queue of @vm (exec/exec.h), the device lock shared: does it
 * need the vm's lock? Yes for the vm's first exec (the device's hint of it, dev/device.h
 * exec_hint, runs under the vm's lock: soft marks the vm as walked by engines, which its
 * commits read under that lock) and while any BO of the device is misplaced or an eviction
 * that will misplace one is pending (the residency check walks the vm's BOs,
 * vmb_vm_exec_residency); no otherwise. Neither changes while the device lock is held shared
 * (the first goes from no to yes once, under the vm's lock; evictions are prepared, commit and
 * end under the device lock exclusive).
 */
bool vmb_vm_exec_needs_lock(struct vmb_vm *vm);
/* Some BO of @vm's device lives outside its placements (dev->misplaced), or a pending eviction
 * will leave one there (dev->misplacing): an exec's residency check walks the vm's BOs
 * (vmb_vm_exec_residency). Stable while the device lock is held shared. */
bool vmb_vm_residency_unsettled(const struct vmb_vm *vm);
/* An exec was queued on @vm (after the device's hint of it): the first time, the vm's lock held. */
void vmb_vm_exec_queued(struct vmb_vm *vm);

/* A bind queue of @vm by id (0: the default one), or NULL. */
struct vmb_bind_queue *vmb_vm_queue(struct vmb_vm *vm, uint32_t id);

/* Bans @vm with @err (a negative errno) if it is not banned yet, and tells the device. */
void vmb_vm_ban(struct vmb_vm *vm, int err);

/* Frees an array of user fences, dropping their BOs' pins: any thread, any lock held or none.
 * vmb_ufences_put(): the pins only (an array the caller does not own on the heap). */
void vmb_ufences_free(struct vmb_ufence_out *ufs, unsigned int n);
void vmb_ufences_put(struct vmb_ufence_out *ufs, unsigned int n);

/*
 * What the vm needs of the bind engine (bind.c, whose interface to the entry points is
 * vm/bind.h): running its pending binds at teardown (the first half of vmb_vm_free()) and
 * checking their interval tree.
 */
void vmb_vm_drain(struct vmb_vm *vm);
/* Frees the bind jobs' arrays the vm kept (vm->kept_*), at its end. */
void vmb_vm_kept_free(struct vmb_vm *vm);
/* The pending binds' interval tree: one node per range of each pending job (each job's ranges
 * sorted and disjoint), every subtree's largest end. 0 or -EUCLEAN. */
int vmb_vm_pending_validate(struct vmb_vm *vm);
/* Another vm's pending job moves BOs and re-maps them in @vm (a PREFETCH, an eviction): its
 * preparation holds @vm's page tables until it commits, though @vm has no pending bind. The
 * device lock exclusive. */
bool vmb_vm_remaps_pending(struct vmb_vm *vm);

/*
 * Read (write = false) or write @size bytes at @addr through the page tables, as the GPU does
 * (the device's vm_access): 0, -EFAULT (not mapped, no scratch page), -EACCES (write to a
 * READONLY mapping) or -EIO (the vm is banned); @fault (may be NULL) gets the address that
 * faulted.
 */
int vmb_vm_rw(struct vmb_vm *vm, uint64_t addr, void *data, uint64_t size, bool write, uint64_t *fault);

/* Full check of the vm: VA tree, page tables, vm_bo lists, and that both states agree (a banned
 * vm: the tree and the vm_bo lists only, its page tables are known not to agree). */
int vmb_vm_validate(struct vmb_vm *vm);

/* A fault that ended an exec job on @vm goes in its log (struct vmb_vm_faults), or counts as
 * dropped once the log is full. Any context, a fence callback included: no allocation, only the
 * log's leaf lock. */
void vmb_vm_fault_record(struct vmb_vm *vm, const struct vmb_vm_fault *f);
/* A snapshot of @vm's log: its records into @out (room for VMB_VM_MAX_FAULTS), their number
 * returned, the count of dropped faults in *@dropped. */
uint32_t vmb_vm_faults_read(struct vmb_vm *vm, struct vmb_vm_fault *out, uint64_t *dropped);

#endif
