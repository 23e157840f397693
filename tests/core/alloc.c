/* SPDX-License-Identifier: MIT */
/*
 * Description: the allocation fault-injection hook (core/alloc.c): the once mode fails exactly
 * the n-th allocation of the thread; the persistent mode fails the n-th and every later one
 * until disarmed; re-arming resets either; another thread's allocations are not affected; the
 * classes of vmb_fault_arm() (host allocations and mappings apart or together, threads,
 * page-table pages, commits) count on their own, and every site is recorded and its hits counted.
 */
#include "lib/harness.h"

#include <pthread.h>
#include <stdatomic.h>
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

/* vmb_fault_arm (the public call's engine): one countdown per class group, a mask within the
 * host group, what an arming injected, and the sites recorded with their hits. */
static void test_classes_and_sites(void **state)
{
	(void)state;
	unsigned long injected = 99;
	/* HOST_MAP only: allocations do not count, mappings do */
	vmb_fault_arm(1u << VMB_SITE_HOST_MAP, 2, false, 0, NULL);
	assert_false(fails());
	assert_false(vmb_map_should_fail());
	assert_false(fails());
	assert_true(vmb_map_should_fail());
	assert_false(vmb_map_should_fail());
	assert_int_equal(vmb_fault_arm(1u << VMB_SITE_HOST_MAP, 0, false, 0, &injected), 0);
	assert_int_equal(injected, 1);
	/* threads and page-table pages: their own countdowns, host untouched */
	vmb_fault_arm(1u << VMB_SITE_THREAD, 1, true, 0, NULL);
	vmb_fault_arm(1u << VMB_SITE_PT_PAGE, 2, false, 0, NULL);
	assert_false(fails());
	assert_false(vmb_pt_page_should_fail());
	assert_true(vmb_pt_page_should_fail());
	assert_false(vmb_pt_page_should_fail());
	pthread_t t;
	assert_int_equal(vmb_thread_create(&t, other_thread, NULL), EAGAIN);
	assert_int_equal(vmb_thread_create(&t, other_thread, NULL), EAGAIN); /* persistent */
	assert_int_equal(vmb_fault_arm(1u << VMB_SITE_THREAD, 0, false, 0, &injected), 0);
	assert_int_equal(injected, 2);
	assert_int_equal(vmb_thread_create(&t, other_thread, NULL), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
	/* commits: process-wide, persistent from the 2nd */
	vmb_fault_arm(1u << VMB_SITE_COMMIT, 2, true, -EIO, NULL);
	assert_int_equal(vmb_commit_should_fail(), 0);
	assert_int_equal(vmb_commit_should_fail(), -EIO);
	assert_int_equal(vmb_commit_should_fail(), -EIO);
	assert_int_equal(vmb_fault_arm(1u << VMB_SITE_COMMIT, 0, false, 0, &injected), 0);
	assert_int_equal(injected, 2);
	assert_int_equal(vmb_commit_should_fail(), 0);
	/* every call above is a site of this program, each reached */
	unsigned n = 0, reached = 0;
	for (struct vmb_alloc_site *s = vmb_sites_begin(); s < vmb_sites_end(); s++, n++)
		reached += atomic_load(&s->hits) != 0;
	assert_true(n >= 9);
	assert_true(reached >= 8);
}

/* vmb_hugebump: 16-byte aligned blocks carved in order from 2 MiB-aligned chunks (the chain
 * word first), a new chunk when one is used up, a site the host countdown fails, fini unmaps. */
static void test_hugebump(void **state)
{
	const uintptr_t chunk = VMB_HUGEBUMP_CHUNK;
	struct vmb_hugebump b;
	char *p, *q, *first;
	size_t i, per;

	(void)state;
	vmb_hugebump_init(&b);
	first = p = vmb_hugebump_alloc(&b, 1040);
	assert_non_null(p);
	assert_int_equal(b.bytes, chunk);
	assert_int_equal((uintptr_t)p % 16, 0);
	assert_true((uintptr_t)p % chunk >= 64); /* after the chain word */
	q = vmb_hugebump_alloc(&b, 1033); /* rounded up to 1040 */
	assert_ptr_equal(q, p + 1040);
	p = vmb_hugebump_alloc(&b, 8);
	assert_ptr_equal(p, q + 1040);
	assert_null(vmb_hugebump_alloc(&b, VMB_HUGEBUMP_MAX + 1));

	/* fill the chunk with blocks of 4 KiB, then one more opens a second chunk */
	per = (size_t)((chunk - ((uintptr_t)p % chunk) - 16) / 4096);
	for (i = 0; i < per; i++) {
		q = vmb_hugebump_alloc(&b, 4096);
		assert_non_null(q);
		assert_int_equal((uintptr_t)q / chunk, (uintptr_t)first / chunk);
		memset(q, 0xa5, 4096); /* memory we may write */
	}
	assert_int_equal(b.bytes, chunk);
	q = vmb_hugebump_alloc(&b, 4096);
	assert_non_null(q);
	assert_int_equal(b.bytes, 2 * chunk);
	assert_int_not_equal((uintptr_t)q / chunk, (uintptr_t)first / chunk);
	assert_int_equal((uintptr_t)q % chunk, 64);
	memset(q, 0x5a, 4096);

	/* the next allocation fails when the host countdown says so, and nothing is mapped */
	vmb_alloc_fail_after(1);
	assert_null(vmb_hugebump_alloc(&b, 64));
	assert_int_equal(b.bytes, 2 * chunk);
	assert_ptr_equal(vmb_hugebump_alloc(&b, 64), q + 4096);
	vmb_alloc_fail_after(0);

	vmb_hugebump_fini(&b);
	assert_int_equal(b.bytes, 0);
	assert_null(b.chunks);
	assert_null(b.cur);
}

/* vmb_malloc_aligned_at: the alignment asked for, a site the host countdown fails, free()d. */
static void test_malloc_aligned(void **state)
{
	struct vmb_alloc_site *site = VMB_SITE(VMB_SITE_HOST_ALLOC);
	void *p[8];

	(void)state;
	for (unsigned int i = 0; i < 8; i++) {
		p[i] = vmb_malloc_aligned_at(site, 64, 1024);
		assert_non_null(p[i]);
		assert_int_equal((uintptr_t)p[i] % 64, 0);
		memset(p[i], 0xa5, 1024);
	}
	vmb_alloc_fail_after(1);
	assert_null(vmb_malloc_aligned_at(site, 64, 1024));
	vmb_alloc_fail_after(0);
	for (unsigned int i = 0; i < 8; i++)
		free(p[i]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_once),
		cmocka_unit_test(test_persistent),
		cmocka_unit_test(test_classes_and_sites),
		cmocka_unit_test(test_hugebump),
		cmocka_unit_test(test_malloc_aligned),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
