/* SPDX-License-Identifier: MIT */
/*
 * libvmbind-xe.so as a preload (run with LD_PRELOAD set to it, tests/meson.build): the node's
 * open, stat, fstat, readlink of /proc/self/fd/N, dup and close sharing one device, mmap of a
 * GEM_MMAP_OFFSET cookie and munmap, a mapping that outlives its BO's handle and its descriptor,
 * ENODEV in a child after fork(), and paths and descriptors that are not the node passing
 * through. Uses no vmbind call: everything goes through libc, as IGT does.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <drm/drm.h>
#include <drm/xe_drm.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#define NODE "/dev/dri/card0"

static int version_ok(int fd)
{
	char name[8] = {0};
	struct drm_version v = {.name_len = sizeof(name) - 1, .name = name};
	return ioctl(fd, DRM_IOCTL_VERSION, &v) == 0 && strcmp(name, "xe") == 0;
}

static void test_open_stat_readlink(void **state)
{
	(void)state;
	struct stat st;
	assert_int_equal(stat(NODE, &st), 0);
	assert_true(S_ISCHR(st.st_mode));
	assert_int_equal(major(st.st_rdev), 226);
	assert_int_equal(minor(st.st_rdev), 0);
	assert_int_equal(stat("/dev/dri/card1", &st), -1); /* not the node: the real answer */
	int fd = open(NODE, O_RDWR | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	assert_true(S_ISCHR(st.st_mode));
	assert_int_equal(st.st_rdev, makedev(226, 0));
	char path[64], link[64] = {0};
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	assert_int_equal(readlink(path, link, sizeof(link) - 1), (ssize_t)strlen(NODE));
	assert_string_equal(link, NODE);
	assert_true(version_ok(fd));
	assert_int_equal(close(fd), 0);
	assert_int_equal(fstat(fd, &st), -1); /* closed */
	assert_int_equal(errno, EBADF);
}

static void test_dup_close(void **state)
{
	(void)state;
	int fd = open(NODE, O_RDWR);
	assert_true(fd >= 0);
	struct drm_xe_vm_create c = {0};
	assert_int_equal(ioctl(fd, DRM_IOCTL_XE_VM_CREATE, &c), 0);
	int d1 = dup(fd);
	int d2 = fcntl(fd, F_DUPFD_CLOEXEC, 100);
	assert_true(d1 >= 0 && d2 >= 100);
	assert_int_equal(close(fd), 0);
	/* the duplicates name the same device: the vm is still there */
	struct drm_xe_vm_destroy d = {.vm_id = c.vm_id};
	assert_int_equal(ioctl(d1, DRM_IOCTL_XE_VM_DESTROY, &d), 0);
	assert_int_equal(ioctl(d2, DRM_IOCTL_XE_VM_DESTROY, &d), -1);
	assert_int_equal(errno, ENOENT);
	/* dup2 over a device descriptor drops it; the target then names the new file */
	int pipefd[2];
	assert_int_equal(pipe(pipefd), 0);
	assert_int_equal(dup2(pipefd[0], d1), d1);
	struct drm_version v = {0};
	assert_int_equal(ioctl(d1, DRM_IOCTL_VERSION, &v), -1); /* a pipe now */
	assert_int_equal(errno, ENOTTY);
	assert_true(version_ok(d2));
	close(pipefd[0]);
	close(pipefd[1]);
	close(d1);
	close(d2);
}

