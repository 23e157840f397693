/* SPDX-License-Identifier: MIT */
/*
 * Description: syncobjs and user fences through the public calls: binary and timeline
 * syncobjs (create, destroy, wait any/all with absolute and relative timeouts, WAIT_FOR_SUBMIT,
 * WAIT_AVAILABLE, reset, signal, timeline signal and query, transfer, export to a pollable fd
 * and import of one, a watcher thread that will not start, the descriptors exports hold), a
 * timeline point that one call holds (claimed at parse, by a bind waiting in the call) refused
 * to every other path, a fence that a thread sleeps on as another call's in-fence, user-fence waits (every op under a
 * mask, timeouts updated in place; the mask applies to both sides, for CPU waits and GPU
 * SEM_WAIT alike), every call with bad arguments (precise errno, nothing changed), handle counts
 * at exactly their limits (accepted; one more refused), and waits
 * interrupted by signals and restarted to the same result (a relative one under a signal storm
 * still ends at its deadline). Waits on binary and timeline syncobjs mixed (ANY, ALL,
 * WAIT_FOR_SUBMIT, WAIT_AVAILABLE) against resets, signals and transfers, the handle destroyed
 * and its number reused while a wait runs, and failed fences (0, the errno in query_status).
 */
#include "lib/harness.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/alloc.h" /* vmb_thread_fail_after(): thread-start fault injection */
#include "core/client.h" /* the fence behind a syncobj handle, to see a waiter's mark */
#include "sync/fence.h"  /* VMB_FENCE_CONDVAR: whether waits can report -EINTR */
#include "sync/syncobj.h"
#include "uapi/sync.h" /* vmb_syncs_parse(): the sync array of a bind or exec, claimed at parse */

#define SEC 1000000000ll
#define MS 1000000ll

struct fixture {
	struct vmb_client *c;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	f->c = open_soft(64 * MiB, 64 * MiB);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	validate_client(f->c);
	assert_int_equal(vmb_client_close(f->c), 0);
	free(f);
	return 0;
}


static int arr(struct vmb_client *c, int (*fn)(struct vmb_client *, struct vmb_syncobj_array *), uint32_t *h,
	       uint64_t *points, uint32_t n)
{
	struct vmb_syncobj_array a = {.handles = (uint64_t)(uintptr_t)h, .points = (uint64_t)(uintptr_t)points,
				      .count = n};
	return fn(c, &a);
}

static uint64_t tl_value(struct vmb_client *c, uint32_t h)
{
	uint64_t v = ~0ull;
	assert_int_equal(arr(c, vmb_syncobj_query, &h, &v, 1), 0);
	return v;
}

static void test_create_destroy(void **state)
{
	struct fixture *f = *state;
	struct vmb_syncobj_create bad[] = {{.flags = 1u << 2}, {.flags = 1u << 31}, {.reserved = 1}};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(vmb_syncobj_create(f->c, &bad[i]), -EINVAL);
	assert_int_equal(vmb_syncobj_create(NULL, &bad[0]), -EINVAL);
	assert_int_equal(vmb_syncobj_create(f->c, NULL), -EINVAL);

	uint32_t h = syncobj_new(f->c, 0);
	struct vmb_syncobj_destroy d = {.handle = h, .pad = 1};
	assert_int_equal(vmb_syncobj_destroy(f->c, &d), -EINVAL);
	d = (struct vmb_syncobj_destroy){.handle = h, .reserved = 1};
	assert_int_equal(vmb_syncobj_destroy(f->c, &d), -EINVAL);
	d = (struct vmb_syncobj_destroy){.handle = h + 100};
	assert_int_equal(vmb_syncobj_destroy(f->c, &d), -ENOENT);
	d = (struct vmb_syncobj_destroy){.handle = 0};
	assert_int_equal(vmb_syncobj_destroy(f->c, &d), -ENOENT);
	d = (struct vmb_syncobj_destroy){.handle = h};
	assert_int_equal(vmb_syncobj_destroy(f->c, &d), 0);
	assert_int_equal(vmb_syncobj_destroy(f->c, &d), -ENOENT);
	/* handles are not reused at once */
	assert_int_not_equal(syncobj_new(f->c, 0), h);
}

static void test_binary(void **state)
{
	struct fixture *f = *state;
	uint32_t s = syncobj_new(f->c, VMB_SYNCOBJ_CREATE_SIGNALED);
	uint32_t u = syncobj_new(f->c, 0);
	uint64_t q;

	assert_int_equal(__syncobj_wait1(f->c, s, 0, 0, 0), 0);
	/* no fence, no WAIT_FOR_SUBMIT: it could never signal */
	assert_int_equal(__syncobj_wait1(f->c, u, 0, SEC, 0), -EINVAL);
	assert_int_equal(__syncobj_wait1(f->c, u, 0, 20 * MS, VMB_SYNCOBJ_WAIT_FOR_SUBMIT), -ETIME);
	q = 7;
	assert_int_equal(arr(f->c, vmb_syncobj_query, &u, &q, 1), 0);
	assert_int_equal(q, 0);
	assert_int_equal(arr(f->c, vmb_syncobj_signal, &u, NULL, 1), 0);
	assert_int_equal(arr(f->c, vmb_syncobj_query, &u, &q, 1), 0);
	assert_int_equal(q, 1);
	syncobj_wait1(f->c, u);
	assert_int_equal(arr(f->c, vmb_syncobj_reset, &u, NULL, 1), 0);
	assert_int_equal(__syncobj_wait1(f->c, u, 0, SEC, 0), -EINVAL);

	/* a gate: submitted but unsignalled */
	struct gate g = gate_new(f->c);
	assert_int_equal(__syncobj_wait1(f->c, g.h, 0, 20 * MS, 0), -ETIME);
	assert_int_equal(__syncobj_wait1(f->c, g.h, 0, 0, VMB_SYNCOBJ_WAIT_AVAILABLE), 0);
	gate_open(&g);
	syncobj_wait1(f->c, g.h);
}

static void test_wait_any_all(void **state)
{
	struct fixture *f = *state;
	struct gate g1 = gate_new(f->c), g2 = gate_new(f->c);
	uint32_t h[3] = {g1.h, g2.h, syncobj_new(f->c, VMB_SYNCOBJ_CREATE_SIGNALED)};
	struct vmb_syncobj_wait w = {.handles = (uint64_t)(uintptr_t)h, .count = 3, .timeout_ns = 20 * MS,
				     .flags = VMB_SYNCOBJ_WAIT_RELATIVE};
	assert_int_equal(vmb_syncobj_wait(f->c, &w), 0);
	assert_int_equal(w.first_signaled, 2);
	w.flags |= VMB_SYNCOBJ_WAIT_ALL;
	assert_int_equal(vmb_syncobj_wait(f->c, &w), -ETIME);
	gate_open(&g2);
	w.count = 2;
	w.flags = VMB_SYNCOBJ_WAIT_RELATIVE;
	w.timeout_ns = 10 * SEC;
	assert_int_equal(vmb_syncobj_wait(f->c, &w), 0);
	assert_int_equal(w.first_signaled, 1);
	/* absolute: a deadline in the past polls */
	w.flags = VMB_SYNCOBJ_WAIT_ALL;
	w.timeout_ns = 0;
	assert_int_equal(vmb_syncobj_wait(f->c, &w), -ETIME);
	gate_open(&g1);
	w.timeout_ns = vmb_now_ns() + 10 * SEC;
	assert_int_equal(vmb_syncobj_wait(f->c, &w), 0);
}

static void test_wait_bad_args(void **state)
{
	struct fixture *f = *state;
	uint32_t b = syncobj_new(f->c, VMB_SYNCOBJ_CREATE_SIGNALED);
	uint32_t t = syncobj_new(f->c, VMB_SYNCOBJ_CREATE_TIMELINE);
	uint32_t h[2] = {b, 999};
	uint64_t pts[2] = {0, 0};
	const struct {
		const char *name;
		struct vmb_syncobj_wait w;
		int err;
	} cases[] = {
		{"count 0", {.handles = 1, .count = 0}, -EINVAL},
		{"count too big", {.handles = 1, .count = VMB_SYNCOBJ_WAIT_MAX + 1}, -EINVAL},
		{"NULL handles", {.count = 1}, -EFAULT},
		{"unknown flag", {.handles = 1, .count = 1, .flags = 1u << 4}, -EINVAL},
		{"pad", {.handles = 1, .count = 1, .pad = 1}, -EINVAL},
		{"reserved", {.handles = 1, .count = 1, .reserved = 1}, -EINVAL},
		{"negative relative", {.handles = 1, .count = 1, .timeout_ns = -1, .flags = VMB_SYNCOBJ_WAIT_RELATIVE},
		 -EINVAL},
		{"unknown handle", {.handles = 1, .count = 2}, -ENOENT},
		{"point on binary", {.handles = 1, .count = 1, .points = 2}, -EINVAL},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct vmb_syncobj_wait w = cases[i].w;
		if (w.handles == 1)
			w.handles = (uint64_t)(uintptr_t)h;
		if (w.points == 2) {
			pts[0] = 5;
			w.points = (uint64_t)(uintptr_t)pts;
		}
		int err = vmb_syncobj_wait(f->c, &w);
		if (err != cases[i].err)
			fail_msg("%s: got %d, expected %d", cases[i].name, err, cases[i].err);
	}
	/* point 0 on a timeline */
	h[0] = t;
	pts[0] = 0;
	struct vmb_syncobj_wait w = {.handles = (uint64_t)(uintptr_t)h, .points = (uint64_t)(uintptr_t)pts, .count = 1};
	assert_int_equal(vmb_syncobj_wait(f->c, &w), -EINVAL);
	assert_int_equal(vmb_syncobj_wait(NULL, &w), -EINVAL);
	assert_int_equal(vmb_syncobj_wait(f->c, NULL), -EINVAL);
}

/*
 * The count limits are inclusive: a wait on exactly VMB_SYNCOBJ_WAIT_MAX handles (and a
 * signal or query of exactly VMB_SYNCOBJ_ARRAY_MAX) is accepted, one more is -EINVAL.
 */
static void test_wait_count_limit(void **state)
{
	struct fixture *f = *state;
	const uint32_t n = VMB_SYNCOBJ_WAIT_MAX + 1;
	uint32_t *h = calloc(n, sizeof(*h));
	uint64_t *v = calloc(n, sizeof(*v));
	assert_non_null(h);
	assert_non_null(v);
	for (uint32_t i = 0; i < n; i++)
		h[i] = syncobj_new(f->c, i % 2 ? VMB_SYNCOBJ_CREATE_SIGNALED : 0);
	/* the unsignalled half signalled in one call of exactly VMB_SYNCOBJ_ARRAY_MAX handles */
	assert_int_equal(arr(f->c, vmb_syncobj_signal, h, NULL, VMB_SYNCOBJ_ARRAY_MAX), 0);
	assert_int_equal(arr(f->c, vmb_syncobj_signal, h, NULL, VMB_SYNCOBJ_ARRAY_MAX + 1), -EINVAL);
	/* the refused call signalled nothing: h[n - 1] still has no fence; now it gets one, so that
	 * below only the count can refuse a wait on all n */
	assert_int_equal(__syncobj_wait1(f->c, h[n - 1], 0, 0, 0), -EINVAL);
	assert_int_equal(arr(f->c, vmb_syncobj_signal, &h[n - 1], NULL, 1), 0);
	assert_int_equal(arr(f->c, vmb_syncobj_query, h, v, VMB_SYNCOBJ_ARRAY_MAX), 0);
	for (uint32_t i = 0; i < VMB_SYNCOBJ_ARRAY_MAX; i++)
		assert_int_equal(v[i], 1);
	assert_int_equal(arr(f->c, vmb_syncobj_query, h, v, VMB_SYNCOBJ_ARRAY_MAX + 1), -EINVAL);

	struct vmb_syncobj_wait w = {.handles = (uint64_t)(uintptr_t)h, .count = VMB_SYNCOBJ_WAIT_MAX,
				     .flags = VMB_SYNCOBJ_WAIT_ALL | VMB_SYNCOBJ_WAIT_RELATIVE};
	assert_int_equal(vmb_syncobj_wait(f->c, &w), 0);
	w.flags = VMB_SYNCOBJ_WAIT_RELATIVE; /* any */
	assert_int_equal(vmb_syncobj_wait(f->c, &w), 0);
	assert_int_equal(w.first_signaled, 0);
	w.count = VMB_SYNCOBJ_WAIT_MAX + 1;
	assert_int_equal(vmb_syncobj_wait(f->c, &w), -EINVAL);
	w.flags = VMB_SYNCOBJ_WAIT_ALL | VMB_SYNCOBJ_WAIT_RELATIVE;
	assert_int_equal(vmb_syncobj_wait(f->c, &w), -EINVAL);
	free(h);
	free(v);
}

