/* SPDX-License-Identifier: MIT */
/*
 * Entry points: vm create/destroy, VM_BIND, the GPU view, mapping and statistics queries.
 *
 * VM_BIND validation follows the kernel's rules for ioctls, in this order, one errno per cause:
 *   1. the call's own fields: pad/reserved zero, known flags, counts within limits (-EINVAL),
 *      array pointers present (-EFAULT);
 *   2. each operation's shape, without looking anything up: reserved zero, known op and flags,
 *      fields that op does not use are zero, op/flag combinations, alignment, range != 0,
 *      overflow-safe addr + range, offset + range, userptr + range (-EINVAL);
 *   3. each sync's shape (-EINVAL; a user fence as in-sync: -EOPNOTSUPP);
 *   4. syncs: syncobj lookups (-ENOENT), state (-EINVAL: an in-syncobj with no fence, a timeline
 *      point that does not go up; -EFAULT: a user fence not mapped), allocations (-ENOMEM);
 *   5. lookups: vm, queue, BOs (-ENOENT); an LR vm with syncobj out-syncs (-EOPNOTSUPP);
 *   6. ranges against what was looked up: inside the vm, inside the BO (-EINVAL).
 * Only then does the bind run, all or nothing: the call hands it to the vm layer in one call,
 * vmb_vm_bind_submit() (vm/job.c), which holds the whole bind policy (asynchronous or in the
 * call, LR vms, the per-queue limit, PREFETCH, the low-memory fallback, the one ordering rule).
 * This file only copies, checks, looks up and dispatches; it hands the parsed syncs over as
 * struct vmb_bind_syncs (in-fences, user fences, a callback that installs the bind's fence in
 * the out-syncobjs).
 *
 * A call that waits acts on the objects its handles named at entry: the vm, the queue and the
 * BOs are looked up once and held until the call returns (by the device lock while the call
 * holds it, by references from before it first drops it: struct bind_objs); after each wait
 * (the vm layer asks through a callback), if one of them was destroyed meanwhile (vm->closed,
 * q->closed, the BO handle no longer names the BO), the call fails with -ENOENT, nothing
 * changed. A handle is looked up again only to compare it with the held object: the call never
 * acts on another object that took it over. (Syncobjs are held the same way, by the parsed sync
 * set.)
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <vmbind/bind.h>
#include <vmbind/client.h>
#include <vmbind/debug.h>
#include <vmbind/vm.h>

#include "core/alloc.h"
#include "sync/fence.h"
#include "uapi/sync.h"
#include "uapi/uapi.h"
#include "vm/bind.h"
#include "vm/vm.h"

#define KNOWN_VM_FLAGS (VMB_VM_CREATE_SCRATCH_PAGE | VMB_VM_CREATE_LR_MODE | VMB_VM_CREATE_RESTART_MODE)
#define KNOWN_OP_FLAGS (VMB_BIND_FLAG_READONLY | VMB_BIND_FLAG_NULL)
#define KNOWN_BIND_FLAGS VMB_VM_BIND_FLAG_ASYNC
/* ops copied to the stack rather than the heap: up to 32 (a 32-piece MAP, bench pipeline's,
 * allocates nothing for them: 32 x (64 + 48) bytes of stack) */
#define BIND_SMALL 32
#define BIND_SYNCS_SMALL 8 /* syncs likewise */

VMB_ENTRY(vmb_vm_create, struct vmb_vm_create, args)
{
	struct vmb_vm *vm;
	uint64_t va_max, sizes;
	uint32_t h;
	int err;

	if (!args || (args->flags & ~KNOWN_VM_FLAGS) || !VMB_ZERO(args->reserved))
		return -EINVAL;
	va_max = 1ull << c->dev->va_bits;
	if (args->va_size > va_max || (args->va_size & vmb_granule_mask(c)))
		return -EINVAL;
	sizes = args->page_sizes ? args->page_sizes : c->dev->page_sizes;
	if (!(sizes & c->dev->min_page_size) || (sizes & ~c->dev->page_sizes))
		return -EINVAL;
	if ((args->flags & VMB_VM_CREATE_SCRATCH_PAGE) && !(c->dev->caps & VMB_CAP_SCRATCH_PAGE))
		return -EOPNOTSUPP; /* a device without scratch pages (CUDA) */
	vmb_lock(c);
	err = vmb_vm_new(c->dev, args->flags, args->va_size ? args->va_size : c->dev->va_size_default, sizes, &vm);
	if (!err) {
		err = vmb_handle_alloc(&c->vms, vm, &h);
		if (err)
			vmb_vm_free(vm);
		else {
			args->vm_id = h;
			args->va_size = vm->va_size;
			args->gpu_base = vm->gpu_base;
		}
	}
	vmb_unlock(c);
	return err;
}

