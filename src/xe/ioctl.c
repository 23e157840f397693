/* SPDX-License-Identifier: MIT */
/*
 * The Xe-uAPI shim's device: one opened fake Xe device (struct xe_file) and the translation of
 * each DRM and Xe ioctl into vmbind's public API (docs/XE.md has the table).
 *
 * Owns: the file's vmbind client; the Xe exec-queue id space (Xe numbers exec queues and bind
 * queues in one space, vmbind in two: the shim keeps the map, queues[id - 1]); the per-BO facts
 * Xe has and vmbind does not (bos[handle]: the BO object's generation, the identity its
 * GEM_MMAP_OFFSET cookie carries; the vm a BO is private to is vmbind's, vmb_bo_create's vm_id);
 * the vms made in LR mode (vm_lr[vm_id], for VM_DESTROY's -EBUSY).
 * Invariants: a queues[] entry is live (kind != 0) from its create until its destroy; bos[h]
 * is set by GEM_CREATE (with a new generation) and cleared by GEM_CLOSE of h if it still has
 * that generation (a GEM_CREATE that took h back after the destroy keeps its entry); vm_lr[v]
 * is set by VM_CREATE of v (1 for LR mode, else 0); a queues[] entry's vm_id is its vm's, or 0
 * once that vm is destroyed (never a later vm's under the same id). Every ioctl works
 * on a private copy of the caller's struct (and of its arrays): vmbind never sees memory the
 * caller may still change.
 * files_lock (process-wide) guards the list of open files (mmap of a cookie that is not the
 * file's asks the others whose it is); it is taken before an f->lock, never inside one.
 * Lock: f->lock guards queues, nqueues, bos, nbo, vm_lr, nvm; it is held only to read or write
 * those tables, never across a vmbind call. f->vm_life (a rwlock, taken before f->lock):
 * VM_DESTROY exclusive, EXEC_QUEUE_CREATE shared, each across its vmbind call and its table
 * update (both calls bounded: no wait for a fence under it), so that a queue is in the table
 * before its vm's destroy marks the vm's queues, or its create finds no vm. The shim's other
 * translations of a vm or queue id (VM_BIND, EXEC_QUEUE_DESTROY of a bind queue) hold no lock:
 * vmbind decides them where it looks the objects up (a bind queue's serial, a BO's vm).
 */
#include "xe/shim.h"

#include <drm/drm.h>
#include <drm/xe_drm.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#include <vmbind.h>

enum { Q_FREE = 0, Q_EXEC, Q_BIND };

struct xe_queue {
	uint32_t kind;   /* Q_* */
	uint32_t vm_id;  /* the vm it runs on (Q_EXEC) or binds (Q_BIND); 0 once that vm is gone */
	uint32_t id;     /* vmbind's exec-queue id, or bind-queue id within vm_id */
	uint64_t serial; /* vmbind's serial of the queue (queue.h), passed with each call that
			  * names it, so that vmbind refuses another queue under its id: a new vm's
			  * bind queue under (vm_id, id), a new exec queue that took a freed id */
};

/* What Xe knows of a BO and vmbind does not (the vm a BO is private to is vmbind's: its
 * vmb_bo_create's vm_id, checked where a bind looks the BO up). */
struct xe_bo {
	uint32_t gen; /* this BO object's generation (bo_gen_next), 0: no BO */
};

struct xe_file {
	struct vmb_client *client; /* set at open, read-only after */
	struct xe_file *next_open; /* files_lock */
	pid_t pid;                 /* the process that opened it; other processes get -ENODEV */
	pthread_mutex_t lock;
	struct xe_queue *queues; /* lock */
	uint32_t nqueues;        /* lock */
	struct xe_bo *bos;       /* lock: [handle] */
	uint32_t nbo;            /* lock */
	uint8_t *vm_lr;          /* lock */
	uint32_t nvm;            /* lock */
	/* VM_DESTROY holds it exclusive across its LR check, the marking of the vm's queues and
	 * vmbind's destroy; EXEC_QUEUE_CREATE shared across vmbind's create of the queue and its
	 * entry in `queues`: a queue made for a vm is marked by that vm's destroy (or its create
	 * fails), never left naming a later vm under the same id (the bounded vmbind calls only:
	 * no wait for a fence under it). Taken before `lock`. */
	pthread_rwlock_t vm_life;
};

#define GIB (1024ull * 1024 * 1024)
/*
 * A GEM_MMAP_OFFSET cookie is handle << MMAP_SHIFT | gen << 12 (a handle below 2^HANDLE_BITS, a
 * generation of GEN_BITS bits; bit 63 clear: a valid off_t): page aligned, and naming one BO
 * object, as the kernel's fake offsets (drm_vma_offset_manager) do. The generation is drawn for
 * each GEM_CREATE from a process-wide counter and never handed out twice, so a cookie outlives
 * its BO without ever reaching the BO that takes its handle next (drm_gem_mmap: no object at
 * that offset, -EINVAL), and another open file's cookie is told apart (DRM's offsets are
 * device-wide: -EACCES). The counter does not wrap (it did after 2^20 BOs, when a stale cookie
 * could name a new BO again): after GEN_SPENT - 1 generations (2^27 - 2, 134 million BOs made
 * in the process) it is spent, and a later BO gets GEN_SPENT, which is no cookie: its
 * GEM_MMAP_OFFSET is -ENOSPC, as the kernel's when its fake-offset space is full
 * (drm_vma_offset_add). (GEM_CLOSE's generation checks cannot tell two such BOs apart; they
 * matter only to cookies, which neither has.) A handle at or above 2^HANDLE_BITS has no cookie
 * either (-ENOSPC; unreachable: every vmbind BO is a host mapping, and a process has far fewer,
 * docs/UAPI.md "Known limits").
 */
#define MMAP_SHIFT 39
#define HANDLE_BITS 24
#define GEN_BITS 27
#define GEN_SPENT ((1u << GEN_BITS) - 1)

static _Atomic uint64_t bo_gens; /* generations drawn so far (atomic) */

/* A new BO generation: from 1, never 0, GEN_SPENT once they are spent. */
static uint32_t bo_gen_next(void)
{
	uint64_t g = atomic_fetch_add(&bo_gens, 1) + 1;
	return g < GEN_SPENT ? (uint32_t)g : GEN_SPENT;
}

void xe_shim_test_gens_skip(uint64_t n)
{
	uint64_t g = atomic_load(&bo_gens);
	while (!atomic_compare_exchange_weak(&bo_gens, &g, g + n < g ? UINT64_MAX / 2 : g + n))
		;
}

/* The files open in this process, for the owner of a cookie that is not the caller's. */
static pthread_mutex_t files_lock = PTHREAD_MUTEX_INITIALIZER;

/* fork(): files_lock is taken around it, so a child never inherits it held by another thread
 * (its close() of an inherited descriptor takes it). */
static void files_fork_prepare(void) { pthread_mutex_lock(&files_lock); }
static void files_fork_done(void) { pthread_mutex_unlock(&files_lock); }
__attribute__((constructor)) static void files_fork_init(void)
{
	pthread_atfork(files_fork_prepare, files_fork_done, files_fork_done);
}
static struct xe_file *files;  /* files_lock */

int xe_file_open(struct xe_file **out)
{
	struct xe_file *f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	struct vmb_client_opts o = {
		.vram_size = getenv("VMB_SOFT_VRAM") ? 0 : 4 * GIB,
		.system_size = getenv("VMB_SOFT_SYSTEM") ? 0 : 4 * GIB,
		.min_page_size = VMB_PAGE_4K,
	};
	int r = vmb_client_open("soft", &o, &f->client);
	if (r) {
		free(f);
		return r;
	}
	f->pid = getpid();
	pthread_mutex_init(&f->lock, NULL);
	pthread_rwlock_init(&f->vm_life, NULL);
	pthread_mutex_lock(&files_lock);
	f->next_open = files;
	files = f;
	pthread_mutex_unlock(&files_lock);
	*out = f;
	return 0;
}

void xe_file_close(struct xe_file *f)
{
	if (!f)
		return;
	pthread_mutex_lock(&files_lock);
	for (struct xe_file **p = &files; *p; p = &(*p)->next_open)
		if (*p == f) {
			*p = f->next_open;
			break;
		}
	pthread_mutex_unlock(&files_lock);
	vmb_client_close(f->client);
	pthread_mutex_destroy(&f->lock);
	pthread_rwlock_destroy(&f->vm_life);
	free(f->queues);
	free(f->bos);
	free(f->vm_lr);
	free(f);
}

/* ---- copying the caller's struct, as drm_ioctl() does ---- */

static int user_copy(pid_t self, void *local, uint64_t uptr, size_t n, bool to_user);

