/* SPDX-License-Identifier: MIT */
/*
 * Description: a device whose memory work is slow (CUDA creates, zeroes, unmaps and releases
 * its allocations in milliseconds) holds up no other call of the device's clients. The test
 * swaps in the soft device's ops with backing_alloc, backing_free or vm_destroy blocked until it
 * opens them; while one thread is blocked there (in vmb_bo_create, in vmb_bo_destroy of a BO's
 * last reference, in vmb_vm_destroy of a vm with a mapping), a synchronous bind (the device
 * lock shared) on another thread completes, and a query works. Before, the three calls held
 * the device lock exclusive across the device's work.
 */
#include "lib/harness.h"

#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>

#include "core/client.h"
#include "dev/core.h"

#define SIZE (64 * KiB)

static const struct vmb_device_ops *real;
static struct vmb_device_ops slow;
static sem_t open_gate;
static atomic_int blocked;

static void held_here(void)
{
	/* relaxed: the test learns where the call is and no more (no happens-before the sanitizer
	 * would take for the locks' order: test_vm_free_unlinks_under_the_lock) */
	atomic_store_explicit(&blocked, 1, memory_order_relaxed);
	while (sem_wait(&open_gate) != 0)
		;
}

static int slow_alloc(struct vmb_device *dev, uint32_t region, uint64_t size, uint64_t chunk, const void *host,
		      struct vmb_backing *out)
{
	held_here();
	return real->backing_alloc(dev, region, size, chunk, host, out);
}

static void slow_free(struct vmb_device *dev, uint32_t region, struct vmb_backing *b)
{
	held_here();
	real->backing_free(dev, region, b);
}

static void slow_vm_destroy(struct vmb_device *dev, struct vmb_dev_vm *vm)
{
	held_here();
	real->vm_destroy(dev, vm);
}

/* the first vm_destroy only (a second one would be a double free the test must survive to see) */
static atomic_int held_once;

static void slow_vm_destroy_once(struct vmb_device *dev, struct vmb_dev_vm *vm)
{
	if (!atomic_exchange(&held_once, 1))
		held_here();
	real->vm_destroy(dev, vm);
}

enum what { CREATE_BO, DESTROY_BO, DESTROY_VM };

struct call {
	struct vmb_client *c;
	enum what what;
	uint32_t id; /* the BO or vm to destroy */
	atomic_int result;
	uint32_t handle;
};

static void *call_thread(void *arg)
{
	struct call *k = arg;
	int r;
	if (k->what == DESTROY_BO) {
		struct vmb_bo_destroy d = {.handle = k->id};
		r = vmb_bo_destroy(k->c, &d);
	} else if (k->what == DESTROY_VM) {
		struct vmb_vm_destroy d = {.vm_id = k->id};
		r = vmb_vm_destroy(k->c, &d);
	} else {
		struct vmb_bo_create b = {.size = SIZE, .placements = VMB_PLACE_VRAM};
		r = vmb_bo_create(k->c, &b);
		k->handle = b.handle;
	}
	atomic_store(&k->result, r);
	return NULL;
}

static void *bind_thread(void *arg)
{
	struct call *k = arg;
	atomic_store(&k->result, __bind1(k->c, k->handle, op_null(1 * GiB, SIZE)));
	return NULL;
}

static bool wait_for(atomic_int *v, int not)
{
	/* up to 20 s: a state, not a time */
	for (int i = 0; i < 20000 && atomic_load_explicit(v, memory_order_relaxed) == not; i++)
		usleep(1000);
	return atomic_load_explicit(v, memory_order_relaxed) != not;
}

/* @what: the call blocked in the device's work (a BO's creation, the destroy of its last
 * reference, the destroy of a vm with a mapping). */
