/* SPDX-License-Identifier: MIT */
/*
 * Description: the status of a syncobj's fence (vmb_syncobj_query_status, as a sync_file's):
 * 0 while not complete (pending, nothing submitted, a timeline point above the value), 1 once
 * complete, the negative errno the work ended with otherwise. In the syncobj layer: a binary
 * syncobj's fence; a timeline point's, which is the fence of the first point at or above it,
 * kept after that fence is pruned, each point its own, the last 64 failed ranges kept exactly
 * and older ones merged (never success for a failure). Through the calls: every argument error
 * (exact errno, nothing written); the errors of work after the call (issue 13 item 7): an
 * asynchronous bind whose device commit fails (injected: vmb_commit_fail_after) reports the
 * device's errno in its binary out-syncobj and its timeline point, the binds pending behind it
 * -EIO, later binds and execs on the banned vm fail with -EIO at the call; an exec queued before
 * the ban reports -ECANCELED; an exec that faults reports -EFAULT and the next exec on its banned
 * queue fails with -ECANCELED; work that succeeded reports 1. Queries racing binds that replace
 * the fences, resets and a destroy of a handle queried: 0 or 1 each, or -ENOENT (attack12). The
 * fence of a binary syncobj (an export, a transfer) read while it is reset: never a success for
 * a failed fence; the fence of a timeline point whose own fence failed while an earlier point's
 * is pending ends with that error (atksync).
 */
#include "lib/harness.h"

#include <pthread.h>
#include <stdatomic.h>
#include <vmbind/cmd.h>

#include "core/alloc.h" /* vmb_commit_fail_after(): a device commit that fails */
#include "sync/fence.h"
#include "sync/syncobj.h"

#define SEC 1000000000ll
#define BO_SIZE (2 * MiB)
#define VA_A (16 * MiB)
#define VA_B (64 * MiB)
#define VA_CMD (256 * MiB)

/* ---- the syncobj layer ---- */

static struct vmb_fence *signalled(int error)
{
	struct vmb_fence *f = vmb_fence_create();
	assert_non_null(f);
	assert_int_equal(vmb_fence_signal(f, error), 0);
	return f;
}

static void add_point(struct vmb_syncobj *s, uint64_t point, struct vmb_fence *f)
{
	struct vmb_tl_point *node = malloc(sizeof(*node));
	assert_non_null(node);
	assert_int_equal(vmb_syncobj_add_point(s, point, f, node), 0);
}

static void test_fence_status(void **state)
{
	(void)state;
	struct vmb_fence *f = vmb_fence_create();
	assert_int_equal(vmb_fence_status(f), 0);
	vmb_fence_signal(f, 0);
	assert_int_equal(vmb_fence_status(f), 1);
	vmb_fence_unref(f);
	f = signalled(-ETIMEDOUT);
	assert_int_equal(vmb_fence_status(f), -ETIMEDOUT);
	vmb_fence_unref(f);
}

static void test_binary_status(void **state)
{
	(void)state;
	struct vmb_syncobj *s;
	assert_int_equal(vmb_syncobj_new(false, &s), 0);
	assert_int_equal(vmb_syncobj_status(s, 0), 0); /* nothing submitted */
	struct vmb_fence *f = vmb_fence_create();
	vmb_syncobj_replace(s, f);
	assert_int_equal(vmb_syncobj_status(s, 0), 0); /* pending */
	vmb_fence_signal(f, -EIO);
	assert_int_equal(vmb_syncobj_status(s, 0), -EIO);
	vmb_fence_unref(f);
	f = signalled(0);
	vmb_syncobj_replace(s, f); /* the latest submission's */
	assert_int_equal(vmb_syncobj_status(s, 0), 1);
	vmb_fence_unref(f);
	vmb_syncobj_replace(s, NULL);
	assert_int_equal(vmb_syncobj_status(s, 0), 0);
	vmb_syncobj_put(s);
}

/* Points 2 (ok), 4 (-EIO), 7 (pending, then -ENOMEM), a claim at 9: each point reports the
 * fence that completes it, before and after it is pruned. */
