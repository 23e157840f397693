/* SPDX-License-Identifier: MIT */
/*
 * The Xe-uAPI shim's ioctls without IGT (issue 14 item 6): each field rule with the kernel's
 * errno, DEVICE_QUERY's size protocol, DRM's struct-size rule, the presented device, and the
 * translation of binds, execs and waits. Calls src/xe/ioctl.c directly, not through the preload.
 */
#include "lib/harness.h"

#include <drm/drm.h>
#include <drm/xe_drm.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include "xe/shim.h"

static struct xe_file *xf;

static int setup(void **state)
{
	(void)state;
	return xe_file_open(&xf);
}

static int teardown(void **state)
{
	(void)state;
	xe_file_close(xf);
	xf = NULL;
	return 0;
}

#define IOC(req, arg) xe_file_ioctl(xf, (req), (arg))

static uint32_t vm_create(uint32_t flags)
{
	struct drm_xe_vm_create c = {.flags = flags};
	assert_int_equal(IOC(DRM_IOCTL_XE_VM_CREATE, &c), 0);
	assert_int_not_equal(c.vm_id, 0);
	return c.vm_id;
}

static uint32_t gem_create(uint64_t size, uint32_t placement, uint32_t vm)
{
	struct drm_xe_gem_create c = {
		.size = size,
		.placement = placement,
		.vm_id = vm,
		.cpu_caching = placement & 2 ? DRM_XE_GEM_CPU_CACHING_WC : DRM_XE_GEM_CPU_CACHING_WB,
	};
	assert_int_equal(IOC(DRM_IOCTL_XE_GEM_CREATE, &c), 0);
	assert_int_not_equal(c.handle, 0);
	return c.handle;
}

static uint32_t queue_create(uint32_t vm, uint16_t class, uint16_t instance)
{
	struct drm_xe_engine_class_instance e = {.engine_class = class, .engine_instance = instance};
	struct drm_xe_exec_queue_create c = {
		.width = 1, .num_placements = 1, .vm_id = vm, .instances = (uintptr_t)&e,
	};
	assert_int_equal(IOC(DRM_IOCTL_XE_EXEC_QUEUE_CREATE, &c), 0);
	assert_int_not_equal(c.exec_queue_id, 0);
	return c.exec_queue_id;
}

static int xbind(uint32_t vm, uint32_t queue, uint32_t bo, uint64_t offset, uint64_t addr,
		 uint64_t range, uint32_t op, uint32_t flags, struct drm_xe_sync *sync)
{
	struct drm_xe_vm_bind b = {
		.vm_id = vm,
		.exec_queue_id = queue,
		.num_binds = 1,
		.bind = {.obj = bo, .obj_offset = offset, .addr = addr, .range = range, .op = op,
			 .flags = flags},
		.num_syncs = sync ? 1 : 0,
		.syncs = (uintptr_t)sync,
	};
	return IOC(DRM_IOCTL_XE_VM_BIND, &b);
}

static int wait_ufence(uint64_t *addr, uint64_t value, uint32_t queue, int64_t *timeout)
{
	struct drm_xe_wait_user_fence w = {
		.addr = (uintptr_t)addr,
		.op = DRM_XE_UFENCE_WAIT_OP_EQ,
		.value = value,
		.mask = ~0ull,
		.timeout = *timeout,
		.exec_queue_id = queue,
	};
	int r = IOC(DRM_IOCTL_XE_WAIT_USER_FENCE, &w);
	*timeout = w.timeout;
	return r;
}

/* ---- DRM core ---- */

static void test_version(void **state)
{
	(void)state;
	char name[8] = {0};
	struct drm_version v = {.name_len = sizeof(name), .name = name};
	assert_int_equal(IOC(DRM_IOCTL_VERSION, &v), 0);
	assert_string_equal(name, "xe");
	assert_int_equal(v.name_len, 2);
	/* length 0: only the length comes back */
	struct drm_version w = {0};
	assert_int_equal(IOC(DRM_IOCTL_VERSION, &w), 0);
	assert_int_equal(w.name_len, 2);
}

static void test_get_cap(void **state)
{
	(void)state;
	struct drm_get_cap c = {.capability = DRM_CAP_SYNCOBJ};
	assert_int_equal(IOC(DRM_IOCTL_GET_CAP, &c), 0);
	assert_int_equal(c.value, 1);
	c.capability = 0x7fff;
	assert_int_equal(IOC(DRM_IOCTL_GET_CAP, &c), -EINVAL);
}

static void test_unknown_ioctls(void **state)
{
	(void)state;
	struct drm_xe_observation_param o = {0};
	assert_int_equal(IOC(DRM_IOCTL_XE_OBSERVATION, &o), -EINVAL);
	int x = 0;
	assert_int_equal(IOC(_IOWR('x', 1, int), &x), -ENOTTY); /* not a DRM ioctl */
}

/* DRM's size rule: a caller's shorter struct is zero-extended, a longer one is read only as far
 * as the shim's struct goes. */
static void test_struct_sizes(void **state)
{
	(void)state;
	uint32_t vm = vm_create(0);
	/* VM_DESTROY of an older header: vm_id and pad only; the missing reserved words read 0 */
	uint32_t old[2] = {vm, 0};
	unsigned long short_destroy = _IOW(DRM_IOCTL_BASE, DRM_COMMAND_BASE + DRM_XE_VM_DESTROY, old);
	assert_int_equal(IOC(short_destroy, old), 0);
	/* VM_CREATE of a newer header: a longer struct, its tail never read nor written */
	struct {
		struct drm_xe_vm_create c;
		uint64_t tail;
	} big = {.tail = 0x5a5a5a5a5a5a5a5aull};
	unsigned long long_create = _IOWR(DRM_IOCTL_BASE, DRM_COMMAND_BASE + DRM_XE_VM_CREATE, big);
	assert_int_equal(IOC(long_create, &big), 0);
	assert_int_not_equal(big.c.vm_id, 0);
	assert_int_equal(big.tail, 0x5a5a5a5a5a5a5a5aull);
	/* a caller's struct that ends before an out field (extensions and flags: 12 bytes): vm_id
	 * is not written back */
	struct {
		uint32_t w[3];
		uint32_t marker;
	} tiny = {.marker = 0xdeadbeef};
	unsigned long tiny_create = _IOWR(DRM_IOCTL_BASE, DRM_COMMAND_BASE + DRM_XE_VM_CREATE, tiny.w);
	assert_int_equal(_IOC_SIZE(tiny_create), 12);
	assert_int_equal(IOC(tiny_create, &tiny), 0);
	assert_int_equal(tiny.marker, 0xdeadbeef);
}

/* ---- DEVICE_QUERY ---- */

static uint32_t query_size(uint32_t query)
{
	struct drm_xe_device_query q = {.query = query};
	assert_int_equal(IOC(DRM_IOCTL_XE_DEVICE_QUERY, &q), 0);
	return q.size;
}

static void test_query_size_protocol(void **state)
{
	(void)state;
	uint32_t size = query_size(DRM_XE_DEVICE_QUERY_CONFIG);
	assert_int_equal(size, sizeof(struct drm_xe_query_config) + 5 * sizeof(uint64_t));
	uint64_t buf[16];
	memset(buf, 0xff, sizeof(buf));
	struct drm_xe_device_query q = {.query = DRM_XE_DEVICE_QUERY_CONFIG, .size = size - 8,
					.data = (uintptr_t)buf};
	assert_int_equal(IOC(DRM_IOCTL_XE_DEVICE_QUERY, &q), -EINVAL); /* smaller */
	q.size = size + 8;
	assert_int_equal(IOC(DRM_IOCTL_XE_DEVICE_QUERY, &q), -EINVAL); /* larger: the kernel's != */
	assert_int_equal(buf[0], ~0ull); /* nothing written */
	q.size = size;
	assert_int_equal(IOC(DRM_IOCTL_XE_DEVICE_QUERY, &q), 0);
	assert_int_equal(q.size, size);
	q.data = 0;
	assert_int_equal(IOC(DRM_IOCTL_XE_DEVICE_QUERY, &q), -EFAULT);
	/* HWCONFIG: size 0, and 0 stays the answer; any other size is -EINVAL (query_hwconfig) */
	assert_int_equal(query_size(DRM_XE_DEVICE_QUERY_HWCONFIG), 0);
	struct drm_xe_device_query h = {.query = DRM_XE_DEVICE_QUERY_HWCONFIG, .size = 16,
					.data = (uintptr_t)buf};
	assert_int_equal(IOC(DRM_IOCTL_XE_DEVICE_QUERY, &h), -EINVAL);
}

static void test_query_field_rules(void **state)
{
	(void)state;
	struct drm_xe_device_query q = {.query = DRM_XE_DEVICE_QUERY_OA_UNITS};
	assert_int_equal(IOC(DRM_IOCTL_XE_DEVICE_QUERY, &q), -EINVAL);
	q.query = DRM_XE_DEVICE_QUERY_EU_STALL;
	assert_int_equal(IOC(DRM_IOCTL_XE_DEVICE_QUERY, &q), -EINVAL);
	q.query = 1000;
	assert_int_equal(IOC(DRM_IOCTL_XE_DEVICE_QUERY, &q), -EINVAL);
	struct drm_xe_device_query r = {.query = DRM_XE_DEVICE_QUERY_CONFIG, .reserved = {0, 1}};
	assert_int_equal(IOC(DRM_IOCTL_XE_DEVICE_QUERY, &r), -EINVAL);
	struct drm_xe_device_query e = {.query = DRM_XE_DEVICE_QUERY_CONFIG, .extensions = 8};
	assert_int_equal(IOC(DRM_IOCTL_XE_DEVICE_QUERY, &e), -EINVAL);
}

static void *query(uint32_t query)
{
	uint32_t size = query_size(query);
	void *p = calloc(1, size);
	assert_non_null(p);
	struct drm_xe_device_query q = {.query = query, .size = size, .data = (uintptr_t)p};
	assert_int_equal(IOC(DRM_IOCTL_XE_DEVICE_QUERY, &q), 0);
	return p;
}

static void test_presented_device(void **state)
{
	(void)state;
	struct drm_xe_query_config *c = query(DRM_XE_DEVICE_QUERY_CONFIG);
	assert_int_equal(c->num_params, 5);
	assert_int_equal(c->info[DRM_XE_QUERY_CONFIG_REV_AND_DEVICE_ID] & 0xffff, 0xE20B);
	assert_int_equal(c->info[DRM_XE_QUERY_CONFIG_FLAGS], DRM_XE_QUERY_CONFIG_FLAG_HAS_VRAM);
	assert_int_equal(c->info[DRM_XE_QUERY_CONFIG_MIN_ALIGNMENT], 4096);
	assert_int_equal(c->info[DRM_XE_QUERY_CONFIG_VA_BITS], 48);
	assert_int_equal(c->info[DRM_XE_QUERY_CONFIG_MAX_EXEC_QUEUE_PRIORITY], 2);
	free(c);
	struct drm_xe_query_gt_list *g = query(DRM_XE_DEVICE_QUERY_GT_LIST);
	assert_int_equal(g->num_gt, 1);
	assert_int_equal(g->gt_list[0].type, DRM_XE_QUERY_GT_TYPE_MAIN);
	assert_int_equal(g->gt_list[0].reference_clock, 19200000);
	assert_int_equal(g->gt_list[0].near_mem_regions, 2);
	assert_int_equal(g->gt_list[0].far_mem_regions, 1);
	assert_int_equal(g->gt_list[0].ip_ver_major, 20);
	assert_int_equal(g->gt_list[0].ip_ver_minor, 1);
	free(g);
	struct drm_xe_query_engines *e = query(DRM_XE_DEVICE_QUERY_ENGINES);
	assert_int_equal(e->num_engines, 3);
	assert_int_equal(e->engines[0].instance.engine_class, DRM_XE_ENGINE_CLASS_COMPUTE);
	assert_int_equal(e->engines[1].instance.engine_class, DRM_XE_ENGINE_CLASS_COMPUTE);
	assert_int_equal(e->engines[1].instance.engine_instance, 1);
	assert_int_equal(e->engines[2].instance.engine_class, DRM_XE_ENGINE_CLASS_COPY);
	free(e);
	struct drm_xe_query_mem_regions *m = query(DRM_XE_DEVICE_QUERY_MEM_REGIONS);
	assert_int_equal(m->num_mem_regions, 2);
	assert_int_equal(m->mem_regions[0].mem_class, DRM_XE_MEM_REGION_CLASS_SYSMEM);
	assert_int_equal(m->mem_regions[0].instance, 0);
	assert_int_equal(m->mem_regions[1].mem_class, DRM_XE_MEM_REGION_CLASS_VRAM);
	assert_int_equal(m->mem_regions[1].instance, 1);
	assert_int_equal(m->mem_regions[1].min_page_size, 4096);
	assert_true(m->mem_regions[1].total_size > 0);
	assert_int_equal(m->mem_regions[1].cpu_visible_size, m->mem_regions[1].total_size);
	uint64_t used = m->mem_regions[1].used;
	free(m);
	uint32_t bo = gem_create(1 << 20, 2, 0);
	m = query(DRM_XE_DEVICE_QUERY_MEM_REGIONS);
	assert_true(m->mem_regions[1].used >= used + (1 << 20));
	free(m);
	struct drm_gem_close cl = {.handle = bo};
	assert_int_equal(IOC(DRM_IOCTL_GEM_CLOSE, &cl), 0);
}

