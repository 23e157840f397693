/* SPDX-License-Identifier: MIT */
/*
 * Description: fences: signal exactly once with an error, callbacks run once from the signal
 * (inside a signalling section, where allocating aborts), waits with absolute deadlines, waits
 * woken from other threads, callbacks added and removed while a thread sleeps on the fence,
 * interruptible waits returning -EINTR to a signal handler and
 * restarting to the same result; composite fences (vmb_fence_all) that signal only once every
 * component has, with the first component's error; events notified only when a waiter has
 * announced itself (vmb_event_notify_waiters) lose no wake-up.
 */
#include "lib/harness.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/alloc.h"
#include "sync/event.h"
#include "sync/fence.h"

struct counted {
	struct vmb_fence_cb cb;
	int runs;
	bool in_section;
	int seen_error;
};

static void count_cb(struct vmb_fence *f, struct vmb_fence_cb *cb)
{
	struct counted *c = vmb_container_of(cb, struct counted, cb);
	c->runs++;
	c->in_section = vmb_in_signalling();
	c->seen_error = f->error;
}

static void test_signal_once(void **state)
{
	(void)state;
	struct vmb_fence f;
	vmb_fence_init(&f);
	assert_false(vmb_fence_is_signalled(&f));
	assert_int_equal(vmb_fence_error(&f), 0);
	assert_int_equal(vmb_fence_wait(&f, vmb_now_ns(), false), -ETIME);
	assert_int_equal(vmb_fence_signal(&f, -EFAULT), 0);
	assert_true(vmb_fence_is_signalled(&f));
	assert_int_equal(vmb_fence_error(&f), -EFAULT);
	assert_int_equal(vmb_fence_signal(&f, 0), -EINVAL);
	assert_int_equal(vmb_fence_error(&f), -EFAULT);
	assert_int_equal(vmb_fence_wait(&f, 0, false), 0); /* a past deadline is fine once signalled */
	vmb_fence_get(&f);
	assert_false(vmb_fence_put(&f));
	assert_true(vmb_fence_put(&f));
}

static void test_callbacks(void **state)
{
	(void)state;
	struct vmb_fence f;
	struct counted a = {0}, b = {0}, c = {0}, late = {0};
	vmb_fence_init(&f);
	assert_int_equal(vmb_fence_add_callback(&f, &a.cb, count_cb), 0);
	assert_int_equal(vmb_fence_add_callback(&f, &b.cb, count_cb), 0);
	assert_int_equal(vmb_fence_add_callback(&f, &c.cb, count_cb), 0);
	assert_true(vmb_fence_remove_callback(&f, &b.cb));
	assert_false(vmb_fence_remove_callback(&f, &b.cb));
	assert_false(vmb_in_signalling());
	assert_int_equal(vmb_fence_signal(&f, -ECANCELED), 0);
	assert_false(vmb_in_signalling());
	assert_int_equal(a.runs, 1);
	assert_int_equal(b.runs, 0);
	assert_int_equal(c.runs, 1);
	assert_true(a.in_section);
	assert_int_equal(a.seen_error, -ECANCELED);
	assert_false(vmb_fence_remove_callback(&f, &a.cb));
	assert_int_equal(vmb_fence_add_callback(&f, &late.cb, count_cb), -ENOENT);
	assert_int_equal(late.runs, 0);
	assert_true(vmb_fence_put(&f));
}

static void alloc_cb(struct vmb_fence *f, struct vmb_fence_cb *cb)
{
	(void)f;
	(void)cb;
	free(vmb_malloc(16)); /* must abort: allocating while signalling */
}

static void test_signalling_section_allocation_aborts(void **state)
{
	(void)state;
#ifdef NDEBUG
	skip();
#endif
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct vmb_fence f;
		struct vmb_fence_cb cb;
		vmb_fence_init(&f);
		vmb_fence_add_callback(&f, &cb, alloc_cb);
		fclose(stderr); /* the expected message is noise here */
		vmb_fence_signal(&f, 0);
		_exit(0); /* not reached if the check works */
	}
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGABRT);
	/* outside a section the same allocation is fine */
	free(vmb_malloc(16));
}

/* Runs @fn in a child; true if the child died of SIGABRT. */
static bool aborts(void (*fn)(void))
{
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		fclose(stderr);
		fn();
		_exit(0);
	}
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT;
}

static void wait_in_section(void)
{
	struct vmb_fence f;
	vmb_fence_init(&f);
	vmb_fence_signal(&f, 0);
	vmb_signalling_begin();
	vmb_fence_wait(&f, VMB_FENCE_FOREVER, false); /* signalled: would return at once */
}

