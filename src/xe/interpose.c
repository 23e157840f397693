/* SPDX-License-Identifier: MIT */
/*
 * The Xe-uAPI shim's process side (libvmbind-xe.so, loaded with LD_PRELOAD or the loader's
 * --preload): the libc functions through which a program reaches /dev/dri/cardN, replaced so
 * that one node path (VMB_XE_NODE, default /dev/dri/card0) is a fake Xe device (ioctl.c).
 *
 * Owns: the descriptor table (fdtab[fd]: the device a descriptor names; dup'ed descriptors
 * share one struct dev) and the list of CPU mappings made through mmap() of a device's
 * GEM_MMAP_OFFSET cookies. Invariants: a struct dev's refs counts its descriptors, its
 * mappings and the calls in flight on it; the last drop closes its xe_file. A mapping is the
 * BO's own memory (vmbind's), so munmap() never hands any of a BO's extent to the real munmap:
 * it takes the pages the program unmaps off the mapping's live ranges, and drops the mapping
 * (vmb_bo_munmap) when none are left, as a DRM mapping's last page going drops its BO. A descriptor's entry
 * also records the memfd's inode, so a descriptor closed behind the shim's back (a raw syscall)
 * and reused for another file is recognised as stale and passes through.
 * Lock: tab_lock guards fdtab, maps and every refs; it is never held across a call into ioctl.c
 * or vmbind, nor across a call of the real libc function.
 * Every path and descriptor that is not the device's passes through to the next definition
 * (dlsym(RTLD_NEXT)) untouched.
 */
#undef _FORTIFY_SOURCE
#undef _FILE_OFFSET_BITS /* open and open64 (and the others) are two symbols to define */
#include "xe/shim.h"

#include <drm/drm.h>

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#define EXPORT __attribute__((visibility("default")))
#define FD_MAX 65536

struct dev {
	struct xe_file *f;
	unsigned refs; /* tab_lock */
};

struct fd_entry {
	struct dev *d;
	ino_t ino; /* the memfd's inode */
};

struct range {
	uintptr_t start, end;
};

struct map {
	void *addr;           /* the BO's CPU mapping: vmbind's memory, extent bytes */
	uintptr_t extent;     /* the BO's size */
	struct range *live;   /* the page ranges the program still has mapped, sorted */
	unsigned nlive;
	unsigned long stamp;  /* the munmap() call that last took pages off it */
	struct dev *d;
	struct map *next;
};

static pthread_mutex_t tab_lock = PTHREAD_MUTEX_INITIALIZER;
static struct fd_entry fdtab[FD_MAX]; /* tab_lock */
static struct map *maps;              /* tab_lock */
static unsigned long munmap_calls;    /* tab_lock */

/* fork(): tab_lock is taken around it (it never nests with ioctl.c's files_lock, which has its
 * own handler), so a child never inherits it held by another thread. */
static void tab_fork_prepare(void) { pthread_mutex_lock(&tab_lock); }
static void tab_fork_done(void) { pthread_mutex_unlock(&tab_lock); }
__attribute__((constructor)) static void tab_fork_init(void)
{
	pthread_atfork(tab_fork_prepare, tab_fork_done, tab_fork_done);
}

/* ---- the next definitions ---- */

static void *next_sym(void **slot, const char *name)
{
	void *p = __atomic_load_n(slot, __ATOMIC_ACQUIRE);
	if (!p) {
		p = dlsym(RTLD_NEXT, name);
		if (!p) {
			fprintf(stderr, "libvmbind-xe: no next definition of %s\n", name);
			abort();
		}
		__atomic_store_n(slot, p, __ATOMIC_RELEASE);
	}
	return p;
}
#define NEXT(type, name)                                                                           \
	static void *next_##name;                                                                  \
	__typeof__(type) real_##name = (__typeof__(type))next_sym(&next_##name, #name)

/* ---- the node ---- */

static const char *node_path(void)
{
	const char *p = getenv("VMB_XE_NODE");
	return p && *p ? p : "/dev/dri/card0";
}

