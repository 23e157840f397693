/* SPDX-License-Identifier: MIT */
/*
 * The CUDA device ("cuda", "cuda:N"): the GPU N of the CUDA driver, through its primary context
 * (the one the CUDA runtime uses, so the application's streams and pointers are this device's).
 * Implements struct vmb_device_ops over the driver's virtual-memory calls; the facts it is built
 * on were measured on an H100 (docs/PERFORMANCE.md, "CUDA device").
 *
 * Memory: a BO's backing is one or more physical allocations (cuMemCreate), its chunks, in VRAM
 * (device location) or SYSTEM (host NUMA location); the BO's host pages (backing_alloc's @host)
 * are not used. Chunks are created zeroed (a copy on the device's own stream). The CPU cannot
 * map them (backing_cpu_map: -EOPNOTSUPP).
 * A vm is one reserved VA range (cuMemAddressReserve) at `base`; the device keeps its own record
 * of what it mapped there (`maps`: one node per cuMemMap, a whole chunk, or one granule of the
 * NULL page), which is what it unmaps (the driver unmaps only exactly what one cuMemMap mapped),
 * what map_check, vm_validate and the GPU view consult. The core refuses (-EINVAL, at prepare)
 * a cut inside a chunk, by the BO's bind granularity (struct vmb_backing.align = the chunk). A NULL mapping is the one shared zero page, mapped read-only granule by granule:
 * reads give 0, a write faults the GPU context (no scratch pages on this device).
 * Commit: cuMemMap of every piece, then cuMemSetAccess over the op (in 64 MiB calls: set_access); a failure unmaps every
 * piece the same preparation (the bind's ops in this vm so far) mapped, so an array is never
 * left half mapped, and returns the errno (the core bans the vm). None of these calls waits for
 * the GPU (measured), so they run in commits; copies run only asynchronously on the device's own
 * non-blocking stream (a synchronous copy would wait for a blocked legacy stream).
 * No engines (execution is the application's streams, tied to binds by include/vmbind/cuda.h),
 * no scratch pages, no MAP_USERPTR: -EOPNOTSUPP. A PREFETCH copies between the two backings'
 * allocations through a private staging range, on the device's stream (cu_copy_run).
 *
 * Locking: a vm's `maps` and `banned` are protected by the core's lock of that vm (dev/core.h:
 * the device lock shared plus the vm's lock, or the device lock exclusive). The driver is
 * thread-safe; the device's stream takes work from any thread.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <vmbind/client.h>

#include "core/itree.h"
#include "dev/cuda/cuda.h"
#include "dev/registry.h"

/* One cuMemMap in a vm: [start, last] (offsets from the vm's base). */
struct cu_map {
	struct vmb_rb_node rb;
	uint64_t start, last;
	CUmemGenericAllocationHandle h;
	const struct cu_backing *b; /* NULL: the NULL page */
	uint64_t off;               /* the chunk's offset in the backing */
	uint32_t flags;             /* VMB_MAP_READONLY, VMB_MAP_NULL */
	struct vmb_dev_prep *prep;  /* the preparation that mapped it, until released */
	struct vmb_list plink;      /* in prep->mapped while prep is set */
	struct cu_map *next;        /* in a preparation's spare list */
};
VMB_ITREE_DEFINE_DISJOINT(cmap, struct cu_map, rb, start, last)

/* A backing's chunks: n of `chunk` bytes each. */
struct cu_backing {
	uint64_t chunk;
	uint32_t n, region;
	CUmemGenericAllocationHandle h[];
};

struct vmb_dev_vm {
	struct cu_device *cd;
	CUdeviceptr base;
	uint64_t size;
	struct vmb_rb_root maps; /* struct cu_map, disjoint */
	uint64_t mapped;         /* bytes in maps */
	bool banned;
};

struct vmb_dev_prep {
	struct cu_map *spare;  /* nodes for the MAPs prepared, in the order they are committed */
	struct vmb_list mapped; /* nodes this preparation mapped (cu_map.plink): undone on failure */
};

static void cu_warn(struct cu_device *cd, const char *what, CUresult r);

/*
 * Which of the calling thread's open cu_enter()s pushed: bit i for nesting depth i (a failed
 * push is never followed by a pop, which would pop the caller's own context). Deeper than 64
 * never happens (the device nests at most two).
 */
static _Thread_local uint64_t enter_failed;
static _Thread_local unsigned int enter_depth;

static CUresult enter_ctx(struct cu_device *cd, CUcontext ctx)
{
	CUresult r = cd->cu->cuCtxPushCurrent(ctx);
	unsigned int i = enter_depth++ & 63;
	if (r) {
		enter_failed |= 1ull << i;
		cu_warn(cd, "cuCtxPushCurrent", r);
	} else {
		enter_failed &= ~(1ull << i);
	}
	return r;
}

CUresult cu_enter(struct cu_device *cd)
{
	return enter_ctx(cd, cd->ctx);
}

CUresult cu_enter_own(struct cu_device *cd)
{
	return enter_ctx(cd, cd->wctx);
}

void cu_leave(struct cu_device *cd)
{
	CUcontext prev;
	unsigned int i = --enter_depth & 63;
	if (enter_failed & (1ull << i))
		enter_failed &= ~(1ull << i); /* nothing was pushed */
	else
		cd->cu->cuCtxPopCurrent(&prev);
}

static void cu_warn(struct cu_device *cd, const char *what, CUresult r)
{
	fprintf(stderr, "vmbind: cuda:%d: %s failed: %s\n", cd->ordinal, what, vmb_cu_name(cd->cu, r));
}

