/* SPDX-License-Identifier: MIT */
/*
 * Description: soft page tables: leaf-size choice (1G/2M/64K/4K by VA, pa, size, contiguity and
 * the vm's allowed sizes), translations, NULL and READONLY leaves, splits from the reserve with
 * exact accounting, huge leaves refused once their reserves would overcommit a small pool (and
 * each accepted one split down to 4 KiB from its reserve), MAP over existing leaves, prepare failure leaving everything as it was,
 * two vms sharing a pool, a randomized run against a per-page model (seed printed), and the
 * backings' forms (extents, a userptr's HOST address) with their size, alignment and cursors,
 * a pool past 2 MiB (its huge-page part), MAPs that skip the clear (FRESH), and one preparation
 * of MAPs of one range against backings of different layouts of which one commits.
 */
#include "lib/harness.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "core/alloc.h" /* vmb_fault_arm: the PT_PAGE countdown */
#include "dev/soft/pt.h"

static struct vmb_pt_pool pool;

static int setup(void **state)
{
	(void)state;
	assert_int_equal(vmb_pt_pool_init(&pool, 64 * MiB), 0);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	assert_int_equal(pool.allocated, 0);
	assert_int_equal(pool.reserved, 0);
	vmb_pt_pool_fini(&pool);
	return 0;
}

/* The soft device's backings: their size, their contiguity (the largest leaf) and how its cursors
 * walk them: region extents, and a userptr's HOST extent kept in the backing itself. */
static void test_backing_forms(void **state)
{
	(void)state;
	struct vmb_extent e[2] = {{.off = 0, .pa = vmb_pa(VMB_PA_APERTURE_VRAM, 4 * MiB), .size = 2 * MiB},
				  {.off = 2 * MiB, .pa = vmb_pa(VMB_PA_APERTURE_VRAM, 64 * KiB), .size = 64 * KiB}};
	struct vmb_backing b = vmb_soft_backing(e, 2);
	struct vmb_backing_cursor c;
	uint64_t contig;
	assert_int_equal(b.size, 2 * MiB + 64 * KiB);
	assert_int_equal(vmb_soft_contig_align(&b), 64 * KiB); /* the second extent's pa */
	vmb_backing_seek(&c, &b, 2 * MiB + 4 * KiB);
	assert_int_equal(vmb_backing_pa(&c, &contig), vmb_pa(VMB_PA_APERTURE_VRAM, 68 * KiB));
	assert_int_equal(contig, 60 * KiB);

	struct vmb_extent one = {.off = 0, .pa = vmb_pa(VMB_PA_APERTURE_SYSTEM, 0), .size = 4 * GiB};
	struct vmb_backing o = vmb_soft_backing(&one, 1);
	assert_int_equal(vmb_soft_contig_align(&o), 1 * GiB); /* capped */

	struct vmb_backing h = vmb_soft_backing_host(0x7f0000203000ull, 3 * MiB);
	assert_int_equal(h.size, 3 * MiB);
	assert_int_equal(vmb_soft_contig_align(&h), 4 * KiB);
	vmb_backing_seek(&c, &h, 1 * MiB);
	assert_int_equal(vmb_backing_pa(&c, &contig), vmb_pa(VMB_PA_APERTURE_HOST, 0x7f0000303000ull));
	assert_int_equal(contig, 2 * MiB);
	vmb_backing_advance(&c, 2 * MiB - 4 * KiB);
	assert_int_equal(vmb_backing_pa(&c, &contig), vmb_pa(VMB_PA_APERTURE_HOST, 0x7f0000502000ull));
	assert_int_equal(contig, 4 * KiB);
}

static int map(struct vmb_pt *pt, uint64_t va, uint64_t size, const struct vmb_backing *b, uint64_t off,
	       uint32_t flags)
{
	struct vmb_pt_op op = {.kind = VMB_PT_OP_MAP, .flags = flags, .start = va, .last = va + size - 1,
			       .backing = b, .offset = off};
	struct vmb_pt_prep prep = {0};
	int err = vmb_pt_prepare(pt, &op, &prep);
	if (!err)
		vmb_pt_commit(pt, &op, &prep);
	vmb_pt_prep_release(pt, &prep);
	assert_int_equal(vmb_pt_validate(pt), 0);
	return err;
}

static void clear(struct vmb_pt *pt, uint64_t va, uint64_t size)
{
	struct vmb_pt_op op = {.kind = VMB_PT_OP_CLEAR, .start = va, .last = va + size - 1};
	struct vmb_pt_prep prep = {0};
	assert_int_equal(vmb_pt_prepare(pt, &op, &prep), 0);
	vmb_pt_commit(pt, &op, &prep);
	vmb_pt_prep_release(pt, &prep);
	assert_int_equal(vmb_pt_validate(pt), 0);
}

static uint64_t pa_at(struct vmb_pt *pt, uint64_t va)
{
	struct vmb_pt_walk w;
	assert_int_equal(vmb_pt_translate(pt, va, &w), 0);
	return w.pa;
}

static uint64_t psize_at(struct vmb_pt *pt, uint64_t va)
{
	struct vmb_pt_walk w;
	assert_int_equal(vmb_pt_translate(pt, va, &w), 0);
	return w.page_size;
}

static void test_leaf_choice(void **state)
{
	(void)state;
	struct vmb_pt pt;
	struct vmb_extent e = {.off = 0, .pa = 4 * GiB, .size = 2 * GiB};
	struct vmb_backing b = vmb_soft_backing(&e, 1);
	assert_int_equal(vmb_pt_init(&pt, &pool, VMB_PT_SIZES_ALL), 0);

	assert_int_equal(map(&pt, 1 * GiB, 1 * GiB, &b, 0, 0), 0);
	assert_int_equal(pt.leaves[3], 1);
	assert_int_equal(psize_at(&pt, 1 * GiB + 12345), VMB_PT_SIZE_1G);
	assert_int_equal(pa_at(&pt, 1 * GiB + 12345), 4 * GiB + 12345);
	assert_int_equal(pt.reserved, 513);
	/* 2 MiB + 4 KiB at a 2M-aligned VA and pa: one 2M leaf, one 4K leaf */
	assert_int_equal(map(&pt, 8 * GiB, 2 * MiB + 4 * KiB, &b, 0, 0), 0);
	assert_int_equal(pt.leaves[2], 1);
	assert_int_equal(pt.leaves[0], 1);
	assert_int_equal(psize_at(&pt, 8 * GiB + 2 * MiB), VMB_PT_SIZE_4K);
	/* pa only 64K aligned: 64K groups */
	assert_int_equal(map(&pt, 16 * GiB, 1 * MiB, &b, 64 * KiB, 0), 0);
	assert_int_equal(pt.leaves[1], 16);
	assert_int_equal(psize_at(&pt, 16 * GiB + 100000), VMB_PT_SIZE_64K);
	assert_int_equal(pa_at(&pt, 16 * GiB + 100000), 4 * GiB + 64 * KiB + 100000);
	/* VA 2M aligned but pa off by 4K: 4K leaves only */
	uint64_t before4k = pt.leaves[0];
	assert_int_equal(map(&pt, 32 * GiB, 2 * MiB, &b, 4 * KiB, 0), 0);
	assert_int_equal(pt.leaves[0], before4k + 512);
	assert_int_equal(vmb_pt_sizes_in(&pt, 32 * GiB, 32 * GiB + 2 * MiB - 1), VMB_PT_SIZE_4K);
	/* the top of the 48-bit space */
	assert_int_equal(map(&pt, (1ull << 48) - 2 * MiB, 2 * MiB, &b, 0, 0), 0);
	assert_int_equal(psize_at(&pt, (1ull << 48) - 1), VMB_PT_SIZE_2M);
	struct vmb_pt_walk w;
	assert_int_equal(vmb_pt_translate(&pt, 1ull << 48, &w), -EFAULT);
	assert_int_equal(vmb_pt_translate(&pt, 0, &w), -EFAULT);
	vmb_pt_fini(&pt);
}