static void test_timeline_status(void **state)
{
	(void)state;
	struct vmb_syncobj *s;
	assert_int_equal(vmb_syncobj_new(true, &s), 0);
	struct vmb_fence *ok = signalled(0), *eio = signalled(-EIO), *later = vmb_fence_create();
	add_point(s, 2, ok);
	add_point(s, 4, eio);
	add_point(s, 7, later);
	struct vmb_tl_point *claim = malloc(sizeof(*claim));
	assert_int_equal(vmb_syncobj_claim_point(s, 9, claim), 0);
	static const int before[] = {0, 1, 1, -EIO, -EIO, 0, 0, 0, 0, 0, 0};
	for (uint64_t p = 1; p <= 10; p++)
		assert_int_equal(vmb_syncobj_status(s, p), before[p]);
	assert_int_equal(vmb_syncobj_value(s), 4); /* 2 and 4 pruned: their fences are gone */
	vmb_fence_signal(later, -ENOMEM);
	static const int after[] = {0, 1, 1, -EIO, -EIO, -ENOMEM, -ENOMEM, -ENOMEM, 0, 0, 0};
	for (uint64_t p = 1; p <= 10; p++)
		assert_int_equal(vmb_syncobj_status(s, p), after[p]);
	assert_int_equal(vmb_syncobj_value(s), 7);
	vmb_syncobj_release_point(s, claim);
	free(claim);
	struct vmb_fence *ok2 = signalled(0);
	add_point(s, 12, ok2); /* after failures: its own status */
	for (uint64_t p = 8; p <= 12; p++)
		assert_int_equal(vmb_syncobj_status(s, p), 1);
	assert_int_equal(vmb_syncobj_status(s, 13), 0);
	assert_int_equal(s->nfailed, 2);
	vmb_fence_unref(ok);
	vmb_fence_unref(eio);
	vmb_fence_unref(later);
	vmb_fence_unref(ok2);
	vmb_syncobj_put(s); /* frees the failed ranges too (LeakSanitizer) */
}

/* More failed fences than a timeline keeps: the newest VMB_TL_FAILED_MAX ranges exactly, the
 * oldest merged; no failed point ever reports success. */
static void test_timeline_failed_ranges_bounded(void **state)
{
	(void)state;
	const int nfail = VMB_TL_FAILED_MAX + 10;
	struct vmb_syncobj *s;
	assert_int_equal(vmb_syncobj_new(true, &s), 0);
	for (int k = 0; k < nfail; k++) { /* point 3k+1 ok, 3k+3 fails with -(k % 100 + 1) */
		struct vmb_fence *a = signalled(0), *b = signalled(-(k % 100 + 1));
		add_point(s, 3 * (uint64_t)k + 1, a);
		add_point(s, 3 * (uint64_t)k + 3, b);
		vmb_fence_unref(a);
		vmb_fence_unref(b);
	}
	assert_int_equal(vmb_syncobj_value(s), 3 * (uint64_t)(nfail - 1) + 3);
	assert_int_equal(s->nfailed, VMB_TL_FAILED_MAX);
	int merged = nfail - VMB_TL_FAILED_MAX; /* the oldest merged + 1 into one range */
	for (int k = 0; k < nfail; k++) {
		uint64_t p = 3 * (uint64_t)k;
		int err = -(k % 100 + 1);
		if (k > merged) { /* exact */
			assert_int_equal(vmb_syncobj_status(s, p + 1), 1);
			assert_int_equal(vmb_syncobj_status(s, p + 2), err);
			assert_int_equal(vmb_syncobj_status(s, p + 3), err);
		} else { /* one range from point 2 to 3 * merged + 3, with the first error */
			if (k > 0)
				assert_int_equal(vmb_syncobj_status(s, p + 1), -1);
			assert_int_equal(vmb_syncobj_status(s, p + 2), -1);
			assert_int_equal(vmb_syncobj_status(s, p + 3), -1);
		}
	}
	assert_int_equal(vmb_syncobj_status(s, 1), 1);
	vmb_syncobj_put(s);
}

/* ---- through the calls ---- */

struct fixture {
	struct vmb_client *c;
	uint32_t vm, other, bo;
	unsigned long failed_before;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	f->c = open_two_vms(&f->vm, &f->other);
	f->bo = bo_new(f->c, BO_SIZE, place_cpu(f->c));
	f->failed_before = vmb_commit_failed_count();
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	vmb_commit_fail_after(0, 0);
	return fixture_close(f, f->c);
}

static int __status(struct vmb_client *c, uint32_t *h, uint64_t *points, int32_t *st, uint32_t n)
{
	struct vmb_syncobj_status a = {.handles = (uint64_t)(uintptr_t)h, .points = (uint64_t)(uintptr_t)points,
				       .status = (uint64_t)(uintptr_t)st, .count = n};
	return vmb_syncobj_query_status(c, &a);
}