/* ---- vms ---- */

static void test_vm_create_rules(void **state)
{
	(void)state;
	struct drm_xe_vm_create c = {.flags = DRM_XE_VM_CREATE_FLAG_FAULT_MODE | DRM_XE_VM_CREATE_FLAG_LR_MODE};
	assert_int_equal(IOC(DRM_IOCTL_XE_VM_CREATE, &c), -EINVAL);
	c = (struct drm_xe_vm_create){.flags = 1u << 20};
	assert_int_equal(IOC(DRM_IOCTL_XE_VM_CREATE, &c), -EINVAL);
	c = (struct drm_xe_vm_create){.reserved = {1}};
	assert_int_equal(IOC(DRM_IOCTL_XE_VM_CREATE, &c), -EINVAL);
	c = (struct drm_xe_vm_create){.extensions = 8};
	assert_int_equal(IOC(DRM_IOCTL_XE_VM_CREATE, &c), -EINVAL);
	vm_create(DRM_XE_VM_CREATE_FLAG_SCRATCH_PAGE | DRM_XE_VM_CREATE_FLAG_LR_MODE);
}

static void test_vm_destroy_rules(void **state)
{
	(void)state;
	uint32_t vm = vm_create(0);
	struct drm_xe_vm_destroy d = {.vm_id = vm, .pad = 1};
	assert_int_equal(IOC(DRM_IOCTL_XE_VM_DESTROY, &d), -EINVAL);
	d = (struct drm_xe_vm_destroy){.vm_id = vm, .reserved = {0, 1}};
	assert_int_equal(IOC(DRM_IOCTL_XE_VM_DESTROY, &d), -EINVAL);
	d = (struct drm_xe_vm_destroy){.vm_id = vm + 1000};
	assert_int_equal(IOC(DRM_IOCTL_XE_VM_DESTROY, &d), -ENOENT);
	d = (struct drm_xe_vm_destroy){.vm_id = vm};
	assert_int_equal(IOC(DRM_IOCTL_XE_VM_DESTROY, &d), 0);
	/* an LR vm with an exec queue is busy (xe_vm_destroy_ioctl: preempt.num_exec_queues); once
	 * the queue is gone it goes. A vm that is not LR goes with its queues. */
	uint32_t lr = vm_create(DRM_XE_VM_CREATE_FLAG_LR_MODE);
	uint32_t q = queue_create(lr, DRM_XE_ENGINE_CLASS_COPY, 0);
	uint32_t bq = queue_create(lr, DRM_XE_ENGINE_CLASS_VM_BIND, 0); /* a bind queue does not count */
	(void)bq;
	d = (struct drm_xe_vm_destroy){.vm_id = lr};
	assert_int_equal(IOC(DRM_IOCTL_XE_VM_DESTROY, &d), -EBUSY);
	struct drm_xe_exec_queue_destroy qd = {.exec_queue_id = q};
	assert_int_equal(IOC(DRM_IOCTL_XE_EXEC_QUEUE_DESTROY, &qd), 0);
	assert_int_equal(IOC(DRM_IOCTL_XE_VM_DESTROY, &d), 0);
	uint32_t plain = vm_create(0);
	uint32_t pq = queue_create(plain, DRM_XE_ENGINE_CLASS_COPY, 0);
	d = (struct drm_xe_vm_destroy){.vm_id = plain};
	assert_int_equal(IOC(DRM_IOCTL_XE_VM_DESTROY, &d), 0);
	/* an exec on a queue whose vm is closed: -ECANCELED (xe_exec_ioctl) */
	struct drm_xe_exec x = {.exec_queue_id = pq, .num_batch_buffer = 1, .address = 0x100000};
	assert_int_equal(IOC(DRM_IOCTL_XE_EXEC, &x), -ECANCELED);
	/* a later vm under a reused id: not LR because an earlier one was, and not busy with the
	 * exec queue an earlier one left behind */
	uint32_t again = vm_create(DRM_XE_VM_CREATE_FLAG_LR_MODE);
	d = (struct drm_xe_vm_destroy){.vm_id = again};
	assert_int_equal(IOC(DRM_IOCTL_XE_VM_DESTROY, &d), 0);
	uint32_t third = vm_create(0);
	queue_create(third, DRM_XE_ENGINE_CLASS_COPY, 0);
	d = (struct drm_xe_vm_destroy){.vm_id = third};
	assert_int_equal(IOC(DRM_IOCTL_XE_VM_DESTROY, &d), 0);
}

/* ---- BOs ---- */

static int gem_create_err(struct drm_xe_gem_create c)
{
	return IOC(DRM_IOCTL_XE_GEM_CREATE, &c);
}

static void test_gem_create_rules(void **state)
{
	(void)state;
	const struct drm_xe_gem_create ok = {.size = 8192, .placement = 1,
					     .cpu_caching = DRM_XE_GEM_CPU_CACHING_WB};
	struct drm_xe_gem_create c = ok;
	c.cpu_caching = 0;
	assert_int_equal(gem_create_err(c), -EINVAL); /* caching required */
	c.cpu_caching = 3;
	assert_int_equal(gem_create_err(c), -EINVAL); /* above WC */
	c = ok;
	c.placement = 2; /* VRAM: WC only */
	assert_int_equal(gem_create_err(c), -EINVAL);
	c = ok;
	c.flags = DRM_XE_GEM_CREATE_FLAG_SCANOUT; /* not WB */
	assert_int_equal(gem_create_err(c), -EINVAL);
	c = ok;
	c.flags = DRM_XE_GEM_CREATE_FLAG_NEEDS_VISIBLE_VRAM; /* without a VRAM placement */
	assert_int_equal(gem_create_err(c), -EINVAL);
	c = ok;
	c.placement = 0;
	assert_int_equal(gem_create_err(c), -EINVAL);
	c.placement = 4; /* no region 2 */
	assert_int_equal(gem_create_err(c), -EINVAL);
	c = ok;
	c.size = 4097;
	assert_int_equal(gem_create_err(c), -EINVAL);
	c.size = 0;
	assert_int_equal(gem_create_err(c), -EINVAL);
	c = ok;
	c.handle = 5;
	assert_int_equal(gem_create_err(c), -EINVAL);
	c = ok;
	c.pad[1] = 1;
	assert_int_equal(gem_create_err(c), -EINVAL);
	c = ok;
	c.reserved[1] = 1;
	assert_int_equal(gem_create_err(c), -EINVAL);
	c = ok;
	c.extensions = 8;
	assert_int_equal(gem_create_err(c), -EINVAL);
	c = ok;
	c.flags = 1u << 30;
	assert_int_equal(gem_create_err(c), -EINVAL);
	c = ok;
	c.vm_id = 999;
	assert_int_equal(gem_create_err(c), -ENOENT);
	/* accepted */
	c = ok;
	c.placement = 3;
	c.cpu_caching = DRM_XE_GEM_CPU_CACHING_WC;
	c.flags = DRM_XE_GEM_CREATE_FLAG_DEFER_BACKING | DRM_XE_GEM_CREATE_FLAG_NEEDS_VISIBLE_VRAM |
		  DRM_XE_GEM_CREATE_FLAG_SCANOUT;
	assert_int_equal(gem_create_err(c), 0);
}

static void test_gem_close_rules(void **state)
{
	(void)state;
	uint32_t bo = gem_create(4096, 1, 0);
	struct drm_gem_close c = {.handle = bo, .pad = 1};
	assert_int_equal(IOC(DRM_IOCTL_GEM_CLOSE, &c), -EINVAL);
	c.pad = 0;
	assert_int_equal(IOC(DRM_IOCTL_GEM_CLOSE, &c), 0);
	assert_int_equal(IOC(DRM_IOCTL_GEM_CLOSE, &c), -EINVAL); /* unknown handle: DRM's -EINVAL */
}

static void test_mmap_offset(void **state)
{
	(void)state;
	uint32_t bo = gem_create(8192, 2, 0);
	struct drm_xe_gem_mmap_offset m = {.handle = bo};
	assert_int_equal(IOC(DRM_IOCTL_XE_GEM_MMAP_OFFSET, &m), 0);
	assert_int_equal(m.offset & 4095, 0);
	void *p;
	uint32_t h;
	uint64_t sz;
	assert_int_equal(xe_file_mmap(xf, m.offset, 8192 + 4096, &p, &h, &sz), -EINVAL); /* past the BO */
	assert_int_equal(xe_file_mmap(xf, m.offset + 4096, 4096, &p, &h, &sz), -EINVAL); /* no cookie */
	assert_int_equal(xe_file_mmap(xf, m.offset, 8192, &p, &h, &sz), 0);
	assert_int_equal(sz, 8192);
	assert_int_equal(h, bo);
	memset(p, 0xab, 8192);
	assert_int_equal(xe_file_munmap(xf, p), 0);
	/* another open of the device: its own BO under the same handle number, and this file's
	 * cookie is not its to map (drm_gem_mmap: -EACCES) */
	struct xe_file *other;
	assert_int_equal(xe_file_open(&other), 0);
	struct drm_xe_gem_create oc = {.size = 8192, .placement = 1,
				       .cpu_caching = DRM_XE_GEM_CPU_CACHING_WB};
	assert_int_equal(xe_file_ioctl(other, DRM_IOCTL_XE_GEM_CREATE, &oc), 0);
	assert_int_equal(oc.handle, bo);
	assert_int_equal(xe_file_mmap(other, m.offset, 8192, &p, &h, &sz), -EACCES);
	struct drm_xe_gem_mmap_offset om = {.handle = oc.handle};
	assert_int_equal(xe_file_ioctl(other, DRM_IOCTL_XE_GEM_MMAP_OFFSET, &om), 0);
	assert_int_not_equal(om.offset, m.offset);
	assert_int_equal(xe_file_mmap(xf, om.offset, 8192, &p, &h, &sz), -EACCES);
	xe_file_close(other);
	m = (struct drm_xe_gem_mmap_offset){.handle = bo, .flags = DRM_XE_MMAP_OFFSET_FLAG_PCI_BARRIER};
	assert_int_equal(IOC(DRM_IOCTL_XE_GEM_MMAP_OFFSET, &m), -EINVAL);
	m = (struct drm_xe_gem_mmap_offset){.handle = bo, .reserved = {1}};
	assert_int_equal(IOC(DRM_IOCTL_XE_GEM_MMAP_OFFSET, &m), -EINVAL);
	m = (struct drm_xe_gem_mmap_offset){.handle = bo + 100};
	assert_int_equal(IOC(DRM_IOCTL_XE_GEM_MMAP_OFFSET, &m), -ENOENT);
}

/*
 * A GEM_MMAP_OFFSET cookie names one BO object (drm_vma_offset_manager): once that BO is closed
 * and its handle taken by a new BO, mmap of the old cookie finds no object (drm_gem_mmap:
 * -EINVAL) and never maps the new BO, whose own cookie is another (s16-shimreuse).
 */
/* The BO @bo that took a closed BO's handle back is whole: the closed BO's cookie @old does not
 * map it, its own does; then the BOs made to take the handle (@bos, @n, @bo among them) go. */
static void reused_handle_check(uint64_t old, uint32_t bo, const uint32_t *bos, uint32_t n)
{
	void *p;
	uint32_t h;
	uint64_t sz;
	assert_int_equal(xe_file_mmap(xf, old, 8192, &p, &h, &sz), -EINVAL);
	struct drm_xe_gem_mmap_offset m = {.handle = bo};
	assert_int_equal(IOC(DRM_IOCTL_XE_GEM_MMAP_OFFSET, &m), 0);
	assert_int_not_equal(m.offset, old);
	assert_int_equal(xe_file_mmap(xf, m.offset, 8192, &p, &h, &sz), 0);
	assert_int_equal(h, bo);
	assert_int_equal(xe_file_munmap(xf, p), 0);
	for (uint32_t i = 0; i < n; i++) {
		struct drm_gem_close cl = {.handle = bos[i]};
		assert_int_equal(IOC(DRM_IOCTL_GEM_CLOSE, &cl), 0);
	}
}

/* BO @bo's GEM_MMAP_OFFSET cookie. */
static uint64_t bo_cookie(uint32_t bo)
{
	struct drm_xe_gem_mmap_offset m = {.handle = bo};
	assert_int_equal(IOC(DRM_IOCTL_XE_GEM_MMAP_OFFSET, &m), 0);
	return m.offset;
}

static void test_mmap_offset_reused_handle(void **state)
{
	(void)state;
	uint32_t bo = gem_create(8192, 1, 0);
	uint64_t old = bo_cookie(bo);
	assert_int_equal(bo_cookie(bo), old); /* the same BO: the same offset, as the kernel's */
	struct drm_gem_close cl = {.handle = bo};
	assert_int_equal(IOC(DRM_IOCTL_GEM_CLOSE, &cl), 0);
	void *p;
	uint32_t h;
	uint64_t sz;
	assert_int_equal(xe_file_mmap(xf, old, 8192, &p, &h, &sz), -EINVAL);
	/* new BOs until one takes the handle back (vmbind hands a freed handle out again once the
	 * table's other free slots are taken) */
	static uint32_t bos[4096];
	uint32_t n = 0, bo2 = 0;
	while (n < 4096 && bo2 != bo)
		bos[n++] = bo2 = gem_create(8192, 1, 0);
	assert_int_equal(bo2, bo);
	reused_handle_check(old, bo2, bos, n);
}

