/* SPDX-License-Identifier: MIT */
/*
 * Syncobjs (containers of a fence: binary, or timeline with points) and user fences (a 64-bit
 * memory location and a value): argument shapes, modelled on DRM's syncobj ioctls and Xe's
 * user-fence wait.
 *
 * A syncobj's fence is "submitted" once some work (or a signal call) has put one there;
 * waiting on a syncobj (or timeline point) that has none is -EINVAL unless the wait says
 * VMB_SYNCOBJ_WAIT_FOR_SUBMIT or VMB_SYNCOBJ_WAIT_AVAILABLE (both wait for it). Timeline points are added in increasing order: a point that is
 * not above the timeline's last one is -EINVAL. Point p of a timeline is complete once the
 * fences of every point up to the first point >= p have signalled; the timeline's value
 * (query) is its highest complete point.
 *
 * Each point goes to one call: a call that will signal a point (a bind's, barrier's or exec's
 * out-sync, a timeline signal, a transfer) claims it when it checks it, in one step, so a second
 * call naming the same point (or a lower one) gets -EINVAL even while the first is still
 * preparing or waiting in the call. A claimed point, and every later one, is not submitted
 * until the claiming call has installed its fence; a call that fails gives its claims back.
 */
#ifndef VMBIND_SYNC_H
#define VMBIND_SYNC_H

#include <vmbind/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define VMB_SYNCOBJ_CREATE_SIGNALED (1u << 0)
#define VMB_SYNCOBJ_CREATE_TIMELINE (1u << 1)

struct vmb_client;

struct vmb_syncobj_create {
	uint32_t flags;  /* [in] VMB_SYNCOBJ_CREATE_* */
	uint32_t handle; /* [out] */
	uint64_t reserved;
};

struct vmb_syncobj_destroy {
	uint32_t handle; /* [in] */
	uint32_t pad;
	uint64_t reserved;
};

#define VMB_SYNCOBJ_WAIT_ALL (1u << 0)            /* all, else any */
#define VMB_SYNCOBJ_WAIT_FOR_SUBMIT (1u << 1)     /* wait for a fence to appear at the point */
#define VMB_SYNCOBJ_WAIT_AVAILABLE (1u << 2)      /* a fence at the point is enough (waited
						   * for if none yet, as DRM's) */
#define VMB_SYNCOBJ_WAIT_RELATIVE (1u << 3)       /* timeout_ns is relative, else absolute */

struct vmb_syncobj_wait {
	uint64_t handles;        /* [in] pointer to uint32_t[count] */
	uint64_t points;         /* [in] pointer to uint64_t[count] (timelines), or 0 for binary */
	int64_t timeout_ns;      /* [in/out] CLOCK_MONOTONIC deadline, or relative with WAIT_RELATIVE
				  * (then updated with the time left on -EINTR) */
	uint32_t count;          /* [in] */
	uint32_t flags;          /* [in] VMB_SYNCOBJ_WAIT_* */
	uint32_t first_signaled; /* [out] with any: index of a signalled syncobj */
	uint32_t pad;
	uint64_t reserved;
};

/* Reset, signal, timeline signal, query: an array of handles (and of points, see below). */
struct vmb_syncobj_array {
	uint64_t handles; /* [in] pointer to uint32_t[count] */
	uint64_t points;  /* timeline_signal [in], query [out]: pointer to uint64_t[count] (a
			   * binary syncobj's entry too); reset, signal: 0 */
	uint32_t count;   /* [in] */
	uint32_t flags;   /* [in] none defined yet: must be 0 */
	uint64_t reserved;
};

/*
 * The status of the fence behind each syncobj (at a point for timelines), as a sync_file's
 * (dma_fence_get_status): whether the work that signals it is done, and whether it failed.
 */
#define VMB_SYNCOBJ_STATUS_PENDING 0 /* not complete: pending, or nothing submitted */
#define VMB_SYNCOBJ_STATUS_OK 1      /* complete, without error */
/* any other value: complete, with that negative errno (the work's error) */