static void test_mmap(void **state)
{
	(void)state;
	int fd = open(NODE, O_RDWR);
	assert_true(fd >= 0);
	struct drm_xe_gem_create g = {.size = 8192, .placement = 1, .cpu_caching = DRM_XE_GEM_CPU_CACHING_WB};
	assert_int_equal(ioctl(fd, DRM_IOCTL_XE_GEM_CREATE, &g), 0);
	struct drm_xe_gem_mmap_offset m = {.handle = g.handle};
	assert_int_equal(ioctl(fd, DRM_IOCTL_XE_GEM_MMAP_OFFSET, &m), 0);
	uint32_t *p = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)m.offset);
	assert_true(p != MAP_FAILED);
	p[0] = 0xc0ffee;
	p[2047] = 7;
	/* a second map of the same BO shows the same memory */
	uint32_t *q = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, (off_t)m.offset);
	assert_true(q != MAP_FAILED);
	assert_int_equal(q[0], 0xc0ffee);
	assert_int_equal(munmap(q, 4096), 0);
	/* an offset that is no cookie, and a length past the BO */
	assert_true(mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, (off_t)m.offset + 4096) == MAP_FAILED);
	assert_int_equal(errno, EINVAL);
	assert_true(mmap(NULL, 3 * 4096, PROT_READ, MAP_SHARED, fd, (off_t)m.offset) == MAP_FAILED);
	/* the mapping outlives GEM_CLOSE and close(), as a DRM mapping does */
	struct drm_gem_close cl = {.handle = g.handle};
	assert_int_equal(ioctl(fd, DRM_IOCTL_GEM_CLOSE, &cl), 0);
	assert_int_equal(close(fd), 0);
	assert_int_equal(p[0], 0xc0ffee);
	assert_int_equal(p[2047], 7);
	p[1] = 1;
	assert_int_equal(munmap(p, 8192), 0);
	/* anonymous mappings pass through */
	void *a = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(a != MAP_FAILED);
	assert_int_equal(munmap(a, 4096), 0);
}

/* munmap of part of a BO's mapping, as a DRM mapping takes it: the pages left stay mapped and
 * keep the BO alive, and the BO itself is untouched (a later mapping sees all of it). The shim's
 * mapping is the BO's own memory, so the real munmap must never see it. */
static void test_munmap_partial(void **state)
{
	(void)state;
	const size_t pg = 4096;
	int fd = open(NODE, O_RDWR);
	assert_true(fd >= 0);
	struct drm_xe_gem_create g = {.size = 4 * pg, .placement = 1, .cpu_caching = DRM_XE_GEM_CPU_CACHING_WB};
	assert_int_equal(ioctl(fd, DRM_IOCTL_XE_GEM_CREATE, &g), 0);
	struct drm_xe_gem_mmap_offset m = {.handle = g.handle};
	assert_int_equal(ioctl(fd, DRM_IOCTL_XE_GEM_MMAP_OFFSET, &m), 0);
	/* MAP_PRIVATE of a BO: TTM refuses a copy-on-write mapping (-EINVAL) */
	assert_true(mmap(NULL, pg, PROT_READ, MAP_PRIVATE, fd, (off_t)m.offset) == MAP_FAILED);
	assert_int_equal(errno, EINVAL);
	char *p = mmap(NULL, 4 * pg, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)m.offset);
	assert_true(p != MAP_FAILED);
	for (int i = 0; i < 4; i++)
		p[i * pg] = (char)(i + 1);
	/* a hole in the middle: the BO keeps that page */
	assert_int_equal(munmap(p + pg, pg), 0);
	char *q = mmap(NULL, 4 * pg, PROT_READ, MAP_SHARED, fd, (off_t)m.offset);
	assert_true(q != MAP_FAILED);
	for (int i = 0; i < 4; i++)
		assert_int_equal(q[i * pg], i + 1);
	assert_int_equal(munmap(q, 4 * pg), 0);
	/* the first half of the first mapping goes; the second half keeps the BO after GEM_CLOSE */
	assert_int_equal(munmap(p, 2 * pg), 0);
	struct drm_gem_close cl = {.handle = g.handle};
	assert_int_equal(ioctl(fd, DRM_IOCTL_GEM_CLOSE, &cl), 0);
	assert_int_equal(close(fd), 0);
	assert_int_equal(p[2 * pg], 3);
	assert_int_equal(p[3 * pg], 4);
	p[3 * pg] = 9;
	/* a length that wraps the address space is the kernel's -EINVAL, and changes nothing */
	assert_int_equal(munmap(p + 2 * pg, SIZE_MAX), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(p[3 * pg], 9);
	assert_int_equal(munmap(p + 2 * pg, 2 * pg), 0);
	/* anonymous memory next to nothing of the shim's still passes through */
	char *a = mmap(NULL, 2 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(a != MAP_FAILED);
	assert_int_equal(munmap(a + pg, pg), 0);
	a[0] = 1;
	assert_int_equal(munmap(a, pg), 0);
}

/* An ioctl that is not DRM's on a device descriptor is the file's, as the VFS's generic ones
 * (FIOCLEX, FIONBIO) are on a real DRM node: they work. */
static void test_generic_ioctls(void **state)
{
	(void)state;
	int fd = open(NODE, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(ioctl(fd, FIOCLEX), 0);
	assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	assert_int_equal(ioctl(fd, FIONCLEX), 0);
	assert_false(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	int one = 1;
	assert_int_equal(ioctl(fd, FIONBIO, &one), 0);
	assert_true(fcntl(fd, F_GETFL) & O_NONBLOCK);
	assert_true(version_ok(fd));
	close(fd);
}

static void test_fork(void **state)
{
	(void)state;
	int fd = open(NODE, O_RDWR);
	assert_true(fd >= 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct drm_version v = {0};
		int r = ioctl(fd, DRM_IOCTL_VERSION, &v);
		_exit(r == -1 && errno == ENODEV ? 0 : 1);
	}
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_true(version_ok(fd));
	close(fd);
}


static atomic_bool churn_stop;

static void *churn(void *arg)
{
	(void)arg;
	while (!atomic_load(&churn_stop)) {
		int fd = open(NODE, O_RDWR);
		if (fd >= 0)
			close(fd);
	}
	return NULL;
}

/* A fork while another thread opens and closes device files: the child's close of an inherited
 * descriptor never finds the shim's locks held by a thread it does not have (it hung before the
 * atfork handlers; an alarm ends a hung child, which fails the test). */
static void test_fork_during_churn(void **state)
{
	(void)state;
	int fd = open(NODE, O_RDWR);
	assert_true(fd >= 0);
	atomic_store(&churn_stop, false);
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, churn, NULL), 0);
	int hung = 0;
	for (int i = 0; i < 200; i++) {
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			alarm(10);
			close(fd);
			int f2 = open(NODE, O_RDWR); /* the child's own device file: a new client */
			if (f2 >= 0)
				close(f2);
			_exit(0);
		}
		int status;
		assert_int_equal(waitpid(pid, &status, 0), pid);
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			hung++;
	}
	atomic_store(&churn_stop, true);
	pthread_join(t, NULL);
	close(fd);
	assert_int_equal(hung, 0);
}

