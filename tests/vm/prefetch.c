/* SPDX-License-Identifier: MIT */
/*
 * Description: PREFETCH as device work (vm/migrate.c, vm/job.c). A move's copy runs on the
 * device's DMA engine and completes a fence the device returns; the bind's job commits (page
 * tables re-pointed, the BO switched, the old backing freed) only once that copy is over. With
 * the soft DMA engine held back (the test hook vmb_copy_hold(), core/alloc.h): an asynchronous
 * PREFETCH's call returns, its out-fence stays unsignalled and the BO stays where it was; binds
 * of its vm submitted meanwhile follow it (their fences too), another vm's do not (a move is
 * ordered only against the vms that map its BOs: another client's bind held back by a gate never
 * delays a PREFETCH of this client's own BO), a synchronous bind that maps the moving BO waits
 * in the call, the GPU view reads the data where it still is; released, the fence signals, the
 * BO is
 * in the new region and its data intact. An exec whose in-fence is the PREFETCH's reads the
 * data after the move. A copy that fails (vmb_copy_fail_after()) bans the vm as a failed commit
 * does: the out-fence signals the error (a synchronous PREFETCH returns it), later binds and the
 * GPU view get -EIO, the BO stays where it was and another vm that maps it keeps working.
 * Destroying a vm whose later binds follow a PREFETCH not yet started cancels it (-ECANCELED,
 * nothing moved). The device's consistency check (ops->map_check) sees the page tables map the
 * new backing and refuses a wrong offset, flag or kind. Teardown racing a move whose copy is
 * held back: destroying its vm (from another thread: waits for the copy or cancels the job), the
 * BO's handle, its bind queue, another client's close (waits for that client's copy); fork()
 * (the child's own device prefetches). One call moving a BO there and back (and a third time):
 * it ends where the last op says, no backing left behind; its second copy failing: nothing
 * moved, nothing leaked. Waits in the call behind a pending PREFETCH (a synchronous second
 * PREFETCH, a synchronous MAP of the moving BO) interrupted by a signal: -EINTR, nothing changed,
 * and the same calls go through once it is over. An asynchronous PREFETCH of a BO whose move is
 * pending behind a gate (back, or to the same region; in the first's vm or another) returns at
 * once, and so does a MAP of the BO behind both: each fence signals what its job did with no copy
 * failing, the first or the second failing, and a destroy of any of the three vms (or a close of
 * their client) cancels them in order; the BO ends where the chain leaves it, its data intact, no backing leaked; its n-th
 * allocation failing: -ENOMEM, nothing changed. A BO shared with a second client whose vm maps it: that client
 * closed while the first's PREFETCH re-maps there (copy held; behind a gate). UNMAPs of the
 * moving BO meanwhile (synchronous in another vm from another thread, UNMAP_ALL asynchronous in
 * its own vm) follow the move. An asynchronous MAP of a BO whose move waits behind a gate (in
 * another vm, in the PREFETCH's own) returns at once (a hang detector: a call still in it after a
 * generous bound fails the test): its job follows the move and maps the BO where the move leaves
 * it, the new backing, or the old one when the copy fails (never the freed new one: the client's
 * check); destroying the vm of such a MAP cancels the PREFETCH first; later ops over such a MAP
 * (a page cut out or re-mapped, in its call or the next; more MAPs of the BO; UNMAP_ALL of it),
 * its BO's handle destroyed, both vms destroyed, each with the copy ok or failed; a pipeline of
 * MAP, exec and UNMAP of a BO another thread keeps moving (the exec reads the data each time);
 * a synchronous PREFETCH completes while another vm that maps the BO keeps binding. make test runs it
 * on both soft shapes
 * (vm-prefetch, vm-prefetch-discrete).
 */
#include "lib/harness.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <signal.h>
#include <sys/wait.h>

#include "core/alloc.h"
#include "core/client.h"
#include "core/handle.h"
#include "dev/core.h"
#include "mem/bo.h"
#include "vm/vm.h"
#include "sync/fence.h"
#include "sync/syncobj.h"

#define SEC 1000000000ll
#define MS 1000000ll
#define BO_SIZE (2 * MiB) /* a granule of the discrete shape */
#define VA_A (64 * MiB)
#define VA_B (128 * MiB)
#define CMD_VA (256 * MiB)
#define RES_VA (512 * MiB)

struct fixture {
	struct vmb_client *c;
	uint32_t vm, other, bo, bo2;
	unsigned long failed_before;
};

static uint64_t pattern(uint64_t i) { return 0x5eed000000000000ull | i; }

/* The 8 places of the BO that hold the pattern: word i at pat_off(i). */
static uint64_t pat_off(uint64_t i) { return i * (BO_SIZE / 8) + 8 * i; }

/* Values at 8 places of the BO through @vm's GPU view (mapped at @va). */
static void write_pattern(struct vmb_client *c, uint32_t vm, uint64_t va)
{
	for (uint64_t i = 0; i < 8; i++)
		gpu_write64(c, vm, va + pat_off(i), pattern(i));
}

static void check_pattern(struct vmb_client *c, uint32_t vm, uint64_t va)
{
	for (uint64_t i = 0; i < 8; i++)
		assert_int_equal(gpu_read64(c, vm, va + pat_off(i)), pattern(i));
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	f->c = open_two_vms(&f->vm, &f->other);
	f->bo = bo_new(f->c, BO_SIZE, VMB_PLACE_VRAM | VMB_PLACE_SYSTEM);
	f->bo2 = bo_new(f->c, BO_SIZE, VMB_PLACE_VRAM | VMB_PLACE_SYSTEM);
	bind1(f->c, f->vm, op_map(f->bo, 0, VA_A, BO_SIZE, 0));
	write_pattern(f->c, f->vm, VA_A);
	f->failed_before = vmb_commit_failed_count();
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	vmb_copy_hold(false);
	vmb_copy_fail_after(0, 0);
	return fixture_close(f, f->c);
}

static uint32_t bo_region(struct vmb_client *c, uint32_t bo)
{
	struct vmb_bo_query q = {.handle = bo};
	assert_int_equal(vmb_bo_query(c, &q), 0);
	return q.region;
}

static uint32_t other_region(uint32_t r) { return r == VMB_REGION_VRAM ? VMB_REGION_SYSTEM : VMB_REGION_VRAM; }

/* Binary syncobj @h has signalled within @ns: 0, or -ETIME. */
static int syncobj_done_within(struct vmb_client *c, uint32_t h, int64_t ns)
{
	return __syncobj_wait1(c, h, 0, ns, 0);
}

static int prefetch_async(struct fixture *f, uint32_t vm, uint64_t va, uint32_t region, struct vmb_sync *syncs,
			  uint32_t n)
{
	struct vmb_bind_op op = op_prefetch(va, BO_SIZE, region);
	return __bind_async(f->c, vm, 0, &op, 1, syncs, n);
}

/*
 * The copy held back: the PREFETCH's call returns, its fence is not signalled (a generous bound,
 * not a timing: it cannot signal before the copy), the BO has not moved, the client's check says
 * a bind is pending, the GPU view reads the data where it is; released: the fence signals
 * without error, the BO is in the new region, its data intact, the page tables point there.
 */
static void test_fence_waits_for_copy(void **state)
{
	struct fixture *f = *state;
	uint32_t from = bo_region(f->c, f->bo), to = other_region(from);
	uint32_t s = syncobj_new(f->c, 0);
	struct vmb_sync out = sync_out(s);

	vmb_copy_hold(true);
	assert_int_equal(prefetch_async(f, f->vm, VA_A, to, &out, 1), 0);
	assert_int_equal(syncobj_done_within(f->c, s, 200 * MS), -ETIME);
	assert_int_equal(bo_region(f->c, f->bo), from);
	struct vmb_client_validate v = {0};
	assert_int_equal(vmb_client_validate(f->c, &v), -EBUSY);
	check_pattern(f->c, f->vm, VA_A);
	vmb_copy_hold(false);
	assert_int_equal(syncobj_error(f->c, s), 0);
	assert_int_equal(bo_region(f->c, f->bo), to);
	check_pattern(f->c, f->vm, VA_A);
	validate_client(f->c);
	assert_int_equal(vmb_commit_failed_count(), f->failed_before);
}

/* A synchronous PREFETCH returns once its copy and commit are over; back and forth. */
static void test_sync_prefetch(void **state)
{
	struct fixture *f = *state;
	uint32_t from = bo_region(f->c, f->bo);
	for (int i = 1; i <= 4; i++) {
		uint32_t to = i & 1 ? other_region(from) : from;
		bind1(f->c, f->vm, op_prefetch(VA_A, BO_SIZE, to));
		assert_int_equal(bo_region(f->c, f->bo), to);
		check_pattern(f->c, f->vm, VA_A);
		validate_client(f->c);
	}
}

struct mapper {
	struct vmb_client *c;
	uint32_t vm, bo;
	atomic_int result; /* 1 while the call runs */
};

static void *map_moving(void *arg)
{
	struct mapper *m = arg;
	atomic_store(&m->result, __bind1(m->c, m->vm, op_map(m->bo, 0, VA_B, BO_SIZE, 0)));
	return NULL;
}

/*
 * While the copy is held back: a later asynchronous bind of the PREFETCH's vm follows it (its
 * fence waits too), one of another vm that maps none of the moving BOs does not (its fence
 * signals); a bind that maps the moving BO waits in the call (its call has not returned after a
 * generous bound; then it maps the BO where it moved).
 */
static void test_later_binds_follow(void **state)
{
	struct fixture *f = *state;
	uint32_t to = other_region(bo_region(f->c, f->bo));
	uint32_t s = syncobj_new(f->c, 0), s2 = syncobj_new(f->c, 0), s3 = syncobj_new(f->c, 0);
	struct vmb_sync out = sync_out(s), out2 = sync_out(s2), out3 = sync_out(s3);
	struct vmb_bind_op m2 = op_map(f->bo2, 0, CMD_VA, BO_SIZE, 0), m3 = op_map(f->bo2, 0, VA_A, BO_SIZE, 0);

	vmb_copy_hold(true);
	assert_int_equal(prefetch_async(f, f->vm, VA_A, to, &out, 1), 0);
	bind_async(f->c, f->vm, 0, &m2, 1, &out2, 1);
	bind_async(f->c, f->other, 0, &m3, 1, &out3, 1);
	assert_int_equal(syncobj_done_within(f->c, s3, 10 * SEC), 0);
	struct mapper m = {.c = f->c, .vm = f->other, .bo = f->bo};
	atomic_init(&m.result, 1);
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, map_moving, &m), 0);
	assert_int_equal(syncobj_done_within(f->c, s2, 200 * MS), -ETIME);
	assert_int_equal(atomic_load(&m.result), 1); /* still in the call */
	assert_int_equal(syncobj_done_within(f->c, s, 0), -ETIME);
	vmb_copy_hold(false);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(atomic_load(&m.result), 0);
	assert_int_equal(syncobj_error(f->c, s), 0);
	assert_int_equal(syncobj_error(f->c, s2), 0);
	assert_int_equal(bo_region(f->c, f->bo), to);
	check_pattern(f->c, f->other, VA_B); /* mapped where the BO went: the same bytes */
	validate_client(f->c);
}