static void test_extents_and_forced_4k(void **state)
{
	(void)state;
	struct vmb_pt pt, pt4;
	/* a 3 MiB BO as 2M + 1M blocks, not adjacent */
	struct vmb_extent e[2] = {{.off = 0, .pa = 10 * MiB, .size = 2 * MiB}, {.off = 2 * MiB, .pa = 5 * MiB, .size = 1 * MiB}};
	struct vmb_backing b = vmb_soft_backing(e, 2);
	assert_int_equal(vmb_pt_init(&pt, &pool, VMB_PT_SIZES_ALL), 0);
	assert_int_equal(vmb_pt_init(&pt4, &pool, VMB_PT_SIZE_4K), 0);
	assert_int_equal(map(&pt, 2 * GiB, 3 * MiB, &b, 0, 0), 0);
	assert_int_equal(pt.leaves[2], 1);
	assert_int_equal(pt.leaves[1], 16);
	assert_int_equal(pa_at(&pt, 2 * GiB + 2 * MiB + 8), 5 * MiB + 8);
	assert_int_equal(pa_at(&pt, 2 * GiB + 2 * MiB - 8), 12 * MiB - 8);
	assert_int_equal(map(&pt4, 2 * GiB, 3 * MiB, &b, 0, 0), 0);
	assert_int_equal(pt4.leaves[0], 768);
	assert_int_equal(pt4.reserved, 0);
	for (uint64_t off = 0; off < 3 * MiB; off += 4096)
		assert_int_equal(pa_at(&pt4, 2 * GiB + off), pa_at(&pt, 2 * GiB + off));
	vmb_pt_fini(&pt);
	vmb_pt_fini(&pt4);
}

static void test_null_readonly(void **state)
{
	(void)state;
	struct vmb_pt pt;
	struct vmb_extent e = {.off = 0, .pa = 0, .size = 1 * MiB};
	struct vmb_backing b = vmb_soft_backing(&e, 1);
	struct vmb_pt_walk w;
	assert_int_equal(vmb_pt_init(&pt, &pool, VMB_PT_SIZES_ALL), 0);
	assert_int_equal(map(&pt, 0, 3 * GiB, NULL, 0, VMB_PT_OP_NULL), 0);
	assert_int_equal(pt.leaves[3], 3);
	assert_int_equal(vmb_pt_translate(&pt, 2 * GiB + 5, &w), 0);
	assert_true(w.null);
	assert_int_equal(map(&pt, 4 * GiB, 1 * MiB, &b, 0, VMB_PT_OP_READONLY), 0);
	assert_int_equal(vmb_pt_translate(&pt, 4 * GiB + 5, &w), 0);
	assert_false(w.writable);
	assert_false(w.null);
	/* punch a NULL hole out of a 1G NULL leaf: split to 2M, then 64K groups, all still NULL */
	clear(&pt, 1 * GiB + 3 * MiB, 4 * KiB);
	assert_int_equal(vmb_pt_translate(&pt, 1 * GiB + 3 * MiB, &w), -EFAULT);
	assert_int_equal(vmb_pt_translate(&pt, 1 * GiB + 3 * MiB + 4096, &w), 0);
	assert_true(w.null);
	assert_int_equal(w.page_size, VMB_PT_SIZE_4K);
	assert_int_equal(vmb_pt_translate(&pt, 1 * GiB + 3 * MiB + 64 * KiB, &w), 0);
	assert_int_equal(w.page_size, VMB_PT_SIZE_64K);
	vmb_pt_fini(&pt);
}

static void test_split_accounting(void **state)
{
	(void)state;
	struct vmb_pt pt;
	struct vmb_extent e = {.off = 0, .pa = 1 * GiB, .size = 1 * GiB};
	struct vmb_backing b = vmb_soft_backing(&e, 1);
	assert_int_equal(vmb_pt_init(&pt, &pool, VMB_PT_SIZES_ALL), 0);
	assert_int_equal(map(&pt, 1 * GiB, 1 * GiB, &b, 0, 0), 0);
	uint64_t alloc = vmb_pt_pool_in_use(&pool), res = pool.reserved;
	assert_int_equal(res, 513);
	/* the middle 4 KiB of the 1G leaf */
	clear(&pt, 1 * GiB + 512 * MiB, 4 * KiB);
	assert_int_equal(vmb_pt_pool_in_use(&pool), alloc + 2); /* one level-1 table, one level-0 table */
	assert_int_equal(pool.reserved, res - 2);
	assert_int_equal(pt.leaves[3], 0);
	assert_int_equal(pt.leaves[2], 511);
	assert_int_equal(pt.leaves[1], 31);
	assert_int_equal(pt.leaves[0], 15);
	for (uint64_t off = 0; off < 1 * GiB; off += 7 * MiB + 4096)
		if (off < 512 * MiB || off >= 512 * MiB + 4096)
			assert_int_equal(pa_at(&pt, 1 * GiB + off), 1 * GiB + off);
	assert_int_equal(pa_at(&pt, 1 * GiB + 512 * MiB + 4096), 1 * GiB + 512 * MiB + 4096);
	assert_int_equal(pa_at(&pt, 1 * GiB + 512 * MiB - 8), 1 * GiB + 512 * MiB - 8);
	/* MAP over it all again (overwrite): back to one 1G leaf, split tables freed */
	assert_int_equal(map(&pt, 1 * GiB, 1 * GiB, &b, 0, 0), 0);
	assert_int_equal(pt.leaves[3], 1);
	assert_int_equal(vmb_pt_pool_in_use(&pool), alloc);
	assert_int_equal(pool.reserved, res);
	/* clear everything: the root alone remains */
	clear(&pt, 0, 1ull << 47);
	assert_int_equal(vmb_pt_pool_in_use(&pool), 1);
	assert_int_equal(pool.reserved, 0);
	vmb_pt_fini(&pt);
}

