/* SPDX-License-Identifier: MIT */
/*
 * Description: fault injection over every entry point (include/vmbind/debug.h,
 * vmb_debug_fault_inject). For each scenario (a call of one entry point on a fixed world: a
 * client, vms with mappings at every page size, BOs with known contents, syncobjs, an exec queue)
 * the harness arms the N-th hit of a class of allocation sites to fail, N = 1, 2, ..., until the
 * call runs with no failure injected. After each injected failure: the call's exact errno
 * (-ENOMEM; -EAGAIN for threads), the world as before (every vm's mappings, statistics and GPU
 * view, BO contents, placements and mapping counts, syncobj states, user-fence values, region
 * use, and vmb_client_validate: trees and page tables agree), then the same call without
 * injection succeeds and leaves the world as a run without injection does. Calls with a
 * documented fallback (an asynchronous bind short of memory commits in the call) may succeed
 * under injection: then the world must be the one without injection. Leaks: the suite runs under
 * LeakSanitizer in make check-asan (each iteration closes its clients). At the end, every
 * allocation site of the library (vmb_debug_fault_sites) must have been reached, except the ones
 * in the allow-list below, each with why.
 *
 * Eviction (issue 13 item 1) runs on a small device instance of its own (struct evict_world,
 * opened by the scenario's preparation, closed with the world): VRAM full of BOs nothing uses, a
 * MAP that must evict, and an exec whose vm's BOs were evicted and must come back first. The
 * world is compared as for every scenario (the calls never touch it); what the call's own
 * instance shows is checked by its errno and by the same call succeeding after the failure (an
 * eviction done before the failure stays: residency is no state a call restores).
 */
#include "lib/harness.h"

#include <poll.h>
#include <pthread.h>
#include <sys/mman.h>

#define HOST (VMB_INJECT_HOST_ALLOC | VMB_INJECT_HOST_MAP)

/* Base addresses of the world's mappings in vm 1, one per page size. */
#define VA_4K (1ull << 32)
#define VA_64K (2ull << 32)
#define VA_2M (3ull << 32)
#define VA_1G (4ull << 32)
#define VA_FREE (8ull << 32) /* nothing mapped from here */

enum { BO_4K, BO_64K, BO_2M, BO_1G, BO_VRAM, BO_SYS, BO_CMD, BO_UF, NBO };
static const uint64_t bo_size[NBO] = {16 * KiB, 256 * KiB, 4 * MiB, 1 * GiB, 2 * MiB, 2 * MiB, 64 * KiB, 4 * KiB};
enum { SO_DONE, SO_OUT, SO_TL, SO_EXEC, NSO };

struct world {
	struct vmb_client *c, *c2; /* c2: a second client of the instance, for imports */
	uint32_t vm, vm2, q, eq;
	uint32_t bo[NBO];
	uint8_t *cpu[NBO]; /* each BO's CPU map, for the world's life (vmb_client_close unmaps it) */
	uint32_t so[NSO];
	int bo_fd, so_fd; /* exported at setup: for imports */
	uint64_t *uf;     /* a host user fence */
	uint64_t *userptr; /* 64 KiB of host memory mapped as USERPTR at VA_FREE - 2 MiB */
	void *userptr_map;
	/* what a scenario's preparation or a successful call made */
	int made_fd;
	uint64_t made_ptr;
	uint32_t made;
	int gate_fd;    /* an imported eventfd: w->made is its syncobj, pending until opened */
	int gate2_fd;   /* a second one, never opened (p_gate_timeline) */
	uint32_t so_settle; /* barriers of settle() */
	bool open_gate; /* the scenario's call waits on the gate: open it after the call */
	int done_fd;    /* the call returned (see gate_start) */
	pthread_t opener;
	/* eviction scenarios: a client of a small instance of their own (p_evict*) */
	struct vmb_client *ce;
	uint32_t evm, evm2, eeq, ebo[4], ecmd;
};

/* VRAM: the buddy allocator gives aligned blocks, so BOs there get 64K, 2M and 1G leaves (the 1G
 * BO made first takes the block at 0) */
static struct vmb_client_opts world_opts = {.vram_size = 1 * GiB + 64 * MiB, .system_size = 256 * MiB};

/* Each world on an instance of its own, in turn: an exported BO keeps the previous instance
 * alive until a watcher thread sees its descriptor closed, and its memory must not move under a
 * comparison. */
static unsigned world_seq;
static char world_name[16];

static uint64_t pattern(int b, uint64_t off) { return (uint64_t)(b + 1) << 48 | off; }
static uint64_t stride_of(uint64_t size) { return size / 16 < 4 * KiB ? 4 * KiB : size / 16; }

static void *cpu_map(struct vmb_client *c, uint32_t bo)
{
	struct vmb_bo_mmap m = {.handle = bo};
	assert_int_equal(vmb_bo_mmap(c, &m), 0);
	return (void *)(uintptr_t)m.ptr;
}