/*
 * An exec whose in-fence is the asynchronous PREFETCH's reads the BO after the move: it copies a
 * word of the moving BO into a result BO; queued while the copy is held back, it has not run
 * (its fence unsignalled), then reads the data through the re-pointed page tables.
 */
static void test_exec_after_prefetch(void **state)
{
	struct fixture *f = *state;
	uint32_t to = other_region(bo_region(f->c, f->bo));
	uint32_t cmd_bo = bo_new(f->c, BO_SIZE, place_cpu(f->c));
	uint64_t *cmd = bo_cpu(f->c, cmd_bo);
	bind1(f->c, f->vm, op_map(cmd_bo, 0, CMD_VA, BO_SIZE, VMB_BIND_FLAG_READONLY));
	bind1(f->c, f->vm, op_map(f->bo2, 0, RES_VA, BO_SIZE, 0));
	uint32_t n = 0;
	vmb_cmd_copy(cmd, &n, RES_VA + 64, VA_A + 3 * (BO_SIZE / 8) + 24, 8); /* pattern(3) */
	vmb_cmd_end(cmd, &n);
	struct vmb_exec_queue_create qc = {.vm_id = f->vm, .engine = {.engine_class = VMB_ENGINE_CLASS_COMPUTE}};
	assert_int_equal(vmb_exec_queue_create(f->c, &qc), 0);

	uint32_t s = syncobj_new(f->c, 0), sx = syncobj_new(f->c, 0);
	struct vmb_sync out = sync_out(s), yx[2] = {sync_in(s), sync_out(sx)};
	vmb_copy_hold(true);
	assert_int_equal(prefetch_async(f, f->vm, VA_A, to, &out, 1), 0);
	struct vmb_exec x = {.exec_queue_id = qc.exec_queue_id, .address = CMD_VA, .num_syncs = 2,
			     .syncs = (uint64_t)(uintptr_t)yx};
	assert_int_equal(vmb_exec(f->c, &x), 0);
	assert_int_equal(syncobj_done_within(f->c, sx, 200 * MS), -ETIME);
	assert_int_equal(gpu_read64(f->c, f->vm, RES_VA + 64), 0);
	vmb_copy_hold(false);
	assert_int_equal(syncobj_error(f->c, sx), 0);
	assert_int_equal(syncobj_error(f->c, s), 0);
	assert_int_equal(bo_region(f->c, f->bo), to);
	assert_int_equal(gpu_read64(f->c, f->vm, RES_VA + 64), pattern(3));
	struct vmb_exec_queue_destroy xd = {.exec_queue_id = qc.exec_queue_id};
	assert_int_equal(vmb_exec_queue_destroy(f->c, &xd), 0);
	validate_client(f->c);
}

/*
 * f->other, with a bind pending (out-fence @s2) that follows the PREFETCH (out-fence @s, behind
 * gate @g) of the fixture's BO from region @from, is destroyed: the PREFETCH is cancelled
 * (-ECANCELED, nothing moved) so that the bind does not commit before it; the bind runs after it:
 * by the destroy (-ECANCELED), or by a worker once the cancel made it ready, before the destroy
 * got to it (0). The PREFETCH's vm works on.
 */
static void destroy_other_cancels(struct fixture *f, uint32_t from, uint32_t s, uint32_t s2, struct gate *g)
{
	struct vmb_vm_destroy d = {.vm_id = f->other};
	assert_int_equal(vmb_vm_destroy(f->c, &d), 0);
	assert_int_equal(syncobj_error(f->c, s), -ECANCELED);
	int e2 = syncobj_error(f->c, s2);
	assert_true(e2 == 0 || e2 == -ECANCELED);
	f->other = vm_new(f->c, 0);
	assert_int_equal(bo_region(f->c, f->bo), from);
	check_pattern(f->c, f->vm, VA_A);
	gate_open(g);
	validate_client(f->c);
	bind1(f->c, f->vm, op_prefetch(VA_A, BO_SIZE, other_region(from)));
	assert_int_equal(bo_region(f->c, f->bo), other_region(from));
	check_pattern(f->c, f->vm, VA_A);
	assert_int_equal(vmb_commit_failed_count(), f->failed_before);
}

struct async_binder {
	struct vmb_client *c;
	uint32_t vm, out;
	struct vmb_bind_op op;
	unsigned long fail_after; /* the thread's n-th allocation fails (vmb_alloc_fail_after), 0: none */
	bool fired;               /* it did */
	atomic_int result;        /* 1 while the call runs */
};

static void *bind_async_thread(void *arg)
{
	struct async_binder *m = arg;
	struct vmb_sync out = sync_out(m->out);
	if (m->fail_after)
		vmb_alloc_fail_after(m->fail_after);
	int r = __bind_async(m->c, m->vm, 0, &m->op, 1, &out, 1);
	if (m->fail_after)
		m->fired = vmb_alloc_fail_after(0) == 0;
	atomic_store(&m->result, r);
	return NULL;
}

/*
 * An asynchronous bind @op in @vm, out-fence @out, made on a thread (its @fail_after-th
 * allocation failing, *@fired: it did) while the BO's move waits behind gate @g: the call's
 * result. *@waited: the call was still in it after @polls times 10 ms (it waits for the gated
 * move, which nothing but the test signals: a single-threaded application would never get to
 * signal it), so @g was opened to end it; with a generous bound, a hang detector.
 */
static int bind_async_on_thread(struct fixture *f, uint32_t vm, struct vmb_bind_op op, uint32_t out, struct gate *g,
				unsigned long fail_after, int polls, bool *fired, bool *waited)
{
	struct async_binder m = {.c = f->c, .vm = vm, .op = op, .out = out, .fail_after = fail_after};
	atomic_init(&m.result, 1);
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, bind_async_thread, &m), 0);
	for (int i = 0; i < polls && atomic_load(&m.result) == 1; i++)
		usleep(10000);
	*waited = atomic_load(&m.result) == 1;
	if (*waited)
		gate_open(g);
	assert_int_equal(pthread_join(t, NULL), 0);
	*fired = m.fired;
	return atomic_load(&m.result);
}

/* The same without failures: the call must return without waiting for the move (10 s bound). */
static int bind_async_bounded(struct fixture *f, uint32_t vm, struct vmb_bind_op op, uint32_t out, struct gate *g)
{
	bool fired, waited;
	int r = bind_async_on_thread(f, vm, op, out, g, 0, 1000, &fired, &waited);
	assert_false(waited); /* it returned without waiting for the move */
	return r;
}

/* An asynchronous MAP of the fixture's BO at @va, the same way. */
static int map_async_bounded(struct fixture *f, uint32_t vm, uint64_t va, uint32_t out, struct gate *g)
{
	return bind_async_bounded(f, vm, op_map(f->bo, 0, va, BO_SIZE, 0), out, g);
}

/*
 * An asynchronous MAP of a BO whose move (an asynchronous PREFETCH gated on a syncobj) is pending
 * returns at once, in another vm and in the PREFETCH's own: its job follows the move (its fence
 * stays unsignalled, the GPU view does not see it yet, the BO has not moved). Once the gate opens
 * the move commits, then the MAPs: they map the BO where it moved (the data reads back; the
 * client's check sees every page table point at the BO's new backing).
 */
static void test_async_map_of_moving_bo(void **state)
{
	struct fixture *f = *state;
	uint32_t from = bo_region(f->c, f->bo), to = other_region(from);
	struct gate g = gate_new(f->c);
	uint32_t s = syncobj_new(f->c, 0), s2 = syncobj_new(f->c, 0), s3 = syncobj_new(f->c, 0);
	struct vmb_sync y[2] = {sync_in(g.h), sync_out(s)};
	uint64_t v;
	assert_int_equal(prefetch_async(f, f->vm, VA_A, to, y, 2), 0);
	assert_int_equal(map_async_bounded(f, f->other, VA_B, s2, &g), 0);
	assert_int_equal(map_async_bounded(f, f->vm, VA_B, s3, &g), 0);
	assert_int_equal(syncobj_done_within(f->c, s2, 0), -ETIME);
	assert_int_equal(syncobj_done_within(f->c, s3, 0), -ETIME);
	assert_int_equal(__gpu_rw(f->c, f->other, VA_B, &v, 8, false), -EFAULT); /* not committed */
	assert_int_equal(bo_region(f->c, f->bo), from);
	check_pattern(f->c, f->vm, VA_A);
	gate_open(&g);
	assert_int_equal(syncobj_error(f->c, s), 0);
	assert_int_equal(syncobj_error(f->c, s2), 0);
	assert_int_equal(syncobj_error(f->c, s3), 0);
	assert_int_equal(bo_region(f->c, f->bo), to);
	check_pattern(f->c, f->other, VA_B);
	check_pattern(f->c, f->vm, VA_B);
	check_pattern(f->c, f->vm, VA_A);
	validate_client(f->c);
}

/*
 * The same with user fences only (s16-attack4): an asynchronous MAP with a user fence and no
 * out-syncobj, in a vm with nothing pending, would be done in its call without a fence of its own
 * (vm/job.c async_on_stack) if the one rule found nothing; the BO's pending move in the other vm
 * is something (job->maps_moving): it becomes a job behind the move. Its user fence is not
 * written by the time the call returns, nor the mapping committed; once the gate opens the
 * fence reaches its value and the mapping reads the data where the BO moved. Then a
 * user-fence-only UNMAP of it (done in the call if the MAP's job has left the vm) signals.
 */
static void test_async_ufence_map_of_moving_bo(void **state)
{
	struct fixture *f = *state;
	uint32_t from = bo_region(f->c, f->bo), to = other_region(from);
	struct gate g = gate_new(f->c);
	uint32_t s = syncobj_new(f->c, 0);
	struct vmb_sync y[2] = {sync_in(g.h), sync_out(s)};
	static uint64_t uf[2];
	uf[0] = uf[1] = 0;
	uint64_t v;
	assert_int_equal(prefetch_async(f, f->vm, VA_A, to, y, 2), 0);
	struct vmb_sync u = sync_ufence(&uf[0], 7);
	struct vmb_bind_op op = op_map(f->bo, 0, VA_B, BO_SIZE, 0);
	assert_int_equal(__bind_async(f->c, f->other, 0, &op, 1, &u, 1), 0);
	assert_int_equal(__atomic_load_n(&uf[0], __ATOMIC_ACQUIRE), 0);
	assert_int_equal(__gpu_rw(f->c, f->other, VA_B, &v, 8, false), -EFAULT); /* not committed */
	assert_int_equal(bo_region(f->c, f->bo), from);
	gate_open(&g);
	ufence_wait(f->c, &uf[0], 7);
	assert_int_equal(syncobj_error(f->c, s), 0);
	assert_int_equal(bo_region(f->c, f->bo), to);
	check_pattern(f->c, f->other, VA_B);
	check_pattern(f->c, f->vm, VA_A);
	u = sync_ufence(&uf[1], 8);
	op = op_unmap(VA_B, BO_SIZE);
	assert_int_equal(__bind_async(f->c, f->other, 0, &op, 1, &u, 1), 0);
	/* done in the call only if the MAP's job has left the vm by then (its user fence is written
	 * before it does): either way the fence comes */
	ufence_wait(f->c, &uf[1], 8);
	assert_int_equal(__gpu_rw(f->c, f->other, VA_B, &v, 8, false), -EFAULT);
	validate_client(f->c);
}