/*
 * Cookies' generations against wrap (s16-shimreuse's note: 20 bits, drawn from a process-wide
 * counter, went round after 2^20 BOs): a closed BO's cookie is refused (-EINVAL) also when the
 * BO that takes its handle back was created after the counter went round exactly once since
 * (xe_shim_test_gens_skip: as if that many BOs had been created), and once the generations are
 * spent a new BO gets no cookie (-ENOSPC) rather than one a stale cookie may hold; BOs that had
 * one keep it. Last in the list: the counter is the process's.
 */
static void test_mmap_offset_gens(void **state)
{
	(void)state;
	uint32_t bo = gem_create(8192, 1, 0);
	uint64_t old = bo_cookie(bo);
	struct drm_gem_close cl = {.handle = bo};
	assert_int_equal(IOC(DRM_IOCTL_GEM_CLOSE, &cl), 0);
	static uint32_t bos[4096];
	uint32_t n = 0, bo2 = 0;
	while (n < 4096 && bo2 != bo) {
		xe_shim_test_gens_skip((1u << 20) - 1); /* round once more (20 bits, 0 skipped) */
		bos[n++] = bo2 = gem_create(8192, 1, 0);
	}
	assert_int_equal(bo2, bo);
	void *p;
	uint32_t h;
	uint64_t sz;
	assert_int_equal(xe_file_mmap(xf, old, 8192, &p, &h, &sz), -EINVAL);
	/* spent: no new cookie; an earlier BO keeps its own */
	xe_shim_test_gens_skip(UINT64_MAX / 2);
	uint32_t late = gem_create(8192, 1, 0);
	struct drm_xe_gem_mmap_offset m = {.handle = late};
	assert_int_equal(IOC(DRM_IOCTL_XE_GEM_MMAP_OFFSET, &m), -ENOSPC);
	assert_int_equal(xe_file_mmap(xf, bo_cookie(bos[0]), 8192, &p, &h, &sz), 0);
	assert_int_equal(h, bos[0]);
	assert_int_equal(xe_file_munmap(xf, p), 0);
	cl.handle = late;
	assert_int_equal(IOC(DRM_IOCTL_GEM_CLOSE, &cl), 0);
	for (uint32_t i = 0; i < n; i++) {
		cl.handle = bos[i];
		assert_int_equal(IOC(DRM_IOCTL_GEM_CLOSE, &cl), 0);
	}
}

/*
 * The shim's calls of vmb_bo_create / vmb_bo_destroy (linked with --wrap, tests/meson.build):
 * a test's step runs after vmbind's call returns, before the shim records what it did.
 */
int __real_vmb_bo_create(struct vmb_client *c, struct vmb_bo_create *args);
int __real_vmb_bo_destroy(struct vmb_client *c, struct vmb_bo_destroy *args);
static void (*after_bo_create)(uint32_t handle);
static void (*after_bo_destroy)(uint32_t handle);

int __wrap_vmb_bo_create(struct vmb_client *c, struct vmb_bo_create *args);
int __wrap_vmb_bo_create(struct vmb_client *c, struct vmb_bo_create *args)
{
	int r = __real_vmb_bo_create(c, args);
	if (!r && after_bo_create)
		after_bo_create(args->handle);
	return r;
}

int __wrap_vmb_bo_destroy(struct vmb_client *c, struct vmb_bo_destroy *args);
int __wrap_vmb_bo_destroy(struct vmb_client *c, struct vmb_bo_destroy *args)
{
	uint32_t h = args->handle;
	int r = __real_vmb_bo_destroy(c, args);
	if (!r && after_bo_destroy)
		after_bo_destroy(h);
	return r;
}

/* test_mmap_close_window's state: the closed BO's handle and cookie, the new BO's mmap result */
static uint32_t cw_handle;
static uint64_t cw_cookie;
static int cw_mmap = 1;
static uint32_t cw_handle_seen;
static uint32_t cw_bos[4096], cw_n;

/* A GEM_CREATE that took the closed BO's handle, between vmbind's create and the shim's record
 * of it: the closed BO's cookie (another thread's mmap at that moment). */
static void cw_created(uint32_t handle)
{
	if (handle != cw_handle || cw_mmap != 1)
		return;
	void *p;
	uint32_t h = 0;
	uint64_t sz;
	cw_mmap = xe_file_mmap(xf, cw_cookie, 8192, &p, &h, &sz);
	cw_handle_seen = h;
	if (!cw_mmap)
		xe_file_munmap(xf, p);
}

/* The GEM_CLOSE's window, between vmbind's destroy and the shim's forgetting of the handle:
 * another thread's GEM_CREATEs until one takes the handle back. */
static void cw_destroyed(uint32_t handle)
{
	if (handle != cw_handle)
		return;
	after_bo_destroy = NULL;
	uint32_t bo2 = 0;
	while (cw_n < 4096 && bo2 != handle)
		cw_bos[cw_n++] = bo2 = gem_create(8192, 1, 0);
}

/*
 * The mmap cookie of a BO being closed (s16-attack4): GEM_CLOSE destroyed the BO, a GEM_CREATE
 * of another thread took its handle back, and an mmap of the old cookie comes while neither
 * call has recorded its change yet. The kernel's drm_gem_mmap finds no object at that offset
 * (-EINVAL): the cookie never maps the BO that took its handle. The steps run in the windows
 * through the --wrap'ed vmbind calls, in this thread, so the interleaving is exact.
 */
static void test_mmap_close_window(void **state)
{
	(void)state;
	uint32_t bo = gem_create(8192, 1, 0);
	struct drm_xe_gem_mmap_offset m = {.handle = bo};
	assert_int_equal(IOC(DRM_IOCTL_XE_GEM_MMAP_OFFSET, &m), 0);
	cw_handle = bo;
	cw_cookie = m.offset;
	cw_mmap = 1;
	cw_n = 0;
	after_bo_create = cw_created;
	after_bo_destroy = cw_destroyed;
	struct drm_gem_close cl = {.handle = bo};
	int r = IOC(DRM_IOCTL_GEM_CLOSE, &cl);
	after_bo_create = NULL;
	after_bo_destroy = NULL;
	assert_int_equal(r, 0);
	assert_int_equal(cw_bos[cw_n - 1], bo); /* the handle came back */
	if (cw_mmap == 0)
		print_message("the closed BO's cookie mapped BO %u\n", cw_handle_seen);
	assert_int_equal(cw_mmap, -EINVAL);
	reused_handle_check(cw_cookie, bo, cw_bos, cw_n);
}

/* ---- VM_BIND ---- */

static void test_bind_op_rules(void **state)
{
	(void)state;
	uint32_t vm = vm_create(0);
	uint32_t bo = gem_create(65536, 1, 0);
	const uint64_t a = 0x100000;
	assert_int_equal(xbind(vm, 0, bo, 0, a, 65536, DRM_XE_VM_BIND_OP_MAP,
			       DRM_XE_VM_BIND_FLAG_CPU_ADDR_MIRROR, NULL), -EINVAL);
	assert_int_equal(xbind(vm, 0, bo, 0, a, 65536, 5, 0, NULL), -EINVAL); /* unknown op */
	struct drm_xe_vm_bind b = {.vm_id = vm, .num_binds = 1,
				   .bind = {.obj = bo, .addr = a, .range = 65536, .pat_index = 28}};
	assert_int_equal(IOC(DRM_IOCTL_XE_VM_BIND, &b), -EINVAL); /* pat_index above 27 */
	b.bind.pat_index = 27;
	b.bind.prefetch_mem_region_instance = 1; /* only for PREFETCH */
	assert_int_equal(IOC(DRM_IOCTL_XE_VM_BIND, &b), -EINVAL);
	b.bind.prefetch_mem_region_instance = 0;
	b.pad = 1;
	assert_int_equal(IOC(DRM_IOCTL_XE_VM_BIND, &b), -EINVAL);
	b.pad = 0;
	b.bind.reserved[2] = 1;
	assert_int_equal(IOC(DRM_IOCTL_XE_VM_BIND, &b), -EINVAL);
	b.bind.reserved[2] = 0;
	b.bind.pad2 = 1;
	assert_int_equal(IOC(DRM_IOCTL_XE_VM_BIND, &b), -EINVAL);
	b.bind.pad2 = 0;
	b.bind.extensions = 8;
	assert_int_equal(IOC(DRM_IOCTL_XE_VM_BIND, &b), -EINVAL);
	/* IMMEDIATE and DUMPABLE accepted; with zero syncs the bind is asynchronous */
	assert_int_equal(xbind(vm, 0, bo, 0, a, 65536, DRM_XE_VM_BIND_OP_MAP,
			       DRM_XE_VM_BIND_FLAG_IMMEDIATE | DRM_XE_VM_BIND_FLAG_DUMPABLE, NULL), 0);
	/* NULL binds: no object */
	assert_int_equal(xbind(vm, 0, 0, 0, 0x400000, 65536, DRM_XE_VM_BIND_OP_MAP,
			       DRM_XE_VM_BIND_FLAG_NULL, NULL), 0);
	/* UNMAP_ALL: addr and range must be 0 (xe_vm.c, vm_bind_ioctl_check_args) */
	assert_int_equal(xbind(vm, 0, bo, 0, 0x1234000, 0, DRM_XE_VM_BIND_OP_UNMAP_ALL, 0, NULL), -EINVAL);
	assert_int_equal(xbind(vm, 0, bo, 0, 0, 0x5000, DRM_XE_VM_BIND_OP_UNMAP_ALL, 0, NULL), -EINVAL);
	assert_int_equal(xbind(vm, 0, bo, 0, 0, 0, DRM_XE_VM_BIND_OP_UNMAP_ALL, 0, NULL), 0);
}

/* The kernel's VM_BIND rules outside the op's own fields (xe_vm.c: xe_vm_bind_ioctl and
 * vm_bind_ioctl_check_args; xe_sync.c: xe_sync_entry_parse). */
static void test_bind_kernel_rules(void **state)
{
	(void)state;
	uint32_t vm = vm_create(0);
	uint32_t bo = gem_create(65536, 1, 0);
	/* an unknown vm is -EINVAL (xe_vm_lookup fails), before the queue is looked up */
	assert_int_equal(xbind(4242, 0, bo, 0, 0x100000, 65536, DRM_XE_VM_BIND_OP_MAP, 0, NULL), -EINVAL);
	assert_int_equal(xbind(4242, 4242, bo, 0, 0x100000, 65536, DRM_XE_VM_BIND_OP_MAP, 0, NULL), -EINVAL);
	/* CHECK_PXP is a supported flag: a no-op on a BO that is not protected (none is here) */
	assert_int_equal(xbind(vm, 0, bo, 0, 0x100000, 65536, DRM_XE_VM_BIND_OP_MAP,
			       DRM_XE_VM_BIND_FLAG_CHECK_PXP, NULL), 0);
	/* num_binds 0: nothing to do, 0 (the kernel's -ENODATA, turned into signalling the syncs) */
	struct drm_xe_vm_bind b = {.vm_id = vm};
	assert_int_equal(IOC(DRM_IOCTL_XE_VM_BIND, &b), 0);
	b.vm_id = 4242;
	assert_int_equal(IOC(DRM_IOCTL_XE_VM_BIND, &b), -EINVAL);
	b.vm_id = vm;
	/* ... and a user fence is refused there (SYNC_PARSE_FLAG_DISALLOW_USER_FENCE) */
	uint64_t fence[2] = {0, 0};
	struct drm_xe_sync uf[2] = {
		{.type = DRM_XE_SYNC_TYPE_USER_FENCE, .flags = DRM_XE_SYNC_FLAG_SIGNAL,
		 .addr = (uintptr_t)&fence[0], .timeline_value = 1},
		{.type = DRM_XE_SYNC_TYPE_USER_FENCE, .flags = DRM_XE_SYNC_FLAG_SIGNAL,
		 .addr = (uintptr_t)&fence[1], .timeline_value = 1},
	};
	b.num_syncs = 1;
	b.syncs = (uintptr_t)uf;
	assert_int_equal(IOC(DRM_IOCTL_XE_VM_BIND, &b), -EOPNOTSUPP);
	/* ... while a syncobj there is signalled after the queue's earlier binds */
	struct drm_syncobj_create sc = {0};
	assert_int_equal(IOC(DRM_IOCTL_SYNCOBJ_CREATE, &sc), 0);
	struct drm_xe_sync so = {.type = DRM_XE_SYNC_TYPE_SYNCOBJ, .flags = DRM_XE_SYNC_FLAG_SIGNAL,
				 .handle = sc.handle};
	b.syncs = (uintptr_t)&so;
	assert_int_equal(IOC(DRM_IOCTL_XE_VM_BIND, &b), 0);
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	struct drm_syncobj_wait w = {.handles = (uintptr_t)&sc.handle, .count_handles = 1,
				     .timeout_nsec = (ts.tv_sec + 10) * 1000000000ll};
	assert_int_equal(IOC(DRM_IOCTL_SYNCOBJ_WAIT, &w), 0);
	/* more than one user fence: -EINVAL, in a bind and in an exec */
	struct drm_xe_vm_bind two = {.vm_id = vm, .num_binds = 1,
				     .bind = {.obj = bo, .addr = 0x200000, .range = 65536},
				     .num_syncs = 2, .syncs = (uintptr_t)uf};
	assert_int_equal(IOC(DRM_IOCTL_XE_VM_BIND, &two), -EINVAL);
	uint32_t q = queue_create(vm, DRM_XE_ENGINE_CLASS_COPY, 0);
	struct drm_xe_exec x = {.exec_queue_id = q, .num_batch_buffer = 1, .address = 0x100000,
				.num_syncs = 2, .syncs = (uintptr_t)uf};
	assert_int_equal(IOC(DRM_IOCTL_XE_EXEC, &x), -EINVAL);
	/* a sync's extensions field is not read by the kernel */
	so.extensions = 8;
	assert_int_equal(xbind(vm, 0, bo, 0, 0x300000, 65536, DRM_XE_VM_BIND_OP_MAP, 0, &so), 0);
	/* the time the bind takes is not what this test checks: fence[] must outlive the binds */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	w.timeout_nsec = (ts.tv_sec + 10) * 1000000000ll;
	assert_int_equal(IOC(DRM_IOCTL_SYNCOBJ_WAIT, &w), 0);
}

