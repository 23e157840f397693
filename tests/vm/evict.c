/* SPDX-License-Identifier: MIT */
/*
 * Description: residency (mem/bo.h, docs/UAPI.md "Residency"). A BO that may live in VRAM is
 * created past the room its regions have now (not past their capacity: -ENOSPC still) without a
 * backing, and gets one when first needed: the first bind that maps it (in its prepare, so a
 * bind that finds no room fails with -ENOSPC and changes nothing: no mapping, no page-table
 * bytes, the same call restarted once room was made succeeds), or its first CPU map. It is
 * placed then in its preferred allowed region with room (VRAM, else SYSTEM where allowed), its
 * contents zero, and its data written through the GPU view reads back intact through the CPU
 * pointer. Eviction (vm/migrate.c): BOs nothing uses moved to SYSTEM to make room, as device work
 * ordered after nothing (a call needing room never waits behind a gated bind); BOs bound in
 * non-LR vms evicted while no job of theirs is pending or running, restored before the next exec
 * (every byte checked after execs over 2x VRAM: several vms, explicit bind queues, 8 threads);
 * busy and LR BOs never evicted: -ENOSPC, unbind (or let the work end) and restart. make test runs
 * it on both soft shapes (vm-evict, vm-evict-discrete).
 */
#include "lib/harness.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <vmbind/cmd.h>

#define VA (64 * MiB)

static uint64_t region_free(struct vmb_client *c, uint32_t region)
{
	struct vmb_region_query q = {.region = region};
	assert_int_equal(vmb_region_query(c, &q), 0);
	return q.free;
}

static uint32_t bo_region(struct vmb_client *c, uint32_t bo)
{
	struct vmb_bo_query q = {.handle = bo};
	assert_int_equal(vmb_bo_query(c, &q), 0);
	return q.region;
}

static void bo_destroy(struct vmb_client *c, uint32_t bo)
{
	struct vmb_bo_destroy d = {.handle = bo};
	assert_int_equal(vmb_bo_destroy(c, &d), 0);
}

/* A VRAM BO past VRAM's room gets its backing at its first bind, in VRAM once VRAM has room. */
static void test_backing_at_first_bind(void **state)
{
	(void)state;
	struct vmb_client *c = open_soft(8 * MiB, 8 * MiB);
	uint32_t vm = vm_new(c, 0);
	uint32_t full = bo_new(c, 8 * MiB, VMB_PLACE_VRAM);
	assert_int_equal(region_free(c, VMB_REGION_VRAM), 0);
	uint32_t late = bo_new(c, 4 * MiB, VMB_PLACE_VRAM);        /* no room: no backing yet */
	uint32_t both = bo_new(c, 4 * MiB, VMB_PLACE_VRAM | VMB_PLACE_SYSTEM); /* SYSTEM has room */
	assert_int_equal(bo_region(c, both), VMB_REGION_SYSTEM);
	assert_int_equal(region_free(c, VMB_REGION_VRAM), 0);
	assert_int_equal(region_free(c, VMB_REGION_SYSTEM), 4 * MiB);
	assert_int_equal(bo_region(c, late), VMB_REGION_VRAM); /* where it is to go */

	/* no room at the bind: -ENOSPC, nothing changed */
	struct vmb_bind_op ops[2] = {op_map(both, 0, VA + 8 * MiB, 4 * MiB, 0), op_map(late, 0, VA, 4 * MiB, 0)};
	struct vmb_vm_stats st0 = vm_stats(c, vm);
	assert_int_equal(__bind_ops(c, vm, ops, 2), -ENOSPC);
	struct vmb_vm_stats st = vm_stats(c, vm);
	assert_int_equal(st.num_mappings, 0);
	assert_int_equal(st.bytes_mapped, 0);
	assert_int_equal(st.pt_bytes, st0.pt_bytes);
	assert_int_equal(st.pt_reserve_bytes, st0.pt_reserve_bytes);
	assert_int_equal(region_free(c, VMB_REGION_VRAM), 0);
	validate_client(c);

	/* room made (the full BO freed): the same call restarted succeeds, the BO in VRAM */
	bo_destroy(c, full);
	assert_int_equal(__bind_ops(c, vm, ops, 2), 0);
	assert_int_equal(bo_region(c, late), VMB_REGION_VRAM);
	assert_int_equal(region_free(c, VMB_REGION_VRAM), 4 * MiB);
	for (uint64_t off = 0; off < 4 * MiB; off += 256 * KiB)
		assert_int_equal(gpu_read64(c, vm, VA + off), 0); /* contents zero */
	gpu_write64(c, vm, VA + 4096, 0x1234);
	gpu_write64(c, vm, VA + 4 * MiB - 8, 0x5678);
	assert_int_equal(bo_read64(c, late, 4096), 0x1234);
	assert_int_equal(bo_read64(c, late, 4 * MiB - 8), 0x5678);
	validate_client(c);
	assert_int_equal(vmb_client_close(c), 0);
}

/* A VRAM|SYSTEM BO past the room of both gets its backing in VRAM when VRAM has room at its first
 * bind, in SYSTEM when only SYSTEM has. */
