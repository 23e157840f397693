/* SPDX-License-Identifier: MIT */
/*
 * Description: VRAM buddy allocator: argument checks, power-of-two and non-power-of-two sizes
 * (covered by the largest aligned blocks), natural alignment of every order, exhaustion and full
 * merge-back, greedy ranges (3 MiB = 2 MiB + 1 MiB, largest first), ranges under fragmentation,
 * the max_blocks limit (nothing kept), host allocation failure, and a randomized run against a
 * per-page model (seed printed, VMB_SEED replays) with validate after every operation.
 */
#include "lib/harness.h"

#include <errno.h>

#include "core/alloc.h"
#include "dev/soft/buddy.h"

#define PG 4096ull

/* ---- a naive model: one byte per min block, 0 = free, 1 = allocated ---- */

struct model {
	uint64_t units;
	uint8_t *used;
	uint64_t *prefix; /* prefix[i] = used units in [0, i) */
};

static void model_init(struct model *m, uint64_t units)
{
	m->units = units;
	m->used = calloc(units, 1);
	m->prefix = calloc(units + 1, sizeof(*m->prefix));
	assert_non_null(m->used);
	assert_non_null(m->prefix);
}

static void model_fini(struct model *m)
{
	free(m->used);
	free(m->prefix);
}

/* Mark [first, first + n) units taken (they must be free) or free (they must be taken). */
static void model_mark(struct model *m, uint64_t first, uint64_t n, bool take)
{
	assert_true(first + n <= m->units);
	for (uint64_t i = first; i < first + n; i++) {
		assert_int_equal(m->used[i], take ? 0 : 1);
		m->used[i] = take;
	}
}

static uint64_t model_free_units(const struct model *m)
{
	uint64_t n = 0;
	for (uint64_t i = 0; i < m->units; i++)
		n += !m->used[i];
	return n;
}

/*
 * Largest order o <= max_order with a naturally aligned, entirely free range of 2^o units inside
 * the space, or -1. With buddies always merged, this is exactly the largest free buddy block.
 */
static int model_largest_free_order(struct model *m, unsigned int max_order)
{
	for (uint64_t i = 0; i < m->units; i++)
		m->prefix[i + 1] = m->prefix[i] + m->used[i];
	for (int o = (int)max_order; o >= 0; o--) {
		uint64_t len = 1ull << o;
		for (uint64_t s = 0; s + len <= m->units; s += len)
			if (m->prefix[s + len] == m->prefix[s])
				return o;
	}
	return -1;
}

static unsigned int ilog2(uint64_t v)
{
	return 63u - (unsigned int)__builtin_clzll(v);
}

/* ---- tests ---- */