static void wait_under_device_lock(void)
{
	struct vmb_fence f;
	vmb_fence_init(&f);
	vmb_fence_signal(&f, 0);
	vmb_nowait_begin();
	vmb_fence_wait(&f, VMB_FENCE_FOREVER, false);
}

static void wait_outside(void)
{
	struct vmb_fence f;
	vmb_fence_init(&f);
	vmb_fence_signal(&f, 0);
	vmb_nowait_begin();
	vmb_nowait_end();
	vmb_fence_wait(&f, VMB_FENCE_FOREVER, false);
}

/* Waiting where a wait could wait for itself aborts, even on a signalled fence. */
static void test_wait_checks(void **state)
{
	(void)state;
#ifdef NDEBUG
	skip();
#endif
	assert_true(aborts(wait_in_section));
	assert_true(aborts(wait_under_device_lock));
	assert_false(aborts(wait_outside));
}

struct waiter {
	struct vmb_fence *f;
	int64_t deadline;
	bool interruptible;
	int result;
	_Atomic int eintr;
	_Atomic int started;
};

static void *wait_thread(void *arg)
{
	struct waiter *w = arg;
	atomic_store(&w->started, 1);
	/* restart on -EINTR, as an application restarts an interrupted call */
	while ((w->result = vmb_fence_wait(w->f, w->deadline, w->interruptible)) == -EINTR)
		w->eintr++;
	return NULL;
}

static void test_wait_woken_by_other_thread(void **state)
{
	(void)state;
	struct vmb_fence f;
	pthread_t th[8];
	struct waiter w[8];
	vmb_fence_init(&f);
	for (int i = 0; i < 8; i++) {
		w[i] = (struct waiter){.f = &f, .deadline = VMB_FENCE_FOREVER, .interruptible = i & 1};
		assert_int_equal(pthread_create(&th[i], NULL, wait_thread, &w[i]), 0);
	}
	for (int i = 0; i < 8; i++)
		while (!atomic_load(&w[i].started))
			usleep(100);
	usleep(20000);
	assert_int_equal(vmb_fence_signal(&f, -EIO), 0);
	for (int i = 0; i < 8; i++) {
		assert_int_equal(pthread_join(th[i], NULL), 0);
		assert_int_equal(w[i].result, 0);
	}
	assert_int_equal(vmb_fence_error(&f), -EIO);
	assert_true(vmb_fence_put(&f));
}

/*
 * A fence that a thread sleeps on is still unsignalled: a waiter marks the state word (the
 * futex build), and a callback added or removed meanwhile must see a pending fence. Treating
 * the mark as "signalled" would drop the callback (-ENOENT, never run): work depending on the
 * fence would start before it signals.
 */
static void test_callback_while_waited_on(void **state)
{
	(void)state;
	struct vmb_fence f;
	struct counted a = {0}, b = {0};
	pthread_t th;
	vmb_fence_init(&f);
	struct waiter w = {.f = &f, .deadline = VMB_FENCE_FOREVER, .interruptible = false};
	assert_int_equal(pthread_create(&th, NULL, wait_thread, &w), 0);
	while (!atomic_load(&w.started))
		usleep(100);
#ifndef VMB_FENCE_CONDVAR
	while (atomic_load(&f.state) == 1) /* until the waiter has announced itself (2) */
		usleep(100);
	assert_int_equal(atomic_load(&f.state), 2);
#else
	usleep(20000); /* condition variables: the state word has no waiter mark */
#endif
	assert_false(vmb_fence_is_signalled(&f));
	assert_int_equal(vmb_fence_add_callback(&f, &a.cb, count_cb), 0);
	assert_int_equal(vmb_fence_add_callback(&f, &b.cb, count_cb), 0);
	assert_true(vmb_fence_remove_callback(&f, &b.cb)); /* pending: removed, never runs */
	assert_int_equal(a.runs, 0);
	assert_int_equal(vmb_fence_signal(&f, -EIO), 0);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(w.result, 0);
	assert_int_equal(a.runs, 1);
	assert_int_equal(a.seen_error, -EIO);
	assert_int_equal(b.runs, 0);
	assert_true(vmb_fence_put(&f));
}

/*
 * A composite fence (vmb_fence_all) signals once every component has, not before: with two or
 * more components pending, signalling all but one leaves it pending. Its count of pending
 * components holds one extra while arming; without it the composite signals one early.
 */