static void test_bind_private_bo(void **state)
{
	(void)state;
	uint32_t vm1 = vm_create(0), vm2 = vm_create(0);
	uint32_t bo = gem_create(65536, 1, vm1);
	assert_int_equal(xbind(vm2, 0, bo, 0, 0x100000, 65536, DRM_XE_VM_BIND_OP_MAP, 0, NULL), -EINVAL);
	assert_int_equal(xbind(vm1, 0, bo, 0, 0x100000, 65536, DRM_XE_VM_BIND_OP_MAP, 0, NULL), 0);
	/* GEM_CLOSE forgets the owner: a later BO under a reused handle is nobody's */
	struct drm_gem_close cl = {.handle = bo};
	assert_int_equal(IOC(DRM_IOCTL_GEM_CLOSE, &cl), 0);
	uint32_t bo2 = gem_create(65536, 1, 0);
	assert_int_equal(xbind(vm2, 0, bo2, 0, 0x200000, 65536, DRM_XE_VM_BIND_OP_MAP, 0, NULL), 0);
}

/* New vms until one gets id @id (a destroyed vm's: vmbind hands a freed handle out again once
 * the table's other free slots are taken), in @vms (room @max); how many. */
static uint32_t vms_until_id(uint32_t id, uint32_t *vms, uint32_t max)
{
	uint32_t n = 0;
	while (n < max && (n == 0 || vms[n - 1] != id))
		vms[n++] = vm_create(0);
	assert_int_equal(vms[n - 1], id);
	return n;
}

/* Destroys @n vms of @vms and closes BO @bo. */
static void vms_destroy(const uint32_t *vms, uint32_t n, uint32_t bo)
{
	for (uint32_t i = 0; i < n; i++) {
		struct drm_xe_vm_destroy d = {.vm_id = vms[i]};
		assert_int_equal(IOC(DRM_IOCTL_XE_VM_DESTROY, &d), 0);
	}
	struct drm_gem_close cl = {.handle = bo};
	assert_int_equal(IOC(DRM_IOCTL_GEM_CLOSE, &cl), 0);
}

/*
 * A private BO outlives its vm (the kernel's BO holds it): destroyed, the vm's id may come back
 * for a new vm (vmbind reuses a handle once the table's other free slots are taken), which is
 * another vm: binding the BO into it is -EINVAL, as into any other vm (s16-attack3).
 */
static void test_bind_private_bo_vm_reused(void **state)
{
	(void)state;
	uint32_t vm1 = vm_create(0);
	uint32_t bo = gem_create(65536, 1, vm1);
	struct drm_xe_vm_destroy d = {.vm_id = vm1};
	assert_int_equal(IOC(DRM_IOCTL_XE_VM_DESTROY, &d), 0);
	uint32_t vms[4096], n = vms_until_id(vm1, vms, 4096), again = vm1; /* the id came back */
	assert_int_equal(xbind(again, 0, bo, 0, 0x100000, 65536, DRM_XE_VM_BIND_OP_MAP, 0, NULL), -EINVAL);
	if (n > 1) /* another vm: -EINVAL too */
		assert_int_equal(xbind(vms[0], 0, bo, 0, 0x100000, 65536, DRM_XE_VM_BIND_OP_MAP, 0, NULL), -EINVAL);
	vms_destroy(vms, n, bo);
}

/*
 * A bind queue of a destroyed vm whose id a new vm took (s16-attack3): it is another vm's bind
 * queue for the new vm (docs/XE.md, XE_VM_BIND: -EINVAL), whose own bind queue (vmbind numbers
 * each vm's queues from 1: the same number) it must not reach; destroying it (0) leaves the new
 * vm's queue working.
 */
static void test_bind_queue_of_reused_vm_id(void **state)
{
	(void)state;
	uint32_t vm1 = vm_create(0);
	uint32_t bq1 = queue_create(vm1, DRM_XE_ENGINE_CLASS_VM_BIND, 0);
	struct drm_xe_vm_destroy d = {.vm_id = vm1};
	assert_int_equal(IOC(DRM_IOCTL_XE_VM_DESTROY, &d), 0);
	uint32_t vms[4096], n = vms_until_id(vm1, vms, 4096), again = vm1;
	uint32_t bq2 = queue_create(again, DRM_XE_ENGINE_CLASS_VM_BIND, 0);
	uint32_t bo = gem_create(65536, 1, 0);
	assert_int_equal(xbind(again, bq1, bo, 0, 0x100000, 65536, DRM_XE_VM_BIND_OP_MAP, 0, NULL), -EINVAL);
	struct drm_xe_exec_queue_destroy qd = {.exec_queue_id = bq1};
	assert_int_equal(IOC(DRM_IOCTL_XE_EXEC_QUEUE_DESTROY, &qd), 0);
	assert_int_equal(xbind(again, bq2, bo, 0, 0x100000, 65536, DRM_XE_VM_BIND_OP_MAP, 0, NULL), 0);
	qd.exec_queue_id = bq2;
	assert_int_equal(IOC(DRM_IOCTL_XE_EXEC_QUEUE_DESTROY, &qd), 0);
	vms_destroy(vms, n, bo);
}

/* Two threads: one ioctl each, started together. */
struct race {
	pthread_barrier_t go;
	unsigned long req;
	void *arg;
	int r;
};

static void *race_thread(void *p)
{
	struct race *x = p;
	pthread_barrier_wait(&x->go);
	x->r = IOC(x->req, x->arg);
	return NULL;
}

/* Runs @req(@arg) on a second thread while this one runs @req2(@arg2), @spin loop turns after
 * both start; the second thread's result into *@r1, this one's returned. */
static int race2(unsigned long req, void *arg, int *r1, unsigned long req2, void *arg2,
		 unsigned spin)
{
	struct race x = {.req = req, .arg = arg};
	pthread_t t;
	pthread_barrier_init(&x.go, NULL, 2);
	assert_int_equal(pthread_create(&t, NULL, race_thread, &x), 0);
	pthread_barrier_wait(&x.go);
	for (volatile unsigned i = 0; i < spin; i++)
		;
	int r = IOC(req2, arg2);
	assert_int_equal(pthread_join(t, NULL), 0);
	pthread_barrier_destroy(&x.go);
	*r1 = x.r;
	return r;
}

/*
 * EXEC_QUEUE_DESTROY racing VM_DESTROY of the queue's vm, and two EXEC_QUEUE_DESTROYs of one id
 * (s16-shimreuse): the id is gone after its destroy, whatever ran beside it (the kernel's
 * xa_erase: a second destroy is -ENOENT), and of two destroys exactly one is 0.
 */
static void test_queue_destroy_races(void **state)
{
	(void)state;
	for (int i = 0; i < 400; i++) {
		uint32_t vm = vm_create(0);
		uint32_t eq = queue_create(vm, i & 1 ? DRM_XE_ENGINE_CLASS_COPY : DRM_XE_ENGINE_CLASS_VM_BIND, 0);
		struct drm_xe_exec_queue_destroy qd = {.exec_queue_id = eq};
		struct drm_xe_vm_destroy vd = {.vm_id = vm};
		int r1, r2 = race2(DRM_IOCTL_XE_EXEC_QUEUE_DESTROY, &qd, &r1, DRM_IOCTL_XE_VM_DESTROY, &vd, 0);
		assert_int_equal(r1, 0);
		assert_int_equal(r2, 0);
		assert_int_equal(IOC(DRM_IOCTL_XE_EXEC_QUEUE_DESTROY, &qd), -ENOENT);
	}
	uint32_t vm = vm_create(0);
	for (int i = 0; i < 400; i++) {
		uint32_t eq = queue_create(vm, i & 1 ? DRM_XE_ENGINE_CLASS_COPY : DRM_XE_ENGINE_CLASS_VM_BIND, 0);
		struct drm_xe_exec_queue_destroy qd = {.exec_queue_id = eq};
		int r1, r2 = race2(DRM_IOCTL_XE_EXEC_QUEUE_DESTROY, &qd, &r1,
				   DRM_IOCTL_XE_EXEC_QUEUE_DESTROY, &qd, 0);
		assert_true((r1 == 0 && r2 == -ENOENT) || (r1 == -ENOENT && r2 == 0));
	}
	struct drm_xe_vm_destroy vd = {.vm_id = vm};
	assert_int_equal(IOC(DRM_IOCTL_XE_VM_DESTROY, &vd), 0);
}

/*
 * GEM_CREATE of a BO private to a vm racing VM_DESTROY of that vm (s16-shimreuse): a BO made
 * as its vm went is that vm's, which no later vm is, even one that takes the id back (binding
 * it there: -EINVAL).
 */
static void test_private_bo_vm_destroy_race(void **state)
{
	(void)state;
	int both = 0;
	for (int i = 0; i < 4000 && both < 16; i++) {
		uint32_t vm = vm_create(0);
		struct drm_xe_gem_create c = {.size = 64ull << 20, .placement = 1, .vm_id = vm,
					      .cpu_caching = DRM_XE_GEM_CPU_CACHING_WB};
		struct drm_xe_vm_destroy vd = {.vm_id = vm};
		int rc, rd = race2(DRM_IOCTL_XE_GEM_CREATE, &c, &rc, DRM_IOCTL_XE_VM_DESTROY, &vd,
				   (unsigned)(i % 64) * 200);
		assert_int_equal(rd, 0);
		assert_true(rc == 0 || rc == -ENOENT);
		if (rc)
			continue;
		both++;
		uint32_t vms[4096], n = vms_until_id(vm, vms, 4096);
		assert_int_equal(xbind(vm, 0, c.handle, 0, 0x100000, 65536, DRM_XE_VM_BIND_OP_MAP, 0, NULL),
				 -EINVAL);
		vms_destroy(vms, n, c.handle);
	}
}

/* The shim's call of vmbind's @fn, --wrap'ed (tests/meson.build): the test's step in @hook (run
 * once, then cleared) runs before the real call. */
#define WRAP_BEFORE(fn, type, hook)                                                              \
	int __real_##fn(struct vmb_client *c, type *args);                                       \
	static void (*hook)(void);                                                               \
	int __wrap_##fn(struct vmb_client *c, type *args);                                       \
	int __wrap_##fn(struct vmb_client *c, type *args)                                        \
	{                                                                                        \
		void (*h)(void) = hook;                                                          \
		hook = NULL;                                                                     \
		if (h)                                                                           \
			h();                                                                     \
		return __real_##fn(c, args);                                                     \
	}

WRAP_BEFORE(vmb_bind_queue_destroy, struct vmb_bind_queue_destroy, before_bq_destroy)

/* A step run in a call's window on another thread (which the shim's locks may hold back):
 * started, then given up to @ms milliseconds to finish; the test joins win_thread. */
static pthread_t win_thread;
static atomic_bool win_done;
static void (*win_fn)(void);

static void *win_run(void *arg)
{
	(void)arg;
	win_fn();
	atomic_store(&win_done, true);
	return NULL;
}

static void window_run(void (*fn)(void), int ms)
{
	win_fn = fn;
	atomic_store(&win_done, false);
	assert_int_equal(pthread_create(&win_thread, NULL, win_run, NULL), 0);
	for (int i = 0; i < ms && !atomic_load(&win_done); i++)
		usleep(1000);
}

static uint32_t bw_vm, bw_vms[4096], bw_n, bw_bq2;

/* Another thread's VM_DESTROY of the queue's vm, VM_CREATEs until one takes its id back and a
 * bind queue of that new vm (it takes the old queue's number in vmbind's new vm). */
static void bw_body(void)
{
	struct drm_xe_vm_destroy d = {.vm_id = bw_vm};
	if (IOC(DRM_IOCTL_XE_VM_DESTROY, &d) == 0) {
		bw_n = vms_until_id(bw_vm, bw_vms, 4096);
		bw_bq2 = queue_create(bw_vm, DRM_XE_ENGINE_CLASS_VM_BIND, 0);
	}
}

