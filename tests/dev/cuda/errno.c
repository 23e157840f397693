/* SPDX-License-Identifier: MIT */
/*
 * The CUDA device's errnos of its memory calls, without a GPU (pure functions of loader.c): a
 * BO's backing that the driver fails to create or zero gives only what device.h allows a
 * backing_alloc (-ENOSPC, -ENOMEM), so vmb_bo_create and vmb_vm_bind return only what their
 * headers list, whatever the driver's error. A plain program: exit 0 or 1.
 */
#include <errno.h>
#include <stdio.h>

#include "dev/cuda/loader.h"
#include "../../cuda/expect.h"


int main(void)
{
	CHECK_EQ(vmb_cu_alloc_errno(CUDA_SUCCESS), 0);
	CHECK_EQ(vmb_cu_alloc_errno(CUDA_ERROR_OUT_OF_MEMORY), -ENOSPC);
	/* a dead context (a kernel faulted: the zeroing's memset fails), a location the driver
	 * cannot allocate in (HOST_NUMA before 12.2), anything else */
	CHECK_EQ(vmb_cu_alloc_errno(CUDA_ERROR_ILLEGAL_ADDRESS), -ENOMEM);
	CHECK_EQ(vmb_cu_alloc_errno(CUDA_ERROR_INVALID_VALUE), -ENOMEM);
	CHECK_EQ(vmb_cu_alloc_errno(CUDA_ERROR_NOT_SUPPORTED), -ENOMEM);
	for (int r = 1; r < 1000; r++) {
		int e = vmb_cu_alloc_errno((CUresult)r);
		if (e != -ENOSPC && e != -ENOMEM) {
			printf("FAIL: CUresult %d gives %d\n", r, e);
			failed++;
		}
	}
	printf("%d failed\n", failed);
	return failed ? 1 : 0;
}
