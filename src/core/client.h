/* SPDX-License-Identifier: MIT */
/*
 * A client: an opened device and the handle tables naming its objects (BOs, vms).
 * Locking: the handle tables are protected by the device lock (dev->lock).
 */
#ifndef VMB_CORE_CLIENT_H
#define VMB_CORE_CLIENT_H

#include "core/handle.h"
#include "dev/device.h"

struct vmb_client {
	struct vmb_device *dev;
	struct vmb_handle_table bos; /* struct vmb_bo * */
	struct vmb_handle_table vms; /* struct vmb_vm * */
};

#endif
