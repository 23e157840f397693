/* SPDX-License-Identifier: MIT */
/*
 * Attacks on what session 14 changed, written from the contract (docs/UAPI.md, the headers):
 * execs pipelined behind binds that re-map their source, with other threads binding on the vm;
 * long copies through page tables another thread re-maps with no order between them (each word
 * the old or the new BO's, or a read fault reported on the source range), the vm destroyed under
 * a running exec and its BO's memory reused (never read); VA edges (the first and last granule,
 * overflow, a vm of one granule); many vms with many mappings created and destroyed (memory
 * back); combining under signals, a caller whose multi-op calls fail late (unwound, errno its
 * own), an asynchronous neighbour with gated binds (-EINTR only), the vm destroyed mid-run; fork()
 * while binds are combined, the child opening its own client. (A MAP of a moving BO split,
 * re-mapped, unmapped, its BO closed, its vms destroyed, and pipelines of a moving BO: vm/prefetch.c.)
 * Integrated shape (4 KiB granules) only.
 */
#include "lib/harness.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <signal.h>
#include <sys/wait.h>

#include "core/alloc.h"
#include "core/client.h"
#include "core/sanitize.h"
#include "vm/vm.h"
#include "sync/fence.h"

#define SEC 1000000000ll

/* 4 KiB granules: the integrated shape only (skipped if VMB_SOFT_DISCRETE is set). */
static struct vmb_client *open_4k(uint64_t vram, uint64_t sys)
{
	if (getenv("VMB_SOFT_DISCRETE") && strcmp(getenv("VMB_SOFT_DISCRETE"), "0"))
		skip();
	return open_soft(vram, sys);
}

/* ---- area 4: execs pipelined behind binds that re-map their source, other threads binding ---- */

#define PIPE_THREADS 2
#define PIPE_K 16
#define PIPE_SRC (2 * MiB) /* each exec copies this much */
#define PIPE_WIN (1ull << 32)

struct piper {
	struct vmb_client *c;
	uint32_t vm, t, rounds;
	uint32_t src[2], dst, cmd, xq, bq;
	char err[160];
};

static uint64_t pipe_val(uint32_t t, uint32_t which) { return 0xabc0000000000000ull | (uint64_t)t << 8 | which; }

static void *pipe_run(void *arg)
{
	struct piper *p = arg;
	struct vmb_client *c = p->c;
	uint64_t base = (uint64_t)(p->t + 1) * PIPE_WIN;
	uint64_t SRC = base, DST = base + 64 * MiB, CMD = base + 256 * MiB;
	uint64_t *cmd = bo_cpu(c, p->cmd), *dst = bo_cpu(c, p->dst);
	uint32_t n = 0;
	for (uint32_t k = 0; k < PIPE_K; k++) {
		n = k * 16;
		vmb_cmd_copy(cmd, &n, DST + k * PIPE_SRC, SRC, PIPE_SRC);
		vmb_cmd_end(cmd, &n);
	}
	uint32_t m[PIPE_K], e[PIPE_K];
	for (uint32_t k = 0; k < PIPE_K; k++) {
		m[k] = syncobj_new(c, 0);
		e[k] = syncobj_new(c, 0);
	}
	for (uint32_t r = 0; r < p->rounds; r++) {
		memset(dst, 0, PIPE_K * PIPE_SRC);
		for (uint32_t k = 0; k < PIPE_K; k++) {
			struct vmb_bind_op op = op_map(p->src[(r + k) & 1], 0, SRC, PIPE_SRC, 0);
			struct vmb_sync y[2] = {sync_out(m[k]), k ? sync_in(e[k - 1]) : sync_out(m[k])};
			struct vmb_vm_bind b = {.vm_id = p->vm, .queue_id = p->bq, .num_binds = 1, .binds = (uint64_t)(uintptr_t)&op,
						.num_syncs = k ? 2 : 1, .syncs = (uint64_t)(uintptr_t)y, .flags = VMB_VM_BIND_FLAG_ASYNC};
			int rr = vmb_vm_bind(c, &b);
			if (rr) {
				snprintf(p->err, sizeof(p->err), "bind r%u k%u: %d", r, k, rr);
				return NULL;
			}
			struct vmb_sync z[2] = {sync_in(m[k]), sync_out(e[k])};
			struct vmb_exec x = {.exec_queue_id = p->xq, .num_syncs = 2, .syncs = (uint64_t)(uintptr_t)z,
					     .address = CMD + k * 16 * 8};
			if ((rr = vmb_exec(c, &x))) {
				snprintf(p->err, sizeof(p->err), "exec r%u k%u: %d", r, k, rr);
				return NULL;
			}
		}
		for (uint32_t k = 0; k < PIPE_K; k++) {
			int er = syncobj_error(c, e[k]);
			if (er) {
				struct vmb_exec_queue_query q = {.exec_queue_id = p->xq};
				vmb_exec_queue_query(c, &q);
				snprintf(p->err, sizeof(p->err), "exec r%u k%u err %d fault %#llx", r, k, er,
					 (unsigned long long)q.fault_addr);
				return NULL;
			}
		}
		for (uint32_t k = 0; k < PIPE_K; k++) {
			uint64_t want = pipe_val(p->t, (r + k) & 1);
			for (uint64_t o = 0; o < PIPE_SRC / 8; o += 511) {
				if (dst[k * PIPE_SRC / 8 + o] != want) {
					snprintf(p->err, sizeof(p->err), "r%u k%u word %llu: %#llx != %#llx", r, k,
						 (unsigned long long)o, (unsigned long long)dst[k * PIPE_SRC / 8 + o],
						 (unsigned long long)want);
					return NULL;
				}
			}
		}
		struct vmb_syncobj_array a = {.handles = (uint64_t)(uintptr_t)m, .count = PIPE_K};
		assert_int_equal(vmb_syncobj_reset(c, &a), 0);
		a.handles = (uint64_t)(uintptr_t)e;
		assert_int_equal(vmb_syncobj_reset(c, &a), 0);
	}
	return NULL;
}

