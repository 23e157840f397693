/* SPDX-License-Identifier: MIT */
/*
 * Description: SYSTEM page allocator: argument checks, runs that cover exactly the pages asked
 * without overlap, one run on a fresh region (also for 1 GiB), next-fit from the rotating hint
 * with one wrap, many runs under fragmentation (every other page taken), -ENOSPC and -ENOMEM
 * taking nothing, double-free detection by validate's accounting, and a randomized run against a
 * per-page model (seed printed, VMB_SEED replays) with validate after every operation.
 */
#include "lib/harness.h"

#include <errno.h>

#include "core/alloc.h"
#include "dev/soft/pages.h"

#define PG 4096ull

/* Check @runs cover @count pages of the space, none already in @map (then marked in it). */
static void check_runs(const struct vmb_page_run *runs, int n, uint64_t count, uint8_t *map, uint64_t npages)
{
	uint64_t total = 0;

	assert_true(n > 0);
	for (int i = 0; i < n; i++) {
		assert_true(runs[i].count > 0);
		assert_true(runs[i].first < npages);
		assert_true(runs[i].count <= npages - runs[i].first);
		for (uint64_t q = runs[i].first; q < runs[i].first + runs[i].count; q++) {
			assert_int_equal(map[q], 0);
			map[q] = 1;
		}
		total += runs[i].count;
	}
	assert_int_equal(total, count);
}

static void unmark(const struct vmb_page_run *runs, int n, uint8_t *map)
{
	for (int i = 0; i < n; i++)
		for (uint64_t q = runs[i].first; q < runs[i].first + runs[i].count; q++) {
			assert_int_equal(map[q], 1);
			map[q] = 0;
		}
}

static void test_args(void **state)
{
	(void)state;
	struct vmb_pages p;
	struct vmb_page_run *r = NULL;

	assert_int_equal(vmb_pages_init(&p, 0), -EINVAL);
	assert_int_equal(vmb_pages_init(&p, 4095), -EINVAL);
	assert_int_equal(vmb_pages_init(&p, 4097), -EINVAL);
	assert_int_equal(vmb_pages_init(&p, 1000 * PG), 0);
	assert_int_equal(p.npages, 1000);
	assert_int_equal(p.free_pages, 1000);
	assert_int_equal(vmb_pages_validate(&p), 0);
	assert_int_equal(vmb_pages_alloc(&p, 0, &r), -EINVAL);
	assert_int_equal(vmb_pages_alloc(&p, 1, NULL), -EINVAL);
	assert_int_equal(vmb_pages_alloc(&p, 1001, &r), -ENOSPC);
	assert_null(r);
	assert_int_equal(p.free_pages, 1000);
	assert_int_equal(vmb_pages_validate(&p), 0);
	vmb_pages_fini(&p);

	/* host allocation failures: init, then the runs array; nothing taken */
	vmb_alloc_fail_after(1);
	assert_int_equal(vmb_pages_init(&p, 64 * PG), -ENOMEM);
	vmb_alloc_fail_after(0);
	assert_int_equal(vmb_pages_init(&p, 64 * PG), 0);
	vmb_alloc_fail_after(1);
	assert_int_equal(vmb_pages_alloc(&p, 10, &r), -ENOMEM);
	vmb_alloc_fail_after(0);
	assert_null(r);
	assert_int_equal(p.free_pages, 64);
	assert_int_equal(p.hint, 0);
	assert_int_equal(vmb_pages_validate(&p), 0);
	vmb_pages_fini(&p);
}

static void test_fresh(void **state)
{
	(void)state;
	struct vmb_pages p;
	struct vmb_page_run *r, *r2;
	uint8_t map[1000] = {0};

	/* a page count that is not a multiple of 64: the last bitmap word is partial */
	assert_int_equal(vmb_pages_init(&p, 1000 * PG), 0);
	assert_int_equal(vmb_pages_alloc(&p, 300, &r), 1);
	assert_int_equal(r[0].first, 0);
	assert_int_equal(r[0].count, 300);
	check_runs(r, 1, 300, map, 1000);
	assert_int_equal(p.free_pages, 700);
	assert_int_equal(vmb_pages_validate(&p), 0);
	/* next fit: the following allocation starts where the last ended */
	assert_int_equal(vmb_pages_alloc(&p, 700, &r2), 1);
	assert_int_equal(r2[0].first, 300);
	assert_int_equal(r2[0].count, 700);
	check_runs(r2, 1, 700, map, 1000);
	assert_int_equal(p.free_pages, 0);
	assert_int_equal(vmb_pages_validate(&p), 0);
	assert_int_equal(vmb_pages_alloc(&p, 1, &r), -ENOSPC);
	assert_int_equal(p.free_pages, 0);
	vmb_pages_free(&p, r, 1);
	vmb_pages_free(&p, r2, 1);
	free(r);
	free(r2);
	assert_int_equal(p.free_pages, 1000);
	assert_int_equal(vmb_pages_validate(&p), 0);
	vmb_pages_fini(&p);
}

