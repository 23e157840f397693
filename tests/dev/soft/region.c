/* SPDX-License-Identifier: MIT */
/*
 * Description: regions map a BO's own pages into their arena and never own or destroy them:
 * the arena shows the BO's pages at each extent (one extent or many, in a fragmented SYSTEM
 * region), two regions can show the same pages at once (a move in progress), freeing makes the
 * arena read zero there while the BO's pages keep their contents (no hole is punched), and a
 * failed allocation takes nothing.
 */
#include "lib/harness.h"

#include <errno.h>
#include <sys/mman.h>
#include <vmbind/types.h>

#include "dev/soft/region.h"

#define PG 4096ull

static uint64_t *new_host(uint64_t size, uint64_t tag)
{
	uint64_t *h = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	assert_true(h != MAP_FAILED);
	for (uint64_t i = 0; i < size / 8; i++)
		h[i] = tag + i;
	return h;
}

/* The arena shows @host's bytes at every extent, and a write through the arena reaches @host. */
static void check_shows(struct vmb_region *r, const struct vmb_extent *ext, unsigned int n, uint64_t *host)
{
	uint64_t size = 0;
	for (unsigned int i = 0; i < n; i++) {
		assert_int_equal(ext[i].off, size);
		uint64_t *a = vmb_region_ptr(r, ext[i].pa);
		for (uint64_t w = 0; w < ext[i].size / 8; w += 64)
			assert_int_equal(a[w], host[ext[i].off / 8 + w]);
		a[1] ^= 0xff;
		assert_int_equal(a[1], host[ext[i].off / 8 + 1]);
		a[1] ^= 0xff;
		size += ext[i].size;
	}
}

static void check_zero(struct vmb_region *r, const struct vmb_extent *ext, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++) {
		const uint64_t *a = vmb_region_ptr(r, ext[i].pa);
		for (uint64_t w = 0; w < ext[i].size / 8; w++)
			assert_int_equal(a[w], 0);
	}
}

static void test_region_maps_bo_pages(void **state)
{
	(void)state;
	struct vmb_region vram, sys;
	assert_int_equal(vmb_region_init(&vram, VMB_REGION_VRAM, 4 * MiB), 0);
	assert_int_equal(vmb_region_init(&sys, VMB_REGION_SYSTEM, 16 * PG), 0);

	/* fragment SYSTEM: 16 one-page BOs, then every fourth one freed */
	struct vmb_extent *fe[16];
	unsigned int fn[16];
	uint64_t *fh[16];
	for (unsigned int i = 0; i < 16; i++) {
		fh[i] = new_host(PG, (uint64_t)i << 32);
		assert_int_equal(vmb_region_alloc(&sys, PG, fh[i], &fe[i], &fn[i]), 0);
		check_shows(&sys, fe[i], fn[i], fh[i]);
	}
	for (unsigned int i = 1; i < 16; i += 4) {
		vmb_region_free(&sys, fe[i], fn[i]);
		check_zero(&sys, fe[i], fn[i]);
		assert_int_equal(fh[i][7], ((uint64_t)i << 32) + 7); /* the BO's pages are untouched */
	}

	/* a 4-page BO: one VRAM block, then (a move) four one-page SYSTEM runs over the same pages */
	uint64_t *h = new_host(4 * PG, 0xb0000000);
	struct vmb_extent *ve, *se, *xe;
	unsigned int vn, sn, xn;
	assert_int_equal(vmb_region_alloc(&vram, 4 * PG, h, &ve, &vn), 0);
	assert_int_equal(vn, 1);
	check_shows(&vram, ve, vn, h);
	assert_int_equal(vmb_region_alloc(&sys, 4 * PG, h, &se, &sn), 0);
	assert_int_equal(sn, 4);
	check_shows(&sys, se, sn, h);
	/* a write through one region's view is seen through the other's */
	uint64_t *sa = vmb_region_ptr(&sys, se[2].pa), *va = vmb_region_ptr(&vram, ve[0].pa);
	sa[3] = 0x1234;
	assert_int_equal(va[2 * PG / 8 + 3], 0x1234);
	assert_int_equal(h[2 * PG / 8 + 3], 0x1234);
	/* no room left: -ENOSPC, nothing taken */
	assert_int_equal(vmb_region_alloc(&sys, PG, h, &xe, &xn), -ENOSPC);
	assert_int_equal(vmb_region_free_bytes(&sys), 0);
	/* the move's old place goes: VRAM reads zero there, the pages keep their contents */
	vmb_region_free(&vram, ve, vn);
	check_zero(&vram, ve, vn);
	assert_int_equal(h[2 * PG / 8 + 3], 0x1234);
	check_shows(&sys, se, sn, h);
	assert_int_equal(vmb_region_free_bytes(&vram), 4 * MiB);
	assert_int_equal(vmb_region_validate(&vram), 0);
	assert_int_equal(vmb_region_validate(&sys), 0);

	/* the freed place is reused by another BO: it shows that BO's pages, not the old ones */
	uint64_t *h2 = new_host(4 * PG, 0xc0000000);
	struct vmb_extent *ve2;
	unsigned int vn2;
	assert_int_equal(vmb_region_alloc(&vram, 4 * PG, h2, &ve2, &vn2), 0);
	check_shows(&vram, ve2, vn2, h2);
	assert_int_equal(h[2 * PG / 8 + 3], 0x1234);

	vmb_region_free(&vram, ve2, vn2);
	vmb_region_free(&sys, se, sn);
	check_zero(&sys, se, sn);
	free(ve);
	free(ve2);
	free(se);
	for (unsigned int i = 0; i < 16; i++) {
		if (i % 4 != 1)
			vmb_region_free(&sys, fe[i], fn[i]);
		free(fe[i]);
		munmap(fh[i], PG);
	}
	assert_int_equal(vmb_region_free_bytes(&sys), 16 * PG);
	assert_int_equal(vmb_region_validate(&sys), 0);
	munmap(h, 4 * PG);
	munmap(h2, 4 * PG);
	vmb_region_fini(&sys);
	vmb_region_fini(&vram);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_region_maps_bo_pages),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
