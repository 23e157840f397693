/* SPDX-License-Identifier: MIT */
/*
 * Host-memory allocation for everything a bind or an object creation needs, with a
 * fault-injection hook so tests can make the N-th allocation fail and check the unwind.
 * The hooks are per-thread countdowns (the device-commit one excepted: process-wide, atomic);
 * the only other shared state is each site's hit counter (relaxed atomics: never a lock, never
 * ordering anything). Owns the site records; no lock.
 */
#ifndef VMB_CORE_ALLOC_H
#define VMB_CORE_ALLOC_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

/*
 * Allocation sites. Every call of a hooked function below is a site: a static record of its file,
 * line and function placed in the section "vmb_alloc_sites" (the linker gives its bounds, so the
 * whole list is known before any is reached), which counts the times it was reached. The public
 * face is include/vmbind/debug.h (vmb_debug_fault_inject, vmb_debug_fault_sites). The classes:
 * each has its own countdown, except HOST_ALLOC and HOST_MAP, which share one (the "N-th host
 * allocation" counts both unless the arming says otherwise).
 */
enum vmb_site_class {
	VMB_SITE_HOST_ALLOC, /* vmb_malloc, vmb_calloc, vmb_realloc */
	VMB_SITE_HOST_MAP,   /* vmb_map_should_fail: host mappings of BO memory */
	VMB_SITE_THREAD,     /* vmb_thread_create */
	VMB_SITE_PT_PAGE,    /* vmb_pt_page_should_fail: a page-table page from a device's pool */
	VMB_SITE_COMMIT,     /* vmb_commit_should_fail: a device commit */
	VMB_SITE_CLASSES
};

struct vmb_alloc_site {
	const char *file;
	const char *func;
	unsigned int line;
	unsigned int cls;     /* enum vmb_site_class */
	_Atomic unsigned long hits; /* relaxed: see vmb_site_hit() in alloc.c */
};

/* The site of the call it is written in (a GNU statement expression, as gcc and clang have). */
#define VMB_SITE(cls_)                                                                             \
	(__extension__({                                                                           \
		static struct vmb_alloc_site vmb_site_                                             \
			__attribute__((section("vmb_alloc_sites"), used, aligned(8))) = {          \
				__FILE__, __func__, __LINE__, (cls_), 0};                          \
		&vmb_site_;                                                                \
	}))

/* The sites of the module (the library, or a test program linking it statically), in link order. */
struct vmb_alloc_site *vmb_sites_begin(void);
struct vmb_alloc_site *vmb_sites_end(void);
/* Hits are counted exactly only once counting is on (a relaxed per-site counter, turned on by the
 * first debug call of the process); before that a reached site only records 1. */
void vmb_sites_count(bool on);
void vmb_sites_reset(void);

/*
 * A cache of freed blocks of one kind (a few slots): a block released on one thread is taken by
 * the next allocation of its kind, on any thread, instead of going back to the heap (glibc: into
 * the arena of the thread that allocated it, under that arena's lock, which the allocating
 * thread then contends for). Lock-free: a put is a compare-and-swap from NULL (a full cache frees
 * the block), a take an exchange with NULL (no ABA); any thread, signalling paths included (no
 * allocation, no wait). vmb_memcache_get() gives NULL on a thread whose allocations fault
 * injection counts (the caller allocates then, so the harnesses reach its site); a block it
 * gives is not cleared. vmb_memcache_fini() frees what is left (no other user then).
 */
#define VMB_MEMCACHE_SLOTS 4
struct vmb_memcache {
	void *_Atomic slot[VMB_MEMCACHE_SLOTS];
};
void vmb_memcache_init(struct vmb_memcache *c);
void vmb_memcache_put(struct vmb_memcache *c, void *p);
void *vmb_memcache_get(struct vmb_memcache *c);
void vmb_memcache_fini(struct vmb_memcache *c);
/* A zeroed block of @size: one from @c, else from the heap at allocation site @s (NULL without
 * memory). Use vmb_memcache_zalloc(), whose site is the caller's line. */
void *vmb_memcache_zalloc_at(struct vmb_memcache *c, struct vmb_alloc_site *s, size_t size);