/* A buffer that is not mapped: the system call's -1 with EFAULT, not SIGSEGV in the shim. */
static void test_bad_buffers_efault(void **state)
{
	(void)state;
	void *bad = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(bad != MAP_FAILED);
	errno = 0;
	assert_int_equal(stat(NODE, bad), -1);
	assert_int_equal(errno, EFAULT);
	int fd = open(NODE, O_RDWR);
	assert_true(fd >= 0);
	errno = 0;
	assert_int_equal(fstat(fd, bad), -1);
	assert_int_equal(errno, EFAULT);
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	errno = 0;
	assert_int_equal(readlink(path, bad, 16), -1);
	assert_int_equal(errno, EFAULT);
	/* an ioctl's array, through libc's ioctl() */
	struct drm_version v = {.name_len = 8, .name = bad};
	errno = 0;
	assert_int_equal(ioctl(fd, DRM_IOCTL_VERSION, &v), -1);
	assert_int_equal(errno, EFAULT);
	struct drm_syncobj_array a = {.handles = (uintptr_t)bad, .count_handles = 1};
	errno = 0;
	assert_int_equal(ioctl(fd, DRM_IOCTL_SYNCOBJ_SIGNAL, &a), -1);
	assert_int_equal(errno, EFAULT);
	/* the ioctl's own struct */
	errno = 0;
	assert_int_equal(ioctl(fd, DRM_IOCTL_XE_VM_CREATE, bad), -1);
	assert_int_equal(errno, EFAULT);
	assert_int_equal(close(fd), 0);
	munmap(bad, 4096);
}

int main(void)
{
	if (!getenv("LD_PRELOAD") || !strstr(getenv("LD_PRELOAD"), "libvmbind-xe")) {
		fprintf(stderr, "run with LD_PRELOAD=libvmbind-xe.so\n");
		return 77;
	}
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_open_stat_readlink),
		cmocka_unit_test(test_dup_close),
		cmocka_unit_test(test_mmap),
		cmocka_unit_test(test_munmap_partial),
		cmocka_unit_test(test_generic_ioctls),
		cmocka_unit_test(test_fork),
		cmocka_unit_test(test_fork_during_churn),
		cmocka_unit_test(test_bad_buffers_efault),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