VMB_ENTRY(vmb_vm_destroy, struct vmb_vm_destroy, args)
{
	if (!args || args->pad || args->reserved)
		return -EINVAL;
	vmb_lock(c);
	struct vmb_vm *vm = vmb_handle_remove(&c->vms, args->vm_id);
	bool last = false;
	if (vm) {
		vmb_vm_get(vm); /* the handle's reference goes after the lock */
		vmb_vm_close(vm);
		/* Ours the last reference (no exec queue, no other vm's PREFETCH holds it): nothing
		 * takes another once the vm is out of its BOs' lists (its handle is gone), so its free
		 * after the lock touches nothing another thread reaches. Else the last one goes under
		 * the device lock (an exec queue's end, a job's), and ours here. */
		last = atomic_load(&vm->refs) == 1;
		if (last)
			vmb_vm_unlink_bos(vm);
		else
			vmb_vm_put(vm);
	}
	vmb_unlock(c);
	/* closed and drained: the last reference, whose free tears down the device's vm (CUDA:
	 * unmaps every chunk, milliseconds for a large vm) with no device lock held, so no other
	 * call waits for it */
	if (last)
		vmb_vm_put(vm);
	return vm ? 0 : -ENOENT;
}

/* Step 2: one operation's shape. */
static int check_op_shape(const struct vmb_bind_op *op, uint64_t mask)
{
	uint64_t end;

	if (!VMB_ZERO(op->reserved) || (op->flags & ~KNOWN_OP_FLAGS))
		return -EINVAL;
	switch (op->op) {
	case VMB_BIND_OP_MAP:
		if (op->userptr || op->region)
			return -EINVAL;
		if (op->flags & VMB_BIND_FLAG_NULL) {
			/* sparse: no BO, nothing to protect */
			if (op->bo_handle || op->bo_offset || (op->flags & VMB_BIND_FLAG_READONLY))
				return -EINVAL;
		} else if (!op->bo_handle || (op->bo_offset & mask) ||
			   !vmb_add_ok(op->bo_offset, op->range, &end)) {
			return -EINVAL;
		}
		break;
	case VMB_BIND_OP_MAP_USERPTR:
		if (op->bo_handle || op->bo_offset || op->region || (op->flags & VMB_BIND_FLAG_NULL) ||
		    !op->userptr || (op->userptr & mask) || !vmb_add_ok(op->userptr, op->range, &end))
			return -EINVAL;
		break;
	case VMB_BIND_OP_UNMAP:
		if (op->flags || op->bo_handle || op->bo_offset || op->userptr || op->region)
			return -EINVAL;
		break;
	case VMB_BIND_OP_UNMAP_ALL:
		if (op->flags || !op->bo_handle || op->bo_offset || op->userptr || op->region || op->addr ||
		    op->range)
			return -EINVAL;
		return 0; /* no range */
	case VMB_BIND_OP_PREFETCH:
		if (op->flags || op->bo_handle || op->bo_offset || op->userptr || op->region >= VMB_REGION_COUNT)
			return -EINVAL;
		break;
	default:
		return -EINVAL;
	}
	if (!op->range || (op->addr & mask) || (op->range & mask) ||
	    !vmb_add_ok(op->addr, op->range, &end))
		return -EINVAL;
	return 0;
}

