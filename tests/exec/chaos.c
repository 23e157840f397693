/* SPDX-License-Identifier: MIT */
/*
 * Chaos with the data checked through the GPU (session 16's attacks, written from the contract:
 * docs/UAPI.md). BOs that may live in VRAM or SYSTEM are bound in every vm of the client, VRAM
 * holds half of them; at once:
 *   - exec threads (a vm, an exec queue and a bind queue each) pipeline execs that ATOMIC_ADD
 *     their own counter word in a random BO and STORE64 a sequence number beside it, some behind
 *     an asynchronous re-MAP of that BO (UNMAP + MAP on their bind queue, the exec's in-fence its
 *     out-fence) or a PREFETCH of it of their own;
 *   - a prefetch thread moves random BOs between VRAM and SYSTEM (asynchronous on its own queue
 *     or its vm's default one, synchronous), through a vm of its own;
 *   - an evictor thread binds, fills and unbinds a BO as large as VRAM (evictions and restores
 *     of every other BO);
 *   - a reader thread reads counters through its own vm (vmb_vm_access, the GPU's view): a counter
 *     never goes down.
 * Every exec's fence signals (10 s) without error, no queue is banned; at the end every counter
 * is exactly the number of execs that added to it and every sequence word its thread's last
 * (no write lost in a move, a restore or an eviction). Then the same with the vms destroyed and
 * the client closed while the last wave is in flight. The seed is printed (VMB_SEED replays).
 */
#include "lib/harness.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#define SEC 1000000000ll

static uint64_t gran = 4096;
#define G(x) (((x) + gran - 1) / gran * gran)

#define CMD_VA (1ull << 32)
#define DATA_VA (2ull << 32)
#define NB 6     /* shared BOs */
#define NT 4     /* exec threads */
#define RING 4   /* execs in flight per thread */
#define STEPS 400

static uint64_t bosz;

struct chaos {
	struct vmb_client *c;
	uint32_t bo[NB];
	atomic_int stop;
	atomic_int failed;
	uint64_t seed;
	bool vram_only; /* the odd BOs VRAM only: every exec of a vm restores them */
};

/* A PREFETCH region for BO @i: SYSTEM only where its placements allow it. */
static uint32_t region_for(const struct chaos *ch, int i, uint64_t r)
{
	return ch->vram_only && (i & 1) ? VMB_REGION_VRAM : (uint32_t)(r & 1);
}

static uint64_t bo_va(int i) { return DATA_VA + (uint64_t)i * bosz; }

#define FAIL(ch, ...)                                                                          \
	do {                                                                                   \
		print_error(__VA_ARGS__);                                                      \
		atomic_store(&(ch)->failed, 1);                                                \
	} while (0)

static int retry_enospc(int r)
{
	if (r == -ENOSPC)
		usleep(500);
	return r == -ENOSPC;
}

static uint32_t vm_with_bos(struct chaos *ch)
{
	uint32_t vm = vm_new(ch->c, 0);
	for (int i = 0; i < NB; i++) {
		struct vmb_bind_op op = op_map(ch->bo[i], 0, bo_va(i), bosz, 0);
		int r;
		while (retry_enospc(r = __bind_ops(ch->c, vm, &op, 1)))
			;
		assert_int_equal(r, 0);
	}
	return vm;
}

/* ---- exec threads ---- */

struct worker {
	struct chaos *ch;
	int t;
	uint32_t vm, xq, bq, cmd_bo;
	uint64_t *cmd;
	uint32_t so[RING], bso[RING];
	uint64_t count[NB], last_seq[NB];
	uint64_t rng;
	int execs, remaps, prefetches;
};

static int exec_wait(struct worker *w, int k)
{
	int r = __syncobj_wait1(w->ch->c, w->so[k], 0, 10 * SEC, 0);
	if (r)
		return r;
	return syncobj_error(w->ch->c, w->so[k]);
}

