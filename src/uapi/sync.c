/* SPDX-License-Identifier: MIT */
/*
 * Entry points: syncobjs and user-fence waits, and the parsing of a call's sync array
 * (struct vmb_sync) for VM_BIND (later exec). Validation order as elsewhere: fields and
 * shapes (-EINVAL, -EFAULT), then lookups (-ENOENT), then state (-EINVAL for a syncobj with no
 * fence or a timeline point that does not go up), then allocation (-ENOMEM).
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <vmbind/bind.h>
#include <vmbind/client.h> /* VMB_CAP_USER_FENCE_BO */
#include <vmbind/sync.h>

#include "core/alloc.h"
#include "core/hostmem.h"
#include "exec/exec.h" /* user-fence waits tied to an exec queue */
#include "sync/syncfd.h"
#include "sync/ufence.h"
#include "uapi/sync.h"
#include "uapi/uapi.h"

#define KNOWN_CREATE (VMB_SYNCOBJ_CREATE_SIGNALED | VMB_SYNCOBJ_CREATE_TIMELINE)
#define KNOWN_WAIT \
	(VMB_SYNCOBJ_WAIT_ALL | VMB_SYNCOBJ_WAIT_FOR_SUBMIT | VMB_SYNCOBJ_WAIT_AVAILABLE | VMB_SYNCOBJ_WAIT_RELATIVE)

static void sync_lock(struct vmb_client *c) { pthread_mutex_lock(&c->sync_lock); }
static void sync_unlock(struct vmb_client *c) { pthread_mutex_unlock(&c->sync_lock); }

/* A reference on syncobj @h, or NULL. */
static struct vmb_syncobj *syncobj_get(struct vmb_client *c, uint32_t h)
{
	sync_lock(c);
	struct vmb_syncobj *s = h ? vmb_handle_lookup(&c->syncobjs, h) : NULL;
	if (s)
		vmb_syncobj_get(s);
	sync_unlock(c);
	return s;
}

/* Looks up @n handles (references into @out). 0 or -ENOENT (none taken). */
static int syncobjs_get(struct vmb_client *c, const uint32_t *h, uint32_t n, struct vmb_syncobj **out)
{
	sync_lock(c);
	for (uint32_t i = 0; i < n; i++) {
		out[i] = h[i] ? vmb_handle_lookup(&c->syncobjs, h[i]) : NULL;
		if (!out[i]) {
			sync_unlock(c);
			return -ENOENT;
		}
	}
	for (uint32_t i = 0; i < n; i++)
		vmb_syncobj_get(out[i]);
	sync_unlock(c);
	return 0;
}

static void syncobjs_put(struct vmb_syncobj **s, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		vmb_syncobj_put(s[i]);
}

/* Adds a new syncobj holding @f (may be NULL) to the table. */
static int syncobj_install(struct vmb_client *c, bool timeline, struct vmb_fence *f, uint32_t *handle)
{
	struct vmb_syncobj *s;
	int err = vmb_syncobj_new(timeline, &s);
	if (err)
		return err;
	if (f)
		vmb_syncobj_replace(s, f);
	sync_lock(c);
	err = vmb_handle_alloc(&c->syncobjs, s, handle);
	sync_unlock(c);
	if (err)
		vmb_syncobj_put(s);
	return err;
}

VMB_ENTRY(vmb_syncobj_create, struct vmb_syncobj_create, args)
{
	if (!args || (args->flags & ~KNOWN_CREATE) || args->reserved)
		return -EINVAL;
	/* a signalled timeline starts complete at point 0: its value is 0 either way */
	bool tl = args->flags & VMB_SYNCOBJ_CREATE_TIMELINE;
	bool sig = (args->flags & VMB_SYNCOBJ_CREATE_SIGNALED) && !tl;
	return syncobj_install(c, tl, sig ? &c->dev->stub : NULL, &args->handle);
}

VMB_ENTRY(vmb_syncobj_destroy, struct vmb_syncobj_destroy, args)
{
	if (!args || args->pad || args->reserved)
		return -EINVAL;
	sync_lock(c);
	struct vmb_syncobj *s = args->handle ? vmb_handle_remove(&c->syncobjs, args->handle) : NULL;
	sync_unlock(c);
	if (!s)
		return -ENOENT;
	vmb_syncobj_put(s);
	return 0;
}