static bool is_node(const char *path)
{
	return path && strcmp(path, node_path()) == 0;
}

static bool real_ino(int fd, ino_t *ino);
static void dev_put(struct dev *d);

/* The device @fd names, with a reference taken, or NULL. */
static struct dev *dev_get(int fd)
{
	if (fd < 0 || fd >= FD_MAX)
		return NULL;
	pthread_mutex_lock(&tab_lock);
	struct dev *d = fdtab[fd].d;
	ino_t ino = fdtab[fd].ino;
	if (d)
		d->refs++;
	pthread_mutex_unlock(&tab_lock);
	if (!d)
		return NULL;
	ino_t now;
	if (!real_ino(fd, &now) || now != ino) { /* closed behind our back, and reused */
		pthread_mutex_lock(&tab_lock);
		bool stale = fdtab[fd].d == d;
		if (stale)
			fdtab[fd].d = NULL;
		pthread_mutex_unlock(&tab_lock);
		if (stale)
			dev_put(d);
		dev_put(d);
		return NULL;
	}
	return d;
}

static void dev_put(struct dev *d)
{
	pthread_mutex_lock(&tab_lock);
	bool last = --d->refs == 0;
	pthread_mutex_unlock(&tab_lock);
	if (last) {
		xe_file_close(d->f);
		free(d);
	}
}

/* Another descriptor @fd for @d (dup): takes a reference. */
static void fd_share(int fd, struct dev *d)
{
	ino_t ino;
	if (fd < 0 || fd >= FD_MAX || !real_ino(fd, &ino))
		return;
	pthread_mutex_lock(&tab_lock);
	struct dev *old = fdtab[fd].d;
	d->refs++;
	fdtab[fd].d = d;
	fdtab[fd].ino = ino;
	pthread_mutex_unlock(&tab_lock);
	if (old)
		dev_put(old);
}

/* Forgets descriptor @fd; returns the device it named (its reference now the caller's). */
static struct dev *fd_forget(int fd)
{
	if (fd < 0 || fd >= FD_MAX)
		return NULL;
	pthread_mutex_lock(&tab_lock);
	struct dev *d = fdtab[fd].d;
	fdtab[fd].d = NULL;
	pthread_mutex_unlock(&tab_lock);
	return d;
}

static int node_open(int flags)
{
	struct xe_file *f;
	int r = xe_file_open(&f);
	if (r) {
		errno = -r;
		return -1;
	}
	int fd = memfd_create("vmbind-xe", flags & O_CLOEXEC ? MFD_CLOEXEC : 0);
	if (fd >= FD_MAX) {
		NEXT(int (*)(int), close);
		real_close(fd);
		fd = -1;
		errno = EMFILE;
	}
	ino_t ino;
	if (fd < 0 || !real_ino(fd, &ino)) {
		int e = errno;
		xe_file_close(f);
		errno = e;
		return -1;
	}
	struct dev *d = calloc(1, sizeof(*d));
	if (!d) {
		NEXT(int (*)(int), close);
		real_close(fd);
		xe_file_close(f);
		errno = ENOMEM;
		return -1;
	}
	d->f = f;
	d->refs = 1;
	pthread_mutex_lock(&tab_lock);
	struct dev *old = fdtab[fd].d;
	fdtab[fd].d = d;
	fdtab[fd].ino = ino;
	pthread_mutex_unlock(&tab_lock);
	if (old)
		dev_put(old);
	return fd;
}

/* ---- open ---- */

static mode_t open_mode(int flags, va_list ap)
{
	return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE ? (mode_t)va_arg(ap, int) : 0;
}

#define OPEN_WRAPPER(name)                                                                         \
	EXPORT int name(const char *path, int flags, ...)                                          \
	{                                                                                          \
		va_list ap;                                                                        \
		va_start(ap, flags);                                                               \
		mode_t mode = open_mode(flags, ap);                                                \
		va_end(ap);                                                                        \
		if (is_node(path))                                                                 \
			return node_open(flags);                                                   \
		NEXT(int (*)(const char *, int, ...), name);                                       \
		return real_##name(path, flags, mode);                                             \
	}