static void *worker_run(void *arg)
{
	struct worker *w = arg;
	struct chaos *ch = w->ch;
	bool used[RING] = {false};
	for (int step = 0; step < STEPS && !atomic_load(&ch->failed); step++) {
		int k = step % RING;
		if (used[k]) {
			int r = exec_wait(w, k);
			if (r) {
				FAIL(ch, "thread %d step %d: exec fence %d (seed %llu)\n", w->t, step, r,
				     (unsigned long long)ch->seed);
				break;
			}
		}
		int i = (int)rnd_below(&w->rng, NB);
		uint64_t seq = ((uint64_t)w->t << 32) | (uint64_t)step;
		uint64_t *b = w->cmd + (size_t)k * 64;
		uint32_t n = 0;
		vmb_cmd_atomic_add(b, &n, bo_va(i) + (uint64_t)w->t * 8, 1);
		vmb_cmd_store64(b, &n, bo_va(i) + (uint64_t)(64 + w->t) * 8, seq);
		vmb_cmd_end(b, &n);
		struct vmb_sync s[2] = {sync_out(w->so[k])};
		uint32_t ns = 1;
		uint64_t pick = rnd_below(&w->rng, 16);
		if (pick < 2) { /* re-MAP the BO first: UNMAP + MAP in one call */
			struct vmb_bind_op ops[2] = {op_unmap(bo_va(i), bosz), op_map(ch->bo[i], 0, bo_va(i), bosz, 0)};
			struct vmb_sync bs = sync_out(w->bso[k]);
			int r;
			while (retry_enospc(r = __bind_async(ch->c, w->vm, pick ? w->bq : 0, ops, 2, &bs, 1)))
				;
			if (r) {
				FAIL(ch, "thread %d: re-MAP %d (seed %llu)\n", w->t, r, (unsigned long long)ch->seed);
				break;
			}
			s[ns++] = sync_in(w->bso[k]);
			w->remaps++;
		} else if (pick < 4) { /* PREFETCH it first (to either region) */
			struct vmb_bind_op op = op_prefetch(bo_va(i), bosz, region_for(ch, i, rnd_next(&w->rng)));
			struct vmb_sync bs = sync_out(w->bso[k]);
			int r = __bind_async(ch->c, w->vm, w->bq, &op, 1, &bs, 1);
			if (r && r != -ENOSPC) {
				FAIL(ch, "thread %d: PREFETCH %d (seed %llu)\n", w->t, r, (unsigned long long)ch->seed);
				break;
			}
			if (!r) {
				s[ns++] = sync_in(w->bso[k]);
				w->prefetches++;
			}
		}
		struct vmb_exec e = {.exec_queue_id = w->xq, .address = CMD_VA + (uint64_t)k * 512, .num_syncs = ns,
				     .syncs = (uint64_t)(uintptr_t)s};
		int r;
		while (retry_enospc(r = vmb_exec(ch->c, &e)))
			;
		if (r) {
			FAIL(ch, "thread %d step %d: exec %d (seed %llu)\n", w->t, step, r, (unsigned long long)ch->seed);
			break;
		}
		used[k] = true;
		w->count[i]++;
		w->last_seq[i] = seq;
		w->execs++;
	}
	for (int k = 0; k < RING; k++)
		if (used[k] && !atomic_load(&ch->failed)) {
			int r = exec_wait(w, k);
			if (r)
				FAIL(ch, "thread %d: last exec fence %d (seed %llu)\n", w->t, r, (unsigned long long)ch->seed);
		}
	return NULL;
}

/* ---- the prefetch thread ---- */

struct mover {
	struct chaos *ch;
	uint32_t vm, q, so;
	uint64_t rng;
	int ok, enospc, moves;
};