/*
 * A pool with room for two 1 GiB leaves' reserves (513 pages each) and a little more: the
 * third 1 GiB leaf is refused (-ENOMEM, nothing changed) although far fewer pages are allocated
 * than the pool has, because a reserve counts as taken. Then every accepted leaf can still be
 * split down to 4 KiB (UNMAP never fails): the splits take their pages from the reserves.
 */
static void test_reserve_limits_huge_leaves(void **state)
{
	(void)state;
	struct vmb_pt_pool small;
	struct vmb_pt pt;
	struct vmb_extent e = {.off = 0, .pa = 4 * GiB, .size = 1 * GiB};
	struct vmb_backing b = vmb_soft_backing(&e, 1);
	const uint64_t pages = 2 + 2 * 513 + 20; /* root, a level-2 table, two reserves, 20 spare */
	assert_int_equal(vmb_pt_pool_init(&small, pages * VMB_PT_PAGE), 0);
	assert_int_equal(vmb_pt_init(&pt, &small, VMB_PT_SIZES_ALL), 0);

	unsigned int accepted = 0;
	for (unsigned int i = 1; i <= 8; i++) {
		uint64_t alloc = vmb_pt_pool_in_use(&small), res = small.reserved;
		struct vmb_pt_op op = {.kind = VMB_PT_OP_MAP, .start = i * GiB, .last = (i + 1) * GiB - 1, .backing = &b};
		struct vmb_pt_prep prep = {0};
		int err = vmb_pt_prepare(&pt, &op, &prep);
		if (!err)
			vmb_pt_commit(&pt, &op, &prep);
		vmb_pt_prep_release(&pt, &prep);
		assert_int_equal(vmb_pt_validate(&pt), 0);
		if (err) {
			assert_int_equal(err, -ENOMEM);
			assert_int_equal(vmb_pt_pool_in_use(&small), alloc);
			assert_int_equal(small.reserved, res);
			struct vmb_pt_walk w;
			assert_int_equal(vmb_pt_translate(&pt, i * GiB, &w), -EFAULT);
			break;
		}
		accepted++;
		assert_int_equal(psize_at(&pt, i * GiB), VMB_PT_SIZE_1G);
	}
	assert_int_equal(accepted, 2);
	assert_int_equal(pt.leaves[3], 2);
	assert_int_equal(vmb_pt_pool_in_use(&small), 2);
	assert_int_equal(small.reserved, 2 * 513);
	assert_true(small.allocated + small.reserved <= small.capacity);

	/* split each: 4 KiB out of the middle, then every other 2 MiB leaf down to 4 KiB */
	for (unsigned int i = 1; i <= accepted; i++) {
		clear(&pt, i * GiB + 512 * MiB, 4 * KiB);
		assert_int_equal(pa_at(&pt, i * GiB + 512 * MiB + 4 * KiB), 4 * GiB + 512 * MiB + 4 * KiB);
	}
	assert_int_equal(vmb_pt_pool_in_use(&small), 2 + 2 * 2);
	assert_int_equal(small.reserved, 2 * 511);
	for (unsigned int i = 1; i <= accepted; i++)
		for (uint64_t off = 0; off < 1 * GiB; off += 4 * MiB)
			if (off != 512 * MiB)
				clear(&pt, i * GiB + off + 8 * KiB, 4 * KiB);
	assert_int_equal(small.reserved, 2 * (511 - 255));
	assert_int_equal(vmb_pt_pool_in_use(&small), 2 + 2 * (2 + 255));
	assert_true(small.allocated + small.reserved <= small.capacity);
	assert_int_equal(pa_at(&pt, 2 * GiB + 4 * MiB + 4 * KiB), 4 * GiB + 4 * MiB + 4 * KiB);
	assert_int_equal(pa_at(&pt, 1 * GiB + 1 * GiB - 8), 4 * GiB + 1 * GiB - 8);
	assert_int_equal(vmb_pt_validate(&pt), 0);
	vmb_pt_fini(&pt);
	assert_int_equal(small.allocated, 0);
	assert_int_equal(small.reserved, 0);
	vmb_pt_pool_fini(&small);
}

static void test_prepare_failure(void **state)
{
	(void)state;
	struct vmb_pt pt;
	struct vmb_extent e = {.off = 0, .pa = 0, .size = 64 * MiB};
	struct vmb_backing b = vmb_soft_backing(&e, 1);
	struct vmb_pt_walk w;
	assert_int_equal(vmb_pt_init(&pt, &pool, VMB_PT_SIZE_4K | VMB_PT_SIZE_64K), 0);
	assert_int_equal(map(&pt, 0, 4 * MiB, &b, 0, 0), 0);
	uint64_t alloc = vmb_pt_pool_in_use(&pool), tables[4];
	memcpy(tables, pt.tables, sizeof(tables));
	for (uint32_t n = 1; n < 40; n++) {
		pool.fail_after = n;
		struct vmb_pt_op op = {.kind = VMB_PT_OP_MAP, .start = 1 * GiB, .last = 1 * GiB + 32 * MiB - 1, .backing = &b};
		struct vmb_pt_prep prep = {0};
		int err = vmb_pt_prepare(&pt, &op, &prep);
		pool.fail_after = 0;
		if (err) {
			assert_int_equal(err, -ENOMEM);
			vmb_pt_prep_release(&pt, &prep);
			assert_int_equal(vmb_pt_pool_in_use(&pool), alloc);
			assert_memory_equal(pt.tables, tables, sizeof(tables));
			assert_int_equal(vmb_pt_translate(&pt, 1 * GiB, &w), -EFAULT);
			assert_int_equal(vmb_pt_validate(&pt), 0);
			continue;
		}
		vmb_pt_commit(&pt, &op, &prep);
		vmb_pt_prep_release(&pt, &prep);
		assert_int_equal(vmb_pt_validate(&pt), 0);
		assert_int_equal(pa_at(&pt, 1 * GiB + 32 * MiB - 1), 32 * MiB - 1);
		print_message("prepare needed %u page allocations\n", n - 1);
		assert_int_equal(n - 1, 1 + 16); /* a level-1 table, sixteen level-0 tables (level 2 exists) */
		break;
	}
	vmb_pt_fini(&pt);
}

