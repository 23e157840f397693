/* SPDX-License-Identifier: MIT */
/*
 * Attacks on what session 15 changed, written from the contract (docs/UAPI.md, the headers):
 * an exec call that takes its queue's submit lock instead of the vm's (a vm's first execs from
 * many threads at once; execs of two queues whose in-fence is a bind's out-fence while another
 * thread binds on the vm: the exec sees the mapping; exec queues destroyed under exec calls); a
 * vm's page-table cache (a pool exhausted with other vms' caches warm fails exactly where it
 * fails with them empty, fault injection of table pages with the cache warm); two threads' execs
 * on one queue signalling one syncobj (it ends with the fence queued last); chained
 * PREFETCHes of one BO over three vms and queues, copies failing, vms destroyed and the BO
 * closed, bind queues destroyed, before the chain starts or with its first copy in flight
 * (every fence signals, the data is where the BO is, nothing leaks); bind
 * calls of more than 32 ops failing late or on an allocation with the vm's kept arrays warm
 * (unwound exactly).
 */
#include "lib/harness.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "core/alloc.h"
#include "dev/core.h"
#include "uapi/uapi.h" /* the client's device: its pending bind jobs */

#define SEC 1000000000ll

static uint64_t gran = 4096;
#define G(x) (((x) + gran - 1) / gran * gran)

#define CMD_VA (1ull << 32)
#define DATA_VA (2ull << 32)

static uint32_t xq_new(struct vmb_client *c, uint32_t vm, uint16_t cls)
{
	struct vmb_exec_queue_create a = {.vm_id = vm, .engine = {.engine_class = cls}};
	assert_int_equal(vmb_exec_queue_create(c, &a), 0);
	return a.exec_queue_id;
}

static int __exec(struct vmb_client *c, uint32_t q, uint64_t va, struct vmb_sync *s, uint32_t ns)
{
	struct vmb_exec e = {.exec_queue_id = q, .address = va, .num_syncs = ns, .syncs = (uint64_t)(uintptr_t)s};
	return vmb_exec(c, &e);
}

static void xq_destroy(struct vmb_client *c, uint32_t q)
{
	struct vmb_exec_queue_destroy d = {.exec_queue_id = q};
	assert_int_equal(vmb_exec_queue_destroy(c, &d), 0);
}

/* ---- a vm's first execs from many threads at once ---------------------------------------- */

#define FIRST_T 4

struct first {
	struct vmb_client *c;
	uint32_t q, t;
	atomic_int *go;
	int err, serr;
};

static void *first_run(void *arg)
{
	struct first *p = arg;
	uint32_t so = syncobj_new(p->c, 0);
	struct vmb_sync s = sync_out(so);
	while (!atomic_load(p->go))
		;
	p->err = __exec(p->c, p->q, CMD_VA + p->t * 64, &s, 1);
	p->serr = p->err ? 0 : __syncobj_wait1(p->c, so, 0, 10 * SEC, 0);
	if (!p->serr && !p->err)
		p->serr = syncobj_error(p->c, so);
	return NULL;
}

static void test_first_execs_race(void **state)
{
	(void)state;
	struct vmb_client *c = open_soft(64 * MiB, 64 * MiB);
	gran = granule_of(c);
	uint32_t cmd_bo = bo_new(c, G(64 * KiB), place_cpu(c)), data_bo = bo_new(c, G(64 * KiB), place_cpu(c));
	uint64_t *cmd = bo_cpu(c, cmd_bo), *data = bo_cpu(c, data_bo);
	for (uint32_t round = 0; round < 40; round++) {
		for (uint32_t t = 0; t < FIRST_T; t++) {
			uint32_t n = t * 8;
			vmb_cmd_store64(cmd, &n, DATA_VA + t * 8, (uint64_t)round << 8 | t);
			vmb_cmd_end(cmd, &n);
		}
		uint32_t vm = vm_new(c, 0);
		bind1(c, vm, op_map(cmd_bo, 0, CMD_VA, G(64 * KiB), VMB_BIND_FLAG_READONLY));
		bind1(c, vm, op_map(data_bo, 0, DATA_VA, G(64 * KiB), 0));
		atomic_int go = 0;
		struct first p[FIRST_T];
		pthread_t th[FIRST_T];
		for (uint32_t t = 0; t < FIRST_T; t++) {
			p[t] = (struct first){.c = c, .q = xq_new(c, vm, t & 1), .t = t, .go = &go};
			pthread_create(&th[t], NULL, first_run, &p[t]);
		}
		atomic_store(&go, 1);
		for (uint32_t t = 0; t < FIRST_T; t++) {
			pthread_join(th[t], NULL);
			assert_int_equal(p[t].err, 0);
			assert_int_equal(p[t].serr, 0);
			assert_int_equal(__atomic_load_n(&data[t], __ATOMIC_ACQUIRE), (uint64_t)round << 8 | t);
			xq_destroy(c, p[t].q);
		}
		vm_destroy1(c, vm);
	}
	validate_client(c);
	assert_int_equal(vmb_client_close(c), 0);
}

/* ---- execs of two queues behind binds of their own queues, a third thread binding ---------- */

#define SEE_T 2
#define SEE_ROUNDS 150

struct seer {
	struct vmb_client *c;
	uint32_t vm, t, xq, bq, bo, cmd_bo;
	atomic_int *stop;
	char err[160];
};

static void *see_run(void *arg)
{
	struct seer *p = arg;
	struct vmb_client *c = p->c;
	uint64_t va = DATA_VA + (uint64_t)(p->t + 1) * GiB;
	uint64_t *cmd = (uint64_t *)bo_cpu(c, p->cmd_bo) + p->t * G(64 * KiB) / 8; /* its own slice */
	uint32_t m = syncobj_new(c, 0), e = syncobj_new(c, 0), u = syncobj_new(c, 0);
	for (uint32_t r = 0; r < SEE_ROUNDS && !p->err[0]; r++) {
		uint32_t n = 0;
		/* the batch of round r: its own 64 bytes, so an older batch is never rewritten */
		uint32_t at = (r % 64) * 8;
		n = at;
		vmb_cmd_store64(cmd, &n, va + 8 * (r % 16), 0x5ee0000000000000ull | (uint64_t)p->t << 32 | r);
		vmb_cmd_end(cmd, &n);
		struct vmb_bind_op op = op_map(p->bo, 0, va, G(64 * KiB), 0);
		struct vmb_sync y = sync_out(m);
		int rr = __bind_async(c, p->vm, p->bq, &op, 1, &y, 1);
		struct vmb_sync z[2] = {sync_in(m), sync_out(e)};
		if (!rr)
			rr = __exec(c, p->xq, CMD_VA + (uint64_t)p->t * G(64 * KiB) + at * 8, z, 2);
		struct vmb_bind_op un = op_unmap(va, G(64 * KiB));
		struct vmb_sync w[2] = {sync_in(e), sync_out(u)};
		if (!rr)
			rr = __bind_async(c, p->vm, p->bq, &un, 1, w, 2);
		if (rr) {
			snprintf(p->err, sizeof(p->err), "r%u call %d", r, rr);
			break;
		}
		int er = __syncobj_wait1(c, u, 0, 10 * SEC, 0);
		if (!er)
			er = syncobj_error(c, e);
		if (er) {
			snprintf(p->err, sizeof(p->err), "r%u exec %d", r, er);
			break;
		}
		uint64_t got = bo_read64(c, p->bo, 8 * (r % 16));
		if (got != (0x5ee0000000000000ull | (uint64_t)p->t << 32 | r))
			snprintf(p->err, sizeof(p->err), "r%u got %#llx", r, (unsigned long long)got);
		struct vmb_syncobj_array a = {.handles = (uint64_t)(uintptr_t)(uint32_t[]){m, e, u}, .count = 3};
		if (vmb_syncobj_reset(c, &a))
			snprintf(p->err, sizeof(p->err), "reset");
	}
	return NULL;
}