static CUmemAccessDesc access_desc(const struct cu_device *cd, bool readonly)
{
	CUmemAccessDesc a = {0};
	a.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
	a.location.id = cd->ordinal;
	a.flags = readonly ? CU_MEM_ACCESS_FLAGS_PROT_READ : CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
	return a;
}

static CUresult create_handle(struct cu_device *cd, uint32_t region, uint64_t size, CUmemGenericAllocationHandle *h)
{
	CUmemAllocationProp p = {0};
	p.type = CU_MEM_ALLOCATION_TYPE_PINNED;
	if (region == VMB_REGION_SYSTEM) {
		p.location.type = CU_MEM_LOCATION_TYPE_HOST_NUMA;
		p.location.id = cd->host_numa;
	} else {
		p.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
		p.location.id = cd->ordinal;
	}
	return cd->cu->cuMemCreate(h, size, &p, 0);
}

/*
 * cuMemSetAccess over [@va, @va + @len) of mappings of @piece bytes each, in calls of at most
 * SET_ACCESS_BATCH bytes (at least one piece). The driver's cost is per mapped allocation, not per
 * call (measured: 25 us per 2 MiB handle whether 8 or 512 go in one call), but one call over 512
 * handles holds the driver ~13 ms, and the VMM calls of every other thread (another vm's bind)
 * queue behind it (bench cuda (f)); calls of 64 MiB bound that wait at ~1 ms.
 */
#define SET_ACCESS_BATCH (64ull << 20)
static CUresult set_access(struct cu_device *cd, CUdeviceptr va, uint64_t len, uint64_t piece, const CUmemAccessDesc *a)
{
	uint64_t step = piece >= SET_ACCESS_BATCH ? piece : SET_ACCESS_BATCH / piece * piece;
	CUresult r = CUDA_SUCCESS;
	for (uint64_t at = 0; at < len && !r; at += step)
		r = cd->cu->cuMemSetAccess(va + at, len - at < step ? len - at : step, a, 1);
	return r;
}

/* Zero @size bytes mapped at @va, on the device's stream (its own context), and wait. */
static CUresult zero_range(struct cu_device *cd, CUdeviceptr va, uint64_t size)
{
	CUresult r = cu_enter_own(cd);
	if (!r && !(r = cd->cu->cuMemsetD8Async(va, 0, size, cd->stream)))
		r = cd->cu->cuStreamSynchronize(cd->stream);
	cu_leave(cd);
	return r;
}

/* Zero @size bytes of @h through a mapping of its own, on the device's stream. */
static CUresult zero_handle(struct cu_device *cd, CUmemGenericAllocationHandle h, uint64_t size)
{
	const struct vmb_cu *cu = cd->cu;
	CUdeviceptr va;
	CUresult r = cu->cuMemAddressReserve(&va, size, cd->gran, 0, 0);
	if (r)
		return r;
	CUmemAccessDesc a = access_desc(cd, false);
	if (!(r = cu->cuMemMap(va, size, 0, h, 0))) {
		if (!(r = cu->cuMemSetAccess(va, size, &a, 1)))
			r = zero_range(cd, va, size);
		cu->cuMemUnmap(va, size);
	}
	cu->cuMemAddressFree(va, size);
	return r;
}

static CUresult stage_map(struct cu_device *cd, const struct cu_backing *b, CUdeviceptr at, uint32_t *n);

/* Zero every chunk of @b at once: all mapped into one staging range, one memset, one wait (the
 * caller holds the device lock shared, a bind backing a BO the cross lock too: one chunk at a time
 * cost ~100 us a chunk). */
static CUresult zero_backing(struct cu_device *cd, const struct cu_backing *b)
{
	const struct vmb_cu *cu = cd->cu;
	uint64_t size = (uint64_t)b->n * b->chunk;
	uint32_t n = 0;
	CUdeviceptr va;
	CUresult r = cu->cuMemAddressReserve(&va, size, cd->gran, 0, 0);
	if (r)
		return r;
	if (!(r = stage_map(cd, b, va, &n)))
		r = zero_range(cd, va, size);
	for (uint32_t i = 0; i < n; i++)
		cu->cuMemUnmap(va + (uint64_t)i * b->chunk, b->chunk);
	cu->cuMemAddressFree(va, size);
	return r;
}

static uint64_t cu_region_free(struct vmb_device *d, uint32_t region)
{
	struct cu_device *cd = to_cu(d);
	if (region == VMB_REGION_SYSTEM)
		return (uint64_t)sysconf(_SC_AVPHYS_PAGES) * (uint64_t)sysconf(_SC_PAGESIZE);
	size_t free_b = 0, total = 0;
	if (!cu_enter(cd))
		cd->cu->cuMemGetInfo(&free_b, &total);
	cu_leave(cd);
	return free_b;
}

