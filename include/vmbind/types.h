/* SPDX-License-Identifier: MIT */
/*
 * vmbind common definitions.
 *
 * Conventions of the whole API (as for a driver's ioctls):
 *  - every entry point takes a client and one argument struct and returns 0 or a negative errno
 *    (its header comment's "Returns:" list has every one it can return); out fields are written
 *    only on success (exceptions: the relative timeouts of vmb_user_fence_wait, updated with the
 *    time left also on -EINTR and -ETIME, and of vmb_syncobj_wait, on -EINTR);
 *  - a call that waits returns -EINTR when a signal handler runs on its thread meanwhile, having
 *    changed nothing: call again with the same struct (docs/UAPI.md, "Waits and signals");
 *  - NULL for the client or the struct is -EINVAL, an array pointer 0 with a non-zero count is
 *    -EFAULT; other pointers are the caller's contract (docs/UAPI.md, "Pointers");
 *  - structs have fixed sizes and only fixed-width fields; user pointers travel as u64, so a
 *    struct can cross a socket unchanged; `pad` and `reserved` fields must be zero (-EINVAL);
 *  - unknown flags or ops are rejected (-EINVAL); unknown handles give -ENOENT;
 *  - objects are u32 handles in a per-client table; 0 is never a valid handle;
 *  - every entry point that takes a client also returns -EIO in a child process that inherited
 *    the client across fork(), and -ENODEV once vmb_client_close() of the client has begun (a
 *    wait in progress then ends with -ENODEV); see vmb_client_open() and vmb_client_close().
 */
#ifndef VMBIND_TYPES_H
#define VMBIND_TYPES_H

#include <stdint.h>

#if defined(VMB_BUILDING_LIB) && defined(__GNUC__)
#define VMB_API __attribute__((visibility("default")))
#else
#define VMB_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* An opened device, like an opened DRM file. Opaque. */
struct vmb_client;

/* Memory regions. */
#define VMB_REGION_SYSTEM 0u
#define VMB_REGION_VRAM 1u
#define VMB_REGION_COUNT 2u

/* Placement masks for BOs: 1 << region. */
#define VMB_PLACE_SYSTEM (1u << VMB_REGION_SYSTEM)
#define VMB_PLACE_VRAM (1u << VMB_REGION_VRAM)

/*
 * The ABI version, MAJOR.MINOR (vmb_device_query reports the library's as VMB_ABI_VERSION). MINOR
 * goes up with each compatible addition: a call, flag, op, sync type, capability or errno, or a
 * field taken from `reserved` whose zero keeps the old behaviour. MAJOR goes up, and MINOR back
 * to 0, when a program built against the older header could break: a struct's size or a field's
 * meaning changes, or a call, flag or op goes. A program built for MAJOR.m runs with any
 * MAJOR.n; one that uses something added after MAJOR.0 checks the minor or, better, the
 * capability bit (VMB_CAP_*, client.h) that announces it.
 */
#define VMB_ABI_VERSION_MAJOR 1u
#define VMB_ABI_VERSION_MINOR 4u /* 1: restart mode; 2: BO chunks, a vm's gpu_base; 3: VRAM's eviction counters (vmb_region_query); 4: private BOs (vmb_bo_create's vm_id), queues' serials */
#define VMB_ABI_VERSION ((VMB_ABI_VERSION_MAJOR << 16) | VMB_ABI_VERSION_MINOR)

/* Page sizes, as masks (a page size's bit is its value). */
#define VMB_PAGE_4K (1ull << 12)
#define VMB_PAGE_64K (1ull << 16)
#define VMB_PAGE_2M (1ull << 21)
#define VMB_PAGE_1G (1ull << 30)

#ifdef __cplusplus
}
#endif
#endif