/* Copies in @n handles (and, where @app_points is not 0, @n points into @points) from the
 * application and looks up their syncobjs into @objs (references, -ENOENT): one step of every
 * call that takes a syncobj array. */
static int syncobjs_copy_in(struct vmb_client *c, uint64_t app_handles, uint64_t app_points, uint32_t n,
			    uint32_t *handles, uint64_t *points, struct vmb_syncobj **objs)
{
	int err = vmb_copy_from_app_u64(handles, app_handles, 0, n * sizeof(*handles));
	if (!err && app_points)
		err = vmb_copy_from_app_u64(points, app_points, 0, n * sizeof(*points));
	if (!err)
		err = syncobjs_get(c, handles, n, objs);
	return err;
}

VMB_ENTRY(vmb_syncobj_wait, struct vmb_syncobj_wait, args)
{
	if (!args || args->pad || args->reserved || (args->flags & ~KNOWN_WAIT))
		return -EINVAL;
	if (args->count == 0 || args->count > VMB_SYNCOBJ_WAIT_MAX)
		return -EINVAL;
	if (!args->handles)
		return -EFAULT;
	if ((args->flags & VMB_SYNCOBJ_WAIT_RELATIVE) && args->timeout_ns < 0)
		return -EINVAL;
	int64_t deadline = args->timeout_ns;
	if (args->flags & VMB_SYNCOBJ_WAIT_RELATIVE) {
		int64_t now = vmb_now_ns();
		deadline = args->timeout_ns > VMB_FENCE_FOREVER - now ? VMB_FENCE_FOREVER : now + args->timeout_ns;
	}
	uint32_t n = args->count;
	/* the arrays, copied in: one allocation for handles, points and syncobjs */
	struct vmb_syncobj **objs = vmb_calloc(n, sizeof(*objs) + sizeof(uint64_t) + sizeof(uint32_t));
	if (!objs)
		return -ENOMEM;
	uint64_t *points = args->points ? (uint64_t *)(objs + n) : NULL;
	uint32_t *handles = (uint32_t *)((uint64_t *)(objs + n) + n);
	int err = syncobjs_copy_in(c, args->handles, args->points, n, handles, points, objs);
	if (err) {
		free(objs);
		return err;
	}
	for (uint32_t i = 0; i < n && !err; i++) {
		uint64_t p = points ? points[i] : 0;
		if (objs[i]->timeline ? p == 0 : p != 0)
			err = -EINVAL;
	}
	uint32_t flags = (args->flags & VMB_SYNCOBJ_WAIT_ALL ? VMB_WAIT_ALL : 0) |
			 (args->flags & VMB_SYNCOBJ_WAIT_FOR_SUBMIT ? VMB_WAIT_FOR_SUBMIT : 0) |
			 (args->flags & VMB_SYNCOBJ_WAIT_AVAILABLE ? VMB_WAIT_AVAILABLE : 0);
	if (!err)
		err = vmb_syncobj_wait_many(objs, points, n, flags, deadline, true, &c->stop, &args->first_signaled);
	/* interrupted: a relative timeout now holds what is left, so a restart ends at the same
	 * deadline (restarting with the full timeout never ends under a stream of signals) */
	if (err == -EINTR && (args->flags & VMB_SYNCOBJ_WAIT_RELATIVE) && deadline != VMB_FENCE_FOREVER) {
		int64_t left = deadline - vmb_now_ns();
		args->timeout_ns = left > 0 ? left : 0;
	}
	syncobjs_put(objs, n);
	free(objs);
	return err;
}

enum array_op { ARR_RESET, ARR_SIGNAL, ARR_TIMELINE_SIGNAL, ARR_QUERY };

