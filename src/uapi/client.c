/* SPDX-License-Identifier: MIT */
/* Entry points: opening and closing clients (attaching to the process's device instances,
 * dev/registry.h), the backend list, device and region queries, whole-client checks. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <vmbind/client.h>
#include <vmbind/debug.h>

#include "core/alloc.h"
#include "dev/registry.h"
#include "exec/exec.h"
#include "mem/bo.h"
#include "sync/syncobj.h"
#include "uapi/uapi.h"
#include "vm/vm.h"

VMB_API int vmb_client_open(const char *device, const struct vmb_client_opts *opts, struct vmb_client **out)
{
	struct vmb_client_opts opts_copy;
	char name[32];
	struct vmb_device *dev;
	int err;

	if (!out)
		return -EINVAL;
	/* the options, copied in (uapi/copy.c); *out is the library's own handle, not copied */
	if (opts && (err = vmb_copy_from_app(&opts_copy, opts, sizeof(opts_copy))))
		return err;
	opts = opts ? &opts_copy : NULL;
	if (opts && (opts->flags & ~VMB_CLIENT_OPEN_DISCRETE || !VMB_ZERO(opts->reserved)))
		return -EINVAL;
	/* the name, copied in: one too long for any device names none */
	if (device && vmb_copy_str_from_app(name, device, sizeof(name)))
		return -ENODEV;
	struct vmb_client *c = vmb_calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	err = vmb_device_attach(device ? name : NULL, opts, &dev);
	if (err) {
		free(c);
		return err;
	}
	c->dev = dev;
	err = vmb_client_life_init(c);
	if (err) {
		vmb_device_put(dev);
		free(c);
		return err;
	}
	vmb_handle_table_init(&c->bos);
	vmb_handle_table_init(&c->vms);
	vmb_handle_table_init(&c->execqs);
	vmb_handle_table_init(&c->syncobjs);
	pthread_mutex_init(&c->sync_lock, NULL);
	*out = c;
	return 0;
}

VMB_API int vmb_client_close(struct vmb_client *c)
{
	struct vmb_vm *vm;
	struct vmb_syncobj *s;
	uint32_t h;

	if (!c)
		return -EINVAL;
	/* a child's copy names the parent's memory and threads: it is left as it is (leaked, as
	 * the rest of the parent's heap the child inherited) */
	if (vmb_client_forked(c))
		return 0;
	int err = vmb_client_enter(c);
	if (!err && (err = vmb_client_close_begin(c)))
		vmb_client_leave(c);
	if (err)
		return err;
	/* no other call is in flight and none can start: the tables are ours. Each is drained
	 * with a cursor that only goes up (vmb_handle_pop), so close is linear in the objects.
	 * Exec queues first (their jobs stop), then vms: they run their pending binds and drop
	 * their references on BOs */
	vmb_lock(c);
	vmb_client_execqs_release(c);
	vmb_handle_table_fini(&c->execqs);
	for (h = 0; (vm = vmb_handle_pop(&c->vms, &h));)
		vmb_vm_close(vm);
	vmb_unlock(c);
	for (h = 0; (s = vmb_handle_pop(&c->syncobjs, &h));)
		vmb_syncobj_put(s);
	vmb_handle_table_fini(&c->syncobjs);
	pthread_mutex_destroy(&c->sync_lock);
	/* under the device lock: a killed exec queue's running job may still hold the last
	 * reference on a vm, whose release (on an engine thread) puts that vm's BOs */
	vmb_lock(c);
	vmb_client_bos_release(c);
	vmb_bo_cpu_maps_release(c);
	vmb_unlock(c);
	vmb_handle_table_fini(&c->vms);
	vmb_handle_table_fini(&c->bos);
	/* the last user of the device destroys it: other clients and exported BOs keep it */
	vmb_device_put(c->dev);
	vmb_client_life_fini(c);
	free(c);
	return 0;
}

VMB_API int vmb_backend_query(struct vmb_backend_query *app_q)
{
	const struct vmb_backend *be;
	const char *reason = "";
	struct vmb_backend_query copy, *q = &copy;
	int err;

	/* no client, so no VMB_ENTRY: the struct is copied in and out here (uapi/copy.c) */
	if (!app_q)
		return -EINVAL;
	if ((err = vmb_copy_from_app(q, app_q, sizeof(*q))))
		return err;
	if (!VMB_ZERO(q->reserved))
		return -EINVAL;
	if (!(be = vmb_backend_at(q->index)))
		return -ENOENT;
	q->available = be->probe(&reason) == 0;
	memset(q->name, 0, sizeof(q->name));
	memset(q->reason, 0, sizeof(q->reason));
	snprintf(q->name, sizeof(q->name), "%s", be->name);
	if (!q->available)
		snprintf(q->reason, sizeof(q->reason), "%s", reason);
	return vmb_copy_to_app(app_q, q, sizeof(*q));
}

