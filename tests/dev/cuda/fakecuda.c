/* SPDX-License-Identifier: MIT */
/*
 * A stand-in for libcuda.so.1, for the CUDA device's tests without a GPU (tests/dev/cuda/fake.c):
 * the driver calls the library loads (src/dev/cuda/loader.h), over host memory, checking the
 * rules of the real driver that the library must keep and counting what is left allocated.
 *
 * - Memory: a VA reservation is a PROT_NONE mapping; an allocation (cuMemCreate) a memfd;
 *   cuMemMap maps the memfd there (no access until cuMemSetAccess, which mprotects). cuMemUnmap
 *   must name exactly one cuMemMap's range, cuMemSetAccess whole mappings, cuMemAddressFree a
 *   whole reservation with nothing mapped in it: anything else is a protocol error.
 * - Streams: each is a thread running its operations in order (memset, copies, 64-bit waits and
 *   writes). A copy or memset that reaches memory not mapped with access is a "GPU fault": the
 *   stream's error becomes CUDA_ERROR_ILLEGAL_ADDRESS and a protocol error is counted. While held
 *   (fakecu_hold), streams run nothing until synchronised (a slow GPU that does finish); one
 *   stream can be held until the next synchronisation of another (fakecu_land_at_sync).
 * - Contexts: push and pop balance per thread (a pop of nothing is a protocol error); the primary
 *   one and those cuCtxCreate_v2 makes (cuCtxDestroy returns once every stream of every context
 *   is idle, as the H100's driver did) (a stream belongs to the context current at its creation,
 *   and its operations must be queued with that context current: else a protocol error).
 * - Hardware queues: a context's streams share FK_CONNS queues, round robin by creation, as the
 *   driver's CUDA_DEVICE_MAX_CONNECTIONS: an operation does not start while an earlier-queued
 *   64-bit wait of another stream on the same queue has not passed (the false dependency the
 *   H100 showed; src/dev/cuda/cuda.h, cu_enter_own).
 * - Pinned host memory: each allocation has its BUFFER_ID (cuPointerGetAttribute); a test can
 *   make one at an address another allocation (fakecu_host_replace: a context reset).
 * - fakecu_fail(): the n-th next call of a named function fails: out of memory (memory calls),
 *   CUDA_ERROR_ILLEGAL_ADDRESS (stream operations: the sticky error of a kernel that faulted),
 *   CUDA_ERROR_INVALID_CONTEXT (cuCtxPushCurrent: nothing pushed).
 * Locking: one mutex for the tables; a stream's own mutex for its queue. Operations touching
 * device memory run under the table lock (an unmap cannot pull pages from under a copy).
 */
#include <cuda.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define API __attribute__((visibility("default")))
#define GRAN (2ull << 20)

struct fk_alloc {
	int fd;
	size_t size;
	int refs; /* the handle's own (creation, retains) */
	int maps;
};

struct fk_map {
	uintptr_t va;
	size_t size;
	struct fk_alloc *a;
	unsigned long long access;
	struct fk_map *next;
};

struct fk_resv {
	uintptr_t va;
	size_t size;
	struct fk_resv *next;
};

struct fk_host {
	void *p;
	size_t size;
	unsigned long long id; /* CU_POINTER_ATTRIBUTE_BUFFER_ID: never the same twice */
	struct fk_host *next;
};

enum fk_op { OP_MEMSET, OP_COPY, OP_WAIT, OP_WRITE };

struct fk_work {
	enum fk_op op;
	uint64_t ticket; /* the order queued, over all streams (g) */
	uintptr_t dst, src;
	size_t n;
	uint64_t value;
	struct fk_work *next;
};

struct fk_ctx {
	int next_conn; /* the hardware queue of the next stream created (g) */
	int id;        /* 0: the primary context */
	struct fk_ctx *next;
};

struct fk_stream {
	struct fk_ctx *ctx; /* the context it was created in */
	int conn;           /* its hardware queue in that context */
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct fk_work *head, **tail;
	int busy;      /* an operation is running */
	int go;        /* runs while held: someone synchronises */
	int land;      /* held until another stream is synchronised (fakecu_land_at_sync) */
	int stop;
	CUresult error;
};

static pthread_mutex_t g = PTHREAD_MUTEX_INITIALIZER;
static struct fk_map *maps;
static struct fk_resv *resvs;
static struct fk_host *hosts;
static int n_allocs, n_streams, errors;
static int held; /* atomic */
static char last_error[256];
static char fail_fn[64];
static int fail_nth;
static char fail_fn2[64]; /* fakecu_fail_also(): a second call that fails once */
static int fail_nth2;
#define FK_CONNS 8
static __thread int ctx_depth;
static __thread struct fk_ctx *ctx_stack[16];
static int ctx_pushed; /* atomic */
static struct fk_ctx primary_ctx;
static struct fk_ctx *created_ctxs; /* (g) */
static int n_ctxs_created;          /* created and not destroyed (g) */
/* the waits queued and not passed: a later operation on the same queue waits for them (g) */
struct fk_pending_wait {
	struct fk_ctx *ctx;
	int conn;
	uint64_t ticket;
	struct fk_pending_wait *next;
};
static struct fk_pending_wait *pending_waits;
static uint64_t last_ticket;
static struct fk_stream *all_streams[256];
static unsigned long long last_buffer_id; /* (g) */
static struct fk_stream *landing; /* fakecu_land_at_sync's stream (g) */