static void test_backing_preferred_region(void **state)
{
	(void)state;
	struct vmb_client *c = open_soft(8 * MiB, 8 * MiB);
	uint32_t vm = vm_new(c, 0);
	uint32_t v = bo_new(c, 8 * MiB, VMB_PLACE_VRAM), s = bo_new(c, 8 * MiB, VMB_PLACE_SYSTEM);
	uint32_t a = bo_new(c, 4 * MiB, VMB_PLACE_VRAM | VMB_PLACE_SYSTEM);
	uint32_t b = bo_new(c, 4 * MiB, VMB_PLACE_VRAM | VMB_PLACE_SYSTEM);
	bo_destroy(c, s); /* SYSTEM has room, VRAM none */
	bind1(c, vm, op_map(a, 0, VA, 4 * MiB, 0));
	assert_int_equal(bo_region(c, a), VMB_REGION_SYSTEM);
	bo_destroy(c, v); /* VRAM has room: the preferred region */
	bind1(c, vm, op_map(b, 0, VA + 4 * MiB, 4 * MiB, 0));
	assert_int_equal(bo_region(c, b), VMB_REGION_VRAM);
	gpu_write64(c, vm, VA + 8, 1);
	gpu_write64(c, vm, VA + 4 * MiB + 8, 2);
	assert_int_equal(gpu_read64(c, vm, VA + 8), 1);
	assert_int_equal(gpu_read64(c, vm, VA + 4 * MiB + 8), 2);
	validate_client(c);
	assert_int_equal(vmb_client_close(c), 0);
}

/* The first CPU map of a BO without backing gives it one where a region has room; without room
 * the map still works (the BO's own pages) and the first bind backs it. */
static void test_backing_at_cpu_map(void **state)
{
	(void)state;
	struct vmb_client *c = open_soft(8 * MiB, 8 * MiB);
	uint32_t full = bo_new(c, 8 * MiB, VMB_PLACE_VRAM);
	uint32_t s = bo_new(c, 8 * MiB, VMB_PLACE_SYSTEM);
	uint32_t late = bo_new(c, 4 * MiB, VMB_PLACE_VRAM | VMB_PLACE_SYSTEM); /* no room anywhere */
	uint32_t vlate = bo_new(c, 4 * MiB, VMB_PLACE_VRAM);
	/* no room still: the map works, the BO stays without backing */
	if (vram_cpu_mappable(c)) {
		uint64_t *p = bo_cpu(c, vlate);
		p[2] = 99;
		assert_int_equal(region_free(c, VMB_REGION_VRAM), 0);
	}
	bo_destroy(c, s);
	struct vmb_bo_mmap m = {.handle = late};
	assert_int_equal(vmb_bo_mmap(c, &m), 0); /* SYSTEM: the CPU reaches it on either shape */
	assert_int_equal(bo_region(c, late), VMB_REGION_SYSTEM);
	assert_int_equal(region_free(c, VMB_REGION_SYSTEM), 4 * MiB);
	((uint64_t *)(uintptr_t)m.ptr)[1] = 77;
	uint32_t vm = vm_new(c, 0);
	bind1(c, vm, op_map(late, 0, VA, 4 * MiB, 0));
	assert_int_equal(gpu_read64(c, vm, VA + 8), 77);
	bo_destroy(c, full);
	bind1(c, vm, op_map(vlate, 0, VA + 4 * MiB, 4 * MiB, 0));
	assert_int_equal(region_free(c, VMB_REGION_VRAM), 4 * MiB);
	if (vram_cpu_mappable(c))
		assert_int_equal(gpu_read64(c, vm, VA + 4 * MiB + 16), 99);
	validate_client(c);
	assert_int_equal(vmb_client_close(c), 0);
}

static uint64_t fill(uint32_t bo, uint64_t i) { return ((uint64_t)bo << 40) | i; }

/* Writes a value in every 4 KiB page of @bo (mapped at @va in @vm) through the GPU view. */
static void write_bo(struct vmb_client *c, uint32_t vm, uint64_t va, uint32_t bo, uint64_t size)
{
	for (uint64_t off = 0; off < size; off += 4096)
		gpu_write64(c, vm, va + off + 8 * ((off >> 12) & 7), fill(bo, off));
}

static void check_bo(struct vmb_client *c, uint32_t vm, uint64_t va, uint32_t bo, uint64_t size)
{
	for (uint64_t off = 0; off < size; off += 4096)
		assert_int_equal(gpu_read64(c, vm, va + off + 8 * ((off >> 12) & 7)), fill(bo, off));
}

static uint64_t evicted_bytes(struct vmb_client *c)
{
	struct vmb_region_query q = {.region = VMB_REGION_VRAM};
	assert_int_equal(vmb_region_query(c, &q), 0);
	return q.evicted_bytes;
}

/*
 * Issue 13 item 2: an LR vm bound up to VRAM's room; the next bind of a VRAM BO finds nothing to
 * evict (every BO in VRAM is bound in the LR vm): -ENOSPC, nothing changed. The application
 * unbinds one BO; the same call restarted succeeds (the unbound BO evicted to SYSTEM, its data
 * kept), and binding the evicted BO again (another one unbound first) brings it back to VRAM
 * with its data.
 */
