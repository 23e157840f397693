/* SPDX-License-Identifier: MIT */
/*
 * The device interface: what a device (soft today, CUDA later) implements so that the core
 * (vm, bind, BOs) never knows which device it runs on. The core plans; the device applies.
 *
 * Memory: a device owns its regions' physical address space and gives a BO a backing in a region
 * (struct vmb_backing: opaque to the core, which sees its size and bind granularity only:
 * physical addresses are the device's own values, which only it interprets); the bytes are
 * the BO's own host pages, which the device reaches through the backing. A move is a new backing
 * and a device copy into it (struct vmb_dev_copy; the soft device's backings share the BO's
 * pages, so its copy moves no bytes).
 * Page tables: per vm, the device turns map/clear operations into its own page-table writes in
 * two halves: prepare (allocates everything, may fail) and commit (the writes: a device whose
 * page tables belong to its driver, as CUDA's, may fail them; the soft device never does, but
 * for a test hook). A failed commit bans the vm in the core (vm/vm.h): vm_ban, then no commit to
 * it again.
 * Execution: an exec is device work (struct vmb_dev_exec) that completes a fence the device
 * returns, as drm_sched's run_job; so is a migration's copy (struct vmb_dev_copy: a BO's old
 * backing into its new one, on the device's copy engine, by backing, never by CPU pointer). The
 * GPU view is a device op (vm_access). The device never calls into exec or vm.
 *
 * What the core keeps per device (its identity, capacities and lock, scheduler, stub fence,
 * user-fence event, descriptor watcher, trace ring) is struct vmb_device in dev/core.h: this
 * header needs forward declarations only, so a header that stores a device or a backing (mem/bo.h)
 * sees no scheduler.
 */
#ifndef VMB_DEV_DEVICE_H
#define VMB_DEV_DEVICE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct vmb_device;
struct vmb_fence;
struct vmb_sync;
struct vmb_dev_vm; /* a device's per-vm state (soft: page tables) */
struct vmb_mutex;  /* core/lock.h */

/*
 * A backing: what a MAP points at, opaque to the core. The device makes it (a BO's memory in a
 * region: backing_alloc; application memory, MAP_USERPTR: backing_userptr) and frees it; the
 * core copies it by value, hands it back in map operations and reads only `size` and `align`.
 * `align` is the backing's bind granularity, set by the device: every MAP of it starts and ends
 * at a multiple of `align` of the backing (bo_offset, bo_offset + range), and no UNMAP or MAP
 * cuts a mapping of it at a byte of the backing that is not such a multiple (vm/bind.c rejects
 * either at prepare with -EINVAL, nothing changed). A multiple of the device's min_page_size,
 * dividing `size`; not necessarily a power of two (a BO of one chunk: its size). The soft device:
 * the BO's chunk_size (its min_page_size by default); CUDA: the chunk size, whose allocations it
 * can only map and unmap whole. How a device places the memory (contiguity, its page sizes) stays
 * its own.
 */
struct vmb_backing {
	uint64_t size;
	uint64_t align;   /* the bind granularity (above) */
	void *dev_ptr;    /* the device's (the soft device: dev/soft/phys.h) */
	uint64_t dev_u64; /* the device's */
};

/* One page-table change over [start, last]. */
enum vmb_map_kind { VMB_MAP_OP_MAP, VMB_MAP_OP_CLEAR };
#define VMB_MAP_READONLY (1u << 0)
#define VMB_MAP_NULL (1u << 1)
/* MAP: nothing is mapped in [start, last] when it commits, the core's guarantee for a bind's MAP
 * (its plan's clears of what it replaces come before it in the job, and every earlier bind that
 * overlaps it has committed: vm/job.c's one rule): the device need not clear the range first.
 * Re-maps of existing mappings (PREFETCH, eviction) never set it. */
#define VMB_MAP_FRESH (1u << 2)
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

/*
 * An exec as device work: what the exec layer asks of an engine, and what the device reports
 * back. The device never calls into exec or vm: it runs the command buffer through @vm's page
 * tables (its own), and signals `done` when it is over.
 */
