/* SPDX-License-Identifier: MIT */
/*
 * Soft-device page tables; the design, entry format, reserve rule and the prepare/commit
 * contract are in pt.h. Notes on the implementation:
 *
 * - A table is identified by its page index in the pool's arena; meta[] keeps its valid-entry
 *   count, pins, and where it hangs (parent, slot, level), so a table left empty can be
 *   unlinked and freed from any point, also when a preparation unpins it.
 * - A level-L entry covers 4 KiB << 9L bytes: 4 KiB, 2 MiB, 1 GiB, 512 GiB.
 * - MAP commit = clear the range, then write leaves in VA order (no clear for a FRESH op: the
 *   caller guarantees the range maps nothing, a bind's MAP in the core). After the clear no leaf
 *   overlaps the range, so every entry on a new leaf's path is empty or a table: a missing table
 *   comes from the preparation's pages.
 * - Clearing part of a huge leaf splits it with a page from the reserve that the leaf holds;
 *   the children inherit the rest of the reserve (1 GiB: 1 + 512 -> 512 leaves of 2 MiB, 1 each).
 * - Freed pages are all zero (every entry was cleared), so a new table needs no memset.
 * - Walks start from the cursor (pt.h), the tables of the last walk, dropped when unlinked.
 * - Speed (issue 16): a whole level-0 table is written with 16-byte stores and cleared with
 *   memset (its 64 KiB groups are counted in meta.n64, so a clear reads nothing); tables a
 *   clear frees go back to the pool under one lock, and prepare takes pages in batches.
 * - A vm's table cache (pt.h): pages a vm frees go to its cache first (up to VMB_PT_CACHE), the
 *   rest to the pool; a preparation takes from the cache first. The pool's take and reserve
 *   reclaim every cache (pool_reclaim) before they would fail, so the outcome of a call is as
 *   without caches (pt.h).
 */
#include "dev/soft/pt.h"

#include <assert.h>
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "core/alloc.h"

#define ENTRIES VMB_PT_ENTRIES
#define ROOT_LEVEL 3
#define NIL_PAGE UINT32_MAX
#define SPLIT_2M 1ull
#define SPLIT_1G (1ull + ENTRIES * SPLIT_2M)

static inline uint64_t level_size(int level) { return 1ull << (12 + 9 * level); }
static inline unsigned int level_index(uint64_t va, int level) { return (va >> (12 + 9 * level)) & (ENTRIES - 1); }
static inline uint64_t *table(const struct vmb_pt_pool *p, uint32_t idx) { return p->arena + (uint64_t)idx * ENTRIES; }
static inline bool pte_valid(uint64_t e) { return e & VMB_PTE_VALID; }
static inline bool pte_leaf(uint64_t e, int level) { return level == 0 || (e & VMB_PTE_LEAF); }
static inline uint32_t pte_table(uint64_t e) { return (uint32_t)((e & VMB_PTE_ADDR_MASK) >> 12); }
static inline uint64_t split_cost(int level) { return level == 2 ? SPLIT_1G : level == 1 ? SPLIT_2M : 0; }
static inline int leaf_slot(int level) { return level == 2 ? 3 : level == 1 ? 2 : 0; }

/* ---- pool ---------------------------------------------------------------------------- */

/*
 * Huge pages for the tables (issue 16): a vm with 10^5 mappings spread over a wide VA has ~25 MB
 * of tables, and a bind touches one table at random: with 4 KiB pages each such access is a TLB
 * miss (in a guest, a two-dimensional page walk). Past its first THP_BYTES (a small vm's tables
 * stay in 4 KiB pages: no 2 MiB of memory for a few tables), the arena is 2 MiB aligned and asks
 * for transparent huge pages (MADV_HUGEPAGE: only where THP is "madvise" or "always"). A chunk
 * is faulted in when its first page leaves the bump (pool_fault_chunk), by the preparation that
 * takes it, so that the huge page's allocation (which may compact memory) happens in a call,
 * not at commit, where the first write to a table would otherwise fault it in.
 */
#define THP_BYTES (2ull << 20)
#define THP_PAGES ((uint32_t)(THP_BYTES / VMB_PT_PAGE))

/* An arena of @bytes, 2 MiB aligned when larger than THP_BYTES (the unaligned ends unmapped). */
static uint64_t *arena_map(uint64_t bytes)
{
	int flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE;
	if (bytes <= THP_BYTES) {
		void *a = mmap(NULL, bytes, PROT_READ | PROT_WRITE, flags, -1, 0);
		return a == MAP_FAILED ? NULL : a;
	}
	uint8_t *raw = mmap(NULL, bytes + THP_BYTES, PROT_READ | PROT_WRITE, flags, -1, 0);
	if (raw == MAP_FAILED)
		return NULL;
	uint8_t *a = (uint8_t *)(((uintptr_t)raw + THP_BYTES - 1) & ~(uintptr_t)(THP_BYTES - 1));
	if (a > raw)
		munmap(raw, (size_t)(a - raw));
	if (raw + THP_BYTES > a)
		munmap(a + bytes, (size_t)(raw + THP_BYTES - a));
	(void)madvise(a + THP_BYTES, bytes - THP_BYTES, MADV_HUGEPAGE); /* a hint: fine if refused */
	return (uint64_t *)a;
}

/* Page @idx just left the bump (taken for the first time): if it opens a 2 MiB chunk of the
 * huge-page part of the arena, fault the chunk in now (see THP_BYTES), outside the pool's lock.
 * The chunk's other pages are still in the bump: nobody else touches its memory yet. */
static void pool_fault_chunk(struct vmb_pt_pool *p, uint32_t idx)
{
	if (idx % THP_PAGES || idx < THP_PAGES || (uint64_t)idx + THP_PAGES > p->capacity)
		return; /* not a chunk's first page, the first chunk, or the partial last one */
	(void)madvise(table(p, idx), THP_BYTES, MADV_POPULATE_WRITE); /* as a write would (hostmem.c) */
}

int vmb_pt_pool_init(struct vmb_pt_pool *p, uint64_t capacity_bytes)
{
	uint64_t pages = capacity_bytes / VMB_PT_PAGE;
	memset(p, 0, sizeof(*p));
	if (pages < 1 || capacity_bytes % VMB_PT_PAGE || pages >= NIL_PAGE)
		return -EINVAL;
	if (!(p->arena = arena_map(pages * VMB_PT_PAGE)))
		return -ENOMEM;
	p->free_stack = malloc(pages * sizeof(*p->free_stack));
	p->meta = calloc(pages, sizeof(*p->meta));
	if (!p->free_stack || !p->meta) {
		free(p->free_stack);
		free(p->meta);
		munmap(p->arena, pages * VMB_PT_PAGE);
		return -ENOMEM;
	}
	p->capacity = (uint32_t)pages;
	vmb_list_init(&p->vms);
	pthread_mutex_init(&p->lock, NULL);
	return 0;
}

