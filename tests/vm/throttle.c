/* SPDX-License-Identifier: MIT */
/*
 * An asynchronous bind call that waits on its queue's limit (VMB_BIND_QUEUE_PENDING_MAX jobs
 * pending: it waits for the oldest), attacked while it waits (docs/UAPI.md, "Errors": the call
 * holds what its handles named at entry, never an object that took a handle over later):
 *   - its out-syncobj destroyed and the handle taken by a new syncobj: the call succeeds, the
 *     new syncobj gets no fence;
 *   - its BO destroyed and the handle taken by a new BO; its bind queue destroyed; its vm
 *     destroyed: -ENOENT, nothing changed (the new BO is not mapped);
 *   - signals (no SA_RESTART): -EINTR, nothing changed; the same call restarted succeeds;
 *   - a synchronous bind on the same queue (it follows the queue's binds): the same.
 * Every call returns once the gate opens (10 s watchdog), the mappings are exactly those of the
 * calls that succeeded, the client checks clean.
 */
#include "lib/harness.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <time.h>

#include "sync/fence.h" /* VMB_FENCE_CONDVAR: waits that signals do not interrupt */

#define SEC 1000000000ll
#define VA0 (1ull << 32)

static uint64_t gran = 4096;

struct call {
	struct vmb_client *c;
	uint32_t vm, q, bo, so;
	bool sync;
	bool restart; /* restart on -EINTR */
	uint64_t addr;
	pthread_t th;
	atomic_int done;
	int ret, eintr;
};

static void *call_run(void *arg)
{
	struct call *k = arg;
	for (;;) {
		struct vmb_bind_op op = op_map(k->bo, 0, k->addr, gran, 0);
		struct vmb_sync s = sync_out(k->so);
		if (k->sync) {
			struct vmb_vm_bind b = {.vm_id = k->vm, .queue_id = k->q, .num_binds = 1,
						.binds = (uint64_t)(uintptr_t)&op};
			k->ret = vmb_vm_bind(k->c, &b);
		} else {
			k->ret = __bind_async(k->c, k->vm, k->q, &op, 1, &s, k->so ? 1 : 0);
		}
		if (k->ret != -EINTR || !k->restart)
			break;
		k->eintr++;
	}
	atomic_store(&k->done, 1);
	return NULL;
}

static void on_sig(int s) { (void)s; }

/* The vm, a queue with a gated bind and VMB_BIND_QUEUE_PENDING_MAX - 1 binds behind it. */
static void fill_queue(struct vmb_client *c, uint32_t vm, uint32_t q, uint32_t bo, struct gate *g, uint32_t last)
{
	struct vmb_sync in = sync_in(g->h), out = sync_out(last);
	struct vmb_bind_op op = op_map(bo, 0, VA0, gran, 0);
	bind_async(c, vm, q, &op, 1, &in, 1);
	for (uint64_t i = 1; i < 1024; i++) {
		op = op_map(bo, 0, VA0 + i * gran, gran, 0);
		bind_async(c, vm, q, &op, 1, &out, i == 1023);
	}
}

static void wait_done(struct call *k)
{
	for (int i = 0; i < 10000 && !atomic_load(&k->done); i++)
		usleep(1000);
	assert_true(atomic_load(&k->done));
	pthread_join(k->th, NULL);
}

/* Sleeps a little and checks the call still waits (it must: its queue is full behind a gate). */
static void still_waiting(struct call *k)
{
	usleep(20000);
	assert_false(atomic_load(&k->done));
}

enum attack { A_SYNCOBJ, A_BO, A_QUEUE, A_VM, A_SIGNAL, A_NONE };

