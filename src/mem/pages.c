/* SPDX-License-Identifier: MIT */
/*
 * Page allocator for the SYSTEM region (see pages.h): one bit per 4 KiB page, 1 = allocated.
 * An allocation walks free runs next-fit from a rotating hint, taking whole runs until it has
 * enough, so a fresh or lightly used region gives long runs (and large GPU pages).
 */
#include "mem/pages.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/alloc.h"

#define WORD_BITS 64u

static bool bit(const struct vmb_pages *p, uint64_t i) { return p->bitmap[i / WORD_BITS] >> (i % WORD_BITS) & 1; }

/* Set (value = true) or clear bits [first, first + count). */
static void set_range(struct vmb_pages *p, uint64_t first, uint64_t count, bool value)
{
	while (count) {
		uint64_t w = first / WORD_BITS, b = first % WORD_BITS;
		uint64_t n = WORD_BITS - b < count ? WORD_BITS - b : count;
		uint64_t mask = (n == WORD_BITS ? ~0ull : ((1ull << n) - 1)) << b;
		if (value)
			p->bitmap[w] |= mask;
		else
			p->bitmap[w] &= ~mask;
		first += n;
		count -= n;
	}
}

/* First index >= i (< npages) whose bit equals @value, or npages. Word at a time. */
static uint64_t find(const struct vmb_pages *p, uint64_t i, bool value)
{
	while (i < p->npages) {
		uint64_t w = p->bitmap[i / WORD_BITS];
		if (!value)
			w = ~w;
		w &= ~0ull << (i % WORD_BITS);
		if (w) {
			uint64_t r = (i & ~(uint64_t)(WORD_BITS - 1)) + (uint64_t)__builtin_ctzll(w);
			return r < p->npages ? r : p->npages;
		}
		i = (i & ~(uint64_t)(WORD_BITS - 1)) + WORD_BITS;
	}
	return p->npages;
}

int vmb_pages_init(struct vmb_pages *p, uint64_t size)
{
	if (!size || size % 4096)
		return -EINVAL;
	p->npages = size / 4096;
	p->free_pages = p->npages;
	p->hint = 0;
	p->bitmap = calloc((p->npages + WORD_BITS - 1) / WORD_BITS, sizeof(uint64_t));
	return p->bitmap ? 0 : -ENOMEM;
}

void vmb_pages_fini(struct vmb_pages *p)
{
	free(p->bitmap);
	p->bitmap = NULL;
}

int vmb_pages_alloc(struct vmb_pages *p, uint64_t count, struct vmb_page_run **runs)
{
	struct vmb_page_run *r = NULL;
	unsigned int n = 0, cap = 0;
	uint64_t left = count, i = p->hint;
	bool wrapped = false;

	if (!count)
		return -EINVAL;
	if (count > p->free_pages)
		return -ENOSPC;
	while (left) {
		uint64_t start = find(p, i, false);
		if (start == p->npages) {
			/* free_pages >= count guarantees the wrap finds the rest */
			if (wrapped)
				break;
			wrapped = true;
			i = 0;
			continue;
		}
		uint64_t end = find(p, start, true);
		uint64_t len = end - start < left ? end - start : left;
		if (n == cap) {
			unsigned int ncap = cap ? cap * 2 : 4;
			struct vmb_page_run *nr = vmb_realloc(r, ncap * sizeof(*nr));
			if (!nr) {
				vmb_pages_free(p, r, n);
				free(r);
				return -ENOMEM;
			}
			r = nr;
			cap = ncap;
		}
		set_range(p, start, len, true);
		p->free_pages -= len;
		r[n++] = (struct vmb_page_run){.first = start, .count = len};
		left -= len;
		i = start + len;
	}
	if (left) { /* cannot happen while free_pages is right; be safe */
		vmb_pages_free(p, r, n);
		free(r);
		return -ENOSPC;
	}
	p->hint = i >= p->npages ? 0 : i;
	*runs = r;
	return (int)n;
}

void vmb_pages_free(struct vmb_pages *p, const struct vmb_page_run *runs, unsigned int n)
{
	for (unsigned int k = 0; k < n; k++) {
		for (uint64_t i = runs[k].first; i < runs[k].first + runs[k].count; i++) {
			if (!bit(p, i)) {
				fprintf(stderr, "pages: double free of page %llu\n", (unsigned long long)i);
				abort();
			}
		}
		set_range(p, runs[k].first, runs[k].count, false);
		p->free_pages += runs[k].count;
	}
}

int vmb_pages_validate(const struct vmb_pages *p)
{
	uint64_t used = 0, words = (p->npages + WORD_BITS - 1) / WORD_BITS;
	for (uint64_t w = 0; w < words; w++)
		used += (uint64_t)__builtin_popcountll(p->bitmap[w]);
	if (p->npages % WORD_BITS && (p->bitmap[words - 1] >> (p->npages % WORD_BITS))) {
		fprintf(stderr, "pages: bits set past the last page\n");
		return -EUCLEAN;
	}
	if (used != p->npages - p->free_pages || p->hint >= p->npages) {
		fprintf(stderr, "pages: %llu pages allocated in the bitmap, accounting says %llu\n",
			(unsigned long long)used, (unsigned long long)(p->npages - p->free_pages));
		return -EUCLEAN;
	}
	return 0;
}