static void *churn_run(void *arg)
{
	struct seer *p = arg;
	uint64_t va = 7 * GiB;
	while (!atomic_load(p->stop)) {
		struct vmb_bind_op ops[3] = {op_map(p->bo, 0, va, G(64 * KiB), 0), op_unmap(va + G(4 * KiB), G(4 * KiB)),
					     op_unmap(va, G(64 * KiB))};
		if (__bind_ops(p->c, p->vm, ops, 3)) {
			snprintf(p->err, sizeof(p->err), "churn");
			break;
		}
	}
	return NULL;
}

static void test_exec_follows_bind_two_queues(void **state)
{
	(void)state;
	struct vmb_client *c = open_soft(128 * MiB, 128 * MiB);
	gran = granule_of(c);
	uint32_t vm = vm_new(c, 0);
	uint32_t cmd_bo = bo_new(c, SEE_T * G(64 * KiB), place_cpu(c));
	bind1(c, vm, op_map(cmd_bo, 0, CMD_VA, SEE_T * G(64 * KiB), VMB_BIND_FLAG_READONLY));
	atomic_int stop = 0;
	struct seer p[SEE_T + 1];
	pthread_t th[SEE_T + 1];
	for (uint32_t t = 0; t <= SEE_T; t++) {
		p[t] = (struct seer){.c = c, .vm = vm, .t = t, .bo = bo_new(c, G(64 * KiB), VMB_PLACE_VRAM | VMB_PLACE_SYSTEM),
				     .stop = &stop};
		if (t < SEE_T) {
			p[t].xq = xq_new(c, vm, t & 1);
			p[t].bq = queue_new(c, vm);
			p[t].cmd_bo = cmd_bo; /* its batches in its own 64 KiB slice */
		}
	}
	for (uint32_t t = 0; t < SEE_T; t++)
		pthread_create(&th[t], NULL, see_run, &p[t]);
	pthread_create(&th[SEE_T], NULL, churn_run, &p[SEE_T]);
	for (uint32_t t = 0; t < SEE_T; t++)
		pthread_join(th[t], NULL);
	atomic_store(&stop, 1);
	pthread_join(th[SEE_T], NULL);
	for (uint32_t t = 0; t <= SEE_T; t++)
		if (p[t].err[0])
			fail_msg("thread %u: %s", t, p[t].err);
	validate_client(c);
	assert_int_equal(vmb_client_close(c), 0);
}

/* ---- exec queues destroyed under exec calls ------------------------------------------------ */

struct hammer {
	struct vmb_client *c;
	uint32_t q;
	int bad;
	unsigned int ok;
};

static void *hammer_run(void *arg)
{
	struct hammer *h = arg;
	for (;;) {
		int r = __exec(h->c, h->q, CMD_VA, NULL, 0);
		if (r == -ENOENT)
			return NULL;
		if (r) {
			h->bad = r;
			return NULL;
		}
		h->ok++;
	}
}

static void test_exec_queue_destroy_race(void **state)
{
	(void)state;
	struct vmb_client *c = open_soft(64 * MiB, 64 * MiB);
	gran = granule_of(c);
	uint32_t cmd_bo = bo_new(c, G(4 * KiB), place_cpu(c));
	uint64_t *cmd = bo_cpu(c, cmd_bo);
	uint32_t n = 0;
	vmb_cmd_end(cmd, &n);
	for (uint32_t round = 0; round < 30; round++) {
		uint32_t vm = vm_new(c, 0);
		bind1(c, vm, op_map(cmd_bo, 0, CMD_VA, G(4 * KiB), VMB_BIND_FLAG_READONLY));
		struct hammer h[2] = {{.c = c, .q = xq_new(c, vm, 0)}, {.c = c}};
		h[1].q = h[0].q;
		pthread_t th[2];
		for (int t = 0; t < 2; t++)
			pthread_create(&th[t], NULL, hammer_run, &h[t]);
		while (!h[0].ok && !h[1].ok && !h[0].bad && !h[1].bad)
			sched_yield();
		if (round & 1)
			vm_destroy1(c, vm); /* the queue holds the vm: execs go on */
		xq_destroy(c, h[0].q);
		for (int t = 0; t < 2; t++) {
			pthread_join(th[t], NULL);
			assert_int_equal(h[t].bad, 0);
		}
		if (!(round & 1))
			vm_destroy1(c, vm);
		validate_client(c);
	}
	assert_int_equal(vmb_client_close(c), 0);
}

/* ---- out-syncobjs installed in queue order: two threads' execs on one queue ----------------- */

struct orderer {
	struct vmb_client *c;
	uint32_t q, so, gate;
	atomic_int *go;
	int err;
};

static void *order_run(void *arg)
{
	struct orderer *o = arg;
	struct vmb_sync y[2] = {sync_in(o->gate), sync_out(o->so)};
	while (!atomic_load(o->go))
		;
	o->err = __exec(o->c, o->q, CMD_VA, y, 2);
	return NULL;
}

/*
 * Two threads exec on one queue at once, both behind a gate, both signalling one binary syncobj:
 * the syncobj ends up with the fence of the exec queued last (the queue's order), which signals
 * after both jobs ran: once it has signalled, the queue counts both done.
 */
static void test_out_syncobj_queue_order(void **state)
{
	(void)state;
	struct vmb_client *c = open_soft(64 * MiB, 64 * MiB);
	gran = granule_of(c);
	uint32_t vm = vm_new(c, 0), cmd_bo = bo_new(c, G(4 * KiB), place_cpu(c));
	uint64_t *cmd = bo_cpu(c, cmd_bo);
	uint32_t n = 0;
	vmb_cmd_delay(cmd, &n, 100000); /* 100 us: the later job ends clearly later */
	vmb_cmd_end(cmd, &n);
	bind1(c, vm, op_map(cmd_bo, 0, CMD_VA, G(4 * KiB), VMB_BIND_FLAG_READONLY));
	uint32_t q = xq_new(c, vm, 0), so = syncobj_new(c, 0);
	for (uint32_t round = 0; round < 50; round++) {
		struct gate g = gate_new(c);
		atomic_int go = 0;
		struct orderer o[2];
		pthread_t th[2];
		for (int t = 0; t < 2; t++) {
			o[t] = (struct orderer){.c = c, .q = q, .so = so, .gate = g.h, .go = &go};
			pthread_create(&th[t], NULL, order_run, &o[t]);
		}
		atomic_store(&go, 1);
		for (int t = 0; t < 2; t++) {
			pthread_join(th[t], NULL);
			assert_int_equal(o[t].err, 0);
		}
		gate_open(&g);
		assert_int_equal(__syncobj_wait1(c, so, 0, 10 * SEC, 0), 0);
		struct vmb_exec_queue_query qq = {.exec_queue_id = q};
		assert_int_equal(vmb_exec_queue_query(c, &qq), 0);
		assert_int_equal(qq.jobs_done, 2ull * (round + 1));
		struct vmb_syncobj_array a = {.handles = (uint64_t)(uintptr_t)&so, .count = 1};
		assert_int_equal(vmb_syncobj_reset(c, &a), 0);
		struct vmb_syncobj_destroy d = {.handle = g.h};
		assert_int_equal(vmb_syncobj_destroy(c, &d), 0);
	}
	validate_client(c);
	assert_int_equal(vmb_client_close(c), 0);
}

/* ---- a vm's page-table cache: a pool exhausted with other vms' caches warm ------------------ */

/* MAPs of one granule 1 GiB apart in @vm (each needs tables of its own) until the pool fails:
 * how many; the errno must be -ENOMEM. */
static uint32_t maps_until_full(struct vmb_client *c, uint32_t vm, uint32_t bo)
{
	uint32_t n = 0;
	for (;; n++) {
		int r = __bind1(c, vm, op_map(bo, 0, (uint64_t)(n + 1) * 512 * GiB, gran, 0));
		if (r) {
			assert_int_equal(r, -ENOMEM);
			return n;
		}
		assert_true(n < 100000);
	}
}

/* A device instance of its own with a page-table pool of 64 pages. */
static struct vmb_client *open_small_pool(const char *name)
{
	struct vmb_client_opts o = {.vram_size = 64 * MiB, .system_size = 64 * MiB, .pt_pool_size = 256 * KiB};
	struct vmb_client *c = NULL;
	assert_int_equal(vmb_client_open(name, &o, &c), 0);
	gran = granule_of(c);
	return c;
}

