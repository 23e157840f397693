/* SPDX-License-Identifier: MIT */
/* The soft GPU's DMA engine (migrations' copies); the design is in copy.h. */
#include "dev/soft/copy.h"

#include <errno.h>
#include <string.h>
#include <time.h>

#include "core/alloc.h"
#include "sync/fence.h"

/* The copy is over: its result into the request, then its fence (the waiter's callback may
 * free the request: a reference on the fence is held across). */
static void copy_end(struct soft_copy *x, int error)
{
	struct vmb_fence *done = x->base.done;
	x->base.error = error;
	vmb_fence_get(done);
	vmb_signalling_begin();
	vmb_fence_signal(done, error);
	vmb_signalling_end();
	vmb_fence_unref(done);
}

/* One copy (see copy.h: the bytes are there already). */
static int copy_run(const struct vmb_dev_copy *c)
{
	int err = vmb_copy_should_fail();
	if (err)
		return err;
	if (!c->src || !c->dst || c->src->size != c->size || c->dst->size != c->size)
		return -EINVAL;
	return 0;
}

/* The next request, waiting while the queue is empty or the test hook holds the engine back;
 * NULL once stopping. */
static struct soft_copy *next_copy(struct soft_copier *c)
{
	pthread_mutex_lock(&c->lock);
	for (;;) {
		if (c->stop) {
			pthread_mutex_unlock(&c->lock);
			return NULL;
		}
		if (!vmb_list_empty(&c->queue) && !vmb_copy_held())
			break;
		if (vmb_list_empty(&c->queue)) {
			pthread_cond_wait(&c->cond, &c->lock);
		} else { /* held: look again in a millisecond */
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += 1000000;
			if (ts.tv_nsec >= 1000000000) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000;
			}
			pthread_cond_timedwait(&c->cond, &c->lock, &ts);
		}
	}
	struct soft_copy *x = vmb_container_of(c->queue.next, struct soft_copy, link);
	vmb_list_del(&x->link);
	pthread_mutex_unlock(&c->lock);
	return x;
}

static void *copier_main(void *arg)
{
	struct soft_copier *c = arg;
	struct soft_copy *x;

	while ((x = next_copy(c)))
		copy_end(x, copy_run(&x->base));
	/* stopping: whatever is left is cancelled */
	for (;;) {
		pthread_mutex_lock(&c->lock);
		x = vmb_list_empty(&c->queue) ? NULL : vmb_container_of(c->queue.next, struct soft_copy, link);
		if (x)
			vmb_list_del(&x->link);
		pthread_mutex_unlock(&c->lock);
		if (!x)
			break;
		copy_end(x, -ECANCELED);
	}
	return NULL;
}

int soft_copier_open(struct soft_copier *c)
{
	if (c->started)
		return 0;
	memset(c, 0, sizeof(*c));
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->cond, NULL);
	vmb_list_init(&c->queue);
	if (vmb_thread_create(&c->thread, copier_main, c)) {
		pthread_mutex_destroy(&c->lock);
		pthread_cond_destroy(&c->cond);
		return -EAGAIN;
	}
	c->started = true;
	return 0;
}

void soft_copier_submit(struct soft_copier *c, struct soft_copy *x)
{
	pthread_mutex_lock(&c->lock);
	if (c->stop) {
		/* teardown: a signaller handed this copy over after the engine stopped */
		pthread_mutex_unlock(&c->lock);
		copy_end(x, -ECANCELED);
		return;
	}
	vmb_list_add_tail(&x->link, &c->queue);
	pthread_mutex_unlock(&c->lock);
	pthread_cond_signal(&c->cond);
}

void soft_copier_stop(struct soft_copier *c)
{
	if (!c->started || c->joined)
		return;
	pthread_mutex_lock(&c->lock);
	c->stop = true;
	pthread_cond_signal(&c->cond);
	pthread_mutex_unlock(&c->lock);
	pthread_join(c->thread, NULL);
	c->joined = true;
}

void soft_copier_release(struct soft_copier *c)
{
	if (!c->started)
		return;
	pthread_mutex_destroy(&c->lock);
	pthread_cond_destroy(&c->cond);
	c->started = false;
}