void vmb_pt_pool_fini(struct vmb_pt_pool *p)
{
	munmap(p->arena, (uint64_t)p->capacity * VMB_PT_PAGE);
	free(p->free_stack);
	free(p->meta);
	pthread_mutex_destroy(&p->lock);
}

/* ---- a vm's table cache (pt.h) ---------------------------------------------------------- */

/* The lock taken (cache_lock found it held): its holder does a few stores, so spin, and yield
 * if it was preempted (2 CPUs). */
static __attribute__((noinline, cold)) void cache_lock_wait(struct vmb_pt_cache *c)
{
	do {
		for (unsigned int i = 0; atomic_load_explicit(&c->lock, memory_order_relaxed); i++) {
			if (i < 64)
				vmb_cpu_relax();
			else
				sched_yield();
		}
	} while (atomic_exchange_explicit(&c->lock, 1, memory_order_acquire));
}

static inline void cache_lock(struct vmb_pt_cache *c)
{
	if (__builtin_expect(atomic_exchange_explicit(&c->lock, 1, memory_order_acquire), 0))
		cache_lock_wait(c);
}

static void cache_unlock(struct vmb_pt_cache *c) { atomic_store_explicit(&c->lock, 0, memory_order_release); }

/* The test hook, read without the pool's lock (the cache's bypass) and counted down under it. */
static inline uint32_t fail_after_get(const struct vmb_pt_pool *p) { return __atomic_load_n(&p->fail_after, __ATOMIC_RELAXED); }

/* Pool lock held: true (and counted down) when the test hook fails this page. */
static bool fail_after_fires(struct vmb_pt_pool *p)
{
	uint32_t n = fail_after_get(p);
	if (!n)
		return false;
	__atomic_store_n(&p->fail_after, n - 1, __ATOMIC_RELAXED);
	return n == 1;
}

/*
 * Pool lock held, the pool short (pool_fits): every vm's cached pages back to the free stack
 * (they count in `allocated` until then), so that a take or a reserve fails only when the pages
 * in use and the reserve leave too few, as without caches. Returns the pages reclaimed.
 */
static uint64_t pool_reclaim(struct vmb_pt_pool *p)
{
	uint64_t got = 0;
	struct vmb_list *pos;
	vmb_list_for_each(pos, &p->vms) {
		struct vmb_pt_cache *c = &vmb_container_of(pos, struct vmb_pt, pool_link)->cache;
		cache_lock(c);
		memcpy(p->free_stack + p->free_top, c->idx, c->n * sizeof(*c->idx));
		p->free_top += c->n;
		got += c->n;
		c->n = 0;
		cache_unlock(c);
	}
	p->allocated -= got;
	return got;
}

/* Pool lock held: @n more pages fit beside what is allocated and reserved. */
static bool pool_room(const struct vmb_pt_pool *p, uint64_t n)
{
	return p->allocated + p->reserved + n <= p->capacity;
}

/* The same, after a reclaim of the vms' caches if they do not fit at first. */
static bool pool_fits(struct vmb_pt_pool *p, uint64_t n)
{
	return pool_room(p, n) || (pool_reclaim(p) && pool_room(p, n));
}

uint64_t vmb_pt_pool_in_use(struct vmb_pt_pool *p)
{
	pthread_mutex_lock(&p->lock);
	uint64_t n = p->allocated;
	struct vmb_list *pos;
	vmb_list_for_each(pos, &p->vms) {
		struct vmb_pt_cache *c = &vmb_container_of(pos, struct vmb_pt, pool_link)->cache;
		cache_lock(c);
		n -= c->n;
		cache_unlock(c);
	}
	pthread_mutex_unlock(&p->lock);
	return n;
}

/* A zeroed page: from the reserve (a split, cannot fail) or from what is unreserved. */
static int pool_take(struct vmb_pt_pool *p, bool from_reserve, uint32_t *out)
{
	int err = 0;
	pthread_mutex_lock(&p->lock);
	if (from_reserve) {
		p->reserved--;
	} else if (fail_after_fires(p) || vmb_pt_page_should_fail()) {
		err = -ENOMEM;
	} else if (!pool_fits(p, 1)) {
		err = -ENOMEM;
	}
	bool fresh = false;
	if (!err) {
		fresh = !p->free_top;
		*out = fresh ? p->bump++ : p->free_stack[--p->free_top];
		if (++p->allocated > p->peak)
			p->peak = p->allocated;
	}
	pthread_mutex_unlock(&p->lock);
	if (fresh && !from_reserve) /* a split (commit) writes into the chunk as before: no syscall */
		pool_fault_chunk(p, *out);
	return err;
}

/*
 * Up to @want zeroed pages from what is unreserved, under one lock (prepare takes the tables of
 * a large MAP in batches): how many, at least 1, or -ENOMEM. With the test hook or the thread's
 * fault injection armed, one page at a time, each counted as pool_take() counts it (the
 * injection's PT_PAGE class reaches every page a bind's preparation takes).
 */
static int pool_take_n(struct vmb_pt_pool *p, unsigned int want, uint32_t *out)
{
	bool armed = vmb_fault_armed();
	pthread_mutex_lock(&p->lock);
	if (fail_after_get(p) || armed) {
		want = 1;
		if (fail_after_fires(p) || (armed && vmb_pt_page_should_fail())) {
			pthread_mutex_unlock(&p->lock);
			return -ENOMEM;
		}
	}
	(void)pool_fits(p, 1); /* none left: the vms' caches back first (a short batch is enough: the caller asks again) */
	uint64_t avail = p->capacity - p->allocated - p->reserved;
	unsigned int n = avail < want ? (unsigned int)avail : want;
	uint32_t bump0 = p->bump;
	for (unsigned int i = 0; i < n; i++)
		out[i] = p->free_top ? p->free_stack[--p->free_top] : p->bump++;
	p->allocated += n;
	if (p->allocated > p->peak)
		p->peak = p->allocated;
	uint32_t bump1 = p->bump;
	pthread_mutex_unlock(&p->lock);
	for (uint32_t b = bump0; b < bump1; b++) /* the pages that left the bump, in order */
		pool_fault_chunk(p, b);
	return n ? (int)n : -ENOMEM;
}

static void pool_give(struct vmb_pt_pool *p, uint32_t idx)
{
	pthread_mutex_lock(&p->lock);
	p->free_stack[p->free_top++] = idx;
	p->allocated--;
	pthread_mutex_unlock(&p->lock);
}

/* Give back @n pages under one lock (a clear frees up to a table's worth of children). */
static void pool_give_n(struct vmb_pt_pool *p, const uint32_t *idx, unsigned int n)
{
	if (!n)
		return;
	pthread_mutex_lock(&p->lock);
	memcpy(p->free_stack + p->free_top, idx, n * sizeof(*idx));
	p->free_top += n;
	p->allocated -= n;
	pthread_mutex_unlock(&p->lock);
}