/* The status of binary syncobj @h. */
static int32_t status1(struct vmb_client *c, uint32_t h)
{
	int32_t st = 12345;
	assert_int_equal(__status(c, &h, NULL, &st, 1), 0);
	return st;
}

/* The status of timeline @h at @point. */
static int32_t status_at(struct vmb_client *c, uint32_t h, uint64_t point)
{
	int32_t st = 12345;
	assert_int_equal(__status(c, &h, &point, &st, 1), 0);
	return st;
}

static uint32_t exec_queue_new(struct vmb_client *c, uint32_t vm)
{
	struct vmb_exec_queue_create a = {.vm_id = vm, .engine = {.engine_class = VMB_ENGINE_CLASS_COMPUTE}};
	assert_int_equal(vmb_exec_queue_create(c, &a), 0);
	return a.exec_queue_id;
}

static int __exec(struct vmb_client *c, uint32_t xq, uint64_t address, struct vmb_sync *s, uint32_t ns)
{
	struct vmb_exec x = {.exec_queue_id = xq, .address = address, .num_syncs = ns, .syncs = (uint64_t)(uintptr_t)s};
	return vmb_exec(c, &x);
}

static void test_argument_errors(void **state)
{
	struct fixture *f = *state;
	uint32_t b = syncobj_new(f->c, VMB_SYNCOBJ_CREATE_SIGNALED);
	uint32_t t = syncobj_new(f->c, VMB_SYNCOBJ_CREATE_TIMELINE);
	uint32_t h[2] = {b, t};
	uint64_t pts[2] = {0, 1};
	int32_t st[2] = {77, 77};
	struct vmb_syncobj_status a = {.handles = (uint64_t)(uintptr_t)h, .points = (uint64_t)(uintptr_t)pts,
				       .status = (uint64_t)(uintptr_t)st, .count = 2};
	struct vmb_syncobj_status bad;

	bad = a;
	bad.flags = 1;
	assert_int_equal(vmb_syncobj_query_status(f->c, &bad), -EINVAL);
	bad = a;
	bad.reserved[1] = 1;
	assert_int_equal(vmb_syncobj_query_status(f->c, &bad), -EINVAL);
	bad = a;
	bad.count = 0;
	assert_int_equal(vmb_syncobj_query_status(f->c, &bad), -EINVAL);
	bad = a;
	bad.count = VMB_SYNCOBJ_ARRAY_MAX + 1;
	assert_int_equal(vmb_syncobj_query_status(f->c, &bad), -EINVAL);
	bad = a;
	bad.handles = 0;
	assert_int_equal(vmb_syncobj_query_status(f->c, &bad), -EFAULT);
	bad = a;
	bad.status = 0;
	assert_int_equal(vmb_syncobj_query_status(f->c, &bad), -EFAULT);
	assert_int_equal(vmb_syncobj_query_status(f->c, NULL), -EINVAL);
	bad = a;
	bad.points = 0; /* a timeline without its point */
	assert_int_equal(vmb_syncobj_query_status(f->c, &bad), -EINVAL);
	pts[0] = 1; /* a point on the binary syncobj */
	assert_int_equal(vmb_syncobj_query_status(f->c, &a), -EINVAL);
	pts[0] = 0;
	pts[1] = 0; /* point 0 on the timeline */
	assert_int_equal(vmb_syncobj_query_status(f->c, &a), -EINVAL);
	pts[1] = 1;
	h[1] = 9999;
	assert_int_equal(vmb_syncobj_query_status(f->c, &a), -ENOENT);
	h[1] = 0;
	assert_int_equal(vmb_syncobj_query_status(f->c, &a), -ENOENT);
	assert_int_equal(st[0], 77); /* nothing written on error */
	assert_int_equal(st[1], 77);
	h[1] = t;
	assert_int_equal(vmb_syncobj_query_status(f->c, &a), 0);
	assert_int_equal(st[0], VMB_SYNCOBJ_STATUS_OK);
	assert_int_equal(st[1], VMB_SYNCOBJ_STATUS_PENDING); /* nothing submitted */
	uint64_t one = 1;
	struct vmb_syncobj_array sig = {.handles = (uint64_t)(uintptr_t)&t, .points = (uint64_t)(uintptr_t)&one, .count = 1};
	assert_int_equal(vmb_syncobj_timeline_signal(f->c, &sig), 0);
	assert_int_equal(status_at(f->c, t, 1), VMB_SYNCOBJ_STATUS_OK);
	assert_int_equal(status_at(f->c, t, 2), VMB_SYNCOBJ_STATUS_PENDING);
}