__attribute__((format(printf, 1, 2))) static void protocol_error(const char *fmt, ...) /* g held */
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(last_error, sizeof(last_error), fmt, ap);
	va_end(ap);
	errors++;
	fprintf(stderr, "fakecuda: %s\n", last_error);
}

/* true: this call is the one fakecu_fail() named (g held) */
static int should_fail(const char *fn)
{
	if (fail_nth2 && !strcmp(fn, fail_fn2) && --fail_nth2 == 0)
		return 1;
	if (!fail_nth || strcmp(fn, fail_fn))
		return 0;
	return --fail_nth == 0;
}

/* a memory call fails as out of memory; a stream operation as the stream's sticky error of
 * earlier work (a kernel that faulted) */
#define FAIL_POINT_AS(fn, err)                                                                     \
	do {                                                                                       \
		pthread_mutex_lock(&g);                                                            \
		int f_ = should_fail(fn);                                                          \
		pthread_mutex_unlock(&g);                                                          \
		if (f_)                                                                            \
			return err;                                                                \
	} while (0)
#define FAIL_POINT(fn) FAIL_POINT_AS(fn, CUDA_ERROR_OUT_OF_MEMORY)
#define FAIL_POINT_STREAM(fn) FAIL_POINT_AS(fn, CUDA_ERROR_ILLEGAL_ADDRESS)

/* ---- the control interface of tests/dev/cuda/fake.c ---- */

struct fakecu_counts {
	int allocs, maps, resvs, hosts, streams, errors;
	int ctx; /* contexts pushed and not popped, over all threads */
	int ctxs; /* contexts created (cuCtxCreate_v2) and not destroyed */
};

API void fakecu_counts(struct fakecu_counts *c, char *err, size_t n);
API void fakecu_fail(const char *fn, int nth);
API void fakecu_fail_also(const char *fn, int nth);
API void fakecu_hold(int on);
API int fakecu_fail_left(void);
API int fakecu_queued(CUstream h);
API void fakecu_land_at_sync(CUstream h);
API int fakecu_host_replace(void *p);

API void fakecu_counts(struct fakecu_counts *c, char *err, size_t n)
{
	pthread_mutex_lock(&g);
	memset(c, 0, sizeof(*c));
	c->allocs = n_allocs;
	for (struct fk_map *m = maps; m; m = m->next)
		c->maps++;
	for (struct fk_resv *r = resvs; r; r = r->next)
		c->resvs++;
	for (struct fk_host *h = hosts; h; h = h->next)
		c->hosts++;
	c->streams = n_streams;
	c->errors = errors;
	c->ctx = __atomic_load_n(&ctx_pushed, __ATOMIC_SEQ_CST);
	c->ctxs = n_ctxs_created;
	if (err && n)
		snprintf(err, n, "%s", last_error);
	pthread_mutex_unlock(&g);
}

API void fakecu_fail(const char *fn, int nth)
{
	pthread_mutex_lock(&g);
	snprintf(fail_fn, sizeof(fail_fn), "%s", fn);
	fail_nth = nth;
	fail_nth2 = 0; /* (fakecu_fail_also's, set after this) */
	pthread_mutex_unlock(&g);
}

/* Besides fakecu_fail()'s call, the @nth next call of @fn fails too. */
API void fakecu_fail_also(const char *fn, int nth)
{
	pthread_mutex_lock(&g);
	snprintf(fail_fn2, sizeof(fail_fn2), "%s", fn);
	fail_nth2 = nth;
	pthread_mutex_unlock(&g);
}

API int fakecu_fail_left(void)
{
	pthread_mutex_lock(&g);
	int n = fail_nth;
	pthread_mutex_unlock(&g);
	return n;
}

API void fakecu_hold(int on)
{
	__atomic_store_n(&held, on, __ATOMIC_SEQ_CST);
}

static struct fk_stream *stream_of(CUstream h);

/* the operations @h has not finished */
API int fakecu_queued(CUstream h)
{
	struct fk_stream *s = stream_of(h);
	int n = 0;
	pthread_mutex_lock(&s->lock);
	for (struct fk_work *w = s->head; w; w = w->next)
		n++;
	pthread_mutex_unlock(&s->lock);
	return n;
}

/* @h runs nothing until the next cuStreamSynchronize of another stream, which first runs @h's
 * work to its end (a stream's write that lands at a moment the test chooses: while the library
 * is in that call) */
API void fakecu_land_at_sync(CUstream h)
{
	struct fk_stream *s = stream_of(h);
	pthread_mutex_lock(&s->lock);
	s->land = 1;
	pthread_mutex_unlock(&s->lock);
	pthread_mutex_lock(&g);
	landing = s;
	pthread_mutex_unlock(&g);
}

/* The pinned allocation at @p is another one now (its context was reset, taking it, and the
 * application's new allocation got the same address): a new BUFFER_ID. 0, or -1: none there. */
API int fakecu_host_replace(void *p)
{
	int r = -1;
	pthread_mutex_lock(&g);
	for (struct fk_host *h = hosts; h; h = h->next)
		if ((char *)p >= (char *)h->p && (char *)p < (char *)h->p + h->size) {
			h->id = ++last_buffer_id;
			r = 0;
		}
	pthread_mutex_unlock(&g);
	return r;
}

/* ---- device and context ---- */

