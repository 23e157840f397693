/* SPDX-License-Identifier: MIT */
/*
 * The CUDA driver for the GPU tests, the probe and `vmbind bench cuda`: libcuda.so.1 opened with
 * dlopen (never linked: without it, or without a GPU, cudrv_open() says why and the test skips
 * with 77), the few driver calls they use, and the kernels (kernels.ptx, the same text as the
 * string below, JIT-compiled by the driver: no nvcc at build time). Header-only; needs cuda.h
 * at build time (the library's own loader is src/dev/cuda/loader.c, which nothing outside that
 * folder includes).
 */
#ifndef VMB_TESTS_CUDRV_H
#define VMB_TESTS_CUDRV_H

#include <cuda.h>
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#define CUDRV_FUNCS(X)                                                                             \
	X(cuInit) X(cuDriverGetVersion) X(cuDeviceGetCount) X(cuDeviceGet) X(cuDeviceGetName)      \
	X(cuDeviceGetAttribute) X(cuDevicePrimaryCtxRetain) X(cuCtxSetCurrent) X(cuCtxSynchronize) \
	X(cuGetErrorName) X(cuStreamCreate) X(cuStreamDestroy) X(cuStreamSynchronize)             \
	X(cuStreamQuery) X(cuStreamWaitValue64) X(cuStreamWriteValue64) X(cuLaunchKernel)          \
	X(cuLaunchHostFunc) X(cuModuleLoadData) X(cuModuleGetFunction) X(cuMemcpyDtoHAsync)        \
	X(cuMemcpyHtoDAsync) X(cuMemcpyHtoD) X(cuMemHostAlloc) X(cuMemFreeHost)                    \
	X(cuMemHostGetDevicePointer) X(cuMemAddressReserve) X(cuMemAddressFree) X(cuMemCreate)     \
	X(cuMemRelease) X(cuMemMap) X(cuMemUnmap) X(cuMemSetAccess) X(cuMemRetainAllocationHandle) \
	X(cuMemGetAllocationGranularity) X(cuMemsetD32Async) X(cuMemGetInfo)

#define CUDRV_STR2(x) #x
#define CUDRV_STR(x) CUDRV_STR2(x)

struct cudrv {
#define CUDRV_MEMBER(f) __typeof__(f) *f;
	CUDRV_FUNCS(CUDRV_MEMBER)
#undef CUDRV_MEMBER
	CUdevice dev;
	CUcontext ctx;
	CUmodule mod;
	CUfunction fill, copy;
	char name[64];
	int version;
};

static const char cudrv_ptx[] =
	".version 7.0\n"
	".target sm_70\n"
	".address_size 64\n"
	"\n"
	".visible .entry vmb_fill(.param .u64 p, .param .u32 n, .param .u32 v, .param .u64 ns)\n"
	"{\n"
	"	.reg .pred %q<3>;\n"
	"	.reg .b32 %r<8>;\n"
	"	.reg .b64 %rd<8>;\n"
	"	ld.param.u64 %rd1, [p];\n"
	"	ld.param.u32 %r1, [n];\n"
	"	ld.param.u32 %r2, [v];\n"
	"	ld.param.u64 %rd2, [ns];\n"
	"	setp.eq.u64 %q1, %rd2, 0;\n"
	"	@%q1 bra FILL;\n"
	"	mov.u64 %rd3, %globaltimer;\n"
	"	add.u64 %rd4, %rd3, %rd2;\n"
	"SPIN:\n"
	"	mov.u64 %rd5, %globaltimer;\n"
	"	setp.lt.u64 %q2, %rd5, %rd4;\n"
	"	@%q2 bra SPIN;\n"
	"FILL:\n"
	"	mov.u32 %r3, %ctaid.x;\n"
	"	mov.u32 %r4, %ntid.x;\n"
	"	mov.u32 %r5, %tid.x;\n"
	"	mad.lo.u32 %r6, %r3, %r4, %r5;\n"
	"	setp.ge.u32 %q1, %r6, %r1;\n"
	"	@%q1 bra DONE;\n"
	"	add.u32 %r7, %r2, %r6;\n"
	"	mul.wide.u32 %rd6, %r6, 4;\n"
	"	add.u64 %rd7, %rd1, %rd6;\n"
	"	st.global.u32 [%rd7], %r7;\n"
	"DONE:\n"
	"	ret;\n"
	"}\n"
	"\n"
	".visible .entry vmb_copy(.param .u64 dst, .param .u64 src, .param .u32 n)\n"
	"{\n"
	"	.reg .pred %q<2>;\n"
	"	.reg .b32 %r<7>;\n"
	"	.reg .b64 %rd<8>;\n"
	"	ld.param.u64 %rd1, [dst];\n"
	"	ld.param.u64 %rd2, [src];\n"
	"	ld.param.u32 %r1, [n];\n"
	"	mov.u32 %r3, %ctaid.x;\n"
	"	mov.u32 %r4, %ntid.x;\n"
	"	mov.u32 %r5, %tid.x;\n"
	"	mad.lo.u32 %r6, %r3, %r4, %r5;\n"
	"	setp.ge.u32 %q1, %r6, %r1;\n"
	"	@%q1 bra DONE;\n"
	"	mul.wide.u32 %rd3, %r6, 4;\n"
	"	add.u64 %rd4, %rd2, %rd3;\n"
	"	ld.global.u32 %r2, [%rd4];\n"
	"	add.u64 %rd5, %rd1, %rd3;\n"
	"	st.global.u32 [%rd5], %r2;\n"
	"DONE:\n"
	"	ret;\n"
	"}\n"
	"\n";

