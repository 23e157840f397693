/* SPDX-License-Identifier: MIT */
/*
 * The soft device: a software GPU with a VRAM region (buddy allocator), a SYSTEM region (page
 * allocator), each with an arena into which the BOs' own pages are mapped at their physical
 * offsets (region.h), and real 4-level page tables per vm (pt.c) whose pages come from one
 * accounted pool. Implements struct vmb_device_ops.
 *
 * Two shapes (docs/UAPI.md, "Device shapes"), chosen at create: integrated (4 KiB granularity,
 * VRAM CPU-mappable) and discrete (VMB_CLIENT_OPEN_DISCRETE or VMB_SOFT_DISCRETE=1: 2 MiB
 * granularity, VRAM not CPU-mappable, as a CUDA device). In the discrete shape nothing hands out
 * a CPU pointer into VRAM: its walk of the page tables reports none for a VRAM leaf, the GPU view and the
 * engines (vm_access) reach VRAM through the device's copy routine (soft_dev_copy: by device
 * address, as a DMA engine would; the bytes are host memory here all the same), and
 * backing_cpu_map refuses VRAM, so vmb_bo_mmap of a BO in VRAM is -EOPNOTSUPP. Why not a staging
 * copy for the CPU map: a copy made at map time and written back at unmap is coherent only at
 * those two points, so GPU writes after the map (an exec's results, user fences) would read
 * stale through the pointer; real drivers keep it coherent by migrating on a CPU page fault,
 * which needs fault handling this library does not have. An error is honest where a stale
 * pointer is not; VRAM stays reachable through the GPU view, and what the CPU writes belongs in
 * SYSTEM (as on a discrete GPU without a CPU-visible VRAM window).
 *
 * A migration's copy (copy_create/run/destroy) runs on the DMA engine (copy.h) as device work
 * that signals a fence; it moves no bytes, since every backing of a BO maps that BO's pages.
 *
 * Locking: region allocators have their own locks; the page-table pool has its own lock, and
 * each vm's cache of free table pages a spin lock (pt.h); a
 * vm's page tables are protected by the core's lock of that vm (dev/core.h: the device lock
 * held shared plus the vm's lock, or the device lock exclusive), and what a walk reads also by
 * their own walk lock, which the engines hold instead of the vm's lock (pt.h, "Locking").
 */
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <vmbind/client.h>

#include "core/alloc.h"
#include "core/env.h"
#include "core/sanitize.h"
#include "dev/core.h"
#include "dev/registry.h"
#include "dev/soft/copy.h"
#include "dev/soft/engine.h"
#include "dev/soft/pt.h"
#include "dev/soft/region.h"

#define SOFT_ENGINES 3 /* two compute engines, one copy engine */

struct soft_device {
	struct vmb_device base;
	struct vmb_region regions[2]; /* by VMB_REGION_* */
	struct vmb_pt_pool pool;
	struct soft_engine engines[SOFT_ENGINES];
	struct soft_copier copier; /* the DMA engine: migrations' copies (copy.h) */
	bool discrete; /* the discrete shape (see above); set at create, read-only after */
	/* the memory of exec requests destroyed (often on an engine's thread), for the next
	 * exec_create (core/alloc.h: atomics) */
	struct vmb_memcache execs;
};

struct vmb_dev_vm {
	struct soft_device *dev;
	struct vmb_pt pt;
	uint64_t va_size; /* past it nothing translates */
	bool scratch;     /* unmapped bytes read 0, writes to them are dropped */
	/* vm_ban: nothing translates. Written under the page tables' walk lock (and the vm's lock
	 * or the device lock exclusive), read under either (pt.h, "Locking") */
	bool banned;
	/* an exec has been queued on the vm (exec_hint, which the exec layer calls for each one,
	 * the vm's first under the vm's lock: device.h): engines may walk its page tables from
	 * then on, so a bind's commits take the walk lock (soft_commit_begin); before, nothing
	 * walks them without the vm's lock, and a vm that never runs an exec (bench bind's) pays
	 * no lock pair per bind. Set once, by that first hint; never cleared; read by commits,
	 * which hold the vm's lock or the device lock exclusive, and by later hints (ordered after
	 * the first by the exec layer: vm/vm.h, vmb_vm_exec_queued) */
	bool walked;
	/* the last preparation released, reset (its arrays kept), for the next prep_create: a bind
	 * allocates nothing for its preparation (the vm's lock, or the device lock exclusive, as
	 * the page tables) */
	struct vmb_dev_prep *spare;
};