API CUresult cuInit(unsigned int flags) { return CUDA_SUCCESS; }
API CUresult cuDriverGetVersion(int *v) { *v = 12080; return CUDA_SUCCESS; }
API CUresult cuDeviceGetCount(int *n) { *n = 1; return CUDA_SUCCESS; }

API CUresult cuDeviceGet(CUdevice *d, int ordinal)
{
	if (ordinal != 0)
		return CUDA_ERROR_INVALID_DEVICE;
	*d = 0;
	return CUDA_SUCCESS;
}

API CUresult cuDeviceGetName(char *name, int len, CUdevice dev)
{
	snprintf(name, (size_t)len, "fake");
	return CUDA_SUCCESS;
}

API CUresult cuDeviceTotalMem(size_t *bytes, CUdevice dev) { *bytes = 1ull << 30; return CUDA_SUCCESS; }

API CUresult cuDeviceGetAttribute(int *pi, CUdevice_attribute attrib, CUdevice dev)
{
	if (attrib == CU_DEVICE_ATTRIBUTE_HOST_NUMA_ID) {
		*pi = 0;
		return CUDA_SUCCESS;
	}
	return CUDA_ERROR_INVALID_VALUE;
}

API CUresult cuDevicePrimaryCtxRetain(CUcontext *pctx, CUdevice dev)
{
	*pctx = (CUcontext)&primary_ctx;
	return CUDA_SUCCESS;
}

/* @ctx is the primary context or a created one not destroyed (g held) */
static int ctx_valid(CUcontext ctx)
{
	if (ctx == (CUcontext)&primary_ctx)
		return 1;
	for (struct fk_ctx *x = created_ctxs; x; x = x->next)
		if ((CUcontext)x == ctx)
			return 1;
	return 0;
}

static void ctx_push(struct fk_ctx *x)
{
	if (ctx_depth < (int)(sizeof(ctx_stack) / sizeof(ctx_stack[0])))
		ctx_stack[ctx_depth] = x;
	ctx_depth++;
	__atomic_fetch_add(&ctx_pushed, 1, __ATOMIC_SEQ_CST);
}

/* the calling thread's current context (NULL: none) */
static struct fk_ctx *ctx_current(void)
{
	return ctx_depth > 0 && ctx_depth <= (int)(sizeof(ctx_stack) / sizeof(ctx_stack[0])) ? ctx_stack[ctx_depth - 1] : NULL;
}

/* (the cuda.h of CUDA 13 declares only _v4 under this name: this is the _v2 the library looks up) */
API CUresult cuCtxCreate_v2(CUcontext *pctx, unsigned int flags, CUdevice dev);
API CUresult cuCtxCreate_v2(CUcontext *pctx, unsigned int flags, CUdevice dev)
{
	FAIL_POINT("cuCtxCreate_v2");
	if (flags || dev != 0)
		return CUDA_ERROR_INVALID_VALUE;
	struct fk_ctx *x = calloc(1, sizeof(*x));
	pthread_mutex_lock(&g);
	x->id = ++n_ctxs_created + 1000;
	x->next = created_ctxs;
	created_ctxs = x;
	pthread_mutex_unlock(&g);
	ctx_push(x); /* created current */
	*pctx = (CUcontext)x;
	return CUDA_SUCCESS;
}

API CUresult cuStreamDestroy(CUstream h);

/* every stream of every context has run what it was given (g not held) */
static int gpu_idle(void)
{
	int idle = 1;
	pthread_mutex_lock(&g);
	for (unsigned int i = 0; i < sizeof(all_streams) / sizeof(all_streams[0]) && idle; i++) {
		struct fk_stream *st = all_streams[i];
		if (!st)
			continue;
		pthread_mutex_lock(&st->lock);
		idle = !st->head && !st->busy;
		pthread_mutex_unlock(&st->lock);
	}
	pthread_mutex_unlock(&g);
	return idle;
}

/* (as the H100's driver: returns once the GPU's work of every context is done) */
API CUresult cuCtxDestroy_v2(CUcontext ctx)
{
	while (!gpu_idle()) {
		struct timespec ts = {0, 100000};
		nanosleep(&ts, NULL);
	}
	pthread_mutex_lock(&g);
	struct fk_ctx **pp = &created_ctxs;
	while (*pp && (CUcontext)*pp != ctx)
		pp = &(*pp)->next;
	if (!*pp) {
		protocol_error("cuCtxDestroy: not a created context");
		pthread_mutex_unlock(&g);
		return CUDA_ERROR_INVALID_CONTEXT;
	}
	struct fk_ctx *x = *pp;
	struct fk_stream *left[sizeof(all_streams) / sizeof(all_streams[0])];
	unsigned int n_left = 0;
	for (unsigned int i = 0; i < sizeof(all_streams) / sizeof(all_streams[0]); i++)
		if (all_streams[i] && all_streams[i]->ctx == x)
			left[n_left++] = all_streams[i];
	for (int i = 0; i < ctx_depth && i < (int)(sizeof(ctx_stack) / sizeof(ctx_stack[0])); i++)
		if (ctx_stack[i] == x)
			protocol_error("cuCtxDestroy: the context is current on the calling thread");
	*pp = x->next;
	n_ctxs_created--;
	pthread_mutex_unlock(&g);
	for (unsigned int i = 0; i < n_left; i++) /* its streams go with it (the driver's rule) */
		cuStreamDestroy((CUstream)left[i]);
	free(x);
	return CUDA_SUCCESS;
}

API CUresult cuDevicePrimaryCtxRelease(CUdevice dev) { return CUDA_SUCCESS; }