static void test_lr_enospc_unbind_restart(void **state)
{
	(void)state;
	struct vmb_client *c = open_soft(8 * MiB, 64 * MiB);
	uint32_t vm = vm_new(c, VMB_VM_CREATE_LR_MODE);
	uint32_t bo[3];
	for (int i = 0; i < 3; i++)
		bo[i] = bo_new(c, 4 * MiB, VMB_PLACE_VRAM);
	for (int i = 0; i < 2; i++) {
		bind1(c, vm, op_map(bo[i], 0, VA + i * 4 * MiB, 4 * MiB, 0));
		write_bo(c, vm, VA + i * 4 * MiB, bo[i], 4 * MiB);
	}
	struct vmb_bind_op op = op_map(bo[2], 0, VA + 8 * MiB, 4 * MiB, 0);
	struct vmb_vm_stats st0 = vm_stats(c, vm);
	assert_int_equal(__bind_ops(c, vm, &op, 1), -ENOSPC);
	struct vmb_vm_stats st = vm_stats(c, vm);
	assert_int_equal(st.num_mappings, st0.num_mappings);
	assert_int_equal(st.bytes_mapped, st0.bytes_mapped);
	assert_int_equal(st.pt_bytes, st0.pt_bytes);
	assert_int_equal(evicted_bytes(c), 0);
	validate_client(c);

	bind1(c, vm, op_unmap(VA, 4 * MiB)); /* what it does not need now */
	assert_int_equal(__bind_ops(c, vm, &op, 1), 0);
	assert_int_equal(bo_region(c, bo[0]), VMB_REGION_SYSTEM); /* evicted */
	assert_int_equal(bo_region(c, bo[2]), VMB_REGION_VRAM);
	assert_int_equal(evicted_bytes(c), 4 * MiB);
	write_bo(c, vm, VA + 8 * MiB, bo[2], 4 * MiB);
	check_bo(c, vm, VA + 4 * MiB, bo[1], 4 * MiB);

	/* bo[0] back: VRAM is full of bound BOs, -ENOSPC; bo[1] unbound, then it fits */
	op = op_map(bo[0], 0, VA, 4 * MiB, 0);
	assert_int_equal(__bind_ops(c, vm, &op, 1), -ENOSPC);
	assert_int_equal(bo_region(c, bo[0]), VMB_REGION_SYSTEM);
	bind1(c, vm, op_unmap(VA + 4 * MiB, 4 * MiB));
	assert_int_equal(__bind_ops(c, vm, &op, 1), 0);
	assert_int_equal(bo_region(c, bo[0]), VMB_REGION_VRAM);   /* restored */
	assert_int_equal(bo_region(c, bo[1]), VMB_REGION_SYSTEM); /* evicted */
	check_bo(c, vm, VA, bo[0], 4 * MiB);
	check_bo(c, vm, VA + 8 * MiB, bo[2], 4 * MiB);
	bind1(c, vm, op_unmap(VA + 8 * MiB, 4 * MiB));
	bind1(c, vm, op_map(bo[1], 0, VA + 4 * MiB, 4 * MiB, 0));
	check_bo(c, vm, VA + 4 * MiB, bo[1], 4 * MiB);
	assert_int_equal(evicted_bytes(c), 12 * MiB);
	validate_client(c);
	assert_int_equal(vmb_client_close(c), 0);
}

/*
 * Binds over 2x VRAM in a non-LR vm, a window of two BOs bound at a time (half of VRAM; the rest unbound:
 * evictable), synchronous and asynchronous (explicit bind queue), every BO written when bound;
 * then every byte checked, each BO bound again (restored from SYSTEM where evicted).
 */
static void run_window(bool async)
{
	enum { NBO = 8 };
	struct vmb_client *c = open_soft(8 * MiB, 64 * MiB);
	uint32_t vm = vm_new(c, 0), q = async ? queue_new(c, vm) : 0;
	uint32_t so = async ? syncobj_new(c, 0) : 0;
	uint32_t bo[NBO];
	for (int i = 0; i < NBO; i++)
		bo[i] = bo_new(c, 2 * MiB, VMB_PLACE_VRAM); /* 16 MiB: 2x VRAM */
	for (int round = 0; round < 2; round++) {
		for (int i = 0; i < NBO; i++) {
			uint64_t va = VA + (uint64_t)(i % 2) * 2 * MiB;
			struct vmb_bind_op ops[2] = {op_unmap(va, 2 * MiB), op_map(bo[i], 0, va, 2 * MiB, 0)};
			if (async) {
				struct vmb_sync out = sync_out(so);
				bind_async(c, vm, q, ops, 2, &out, 1);
				syncobj_wait1(c, so);
			} else {
				assert_int_equal(__bind_ops(c, vm, ops, 2), 0);
			}
			if (round == 0)
				write_bo(c, vm, va, bo[i], 2 * MiB);
			else
				check_bo(c, vm, va, bo[i], 2 * MiB);
		}
	}
	assert_true(evicted_bytes(c) > 0);
	validate_client(c);
	assert_int_equal(vmb_client_close(c), 0);
}

static void test_window_sync(void **state)
{
	(void)state;
	run_window(false);
}

