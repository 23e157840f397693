/* SPDX-License-Identifier: MIT */
/*
 * Fences: the completion of one piece of work (a bind job, later an exec job), signalled
 * exactly once, optionally with an error, awaited by threads (absolute CLOCK_MONOTONIC deadline,
 * optionally interruptible by signals) and by callbacks (how a scheduler chains jobs without a
 * thread per wait).
 *
 * State word (futex), as in Mesa's util/futex fence:
 *   0  signalled
 *   1  unsignalled, nobody waits
 *   2  unsignalled, a waiter may sleep on it: signal must wake
 * so the signaller issues a wake-up only when someone can be asleep.
 * Under ThreadSanitizer, which cannot see futex synchronisation, the same API is built on a
 * mutex and a condition variable (there, waits are not interruptible).
 *
 * Signalling section: code that must lead to a fence signal (a job's commit, the callbacks a
 * signal runs) runs between vmb_signalling_begin() and vmb_signalling_end(); inside, an
 * allocation through core/alloc.h aborts in debug builds, because the work that signals must
 * not depend on memory being available.
 *
 * Callbacks run with `lock` held, so vmb_fence_remove_callback() returning means the callback
 * is not running (its owner may free it). A callback must not touch its own fence's callbacks.
 *
 * Locking: `lock` protects the callback list and `error`; `state` is atomic. `error` is written
 * (under `lock`) before the store of SIGNALLED that releases it, so a thread that has seen the
 * fence signalled (an acquire load of `state`) may read it without the lock (vmb_fence_status).
 */
#ifndef VMB_SYNC_FENCE_H
#define VMB_SYNC_FENCE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/list.h"
#include "core/sanitize.h"

#if VMB_TSAN
#define VMB_FENCE_CONDVAR 1
#endif

struct vmb_fence;
struct vmb_fence_cb;
typedef void (*vmb_fence_func)(struct vmb_fence *f, struct vmb_fence_cb *cb);

/* Embedded in the waiter's own object (a job), so adding a callback allocates nothing. */
struct vmb_fence_cb {
	struct vmb_list link;
	vmb_fence_func func;
};

struct vmb_fence {
	_Atomic uint32_t state; /* see above */
	atomic_uint refs;
	int error;              /* 0, or the negative errno the work ended with */
	/* Fences of one context (a queue) signal in seqno order, so a waiter needs only the
	 * latest of them (as dma-fence contexts). 0: none. Set before the fence is shared. */
	uint64_t context, seqno;
	pthread_mutex_t lock;
	struct vmb_list cbs;    /* struct vmb_fence_cb.link, run once at signal */
	void *exported;         /* sync/syncfd.c's export while pending, under its own lock */
#ifdef VMB_FENCE_CONDVAR
	pthread_cond_t cond;
#endif
};

#define VMB_FENCE_FOREVER INT64_MAX

void vmb_fence_init(struct vmb_fence *f); /* one reference, unsignalled */
static inline void vmb_fence_get(struct vmb_fence *f) { atomic_fetch_add(&f->refs, 1); }
/* Drops a reference; returns true when it was the last (the owner then frees the fence). */
bool vmb_fence_put(struct vmb_fence *f);

/* Signal with @error (0 or a negative errno); runs the callbacks. 0, or -EINVAL if already. */
int vmb_fence_signal(struct vmb_fence *f, int error);
bool vmb_fence_is_signalled(const struct vmb_fence *f);
/* The error the fence signalled with (0 while unsignalled). */
int vmb_fence_error(struct vmb_fence *f);
/* 0 while unsignalled; then 1, or the negative errno it signalled with (as dma_fence_get_status).
 * Takes no lock: callable under locks ordered before the fence's (a syncobj's). */
int vmb_fence_status(const struct vmb_fence *f);

/*
 * Run @func from the signal (inside a signalling section, on the signalling thread). Returns 0,
 * or -ENOENT if the fence is already signalled (the callback is not added: the caller runs
 * whatever it needed itself).
 */
int vmb_fence_add_callback(struct vmb_fence *f, struct vmb_fence_cb *cb, vmb_fence_func func);
/* true if @cb was still pending and is now removed; false if it ran or is running. */
bool vmb_fence_remove_callback(struct vmb_fence *f, struct vmb_fence_cb *cb);
/* The calling thread runs a fence callback (so holds that fence's lock): locks ordered before
 * the fence locks (the device lock) may not be taken. */
bool vmb_fence_in_callback(void);

/*
 * Wait until signalled or @deadline_ns (CLOCK_MONOTONIC; VMB_FENCE_FOREVER: no limit).
 * Returns 0 (signalled: see vmb_fence_error()), -ETIME, or -EINTR (interruptible and a signal
 * handler ran; the caller restarts).
 */
int vmb_fence_wait(struct vmb_fence *f, int64_t deadline_ns, bool interruptible);

int64_t vmb_now_ns(void); /* CLOCK_MONOTONIC */
#ifdef VMB_FENCE_CONDVAR
void vmb_cond_init_monotonic(pthread_cond_t *c); /* timed waits take CLOCK_MONOTONIC deadlines */
#endif

/* @a is a later fence than @b of the same context: waiting for @a covers @b. */
static inline bool vmb_fence_is_later(const struct vmb_fence *a, const struct vmb_fence *b)
{
	return a->context && a->context == b->context && a->seqno > b->seqno;
}

/* A growable set of fence references that keeps only the latest fence of each context. */
struct vmb_fence_set {
	struct vmb_fence **v;
	unsigned int n, cap;
};
/* Adds (a reference to) @f unless a later fence of its context is there; replaces an earlier
 * one. 0 or -ENOMEM. */
int vmb_fence_set_add(struct vmb_fence_set *s, struct vmb_fence *f);
void vmb_fence_set_fini(struct vmb_fence_set *s); /* drops the references, frees the array */

/* Heap fences: one reference, unsignalled (NULL without memory); unref frees at the last. */
struct vmb_fence *vmb_fence_create(void);
void vmb_fence_unref(struct vmb_fence *f); /* NULL is fine */
/*
 * A fence that signals once all @n fences have (with the first error among them): a new
 * reference, @fences[0] itself when n == 1, or NULL without memory.
 */
struct vmb_fence *vmb_fence_all(struct vmb_fence *const *fences, unsigned int n);

/* Signalling sections: vmb_signalling_begin/end/in() live in core/alloc.h, which enforces them. */
#include "core/alloc.h"

#endif