static void test_all_waits_for_every_component(void **state)
{
	(void)state;
	for (unsigned int n = 2; n <= 4; n++) {
		struct vmb_fence *f[4];
		for (unsigned int i = 0; i < n; i++)
			assert_non_null(f[i] = vmb_fence_create());
		struct vmb_fence *all = vmb_fence_all(f, n);
		assert_non_null(all);
		assert_false(vmb_fence_is_signalled(all));
		for (unsigned int i = 0; i + 1 < n; i++) {
			assert_int_equal(vmb_fence_signal(f[i], 0), 0);
			assert_false(vmb_fence_is_signalled(all)); /* f[n - 1] is still pending */
			assert_int_equal(vmb_fence_wait(all, vmb_now_ns(), false), -ETIME);
		}
		assert_int_equal(vmb_fence_signal(f[n - 1], 0), 0);
		assert_true(vmb_fence_is_signalled(all));
		assert_int_equal(vmb_fence_error(all), 0);
		vmb_fence_unref(all);
		for (unsigned int i = 0; i < n; i++)
			vmb_fence_unref(f[i]);
	}
	/* one component already signalled at creation, two pending: still waits for both */
	struct vmb_fence *f[3];
	for (unsigned int i = 0; i < 3; i++)
		assert_non_null(f[i] = vmb_fence_create());
	assert_int_equal(vmb_fence_signal(f[0], 0), 0);
	struct vmb_fence *all = vmb_fence_all(f, 3);
	assert_non_null(all);
	assert_false(vmb_fence_is_signalled(all));
	assert_int_equal(vmb_fence_signal(f[2], 0), 0);
	assert_false(vmb_fence_is_signalled(all));
	assert_int_equal(vmb_fence_signal(f[1], 0), 0);
	assert_true(vmb_fence_is_signalled(all));
	vmb_fence_unref(all);
	for (unsigned int i = 0; i < 3; i++)
		vmb_fence_unref(f[i]);
}

/*
 * A composite fence signals with the first error among its components, also when that
 * component signals after the composite was made (its callback carries the error).
 */
static void test_all_carries_component_error(void **state)
{
	(void)state;
	for (unsigned int failing = 0; failing < 3; failing++) {
		struct vmb_fence *f[3];
		for (unsigned int i = 0; i < 3; i++)
			assert_non_null(f[i] = vmb_fence_create());
		struct vmb_fence *all = vmb_fence_all(f, 3);
		assert_non_null(all);
		for (unsigned int i = 0; i < 3; i++) {
			assert_int_equal(vmb_fence_signal(f[i], i == failing ? -EIO : 0), 0);
			assert_int_equal(vmb_fence_is_signalled(all), i == 2);
			if (i < 2)
				assert_int_equal(vmb_fence_error(all), 0); /* 0 while unsignalled */
		}
		assert_int_equal(vmb_fence_error(all), -EIO);
		vmb_fence_unref(all);
		for (unsigned int i = 0; i < 3; i++)
			vmb_fence_unref(f[i]);
	}
	/* two failures: the first one's error, not the last */
	struct vmb_fence *f[2] = {vmb_fence_create(), vmb_fence_create()};
	assert_non_null(f[0]);
	assert_non_null(f[1]);
	struct vmb_fence *all = vmb_fence_all(f, 2);
	assert_non_null(all);
	assert_int_equal(vmb_fence_signal(f[1], -EIO), 0);
	assert_int_equal(vmb_fence_signal(f[0], -EFAULT), 0);
	assert_true(vmb_fence_is_signalled(all));
	assert_int_equal(vmb_fence_error(all), -EIO);
	vmb_fence_unref(all);
	vmb_fence_unref(f[0]);
	vmb_fence_unref(f[1]);
	/* a component that had failed before the composite was made */
	f[0] = vmb_fence_create();
	f[1] = vmb_fence_create();
	assert_int_equal(vmb_fence_signal(f[0], -ENOSPC), 0);
	all = vmb_fence_all(f, 2);
	assert_non_null(all);
	assert_int_equal(vmb_fence_signal(f[1], 0), 0);
	assert_int_equal(vmb_fence_error(all), -ENOSPC);
	vmb_fence_unref(all);
	vmb_fence_unref(f[0]);
	vmb_fence_unref(f[1]);
}

static void test_deadline(void **state)
{
	(void)state;
	struct vmb_fence f;
	vmb_fence_init(&f);
	int64_t start = vmb_now_ns(), deadline = start + 20 * 1000 * 1000;
	assert_int_equal(vmb_fence_wait(&f, deadline, true), -ETIME);
	assert_true(vmb_now_ns() >= deadline); /* it did not give up early */
	assert_false(vmb_fence_is_signalled(&f));
	assert_true(vmb_fence_put(&f));
}

static void on_usr1(int sig) { (void)sig; }

