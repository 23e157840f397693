/* SPDX-License-Identifier: MIT */
/*
 * Syncobjs, after DRM's: a container of a fence that calls swap, so "the fence of the latest
 * submission" has a stable name (a handle).
 *
 * - Binary: at most one fence. Out-syncs replace it, reset drops it, signal puts a signalled one.
 * - Timeline: points (u64) added in increasing order, each with a fence. Point p is complete
 *   when the fence of the first point >= p and the fences of every earlier point have signalled
 *   (a timeline signals in order even when its fences do not). `value` (the payload) is the
 *   highest complete point; nodes at the head whose fences signalled are pruned into it.
 *
 * A point (or the binary fence) is "submitted" once a fence exists for it: waits with
 * WAIT_FOR_SUBMIT sleep until then (each change notifies the registered waiters' events).
 *
 * Claims: a call that will signal a point (an out-sync of a bind or exec, a timeline signal)
 * claims it first: the check that the point is above `last` and its insertion are one step
 * under `lock`, so of two calls naming the same point exactly one gets it, however long the
 * winner takes to prepare. A claimed point is a node without a fence: until the claimant fills
 * it (vmb_syncobj_fill_point) or releases it (on failure), that point and every later one are
 * not submitted (-ENOENT to readers), and pruning stops there.
 *
 * Errors: a timeline keeps what its pruned points' fences signalled with, so a point's fence
 * status (vmb_syncobj_status) is known after the fence has gone: each failed fence's node moves
 * to `failed` as the range of points it completed, [lo, point], with its error. At most
 * VMB_TL_FAILED_MAX ranges: one more merges the two oldest into one range with the older error
 * (a point between them that succeeded then reports that error; never success for a failure).
 *
 * Locking: `lock` protects fence, points (and each node's fence), value, last, failed, nfailed,
 * waiters (and each waiter's fence).
 */
#ifndef VMB_SYNC_SYNCOBJ_H
#define VMB_SYNC_SYNCOBJ_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/list.h"
#include "sync/event.h"
#include "sync/fence.h"
#include "sync/stop.h"

struct vmb_tl_point {
	struct vmb_list link;
	uint64_t point;
	struct vmb_fence *fence; /* a reference; NULL while only claimed (and once in `failed`) */
	uint64_t lo;             /* in `failed`: the lowest point its fence completed */
	int error;               /* in `failed`: the errno its fence signalled with */
};

#define VMB_TL_FAILED_MAX 64 /* error ranges a timeline keeps */

/* A wait registered on a syncobj: told of every change. On a binary syncobj the wait is for one
 * fence, as DRM's (drm_syncobj_array_wait takes each fence once): the one the syncobj held when
 * the waiter registered, or else the first one put there after (a reset, signal or new
 * submission later does not change it). */
struct vmb_syncobj_waiter {
	struct vmb_list link;
	struct vmb_event *ev;
	struct vmb_fence *fence; /* binary: the fence waited for (a reference), NULL until one is
				  * submitted; written under the syncobj's lock */
};

struct vmb_syncobj {
	atomic_uint refs;
	bool timeline;
	pthread_mutex_t lock;
	struct vmb_fence *fence; /* binary: a reference, or NULL */
	struct vmb_list points;  /* timeline: struct vmb_tl_point, ascending, head unsignalled */
	uint64_t value;          /* timeline: highest complete point */
	uint64_t last;           /* timeline: highest point added */
	struct vmb_list failed;  /* timeline: pruned nodes whose fence failed, ascending */
	unsigned int nfailed;
	struct vmb_list waiters; /* struct vmb_syncobj_waiter */
	struct vmb_tl_point *spare; /* timeline: a point record kept for a call without memory
				     * (an unbind must not fail: docs/UAPI.md); a pruned point refills
				     * it (lock) */
};