static int syncobj_array(struct vmb_client *c, struct vmb_syncobj_array *args, enum array_op op)
{
	if (!args || args->flags || args->reserved)
		return -EINVAL;
	if (args->count == 0 || args->count > VMB_SYNCOBJ_ARRAY_MAX)
		return -EINVAL;
	bool with_points = op == ARR_TIMELINE_SIGNAL || op == ARR_QUERY;
	if (with_points != (args->points != 0))
		return -EINVAL;
	if (!args->handles)
		return -EFAULT;
	uint32_t n = args->count;
	/* the arrays, copied in (points copied back by a query): one allocation with the syncobjs */
	struct vmb_syncobj **objs = vmb_calloc(n, sizeof(*objs) + sizeof(uint64_t) + sizeof(uint32_t));
	struct vmb_tl_point **nodes = op == ARR_TIMELINE_SIGNAL ? vmb_calloc(n, sizeof(*nodes)) : NULL;
	int err = !objs || (op == ARR_TIMELINE_SIGNAL && !nodes) ? -ENOMEM : 0;
	uint64_t *points = objs ? (uint64_t *)(objs + n) : NULL;
	uint32_t *handles = objs ? (uint32_t *)(points + n) : NULL;
	if (!err)
		err = vmb_copy_from_app_u64(handles, args->handles, 0, n * sizeof(*handles));
	if (!err && op == ARR_TIMELINE_SIGNAL)
		err = vmb_copy_from_app_u64(points, args->points, 0, n * sizeof(*points));
	if (!err)
		err = syncobjs_get(c, handles, n, objs);
	if (err) {
		free(objs);
		free(nodes);
		return err;
	}
	/* check everything first, so that an error changes nothing */
	for (uint32_t i = 0; i < n && !err; i++) {
		if ((op == ARR_RESET || op == ARR_SIGNAL) && objs[i]->timeline)
			err = -EINVAL;
		if (op == ARR_TIMELINE_SIGNAL && (!objs[i]->timeline || !vmb_syncobj_point_ok(objs[i], points[i])))
			err = -EINVAL;
		/* the same timeline twice: its points go up in the array too */
		for (uint32_t k = 0; op == ARR_TIMELINE_SIGNAL && !err && k < i; k++)
			if (objs[k] == objs[i] && points[k] >= points[i])
				err = -EINVAL;
		if (op == ARR_TIMELINE_SIGNAL && !err && !(nodes[i] = vmb_malloc(sizeof(*nodes[i]))))
			err = -ENOMEM;
	}
	/* the points' claims (the checks above were hints): all of them or none */
	uint32_t claimed = 0;
	while (op == ARR_TIMELINE_SIGNAL && !err && claimed < n) {
		if (!(err = vmb_syncobj_claim_point(objs[claimed], points[claimed], nodes[claimed])))
			claimed++;
	}
	while (err && claimed--)
		vmb_syncobj_release_point(objs[claimed], nodes[claimed]);
	for (uint32_t i = 0; i < n && !err; i++) {
		struct vmb_syncobj *s = objs[i];
		switch (op) {
		case ARR_RESET:
			vmb_syncobj_replace(s, NULL);
			break;
		case ARR_SIGNAL:
			vmb_syncobj_replace(s, &c->dev->stub);
			break;
		case ARR_TIMELINE_SIGNAL:
			vmb_syncobj_fill_point(s, nodes[i], &c->dev->stub);
			nodes[i] = NULL;
			break;
		case ARR_QUERY:
			if (s->timeline) {
				points[i] = vmb_syncobj_value(s);
			} else {
				pthread_mutex_lock(&s->lock);
				points[i] = s->fence && vmb_fence_is_signalled(s->fence);
				pthread_mutex_unlock(&s->lock);
			}
			break;
		}
	}
	if (!err && op == ARR_QUERY)
		err = vmb_copy_to_app_u64(args->points, 0, points, n * sizeof(*points));
	for (uint32_t i = 0; nodes && i < n; i++)
		free(nodes[i]);
	free(nodes);
	syncobjs_put(objs, n);
	free(objs);
	return err;
}

VMB_ENTRY(vmb_syncobj_reset, struct vmb_syncobj_array, args)
{
	return syncobj_array(c, args, ARR_RESET);
}

VMB_ENTRY(vmb_syncobj_signal, struct vmb_syncobj_array, args)
{
	return syncobj_array(c, args, ARR_SIGNAL);
}

VMB_ENTRY(vmb_syncobj_timeline_signal, struct vmb_syncobj_array, args)
{
	return syncobj_array(c, args, ARR_TIMELINE_SIGNAL);
}

VMB_ENTRY(vmb_syncobj_query, struct vmb_syncobj_array, args)
{
	return syncobj_array(c, args, ARR_QUERY);
}

