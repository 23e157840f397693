/* SPDX-License-Identifier: MIT */
/*
 * `vmbind demo layout`, the foundation demo: a vm on the soft device with VRAM and system BOs, a sparse range and
 * application memory bound into it; writes and reads through the GPU view (the page tables),
 * a partial unbind, and the VA layout with page sizes and page-table statistics.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "cli.h"

#define MiB (1ull << 20)
#define GiB (1ull << 30)

const char *fmt_size(uint64_t v, char *buf, size_t n)
{
	static const char *unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
	int u = 0;
	while (u < 4 && v >= 1024 && v % 1024 == 0) {
		v /= 1024;
		u++;
	}
	snprintf(buf, n, "%llu %s", (unsigned long long)v, unit[u]);
	return buf;
}

static void sizes_str(uint64_t mask, char *buf, size_t n)
{
	static const struct { uint64_t s; const char *name; } names[] = {
		{VMB_PAGE_1G, "1G"}, {VMB_PAGE_2M, "2M"}, {VMB_PAGE_64K, "64K"}, {VMB_PAGE_4K, "4K"}};
	buf[0] = 0;
	for (size_t i = 0; i < 4; i++)
		if (mask & names[i].s) {
			if (buf[0])
				strncat(buf, "+", n - strlen(buf) - 1);
			strncat(buf, names[i].name, n - strlen(buf) - 1);
		}
}

void print_layout(struct vmb_client *c, uint32_t vm)
{
	struct vmb_vm_query_mappings q = {.vm_id = vm};
	if (vmb_vm_query_mappings(c, &q))
		return;
	struct vmb_mapping_info *m = calloc(q.num_mappings + 1, sizeof(*m));
	q.mappings = (uint64_t)(uintptr_t)m;
	vmb_vm_query_mappings(c, &q);
	printf("  %-37s %-10s %-6s %-14s %-10s %s\n", "GPU VA range", "size", "BO", "offset", "pages", "flags");
	for (uint32_t i = 0; i < q.num_mappings; i++) {
		char sz[32], ps[32], bo[16];
		sizes_str(m[i].page_sizes, ps, sizeof(ps));
		if (m[i].flags & VMB_MAPPING_NULL)
			snprintf(bo, sizeof(bo), "null");
		else if (m[i].flags & VMB_MAPPING_USERPTR)
			snprintf(bo, sizeof(bo), "user");
		else
			snprintf(bo, sizeof(bo), "%u", m[i].bo_handle);
		printf("  0x%012llx-0x%012llx %-10s %-6s 0x%-12llx %-10s %s\n", (unsigned long long)m[i].addr,
		       (unsigned long long)(m[i].addr + m[i].range - 1), fmt_size(m[i].range, sz, sizeof(sz)), bo,
		       (unsigned long long)m[i].offset, ps,
		       m[i].flags & VMB_MAPPING_READONLY ? "ro" : (m[i].flags & VMB_MAPPING_NULL ? "sparse" : "rw"));
	}
	free(m);
	struct vmb_vm_stats s = {.vm_id = vm};
	vmb_vm_query_stats(c, &s);
	printf("  page tables: %llu KiB in %llu+%llu+%llu+%llu tables (levels 3..0), %llu KiB reserved for splits\n",
	       (unsigned long long)s.pt_bytes / 1024, (unsigned long long)s.pt_tables[3],
	       (unsigned long long)s.pt_tables[2], (unsigned long long)s.pt_tables[1],
	       (unsigned long long)s.pt_tables[0], (unsigned long long)s.pt_reserve_bytes / 1024);
	printf("  leaves: %llu x 4K, %llu x 64K, %llu x 2M, %llu x 1G; %llu mappings, VA manager %llu bytes\n",
	       (unsigned long long)s.leaves[0], (unsigned long long)s.leaves[1], (unsigned long long)s.leaves[2],
	       (unsigned long long)s.leaves[3], (unsigned long long)s.num_mappings, (unsigned long long)s.va_bytes);
}

#define CHECK(expr)                                                                                   \
	do {                                                                                          \
		int err_ = (expr);                                                                    \
		if (err_) {                                                                           \
			fprintf(stderr, "demo: %s failed: %s\n", #expr, strerror(-err_));            \
			return 1;                                                                     \
		}                                                                                     \
	} while (0)

static int bind(struct vmb_client *c, uint32_t vm, struct vmb_bind_op *ops, uint32_t n)
{
	struct vmb_vm_bind b = {.vm_id = vm, .num_binds = n, .binds = (uint64_t)(uintptr_t)ops};
	return vmb_vm_bind(c, &b);
}

static int gpu(struct vmb_client *c, uint32_t vm, uint64_t addr, void *buf, uint64_t size, bool write)
{
	struct vmb_vm_access a = {.vm_id = vm, .addr = addr, .size = size, .data = (uint64_t)(uintptr_t)buf,
				  .flags = write ? VMB_ACCESS_WRITE : 0};
	return vmb_vm_access(c, &a);
}

const struct cli_help cli_help_demo_layout = {
	.name = "demo layout",
	.usage = "vmbind demo layout",
	.summary = "the foundation's tour: VA layout, page sizes, the GPU view, partial unbind, PREFETCH",
	.text = "One VM_BIND of five operations (a VRAM BO, a system BO, a read-only alias, a sparse range,\n"
		"application memory), the VA layout with page sizes and page-table statistics; writes and\n"
		"reads through the GPU view; a partial unbind that splits huge pages; a PREFETCH of the VRAM\n"
		"BO to system memory; a consistency check of the whole device. On the soft device's\n"
		"integrated shape only (not with VMB_SOFT_DISCRETE=1: it exits 1 saying so).\n"
		"\n"
		"options:\n"
		"  -h, --help    this text\n",
};

int cmd_demo_layout(int argc, char **argv)
{
	static const struct option opts[] = {{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
	int opt;
	optind = 0;
	if ((opt = cli_getopt(argc, argv, &cli_help_demo_layout, "h", opts)) != -1)
		return opt == 'h' ? cli_help(&cli_help_demo_layout) : 2;
	if (cli_no_args(argc, argv, &cli_help_demo_layout))
		return 2;
	struct vmb_client_opts o = {.vram_size = 256 * MiB, .system_size = 256 * MiB};
	struct vmb_client *c;
	struct vmb_vm_create vc = {0};
	struct vmb_bo_create vram = {.size = 8 * MiB, .placements = VMB_PLACE_VRAM | VMB_PLACE_SYSTEM};
	struct vmb_bo_create sys = {.size = 1 * MiB + 64 * 1024, .placements = VMB_PLACE_SYSTEM};
	int failures = 0;

	CHECK(vmb_client_open("soft", &o, &c));
	/* the tour shows 4 KiB pages, 64 KiB ones and a CPU-written VRAM BO: the integrated shape */
	struct vmb_device_query dq = {0};
	CHECK(vmb_device_query(c, &dq));
	if (dq.min_page_size != 4096 || !(dq.capabilities & VMB_CAP_VRAM_CPU_MAP)) {
		fprintf(stderr, "vmbind demo layout: the tour needs the soft device's integrated shape (4 KiB pages,\n"
				"VRAM the CPU maps); this one maps in units of %llu KiB%s. Run it without\n"
				"VMB_SOFT_DISCRETE=1; `vmbind demo` runs on both shapes.\n",
			(unsigned long long)(dq.min_page_size / 1024),
			dq.capabilities & VMB_CAP_VRAM_CPU_MAP ? "" : " and its VRAM is out of the CPU's reach");
		vmb_client_close(c);
		return 1;
	}
	CHECK(vmb_vm_create(c, &vc));
	CHECK(vmb_bo_create(c, &vram));
	CHECK(vmb_bo_create(c, &sys));
	uint64_t *user = mmap(NULL, 2 * MiB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (user == MAP_FAILED)
		return 1;
	printf("vmbind demo: soft device, vm %u, VRAM BO %u (8 MiB), system BO %u (1 MiB + 64 KiB)\n\n", vc.vm_id,
	       vram.handle, sys.handle);

	struct vmb_bind_op ops[] = {
		{.op = VMB_BIND_OP_MAP, .bo_handle = vram.handle, .addr = 1 * GiB, .range = 8 * MiB},
		{.op = VMB_BIND_OP_MAP, .bo_handle = sys.handle, .addr = 2 * GiB, .range = 1 * MiB + 64 * 1024},
		{.op = VMB_BIND_OP_MAP, .bo_handle = vram.handle, .bo_offset = 64 * 1024, .addr = 3 * GiB,
		 .range = 1 * MiB, .flags = VMB_BIND_FLAG_READONLY},
		{.op = VMB_BIND_OP_MAP, .flags = VMB_BIND_FLAG_NULL, .addr = 4 * GiB, .range = 1 * GiB},
		{.op = VMB_BIND_OP_MAP_USERPTR, .userptr = (uint64_t)(uintptr_t)user, .addr = 6 * GiB, .range = 2 * MiB},
	};
	CHECK(bind(c, vc.vm_id, ops, 5));
	printf("1. one VM_BIND call, five operations (VRAM BO, system BO, read-only alias, sparse, userptr):\n");
	print_layout(c, vc.vm_id);

	/* write a pattern through the GPU view, read it back through the page tables and the CPU */
	uint64_t *pattern = malloc(8 * MiB);
	for (uint64_t i = 0; i < 8 * MiB / 8; i++)
		pattern[i] = i * 0x9e3779b97f4a7c15ull;
	CHECK(gpu(c, vc.vm_id, 1 * GiB, pattern, 8 * MiB, true));
	uint64_t *back = calloc(1, 8 * MiB);
	CHECK(gpu(c, vc.vm_id, 1 * GiB, back, 8 * MiB, false));
	failures += memcmp(back, pattern, 8 * MiB) != 0;
	struct vmb_bo_mmap m = {.handle = vram.handle};
	CHECK(vmb_bo_mmap(c, &m));
	failures += memcmp((void *)(uintptr_t)m.ptr, pattern, 8 * MiB) != 0;
	uint64_t v = 0, one = 1;
	CHECK(gpu(c, vc.vm_id, 3 * GiB + 8, &v, 8, false));
	failures += v != pattern[64 * 1024 / 8 + 1];
	failures += gpu(c, vc.vm_id, 3 * GiB, &one, 8, true) != -EACCES;
	CHECK(gpu(c, vc.vm_id, 4 * GiB + 12345, &one, 8, true));
	CHECK(gpu(c, vc.vm_id, 4 * GiB + 12345, &v, 8, false));
	failures += v != 0;
	CHECK(gpu(c, vc.vm_id, 6 * GiB + 4096, &one, 8, true));
	failures += user[512] != 1;
	failures += gpu(c, vc.vm_id, 5 * GiB, &v, 8, false) != -EFAULT;
	printf("\n2. GPU view: 8 MiB written and read back through the page tables, matches the CPU map;\n"
	       "   read-only alias refuses writes (EACCES), sparse range reads 0 and drops writes,\n"
	       "   userptr writes land in application memory, an unmapped VA faults (EFAULT): %s\n",
	       failures ? "FAILED" : "ok");

	/* partial unbind: a hole in a 2 MiB page, half the sparse range, a middle piece of the system BO */
	struct vmb_bind_op unb[] = {
		{.op = VMB_BIND_OP_UNMAP, .addr = 1 * GiB + 2 * MiB + 64 * 1024, .range = 4096},
		{.op = VMB_BIND_OP_UNMAP, .addr = 4 * GiB + 512 * MiB, .range = 512 * MiB},
		{.op = VMB_BIND_OP_UNMAP, .addr = 2 * GiB + 512 * 1024, .range = 64 * 1024},
	};
	CHECK(bind(c, vc.vm_id, unb, 3));
	CHECK(gpu(c, vc.vm_id, 1 * GiB + 2 * MiB + 64 * 1024 + 4096, &v, 8, false));
	failures += v != pattern[(2 * MiB + 64 * 1024 + 4096) / 8];
	failures += gpu(c, vc.vm_id, 1 * GiB + 2 * MiB + 64 * 1024, &v, 8, false) != -EFAULT;
	printf("\n3. partial unbind (a 4 KiB hole in a 2 MiB page, half the sparse range, 64 KiB of the\n"
	       "   system BO): the huge pages split using page tables reserved at map time:\n");
	print_layout(c, vc.vm_id);

	/* move the VRAM BO to system memory: contents and every mapping follow */
	struct vmb_bind_op pre = {.op = VMB_BIND_OP_PREFETCH, .addr = 1 * GiB, .range = 8 * MiB,
				  .region = VMB_REGION_SYSTEM};
	CHECK(bind(c, vc.vm_id, &pre, 1));
	/* read around the hole: [0, hole) and (hole, 8 MiB) */
	uint64_t hole = 2 * MiB + 64 * 1024;
	CHECK(gpu(c, vc.vm_id, 1 * GiB, back, hole, false));
	CHECK(gpu(c, vc.vm_id, 1 * GiB + hole + 4096, back + (hole + 4096) / 8, 8 * MiB - hole - 4096, false));
	failures += memcmp(back, pattern, hole) != 0;
	failures += memcmp(back + (hole + 4096) / 8, pattern + (hole + 4096) / 8, 8 * MiB - hole - 4096) != 0;
	printf("\n4. PREFETCH of the VRAM BO to SYSTEM: contents preserved, mappings re-pointed:\n");
	print_layout(c, vc.vm_id);

	struct vmb_client_validate val = {0};
	int verr = vmb_client_validate(c, &val);
	failures += verr != 0;
	printf("\n5. consistency check of VA trees, page tables and allocators: %s\n", verr ? "FAILED" : "ok");
	vmb_client_close(c);
	munmap(user, 2 * MiB);
	free(pattern);
	free(back);
	printf("\ndemo %s\n", failures ? "FAILED" : "passed");
	return failures ? 1 : 0;
}
