/* SPDX-License-Identifier: MIT */
#include "dev/soft/region.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <vmbind/types.h>

#include "core/alloc.h"

#define VRAM_MIN_BLOCK 4096ull
#define VRAM_MAX_EXTENTS 4096u
/* PROT_NONE pages before and after the arena: no mapping inside it merges with one outside */
#define ARENA_GUARD 4096ull
#define ANON_FLAGS (MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE)

/* Make [off, off + len) of the arena free address space again: anonymous memory, reading zero. */
static int arena_reset(struct vmb_region *r, uint64_t off, uint64_t len)
{
	void *p = mmap(r->cpu + off, len, PROT_READ | PROT_WRITE, ANON_FLAGS | MAP_FIXED, -1, 0);
	return p == MAP_FAILED ? -ENOMEM : 0;
}

/*
 * Show the @len bytes of shared memory at @src (a BO's pages) at arena offset @off: a second
 * mapping of the same pages (mremap with old size 0), over what was there.
 */
static int arena_alias(struct vmb_region *r, uint64_t off, const void *src, uint64_t len)
{
	if (vmb_map_should_fail())
		return -ENOMEM;
	void *p = mremap((void *)(uintptr_t)src, 0, len, MREMAP_MAYMOVE | MREMAP_FIXED, r->cpu + off);
	return p == MAP_FAILED ? -ENOMEM : 0;
}

/* End of the run of extents from @i that are contiguous both physically and in the BO. */
static unsigned int run_end(const struct vmb_extent *ext, unsigned int n, unsigned int i)
{
	unsigned int j = i + 1;
	while (j < n && ext[j].pa == ext[j - 1].pa + ext[j - 1].size && ext[j].off == ext[j - 1].off + ext[j - 1].size)
		j++;
	return j;
}

static uint64_t run_size(const struct vmb_extent *ext, unsigned int i, unsigned int j)
{
	return ext[j - 1].off + ext[j - 1].size - ext[i].off;
}

/* Take the BO's pages out of the arena at @ext (best effort: see region.h). */
static void arena_unmap(struct vmb_region *r, const struct vmb_extent *ext, unsigned int n)
{
	for (unsigned int i = 0, j; i < n; i = j) {
		j = run_end(ext, n, i);
		(void)arena_reset(r, vmb_pa_offset(ext[i].pa), run_size(ext, i, j));
	}
}

/* Put the pages of @host into the arena at @ext; on failure none of them stays there. */
static int arena_map(struct vmb_region *r, const struct vmb_extent *ext, unsigned int n, const void *host)
{
	for (unsigned int i = 0, j; i < n; i = j) {
		j = run_end(ext, n, i);
		if (arena_alias(r, vmb_pa_offset(ext[i].pa), (const uint8_t *)host + ext[i].off, run_size(ext, i, j))) {
			arena_unmap(r, ext, j);
			return -ENOMEM;
		}
	}
	return 0;
}

int vmb_region_init(struct vmb_region *r, uint32_t id, uint64_t capacity)
{
	int err;

	r->id = id;
	r->capacity = capacity;
	r->min_alignment = 4096;
	r->aperture = id == VMB_REGION_VRAM ? VMB_PA_APERTURE_VRAM : VMB_PA_APERTURE_SYSTEM;
	if (capacity == 0 || capacity % 4096 || capacity > VMB_PA_OFFSET_MASK)
		return -EINVAL;
	uint8_t *res = mmap(NULL, capacity + 2 * ARENA_GUARD, PROT_NONE, ANON_FLAGS, -1, 0);
	if (res == MAP_FAILED)
		return -ENOMEM;
	r->cpu = res + ARENA_GUARD;
	if (arena_reset(r, 0, capacity)) {
		err = -ENOMEM;
		goto err_map;
	}
	if (id == VMB_REGION_VRAM)
		err = vmb_buddy_init(&r->buddy, capacity, VRAM_MIN_BLOCK);
	else
		err = vmb_pages_init(&r->pages, capacity);
	if (err)
		goto err_map;
	pthread_mutex_init(&r->lock, NULL);
	return 0;

err_map:
	munmap(res, capacity + 2 * ARENA_GUARD);
	return err;
}

void vmb_region_fini(struct vmb_region *r)
{
	if (r->id == VMB_REGION_VRAM)
		vmb_buddy_fini(&r->buddy);
	else
		vmb_pages_fini(&r->pages);
	munmap(r->cpu - ARENA_GUARD, r->capacity + 2 * ARENA_GUARD);
	pthread_mutex_destroy(&r->lock);
}