static int pool_reserve(struct vmb_pt_pool *p, uint64_t n)
{
	int err = 0;
	pthread_mutex_lock(&p->lock);
	if (!pool_fits(p, n))
		err = -ENOMEM;
	else
		p->reserved += n;
	pthread_mutex_unlock(&p->lock);
	return err;
}

static void pool_unreserve(struct vmb_pt_pool *p, uint64_t n)
{
	pthread_mutex_lock(&p->lock);
	p->reserved -= n;
	pthread_mutex_unlock(&p->lock);
}

/*
 * Up to @want pages for a preparation of @pt: from its cache (no pool lock), else from the pool
 * (pool_take_n). While a failure hook is armed, from the pool only: each page is counted there.
 */
static int pt_take_n(struct vmb_pt *pt, unsigned int want, uint32_t *out)
{
	struct vmb_pt_cache *c = &pt->cache;
	if (!vmb_fault_armed() && !fail_after_get(pt->pool)) {
		cache_lock(c);
		unsigned int n = c->n < want ? c->n : want;
		for (unsigned int i = 0; i < n; i++) /* (a loop: memcpy of a variable size is a call) */
			out[i] = c->idx[--c->n];
		cache_unlock(c);
		if (n)
			return (int)n;
	}
	return pool_take_n(pt->pool, want, out);
}

/* @n zeroed pages of @pt given back: to its cache while it has room, the rest to the pool. */
static void pt_give_n(struct vmb_pt *pt, const uint32_t *idx, unsigned int n)
{
	struct vmb_pt_cache *c = &pt->cache;
	if (!n)
		return;
	cache_lock(c);
	unsigned int k = VMB_PT_CACHE - c->n < n ? VMB_PT_CACHE - c->n : n;
	for (unsigned int i = 0; i < k; i++)
		c->idx[c->n++] = idx[i];
	cache_unlock(c);
	pool_give_n(pt->pool, idx + k, n - k);
}

/* ---- tables ---------------------------------------------------------------------------- */

/* The parent's entry is stored with release: a preparation links an empty table without the
 * walk lock (prep_link), and a walker that sees the entry (an acquire load: vmb_pt_translate)
 * sees the table's zeroes. */
static void link_table(struct vmb_pt *pt, uint32_t parent, unsigned int slot, int level, uint32_t idx)
{
	struct vmb_pt_meta *m = &pt->pool->meta[idx];
	m->parent = parent;
	m->slot = (uint16_t)slot;
	m->level = (uint8_t)level;
	m->nvalid = 0;
	m->n64 = 0;
	__atomic_store_n(&table(pt->pool, parent)[slot], VMB_PTE_VALID | ((uint64_t)idx << 12), __ATOMIC_RELEASE);
	pt->pool->meta[parent].nvalid++;
	pt->tables[level]++;
}

/* ---- cursor: the tables of the last walk ------------------------------------------------- */

/* The tag of the level-@level table (0..2) covering @va: 1 + the index of its span. */
static inline uint64_t cursor_tag(uint64_t va, int level) { return (va >> (21 + 9 * level)) + 1; }

static inline void cursor_set(struct vmb_pt *pt, uint64_t va, int level, uint32_t idx)
{
	pt->cur_tag[level] = cursor_tag(va, level);
	pt->cur_idx[level] = idx;
}

/*
 * The deepest table known on @va's path at a level in [@level, root]: from the cursor when it
 * holds the table of @va's span at some level >= @level, else the root. *@at: its level.
 */
static inline uint32_t cursor_find(const struct vmb_pt *pt, uint64_t va, int level, int *at)
{
	for (int k = level; k < ROOT_LEVEL; k++)
		if (pt->cur_tag[k] == cursor_tag(va, k)) {
			*at = k;
			return pt->cur_idx[k];
		}
	*at = ROOT_LEVEL;
	return pt->root;
}

/* @idx is empty and unpinned, and not the root: unlink_one would unlink it. */
static bool unlinkable(const struct vmb_pt *pt, uint32_t idx)
{
	const struct vmb_pt_meta *m = &pt->pool->meta[idx];
	return idx != pt->root && !m->nvalid && !m->pins;
}

/* Unlink @idx if it is empty and unpinned (never the root), not yet given back; true if so. */
static bool unlink_one(struct vmb_pt *pt, uint32_t idx)
{
	struct vmb_pt_pool *p = pt->pool;
	struct vmb_pt_meta *m = &p->meta[idx];
	if (!unlinkable(pt, idx))
		return false;
	table(p, m->parent)[m->slot] = 0;
	p->meta[m->parent].nvalid--;
	pt->tables[m->level]--;
	if (pt->cur_idx[m->level] == idx)
		pt->cur_tag[m->level] = 0; /* the cursor never points at a freed table */
	return true;
}

/* Free @idx and then every ancestor left empty and unpinned (never the root), given back at once. */
static void free_if_unused(struct vmb_pt *pt, uint32_t idx)
{
	uint32_t freed[ROOT_LEVEL];
	unsigned int n = 0;
	while (unlink_one(pt, idx)) {
		freed[n++] = idx;
		idx = pt->pool->meta[idx].parent;
	}
	pt_give_n(pt, freed, n);
}

int vmb_pt_init(struct vmb_pt *pt, struct vmb_pt_pool *pool, uint64_t page_sizes)
{
	memset(pt, 0, sizeof(*pt));
	pt->pool = pool;
	pt->page_sizes = page_sizes | VMB_PT_SIZE_4K;
	int err = pool_take(pool, false, &pt->root);
	if (err)
		return err;
	vmb_mutex_init(&pt->walk);
	pool->meta[pt->root] = (struct vmb_pt_meta){.parent = pt->root, .level = ROOT_LEVEL};
	pt->tables[ROOT_LEVEL] = 1;
	pthread_mutex_lock(&pool->lock);
	vmb_list_add_tail(&pt->pool_link, &pool->vms);
	pthread_mutex_unlock(&pool->lock);
	return 0;
}

static void fini_table(struct vmb_pt *pt, uint32_t idx, int level)
{
	uint64_t *t = table(pt->pool, idx);
	for (unsigned int i = 0; i < ENTRIES; i++) {
		if (pte_valid(t[i]) && !pte_leaf(t[i], level))
			fini_table(pt, pte_table(t[i]), level - 1);
		t[i] = 0;
	}
	pt->pool->meta[idx].nvalid = 0;
	pool_give(pt->pool, idx);
}

/* No walker left (the vm's engines' jobs are over: the exec layer holds the vm until then). */
void vmb_pt_fini(struct vmb_pt *pt)
{
	memset(pt->cur_tag, 0, sizeof(pt->cur_tag));
	fini_table(pt, pt->root, ROOT_LEVEL);
	pool_unreserve(pt->pool, pt->reserved);
	pt->reserved = 0;
	/* out of the reclaim's list, then the cache back to the pool */
	pthread_mutex_lock(&pt->pool->lock);
	vmb_list_del(&pt->pool_link);
	pthread_mutex_unlock(&pt->pool->lock);
	pool_give_n(pt->pool, pt->cache.idx, pt->cache.n);
	pt->cache.n = 0;
	vmb_mutex_fini(&pt->walk);
}

