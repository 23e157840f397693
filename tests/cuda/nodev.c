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

static int failed;
#define EXPECT_EQ(a, b)                                                                            \
	do {                                                                                       \
		long long a_ = (long long)(a), b_ = (long long)(b);                                \
		if (a_ != b_) {                                                                    \
			printf("FAIL %s:%d: %s == %lld, want %lld\n", __FILE__, __LINE__, #a, a_, b_); \
			failed++;                                                                  \
		}                                                                                  \
	} while (0)

int main(void)
{
	struct vmb_backend_query q = {.index = 1};
	EXPECT_EQ(vmb_backend_query(&q), 0);
	EXPECT_EQ(strcmp(q.name, "cuda"), 0);
	struct vmb_client *c = NULL;
	int err = vmb_client_open("cuda", NULL, &c);
	printf("cuda: available %u (%s), open %d\n", q.available, q.reason, err);
	EXPECT_EQ(err, q.available ? 0 : -ENODEV);
	if (!q.available)
		EXPECT_EQ(q.reason[0] != 0, 1);
	if (c)
		EXPECT_EQ(vmb_client_close(c), 0);
	c = NULL;
	EXPECT_EQ(vmb_client_open("cuda:63", NULL, &c), -ENODEV); /* no machine has 64 GPUs here */
	EXPECT_EQ(vmb_client_open("cuda:64", NULL, &c), -ENODEV); /* malformed */

	EXPECT_EQ(vmb_client_open("soft", NULL, &c), 0);
	struct vmb_syncobj_create sc = {0};
	EXPECT_EQ(vmb_syncobj_create(c, &sc), 0);
	struct vmb_sync s = {.type = VMB_SYNC_SYNCOBJ, .handle = sc.handle};
	struct vmb_cuda_stream_sync a = {.syncs = (uintptr_t)&s, .num_syncs = 1};
	EXPECT_EQ(vmb_cuda_stream_wait(c, &a), -EOPNOTSUPP);
	s.flags = VMB_SYNC_FLAG_SIGNAL;
	EXPECT_EQ(vmb_cuda_stream_signal(c, &a), -EOPNOTSUPP);
	a.flags = 1;
	EXPECT_EQ(vmb_cuda_stream_signal(c, &a), -EINVAL);
	a.flags = 0;
	a.num_syncs = 0;
	EXPECT_EQ(vmb_cuda_stream_wait(c, &a), -EINVAL);
	a.num_syncs = VMB_VM_BIND_MAX_SYNCS + 1;
	EXPECT_EQ(vmb_cuda_stream_wait(c, &a), -EINVAL);
	a.num_syncs = 1;
	a.reserved[1] = 1;
	EXPECT_EQ(vmb_cuda_stream_wait(c, &a), -EINVAL);
	EXPECT_EQ(vmb_cuda_stream_wait(c, NULL), -EINVAL);
	EXPECT_EQ(vmb_client_close(c), 0);
	printf("%d failed\n", failed);
	return failed ? 1 : 0;
}
