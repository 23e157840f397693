/* SPDX-License-Identifier: MIT */
/* Description: the assert-held helper (core/lock.h): each thread's list of the locks it holds
 * and their mode; a lock rule broken (a lock asserted and not held, held in the wrong mode,
 * taken twice, released unheld) aborts in debug builds; another thread's locks are not ours.
 * The reader-slot rwlock (struct vmb_rwlock): exclusion under a mix of readers and writers,
 * writers first, its count of blocked threads; thread ids. Flat combining on a vmb_mutex
 * (struct vmb_combine): a waiter's request run by the holder (awake or asleep meanwhile), taken
 * back by a waiter that gets the mutex, run while the waiter blocks on the mutex; many threads
 * counting through it. */
#include "lib/harness.h"

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/lock.h"

#ifndef NDEBUG
static int a, b;


static void held_not_taken(void) { vmb_lock_assert_held(&a); }
static void excl_taken_shared(void)
{
	vmb_lock_note(&a, VMB_LOCK_SHARED);
	vmb_lock_assert_excl(&a);
}
static void taken_twice(void)
{
	vmb_lock_note(&a, VMB_LOCK_SHARED);
	vmb_lock_note(&a, VMB_LOCK_SHARED);
}
static void released_unheld(void) { vmb_lock_unnote(&b); }
static void not_held_but_is(void)
{
	vmb_lock_note(&b, VMB_LOCK_EXCL);
	vmb_lock_assert_not_held(&b);
}

static void test_rules_abort(void **state)
{
	(void)state;
	assert_true(child_aborts(held_not_taken));
	assert_true(child_aborts(excl_taken_shared));
	assert_true(child_aborts(taken_twice));
	assert_true(child_aborts(released_unheld));
	assert_true(child_aborts(not_held_but_is));
}

static void *other_thread(void *arg)
{
	(void)arg;
	/* the main thread holds a: not this one */
	if (vmb_lock_mode(&a) != VMB_LOCK_NONE)
		return (void *)1;
	vmb_lock_note(&a, VMB_LOCK_SHARED);
	enum vmb_lock_mode m = vmb_lock_mode(&a);
	vmb_lock_unnote(&a);
	return m == VMB_LOCK_SHARED ? NULL : (void *)1;
}

static void test_modes(void **state)
{
	(void)state;
	assert_int_equal(vmb_lock_mode(&a), VMB_LOCK_NONE);
	vmb_lock_note(&a, VMB_LOCK_EXCL);
	vmb_lock_note(&b, VMB_LOCK_SHARED);
	assert_int_equal(vmb_lock_mode(&a), VMB_LOCK_EXCL);
	assert_int_equal(vmb_lock_mode(&b), VMB_LOCK_SHARED);
	vmb_lock_assert_held(&a);
	vmb_lock_assert_excl(&a);
	vmb_lock_assert_held(&b);
	pthread_t t;
	void *r;
	assert_int_equal(pthread_create(&t, NULL, other_thread, NULL), 0);
	assert_int_equal(pthread_join(t, &r), 0);
	assert_null(r);
	/* released out of order */
	vmb_lock_unnote(&a);
	assert_int_equal(vmb_lock_mode(&a), VMB_LOCK_NONE);
	assert_int_equal(vmb_lock_mode(&b), VMB_LOCK_SHARED);
	vmb_lock_unnote(&b);
	vmb_lock_assert_not_held(&b);
}

#else
/* release builds keep no list and check nothing */
static void test_modes(void **state)
{
	(void)state;
	skip();
}
static void test_rules_abort(void **state)
{
	(void)state;
	skip();
}
#endif

/* ---- the reader-slot rwlock (struct vmb_rwlock) ---- */

#define RW_THREADS 6
#define RW_ITERS 20000

static struct vmb_rwlock rw;
static atomic_uint rw_waiters;
static uint64_t rw_x, rw_y; /* plain: written under the lock exclusive, read under it shared */
static atomic_int rw_readers, rw_writers, rw_bad;

