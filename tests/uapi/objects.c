/* SPDX-License-Identifier: MIT */
/*
 * Description: clients, device and region queries, BOs and vms: argument validation with the
 * exact errno (and nothing changed), placement, region accounting, CPU maps, handle lifetimes;
 * the environment knobs: each class of bad value fails the open, the largest job timeout works;
 * the errnos of running out of file descriptors.
 */
#include "lib/harness.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/resource.h>

unsigned long vmb_alloc_fail_after(unsigned long nth); /* src/core/alloc.h: test hook */

static void test_client_open(void **state)
{
	(void)state;
	struct vmb_client *c = NULL;
	struct vmb_client_opts o = {0};
	assert_int_equal(vmb_client_open("soft", NULL, NULL), -EINVAL);
	assert_int_equal(vmb_client_open("cuda9", NULL, &c), -ENODEV);
	assert_int_equal(vmb_client_open("", NULL, &c), -ENODEV);
	/* a name longer than any device's (it is copied in, bounded) */
	char longname[300];
	memset(longname, 's', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = 0;
	assert_int_equal(vmb_client_open(longname, NULL, &c), -ENODEV);
	memcpy(longname, "soft", 5);
	assert_int_equal(vmb_client_open(longname, NULL, &c), 0); /* the NUL ends it */
	assert_int_equal(vmb_client_close(c), 0);
	c = NULL;
	o.flags = 1u << 1; /* unknown (bit 0: VMB_CLIENT_OPEN_DISCRETE) */
	assert_int_equal(vmb_client_open("soft", &o, &c), -EINVAL);
	o = (struct vmb_client_opts){.reserved = {1}};
	assert_int_equal(vmb_client_open("soft", &o, &c), -EINVAL);
	o = (struct vmb_client_opts){.reserved = {0, 0, 1}};
	assert_int_equal(vmb_client_open("soft", &o, &c), -EINVAL);
	o = (struct vmb_client_opts){.min_page_size = 64 * KiB}; /* soft: 4 KiB or 2 MiB */
	assert_int_equal(vmb_client_open("soft", &o, &c), -EINVAL);
	o = (struct vmb_client_opts){.min_page_size = 4097};
	assert_int_equal(vmb_client_open("soft", &o, &c), -EINVAL);
	o = (struct vmb_client_opts){.vram_size = 3 * MiB}; /* not a multiple of 2 MiB */
	assert_int_equal(vmb_client_open("soft", &o, &c), -EINVAL);
	o = (struct vmb_client_opts){.system_size = 4097};
	assert_int_equal(vmb_client_open("soft", &o, &c), -EINVAL);
	o = (struct vmb_client_opts){.pt_pool_size = 4096}; /* too small for any vm */
	assert_int_equal(vmb_client_open("soft", &o, &c), -EINVAL);
	assert_null(c);
	assert_int_equal(vmb_client_close(NULL), -EINVAL);

	/* sizes from the environment */
	setenv("VMB_SOFT_VRAM", "6M", 1);
	setenv("VMB_SOFT_SYSTEM", "12K", 1);
	assert_int_equal(vmb_client_open(NULL, NULL, &c), 0);
	struct vmb_region_query q = {.region = VMB_REGION_VRAM};
	assert_int_equal(vmb_region_query(c, &q), 0);
	assert_int_equal(q.capacity, 6 * MiB);
	assert_int_equal(q.free, 6 * MiB);
	q = (struct vmb_region_query){.region = VMB_REGION_SYSTEM};
	assert_int_equal(vmb_region_query(c, &q), 0);
	assert_int_equal(q.capacity, 12 * KiB);
	assert_int_equal(vmb_client_close(c), 0);
	setenv("VMB_SOFT_VRAM", "lots", 1);
	assert_int_equal(vmb_client_open(NULL, NULL, &c), -EINVAL);
	setenv("VMB_SOFT_VRAM", "99999999999999999999G", 1);
	assert_int_equal(vmb_client_open(NULL, NULL, &c), -EINVAL);
	unsetenv("VMB_SOFT_VRAM");
	unsetenv("VMB_SOFT_SYSTEM");
}

static void test_queries(void **state)
{
	(void)state;
	struct vmb_client *c = open_soft(32 * MiB, 16 * MiB);
	struct vmb_device_query d = {0};
	assert_int_equal(vmb_device_query(c, &d), 0);
	assert_string_equal(d.name, "soft");
	assert_int_equal(d.va_bits, 48);
	assert_int_equal(d.num_regions, 2);
	assert_int_equal(d.page_sizes, VMB_PAGE_4K | VMB_PAGE_64K | VMB_PAGE_2M | VMB_PAGE_1G);
	assert_int_equal(d.num_engines, 3);
	assert_int_equal(d.abi_version, VMB_ABI_VERSION);
	assert_int_equal(d.abi_version >> 16, VMB_ABI_VERSION_MAJOR);
	assert_int_equal(d.min_page_size, VMB_PAGE_4K);
	uint64_t caps = VMB_CAP_ASYNC_BIND | VMB_CAP_LR_MODE | VMB_CAP_SCRATCH_PAGE | VMB_CAP_NULL_BIND |
			VMB_CAP_USERPTR | VMB_CAP_PREFETCH | VMB_CAP_USER_FENCE | VMB_CAP_TIMELINE |
			VMB_CAP_SYNCOBJ_FD | VMB_CAP_EXEC;
	assert_int_equal(d.capabilities & caps, caps);
	/* out fields are not read: garbage in them is no error */
	d = (struct vmb_device_query){.abi_version = 7, .min_page_size = 3, .capabilities = ~0ull};
	assert_int_equal(vmb_device_query(c, &d), 0);
	assert_int_equal(d.capabilities & caps, caps);
	assert_int_equal(d.min_page_size, VMB_PAGE_4K);
	struct vmb_engine eng[4] = {0};
	struct vmb_engines_query eq = {.engines = (uint64_t)(uintptr_t)eng, .num_engines = 4};
	assert_int_equal(vmb_engines_query(c, &eq), 0);
	assert_int_equal(eq.num_engines, 3);
	assert_int_equal(eng[0].engine_class, VMB_ENGINE_CLASS_COMPUTE);
	assert_int_equal(eng[1].engine_class, VMB_ENGINE_CLASS_COMPUTE);
	assert_int_equal(eng[1].engine_instance, 1);
	assert_int_equal(eng[2].engine_class, VMB_ENGINE_CLASS_COPY);
	eq = (struct vmb_engines_query){.num_engines = 1};
	assert_int_equal(vmb_engines_query(c, &eq), -EFAULT);
	eq = (struct vmb_engines_query){.pad = 1};
	assert_int_equal(vmb_engines_query(c, &eq), -EINVAL);
	eq = (struct vmb_engines_query){0};
	assert_int_equal(vmb_engines_query(c, &eq), 0); /* just the count */
	assert_int_equal(eq.num_engines, 3);
	d.reserved = 1;
	assert_int_equal(vmb_device_query(c, &d), -EINVAL);
	struct vmb_region_query q = {.region = 2};
	assert_int_equal(vmb_region_query(c, &q), -EINVAL);
	q = (struct vmb_region_query){.region = VMB_REGION_VRAM, .pad = 1};
	assert_int_equal(vmb_region_query(c, &q), -EINVAL);
	q = (struct vmb_region_query){.region = VMB_REGION_VRAM, .reserved = 1};
	assert_int_equal(vmb_region_query(c, &q), -EINVAL);
	q = (struct vmb_region_query){.region = VMB_REGION_VRAM};
	assert_int_equal(vmb_region_query(c, &q), 0);
	assert_int_equal(q.capacity, 32 * MiB);
	assert_int_equal(q.min_alignment, 4096);
	assert_int_equal(vmb_client_close(c), 0);
}

static uint64_t region_free(struct vmb_client *c, uint32_t r)
{
	struct vmb_region_query q = {.region = r};
	assert_int_equal(vmb_region_query(c, &q), 0);
	return q.free;
}

static void test_bo(void **state)
{
	(void)state;
	struct vmb_client *c = open_soft(8 * MiB, 8 * MiB);
	struct vmb_bo_create a;
	const struct {
		struct vmb_bo_create a;
		int err;
	} bad[] = {
		{{.size = 0, .placements = VMB_PLACE_VRAM}, -EINVAL},
		{{.size = 4095, .placements = VMB_PLACE_VRAM}, -EINVAL},
		{{.size = 4096 + 1, .placements = VMB_PLACE_VRAM}, -EINVAL},
		{{.size = UINT64_MAX & ~4095ull, .placements = VMB_PLACE_VRAM}, -ENOSPC},
		{{.size = 4096, .placements = 0}, -EINVAL},
		{{.size = 4096, .placements = 1u << 2}, -EINVAL},
		{{.size = 4096, .placements = VMB_PLACE_VRAM, .flags = 1}, -EINVAL},
		{{.size = 4096, .placements = VMB_PLACE_VRAM, .vm_id = 1}, -ENOENT}, /* no such vm */
		{{.size = 4096, .placements = VMB_PLACE_VRAM, .reserved = 1}, -EINVAL},
		{{.size = 8192, .placements = VMB_PLACE_VRAM, .chunk_size = 3 * 4096}, -EINVAL}, /* not 2^n */
		{{.size = 8192, .placements = VMB_PLACE_VRAM, .chunk_size = 16384}, -EINVAL}, /* > size */
		{{.size = 16 * MiB, .placements = VMB_PLACE_VRAM | VMB_PLACE_SYSTEM}, -ENOSPC},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		a = bad[i].a;
		assert_int_equal(vmb_bo_create(c, &a), bad[i].err);
		assert_int_equal(region_free(c, VMB_REGION_VRAM), 8 * MiB);
		assert_int_equal(region_free(c, VMB_REGION_SYSTEM), 8 * MiB);
	}
	/* VRAM first, SYSTEM when VRAM is full */
	uint32_t v = bo_new(c, 6 * MiB, VMB_PLACE_VRAM | VMB_PLACE_SYSTEM);
	uint32_t s = bo_new(c, 4 * MiB, VMB_PLACE_VRAM | VMB_PLACE_SYSTEM);
	struct vmb_bo_query q = {.handle = v};
	assert_int_equal(vmb_bo_query(c, &q), 0);
	assert_int_equal(q.region, VMB_REGION_VRAM);
	assert_int_equal(q.size, 6 * MiB);
	q.handle = s;
	assert_int_equal(vmb_bo_query(c, &q), 0);
	assert_int_equal(q.region, VMB_REGION_SYSTEM);
	assert_int_equal(region_free(c, VMB_REGION_VRAM), 2 * MiB);
	assert_int_equal(region_free(c, VMB_REGION_SYSTEM), 4 * MiB);
	/* past VRAM's room (not its capacity): created without backing, which its first bind
	 * gives it (tests/vm/evict.c); a SYSTEM BO past SYSTEM's room is still refused */
	a = (struct vmb_bo_create){.size = 4 * MiB, .placements = VMB_PLACE_VRAM};
	assert_int_equal(vmb_bo_create(c, &a), 0);
	assert_int_equal(region_free(c, VMB_REGION_VRAM), 2 * MiB);
	q = (struct vmb_bo_query){.handle = a.handle};
	assert_int_equal(vmb_bo_query(c, &q), 0);
	assert_int_equal(q.region, VMB_REGION_VRAM);
	struct vmb_bo_destroy dd = {.handle = a.handle};
	assert_int_equal(vmb_bo_destroy(c, &dd), 0);
	a = (struct vmb_bo_create){.size = 6 * MiB, .placements = VMB_PLACE_SYSTEM};
	assert_int_equal(vmb_bo_create(c, &a), -ENOSPC);
	q = (struct vmb_bo_query){.handle = 999};
	assert_int_equal(vmb_bo_query(c, &q), -ENOENT);
	q = (struct vmb_bo_query){.handle = v, .pad2 = 1};
	assert_int_equal(vmb_bo_query(c, &q), -EINVAL);

	/* CPU maps: counted, same pointer, contents start zeroed */
	uint8_t *p1 = bo_cpu(c, v), *p2 = bo_cpu(c, v);
	assert_ptr_equal(p1, p2);
	for (uint64_t i = 0; i < 6 * MiB; i += 4096)
		assert_int_equal(p1[i], 0);
	memset(p1, 0xee, 6 * MiB);
	struct vmb_bo_munmap u = {.handle = v, .ptr = (uint64_t)(uintptr_t)p1 + 4096};
	assert_int_equal(vmb_bo_munmap(c, &u), -EINVAL);
	u.ptr = (uint64_t)(uintptr_t)p1;
	assert_int_equal(vmb_bo_munmap(c, &u), 0);
	assert_int_equal(p2[6 * MiB - 1], 0xee); /* still mapped once */
	assert_int_equal(vmb_bo_munmap(c, &u), 0);
	assert_int_equal(vmb_bo_munmap(c, &u), -EINVAL);
	struct vmb_bo_mmap m = {.handle = v, .flags = 1};
	assert_int_equal(vmb_bo_mmap(c, &m), -EINVAL);
	m = (struct vmb_bo_mmap){.handle = 1234};
	assert_int_equal(vmb_bo_mmap(c, &m), -ENOENT);

	/* freed memory comes back zeroed to the next BO */
	struct vmb_bo_destroy d = {.handle = v};
	assert_int_equal(vmb_bo_destroy(c, &d), 0);
	assert_int_equal(vmb_bo_destroy(c, &d), -ENOENT);
	d = (struct vmb_bo_destroy){.handle = s, .pad = 1};
	assert_int_equal(vmb_bo_destroy(c, &d), -EINVAL);
	assert_int_equal(region_free(c, VMB_REGION_VRAM), 8 * MiB);
	uint32_t w = bo_new(c, 8 * MiB, VMB_PLACE_VRAM);
	uint8_t *pw = bo_cpu(c, w);
	for (uint64_t i = 0; i < 8 * MiB; i += 512)
		assert_int_equal(pw[i], 0);
	validate_client(c);
	assert_int_equal(vmb_client_close(c), 0); /* with live BOs and a live CPU map */
}

static int munmap_ptr(struct vmb_client *c, uint32_t handle, const void *p)
{
	struct vmb_bo_munmap u = {.handle = handle, .ptr = (uint64_t)(uintptr_t)p};
	return vmb_bo_munmap(c, &u);
}

/*
 * A CPU mapping outlives the BO's handle (as a DRM mmap outlives the GEM handle): after
 * vmb_bo_destroy the pointer still shows the BO's memory, which (and its place in the region)
 * stays until vmb_bo_munmap with handle 0 and the pointer; another BO never gets that address,
 * and the last GPU unmap does not take the pointer away.
 */
static void test_bo_cpu_map_outlives_handle(void **state)
{
	(void)state;
	struct vmb_client *c = open_soft(8 * MiB, 8 * MiB);
	uint32_t a = bo_new(c, 1 * MiB, VMB_PLACE_VRAM);
	uint8_t *pa = bo_cpu(c, a);
	memset(pa, 0xaa, 1 * MiB);
	struct vmb_bo_destroy d = {.handle = a};
	assert_int_equal(vmb_bo_destroy(c, &d), 0);
	assert_int_equal(region_free(c, VMB_REGION_VRAM), 7 * MiB); /* kept by the CPU map */
	struct vmb_bo_mmap m = {.handle = a};
	assert_int_equal(vmb_bo_mmap(c, &m), -ENOENT);

	/* the next BO: another address, its own zeroed memory */
	uint32_t b = bo_new(c, 1 * MiB, VMB_PLACE_VRAM);
	uint8_t *pb = bo_cpu(c, b);
	assert_ptr_not_equal(pa, pb);
	pa[5] = 0x55; /* a stale write through the old pointer stays in the old BO */
	for (uint64_t i = 0; i < 1 * MiB; i++)
		if (pb[i] != 0)
			fail_msg("new BO byte %llu is %#x", (unsigned long long)i, pb[i]);
	assert_int_equal(pa[0], 0xaa);
	assert_int_equal(pa[5], 0x55);
	assert_int_equal(pa[1 * MiB - 1], 0xaa);
	validate_client(c);

	/* munmap by pointer (handle 0): the memory goes back; a second time is -EINVAL */
	assert_int_equal(munmap_ptr(c, 0, pa + 4096), -EINVAL);
	assert_int_equal(munmap_ptr(c, a, pa), -ENOENT);
	assert_int_equal(munmap_ptr(c, 0, pa), 0);
	assert_int_equal(region_free(c, VMB_REGION_VRAM), 7 * MiB);
	assert_int_equal(munmap_ptr(c, 0, pa), -EINVAL);
	assert_int_equal(munmap_ptr(c, 0, NULL), -EINVAL);
	/* a live BO's mapping can be named by pointer too; with its handle, it must be its own */
	assert_int_equal(munmap_ptr(c, b, pa), -EINVAL);
	assert_int_equal(munmap_ptr(c, 0, pb), 0);
	assert_int_equal(munmap_ptr(c, b, pb), -EINVAL);

	/* GPU-mapped and CPU-mapped, handle destroyed: the last GPU unmap keeps the pointer */
	uint32_t vm = vm_new(c, 0);
	uint32_t g = bo_new(c, 2 * MiB, VMB_PLACE_VRAM);
	uint64_t *pg = bo_cpu(c, g);
	bind1(c, vm, op_map(g, 0, 1 * GiB, 2 * MiB, 0));
	pg[7] = 77;
	d.handle = g;
	assert_int_equal(vmb_bo_destroy(c, &d), 0);
	assert_int_equal(gpu_read64(c, vm, 1 * GiB + 56), 77);
	bind1(c, vm, op_unmap(1 * GiB, 2 * MiB));
	assert_int_equal(pg[7], 77);
	pg[8] = 88;
	assert_int_equal(region_free(c, VMB_REGION_VRAM), 5 * MiB);
	validate_client(c);
	assert_int_equal(munmap_ptr(c, 0, pg), 0);
	assert_int_equal(region_free(c, VMB_REGION_VRAM), 7 * MiB);

	/* counted maps: the memory goes with the last one; close frees what is still mapped */
	uint32_t h = bo_new(c, 4 * MiB, VMB_PLACE_VRAM | VMB_PLACE_SYSTEM);
	uint8_t *ph = bo_cpu(c, h);
	assert_ptr_equal(bo_cpu(c, h), ph);
	d.handle = h;
	assert_int_equal(vmb_bo_destroy(c, &d), 0);
	assert_int_equal(munmap_ptr(c, 0, ph), 0);
	ph[0] = 1;
	assert_int_equal(region_free(c, VMB_REGION_VRAM), 3 * MiB);
	validate_client(c);
	assert_int_equal(vmb_client_close(c), 0);
}

/*
 * Every host mapping a BO needs (its pages, each run of extents in the arena, the CPU map)
 * failing in turn: -ENOMEM and nothing taken, down to the last run of a BO spread over eight
 * holes of a fragmented SYSTEM region; then the call succeeds and the memory is right.
 */
static void test_bo_host_map_failures(void **state)
{
	(void)state;
	struct vmb_client *c = open_soft(2 * MiB, 64 * KiB);
	uint32_t fill[16];
	for (unsigned int i = 0; i < 16; i++)
		fill[i] = bo_new(c, 4 * KiB, VMB_PLACE_SYSTEM);
	for (unsigned int i = 0; i < 16; i += 2) {
		struct vmb_bo_destroy d = {.handle = fill[i]};
		assert_int_equal(vmb_bo_destroy(c, &d), 0);
	}
	struct vmb_bo_create a = {.size = 32 * KiB, .placements = VMB_PLACE_SYSTEM};
	unsigned long n;
	int err = -ENOMEM;
	for (n = 1; err == -ENOMEM && n < 1000; n++) {
		vmb_alloc_fail_after(n);
		err = vmb_bo_create(c, &a);
		vmb_alloc_fail_after(0);
		if (err) {
			assert_int_equal(err, -ENOMEM);
			assert_int_equal(region_free(c, VMB_REGION_SYSTEM), 32 * KiB);
			validate_client(c);
		}
	}
	assert_int_equal(err, 0);
	assert_true(n > 9); /* the BO's pages and its eight runs at least */
	assert_int_equal(region_free(c, VMB_REGION_SYSTEM), 0);
	struct vmb_bo_mmap m = {.handle = a.handle};
	vmb_alloc_fail_after(1);
	assert_int_equal(vmb_bo_mmap(c, &m), -ENOMEM);
	vmb_alloc_fail_after(0);
	struct vmb_bo_munmap u = {.ptr = 0};
	assert_int_equal(vmb_bo_munmap(c, &u), -EINVAL);
	uint64_t *p = bo_cpu(c, a.handle);
	for (unsigned int i = 0; i < 32 * KiB / 8; i++)
		assert_int_equal(p[i], 0);
	validate_client(c);
	assert_int_equal(vmb_client_close(c), 0);
}

/* A BO created private to @vm (vmb_bo_create's vm_id) in @c. */
static uint32_t bo_private(struct vmb_client *c, uint32_t vm)
{
	struct vmb_bo_create a = {.size = 65536, .placements = VMB_PLACE_SYSTEM, .vm_id = vm};
	assert_int_equal(vmb_bo_create(c, &a), 0);
	return a.handle;
}

/*
 * Private BOs (vmb_bo_create's vm_id, Xe's GEM_CREATE vm_id): mapped in their vm only (-EINVAL
 * in any other, nothing changed), also once their vm is destroyed, in a vm that took its id back
 * included; a vm that does not exist is -ENOENT; another client that imports one maps it in none
 * of its vms. UNMAP and the owner's own binds are as for any BO.
 */
static void test_bo_private(void **state)
{
	(void)state;
	/* an instance of its own: the export's descriptor holds it a little after its close (a
	 * watcher thread drops it), and the environment tests below need "soft" fresh */
	struct vmb_client *c = open_soft_at("soft:9", 8 * MiB, 8 * MiB);
	struct vmb_device_query d = device_query(c);
	assert_true(d.capabilities & VMB_CAP_BO_VM);
	assert_true(d.abi_version >= ((1u << 16) | 4u));
	uint32_t vm1 = vm_new(c, 0), vm2 = vm_new(c, 0);
	struct vmb_bo_create bad = {.size = 65536, .placements = VMB_PLACE_SYSTEM, .vm_id = 4242};
	assert_int_equal(vmb_bo_create(c, &bad), -ENOENT);
	bad.size = 4095; /* the field rules first */
	assert_int_equal(vmb_bo_create(c, &bad), -EINVAL);
	uint32_t bo = bo_private(c, vm1), shared = bo_new(c, 65536, VMB_PLACE_SYSTEM);
	assert_int_equal(__bind1(c, vm2, op_map(bo, 0, 0x100000, 65536, 0)), -EINVAL);
	assert_int_equal(vm_stats(c, vm2).num_mappings, 0);
	/* one op of several: the whole call refused, nothing changed */
	struct vmb_bind_op ops[2] = {op_map(shared, 0, 0x200000, 65536, 0), op_map(bo, 0, 0x100000, 65536, 0)};
	assert_int_equal(__bind_ops(c, vm2, ops, 2), -EINVAL);
	assert_int_equal(vm_stats(c, vm2).num_mappings, 0);
	assert_int_equal(__bind1(c, vm1, op_map(bo, 0, 0x100000, 65536, 0)), 0);
	assert_int_equal(__bind1(c, vm2, op_map(shared, 0, 0x100000, 65536, 0)), 0);
	struct vmb_bo_query q = {.handle = bo};
	assert_int_equal(vmb_bo_query(c, &q), 0);
	assert_int_equal(q.vm_mappings, 1);
	/* another client's import: private to vm1 still, which no vm of that client is */
	struct vmb_bo_export_fd ex = {.handle = bo};
	assert_int_equal(vmb_bo_export_fd(c, &ex), 0);
	struct vmb_client *c2 = open_soft_at("soft:9", 8 * MiB, 8 * MiB);
	struct vmb_bo_import_fd im = {.fd = ex.fd};
	assert_int_equal(vmb_bo_import_fd(c2, &im), 0);
	uint32_t vm3 = vm_new(c2, 0);
	assert_int_equal(__bind1(c2, vm3, op_map(im.handle, 0, 0x100000, 65536, 0)), -EINVAL);
	assert_int_equal(vmb_client_close(c2), 0);
	close(ex.fd);
	/* its vm destroyed: no vm maps it, not even one under the same id */
	vm_destroy1(c, vm1);
	assert_int_equal(__bind1(c, vm2, op_map(bo, 0, 0x300000, 65536, 0)), -EINVAL);
	uint32_t vms[512], n = 0;
	while (n < 512 && (n == 0 || vms[n - 1] != vm1))
		vms[n++] = vm_new(c, 0);
	assert_int_equal(vms[n - 1], vm1);
	assert_int_equal(__bind1(c, vm1, op_map(bo, 0, 0x100000, 65536, 0)), -EINVAL);
	/* nor does a BO created private to a vm id that is gone */
	for (uint32_t i = 0; i < n; i++)
		vm_destroy1(c, vms[i]);
	bad = (struct vmb_bo_create){.size = 65536, .placements = VMB_PLACE_SYSTEM, .vm_id = vm1};
	assert_int_equal(vmb_bo_create(c, &bad), -ENOENT);
	assert_int_equal(vmb_client_close(c), 0);
}

/* A bind of @bo at 1 MiB in @vm on @queue, @serial the queue's as the caller knows it. */
static int bind_on(struct vmb_client *c, uint32_t vm, uint32_t queue, uint64_t serial, uint32_t bo)
{
	struct vmb_bind_op op = op_map(bo, 0, 0x100000, 65536, 0);
	struct vmb_vm_bind b = {.vm_id = vm, .queue_id = queue, .queue_serial = serial, .num_binds = 1,
				.binds = (uint64_t)(uintptr_t)&op, .flags = VMB_VM_BIND_FLAG_ASYNC};
	return vmb_vm_bind(c, &b);
}

/*
 * Queues' serials (queue.h): a vm destroyed with its bind queue, its id taken by a new vm whose
 * queue gets the same number; a bind or destroy that passes the old queue's serial is -ENOENT
 * and leaves the new queue alone; the right serial, or none, works as before. The same for an
 * exec queue whose id a new exec queue took: vmb_exec and vmb_user_fence_wait.
 */
static void test_queue_serials(void **state)
{
	(void)state;
	struct vmb_client *c = open_soft(8 * MiB, 8 * MiB);
	assert_true(device_query(c).capabilities & VMB_CAP_QUEUE_SERIAL);
	uint32_t bo = bo_new(c, 65536, VMB_PLACE_SYSTEM), vm = vm_new(c, 0);
	struct vmb_bind_queue_create q1 = {.vm_id = vm, .serial = 77}; /* out: not read */
	assert_int_equal(vmb_bind_queue_create(c, &q1), 0);
	assert_int_not_equal(q1.serial, 0);
	assert_int_equal(bind_on(c, vm, q1.queue_id, q1.serial, bo), 0);
	assert_int_equal(bind_on(c, vm, q1.queue_id, q1.serial + 1, bo), -ENOENT);
	assert_int_equal(bind_on(c, vm, 0, q1.serial, bo), -ENOENT); /* the default queue has none */
	vm_destroy1(c, vm);
	uint32_t vms[512], n = 0;
	while (n < 512 && (n == 0 || vms[n - 1] != vm))
		vms[n++] = vm_new(c, 0);
	assert_int_equal(vms[n - 1], vm);
	struct vmb_bind_queue_create q2 = {.vm_id = vm};
	assert_int_equal(vmb_bind_queue_create(c, &q2), 0);
	assert_int_equal(q2.queue_id, q1.queue_id); /* the same numbers, another queue */
	assert_int_not_equal(q2.serial, q1.serial);
	assert_int_equal(bind_on(c, vm, q1.queue_id, q1.serial, bo), -ENOENT);
	assert_int_equal(vm_stats(c, vm).num_mappings, 0);
	struct vmb_bind_queue_destroy d = {.vm_id = vm, .queue_id = q1.queue_id, .serial = q1.serial};
	assert_int_equal(vmb_bind_queue_destroy(c, &d), -ENOENT);
	assert_int_equal(bind_on(c, vm, q2.queue_id, q2.serial, bo), 0);
	assert_int_equal(bind_on(c, vm, q2.queue_id, 0, bo), 0);
	d.serial = q2.serial;
	assert_int_equal(vmb_bind_queue_destroy(c, &d), 0);
	assert_int_equal(vmb_bind_queue_destroy(c, &d), -ENOENT);
	/* exec queues: a destroyed queue's id taken by a new one (the table's other free slots
	 * taken first); an exec or a wait with the old serial is -ENOENT, with the new one runs */
	struct vmb_exec_queue_create e1 = {.vm_id = vm};
	assert_int_equal(vmb_exec_queue_create(c, &e1), 0);
	assert_int_not_equal(e1.serial, 0);
	struct vmb_exec_queue_destroy ed = {.exec_queue_id = e1.exec_queue_id};
	assert_int_equal(vmb_exec_queue_destroy(c, &ed), 0);
	struct vmb_exec_queue_create e2 = {.vm_id = vm};
	uint32_t eqs[512], ne = 0;
	do {
		e2 = (struct vmb_exec_queue_create){.vm_id = vm};
		assert_int_equal(vmb_exec_queue_create(c, &e2), 0);
		eqs[ne++] = e2.exec_queue_id;
	} while (ne < 512 && e2.exec_queue_id != e1.exec_queue_id);
	assert_int_equal(e2.exec_queue_id, e1.exec_queue_id);
	assert_int_not_equal(e2.serial, e1.serial);
	uint64_t fence = 1;
	struct vmb_user_fence_wait w = {.addr = (uint64_t)(uintptr_t)&fence, .value = 1, .mask = ~0ull,
					.exec_queue_id = e1.exec_queue_id, .exec_queue_serial = e1.serial};
	assert_int_equal(vmb_user_fence_wait(c, &w), -ENOENT);
	w.exec_queue_serial = e2.serial;
	assert_int_equal(vmb_user_fence_wait(c, &w), 0);
	struct vmb_exec x = {.exec_queue_id = e1.exec_queue_id, .exec_queue_serial = e1.serial,
			     .address = 0x100000};
	assert_int_equal(vmb_exec(c, &x), -ENOENT);
	struct vmb_exec_queue_query qq = {.exec_queue_id = e2.exec_queue_id};
	assert_int_equal(vmb_exec_queue_query(c, &qq), 0);
	assert_int_equal(qq.flags & VMB_EXEC_QUEUE_BANNED, 0); /* nothing ran on it */
	for (uint32_t i = 0; i < ne; i++) {
		ed.exec_queue_id = eqs[i];
		assert_int_equal(vmb_exec_queue_destroy(c, &ed), 0);
	}
	assert_int_equal(vmb_client_close(c), 0);
}

static void test_vm(void **state)
{
	(void)state;
	struct vmb_client *c = open_soft(8 * MiB, 8 * MiB);
	const struct {
		struct vmb_vm_create a;
		int err;
	} bad[] = {
		{{.flags = 1u << 3}, -EINVAL}, /* the first unknown flag */
		{{.flags = 1u << 31}, -EINVAL},
		{{.reserved = 1}, -EINVAL},
		{{.va_size = 4095}, -EINVAL},
		{{.va_size = (1ull << 48) + 4096}, -EINVAL},
		{{.va_size = UINT64_MAX}, -EINVAL},
		{{.page_sizes = VMB_PAGE_2M}, -EINVAL},             /* no 4K */
		{{.page_sizes = VMB_PAGE_4K | (1ull << 13)}, -EINVAL}, /* 8K: not a device size */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct vmb_vm_create a = bad[i].a;
		assert_int_equal(vmb_vm_create(c, &a), bad[i].err);
	}
	struct vmb_vm_create a = {.flags = VMB_VM_CREATE_SCRATCH_PAGE | VMB_VM_CREATE_LR_MODE,
				  .va_size = 1ull << 48, .page_sizes = VMB_PAGE_4K};
	assert_int_equal(vmb_vm_create(c, &a), 0);
	/* a 4K-only vm maps a 2 MiB aligned BO with 4 KiB pages */
	uint32_t bo = bo_new(c, 2 * MiB, VMB_PLACE_VRAM);
	bind1(c, a.vm_id, op_map(bo, 0, 0, 2 * MiB, 0));
	struct vmb_vm_stats st = vm_stats(c, a.vm_id);
	assert_int_equal(st.leaves[0], 512);
	assert_int_equal(st.leaves[2], 0);
	assert_int_equal(st.pt_reserve_bytes, 0);
	struct vmb_vm_destroy d = {.vm_id = a.vm_id, .reserved = 1};
	assert_int_equal(vmb_vm_destroy(c, &d), -EINVAL);
	d = (struct vmb_vm_destroy){.vm_id = 0};
	assert_int_equal(vmb_vm_destroy(c, &d), -ENOENT);
	struct vmb_vm_stats s = {.vm_id = 77};
	assert_int_equal(vmb_vm_query_stats(c, &s), -ENOENT);
	s = (struct vmb_vm_stats){.vm_id = a.vm_id, .pad = 1};
	assert_int_equal(vmb_vm_query_stats(c, &s), -EINVAL);
	struct vmb_vm_query_mappings qm = {.vm_id = a.vm_id, .num_mappings = 4};
	assert_int_equal(vmb_vm_query_mappings(c, &qm), -EFAULT);
	qm = (struct vmb_vm_query_mappings){.vm_id = a.vm_id};
	assert_int_equal(vmb_vm_query_mappings(c, &qm), 0);
	assert_int_equal(qm.num_mappings, 1);
	struct vmb_vm_access acc = {.vm_id = a.vm_id, .addr = UINT64_MAX, .size = 2, .data = 1};
	assert_int_equal(vmb_vm_access(c, &acc), -EINVAL);
	acc = (struct vmb_vm_access){.vm_id = a.vm_id, .size = 8, .data = 0};
	assert_int_equal(vmb_vm_access(c, &acc), -EFAULT);
	acc = (struct vmb_vm_access){.vm_id = a.vm_id, .flags = 2};
	assert_int_equal(vmb_vm_access(c, &acc), -EINVAL);
	struct vmb_client_validate v = {.flags = 1};
	assert_int_equal(vmb_client_validate(c, &v), -EINVAL);
	validate_client(c);
	d = (struct vmb_vm_destroy){.vm_id = a.vm_id};
	assert_int_equal(vmb_vm_destroy(c, &d), 0);
	/* the BO's mapping went with the vm */
	struct vmb_bo_query q = {.handle = bo};
	assert_int_equal(vmb_bo_query(c, &q), 0);
	assert_int_equal(q.vm_mappings, 0);
	assert_int_equal(vmb_client_close(c), 0);
}

/* ---- environment knobs (docs/UAPI.md, "Environment") ---- */

/* A quick job on a fresh vm of @c: its out-fence's error and whether its queue was banned. */
static int quick_job(struct vmb_client *c, bool *banned)
{
	uint32_t vm = vm_new(c, 0), bo = bo_new(c, 64 * KiB, VMB_PLACE_SYSTEM);
	uint64_t *cmd = bo_cpu(c, bo);
	uint32_t n = 0;
	vmb_cmd_store64(cmd, &n, (1ull << 32) + 4096, 7);
	vmb_cmd_end(cmd, &n);
	assert_int_equal(__bind1(c, vm, op_map(bo, 0, 1ull << 32, 64 * KiB, 0)), 0);
	struct vmb_exec_queue_create qc = {.vm_id = vm, .engine = {.engine_class = VMB_ENGINE_CLASS_COMPUTE}};
	assert_int_equal(vmb_exec_queue_create(c, &qc), 0);
	uint32_t so = syncobj_new(c, 0);
	struct vmb_sync s = sync_out(so);
	struct vmb_exec e = {.exec_queue_id = qc.exec_queue_id, .address = 1ull << 32, .num_syncs = 1,
			     .syncs = (uint64_t)(uintptr_t)&s};
	assert_int_equal(vmb_exec(c, &e), 0);
	syncobj_wait1(c, so); /* a hang is a failure: 10 s */
	struct vmb_exec_queue_query qq = {.exec_queue_id = qc.exec_queue_id};
	assert_int_equal(vmb_exec_queue_query(c, &qq), 0);
	*banned = qq.flags & VMB_EXEC_QUEUE_BANNED;
	return qq.error;
}

/* Every knob, every class of bad value: the open fails with -EINVAL (and says why on stderr). */
static void test_env_bad_values(void **state)
{
	(void)state;
	static const struct {
		const char *name, *value;
	} bad[] = {
		{"VMB_SOFT_VRAM", "lots"},       {"VMB_SOFT_VRAM", "-2M"},      {"VMB_SOFT_VRAM", " 2M"},
		{"VMB_SOFT_VRAM", "2M "},        {"VMB_SOFT_VRAM", "0x200000"}, {"VMB_SOFT_VRAM", "2T"},
		{"VMB_SOFT_VRAM", "99999999999999999999G"}, {"VMB_SOFT_VRAM", "17179869184G"},
		{"VMB_SOFT_VRAM", "0"},          {"VMB_SOFT_VRAM", "3M"},       {"VMB_SOFT_VRAM", "128T"},
		{"VMB_SOFT_SYSTEM", "4097"},     {"VMB_SOFT_SYSTEM", "-4096"},  {"VMB_SOFT_SYSTEM", "0"},
		{"VMB_SOFT_PT_POOL", "4K"},      {"VMB_SOFT_PT_POOL", "1M1"},   {"VMB_SOFT_PT_POOL", "+1M"},
		{"VMB_JOB_TIMEOUT_MS", "10000000000000"}, {"VMB_JOB_TIMEOUT_MS", "4294967296"},
		{"VMB_JOB_TIMEOUT_MS", "18446744073709551616"}, {"VMB_JOB_TIMEOUT_MS", "-1"},
		{"VMB_JOB_TIMEOUT_MS", "0"},     {"VMB_JOB_TIMEOUT_MS", "5s"},  {"VMB_JOB_TIMEOUT_MS", "5K"},
		{"VMB_SCHED_WORKERS", "0"},      {"VMB_SCHED_WORKERS", "9"},    {"VMB_SCHED_WORKERS", "2x"},
		{"VMB_SCHED_WORKERS", "-1"},     {"VMB_SCHED_WORKERS", "4294967298"},
		{"VMB_SCHED_SPIN_US", "-5"},     {"VMB_SCHED_SPIN_US", "1000001"}, {"VMB_SCHED_SPIN_US", "fast"},
		{"VMB_SCHED_SPIN_US", "9223372036854775807"},
	};
	struct vmb_client *c = NULL;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		setenv(bad[i].name, bad[i].value, 1);
		int err = vmb_client_open("soft", NULL, &c);
		if (err == 0)
			vmb_client_close(c);
		if (err != -EINVAL)
			fail_msg("%s=\"%s\": vmb_client_open returned %d, not -EINVAL", bad[i].name, bad[i].value, err);
		unsetenv(bad[i].name);
	}
	/* unset or empty: the default; bounds inclusive */
	static const struct {
		const char *name, *value;
	} good[] = {
		{"VMB_SOFT_VRAM", ""},           {"VMB_SOFT_VRAM", "2M"},      {"VMB_SOFT_SYSTEM", "4k"},
		{"VMB_SOFT_PT_POOL", "65536"},   {"VMB_JOB_TIMEOUT_MS", "1"},  {"VMB_JOB_TIMEOUT_MS", "4294967295"},
		{"VMB_SCHED_WORKERS", "1"},      {"VMB_SCHED_WORKERS", "8"},   {"VMB_SCHED_SPIN_US", "0"},
		{"VMB_SCHED_SPIN_US", "1000000"},
	};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		setenv(good[i].name, good[i].value, 1);
		int err = vmb_client_open("soft", NULL, &c);
		if (err != 0)
			fail_msg("%s=\"%s\": vmb_client_open returned %d", good[i].name, good[i].value, err);
		assert_int_equal(vmb_client_close(c), 0);
		unsetenv(good[i].name);
	}
	/* a knob the options override is not read */
	setenv("VMB_JOB_TIMEOUT_MS", "junk", 1);
	struct vmb_client_opts o = {.job_timeout_ms = 1000};
	assert_int_equal(vmb_client_open("soft", &o, &c), 0);
	assert_int_equal(vmb_client_close(c), 0);
	unsetenv("VMB_JOB_TIMEOUT_MS");
}