/*
 * The same, and the move's copy then fails: the move commits nothing (its vm banned, the BO where
 * it was, its new backing freed). The MAP of the other vm maps the BO where it stayed (had it been
 * committed against the new backing, it would map memory the failed move freed: the client's
 * check sees the page tables point elsewhere than the BO); the MAP of the banned vm signals -EIO.
 */
static void test_async_map_of_moving_bo_failed_copy(void **state)
{
	struct fixture *f = *state;
	uint32_t from = bo_region(f->c, f->bo);
	struct gate g = gate_new(f->c);
	uint32_t s = syncobj_new(f->c, 0), s2 = syncobj_new(f->c, 0), s3 = syncobj_new(f->c, 0);
	struct vmb_sync y[2] = {sync_in(g.h), sync_out(s)};
	assert_int_equal(prefetch_async(f, f->vm, VA_A, other_region(from), y, 2), 0);
	assert_int_equal(map_async_bounded(f, f->other, VA_B, s2, &g), 0);
	assert_int_equal(map_async_bounded(f, f->vm, VA_B, s3, &g), 0);
	vmb_copy_fail_after(1, -EIO);
	gate_open(&g);
	assert_int_equal(syncobj_error(f->c, s), -EIO);
	assert_int_equal(syncobj_error(f->c, s2), 0);
	assert_int_equal(syncobj_error(f->c, s3), -EIO);
	assert_int_equal(bo_region(f->c, f->bo), from);
	check_pattern(f->c, f->other, VA_B);
	struct vmb_bind_op nop = op_null(VA_A, BO_SIZE);
	struct vmb_sync out = sync_out(s2);
	bind_async(f->c, f->other, 0, &nop, 1, &out, 1); /* after the MAP, on its queue */
	assert_int_equal(syncobj_error(f->c, s2), 0);
	check_pattern(f->c, f->other, VA_B);
	validate_client(f->c);
}

/*
 * An asynchronous MAP of a BO whose gated move is pending, in a new vm, its n-th host allocation
 * failing, n = 1, 2, ... until none fails: each failure is -ENOMEM with nothing changed (no mapping; the client's check once the move is over: no page table or reserve left
 * from either of the MAP's two preparations), or the low-memory fallback (no memory for a job:
 * the call waits for the move as a synchronous bind, then maps); a call that succeeds maps the
 * BO where it moved. The gate opens after a short poll or once the call returned: whether the
 * call waited is asserted by the tests above, not here.
 */
static void test_async_map_of_moving_bo_nomem(void **state)
{
	struct fixture *f = *state;
	bool done = false;
	for (unsigned long n = 1; !done && n < 500; n++) {
		uint32_t to = other_region(bo_region(f->c, f->bo));
		struct gate g = gate_new(f->c);
		uint32_t s = syncobj_new(f->c, 0), s2 = syncobj_new(f->c, 0);
		struct vmb_sync y[2] = {sync_in(g.h), sync_out(s)};
		bool fired, waited;
		uint32_t vm = vm_new(f->c, 0); /* its page tables: the root only */
		struct vmb_vm_destroy d = {.vm_id = vm};
		assert_int_equal(prefetch_async(f, f->vm, VA_A, to, y, 2), 0);
		int r = bind_async_on_thread(f, vm, op_map(f->bo, 0, VA_B, BO_SIZE, 0), s2, &g, n, 5, &fired, &waited);
		if (!waited)
			gate_open(&g);
		assert_int_equal(syncobj_error(f->c, s), 0);
		assert_int_equal(bo_region(f->c, f->bo), to);
		if (r) {
			assert_int_equal(r, -ENOMEM);
			assert_true(fired);
			assert_int_equal(vm_stats(f->c, vm).num_mappings, 0);
			assert_int_equal(vm_stats(f->c, vm).pt_reserve_bytes, 0);
		} else {
			done = !fired;
			assert_int_equal(syncobj_error(f->c, s2), 0);
			check_pattern(f->c, vm, VA_B);
		}
		validate_client(f->c);
		assert_int_equal(vmb_vm_destroy(f->c, &d), 0);
	}
	assert_true(done);
}

/*
 * A vm whose pending MAP follows a gated move of its BO (a PREFETCH of another vm) is destroyed:
 * as for a vm that a pending PREFETCH re-maps in, the PREFETCH goes first, cancelled
 * (-ECANCELED, nothing moved), then the MAP: it never maps a backing the move would free. The
 * PREFETCH's vm works on.
 */
/* The fixture's BO moved by an asynchronous PREFETCH of f->vm behind gate @g (out-fence *@s),
 * an asynchronous MAP of it in f->other following the move (out-fence *@s2): where it was. */
static uint32_t move_gated_map_other(struct fixture *f, struct gate *g, uint32_t *s, uint32_t *s2)
{
	uint32_t from = bo_region(f->c, f->bo);
	*g = gate_new(f->c);
	*s = syncobj_new(f->c, 0);
	*s2 = syncobj_new(f->c, 0);
	struct vmb_sync y[2] = {sync_in(g->h), sync_out(*s)};
	assert_int_equal(prefetch_async(f, f->vm, VA_A, other_region(from), y, 2), 0);
	assert_int_equal(map_async_bounded(f, f->other, VA_B, *s2, g), 0);
	return from;
}

static void test_destroy_vm_with_map_of_moving_bo(void **state)
{
	struct fixture *f = *state;
	struct gate g;
	uint32_t s, s2, from = move_gated_map_other(f, &g, &s, &s2);
	destroy_other_cancels(f, from, s, s2, &g);
}

/* Fresh vms for the next case of a test (a failed copy banned f->vm): the fixture's again. */
static void fixture_new_vms(struct fixture *f)
{
	vm_destroy1(f->c, f->vm);
	vm_destroy1(f->c, f->other);
	f->vm = vm_new(f->c, 0);
	f->other = vm_new(f->c, 0);
	bind1(f->c, f->vm, op_map(f->bo, 0, VA_A, BO_SIZE, 0));
	write_pattern(f->c, f->vm, VA_A);
}

/*
 * Later ops over an asynchronous MAP that follows a pending move: the fixture's BO moved by an
 * asynchronous PREFETCH in f->vm behind a gate; in @vm (f->other, or the PREFETCH's own) the
 * ops @ops[0..@n0) in one asynchronous call and @ops[@n0..@n) in a second one (none if @n0 ==
 * @n), the first op a MAP of the moving BO, the others splitting, re-mapping or unmapping it;
 * the copy fails if @fail; the gate opens. The PREFETCH's fence says the copy's outcome, the
 * calls' fences -EIO in the banned vm (the PREFETCH's, when its copy failed) and 0 elsewhere,
 * the BO is where the move left it; false if the calls committed nothing (their vm banned).
 */
static bool moving_map_then(struct fixture *f, uint32_t vm, struct vmb_bind_op *ops, uint32_t n0, uint32_t n,
			    bool fail)
{
	uint32_t from = bo_region(f->c, f->bo);
	struct gate g = gate_new(f->c);
	uint32_t s = syncobj_new(f->c, 0), s2 = syncobj_new(f->c, 0), s3 = syncobj_new(f->c, 0);
	struct vmb_sync y[2] = {sync_in(g.h), sync_out(s)}, o2 = sync_out(s2), o3 = sync_out(s3);
	assert_int_equal(prefetch_async(f, f->vm, VA_A, other_region(from), y, 2), 0);
	assert_int_equal(__bind_async(f->c, vm, 0, ops, n0, &o2, 1), 0);
	assert_int_equal(__bind_async(f->c, vm, 0, ops + n0, n - n0, &o3, 1), 0); /* n0 == n: a barrier */
	if (fail)
		vmb_copy_fail_after(1, -EIO);
	gate_open(&g);
	assert_int_equal(syncobj_error(f->c, s), fail ? -EIO : 0);
	bool banned = fail && vm == f->vm;
	assert_int_equal(syncobj_error(f->c, s2), banned ? -EIO : 0);
	assert_int_equal(syncobj_error(f->c, s3), banned ? -EIO : 0);
	assert_int_equal(bo_region(f->c, f->bo), fail ? from : other_region(from));
	return !banned;
}

/* A pending MAP of the moving BO, a page in it unmapped and another re-mapped to another BO (in
 * the same call or the next): the rest maps the BO where the move left it, the hole faults, the
 * re-mapped page reads the other BO. */
static void split_moving_map(struct fixture *f, bool fail, bool same_call, bool same_vm)
{
	uint64_t g = granule_of(f->c);
	if (g >= BO_SIZE / 8)
		skip(); /* a 2 MiB granule: no page of the BO to cut out */
	uint32_t vm = same_vm ? f->vm : f->other;
	struct vmb_bind_op ops[3] = {op_map(f->bo, 0, VA_B, BO_SIZE, 0), op_unmap(VA_B + pat_off(1) - 8, g),
				     op_map(f->bo2, 0, VA_B + pat_off(3) - 24, g, 0)};
	if (!moving_map_then(f, vm, ops, same_call ? 3 : 1, 3, fail))
		return;
	if (!fail)
		check_pattern(f->c, f->vm, VA_A);
	for (uint64_t i = 0; i < 8; i++) {
		uint64_t v = 0;
		int r = __gpu_rw(f->c, vm, VA_B + pat_off(i), &v, 8, false);
		assert_int_equal(r, i == 1 ? -EFAULT : 0);
		if (i != 1)
			assert_int_equal(v, i == 3 ? 0 : pattern(i));
	}
	validate_client(f->c);
}

/* Each case: in its call or the next, copy ok or failed, in another vm or the PREFETCH's own. */
static void test_split_moving_map(void **state)
{
	for (int k = 0; k < 8; k++) {
		split_moving_map(*state, k & 1, k & 2, k & 4);
		fixture_new_vms(*state);
	}
}

/* Three MAPs of the moving BO in one call (one READONLY), then (@unmap_all) UNMAP_ALL of it in
 * the same call: all three map the BO where the move left it, or none is left. */
static void maps_of_moving_bo(struct fixture *f, bool fail, bool same_vm, bool unmap_all)
{
	uint32_t vm = same_vm ? f->vm : f->other;
	struct vmb_bind_op ops[4] = {op_map(f->bo, 0, VA_B, BO_SIZE, 0), op_map(f->bo, 0, VA_B + 2 * BO_SIZE, BO_SIZE, 0),
				     op_map(f->bo, 0, VA_B + BO_SIZE, BO_SIZE, VMB_BIND_FLAG_READONLY),
				     op_unmap_all(f->bo)};
	uint32_t n = unmap_all ? 4 : 3;
	if (!moving_map_then(f, vm, ops, n, n, fail))
		return;
	if (unmap_all)
		assert_int_equal(vm_stats(f->c, vm).num_mappings, 0);
	else
		for (uint64_t k = 0; k < 3; k++)
			check_pattern(f->c, vm, VA_B + k * BO_SIZE);
	validate_client(f->c);
}