static void *rw_worker(void *arg)
{
	unsigned int t = (unsigned int)(uintptr_t)arg;
	for (unsigned int i = 0; i < RW_ITERS; i++) {
		if ((i + t) % 16 == 0) { /* a writer now and then, the rest readers */
			vmb_rwlock_wrlock(&rw, &rw_waiters);
			if (atomic_fetch_add(&rw_writers, 1) || atomic_load(&rw_readers))
				atomic_fetch_add(&rw_bad, 1);
			rw_x++;
			rw_y++;
			atomic_fetch_sub(&rw_writers, 1);
			vmb_rwlock_unlock(&rw);
		} else {
			vmb_rwlock_rdlock(&rw, &rw_waiters);
			atomic_fetch_add(&rw_readers, 1);
			if (atomic_load(&rw_writers) || rw_x != rw_y)
				atomic_fetch_add(&rw_bad, 1);
			atomic_fetch_sub(&rw_readers, 1);
			vmb_rwlock_unlock(&rw);
		}
	}
	return NULL;
}

/* Readers together, a writer alone, whatever the interleaving; every writer's update seen. */
static void test_rwlock_exclusion(void **state)
{
	(void)state;
	pthread_t th[RW_THREADS];
	vmb_rwlock_init(&rw);
	for (uintptr_t t = 0; t < RW_THREADS; t++)
		assert_int_equal(pthread_create(&th[t], NULL, rw_worker, (void *)t), 0);
	for (unsigned int t = 0; t < RW_THREADS; t++)
		assert_int_equal(pthread_join(th[t], NULL), 0);
	assert_int_equal(atomic_load(&rw_bad), 0);
	assert_true(rw_x == rw_y);
	assert_true(rw_x == RW_THREADS * RW_ITERS / 16);
	assert_int_equal(atomic_load(&rw_waiters), 0);
	vmb_rwlock_fini(&rw);
}

static atomic_int order_seq, writer_at, reader_at;

static void *order_writer(void *arg)
{
	(void)arg;
	vmb_rwlock_wrlock(&rw, &rw_waiters);
	atomic_store(&writer_at, atomic_fetch_add(&order_seq, 1) + 1);
	vmb_rwlock_unlock(&rw);
	return NULL;
}

static void *order_reader(void *arg)
{
	(void)arg;
	vmb_rwlock_rdlock(&rw, &rw_waiters);
	atomic_store(&reader_at, atomic_fetch_add(&order_seq, 1) + 1);
	vmb_rwlock_unlock(&rw);
	return NULL;
}

/* Polls @cond for up to 10 s (a hang detector, not a timing). */
static bool eventually(bool (*cond)(void))
{
	for (int i = 0; i < 10000 && !cond(); i++)
		usleep(1000);
	return cond();
}
static bool writer_announced(void) { return atomic_load(&rw.writer) != 0 && atomic_load(&rw_waiters) == 1; }
static bool both_wait(void) { return atomic_load(&rw_waiters) == 2; }

/* Writers first: while a writer waits for a reader to leave, a new reader waits too, and gets
 * the lock after the writer; each blocked thread is counted in the waiters meanwhile. */
static void test_rwlock_writer_first(void **state)
{
	(void)state;
	pthread_t w, r;
	vmb_rwlock_init(&rw);
	atomic_store(&order_seq, 0);
	vmb_rwlock_rdlock(&rw, &rw_waiters);
	assert_int_equal(pthread_create(&w, NULL, order_writer, NULL), 0);
	assert_true(eventually(writer_announced)); /* set `writer`, asleep on this reader */
	assert_int_equal(pthread_create(&r, NULL, order_reader, NULL), 0);
	assert_true(eventually(both_wait));
	assert_int_equal(atomic_load(&writer_at), 0);
	assert_int_equal(atomic_load(&reader_at), 0);
	vmb_rwlock_unlock(&rw);
	assert_int_equal(pthread_join(w, NULL), 0);
	assert_int_equal(pthread_join(r, NULL), 0);
	assert_int_equal(atomic_load(&writer_at), 1);
	assert_int_equal(atomic_load(&reader_at), 2);
	assert_int_equal(atomic_load(&rw_waiters), 0);
	assert_int_equal(atomic_load(&rw.writer), 0);
	vmb_rwlock_fini(&rw);
}

/* Thread ids: nonzero, fixed per thread, different between threads. */
static void *id_of(void *arg)
{
	*(unsigned int *)arg = vmb_thread_id();
	return vmb_thread_id() == *(unsigned int *)arg ? NULL : (void *)1;
}

