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
#include <stdint.h>

#include "core/alloc.h"
#include "core/list.h"

enum vmb_lock_mode { VMB_LOCK_NONE, VMB_LOCK_SHARED, VMB_LOCK_EXCL };

#define VMB_TLS_FAST __attribute__((tls_model("initial-exec")))

#ifndef NDEBUG
/* The thread's list (lock.c), read and written inline: a 1-op bind notes and un-notes the
 * device lock and its vm's lock and asserts on them a few times more (calls cost ~13 ns of it). */
#define VMB_LOCK_HELD_MAX 16 /* deepest nesting: device, vm, shared, and the leaf locks are not noted */
struct vmb_lock_held {
	const void *l;
	enum vmb_lock_mode mode;
};
extern _Thread_local VMB_TLS_FAST struct vmb_lock_held vmb_lock_held_[VMB_LOCK_HELD_MAX];
extern _Thread_local VMB_TLS_FAST unsigned int vmb_lock_nheld_;
extern _Thread_local VMB_TLS_FAST unsigned int vmb_nowait_depth_; /* core/alloc.c */
/* Says which rule @func broke, and aborts. */
__attribute__((noreturn, cold)) void vmb_lock_fail(const char *what, const char *func);

/* Aborts with @what's name unless @ok. */
static inline void vmb_lock_check(bool ok, const char *what, const char *func)
{
	if (__builtin_expect(!ok, 0))
		vmb_lock_fail(what, func);
}
/* How this thread holds @l. */
static inline enum vmb_lock_mode vmb_lock_mode(const void *l)
{
	for (unsigned int i = 0; i < vmb_lock_nheld_; i++)
		if (vmb_lock_held_[i].l == l)
			return vmb_lock_held_[i].mode;
	return VMB_LOCK_NONE;
}
/* @l (any lock's address) is now held by this thread in @mode: aborts if it already was. */
static inline void vmb_lock_note(const void *l, enum vmb_lock_mode mode)
{
	vmb_lock_check(vmb_lock_mode(l) == VMB_LOCK_NONE, "lock taken twice by one thread", "vmb_lock_note");
	vmb_lock_check(vmb_lock_nheld_ < VMB_LOCK_HELD_MAX, "too many locks held", "vmb_lock_note");
	vmb_lock_held_[vmb_lock_nheld_++] = (struct vmb_lock_held){.l = l, .mode = mode};
}
/* @l is released by this thread: aborts if it did not hold it. */
static inline void vmb_lock_unnote(const void *l)
{
	for (unsigned int i = vmb_lock_nheld_; i-- > 0;) {
		if (vmb_lock_held_[i].l == l) {
			vmb_lock_held_[i] = vmb_lock_held_[--vmb_lock_nheld_];
			return;
		}
	}
	vmb_lock_fail("lock released that the thread does not hold", "vmb_lock_unnote");
}
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
	vmb_nowait_depth_++; /* vmb_nowait_begin(), inline */
#endif
}
static inline void vmb_lock_nowait_end(void)
{
#ifndef NDEBUG
	vmb_nowait_depth_--;
#endif
}

/*
 * Each thread's id (nonzero, from a process-wide count at its first call; wraps after 2^32
 * threads) and its slot in a vmb_rwlock (the id modulo VMB_RWLOCK_SLOTS: threads created one
 * after the other get different slots). Thread-local: no lock.
 */
extern _Thread_local VMB_TLS_FAST unsigned int vmb_thread_id_;
unsigned int vmb_thread_id_assign(void);
static inline unsigned int vmb_thread_id(void)
{
	unsigned int id = vmb_thread_id_;
	return id ? id : vmb_thread_id_assign();
}

