/* SPDX-License-Identifier: MIT */
/* Fences as file descriptors; the design is in syncfd.h. */
#include "sync/syncfd.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "core/alloc.h"

/*
 * One export per pending fence, shared by all its exports: the library holds its eventfd (each
 * caller gets a duplicate) until the fence signals. The fence's own lock protects
 * fence->exported and the export's descriptor: the callback that signals the export runs under
 * it. (No lock of the library's own is global: one held by another thread at fork() would stay
 * held forever in the child, which opens clients of its own.)
 */

struct export {
	struct vmb_fence_cb cb;
	int fd; /* ours; the callers' are duplicates of it */
};

/* A semaphore eventfd with this count reads 1 at each read and stays readable (as a sync_file
 * stays signalled), whichever of the duplicates its readers use. */
#define SIGNALLED_COUNT (UINT64_MAX - 1)

static int new_eventfd(void)
{
	int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK | EFD_SEMAPHORE);
	return efd < 0 ? -errno : efd;
}

/* Fills the counter up to SIGNALLED_COUNT, whatever it held: a holder of one of the duplicates
 * may have written to it (misuse, UAPI.md), and a plain write of SIGNALLED_COUNT would then fail
 * and leave a counter that one read empties. */
static void signal_eventfd(int fd)
{
	uint64_t add = SIGNALLED_COUNT;
	while (add) {
		if (write(fd, &add, sizeof(add)) == (ssize_t)sizeof(add)) {
			if (add == SIGNALLED_COUNT)
				return; /* the counter was 0: now full */
			continue;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN)
			return;
		add >>= 1; /* no room for that much: add less */
	}
}

/* A fence callback: runs under the fence's lock. */
static void export_signalled(struct vmb_fence *f, struct vmb_fence_cb *cb)
{
	struct export *x = vmb_container_of(cb, struct export, cb);
	signal_eventfd(x->fd);
	close(x->fd);
	f->exported = NULL;
	free(x);
}

/* A duplicate of @f's pending export for the caller: the descriptor, -ENOENT (none), or a
 * negative errno. */
static int dup_export(struct vmb_fence *f)
{
	pthread_mutex_lock(&f->lock);
	struct export *x = f->exported;
	int fd = x ? fcntl(x->fd, F_DUPFD_CLOEXEC, 0) : -1;
	int err = !x ? -ENOENT : fd < 0 ? -errno : fd;
	pthread_mutex_unlock(&f->lock);
	return err;
}

int vmb_fence_export_fd(struct vmb_fence *f, int *fd)
{
	int r;

	/* a few rounds at most: -ENOENT from dup_export() after an export existed means the fence
	 * signalled (its callback took the export away), and the next round sees that */
	for (;;) {
		if (vmb_fence_is_signalled(f)) {
			if ((r = new_eventfd()) < 0)
				return r;
			signal_eventfd(r);
			*fd = r;
			return 0;
		}
		if ((r = dup_export(f)) != -ENOENT)
			break;
		/* the first export of this fence: make one (another thread may race us to it) */
		struct export *x = vmb_malloc(sizeof(*x));
		if (!x)
			return -ENOMEM;
		if ((x->fd = new_eventfd()) < 0) {
			r = x->fd;
			free(x);
			return r;
		}
		pthread_mutex_lock(&f->lock);
		bool won = !f->exported;
		if (won)
			f->exported = x;
		pthread_mutex_unlock(&f->lock);
		if (!won) {
			close(x->fd);
			free(x);
			continue;
		}
		if (vmb_fence_add_callback(f, &x->cb, export_signalled) == -ENOENT) {
			/* signalled meanwhile: a duplicate first, then the callback's work */
			r = dup_export(f);
			pthread_mutex_lock(&f->lock);
			export_signalled(f, &x->cb);
			pthread_mutex_unlock(&f->lock);
			break;
		}
		if ((r = dup_export(f)) != -ENOENT)
			break;
	}
	if (r < 0)
		return r;
	*fd = r;
	return 0;
}

struct import {
	struct vmb_list link; /* in w->imports */
	struct vmb_fence *fence;
	int fd; /* our duplicate */
};