/* Step 2, what the device offers: an op or flag whose capability it lacks (CUDA: MAP_USERPTR). */
static int check_op_device(uint64_t caps, const struct vmb_bind_op *op)
{
	if ((op->op == VMB_BIND_OP_MAP_USERPTR && !(caps & VMB_CAP_USERPTR)) ||
	    (op->op == VMB_BIND_OP_MAP && (op->flags & VMB_BIND_FLAG_NULL) && !(caps & VMB_CAP_NULL_BIND)) ||
	    (op->op == VMB_BIND_OP_PREFETCH && !(caps & VMB_CAP_PREFETCH)))
		return -EOPNOTSUPP;
	return 0;
}

/* Steps 4-5 for one operation: resolve its BO (r->bo) and check ranges against vm and BO. */
static int resolve_op(struct vmb_client *c, const struct vmb_vm *vm, const struct vmb_bind_op *op,
		      struct vmb_bind_req *r)
{
	*r = (struct vmb_bind_req){.op = op->op, .flags = op->flags, .region = op->region, .addr = op->addr,
				   .range = op->range};
	if (op->bo_handle) {
		r->bo = vmb_handle_lookup(&c->bos, op->bo_handle);
		if (!r->bo)
			return -ENOENT;
	}
	if (op->op == VMB_BIND_OP_UNMAP_ALL)
		return 0;
	/* addr + range cannot overflow (checked), so this is exact */
	if (op->addr + op->range > vm->va_size)
		return -EINVAL;
	if (op->op == VMB_BIND_OP_MAP && r->bo) {
		if (op->bo_offset + op->range > r->bo->size)
			return -EINVAL;
		/* a BO private to another vm (bo.h), decided with the lookup, under the same lock */
		if (r->bo->vm_serial && r->bo->vm_serial != vm->serial)
			return -EINVAL;
		r->offset = op->bo_offset;
	}
	if (op->op == VMB_BIND_OP_MAP_USERPTR)
		r->offset = op->userptr;
	return 0;
}

/*
 * What a call names, looked up once (steps 5-6) and used until it returns. While the call holds
 * the device lock shared, the handle tables (which hold a reference on each object) cannot
 * change (only under it exclusive): the objects stay alive without references of the call's
 * own. Before the call first drops the lock (a wait, a PREFETCH retaking it exclusively) the vm
 * layer asks for references (objs_hold, through struct vmb_bind_syncs.hold), which keep them
 * until the call returns. A call that never drops the lock (a bind that does not wait: the
 * common case) takes none (six atomic operations of a 1-op MAP, docs/PERFORMANCE.md).
 */
struct bind_objs {
	struct vmb_vm *vm;
	struct vmb_bind_queue *q;
	struct vmb_bind_req *reqs; /* each with its BO, if any */
	uint32_t n;
	bool held; /* the call took references on all of them */
};

static void objs_hold(struct bind_objs *o)
{
	if (o->held)
		return;
	for (uint32_t i = 0; i < o->n; i++)
		if (o->reqs[i].bo)
			vmb_bo_get(o->reqs[i].bo);
	vmb_bind_queue_get(o->q);
	vmb_vm_get(o->vm);
	o->held = true;
}

/* Before the device lock is released: the objects may go once it is. */
static void objs_put(struct bind_objs *o)
{
	if (o->held) {
		for (uint32_t i = 0; i < o->n; i++)
			if (o->reqs[i].bo)
				vmb_bo_put(o->reqs[i].bo);
		vmb_bind_queue_put(o->q);
		vmb_vm_put(o->vm);
	}
	o->vm = NULL;
	o->held = false;
}

/* Looks the vm, the queue and the ops' BOs up (no references: above): 0, -ENOENT, -EINVAL,
 * -EOPNOTSUPP; on error o->vm is NULL. */
static int objs_get(struct vmb_client *c, const struct vmb_vm_bind *args, const struct vmb_bind_op *ops,
		    const struct vmb_sync_set *set, struct bind_objs *o)
{
	struct vmb_vm *vm = vmb_handle_lookup(&c->vms, args->vm_id);
	struct vmb_bind_queue *q = vm ? vmb_vm_queue(vm, args->queue_id) : NULL;
	int err = 0;

	if (!q || (args->queue_serial && q->serial != args->queue_serial))
		return -ENOENT; /* a serial: another queue under the numbers (queue.h) */
	*o = (struct bind_objs){.vm = vm, .q = q, .reqs = o->reqs};
	for (uint32_t i = 0; i < args->num_binds && !err; i++) {
		err = resolve_op(c, vm, &ops[i], &o->reqs[i]);
		o->n = i + 1; /* reqs[i].bo is set (or NULL) even on error */
	}
	if (!err && (vm->flags & VMB_VM_CREATE_LR_MODE) && set->syncobj_outs)
		err = -EOPNOTSUPP; /* LR vms signal user fences only */
	if (err)
		objs_put(o);
	return err;
}