#define CUDRV_CHECK(d, call)                                                                       \
	do {                                                                                       \
		CUresult r_ = (call);                                                              \
		if (r_ != CUDA_SUCCESS) {                                                          \
			const char *n_ = "?";                                                      \
			(d)->cuGetErrorName(r_, &n_);                                              \
			fprintf(stderr, "%s:%d: %s: %s\\n", __FILE__, __LINE__, #call, n_);        \
			exit(1);                                                                   \
		}                                                                                  \
	} while (0)

/* The driver and GPU 0 with its primary context current, the kernels loaded: 0; or 77 (skip)
 * with the reason on stdout. */
static inline int cudrv_open(struct cudrv *d)
{
	void *lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
	int n = 0;
	if (!lib) {
		printf("SKIP: libcuda.so.1 not found\n");
		return 77;
	}
#define CUDRV_LOOKUP(f)                                                                            \
	if (!(*(void **)&d->f = dlsym(lib, CUDRV_STR(f)))) {                                       \
		printf("SKIP: libcuda has no %s\n", CUDRV_STR(f));                                 \
		return 77;                                                                         \
	}
	CUDRV_FUNCS(CUDRV_LOOKUP)
#undef CUDRV_LOOKUP
	if (d->cuInit(0) || d->cuDeviceGetCount(&n) || n < 1) {
		printf("SKIP: no CUDA device\n");
		return 77;
	}
	CUDRV_CHECK(d, d->cuDeviceGet(&d->dev, 0));
	CUDRV_CHECK(d, d->cuDeviceGetName(d->name, sizeof(d->name), d->dev));
	CUDRV_CHECK(d, d->cuDriverGetVersion(&d->version));
	CUDRV_CHECK(d, d->cuDevicePrimaryCtxRetain(&d->ctx, d->dev));
	CUDRV_CHECK(d, d->cuCtxSetCurrent(d->ctx));
	CUDRV_CHECK(d, d->cuModuleLoadData(&d->mod, cudrv_ptx));
	CUDRV_CHECK(d, d->cuModuleGetFunction(&d->fill, d->mod, "vmb_fill"));
	CUDRV_CHECK(d, d->cuModuleGetFunction(&d->copy, d->mod, "vmb_copy"));
	return 0;
}

/* vmb_fill on @s: p[i] = v + i, i < n, after spinning @ns nanoseconds. */
static inline CUresult cudrv_fill(struct cudrv *d, CUstream s, CUdeviceptr p, uint32_t n, uint32_t v, uint64_t ns)
{
	void *args[] = {&p, &n, &v, &ns};
	return d->cuLaunchKernel(d->fill, (n + 255) / 256, 1, 1, 256, 1, 1, 0, s, args, NULL);
}

/* vmb_copy on @s: dst[i] = src[i], i < n. */
static inline CUresult cudrv_copy(struct cudrv *d, CUstream s, CUdeviceptr dst, CUdeviceptr src, uint32_t n)
{
	void *args[] = {&dst, &src, &n};
	return d->cuLaunchKernel(d->copy, (n + 255) / 256, 1, 1, 256, 1, 1, 0, s, args, NULL);
}

static inline int64_t cudrv_now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

#endif