/* @kcmd: the ioctl as the kernel defines it; @ucmd: as the caller passed it. In only when both
 * say IN, out only when both say OUT; min of the caller's size and the shim's struct. A struct
 * at an address that is not mapped (or not writable, out) is -EFAULT, as drm_ioctl()'s copies;
 * out is done after the call, so a failed copy out leaves the call done, as there. */
static int copy_in(pid_t self, void *dst, size_t size, unsigned long kcmd, unsigned long ucmd,
		   const void *arg)
{
	size_t n = _IOC_SIZE(ucmd);
	memset(dst, 0, size);
	if (!(_IOC_DIR(kcmd) & _IOC_DIR(ucmd) & _IOC_WRITE) || !n)
		return 0;
	if (!arg)
		return -EFAULT;
	return user_copy(self, dst, (uint64_t)(uintptr_t)arg, n < size ? n : size, false);
}

static int copy_out(pid_t self, const void *src, size_t size, unsigned long kcmd, unsigned long ucmd,
		    void *arg)
{
	size_t n = _IOC_SIZE(ucmd);
	if (!(_IOC_DIR(kcmd) & _IOC_DIR(ucmd) & _IOC_READ) || !n)
		return 0;
	if (!arg)
		return -EFAULT;
	return user_copy(self, (void *)src, (uint64_t)(uintptr_t)arg, n < size ? n : size, true);
}

#define IN(kcmd, s) copy_in(f->pid, &(s), sizeof(s), (kcmd), ucmd, arg)

/*
 * The caller's memory that an ioctl's struct points to (arrays, extension chains, a query's
 * buffer, DRM_IOCTL_VERSION's strings), as the kernel's copy_from_user/copy_to_user reach it:
 * a part that is not mapped, or not readable (writable) as the copy needs, is -EFAULT instead of
 * the process's SIGSEGV. process_vm_readv/writev on the process itself do the copy and fail
 * with EFAULT there (they copy up to the first bad page: a short count is -EFAULT too); the
 * caller's memory is then only read once, into the shim's private copy. Memory on the calling
 * thread's stack above this call's frame cannot fault: a plain memcpy copies it, with no system
 * call (on_own_stack). Where the system refuses the calls (ENOSYS, EPERM: a seccomp filter), a
 * plain memcpy does the copy, as before.
 * The ioctl's struct itself goes through the same copy (copy_in, copy_out).
 */

/* The calling thread's stack, [stack_lo, stack_hi) (both 0 until known, or if it cannot be). */
static __thread uintptr_t stack_lo, stack_hi;
static __thread bool stack_known;

/*
 * Whether [@uptr, @uptr + @n) lies between this call's frame and the top of the calling thread's
 * stack: memory that is mapped and writable while the call runs (the callers' live frames), so
 * a plain copy cannot fault. IGT's syncs and syncobj handles are mostly there (locals): the
 * copy then costs no system call. A frame that is not on the thread's stack (a coroutine's, or
 * ASan's fake stack) answers false.
 */
static bool on_own_stack(uint64_t uptr, size_t n)
{
	uintptr_t sp = (uintptr_t)__builtin_frame_address(0);
	if (!stack_known) {
		stack_known = true;
		pthread_attr_t a;
		void *addr;
		size_t size;
		if (!pthread_getattr_np(pthread_self(), &a)) {
			if (!pthread_attr_getstack(&a, &addr, &size)) {
				stack_lo = (uintptr_t)addr;
				stack_hi = stack_lo + size;
			}
			pthread_attr_destroy(&a);
		}
	}
	return sp >= stack_lo && sp < stack_hi && uptr >= sp && uptr < stack_hi && n <= stack_hi - uptr;
}

/* Copies up to @n bytes; returns how many (fewer: the rest is not mapped), or a negative errno. */
static ssize_t user_copy_upto(pid_t self, void *local, uint64_t uptr, size_t n, bool to_user)
{
	if (!n || !uptr)
		return 0;
	if (on_own_stack(uptr, n)) {
		if (to_user)
			memcpy((void *)(uintptr_t)uptr, local, n);
		else
			memcpy(local, (const void *)(uintptr_t)uptr, n);
		return (ssize_t)n;
	}
	struct iovec l = {.iov_base = local, .iov_len = n};
	struct iovec u = {.iov_base = (void *)(uintptr_t)uptr, .iov_len = n};
	ssize_t r = to_user ? process_vm_writev(self, &l, 1, &u, 1, 0)
			    : process_vm_readv(self, &l, 1, &u, 1, 0);
	if (r >= 0)
		return r;
	if (errno == EFAULT)
		return 0;
	if (errno != ENOSYS && errno != EPERM)
		return -errno;
	if (to_user)
		memcpy(u.iov_base, local, n);
	else
		memcpy(local, u.iov_base, n);
	return (ssize_t)n;
}

static int user_copy(pid_t self, void *local, uint64_t uptr, size_t n, bool to_user)
{
	ssize_t r = user_copy_upto(self, local, uptr, n, to_user);
	return r < 0 ? (int)r : (size_t)r == n ? 0 : -EFAULT;
}

int xe_user_copy(void *local, uint64_t uptr, size_t n, bool to_user)
{
	return user_copy(getpid(), local, uptr, n, to_user);
}

static int user_read(const struct xe_file *f, void *dst, uint64_t uptr, size_t n)
{
	return user_copy(f->pid, dst, uptr, n, false);
}

static int user_write(const struct xe_file *f, uint64_t uptr, const void *src, size_t n)
{
	return user_copy(f->pid, (void *)src, uptr, n, true);
}
#define OUT(kcmd, s) copy_out(f->pid, &(s), sizeof(s), (kcmd), ucmd, arg)

static bool nonzero(const void *p, size_t n)
{
	const unsigned char *b = p;
	for (size_t i = 0; i < n; i++)
		if (b[i])
			return true;
	return false;
}
#define NZ(x) nonzero(&(x), sizeof(x))

/* ---- the shim's tables ---- */

static int queue_get(struct xe_file *f, uint32_t xe_id, struct xe_queue *q)
{
	int r = -ENOENT;
	pthread_mutex_lock(&f->lock);
	if (xe_id && xe_id <= f->nqueues && f->queues[xe_id - 1].kind != Q_FREE) {
		*q = f->queues[xe_id - 1];
		r = 0;
	}
	pthread_mutex_unlock(&f->lock);
	return r;
}

/* A new Xe id for @q: the lowest free one. Returns the id, or 0 (no memory). f->vm_life held
 * shared since vmbind's queue was made (its vm is still the one it was made for). */
static uint32_t queue_add(struct xe_file *f, const struct xe_queue *q)
{
	uint32_t id = 0;
	pthread_mutex_lock(&f->lock);
	for (uint32_t i = 0; i < f->nqueues; i++)
		if (f->queues[i].kind == Q_FREE) {
			id = i + 1;
			break;
		}
	if (!id) {
		uint32_t n = f->nqueues ? f->nqueues * 2 : 16;
		struct xe_queue *nq = realloc(f->queues, n * sizeof(*nq));
		if (nq) {
			memset(nq + f->nqueues, 0, (n - f->nqueues) * sizeof(*nq));
			id = f->nqueues + 1;
			f->queues = nq;
			f->nqueues = n;
		}
	}
	if (id)
		f->queues[id - 1] = *q;
	pthread_mutex_unlock(&f->lock);
	return id;
}

/* Takes Xe id @xe_id out of the table (its queue into *@q), as the kernel's xa_erase() in
 * EXEC_QUEUE_DESTROY: of two destroys of one id, only one finds it (the other: -ENOENT), and no
 * VM_DESTROY between the lookup and the removal can leave the id behind. 0 or -ENOENT. */
static int queue_take(struct xe_file *f, uint32_t xe_id, struct xe_queue *q)
{
	int r = -ENOENT;
	pthread_mutex_lock(&f->lock);
	if (xe_id && xe_id <= f->nqueues && f->queues[xe_id - 1].kind != Q_FREE) {
		*q = f->queues[xe_id - 1];
		f->queues[xe_id - 1].kind = Q_FREE;
		r = 0;
	}
	pthread_mutex_unlock(&f->lock);
	return r;
}

/* Records BO @handle with a new generation. */
static int bo_set(struct xe_file *f, uint32_t handle)
{
	int r = 0;
	uint32_t gen = bo_gen_next();
	pthread_mutex_lock(&f->lock);
	if (handle >= f->nbo) {
		uint32_t n = f->nbo ? f->nbo : 64;
		while (n <= handle)
			n *= 2;
		struct xe_bo *nb = realloc(f->bos, n * sizeof(*nb));
		if (nb) {
			memset(nb + f->nbo, 0, (n - f->nbo) * sizeof(*nb));
			f->bos = nb;
			f->nbo = n;
		} else {
			r = -ENOMEM;
		}
	}
	if (!r)
		f->bos[handle] = (struct xe_bo){.gen = gen};
	pthread_mutex_unlock(&f->lock);
	return r;
}