API CUresult cuCtxPushCurrent(CUcontext ctx)
{
	FAIL_POINT_AS("cuCtxPushCurrent", CUDA_ERROR_INVALID_CONTEXT); /* (a context destroyed) */
	pthread_mutex_lock(&g);
	int ok = ctx_valid(ctx);
	pthread_mutex_unlock(&g);
	if (!ok)
		return CUDA_ERROR_INVALID_CONTEXT;
	ctx_push((struct fk_ctx *)ctx);
	return CUDA_SUCCESS;
}

API CUresult cuCtxPopCurrent(CUcontext *pctx)
{
	if (ctx_depth <= 0) {
		pthread_mutex_lock(&g);
		protocol_error("cuCtxPopCurrent: pop with no context pushed");
		pthread_mutex_unlock(&g);
		return CUDA_ERROR_INVALID_CONTEXT;
	}
	struct fk_ctx *x = ctx_current();
	ctx_depth--;
	__atomic_fetch_sub(&ctx_pushed, 1, __ATOMIC_SEQ_CST);
	if (pctx)
		*pctx = (CUcontext)x;
	return CUDA_SUCCESS;
}

/* a driver call that needs a current context, made without one */
static int no_ctx(const char *fn)
{
	if (ctx_depth > 0)
		return 0;
	pthread_mutex_lock(&g);
	protocol_error("%s: no current context", fn);
	pthread_mutex_unlock(&g);
	return 1;
}