/*
 * A reader-writer lock whose readers write no cache line in common (the device lock, which
 * almost every call takes shared: dev/core.h). A pthread rwlock's readers all add to and
 * subtract from one counter, so with many submitters on many cores that line moves between the
 * cores twice per call (docs/PERFORMANCE.md, "the lock path of a synchronous bind").
 *  - A reader adds 1 to its thread's slot (`slot[vmb_thread_id() % VMB_RWLOCK_SLOTS]`, each
 *    counter on cache lines of its own: with up to VMB_RWLOCK_SLOTS threads, a line only this
 *    thread writes), then reads `writer`, a line no reader writes (it stays in every core's
 *    cache while no writer comes). Zero: it holds the lock. Releasing: subtract 1, read `writer`.
 *  - A writer (one at a time: `wmutex`) sets `writer` to its thread id, then waits until every
 *    slot is zero. A reader that finds `writer` set takes its 1 back and sleeps until `writer`
 *    is clear, then tries again: a waiting writer holds up new readers (writers first, as the
 *    pthread rwlock it replaces was set up), so a stream of readers cannot starve a writer.
 *  - Both sides use sequentially consistent operations (a reader's add, then its load of
 *    `writer`; a writer's store of `writer`, then its loads of the slots): at least one of
 *    them sees the other. Happens-before for the data: a reader's release (its subtract) to
 *    the writer's load that sees the slot at zero; the writer's clear of `writer` to the
 *    reader's load that sees it clear.
 *  - Sleeping: futexes on two sequence words, `gone` (bumped when a writer leaves; readers
 *    sleep on it) and `left` (bumped when a reader leaves while `writer` is set; the writer
 *    sleeps on it); a bump makes a system call only while `sleepers` > 0. Waiting for the lock
 *    is not waiting on a fence: no vmb_may_wait() check (a signalling path may take the lock).
 *  - `waiters` (vmb_rwlock_rdlock/wrlock's argument, may be NULL) counts the threads blocked
 *    meanwhile (dev/core.h: lock_waiters, which a soft engine reads to end its time slice).
 *  - Not recursive, and a thread's slot must not change while it holds the lock (the id is
 *    fixed per thread). Unlocking tells the modes apart by `writer`: only the writer's own id
 *    there means the caller is the writer.
 * Memory: VMB_RWLOCK_SLOTS * 128 bytes (8 KiB) and a few lines; no alignment needed (the
 * padding keeps each hot word 64 bytes or more from any other written one).
 */
#define VMB_RWLOCK_SLOTS 64u
#define VMB_RWLOCK_SLOT_BYTES 128u

/* A spin-wait's pause (lets the sibling hyperthread run, saves power). */
static inline void vmb_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield" ::: "memory");
#else
	__asm__ __volatile__("" ::: "memory");
#endif
}

struct vmb_rwlock_slot {
	atomic_long readers; /* this slot's threads holding the lock shared (or backing out) */
	char pad[VMB_RWLOCK_SLOT_BYTES - sizeof(atomic_long)];
};

struct vmb_rwlock {
	char pad0[64];
	atomic_uint writer;       /* 0, or the id of the thread that holds it or waits for readers */
	char pad1[64];
	_Atomic uint32_t gone;    /* futex: bumped when a writer leaves */
	_Atomic uint32_t left;    /* futex: bumped when a reader leaves while `writer` is set */
	atomic_uint sleepers;     /* threads asleep on `gone` or `left` */
	pthread_mutex_t wmutex;   /* writers, one at a time */
	struct vmb_rwlock_slot slot[VMB_RWLOCK_SLOTS];
};

void vmb_rwlock_init(struct vmb_rwlock *l);
void vmb_rwlock_fini(struct vmb_rwlock *l);
void vmb_rwlock_wrlock(struct vmb_rwlock *l, atomic_uint *waiters);
/* The slow paths: a writer is there (rdlock), or is waiting (rdunlock), or is the caller. */
void vmb_rwlock_rdlock_slow(struct vmb_rwlock *l, atomic_long *readers, atomic_uint *waiters);
void vmb_rwlock_readers_left(struct vmb_rwlock *l);
void vmb_rwlock_wrunlock(struct vmb_rwlock *l);