/* Records whether vm @vm_id is in LR mode. */
static int vm_lr_set(struct xe_file *f, uint32_t vm_id, bool lr)
{
	int r = 0;
	pthread_mutex_lock(&f->lock);
	if (vm_id >= f->nvm) {
		uint32_t n = f->nvm ? f->nvm : 64;
		while (n <= vm_id)
			n *= 2;
		uint8_t *nv = realloc(f->vm_lr, n);
		if (nv) {
			memset(nv + f->nvm, 0, n - f->nvm);
			f->vm_lr = nv;
			f->nvm = n;
		} else {
			r = -ENOMEM;
		}
	}
	if (!r)
		f->vm_lr[vm_id] = lr;
	pthread_mutex_unlock(&f->lock);
	return r;
}

/* Whether vm @vm_id is an LR vm with an exec queue (Xe's preempt.num_exec_queues). */
static bool vm_lr_busy(struct xe_file *f, uint32_t vm_id)
{
	bool busy = false;
	pthread_mutex_lock(&f->lock);
	if (vm_id < f->nvm && f->vm_lr[vm_id])
		for (uint32_t i = 0; i < f->nqueues && !busy; i++)
			busy = f->queues[i].kind == Q_EXEC && f->queues[i].vm_id == vm_id;
	pthread_mutex_unlock(&f->lock);
	return busy;
}

/* Forgets BO @handle if it is still the BO of generation @gen. */
static void bo_clear(struct xe_file *f, uint32_t handle, uint32_t gen)
{
	pthread_mutex_lock(&f->lock);
	if (handle < f->nbo && f->bos[handle].gen == gen)
		f->bos[handle] = (struct xe_bo){0};
	pthread_mutex_unlock(&f->lock);
}

/* Sets BO @handle's generation to @to if it is @from; whether it did. */
static bool bo_gen_swap(struct xe_file *f, uint32_t handle, uint32_t from, uint32_t to)
{
	bool done = false;
	pthread_mutex_lock(&f->lock);
	if (handle < f->nbo && f->bos[handle].gen == from) {
		f->bos[handle].gen = to;
		done = true;
	}
	pthread_mutex_unlock(&f->lock);
	return done;
}

/* What the shim knows of BO @handle (zeros: nothing). */
static struct xe_bo bo_get(struct xe_file *f, uint32_t handle)
{
	struct xe_bo b = {0};
	pthread_mutex_lock(&f->lock);
	if (handle < f->nbo)
		b = f->bos[handle];
	pthread_mutex_unlock(&f->lock);
	return b;
}

/* ---- DRM core ---- */

/* drm_copy_field(): the length is the string's; at most *@len bytes of it go to @buf. */
static int put_string(const struct xe_file *f, const char *s, __kernel_size_t *len, char *buf)
{
	size_t n = strlen(s), room = *len;
	*len = n;
	if (!buf || !room)
		return 0;
	return user_write(f, (uint64_t)(uintptr_t)buf, s, room < n ? room : n);
}

static int drm_version(struct xe_file *f, unsigned long ucmd, void *arg)
{
	struct drm_version v;
	int r = IN(DRM_IOCTL_VERSION, v);
	if (r)
		return r;
	v.version_major = 1;
	v.version_minor = 0;
	v.version_patchlevel = 0;
	r = put_string(f, "xe", &v.name_len, v.name);
	if (!r)
		r = put_string(f, "0", &v.date_len, v.date);
	if (!r)
		r = put_string(f, "vmbind soft device (libvmbind-xe)", &v.desc_len, v.desc);
	if (r)
		return r;
	return OUT(DRM_IOCTL_VERSION, v);
}

static int drm_get_cap(struct xe_file *f, unsigned long ucmd, void *arg)
{
	struct drm_get_cap c;
	int r = IN(DRM_IOCTL_GET_CAP, c);
	if (r)
		return r;
	if (c.capability == DRM_CAP_SYNCOBJ)
		c.value = 1;
	else if (c.capability == DRM_CAP_SYNCOBJ_TIMELINE)
		c.value = 0;
	else
		return -EINVAL;
	return OUT(DRM_IOCTL_GET_CAP, c);
}

static int drm_gem_close(struct xe_file *f, unsigned long ucmd, void *arg)
{
	struct drm_gem_close c;
	int r = IN(DRM_IOCTL_GEM_CLOSE, c);
	if (r)
		return r;
	if (c.pad)
		return -EINVAL;
	/* The BO this closes (not one that takes the handle back once it is destroyed): its
	 * generation leaves the entry before the destroy, so that
	 * no mmap of its cookie that starts or ends after the destroy maps a BO that another
	 * thread's GEM_CREATE put under the handle before this call or that one has recorded
	 * anything (xe_file_mmap checks the generation before and after mapping). Put back if the
	 * destroy fails with the BO still there (-EINVAL), not on -ENOENT (a racing GEM_CLOSE
	 * destroyed it: that call forgets the entry). */
	uint32_t gen = bo_get(f, c.handle).gen;
	bool took = gen && bo_gen_swap(f, c.handle, gen, 0);
	struct vmb_bo_destroy d = {.handle = c.handle};
	r = vmb_bo_destroy(f->client, &d);
	if (r && r != -ENOENT && took)
		bo_gen_swap(f, c.handle, 0, gen);
	if (r == -ENOENT)
		return -EINVAL; /* drm_gem_handle_delete() */
	if (!r && !took) /* a racing GEM_CLOSE took the generation out first, or none was there */
		bo_clear(f, c.handle, gen);
	return r;
}

static int drm_syncobj_create(struct xe_file *f, unsigned long ucmd, void *arg)
{
	struct drm_syncobj_create c;
	int r = IN(DRM_IOCTL_SYNCOBJ_CREATE, c);
	if (r)
		return r;
	if (c.flags & ~DRM_SYNCOBJ_CREATE_SIGNALED)
		return -EINVAL;
	struct vmb_syncobj_create v = {
		.flags = c.flags & DRM_SYNCOBJ_CREATE_SIGNALED ? VMB_SYNCOBJ_CREATE_SIGNALED : 0,
	};
	r = vmb_syncobj_create(f->client, &v);
	if (r)
		return r;
	c.handle = v.handle;
	return OUT(DRM_IOCTL_SYNCOBJ_CREATE, c);
}

static int drm_syncobj_destroy(struct xe_file *f, unsigned long ucmd, void *arg)
{
	struct drm_syncobj_destroy c;
	int r = IN(DRM_IOCTL_SYNCOBJ_DESTROY, c);
	if (r)
		return r;
	if (c.pad)
		return -EINVAL;
	struct vmb_syncobj_destroy v = {.handle = c.handle};
	r = vmb_syncobj_destroy(f->client, &v);
	return r == -ENOENT ? -EINVAL : r; /* drm_syncobj_destroy() */
}

/* A private copy of @count u32 handles at @uptr (count checked by the caller). */
static int copy_handles(const struct xe_file *f, uint64_t uptr, uint32_t count, uint32_t **out)
{
	if (!uptr)
		return -EFAULT;
	uint32_t *h = malloc((size_t)count * sizeof(*h));
	if (!h)
		return -ENOMEM;
	int r = user_read(f, h, uptr, (size_t)count * sizeof(*h));
	if (r) {
		free(h);
		return r;
	}
	*out = h;
	return 0;
}

static int drm_syncobj_wait(struct xe_file *f, unsigned long ucmd, void *arg)
{
	struct drm_syncobj_wait w;
	int r = IN(DRM_IOCTL_SYNCOBJ_WAIT, w);
	if (r)
		return r;
	/* drm_syncobj_wait_ioctl(): WAIT_AVAILABLE is the timeline wait's; pad is not looked at */
	if (w.flags & ~(uint32_t)(DRM_SYNCOBJ_WAIT_FLAGS_WAIT_ALL | DRM_SYNCOBJ_WAIT_FLAGS_WAIT_FOR_SUBMIT |
				  DRM_SYNCOBJ_WAIT_FLAGS_WAIT_DEADLINE))
		return -EINVAL;
	if (!w.count_handles)
		return -EINVAL;
	/* DRM has no limit but its allocations' (-ENOMEM); vmbind takes VMB_SYNCOBJ_WAIT_MAX */
	if (w.count_handles > VMB_SYNCOBJ_WAIT_MAX)
		return -ENOMEM;
	uint32_t *h;
	r = copy_handles(f, w.handles, w.count_handles, &h);
	if (r)
		return r;
	struct vmb_syncobj_wait v = {
		.handles = (uint64_t)(uintptr_t)h,
		.timeout_ns = w.timeout_nsec, /* both absolute CLOCK_MONOTONIC */
		.count = w.count_handles,
		.flags = (w.flags & DRM_SYNCOBJ_WAIT_FLAGS_WAIT_ALL ? VMB_SYNCOBJ_WAIT_ALL : 0) |
			 (w.flags & DRM_SYNCOBJ_WAIT_FLAGS_WAIT_FOR_SUBMIT ? VMB_SYNCOBJ_WAIT_FOR_SUBMIT : 0),
	};
	r = vmb_syncobj_wait(f->client, &v);
	free(h);
	if (r)
		return r;
	w.first_signaled = v.first_signaled;
	return OUT(DRM_IOCTL_SYNCOBJ_WAIT, w);
}