/* ---- clear (also the first half of a MAP commit) ----------------------------------------- */

/* A 64 KiB group at level-0 entries [g, g + 16) stops being one: its entries become 4 KiB. */
static void break_group(struct vmb_pt *pt, uint32_t tidx, uint64_t *t, unsigned int g)
{
	pt->pool->meta[tidx].n64--;
	for (unsigned int i = g; i < g + 16; i++)
		t[i] &= ~VMB_PTE_PS64;
	pt->leaves[1]--;
	pt->leaves[0] += 16;
}

/* Replace the huge leaf at t[i] (level 1 or 2) by a table of the next level down, same mapping. */
static void split_leaf(struct vmb_pt *pt, uint32_t tidx, unsigned int i, int level)
{
	struct vmb_pt_pool *p = pt->pool;
	uint64_t e = table(p, tidx)[i], flags = e & (VMB_PTE_WRITE | VMB_PTE_NULL | VMB_PTE_VALID);
	uint64_t pa = e & VMB_PTE_ADDR_MASK, step = level_size(level - 1);
	uint32_t idx;

	pool_take(p, true, &idx); /* cannot fail: the leaf held this page in reserve */
	pt->reserved--;
	uint64_t *c = table(p, idx);
	if (level == 2) {
		for (unsigned int k = 0; k < ENTRIES; k++)
			c[k] = flags | VMB_PTE_LEAF | (e & VMB_PTE_NULL ? 0 : pa + k * step);
		pt->leaves[3]--;
		pt->leaves[2] += ENTRIES;
	} else {
		uint64_t ps64 = pt->page_sizes & VMB_PT_SIZE_64K ? VMB_PTE_PS64 : 0;
		for (unsigned int k = 0; k < ENTRIES; k++)
			c[k] = flags | ps64 | (e & VMB_PTE_NULL ? 0 : pa + k * step);
		pt->leaves[2]--;
		if (ps64)
			pt->leaves[1] += ENTRIES / 16;
		else
			pt->leaves[0] += ENTRIES;
	}
	table(p, tidx)[i] = 0;
	p->meta[tidx].nvalid--;
	link_table(pt, tidx, i, level - 1, idx);
	p->meta[idx].nvalid = ENTRIES;
	p->meta[idx].n64 = level == 1 && (pt->page_sizes & VMB_PT_SIZE_64K) ? ENTRIES / 16 : 0;
	p->meta[idx].pins = 0;
}

static void clear_level(struct vmb_pt *pt, uint32_t tidx, int level, uint64_t base, uint64_t start, uint64_t last)
{
	struct vmb_pt_pool *p = pt->pool;
	uint64_t *t = table(p, tidx), esize = level_size(level);
	uint64_t lo = start > base ? start : base;
	uint64_t hi = last - base >= esize * ENTRIES ? base + esize * ENTRIES - 1 : last;
	unsigned int i0 = (unsigned int)((lo - base) / esize), i1 = (unsigned int)((hi - base) / esize);

	/* the entries and the table's meta are apart: wait for both misses at once, not one then
	 * the other (a table a level, 256 MiB of them at 10^6 mappings) */
	__builtin_prefetch(&t[i0]);
	__builtin_prefetch(&t[i1]);
	if (p->meta[tidx].nvalid == 0)
		return; /* an empty table (one a preparation linked ahead of its commit): nothing to clear */
	if (level == 0) {
		/* groups cut by the range's ends stop being 64 KiB pages */
		unsigned int g0 = i0 & ~15u, g1 = i1 & ~15u;
		if ((t[g0] & VMB_PTE_PS64) && i0 != g0)
			break_group(pt, tidx, t, g0);
		if ((t[g1] & VMB_PTE_PS64) && i1 != g1 + 15) /* g1 == g0 broken above: no PS64 left */
			break_group(pt, tidx, t, g1);
		/*
		 * Without a branch, as fast as MAP's write: invalid entries are 0, and the PS64
		 * entries left in [i0, i1] come in whole groups. One sum counts both: valid
		 * entries in bits 0-15, PS64 ones in bits 16-31 (at most 512 each).
		 */
		unsigned int cleared, ps64;
		if (i0 == 0 && i1 == ENTRIES - 1) {
			/* the whole table: its counts are known, nothing to read */
			cleared = p->meta[tidx].nvalid;
			ps64 = p->meta[tidx].n64 * 16u;
			memset(t, 0, ENTRIES * sizeof(*t));
		} else {
			uint64_t acc = 0;
			for (unsigned int i = i0; i <= i1; i++) {
				uint64_t e = t[i];
				acc += (e & VMB_PTE_VALID) | ((e & VMB_PTE_PS64) << 13);
				t[i] = 0;
			}
			cleared = (unsigned int)(acc & 0xffff);
			ps64 = (unsigned int)(acc >> 16);
		}
		pt->leaves[0] -= cleared - ps64;
		pt->leaves[1] -= ps64 / 16;
		p->meta[tidx].nvalid = (uint16_t)(p->meta[tidx].nvalid - cleared);
		p->meta[tidx].n64 = (uint8_t)(p->meta[tidx].n64 - ps64 / 16);
		return;
	}
	uint32_t freed[ENTRIES]; /* children left empty, given back under one lock */
	unsigned int nfreed = 0;
	for (unsigned int i = i0; i <= i1; i++) {
		uint64_t e = t[i];
		if (!pte_valid(e))
			continue;
		uint64_t eb = base + (uint64_t)i * esize, el = eb + esize - 1;
		bool full = start <= eb && last >= el;
		if (pte_leaf(e, level)) {
			if (full) {
				t[i] = 0;
				p->meta[tidx].nvalid--;
				pt->leaves[leaf_slot(level)]--;
				pt->reserved -= split_cost(level);
				pool_unreserve(p, split_cost(level));
				continue;
			}
			split_leaf(pt, tidx, i, level);
			e = t[i];
		}
		uint32_t child = pte_table(e);
		cursor_set(pt, eb, level - 1, child);
		clear_level(pt, child, level - 1, eb, start, last);
		if (unlink_one(pt, child)) /* our caller frees this table itself if it ends up empty */
			freed[nfreed++] = child;
	}
	pt_give_n(pt, freed, nfreed);
}

static void clear_range(struct vmb_pt *pt, uint64_t start, uint64_t last)
{
	/* from the deepest table that covers the whole range (the cursor's, or found by walking
	 * down to it; the walk stops above a huge leaf or an empty slot, which clear_level handles
	 * there): its ancestors are then freed upwards if the clear left them empty, as the
	 * recursion from the root would, without a clear_level call (and its scan) a level */
	int k = 0;
	while (k < ROOT_LEVEL && (start >> (21 + 9 * k)) != (last >> (21 + 9 * k)))
		k++;
	int at;
	uint32_t idx = cursor_find(pt, start, k, &at);
	while (at > k) {
		uint64_t e = table(pt->pool, idx)[level_index(start, at)];
		if (!pte_valid(e) || pte_leaf(e, at))
			break;
		idx = pte_table(e);
		cursor_set(pt, start, --at, idx);
	}
	if (at == ROOT_LEVEL) {
		clear_level(pt, pt->root, ROOT_LEVEL, 0, start, last);
		return;
	}
	clear_level(pt, idx, at, start & ~(level_size(at + 1) - 1), start, last);
	free_if_unused(pt, idx);
}