static void warm_cache(struct vmb_client *c, uint32_t vm, uint32_t bo)
{
	/* tables of a few 1 GiB-apart granules, freed: up to the cache's size stays with @vm */
	for (uint32_t i = 0; i < 6; i++)
		bind1(c, vm, op_map(bo, 0, (uint64_t)(i + 1) * GiB + 8 * GiB, gran, 0));
	bind1(c, vm, op_unmap(8 * GiB, 16 * GiB));
}

static void test_pt_pool_exhausted_caches_warm(void **state)
{
	(void)state;
	struct vmb_client *c = open_small_pool("soft:5");
	uint32_t bo = bo_new(c, gran, VMB_PLACE_SYSTEM);
	uint32_t w[3];
	/* the count with no cache anywhere but the measuring vm's own */
	uint32_t vm = vm_new(c, 0);
	uint32_t cold = maps_until_full(c, vm, bo);
	assert_true(cold > 2);
	vm_destroy1(c, vm);
	/* and beside three vms that hold nothing but their roots */
	for (int i = 0; i < 3; i++)
		w[i] = vm_new(c, 0);
	vm = vm_new(c, 0);
	uint32_t cold3 = maps_until_full(c, vm, bo);
	vm_destroy1(c, vm);
	for (int i = 0; i < 3; i++)
		vm_destroy1(c, w[i]);
	for (uint32_t round = 0; round < 4; round++) {
		for (int i = 0; i < 3; i++) {
			w[i] = vm_new(c, 0);
			warm_cache(c, w[i], bo);
		}
		/* the same vms' roots are in use; their caches hold pages a reclaim gives back */
		vm = vm_new(c, 0);
		uint32_t n = maps_until_full(c, vm, bo);
		assert_int_equal(n, cold3); /* their caches given back: as if empty */
		/* a bind of a warm vm still works after the reclaim, and fails -ENOMEM when full */
		int r = __bind1(c, w[0], op_map(bo, 0, 9 * GiB, gran, 0));
		assert_int_equal(r, -ENOMEM);
		bind1(c, vm, op_unmap(0, 1ull << 47));
		bind1(c, w[0], op_map(bo, 0, 9 * GiB, gran, 0));
		/* PT_PAGE injection with the caches warm: every page still fails */
		warm_cache(c, w[1], bo);
		struct vmb_fault_inject fi = {.classes = VMB_INJECT_PT_PAGE, .flags = VMB_INJECT_PERSISTENT, .nth = 1};
		assert_int_equal(vmb_debug_fault_inject(c, &fi), 0);
		assert_int_equal(__bind1(c, w[1], op_map(bo, 0, 9 * GiB, gran, 0)), -ENOMEM);
		assert_int_equal(__bind1(c, vm, op_map(bo, 0, 3 * GiB, gran, 0)), -ENOMEM);
		fi = (struct vmb_fault_inject){.classes = VMB_INJECT_PT_PAGE};
		assert_int_equal(vmb_debug_fault_inject(c, &fi), 0);
		assert_true(fi.injected >= 2);
		bind1(c, w[1], op_map(bo, 0, 9 * GiB, gran, 0));
		/* destroyed in another order each round */
		uint32_t all[4] = {w[0], w[1], w[2], vm};
		for (int i = 0; i < 4; i++)
			vm_destroy1(c, all[(i + round) % 4]);
		validate_client(c);
		/* the pool is back where it started: the same count again */
		vm = vm_new(c, 0);
		assert_int_equal(maps_until_full(c, vm, bo), cold);
		vm_destroy1(c, vm);
	}
	validate_client(c);
	assert_int_equal(vmb_client_close(c), 0);
}

/*
 * Four threads, a vm each, MAP and UNMAP granules 512 GiB apart (3 tables each) in a small pool,
 * each keeping at most k mappings so that all of them fit with a mapping's tables to spare per
 * vm: no call ever fails (-ENOMEM would be a spurious failure: pages held in another vm's cache
 * are reclaimed first), and the pool is back at its start afterwards (the same count again).
 */
#define PAR_T 4

struct par {
	struct vmb_client *c;
	uint32_t vm, bo, k, t;
	int err;
};

static void *par_run(void *arg)
{
	struct par *p = arg;
	uint64_t seed = 0x9a7 + p->t;
	bool on[16] = {false};
	uint32_t n = 0;
	for (uint32_t i = 0; i < 3000 && !p->err; i++) {
		uint32_t slot = (uint32_t)rnd_below(&seed, 16);
		uint64_t va = (uint64_t)(slot + 1) * 512 * GiB;
		int r = 0;
		if (on[slot]) {
			r = __bind1(p->c, p->vm, op_unmap(va, gran));
			on[slot] = false;
			n--;
		} else if (n < p->k) {
			r = __bind1(p->c, p->vm, op_map(p->bo, 0, va, gran, 0));
			on[slot] = true;
			n++;
		}
		if (r)
			p->err = r;
	}
	return NULL;
}

static void test_pt_pool_parallel_no_spurious(void **state)
{
	(void)state;
	struct vmb_client *c = open_small_pool("soft:6");
	uint32_t bo = bo_new(c, gran, VMB_PLACE_SYSTEM), v[PAR_T];
	for (int t = 0; t < PAR_T; t++)
		v[t] = vm_new(c, 0);
	/* the room: maps in the last vm beside the others' roots */
	uint32_t room = maps_until_full(c, v[PAR_T - 1], bo);
	bind1(c, v[PAR_T - 1], op_unmap(0, 1ull << 47));
	assert_true(room >= 2 * PAR_T);
	struct par p[PAR_T];
	pthread_t th[PAR_T];
	for (uint32_t t = 0; t < PAR_T; t++) {
		p[t] = (struct par){.c = c, .vm = v[t], .bo = bo, .k = room / PAR_T - 1, .t = t};
		pthread_create(&th[t], NULL, par_run, &p[t]);
	}
	for (int t = 0; t < PAR_T; t++) {
		pthread_join(th[t], NULL);
		if (p[t].err)
			fail_msg("thread %d (k %u of room %u): %d", t, p[t].k, room, p[t].err);
	}
	for (int t = 0; t < PAR_T; t++)
		bind1(c, v[t], op_unmap(0, 1ull << 47));
	assert_int_equal(maps_until_full(c, v[PAR_T - 1], bo), room);
	for (int t = 0; t < PAR_T; t++)
		vm_destroy1(c, v[t]);
	validate_client(c);
	assert_int_equal(vmb_client_close(c), 0);
}

/* ---- bind calls of more than 32 ops, with the vm's kept arrays warm ------------------------- */

#define BIG 48