static int drm_syncobj_array(struct xe_file *f, unsigned long ucmd, void *arg, bool signal)
{
	struct drm_syncobj_array a;
	int r = IN(signal ? DRM_IOCTL_SYNCOBJ_SIGNAL : DRM_IOCTL_SYNCOBJ_RESET, a);
	if (r)
		return r;
	if (a.pad || !a.count_handles)
		return -EINVAL;
	if (a.count_handles > VMB_SYNCOBJ_ARRAY_MAX) /* as in drm_syncobj_wait() */
		return -ENOMEM;
	uint32_t *h;
	r = copy_handles(f, a.handles, a.count_handles, &h);
	if (r)
		return r;
	struct vmb_syncobj_array v = {.handles = (uint64_t)(uintptr_t)h, .count = a.count_handles};
	r = signal ? vmb_syncobj_signal(f->client, &v) : vmb_syncobj_reset(f->client, &v);
	free(h);
	return r;
}

/* ---- Xe: DEVICE_QUERY ---- */

/* The query's answer into @buf (room @room); returns its size, or -EINVAL (unknown query). */
static long query_build(struct xe_file *f, uint32_t query, void *buf, size_t room)
{
	memset(buf, 0, room);
	switch (query) {
	case DRM_XE_DEVICE_QUERY_CONFIG: {
		struct drm_xe_query_config *c = buf;
		c->num_params = DRM_XE_QUERY_CONFIG_MAX_EXEC_QUEUE_PRIORITY + 1;
		c->info[DRM_XE_QUERY_CONFIG_REV_AND_DEVICE_ID] = XE_SHIM_DEVICE_ID;
		c->info[DRM_XE_QUERY_CONFIG_FLAGS] = DRM_XE_QUERY_CONFIG_FLAG_HAS_VRAM;
		c->info[DRM_XE_QUERY_CONFIG_MIN_ALIGNMENT] = XE_SHIM_PAGE;
		c->info[DRM_XE_QUERY_CONFIG_VA_BITS] = XE_SHIM_VA_BITS;
		c->info[DRM_XE_QUERY_CONFIG_MAX_EXEC_QUEUE_PRIORITY] = XE_SHIM_MAX_PRIORITY;
		return (long)(sizeof(*c) + c->num_params * sizeof(c->info[0]));
	}
	case DRM_XE_DEVICE_QUERY_GT_LIST: {
		struct drm_xe_query_gt_list *l = buf;
		l->num_gt = 1;
		struct drm_xe_gt *g = &l->gt_list[0];
		g->type = DRM_XE_QUERY_GT_TYPE_MAIN;
		g->tile_id = 0;
		g->gt_id = 0;
		g->reference_clock = 19200000;
		g->near_mem_regions = 1u << VMB_REGION_VRAM;
		g->far_mem_regions = 1u << VMB_REGION_SYSTEM;
		g->ip_ver_major = 20;
		g->ip_ver_minor = 1;
		return (long)(sizeof(*l) + sizeof(*g));
	}
	case DRM_XE_DEVICE_QUERY_ENGINES: {
		static const uint16_t eng[][2] = {
			{DRM_XE_ENGINE_CLASS_COMPUTE, 0},
			{DRM_XE_ENGINE_CLASS_COMPUTE, 1},
			{DRM_XE_ENGINE_CLASS_COPY, 0},
		};
		struct drm_xe_query_engines *e = buf;
		e->num_engines = 3;
		for (unsigned i = 0; i < 3; i++) {
			e->engines[i].instance.engine_class = eng[i][0];
			e->engines[i].instance.engine_instance = eng[i][1];
			e->engines[i].instance.gt_id = 0;
		}
		return (long)(sizeof(*e) + 3 * sizeof(e->engines[0]));
	}
	case DRM_XE_DEVICE_QUERY_MEM_REGIONS: {
		struct drm_xe_query_mem_regions *m = buf;
		m->num_mem_regions = VMB_REGION_COUNT;
		for (uint32_t i = 0; i < VMB_REGION_COUNT; i++) {
			struct vmb_region_query q = {.region = i};
			int r = vmb_region_query(f->client, &q);
			if (r)
				return r;
			struct drm_xe_mem_region *g = &m->mem_regions[i];
			g->mem_class = i == VMB_REGION_VRAM ? DRM_XE_MEM_REGION_CLASS_VRAM
							   : DRM_XE_MEM_REGION_CLASS_SYSMEM;
			g->instance = (uint16_t)i;
			g->min_page_size = XE_SHIM_PAGE;
			g->total_size = q.capacity;
			g->used = q.capacity - q.free;
			if (i == VMB_REGION_VRAM) {
				g->cpu_visible_size = q.capacity;
				g->cpu_visible_used = g->used;
			}
		}
		return (long)(sizeof(*m) + VMB_REGION_COUNT * sizeof(m->mem_regions[0]));
	}
	case DRM_XE_DEVICE_QUERY_HWCONFIG:
		return 0;
	default:
		return -EINVAL;
	}
}

static int xe_device_query(struct xe_file *f, unsigned long ucmd, void *arg)
{
	struct drm_xe_device_query q;
	int r = IN(DRM_IOCTL_XE_DEVICE_QUERY, q);
	if (r)
		return r;
	if (q.extensions || NZ(q.reserved))
		return -EINVAL;
	_Alignas(8) unsigned char buf[512];
	long size = query_build(f, q.query, buf, sizeof(buf));
	if (size < 0)
		return (int)size;
	if (q.size == 0) {
		q.size = (uint32_t)size;
	} else {
		/* the kernel's rule: exactly the size it gave (HWCONFIG's 0 included) */
		if (q.size != (uint32_t)size)
			return -EINVAL;
		r = user_write(f, q.data, buf, (size_t)size);
		if (r)
			return r;
	}
	return OUT(DRM_IOCTL_XE_DEVICE_QUERY, q);
}

/* ---- Xe: BOs ---- */

/* Whether vm @vm_id exists: a bind queue made and dropped is the public way to ask. 0 (it does),
 * or vmbind's error (-ENOENT: it does not). */
static int vm_check(struct xe_file *f, uint32_t vm_id)
{
	struct vmb_bind_queue_create b = {.vm_id = vm_id};
	int r = vmb_bind_queue_create(f->client, &b);
	if (r)
		return r;
	struct vmb_bind_queue_destroy d = {.vm_id = vm_id, .queue_id = b.queue_id};
	vmb_bind_queue_destroy(f->client, &d);
	return 0;
}

static int xe_gem_create(struct xe_file *f, unsigned long ucmd, void *arg)
{
	struct drm_xe_gem_create c;
	int r = IN(DRM_IOCTL_XE_GEM_CREATE, c);
	if (r)
		return r;
	const uint32_t known = DRM_XE_GEM_CREATE_FLAG_DEFER_BACKING | DRM_XE_GEM_CREATE_FLAG_SCANOUT |
			       DRM_XE_GEM_CREATE_FLAG_NEEDS_VISIBLE_VRAM | DRM_XE_GEM_CREATE_FLAG_NO_COMPRESSION;
	const uint32_t regions = VMB_PLACE_SYSTEM | VMB_PLACE_VRAM;
	if (c.extensions || NZ(c.pad) || NZ(c.reserved) || (c.flags & ~known) || c.handle)
		return -EINVAL;
	if (!c.placement || (c.placement & ~regions))
		return -EINVAL;
	if ((c.flags & DRM_XE_GEM_CREATE_FLAG_NEEDS_VISIBLE_VRAM) && !(c.placement & VMB_PLACE_VRAM))
		return -EINVAL;
	if (!c.size || (c.size & (XE_SHIM_PAGE - 1)))
		return -EINVAL;
	if (!c.cpu_caching || c.cpu_caching > DRM_XE_GEM_CPU_CACHING_WC)
		return -EINVAL;
	if ((c.placement & VMB_PLACE_VRAM) && c.cpu_caching != DRM_XE_GEM_CPU_CACHING_WC)
		return -EINVAL;
	if ((c.flags & DRM_XE_GEM_CREATE_FLAG_SCANOUT) && c.cpu_caching == DRM_XE_GEM_CPU_CACHING_WB)
		return -EINVAL;
	/* private to c.vm_id: vmbind's own (-ENOENT: no such vm; the BO stays that vm's, which no
	 * later vm under the id is) */
	struct vmb_bo_create v = {.size = c.size, .placements = c.placement, .vm_id = c.vm_id};
	r = vmb_bo_create(f->client, &v);
	if (r)
		return r;
	r = bo_set(f, v.handle);
	if (r) {
		struct vmb_bo_destroy d = {.handle = v.handle};
		vmb_bo_destroy(f->client, &d);
		return r;
	}
	c.handle = v.handle;
	return OUT(DRM_IOCTL_XE_GEM_CREATE, c);
}