struct vmb_syncobj_status {
	uint64_t handles; /* [in] pointer to uint32_t[count] */
	uint64_t points;  /* [in] pointer to uint64_t[count]: the point of a timeline entry, 0 for a
			   * binary one; or 0 when all are binary */
	uint64_t status;  /* [out] pointer to int32_t[count]: VMB_SYNCOBJ_STATUS_* or -errno */
	uint32_t count;   /* [in] */
	uint32_t flags;   /* [in] none defined yet: must be 0 */
	uint64_t reserved[2];
};

/* Move the fence of src (at src_point) to dst (at dst_point): binary <-> timeline. */
struct vmb_syncobj_transfer {
	uint32_t src_handle, dst_handle; /* [in] */
	uint64_t src_point, dst_point;   /* [in] 0 for binary */
	uint32_t flags;                  /* [in] none defined yet: must be 0 */
	uint32_t pad;
	uint64_t reserved;
};

/* Export to / import from a file descriptor that poll() reports readable once signalled. */
struct vmb_syncobj_fd {
	uint32_t handle; /* [in] export, [out] import */
	uint32_t flags;  /* [in] none defined yet: must be 0 */
	int32_t fd;      /* [out] export, [in] import */
	uint32_t pad;
	uint64_t point;  /* [in] export: timeline point, 0 for binary; import: 0 */
	uint64_t reserved;
};

/* User-fence wait, as Xe's: passes when (*addr & mask) OP (value & mask), unsigned 64-bit:
 * bits outside the mask count on neither side (SEM_WAIT compares the same way). */
#define VMB_UFENCE_OP_EQ 0u
#define VMB_UFENCE_OP_NEQ 1u
#define VMB_UFENCE_OP_GT 2u
#define VMB_UFENCE_OP_GTE 3u
#define VMB_UFENCE_OP_LT 4u
#define VMB_UFENCE_OP_LTE 5u

#define VMB_UFENCE_WAIT_ABSTIME (1u << 0) /* timeout is a CLOCK_MONOTONIC deadline */
#define VMB_UFENCE_WAIT_BO (1u << 1)      /* the location is in BO bo_handle, at offset addr */

struct vmb_user_fence_wait {
	uint64_t addr;    /* [in] 8-byte aligned address of the 64-bit location; with
			   * VMB_UFENCE_WAIT_BO its offset in the BO (8-byte aligned, inside it) */
	uint64_t value;   /* [in] */
	uint64_t mask;    /* [in] */
	int64_t timeout;  /* [in/out] ns; relative timeouts are updated with the time left */
	uint16_t op;      /* [in] VMB_UFENCE_OP_* */
	uint16_t flags;   /* [in] VMB_UFENCE_WAIT_* */
	uint32_t bo_handle; /* [in] with VMB_UFENCE_WAIT_BO: the BO holding the fence; else 0 */
	uint32_t exec_queue_id; /* [in] 0, or an exec queue: the wait fails with -EIO once it is
				 * banned (Xe's exec_queue_id) */
	uint32_t pad;
	uint64_t exec_queue_serial; /* [in] 0, or that queue's serial (queue.h; was reserved):
				     * another queue under the id is -ENOENT */
};

#define VMB_SYNCOBJ_WAIT_MAX 1024u /* handles per wait */
#define VMB_SYNCOBJ_ARRAY_MAX 1024u /* handles per reset/signal/query */

/* Returns: 0; -EINVAL (flags, reserved); -ENOMEM. A timeline keeps a spare point record from
 * its creation, for a bind that must not fail for lack of memory (docs/UAPI.md, "Unbind under
 * memory pressure"). */