static void world_open(struct world *w)
{
	memset(w, 0, sizeof(*w));
	w->bo_fd = w->so_fd = w->made_fd = w->gate_fd = w->gate2_fd = -1;
	snprintf(world_name, sizeof(world_name), "soft:%u", 10 + world_seq++ % 50);
	assert_int_equal(vmb_client_open(world_name, &world_opts, &w->c), 0);
	assert_int_equal(vmb_client_open(world_name, &world_opts, &w->c2), 0);
	struct vmb_client *c = w->c;
	for (int i = 0; i < NBO; i++) {
		int b = i == 0 ? BO_1G : i == BO_1G ? 0 : i;
		/* BO_4K .. BO_1G in VRAM, for their leaves; BO_VRAM and BO_SYS may live in either region (PREFETCH moves them): made in VRAM,
		 * BO_SYS moved to SYSTEM below */
		bool movable = b == BO_VRAM || b == BO_SYS;
		w->bo[b] = bo_new(c, bo_size[b], movable ? VMB_PLACE_VRAM | VMB_PLACE_SYSTEM
						  : b <= BO_1G ? VMB_PLACE_VRAM : VMB_PLACE_SYSTEM);
		uint8_t *p = w->cpu[b] = cpu_map(c, w->bo[b]);
		for (uint64_t off = 0; off < bo_size[b]; off += stride_of(bo_size[b])) {
			uint64_t v = pattern(b, off);
			memcpy(p + off, &v, 8);
		}
	}
	w->vm = vm_new(c, 0);
	w->vm2 = vm_new(c, 0);
	struct vmb_bind_op ops[] = {
		op_map(w->bo[BO_4K], 0, VA_4K + 4 * KiB, 16 * KiB, 0),
		op_map(w->bo[BO_64K], 0, VA_64K, 256 * KiB, 0),
		op_map(w->bo[BO_2M], 0, VA_2M, 4 * MiB, 0),
		op_map(w->bo[BO_1G], 0, VA_1G, 1 * GiB, 0),
		op_map(w->bo[BO_VRAM], 0, VA_FREE - 8 * MiB, 2 * MiB, 0),
		op_map(w->bo[BO_SYS], 0, VA_FREE - 4 * MiB, 2 * MiB, 0),
		op_map(w->bo[BO_CMD], 0, VA_FREE - 1 * MiB, 64 * KiB, 0),
		op_null(VA_FREE - 512 * MiB, 2 * MiB),
		op_prefetch(VA_FREE - 4 * MiB, 2 * MiB, VMB_REGION_SYSTEM),
	};
	assert_int_equal(__bind_ops(c, w->vm, ops, 9), 0);
	/* the leaves the splits below are to split */
	struct vmb_mapping_info mi[12];
	struct vmb_vm_query_mappings mq = {.vm_id = w->vm, .num_mappings = 12, .mappings = (uint64_t)(uintptr_t)mi};
	assert_int_equal(vmb_vm_query_mappings(c, &mq), 0);
	assert_true(mi[0].addr == VA_4K + 4 * KiB && mi[0].page_sizes == VMB_PAGE_4K);
	assert_true(mi[1].addr == VA_64K && mi[1].page_sizes == VMB_PAGE_64K);
	assert_true(mi[2].addr == VA_2M && mi[2].page_sizes == VMB_PAGE_2M);
	assert_true(mi[3].addr == VA_1G && mi[3].page_sizes == VMB_PAGE_1G);
	struct vmb_bind_op again = op_map(w->bo[BO_SYS], 0, 0, 2 * MiB, 0); /* a BO mapped in two vms */
	assert_int_equal(__bind_ops(c, w->vm2, &again, 1), 0);
	/* 64 KiB aligned, as every world's: the leaves a USERPTR mapping gets follow the host address */
	w->userptr_map = mmap(NULL, 128 * KiB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(w->userptr_map != MAP_FAILED);
	w->userptr = (uint64_t *)(((uintptr_t)w->userptr_map + 64 * KiB - 1) & ~(uintptr_t)(64 * KiB - 1));
	w->userptr[0] = 0x5555;
	struct vmb_bind_op up = op_userptr(w->userptr, VA_FREE - 2 * MiB, 64 * KiB, 0);
	assert_int_equal(__bind_ops(c, w->vm, &up, 1), 0);
	w->so[SO_DONE] = syncobj_new(c, VMB_SYNCOBJ_CREATE_SIGNALED);
	w->so[SO_OUT] = syncobj_new(c, 0);
	w->so[SO_TL] = syncobj_new(c, VMB_SYNCOBJ_CREATE_TIMELINE);
	w->so[SO_EXEC] = syncobj_new(c, 0);
	w->so_settle = syncobj_new(c, 0);
	uint64_t one = 1;
	struct vmb_syncobj_array ts = {.handles = (uint64_t)(uintptr_t)&w->so[SO_TL], .points = (uint64_t)(uintptr_t)&one, .count = 1};
	assert_int_equal(vmb_syncobj_timeline_signal(c, &ts), 0);
	w->q = queue_new(c, w->vm);
	struct vmb_exec_queue_create eq = {.vm_id = w->vm};
	assert_int_equal(vmb_exec_queue_create(c, &eq), 0);
	w->eq = eq.exec_queue_id;
	struct vmb_bo_export_fd ex = {.handle = w->bo[BO_SYS]};
	assert_int_equal(vmb_bo_export_fd(c, &ex), 0);
	w->bo_fd = ex.fd;
	struct vmb_syncobj_fd sx = {.handle = w->so[SO_DONE]};
	assert_int_equal(vmb_syncobj_export_fd(c, &sx), 0);
	w->so_fd = sx.fd;
	w->uf = calloc(1, 8);
	/* the command buffer: one store into BO_SYS through its mapping */
	uint64_t *cmd = (uint64_t *)(void *)w->cpu[BO_CMD];
	uint32_t n = 0;
	vmb_cmd_store64(cmd, &n, VA_FREE - 4 * MiB + 64 * KiB, 0x600d);
	vmb_cmd_emit(cmd, &n, VMB_CMD_HEADER(VMB_CMD_BATCH_END, 0));
}

static void world_close(struct world *w)
{
	if (w->made_fd >= 0)
		close(w->made_fd);
	if (w->gate_fd >= 0)
		close(w->gate_fd);
	if (w->gate2_fd >= 0)
		close(w->gate2_fd);
	close(w->bo_fd);
	close(w->so_fd);
	if (w->c2)
		assert_int_equal(vmb_client_close(w->c2), 0);
	if (w->ce)
		assert_int_equal(vmb_client_close(w->ce), 0);
	assert_int_equal(vmb_client_close(w->c), 0);
	munmap(w->userptr_map, 128 * KiB);
	free(w->uf);
}

/* ---- the state compared ---- */

#define MAXMAP 128
struct vm_snap {
	uint32_t n;
	struct vmb_mapping_info m[MAXMAP];
	uint64_t gpu[MAXMAP][2]; /* first and last u64 of each mapping, through the GPU view */
	struct vmb_vm_stats stats;
};
struct snap {
	struct vm_snap vm[2];
	struct vmb_bo_query bo[NBO];
	uint64_t bo_sum[NBO];
	uint64_t so[NSO];
	uint64_t uf;
	uint64_t region_used[VMB_REGION_COUNT];
};

static int bind_n(struct world *w, uint32_t vm, uint32_t queue, struct vmb_bind_op *ops, uint32_t n,
		  struct vmb_sync *syncs, uint32_t ns, bool async);

/* A barrier on a bind queue (ops none, out-sync so_settle), waited for: every bind submitted
 * on it before is done, its out-fences signalled and its user fences written. */
static void barrier(struct world *w, uint32_t vm, uint32_t queue)
{
	struct vmb_sync s = sync_out(w->so_settle);
	int err = bind_n(w, vm, queue, NULL, 0, &s, 1, true);
	if (err == -ENOENT) /* a queue the scenario destroyed */
		return;
	assert_int_equal(err, 0);
	assert_int_equal(__syncobj_wait1(w->c, w->so_settle, 0, 10 * 1000000000ll, 0), 0);
}

/* Every bind and exec done, then the state. */
static void settle(struct world *w)
{
	struct vmb_client_validate v = {0};
	int err;
	barrier(w, w->vm, 0);
	barrier(w, w->vm, w->q);
	barrier(w, w->vm2, 0);
	for (int i = 0; (err = vmb_client_validate(w->c, &v)) == -EBUSY && i < 10000; i++)
		usleep(1000);
	assert_int_equal(err, 0);
	/* an exec done: its syncobj signalled, if one was submitted */
	struct vmb_syncobj_wait wt = {.handles = (uint64_t)(uintptr_t)&w->so[SO_EXEC], .count = 1,
				      .timeout_ns = 10 * 1000000000ll, .flags = VMB_SYNCOBJ_WAIT_RELATIVE};
	err = vmb_syncobj_wait(w->c, &wt);
	assert_true(err == 0 || err == -EINVAL); /* -EINVAL: nothing submitted */
}

static void snap_vm(struct world *w, uint32_t vm, struct vm_snap *s)
{
	struct vmb_vm_query_mappings q = {.vm_id = vm, .num_mappings = MAXMAP, .mappings = (uint64_t)(uintptr_t)s->m};
	assert_int_equal(vmb_vm_query_mappings(w->c, &q), 0);
	assert_true(q.num_mappings <= MAXMAP);
	s->n = q.num_mappings;
	for (uint32_t i = 0; i < s->n; i++) {
		if (s->m[i].flags & VMB_MAPPING_USERPTR) /* the world's host memory: compared as an offset in it */
			s->m[i].offset -= (uint64_t)(uintptr_t)w->userptr;
		assert_int_equal(__gpu_rw(w->c, vm, s->m[i].addr, &s->gpu[i][0], 8, false), 0);
		assert_int_equal(__gpu_rw(w->c, vm, s->m[i].addr + s->m[i].range - 8, &s->gpu[i][1], 8, false), 0);
	}
	s->stats.vm_id = vm;
	assert_int_equal(vmb_vm_query_stats(w->c, &s->stats), 0);
}

static void snapshot(struct world *w, struct snap *s)
{
	memset(s, 0, sizeof(*s));
	settle(w);
	snap_vm(w, w->vm, &s->vm[0]);
	snap_vm(w, w->vm2, &s->vm[1]);
	for (int b = 0; b < NBO; b++) {
		s->bo[b].handle = w->bo[b];
		assert_int_equal(vmb_bo_query(w->c, &s->bo[b]), 0);
		const uint8_t *p = w->cpu[b];
		uint64_t sum = 0;
		for (uint64_t off = 0; off < bo_size[b]; off += stride_of(bo_size[b])) {
			uint64_t v;
			memcpy(&v, p + off, 8);
			sum = sum * 1000003 ^ v;
		}
		s->bo_sum[b] = sum;
	}
	struct vmb_syncobj_array q = {.handles = (uint64_t)(uintptr_t)w->so, .points = (uint64_t)(uintptr_t)s->so, .count = NSO};
	assert_int_equal(vmb_syncobj_query(w->c, &q), 0);
	s->uf = *w->uf;
	for (uint32_t r = 0; r < VMB_REGION_COUNT; r++) {
		struct vmb_region_query rq = {.region = r};
		assert_int_equal(vmb_region_query(w->c, &rq), 0);
		s->region_used[r] = rq.capacity - rq.free;
	}
}

/*
 * @b is @a. One exception, with @cache: a vm's VA node cache (va_bytes) may have grown, by slabs
 * a failed call allocated and gave back to the cache rather than to the system; the caller
 * checks it against the successful call's (the cache never holds more than that needed).
 */
static void snap_equal_but(const char *what, const struct snap *a, const struct snap *b, bool cache)
{
	for (int v = 0; v < 2; v++) {
		struct vmb_vm_stats sa = a->vm[v].stats;
		if (cache && b->vm[v].stats.va_bytes >= sa.va_bytes)
			sa.va_bytes = b->vm[v].stats.va_bytes;
		if (a->vm[v].n != b->vm[v].n)
			fail_msg("%s: vm %d has %u mappings, %u before", what, v, b->vm[v].n, a->vm[v].n);
		for (uint32_t i = 0; i < a->vm[v].n; i++) {
			const struct vmb_mapping_info *x = &a->vm[v].m[i], *y = &b->vm[v].m[i];
			if (memcmp(x, y, sizeof(*x)))
				fail_msg("%s: vm %d mapping %u differs: [%#llx +%#llx off %#llx sizes %#llx bo %u flags %#x], "
					 "before [%#llx +%#llx off %#llx sizes %#llx bo %u flags %#x]", what, v, i,
					 (unsigned long long)y->addr, (unsigned long long)y->range, (unsigned long long)y->offset,
					 (unsigned long long)y->page_sizes, y->bo_handle, y->flags, (unsigned long long)x->addr,
					 (unsigned long long)x->range, (unsigned long long)x->offset,
					 (unsigned long long)x->page_sizes, x->bo_handle, x->flags);
			if (memcmp(a->vm[v].gpu[i], b->vm[v].gpu[i], sizeof(a->vm[v].gpu[i])))
				fail_msg("%s: vm %d mapping %u reads differently through the GPU", what, v, i);
		}
		if (memcmp(&sa, &b->vm[v].stats, sizeof(sa)))
			fail_msg("%s: vm %d statistics differ (pt_bytes %llu -> %llu, va_bytes %llu -> %llu)", what, v,
				 (unsigned long long)sa.pt_bytes, (unsigned long long)b->vm[v].stats.pt_bytes,
				 (unsigned long long)sa.va_bytes, (unsigned long long)b->vm[v].stats.va_bytes);
	}
	for (int i = 0; i < NBO; i++) {
		if (memcmp(&a->bo[i], &b->bo[i], sizeof(a->bo[i])))
			fail_msg("%s: BO %d query differs (region %u -> %u, mappings %u -> %u)", what, i, a->bo[i].region,
				 b->bo[i].region, a->bo[i].vm_mappings, b->bo[i].vm_mappings);
		if (a->bo_sum[i] != b->bo_sum[i])
			fail_msg("%s: BO %d contents differ", what, i);
	}
	for (int i = 0; i < NSO; i++)
		if (a->so[i] != b->so[i])
			fail_msg("%s: syncobj %d state %llu, %llu before", what, i, (unsigned long long)b->so[i],
				 (unsigned long long)a->so[i]);
	if (a->uf != b->uf)
		fail_msg("%s: user fence %llu, %llu before", what, (unsigned long long)b->uf, (unsigned long long)a->uf);
	for (unsigned r = 0; r < VMB_REGION_COUNT; r++)
		if (a->region_used[r] != b->region_used[r])
			fail_msg("%s: region %u uses %llu bytes, %llu before", what, r, (unsigned long long)b->region_used[r],
				 (unsigned long long)a->region_used[r]);
}

static void snap_equal(const char *what, const struct snap *a, const struct snap *b)
{
	snap_equal_but(what, a, b, false);
}

/* ---- arming ---- */

static void arm(struct vmb_client *c, uint32_t classes, uint64_t nth, uint32_t flags)
{
	struct vmb_fault_inject a = {.classes = classes, .nth = nth, .flags = flags,
				     .scope = classes == VMB_INJECT_COMMIT ? VMB_INJECT_SCOPE_PROCESS : VMB_INJECT_SCOPE_THREAD,
				     .error = classes == VMB_INJECT_COMMIT ? -EIO : 0};
	assert_int_equal(vmb_debug_fault_inject(c, &a), 0);
}
/* Disarms; returns the failures the arming injected. */
static uint64_t disarm(struct vmb_client *c, uint32_t classes)
{
	struct vmb_fault_inject a = {.classes = classes,
				     .scope = classes == VMB_INJECT_COMMIT ? VMB_INJECT_SCOPE_PROCESS : VMB_INJECT_SCOPE_THREAD};
	assert_int_equal(vmb_debug_fault_inject(c, &a), 0);
	return a.injected;
}

/* ---- the scenarios ---- */

typedef int (*call_fn)(struct world *w);

#define MAY_SUCCEED (1u << 0) /* a documented fallback: success under injection is fine */
#define NEVER_FAILS (1u << 1) /* an unbind: succeeds whatever allocation fails (UAPI.md, "Unbind under memory pressure") */

struct scenario {
	const char *name;
	call_fn call;
	call_fn prep; /* run on the world before it is compared, uninjected */
	uint32_t classes;
	int err;
	uint32_t flags;
};

static int bind_n(struct world *w, uint32_t vm, uint32_t queue, struct vmb_bind_op *ops, uint32_t n,
		  struct vmb_sync *syncs, uint32_t ns, bool async)
{
	struct vmb_vm_bind b = {.vm_id = vm, .queue_id = queue, .num_binds = n, .binds = (uint64_t)(uintptr_t)ops,
				.num_syncs = ns, .syncs = (uint64_t)(uintptr_t)syncs,
				.flags = async ? VMB_VM_BIND_FLAG_ASYNC : 0};
	return vmb_vm_bind(w->c, &b);
}

/* Splits at every page size: front trims, a middle hole and an end trim of each mapping. */
static int split_ops(struct world *w, struct vmb_bind_op *ops)
{
	int n = 0;
	ops[n++] = op_unmap(VA_4K + 8 * KiB, 4 * KiB);               /* 4K: middle */
	ops[n++] = op_unmap(VA_64K + 64 * KiB, 4 * KiB);             /* 64K: split a 64K leaf */
	ops[n++] = op_unmap(VA_64K + 192 * KiB, 64 * KiB);           /* 64K: end */
	ops[n++] = op_unmap(VA_2M, 4 * KiB);                         /* 2M: front, splits a 2M leaf */
	ops[n++] = op_map(w->bo[BO_4K], 0, VA_2M + 3 * MiB, 4 * KiB, 0); /* 2M: a remap in the middle */
	ops[n++] = op_unmap(VA_1G + 512 * MiB, 64 * KiB);            /* 1G: middle of the 1G leaf */
	ops[n++] = op_unmap(VA_1G + 1 * GiB - 2 * MiB, 2 * MiB);     /* 1G: end */
	return n;
}

static int c_split(struct world *w)
{
	struct vmb_bind_op ops[8];
	return bind_n(w, w->vm, 0, ops, (uint32_t)split_ops(w, ops), NULL, 0, false);
}
static int c_unmap_splits(struct world *w) /* UNMAPs only: holes in a 64K, a 2M and a 1G leaf */
{
	struct vmb_bind_op ops[] = {
		op_unmap(VA_64K + 64 * KiB, 4 * KiB),
		op_unmap(VA_2M + 1 * MiB, 4 * KiB),
		op_unmap(VA_1G + 512 * MiB, 4 * KiB),
	};
	return bind_n(w, w->vm, 0, ops, 3, NULL, 0, false);
}
static int c_map_sizes(struct world *w)
{
	struct vmb_bind_op ops[] = {
		op_map(w->bo[BO_4K], 0, VA_FREE, 16 * KiB, 0),
		op_map(w->bo[BO_64K], 0, VA_FREE + 1 * MiB, 256 * KiB, VMB_BIND_FLAG_READONLY),
		op_map(w->bo[BO_2M], 0, VA_FREE + 4 * MiB, 4 * MiB, 0),
		op_null(VA_FREE + 1 * GiB, 1 * GiB),
	};
	return bind_n(w, w->vm, 0, ops, 4, NULL, 0, false);
}
static int c_map_over(struct world *w) /* replaces parts of several mappings in one op */
{
	struct vmb_bind_op op = op_map(w->bo[BO_2M], 0, VA_1G + 1 * GiB - 2 * MiB, 2 * MiB, 0);
	return bind_n(w, w->vm, 0, &op, 1, NULL, 0, false);
}
static int c_userptr(struct world *w)
{
	struct vmb_bind_op op = op_userptr(w->userptr, VA_FREE + 64 * KiB, 64 * KiB, 0);
	return bind_n(w, w->vm, 0, &op, 1, NULL, 0, false);
}
static int c_many_ops(struct world *w) /* more ops than fit on the stack, more mappings than a VA slab */
{
	struct vmb_bind_op ops[64];
	for (int i = 0; i < 64; i++)
		ops[i] = op_map(w->bo[BO_4K], (uint64_t)(i % 4) * 4 * KiB, VA_FREE + (uint64_t)i * 64 * KiB, 4 * KiB, 0);
	return bind_n(w, w->vm, 0, ops, 64, NULL, 0, false);
}
static int p_bo(struct world *w)
{
	w->made = bo_new(w->c, 64 * KiB, VMB_PLACE_SYSTEM);
	return 0;
}
static int p_restart_vm(struct world *w)
{
	w->made = vm_new(w->c, VMB_VM_CREATE_RESTART_MODE);
	return 0;
}
/* 4 MAPs on a restart-mode vm (w->made, which the snapshots leave out): a failure before op 0
 * (the restart record's allocation, op 0's own) changes nothing and owes nothing; one after op 0
 * leaves a restart owed, which the call completes at once (the injection fired already): the
 * call succeeds, as the others' documented fallbacks. */
static int c_restart_mode(struct world *w)
{
	struct vmb_bind_op ops[4];
	for (int i = 0; i < 4; i++)
		ops[i] = op_map(w->bo[BO_SYS], 0, VA_FREE + (uint64_t)i * 2 * MiB, 64 * KiB, 0);
	struct vmb_vm_bind b = {.vm_id = w->made, .num_binds = 4, .binds = (uint64_t)(uintptr_t)ops};
	int err = vmb_vm_bind(w->c, &b);
	uint32_t done = VMB_VM_BIND_RESTART_DONE(b.restart);
	if (!err || !b.restart)
		return err;
	assert_int_equal(err, -ENOMEM);
	assert_true(done >= 1 && done < 4);
	return vmb_vm_bind(w->c, &b);
}
static int c_map_new_bo(struct world *w) /* a BO the vm does not map yet */
{
	struct vmb_bind_op op = op_map(w->made, 0, VA_FREE, 64 * KiB, 0);
	return bind_n(w, w->vm, 0, &op, 1, NULL, 0, false);
}
static int c_unmap_all(struct world *w)
{
	struct vmb_bind_op op = op_unmap_all(w->bo[BO_SYS]);
	return bind_n(w, w->vm, 0, &op, 1, NULL, 0, false);
}
static int c_unmap_whole(struct world *w)
{
	struct vmb_bind_op op = op_unmap(0, VA_FREE);
	return bind_n(w, w->vm, 0, &op, 1, NULL, 0, false);
}
static int c_unmap_wide(struct world *w) /* every mapping the world and c_many_ops made */
{
	struct vmb_bind_op op = op_unmap(0, 2 * VA_FREE);
	return bind_n(w, w->vm, 0, &op, 1, NULL, 0, false);
}
static int c_prefetch_vram(struct world *w)
{
	struct vmb_bind_op op = op_prefetch(VA_FREE - 4 * MiB, 2 * MiB, VMB_REGION_VRAM);
	return bind_n(w, w->vm, 0, &op, 1, NULL, 0, false);
}
static int c_prefetch_sys(struct world *w)
{
	struct vmb_bind_op op = op_prefetch(VA_FREE - 8 * MiB, 2 * MiB, VMB_REGION_SYSTEM);
	return bind_n(w, w->vm, 0, &op, 1, NULL, 0, false);
}
static int c_async_syncobj(struct world *w)
{
	struct vmb_bind_op ops[8];
	struct vmb_sync s[] = {sync_in(w->so[SO_DONE]), sync_out(w->so[SO_OUT])};
	return bind_n(w, w->vm, 0, ops, (uint32_t)split_ops(w, ops), s, 2, true);
}
static int c_async_timeline(struct world *w)
{
	struct vmb_bind_op op = op_unmap(VA_2M + 1 * MiB, 64 * KiB);
	struct vmb_sync s[] = {sync_tl_in(w->so[SO_TL], 1), sync_tl_out(w->so[SO_TL], 2)};
	return bind_n(w, w->vm, w->q, &op, 1, s, 2, true);
}
static int c_async_ufence(struct world *w)
{
	struct vmb_bind_op op = op_map(w->bo[BO_64K], 0, VA_FREE, 64 * KiB, 0);
	struct vmb_sync s = sync_ufence(w->uf, 7);
	return bind_n(w, w->vm, 0, &op, 1, &s, 1, true);
}
static int c_async_bo_ufence(struct world *w)
{
	struct vmb_bind_op op = op_unmap_all(w->bo[BO_4K]);
	struct vmb_sync s = {.type = VMB_SYNC_BO_USER_FENCE, .flags = VMB_SYNC_FLAG_SIGNAL, .handle = w->bo[BO_UF],
			     .addr = 64, .value = 9};
	return bind_n(w, w->vm, w->q, &op, 1, &s, 1, true);
}
static int c_async_prefetch(struct world *w)
{
	struct vmb_bind_op op = op_prefetch(VA_FREE - 4 * MiB, 2 * MiB, VMB_REGION_VRAM);
	struct vmb_sync s = sync_out(w->so[SO_OUT]);
	return bind_n(w, w->vm, 0, &op, 1, &s, 1, true);
}
static int c_async_many_syncs(struct world *w) /* more syncs than fit on the stack */
{
	struct vmb_bind_op op = op_unmap(VA_4K, 8 * KiB);
	struct vmb_sync s[12];
	for (int i = 0; i < 11; i++)
		s[i] = sync_in(w->so[SO_DONE]);
	s[11] = sync_out(w->so[SO_OUT]);
	return bind_n(w, w->vm, 0, &op, 1, s, 12, true);
}
static int c_barrier(struct world *w) /* no ops: a barrier signalling its out-sync */
{
	struct vmb_sync s = sync_out(w->so[SO_OUT]);
	return bind_n(w, w->vm, w->q, NULL, 0, &s, 1, true);
}
static int c_exec(struct world *w)
{
	struct vmb_sync s[] = {sync_in(w->so[SO_DONE]), sync_out(w->so[SO_EXEC])};
	struct vmb_exec e = {.exec_queue_id = w->eq, .address = VA_FREE - 1 * MiB, .num_syncs = 2,
			     .syncs = (uint64_t)(uintptr_t)s};
	return vmb_exec(w->c, &e);
}
/* Eviction: an instance with 4 MiB of VRAM. p_evict: BO 0 bound then unbound (nothing uses
 * it), BO 1 bound in evm, both VRAM-only, VRAM full; BO 2 created past the room. c_evict maps
 * BO 2: the call evicts what nothing uses (BO 0, or BO 1: evm runs nothing) first. */
static int p_evict(struct world *w)
{
	struct vmb_client_opts o = {.vram_size = 4 * MiB, .system_size = 64 * MiB};
	assert_int_equal(vmb_client_open("soft:63", &o, &w->ce), 0);
	w->evm = vm_new(w->ce, 0);
	for (int i = 0; i < 3; i++)
		w->ebo[i] = bo_new(w->ce, 2 * MiB, VMB_PLACE_VRAM);
	bind1(w->ce, w->evm, op_map(w->ebo[0], 0, VA_2M, 2 * MiB, 0));
	bind1(w->ce, w->evm, op_map(w->ebo[1], 0, VA_4K, 2 * MiB, 0));
	bind1(w->ce, w->evm, op_unmap(VA_2M, 2 * MiB));
	return 0;
}
static int c_evict(struct world *w)
{
	struct vmb_bind_op op = op_map(w->ebo[2], 0, VA_64K, 2 * MiB, 0);
	return vmb_vm_bind(w->ce, &(struct vmb_vm_bind){.vm_id = w->evm, .num_binds = 1, .binds = (uint64_t)(uintptr_t)&op});
}
/* p_evict_exec: evm binds BOs 0 and 1 (all of VRAM), with an exec queue and an empty batch;
 * evm2 then binds BO 2, which evicts one of evm's (nothing of evm runs). c_evict_exec: an exec on
 * evm, which must bring that BO back first (its placements exclude SYSTEM): a restore job, and
 * the eviction of BO 2 for its room. */
static int p_evict_exec(struct world *w)
{
	struct vmb_client_opts o = {.vram_size = 4 * MiB, .system_size = 64 * MiB};
	assert_int_equal(vmb_client_open("soft:63", &o, &w->ce), 0);
	w->evm = vm_new(w->ce, 0);
	w->evm2 = vm_new(w->ce, 0);
	for (int i = 0; i < 3; i++)
		w->ebo[i] = bo_new(w->ce, 2 * MiB, VMB_PLACE_VRAM);
	w->ecmd = bo_new(w->ce, 64 * KiB, VMB_PLACE_SYSTEM);
	uint64_t *cmd = cpu_map(w->ce, w->ecmd);
	uint32_t k = 0;
	vmb_cmd_end(cmd, &k);
	bind1(w->ce, w->evm, op_map(w->ecmd, 0, VA_FREE, 64 * KiB, VMB_BIND_FLAG_READONLY));
	bind1(w->ce, w->evm, op_map(w->ebo[0], 0, VA_2M, 2 * MiB, 0));
	bind1(w->ce, w->evm, op_map(w->ebo[1], 0, VA_4K, 2 * MiB, 0));
	struct vmb_exec_queue_create qc = {.vm_id = w->evm, .engine = {.engine_class = VMB_ENGINE_CLASS_COMPUTE}};
	assert_int_equal(vmb_exec_queue_create(w->ce, &qc), 0);
	w->eeq = qc.exec_queue_id;
	bind1(w->ce, w->evm2, op_map(w->ebo[2], 0, VA_2M, 2 * MiB, 0));
	return 0;
}
static int c_evict_exec(struct world *w)
{
	struct vmb_exec e = {.exec_queue_id = w->eeq, .address = VA_FREE};
	return vmb_exec(w->ce, &e);
}
/* A gate: a syncobj whose fence is pending until the harness opens it (an imported eventfd). */
static int p_gate(struct world *w)
{
	w->gate_fd = eventfd(0, EFD_CLOEXEC);
	assert_true(w->gate_fd >= 0);
	struct vmb_syncobj_fd a = {.fd = w->gate_fd};
	assert_int_equal(vmb_syncobj_import_fd(w->c, &a), 0);
	w->made = a.handle;
	return 0;
}
static int p_gate_after(struct world *w)
{
	w->open_gate = true;
	return p_gate(w);
}
/*
 * The gate opens when the call returns, or after 100 ms inside it: an asynchronous bind short of
 * memory commits in the call (the documented fallback), and then waits there for what it
 * follows, the gate included. The 100 ms only decide when that wait ends, never a result.
 */
static void *gate_opener(void *arg)
{
	struct world *w = arg;
	struct pollfd p = {.fd = w->done_fd, .events = POLLIN};
	(void)poll(&p, 1, 100);
	uint64_t one = 1;
	assert_int_equal(write(w->gate_fd, &one, 8), 8);
	return NULL;
}
static void gate_start(struct world *w)
{
	if (!w->open_gate)
		return;
	w->done_fd = eventfd(0, EFD_CLOEXEC);
	assert_true(w->done_fd >= 0);
	assert_int_equal(pthread_create(&w->opener, NULL, gate_opener, w), 0);
}
static void gate_release(struct world *w)
{
	if (!w->open_gate)
		return;
	uint64_t one = 1;
	assert_int_equal(write(w->done_fd, &one, 8), 8);
	assert_int_equal(pthread_join(w->opener, NULL), 0);
	close(w->done_fd);
	w->open_gate = false;
}
static int c_async_pending_in(struct world *w) /* a job with a dependency to wait for */
{
	struct vmb_bind_op op = op_unmap(VA_2M + 1 * MiB, 64 * KiB);
	struct vmb_sync s[] = {sync_in(w->made), sync_in(w->so[SO_DONE]), sync_tl_out(w->so[SO_TL], 2)};
	return bind_n(w, w->vm, w->q, &op, 1, s, 3, true);
}
static int c_exec_pending_in(struct world *w)
{
	struct vmb_sync s[] = {sync_in(w->made), sync_out(w->so[SO_EXEC])};
	struct vmb_exec e = {.exec_queue_id = w->eq, .address = VA_FREE - 1 * MiB, .num_syncs = 2,
			     .syncs = (uint64_t)(uintptr_t)s};
	return vmb_exec(w->c, &e);
}
static int c_syncobj_export_pending(struct world *w)
{
	struct vmb_syncobj_fd a = {.handle = w->made};
	int err = vmb_syncobj_export_fd(w->c, &a);
	if (!err)
		close(a.fd);
	return err;
}
/* A timeline whose point 1 waits for one gate, point 2 for another: its fence at 2 waits for both. */
static int p_gate_timeline(struct world *w)
{
	p_gate(w);
	uint32_t g1 = w->made;
	w->gate2_fd = eventfd(0, EFD_CLOEXEC);
	assert_true(w->gate2_fd >= 0);
	struct vmb_syncobj_fd a = {.fd = w->gate2_fd};
	assert_int_equal(vmb_syncobj_import_fd(w->c, &a), 0);
	w->made = syncobj_new(w->c, VMB_SYNCOBJ_CREATE_TIMELINE);
	struct vmb_syncobj_transfer t = {.src_handle = g1, .dst_handle = w->made, .dst_point = 1};
	assert_int_equal(vmb_syncobj_transfer(w->c, &t), 0);
	t = (struct vmb_syncobj_transfer){.src_handle = a.handle, .dst_handle = w->made, .dst_point = 2};
	assert_int_equal(vmb_syncobj_transfer(w->c, &t), 0);
	return 0;
}
static int c_syncobj_export_timeline(struct world *w)
{
	struct vmb_syncobj_fd a = {.handle = w->made, .point = 2};
	int err = vmb_syncobj_export_fd(w->c, &a);
	if (!err)
		close(a.fd);
	return err;
}
static int p_eventfd(struct world *w)
{
	w->made_fd = eventfd(0, EFD_CLOEXEC);
	assert_true(w->made_fd >= 0);
	return 0;
}
static int c_syncobj_import_pending(struct world *w)
{
	struct vmb_syncobj_fd a = {.fd = w->made_fd};
	return vmb_syncobj_import_fd(w->c, &a);
}
static int c_exec_many_syncs(struct world *w)
{
	struct vmb_sync s[12];
	for (int i = 0; i < 11; i++)
		s[i] = sync_in(w->so[SO_DONE]);
	s[11] = sync_out(w->so[SO_EXEC]);
	struct vmb_exec e = {.exec_queue_id = w->eq, .address = VA_FREE - 1 * MiB, .num_syncs = 12,
			     .syncs = (uint64_t)(uintptr_t)s};
	return vmb_exec(w->c, &e);
}
static int c_bo_create_sys(struct world *w)
{
	struct vmb_bo_create a = {.size = 64 * KiB, .placements = VMB_PLACE_SYSTEM};
	return vmb_bo_create(w->c, &a);
}
static int c_bo_create_vram(struct world *w)
{
	struct vmb_bo_create a = {.size = 4 * MiB, .placements = VMB_PLACE_VRAM};
	return vmb_bo_create(w->c, &a);
}
static int p_bo_mapped(struct world *w) /* a BO mapped in two vms */
{
	w->made = bo_new(w->c, 64 * KiB, VMB_PLACE_SYSTEM);
	struct vmb_bind_op op = op_map(w->made, 0, VA_FREE, 64 * KiB, 0);
	assert_int_equal(bind_n(w, w->vm, 0, &op, 1, NULL, 0, false), 0);
	assert_int_equal(bind_n(w, w->vm2, 0, &op, 1, NULL, 0, false), 0);
	return 0;
}
static int c_bo_destroy(struct world *w)
{
	struct vmb_bo_destroy a = {.handle = w->made};
	return vmb_bo_destroy(w->c, &a);
}
static int c_bo_mmap(struct world *w) /* a BO not mapped yet */
{
	struct vmb_bo_mmap a = {.handle = w->made};
	return vmb_bo_mmap(w->c, &a);
}
static int p_bo_mmap(struct world *w)
{
	p_bo(w);
	w->made_ptr = (uint64_t)(uintptr_t)cpu_map(w->c, w->made);
	return 0;
}
static int c_bo_munmap(struct world *w)
{
	struct vmb_bo_munmap u = {.handle = w->made, .ptr = w->made_ptr};
	return vmb_bo_munmap(w->c, &u);
}
static int c_bo_export(struct world *w)
{
	struct vmb_bo_export_fd a = {.handle = w->bo[BO_64K]};
	int err = vmb_bo_export_fd(w->c, &a);
	if (!err) {
		if (w->made_fd >= 0)
			close(w->made_fd);
		w->made_fd = a.fd;
	}
	return err;
}
static int c_bo_import(struct world *w)
{
	struct vmb_bo_import_fd a = {.fd = w->bo_fd};
	return vmb_bo_import_fd(w->c2, &a);
}
static int c_bo_query(struct world *w)
{
	struct vmb_bo_query a = {.handle = w->bo[BO_SYS]};
	return vmb_bo_query(w->c, &a);
}
static int c_vm_create(struct world *w)
{
	struct vmb_vm_create a = {.flags = VMB_VM_CREATE_SCRATCH_PAGE};
	return vmb_vm_create(w->c, &a);
}
static int c_vm_create_lr(struct world *w)
{
	struct vmb_vm_create a = {.flags = VMB_VM_CREATE_LR_MODE};
	return vmb_vm_create(w->c, &a);
}
static int p_vm(struct world *w) /* a vm with mappings, a queue with a pending bind, an exec queue */
{
	w->made = vm_new(w->c, 0);
	struct vmb_bind_op ops[] = {op_map(w->bo[BO_2M], 0, 0, 4 * MiB, 0), op_map(w->bo[BO_SYS], 0, 8 * MiB, 2 * MiB, 0)};
	assert_int_equal(bind_n(w, w->made, 0, ops, 2, NULL, 0, false), 0);
	return 0;
}
static int c_vm_destroy(struct world *w)
{
	struct vmb_vm_destroy a = {.vm_id = w->made};
	return vmb_vm_destroy(w->c, &a);
}
static int c_queue_create(struct world *w)
{
	struct vmb_bind_queue_create a = {.vm_id = w->vm};
	return vmb_bind_queue_create(w->c, &a);
}
static int c_queue_destroy(struct world *w)
{
	struct vmb_bind_queue_destroy a = {.vm_id = w->vm, .queue_id = w->q};
	return vmb_bind_queue_destroy(w->c, &a);
}
static int c_exec_queue_create(struct world *w)
{
	struct vmb_exec_queue_create a = {.vm_id = w->vm2, .engine = {.engine_class = VMB_ENGINE_CLASS_COPY}};
	return vmb_exec_queue_create(w->c, &a);
}
static int c_exec_queue_destroy(struct world *w)
{
	struct vmb_exec_queue_destroy a = {.exec_queue_id = w->eq};
	return vmb_exec_queue_destroy(w->c, &a);
}
static int c_exec_queue_query(struct world *w)
{
	struct vmb_exec_queue_query a = {.exec_queue_id = w->eq};
	return vmb_exec_queue_query(w->c, &a);
}
static int c_syncobj_create(struct world *w)
{
	struct vmb_syncobj_create a = {.flags = VMB_SYNCOBJ_CREATE_TIMELINE};
	return vmb_syncobj_create(w->c, &a);
}
static int p_syncobj(struct world *w)
{
	w->made = syncobj_new(w->c, VMB_SYNCOBJ_CREATE_TIMELINE);
	return 0;
}
static int c_syncobj_destroy(struct world *w)
{
	struct vmb_syncobj_destroy a = {.handle = w->made};
	return vmb_syncobj_destroy(w->c, &a);
}
static int c_syncobj_signal(struct world *w)
{
	struct vmb_syncobj_array a = {.handles = (uint64_t)(uintptr_t)&w->so[SO_OUT], .count = 1};
	return vmb_syncobj_signal(w->c, &a);
}
static int c_syncobj_reset(struct world *w)
{
	struct vmb_syncobj_array a = {.handles = (uint64_t)(uintptr_t)&w->so[SO_DONE], .count = 1};
	return vmb_syncobj_reset(w->c, &a);
}
static int c_syncobj_timeline_signal(struct world *w)
{
	uint32_t h[] = {w->so[SO_TL], w->so[SO_TL]};
	uint64_t p[] = {2, 3};
	struct vmb_syncobj_array a = {.handles = (uint64_t)(uintptr_t)h, .points = (uint64_t)(uintptr_t)p, .count = 2};
	return vmb_syncobj_timeline_signal(w->c, &a);
}
static int c_syncobj_query(struct world *w)
{
	uint64_t p[NSO];
	struct vmb_syncobj_array a = {.handles = (uint64_t)(uintptr_t)w->so, .points = (uint64_t)(uintptr_t)p, .count = NSO};
	return vmb_syncobj_query(w->c, &a);
}
static int c_syncobj_query_status(struct world *w)
{
	uint32_t h[] = {w->so[SO_DONE], w->so[SO_TL]};
	uint64_t p[] = {0, 1};
	int32_t st[2];
	struct vmb_syncobj_status a = {.handles = (uint64_t)(uintptr_t)h, .points = (uint64_t)(uintptr_t)p,
				       .status = (uint64_t)(uintptr_t)st, .count = 2};
	return vmb_syncobj_query_status(w->c, &a);
}
static int c_syncobj_transfer(struct world *w)
{
	struct vmb_syncobj_transfer a = {.src_handle = w->so[SO_DONE], .dst_handle = w->so[SO_TL], .dst_point = 2};
	return vmb_syncobj_transfer(w->c, &a);
}
static int c_syncobj_wait(struct world *w)
{
	uint32_t h[] = {w->so[SO_DONE], w->so[SO_TL]};
	uint64_t p[] = {0, 1};
	struct vmb_syncobj_wait a = {.handles = (uint64_t)(uintptr_t)h, .points = (uint64_t)(uintptr_t)p, .count = 2,
				     .flags = VMB_SYNCOBJ_WAIT_ALL | VMB_SYNCOBJ_WAIT_RELATIVE, .timeout_ns = 10 * 1000000000ll};
	return vmb_syncobj_wait(w->c, &a);
}
static int c_syncobj_export(struct world *w)
{
	struct vmb_syncobj_fd a = {.handle = w->so[SO_TL], .point = 1};
	int err = vmb_syncobj_export_fd(w->c, &a);
	if (!err) {
		if (w->made_fd >= 0)
			close(w->made_fd);
		w->made_fd = a.fd;
	}
	return err;
}
static int c_syncobj_import(struct world *w)
{
	struct vmb_syncobj_fd a = {.fd = w->so_fd};
	return vmb_syncobj_import_fd(w->c, &a);
}
static int c_ufence_wait(struct world *w)
{
	struct vmb_user_fence_wait a = {.addr = (uint64_t)(uintptr_t)w->uf, .value = 0, .mask = ~0ull,
					.op = VMB_UFENCE_OP_EQ, .timeout = 1000000000ll};
	return vmb_user_fence_wait(w->c, &a);
}
static int c_vm_access(struct world *w)
{
	uint8_t buf[8 * KiB];
	return __gpu_rw(w->c, w->vm, VA_64K + 60 * KiB, buf, sizeof(buf), false);
}
static int c_query_mappings(struct world *w)
{
	struct vmb_mapping_info m[MAXMAP];
	struct vmb_vm_query_mappings q = {.vm_id = w->vm, .num_mappings = MAXMAP, .mappings = (uint64_t)(uintptr_t)m};
	return vmb_vm_query_mappings(w->c, &q);
}
static int c_query_stats(struct world *w)
{
	struct vmb_vm_stats s = {.vm_id = w->vm};
	return vmb_vm_query_stats(w->c, &s);
}
static int c_validate(struct world *w)
{
	struct vmb_client_validate v = {0};
	return vmb_client_validate(w->c, &v);
}
static int c_device_query(struct world *w)
{
	struct vmb_device_query d = {0};
	int err = vmb_device_query(w->c, &d);
	struct vmb_engine e[8];
	struct vmb_engines_query eq = {.num_engines = 8, .engines = (uint64_t)(uintptr_t)e};
	struct vmb_region_query rq = {.region = VMB_REGION_VRAM};
	struct vmb_backend_query bq = {0};
	return err ? err : (err = vmb_engines_query(w->c, &eq)) ? err : (err = vmb_region_query(w->c, &rq)) ? err
											       : vmb_backend_query(&bq);
}
static int c_trace(struct world *w)
{
	struct vmb_trace_start t = {.capacity = 64};
	int err = vmb_trace_start(w->c, &t);
	if (err)
		return err;
	struct vmb_trace_event ev[4];
	struct vmb_trace_read r = {.events = (uint64_t)(uintptr_t)ev, .num_events = 4};
	err = vmb_trace_read(w->c, &r);
	struct vmb_trace_start stop = {0};
	assert_int_equal(vmb_trace_start(w->c, &stop), 0);
	return err;
}
static int p_c2_objects(struct world *w) /* the second client holds a BO, a vm with mappings, a syncobj */
{
	struct vmb_bo_import_fd a = {.fd = w->bo_fd};
	assert_int_equal(vmb_bo_import_fd(w->c2, &a), 0);
	uint32_t vm = vm_new(w->c2, 0);
	struct vmb_bind_op op = op_map(a.handle, 0, 0, 2 * MiB, 0);
	assert_int_equal(__bind_ops(w->c2, vm, &op, 1), 0);
	syncobj_new(w->c2, 0);
	return 0;
}
static int c_client_close(struct world *w) /* closing cannot fail: nothing to inject, or it succeeds anyway */
{
	int err = vmb_client_close(w->c2);
	if (!err)
		w->c2 = NULL;
	return err;
}
static int c_fault_sites(struct world *w)
{
	struct vmb_fault_sites s = {0};
	return vmb_debug_fault_sites(w->c, &s);
}

static const struct scenario scenarios[] = {
	{"vm_bind splits at every page size", c_split, NULL, HOST, -ENOMEM, 0},
	{"vm_bind splits, page-table pages", c_split, NULL, VMB_INJECT_PT_PAGE, -ENOMEM, 0},
	{"vm_bind UNMAP holes in 64K, 2M, 1G leaves", c_unmap_splits, NULL, HOST, -ENOMEM, NEVER_FAILS},
	{"vm_bind UNMAP holes in 64K, 2M, 1G leaves, page-table pages", c_unmap_splits, NULL, VMB_INJECT_PT_PAGE, -ENOMEM, NEVER_FAILS},
	{"vm_bind MAP at every page size", c_map_sizes, NULL, HOST, -ENOMEM, 0},
	{"vm_bind MAP at every page size, page-table pages", c_map_sizes, NULL, VMB_INJECT_PT_PAGE, -ENOMEM, 0},
	{"vm_bind MAP over parts of a 1G leaf", c_map_over, NULL, HOST, -ENOMEM, 0},
	{"vm_bind MAP_USERPTR", c_userptr, NULL, HOST, -ENOMEM, 0},
	{"vm_bind 64 ops", c_many_ops, NULL, HOST, -ENOMEM, MAY_SUCCEED},
	{"vm_bind MAP of a BO new to the vm", c_map_new_bo, p_bo, HOST, -ENOMEM, 0},
	{"vm_bind of 4 ops on a restart-mode vm", c_restart_mode, p_restart_vm, HOST, -ENOMEM, MAY_SUCCEED},
	{"vm_bind UNMAP_ALL", c_unmap_all, NULL, HOST, -ENOMEM, NEVER_FAILS},
	{"vm_bind UNMAP of the whole vm", c_unmap_whole, NULL, HOST, -ENOMEM, NEVER_FAILS},
	{"vm_bind UNMAP of 74 mappings", c_unmap_wide, c_many_ops, HOST, -ENOMEM, NEVER_FAILS},
	{"vm_bind PREFETCH to VRAM", c_prefetch_vram, NULL, HOST, -ENOMEM, 0},
	{"vm_bind PREFETCH to SYSTEM", c_prefetch_sys, NULL, HOST, -ENOMEM, 0},
	{"vm_bind async splits, syncobjs", c_async_syncobj, NULL, HOST, -ENOMEM, MAY_SUCCEED},
	{"vm_bind async splits, page-table pages", c_async_syncobj, NULL, VMB_INJECT_PT_PAGE, -ENOMEM, 0},
	{"vm_bind async on a queue, timeline", c_async_timeline, NULL, HOST, -ENOMEM, MAY_SUCCEED},
	{"vm_bind async, user fence", c_async_ufence, NULL, HOST, -ENOMEM, MAY_SUCCEED},
	{"vm_bind async, BO user fence", c_async_bo_ufence, NULL, HOST, -ENOMEM, MAY_SUCCEED},
	{"vm_bind async PREFETCH", c_async_prefetch, NULL, HOST, -ENOMEM, MAY_SUCCEED},
	{"vm_bind async, 12 syncs", c_async_many_syncs, NULL, HOST, -ENOMEM, MAY_SUCCEED},
	{"vm_bind barrier", c_barrier, NULL, HOST, -ENOMEM, MAY_SUCCEED},
	{"exec", c_exec, NULL, HOST, -ENOMEM, 0},
	{"vm_bind MAP that evicts", c_evict, p_evict, HOST, -ENOMEM, 0},
	{"exec that restores evicted BOs", c_evict_exec, p_evict_exec, HOST, -ENOMEM, 0},
	{"exec waiting on a pending fence", c_exec_pending_in, p_gate_after, HOST, -ENOMEM, 0},
	{"vm_bind async waiting on pending fences", c_async_pending_in, p_gate_after, HOST, -ENOMEM, MAY_SUCCEED},
	{"exec, 12 syncs", c_exec_many_syncs, NULL, HOST, -ENOMEM, 0},
	{"bo_create SYSTEM", c_bo_create_sys, NULL, HOST, -ENOMEM, 0},
	{"bo_create VRAM", c_bo_create_vram, NULL, HOST, -ENOMEM, 0},
	{"bo_destroy of a mapped BO", c_bo_destroy, p_bo_mapped, HOST, -ENOMEM, 0},
	{"bo_mmap", c_bo_mmap, p_bo, HOST, -ENOMEM, 0},
	{"bo_munmap", c_bo_munmap, p_bo_mmap, HOST, -ENOMEM, 0},
	{"bo_export_fd", c_bo_export, NULL, HOST, -ENOMEM, 0},
	{"bo_import_fd", c_bo_import, NULL, HOST, -ENOMEM, 0},
	{"bo_query", c_bo_query, NULL, HOST, -ENOMEM, 0},
	{"vm_create", c_vm_create, NULL, HOST, -ENOMEM, 0},
	{"vm_create, page-table pages", c_vm_create, NULL, VMB_INJECT_PT_PAGE, -ENOMEM, 0},
	{"vm_create LR", c_vm_create_lr, NULL, HOST, -ENOMEM, 0},
	{"vm_destroy", c_vm_destroy, p_vm, HOST, -ENOMEM, 0},
	{"bind_queue_create", c_queue_create, NULL, HOST, -ENOMEM, 0},
	{"bind_queue_destroy", c_queue_destroy, NULL, HOST, -ENOMEM, 0},
	{"exec_queue_create", c_exec_queue_create, NULL, HOST, -ENOMEM, 0},
	{"exec_queue_create, threads", c_exec_queue_create, NULL, VMB_INJECT_THREAD, -EAGAIN, 0},
	{"exec_queue_destroy", c_exec_queue_destroy, NULL, HOST, -ENOMEM, 0},
	{"exec_queue_query", c_exec_queue_query, NULL, HOST, -ENOMEM, 0},
	{"syncobj_create", c_syncobj_create, NULL, HOST, -ENOMEM, 0},
	{"syncobj_destroy", c_syncobj_destroy, p_syncobj, HOST, -ENOMEM, 0},
	{"syncobj_signal", c_syncobj_signal, NULL, HOST, -ENOMEM, 0},
	{"syncobj_reset", c_syncobj_reset, NULL, HOST, -ENOMEM, 0},
	{"syncobj_timeline_signal", c_syncobj_timeline_signal, NULL, HOST, -ENOMEM, 0},
	{"syncobj_query", c_syncobj_query, NULL, HOST, -ENOMEM, 0},
	{"syncobj_query_status", c_syncobj_query_status, NULL, HOST, -ENOMEM, 0},
	{"syncobj_transfer", c_syncobj_transfer, NULL, HOST, -ENOMEM, 0},
	{"syncobj_wait", c_syncobj_wait, NULL, HOST, -ENOMEM, 0},
	{"syncobj_export_fd", c_syncobj_export, NULL, HOST, -ENOMEM, 0},
	{"syncobj_import_fd", c_syncobj_import, NULL, HOST, -ENOMEM, 0},
	{"syncobj_import_fd of a pending eventfd", c_syncobj_import_pending, p_eventfd, HOST, -ENOMEM, 0},
	{"syncobj_import_fd of a pending eventfd, threads", c_syncobj_import_pending, p_eventfd, VMB_INJECT_THREAD, -EAGAIN, 0},
	{"syncobj_export_fd of a pending fence", c_syncobj_export_pending, p_gate, HOST, -ENOMEM, 0},
	{"syncobj_export_fd of pending timeline points", c_syncobj_export_timeline, p_gate_timeline, HOST, -ENOMEM, 0},
	{"user_fence_wait", c_ufence_wait, NULL, HOST, -ENOMEM, 0},
	{"vm_access", c_vm_access, NULL, HOST, -ENOMEM, 0},
	{"vm_query_mappings", c_query_mappings, NULL, HOST, -ENOMEM, 0},
	{"vm_query_stats", c_query_stats, NULL, HOST, -ENOMEM, 0},
	{"client_validate", c_validate, NULL, HOST, -ENOMEM, 0},
	{"device, engines, region, backend queries", c_device_query, NULL, HOST, -ENOMEM, 0},
	{"trace_start, trace_read", c_trace, NULL, HOST, -ENOMEM, 0},
	{"client_close of a client with objects", c_client_close, p_c2_objects, HOST, -ENOMEM, MAY_SUCCEED},
	{"debug_fault_sites", c_fault_sites, NULL, HOST, -ENOMEM, 0},
};

static uint64_t now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

/* The sites' hit counts now (process-wide). */
#define MAXSITES 256
static uint32_t sites_read(struct vmb_client *c, struct vmb_fault_site *out)
{
	struct vmb_fault_sites q = {.num_sites = MAXSITES, .sites = (uint64_t)(uintptr_t)out};
	assert_int_equal(vmb_debug_fault_sites(c, &q), 0);
	assert_true(q.num_sites <= MAXSITES);
	return q.num_sites;
}
/* Which scenarios' calls reached which site (VMB_FAULT_TABLE=1 prints it for docs/RELIABILITY.md). */
static const struct scenario *site_reached_by[MAXSITES][8];
static const struct scenario sc_open = {.name = "client_open (a new instance)"};
static const struct scenario sc_export = {.name = "bo_export_fd (the process's first)"};

static void note_reached(const struct scenario *s, const struct vmb_fault_site *a, const struct vmb_fault_site *b,
			 uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		if (a[i].hits == b[i].hits)
			continue;
		for (int k = 0; k < 8; k++)
			if (!site_reached_by[i][k] || site_reached_by[i][k] == s) {
				site_reached_by[i][k] = s;
				break;
			}
	}
}

