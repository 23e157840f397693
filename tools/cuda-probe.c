/* SPDX-License-Identifier: MIT */
/*
 * The probe of issue 15 (docs/PERFORMANCE.md, "CUDA device"): raw driver calls, no vmbind, to
 * check on this machine the facts the CUDA device is built on. Prints one line per fact;
 * exit 0, 77 without a GPU, 1 if a fact the device relies on does not hold:
 *  - no VMM call waits for the GPU: with a non-blocking stream blocked in cuStreamWaitValue64,
 *    and again with a kernel running, reserve/create/map/set-access/unmap/release return fast;
 *  - a synchronous copy does wait for a blocked legacy (blocking) stream (why the device never
 *    makes one);
 *  - cuMemMap with a size smaller than the handle;
 *  - cuMemSetAccess cost for 1, 8, 64, 512 handles of 2 MiB and one handle of 2 MiB * k;
 *  - CPU access to a HOST_NUMA allocation mapped with host access;
 *  - stream -> host latency: cuLaunchHostFunc callback vs a cuStreamWriteValue64 polled by a
 *    thread; host -> stream: a value written by the host releasing cuStreamWaitValue64.
 */
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../tests/cuda/cudrv.h"

#define MB (1ull << 20)
static struct cudrv D, *d = &D;
static size_t gran;
static bool bad;

static CUmemAccessDesc rw_desc(void)
{
	CUmemAccessDesc a = {0};
	a.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
	a.location.id = 0;
	a.flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
	return a;
}

static CUmemAllocationProp vram_prop(void)
{
	CUmemAllocationProp p = {0};
	p.type = CU_MEM_ALLOCATION_TYPE_PINNED;
	p.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
	p.location.id = 0;
	return p;
}

static double us(int64_t a, int64_t b) { return (double)(b - a) / 1000.0; }

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

/* Each VMM call once, timed (µs); the largest. */
static double vmm_round(const char *when)
{
	CUmemAllocationProp p = vram_prop();
	CUmemAccessDesc a = rw_desc();
	CUdeviceptr va;
	CUmemGenericAllocationHandle h;
	int64_t t[7];
	uint64_t size = 64 * MB;
	t[0] = cudrv_now_ns();
	CUDRV_CHECK(d, d->cuMemAddressReserve(&va, size, 0, 0, 0));
	t[1] = cudrv_now_ns();
	CUDRV_CHECK(d, d->cuMemCreate(&h, size, &p, 0));
	t[2] = cudrv_now_ns();
	CUDRV_CHECK(d, d->cuMemMap(va, size, 0, h, 0));
	t[3] = cudrv_now_ns();
	CUDRV_CHECK(d, d->cuMemSetAccess(va, size, &a, 1));
	t[4] = cudrv_now_ns();
	CUDRV_CHECK(d, d->cuMemUnmap(va, size));
	t[5] = cudrv_now_ns();
	CUDRV_CHECK(d, d->cuMemRelease(h));
	t[6] = cudrv_now_ns();
	d->cuMemAddressFree(va, size);
	double worst = 0;
	for (int i = 0; i < 6; i++)
		if (us(t[i], t[i + 1]) > worst)
			worst = us(t[i], t[i + 1]);
	printf("vmm_calls %-22s reserve %.0f create %.0f map %.0f access %.0f unmap %.0f release %.0f us (max %.0f)\n",
	       when, us(t[0], t[1]), us(t[1], t[2]), us(t[2], t[3]), us(t[3], t[4]), us(t[4], t[5]), us(t[5], t[6]),
	       worst);
	return worst;
}

static volatile uint64_t *host_word; /* pinned, device-mapped: [0] gate, [1] stream->host */
static CUdeviceptr host_dptr;

struct delayed { volatile uint64_t *p; uint64_t v; long ms; };
static void *write_later(void *arg)
{
	struct delayed *w = arg;
	usleep((useconds_t)w->ms * 1000);
	__atomic_store_n((uint64_t *)w->p, w->v, __ATOMIC_RELEASE);
	return NULL;
}

