/* SPDX-License-Identifier: MIT */
/* Description: handle tables: 0 never valid, reuse (a freed handle comes back only after every
 * other free slot), growth, lookups of stale handles; allocation reads one slot whatever the
 * table's fill (a nearly full table under churn); draining with vmb_handle_pop(): every object
 * once, in handle order, each slot read once. */
#include "lib/harness.h"

#include "core/handle.h"

static void test_basic(void **state)
{
	(void)state;
	struct vmb_handle_table t;
	int objs[100];
	uint32_t h[100];
	vmb_handle_table_init(&t);
	assert_null(vmb_handle_lookup(&t, 0));
	assert_null(vmb_handle_lookup(&t, 1));
	for (int i = 0; i < 100; i++) {
		assert_int_equal(vmb_handle_alloc(&t, &objs[i], &h[i]), 0);
		assert_int_not_equal(h[i], 0);
		assert_ptr_equal(vmb_handle_lookup(&t, h[i]), &objs[i]);
		assert_int_equal(vmb_handle_table_validate(&t), 0);
	}
	assert_ptr_equal(vmb_handle_remove(&t, h[10]), &objs[10]);
	assert_null(vmb_handle_remove(&t, h[10]));
	assert_null(vmb_handle_lookup(&t, h[10]));
	assert_null(vmb_handle_lookup(&t, UINT32_MAX));
	/* the freed handle is not handed out again at once */
	uint32_t n;
	assert_int_equal(vmb_handle_alloc(&t, &objs[10], &n), 0);
	assert_int_not_equal(n, h[10]);
	assert_int_equal(t.count, 100);
	/* iteration sees every live handle once */
	uint32_t seen = 0;
	for (uint32_t x = vmb_handle_next(&t, 0); x; x = vmb_handle_next(&t, x))
		seen++;
	assert_int_equal(seen, 100);
	assert_int_equal(vmb_handle_table_validate(&t), 0);
	vmb_handle_table_fini(&t);
}

static void test_churn(void **state)
{
	(void)state;
	uint64_t seed = test_seed("handle churn");
	struct vmb_handle_table t;
	static int obj;
	uint32_t live[64] = {0};
	vmb_handle_table_init(&t);
	for (int i = 0; i < 100000; i++) {
		unsigned int k = (unsigned int)rnd_below(&seed, 64);
		if (live[k]) {
			assert_ptr_equal(vmb_handle_remove(&t, live[k]), &obj);
			live[k] = 0;
		} else {
			assert_int_equal(vmb_handle_alloc(&t, &obj, &live[k]), 0);
			for (int j = 0; j < 64; j++)
				assert_true(j == (int)k || live[j] != live[k]);
		}
	}
	assert_int_equal(vmb_handle_table_validate(&t), 0);
	assert_true(t.cap <= 128);
	vmb_handle_table_fini(&t);
}

static void test_pop_drains_linearly(void **state)
{
	(void)state;
	enum { N = 5000 };
	static int objs[N];
	struct vmb_handle_table t;
	uint32_t h[N], cursor = 0, seen = 0;
	vmb_handle_table_init(&t);
	for (int i = 0; i < N; i++)
		assert_int_equal(vmb_handle_alloc(&t, &objs[i], &h[i]), 0);
	for (int i = 0; i < N; i += 3) /* holes */
		assert_ptr_equal(vmb_handle_remove(&t, h[i]), &objs[i]);
	unsigned long long before = vmb_handle_scan_steps;
	int *o, last = -1;
	while ((o = vmb_handle_pop(&t, &cursor))) {
		int i = (int)(o - objs);
		assert_true(i > last && i % 3 != 0); /* handle order, live ones only */
		assert_int_equal(cursor, h[i]);
		last = i;
		seen++;
	}
	assert_int_equal(seen, N - (N + 2) / 3);
	assert_int_equal(t.count, 0);
	assert_int_equal(vmb_handle_table_validate(&t), 0);
	/* each slot read once, whatever the order of removals */
	assert_true(vmb_handle_scan_steps - before <= t.cap);
	vmb_handle_table_fini(&t);
}

/* A freed handle is handed out again only after every other free slot: here the 28 fresh slots
 * of the grown table first, then the freed one. */
static void test_reuse_order(void **state)
{
	(void)state;
	static int objs[200];
	struct vmb_handle_table t;
	uint32_t h[200];
	vmb_handle_table_init(&t);
	for (int i = 0; i < 100; i++)
		assert_int_equal(vmb_handle_alloc(&t, &objs[i], &h[i]), 0);
	assert_int_equal(t.cap, 128);
	assert_ptr_equal(vmb_handle_remove(&t, h[10]), &objs[10]);
	for (int i = 100; i < 128; i++) {
		assert_int_equal(vmb_handle_alloc(&t, &objs[i], &h[i]), 0);
		assert_int_not_equal(h[i], h[10]);
		assert_null(vmb_handle_lookup(&t, h[10]));
	}
	uint32_t n;
	assert_int_equal(vmb_handle_alloc(&t, &objs[128], &n), 0);
	assert_int_equal(n, h[10]);
	assert_int_equal(t.cap, 128);
	assert_int_equal(vmb_handle_table_validate(&t), 0);
	/* full again: the next allocation grows the table and takes a fresh slot */
	assert_int_equal(vmb_handle_alloc(&t, &objs[129], &n), 0);
	assert_int_equal(n, 129);
	assert_int_equal(t.cap, 256);
	assert_int_equal(vmb_handle_table_validate(&t), 0);
	vmb_handle_table_fini(&t);
}

/*
 * Issue 16: a nearly full table under create/destroy churn. The cyclic scan read on average half
 * the table per allocation (280 us a syncobj create at 10^6 live handles); each allocation must
 * read one slot, whatever the fill.
 */
static void test_alloc_o1_when_nearly_full(void **state)
{
	(void)state;
	enum { CAP = 1 << 16, ROUNDS = 2000 };
	static int obj;
	uint64_t seed = test_seed("handle nearly full");
	struct vmb_handle_table t;
	uint32_t *h = malloc(CAP * sizeof(*h));
	assert_non_null(h);
	vmb_handle_table_init(&t);
	for (uint32_t i = 0; i < CAP - 1; i++)
		assert_int_equal(vmb_handle_alloc(&t, &obj, &h[i]), 0);
	assert_int_equal(t.cap, CAP);
	uint64_t before = t.probes;
	for (int r = 0; r < ROUNDS; r++) {
		uint32_t k = (uint32_t)rnd_below(&seed, CAP - 1);
		assert_ptr_equal(vmb_handle_remove(&t, h[k]), &obj);
		assert_int_equal(vmb_handle_alloc(&t, &obj, &h[k]), 0);
		assert_ptr_equal(vmb_handle_lookup(&t, h[k]), &obj);
	}
	assert_int_equal(t.cap, CAP);
	assert_int_equal(t.count, CAP - 1);
	uint64_t probes = t.probes - before;
	if (probes > ROUNDS)
		print_message("%llu slots read by %d allocations\n", (unsigned long long)probes, ROUNDS);
	assert_true(probes <= ROUNDS);
	assert_int_equal(vmb_handle_table_validate(&t), 0);
	vmb_handle_table_fini(&t);
	free(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {cmocka_unit_test(test_basic), cmocka_unit_test(test_churn),
					   cmocka_unit_test(test_pop_drains_linearly), cmocka_unit_test(test_reuse_order),
					   cmocka_unit_test(test_alloc_o1_when_nearly_full)};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