static void test_big_calls_unwind(void **state)
{
	(void)state;
	struct vmb_client *c = open_soft(64 * MiB, 256 * MiB);
	gran = granule_of(c);
	uint32_t vm = vm_new(c, 0), bo = bo_new(c, BIG * gran, VMB_PLACE_SYSTEM);
	struct vmb_bind_op ops[200];
	uint32_t q = queue_new(c, vm);
	/* warm: a 200-op async MAP (grown arrays kept by the vm), then unmapped */
	for (int i = 0; i < 200; i++)
		ops[i] = op_map(bo, (i % BIG) * gran, 16 * GiB + (uint64_t)i * 2 * gran, gran, 0);
	uint32_t s = syncobj_new(c, 0);
	struct vmb_sync y = sync_out(s);
	bind_async(c, vm, q, ops, 200, &y, 1);
	syncobj_wait1(c, s);
	assert_int_equal(syncobj_error(c, s), 0);
	bind1(c, vm, op_unmap(16 * GiB, GiB));
	uint64_t mapped0 = vm_stats(c, vm).bytes_mapped;
	for (uint32_t round = 0; round < 3; round++) {
		uint32_t n = round == 0 ? 40 : round == 1 ? 100 : 200;
		for (uint32_t i = 0; i < n; i++)
			ops[i] = op_map(bo, (i % BIG) * gran, 16 * GiB + (uint64_t)i * 2 * gran, gran, 0);
		/* a late op fails: nothing of the call stays */
		ops[n - 1].bo_handle = 9999;
		assert_int_equal(__bind_ops(c, vm, ops, n), -ENOENT);
		assert_int_equal(vm_stats(c, vm).bytes_mapped, mapped0);
		ops[n - 1].bo_handle = bo;
		ops[n - 1].addr = ops[n - 2].addr + gran / 2; /* misaligned, last */
		assert_int_equal(__bind_ops(c, vm, ops, n), -EINVAL);
		assert_int_equal(vm_stats(c, vm).bytes_mapped, mapped0);
		ops[n - 1].addr = ops[n - 2].addr; /* overlaps the previous op's range: allowed (replaces) */
		/* every allocation of the call failing in turn: -ENOMEM, nothing changed */
		for (uint64_t nth = 1;; nth++) {
			struct vmb_fault_inject fi = {.classes = VMB_INJECT_HOST_ALLOC, .flags = VMB_INJECT_ONCE, .nth = nth};
			assert_int_equal(vmb_debug_fault_inject(c, &fi), 0);
			int r = __bind_ops(c, vm, ops, n);
			fi = (struct vmb_fault_inject){.classes = VMB_INJECT_HOST_ALLOC};
			assert_int_equal(vmb_debug_fault_inject(c, &fi), 0);
			if (!r && fi.injected) {
				/* the refill after a successful call, where failing is harmless (vm/vm.h):
				 * the call's mappings are all there; undone for the next allocation */
				assert_int_equal(vm_stats(c, vm).bytes_mapped, mapped0 + (uint64_t)(n - 1) * gran);
				bind1(c, vm, op_unmap(16 * GiB, 8 * GiB));
				continue;
			}
			if (!r)
				break;
			assert_int_equal(r, -ENOMEM);
			assert_int_equal(vm_stats(c, vm).bytes_mapped, mapped0);
			validate_client(c);
			assert_true(nth < 10000);
		}
		assert_int_equal(vm_stats(c, vm).bytes_mapped, mapped0 + (uint64_t)(n - 1) * gran);
		/* small calls between, then the range unmapped in one 64-op call */
		bind1(c, vm, op_map(bo, 0, 20 * GiB, gran, 0));
		for (uint32_t i = 0; i < 64; i++)
			ops[i] = op_unmap(16 * GiB + (uint64_t)i * 8 * gran, 8 * gran);
		assert_int_equal(__bind_ops(c, vm, ops, 64), 0);
		bind1(c, vm, op_unmap(16 * GiB, 8 * GiB));
		assert_int_equal(vm_stats(c, vm).bytes_mapped, mapped0);
	}
	validate_client(c);
	assert_int_equal(vmb_client_close(c), 0);
}

/*
 * Two threads, a bind queue each on one vm, asynchronous calls of 40 to 120 ops (past the 32 on
 * the stack; plan chunks, map arrays and spilled steps grown, kept by the vm when a job ends on
 * a worker, taken by the next call), every other call behind a gate that the thread opens once
 * the call has returned (its job then commits on a worker): each call's fence signals without
 * error and each thread's range holds exactly what its call mapped.
 */
struct bigq {
	struct vmb_client *c;
	uint32_t vm, q, bo, t;
	char err[120];
};

static void *bigq_run(void *arg)
{
	struct bigq *p = arg;
	struct vmb_client *c = p->c;
	static __thread struct vmb_bind_op ops[120];
	uint64_t base = 32 * GiB + (uint64_t)p->t * 4 * GiB, seed = 0xb16 + p->t;
	uint32_t s[2] = {syncobj_new(c, 0), syncobj_new(c, 0)};
	for (uint32_t r = 0; r < 40 && !p->err[0]; r++) {
		uint32_t n = 40 + (uint32_t)rnd_below(&seed, 81);
		for (uint32_t i = 0; i < n; i++)
			ops[i] = i % 3 == 2 ? op_unmap(base + (uint64_t)(i - 1) * 4 * gran + gran, gran)
					    : op_map(p->bo, (i % 6) * gran, base + (uint64_t)i * 4 * gran, 2 * gran, 0);
		struct gate g = {0};
		bool gated = r % 2 == 0;
		if (gated)
			g = gate_new(c);
		struct vmb_sync y[2] = {sync_out(s[r % 2]), sync_in(g.h)};
		int rr = __bind_async(c, p->vm, p->q, ops, n, y, gated ? 2 : 1);
		if (!rr && !gated) /* (most commit in the call: the queue is idle) */
			rr = __syncobj_wait1(c, s[r % 2], 0, 10 * SEC, 0);
		if (rr) {
			snprintf(p->err, sizeof(p->err), "r%u n%u: %d", r, n, rr);
			break;
		}
		if (gated) {
			gate_open(&g);
			if ((rr = __syncobj_wait1(c, s[0], 0, 10 * SEC, 0)) || (rr = syncobj_error(c, s[0])))
				snprintf(p->err, sizeof(p->err), "r%u gated: %d", r, rr);
			struct vmb_syncobj_destroy d = {.handle = g.h};
			vmb_syncobj_destroy(c, &d);
		} else if ((rr = syncobj_error(c, s[1]))) {
			snprintf(p->err, sizeof(p->err), "r%u: %d", r, rr);
		}
		struct vmb_syncobj_array a = {.handles = (uint64_t)(uintptr_t)s, .count = 2};
		vmb_syncobj_reset(c, &a);
		/* the call's result: a MAP maps 2 granules at its place; the UNMAP after every
		 * second MAP takes that MAP's second granule back */
		for (uint32_t i = 0; i < n && !p->err[0]; i++) {
			uint64_t v = 0, va = base + (uint64_t)i * 4 * gran;
			bool second = !(i % 3 == 1 && i + 1 < n);
			if (i % 3 != 2 && (__gpu_rw(c, p->vm, va, &v, 8, false) ||
					   !__gpu_rw(c, p->vm, va + gran, &v, 8, false) != second))
				snprintf(p->err, sizeof(p->err), "r%u n%u op %u: mapping", r, n, i);
		}
		struct vmb_bind_op un = op_unmap(base, 2 * GiB);
		if ((rr = __bind_ops(c, p->vm, &un, 1)))
			snprintf(p->err, sizeof(p->err), "unmap %d", rr);
	}
	return NULL;
}

static void test_big_calls_two_queues(void **state)
{
	(void)state;
	struct vmb_client *c = open_soft(64 * MiB, 256 * MiB);
	gran = granule_of(c);
	uint32_t vm = vm_new(c, 0), bo = bo_new(c, 8 * gran, VMB_PLACE_SYSTEM);
	struct bigq p[2];
	pthread_t th[2];
	for (uint32_t t = 0; t < 2; t++) {
		p[t] = (struct bigq){.c = c, .vm = vm, .q = queue_new(c, vm), .bo = bo, .t = t};
		pthread_create(&th[t], NULL, bigq_run, &p[t]);
	}
	for (int t = 0; t < 2; t++) {
		pthread_join(th[t], NULL);
		if (p[t].err[0])
			fail_msg("thread %d: %s", t, p[t].err);
	}
	assert_int_equal(vm_stats(c, vm).bytes_mapped, 0);
	validate_client(c);
	assert_int_equal(vmb_client_close(c), 0);
}

/* ---- chained PREFETCHes of one BO over three vms and queues ------------------------------- */

#define CH_BO (2 * MiB) /* a granule of either shape */
#define CH_VA (64 * MiB)
#define CH_VB (128 * MiB)
#define CH_N 6 /* 5 PREFETCHes and a MAP, each with its out-syncobj */

static uint64_t ch_pat(uint64_t i) { return 0xc4a1000000000000ull | i; }

/* Where @bo is (if @bo), and the free bytes of VRAM and SYSTEM (@free[0], [1]). */
static uint32_t ch_where(struct vmb_client *c, uint32_t bo, uint64_t free[2])
{
	struct vmb_bo_query b = {.handle = bo};
	assert_int_equal(bo ? vmb_bo_query(c, &b) : 0, 0);
	for (int i = 0; i < 2; i++) {
		struct vmb_region_query q = {.region = i ? VMB_REGION_SYSTEM : VMB_REGION_VRAM};
		assert_int_equal(vmb_region_query(c, &q), 0);
		free[i] = q.free;
	}
	return b.region;
}