static int xe_gem_mmap_offset(struct xe_file *f, unsigned long ucmd, void *arg)
{
	struct drm_xe_gem_mmap_offset m;
	int r = IN(DRM_IOCTL_XE_GEM_MMAP_OFFSET, m);
	if (r)
		return r;
	if (m.extensions || NZ(m.reserved) || m.flags) /* PCI_BARRIER: no doorbell page here */
		return -EINVAL;
	struct vmb_bo_query q = {.handle = m.handle};
	r = vmb_bo_query(f->client, &q);
	if (r)
		return r;
	uint32_t gen = bo_get(f, m.handle).gen;
	if (!gen) /* closed since */
		return -ENOENT;
	if (gen == GEN_SPENT || m.handle >> HANDLE_BITS) /* no cookie for it (above) */
		return -ENOSPC;
	m.offset = (uint64_t)m.handle << MMAP_SHIFT | (uint64_t)gen << 12;
	return OUT(DRM_IOCTL_XE_GEM_MMAP_OFFSET, m);
}

int xe_file_mmap(struct xe_file *f, uint64_t offset, size_t length, void **ptr, uint32_t *handle,
		 uint64_t *size)
{
	if (getpid() != f->pid)
		return -ENODEV;
	uint64_t h = offset >> MMAP_SHIFT;
	uint32_t gen = (uint32_t)(offset >> 12) & GEN_SPENT;
	if (!h || h >> HANDLE_BITS || !gen || gen == GEN_SPENT || (offset & 4095))
		return -EINVAL;
	if (bo_get(f, (uint32_t)h).gen != gen) {
		/* another open file's BO (drm_vma_node_is_allowed), or no BO's (one closed since) */
		bool other = false;
		pthread_mutex_lock(&files_lock);
		for (struct xe_file *o = files; o && !other; o = o->next_open)
			other = o != f && bo_get(o, (uint32_t)h).gen == gen;
		pthread_mutex_unlock(&files_lock);
		return other ? -EACCES : -EINVAL;
	}
	struct vmb_bo_query q = {.handle = (uint32_t)h};
	int r = vmb_bo_query(f->client, &q);
	if (r)
		return -EINVAL;
	if (!length || length > q.size)
		return -EINVAL;
	struct vmb_bo_mmap m = {.handle = (uint32_t)h};
	r = vmb_bo_mmap(f->client, &m);
	if (r)
		return r;
	if (bo_get(f, (uint32_t)h).gen != gen) { /* closed meanwhile: the handle may be another BO's */
		struct vmb_bo_munmap u = {.handle = 0, .ptr = m.ptr};
		vmb_bo_munmap(f->client, &u);
		return -EINVAL;
	}
	*ptr = (void *)(uintptr_t)m.ptr;
	*handle = (uint32_t)h;
	*size = q.size;
	return 0;
}

int xe_file_munmap(struct xe_file *f, void *ptr)
{
	if (getpid() != f->pid)
		return -ENODEV;
	struct vmb_bo_munmap m = {.handle = 0, .ptr = (uint64_t)(uintptr_t)ptr};
	return vmb_bo_munmap(f->client, &m);
}

/* ---- Xe: vms ---- */

static int xe_vm_create(struct xe_file *f, unsigned long ucmd, void *arg)
{
	struct drm_xe_vm_create c;
	int r = IN(DRM_IOCTL_XE_VM_CREATE, c);
	if (r)
		return r;
	if (c.extensions || NZ(c.reserved))
		return -EINVAL;
	if (c.flags & ~(uint32_t)(DRM_XE_VM_CREATE_FLAG_SCRATCH_PAGE | DRM_XE_VM_CREATE_FLAG_LR_MODE))
		return -EINVAL; /* FAULT_MODE: no page-fault vms here; unknown flags */
	struct vmb_vm_create v = {
		.flags = (c.flags & DRM_XE_VM_CREATE_FLAG_SCRATCH_PAGE ? VMB_VM_CREATE_SCRATCH_PAGE : 0) |
			 (c.flags & DRM_XE_VM_CREATE_FLAG_LR_MODE ? VMB_VM_CREATE_LR_MODE : 0),
	};
	r = vmb_vm_create(f->client, &v);
	if (r)
		return r;
	r = vm_lr_set(f, v.vm_id, c.flags & DRM_XE_VM_CREATE_FLAG_LR_MODE);
	if (r) {
		struct vmb_vm_destroy d = {.vm_id = v.vm_id};
		vmb_vm_destroy(f->client, &d);
		return r;
	}
	c.vm_id = v.vm_id;
	return OUT(DRM_IOCTL_XE_VM_CREATE, c);
}

static int xe_vm_destroy(struct xe_file *f, unsigned long ucmd, void *arg)
{
	struct drm_xe_vm_destroy d;
	int r = IN(DRM_IOCTL_XE_VM_DESTROY, d);
	if (r)
		return r;
	if (d.pad || NZ(d.reserved))
		return -EINVAL;
	struct vmb_vm_destroy v = {.vm_id = d.vm_id};
	pthread_rwlock_wrlock(&f->vm_life); /* no EXEC_QUEUE_CREATE between its vmbind call and entry */
	if (vm_lr_busy(f, d.vm_id)) {
		pthread_rwlock_unlock(&f->vm_life);
		return -EBUSY; /* an LR vm with exec queues (xe_vm_destroy_ioctl) */
	}
	/* Its exec queues live on, tied to no vm the shim knows (an id may be reused); its bind
	 * queues' Xe ids too (vmbind's queues go with the vm: a bind on one is another vm's queue,
	 * -EINVAL, and neither a bind nor a destroy through one reaches a queue that a new vm under
	 * the id gets under the same number: their calls pass the queue's serial). Marked before
	 * vmbind's destroy, so that a bind that vmbind refuses for it finds the mark (-EINVAL).
	 * Queues of a vm vmbind does not know were marked by its VM_DESTROY (vm_life: none was
	 * being made meanwhile). Its private BOs stay its own in vmbind: no other vm binds them. */
	pthread_mutex_lock(&f->lock);
	for (uint32_t i = 0; i < f->nqueues; i++)
		if (f->queues[i].vm_id == d.vm_id)
			f->queues[i].vm_id = 0;
	pthread_mutex_unlock(&f->lock);
	r = vmb_vm_destroy(f->client, &v);
	pthread_rwlock_unlock(&f->vm_life);
	return r;
}

/* One Xe sync into vmbind's, as xe_sync_entry_parse(): @ufences counts the user fences so far. */
static int sync_translate(const struct drm_xe_sync *y, bool no_ufence, uint32_t *ufences,
			  struct vmb_sync *s)
{
	if (NZ(y->reserved) || (y->flags & ~(uint32_t)DRM_XE_SYNC_FLAG_SIGNAL))
		return -EINVAL;
	s->flags = y->flags & DRM_XE_SYNC_FLAG_SIGNAL ? VMB_SYNC_FLAG_SIGNAL : 0;
	switch (y->type) {
	case DRM_XE_SYNC_TYPE_SYNCOBJ:
		s->type = VMB_SYNC_SYNCOBJ;
		s->handle = y->handle;
		return 0;
	case DRM_XE_SYNC_TYPE_TIMELINE_SYNCOBJ:
		s->type = VMB_SYNC_TIMELINE_SYNCOBJ;
		s->handle = y->handle;
		s->value = y->timeline_value;
		return 0;
	case DRM_XE_SYNC_TYPE_USER_FENCE:
		if (no_ufence)
			return -EOPNOTSUPP;
		if (y->addr & 7 || ++*ufences > 1)
			return -EINVAL;
		s->type = VMB_SYNC_USER_FENCE;
		s->addr = y->addr;
		s->value = y->timeline_value;
		return 0;
	default:
		return -EINVAL;
	}
}

