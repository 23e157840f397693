/* SPDX-License-Identifier: MIT */
/* Events; the design is in event.h. */
#include "sync/event.h"

#include <errno.h>
#include <limits.h>
#include <time.h>
#ifndef VMB_FENCE_CONDVAR
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

/* A far deadline instead of none: a futex wait with a timeout reports a signal handler as
 * EINTR whatever SA_RESTART says, so interruptible waits behave the same for every handler. */
#define FAR_NS (365ll * 24 * 3600 * 1000000000ll)

void vmb_event_init(struct vmb_event *e)
{
	atomic_init(&e->seq, 0);
	atomic_init(&e->waiters, 0);
	atomic_init(&e->announced, 0);
#ifdef VMB_FENCE_CONDVAR
	pthread_mutex_init(&e->lock, NULL);
	vmb_cond_init_monotonic(&e->cond);
#endif
}

void vmb_event_fini(struct vmb_event *e)
{
#ifdef VMB_FENCE_CONDVAR
	pthread_mutex_destroy(&e->lock);
	pthread_cond_destroy(&e->cond);
#else
	(void)e;
#endif
}

void vmb_event_announce(struct vmb_event *e)
{
	atomic_fetch_add_explicit(&e->announced, 1, memory_order_seq_cst);
	atomic_thread_fence(memory_order_seq_cst); /* before the caller reads its condition */
}

void vmb_event_retire(struct vmb_event *e)
{
	atomic_fetch_sub_explicit(&e->announced, 1, memory_order_relaxed);
}

void vmb_event_notify_waiters(struct vmb_event *e)
{
	atomic_thread_fence(memory_order_seq_cst); /* the condition's stores before the look */
	if (atomic_load_explicit(&e->announced, memory_order_seq_cst))
		vmb_event_notify(e);
}

#ifdef VMB_FENCE_CONDVAR
void vmb_event_notify(struct vmb_event *e)
{
	pthread_mutex_lock(&e->lock);
	atomic_fetch_add_explicit(&e->seq, 1, memory_order_release);
	pthread_cond_broadcast(&e->cond);
	pthread_mutex_unlock(&e->lock);
}

int vmb_event_wait(struct vmb_event *e, uint32_t seen, int64_t deadline_ns, bool interruptible)
{
	vmb_may_wait();
	struct timespec ts = {.tv_sec = deadline_ns / 1000000000, .tv_nsec = deadline_ns % 1000000000};
	int err = 0;
	(void)interruptible;
	pthread_mutex_lock(&e->lock);
	if (atomic_load(&e->seq) == seen) {
		if (deadline_ns == VMB_FENCE_FOREVER)
			pthread_cond_wait(&e->cond, &e->lock);
		else if (pthread_cond_timedwait(&e->cond, &e->lock, &ts) == ETIMEDOUT)
			err = atomic_load(&e->seq) == seen ? -ETIME : 0;
	}
	pthread_mutex_unlock(&e->lock);
	return err;
}
#else
void vmb_event_notify(struct vmb_event *e)
{
	atomic_fetch_add_explicit(&e->seq, 1, memory_order_seq_cst);
	if (atomic_load_explicit(&e->waiters, memory_order_seq_cst))
		syscall(SYS_futex, &e->seq, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

int vmb_event_wait(struct vmb_event *e, uint32_t seen, int64_t deadline_ns, bool interruptible)
{
	vmb_may_wait();
	int64_t now = vmb_now_ns();
	if (deadline_ns != VMB_FENCE_FOREVER && now >= deadline_ns)
		return -ETIME;
	int64_t d = deadline_ns == VMB_FENCE_FOREVER ? now + FAR_NS : deadline_ns;
	struct timespec ts = {.tv_sec = d / 1000000000, .tv_nsec = d % 1000000000};
	/* announce first, then re-check: a notify after our check sees the waiter and wakes */
	atomic_fetch_add_explicit(&e->waiters, 1, memory_order_seq_cst);
	long r = 0;
	if (atomic_load_explicit(&e->seq, memory_order_seq_cst) == seen)
		r = syscall(SYS_futex, &e->seq, FUTEX_WAIT_BITSET_PRIVATE, seen, &ts, NULL, FUTEX_BITSET_MATCH_ANY);
	atomic_fetch_sub_explicit(&e->waiters, 1, memory_order_relaxed);
	if (r < 0 && errno == EINTR && interruptible)
		return -EINTR;
	if (r < 0 && errno == ETIMEDOUT && deadline_ns != VMB_FENCE_FOREVER)
		return -ETIME;
	return 0;
}
#endif