static void test_window_async(void **state)
{
	(void)state;
	run_window(true);
}

/*
 * 8 threads, each with its own vm (every other one binding through an explicit bind queue,
 * asynchronously) and 4 BOs of its own: 64 MiB of BOs over 24 MiB of VRAM, one BO of each thread
 * bound at a time; each BO written when first bound and checked, page by page, every later time.
 * Evictions race with the other threads' first backings and restores.
 */
#define NTHREADS 8
#define TBOS 4

struct worker {
	struct vmb_client *c;
	int idx;
	uint32_t vm, q, so, bo[TBOS];
	int err;
};

static void *worker_run(void *arg)
{
	struct worker *w = arg;
	for (int round = 0; round < 3 && !w->err; round++) {
		for (int i = 0; i < TBOS && !w->err; i++) {
			struct vmb_bind_op ops[1] = {op_map(w->bo[i], 0, VA, 2 * MiB, 0)};
			if (w->q) {
				struct vmb_sync out = sync_out(w->so);
				if ((w->err = __bind_async(w->c, w->vm, w->q, ops, 1, &out, 1)) ||
				    (w->err = __syncobj_wait1(w->c, w->so, 0, 60ll * 1000000000, 0)))
					break;
			} else if ((w->err = __bind_ops(w->c, w->vm, ops, 1))) {
				break;
			}
			for (uint64_t off = 0; off < 2 * MiB && !w->err; off += 4096) {
				uint64_t v = ((uint64_t)w->idx << 48) | ((uint64_t)i << 32) | off, got = 0;
				if (round == 0)
					w->err = __gpu_rw(w->c, w->vm, VA + off, &v, 8, true);
				else if (!(w->err = __gpu_rw(w->c, w->vm, VA + off, &got, 8, false)) && got != v)
					w->err = -EUCLEAN;
			}
			struct vmb_bind_op un = op_unmap(VA, 2 * MiB);
			if (!w->err)
				w->err = __bind_ops(w->c, w->vm, &un, 1);
		}
	}
	return NULL;
}

static void test_threads(void **state)
{
	(void)state;
	struct vmb_client *c = open_soft(24 * MiB, 128 * MiB);
	struct worker w[NTHREADS];
	pthread_t t[NTHREADS];
	for (int k = 0; k < NTHREADS; k++) {
		w[k] = (struct worker){.c = c, .idx = k, .vm = vm_new(c, 0)};
		if (k & 1) {
			w[k].q = queue_new(c, w[k].vm);
			w[k].so = syncobj_new(c, 0);
		}
		for (int i = 0; i < TBOS; i++)
			w[k].bo[i] = bo_new(c, 2 * MiB, VMB_PLACE_VRAM);
	}
	for (int k = 0; k < NTHREADS; k++)
		assert_int_equal(pthread_create(&t[k], NULL, worker_run, &w[k]), 0);
	for (int k = 0; k < NTHREADS; k++)
		pthread_join(t[k], NULL);
	for (int k = 0; k < NTHREADS; k++)
		assert_int_equal(w[k].err, 0);
	assert_true(evicted_bytes(c) > 0);
	validate_client(c);
	assert_int_equal(vmb_client_close(c), 0);
}

/*
 * Execs over 2x VRAM in a non-LR vm: each of 8 VRAM BOs is bound (asynchronously, after the exec
 * that used the BO it replaces), filled by an exec that waits for that bind, and unbound later;
 * the binds evict the BOs unbound before (their unbinds committed). Afterwards every byte of
 * every BO is checked, each bound again (restored to VRAM).
 */
#define CMD_VA (1ull << 32)