/* Two ops in one preparation: the second planned before the first commits. */
/* The table at @level on the way to @va, as a page index. */
static uint32_t table_at(struct vmb_pt *pt, uint64_t va, int level)
{
	uint32_t idx = pt->root;
	for (int k = 3; k > level; k--) {
		uint64_t e = pool.arena[(uint64_t)idx * 512 + ((va >> (12 + 9 * k)) & 511)];
		assert_true(e & VMB_PTE_VALID);
		idx = (uint32_t)((e & VMB_PTE_ADDR_MASK) >> 12);
	}
	return idx;
}

static uint64_t *entry_at(struct vmb_pt *pt, uint64_t va, int level)
{
	return &pool.arena[(uint64_t)table_at(pt, va, level) * 512 + ((va >> (12 + 9 * level)) & 511)];
}

#define CORRUPT(set_, undo_)                                                                     	do {                                                                                     		set_;                                                                            		assert_int_equal(vmb_pt_validate(&pt), -EUCLEAN);                                		undo_;                                                                           		assert_int_equal(vmb_pt_validate(&pt), 0);                                       	} while (0)

/* The page-table checker finds each corruption, and only while it is there. */
static void test_validate_finds_corruption(void **state)
{
	(void)state;
	struct vmb_pt pt;
	struct vmb_extent e = {.off = 0, .pa = 4 * GiB, .size = 16 * MiB};
	struct vmb_backing b = vmb_soft_backing(&e, 1);
	assert_int_equal(vmb_pt_init(&pt, &pool, VMB_PT_SIZES_ALL), 0);
	assert_int_equal(map(&pt, 0, 8 * KiB, &b, 0, 0), 0);          /* two 4K leaves */
	assert_int_equal(map(&pt, 64 * KiB, 64 * KiB, &b, 0, 0), 0);  /* a 64K group */
	assert_int_equal(map(&pt, 2 * MiB, 2 * MiB, &b, 0, 0), 0);    /* a 2M leaf */
	print_message("(the checker's complaints below are expected)\n");
	uint32_t l0 = table_at(&pt, 0, 0);
	uint64_t *four = entry_at(&pt, 0, 0), *spare = entry_at(&pt, 32 * KiB, 0);
	uint64_t *group = entry_at(&pt, 64 * KiB, 0), *huge = entry_at(&pt, 2 * MiB, 1);
	uint64_t *rootent = entry_at(&pt, 0, 3), *l1ent = entry_at(&pt, 0, 1);

	CORRUPT(*spare = VMB_PTE_WRITE, *spare = 0);                      /* bits without VALID */
	CORRUPT(*rootent |= VMB_PTE_LEAF, *rootent &= ~VMB_PTE_LEAF);     /* a leaf in the root */
	CORRUPT(*four |= VMB_PTE_LEAF, *four &= ~VMB_PTE_LEAF);           /* LEAF at level 0 */
	CORRUPT(group[5] += 4096, group[5] -= 4096);                      /* a broken 64K group */
	CORRUPT(for (int i = 0; i < 16; i++) group[i] += 4096, for (int i = 0; i < 16; i++) group[i] -= 4096);
	CORRUPT(*huge += 4096, *huge -= 4096);                            /* a misaligned 2M leaf */
	CORRUPT(*l1ent |= VMB_PTE_WRITE, *l1ent &= ~VMB_PTE_WRITE);       /* flags on a table entry */
	CORRUPT(pool.meta[l0].nvalid++, pool.meta[l0].nvalid--);
	CORRUPT(pool.meta[l0].pins++, pool.meta[l0].pins--);
	CORRUPT(pool.meta[l0].level = 1, pool.meta[l0].level = 0);
	CORRUPT((*spare = VMB_PTE_VALID | VMB_PTE_PS64 | 4 * GiB, pool.meta[l0].nvalid++), /* PS64 alone */
		(*spare = 0, pool.meta[l0].nvalid--));
	/* a table with no entry left, still linked */
	static uint64_t saved[512];
	uint64_t *t0 = &pool.arena[(uint64_t)l0 * 512];
	uint16_t nv = pool.meta[l0].nvalid;
	memcpy(saved, t0, sizeof(saved));
	CORRUPT((memset(t0, 0, sizeof(saved)), pool.meta[l0].nvalid = 0),
		(memcpy(t0, saved, sizeof(saved)), pool.meta[l0].nvalid = nv));
	CORRUPT(pt.tables[0]++, pt.tables[0]--);
	CORRUPT(pt.leaves[2]++, pt.leaves[2]--);
	CORRUPT(pt.reserved++, pt.reserved--);
	CORRUPT(pool.reserved += pool.capacity, pool.reserved -= pool.capacity);
	vmb_pt_fini(&pt);
}

static void test_two_ops_one_prep(void **state)
{
	(void)state;
	struct vmb_pt pt;
	struct vmb_extent e = {.off = 0, .pa = 0, .size = 4 * MiB};
	struct vmb_backing b = vmb_soft_backing(&e, 1);
	assert_int_equal(vmb_pt_init(&pt, &pool, VMB_PT_SIZES_ALL), 0);
	assert_int_equal(map(&pt, 0, 2 * MiB, &b, 4096, 0), 0); /* an existing level-0 table */
	struct vmb_pt_op ops[4] = {
		{.kind = VMB_PT_OP_MAP, .start = 0, .last = 4095, .backing = &b, .offset = 8192}, /* pins it */
		{.kind = VMB_PT_OP_CLEAR, .start = 0, .last = 2 * MiB - 1},                       /* empties it */
		{.kind = VMB_PT_OP_MAP, .start = 0, .last = 2 * MiB - 1, .backing = &b},          /* a 2M leaf over it */
		{.kind = VMB_PT_OP_MAP, .start = 0, .last = 2 * MiB - 1, .backing = &b, .offset = 4096}, /* 4K again */
	};
	struct vmb_pt_prep prep = {0};
	/* ops 0-2 alone: the pinned level-0 table stays and holds the 2 MiB page as 64 KiB pages */
	for (int i = 0; i < 3; i++)
		assert_int_equal(vmb_pt_prepare(&pt, &ops[i], &prep), 0);
	for (int i = 0; i < 3; i++)
		vmb_pt_commit(&pt, &ops[i], &prep);
	vmb_pt_prep_release(&pt, &prep);
	assert_int_equal(vmb_pt_validate(&pt), 0);
	assert_int_equal(psize_at(&pt, 4096), VMB_PT_SIZE_64K);
	assert_int_equal(pa_at(&pt, 2 * MiB - 8), 2 * MiB - 8);
	assert_int_equal(pt.tables[0], 1);
	assert_int_equal(pt.reserved, 0);
	/* all four: op 3 was prepared while the table existed (no page for it) and must find it */
	for (int i = 0; i < 4; i++)
		assert_int_equal(vmb_pt_prepare(&pt, &ops[i], &prep), 0);
	for (int i = 0; i < 4; i++)
		vmb_pt_commit(&pt, &ops[i], &prep);
	vmb_pt_prep_release(&pt, &prep);
	assert_int_equal(vmb_pt_validate(&pt), 0);
	assert_int_equal(pa_at(&pt, 8), 4096 + 8);
	assert_int_equal(psize_at(&pt, 8), VMB_PT_SIZE_4K);
	clear(&pt, 0, 1ull << 40);
	assert_int_equal(vmb_pt_pool_in_use(&pool), 1);
	vmb_pt_fini(&pt);
}

