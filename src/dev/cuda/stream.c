/* SPDX-License-Identifier: MIT */
/*
 * Streams and fences (include/vmbind/cuda.h), over one page of host-pinned, device-mapped
 * memory: CU_SLOTS u64 slots, each only ever growing.
 *
 * stream_wait: a stream waits (cuStreamWaitValue64, >=) for a slot to reach `gen`; a callback of
 * the fence writes `gen` there when the fence signals (an already signalled fence: at once). A
 * slot is free again as soon as it is written: a later use waits for a larger value, and the
 * earlier waiter's condition, once true, stays true; the watcher drops the fence reference.
 * stream_signal: the stream writes `gen` into a slot (cuStreamWriteValue64) once its work so far
 * is done, and the watcher thread, which polls the pending slots (spinning 200 µs after each
 * event, then sleeping 4 µs steps, 50 µs after 50 ms without an event; asleep on a condition
 * variable while none is pending: see WATCH_*), signals the fence. Measured on the H100: 4.8 µs median from the stream to the polling thread,
 * where cuLaunchHostFunc takes 70 µs.
 * A stream that never gets there (its work faulted, the context died) leaves its fence pending.
 * The page is never freed (struct cu_page, cuda.h): a destroyed device parks it, with what the
 * streams still owe it, for the next device of the same context.
 *
 * Locking: fs->lock (cuda.h) after fence locks (the wait callback takes it); nothing calls into
 * a fence with it held. The host writes a slot with a release store, the watcher reads with
 * acquire loads; the GPU side is ordered by the driver's memory operations.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <vmbind/bind.h>

#include "dev/cuda/cuda.h"

static void slot_write(struct cu_fences *fs, uint32_t idx, uint64_t v)
{
	__atomic_store_n((uint64_t *)&fs->host[idx], v, __ATOMIC_RELEASE);
}

static uint64_t slot_read(struct cu_fences *fs, uint32_t idx)
{
	return __atomic_load_n((uint64_t *)&fs->host[idx], __ATOMIC_ACQUIRE);
}

/* A free slot with its next value (lock held), or NULL: all CU_SLOTS in use. */
static struct cu_slot *slot_get(struct cu_fences *fs, bool wait)
{
	if (!fs->nfree)
		return NULL;
	uint32_t idx = fs->free_idx[--fs->nfree];
	struct cu_slot *s = &fs->slots[idx];
	s->fs = fs;
	s->idx = idx;
	s->gen = ++fs->page->gen[idx];
	s->wait = wait;
	s->fence = NULL;
	return s;
}

static void slot_put(struct cu_fences *fs, struct cu_slot *s)
{
	fs->free_idx[fs->nfree++] = s->idx;
}

/* A wait slot's fence signalled (under its lock): the stream may go on. */
static void wait_fired(struct vmb_fence *f, struct vmb_fence_cb *cb)
{
	struct cu_slot *s = vmb_container_of(cb, struct cu_slot, cb);
	struct cu_fences *fs = s->fs;
	slot_write(fs, s->idx, s->gen);
	pthread_mutex_lock(&fs->lock);
	vmb_list_add_tail(&s->link, &fs->fired); /* the watcher drops the reference */
	pthread_cond_signal(&fs->cond);
	pthread_mutex_unlock(&fs->lock);
}

static void pause_ns(long ns)
{
	struct timespec ts = {0, ns};
	nanosleep(&ts, NULL);
}

static int64_t now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

/*
 * How the watcher polls while a signal slot is pending: it spins for WATCH_SPIN_NS after the
 * last event (a slot added or passed), then sleeps WATCH_STEP_NS between polls (its timer slack
 * lowered so that a 4 µs sleep is a 4 µs sleep, not the default 50 µs), and after WATCH_SLOW_NS
 * without an event WATCH_SLOW_STEP_NS (a stream stuck behind a long kernel or a fence nobody
 * signals costs a few wake-ups a millisecond, not a core). Nothing pending: asleep on fs->cond.
 */
#define WATCH_SPIN_NS 200000
#define WATCH_STEP_NS 4000
#define WATCH_SLOW_NS 50000000
#define WATCH_SLOW_STEP_NS 50000