/* In EXEC_QUEUE_DESTROY's window (its Xe id taken, vmbind's queue not yet destroyed): the other
 * thread gets up to 2 s to do all of it. */
static void bw_step(void)
{
	window_run(bw_body, 2000);
}

/*
 * EXEC_QUEUE_DESTROY of a bind queue while another thread destroys its vm, creates vms until one
 * takes the id back and a bind queue on it (s16-attack4): the destroy reaches the old queue (gone
 * with its vm), never the new vm's (vmbind numbers a new vm's queues from 1 again). The other
 * thread runs in the destroy's window between its Xe id's removal and vmbind's destroy (the
 * shim's call of vmb_bind_queue_destroy --wrap'ed, tests/meson.build); the new queue binds.
 */
static void test_bind_queue_destroy_window(void **state)
{
	(void)state;
	bw_vm = vm_create(0);
	bw_n = bw_bq2 = 0;
	uint32_t bq1 = queue_create(bw_vm, DRM_XE_ENGINE_CLASS_VM_BIND, 0);
	before_bq_destroy = bw_step;
	struct drm_xe_exec_queue_destroy qd = {.exec_queue_id = bq1};
	assert_int_equal(IOC(DRM_IOCTL_XE_EXEC_QUEUE_DESTROY, &qd), 0);
	before_bq_destroy = NULL;
	pthread_join(win_thread, NULL);
	assert_int_not_equal(bw_bq2, 0);
	uint32_t bo = gem_create(65536, 1, 0);
	assert_int_equal(xbind(bw_vm, bw_bq2, bo, 0, 0x100000, 65536, DRM_XE_VM_BIND_OP_MAP, 0, NULL), 0);
	qd.exec_queue_id = bw_bq2;
	assert_int_equal(IOC(DRM_IOCTL_XE_EXEC_QUEUE_DESTROY, &qd), 0);
	assert_int_equal(IOC(DRM_IOCTL_XE_EXEC_QUEUE_DESTROY, &qd), -ENOENT);
	vms_destroy(bw_vms, bw_n, bo);
}

WRAP_BEFORE(vmb_vm_bind, struct vmb_vm_bind, before_vm_bind)

static uint32_t pw_bo, pw_vm1, pw_bos[4096], pw_n;

/* In VM_BIND's window (the shim has translated the ops, vmbind has not looked anything up):
 * GEM_CLOSE of the bind's BO, then GEM_CREATEs of BOs private to vm1 until one takes its handle
 * back (vmbind hands a freed handle out again once the table's other free slots are taken). */
static void pw_step(void)
{
	struct drm_gem_close cl = {.handle = pw_bo};
	assert_int_equal(IOC(DRM_IOCTL_GEM_CLOSE, &cl), 0);
	uint32_t b = 0;
	while (pw_n < 4096 && b != pw_bo)
		pw_bos[pw_n++] = b = gem_create(65536, 1, pw_vm1);
}

/*
 * A MAP into vm2 of a shared BO whose handle, in the bind's window, is closed and taken by a BO
 * private to vm1 (s16-attack4): the bind maps what the handle names when it is looked up, and
 * that is vm1's private BO: -EINVAL (the kernel looks the BO up once and checks its vm there),
 * never vm1's BO mapped into vm2. The window is made exact by the shim's call of vmb_vm_bind
 * --wrap'ed (tests/meson.build).
 */
static void test_private_bo_bind_window(void **state)
{
	(void)state;
	pw_vm1 = vm_create(0);
	uint32_t vm2 = vm_create(0);
	pw_bo = gem_create(65536, 1, 0);
	pw_n = 0;
	before_vm_bind = pw_step;
	int r = xbind(vm2, 0, pw_bo, 0, 0x100000, 65536, DRM_XE_VM_BIND_OP_MAP, 0, NULL);
	before_vm_bind = NULL;
	assert_int_equal(pw_bos[pw_n - 1], pw_bo); /* the handle came back, private to vm1 */
	assert_int_equal(r, -EINVAL);
	/* vm1 takes it; vm2 still does not */
	assert_int_equal(xbind(pw_vm1, 0, pw_bo, 0, 0x100000, 65536, DRM_XE_VM_BIND_OP_MAP, 0, NULL), 0);
	assert_int_equal(xbind(vm2, 0, pw_bo, 0, 0x100000, 65536, DRM_XE_VM_BIND_OP_MAP, 0, NULL), -EINVAL);
	for (uint32_t i = 0; i < pw_n; i++) {
		struct drm_gem_close cl = {.handle = pw_bos[i]};
		assert_int_equal(IOC(DRM_IOCTL_GEM_CLOSE, &cl), 0);
	}
}

static uint32_t qw_vm, qw_vms[4096], qw_n, qw_bq2;

/* In VM_BIND's window: VM_DESTROY of the bind queue's vm, VM_CREATEs until one takes its id
 * back, and a bind queue of that new vm (vmbind numbers each vm's queues from 1: the old queue's
 * number). */
static void qw_step(void)
{
	struct drm_xe_vm_destroy d = {.vm_id = qw_vm};
	assert_int_equal(IOC(DRM_IOCTL_XE_VM_DESTROY, &d), 0);
	qw_n = vms_until_id(qw_vm, qw_vms, 4096);
	qw_bq2 = queue_create(qw_vm, DRM_XE_ENGINE_CLASS_VM_BIND, 0);
}

/*
 * VM_BIND on a bind queue whose vm is destroyed in the bind's window and re-created under the
 * same id with a bind queue of its own (s16-attack4): the bind names the old vm's queue, which
 * is another vm's for the new vm (the kernel: -EINVAL), never the new vm's queue that took its
 * number in vmbind. The window is made exact by the --wrap of vmb_vm_bind.
 */
static void test_bind_queue_bind_window(void **state)
{
	(void)state;
	qw_vm = vm_create(0);
	qw_n = qw_bq2 = 0;
	uint32_t bq1 = queue_create(qw_vm, DRM_XE_ENGINE_CLASS_VM_BIND, 0);
	uint32_t bo = gem_create(65536, 1, 0);
	before_vm_bind = qw_step;
	int r = xbind(qw_vm, bq1, bo, 0, 0x100000, 65536, DRM_XE_VM_BIND_OP_MAP, 0, NULL);
	before_vm_bind = NULL;
	assert_int_not_equal(qw_bq2, 0);
	assert_int_equal(r, -EINVAL);
	/* the new vm's own queue binds */
	assert_int_equal(xbind(qw_vm, qw_bq2, bo, 0, 0x100000, 65536, DRM_XE_VM_BIND_OP_MAP, 0, NULL), 0);
	struct drm_xe_exec_queue_destroy qd = {.exec_queue_id = bq1};
	assert_int_equal(IOC(DRM_IOCTL_XE_EXEC_QUEUE_DESTROY, &qd), 0);
	qd.exec_queue_id = qw_bq2;
	assert_int_equal(IOC(DRM_IOCTL_XE_EXEC_QUEUE_DESTROY, &qd), 0);
	vms_destroy(qw_vms, qw_n, bo);
}

int __real_vmb_exec_queue_create(struct vmb_client *c, struct vmb_exec_queue_create *args);
static void (*after_eq_create)(void);
static uint32_t last_eq_id; /* vmbind's id of the exec queue the shim made last */
int __wrap_vmb_exec_queue_create(struct vmb_client *c, struct vmb_exec_queue_create *args);
int __wrap_vmb_exec_queue_create(struct vmb_client *c, struct vmb_exec_queue_create *args)
{
	int r = __real_vmb_exec_queue_create(c, args);
	last_eq_id = r ? 0 : args->exec_queue_id;
	void (*h)(void) = after_eq_create;
	after_eq_create = NULL;
	if (h)
		h();
	return r;
}

static uint32_t ew_vm;
static int ew_r;

static void ew_body(void)
{
	struct drm_xe_vm_destroy d = {.vm_id = ew_vm};
	ew_r = IOC(DRM_IOCTL_XE_VM_DESTROY, &d);
}

/* In EXEC_QUEUE_CREATE's window (vmbind's queue made, the Xe id not yet): another thread's
 * VM_DESTROY of the queue's vm, given up to 200 ms. */
static void ew_step(void)
{
	window_run(ew_body, 200);
}

/*
 * EXEC_QUEUE_CREATE of an exec queue racing VM_DESTROY of its vm, the destroy in the create's
 * window (--wrap of vmb_exec_queue_create): as the kernel's, the destroy sees the queue (an LR
 * vm: -EBUSY) or the create sees no vm; never both done with the queue left naming the vm id
 * (a plain vm: the destroy completes after the create, and an exec on the queue is
 * -ECANCELED, its vm gone).
 */
static void test_exec_queue_create_window(void **state)
{
	(void)state;
	for (int lr = 1; lr >= 0; lr--) {
		ew_vm = vm_create(lr ? DRM_XE_VM_CREATE_FLAG_LR_MODE : 0);
		after_eq_create = ew_step;
		uint32_t q = queue_create(ew_vm, DRM_XE_ENGINE_CLASS_COPY, 0);
		after_eq_create = NULL;
		assert_int_equal(pthread_join(win_thread, NULL), 0);
		if (lr) {
			assert_int_equal(ew_r, -EBUSY); /* the queue was there when it looked */
			struct drm_xe_exec_queue_destroy qd = {.exec_queue_id = q};
			assert_int_equal(IOC(DRM_IOCTL_XE_EXEC_QUEUE_DESTROY, &qd), 0);
			struct drm_xe_vm_destroy d = {.vm_id = ew_vm};
			assert_int_equal(IOC(DRM_IOCTL_XE_VM_DESTROY, &d), 0);
		} else {
			assert_int_equal(ew_r, 0);
			struct drm_xe_exec x = {.exec_queue_id = q, .num_batch_buffer = 1, .address = 0x100000};
			assert_int_equal(IOC(DRM_IOCTL_XE_EXEC, &x), -ECANCELED);
			struct drm_xe_exec_queue_destroy qd = {.exec_queue_id = q};
			assert_int_equal(IOC(DRM_IOCTL_XE_EXEC_QUEUE_DESTROY, &qd), 0);
		}
	}
}

WRAP_BEFORE(vmb_exec, struct vmb_exec, before_exec)

static uint32_t xw_eq1, xw_vm2, xw_old, xw_qs[4096], xw_n;

/* In EXEC's window (the Xe queue looked up, vmbind's not yet): EXEC_QUEUE_DESTROY of the queue,
 * then exec queues of another vm until one gets the destroyed queue's vmbind id back (vmbind's
 * exec-queue ids are the client's: a freed one comes back once the others are taken). */
static void xw_step(void)
{
	struct drm_xe_exec_queue_destroy qd = {.exec_queue_id = xw_eq1};
	assert_int_equal(IOC(DRM_IOCTL_XE_EXEC_QUEUE_DESTROY, &qd), 0);
	do
		xw_qs[xw_n++] = queue_create(xw_vm2, DRM_XE_ENGINE_CLASS_COPY, 0);
	while (xw_n < 4096 && last_eq_id != xw_old);
}

/*
 * EXEC on an exec queue destroyed in the exec's window, its vmbind id taken by another vm's new
 * queue (the same shape as a bind queue's, for exec queues): the exec is refused (-ENOENT: the
 * queue it named is gone), never run on the other vm's queue (which a batch address unmapped
 * there would have banned).
 */
static void test_exec_window(void **state)
{
	(void)state;
	uint32_t vm1 = vm_create(0);
	xw_vm2 = vm_create(0);
	xw_n = 0;
	xw_eq1 = queue_create(vm1, DRM_XE_ENGINE_CLASS_COPY, 0);
	xw_old = last_eq_id;
	before_exec = xw_step;
	struct drm_xe_exec x = {.exec_queue_id = xw_eq1, .num_batch_buffer = 1, .address = 0x1a0000};
	int r = IOC(DRM_IOCTL_XE_EXEC, &x);
	before_exec = NULL;
	assert_int_equal(last_eq_id, xw_old); /* the id came back, another vm's */
	assert_int_equal(r, -ENOENT);
	struct drm_xe_exec_queue_get_property g = {.exec_queue_id = xw_qs[xw_n - 1],
						   .property = DRM_XE_EXEC_QUEUE_GET_PROPERTY_BAN};
	assert_int_equal(IOC(DRM_IOCTL_XE_EXEC_QUEUE_GET_PROPERTY, &g), 0);
	assert_int_equal(g.value, 0);
	for (uint32_t i = 0; i < xw_n; i++) {
		struct drm_xe_exec_queue_destroy qd = {.exec_queue_id = xw_qs[i]};
		assert_int_equal(IOC(DRM_IOCTL_XE_EXEC_QUEUE_DESTROY, &qd), 0);
	}
}

