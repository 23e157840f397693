/* SPDX-License-Identifier: MIT */
/*
 * Description: VRAM buddy allocator: natural alignment of every block, exhaustion and full
 * merge-back, non-power-of-two sizes, greedy ranges (3 MiB = 2 MiB + 1 MiB), max_blocks, and a
 * randomized run against a byte map (seed printed, VMB_SEED replays) with validate after each op.
 */
#include "lib/harness.h"

#include <errno.h>

#include "mem/buddy.h"

static void test_init_args(void **state)
{
	(void)state;
	struct vmb_buddy b;
	assert_int_equal(vmb_buddy_init(&b, 0, 4096), -EINVAL);
	assert_int_equal(vmb_buddy_init(&b, 4096, 2048), -EINVAL);
	assert_int_equal(vmb_buddy_init(&b, 4096, 12288), -EINVAL);
	assert_int_equal(vmb_buddy_init(&b, 4096 + 1, 4096), -EINVAL);
	/* 6 MiB + 4 KiB: covered by 4 MiB + 2 MiB + 4 KiB */
	assert_int_equal(vmb_buddy_init(&b, 6 * MiB + 4096, 4096), 0);
	assert_int_equal(b.free_bytes, 6 * MiB + 4096);
	assert_int_equal(vmb_buddy_validate(&b), 0);
	uint64_t off;
	assert_int_equal(vmb_buddy_alloc(&b, 10, &off), 0); /* 4 MiB */
	assert_int_equal(off, 0);
	assert_int_equal(vmb_buddy_alloc(&b, 10, &off), -ENOSPC);
	assert_int_equal(vmb_buddy_alloc(&b, 40, &off), -EINVAL);
	vmb_buddy_free(&b, 0, 10);
	assert_int_equal(vmb_buddy_validate(&b), 0);
	vmb_buddy_fini(&b);
}

static void test_every_order(void **state)
{
	(void)state;
	struct vmb_buddy b;
	assert_int_equal(vmb_buddy_init(&b, 64 * MiB, 4096), 0);
	uint64_t offs[14];
	for (unsigned int o = 0; o < 14; o++) {
		assert_int_equal(vmb_buddy_alloc(&b, o, &offs[o]), 0);
		assert_int_equal(offs[o] % (4096ull << o), 0);
		assert_int_equal(vmb_buddy_validate(&b), 0);
	}
	for (unsigned int o = 0; o < 14; o++)
		vmb_buddy_free(&b, offs[o], o);
	assert_int_equal(b.free_bytes, 64 * MiB);
	assert_int_equal(vmb_buddy_validate(&b), 0);
	/* everything merged back: the whole space is one block again */
	uint64_t off;
	assert_int_equal(vmb_buddy_alloc(&b, 14, &off), 0);
	assert_int_equal(off, 0);
	vmb_buddy_free(&b, off, 14);
	vmb_buddy_fini(&b);
}

static void test_exhaust(void **state)
{
	(void)state;
	struct vmb_buddy b;
	uint64_t off, n = 0;
	assert_int_equal(vmb_buddy_init(&b, 4 * MiB, 4096), 0);
	while (vmb_buddy_alloc(&b, 0, &off) == 0)
		n++;
	assert_int_equal(n, 1024);
	assert_int_equal(b.free_bytes, 0);
	assert_int_equal(vmb_buddy_validate(&b), 0);
	for (uint64_t i = 0; i < 1024; i++)
		vmb_buddy_free(&b, i * 4096, 0);
	assert_int_equal(vmb_buddy_validate(&b), 0);
	assert_int_equal(vmb_buddy_alloc(&b, 10, &off), 0);
	vmb_buddy_fini(&b);
}