/* Xe syncs at @uptr into a new array of vmbind syncs (*out, NULL for none). As xe_sync.c: at
 * most one user fence (-EINVAL), none at all with @no_ufence (a bind of no ops: -EOPNOTSUPP);
 * a sync's extensions field is not read. (A bind's user fence that is not mapped: vmbind's
 * -EFAULT, as user_fence_create()'s get_user.) The kernel copies and parses the syncs one at a time:
 * the shim copies them in one go, and the syncs before the first that is not mapped are checked
 * first (their errors win over -EFAULT). The caller has checked @n against DRM_XE_MAX_SYNCS. */
static int syncs_translate(const struct xe_file *f, uint64_t uptr, uint32_t n, bool no_ufence,
			   struct vmb_sync **out)
{
	*out = NULL;
	if (!n)
		return 0;
	if (!uptr)
		return -EFAULT;
	struct drm_xe_sync few[4], *x = n <= 4 ? few : malloc(n * sizeof(*x));
	struct vmb_sync *s = calloc(n, sizeof(*s));
	ssize_t got = x && s ? user_copy_upto(f->pid, x, uptr, n * sizeof(*x), false) : -ENOMEM;
	int err = got < 0 ? (int)got : 0;
	uint32_t ufences = 0, ok = got > 0 ? (uint32_t)((size_t)got / sizeof(*x)) : 0;
	for (uint32_t i = 0; i < n && !err; i++)
		err = i < ok ? sync_translate(&x[i], no_ufence, &ufences, &s[i]) : -EFAULT;
	if (x != few)
		free(x);
	if (err) {
		free(s);
		return err;
	}
	*out = s;
	return 0;
}

/* One Xe op into vmbind's. A MAP of a BO private to another vm is vmbind's -EINVAL, decided
 * where vmb_vm_bind looks the BO up (a check of the handle here could be of another BO by then:
 * one closed meanwhile, its handle taken by a new BO). */
static int bind_op_translate(const struct drm_xe_vm_bind_op *x, struct vmb_bind_op *o)
{
	/* CHECK_PXP: only a protected BO is checked, and there are none here (no PXP) */
	const uint32_t accepted = DRM_XE_VM_BIND_FLAG_READONLY | DRM_XE_VM_BIND_FLAG_IMMEDIATE |
				  DRM_XE_VM_BIND_FLAG_NULL | DRM_XE_VM_BIND_FLAG_DUMPABLE |
				  DRM_XE_VM_BIND_FLAG_CHECK_PXP;
	memset(o, 0, sizeof(*o));
	if (x->extensions || x->pad || x->pad2 || NZ(x->reserved))
		return -EINVAL;
	if (x->op > DRM_XE_VM_BIND_OP_PREFETCH || (x->flags & ~accepted))
		return -EINVAL; /* CPU_ADDR_MIRROR and later flags included */
	if (x->pat_index > XE_SHIM_MAX_PAT)
		return -EINVAL;
	if (x->prefetch_mem_region_instance && x->op != DRM_XE_VM_BIND_OP_PREFETCH)
		return -EINVAL;
	if (x->op == DRM_XE_VM_BIND_OP_UNMAP_ALL && (x->addr || x->range))
		return -EINVAL;
	o->op = x->op; /* Xe's op numbers are vmbind's */
	o->flags = (x->flags & DRM_XE_VM_BIND_FLAG_READONLY ? VMB_BIND_FLAG_READONLY : 0) |
		   (x->flags & DRM_XE_VM_BIND_FLAG_NULL ? VMB_BIND_FLAG_NULL : 0);
	o->bo_handle = x->obj;
	switch (x->op) {
	case DRM_XE_VM_BIND_OP_MAP:
		o->bo_offset = x->obj_offset;
		break;
	case DRM_XE_VM_BIND_OP_MAP_USERPTR:
		o->userptr = x->userptr;
		break;
	case DRM_XE_VM_BIND_OP_PREFETCH:
		o->region = x->prefetch_mem_region_instance;
		break;
	default:
		break;
	}
	o->addr = x->addr;
	o->range = x->range;
	return 0;
}

static int xe_vm_bind(struct xe_file *f, unsigned long ucmd, void *arg)
{
	struct drm_xe_vm_bind b;
	int r = IN(DRM_IOCTL_XE_VM_BIND, b);
	if (r)
		return r;
	if (b.extensions || b.pad || b.pad2 || NZ(b.reserved))
		return -EINVAL;
	if (b.num_syncs > DRM_XE_MAX_SYNCS) /* vm_bind_ioctl_check_args(), before the array */
		return -EINVAL;
	/* The kernel allocates the array (-ENOBUFS when it cannot: always above INT_MAX bytes,
	 * 26843545 ops); vmbind takes at most VMB_VM_BIND_MAX_OPS: past that, the same answer. */
	if (b.num_binds > VMB_VM_BIND_MAX_OPS)
		return vm_check(f, b.vm_id) == -ENOENT ? -EINVAL : -ENOBUFS;
	uint32_t queue = 0;
	uint64_t serial = 0;
	if (b.exec_queue_id) {
		struct xe_queue q;
		r = queue_get(f, b.exec_queue_id, &q);
		if (r)
			return vm_check(f, b.vm_id) == -ENOENT ? -EINVAL : r; /* the vm is looked up first */
		if (q.kind != Q_BIND || q.vm_id != b.vm_id)
			return -EINVAL;
		queue = q.id;
		serial = q.serial;
	}
	if (!b.num_binds && !b.num_syncs) /* nothing to do: the kernel's -ENODATA, returned as 0 */
		return vm_check(f, b.vm_id) == -ENOENT ? -EINVAL : 0;
	struct vmb_bind_op one, *ops = NULL;
	struct vmb_sync *syncs = NULL;
	if (b.num_binds == 1) {
		ops = &one;
		r = bind_op_translate(&b.bind, &one);
	} else if (b.num_binds > 1) {
		if (!b.vector_of_binds)
			return -EFAULT;
		/* copied whole before any op is looked at, as the kernel's copy_from_user */
		struct drm_xe_vm_bind_op *x = malloc(b.num_binds * sizeof(*x));
		ops = calloc(b.num_binds, sizeof(*ops));
		r = x && ops ? user_read(f, x, b.vector_of_binds, b.num_binds * sizeof(*x)) : -ENOMEM;
		for (uint32_t i = 0; i < b.num_binds && !r; i++)
			r = bind_op_translate(&x[i], &ops[i]);
		free(x);
	}
	if (!r)
		r = syncs_translate(f, b.syncs, b.num_syncs, b.num_binds == 0, &syncs);
	if (!r) {
		struct vmb_vm_bind v = {
			.vm_id = b.vm_id,
			.queue_id = queue,
			.queue_serial = serial, /* vmbind's lookup decides: this queue or none */
			.num_binds = b.num_binds,
			.num_syncs = b.num_syncs,
			.binds = (uint64_t)(uintptr_t)ops,
			.syncs = (uint64_t)(uintptr_t)syncs,
			.flags = VMB_VM_BIND_FLAG_ASYNC,
		};
		r = vmb_vm_bind(f->client, &v);
	}
	if (ops != &one)
		free(ops);
	free(syncs);
	/* an unknown vm is the kernel's -EINVAL (xe_vm_lookup() fails), and so is a bind queue
	 * whose vm was destroyed since it was looked up above (its vm is not this one: VM_DESTROY
	 * marks its queues before vmbind's destroy, which is what made vmbind refuse the serial);
	 * an unknown BO or syncobj stays -ENOENT */
	struct xe_queue now;
	if (r == -ENOENT && (vm_check(f, b.vm_id) == -ENOENT ||
			     (serial && !queue_get(f, b.exec_queue_id, &now) && now.serial == serial &&
			      now.vm_id != b.vm_id)))
		r = -EINVAL;
	return r;
}

/* ---- Xe: exec queues, exec, user-fence waits ---- */

/* The set-property extension chain of EXEC_QUEUE_CREATE: priority and timeslice accepted. */
static int queue_extensions(const struct xe_file *f, uint64_t ext)
{
	for (unsigned n = 0; ext; n++) {
		if (n >= 16)
			return -E2BIG;
		struct drm_xe_ext_set_property p;
		int r = user_read(f, &p, ext, sizeof(p));
		if (r)
			return r;
		if (p.base.name != DRM_XE_EXEC_QUEUE_EXTENSION_SET_PROPERTY || p.base.pad || p.pad ||
		    NZ(p.reserved))
			return -EINVAL;
		if (p.property == DRM_XE_EXEC_QUEUE_SET_PROPERTY_PRIORITY) {
			if (p.value > XE_SHIM_MAX_PRIORITY)
				return -EINVAL;
		} else if (p.property != DRM_XE_EXEC_QUEUE_SET_PROPERTY_TIMESLICE) {
			return -EINVAL;
		}
		ext = p.base.next_extension;
	}
	return 0;
}