static void *mover_run(void *arg)
{
	struct mover *m = arg;
	struct chaos *ch = m->ch;
	while (!atomic_load(&ch->stop) && !atomic_load(&ch->failed)) {
		int i = (int)rnd_below(&m->rng, NB);
		struct vmb_bind_op op = op_prefetch(bo_va(i), bosz, region_for(ch, i, rnd_next(&m->rng)));
		uint64_t how = rnd_below(&m->rng, 3);
		int r;
		if (how == 2) {
			r = __bind_ops(ch->c, m->vm, &op, 1);
		} else {
			struct vmb_sync s = sync_out(m->so);
			r = __bind_async(ch->c, m->vm, how ? m->q : 0, &op, 1, &s, 1);
			if (!r && rnd_below(&m->rng, 2)) {
				r = __syncobj_wait1(ch->c, m->so, 0, 10 * SEC, 0);
				if (!r)
					r = syncobj_error(ch->c, m->so);
			}
		}
		if (r == -ENOSPC) {
			m->enospc++;
			usleep(200);
		} else if (r) {
			FAIL(ch, "PREFETCH (%llu) of BO %d: %d (seed %llu)\n", (unsigned long long)how, i, r,
			     (unsigned long long)ch->seed);
		} else {
			m->ok++;
		}
	}
	return NULL;
}

/* ---- the evictor ---- */

struct evictor {
	struct chaos *ch;
	uint32_t vm, xq, bo, cmd_bo, so;
	uint64_t *cmd, size;
	int rounds;
};

#define BIG_VA (8ull << 32)

static void *evictor_run(void *arg)
{
	struct evictor *v = arg;
	struct chaos *ch = v->ch;
	for (uint32_t round = 1; !atomic_load(&ch->stop) && !atomic_load(&ch->failed); round++) {
		struct vmb_bind_op op = op_map(v->bo, 0, BIG_VA, v->size, 0);
		int r;
		while (retry_enospc(r = __bind_ops(ch->c, v->vm, &op, 1)) && !atomic_load(&ch->stop))
			;
		if (r == -ENOSPC)
			break;
		if (r) {
			FAIL(ch, "evictor MAP %d (seed %llu)\n", r, (unsigned long long)ch->seed);
			break;
		}
		uint32_t n = 0;
		vmb_cmd_fill(v->cmd, &n, BIG_VA, v->size, round);
		vmb_cmd_end(v->cmd, &n);
		struct vmb_sync s = sync_out(v->so);
		struct vmb_exec e = {.exec_queue_id = v->xq, .address = CMD_VA, .num_syncs = 1, .syncs = (uint64_t)(uintptr_t)&s};
		while (retry_enospc(r = vmb_exec(ch->c, &e)) && !atomic_load(&ch->stop))
			;
		if (r && r != -ENOSPC) {
			FAIL(ch, "evictor exec %d (seed %llu)\n", r, (unsigned long long)ch->seed);
			break;
		}
		if (!r) {
			r = __syncobj_wait1(ch->c, v->so, 0, 10 * SEC, 0);
			if (!r)
				r = syncobj_error(ch->c, v->so);
			if (r) {
				FAIL(ch, "evictor exec fence %d (seed %llu)\n", r, (unsigned long long)ch->seed);
				break;
			}
			uint64_t x = gpu_read64(ch->c, v->vm, BIG_VA + v->size - 8);
			if (x != ((uint64_t)round << 32 | round)) {
				FAIL(ch, "evictor: fill %u read %#llx (seed %llu)\n", round, (unsigned long long)x,
				     (unsigned long long)ch->seed);
				break;
			}
		}
		struct vmb_bind_op un = op_unmap(BIG_VA, v->size);
		r = __bind_ops(ch->c, v->vm, &un, 1);
		if (r) {
			FAIL(ch, "evictor UNMAP %d (seed %llu)\n", r, (unsigned long long)ch->seed);
			break;
		}
		v->rounds++;
	}
	return NULL;
}

/* ---- the reader ---- */

struct reader {
	struct chaos *ch;
	uint32_t vm;
	uint64_t seen[NB][NT];
	int reads;
};

static void *reader_run(void *arg)
{
	struct reader *d = arg;
	struct chaos *ch = d->ch;
	while (!atomic_load(&ch->stop) && !atomic_load(&ch->failed)) {
		for (int i = 0; i < NB; i++) {
			uint64_t v[NT];
			int r = __gpu_rw(ch->c, d->vm, bo_va(i), v, sizeof(v), false);
			if (r) {
				FAIL(ch, "reader: %d (seed %llu)\n", r, (unsigned long long)ch->seed);
				return NULL;
			}
			for (int t = 0; t < NT; t++) {
				if (v[t] < d->seen[i][t])
					FAIL(ch, "BO %d counter %d went back: %llu after %llu (seed %llu)\n", i, t,
					     (unsigned long long)v[t], (unsigned long long)d->seen[i][t],
					     (unsigned long long)ch->seed);
				d->seen[i][t] = v[t];
			}
			d->reads++;
		}
	}
	return NULL;
}