/* ---- layout: the leaves a MAP writes, identical in prepare and commit ---------------------- */

struct layout {
	const struct vmb_pt *pt;
	const struct vmb_pt_op *op;
	struct vmb_backing_cursor cur;
	uint64_t va;   /* next leaf */
	bool null;
};

static void layout_init(struct layout *l, const struct vmb_pt *pt, const struct vmb_pt_op *op)
{
	l->pt = pt;
	l->op = op;
	l->va = op->start;
	l->null = op->flags & VMB_PT_OP_NULL;
	if (!l->null)
		vmb_backing_seek(&l->cur, op->backing, op->offset);
}

/* Size of the leaf at l->va, its pa and the bytes contiguous from there. */
static uint64_t layout_size(const struct layout *l, uint64_t *pa, uint64_t *contig)
{
	static const uint64_t sizes[] = {VMB_PT_SIZE_1G, VMB_PT_SIZE_2M, VMB_PT_SIZE_64K};
	uint64_t left = l->op->last - l->va + 1;
	*pa = 0;
	*contig = left;
	if (!l->null)
		*pa = vmb_backing_pa(&l->cur, contig);
	for (unsigned int k = 0; k < 3; k++) {
		uint64_t s = sizes[k];
		if ((l->pt->page_sizes & s) && !(l->va & (s - 1)) && left >= s && !(*pa & (s - 1)) && *contig >= s)
			return s;
	}
	return VMB_PT_SIZE_4K;
}

static void layout_advance(struct layout *l, uint64_t bytes)
{
	if (!l->null && l->va + bytes - 1 < l->op->last)
		vmb_backing_advance(&l->cur, bytes);
	l->va += bytes;
}

static int leaf_level(uint64_t size) { return size == VMB_PT_SIZE_1G ? 2 : size == VMB_PT_SIZE_2M ? 1 : 0; }

/* ---- prepare ------------------------------------------------------------------------------ */

static int prep_push(uint32_t **arr, unsigned int *cap, unsigned int want)
{
	if (*cap >= want)
		return 0;
	unsigned int ncap = *cap ? *cap : 16;
	while (ncap < want)
		ncap *= 2;
	uint32_t *a = vmb_realloc(*arr, ncap * sizeof(*a));
	if (!a)
		return -ENOMEM;
	*arr = a;
	*cap = ncap;
	return 0;
}

static int prep_pin(struct vmb_pt *pt, struct vmb_pt_prep *prep, uint32_t idx)
{
	int err = prep_push(&prep->pinned, &prep->cap_pinned, prep->npinned + 1);
	if (err)
		return err;
	prep->pinned[prep->npinned++] = idx;
	pt->pool->meta[idx].pins++;
	return 0;
}

/* Pages one vmb_pt_prepare() took from the pool in a batch and has not used yet. */
struct stash {
	uint32_t idx[64];
	unsigned int pos, n;
	unsigned int want; /* how many the op may still need (an upper bound) */
};

static int stash_take(struct vmb_pt *pt, struct stash *st, uint32_t *out)
{
	if (st->pos == st->n) {
		unsigned int want = st->want < 64 ? st->want : 64;
		int n = pt_take_n(pt, want, st->idx);
		if (n < 0)
			return n;
		st->pos = 0;
		st->n = (unsigned int)n;
	}
	*out = st->idx[st->pos++];
	return 0;
}

static void stash_return(struct vmb_pt *pt, struct stash *st)
{
	pt_give_n(pt, st->idx + st->pos, st->n - st->pos);
	st->pos = st->n = 0;
}

static int prep_page(struct vmb_pt *pt, struct vmb_pt_prep *prep, struct stash *st)
{
	uint32_t idx;
	int err = prep_push(&prep->pages, &prep->cap_pages, prep->npages + 1);
	if (!err)
		err = stash_take(pt, st, &idx);
	if (err)
		return err;
	pt->pool->meta[idx] = (struct vmb_pt_meta){.pins = 1};
	prep->pages[prep->npages++] = idx;
	return 0;
}

/* Link an empty table under @parent at @slot now, pinned: translation does not change (it maps
 * nothing), and every later preparation sees it instead of counting it missing again. */
static int prep_link(struct vmb_pt *pt, struct vmb_pt_prep *prep, struct stash *st, uint32_t parent,
		     unsigned int slot, int level, uint32_t *out)
{
	uint32_t idx;
	int err = prep_push(&prep->pinned, &prep->cap_pinned, prep->npinned + 1);
	if (!err)
		err = stash_take(pt, st, &idx);
	if (err)
		return err;
	/* no walk lock: the table maps nothing, so a walker finds nothing there whether it sees
	 * the link or not (link_table: stored with release) */
	link_table(pt, parent, slot, level, idx);
	pt->pool->meta[idx].pins = 1;
	prep->pinned[prep->npinned++] = idx;
	*out = idx;
	return 0;
}