/*
 * VMB_JOB_TIMEOUT_MS=10000000000000 overflowed ms * 10^6 (UBSan): the timeout came out
 * negative, every job timed out and banned its queue. It is out of range now (-EINVAL); the
 * largest accepted timeout, from the environment or the options, lets a quick job finish.
 */
static void test_env_huge_job_timeout(void **state)
{
	(void)state;
	struct vmb_client *c = NULL;
	bool banned;
	setenv("VMB_JOB_TIMEOUT_MS", "10000000000000", 1);
	int err = vmb_client_open("soft", NULL, &c);
	if (err == 0) {
		int job = quick_job(c, &banned);
		vmb_client_close(c);
		unsetenv("VMB_JOB_TIMEOUT_MS");
		fail_msg("VMB_JOB_TIMEOUT_MS=10000000000000 accepted; a quick job then ended with %d%s", job,
			 banned ? ", its queue banned" : "");
	}
	assert_int_equal(err, -EINVAL);
	setenv("VMB_JOB_TIMEOUT_MS", "4294967295", 1);
	assert_int_equal(vmb_client_open("soft", NULL, &c), 0);
	assert_int_equal(quick_job(c, &banned), 0);
	assert_false(banned);
	assert_int_equal(vmb_client_close(c), 0);
	unsetenv("VMB_JOB_TIMEOUT_MS");
	struct vmb_client_opts o = {.job_timeout_ms = UINT32_MAX};
	assert_int_equal(vmb_client_open("soft", &o, &c), 0);
	assert_int_equal(quick_job(c, &banned), 0);
	assert_false(banned);
	assert_int_equal(vmb_client_close(c), 0);
}

