/* SPDX-License-Identifier: MIT */
/*
 * Fences as file descriptors, so that other event loops (poll, epoll) can wait on them.
 *
 * Export: an eventfd (semaphore mode) that becomes readable once the fence signals and stays
 * readable (each read returns 1). The first export of a pending fence makes one eventfd, which
 * we own, and a callback on the fence that writes it and closes it at the signal; every export
 * of that fence returns a duplicate of it, so the application may close its descriptors at any
 * time and we hold one descriptor per exported pending fence, not one per export. A fence
 * already signalled gets a fresh, readable eventfd and we keep nothing. The exports of one fence
 * share one counter: a write to one of them (misuse) shows in all; the signal fills the counter
 * whatever it held, so they stay readable all the same.
 * Import: any pollable descriptor (an exported one, an eventfd of the application's, a pipe):
 * a new fence that signals once the descriptor is readable. A watcher thread per device,
 * started at the first import, polls the imported descriptors (epoll, through a duplicate of
 * each, closed when it fires); at device teardown the fences of descriptors that never became
 * readable signal with -ECANCELED.
 *
 * Locking: `lock` protects `started` and the list of imports; each fence's own lock protects
 * its `exported` (no global lock: one held at fork() would stay held in the child).
 */
#ifndef VMB_SYNC_SYNCFD_H
#define VMB_SYNC_SYNCFD_H

#include <pthread.h>
#include <stdbool.h>

#include "core/list.h"
#include "sync/fence.h"

struct vmb_fdwatch {
	pthread_mutex_t lock;
	bool started;
	int epfd, stopfd;
	pthread_t thread;
	struct vmb_list imports;
};

void vmb_fdwatch_init(struct vmb_fdwatch *w);
void vmb_fdwatch_fini(struct vmb_fdwatch *w);

/* A new descriptor for @f: 0 (*fd set), -EMFILE/-ENFILE, -ENOMEM. */
int vmb_fence_export_fd(struct vmb_fence *f, int *fd);
/* A new fence for @fd (a reference): 0, -EBADF, -ENOMEM, or another negative errno. */
int vmb_fence_import_fd(struct vmb_fdwatch *w, int fd, struct vmb_fence **out);

#endif