static inline void vmb_rwlock_rdlock(struct vmb_rwlock *l, atomic_uint *waiters)
{
	atomic_long *r = &l->slot[vmb_thread_id() % VMB_RWLOCK_SLOTS].readers;
	atomic_fetch_add_explicit(r, 1, memory_order_seq_cst);
	if (__builtin_expect(atomic_load_explicit(&l->writer, memory_order_seq_cst) != 0, 0))
		vmb_rwlock_rdlock_slow(l, r, waiters);
}

/* Either mode. */
static inline void vmb_rwlock_unlock(struct vmb_rwlock *l)
{
	unsigned int id = vmb_thread_id();
	/* only this thread writes its own id there, and only this thread clears it */
	if (atomic_load_explicit(&l->writer, memory_order_relaxed) == id) {
		vmb_rwlock_wrunlock(l);
		return;
	}
	atomic_fetch_sub_explicit(&l->slot[id % VMB_RWLOCK_SLOTS].readers, 1, memory_order_seq_cst);
	if (__builtin_expect(atomic_load_explicit(&l->writer, memory_order_seq_cst) != 0, 0))
		vmb_rwlock_readers_left(l);
}

/*
 * A mutex under which nobody waits on a fence (a signalling path may take it: between
 * vmb_nowait_begin/end, core/alloc.h), noted for the checks above, with the count of the threads
 * blocked on it (`waiters`, atomic): a holder that runs long (a soft engine's time slice) lets
 * them in first. vmb_mutex_lock_nocount() for such holders themselves, which take turns anyway.
 * Adaptive (PTHREAD_MUTEX_ADAPTIVE_NP): a thread that finds it taken spins a while (glibc bounds
 * and adapts the spin) before it sleeps. Its holders (a vm's binds) keep it for less than a
 * futex wake-up takes, and a plain mutex, once anyone sleeps on it, makes every release a wake-up
 * system call and every waiter a sleeper: many submitters on one vm then serialise on the
 * wake-ups, not on the work (docs/PERFORMANCE.md, "the lock path of a synchronous bind").
 */
struct vmb_mutex {
	pthread_mutex_t m;
	atomic_uint waiters;
};

static inline void vmb_mutex_init(struct vmb_mutex *l)
{
	pthread_mutexattr_t a;
	pthread_mutexattr_init(&a);
	/* spins a while before it sleeps: a contended bind hands the lock over in less time than
	 * a futex wake-up, which a plain mutex pays at every release while anyone sleeps */
	pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ADAPTIVE_NP);
	pthread_mutex_init(&l->m, &a);
	pthread_mutexattr_destroy(&a);
	atomic_init(&l->waiters, 0);
}
static inline void vmb_mutex_fini(struct vmb_mutex *l) { pthread_mutex_destroy(&l->m); }
/* gcc 12 with ASan (-Wstringop-overflow) takes `waiters` for a zero-sized region where this is
 * inlined into the vm lock's combining (src/core/lock.c): a false positive, which -Werror made a
 * failed build */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wstringop-overflow"
#endif
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
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
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
/* Takes @l if it is free: true then (noted as vmb_mutex_lock does), false at once otherwise. */
static inline bool vmb_mutex_trylock(struct vmb_mutex *l)
{
	if (pthread_mutex_trylock(&l->m))
		return false;
	vmb_lock_note(l, VMB_LOCK_EXCL);
	vmb_lock_nowait_begin();
	return true;
}