API CUresult cuCtxSetLimit(CUlimit limit, size_t value)
{
	if (no_ctx("cuCtxSetLimit"))
		return CUDA_ERROR_INVALID_CONTEXT;
	return limit <= CU_LIMIT_MALLOC_HEAP_SIZE ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

API CUresult cuGetErrorName(CUresult error, const char **s)
{
	*s = error == CUDA_ERROR_OUT_OF_MEMORY ? "CUDA_ERROR_OUT_OF_MEMORY" :
	     error == CUDA_ERROR_ILLEGAL_ADDRESS ? "CUDA_ERROR_ILLEGAL_ADDRESS" : "CUDA_ERROR_(fake)";
	return CUDA_SUCCESS;
}

/* ---- virtual memory ---- */

API CUresult cuMemGetAllocationGranularity(size_t *granularity, const CUmemAllocationProp *prop,
					   CUmemAllocationGranularity_flags option)
{
	*granularity = GRAN;
	return CUDA_SUCCESS;
}

API CUresult cuMemGetInfo(size_t *free_b, size_t *total)
{
	*free_b = *total = 1ull << 30;
	return CUDA_SUCCESS;
}

API CUresult cuMemAddressReserve(CUdeviceptr *ptr, size_t size, size_t alignment, CUdeviceptr addr,
				 unsigned long long flags)
{
	FAIL_POINT("cuMemAddressReserve");
	if (!size || size % GRAN)
		return CUDA_ERROR_INVALID_VALUE;
	void *p = mmap(NULL, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return CUDA_ERROR_OUT_OF_MEMORY;
	struct fk_resv *r = calloc(1, sizeof(*r));
	r->va = (uintptr_t)p;
	r->size = size;
	pthread_mutex_lock(&g);
	r->next = resvs;
	resvs = r;
	pthread_mutex_unlock(&g);
	*ptr = (CUdeviceptr)r->va;
	return CUDA_SUCCESS;
}

API CUresult cuMemAddressFree(CUdeviceptr ptr, size_t size)
{
	pthread_mutex_lock(&g);
	struct fk_resv **pp = &resvs;
	while (*pp && (*pp)->va != ptr)
		pp = &(*pp)->next;
	CUresult r = CUDA_ERROR_INVALID_VALUE;
	if (!*pp || (*pp)->size != size) {
		protocol_error("cuMemAddressFree: %#llx + %zu is no reservation", (unsigned long long)ptr, (size_t)size);
	} else {
		for (struct fk_map *m = maps; m; m = m->next)
			if (m->va >= ptr && m->va < ptr + size)
				protocol_error("cuMemAddressFree: %#llx + %zu still has mappings", (unsigned long long)ptr, (size_t)size);
		struct fk_resv *q = *pp;
		*pp = q->next;
		munmap((void *)q->va, q->size);
		free(q);
		r = CUDA_SUCCESS;
	}
	pthread_mutex_unlock(&g);
	return r;
}

static void alloc_put(struct fk_alloc *a) /* g held */
{
	if (a->refs || a->maps)
		return;
	close(a->fd);
	free(a);
	n_allocs--;
}

API CUresult cuMemCreate(CUmemGenericAllocationHandle *handle, size_t size, const CUmemAllocationProp *prop,
			 unsigned long long flags)
{
	FAIL_POINT("cuMemCreate");
	if (!size || size % GRAN || prop->type != CU_MEM_ALLOCATION_TYPE_PINNED)
		return CUDA_ERROR_INVALID_VALUE;
	int fd = memfd_create("fakecuda", 0);
	if (fd < 0 || ftruncate(fd, (off_t)size)) {
		if (fd >= 0)
			close(fd);
		return CUDA_ERROR_OUT_OF_MEMORY;
	}
	struct fk_alloc *a = calloc(1, sizeof(*a));
	a->fd = fd;
	a->size = size;
	a->refs = 1;
	pthread_mutex_lock(&g);
	n_allocs++;
	pthread_mutex_unlock(&g);
	*handle = (CUmemGenericAllocationHandle)(uintptr_t)a;
	return CUDA_SUCCESS;
}

API CUresult cuMemRelease(CUmemGenericAllocationHandle handle)
{
	struct fk_alloc *a = (struct fk_alloc *)(uintptr_t)handle;
	pthread_mutex_lock(&g);
	if (a->refs <= 0)
		protocol_error("cuMemRelease: handle %#llx released too often", handle);
	else
		a->refs--;
	alloc_put(a);
	pthread_mutex_unlock(&g);
	return CUDA_SUCCESS;
}

static struct fk_resv *resv_of(uintptr_t va, size_t size) /* g held */
{
	for (struct fk_resv *r = resvs; r; r = r->next)
		if (va >= r->va && va + size <= r->va + r->size)
			return r;
	return NULL;
}

API CUresult cuMemMap(CUdeviceptr ptr, size_t size, size_t offset, CUmemGenericAllocationHandle handle,
		      unsigned long long flags)
{
	FAIL_POINT("cuMemMap");
	struct fk_alloc *a = (struct fk_alloc *)(uintptr_t)handle;
	CUresult r = CUDA_SUCCESS;
	pthread_mutex_lock(&g);
	if (offset || size != a->size || !resv_of(ptr, size)) {
		protocol_error("cuMemMap: %#llx + %zu: not a whole allocation inside a reservation", (unsigned long long)ptr, (size_t)size);
		r = CUDA_ERROR_INVALID_VALUE;
	}
	for (struct fk_map *m = maps; m && !r; m = m->next)
		if (ptr < m->va + m->size && m->va < ptr + size) {
			protocol_error("cuMemMap: %#llx + %zu overlaps a mapping", (unsigned long long)ptr, (size_t)size);
			r = CUDA_ERROR_INVALID_VALUE;
		}
	if (!r && mmap((void *)(uintptr_t)ptr, size, PROT_NONE, MAP_SHARED | MAP_FIXED, a->fd, 0) == MAP_FAILED)
		r = CUDA_ERROR_OUT_OF_MEMORY;
	if (!r) {
		struct fk_map *m = calloc(1, sizeof(*m));
		m->va = ptr;
		m->size = size;
		m->a = a;
		m->next = maps;
		maps = m;
		a->maps++;
	}
	pthread_mutex_unlock(&g);
	return r;
}

static int queued_touches(uintptr_t va, size_t size); /* g held */

API CUresult cuMemUnmap(CUdeviceptr ptr, size_t size)
{
	pthread_mutex_lock(&g);
	struct fk_map **pp = &maps;
	while (*pp && (*pp)->va != ptr)
		pp = &(*pp)->next;
	CUresult r = CUDA_SUCCESS;
	if (!*pp || (*pp)->size != size) {
		protocol_error("cuMemUnmap: %#llx + %zu is not one cuMemMap's range", (unsigned long long)ptr, (size_t)size);
		r = CUDA_ERROR_INVALID_VALUE;
	} else {
		if (queued_touches(ptr, size))
			protocol_error("cuMemUnmap: %#llx + %zu unmapped under a stream's queued work (a GPU fault)",
				       (unsigned long long)ptr, (size_t)size);
		struct fk_map *m = *pp;
		*pp = m->next;
		mmap((void *)(uintptr_t)ptr, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0);
		m->a->maps--;
		alloc_put(m->a);
		free(m);
	}
	pthread_mutex_unlock(&g);
	return r;
}

API CUresult cuMemSetAccess(CUdeviceptr ptr, size_t size, const CUmemAccessDesc *desc, size_t count)
{
	FAIL_POINT("cuMemSetAccess");
	if (count != 1 || desc->location.type != CU_MEM_LOCATION_TYPE_DEVICE || desc->location.id != 0)
		return CUDA_ERROR_INVALID_VALUE;
	pthread_mutex_lock(&g);
	/* whole mappings covering the range exactly */
	size_t covered = 0;
	CUresult r = CUDA_SUCCESS;
	for (struct fk_map *m = maps; m; m = m->next) {
		if (m->va + m->size <= ptr || m->va >= ptr + size)
			continue;
		if (m->va < ptr || m->va + m->size > ptr + size)
			r = CUDA_ERROR_INVALID_VALUE;
		covered += m->size;
	}
	if (r || covered != size) {
		protocol_error("cuMemSetAccess: %#llx + %zu is not whole mappings", (unsigned long long)ptr, (size_t)size);
		r = CUDA_ERROR_INVALID_VALUE;
	}
	for (struct fk_map *m = maps; m && !r; m = m->next)
		if (m->va >= ptr && m->va < ptr + size) {
			m->access = desc->flags;
			mprotect((void *)m->va, m->size,
				 desc->flags == CU_MEM_ACCESS_FLAGS_PROT_READWRITE ? PROT_READ | PROT_WRITE :
				 desc->flags == CU_MEM_ACCESS_FLAGS_PROT_READ ? PROT_READ : PROT_NONE);
		}
	pthread_mutex_unlock(&g);
	return r;
}

static struct fk_map *map_at(uintptr_t va) /* g held */
{
	for (struct fk_map *m = maps; m; m = m->next)
		if (va >= m->va && va < m->va + m->size)
			return m;
	return NULL;
}

API CUresult cuMemGetAccess(unsigned long long *flags, const CUmemLocation *location, CUdeviceptr ptr)
{
	pthread_mutex_lock(&g);
	struct fk_map *m = map_at(ptr);
	if (m)
		*flags = m->access;
	pthread_mutex_unlock(&g);
	return m ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

API CUresult cuMemRetainAllocationHandle(CUmemGenericAllocationHandle *handle, void *addr)
{
	pthread_mutex_lock(&g);
	struct fk_map *m = map_at((uintptr_t)addr);
	if (m) {
		m->a->refs++;
		*handle = (CUmemGenericAllocationHandle)(uintptr_t)m->a;
	}
	pthread_mutex_unlock(&g);
	return m ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

/* ---- pinned host memory ---- */

API CUresult cuMemHostAlloc(void **pp, size_t bytesize, unsigned int flags)
{
	if (no_ctx("cuMemHostAlloc"))
		return CUDA_ERROR_INVALID_CONTEXT;
	FAIL_POINT("cuMemHostAlloc");
	struct fk_host *h = calloc(1, sizeof(*h));
	h->size = bytesize;
	h->p = aligned_alloc(4096, (bytesize + 4095) & ~(size_t)4095);
	pthread_mutex_lock(&g);
	h->id = ++last_buffer_id;
	h->next = hosts;
	hosts = h;
	pthread_mutex_unlock(&g);
	*pp = h->p;
	return CUDA_SUCCESS;
}

API CUresult cuMemFreeHost(void *p)
{
	pthread_mutex_lock(&g);
	struct fk_host **pp = &hosts;
	while (*pp && (*pp)->p != p)
		pp = &(*pp)->next;
	struct fk_host *h = *pp;
	if (h)
		*pp = h->next;
	pthread_mutex_unlock(&g);
	if (!h)
		return CUDA_ERROR_INVALID_VALUE;
	free(h->p);
	free(h);
	return CUDA_SUCCESS;
}

API CUresult cuMemHostGetDevicePointer(CUdeviceptr *pdptr, void *p, unsigned int flags)
{
	CUresult r = CUDA_ERROR_INVALID_VALUE;
	pthread_mutex_lock(&g);
	for (struct fk_host *h = hosts; h; h = h->next)
		if ((char *)p >= (char *)h->p && (char *)p < (char *)h->p + h->size) {
			*pdptr = (CUdeviceptr)(uintptr_t)p; /* unified addressing */
			r = CUDA_SUCCESS;
		}
	pthread_mutex_unlock(&g);
	return r;
}

API CUresult cuPointerGetAttribute(void *data, CUpointer_attribute attribute, CUdeviceptr ptr)
{
	if (attribute != CU_POINTER_ATTRIBUTE_BUFFER_ID)
		return CUDA_ERROR_INVALID_VALUE;
	CUresult r = CUDA_ERROR_INVALID_VALUE;
	pthread_mutex_lock(&g);
	for (struct fk_host *h = hosts; h; h = h->next)
		if (ptr >= (uintptr_t)h->p && ptr < (uintptr_t)h->p + h->size) {
			*(unsigned long long *)data = h->id;
			r = CUDA_SUCCESS;
		}
	pthread_mutex_unlock(&g);
	return r;
}

/* ---- streams ---- */

/* a device range the GPU may touch: mapped, with @write access (g held) */
static int reachable(uintptr_t va, size_t n, int write)
{
	for (uintptr_t a = va; a < va + n;) {
		struct fk_map *m = map_at(a);
		if (!m || !m->access || (write && m->access != CU_MEM_ACCESS_FLAGS_PROT_READWRITE))
			return 0;
		a = m->va + m->size;
	}
	return 1;
}

static int host_mem(uintptr_t p, size_t n) /* g held */
{
	for (struct fk_host *h = hosts; h; h = h->next)
		if (p >= (uintptr_t)h->p && p + n <= (uintptr_t)h->p + h->size)
			return 1;
	return 0;
}

static int touches(const struct fk_work *w, uintptr_t va, size_t size)
{
	if (w->op != OP_MEMSET && w->op != OP_COPY)
		return 0;
	return (w->dst < va + size && va < w->dst + w->n) || (w->op == OP_COPY && w->src < va + size && va < w->src + w->n);
}

static int queued_touches(uintptr_t va, size_t size)
{
	int hit = 0;
	for (unsigned int i = 0; i < sizeof(all_streams) / sizeof(all_streams[0]); i++) {
		struct fk_stream *s = all_streams[i];
		if (!s)
			continue;
		pthread_mutex_lock(&s->lock);
		for (struct fk_work *w = s->head; w && !hit; w = w->next)
			hit = touches(w, va, size);
		pthread_mutex_unlock(&s->lock);
	}
	return hit;
}

/* @w of @s may not start: an earlier wait on its hardware queue has not passed (g held) */
static int queue_blocked(const struct fk_stream *s, const struct fk_work *w)
{
	for (struct fk_pending_wait *p = pending_waits; p && p->ticket < w->ticket; p = p->next)
		if (p->ctx == s->ctx && p->conn == s->conn)
			return 1;
	return 0;
}

/* the wait queued as @ticket passed, or its stream went (g held) */
static void wait_passed(uint64_t ticket)
{
	for (struct fk_pending_wait **pp = &pending_waits; *pp; pp = &(*pp)->next)
		if ((*pp)->ticket == ticket) {
			struct fk_pending_wait *p = *pp;
			*pp = p->next;
			free(p);
			return;
		}
}

static CUresult run_work(struct fk_stream *s, struct fk_work *w)
{
	if (w->op == OP_WAIT) {
		while ((int64_t)(__atomic_load_n((uint64_t *)w->dst, __ATOMIC_ACQUIRE) - w->value) < 0) {
			pthread_mutex_lock(&s->lock);
			int stop = s->stop;
			pthread_mutex_unlock(&s->lock);
			if (stop)
				return CUDA_SUCCESS;
			struct timespec ts = {0, 20000};
			nanosleep(&ts, NULL);
		}
		return CUDA_SUCCESS;
	}
	if (w->op == OP_WRITE) {
		__atomic_store_n((uint64_t *)w->dst, w->value, __ATOMIC_RELEASE);
		return CUDA_SUCCESS;
	}
	pthread_mutex_lock(&g);
	int ok = (reachable(w->dst, w->n, 1) || host_mem(w->dst, w->n)) &&
		 (w->op == OP_MEMSET || reachable(w->src, w->n, 0) || host_mem(w->src, w->n));
	CUresult r = CUDA_SUCCESS;
	if (!ok) {
		protocol_error("stream: %#llx + %zu: a GPU fault (not mapped with access)", (unsigned long long)w->dst,
			       w->n);
		r = CUDA_ERROR_ILLEGAL_ADDRESS;
	} else if (w->op == OP_MEMSET) {
		memset((void *)w->dst, (int)w->value, w->n);
	} else {
		memcpy((void *)w->dst, (const void *)w->src, w->n);
	}
	pthread_mutex_unlock(&g);
	return r;
}

static void *stream_main(void *arg)
{
	struct fk_stream *s = arg;
	pthread_mutex_lock(&s->lock);
	for (;;) {
		int hold = __atomic_load_n(&held, __ATOMIC_SEQ_CST) || s->land;
		if (s->head && (!hold || s->go)) {
			struct fk_work *w = s->head;
			int stopping = s->stop;
			s->busy = 1;
			pthread_mutex_unlock(&s->lock);
			pthread_mutex_lock(&g);
			int blocked = !stopping && queue_blocked(s, w);
			pthread_mutex_unlock(&g);
			if (blocked) { /* behind another stream's wait on its hardware queue */
				struct timespec ts = {0, 20000};
				nanosleep(&ts, NULL);
				pthread_mutex_lock(&s->lock);
				s->busy = 0;
				continue;
			}
			CUresult e = s->error ? CUDA_SUCCESS : run_work(s, w);
			if (w->op == OP_WAIT) {
				pthread_mutex_lock(&g);
				wait_passed(w->ticket);
				pthread_mutex_unlock(&g);
			}
			pthread_mutex_lock(&s->lock);
			if (e)
				s->error = e;
			s->head = w->next;
			if (!s->head)
				s->tail = &s->head;
			free(w);
			s->busy = 0;
			pthread_cond_broadcast(&s->cond);
			continue;
		}
		if (s->stop && !s->head)
			break;
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 1000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&s->cond, &s->lock, &ts); /* (a hold lifted wakes no one) */
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

static struct fk_stream *default_stream;
static pthread_once_t default_once = PTHREAD_ONCE_INIT;

static struct fk_stream *stream_new(struct fk_ctx *ctx)
{
	struct fk_stream *s = calloc(1, sizeof(*s));
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->cond, NULL);
	s->tail = &s->head;
	s->ctx = ctx;
	pthread_mutex_lock(&g);
	s->conn = ctx->next_conn++ % FK_CONNS;
	for (unsigned int i = 0; i < sizeof(all_streams) / sizeof(all_streams[0]); i++)
		if (!all_streams[i]) {
			all_streams[i] = s;
			break;
		}
	n_streams++;
	pthread_mutex_unlock(&g);
	pthread_create(&s->thread, NULL, stream_main, s);
	return s;
}

static void default_init(void) { default_stream = stream_new(&primary_ctx); }

static struct fk_stream *stream_of(CUstream h)
{
	if (!h) {
		pthread_once(&default_once, default_init);
		return default_stream;
	}
	return (struct fk_stream *)h;
}

API CUresult cuStreamCreate(CUstream *ph, unsigned int flags)
{
	if (no_ctx("cuStreamCreate"))
		return CUDA_ERROR_INVALID_CONTEXT;
	FAIL_POINT("cuStreamCreate");
	*ph = (CUstream)stream_new(ctx_current());
	return CUDA_SUCCESS;
}

API CUresult cuStreamDestroy(CUstream h)
{
	struct fk_stream *s = stream_of(h);
	pthread_mutex_lock(&s->lock);
	s->stop = 1;
	s->go = 1; /* what it has still runs (the driver's rule) */
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
	pthread_join(s->thread, NULL);
	pthread_mutex_lock(&g);
	if (landing == s)
		landing = NULL;
	for (unsigned int i = 0; i < sizeof(all_streams) / sizeof(all_streams[0]); i++)
		if (all_streams[i] == s)
			all_streams[i] = NULL;
	n_streams--;
	pthread_mutex_unlock(&g);
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->cond);
	free(s);
	return CUDA_SUCCESS;
}

API CUresult cuStreamSynchronize(CUstream h)
{
	struct fk_stream *s = stream_of(h);
	pthread_mutex_lock(&g);
	struct fk_stream *l = landing != s ? landing : NULL;
	if (l)
		landing = NULL;
	pthread_mutex_unlock(&g);
	if (l) { /* its work lands now */
		pthread_mutex_lock(&l->lock);
		l->land = 0;
		pthread_mutex_unlock(&l->lock);
		cuStreamSynchronize((CUstream)l);
	}
	pthread_mutex_lock(&s->lock);
	s->go = 1;
	pthread_cond_broadcast(&s->cond);
	while (s->head || s->busy)
		pthread_cond_wait(&s->cond, &s->lock);
	s->go = 0;
	CUresult r = s->error;
	pthread_mutex_unlock(&s->lock);
	return r;
}

static CUresult enqueue(CUstream h, enum fk_op op, uintptr_t dst, uintptr_t src, size_t n, uint64_t value)
{
	struct fk_stream *s = stream_of(h);
	struct fk_work *w = calloc(1, sizeof(*w));
	*w = (struct fk_work){.op = op, .dst = dst, .src = src, .n = n, .value = value};
	struct fk_pending_wait *pw = op == OP_WAIT ? calloc(1, sizeof(*pw)) : NULL;
	pthread_mutex_lock(&g);
	if (h && s->ctx != ctx_current())
		protocol_error("a stream operation queued with another context than the stream's current");
	pthread_mutex_lock(&s->lock);
	CUresult r = s->error;
	if (!r) {
		w->ticket = ++last_ticket;
		if (pw) { /* (queued in ticket order: the list's tail) */
			*pw = (struct fk_pending_wait){.ctx = s->ctx, .conn = s->conn, .ticket = w->ticket};
			struct fk_pending_wait **pp = &pending_waits;
			while (*pp)
				pp = &(*pp)->next;
			*pp = pw;
			pw = NULL;
		}
		*s->tail = w;
		s->tail = &w->next;
		pthread_cond_broadcast(&s->cond);
	}
	pthread_mutex_unlock(&s->lock);
	pthread_mutex_unlock(&g);
	free(pw);
	if (r)
		free(w);
	return r;
}


API CUresult cuStreamWaitValue64(CUstream h, CUdeviceptr addr, cuuint64_t value, unsigned int flags)
{
	if (no_ctx("cuStreamWaitValue64"))
		return CUDA_ERROR_INVALID_CONTEXT;
	FAIL_POINT_STREAM("cuStreamWaitValue64");
	if (flags != CU_STREAM_WAIT_VALUE_GEQ || addr & 7)
		return CUDA_ERROR_INVALID_VALUE;
	return enqueue(h, OP_WAIT, addr, 0, 8, value);
}

API CUresult cuStreamWriteValue64(CUstream h, CUdeviceptr addr, cuuint64_t value, unsigned int flags)
{
	if (no_ctx("cuStreamWriteValue64"))
		return CUDA_ERROR_INVALID_CONTEXT;
	FAIL_POINT_STREAM("cuStreamWriteValue64");
	if (addr & 7)
		return CUDA_ERROR_INVALID_VALUE;
	return enqueue(h, OP_WRITE, addr, 0, 8, value);
}

API CUresult cuMemcpyHtoDAsync(CUdeviceptr dst, const void *src, size_t n, CUstream h)
{
	if (no_ctx("cuMemcpyHtoDAsync"))
		return CUDA_ERROR_INVALID_CONTEXT;
	FAIL_POINT_STREAM("cuMemcpyHtoDAsync");
	/* pageable host memory: the driver copies it out before it returns */
	void *copy = malloc(n);
	memcpy(copy, src, n);
	pthread_mutex_lock(&g);
	struct fk_host *hh = calloc(1, sizeof(*hh));
	hh->p = copy;
	hh->size = n;
	hh->next = hosts;
	hosts = hh;
	pthread_mutex_unlock(&g);
	CUresult r = enqueue(h, OP_COPY, dst, (uintptr_t)copy, n, 0);
	if (!r)
		r = cuStreamSynchronize(h);
	cuMemFreeHost(copy);
	return r;
}

API CUresult cuMemcpyDtoHAsync(void *dst, CUdeviceptr src, size_t n, CUstream h)
{
	if (no_ctx("cuMemcpyDtoHAsync"))
		return CUDA_ERROR_INVALID_CONTEXT;
	FAIL_POINT_STREAM("cuMemcpyDtoHAsync");
	void *bounce;
	cuMemHostAlloc(&bounce, n, 0);
	CUresult r = enqueue(h, OP_COPY, (uintptr_t)bounce, src, n, 0);
	if (!r)
		r = cuStreamSynchronize(h); /* pageable memory: the copy is over when it returns */
	if (!r)
		memcpy(dst, bounce, n);
	cuMemFreeHost(bounce);
	return r;
}

API CUresult cuMemcpyDtoDAsync(CUdeviceptr dst, CUdeviceptr src, size_t n, CUstream h)
{
	if (no_ctx("cuMemcpyDtoDAsync"))
		return CUDA_ERROR_INVALID_CONTEXT;
	FAIL_POINT_STREAM("cuMemcpyDtoDAsync");
	return enqueue(h, OP_COPY, dst, src, n, 0);
}

API CUresult cuMemsetD8Async(CUdeviceptr dst, unsigned char uc, size_t n, CUstream h)
{
	if (no_ctx("cuMemsetD8Async"))
		return CUDA_ERROR_INVALID_CONTEXT;
	FAIL_POINT_STREAM("cuMemsetD8Async");
	return enqueue(h, OP_MEMSET, dst, 0, n, uc);
}