static void test_execs_over_vram(void **state)
{
	(void)state;
	enum { NBO = 8 };
	struct vmb_client *c = open_soft(8 * MiB, 64 * MiB);
	uint64_t gran = granule_of(c), cmd_size = gran > 64 * KiB ? gran : 64 * KiB;
	uint32_t vm = vm_new(c, 0), bq = queue_new(c, vm);
	uint32_t cmd_bo = bo_new(c, cmd_size, VMB_PLACE_SYSTEM);
	uint64_t *cmd = bo_cpu(c, cmd_bo);
	bind1(c, vm, op_map(cmd_bo, 0, CMD_VA, cmd_size, VMB_BIND_FLAG_READONLY));
	struct vmb_exec_queue_create qc = {.vm_id = vm, .engine = {.engine_class = VMB_ENGINE_CLASS_COMPUTE}};
	assert_int_equal(vmb_exec_queue_create(c, &qc), 0);
	uint32_t bo[NBO], so_b = syncobj_new(c, 0), so_x = syncobj_new(c, VMB_SYNCOBJ_CREATE_SIGNALED);
	for (int i = 0; i < NBO; i++)
		bo[i] = bo_new(c, 2 * MiB, VMB_PLACE_VRAM);
	for (int i = 0; i < NBO; i++) {
		uint64_t va = VA + (uint64_t)(i % 2) * 2 * MiB;
		struct vmb_bind_op ops[2] = {op_unmap(va, 2 * MiB), op_map(bo[i], 0, va, 2 * MiB, 0)};
		struct vmb_sync bs[2] = {sync_in(so_x), sync_out(so_b)};
		bind_async(c, vm, bq, ops, 2, bs, 2);
		uint32_t n = (uint32_t)(i * 16);
		uint64_t *b = cmd + n;
		uint32_t k = 0;
		vmb_cmd_fill(b, &k, va, 2 * MiB, 0xa0000000u | (uint32_t)i);
		vmb_cmd_end(b, &k);
		struct vmb_sync xs[2] = {sync_in(so_b), sync_out(so_x)};
		struct vmb_exec e = {.exec_queue_id = qc.exec_queue_id, .address = CMD_VA + n * 8ull, .num_syncs = 2,
				     .syncs = (uint64_t)(uintptr_t)xs};
		assert_int_equal(vmb_exec(c, &e), 0);
		syncobj_wait1(c, so_x);
	}
	struct vmb_exec_queue_query qq = {.exec_queue_id = qc.exec_queue_id};
	assert_int_equal(vmb_exec_queue_query(c, &qq), 0);
	assert_int_equal(qq.error, 0);
	assert_true(evicted_bytes(c) > 0);
	bind1(c, vm, op_unmap(VA, 4 * MiB));
	uint32_t *buf = malloc(2 * MiB);
	for (int i = 0; i < NBO; i++) {
		bind1(c, vm, op_map(bo[i], 0, VA, 2 * MiB, 0));
		assert_int_equal(bo_region(c, bo[i]), VMB_REGION_VRAM);
		assert_int_equal(__gpu_rw(c, vm, VA, buf, 2 * MiB, false), 0);
		for (uint64_t w = 0; w < 2 * MiB / 4; w++)
			if (buf[w] != (0xa0000000u | (uint32_t)i))
				fail_msg("BO %d word %llu is %#x", i, (unsigned long long)w, buf[w]);
		bind1(c, vm, op_unmap(VA, 2 * MiB));
	}
	free(buf);
	validate_client(c);
	assert_int_equal(vmb_client_close(c), 0);
}

/*
 * An eviction is device work ordered after nothing, so a bind that needs room never waits for a
 * job held back by a user's fence. VRAM is full of BOs no vm binds (bound, written, unbound);
 * an asynchronous MAP behind a gate (an in-fence the test holds shut) is pending on vm A's
 * queue. On that same queue, an asynchronous MAP of a VRAM BO without backing (its call evicts,
 * then submits its job behind the gated one) returns 0; a synchronous MAP in vm B that needs
 * room returns 0 (both within 10 s, a bound that tells a hang: before, the eviction followed
 * every pending bind of the device, the gated one among them, and the calls never returned).
 * The gated binds' fences stay unsignalled until the gate opens; every evicted BO's bytes are
 * intact when it is bound again.
 */
struct gated_calls {
	struct vmb_client *c;
	uint32_t vma, vmb, x, y, sx;
	atomic_int result; /* 1 while the calls run */
};

static void *gated_calls_run(void *arg)
{
	struct gated_calls *g = arg;
	struct vmb_sync out = sync_out(g->sx);
	struct vmb_bind_op mx = op_map(g->x, 0, VA, 2 * MiB, 0);
	int r = __bind_async(g->c, g->vma, 0, &mx, 1, &out, 1);
	if (!r)
		r = __bind1(g->c, g->vmb, op_map(g->y, 0, VA + 16 * MiB, 2 * MiB, 0));
	atomic_store(&g->result, r);
	return NULL;
}

static void test_evict_not_behind_gate(void **state)
{
	(void)state;
	struct vmb_client *c = open_soft(8 * MiB, 64 * MiB);
	uint32_t vma = vm_new(c, 0), vmb = vm_new(c, 0), bo[4];
	for (int i = 0; i < 4; i++) {
		bo[i] = bo_new(c, 2 * MiB, VMB_PLACE_VRAM);
		bind1(c, vmb, op_map(bo[i], 0, VA, 2 * MiB, 0));
		write_bo(c, vmb, VA, bo[i], 2 * MiB);
		bind1(c, vmb, op_unmap(VA, 2 * MiB));
	}
	assert_int_equal(region_free(c, VMB_REGION_VRAM), 0);
	struct gate gt = gate_new(c);
	uint32_t sg = syncobj_new(c, 0), sys = bo_new(c, 2 * MiB, VMB_PLACE_SYSTEM);
	struct vmb_sync y[2] = {sync_in(gt.h), sync_out(sg)};
	struct vmb_bind_op mg = op_map(sys, 0, VA + 32 * MiB, 2 * MiB, 0);
	bind_async(c, vma, 0, &mg, 1, y, 2);
	struct gated_calls g = {.c = c, .vma = vma, .vmb = vmb, .sx = syncobj_new(c, 0)};
	g.x = bo_new(c, 2 * MiB, VMB_PLACE_VRAM);
	g.y = bo_new(c, 2 * MiB, VMB_PLACE_VRAM);
	atomic_init(&g.result, 1);
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, gated_calls_run, &g), 0);
	for (int i = 0; i < 1000 && atomic_load(&g.result) == 1; i++)
		usleep(10000);
	int r = atomic_load(&g.result);
	bool gated = __syncobj_wait1(c, sg, 0, 0, 0) == -ETIME && __syncobj_wait1(c, g.sx, 0, 0, 0) == -ETIME;
	if (r == 1)
		gate_open(&gt); /* a hang: let it end before failing */
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(r, 0);
	assert_true(gated);
	assert_int_equal(evicted_bytes(c), 4 * MiB);
	gate_open(&gt);
	syncobj_wait1(c, sg);
	syncobj_wait1(c, g.sx);
	bind1(c, vmb, op_unmap(VA + 16 * MiB, 2 * MiB));
	bind1(c, vma, op_unmap(VA, 2 * MiB));
	for (int i = 0; i < 4; i++) {
		bind1(c, vmb, op_map(bo[i], 0, VA, 2 * MiB, 0));
		assert_int_equal(bo_region(c, bo[i]), VMB_REGION_VRAM);
		check_bo(c, vmb, VA, bo[i], 2 * MiB);
		bind1(c, vmb, op_unmap(VA, 2 * MiB));
	}
	validate_client(c);
	assert_int_equal(vmb_client_close(c), 0);
}

