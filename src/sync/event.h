/* SPDX-License-Identifier: MIT */
/*
 * Events (an "eventcount"): a 32-bit sequence that notifiers bump and waiters sleep on, so a
 * thread can wait for "something changed" without a lost wake-up:
 *
 *     for (;;) {
 *             uint32_t seen = vmb_event_read(&ev);
 *             if (condition())
 *                     break;
 *             err = vmb_event_wait(&ev, seen, deadline, true);   // sleeps only if no notify since
 *     }
 *
 * Used by waits on many fences at once (syncobj waits), by user-fence waits (the device bumps
 * its event after writing a user fence) and by anything else that waits on a condition.
 *
 * An event whose every waiter announces itself before it reads its condition (and until it has
 * stopped waiting) may be notified with vmb_event_notify_waiters(), which writes nothing while
 * nobody is announced (a fence and a load: the event's line stays shared between the notifiers'
 * CPUs, where a bump would move it at every notify):
 *
 *     vmb_event_announce(&ev);
 *     for (;;) {
 *             uint32_t seen = vmb_event_read(&ev);
 *             if (condition())
 *                     break;
 *             err = vmb_event_wait(&ev, seen, deadline, true);
 *     }
 *     vmb_event_retire(&ev);
 *
 * The notifier makes the condition true, then notifies: either it sees the announcement (and
 * bumps, as vmb_event_notify) or the waiter's read of the condition, which comes after its
 * announcement, sees the condition (both sides order with a sequentially consistent fence).
 * Futex-based; under ThreadSanitizer a mutex and a condition variable carry the same API (there,
 * waits are not interruptible).
 *
 * Locking: none needed; notify may be called from signalling sections (it never allocates).
 */
#ifndef VMB_SYNC_EVENT_H
#define VMB_SYNC_EVENT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "sync/fence.h" /* VMB_FENCE_CONDVAR, vmb_now_ns */

struct vmb_event {
	_Atomic uint32_t seq;
	atomic_uint waiters;   /* threads in vmb_event_wait: a notify wakes them (a system call) */
	atomic_uint announced; /* vmb_event_announce'd and not retired (vmb_event_notify_waiters) */
#ifdef VMB_FENCE_CONDVAR
	pthread_mutex_t lock;
	pthread_cond_t cond;
#endif
};

void vmb_event_init(struct vmb_event *e);
void vmb_event_fini(struct vmb_event *e);
static inline uint32_t vmb_event_read(struct vmb_event *e)
{
	return atomic_load_explicit(&e->seq, memory_order_acquire);
}
void vmb_event_notify(struct vmb_event *e);
/* vmb_event_notify if a waiter is announced, else nothing written (above: every waiter of @e
 * must announce itself). */
void vmb_event_notify_waiters(struct vmb_event *e);
void vmb_event_announce(struct vmb_event *e);
void vmb_event_retire(struct vmb_event *e);
/*
 * Sleep while the sequence is still @seen, until @deadline_ns (CLOCK_MONOTONIC, or
 * VMB_FENCE_FOREVER). Returns 0 (notified, or woken spuriously: the caller looks again),
 * -ETIME, or -EINTR (interruptible and a signal handler ran).
 */
int vmb_event_wait(struct vmb_event *e, uint32_t seen, int64_t deadline_ns, bool interruptible);

#endif
