/* SPDX-License-Identifier: MIT */
/* Description: the assert-held helper (core/lock.h): each thread's list of the locks it holds
 * and their mode; a lock rule broken (a lock asserted and not held, held in the wrong mode,
 * taken twice, released unheld) aborts in debug builds; another thread's locks are not ours. */
#include "lib/harness.h"

#include <pthread.h>
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

int main(void)
{
	const struct CMUnitTest tests[] = {cmocka_unit_test(test_modes), cmocka_unit_test(test_rules_abort)};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
