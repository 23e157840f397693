/* SPDX-License-Identifier: MIT */
/*
 * Page allocator for the SYSTEM region: one bit per 4 KiB page, 1 = allocated, bits past npages
 * always 0. An allocation scans next-fit from the hint to the end and then from 0 up to the hint
 * (each page looked at once), taking whole free runs until it has enough (the last one partial).
 * The runs are gathered first and the bits set only when the array is complete, so a failed
 * array allocation leaves the bitmap as it was. Scans and updates go a 64-bit word at a time.
 */
#include "dev/soft/pages.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/alloc.h"

#define PAGE_SIZE 4096u
#define WORD_BITS 64u

static uint64_t nwords(uint64_t npages)
{
	return (npages + WORD_BITS - 1) / WORD_BITS;
}

/* Mask of bits [lo, hi) of one word, 0 <= lo < hi <= 64. */
static uint64_t word_mask(unsigned int lo, unsigned int hi)
{
	uint64_t upper = hi == WORD_BITS ? ~0ull : (1ull << hi) - 1;
	return upper & (~0ull << lo);
}

/*
 * First page in [from, limit) whose bit is @set (limit <= npages), or limit. @set == false finds
 * a free page, @set == true the end of a free run.
 */
static uint64_t find_bit(const struct vmb_pages *p, uint64_t from, uint64_t limit, bool set)
{
	if (from >= limit)
		return limit;
	uint64_t w = from / WORD_BITS;
	uint64_t bits = p->bitmap[w] ^ (set ? 0 : ~0ull);

	bits &= ~0ull << (from % WORD_BITS);
	while (!bits) {
		if (++w * WORD_BITS >= limit)
			return limit;
		bits = p->bitmap[w] ^ (set ? 0 : ~0ull);
	}
	uint64_t r = w * WORD_BITS + (uint64_t)__builtin_ctzll(bits);
	return r < limit ? r : limit;
}

/*
 * One word's part of the bit range [*first, end): returns the mask of those bits in word *w
 * and moves *first to the start of the next word (or to end).
 */
static uint64_t range_step(uint64_t *first, uint64_t end, uint64_t *w)
{
	*w = *first / WORD_BITS;
	unsigned int lo = (unsigned int)(*first % WORD_BITS);
	unsigned int hi = end - *w * WORD_BITS >= WORD_BITS ? WORD_BITS : (unsigned int)(end % WORD_BITS);
	*first = *w * WORD_BITS + hi;
	return word_mask(lo, hi);
}

/* Set (or clear) bits [first, first + count). */
static void update_range(struct vmb_pages *p, uint64_t first, uint64_t count, bool set)
{
	uint64_t end = first + count, w;

	while (first < end) {
		uint64_t mask = range_step(&first, end, &w);
		if (set)
			p->bitmap[w] |= mask;
		else
			p->bitmap[w] &= ~mask;
	}
}

/* Whether every bit of [first, first + count) is set. */
static bool range_all_set(const struct vmb_pages *p, uint64_t first, uint64_t count)
{
	uint64_t end = first + count, w;

	while (first < end) {
		uint64_t mask = range_step(&first, end, &w);
		if ((p->bitmap[w] & mask) != mask)
			return false;
	}
	return true;
}

int vmb_pages_init(struct vmb_pages *p, uint64_t size)
{
	if (!p || size == 0 || size % PAGE_SIZE)
		return -EINVAL;
	uint64_t npages = size / PAGE_SIZE;

	p->bitmap = vmb_calloc((size_t)nwords(npages), sizeof(*p->bitmap));
	if (!p->bitmap)
		return -ENOMEM;
	p->npages = npages;
	p->free_pages = npages;
	p->hint = 0;
	return 0;
}

void vmb_pages_fini(struct vmb_pages *p)
{
	free(p->bitmap);
	p->bitmap = NULL;
	p->npages = 0;
	p->free_pages = 0;
	p->hint = 0;
}

struct run_list {
	struct vmb_page_run *runs;
	size_t n, cap;
};