/*
 * ---- BOs bound in non-LR vms: evicted while no job of theirs runs, restored before an exec ----
 *
 * Several non-LR vms, each binding XBOS VRAM-only BOs (a working set that fits VRAM), together
 * 2x VRAM. Each round runs on every vm in turn one exec that fills each of its BOs with a value
 * of (round, vm, BO), then checks every byte of them through the vm's page tables. A vm's binds
 * and execs evict the BOs of vms with nothing running or pending (their mappings re-pointed at
 * the SYSTEM copies); the exec's call restores its own vm's (they may not live in SYSTEM) before
 * the exec runs: once its fence has signalled they are in VRAM (single thread), and every byte
 * is what the exec wrote (a mapping left pointing at freed VRAM would have written another BO's
 * bytes). VRAM's evictions and restores are counted. Synchronous binds, asynchronous binds on
 * explicit bind queues, and 8 threads (each its own vm, -ENOSPC retried: another thread may have
 * every other vm busy).
 */
#define XBOS 2
#define XBO_SIZE (2 * MiB)

struct xvm {
	struct vmb_client *c;
	uint32_t vm, bq, eq, cmd_bo, so, bo[XBOS];
	uint64_t *cmd;
	int idx, err;
	bool async, retry;
};

static uint32_t xval(int round, int vm, int i) { return 0x50000000u | (uint32_t)(round << 16 | vm << 8 | i); }

static void xvm_init(struct xvm *x, struct vmb_client *c, int idx, bool async)
{
	uint64_t gran = granule_of(c), cmd_size = gran > 64 * KiB ? gran : 64 * KiB;
	*x = (struct xvm){.c = c, .idx = idx, .async = async, .vm = vm_new(c, 0)};
	x->bq = async ? queue_new(c, x->vm) : 0;
	x->so = syncobj_new(c, 0);
	x->cmd_bo = bo_new(c, cmd_size, VMB_PLACE_SYSTEM);
	x->cmd = bo_cpu(c, x->cmd_bo);
	bind1(c, x->vm, op_map(x->cmd_bo, 0, CMD_VA, cmd_size, VMB_BIND_FLAG_READONLY));
	struct vmb_exec_queue_create qc = {.vm_id = x->vm, .engine = {.engine_class = VMB_ENGINE_CLASS_COMPUTE}};
	assert_int_equal(vmb_exec_queue_create(c, &qc), 0);
	x->eq = qc.exec_queue_id;
	for (int i = 0; i < XBOS; i++)
		x->bo[i] = bo_new(c, XBO_SIZE, VMB_PLACE_VRAM);
}

/* A call retried while it says -ENOSPC (x->retry: other threads' vms may all be busy). */
static int xretry(struct xvm *x, int r)
{
	return x->retry && r == -ENOSPC;
}

/* Binds the vm's BOs (its first round): synchronously, or on its bind queue and waited for. */
static int xvm_bind(struct xvm *x)
{
	for (int i = 0; i < XBOS; i++) {
		struct vmb_bind_op op = op_map(x->bo[i], 0, VA + (uint64_t)i * XBO_SIZE, XBO_SIZE, 0);
		int r;
		do {
			if (x->async) {
				struct vmb_sync out = sync_out(x->so);
				r = __bind_async(x->c, x->vm, x->bq, &op, 1, &out, 1);
				if (!r)
					r = __syncobj_wait1(x->c, x->so, 0, 10ll * 1000000000, 0);
			} else {
				r = __bind_ops(x->c, x->vm, &op, 1);
			}
			if (xretry(x, r))
				usleep(1000);
		} while (xretry(x, r));
		if (r)
			return r;
	}
	return 0;
}

