/* SPDX-License-Identifier: MIT */
/*
 * `vmbind bench bind [--json] [--quick]`: asynchronous VM_BIND against synchronous VM_BIND.
 *
 * An asynchronous bind is worth having only if handing the work to the scheduler costs little
 * more than doing it, and if the work then completes promptly. So every part below runs the
 * same binds both ways, side by side in one run, on the soft device, and prints the ratio
 * asynchronous / synchronous.
 *
 * Interleaving: the sides alternate in blocks (so drift in the machine's state hits both alike),
 *   and the first round of every block is untimed. A bind right after the other side's finds
 *   the vm's data in the other CPU's cache (asynchronous binds commit on a worker thread): on a
 *   2-CPU box, a 1-op synchronous MAP right after asynchronous binds took ~1.9 us instead of
 *   ~0.27 us, which alternating single rounds would have charged to the synchronous side.
 *
 * Queues: in latency and arrays the asynchronous binds go to a bind queue of their own and the
 *   synchronous ones to the vm's default queue, both idle. A synchronous bind first waits for
 *   its queue's previous job to retire, and a job writes its user fence a little before it
 *   retires: on one shared queue, a synchronous bind right after an asynchronous one would time
 *   that wait (microseconds), not its own work.
 *
 * latency: one op per call, MAP then UNMAP alternately, 64 KiB of a VRAM BO at one GPU VA of a
 *   fresh vm (the vm never holds more than one mapping), on an idle queue: each bind is
 *   complete before the next one starts. Sides:
 *     sync         the call's duration (the work is done when it returns);
 *     async spin   the call's duration, and call start -> the out user fence's value observed
 *                  written, by a loop that only re-reads the location (with a pause hint);
 *     async yield  the same, with sched_yield() between reads: with 2 CPUs and 2 scheduler
 *                  workers, a pure spin can sit on the CPU the worker needs;
 *     async wait   call start -> vmb_user_fence_wait() returned (futex sleep and wake-up);
 *     async bomap  as async wait, the fence in a BO's CPU map (vmb_bo_mmap) instead of static
 *                  memory: the call needs no system call to check the address (docs/UAPI.md).
 *   Median and p99 over all iterations; every timed span includes one clock_gettime() pair.
 *   The goal "call -> signalled" takes the lower median of the two spinning sides (the one
 *   that disturbs the library less; both are printed).
 *
 * arrays: one call with n MAP ops (4 KiB each, n consecutive pages of the VA, BO page k at page
 *   k), then one call with the n matching UNMAPs, n = 1, 10, 100, 1000, in a fresh vm.
 *   Asynchronous: call start -> the array's out user fence observed (spin with sched_yield()),
 *   and the call's own duration (validation and the job's prepare happen in the call, the
 *   page-table commit on a worker). Synchronous: the call's duration. Reported as ns per op,
 *   median over the repetitions (in 5 blocks per side; --quick: 1); "both" = (MAP + UNMAP) / 2n.
 *
 * throughput: 8 bind queues on one vm, 4 threads. Thread t owns a 2 MiB aligned range with 8
 *   slots of 64 KiB, slot q used only through queue q (no two binds of different queues or
 *   threads overlap, so nothing orders them but their queue). Bind i of a thread goes to queue
 *   i % 8 and alternately maps and unmaps that slot. Asynchronous: each bind carries an out
 *   user fence in a location of its own (thread, queue), the value counting that pair's binds;
 *   after its last submission the thread waits (vmb_user_fence_wait) until each of its 8
 *   locations holds its final value. Synchronous: the same threads, binds, queues, no syncs.
 *   Wall time from the start signal (all threads created) to the last thread done; median
 *   binds/s of the rounds. `--threads N` and `--queues Q` change the 4 threads and 8 queues (the
 *   8-vm case below then has Q vms; the binds per thread round down to a multiple of 2 Q).
 *
 * throughput, 8 vms: the same threads, binds, slots and fences, but queue index q is the one
 *   bind queue of a vm of its own (8 vms; thread t's range is at the same VA in each), so binds
 *   of different queue indices share no vm: what a per-vm lock lets run in parallel, beside the
 *   one-vm case, which it does not. It runs after the one-vm case, not interleaved with it (its
 *   rounds alternate async and sync the same way), so that the one-vm figures stay comparable
 *   with those of builds without this case.
 *
 * Every section ends with the vm empty and vmb_client_validate() clean; a failing library call
 * stops the run with its name and errno (exit 1). A missed goal is a result, not a failure.
 * Progress goes to stderr; results (a table, or one JSON object with --json) to stdout.
 *
 * JSON keys (times in ns unless the key says otherwise; null where a value is not a number):
 *   bench "bind", quick, cpus (online), sched_workers_env (VMB_SCHED_WORKERS as a string, null
 *   when unset), timer_overhead_ns;
 *   latency: {iterations, range_bytes, block, sides: {sync: {call: {p50, p99}},
 *     async_spin | async_yield | async_wait: {call: {p50, p99}, signalled: {p50, p99}}},
 *     ratios: {<async side>: {call_vs_sync, signalled_vs_sync}} (p50 / sync call p50),
 *     signalled_p50_best_ns, best_side};
 *   arrays: [{ops, reps, async: {call_ns_per_op, map_ns_per_op, unmap_ns_per_op, ns_per_op},
 *     sync: {map_ns_per_op, unmap_ns_per_op, ns_per_op}, ratio_async_sync (ns_per_op)}];
 *   throughput: {queues, threads, binds_per_thread, range_bytes, rounds,
 *     async_binds_per_s, sync_binds_per_s, ratio_async_sync, async_round_s[], sync_round_s[],
 *     async_backlog[] (binds submitted but not yet signalled when each thread had submitted its
 *     last, summed over the threads), async_drain_ns[] (the longest of the threads' final waits),
 *     vms (1)};
 *   throughput_vms: the 8-vm case, the same keys as throughput with vms 8 (queues: 8 in all, one
 *     per vm), and ratio_vs_one_vm: {async, sync} (its binds/s / throughput's);
 *   goals: [{goal, value, target, unit, compare, met}].
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench-util.h"
#include "cli.h"
#include "core/lock.h" /* vmb_cpu_relax */

