/* SPDX-License-Identifier: MIT */
/* The per-thread list of held locks (core/lock.h; debug builds only), thread ids, and the
 * reader-slot rwlock's slow paths. */
#include "core/lock.h"

#include <limits.h>
#include <linux/futex.h>
#include <sys/syscall.h>
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

#ifndef NDEBUG
#include <stdio.h>
#include <stdlib.h>

#define HELD_MAX 16 /* deepest nesting: device, vm, shared, and the leaf locks are not noted */

static _Thread_local VMB_TLS_FAST struct held {
	const void *l;
	enum vmb_lock_mode mode;
} held[HELD_MAX];
static _Thread_local VMB_TLS_FAST unsigned int nheld;

void vmb_lock_check(bool ok, const char *what, const char *func)
{
	if (!ok) {
		fprintf(stderr, "vmbind: %s: lock rule broken: %s\n", func, what);
		abort();
	}
}

enum vmb_lock_mode vmb_lock_mode(const void *l)
{
	for (unsigned int i = 0; i < nheld; i++)
		if (held[i].l == l)
			return held[i].mode;
	return VMB_LOCK_NONE;
}

void vmb_lock_note(const void *l, enum vmb_lock_mode mode)
{
	vmb_lock_check(vmb_lock_mode(l) == VMB_LOCK_NONE, "lock taken twice by one thread", "vmb_lock_note");
	vmb_lock_check(nheld < HELD_MAX, "too many locks held", "vmb_lock_note");
	held[nheld++] = (struct held){.l = l, .mode = mode};
}

void vmb_lock_unnote(const void *l)
{
	for (unsigned int i = nheld; i-- > 0;) {
		if (held[i].l == l) {
			held[i] = held[--nheld];
			return;
		}
	}
	vmb_lock_check(false, "lock released that the thread does not hold", "vmb_lock_unnote");
}
#endif