/*
 * One preparation holds MAPs of one range against two backings of different layouts (a MAP of a
 * BO whose move is pending: vm/bind.c map_moving, dev/device.h map_prepare), and only one of them
 * commits: whichever, it finds what it needs (huge leaves over tables the other linked, tables
 * the other did not count), and what the other prepared goes back at release. Layouts: 1G + 2M +
 * 64K + 4K leaves, 4K leaves only, 64K leaves; the range empty, or holding a 2M leaf or a
 * level-0 table that a CLEAR earlier in the preparation removes (as a bind's plan does).
 */
static void test_two_layouts_commit_one(void **state)
{
	(void)state;
	const uint64_t va = 2 * GiB, size = 1 * GiB + 2 * MiB + 64 * KiB + 4 * KiB;
	struct vmb_extent e[3] = {{.off = 0, .pa = 4 * GiB, .size = 2 * GiB},
				  {.off = 0, .pa = 4 * GiB + 4 * KiB, .size = 2 * GiB},
				  {.off = 0, .pa = 4 * GiB + 64 * KiB, .size = 2 * GiB}};
	struct vmb_backing b[3] = {vmb_soft_backing(&e[0], 1), vmb_soft_backing(&e[1], 1), vmb_soft_backing(&e[2], 1)};
	const uint64_t probes[] = {0, 12345, 1 * GiB + 8, 1 * GiB + 2 * MiB + 4100, size - 8};

	for (int pre = 0; pre < 3; pre++) {
		for (int x = 0; x < 3; x++) {
			for (int y = 0; y < 3; y++) {
				for (int which = 0; which < 2; which++) {
					struct vmb_pt pt;
					assert_int_equal(vmb_pt_init(&pt, &pool, VMB_PT_SIZES_ALL), 0);
					if (pre == 1)
						assert_int_equal(map(&pt, va, 2 * MiB, &b[0], 0, 0), 0);
					else if (pre == 2)
						assert_int_equal(map(&pt, va, 2 * MiB, &b[1], 0, 0), 0);
					struct vmb_pt_op clr = {.kind = VMB_PT_OP_CLEAR, .start = va, .last = va + 2 * MiB - 1};
					struct vmb_pt_op ops[2] = {
						{.kind = VMB_PT_OP_MAP, .flags = VMB_PT_OP_FRESH, .start = va,
						 .last = va + size - 1, .backing = &b[x]},
						{.kind = VMB_PT_OP_MAP, .flags = VMB_PT_OP_FRESH, .start = va,
						 .last = va + size - 1, .backing = &b[y]},
					};
					struct vmb_pt_prep prep = {0};
					if (pre)
						assert_int_equal(vmb_pt_prepare(&pt, &clr, &prep), 0);
					assert_int_equal(vmb_pt_prepare(&pt, &ops[0], &prep), 0);
					assert_int_equal(vmb_pt_prepare(&pt, &ops[1], &prep), 0);
					if (pre)
						vmb_pt_commit(&pt, &clr, &prep);
					vmb_pt_commit(&pt, &ops[which], &prep);
					vmb_pt_prep_release(&pt, &prep);
					assert_int_equal(vmb_pt_validate(&pt), 0);
					const struct vmb_extent *c = which ? &e[y] : &e[x];
					for (unsigned int k = 0; k < sizeof(probes) / sizeof(probes[0]); k++)
						assert_int_equal(pa_at(&pt, va + probes[k]), c->pa + probes[k]);
					uint64_t bytes = pt.leaves[0] * 4096 + pt.leaves[1] * 65536 +
							 pt.leaves[2] * (2 * MiB) + pt.leaves[3] * (1 * GiB);
					assert_int_equal(bytes, size);
					clear(&pt, 0, 1ull << 40);
					vmb_pt_fini(&pt);
					assert_int_equal(pool.allocated, 0);
					assert_int_equal(pool.reserved, 0);
				}
			}
		}
	}
}