#define KiB (1ull << 10)
#define MiB (1ull << 20)
#define GiB (1ull << 30)
#define PAGE 4096ull

#define BO_BYTES (4 * MiB)
#define SPIN_LIMIT_NS (10ll * 1000000000ll) /* a fence not written by then is a failure */
#define WAIT_LIMIT_NS (60ll * 1000000000ll)

/* latency */
#define LAT_VA GiB
#define LAT_RANGE (64 * KiB)
#define LAT_BLOCK 250u /* iterations of one side in a row (even: the vm ends empty) */
#define LAT_ITERS 20000u
#define LAT_ITERS_QUICK 500u

/* arrays */
#define ARR_VA (2 * GiB)
#define ARR_MAX 1000u
#define ARR_SIZES 4
#define ARR_BLOCKS 5 /* blocks per side and size */
#define ARR_BLOCKS_QUICK 1

/* throughput */
#define TP_QUEUES 8u  /* default; --queues */
#define TP_THREADS 4u /* default; --threads */
#define TP_QUEUES_MAX 32u  /* 64 KiB slots in a thread's 2 MiB */
#define TP_THREADS_MAX 64u
#define TP_VA (8 * GiB)
#define TP_STRIDE (2 * MiB) /* per thread */
#define TP_RANGE (64 * KiB)
#define TP_BINDS 24000u       /* per thread, rounded down to a multiple of 2 * queues */
#define TP_BINDS_QUICK 400u
#define TP_ROUNDS 3u
#define TP_ROUNDS_QUICK 1u

struct bench {
	struct vmb_client *c;
	uint32_t bo;
	bool quick;
};

/* The first failure, reported once by the entry point (threads fail too, hence the lock). */
static char fail_msg[160];
static pthread_mutex_t fail_lock = PTHREAD_MUTEX_INITIALIZER;

static int fail(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fail(int err, const char *fmt, ...)
{
	va_list ap;
	char what[120];

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&fail_lock);
	if (!fail_msg[0])
		snprintf(fail_msg, sizeof(fail_msg), "%s: %s", what, strerror(-err));
	pthread_mutex_unlock(&fail_lock);
	return err;
}

/* ---- clock, statistics, output ----------------------------------------------------------- */


static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}


/* @q-quantile (0..1) of @n samples, sorted in place; NaN when there are none. */
static double quantile_u64(uint64_t *v, size_t n, double q)
{
	if (!n)
		return NAN;
	qsort(v, n, sizeof(*v), cmp_u64);
	return (double)v[(size_t)(q * (double)(n - 1) + 0.5)];
}






struct lat {
	double p50, p99;
};

static struct lat lat_of(uint64_t *v, size_t n)
{
	return (struct lat){quantile_u64(v, n, 0.50), quantile_u64(v, n, 0.99)};
}

static void json_lat(const char *key, const struct lat *l)
{
	printf("\"%s\":{\"p50\":", key);
	json_num(l->p50);
	printf(",\"p99\":");
	json_num(l->p99);
	printf("}");
}

/* ---- binding and waiting ------------------------------------------------------------------- */

/* One call: synchronous when @slot is NULL, else asynchronous with an out user fence that
 * writes @value to *@slot. */
static int bind_call(struct vmb_client *c, uint32_t vm, uint32_t queue, const struct vmb_bind_op *ops, uint32_t n,
		     uint64_t *slot, uint64_t value)
{
	struct vmb_sync s = {.type = VMB_SYNC_USER_FENCE, .flags = VMB_SYNC_FLAG_SIGNAL,
			     .addr = (uint64_t)(uintptr_t)slot, .value = value};
	struct vmb_vm_bind b = {.vm_id = vm, .queue_id = queue, .num_binds = n, .binds = (uint64_t)(uintptr_t)ops};

	if (slot) {
		b.flags = VMB_VM_BIND_FLAG_ASYNC;
		b.num_syncs = 1;
		b.syncs = (uint64_t)(uintptr_t)&s;
	}
	return vmb_vm_bind(c, &b);
}

/* Reads *@slot until it holds @v (values only grow); with @yield, sched_yield() between reads. */
static int spin_until(const uint64_t *slot, uint64_t v, bool yield)
{
	uint64_t start = 0;

	for (unsigned int k = 1;; k++) {
		if (__atomic_load_n(slot, __ATOMIC_ACQUIRE) >= v)
			return 0;
		if (yield)
			sched_yield();
		else
			vmb_cpu_relax();
		if (!(k & 1023)) {
			uint64_t t = now_ns();
			if (!start)
				start = t;
			else if (t - start > (uint64_t)SPIN_LIMIT_NS)
				return -ETIME;
		}
	}
}

/* vmb_user_fence_wait() until *@slot >= @v. */
static int ufence_wait(struct vmb_client *c, uint64_t *slot, uint64_t v)
{
	struct vmb_user_fence_wait w = {.addr = (uint64_t)(uintptr_t)slot, .value = v, .mask = ~0ull,
					.timeout = WAIT_LIMIT_NS, .op = VMB_UFENCE_OP_GTE};
	int err;

	do
		err = vmb_user_fence_wait(c, &w);
	while (err == -EINTR);
	return err;
}

static int vm_new(struct vmb_client *c, uint32_t *vm)
{
	struct vmb_vm_create vc = {0};
	int err = vmb_vm_create(c, &vc);
	if (err)
		return fail(err, "vmb_vm_create");
	*vm = vc.vm_id;
	return 0;
}

static int queue_new(struct vmb_client *c, uint32_t vm, uint32_t *queue, const char *section)
{
	struct vmb_bind_queue_create qc = {.vm_id = vm};
	int err = vmb_bind_queue_create(c, &qc);
	if (err)
		return fail(err, "%s: vmb_bind_queue_create", section);
	*queue = qc.queue_id;
	return 0;
}

static int queue_destroy(struct vmb_client *c, uint32_t vm, uint32_t queue, const char *section)
{
	struct vmb_bind_queue_destroy qd = {.vm_id = vm, .queue_id = queue};
	int err = vmb_bind_queue_destroy(c, &qd);
	if (err)
		return fail(err, "%s: vmb_bind_queue_destroy", section);
	return 0;
}