static int cu_backing_alloc(struct vmb_device *d, uint32_t region, uint64_t size, uint64_t chunk,
			    const void *host, struct vmb_backing *out)
{
	struct cu_device *cd = to_cu(d);
	if (!chunk)
		chunk = size; /* by default one allocation: the whole BO */
	uint32_t n = (uint32_t)(size / chunk);
	struct cu_backing *b = calloc(1, sizeof(*b) + n * sizeof(b->h[0]));
	CUresult r = CUDA_SUCCESS;
	uint32_t i;

	(void)host;
	if (!b)
		return -ENOMEM;
	b->chunk = chunk;
	b->n = n;
	b->region = region;
	if (cu_enter(cd)) {
		cu_leave(cd);
		free(b);
		return -ENOMEM;
	}
	for (i = 0; i < n && !r; i++)
		r = create_handle(cd, region, chunk, &b->h[i]);
	if (r)
		i--; /* h[i - 1] was not created */
	else if ((r = zero_backing(cd, b)))
		i = n;
	if (r)
		while (i-- > 0)
			cd->cu->cuMemRelease(b->h[i]);
	cu_leave(cd);
	if (r) {
		free(b);
		if (r != CUDA_ERROR_OUT_OF_MEMORY)
			cu_warn(cd, "cuMemCreate/zeroing", r);
		return vmb_cu_alloc_errno(r); /* a full region: -ENOSPC (the next placement is tried) */
	}
	*out = (struct vmb_backing){.size = size, .align = chunk, .dev_ptr = b};
	return 0;
}

static void cu_backing_free(struct vmb_device *d, uint32_t region, struct vmb_backing *vb)
{
	struct cu_device *cd = to_cu(d);
	struct cu_backing *b = vb->dev_ptr;
	(void)region;
	/* a chunk still mapped somewhere lives until its last unmap (the driver's rule) */
	for (uint32_t i = 0; i < b->n; i++)
		cd->cu->cuMemRelease(b->h[i]);
	free(b);
	vb->dev_ptr = NULL;
}

static int cu_backing_userptr(struct vmb_device *d, uint64_t addr, uint64_t size, struct vmb_backing *out)
{
	return -EOPNOTSUPP; /* the driver maps no application memory at a chosen address */
}

static void cu_backing_userptr_free(struct vmb_device *d, struct vmb_backing *b)
{
}

static int cu_backing_cpu_map(struct vmb_device *d, uint32_t region, const struct vmb_backing *b)
{
	return -EOPNOTSUPP; /* device allocations have no CPU mapping here */
}

static int cu_vm_create(struct vmb_device *d, uint64_t va_size, uint64_t page_sizes, bool scratch,
			struct vmb_dev_vm **out, uint64_t *gpu_base)
{
	struct cu_device *cd = to_cu(d);
	if (scratch)
		return -EOPNOTSUPP; /* no scratch pages on this device */
	struct vmb_dev_vm *vm = calloc(1, sizeof(*vm));
	if (!vm)
		return -ENOMEM;
	CUresult r = cu_enter(cd);
	if (!r)
		r = cd->cu->cuMemAddressReserve(&vm->base, va_size, cd->gran, 0, 0);
	cu_leave(cd);
	if (r) {
		free(vm);
		if (r != CUDA_ERROR_OUT_OF_MEMORY && r != CUDA_ERROR_INVALID_VALUE)
			cu_warn(cd, "cuMemAddressReserve", r);
		return -ENOMEM; /* (vmb_vm_create has no -EIO) */
	}
	vm->cd = cd;
	vm->size = va_size;
	*out = vm;
	*gpu_base = vm->base;
	return 0;
}

static void unmap_node(struct vmb_dev_vm *vm, struct cu_map *m)
{
	CUresult r = vm->cd->cu->cuMemUnmap(vm->base + m->start, m->last - m->start + 1);
	if (r)
		cu_warn(vm->cd, "cuMemUnmap", r);
	vm->mapped -= m->last - m->start + 1;
}

static void drop_node(struct vmb_dev_vm *vm, struct cu_map *m);

static void cu_vm_destroy(struct vmb_device *d, struct vmb_dev_vm *vm)
{
	struct cu_device *cd = to_cu(d);
	struct cu_map *m;
	cu_enter(cd);
	while ((m = cmap_first(&vm->maps)))
		drop_node(vm, m);
	cd->cu->cuMemAddressFree(vm->base, vm->size);
	cu_leave(cd);
	free(vm);
}

/* Without memory, a preparation for CLEARs only (they need nothing): never written. */
static struct vmb_dev_prep no_mem_prep;

static int cu_prep_create(struct vmb_device *d, struct vmb_dev_vm *vm, struct vmb_dev_prep **out)
{
	(void)vm;
	struct vmb_dev_prep *p = calloc(1, sizeof(*p));
	if (p)
		vmb_list_init(&p->mapped);
	*out = p ? p : &no_mem_prep;
	return 0;
}

/* The pieces of a MAP: whole chunks of its backing, or granules of the NULL page. */
static uint64_t piece_size(const struct vmb_dev_vm *vm, const struct vmb_map_op *op)
{
	return op->flags & VMB_MAP_NULL ? vm->cd->gran : ((const struct cu_backing *)op->backing->dev_ptr)->chunk;
}

/*
 * Not against `maps`: a preparation runs when the bind is submitted, and the binds before it
 * (earlier ops of the same call, pending binds) are not committed yet, so `maps` may still hold
 * a chunk they remove (an UNMAP of a whole one-chunk mapping, then a MAP into its middle). The
 * core has checked every cut against the BOs' chunks as those binds leave the vm (struct
 * vmb_backing.align), which is where the nodes will be at commit; clear_range still refuses a
 * cut inside a node there.
 */
static int cu_map_prepare(struct vmb_dev_vm *vm, const struct vmb_map_op *op, struct vmb_dev_prep *p)
{
	uint64_t len = op->last - op->start + 1;
	if (op->start & (vm->cd->gran - 1) || len & (vm->cd->gran - 1))
		return -EINVAL;
	if (op->kind == VMB_MAP_OP_CLEAR)
		return 0;
	uint64_t piece = piece_size(vm, op);
	if (!(op->flags & VMB_MAP_NULL) && (op->offset % piece || len % piece))
		return -EINVAL; /* a chunk is mapped whole, from its start */
	if (p == &no_mem_prep)
		return -ENOMEM;
	struct cu_map **tail = &p->spare;
	while (*tail)
		tail = &(*tail)->next;
	for (uint64_t at = 0; at < len; at += piece) {
		struct cu_map *m = calloc(1, sizeof(*m));
		if (!m)
			return -ENOMEM; /* the nodes so far stay in the preparation: released with it */
		*tail = m;
		tail = &m->next;
	}
	return 0;
}

