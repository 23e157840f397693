/* SPDX-License-Identifier: MIT */
/*
 * Host-memory allocation for everything a bind or an object creation needs, with a
 * fault-injection hook so tests can make the N-th allocation fail and check the unwind.
 * The hook is a per-thread countdown: no global state shared between clients or threads.
 */
#ifndef VMB_CORE_ALLOC_H
#define VMB_CORE_ALLOC_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

void *vmb_malloc(size_t size);
void *vmb_calloc(size_t n, size_t size);
void *vmb_realloc(void *p, size_t size);

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
/*
 * Host mappings the library creates for BO memory (the BO's pages, their mappings into an arena
 * and for the CPU) count as allocations for the hook: true when this one is to fail, and the
 * caller fails with -ENOMEM as if mmap had. Never on a path that must not fail.
 */
bool vmb_map_should_fail(void);

/*
 * Threads the library starts go through vmb_thread_create() (pthread_create's contract: 0 or
 * a positive error number, errno untouched), so tests can make the @nth next one of the
 * calling thread fail with EAGAIN, as a system out of threads does: vmb_thread_fail_after()
 * works as vmb_alloc_fail_after() does, with its own countdown. The threads block every
 * asynchronous signal (not SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS, SIGABRT): the
 * application's signals go to its own threads (docs/UAPI.md, "Waits and signals").
 */
int vmb_thread_create(pthread_t *t, void *(*fn)(void *), void *arg);
unsigned long vmb_thread_fail_after(unsigned long nth);

/*
 * Device commits (dev/device.h, map_commit) may fail; the soft device's never do, except by this
 * test hook: the @nth next commit of a map operation fails with @err (a negative errno: -EIO,
 * -ENOMEM), 1 = the next one; 0 disables. Unlike the hooks above the countdown is process-wide
 * (atomic), since asynchronous binds commit in the scheduler's workers, not in the test's thread:
 * a test that arms it runs no other device work meanwhile. Returns what was still to go.
 * vmb_commit_should_fail(): 0, or the errno the calling commit is to fail with.
 */
unsigned long vmb_commit_fail_after(unsigned long nth, int err);
int vmb_commit_should_fail(void);
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