/* Work that succeeds: a synchronous-looking async bind, an exec; their out-syncobjs report 1. */
static void test_success_reports_ok(void **state)
{
	struct fixture *f = *state;
	uint32_t s = syncobj_new(f->c, 0), t = syncobj_new(f->c, VMB_SYNCOBJ_CREATE_TIMELINE);
	struct vmb_sync y[2] = {sync_out(s), sync_tl_out(t, 5)};
	struct vmb_bind_op m = op_map(f->bo, 0, VA_A, BO_SIZE, 0);
	bind_async(f->c, f->vm, 0, &m, 1, y, 2);
	syncobj_wait1(f->c, s);
	assert_int_equal(status1(f->c, s), VMB_SYNCOBJ_STATUS_OK);
	assert_int_equal(status_at(f->c, t, 3), VMB_SYNCOBJ_STATUS_OK);
	assert_int_equal(status_at(f->c, t, 5), VMB_SYNCOBJ_STATUS_OK);

	uint32_t xq = exec_queue_new(f->c, f->vm);
	uint64_t *cmd = bo_cpu(f->c, f->bo);
	uint32_t n = 0;
	vmb_cmd_store64(cmd, &n, VA_A + 4096, 0xabc);
	vmb_cmd_end(cmd, &n);
	uint32_t sx = syncobj_new(f->c, 0);
	struct vmb_sync yx = sync_out(sx);
	assert_int_equal(__exec(f->c, xq, VA_A, &yx, 1), 0);
	syncobj_wait1(f->c, sx);
	assert_int_equal(status1(f->c, sx), VMB_SYNCOBJ_STATUS_OK);
	assert_int_equal(gpu_read64(f->c, f->vm, VA_A + 4096), 0xabc);
}

/*
 * Issue 13 item 7: an asynchronous bind, held by a gate, whose device commit fails with -ENOMEM
 * (injected). Before the gate opens its out-syncobjs are pending (0); then its binary out-syncobj
 * and its timeline point report -ENOMEM, the bind behind it on its queue -EIO (binary and its
 * point), the points between report the fence that completed them, the point before the
 * failure still 1; later binds and execs on the banned vm fail at the call with -EIO; an exec
 * queued before the ban reports -ECANCELED.
 */
