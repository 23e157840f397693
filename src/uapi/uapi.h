/* SPDX-License-Identifier: MIT */
/*
 * Helpers shared by the entry points: every public call checks its struct field by field
 * (reserved and pad zero, known flags), then takes the device lock, looks up handles, and
 * dispatches. Errors return before anything changes.
 *
 * Every entry point that takes a client is written with VMB_ENTRY (as the kernel's
 * SYSCALL_DEFINE): the public function enters the client (-EINVAL for NULL, -EIO in a process
 * that inherited it across fork(), -ENODEV once it is closing), runs the body, and leaves, so
 * vmb_client_close() waits for it (core/client.h). The body is the function's block.
 */
#ifndef VMB_UAPI_UAPI_H
#define VMB_UAPI_UAPI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/client.h"
#include "dev/core.h"

static inline bool vmb_all_zero(const void *p, size_t n)
{
	const uint8_t *b = p;
	for (size_t i = 0; i < n; i++)
		if (b[i])
			return false;
	return true;
}
#define VMB_ZERO(field) vmb_all_zero(&(field), sizeof(field))

#define VMB_ENTRY(name, type, arg)                                                                 \
	static int name##_call(struct vmb_client *c, type *arg);                                   \
	VMB_API int name(struct vmb_client *c, type *arg)                                          \
	{                                                                                          \
		int err_ = vmb_client_enter(c);                                                    \
		if (err_)                                                                          \
			return err_;                                                               \
		err_ = name##_call(c, arg);                                                        \
		vmb_client_leave(c);                                                               \
		return err_;                                                                       \
	}                                                                                          \
	static int name##_call(struct vmb_client *c, type *arg)

static inline void vmb_lock(struct vmb_client *c) { vmb_dev_lock(c->dev); }
static inline void vmb_unlock(struct vmb_client *c) { vmb_dev_unlock(c->dev); }

/* a + b without wrapping past 2^64; false on overflow */
static inline bool vmb_add_ok(uint64_t a, uint64_t b, uint64_t *sum)
{
	return !__builtin_add_overflow(a, b, sum);
}

#define VMB_PAGE_MASK 4095ull

/* uapi/bo.c, the client's records of BOs (device lock held): at close, unmap every CPU mapping
 * the application left, and drop every handle; a BO's handle in @c (0: none); a new handle for
 * @bo, which takes the caller's reference over (0, -ENOMEM). */
struct vmb_bo;
void vmb_bo_cpu_maps_release(struct vmb_client *c);
void vmb_client_bos_release(struct vmb_client *c);
uint32_t vmb_client_bo_handle(const struct vmb_client *c, const struct vmb_bo *bo);
int vmb_client_bo_install(struct vmb_client *c, struct vmb_bo *bo, uint32_t *handle);

#endif