static void test_init_args(void **state)
{
	(void)state;
	struct vmb_buddy b;
	uint64_t off;
	struct vmb_buddy_block blk[4];

	assert_int_equal(vmb_buddy_init(&b, 0, PG), -EINVAL);
	assert_int_equal(vmb_buddy_init(&b, 4 * MiB, 0), -EINVAL);
	assert_int_equal(vmb_buddy_init(&b, 4 * MiB, 2048), -EINVAL);      /* below 4 KiB */
	assert_int_equal(vmb_buddy_init(&b, 4 * MiB, 12288), -EINVAL);     /* not a power of two */
	assert_int_equal(vmb_buddy_init(&b, 4 * MiB + 1, PG), -EINVAL);    /* not a multiple */
	assert_int_equal(vmb_buddy_init(&b, 12 * KiB, 8 * KiB), -EINVAL);  /* not a multiple */
	assert_int_equal(vmb_buddy_init(&b, PG << 32, PG), -EINVAL);       /* too many blocks */

	/* min_block above 4 KiB: 24 KiB of 8 KiB blocks = 16 KiB + 8 KiB */
	assert_int_equal(vmb_buddy_init(&b, 24 * KiB, 8 * KiB), 0);
	assert_int_equal(b.max_order, 1);
	assert_int_equal(b.free_bytes, 24 * KiB);
	assert_int_equal(vmb_buddy_validate(&b), 0);
	assert_int_equal(vmb_buddy_alloc_range(&b, 24 * KiB, blk, 4), 2);
	assert_int_equal(blk[0].offset, 0);
	assert_int_equal(blk[0].size, 16 * KiB);
	assert_int_equal(blk[1].offset, 16 * KiB);
	assert_int_equal(blk[1].size, 8 * KiB);
	assert_int_equal(b.free_bytes, 0);
	vmb_buddy_free_range(&b, blk, 2);
	assert_int_equal(vmb_buddy_validate(&b), 0);
	vmb_buddy_fini(&b);

	/* invalid calls on a valid allocator change nothing */
	assert_int_equal(vmb_buddy_init(&b, 8 * MiB, PG), 0);
	assert_int_equal(vmb_buddy_alloc(&b, VMB_BUDDY_MAX_ORDER + 1, &off), -EINVAL);
	assert_int_equal(vmb_buddy_alloc(&b, 0, NULL), -EINVAL);
	assert_int_equal(vmb_buddy_alloc(&b, b.max_order + 1, &off), -ENOSPC); /* larger than all */
	assert_int_equal(vmb_buddy_alloc_range(&b, 0, blk, 4), -EINVAL);
	assert_int_equal(vmb_buddy_alloc_range(&b, PG + 1, blk, 4), -EINVAL);
	assert_int_equal(vmb_buddy_alloc_range(&b, PG, blk, 0), -EINVAL);
	assert_int_equal(vmb_buddy_alloc_range(&b, PG, NULL, 4), -EINVAL);
	assert_int_equal(vmb_buddy_alloc_range(&b, 8 * MiB + PG, blk, 4), -ENOSPC); /* > free */
	assert_int_equal(b.free_bytes, 8 * MiB);
	assert_int_equal(vmb_buddy_validate(&b), 0);
	/* validate sees accounting that disagrees with the free lists */
	b.free_bytes -= PG;
	assert_int_equal(vmb_buddy_validate(&b), -EUCLEAN);
	b.free_bytes += PG;
	assert_int_equal(vmb_buddy_validate(&b), 0);
	vmb_buddy_fini(&b);
}

static void test_init_nomem(void **state)
{
	(void)state;
	struct vmb_buddy b;
	unsigned long nth;

	/* each host allocation of init failing in turn: -ENOMEM, nothing leaked (ASan) */
	for (nth = 1;; nth++) {
		vmb_alloc_fail_after(nth);
		int err = vmb_buddy_init(&b, 6 * MiB + PG, PG);
		unsigned long left = vmb_alloc_fail_after(0);
		if (err == 0) {
			assert_int_not_equal(left, 0); /* it did not fire */
			break;
		}
		assert_int_equal(err, -ENOMEM);
	}
	assert_true(nth > 1);
	assert_int_equal(vmb_buddy_validate(&b), 0);
	vmb_buddy_fini(&b);
}

static void test_power_of_two(void **state)
{
	(void)state;
	struct vmb_buddy b;
	uint64_t off;

	assert_int_equal(vmb_buddy_init(&b, 8 * MiB, PG), 0);
	assert_int_equal(b.size, 8 * MiB);
	assert_int_equal(b.min_block, PG);
	assert_int_equal(b.max_order, 11);
	assert_int_equal(b.free_bytes, 8 * MiB);
	assert_int_equal(vmb_buddy_validate(&b), 0);
	/* the whole space is one block */
	assert_int_equal(vmb_buddy_alloc(&b, 11, &off), 0);
	assert_int_equal(off, 0);
	assert_int_equal(b.free_bytes, 0);
	assert_int_equal(vmb_buddy_alloc(&b, 0, &off), -ENOSPC);
	assert_int_equal(vmb_buddy_validate(&b), 0);
	vmb_buddy_free(&b, 0, 11);
	assert_int_equal(b.free_bytes, 8 * MiB);
	assert_int_equal(vmb_buddy_validate(&b), 0);
	vmb_buddy_fini(&b);
}