static void import_done(struct vmb_fdwatch *w, struct import *im, int error)
{
	epoll_ctl(w->epfd, EPOLL_CTL_DEL, im->fd, NULL);
	close(im->fd);
	vmb_fence_signal(im->fence, error);
	vmb_fence_unref(im->fence);
	free(im);
}

static void *watch(void *arg)
{
	struct vmb_fdwatch *w = arg;
	struct epoll_event evs[16];

	for (;;) {
		int n = epoll_wait(w->epfd, evs, 16, -1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			break;
		pthread_mutex_lock(&w->lock);
		for (int i = 0; i < n; i++) {
			if (evs[i].data.ptr == NULL) { /* stopfd */
				pthread_mutex_unlock(&w->lock);
				return NULL;
			}
			struct import *im = evs[i].data.ptr;
			vmb_list_del(&im->link);
			import_done(w, im, 0);
		}
		pthread_mutex_unlock(&w->lock);
	}
	return NULL;
}

void vmb_fdwatch_init(struct vmb_fdwatch *w)
{
	pthread_mutex_init(&w->lock, NULL);
	w->started = false;
	w->epfd = w->stopfd = -1;
	vmb_list_init(&w->imports);
}

static int start(struct vmb_fdwatch *w)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
	int err = 0;
	/* each step's own error: the system calls set errno, thread creation returns its error */
	if ((w->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0 || (w->stopfd = eventfd(0, EFD_CLOEXEC)) < 0 ||
	    epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->stopfd, &ev) < 0)
		err = -errno;
	else
		err = -vmb_thread_create(&w->thread, watch, w);
	if (err) {
		if (w->epfd >= 0)
			close(w->epfd);
		if (w->stopfd >= 0)
			close(w->stopfd);
		w->epfd = w->stopfd = -1;
		return err;
	}
	w->started = true;
	return 0;
}

void vmb_fdwatch_fini(struct vmb_fdwatch *w)
{
	if (w->started) {
		uint64_t one = 1;
		if (write(w->stopfd, &one, sizeof(one)) < 0)
			abort(); /* cannot happen: the counter is far from its limit */
		pthread_join(w->thread, NULL);
		struct vmb_list *pos, *tmp;
		vmb_list_for_each_safe(pos, tmp, &w->imports) {
			vmb_list_del(pos);
			import_done(w, vmb_container_of(pos, struct import, link), -ECANCELED);
		}
		close(w->epfd);
		close(w->stopfd);
	}
	pthread_mutex_destroy(&w->lock);
}

int vmb_fence_import_fd(struct vmb_fdwatch *w, int fd, struct vmb_fence **out)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	int err = 0;

	if (fd < 0 || fcntl(fd, F_GETFD) < 0)
		return -EBADF;
	struct vmb_fence *f = vmb_fence_create();
	if (!f)
		return -ENOMEM;
	if (poll(&p, 1, 0) == 1 && (p.revents & (POLLIN | POLLHUP))) {
		vmb_fence_signal(f, 0);
		*out = f;
		return 0;
	}
	struct import *im = vmb_malloc(sizeof(*im));
	if (!im) {
		vmb_fence_unref(f);
		return -ENOMEM;
	}
	im->fence = f;
	vmb_fence_get(f); /* the watcher's */
	im->fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	pthread_mutex_lock(&w->lock);
	if (im->fd < 0)
		err = -errno;
	else if (!w->started)
		err = start(w);
	if (!err) {
		struct epoll_event ev = {.events = EPOLLIN | EPOLLONESHOT, .data.ptr = im};
		vmb_list_add_tail(&im->link, &w->imports);
		if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, im->fd, &ev) < 0) {
			err = -errno;
			vmb_list_del(&im->link);
		}
	}
	pthread_mutex_unlock(&w->lock);
	if (err) {
		if (im->fd >= 0)
			close(im->fd);
		vmb_fence_unref(f);
		vmb_fence_unref(f);
		free(im);
		return err;
	}
	*out = f;
	return 0;
}