static void test_array_bad_args_change_nothing(void **state)
{
	struct fixture *f = *state;
	uint32_t b = syncobj_new(f->c, 0), t = syncobj_new(f->c, VMB_SYNCOBJ_CREATE_TIMELINE);
	uint32_t h[2] = {b, 4242};
	uint64_t p[2] = {3, 4};
	struct vmb_syncobj_array a;

	/* the first handle is fine, the second unknown: the first stays unsignalled */
	assert_int_equal(arr(f->c, vmb_syncobj_signal, h, NULL, 2), -ENOENT);
	assert_int_equal(__syncobj_wait1(f->c, b, 0, 0, 0), -EINVAL);
	h[1] = t; /* a timeline in a binary call */
	assert_int_equal(arr(f->c, vmb_syncobj_signal, h, NULL, 2), -EINVAL);
	assert_int_equal(arr(f->c, vmb_syncobj_reset, h, NULL, 2), -EINVAL);
	assert_int_equal(__syncobj_wait1(f->c, b, 0, 0, 0), -EINVAL);
	/* a binary in a timeline call: nothing signalled on the timeline either */
	h[0] = t;
	h[1] = b;
	assert_int_equal(arr(f->c, vmb_syncobj_timeline_signal, h, p, 2), -EINVAL);
	assert_int_equal(tl_value(f->c, t), 0);
	a = (struct vmb_syncobj_array){.handles = (uint64_t)(uintptr_t)h, .count = 0};
	assert_int_equal(vmb_syncobj_signal(f->c, &a), -EINVAL);
	a.count = VMB_SYNCOBJ_ARRAY_MAX + 1;
	assert_int_equal(vmb_syncobj_signal(f->c, &a), -EINVAL);
	a = (struct vmb_syncobj_array){.count = 1};
	assert_int_equal(vmb_syncobj_signal(f->c, &a), -EFAULT);
	a = (struct vmb_syncobj_array){.handles = (uint64_t)(uintptr_t)h, .count = 1, .flags = 1};
	assert_int_equal(vmb_syncobj_signal(f->c, &a), -EINVAL);
	a = (struct vmb_syncobj_array){.handles = (uint64_t)(uintptr_t)h, .count = 1, .reserved = 1};
	assert_int_equal(vmb_syncobj_signal(f->c, &a), -EINVAL);
	/* points where none belong, none where they must be */
	a = (struct vmb_syncobj_array){.handles = (uint64_t)(uintptr_t)&b, .count = 1, .points = (uint64_t)(uintptr_t)p};
	assert_int_equal(vmb_syncobj_signal(f->c, &a), -EINVAL);
	a = (struct vmb_syncobj_array){.handles = (uint64_t)(uintptr_t)&t, .count = 1};
	assert_int_equal(vmb_syncobj_timeline_signal(f->c, &a), -EINVAL);
	assert_int_equal(vmb_syncobj_query(f->c, &a), -EINVAL);
	assert_int_equal(vmb_syncobj_query(NULL, &a), -EINVAL);
}

static void test_timeline(void **state)
{
	struct fixture *f = *state;
	uint32_t t = syncobj_new(f->c, VMB_SYNCOBJ_CREATE_TIMELINE);
	uint64_t p;

	assert_int_equal(tl_value(f->c, t), 0);
	assert_int_equal(__syncobj_wait1(f->c, t, 1, SEC, 0), -EINVAL); /* not submitted */
	assert_int_equal(__syncobj_wait1(f->c, t, 1, 20 * MS, VMB_SYNCOBJ_WAIT_FOR_SUBMIT), -ETIME);
	p = 3;
	assert_int_equal(arr(f->c, vmb_syncobj_timeline_signal, &t, &p, 1), 0);
	assert_int_equal(tl_value(f->c, t), 3);
	/* points go up */
	assert_int_equal(arr(f->c, vmb_syncobj_timeline_signal, &t, &p, 1), -EINVAL);
	p = 2;
	assert_int_equal(arr(f->c, vmb_syncobj_timeline_signal, &t, &p, 1), -EINVAL);
	p = 0;
	assert_int_equal(arr(f->c, vmb_syncobj_timeline_signal, &t, &p, 1), -EINVAL);
	assert_int_equal(tl_value(f->c, t), 3);
	/* the same timeline twice in one call: its points go up there too (found by fuzzing: the
	 * timeline used to take 5 then 4, out of order) */
	uint32_t tt[2] = {t, t};
	uint64_t pp[2] = {5, 4};
	assert_int_equal(arr(f->c, vmb_syncobj_timeline_signal, tt, pp, 2), -EINVAL);
	assert_int_equal(tl_value(f->c, t), 3);
	pp[0] = 4;
	pp[1] = 4;
	assert_int_equal(arr(f->c, vmb_syncobj_timeline_signal, tt, pp, 2), -EINVAL);
	/* every point up to 3 is complete */
	assert_int_equal(__syncobj_wait1(f->c, t, 1, 0, 0), 0);
	assert_int_equal(__syncobj_wait1(f->c, t, 3, 0, 0), 0);

	/* a gate at point 5, then 9 signalled: 9 completes only after 5 does */
	struct gate g = gate_new(f->c);
	struct vmb_syncobj_transfer x = {.src_handle = g.h, .dst_handle = t, .dst_point = 5};
	assert_int_equal(vmb_syncobj_transfer(f->c, &x), 0);
	p = 9;
	assert_int_equal(arr(f->c, vmb_syncobj_timeline_signal, &t, &p, 1), 0);
	assert_int_equal(tl_value(f->c, t), 3);
	assert_int_equal(__syncobj_wait1(f->c, t, 4, 20 * MS, 0), -ETIME); /* 4 waits for 5 */
	assert_int_equal(__syncobj_wait1(f->c, t, 9, 20 * MS, 0), -ETIME);
	assert_int_equal(__syncobj_wait1(f->c, t, 9, 0, VMB_SYNCOBJ_WAIT_AVAILABLE), 0);
	/* not submitted: WAIT_AVAILABLE waits for the submission, as DRM's (a poll: -ETIME) */
	assert_int_equal(__syncobj_wait1(f->c, t, 10, 0, VMB_SYNCOBJ_WAIT_AVAILABLE), -ETIME);
	gate_open(&g);
	assert_int_equal(__syncobj_wait1(f->c, t, 9, 10 * SEC, 0), 0);
	assert_int_equal(tl_value(f->c, t), 9);
}

/* ---- a point claimed twice ---- */

/* Timeline @h's last point, claimed or added (what a new point must be above). */
static uint64_t tl_last(struct vmb_client *c, uint32_t h)
{
	pthread_mutex_lock(&c->sync_lock);
	struct vmb_syncobj *s = vmb_handle_lookup(&c->syncobjs, h);
	assert_non_null(s);
	pthread_mutex_lock(&s->lock);
	uint64_t last = s->last;
	pthread_mutex_unlock(&s->lock);
	pthread_mutex_unlock(&c->sync_lock);
	return last;
}

static int barrier(struct vmb_client *c, uint32_t vm, uint32_t q, struct vmb_sync s)
{
	return __bind_async(c, vm, q, NULL, 0, &s, 1);
}

static int exec_with(struct vmb_client *c, uint32_t q, struct vmb_sync s)
{
	struct vmb_exec e = {.exec_queue_id = q, .address = 1ull << 32, .num_syncs = 1,
			     .syncs = (uint64_t)(uintptr_t)&s};
	return vmb_exec(c, &e);
}

/* Every path that adds a point, against a point that another call holds: -EINVAL. */
static void others_refused(struct vmb_client *c, uint32_t t, uint64_t point, uint32_t vm, uint32_t q, uint32_t eq)
{
	uint64_t p = point;
	assert_int_equal(arr(c, vmb_syncobj_timeline_signal, &t, &p, 1), -EINVAL);
	assert_int_equal(barrier(c, vm, q, sync_tl_out(t, point)), -EINVAL);
	assert_int_equal(exec_with(c, eq, sync_tl_out(t, point)), -EINVAL);
	uint32_t sig = syncobj_new(c, VMB_SYNCOBJ_CREATE_SIGNALED);
	struct vmb_syncobj_transfer x = {.src_handle = sig, .dst_handle = t, .dst_point = point};
	assert_int_equal(vmb_syncobj_transfer(c, &x), -EINVAL);
	struct vmb_syncobj_destroy d = {.handle = sig};
	assert_int_equal(vmb_syncobj_destroy(c, &d), 0);
	/* claimed is not submitted: a wait is refused, or waits for the fence to come */
	assert_int_equal(__syncobj_wait1(c, t, point, 0, 0), -EINVAL);
	assert_int_equal(__syncobj_wait1(c, t, point, 0, VMB_SYNCOBJ_WAIT_FOR_SUBMIT), -ETIME);
	struct vmb_syncobj_fd a = {.handle = t, .point = point};
	assert_int_equal(vmb_syncobj_export_fd(c, &a), -EINVAL);
}

/*
 * The sync array of a bind or exec claims its out-points when it is parsed: from then on no
 * other call can add them, however long the call takes before its job exists. Driven here
 * through the parser itself, which every bind, barrier and exec uses: claim, refuse the others,
 * fill (install) or give back (a call that fails later).
 */
