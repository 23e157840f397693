/* SPDX-License-Identifier: MIT */
/*
 * The Xe-uAPI shim (libvmbind-xe.so): a fake Xe device backed by vmbind's soft device.
 *
 * ioctl.c owns one opened device (struct xe_file): its vmbind client, the Xe exec-queue id space
 * (exec queues and bind queues share one, as in Xe), the per-BO facts Xe has and vmbind does not
 * (a BO object's generation, for its mmap cookie), and the translation of each DRM/Xe ioctl into vmbind calls. It uses only
 * vmbind's public API. interpose.c owns the process-wide side: the descriptors that name a
 * xe_file, the CPU mappings made through mmap(), and the libc functions a preload replaces.
 * docs/XE.md says what is mapped to what.
 */
#ifndef VMB_XE_SHIM_H
#define VMB_XE_SHIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct xe_file;

/* Opens a client of the soft device (sizes from VMB_SOFT_VRAM/VMB_SOFT_SYSTEM, else 4 GiB each).
 * Returns 0 or a negative errno. */
int xe_file_open(struct xe_file **out);
/* Closes the client (its objects go with it). In a child after fork(): frees only the shim's
 * memory, as vmb_client_close() does. */
void xe_file_close(struct xe_file *f);

/*
 * One ioctl: @request as the caller passed it, @arg the caller's struct. Copies in _IOC_SIZE
 * bytes, zero-extended to the shim's struct, and copies back at most that many (DRM's rule).
 * Returns 0 or a negative errno (the kernel's for each rule).
 */
int xe_file_ioctl(struct xe_file *f, unsigned long request, void *arg);

/* mmap of a GEM_MMAP_OFFSET cookie: the BO's CPU mapping into *@ptr, its handle into *@handle
 * and its size into *@size (the mapping's memory is the BO's own: *@size bytes at *@ptr).
 * Returns 0 or a negative errno (-EINVAL: no such cookie, or @length past the BO). */
int xe_file_mmap(struct xe_file *f, uint64_t offset, size_t length, void **ptr, uint32_t *handle,
		 uint64_t *size);
/* Test hook: the BOs' generation counter (GEM_MMAP_OFFSET cookies, ioctl.c) moves on by @n, as if
 * @n BOs had been created in the process. */
void xe_shim_test_gens_skip(uint64_t n);

/* Drops one CPU mapping that xe_file_mmap() returned. */
int xe_file_munmap(struct xe_file *f, void *ptr);

/* Copies @n bytes between the shim's @local and the caller's memory at @uptr (into it with
 * @to_user), as copy_from_user/copy_to_user: 0, or -EFAULT where a part is not mapped (not
 * readable, or not writable for @to_user) instead of SIGSEGV. */
int xe_user_copy(void *local, uint64_t uptr, size_t n, bool to_user);

/* The device the shim presents (docs/XE.md). */
#define XE_SHIM_DEVICE_ID 0xE20Bu
#define XE_SHIM_VA_BITS 48u
#define XE_SHIM_PAGE 4096u
#define XE_SHIM_MAX_PRIORITY 2u
#define XE_SHIM_MAX_PAT 27u
#define XE_SHIM_DRM_MAJOR 226u
#define XE_SHIM_DRM_MINOR 0u

#endif