/* One of the objects was destroyed since the call looked it up (a BO: its handle no longer
 * names it in this client; the BO knows no client's handle). */
static bool objs_gone(const struct vmb_client *c, const struct vmb_bind_op *ops, const struct bind_objs *o)
{
	if (o->vm->closed || o->q->closed)
		return true;
	for (uint32_t i = 0; i < o->n; i++)
		if (o->reqs[i].bo && vmb_handle_lookup(&c->bos, ops[i].bo_handle) != o->reqs[i].bo)
			return true;
	return false;
}

/* What the vm layer calls back into while it runs the bind: the parsed syncs and the objects. */
struct bind_call {
	const struct vmb_client *c;
	const struct vmb_bind_op *ops;
	struct vmb_sync_set *set;
	struct bind_objs *o;
};

static bool call_gone(void *arg)
{
	const struct bind_call *call = arg;
	return objs_gone(call->c, call->ops, call->o);
}

static void call_hold(void *arg)
{
	objs_hold(((struct bind_call *)arg)->o);
}

static void call_install(void *arg, struct vmb_fence *f)
{
	vmb_syncs_install(((struct bind_call *)arg)->set, f);
}

/* ---- restart mode ---- */

static uint64_t hash_bytes(uint64_t h, const void *p, size_t n)
{
	const unsigned char *b = p;
	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 0x100000001b3ull; /* FNV-1a */
	return h;
}

/* What a restart must repeat: the same vm, queue, flags, ops and syncs (their bytes). */
static uint64_t call_hash(const struct vmb_vm_bind *args, const struct vmb_bind_op *ops, const struct vmb_sync *syncs)
{
	uint32_t head[5] = {args->vm_id, args->queue_id, args->num_binds, args->num_syncs, args->flags};
	uint64_t h = hash_bytes(0xcbf29ce484222325ull, head, sizeof(head));
	h = hash_bytes(h, ops, (size_t)args->num_binds * sizeof(*ops));
	return hash_bytes(h, syncs, (size_t)args->num_syncs * sizeof(*syncs));
}

/* The objects the call's handles named when it looked them up: its queue and BOs (their
 * serials: a handle destroyed and handed to a new object names another). */
static uint64_t objs_hash(const struct bind_objs *o)
{
	uint64_t h = hash_bytes(0xcbf29ce484222325ull, &o->q->serial, sizeof(o->q->serial));
	for (uint32_t i = 0; i < o->n; i++) {
		uint64_t serial = o->reqs[i].bo ? o->reqs[i].bo->serial : 0;
		h = hash_bytes(h, &serial, sizeof(serial));
	}
	return h;
}

/* A new cookie for a call of @vm that completed @done ops (the vm's lock). */
static uint64_t restart_cookie(struct vmb_vm *vm, uint32_t done)
{
	uint64_t z = (uint64_t)(uintptr_t)vm ^ (++vm->restart_seq * 0x9e3779b97f4a7c15ull) ^ (uint64_t)vmb_now_ns();
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull; /* splitmix64's finaliser */
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	z ^= z >> 31;
	uint64_t token = z & ~0xffffffffull;
	return (token ? token : 1ull << 32) | done;
}

/* The record of the restart owed to @cookie on @vm, or NULL (the vm's lock). */
static struct vmb_vm_restart *restart_find(struct vmb_vm *vm, uint64_t cookie)
{
	struct vmb_list *pos;
	vmb_list_for_each(pos, &vm->restarts) {
		struct vmb_vm_restart *r = vmb_container_of(pos, struct vmb_vm_restart, link);
		if (r->cookie == cookie)
			return r;
	}
	return NULL;
}