/*
 * Flat combining on a vmb_mutex (a vm's lock: vm/job.c runs binds through it). A
 * thread that finds the mutex taken queues a request and waits; the mutex's holder, before it
 * releases it, takes the queued requests and runs them (vmb_combine_next, the caller's work,
 * vmb_combine_done for each). Work that would move the protected data (a vm's tree, page tables,
 * locks) to the next thread's core at each hand-over of the mutex runs where the data already is,
 * and a waiter gets its result instead of the mutex: with many submitters on many cores, one
 * core does the serial work with its cache warm, the others only hand over their requests.
 * What the holder pays per request is the lines it shares with the waiter: here one miss to
 * read the request (prefetched while the request before it runs) and one for the result.
 *  - The queue has no lock (a lock there was two more atomic operations on a line that every
 *    waiter and the holder write): `head` (atomic) is a stack of the requests pushed and not
 *    taken, newest first; a waiter pushes with one compare-and-swap. The holder takes the whole
 *    stack at once, a snapshot (one exchange), after adding 1 to `epoch`, and hands its
 *    requests out one by one (`taken`: the rest of the snapshot; the mutex's), newest first,
 *    prefetching each one's lines while the one before runs (the last one's: those of the
 *    request then on top of the stack, which the next snapshot will likely hand out first); it runs every request of a
 *    snapshot before it releases the mutex, so `taken` is empty whenever nobody holds it.
 *    Nothing is written into a request until it is DONE (no per-request claim: a write there
 *    would be one more miss, the waiter spinning on that line).
 *  - Claimed: a waiter reads `epoch` once it has pushed (both sequentially consistent, as the
 *    holder's add and exchange): once `epoch` differs, its request is in a snapshot that the
 *    holder of the mutex runs before releasing it. (Its push came before the exchange, or its
 *    read would have seen that snapshot's add; a read that did see the add of the snapshot it
 *    is in only makes the waiter take itself for unclaimed: it then blocks on the mutex rather
 *    than sleeping, and finds its request DONE when it gets the mutex.)
 *  - A request's `state` (atomic): QUEUED, then DONE (its results written before, with a
 *    release store: the waiter's acquire load sees them), a plain store that the holder does
 *    not wait for (a locked exchange there waited, at every request, for the line that its
 *    waiter spins on). A claimed waiter about to sleep adds 1 to `sleepers` (once), then ors
 *    SLEEPING into QUEUED (a compare-and-swap: it fails once DONE) and sleeps on the word
 *    (futex). The holder reads the state before its DONE store (vmb_combine_done: true if
 *    SLEEPING, that waiter is to be woken; it then stores DONE | SEEN) and, after the DONE
 *    stores of its hold, fences and reads `sleepers` once (vmb_combine_sleepers: both sides
 *    sequentially consistent, so one of them sees the other): more than it saw SLEEPING means a
 *    waiter went to sleep between its look and its store, and then it wakes every request of
 *    the hold. The count must not drop below what the holder saw before that look: a seen
 *    waiter can wake early (a signal, a wake of its address left from an earlier hold) and
 *    leave once DONE; so a waiter that leaves DONE | SEEN does not take itself out of the
 *    count, the holder's look does (one subtraction for all it saw), and one that leaves DONE
 *    alone (not seen) takes itself out. Wakes come once the mutex is released
 *    (system calls, kept out of the serial part; a wake of a waiter that did not sleep is
 *    harmless). After DONE the holder touches the request no more (it lives on the waiter's
 *    stack): it saved the word's address before, and a wake of an address whose waiter has
 *    gone is harmless.
 *  - The waiter (vmb_combine_wait) spins on its state for a bounded time (VMB_COMBINE_SPIN_NS:
 *    a few dozen pause hints, then sched_yield(), which hands a busy CPU to a runnable thread,
 *    the holder or another submitter, and returns at once on an idle one), trying the mutex now
 *    and then while unclaimed: a holder may release it without seeing the request (it came just
 *    after the holder's last look), or not combine at all (a worker's commit, a query). Past
 *    the budget a claimed request sleeps until DONE, an unclaimed one blocks on the mutex. A
 *    waiter that gets the mutex finds its request DONE (someone ran it meanwhile) or still on
 *    `head` (no snapshot is left unrun while nobody holds the mutex): it takes it out of the
 *    stack (the pushers only ever write `head`, never a pushed request's link) and does its
 *    work itself, under the mutex; the other requests stay on the stack for the holder.
 *  - The holder: after releasing, vmb_combine_pending() tells it whether requests came in
 *    meanwhile (it then tries the mutex again: vm/job.c). No fence orders a waiter's queueing
 *    before its try of the mutex, nor the holder's release before its look at the queue (on x86
 *    the locked instructions of both do; elsewhere the two may miss each other): a miss costs
 *    the waiter its next try of the mutex, a few spins later, never its request.
 * What runs in a request runs on another thread: the caller keeps out what depends on the
 * thread (its fault-injection countdowns: vmb_fault_armed(); anything it would wait for).
 */