static void test_bind_queue_rules(void **state)
{
	(void)state;
	uint32_t vm1 = vm_create(0), vm2 = vm_create(0);
	uint32_t bo = gem_create(65536, 1, 0);
	uint32_t bq = queue_create(vm1, DRM_XE_ENGINE_CLASS_VM_BIND, 0);
	uint32_t eq = queue_create(vm1, DRM_XE_ENGINE_CLASS_COPY, 0);
	assert_int_not_equal(bq, eq); /* one id space */
	assert_int_equal(xbind(vm2, bq, bo, 0, 0x100000, 65536, DRM_XE_VM_BIND_OP_MAP, 0, NULL), -EINVAL);
	assert_int_equal(xbind(vm1, eq, bo, 0, 0x100000, 65536, DRM_XE_VM_BIND_OP_MAP, 0, NULL), -EINVAL);
	assert_int_equal(xbind(vm1, 4242, bo, 0, 0x100000, 65536, DRM_XE_VM_BIND_OP_MAP, 0, NULL), -ENOENT);
	uint64_t fence = 0;
	struct drm_xe_sync s = {.type = DRM_XE_SYNC_TYPE_USER_FENCE, .flags = DRM_XE_SYNC_FLAG_SIGNAL,
				.addr = (uintptr_t)&fence, .timeline_value = 7};
	assert_int_equal(xbind(vm1, bq, bo, 0, 0x100000, 65536, DRM_XE_VM_BIND_OP_MAP, 0, &s), 0);
	int64_t t = 10ll * 1000 * 1000 * 1000;
	assert_int_equal(wait_ufence(&fence, 7, 0, &t), 0);
	assert_int_equal(fence, 7);
	struct drm_xe_exec_queue_destroy d = {.exec_queue_id = bq};
	assert_int_equal(IOC(DRM_IOCTL_XE_EXEC_QUEUE_DESTROY, &d), 0);
	assert_int_equal(IOC(DRM_IOCTL_XE_EXEC_QUEUE_DESTROY, &d), -ENOENT);
}

static void test_sync_rules(void **state)
{
	(void)state;
	uint32_t vm = vm_create(0);
	uint32_t bo = gem_create(65536, 1, 0);
	uint64_t fence = 0;
	struct drm_xe_sync s = {.type = DRM_XE_SYNC_TYPE_USER_FENCE, .flags = DRM_XE_SYNC_FLAG_SIGNAL,
				.addr = (uintptr_t)&fence + 4, .timeline_value = 1};
	assert_int_equal(xbind(vm, 0, bo, 0, 0x100000, 65536, DRM_XE_VM_BIND_OP_MAP, 0, &s), -EINVAL);
	s.addr = (uintptr_t)&fence;
	s.flags = 2; /* unknown flag */
	assert_int_equal(xbind(vm, 0, bo, 0, 0x100000, 65536, DRM_XE_VM_BIND_OP_MAP, 0, &s), -EINVAL);
	s.flags = DRM_XE_SYNC_FLAG_SIGNAL;
	s.type = 3;
	assert_int_equal(xbind(vm, 0, bo, 0, 0x100000, 65536, DRM_XE_VM_BIND_OP_MAP, 0, &s), -EINVAL);
	s.type = DRM_XE_SYNC_TYPE_USER_FENCE;
	s.reserved[0] = 1;
	assert_int_equal(xbind(vm, 0, bo, 0, 0x100000, 65536, DRM_XE_VM_BIND_OP_MAP, 0, &s), -EINVAL);
	s.reserved[0] = 0;
	s.flags = 0; /* a user fence as in-sync */
	assert_int_equal(xbind(vm, 0, bo, 0, 0x100000, 65536, DRM_XE_VM_BIND_OP_MAP, 0, &s), -EOPNOTSUPP);
	/* a syncobj out-sync, waited for with DRM's absolute timeout */
	struct drm_syncobj_create sc = {0};
	assert_int_equal(IOC(DRM_IOCTL_SYNCOBJ_CREATE, &sc), 0);
	struct drm_xe_sync so = {.type = DRM_XE_SYNC_TYPE_SYNCOBJ, .flags = DRM_XE_SYNC_FLAG_SIGNAL,
				 .handle = sc.handle};
	assert_int_equal(xbind(vm, 0, bo, 0, 0x100000, 65536, DRM_XE_VM_BIND_OP_MAP, 0, &so), 0);
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	struct drm_syncobj_wait w = {.handles = (uintptr_t)&sc.handle, .count_handles = 1,
				     .timeout_nsec = (ts.tv_sec + 10) * 1000000000ll};
	assert_int_equal(IOC(DRM_IOCTL_SYNCOBJ_WAIT, &w), 0);
}

/* ---- syncobjs ---- */

static void test_syncobj_rules(void **state)
{
	(void)state;
	struct drm_syncobj_create c = {.flags = 2};
	assert_int_equal(IOC(DRM_IOCTL_SYNCOBJ_CREATE, &c), -EINVAL);
	c.flags = DRM_SYNCOBJ_CREATE_SIGNALED;
	assert_int_equal(IOC(DRM_IOCTL_SYNCOBJ_CREATE, &c), 0);
	uint32_t h = c.handle;
	struct drm_syncobj_wait w = {.handles = (uintptr_t)&h, .count_handles = 1};
	assert_int_equal(IOC(DRM_IOCTL_SYNCOBJ_WAIT, &w), 0); /* signalled: a poll passes */
	w.flags = 1u << 10;
	assert_int_equal(IOC(DRM_IOCTL_SYNCOBJ_WAIT, &w), -EINVAL);
	w.flags = 0;
	w.count_handles = 0;
	assert_int_equal(IOC(DRM_IOCTL_SYNCOBJ_WAIT, &w), -EINVAL);
	w.count_handles = 1;
	/* WAIT_AVAILABLE is a timeline wait's flag: a binary wait refuses it */
	w.flags = DRM_SYNCOBJ_WAIT_FLAGS_WAIT_AVAILABLE;
	assert_int_equal(IOC(DRM_IOCTL_SYNCOBJ_WAIT, &w), -EINVAL);
	w.flags = 0;
	/* drm_syncobj_wait_ioctl does not look at pad */
	w.pad = 1;
	assert_int_equal(IOC(DRM_IOCTL_SYNCOBJ_WAIT, &w), 0);
	w.pad = 0;
	struct drm_syncobj_array a = {.handles = (uintptr_t)&h, .count_handles = 1};
	assert_int_equal(IOC(DRM_IOCTL_SYNCOBJ_RESET, &a), 0);
	/* reset: no fence; WAIT_FOR_SUBMIT with a deadline now: -ETIME */
	w.flags = DRM_SYNCOBJ_WAIT_FLAGS_WAIT_FOR_SUBMIT;
	assert_int_equal(IOC(DRM_IOCTL_SYNCOBJ_WAIT, &w), -ETIME);
	w.flags = 0;
	assert_int_equal(IOC(DRM_IOCTL_SYNCOBJ_WAIT, &w), -EINVAL); /* no fence, no WAIT_FOR_SUBMIT */
	assert_int_equal(IOC(DRM_IOCTL_SYNCOBJ_SIGNAL, &a), 0);
	assert_int_equal(IOC(DRM_IOCTL_SYNCOBJ_WAIT, &w), 0);
	a.pad = 1;
	assert_int_equal(IOC(DRM_IOCTL_SYNCOBJ_SIGNAL, &a), -EINVAL);
	struct drm_syncobj_destroy d = {.handle = h};
	assert_int_equal(IOC(DRM_IOCTL_SYNCOBJ_DESTROY, &d), 0);
	assert_int_equal(IOC(DRM_IOCTL_SYNCOBJ_DESTROY, &d), -EINVAL); /* DRM: unknown is -EINVAL */
}

/* ---- exec queues, exec, waits ---- */

static int queue_create_err(uint32_t vm, uint16_t width, uint16_t n, struct drm_xe_engine_class_instance e,
			    uint64_t ext)
{
	struct drm_xe_engine_class_instance two[2] = {e, e};
	struct drm_xe_exec_queue_create c = {.width = width, .num_placements = n, .vm_id = vm,
					     .instances = (uintptr_t)two, .extensions = ext};
	return IOC(DRM_IOCTL_XE_EXEC_QUEUE_CREATE, &c);
}

static void test_exec_queue_rules(void **state)
{
	(void)state;
	uint32_t vm = vm_create(0);
	struct drm_xe_engine_class_instance copy = {.engine_class = DRM_XE_ENGINE_CLASS_COPY};
	assert_int_equal(queue_create_err(vm, 2, 1, copy, 0), -EINVAL);
	assert_int_equal(queue_create_err(vm, 1, 2, copy, 0), -EINVAL);
	assert_int_equal(queue_create_err(vm, 1, 1, (struct drm_xe_engine_class_instance){
		.engine_class = DRM_XE_ENGINE_CLASS_RENDER}, 0), -EINVAL);
	assert_int_equal(queue_create_err(vm, 1, 1, (struct drm_xe_engine_class_instance){
		.engine_class = DRM_XE_ENGINE_CLASS_COPY, .engine_instance = 1}, 0), -EINVAL);
	assert_int_equal(queue_create_err(vm, 1, 1, (struct drm_xe_engine_class_instance){
		.engine_class = DRM_XE_ENGINE_CLASS_COMPUTE, .gt_id = 1}, 0), -EINVAL);
	assert_int_equal(queue_create_err(vm + 100, 1, 1, copy, 0), -ENOENT);
	/* a bind queue is instance 0 only; the instance's pad is not looked at (xe_exec_queue.c) */
	assert_int_equal(queue_create_err(vm, 1, 1, (struct drm_xe_engine_class_instance){
		.engine_class = DRM_XE_ENGINE_CLASS_VM_BIND, .engine_instance = 1}, 0), -EINVAL);
	assert_int_equal(queue_create_err(vm, 1, 1, (struct drm_xe_engine_class_instance){
		.engine_class = DRM_XE_ENGINE_CLASS_COPY, .pad = 1}, 0), 0);
	struct drm_xe_ext_set_property p = {
		.base.name = DRM_XE_EXEC_QUEUE_EXTENSION_SET_PROPERTY,
		.property = DRM_XE_EXEC_QUEUE_SET_PROPERTY_PRIORITY, .value = 3};
	assert_int_equal(queue_create_err(vm, 1, 1, copy, (uintptr_t)&p), -EINVAL);
	p.value = 2;
	assert_int_equal(queue_create_err(vm, 1, 1, copy, (uintptr_t)&p), 0);
	uint32_t q = queue_create(vm, DRM_XE_ENGINE_CLASS_COMPUTE, 1);
	struct drm_xe_exec_queue_get_property g = {.exec_queue_id = q, .property = 1};
	assert_int_equal(IOC(DRM_IOCTL_XE_EXEC_QUEUE_GET_PROPERTY, &g), -EINVAL);
	g.property = DRM_XE_EXEC_QUEUE_GET_PROPERTY_BAN;
	g.value = 99;
	assert_int_equal(IOC(DRM_IOCTL_XE_EXEC_QUEUE_GET_PROPERTY, &g), 0);
	assert_int_equal(g.value, 0);
	struct drm_xe_exec x = {.exec_queue_id = q, .num_batch_buffer = 2, .address = 0x100000};
	assert_int_equal(IOC(DRM_IOCTL_XE_EXEC, &x), -EINVAL);
	uint32_t bq = queue_create(vm, DRM_XE_ENGINE_CLASS_VM_BIND, 0);
	x = (struct drm_xe_exec){.exec_queue_id = bq, .num_batch_buffer = 1, .address = 0x100000};
	assert_int_equal(IOC(DRM_IOCTL_XE_EXEC, &x), -EINVAL); /* a bind queue */
	x.exec_queue_id = 4242;
	assert_int_equal(IOC(DRM_IOCTL_XE_EXEC, &x), -ENOENT);
}

static void test_wait_rules(void **state)
{
	(void)state;
	uint64_t fence = 0;
	struct drm_xe_wait_user_fence w = {.addr = (uintptr_t)&fence, .mask = ~0ull, .timeout = 0,
					   .flags = 2};
	assert_int_equal(IOC(DRM_IOCTL_XE_WAIT_USER_FENCE, &w), -EINVAL);
	w.flags = 0;
	w.op = 6;
	assert_int_equal(IOC(DRM_IOCTL_XE_WAIT_USER_FENCE, &w), -EINVAL);
	w.op = DRM_XE_UFENCE_WAIT_OP_EQ;
	w.addr += 4;
	assert_int_equal(IOC(DRM_IOCTL_XE_WAIT_USER_FENCE, &w), -EINVAL);
	w.addr -= 4;
	w.pad2 = 1;
	assert_int_equal(IOC(DRM_IOCTL_XE_WAIT_USER_FENCE, &w), -EINVAL);
	w.pad2 = 0;
	w.exec_queue_id = 4242;
	assert_int_equal(IOC(DRM_IOCTL_XE_WAIT_USER_FENCE, &w), -ENOENT);
	w.exec_queue_id = 0;
	/* address 0: the kernel's copy_from_user fails, -EFAULT */
	w.addr = 0;
	assert_int_equal(IOC(DRM_IOCTL_XE_WAIT_USER_FENCE, &w), -EFAULT);
	w.addr = (uintptr_t)&fence;
	/* relative timeout: -ETIME, and the time left (0) is written back */
	w.value = 1;
	w.timeout = 1000000;
	assert_int_equal(IOC(DRM_IOCTL_XE_WAIT_USER_FENCE, &w), -ETIME);
	assert_int_equal(w.timeout, 0);
	/* passes at once */
	w.value = 0;
	w.timeout = 1000000000;
	assert_int_equal(IOC(DRM_IOCTL_XE_WAIT_USER_FENCE, &w), 0);
	assert_true(w.timeout > 0 && w.timeout <= 1000000000);
}