static int xe_exec_queue_create(struct xe_file *f, unsigned long ucmd, void *arg)
{
	struct drm_xe_exec_queue_create c;
	int r = IN(DRM_IOCTL_XE_EXEC_QUEUE_CREATE, c);
	if (r)
		return r;
	if (NZ(c.reserved) || (c.flags & ~(uint32_t)DRM_XE_EXEC_QUEUE_LOW_LATENCY_HINT))
		return -EINVAL;
	if (c.width != 1 || c.num_placements != 1) /* no parallel or virtual engines here */
		return -EINVAL;
	struct drm_xe_engine_class_instance e;
	r = user_read(f, &e, c.instances, sizeof(e)); /* copied before the extensions are read */
	if (r)
		return r;
	r = queue_extensions(f, c.extensions);
	if (r)
		return r;
	if (e.gt_id) /* the instance's pad is not looked at (xe_exec_queue_create_ioctl) */
		return -EINVAL;
	struct xe_queue q = {.vm_id = c.vm_id};
	if (e.engine_class == DRM_XE_ENGINE_CLASS_VM_BIND) {
		if (e.engine_instance)
			return -EINVAL;
		struct vmb_bind_queue_create v = {.vm_id = c.vm_id};
		pthread_rwlock_rdlock(&f->vm_life); /* until its entry is in (vm_life) */
		r = vmb_bind_queue_create(f->client, &v);
		if (r) {
			pthread_rwlock_unlock(&f->vm_life);
			return r;
		}
		q.kind = Q_BIND;
		q.id = v.queue_id;
		q.serial = v.serial;
	} else {
		struct vmb_exec_queue_create v = {.vm_id = c.vm_id};
		if (e.engine_class == DRM_XE_ENGINE_CLASS_COMPUTE && e.engine_instance < 2)
			v.engine.engine_class = VMB_ENGINE_CLASS_COMPUTE;
		else if (e.engine_class == DRM_XE_ENGINE_CLASS_COPY && e.engine_instance == 0)
			v.engine.engine_class = VMB_ENGINE_CLASS_COPY;
		else
			return -EINVAL;
		v.engine.engine_instance = e.engine_instance;
#ifdef VMB_EXEC_QUEUE_CMDSET_INTEL
		v.flags = VMB_EXEC_QUEUE_CMDSET_INTEL; /* IGT's batches are Intel MI commands */
#endif
		pthread_rwlock_rdlock(&f->vm_life); /* until its entry is in (vm_life) */
		r = vmb_exec_queue_create(f->client, &v);
		if (r) {
			pthread_rwlock_unlock(&f->vm_life);
			return r;
		}
		q.kind = Q_EXEC;
		q.id = v.exec_queue_id;
		q.serial = v.serial;
	}
	c.exec_queue_id = queue_add(f, &q);
	if (!c.exec_queue_id) {
		if (q.kind == Q_BIND) {
			struct vmb_bind_queue_destroy d = {.vm_id = q.vm_id, .queue_id = q.id, .serial = q.serial};
			vmb_bind_queue_destroy(f->client, &d);
		} else {
			struct vmb_exec_queue_destroy d = {.exec_queue_id = q.id};
			vmb_exec_queue_destroy(f->client, &d);
		}
		pthread_rwlock_unlock(&f->vm_life);
		return -ENOMEM;
	}
	pthread_rwlock_unlock(&f->vm_life);
	return OUT(DRM_IOCTL_XE_EXEC_QUEUE_CREATE, c);
}

static int xe_exec_queue_destroy(struct xe_file *f, unsigned long ucmd, void *arg)
{
	struct drm_xe_exec_queue_destroy d;
	int r = IN(DRM_IOCTL_XE_EXEC_QUEUE_DESTROY, d);
	if (r)
		return r;
	if (d.pad || NZ(d.reserved))
		return -EINVAL;
	struct xe_queue q;
	r = queue_take(f, d.exec_queue_id, &q);
	/* The Xe id is gone now; vmbind's queue follows (its destroy fails only with -ENOENT:
	 * a bind queue whose vm is gone went with it, and this destroy is still 0; its serial
	 * makes vmbind refuse a new vm's queue under the same numbers, VM_DESTROY and VM_CREATE
	 * of its vm id meanwhile) */
	if (!r && q.kind == Q_BIND) {
		struct vmb_bind_queue_destroy v = {.vm_id = q.vm_id, .queue_id = q.id, .serial = q.serial};
		if (q.vm_id)
			vmb_bind_queue_destroy(f->client, &v);
	} else if (!r) {
		struct vmb_exec_queue_destroy v = {.exec_queue_id = q.id};
		vmb_exec_queue_destroy(f->client, &v);
	}
	return r;
}

/* Whether Xe queue @q is banned (bind queues never are). */
static int queue_banned(struct xe_file *f, const struct xe_queue *q, bool *banned)
{
	*banned = false;
	if (q->kind != Q_EXEC)
		return 0;
	struct vmb_exec_queue_query v = {.exec_queue_id = q->id};
	int r = vmb_exec_queue_query(f->client, &v);
	if (!r)
		*banned = v.flags & VMB_EXEC_QUEUE_BANNED;
	return r;
}

static int xe_exec_queue_get_property(struct xe_file *f, unsigned long ucmd, void *arg)
{
	struct drm_xe_exec_queue_get_property p;
	int r = IN(DRM_IOCTL_XE_EXEC_QUEUE_GET_PROPERTY, p);
	if (r)
		return r;
	if (p.extensions || NZ(p.reserved) || p.property != DRM_XE_EXEC_QUEUE_GET_PROPERTY_BAN)
		return -EINVAL;
	struct xe_queue q;
	r = queue_get(f, p.exec_queue_id, &q);
	if (r)
		return r;
	bool banned;
	r = queue_banned(f, &q, &banned);
	if (r)
		return r;
	p.value = banned;
	return OUT(DRM_IOCTL_XE_EXEC_QUEUE_GET_PROPERTY, p);
}

/* vmbind's fault record and Xe's agree on the codes of access, fault type and level. */
_Static_assert(VMB_FAULT_READ == FAULT_ACCESS_TYPE_READ && VMB_FAULT_WRITE == FAULT_ACCESS_TYPE_WRITE &&
		       VMB_FAULT_ATOMIC == FAULT_ACCESS_TYPE_ATOMIC,
	       "access types");
_Static_assert(VMB_FAULT_TYPE_NOT_PRESENT == FAULT_TYPE_NOT_PRESENT &&
		       VMB_FAULT_TYPE_WRITE_ACCESS == FAULT_TYPE_WRITE_ACCESS && FAULT_LEVEL_PTE == 0,
	       "fault types, levels (vmbind's 0: the last level, as PTE)");

/*
 * VM_GET_PROPERTY, FAULTS: the vm's fault log (vmb_vm_query_faults), as xe_vm_get_property_ioctl:
 * size 0 asks for the size (the faults recorded, times the record's); otherwise size must be a
 * multiple of the record's and at most that, and the first size / record faults are copied.
 * Any other property, or a non-zero extensions, pad or reserved, is -EINVAL; an unknown vm
 * -ENOENT; data that cannot be written -EFAULT.
 */
static int xe_vm_get_property(struct xe_file *f, unsigned long ucmd, void *arg)
{
	struct drm_xe_vm_get_property p;
	int r = IN(DRM_IOCTL_XE_VM_GET_PROPERTY, p);
	if (r)
		return r;
	if (p.extensions || p.pad || NZ(p.reserved))
		return -EINVAL;
	struct vmb_vm_fault rec[VMB_VM_MAX_FAULTS];
	struct vmb_vm_query_faults q = {.vm_id = p.vm_id, .num_faults = VMB_VM_MAX_FAULTS,
					.faults = (uint64_t)(uintptr_t)rec};
	r = vmb_vm_query_faults(f->client, &q);
	if (r)
		return r; /* -ENOENT first, as the kernel looks the vm up before the property */
	if (p.property != DRM_XE_VM_GET_PROPERTY_FAULTS)
		return -EINVAL;
	const size_t one = sizeof(struct xe_vm_fault);
	if (!p.size) {
		p.size = (uint32_t)(q.num_faults * one); /* at most 50 records */
		return OUT(DRM_IOCTL_XE_VM_GET_PROPERTY, p);
	}
	if (p.size % one || p.size / one > q.num_faults)
		return -EINVAL;
	struct xe_vm_fault out[VMB_VM_MAX_FAULTS];
	uint32_t n = (uint32_t)(p.size / one);
	for (uint32_t i = 0; i < n; i++)
		out[i] = (struct xe_vm_fault){
			.address = vmb_mi_canonical(rec[i].addr),
			.address_precision = 1, /* the byte that faulted */
			.access_type = rec[i].access,
			.fault_type = rec[i].type,
			.fault_level = rec[i].level,
		};
	return user_write(f, p.data, out, p.size); /* the struct itself is not written back */
}