static void test_range(void **state)
{
	(void)state;
	struct vmb_buddy b;
	struct vmb_buddy_block blk[8];
	assert_int_equal(vmb_buddy_init(&b, 16 * MiB, 4096), 0);
	assert_int_equal(vmb_buddy_alloc_range(&b, 3 * MiB, blk, 8), 2);
	assert_int_equal(blk[0].size, 2 * MiB);
	assert_int_equal(blk[1].size, 1 * MiB);
	assert_int_equal(blk[0].offset % (2 * MiB), 0);
	assert_int_equal(blk[1].offset % (1 * MiB), 0);
	struct vmb_buddy_block tmp[8];
	assert_int_equal(vmb_buddy_alloc_range(&b, 0, tmp, 8), -EINVAL);
	assert_int_equal(vmb_buddy_alloc_range(&b, 4097, tmp, 8), -EINVAL);
	assert_int_equal(vmb_buddy_alloc_range(&b, 14 * MiB, tmp, 8), -ENOSPC); /* 13 MiB left */
	/* 7 blocks needed (4M+2M+1M+512K+256K+128K+64K... for 8 MiB - 4 KiB: 11 blocks) > max */
	uint64_t before = b.free_bytes;
	assert_int_equal(vmb_buddy_alloc_range(&b, 8 * MiB - 4096, tmp, 8), -ENOSPC);
	assert_int_equal(b.free_bytes, before);
	assert_int_equal(vmb_buddy_validate(&b), 0);
	vmb_buddy_free_range(&b, blk, 2);
	assert_int_equal(b.free_bytes, 16 * MiB);
	/* fragmentation: every other 4 KiB taken; a 64 KiB range comes back as 16 single pages */
	uint64_t off;
	for (int i = 0; i < 4096; i++)
		assert_int_equal(vmb_buddy_alloc(&b, 0, &off), 0);
	for (uint64_t i = 0; i < 4096; i += 2)
		vmb_buddy_free(&b, i * 4096, 0);
	struct vmb_buddy_block many[16];
	assert_int_equal(vmb_buddy_alloc_range(&b, 64 * KiB, many, 16), 16);
	for (int i = 0; i < 16; i++)
		assert_int_equal(many[i].size, 4096);
	assert_int_equal(vmb_buddy_validate(&b), 0);
	vmb_buddy_fini(&b);
}

static void test_random(void **state)
{
	(void)state;
	uint64_t seed = test_seed("buddy random"), s = seed;
	struct vmb_buddy b;
	const uint64_t size = 8 * MiB + 20 * 4096, pages = size / 4096;
	uint8_t *map = calloc(pages, 1);
	struct { uint64_t off; unsigned int order; } live[512];
	unsigned int nlive = 0;
	assert_int_equal(vmb_buddy_init(&b, size, 4096), 0);
	for (int step = 0; step < 20000; step++) {
		if (nlive < 512 && (nlive == 0 || rnd_below(&s, 3))) {
			unsigned int o = (unsigned int)rnd_below(&s, 9);
			uint64_t off;
			int err = vmb_buddy_alloc(&b, o, &off);
			if (err) {
				assert_int_equal(err, -ENOSPC);
				continue;
			}
			assert_int_equal(off % (4096ull << o), 0);
			assert_true(off + (4096ull << o) <= size);
			for (uint64_t p = off / 4096; p < off / 4096 + (1ull << o); p++) {
				assert_int_equal(map[p], 0);
				map[p] = 1;
			}
			live[nlive].off = off;
			live[nlive++].order = o;
		} else {
			unsigned int k = (unsigned int)rnd_below(&s, nlive);
			for (uint64_t p = live[k].off / 4096; p < live[k].off / 4096 + (1ull << live[k].order); p++)
				map[p] = 0;
			vmb_buddy_free(&b, live[k].off, live[k].order);
			live[k] = live[--nlive];
		}
		if (step % 64 == 0)
			assert_int_equal(vmb_buddy_validate(&b), 0);
	}
	while (nlive) {
		nlive--;
		vmb_buddy_free(&b, live[nlive].off, live[nlive].order);
	}
	assert_int_equal(b.free_bytes, size);
	assert_int_equal(vmb_buddy_validate(&b), 0);
	vmb_buddy_fini(&b);
	free(map);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_init_args), cmocka_unit_test(test_every_order), cmocka_unit_test(test_exhaust),
		cmocka_unit_test(test_range), cmocka_unit_test(test_random),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