/* What the library offers whatever the device (the device adds its own: dev->caps). */
#define LIBRARY_CAPS                                                                               \
	(VMB_CAP_ASYNC_BIND | VMB_CAP_LR_MODE | VMB_CAP_USER_FENCE | VMB_CAP_TIMELINE | VMB_CAP_SYNCOBJ_FD | \
	 VMB_CAP_BO_EXPORT | VMB_CAP_RESTART_MODE | VMB_CAP_BO_CHUNK | VMB_CAP_BO_VM | \
	 VMB_CAP_QUEUE_SERIAL)

VMB_ENTRY(vmb_device_query, struct vmb_device_query, q)
{
	if (!q || q->reserved)
		return -EINVAL;
	memset(q->name, 0, sizeof(q->name));
	snprintf(q->name, sizeof(q->name), "%s", c->dev->name);
	q->va_bits = c->dev->va_bits;
	q->num_regions = VMB_REGION_COUNT;
	q->page_sizes = c->dev->page_sizes;
	q->num_engines = c->dev->num_engines;
	q->abi_version = VMB_ABI_VERSION;
	q->min_page_size = c->dev->min_page_size;
	q->capabilities = LIBRARY_CAPS | c->dev->caps;
	return 0;
}

VMB_ENTRY(vmb_region_query, struct vmb_region_query, q)
{
	if (!q || q->pad || q->reserved || q->region >= VMB_REGION_COUNT)
		return -EINVAL;
	q->capacity = c->dev->region_capacity[q->region];
	q->free = c->dev->ops->region_free(c->dev, q->region);
	q->min_alignment = c->dev->region_align[q->region];
	bool vram = q->region == VMB_REGION_VRAM;
	q->evictions = vram ? atomic_load(&c->dev->evictions) : 0;
	q->evicted_bytes = vram ? atomic_load(&c->dev->evicted_bytes) : 0;
	q->restores = vram ? (uint32_t)atomic_load(&c->dev->restores) : 0;
	return 0;
}

VMB_ENTRY(vmb_client_validate, struct vmb_client_validate, args)
{
	int err;
	uint32_t h = 0;

	if (!args || args->flags || args->pad || args->reserved)
		return -EINVAL;
	vmb_lock(c);
	err = vmb_handle_table_validate(&c->bos);
	if (!err) {
		/* the syncobj table has its own lock (syncobj calls do not take the device lock) */
		pthread_mutex_lock(&c->sync_lock);
		err = vmb_handle_table_validate(&c->syncobjs);
		pthread_mutex_unlock(&c->sync_lock);
	}
	if (!err)
		err = vmb_handle_table_validate(&c->vms);
	if (!err)
		err = c->dev->ops->validate(c->dev);
	while (!err && (h = vmb_handle_next(&c->vms, h)))
		err = vmb_vm_validate(vmb_handle_lookup(&c->vms, h));
	vmb_unlock(c);
	return err;
}

VMB_ENTRY(vmb_trace_start, struct vmb_trace_start, args)
{
	struct vmb_trace_event *ev = NULL;

	if (!args || args->flags || args->reserved || args->capacity > (1u << 24))
		return -EINVAL;
	if (args->capacity && !(ev = vmb_calloc(args->capacity, sizeof(*ev))))
		return -ENOMEM;
	struct vmb_trace_ring *t = &c->dev->trace;
	pthread_mutex_lock(&t->lock);
	struct vmb_trace_event *old = t->ev;
	t->ev = ev;
	__atomic_store_n(&t->cap, args->capacity, __ATOMIC_RELAXED); /* read unlocked: vmb_trace_on */
	t->head = t->count = t->dropped = 0;
	pthread_mutex_unlock(&t->lock);
	free(old);
	return 0;
}

VMB_ENTRY(vmb_trace_read, struct vmb_trace_read, args)
{
	if (!args || args->reserved)
		return -EINVAL;
	if (args->num_events && !args->events)
		return -EFAULT;
	struct vmb_trace_ring *t = &c->dev->trace;
	uint32_t n = 0;
	pthread_mutex_lock(&t->lock);
	for (; n < args->num_events && t->count; n++, t->count--) {
		/* an event that could not be copied out stays on the ring */
		if (vmb_copy_to_app_u64(args->events, n, &t->ev[t->head], sizeof(t->ev[0])))
			break;
		t->head = (t->head + 1) % t->cap;
	}
	args->dropped = t->dropped;
	t->dropped = 0;
	pthread_mutex_unlock(&t->lock);
	args->num_events = n;
	return 0;
}
