/* SPDX-License-Identifier: MIT */
/* The CUDA driver's table, loaded once with dlopen (loader.h has the rules). */
#include "dev/cuda/loader.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <unistd.h>

#define VMB_CU_STR2(x) #x
#define VMB_CU_STR(x) VMB_CU_STR2(x) /* expands the versioning macro first */

static struct vmb_cu table;
static const char *load_reason;
static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static pid_t load_pid; /* the process that initialised the driver */

static void load(void)
{
	void *lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
	if (!lib) {
		load_reason = "libcuda.so.1 not found";
		return;
	}
#define VMB_CU_LOOKUP(f)                                                                           \
	if (!(*(void **)&table.f = dlsym(lib, VMB_CU_STR(f)))) {                                   \
		load_reason = "libcuda too old: " VMB_CU_STR(f);                                   \
		return;                                                                            \
	}
	VMB_CU_FUNCS(VMB_CU_LOOKUP)
	VMB_CU_LOOKUP(cuCtxCreate_v2)
#undef VMB_CU_LOOKUP
	int version = 0;
	if (table.cuDriverGetVersion(&version) != CUDA_SUCCESS || version < 12000) {
		load_reason = "CUDA driver older than 12.0";
		return;
	}
	CUresult r = table.cuInit(0);
	if (r == CUDA_ERROR_NO_DEVICE) {
		load_reason = "no CUDA device";
		return;
	}
	if (r != CUDA_SUCCESS) {
		load_reason = "cuInit failed (no usable GPU)";
		return;
	}
	int n = 0;
	if (table.cuDeviceGetCount(&n) != CUDA_SUCCESS || n <= 0) {
		load_reason = "no CUDA device";
		return;
	}
	load_reason = NULL;
	load_pid = getpid();
}

int vmb_cu_load(const struct vmb_cu **out, const char **reason)
{
	pthread_once(&load_once, load);
	if (load_reason) {
		*reason = load_reason;
		return -ENODEV;
	}
	/* The driver does not survive fork(): a child of the process that initialised it gets
	 * errors or undefined behaviour from every call, so it gets no device (the table is
	 * inherited, the pthread_once done). A child that never had the driver loads it afresh. */
	if (getpid() != load_pid) {
		*reason = "the CUDA driver was initialised before fork(): unusable in the child";
		return -ENODEV;
	}
	*out = &table;
	return 0;
}

const char *vmb_cu_name(const struct vmb_cu *cu, CUresult r)
{
	const char *s = NULL;
	if (cu->cuGetErrorName(r, &s) != CUDA_SUCCESS || !s)
		return "?";
	return s;
}

int vmb_cu_errno(CUresult r)
{
	switch (r) {
	case CUDA_SUCCESS:
		return 0;
	case CUDA_ERROR_OUT_OF_MEMORY:
		return -ENOMEM;
	case CUDA_ERROR_INVALID_VALUE:
	case CUDA_ERROR_INVALID_HANDLE:
	case CUDA_ERROR_INVALID_CONTEXT:
		return -EINVAL;
	case CUDA_ERROR_NOT_SUPPORTED:
		return -EOPNOTSUPP;
	default:
		return -EIO;
	}
}

int vmb_cu_alloc_errno(CUresult r)
{
	if (r == CUDA_SUCCESS)
		return 0;
	return r == CUDA_ERROR_OUT_OF_MEMORY ? -ENOSPC : -ENOMEM;
}