VMB_ENTRY(vmb_syncobj_query_status, struct vmb_syncobj_status, args)
{
	if (!args || args->flags || !VMB_ZERO(args->reserved))
		return -EINVAL;
	if (args->count == 0 || args->count > VMB_SYNCOBJ_ARRAY_MAX)
		return -EINVAL;
	if (!args->handles || !args->status)
		return -EFAULT;
	uint32_t n = args->count;
	/* handles, points and the statuses, copied in and out: one allocation with the syncobjs */
	struct vmb_syncobj **objs = vmb_calloc(n, sizeof(*objs) + sizeof(uint64_t) + 2 * sizeof(uint32_t));
	if (!objs)
		return -ENOMEM;
	uint64_t *points = (uint64_t *)(objs + n);
	uint32_t *handles = (uint32_t *)(points + n);
	int32_t *status = (int32_t *)(handles + n);
	int err = syncobjs_copy_in(c, args->handles, args->points, n, handles, points, objs);
	if (err) {
		free(objs);
		return err;
	}
	for (uint32_t i = 0; i < n && !err; i++)
		if (objs[i]->timeline ? points[i] == 0 : points[i] != 0)
			err = -EINVAL;
	for (uint32_t i = 0; i < n && !err; i++)
		status[i] = vmb_syncobj_status(objs[i], points[i]);
	if (!err)
		err = vmb_copy_to_app_u64(args->status, 0, status, n * sizeof(*status));
	syncobjs_put(objs, n);
	free(objs);
	return err;
}

/* A point fits its syncobj: 0 for binary, non-zero for a timeline. */
static bool point_fits(const struct vmb_syncobj *s, uint64_t point)
{
	return s->timeline ? point != 0 : point == 0;
}

/* The fence of @s at @point (a reference): 0, -EINVAL (not submitted), -ENOMEM. */
static int fence_at(struct vmb_client *c, struct vmb_syncobj *s, uint64_t point, struct vmb_fence **out)
{
	int err = vmb_syncobj_fence(s, point, &c->dev->stub, out);
	return err == -ENOENT ? -EINVAL : err;
}

VMB_ENTRY(vmb_syncobj_transfer, struct vmb_syncobj_transfer, args)
{
	struct vmb_tl_point *node = NULL;
	struct vmb_fence *f = NULL;
	int err;

	if (!args || args->flags || args->pad || args->reserved)
		return -EINVAL;
	struct vmb_syncobj *src = syncobj_get(c, args->src_handle);
	struct vmb_syncobj *dst = syncobj_get(c, args->dst_handle);
	if (!src || !dst) {
		err = -ENOENT;
		goto out;
	}
	err = -EINVAL;
	if (!point_fits(src, args->src_point) || !point_fits(dst, args->dst_point) ||
	    (dst->timeline && !vmb_syncobj_point_ok(dst, args->dst_point)))
		goto out;
	if ((err = fence_at(c, src, args->src_point, &f)))
		goto out;
	if (dst->timeline) {
		if (!(node = vmb_malloc(sizeof(*node)))) {
			err = -ENOMEM;
			goto out;
		}
		/* the check above was a hint: claimed by another call since, the point is not ours */
		if ((err = vmb_syncobj_add_point(dst, args->dst_point, f, node)))
			free(node);
	} else {
		vmb_syncobj_replace(dst, f);
	}
out:
	vmb_fence_unref(f);
	if (src)
		vmb_syncobj_put(src);
	if (dst)
		vmb_syncobj_put(dst);
	return err;
}

VMB_ENTRY(vmb_syncobj_export_fd, struct vmb_syncobj_fd, args)
{
	struct vmb_fence *f;

	if (!args || args->flags || args->pad || args->reserved)
		return -EINVAL;
	struct vmb_syncobj *s = syncobj_get(c, args->handle);
	if (!s)
		return -ENOENT;
	int err = point_fits(s, args->point) ? fence_at(c, s, args->point, &f) : -EINVAL;
	if (!err) {
		err = vmb_fence_export_fd(f, &args->fd);
		vmb_fence_unref(f);
	}
	vmb_syncobj_put(s);
	return err;
}

VMB_ENTRY(vmb_syncobj_import_fd, struct vmb_syncobj_fd, args)
{
	struct vmb_fence *f;

	if (!args || args->flags || args->pad || args->reserved || args->point)
		return -EINVAL;
	int err = vmb_fence_import_fd(&c->dev->fdwatch, args->fd, &f);
	if (err)
		return err;
	err = syncobj_install(c, false, f, &args->handle);
	vmb_fence_unref(f);
	return err;
}