/* validate_client once the work left in flight (an asynchronous PREFETCH not waited for, an
 * eviction an exec's restore started) is over: -EBUSY until then (10 s). */
static void validate_settled(struct vmb_client *c)
{
	struct vmb_client_validate v = {0};
	for (int i = 0; i < 10000 && vmb_client_validate(c, &v) == -EBUSY; i++)
		usleep(1000);
	validate_client(c);
}

static uint32_t xq_new(struct vmb_client *c, uint32_t vm)
{
	struct vmb_exec_queue_create a = {.vm_id = vm};
	assert_int_equal(vmb_exec_queue_create(c, &a), 0);
	return a.exec_queue_id;
}

static bool xq_banned(struct vmb_client *c, uint32_t q)
{
	struct vmb_exec_queue_query a = {.exec_queue_id = q};
	assert_int_equal(vmb_exec_queue_query(c, &a), 0);
	return a.flags & VMB_EXEC_QUEUE_BANNED;
}

/* @teardown: the last wave is left in flight and the vms destroyed (or the client closed) under it */
static void run_chaos(const char *name, int teardown, bool vram_only)
{
	struct chaos ch = {.seed = test_seed(name), .vram_only = vram_only};
	struct vmb_client *c = open_soft(64 * MiB, 64 * MiB);
	gran = granule_of(c);
	bosz = G(1 * MiB); /* even, for 2 MiB units of VRAM */
	assert_int_equal(vmb_client_close(c), 0);
	/* VRAM holds half of the shared BOs (and the evictor's BO is as large as VRAM) */
	uint64_t vram = (NB / 2 * bosz + 2 * MiB - 1) / (2 * MiB) * (2 * MiB);
	c = ch.c = open_soft(vram, 512 * MiB);
	for (int i = 0; i < NB; i++)
		ch.bo[i] = bo_new(c, bosz, vram_only && (i & 1) ? VMB_PLACE_VRAM : VMB_PLACE_VRAM | VMB_PLACE_SYSTEM);

	struct worker w[NT];
	pthread_t wt[NT], mt, et, rt;
	for (int t = 0; t < NT; t++) {
		w[t] = (struct worker){.ch = &ch, .t = t, .rng = ch.seed * 31 + (uint64_t)t};
		w[t].vm = vm_with_bos(&ch);
		w[t].cmd_bo = bo_new(c, G(64 * KiB), place_cpu(c));
		w[t].cmd = bo_cpu(c, w[t].cmd_bo);
		bind1(c, w[t].vm, op_map(w[t].cmd_bo, 0, CMD_VA, G(64 * KiB), VMB_BIND_FLAG_READONLY));
		w[t].xq = xq_new(c, w[t].vm);
		w[t].bq = queue_new(c, w[t].vm);
		for (int k = 0; k < RING; k++) {
			w[t].so[k] = syncobj_new(c, 0);
			w[t].bso[k] = syncobj_new(c, 0);
		}
	}
	struct mover m = {.ch = &ch, .rng = ch.seed * 17 + 5};
	m.vm = vm_with_bos(&ch);
	m.q = queue_new(c, m.vm);
	m.so = syncobj_new(c, 0);
	struct evictor v = {.ch = &ch, .size = vram};
	v.vm = vm_new(c, 0);
	v.bo = bo_new(c, vram, VMB_PLACE_VRAM | VMB_PLACE_SYSTEM);
	v.cmd_bo = bo_new(c, G(64 * KiB), place_cpu(c));
	v.cmd = bo_cpu(c, v.cmd_bo);
	bind1(c, v.vm, op_map(v.cmd_bo, 0, CMD_VA, G(64 * KiB), VMB_BIND_FLAG_READONLY));
	v.xq = xq_new(c, v.vm);
	v.so = syncobj_new(c, 0);
	struct reader *d = calloc(1, sizeof(*d));
	d->ch = &ch;
	d->vm = vm_with_bos(&ch);

	pthread_create(&mt, NULL, mover_run, &m);
	pthread_create(&et, NULL, evictor_run, &v);
	pthread_create(&rt, NULL, reader_run, d);
	for (int t = 0; t < NT; t++)
		pthread_create(&wt[t], NULL, worker_run, &w[t]);
	for (int t = 0; t < NT; t++)
		pthread_join(wt[t], NULL);
	atomic_store(&ch.stop, 1);
	pthread_join(mt, NULL);
	pthread_join(et, NULL);
	pthread_join(rt, NULL);
	assert_int_equal(atomic_load(&ch.failed), 0);

	int execs = 0;
	for (int t = 0; t < NT; t++) {
		execs += w[t].execs;
		assert_false(xq_banned(c, w[t].xq));
	}
	struct vmb_region_query rq = {.region = VMB_REGION_VRAM};
	assert_int_equal(vmb_region_query(c, &rq), 0);
	printf("%s: %d execs, %d re-MAPs, %d+%d PREFETCHes (%d -ENOSPC), %d evictor rounds, %d reads, "
	       "%llu evictions, %llu restores\n", name, execs, w[0].remaps + w[1].remaps + w[2].remaps + w[3].remaps,
	       w[0].prefetches + w[1].prefetches + w[2].prefetches + w[3].prefetches, m.ok, m.enospc, v.rounds,
	       d->reads, (unsigned long long)rq.evictions, (unsigned long long)rq.restores);
	for (int i = 0; i < NB; i++)
		for (int t = 0; t < NT; t++) {
			uint64_t got = gpu_read64(c, d->vm, bo_va(i) + (uint64_t)t * 8);
			if (got != w[t].count[i])
				print_error("BO %d counter %d: %llu, %llu execs added (seed %llu)\n", i, t,
					    (unsigned long long)got, (unsigned long long)w[t].count[i],
					    (unsigned long long)ch.seed);
			assert_int_equal(got, w[t].count[i]);
			assert_int_equal(gpu_read64(c, d->vm, bo_va(i) + (uint64_t)(64 + t) * 8), w[t].last_seq[i]);
		}
	validate_settled(c);

	if (teardown) {
		/* a last wave in flight: execs, PREFETCHes both ways on two queues, a re-MAP */
		for (int t = 0; t < NT; t++) {
			for (int k = 0; k < RING; k++) {
				int i = (k + t) % NB;
				struct vmb_bind_op op = op_prefetch(bo_va(i), bosz, region_for(&ch, i, (uint64_t)k));
				int r = __bind_async(c, w[t].vm, k & 1 ? w[t].bq : 0, &op, 1, NULL, 0);
				assert_true(r == 0 || r == -ENOSPC);
				uint64_t *b = w[t].cmd + (size_t)k * 64;
				uint32_t n = 0;
				vmb_cmd_atomic_add(b, &n, bo_va(i) + (uint64_t)t * 8, 1);
				vmb_cmd_end(b, &n);
				struct vmb_exec e = {.exec_queue_id = w[t].xq, .address = CMD_VA + (uint64_t)k * 512};
				r = vmb_exec(c, &e);
				assert_true(r == 0 || r == -ENOSPC);
			}
		}
		if (teardown == 1) {
			for (int t = 0; t < NT; t++) {
				struct vmb_vm_destroy dd = {.vm_id = w[t].vm};
				assert_int_equal(vmb_vm_destroy(c, &dd), 0);
			}
			for (int i = 0; i < NB; i++)
				bo_destroy1(c, ch.bo[i]);
			struct vmb_vm_destroy dd = {.vm_id = m.vm};
			assert_int_equal(vmb_vm_destroy(c, &dd), 0);
			validate_settled(c);
		}
	}
	free(d);
	assert_int_equal(vmb_client_close(c), 0);
}