/* Random maps and clears over a small window against a per-page model. */
static void test_random(void **state)
{
	(void)state;
	uint64_t seed = test_seed("pt random"), s = seed;
	enum { PAGES = 8192 }; /* 32 MiB window at 1 GiB - 16 MiB: crosses a 1G boundary */
	const uint64_t base = 1 * GiB - 16 * MiB;
	struct vmb_extent ext[4] = {
		{.off = 0, .pa = 64 * MiB, .size = 4 * MiB},
		{.off = 4 * MiB, .pa = 200 * MiB + 64 * KiB, .size = 2 * MiB},
		{.off = 6 * MiB, .pa = 16 * MiB, .size = 2 * MiB + 12 * KiB},
		{.off = 8 * MiB + 12 * KiB, .pa = 300 * MiB, .size = 24 * MiB},
	};
	struct vmb_backing b = vmb_soft_backing(ext, 4);
	assert_int_equal(b.size, 32 * MiB + 12 * KiB);
	static uint64_t model[PAGES]; /* 0 unmapped, 1 NULL, else pa + 2 */
	struct vmb_pt pt;
	memset(model, 0, sizeof(model));
	assert_int_equal(vmb_pt_init(&pt, &pool, VMB_PT_SIZES_ALL), 0);
	for (int step = 0; step < 3000; step++) {
		uint64_t g = rnd_below(&s, 3) == 0 ? 2 * MiB : rnd_below(&s, 2) ? 64 * KiB : 4 * KiB;
		uint64_t first = rnd_below(&s, PAGES * 4096 / g) * g / 4096;
		uint64_t n = (1 + rnd_below(&s, 4)) * g / 4096;
		if (first + n > PAGES)
			n = PAGES - first;
		uint64_t kind = rnd_below(&s, 4);
		if (kind == 0) {
			clear(&pt, base + first * 4096, n * 4096);
			for (uint64_t i = 0; i < n; i++)
				model[first + i] = 0;
		} else if (kind == 1) {
			assert_int_equal(map(&pt, base + first * 4096, n * 4096, NULL, 0, VMB_PT_OP_NULL), 0);
			for (uint64_t i = 0; i < n; i++)
				model[first + i] = 1;
		} else {
			uint64_t off = rnd_below(&s, (b.size - n * 4096) / 4096 + 1) * 4096;
			if (rnd_below(&s, 2))
				off &= ~(g - 1);
			assert_int_equal(map(&pt, base + first * 4096, n * 4096, &b, off, 0), 0);
			for (uint64_t i = 0; i < n; i++) {
				struct vmb_backing_cursor c;
				uint64_t contig;
				vmb_backing_seek(&c, &b, off + i * 4096);
				model[first + i] = vmb_backing_pa(&c, &contig) + 2;
			}
		}
		for (int k = 0; k < 16; k++) {
			uint64_t pg = rnd_below(&s, PAGES);
			struct vmb_pt_walk w;
			int err = vmb_pt_translate(&pt, base + pg * 4096 + 8, &w);
			if (model[pg] == 0) {
				assert_int_equal(err, -EFAULT);
			} else {
				assert_int_equal(err, 0);
				assert_int_equal(w.null, model[pg] == 1);
				if (model[pg] > 1)
					assert_int_equal(w.pa, model[pg] - 2 + 8);
			}
		}
	}
	clear(&pt, base, PAGES * 4096);
	assert_int_equal(vmb_pt_pool_in_use(&pool), 1);
	assert_int_equal(pool.reserved, 0);
	vmb_pt_fini(&pt);
}

/*
 * The walk cursor: a freed table's page is recycled, here as a table of another level; a clear
 * of the freed table's span must not land in it (the cursor drops freed tables). Neighbouring
 * ops start from the cursor's tables, and a clear that starts from one frees its ancestors left
 * empty, as a walk from the root does.
 */
/* A vm with every leaf size in the pool, and a backing of 64 MiB at 4 GiB in @e, @b. */
static void pt_at_4g(struct vmb_pt *pt, struct vmb_extent *e, struct vmb_backing *b)
{
	*e = (struct vmb_extent){.off = 0, .pa = 4 * GiB, .size = 64 * MiB};
	*b = vmb_soft_backing(e, 1);
	assert_int_equal(vmb_pt_init(pt, &pool, VMB_PT_SIZES_ALL), 0);
}

static void test_cursor_after_free(void **state)
{
	(void)state;
	struct vmb_pt pt;
	struct vmb_extent e;
	struct vmb_backing b;
	pt_at_4g(&pt, &e, &b);

	uint64_t a = 4 * GiB, far = 600 * GiB, far2 = 601 * GiB; /* far, far2: another root slot */
	assert_int_equal(map(&pt, a, 4 * KiB, &b, 0, 0), 0);
	assert_int_equal(vmb_pt_pool_in_use(&pool), 4);
	clear(&pt, a, 4 * KiB); /* frees a's tables of levels 0, 1, 2, the level 0 one first */
	assert_int_equal(vmb_pt_pool_in_use(&pool), 1);
	/* 2M leaves: the pages of a's level-2 and level-1 tables become far's, and a's level-0
	 * table's page becomes far2's level-1 table, its 2M leaf in entry 0 */
	assert_int_equal(map(&pt, far, 2 * MiB, &b, 0, 0), 0);
	assert_int_equal(map(&pt, far2, 2 * MiB, &b, 2 * MiB, 0), 0);
	assert_int_equal(pt.tables[0], 0);
	assert_int_equal(pt.tables[1], 2);
	clear(&pt, a, 4 * KiB); /* nothing mapped there: changes nothing */
	assert_int_equal(pt.leaves[2], 2);
	assert_int_equal(pa_at(&pt, far2 + 4 * KiB), 4 * GiB + 2 * MiB + 4 * KiB);
	struct vmb_pt_walk w;
	assert_int_equal(vmb_pt_translate(&pt, a, &w), -EFAULT);

	/* neighbouring ops in one table, then clears from the cursor's tables upwards */
	for (unsigned int i = 1; i < 20; i++)
		assert_int_equal(map(&pt, a + i * 4 * KiB, 4 * KiB, &b, i * 4 * KiB, 0), 0);
	assert_int_equal(pt.leaves[0], 19);
	assert_int_equal(pa_at(&pt, a + 7 * 4 * KiB), 4 * GiB + 7 * 4 * KiB);
	clear(&pt, a + 4 * KiB, 4 * KiB);
	clear(&pt, a + 8 * KiB, 18 * 4 * KiB);
	assert_int_equal(pt.leaves[0], 0);
	clear(&pt, far, 2 * MiB);
	clear(&pt, far2, 2 * MiB);
	assert_int_equal(vmb_pt_pool_in_use(&pool), 1);
	assert_int_equal(map(&pt, a + 2 * MiB, 64 * KiB, &b, 0, 0), 0);
	assert_int_equal(psize_at(&pt, a + 2 * MiB), VMB_PT_SIZE_64K);
	vmb_pt_fini(&pt);
}

/* A FRESH MAP (nothing mapped in its range: no clear first) between existing leaves, in leaves
 * of 4 KiB, 64 KiB and 2 MiB, maps and counts exactly as one with the clear. */
static void test_fresh_map(void **state)
{
	(void)state;
	struct vmb_pt pt;
	struct vmb_extent e;
	struct vmb_backing b;
	uint64_t a = 8 * GiB;
	pt_at_4g(&pt, &e, &b);
	assert_int_equal(map(&pt, a, 4 * KiB, &b, 0, 0), 0);
	assert_int_equal(map(&pt, a + 128 * KiB, 4 * KiB, &b, 0, 0), 0);
	assert_int_equal(map(&pt, a + 4 * KiB, 4 * KiB, &b, 4 * KiB, VMB_PT_OP_FRESH), 0);
	assert_int_equal(map(&pt, a + 64 * KiB, 64 * KiB, &b, 64 * KiB, VMB_PT_OP_FRESH), 0);
	assert_int_equal(map(&pt, a + 2 * MiB, 2 * MiB, &b, 2 * MiB, VMB_PT_OP_FRESH), 0);
	assert_int_equal(pt.leaves[0], 3);
	assert_int_equal(pt.leaves[1], 1);
	assert_int_equal(pt.leaves[2], 1);
	assert_int_equal(pa_at(&pt, a + 4 * KiB), 4 * GiB + 4 * KiB);
	assert_int_equal(psize_at(&pt, a + 64 * KiB), VMB_PT_SIZE_64K);
	assert_int_equal(pa_at(&pt, a + 2 * MiB + 8 * KiB), 4 * GiB + 2 * MiB + 8 * KiB);
	clear(&pt, a, 4 * MiB);
	assert_int_equal(pt.leaves[0] + pt.leaves[1] + pt.leaves[2], 0);
	/* into a hole the clear left: its level-0 table was freed, a new one comes */
	assert_int_equal(map(&pt, a + 8 * KiB, 8 * KiB, &b, 0, VMB_PT_OP_FRESH), 0);
	assert_int_equal(pt.leaves[0], 2);
	vmb_pt_fini(&pt);
}