static void test_commit_failure_reported(void **state)
{
	struct fixture *f = *state;
	uint32_t xq = exec_queue_new(f->c, f->vm);
	struct gate g = gate_new(f->c), gx = gate_new(f->c);
	uint32_t s1 = syncobj_new(f->c, 0), s2 = syncobj_new(f->c, 0), sx = syncobj_new(f->c, 0);
	uint32_t t = syncobj_new(f->c, VMB_SYNCOBJ_CREATE_TIMELINE);
	static uint64_t uf;
	uf = 0;

	struct vmb_bind_op m0 = op_map(f->bo, 0, VA_B, BO_SIZE, 0);
	struct vmb_sync y0 = sync_tl_out(t, 1);
	bind_async(f->c, f->vm, 0, &m0, 1, &y0, 1);
	struct vmb_bind_op m1 = op_map(f->bo, 0, VA_A, BO_SIZE, 0);
	struct vmb_sync y1[4] = {sync_in(g.h), sync_out(s1), sync_tl_out(t, 3), sync_ufence(&uf, 7)};
	bind_async(f->c, f->vm, 0, &m1, 1, y1, 4);
	struct vmb_bind_op m2 = op_unmap(VA_B, BO_SIZE);
	struct vmb_sync y2[2] = {sync_out(s2), sync_tl_out(t, 6)};
	bind_async(f->c, f->vm, 0, &m2, 1, y2, 2);
	struct vmb_sync yx[2] = {sync_in(gx.h), sync_out(sx)};
	assert_int_equal(__exec(f->c, xq, VA_A, yx, 2), 0); /* queued before the ban */

	assert_int_equal(__syncobj_wait1(f->c, t, 1, 10 * SEC, 0), 0);
	uint32_t hs[4] = {s1, s2, t, t};
	uint64_t ps[4] = {0, 0, 1, 3};
	int32_t st[4];
	assert_int_equal(__status(f->c, hs, ps, st, 4), 0);
	assert_int_equal(st[0], VMB_SYNCOBJ_STATUS_PENDING);
	assert_int_equal(st[1], VMB_SYNCOBJ_STATUS_PENDING);
	assert_int_equal(st[2], VMB_SYNCOBJ_STATUS_OK);
	assert_int_equal(st[3], VMB_SYNCOBJ_STATUS_PENDING);

	vmb_commit_fail_after(1, -ENOMEM); /* m1's commit, the next map operation */
	gate_open(&g);
	/* a wait succeeds: it waits for completion, not success (as DRM's) */
	syncobj_wait1(f->c, s1);
	syncobj_wait1(f->c, s2);
	assert_int_equal(__syncobj_wait1(f->c, t, 6, 10 * SEC, 0), 0);
	ufence_wait(f->c, &uf, 7); /* written anyway: a user fence carries no error */
	assert_int_equal(vmb_commit_fail_after(0, 0), 0); /* it fired */
	assert_int_equal(vmb_commit_failed_count(), f->failed_before + 1);
	assert_int_equal(status1(f->c, s1), -ENOMEM);
	assert_int_equal(status1(f->c, s2), -EIO);
	static const int32_t tl[] = {0, 1, -ENOMEM, -ENOMEM, -EIO, -EIO, -EIO, 0};
	for (uint64_t p = 1; p <= 7; p++)
		assert_int_equal(status_at(f->c, t, p), tl[p]);

	/* the ban: every later bind and exec on the vm fails at the call */
	struct vmb_bind_op m3 = op_map(f->bo, 0, VA_B, 4096, 0);
	struct vmb_sync y3 = sync_out(s1);
	assert_int_equal(__bind_async(f->c, f->vm, 0, &m3, 1, &y3, 1), -EIO);
	assert_int_equal(__bind1(f->c, f->vm, m3), -EIO);
	assert_int_equal(status1(f->c, s1), -ENOMEM); /* untouched by the refused call */
	gate_open(&gx);
	syncobj_wait1(f->c, sx);
	assert_int_equal(status1(f->c, sx), -ECANCELED);
	struct vmb_sync yx2 = sync_out(sx);
	assert_int_equal(__exec(f->c, xq, VA_A, &yx2, 1), -EIO);
	assert_int_equal(status1(f->c, sx), -ECANCELED);

	/* the other vm: its work reports success */
	uint32_t so = syncobj_new(f->c, 0);
	struct vmb_sync yo = sync_out(so);
	bind_async(f->c, f->other, 0, &m1, 1, &yo, 1);
	syncobj_wait1(f->c, so);
	assert_int_equal(status1(f->c, so), VMB_SYNCOBJ_STATUS_OK);
}

/* A bind pending on a vm when the vm is destroyed runs at once, cancelled: -ECANCELED. */
static void test_destroyed_pending_reports_cancelled(void **state)
{
	struct fixture *f = *state;
	struct gate g = gate_new(f->c);
	uint32_t s = syncobj_new(f->c, 0);
	struct vmb_bind_op m = op_map(f->bo, 0, VA_A, BO_SIZE, 0);
	struct vmb_sync y[2] = {sync_in(g.h), sync_out(s)};
	bind_async(f->c, f->vm, 0, &m, 1, y, 2);
	assert_int_equal(status1(f->c, s), VMB_SYNCOBJ_STATUS_PENDING);
	struct vmb_vm_destroy d = {.vm_id = f->vm};
	assert_int_equal(vmb_vm_destroy(f->c, &d), 0);
	assert_int_equal(status1(f->c, s), -ECANCELED);
	gate_open(&g);
	f->vm = vm_new(f->c, 0);
}

/* An exec that faults reports -EFAULT; its queue is banned: the next exec fails at the call with
 * -ECANCELED; one queued behind the fault reports -ECANCELED. */