static void slow_memory_work(enum what what)
{
	struct vmb_client *c = open_soft(64 * MiB, 64 * MiB);
	struct vmb_client *other = c; /* one client: the device lock is the device's */
	uint32_t vm = vm_new(other, 0);
	uint32_t victim = 0;
	if (what == DESTROY_BO) {
		victim = bo_new(c, SIZE, VMB_PLACE_VRAM);
	} else if (what == DESTROY_VM) {
		victim = vm_new(c, 0);
		bind1(c, victim, op_null(1 * GiB, SIZE));
	}

	real = c->dev->ops;
	slow = *real;
	if (what == CREATE_BO)
		slow.backing_alloc = slow_alloc;
	else if (what == DESTROY_BO)
		slow.backing_free = slow_free;
	else
		slow.vm_destroy = slow_vm_destroy;
	assert_int_equal(sem_init(&open_gate, 0, 0), 0);
	atomic_store(&blocked, 0);
	c->dev->ops = &slow;

	struct call k = {.c = c, .what = what, .id = victim};
	atomic_init(&k.result, 1);
	pthread_t t, b;
	assert_int_equal(pthread_create(&t, NULL, call_thread, &k), 0);
	assert_true(wait_for(&blocked, 0));
	/* the device's work is under way: another client binds and queries meanwhile */
	struct call bk = {.c = other, .handle = vm};
	atomic_init(&bk.result, 1);
	assert_int_equal(pthread_create(&b, NULL, bind_thread, &bk), 0);
	bool bound = wait_for(&bk.result, 1);
	struct vmb_region_query rq = {.region = VMB_REGION_VRAM};
	int qerr = bound ? vmb_region_query(other, &rq) : -1;
	/* release whatever waits (the bind too, before the fix), then check */
	sem_post(&open_gate);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(pthread_join(b, NULL), 0);
	c->dev->ops = real;
	sem_destroy(&open_gate);
	assert_true(bound); /* it did not wait for the device's memory work */
	assert_int_equal(atomic_load(&bk.result), 0);
	assert_int_equal(qerr, 0);
	assert_int_equal(atomic_load(&k.result), 0);
	if (what == CREATE_BO) {
		assert_int_not_equal(k.handle, 0);
		bo_destroy1(c, k.handle);
	}
	validate_client(c);
	assert_int_equal(vmb_client_close(c), 0);
}

static void test_bo_create_holds_up_no_bind(void **state)
{
	(void)state;
	slow_memory_work(CREATE_BO);
}

static void test_bo_destroy_holds_up_no_bind(void **state)
{
	(void)state;
	slow_memory_work(DESTROY_BO);
}

static void test_vm_destroy_holds_up_no_bind(void **state)
{
	(void)state;
	slow_memory_work(DESTROY_VM);
}

/* A BO mapped in two vms; one vm's destroy frees that vm with no device lock held, while other
 * calls hold the device lock exclusive and walk a BO's list of vms without the cross lock
 * (vmb_bo_query counts its mappings; PREFETCH's re-mapping and eviction walk it too, and read
 * each link's vm). The free drops the last reference of BO Y (its handle destroyed), whose
 * backing_free the test holds: meanwhile a query of X on another thread runs (or waits for the
 * device lock). The vm must have left X's list before (under the destroy's lock); else TSan
 * names a race on X's list (the free unlinked it under the cross lock only). */
struct query {
	struct vmb_client *c;
	uint32_t bo;
	atomic_int result;
	uint32_t mappings;
};

static void *query_thread(void *arg)
{
	struct query *q = arg;
	struct vmb_bo_query bq = {.handle = q->bo};
	int r = vmb_bo_query(q->c, &bq);
	q->mappings = bq.vm_mappings;
	atomic_store(&q->result, r);
	return NULL;
}