/* Drops the restarts owed on a vm destroyed or banned, but those running (the vm's lock): binds
 * on it fail anyway, and a cookie then names nothing. A running restart drops its own. */
static void restarts_drop_idle(struct vmb_vm *vm)
{
	struct vmb_list *pos, *tmp;
	vmb_list_for_each_safe(pos, tmp, &vm->restarts) {
		struct vmb_vm_restart *r = vmb_container_of(pos, struct vmb_vm_restart, link);
		if (!r->running) {
			vmb_list_del(&r->link);
			free(r);
		}
	}
}

/*
 * Step 1 for a call with a cookie: the vm must owe a restart to that cookie (-EINVAL otherwise:
 * an unknown vm too, there is nothing to restart), none running with it (-EBUSY). @give_up (no
 * ops, no syncs): the restart is given up; the vm takes binds again once it owes none.
 */
static int restart_check(struct vmb_client *c, const struct vmb_vm_bind *args, bool give_up)
{
	int err = -EINVAL;
	struct vmb_vm_restart *r = NULL;
	vmb_lock_shared(c);
	struct vmb_vm *vm = vmb_handle_lookup(&c->vms, args->vm_id);
	if (vm) {
		vmb_vm_lock(vm);
		if (atomic_load(&vm->banned)) /* banned since the call failed: it owes nothing */
			restarts_drop_idle(vm);
		if ((r = restart_find(vm, args->restart)))
			err = r->running ? -EBUSY : 0;
		if (!err && give_up)
			vmb_list_del(&r->link);
		vmb_vm_unlock(vm);
	}
	vmb_unlock(c);
	if (!err && give_up)
		free(r);
	return err;
}

/*
 * A call on a restart-mode vm: claims the owed restart of its cookie (and checks its hash), or
 * checks that none is owed (-EBUSY) and allocates the record it may leave; runs ops from the
 * first not done, one per vmb_vm_bind_submit(), and records the outcome in the vm and in
 * args->restart. Calls that began before another failed run on, and may fail partway too:
 * each is owed its own restart.
 */
static int restart_submit(const struct vmb_client *c, struct vmb_vm_bind *args, const struct vmb_bind_op *ops,
			  const struct vmb_sync *syncs, struct bind_objs *o, struct vmb_bind_syncs *s)
{
	struct vmb_vm *vm = o->vm;
	bool async = args->flags & VMB_VM_BIND_FLAG_ASYNC;
	uint64_t hash = call_hash(args, ops, syncs), objs = objs_hash(o);
	struct vmb_vm_restart *mine = NULL;
	uint32_t i = 0;
	int err = 0;

	vmb_vm_lock(vm);
	if (atomic_load(&vm->banned)) /* a commit failed since a call failed: no restart owed */
		restarts_drop_idle(vm);
	if (!args->restart) {
		err = vmb_list_empty(&vm->restarts) ? 0 : -EBUSY; /* a new call: none owed */
	} else {
		mine = restart_find(vm, args->restart);
		if (!mine || mine->hash != hash)
			err = -EINVAL; /* not a cookie owed (spent since step 1), or another call */
		else if (mine->running)
			err = -EBUSY;
		else if (mine->objs != objs)
			err = -ENOENT; /* its queue or a BO destroyed, the handle given to another */
		else
			mine->running = true;
	}
	vmb_vm_unlock(vm);
	if (err)
		return err;
	if (args->restart)
		i = VMB_VM_BIND_RESTART_DONE(args->restart);
	else if (o->n > 1 && !(mine = vmb_calloc(1, sizeof(*mine))))
		return -ENOMEM; /* what a failure after op 0 leaves; nothing done yet */
	if (!o->n) /* a barrier: nothing to cut */
		return vmb_vm_bind_submit(vm, o->q, o->reqs, 0, async, s);
	for (uint32_t first = i; i < o->n; i++) {
		/* the lock was dropped (references taken first): objects may have gone since */
		if (i > first && o->held && objs_gone(c, ops, o)) {
			err = -ENOENT;
			break;
		}
		struct vmb_bind_syncs one = *s;
		bool last = i == o->n - 1;
		if (i != first)
			one.in = NULL; /* the first op's job waits for them; the others follow it */
		if (!last) { /* out-syncs: once the whole call is done */
			one.ufs = NULL;
			one.nufs = 0;
			one.install = NULL;
		}
		err = vmb_vm_bind_submit(vm, o->q, &o->reqs[i], 1, async, &one);
		if (last) { /* the user fences went to the job, or stay the caller's */
			s->ufs = one.ufs;
			s->nufs = one.nufs;
		}
		if (err)
			break;
	}
	vmb_vm_lock(vm);
	/* ops 0..i-1 done; a vm destroyed or banned meanwhile owes nothing (binds on it fail anyway) */
	bool dead = vm->closed || atomic_load(&vm->banned);
	bool owes = err && i && !dead;
	if (owes) {
		mine->cookie = restart_cookie(vm, i);
		mine->hash = hash;
		mine->objs = objs;
		mine->running = false;
		if (!args->restart)
			vmb_list_add_tail(&mine->link, &vm->restarts);
		args->restart = mine->cookie;
		mine = NULL; /* the vm's now */
	} else {
		if (mine && args->restart)
			vmb_list_del(&mine->link); /* completed, or the vm is dead */
		args->restart = 0;
	}
	if (dead)
		restarts_drop_idle(vm);
	vmb_vm_unlock(vm);
	free(mine);
	return err;
}

