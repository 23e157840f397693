/* SPDX-License-Identifier: MIT */
/*
 * A client: an opened device and the handle tables naming its objects (BOs, vms, syncobjs).
 * Locking: `bos`, `cpu_maps`, `vms` and `execqs` are protected by the device lock (dev->lock); `syncobjs` by
 * `sync_lock`, so that syncobj calls never wait for a bind being prepared.
 */
#ifndef VMB_CORE_CLIENT_H
#define VMB_CORE_CLIENT_H

#include "core/handle.h"
#include "core/rbtree.h"
#include "dev/device.h"

struct vmb_client {
	struct vmb_device *dev;
	struct vmb_handle_table bos; /* struct vmb_bo * */
	/* BOs with a CPU mapping, by its address (vmb_bo.cpu_node), destroyed handles included */
	struct vmb_rb_root cpu_maps;
	struct vmb_handle_table vms; /* struct vmb_vm * */
	struct vmb_handle_table execqs; /* struct vmb_exec_queue * */
	pthread_mutex_t sync_lock;
	struct vmb_handle_table syncobjs; /* struct vmb_syncobj * */
};

#endif