static void test_thread_ids(void **state)
{
	(void)state;
	unsigned int ids[2];
	pthread_t t[2];
	void *r;
	for (int i = 0; i < 2; i++) {
		assert_int_equal(pthread_create(&t[i], NULL, id_of, &ids[i]), 0);
		assert_int_equal(pthread_join(t[i], &r), 0);
		assert_null(r);
		assert_true(ids[i] != 0 && ids[i] != vmb_thread_id());
	}
	assert_true(ids[0] != ids[1]);
	/* threads created one after the other: different slots */
	assert_true(ids[0] % VMB_RWLOCK_SLOTS != ids[1] % VMB_RWLOCK_SLOTS);
}

/* ---- flat combining ---- */

static struct vmb_mutex cm;
static struct vmb_combine cb;

struct creq {
	struct vmb_combine_req req;
	int in, out;
	atomic_int outcome; /* 0 until vmb_combine_wait returned, then its value + 1 */
};

static void *creq_wait(void *arg)
{
	struct creq *r = arg;
	enum vmb_combine_wait w = vmb_combine_wait(&cb, &cm, &r->req);
	if (w != VMB_COMBINE_RAN) {
		if (w == VMB_COMBINE_OWN)
			r->out = -r->in; /* its own work, under the mutex */
		vmb_mutex_unlock(&cm);
	}
	atomic_store(&r->outcome, (int)w + 1);
	return NULL;
}

static bool queued_one(void) { return vmb_combine_pending(&cb); }
static bool blocked_on_mutex(void) { return vmb_mutex_waiters(&cm) == 1; }

/* The holder takes @r, runs it (out = 2 * in) after @delay_us, and marks it done. */
static void run_taken(struct creq *r, unsigned int delay_us)
{
	assert_ptr_equal(vmb_combine_next(&cb, true), &r->req);
	assert_null(vmb_combine_next(&cb, true));
	if (delay_us) {
		usleep(delay_us);
		assert_int_equal(atomic_load(&r->outcome), 0); /* claimed: the waiter waits */
	}
	r->out = 2 * r->in;
	/* a waiter asleep (the long delay, unless it had blocked on the mutex before the take) is
	 * seen or counted: the holder wakes it only then, as vm/job.c does (else it sleeps on) */
	bool seen = vmb_combine_done(&r->req);
	bool more = vmb_combine_sleepers(&cb, seen); /* once, whatever seen: it uncounts the seen */
	if (seen || more)
		vmb_combine_wake(&r->req.state);
}

static void combine_setup(void)
{
	vmb_mutex_init(&cm);
	vmb_combine_init(&cb);
}

static void combine_teardown(void)
{
	assert_false(vmb_combine_pending(&cb));
	vmb_combine_fini(&cb);
	vmb_mutex_fini(&cm);
}

/* Queued while the mutex is held: the holder runs it. The holder takes it at once here, so the
 * waiter, still spinning, gets its result without the mutex (then, with the holder taking its
 * time, past its spin budget, asleep until the holder wakes it); on a loaded machine the waiter
 * may have spent its budget before the take and blocked on the mutex: it then gets the mutex
 * with its request done. */
static void test_combine_ran(void **state)
{
	(void)state;
	for (unsigned int delay = 0; delay <= 50000; delay += 50000) {
		struct creq r = {.in = 21};
		pthread_t t;
		combine_setup();
		vmb_mutex_lock(&cm);
		assert_int_equal(pthread_create(&t, NULL, creq_wait, &r), 0);
		for (int i = 0; i < 10000000 && !queued_one(); i++)
			sched_yield();
		assert_true(eventually(queued_one));
		run_taken(&r, delay);
		vmb_mutex_unlock(&cm);
		assert_int_equal(pthread_join(t, NULL), 0);
		int got = atomic_load(&r.outcome) - 1;
		assert_true(got == VMB_COMBINE_RAN || got == VMB_COMBINE_RAN_LOCKED);
		assert_int_equal(r.out, 42);
		combine_teardown();
	}
}

/* Queued, then the holder releases without running it: the waiter gets the mutex, takes its
 * request back out of the queue and does its work itself. */