static void *watcher_main(void *arg)
{
	struct cu_fences *fs = arg;
	struct vmb_list done;
	int64_t last = now_ns(); /* the last event */
	uint64_t seen = 0;       /* fs->added at the last poll */

	prctl(PR_SET_TIMERSLACK, 1000ul);
	pthread_mutex_lock(&fs->lock);
	while (!fs->stop) {
		vmb_list_init(&done);
		struct vmb_list *pos, *tmp;
		/* wait slots written: free them (the fences are dropped below) */
		vmb_list_for_each_safe(pos, tmp, &fs->fired) {
			vmb_list_del(pos);
			vmb_list_add_tail(pos, &done);
		}
		vmb_list_for_each_safe(pos, tmp, &fs->pending) {
			struct cu_slot *s = vmb_container_of(pos, struct cu_slot, link);
			if (slot_read(fs, s->idx) >= s->gen) {
				vmb_list_del(pos);
				vmb_list_add_tail(pos, &done);
			}
		}
		bool any = !vmb_list_empty(&done), waiting = !vmb_list_empty(&fs->pending);
		if (any) {
			pthread_mutex_unlock(&fs->lock);
			/* a bind waiting for a stream point (an unbind after a kernel's last use) runs
			 * here once the signals are out, no lock held, instead of waking a worker
			 * (sched.h, "Run-here scopes": at most VMB_SCHED_HERE_MAX) */
			vmb_sched_here_begin();
			vmb_list_for_each(pos, &done) {
				struct cu_slot *s = vmb_container_of(pos, struct cu_slot, link);
				if (!s->wait) {
					vmb_signalling_begin();
					vmb_fence_signal(s->fence, 0);
					vmb_signalling_end();
				}
				vmb_fence_unref(s->fence);
				s->fence = NULL;
			}
			vmb_sched_here_end(true);
			pthread_mutex_lock(&fs->lock);
			vmb_list_for_each_safe(pos, tmp, &done) {
				vmb_list_del(pos);
				slot_put(fs, vmb_container_of(pos, struct cu_slot, link));
			}
			last = now_ns();
			continue;
		}
		if (!waiting) {
			pthread_cond_wait(&fs->cond, &fs->lock);
			last = now_ns();
			seen = fs->added;
			continue;
		}
		if (fs->added != seen) { /* a new slot: spin again */
			seen = fs->added;
			last = now_ns();
		}
		pthread_mutex_unlock(&fs->lock);
		int64_t quiet = now_ns() - last;
		if (quiet < WATCH_SPIN_NS) {
			for (int i = 0; i < 32; i++)
				vmb_cpu_relax();
		} else {
			pause_ns(quiet < WATCH_SLOW_NS ? WATCH_STEP_NS : WATCH_SLOW_STEP_NS);
		}
		pthread_mutex_lock(&fs->lock);
	}
	pthread_mutex_unlock(&fs->lock);
	return NULL;
}

/* Pages of destroyed devices, for the next device of their context (struct cu_page). */
static pthread_mutex_t parked_lock = PTHREAD_MUTEX_INITIALIZER;
static struct cu_page *parked;

/*
 * A parked page of @cd's context that the driver still knows (the context was not destroyed or
 * reset meanwhile: then its memory went with it), or a new one; NULL with *@r set on failure.
 * "Still knows" is the same allocation, not only pinned memory at the same address (after a
 * reset the application's own pinned memory may be there): its BUFFER_ID, which the driver
 * never gives two allocations of a process, is the one read at allocation. A driver that gave
 * none then: the address check alone.
 */
static struct cu_page *page_get(struct cu_device *cd, CUresult *r)
{
	const struct vmb_cu *cu = cd->cu;
	struct cu_page *pg = NULL, **pp;
	CUdeviceptr dptr = 0;

	pthread_mutex_lock(&parked_lock);
	for (pp = &parked; *pp && !pg;) {
		struct cu_page *q = *pp;
		if (q->ctx != cd->ctx) {
			pp = &q->next;
			continue;
		}
		*pp = q->next;
		unsigned long long id = 0;
		if (!cu->cuMemHostGetDevicePointer(&dptr, (void *)q->host, 0) && dptr == q->dptr &&
		    (!q->buffer_id ||
		     (!cu->cuPointerGetAttribute(&id, CU_POINTER_ATTRIBUTE_BUFFER_ID, (CUdeviceptr)(uintptr_t)q->host) &&
		      id == q->buffer_id)))
			pg = q;
		else
			free(q); /* its context was destroyed or reset meanwhile, and its memory with it */
	}
	pthread_mutex_unlock(&parked_lock);
	if (pg) {
		pg->next = NULL;
		return pg;
	}
	if (!(pg = calloc(1, sizeof(*pg)))) {
		*r = CUDA_ERROR_OUT_OF_MEMORY;
		return NULL;
	}
	void *host = NULL;
	*r = cu->cuMemHostAlloc(&host, CU_SLOTS * sizeof(uint64_t), CU_MEMHOSTALLOC_PORTABLE | CU_MEMHOSTALLOC_DEVICEMAP);
	if (!*r && (*r = cu->cuMemHostGetDevicePointer(&pg->dptr, host, 0)))
		cu->cuMemFreeHost(host); /* (nothing uses it yet) */
	if (*r) {
		free(pg);
		return NULL;
	}
	if (cu->cuPointerGetAttribute(&pg->buffer_id, CU_POINTER_ATTRIBUTE_BUFFER_ID, (CUdeviceptr)(uintptr_t)host))
		pg->buffer_id = 0;
	memset(host, 0, CU_SLOTS * sizeof(uint64_t));
	pg->host = host;
	pg->ctx = cd->ctx;
	return pg;
}