/* A wait tied to an exec queue ends with -EIO once the queue is banned (IGT's
 * exec_queue-reset-wait): the batch address is not mapped, so the job faults and bans it. */
static void test_wait_banned_queue(void **state)
{
	(void)state;
	uint32_t vm = vm_create(0);
	uint32_t q = queue_create(vm, DRM_XE_ENGINE_CLASS_COPY, 0);
	struct drm_xe_exec x = {.exec_queue_id = q, .num_batch_buffer = 1, .address = 0x1a0000};
	assert_int_equal(IOC(DRM_IOCTL_XE_EXEC, &x), 0);
	uint64_t fence = 0;
	int64_t t = -1; /* no limit: the ban ends it */
	assert_int_equal(wait_ufence(&fence, 0xc0ffee, q, &t), -EIO);
	struct drm_xe_exec_queue_get_property g = {.exec_queue_id = q,
						   .property = DRM_XE_EXEC_QUEUE_GET_PROPERTY_BAN};
	assert_int_equal(IOC(DRM_IOCTL_XE_EXEC_QUEUE_GET_PROPERTY, &g), 0);
	assert_int_equal(g.value, 1);
	assert_int_equal(IOC(DRM_IOCTL_XE_EXEC, &x), -ECANCELED);
}

/* ---- bad user pointers: -EFAULT as copy_from_user/copy_to_user, nothing changed ---- */

/* Two pages: the first read-write, the second PROT_NONE; and one read-only page. */
static unsigned char *guard;
static unsigned char *rdonly;

static int setup_guard(void **state)
{
	int r = setup(state);
	if (r)
		return r;
	guard = mmap(NULL, 2 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	rdonly = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (guard == MAP_FAILED || rdonly == MAP_FAILED)
		return -1;
	return mprotect(guard + 4096, 4096, PROT_NONE);
}

static int teardown_guard(void **state)
{
	munmap(guard, 2 * 4096);
	munmap(rdonly, 4096);
	return teardown(state);
}

/* @n elements of @size bytes whose last one starts @tail bytes before the PROT_NONE page: the
 * ones before it are readable, the last is cut by the page (@tail 0: lies on it). Keep the
 * elements aligned: @tail a multiple of their alignment. */
static void *cut(size_t n, size_t size, size_t tail)
{
	return guard + 4096 - (n - 1) * size - tail;
}
#define NOT_MAPPED ((uint64_t)(uintptr_t)(guard + 4096))

/* An exec at @va, which nothing maps in @q's vm: the job faults and bans the queue. */
static void exec_fault(uint32_t q, uint64_t va)
{
	struct drm_xe_exec x = {.exec_queue_id = q, .num_batch_buffer = 1, .address = va};
	assert_int_equal(IOC(DRM_IOCTL_XE_EXEC, &x), 0);
	uint64_t fence = 0;
	int64_t t = -1;
	assert_int_equal(wait_ufence(&fence, 1, q, &t), -EIO);
}

/* VM_GET_PROPERTY, FAULTS, as xe_vm_get_property_ioctl: the field rules before the vm lookup,
 * -ENOENT, then the property; size 0 asks; a size that is not a multiple of the record, or
 * more than the faults there are, is -EINVAL; a smaller one gets the oldest; the records
 * (canonical address, precision 1, read, not present, the level with no entry); data that
 * cannot be written is -EFAULT; the log outlives the queues, not the vm. */
static void test_vm_get_property(void **state)
{
	(void)state;
	const size_t one = sizeof(struct xe_vm_fault);
	struct drm_xe_vm_get_property g = {.extensions = 1};
	assert_int_equal(IOC(DRM_IOCTL_XE_VM_GET_PROPERTY, &g), -EINVAL);
	g = (struct drm_xe_vm_get_property){.pad = 1};
	assert_int_equal(IOC(DRM_IOCTL_XE_VM_GET_PROPERTY, &g), -EINVAL);
	g = (struct drm_xe_vm_get_property){.reserved[2] = 1};
	assert_int_equal(IOC(DRM_IOCTL_XE_VM_GET_PROPERTY, &g), -EINVAL);
	g = (struct drm_xe_vm_get_property){.vm_id = 4242, .property = 0xdeadbeef};
	assert_int_equal(IOC(DRM_IOCTL_XE_VM_GET_PROPERTY, &g), -ENOENT);
	uint32_t vm = vm_create(0);
	g = (struct drm_xe_vm_get_property){.vm_id = vm, .property = 0xdeadbeef};
	assert_int_equal(IOC(DRM_IOCTL_XE_VM_GET_PROPERTY, &g), -EINVAL);
	g = (struct drm_xe_vm_get_property){.vm_id = vm, .property = DRM_XE_VM_GET_PROPERTY_FAULTS, .size = 5};
	assert_int_equal(IOC(DRM_IOCTL_XE_VM_GET_PROPERTY, &g), -EINVAL);
	g.size = 0;
	assert_int_equal(IOC(DRM_IOCTL_XE_VM_GET_PROPERTY, &g), 0);
	assert_int_equal(g.size, 0);
	g.size = (uint32_t)one; /* more than the none there are */
	assert_int_equal(IOC(DRM_IOCTL_XE_VM_GET_PROPERTY, &g), -EINVAL);

	uint32_t q1 = queue_create(vm, DRM_XE_ENGINE_CLASS_COPY, 0);
	uint32_t q2 = queue_create(vm, DRM_XE_ENGINE_CLASS_COPY, 0);
	exec_fault(q1, 0x1a0000);
	exec_fault(q2, 0x800000000000ull - 64); /* the top of the lower half: canonical as is */
	g.size = 0;
	assert_int_equal(IOC(DRM_IOCTL_XE_VM_GET_PROPERTY, &g), 0);
	assert_int_equal(g.size, 2 * one);
	struct xe_vm_fault rec[3];
	memset(rec, 0xee, sizeof(rec));
	g.data = (uintptr_t)rec;
	g.size = (uint32_t)(3 * one);
	assert_int_equal(IOC(DRM_IOCTL_XE_VM_GET_PROPERTY, &g), -EINVAL);
	g.size = (uint32_t)one + 8;
	assert_int_equal(IOC(DRM_IOCTL_XE_VM_GET_PROPERTY, &g), -EINVAL);
	g.size = (uint32_t)one; /* the oldest only */
	assert_int_equal(IOC(DRM_IOCTL_XE_VM_GET_PROPERTY, &g), 0);
	assert_int_equal(rec[0].address, 0x1a0000);
	assert_int_equal(rec[1].address, 0xeeeeeeeeeeeeeeeeull);
	g.size = (uint32_t)(2 * one);
	assert_int_equal(IOC(DRM_IOCTL_XE_VM_GET_PROPERTY, &g), 0);
	assert_int_equal(g.size, 2 * one);
	assert_int_equal(rec[1].address, 0x800000000000ull - 64);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(rec[i].address_precision, 1);
		assert_int_equal(rec[i].access_type, FAULT_ACCESS_TYPE_READ); /* the batch's fetch */
		assert_int_equal(rec[i].fault_type, FAULT_TYPE_NOT_PRESENT);
		assert_int_equal(rec[i].fault_level, FAULT_LEVEL_PML4); /* an empty vm: no root entry */
		assert_int_equal(rec[i].pad, 0);
		assert_int_equal(rec[i].reserved[3], 0);
	}
	assert_int_equal(rec[2].address, 0xeeeeeeeeeeeeeeeeull);
	/* copy_to_user of a page that is not writable */
	g.data = (uintptr_t)rdonly;
	assert_int_equal(IOC(DRM_IOCTL_XE_VM_GET_PROPERTY, &g), -EFAULT);
	g.data = NOT_MAPPED;
	assert_int_equal(IOC(DRM_IOCTL_XE_VM_GET_PROPERTY, &g), -EFAULT);
	/* the queues go, the faults stay; the vm goes, with them */
	struct drm_xe_exec_queue_destroy d = {.exec_queue_id = q1};
	assert_int_equal(IOC(DRM_IOCTL_XE_EXEC_QUEUE_DESTROY, &d), 0);
	d.exec_queue_id = q2;
	assert_int_equal(IOC(DRM_IOCTL_XE_EXEC_QUEUE_DESTROY, &d), 0);
	g.size = 0;
	assert_int_equal(IOC(DRM_IOCTL_XE_VM_GET_PROPERTY, &g), 0);
	assert_int_equal(g.size, 2 * one);
	struct drm_xe_vm_destroy vd = {.vm_id = vm};
	assert_int_equal(IOC(DRM_IOCTL_XE_VM_DESTROY, &vd), 0);
	assert_int_equal(IOC(DRM_IOCTL_XE_VM_GET_PROPERTY, &g), -ENOENT);
}

/* Whether syncobj @h has a fence that is signalled (a poll: no wait). */
static int poll_syncobj(uint32_t h)
{
	struct drm_syncobj_wait w = {.handles = (uintptr_t)&h, .count_handles = 1};
	return IOC(DRM_IOCTL_SYNCOBJ_WAIT, &w);
}

static uint32_t xsyncobj(void)
{
	struct drm_syncobj_create c = {0};
	assert_int_equal(IOC(DRM_IOCTL_SYNCOBJ_CREATE, &c), 0);
	return c.handle;
}

static void test_efault_version_query(void **state)
{
	(void)state;
	struct drm_version v = {.name_len = 8, .name = (char *)(uintptr_t)NOT_MAPPED};
	assert_int_equal(IOC(DRM_IOCTL_VERSION, &v), -EFAULT);
	v.name = (char *)rdonly; /* copy_to_user of a page that is not writable */
	assert_int_equal(IOC(DRM_IOCTL_VERSION, &v), -EFAULT);
	struct drm_xe_device_query q = {.query = DRM_XE_DEVICE_QUERY_CONFIG};
	assert_int_equal(IOC(DRM_IOCTL_XE_DEVICE_QUERY, &q), 0);
	q.data = NOT_MAPPED;
	assert_int_equal(IOC(DRM_IOCTL_XE_DEVICE_QUERY, &q), -EFAULT);
	q.data = (uintptr_t)rdonly;
	assert_int_equal(IOC(DRM_IOCTL_XE_DEVICE_QUERY, &q), -EFAULT);
	q.data = (uintptr_t)cut(1, q.size, q.size / 2); /* half of it writable */
	assert_int_equal(IOC(DRM_IOCTL_XE_DEVICE_QUERY, &q), -EFAULT);
}

static void test_efault_syncobj_arrays(void **state)
{
	(void)state;
	uint32_t h = xsyncobj();
	uint32_t *two = cut(2, sizeof(uint32_t), 0); /* h, then a handle on the PROT_NONE page */
	two[0] = h;
	struct drm_syncobj_array a = {.handles = (uintptr_t)two, .count_handles = 2};
	assert_int_equal(IOC(DRM_IOCTL_SYNCOBJ_SIGNAL, &a), -EFAULT);
	assert_int_equal(poll_syncobj(h), -EINVAL); /* still no fence: h was not signalled */
	a.handles = NOT_MAPPED;
	a.count_handles = 1;
	assert_int_equal(IOC(DRM_IOCTL_SYNCOBJ_RESET, &a), -EFAULT);
	struct drm_syncobj_wait w = {.handles = (uintptr_t)two, .count_handles = 2};
	assert_int_equal(IOC(DRM_IOCTL_SYNCOBJ_WAIT, &w), -EFAULT);
	w.handles = NOT_MAPPED;
	w.count_handles = 1;
	assert_int_equal(IOC(DRM_IOCTL_SYNCOBJ_WAIT, &w), -EFAULT);
}