static void probe_blocked(void)
{
	CUstream s;
	CUDRV_CHECK(d, d->cuStreamCreate(&s, CU_STREAM_NON_BLOCKING));
	host_word[0] = 0;
	CUDRV_CHECK(d, d->cuStreamWaitValue64(s, host_dptr, 1, CU_STREAM_WAIT_VALUE_GEQ));
	double w = vmm_round("stream_blocked");
	host_word[0] = 1;
	CUDRV_CHECK(d, d->cuStreamSynchronize(s));
	/* a kernel spinning 500 ms */
	CUdeviceptr buf;
	CUmemGenericAllocationHandle h;
	CUmemAllocationProp p = vram_prop();
	CUmemAccessDesc a = rw_desc();
	CUDRV_CHECK(d, d->cuMemAddressReserve(&buf, gran, 0, 0, 0));
	CUDRV_CHECK(d, d->cuMemCreate(&h, gran, &p, 0));
	CUDRV_CHECK(d, d->cuMemMap(buf, gran, 0, h, 0));
	CUDRV_CHECK(d, d->cuMemSetAccess(buf, gran, &a, 1));
	int64_t t0 = cudrv_now_ns();
	CUDRV_CHECK(d, cudrv_fill(d, s, buf, 1, 1, 500000000ull));
	double k = vmm_round("kernel_running");
	bool still = d->cuStreamQuery(s) == CUDA_ERROR_NOT_READY;
	CUDRV_CHECK(d, d->cuStreamSynchronize(s));
	printf("vmm_calls kernel_still_running_after %d (kernel %.0f ms)\n", still, us(t0, cudrv_now_ns()) / 1000);
	if (w > 50000 || k > 50000 || !still) {
		printf("FACT FAILS: a VMM call waited for the GPU\n");
		bad = true;
	}
	/* a blocking stream blocked: does a synchronous copy wait? */
	CUstream b;
	CUDRV_CHECK(d, d->cuStreamCreate(&b, CU_STREAM_DEFAULT));
	host_word[0] = 0;
	CUDRV_CHECK(d, d->cuStreamWaitValue64(b, host_dptr, 1, CU_STREAM_WAIT_VALUE_GEQ));
	struct delayed wl = {&host_word[0], 1, 200};
	pthread_t th;
	pthread_create(&th, NULL, write_later, &wl);
	uint32_t v = 7;
	int64_t c0 = cudrv_now_ns();
	CUDRV_CHECK(d, d->cuMemcpyHtoD(buf, &v, sizeof(v)));
	double cp = us(c0, cudrv_now_ns());
	pthread_join(th, NULL);
	CUDRV_CHECK(d, d->cuStreamSynchronize(b));
	printf("sync_copy_with_blocked_legacy_stream %.0f us (value written after 200000 us): %s\n", cp,
	       cp > 150000 ? "waits" : "does not wait");
	d->cuStreamDestroy(b);
	d->cuStreamDestroy(s);
	d->cuMemUnmap(buf, gran);
	d->cuMemRelease(h);
	d->cuMemAddressFree(buf, gran);
}

static void probe_small_map(void)
{
	CUmemAllocationProp p = vram_prop();
	CUdeviceptr va;
	CUmemGenericAllocationHandle h;
	CUDRV_CHECK(d, d->cuMemAddressReserve(&va, 4 * gran, 0, 0, 0));
	CUDRV_CHECK(d, d->cuMemCreate(&h, 4 * gran, &p, 0));
	CUresult r = d->cuMemMap(va, gran, 0, h, 0);
	const char *n = "CUDA_SUCCESS";
	if (r)
		d->cuGetErrorName(r, &n);
	printf("cuMemMap size < handle (2 MiB of 8 MiB, offset 0): %s\n", n);
	if (!r)
		d->cuMemUnmap(va, gran);
	r = d->cuMemMap(va, gran, gran, h, 0);
	n = "CUDA_SUCCESS";
	if (r)
		d->cuGetErrorName(r, &n);
	printf("cuMemMap offset 2 MiB into a handle: %s\n", n);
	if (!r)
		d->cuMemUnmap(va, gran);
	d->cuMemRelease(h);
	d->cuMemAddressFree(va, 4 * gran);
}