static void page_park(struct cu_page *pg)
{
	pthread_mutex_lock(&parked_lock);
	pg->next = parked;
	parked = pg;
	pthread_mutex_unlock(&parked_lock);
}

int cu_fences_init(struct cu_device *cd)
{
	struct cu_fences *fs = &cd->fences;
	const struct vmb_cu *cu = cd->cu;
	CUresult r = CUDA_SUCCESS;

	fs->cu = cu;
	fs->ctx = cd->ctx;
	struct cu_page *pg = (r = cu_enter(cd)) ? NULL : page_get(cd, &r);
	cu_leave(cd);
	if (!pg)
		return r == CUDA_ERROR_OUT_OF_MEMORY ? -ENOMEM : -ENODEV;
	fs->page = pg;
	fs->host = pg->host;
	fs->dptr = pg->dptr;
	/* free: every slot no stream still owes a write (one still owed stays out of use: a late
	 * write of its old value would undo a newer one; the next park looks at it again) */
	fs->nfree = 0;
	for (uint32_t i = CU_SLOTS; i-- > 0;) {
		if (pg->owed[i] && slot_read(fs, i) >= pg->owed[i])
			pg->owed[i] = 0;
		if (!pg->owed[i])
			fs->free_idx[fs->nfree++] = i;
	}
	vmb_list_init(&fs->pending);
	vmb_list_init(&fs->fired);
	pthread_mutex_init(&fs->lock, NULL);
	pthread_cond_init(&fs->cond, NULL);
	/* the library's threads take no signals (as vmb_thread_create's) */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int e = pthread_create(&fs->thread, NULL, watcher_main, fs);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (e) {
		pthread_cond_destroy(&fs->cond);
		pthread_mutex_destroy(&fs->lock);
		page_park(pg);
		fs->page = NULL;
		return -EAGAIN;
	}
	fs->started = true;
	return 0;
}

void cu_fences_fini(struct cu_device *cd)
{
	struct cu_fences *fs = &cd->fences;
	if (!fs->started)
		return;
	pthread_mutex_lock(&fs->lock);
	fs->stop = true;
	pthread_cond_signal(&fs->cond);
	pthread_mutex_unlock(&fs->lock);
	pthread_join(fs->thread, NULL);
	/* the device's own work first (a PREFETCH copy's point is on its stream): then every point
	 * it reached is seen below */
	cu_enter_own(cd);
	cd->cu->cuStreamSynchronize(cd->stream);
	cu_leave(cd);
	/* wait slots whose fence never signalled: their callbacks go, and the streams waiting there
	 * are released (the slot gets the value they wait for). Under the lock: the fence of a slot
	 * further on may be signalling on another thread now, its callback adding to `fired`. */
	for (uint32_t i = 0; i < CU_SLOTS; i++) {
		struct cu_slot *s = &fs->slots[i];
		if (s->wait && s->fence && vmb_fence_remove_callback(s->fence, &s->cb)) {
			slot_write(fs, i, s->gen);
			pthread_mutex_lock(&fs->lock);
			vmb_list_add_tail(&s->link, &fs->fired);
			pthread_mutex_unlock(&fs->lock);
		}
	}
	struct vmb_list *pos, *tmp;
	vmb_list_for_each_safe(pos, tmp, &fs->fired) {
		struct cu_slot *s = vmb_container_of(pos, struct cu_slot, link);
		vmb_list_del(pos);
		vmb_fence_unref(s->fence);
		s->fence = NULL;
	}
	/* signal points: one the stream has reached (its slot written, the watcher had not looked
	 * yet) is done, 0; one not reached is owed and fails, the device gone */
	vmb_list_for_each_safe(pos, tmp, &fs->pending) {
		struct cu_slot *s = vmb_container_of(pos, struct cu_slot, link);
		vmb_list_del(pos);
		bool reached = slot_read(fs, s->idx) >= s->gen;
		if (!reached)
			fs->page->owed[s->idx] = s->gen; /* the stream may still write it */
		vmb_fence_signal(s->fence, reached ? 0 : -ENODEV);
		vmb_fence_unref(s->fence);
		s->fence = NULL;
	}
	/* not freed: cuMemFreeHost would wait for every stream of the context (the application's
	 * too, blocked on a gate, say), and a stream may still get to a slot (struct cu_page) */
	page_park(fs->page);
	fs->page = NULL;
	pthread_cond_destroy(&fs->cond);
	pthread_mutex_destroy(&fs->lock);
	fs->started = false;
}