OPEN_WRAPPER(open)
OPEN_WRAPPER(open64)

#define OPENAT_WRAPPER(name)                                                                       \
	EXPORT int name(int dirfd, const char *path, int flags, ...)                               \
	{                                                                                          \
		va_list ap;                                                                        \
		va_start(ap, flags);                                                               \
		mode_t mode = open_mode(flags, ap);                                                \
		va_end(ap);                                                                        \
		if (is_node(path))                                                                 \
			return node_open(flags);                                                   \
		NEXT(int (*)(int, const char *, int, ...), name);                                  \
		return real_##name(dirfd, path, flags, mode);                                      \
	}
OPENAT_WRAPPER(openat)
OPENAT_WRAPPER(openat64)

EXPORT int __open_2(const char *path, int flags);
EXPORT int __open64_2(const char *path, int flags);
EXPORT int __openat_2(int dirfd, const char *path, int flags);
EXPORT int __openat64_2(int dirfd, const char *path, int flags);
#define OPEN2_WRAPPER(name)                                                                        \
	int name(const char *path, int flags)                                                      \
	{                                                                                          \
		if (is_node(path))                                                                 \
			return node_open(flags);                                                   \
		NEXT(int (*)(const char *, int), name);                                            \
		return real_##name(path, flags);                                                   \
	}
OPEN2_WRAPPER(__open_2)
OPEN2_WRAPPER(__open64_2)
#define OPENAT2_WRAPPER(name)                                                                      \
	int name(int dirfd, const char *path, int flags)                                           \
	{                                                                                          \
		if (is_node(path))                                                                 \
			return node_open(flags);                                                   \
		NEXT(int (*)(int, const char *, int), name);                                       \
		return real_##name(dirfd, path, flags);                                            \
	}
OPENAT2_WRAPPER(__openat_2)
OPENAT2_WRAPPER(__openat64_2)

/* ---- stat: the node and its descriptors are character device 226:0 ---- */

static bool real_ino(int fd, ino_t *ino)
{
	struct stat st;
	NEXT(int (*)(int, struct stat *), fstat);
	if (real_fstat(fd, &st))
		return false;
	*ino = st.st_ino;
	return true;
}

/* Writes the node's stat into the caller's *@st; a buffer that is not mapped (or not writable)
 * makes the wrapper return -1 with EFAULT, as the system call does. */
#define FAKE_STAT(st)                                                                              \
	do {                                                                                       \
		__typeof__(*(st)) fake_;                                                           \
		memset(&fake_, 0, sizeof(fake_));                                                  \
		fake_.st_mode = S_IFCHR | 0666;                                                    \
		fake_.st_rdev = makedev(XE_SHIM_DRM_MAJOR, XE_SHIM_DRM_MINOR);                     \
		fake_.st_nlink = 1;                                                                \
		fake_.st_blksize = 4096;                                                           \
		if (xe_user_copy(&fake_, (uint64_t)(uintptr_t)(st), sizeof(fake_), true)) {       \
			errno = EFAULT;                                                            \
			return -1;                                                                 \
		}                                                                                  \
	} while (0)

static bool empty_path(const char *path)
{
	return path && !*path;
}

static bool is_dev_fd(int fd)
{
	struct dev *d = dev_get(fd);
	if (d)
		dev_put(d);
	return d != NULL;
}

#define STAT_WRAPPER(name, type)                                                                   \
	EXPORT int name(const char *path, type *st)                                                \
	{                                                                                          \
		if (is_node(path)) {                                                               \
			FAKE_STAT(st);                                                             \
			return 0;                                                                  \
		}                                                                                  \
		NEXT(int (*)(const char *, type *), name);                                         \
		return real_##name(path, st);                                                      \
	}
STAT_WRAPPER(stat, struct stat)
STAT_WRAPPER(stat64, struct stat64)
STAT_WRAPPER(lstat, struct stat)
STAT_WRAPPER(lstat64, struct stat64)

