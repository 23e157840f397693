/* SPDX-License-Identifier: MIT */
/*
 * Page-granular allocator for the SYSTEM region: a bitmap of 4 KiB pages over [0, size). An
 * allocation is a list of runs of consecutive pages; it prefers long runs (next-fit from a
 * rotating hint, taking whole free runs) so that large mappings can still use large pages, but
 * any free pages will do: it fails only when fewer than the asked pages are free.
 *
 * Locking: none inside; the region owning it holds its lock.
 */
#ifndef VMB_DEV_SOFT_PAGES_H
#define VMB_DEV_SOFT_PAGES_H

#include <stdint.h>

struct vmb_page_run {
	uint64_t first; /* page index */
	uint64_t count;
};

struct vmb_pages {
	uint64_t npages;
	uint64_t free_pages;
	uint64_t hint;   /* next-fit cursor (page index) */
	uint64_t *bitmap; /* 1 = allocated */
};

int vmb_pages_init(struct vmb_pages *p, uint64_t size); /* size multiple of 4096; 0, -EINVAL, -ENOMEM */
void vmb_pages_fini(struct vmb_pages *p);
/*
 * @count pages. On success returns the number of runs (> 0) in *@runs (malloc'd, caller frees),
 * sorted by nothing in particular (allocation order = BO order). -ENOSPC (too few free pages:
 * nothing taken), -ENOMEM, -EINVAL.
 */
int vmb_pages_alloc(struct vmb_pages *p, uint64_t count, struct vmb_page_run **runs);
void vmb_pages_free(struct vmb_pages *p, const struct vmb_page_run *runs, unsigned int n);
int vmb_pages_validate(const struct vmb_pages *p); /* 0 or -EUCLEAN: free_pages matches bitmap */

#endif