struct noiser {
	struct vmb_client *c;
	uint32_t vm, bo;
	atomic_bool *stop;
	int bad;
};

static void *noise_run(void *arg)
{
	struct noiser *z = arg;
	uint64_t seed = 7;
	uint64_t base = 7 * PIPE_WIN;
	while (!atomic_load(z->stop)) {
		uint64_t pg = rnd_below(&seed, 512) * 4096, len = (1 + rnd_below(&seed, 64)) * 4096;
		struct vmb_bind_op op = rnd_below(&seed, 2) ? op_map(z->bo, 0, base + pg, len, 0) : op_unmap(base + pg, len);
		int r = __bind1(z->c, z->vm, op);
		if (r && r != -EINVAL)
			z->bad = r;
	}
	return NULL;
}

static void test_pipeline_remap_race(void **state)
{
	(void)state;
	struct vmb_client *c = open_4k(512 * MiB, 1024 * MiB);
	uint32_t vm = vm_new(c, 0);
	struct piper p[PIPE_THREADS];
	pthread_t th[PIPE_THREADS], nt;
	atomic_bool stop = false;
	struct noiser z = {.c = c, .vm = vm, .bo = bo_new(c, 4 * MiB, VMB_PLACE_SYSTEM), .stop = &stop};
	for (uint32_t t = 0; t < PIPE_THREADS; t++) {
		p[t] = (struct piper){.c = c, .vm = vm, .t = t, .rounds = 40};
		uint64_t base = (uint64_t)(t + 1) * PIPE_WIN;
		for (int w = 0; w < 2; w++) {
			p[t].src[w] = bo_new(c, PIPE_SRC, VMB_PLACE_SYSTEM);
			uint64_t *s = bo_cpu(c, p[t].src[w]);
			for (uint64_t i = 0; i < PIPE_SRC / 8; i++)
				s[i] = pipe_val(t, w);
		}
		p[t].dst = bo_new(c, PIPE_K * PIPE_SRC, VMB_PLACE_SYSTEM);
		p[t].cmd = bo_new(c, 64 * KiB, VMB_PLACE_SYSTEM);
		bind1(c, vm, op_map(p[t].dst, 0, base + 64 * MiB, PIPE_K * PIPE_SRC, 0));
		bind1(c, vm, op_map(p[t].cmd, 0, base + 256 * MiB, 64 * KiB, VMB_BIND_FLAG_READONLY));
		struct vmb_exec_queue_create qc = {.vm_id = vm, .engine = {.engine_class = t ? VMB_ENGINE_CLASS_COPY : VMB_ENGINE_CLASS_COMPUTE}};
		assert_int_equal(vmb_exec_queue_create(c, &qc), 0);
		p[t].xq = qc.exec_queue_id;
		p[t].bq = queue_new(c, vm);
	}
	assert_int_equal(pthread_create(&nt, NULL, noise_run, &z), 0);
	for (uint32_t t = 0; t < PIPE_THREADS; t++)
		assert_int_equal(pthread_create(&th[t], NULL, pipe_run, &p[t]), 0);
	for (uint32_t t = 0; t < PIPE_THREADS; t++)
		pthread_join(th[t], NULL);
	atomic_store(&stop, true);
	pthread_join(nt, NULL);
	for (uint32_t t = 0; t < PIPE_THREADS; t++) {
		if (p[t].err[0])
			fail_msg("thread %u: %s", t, p[t].err);
		struct vmb_exec_queue_destroy xd = {.exec_queue_id = p[t].xq};
		assert_int_equal(vmb_exec_queue_destroy(c, &xd), 0);
	}
	assert_int_equal(z.bad, 0);
	validate_client(c);
	assert_int_equal(vmb_client_close(c), 0);
}

/* ---- area 5: VA edges ---- */

