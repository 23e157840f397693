/* SPDX-License-Identifier: MIT */
/*
 * Soft-device page tables: one radix tree per vm for a 48-bit VA, 4 levels of 512 8-byte
 * entries (level 3 = root, each entry 512 GiB; level 2: 1 GiB; level 1: 2 MiB; level 0: 4 KiB).
 * Leaves: 1 GiB (level-2 entry with LEAF), 2 MiB (level-1 entry with LEAF), 64 KiB (16 aligned
 * level-0 entries, each with PS64 and its own 4 KiB address) and 4 KiB. Sizes are chosen per
 * position where the VA, the pa and the remaining size are aligned and the backing is contiguous.
 *
 * Entry format (u64): bit 0 VALID, bit 1 WRITE, bit 2 LEAF (levels 1-2), bit 3 PS64 (level 0),
 * bit 4 NULL (sparse: reads 0, writes dropped; no pa), bits 12..51 pa (leaf) or the table page
 * index << 12 (non-leaf).
 *
 * Page-table pages (4 KiB) come from a pool shared by the device's vms: a fixed arena of pages
 * with an accounted capacity. Two counters: `allocated` (pages in use) and `reserved` (pages
 * promised to future splits). Every huge leaf holds its full split cost in reserve (2 MiB leaf:
 * 1 page; 1 GiB leaf: 1 + 512 pages), because a sequence of UNMAPs alone can split every huge
 * leaf down to 4 KiB and UNMAP must never fail: clearing a range takes split tables from the
 * reserve, never from the free pool. Invariant: allocated + reserved <= capacity.
 *
 * A vm's table cache (issue 16): a vm keeps up to VMB_PT_CACHE free (zeroed) pages of its own,
 * so that a MAP/UNMAP churn that brings and frees a table at every bind takes and gives pages
 * without the pool's mutex, which every vm of the device shares. Cached pages stay counted in
 * `allocated` (out of the pool), so the invariant and the pool's checks are unchanged; they are
 * given back when the vm is destroyed, and whenever the pool is short (a take or a reserve that
 * would fail), every vm's cache is reclaimed under the pool's lock before the check is made
 * again: a call fails with -ENOMEM exactly when it did without caches (the pages in use by
 * tables and preparations, plus the reserve, leave too few), never because the free pages sit
 * in another vm's cache. vmb_pt_pool_in_use() counts the pages in use without the caches.
 * Fault injection (the thread's PT_PAGE countdown) and the pool's fail_after hook bypass the
 * cache: while either is armed, every page comes from the pool, one at a time, and is counted.
 *
 * A bind is prepare then commit:
 *   vmb_pt_prepare()  per op: pins every table the op's range walks through, allocates (pinned,
 *                     unlinked) every table it may need and claims reserve for new huge leaves.
 *                     May fail with -ENOMEM; on failure the prep may already hold earlier ops'
 *                     work: the caller then calls vmb_pt_prep_release() without committing.
 *   vmb_pt_commit()   per op, same order: plain writes that cannot fail. A MAP overwrites
 *                     whatever is in its range (clear, then write leaves).
 *   vmb_pt_prep_release() returns unused pages and reserve, unpins, frees tables left empty.
 * A table is freed when it has no valid entry and no pin.
 *
 * Locking: a vmb_pt is protected by its vm's lock (held by the caller of every function but
 * vmb_pt_translate); the pool has its own mutex (several vms share it). What a walk reads (the
 * entries of linked tables, which tables are linked, a table page's reuse) is also written
 * under the vmb_pt's `walk` lock: by the caller of vmb_pt_commit (soft.c: around all the ops of
 * one bind, once engines may walk the tables), and here by vmb_pt_prep_reset around the tables it unlinks and frees; a
 * preparation links empty tables without it (they map nothing: the entry is stored with
 * release, and a walk loads entries with acquire). So a walk
 * (vmb_pt_translate: a soft engine's time slice, soft.c) needs only one of the two: `walk`
 * (an engine, which then neither waits for a bind's preparation nor holds one up; exec_hint,
 * which an exec's submission calls without the vm's lock, and which only tries it) or the vm's
 * lock (the GPU view).
 * Order: the vm's lock, then `walk`, then the pool's lock, then a vm's cache lock (the pool's
 * reclaim takes each vm's; a vm takes its own cache's lock alone, releasing it before it takes
 * the pool's).
 */
#ifndef VMB_DEV_SOFT_PT_H
#define VMB_DEV_SOFT_PT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/list.h"
#include "core/lock.h"
#include "dev/soft/phys.h"

#define VMB_PT_LEVELS 4
#define VMB_PT_ENTRIES 512
#define VMB_PT_PAGE 4096ull
#define VMB_PT_VA_BITS 48

