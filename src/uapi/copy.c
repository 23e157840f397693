/* SPDX-License-Identifier: MIT */
/*
 * The application's memory, as the entry points reach it: vmb_copy_from_app() for every read,
 * vmb_copy_to_app() for every write. Argument structs (VMB_ENTRY copies them in and out, as an
 * _IOWR ioctl), op and sync arrays, syncobj handles and points, the engine, mapping and trace
 * arrays of the queries, the data of vmb_vm_access: all of it goes through this pair, so that a
 * transport that carries the calls over a socket (a daemon's client library) replaces this one
 * file, its copies becoming messages that may fail (-EFAULT). tools/app-memory.py (a test)
 * fails if src/uapi/ turns an application's pointer into a C pointer anywhere else.
 *
 * In the process, a copy is memcpy: a non-NULL pointer is the caller's contract (docs/UAPI.md,
 * "Pointers"), NULL with a non-zero size is -EFAULT.
 *
 * Outside, on purpose, is memory the device itself reads or writes, mapped rather than copied:
 * user fences (the device writes them when the work completes, long after the call returned;
 * waits and the GPU's SEM_WAIT read them while the application reads and writes them too) and
 * MAP_USERPTR ranges (the GPU reads and writes them for as long as they are bound). No copy at
 * call time can stand for either: a daemon reaches them through memory both processes map (a
 * user fence in a BO: VMB_SYNC_BO_USER_FENCE, VMB_UFENCE_WAIT_BO).
 * vmb_app_fence() names a user fence's location.
 */
#include <errno.h>
#include <string.h>

#include "uapi/uapi.h"

int vmb_copy_from_app(void *dst, const void *app, size_t size)
{
	if (!size)
		return 0;
	if (!app)
		return -EFAULT;
	memcpy(dst, app, size);
	return 0;
}

int vmb_copy_to_app(void *app, const void *src, size_t size)
{
	if (!size)
		return 0;
	if (!app)
		return -EFAULT;
	memcpy(app, src, size);
	return 0;
}

int vmb_copy_from_app_u64(void *dst, uint64_t app, size_t i, size_t size)
{
	return vmb_copy_from_app(dst, app ? (const char *)(uintptr_t)app + i * size : NULL, size);
}

int vmb_copy_to_app_u64(uint64_t app, size_t i, const void *src, size_t size)
{
	return vmb_copy_to_app(app ? (char *)(uintptr_t)app + i * size : NULL, src, size);
}

int vmb_copy_str_from_app(char *dst, const char *app, size_t size)
{
	for (size_t i = 0; i < size; i++) {
		int err = vmb_copy_from_app(&dst[i], app ? app + i : NULL, 1);
		if (err)
			return err;
		if (!dst[i])
			return 0;
	}
	return -ENAMETOOLONG;
}

uint64_t *vmb_app_fence(uint64_t addr)
{
	return (uint64_t *)(uintptr_t)addr;
}
