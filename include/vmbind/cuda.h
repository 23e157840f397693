/* SPDX-License-Identifier: MIT */
/*
 * CUDA streams and vmbind fences (the device "cuda" / "cuda:N", docs/UAPI.md "The CUDA device").
 *
 * A stream is a CUstream of the device's primary context (the one the CUDA runtime uses), passed
 * as a u64; 0 is the legacy default stream. This header needs no CUDA header.
 *
 * Deadlock rule: a stream that waits for a fence that only later work of the same stream (or a
 * bind that waits on a point that stream signals later) would signal hangs forever, as does a
 * bind whose in-fence is such a point. Bind queues never wait for streams unless given a point
 * of vmb_cuda_stream_signal() as an in-sync.
 */
#ifndef VMBIND_CUDA_H
#define VMBIND_CUDA_H

#include <vmbind/types.h>

#ifdef __cplusplus
extern "C" {
#endif

struct vmb_cuda_stream_sync {
	uint64_t stream;     /* [in] CUstream */
	uint64_t syncs;      /* [in] pointer to struct vmb_sync[num_syncs] (bind.h) */
	uint32_t num_syncs;  /* [in] 1 .. VMB_VM_BIND_MAX_SYNCS */
	uint32_t flags;      /* [in] none defined: must be 0 */
	uint64_t reserved[2]; /* [in] must be 0 */
};

/*
 * The stream's later work waits until every sync has signalled: syncobjs (binary, or timeline
 * points: their fence, which must be submitted) and user fences (VMB_SYNC_USER_FENCE: the u64 at
 * `addr` reaches `value` or more; the memory must be host memory the driver has pinned and
 * mapped, cuMemHostAlloc or cuMemHostRegister). No sync may have VMB_SYNC_FLAG_SIGNAL. A fence
 * that signals with an error releases the stream all the same (the error is the fence's). All
 * the waits are queued, or on an error none.
 * Returns: 0; -EINVAL (flags, reserved, num_syncs 0 or too many, a bad sync, SIGNAL set, a
 * stream the driver rejects, an in-syncobj with nothing submitted); -ENOENT (unknown syncobj);
 * -EFAULT (syncs unreadable, a user fence in memory the device cannot read); -EOPNOTSUPP (the
 * client's device is not a CUDA device; VMB_SYNC_BO_USER_FENCE); -EAGAIN (fewer of the
 * library's fence slots free than the call's pending syncobj fences); -ENOMEM.
 */
VMB_API int vmb_cuda_stream_wait(struct vmb_client *c, struct vmb_cuda_stream_sync *args);
/*
 * Every sync (syncobjs, all with VMB_SYNC_FLAG_SIGNAL) signals once the stream's work submitted
 * so far is done: a binary syncobj gets the new fence, a timeline the point. Such a point as an
 * unbind's in-sync is the stream-ordered unmap: the unbind commits after the stream's kernels,
 * with no device-wide synchronisation.
 * Returns: 0; -EINVAL (flags, reserved, num_syncs 0 or too many, a bad sync, SIGNAL missing, a
 * user fence, a stream the driver rejects, a timeline point not above the last); -ENOENT
 * (unknown syncobj); -EFAULT (syncs unreadable); -EOPNOTSUPP (not a CUDA device); -EAGAIN (no
 * free fence slot); -ENOMEM.
 */
VMB_API int vmb_cuda_stream_signal(struct vmb_client *c, struct vmb_cuda_stream_sync *args);

#ifdef __cplusplus
}
#endif

#endif
