/* SPDX-License-Identifier: MIT */
#include "mem/region.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <vmbind/types.h>

#include "core/alloc.h"

#define VRAM_MIN_BLOCK 4096ull
#define VRAM_MAX_EXTENTS 4096u

int vmb_region_init(struct vmb_region *r, uint32_t id, uint64_t capacity)
{
	int err;

	r->id = id;
	r->capacity = capacity;
	r->min_alignment = 4096;
	r->aperture = id == VMB_REGION_VRAM ? VMB_PA_APERTURE_VRAM : VMB_PA_APERTURE_SYSTEM;
	if (capacity == 0 || capacity % 4096 || capacity > VMB_PA_OFFSET_MASK)
		return -EINVAL;
	r->memfd = memfd_create(id == VMB_REGION_VRAM ? "vmbind-vram" : "vmbind-system", MFD_CLOEXEC);
	if (r->memfd < 0)
		return -errno;
	if (ftruncate(r->memfd, (off_t)capacity) < 0) {
		err = -errno;
		goto err_fd;
	}
	r->cpu = mmap(NULL, capacity, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, r->memfd, 0);
	if (r->cpu == MAP_FAILED) {
		err = -ENOMEM;
		goto err_fd;
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
	munmap(r->cpu, capacity);
err_fd:
	close(r->memfd);
	return err;
}

void vmb_region_fini(struct vmb_region *r)
{
	if (r->id == VMB_REGION_VRAM)
		vmb_buddy_fini(&r->buddy);
	else
		vmb_pages_fini(&r->pages);
	munmap(r->cpu, r->capacity);
	close(r->memfd);
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

int vmb_region_alloc(struct vmb_region *r, uint64_t size, struct vmb_extent **ext, unsigned int *n)
{
	if (size == 0 || size % r->min_alignment)
		return -EINVAL;
	/* new BO memory reads as zero: vmb_region_free() punched the pages out */
	return r->id == VMB_REGION_VRAM ? alloc_vram(r, size, ext, n) : alloc_system(r, size, ext, n);
}

void vmb_region_free(struct vmb_region *r, const struct vmb_extent *ext, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++) {
		/* Drop the contents (and the host memory behind them): the next owner reads zero. */
		if (fallocate(r->memfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			      (off_t)vmb_pa_offset(ext[i].pa), (off_t)ext[i].size) < 0)
			memset(vmb_region_ptr(r, ext[i].pa), 0, ext[i].size);
	}
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

int vmb_region_validate(struct vmb_region *r)
{
	pthread_mutex_lock(&r->lock);
	int err = r->id == VMB_REGION_VRAM ? vmb_buddy_validate(&r->buddy) : vmb_pages_validate(&r->pages);
	pthread_mutex_unlock(&r->lock);
	return err;
}