static int xe_exec(struct xe_file *f, unsigned long ucmd, void *arg)
{
	struct drm_xe_exec x;
	int r = IN(DRM_IOCTL_XE_EXEC, x);
	if (r)
		return r;
	if (x.extensions || NZ(x.pad) || NZ(x.reserved))
		return -EINVAL;
	if (x.num_syncs > DRM_XE_MAX_SYNCS) /* xe_exec_ioctl(): before the queue is looked up */
		return -EINVAL;
	struct xe_queue q;
	r = queue_get(f, x.exec_queue_id, &q);
	if (r)
		return r;
	if (q.kind != Q_EXEC || x.num_batch_buffer != 1)
		return -EINVAL;
	struct vmb_sync *syncs;
	r = syncs_translate(f, x.syncs, x.num_syncs, false, &syncs);
	if (r)
		return r;
	if (!q.vm_id) { /* its vm was destroyed: xe_vm_is_closed_or_banned() */
		free(syncs);
		return -ECANCELED;
	}
	struct vmb_exec v = {
		.exec_queue_id = q.id,
		.exec_queue_serial = q.serial, /* this queue or none (destroyed since: -ENOENT) */
		.num_syncs = x.num_syncs,
		.syncs = (uint64_t)(uintptr_t)syncs,
		.address = x.address,
	};
	r = vmb_exec(f->client, &v);
	free(syncs);
	return r;
}

/*
 * A wait tied to exec queue @q: -EIO once the queue is banned. Where vmbind's user-fence wait
 * takes the queue itself (its exec_queue_id, issue 14 item 4: VMB_XE_UFENCE_QUEUE, found by
 * meson), the shim passes it on. Before that, the wait runs in slices of at most 10 ms between
 * which the shim checks the ban; the fence is compared first, as Xe does.
 */
#ifndef VMB_XE_UFENCE_QUEUE
static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

#define BAN_SLICE_NS 10000000
static int wait_on_queue(struct xe_file *f, const struct xe_queue *q, struct vmb_user_fence_wait *w,
			 bool abstime)
{
	int64_t deadline = abstime ? w->timeout : w->timeout < 0 ? INT64_MAX : now_ns() + w->timeout;
	for (;;) {
		int64_t now = now_ns();
		struct vmb_user_fence_wait s = *w;
		s.flags |= VMB_UFENCE_WAIT_ABSTIME;
		s.timeout = deadline - now > BAN_SLICE_NS ? now + BAN_SLICE_NS : deadline;
		int r = vmb_user_fence_wait(f->client, &s);
		if (!abstime && w->timeout >= 0) {
			int64_t left = deadline - now_ns();
			w->timeout = left > 0 ? left : 0;
		}
		if (r != -ETIME)
			return r;
		bool banned;
		r = queue_banned(f, q, &banned);
		if (r)
			return r;
		if (banned)
			return -EIO;
		if (now_ns() >= deadline)
			return -ETIME;
	}
}
#endif

static int xe_wait_user_fence(struct xe_file *f, unsigned long ucmd, void *arg)
{
	struct drm_xe_wait_user_fence w;
	int r = IN(DRM_IOCTL_XE_WAIT_USER_FENCE, w);
	if (r)
		return r;
	if (w.extensions || w.pad || w.pad2 || NZ(w.reserved))
		return -EINVAL;
	if (w.flags & ~(uint16_t)DRM_XE_UFENCE_WAIT_FLAG_ABSTIME)
		return -EINVAL;
	if (w.op > DRM_XE_UFENCE_WAIT_OP_LTE)
		return -EINVAL;
	if (w.addr & 7)
		return -EINVAL;
	struct xe_queue q = {0};
	if (w.exec_queue_id) {
		r = queue_get(f, w.exec_queue_id, &q);
		if (r)
			return r;
	}
	if (!w.addr)
		return -EFAULT; /* do_compare(): copy_from_user fails */
	bool abstime = w.flags & DRM_XE_UFENCE_WAIT_FLAG_ABSTIME;
	struct vmb_user_fence_wait v = {
		.addr = w.addr,
		.value = w.value,
		.mask = w.mask,
		.timeout = w.timeout,
		.op = w.op, /* Xe's op numbers are vmbind's */
		.flags = abstime ? VMB_UFENCE_WAIT_ABSTIME : 0,
	};
#ifdef VMB_XE_UFENCE_QUEUE
	if (q.kind == Q_EXEC) {
		v.exec_queue_id = q.id;
		v.exec_queue_serial = q.serial;
	}
	r = vmb_user_fence_wait(f->client, &v);
#else
	if (q.kind == Q_EXEC)
		r = wait_on_queue(f, &q, &v, abstime);
	else
		r = vmb_user_fence_wait(f->client, &v);
#endif
	if (!abstime && (r == 0 || r == -ETIME || r == -EINTR || r == -EIO)) {
		w.timeout = v.timeout;
		if (OUT(DRM_IOCTL_XE_WAIT_USER_FENCE, w))
			r = -EFAULT; /* drm_ioctl(): the copy out fails after the call */
	}
	return r;
}

/* ---- dispatch ---- */

int xe_file_ioctl(struct xe_file *f, unsigned long ucmd, void *arg)
{
	if (_IOC_TYPE(ucmd) != DRM_IOCTL_BASE)
		return -ENOTTY;
	if (getpid() != f->pid)
		return -ENODEV; /* a child after fork(): the device's threads are the parent's */
	unsigned nr = _IOC_NR(ucmd);
	if (nr >= DRM_COMMAND_BASE && nr < DRM_COMMAND_END) {
		switch (nr - DRM_COMMAND_BASE) {
		case DRM_XE_DEVICE_QUERY: return xe_device_query(f, ucmd, arg);
		case DRM_XE_GEM_CREATE: return xe_gem_create(f, ucmd, arg);
		case DRM_XE_GEM_MMAP_OFFSET: return xe_gem_mmap_offset(f, ucmd, arg);
		case DRM_XE_VM_CREATE: return xe_vm_create(f, ucmd, arg);
		case DRM_XE_VM_DESTROY: return xe_vm_destroy(f, ucmd, arg);
		case DRM_XE_VM_BIND: return xe_vm_bind(f, ucmd, arg);
		case DRM_XE_EXEC_QUEUE_CREATE: return xe_exec_queue_create(f, ucmd, arg);
		case DRM_XE_EXEC_QUEUE_DESTROY: return xe_exec_queue_destroy(f, ucmd, arg);
		case DRM_XE_EXEC_QUEUE_GET_PROPERTY: return xe_exec_queue_get_property(f, ucmd, arg);
		case DRM_XE_EXEC: return xe_exec(f, ucmd, arg);
		case DRM_XE_WAIT_USER_FENCE: return xe_wait_user_fence(f, ucmd, arg);
		case DRM_XE_VM_GET_PROPERTY: return xe_vm_get_property(f, ucmd, arg);
		default: return -EINVAL; /* OBSERVATION, MADVISE, VM_QUERY_MEM_RANGE_ATTRS, newer */
		}
	}
	switch (nr) {
	case _IOC_NR(DRM_IOCTL_VERSION): return drm_version(f, ucmd, arg);
	case _IOC_NR(DRM_IOCTL_GET_CAP): return drm_get_cap(f, ucmd, arg);
	case _IOC_NR(DRM_IOCTL_GEM_CLOSE): return drm_gem_close(f, ucmd, arg);
	case _IOC_NR(DRM_IOCTL_SYNCOBJ_CREATE): return drm_syncobj_create(f, ucmd, arg);
	case _IOC_NR(DRM_IOCTL_SYNCOBJ_DESTROY): return drm_syncobj_destroy(f, ucmd, arg);
	case _IOC_NR(DRM_IOCTL_SYNCOBJ_WAIT): return drm_syncobj_wait(f, ucmd, arg);
	case _IOC_NR(DRM_IOCTL_SYNCOBJ_RESET): return drm_syncobj_array(f, ucmd, arg, false);
	case _IOC_NR(DRM_IOCTL_SYNCOBJ_SIGNAL): return drm_syncobj_array(f, ucmd, arg, true);
	default: return -EINVAL;
	}
}