static void throttle(enum attack a, bool sync)
{
	struct vmb_client *c = open_soft(64 * MiB, 256 * MiB);
	gran = granule_of(c);
	uint32_t vm = vm_new(c, 0), q = queue_new(c, vm);
	uint32_t bo = bo_new(c, gran, VMB_PLACE_SYSTEM);
	struct gate g = gate_new(c);
	uint32_t last = syncobj_new(c, 0); /* the queue's last bind before the call's */
	fill_queue(c, vm, q, bo, &g, last);
	struct call k = {.c = c, .vm = vm, .q = q, .bo = bo, .sync = sync, .addr = VA0 + 2000 * gran,
			 .so = sync ? 0 : syncobj_new(c, 0), .restart = false};
	struct sigaction sa = {.sa_handler = on_sig}, old;
	sigemptyset(&sa.sa_mask);
	assert_int_equal(sigaction(SIGUSR1, &sa, &old), 0);
	assert_int_equal(pthread_create(&k.th, NULL, call_run, &k), 0);
	still_waiting(&k);
	uint32_t newer = 0;
	int want = 0;
	switch (a) {
	case A_SYNCOBJ: {
		struct vmb_syncobj_destroy d = {.handle = k.so};
		assert_int_equal(vmb_syncobj_destroy(c, &d), 0);
		newer = syncobj_new(c, 0);
		break;
	}
	case A_BO:
		bo_destroy1(c, bo);
		newer = bo_new(c, gran, VMB_PLACE_SYSTEM);
		want = -ENOENT;
		break;
	case A_QUEUE: {
		struct vmb_bind_queue_destroy d = {.vm_id = vm, .queue_id = q};
		assert_int_equal(vmb_bind_queue_destroy(c, &d), 0);
		newer = queue_new(c, vm);
		want = -ENOENT;
		break;
	}
	case A_VM: {
		/* the destroy cancels the pending binds: the call's wait ends, the vm is gone */
		struct vmb_vm_destroy d = {.vm_id = vm};
		assert_int_equal(vmb_vm_destroy(c, &d), 0);
		newer = vm_new(c, 0);
		want = -ENOENT;
		break;
	}
	case A_SIGNAL:
		for (int i = 0; i < 10000 && !atomic_load(&k.done); i++) {
			pthread_kill(k.th, SIGUSR1);
			usleep(1000);
		}
		want = -EINTR;
		break;
	case A_NONE:
		break;
	}
	if (a != A_VM && a != A_SIGNAL)
		still_waiting(&k);
	if (a == A_SIGNAL) {
		wait_done(&k);
		assert_int_equal(k.ret, -EINTR);
		/* nothing changed: restarted, it waits again */
		atomic_store(&k.done, 0);
		k.restart = true;
		assert_int_equal(pthread_create(&k.th, NULL, call_run, &k), 0);
		still_waiting(&k);
		want = 0;
	}
	gate_open(&g);
	wait_done(&k);
	assert_int_equal(sigaction(SIGUSR1, &old, NULL), 0);
	if (k.ret != want)
		print_error("attack %d (%s): %d, expected %d\n", a, sync ? "sync" : "async", k.ret, want);
	assert_int_equal(k.ret, want);
	syncobj_wait1(c, last);
	if (a == A_VM) {
		/* the new vm (perhaps under the old handle) has nothing */
		assert_int_equal(vm_stats(c, newer).num_mappings, 0);
		validate_client(c);
		assert_int_equal(vmb_client_close(c), 0);
		return;
	}
	/* every bind of the queue done: 1024 + the call's if it succeeded */
	struct vmb_vm_bind bar = {.vm_id = vm, .queue_id = a == A_QUEUE ? newer : q};
	struct vmb_bind_op none = op_unmap(VA0 + 4000 * gran, gran);
	bar.num_binds = 1;
	bar.binds = (uint64_t)(uintptr_t)&none;
	if (a == A_QUEUE)
		bar.queue_id = 0;
	uint32_t fin = syncobj_new(c, 0);
	struct vmb_sync fs = sync_out(fin);
	bar.num_syncs = 1;
	bar.syncs = (uint64_t)(uintptr_t)&fs;
	bar.flags = VMB_VM_BIND_FLAG_ASYNC;
	assert_int_equal(vmb_vm_bind(c, &bar), 0);
	syncobj_wait1(c, fin);
	if (!sync && !want && a != A_SYNCOBJ) {
		syncobj_wait1(c, k.so);
		assert_int_equal(syncobj_error(c, k.so), 0);
	}
	struct vmb_vm_stats st = vm_stats(c, vm);
	assert_int_equal(st.num_mappings, 1024 + (want ? 0 : 1));
	if (a == A_SYNCOBJ) {
		/* the new syncobj under the handle got nothing: no fence, waiting for one is -EINVAL */
		assert_int_equal(__syncobj_wait1(c, newer, 0, 0, 0), -EINVAL);
	}
	if (a == A_BO) { /* the new BO under the old handle is mapped nowhere */
		struct vmb_vm_bind b = {.vm_id = vm, .num_binds = 1};
		struct vmb_bind_op un = op_unmap_all(newer);
		b.binds = (uint64_t)(uintptr_t)&un;
		assert_int_equal(vmb_vm_bind(c, &b), 0);
		assert_int_equal(vm_stats(c, vm).num_mappings, 1024);
	}
	validate_client(c);
	assert_int_equal(vmb_client_close(c), 0);
}

static void test_async_syncobj_reused(void **state) { (void)state; throttle(A_SYNCOBJ, false); }
static void test_async_bo_reused(void **state) { (void)state; throttle(A_BO, false); }
static void test_async_queue_destroyed(void **state) { (void)state; throttle(A_QUEUE, false); }
static void test_async_vm_destroyed(void **state) { (void)state; throttle(A_VM, false); }
static void signals(bool sync)
{
#ifdef VMB_FENCE_CONDVAR
	skip(); /* (the ThreadSanitizer build: waits are not interruptible there) */
#endif
	throttle(A_SIGNAL, sync);
}

static void test_async_signals(void **state) { (void)state; signals(false); }
static void test_async_plain(void **state) { (void)state; throttle(A_NONE, false); }
static void test_sync_bo_reused(void **state) { (void)state; throttle(A_BO, true); }
static void test_sync_queue_destroyed(void **state) { (void)state; throttle(A_QUEUE, true); }
static void test_sync_vm_destroyed(void **state) { (void)state; throttle(A_VM, true); }
static void test_sync_signals(void **state) { (void)state; signals(true); }
static void test_sync_plain(void **state) { (void)state; throttle(A_NONE, true); }

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_async_plain),
		cmocka_unit_test(test_async_syncobj_reused),
		cmocka_unit_test(test_async_bo_reused),
		cmocka_unit_test(test_async_queue_destroyed),
		cmocka_unit_test(test_async_vm_destroyed),
		cmocka_unit_test(test_async_signals),
		cmocka_unit_test(test_sync_plain),
		cmocka_unit_test(test_sync_bo_reused),
		cmocka_unit_test(test_sync_queue_destroyed),
		cmocka_unit_test(test_sync_vm_destroyed),
		cmocka_unit_test(test_sync_signals),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