enum vmb_combine_state {
	VMB_COMBINE_QUEUED = 1,
	VMB_COMBINE_DONE = 3,
	VMB_COMBINE_SLEEPING = 4, /* or-ed into QUEUED */
	VMB_COMBINE_SEEN = 8,     /* or-ed into DONE: the holder saw SLEEPING (takes it out of the count) */
};

struct vmb_combine_req {
	struct vmb_combine_req *next; /* the next older one on `head` (above) */
	_Atomic uint32_t state;       /* enum vmb_combine_state (above); a futex word */
};

struct vmb_combine {
	char pad0[64];
	_Atomic(struct vmb_combine_req *) head; /* pushed, newest first (lock-free) */
	char pad1[64];
	/* snapshots taken (the holder adds, once a snapshot; unclaimed waiters read it now and
	 * then): a line of its own, away from `head` (every push) and `taken` (every request) */
	atomic_uint epoch;
	char pad2[64];
	/* what is left of the snapshot being run (the mutex; atomic for vmb_combine_pending) */
	_Atomic(struct vmb_combine_req *) taken;
	char pad3[64];
	/* waiters asleep on their state word or about to sleep, until they leave, or (seen asleep:
	 * DONE | SEEN) until their holder's look at the count (above) */
	atomic_uint sleepers;
	char pad4[64];
};

#define VMB_COMBINE_SPIN_NS 5000 /* a waiter's spin before it sleeps or blocks (above) */

void vmb_combine_init(struct vmb_combine *cb);
void vmb_combine_fini(struct vmb_combine *cb);

enum vmb_combine_wait {
	VMB_COMBINE_RAN,         /* @r ran (DONE); @m not held */
	VMB_COMBINE_RAN_LOCKED,  /* @r ran (DONE); the caller holds @m: it runs the queue, releases */
	VMB_COMBINE_OWN,         /* @r did not run; the caller holds @m and does its work itself */
};
/* The caller found @m taken: queues @r (set up by the caller, state unset) and waits, as above. */
enum vmb_combine_wait vmb_combine_wait(struct vmb_combine *cb, struct vmb_mutex *m, struct vmb_combine_req *r);
/* The holder of the mutex: the next request to run, or NULL. With @more false it takes no new
 * snapshot (it bounds a hold: what is left of the current one still comes); every request it
 * hands out must be run (vmb_combine_done) before the mutex is released, and the caller calls
 * it until NULL before releasing. */
struct vmb_combine_req *vmb_combine_next(struct vmb_combine *cb, bool more);
/* The holder ran @r (its results written): DONE. True if its waiter sleeps: wake it (below). Save
 * &r->state first: @r may be gone once DONE. */
bool vmb_combine_done(struct vmb_combine_req *r);
/* After the DONE stores of a hold, of which @seen returned true: true if more waiters may
 * sleep; then every request of the hold is to be woken, else those @seen. Called once for those
 * DONE stores (the mutex held), whatever @seen: it takes the @seen waiters out of the count
 * (above). Wakes: vmb_combine_wake(), once the mutex is released. */
bool vmb_combine_sleepers(struct vmb_combine *cb, unsigned int seen);
void vmb_combine_wake(_Atomic uint32_t *state);
/* After the holder released the mutex: requests are queued (see above). */
static inline bool vmb_combine_pending(struct vmb_combine *cb)
{
	return atomic_load_explicit(&cb->head, memory_order_relaxed) ||
	       atomic_load_explicit(&cb->taken, memory_order_relaxed);
}

#endif