#define FSTAT_WRAPPER(name, type)                                                                  \
	EXPORT int name(int fd, type *st)                                                          \
	{                                                                                          \
		if (is_dev_fd(fd)) {                                                               \
			FAKE_STAT(st);                                                             \
			return 0;                                                                  \
		}                                                                                  \
		NEXT(int (*)(int, type *), name);                                                  \
		return real_##name(fd, st);                                                        \
	}
FSTAT_WRAPPER(fstat, struct stat)
FSTAT_WRAPPER(fstat64, struct stat64)

#define FSTATAT_WRAPPER(name, type)                                                                \
	EXPORT int name(int dirfd, const char *path, type *st, int flags)                          \
	{                                                                                          \
		if (is_node(path) || (empty_path(path) && (flags & AT_EMPTY_PATH) && is_dev_fd(dirfd))) { \
			FAKE_STAT(st);                                                             \
			return 0;                                                                  \
		}                                                                                  \
		NEXT(int (*)(int, const char *, type *, int), name);                               \
		return real_##name(dirfd, path, st, flags);                                        \
	}
FSTATAT_WRAPPER(fstatat, struct stat)
FSTATAT_WRAPPER(fstatat64, struct stat64)

/* The versioned entry points of programs built before glibc 2.33. */
EXPORT int __xstat(int ver, const char *path, struct stat *st);
EXPORT int __xstat64(int ver, const char *path, struct stat64 *st);
EXPORT int __lxstat(int ver, const char *path, struct stat *st);
EXPORT int __lxstat64(int ver, const char *path, struct stat64 *st);
EXPORT int __fxstat(int ver, int fd, struct stat *st);
EXPORT int __fxstat64(int ver, int fd, struct stat64 *st);
EXPORT int __fxstatat(int ver, int dirfd, const char *path, struct stat *st, int flags);
EXPORT int __fxstatat64(int ver, int dirfd, const char *path, struct stat64 *st, int flags);
#define XSTAT_WRAPPER(name, type)                                                                  \
	int name(int ver, const char *path, type *st)                                              \
	{                                                                                          \
		if (is_node(path)) {                                                               \
			FAKE_STAT(st);                                                             \
			return 0;                                                                  \
		}                                                                                  \
		NEXT(int (*)(int, const char *, type *), name);                                    \
		return real_##name(ver, path, st);                                                 \
	}
XSTAT_WRAPPER(__xstat, struct stat)
XSTAT_WRAPPER(__xstat64, struct stat64)
XSTAT_WRAPPER(__lxstat, struct stat)
XSTAT_WRAPPER(__lxstat64, struct stat64)
#define FXSTAT_WRAPPER(name, type)                                                                 \
	int name(int ver, int fd, type *st)                                                        \
	{                                                                                          \
		if (is_dev_fd(fd)) {                                                               \
			FAKE_STAT(st);                                                             \
			return 0;                                                                  \
		}                                                                                  \
		NEXT(int (*)(int, int, type *), name);                                             \
		return real_##name(ver, fd, st);                                                   \
	}
FXSTAT_WRAPPER(__fxstat, struct stat)
FXSTAT_WRAPPER(__fxstat64, struct stat64)
#define FXSTATAT_WRAPPER(name, type)                                                               \
	int name(int ver, int dirfd, const char *path, type *st, int flags)                        \
	{                                                                                          \
		if (is_node(path) || (empty_path(path) && (flags & AT_EMPTY_PATH) && is_dev_fd(dirfd))) { \
			FAKE_STAT(st);                                                             \
			return 0;                                                                  \
		}                                                                                  \
		NEXT(int (*)(int, int, const char *, type *, int), name);                          \
		return real_##name(ver, dirfd, path, st, flags);                                   \
	}
FXSTATAT_WRAPPER(__fxstatat, struct stat)
FXSTATAT_WRAPPER(__fxstatat64, struct stat64)

