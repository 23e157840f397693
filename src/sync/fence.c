/* SPDX-License-Identifier: MIT */
/* Fences; the design is in fence.h. */
#include "sync/fence.h"

#include <errno.h>
#include <limits.h>
#include <time.h>
#ifndef VMB_FENCE_CONDVAR
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

#define SIGNALLED 0u
#define UNSIGNALLED 1u
#define WAITERS 2u

int64_t vmb_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static struct timespec to_timespec(int64_t ns)
{
	return (struct timespec){.tv_sec = ns / 1000000000, .tv_nsec = ns % 1000000000};
}

void vmb_fence_init(struct vmb_fence *f)
{
	atomic_init(&f->state, UNSIGNALLED);
	atomic_init(&f->refs, 1);
	f->error = 0;
	pthread_mutex_init(&f->lock, NULL);
	vmb_list_init(&f->cbs);
#ifdef VMB_FENCE_CONDVAR
	pthread_condattr_t a;
	pthread_condattr_init(&a);
	pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
	pthread_cond_init(&f->cond, &a);
	pthread_condattr_destroy(&a);
#endif
}

bool vmb_fence_put(struct vmb_fence *f)
{
	if (atomic_fetch_sub(&f->refs, 1) != 1)
		return false;
	pthread_mutex_destroy(&f->lock);
#ifdef VMB_FENCE_CONDVAR
	pthread_cond_destroy(&f->cond);
#endif
	return true;
}

bool vmb_fence_is_signalled(const struct vmb_fence *f)
{
	return atomic_load_explicit(&((struct vmb_fence *)f)->state, memory_order_acquire) == SIGNALLED;
}

int vmb_fence_error(struct vmb_fence *f)
{
	pthread_mutex_lock(&f->lock);
	int e = f->error;
	pthread_mutex_unlock(&f->lock);
	return e;
}

int vmb_fence_signal(struct vmb_fence *f, int error)
{
	struct vmb_list run, *pos, *tmp;

	vmb_list_init(&run);
	pthread_mutex_lock(&f->lock);
	if (atomic_load(&f->state) == SIGNALLED) {
		pthread_mutex_unlock(&f->lock);
		return -EINVAL;
	}
	f->error = error;
	uint32_t old = atomic_exchange_explicit(&f->state, SIGNALLED, memory_order_release);
	/* take the callbacks: once signalled, nobody adds or removes any */
	vmb_list_for_each_safe(pos, tmp, &f->cbs) {
		vmb_list_del(pos);
		vmb_list_add_tail(pos, &run);
	}
#ifdef VMB_FENCE_CONDVAR
	(void)old;
	pthread_cond_broadcast(&f->cond);
	pthread_mutex_unlock(&f->lock);
#else
	pthread_mutex_unlock(&f->lock);
	if (old == WAITERS)
		syscall(SYS_futex, &f->state, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
#endif
	vmb_signalling_begin();
	vmb_list_for_each_safe(pos, tmp, &run) {
		struct vmb_fence_cb *cb = vmb_container_of(pos, struct vmb_fence_cb, link);
		vmb_list_del(pos);
		cb->func(f, cb);
	}
	vmb_signalling_end();
	return 0;
}

int vmb_fence_add_callback(struct vmb_fence *f, struct vmb_fence_cb *cb, vmb_fence_func func)
{
	int err = 0;
	pthread_mutex_lock(&f->lock);
	if (atomic_load(&f->state) == SIGNALLED) {
		err = -ENOENT;
		vmb_list_init(&cb->link);
	} else {
		cb->func = func;
		vmb_list_add_tail(&cb->link, &f->cbs);
	}
	pthread_mutex_unlock(&f->lock);
	return err;
}

bool vmb_fence_remove_callback(struct vmb_fence *f, struct vmb_fence_cb *cb)
{
	bool pending = false;
	pthread_mutex_lock(&f->lock);
	if (atomic_load(&f->state) != SIGNALLED && !vmb_list_empty(&cb->link)) {
		vmb_list_del(&cb->link);
		pending = true;
	}
	pthread_mutex_unlock(&f->lock);
	return pending;
}

#ifdef VMB_FENCE_CONDVAR
int vmb_fence_wait(struct vmb_fence *f, int64_t deadline_ns, bool interruptible)
{
	struct timespec ts = to_timespec(deadline_ns);
	int err = 0;
	(void)interruptible; /* condition variables do not report signals */
	pthread_mutex_lock(&f->lock);
	while (atomic_load(&f->state) != SIGNALLED && !err) {
		if (deadline_ns == VMB_FENCE_FOREVER)
			pthread_cond_wait(&f->cond, &f->lock);
		else if (pthread_cond_timedwait(&f->cond, &f->lock, &ts) == ETIMEDOUT)
			err = atomic_load(&f->state) == SIGNALLED ? 0 : -ETIME;
	}
	pthread_mutex_unlock(&f->lock);
	return err;
}
#else
int vmb_fence_wait(struct vmb_fence *f, int64_t deadline_ns, bool interruptible)
{
	struct timespec ts = to_timespec(deadline_ns);

	for (;;) {
		uint32_t s = atomic_load_explicit(&f->state, memory_order_acquire);
		if (s == SIGNALLED)
			return 0;
		if (deadline_ns != VMB_FENCE_FOREVER && vmb_now_ns() >= deadline_ns)
			return -ETIME;
		/* announce a sleeper, so the signaller wakes us */
		if (s == UNSIGNALLED && !atomic_compare_exchange_strong(&f->state, &s, WAITERS))
			continue;
		/* FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC deadline */
		long r = syscall(SYS_futex, &f->state, FUTEX_WAIT_BITSET_PRIVATE, WAITERS,
				 deadline_ns == VMB_FENCE_FOREVER ? NULL : &ts, NULL, FUTEX_BITSET_MATCH_ANY);
		if (r < 0 && errno == EINTR && interruptible &&
		    atomic_load_explicit(&f->state, memory_order_acquire) != SIGNALLED)
			return -EINTR;
		/* woken, timed out (checked above), value changed (EAGAIN), or a signal: look again */
	}
}
#endif