struct vmb_dev_prep {
	struct vmb_pt_prep pt;
};

static struct soft_device *to_soft(struct vmb_device *d)
{
	return (struct soft_device *)d;
}

static uint64_t soft_region_free(struct vmb_device *d, uint32_t region)
{
	return vmb_region_free_bytes(&to_soft(d)->regions[region]);
}

/* A chunk is only a bind granularity here: the region places the BO as it always does (the
 * soft device's page tables are its own, any extent maps anywhere). */
static int soft_backing_alloc(struct vmb_device *d, uint32_t region, uint64_t size, uint64_t chunk,
			      const void *host, struct vmb_backing *out)
{
	struct vmb_extent *ext;
	unsigned int n;
	int err = vmb_region_alloc(&to_soft(d)->regions[region], size, host, &ext, &n);
	if (err)
		return err;
	*out = vmb_soft_backing(ext, n);
	out->align = chunk ? chunk : d->min_page_size;
	return 0;
}

static void soft_backing_free(struct vmb_device *d, uint32_t region, struct vmb_backing *b)
{
	vmb_region_free(&to_soft(d)->regions[region], vmb_soft_backing_ext(b), vmb_soft_backing_n(b));
	free(b->dev_ptr);
	*b = (struct vmb_backing){0};
}

/* Application memory is the HOST aperture: one extent, held in the backing itself. */
static int soft_backing_userptr(struct vmb_device *d, uint64_t addr, uint64_t size, struct vmb_backing *out)
{
	*out = vmb_soft_backing_host(addr, size);
	out->align = d->min_page_size;
	return 0;
}

static void soft_backing_userptr_free(struct vmb_device *d, struct vmb_backing *b)
{
	(void)d;
	*b = (struct vmb_backing){0};
}

/* The device address of byte @off of @b. */
static uint64_t backing_addr(const struct vmb_backing *b, uint64_t off)
{
	struct vmb_backing_cursor c;
	uint64_t contig;
	vmb_backing_seek(&c, b, off);
	return vmb_backing_pa(&c, &contig);
}

/* Host pointer of a pa of this device (the arenas; a discrete device's VRAM only for
 * soft_dev_copy). */
static void *soft_pa_ptr(struct soft_device *sd, uint64_t pa)
{
	switch (vmb_pa_aperture(pa)) {
	case VMB_PA_APERTURE_VRAM:
		return vmb_region_ptr(&sd->regions[VMB_REGION_VRAM], pa);
	case VMB_PA_APERTURE_SYSTEM:
		return vmb_region_ptr(&sd->regions[VMB_REGION_SYSTEM], pa);
	default:
		return (void *)(uintptr_t)vmb_pa_offset(pa);
	}
}

/* Does the CPU reach @pa directly? Not a discrete device's VRAM. */
static bool soft_cpu_reaches(const struct soft_device *sd, uint64_t pa)
{
	return !sd->discrete || vmb_pa_aperture(pa) != VMB_PA_APERTURE_VRAM;
}

/* Kept out of ThreadSanitizer's view (soft_mem_copy, soft_exec_prefault). */
#if VMB_TSAN
#define SOFT_NO_TSAN __attribute__((no_sanitize("thread")))
#else
#define SOFT_NO_TSAN
#endif

/*
 * @len bytes of device memory to or from a host buffer, for the engines and the GPU view
 * (vm_access). The two meet without order where an application lets them (it polls through
 * vmb_vm_access a word that a running exec writes, releases a SEM_WAIT through it, has two engines
 * write one word), as a GPU's and a CPU's accesses meet on hardware: the device defines them (a
 * value written or the one before it; an aligned word whole, as memcpy moves it on the hosts we
 * build for), not C's memory model; the engines' ATOMIC_ADD is an atomic. ThreadSanitizer would
 * report them inside the library (its memcpy interceptor) where the application has no handle on
 * them: in its builds, a copy of volatile words and bytes (which the compiler does not turn back
 * into memcpy) in a function it does not instrument.
 */
SOFT_NO_TSAN static void soft_mem_copy(void *dst, const void *src, uint64_t len)
{
#if VMB_TSAN
	volatile uint8_t *d = dst;
	const volatile uint8_t *s = src;
	if (!(((uintptr_t)d | (uintptr_t)s) & 7)) {
		for (; len >= 8; len -= 8, d += 8, s += 8)
			*(volatile uint64_t *)d = *(const volatile uint64_t *)s;
	}
	while (len--)
		*d++ = *s++;
#else
	memcpy(dst, src, len);
#endif
}

