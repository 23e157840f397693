/* SPDX-License-Identifier: MIT */
/* Stop tokens; the design is in stop.h. */
#include "sync/stop.h"

void vmb_stop_init(struct vmb_stop *s)
{
	pthread_mutex_init(&s->lock, NULL);
	vmb_list_init(&s->watchers);
	atomic_init(&s->err, 0);
}

void vmb_stop_fini(struct vmb_stop *s)
{
	pthread_mutex_destroy(&s->lock);
}

int vmb_stop_watch(struct vmb_stop *s, struct vmb_stop_watch *w, struct vmb_event *ev)
{
	pthread_mutex_lock(&s->lock);
	int err = atomic_load(&s->err);
	if (!err) {
		w->ev = ev;
		vmb_list_add_tail(&w->link, &s->watchers);
	}
	pthread_mutex_unlock(&s->lock);
	return err;
}

void vmb_stop_unwatch(struct vmb_stop *s, struct vmb_stop_watch *w)
{
	pthread_mutex_lock(&s->lock);
	vmb_list_del(&w->link);
	pthread_mutex_unlock(&s->lock);
}

void vmb_stop_fire(struct vmb_stop *s, int err)
{
	struct vmb_list *pos;
	int none = 0;

	pthread_mutex_lock(&s->lock);
	atomic_compare_exchange_strong(&s->err, &none, err);
	vmb_list_for_each(pos, &s->watchers)
		vmb_event_notify(vmb_container_of(pos, struct vmb_stop_watch, link)->ev);
	pthread_mutex_unlock(&s->lock);
}

struct fence_waiter {
	struct vmb_fence_cb cb;
	struct vmb_event ev;
};

static void fence_waiter_wake(struct vmb_fence *f, struct vmb_fence_cb *cb)
{
	(void)f;
	vmb_event_notify(&vmb_container_of(cb, struct fence_waiter, cb)->ev);
}

int vmb_fence_wait_stop(struct vmb_fence *f, int64_t deadline_ns, bool interruptible, struct vmb_stop *s)
{
	struct fence_waiter w;
	struct vmb_stop_watch sw;

	if (!s || vmb_fence_is_signalled(f))
		return vmb_fence_wait(f, deadline_ns, interruptible);
	/* one event that both the fence (a callback) and the stop notify */
	vmb_event_init(&w.ev);
	int err = vmb_stop_watch(s, &sw, &w.ev);
	if (err) {
		vmb_event_fini(&w.ev);
		return err;
	}
	bool armed = vmb_fence_add_callback(f, &w.cb, fence_waiter_wake) == 0;
	for (;;) {
		uint32_t seen = vmb_event_read(&w.ev);
		if (vmb_fence_is_signalled(f)) {
			err = 0;
			break;
		}
		if ((err = vmb_stop_err(s)) || (err = vmb_event_wait(&w.ev, seen, deadline_ns, interruptible)))
			break;
	}
	/* once removed (or run), the callback does not touch `w` again: the fence lock orders it */
	if (armed)
		vmb_fence_remove_callback(f, &w.cb);
	vmb_stop_unwatch(s, &sw);
	vmb_event_fini(&w.ev);
	return err;
}
