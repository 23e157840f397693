/* SPDX-License-Identifier: MIT */
/*
 * Description: the allocation fault-injection hook (core/alloc.c): the once mode fails exactly
 * the n-th allocation of the thread; the persistent mode fails the n-th and every later one
 * until disarmed; re-arming resets either; another thread's allocations are not affected.
 */
#include "lib/harness.h"

#include <pthread.h>
#include <stdlib.h>

#include "core/alloc.h"

static int fails(void)
{
	void *p = vmb_malloc(16);
	free(p);
	return p == NULL;
}

static void test_once(void **state)
{
	(void)state;
	assert_int_equal(vmb_alloc_fail_after(3), 0);
	assert_false(fails());
	assert_false(fails());
	assert_true(fails());
	assert_false(fails());
	assert_false(vmb_alloc_failing());
	assert_int_equal(vmb_alloc_fail_after(5), 0);
	assert_false(fails());
	assert_int_equal(vmb_alloc_fail_after(0), 4); /* disarmed with 4 still to go */
	for (int i = 0; i < 10; i++)
		assert_false(fails());
}

static void *other_thread(void *arg)
{
	(void)arg;
	return (void *)(intptr_t)fails();
}

static void test_persistent(void **state)
{
	(void)state;
	assert_int_equal(vmb_alloc_fail_from(2), 0);
	assert_false(fails());
	assert_false(vmb_alloc_failing());
	for (int i = 0; i < 100; i++)
		assert_true(fails());
	assert_true(vmb_alloc_failing());
	assert_null(vmb_calloc(1, 8));
	assert_null(vmb_realloc(NULL, 8));
	assert_true(vmb_map_should_fail());
	pthread_t t;
	void *r;
	assert_int_equal(pthread_create(&t, NULL, other_thread, NULL), 0);
	assert_int_equal(pthread_join(t, &r), 0);
	assert_int_equal((intptr_t)r, 0); /* per thread */
	assert_int_equal(vmb_alloc_fail_after(0), 0);
	assert_false(vmb_alloc_failing());
	assert_false(fails());
	/* fail_from(1): from the very next allocation */
	vmb_alloc_fail_from(1);
	assert_true(fails());
	assert_true(fails());
	vmb_alloc_fail_from(0);
	assert_false(fails());
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_once),
		cmocka_unit_test(test_persistent),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