/* The device's copy routine: @len bytes between @buf and device memory at @pa (within one
 * leaf), or with @add an atomic add of *@add whose old value goes to @buf (8 bytes). The GPU view
 * and the engines use it for memory the CPU does not reach (discrete VRAM). */
static void soft_dev_copy(struct soft_device *sd, uint64_t pa, void *buf, uint64_t len, bool write,
			  const uint64_t *add)
{
	uint8_t *mem = soft_pa_ptr(sd, pa);
	if (add) {
		uint64_t old = __atomic_fetch_add((uint64_t *)(void *)mem, *add, __ATOMIC_SEQ_CST);
		memcpy(buf, &old, 8);
	} else if (write) {
		soft_mem_copy(mem, buf, len);
	} else {
		soft_mem_copy(buf, mem, len);
	}
}

static int soft_backing_cpu_map(struct vmb_device *d, uint32_t region, const struct vmb_backing *b)
{
	(void)b;
	return to_soft(d)->discrete && region == VMB_REGION_VRAM ? -EOPNOTSUPP : 0;
}

static int soft_vm_create(struct vmb_device *d, uint64_t va_size, uint64_t page_sizes, bool scratch,
			  struct vmb_dev_vm **out, uint64_t *gpu_base)
{
	*gpu_base = 0; /* its engines and GPU view use the vm's addresses as they are */
	struct vmb_dev_vm *vm = vmb_calloc(1, sizeof(*vm));
	if (!vm)
		return -ENOMEM;
	vm->dev = to_soft(d);
	vm->va_size = va_size;
	vm->scratch = scratch;
	int err = vmb_pt_init(&vm->pt, &vm->dev->pool, page_sizes);
	if (err) {
		free(vm);
		return err;
	}
	*out = vm;
	return 0;
}

static void soft_vm_destroy(struct vmb_device *d, struct vmb_dev_vm *vm)
{
	(void)d;
	if (vm->spare) {
		vmb_pt_prep_release(&vm->pt, &vm->spare->pt);
		free(vm->spare);
	}
	vmb_pt_fini(&vm->pt);
	free(vm);
}

/* Without memory, a preparation for clears only: shared, never written (a clear prepares
 * nothing and commits from the reserve, pt.h); a MAP on it is -ENOMEM. */
static struct vmb_dev_prep clears_only;

/* A spare keeps arrays of up to this many entries (a 1-op bind's need a few): a huge bind's
 * go back to the heap. A thread whose allocations fault injection counts (core/alloc.h) takes
 * no spare: it allocates as without one, so that the harnesses reach the record's allocation
 * and the -ENOMEM paths behind it (a spare cannot fail). */
#define SPARE_ENTRIES 64

static int soft_prep_create(struct vmb_device *d, struct vmb_dev_vm *vm, struct vmb_dev_prep **out)
{
	(void)d;
	struct vmb_dev_prep *p = vm->spare;
	if (p && !vmb_fault_armed())
		vm->spare = NULL;
	else if (!(p = vmb_calloc(1, sizeof(*p))))
		p = &clears_only;
	*out = p;
	return 0;
}

static void to_pt_op(const struct vmb_map_op *op, struct vmb_pt_op *pop)
{
	pop->kind = op->kind == VMB_MAP_OP_MAP ? VMB_PT_OP_MAP : VMB_PT_OP_CLEAR;
	pop->flags = (op->flags & VMB_MAP_READONLY ? VMB_PT_OP_READONLY : 0) |
		     (op->flags & VMB_MAP_NULL ? VMB_PT_OP_NULL : 0) |
		     (op->flags & VMB_MAP_FRESH ? VMB_PT_OP_FRESH : 0);
	pop->start = op->start;
	/* no 16-byte load of start and last together: the bind engine has just written them with
	 * two 8-byte stores, and a load across two stores is not forwarded (it waits until every
	 * older store has reached the cache: at 10^5 mappings, the bind's cache-missing stores) */
	__asm__("" ::: "memory");
	pop->last = op->last;
	pop->backing = op->backing;
	pop->offset = op->offset;
}