static void test_non_power_of_two(void **state)
{
	(void)state;
	struct vmb_buddy b;
	uint64_t off;

	/* 6 MiB + 4 KiB = 4 MiB @ 0 + 2 MiB @ 4 MiB + 4 KiB @ 6 MiB */
	assert_int_equal(vmb_buddy_init(&b, 6 * MiB + PG, PG), 0);
	assert_int_equal(b.max_order, 10);
	assert_int_equal(b.free_bytes, 6 * MiB + PG);
	assert_int_equal(vmb_buddy_validate(&b), 0);
	assert_int_equal(vmb_buddy_alloc(&b, 10, &off), 0);
	assert_int_equal(off, 0);
	assert_int_equal(vmb_buddy_alloc(&b, 10, &off), -ENOSPC);
	assert_int_equal(vmb_buddy_alloc(&b, 9, &off), 0);
	assert_int_equal(off, 4 * MiB);
	assert_int_equal(vmb_buddy_alloc(&b, 1, &off), -ENOSPC);
	assert_int_equal(vmb_buddy_alloc(&b, 0, &off), 0);
	assert_int_equal(off, 6 * MiB);
	assert_int_equal(b.free_bytes, 0);
	assert_int_equal(vmb_buddy_alloc(&b, 0, &off), -ENOSPC);
	assert_int_equal(vmb_buddy_validate(&b), 0);
	/* the tail blocks have no buddy inside the space: freeing must not merge past the end */
	vmb_buddy_free(&b, 6 * MiB, 0);
	assert_int_equal(vmb_buddy_validate(&b), 0);
	vmb_buddy_free(&b, 4 * MiB, 9);
	assert_int_equal(vmb_buddy_validate(&b), 0);
	vmb_buddy_free(&b, 0, 10);
	assert_int_equal(b.free_bytes, 6 * MiB + PG);
	assert_int_equal(vmb_buddy_validate(&b), 0);
	vmb_buddy_fini(&b);

	/* an odd number of blocks, not aligned to anything large: 1 MiB + 12 KiB */
	assert_int_equal(vmb_buddy_init(&b, MiB + 3 * PG, PG), 0);
	struct vmb_buddy_block blk[8];
	assert_int_equal(vmb_buddy_alloc_range(&b, MiB + 3 * PG, blk, 8), 3);
	assert_int_equal(blk[0].offset, 0);
	assert_int_equal(blk[0].size, MiB);
	assert_int_equal(blk[1].offset, MiB);
	assert_int_equal(blk[1].size, 2 * PG);
	assert_int_equal(blk[2].offset, MiB + 2 * PG);
	assert_int_equal(blk[2].size, PG);
	vmb_buddy_free_range(&b, blk, 3);
	assert_int_equal(vmb_buddy_validate(&b), 0);
	vmb_buddy_fini(&b);
}

static void test_every_order(void **state)
{
	(void)state;
	struct vmb_buddy b;
	struct model m;
	uint64_t off, offs[14];

	assert_int_equal(vmb_buddy_init(&b, 64 * MiB, PG), 0);
	assert_int_equal(b.max_order, 14);
	/* each order alone on a fresh space: lowest address, aligned */
	for (unsigned int o = 0; o <= b.max_order; o++) {
		assert_int_equal(vmb_buddy_alloc(&b, o, &off), 0);
		assert_int_equal(off, 0);
		assert_int_equal(b.free_bytes, 64 * MiB - (PG << o));
		assert_int_equal(vmb_buddy_validate(&b), 0);
		vmb_buddy_free(&b, off, o);
		assert_int_equal(b.free_bytes, 64 * MiB);
		assert_int_equal(vmb_buddy_validate(&b), 0);
	}
	/* one of every order below the maximum at once: each aligned to its size, no overlap */
	model_init(&m, 64 * MiB / PG);
	for (unsigned int o = 0; o < 14; o++) {
		assert_int_equal(vmb_buddy_alloc(&b, o, &offs[o]), 0);
		assert_int_equal(offs[o] % (PG << o), 0);
		model_mark(&m, offs[o] / PG, 1ull << o, true);
		assert_int_equal(vmb_buddy_validate(&b), 0);
	}
	assert_int_equal(vmb_buddy_alloc(&b, 14, &off), -ENOSPC);
	assert_int_equal(b.free_bytes, model_free_units(&m) * PG);
	/* the largest orders first */
	for (int o = 13; o >= 0; o--) {
		vmb_buddy_free(&b, offs[o], (unsigned int)o);
		assert_int_equal(vmb_buddy_validate(&b), 0);
	}
	assert_int_equal(b.free_bytes, 64 * MiB);
	assert_int_equal(vmb_buddy_alloc(&b, 14, &off), 0); /* all merged back */
	assert_int_equal(off, 0);
	vmb_buddy_free(&b, off, 14);
	model_fini(&m);
	vmb_buddy_fini(&b);
}