static void test_point_claimed_at_parse(void **state)
{
	struct fixture *f = *state;
	uint32_t t = syncobj_new(f->c, VMB_SYNCOBJ_CREATE_TIMELINE), vm = vm_new(f->c, 0);
	uint32_t q = queue_new(f->c, vm);
	struct vmb_exec_queue_create qc = {.vm_id = vm, .engine = {.engine_class = VMB_ENGINE_CLASS_COMPUTE}};
	assert_int_equal(vmb_exec_queue_create(f->c, &qc), 0);

	/* claimed, then given back: the point is free again */
	struct vmb_sync_set set;
	struct vmb_sync out = sync_tl_out(t, 1);
	assert_int_equal(vmb_syncs_parse(f->c, &out, 1, &set), 0);
	others_refused(f->c, t, 1, vm, q, qc.exec_queue_id);
	assert_int_equal(tl_last(f->c, t), 1);
	vmb_syncs_fini(&set);
	assert_int_equal(tl_last(f->c, t), 0);
	assert_int_equal(__syncobj_wait1(f->c, t, 1, 0, VMB_SYNCOBJ_WAIT_FOR_SUBMIT), -ETIME);

	/* claimed, a later point added meanwhile, then filled: the later one waits for it */
	assert_int_equal(vmb_syncs_parse(f->c, &out, 1, &set), 0);
	others_refused(f->c, t, 1, vm, q, qc.exec_queue_id);
	uint64_t p = 2;
	assert_int_equal(arr(f->c, vmb_syncobj_timeline_signal, &t, &p, 1), 0);
	assert_int_equal(tl_value(f->c, t), 0);
	assert_int_equal(__syncobj_wait1(f->c, t, 2, 0, 0), -EINVAL); /* 1 has no fence yet */
	struct vmb_fence *fence = vmb_fence_create();
	assert_non_null(fence);
	vmb_syncs_install(&set, fence);
	vmb_syncs_fini(&set);
	assert_int_equal(tl_value(f->c, t), 0);
	assert_int_equal(__syncobj_wait1(f->c, t, 2, 0, 0), -ETIME);
	assert_int_equal(vmb_fence_signal(fence, 0), 0);
	vmb_fence_unref(fence);
	assert_int_equal(tl_value(f->c, t), 2);
	assert_int_equal(__syncobj_wait1(f->c, t, 1, 0, 0), 0);

	/* the same timeline twice in one array: both points claimed, both given back */
	struct vmb_sync two[2] = {sync_tl_out(t, 4), sync_tl_out(t, 6)};
	assert_int_equal(vmb_syncs_parse(f->c, two, 2, &set), 0);
	assert_int_equal(tl_last(f->c, t), 6);
	others_refused(f->c, t, 5, vm, q, qc.exec_queue_id);
	vmb_syncs_fini(&set);
	assert_int_equal(tl_last(f->c, t), 2);
	p = 3;
	assert_int_equal(arr(f->c, vmb_syncobj_timeline_signal, &t, &p, 1), 0);
	assert_int_equal(tl_value(f->c, t), 3);

	/* calls that fail after their parse give their points back */
	assert_int_equal(exec_with(f->c, 999, sync_tl_out(t, 4)), -ENOENT);
	assert_int_equal(barrier(f->c, 999, 0, sync_tl_out(t, 4)), -ENOENT);
	uint32_t tt[2] = {t, t};
	uint64_t pp[2] = {4, 4}; /* refused as a whole: point 4 stays free */
	assert_int_equal(arr(f->c, vmb_syncobj_timeline_signal, tt, pp, 2), -EINVAL);
	assert_int_equal(tl_last(f->c, t), 3);
	p = 4;
	assert_int_equal(arr(f->c, vmb_syncobj_timeline_signal, &t, &p, 1), 0);
	assert_int_equal(tl_value(f->c, t), 4);
	validate_client(f->c);
}

struct claimant {
	struct vmb_client *c;
	uint32_t vm, bo;
	struct vmb_sync syncs[2];
	atomic_int result;
};

static void *bind_in_call(void *arg)
{
	struct claimant *a = arg;
	/* a bind that maps a BO a pending PREFETCH moves waits for it in the call, its out-point
	 * claimed */
	struct vmb_bind_op ops[2] = {op_map(a->bo, 0, 1 * MiB, 64 * KiB, 0),
				     op_prefetch(1 * MiB, 64 * KiB, VMB_REGION_SYSTEM)};
	atomic_store(&a->result, __bind_async(a->c, a->vm, 0, ops, 2, a->syncs, 2));
	return NULL;
}

/*
 * Through the public calls: thread A's bind names out-point 1 of a fresh timeline and waits in
 * the call behind a gate; meanwhile a timeline signal, a barrier on another queue, an exec and
 * a transfer name point 1 too. They used to be accepted (the point was checked at parse and
 * added at install, with nothing held between), so a wait on point 1 returned while A's bind
 * had not run. Now each gets -EINVAL and point 1 is A's.
 */
static void test_point_claimed_during_bind(void **state)
{
	struct fixture *f = *state;
	uint32_t t = syncobj_new(f->c, VMB_SYNCOBJ_CREATE_TIMELINE), vm = vm_new(f->c, 0);
	uint32_t q2 = queue_new(f->c, vm);
	struct vmb_exec_queue_create qc = {.vm_id = vm, .engine = {.engine_class = VMB_ENGINE_CLASS_COMPUTE}};
	assert_int_equal(vmb_exec_queue_create(f->c, &qc), 0);
	struct gate g = gate_new(f->c);
	/* the pending PREFETCH (it moves a BO) that A's waits for, itself behind the gate */
	uint32_t bo2 = bo_new(f->c, 64 * KiB, VMB_PLACE_VRAM | VMB_PLACE_SYSTEM);
	struct vmb_bind_op pre[2] = {op_map(bo2, 0, 2 * MiB, 64 * KiB, 0),
				     op_prefetch(2 * MiB, 64 * KiB, VMB_REGION_SYSTEM)};
	struct vmb_sync gated = sync_in(g.h);
	bind_async(f->c, vm, 0, pre, 2, &gated, 1);
	/* A maps (and prefetches) the BO the pending PREFETCH moves: it waits in the call */
	struct claimant a = {.c = f->c, .vm = vm, .bo = bo2, .syncs = {sync_in(g.h), sync_tl_out(t, 1)}};
	atomic_init(&a.result, 1);
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, bind_in_call, &a), 0);
	/* until A has claimed point 1 (a hang bound, generous for a loaded machine: before the fix
	 * nothing was ever claimed) */
	for (int64_t end = vmb_now_ns() + 20 * SEC; tl_last(f->c, t) != 1 && vmb_now_ns() < end;)
		usleep(100);
	assert_int_equal(atomic_load(&a.result), 1); /* A still waits in the call */
	others_refused(f->c, t, 1, vm, q2, qc.exec_queue_id);
	assert_int_equal(tl_value(f->c, t), 0);
	gate_open(&g);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(atomic_load(&a.result), 0);
	assert_int_equal(__syncobj_wait1(f->c, t, 1, 10 * SEC, 0), 0);
	assert_int_equal(tl_value(f->c, t), 1);
	uint64_t v = 0x55;
	assert_int_equal(__gpu_rw(f->c, vm, 1 * MiB, &v, 8, false), 0); /* A's mapping is there */
	validate_client(f->c);
}

struct late_signal {
	struct vmb_client *c;
	uint32_t h;
	uint64_t point;
};

static void *signal_later(void *arg)
{
	struct late_signal *l = arg;
	usleep(30000);
	if (l->point)
		arr(l->c, vmb_syncobj_timeline_signal, &l->h, &l->point, 1);
	else
		arr(l->c, vmb_syncobj_signal, &l->h, NULL, 1);
	return NULL;
}

static void test_wait_for_submit(void **state)
{
	struct fixture *f = *state;
	pthread_t th;
	struct late_signal b = {f->c, syncobj_new(f->c, 0), 0};
	assert_int_equal(pthread_create(&th, NULL, signal_later, &b), 0);
	assert_int_equal(__syncobj_wait1(f->c, b.h, 0, 10 * SEC, VMB_SYNCOBJ_WAIT_FOR_SUBMIT), 0);
	pthread_join(th, NULL);
	struct late_signal t = {f->c, syncobj_new(f->c, VMB_SYNCOBJ_CREATE_TIMELINE), 7};
	assert_int_equal(pthread_create(&th, NULL, signal_later, &t), 0);
	assert_int_equal(__syncobj_wait1(f->c, t.h, 6, 10 * SEC, VMB_SYNCOBJ_WAIT_FOR_SUBMIT), 0);
	pthread_join(th, NULL);
}

/* ---- a wait is for the fences it found (DRM's snapshot) ---- */

struct snap_waiter {
	struct vmb_client *c;
	uint32_t h[2];
	uint32_t n, flags;
	atomic_int result;
};

static void *snap_wait(void *arg)
{
	struct snap_waiter *w = arg;
	struct vmb_syncobj_wait a = {.handles = (uint64_t)(uintptr_t)w->h, .count = w->n,
				     .flags = w->flags | VMB_SYNCOBJ_WAIT_RELATIVE, .timeout_ns = 10 * SEC};
	atomic_store(&w->result, vmb_syncobj_wait(w->c, &a));
	return NULL;
}

/* Until the wait has registered on syncobj @h (and so has taken what it waits for). @result:
 * the waiter's, 1 while its call runs; a call that ended first (a failure) fails the test here
 * instead of hanging it. */
static void until_waited_on(struct vmb_client *c, uint32_t h, atomic_int *result)
{
	for (;;) {
		int r = atomic_load(result);
		if (r != 1)
			fail_msg("the wait on syncobj %u ended (%d) before it was seen waiting", h, r);
		pthread_mutex_lock(&c->sync_lock);
		struct vmb_syncobj *s = vmb_handle_lookup(&c->syncobjs, h);
		assert_non_null(s);
		pthread_mutex_lock(&s->lock);
		bool on = !vmb_list_empty(&s->waiters);
		pthread_mutex_unlock(&s->lock);
		pthread_mutex_unlock(&c->sync_lock);
		if (on)
			return;
		usleep(100);
	}
}

static int xfer_bin(struct vmb_client *c, uint32_t src, uint32_t dst)
{
	struct vmb_syncobj_transfer t = {.src_handle = src, .dst_handle = dst};
	return vmb_syncobj_transfer(c, &t);
}

/*
 * A binary syncobj's wait waits for the fence the syncobj held when the wait began (with
 * WAIT_FOR_SUBMIT: the first fence put there during the wait), as drm_syncobj_array_wait takes
 * each fence once: a reset, signal or new submission meanwhile does not change what the wait is
 * for (IGT's syncobj_wait "*-snapshot" and "*-complex" cases). Before, each wake-up looked at the
 * syncobj's current fence: each case below timed out (-ETIME) waiting for the replacement.
 */
static void test_wait_snapshot(void **state)
{
	struct fixture *f = *state;
	pthread_t th;

	/* the fence is reset and replaced by one that never signals; the first signals */
	struct gate g0 = gate_new(f->c), g1 = gate_new(f->c);
	uint32_t s = syncobj_new(f->c, 0);
	assert_int_equal(xfer_bin(f->c, g0.h, s), 0);
	struct snap_waiter w = {.c = f->c, .h = {s}, .n = 1};
	atomic_init(&w.result, 1);
	assert_int_equal(pthread_create(&th, NULL, snap_wait, &w), 0);
	until_waited_on(f->c, s, &w.result);
	assert_int_equal(arr(f->c, vmb_syncobj_reset, &s, NULL, 1), 0);
	assert_int_equal(xfer_bin(f->c, g1.h, s), 0);
	gate_open(&g0);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(atomic_load(&w.result), 0);
	assert_int_equal(__syncobj_wait1(f->c, s, 0, 0, 0), -ETIME); /* the syncobj holds g1's */
	gate_open(&g1);

	/* WAIT_FOR_SUBMIT: the first fence submitted during the wait is the one waited for */
	struct gate g2 = gate_new(f->c), g3 = gate_new(f->c);
	uint32_t e = syncobj_new(f->c, 0);
	w = (struct snap_waiter){.c = f->c, .h = {e}, .n = 1, .flags = VMB_SYNCOBJ_WAIT_FOR_SUBMIT};
	atomic_init(&w.result, 1);
	assert_int_equal(pthread_create(&th, NULL, snap_wait, &w), 0);
	until_waited_on(f->c, e, &w.result);
	assert_int_equal(xfer_bin(f->c, g2.h, e), 0);
	assert_int_equal(arr(f->c, vmb_syncobj_reset, &e, NULL, 1), 0);
	assert_int_equal(xfer_bin(f->c, g3.h, e), 0);
	gate_open(&g2);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(atomic_load(&w.result), 0);
	gate_open(&g3);

	/* WAIT_ALL: one signals, is reset and resubmitted unsignalled; then the other signals */
	struct gate g4 = gate_new(f->c), g5 = gate_new(f->c), g6 = gate_new(f->c);
	uint32_t a = syncobj_new(f->c, 0), b = syncobj_new(f->c, 0);
	assert_int_equal(xfer_bin(f->c, g4.h, a), 0);
	assert_int_equal(xfer_bin(f->c, g5.h, b), 0);
	w = (struct snap_waiter){.c = f->c, .h = {a, b}, .n = 2, .flags = VMB_SYNCOBJ_WAIT_ALL};
	atomic_init(&w.result, 1);
	assert_int_equal(pthread_create(&th, NULL, snap_wait, &w), 0);
	until_waited_on(f->c, b, &w.result);
	gate_open(&g4);
	assert_int_equal(arr(f->c, vmb_syncobj_reset, &a, NULL, 1), 0);
	assert_int_equal(xfer_bin(f->c, g6.h, a), 0);
	gate_open(&g5);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(atomic_load(&w.result), 0);
	gate_open(&g6);
}