static void walk(const struct scenario *s)
{
	static struct vmb_fault_site sa[MAXSITES], sb[MAXSITES];
	/* the worlds after a call that succeeded, compared at the end with the one without injection */
	static struct snap before, now, done[64];
	static char done_what[64][200];
	unsigned ndone = 0;
	uint64_t cache_max[2] = {0, 0};
	uint64_t t0 = now_ns();
	unsigned long n, injected_total = 0, fell_back = 0;
	for (n = 1;; n++) {
		struct world w;
		world_open(&w);
		if (s->prep)
			s->prep(&w);
		snapshot(&w, &before);
		gate_start(&w);
		uint32_t nsites = sites_read(w.c, sa);
		arm(w.c, s->classes, n, VMB_INJECT_ONCE);
		int err = s->call(&w);
		uint64_t injected = disarm(w.c, s->classes);
		gate_release(&w);
		if (!injected) {
			assert_int_equal(err, 0);
			note_reached(s, sa, sb, sites_read(w.c, sb) == nsites ? nsites : 0);
			snapshot(&w, &now);
			world_close(&w);
			break;
		}
		injected_total++;
		char what[200];
		snprintf(what, sizeof(what), "%s, hit %lu failing", s->name, n);
		if (s->flags & NEVER_FAILS && err)
			fail_msg("%s: %d (%s), want 0: an unbind never fails for lack of memory", what, err,
				 strerror(-err));
		if (err == 0) {
			if (!(s->flags & (MAY_SUCCEED | NEVER_FAILS)))
				fail_msg("%s: succeeded", what);
			fell_back++;
			assert_true(ndone < 64);
			snapshot(&w, &done[ndone]);
			strcpy(done_what[ndone++], what);
		} else {
			if (err != s->err)
				fail_msg("%s: %d (%s), want %d", what, err, strerror(-err), s->err);
			snapshot(&w, &now);
			snap_equal_but(what, &before, &now, true);
			for (int v = 0; v < 2; v++)
				cache_max[v] = now.vm[v].stats.va_bytes > cache_max[v] ? now.vm[v].stats.va_bytes : cache_max[v];
			/* the next call succeeds, and leaves what a call without injection leaves */
			if ((err = s->call(&w)) != 0)
				fail_msg("%s: the call after it gave %d", what, err);
			assert_true(ndone < 64);
			snapshot(&w, &done[ndone]);
			strcat(what, ", then the call again");
			strcpy(done_what[ndone++], what);
		}
		world_close(&w);
		assert_true(n < 2000);
	}
	/* every page-table scenario's call but an unbind's (its splits take the reserve) takes pages
	 * from the device's pool: a walk that failed none did not reach the site (as when prepare's
	 * batched takes skipped the check, 9e3606d until session 14) */
	if (s->classes == VMB_INJECT_PT_PAGE && !(s->flags & NEVER_FAILS) && injected_total == 0)
		fail_msg("%s: no page-table page was failed: the site is not reached", s->name);
	/* now: the world after the call without injection */
	for (unsigned i = 0; i < ndone; i++)
		snap_equal(done_what[i], &now, &done[i]);
	for (int v = 0; v < 2; v++)
		if (cache_max[v] > now.vm[v].stats.va_bytes)
			fail_msg("%s: a failure left vm %d's VA cache at %llu bytes, above the %llu a success needs", s->name, v,
				 (unsigned long long)cache_max[v], (unsigned long long)now.vm[v].stats.va_bytes);
	print_message("%-48s %3lu hits of %s failed (%lu calls succeeded all the same), each handled (%.1f s)\n",
		      s->name, injected_total,
		      s->classes == HOST ? "host allocations" : s->classes == VMB_INJECT_PT_PAGE ? "page-table pages"
											  : "thread starts",
		      fell_back, (double)(now_ns() - t0) / 1e9);
}