VMB_API int vmb_syncobj_create(struct vmb_client *c, struct vmb_syncobj_create *args);
/* Returns: 0; -EINVAL (pad, reserved); -ENOENT. Work that will signal its fence is not affected. */
VMB_API int vmb_syncobj_destroy(struct vmb_client *c, struct vmb_syncobj_destroy *args);
/*
 * Wait for all (WAIT_ALL) or any of @count syncobjs (at `points` for timelines, 0 for binary).
 * A binary syncobj is waited for at the fence it holds when the call begins (with
 * WAIT_FOR_SUBMIT and none there: the first one submitted during the call), as DRM's: a reset,
 * signal or new submission meanwhile does not change what the call waits for.
 * Absolute timeouts in the past poll; relative ones must not be negative. Returns: 0; -ETIME;
 * -EINTR (a signal handler ran: call again with the same struct; a relative timeout_ns has
 * been updated with the time left, so the restarts end at the first call's deadline);
 * -EINVAL (flags, pad, reserved, count 0 or above VMB_SYNCOBJ_WAIT_MAX, a point on a binary
 * syncobj or 0 on a timeline, a syncobj with no fence without WAIT_FOR_SUBMIT or
 * WAIT_AVAILABLE, negative
 * relative timeout); -EFAULT (NULL handles); -ENOENT; -ENOMEM; -ENODEV (vmb_client_close() of the client began:
 * the wait ended).
 */
VMB_API int vmb_syncobj_wait(struct vmb_client *c, struct vmb_syncobj_wait *args);
/* Binary syncobjs: drop the fence (reset) / put a signalled one (signal). points must be 0.
 * All handles are checked before any changes. Returns: 0; -EINVAL (a timeline, points given,
 * flags, reserved, count 0 or above VMB_SYNCOBJ_ARRAY_MAX); -EFAULT (handles 0); -ENOENT;
 * -ENOMEM. */
VMB_API int vmb_syncobj_reset(struct vmb_client *c, struct vmb_syncobj_array *args);
VMB_API int vmb_syncobj_signal(struct vmb_client *c, struct vmb_syncobj_array *args);
/* Timeline syncobjs: signal each at points[i] (above its last point), from the CPU. All handles
 * and points are checked before any changes. Returns: 0; -EINVAL (a binary syncobj, points 0, a
 * point not above the timeline's last one or claimed by a call in flight, points in one call
 * that do not go up for the same timeline, flags, reserved, count); -EFAULT (handles 0);
 * -ENOENT; -ENOMEM. */
VMB_API int vmb_syncobj_timeline_signal(struct vmb_client *c, struct vmb_syncobj_array *args);
/* points[i] = the timeline's value; for a binary syncobj 1 if its fence signalled, else 0 (its
 * error: vmb_syncobj_query_status). Returns: 0; -EINVAL (points 0, flags, reserved, count); -EFAULT (handles 0); -ENOENT; -ENOMEM. */
VMB_API int vmb_syncobj_query(struct vmb_client *c, struct vmb_syncobj_array *args);
/*
 * status[i] = the status of the fence behind handles[i] (at points[i] for a timeline): 0
 * (VMB_SYNCOBJ_STATUS_PENDING) while it is not complete, including a binary syncobj with no
 * fence and a timeline point above the timeline's value; 1 (VMB_SYNCOBJ_STATUS_OK) once complete
 * without error; else the negative errno the work ended with: a bind whose device commit failed
 * (its error, e.g. -EIO, -ENOMEM), a bind pending on a banned vm (-EIO), one run at its vm's
 * destruction (-ECANCELED), an exec that failed (docs/COMMANDS.md: -EFAULT, -ETIMEDOUT, ...) or
 * was cancelled (-ECANCELED). A timeline point's status is that of the fence that completed it
 * (the fence of the first point at or above it), kept after the fence is gone: each point its
 * own, an earlier point's failure is not a later point's; a timeline keeps the ranges of its last
 * 64 failed fences exactly, and merges older ones (a point between two merged failures reports
 * the older error). Returns: 0; -EINVAL (flags, reserved, count 0 or above
 * VMB_SYNCOBJ_ARRAY_MAX, a point on a binary syncobj or 0 on a timeline); -EFAULT (handles 0,
 * status 0); -ENOENT; -ENOMEM.
 */
