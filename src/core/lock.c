/* SPDX-License-Identifier: MIT */
/* The per-thread list of held locks (core/lock.h; debug builds only), thread ids, and the
 * reader-slot rwlock's slow paths. */
#include "core/lock.h"

#include <limits.h>
#include <linux/futex.h>
#include <sched.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

_Thread_local VMB_TLS_FAST unsigned int vmb_thread_id_;
static atomic_uint thread_ids;

unsigned int vmb_thread_id_assign(void)
{
	unsigned int id;
	do
		id = atomic_fetch_add_explicit(&thread_ids, 1, memory_order_relaxed) + 1;
	while (!id);
	vmb_thread_id_ = id;
	return id;
}

void vmb_rwlock_init(struct vmb_rwlock *l)
{
	atomic_init(&l->writer, 0);
	atomic_init(&l->gone, 0);
	atomic_init(&l->left, 0);
	atomic_init(&l->sleepers, 0);
	pthread_mutex_init(&l->wmutex, NULL);
	for (unsigned int i = 0; i < VMB_RWLOCK_SLOTS; i++)
		atomic_init(&l->slot[i].readers, 0);
}

void vmb_rwlock_fini(struct vmb_rwlock *l) { pthread_mutex_destroy(&l->wmutex); }

/* Sleep while *@seq is still @seen (or not at all: the caller looks again either way). */
static void sleep_on(struct vmb_rwlock *l, _Atomic uint32_t *seq, uint32_t seen)
{
	/* announce first, then re-check: a bump after the check sees the sleeper and wakes */
	atomic_fetch_add_explicit(&l->sleepers, 1, memory_order_seq_cst);
	if (atomic_load_explicit(seq, memory_order_seq_cst) == seen)
		syscall(SYS_futex, seq, FUTEX_WAIT_PRIVATE, seen, NULL, NULL, 0);
	atomic_fetch_sub_explicit(&l->sleepers, 1, memory_order_relaxed);
}