#define VMB_PTE_VALID (1ull << 0)
#define VMB_PTE_WRITE (1ull << 1)
#define VMB_PTE_LEAF (1ull << 2)
#define VMB_PTE_PS64 (1ull << 3)
#define VMB_PTE_NULL (1ull << 4)
#define VMB_PTE_ADDR_MASK 0x000ffffffffff000ull

/* Leaf sizes, as a mask (also the public VMB_PAGE_* values). */
#define VMB_PT_SIZE_4K (1ull << 12)
#define VMB_PT_SIZE_64K (1ull << 16)
#define VMB_PT_SIZE_2M (1ull << 21)
#define VMB_PT_SIZE_1G (1ull << 30)
#define VMB_PT_SIZES_ALL (VMB_PT_SIZE_4K | VMB_PT_SIZE_64K | VMB_PT_SIZE_2M | VMB_PT_SIZE_1G)

/* Per page-table page bookkeeping, protected by the owning vm's lock. */
struct vmb_pt_meta {
	uint16_t nvalid; /* valid entries */
	uint32_t pins;   /* preparations that need this table to stay */
	uint32_t parent; /* page index of the parent table (the root: itself) */
	uint16_t slot;   /* entry index in the parent */
	uint8_t level;   /* 0 = leaf level, 3 = root */
	uint8_t n64;     /* level 0: 64 KiB groups (a clear of the whole table need not count them) */
};

struct vmb_pt_pool {
	pthread_mutex_t lock;
	/* below: protected by lock, except meta[i] and the page contents (the owning vm's lock) */
	uint64_t *arena;        /* capacity pages of 512 entries, mmap'd lazily (MAP_NORESERVE); past
				 * its first 2 MiB, in huge pages where THP allows (pt.c) */
	uint32_t capacity;      /* pages */
	uint32_t bump;          /* pages [0, bump) have been handed out at least once */
	uint32_t *free_stack;   /* freed page indices (their contents are zero) */
	uint32_t free_top;
	struct vmb_pt_meta *meta;
	uint64_t allocated;     /* pages out of the pool (tables, prepared pages, vms' caches) */
	uint64_t reserved;      /* pages promised to future splits */
	uint64_t peak;          /* max allocated */
	uint32_t fail_after;    /* test hook: n > 0 fails the n-th next page allocation (1 = next);
				 * read without the lock by a vm's cache (atomic loads and stores) */
	struct vmb_list vms;    /* the vmb_pts of the pool (their caches, for the reclaim) */
};

int vmb_pt_pool_init(struct vmb_pt_pool *p, uint64_t capacity_bytes); /* 0, -EINVAL, -ENOMEM */
void vmb_pt_pool_fini(struct vmb_pt_pool *p);
/* Pages in use by tables and preparations: `allocated` less the pages in vms' caches. */
uint64_t vmb_pt_pool_in_use(struct vmb_pt_pool *p);

/* A vm's table cache (above): free zeroed pages counted in the pool's `allocated`. */
#define VMB_PT_CACHE 8
struct vmb_pt_cache {
	atomic_int lock;             /* a spin lock: held for a few stores (its vm, the pool's reclaim) */
	unsigned int n;              /* below: protected by lock */
	uint32_t idx[VMB_PT_CACHE];
};

struct vmb_pt {
	struct vmb_pt_pool *pool;
	uint32_t root;           /* page index of the level-3 table */
	uint64_t page_sizes;     /* allowed leaf sizes (VMB_PT_SIZE_* mask, always has 4K) */
	uint64_t reserved;       /* this vm's share of pool->reserved */
	uint64_t tables[VMB_PT_LEVELS]; /* tables per level (root counted at level 3) */
	uint64_t leaves[4];      /* leaves by size: [0] 4K entries not PS64, [1] 64K groups, [2] 2M, [3] 1G */
	/*
	 * The walk cursor: the tables (levels 0-2) of the last walk, so that the next one, which
	 * usually touches neighbouring entries, starts from the deepest table it shares with it.
	 * cur_tag[k]: 1 + the index of the span that the level-k table cur_idx[k] covers (0: none).
	 * Always points at linked tables: unlinking a table drops it from the cursor (tables are
	 * only ever unlinked there; a split links a new table where a leaf was, which no cursor
	 * entry can name).
	 */
	uint64_t cur_tag[VMB_PT_LEVELS - 1];
	uint32_t cur_idx[VMB_PT_LEVELS - 1];
	/* held (besides the vm's lock) while what a walk reads changes, and by walkers that do
	 * not hold the vm's lock (above, "Locking"); its waiters counted: commits, which hold the
	 * vm's lock meanwhile (a soft engine's long time slice lets them in) */
	struct vmb_mutex walk;
	struct vmb_pt_cache cache;  /* free pages of this vm (above); its own lock */
	struct vmb_list pool_link;  /* in pool->vms, under the pool's lock */
};