static void test_chaos(void **state)
{
	(void)state;
	run_chaos("chaos", 0, false);
}

static void test_chaos_destroy_in_flight(void **state)
{
	(void)state;
	run_chaos("chaos-destroy", 1, false);
}

static void test_chaos_vram_only(void **state)
{
	(void)state;
	run_chaos("chaos-vram-only", 0, true);
}

static void test_chaos_vram_only_destroy(void **state)
{
	(void)state;
	run_chaos("chaos-vram-only-destroy", 1, true);
}

static void test_chaos_close_in_flight(void **state)
{
	(void)state;
	run_chaos("chaos-close", 2, false);
}

/*
 * The GPU view polls and releases a running exec: the batch stores "started", waits (SEM_WAIT)
 * for a flag that the test writes through vmb_vm_access, adds to a counter and stores "done";
 * the test reads "started" through vmb_vm_access while the engine runs, then writes the flag.
 * The exec completes, every word as written. (Run under ThreadSanitizer: the library's own
 * accesses to the device's memory, the engine's and the GPU view's, met there without order,
 * as a GPU's and a CPU's do; the device defines them, C's memory model does not see them.)
 */
static void test_gpu_view_meets_engine(void **state)
{
	(void)state;
	struct vmb_client *c = open_soft(64 * MiB, 64 * MiB);
	gran = granule_of(c);
	uint32_t vm = vm_new(c, 0);
	uint32_t cmd_bo = bo_new(c, G(4 * KiB), place_cpu(c)), data_bo = bo_new(c, G(4 * KiB), VMB_PLACE_VRAM);
	uint64_t *cmd = bo_cpu(c, cmd_bo);
	bind1(c, vm, op_map(cmd_bo, 0, CMD_VA, G(4 * KiB), VMB_BIND_FLAG_READONLY));
	bind1(c, vm, op_map(data_bo, 0, DATA_VA, G(4 * KiB), 0));
	uint32_t n = 0;
	vmb_cmd_store64(cmd, &n, DATA_VA, 1);                                   /* started */
	vmb_cmd_sem_wait(cmd, &n, DATA_VA + 8, VMB_UFENCE_OP_EQ, 1, ~0ull);     /* the flag */
	for (int i = 0; i < 16; i++)
		vmb_cmd_atomic_add(cmd, &n, DATA_VA + 16, 3);
	vmb_cmd_store64(cmd, &n, DATA_VA + 24, 7);                              /* done */
	vmb_cmd_end(cmd, &n);
	uint32_t xq = xq_new(c, vm), so = syncobj_new(c, 0);
	struct vmb_sync s = sync_out(so);
	struct vmb_exec e = {.exec_queue_id = xq, .address = CMD_VA, .num_syncs = 1, .syncs = (uint64_t)(uintptr_t)&s};
	assert_int_equal(vmb_exec(c, &e), 0);
	int i = 0;
	while (gpu_read64(c, vm, DATA_VA) != 1 && i++ < 10000) /* 10 s */
		usleep(1000);
	assert_int_equal(gpu_read64(c, vm, DATA_VA), 1);
	for (int k = 0; k < 100; k++) /* the engine polls the flag meanwhile */
		assert_int_equal(gpu_read64(c, vm, DATA_VA + 8), 0);
	gpu_write64(c, vm, DATA_VA + 8, 1);
	for (int k = 0; k < 1000 && gpu_read64(c, vm, DATA_VA + 24) != 7; k++) /* reads under the adds */
		(void)gpu_read64(c, vm, DATA_VA + 16);
	syncobj_wait1(c, so);
	assert_int_equal(syncobj_error(c, so), 0);
	assert_int_equal(gpu_read64(c, vm, DATA_VA + 16), 48);
	assert_int_equal(gpu_read64(c, vm, DATA_VA + 24), 7);
	assert_false(xq_banned(c, xq));
	validate_client(c);
	assert_int_equal(vmb_client_close(c), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_gpu_view_meets_engine),
		cmocka_unit_test(test_chaos),
		cmocka_unit_test(test_chaos_destroy_in_flight),
		cmocka_unit_test(test_chaos_close_in_flight),
		cmocka_unit_test(test_chaos_vram_only),
		cmocka_unit_test(test_chaos_vram_only_destroy),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