static int soft_map_prepare(struct vmb_dev_vm *vm, const struct vmb_map_op *op, struct vmb_dev_prep *p)
{
	struct vmb_pt_op pop;
	if (op->kind == VMB_MAP_OP_CLEAR) {
		/* nothing to prepare (vmb_pt_prepare: splits use the reserve), nothing to copy */
		assert(op->start <= op->last && !(op->start & 4095) && !((op->last + 1) & 4095));
		return 0;
	}
	if (p == &clears_only)
		return -ENOMEM;
	to_pt_op(op, &pop);
	return vmb_pt_prepare(&vm->pt, &pop, &p->pt);
}

static void soft_map_hint(struct vmb_dev_vm *vm, uint64_t start, uint64_t last)
{
	vmb_pt_hint(&vm->pt, start, last);
}

/* Page-table writes never fail here: only the test hook (core/alloc.h) fails one, before any
 * write. */
static int soft_map_commit(struct vmb_dev_vm *vm, const struct vmb_map_op *op, struct vmb_dev_prep *p)
{
	vmb_lock_assert(!vm->walked || vmb_lock_mode(&vm->pt.walk) != VMB_LOCK_NONE); /* soft_commit_begin */
	struct vmb_pt_op pop;
	int err = vmb_commit_should_fail();
	if (err)
		return err;
	to_pt_op(op, &pop);
	vmb_pt_commit(&vm->pt, &pop, &p->pt);
	return 0;
}

/* A bind's commits on @vm: the walk lock from the first to the last, so that an engine's time
 * slice (which holds it instead of the vm's lock) sees none or all of them (pt.h, "Locking");
 * only once an exec has been queued on the vm (`walked`: it cannot change in between, the
 * committer holds the vm's lock or the device lock exclusive). */
static void soft_commit_begin(struct vmb_dev_vm *vm)
{
	if (vm->walked)
		vmb_mutex_lock(&vm->pt.walk);
}

static void soft_commit_end(struct vmb_dev_vm *vm)
{
	if (vm->walked)
		vmb_mutex_unlock(&vm->pt.walk);
}

static void soft_vm_ban(struct vmb_dev_vm *vm)
{
	vmb_mutex_lock(&vm->pt.walk); /* an engine's time slice reads it holding only that */
	vm->banned = true;
	vmb_mutex_unlock(&vm->pt.walk);
}

struct vmb_mutex *soft_vm_walk_lock(struct vmb_dev_vm *vm)
{
	return &vm->pt.walk;
}

static void soft_prep_release(struct vmb_dev_vm *vm, struct vmb_dev_prep *p)
{
	if (p == &clears_only)
		return;
	if (!vm->spare && p->pt.cap_pages <= SPARE_ENTRIES && p->pt.cap_pinned <= SPARE_ENTRIES) {
		vmb_pt_prep_reset(&vm->pt, &p->pt);
		vm->spare = p;
		return;
	}
	vmb_pt_prep_release(&vm->pt, &p->pt);
	free(p);
}

/* What one VA translates to, through the page tables. */
struct soft_walk {
	void *cpu;          /* host pointer of the byte (NULL for NULL leaves and for memory the
			     * CPU does not reach: the discrete shape's VRAM) */
	uint64_t pa;        /* device physical address of the byte (0 for NULL leaves) */
	uint64_t page_size; /* bytes of the leaf */
	uint64_t page_left; /* bytes from the byte to the end of its leaf */
	bool writable;
	bool null;
	int level;          /* the leaf's page-table level; on -EFAULT the level with no entry */
};

/* Past the vm's size, or the vm banned: faults at the root (nothing translates there). */
#define SOFT_ROOT_LEVEL (VMB_PT_LEVELS - 1)

static int soft_translate(struct vmb_dev_vm *vm, uint64_t va, struct soft_walk *w)
{
	struct vmb_pt_walk pw;
	if (vm->banned || va >= vm->va_size) {
		w->level = SOFT_ROOT_LEVEL;
		return -EFAULT;
	}
	int err = vmb_pt_translate(&vm->pt, va, &pw);
	w->level = pw.level;
	if (err)
		return err;
	w->page_size = pw.page_size;
	w->page_left = pw.page_size - (va & (pw.page_size - 1));
	w->writable = pw.writable;
	w->null = pw.null;
	w->pa = pw.null ? 0 : pw.pa;
	w->cpu = pw.null || !soft_cpu_reaches(vm->dev, pw.pa) ? NULL : soft_pa_ptr(vm->dev, pw.pa);
	return 0;
}