VMB_API int vmb_syncobj_query_status(struct vmb_client *c, struct vmb_syncobj_status *args);
/* dst (at dst_point) gets the fence of src at src_point, with its error (a source point that
 * waits for several fences: the first error among them). Returns: 0; -EINVAL (flags, pad,
 * reserved, points that do not fit the kinds, nothing submitted at the source, a destination
 * point not above the timeline's last or claimed by a call in flight); -ENOENT; -ENOMEM. */
VMB_API int vmb_syncobj_transfer(struct vmb_client *c, struct vmb_syncobj_transfer *args);
/*
 * A new eventfd that poll() reports readable once the syncobj's fence (at point) signals; it
 * then stays readable (a read returns 1). The library holds one descriptor per pending fence
 * that has been exported, whatever the number of exports of it, until the fence signals (a
 * timeline point that waits for several fences is a new fence at each export). Returns: 0;
 * -EINVAL (flags, pad, reserved, a point that does not fit the kind, nothing submitted);
 * -ENOENT; -ENOMEM; -EMFILE, -ENFILE (no file descriptor left).
 */
VMB_API int vmb_syncobj_export_fd(struct vmb_client *c, struct vmb_syncobj_fd *args);
/* A new binary syncobj whose fence signals once @fd (any pollable descriptor) is readable.
 * Returns: 0; -EINVAL (flags, pad, reserved, point); -EBADF (not an open descriptor); -EPERM
 * (one that cannot be polled); -ELOOP (an epoll descriptor nested too deep); -ENOMEM; -EMFILE,
 * -ENFILE (no file descriptor left, the library's duplicate included); -ENOSPC (the system's
 * limit of epoll watches, /proc/sys/fs/epoll/max_user_watches); -EAGAIN (the thread that
 * watches imported descriptors could not start: the first pending import starts it). */
VMB_API int vmb_syncobj_import_fd(struct vmb_client *c, struct vmb_syncobj_fd *args);

/*
 * Wait until (*(uint64_t *)addr & mask) OP (value & mask). The location is written by the library
 * (bind and exec out-syncs), which wakes the waiters; a write by the application itself is seen
 * at the next such wake-up or at the timeout. Relative timeouts (ns; negative: no limit) are
 * updated with the time left, so a call interrupted by a signal (-EINTR) can be restarted
 * as is. With VMB_UFENCE_WAIT_BO the location is a BO's (a fence of VMB_SYNC_BO_USER_FENCE,
 * perhaps written by another process's work on a shared BO): the wait holds the BO's pages, so
 * destroying the BO meanwhile does not end it. With exec_queue_id, the wait is tied to that
 * exec queue, as Xe's: it holds the queue, and once the queue is banned (a job's error, or its
 * destruction) a comparison that does not hold ends the wait with -EIO (a ban wakes the waits).
 * Returns: 0; -ETIME; -EINTR; -EINVAL (op, flags, bo_handle without VMB_UFENCE_WAIT_BO, pad,
 * exec_queue_serial without exec_queue_id, addr 0 or not 8-byte aligned; with
 * VMB_UFENCE_WAIT_BO: bo_handle 0, offset not 8-byte aligned or past the BO's end); -ENOENT (an
 * unknown BO or exec queue; exec_queue_serial not 0 and not the queue's); -EFAULT (addr not
 * mapped readable; inside the client's CPU map of a BO it is read through the BO's pages, never
 * -EFAULT); -EIO (the exec queue is banned); -EOPNOTSUPP (VMB_UFENCE_WAIT_BO on a device without
 * VMB_CAP_USER_FENCE_BO: CUDA); -ENODEV (vmb_client_close() of the client began: the wait ended).
 */
VMB_API int vmb_user_fence_wait(struct vmb_client *c, struct vmb_user_fence_wait *args);

#ifdef __cplusplus
}
#endif
#endif