static void test_large(void **state)
{
	(void)state;
	struct vmb_pages p;
	struct vmb_page_run *r, *r2;
	const uint64_t gib = GiB / PG; /* 262144 pages */

	assert_int_equal(vmb_pages_init(&p, 4 * GiB + 5 * PG), 0);
	assert_int_equal(vmb_pages_alloc(&p, gib, &r), 1);
	assert_int_equal(r[0].first, 0);
	assert_int_equal(r[0].count, gib);
	assert_int_equal(vmb_pages_validate(&p), 0);
	/* unaligned start and length: word-wise set and clear at both ends */
	assert_int_equal(vmb_pages_alloc(&p, 3, &r2), 1);
	free(r2);
	assert_int_equal(vmb_pages_alloc(&p, 2 * gib + 77, &r2), 1);
	assert_int_equal(r2[0].first, gib + 3);
	assert_int_equal(r2[0].count, 2 * gib + 77);
	assert_int_equal(p.free_pages, 4 * gib + 5 - 3 * gib - 80);
	assert_int_equal(vmb_pages_validate(&p), 0);
	vmb_pages_free(&p, r, 1);
	vmb_pages_free(&p, r2, 1);
	assert_int_equal(p.free_pages, 4 * gib + 5 - 3);
	assert_int_equal(vmb_pages_validate(&p), 0);
	free(r);
	free(r2);
	/* everything left, in three runs: the tail after the hint, then two after the wrap */
	int n = vmb_pages_alloc(&p, 4 * gib + 2, &r);
	assert_int_equal(n, 3);
	assert_int_equal(r[0].first, 3 * gib + 80);
	assert_int_equal(r[0].count, gib - 75);
	assert_int_equal(r[1].first, 0);
	assert_int_equal(r[1].count, gib);
	assert_int_equal(r[2].first, gib + 3);
	assert_int_equal(r[2].count, 2 * gib + 77);
	assert_int_equal(p.free_pages, 0);
	assert_int_equal(vmb_pages_validate(&p), 0);
	free(r);
	vmb_pages_fini(&p);
}

static void test_hint_wrap(void **state)
{
	(void)state;
	struct vmb_pages p;
	struct vmb_page_run *a, *b, *c, *d;
	uint8_t map[256] = {0};

	assert_int_equal(vmb_pages_init(&p, 256 * PG), 0);
	assert_int_equal(vmb_pages_alloc(&p, 100, &a), 1); /* [0, 100) */
	assert_int_equal(vmb_pages_alloc(&p, 100, &b), 1); /* [100, 200) */
	check_runs(a, 1, 100, map, 256);
	check_runs(b, 1, 100, map, 256);
	assert_int_equal(p.hint, 200);
	vmb_pages_free(&p, a, 1);
	unmark(a, 1, map);
	/* 90: the 56 at the end first, then wrap to the start for 34 */
	assert_int_equal(vmb_pages_alloc(&p, 90, &c), 2);
	assert_int_equal(c[0].first, 200);
	assert_int_equal(c[0].count, 56);
	assert_int_equal(c[1].first, 0);
	assert_int_equal(c[1].count, 34);
	check_runs(c, 2, 90, map, 256);
	assert_int_equal(p.hint, 34);
	assert_int_equal(vmb_pages_validate(&p), 0);
	/* the hint stays inside a free run: 66 free from 34 */
	assert_int_equal(vmb_pages_alloc(&p, 10, &d), 1);
	assert_int_equal(d[0].first, 34);
	check_runs(d, 1, 10, map, 256);
	free(d);
	/* a run that ends exactly at the last page moves the hint back to 0 */
	vmb_pages_free(&p, c, 1); /* [200, 256) */
	unmark(c, 1, map);
	p.hint = 200;
	assert_int_equal(vmb_pages_alloc(&p, 56, &d), 1);
	assert_int_equal(d[0].first, 200);
	assert_int_equal(p.hint, 0);
	assert_int_equal(vmb_pages_validate(&p), 0);
	free(a);
	free(b);
	free(c);
	free(d);
	vmb_pages_fini(&p);

	/* the hint in the middle of a free run (and of a bitmap word): the wrap stops at it */
	memset(map, 0, sizeof(map));
	assert_int_equal(vmb_pages_init(&p, 256 * PG), 0);
	p.hint = 100;
	assert_int_equal(vmb_pages_alloc(&p, 1, &b), 1); /* page 100, in the hint's next word */
	assert_int_equal(b[0].first, 100);
	check_runs(b, 1, 1, map, 256);
	p.hint = 70;
	assert_int_equal(vmb_pages_alloc(&p, 255, &a), 3);
	assert_int_equal(a[0].first, 70);
	assert_int_equal(a[0].count, 30);
	assert_int_equal(a[1].first, 101);
	assert_int_equal(a[1].count, 155);
	assert_int_equal(a[2].first, 0);
	assert_int_equal(a[2].count, 70);
	check_runs(a, 3, 255, map, 256);
	assert_int_equal(p.hint, 70);
	assert_int_equal(p.free_pages, 0);
	assert_int_equal(vmb_pages_validate(&p), 0);
	free(a);
	free(b);
	vmb_pages_fini(&p);
}

