/* SPDX-License-Identifier: MIT */
/*
 * Description: SYSTEM page allocator: runs cover exactly the pages asked, one run on a fresh
 * region, many under fragmentation, -ENOSPC takes nothing, randomized against a page map.
 */
#include "lib/harness.h"

#include <errno.h>

#include "mem/pages.h"

static void test_basic(void **state)
{
	(void)state;
	struct vmb_pages p;
	struct vmb_page_run *r;
	assert_int_equal(vmb_pages_init(&p, 0), -EINVAL);
	assert_int_equal(vmb_pages_init(&p, 4097), -EINVAL);
	assert_int_equal(vmb_pages_init(&p, 1000 * 4096), 0);
	assert_int_equal(vmb_pages_alloc(&p, 0, &r), -EINVAL);
	assert_int_equal(vmb_pages_alloc(&p, 1001, &r), -ENOSPC);
	assert_int_equal(p.free_pages, 1000);
	assert_int_equal(vmb_pages_alloc(&p, 300, &r), 1); /* fresh: one run */
	assert_int_equal(r[0].count, 300);
	assert_int_equal(vmb_pages_validate(&p), 0);
	/* fragment: free every other page of the first run */
	struct vmb_page_run one;
	for (uint64_t i = 0; i < 300; i += 2) {
		one = (struct vmb_page_run){.first = r[0].first + i, .count = 1};
		vmb_pages_free(&p, &one, 1);
	}
	free(r);
	/* 700 free at the end + 150 singles: asking 850 takes everything, in many runs */
	int n = vmb_pages_alloc(&p, 850, &r);
	assert_true(n > 100);
	uint64_t total = 0;
	for (int i = 0; i < n; i++)
		total += r[i].count;
	assert_int_equal(total, 850);
	assert_int_equal(p.free_pages, 0);
	assert_int_equal(vmb_pages_validate(&p), 0);
	vmb_pages_free(&p, r, (unsigned int)n);
	free(r);
	assert_int_equal(p.free_pages, 850); /* the 150 odd pages stay taken */
	assert_int_equal(vmb_pages_validate(&p), 0);
	vmb_pages_fini(&p);
}

static void test_random(void **state)
{
	(void)state;
	uint64_t seed = test_seed("pages random"), s = seed;
	const uint64_t npages = 4096 + 37;
	struct vmb_pages p;
	uint8_t *map = calloc(npages, 1);
	struct { struct vmb_page_run *r; int n; } live[64] = {{0}};
	assert_int_equal(vmb_pages_init(&p, npages * 4096), 0);
	for (int step = 0; step < 5000; step++) {
		unsigned int k = (unsigned int)rnd_below(&s, 64);
		if (live[k].r) {
			for (int i = 0; i < live[k].n; i++)
				for (uint64_t q = live[k].r[i].first; q < live[k].r[i].first + live[k].r[i].count; q++)
					map[q] = 0;
			vmb_pages_free(&p, live[k].r, (unsigned int)live[k].n);
			free(live[k].r);
			live[k].r = NULL;
		} else {
			uint64_t want = 1 + rnd_below(&s, 200), before = p.free_pages;
			int n = vmb_pages_alloc(&p, want, &live[k].r);
			if (n < 0) {
				assert_int_equal(n, -ENOSPC);
				assert_true(want > before);
				assert_int_equal(p.free_pages, before);
				live[k].r = NULL;
				continue;
			}
			uint64_t total = 0;
			for (int i = 0; i < n; i++) {
				total += live[k].r[i].count;
				for (uint64_t q = live[k].r[i].first; q < live[k].r[i].first + live[k].r[i].count; q++) {
					assert_true(q < npages);
					assert_int_equal(map[q], 0);
					map[q] = 1;
				}
			}
			assert_int_equal(total, want);
			live[k].n = n;
		}
		assert_int_equal(vmb_pages_validate(&p), 0);
	}
	for (int k = 0; k < 64; k++)
		if (live[k].r) {
			vmb_pages_free(&p, live[k].r, (unsigned int)live[k].n);
			free(live[k].r);
		}
	assert_int_equal(p.free_pages, npages);
	vmb_pages_fini(&p);
	free(map);
}

int main(void)
{
	const struct CMUnitTest tests[] = {cmocka_unit_test(test_basic), cmocka_unit_test(test_random)};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
