/* SPDX-License-Identifier: MIT */
/*
 * The CUDA device's shared state (cuda.c: memory and vms; stream.c: the fence page and the
 * streams of include/vmbind/cuda.h). Only files of src/dev/cuda/ include this header.
 *
 * Locking: everything here is written at create and read-only afterwards, but for the fence
 * page's own state (struct cu_fences: its lock, below) and `inject` (atomic).
 */
#ifndef VMB_DEV_CUDA_CUDA_H
#define VMB_DEV_CUDA_CUDA_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "core/list.h"
#include "dev/core.h"
#include "dev/cuda/loader.h"

/* Slots of the fence page: one u64 each, host-pinned and mapped for the device. */
#define CU_SLOTS 4096u

/*
 * A slot in use: a stream waits on it (`wait`: its fence's callback writes `gen` there) or writes
 * to it (a stream_signal: the watcher signals `fence` once it reads `gen` there).
 */
struct cu_slot {
	struct vmb_fence_cb cb;
	struct cu_fences *fs;
	struct vmb_fence *fence; /* a reference */
	uint64_t gen;            /* the value that means "passed" */
	uint32_t idx;
	bool wait;
	struct vmb_list link;    /* fs->pending (signal slots) or fs->fired (wait slots); lock */
};

/*
 * The fence page and its watcher thread. `lock` protects the free list, the generations, both
 * lists and `stop`; it is taken in fence callbacks (after the fence lock), so nothing here
 * calls into a fence while holding it. The watcher signals fences without it.
 */
/*
 * The pinned page itself and what must outlive a device instance: the page stays allocated for
 * the life of the process (freeing it would synchronise the whole context, i.e. wait for the
 * application's streams, and a stream may still write or wait on it after the device is gone).
 * A device destroyed parks its page (stream.c); the next device of the same context takes it
 * back, with each slot's generation (values only grow) and what streams still owe it.
 */
struct cu_page {
	struct cu_page *next;    /* the parked list (stream.c's lock) */
	CUcontext ctx;           /* the context the page was allocated in */
	volatile uint64_t *host; /* CU_SLOTS values; slot i only grows */
	CUdeviceptr dptr;        /* the same page, as the device reaches it */
	unsigned long long buffer_id; /* the driver's CU_POINTER_ATTRIBUTE_BUFFER_ID of it; 0: none */
	uint64_t gen[CU_SLOTS];  /* the last value handed out per slot */
	uint64_t owed[CU_SLOTS]; /* a stream_signal slot a stream may still write: its value; else 0 */
};

struct cu_fences {
	const struct vmb_cu *cu;
	CUcontext ctx;
	volatile uint64_t *host; /* page->host */
	CUdeviceptr dptr;        /* page->dptr */
	struct cu_page *page;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	uint32_t free_idx[CU_SLOTS], nfree;
	struct cu_slot slots[CU_SLOTS];
	struct vmb_list pending, fired;
	uint64_t added;          /* signal slots added to `pending` so far (the watcher spins anew) */
	bool stop, started;
	pthread_t thread;
};

struct cu_device {
	struct vmb_device base;
	const struct vmb_cu *cu;
	CUdevice cudev;
	CUcontext ctx;        /* the primary context of device `ordinal` (retained) */
	CUcontext wctx;       /* the device's own context (own->ctx): its stream's work only */
	struct cu_own *own;   /* wctx and stream, parked at destroy for the next device (cuda.c) */
	int ordinal;
	CUstream stream;      /* wctx's non-blocking stream: zeroing, PREFETCH copies, the GPU view */
	uint64_t gran;        /* the allocation granularity: 2 MiB */
	int host_numa;        /* the NUMA node of SYSTEM allocations */
	CUmemGenericAllocationHandle zero; /* the NULL page: gran bytes of zeros, mapped read-only */
	struct cu_fences fences;
};

static inline struct cu_device *to_cu(struct vmb_device *d)
{
	return (struct cu_device *)d;
}

/*
 * The primary context current on the calling thread (push), and back (pop). cu_enter returns
 * the push's result: on a failure the caller makes no call that needs the context (its own
 * error instead), and its cu_leave pops nothing. Every cu_enter has its cu_leave.
 * cu_enter_own: the same with the device's own context (wctx), for work on cd->stream.
 *
 * Why a context of its own: the driver multiplexes a context's streams onto a few hardware
 * queues (CUDA_DEVICE_MAX_CONNECTIONS, 8 by default), each run in order, so work on one stream
 * can wait behind another stream's cuStreamWaitValue64 that was queued earlier on the same
 * queue (measured on the H100: a copy on a fresh stream never ran while 8 or more of the
 * context's streams waited on a value; stream priority did not help; a stream of another
 * context ran). Application streams wait on vmbind's fences there, and a fence may need this
 * device's own work (a PREFETCH copy, a BO's zeroing in a bind's prepare): on a stream of the
 * application's context, that is a deadlock the application cannot see. Another context's
 * queues are its own. Cost: the context's memory (~260 MiB of VRAM on the H100, its limits
 * lowered) and ~95 ms at the process's first open of the GPU; it is kept for the process's life
 * (cuda.c, struct cu_own: why).
 */
CUresult cu_enter(struct cu_device *cd);
CUresult cu_enter_own(struct cu_device *cd);
void cu_leave(struct cu_device *cd);

/* stream.c: the fence page and its watcher; 0, -ENOMEM, -EAGAIN. fini: after every stream op. */
int cu_fences_init(struct cu_device *cd);
void cu_fences_fini(struct cu_device *cd);
/* @f signals (0) once @stream's work so far is done; @f gets a reference of the watcher's. 0,
 * -EAGAIN (no free slot), -EINVAL (the driver refused). @stream: the device's own (cd->stream,
 * queued with its context current) or one of the application's. Allocates nothing. */
int cu_signal_on(struct cu_device *cd, CUstream stream, struct vmb_fence *f);
/* The device ops of the streams (device.h). */
int cu_stream_wait(struct vmb_device *d, uint64_t stream, struct vmb_fence *const *f, unsigned int nf,
		   const struct vmb_sync *uf, unsigned int nv);
int cu_stream_signal(struct vmb_device *d, uint64_t stream, struct vmb_fence **out);

#endif