static int prepare_walk(struct vmb_pt *pt, const struct vmb_pt_op *op, struct vmb_pt_prep *prep, struct stash *st,
			uint64_t *reservep)
{
	struct layout l;
	uint64_t reserve = 0;
	/* prep->seen: the path last handled at each level, by the VA of the table at that level
	 * (+1, 0: none); kept across the ops of one preparation, whose tables do not change in
	 * between (nothing commits while a bind prepares) */
	uint64_t *seen = prep->seen;
	int err;

	layout_init(&l, pt, op);
	while (l.va <= op->last && l.va >= op->start) {
		uint64_t pa, contig, size = layout_size(&l, &pa, &contig);
		int lvl = leaf_level(size);
		reserve += split_cost(lvl);
		/* at most a level-0 table per 2 MiB left, and one per level above */
		st->want = (unsigned int)((op->last - l.va) >> 21 < 64 ? ((op->last - l.va) >> 21) + 3 : 64);
		/* tables at levels 2..lvl on the path: pin those that exist, count those missing */
		uint32_t idx = pt->root;
		bool missing = false;
		/*
		 * The walk starts below the tables this preparation handled already (pinned,
		 * linked or counted missing, with all their ancestors): a leaf in the table just
		 * handled needs no walk, and a table of the cursor handled already is where the
		 * walk starts (a cursor table exists; one counted missing holds a huge leaf, and no
		 * table takes a huge leaf's place while a bind prepares).
		 */
		int top = ROOT_LEVEL;
		if (seen[lvl] == cursor_tag(l.va, lvl)) {
			top = lvl;
		} else {
			for (int k = lvl + 1; k < ROOT_LEVEL; k++)
				if (seen[k] == cursor_tag(l.va, k) && pt->cur_tag[k] == seen[k]) {
					top = k;
					idx = pt->cur_idx[k];
					break;
				}
		}
		for (int k = top; k > lvl; k--) {
			uint64_t id = (l.va >> (12 + 9 * k)) + 1; /* the table at level k-1 covering va */
			unsigned int slot = level_index(l.va, k);
			uint64_t e = missing ? 0 : table(pt->pool, idx)[slot];
			if (!missing && !pte_valid(e)) {
				/* an empty slot: the table goes in now (a huge leaf there must wait for the
				 * commit's clear, so that one is only counted, below) */
				if ((err = prep_link(pt, prep, st, idx, slot, k - 1, &idx)))
					return err;
				seen[k - 1] = id;
				cursor_set(pt, l.va, k - 1, idx);
				continue;
			}
			bool is_table = pte_valid(e) && !pte_leaf(e, k);
			if (!is_table)
				missing = true;
			if (seen[k - 1] != id) {
				seen[k - 1] = id;
				/* the entry the walk or the commit reads next, asked for before the pin's
				 * miss on the table's meta, so that the two overlap */
				if (!missing)
					__builtin_prefetch(&table(pt->pool, pte_table(e))[level_index(l.va, k - 1)]);
				err = missing ? prep_page(pt, prep, st) : prep_pin(pt, prep, pte_table(e));
				if (err)
					return err;
			}
			if (!missing) {
				idx = pte_table(e);
				cursor_set(pt, l.va, k - 1, idx);
			}
		}
		if (lvl == 0) {
			/*
			 * Leaves of 4K and 64K in one level-0 table need nothing more, and no huge leaf
			 * can start inside its 2 MiB span: skip to the span's end.
			 */
			uint64_t end = l.va | (level_size(1) - 1);
			layout_advance(&l, (end < op->last ? end : op->last) - l.va + 1);
		} else {
			layout_advance(&l, size);
		}
		if (l.va == 0) /* wrapped past the top of the address space */
			break;
	}
	*reservep = reserve;
	return 0;
}

int vmb_pt_prepare(struct vmb_pt *pt, const struct vmb_pt_op *op, struct vmb_pt_prep *prep)
{
	struct stash st; /* its idx[] is written before it is read: zeroing it (256 bytes, gcc's rep
			  * stos) was ~10 ns of a 1-op bind */
	uint64_t reserve = 0;

	/* callers pass whole pages, start <= last (the uapi layer checked the user's range) */
	assert(op->start <= op->last && !(op->start & 4095) && !((op->last + 1) & 4095));
	if (op->kind == VMB_PT_OP_CLEAR)
		return 0; /* splits use the reserve; nothing to allocate */
	st.pos = st.n = st.want = 0;
	int err = prepare_walk(pt, op, prep, &st, &reserve);
	stash_return(pt, &st); /* before the reserve: the pages a batch did not need count free */
	if (err)
		return err;
	if (reserve) {
		if ((err = pool_reserve(pt->pool, reserve)))
			return err;
		prep->reserve += reserve;
	}
	/* commit moves each used page to the pinned list: make room now, commit cannot allocate */
	return prep_push(&prep->pinned, &prep->cap_pinned, prep->npinned + prep->npages);
}

/* ---- commit ------------------------------------------------------------------------------- */

/* The table at @level covering @va, creating missing ones from the preparation. */
static uint32_t table_for(struct vmb_pt *pt, struct vmb_pt_prep *prep, uint64_t va, int level)
{
	int top;
	uint32_t idx = cursor_find(pt, va, level, &top);
	for (int k = top; k > level; k--) {
		uint64_t *t = table(pt->pool, idx);
		unsigned int i = level_index(va, k);
		if (!pte_valid(t[i])) {
			if (prep->npages == 0) {
				fprintf(stderr, "pt: commit ran out of prepared pages\n");
				abort();
			}
			uint32_t n = prep->pages[--prep->npages];
			link_table(pt, idx, i, k - 1, n);
			pt->pool->meta[n].pins = 1;
			prep->pinned[prep->npinned++] = n; /* room made by prepare */
		}
		idx = pte_table(t[i]);
		cursor_set(pt, va, k - 1, idx);
	}
	return idx;
}

/*
 * Write the content of a huge leaf of @level (base flags, @pa) into @child, the table below its
 * slot, one level down. The slot keeps its table because an op of this bind pinned it and
 * counted on it (its preparation allocated no page for that slot). The clear emptied the table
 * of leaves, but it may still link tables that are pinned too: those are filled the same way,
 * one level further down. Returns the reserve pages the written huge leaves hold.
 */
static uint64_t fill_table(struct vmb_pt *pt, uint32_t child, int level, uint64_t base, uint64_t pa)
{
	struct vmb_pt_pool *p = pt->pool;
	uint64_t *c = table(p, child), step = level_size(level - 1), nul = base & VMB_PTE_NULL, held = 0;
	uint64_t ps64 = pt->page_sizes & VMB_PT_SIZE_64K ? VMB_PTE_PS64 : 0;

	for (unsigned int k = 0; k < ENTRIES; k++) {
		uint64_t kpa = nul ? 0 : pa + k * step;
		if (pte_valid(c[k])) { /* a pinned, emptied table: level - 1 >= 1 here */
			held += fill_table(pt, pte_table(c[k]), level - 1, base, kpa);
		} else if (level == 2) {
			c[k] = base | VMB_PTE_LEAF | kpa;
			pt->leaves[2]++;
			held += SPLIT_2M;
		} else {
			c[k] = base | ps64 | kpa;
			if (!ps64)
				pt->leaves[0]++;
			else if ((k & 15) == 15)
				pt->leaves[1]++;
		}
	}
	p->meta[child].nvalid = ENTRIES;
	if (level == 1)
		p->meta[child].n64 = ps64 ? ENTRIES / 16 : 0;
	return held;
}

/* @n level-0 entries from @v, each @inc above the one before (4 KiB, or 0 for NULL leaves). */
static inline void write_run(uint64_t *e, unsigned int n, uint64_t v, uint64_t inc)
{
#if defined(__GNUC__) /* gcc and clang: two entries per 16-byte store (gcc does not vectorize it) */
	if (n == ENTRIES) { /* a whole table, 4 KiB aligned */
		typedef uint64_t v2 __attribute__((vector_size(16)));
		v2 x = {v, v + inc}, d = {2 * inc, 2 * inc};
		for (unsigned int k = 0; k < ENTRIES; k += 2, x += d)
			*(v2 *)(void *)(e + k) = x;
		return;
	}
#endif
	for (unsigned int k = 0; k < n; k++, v += inc)
		e[k] = v;
}