/* The pattern through @vm at @va: 0 (intact), or the access's errno (a banned vm's view). */
static int ch_check(struct vmb_client *c, uint32_t vm, uint64_t va)
{
	for (uint64_t i = 0; i < 8; i++) {
		uint64_t v = 0;
		int r = __gpu_rw(c, vm, va + i * (CH_BO / 8) + 8 * i, &v, 8, false);
		if (r)
			return r;
		if (v != ch_pat(i))
			fail_msg("word %llu: %#llx", (unsigned long long)i, (unsigned long long)v);
	}
	return 0;
}

/*
 * Five asynchronous PREFETCHes of one BO behind a gate, over three vms (A B C A B) and their own
 * or default queues, to random regions, then an asynchronous MAP of the BO in C behind them; the
 * n-th copy fails (random, or none); before the gate opens, nothing, the BO's handle closed, or a
 * vm destroyed (random). Every out-fence signals (bounded waits) with 0, -EIO (a failed copy, or
 * a bind of a vm it banned) or -ECANCELED (a destroyed vm); the vms left that are not banned
 * read the pattern (the soft copies move no bytes: the data is the same wherever the BO is);
 * the BO's region is one of its placements; once all is destroyed, nothing is left behind (the
 * client's check, every region's free bytes).
 */
struct ch_destroy {
	struct vmb_client *c;
	uint32_t vm;
	int err;
};

static void *ch_destroy_run(void *arg)
{
	struct ch_destroy *d = arg;
	struct vmb_vm_destroy a = {.vm_id = d->vm};
	d->err = vmb_vm_destroy(d->c, &a);
	return NULL;
}

static void test_prefetch_chains_random(void **state)
{
	(void)state;
	struct vmb_client *c = open_soft(64 * MiB, 256 * MiB);
	uint64_t free0[2], free1[2];
	ch_where(c, 0, free0);
	/* a fixed seed (deterministic in make test), VMB_SEED to explore */
	uint64_t seed = getenv("VMB_SEED") ? test_seed("prefetch_chains_random") : 0x15a77ac2ull;
	unsigned long failed0 = vmb_commit_failed_count();
	unsigned int nerr[3] = {0, 0, 0};
	for (uint32_t round = 0; round < 60; round++) {
		uint32_t bo = bo_new(c, CH_BO, VMB_PLACE_VRAM | VMB_PLACE_SYSTEM), v[3], q[3], s[CH_N];
		bool gone[3] = {false, false, false}, bo_open = true;
		for (int k = 0; k < 3; k++) {
			v[k] = vm_new(c, 0);
			q[k] = rnd_below(&seed, 2) ? queue_new(c, v[k]) : 0;
			bind1(c, v[k], op_map(bo, 0, CH_VA, CH_BO, 0));
		}
		for (uint64_t i = 0; i < 8; i++)
			gpu_write64(c, v[0], CH_VA + i * (CH_BO / 8) + 8 * i, ch_pat(i));
		struct gate g = gate_new(c);
		for (int j = 0; j < CH_N; j++) {
			s[j] = syncobj_new(c, 0);
			int k = j == CH_N - 1 ? 2 : j % 3;
			struct vmb_bind_op op = j == CH_N - 1 ? op_map(bo, 0, CH_VB, CH_BO, 0)
						  : op_prefetch(CH_VA, CH_BO, rnd_below(&seed, 2) ? VMB_REGION_VRAM
												      : VMB_REGION_SYSTEM);
			struct vmb_sync y[2] = {sync_out(s[j]), sync_in(g.h)};
			bind_async(c, v[k], q[k], &op, 1, y, j ? 1 : 2);
		}
		unsigned long fail = rnd_below(&seed, 4); /* the n-th copy fails, 0: none */
		vmb_copy_fail_after(fail, -EIO);
		/* 0: nothing; 1: BO closed; 2: a vm destroyed; 3: a bind queue destroyed; each before the
		 * gate opens, or (4-6) with the first copy in flight (the copy engine held; a vm's destroy
		 * waits for it: another thread's) */
		unsigned int act = (unsigned int)rnd_below(&seed, 7);
		if (act >= 4)
			vmb_copy_hold(true);
		if (act >= 4)
			gate_open(&g);
		if (act % 4 == 1 || act == 4) {
			bo_destroy1(c, bo);
			bo_open = false;
		} else if (act == 2) {
			uint32_t k = (uint32_t)rnd_below(&seed, 3);
			vm_destroy1(c, v[k]);
			gone[k] = true;
		} else if (act == 5) {
			/* a destroy waits for the device work in flight (the held copy): another thread's */
			struct ch_destroy d = {.c = c, .vm = v[rnd_below(&seed, 3)]};
			pthread_t th;
			pthread_create(&th, NULL, ch_destroy_run, &d);
			struct timespec ts = {0, 2000000};
			nanosleep(&ts, NULL);
			vmb_copy_hold(false);
			pthread_join(th, NULL);
			assert_int_equal(d.err, 0);
			for (int k = 0; k < 3; k++)
				gone[k] |= v[k] == d.vm;
		} else if (act % 4 == 3 || act == 6) {
			uint32_t k = (uint32_t)rnd_below(&seed, 3);
			if (q[k]) {
				struct vmb_bind_queue_destroy qd = {.vm_id = v[k], .queue_id = q[k]};
				assert_int_equal(vmb_bind_queue_destroy(c, &qd), 0);
			}
		}
		if (act >= 4)
			vmb_copy_hold(false);
		else
			gate_open(&g);
		for (int j = 0; j < CH_N; j++) {
			int r = __syncobj_wait1(c, s[j], 0, 10 * SEC, 0);
			if (r)
				fail_msg("round %u (seed replay: VMB_SEED) fence %d: wait %d", round, j, r);
			int e = syncobj_error(c, s[j]);
			if (e && e != -EIO && e != -ECANCELED)
				fail_msg("round %u fence %d: %d", round, j, e);
			nerr[e == -EIO ? 1 : e ? 2 : 0]++;
		}
		vmb_copy_fail_after(0, 0);
		for (int k = 0; k < 3; k++) {
			if (gone[k])
				continue;
			int r = ch_check(c, v[k], CH_VA);
			assert_true(r == 0 || r == -EIO);
			if (k == 2 && !r)
				assert_int_equal(ch_check(c, v[k], CH_VB), 0);
		}
		if (bo_open) {
			uint32_t reg = ch_where(c, bo, free1);
			assert_true(reg == VMB_REGION_VRAM || reg == VMB_REGION_SYSTEM);
		}
		validate_client(c);
		uint32_t order = (uint32_t)rnd_below(&seed, 6);
		uint32_t perm[6][3] = {{0, 1, 2}, {0, 2, 1}, {1, 0, 2}, {1, 2, 0}, {2, 0, 1}, {2, 1, 0}};
		for (int k = 0; k < 3; k++)
			if (!gone[perm[order][k]])
				vm_destroy1(c, v[perm[order][k]]);
		if (bo_open)
			bo_destroy1(c, bo);
		struct vmb_syncobj_destroy d;
		for (int j = 0; j < CH_N; j++) {
			d = (struct vmb_syncobj_destroy){.handle = s[j]};
			assert_int_equal(vmb_syncobj_destroy(c, &d), 0);
		}
		d = (struct vmb_syncobj_destroy){.handle = g.h};
		assert_int_equal(vmb_syncobj_destroy(c, &d), 0);
		validate_client(c);
		ch_where(c, 0, free1);
		assert_memory_equal(free1, free0, sizeof(free0));
	}
	assert_true(vmb_commit_failed_count() >= failed0);
	if (getenv("VMB_ATTACK_VERBOSE"))
		printf("fences: %u ok, %u -EIO, %u -ECANCELED\n", nerr[0], nerr[1], nerr[2]);
	assert_int_equal(vmb_client_close(c), 0);
}

/* ---- an exec submitted while an eviction of its vm's VRAM-only BO is in flight ------------- */

struct bg_call {
	struct vmb_client *c;
	uint32_t vm, bo, q, so;
	uint64_t va, size;
	int err;
};