/* Exhaust with min blocks, free in a shuffled order, and check the space merged back fully. */
static void exhaust_and_merge(uint64_t size, const uint64_t *cover, unsigned int ncover, uint64_t *seed)
{
	struct vmb_buddy b;
	uint64_t units = size / PG, off, n = 0;
	uint64_t *offs = malloc(units * sizeof(*offs));
	struct model m;

	assert_non_null(offs);
	model_init(&m, units);
	assert_int_equal(vmb_buddy_init(&b, size, PG), 0);
	while (vmb_buddy_alloc(&b, 0, &off) == 0) {
		assert_true(n < units);
		model_mark(&m, off / PG, 1, true);
		offs[n++] = off;
	}
	assert_int_equal(n, units);
	assert_int_equal(b.free_bytes, 0);
	assert_int_equal(vmb_buddy_alloc(&b, 0, &off), -ENOSPC);
	struct vmb_buddy_block blk[1];
	assert_int_equal(vmb_buddy_alloc_range(&b, PG, blk, 1), -ENOSPC);
	assert_int_equal(vmb_buddy_validate(&b), 0);
	for (uint64_t i = n - 1; i > 0; i--) {
		uint64_t j = rnd_below(seed, i + 1), t = offs[i];
		offs[i] = offs[j];
		offs[j] = t;
	}
	for (uint64_t i = 0; i < n; i++) {
		vmb_buddy_free(&b, offs[i], 0);
		if (i % 97 == 0)
			assert_int_equal(vmb_buddy_validate(&b), 0);
	}
	assert_int_equal(b.free_bytes, size);
	assert_int_equal(vmb_buddy_validate(&b), 0);
	/* one maximal block per piece of the aligned cover: a range of everything is the cover */
	struct vmb_buddy_block all[64];
	assert_int_equal(vmb_buddy_alloc_range(&b, size, all, 64), (int)ncover);
	for (unsigned int i = 0, pos = 0; i < ncover; i++) {
		assert_int_equal(all[i].offset, pos);
		assert_int_equal(all[i].size, cover[i]);
		pos += cover[i];
	}
	vmb_buddy_free_range(&b, all, ncover);
	assert_int_equal(vmb_buddy_validate(&b), 0);
	vmb_buddy_fini(&b);
	model_fini(&m);
	free(offs);
}

static void test_exhaust(void **state)
{
	(void)state;
	uint64_t seed = test_seed("buddy exhaust"), s = seed;
	const uint64_t pow2[] = {4 * MiB};
	const uint64_t npow2[] = {4 * MiB, 2 * MiB, PG};
	const uint64_t odd[] = {2 * MiB, 512 * KiB, 64 * KiB, 8 * KiB, 4 * KiB};

	exhaust_and_merge(4 * MiB, pow2, 1, &s);
	exhaust_and_merge(6 * MiB + PG, npow2, 3, &s);
	exhaust_and_merge(2 * MiB + 512 * KiB + 64 * KiB + 12 * KiB, odd, 5, &s);
}