/* ---- waits on mixes, against changes of every kind (atksync) ---- */

struct mix_waiter {
	struct vmb_client *c;
	uint32_t h[3];
	uint64_t pts[3];
	uint32_t n, flags, first;
	atomic_int result;
};

static void *mix_wait(void *arg)
{
	struct mix_waiter *w = arg;
	struct vmb_syncobj_wait a = {.handles = (uint64_t)(uintptr_t)w->h, .points = (uint64_t)(uintptr_t)w->pts,
				     .count = w->n, .flags = w->flags | VMB_SYNCOBJ_WAIT_RELATIVE,
				     .timeout_ns = 10 * SEC, .first_signaled = ~0u};
	int err = vmb_syncobj_wait(w->c, &a);
	w->first = a.first_signaled;
	atomic_store(&w->result, err);
	return NULL;
}

static void mix_start(struct mix_waiter *w, pthread_t *th)
{
	atomic_init(&w->result, 1);
	assert_int_equal(pthread_create(th, NULL, mix_wait, w), 0);
	for (uint32_t i = 0; i < w->n; i++)
		until_waited_on(w->c, w->h[i], &w->result);
}

static int mix_join(struct mix_waiter *w, pthread_t th)
{
	assert_int_equal(pthread_join(th, NULL), 0);
	return atomic_load(&w->result);
}

static int tl_signal(struct vmb_client *c, uint32_t h, uint64_t point)
{
	return arr(c, vmb_syncobj_timeline_signal, &h, &point, 1);
}

static int xfer(struct vmb_client *c, uint32_t src, uint64_t sp, uint32_t dst, uint64_t dp)
{
	struct vmb_syncobj_transfer t = {.src_handle = src, .src_point = sp, .dst_handle = dst, .dst_point = dp};
	return vmb_syncobj_transfer(c, &t);
}

/* The syncobj behind handle @h takes fence @f (the layer's call: a fence with any error). */
static void put_fence(struct vmb_client *c, uint32_t h, struct vmb_fence *f)
{
	pthread_mutex_lock(&c->sync_lock);
	struct vmb_syncobj *s = vmb_handle_lookup(&c->syncobjs, h);
	assert_non_null(s);
	vmb_syncobj_get(s);
	pthread_mutex_unlock(&c->sync_lock);
	vmb_syncobj_replace(s, f);
	vmb_syncobj_put(s);
}

/*
 * WAIT_ANY and WAIT_ALL over binary and timeline syncobjs with WAIT_FOR_SUBMIT and
 * WAIT_AVAILABLE, as drm_syncobj_array_wait: the binary one's first submission is its fence
 * (a reset and resubmission after do not change it), a timeline point submitted by a transfer
 * or a timeline signal, first_signaled the index of one that is done. Guard, no bug found.
 */
static void test_wait_mixed_kinds(void **state)
{
	struct fixture *f = *state;
	pthread_t th;

	/* ANY: the timeline point signalled; the binary one stays empty */
	uint32_t b = syncobj_new(f->c, 0), t = syncobj_new(f->c, VMB_SYNCOBJ_CREATE_TIMELINE);
	struct mix_waiter w = {.c = f->c, .h = {b, t}, .pts = {0, 3}, .n = 2, .flags = VMB_SYNCOBJ_WAIT_FOR_SUBMIT};
	mix_start(&w, &th);
	assert_int_equal(tl_signal(f->c, t, 3), 0);
	assert_int_equal(mix_join(&w, th), 0);
	assert_int_equal(w.first, 1);

	/* ALL: the binary one's first fence (a gate) is waited for though it is reset and the
	 * syncobj signalled; the timeline's point submitted (pending) by a transfer, then done */
	struct gate g0 = gate_new(f->c), g1 = gate_new(f->c);
	b = syncobj_new(f->c, 0);
	t = syncobj_new(f->c, VMB_SYNCOBJ_CREATE_TIMELINE);
	w = (struct mix_waiter){.c = f->c, .h = {b, t}, .pts = {0, 2}, .n = 2,
				.flags = VMB_SYNCOBJ_WAIT_FOR_SUBMIT | VMB_SYNCOBJ_WAIT_ALL};
	mix_start(&w, &th);
	assert_int_equal(xfer(f->c, g0.h, 0, b, 0), 0);
	assert_int_equal(arr(f->c, vmb_syncobj_reset, &b, NULL, 1), 0);
	assert_int_equal(arr(f->c, vmb_syncobj_signal, &b, NULL, 1), 0);
	assert_int_equal(xfer(f->c, g1.h, 0, t, 2), 0);
	gate_open(&g1);
	assert_int_equal(atomic_load(&w.result), 1); /* g0 still closed */
	gate_open(&g0);
	assert_int_equal(mix_join(&w, th), 0);

	/* AVAILABLE: both submitted, neither signalled: done */
	struct gate g2 = gate_new(f->c), g3 = gate_new(f->c);
	b = syncobj_new(f->c, 0);
	t = syncobj_new(f->c, VMB_SYNCOBJ_CREATE_TIMELINE);
	w = (struct mix_waiter){.c = f->c, .h = {b, t}, .pts = {0, 5}, .n = 2,
				.flags = VMB_SYNCOBJ_WAIT_FOR_SUBMIT | VMB_SYNCOBJ_WAIT_ALL | VMB_SYNCOBJ_WAIT_AVAILABLE};
	mix_start(&w, &th);
	assert_int_equal(xfer(f->c, g2.h, 0, b, 0), 0);
	assert_int_equal(arr(f->c, vmb_syncobj_reset, &b, NULL, 1), 0); /* submitted once is enough */
	assert_int_equal(xfer(f->c, g3.h, 0, t, 5), 0);
	assert_int_equal(mix_join(&w, th), 0);
	gate_open(&g2);
	gate_open(&g3);

	/* the same binary syncobj twice and a timeline, ALL: one fence for both entries */
	struct gate g4 = gate_new(f->c);
	b = syncobj_new(f->c, 0);
	t = syncobj_new(f->c, VMB_SYNCOBJ_CREATE_TIMELINE);
	assert_int_equal(tl_signal(f->c, t, 1), 0);
	w = (struct mix_waiter){.c = f->c, .h = {b, t, b}, .pts = {0, 1, 0}, .n = 3,
				.flags = VMB_SYNCOBJ_WAIT_FOR_SUBMIT | VMB_SYNCOBJ_WAIT_ALL};
	mix_start(&w, &th);
	assert_int_equal(xfer(f->c, g4.h, 0, b, 0), 0);
	assert_int_equal(arr(f->c, vmb_syncobj_signal, &b, NULL, 1), 0);
	assert_int_equal(atomic_load(&w.result), 1);
	gate_open(&g4);
	assert_int_equal(mix_join(&w, th), 0);

	/* without WAIT_FOR_SUBMIT, one empty binary syncobj among signalled ones: -EINVAL */
	uint32_t e = syncobj_new(f->c, 0), sig = syncobj_new(f->c, VMB_SYNCOBJ_CREATE_SIGNALED);
	uint32_t hs[2] = {sig, e};
	struct vmb_syncobj_wait a = {.handles = (uint64_t)(uintptr_t)hs, .count = 2};
	assert_int_equal(vmb_syncobj_wait(f->c, &a), -EINVAL);
}

/*
 * A wait goes on with the syncobjs it looked up: the handle destroyed while it waits, its number
 * given to a new signalled syncobj, the wait still waits for the old one's fence (a gate), and
 * ends when that signals. Guard, no bug found.
 */
static void test_wait_handle_destroyed_reused(void **state)
{
	struct fixture *f = *state;
	pthread_t th[2];
	struct gate g = gate_new(f->c);
	uint32_t b = syncobj_new(f->c, 0), t = syncobj_new(f->c, VMB_SYNCOBJ_CREATE_TIMELINE);
	assert_int_equal(xfer(f->c, g.h, 0, b, 0), 0);
	assert_int_equal(xfer(f->c, g.h, 0, t, 4), 0);
	struct mix_waiter w[2] = {{.c = f->c, .h = {b}, .n = 1}, {.c = f->c, .h = {t}, .pts = {4}, .n = 1}};
	mix_start(&w[0], &th[0]);
	mix_start(&w[1], &th[1]);
	uint32_t nh[128], n = 0;
	for (int k = 0; k < 2; k++) {
		uint32_t h = k ? t : b;
		struct vmb_syncobj_destroy d = {.handle = h};
		assert_int_equal(vmb_syncobj_destroy(f->c, &d), 0);
		do
			nh[n++] = syncobj_new(f->c, k ? VMB_SYNCOBJ_CREATE_TIMELINE : VMB_SYNCOBJ_CREATE_SIGNALED);
		while (nh[n - 1] != h && n < 128);
		assert_int_equal(nh[n - 1], h); /* the number names another syncobj */
	}
	assert_int_equal(tl_signal(f->c, t, 4), 0); /* the new timeline's point 4 */
	assert_int_equal(arr(f->c, vmb_syncobj_signal, &g.h, NULL, 1), 0); /* the gate's syncobj */
	assert_int_equal(atomic_load(&w[0].result), 1);
	assert_int_equal(atomic_load(&w[1].result), 1);
	gate_open(&g);
	assert_int_equal(mix_join(&w[0], th[0]), 0);
	assert_int_equal(mix_join(&w[1], th[1]), 0);
	for (uint32_t i = 0; i < n; i++) {
		struct vmb_syncobj_destroy dd = {.handle = nh[i]};
		assert_int_equal(vmb_syncobj_destroy(f->c, &dd), 0);
	}
}

/*
 * Fences that failed: a wait ends with 0 (a failed fence has signalled; DRM's wait does not read
 * the error), query_status gives the errno; the error stays with the fence a wait took though
 * the syncobj is reset meanwhile, and an export and a transfer of it carry it. Guard.
 */
static void test_wait_failed_fence(void **state)
{
	struct fixture *f = *state;
	pthread_t th;
	uint32_t b = syncobj_new(f->c, 0), t = syncobj_new(f->c, VMB_SYNCOBJ_CREATE_TIMELINE);
	struct vmb_fence *bad = vmb_fence_create();
	assert_non_null(bad);
	put_fence(f->c, b, bad);
	assert_int_equal(xfer(f->c, b, 0, t, 1), 0);
	struct mix_waiter w = {.c = f->c, .h = {b, t}, .pts = {0, 1}, .n = 2, .flags = VMB_SYNCOBJ_WAIT_ALL};
	mix_start(&w, &th);
	assert_int_equal(arr(f->c, vmb_syncobj_reset, &b, NULL, 1), 0);
	assert_int_equal(vmb_fence_signal(bad, -EIO), 0);
	assert_int_equal(mix_join(&w, th), 0);
	vmb_fence_unref(bad);
	int32_t st[2] = {7, 7};
	uint64_t pts[2] = {0, 1};
	uint32_t hs[2] = {b, t};
	struct vmb_syncobj_status q = {.handles = (uint64_t)(uintptr_t)hs, .points = (uint64_t)(uintptr_t)pts,
				       .status = (uint64_t)(uintptr_t)st, .count = 2};
	assert_int_equal(vmb_syncobj_query_status(f->c, &q), 0);
	assert_int_equal(st[0], 0); /* reset: nothing submitted */
	assert_int_equal(st[1], -EIO);
	uint32_t b2 = syncobj_new(f->c, 0);
	assert_int_equal(xfer(f->c, t, 1, b2, 0), 0);
	assert_int_equal(syncobj_error(f->c, b2), -EIO);
	struct vmb_syncobj_fd x = {.handle = t, .point = 1};
	assert_int_equal(vmb_syncobj_export_fd(f->c, &x), 0);
	struct vmb_syncobj_fd im = {.fd = x.fd};
	assert_int_equal(vmb_syncobj_import_fd(f->c, &im), 0);
	syncobj_wait1(f->c, im.handle);
	close(x.fd);
}

