/* SPDX-License-Identifier: MIT */
/* Fences; the design is in fence.h. */
#include "sync/fence.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <time.h>
#ifndef VMB_FENCE_CONDVAR
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

#include "core/lock.h"

#define SIGNALLED 0u
#define UNSIGNALLED 1u
#define WAITERS 2u
#define FAR_NS (365ll * 24 * 3600 * 1000000000ll)

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
	f->context = f->seqno = 0;
	f->exported = NULL;
	pthread_mutex_init(&f->lock, NULL);
	vmb_list_init(&f->cbs);
#ifdef VMB_FENCE_CONDVAR
	vmb_cond_init_monotonic(&f->cond);
#endif
}

#ifdef VMB_FENCE_CONDVAR
void vmb_cond_init_monotonic(pthread_cond_t *c)
{
	pthread_condattr_t a;
	pthread_condattr_init(&a);
	pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
	pthread_cond_init(c, &a);
	pthread_condattr_destroy(&a);
}
#endif

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

int vmb_fence_status(const struct vmb_fence *f)
{
	if (!vmb_fence_is_signalled(f))
		return 0;
	/* written before the release of SIGNALLED that the load above acquired (fence.h) */
	return f->error ? f->error : 1;
}

/* Depth of fence callbacks the calling thread is running (they run under their fence's lock). */
static _Thread_local VMB_TLS_FAST unsigned int callback_depth; /* core/lock.h: a fast access */

bool vmb_fence_in_callback(void)
{
	return callback_depth != 0;
}

int vmb_fence_signal(struct vmb_fence *f, int error)
{
	struct vmb_list *pos, *tmp;

	pthread_mutex_lock(&f->lock);
	if (atomic_load(&f->state) == SIGNALLED) {
		pthread_mutex_unlock(&f->lock);
		return -EINVAL;
	}
	f->error = error;
	uint32_t old = atomic_exchange_explicit(&f->state, SIGNALLED, memory_order_release);
#ifdef VMB_FENCE_CONDVAR
	(void)old;
	pthread_cond_broadcast(&f->cond);
#else
	if (old == WAITERS)
		syscall(SYS_futex, &f->state, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
#endif
	/*
	 * Callbacks run under the lock: once vmb_fence_remove_callback() returns, the callback is
	 * not running, so its owner may free it. A callback must not add or remove callbacks on
	 * this fence (other fences are fine: fences form a graph without cycles).
	 */
	vmb_signalling_begin();
	vmb_list_for_each_safe(pos, tmp, &f->cbs) {
		struct vmb_fence_cb *cb = vmb_container_of(pos, struct vmb_fence_cb, link);
		vmb_list_del(pos);
		vmb_list_init(pos);
		callback_depth++;
		cb->func(f, cb);
		callback_depth--;
	}
	vmb_signalling_end();
	pthread_mutex_unlock(&f->lock);
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
	vmb_may_wait();
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
	vmb_may_wait();
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
		/* a timeout even for FOREVER: signals then give EINTR whatever SA_RESTART says */
		if (deadline_ns == VMB_FENCE_FOREVER)
			ts = to_timespec(vmb_now_ns() + FAR_NS);
		long r = syscall(SYS_futex, &f->state, FUTEX_WAIT_BITSET_PRIVATE, WAITERS, &ts, NULL,
				 FUTEX_BITSET_MATCH_ANY);
		if (r < 0 && errno == EINTR && interruptible &&
		    atomic_load_explicit(&f->state, memory_order_acquire) != SIGNALLED)
			return -EINTR;
		/* woken, timed out (checked above), value changed (EAGAIN), or a signal: look again */
	}
}
#endif

/* ---- heap fences, composites ------------------------------------------------------------ */

struct vmb_fence *vmb_fence_create(void)
{
	struct vmb_fence *f = vmb_malloc(sizeof(*f));
	if (f)
		vmb_fence_init(f);
	return f;
}

void vmb_fence_unref(struct vmb_fence *f)
{
	if (f && vmb_fence_put(f))
		free(f);
}

struct fence_part {
	struct vmb_fence_cb cb;
	struct fence_all *owner;
};

struct fence_all {
	struct vmb_fence base; /* first: freed through vmb_fence_unref */
	atomic_uint pending;   /* components not yet signalled, + 1 while arming */
	_Atomic int error;     /* first error of a component */
	struct fence_part parts[];
};

static void all_part_done(struct fence_all *a, int error)
{
	int zero = 0;
	if (error)
		atomic_compare_exchange_strong(&a->error, &zero, error);
	if (atomic_fetch_sub(&a->pending, 1) == 1) {
		vmb_fence_signal(&a->base, atomic_load(&a->error));
		vmb_fence_unref(&a->base); /* the reference the components held */
	}
}

static void all_part(struct vmb_fence *f, struct vmb_fence_cb *cb)
{
	struct fence_part *p = vmb_container_of(cb, struct fence_part, cb);
	all_part_done(p->owner, f->error);
}

struct vmb_fence *vmb_fence_all(struct vmb_fence *const *fences, unsigned int n)
{
	if (n == 1) {
		vmb_fence_get(fences[0]);
		return fences[0];
	}
	struct fence_all *a = vmb_malloc(sizeof(*a) + n * sizeof(a->parts[0]));
	if (!a)
		return NULL;
	vmb_fence_init(&a->base);
	vmb_fence_get(&a->base); /* held until the last component signals */
	atomic_init(&a->pending, n + 1);
	atomic_init(&a->error, 0);
	for (unsigned int i = 0; i < n; i++) {
		a->parts[i].owner = a;
		if (vmb_fence_add_callback(fences[i], &a->parts[i].cb, all_part) == -ENOENT)
			all_part_done(a, vmb_fence_error(fences[i]));
	}
	all_part_done(a, 0); /* arming done */
	return &a->base;
}

int vmb_fence_set_add(struct vmb_fence_set *s, struct vmb_fence *f)
{
	for (unsigned int i = 0; i < s->n; i++) {
		if (s->v[i] == f || vmb_fence_is_later(s->v[i], f))
			return 0;
		if (vmb_fence_is_later(f, s->v[i])) {
			vmb_fence_get(f);
			vmb_fence_unref(s->v[i]);
			s->v[i] = f;
			return 0;
		}
	}
	if (s->n == s->cap) {
		unsigned int cap = s->cap ? s->cap * 2 : 4;
		struct vmb_fence **v = vmb_realloc(s->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		s->v = v;
		s->cap = cap;
	}
	vmb_fence_get(f);
	s->v[s->n++] = f;
	return 0;
}

void vmb_fence_set_fini(struct vmb_fence_set *s)
{
	for (unsigned int i = 0; i < s->n; i++)
		vmb_fence_unref(s->v[i]);
	free(s->v);
	*s = (struct vmb_fence_set){0};
}