static void commit_map(struct vmb_pt *pt, const struct vmb_pt_op *op, struct vmb_pt_prep *prep)
{
	struct vmb_pt_pool *p = pt->pool;
	uint64_t base = VMB_PTE_VALID | (op->flags & VMB_PT_OP_READONLY ? 0 : VMB_PTE_WRITE) |
			(op->flags & VMB_PT_OP_NULL ? VMB_PTE_NULL : 0);
	struct layout l;

	uint64_t span = UINT64_MAX; /* the 2 MiB span whose level-0 table is `t0` */
	uint32_t t0 = 0;

	layout_init(&l, pt, op);
	while (l.va <= op->last && l.va >= op->start) {
		uint64_t pa, contig, size = layout_size(&l, &pa, &contig);
		int lvl = leaf_level(size);
		uint32_t tidx;
		if (lvl == 0 && span == l.va >> 21) {
			tidx = t0;
		} else {
			tidx = table_for(pt, prep, l.va, lvl);
			if (lvl == 0) {
				span = l.va >> 21;
				t0 = tidx;
			}
		}
		uint64_t *t = table(p, tidx);
		unsigned int i = level_index(l.va, lvl);
		if (lvl > 0) {
			if (pte_valid(t[i])) {
				/* a table the clear emptied but another op of this bind pinned: fill it */
				uint64_t held = fill_table(pt, pte_table(t[i]), lvl, base, pa);
				pt->reserved += held;
				prep->reserve -= split_cost(lvl);
				pool_unreserve(p, split_cost(lvl) - held);
			} else {
				t[i] = base | VMB_PTE_LEAF | pa;
				p->meta[tidx].nvalid++;
				pt->leaves[leaf_slot(lvl)]++;
				pt->reserved += split_cost(lvl);
				prep->reserve -= split_cost(lvl);
			}
			layout_advance(&l, size);
		} else if (size == VMB_PT_SIZE_64K) {
			/* a run of 64 KiB leaves: to the table's end, the backing's contiguity or the
			 * op's end, whichever is first, in whole 64 KiB pages */
			uint64_t end = l.va | (level_size(1) - 1);
			if (op->last < end)
				end = op->last;
			if (l.va + contig - 1 < end)
				end = l.va + contig - 1;
			unsigned int n = (unsigned int)((end - l.va + 1) / VMB_PT_SIZE_64K) * 16;
			write_run(t + i, n, base | VMB_PTE_PS64 | (l.null ? 0 : pa), l.null ? 0 : 4096);
			p->meta[tidx].nvalid = (uint16_t)(p->meta[tidx].nvalid + n);
			p->meta[tidx].n64 = (uint8_t)(p->meta[tidx].n64 + n / 16);
			pt->leaves[1] += n / 16;
			layout_advance(&l, (uint64_t)n * 4096);
		} else {
			/* a run of 4 KiB leaves: up to the table's end, the backing's contiguity, the op's
			 * end, or a 64 KiB boundary where a 64 KiB page could start */
			uint64_t end = l.va | (level_size(1) - 1);
			if (op->last < end)
				end = op->last;
			if (l.va + contig - 1 < end)
				end = l.va + contig - 1;
			if ((pt->page_sizes & VMB_PT_SIZE_64K) && !((l.va ^ pa) & 0xffff) && (l.va | 0xffff) < end)
				end = l.va | 0xffff;
			unsigned int n = (unsigned int)((end - l.va + 1) / 4096);
			write_run(t + i, n, l.null ? base : base | pa, l.null ? 0 : 4096);
			p->meta[tidx].nvalid = (uint16_t)(p->meta[tidx].nvalid + n);
			pt->leaves[0] += n;
			layout_advance(&l, (uint64_t)n * 4096);
		}
		if (l.va == 0)
			break;
	}
}

void vmb_pt_hint(const struct vmb_pt *pt, uint64_t start, uint64_t last)
{
	const struct vmb_pt_pool *p = pt->pool;
	int at;
	uint32_t idx = cursor_find(pt, start, 0, &at);

	for (int k = at; k > 0; k--) {
		uint64_t e = table(p, idx)[level_index(start, k)];
		if (!pte_valid(e) || pte_leaf(e, k))
			return; /* nothing below, or a huge leaf: little to fetch */
		idx = pte_table(e);
	}
	const uint64_t *t = table(p, idx);
	__builtin_prefetch(&p->meta[idx]);
	__builtin_prefetch(&t[level_index(start, 0)]);
	if (last >> 21 == start >> 21)
		__builtin_prefetch(&t[level_index(last, 0)]);
}

void vmb_pt_commit(struct vmb_pt *pt, const struct vmb_pt_op *op, struct vmb_pt_prep *prep)
{
	if (!(op->kind == VMB_PT_OP_MAP && (op->flags & VMB_PT_OP_FRESH)))
		clear_range(pt, op->start, op->last);
	if (op->kind == VMB_PT_OP_MAP)
		commit_map(pt, op, prep);
}

void vmb_pt_prep_reset(struct vmb_pt *pt, struct vmb_pt_prep *prep)
{
	struct vmb_pt_pool *p = pt->pool;
	for (unsigned int i = 0; i < prep->npages; i++)
		p->meta[prep->pages[i]].pins = 0;
	pt_give_n(pt, prep->pages, prep->npages);
	/* a table left empty is unlinked and freed, which a walker must not see half done: the
	 * walk lock from the first such table on (most releases unlink none and take no lock) */
	bool locked = false;
	for (unsigned int i = 0; i < prep->npinned; i++) {
		uint32_t idx = prep->pinned[i];
		p->meta[idx].pins--;
		if (!locked && unlinkable(pt, idx)) {
			vmb_mutex_lock(&pt->walk);
			locked = true;
		}
		if (locked)
			free_if_unused(pt, idx); /* (else it would free nothing: @idx is in use) */
	}
	if (locked)
		vmb_mutex_unlock(&pt->walk);
	if (prep->reserve)
		pool_unreserve(p, prep->reserve);
	prep->npages = prep->npinned = 0;
	prep->reserve = 0;
	memset(prep->seen, 0, sizeof(prep->seen));
}

void vmb_pt_prep_release(struct vmb_pt *pt, struct vmb_pt_prep *prep)
{
	vmb_pt_prep_reset(pt, prep);
	free(prep->pages);
	free(prep->pinned);
	memset(prep, 0, sizeof(*prep));
}

/* ---- translation and statistics ------------------------------------------------------------ */

int vmb_pt_translate(const struct vmb_pt *pt, uint64_t va, struct vmb_pt_walk *w)
{
	uint32_t idx = pt->root;
	if (va >> VMB_PT_VA_BITS) {
		w->level = ROOT_LEVEL;
		return -EFAULT;
	}
	for (int level = ROOT_LEVEL; level >= 0; level--) {
		/* acquire: a table linked by a preparation without the walk lock (link_table) */
		uint64_t e = __atomic_load_n(&table(pt->pool, idx)[level_index(va, level)], __ATOMIC_ACQUIRE);
		if (!pte_valid(e)) {
			w->level = level;
			return -EFAULT;
		}
		if (pte_leaf(e, level)) {
			w->level = level;
			uint64_t size = level ? level_size(level) : (e & VMB_PTE_PS64 ? VMB_PT_SIZE_64K : VMB_PT_SIZE_4K);
			uint64_t off = va & (level_size(level) - 1);
			w->page_size = size;
			w->null = e & VMB_PTE_NULL;
			w->writable = e & VMB_PTE_WRITE;
			w->pa = w->null ? 0 : (e & VMB_PTE_ADDR_MASK) + off;
			return 0;
		}
		idx = pte_table(e);
	}
	w->level = 0; /* not reached: level 0 entries are leaves */
	return -EFAULT;
}