static void test_va_edges(void **state)
{
	(void)state;
	struct vmb_client *c = open_4k(64 * MiB, 256 * MiB);
	uint64_t g = granule_of(c);
	struct vmb_device_query dq = device_query(c);
	uint64_t top = 1ull << dq.va_bits;
	uint32_t bo = bo_new(c, 4 * MiB, VMB_PLACE_SYSTEM);
	struct vmb_vm_create vc = {.va_size = top};
	assert_int_equal(vmb_vm_create(c, &vc), 0);
	assert_int_equal(vc.va_size, top);
	uint32_t vm = vc.vm_id;
	struct vmb_vm_create bad = {.va_size = top + g};
	assert_int_equal(vmb_vm_create(c, &bad), -EINVAL);
	bad = (struct vmb_vm_create){.va_size = top * 2};
	assert_int_equal(vmb_vm_create(c, &bad), -EINVAL);
	bad = (struct vmb_vm_create){.va_size = ~0ull & ~(g - 1)};
	assert_int_equal(vmb_vm_create(c, &bad), -EINVAL);
	bad = (struct vmb_vm_create){.va_size = g / 2};
	if (g > 1)
		assert_int_equal(vmb_vm_create(c, &bad), -EINVAL);
	/* the first and last granule, a 4 MiB map ending at the top, a 1 GiB-aligned piece */
	bind1(c, vm, op_map(bo, 0, 0, g, 0));
	bind1(c, vm, op_map(bo, 0, top - g, g, 0));
	bind1(c, vm, op_map(bo, 0, top - 4 * MiB, 4 * MiB, 0));
	gpu_write64(c, vm, top - 8, 0x1234);
	assert_int_equal(gpu_read64(c, vm, top - 8), 0x1234);
	uint64_t v;
	printf("gpu_rw across the top: %d\n", __gpu_rw(c, vm, top - 8, &v, 16, false));
	/* past the end, overflow */
	assert_int_equal(__bind1(c, vm, op_map(bo, 0, top, g, 0)), -EINVAL);
	assert_int_equal(__bind1(c, vm, op_map(bo, 0, top - g, 2 * g, 0)), -EINVAL);
	assert_int_equal(__bind1(c, vm, op_map(bo, 0, ~0ull & ~(g - 1), g, 0)), -EINVAL);
	assert_int_equal(__bind1(c, vm, op_map(bo, 0, g, ~0ull & ~(g - 1), 0)), -EINVAL);
	assert_int_equal(__bind1(c, vm, op_map(bo, ~0ull & ~(g - 1), 0, g, 0)), -EINVAL);
	assert_int_equal(__bind1(c, vm, op_map(bo, 4 * MiB, 0, g, 0)), -EINVAL);
	assert_int_equal(__bind1(c, vm, op_unmap(top, g)), -EINVAL);
	assert_int_equal(__bind1(c, vm, op_unmap(0, 0)), -EINVAL);
	assert_int_equal(__bind1(c, vm, op_unmap(g, ~0ull & ~(g - 1))), -EINVAL);
	assert_int_equal(__bind1(c, vm, op_null(top - g, 2 * g)), -EINVAL);
	assert_int_equal(__bind1(c, vm, op_prefetch(top - g, 2 * g, VMB_REGION_SYSTEM)), -EINVAL);
	/* NULL mapping of the whole vm over them, then unmap of all */
	bind1(c, vm, op_null(top - 8 * GiB, 8 * GiB));
	assert_int_equal(gpu_read64(c, vm, top - 8), 0);
	assert_int_equal(vm_stats(c, vm).num_mappings, 2);
	bind1(c, vm, op_map(bo, 0, top - 4 * GiB, 4 * MiB, 0));
	assert_int_equal(vm_stats(c, vm).num_mappings, 4);
	bind1(c, vm, op_unmap(0, top));
	assert_int_equal(vm_stats(c, vm).num_mappings, 0);
	validate_client(c);
	/* a vm of one granule */
	vc = (struct vmb_vm_create){.va_size = g};
	assert_int_equal(vmb_vm_create(c, &vc), 0);
	bind1(c, vc.vm_id, op_map(bo, 0, 0, g, 0));
	assert_int_equal(__bind1(c, vc.vm_id, op_map(bo, 0, g, g, 0)), -EINVAL);
	assert_int_equal(__bind1(c, vc.vm_id, op_map(bo, 0, 0, 2 * g, 0)), -EINVAL);
	bind1(c, vc.vm_id, op_unmap(0, g));
	validate_client(c);
	assert_int_equal(vmb_client_close(c), 0);
}

static long rss_kb(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	long pages = 0, res = 0;
	assert_non_null(f);
	assert_int_equal(fscanf(f, "%ld %ld", &pages, &res), 2);
	fclose(f);
	return res * 4;
}

/* many vms with many mappings (past the huge-chunk threshold) created and destroyed: memory back */
static void test_vm_churn_memory_back(void **state)
{
	(void)state;
	struct vmb_client *c = open_4k(64 * MiB, 256 * MiB);
	uint64_t g = granule_of(c);
	if (g != 4096)
		skip();
	uint32_t bo = bo_new(c, 64 * KiB, VMB_PLACE_SYSTEM);
	enum { N = 60000, B = 1000 };
	static struct vmb_bind_op ops[B];
	long first = 0;
	for (int round = 0; round < 8; round++) {
		uint32_t vm = vm_new(c, 0);
		for (int i = 0; i < N; i += B) {
			for (int j = 0; j < B; j++)
				ops[j] = op_map(bo, 0, (uint64_t)(i + j) * 2 * g, g, 0); /* holes between */
			assert_int_equal(__bind_ops(c, vm, ops, B), 0);
		}
		assert_int_equal(vm_stats(c, vm).num_mappings, N);
		/* unmap half, map again (free lists and spare nodes reused) */
		bind1(c, vm, op_unmap(0, (uint64_t)N * g));
		for (int i = 0; i < N / 2; i += B) {
			for (int j = 0; j < B; j++)
				ops[j] = op_map(bo, 0, (uint64_t)(i + j) * 2 * g, g, 0);
			assert_int_equal(__bind_ops(c, vm, ops, B), 0);
		}
		validate_client(c);
		vm_destroy1(c, vm);
		long now = rss_kb();
		if (round == 1)
			first = now;
		printf("round %d rss %ld kB\n", round, now);
#ifndef SANITIZER_ALLOCATOR /* its quarantine keeps freed memory */
		if (round > 1)
			assert_true(now < first + 8192);
#else
		(void)first;
#endif
	}
	validate_client(c);
	assert_int_equal(vmb_client_close(c), 0);
}