/* ---- readlink of /proc/self/fd/N ---- */

/* The descriptor /proc/self/fd/N or /proc/<our pid>/fd/N names, or -1. */
static int proc_fd(const char *path)
{
	if (!path)
		return -1;
	const char *p;
	char own[48];
	snprintf(own, sizeof(own), "/proc/%d/fd/", (int)getpid());
	if (!strncmp(path, "/proc/self/fd/", 14))
		p = path + 14;
	else if (!strncmp(path, own, strlen(own)))
		p = path + strlen(own);
	else
		return -1;
	char *end;
	long n = strtol(p, &end, 10);
	if (end == p || *end || n < 0 || n >= FD_MAX)
		return -1;
	return (int)n;
}

static ssize_t node_link(char *buf, size_t size)
{
	const char *n = node_path();
	size_t len = strlen(n);
	if (len > size)
		len = size;
	if (xe_user_copy((void *)n, (uint64_t)(uintptr_t)buf, len, true)) {
		errno = EFAULT; /* as readlink(2) */
		return -1;
	}
	return (ssize_t)len;
}

EXPORT ssize_t readlink(const char *path, char *buf, size_t size)
{
	int fd = proc_fd(path);
	if (fd >= 0 && is_dev_fd(fd))
		return node_link(buf, size);
	NEXT(ssize_t(*)(const char *, char *, size_t), readlink);
	return real_readlink(path, buf, size);
}

EXPORT ssize_t readlinkat(int dirfd, const char *path, char *buf, size_t size)
{
	int fd = proc_fd(path); /* absolute: dirfd does not count */
	if (fd >= 0 && is_dev_fd(fd))
		return node_link(buf, size);
	NEXT(ssize_t(*)(int, const char *, char *, size_t), readlinkat);
	return real_readlinkat(dirfd, path, buf, size);
}

/* ---- descriptors ---- */

EXPORT int close(int fd)
{
	struct dev *d = fd_forget(fd);
	NEXT(int (*)(int), close);
	int r = real_close(fd);
	if (d) {
		int e = errno;
		dev_put(d);
		errno = e;
	}
	return r;
}

EXPORT int dup(int fd)
{
	NEXT(int (*)(int), dup);
	int r = real_dup(fd);
	struct dev *d = r >= 0 ? dev_get(fd) : NULL;
	if (d) {
		fd_share(r, d);
		dev_put(d);
	}
	return r;
}

static int dup_to(int fd, int nfd, int flags, bool three)
{
	struct dev *d = fd != nfd ? dev_get(fd) : NULL;
	int r;
	if (three) {
		NEXT(int (*)(int, int, int), dup3);
		r = real_dup3(fd, nfd, flags);
	} else {
		NEXT(int (*)(int, int), dup2);
		r = real_dup2(fd, nfd);
	}
	if (r >= 0 && fd != nfd) {
		struct dev *old = fd_forget(nfd); /* dup2 closed what nfd named */
		if (old)
			dev_put(old);
		if (d)
			fd_share(r, d);
	}
	if (d)
		dev_put(d);
	return r;
}

EXPORT int dup2(int fd, int nfd)
{
	return dup_to(fd, nfd, 0, false);
}

EXPORT int dup3(int fd, int nfd, int flags)
{
	return dup_to(fd, nfd, flags, true);
}

static int fcntl_common(int fd, int cmd, void *arg, bool is64)
{
	int r;
	if (is64) {
		NEXT(int (*)(int, int, ...), fcntl64);
		r = real_fcntl64(fd, cmd, arg);
	} else {
		NEXT(int (*)(int, int, ...), fcntl);
		r = real_fcntl(fd, cmd, arg);
	}
	if (r >= 0 && (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC)) {
		struct dev *d = dev_get(fd);
		if (d) {
			fd_share(r, d);
			dev_put(d);
		}
	}
	return r;
}

EXPORT int fcntl(int fd, int cmd, ...)
{
	va_list ap;
	va_start(ap, cmd);
	void *arg = va_arg(ap, void *);
	va_end(ap);
	return fcntl_common(fd, cmd, arg, false);
}