/* Each case: copy ok or failed, in another vm or the PREFETCH's own, UNMAP_ALL or not. */
static void test_maps_of_moving_bo(void **state)
{
	for (int k = 0; k < 8; k++) {
		maps_of_moving_bo(*state, k & 1, k & 2, k & 4);
		fixture_new_vms(*state);
	}
}

/* The BO's handle destroyed while a MAP of it follows its gated move, and the PREFETCH's vm
 * unmapping it behind the move: the MAP maps the BO (held by its mapping) where the move left
 * it, or where it was when the copy fails. */
static void bo_closed_mid_chain(struct fixture *f, bool fail)
{
	struct gate g = gate_new(f->c);
	uint32_t s = syncobj_new(f->c, 0), s2 = syncobj_new(f->c, 0), s3 = syncobj_new(f->c, 0);
	struct vmb_sync y[2] = {sync_in(g.h), sync_out(s)}, o2 = sync_out(s2), o3 = sync_out(s3);
	assert_int_equal(prefetch_async(f, f->vm, VA_A, other_region(bo_region(f->c, f->bo)), y, 2), 0);
	struct vmb_bind_op op = op_map(f->bo, 0, VA_B, BO_SIZE, 0), u = op_unmap(VA_A, BO_SIZE);
	assert_int_equal(__bind_async(f->c, f->other, 0, &op, 1, &o2, 1), 0);
	bo_destroy1(f->c, f->bo);
	assert_int_equal(__bind_async(f->c, f->vm, 0, &u, 1, &o3, 1), 0); /* behind the PREFETCH */
	if (fail)
		vmb_copy_fail_after(1, -EIO);
	gate_open(&g);
	assert_int_equal(syncobj_error(f->c, s), fail ? -EIO : 0);
	assert_int_equal(syncobj_error(f->c, s2), 0);
	assert_int_equal(syncobj_error(f->c, s3), fail ? -EIO : 0);
	check_pattern(f->c, f->other, VA_B);
	validate_client(f->c);
	bind1(f->c, f->other, op_unmap(VA_B, BO_SIZE));
	validate_client(f->c);
	f->bo = bo_new(f->c, BO_SIZE, VMB_PLACE_VRAM | VMB_PLACE_SYSTEM); /* for the teardown */
}

static void test_bo_closed_mid_chain(void **state)
{
	bo_closed_mid_chain(*state, false);
	fixture_new_vms(*state);
	bo_closed_mid_chain(*state, true);
}

/* Both vms destroyed while a MAP follows the gated move (the MAP's first): the move is cancelled,
 * the MAP cancelled or run; the BO stays where it was, its data intact. */
static void test_destroy_both_vms_of_chain(void **state)
{
	struct fixture *f = *state;
	struct gate g;
	uint32_t s, s2, from = move_gated_map_other(f, &g, &s, &s2);
	vm_destroy1(f->c, f->other);
	vm_destroy1(f->c, f->vm);
	assert_int_equal(syncobj_error(f->c, s), -ECANCELED);
	int e = syncobj_error(f->c, s2);
	assert_true(e == 0 || e == -ECANCELED);
	gate_open(&g);
	assert_int_equal(bo_region(f->c, f->bo), from);
	f->vm = vm_new(f->c, 0);
	f->other = vm_new(f->c, 0);
	bind1(f->c, f->vm, op_map(f->bo, 0, VA_A, BO_SIZE, 0));
	check_pattern(f->c, f->vm, VA_A);
	validate_client(f->c);
}

/* What a banned vm refuses (-EIO), and that @vm is not banned. */
static void assert_banned(struct fixture *f, uint32_t vm)
{
	uint64_t v;
	struct vmb_bind_op op = op_map(f->bo2, 0, VA_B, BO_SIZE, 0);
	assert_int_equal(__bind1(f->c, vm, op), -EIO);
	assert_int_equal(__bind_async(f->c, vm, 0, &op, 1, NULL, 0), -EIO);
	assert_int_equal(__gpu_rw(f->c, vm, VA_A, &v, 8, false), -EIO);
	validate_client(f->c);
}

/*
 * An asynchronous PREFETCH whose copy fails: its out-fence signals the device's error, the
 * vm is banned, the BO stays where it was, and another vm that maps it (whose re-mapping was not
 * applied) reads the data there and keeps working.
 */
static void test_async_copy_fails(void **state)
{
	struct fixture *f = *state;
	uint32_t from = bo_region(f->c, f->bo);
	bind1(f->c, f->other, op_map(f->bo, 0, VA_B, BO_SIZE, 0));
	uint32_t s = syncobj_new(f->c, 0);
	struct vmb_sync out = sync_out(s);

	vmb_copy_fail_after(1, -EIO);
	assert_int_equal(prefetch_async(f, f->vm, VA_A, other_region(from), &out, 1), 0);
	assert_int_equal(syncobj_error(f->c, s), -EIO);
	assert_int_equal(vmb_copy_fail_after(0, 0), 0); /* it fired */
	assert_int_equal(vmb_commit_failed_count(), f->failed_before + 1);
	assert_int_equal(bo_region(f->c, f->bo), from);
	assert_banned(f, f->vm);
	check_pattern(f->c, f->other, VA_B);
	bind1(f->c, f->other, op_prefetch(VA_B, BO_SIZE, other_region(from))); /* moves for it */
	assert_int_equal(bo_region(f->c, f->bo), other_region(from));
	check_pattern(f->c, f->other, VA_B);
	validate_client(f->c);
}

/* A synchronous PREFETCH whose copy fails returns the error and bans the vm; nothing moved. */
static void test_sync_copy_fails(void **state)
{
	struct fixture *f = *state;
	uint32_t from = bo_region(f->c, f->bo);
	vmb_copy_fail_after(1, -EIO);
	assert_int_equal(__bind1(f->c, f->vm, op_prefetch(VA_A, BO_SIZE, other_region(from))), -EIO);
	assert_int_equal(vmb_commit_failed_count(), f->failed_before + 1);
	assert_int_equal(bo_region(f->c, f->bo), from);
	assert_banned(f, f->vm);
}

/*
 * A PREFETCH still waiting for its in-fence re-maps the BO in another vm; that vm has a bind
 * behind it and is destroyed: the PREFETCH is cancelled (-ECANCELED, nothing moved) so that the
 * destroyed vm's bind does not commit before it. The PREFETCH's own vm works on.
 */
static void test_destroy_cancels_pending(void **state)
{
	struct fixture *f = *state;
	uint32_t from = bo_region(f->c, f->bo);
	bind1(f->c, f->other, op_map(f->bo, 0, VA_B, BO_SIZE, 0));
	struct gate g = gate_new(f->c);
	uint32_t s = syncobj_new(f->c, 0), s2 = syncobj_new(f->c, 0);
	struct vmb_sync y[2] = {sync_in(g.h), sync_out(s)}, out2 = sync_out(s2);
	assert_int_equal(prefetch_async(f, f->vm, VA_A, other_region(from), y, 2), 0);
	struct vmb_bind_op u = op_unmap(VA_B, BO_SIZE);
	bind_async(f->c, f->other, 0, &u, 1, &out2, 1); /* follows the PREFETCH */
	destroy_other_cancels(f, from, s, s2, &g);
}

/*
 * A PREFETCH waiting for its in-fence re-maps the BO in another vm, which is destroyed with no
 * bind of its own pending: the PREFETCH is not cancelled; it holds that vm until it has
 * committed there (ASan: no use after free), and the BO moves.
 */
static void test_destroy_other_vm_keeps_prefetch(void **state)
{
	struct fixture *f = *state;
	uint32_t to = other_region(bo_region(f->c, f->bo));
	bind1(f->c, f->other, op_map(f->bo, 0, VA_B, BO_SIZE, 0));
	struct gate g = gate_new(f->c);
	uint32_t s = syncobj_new(f->c, 0);
	struct vmb_sync y[2] = {sync_in(g.h), sync_out(s)};
	assert_int_equal(prefetch_async(f, f->vm, VA_A, to, y, 2), 0);
	struct vmb_vm_destroy d = {.vm_id = f->other};
	assert_int_equal(vmb_vm_destroy(f->c, &d), 0);
	f->other = vm_new(f->c, 0);
	gate_open(&g);
	assert_int_equal(syncobj_error(f->c, s), 0);
	assert_int_equal(bo_region(f->c, f->bo), to);
	check_pattern(f->c, f->vm, VA_A);
	validate_client(f->c);
}

/*
 * The device's consistency check (ops->map_check, the one question vmb_vm_validate asks of page
 * tables): after a PREFETCH the vm's page tables map the BO's new backing, byte for byte; a wrong
 * offset, the READONLY flag it was not mapped with, or a NULL mapping are each -EUCLEAN.
 */
static void test_map_check(void **state)
{
	struct fixture *f = *state;
	bind1(f->c, f->vm, op_prefetch(VA_A, BO_SIZE, other_region(bo_region(f->c, f->bo))));
	vmb_dev_lock(f->c->dev);
	struct vmb_vm *vm = vmb_handle_lookup(&f->c->vms, f->vm);
	struct vmb_bo *bo = vmb_handle_lookup(&f->c->bos, f->bo);
	const struct vmb_device_ops *ops = f->c->dev->ops;
	assert_int_equal(ops->map_check(vm->dvm, VA_A + 8192, &bo->backing, 8192, 0), 0);
	assert_int_equal(ops->map_check(vm->dvm, VA_A + BO_SIZE - 4096, &bo->backing, BO_SIZE - 4096, 0), 0);
	assert_int_equal(ops->map_check(vm->dvm, VA_A + 8192, &bo->backing, 4096, 0), -EUCLEAN);
	assert_int_equal(ops->map_check(vm->dvm, VA_A, &bo->backing, 0, VMB_MAP_READONLY), -EUCLEAN);
	assert_int_equal(ops->map_check(vm->dvm, VA_A, NULL, 0, VMB_MAP_NULL), -EUCLEAN);
	assert_int_equal(ops->map_check(vm->dvm, VA_B, &bo->backing, 0, 0), -EUCLEAN); /* unmapped */
	vmb_dev_unlock(f->c->dev);
}

/* ---- attack12: PREFETCH racing with teardown (each with the copy held back, then released) ---- */

struct destroyer {
	struct vmb_client *c;
	int what; /* 0: vm, 1: client close */
	uint32_t id;
	atomic_int result; /* 1 while the call runs */
};

static void *destroy_thread(void *arg)
{
	struct destroyer *d = arg;
	int r;
	if (d->what == 0) {
		struct vmb_vm_destroy a = {.vm_id = d->id};
		r = vmb_vm_destroy(d->c, &a);
	} else {
		r = vmb_client_close(d->c);
	}
	atomic_store(&d->result, r);
	return NULL;
}

/* The vm of a PREFETCH whose copy the device holds is destroyed: the destroy waits for the copy
 * (or cancels it), returns once it is released; the fence signals 0 or -ECANCELED; the BO is
 * in one region, the other vm reads the data. */