struct vmb_dev_exec {
	/* in, set before exec_run by the exec layer, which keeps @vm alive until `done` signals */
	struct vmb_dev_vm *vm; /* the device reads its page tables under locks of its own (soft:
				* dev/soft/pt.h), after the device lock shared (dev/core.h) */
	uint64_t batch;   /* GPU VA of the command buffer */
	uint32_t engine;  /* index into dev->engines */
	bool lr;          /* no job timeout (dev->job_timeout_ns otherwise) */
	bool intel;       /* the batch holds Intel's MI commands (VMB_EXEC_QUEUE_CMDSET_INTEL); @batch
			   * is then 4-byte aligned and below 2^48 */
	atomic_bool cancel; /* set by the exec layer at any time (a killed or banned queue): the
			     * device ends the work with -ECANCELED at its next time slice, before
			     * any command if it has not started */
	/* out, written by the device before `done` signals */
	int error;           /* 0, -EFAULT (fault_*), -EINVAL (malformed), -ETIMEDOUT, -ECANCELED */
	uint64_t fault_addr; /* -EFAULT: the first address that faulted */
	uint8_t fault_access; /* -EFAULT: VMB_FAULT_READ / WRITE / ATOMIC (vmbind/vm.h) */
	uint8_t fault_type;   /* -EFAULT: VMB_FAULT_TYPE_NOT_PRESENT / WRITE_ACCESS */
	uint8_t fault_level;  /* -EFAULT: the page-table level whose entry stopped the walk (0: the
			       * last level, 4 KiB entries; NOT_PRESENT: the level with no entry,
			       * WRITE_ACCESS: the leaf's) */
	int64_t start_ns;    /* its first time slice (0: it never ran) */
	struct vmb_fence *done; /* the device's fence, made by exec_create */
};

/*
 * A copy as device work (a PREFETCH's migration, vm/migrate.c): the device's copy engine makes
 * @dst hold the bytes of @src (both @size bytes, backings of the device's regions), reaching them
 * by device address as a DMA engine does, and signals `done`. A device whose backings of one BO
 * share that BO's pages (the soft device: backing_alloc's @host) has no bytes to move; it still
 * runs the copy as device work, in order, and may fail it.
 */