/* A pool past 2 MiB: its arena is 2 MiB aligned (huge pages where THP allows), and tables
 * taken from the huge-page part (faulted in chunk by chunk as they leave the bump) map and
 * translate as any: 1100 level-0 tables, one 4 KiB leaf in each 2 MiB. */
static void test_huge_page_arena(void **state)
{
	(void)state;
	struct vmb_pt pt;
	struct vmb_extent e;
	struct vmb_backing b;
	assert_int_equal((uintptr_t)pool.arena % (2 * MiB), 0);
	pt_at_4g(&pt, &e, &b);
	for (uint64_t i = 0; i < 1100; i++)
		assert_int_equal(map(&pt, 4 * GiB + i * 2 * MiB, 4 * KiB, &b, (i % 16) * 4 * KiB, 0), 0);
	assert_true(pool.bump > 1024); /* past the first chunk and the second */
	assert_int_equal(pt.tables[0], 1100);
	for (uint64_t i = 0; i < 1100; i++)
		assert_int_equal(pa_at(&pt, 4 * GiB + i * 2 * MiB), 4 * GiB + (i % 16) * 4 * KiB);
	assert_int_equal(vmb_pt_validate(&pt), 0);
	clear(&pt, 4 * GiB, 1100 * 2 * MiB);
	assert_int_equal(pt.tables[0], 0);
	vmb_pt_fini(&pt);
}

/* A 4 KiB MAP at 512 GiB slot @slot (a root entry of its own: three new tables) or its clear. */
static int map_slot(struct vmb_pt *pt, uint64_t slot, const struct vmb_backing *b) { return map(pt, slot << 39, 4 * KiB, b, 0, 0); }
static void clear_slot(struct vmb_pt *pt, uint64_t slot) { clear(pt, slot << 39, 4 * KiB); }

/*
 * A vm's table cache (pt.h): the pages a vm frees stay in its cache, counted in `allocated`, and
 * its next MAP takes them without the pool. Whether a take or a reserve fails does not depend on
 * where the free pages are: pages in another vm's cache are reclaimed before -ENOMEM (a MAP
 * that needs tables, a 2 MiB leaf that needs only reserve), exactly as many MAPs fit as without
 * caches; fault injection (PT_PAGE) and fail_after fail a page although the cache has some; a
 * destroyed vm's cache goes back to the pool. Pool of 22 pages, two vms.
 */
static void test_table_cache(void **state)
{
	(void)state;
	struct vmb_pt_pool small;
	struct vmb_pt a, b;
	struct vmb_extent e = {.off = 0, .pa = 4 * GiB, .size = 4 * MiB};
	struct vmb_backing bk = vmb_soft_backing(&e, 1);
	assert_int_equal(vmb_pt_pool_init(&small, 22 * VMB_PT_PAGE), 0);
	assert_int_equal(vmb_pt_init(&a, &small, VMB_PT_SIZES_ALL), 0);
	for (uint64_t i = 1; i <= 4; i++)
		assert_int_equal(map_slot(&a, i, &bk), 0);
	assert_int_equal(vmb_pt_pool_in_use(&small), 1 + 4 * 3);
	for (uint64_t i = 1; i <= 4; i++)
		clear_slot(&a, i);
	/* 12 tables freed: the cache keeps 8, the pool gets 4 */
	assert_int_equal(a.cache.n, VMB_PT_CACHE);
	assert_int_equal(vmb_pt_pool_in_use(&small), 1);
	assert_int_equal(small.allocated, 1 + VMB_PT_CACHE);
	/* a MAP takes its three tables from the cache: nothing more out of the pool */
	assert_int_equal(map_slot(&a, 1, &bk), 0);
	assert_int_equal(a.cache.n, VMB_PT_CACHE - 3);
	assert_int_equal(small.allocated, 1 + VMB_PT_CACHE);
	clear_slot(&a, 1);
	assert_int_equal(a.cache.n, VMB_PT_CACHE);

	/* b: the free pages are 13 in the pool and 8 in a's cache; 22 - 2 roots = 20 pages for
	 * tables, 6 MAPs of 3, as without a cache; the 7th fails and changes nothing */
	assert_int_equal(vmb_pt_init(&b, &small, VMB_PT_SIZES_ALL), 0);
	unsigned int fit = 0;
	int err = 0;
	for (uint64_t i = 1; i <= 10 && !err; i++)
		if (!(err = map_slot(&b, i, &bk)))
			fit++;
	assert_int_equal(err, -ENOMEM);
	assert_int_equal(fit, 6);
	assert_int_equal(a.cache.n, 0); /* reclaimed */
	assert_int_equal(vmb_pt_pool_in_use(&small), 2 + 6 * 3);
	assert_int_equal(b.tables[2] + b.tables[1] + b.tables[0], 6 * 3);
	assert_true(small.allocated + small.reserved <= small.capacity);

	/* reserve: b's tables go to its cache (8) and the pool; a takes the pool's 12 for four
	 * MAPs; a 2 MiB leaf beside a's first 4 KiB one needs no table, only a reserve page, which
	 * only b's cache can give */
	for (uint64_t i = 1; i <= 6; i++)
		clear_slot(&b, i);
	assert_int_equal(b.cache.n, VMB_PT_CACHE);
	for (uint64_t i = 1; i <= 4; i++)
		assert_int_equal(map_slot(&a, i, &bk), 0);
	assert_int_equal(small.allocated, small.capacity);
	assert_int_equal(map(&a, (1ull << 39) + 2 * MiB, 2 * MiB, &bk, 2 * MiB, 0), 0);
	assert_int_equal(psize_at(&a, (1ull << 39) + 2 * MiB), VMB_PT_SIZE_2M);
	assert_int_equal(b.cache.n, 0);
	assert_int_equal(small.reserved, 1);
	assert_int_equal(vmb_pt_pool_in_use(&small), 2 + 4 * 3);

	/* injection: a's cache has pages, and still the armed page fails (the first and the third) */
	clear_slot(&a, 4);
	assert_int_equal(a.cache.n, 3);
	unsigned long injected = 0;
	for (unsigned long nth = 1; nth <= 3; nth += 2) {
		vmb_fault_arm(1u << VMB_SITE_PT_PAGE, nth, false, 0, NULL);
		assert_int_equal(map_slot(&a, 4, &bk), -ENOMEM);
		assert_int_equal(vmb_fault_arm(1u << VMB_SITE_PT_PAGE, 0, false, 0, &injected), 0);
		assert_int_equal(injected, 1);
		assert_int_equal(vmb_pt_pool_in_use(&small), 2 + 3 * 3);
	}
	__atomic_store_n(&small.fail_after, 1, __ATOMIC_RELAXED);
	assert_int_equal(map_slot(&a, 4, &bk), -ENOMEM);
	assert_int_equal(small.fail_after, 0);
	assert_int_equal(map_slot(&a, 4, &bk), 0);

	/* destroy: a's cache goes back with its tables; b's cache and root remain */
	clear_slot(&a, 4);
	assert_true(a.cache.n > 0);
	vmb_pt_fini(&a);
	assert_int_equal(small.allocated, 1 + b.cache.n);
	assert_int_equal(vmb_pt_pool_in_use(&small), 1);
	assert_int_equal(small.reserved, 0);
	vmb_pt_fini(&b);
	assert_int_equal(small.allocated, 0);
	vmb_pt_pool_fini(&small);
}