static void test_race_vm_destroy_during_copy(void **state)
{
	struct fixture *f = *state;
	uint32_t from = bo_region(f->c, f->bo), to = other_region(from);
	bind1(f->c, f->other, op_map(f->bo, 0, VA_B, BO_SIZE, 0));
	uint32_t s = syncobj_new(f->c, 0);
	struct vmb_sync out = sync_out(s);
	vmb_copy_hold(true);
	assert_int_equal(prefetch_async(f, f->vm, VA_A, to, &out, 1), 0);
	struct destroyer d = {.c = f->c, .what = 0, .id = f->vm};
	atomic_init(&d.result, 1);
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, destroy_thread, &d), 0);
	usleep(100000);
	vmb_copy_hold(false);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(atomic_load(&d.result), 0);
	int e = syncobj_error(f->c, s);
	assert_true(e == 0 || e == -ECANCELED);
	uint32_t r = bo_region(f->c, f->bo);
	assert_true(r == (e ? from : to));
	check_pattern(f->c, f->other, VA_B);
	f->vm = vm_new(f->c, 0);
	validate_client(f->c);
}

/* The BO's handle is destroyed while its move's copy is held back: the move completes (the job
 * holds the BO), the other vm reads the data; a new BO may take the handle and is not moved. */
static void test_race_bo_destroy_during_copy(void **state)
{
	struct fixture *f = *state;
	uint32_t to = other_region(bo_region(f->c, f->bo));
	bind1(f->c, f->other, op_map(f->bo, 0, VA_B, BO_SIZE, 0));
	uint32_t s = syncobj_new(f->c, 0);
	struct vmb_sync out = sync_out(s);
	vmb_copy_hold(true);
	assert_int_equal(prefetch_async(f, f->vm, VA_A, to, &out, 1), 0);
	struct vmb_bo_destroy bd = {.handle = f->bo};
	assert_int_equal(vmb_bo_destroy(f->c, &bd), 0);
	uint32_t nb = bo_new(f->c, BO_SIZE, VMB_PLACE_SYSTEM);
	vmb_copy_hold(false);
	assert_int_equal(syncobj_error(f->c, s), 0);
	bind1(f->c, f->vm, op_map(nb, 0, VA_B, BO_SIZE, 0));
	check_pattern(f->c, f->other, VA_B);
	check_pattern(f->c, f->vm, VA_A);
	assert_int_equal(bo_region(f->c, nb), VMB_REGION_SYSTEM);
	validate_client(f->c);
}

/* The PREFETCH's bind queue is destroyed while its copy is held back: it still runs. */
static void test_race_queue_destroy_during_copy(void **state)
{
	struct fixture *f = *state;
	uint32_t to = other_region(bo_region(f->c, f->bo));
	uint32_t q = queue_new(f->c, f->vm);
	uint32_t s = syncobj_new(f->c, 0);
	struct vmb_sync out = sync_out(s);
	struct vmb_bind_op op = op_prefetch(VA_A, BO_SIZE, to);
	vmb_copy_hold(true);
	assert_int_equal(__bind_async(f->c, f->vm, q, &op, 1, &out, 1), 0);
	struct vmb_bind_queue_destroy qd = {.vm_id = f->vm, .queue_id = q};
	assert_int_equal(vmb_bind_queue_destroy(f->c, &qd), 0);
	vmb_copy_hold(false);
	assert_int_equal(syncobj_error(f->c, s), 0);
	assert_int_equal(bo_region(f->c, f->bo), to);
	check_pattern(f->c, f->vm, VA_A);
	validate_client(f->c);
}

/* A second client is closed while its PREFETCH's copy is held back: the close returns once the
 * copy is released; the first client's work is unaffected. */
static void test_race_client_close_during_copy(void **state)
{
	struct fixture *f = *state;
	struct vmb_client *b = open_soft(256 * MiB, 256 * MiB);
	uint32_t bvm = vm_new(b, 0), bbo = bo_new(b, BO_SIZE, VMB_PLACE_VRAM | VMB_PLACE_SYSTEM);
	bind1(b, bvm, op_map(bbo, 0, VA_A, BO_SIZE, 0));
	struct vmb_bind_op op = op_prefetch(VA_A, BO_SIZE, other_region(bo_region(b, bbo)));
	vmb_copy_hold(true);
	assert_int_equal(__bind_async(b, bvm, 0, &op, 1, NULL, 0), 0);
	struct destroyer d = {.c = b, .what = 1};
	atomic_init(&d.result, 1);
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, destroy_thread, &d), 0);
	usleep(100000);
	vmb_copy_hold(false);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(atomic_load(&d.result), 0);
	check_pattern(f->c, f->vm, VA_A);
	bind1(f->c, f->vm, op_prefetch(VA_A, BO_SIZE, other_region(bo_region(f->c, f->bo))));
	check_pattern(f->c, f->vm, VA_A);
	validate_client(f->c);
}

/* fork() while a PREFETCH's copy is held back: the child opens its own device and prefetches
 * there (the hook is the child's copy of the process flag: it releases it); the parent's move
 * completes. */
static void test_race_fork_during_copy(void **state)
{
	struct fixture *f = *state;
#if defined(VMB_FENCE_CONDVAR) || defined(SANITIZER_ALLOCATOR)
	skip(); /* a child that starts threads and allocates: the plain build runs it (lifecycle.c) */
#endif
	uint32_t to = other_region(bo_region(f->c, f->bo));
	uint32_t s = syncobj_new(f->c, 0);
	struct vmb_sync out = sync_out(s);
	vmb_copy_hold(true);
	assert_int_equal(prefetch_async(f, f->vm, VA_A, to, &out, 1), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		alarm(10); /* a hang ends the child with SIGALRM */
		vmb_copy_hold(false);
		struct vmb_client *c = NULL;
		struct vmb_client_opts o = {.vram_size = 64 * MiB, .system_size = 64 * MiB};
		if (vmb_client_open("soft", &o, &c))
			_exit(2);
		struct vmb_vm_create vc = {0};
		struct vmb_bo_create bc = {.size = BO_SIZE, .placements = VMB_PLACE_VRAM | VMB_PLACE_SYSTEM};
		if (vmb_vm_create(c, &vc) || vmb_bo_create(c, &bc))
			_exit(3);
		struct vmb_bind_op ops[2] = {op_map(bc.handle, 0, VA_A, BO_SIZE, 0), op_prefetch(VA_A, BO_SIZE, VMB_REGION_SYSTEM)};
		for (int i = 0; i < 2; i++) {
			struct vmb_vm_bind b = {.vm_id = vc.vm_id, .num_binds = 1, .binds = (uint64_t)(uintptr_t)&ops[i]};
			int r = vmb_vm_bind(c, &b);
			if (r)
				_exit(10 - r);
		}
		_exit(vmb_client_close(c) ? 4 : 0);
	}
	int st = 0;
	alarm(30);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	alarm(0);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	vmb_copy_hold(false);
	assert_int_equal(syncobj_error(f->c, s), 0);
	assert_int_equal(bo_region(f->c, f->bo), to);
	check_pattern(f->c, f->vm, VA_A);
	validate_client(f->c);
}

/* One call moves the BO there and back (two PREFETCH ops): it ends where it started, with its
 * data, and no region holds a backing more than before (the intermediate one freed). Then the
 * same with the second copy failing: the vm is banned, the BO where it was, nothing leaked. */
static void test_prefetch_there_and_back(void **state)
{
	struct fixture *f = *state;
	struct vmb_device *dev = f->c->dev;
	uint32_t from = bo_region(f->c, f->bo), to = other_region(from);
	uint64_t free_v = dev->ops->region_free(dev, VMB_REGION_VRAM), free_s = dev->ops->region_free(dev, VMB_REGION_SYSTEM);
	struct vmb_bind_op ops[2] = {op_prefetch(VA_A, BO_SIZE, to), op_prefetch(VA_A, BO_SIZE, from)};
	assert_int_equal(__bind_ops(f->c, f->vm, ops, 2), 0);
	assert_int_equal(bo_region(f->c, f->bo), from);
	check_pattern(f->c, f->vm, VA_A);
	validate_client(f->c);
	assert_int_equal(dev->ops->region_free(dev, VMB_REGION_VRAM), free_v);
	assert_int_equal(dev->ops->region_free(dev, VMB_REGION_SYSTEM), free_s);
	/* three ops: there, back, there */
	struct vmb_bind_op ops3[3] = {op_prefetch(VA_A, BO_SIZE, to), op_prefetch(VA_A, BO_SIZE, from), op_prefetch(VA_A, BO_SIZE, to)};
	uint32_t s = syncobj_new(f->c, 0);
	struct vmb_sync out = sync_out(s);
	assert_int_equal(__bind_async(f->c, f->vm, 0, ops3, 3, &out, 1), 0);
	assert_int_equal(syncobj_error(f->c, s), 0);
	assert_int_equal(bo_region(f->c, f->bo), to);
	check_pattern(f->c, f->vm, VA_A);
	validate_client(f->c);
	/* back with the second copy failing */
	bind1(f->c, f->other, op_map(f->bo, 0, VA_B, BO_SIZE, 0));
	free_v = dev->ops->region_free(dev, VMB_REGION_VRAM);
	free_s = dev->ops->region_free(dev, VMB_REGION_SYSTEM);
	struct vmb_bind_op back[2] = {op_prefetch(VA_A, BO_SIZE, from), op_prefetch(VA_A, BO_SIZE, to)};
	vmb_copy_fail_after(2, -EIO);
	assert_int_equal(__bind_ops(f->c, f->vm, back, 2), -EIO);
	vmb_copy_fail_after(0, 0);
	validate_client(f->c);
	check_pattern(f->c, f->other, VA_B);
	assert_int_equal(bo_region(f->c, f->bo), to); /* a failed copy commits nothing */
	assert_int_equal(dev->ops->region_free(dev, VMB_REGION_VRAM), free_v);
	assert_int_equal(dev->ops->region_free(dev, VMB_REGION_SYSTEM), free_s);
}

/* A wait in the call that involves a pending PREFETCH, interrupted by a signal (its handler
 * without SA_RESTART): -EINTR, nothing changed. Signals are sent until the call returns (the
 * first may come before it sleeps). Not where waits are not interruptible (sync/fence.h). */
static void on_usr1(int sig) { (void)sig; }

struct waiter {
	struct vmb_client *c;
	uint32_t vm, bo;
	int kind; /* 0: a second PREFETCH of the moving BO, 1: a MAP of it (both synchronous: an
		   * asynchronous one's job follows the move, test_prefetch_of_moving_bo) */
	uint32_t region;
	atomic_int result;
};

static void *wait_thread(void *arg)
{
	struct waiter *w = arg;
	int r;
	if (w->kind == 0) {
		r = __bind1(w->c, w->vm, op_prefetch(VA_A, BO_SIZE, w->region));
	} else {
		r = __bind1(w->c, w->vm, op_map(w->bo, 0, VA_B, BO_SIZE, 0));
	}
	atomic_store(&w->result, r);
	return NULL;
}