static void test_every_entry_point(void **state)
{
	for (size_t i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++)
		walk(&scenarios[i]);
}

/* vmb_client_open making an instance: host memory, regions, and the scheduler's and engines'
 * threads. A fresh instance name each time: an open that fails leaves none. */
static void open_walk(uint32_t classes, int want)
{
	static struct vmb_fault_site sa[MAXSITES], sb[MAXSITES];
	unsigned long n;
	for (n = 1;; n++) {
		struct vmb_client *c = NULL, *probe;
		assert_int_equal(vmb_client_open("soft:9", NULL, &probe), 0); /* a client to arm with */
		uint32_t ns = sites_read(probe, sa);
		arm(probe, classes, n, VMB_INJECT_ONCE);
		int err = vmb_client_open("soft:7", &world_opts, &c);
		uint64_t injected = disarm(probe, classes);
		if (!injected) {
			assert_int_equal(err, 0);
			note_reached(&sc_open, sa, sb, sites_read(probe, sb) == ns ? ns : 0);
			assert_int_equal(vmb_client_close(probe), 0);
			assert_int_equal(vmb_client_close(c), 0);
			break;
		}
		assert_int_equal(vmb_client_close(probe), 0);
		if (err != want)
			fail_msg("client_open, hit %lu failing: %d, want %d", n, err, want);
		assert_null(c);
		/* the next open succeeds */
		assert_int_equal(vmb_client_open("soft:7", &world_opts, &c), 0);
		validate_client(c);
		assert_int_equal(vmb_client_close(c), 0);
	}
	print_message("%-48s %3lu hits failed, each handled\n", "client_open", n - 1);
}

