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

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/client.h"
#include "dev/core.h"

/* Every byte of [@p, @p + @n) is 0. No early exit, and 8 bytes a load: for the small constant
 * sizes of reserved fields the compiler ORs a few words (a byte loop with a branch a byte cost
 * ~10 ns of a 1-op bind, whose args and op each have 16 reserved bytes). Not one 16-byte load:
 * the fields are read just after the call copied its arguments in with 16-byte stores, and a
 * load across two stores is not forwarded (it waits until both have reached the cache). */
static inline bool vmb_all_zero(const void *p, size_t n)
{
	const uint8_t *b = p;
	uint64_t any = 0;
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		uint64_t w;
		memcpy(&w, b + i, 8);
		any |= w;
	}
	for (; i < n; i++)
		any |= b[i];
	return !any;
}
#define VMB_ZERO(field) vmb_all_zero(&(field), sizeof(field))

/*
 * Application memory: every read of it goes through vmb_copy_from_app(), every write through
 * vmb_copy_to_app() (uapi/copy.c says why, and what is outside: user fences, MAP_USERPTR
 * memory). 0, or -EFAULT (NULL with a non-zero size; a transport's failed copy).
 */
int vmb_copy_from_app(void *dst, const void *app, size_t size);
int vmb_copy_to_app(void *app, const void *src, size_t size);
/* The same, for the application's u64 pointer fields, element @i of an array of @size each. */
int vmb_copy_from_app_u64(void *dst, uint64_t app, size_t i, size_t size);
int vmb_copy_to_app_u64(uint64_t app, size_t i, const void *src, size_t size);
/* A NUL-terminated string, at most @size bytes with its NUL: 0, -EFAULT, -ENAMETOOLONG. */
int vmb_copy_str_from_app(char *dst, const char *app, size_t size);
/* A user fence: a 64-bit location the device writes (and SEM_WAIT and waits read) when work
 * completes, long after the call: shared memory, not a copy (uapi/copy.c). */
uint64_t *vmb_app_fence(uint64_t addr);

/*
 * The argument struct is copied in before the body runs and copied back after it, if the body
 * changed it (as an _IOWR ioctl): the body works on the library's copy, never on the
 * application's struct. NULL is -EINVAL (the body never sees it).
 */
#define VMB_ENTRY(name, type, arg)                                                                 \
	static int name##_call(struct vmb_client *c, type *arg);                                   \
	VMB_API int name(struct vmb_client *c, type *app_)                                         \
	{                                                                                          \
		type in_, copy_;                                                                   \
		int err_ = vmb_client_enter(c);                                                    \
		if (err_)                                                                          \
			return err_;                                                               \
		err_ = app_ ? vmb_copy_from_app(&in_, app_, sizeof(in_)) : -EINVAL;                \
		if (!err_) {                                                                       \
			copy_ = in_;                                                               \
			err_ = name##_call(c, &copy_);                                             \
			if (memcmp(&in_, &copy_, sizeof(in_)) &&                                  \
			    vmb_copy_to_app(app_, &copy_, sizeof(copy_)))                           \
				err_ = -EFAULT;                                                    \
		}                                                                                  \
		vmb_client_leave(c);                                                               \
		return err_;                                                                       \
	}                                                                                          \
	static int name##_call(struct vmb_client *c, type *arg)

/* The device lock exclusively (dev/core.h): handle-table changes and every device-wide call. */
static inline void vmb_lock(struct vmb_client *c) { vmb_dev_lock(c->dev); }
/* Shared: a call on one vm, which takes that vm's lock after its lookups (vm/vm.h). */
static inline void vmb_lock_shared(struct vmb_client *c) { vmb_dev_lock_shared(c->dev); }
/* Either mode. */
static inline void vmb_unlock(struct vmb_client *c) { vmb_dev_unlock(c->dev); }

/* a + b without wrapping past 2^64; false on overflow */
static inline bool vmb_add_ok(uint64_t a, uint64_t b, uint64_t *sum)
{
	return !__builtin_add_overflow(a, b, sum);
}

/* The smallest page of any device. Alignment rules use the device's own minimum page size, its
 * granularity: vmb_granule_mask(). */
#define VMB_PAGE_MASK 4095ull
static inline uint64_t vmb_granule_mask(const struct vmb_client *c)
{
	return c->dev->min_page_size - 1;
}

/* uapi/bo.c, the client's records of BOs (device lock held): at close, unmap every CPU mapping
 * the application left, and drop every handle; a BO's handle in @c (0: none); a new handle for
 * @bo, which takes the caller's reference over (0, -ENOMEM). */
struct vmb_bo;
void vmb_bo_cpu_maps_release(struct vmb_client *c);
/* The BO of the client's CPU map that holds [@addr, @addr + @len), its pages pinned
 * (vmb_bo_mem_get), and @addr's offset in it; NULL if no map holds it all. */
struct vmb_bo *vmb_client_cpu_map_pin(struct vmb_client *c, uint64_t addr, uint64_t len, uint64_t *offset);
void vmb_client_bos_release(struct vmb_client *c);
uint32_t vmb_client_bo_handle(const struct vmb_client *c, const struct vmb_bo *bo);
int vmb_client_bo_install(struct vmb_client *c, struct vmb_bo *bo, uint32_t *handle);

/* uapi/exec.c, the client's records of exec queues (device lock held, dropped and retaken): at
 * close, kill every queue and drop its handle. */
void vmb_client_execqs_release(struct vmb_client *c);
/* A reference on the client's exec queue @h (vmb_exec_queue_put), or NULL; no lock held. */
struct vmb_exec_queue;
struct vmb_exec_queue *vmb_client_execq_get(struct vmb_client *c, uint32_t h, uint64_t serial);

#endif