/* ---- area 1: combining under chaos (signals, a failing caller, async neighbours, vm destroy) ---- */

static atomic_long chaos_sigs;
static void chaos_sig(int sig)
{
	(void)sig;
	atomic_fetch_add(&chaos_sigs, 1);
}

static uint64_t chaos_fence[8]; /* .bss out user fences */

struct chaos {
	struct vmb_client *c;
	uint32_t vm, bo, cbo;
	int t, kind; /* 0 good sync, 1 bad (chunk cut), 2 async */
	atomic_bool *stop;
	pthread_t th;
	long ok, eintr, enoent;
	uint64_t model[64]; /* page -> 1 mapped (good threads) */
	char err[128];
};

static void *chaos_run(void *arg)
{
	struct chaos *w = arg;
	uint64_t seed = 1234 + (uint64_t)w->t;
	uint64_t base = (uint64_t)(w->t + 1) * 64 * MiB;
	uint64_t fv = 0;
	while (!atomic_load(w->stop)) {
		int r;
		if (w->kind == 1) {
			/* ops that succeed, then a cut inside the chunk mapping: the call fails, unwound */
			uint64_t pg = rnd_below(&seed, 64);
			struct vmb_bind_op ops[3] = {op_map(w->bo, 0, base + 32 * MiB + pg * 4096, 4096, 0),
						     op_unmap(base + 32 * MiB, 64 * 4096),
						     op_unmap(base + 4096 * (1 + rnd_below(&seed, 14)), 4096)};
			uint32_t n = 1 + (uint32_t)rnd_below(&seed, 3);
			if (n < 3)
				ops[n - 1] = ops[2];
			r = __bind_ops(w->c, w->vm, ops, n);
			if (r == -EINVAL) {
				w->ok++;
				continue;
			}
		} else {
			uint64_t pg = rnd_below(&seed, 64);
			bool map = rnd_below(&seed, 2);
			struct vmb_bind_op op = map ? op_map(w->bo, pg * 4096, base + pg * 4096, 4096, 0)
						    : op_unmap(base + pg * 4096, 4096);
			if (w->kind == 2 && fv % 64 == 63) {
				/* a gated bind on the default queue: the sync binds behind it wait (-EINTR) */
				struct gate g = gate_new(w->c);
				struct vmb_sync y[2] = {sync_ufence(&chaos_fence[w->t & 7], ++fv), sync_in(g.h)};
				r = __bind_async(w->c, w->vm, 0, &op, 1, y, 2);
				usleep(2000);
				gate_open(&g);
				struct vmb_syncobj_destroy d = {.handle = g.h};
				vmb_syncobj_destroy(w->c, &d);
			} else if (w->kind == 2) {
				struct vmb_sync y = sync_ufence(&chaos_fence[w->t & 7], ++fv);
				r = __bind_async(w->c, w->vm, 0, &op, 1, &y, 1);
			} else {
				r = __bind1(w->c, w->vm, op);
			}
			if (!r) {
				w->model[pg] = map;
				w->ok++;
				continue;
			}
		}
		if (r == -EINTR) {
			w->eintr++;
			continue;
		}
		if (r == -ENOENT) {
			w->enoent++;
			break;
		}
		snprintf(w->err, sizeof(w->err), "thread %d kind %d: %d", w->t, w->kind, r);
		break;
	}
	return NULL;
}

/* @n binders on @vm, started: thread t of kind @kinds[t] (struct chaos), the chunked BO's mapping
 * of a kind-1 thread made first. */
static void chaos_start(struct chaos *w, int n, const int *kinds, struct vmb_client *c, uint32_t vm, uint32_t bo,
			uint32_t cbo, atomic_bool *stop)
{
	memset(w, 0, (size_t)n * sizeof(*w));
	for (int t = 0; t < n; t++) {
		w[t] = (struct chaos){.c = c, .vm = vm, .bo = bo, .cbo = cbo, .t = t, .stop = stop, .kind = kinds[t]};
		if (w[t].kind == 1)
			bind1(c, vm, op_map(cbo, 0, (uint64_t)(t + 1) * 64 * MiB, 64 * KiB, 0));
	}
	for (int t = 0; t < n; t++)
		assert_int_equal(pthread_create(&w[t].th, NULL, chaos_run, &w[t]), 0);
}