/* The end of a section: nothing left mapped, every structure consistent, the vm gone. */
static int vm_check_destroy(struct vmb_client *c, uint32_t vm, const char *section)
{
	struct vmb_vm_stats st = {.vm_id = vm};
	struct vmb_client_validate val = {0};
	struct vmb_vm_destroy vd = {.vm_id = vm};
	int err;

	if ((err = vmb_vm_query_stats(c, &st)))
		return fail(err, "%s: vmb_vm_query_stats", section);
	if (st.num_mappings)
		return fail(-EUCLEAN, "%s: %llu mappings left at the end, expected none", section,
			    (unsigned long long)st.num_mappings);
	if ((err = vmb_client_validate(c, &val)))
		return fail(err, "%s: vmb_client_validate", section);
	if ((err = vmb_vm_destroy(c, &vd)))
		return fail(err, "%s: vmb_vm_destroy", section);
	return 0;
}

/* ---- latency: one op per call, idle queue ------------------------------------------------- */

enum { L_SYNC, L_SPIN, L_YIELD, L_WAIT, L_BOMAP, L_SIDES };
static const char *const l_key[L_SIDES] = {"sync", "async_spin", "async_yield", "async_wait", "async_bomap"};
static const char *const l_name[L_SIDES] = {"sync", "async spin", "async yield", "async wait", "async bomap"};

struct lat_res {
	unsigned int iters;
	struct lat call[L_SIDES], sig[L_SIDES]; /* sig: NaN for sync */
	int best;                               /* L_SPIN or L_YIELD: the lower signalled p50 */
};

/* Static, like every user-fence location here: after a failure, a job still in flight writes
 * its fence until vmb_client_close() has run it. */
static struct lat_run {
	struct vmb_client *c;
	uint32_t vm, queue; /* queue: the asynchronous side's */
	struct vmb_bind_op map, unmap;
	uint64_t slot __attribute__((aligned(64)));
	uint64_t seq;
	uint32_t fence_bo;  /* async bomap: the fence is the first word of this BO's CPU map */
	uint64_t *bo_slot;
} lat_run;

/* Iteration @i (MAP when even, UNMAP when odd) of side @side; @call, @sig in ns. */
static int lat_one(struct lat_run *r, int side, unsigned int i, uint64_t *call, uint64_t *sig)
{
	const struct vmb_bind_op *op = i % 2 ? &r->unmap : &r->map;
	uint64_t *slot = side == L_SYNC ? NULL : side == L_BOMAP ? r->bo_slot : &r->slot;
	uint64_t v = side == L_SYNC ? 0 : ++r->seq;
	int err;

	uint64_t t0 = now_ns();
	err = bind_call(r->c, r->vm, slot ? r->queue : 0, op, 1, slot, v);
	uint64_t t1 = now_ns();
	if (err)
		return fail(err, "latency: vmb_vm_bind (%s, %s)", l_name[side], i % 2 ? "UNMAP" : "MAP");
	switch (side) {
	case L_SPIN:
	case L_YIELD:
		err = spin_until(&r->slot, v, side == L_YIELD);
		break;
	case L_WAIT:
	case L_BOMAP:
		err = ufence_wait(r->c, slot, v);
		break;
	default:
		break;
	}
	uint64_t t2 = now_ns();
	if (err)
		return fail(err, "latency: waiting for the out user fence (%s)", l_name[side]);
	*call = t1 - t0;
	*sig = t2 - t0;
	return 0;
}

static int bench_latency(struct bench *b, struct lat_res *res)
{
	unsigned int n = b->quick ? LAT_ITERS_QUICK : LAT_ITERS;
	struct lat_run *r = &lat_run;
	uint64_t *call[L_SIDES] = {0}, *sig[L_SIDES] = {0};
	uint64_t junk_a, junk_b;
	int err = 0;

	memset(res, 0, sizeof(*res));
	res->iters = n;
	r->c = b->c;
	r->map = (struct vmb_bind_op){.op = VMB_BIND_OP_MAP, .bo_handle = b->bo, .addr = LAT_VA, .range = LAT_RANGE};
	r->unmap = (struct vmb_bind_op){.op = VMB_BIND_OP_UNMAP, .addr = LAT_VA, .range = LAT_RANGE};
	for (int s = 0; s < L_SIDES; s++)
		if (!(call[s] = malloc(n * sizeof(uint64_t))) || !(sig[s] = malloc(n * sizeof(uint64_t))))
			err = fail(-ENOMEM, "latency");
	if (!err)
		err = vm_new(b->c, &r->vm);
	if (!err)
		err = queue_new(b->c, r->vm, &r->queue, "latency");
	if (!err) { /* async bomap's fence: a BO's CPU map (its pages outlive a failed run's jobs) */
		struct vmb_bo_create bc = {.size = 4096, .placements = VMB_PLACE_SYSTEM};
		struct vmb_bo_mmap mm = {0};
		if ((err = vmb_bo_create(b->c, &bc)))
			err = fail(err, "latency: vmb_bo_create (fence)");
		mm.handle = r->fence_bo = bc.handle;
		if (!err && (err = vmb_bo_mmap(b->c, &mm)))
			err = fail(err, "latency: vmb_bo_mmap (fence)");
		r->bo_slot = err ? NULL : (uint64_t *)(uintptr_t)mm.ptr;
	}
	/* warm-up: one untimed block of each side */
	for (int s = 0; s < L_SIDES && !err; s++)
		for (unsigned int i = 0; i < LAT_BLOCK && !err; i++)
			err = lat_one(r, s, i, &junk_a, &junk_b);
	/* blocks of each side in turn; the order rotates every round */
	for (unsigned int done = 0, round = 0; done < n && !err; done += LAT_BLOCK, round++) {
		unsigned int end = done + LAT_BLOCK < n ? done + LAT_BLOCK : n;
		if (round % 8 == 0)
			fprintf(stderr, "bench bind: latency %u/%u\n", done, n);
		for (int k = 0; k < L_SIDES && !err; k++) {
			int s = (int)((k + round) % L_SIDES);
			/* an untimed MAP and UNMAP first: see "Interleaving" above */
			for (unsigned int i = 0; i < 2 && !err; i++)
				err = lat_one(r, s, i, &junk_a, &junk_b);
			for (unsigned int i = done; i < end && !err; i++)
				err = lat_one(r, s, i, &call[s][i], &sig[s][i]);
			/* an odd block would leave the range mapped: unmap it (untimed) */
			if (!err && (end - done) % 2)
				err = lat_one(r, s, 1, &junk_a, &junk_b);
		}
	}
	if (!err)
		err = queue_destroy(b->c, r->vm, r->queue, "latency");
	if (!err)
		err = vm_check_destroy(b->c, r->vm, "latency");
	if (!err) {
		struct vmb_bo_munmap um = {.handle = r->fence_bo, .ptr = (uint64_t)(uintptr_t)r->bo_slot};
		struct vmb_bo_destroy bd = {.handle = r->fence_bo};
		if ((err = vmb_bo_munmap(b->c, &um)) || (err = vmb_bo_destroy(b->c, &bd)))
			err = fail(err, "latency: the fence BO");
	}
	if (!err) {
		for (int s = 0; s < L_SIDES; s++) {
			res->call[s] = lat_of(call[s], n);
			res->sig[s] = s == L_SYNC ? (struct lat){NAN, NAN} : lat_of(sig[s], n);
		}
		res->best = res->sig[L_YIELD].p50 < res->sig[L_SPIN].p50 ? L_YIELD : L_SPIN;
	}
	for (int s = 0; s < L_SIDES; s++) {
		free(call[s]);
		free(sig[s]);
	}
	return err;
}