/* The GPU view (dev/device.h, vm_access): the bytes behind each leaf are host memory here,
 * reached by a pointer where the CPU reaches them, else by the device's copy routine. */
int soft_vm_access(struct vmb_dev_vm *vm, uint64_t addr, void *data, uint64_t size, uint32_t flags,
		   uint64_t *fault)
{
	struct soft_fault f;
	int err = soft_gpu_access(vm, addr, data, size, flags, &f);
	if (err && fault)
		*fault = f.addr;
	return err;
}

int soft_gpu_access(struct vmb_dev_vm *vm, uint64_t addr, void *data, uint64_t size, uint32_t flags,
		    struct soft_fault *fault)
{
	uint8_t *buf = data;
	bool write = flags & (VMB_DEV_ACCESS_WRITE | VMB_DEV_ACCESS_ATOMIC_ADD);

	if (flags & VMB_DEV_ACCESS_ATOMIC_ADD) { /* 8 bytes at an aligned @addr */
		uint64_t add;
		memcpy(&add, data, 8);
		memset(data, 0, 8); /* the old value: 0 where nothing is read */
		struct soft_walk w;
		int err = soft_translate(vm, addr, &w);
		if (err)
			err = vm->scratch ? 0 : -EFAULT; /* scratch: dropped */
		else if (!w.writable && !w.null)
			err = -EACCES;
		else if (!w.null && !w.cpu)
			soft_dev_copy(vm->dev, w.pa, data, 8, true, &add);
		else if (!w.null) {
			uint64_t old = __atomic_fetch_add((uint64_t *)w.cpu, add, __ATOMIC_SEQ_CST);
			memcpy(data, &old, 8);
		}
		if (err && fault)
			*fault = (struct soft_fault){.addr = addr, .level = (uint8_t)w.level};
		return err;
	}
	while (size) {
		struct soft_walk w;
		uint64_t len;
		int err = soft_translate(vm, addr, &w);

		if (err) {
			if (!vm->scratch) {
				if (fault)
					*fault = (struct soft_fault){.addr = addr, .level = (uint8_t)w.level};
				return -EFAULT;
			}
			/* scratch page: the rest of this 4 KiB page reads 0, writes are dropped */
			len = 4096 - (addr & 4095);
			if (len > size)
				len = size;
			if (!write)
				memset(buf, 0, len);
		} else {
			len = w.page_left < size ? w.page_left : size;
			if (write && !w.writable && !w.null) {
				if (fault)
					*fault = (struct soft_fault){.addr = addr, .level = (uint8_t)w.level};
				return -EACCES;
			}
			if (w.null) {
				if (!write)
					memset(buf, 0, len);
			} else if (!w.cpu) {
				soft_dev_copy(vm->dev, w.pa, buf, len, write, NULL);
			} else if (write) {
				soft_mem_copy(w.cpu, buf, len);
			} else {
				soft_mem_copy(buf, w.cpu, len);
			}
		}
		buf += len;
		addr += len;
		size -= len;
	}
	return 0;
}

static int soft_map_check(struct vmb_dev_vm *vm, uint64_t va, const struct vmb_backing *b, uint64_t off,
			  uint32_t flags)
{
	bool ro = flags & VMB_MAP_READONLY, null = flags & VMB_MAP_NULL;
	uint64_t expect = null ? 0 : backing_addr(b, off);
	struct soft_walk w;

	if (soft_translate(vm, va, &w)) {
		fprintf(stderr, "vm: 0x%llx is in a mapping but does not translate\n", (unsigned long long)va);
		return -EUCLEAN;
	}
	if (w.null != null || (!null && w.writable == ro) || (!null && w.pa != expect)) {
		fprintf(stderr, "vm: 0x%llx translates to pa 0x%llx null %d writable %d, mapping says null %d ro %d pa 0x%llx\n",
			(unsigned long long)va, (unsigned long long)w.pa, w.null, w.writable, null, ro,
			(unsigned long long)expect);
		return -EUCLEAN;
	}
	return 0;
}

static uint64_t soft_sizes_in(struct vmb_dev_vm *vm, uint64_t start, uint64_t last)
{
	return vmb_pt_sizes_in(&vm->pt, start, last);
}