/* A node leaves the tree and is freed. */
static void drop_node(struct vmb_dev_vm *vm, struct cu_map *m)
{
	unmap_node(vm, m);
	cmap_remove(&vm->maps, m);
	if (m->prep)
		vmb_list_del(&m->plink);
	free(m);
}

/* Undo what @p mapped (a commit failed): nothing of the bind's MAPs in @vm stays mapped. */
static void unwind_prep(struct vmb_dev_vm *vm, struct vmb_dev_prep *p)
{
	while (!vmb_list_empty(&p->mapped))
		drop_node(vm, vmb_container_of(p->mapped.next, struct cu_map, plink));
}

/* The nodes meeting [start, last] go: unmapped and freed. */
static int clear_range(struct vmb_dev_vm *vm, uint64_t start, uint64_t last)
{
	struct cu_map *m = cmap_iter_first(&vm->maps, start, last), *next;
	for (; m; m = next) {
		next = cmap_iter_next(m, start, last);
		if (m->start < start || m->last > last)
			return -EINVAL; /* a cut inside a chunk (prepare checked it for the tree it saw) */
		drop_node(vm, m);
	}
	return 0;
}

static int cu_map_commit(struct vmb_dev_vm *vm, const struct vmb_map_op *op, struct vmb_dev_prep *p)
{
	struct cu_device *cd = vm->cd;
	const struct vmb_cu *cu = cd->cu;
	int err;

	if (cu_enter(cd)) {
		/* nothing of this op mapped; what the preparation's earlier ops mapped goes
		 * (best effort without the context) */
		err = -EIO;
		unwind_prep(vm, p);
		goto out;
	}
	/* a MAP over mapped VA (a PREFETCH's re-map) replaces what is there */
	if ((err = clear_range(vm, op->start, op->last)) || op->kind == VMB_MAP_OP_CLEAR)
		goto out;
	const struct cu_backing *b = op->flags & VMB_MAP_NULL ? NULL : op->backing->dev_ptr;
	uint64_t piece = piece_size(vm, op), len = op->last - op->start + 1;
	CUresult r = CUDA_SUCCESS;
	for (uint64_t at = 0; at < len; at += piece) {
		struct cu_map *m = p->spare;
		p->spare = m->next;
		m->start = op->start + at;
		m->last = m->start + piece - 1;
		m->b = b;
		m->off = b ? op->offset + at : 0;
		m->h = b ? b->h[m->off / b->chunk] : cd->zero;
		m->flags = op->flags & (VMB_MAP_READONLY | VMB_MAP_NULL);
		if ((err = vmb_commit_should_fail()))
			r = CUDA_ERROR_OUT_OF_MEMORY; /* the test hook: as the driver failing here */
		else
			r = cu->cuMemMap(vm->base + m->start, piece, 0, m->h, 0);
		if (r) {
			free(m);
			break;
		}
		m->prep = p;
		vmb_list_add_tail(&m->plink, &p->mapped);
		cmap_insert(&vm->maps, m);
		vm->mapped += piece;
	}
	if (!r) {
		CUmemAccessDesc a = access_desc(cd, op->flags & (VMB_MAP_READONLY | VMB_MAP_NULL));
		r = set_access(cd, vm->base + op->start, len, piece, &a);
	}
	if (r) {
		if (!err) {
			cu_warn(cd, "cuMemMap/cuMemSetAccess", r);
			err = vmb_cu_errno(r);
			if (err == -EINVAL || err == -EOPNOTSUPP)
				err = -EIO;
		}
		unwind_prep(vm, p);
	}
out:
	cu_leave(cd);
	return err;
}

static void cu_vm_ban(struct vmb_dev_vm *vm)
{
	/* what is mapped stays (a kernel still using it would fault the context): only the
	 * library's view stops translating */
	vm->banned = true;
}

static void cu_prep_release(struct vmb_dev_vm *vm, struct vmb_dev_prep *p)
{
	if (p == &no_mem_prep)
		return;
	while (!vmb_list_empty(&p->mapped)) {
		struct cu_map *m = vmb_container_of(p->mapped.next, struct cu_map, plink);
		vmb_list_del(&m->plink);
		m->prep = NULL;
	}
	for (struct cu_map *m = p->spare, *next; m; m = next) {
		next = m->next;
		free(m);
	}
	free(p);
}

/* The node that maps @va, or NULL. */
static struct cu_map *node_at(struct vmb_dev_vm *vm, uint64_t va)
{
	struct cu_map *m = cmap_floor(&vm->maps, va, NULL);
	return m && m->last >= va ? m : NULL;
}