static void test_vm_free_unlinks_under_the_lock(void **state)
{
	(void)state;
	struct vmb_client *c = open_soft(64 * MiB, 64 * MiB);
	uint32_t keep = vm_new(c, 0), victim = vm_new(c, 0);
	uint32_t x = bo_new(c, SIZE, VMB_PLACE_VRAM), y = bo_new(c, SIZE, VMB_PLACE_VRAM);
	bind1(c, keep, op_map(x, 0, 1 * GiB, SIZE, 0));
	bind1(c, victim, op_map(x, 0, 1 * GiB, SIZE, 0)); /* the victim's first link: X's */
	bind1(c, victim, op_map(y, 0, 2 * GiB, SIZE, 0));
	bo_destroy1(c, y); /* the victim's link holds Y's last reference */

	real = c->dev->ops;
	slow = *real;
	slow.backing_free = slow_free;
	assert_int_equal(sem_init(&open_gate, 0, 0), 0);
	atomic_store(&blocked, 0);
	c->dev->ops = &slow;

	struct call k = {.c = c, .what = DESTROY_VM, .id = victim};
	atomic_init(&k.result, 1);
	pthread_t t, qt;
	assert_int_equal(pthread_create(&t, NULL, call_thread, &k), 0);
	assert_true(wait_for(&blocked, 0)); /* X unlinked from the victim, Y's backing being freed */
	struct query q = {.c = c, .bo = x};
	atomic_init(&q.result, 1);
	assert_int_equal(pthread_create(&qt, NULL, query_thread, &q), 0);
	/* a state either way: the query is over, or it waits for the device lock */
	for (int i = 0; i < 20000 && atomic_load(&q.result) == 1 && !atomic_load(&c->dev->lock_waiters); i++)
		usleep(1000);
	sem_post(&open_gate);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(pthread_join(qt, NULL), 0);
	c->dev->ops = real;
	sem_destroy(&open_gate);
	assert_int_equal(atomic_load(&k.result), 0);
	assert_int_equal(atomic_load(&q.result), 0);
	assert_int_equal(q.mappings, 1);
	struct vmb_region_query rq = {.region = VMB_REGION_VRAM};
	assert_int_equal(vmb_region_query(c, &rq), 0);
	assert_int_equal(rq.free, rq.capacity - SIZE); /* Y's room is back, X's is not */
	validate_client(c);
	assert_int_equal(vmb_client_close(c), 0);
}

/* While a destroyed vm's page tables are being freed (no device lock held), nothing may reach
 * the vm through a BO it maps: a PREFETCH from another vm re-maps the BO in every vm that links it
 * (and takes a reference on each). Before, the vm's BO links went after the device's vm_destroy:
 * the PREFETCH found the dying vm, took a reference (0 -> 1) and prepared in its page tables; its
 * end dropped that reference and freed the vm a second time. */
static void test_vm_unreachable_while_its_tables_go(void **state)
{
	(void)state;
	struct vmb_client *c = open_soft(64 * MiB, 64 * MiB);
	uint32_t keep = vm_new(c, 0), victim = vm_new(c, 0);
	uint32_t x = bo_new(c, SIZE, VMB_PLACE_VRAM | VMB_PLACE_SYSTEM);
	bind1(c, keep, op_map(x, 0, 1 * GiB, SIZE, 0));
	bind1(c, victim, op_map(x, 0, 1 * GiB, SIZE, 0));
	struct vmb_bo_query q = {.handle = x};
	assert_int_equal(vmb_bo_query(c, &q), 0);
	uint32_t to = q.region == VMB_REGION_VRAM ? VMB_REGION_SYSTEM : VMB_REGION_VRAM;

	real = c->dev->ops;
	slow = *real;
	slow.vm_destroy = slow_vm_destroy_once;
	assert_int_equal(sem_init(&open_gate, 0, 0), 0);
	atomic_store(&blocked, 0);
	atomic_store(&held_once, 0);
	c->dev->ops = &slow;

	struct call k = {.c = c, .what = DESTROY_VM, .id = victim};
	atomic_init(&k.result, 1);
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, call_thread, &k), 0);
	assert_true(wait_for(&blocked, 0)); /* the victim's page tables about to go */
	int pr = __bind1(c, keep, op_prefetch(1 * GiB, SIZE, to));
	assert_int_equal(vmb_bo_query(c, &q), 0);
	sem_post(&open_gate);
	assert_int_equal(pthread_join(t, NULL), 0);
	c->dev->ops = real;
	sem_destroy(&open_gate);
	assert_int_equal(pr, 0);
	assert_int_equal(q.vm_mappings, 1); /* the victim's mapping is not counted */
	assert_int_equal(q.region, to);
	assert_int_equal(atomic_load(&k.result), 0);
	validate_client(c);
	assert_int_equal(vmb_client_close(c), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bo_create_holds_up_no_bind),
		cmocka_unit_test(test_bo_destroy_holds_up_no_bind),
		cmocka_unit_test(test_vm_destroy_holds_up_no_bind),
		cmocka_unit_test(test_vm_free_unlinks_under_the_lock),
		cmocka_unit_test(test_vm_unreachable_while_its_tables_go),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