/* ---- user fences ------------------------------------------------------------------------- */

/* A user fence in a BO: the BO's pages pinned into @uf (mem/bo.h), until the fence is freed;
 * uf->addr keeps the offset until the state checks. 0 or -ENOENT. */
static int ufence_bo_get(struct vmb_client *c, uint32_t handle, uint64_t offset, struct vmb_ufence_out *uf)
{
	vmb_lock_shared(c); /* a lookup: the table changes only under the lock exclusive */
	struct vmb_bo *bo = vmb_handle_lookup(&c->bos, handle);
	if (bo)
		vmb_bo_mem_get(bo);
	vmb_unlock(c);
	if (!bo)
		return -ENOENT;
	*uf = (struct vmb_ufence_out){.bo = bo, .addr = offset};
	return 0;
}

/*
 * An address user fence inside one of the client's CPU maps of a BO (vmb_bo_mmap): written (or
 * read, by a wait) through the BO's pages (bo->host, of which the map is another mapping),
 * pinned into @uf as for a BO user fence. The library's own memory, readable and writable for as
 * long as the pin: no check of the address (a system call) is needed. Else false, @uf unchanged.
 */
static bool ufence_in_cpu_map(struct vmb_client *c, struct vmb_ufence_out *uf)
{
	uint64_t off;
	/* no CPU map: no lookup, no device lock. A map made by a call that happened before this
	 * one (the application learnt its address from it) is counted; one made or unmade
	 * meanwhile by another thread may be missed: the address is then checked as any other */
	if (!atomic_load_explicit(&c->ncpu_maps, memory_order_relaxed))
		return false;
	vmb_lock_shared(c);
	struct vmb_bo *bo = vmb_client_cpu_map_pin(c, uf->addr, 8, &off);
	vmb_unlock(c);
	if (!bo)
		return false;
	uf->bo = bo;
	uf->addr = (uint64_t)(uintptr_t)bo->host + off;
	return true;
}

VMB_ENTRY(vmb_user_fence_wait, struct vmb_user_fence_wait, args)
{
	if (!args)
		return -EINVAL;
	bool in_bo = args->flags & VMB_UFENCE_WAIT_BO;
	if (args->pad || (args->exec_queue_serial && !args->exec_queue_id) || (args->flags & ~(VMB_UFENCE_WAIT_ABSTIME | VMB_UFENCE_WAIT_BO)) ||
	    args->op > VMB_UFENCE_OP_LTE || (args->addr & 7) || (in_bo ? !args->bo_handle : args->bo_handle || !args->addr))
		return -EINVAL;
	struct vmb_ufence_out uf = {.addr = args->addr};
	if (in_bo && !(c->dev->caps & VMB_CAP_USER_FENCE_BO))
		return -EOPNOTSUPP; /* nothing of the device's writes there */
	if (in_bo) {
		/* the BO's pages, pinned until the wait ends (the BO may be destroyed meanwhile) */
		int err = ufence_bo_get(c, args->bo_handle, args->addr, &uf);
		if (!err && uf.addr > uf.bo->size - 8)
			err = -EINVAL;
		if (err) {
			if (uf.bo)
				vmb_bo_mem_put(uf.bo);
			return err;
		}
		uf.addr += (uint64_t)(uintptr_t)uf.bo->host;
	} else if (!vmb_host_word_in_data(args->addr) && !ufence_in_cpu_map(c, &uf) &&
		   vmb_host_check(args->addr & ~(uint64_t)4095, 4096, false)) {
		return -EFAULT; /* not readable: the wait would crash */
	}
	/* the exec queue it is tied to, held until the wait ends (its ban wakes the wait) */
	struct vmb_exec_queue *q = NULL;
	if (args->exec_queue_id && !(q = vmb_client_execq_get(c, args->exec_queue_id, args->exec_queue_serial))) {
		if (uf.bo)
			vmb_bo_mem_put(uf.bo);
		return -ENOENT;
	}
	bool abs = args->flags & VMB_UFENCE_WAIT_ABSTIME;
	int64_t now = vmb_now_ns(), deadline;
	if (abs)
		deadline = args->timeout < 0 ? VMB_FENCE_FOREVER : args->timeout;
	else if (args->timeout < 0)
		deadline = VMB_FENCE_FOREVER;
	else
		deadline = args->timeout > VMB_FENCE_FOREVER - now ? VMB_FENCE_FOREVER : now + args->timeout;
	struct vmb_event *ev = &c->dev->ufence_ev;
	const uint64_t *loc = vmb_app_fence(uf.addr);
	int err;
	vmb_event_announce(ev); /* before the first look: the device's writes notify only then */
	for (;;) {
		uint32_t seen = vmb_event_read(ev);
		if (vmb_ufence_passes(args->op, __atomic_load_n(loc, __ATOMIC_ACQUIRE), args->value, args->mask)) {
			err = 0;
			break;
		}
		if (q && atomic_load(&q->banned)) {
			err = -EIO; /* as Xe: after the comparison, before the timeout */
			break;
		}
		/* vmb_client_close() fires the stop, then notifies this event */
		if ((err = vmb_stop_err(&c->stop)) || (err = vmb_event_wait(ev, seen, deadline, true)))
			break;
	}
	vmb_event_retire(ev);
	if (!abs && args->timeout >= 0) {
		int64_t left = deadline - vmb_now_ns();
		args->timeout = left > 0 && err != -ETIME ? left : 0;
	}
	if (uf.bo)
		vmb_bo_mem_put(uf.bo);
	if (q)
		vmb_exec_queue_put(q);
	return err;
}