static void test_exec_fault_reported(void **state)
{
	struct fixture *f = *state;
	bind1(f->c, f->vm, op_map(f->bo, 0, VA_CMD, BO_SIZE, 0));
	uint32_t xq = exec_queue_new(f->c, f->vm);
	uint64_t *cmd = bo_cpu(f->c, f->bo);
	uint32_t n = 0;
	vmb_cmd_store64(cmd, &n, VA_B + 8, 1); /* nothing mapped there: a fault */
	vmb_cmd_end(cmd, &n);
	struct gate g = gate_new(f->c);
	uint32_t s1 = syncobj_new(f->c, 0), s2 = syncobj_new(f->c, 0);
	struct vmb_sync y1[2] = {sync_in(g.h), sync_out(s1)};
	struct vmb_sync y2 = sync_out(s2);
	assert_int_equal(__exec(f->c, xq, VA_CMD, y1, 2), 0);
	assert_int_equal(__exec(f->c, xq, VA_CMD, &y2, 1), 0); /* behind it */
	gate_open(&g);
	syncobj_wait1(f->c, s2);
	assert_int_equal(status1(f->c, s1), -EFAULT);
	assert_int_equal(status1(f->c, s2), -ECANCELED);
	struct vmb_exec_queue_query q = {.exec_queue_id = xq};
	assert_int_equal(vmb_exec_queue_query(f->c, &q), 0);
	assert_int_equal(q.error, -EFAULT);
	assert_int_equal(__exec(f->c, xq, VA_CMD, &y2, 1), -ECANCELED);
	assert_int_equal(status1(f->c, s2), -ECANCELED);
}

static void transfer(struct vmb_client *c, uint32_t src, uint64_t sp, uint32_t dst, uint64_t dp)
{
	struct vmb_syncobj_transfer t = {.src_handle = src, .dst_handle = dst, .src_point = sp, .dst_point = dp};
	assert_int_equal(vmb_syncobj_transfer(c, &t), 0);
}

/* The fixture's BO mapped at VA_CMD as a batch that faults (a store to unmapped VA_B + 8). */
static void faulting_batch(struct fixture *f)
{
	bind1(f->c, f->vm, op_map(f->bo, 0, VA_CMD, BO_SIZE, 0));
	uint64_t *cmd = bo_cpu(f->c, f->bo);
	uint32_t n = 0;
	vmb_cmd_store64(cmd, &n, VA_B + 8, 1);
	vmb_cmd_end(cmd, &n);
}

/* A transfer moves the error with the fence: from a failed binary syncobj to a timeline point
 * and back, whether the fence had signalled before the transfer or signals after it. */
static void test_transfer_keeps_error(void **state)
{
	struct fixture *f = *state;
	faulting_batch(f);
	struct gate g = gate_new(f->c);
	uint32_t s1 = syncobj_new(f->c, 0), s2 = syncobj_new(f->c, 0);
	uint32_t t = syncobj_new(f->c, VMB_SYNCOBJ_CREATE_TIMELINE);
	struct vmb_sync y1[2] = {sync_in(g.h), sync_out(s1)};
	assert_int_equal(__exec(f->c, exec_queue_new(f->c, f->vm), VA_CMD, y1, 2), 0);
	transfer(f->c, s1, 0, t, 1); /* pending: the fence itself */
	gate_open(&g);
	syncobj_wait1(f->c, s1);
	assert_int_equal(status1(f->c, s1), -EFAULT);
	assert_int_equal(status_at(f->c, t, 1), -EFAULT);
	transfer(f->c, s1, 0, t, 2); /* signalled already */
	assert_int_equal(status_at(f->c, t, 2), -EFAULT);
	transfer(f->c, t, 2, s2, 0);
	assert_int_equal(status1(f->c, s2), -EFAULT);
	transfer(f->c, t, 1, s2, 0);
	assert_int_equal(status1(f->c, s2), -EFAULT);
	uint32_t ok = syncobj_new(f->c, VMB_SYNCOBJ_CREATE_SIGNALED);
	transfer(f->c, ok, 0, s2, 0);
	assert_int_equal(status1(f->c, s2), VMB_SYNCOBJ_STATUS_OK);
}

/* The same through the calls: timeline point 1 pending (a gate), point 3 a failed exec's fence
 * (signalled): a transfer of point 3 (and of 2, which it completes) carries -EFAULT once the gate
 * opens, as query_status says of those points. Before, the transferred fence waited for the
 * gate alone and reported success (status 1). */
