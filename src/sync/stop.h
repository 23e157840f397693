/* SPDX-License-Identifier: MIT */
/*
 * Stop tokens: how one thread ends the waits of others (vmb_client_close() ends the waits of
 * the calls still in flight on its client).
 *
 * A stop holds an errno, 0 until it fires, and the events of the waits that watch it. A wait
 * watches its event, then loops "read the event, check the condition, check vmb_stop_err(),
 * sleep"; vmb_stop_fire() sets the errno before it notifies every watched event, so a wait
 * either sees the errno or is woken (the eventcount rule of event.h). A watch added after the
 * stop fired is refused with the errno.
 *
 * Locking: `lock` protects `watchers`; `err` is atomic (waits read it without the lock). Fire
 * notifies under `lock`: an event is never notified after its watch has been removed, so a
 * wait may free its event once vmb_stop_unwatch() returns. Order: stop lock, then event lock.
 */
#ifndef VMB_SYNC_STOP_H
#define VMB_SYNC_STOP_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "core/list.h"
#include "sync/event.h"
#include "sync/fence.h"

struct vmb_stop {
	pthread_mutex_t lock;
	struct vmb_list watchers; /* struct vmb_stop_watch (lock) */
	atomic_int err;           /* 0, or the errno the stopped waits return */
};

struct vmb_stop_watch {
	struct vmb_list link;
	struct vmb_event *ev;
};

void vmb_stop_init(struct vmb_stop *s);
void vmb_stop_fini(struct vmb_stop *s); /* no watch may remain */
/* The stop's errno, 0 while it has not fired; 0 for no stop (NULL). */
static inline int vmb_stop_err(struct vmb_stop *s)
{
	return s ? atomic_load_explicit(&s->err, memory_order_seq_cst) : 0;
}
/* Notify @ev when @s fires. 0, or the errno if it fired already (then nothing is watched). */
int vmb_stop_watch(struct vmb_stop *s, struct vmb_stop_watch *w, struct vmb_event *ev);
void vmb_stop_unwatch(struct vmb_stop *s, struct vmb_stop_watch *w);
/* Set the errno (@err < 0; the first fire wins) and wake every watching wait. */
void vmb_stop_fire(struct vmb_stop *s, int err);

/* vmb_fence_wait(), and ends with the stop's errno once @s fires (@s NULL: never). */
int vmb_fence_wait_stop(struct vmb_fence *f, int64_t deadline_ns, bool interruptible, struct vmb_stop *s);

#endif