static void test_prefetch_waits_interrupted(void **state)
{
	struct fixture *f = *state;
#ifdef VMB_FENCE_CONDVAR
	skip();
#endif
	struct sigaction sa = {.sa_handler = on_usr1}, old;
	assert_int_equal(sigaction(SIGUSR1, &sa, &old), 0);
	uint32_t from = bo_region(f->c, f->bo);
	bind1(f->c, f->vm, op_map(f->bo2, 0, VA_B, BO_SIZE, 0));
	uint32_t from2 = bo_region(f->c, f->bo2);
	struct gate g = gate_new(f->c);
	uint32_t s = syncobj_new(f->c, 0);
	struct vmb_sync y[2] = {sync_in(g.h), sync_out(s)};
	assert_int_equal(prefetch_async(f, f->vm, VA_A, other_region(from), y, 2), 0);
	for (int kind = 0; kind < 2; kind++) {
		struct waiter w = {.c = f->c, .vm = kind ? f->other : f->vm, .bo = f->bo, .kind = kind,
				   .region = from};
		atomic_init(&w.result, 1);
		pthread_t t;
		assert_int_equal(pthread_create(&t, NULL, wait_thread, &w), 0);
		for (int i = 0; i < 1000 && atomic_load(&w.result) == 1; i++) {
			pthread_kill(t, SIGUSR1);
			usleep(10000);
		}
		int r = atomic_load(&w.result);
		if (r == 1)
			gate_open(&g); /* a hang: let it end before failing */
		assert_int_equal(pthread_join(t, NULL), 0);
		assert_int_equal(r, -EINTR);
		assert_int_equal(vm_stats(f->c, f->other).num_mappings, 0);
		assert_int_equal(bo_region(f->c, f->bo2), from2);
		assert_int_equal(bo_region(f->c, f->bo), from);
	}
	gate_open(&g);
	assert_int_equal(syncobj_error(f->c, s), 0);
	assert_int_equal(bo_region(f->c, f->bo), other_region(from));
	assert_int_equal(bo_region(f->c, f->bo2), from2);
	check_pattern(f->c, f->vm, VA_A);
	validate_client(f->c);
	/* the interrupted calls again, now that nothing is pending: they go through */
	bind1(f->c, f->vm, op_prefetch(VA_A, BO_SIZE, from));
	bind1(f->c, f->other, op_map(f->bo, 0, VA_B, BO_SIZE, 0));
	check_pattern(f->c, f->other, VA_B);
	validate_client(f->c);
	assert_int_equal(sigaction(SIGUSR1, &old, NULL), 0);
}

/* A BO shared with a second client, mapped in that client's vm: a PREFETCH of the first client
 * re-maps it there too. With the copy held back (and, second round, with the PREFETCH behind a
 * gate), the second client is closed from another thread: the close returns (once the copy is
 * released), the move completes for the first client, nothing is used after it was freed (ASan). */
static void test_race_shared_bo_client_close(void **state)
{
	struct fixture *f = *state;
	for (int round = 0; round < 2; round++) {
		struct vmb_client *b = open_soft(256 * MiB, 256 * MiB);
		struct vmb_bo_export_fd ex = {.handle = f->bo};
		assert_int_equal(vmb_bo_export_fd(f->c, &ex), 0);
		struct vmb_bo_import_fd im = {.fd = ex.fd};
		assert_int_equal(vmb_bo_import_fd(b, &im), 0);
		close(ex.fd);
		uint32_t bvm = vm_new(b, 0);
		bind1(b, bvm, op_map(im.handle, 0, VA_B, BO_SIZE, 0));
		check_pattern(b, bvm, VA_B); /* the same bytes */
		uint32_t to = other_region(bo_region(f->c, f->bo));
		uint32_t s = syncobj_new(f->c, 0);
		struct gate g = gate_new(f->c);
		struct vmb_sync y[2] = {sync_out(s), sync_in(g.h)};
		if (round == 0)
			vmb_copy_hold(true);
		assert_int_equal(prefetch_async(f, f->vm, VA_A, to, y, round == 0 ? 1 : 2), 0);
		struct destroyer d = {.c = b, .what = 1};
		atomic_init(&d.result, 1);
		pthread_t t;
		assert_int_equal(pthread_create(&t, NULL, destroy_thread, &d), 0);
		usleep(100000);
		if (round == 0)
			vmb_copy_hold(false);
		gate_open(&g);
		assert_int_equal(pthread_join(t, NULL), 0);
		assert_int_equal(atomic_load(&d.result), 0);
		assert_int_equal(syncobj_error(f->c, s), 0);
		assert_int_equal(bo_region(f->c, f->bo), to);
		check_pattern(f->c, f->vm, VA_A);
		validate_client(f->c);
	}
}

/* While a move's copy is held back: another thread's synchronous UNMAP of the moving BO's
 * mapping in another vm waits (the call has not returned after a generous bound: it follows the
 * PREFETCH), an asynchronous UNMAP_ALL of the BO in the PREFETCH's own vm follows it; released,
 * the BO moved, both vms hold no mapping of it, the check passes. */
struct unmapper {
	struct vmb_client *c;
	uint32_t vm;
	atomic_int result;
};

static void *unmap_thread(void *arg)
{
	struct unmapper *u = arg;
	atomic_store(&u->result, __bind1(u->c, u->vm, op_unmap(VA_B, BO_SIZE)));
	return NULL;
}

static void test_race_unmap_moving_bo(void **state)
{
	struct fixture *f = *state;
	uint32_t to = other_region(bo_region(f->c, f->bo));
	bind1(f->c, f->other, op_map(f->bo, 0, VA_B, BO_SIZE, 0));
	uint32_t s = syncobj_new(f->c, 0), s2 = syncobj_new(f->c, 0);
	struct vmb_sync out = sync_out(s), out2 = sync_out(s2);
	vmb_copy_hold(true);
	assert_int_equal(prefetch_async(f, f->vm, VA_A, to, &out, 1), 0);
	struct unmapper u = {.c = f->c, .vm = f->other};
	atomic_init(&u.result, 1);
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, unmap_thread, &u), 0);
	struct vmb_bind_op ua = op_unmap_all(f->bo);
	bind_async(f->c, f->vm, 0, &ua, 1, &out2, 1);
	assert_int_equal(syncobj_done_within(f->c, s2, 200 * MS), -ETIME);
	assert_int_equal(atomic_load(&u.result), 1);
	vmb_copy_hold(false);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(atomic_load(&u.result), 0);
	assert_int_equal(syncobj_error(f->c, s), 0);
	assert_int_equal(syncobj_error(f->c, s2), 0);
	assert_int_equal(bo_region(f->c, f->bo), to);
	assert_int_equal(vm_stats(f->c, f->vm).num_mappings, 0);
	assert_int_equal(vm_stats(f->c, f->other).num_mappings, 0);
	validate_client(f->c);
	/* mapped again where it moved: the data is there */
	bind1(f->c, f->other, op_map(f->bo, 0, VA_B, BO_SIZE, 0));
	check_pattern(f->c, f->other, VA_B);
}

/*
 * A PREFETCH is ordered only against the binds that use its BOs' vms, never behind another
 * client's bind gated by a fence that nothing signals: client A's asynchronous MAP waits for a
 * gate (an in-fence never signalled while the test runs); client B's synchronous PREFETCH of its
 * own BO in its own vm returns 0 (bounded at 10 s to tell a hang; before, it waited for A's bind)
 * and its BO moved, A's bind still pending; an asynchronous bind of B's vm submitted after B's
 * PREFETCH does not wait for A's either. The gate opened, A's bind completes.
 */
struct prefetcher {
	struct vmb_client *c;
	uint32_t vm;
	uint32_t region;
	atomic_int result; /* 1 while the call runs */
};

static void *prefetch_thread(void *arg)
{
	struct prefetcher *p = arg;
	atomic_store(&p->result, __bind1(p->c, p->vm, op_prefetch(VA_A, BO_SIZE, p->region)));
	return NULL;
}

static void test_prefetch_not_behind_other_client(void **state)
{
	struct fixture *f = *state;
	struct vmb_client *b = open_soft(256 * MiB, 256 * MiB);
	uint32_t bvm = vm_new(b, 0), bbo = bo_new(b, BO_SIZE, VMB_PLACE_VRAM | VMB_PLACE_SYSTEM);
	bind1(b, bvm, op_map(bbo, 0, VA_A, BO_SIZE, 0));
	write_pattern(b, bvm, VA_A);
	struct gate g = gate_new(f->c);
	uint32_t s = syncobj_new(f->c, 0);
	struct vmb_sync y[2] = {sync_in(g.h), sync_out(s)};
	struct vmb_bind_op m = op_map(f->bo2, 0, VA_A, BO_SIZE, 0);
	bind_async(f->c, f->other, 0, &m, 1, y, 2);
	uint32_t to = other_region(bo_region(b, bbo));
	struct prefetcher p = {.c = b, .vm = bvm, .region = to};
	atomic_init(&p.result, 1);
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, prefetch_thread, &p), 0);
	for (int i = 0; i < 1000 && atomic_load(&p.result) == 1; i++)
		usleep(10000);
	int r = atomic_load(&p.result);
	bool gated = syncobj_done_within(f->c, s, 0) == -ETIME;
	if (r == 1)
		gate_open(&g); /* a hang: let it end before failing */
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(r, 0);
	assert_true(gated);
	assert_int_equal(bo_region(b, bbo), to);
	check_pattern(b, bvm, VA_A);
	/* a later asynchronous bind of B's vm follows B's own binds only */
	uint32_t bs = syncobj_new(b, 0);
	struct vmb_sync bout = sync_out(bs);
	struct vmb_bind_op bu = op_unmap(VA_A, BO_SIZE);
	bind_async(b, bvm, 0, &bu, 1, &bout, 1);
	assert_int_equal(syncobj_done_within(b, bs, 10 * SEC), 0);
	assert_int_equal(syncobj_done_within(f->c, s, 0), -ETIME);
	gate_open(&g);
	assert_int_equal(syncobj_error(f->c, s), 0);
	validate_client(b);
	assert_int_equal(vmb_client_close(b), 0);
}

/*
 * The chain of the tests below: vms A and B map the fixture's BO (at VA_A, VA_B); an asynchronous
 * PREFETCH of A moves it to the other region behind gate @g (out-fence s[0]); an asynchronous
 * PREFETCH of it (in A if @own, else in B) to @r2 (out-fence s[1]) and an asynchronous MAP of it
 * in vm C (at VA_B, out-fence s[2]) then return at once (before: the second PREFETCH waited in
 * the call for the gated move, which only this thread signals: a hang, here the bound's
 * failure); nothing of theirs has signalled, the BO has not moved. @v gets A, B, C.
 */