/* Steps 4-6, then the bind (vm/job.c), on the arrays the call copied in. */
static int bind_run(struct vmb_client *c, struct vmb_vm_bind *args, const struct vmb_bind_op *ops,
		    const struct vmb_sync *syncs, struct vmb_bind_req *reqs)
{
	struct vmb_sync_set set; /* parse sets it up (a zeroed one is ~300 bytes to write) */
	struct bind_objs o = {.reqs = reqs};
	int err;

	if ((err = vmb_syncs_parse_bind(c, syncs, args->num_syncs, &set)))
		return err;
	vmb_lock_shared(c); /* lookups; the vm layer takes the vm's lock for the bind */
	err = objs_get(c, args, ops, &set, &o);
	if (!err) {
		struct bind_call call = {.c = c, .ops = ops, .set = &set, .o = &o};
		struct vmb_bind_syncs s = {.in = &set.in, .ufs = set.ufs, .nufs = set.nufs, .ufs_borrowed = set.borrowed,
					   /* none without out-syncobjs: vm/job.c may then do an
					    * asynchronous bind without a fence (async_on_stack) */
					   .install = set.syncobj_outs ? call_install : NULL, .hold = call_hold,
					   .stop = &c->stop, .gone = call_gone, .arg = &call,
					   .trace_vm_id = args->vm_id, .trace_queue_id = args->queue_id};
		set.ufs = NULL; /* s has them now */
		set.nufs = 0;
		if (o.vm->flags & VMB_VM_CREATE_RESTART_MODE)
			err = restart_submit(c, args, ops, syncs, &o, &s);
		else if (args->restart)
			err = -EINVAL; /* step 1 found a restart owed: the vm is another by now */
		else
			err = vmb_vm_bind_submit(o.vm, o.q, o.reqs, o.n, args->flags & VMB_VM_BIND_FLAG_ASYNC, &s);
		if (s.ufs_borrowed)
			vmb_ufences_put(s.ufs, s.nufs);
		else
			vmb_ufences_free(s.ufs, s.nufs);
		objs_put(&o);
	}
	vmb_unlock(c);
	vmb_syncs_fini(&set);
	return err;
}