static int run_push(struct run_list *l, uint64_t first, uint64_t count)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 8;
		if (cap > INT_MAX)
			cap = INT_MAX;
		if (cap <= l->n)
			return -ENOSPC; /* more runs than the int result can count */
		struct vmb_page_run *r = vmb_realloc(l->runs, cap * sizeof(*r));
		if (!r)
			return -ENOMEM;
		l->runs = r;
		l->cap = cap;
	}
	l->runs[l->n].first = first;
	l->runs[l->n].count = count;
	l->n++;
	return 0;
}

/* Gather free runs of [from, limit) into @l until *@left pages are covered. */
static int gather(const struct vmb_pages *p, uint64_t from, uint64_t limit, uint64_t *left,
		  struct run_list *l)
{
	while (*left && from < limit) {
		uint64_t start = find_bit(p, from, limit, false);
		if (start == limit)
			break;
		uint64_t end = find_bit(p, start, limit, true);
		uint64_t take = end - start < *left ? end - start : *left;
		int err = run_push(l, start, take);
		if (err)
			return err;
		*left -= take;
		from = end;
	}
	return 0;
}

int vmb_pages_alloc(struct vmb_pages *p, uint64_t count, struct vmb_page_run **runs)
{
	if (!p || !p->bitmap || !runs || count == 0)
		return -EINVAL;
	if (count > p->free_pages)
		return -ENOSPC;

	struct run_list l = {0};
	uint64_t left = count;
	uint64_t hint = p->hint < p->npages ? p->hint : 0;
	int err = gather(p, hint, p->npages, &left, &l);

	if (!err && left)
		err = gather(p, 0, hint, &left, &l); /* wrap once */
	if (!err && left) {
		/* free_pages says there are enough: the accounting is broken */
		fprintf(stderr, "vmb_pages_alloc: %" PRIu64 " pages short although free_pages is %" PRIu64 "\n",
			left, p->free_pages);
		assert(!"vmb_pages_alloc: free_pages disagrees with the bitmap");
		err = -ENOSPC;
	}
	if (err) {
		free(l.runs);
		return err;
	}

	for (size_t i = 0; i < l.n; i++)
		update_range(p, l.runs[i].first, l.runs[i].count, true);
	p->free_pages -= count;
	const struct vmb_page_run *last = &l.runs[l.n - 1];
	p->hint = last->first + last->count;
	if (p->hint >= p->npages)
		p->hint = 0;
	*runs = l.runs;
	return (int)l.n;
}

void vmb_pages_free(struct vmb_pages *p, const struct vmb_page_run *runs, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++) {
		uint64_t first = runs[i].first, count = runs[i].count;
		bool ok = count > 0 && first < p->npages && count <= p->npages - first &&
			  range_all_set(p, first, count);

		if (!ok) {
			fprintf(stderr, "vmb_pages_free: run %" PRIu64 "+%" PRIu64
				" is not allocated (double free or out of range)\n", first, count);
			assert(!"vmb_pages_free of pages that are not allocated");
			continue;
		}
		update_range(p, first, count, false);
		p->free_pages += count;
	}
}

int vmb_pages_validate(const struct vmb_pages *p)
{
	if (!p->bitmap) {
		fprintf(stderr, "vmb_pages_validate: not initialised\n");
		return -EUCLEAN;
	}
	uint64_t words = nwords(p->npages), used = 0;

	for (uint64_t w = 0; w < words; w++)
		used += (uint64_t)__builtin_popcountll(p->bitmap[w]);
	if (p->npages % WORD_BITS && p->bitmap[words - 1] >> (p->npages % WORD_BITS)) {
		fprintf(stderr, "vmb_pages_validate: bits set past page %" PRIu64 "\n", p->npages);
		return -EUCLEAN;
	}
	if (p->free_pages > p->npages || used != p->npages - p->free_pages) {
		fprintf(stderr, "vmb_pages_validate: %" PRIu64 " pages allocated in the bitmap, "
			"free_pages %" PRIu64 " of %" PRIu64 "\n", used, p->free_pages, p->npages);
		return -EUCLEAN;
	}
	if (p->hint >= p->npages) {
		fprintf(stderr, "vmb_pages_validate: hint %" PRIu64 " past the end (%" PRIu64 " pages)\n",
			p->hint, p->npages);
		return -EUCLEAN;
	}
	return 0;
}