static int cu_map_check(struct vmb_dev_vm *vm, uint64_t va, const struct vmb_backing *b, uint64_t off,
			uint32_t flags)
{
	struct cu_map *m = vm->banned ? NULL : node_at(vm, va);
	if (!m) {
		fprintf(stderr, "vmbind: cuda: %#llx is not mapped\n", (unsigned long long)va);
		return -EUCLEAN;
	}
	bool ok = m->flags == (flags & (VMB_MAP_READONLY | VMB_MAP_NULL)) &&
		  (flags & VMB_MAP_NULL ? !m->b : b && m->b == b->dev_ptr && m->off + (va - m->start) == off);
	if (!ok) {
		fprintf(stderr, "vmbind: cuda: %#llx maps chunk offset %#llx flags %#x, not offset %#llx flags %#x\n",
			(unsigned long long)va, (unsigned long long)(m->off + (va - m->start)), m->flags,
			(unsigned long long)off, flags);
		return -EUCLEAN;
	}
	return 0;
}

static int cu_vm_access(struct vmb_dev_vm *vm, uint64_t addr, void *buf, uint64_t size, uint32_t flags,
			uint64_t *fault)
{
	struct cu_device *cd = vm->cd;
	const struct vmb_cu *cu = cd->cu;
	bool write = flags & (VMB_DEV_ACCESS_WRITE | VMB_DEV_ACCESS_ATOMIC_ADD);

	/* what the library mapped, by its own record: a hole faults, a write to a read-only (or
	 * NULL) mapping is -EACCES; nothing reaches the GPU before that is known */
	for (uint64_t a = addr; a < addr + size;) {
		struct cu_map *m = vm->banned ? NULL : node_at(vm, a);
		if (!m || (write && m->flags)) {
			if (fault)
				*fault = a;
			return m ? -EACCES : -EFAULT;
		}
		a = m->last + 1;
	}
	CUresult r;
	CUdeviceptr at = vm->base + addr;
	if ((r = cu_enter_own(cd))) {
		; /* no copy without the context */
	} else if (flags & VMB_DEV_ACCESS_ATOMIC_ADD) {
		/* not atomic against the GPU's own accesses: against the library's, under the vm's lock */
		uint64_t old = 0, add;
		memcpy(&add, buf, sizeof(add));
		if (!(r = cu->cuMemcpyDtoHAsync(&old, at, 8, cd->stream)) && !(r = cu->cuStreamSynchronize(cd->stream))) {
			uint64_t sum = old + add;
			if (!(r = cu->cuMemcpyHtoDAsync(at, &sum, 8, cd->stream)))
				r = cu->cuStreamSynchronize(cd->stream);
		}
		memcpy(buf, &old, sizeof(old));
	} else if (write) {
		if (!(r = cu->cuMemcpyHtoDAsync(at, buf, size, cd->stream)))
			r = cu->cuStreamSynchronize(cd->stream);
	} else {
		if (!(r = cu->cuMemcpyDtoHAsync(buf, at, size, cd->stream)))
			r = cu->cuStreamSynchronize(cd->stream);
	}
	cu_leave(cd);
	if (r) {
		cu_warn(cd, "GPU view copy", r);
		if (fault)
			*fault = addr;
		return -EFAULT;
	}
	return 0;
}

static uint64_t cu_sizes_in(struct vmb_dev_vm *vm, uint64_t start, uint64_t last)
{
	return cmap_iter_first(&vm->maps, start, last) ? VMB_PAGE_2M : 0;
}

static void cu_vm_stats(struct vmb_dev_vm *vm, struct vmb_dev_vm_stats *s)
{
	memset(s, 0, sizeof(*s));
	s->leaves[2] = vm->mapped / vm->cd->gran;
}

static int cu_validate(struct vmb_device *d)
{
	return 0; /* the driver owns the allocators */
}

/* The record against the driver: each node's chunk is what the driver maps there, with the
 * access the node says. */
static int cu_vm_validate(struct vmb_dev_vm *vm)
{
	struct cu_device *cd = vm->cd;
	const struct vmb_cu *cu = cd->cu;
	int err = 0;

	if (cu_enter(cd))
		err = -EUCLEAN; /* nothing can be checked */
	for (struct cu_map *m = err ? NULL : cmap_first(&vm->maps); m && !err; m = cmap_next(m)) {
		CUmemGenericAllocationHandle h;
		unsigned long long acc = 0;
		CUmemLocation loc = {.type = CU_MEM_LOCATION_TYPE_DEVICE, .id = cd->ordinal};
		CUresult r = cu->cuMemRetainAllocationHandle(&h, (void *)(uintptr_t)(vm->base + m->start));
		if (r) {
			fprintf(stderr, "vmbind: cuda: %#llx: the driver maps nothing: %s\n",
				(unsigned long long)m->start, vmb_cu_name(cu, r));
			err = -EUCLEAN;
			break;
		}
		if (h != m->h) {
			fprintf(stderr, "vmbind: cuda: %#llx: the driver maps another allocation\n",
				(unsigned long long)m->start);
			err = -EUCLEAN;
		}
		cu->cuMemRelease(h);
		if (!err && (r = cu->cuMemGetAccess(&acc, &loc, vm->base + m->start)) == CUDA_SUCCESS &&
		    acc != (m->flags ? CU_MEM_ACCESS_FLAGS_PROT_READ : CU_MEM_ACCESS_FLAGS_PROT_READWRITE)) {
			fprintf(stderr, "vmbind: cuda: %#llx: access %#llx, not the recorded one\n",
				(unsigned long long)m->start, acc);
			err = -EUCLEAN;
		}
	}
	cu_leave(cd);
	return err;
}

/* No engines: execution is the application's streams (include/vmbind/cuda.h). */
static int cu_engine_open(struct vmb_device *d, uint32_t engine)
{
	return -EINVAL;
}

static int cu_exec_create(struct vmb_device *d, struct vmb_dev_exec **out)
{
	return -EOPNOTSUPP;
}