/* One exec filling every BO of the vm, waited for; then every byte checked. */
static int xvm_round(struct xvm *x, int round)
{
	uint32_t k = 0;
	for (int i = 0; i < XBOS; i++)
		vmb_cmd_fill(x->cmd, &k, VA + (uint64_t)i * XBO_SIZE, XBO_SIZE, xval(round, x->idx, i));
	vmb_cmd_end(x->cmd, &k);
	struct vmb_sync out = sync_out(x->so);
	struct vmb_exec e = {.exec_queue_id = x->eq, .address = CMD_VA, .num_syncs = 1, .syncs = (uint64_t)(uintptr_t)&out};
	int r;
	do {
		r = vmb_exec(x->c, &e);
		if (xretry(x, r))
			usleep(1000);
	} while (xretry(x, r));
	if (r || (r = __syncobj_wait1(x->c, x->so, 0, 10ll * 1000000000, 0)))
		return r;
	if (!x->retry) /* alone: nothing evicts them before this check */
		for (int i = 0; i < XBOS; i++)
			if (bo_region(x->c, x->bo[i]) != VMB_REGION_VRAM)
				return -EFAULT;
	uint32_t *buf = malloc(XBO_SIZE);
	for (int i = 0; i < XBOS && !r; i++) {
		r = __gpu_rw(x->c, x->vm, VA + (uint64_t)i * XBO_SIZE, buf, XBO_SIZE, false);
		for (uint64_t w = 0; !r && w < XBO_SIZE / 4; w++)
			if (buf[w] != xval(round, x->idx, i)) {
				print_error("vm %d BO %d round %d word %llu: %#x\n", x->idx, i, round, (unsigned long long)w, buf[w]);
				r = -EUCLEAN;
			}
	}
	free(buf);
	return r;
}

static uint64_t restores(struct vmb_client *c)
{
	struct vmb_region_query q = {.region = VMB_REGION_VRAM};
	assert_int_equal(vmb_region_query(c, &q), 0);
	return q.restores;
}

static void run_bound(int nvm, bool async)
{
	struct vmb_client *c = open_soft((uint64_t)nvm * XBOS * XBO_SIZE / 2, 256 * MiB); /* 2x VRAM */
	struct xvm *x = calloc((size_t)nvm, sizeof(*x));
	for (int v = 0; v < nvm; v++)
		xvm_init(&x[v], c, v, async);
	for (int round = 0; round < 3; round++)
		for (int v = 0; v < nvm; v++) {
			if (round == 0)
				assert_int_equal(xvm_bind(&x[v]), 0);
			assert_int_equal(xvm_round(&x[v], round), 0);
		}
	assert_true(evicted_bytes(c) >= (uint64_t)nvm * XBO_SIZE);
	assert_true(restores(c) > 0);
	validate_client(c);
	free(x);
	assert_int_equal(vmb_client_close(c), 0);
}

static void test_bound_execs_vms(void **state)
{
	(void)state;
	run_bound(4, false);
}

static void test_bound_execs_queues(void **state)
{
	(void)state;
	run_bound(4, true);
}

static void *xvm_thread(void *arg)
{
	struct xvm *x = arg;
	x->err = xvm_bind(x);
	for (int round = 0; round < 3 && !x->err; round++)
		x->err = xvm_round(x, round);
	return NULL;
}

static void test_bound_execs_threads(void **state)
{
	(void)state;
	enum { N = 8 };
	struct vmb_client *c = open_soft(N * XBOS * XBO_SIZE / 2, 256 * MiB);
	struct xvm x[N];
	pthread_t t[N];
	for (int v = 0; v < N; v++) {
		xvm_init(&x[v], c, v, v & 1);
		x[v].retry = true;
	}
	for (int v = 0; v < N; v++)
		assert_int_equal(pthread_create(&t[v], NULL, xvm_thread, &x[v]), 0);
	for (int v = 0; v < N; v++)
		pthread_join(t[v], NULL);
	for (int v = 0; v < N; v++)
		assert_int_equal(x[v].err, 0);
	assert_true(evicted_bytes(c) > 0);
	validate_client(c);
	assert_int_equal(vmb_client_close(c), 0);
}

/*
 * A BO is not evicted while a job of a vm that binds it is pending: vm A's exec waits for a gate,
 * so A's BOs (all of VRAM) stay; a bind in vm B that needs room finds nothing to evict: -ENOSPC,
 * nothing changed. The gate opened and A's exec over, the same call restarted evicts A's BOs
 * (their mappings re-pointed at SYSTEM) and succeeds; A's next exec brings them back, every byte
 * as written. An LR vm's BOs are never evicted, even with nothing of it running.
 */