static void *bg_map(void *arg)
{
	struct bg_call *b = arg;
	b->err = __bind1(b->c, b->vm, op_map(b->bo, 0, b->va, b->size, 0));
	return NULL;
}

static void *bg_exec(void *arg)
{
	struct bg_call *b = arg;
	struct vmb_sync y = sync_out(b->so);
	b->err = __exec(b->c, b->q, CMD_VA, &y, 1);
	return NULL;
}

static uint64_t region_count(struct vmb_client *c, bool restores)
{
	struct vmb_region_query q = {.region = VMB_REGION_VRAM};
	assert_int_equal(vmb_region_query(c, &q), 0);
	return restores ? q.restores : q.evictions;
}

/*
 * docs/UAPI.md, "Restore": an evicted BO whose placements exclude SYSTEM goes back to VRAM before
 * the next exec of a vm that maps it; the exec's commands see it in VRAM. Here the exec is called
 * while the eviction (another vm's bind making room) is still in flight, its copy held: the exec
 * must wait for it and restore the BO, so that once the exec has run the BO is in VRAM again
 * (one restore), its store there. (Its restore may find no room while the other vm's MAP is
 * pending: -ENOSPC, nothing queued, and the restarted exec restores it.)
 */
static void test_exec_during_eviction(void **state)
{
	(void)state;
	const uint64_t FLAG_VA = 3ull << 32;
	struct vmb_client *c = open_soft_at("soft:7", 4 * MiB, 64 * MiB);
	gran = granule_of(c);
	uint32_t vm = vm_new(c, 0), other = vm_new(c, 0);
	uint32_t x = bo_new(c, 2 * MiB, VMB_PLACE_VRAM), y = bo_new(c, 4 * MiB, VMB_PLACE_VRAM);
	uint32_t cmd_bo = bo_new(c, G(4 * KiB), VMB_PLACE_SYSTEM), flag_bo = bo_new(c, G(4 * KiB), VMB_PLACE_SYSTEM);
	uint64_t *cmd = bo_cpu(c, cmd_bo), *flag = bo_cpu(c, flag_bo);
	/* the batch: its store to x, "started" in flag[0], then it waits for flag[1] == 1 (its vm
	 * busy meanwhile: x is not evicted again while the test looks where it is) */
	uint32_t n = 0;
	vmb_cmd_store64(cmd, &n, DATA_VA, 0x600d);
	vmb_cmd_store64(cmd, &n, FLAG_VA, 1);
	vmb_cmd_sem_wait(cmd, &n, FLAG_VA + 8, VMB_UFENCE_OP_EQ, 1, ~0ull);
	vmb_cmd_end(cmd, &n);
	bind1(c, vm, op_map(cmd_bo, 0, CMD_VA, G(4 * KiB), VMB_BIND_FLAG_READONLY));
	bind1(c, vm, op_map(flag_bo, 0, FLAG_VA, G(4 * KiB), 0));
	bind1(c, vm, op_map(x, 0, DATA_VA, 2 * MiB, 0));
	uint32_t q = xq_new(c, vm, 0), so = syncobj_new(c, 0);
	struct vmb_sync y0 = sync_out(so);
	__atomic_store_n(&flag[1], 1, __ATOMIC_RELEASE);
	assert_int_equal(__exec(c, q, CMD_VA, &y0, 1), 0); /* the vm's first exec: long past */
	syncobj_wait1(c, so);
	__atomic_store_n(&flag[0], 0, __ATOMIC_RELEASE);
	__atomic_store_n(&flag[1], 0, __ATOMIC_RELEASE);
	struct vmb_bo_query bq = {.handle = x};
	assert_int_equal(vmb_bo_query(c, &bq), 0);
	assert_int_equal(bq.region, VMB_REGION_VRAM);
	uint64_t re0 = region_count(c, true);

	/* another vm's MAP of a BO as large as VRAM: x is evicted, its copy held */
	vmb_copy_hold(true);
	struct bg_call m = {.c = c, .vm = other, .bo = y, .va = DATA_VA, .size = 4 * MiB};
	pthread_t tm, tx;
	pthread_create(&tm, NULL, bg_map, &m);
	struct vmb_client_validate v = {0};
	for (int i = 0; i < 10000 && vmb_client_validate(c, &v) != -EBUSY; i++) {
		struct timespec ts = {0, 1000000};
		nanosleep(&ts, NULL);
	}
	assert_int_equal(vmb_client_validate(c, &v), -EBUSY); /* the eviction is pending */
	struct vmb_syncobj_array a = {.handles = (uint64_t)(uintptr_t)&so, .count = 1};
	assert_int_equal(vmb_syncobj_reset(c, &a), 0);
	struct bg_call e = {.c = c, .q = q, .so = so};
	pthread_create(&tx, NULL, bg_exec, &e);
	struct timespec ts = {0, 20000000};
	nanosleep(&ts, NULL); /* (either order of what follows is correct) */
	vmb_copy_hold(false);
	pthread_join(tx, NULL);
	bool map_joined = false;
	if (e.err == -ENOSPC) {
		/* its restore found no room: y's MAP, pending then, kept y from eviction (docs/UAPI.md:
		 * -ENOSPC, nothing queued); restarted once the MAP is over, it evicts y */
		pthread_join(tm, NULL);
		map_joined = true;
		bg_exec(&e);
	}
	assert_int_equal(e.err, 0);
	/* the exec is running (its store done, waiting for flag[1]): x must be in VRAM */
	for (int i = 0; i < 10000 && !__atomic_load_n(&flag[0], __ATOMIC_ACQUIRE); i++) {
		struct timespec t1 = {0, 1000000};
		nanosleep(&t1, NULL);
	}
	assert_int_equal(__atomic_load_n(&flag[0], __ATOMIC_ACQUIRE), 1);
	assert_int_equal(vmb_bo_query(c, &bq), 0);
	if (bq.region != VMB_REGION_VRAM)
		fail_msg("the exec runs with its VRAM-only BO in SYSTEM (restores +%llu)",
			 (unsigned long long)(region_count(c, true) - re0));
	/* at least x's restore; the device's count may hold one more where timing gives it one:
	 * x restored, evicted again by the MAP's restarted room-making, restored again before the
	 * job starts (seen once in ~80 runs at load 12) */
	assert_true(region_count(c, true) >= re0 + 1);
	__atomic_store_n(&flag[1], 1, __ATOMIC_RELEASE);
	if (!map_joined)
		pthread_join(tm, NULL);
	/* the MAP: done, or -ENOSPC (x busy when it looked: docs/UAPI.md, "-ENOSPC and restart") */
	assert_true(m.err == 0 || m.err == -ENOSPC);
	assert_int_equal(__syncobj_wait1(c, so, 0, 10 * SEC, 0), 0);
	assert_int_equal(syncobj_error(c, so), 0);
	assert_int_equal(bo_read64(c, x, 0), 0x600d);
	validate_client(c);
	assert_int_equal(vmb_client_close(c), 0);
}

/*
 * An exec's restore beside another eviction in flight (s16-attack3): vm V maps A (VRAM or
 * SYSTEM), then B (VRAM only). B is evicted (A kept: a gated exec of vm P maps it) and stays in
 * SYSTEM; then A's eviction is in flight (its copy held: another vm's MAP makes room, C's vm busy
 * behind a gate) when V's exec finds B to restore. The restore looks at A first (an eviction
 * pending: a fence to wait for), then finds no room for B (-ENOSPC, room to make); the eviction
 * it tries finds only A's pending one to wait for. The exec completes once the copies go, with B
 * in VRAM; nothing is leaked (before: the fence reference taken for A was overwritten by the
 * pending eviction's, a fence leaked at every such restore: LeakSanitizer, vmb_fence_create in
 * evict_submit under vmb_vm_restore).
 */