/* Three threads, a vm each, on a pool too small for all of them: the caches' reclaim runs
 * while their owners take and give (TSan builds check the locking); every MAP succeeds or fails
 * with -ENOMEM, the tables stay consistent, and the pool's count matches the tables at the end. */
#define CHURN_ROUNDS 2000
struct cache_churn {
	struct vmb_pt pt;
	struct vmb_pt_pool *pool;
	unsigned int ok, nomem, bad;
	pthread_barrier_t *start;
};

static void *cache_churn_thread(void *arg)
{
	struct cache_churn *c = arg;
	struct vmb_extent e = {.off = 0, .pa = 4 * GiB, .size = 4 * MiB};
	struct vmb_backing bk = vmb_soft_backing(&e, 1);
	pthread_barrier_wait(c->start);
	for (unsigned int round = 0; round < CHURN_ROUNDS; round++) {
		for (uint64_t i = 1; i <= 3; i++) {
			struct vmb_pt_op op = {.kind = VMB_PT_OP_MAP, .start = i << 39, .last = (i << 39) + 4 * KiB - 1,
					       .backing = &bk};
			struct vmb_pt_prep prep = {0};
			int err = vmb_pt_prepare(&c->pt, &op, &prep);
			if (!err)
				vmb_pt_commit(&c->pt, &op, &prep);
			vmb_pt_prep_release(&c->pt, &prep);
			c->ok += !err;
			c->nomem += err == -ENOMEM;
			c->bad += err && err != -ENOMEM; /* (vmb_pt_validate reads the pool's counters unlocked: at the end) */
		}
		struct vmb_pt_op op = {.kind = VMB_PT_OP_CLEAR, .start = 0, .last = (4ull << 39) - 1};
		struct vmb_pt_prep prep = {0};
		c->bad += vmb_pt_prepare(&c->pt, &op, &prep) != 0;
		vmb_pt_commit(&c->pt, &op, &prep);
		vmb_pt_prep_release(&c->pt, &prep);
		c->bad += c->pt.tables[0] + c->pt.tables[1] + c->pt.tables[2] != 0;
	}
	return NULL;
}

static void test_table_cache_threads(void **state)
{
	(void)state;
	struct vmb_pt_pool small;
	struct cache_churn c[3];
	pthread_t t[3];
	pthread_barrier_t start;
	assert_int_equal(pthread_barrier_init(&start, NULL, 3), 0);
	assert_int_equal(vmb_pt_pool_init(&small, 20 * VMB_PT_PAGE), 0); /* 3 roots + 17: not 3 x 9 */
	for (int i = 0; i < 3; i++) {
		memset(&c[i], 0, sizeof(c[i]));
		c[i].start = &start;
		assert_int_equal(vmb_pt_init(&c[i].pt, &small, VMB_PT_SIZES_ALL), 0);
	}
	for (int i = 0; i < 3; i++)
		assert_int_equal(pthread_create(&t[i], NULL, cache_churn_thread, &c[i]), 0);
	unsigned int ok = 0, nomem = 0;
	for (int i = 0; i < 3; i++) {
		assert_int_equal(pthread_join(t[i], NULL), 0);
		assert_int_equal(c[i].bad, 0);
		assert_int_equal(vmb_pt_validate(&c[i].pt), 0);
		ok += c[i].ok;
		nomem += c[i].nomem;
	}
	print_message("table cache, 3 threads: %u MAPs succeeded, %u -ENOMEM\n", ok, nomem);
	assert_int_equal(ok + nomem, 3 * CHURN_ROUNDS * 3);
	pthread_barrier_destroy(&start);
	assert_true(ok > 0);
	assert_int_equal(vmb_pt_pool_in_use(&small), 3); /* the roots */
	assert_int_equal(small.reserved, 0);
	for (int i = 0; i < 3; i++)
		vmb_pt_fini(&c[i].pt);
	assert_int_equal(small.allocated, 0);
	vmb_pt_pool_fini(&small);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_leaf_choice, setup, teardown),
		cmocka_unit_test_setup_teardown(test_extents_and_forced_4k, setup, teardown),
		cmocka_unit_test_setup_teardown(test_null_readonly, setup, teardown),
		cmocka_unit_test_setup_teardown(test_split_accounting, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reserve_limits_huge_leaves, setup, teardown),
		cmocka_unit_test_setup_teardown(test_prepare_failure, setup, teardown),
		cmocka_unit_test_setup_teardown(test_two_ops_one_prep, setup, teardown),
		cmocka_unit_test_setup_teardown(test_two_layouts_commit_one, setup, teardown),
		cmocka_unit_test_setup_teardown(test_validate_finds_corruption, setup, teardown),
		cmocka_unit_test_setup_teardown(test_random, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cursor_after_free, setup, teardown),
		cmocka_unit_test_setup_teardown(test_huge_page_arena, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fresh_map, setup, teardown),
		cmocka_unit_test(test_backing_forms),
		cmocka_unit_test(test_table_cache),
		cmocka_unit_test(test_table_cache_threads),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