static struct vmb_fence *cu_exec_run(struct vmb_device *d, struct vmb_dev_exec *x)
{
	x->error = -ECANCELED; /* never: no exec queue can be created */
	vmb_fence_signal(x->done, x->error);
	return x->done;
}

static void cu_exec_destroy(struct vmb_device *d, struct vmb_dev_exec *x)
{
}

static void cu_engines_stop(struct vmb_device *d)
{
}

/*
 * A PREFETCH's copy: both backings' chunks are mapped into a private staging range (cuMemMap does
 * not wait for the GPU), copied on the device's stream (cuMemcpyDtoDAsync), and the fence page
 * signals `done` once the stream is past the copy; the staging range goes at copy_destroy.
 */
struct cu_copy {
	struct vmb_dev_copy base;
	struct cu_device *cd;
	CUdeviceptr stage; /* 0: nothing reserved */
	uint64_t stage_size;
	uint32_t mapped[2]; /* chunks mapped of src, dst */
	uint64_t chunk[2];  /* their chunk sizes (the backings may be freed before copy_destroy) */
	bool unfollowed;    /* the copy is on the stream, but `done` signalled without it (no slot) */
};

static int cu_copy_create(struct vmb_device *d, struct vmb_dev_copy **out)
{
	struct cu_copy *x = calloc(1, sizeof(*x));
	if (!x)
		return -ENOMEM;
	if (!(x->base.done = vmb_fence_create())) {
		free(x);
		return -ENOMEM;
	}
	x->cd = to_cu(d);
	*out = &x->base;
	return 0;
}

/* Map @b's chunks at @at: the count mapped into *@n. */
static CUresult stage_map(struct cu_device *cd, const struct cu_backing *b, CUdeviceptr at, uint32_t *n)
{
	CUresult r = CUDA_SUCCESS;
	for (*n = 0; *n < b->n && !r; (*n)++)
		if ((r = cd->cu->cuMemMap(at + *n * b->chunk, b->chunk, 0, b->h[*n], 0)))
			break;
	if (!r) {
		CUmemAccessDesc a = access_desc(cd, false);
		r = set_access(cd, at, b->n * b->chunk, b->chunk, &a);
	}
	return r;
}

static struct vmb_fence *cu_copy_run(struct vmb_device *d, struct vmb_dev_copy *c)
{
	struct cu_copy *x = (struct cu_copy *)c;
	struct cu_device *cd = x->cd;
	const struct vmb_cu *cu = cd->cu;
	const struct cu_backing *src = c->src->dev_ptr, *dst = c->dst->dev_ptr;
	uint64_t size = c->size;
	struct vmb_fence *done = c->done;
	int err = 0;

	x->chunk[0] = src->chunk;
	x->chunk[1] = dst->chunk;
	CUresult r = cu_enter_own(cd);
	if (!r)
		r = cu->cuMemAddressReserve(&x->stage, 2 * size, cd->gran, 0, 0);
	if (r)
		x->stage = 0;
	else
		x->stage_size = 2 * size;
	if (!r && !(r = stage_map(cd, src, x->stage, &x->mapped[0])) &&
	    !(r = stage_map(cd, dst, x->stage + size, &x->mapped[1])))
		r = cu->cuMemcpyDtoDAsync(x->stage + size, x->stage, size, cd->stream);
	cu_leave(cd);
	if (!r)
		err = cu_signal_on(cd, cd->stream, done);
	x->unfollowed = !r && err; /* copy_destroy waits for it before the staging goes */
	if (r || err) {
		if (r)
			cu_warn(cd, "PREFETCH copy", r);
		c->error = -EIO;
		vmb_fence_get(done); /* the waiter's callback may free the request */
		vmb_fence_signal(done, c->error);
		vmb_fence_unref(done);
	}
	return done;
}

static void cu_copy_destroy(struct vmb_device *d, struct vmb_dev_copy *c)
{
	struct cu_copy *x = (struct cu_copy *)c;
	struct cu_device *cd = x->cd;
	if (x->stage) {
		/* (not c->src / c->dst: the job frees the backing it no longer needs first) */
		cu_enter_own(cd);
		/* a copy still running reads and writes through the staging range: unmapped under
		 * it, the GPU faults and the context is lost */
		if (x->unfollowed || !vmb_fence_is_signalled(c->done))
			cd->cu->cuStreamSynchronize(cd->stream);
		for (int k = 0; k < 2; k++)
			for (uint32_t i = 0; i < x->mapped[k]; i++)
				cd->cu->cuMemUnmap(x->stage + k * c->size + i * x->chunk[k], x->chunk[k]);
		cd->cu->cuMemAddressFree(x->stage, x->stage_size);
		cu_leave(cd);
	}
	vmb_fence_unref(c->done);
	free(x);
}

/*
 * The device's own contexts (cuda.h, cu_enter_own), one per GPU in use, with their streams: a
 * device destroyed parks its own for the next device of the same GPU. Never destroyed, because
 * cuCtxDestroy waits for the GPU's work of every context (measured on the H100: a client's
 * close then waited for an application's stream blocked on a gate, the very wait the own
 * context exists to stay out of). The process's exit releases them. One whose stream has a
 * sticky error is dropped at close instead (own_release); one whose stream could not be made is
 * parked without it (own_get). Two devices of a GPU hold two: a close still running while the
 * next open comes (the registry destroys a device without its lock).
 */
struct cu_own {
	CUcontext ctx;
	CUstream stream;      /* NULL: parked before its stream could be made (own_get) */
	CUdevice dev;
	struct cu_own *next;
};
static pthread_mutex_t own_lock = PTHREAD_MUTEX_INITIALIZER;
static struct cu_own *own_parked; /* own_lock */

