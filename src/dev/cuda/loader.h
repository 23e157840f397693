/* SPDX-License-Identifier: MIT */
/*
 * The CUDA driver, loaded at run time: libcuda.so.1 is opened with dlopen() on the first probe
 * and never linked, so one build runs with and without it (docs/UAPI.md, "The CUDA device").
 * The headers (cuda.h) are needed at build time only, for the types and the symbol names: each
 * entry of the table below is the driver function of that name, typed by its declaration in
 * cuda.h and looked up by the versioned symbol cuda.h maps it to (cuMemcpyHtoDAsync ->
 * cuMemcpyHtoDAsync_v2).
 *
 * State: the table is written once, under a pthread_once, and read-only afterwards; a failed
 * load keeps its reason (a static string) for every later probe. Nothing is ever unloaded.
 */
#ifndef VMB_DEV_CUDA_LOADER_H
#define VMB_DEV_CUDA_LOADER_H

#include <cuda.h>

#define VMB_CU_FUNCS(X)                                                                            \
	X(cuInit) X(cuDriverGetVersion) X(cuDeviceGetCount) X(cuDeviceGet) X(cuDeviceGetName)      \
	X(cuDeviceTotalMem) X(cuDeviceGetAttribute) X(cuDevicePrimaryCtxRetain)                    \
	X(cuDevicePrimaryCtxRelease) X(cuCtxPushCurrent) X(cuCtxPopCurrent) X(cuGetErrorName)      \
	X(cuMemGetAllocationGranularity) X(cuMemAddressReserve) X(cuMemAddressFree) X(cuMemCreate) \
	X(cuMemRelease) X(cuMemMap) X(cuMemUnmap) X(cuMemSetAccess) X(cuMemGetAccess)              \
	X(cuMemRetainAllocationHandle) X(cuMemGetInfo) X(cuMemHostAlloc) X(cuMemFreeHost)          \
	X(cuMemHostGetDevicePointer) X(cuPointerGetAttribute) X(cuStreamCreate)                    \
	X(cuStreamDestroy) X(cuStreamSynchronize) X(cuStreamWaitValue64) X(cuStreamWriteValue64)   \
	X(cuMemcpyHtoDAsync) X(cuMemcpyDtoHAsync) X(cuMemcpyDtoDAsync) X(cuMemsetD8Async)        \
	X(cuCtxDestroy) X(cuCtxSetLimit)

struct vmb_cu {
#define VMB_CU_MEMBER(f) __typeof__(f) *f;
	VMB_CU_FUNCS(VMB_CU_MEMBER)
#undef VMB_CU_MEMBER
	/* cuCtxCreate_v2, by that name: every driver since CUDA 3.2 has it (cuda.h maps cuCtxCreate
	 * to _v4, of drivers since 12.5, and no longer declares _v2) */
	CUresult (*cuCtxCreate_v2)(CUcontext *pctx, unsigned int flags, CUdevice dev);
};

/* The driver's table, loaded and cuInit() done: 0; or -ENODEV with *@reason (static). */
int vmb_cu_load(const struct vmb_cu **out, const char **reason);
/* "CUDA_ERROR_..." of @r (the driver's name; "?" if it has none). */
const char *vmb_cu_name(const struct vmb_cu *cu, CUresult r);
/* A negative errno for a CUresult: -ENOMEM (out of memory), -EINVAL (invalid value, handle or
 * context), -EOPNOTSUPP (not supported), -EIO (anything else: the device or the driver failed). */
int vmb_cu_errno(CUresult r);
/* backing_alloc's errno for a failed creation or zeroing (device.h allows 0, -ENOSPC, -ENOMEM):
 * -ENOSPC for a full region (the next placement is tried), -ENOMEM for any other failure (a
 * device error, a location the driver cannot allocate in). */
int vmb_cu_alloc_errno(CUresult r);

#endif