struct wait_storm {
	struct vmb_client *c;
	uint32_t b, t;
	atomic_bool stop;
	atomic_uint waits;
	atomic_int bad;
};

static void *wait_storm_run(void *arg)
{
	struct wait_storm *st = arg;
	for (uint32_t k = 0; !atomic_load(&st->stop); k++) {
		uint32_t h[3] = {st->b, st->t, st->b};
		uint64_t pts[3] = {0, 1 + k % 64, 0};
		uint32_t flags = (k & 1 ? VMB_SYNCOBJ_WAIT_ALL : 0) | (k & 2 ? VMB_SYNCOBJ_WAIT_AVAILABLE : 0) |
				 VMB_SYNCOBJ_WAIT_FOR_SUBMIT | VMB_SYNCOBJ_WAIT_RELATIVE;
		struct vmb_syncobj_wait a = {.handles = (uint64_t)(uintptr_t)h, .points = (uint64_t)(uintptr_t)pts,
					     .count = 3, .flags = flags, .timeout_ns = 200000};
		int err = vmb_syncobj_wait(st->c, &a);
		if (err != 0 && err != -ETIME)
			atomic_store(&st->bad, err);
		atomic_fetch_add(&st->waits, 1);
	}
	return NULL;
}

/*
 * Waiters registering and leaving a binary syncobj and a timeline while another thread resets,
 * signals, transfers pending and signalled fences into the binary one and signals timeline
 * points: every wait 0 or -ETIME, TSan clean, no fence leaked (ASan). Guard, no bug found.
 */
static void test_wait_storm(void **state)
{
	struct fixture *f = *state;
	struct wait_storm st = {.c = f->c, .b = syncobj_new(f->c, 0), .t = syncobj_new(f->c, VMB_SYNCOBJ_CREATE_TIMELINE)};
	atomic_init(&st.stop, false);
	atomic_init(&st.waits, 0);
	atomic_init(&st.bad, 0);
	pthread_t th[3];
	for (int i = 0; i < 3; i++)
		assert_int_equal(pthread_create(&th[i], NULL, wait_storm_run, &st), 0);
	struct gate g = gate_new(f->c);
	for (uint64_t k = 1; k <= 64 || atomic_load(&st.waits) < 300; k++) {
		if (k <= 64)
			assert_int_equal(tl_signal(f->c, st.t, k), 0);
		switch (k % 4) {
		case 0:
			assert_int_equal(arr(f->c, vmb_syncobj_reset, &st.b, NULL, 1), 0);
			break;
		case 1:
			assert_int_equal(xfer(f->c, g.h, 0, st.b, 0), 0);
			break;
		case 2:
			assert_int_equal(arr(f->c, vmb_syncobj_signal, &st.b, NULL, 1), 0);
			break;
		default:
			assert_int_equal(xfer(f->c, st.t, 1, st.b, 0), 0);
			break;
		}
		if (k > 100000)
			break;
		sched_yield();
	}
	gate_open(&g);
	atomic_store(&st.stop, true);
	for (int i = 0; i < 3; i++)
		assert_int_equal(pthread_join(th[i], NULL), 0);
	assert_int_equal(atomic_load(&st.bad), 0);
}

/*
 * WAIT_AVAILABLE without WAIT_FOR_SUBMIT on a syncobj with nothing submitted waits for the
 * submission, as drm_syncobj_array_wait (which lets either flag through its "no fence" check):
 * a poll is -ETIME (what Mesa's WSI and Vulkan layers test for "not materialised yet"), a wait
 * ends once a fence is there, signalled or not. Before: -EINVAL at once, both kinds.
 */
static void test_wait_available_unsubmitted(void **state)
{
	struct fixture *f = *state;
	pthread_t th;
	uint32_t b = syncobj_new(f->c, 0), t = syncobj_new(f->c, VMB_SYNCOBJ_CREATE_TIMELINE);
	assert_int_equal(__syncobj_wait1(f->c, b, 0, 0, VMB_SYNCOBJ_WAIT_AVAILABLE), -ETIME);
	assert_int_equal(__syncobj_wait1(f->c, t, 8, 0, VMB_SYNCOBJ_WAIT_AVAILABLE), -ETIME);
	struct gate g = gate_new(f->c);
	struct mix_waiter w = {.c = f->c, .h = {b, t}, .pts = {0, 8}, .n = 2,
			       .flags = VMB_SYNCOBJ_WAIT_AVAILABLE | VMB_SYNCOBJ_WAIT_ALL};
	mix_start(&w, &th);
	assert_int_equal(xfer(f->c, g.h, 0, b, 0), 0);
	assert_int_equal(xfer(f->c, g.h, 0, t, 8), 0);
	assert_int_equal(mix_join(&w, th), 0); /* submitted, the gate still closed */
	/* ANY: the first one submitted */
	uint32_t b2 = syncobj_new(f->c, 0);
	w = (struct mix_waiter){.c = f->c, .h = {b2, t}, .pts = {0, 9}, .n = 2, .flags = VMB_SYNCOBJ_WAIT_AVAILABLE};
	mix_start(&w, &th);
	assert_int_equal(tl_signal(f->c, t, 9), 0);
	assert_int_equal(mix_join(&w, th), 0);
	assert_int_equal(w.first, 1);
	/* without either flag, nothing submitted is still -EINVAL */
	assert_int_equal(__syncobj_wait1(f->c, b2, 0, 0, 0), -EINVAL);
	gate_open(&g);
}

static void test_transfer(void **state)
{
	struct fixture *f = *state;
	uint32_t b = syncobj_new(f->c, 0), t = syncobj_new(f->c, VMB_SYNCOBJ_CREATE_TIMELINE);
	uint32_t s = syncobj_new(f->c, VMB_SYNCOBJ_CREATE_SIGNALED);
	struct vmb_syncobj_transfer x;

	/* nothing submitted at the source */
	x = (struct vmb_syncobj_transfer){.src_handle = b, .dst_handle = t, .dst_point = 1};
	assert_int_equal(vmb_syncobj_transfer(f->c, &x), -EINVAL);
	x = (struct vmb_syncobj_transfer){.src_handle = t, .src_point = 1, .dst_handle = b};
	assert_int_equal(vmb_syncobj_transfer(f->c, &x), -EINVAL);
	/* bad points for the kinds */
	x = (struct vmb_syncobj_transfer){.src_handle = s, .src_point = 1, .dst_handle = t, .dst_point = 1};
	assert_int_equal(vmb_syncobj_transfer(f->c, &x), -EINVAL);
	x = (struct vmb_syncobj_transfer){.src_handle = s, .dst_handle = t};
	assert_int_equal(vmb_syncobj_transfer(f->c, &x), -EINVAL);
	x = (struct vmb_syncobj_transfer){.src_handle = s, .dst_handle = b, .dst_point = 1};
	assert_int_equal(vmb_syncobj_transfer(f->c, &x), -EINVAL);
	x = (struct vmb_syncobj_transfer){.src_handle = s, .dst_handle = 777};
	assert_int_equal(vmb_syncobj_transfer(f->c, &x), -ENOENT);
	x = (struct vmb_syncobj_transfer){.src_handle = s, .dst_handle = b, .flags = 1};
	assert_int_equal(vmb_syncobj_transfer(f->c, &x), -EINVAL);
	x = (struct vmb_syncobj_transfer){.src_handle = s, .dst_handle = b, .pad = 1};
	assert_int_equal(vmb_syncobj_transfer(f->c, &x), -EINVAL);
	assert_int_equal(tl_value(f->c, t), 0);
	assert_int_equal(__syncobj_wait1(f->c, b, 0, 0, 0), -EINVAL);

	/* binary -> timeline point -> binary */
	struct gate g = gate_new(f->c);
	x = (struct vmb_syncobj_transfer){.src_handle = g.h, .dst_handle = t, .dst_point = 4};
	assert_int_equal(vmb_syncobj_transfer(f->c, &x), 0);
	x = (struct vmb_syncobj_transfer){.src_handle = t, .src_point = 2, .dst_handle = b};
	assert_int_equal(vmb_syncobj_transfer(f->c, &x), 0);
	assert_int_equal(__syncobj_wait1(f->c, b, 0, 20 * MS, 0), -ETIME);
	gate_open(&g);
	syncobj_wait1(f->c, b);
	assert_int_equal(tl_value(f->c, t), 4);
}

/*
 * A timeline point waits for every unsignalled point up to it: point 7 transferred to a binary
 * syncobj while points 5 (gate A) and 7 (gate B) are pending signals only once both gates are
 * open (a composite of two pending fences), whichever opens first.
 */
static void test_transfer_waits_for_every_point(void **state)
{
	struct fixture *f = *state;
	for (int b_first = 0; b_first < 2; b_first++) {
		uint32_t t = syncobj_new(f->c, VMB_SYNCOBJ_CREATE_TIMELINE), bin = syncobj_new(f->c, 0);
		struct gate a = gate_new(f->c), b = gate_new(f->c);
		struct vmb_syncobj_transfer x = {.src_handle = a.h, .dst_handle = t, .dst_point = 5};
		assert_int_equal(vmb_syncobj_transfer(f->c, &x), 0);
		x = (struct vmb_syncobj_transfer){.src_handle = b.h, .dst_handle = t, .dst_point = 7};
		assert_int_equal(vmb_syncobj_transfer(f->c, &x), 0);
		x = (struct vmb_syncobj_transfer){.src_handle = t, .src_point = 7, .dst_handle = bin};
		assert_int_equal(vmb_syncobj_transfer(f->c, &x), 0);
		assert_int_equal(__syncobj_wait1(f->c, bin, 0, 0, 0), -ETIME);

		struct gate *first = b_first ? &b : &a, *second = b_first ? &a : &b;
		gate_open(first);
		syncobj_wait1(f->c, first->h);
		/* the other gate is still closed: the binary syncobj stays pending */
		assert_int_equal(__syncobj_wait1(f->c, bin, 0, 20 * MS, 0), -ETIME);
		uint64_t q = 7;
		assert_int_equal(arr(f->c, vmb_syncobj_query, &bin, &q, 1), 0);
		assert_int_equal(q, 0);
		gate_open(second);
		syncobj_wait1(f->c, bin);
		assert_int_equal(__syncobj_wait1(f->c, t, 7, 0, 0), 0);
		assert_int_equal(tl_value(f->c, t), 7);
	}
}

/*
 * A point at or below the timeline's value is complete, whatever is pending above it: with
 * point 3 signalled and point 5 behind a closed gate, a wait on 3 (the value itself) or below
 * returns at once, and so do a transfer of point 3 and an in-sync on it.
 */