static void own_park(struct cu_own *o)
{
	pthread_mutex_lock(&own_lock);
	o->next = own_parked;
	own_parked = o;
	pthread_mutex_unlock(&own_lock);
}

/* A parked own context of @cd's GPU, or a new one (its limits lowered: the device launches no
 * kernels of its own, and each limit reserves VRAM: 524 MiB with the defaults, 260 without,
 * measured on the H100); NULL with *@r set on failure. The primary context is current.
 * A context whose stream could not be made is parked without one (never destroyed, not even
 * new: cuCtxDestroy would wait for the application's blocked streams), for the next to retry. */
static struct cu_own *own_get(struct cu_device *cd, CUresult *r)
{
	const struct vmb_cu *cu = cd->cu;
	struct cu_own *o, **pp;
	pthread_mutex_lock(&own_lock);
	for (pp = &own_parked; *pp && (*pp)->dev != cd->cudev; pp = &(*pp)->next)
		;
	if ((o = *pp))
		*pp = o->next;
	pthread_mutex_unlock(&own_lock);
	if (o && o->stream)
		return o;
	if (o) {
		if ((*r = cu->cuCtxPushCurrent(o->ctx))) {
			own_park(o);
			return NULL;
		}
	} else {
		if (!(o = calloc(1, sizeof(*o)))) {
			*r = CUDA_ERROR_OUT_OF_MEMORY;
			return NULL;
		}
		o->dev = cd->cudev;
		CUresult rc = cu->cuCtxCreate_v2(&o->ctx, 0, cd->cudev);
		if (!rc) {
			/* created current: its stream is made in it, then it is popped */
			cu->cuCtxSetLimit(CU_LIMIT_STACK_SIZE, 0);
			cu->cuCtxSetLimit(CU_LIMIT_MALLOC_HEAP_SIZE, 0);
			cu->cuCtxSetLimit(CU_LIMIT_PRINTF_FIFO_SIZE, 0);
		} else if (!(*r = cu->cuCtxPushCurrent(cd->ctx))) {
			/* no context of its own (a GPU in an exclusive compute mode, VRAM nearly full):
			 * the device's stream in the application's context, with the risk it brings
			 * (cuda.h, cu_enter_own); never parked, the next open tries again */
			cu_warn(cd, "cuCtxCreate (the device's copies share the application's hardware queues)", rc);
			o->ctx = cd->ctx; /* (own_release knows it so) */
		} else {
			free(o);
			return NULL;
		}
	}
	*r = cu->cuStreamCreate(&o->stream, CU_STREAM_NON_BLOCKING);
	CUcontext top;
	cu->cuCtxPopCurrent(&top);
	if (*r) {
		o->stream = NULL;
		own_park(o);
		return NULL;
	}
	return o;
}

/*
 * @cd's own context and stream, their work done: parked for the next device, unless the stream
 * has a sticky error (a fault of the device's own work: every later call in that context fails,
 * so each later device of the GPU would fail its zeroing). Such a context is dropped, neither
 * parked nor destroyed (cuCtxDestroy waits for the application's streams): its memory stays the
 * driver's until the process exits. A failed push (a context that may still work) parks it.
 */
static void own_release(struct cu_device *cd)
{
	CUresult r = CUDA_SUCCESS;
	if (!cu_enter_own(cd))
		r = cd->cu->cuStreamSynchronize(cd->stream); /* (idle: at once) */
	cu_leave(cd);
	if (cd->wctx == cd->ctx) { /* the primary context's stream only (cuStreamDestroy does not wait) */
		if (!cu_enter_own(cd))
			cd->cu->cuStreamDestroy(cd->stream);
		cu_leave(cd);
		free(cd->own);
	} else if (r) {
		cu_warn(cd, "the own stream (its context dropped, not parked)", r);
		free(cd->own);
	} else {
		own_park(cd->own);
	}
	cd->own = NULL;
}

/* The NULL page; the device's own context and stream released (their work done). */
static void release_own(struct cu_device *cd)
{
	cd->cu->cuMemRelease(cd->zero); /* (no context needed: a handle of the device's) */
	own_release(cd);
}

static void cu_destroy(struct vmb_device *d)
{
	struct cu_device *cd = to_cu(d);
	cu_fences_fini(cd);
	vmb_device_core_release(d);
	release_own(cd);
	cd->cu->cuDevicePrimaryCtxRelease(cd->cudev);
	vmb_device_lock_fini(d);
	free(cd);
}

static const struct vmb_device_ops cu_ops = {
	.destroy = cu_destroy,
	.region_free = cu_region_free,
	.backing_alloc = cu_backing_alloc,
	.backing_free = cu_backing_free,
	.backing_userptr = cu_backing_userptr,
	.backing_userptr_free = cu_backing_userptr_free,
	.backing_cpu_map = cu_backing_cpu_map,
	.vm_create = cu_vm_create,
	.vm_destroy = cu_vm_destroy,
	.prep_create = cu_prep_create,
	.map_prepare = cu_map_prepare,
	.map_commit = cu_map_commit,
	.vm_ban = cu_vm_ban,
	.prep_release = cu_prep_release,
	.map_check = cu_map_check,
	.vm_access = cu_vm_access,
	.sizes_in = cu_sizes_in,
	.vm_stats = cu_vm_stats,
	.validate = cu_validate,
	.vm_validate = cu_vm_validate,
	.engine_open = cu_engine_open,
	.exec_create = cu_exec_create,
	.exec_run = cu_exec_run,
	.exec_destroy = cu_exec_destroy,
	.engines_stop = cu_engines_stop,
	.copy_create = cu_copy_create,
	.copy_run = cu_copy_run,
	.copy_destroy = cu_copy_destroy,
	.stream_wait = cu_stream_wait,
	.stream_signal = cu_stream_signal,
};