/* ---- the sync array of a call ------------------------------------------------------------- */

static int check_sync_shape(const struct vmb_sync *s)
{
	if (s->pad || !VMB_ZERO(s->reserved) || (s->flags & ~VMB_SYNC_FLAG_SIGNAL))
		return -EINVAL;
	switch (s->type) {
	case VMB_SYNC_SYNCOBJ:
		return !s->handle || s->addr || s->value ? -EINVAL : 0;
	case VMB_SYNC_TIMELINE_SYNCOBJ:
		return !s->handle || s->addr || !s->value ? -EINVAL : 0;
	case VMB_SYNC_USER_FENCE:
	case VMB_SYNC_BO_USER_FENCE:
		if (s->type == VMB_SYNC_USER_FENCE ? s->handle || !s->addr : !s->handle)
			return -EINVAL;
		if (s->addr & 7)
			return -EINVAL;
		/* the library writes user fences; it does not wait on them (a GPU semaphore does) */
		return s->flags & VMB_SYNC_FLAG_SIGNAL ? 0 : -EOPNOTSUPP;
	default:
		return -EINVAL;
	}
}

int vmb_syncs_check(const struct vmb_sync *syncs, uint32_t n)
{
	int err = 0;
	for (uint32_t i = 0; i < n && !err; i++)
		err = check_sync_shape(&syncs[i]);
	return err;
}

static bool is_ufence(const struct vmb_sync *s)
{
	return s->type == VMB_SYNC_USER_FENCE || s->type == VMB_SYNC_BO_USER_FENCE;
}

static int add_in(void *arg, struct vmb_fence *f)
{
	struct vmb_sync_set *set = arg;
	/* a timeline point waits for many fences: the set keeps the latest of each context */
	int err = vmb_fence_set_add(&set->in, f);
	if (err == -ENOMEM && set->may_block) { /* the caller waits for it, the lock dropped */
		vmb_fence_get(f);
		set->wait_for = f;
	}
	return err;
}

/* Zeroes all of @set but its inline arrays (what parse reads of them it zeroes when it uses them). */
static void sync_set_clear(struct vmb_sync_set *set)
{
	memset(set, 0, offsetof(struct vmb_sync_set, outs_small));
}

/*
 * An asynchronous bind's usual one sync, an out user fence (vmb_syncs_check: a user fence is
 * never an in-sync): what syncs_parse's loops do for it, without them. A function of its own:
 * syncs_parse's early return for a call without syncs stays inlined in its callers.
 */
static __attribute__((noinline)) int parse_one_ufence(struct vmb_client *c, const struct vmb_sync *s,
						      struct vmb_sync_set *set)
{
	struct vmb_ufence_out *uf = &set->ufs_small[0];
	*uf = (struct vmb_ufence_out){.addr = s->addr, .value = s->value};
	set->outs = set->outs_small;
	set->ufs = uf;
	set->nufs = 1;
	set->borrowed = true;
	if (ufence_in_cpu_map(c, uf) || vmb_host_word_writable(s->addr))
		return 0;
	vmb_syncs_fini(set);
	return -EFAULT;
}