static void test_combine_own(void **state)
{
	(void)state;
	struct creq r = {.in = 5};
	pthread_t t;
	combine_setup();
	vmb_mutex_lock(&cm);
	assert_int_equal(pthread_create(&t, NULL, creq_wait, &r), 0);
	assert_true(eventually(queued_one));
	vmb_mutex_unlock(&cm);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(atomic_load(&r.outcome), VMB_COMBINE_OWN + 1);
	assert_int_equal(r.out, -5);
	combine_teardown();
}

/* Past its spin budget the waiter blocks on the mutex; the holder runs its request meanwhile:
 * the waiter gets the mutex with its request done (it then releases it). */
static void test_combine_ran_locked(void **state)
{
	(void)state;
	struct creq r = {.in = 4};
	pthread_t t;
	combine_setup();
	vmb_mutex_lock(&cm);
	assert_int_equal(pthread_create(&t, NULL, creq_wait, &r), 0);
	assert_true(eventually(blocked_on_mutex));
	run_taken(&r, 0);
	vmb_mutex_unlock(&cm);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(atomic_load(&r.outcome), VMB_COMBINE_RAN_LOCKED + 1);
	assert_int_equal(r.out, 8);
	combine_teardown();
}

/* The holder takes what is queued as one snapshot, handed out newest first, and runs all of it
 * before releasing; with `more` false it takes no new snapshot but hands out the rest of the
 * current one. A request pushed after a snapshot waits for the next. */
#define ORDER_N 4
static struct creq order_r[ORDER_N + 1];
static unsigned int order_pushed;
static bool order_on_head(void)
{
	return atomic_load(&cb.head) == &order_r[order_pushed].req;
}

static void test_combine_order(void **state)
{
	(void)state;
	pthread_t t[ORDER_N + 1];
	combine_setup();
	vmb_mutex_lock(&cm);
	for (order_pushed = 0; order_pushed < ORDER_N; order_pushed++) {
		order_r[order_pushed] = (struct creq){.in = (int)order_pushed + 1};
		assert_int_equal(pthread_create(&t[order_pushed], NULL, creq_wait, &order_r[order_pushed]), 0);
		assert_true(eventually(order_on_head)); /* pushed, in this order */
	}
	struct vmb_combine_req *first = vmb_combine_next(&cb, true); /* the snapshot of all four */
	assert_ptr_equal(first, &order_r[ORDER_N - 1].req);
	/* one more pushed now: not in the snapshot */
	order_r[ORDER_N] = (struct creq){.in = ORDER_N + 1};
	assert_int_equal(pthread_create(&t[ORDER_N], NULL, creq_wait, &order_r[ORDER_N]), 0);
	assert_true(eventually(order_on_head));
	for (int i = ORDER_N - 1; i >= 0; i--) {
		/* newest first; the rest of the snapshot comes even without `more` */
		struct vmb_combine_req *r = i == ORDER_N - 1 ? first : vmb_combine_next(&cb, false);
		assert_ptr_equal(r, &order_r[i].req);
		order_r[i].out = 2 * order_r[i].in;
		(void)vmb_combine_done(r);
		vmb_combine_wake(&r->state); /* asleep or not: harmless */
	}
	assert_null(vmb_combine_next(&cb, false)); /* the snapshot is over; the fifth waits */
	assert_true(vmb_combine_pending(&cb));
	/* released without running it: its waiter gets the mutex and does its work itself */
	vmb_mutex_unlock(&cm);
	for (unsigned int i = 0; i <= ORDER_N; i++) {
		assert_int_equal(pthread_join(t[i], NULL), 0);
		int w = atomic_load(&order_r[i].outcome) - 1;
		if (i < ORDER_N) {
			assert_true(w == VMB_COMBINE_RAN || w == VMB_COMBINE_RAN_LOCKED);
			assert_int_equal(order_r[i].out, 2 * order_r[i].in);
		} else {
			assert_int_equal(w, VMB_COMBINE_OWN);
			assert_int_equal(order_r[i].out, -order_r[i].in);
		}
	}
	combine_teardown();
}

/* Waiters that get the mutex with their requests still queued each take their own out of the
 * stack (at its top or below it, in whatever order they get the mutex) and leave the others
 * queued: every one does its own work, none is lost or run twice. */