static void chaos_round(bool destroy_live, int round)
{
	struct vmb_client *c = open_4k(64 * MiB, 256 * MiB);
	struct vmb_bo_create bc = {.size = 1 * MiB, .placements = VMB_PLACE_SYSTEM, .chunk_size = 64 * KiB};
	assert_int_equal(vmb_bo_create(c, &bc), 0);
	uint32_t bo = bo_new(c, 1 * MiB, VMB_PLACE_SYSTEM), vm = vm_new(c, 0);
	atomic_bool stop = false;
	enum { NT = 6 };
	static const int kinds[NT] = {0, 0, 0, 1, 2, 0};
	struct chaos w[NT];
	chaos_start(w, NT, kinds, c, vm, bo, bc.handle, &stop);
	for (int i = 0; i < 3000; i++) {
		pthread_kill(w[i % NT].th, SIGUSR1);
		if (i % 64 == 0)
			usleep(500);
		if (destroy_live && i == 1500 + round * 50)
			vm_destroy1(c, vm);
	}
	atomic_store(&stop, true);
	for (int t = 0; t < NT; t++) {
		pthread_join(w[t].th, NULL);
		if (w[t].err[0])
			fail_msg("round %d: %s (ok %ld eintr %ld)", round, w[t].err, w[t].ok, w[t].eintr);
	}
	if (!destroy_live) {
		/* the drain: the async thread's binds done; every good thread's model holds */
		struct vmb_sync y = sync_ufence(&chaos_fence[7], 99);
		assert_int_equal(__bind_async(c, vm, 0, NULL, 0, &y, 1), 0);
		ufence_wait(c, &chaos_fence[7], 99);
		chaos_fence[7] = 0;
		for (int t = 0; t < NT; t++) {
			if (w[t].kind == 1) {
				/* every call failed: nothing mapped in its second area, the chunk mapping whole */
				uint64_t base = (uint64_t)(t + 1) * 64 * MiB, v;
				for (uint64_t pg = 0; pg < 64; pg++)
					assert_int_equal(__gpu_rw(c, vm, base + 32 * MiB + pg * 4096, &v, 8, false), -EFAULT);
				for (uint64_t pg = 0; pg < 16; pg++)
					assert_int_equal(__gpu_rw(c, vm, base + pg * 4096, &v, 8, false), 0);
				continue;
			}
			uint64_t base = (uint64_t)(t + 1) * 64 * MiB;
			for (uint64_t pg = 0; pg < 64; pg++) {
				uint64_t v;
				int r = __gpu_rw(c, vm, base + pg * 4096, &v, 8, false);
				if (w[t].model[pg] ? r != 0 : r != -EFAULT)
					fail_msg("round %d thread %d page %llu: %d, model %llu", round, t,
						 (unsigned long long)pg, r, (unsigned long long)w[t].model[pg]);
			}
		}
	}
	validate_client(c);
	assert_int_equal(vmb_client_close(c), 0);
}

static void test_combine_chaos(void **state)
{
	(void)state;
	struct sigaction sa = {.sa_handler = chaos_sig}, old;
	sigemptyset(&sa.sa_mask);
	assert_int_equal(sigaction(SIGUSR1, &sa, &old), 0);
	alarm(300);
	for (int round = 0; round < 12; round++)
		chaos_round(round & 1, round);
	alarm(0);
	printf("signals %ld\n", atomic_load(&chaos_sigs));
	assert_int_equal(sigaction(SIGUSR1, &old, NULL), 0);
}

/* ---- area 4: long copies through page tables another thread keeps re-mapping (no order) ---- */

#define RACE_SRC (8 * MiB)
#define RACE_SRC_VA (1ull << 40)
#define RACE_DST_VA (2ull << 40)
#define RACE_CMD_VA (3ull << 40)
#define VAL_A 0xaaaaaaaaaaaaaaaaull
#define VAL_B 0xbbbbbbbbbbbbbbbbull

struct remapper {
	struct vmb_client *c;
	uint32_t vm, a, b;
	atomic_bool *stop;
	long binds;
	int bad;
};

static void *remap_run(void *arg)
{
	struct remapper *r = arg;
	uint64_t seed = 99;
	while (!atomic_load(r->stop)) {
		uint64_t sz = 4096ull << rnd_below(&seed, 12); /* 4K .. 8M */
		if (sz > RACE_SRC)
			sz = RACE_SRC;
		uint64_t off = rnd_below(&seed, RACE_SRC / sz) * sz;
		int k = (int)rnd_below(&seed, 5);
		struct vmb_bind_op op = k == 4 ? op_unmap(RACE_SRC_VA + off, sz)
					       : op_map(k & 1 ? r->b : r->a, off, RACE_SRC_VA + off, sz, 0);
		int e = __bind1(r->c, r->vm, op);
		if (e)
			r->bad = e;
		r->binds++;
	}
	return NULL;
}