static void soft_vm_stats(struct vmb_dev_vm *vm, struct vmb_dev_vm_stats *s)
{
	uint64_t tables = 0;
	for (int i = 0; i < 4; i++) {
		s->tables[i] = vm->pt.tables[i];
		s->leaves[i] = vm->pt.leaves[i];
		tables += vm->pt.tables[i];
	}
	s->pt_bytes = tables * VMB_PT_PAGE;
	s->pt_reserve_bytes = vm->pt.reserved * VMB_PT_PAGE;
}

static int soft_validate(struct vmb_device *d)
{
	struct soft_device *sd = to_soft(d);
	int err = vmb_region_validate(&sd->regions[VMB_REGION_VRAM]);
	if (!err)
		err = vmb_region_validate(&sd->regions[VMB_REGION_SYSTEM]);
	return err;
}

static int soft_vm_validate(struct vmb_dev_vm *vm)
{
	return vmb_pt_validate(&vm->pt);
}

/* Engine threads start with the first exec queue on them (device lock held) and stop with the
 * device: opening a client starts only the scheduler's workers. */
static int soft_engine_open(struct vmb_device *d, uint32_t engine)
{
	struct soft_engine *e = &to_soft(d)->engines[engine];
	return e->started ? 0 : soft_engine_start(e, d, d->engines[engine]);
}

static int soft_exec_create(struct vmb_device *d, struct vmb_dev_exec **out)
{
	struct soft_exec *x = vmb_memcache_zalloc(&to_soft(d)->execs, sizeof(*x));
	if (!x)
		return -ENOMEM;
	if (!(x->base.done = vmb_fence_create())) {
		vmb_memcache_put(&to_soft(d)->execs, x);
		return -ENOMEM;
	}
	atomic_init(&x->base.cancel, false);
	x->dev = d;
	vmb_list_init(&x->link);
	*out = &x->base;
	return 0;
}

/* exec_hint: where the batch's first command is, if in an arena the CPU reaches (a region's,
 * mapped as long as the device: the page may be another's by the time it is touched, which is
 * harmless; not application memory, MAP_USERPTR, which the application may unmap meanwhile). */
static void soft_exec_hint(struct vmb_dev_exec *base)
{
	struct soft_exec *x = vmb_container_of(base, struct soft_exec, base);
	struct vmb_dev_vm *vm = base->vm;
	struct vmb_pt_walk pw;
	x->prefault = NULL;
	x->needs_thread = false;
	if (!vm->walked)
		vm->walked = true; /* its engine walks the tables from now on (soft_commit_begin) */
	/* the walk under the walk lock (later hints come without the vm's lock: device.h), if it
	 * is free: an engine's time slice or a commit that holds it would hold up the exec call
	 * (bench pipeline on 2 CPUs: 29 us a call, a slice preempted), and the hint is only a
	 * prefault: without it the exec's first slice takes the page fault */
	if (!vmb_mutex_trylock(&vm->pt.walk))
		return;
	bool found = !vm->banned && base->batch < vm->va_size && !vmb_pt_translate(&vm->pt, base->batch, &pw) &&
		     !pw.null;
	vmb_mutex_unlock(&vm->pt.walk);
	if (!found)
		return;
	uint32_t ap = vmb_pa_aperture(pw.pa);
	if ((ap == VMB_PA_APERTURE_VRAM || ap == VMB_PA_APERTURE_SYSTEM) && soft_cpu_reaches(vm->dev, pw.pa))
		x->prefault = soft_pa_ptr(vm->dev, pw.pa);
}

/* exec_prefault: one read of the noted byte, which fills the arena alias's page-table entry
 * (and, the kernel's fault-around, its neighbours already in memory) on this thread with no lock
 * held. The byte may be written meanwhile by an engine or the CPU through another mapping: the
 * value is not used, so the read is kept out of ThreadSanitizer's view. */
SOFT_NO_TSAN static void soft_exec_prefault(struct vmb_dev_exec *base)
{
	struct soft_exec *x = vmb_container_of(base, struct soft_exec, base);
	if (!x->prefault)
		return;
	(void)*x->prefault;
	/* the page is in now: whether a kick of the job would only delay the caller (engine.h) */
	x->needs_thread = !base->intel && soft_batch_needs_thread(x->prefault);
}

static struct vmb_fence *soft_exec_run(struct vmb_device *d, struct vmb_dev_exec *base)
{
	struct soft_exec *x = vmb_container_of(base, struct soft_exec, base);
	struct vmb_fence *done = base->done; /* @x stays until the caller frees it */
	x->pc = base->batch;
	soft_engine_submit(&to_soft(d)->engines[base->engine], x);
	return done;
}