static void test_client_open(void **state)
{
	open_walk(HOST, -ENOMEM);
	open_walk(VMB_INJECT_THREAD, -EAGAIN);
}

/* A device commit that fails (COMMIT, process-wide): a synchronous bind returns the armed errno
 * and bans the vm; an asynchronous one returns 0 and its out-fence signals the error. Checked in
 * depth by tests/vm/fail.c; here for the public arming and the site. */
static void test_commit(void **state)
{
	struct world w;
	world_open(&w);
	arm(w.c, VMB_INJECT_COMMIT, 1, VMB_INJECT_ONCE);
	struct vmb_bind_op op = op_map(w.bo[BO_4K], 0, VA_FREE, 4 * KiB, 0);
	assert_int_equal(bind_n(&w, w.vm2, 0, &op, 1, NULL, 0, false), -EIO);
	assert_int_equal(disarm(w.c, VMB_INJECT_COMMIT), 1);
	assert_int_equal(bind_n(&w, w.vm2, 0, &op, 1, NULL, 0, false), -EIO); /* banned */
	/* persistent: every commit from the 2nd on fails */
	arm(w.c, VMB_INJECT_COMMIT, 2, VMB_INJECT_PERSISTENT);
	struct vmb_bind_op ops[] = {op_map(w.bo[BO_4K], 0, VA_FREE, 4 * KiB, 0), op_map(w.bo[BO_4K], 0, VA_FREE + MiB, 4 * KiB, 0),
				    op_map(w.bo[BO_4K], 0, VA_FREE + 2 * MiB, 4 * KiB, 0)};
	assert_int_equal(bind_n(&w, w.vm, 0, ops, 3, NULL, 0, false), -EIO); /* the 2nd op's commit */
	assert_int_equal(disarm(w.c, VMB_INJECT_COMMIT), 1);
	world_close(&w);
}