static void copy_while_remapped(bool scratch)
{
	struct vmb_client *c = open_4k(256 * MiB, 512 * MiB);
	uint32_t vm = vm_new(c, scratch ? VMB_VM_CREATE_SCRATCH_PAGE : 0);
	long faults = 0;
	uint32_t a = bo_new(c, RACE_SRC, VMB_PLACE_SYSTEM), b = bo_new(c, RACE_SRC, VMB_PLACE_SYSTEM);
	uint32_t dst = bo_new(c, RACE_SRC, VMB_PLACE_SYSTEM), cmdb = bo_new(c, 4096, VMB_PLACE_SYSTEM);
	uint64_t *pa = bo_cpu(c, a), *pb = bo_cpu(c, b), *pd = bo_cpu(c, dst), *cmd = bo_cpu(c, cmdb);
	for (uint64_t i = 0; i < RACE_SRC / 8; i++) {
		pa[i] = VAL_A;
		pb[i] = VAL_B;
	}
	bind1(c, vm, op_map(a, 0, RACE_SRC_VA, RACE_SRC, 0));
	bind1(c, vm, op_map(dst, 0, RACE_DST_VA, RACE_SRC, 0));
	bind1(c, vm, op_map(cmdb, 0, RACE_CMD_VA, 4096, VMB_BIND_FLAG_READONLY));
	uint32_t n = 0;
	for (int i = 0; i < 4; i++)
		vmb_cmd_copy(cmd, &n, RACE_DST_VA, RACE_SRC_VA, RACE_SRC);
	vmb_cmd_end(cmd, &n);
	struct vmb_exec_queue_create qc = {.vm_id = vm, .engine = {.engine_class = VMB_ENGINE_CLASS_COPY}};
	assert_int_equal(vmb_exec_queue_create(c, &qc), 0);
	atomic_bool stop = false;
	struct remapper r = {.c = c, .vm = vm, .a = a, .b = b, .stop = &stop};
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, remap_run, &r), 0);
	uint32_t s = syncobj_new(c, 0);
	long counts[4] = {0};
	for (int it = 0; it < 60; it++) {
		for (uint64_t i = 0; i < RACE_SRC / 8; i += 512)
			pd[i] = 0xdd;
		struct vmb_sync y = sync_out(s);
		struct vmb_exec x = {.exec_queue_id = qc.exec_queue_id, .num_syncs = 1, .syncs = (uint64_t)(uintptr_t)&y,
				     .address = RACE_CMD_VA};
		assert_int_equal(vmb_exec(c, &x), 0);
		int e = syncobj_error(c, s);
		if (e) {
			struct vmb_exec_queue_query q = {.exec_queue_id = qc.exec_queue_id};
			assert_int_equal(vmb_exec_queue_query(c, &q), 0);
			if (scratch || e != -EFAULT || q.error != -EFAULT || q.fault_access != VMB_FAULT_READ ||
			    q.fault_addr < RACE_SRC_VA || q.fault_addr >= RACE_SRC_VA + RACE_SRC ||
			    !(q.flags & VMB_EXEC_QUEUE_BANNED))
				fail_msg("it %d: exec %d error %d access %u fault %#llx", it, e, q.error, q.fault_access,
					 (unsigned long long)q.fault_addr);
			faults++;
			struct vmb_exec_queue_destroy xd = {.exec_queue_id = qc.exec_queue_id};
			assert_int_equal(vmb_exec_queue_destroy(c, &xd), 0);
			assert_int_equal(vmb_exec_queue_create(c, &qc), 0);
		}
		for (uint64_t i = 0; i < RACE_SRC / 8; i += 512) {
			uint64_t v = pd[i];
			if (v == VAL_A)
				counts[0]++;
			else if (v == VAL_B)
				counts[1]++;
			else if (v == (scratch ? 0 : e ? 0xdd : VAL_A))
				counts[2]++;
			else
				fail_msg("it %d word %llu: %#llx", it, (unsigned long long)i, (unsigned long long)v);
		}
		struct vmb_syncobj_array sa = {.handles = (uint64_t)(uintptr_t)&s, .count = 1};
		assert_int_equal(vmb_syncobj_reset(c, &sa), 0);
	}
	atomic_store(&stop, true);
	pthread_join(th, NULL);
	printf("A %ld B %ld zero %ld binds %ld faults %ld\n", counts[0], counts[1], counts[2], r.binds, faults);
	assert_int_equal(r.bad, 0);
	struct vmb_exec_queue_destroy xd = {.exec_queue_id = qc.exec_queue_id};
	assert_int_equal(vmb_exec_queue_destroy(c, &xd), 0);
	validate_client(c);
	assert_int_equal(vmb_client_close(c), 0);
}

static void test_copy_while_remapped(void **state) { (void)state; copy_while_remapped(true); }
static void test_copy_while_remapped_faults(void **state) { (void)state; copy_while_remapped(false); }


/* ---- area 4: the vm destroyed under a running exec, its BO freed and its memory reused ---- */