static void chain_behind_gate(struct fixture *f, bool own, uint32_t r2, struct gate *g, uint32_t v[3], uint32_t s[3])
{
	uint32_t from = bo_region(f->c, f->bo);
	for (int i = 0; i < 3; i++) {
		v[i] = vm_new(f->c, 0);
		s[i] = syncobj_new(f->c, 0);
	}
	bind1(f->c, v[0], op_map(f->bo, 0, VA_A, BO_SIZE, 0));
	bind1(f->c, v[1], op_map(f->bo, 0, VA_B, BO_SIZE, 0));
	struct vmb_sync y[2] = {sync_in(g->h), sync_out(s[0])};
	assert_int_equal(prefetch_async(f, v[0], VA_A, other_region(from), y, 2), 0);
	struct vmb_bind_op p2 = op_prefetch(own ? VA_A : VA_B, BO_SIZE, r2);
	assert_int_equal(bind_async_bounded(f, own ? v[0] : v[1], p2, s[1], g), 0);
	assert_int_equal(bind_async_bounded(f, v[2], op_map(f->bo, 0, VA_B, BO_SIZE, 0), s[2], g), 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(syncobj_done_within(f->c, s[i], 0), -ETIME);
	assert_int_equal(bo_region(f->c, f->bo), from);
	check_pattern(f->c, f->vm, VA_A);
}

static void vms_destroy(struct fixture *f, const uint32_t *v, int n)
{
	for (int i = 0; i < n; i++)
		if (v[i])
			vm_destroy1(f->c, v[i]);
}

/*
 * An asynchronous PREFETCH of a BO whose move is pending (chain_behind_gate), back to where the
 * BO is or to where the first goes (no move of its own), in the first's vm or another: once the
 * gate opens, with no copy failing, the first copy failing (A banned: the BO stays where it was;
 * a second PREFETCH in B moves it there again, one in A signals -EIO) or the second (its vm
 * banned: the BO where the first left it), each out-fence signals what its own job did, the
 * MAP maps the BO where the chain left it (the bytes read back through it; the client's check
 * sees every page table on the BO's backing, none on a freed one). Once the BO is back where it
 * started and the vms are gone, no region holds a byte more than before: no backing leaked or
 * freed twice.
 */
static void test_prefetch_of_moving_bo(void **state)
{
	struct fixture *f = *state;
	struct vmb_device *dev = f->c->dev;
	uint32_t from = bo_region(f->c, f->bo), to = other_region(from);
	uint64_t free_v = dev->ops->region_free(dev, VMB_REGION_VRAM), free_s = dev->ops->region_free(dev, VMB_REGION_SYSTEM);
	for (unsigned int i = 0; i < 12; i++) {
		unsigned long fail = i % 3; /* the n-th copy fails (0: none) */
		bool own = (i / 3) % 2;
		uint32_t r2 = i / 6 ? to : from, v[3], s[3];
		struct gate g = gate_new(f->c);
		chain_behind_gate(f, own, r2, &g, v, s);
		vmb_copy_fail_after(fail, -EIO);
		gate_open(&g);
		/* the second copies only if it moves the BO (r2 == from): from -> to -> from, or,
		 * the first failed, from -> from (in B; in the banned A it commits nothing) */
		int e2 = (fail == 1 && own) || (fail == 2 && r2 == from) ? -EIO : 0;
		uint32_t end = fail == 1 ? from : fail == 2 ? to : r2;
		assert_int_equal(syncobj_error(f->c, s[0]), fail == 1 ? -EIO : 0);
		assert_int_equal(syncobj_error(f->c, s[1]), e2);
		assert_int_equal(syncobj_error(f->c, s[2]), 0);
		vmb_copy_fail_after(0, 0);
		assert_int_equal(bo_region(f->c, f->bo), end);
		check_pattern(f->c, v[2], VA_B);
		check_pattern(f->c, f->vm, VA_A);
		validate_client(f->c);
		bind1(f->c, v[2], op_prefetch(VA_B, BO_SIZE, from));
		check_pattern(f->c, v[2], VA_B);
		vms_destroy(f, v, 3);
		validate_client(f->c);
		assert_int_equal(dev->ops->region_free(dev, VMB_REGION_VRAM), free_v);
		assert_int_equal(dev->ops->region_free(dev, VMB_REGION_SYSTEM), free_s);
	}
	assert_int_equal(vmb_commit_failed_count(), f->failed_before + 6);
}

/*
 * The same chain (the second PREFETCH in B, back to where the BO is), and before the gate opens a
 * vm is destroyed: B (the second's, where the first re-maps), A (the first's) or C (the MAP's,
 * which follows both). The destroy runs the chain in order: the first PREFETCH cancelled
 * (-ECANCELED, nothing moved) before the second, which runs after it (cancelled too if its vm is
 * the one destroyed, or the MAP's; else moving the BO where it is), then the MAP. Nothing left
 * behind (the client's check, every region's free bytes once the vms are gone).
 */
static void test_prefetch_of_moving_bo_destroy(void **state)
{
	struct fixture *f = *state;
	struct vmb_device *dev = f->c->dev;
	uint32_t from = bo_region(f->c, f->bo);
	uint64_t free_v = dev->ops->region_free(dev, VMB_REGION_VRAM), free_s = dev->ops->region_free(dev, VMB_REGION_SYSTEM);
	for (int which = 0; which < 3; which++) {
		uint32_t v[3], s[3];
		struct gate g = gate_new(f->c);
		chain_behind_gate(f, false, from, &g, v, s);
		int k = which == 0 ? 1 : which == 1 ? 0 : 2;
		vm_destroy1(f->c, v[k]);
		v[k] = 0;
		assert_int_equal(syncobj_error(f->c, s[0]), -ECANCELED);
		int e2 = syncobj_error(f->c, s[1]), e3 = syncobj_error(f->c, s[2]);
		assert_true(e2 == 0 || (e2 == -ECANCELED && k != 0));
		assert_true(e3 == 0 || (e3 == -ECANCELED && k == 2));
		assert_int_equal(bo_region(f->c, f->bo), from);
		check_pattern(f->c, f->vm, VA_A);
		if (v[2])
			check_pattern(f->c, v[2], VA_B);
		gate_open(&g);
		validate_client(f->c);
		vms_destroy(f, v, 3);
		validate_client(f->c);
		assert_int_equal(dev->ops->region_free(dev, VMB_REGION_VRAM), free_v);
		assert_int_equal(dev->ops->region_free(dev, VMB_REGION_SYSTEM), free_s);
	}
	assert_int_equal(vmb_commit_failed_count(), f->failed_before);
}

/*
 * A vm that maps the BO only through an asynchronous MAP that follows the BO's gated move (in
 * vm A), and an asynchronous PREFETCH of that mapping, on another bind queue, to where the move
 * goes: it has nothing of its own to move, but its fence does not signal before the move has
 * committed (it follows the MAP, whose range it touches). Before, it committed in the call: its
 * fence said the BO was there while the move still waited behind the gate.
 */
static void test_prefetch_of_moving_bo_other_queue(void **state)
{
	struct fixture *f = *state;
	uint32_t from = bo_region(f->c, f->bo), to = other_region(from);
	uint32_t v = vm_new(f->c, 0), q = queue_new(f->c, v);
	struct gate g = gate_new(f->c);
	uint32_t s = syncobj_new(f->c, 0), s2 = syncobj_new(f->c, 0), s3 = syncobj_new(f->c, 0);
	struct vmb_sync y[2] = {sync_in(g.h), sync_out(s)}, out = sync_out(s3);
	assert_int_equal(prefetch_async(f, f->vm, VA_A, to, y, 2), 0);
	assert_int_equal(map_async_bounded(f, v, VA_B, s2, &g), 0);
	struct vmb_bind_op op = op_prefetch(VA_B, BO_SIZE, to);
	assert_int_equal(__bind_async(f->c, v, q, &op, 1, &out, 1), 0);
	int st = syncobj_done_within(f->c, s3, 0);
	gate_open(&g);
	assert_int_equal(st, -ETIME);
	assert_int_equal(syncobj_error(f->c, s), 0);
	assert_int_equal(syncobj_error(f->c, s2), 0);
	assert_int_equal(syncobj_error(f->c, s3), 0);
	assert_int_equal(bo_region(f->c, f->bo), to);
	check_pattern(f->c, v, VA_B);
	validate_client(f->c);
}

/*
 * The chain of a second client (its own device), and that client closed before the gate opens:
 * the close cancels the chain in order and returns (on a thread, bounded: a close still in it
 * after 10 s fails the test). The first client's work is unaffected.
 */
static void test_prefetch_of_moving_bo_client_close(void **state)
{
	struct fixture *f = *state, f2 = {.c = open_two_vms(&f2.vm, &f2.other)};
	f2.bo = bo_new(f2.c, BO_SIZE, VMB_PLACE_VRAM | VMB_PLACE_SYSTEM);
	bind1(f2.c, f2.vm, op_map(f2.bo, 0, VA_A, BO_SIZE, 0));
	write_pattern(f2.c, f2.vm, VA_A);
	uint32_t v[3], s[3];
	struct gate g = gate_new(f2.c);
	chain_behind_gate(&f2, false, bo_region(f2.c, f2.bo), &g, v, s);
	struct destroyer d = {.c = f2.c, .what = 1};
	atomic_init(&d.result, 1);
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, destroy_thread, &d), 0);
	int i;
	for (i = 0; i < 1000 && atomic_load(&d.result) == 1; i++)
		usleep(10000);
	gate_open(&g); /* ends a hang before the asserts */
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_true(i < 1000);
	assert_int_equal(atomic_load(&d.result), 0);
	check_pattern(f->c, f->vm, VA_A);
	validate_client(f->c);
}

/*
 * A second PREFETCH of a BO whose gated move is pending, in vm B, back to where the BO is, its
 * n-th host allocation failing, n = 1, 2, ... until none fails: the call returns at once either
 * way; a failure is -ENOMEM with nothing changed (the first move alone commits once the gate
 * opens: the BO where it went, the client's check clean, no backing of the failed call left),
 * a success moves the BO back behind the first.
 */
static void test_prefetch_of_moving_bo_nomem(void **state)
{
	struct fixture *f = *state;
	struct vmb_device *dev = f->c->dev;
	uint32_t from = bo_region(f->c, f->bo), to = other_region(from), b = vm_new(f->c, 0);
	uint64_t free_v = dev->ops->region_free(dev, VMB_REGION_VRAM), free_s = dev->ops->region_free(dev, VMB_REGION_SYSTEM);
	bool done = false;
	bind1(f->c, b, op_map(f->bo, 0, VA_B, BO_SIZE, 0));
	for (unsigned long n = 1; !done && n < 500; n++) {
		struct gate g = gate_new(f->c);
		uint32_t s = syncobj_new(f->c, 0), s2 = syncobj_new(f->c, 0);
		struct vmb_sync y[2] = {sync_in(g.h), sync_out(s)};
		bool fired, waited;
		assert_int_equal(prefetch_async(f, f->vm, VA_A, to, y, 2), 0);
		int r = bind_async_on_thread(f, b, op_prefetch(VA_B, BO_SIZE, from), s2, &g, n, 1000, &fired, &waited);
		assert_false(waited);
		gate_open(&g);
		assert_int_equal(syncobj_error(f->c, s), 0);
		if (r) {
			assert_int_equal(r, -ENOMEM);
			assert_true(fired);
			assert_int_equal(bo_region(f->c, f->bo), to);
			validate_client(f->c);
			bind1(f->c, b, op_prefetch(VA_B, BO_SIZE, from));
		} else {
			done = !fired;
			assert_int_equal(syncobj_error(f->c, s2), 0);
		}
		assert_int_equal(bo_region(f->c, f->bo), from);
		check_pattern(f->c, b, VA_B);
		check_pattern(f->c, f->vm, VA_A);
		validate_client(f->c);
		assert_int_equal(dev->ops->region_free(dev, VMB_REGION_VRAM), free_v);
		assert_int_equal(dev->ops->region_free(dev, VMB_REGION_SYSTEM), free_s);
	}
	assert_true(done);
}