int vmb_syncobj_new(bool timeline, struct vmb_syncobj **out);
/* Timeline: its spare point record (the caller's now, to claim a point with), or NULL. */
struct vmb_tl_point *vmb_syncobj_take_spare(struct vmb_syncobj *s);
static inline void vmb_syncobj_get(struct vmb_syncobj *s) { atomic_fetch_add(&s->refs, 1); }
void vmb_syncobj_put(struct vmb_syncobj *s);

/* Binary: make @f (NULL: none) the fence. */
void vmb_syncobj_replace(struct vmb_syncobj *s, struct vmb_fence *f);
/* Timeline: is @point above the last point now? A hint for the order of errors only: another
 * call may claim it before this one does; the claim is the check that counts. */
bool vmb_syncobj_point_ok(struct vmb_syncobj *s, uint64_t point);
/*
 * Timeline: claim @point with @node (the caller's memory, in the timeline until filled or
 * released): 0, or -EINVAL if @point is not above the last point (claimed or added).
 */
int vmb_syncobj_claim_point(struct vmb_syncobj *s, uint64_t point, struct vmb_tl_point *node);
/* Give a claimed @node its fence @f (a reference is taken); the timeline then owns @node. */
void vmb_syncobj_fill_point(struct vmb_syncobj *s, struct vmb_tl_point *node, struct vmb_fence *f);
/* Take a claimed (unfilled) @node out again; the caller frees it. */
void vmb_syncobj_release_point(struct vmb_syncobj *s, struct vmb_tl_point *node);
/* Claim and fill in one step: 0 or -EINVAL (then @node is the caller's still). */
int vmb_syncobj_add_point(struct vmb_syncobj *s, uint64_t point, struct vmb_fence *f, struct vmb_tl_point *node);
/* Timeline: the payload. */
uint64_t vmb_syncobj_value(struct vmb_syncobj *s);
/*
 * The status of the fence behind @point (0 for binary), as vmb_fence_status(): 0 while not
 * complete (pending, or nothing submitted: a binary syncobj without a fence, a timeline point
 * above the value), else 1 or the negative errno the fence that completed it signalled with.
 * A timeline point completed by a fence is reported with that fence's error even after the
 * fence is pruned (see "Errors" above); each point its own: an earlier point's failure does
 * not make a later point fail.
 */
int vmb_syncobj_status(struct vmb_syncobj *s, uint64_t point);

/*
 * The unsignalled fences that @point (0 for binary) still waits for: @fn(arg, fence) for each,
 * under the syncobj lock. 0, -ENOENT (not submitted), or the first error @fn returned.
 */
int vmb_syncobj_for_each_dep(struct vmb_syncobj *s, uint64_t point, int (*fn)(void *arg, struct vmb_fence *f),
			     void *arg);
/* One fence for @point's completion (a new reference): @stub if complete, or a new signalled
 * fence with the error if complete with one (vmb_syncobj_status); else the fence the point waits
 * for, or one that signals with the first error among the fences it waits for (vmb_fence_all;
 * a fence among them that already failed counts: a timeline point whose own fence failed before
 * an earlier point's signalled ends with that error). Read under one hold of the lock.
 * 0, -ENOENT, -ENOMEM. */
int vmb_syncobj_fence(struct vmb_syncobj *s, uint64_t point, struct vmb_fence *stub, struct vmb_fence **out);

#define VMB_WAIT_ALL (1u << 0)
#define VMB_WAIT_FOR_SUBMIT (1u << 1)
#define VMB_WAIT_AVAILABLE (1u << 2)
/*
 * Wait for @n syncobjs at @points (NULL: all 0): all or any (@first: the index of one that is
 * done). Returns 0, -EINVAL (not submitted, and neither WAIT_FOR_SUBMIT nor WAIT_AVAILABLE: either
 * waits for the submission, as DRM's), -ETIME, -EINTR, -ENOMEM, or the errno of @stop (may be
 * NULL) once it fires.
 */
int vmb_syncobj_wait_many(struct vmb_syncobj *const *objs, const uint64_t *points, unsigned int n,
			  uint32_t flags, int64_t deadline_ns, bool interruptible, struct vmb_stop *stop,
			  uint32_t *first);

#endif
