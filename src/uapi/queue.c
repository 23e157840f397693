/* SPDX-License-Identifier: MIT */
/* Entry points: bind queues. */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <vmbind/queue.h>

#include "core/alloc.h"
#include "uapi/uapi.h"
#include "vm/vm.h"

VMB_ENTRY(vmb_bind_queue_create, struct vmb_bind_queue_create, args)
{
	int err;

	if (!args || args->flags || args->pad || args->reserved)
		return -EINVAL;
	vmb_lock(c);
	struct vmb_vm *vm = vmb_handle_lookup(&c->vms, args->vm_id);
	struct vmb_bind_queue *q = vm ? vmb_calloc(1, sizeof(*q)) : NULL;
	if (!vm) {
		err = -ENOENT;
	} else if (!q) {
		err = -ENOMEM;
	} else {
		atomic_init(&q->refs, 1);
		q->serial = vmb_serial_next();
		vmb_list_init(&q->pending);
		err = vmb_handle_alloc(&vm->queues, q, &q->id);
		if (err)
			free(q);
		else {
			args->queue_id = q->id;
			args->serial = q->serial;
		}
	}
	vmb_unlock(c);
	return err;
}

VMB_ENTRY(vmb_bind_queue_destroy, struct vmb_bind_queue_destroy, args)
{
	if (!args || args->queue_id == 0)
		return -EINVAL;
	vmb_lock(c);
	struct vmb_vm *vm = vmb_handle_lookup(&c->vms, args->vm_id);
	struct vmb_bind_queue *q = vm ? vmb_handle_lookup(&vm->queues, args->queue_id) : NULL;
	if (q && args->serial && q->serial != args->serial)
		q = NULL; /* another queue under the numbers (queue.h) */
	if (q)
		vmb_handle_remove(&vm->queues, args->queue_id);
	if (q) {
		q->closed = true; /* a call that holds it (it waited) fails with -ENOENT */
		vmb_bind_queue_put(q); /* pending jobs hold their own references */
	}
	vmb_unlock(c);
	return q ? 0 : -ENOENT;
}