static uint64_t sizes_level(const struct vmb_pt *pt, uint32_t idx, int level, uint64_t base, uint64_t start,
			    uint64_t last)
{
	const uint64_t *t = table(pt->pool, idx);
	uint64_t esize = level_size(level), mask = 0;
	uint64_t lo = start > base ? start : base;
	uint64_t hi = last - base >= esize * ENTRIES ? base + esize * ENTRIES - 1 : last;
	for (unsigned int i = (unsigned int)((lo - base) / esize); i <= (hi - base) / esize; i++) {
		uint64_t e = t[i];
		if (!pte_valid(e))
			continue;
		if (level == 0)
			mask |= e & VMB_PTE_PS64 ? VMB_PT_SIZE_64K : VMB_PT_SIZE_4K;
		else if (pte_leaf(e, level))
			mask |= esize;
		else
			mask |= sizes_level(pt, pte_table(e), level - 1, base + i * esize, start, last);
	}
	return mask;
}

uint64_t vmb_pt_sizes_in(const struct vmb_pt *pt, uint64_t start, uint64_t last)
{
	return sizes_level(pt, pt->root, ROOT_LEVEL, 0, start, last);
}

/* ---- validation ------------------------------------------------------------------------------ */

struct vcount {
	uint64_t tables[VMB_PT_LEVELS], leaves[4], reserve;
};

#define BAD(...) do { fprintf(stderr, "pt: " __VA_ARGS__); fprintf(stderr, "\n"); return -EUCLEAN; } while (0)

static int validate_table(const struct vmb_pt *pt, uint32_t idx, int level, uint32_t parent, unsigned int slot,
			  struct vcount *c)
{
	const struct vmb_pt_pool *p = pt->pool;
	const struct vmb_pt_meta *m = &p->meta[idx];
	const uint64_t *t = table(p, idx);
	unsigned int valid = 0;

	if (idx >= p->bump)
		BAD("table %u beyond the pool's used pages", idx);
	if (m->level != level || (idx != pt->root && (m->parent != parent || m->slot != slot)))
		BAD("table %u: meta says level %u parent %u slot %u, found at level %d parent %u slot %u", idx,
		    m->level, m->parent, m->slot, level, parent, slot);
	if (m->pins)
		BAD("table %u still pinned (%u) outside a bind", idx, m->pins);
	c->tables[level]++;
	for (unsigned int i = 0; i < ENTRIES; i++) {
		uint64_t e = t[i];
		if (!pte_valid(e)) {
			if (e)
				BAD("invalid entry with bits 0x%llx", (unsigned long long)e);
			continue;
		}
		valid++;
		if (level == ROOT_LEVEL && (e & VMB_PTE_LEAF))
			BAD("leaf in the root table");
		if (level == 0) {
			if (e & VMB_PTE_LEAF)
				BAD("LEAF bit at level 0");
			if (!(e & VMB_PTE_PS64)) {
				c->leaves[0]++;
				continue;
			}
			if (i & 15)
				continue; /* checked with its group's first entry */
			for (unsigned int k = 1; k < 16; k++) {
				uint64_t f = t[i + k];
				uint64_t want = (e & ~VMB_PTE_ADDR_MASK) |
						(e & VMB_PTE_NULL ? 0 : (e & VMB_PTE_ADDR_MASK) + k * 4096ull);
				if (f != want)
					BAD("broken 64K group at table %u entry %u", idx, i);
			}
			if (!(e & VMB_PTE_NULL) && ((e & VMB_PTE_ADDR_MASK) & 0xffff))
				BAD("64K group with an unaligned pa");
			c->leaves[1]++;
		} else if (pte_leaf(e, level)) {
			if (!(e & VMB_PTE_NULL) && ((e & VMB_PTE_ADDR_MASK) & (level_size(level) - 1)))
				BAD("huge leaf with an unaligned pa at level %d", level);
			c->leaves[leaf_slot(level)]++;
			c->reserve += split_cost(level);
		} else {
			if (e & ~(VMB_PTE_VALID | VMB_PTE_ADDR_MASK))
				BAD("table entry with flags 0x%llx", (unsigned long long)e);
			int err = validate_table(pt, pte_table(e), level - 1, idx, i, c);
			if (err)
				return err;
		}
	}
	if (valid != m->nvalid)
		BAD("table %u: %u valid entries, nvalid %u", idx, valid, m->nvalid);
	if (level == 0) {
		unsigned int groups = 0;
		for (unsigned int i = 0; i < ENTRIES; i += 16)
			groups += (t[i] & VMB_PTE_PS64) != 0;
		if (groups != m->n64)
			BAD("table %u: %u 64K groups, n64 %u", idx, groups, m->n64);
	}
	if (valid == 0 && idx != pt->root)
		BAD("empty table %u left linked", idx);
	/* a level-0 group is only counted once: PS64 entries must come in whole aligned groups */
	if (level == 0)
		for (unsigned int i = 0; i < ENTRIES; i++)
			if ((t[i] & VMB_PTE_PS64) && !(t[i & ~15u] & VMB_PTE_PS64))
				BAD("PS64 entry outside a group");
	return 0;
}

int vmb_pt_validate(const struct vmb_pt *pt)
{
	struct vcount c = {{0}, {0}, 0};
	int err = validate_table(pt, pt->root, ROOT_LEVEL, pt->root, 0, &c);
	if (err)
		return err;
	for (int k = 0; k < VMB_PT_LEVELS; k++)
		if (c.tables[k] != pt->tables[k])
			BAD("level %d: %llu tables, counter %llu", k, (unsigned long long)c.tables[k],
			    (unsigned long long)pt->tables[k]);
	for (int k = 0; k < 4; k++)
		if (c.leaves[k] != pt->leaves[k])
			BAD("leaf size %d: %llu leaves, counter %llu", k, (unsigned long long)c.leaves[k],
			    (unsigned long long)pt->leaves[k]);
	if (c.reserve != pt->reserved)
		BAD("huge leaves need %llu reserve pages, vm holds %llu", (unsigned long long)c.reserve,
		    (unsigned long long)pt->reserved);
	struct vmb_pt_pool *p = pt->pool;
	pthread_mutex_lock(&p->lock);
	bool over = p->allocated + p->reserved > p->capacity || p->reserved < pt->reserved;
	pthread_mutex_unlock(&p->lock);
	if (over)
		BAD("pool over capacity or reserve below this vm's");
	return 0;
}