static void test_combine_own_from_stack(void **state)
{
	(void)state;
	for (int round = 0; round < 20; round++) {
		pthread_t t[ORDER_N];
		combine_setup();
		vmb_mutex_lock(&cm);
		for (order_pushed = 0; order_pushed < ORDER_N; order_pushed++) {
			order_r[order_pushed] = (struct creq){.in = (int)order_pushed + 1};
			assert_int_equal(pthread_create(&t[order_pushed], NULL, creq_wait, &order_r[order_pushed]), 0);
			assert_true(eventually(order_on_head));
		}
		vmb_mutex_unlock(&cm); /* no snapshot taken: each waiter gets the mutex in turn */
		for (unsigned int i = 0; i < ORDER_N; i++) {
			assert_int_equal(pthread_join(t[i], NULL), 0);
			assert_int_equal(atomic_load(&order_r[i].outcome) - 1, VMB_COMBINE_OWN);
			assert_int_equal(order_r[i].out, -order_r[i].in);
		}
		combine_teardown();
	}
}

static void on_usr1(int sig) { (void)sig; }

static struct creq *early_a;
/* A's waiter asleep on its request (claimed), or blocked on the mutex (it looked at `epoch`
 * only after the take, and took itself for unclaimed: then it gets the mutex, its request done) */
static bool a_settled(void)
{
	return atomic_load(&early_a->req.state) == (VMB_COMBINE_QUEUED | VMB_COMBINE_SLEEPING) ||
	       vmb_mutex_waiters(&cm) == 1;
}
static bool a_returned(void) { return atomic_load(&early_a->outcome) != 0; }

/*
 * Two requests of one hold: A's waiter asleep, seen so (vmb_combine_done true), wakes as soon as
 * its request is DONE, before the holder's look at the count (a signal here; or a wake of its
 * address left over from an earlier hold, its stack reused); B's waiter went to sleep unseen: its
 * compare-and-swap of SLEEPING landed between the holder's load of its state and the DONE store
 * (a window as long as the holder is preempted there), so it sleeps until woken. Emulated here
 * as that leaves them: B counted in `sleepers`, its state DONE, vmb_combine_done false. The
 * holder's look must say "more asleep than seen", or nobody ever wakes B: its call never
 * returns. (Before: A took itself out of the count as it left, the count said 1 for 1 seen.)
 */
static void test_combine_seen_waiter_leaves_early(void **state)
{
	(void)state;
	struct sigaction sa = {.sa_handler = on_usr1}, old; /* no SA_RESTART: the futex wait ends */
	sigemptyset(&sa.sa_mask);
	assert_int_equal(sigaction(SIGUSR1, &sa, &old), 0);
	bool tested = false;
	for (int attempt = 0; attempt < 200 && !tested; attempt++) {
		struct creq ra = {.in = 1};
		struct vmb_combine_req rb;
		pthread_t t;
		early_a = &ra;
		combine_setup();
		vmb_mutex_lock(&cm);
		assert_int_equal(pthread_create(&t, NULL, creq_wait, &ra), 0);
		for (int i = 0; i < 10000000 && !queued_one(); i++)
			sched_yield();
		assert_ptr_equal(vmb_combine_next(&cb, true), &ra.req); /* claimed: it will sleep */
		assert_null(vmb_combine_next(&cb, true));
		assert_true(eventually(a_settled));
		if (atomic_load(&ra.req.state) == VMB_COMBINE_QUEUED) { /* blocked on the mutex: again */
			assert_false(vmb_combine_done(&ra.req));
			assert_false(vmb_combine_sleepers(&cb, 0));
			vmb_mutex_unlock(&cm);
			assert_int_equal(pthread_join(t, NULL), 0);
			combine_teardown();
			continue;
		}
		/* B: counted, then its SLEEPING overwritten by the DONE store of a holder that saw
		 * QUEUED */
		atomic_init(&rb.state, VMB_COMBINE_QUEUED);
		atomic_fetch_add(&cb.sleepers, 1);
		assert_false(vmb_combine_done(&rb));
		ra.out = 2;
		assert_true(vmb_combine_done(&ra.req));
		/* A wakes at once (EINTR) and leaves with its result */
		pthread_kill(t, SIGUSR1);
		assert_true(eventually(a_returned));
		assert_int_equal(atomic_load(&ra.outcome) - 1, VMB_COMBINE_RAN);
		assert_true(vmb_combine_sleepers(&cb, 1)); /* B is asleep: wake every request of the hold */
		vmb_mutex_unlock(&cm);
		assert_int_equal(atomic_load(&ra.req.state), VMB_COMBINE_DONE | VMB_COMBINE_SEEN);
		/* B, woken, finds its request DONE and leaves, taking itself out of the count (not seen) */
		assert_int_equal(atomic_load(&rb.state), VMB_COMBINE_DONE);
		atomic_fetch_sub(&cb.sleepers, 1);
		assert_int_equal(atomic_load(&cb.sleepers), 0);
		assert_int_equal(pthread_join(t, NULL), 0);
		combine_teardown();
		tested = true;
	}
	assert_true(tested);
	assert_int_equal(sigaction(SIGUSR1, &old, NULL), 0);
}