/* Persistent host failure from the first hit: every call that allocates fails, and keeps
 * failing, with nothing changed; after disarming, it succeeds. */
static void test_persistent(void **state)
{
	static struct snap before, now;
	struct world w;
	world_open(&w);
	snapshot(&w, &before);
	arm(w.c, HOST, 1, VMB_INJECT_PERSISTENT);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(c_map_sizes(&w), -ENOMEM);
		assert_int_equal(c_bo_create_sys(&w), -ENOMEM);
		assert_int_equal(c_syncobj_create(&w), -ENOMEM);
	}
	assert_true(disarm(w.c, HOST) >= 9);
	snapshot(&w, &now);
	snap_equal("persistent", &before, &now);
	assert_int_equal(c_map_sizes(&w), 0);
	world_close(&w);
}

/* The BO export watcher is the process's, started by its first export: this runs first. */
static void test_export_thread(void **state)
{
	struct vmb_client *c = open_soft_at("soft:8", 0, 0);
	uint32_t bo = bo_new(c, 64 * KiB, VMB_PLACE_SYSTEM);
	struct vmb_bo_export_fd a = {.handle = bo};
	static struct vmb_fault_site sa[MAXSITES], sb[MAXSITES];
	uint32_t ns = sites_read(c, sa);
	arm(c, VMB_INJECT_THREAD, 1, VMB_INJECT_ONCE);
	assert_int_equal(vmb_bo_export_fd(c, &a), -EAGAIN);
	note_reached(&sc_export, sa, sb, sites_read(c, sb) == ns ? ns : 0);
	assert_int_equal(disarm(c, VMB_INJECT_THREAD), 1);
	validate_client(c);
	assert_int_equal(vmb_bo_export_fd(c, &a), 0); /* the next one succeeds */
	close(a.fd);
	assert_int_equal(vmb_client_close(c), 0);
}

