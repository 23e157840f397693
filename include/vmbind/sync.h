/* SPDX-License-Identifier: MIT */
/*
 * Syncobjs (containers of a fence: binary, or timeline with points) and user fences (a 64-bit
 * memory location and a value): argument shapes, modelled on DRM's syncobj ioctls and Xe's
 * user-fence wait. Final shapes; the entry points arrive with the fences issue.
 */
#ifndef VMBIND_SYNC_H
#define VMBIND_SYNC_H

#include <vmbind/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define VMB_SYNCOBJ_CREATE_SIGNALED (1u << 0)
#define VMB_SYNCOBJ_CREATE_TIMELINE (1u << 1)

struct vmb_syncobj_create {
	uint32_t flags;  /* [in] VMB_SYNCOBJ_CREATE_* */
	uint32_t handle; /* [out] */
	uint64_t reserved;
};

struct vmb_syncobj_destroy {
	uint32_t handle; /* [in] */
	uint32_t pad;
	uint64_t reserved;
};

#define VMB_SYNCOBJ_WAIT_ALL (1u << 0)            /* all, else any */
#define VMB_SYNCOBJ_WAIT_FOR_SUBMIT (1u << 1)     /* wait for a fence to appear at the point */
#define VMB_SYNCOBJ_WAIT_AVAILABLE (1u << 2)      /* a fence at the point is enough */
#define VMB_SYNCOBJ_WAIT_RELATIVE (1u << 3)       /* timeout_ns is relative, else absolute */

struct vmb_syncobj_wait {
	uint64_t handles;        /* [in] pointer to uint32_t[count] */
	uint64_t points;         /* [in] pointer to uint64_t[count] (timelines), or 0 for binary */
	int64_t timeout_ns;      /* [in] CLOCK_MONOTONIC deadline, or relative with WAIT_RELATIVE */
	uint32_t count;          /* [in] */
	uint32_t flags;          /* [in] VMB_SYNCOBJ_WAIT_* */
	uint32_t first_signaled; /* [out] with any: index of a signalled syncobj */
	uint32_t pad;
	uint64_t reserved;
};

/* Reset, signal, query: an array of handles (and points for timelines). */
struct vmb_syncobj_array {
	uint64_t handles; /* [in] pointer to uint32_t[count] */
	uint64_t points;  /* [in/out] pointer to uint64_t[count]; 0 for binary syncobjs */
	uint32_t count;   /* [in] */
	uint32_t flags;   /* [in] none defined yet: must be 0 */
	uint64_t reserved;
};

/* Move the fence of src (at src_point) to dst (at dst_point): binary <-> timeline. */
struct vmb_syncobj_transfer {
	uint32_t src_handle, dst_handle; /* [in] */
	uint64_t src_point, dst_point;   /* [in] 0 for binary */
	uint32_t flags;                  /* [in] none defined yet: must be 0 */
	uint32_t pad;
	uint64_t reserved;
};

/* Export to / import from a file descriptor that poll() reports readable once signalled. */
struct vmb_syncobj_fd {
	uint32_t handle; /* [in] export, [out] import */
	uint32_t flags;  /* [in] none defined yet: must be 0 */
	int32_t fd;      /* [out] export, [in] import */
	uint32_t pad;
	uint64_t point;  /* [in] timeline point, 0 for binary */
	uint64_t reserved;
};

/* User-fence wait: compare (*addr & mask) OP value. */
#define VMB_UFENCE_OP_EQ 0u
#define VMB_UFENCE_OP_NEQ 1u
#define VMB_UFENCE_OP_GT 2u
#define VMB_UFENCE_OP_GTE 3u
#define VMB_UFENCE_OP_LT 4u
#define VMB_UFENCE_OP_LTE 5u

#define VMB_UFENCE_WAIT_ABSTIME (1u << 0) /* timeout is a CLOCK_MONOTONIC deadline */

struct vmb_user_fence_wait {
	uint64_t addr;    /* [in] 8-byte aligned address of the 64-bit location */
	uint64_t value;   /* [in] */
	uint64_t mask;    /* [in] */
	int64_t timeout;  /* [in/out] ns; relative timeouts are updated with the time left */
	uint16_t op;      /* [in] VMB_UFENCE_OP_* */
	uint16_t flags;   /* [in] VMB_UFENCE_WAIT_* */
	uint32_t pad;
	uint64_t reserved[2];
};

#ifdef __cplusplus
}
#endif
#endif