static void test_transfer_point_failed_before_earlier(void **state)
{
	struct fixture *f = *state;
	faulting_batch(f);
	uint32_t bad = syncobj_new(f->c, 0), t = syncobj_new(f->c, VMB_SYNCOBJ_CREATE_TIMELINE);
	struct vmb_sync y = sync_out(bad);
	assert_int_equal(__exec(f->c, exec_queue_new(f->c, f->vm), VA_CMD, &y, 1), 0);
	assert_int_equal(syncobj_error(f->c, bad), -EFAULT);
	struct gate g = gate_new(f->c);
	transfer(f->c, g.h, 0, t, 1);
	transfer(f->c, bad, 0, t, 3);
	uint32_t to[2] = {syncobj_new(f->c, 0), syncobj_new(f->c, 0)};
	transfer(f->c, t, 3, to[0], 0);
	transfer(f->c, t, 2, to[1], 0);
	gate_open(&g);
	assert_int_equal(syncobj_error(f->c, to[0]), -EFAULT);
	assert_int_equal(syncobj_error(f->c, to[1]), -EFAULT);
	assert_int_equal(status_at(f->c, t, 2), -EFAULT);
	assert_int_equal(status_at(f->c, t, 3), -EFAULT);
}

/* Status queries racing the syncobjs' changes (attack12): one thread queries a binary syncobj
 * and a timeline point (together and alone) while another submits binds that replace the
 * binary's fence and add timeline points, resets the binary syncobj, and destroys and re-creates
 * a third syncobj that the query also names. Every query returns 0 with each status 0 or 1 (no
 * work fails here), or -ENOENT while the third handle is gone; TSan: no race. */
struct status_race {
	struct fixture *f;
	uint32_t bin, tl;
	atomic_uint third;
	atomic_bool stop;
	int bad;
};

static void *status_querier(void *arg)
{
	struct status_race *r = arg;
	while (!atomic_load(&r->stop)) {
		uint32_t h[3] = {r->bin, r->tl, atomic_load(&r->third)};
		uint64_t p[3] = {0, 1, 0};
		int32_t st[3] = {99, 99, 99};
		int e = __status(r->f->c, h, p, st, 3);
		if (e == -ENOENT)
			continue;
		if (e || st[0] < 0 || st[0] > 1 || st[1] < 0 || st[1] > 1 || st[2] < 0 || st[2] > 1)
			r->bad++;
	}
	return NULL;
}

static void test_status_races_changes(void **state)
{
	struct fixture *f = *state;
	struct status_race r = {.f = f, .bin = syncobj_new(f->c, 0), .tl = syncobj_new(f->c, VMB_SYNCOBJ_CREATE_TIMELINE)};
	atomic_init(&r.third, syncobj_new(f->c, 0));
	atomic_init(&r.stop, false);
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, status_querier, &r), 0);
	for (uint64_t i = 0; i < 200; i++) {
		struct vmb_sync s[2] = {sync_out(r.bin), sync_tl_out(r.tl, i + 1)};
		struct vmb_bind_op op = (i & 1) ? op_unmap(64 * MiB, 4096) : op_map(f->bo, 0, 64 * MiB, 4096, 0);
		bind_async(f->c, f->vm, 0, &op, 1, s, 2);
		if (i % 7 == 0) {
			struct vmb_syncobj_array a = {.handles = (uint64_t)(uintptr_t)&r.bin, .count = 1};
			assert_int_equal(vmb_syncobj_reset(f->c, &a), 0);
		}
		if (i % 5 == 0) {
			struct vmb_syncobj_destroy d = {.handle = atomic_load(&r.third)};
			assert_int_equal(vmb_syncobj_destroy(f->c, &d), 0);
			atomic_store(&r.third, syncobj_new(f->c, 0));
		}
	}
	atomic_store(&r.stop, true);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(r.bad, 0);
	assert_int_equal(__syncobj_wait1(f->c, r.tl, 200, 10 * SEC, 0), 0);
	assert_int_equal(status_at(f->c, r.tl, 200), 1);
}

/* ---- one fence's status, read racing a reset ---- */

/*
 * A timeline point whose own fence already failed while an earlier point's fence is pending: the
 * fence vmb_syncobj_fence gives for it (an export, a transfer) ends with the point's error, as
 * vmb_syncobj_status reports once the earlier one signals; likewise a point between the two,
 * which the failed fence completes.
 */
static void test_fence_of_point_failed_early(void **state)
{
	(void)state;
	for (uint64_t at = 2; at <= 3; at++) {
		struct vmb_syncobj *s;
		assert_int_equal(vmb_syncobj_new(true, &s), 0);
		struct vmb_fence *first = vmb_fence_create(), *bad = signalled(-EIO), *stub = signalled(0), *out = NULL;
		add_point(s, 1, first);
		add_point(s, 3, bad);
		assert_int_equal(vmb_syncobj_fence(s, at, stub, &out), 0);
		vmb_fence_signal(first, 0);
		assert_int_equal(vmb_syncobj_status(s, at), -EIO);
		assert_true(vmb_fence_is_signalled(out));
		assert_int_equal(vmb_fence_status(out), -EIO);
		vmb_fence_unref(out);
		vmb_fence_unref(first);
		vmb_fence_unref(bad);
		vmb_fence_unref(stub);
		vmb_syncobj_put(s);
	}
}

