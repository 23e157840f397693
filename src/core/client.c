/* SPDX-License-Identifier: MIT */
/* A client's life: calls in flight, close, fork. The design is in client.h. */
#include "core/client.h"

#include <pthread.h>
#include <time.h>

#include "dev/core.h"

atomic_uint vmb_fork_gen;

/* Set once the handler is registered. Two first opens racing may both register it: harmless
 * (a fork then bumps the generation twice). No lock, so an open in a child never waits for a
 * lock another thread of the parent held at fork(). */
static atomic_bool atfork_done;

static void fork_child(void)
{
	atomic_fetch_add_explicit(&vmb_fork_gen, 1, memory_order_relaxed);
}

int vmb_client_life_init(struct vmb_client *c)
{
	if (!atomic_load(&atfork_done)) {
		int err = pthread_atfork(NULL, NULL, fork_child);
		if (err)
			return -err;
		atomic_store(&atfork_done, true);
	}
	c->fork_gen = atomic_load_explicit(&vmb_fork_gen, memory_order_relaxed);
	atomic_init(&c->closing, 0);
	for (unsigned int i = 0; i < VMB_RWLOCK_SLOTS; i++)
		atomic_init(&c->calls[i].readers, 0);
	pthread_mutex_init(&c->life_lock, NULL);
	pthread_cond_init(&c->life_cond, NULL);
	vmb_stop_init(&c->stop);
	return 0;
}

void vmb_client_life_fini(struct vmb_client *c)
{
	vmb_stop_fini(&c->stop);
	pthread_cond_destroy(&c->life_cond);
	pthread_mutex_destroy(&c->life_lock);
}

void vmb_client_leave_closing(struct vmb_client *c)
{
	pthread_mutex_lock(&c->life_lock);
	atomic_fetch_sub_explicit(vmb_client_calls(c), 1, memory_order_release);
	pthread_cond_broadcast(&c->life_cond);
	pthread_mutex_unlock(&c->life_lock);
}

int vmb_client_close_begin(struct vmb_client *c)
{
	pthread_mutex_lock(&c->life_lock);
	unsigned int was = atomic_exchange(&c->closing, 1);
	pthread_mutex_unlock(&c->life_lock);
	if (was)
		return -ENODEV;
	/* every wait of a call in flight ends: syncobj and bind waits watch `stop`; user-fence
	 * waits sleep on the device's user-fence event, and check the stop when it wakes them */
	vmb_stop_fire(&c->stop, -ENODEV);
	vmb_event_notify(&c->dev->ufence_ev);
	pthread_mutex_lock(&c->life_lock);
	while (vmb_client_calls_in(c) > 1) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += VMB_CLIENT_CLOSE_POLL_NS;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&c->life_cond, &c->life_lock, &ts);
	}
	pthread_mutex_unlock(&c->life_lock);
	return 0;
}