static void bump(struct vmb_rwlock *l, _Atomic uint32_t *seq)
{
	atomic_fetch_add_explicit(seq, 1, memory_order_seq_cst);
	if (atomic_load_explicit(&l->sleepers, memory_order_seq_cst))
		syscall(SYS_futex, seq, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

static bool readers_in(struct vmb_rwlock *l)
{
	for (unsigned int i = 0; i < VMB_RWLOCK_SLOTS; i++)
		if (atomic_load_explicit(&l->slot[i].readers, memory_order_seq_cst))
			return true;
	return false;
}

void vmb_rwlock_readers_left(struct vmb_rwlock *l) { bump(l, &l->left); }

void vmb_rwlock_rdlock_slow(struct vmb_rwlock *l, atomic_long *readers, atomic_uint *waiters)
{
	if (waiters)
		atomic_fetch_add_explicit(waiters, 1, memory_order_relaxed);
	do {
		/* back out: the writer may be waiting for this slot */
		atomic_fetch_sub_explicit(readers, 1, memory_order_seq_cst);
		bump(l, &l->left);
		for (;;) {
			uint32_t seen = atomic_load_explicit(&l->gone, memory_order_seq_cst);
			if (!atomic_load_explicit(&l->writer, memory_order_seq_cst))
				break;
			sleep_on(l, &l->gone, seen);
		}
		atomic_fetch_add_explicit(readers, 1, memory_order_seq_cst);
	} while (atomic_load_explicit(&l->writer, memory_order_seq_cst));
	if (waiters)
		atomic_fetch_sub_explicit(waiters, 1, memory_order_relaxed);
}

void vmb_rwlock_wrlock(struct vmb_rwlock *l, atomic_uint *waiters)
{
	bool counted = false;
	if (pthread_mutex_trylock(&l->wmutex)) {
		if ((counted = waiters))
			atomic_fetch_add_explicit(waiters, 1, memory_order_relaxed);
		pthread_mutex_lock(&l->wmutex);
	}
	atomic_store_explicit(&l->writer, vmb_thread_id(), memory_order_seq_cst);
	for (;;) {
		uint32_t seen = atomic_load_explicit(&l->left, memory_order_seq_cst);
		if (!readers_in(l))
			break;
		if (!counted && (counted = waiters))
			atomic_fetch_add_explicit(waiters, 1, memory_order_relaxed);
		sleep_on(l, &l->left, seen);
	}
	if (counted)
		atomic_fetch_sub_explicit(waiters, 1, memory_order_relaxed);
}

void vmb_rwlock_wrunlock(struct vmb_rwlock *l)
{
	atomic_store_explicit(&l->writer, 0, memory_order_seq_cst);
	bump(l, &l->gone);
	pthread_mutex_unlock(&l->wmutex);
}

/* ---- flat combining (lock.h) ---- */

void vmb_combine_init(struct vmb_combine *cb)
{
	atomic_init(&cb->head, NULL);
	atomic_init(&cb->epoch, 0);
	atomic_init(&cb->taken, NULL);
	atomic_init(&cb->sleepers, 0);
}

void vmb_combine_fini(struct vmb_combine *cb) { (void)cb; }

static int64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* The waiter got the mutex: its request ran meanwhile, or is still on the stack (no snapshot
 * is left unrun while nobody holds the mutex): then it comes out of the stack here. Pushers
 * write only `head`; a pushed request's link is written by nobody but the mutex's holder. */
static enum vmb_combine_wait got_mutex(struct vmb_combine *cb, struct vmb_combine_req *r)
{
	if (atomic_load_explicit(&r->state, memory_order_acquire) == VMB_COMBINE_DONE) /* never SEEN: not asleep */
		return VMB_COMBINE_RAN_LOCKED;
	struct vmb_combine_req *p = atomic_load_explicit(&cb->head, memory_order_acquire);
	if (p == r && atomic_compare_exchange_strong_explicit(&cb->head, &p, r->next, memory_order_acq_rel,
							      memory_order_acquire))
		return VMB_COMBINE_OWN;
	/* below the top (pushed on since, if the exchange failed: p is the new top) */
	while (p->next != r)
		p = p->next;
	p->next = r->next;
	return VMB_COMBINE_OWN;
}

#define COMBINE_TRY_EVERY 16u /* spins between two tries of the mutex while queued */
#define COMBINE_PAUSES 64u    /* spins with a pause hint, then with sched_yield() */

enum vmb_combine_wait vmb_combine_wait(struct vmb_combine *cb, struct vmb_mutex *m, struct vmb_combine_req *r)
{
	atomic_store_explicit(&r->state, VMB_COMBINE_QUEUED, memory_order_relaxed);
	struct vmb_combine_req *old = atomic_load_explicit(&cb->head, memory_order_relaxed);
	do
		r->next = old;
	while (!atomic_compare_exchange_weak_explicit(&cb->head, &old, r, memory_order_seq_cst,
						      memory_order_relaxed));
	/* a snapshot taken after this read holds the request (above) */
	unsigned int epoch = atomic_load_explicit(&cb->epoch, memory_order_seq_cst);
	int64_t start = 0;
	bool claimed = false; /* seen once: for good (no more reads of `epoch`, no tries) */
	for (unsigned int i = 0;; i++) {
		uint32_t s = atomic_load_explicit(&r->state, memory_order_acquire);
		bool yielding = i >= COMBINE_PAUSES;
		if (s == VMB_COMBINE_DONE)
			return VMB_COMBINE_RAN;
		if (!claimed && (yielding || i % COMBINE_TRY_EVERY == 0)) {
			claimed = atomic_load_explicit(&cb->epoch, memory_order_relaxed) != epoch;
			if (!claimed && vmb_mutex_trylock(m))
				return got_mutex(cb, r);
		}
		if (yielding || i % 32 == 31) {
			int64_t t = mono_ns();
			if (!start)
				start = t;
			else if (t - start > VMB_COMBINE_SPIN_NS)
				break;
		}
		if (yielding)
			sched_yield(); /* a thread of this CPU runs meanwhile: the holder, or a submitter */
		else
			vmb_cpu_relax();
	}
	bool counted = false; /* in `sleepers`: until it leaves, or the holder takes it out (SEEN) */
	for (;;) {
		uint32_t s = atomic_load_explicit(&r->state, memory_order_acquire);
		if ((s & ~(uint32_t)VMB_COMBINE_SEEN) == VMB_COMBINE_DONE) {
			/* seen asleep: the holder takes it out of the count, after its look (lock.h) */
			if (counted && !(s & VMB_COMBINE_SEEN))
				atomic_fetch_sub_explicit(&cb->sleepers, 1, memory_order_relaxed);
			return VMB_COMBINE_RAN;
		}
		if (!counted && atomic_load_explicit(&cb->epoch, memory_order_seq_cst) == epoch) {
			/* not claimed (as far as it knows): the mutex, which it may get first */
			vmb_mutex_lock(m);
			return got_mutex(cb, r);
		}
		/* claimed: its holder runs it before releasing the mutex; sleep until it is done (the
		 * holder sees SLEEPING or the count, or the compare-and-swap sees DONE: lock.h). Counted
		 * once, however often it wakes before DONE */
		if (!counted) {
			atomic_fetch_add_explicit(&cb->sleepers, 1, memory_order_seq_cst);
			counted = true;
		}
		s = VMB_COMBINE_QUEUED;
		if (atomic_compare_exchange_strong(&r->state, &s, VMB_COMBINE_QUEUED | VMB_COMBINE_SLEEPING) ||
		    s == (VMB_COMBINE_QUEUED | VMB_COMBINE_SLEEPING))
			syscall(SYS_futex, &r->state, FUTEX_WAIT_PRIVATE, VMB_COMBINE_QUEUED | VMB_COMBINE_SLEEPING,
				NULL, NULL, 0);
	}
}

struct vmb_combine_req *vmb_combine_next(struct vmb_combine *cb, bool more)
{
	struct vmb_combine_req *r = atomic_load_explicit(&cb->taken, memory_order_relaxed);
	if (!r) {
		if (!more || !atomic_load_explicit(&cb->head, memory_order_relaxed))
			return NULL;
		/* the stack's line for writing while the add waits for the epoch's: the two misses
		 * (every push and every unclaimed waiter touch them) overlap instead of following */
		__builtin_prefetch(&cb->head, 1);
		atomic_fetch_add_explicit(&cb->epoch, 1, memory_order_seq_cst);
		r = atomic_exchange_explicit(&cb->head, NULL, memory_order_seq_cst);
		if (!r)
			return NULL;
		/* the first request's second line beside the first, which reading r->next misses on:
		 * nothing before it hid them (the later ones are prefetched while the one before runs) */
		__builtin_prefetch((char *)r + 64, 0);
	}
	struct vmb_combine_req *next = r->next, *ahead = next;
	/* the last of its snapshot: the request on top of the stack now, the next snapshot's first
	 * unless more are pushed meanwhile (then one of the snapshot still) */
	if (!ahead && more)
		ahead = atomic_load_explicit(&cb->head, memory_order_relaxed);
	if (ahead) { /* its two lines (vm/job.c) while @r runs: the misses overlap the work */
		__builtin_prefetch(ahead, 0);
		__builtin_prefetch((char *)ahead + 64, 0);
	}
	atomic_store_explicit(&cb->taken, next, memory_order_relaxed);
	return r;
}

bool vmb_combine_done(struct vmb_combine_req *r)
{
	/* the line is in this cache (the request was read): no miss, and the store is not waited for */
	bool sleeping = atomic_load_explicit(&r->state, memory_order_relaxed) & VMB_COMBINE_SLEEPING;
	/* seen asleep: its waiter stays in `sleepers` until vmb_combine_sleepers takes it out */
	atomic_store_explicit(&r->state, sleeping ? VMB_COMBINE_DONE | VMB_COMBINE_SEEN : VMB_COMBINE_DONE,
			      memory_order_release);
	return sleeping;
}

bool vmb_combine_sleepers(struct vmb_combine *cb, unsigned int seen)
{
	atomic_thread_fence(memory_order_seq_cst); /* the DONE stores before the look */
	bool more = atomic_load_explicit(&cb->sleepers, memory_order_relaxed) > seen;
	if (seen) /* the seen ones, which left the count to this look */
		atomic_fetch_sub_explicit(&cb->sleepers, seen, memory_order_relaxed);
	return more;
}

void vmb_combine_wake(_Atomic uint32_t *state)
{
	/* the waiter may be gone by now (a spurious wake-up showed it DONE): a wake of a stale
	 * address is harmless, futex sleepers look again */
	syscall(SYS_futex, state, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

#ifndef NDEBUG
#include <stdio.h>
#include <stdlib.h>

_Thread_local VMB_TLS_FAST struct vmb_lock_held vmb_lock_held_[VMB_LOCK_HELD_MAX];
_Thread_local VMB_TLS_FAST unsigned int vmb_lock_nheld_;

void vmb_lock_fail(const char *what, const char *func)
{
	fprintf(stderr, "vmbind: %s: lock rule broken: %s\n", func, what);
	abort();
}
#endif