EXPORT int fcntl64(int fd, int cmd, ...);
int fcntl64(int fd, int cmd, ...)
{
	va_list ap;
	va_start(ap, cmd);
	void *arg = va_arg(ap, void *);
	va_end(ap);
	return fcntl_common(fd, cmd, arg, true);
}

/* ---- ioctl ---- */

EXPORT int ioctl(int fd, unsigned long request, ...)
{
	va_list ap;
	va_start(ap, request);
	void *arg = va_arg(ap, void *);
	va_end(ap);
	/* Not a DRM ioctl: the file's own (the VFS's generic ones, FIOCLEX, FIONBIO, ..., work on
	 * a DRM node as on the memfd; the rest is the memfd's -ENOTTY) */
	struct dev *d = _IOC_TYPE(request) == DRM_IOCTL_BASE ? dev_get(fd) : NULL;
	if (!d) {
		NEXT(int (*)(int, unsigned long, ...), ioctl);
		return real_ioctl(fd, request, arg);
	}
	int r = xe_file_ioctl(d->f, request, arg);
	dev_put(d);
	if (r) {
		errno = -r;
		return -1;
	}
	return 0;
}

/* ---- mmap: a BO's CPU mapping ---- */

static void *dev_mmap(struct dev *d, void *addr, size_t len, int flags, off_t off)
{
	/* MAP_FIXED: the BO's pages are where vmbind keeps them; a private (copy-on-write) mapping
	 * TTM refuses (ttm_bo_mmap_obj) */
	if ((flags & MAP_FIXED) || !(flags & MAP_SHARED) || off < 0) {
		errno = EINVAL;
		return MAP_FAILED;
	}
	void *ptr;
	uint32_t handle;
	uint64_t size;
	int r = xe_file_mmap(d->f, (uint64_t)off, len, &ptr, &handle, &size);
	if (r) {
		errno = -r;
		return MAP_FAILED;
	}
	struct map *m = calloc(1, sizeof(*m));
	struct range *live = malloc(sizeof(*live));
	if (!m || !live) {
		free(m);
		free(live);
		xe_file_munmap(d->f, ptr);
		errno = ENOMEM;
		return MAP_FAILED;
	}
	long pg = sysconf(_SC_PAGESIZE);
	m->addr = ptr;
	m->extent = (uintptr_t)size;
	live->start = (uintptr_t)ptr;
	live->end = (uintptr_t)ptr + ((len + (size_t)pg - 1) & ~((size_t)pg - 1));
	m->live = live;
	m->nlive = 1;
	m->d = d;
	pthread_mutex_lock(&tab_lock);
	d->refs++; /* a mapping keeps the device open, as a DRM mmap keeps its file */
	m->next = maps;
	maps = m;
	pthread_mutex_unlock(&tab_lock);
	(void)addr;
	return ptr;
}

#define MMAP_WRAPPER(name)                                                                         \
	EXPORT void *name(void *addr, size_t len, int prot, int flags, int fd, off_t off)          \
	{                                                                                          \
		struct dev *d = fd >= 0 ? dev_get(fd) : NULL;                                      \
		if (d) {                                                                           \
			void *p = dev_mmap(d, addr, len, flags, off);                              \
			int e = errno;                                                             \
			dev_put(d);                                                                \
			errno = e;                                                                 \
			return p;                                                                  \
		}                                                                                  \
		NEXT(void *(*)(void *, size_t, int, int, int, off_t), name);                       \
		return real_##name(addr, len, prot, flags, fd, off);                               \
	}
MMAP_WRAPPER(mmap)
MMAP_WRAPPER(mmap64)

/* Takes [a, e) off @m's live ranges (tab_lock held). Returns -1 (no memory: nothing changed),
 * else whether it took any page. */