static void test_interrupted_wait_restarts(void **state)
{
	(void)state;
#ifdef VMB_FENCE_CONDVAR
	skip(); /* the condition-variable build (ThreadSanitizer) cannot report signals */
#endif
	struct sigaction sa = {.sa_handler = on_usr1}; /* no SA_RESTART */
	struct sigaction old;
	sigemptyset(&sa.sa_mask);
	assert_int_equal(sigaction(SIGUSR1, &sa, &old), 0);
	struct vmb_fence f;
	pthread_t ti, tn;
	vmb_fence_init(&f);
	struct waiter wi = {.f = &f, .deadline = VMB_FENCE_FOREVER, .interruptible = true};
	struct waiter wn = {.f = &f, .deadline = VMB_FENCE_FOREVER, .interruptible = false};
	assert_int_equal(pthread_create(&ti, NULL, wait_thread, &wi), 0);
	assert_int_equal(pthread_create(&tn, NULL, wait_thread, &wn), 0);
	while (!atomic_load(&wi.started) || !atomic_load(&wn.started))
		usleep(100);
	/* keep interrupting until the interruptible waiter has seen -EINTR a few times */
	for (int i = 0; i < 2000 && wi.eintr < 3; i++) {
		pthread_kill(ti, SIGUSR1);
		pthread_kill(tn, SIGUSR1);
		usleep(1000);
	}
	assert_int_equal(vmb_fence_signal(&f, -ENOSPC), 0);
	assert_int_equal(pthread_join(ti, NULL), 0);
	assert_int_equal(pthread_join(tn, NULL), 0);
	print_message("interruptible waiter restarted %d times\n", wi.eintr);
	assert_true(wi.eintr >= 1);
	assert_int_equal(wn.eintr, 0);
	assert_int_equal(wi.result, 0);
	assert_int_equal(wn.result, 0);
	assert_int_equal(vmb_fence_error(&f), -ENOSPC);
	assert_true(vmb_fence_put(&f));
	sigaction(SIGUSR1, &old, NULL);
}

/* ---- an event notified only for announced waiters (vmb_event_notify_waiters) ---- */

#define ANNOUNCE_ROUNDS 20000

struct announced {
	struct vmb_event ev;
	_Atomic uint64_t cond; /* the notifier's round */
	_Atomic uint64_t ack;  /* the waiter's round seen */
	int timeouts;
};

/* Round by round, the notifier makes the condition true and notifies only if a waiter is
 * announced; the waiter announces before it reads the condition and sleeps on the event. A lost
 * wake-up shows as a wait that times out (1 s) with the condition true. */
static void *announced_waiter(void *arg)
{
	struct announced *a = arg;
	for (uint64_t r = 1; r <= ANNOUNCE_ROUNDS; r++) {
		vmb_event_announce(&a->ev);
		for (;;) {
			uint32_t seen = vmb_event_read(&a->ev);
			if (atomic_load(&a->cond) >= r)
				break;
			if (vmb_event_wait(&a->ev, seen, vmb_now_ns() + 1000000000ll, false) == -ETIME &&
			    atomic_load(&a->cond) >= r) {
				a->timeouts++; /* lost: give up (the notifier waits for the acks) */
				atomic_store(&a->ack, ANNOUNCE_ROUNDS);
				return NULL;
			}
		}
		vmb_event_retire(&a->ev);
		atomic_store(&a->ack, r);
	}
	return NULL;
}

static void test_event_notify_waiters(void **state)
{
	(void)state;
	struct announced a = {.timeouts = 0};
	vmb_event_init(&a.ev);
	atomic_init(&a.cond, 0);
	atomic_init(&a.ack, 0);
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, announced_waiter, &a), 0);
	for (uint64_t r = 1; r <= ANNOUNCE_ROUNDS; r++) {
		if (r % 3 == 0) /* sometimes late: the waiter is asleep by then */
			for (volatile int k = 0; k < 2000; k++)
				;
		atomic_store_explicit(&a.cond, r, memory_order_release);
		vmb_event_notify_waiters(&a.ev);
		while (atomic_load(&a.ack) < r)
			sched_yield();
	}
	pthread_join(th, NULL);
	assert_int_equal(a.timeouts, 0);
	/* nobody announced: nothing written */
	uint32_t seq = vmb_event_read(&a.ev);
	vmb_event_notify_waiters(&a.ev);
	assert_int_equal(vmb_event_read(&a.ev), seq);
	vmb_event_fini(&a.ev);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_signal_once),
		cmocka_unit_test(test_callbacks),
		cmocka_unit_test(test_signalling_section_allocation_aborts),
		cmocka_unit_test(test_wait_checks),
		cmocka_unit_test(test_wait_woken_by_other_thread),
		cmocka_unit_test(test_callback_while_waited_on),
		cmocka_unit_test(test_all_waits_for_every_component),
		cmocka_unit_test(test_all_carries_component_error),
		cmocka_unit_test(test_deadline),
		cmocka_unit_test(test_interrupted_wait_restarts),
		cmocka_unit_test(test_event_notify_waiters),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