static void test_range_greedy(void **state)
{
	(void)state;
	struct vmb_buddy b;
	struct vmb_buddy_block blk[16], tmp[16];

	assert_int_equal(vmb_buddy_init(&b, 16 * MiB, PG), 0);
	/* 3 MiB = 2 MiB + 1 MiB, largest first */
	assert_int_equal(vmb_buddy_alloc_range(&b, 3 * MiB, blk, 16), 2);
	assert_int_equal(blk[0].size, 2 * MiB);
	assert_int_equal(blk[1].size, 1 * MiB);
	assert_int_equal(blk[0].offset % (2 * MiB), 0);
	assert_int_equal(blk[1].offset % (1 * MiB), 0);
	assert_int_equal(b.free_bytes, 13 * MiB);
	assert_int_equal(vmb_buddy_validate(&b), 0);
	/* the maximal block is capped by max_order, never larger than the space */
	assert_int_equal(vmb_buddy_alloc_range(&b, 13 * MiB, tmp, 16), 3); /* 8M + 4M + 1M */
	assert_int_equal(tmp[0].size, 8 * MiB);
	assert_int_equal(tmp[1].size, 4 * MiB);
	assert_int_equal(tmp[2].size, 1 * MiB);
	assert_int_equal(b.free_bytes, 0);
	vmb_buddy_free_range(&b, tmp, 3);
	/* 8 MiB - 4 KiB needs 11 blocks (4M, 2M, ..., 4K): 10 is not enough, nothing kept */
	assert_int_equal(vmb_buddy_alloc_range(&b, 8 * MiB - PG, tmp, 10), -ENOSPC);
	assert_int_equal(b.free_bytes, 13 * MiB);
	assert_int_equal(vmb_buddy_validate(&b), 0);
	assert_int_equal(vmb_buddy_alloc_range(&b, 8 * MiB - PG, tmp, 11), 11);
	for (unsigned int i = 0; i < 11; i++) {
		assert_int_equal(tmp[i].size, 4 * MiB >> i);
		assert_int_equal(tmp[i].offset % tmp[i].size, 0);
	}
	vmb_buddy_free_range(&b, tmp, 11);
	/* max_blocks = 1 works when one block does */
	assert_int_equal(vmb_buddy_alloc_range(&b, 2 * MiB, tmp, 1), 1);
	assert_int_equal(tmp[0].size, 2 * MiB);
	vmb_buddy_free_range(&b, tmp, 1);
	assert_int_equal(vmb_buddy_alloc_range(&b, 3 * MiB, tmp, 1), -ENOSPC);
	vmb_buddy_free_range(&b, blk, 2);
	assert_int_equal(b.free_bytes, 16 * MiB);
	assert_int_equal(vmb_buddy_validate(&b), 0);
	vmb_buddy_fini(&b);
}

static void test_range_fragmented(void **state)
{
	(void)state;
	struct vmb_buddy b;
	uint64_t off;
	struct vmb_buddy_block *blk = malloc(512 * sizeof(*blk));

	assert_non_null(blk);
	/* every other 4 KiB of 4 MiB free: no two free blocks can merge */
	assert_int_equal(vmb_buddy_init(&b, 4 * MiB, PG), 0);
	for (uint64_t i = 0; i < 1024; i++) {
		assert_int_equal(vmb_buddy_alloc(&b, 0, &off), 0);
		assert_int_equal(off, i * PG); /* fresh splits hand out the lowest block first */
	}
	for (uint64_t i = 0; i < 1024; i += 2)
		vmb_buddy_free(&b, i * PG, 0);
	assert_int_equal(b.free_bytes, 2 * MiB);
	assert_int_equal(vmb_buddy_validate(&b), 0);
	assert_int_equal(vmb_buddy_alloc(&b, 1, &off), -ENOSPC);
	/* 1 MiB as 256 single pages; 255 allowed is too few and keeps nothing */
	assert_int_equal(vmb_buddy_alloc_range(&b, MiB, blk, 255), -ENOSPC);
	assert_int_equal(b.free_bytes, 2 * MiB);
	assert_int_equal(vmb_buddy_validate(&b), 0);
	assert_int_equal(vmb_buddy_alloc_range(&b, MiB, blk, 512), 256);
	for (unsigned int i = 0; i < 256; i++) {
		assert_int_equal(blk[i].size, PG);
		assert_int_equal(blk[i].offset / PG % 2, 0);
		for (unsigned int j = 0; j < i; j++)
			assert_int_not_equal(blk[i].offset, blk[j].offset);
	}
	assert_int_equal(b.free_bytes, MiB);
	assert_int_equal(vmb_buddy_validate(&b), 0);
	/* more than is free */
	assert_int_equal(vmb_buddy_alloc_range(&b, MiB + PG, blk + 256, 256), -ENOSPC);
	assert_int_equal(b.free_bytes, MiB);
	vmb_buddy_free_range(&b, blk, 256);
	assert_int_equal(vmb_buddy_validate(&b), 0);
	vmb_buddy_fini(&b);

	/*
	 * Mixed holes in 1 MiB: 64 KiB @ 0, 32 KiB @ 128 KiB and single pages @ 100 and 102.
	 * 104 KiB: 64K, 32K, then 8K is wanted but only single pages are free: 4K, 4K.
	 */
	assert_int_equal(vmb_buddy_init(&b, MiB, PG), 0);
	for (uint64_t i = 0; i < 256; i++)
		assert_int_equal(vmb_buddy_alloc(&b, 0, &off), 0);
	for (uint64_t i = 0; i < 16; i++)
		vmb_buddy_free(&b, i * PG, 0);
	for (uint64_t i = 32; i < 40; i++)
		vmb_buddy_free(&b, i * PG, 0);
	vmb_buddy_free(&b, 100 * PG, 0);
	vmb_buddy_free(&b, 102 * PG, 0);
	assert_int_equal(b.free_bytes, 104 * KiB);
	assert_int_equal(vmb_buddy_validate(&b), 0);
	assert_int_equal(vmb_buddy_alloc_range(&b, 104 * KiB, blk, 3), -ENOSPC);
	assert_int_equal(b.free_bytes, 104 * KiB);
	assert_int_equal(vmb_buddy_validate(&b), 0);
	assert_int_equal(vmb_buddy_alloc_range(&b, 104 * KiB, blk, 4), 4);
	assert_int_equal(blk[0].offset, 0);
	assert_int_equal(blk[0].size, 64 * KiB);
	assert_int_equal(blk[1].offset, 128 * KiB);
	assert_int_equal(blk[1].size, 32 * KiB);
	assert_int_equal(blk[2].size, PG);
	assert_int_equal(blk[3].size, PG);
	assert_true((blk[2].offset == 100 * PG && blk[3].offset == 102 * PG) ||
		    (blk[2].offset == 102 * PG && blk[3].offset == 100 * PG));
	assert_int_equal(b.free_bytes, 0);
	assert_int_equal(vmb_buddy_validate(&b), 0);
	vmb_buddy_free_range(&b, blk, 4);
	/* a range smaller than the largest hole splits it rather than take the small ones */
	assert_int_equal(vmb_buddy_alloc_range(&b, 8 * KiB, blk, 1), 1);
	assert_int_equal(blk[0].size, 8 * KiB);
	assert_true(blk[0].offset < 40 * PG); /* from the 64K or the 32K hole */
	vmb_buddy_free_range(&b, blk, 1);
	assert_int_equal(b.free_bytes, 104 * KiB);
	assert_int_equal(vmb_buddy_validate(&b), 0);
	vmb_buddy_fini(&b);
	free(blk);
}