VMB_ENTRY(vmb_vm_bind, struct vmb_vm_bind, args)
{
	struct vmb_bind_op *ops;
	struct vmb_bind_req *reqs = NULL;
	struct vmb_sync *syncs = NULL;
	int err = 0;

	if (!args || args->pad || args->reserved || (args->flags & ~KNOWN_BIND_FLAGS))
		return -EINVAL;
	if (args->restart) { /* restart mode: a restart, or giving one up (no ops, no syncs) */
		bool give_up = !args->num_binds && !args->num_syncs;
		if ((err = restart_check(c, args, give_up)) || give_up) {
			if (!err)
				args->restart = 0;
			return err;
		}
	}
	if (args->num_binds > VMB_VM_BIND_MAX_OPS || args->num_syncs > VMB_VM_BIND_MAX_SYNCS)
		return -EINVAL;
	bool async = args->flags & VMB_VM_BIND_FLAG_ASYNC;
	/* no work and no barrier; or a synchronous call with syncs (it completes in the call) */
	if ((args->num_binds == 0 && args->num_syncs == 0) || (!async && args->num_syncs))
		return -EINVAL;
	if (args->num_binds == 0 && !async)
		return -EINVAL;
	if ((args->num_binds && !args->binds) || (args->num_syncs && !args->syncs))
		return -EFAULT;

	/* Copy the arrays in: what we check is what we run, whatever other threads do to theirs.
	 * Small calls (the common case) use the stack. */
	struct vmb_bind_op ops_small[BIND_SMALL];
	struct vmb_bind_req reqs_small[BIND_SMALL];
	struct vmb_sync syncs_small[BIND_SYNCS_SMALL];
	bool small = args->num_binds <= BIND_SMALL;
	bool small_syncs = args->num_syncs <= BIND_SYNCS_SMALL;
	ops = small ? ops_small : vmb_malloc((size_t)args->num_binds * sizeof(*ops));
	syncs = small_syncs ? syncs_small : vmb_malloc((size_t)args->num_syncs * sizeof(*syncs));
	if (!ops || !syncs) {
		err = -ENOMEM;
		goto out;
	}
	err = vmb_copy_from_app_u64(ops, args->binds, 0, (size_t)args->num_binds * sizeof(*ops));
	if (!err)
		err = vmb_copy_from_app_u64(syncs, args->syncs, 0, (size_t)args->num_syncs * sizeof(*syncs));
	for (uint32_t i = 0; i < args->num_binds && !err; i++)
		if (!(err = check_op_shape(&ops[i], vmb_granule_mask(c))))
			err = check_op_device(c->dev->caps, &ops[i]);
	if (!err)
		err = vmb_syncs_check(syncs, args->num_syncs);
	if (err)
		goto out;
	reqs = small ? reqs_small : vmb_malloc((size_t)args->num_binds * sizeof(*reqs));
	if (!reqs) {
		err = -ENOMEM;
		goto out;
	}
	/* an engine that the bind's signals make busy starts on this thread, its locks dropped */
	vmb_sched_kick_begin();
	err = bind_run(c, args, ops, syncs, reqs);
	vmb_sched_kick_end();
out:
	if (!small) {
		free(reqs);
		free(ops);
	}
	if (!small_syncs)
		free(syncs);
	return err;
}

VMB_ENTRY(vmb_vm_access, struct vmb_vm_access, args)
{
	uint64_t end;
	int err;

	if (!args || (args->flags & ~VMB_ACCESS_WRITE) || !VMB_ZERO(args->reserved))
		return -EINVAL;
	if (!vmb_add_ok(args->addr, args->size, &end))
		return -EINVAL;
	if (args->size && !args->data)
		return -EFAULT;
	/* the data goes through a bounce buffer, a piece at a time (the application's memory is
	 * only reached through the copy helpers); a fault leaves the pieces before it done, as
	 * the GPU view does anyway */
	uint8_t buf[16384];
	bool write = args->flags & VMB_ACCESS_WRITE;
	vmb_lock_shared(c);
	struct vmb_vm *vm = vmb_handle_lookup(&c->vms, args->vm_id);
	err = vm ? 0 : -ENOENT;
	if (vm)
		vmb_vm_lock(vm);
	if (vm && atomic_load(&vm->banned))
		err = -EIO; /* even for size 0: every call on a banned vm */
	for (uint64_t done = 0, len; !err && done < args->size; done += len) {
		len = args->size - done < sizeof(buf) ? args->size - done : sizeof(buf);
		if (write && (err = vmb_copy_from_app_u64(buf, args->data + done, 0, len)))
			break;
		if ((err = vmb_vm_rw(vm, args->addr + done, buf, len, write, NULL)))
			break;
		if (!write)
			err = vmb_copy_to_app_u64(args->data + done, 0, buf, len);
	}
	if (vm)
		vmb_vm_unlock(vm);
	vmb_unlock(c);
	return err;
}

