/* SPDX-License-Identifier: MIT */
/*
 * Fences as file descriptors, so that other event loops (poll, epoll) can wait on them.
 *
 * Export: an eventfd that becomes readable (a count of 1 is written) once the fence signals;
 * a callback on the fence writes it through a duplicate we own, so the application may close
 * its descriptor at any time.
 * Import: any pollable descriptor (an exported one, an eventfd of the application's, a pipe):
 * a new fence that signals once the descriptor is readable. A watcher thread per device,
 * started at the first import, polls the imported descriptors (epoll); at device teardown the
 * fences of descriptors that never became readable signal with -ECANCELED.
 *
 * Locking: `lock` protects `started` and the list of imports.
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

/* A new eventfd for @f: 0 (*fd set) or a negative errno. */
int vmb_fence_export_fd(struct vmb_fence *f, int *fd);
/* A new fence for @fd (a reference): 0, -EBADF, -ENOMEM, or another negative errno. */
int vmb_fence_import_fd(struct vmb_fdwatch *w, int fd, struct vmb_fence **out);

#endif
