/* SPDX-License-Identifier: MIT */
/*
 * Entry points: BO export to a file descriptor and import from one, as DRM PRIME does, so that
 * a BO crosses between clients (and later processes): the same BO, one object, its memory shared.
 *
 * The descriptor. A BO's memory is anonymous shared memory that the library does not keep a
 * descriptor of (mem/bo.h), and the import must recognise a descriptor as one of ours and find
 * its BO. An export is one end of a socketpair(AF_UNIX): the application gets one end (it can
 * dup it, and later hand it to another process with SCM_RIGHTS); the library keeps the other in
 * a process-wide export table, keyed by the application's end's (st_dev, st_ino), holding a
 * reference on the BO and a user of its device (dev/registry.h: the device outlives its last
 * client while a BO of it is exported). Import fstat()s the descriptor and looks the key up. A
 * socket and not a memfd: when the application has closed its last copy of its end, our end
 * reports EPOLLHUP, which tells us to drop the entry, without a descriptor per BO that was never
 * exported, and without the BO's memory being reachable through the descriptor (import gives
 * access only to a process that holds one). Each export makes a new pair (dma-buf returns the
 * same file for a GEM object exported twice; here two exports are two entries of one BO).
 *
 * The watcher: one thread for the process, started by the first export when none runs, waits
 * (epoll) for the HUP of our ends; it takes the entry off the table, then drops the BO
 * reference (device lock) and the device user (which may destroy the device: the watcher is
 * none of the device's threads, so it may join them). It ends, closing its epoll descriptor,
 * once the table is empty; the next export starts another. So the BO's reference goes shortly
 * after the application's last close, not at it (as a dma-buf's last fput does at once).
 *
 * The table is a list: an import is linear in the live exports (one per shared BO, not per BO).
 *
 * Locking: `lock` protects the table, its entries and the watcher's state. Order: device lock,
 * then the export lock (import takes the BO reference with both held); the watcher takes the
 * device lock only after it dropped the export lock. fork(): pthread_atfork handlers take the
 * lock around fork(); the child gets an empty table (closing its copies of our ends and of the
 * epoll descriptor; the entries are left as inherited memory) and no watcher, so descriptors
 * exported in the parent are not vmbind BOs in the child (import: -EINVAL).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <vmbind/bo.h>

#include "core/alloc.h"
#include "core/list.h"
#include "dev/registry.h"
#include "mem/bo.h"
#include "uapi/uapi.h"

struct export {
	struct vmb_list link; /* in table.entries */
	dev_t key_dev;        /* the application's end */
	ino_t key_ino;
	int fd;               /* our end */
	struct vmb_bo *bo;    /* a reference, and a user of bo->dev */
};

static struct {
	pthread_mutex_t lock;
	struct vmb_list entries;
	bool running; /* a watcher runs, on epfd */
	int epfd;
} table = {PTHREAD_MUTEX_INITIALIZER, {&table.entries, &table.entries}, false, -1};

static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;
static int atfork_err;

static void fork_prepare(void) { pthread_mutex_lock(&table.lock); }
static void fork_parent(void) { pthread_mutex_unlock(&table.lock); }
static void fork_child(void)
{
	struct vmb_list *pos;
	vmb_list_for_each(pos, &table.entries)
		close(vmb_container_of(pos, struct export, link)->fd);
	if (table.running)
		close(table.epfd);
	table.running = false;
	table.epfd = -1;
	vmb_list_init(&table.entries);
	pthread_mutex_init(&table.lock, NULL);
}
static void atfork_register(void) { atfork_err = pthread_atfork(fork_prepare, fork_parent, fork_child); }

/* An entry off the table: our end closed, the BO reference and the device user dropped. */
static void export_release(struct export *x)
{
	struct vmb_device *dev = x->bo->dev;
	close(x->fd);
	vmb_dev_lock(dev);
	vmb_bo_put(x->bo);
	vmb_dev_unlock(dev);
	vmb_device_put(dev);
	free(x);
}

/* The epoll descriptor of the watcher being started (under table.lock, before its thread is
 * created: the thread reads it first, before it can end and let another watcher start). */
static int watch_start_epfd;