/* Strict validation of the arming and of the site query. */
static void test_validation(void **state)
{
	struct vmb_client *c = open_soft(0, 0);
	struct vmb_fault_inject ok = {.classes = HOST, .nth = 5, .flags = VMB_INJECT_ONCE};
	struct vmb_fault_inject bad[] = {
		{.classes = 0, .nth = 1, .flags = VMB_INJECT_ONCE},
		{.classes = 1u << 5, .nth = 1, .flags = VMB_INJECT_ONCE},
		{.classes = VMB_INJECT_HOST_ALLOC | VMB_INJECT_THREAD, .nth = 1, .flags = VMB_INJECT_ONCE},
		{.classes = HOST, .nth = 1, .flags = 0},
		{.classes = HOST, .nth = 1, .flags = VMB_INJECT_ONCE | VMB_INJECT_PERSISTENT},
		{.classes = HOST, .nth = 1, .flags = 1u << 2},
		{.classes = HOST, .nth = 0, .flags = VMB_INJECT_ONCE},
		{.classes = HOST, .nth = 1, .flags = VMB_INJECT_ONCE, .scope = VMB_INJECT_SCOPE_PROCESS},
		{.classes = HOST, .nth = 1, .flags = VMB_INJECT_ONCE, .error = -EIO},
		{.classes = HOST, .nth = 1, .flags = VMB_INJECT_ONCE, .reserved = {1}},
		{.classes = HOST, .nth = 1, .flags = VMB_INJECT_ONCE, .reserved = {0, 1}},
		{.classes = VMB_INJECT_COMMIT, .nth = 1, .flags = VMB_INJECT_ONCE, .error = -EIO},
		{.classes = VMB_INJECT_COMMIT, .nth = 1, .flags = VMB_INJECT_ONCE, .scope = VMB_INJECT_SCOPE_PROCESS},
		{.classes = VMB_INJECT_COMMIT, .nth = 1, .flags = VMB_INJECT_ONCE, .scope = VMB_INJECT_SCOPE_PROCESS,
		 .error = -EINVAL},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (vmb_debug_fault_inject(c, &bad[i]) != -EINVAL)
			fail_msg("arming %zu accepted", i);
	assert_int_equal(vmb_debug_fault_inject(c, NULL), -EINVAL);
	assert_int_equal(vmb_debug_fault_inject(c, &ok), 0);
	assert_int_equal(ok.left, 0);
	struct vmb_fault_inject off = {.classes = HOST};
	assert_int_equal(vmb_debug_fault_inject(c, &off), 0);
	assert_int_equal(off.left, 5); /* nothing allocated in between: untouched */
	assert_int_equal(off.injected, 0);

	struct vmb_fault_sites s = {.flags = 1u << 1};
	assert_int_equal(vmb_debug_fault_sites(c, &s), -EINVAL);
	s = (struct vmb_fault_sites){.reserved = {1}};
	assert_int_equal(vmb_debug_fault_sites(c, &s), -EINVAL);
	s = (struct vmb_fault_sites){.num_sites = 1};
	assert_int_equal(vmb_debug_fault_sites(c, &s), -EFAULT);
	assert_int_equal(vmb_debug_fault_sites(c, NULL), -EINVAL);
	assert_int_equal(vmb_client_close(c), 0);
}

/* Another thread's arming never fails this thread's calls. */
static void *arm_other(void *arg)
{
	arm(arg, HOST, 1, VMB_INJECT_PERSISTENT);
	return NULL;
}
static void test_thread_scope(void **state)
{
	struct vmb_client *c = open_soft(0, 0);
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, arm_other, c), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
	struct vmb_syncobj_create a = {0};
	assert_int_equal(vmb_syncobj_create(c, &a), 0);
	assert_int_equal(vmb_client_close(c), 0);
}