static void test_point_at_value_complete(void **state)
{
	struct fixture *f = *state;
	uint32_t t = syncobj_new(f->c, VMB_SYNCOBJ_CREATE_TIMELINE), bin = syncobj_new(f->c, 0);
	uint64_t p = 3;
	assert_int_equal(arr(f->c, vmb_syncobj_timeline_signal, &t, &p, 1), 0);
	struct gate g = gate_new(f->c);
	struct vmb_syncobj_transfer x = {.src_handle = g.h, .dst_handle = t, .dst_point = 5};
	assert_int_equal(vmb_syncobj_transfer(f->c, &x), 0);
	assert_int_equal(tl_value(f->c, t), 3);

	assert_int_equal(__syncobj_wait1(f->c, t, 3, 0, 0), 0);
	assert_int_equal(__syncobj_wait1(f->c, t, 2, 0, 0), 0);
	assert_int_equal(__syncobj_wait1(f->c, t, 4, 0, 0), -ETIME); /* 4 waits for 5 */
	x = (struct vmb_syncobj_transfer){.src_handle = t, .src_point = 3, .dst_handle = bin};
	assert_int_equal(vmb_syncobj_transfer(f->c, &x), 0);
	assert_int_equal(__syncobj_wait1(f->c, bin, 0, 0, 0), 0);
	/* a bind waiting on point 3 runs now, not after the gate */
	uint32_t vm = vm_new(f->c, 0), q = queue_new(f->c, vm), done = syncobj_new(f->c, 0);
	struct vmb_sync s[2] = {sync_tl_in(t, 3), sync_out(done)};
	bind_async(f->c, vm, q, NULL, 0, s, 2);
	syncobj_wait1(f->c, done);
	assert_int_equal(__syncobj_wait1(f->c, t, 5, 0, 0), -ETIME);

	gate_open(&g);
	assert_int_equal(__syncobj_wait1(f->c, t, 5, 10 * SEC, 0), 0);
	assert_int_equal(tl_value(f->c, t), 5);
}

static void test_fd(void **state)
{
	struct fixture *f = *state;
	uint32_t s = syncobj_new(f->c, VMB_SYNCOBJ_CREATE_SIGNALED), u = syncobj_new(f->c, 0);
	struct vmb_syncobj_fd a;

	a = (struct vmb_syncobj_fd){.handle = u};
	assert_int_equal(vmb_syncobj_export_fd(f->c, &a), -EINVAL); /* no fence */
	a = (struct vmb_syncobj_fd){.handle = 555};
	assert_int_equal(vmb_syncobj_export_fd(f->c, &a), -ENOENT);
	a = (struct vmb_syncobj_fd){.handle = s, .flags = 1};
	assert_int_equal(vmb_syncobj_export_fd(f->c, &a), -EINVAL);
	a = (struct vmb_syncobj_fd){.handle = s, .point = 1};
	assert_int_equal(vmb_syncobj_export_fd(f->c, &a), -EINVAL);
	a = (struct vmb_syncobj_fd){.fd = -1};
	assert_int_equal(vmb_syncobj_import_fd(f->c, &a), -EBADF);
	a = (struct vmb_syncobj_fd){.fd = 1000000};
	assert_int_equal(vmb_syncobj_import_fd(f->c, &a), -EBADF);
	a = (struct vmb_syncobj_fd){.fd = 0, .point = 3};
	assert_int_equal(vmb_syncobj_import_fd(f->c, &a), -EINVAL);

	/* signalled: readable at once */
	a = (struct vmb_syncobj_fd){.handle = s};
	assert_int_equal(vmb_syncobj_export_fd(f->c, &a), 0);
	struct pollfd p = {.fd = a.fd, .events = POLLIN};
	assert_int_equal(poll(&p, 1, 0), 1);
	close(a.fd);

	/* a gate exported, re-imported: both follow the gate */
	struct gate g = gate_new(f->c);
	a = (struct vmb_syncobj_fd){.handle = g.h};
	assert_int_equal(vmb_syncobj_export_fd(f->c, &a), 0);
	int efd = a.fd;
	p = (struct pollfd){.fd = efd, .events = POLLIN};
	assert_int_equal(poll(&p, 1, 20), 0);
	a = (struct vmb_syncobj_fd){.fd = efd};
	assert_int_equal(vmb_syncobj_import_fd(f->c, &a), 0);
	uint32_t back = a.handle;
	assert_int_equal(__syncobj_wait1(f->c, back, 0, 20 * MS, 0), -ETIME);
	gate_open(&g);
	assert_int_equal(poll(&p, 1, 10000), 1);
	syncobj_wait1(f->c, back);
	close(efd);
}