/* 0, -ENOMEM (pool full). @page_sizes: allowed leaf sizes, must include 4K. */
int vmb_pt_init(struct vmb_pt *pt, struct vmb_pt_pool *pool, uint64_t page_sizes);
/* Frees every table and releases every reserve of this vm. */
void vmb_pt_fini(struct vmb_pt *pt);

enum vmb_pt_op_kind { VMB_PT_OP_MAP, VMB_PT_OP_CLEAR };
#define VMB_PT_OP_READONLY (1u << 0)
#define VMB_PT_OP_NULL (1u << 1)
#define VMB_PT_OP_FRESH (1u << 2) /* MAP: nothing mapped in the range at commit (no clear first) */

/* One page-table change over [start, last] (page aligned, last + 1 page aligned). */
struct vmb_pt_op {
	enum vmb_pt_op_kind kind;
	uint32_t flags;                  /* MAP: VMB_PT_OP_* */
	uint64_t start, last;
	const struct vmb_backing *backing; /* MAP without NULL: the memory */
	uint64_t offset;                 /* byte of the backing mapped at start */
};

/* What prepare took; zero-initialise, then pass to every prepare/commit/release of one bind. */
struct vmb_pt_prep {
	uint32_t *pages;       /* allocated, pinned, not yet linked */
	unsigned int npages, cap_pages;
	uint32_t *pinned;      /* existing tables pinned (may repeat) */
	unsigned int npinned, cap_pinned;
	uint64_t reserve;      /* reserve pages claimed for new huge leaves, not yet attached */
	/* per level, 1 + the id (va >> span bits) of the table last pinned or counted as missing,
	 * so consecutive ops in one table neither pin it again nor count it missing again */
	uint64_t seen[VMB_PT_LEVELS];
};

/*
 * The caller (the vm layer, after the uapi checks) guarantees a valid op: page-aligned range
 * inside the 48-bit space, and offset + size inside the backing. Nothing is re-checked here.
 */
int vmb_pt_prepare(struct vmb_pt *pt, const struct vmb_pt_op *op, struct vmb_pt_prep *prep);
/* With `walk` held where anyone may walk the tables without the vm's lock (soft.c: a bind's
 * commits hold it from the first op to the last, so a walker sees none or all of them). */
void vmb_pt_commit(struct vmb_pt *pt, const struct vmb_pt_op *op, struct vmb_pt_prep *prep);
/* Prefetch the level-0 entries of [start, last]'s first and last pages and their table's meta,
 * if that table exists (reads the tables above it; writes nothing): what prepare and commit of
 * an op there will touch first. */
void vmb_pt_hint(const struct vmb_pt *pt, uint64_t start, uint64_t last);
void vmb_pt_prep_release(struct vmb_pt *pt, struct vmb_pt_prep *prep);
/* What vmb_pt_prep_release gives back (pages, pins, reserve), the arrays kept: @prep is then as
 * a zeroed one for the next bind, without its allocations (a device's spare: soft.c). */
void vmb_pt_prep_reset(struct vmb_pt *pt, struct vmb_pt_prep *prep);

/* Result of a walk: the leaf translating one VA. */
struct vmb_pt_walk {
	uint64_t pa;        /* pa of the byte at va (0 for NULL leaves) */
	uint64_t page_size; /* size of the leaf: 4K, 64K, 2M, 1G */
	bool writable;
	bool null;          /* sparse leaf */
	int level;          /* the leaf's level (0: 4K/64K entries); -EFAULT: the level whose
			     * entry is not valid (the root's for a VA past VMB_PT_VA_BITS) */
};

/* The one translation path (debug access, engines): the vm's lock or `walk` held. 0, or -EFAULT
 * when not mapped. */
int vmb_pt_translate(const struct vmb_pt *pt, uint64_t va, struct vmb_pt_walk *w);

/* Page sizes (VMB_PT_SIZE_* mask) of the leaves translating [start, last]. */
uint64_t vmb_pt_sizes_in(const struct vmb_pt *pt, uint64_t start, uint64_t last);

/*
 * Debug check: every table reachable once, nvalid counts match, tables/leaves counters match,
 * PS64 groups complete and contiguous, no non-leaf entry at level 0, pt->reserved equals the
 * split cost of its huge leaves, pool: allocated + reserved <= capacity. 0 or -EUCLEAN.
 * Only between binds: a preparation in flight legitimately holds pins and empty tables, which
 * this reports.
 */
int vmb_pt_validate(const struct vmb_pt *pt);

#endif