static void test_efault_bind_arrays(void **state)
{
	(void)state;
	uint32_t vm = vm_create(0);
	uint32_t bo = gem_create(65536, 1, 0);
	uint32_t h = xsyncobj();
	struct drm_xe_sync so = {.type = DRM_XE_SYNC_TYPE_SYNCOBJ, .flags = DRM_XE_SYNC_FLAG_SIGNAL,
				 .handle = h};
	/* the second op cut by the page: nothing is bound, the out-sync gets no fence */
	struct drm_xe_vm_bind_op *ops = cut(2, sizeof(*ops), 8);
	ops[0] = (struct drm_xe_vm_bind_op){.obj = bo, .addr = 0x100000, .range = 65536};
	struct drm_xe_vm_bind b = {.vm_id = vm, .num_binds = 2, .vector_of_binds = (uintptr_t)ops,
				   .num_syncs = 1, .syncs = (uintptr_t)&so};
	assert_int_equal(IOC(DRM_IOCTL_XE_VM_BIND, &b), -EFAULT);
	assert_int_equal(poll_syncobj(h), -EINVAL);
	b.vector_of_binds = NOT_MAPPED;
	assert_int_equal(IOC(DRM_IOCTL_XE_VM_BIND, &b), -EFAULT);
	assert_int_equal(poll_syncobj(h), -EINVAL);
	/* syncs: the second cut by the page */
	struct drm_xe_sync *syncs = cut(2, sizeof(*syncs), 8);
	syncs[0] = so;
	b = (struct drm_xe_vm_bind){.vm_id = vm, .num_binds = 1,
				    .bind = {.obj = bo, .addr = 0x100000, .range = 65536},
				    .num_syncs = 2, .syncs = (uintptr_t)syncs};
	assert_int_equal(IOC(DRM_IOCTL_XE_VM_BIND, &b), -EFAULT);
	assert_int_equal(poll_syncobj(h), -EINVAL);
	b.syncs = NOT_MAPPED;
	assert_int_equal(IOC(DRM_IOCTL_XE_VM_BIND, &b), -EFAULT);
	/* a bind's user fence that is not mapped (xe_sync.c, user_fence_create: get_user) */
	struct drm_xe_sync uf = {.type = DRM_XE_SYNC_TYPE_USER_FENCE, .flags = DRM_XE_SYNC_FLAG_SIGNAL,
				 .addr = NOT_MAPPED, .timeline_value = 1};
	assert_int_equal(xbind(vm, 0, bo, 0, 0x100000, 65536, DRM_XE_VM_BIND_OP_MAP, 0, &uf), -EFAULT);
	/* nothing was bound by any of them: the range binds now, and its out-sync signals */
	assert_int_equal(xbind(vm, 0, bo, 0, 0x100000, 65536, DRM_XE_VM_BIND_OP_MAP, 0, &so), 0);
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	struct drm_syncobj_wait w = {.handles = (uintptr_t)&h, .count_handles = 1,
				     .timeout_nsec = (ts.tv_sec + 10) * 1000000000ll};
	assert_int_equal(IOC(DRM_IOCTL_SYNCOBJ_WAIT, &w), 0);
}

static void test_efault_exec_queue_wait(void **state)
{
	(void)state;
	uint32_t vm = vm_create(0);
	uint32_t q = queue_create(vm, DRM_XE_ENGINE_CLASS_COPY, 0);
	uint32_t h = xsyncobj();
	struct drm_xe_sync *syncs = cut(2, sizeof(*syncs), 8);
	syncs[0] = (struct drm_xe_sync){.type = DRM_XE_SYNC_TYPE_SYNCOBJ,
					.flags = DRM_XE_SYNC_FLAG_SIGNAL, .handle = h};
	struct drm_xe_exec x = {.exec_queue_id = q, .num_batch_buffer = 1, .address = 0x1a0000,
				.num_syncs = 2, .syncs = (uintptr_t)syncs};
	assert_int_equal(IOC(DRM_IOCTL_XE_EXEC, &x), -EFAULT);
	assert_int_equal(poll_syncobj(h), -EINVAL); /* no job: h got no fence */
	x.syncs = NOT_MAPPED;
	assert_int_equal(IOC(DRM_IOCTL_XE_EXEC, &x), -EFAULT);
	struct drm_xe_exec_queue_get_property g = {.exec_queue_id = q,
						   .property = DRM_XE_EXEC_QUEUE_GET_PROPERTY_BAN};
	assert_int_equal(IOC(DRM_IOCTL_XE_EXEC_QUEUE_GET_PROPERTY, &g), 0);
	assert_int_equal(g.value, 0); /* no job ran (its batch address is not mapped) */
	/* EXEC_QUEUE_CREATE: the instances, the extension chain */
	struct drm_xe_exec_queue_create c = {.width = 1, .num_placements = 1, .vm_id = vm,
					     .instances = NOT_MAPPED};
	assert_int_equal(IOC(DRM_IOCTL_XE_EXEC_QUEUE_CREATE, &c), -EFAULT);
	struct drm_xe_engine_class_instance e = {.engine_class = DRM_XE_ENGINE_CLASS_COPY};
	c.instances = (uintptr_t)&e;
	c.extensions = NOT_MAPPED;
	assert_int_equal(IOC(DRM_IOCTL_XE_EXEC_QUEUE_CREATE, &c), -EFAULT);
	struct drm_xe_ext_set_property *p = cut(1, sizeof(*p), 16); /* its base readable */
	p->base = (struct drm_xe_user_extension){.name = DRM_XE_EXEC_QUEUE_EXTENSION_SET_PROPERTY};
	c.extensions = (uintptr_t)p;
	assert_int_equal(IOC(DRM_IOCTL_XE_EXEC_QUEUE_CREATE, &c), -EFAULT);
	/* WAIT_USER_FENCE: the fence's address not mapped (do_compare: copy_from_user) */
	struct drm_xe_wait_user_fence w = {.addr = NOT_MAPPED, .op = DRM_XE_UFENCE_WAIT_OP_EQ,
					   .mask = ~0ull, .timeout = 1000000};
	assert_int_equal(IOC(DRM_IOCTL_XE_WAIT_USER_FENCE, &w), -EFAULT);
}

/* The ioctl's own struct at an address that is not mapped: -EFAULT, as drm_ioctl()'s copies. A
 * struct the shim can read but not write back: the call is made, then -EFAULT (drm_ioctl()
 * copies out after the call). */
static void test_efault_ioctl_struct(void **state)
{
	(void)state;
	assert_int_equal(IOC(DRM_IOCTL_XE_VM_CREATE, (void *)(uintptr_t)NOT_MAPPED), -EFAULT);
	assert_int_equal(IOC(DRM_IOCTL_VERSION, (void *)(uintptr_t)NOT_MAPPED), -EFAULT);
	assert_int_equal(IOC(DRM_IOCTL_SYNCOBJ_DESTROY, (void *)(uintptr_t)NOT_MAPPED), -EFAULT);
	struct drm_xe_vm_create *c = cut(1, sizeof(*c), sizeof(*c) / 2); /* half of it readable */
	assert_int_equal(IOC(DRM_IOCTL_XE_VM_CREATE, c), -EFAULT);
	assert_int_equal(IOC(DRM_IOCTL_XE_VM_CREATE, rdonly), -EFAULT); /* zeros: a valid create */
}

/* From another thread: its stack arrays are read (the shim's copy without a system call, for
 * memory between the calling frame and the top of the thread's stack), a bad pointer is still
 * -EFAULT. */
static void *efault_thread(void *arg)
{
	(void)arg;
	uint32_t h = xsyncobj();
	uint32_t handles[2] = {h, h};
	struct drm_syncobj_array a = {.handles = (uintptr_t)handles, .count_handles = 2};
	intptr_t bad = 0;
	bad |= IOC(DRM_IOCTL_SYNCOBJ_SIGNAL, &a) != 0;
	bad |= poll_syncobj(h) != 0;
	a.handles = NOT_MAPPED;
	bad |= IOC(DRM_IOCTL_SYNCOBJ_RESET, &a) != -EFAULT;
	/* a write into this thread's stack */
	char name[4];
	struct drm_version v = {.name_len = sizeof(name), .name = name};
	bad |= IOC(DRM_IOCTL_VERSION, &v) != 0 || memcmp(name, "xe", 2);
	return (void *)bad;
}

static void test_efault_threads(void **state)
{
	(void)state;
	pthread_t t;
	void *bad = (void *)1;
	assert_int_equal(pthread_create(&t, NULL, efault_thread, NULL), 0);
	assert_int_equal(pthread_join(t, &bad), 0);
	assert_null(bad);
	assert_null(efault_thread(NULL)); /* and from the main thread */
}

/* The kernel's answers to counts past its limits or past vmbind's (xe_vm.c
 * vm_bind_ioctl_check_args, xe_exec.c xe_exec_ioctl, drm_syncobj.c; docs/XE.md). */
static void test_count_limits(void **state)
{
	(void)state;
	uint32_t vm = vm_create(0);
	uint32_t q = queue_create(vm, DRM_XE_ENGINE_CLASS_COPY, 0);
	/* num_syncs above DRM_XE_MAX_SYNCS: -EINVAL before anything is looked up or read */
	struct drm_xe_exec x = {.exec_queue_id = 4242, .num_batch_buffer = 1, .address = 0x1a0000,
				.num_syncs = DRM_XE_MAX_SYNCS + 1, .syncs = 8};
	assert_int_equal(IOC(DRM_IOCTL_XE_EXEC, &x), -EINVAL);
	x.exec_queue_id = q;
	assert_int_equal(IOC(DRM_IOCTL_XE_EXEC, &x), -EINVAL);
	struct drm_xe_vm_bind b = {.vm_id = vm, .num_binds = 2, .vector_of_binds = 8,
				   .num_syncs = DRM_XE_MAX_SYNCS + 1, .syncs = 8};
	assert_int_equal(IOC(DRM_IOCTL_XE_VM_BIND, &b), -EINVAL);
	/* num_binds past vmbind's VMB_VM_BIND_MAX_OPS: the kernel's answer to an array it cannot
	 * allocate, -ENOBUFS (always, past INT_MAX bytes); an unknown vm is still -EINVAL */
	b = (struct drm_xe_vm_bind){.vm_id = vm, .num_binds = VMB_VM_BIND_MAX_OPS + 1,
				    .vector_of_binds = 8};
	assert_int_equal(IOC(DRM_IOCTL_XE_VM_BIND, &b), -ENOBUFS);
	b.num_binds = UINT32_MAX;
	assert_int_equal(IOC(DRM_IOCTL_XE_VM_BIND, &b), -ENOBUFS);
	b.vm_id = 4242;
	assert_int_equal(IOC(DRM_IOCTL_XE_VM_BIND, &b), -EINVAL);
	/* syncobj arrays past vmbind's 1024: DRM has no limit but its allocation (-ENOMEM) */
	uint32_t h[VMB_SYNCOBJ_ARRAY_MAX + 1] = {0};
	struct drm_syncobj_array a = {.handles = (uintptr_t)h, .count_handles = VMB_SYNCOBJ_ARRAY_MAX + 1};
	assert_int_equal(IOC(DRM_IOCTL_SYNCOBJ_SIGNAL, &a), -ENOMEM);
	assert_int_equal(IOC(DRM_IOCTL_SYNCOBJ_RESET, &a), -ENOMEM);
	struct drm_syncobj_wait w = {.handles = (uintptr_t)h, .count_handles = VMB_SYNCOBJ_WAIT_MAX + 1};
	assert_int_equal(IOC(DRM_IOCTL_SYNCOBJ_WAIT, &w), -ENOMEM);
}

/* After fork() the child's descriptors fail every ioctl with -ENODEV. */
static void test_fork_child_enodev(void **state)
{
	(void)state;
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct drm_version v = {0};
		_exit(xe_file_ioctl(xf, DRM_IOCTL_VERSION, &v) == -ENODEV ? 0 : 1);
	}
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	struct drm_version v = {0};
	assert_int_equal(IOC(DRM_IOCTL_VERSION, &v), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_version, setup, teardown),
		cmocka_unit_test_setup_teardown(test_get_cap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_ioctls, setup, teardown),
		cmocka_unit_test_setup_teardown(test_struct_sizes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_query_size_protocol, setup, teardown),
		cmocka_unit_test_setup_teardown(test_query_field_rules, setup, teardown),
		cmocka_unit_test_setup_teardown(test_presented_device, setup, teardown),
		cmocka_unit_test_setup_teardown(test_vm_create_rules, setup, teardown),
		cmocka_unit_test_setup_teardown(test_vm_destroy_rules, setup, teardown),
		cmocka_unit_test_setup_teardown(test_gem_create_rules, setup, teardown),
		cmocka_unit_test_setup_teardown(test_gem_close_rules, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mmap_offset, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mmap_offset_reused_handle, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mmap_close_window, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bind_op_rules, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bind_private_bo, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bind_private_bo_vm_reused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bind_queue_of_reused_vm_id, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bind_queue_rules, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bind_queue_destroy_window, setup, teardown),
		cmocka_unit_test_setup_teardown(test_private_bo_bind_window, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bind_queue_bind_window, setup, teardown),
		cmocka_unit_test_setup_teardown(test_exec_queue_create_window, setup, teardown),
		cmocka_unit_test_setup_teardown(test_exec_window, setup, teardown),
		cmocka_unit_test_setup_teardown(test_private_bo_vm_destroy_race, setup, teardown),
		cmocka_unit_test_setup_teardown(test_queue_destroy_races, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sync_rules, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bind_kernel_rules, setup, teardown),
		cmocka_unit_test_setup_teardown(test_syncobj_rules, setup, teardown),
		cmocka_unit_test_setup_teardown(test_exec_queue_rules, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wait_rules, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wait_banned_queue, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fork_child_enodev, setup, teardown),
		cmocka_unit_test_setup_teardown(test_count_limits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_efault_version_query, setup_guard, teardown_guard),
		cmocka_unit_test_setup_teardown(test_efault_syncobj_arrays, setup_guard, teardown_guard),
		cmocka_unit_test_setup_teardown(test_efault_bind_arrays, setup_guard, teardown_guard),
		cmocka_unit_test_setup_teardown(test_efault_exec_queue_wait, setup_guard, teardown_guard),
		cmocka_unit_test_setup_teardown(test_efault_threads, setup_guard, teardown_guard),
		cmocka_unit_test_setup_teardown(test_efault_ioctl_struct, setup_guard, teardown_guard),
		cmocka_unit_test_setup_teardown(test_vm_get_property, setup_guard, teardown_guard),
		cmocka_unit_test_setup_teardown(test_mmap_offset_gens, setup, teardown), /* last */
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