static unsigned int open_fds(void)
{
	unsigned int n = 0;
	DIR *d = opendir("/proc/self/fd");
	assert_non_null(d);
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

/* Exports of a pending fence: the library holds one descriptor for the fence, whatever the
 * number of exports (it used to keep a duplicate per export: 32 exports took 64 descriptors),
 * and none once it signalled. Every export is readable once signalled and stays readable,
 * whatever the others read. */
static void test_export_descriptors_bounded(void **state)
{
	struct fixture *f = *state;
	struct gate g = gate_new(f->c);
	int fds[32];
	/* the watcher thread just started (gate_new): a sanitizer's runtime may hold a descriptor
	 * for a moment while a thread starts; count what stays */
	unsigned int before = open_fds();
	for (int i = 0; i < 10; i++) {
		usleep(1000);
		unsigned int n = open_fds();
		before = n < before ? n : before;
	}
	for (int i = 0; i < 32; i++) {
		struct vmb_syncobj_fd a = {.handle = g.h};
		assert_int_equal(vmb_syncobj_export_fd(f->c, &a), 0);
		fds[i] = a.fd;
	}
	unsigned int held = open_fds() - before - 32;
	print_message("descriptors held by the library for 32 exports of one fence: %u\n", held);
	assert_true(held <= 1);
	struct pollfd p = {.fd = fds[0], .events = POLLIN};
	assert_int_equal(poll(&p, 1, 0), 0);
	gate_open(&g);
	for (int i = 0; i < 32; i++) {
		p = (struct pollfd){.fd = fds[i], .events = POLLIN};
		assert_int_equal(poll(&p, 1, 10000), 1);
		uint64_t v;
		assert_int_equal(read(fds[i], &v, 8), 8); /* a reader leaves it readable for the others */
	}
	for (int i = 0; i < 32; i++) {
		p = (struct pollfd){.fd = fds[i], .events = POLLIN};
		assert_int_equal(poll(&p, 1, 0), 1);
	}
	/* the gate's fence signalled: nothing of the exports is left in the library (nor of the
	 * gate: gate_open closed its eventfd, the watcher its duplicate). The signalling thread
	 * closes its descriptor just after writing it: allow it that moment (bounded). */
	for (int i = 0; i < 10000 && open_fds() != before + 32 - 2; i++)
		usleep(1000);
	assert_int_equal(open_fds(), before + 32 - 2);
	for (int i = 0; i < 32; i++)
		close(fds[i]);
}

/* The exports of one pending fence share the library's eventfd. A holder that writes to its
 * descriptor (misuse: UAPI.md) must not leave the others empty after the signal: the signal
 * fills the counter whatever it held, so one read by anyone leaves every export readable (before
 * the fix the signal's write failed with EAGAIN and a single read emptied them all). */
static void test_export_written_by_holder_stays_readable(void **state)
{
	struct fixture *f = *state;
	struct gate g = gate_new(f->c);
	struct vmb_syncobj_fd a = {.handle = g.h}, b = {.handle = g.h};
	assert_int_equal(vmb_syncobj_export_fd(f->c, &a), 0);
	assert_int_equal(vmb_syncobj_export_fd(f->c, &b), 0);
	uint64_t one = 1, v;
	assert_int_equal(write(a.fd, &one, 8), 8);
	gate_open(&g);
	syncobj_wait1(f->c, g.h);
	struct pollfd p = {.fd = b.fd, .events = POLLIN};
	assert_int_equal(poll(&p, 1, 10000), 1);
	/* the signalling thread may still be filling the counter: reads until it is full enough */
	for (int i = 0; i < 4; i++)
		assert_int_equal(read(b.fd, &v, 8), 8);
	for (int i = 0; i < 2; i++) {
		p = (struct pollfd){.fd = i ? b.fd : a.fd, .events = POLLIN};
		assert_int_equal(poll(&p, 1, 0), 1);
	}
	close(a.fd);
	close(b.fd);
}

/* Threads exporting one fence while it signals: each export is a readable descriptor in the
 * end, whichever thread made the library's eventfd and whenever the signal came. */
struct exporter {
	struct vmb_client *c;
	uint32_t h;
	pthread_barrier_t *go;
	int fds[8], errs[8];
};

static void *export_many(void *arg)
{
	struct exporter *x = arg;
	pthread_barrier_wait(x->go);
	for (int i = 0; i < 8; i++) {
		struct vmb_syncobj_fd a = {.handle = x->h};
		x->errs[i] = vmb_syncobj_export_fd(x->c, &a);
		x->fds[i] = x->errs[i] ? -1 : a.fd;
	}
	return NULL;
}

static void test_export_racing_signal(void **state)
{
	struct fixture *f = *state;
	enum { THREADS = 3, ROUNDS = 40 };
	for (int round = 0; round < ROUNDS; round++) {
		struct gate g = gate_new(f->c);
		pthread_barrier_t go;
		pthread_barrier_init(&go, NULL, THREADS + 1);
		struct exporter x[THREADS];
		pthread_t th[THREADS];
		for (int t = 0; t < THREADS; t++) {
			x[t] = (struct exporter){.c = f->c, .h = g.h, .go = &go};
			assert_int_equal(pthread_create(&th[t], NULL, export_many, &x[t]), 0);
		}
		pthread_barrier_wait(&go);
		gate_open(&g); /* while the exports go on */
		for (int t = 0; t < THREADS; t++) {
			assert_int_equal(pthread_join(th[t], NULL), 0);
			for (int i = 0; i < 8; i++) {
				if (x[t].errs[i])
					fail_msg("round %d thread %d export %d: %d", round, t, i, x[t].errs[i]);
				struct pollfd p = {.fd = x[t].fds[i], .events = POLLIN};
				assert_int_equal(poll(&p, 1, 10000), 1);
				close(x[t].fds[i]);
			}
		}
		pthread_barrier_destroy(&go);
		struct vmb_syncobj_destroy d = {.handle = g.h};
		assert_int_equal(vmb_syncobj_destroy(f->c, &d), 0);
	}
}

/* The first import of a pending descriptor starts the watcher thread; when the system will not
 * start one, the call says so (-EAGAIN, pthread_create's error), whatever errno held before,
 * changes nothing, and a later import works. */
static void test_import_thread_fails(void **state)
{
	struct fixture *f = *state;
	int efd = eventfd(0, EFD_CLOEXEC); /* not readable: needs the watcher */
	assert_true(efd >= 0);
	struct vmb_syncobj_fd a = {.fd = efd};
	errno = EXDEV; /* stale: pthread_create does not set errno */
	vmb_thread_fail_after(1);
	assert_int_equal(vmb_syncobj_import_fd(f->c, &a), -EAGAIN);
	assert_int_equal(vmb_thread_fail_after(0), 0); /* it fired */
	assert_int_equal(a.handle, 0);
	assert_int_equal(vmb_syncobj_import_fd(f->c, &a), 0);
	assert_int_equal(__syncobj_wait1(f->c, a.handle, 0, 0, 0), -ETIME);
	uint64_t one = 1;
	assert_int_equal(write(efd, &one, 8), 8);
	syncobj_wait1(f->c, a.handle);
	close(efd);
}

static void test_user_fence_ops(void **state)
{
	struct fixture *f = *state;
	uint64_t *v = aligned_alloc(64, 64);
	*v = 0x1234;
	const struct {
		uint16_t op;
		uint64_t value, mask;
		bool pass;
	} cases[] = {
		{VMB_UFENCE_OP_EQ, 0x1234, ~0ull, true},   {VMB_UFENCE_OP_EQ, 0x1235, ~0ull, false},
		{VMB_UFENCE_OP_EQ, 0x0034, 0xff, true},    {VMB_UFENCE_OP_NEQ, 0x1234, ~0ull, false},
		{VMB_UFENCE_OP_NEQ, 0x1, ~0ull, true},     {VMB_UFENCE_OP_GT, 0x1233, ~0ull, true},
		{VMB_UFENCE_OP_GT, 0x1234, ~0ull, false},  {VMB_UFENCE_OP_GTE, 0x1234, ~0ull, true},
		{VMB_UFENCE_OP_GTE, 0x1235, ~0ull, false}, {VMB_UFENCE_OP_LT, 0x1235, ~0ull, true},
		{VMB_UFENCE_OP_LT, 0x1234, ~0ull, false},  {VMB_UFENCE_OP_LTE, 0x1234, ~0ull, true},
		{VMB_UFENCE_OP_LTE, 0x1233, ~0ull, false}, {VMB_UFENCE_OP_LT, 0x40, 0xff, true},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct vmb_user_fence_wait w = {.addr = (uint64_t)(uintptr_t)v, .value = cases[i].value,
						.mask = cases[i].mask, .op = cases[i].op, .timeout = 1 * MS};
		int err = vmb_user_fence_wait(f->c, &w);
		if (err != (cases[i].pass ? 0 : -ETIME))
			fail_msg("case %zu: got %d", i, err);
		if (!cases[i].pass)
			assert_int_equal(w.timeout, 0); /* relative: what is left */
	}
	/* absolute deadline in the past polls; the timeout is left alone */
	struct vmb_user_fence_wait w = {.addr = (uint64_t)(uintptr_t)v, .value = 1, .mask = ~0ull,
					.flags = VMB_UFENCE_WAIT_ABSTIME, .timeout = 5};
	assert_int_equal(vmb_user_fence_wait(f->c, &w), -ETIME);
	assert_int_equal(w.timeout, 5);
	/* a poll (relative 0, absolute in the past) of a value already there passes (docs/UAPI.md,
	 * "Known limits": Xe's would say -ETIME for relative 0); one that is not there times out */
	w = (struct vmb_user_fence_wait){.addr = (uint64_t)(uintptr_t)v, .value = 0x1234, .mask = ~0ull};
	assert_int_equal(vmb_user_fence_wait(f->c, &w), 0);
	assert_int_equal(w.timeout, 0);
	w.flags = VMB_UFENCE_WAIT_ABSTIME;
	w.timeout = 5;
	assert_int_equal(vmb_user_fence_wait(f->c, &w), 0);
	w = (struct vmb_user_fence_wait){.addr = (uint64_t)(uintptr_t)v, .value = 0x1235, .mask = ~0ull};
	assert_int_equal(vmb_user_fence_wait(f->c, &w), -ETIME);
	free(v);
}

/*
 * The mask applies to both sides, as in Xe: (*addr & mask) OP (value & mask), for CPU waits and
 * the GPU's SEM_WAIT alike (one comparison, sync/ufence.h). Each case has bits outside the mask
 * in the location, in the value or in both, so that dropping the masking of either side flips
 * at least one case of each op.
 */
static const struct mask_case {
	uint16_t op;
	uint64_t value, mask;
	bool pass;
} mask_cases[] = {
	/* *addr = 0x1234 throughout; the value's bits outside the mask must not count */
	{VMB_UFENCE_OP_EQ, 0xab34, 0xff, true},
	{VMB_UFENCE_OP_NEQ, 0xab34, 0xff, false},
	{VMB_UFENCE_OP_GT, 0x100000001ull, 0xffff, true},
	{VMB_UFENCE_OP_GTE, 0xff00, 0xff, true},
	{VMB_UFENCE_OP_LT, 0x1234, 0xff00, false},
	{VMB_UFENCE_OP_LTE, 0x133, 0xff, false},
	/* the location's bits outside the mask must not count */
	{VMB_UFENCE_OP_EQ, 0x34, 0xff, true},
	{VMB_UFENCE_OP_LT, 0x40, 0xff, true},
	{VMB_UFENCE_OP_GT, 0x35, 0xff, false},
	{VMB_UFENCE_OP_LTE, 0x33, 0xff, false},
	/* both */
	{VMB_UFENCE_OP_NEQ, 0x5634, 0xff, false},
	{VMB_UFENCE_OP_GTE, 0xff00000000001234ull, 0xffff, true},
	{VMB_UFENCE_OP_EQ, 0xffff, 0, true}, /* mask 0: everything is equal */
};
#define MASK_CASES (sizeof(mask_cases) / sizeof(mask_cases[0]))
#define MASK_LOC 0x1234ull

static void test_user_fence_mask_both_sides(void **state)
{
	struct fixture *f = *state;
	uint64_t *v = aligned_alloc(64, 64);
	*v = MASK_LOC;
	for (size_t i = 0; i < MASK_CASES; i++) {
		const struct mask_case *k = &mask_cases[i];
		struct vmb_user_fence_wait w = {.addr = (uint64_t)(uintptr_t)v, .value = k->value, .mask = k->mask,
						.op = k->op, .timeout = 1 * MS};
		int err = vmb_user_fence_wait(f->c, &w);
		if (err != (k->pass ? 0 : -ETIME))
			fail_msg("case %zu: got %d", i, err);
	}
	free(v);
}

#define SEM_CMD_VA (1ull << 32)
#define SEM_DATA_VA (2ull << 32)

/* The same cases as GPU semaphores: one exec queue per case runs SEM_WAIT, then a store. A
 * passing wait completes the job; one that never passes ends with the job timeout. */
static void test_sem_wait_mask_both_sides(void **state)
{
	(void)state;
	struct vmb_client_opts o = {.vram_size = 16 * MiB, .system_size = 16 * MiB, .job_timeout_ms = 1000};
	struct vmb_client *c;
	assert_int_equal(vmb_client_open("soft", &o, &c), 0);
	uint32_t vm = vm_new(c, 0), cmd_bo = bo_new(c, 64 * KiB, VMB_PLACE_VRAM),
		 data_bo = bo_new(c, 64 * KiB, VMB_PLACE_VRAM);
	uint64_t *cmd = bo_cpu(c, cmd_bo), *data = bo_cpu(c, data_bo);
	bind1(c, vm, op_map(cmd_bo, 0, SEM_CMD_VA, 64 * KiB, VMB_BIND_FLAG_READONLY));
	bind1(c, vm, op_map(data_bo, 0, SEM_DATA_VA, 64 * KiB, 0));
	data[0] = MASK_LOC;
	uint32_t q[MASK_CASES], so[MASK_CASES];
	for (uint32_t i = 0; i < MASK_CASES; i++) {
		const struct mask_case *k = &mask_cases[i];
		uint32_t n = i * 16;
		vmb_cmd_sem_wait(cmd, &n, SEM_DATA_VA, k->op, k->value, k->mask);
		vmb_cmd_store64(cmd, &n, SEM_DATA_VA + 8 + i * 8, 1);
		vmb_cmd_end(cmd, &n);
		struct vmb_exec_queue_create qc = {.vm_id = vm,
						   .engine = {.engine_class = VMB_ENGINE_CLASS_COMPUTE,
							      .engine_instance = i % 2}};
		assert_int_equal(vmb_exec_queue_create(c, &qc), 0);
		q[i] = qc.exec_queue_id;
		so[i] = syncobj_new(c, 0);
		struct vmb_sync s = sync_out(so[i]);
		struct vmb_exec e = {.exec_queue_id = q[i], .address = SEM_CMD_VA + i * 16 * 8, .num_syncs = 1,
				     .syncs = (uint64_t)(uintptr_t)&s};
		assert_int_equal(vmb_exec(c, &e), 0);
	}
	for (uint32_t i = 0; i < MASK_CASES; i++) {
		syncobj_wait1(c, so[i]);
		struct vmb_exec_queue_query qq = {.exec_queue_id = q[i]};
		assert_int_equal(vmb_exec_queue_query(c, &qq), 0);
		uint64_t stored = __atomic_load_n(&data[1 + i], __ATOMIC_ACQUIRE);
		if (qq.error != (mask_cases[i].pass ? 0 : -ETIMEDOUT) || stored != mask_cases[i].pass)
			fail_msg("case %u: job error %d, store %llu", i, qq.error, (unsigned long long)stored);
	}
	assert_int_equal(vmb_client_close(c), 0);
}

static void test_user_fence_bad_args(void **state)
{
	struct fixture *f = *state;
	uint64_t *v = aligned_alloc(64, 64);
	*v = 0;
	uint64_t a = (uint64_t)(uintptr_t)v;
	/* mapped but not readable: with only a "mapped" check, the wait read it and crashed */
	void *none = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(none != MAP_FAILED);
	const struct {
		const char *name;
		struct vmb_user_fence_wait w;
		int err;
	} cases[] = {
		{"op", {.addr = a, .op = VMB_UFENCE_OP_LTE + 1}, -EINVAL},
		{"flags", {.addr = a, .flags = 1u << 2}, -EINVAL},
		{"bo_handle without WAIT_BO", {.addr = a, .bo_handle = 1}, -EINVAL},
		{"exec_queue_serial without exec_queue_id", {.addr = a, .exec_queue_serial = 1}, -EINVAL},
		{"exec_queue_serial not the queue's", {.addr = a, .exec_queue_id = 1, .exec_queue_serial = 1}, -ENOENT},
		{"pad", {.addr = a, .pad = 1}, -EINVAL},
		{"unknown exec queue", {.addr = a, .exec_queue_id = 1}, -ENOENT},
		{"addr 0", {.addr = 0}, -EINVAL},
		{"misaligned", {.addr = a + 4}, -EINVAL},
		{"not mapped", {.addr = 8}, -EFAULT},
		{"PROT_NONE", {.addr = (uint64_t)(uintptr_t)none + 64}, -EFAULT},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct vmb_user_fence_wait w = cases[i].w;
		w.value = 1;
		w.mask = ~0ull;
		int err = vmb_user_fence_wait(f->c, &w);
		if (err != cases[i].err)
			fail_msg("%s: got %d, expected %d", cases[i].name, err, cases[i].err);
	}
	assert_int_equal(vmb_user_fence_wait(NULL, NULL), -EINVAL);
	munmap(none, 4096);
	free(v);
}

/* ---- a fence that a thread sleeps on, as another call's in-fence ---- */

#ifndef VMB_FENCE_CONDVAR
/* The futex word of binary syncobj @h's fence (1 unsignalled, 2 a waiter sleeps on it). */
static uint32_t fence_state(struct vmb_client *c, uint32_t h)
{
	pthread_mutex_lock(&c->sync_lock);
	struct vmb_syncobj *s = vmb_handle_lookup(&c->syncobjs, h);
	assert_non_null(s);
	pthread_mutex_lock(&s->lock);
	uint32_t st = s->fence ? atomic_load(&s->fence->state) : ~0u;
	pthread_mutex_unlock(&s->lock);
	pthread_mutex_unlock(&c->sync_lock);
	return st;
}
#endif

/* A reference to binary syncobj @h's fence. */
static struct vmb_fence *fence_of(struct vmb_client *c, uint32_t h)
{
	pthread_mutex_lock(&c->sync_lock);
	struct vmb_syncobj *s = vmb_handle_lookup(&c->syncobjs, h);
	assert_non_null(s);
	pthread_mutex_lock(&s->lock);
	struct vmb_fence *f = s->fence;
	assert_non_null(f);
	vmb_fence_get(f);
	pthread_mutex_unlock(&s->lock);
	pthread_mutex_unlock(&c->sync_lock);
	return f;
}

struct fence_sleeper {
	struct vmb_fence *f;
	int result;
};

static void *sleep_on_fence(void *arg)
{
	struct fence_sleeper *fs = arg;
	fs->result = vmb_fence_wait(fs->f, VMB_FENCE_FOREVER, false);
	return NULL;
}

struct sync_unmapper {
	struct vmb_client *c;
	uint32_t vm;
	uint64_t addr, range;
	atomic_int result;
};

static void *unmap_in_call(void *arg)
{
	struct sync_unmapper *u = arg;
	/* synchronous: waits inside the call for the pending bind of the same range */
	atomic_store(&u->result, __bind1(u->c, u->vm, op_unmap(u->addr, u->range)));
	return NULL;
}

/*
 * Thread W waits in a synchronous unmap for a gated bind B1, and another thread sleeps on B1's
 * fence (vmb_fence_wait: the fence is marked "a waiter sleeps"); meanwhile bind B2 on another queue takes B1's out-syncobj
 * as its in-sync. B2 must run after B1, not at once: a fence with a sleeping waiter is not
 * signalled (with add_callback confusing the two, B2 ran before the gate opened).
 */
static void test_in_fence_with_sleeping_waiter(void **state)
{
	struct fixture *f = *state;
	uint32_t vm = vm_new(f->c, 0), bo = bo_new(f->c, 64 * KiB, VMB_PLACE_VRAM);
	uint32_t q2 = queue_new(f->c, vm), s1 = syncobj_new(f->c, 0);
	struct gate g = gate_new(f->c);
	struct vmb_bind_op op1 = op_map(bo, 0, 1 * MiB, 64 * KiB, 0);
	struct vmb_sync b1s[2] = {sync_in(g.h), sync_out(s1)};
	bind_async(f->c, vm, 0, &op1, 1, b1s, 2);

	struct sync_unmapper u = {.c = f->c, .vm = vm, .addr = 1 * MiB, .range = 64 * KiB};
	atomic_init(&u.result, 1);
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, unmap_in_call, &u), 0);
	/* A bind waiting in the call also watches the client's stop token (close ends its wait): it
	 * sleeps on an event that a callback on the fence notifies, and leaves no waiter mark. So a
	 * second thread sleeps on the fence itself, as the library's own waits do (vmb_fence_wait). */
	struct fence_sleeper fs = {.f = fence_of(f->c, s1)};
	pthread_t th2;
	assert_int_equal(pthread_create(&th2, NULL, sleep_on_fence, &fs), 0);