/* ---- arrays: per-op cost in one call ------------------------------------------------------ */

static const unsigned int arr_ops[ARR_SIZES] = {1, 10, 100, 1000};
static const unsigned int arr_reps[ARR_SIZES] = {2000, 1000, 300, 100};
static const unsigned int arr_reps_quick[ARR_SIZES] = {20, 10, 5, 3};

/* Samples of one repetition, ns per op. */
enum { ARR_A_CALL, ARR_A_MAP, ARR_A_UNMAP, ARR_A_BOTH, ARR_S_MAP, ARR_S_UNMAP, ARR_S_BOTH, ARR_SERIES };

struct arr_row {
	unsigned int ops, reps;
	double a_call, a_map, a_unmap, a_both; /* ns per op, medians over the repetitions */
	double s_map, s_unmap, s_both;
};

static struct arr_run {
	struct vmb_client *c;
	uint32_t vm, queue; /* queue: the asynchronous side's */
	struct vmb_bind_op *maps, *unmaps; /* ARR_MAX each */
	uint64_t slot __attribute__((aligned(64)));
	uint64_t seq;
} arr_run;

/* One call of @n ops; asynchronous ones are waited for. @call: the call's duration; @total:
 * call start -> complete (the fence observed, or the call returned). */
static int arr_one(struct arr_run *r, const struct vmb_bind_op *ops, unsigned int n, bool async, uint64_t *call,
		   uint64_t *total)
{
	uint64_t v = async ? ++r->seq : 0;
	int err;

	uint64_t t0 = now_ns();
	err = bind_call(r->c, r->vm, async ? r->queue : 0, ops, n, async ? &r->slot : NULL, v);
	uint64_t t1 = now_ns();
	if (err)
		return fail(err, "arrays: vmb_vm_bind (%s, %u x %s)", async ? "async" : "sync", n,
			    ops[0].op == VMB_BIND_OP_MAP ? "MAP" : "UNMAP");
	if (async && (err = spin_until(&r->slot, v, true)))
		return fail(err, "arrays: waiting for the out user fence of %u ops", n);
	uint64_t t2 = now_ns();
	*call = t1 - t0;
	*total = t2 - t0;
	return 0;
}

/* One MAP call and one UNMAP call of @n ops on side @async, recorded as repetition @i unless
 * @i is -1 (untimed). */
static int arr_round(struct arr_run *r, unsigned int n, bool async, int i, double **v)
{
	uint64_t c_map, t_map, c_unmap, t_unmap;
	int err;

	if ((err = arr_one(r, r->maps, n, async, &c_map, &t_map)) ||
	    (err = arr_one(r, r->unmaps, n, async, &c_unmap, &t_unmap)) || i < 0)
		return err;
	if (async) {
		v[ARR_A_CALL][i] = (double)(c_map + c_unmap) / (2.0 * n);
		v[ARR_A_MAP][i] = (double)t_map / n;
		v[ARR_A_UNMAP][i] = (double)t_unmap / n;
		v[ARR_A_BOTH][i] = (double)(t_map + t_unmap) / (2.0 * n);
	} else {
		v[ARR_S_MAP][i] = (double)t_map / n;
		v[ARR_S_UNMAP][i] = (double)t_unmap / n;
		v[ARR_S_BOTH][i] = (double)(t_map + t_unmap) / (2.0 * n);
	}
	return 0;
}

/* @reps repetitions of each side in @blocks blocks per side, the sides' blocks alternating. */
static int arr_size(struct arr_run *r, unsigned int n, unsigned int reps, unsigned int blocks, struct arr_row *row)
{
	double *mem = malloc(ARR_SERIES * reps * sizeof(double)), *v[ARR_SERIES];
	unsigned int per = (reps + blocks - 1) / blocks, done[2] = {0, 0};
	int err = 0;

	if (!mem)
		return fail(-ENOMEM, "arrays");
	for (int k = 0; k < ARR_SERIES; k++)
		v[k] = mem + k * reps;
	row->ops = n;
	row->reps = reps;
	for (unsigned int k = 0; k < blocks && !err; k++) {
		for (int j = 0; j < 2 && !err; j++) {
			bool async = (j + k) % 2 == 0; /* alternate which side goes first */
			unsigned int *d = &done[async], end = *d + per < reps ? *d + per : reps;
			/* the first round of a block is untimed: it finds the caches as the other side
			 * left them (a worker's CPU, or ours) */
			err = arr_round(r, n, async, -1, v);
			for (; *d < end && !err; (*d)++)
				err = arr_round(r, n, async, (int)*d, v);
		}
	}
	if (!err) {
		row->a_call = median_double(v[ARR_A_CALL], reps);
		row->a_map = median_double(v[ARR_A_MAP], reps);
		row->a_unmap = median_double(v[ARR_A_UNMAP], reps);
		row->a_both = median_double(v[ARR_A_BOTH], reps);
		row->s_map = median_double(v[ARR_S_MAP], reps);
		row->s_unmap = median_double(v[ARR_S_UNMAP], reps);
		row->s_both = median_double(v[ARR_S_BOTH], reps);
	}
	free(mem);
	return err;
}