void *vmb_malloc_at(struct vmb_alloc_site *s, size_t size);
void *vmb_calloc_at(struct vmb_alloc_site *s, size_t n, size_t size);
void *vmb_realloc_at(struct vmb_alloc_site *s, void *p, size_t size);
/* aligned_alloc(@align, @size) (@size a multiple of @align, a power of two), at site @s; free()d. */
void *vmb_malloc_aligned_at(struct vmb_alloc_site *s, size_t align, size_t size);
#define vmb_malloc(size) vmb_malloc_at(VMB_SITE(VMB_SITE_HOST_ALLOC), (size))
#define vmb_calloc(n, size) vmb_calloc_at(VMB_SITE(VMB_SITE_HOST_ALLOC), (n), (size))
#define vmb_memcache_zalloc(c, size) vmb_memcache_zalloc_at((c), VMB_SITE(VMB_SITE_HOST_ALLOC), (size))
#define vmb_realloc(p, size) vmb_realloc_at(VMB_SITE(VMB_SITE_HOST_ALLOC), (p), (size))

/*
 * Blocks carved from 2 MiB chunks that ask for transparent huge pages (MADV_HUGEPAGE: honoured
 * where THP is "madvise" or "always"), for a structure read at random once it is large: the VA
 * tree's nodes and mappings at 10^6 mappings are ~86 MB, where with 4 KiB pages each random
 * access is a TLB miss too (in a guest, a two-dimensional page walk); with 2 MiB pages they are
 * 43 TLB entries. Blocks are never given back one by one: the owner keeps freed ones on its own
 * free list, and vmb_hugebump_fini() unmaps every chunk. A block is 16-byte aligned (as malloc's),
 * and 64-byte aligned when every block asked of the same bump is a multiple of 64 bytes (a chunk's
 * first block starts 64 bytes in: the B+tree's nodes, the VA manager's mappings)
 * and at most VMB_HUGEBUMP_MAX bytes; each allocation is a VMB_SITE_HOST_ALLOC site (fault
 * injection fails it as it would the malloc it replaces: an owner passes the site of that
 * malloc, so that the site is reached, by the fault harness too, in a small structure). An owner starts using one only once
 * its malloc'd memory passed a chunk or so (a small structure stays small). Not thread-safe:
 * the owner's lock.
 */
#define VMB_HUGEBUMP_CHUNK (2u << 20)
#define VMB_HUGEBUMP_MAX (64u << 10)
struct vmb_hugebump {
	char *cur, *end; /* the current chunk's unused part */
	void *chunks;    /* chunks, chained through their first word */
	size_t bytes;    /* bytes of chunks mapped */
};
void vmb_hugebump_init(struct vmb_hugebump *b);
void *vmb_hugebump_alloc_at(struct vmb_alloc_site *s, struct vmb_hugebump *b, size_t size);
#define vmb_hugebump_alloc(b, size) vmb_hugebump_alloc_at(VMB_SITE(VMB_SITE_HOST_ALLOC), (b), (size))
void vmb_hugebump_fini(struct vmb_hugebump *b);

/*
 * Arming a class's countdown (the public call's semantics, debug.h): the @nth next hit of a site
 * of the classes in @mask (one countdown's classes: VMB_SITE_HOST_ALLOC and/or VMB_SITE_HOST_MAP,
 * or one other class) fails; with @persist, it and every later one fail until re-armed or
 * disarmed (@nth 0). THREAD and PT_PAGE countdowns are the calling thread's, as the host one;
 * COMMIT's is process-wide (commits run in the scheduler's workers) and fails with @err.
 * Returns what the previous arming still had to go (0: it fired, or was off); *@injected (if not
 * NULL): how many failures it injected.
 */
unsigned long vmb_fault_arm(unsigned int mask, unsigned long nth, bool persist, int err,
			    unsigned long *injected);

/*
 * Test hook: make the @nth next vmb_* allocation of the calling thread fail (1 = the next one);
 * 0 disables. Returns how many allocations were still to go before the failure (0 if it fired
 * or was off), so a test can walk n = 1, 2, ... until an operation stops failing.
 */
unsigned long vmb_alloc_fail_after(unsigned long nth);
/*
 * Persistent mode of the same hook: the @nth next allocation of the calling thread and every
 * later one fail (a host out of memory from then on), until vmb_alloc_fail_after() or
 * vmb_alloc_fail_from() re-arms or disarms it (0). Returns as vmb_alloc_fail_after().
 * vmb_alloc_failing(): true once the persistent failure has started on this thread.
 */
unsigned long vmb_alloc_fail_from(unsigned long nth);
bool vmb_alloc_failing(void);
/* This thread's host-memory or page-table countdown is armed (or firing): its allocations are
 * counted, so its work must run on this thread (core/lock.h, flat combining). */
