/* SPDX-License-Identifier: MIT */
/*
 * The CUDA device's entry points where there is no GPU (CI) and on the soft device: "cuda"
 * opens (a GPU) or fails with -ENODEV and a reason (no libcuda, no GPU, not built), names past
 * the driver's devices are -ENODEV, and the stream calls on a device without streams are
 * -EOPNOTSUPP after their own fields are checked. A plain program: exit 0 or 1.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <vmbind.h>
#include "expect.h"


int main(void)
{
	struct vmb_backend_query q = {.index = 1};
	CHECK_EQ(vmb_backend_query(&q), 0);
	CHECK_EQ(strcmp(q.name, "cuda"), 0);
	struct vmb_client *c = NULL;
	int err = vmb_client_open("cuda", NULL, &c);
	printf("cuda: available %u (%s), open %d\n", q.available, q.reason, err);
	CHECK_EQ(err, q.available ? 0 : -ENODEV);
	if (!q.available)
		CHECK_EQ(q.reason[0] != 0, 1);
	if (c)
		CHECK_EQ(vmb_client_close(c), 0);
	c = NULL;
	CHECK_EQ(vmb_client_open("cuda:63", NULL, &c), -ENODEV); /* no machine has 64 GPUs here */
	CHECK_EQ(vmb_client_open("cuda:64", NULL, &c), -ENODEV); /* malformed */

	CHECK_EQ(vmb_client_open("soft", NULL, &c), 0);
	struct vmb_syncobj_create sc = {0};
	CHECK_EQ(vmb_syncobj_create(c, &sc), 0);
	struct vmb_sync s = {.type = VMB_SYNC_SYNCOBJ, .handle = sc.handle};
	struct vmb_cuda_stream_sync a = {.syncs = (uintptr_t)&s, .num_syncs = 1};
	CHECK_EQ(vmb_cuda_stream_wait(c, &a), -EOPNOTSUPP);
	s.flags = VMB_SYNC_FLAG_SIGNAL;
	CHECK_EQ(vmb_cuda_stream_signal(c, &a), -EOPNOTSUPP);
	a.flags = 1;
	CHECK_EQ(vmb_cuda_stream_signal(c, &a), -EINVAL);
	a.flags = 0;
	a.num_syncs = 0;
	CHECK_EQ(vmb_cuda_stream_wait(c, &a), -EINVAL);
	a.num_syncs = VMB_VM_BIND_MAX_SYNCS + 1;
	CHECK_EQ(vmb_cuda_stream_wait(c, &a), -EINVAL);
	a.num_syncs = 1;
	a.reserved[1] = 1;
	CHECK_EQ(vmb_cuda_stream_wait(c, &a), -EINVAL);
	CHECK_EQ(vmb_cuda_stream_wait(c, NULL), -EINVAL);
	CHECK_EQ(vmb_client_close(c), 0);
	printf("%d failed\n", failed);
	return failed ? 1 : 0;
}