/*
 * Sites no scenario reaches, by design, each with why. A site is named by its file and function.
 */
static const struct {
	const char *file, *func, *why;
} unreachable[] = {
	/* the CUDA device's commit (its cuMemMap failure hook): only with a GPU (tests/cuda/gpu.c,
	 * test_array_all_or_nothing, reaches it there) */
	{"src/dev/cuda/cuda.c", "cu_map_commit", "CUDA device: needs a GPU"},
	{NULL, NULL, NULL},
};

/* @path names @file: the same, or ending in "/" @file (a tree built from a copy of its own, as
 * `make mutate` builds build-mutate/src, names its files src/src/...) */
static bool names_file(const char *path, const char *file)
{
	size_t lp = strlen(path), lf = strlen(file);
	return lp >= lf && !strcmp(path + lp - lf, file) && (lp == lf || path[lp - lf - 1] == '/');
}

static bool allowed(const struct vmb_fault_site *s)
{
	for (size_t i = 0; unreachable[i].file; i++)
		if (names_file(s->file, unreachable[i].file) && !strcmp(s->func, unreachable[i].func))
			return true;
	return false;
}

/* Runs last: every site the library has was reached by the tests above (or is allowed not to be). */
static void test_every_site_reached(void **state)
{
	struct vmb_client *c = open_soft(0, 0);
	struct vmb_fault_sites q = {0};
	assert_int_equal(vmb_debug_fault_sites(c, &q), 0);
	assert_true(q.num_sites > 0);
	struct vmb_fault_site *s = calloc(q.num_sites, sizeof(*s));
	q.sites = (uint64_t)(uintptr_t)s;
	uint32_t n = q.num_sites;
	assert_int_equal(vmb_debug_fault_sites(c, &q), 0);
	assert_int_equal(q.num_sites, n);
	unsigned missed = 0;
	for (uint32_t i = 0; i < n; i++) {
		assert_int_equal(s[i].id, i);
		print_message("site %2u %-24s %-28s:%-4u class %#x hits %llu%s\n", i, s[i].func, s[i].file, s[i].line,
			      s[i].site_class, (unsigned long long)s[i].hits,
			      s[i].hits ? "" : allowed(&s[i]) ? " (unreachable by design)" : " NEVER REACHED");
		if (!s[i].hits && !allowed(&s[i]))
			missed++;
	}
	if (getenv("VMB_FAULT_TABLE")) {
		for (uint32_t i = 0; i < n; i++) {
			printf("| `%s:%u` | `%s` | %#x |", s[i].file, s[i].line, s[i].func, s[i].site_class);
			for (int k = 0; k < 8 && site_reached_by[i][k]; k++)
				printf("%s %s", k ? ";" : "", site_reached_by[i][k]->name);
			printf(" |\n");
		}
	}
	free(s);
	assert_int_equal(vmb_client_close(c), 0);
	if (missed)
		fail_msg("%u allocation sites never reached", missed);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_export_thread),
		cmocka_unit_test(test_validation),
		cmocka_unit_test(test_thread_scope),
		cmocka_unit_test(test_client_open),
		cmocka_unit_test(test_every_entry_point),
		cmocka_unit_test(test_persistent),
		cmocka_unit_test(test_commit),
		cmocka_unit_test(test_every_site_reached),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