static void probe_access_cost(void)
{
	static const unsigned counts[] = {1, 8, 64, 512};
	CUmemAllocationProp p = vram_prop();
	CUmemAccessDesc a = rw_desc();
	for (int mode = 0; mode < 2; mode++) {
		for (unsigned c = 0; c < 4; c++) {
			unsigned n = mode ? 1 : counts[c];
			uint64_t each = mode ? counts[c] * gran : gran, size = n * each;
			CUdeviceptr va;
			CUmemGenericAllocationHandle *h = calloc(n, sizeof(*h));
			CUDRV_CHECK(d, d->cuMemAddressReserve(&va, size, 0, 0, 0));
			int64_t t0 = cudrv_now_ns();
			for (unsigned i = 0; i < n; i++)
				CUDRV_CHECK(d, d->cuMemCreate(&h[i], each, &p, 0));
			int64_t t1 = cudrv_now_ns();
			for (unsigned i = 0; i < n; i++)
				CUDRV_CHECK(d, d->cuMemMap(va + i * each, each, 0, h[i], 0));
			int64_t t2 = cudrv_now_ns();
			CUDRV_CHECK(d, d->cuMemSetAccess(va, size, &a, 1));
			int64_t t3 = cudrv_now_ns();
			for (unsigned i = 0; i < n; i++)
				CUDRV_CHECK(d, d->cuMemUnmap(va + i * each, each));
			int64_t t4 = cudrv_now_ns();
			for (unsigned i = 0; i < n; i++)
				d->cuMemRelease(h[i]);
			d->cuMemAddressFree(va, size);
			free(h);
			printf("handles %3u x %4llu MiB: create %8.0f map %8.0f set_access(one call) %8.0f unmap %8.0f us\n", n,
			       (unsigned long long)(each / MB), us(t0, t1), us(t1, t2), us(t2, t3), us(t3, t4));
		}
	}
}

static void probe_host_numa(void)
{
	CUmemAllocationProp p = {0};
	p.type = CU_MEM_ALLOCATION_TYPE_PINNED;
	p.location.type = CU_MEM_LOCATION_TYPE_HOST_NUMA;
	int numa = 0;
	if (d->cuDeviceGetAttribute(&numa, CU_DEVICE_ATTRIBUTE_HOST_NUMA_ID, d->dev) || numa < 0)
		numa = 0;
	p.location.id = numa;
	CUmemGenericAllocationHandle h;
	CUdeviceptr va;
	CUresult r = d->cuMemCreate(&h, gran, &p, 0);
	if (r) {
		const char *n = "?";
		d->cuGetErrorName(r, &n);
		printf("host_numa create: %s\n", n);
		return;
	}
	CUDRV_CHECK(d, d->cuMemAddressReserve(&va, gran, 0, 0, 0));
	CUDRV_CHECK(d, d->cuMemMap(va, gran, 0, h, 0));
	CUmemAccessDesc a[2] = {rw_desc(), rw_desc()};
	a[1].location.type = CU_MEM_LOCATION_TYPE_HOST_NUMA;
	a[1].location.id = numa;
	r = d->cuMemSetAccess(va, gran, a, 2);
	const char *n = "CUDA_SUCCESS";
	if (r)
		d->cuGetErrorName(r, &n);
	printf("host_numa set_access device+host: %s\n", n);
	if (r)
		CUDRV_CHECK(d, d->cuMemSetAccess(va, gran, a, 1));
	CUstream s;
	CUDRV_CHECK(d, d->cuStreamCreate(&s, CU_STREAM_NON_BLOCKING));
	CUDRV_CHECK(d, cudrv_fill(d, s, va, 1024, 100, 0));
	CUDRV_CHECK(d, d->cuStreamSynchronize(s));
	uint32_t back[4] = {0};
	CUDRV_CHECK(d, d->cuMemcpyDtoHAsync(back, va + 4, sizeof(back), s));
	CUDRV_CHECK(d, d->cuStreamSynchronize(s));
	printf("host_numa kernel write, readback: %u %u (want 101 102)\n", back[0], back[1]);
	fflush(stdout);
	pid_t pid = fork();
	if (!pid) {
		volatile uint32_t *cpu = (volatile uint32_t *)(uintptr_t)va;
		_exit(cpu[1] == 101 ? 0 : 2);
	}
	int st = 0;
	waitpid(pid, &st, 0);
	printf("host_numa CPU load at the GPU VA: %s\n",
	       WIFSIGNALED(st) ? "faults (no CPU mapping)" : WEXITSTATUS(st) == 0 ? "works, value right" : "wrong value");
	d->cuStreamDestroy(s);
	d->cuMemUnmap(va, gran);
	d->cuMemRelease(h);
	d->cuMemAddressFree(va, gran);
}