static void test_vm_destroyed_under_exec(void **state)
{
	(void)state;
	struct vmb_client *c = open_4k(256 * MiB, 512 * MiB);
	const uint64_t SZ = 8 * MiB, SRC = 1ull << 30, DST = 2ull << 30, CMDV = 3ull << 30;
	uint32_t dst = bo_new(c, SZ, VMB_PLACE_SYSTEM), cmdb = bo_new(c, 4096, VMB_PLACE_SYSTEM);
	uint64_t *pd = bo_cpu(c, dst), *cmd = bo_cpu(c, cmdb);
	uint32_t n = 0;
	for (int i = 0; i < 24; i++)
		vmb_cmd_copy(cmd, &n, DST, SRC, SZ);
	vmb_cmd_end(cmd, &n);
	long outcomes[3] = {0};
	for (int round = 0; round < 12; round++) {
		uint32_t vm = vm_new(c, 0);
		uint32_t x = bo_new(c, SZ, round & 1 ? VMB_PLACE_VRAM : VMB_PLACE_SYSTEM);
		uint64_t *px = bo_cpu(c, x);
		for (uint64_t i = 0; i < SZ / 8; i++)
			px[i] = 0x1111111111111111ull;
		memset(pd, 0, SZ);
		bind1(c, vm, op_map(x, 0, SRC, SZ, 0));
		bind1(c, vm, op_map(dst, 0, DST, SZ, 0));
		bind1(c, vm, op_map(cmdb, 0, CMDV, 4096, VMB_BIND_FLAG_READONLY));
		struct vmb_exec_queue_create qc = {.vm_id = vm, .engine = {.engine_class = VMB_ENGINE_CLASS_COPY}};
		assert_int_equal(vmb_exec_queue_create(c, &qc), 0);
		uint32_t s = syncobj_new(c, 0);
		struct vmb_sync y = sync_out(s);
		struct vmb_exec xe = {.exec_queue_id = qc.exec_queue_id, .num_syncs = 1, .syncs = (uint64_t)(uintptr_t)&y,
				      .address = CMDV};
		assert_int_equal(vmb_exec(c, &xe), 0);
		usleep(200 * (round % 5));
		vm_destroy1(c, vm);
		bo_destroy1(c, x);
		/* new BOs, likely on the freed memory, with another pattern */
		uint32_t reuse[4];
		for (int k = 0; k < 4; k++) {
			reuse[k] = bo_new(c, SZ, round & 1 ? VMB_PLACE_VRAM : VMB_PLACE_SYSTEM);
			uint64_t *pr = bo_cpu(c, reuse[k]);
			for (uint64_t i = 0; i < SZ / 8; i++)
				pr[i] = 0x7777777777777777ull;
		}
		int e = __syncobj_wait1(c, s, 0, 30 * SEC, 0);
		assert_int_equal(e, 0);
		e = syncobj_error(c, s);
		if (e == 0)
			outcomes[0]++;
		else if (e == -EFAULT)
			outcomes[1]++;
		else if (e == -ECANCELED)
			outcomes[2]++;
		else
			fail_msg("round %d: exec error %d", round, e);
		for (uint64_t i = 0; i < SZ / 8; i += 509) {
			if (pd[i] != 0 && pd[i] != 0x1111111111111111ull)
				fail_msg("round %d word %llu: %#llx (exec %d)", round, (unsigned long long)i,
					 (unsigned long long)pd[i], e);
			if (e == 0 && pd[i] != 0x1111111111111111ull)
				fail_msg("round %d word %llu: %#llx with no error", round, (unsigned long long)i,
					 (unsigned long long)pd[i]);
		}
		struct vmb_exec_queue_destroy xd = {.exec_queue_id = qc.exec_queue_id};
		assert_int_equal(vmb_exec_queue_destroy(c, &xd), 0);
		for (int k = 0; k < 4; k++)
			bo_destroy1(c, reuse[k]);
		validate_client(c);
	}
	printf("completed %ld faulted %ld cancelled %ld\n", outcomes[0], outcomes[1], outcomes[2]);
	assert_int_equal(vmb_client_close(c), 0);
}

/* ---- area 1: fork() while threads combine binds; the child opens its own client and binds ---- */

static uint64_t fork_fence;

static int child_work(struct vmb_client *inherited, uint32_t vm)
{
	alarm(20);
	if (__bind1(inherited, vm, op_unmap(0, 4096)) != -EIO)
		return 2;
	struct vmb_client *c;
	if (vmb_client_open(NULL, NULL, &c))
		return 3;
	struct vmb_vm_create vc = {0};
	struct vmb_bo_create bc = {.size = 1 * MiB, .placements = VMB_PLACE_SYSTEM};
	if (vmb_vm_create(c, &vc) || vmb_bo_create(c, &bc))
		return 4;
	for (int i = 0; i < 200; i++) {
		struct vmb_bind_op op = op_map(bc.handle, 0, (uint64_t)(i % 16) << 20, 1 * MiB, 0);
		struct vmb_sync y = sync_ufence(&fork_fence, (uint64_t)i + 1);
		int r = i & 1 ? __bind_async(c, vc.vm_id, 0, &op, 1, &y, 1) : __bind1(c, vc.vm_id, op);
		if (r)
			return 5;
	}
	struct vmb_user_fence_wait w = {.addr = (uint64_t)(uintptr_t)&fork_fence, .value = 200, .mask = ~0ull,
					.op = VMB_UFENCE_OP_EQ, .timeout = 5 * SEC};
	if (vmb_user_fence_wait(c, &w))
		return 6;
	struct vmb_client_validate v = {0};
	if (vmb_client_validate(c, &v))
		return 7;
	if (vmb_client_close(c))
		return 8;
	if (vmb_client_close(inherited))
		return 9;
	return 0;
}

static void test_fork_child_opens_own(void **state)
{
	(void)state;
#ifdef SANITIZER_ALLOCATOR
	skip(); /* harness.h: a child that allocates may hang in the sanitizer's allocator */
#endif
	if (VMB_TSAN)
		skip(); /* ThreadSanitizer starts no thread in the child of a multi-threaded fork */
	struct vmb_client *c = open_4k(64 * MiB, 256 * MiB);
	uint32_t bo = bo_new(c, 1 * MiB, VMB_PLACE_SYSTEM), vm = vm_new(c, 0);
	atomic_bool stop = false;
	enum { NT = 4 };
	static const int kinds[NT] = {0, 0, 0, 2};
	struct chaos w[NT];
	chaos_start(w, NT, kinds, c, vm, bo, 0, &stop);
	for (int i = 0; i < 16; i++) {
		usleep(2000);
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0)
			_exit(child_work(c, vm));
		int st = 0;
		assert_int_equal(waitpid(pid, &st, 0), pid);
		if (!WIFEXITED(st) || WEXITSTATUS(st))
			fail_msg("child %d: status %#x (signal %d)", i, st, WIFSIGNALED(st) ? WTERMSIG(st) : 0);
	}
	atomic_store(&stop, true);
	for (int t = 0; t < NT; t++) {
		pthread_join(w[t].th, NULL);
		if (w[t].err[0])
			fail_msg("%s", w[t].err);
	}
	validate_client(c);
	assert_int_equal(vmb_client_close(c), 0);
}

