/* SPDX-License-Identifier: MIT */
/*
 * Who holds what, checked in debug builds. Every lock that a structure documents as protecting
 * its fields (the device lock, a vm's lock, the device's cross lock) is taken through these
 * wrappers, which record it in a per-thread list of the locks the thread holds, with the mode
 * (shared: a read lock; exclusive). A function that needs a lock says so at its entry with
 * vmb_lock_assert_held() (or _excl()); a wrong caller aborts there instead of racing. The list
 * also catches taking a lock the thread already holds (a self-deadlock: a read lock taken twice
 * deadlocks once a writer waits between the two). Release builds (NDEBUG): no list, no checks,
 * and no count of the nowait locks held (core/alloc.h: only debug builds read it).
 *
 * The list is the thread's own (thread-local): no lock protects it. Its thread-locals use the
 * initial-exec TLS model (VMB_TLS_FAST): an access is a load at a fixed offset from the thread
 * pointer, where the default model of a shared library calls __tls_get_addr() for each function
 * that touches them (about 70 ns of a 1-op synchronous bind, docs/PERFORMANCE.md). They take a
 * few hundred bytes of the static TLS block, which glibc keeps spare for a dlopen()ed library.
 */
#ifndef VMB_CORE_LOCK_H
#define VMB_CORE_LOCK_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "core/alloc.h"

enum vmb_lock_mode { VMB_LOCK_NONE, VMB_LOCK_SHARED, VMB_LOCK_EXCL };

#define VMB_TLS_FAST __attribute__((tls_model("initial-exec")))

#ifndef NDEBUG
/* @l (any lock's address) is now held by this thread in @mode: aborts if it already was. */
void vmb_lock_note(const void *l, enum vmb_lock_mode mode);
/* @l is released by this thread: aborts if it did not hold it. */
void vmb_lock_unnote(const void *l);
/* How this thread holds @l. */
enum vmb_lock_mode vmb_lock_mode(const void *l);
/* Aborts with @what's name unless @ok. */
void vmb_lock_check(bool ok, const char *what, const char *func);
#define vmb_lock_assert_held(l) vmb_lock_check(vmb_lock_mode(l) != VMB_LOCK_NONE, #l, __func__)
#define vmb_lock_assert_excl(l) vmb_lock_check(vmb_lock_mode(l) == VMB_LOCK_EXCL, #l, __func__)
#define vmb_lock_assert_not_held(l) vmb_lock_check(vmb_lock_mode(l) == VMB_LOCK_NONE, #l, __func__)
/* Either condition (e.g. a vm's lock, or the device lock exclusively). */
#define vmb_lock_assert(cond) vmb_lock_check((cond), #cond, __func__)
#else
static inline void vmb_lock_note(const void *l, enum vmb_lock_mode mode) { (void)l; (void)mode; }
static inline void vmb_lock_unnote(const void *l) { (void)l; }
#define vmb_lock_assert_held(l) ((void)0)
#define vmb_lock_assert_excl(l) ((void)0)
#define vmb_lock_assert_not_held(l) ((void)0)
#define vmb_lock_assert(cond) ((void)0)
#endif

/* A lock under which nobody waits is taken / released: vmb_nowait_begin/end (core/alloc.h),
 * whose count only the checks of debug builds read. */
static inline void vmb_lock_nowait_begin(void)
{
#ifndef NDEBUG
	vmb_nowait_begin();
#endif
}
static inline void vmb_lock_nowait_end(void)
{
#ifndef NDEBUG
	vmb_nowait_end();
#endif
}

/*
 * A mutex under which nobody waits on a fence (a signalling path may take it: between
 * vmb_nowait_begin/end, core/alloc.h), noted for the checks above, with the count of the threads
 * blocked on it (`waiters`, atomic): a holder that runs long (a soft engine's time slice) lets
 * them in first. vmb_mutex_lock_nocount() for such holders themselves, which take turns anyway.
 */
struct vmb_mutex {
	pthread_mutex_t m;
	atomic_uint waiters;
};

static inline void vmb_mutex_init(struct vmb_mutex *l)
{
	pthread_mutex_init(&l->m, NULL);
	atomic_init(&l->waiters, 0);
}
static inline void vmb_mutex_fini(struct vmb_mutex *l) { pthread_mutex_destroy(&l->m); }
static inline void vmb_mutex_lock(struct vmb_mutex *l)
{
	if (pthread_mutex_trylock(&l->m)) {
		atomic_fetch_add_explicit(&l->waiters, 1, memory_order_relaxed);
		pthread_mutex_lock(&l->m);
		atomic_fetch_sub_explicit(&l->waiters, 1, memory_order_relaxed);
	}
	vmb_lock_note(l, VMB_LOCK_EXCL);
	vmb_lock_nowait_begin();
}
static inline void vmb_mutex_lock_nocount(struct vmb_mutex *l)
{
	pthread_mutex_lock(&l->m);
	vmb_lock_note(l, VMB_LOCK_EXCL);
	vmb_lock_nowait_begin();
}
static inline void vmb_mutex_unlock(struct vmb_mutex *l)
{
	vmb_lock_nowait_end();
	vmb_lock_unnote(l);
	pthread_mutex_unlock(&l->m);
}
static inline unsigned int vmb_mutex_waiters(struct vmb_mutex *l)
{
	return atomic_load_explicit(&l->waiters, memory_order_relaxed);
}

#endif