static void test_fragmented(void **state)
{
	(void)state;
	const uint64_t np = 1024 + 10;
	struct vmb_pages p;
	struct vmb_page_run *all, *r;
	uint8_t *map = calloc(np, 1);

	assert_non_null(map);
	assert_int_equal(vmb_pages_init(&p, np * PG), 0);
	assert_int_equal(vmb_pages_alloc(&p, np, &all), 1);
	/* free every other page: 517 single free pages */
	for (uint64_t i = 0; i < np; i += 2) {
		struct vmb_page_run one = {.first = i, .count = 1};
		vmb_pages_free(&p, &one, 1);
	}
	for (uint64_t i = 1; i < np; i += 2)
		map[i] = 1;
	assert_int_equal(p.free_pages, np / 2);
	assert_int_equal(vmb_pages_validate(&p), 0);
	/* one page more than free: nothing taken */
	uint64_t hint = p.hint;
	assert_int_equal(vmb_pages_alloc(&p, np / 2 + 1, &r), -ENOSPC);
	assert_int_equal(p.free_pages, np / 2);
	assert_int_equal(p.hint, hint);
	assert_int_equal(vmb_pages_validate(&p), 0);
	/* 300 pages come back as 300 single-page runs (more than the initial array: it grows) */
	int n = vmb_pages_alloc(&p, 300, &r);
	assert_int_equal(n, 300);
	check_runs(r, n, 300, map, np);
	for (int i = 0; i < n; i++)
		assert_int_equal(r[i].count, 1);
	assert_int_equal(vmb_pages_validate(&p), 0);
	/* the runs array grows under fault injection too: a failure on a later growth */
	struct vmb_page_run *r2 = NULL;
	vmb_alloc_fail_after(3);
	assert_int_equal(vmb_pages_alloc(&p, 200, &r2), -ENOMEM);
	vmb_alloc_fail_after(0);
	assert_null(r2);
	assert_int_equal(p.free_pages, np / 2 - 300);
	assert_int_equal(vmb_pages_validate(&p), 0);
	/* the rest, then nothing */
	n = vmb_pages_alloc(&p, np / 2 - 300, &r2);
	assert_int_equal(n, (int)(np / 2 - 300));
	check_runs(r2, n, np / 2 - 300, map, np);
	assert_int_equal(p.free_pages, 0);
	assert_int_equal(vmb_pages_validate(&p), 0);
	vmb_pages_free(&p, r2, (unsigned int)n);
	free(r2);
	vmb_pages_free(&p, r, 300);
	free(r);
	/* free the odd pages too: everything free, one run again */
	for (uint64_t i = 1; i < np; i += 2) {
		struct vmb_page_run one = {.first = i, .count = 1};
		vmb_pages_free(&p, &one, 1);
	}
	free(all);
	assert_int_equal(p.free_pages, np);
	assert_int_equal(vmb_pages_validate(&p), 0);
	p.hint = 0;
	assert_int_equal(vmb_pages_alloc(&p, np, &all), 1);
	free(all);
	vmb_pages_fini(&p);
	free(map);
}