/*
 * Out of file descriptors: the calls that need one return -EMFILE, as their headers' Returns:
 * lists say (issue 11 found it undocumented), change nothing, and work again once there are.
 * vmb_client_open needs none (BO memory is anonymous shared memory, no region memfd).
 */
static void test_fd_exhaustion_errnos(void **state)
{
	(void)state;
	struct vmb_client *c = open_soft(8 * MiB, 8 * MiB), *c2 = NULL;
	uint32_t so = syncobj_new(c, VMB_SYNCOBJ_CREATE_SIGNALED);
	int efd = eventfd(0, EFD_CLOEXEC); /* never readable: an import must watch a duplicate */
	assert_true(efd >= 0);
	struct rlimit old, low;
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
	int lowest = open("/dev/null", O_RDONLY); /* every descriptor below it is open */
	assert_true(lowest >= 0);
	close(lowest);
	low = old;
	low.rlim_cur = (rlim_t)lowest;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);

	struct vmb_syncobj_fd ex = {.handle = so}, im = {.fd = efd};
	int e1 = vmb_syncobj_export_fd(c, &ex), e2 = vmb_syncobj_import_fd(c, &im);
	int e3 = vmb_client_open("soft:1", NULL, &c2); /* a new device: no descriptor either */
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
	assert_int_equal(e1, -EMFILE);
	assert_int_equal(e2, -EMFILE);
	assert_int_equal(e3, 0);
	assert_int_equal(vmb_client_close(c2), 0);
	validate_client(c);

	assert_int_equal(vmb_syncobj_export_fd(c, &ex), 0);
	close(ex.fd);
	assert_int_equal(vmb_syncobj_import_fd(c, &im), 0);
	close(efd);
	assert_int_equal(vmb_client_close(c), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_client_open), cmocka_unit_test(test_queries),
		cmocka_unit_test(test_bo), cmocka_unit_test(test_bo_cpu_map_outlives_handle),
		cmocka_unit_test(test_bo_host_map_failures), cmocka_unit_test(test_bo_private),
		cmocka_unit_test(test_queue_serials), cmocka_unit_test(test_vm),
		cmocka_unit_test(test_env_bad_values), cmocka_unit_test(test_env_huge_job_timeout),
		cmocka_unit_test(test_fd_exhaustion_errnos),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