static int bench_arrays(struct bench *b, struct arr_row *rows)
{
	struct arr_run *r = &arr_run;
	int err = 0;

	r->c = b->c;
	r->maps = calloc(ARR_MAX, sizeof(*r->maps));
	r->unmaps = calloc(ARR_MAX, sizeof(*r->unmaps));
	if (!r->maps || !r->unmaps)
		err = fail(-ENOMEM, "arrays");
	for (unsigned int k = 0; k < ARR_MAX && !err; k++) {
		r->maps[k] = (struct vmb_bind_op){.op = VMB_BIND_OP_MAP, .bo_handle = b->bo, .bo_offset = k * PAGE,
						  .addr = ARR_VA + k * PAGE, .range = PAGE};
		r->unmaps[k] = (struct vmb_bind_op){.op = VMB_BIND_OP_UNMAP, .addr = ARR_VA + k * PAGE, .range = PAGE};
	}
	if (!err)
		err = vm_new(b->c, &r->vm);
	if (!err)
		err = queue_new(b->c, r->vm, &r->queue, "arrays");
	for (int i = 0; i < ARR_SIZES && !err; i++) {
		fprintf(stderr, "bench bind: arrays of %u ops\n", arr_ops[i]);
		err = arr_size(r, arr_ops[i], b->quick ? arr_reps_quick[i] : arr_reps[i],
			       b->quick ? ARR_BLOCKS_QUICK : ARR_BLOCKS, &rows[i]);
	}
	if (!err)
		err = queue_destroy(b->c, r->vm, r->queue, "arrays");
	if (!err)
		err = vm_check_destroy(b->c, r->vm, "arrays");
	free(r->maps);
	free(r->unmaps);
	return err;
}

/* ---- throughput: 8 queues x 4 threads, on one vm or on 8 ----------------------------------- */

struct tp_slot {
	uint64_t v;
} __attribute__((aligned(64)));

/* The submitter layout (bench_bind_layout: --threads, --queues). */
static unsigned int tp_threads = TP_THREADS, tp_queues = TP_QUEUES;

int bench_bind_layout(unsigned int threads, unsigned int queues)
{
	if (threads > TP_THREADS_MAX || queues > TP_QUEUES_MAX)
		return -EINVAL;
	if (threads)
		tp_threads = threads;
	if (queues)
		tp_queues = queues;
	return 0;
}

/* Queue index q binds through queues[q] of vms[q]: one vm holding the 8 queues (vms[q] all the
 * same), or 8 vms with one bind queue each. */
static struct tp_run {
	struct vmb_client *c;
	const char *section;
	uint32_t bo;
	unsigned int nvms; /* 1 or tp_queues */
	uint32_t vms[TP_QUEUES_MAX];
	uint32_t queues[TP_QUEUES_MAX];
	unsigned int binds; /* per thread */
	bool async;
	int go; /* set once every thread exists: they start together */
	struct tp_slot slots[TP_THREADS_MAX][TP_QUEUES_MAX];
} tp_run;

struct tp_thread {
	struct tp_run *run;
	unsigned int t;
	pthread_t th;
	int err;
	uint64_t backlog;  /* async: its binds not yet signalled when it had submitted the last */
	uint64_t drain_ns; /* async: its final waits */
};

static void *tp_worker(void *arg)
{
	struct tp_thread *w = arg;
	struct tp_run *r = w->run;
	uint64_t base = TP_VA + w->t * TP_STRIDE;
	struct vmb_bind_op map = {.op = VMB_BIND_OP_MAP, .bo_handle = r->bo, .range = TP_RANGE};
	struct vmb_bind_op unmap = {.op = VMB_BIND_OP_UNMAP, .range = TP_RANGE};
	int err = 0;

	while (!__atomic_load_n(&r->go, __ATOMIC_ACQUIRE))
		sched_yield();
	for (unsigned int i = 0; i < r->binds && !err; i++) {
		unsigned int q = i % tp_queues, n = i / tp_queues; /* n: this queue's bind number */
		struct vmb_bind_op *op = n % 2 ? &unmap : &map;
		op->addr = base + q * TP_RANGE;
		map.bo_offset = q * TP_RANGE;
		err = bind_call(r->c, r->vms[q], r->queues[q], op, 1, r->async ? &r->slots[w->t][q].v : NULL, n + 1);
		if (err)
			fail(err, "%s: vmb_vm_bind (%s, thread %u, queue %u)", r->section, r->async ? "async" : "sync",
			     w->t, q);
	}
	/* the n-th bind (from 1) of queue q writes n: wait for each queue's last value */
	uint64_t t0 = now_ns();
	for (unsigned int q = 0; q < tp_queues && q < r->binds && r->async && !err; q++) {
		uint64_t last = (r->binds - 1 - q) / tp_queues + 1;
		w->backlog += last - __atomic_load_n(&r->slots[w->t][q].v, __ATOMIC_ACQUIRE);
	}
	for (unsigned int q = 0; q < tp_queues && q < r->binds && r->async && !err; q++) {
		uint64_t last = (r->binds - 1 - q) / tp_queues + 1;
		if ((err = ufence_wait(r->c, &r->slots[w->t][q].v, last)))
			fail(err, "%s: waiting for thread %u's fences on queue %u", r->section, w->t, q);
	}
	w->drain_ns = now_ns() - t0;
	w->err = err;
	return NULL;
}