#ifndef VMB_FENCE_CONDVAR
	while (fence_state(f->c, s1) != 2) /* it sleeps on B1's fence */
		usleep(100);
#else
	usleep(20000); /* condition variables: no waiter mark to see */
#endif
	assert_int_equal(atomic_load(&u.result), 1);

	static uint64_t done;
	done = 0;
	struct vmb_bind_op op2 = op_map(bo, 0, 8 * MiB, 64 * KiB, 0);
	struct vmb_sync b2s[2] = {sync_in(s1), sync_ufence(&done, 7)};
	bind_async(f->c, vm, q2, &op2, 1, b2s, 2);
	/* B2 waits for B1, which waits for the gate: nothing can write `done` yet */
	assert_int_equal(__ufence_wait(f->c, &done, 7, VMB_UFENCE_OP_EQ, 100 * MS), -ETIME);
	assert_int_equal(__syncobj_wait1(f->c, s1, 0, 0, 0), -ETIME);

	gate_open(&g);
	ufence_wait(f->c, &done, 7);
	syncobj_wait1(f->c, s1); /* B2 ran after B1's fence signalled */
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(pthread_join(th2, NULL), 0);
	assert_int_equal(fs.result, 0);
	vmb_fence_unref(fs.f);
	assert_int_equal(atomic_load(&u.result), 0);
	assert_int_equal(gpu_read64(f->c, vm, 8 * MiB), 0); /* B2's mapping is there (BO zeroed) */
}

/* ---- signals during waits ---- */

static void on_usr1(int sig) { (void)sig; }

struct restarter {
	struct vmb_client *c;
	uint32_t h;
	int64_t deadline;
	atomic_int eintr, result;
	atomic_bool started;
};

static void *wait_restarting(void *arg)
{
	struct restarter *r = arg;
	struct vmb_syncobj_wait w = {.handles = (uint64_t)(uintptr_t)&r->h, .count = 1, .timeout_ns = r->deadline};
	int err;
	atomic_store(&r->started, true);
	/* an absolute deadline: the same call restarts unchanged */
	while ((err = vmb_syncobj_wait(r->c, &w)) == -EINTR)
		atomic_fetch_add(&r->eintr, 1);
	atomic_store(&r->result, err);
	return NULL;
}

static void test_wait_interrupted_restarts(void **state)
{
	struct fixture *f = *state;
	struct sigaction sa = {.sa_handler = on_usr1}, old; /* no SA_RESTART */
	sigemptyset(&sa.sa_mask);
	assert_int_equal(sigaction(SIGUSR1, &sa, &old), 0);
	struct gate g = gate_new(f->c);
	struct restarter r = {.c = f->c, .h = g.h, .deadline = vmb_now_ns() + 30 * SEC};
	atomic_init(&r.result, 1);
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, wait_restarting, &r), 0);
	while (!atomic_load(&r.started))
		usleep(100);
	for (int i = 0; i < 50; i++) {
		pthread_kill(th, SIGUSR1);
		usleep(1000);
	}
	gate_open(&g);
	pthread_join(th, NULL);
	print_message("syncobj wait restarted %d times\n", atomic_load(&r.eintr));
	assert_int_equal(atomic_load(&r.result), 0);
#ifndef VMB_FENCE_CONDVAR
	assert_true(atomic_load(&r.eintr) >= 1);
#endif
	sigaction(SIGUSR1, &old, NULL);
}

/* A relative wait restarted after each -EINTR, as sync.h says, under a signal storm: the
 * call writes the time left back, so the restarts end at the first call's deadline with -ETIME
 * (it used to start a fresh 20 ms each time and never end while the storm lasted). */
struct storm {
	pthread_t target;
	atomic_bool stop, gave_up;
	atomic_int sent;
};

static void *storm_main(void *arg)
{
	struct storm *s = arg;
	int64_t end = vmb_now_ns() + 10 * SEC; /* a hang bound, far above the 20 ms asked for */
	while (!atomic_load(&s->stop)) {
		if (vmb_now_ns() > end) {
			atomic_store(&s->gave_up, true);
			break;
		}
		pthread_kill(s->target, SIGUSR1);
		atomic_fetch_add(&s->sent, 1);
		usleep(100);
	}
	return NULL;
}

static void test_relative_wait_restarted_times_out(void **state)
{
	struct fixture *f = *state;
	struct sigaction sa = {.sa_handler = on_usr1}, old;
	sigemptyset(&sa.sa_mask);
	assert_int_equal(sigaction(SIGUSR1, &sa, &old), 0);
	struct gate g = gate_new(f->c); /* never opened during the wait */
	struct storm st = {.target = pthread_self()};
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, storm_main, &st), 0);
	struct vmb_syncobj_wait w = {.handles = (uint64_t)(uintptr_t)&g.h, .count = 1, .timeout_ns = 20 * MS,
				     .flags = VMB_SYNCOBJ_WAIT_RELATIVE};
	int err, eintr = 0;
	int64_t last = w.timeout_ns;
	while ((err = vmb_syncobj_wait(f->c, &w)) == -EINTR) {
		eintr++;
		/* what is left, never more than before */
		assert_true(w.timeout_ns >= 0 && w.timeout_ns <= last);
		last = w.timeout_ns;
	}
	bool gave_up = atomic_load(&st.gave_up);
	atomic_store(&st.stop, true);
	pthread_join(th, NULL);
	sigaction(SIGUSR1, &old, NULL);
	print_message("%d signals, %d restarts\n", atomic_load(&st.sent), eintr);
	assert_false(gave_up); /* ended while the storm still ran */
	assert_int_equal(err, -ETIME);
	gate_open(&g);
}

struct uf_restarter {
	struct vmb_client *c;
	uint64_t *loc;
	atomic_int eintr, result;
	atomic_bool started;
	int64_t timeout_left;
};

static void *ufence_wait_restarting(void *arg)
{
	struct uf_restarter *r = arg;
	struct vmb_user_fence_wait w = {.addr = (uint64_t)(uintptr_t)r->loc, .value = 42, .mask = ~0ull,
					.op = VMB_UFENCE_OP_EQ, .timeout = 30 * SEC};
	int err;
	atomic_store(&r->started, true);
	/* the same struct again: its relative timeout now holds what is left */
	while ((err = vmb_user_fence_wait(r->c, &w)) == -EINTR)
		atomic_fetch_add(&r->eintr, 1);
	r->timeout_left = w.timeout;
	atomic_store(&r->result, err);
	return NULL;
}

static void test_user_fence_wait_interrupted_restarts(void **state)
{
	struct fixture *f = *state;
	struct sigaction sa = {.sa_handler = on_usr1}, old;
	sigemptyset(&sa.sa_mask);
	assert_int_equal(sigaction(SIGUSR1, &sa, &old), 0);
	static uint64_t loc;
	loc = 0;
	/* the device writes the fence: an asynchronous bind behind a gate */
	uint32_t vm = vm_new(f->c, 0), bo = bo_new(f->c, 64 * KiB, VMB_PLACE_VRAM);
	struct gate g = gate_new(f->c);
	struct vmb_bind_op op = op_map(bo, 0, 0, 64 * KiB, 0);
	struct vmb_sync s[2] = {sync_in(g.h), sync_ufence(&loc, 42)};
	bind_async(f->c, vm, 0, &op, 1, s, 2);
	struct uf_restarter r = {.c = f->c, .loc = &loc};
	atomic_init(&r.result, 1);
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, ufence_wait_restarting, &r), 0);
	while (!atomic_load(&r.started))
		usleep(100);
	for (int i = 0; i < 50; i++) {
		pthread_kill(th, SIGUSR1);
		usleep(1000);
	}
	assert_int_equal(atomic_load(&r.result), 1); /* still waiting */
	gate_open(&g);
	pthread_join(th, NULL);
	print_message("user-fence wait restarted %d times\n", atomic_load(&r.eintr));
	assert_int_equal(atomic_load(&r.result), 0);
	assert_true(r.timeout_left > 0 && r.timeout_left < 30 * SEC);
#ifndef VMB_FENCE_CONDVAR
	assert_true(atomic_load(&r.eintr) >= 1);
#endif
	sigaction(SIGUSR1, &old, NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_create_destroy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_binary, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wait_any_all, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wait_bad_args, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wait_count_limit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_array_bad_args_change_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_timeline, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wait_for_submit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wait_snapshot, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wait_mixed_kinds, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wait_handle_destroyed_reused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wait_failed_fence, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wait_storm, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wait_available_unsubmitted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_point_claimed_at_parse, setup, teardown),
		cmocka_unit_test_setup_teardown(test_point_claimed_during_bind, setup, teardown),
		cmocka_unit_test_setup_teardown(test_transfer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_transfer_waits_for_every_point, setup, teardown),
		cmocka_unit_test_setup_teardown(test_point_at_value_complete, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fd, setup, teardown),
		cmocka_unit_test_setup_teardown(test_import_thread_fails, setup, teardown),
		cmocka_unit_test_setup_teardown(test_export_descriptors_bounded, setup, teardown),
		cmocka_unit_test_setup_teardown(test_export_written_by_holder_stays_readable, setup, teardown),
		cmocka_unit_test_setup_teardown(test_export_racing_signal, setup, teardown),
		cmocka_unit_test_setup_teardown(test_user_fence_ops, setup, teardown),
		cmocka_unit_test_setup_teardown(test_user_fence_bad_args, setup, teardown),
		cmocka_unit_test_setup_teardown(test_user_fence_mask_both_sides, setup, teardown),
		cmocka_unit_test(test_sem_wait_mask_both_sides),
		cmocka_unit_test_setup_teardown(test_in_fence_with_sleeping_waiter, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wait_interrupted_restarts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_user_fence_wait_interrupted_restarts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_relative_wait_restarted_times_out, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