static void test_validate_catches(void **state)
{
	(void)state;
	struct vmb_pages p;

	assert_int_equal(vmb_pages_init(&p, 100 * PG), 0);
	p.free_pages--;
	assert_int_equal(vmb_pages_validate(&p), -EUCLEAN);
	p.free_pages++;
	p.bitmap[1] |= 1ull << 40; /* page 104: past the end */
	p.free_pages--;
	assert_int_equal(vmb_pages_validate(&p), -EUCLEAN);
	p.bitmap[1] &= ~(1ull << 40);
	p.free_pages++;
	p.hint = 100;
	assert_int_equal(vmb_pages_validate(&p), -EUCLEAN);
	p.hint = 0;
	assert_int_equal(vmb_pages_validate(&p), 0);
	vmb_pages_fini(&p);
}

#define LIVE 64

static void random_run(uint64_t npages, uint64_t *s, int steps)
{
	struct vmb_pages p;
	uint8_t *map = calloc(npages, 1);
	struct {
		struct vmb_page_run *r;
		int n;
	} live[LIVE] = {{0}};
	unsigned long allocs = 0, nospc = 0, runs = 0;

	assert_non_null(map);
	assert_int_equal(vmb_pages_init(&p, npages * PG), 0);
	for (int step = 0; step < steps; step++) {
		unsigned int k = (unsigned int)rnd_below(s, LIVE);
		if (live[k].r) {
			unmark(live[k].r, live[k].n, map);
			/* sometimes free run by run, as the region does */
			if (rnd_below(s, 2)) {
				vmb_pages_free(&p, live[k].r, (unsigned int)live[k].n);
			} else {
				for (int i = live[k].n - 1; i >= 0; i--)
					vmb_pages_free(&p, &live[k].r[i], 1);
			}
			free(live[k].r);
			live[k].r = NULL;
		} else {
			uint64_t max = rnd_below(s, 4) ? (npages / 2 < 64 ? npages / 2 : 64) : npages / 4;
			uint64_t want = 1 + rnd_below(s, max), before = p.free_pages, hint = p.hint;
			int n = vmb_pages_alloc(&p, want, &live[k].r);
			if (n < 0) {
				assert_int_equal(n, -ENOSPC);
				assert_true(want > before);
				assert_int_equal(p.free_pages, before);
				assert_int_equal(p.hint, hint);
				live[k].r = NULL;
				nospc++;
			} else {
				check_runs(live[k].r, n, want, map, npages);
				/*
				 * Next fit, whole runs: the first run starts at the first free page at or
				 * after the hint (or, with none there, the first free page at all), and every
				 * run but the last ends at an allocated page or the end of the space.
				 */
				uint64_t first = hint;
				while (first < npages && map[first] && !(first >= live[k].r[0].first &&
									   first < live[k].r[0].first + live[k].r[0].count))
					first++;
				if (first == npages)
					for (first = 0; map[first] && first != live[k].r[0].first; first++)
						;
				assert_int_equal(live[k].r[0].first, first);
				for (int i = 0; i + 1 < n; i++) {
					uint64_t end = live[k].r[i].first + live[k].r[i].count;
					assert_true(end == npages || end == hint || map[end]);
				}
				live[k].n = n;
				allocs++;
				runs += (unsigned long)n;
			}
		}
		assert_int_equal(vmb_pages_validate(&p), 0);
		uint64_t used = 0;
		for (uint64_t q = 0; q < npages; q++)
			used += map[q];
		assert_int_equal(p.free_pages, npages - used);
	}
	printf("  %llu pages: %lu allocations in %lu runs, %lu -ENOSPC\n", (unsigned long long)npages,
	       allocs, runs, nospc);
	for (int k = 0; k < LIVE; k++)
		if (live[k].r) {
			vmb_pages_free(&p, live[k].r, (unsigned int)live[k].n);
			free(live[k].r);
		}
	assert_int_equal(p.free_pages, npages);
	assert_int_equal(vmb_pages_validate(&p), 0);
	vmb_pages_fini(&p);
	free(map);
}

static void test_random(void **state)
{
	(void)state;
	uint64_t seed = test_seed("pages random"), s = seed;

	random_run(4096 + 37, &s, 5000);
	random_run(640, &s, 5000);
	random_run(63, &s, 3000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_args),       cmocka_unit_test(test_fresh),
		cmocka_unit_test(test_large),      cmocka_unit_test(test_hint_wrap),
		cmocka_unit_test(test_fragmented), cmocka_unit_test(test_validate_catches),
		cmocka_unit_test(test_random),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