int cu_stream_wait(struct vmb_device *d, uint64_t stream, struct vmb_fence *const *f, unsigned int nf,
		   const struct vmb_sync *uf, unsigned int nv)
{
	struct cu_device *cd = to_cu(d);
	struct cu_fences *fs = &cd->fences;
	const struct vmb_cu *cu = cd->cu;
	CUstream st = (CUstream)(uintptr_t)stream;
	CUdeviceptr dptr = 0;
	CUresult r = CUDA_SUCCESS;
	struct vmb_list mine, *pos, *tmp;

	/* all or nothing: every user fence's device address, then every slot, before anything is
	 * queued (the device reads only host memory the driver pinned and mapped) */
	if (cu_enter(cd)) {
		cu_leave(cd);
		return -EINVAL; /* (as a stream the driver rejects) */
	}
	for (unsigned int i = 0; i < nv && !r; i++)
		r = cu->cuMemHostGetDevicePointer(&dptr, (void *)(uintptr_t)uf[i].addr, 0);
	if (r) {
		cu_leave(cd);
		return -EFAULT;
	}
	vmb_list_init(&mine);
	pthread_mutex_lock(&fs->lock);
	bool room = fs->nfree >= nf;
	for (unsigned int i = 0; room && i < nf; i++)
		vmb_list_add_tail(&slot_get(fs, true)->link, &mine); /* (on no other list while taken) */
	pthread_mutex_unlock(&fs->lock);
	if (!room) {
		cu_leave(cd);
		return -EAGAIN;
	}
	for (unsigned int i = 0; i < nv && !r; i++)
		if (!(r = cu->cuMemHostGetDevicePointer(&dptr, (void *)(uintptr_t)uf[i].addr, 0)))
			r = cu->cuStreamWaitValue64(st, dptr, uf[i].value, CU_STREAM_WAIT_VALUE_GEQ);
	pos = mine.next;
	for (unsigned int i = 0; i < nf && !r; i++, pos = pos->next) {
		struct cu_slot *s = vmb_container_of(pos, struct cu_slot, link);
		r = cu->cuStreamWaitValue64(st, fs->dptr + s->idx * sizeof(uint64_t), s->gen, CU_STREAM_WAIT_VALUE_GEQ);
		if (!r) {
			vmb_fence_get(f[i]);
			s->fence = f[i]; /* queued */
		}
	}
	cu_leave(cd);
	/* a queued slot's fence writes it when it signals (at once if it has); one not queued (the
	 * driver refused) is written now, values only growing, and goes back */
	vmb_list_for_each_safe(pos, tmp, &mine) {
		struct cu_slot *s = vmb_container_of(pos, struct cu_slot, link);
		vmb_list_del(pos);
		if (s->fence) {
			if (vmb_fence_add_callback(s->fence, &s->cb, wait_fired))
				wait_fired(s->fence, &s->cb); /* already signalled */
		} else {
			slot_write(fs, s->idx, s->gen);
			pthread_mutex_lock(&fs->lock);
			slot_put(fs, s);
			pthread_mutex_unlock(&fs->lock);
		}
	}
	return r ? -EINVAL : 0;
}

int cu_signal_on(struct cu_device *cd, CUstream stream, struct vmb_fence *f)
{
	struct cu_fences *fs = &cd->fences;

	pthread_mutex_lock(&fs->lock);
	struct cu_slot *s = slot_get(fs, false);
	pthread_mutex_unlock(&fs->lock);
	if (!s)
		return -EAGAIN;
	s->fence = f;
	vmb_fence_get(f); /* the watcher's */
	CUresult r = stream == cd->stream ? cu_enter_own(cd) : cu_enter(cd); /* its context's */
	if (!r)
		r = cd->cu->cuStreamWriteValue64(stream, fs->dptr + s->idx * sizeof(uint64_t), s->gen,
						 CU_STREAM_WRITE_VALUE_DEFAULT);
	cu_leave(cd);
	pthread_mutex_lock(&fs->lock);
	if (r) {
		slot_write(fs, s->idx, s->gen); /* the next use waits for a larger value */
		s->fence = NULL;
		slot_put(fs, s);
	} else {
		vmb_list_add_tail(&s->link, &fs->pending);
		fs->added++;
		pthread_cond_signal(&fs->cond);
	}
	pthread_mutex_unlock(&fs->lock);
	if (r) {
		vmb_fence_put(f); /* not the last: the caller's */
		return -EINVAL;
	}
	return 0;
}

int cu_stream_signal(struct vmb_device *d, uint64_t stream, struct vmb_fence **out)
{
	struct vmb_fence *f = vmb_fence_create();
	if (!f)
		return -ENOMEM;
	int err = cu_signal_on(to_cu(d), (CUstream)(uintptr_t)stream, f);
	if (err) {
		vmb_fence_unref(f);
		return err;
	}
	*out = f;
	return 0;
}