static void *watch(void *arg)
{
	(void)arg;
	int epfd = watch_start_epfd;
	struct epoll_event evs[16];

	pthread_detach(pthread_self());
	for (;;) {
		int n = epoll_wait(epfd, evs, 16, -1);
		if (n < 0)
			continue; /* EINTR; epfd is ours until we close it */
		struct vmb_list done;
		vmb_list_init(&done);
		pthread_mutex_lock(&table.lock);
		for (int i = 0; i < n; i++) {
			struct export *x = evs[i].data.ptr;
			epoll_ctl(epfd, EPOLL_CTL_DEL, x->fd, NULL);
			vmb_list_del(&x->link);
			vmb_list_add_tail(&x->link, &done);
		}
		bool last = vmb_list_empty(&table.entries);
		if (last)
			table.running = false;
		pthread_mutex_unlock(&table.lock);
		struct vmb_list *pos, *tmp;
		vmb_list_for_each_safe(pos, tmp, &done)
			export_release(vmb_container_of(pos, struct export, link));
		if (last) {
			close(epfd);
			return NULL;
		}
	}
}

/* Under table.lock: a watcher runs (0), or -errno. */
static int watcher_start(void)
{
	pthread_t t;
	if (table.running)
		return 0;
	int epfd = epoll_create1(EPOLL_CLOEXEC);
	if (epfd < 0)
		return errno == EMFILE || errno == ENFILE ? -errno : -ENOMEM;
	watch_start_epfd = epfd;
	int err = -vmb_thread_create(&t, watch, NULL);
	if (err) {
		close(epfd);
		return err;
	}
	table.epfd = epfd;
	table.running = true;
	return 0;
}

VMB_ENTRY(vmb_bo_export_fd, struct vmb_bo_export_fd, args)
{
	struct stat st;
	int sv[2], err;

	if (!args || args->flags || args->pad || !VMB_ZERO(args->reserved))
		return -EINVAL;
	pthread_once(&atfork_once, atfork_register);
	if (atfork_err)
		return -atfork_err;
	struct export *x = vmb_malloc(sizeof(*x));
	if (!x)
		return -ENOMEM;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		err = errno == EMFILE || errno == ENFILE ? -errno : -ENOMEM;
		free(x);
		return err;
	}
	if (fstat(sv[0], &st) < 0)
		abort(); /* cannot happen: our own open socket */
	x->key_dev = st.st_dev;
	x->key_ino = st.st_ino;
	x->fd = sv[1];
	vmb_lock(c);
	x->bo = vmb_handle_lookup(&c->bos, args->handle);
	if (x->bo)
		vmb_bo_get(x->bo);
	vmb_unlock(c);
	if (!x->bo) {
		err = -ENOENT;
		goto fail;
	}
	vmb_device_get(c->dev);
	pthread_mutex_lock(&table.lock);
	struct epoll_event ev = {.events = EPOLLHUP, .data.ptr = x};
	if (!(err = watcher_start()) && epoll_ctl(table.epfd, EPOLL_CTL_ADD, x->fd, &ev) < 0)
		err = errno == ENOSPC ? -ENOSPC : -ENOMEM;
	if (!err)
		vmb_list_add_tail(&x->link, &table.entries);
	pthread_mutex_unlock(&table.lock);
	if (err) {
		/* a watcher started for this entry alone has nothing to report: it ends at the next
		 * export's HUP, or stays idle (one thread, one descriptor) */
		close(sv[0]);
		export_release(x);
		return err;
	}
	args->fd = sv[0];
	return 0;
fail:
	close(sv[0]);
	close(sv[1]);
	free(x);
	return err;
}

VMB_ENTRY(vmb_bo_import_fd, struct vmb_bo_import_fd, args)
{
	struct stat st;
	struct vmb_list *pos;
	struct vmb_bo *bo = NULL;
	uint32_t h;
	int err = -EINVAL;

	if (!args || args->flags || args->pad || !VMB_ZERO(args->reserved))
		return -EINVAL;
	if (args->fd < 0 || fstat(args->fd, &st) < 0)
		return -EBADF;
	vmb_lock(c);
	pthread_mutex_lock(&table.lock);
	vmb_list_for_each(pos, &table.entries) {
		struct export *x = vmb_container_of(pos, struct export, link);
		if (x->key_dev != st.st_dev || x->key_ino != st.st_ino)
			continue;
		/* bo->dev is immutable; the reference is taken under the BO's device lock */
		err = x->bo->dev != c->dev ? -EXDEV : 0;
		if (!err)
			vmb_bo_get(bo = x->bo);
		break;
	}
	pthread_mutex_unlock(&table.lock);
	if (bo) {
		/* a BO the client knows keeps its handle */
		if ((h = vmb_client_bo_handle(c, bo))) {
			vmb_bo_put(bo);
		} else if ((err = vmb_client_bo_install(c, bo, &h))) {
			vmb_bo_put(bo);
		}
		if (!err)
			args->handle = h;
	}
	vmb_unlock(c);
	return err;
}
