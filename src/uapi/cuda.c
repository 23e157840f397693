/* SPDX-License-Identifier: MIT */
/*
 * Entry points: CUDA streams and fences (include/vmbind/cuda.h). The syncs are parsed here as
 * for any call (uapi/sync.h); the stream side is the device's (device.h, stream ops: the CUDA
 * device's fence page), which a device without streams does not have (-EOPNOTSUPP). Built in
 * every build: without CUDA no device has the ops.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <vmbind/cuda.h>

#include "core/alloc.h"
#include "uapi/sync.h"
#include "uapi/uapi.h"

#define SYNCS_SMALL 8

/* The struct's own fields; then a device without streams is -EOPNOTSUPP. */
static int check_args(const struct vmb_cuda_stream_sync *args, bool have_ops)
{
	if (args->flags || !VMB_ZERO(args->reserved) || !args->num_syncs || args->num_syncs > VMB_VM_BIND_MAX_SYNCS)
		return -EINVAL;
	if (!have_ops)
		return -EOPNOTSUPP;
	return args->syncs ? 0 : -EFAULT;
}

/* The call's syncs (the CUDA device's calls only: plain malloc, no fault-injection site the
 * CPU-only suite could never reach), copied in and checked: @signal says whether each must signal. User
 * fences (in-syncs only) are left in place; @n_obj gets the syncobj syncs, moved first. */
static int copy_syncs(const struct vmb_cuda_stream_sync *args, bool signal, struct vmb_sync **out,
		      struct vmb_sync *small, uint32_t *n_obj)
{
	struct vmb_sync *syncs = small;
	int err;

	if (args->num_syncs > SYNCS_SMALL && !(syncs = malloc(args->num_syncs * sizeof(*syncs))))
		return -ENOMEM;
	err = vmb_copy_from_app_u64(syncs, args->syncs, 0, args->num_syncs * sizeof(*syncs));
	uint32_t k = 0;
	for (uint32_t i = 0; i < args->num_syncs && !err; i++) {
		struct vmb_sync *s = &syncs[i];
		if (!(s->flags & VMB_SYNC_FLAG_SIGNAL) != !signal)
			err = -EINVAL;
		else if (s->type == VMB_SYNC_BO_USER_FENCE)
			err = signal ? -EINVAL : -EOPNOTSUPP;
		else if (s->type == VMB_SYNC_USER_FENCE)
			err = signal || s->handle || !s->addr || (s->addr & 7) || s->pad || !VMB_ZERO(s->reserved) ||
				      s->flags ? -EINVAL : 0;
		else if (!(err = vmb_syncs_check(s, 1))) { /* a syncobj: to the front */
			struct vmb_sync t = syncs[k];
			syncs[k++] = *s;
			*s = t;
		}
	}
	if (err && syncs != small)
		free(syncs);
	if (!err) {
		*out = syncs;
		*n_obj = k;
	}
	return err;
}

VMB_ENTRY(vmb_cuda_stream_wait, struct vmb_cuda_stream_sync, args)
{
	struct vmb_sync small[SYNCS_SMALL], *syncs;
	struct vmb_sync_set set;
	uint32_t nobj;
	int err;

	const struct vmb_device_ops *ops = c->dev->ops;
	if ((err = check_args(args, ops->stream_wait)) || (err = copy_syncs(args, false, &syncs, small, &nobj)))
		return err;
	if (!(err = vmb_syncs_parse(c, syncs, nobj, &set))) {
		/* all of them queued or none (a failed call changes nothing) */
		err = ops->stream_wait(c->dev, args->stream, set.in.v, set.in.n, syncs + nobj, args->num_syncs - nobj);
		vmb_syncs_fini(&set);
	}
	if (syncs != small)
		free(syncs);
	return err;
}

VMB_ENTRY(vmb_cuda_stream_signal, struct vmb_cuda_stream_sync, args)
{
	struct vmb_sync small[SYNCS_SMALL], *syncs;
	struct vmb_sync_set set;
	uint32_t nobj;
	int err;

	const struct vmb_device_ops *ops = c->dev->ops;
	if ((err = check_args(args, ops->stream_signal)) || (err = copy_syncs(args, true, &syncs, small, &nobj)))
		return err;
	if (!(err = vmb_syncs_parse(c, syncs, nobj, &set))) {
		struct vmb_fence *f;
		if (!(err = ops->stream_signal(c->dev, args->stream, &f))) {
			vmb_syncs_install(&set, f);
			vmb_fence_unref(f);
		}
		vmb_syncs_fini(&set);
	}
	if (syncs != small)
		free(syncs);
	return err;
}