bool vmb_fault_armed(void);
/*
 * Host mappings the library creates for BO memory (the BO's pages, their mappings into an arena
 * and for the CPU) count as allocations for the hook: true when this one is to fail, and the
 * caller fails with -ENOMEM as if mmap had. Never on a path that must not fail.
 */
bool vmb_map_should_fail_at(struct vmb_alloc_site *s);
#define vmb_map_should_fail() vmb_map_should_fail_at(VMB_SITE(VMB_SITE_HOST_MAP))

/*
 * Threads the library starts go through vmb_thread_create() (pthread_create's contract: 0 or
 * a positive error number, errno untouched), so tests can make the @nth next one of the
 * calling thread fail with EAGAIN, as a system out of threads does: vmb_thread_fail_after()
 * works as vmb_alloc_fail_after() does, with its own countdown. The threads block every
 * asynchronous signal (not SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS, SIGABRT): the
 * application's signals go to its own threads (docs/UAPI.md, "Waits and signals").
 */
int vmb_thread_create_at(struct vmb_alloc_site *s, pthread_t *t, void *(*fn)(void *), void *arg);
#define vmb_thread_create(t, fn, arg) vmb_thread_create_at(VMB_SITE(VMB_SITE_THREAD), (t), (fn), (arg))
unsigned long vmb_thread_fail_after(unsigned long nth);

/*
 * A page-table page a device takes from its pool (not from its split reserve, which cannot fail):
 * true when this one is to fail (the caller fails with -ENOMEM as if the pool were empty).
 * The calling thread's countdown.
 */
bool vmb_pt_page_should_fail_at(struct vmb_alloc_site *s);
#define vmb_pt_page_should_fail() vmb_pt_page_should_fail_at(VMB_SITE(VMB_SITE_PT_PAGE))

/*
 * Device commits (dev/device.h, map_commit) may fail; the soft device's never do, except by this
 * test hook: the @nth next commit of a map operation fails with @err (a negative errno: -EIO,
 * -ENOMEM), 1 = the next one; 0 disables. Unlike the hooks above the countdown is process-wide
 * (atomic), since asynchronous binds commit in the scheduler's workers, not in the test's thread:
 * a test that arms it runs no other device work meanwhile. Returns what was still to go.
 * vmb_commit_should_fail(): 0, or the errno the calling commit is to fail with.
 */
unsigned long vmb_commit_fail_after(unsigned long nth, int err);
int vmb_commit_should_fail_at(struct vmb_alloc_site *s);
#define vmb_commit_should_fail() vmb_commit_should_fail_at(VMB_SITE(VMB_SITE_COMMIT))
/*
 * Every failed commit of a bind job (vm/job.c) is counted, process-wide: a test that runs a
 * workload with no injection asserts the count did not move (the soft device never fails).
 */
void vmb_commit_failed_note(void);
unsigned long vmb_commit_failed_count(void);

/*
 * Device copies (dev/device.h, copy_run: a PREFETCH's migration) may fail; the soft device's
 * never do, except by this test hook, which works as vmb_commit_fail_after() (process-wide, the
 * @nth next copy fails with @err). vmb_copy_hold(true) holds the soft copy engine back: it
 * starts no copy until vmb_copy_hold(false) (or the device stops), so a test sees a migration
 * in flight. vmb_copy_held(): the hold is on. A failed copy counts in vmb_commit_failed_count().
 */
unsigned long vmb_copy_fail_after(unsigned long nth, int err);
int vmb_copy_should_fail(void);
void vmb_copy_hold(bool on);
bool vmb_copy_held(void);

/*
 * Signalling sections (per thread, nestable): code that must lead to a fence signal runs
 * inside one, and an allocation there aborts in debug builds (NDEBUG unset): the work that
 * signals a fence must not depend on memory being available. See sync/fence.h.
 */
void vmb_signalling_begin(void);
/*
 * Waiting (on a fence, a user fence, an event) inside a signalling section, or while holding a
 * lock that signalling paths take (the device lock: between vmb_nowait_begin/end), could wait
 * for ourselves: vmb_may_wait(), called by every wait, aborts in debug builds.
 */
void vmb_nowait_begin(void);
void vmb_nowait_end(void);
void vmb_may_wait(void);
void vmb_signalling_end(void);
bool vmb_in_signalling(void);

#endif