static int syncs_parse(struct vmb_client *c, const struct vmb_sync *syncs, uint32_t n, struct vmb_sync_set *set,
		       bool may_borrow)
{
	int err = 0;

	sync_set_clear(set); /* the inline arrays only when used: a bind without syncs (the
			      * common case) zeroes ~50 bytes, not ~300 */
	set->may_block = may_borrow;
	if (!n)
		return 0;
	if (may_borrow && n == 1 && syncs[0].type == VMB_SYNC_USER_FENCE)
		return parse_one_ufence(c, &syncs[0], set);
	if (may_borrow && n <= VMB_SYNCS_INLINE) {
		/* a bind call's few syncs: the set's own arrays (zeroed here), no heap; a job
		 * copies the user fences into itself (vm/bind.h) */
		/* what is read before it is written: a user fence's `bo` (vmb_syncs_fini puts the
		 * first nufs, counted before any is parsed); an out-sync is written whole before
		 * nouts counts it. Not a memset: two variable ones were `rep stos` (their start-up
		 * ~20 ns of an async 1-op call, issue 16) */
		for (uint32_t i = 0; i < n; i++)
			set->ufs_small[i].bo = NULL;
		set->outs = set->outs_small;
		set->ufs = set->ufs_small;
		set->borrowed = true;
	} else {
		set->outs = vmb_calloc(n, sizeof(*set->outs));
		set->ufs = vmb_calloc(n, sizeof(*set->ufs));
	}
	if (!set->outs || !set->ufs) {
		vmb_syncs_fini(set);
		return -ENOMEM;
	}
	/* user fences keep their order in the array (ufs[u] for the u-th); BO user fences are the
	 * device's to support (VMB_CAP_USER_FENCE_BO), before any lookup */
	for (uint32_t i = 0; i < n; i++) {
		set->nufs += is_ufence(&syncs[i]);
		if (syncs[i].type == VMB_SYNC_BO_USER_FENCE && !(c->dev->caps & VMB_CAP_USER_FENCE_BO))
			err = -EOPNOTSUPP;
	}
	if (err) {
		vmb_syncs_fini(set);
		return err;
	}
	/* lookups first (-ENOENT), then state (-EINVAL, -EFAULT), then memory */
	for (uint32_t i = 0, u = 0; i < n && !err; i++) {
		const struct vmb_sync *s = &syncs[i];
		if (s->type == VMB_SYNC_BO_USER_FENCE)
			err = ufence_bo_get(c, s->handle, s->addr, &set->ufs[u]);
		if (is_ufence(s)) {
			u++;
			continue;
		}
		struct vmb_syncobj *o = syncobj_get(c, s->handle);
		if (!o) {
			err = -ENOENT;
			break;
		}
		if ((s->type == VMB_SYNC_TIMELINE_SYNCOBJ) != o->timeline)
			err = -EINVAL; /* the type names the wrong kind of syncobj */
		set->outs[set->nouts++] = (struct vmb_out_sync){.s = o, .point = s->value,
								.in = !(s->flags & VMB_SYNC_FLAG_SIGNAL)};
	}
	for (uint32_t i = 0, k = 0, u = 0; i < n && !err; i++) {
		const struct vmb_sync *s = &syncs[i];
		if (s->type == VMB_SYNC_USER_FENCE) {
			struct vmb_ufence_out *uf = &set->ufs[u++];
			*uf = (struct vmb_ufence_out){.addr = s->addr, .value = s->value};
			if (ufence_in_cpu_map(c, uf))
				continue;
			if (!vmb_host_word_writable(s->addr))
				err = -EFAULT;
			continue;
		}
		if (s->type == VMB_SYNC_BO_USER_FENCE) {
			/* inside the BO; then the word in its pages, which the pin keeps */
			struct vmb_ufence_out *uf = &set->ufs[u++];
			if (uf->addr > uf->bo->size - 8)
				err = -EINVAL;
			uf->addr = (uint64_t)(uintptr_t)uf->bo->host + uf->addr;
			uf->value = s->value;
			continue;
		}
		struct vmb_out_sync *o = &set->outs[k++];
		if (o->in) {
			err = vmb_syncobj_for_each_dep(o->s, o->point, add_in, set);
			/* no memory to record a fence (a bind call): wait for it now, then again
			 * (signalled fences are not recorded). A timeline point's fences stay what
			 * they are; a binary syncobj's one fence is the one it held when it was read
			 * (as Xe's parse, which takes it once): a fence put there while the call
			 * waited is not this call's in-fence */
			while (err == -ENOMEM && set->wait_for) {
				err = vmb_fence_wait_stop(set->wait_for, VMB_FENCE_FOREVER, true, &c->stop);
				vmb_fence_unref(set->wait_for);
				set->wait_for = NULL;
				if (!err && o->s->timeline)
					err = vmb_syncobj_for_each_dep(o->s, o->point, add_in, set);
			}
			if (err == -ENOENT)
				err = -EINVAL; /* nothing submitted there: it could never signal */
		} else {
			set->syncobj_outs++;
			if (o->s->timeline && !vmb_syncobj_point_ok(o->s, o->point))
				err = -EINVAL;
			/* the same timeline twice among the out-syncs: its points go up in the array */
			for (unsigned int m = 0; !err && o->s->timeline && m + 1 < k; m++) {
				if (!set->outs[m].in && set->outs[m].s == o->s && set->outs[m].point >= o->point)
					err = -EINVAL;
			}
			/* without memory, the timeline's spare record (a point pruned gives it back) */
			if (!err && o->s->timeline && !(o->node = vmb_malloc(sizeof(*o->node))) &&
			    !(o->node = vmb_syncobj_take_spare(o->s)))
				err = -ENOMEM;
		}
	}
	/* last, the claims: the checks above were hints; this is the one step that counts, and a
	 * call that claimed first keeps the point (the loser gets -EINVAL, as if it came later) */
	for (unsigned int i = 0; i < set->nouts && !err; i++) {
		struct vmb_out_sync *o = &set->outs[i];
		if (o->node)
			o->claimed = !(err = vmb_syncobj_claim_point(o->s, o->point, o->node));
	}
	if (err)
		vmb_syncs_fini(set);
	return err;
}