/* One round of one side: wall seconds in *@secs; async: the backlog of all threads when they
 * had submitted everything and the longest final wait in *@backlog, *@drain_ns. */
static int tp_round(struct tp_run *r, bool async, double *secs, double *backlog, double *drain_ns)
{
	struct tp_thread th[TP_THREADS_MAX];
	unsigned int started = 0;
	int err = 0;

	r->async = async;
	r->go = 0;
	memset(r->slots, 0, sizeof(r->slots));
	for (unsigned int t = 0; t < tp_threads; t++) {
		th[t] = (struct tp_thread){.run = r, .t = t};
		if ((err = -pthread_create(&th[t].th, NULL, tp_worker, &th[t]))) {
			fail(err, "%s: pthread_create", r->section);
			r->binds = 0; /* the threads already started have nothing to do */
			break;
		}
		started++;
	}
	uint64_t t0 = now_ns();
	__atomic_store_n(&r->go, 1, __ATOMIC_RELEASE);
	for (unsigned int t = 0; t < started; t++) {
		pthread_join(th[t].th, NULL);
		if (!err)
			err = th[t].err;
	}
	*secs = (double)(now_ns() - t0) / 1e9;
	*backlog = *drain_ns = 0;
	for (unsigned int t = 0; t < started; t++) {
		*backlog += (double)th[t].backlog;
		if ((double)th[t].drain_ns > *drain_ns)
			*drain_ns = (double)th[t].drain_ns;
	}
	return err;
}

struct tp_res {
	unsigned int vms, binds, rounds;
	double a_round[TP_ROUNDS], s_round[TP_ROUNDS]; /* seconds */
	double backlog[TP_ROUNDS], drain_ns[TP_ROUNDS]; /* async rounds, see tp_round() */
	double a_rate, s_rate;                         /* binds per second, medians */
};

/* @nvms: 1 (the 8 queues on one vm) or tp_queues (one vm per queue index). */
static int bench_throughput(struct bench *b, unsigned int nvms, struct tp_res *res)
{
	struct tp_run *r = &tp_run;
	double rate[2][TP_ROUNDS];
	int err = 0;

	memset(res, 0, sizeof(*res));
	res->vms = nvms;
	res->binds = b->quick ? TP_BINDS_QUICK : TP_BINDS;
	res->binds -= res->binds % (2 * tp_queues); /* every slot ends unmapped */
	res->rounds = b->quick ? TP_ROUNDS_QUICK : TP_ROUNDS;
	r->c = b->c;
	r->bo = b->bo;
	r->nvms = nvms;
	r->section = nvms == 1 ? "throughput" : "throughput (vms)";
	for (unsigned int q = 0; q < tp_queues && !err; q++) {
		if (q < nvms)
			err = vm_new(b->c, &r->vms[q]);
		else
			r->vms[q] = r->vms[0];
		if (!err)
			err = queue_new(b->c, r->vms[q], &r->queues[q], r->section);
	}
	/* warm-up: a short untimed round of each side */
	r->binds = 16 * tp_queues;
	for (int s = 0; s < 2 && !err; s++) {
		double junk;
		err = tp_round(r, s == 0, &junk, &junk, &junk);
	}
	for (unsigned int k = 0; k < res->rounds && !err; k++) {
		for (int j = 0; j < 2 && !err; j++) {
			bool async = (j + k) % 2 == 0;
			double secs = 0, backlog, drain;
			fprintf(stderr, "bench bind: %s round %u/%u, %s\n", r->section, k + 1, res->rounds,
				async ? "async" : "sync");
			r->binds = res->binds;
			if ((err = tp_round(r, async, &secs, &backlog, &drain)))
				break;
			(async ? res->a_round : res->s_round)[k] = secs;
			if (async) {
				res->backlog[k] = backlog;
				res->drain_ns[k] = drain;
			}
			rate[async ? 0 : 1][k] = (double)res->binds * tp_threads / secs;
		}
	}
	for (unsigned int q = 0; q < tp_queues && !err; q++)
		err = queue_destroy(b->c, r->vms[q], r->queues[q], r->section);
	for (unsigned int q = 0; q < nvms && !err; q++)
		err = vm_check_destroy(b->c, r->vms[q], r->section);
	if (!err) {
		res->a_rate = median_double(rate[0], res->rounds);
		res->s_rate = median_double(rate[1], res->rounds);
	}
	return err;
}

/* ---- goals and output --------------------------------------------------------------------- */

struct goal {
	const char *what;
	double value, target;
	const char *unit;
};

static bool goal_met(const struct goal *g)
{
	return !isnan(g->value) && g->value <= g->target;
}

static double ratio(double a, double b)
{
	return a / b;
}

/* The result lines of one throughput case. */
static void print_tp_rows(const struct tp_res *tp)
{
	char x[16], y[16];

	printf("  async %s binds/s, sync %s binds/s: async/sync %.2fx (median of %u rounds; seconds async",
	       fmt_rate(tp->a_rate, x, sizeof(x)), fmt_rate(tp->s_rate, y, sizeof(y)), ratio(tp->a_rate, tp->s_rate),
	       tp->rounds);
	for (unsigned int k = 0; k < tp->rounds; k++)
		printf(" %.3f", tp->a_round[k]);
	printf(", sync");
	for (unsigned int k = 0; k < tp->rounds; k++)
		printf(" %.3f", tp->s_round[k]);
	printf(")\n  async backlog: binds not yet signalled when the threads had submitted their last (all threads),\n"
	       "  and the longest final wait, per round:");
	for (unsigned int k = 0; k < tp->rounds; k++)
		printf("%s %.0f / %s", k ? ";" : "", tp->backlog[k], fmt_ns(tp->drain_ns[k], x, sizeof(x)));
	printf("\n");
}