static uint32_t mapping_flags(const struct vmb_va *va)
{
	return (va->obj.flags & VMB_VA_READONLY ? VMB_MAPPING_READONLY : 0) |
	       (va->obj.flags & VMB_VA_NULL ? VMB_MAPPING_NULL : 0) |
	       (va->obj.flags & VMB_VA_USERPTR ? VMB_MAPPING_USERPTR : 0);
}

VMB_ENTRY(vmb_vm_query_mappings, struct vmb_vm_query_mappings, args)
{
	if (!args || !VMB_ZERO(args->reserved))
		return -EINVAL;
	if (args->num_mappings && !args->mappings)
		return -EFAULT;
	vmb_lock_shared(c);
	struct vmb_vm *vm = vmb_handle_lookup(&c->vms, args->vm_id);
	if (!vm) {
		vmb_unlock(c);
		return -ENOENT;
	}
	vmb_vm_lock(vm);
	uint32_t i = 0;
	int err = 0;
	for (struct vmb_va *va = vmb_va_first(&vm->tree); va; va = vmb_va_next(va), i++) {
		if (i >= args->num_mappings || err)
			continue;
		const struct vmb_vm_bo *vb = va->obj.bo;
		struct vmb_mapping_info out = {
			.addr = va->start,
			.range = va->last - va->start + 1,
			.offset = va->obj.offset,
			.page_sizes = vm->dev->ops->sizes_in(vm->dvm, va->start, va->last),
			.bo_handle = vb ? vmb_client_bo_handle(c, vb->bo) : 0,
			.flags = mapping_flags(va),
		};
		err = vmb_copy_to_app_u64(args->mappings, i, &out, sizeof(out));
	}
	if (!err)
		args->num_mappings = i;
	vmb_vm_unlock(vm);
	vmb_unlock(c);
	return err;
}

VMB_ENTRY(vmb_vm_query_faults, struct vmb_vm_query_faults, args)
{
	struct vmb_vm_fault rec[VMB_VM_MAX_FAULTS];
	uint64_t dropped;

	if (!args || args->flags || args->pad || !VMB_ZERO(args->reserved))
		return -EINVAL;
	if (args->num_faults && !args->faults)
		return -EFAULT;
	vmb_lock_shared(c);
	struct vmb_vm *vm = vmb_handle_lookup(&c->vms, args->vm_id);
	uint32_t n = vm ? vmb_vm_faults_read(vm, rec, &dropped) : 0;
	vmb_unlock(c);
	if (!vm)
		return -ENOENT;
	/* the snapshot goes out with no lock held: the application's memory may be slow to reach
	 * (a daemon's transport, uapi/copy.c) */
	int err = 0;
	for (uint32_t i = 0; i < n && i < args->num_faults && !err; i++)
		err = vmb_copy_to_app_u64(args->faults, i, &rec[i], sizeof(rec[i]));
	if (err)
		return err;
	args->num_faults = n;
	args->dropped = dropped;
	return 0;
}

VMB_ENTRY(vmb_vm_query_stats, struct vmb_vm_stats, args)
{
	struct vmb_dev_vm_stats st = {0};

	if (!args || args->pad || !VMB_ZERO(args->reserved))
		return -EINVAL;
	vmb_lock_shared(c);
	struct vmb_vm *vm = vmb_handle_lookup(&c->vms, args->vm_id);
	if (vm) {
		vmb_vm_lock(vm);
		vm->dev->ops->vm_stats(vm->dvm, &st);
		args->num_mappings = vm->tree.count;
		args->bytes_mapped = vm->bytes_mapped;
		args->va_bytes = vm->tree.node_bytes;
		args->pt_bytes = st.pt_bytes;
		args->pt_reserve_bytes = st.pt_reserve_bytes;
		memcpy(args->pt_tables, st.tables, sizeof(st.tables));
		memcpy(args->leaves, st.leaves, sizeof(st.leaves));
		vmb_vm_unlock(vm);
	}
	vmb_unlock(c);
	return vm ? 0 : -ENOENT;
}