static void test_restore_beside_pending_eviction(void **state)
{
	(void)state;
	struct vmb_client *c = open_soft_at("soft:8", 6 * MiB, 64 * MiB);
	gran = granule_of(c);
	const uint64_t A_VA = 3ull << 32, B_VA = 4ull << 32;
	uint32_t v = vm_new(c, 0), p = vm_new(c, 0), w = vm_new(c, 0), w2 = vm_new(c, 0);
	uint32_t a = bo_new(c, 2 * MiB, VMB_PLACE_VRAM | VMB_PLACE_SYSTEM), b = bo_new(c, 2 * MiB, VMB_PLACE_VRAM);
	uint32_t cbo = bo_new(c, 4 * MiB, VMB_PLACE_VRAM), d = bo_new(c, 2 * MiB, VMB_PLACE_VRAM);
	uint32_t cmd_bo = bo_new(c, G(4 * KiB), VMB_PLACE_SYSTEM);
	uint64_t *cmd = bo_cpu(c, cmd_bo);
	uint32_t n = 0;
	vmb_cmd_store64(cmd, &n, B_VA, 0xb0b);
	vmb_cmd_end(cmd, &n);
	bind1(c, v, op_map(a, 0, A_VA, 2 * MiB, 0)); /* first in V's list of BOs */
	bind1(c, v, op_map(b, 0, B_VA, 2 * MiB, 0));
	bind1(c, v, op_map(cmd_bo, 0, CMD_VA, G(4 * KiB), VMB_BIND_FLAG_READONLY));
	uint32_t qv = xq_new(c, v, 0), so = syncobj_new(c, 0);
	struct vmb_sync out = sync_out(so);
	assert_int_equal(__exec(c, qv, CMD_VA, &out, 1), 0);
	syncobj_wait1(c, so);

	/* B evicted alone: A kept by P's exec behind a gate */
	bind1(c, p, op_map(a, 0, A_VA, 2 * MiB, 0));
	bind1(c, p, op_map(cmd_bo, 0, CMD_VA, G(4 * KiB), VMB_BIND_FLAG_READONLY));
	uint32_t qp = xq_new(c, p, 0), sp = syncobj_new(c, 0);
	struct gate gp = gate_new(c);
	struct vmb_sync ps[2] = {sync_in(gp.h), sync_out(sp)};
	assert_int_equal(__exec(c, qp, CMD_VA, ps, 2), 0);
	bind1(c, w, op_map(cbo, 0, A_VA, 4 * MiB, 0));
	struct vmb_bo_query bq = {.handle = b};
	assert_int_equal(vmb_bo_query(c, &bq), 0);
	assert_int_equal(bq.region, VMB_REGION_SYSTEM);
	gate_open(&gp);
	syncobj_wait1(c, sp);

	/* C kept by W's exec behind a gate; W2's MAP of D evicts A, its copy held */
	bind1(c, w, op_map(cmd_bo, 0, CMD_VA, G(4 * KiB), VMB_BIND_FLAG_READONLY));
	uint32_t qw = xq_new(c, w, 0), sw = syncobj_new(c, 0);
	struct gate gw = gate_new(c);
	struct vmb_sync ws[2] = {sync_in(gw.h), sync_out(sw)};
	assert_int_equal(__exec(c, qw, CMD_VA, ws, 2), 0);
	vmb_copy_hold(true);
	struct bg_call m = {.c = c, .vm = w2, .bo = d, .va = A_VA, .size = 2 * MiB};
	pthread_t tm, tx;
	pthread_create(&tm, NULL, bg_map, &m);
	struct vmb_client_validate val = {0};
	for (int i = 0; i < 10000 && vmb_client_validate(c, &val) != -EBUSY; i++)
		usleep(1000);
	assert_int_equal(vmb_client_validate(c, &val), -EBUSY); /* A's eviction is pending */

	/* V's exec: B to restore, no room, A's eviction in flight */
	struct vmb_syncobj_array ra = {.handles = (uint64_t)(uintptr_t)&so, .count = 1};
	assert_int_equal(vmb_syncobj_reset(c, &ra), 0);
	struct bg_call e = {.c = c, .q = qv, .so = so};
	pthread_create(&tx, NULL, bg_exec, &e);
	usleep(20000); /* (the exec waits for the held copy; either order of what follows is correct) */
	vmb_copy_hold(false);
	pthread_join(tx, NULL);
	pthread_join(tm, NULL);
	if (e.err == -ENOSPC) /* no room once D took A's place: again, D's vm idle now */
		bg_exec(&e);
	assert_int_equal(e.err, 0);
	assert_true(m.err == 0 || m.err == -ENOSPC);
	assert_int_equal(__syncobj_wait1(c, so, 0, 10 * SEC, 0), 0);
	assert_int_equal(syncobj_error(c, so), 0);
	assert_int_equal(vmb_bo_query(c, &bq), 0);
	assert_int_equal(bq.region, VMB_REGION_VRAM);
	assert_int_equal(gpu_read64(c, v, B_VA), 0xb0b);
	gate_open(&gw);
	syncobj_wait1(c, sw);
	validate_client(c);
	assert_int_equal(vmb_client_close(c), 0);
}

/* Bind jobs pending on the client's device (evictions included). */
static unsigned int device_pending_jobs(struct vmb_client *c)
{
	unsigned int n = 0;
	struct vmb_list *pos;
	vmb_dev_lock(c->dev);
	vmb_list_for_each(pos, &c->dev->pending)
		n++;
	vmb_dev_unlock(c->dev);
	return n;
}

/*
 * An exec's restore beside more evictions in flight than one wait holds (s16-attack3): vm V maps
 * NA BOs that may live in VRAM or SYSTEM, then B (VRAM only, evicted and in SYSTEM); NA other
 * vms' MAPs each evict one of the NA BOs, their copies held (NA evictions pending, a fence each).
 * V's exec finds B to restore: its restore looks at the NA BOs first, then B. It waits for the
 * evictions (all of them or some at a time) and restores B once the copies go: the exec
 * completes, B in VRAM. Before: the restore collected one fence per pending eviction into an array
 * of 8 (WAIT_MAX) with no bound: the 9th overwrote the count after it (UBSan: index 8 out of
 * bounds for 'struct vmb_fence *[8]'; in a plain build a wild count, then a crash or a hang).
 */