/* ---- a pipeline of MAP (of a BO another thread keeps moving back and forth), exec, UNMAP ---- */

struct mover {
	struct vmb_client *c;
	uint32_t vm;
	atomic_bool *stop;
	long moves;
	int bad;
};

static void *move_run(void *arg)
{
	struct mover *m = arg;
	uint32_t s = syncobj_new(m->c, 0);
	for (uint32_t i = 0; !atomic_load(m->stop); i++) {
		struct vmb_bind_op op = op_prefetch(VA_A, BO_SIZE, i & 1 ? VMB_REGION_SYSTEM : VMB_REGION_VRAM);
		struct vmb_sync y = sync_out(s);
		int r = i % 3 ? __bind_async(m->c, m->vm, 0, &op, 1, &y, 1) : __bind1(m->c, m->vm, op);
		if (r == -EINTR)
			continue;
		if (r) {
			m->bad = r;
			break;
		}
		m->moves++;
		if (i % 3 && i % 2) {
			r = syncobj_error(m->c, s);
			if (r) {
				m->bad = 1000 + r;
				break;
			}
		}
		if (i % 3) {
			struct vmb_syncobj_array a = {.handles = (uint64_t)(uintptr_t)&s, .count = 1};
			syncobj_wait1(m->c, s);
			assert_int_equal(vmb_syncobj_reset(m->c, &a), 0);
		}
	}
	return NULL;
}

static void test_pipeline_of_moving_bo(void **state)
{
	struct fixture *f = *state;
	struct vmb_client *c = f->c;
	uint64_t g = granule_of(c);
	uint32_t dst = bo_new(c, 4 * MiB, place_cpu(c)), cmdb = bo_new(c, g > 64 * KiB ? g : 64 * KiB, place_cpu(c));
	uint64_t *pd = bo_cpu(c, dst), *cmd = bo_cpu(c, cmdb);
	const uint64_t DST = 1ull << 36, CMD = 2ull << 36;
	bind1(c, f->other, op_map(dst, 0, DST, 4 * MiB, 0));
	bind1(c, f->other, op_map(cmdb, 0, CMD, g > 64 * KiB ? g : 64 * KiB, VMB_BIND_FLAG_READONLY));
	uint32_t n = 0;
	for (uint64_t i = 0; i < 8; i++)
		vmb_cmd_copy(cmd, &n, DST + 8 * i, VA_B + pat_off(i), 8);
	vmb_cmd_end(cmd, &n);
	struct vmb_exec_queue_create qc = {.vm_id = f->other, .engine = {.engine_class = VMB_ENGINE_CLASS_COMPUTE}};
	assert_int_equal(vmb_exec_queue_create(c, &qc), 0);
	atomic_bool stop = false;
	struct mover mv = {.c = c, .vm = f->vm, .stop = &stop};
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, move_run, &mv), 0);
	uint32_t sm = syncobj_new(c, 0), se = syncobj_new(c, 0), su = syncobj_new(c, 0);
	for (int it = 0; it < 20000; it++) {
		memset(pd, 0, 64);
		struct vmb_bind_op mop = op_map(f->bo, 0, VA_B, BO_SIZE, 0), uop = op_unmap(VA_B, BO_SIZE);
		struct vmb_sync y1[2] = {sync_out(sm), sync_in(su)};
		assert_int_equal(__bind_async(c, f->other, 0, &mop, 1, y1, it ? 2 : 1), 0);
		struct vmb_sync y2[2] = {sync_in(sm), sync_out(se)};
		struct vmb_exec x = {.exec_queue_id = qc.exec_queue_id, .num_syncs = 2, .syncs = (uint64_t)(uintptr_t)y2,
				     .address = CMD};
		assert_int_equal(vmb_exec(c, &x), 0);
		int e = syncobj_error(c, se);
		if (e) {
			struct vmb_exec_queue_query q = {.exec_queue_id = qc.exec_queue_id};
			vmb_exec_queue_query(c, &q);
			fail_msg("it %d: exec %d (map %d) fault %#llx", it, e, syncobj_error(c, sm),
				 (unsigned long long)q.fault_addr);
		}
		for (uint64_t i = 0; i < 8; i++)
			if (pd[i] != pattern(i))
				fail_msg("it %d word %llu: %#llx", it, (unsigned long long)i, (unsigned long long)pd[i]);
		struct vmb_syncobj_array a = {.handles = (uint64_t)(uintptr_t)&su, .count = 1};
		assert_int_equal(vmb_syncobj_reset(c, &a), 0);
		struct vmb_sync y3[2] = {sync_in(se), sync_out(su)};
		assert_int_equal(__bind_async(c, f->other, 0, &uop, 1, y3, 2), 0);
		uint32_t both[2] = {sm, se};
		a = (struct vmb_syncobj_array){.handles = (uint64_t)(uintptr_t)both, .count = 2};
		assert_int_equal(vmb_syncobj_reset(c, &a), 0);
	}
	syncobj_wait1(c, su);
	atomic_store(&stop, true);
	pthread_join(th, NULL);
	printf("moves %ld\n", mv.moves);
	assert_int_equal(mv.bad, 0);
	struct vmb_exec_queue_destroy xd = {.exec_queue_id = qc.exec_queue_id};
	assert_int_equal(vmb_exec_queue_destroy(c, &xd), 0);
	check_pattern(c, f->vm, VA_A);
	validate_client(c);
}

/* A synchronous PREFETCH while another thread keeps binding (MAP, exec, UNMAP pipelined) in a
 * vm that maps the BO: the PREFETCH must complete while that goes on (binds submitted after it
 * began must not hold it up for ever). */
struct one_prefetch {
	struct vmb_client *c;
	uint32_t vm;
	uint64_t va;
	uint32_t region;
	atomic_int result; /* 1 while in the call */
	int64_t took_ns;
};

static void *one_prefetch_run(void *arg)
{
	struct one_prefetch *o = arg;
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	int r = __bind1(o->c, o->vm, op_prefetch(o->va, BO_SIZE, o->region));
	clock_gettime(CLOCK_MONOTONIC, &b);
	o->took_ns = (b.tv_sec - a.tv_sec) * SEC + (b.tv_nsec - a.tv_nsec);
	atomic_store(&o->result, r);
	return NULL;
}

static void prefetch_vs_busy_vm(struct fixture *f, bool async_pipeline)
{
	struct vmb_client *c = f->c;
	uint32_t sm = syncobj_new(c, 0), su = syncobj_new(c, 0);
	uint32_t to = other_region(bo_region(c, f->bo));
	struct one_prefetch o = {.c = c, .vm = f->vm, .va = VA_A, .region = to};
	atomic_init(&o.result, 1);
	pthread_t th;
	bool started = false;
	int it;
	int64_t until = vmb_now_ns() + 30 * SEC; /* a hang detector, not a timing */
	for (it = 0; vmb_now_ns() < until && (!started || atomic_load(&o.result) == 1); it++) {
		struct vmb_bind_op mop = op_map(f->bo, 0, VA_B, BO_SIZE, 0), uop = op_unmap(VA_B, BO_SIZE);
		if (async_pipeline) {
			struct vmb_sync y1 = sync_out(sm), y3[2] = {sync_in(sm), sync_out(su)};
			assert_int_equal(__bind_async(c, f->other, 0, &mop, 1, &y1, 1), 0);
			assert_int_equal(__bind_async(c, f->other, 0, &uop, 1, y3, 2), 0);
		} else {
			bind1(c, f->other, mop);
			bind1(c, f->other, uop);
		}
		if (it == 10) {
			assert_int_equal(pthread_create(&th, NULL, one_prefetch_run, &o), 0);
			started = true;
		}
		if (async_pipeline && it % 64 == 63)
			syncobj_wait1(c, su);
	}
	int during = atomic_load(&o.result);
	pthread_join(th, NULL);
	if (async_pipeline)
		syncobj_wait1(c, su); /* the last UNMAP done: nothing pending for the client's check */
	printf("pipeline iterations %d, prefetch %d (during: %d) after %.3f ms\n", it, atomic_load(&o.result), during,
	       o.took_ns / 1e6);
	assert_int_not_equal(during, 1); /* it completed while the other vm kept binding */
	assert_int_equal(atomic_load(&o.result), 0);
	assert_int_equal(bo_region(c, f->bo), to);
	validate_client(c);
}

static void test_sync_prefetch_vs_busy_vm_async(void **state) { prefetch_vs_busy_vm(*state, true); }
static void test_sync_prefetch_vs_busy_vm_sync(void **state) { prefetch_vs_busy_vm(*state, false); }
int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_fence_waits_for_copy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sync_prefetch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_later_binds_follow, setup, teardown),
		cmocka_unit_test_setup_teardown(test_exec_after_prefetch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_async_copy_fails, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sync_copy_fails, setup, teardown),
		cmocka_unit_test_setup_teardown(test_destroy_cancels_pending, setup, teardown),
		cmocka_unit_test_setup_teardown(test_destroy_other_vm_keeps_prefetch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_async_map_of_moving_bo, setup, teardown),
		cmocka_unit_test_setup_teardown(test_async_ufence_map_of_moving_bo, setup, teardown),
		cmocka_unit_test_setup_teardown(test_async_map_of_moving_bo_failed_copy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_destroy_vm_with_map_of_moving_bo, setup, teardown),
		cmocka_unit_test_setup_teardown(test_async_map_of_moving_bo_nomem, setup, teardown),
		cmocka_unit_test_setup_teardown(test_map_check, setup, teardown),
		cmocka_unit_test_setup_teardown(test_race_vm_destroy_during_copy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_race_bo_destroy_during_copy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_race_queue_destroy_during_copy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_race_client_close_during_copy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_race_fork_during_copy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_prefetch_there_and_back, setup, teardown),
		cmocka_unit_test_setup_teardown(test_prefetch_waits_interrupted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_race_shared_bo_client_close, setup, teardown),
		cmocka_unit_test_setup_teardown(test_race_unmap_moving_bo, setup, teardown),
		cmocka_unit_test_setup_teardown(test_prefetch_not_behind_other_client, setup, teardown),
		cmocka_unit_test_setup_teardown(test_prefetch_of_moving_bo, setup, teardown),
		cmocka_unit_test_setup_teardown(test_prefetch_of_moving_bo_destroy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_prefetch_of_moving_bo_nomem, setup, teardown),
		cmocka_unit_test_setup_teardown(test_prefetch_of_moving_bo_client_close, setup, teardown),
		cmocka_unit_test_setup_teardown(test_prefetch_of_moving_bo_other_queue, setup, teardown),
		cmocka_unit_test_setup_teardown(test_split_moving_map, setup, teardown),
		cmocka_unit_test_setup_teardown(test_maps_of_moving_bo, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bo_closed_mid_chain, setup, teardown),
		cmocka_unit_test_setup_teardown(test_destroy_both_vms_of_chain, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pipeline_of_moving_bo, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sync_prefetch_vs_busy_vm_async, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sync_prefetch_vs_busy_vm_sync, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