int vmb_syncs_parse(struct vmb_client *c, const struct vmb_sync *syncs, uint32_t n, struct vmb_sync_set *set)
{
	return syncs_parse(c, syncs, n, set, false);
}

int vmb_syncs_parse_bind(struct vmb_client *c, const struct vmb_sync *syncs, uint32_t n, struct vmb_sync_set *set)
{
	return syncs_parse(c, syncs, n, set, true);
}

void vmb_syncs_install(struct vmb_sync_set *set, struct vmb_fence *f)
{
	for (unsigned int i = 0; i < set->nouts; i++) {
		struct vmb_out_sync *o = &set->outs[i];
		if (o->in)
			continue;
		if (o->s->timeline) {
			vmb_syncobj_fill_point(o->s, o->node, f);
			o->node = NULL; /* the timeline's now */
			o->claimed = false;
		} else {
			vmb_syncobj_replace(o->s, f);
		}
	}
}

int vmb_syncs_wait_in(struct vmb_sync_set *set, struct vmb_stop *stop)
{
	int err = 0;
	for (unsigned int i = 0; i < set->in.n && !err; i++)
		err = vmb_fence_wait_stop(set->in.v[i], VMB_FENCE_FOREVER, true, stop);
	if (!err)
		vmb_fence_set_fini(&set->in);
	return err;
}

void vmb_syncs_fini(struct vmb_sync_set *set)
{
	if (!set->outs && !set->ufs && !set->in.v && !set->wait_for)
		return; /* nothing taken (a call without syncs): the header is still as parse zeroed it */
	vmb_fence_set_fini(&set->in);
	for (unsigned int i = 0; i < set->nouts; i++) {
		if (set->outs[i].claimed) /* claimed, never installed: give the point back */
			vmb_syncobj_release_point(set->outs[i].s, set->outs[i].node);
		free(set->outs[i].node);
		vmb_syncobj_put(set->outs[i].s);
	}
	if (set->borrowed) {
		vmb_ufences_put(set->ufs, set->nufs);
	} else {
		free(set->outs);
		vmb_ufences_free(set->ufs, set->nufs);
	}
	sync_set_clear(set);
}