#define NA 10
static void test_restore_beside_many_evictions(void **state)
{
	(void)state;
	struct vmb_client *c = open_soft_at("soft:9", (NA + 1) * 2 * MiB, 128 * MiB);
	gran = granule_of(c);
	const uint64_t A_VA = 3ull << 32, B_VA = 4ull << 32;
	uint32_t v = vm_new(c, 0), p = vm_new(c, 0), w = vm_new(c, 0);
	uint32_t a[NA], b, cbo, cmd_bo = bo_new(c, G(4 * KiB), VMB_PLACE_SYSTEM);
	uint64_t *cmd = bo_cpu(c, cmd_bo);
	uint32_t n = 0;
	vmb_cmd_store64(cmd, &n, B_VA, 0xb0b);
	vmb_cmd_end(cmd, &n);
	for (int i = 0; i < NA; i++) {
		a[i] = bo_new(c, 2 * MiB, VMB_PLACE_VRAM | VMB_PLACE_SYSTEM);
		bind1(c, v, op_map(a[i], 0, A_VA + (uint64_t)i * 2 * MiB, 2 * MiB, 0)); /* V's list: A's first */
		bind1(c, p, op_map(a[i], 0, A_VA + (uint64_t)i * 2 * MiB, 2 * MiB, 0));
	}
	b = bo_new(c, 2 * MiB, VMB_PLACE_VRAM);
	cbo = bo_new(c, 2 * MiB, VMB_PLACE_VRAM);
	bind1(c, v, op_map(b, 0, B_VA, 2 * MiB, 0));
	uint32_t vms[3] = {v, p, w}, xq[3], so[3];
	for (int i = 0; i < 3; i++) {
		bind1(c, vms[i], op_map(cmd_bo, 0, CMD_VA, G(4 * KiB), VMB_BIND_FLAG_READONLY));
		xq[i] = xq_new(c, vms[i], 0);
		so[i] = syncobj_new(c, 0);
	}
	struct vmb_sync out = sync_out(so[0]);
	assert_int_equal(__exec(c, xq[0], CMD_VA, &out, 1), 0);
	syncobj_wait1(c, so[0]);

	/* B evicted alone (the A's kept by P's exec behind a gate), then C kept by W's */
	struct gate gp = gate_new(c), gw = gate_new(c);
	struct vmb_sync ps[2] = {sync_in(gp.h), sync_out(so[1])};
	assert_int_equal(__exec(c, xq[1], CMD_VA, ps, 2), 0);
	bind1(c, w, op_map(cbo, 0, A_VA, 2 * MiB, 0));
	struct vmb_bo_query bq = {.handle = b};
	assert_int_equal(vmb_bo_query(c, &bq), 0);
	assert_int_equal(bq.region, VMB_REGION_SYSTEM);
	struct vmb_sync ws[2] = {sync_in(gw.h), sync_out(so[2])};
	assert_int_equal(__exec(c, xq[2], CMD_VA, ws, 2), 0);
	gate_open(&gp);
	syncobj_wait1(c, so[1]);

	/* NA MAPs of other vms, one eviction of an A each, their copies held */
	vmb_copy_hold(true);
	struct bg_call m[NA];
	pthread_t tm[NA], tx;
	for (int i = 0; i < NA; i++) {
		m[i] = (struct bg_call){.c = c, .vm = vm_new(c, 0), .bo = bo_new(c, 2 * MiB, VMB_PLACE_VRAM),
					.va = A_VA, .size = 2 * MiB};
		pthread_create(&tm[i], NULL, bg_map, &m[i]);
		for (int k = 0; k < 10000 && device_pending_jobs(c) < (unsigned int)i + 1; k++)
			usleep(1000);
		assert_int_equal(device_pending_jobs(c), i + 1);
	}

	/* V's exec: B to restore, no room, NA evictions in flight */
	struct vmb_syncobj_array ra = {.handles = (uint64_t)(uintptr_t)&so[0], .count = 1};
	assert_int_equal(vmb_syncobj_reset(c, &ra), 0);
	struct bg_call e = {.c = c, .q = xq[0], .so = so[0]};
	pthread_create(&tx, NULL, bg_exec, &e);
	usleep(20000); /* (the exec waits for the held copies; either order of what follows is correct) */
	vmb_copy_hold(false);
	pthread_join(tx, NULL);
	for (int i = 0; i < NA; i++) {
		pthread_join(tm[i], NULL);
		assert_true(m[i].err == 0 || m[i].err == -ENOSPC);
	}
	if (e.err == -ENOSPC) /* no room once the MAPs took the A's places: again, their vms idle now */
		bg_exec(&e);
	assert_int_equal(e.err, 0);
	assert_int_equal(__syncobj_wait1(c, so[0], 0, 10 * SEC, 0), 0);
	assert_int_equal(syncobj_error(c, so[0]), 0);
	assert_int_equal(vmb_bo_query(c, &bq), 0);
	assert_int_equal(bq.region, VMB_REGION_VRAM);
	assert_int_equal(gpu_read64(c, v, B_VA), 0xb0b);
	gate_open(&gw);
	syncobj_wait1(c, so[2]);
	validate_client(c);
	assert_int_equal(vmb_client_close(c), 0);
}

/*
 * Handles reused while an exec waits in its call for a restore (s16-attack3; docs/UAPI.md: a call
 * that waits holds what its handles named at entry): vm V's VRAM-only B is evicted; V's exec must
 * restore it, which evicts W's C, its copy held: the exec waits. Meanwhile its out-syncobj is
 * destroyed and the handle taken by a new syncobj, and (@queue) its exec queue is destroyed and a
 * new queue of V created. Once the copy goes: with the queue destroyed the exec fails -ENOENT,
 * nothing ran (the new queue has done nothing, B's word unwritten); else it runs (0): B holds its
 * store. Either way the new syncobj got no fence.
 */
static void exec_handles_reused(bool queue)
{
	struct vmb_client *c = open_soft_at("soft:10", 2 * MiB, 64 * MiB);
	gran = granule_of(c);
	const uint64_t B_VA = 3ull << 32;
	uint32_t v = vm_new(c, 0), w = vm_new(c, 0);
	uint32_t b = bo_new(c, 2 * MiB, VMB_PLACE_VRAM), cbo = bo_new(c, 2 * MiB, VMB_PLACE_VRAM);
	uint32_t cmd_bo = bo_new(c, G(4 * KiB), VMB_PLACE_SYSTEM);
	uint64_t *cmd = bo_cpu(c, cmd_bo);
	uint32_t n = 0;
	vmb_cmd_store64(cmd, &n, B_VA + 8, 0x5eed);
	vmb_cmd_end(cmd, &n);
	bind1(c, v, op_map(b, 0, B_VA, 2 * MiB, 0));
	bind1(c, v, op_map(cmd_bo, 0, CMD_VA, G(4 * KiB), VMB_BIND_FLAG_READONLY));
	bind1(c, w, op_map(cbo, 0, B_VA, 2 * MiB, 0)); /* B evicted (V idle) */
	struct vmb_bo_query bq = {.handle = b};
	assert_int_equal(vmb_bo_query(c, &bq), 0);
	assert_int_equal(bq.region, VMB_REGION_SYSTEM);

	uint32_t qv = xq_new(c, v, 0), so = syncobj_new(c, 0);
	vmb_copy_hold(true);
	struct bg_call e = {.c = c, .q = qv, .so = so};
	pthread_t tx;
	pthread_create(&tx, NULL, bg_exec, &e);
	struct vmb_client_validate val = {0};
	for (int i = 0; i < 10000 && vmb_client_validate(c, &val) != -EBUSY; i++)
		usleep(1000);
	assert_int_equal(vmb_client_validate(c, &val), -EBUSY); /* C's eviction is pending */
	struct vmb_syncobj_destroy sd = {.handle = so};
	assert_int_equal(vmb_syncobj_destroy(c, &sd), 0);
	uint32_t so2 = syncobj_new(c, 0), q2 = 0;
	if (queue) {
		xq_destroy(c, qv);
		q2 = xq_new(c, v, 0);
	}
	vmb_copy_hold(false);
	pthread_join(tx, NULL);
	assert_int_equal(e.err, queue ? -ENOENT : 0);
	if (queue) {
		struct vmb_exec_queue_query qq = {.exec_queue_id = q2};
		assert_int_equal(vmb_exec_queue_query(c, &qq), 0);
		assert_int_equal(qq.jobs_done, 0);
		assert_int_equal(gpu_read64(c, v, B_VA + 8), 0);
	} else {
		for (int i = 0; i < 10000 && gpu_read64(c, v, B_VA + 8) != 0x5eed; i++)
			usleep(1000);
		assert_int_equal(gpu_read64(c, v, B_VA + 8), 0x5eed);
	}
	/* the new syncobj under the old handle: no fence (a wait for one: -EINVAL) */
	assert_int_equal(__syncobj_wait1(c, so2, 0, 0, 0), -EINVAL);
	struct vmb_client_validate v2 = {0};
	for (int i = 0; i < 10000 && vmb_client_validate(c, &v2) == -EBUSY; i++)
		usleep(1000);
	validate_client(c);
	assert_int_equal(vmb_client_close(c), 0);
}

static void test_exec_restore_syncobj_reused(void **state)
{
	(void)state;
	exec_handles_reused(false);
}

static void test_exec_restore_queue_reused(void **state)
{
	(void)state;
	exec_handles_reused(true);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_exec_restore_syncobj_reused),
		cmocka_unit_test(test_exec_restore_queue_reused),
		cmocka_unit_test(test_restore_beside_many_evictions),
		cmocka_unit_test(test_restore_beside_pending_eviction),
		cmocka_unit_test(test_first_execs_race),
		cmocka_unit_test(test_exec_follows_bind_two_queues),
		cmocka_unit_test(test_exec_queue_destroy_race),
		cmocka_unit_test(test_out_syncobj_queue_order),
		cmocka_unit_test(test_exec_during_eviction),
		cmocka_unit_test(test_pt_pool_exhausted_caches_warm),
		cmocka_unit_test(test_pt_pool_parallel_no_spurious),
		cmocka_unit_test(test_big_calls_unwind),
		cmocka_unit_test(test_big_calls_two_queues),
		cmocka_unit_test(test_prefetch_chains_random),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