#define LIVE_MAX 256
#define RANGE_MAX 16

struct live {
	unsigned int n;
	struct vmb_buddy_block blk[RANGE_MAX];
	bool single; /* from vmb_buddy_alloc: freed with vmb_buddy_free */
};

static void random_run(uint64_t size, uint64_t *s, int steps)
{
	struct vmb_buddy b;
	const uint64_t units = size / PG;
	struct model m;
	struct live *live = calloc(LIVE_MAX, sizeof(*live));
	unsigned int nlive = 0;
	unsigned long singles = 0, ranges = 0, nospc = 0, limited = 0, frees = 0;

	assert_non_null(live);
	model_init(&m, units);
	assert_int_equal(vmb_buddy_init(&b, size, PG), 0);
	for (int step = 0; step < steps; step++) {
		unsigned int what = (unsigned int)rnd_below(s, 10);
		if (nlive && (nlive == LIVE_MAX || what < 4)) {
			unsigned int k = (unsigned int)rnd_below(s, nlive);
			struct live *l = &live[k];
			for (unsigned int i = 0; i < l->n; i++)
				model_mark(&m, l->blk[i].offset / PG, l->blk[i].size / PG, false);
			if (l->single)
				vmb_buddy_free(&b, l->blk[0].offset, ilog2(l->blk[0].size / PG));
			else
				vmb_buddy_free_range(&b, l->blk, l->n);
			live[k] = live[--nlive];
			frees++;
		} else if (what < 7) {
			/* one block; orders past the space's max and past the contract's max too */
			unsigned int o = (unsigned int)rnd_below(s, b.max_order + 2);
			uint64_t off, before = b.free_bytes;
			int expect = model_largest_free_order(&m, b.max_order) >= (int)o ? 0 : -ENOSPC;
			int err = vmb_buddy_alloc(&b, o, &off);
			assert_int_equal(err, expect);
			if (err) {
				assert_int_equal(b.free_bytes, before);
				nospc++;
			} else {
				singles++;
				assert_int_equal(off % (PG << o), 0);
				model_mark(&m, off / PG, 1ull << o, true);
				struct live *l = &live[nlive++];
				l->n = 1;
				l->single = true;
				l->blk[0].offset = off;
				l->blk[0].size = PG << o;
			}
		} else {
			uint64_t want = (1 + rnd_below(s, rnd_below(s, 2) ? 16 : 600)) * PG;
			unsigned int max_blocks = 1 + (unsigned int)rnd_below(s, RANGE_MAX);
			uint64_t before = b.free_bytes;
			struct live *l = &live[nlive];
			int n = vmb_buddy_alloc_range(&b, want, l->blk, max_blocks);
			if (n < 0) {
				assert_int_equal(n, -ENOSPC);
				assert_int_equal(b.free_bytes, before);
				assert_int_equal(vmb_buddy_validate(&b), 0);
				nospc++;
				if (want <= before) {
					limited++;
					/* only the block limit can have failed it: unlimited, it fits */
					struct vmb_buddy_block *all = malloc(want / PG * sizeof(*all));
					assert_non_null(all);
					int n2 = vmb_buddy_alloc_range(&b, want, all, (unsigned int)(want / PG));
					assert_true(n2 > (int)max_blocks);
					vmb_buddy_free_range(&b, all, (unsigned int)n2);
					free(all);
					assert_int_equal(b.free_bytes, before);
				}
			} else {
				/* greedy: each block is the largest that fits what is left and is free */
				assert_true(n >= 1 && n <= (int)max_blocks);
				uint64_t left = want / PG;
				for (int i = 0; i < n; i++) {
					uint64_t bu = l->blk[i].size / PG;
					assert_true(bu && !(bu & (bu - 1)));
					assert_int_equal(l->blk[i].offset % l->blk[i].size, 0);
					assert_true(bu <= left);
					unsigned int o = ilog2(left);
					int largest = model_largest_free_order(&m, b.max_order);
					assert_true(largest >= 0);
					if ((int)o > largest)
						o = (unsigned int)largest;
					assert_int_equal(bu, 1ull << o);
					if (i)
						assert_true(l->blk[i].size <= l->blk[i - 1].size);
					model_mark(&m, l->blk[i].offset / PG, bu, true);
					left -= bu;
				}
				assert_int_equal(left, 0);
				assert_int_equal(b.free_bytes, before - want);
				l->n = (unsigned int)n;
				l->single = false;
				nlive++;
				ranges++;
			}
		}
		assert_int_equal(b.free_bytes, model_free_units(&m) * PG);
		assert_int_equal(vmb_buddy_validate(&b), 0);
	}
	printf("  %llu bytes: %lu blocks, %lu ranges, %lu frees, %lu -ENOSPC (%lu by max_blocks)\n",
	       (unsigned long long)size, singles, ranges, frees, nospc, limited);
	while (nlive) {
		struct live *l = &live[--nlive];
		vmb_buddy_free_range(&b, l->blk, l->n);
	}
	assert_int_equal(b.free_bytes, size);
	assert_int_equal(vmb_buddy_validate(&b), 0);
	/* fully merged: the largest order allocates at 0 */
	uint64_t off;
	assert_int_equal(vmb_buddy_alloc(&b, b.max_order, &off), 0);
	assert_int_equal(off, 0);
	vmb_buddy_fini(&b);
	model_fini(&m);
	free(live);
}

static void test_random(void **state)
{
	(void)state;
	uint64_t seed = test_seed("buddy random"), s = seed;

	random_run(8 * MiB + 20 * PG, &s, 6000); /* not a power of two */
	random_run(4 * MiB, &s, 6000);
	random_run(3 * MiB + 7 * PG, &s, 6000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_init_args),      cmocka_unit_test(test_init_nomem),
		cmocka_unit_test(test_power_of_two),   cmocka_unit_test(test_non_power_of_two),
		cmocka_unit_test(test_every_order),    cmocka_unit_test(test_exhaust),
		cmocka_unit_test(test_range_greedy),   cmocka_unit_test(test_range_fragmented),
		cmocka_unit_test(test_random),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