static void soft_exec_destroy(struct vmb_device *d, struct vmb_dev_exec *base)
{
	vmb_fence_unref(base->done);
	vmb_memcache_put(&to_soft(d)->execs, vmb_container_of(base, struct soft_exec, base));
}

static void soft_engines_stop(struct vmb_device *d)
{
	struct soft_device *sd = to_soft(d);
	for (int i = 0; i < SOFT_ENGINES; i++)
		soft_engine_stop(&sd->engines[i]);
	soft_copier_stop(&sd->copier);
}

/* The DMA engine's thread starts with the first copy (a PREFETCH's prepare, device lock held). */
static int soft_copy_create(struct vmb_device *d, struct vmb_dev_copy **out)
{
	int err = soft_copier_open(&to_soft(d)->copier);
	if (err)
		return err;
	struct soft_copy *x = vmb_calloc(1, sizeof(*x));
	if (!x)
		return -ENOMEM;
	if (!(x->base.done = vmb_fence_create())) {
		free(x);
		return -ENOMEM;
	}
	vmb_list_init(&x->link);
	*out = &x->base;
	return 0;
}

static struct vmb_fence *soft_copy_run(struct vmb_device *d, struct vmb_dev_copy *base)
{
	struct vmb_fence *done = base->done; /* @base stays until the caller frees it */
	soft_copier_submit(&to_soft(d)->copier, vmb_container_of(base, struct soft_copy, base));
	return done;
}

static void soft_copy_destroy(struct vmb_device *d, struct vmb_dev_copy *base)
{
	(void)d;
	vmb_fence_unref(base->done);
	free(vmb_container_of(base, struct soft_copy, base));
}

static void soft_destroy(struct vmb_device *d)
{
	struct soft_device *sd = to_soft(d);
	for (int i = 0; i < SOFT_ENGINES; i++) {
		soft_engine_stop(&sd->engines[i]); /* stopped already, unless the open failed */
		soft_engine_release(&sd->engines[i]);
	}
	soft_copier_stop(&sd->copier);
	soft_copier_release(&sd->copier);
	vmb_device_core_release(d);
	vmb_memcache_fini(&sd->execs);
	vmb_pt_pool_fini(&sd->pool);
	vmb_region_fini(&sd->regions[VMB_REGION_SYSTEM]);
	vmb_region_fini(&sd->regions[VMB_REGION_VRAM]);
	vmb_device_lock_fini(d);
	free(sd);
}

static const struct vmb_device_ops soft_ops = {
	.destroy = soft_destroy,
	.region_free = soft_region_free,
	.backing_alloc = soft_backing_alloc,
	.backing_free = soft_backing_free,
	.backing_userptr = soft_backing_userptr,
	.backing_userptr_free = soft_backing_userptr_free,
	.backing_cpu_map = soft_backing_cpu_map,
	.vm_create = soft_vm_create,
	.vm_destroy = soft_vm_destroy,
	.prep_create = soft_prep_create,
	.map_prepare = soft_map_prepare,
	.map_hint = soft_map_hint,
	.map_commit = soft_map_commit,
	.commit_begin = soft_commit_begin,
	.commit_end = soft_commit_end,
	.vm_ban = soft_vm_ban,
	.prep_release = soft_prep_release,
	.map_check = soft_map_check,
	.vm_access = soft_vm_access,
	.sizes_in = soft_sizes_in,
	.vm_stats = soft_vm_stats,
	.validate = soft_validate,
	.vm_validate = soft_vm_validate,
	.engine_open = soft_engine_open,
	.exec_create = soft_exec_create,
	.exec_hint = soft_exec_hint,
	.exec_prefault = soft_exec_prefault,
	.exec_run = soft_exec_run,
	.exec_destroy = soft_exec_destroy,
	.engines_stop = soft_engines_stop,
	.copy_create = soft_copy_create,
	.copy_run = soft_copy_run,
	.copy_destroy = soft_copy_destroy,
};

/* A size from @opts, else the environment (or its default), within the knob's bounds. */
static int pick_size(uint64_t given, enum vmb_env_knob k, uint64_t *out)
{
	if (!given)
		return vmb_env_get(k, out);
	*out = given;
	return vmb_env_check(k, given);
}