static void print_table(const struct bench *b, double overhead, long cpus, const char *workers,
			const struct lat_res *l, const struct arr_row *rows, const struct tp_res *tp,
			const struct tp_res *tpv, const struct goal *goals, size_t ngoals)
{
	char x[16], y[16], z[16], w[16];

	printf("vmbind bench bind%s: asynchronous VM_BIND (out user fence) vs synchronous, soft device;\n"
	       "%ld CPUs online, VMB_SCHED_WORKERS %s; a clock_gettime() pair costs %.0f ns (in every span).\n\n",
	       b->quick ? " --quick" : "", cpus, workers ? workers : "unset (library default)", overhead);
	bench_print_machine();
	printf("\n");

	printf("latency: 1 op per call, MAP/UNMAP alternately, 64 KiB at one VA, idle queue (async: a bind queue, sync:\n"
	       "the default one); %u iterations per side, in blocks of %u after an untimed MAP + UNMAP.\n"
	       "call = the call's duration; signalled = call start -> fence value seen.\n",
	       l->iters, LAT_BLOCK);
	printf("  %-12s %-20s %-24s %s\n", "side", "call p50 / p99", "signalled p50 / p99", "ratio to sync (p50)");
	for (int s = 0; s < L_SIDES; s++) {
		char c[48], g[48];
		snprintf(c, sizeof(c), "%s / %s", fmt_ns(l->call[s].p50, x, sizeof(x)), fmt_ns(l->call[s].p99, y, sizeof(y)));
		if (s == L_SYNC) {
			printf("  %-12s %-20s %-24s %s\n", l_name[s], c, "(= call)", "1");
			continue;
		}
		snprintf(g, sizeof(g), "%s / %s", fmt_ns(l->sig[s].p50, z, sizeof(z)), fmt_ns(l->sig[s].p99, w, sizeof(w)));
		printf("  %-12s %-20s %-24s call %.2fx, signalled %.2fx\n", l_name[s], c, g,
		       ratio(l->call[s].p50, l->call[L_SYNC].p50), ratio(l->sig[s].p50, l->call[L_SYNC].p50));
	}
	printf("  spin: re-read with a pause hint; yield: sched_yield() between reads; wait: vmb_user_fence_wait();\n"
	       "  bomap: wait, the fence in a BO's CPU map (no system call to check its address).\n\n");

	printf("arrays: one call of n MAPs (4 KiB each, consecutive pages), then one of the n UNMAPs; ns per op,\n"
	       "median of the repetitions (in %u block(s) per side, each after an untimed round). async = call start ->\n"
	       "fence seen (spin with sched_yield()); a.call = its vmb_vm_bind() alone (validation + prepare);\n"
	       "both = (MAP + UNMAP) / 2n.\n", b->quick ? ARR_BLOCKS_QUICK : ARR_BLOCKS);
	printf("  %5s %5s | %8s %8s %8s %8s | %8s %8s %8s | %s\n", "n", "reps", "a.call", "a.map", "a.unmap", "a.both",
	       "s.map", "s.unmap", "s.both", "async/sync (both)");
	for (int i = 0; i < ARR_SIZES; i++) {
		const struct arr_row *r = &rows[i];
		printf("  %5u %5u | %8.0f %8.0f %8.0f %8.0f | %8.0f %8.0f %8.0f | %.2fx\n", r->ops, r->reps, r->a_call,
		       r->a_map, r->a_unmap, r->a_both, r->s_map, r->s_unmap, r->s_both, ratio(r->a_both, r->s_both));
	}
	printf("\n");

	printf("throughput: %u bind queues x %u threads on one vm, 1-op binds of 64 KiB round-robin over the queues,\n"
	       "MAP/UNMAP alternately, %u binds per thread; async: out user fence each, waited for at the end.\n",
	       tp_queues, tp_threads, tp->binds);
	print_tp_rows(tp);
	printf("\nthroughput, %u vms: the same threads and binds, queue index q on a vm of its own (one bind queue\n"
	       "each), so that binds of different queues share no vm.\n", tpv->vms);
	print_tp_rows(tpv);
	printf("  %u vms / one vm: async %.2fx, sync %.2fx\n\n", tpv->vms, ratio(tpv->a_rate, tp->a_rate),
	       ratio(tpv->s_rate, tp->s_rate));

	printf("goals:\n");
	for (size_t i = 0; i < ngoals; i++)
		printf("  %-58s %8.2f %s (goal <= %g %s): %s\n", goals[i].what, goals[i].value, goals[i].unit,
		       goals[i].target, goals[i].unit, goal_met(&goals[i]) ? "met" : "missed");
	if (b->quick)
		printf("(--quick: a smoke run with few samples; the goals are meant for the full run)\n");
}

/* One throughput case's members, after the key @key (the object is left open). */
static void json_tp(const char *key, const struct tp_res *tp)
{
	printf("\"%s\":{\"vms\":%u,\"queues\":%u,\"threads\":%u,\"binds_per_thread\":%u,\"range_bytes\":%llu,"
	       "\"rounds\":%u,\"async_binds_per_s\":",
	       key, tp->vms, tp_queues, tp_threads, tp->binds, (unsigned long long)TP_RANGE, tp->rounds);
	json_num(tp->a_rate);
	printf(",\"sync_binds_per_s\":");
	json_num(tp->s_rate);
	printf(",\"ratio_async_sync\":");
	json_num(ratio(tp->a_rate, tp->s_rate));
	printf(",\"async_round_s\":[");
	for (unsigned int k = 0; k < tp->rounds; k++) {
		printf("%s", k ? "," : "");
		json_num(tp->a_round[k]);
	}
	printf("],\"sync_round_s\":[");
	for (unsigned int k = 0; k < tp->rounds; k++) {
		printf("%s", k ? "," : "");
		json_num(tp->s_round[k]);
	}
	printf("],\"async_backlog\":[");
	for (unsigned int k = 0; k < tp->rounds; k++) {
		printf("%s", k ? "," : "");
		json_num(tp->backlog[k]);
	}
	printf("],\"async_drain_ns\":[");
	for (unsigned int k = 0; k < tp->rounds; k++) {
		printf("%s", k ? "," : "");
		json_num(tp->drain_ns[k]);
	}
	printf("]");
}