static volatile int64_t cb_ns;
static void CUDA_CB host_cb(void *arg)
{
	(void)arg;
	cb_ns = cudrv_now_ns();
}

static void report(const char *what, int64_t *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_i64);
	printf("%-44s median %7.1f us  p99 %7.1f us  (n=%d)\n", what, v[n / 2] / 1000.0, v[n * 99 / 100] / 1000.0, n);
}

static void probe_latency(void)
{
	enum { N = 200 };
	int64_t hf[N], wv[N], rt[N];
	CUstream s;
	CUDRV_CHECK(d, d->cuStreamCreate(&s, CU_STREAM_NON_BLOCKING));
	uint64_t gen = 0;
	for (int i = 0; i < N; i++) {
		gen++;
		/* host func: stream blocked on [0], host releases it at t0 */
		CUDRV_CHECK(d, d->cuStreamWaitValue64(s, host_dptr, gen, CU_STREAM_WAIT_VALUE_GEQ));
		CUDRV_CHECK(d, d->cuLaunchHostFunc(s, host_cb, NULL));
		usleep(200);
		cb_ns = 0;
		int64_t t0 = cudrv_now_ns();
		__atomic_store_n((uint64_t *)&host_word[0], gen, __ATOMIC_RELEASE);
		CUDRV_CHECK(d, d->cuStreamSynchronize(s));
		hf[i] = cb_ns - t0;
		/* write value: the stream writes [1] once released; a spinning thread sees it */
		gen++;
		CUDRV_CHECK(d, d->cuStreamWaitValue64(s, host_dptr, gen, CU_STREAM_WAIT_VALUE_GEQ));
		CUDRV_CHECK(d, d->cuStreamWriteValue64(s, host_dptr + 8, gen, 0));
		usleep(200);
		t0 = cudrv_now_ns();
		__atomic_store_n((uint64_t *)&host_word[0], gen, __ATOMIC_RELEASE);
		while (__atomic_load_n((uint64_t *)&host_word[1], __ATOMIC_ACQUIRE) < gen)
			;
		int64_t t1 = cudrv_now_ns();
		rt[i] = t1 - t0;
		CUDRV_CHECK(d, d->cuStreamSynchronize(s));
	}
	/* host func alone (stream already past the wait): minus nothing */
	for (int i = 0; i < N; i++)
		wv[i] = rt[i] / 2;
	report("host write -> stream -> host (round trip)", rt, N);
	report("  half of it (one direction, estimate)", wv, N);
	report("host write -> stream -> cuLaunchHostFunc cb", hf, N);
	d->cuStreamDestroy(s);
}

int main(void)
{
	int rc = cudrv_open(d);
	if (rc)
		return rc;
	CUmemAllocationProp p = vram_prop();
	CUDRV_CHECK(d, d->cuMemGetAllocationGranularity(&gran, &p, CU_MEM_ALLOC_GRANULARITY_MINIMUM));
	size_t rec = 0;
	CUDRV_CHECK(d, d->cuMemGetAllocationGranularity(&rec, &p, CU_MEM_ALLOC_GRANULARITY_RECOMMENDED));
	printf("device %s, driver %d, granularity minimum %zu KiB recommended %zu KiB\n", d->name, d->version,
	       gran >> 10, rec >> 10);
	void *hw;
	CUDRV_CHECK(d, d->cuMemHostAlloc(&hw, 4096, CU_MEMHOSTALLOC_PORTABLE | CU_MEMHOSTALLOC_DEVICEMAP));
	CUDRV_CHECK(d, d->cuMemHostGetDevicePointer(&host_dptr, hw, 0));
	host_word = hw;
	memset(hw, 0, 4096);
	probe_blocked();
	probe_small_map();
	probe_access_cost();
	probe_host_numa();
	probe_latency();
	return bad ? 1 : 0;
}