/* The driver, or -ENODEV with a reason: libcuda loads, cuInit works, a GPU is there. */
static int cu_probe(const char **reason)
{
	const struct vmb_cu *cu;
	return vmb_cu_load(&cu, reason);
}

static int cu_create(const struct vmb_client_opts *opts, uint32_t n, struct vmb_device **out)
{
	static const struct vmb_client_opts none;
	const struct vmb_cu *cu;
	const char *reason;
	int err, count = 0;

	if ((err = vmb_cu_load(&cu, &reason)))
		return err;
	if (!opts)
		opts = &none;
	/* the GPU's own sizes: nothing to configure but the job timeout */
	if (opts->vram_size || opts->system_size || opts->pt_pool_size ||
	    (opts->min_page_size && opts->min_page_size != VMB_PAGE_2M))
		return -EINVAL;
	if (cu->cuDeviceGetCount(&count) || (int)n >= count) {
		fprintf(stderr, "vmbind: cannot open cuda:%u: the driver has %d CUDA device%s\n", n, count,
			count == 1 ? "" : "s");
		return -ENODEV;
	}
	struct cu_device *cd = calloc(1, sizeof(*cd));
	if (!cd)
		return -ENOMEM;
	cd->cu = cu;
	cd->ordinal = (int)n;
	CUresult r = cu->cuDeviceGet(&cd->cudev, (int)n);
	if (!r)
		r = cu->cuDevicePrimaryCtxRetain(&cd->ctx, cd->cudev);
	if (r) {
		fprintf(stderr, "vmbind: cannot open cuda:%u: %s\n", n, vmb_cu_name(cu, r));
		free(cd);
		return -ENODEV;
	}
	int numa = -1;
	if (cu->cuDeviceGetAttribute(&numa, CU_DEVICE_ATTRIBUTE_HOST_NUMA_ID, cd->cudev) || numa < 0)
		numa = 0;
	cd->host_numa = numa;
	r = cu_enter(cd);
	CUmemAllocationProp p = {.type = CU_MEM_ALLOCATION_TYPE_PINNED,
				 .location = {.type = CU_MEM_LOCATION_TYPE_DEVICE, .id = (int)n}};
	size_t gran = 0;
	size_t vram = 0, vram_free = 0;
	if (!r)
		r = cu->cuMemGetAllocationGranularity(&gran, &p, CU_MEM_ALLOC_GRANULARITY_MINIMUM);
	if (!r && gran != VMB_PAGE_2M)
		r = CUDA_ERROR_NOT_SUPPORTED; /* the device pages this library knows: 2 MiB */
	if (!r)
		r = cu->cuMemGetInfo(&vram_free, &vram);
	/* the device's own context and stream (cuda.h, cu_enter_own: why), a parked one's or new */
	if (!r && !(cd->own = own_get(cd, &r)))
		r = r ? r : CUDA_ERROR_OUT_OF_MEMORY;
	if (cd->own) {
		cd->wctx = cd->own->ctx;
		cd->stream = cd->own->stream;
	}
	cd->gran = gran;
	if (!r && !(r = create_handle(cd, VMB_REGION_VRAM, gran, &cd->zero)) && (r = zero_handle(cd, cd->zero, gran)))
		cu->cuMemRelease(cd->zero);
	cu_leave(cd);
	if (r && cd->own)
		own_release(cd);
	if (r) {
		fprintf(stderr, "vmbind: cannot open cuda:%u: %s\n", n, vmb_cu_name(cu, r));
		cu->cuDevicePrimaryCtxRelease(cd->cudev);
		free(cd);
		return r == CUDA_ERROR_OUT_OF_MEMORY ? -ENOMEM : -ENODEV;
	}

	struct vmb_device *d = &cd->base;
	d->ops = &cu_ops;
	strcpy(d->name, "cuda");
	d->va_bits = 40; /* a vm reserves its whole VA: 1 TiB at most */
	d->va_size_default = 1ull << 36; /* 64 GiB: what va_size 0 reserves */
	d->page_sizes = VMB_PAGE_2M;
	d->min_page_size = VMB_PAGE_2M;
	/* no USER_FENCE_BO: the library writes a BO user fence into the BO's host pages, which are
	 * not this device's memory (no kernel and no vmb_vm_access would see it) */
	d->caps = VMB_CAP_NULL_BIND | VMB_CAP_PREFETCH;
	d->region_capacity[VMB_REGION_VRAM] = vram;
	d->region_capacity[VMB_REGION_SYSTEM] = (uint64_t)sysconf(_SC_PHYS_PAGES) * (uint64_t)sysconf(_SC_PAGESIZE);
	d->region_align[VMB_REGION_VRAM] = d->region_align[VMB_REGION_SYSTEM] = gran;
	d->num_engines = 0;
	vmb_device_lock_init(d);
	if ((err = cu_fences_init(cd))) {
		vmb_device_lock_fini(d);
		release_own(cd);
		cu->cuDevicePrimaryCtxRelease(cd->cudev);
		free(cd);
		return err;
	}
	*out = d;
	return 0;
}

const struct vmb_backend vmb_backend_cuda = {.name = "cuda", .probe = cu_probe, .create_at = cu_create};
