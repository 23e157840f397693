/* SPDX-License-Identifier: MIT */
/*
 * The soft GPU's DMA engine (not the exec engine of class COPY, which runs command buffers):
 * one thread per device that runs migrations' copies (struct vmb_dev_copy, dev/device.h) in the
 * order they are handed over and signals each request's `done` fence with its error, as a
 * GPU's hardware fence. It never calls into vm or
 * mem and takes no device lock: a copy names its two backings, nothing else.
 *
 * What a copy moves: nothing. Every backing the soft device makes for a BO maps that BO's own
 * pages (backing_alloc's @host, region.h), so the destination shows the source's bytes from the
 * moment it exists; copying them through the two views would race with the GPU's and the CPU's
 * writes to the BO and could lose one. The engine checks the request (two backings of one size)
 * and completes it; the test hooks of core/alloc.h hold it back (vmb_copy_hold) or fail it
 * (vmb_copy_fail_after, -EIO: the soft device never fails otherwise).
 *
 * Teardown (soft_copier_stop, from the device's engines_stop before the scheduler stops): the
 * thread ends the copies it still has with -ECANCELED and is joined; a copy handed over later is
 * ended with -ECANCELED by its submitter.
 *
 * Locking: `lock` protects `queue` and `stop`. `started` is under the device lock (the thread
 * starts with the first copy request, soft_copier_open); `joined` belongs to the thread that
 * tears the device down.
 */
#ifndef VMB_DEV_SOFT_COPY_H
#define VMB_DEV_SOFT_COPY_H

#include <pthread.h>
#include <stdbool.h>

#include "core/list.h"
#include "dev/device.h"

/* A copy request on the soft copy engine. */
struct soft_copy {
	struct vmb_dev_copy base;
	struct vmb_list link; /* in the engine's queue */
};

struct soft_copier {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct vmb_list queue; /* struct soft_copy.link, in submission order */
	bool stop, started, joined;
};

/* Starts the thread if it is not running (device lock held). 0 or -EAGAIN. */
int soft_copier_open(struct soft_copier *c);
void soft_copier_submit(struct soft_copier *c, struct soft_copy *x);
/* Ends what it has with -ECANCELED and joins the thread (once). */
void soft_copier_stop(struct soft_copier *c);
/* Last: frees the lock and condition variable. */
void soft_copier_release(struct soft_copier *c);

#endif