static int live_cut(struct map *m, uintptr_t a, uintptr_t e)
{
	struct range *n = malloc((m->nlive + 1) * sizeof(*n)); /* a cut splits at most one range */
	if (!n)
		return -1;
	unsigned k = 0;
	bool took = false;
	for (unsigned i = 0; i < m->nlive; i++) {
		struct range r = m->live[i];
		if (r.end <= a || r.start >= e) {
			n[k++] = r;
			continue;
		}
		took = true;
		if (r.start < a)
			n[k++] = (struct range){r.start, a};
		if (r.end > e)
			n[k++] = (struct range){e, r.end};
	}
	free(m->live);
	m->live = n;
	m->nlive = k;
	return took;
}

static int cmp_range(const void *x, const void *y)
{
	const struct range *a = x, *b = y;
	return a->start < b->start ? -1 : a->start > b->start;
}

EXPORT int munmap(void *addr, size_t len)
{
	NEXT(int (*)(void *, size_t), munmap);
	uintptr_t a = (uintptr_t)addr, pg = (uintptr_t)sysconf(_SC_PAGESIZE);
	if (!len || (a & (pg - 1)) || len > UINTPTR_MAX - a - (pg - 1))
		return real_munmap(addr, len); /* -EINVAL, as the kernel */
	uintptr_t e = a + ((len + pg - 1) & ~(pg - 1));
	/* Under the lock: the BO extents [a, e) meets (kept from the real munmap), and the pages
	 * taken off the live ranges of the mappings there, one mapping per BO (every map of a BO
	 * has the same address: each call unmaps one of them); mappings left with no page leave
	 * the list, to be dropped after. */
	struct map *gone = NULL;
	struct range *keep = NULL;
	unsigned nkeep = 0, cap = 0;
	bool nomem = false;
	pthread_mutex_lock(&tab_lock);
	unsigned long stamp = ++munmap_calls;
	for (struct map **p = &maps; *p;) {
		struct map *m = *p;
		uintptr_t ms = (uintptr_t)m->addr, me = ms + m->extent;
		if (me <= a || ms >= e) {
			p = &m->next;
			continue;
		}
		if (nkeep == cap) {
			cap = cap ? 2 * cap : 8;
			struct range *k = realloc(keep, cap * sizeof(*k));
			if (!k) {
				nomem = true;
				break;
			}
			keep = k;
		}
		keep[nkeep++] = (struct range){ms > a ? ms : a, me < e ? me : e};
		bool twin = false; /* another map of this BO already gave up pages in this call */
		for (struct map *o = maps; o && !twin; o = o->next)
			twin = o != m && o->addr == m->addr && o->stamp == stamp;
		for (struct map *o = gone; o && !twin; o = o->next)
			twin = o->addr == m->addr;
		int took = twin ? 0 : live_cut(m, a, e);
		if (took < 0) {
			nomem = true;
			break;
		}
		if (took)
			m->stamp = stamp;
		if (took && !m->nlive) {
			*p = m->next;
			m->next = gone;
			gone = m;
			continue;
		}
		p = &m->next;
	}
	pthread_mutex_unlock(&tab_lock);
	bool child = false;
	while (gone) {
		struct map *m = gone;
		gone = m->next;
		if (xe_file_munmap(m->d->f, m->addr) == -ENODEV)
			child = true; /* a child after fork(): its own copy of the pages */
		dev_put(m->d);
		free(m->live);
		free(m);
	}
	if (nomem) {
		free(keep);
		errno = ENOMEM;
		return -1;
	}
	if (!nkeep || child) {
		free(keep);
		return real_munmap(addr, len);
	}
	/* the rest of [a, e), outside every BO's extent, is the real munmap's */
	qsort(keep, nkeep, sizeof(*keep), cmp_range);
	uintptr_t at = a;
	int r = 0;
	for (unsigned i = 0; i <= nkeep && !r; i++) {
		uintptr_t upto = i < nkeep ? keep[i].start : e;
		if (upto > at)
			r = real_munmap((void *)at, upto - at);
		if (i < nkeep && keep[i].end > at)
			at = keep[i].end;
	}
	free(keep);
	return r;
}