/* ---- asynchronous binds with 1 to 8 syncs from two threads (s16-attack3) ---------------- */

/*
 * A call's syncs live in the call's own arrays up to 4 (a job copies their user fence) and on the
 * heap past that (the job takes them over); the vm's lock holder may run the call (combining).
 * Two threads make asynchronous 1-op binds with n = 1..8 syncs each: a user fence (its own
 * slot, value n), n - 1 out-syncobjs, half the calls on a queue held back by a gate (the job
 * pends, the user fence and the fences come later), half on an idle queue (commits in the
 * call). Every user fence ends at its value, every out-syncobj signals without error, the
 * mappings are exactly those made.
 */
#define SY_T 2
#define SY_N 8

struct sy_thread {
	struct vmb_client *c;
	uint32_t vm, q[2], bo, so[SY_N];
	uint64_t *uf; /* [2][SY_N + 1] */
	int t, err;
};

static void *sy_run(void *arg)
{
	struct sy_thread *p = arg;
	for (int k = 0; k < 2 && !p->err; k++)
		for (uint32_t n = 1; n <= SY_N && !p->err; n++) {
			struct vmb_sync s[SY_N];
			s[0] = sync_ufence(&p->uf[k * (SY_N + 1) + n], n);
			for (uint32_t i = 1; i < n; i++)
				s[i] = sync_out(p->so[(i + k * 3) % SY_N]);
			uint64_t va = (1ull << 32) + ((uint64_t)p->t * 64 + k * 32 + n) * 4096;
			struct vmb_bind_op op = op_map(p->bo, 0, va, 4096, 0);
			p->err = __bind_async(p->c, p->vm, p->q[k], &op, 1, s, n);
		}
	return NULL;
}

static void test_async_sync_counts_two_threads(void **state)
{
	(void)state;
	struct vmb_client *c = open_4k(64 * MiB, 64 * MiB);
	uint32_t vm = vm_new(c, 0), bo = bo_new(c, 4096, VMB_PLACE_SYSTEM);
	struct gate g = gate_new(c);
	uint32_t held = queue_new(c, vm);
	struct vmb_sync in = sync_in(g.h);
	struct vmb_bind_op first = op_map(bo, 0, 1ull << 40, 4096, 0);
	bind_async(c, vm, held, &first, 1, &in, 1); /* the held queue's first bind waits for the gate */
	struct sy_thread p[SY_T];
	pthread_t th[SY_T];
	static uint64_t uf[SY_T][2 * (SY_N + 1)];
	memset(uf, 0, sizeof(uf));
	for (int t = 0; t < SY_T; t++) {
		p[t] = (struct sy_thread){.c = c, .vm = vm, .q = {held, queue_new(c, vm)}, .bo = bo, .uf = uf[t], .t = t};
		for (int i = 0; i < SY_N; i++)
			p[t].so[i] = syncobj_new(c, 0);
		pthread_create(&th[t], NULL, sy_run, &p[t]);
	}
	for (int t = 0; t < SY_T; t++) {
		pthread_join(th[t], NULL);
		assert_int_equal(p[t].err, 0);
	}
	for (int t = 0; t < SY_T; t++) /* the idle queue's binds: done in the call */
		for (uint32_t n = 1; n <= SY_N; n++)
			assert_int_equal(__atomic_load_n(&uf[t][SY_N + 1 + n], __ATOMIC_ACQUIRE), n);
	for (int t = 0; t < SY_T; t++) /* the held queue's: not before their commit */
		for (uint32_t n = 1; n <= SY_N; n++)
			assert_int_equal(__atomic_load_n(&uf[t][n], __ATOMIC_ACQUIRE), 0);
	gate_open(&g);
	for (int t = 0; t < SY_T; t++) {
		for (uint32_t n = 1; n <= SY_N; n++)
			ufence_wait(c, &uf[t][n], n);
		for (int i = 0; i < SY_N; i++) {
			syncobj_wait1(c, p[t].so[i]);
			assert_int_equal(syncobj_error(c, p[t].so[i]), 0);
		}
	}
	assert_int_equal(vm_stats(c, vm).num_mappings, 1 + SY_T * 2 * SY_N);
	validate_client(c);
	assert_int_equal(vmb_client_close(c), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_async_sync_counts_two_threads),
		cmocka_unit_test(test_pipeline_remap_race),
		cmocka_unit_test(test_va_edges),
		cmocka_unit_test(test_vm_churn_memory_back),
		cmocka_unit_test(test_combine_chaos),
		cmocka_unit_test(test_copy_while_remapped),
		cmocka_unit_test(test_copy_while_remapped_faults),
		cmocka_unit_test(test_vm_destroyed_under_exec),
		cmocka_unit_test(test_fork_child_opens_own),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
