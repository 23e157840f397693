/* SPDX-License-Identifier: MIT */
/* Syncobjs; the design is in syncobj.h. */
#include "sync/syncobj.h"

#include <errno.h>
#include <stdlib.h>

#include "core/alloc.h"

int vmb_syncobj_new(bool timeline, struct vmb_syncobj **out)
{
	struct vmb_syncobj *s = vmb_calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	if (timeline && !(s->spare = vmb_malloc(sizeof(*s->spare)))) {
		free(s);
		return -ENOMEM;
	}
	atomic_init(&s->refs, 1);
	s->timeline = timeline;
	pthread_mutex_init(&s->lock, NULL);
	vmb_list_init(&s->points);
	vmb_list_init(&s->failed);
	vmb_list_init(&s->waiters);
	*out = s;
	return 0;
}

/* At the last reference: no claim is left (a claimant holds a reference until it fills or
 * releases), so every node is the timeline's. */
static void drop_points(struct vmb_syncobj *s)
{
	struct vmb_list *pos, *tmp;
	vmb_list_for_each_safe(pos, tmp, &s->points) {
		struct vmb_tl_point *p = vmb_container_of(pos, struct vmb_tl_point, link);
		vmb_list_del(pos);
		vmb_fence_unref(p->fence);
		free(p);
	}
	vmb_list_for_each_safe(pos, tmp, &s->failed) {
		vmb_list_del(pos);
		free(vmb_container_of(pos, struct vmb_tl_point, link));
	}
}