static void print_json(const struct bench *b, double overhead, long cpus, const char *workers,
		       const struct lat_res *l, const struct arr_row *rows, const struct tp_res *tp,
		       const struct tp_res *tpv, const struct goal *goals, size_t ngoals)
{
	printf("{\"bench\":\"bind\",\"quick\":%s,", b->quick ? "true" : "false");
	bench_json_machine();
	printf("\"cpus\":%ld,\"sched_workers_env\":", cpus);
	if (workers && *workers && strspn(workers, "0123456789") == strlen(workers))
		printf("\"%s\"", workers);
	else
		printf("null"); /* unset (or not a number: nothing to quote safely) */
	printf(",\"timer_overhead_ns\":");
	json_num(overhead);

	printf(",\"latency\":{\"iterations\":%u,\"range_bytes\":%llu,\"block\":%u,\"sides\":{", l->iters,
	       (unsigned long long)LAT_RANGE, LAT_BLOCK);
	for (int s = 0; s < L_SIDES; s++) {
		printf("%s\"%s\":{", s ? "," : "", l_key[s]);
		json_lat("call", &l->call[s]);
		if (s != L_SYNC) {
			printf(",");
			json_lat("signalled", &l->sig[s]);
		}
		printf("}");
	}
	printf("},\"ratios\":{");
	for (int s = L_SPIN; s < L_SIDES; s++) {
		printf("%s\"%s\":{\"call_vs_sync\":", s != L_SPIN ? "," : "", l_key[s]);
		json_num(ratio(l->call[s].p50, l->call[L_SYNC].p50));
		printf(",\"signalled_vs_sync\":");
		json_num(ratio(l->sig[s].p50, l->call[L_SYNC].p50));
		printf("}");
	}
	printf("},\"signalled_p50_best_ns\":");
	json_num(l->sig[l->best].p50);
	printf(",\"best_side\":\"%s\"}", l_key[l->best]);

	printf(",\"arrays\":[");
	for (int i = 0; i < ARR_SIZES; i++) {
		const struct arr_row *r = &rows[i];
		printf("%s{\"ops\":%u,\"reps\":%u,\"async\":{\"call_ns_per_op\":", i ? "," : "", r->ops, r->reps);
		json_num(r->a_call);
		printf(",\"map_ns_per_op\":");
		json_num(r->a_map);
		printf(",\"unmap_ns_per_op\":");
		json_num(r->a_unmap);
		printf(",\"ns_per_op\":");
		json_num(r->a_both);
		printf("},\"sync\":{\"map_ns_per_op\":");
		json_num(r->s_map);
		printf(",\"unmap_ns_per_op\":");
		json_num(r->s_unmap);
		printf(",\"ns_per_op\":");
		json_num(r->s_both);
		printf("},\"ratio_async_sync\":");
		json_num(ratio(r->a_both, r->s_both));
		printf("}");
	}

	printf("],");
	json_tp("throughput", tp);
	printf("},");
	json_tp("throughput_vms", tpv);
	printf(",\"ratio_vs_one_vm\":{\"async\":");
	json_num(ratio(tpv->a_rate, tp->a_rate));
	printf(",\"sync\":");
	json_num(ratio(tpv->s_rate, tp->s_rate));
	printf("}}");

	printf(",\"goals\":[");
	for (size_t i = 0; i < ngoals; i++) {
		printf("%s{\"goal\":\"%s\",\"value\":", i ? "," : "", goals[i].what);
		json_num(goals[i].value);
		printf(",\"target\":");
		json_num(goals[i].target);
		printf(",\"unit\":\"%s\",\"compare\":\"<=\",\"met\":%s}", goals[i].unit,
		       goal_met(&goals[i]) ? "true" : "false");
	}
	printf("]}\n");
}

/* ---- entry -------------------------------------------------------------------------------- */

int cmd_bench_bind(bool json, bool quick)
{
	struct bench b = {.quick = quick};
	struct vmb_bo_create bc = {.size = BO_BYTES, .placements = VMB_PLACE_VRAM};
	static struct lat_res lat;
	static struct arr_row rows[ARR_SIZES];
	static struct tp_res tp, tpv;
	const char *workers = getenv("VMB_SCHED_WORKERS");
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	double overhead = timer_overhead_ns();
	int err;

	if ((err = vmb_client_open(NULL, NULL, &b.c))) {
		fprintf(stderr, "bench bind: vmb_client_open: %s\n", strerror(-err));
		return 1;
	}
	if ((err = vmb_bo_create(b.c, &bc)))
		fail(err, "vmb_bo_create");
	b.bo = bc.handle;
	if (!err)
		err = bench_latency(&b, &lat);
	if (!err)
		err = bench_arrays(&b, rows);
	if (!err)
		err = bench_throughput(&b, 1, &tp);
	if (!err)
		err = bench_throughput(&b, tp_queues, &tpv);
	int cerr = vmb_client_close(b.c);
	if (!err && cerr)
		err = fail(cerr, "vmb_client_close");
	if (err) {
		fprintf(stderr, "bench bind: %s\n", fail_msg[0] ? fail_msg : strerror(-err));
		return 1;
	}

	struct goal goals[] = {
		{"latency: call -> signalled median", lat.sig[lat.best].p50 / 1e3, 10, "us"},
		/* issue 16: the call itself (its peer, the sync call, is in the table above), and a
		 * waiter that blocks in vmb_user_fence_wait (no spinning in the application) */
		{"latency: async 1-op call median (async wait side)", lat.call[L_WAIT].p50 / 1e3, 1, "us"},
		{"latency: call -> signalled median, blocking waiter", lat.sig[L_WAIT].p50 / 1e3, 5, "us"},
		/* the same call without the address check's system call (docs/UAPI.md) */
		{"latency: async 1-op call median, fence in a BO's CPU map", lat.call[L_BOMAP].p50 / 1e3, 1, "us"},
		{"arrays of 1000: async ns per op (call -> signalled)", rows[ARR_SIZES - 1].a_both, 300, "ns"},
	};
	size_t ngoals = sizeof(goals) / sizeof(goals[0]);
	if (json)
		print_json(&b, overhead, cpus, workers, &lat, rows, &tp, &tpv, goals, ngoals);
	else
		print_table(&b, overhead, cpus, workers, &lat, rows, &tp, &tpv, goals, ngoals);
	return 0;
}