static void test_bound_busy_not_evicted(void **state)
{
	(void)state;
	struct vmb_client *c = open_soft(XBOS * XBO_SIZE, 256 * MiB);
	struct xvm a, b;
	xvm_init(&a, c, 0, false);
	xvm_init(&b, c, 1, false);
	assert_int_equal(xvm_bind(&a), 0);
	assert_int_equal(xvm_round(&a, 0), 0);
	struct gate g = gate_new(c);
	uint32_t k = 0;
	vmb_cmd_fill(a.cmd, &k, VA, XBO_SIZE, xval(1, 0, 0));
	vmb_cmd_fill(a.cmd, &k, VA + XBO_SIZE, XBO_SIZE, xval(1, 0, 1));
	vmb_cmd_end(a.cmd, &k);
	struct vmb_sync xs[2] = {sync_in(g.h), sync_out(a.so)};
	struct vmb_exec e = {.exec_queue_id = a.eq, .address = CMD_VA, .num_syncs = 2, .syncs = (uint64_t)(uintptr_t)xs};
	assert_int_equal(vmb_exec(c, &e), 0);
	struct vmb_bind_op op = op_map(b.bo[0], 0, VA, XBO_SIZE, 0);
	struct vmb_vm_stats st0 = vm_stats(c, b.vm);
	assert_int_equal(__bind_ops(c, b.vm, &op, 1), -ENOSPC);
	struct vmb_vm_stats st = vm_stats(c, b.vm);
	assert_int_equal(st.num_mappings, st0.num_mappings);
	assert_int_equal(bo_region(c, a.bo[0]), VMB_REGION_VRAM);
	gate_open(&g);
	syncobj_wait1(c, a.so);
	assert_int_equal(__bind_ops(c, b.vm, &op, 1), 0);
	assert_int_equal(bo_region(c, b.bo[0]), VMB_REGION_VRAM);
	/* A's BO 0 or 1 (the least recently mapped first) went to SYSTEM: its mapping reads there */
	assert_int_equal(bo_region(c, a.bo[0]), VMB_REGION_SYSTEM);
	assert_int_equal(gpu_read64(c, a.vm, VA + 8), ((uint64_t)xval(1, 0, 0) << 32) | xval(1, 0, 0));
	bind1(c, b.vm, op_unmap(VA, XBO_SIZE));
	assert_int_equal(xvm_round(&a, 2), 0);
	/* an LR vm bound to the top of VRAM: idle, its BOs still stay */
	struct vmb_client *l = open_soft_at("soft:1", XBO_SIZE, 64 * MiB);
	uint32_t lvm = vm_new(l, VMB_VM_CREATE_LR_MODE), lbo = bo_new(l, XBO_SIZE, VMB_PLACE_VRAM),
		 nvm = vm_new(l, 0), nbo = bo_new(l, XBO_SIZE, VMB_PLACE_VRAM);
	bind1(l, lvm, op_map(lbo, 0, VA, XBO_SIZE, 0));
	op = op_map(nbo, 0, VA, XBO_SIZE, 0);
	assert_int_equal(__bind_ops(l, nvm, &op, 1), -ENOSPC);
	assert_int_equal(bo_region(l, lbo), VMB_REGION_VRAM);
	validate_client(l);
	assert_int_equal(vmb_client_close(l), 0);
	validate_client(c);
	assert_int_equal(vmb_client_close(c), 0);
}

/*
 * Eviction passes over a BO that SYSTEM has no room for and takes the next: VRAM holds an unbound
 * 6 MiB BO (the least recently mapped) and an unbound 2 MiB one, SYSTEM 4 MiB; a MAP of a new
 * 2 MiB VRAM BO evicts the 2 MiB one and succeeds (before: the 6 MiB one was counted as the room
 * wanted although SYSTEM could not take it, nothing moved, -ENOSPC).
 */
static void test_evict_passes_over_too_big(void **state)
{
	(void)state;
	struct vmb_client *c = open_soft(8 * MiB, 4 * MiB);
	uint32_t vm = vm_new(c, 0), big = bo_new(c, 6 * MiB, VMB_PLACE_VRAM), small = bo_new(c, 2 * MiB, VMB_PLACE_VRAM);
	bind1(c, vm, op_map(big, 0, VA, 6 * MiB, 0));
	bind1(c, vm, op_map(small, 0, VA + 8 * MiB, 2 * MiB, 0));
	write_bo(c, vm, VA + 8 * MiB, small, 2 * MiB);
	bind1(c, vm, op_unmap(VA, 16 * MiB));
	uint32_t x = bo_new(c, 2 * MiB, VMB_PLACE_VRAM);
	struct vmb_bind_op op = op_map(x, 0, VA + 16 * MiB, 2 * MiB, 0);
	assert_int_equal(__bind_ops(c, vm, &op, 1), 0);
	assert_int_equal(bo_region(c, big), VMB_REGION_VRAM);
	assert_int_equal(bo_region(c, small), VMB_REGION_SYSTEM);
	bind1(c, vm, op_unmap(VA + 16 * MiB, 2 * MiB));
	bind1(c, vm, op_map(small, 0, VA, 2 * MiB, 0)); /* back to VRAM, x evicted */
	check_bo(c, vm, VA, small, 2 * MiB);
	validate_client(c);
	assert_int_equal(vmb_client_close(c), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_backing_at_first_bind),
		cmocka_unit_test(test_backing_preferred_region),
		cmocka_unit_test(test_backing_at_cpu_map),
		cmocka_unit_test(test_lr_enospc_unbind_restart),
		cmocka_unit_test(test_window_sync),
		cmocka_unit_test(test_window_async),
		cmocka_unit_test(test_threads),
		cmocka_unit_test(test_execs_over_vram),
		cmocka_unit_test(test_evict_not_behind_gate),
		cmocka_unit_test(test_bound_execs_vms),
		cmocka_unit_test(test_bound_execs_queues),
		cmocka_unit_test(test_bound_execs_threads),
		cmocka_unit_test(test_bound_busy_not_evicted),
		cmocka_unit_test(test_evict_passes_over_too_big),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