void vmb_syncobj_put(struct vmb_syncobj *s)
{
	if (atomic_fetch_sub(&s->refs, 1) != 1)
		return;
	vmb_fence_unref(s->fence);
	drop_points(s);
	free(s->spare);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

/* Under the lock: a waiter on a binary syncobj without its fence yet takes the one there (if
 * any): the fence it waits for from then on (struct vmb_syncobj_waiter). */
static void waiter_take_fence(struct vmb_syncobj *s, struct vmb_syncobj_waiter *w)
{
	if (!s->timeline && !w->fence && s->fence) {
		vmb_fence_get(s->fence);
		w->fence = s->fence;
	}
}

/* Under the lock: a binary syncobj's waiters still waiting for a submission take its fence. */
static void notify_waiters(struct vmb_syncobj *s)
{
	struct vmb_list *pos;
	vmb_list_for_each(pos, &s->waiters) {
		struct vmb_syncobj_waiter *w = vmb_container_of(pos, struct vmb_syncobj_waiter, link);
		waiter_take_fence(s, w);
		vmb_event_notify(w->ev);
	}
}

void vmb_syncobj_replace(struct vmb_syncobj *s, struct vmb_fence *f)
{
	if (f)
		vmb_fence_get(f);
	pthread_mutex_lock(&s->lock);
	struct vmb_fence *old = s->fence;
	s->fence = f;
	notify_waiters(s);
	pthread_mutex_unlock(&s->lock);
	vmb_fence_unref(old);
}

/* Under the lock: pruned node @p, whose fence failed, keeps its error for the points it
 * completed, [lo, p->point]; past VMB_TL_FAILED_MAX the two oldest ranges merge. */
static void keep_failed(struct vmb_syncobj *s, struct vmb_tl_point *p, uint64_t lo, int error)
{
	p->lo = lo;
	p->error = error;
	vmb_list_add_tail(&p->link, &s->failed);
	if (++s->nfailed <= VMB_TL_FAILED_MAX)
		return;
	struct vmb_tl_point *a = vmb_container_of(s->failed.next, struct vmb_tl_point, link);
	struct vmb_tl_point *b = vmb_container_of(a->link.next, struct vmb_tl_point, link);
	a->point = b->point;
	vmb_list_del(&b->link);
	free(b);
	s->nfailed--;
}

/* Under the lock: fold the signalled head of the timeline into `value`. */
static void prune(struct vmb_syncobj *s)
{
	while (!vmb_list_empty(&s->points)) {
		struct vmb_tl_point *p = vmb_container_of(s->points.next, struct vmb_tl_point, link);
		if (!p->fence || !vmb_fence_is_signalled(p->fence))
			return; /* a claim not yet filled holds up everything after it */
		uint64_t lo = s->value + 1;
		int status = vmb_fence_status(p->fence);
		s->value = p->point;
		vmb_list_del(&p->link);
		vmb_fence_unref(p->fence);
		p->fence = NULL;
		if (status < 0)
			keep_failed(s, p, lo, status);
		else if (s->spare)
			free(p);
		else
			s->spare = p;
	}
}

struct vmb_tl_point *vmb_syncobj_take_spare(struct vmb_syncobj *s)
{
	pthread_mutex_lock(&s->lock);
	struct vmb_tl_point *p = s->spare;
	s->spare = NULL;
	pthread_mutex_unlock(&s->lock);
	return p;
}

bool vmb_syncobj_point_ok(struct vmb_syncobj *s, uint64_t point)
{
	pthread_mutex_lock(&s->lock);
	bool ok = point > s->last;
	pthread_mutex_unlock(&s->lock);
	return ok;
}

int vmb_syncobj_claim_point(struct vmb_syncobj *s, uint64_t point, struct vmb_tl_point *node)
{
	pthread_mutex_lock(&s->lock);
	/* the check and the insertion in one step: a second claimant of the point sees this one */
	if (point <= s->last) {
		pthread_mutex_unlock(&s->lock);
		return -EINVAL;
	}
	node->point = point;
	node->fence = NULL;
	vmb_list_add_tail(&node->link, &s->points); /* above every point: the tail */
	s->last = point;
	pthread_mutex_unlock(&s->lock);
	return 0;
}

void vmb_syncobj_fill_point(struct vmb_syncobj *s, struct vmb_tl_point *node, struct vmb_fence *f)
{
	vmb_fence_get(f);
	pthread_mutex_lock(&s->lock);
	node->fence = f;
	prune(s);
	notify_waiters(s);
	pthread_mutex_unlock(&s->lock);
}

void vmb_syncobj_release_point(struct vmb_syncobj *s, struct vmb_tl_point *node)
{
	pthread_mutex_lock(&s->lock);
	vmb_list_del(&node->link);
	/* `last` is the highest point in the list, or the value once the list is pruned empty */
	if (node->point == s->last)
		s->last = vmb_list_empty(&s->points)
				  ? s->value
				  : vmb_container_of(s->points.prev, struct vmb_tl_point, link)->point;
	prune(s); /* the released claim may have held up the head */
	notify_waiters(s);
	pthread_mutex_unlock(&s->lock);
}

int vmb_syncobj_add_point(struct vmb_syncobj *s, uint64_t point, struct vmb_fence *f, struct vmb_tl_point *node)
{
	int err = vmb_syncobj_claim_point(s, point, node);
	if (!err)
		vmb_syncobj_fill_point(s, node, f);
	return err;
}

uint64_t vmb_syncobj_value(struct vmb_syncobj *s)
{
	pthread_mutex_lock(&s->lock);
	prune(s);
	uint64_t v = s->value;
	pthread_mutex_unlock(&s->lock);
	return v;
}

/* Under the lock: vmb_syncobj_status(). */
static int status_locked(struct vmb_syncobj *s, uint64_t point)
{
	struct vmb_list *pos;
	int st = 1;

	if (!s->timeline)
		return s->fence ? vmb_fence_status(s->fence) : 0;
	prune(s);
	if (point > s->value)
		st = 0; /* not complete: pending, claimed, or not submitted */
	vmb_list_for_each(pos, &s->failed) {
		struct vmb_tl_point *f = vmb_container_of(pos, struct vmb_tl_point, link);
		if (st != 1 || f->lo > point)
			break;
		if (point <= f->point)
			st = f->error;
	}
	return st;
}

int vmb_syncobj_status(struct vmb_syncobj *s, uint64_t point)
{
	pthread_mutex_lock(&s->lock);
	int st = status_locked(s, point);
	pthread_mutex_unlock(&s->lock);
	return st;
}

/* Under the lock. -ENOENT if @point has no fence yet; else calls @fn for each unsignalled fence
 * the point waits for (none: complete). */
static int deps_locked(struct vmb_syncobj *s, uint64_t point, int (*fn)(void *, struct vmb_fence *), void *arg)
{
	struct vmb_list *pos;
	int err;

	if (!s->timeline) {
		if (!s->fence)
			return -ENOENT;
		return vmb_fence_is_signalled(s->fence) ? 0 : fn(arg, s->fence);
	}
	prune(s);
	if (point > s->last)
		return -ENOENT;
	if (point <= s->value)
		return 0;
	/* every unsignalled point up to the first point >= @point; a claim without its fence yet
	 * among them: not submitted */
	vmb_list_for_each(pos, &s->points) {
		struct vmb_tl_point *p = vmb_container_of(pos, struct vmb_tl_point, link);
		if (!p->fence)
			return -ENOENT;
		if (p->point >= point)
			break;
	}
	vmb_list_for_each(pos, &s->points) {
		struct vmb_tl_point *p = vmb_container_of(pos, struct vmb_tl_point, link);
		if (!vmb_fence_is_signalled(p->fence) && (err = fn(arg, p->fence)))
			return err;
		if (p->point >= point)
			break;
	}
	return 0;
}

int vmb_syncobj_for_each_dep(struct vmb_syncobj *s, uint64_t point, int (*fn)(void *arg, struct vmb_fence *f),
			     void *arg)
{
	pthread_mutex_lock(&s->lock);
	int err = deps_locked(s, point, fn, arg);
	pthread_mutex_unlock(&s->lock);
	return err;
}

static int collect_fn(void *arg, struct vmb_fence *f)
{
	return vmb_fence_set_add(arg, f);
}

/* Under the lock, after deps_locked() found @point submitted and not complete: adds to @c the
 * fences among the points up to the first at or above @point that have already failed (the
 * walk of unsignalled ones leaves them out, and the composite must end with their error). */
static int collect_failed_locked(struct vmb_syncobj *s, uint64_t point, struct vmb_fence_set *c)
{
	struct vmb_list *pos;
	int err = 0;
	vmb_list_for_each(pos, &s->points) {
		struct vmb_tl_point *p = vmb_container_of(pos, struct vmb_tl_point, link);
		if (vmb_fence_is_signalled(p->fence) && vmb_fence_status(p->fence) < 0 &&
		    (err = vmb_fence_set_add(c, p->fence)))
			return err;
		if (p->point >= point)
			break;
	}
	return err;
}

int vmb_syncobj_fence(struct vmb_syncobj *s, uint64_t point, struct vmb_fence *stub, struct vmb_fence **out)
{
	struct vmb_fence_set c = {0};
	/* the fences and, when none is left to wait for, the status: of one moment (a binary
	 * syncobj reset or given another fence between the two would lend its status to the first) */
	pthread_mutex_lock(&s->lock);
	int err = deps_locked(s, point, collect_fn, &c);
	int st = !err && c.n == 0 ? status_locked(s, point) : 0;
	if (!err && c.n && s->timeline)
		err = collect_failed_locked(s, point, &c);
	pthread_mutex_unlock(&s->lock);
	if (st < 0) {
		/* complete with an error: a fence that carries it (the stub would say success) */
		if (!(*out = vmb_fence_create()))
			err = -ENOMEM;
		else
			vmb_fence_signal(*out, st);
	} else if (!err && c.n == 0) {
		vmb_fence_get(stub);
		*out = stub;
	} else if (!err) {
		*out = vmb_fence_all(c.v, c.n);
		if (!*out)
			err = -ENOMEM;
	}
	vmb_fence_set_fini(&c);
	return err;
}

/* ---- waiting on many ------------------------------------------------------------------------ */

struct wait_entry {
	struct vmb_syncobj *s;
	uint64_t point;
	struct vmb_syncobj_waiter w; /* told of every change to s */
	struct vmb_fence_cb cb;      /* on `armed` */
	struct vmb_fence *armed;     /* the fence whose signal we wait for, a reference */
};

static void entry_signalled(struct vmb_fence *f, struct vmb_fence_cb *cb)
{
	(void)f;
	vmb_event_notify(vmb_container_of(cb, struct wait_entry, cb)->w.ev);
}

static void disarm(struct wait_entry *e)
{
	if (e->armed) {
		vmb_fence_remove_callback(e->armed, &e->cb);
		vmb_fence_unref(e->armed);
		e->armed = NULL;
	}
}

/* The first unsignalled fence the point waits for: stops the walk at once. */
static int first_fn(void *arg, struct vmb_fence *f)
{
	*(struct vmb_fence **)arg = f;
	return 1;
}

enum { NOT_SUBMITTED, PENDING, DONE };

/* Where entry @e stands; for a pending one, (re)arm a callback on what it waits for. */
static int entry_state(struct wait_entry *e, uint32_t flags)
{
	struct vmb_fence *f = NULL;
	int r = 0;
	pthread_mutex_lock(&e->s->lock);
	if (e->s->timeline)
		r = deps_locked(e->s, e->point, first_fn, &f); /* a submitted point's fences stay */
	else if (!e->w.fence)
		r = -ENOENT; /* nothing submitted since the wait began */
	else if (!vmb_fence_is_signalled(e->w.fence))
		f = e->w.fence; /* the fence the wait took, whatever the syncobj holds now */
	if (f)
		vmb_fence_get(f);
	pthread_mutex_unlock(&e->s->lock);
	if (r == -ENOENT)
		return NOT_SUBMITTED;
	if (f && (flags & VMB_WAIT_AVAILABLE)) {
		vmb_fence_unref(f); /* submitted is enough */
		f = NULL;
	}
	if (!f)
		return DONE;
	if (f == e->armed) {
		vmb_fence_unref(f);
		return PENDING;
	}
	disarm(e);
	if (vmb_fence_add_callback(f, &e->cb, entry_signalled) == 0) {
		e->armed = f;
		return PENDING;
	}
	vmb_fence_unref(f);
	return entry_state(e, flags); /* it signalled meanwhile: look again */
}

int vmb_syncobj_wait_many(struct vmb_syncobj *const *objs, const uint64_t *points, unsigned int n,
			  uint32_t flags, int64_t deadline_ns, bool interruptible, struct vmb_stop *stop,
			  uint32_t *first)
{
	struct vmb_event ev;
	struct vmb_stop_watch sw;
	struct wait_entry *es = vmb_calloc(n, sizeof(*es));
	int err = 0;

	if (!es)
		return -ENOMEM;
	vmb_event_init(&ev);
	if (stop && (err = vmb_stop_watch(stop, &sw, &ev))) {
		vmb_event_fini(&ev);
		free(es);
		return err;
	}
	for (unsigned int i = 0; i < n; i++) {
		es[i].s = objs[i];
		es[i].point = points ? points[i] : 0;
		es[i].w.ev = &ev;
		pthread_mutex_lock(&objs[i]->lock);
		/* a binary syncobj's fence now is the one waited for (notify_waiters: or the first
		 * one submitted later) */
		waiter_take_fence(objs[i], &es[i].w);
		vmb_list_add_tail(&es[i].w.link, &objs[i]->waiters);
		pthread_mutex_unlock(&objs[i]->lock);
	}
	for (bool first_pass = true;; first_pass = false) {
		uint32_t seen = vmb_event_read(&ev);
		unsigned int done = 0;
		int64_t one = -1;
		for (unsigned int i = 0; i < n; i++) {
			int st = entry_state(&es[i], flags);
			/* either flag waits for a submission (DRM lets both through its check) */
			if (st == NOT_SUBMITTED && first_pass && !(flags & (VMB_WAIT_FOR_SUBMIT | VMB_WAIT_AVAILABLE)))
				err = -EINVAL;
			if (st == DONE) {
				done++;
				if (one < 0)
					one = i;
			}
		}
		if (err)
			break;
		if (flags & VMB_WAIT_ALL ? done == n : done > 0) {
			if (first)
				*first = one < 0 ? 0 : (uint32_t)one;
			break;
		}
		if ((err = vmb_stop_err(stop)) || (err = vmb_event_wait(&ev, seen, deadline_ns, interruptible)))
			break;
	}
	for (unsigned int i = 0; i < n; i++) {
		disarm(&es[i]);
		pthread_mutex_lock(&objs[i]->lock);
		vmb_list_del(&es[i].w.link);
		pthread_mutex_unlock(&objs[i]->lock);
		vmb_fence_unref(es[i].w.fence);
	}
	if (stop)
		vmb_stop_unwatch(stop, &sw);
	vmb_event_fini(&ev);
	free(es);
	return err;
}