#define C_THREADS 6
#define C_ITERS 20000

static uint64_t c_count; /* plain: only ever written under cm, by whichever thread holds it */
static atomic_uint c_ran_by_other;

/* The holder's part: run what is queued (add each request's `in`), release, and again while
 * requests came in as it released and the mutex can be retaken at once. */
static void c_release(void)
{
	for (int round = 0;; round++) {
		struct vmb_combine_req *got;
		_Atomic uint32_t *wake[64];
		unsigned int nrun = 0, nwake = 0, seen = 0;
		while ((got = vmb_combine_next(&cb, nrun < 32))) {
			struct creq *r = vmb_container_of(got, struct creq, req);
			_Atomic uint32_t *state = &got->state;
			c_count += (uint64_t)r->in;
			r->out = 1;
			nrun++;
			seen += vmb_combine_done(got); /* every one woken below (harmless) if any sleeps */
			if (nwake < 64)
				wake[nwake++] = state;
			else
				vmb_combine_wake(state);
		}
		if (!vmb_combine_sleepers(&cb, seen) && !seen)
			nwake = 0;
		vmb_mutex_unlock(&cm);
		for (unsigned int i = 0; i < nwake; i++)
			vmb_combine_wake(wake[i]);
		if (round == 2 || !vmb_combine_pending(&cb) || !vmb_mutex_trylock(&cm))
			return;
	}
}

static void *c_worker(void *arg)
{
	(void)arg;
	for (unsigned int i = 0; i < C_ITERS; i++) {
		struct creq r = {.in = 1};
		if (!vmb_mutex_trylock(&cm)) {
			enum vmb_combine_wait w = vmb_combine_wait(&cb, &cm, &r.req);
			if (w != VMB_COMBINE_OWN) {
				if (r.out != 1)
					return (void *)1;
				atomic_fetch_add(&c_ran_by_other, 1);
				if (w == VMB_COMBINE_RAN_LOCKED)
					c_release();
				continue;
			}
		}
		c_count++; /* its own, under the mutex */
		c_release();
	}
	return NULL;
}

/* Many threads add 1 each, C_ITERS times, by the mutex or by its holder: every add counted
 * once, none outside the mutex (ThreadSanitizer checks the plain counter). */
static void test_combine_count(void **state)
{
	(void)state;
	pthread_t th[C_THREADS];
	void *ret;
	combine_setup();
	c_count = 0;
	for (int t = 0; t < C_THREADS; t++)
		assert_int_equal(pthread_create(&th[t], NULL, c_worker, NULL), 0);
	for (int t = 0; t < C_THREADS; t++) {
		assert_int_equal(pthread_join(th[t], &ret), 0);
		assert_null(ret);
	}
	assert_true(c_count == (uint64_t)C_THREADS * C_ITERS);
	print_message("combined: %u of %u adds run by another thread\n", atomic_load(&c_ran_by_other),
		      C_THREADS * C_ITERS);
	combine_teardown();
}

int main(void)
{
	const struct CMUnitTest tests[] = {cmocka_unit_test(test_modes), cmocka_unit_test(test_rules_abort),
					   cmocka_unit_test(test_rwlock_exclusion),
					   cmocka_unit_test(test_rwlock_writer_first),
					   cmocka_unit_test(test_thread_ids),
					   cmocka_unit_test(test_combine_ran),
					   cmocka_unit_test(test_combine_own),
					   cmocka_unit_test(test_combine_ran_locked),
					   cmocka_unit_test(test_combine_order),
					   cmocka_unit_test(test_combine_own_from_stack),
					   cmocka_unit_test(test_combine_seen_waiter_leaves_early),
					   cmocka_unit_test(test_combine_count)};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