static int soft_create(const struct vmb_client_opts *opts, struct vmb_device **out)
{
	static const struct vmb_client_opts none;
	uint64_t vram, sys, pool;
	int err;

	if (!opts)
		opts = &none;
	/* the shape: the flag, else the environment */
	uint64_t discrete = 1;
	if (!(opts->flags & VMB_CLIENT_OPEN_DISCRETE) && (err = vmb_env_get(VMB_ENV_SOFT_DISCRETE, &discrete)))
		return err;
	/* the granularity: 4 KiB, or 2 MiB (a GPU whose smallest page is 2 MiB; always discrete) */
	uint64_t granule = opts->min_page_size ? opts->min_page_size :
			   discrete ? VMB_PT_SIZE_2M : VMB_PT_SIZE_4K;
	if ((granule != VMB_PT_SIZE_4K && granule != VMB_PT_SIZE_2M) || (discrete && granule != VMB_PT_SIZE_2M))
		return -EINVAL;
	if ((err = pick_size(opts->vram_size, VMB_ENV_SOFT_VRAM, &vram)) ||
	    (err = pick_size(opts->system_size, VMB_ENV_SOFT_SYSTEM, &sys)) ||
	    (err = pick_size(opts->pt_pool_size, VMB_ENV_SOFT_PT_POOL, &pool)))
		return err;

	struct soft_device *sd = vmb_calloc(1, sizeof(*sd));
	if (!sd)
		return -ENOMEM;
	if ((err = vmb_region_init(&sd->regions[VMB_REGION_VRAM], VMB_REGION_VRAM, vram)))
		goto err_free;
	if ((err = vmb_region_init(&sd->regions[VMB_REGION_SYSTEM], VMB_REGION_SYSTEM, sys)))
		goto err_vram;
	if ((err = vmb_pt_pool_init(&sd->pool, pool)))
		goto err_sys;

	struct vmb_device *d = &sd->base;
	d->ops = &soft_ops;
	strcpy(d->name, "soft");
	d->va_bits = VMB_PT_VA_BITS;
	d->va_size_default = 1ull << VMB_PT_VA_BITS;
	/* the page sizes from the granularity up (the page tables may still use smaller leaves
	 * inside a granule: a granule is the unit of the API, not of the soft device's tables) */
	d->page_sizes = VMB_PT_SIZES_ALL & ~(granule - 1);
	d->min_page_size = granule;
	/* (USER_FENCE_BO: its BOs' memory is the host pages a BO user fence is written to) */
	d->caps = VMB_CAP_SCRATCH_PAGE | VMB_CAP_NULL_BIND | VMB_CAP_USERPTR | VMB_CAP_PREFETCH | VMB_CAP_EXEC |
		  VMB_CAP_USER_FENCE_BO | (discrete ? 0 : VMB_CAP_VRAM_CPU_MAP);
	sd->discrete = discrete;
	vmb_memcache_init(&sd->execs);
	d->region_capacity[VMB_REGION_VRAM] = vram;
	d->region_capacity[VMB_REGION_SYSTEM] = sys;
	for (uint32_t r = 0; r < VMB_REGION_COUNT; r++) {
		uint64_t a = sd->regions[r].min_alignment; /* BOs are whole granules */
		d->region_align[r] = a > granule ? a : granule;
	}
	d->pt_pool_size = pool;
	vmb_device_lock_init(d);
	static const struct vmb_engine engines[SOFT_ENGINES] = {
		{.engine_class = VMB_ENGINE_CLASS_COMPUTE, .engine_instance = 0},
		{.engine_class = VMB_ENGINE_CLASS_COMPUTE, .engine_instance = 1},
		{.engine_class = VMB_ENGINE_CLASS_COPY, .engine_instance = 0},
	};
	d->num_engines = SOFT_ENGINES;
	for (int i = 0; i < SOFT_ENGINES; i++)
		d->engines[i] = engines[i];
	*out = d;
	return 0;

err_sys:
	vmb_region_fini(&sd->regions[VMB_REGION_SYSTEM]);
err_vram:
	vmb_region_fini(&sd->regions[VMB_REGION_VRAM]);
err_free:
	free(sd);
	return err;
}

/* Always available: it needs nothing but the host. */
static int soft_probe(const char **reason)
{
	(void)reason;
	return 0;
}

const struct vmb_backend vmb_backend_soft = {.name = "soft", .probe = soft_probe, .create = soft_create};
