/* SPDX-License-Identifier: MIT */
#include "core/alloc.h"

#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

/* Countdown per thread: the allocation that brings it from 1 to 0 fails; with fail_persist,
 * that one and every later one of the thread fail, until the hook is re-armed or disarmed. */
static _Thread_local unsigned long fail_countdown;
static _Thread_local bool fail_persist;
static _Thread_local bool fail_firing;

/* Depth of nested signalling sections of the calling thread. */
static _Thread_local unsigned int signalling_depth;

/* Depth of locks held by the calling thread that signalling paths may take (the device lock). */
static _Thread_local unsigned int nowait_depth;

void vmb_signalling_begin(void) { signalling_depth++; }
void vmb_nowait_begin(void) { nowait_depth++; }
void vmb_nowait_end(void) { nowait_depth--; }

void vmb_may_wait(void)
{
#ifndef NDEBUG
	if (signalling_depth || nowait_depth) {
		fprintf(stderr, "vmbind: waiting %s\n",
			signalling_depth ? "inside a signalling section" : "with the device lock held");
		abort();
	}
#endif
}
void vmb_signalling_end(void) { signalling_depth--; }
bool vmb_in_signalling(void) { return signalling_depth != 0; }

static int should_fail(void)
{
#ifndef NDEBUG
	if (signalling_depth) {
		fprintf(stderr, "vmbind: allocation inside a signalling section\n");
		abort();
	}
#endif
	if (fail_firing)
		return 1;
	if (fail_countdown == 0)
		return 0;
	if (--fail_countdown)
		return 0;
	fail_firing = fail_persist;
	return 1;
}

void *vmb_malloc(size_t size)
{
	return should_fail() ? NULL : malloc(size);
}

void *vmb_calloc(size_t n, size_t size)
{
	return should_fail() ? NULL : calloc(n, size);
}

void *vmb_realloc(void *p, size_t size)
{
	return should_fail() ? NULL : realloc(p, size);
}

bool vmb_map_should_fail(void)
{
	return should_fail();
}

unsigned long vmb_alloc_fail_after(unsigned long nth)
{
	unsigned long left = fail_countdown;
	fail_countdown = nth;
	fail_persist = false;
	fail_firing = false;
	return left;
}

unsigned long vmb_alloc_fail_from(unsigned long nth)
{
	unsigned long left = vmb_alloc_fail_after(nth);
	fail_persist = nth != 0;
	return left;
}

bool vmb_alloc_failing(void)
{
	return fail_firing;
}

/* Countdown per thread for vmb_thread_create(), as fail_countdown. */
static _Thread_local unsigned long thread_fail_countdown;

int vmb_thread_create(pthread_t *t, void *(*fn)(void *), void *arg)
{
	if (thread_fail_countdown && --thread_fail_countdown == 0)
		return EAGAIN;
	/* born with every asynchronous signal blocked (a thread inherits its creator's mask): a
	 * signal sent to the process runs the application's handler on one of its own threads,
	 * interrupting its call, never on ours; faults and the like still reach their handlers */
	static const int sync_signals[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS, SIGABRT};
	sigset_t block, old;
	sigfillset(&block);
	for (size_t i = 0; i < sizeof(sync_signals) / sizeof(sync_signals[0]); i++)
		sigdelset(&block, sync_signals[i]);
	pthread_sigmask(SIG_BLOCK, &block, &old);
	int err = pthread_create(t, NULL, fn, arg);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return err;
}

unsigned long vmb_thread_fail_after(unsigned long nth)
{
	unsigned long left = thread_fail_countdown;
	thread_fail_countdown = nth;
	return left;
}

/* Process-wide (see alloc.h): the commit that brings the countdown from 1 to 0 fails. */
static atomic_ulong commit_countdown;
static atomic_int commit_err;
static atomic_ulong commit_failed;

unsigned long vmb_commit_fail_after(unsigned long nth, int err)
{
	atomic_store(&commit_err, err);
	return atomic_exchange(&commit_countdown, nth);
}

int vmb_commit_should_fail(void)
{
	unsigned long n = atomic_load_explicit(&commit_countdown, memory_order_relaxed);
	while (n) {
		if (atomic_compare_exchange_weak(&commit_countdown, &n, n - 1))
			return n == 1 ? atomic_load(&commit_err) : 0;
	}
	return 0;
}

void vmb_commit_failed_note(void)
{
	atomic_fetch_add(&commit_failed, 1);
}

unsigned long vmb_commit_failed_count(void)
{
	return atomic_load(&commit_failed);
}

/* Process-wide, as the commit hook: the copy that brings the countdown from 1 to 0 fails. */
static atomic_ulong copy_countdown;
static atomic_int copy_err;
static atomic_bool copy_held;

unsigned long vmb_copy_fail_after(unsigned long nth, int err)
{
	atomic_store(&copy_err, err);
	return atomic_exchange(&copy_countdown, nth);
}

int vmb_copy_should_fail(void)
{
	unsigned long n = atomic_load_explicit(&copy_countdown, memory_order_relaxed);
	while (n) {
		if (atomic_compare_exchange_weak(&copy_countdown, &n, n - 1))
			return n == 1 ? atomic_load(&copy_err) : 0;
	}
	return 0;
}

void vmb_copy_hold(bool on)
{
	atomic_store(&copy_held, on);
}

bool vmb_copy_held(void)
{
	return atomic_load(&copy_held);
}
