/* SPDX-License-Identifier: MIT */
/*
 * The sync array of a call (struct vmb_sync), parsed: in-fences to wait for, syncobjs and
 * timeline points to signal (their nodes allocated up front), user fences to write.
 */
#ifndef VMB_UAPI_SYNC_H
#define VMB_UAPI_SYNC_H

#include <stdint.h>
#include <vmbind/bind.h>

#include "core/client.h"
#include "sync/syncobj.h"
#include "vm/vm.h"

struct vmb_out_sync {
	struct vmb_syncobj *s;     /* a reference */
	uint64_t point;            /* timeline point, 0 for binary */
	struct vmb_tl_point *node; /* timeline out-sync: allocated at parse; NULL once installed */
	bool claimed;              /* node is the point's claim (made last in parse) */
	bool in;                   /* an in-sync (its fences are in `in`) */
};

/* Syncs a bind call parses without the heap (vmb_syncs_parse_bind); a job copies that many user
 * fences (VMB_BIND_UFS_INLINE). */
#define VMB_SYNCS_INLINE 4

struct vmb_sync_set {
	struct vmb_fence_set in; /* unsignalled fences the in-syncs wait for */
	struct vmb_out_sync *outs; /* every syncobj sync, in and out */
	unsigned int nouts, syncobj_outs;
	struct vmb_ufence_out *ufs; /* user fences to write */
	unsigned int nufs;
	/* outs and ufs are the arrays below (a bind call's few syncs): a job copies ufs, it cannot
	 * take the array over (free it with vmb_ufences_put, not vmb_ufences_free) */
	bool borrowed;
	bool may_block;              /* a bind call: an in-fence that cannot be recorded for lack of
				      * memory is waited for at parse instead (`wait_for`) */
	struct vmb_fence *wait_for;
	struct vmb_out_sync outs_small[VMB_SYNCS_INLINE];
	struct vmb_ufence_out ufs_small[VMB_SYNCS_INLINE];
};

/* Shapes only: 0, -EINVAL, -EOPNOTSUPP (a user fence as in-sync). */
int vmb_syncs_check(const struct vmb_sync *syncs, uint32_t n);
/*
 * Lookups and state: 0, -ENOENT, -EINVAL, -EFAULT (user fence not mapped), -ENOMEM. On success
 * the out timeline points are claimed (syncobj.h): no other call can take them until
 * vmb_syncs_install() fills them or vmb_syncs_fini() releases them.
 */
int vmb_syncs_parse(struct vmb_client *c, const struct vmb_sync *syncs, uint32_t n, struct vmb_sync_set *set);
/* The same for a bind call, which needs no memory for its syncs (docs/UAPI.md, "Unbind under
 * memory pressure"): up to VMB_SYNCS_INLINE syncs are parsed into the set itself
 * (set->borrowed: no allocation, the common case), more into arrays from the heap; an in-fence the set has no room for is waited for there and
 * then (interruptibly: -EINTR, or the client's stop errno, nothing changed), as a bind without
 * memory for its job commits in the call after waiting for its in-fences anyway. */
int vmb_syncs_parse_bind(struct vmb_client *c, const struct vmb_sync *syncs, uint32_t n, struct vmb_sync_set *set);
/* Out-syncobjs get @f (binary: replaced; timelines: the claimed points filled). Cannot fail. */
void vmb_syncs_install(struct vmb_sync_set *set, struct vmb_fence *f);
/* Wait for the in-fences (interruptible): 0 (then dropped), -EINTR, or @stop's errno. */
int vmb_syncs_wait_in(struct vmb_sync_set *set, struct vmb_stop *stop);
/* Drops the references; releases the claims of points not installed. */
void vmb_syncs_fini(struct vmb_sync_set *set);

#endif