uint64_t vmb_region_free_bytes(struct vmb_region *r)
{
	pthread_mutex_lock(&r->lock);
	uint64_t f = r->id == VMB_REGION_VRAM ? r->buddy.free_bytes : r->pages.free_pages * 4096;
	pthread_mutex_unlock(&r->lock);
	return f;
}

static int alloc_vram(struct vmb_region *r, uint64_t size, struct vmb_extent **ext, unsigned int *n)
{
	struct vmb_buddy_block *blocks = vmb_malloc(VRAM_MAX_EXTENTS * sizeof(*blocks));
	if (!blocks)
		return -ENOMEM;
	pthread_mutex_lock(&r->lock);
	int nb = vmb_buddy_alloc_range(&r->buddy, size, blocks, VRAM_MAX_EXTENTS);
	pthread_mutex_unlock(&r->lock);
	if (nb < 0) {
		free(blocks);
		return nb;
	}
	struct vmb_extent *e = vmb_malloc((size_t)nb * sizeof(*e));
	if (!e) {
		pthread_mutex_lock(&r->lock);
		vmb_buddy_free_range(&r->buddy, blocks, (unsigned int)nb);
		pthread_mutex_unlock(&r->lock);
		free(blocks);
		return -ENOMEM;
	}
	uint64_t off = 0;
	for (int i = 0; i < nb; i++) {
		e[i].off = off;
		e[i].pa = vmb_pa(r->aperture, blocks[i].offset);
		e[i].size = blocks[i].size;
		off += blocks[i].size;
	}
	free(blocks);
	*ext = e;
	*n = (unsigned int)nb;
	return 0;
}

static int alloc_system(struct vmb_region *r, uint64_t size, struct vmb_extent **ext, unsigned int *n)
{
	struct vmb_page_run *runs = NULL;
	pthread_mutex_lock(&r->lock);
	int nr = vmb_pages_alloc(&r->pages, size / 4096, &runs);
	pthread_mutex_unlock(&r->lock);
	if (nr < 0)
		return nr;
	struct vmb_extent *e = vmb_malloc((size_t)nr * sizeof(*e));
	if (!e) {
		pthread_mutex_lock(&r->lock);
		vmb_pages_free(&r->pages, runs, (unsigned int)nr);
		pthread_mutex_unlock(&r->lock);
		free(runs);
		return -ENOMEM;
	}
	uint64_t off = 0;
	for (int i = 0; i < nr; i++) {
		e[i].off = off;
		e[i].pa = vmb_pa(r->aperture, runs[i].first * 4096);
		e[i].size = runs[i].count * 4096;
		off += e[i].size;
	}
	free(runs);
	*ext = e;
	*n = (unsigned int)nr;
	return 0;
}

static void free_extents(struct vmb_region *r, const struct vmb_extent *ext, unsigned int n)
{
	pthread_mutex_lock(&r->lock);
	for (unsigned int i = 0; i < n; i++) {
		uint64_t off = vmb_pa_offset(ext[i].pa);
		if (r->id == VMB_REGION_VRAM) {
			/* extents are whole buddy blocks: size is a power of two multiple of the min block */
			unsigned int order = (unsigned int)__builtin_ctzll(ext[i].size / VRAM_MIN_BLOCK);
			vmb_buddy_free(&r->buddy, off, order);
		} else {
			struct vmb_page_run run = {.first = off / 4096, .count = ext[i].size / 4096};
			vmb_pages_free(&r->pages, &run, 1);
		}
	}
	pthread_mutex_unlock(&r->lock);
}

int vmb_region_alloc(struct vmb_region *r, uint64_t size, const void *host, struct vmb_extent **ext,
		     unsigned int *n)
{
	if (size == 0 || size % r->min_alignment)
		return -EINVAL;
	int err = r->id == VMB_REGION_VRAM ? alloc_vram(r, size, ext, n) : alloc_system(r, size, ext, n);
	if (err)
		return err;
	/* nobody else knows these extents yet: map the BO's pages there outside the lock */
	err = arena_map(r, *ext, *n, host);
	if (err) {
		free_extents(r, *ext, *n);
		free(*ext);
		*ext = NULL;
		*n = 0;
	}
	return err;
}

void vmb_region_free(struct vmb_region *r, const struct vmb_extent *ext, unsigned int n)
{
	arena_unmap(r, ext, n);
	free_extents(r, ext, n);
}

int vmb_region_validate(struct vmb_region *r)
{
	pthread_mutex_lock(&r->lock);
	int err = r->id == VMB_REGION_VRAM ? vmb_buddy_validate(&r->buddy) : vmb_pages_validate(&r->pages);
	pthread_mutex_unlock(&r->lock);
	return err;
}