/* calls of the race below (VMB_RACE_ITERS); it also stops after 1.5 s (slow sanitizer builds) */
static int race_iters = 4000000;

struct flipper {
	struct vmb_syncobj *s;
	struct vmb_fence *f;
	uint64_t seed;
	atomic_bool stop;
};

static void *flip(void *arg)
{
	struct flipper *fl = arg;
	uint64_t seed = fl->seed;
	while (!atomic_load(&fl->stop)) {
		vmb_syncobj_replace(fl->s, fl->f);
		for (uint64_t k = rnd_below(&seed, 64); k; k--)
			atomic_signal_fence(memory_order_seq_cst);
		vmb_syncobj_replace(fl->s, NULL);
		for (uint64_t k = rnd_below(&seed, 16); k; k--)
			atomic_signal_fence(memory_order_seq_cst);
	}
	return NULL;
}

/*
 * vmb_syncobj_fence (an export, a transfer's source) of a binary syncobj that only ever holds a
 * fence failed with -EIO, or nothing, while another thread puts the fence there and resets it:
 * each result is -ENOENT (nothing there) or a fence that says -EIO, never success. Before, the
 * fence was read (signalled: nothing to wait for) and its status read again under a second hold
 * of the lock: a reset between the two gave "complete, status 0", and the stub, a success
 * (seen within 0.1 to 3.4 million calls on two cores: the test makes up to 4 million).
 */
static void test_fence_of_binary_racing_reset(void **state)
{
	(void)state;
	struct flipper fl = {.f = signalled(-EIO), .seed = test_seed("fence_of_binary_racing_reset")};
	assert_int_equal(vmb_syncobj_new(false, &fl.s), 0);
	atomic_init(&fl.stop, false);
	struct vmb_fence *stub = signalled(0);
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, flip, &fl), 0);
	unsigned int got = 0, none = 0;
	int64_t end = vmb_now_ns() + 1500 * 1000000ll;
	for (int i = 0; i < race_iters && ((i & 1023) || vmb_now_ns() < end); i++) {
		struct vmb_fence *out = NULL;
		int err = vmb_syncobj_fence(fl.s, 0, stub, &out);
		if (err == -ENOENT) {
			none++;
			continue;
		}
		assert_int_equal(err, 0);
		int st = vmb_fence_status(out);
		vmb_fence_unref(out);
		if (st != -EIO) {
			atomic_store(&fl.stop, true);
			print_message("call %d: status %d\n", i, st);
		}
		assert_int_equal(st, -EIO);
		got++;
	}
	atomic_store(&fl.stop, true);
	pthread_join(th, NULL);
	print_message("%u fences, %u none\n", got, none);
	vmb_syncobj_put(fl.s);
	vmb_fence_unref(fl.f);
	vmb_fence_unref(stub);
}

int main(void)
{
	if (getenv("VMB_RACE_ITERS"))
		race_iters = atoi(getenv("VMB_RACE_ITERS"));
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fence_status),
		cmocka_unit_test(test_binary_status),
		cmocka_unit_test(test_timeline_status),
		cmocka_unit_test(test_timeline_failed_ranges_bounded),
		cmocka_unit_test(test_fence_of_binary_racing_reset),
		cmocka_unit_test(test_fence_of_point_failed_early),
		cmocka_unit_test_setup_teardown(test_argument_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_success_reports_ok, setup, teardown),
		cmocka_unit_test_setup_teardown(test_commit_failure_reported, setup, teardown),
		cmocka_unit_test_setup_teardown(test_destroyed_pending_reports_cancelled, setup, teardown),
		cmocka_unit_test_setup_teardown(test_exec_fault_reported, setup, teardown),
		cmocka_unit_test_setup_teardown(test_transfer_keeps_error, setup, teardown),
		cmocka_unit_test_setup_teardown(test_transfer_point_failed_before_earlier, setup, teardown),
		cmocka_unit_test_setup_teardown(test_status_races_changes, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