struct vmb_dev_copy {
	/* in, set before copy_run by the caller, which keeps both backings alive until `done` */
	const struct vmb_backing *src, *dst;
	uint64_t size;
	/* out, written by the device before `done` signals */
	int error; /* 0, -EIO (the device could not copy: the bytes of @dst are undefined),
		    * -ECANCELED (the device stopped: engines_stop) */
	struct vmb_fence *done; /* the device's fence, made by copy_create */
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
	 * backing) in @region: the device reaches those pages at the backing's addresses (a device
	 * with memory of its own, CUDA's, may leave @host alone: then backing_cpu_map says
	 * -EOPNOTSUPP). @chunk: the BO's chunk size (vmb_bo_create's chunk_size, checked by the
	 * caller: a power of two, a multiple of min_page_size, dividing @size), or 0 for the
	 * device's default (soft: min_page_size; CUDA: the whole BO, one allocation); the device
	 * allocates in pieces of that size and sets out->align to the BO's effective chunk size
	 * (what vmb_bo_query reports), which the core passes as @chunk to every later
	 * backing_alloc of the BO (a move): then it may also be @size itself, not a power of two.
	 * 0, -ENOSPC, -ENOMEM. Called from several threads at once: under the device lock shared
	 * (a BO's creation; a bind backing a BO, with the cross lock) or exclusive (a move); the
	 * device keeps its own state consistent (the soft device: a lock per region). */
	int (*backing_alloc)(struct vmb_device *dev, uint32_t region, uint64_t size, uint64_t chunk,
			     const void *host, struct vmb_backing *out);
	/* The device stops reaching the pages there; the pages themselves are not touched. With or
	 * without the device lock (a BO's last reference may go on any thread). */
	void (*backing_free)(struct vmb_device *dev, uint32_t region, struct vmb_backing *b);
	/* A backing of the application's memory [addr, addr + size) (MAP_USERPTR; checked readable
	 * by the caller), which the device reaches in place; freed with backing_userptr_free once
	 * no page-table write still needs it (the soft device allocates nothing; its align is
	 * min_page_size). 0, -ENOMEM, -EOPNOTSUPP (a device without MAP_USERPTR, no
	 * VMB_CAP_USERPTR: CUDA). */
	int (*backing_userptr)(struct vmb_device *dev, uint64_t addr, uint64_t size, struct vmb_backing *out);
	void (*backing_userptr_free)(struct vmb_device *dev, struct vmb_backing *b);
	/* May the CPU map the pages of a BO whose memory is (or is about to be) in @region, @b its
	 * current backing (vmb_bo_mmap)? 0, or -EOPNOTSUPP: memory the CPU cannot reach (a
	 * discrete GPU's VRAM, any memory of a device that does not work on backing_alloc's @host
	 * pages). 0 promises that the BO's @host pages are its memory: the CPU map is of them.
	 * NULL: always 0. Device lock held. */
	int (*backing_cpu_map)(struct vmb_device *dev, uint32_t region, const struct vmb_backing *b);

	/* page tables */
	/* @va_size (a multiple of min_page_size, <= 2^va_bits; va_size 0 of vmb_vm_create is
	 * dev->va_size_default, resolved by the caller): nothing at or past it translates;
	 * @scratch: unmapped bytes read 0 and writes to them are dropped
	 * (VMB_VM_CREATE_SCRATCH_PAGE), for the GPU view and the engines. *@gpu_base: where the
	 * vm's address 0 is in the device's own address space (a kernel uses gpu_base + addr;
	 * CUDA: the reserved range's start), reported by vmb_vm_create; soft: 0. 0, -ENOMEM (also
	 * no address space to reserve), -EINVAL (@va_size more than the device can give),
	 * -EOPNOTSUPP (@scratch on a device without VMB_CAP_SCRATCH_PAGE: CUDA). */
	int (*vm_create)(struct vmb_device *dev, uint64_t va_size, uint64_t page_sizes, bool scratch,
			 struct vmb_dev_vm **out, uint64_t *gpu_base);
	void (*vm_destroy)(struct vmb_device *dev, struct vmb_dev_vm *vm);
	/* A preparation for binds in @vm (the vm's lock held, or the device lock exclusive, as for
	 * map_prepare; prep_release comes under the same): 0 or -ENOMEM; without memory a device
	 * should still give a preparation good for CLEARs (UNMAP cannot fail: vm/vm.h), on which a
	 * MAP's map_prepare fails with -ENOMEM. A device may keep a released one per vm for the
	 * next (soft). */
	int (*prep_create)(struct vmb_device *dev, struct vmb_dev_vm *vm, struct vmb_dev_prep **out);
	/* Prepares @op in @p (everything its map_commit will need: it cannot allocate). A
	 * preparation may hold several MAPs of one range, of which fewer commit (their commits
	 * with the same range, flags and offset): a MAP of a BO that a pending job moves is prepared
	 * against both the BO's backings, and commits once, against whichever it has then
	 * (vm/bind.c, map_moving); what the others prepared is released with @p. */
	int (*map_prepare)(struct vmb_dev_vm *vm, const struct vmb_map_op *op, struct vmb_dev_prep *p);
	/* Optional (NULL: none). The core is about to plan a MAP or UNMAP of [@start, @last]: the
	 * device may start fetching what map_prepare and map_commit will read there (prefetches;
	 * it changes nothing), so that its cache misses overlap the VA tree's. vm lock held. */
	void (*map_hint)(struct vmb_dev_vm *vm, uint64_t start, uint64_t last);
	/* 0, or a negative errno (-EIO, -ENOMEM: the device could not write): then the device may
	 * have applied a part of @op, and the core calls vm_ban and never commits to @vm again. */
	int (*map_commit)(struct vmb_dev_vm *vm, const struct vmb_map_op *op, struct vmb_dev_prep *p);
	/* Optional (NULL: none), a pair, required by map_commit where given: every map_commit on
	 * @vm runs between them (one bind's on @vm between one pair: the core's job_commit), the
	 * vm's lock or the device lock exclusive held. The device may take there what its own
	 * readers of the page tables hold instead of the vm's lock (soft: the walk lock, an
	 * engine's time slice, dev/soft/pt.h), so that they see a bind's page-table writes all at
	 * once. Nothing else is called between them. */
	void (*commit_begin)(struct vmb_dev_vm *vm);
	void (*commit_end)(struct vmb_dev_vm *vm);
	/* @vm's page tables are no longer trusted (a commit failed): from now on nothing translates
	 * through them (vm_access, map_check and the engines fault; a scratch vm reads 0), whatever
	 * memory they still point at; they are freed by vm_destroy. Cannot fail; device lock held. */
	void (*vm_ban)(struct vmb_dev_vm *vm);
	/* Releases what @p still holds in @vm, then frees @p. */
	void (*prep_release)(struct vmb_dev_vm *vm, struct vmb_dev_prep *p);
	/* The consistency check (vmb_vm_validate) about one byte: does @va of @vm translate as
	 * byte @off of @b with @flags (VMB_MAP_READONLY; VMB_MAP_NULL, @b NULL)? 0, or -EUCLEAN
	 * (the device says on stderr what it found). How the device walks its page tables stays
	 * its own: validation is all the core asks. Device lock held. */
	int (*map_check)(struct vmb_dev_vm *vm, uint64_t va, const struct vmb_backing *b, uint64_t off,
			 uint32_t flags);
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
	/* Optional (NULL: none), a pair. exec_hint: @x (vm, batch set) is being queued, called for
	 * every exec queued, under its exec queue's submit lock; the vm's first with the vm's lock
	 * held, later ones maybe without it (exec/exec.h), so what it reads of the page tables it
	 * reads under the device's own lock of them, which it may not wait for (the exec call
	 * would wait behind engines and commits): the device may note where the batch's first
	 * command is (a page walk; no fault, no allocation, nothing the exec sees changed), and
	 * (the first) that its engines walk @x's vm from now on (soft: its commits then take the
	 * walk lock).
	 * exec_prefault: that lock dropped, no lock of the vm held, before @x can run (the exec
	 * layer calls it before arming the job): the device may touch what exec_hint noted, so
	 * that a first touch's page fault of its own mapping of that memory is taken here, not
	 * in the exec's first time slice (soft: its alias of BO pages, dev/soft/region.c). */
	void (*exec_hint)(struct vmb_dev_exec *x);
	void (*exec_prefault)(struct vmb_dev_exec *x);
	struct vmb_fence *(*exec_run)(struct vmb_device *dev, struct vmb_dev_exec *x);
	void (*exec_destroy)(struct vmb_device *dev, struct vmb_dev_exec *x);
	void (*engines_stop)(struct vmb_device *dev);

	/* copies. copy_create: a request with its `done` fence; where allocating is allowed (a
	 * bind's prepare, device lock held): 0, -ENOMEM, -EAGAIN (the copy engine's thread).
	 * copy_run: hand @c to the copy engine, as exec_run (signalling path, no allocation, no
	 * waiting, no device lock): returns c->done, which the device signals with c->error once
	 * the copy is over (maybe before copy_run returns). Copies run in the order they are
	 * handed over. engines_stop stops the copy engine too: what it still has, and what comes
	 * later, ends with -ECANCELED. copy_destroy: frees @c once `done` signalled or if it never
	 * ran. */
	int (*copy_create)(struct vmb_device *dev, struct vmb_dev_copy **out);
	struct vmb_fence *(*copy_run)(struct vmb_device *dev, struct vmb_dev_copy *c);
	void (*copy_destroy)(struct vmb_device *dev, struct vmb_dev_copy *c);

	/* streams of the device's driver (include/vmbind/cuda.h); NULL on a device without them.
	 * stream_wait: @stream's later work waits until each of the @nf fences @f has signalled
	 * (whatever its error) and each u64 at host address uf[i].addr is >= uf[i].value (@nv
	 * user fences): all of them queued, or on an error none (a failed call changes nothing):
	 * -EFAULT (memory the device cannot read), -EAGAIN (fewer than @nf free slots), -EINVAL
	 * (not a stream of the device: the driver refuses the first; a driver that fails later
	 * leaves the earlier queued). stream_signal: a new fence (a reference) that signals once
	 * @stream's work so far is done: 0, -EINVAL, -EAGAIN (no free slot), -ENOMEM. Called with
	 * no lock held. */
	int (*stream_wait)(struct vmb_device *dev, uint64_t stream, struct vmb_fence *const *f, unsigned int nf,
			   const struct vmb_sync *uf, unsigned int nv);
	int (*stream_signal)(struct vmb_device *dev, uint64_t stream, struct vmb_fence **out);
};


#endif
