/* SPDX-License-Identifier: MIT */
/*
 * `vmbind bench evict [--json] [--quick]`: bind + exec throughput under VRAM overcommit (issue
 * 13, Performance). NVM non-LR vms, each binding an equal share of a working set of VRAM-only
 * BOs of 2 MiB, the working set at 0.5x, 1x, 1.5x and 2x VRAM. A step on one vm: an
 * asynchronous bind (UNMAP + MAP of one of its BOs, in turn) and an exec that waits for it and
 * fills 64 KiB of each of the vm's BOs; the step ends when the exec's out-fence signals. The vms
 * take steps in turn, so past 1x VRAM each step's bind and exec bring the vm's BOs back (restore)
 * and evict other vms' idle ones. Side by side: the same workload on a device whose VRAM holds
 * it all ("fits"). Reported: steps per second both ways and their ratio, the bytes moved (evicted
 * + restored) per exec, and the eviction copy bandwidth: the bytes of every eviction and restore
 * job (the device trace, VMB_TRACE_EVICT records) over the time from their dependencies
 * signalled to their fence, against memcpy() of the same number of 2 MiB BOs in the same run
 * (goal >= 0.7x). The soft device's copy moves no bytes (a BO's backings share its pages: see
 * src/dev/device.h), so its "bandwidth" is that of the eviction machinery (the copy engine's
 * hand-off, the commit re-pointing page tables, the worker hops), not of a DMA engine.
 */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <vmbind/bind.h>
#include <vmbind/bo.h>
#include <vmbind/client.h>
#include <vmbind/cmd.h>
#include <vmbind/debug.h>
#include <vmbind/queue.h>
#include <vmbind/sync.h>
#include <vmbind/vm.h>

#include "bench-util.h"
#include "cli.h"

#define NVM 8
#define BO_SIZE (2ull << 20)
#define TOUCH (64ull << 10) /* bytes each exec fills in each BO */
#define MAX_PER 32
#define VA_BASE (1ull << 32)
#define CMD_VA (1ull << 40)
#define NCASES 4

static const double factors[NCASES] = {0.5, 1.0, 1.5, 2.0};

struct wl {
	struct vmb_client *c;
	unsigned int per; /* BOs per vm */
	uint32_t vm[NVM], eq[NVM], cmd_bo[NVM], sb[NVM], sx[NVM], bo[NVM][MAX_PER];
	uint64_t *cmd[NVM];
	unsigned int turn[NVM];
};

struct side {
	bool ok;
	double steps_per_s;
	uint64_t steps, evicted_bytes, restores, moves, move_ns;
};

static int check(int r, const char *what)
{
	if (r)
		fprintf(stderr, "bench evict: %s: %s\n", what, strerror(-r));
	return r;
}

static int region_counts(struct vmb_client *c, uint64_t *evicted_bytes, uint64_t *restores)
{
	struct vmb_region_query q = {.region = VMB_REGION_VRAM};
	int r = vmb_region_query(c, &q);
	*evicted_bytes = q.evicted_bytes;
	*restores = q.restores;
	return r;
}

static int wl_setup(struct wl *w, const char *dev, uint64_t vram, unsigned int per)
{
	struct vmb_client_opts o = {.vram_size = vram, .system_size = 1ull << 30};
	int r;
	memset(w, 0, sizeof(*w));
	w->per = per;
	if ((r = vmb_client_open(dev, &o, &w->c)))
		return check(r, "client open");
	for (int v = 0; v < NVM; v++) {
		struct vmb_vm_create vc = {0};
		if ((r = check(vmb_vm_create(w->c, &vc), "vm create")))
			return r;
		w->vm[v] = vc.vm_id;
		struct vmb_exec_queue_create qc = {.vm_id = w->vm[v], .engine = {.engine_class = VMB_ENGINE_CLASS_COMPUTE}};
		if ((r = check(vmb_exec_queue_create(w->c, &qc), "exec queue")))
			return r;
		w->eq[v] = qc.exec_queue_id;
		struct vmb_syncobj_create sc = {0};
		if ((r = check(vmb_syncobj_create(w->c, &sc), "syncobj")))
			return r;
		w->sb[v] = sc.handle;
		sc = (struct vmb_syncobj_create){0};
		if ((r = check(vmb_syncobj_create(w->c, &sc), "syncobj")))
			return r;
		w->sx[v] = sc.handle;
		struct vmb_bo_create bc = {.size = BO_SIZE, .placements = VMB_PLACE_SYSTEM};
		if ((r = check(vmb_bo_create(w->c, &bc), "cmd bo")))
			return r;
		w->cmd_bo[v] = bc.handle;
		struct vmb_bo_mmap m = {.handle = bc.handle};
		if ((r = check(vmb_bo_mmap(w->c, &m), "cmd mmap")))
			return r;
		w->cmd[v] = (uint64_t *)(uintptr_t)m.ptr;
		struct vmb_bind_op op = {.op = VMB_BIND_OP_MAP, .bo_handle = bc.handle, .addr = CMD_VA, .range = BO_SIZE,
					 .flags = VMB_BIND_FLAG_READONLY};
		struct vmb_vm_bind b = {.vm_id = w->vm[v], .num_binds = 1, .binds = (uint64_t)(uintptr_t)&op};
		if ((r = check(vmb_vm_bind(w->c, &b), "cmd bind")))
			return r;
		uint32_t k = 0;
		for (unsigned int i = 0; i < per; i++) {
			bc = (struct vmb_bo_create){.size = BO_SIZE, .placements = VMB_PLACE_VRAM};
			if ((r = check(vmb_bo_create(w->c, &bc), "bo")))
				return r;
			w->bo[v][i] = bc.handle;
			op = (struct vmb_bind_op){.op = VMB_BIND_OP_MAP, .bo_handle = bc.handle, .addr = VA_BASE + i * BO_SIZE,
						  .range = BO_SIZE};
			if ((r = check(vmb_vm_bind(w->c, &b), "bind")))
				return r;
			vmb_cmd_fill(w->cmd[v], &k, VA_BASE + i * BO_SIZE, TOUCH, 0x5a5a0000u | i);
		}
		vmb_cmd_end(w->cmd[v], &k);
	}
	return 0;
}

/* One step on vm @v: UNMAP + MAP of its next BO (asynchronous), an exec behind it, waited for. */
static int wl_step(struct wl *w, int v)
{
	unsigned int i = w->turn[v]++ % w->per;
	uint64_t va = VA_BASE + i * BO_SIZE;
	struct vmb_bind_op ops[2] = {{.op = VMB_BIND_OP_UNMAP, .addr = va, .range = BO_SIZE},
				     {.op = VMB_BIND_OP_MAP, .bo_handle = w->bo[v][i], .addr = va, .range = BO_SIZE}};
	struct vmb_sync so = {.type = VMB_SYNC_SYNCOBJ, .flags = VMB_SYNC_FLAG_SIGNAL, .handle = w->sb[v]};
	struct vmb_vm_bind b = {.vm_id = w->vm[v], .flags = VMB_VM_BIND_FLAG_ASYNC, .num_binds = 2,
				.binds = (uint64_t)(uintptr_t)ops, .num_syncs = 1, .syncs = (uint64_t)(uintptr_t)&so};
	int r = vmb_vm_bind(w->c, &b);
	if (r)
		return check(r, "step bind");
	struct vmb_sync xs[2] = {{.type = VMB_SYNC_SYNCOBJ, .handle = w->sb[v]},
				 {.type = VMB_SYNC_SYNCOBJ, .flags = VMB_SYNC_FLAG_SIGNAL, .handle = w->sx[v]}};
	struct vmb_exec e = {.exec_queue_id = w->eq[v], .address = CMD_VA, .num_syncs = 2, .syncs = (uint64_t)(uintptr_t)xs};
	if ((r = vmb_exec(w->c, &e)))
		return check(r, "step exec");
	struct vmb_syncobj_wait sw = {.handles = (uint64_t)(uintptr_t)&w->sx[v], .count = 1,
				      .timeout_ns = 10ll * 1000000000, .flags = VMB_SYNCOBJ_WAIT_RELATIVE};
	return check(vmb_syncobj_wait(w->c, &sw), "step wait");
}

/* The eviction and restore jobs' bytes and time, from the trace. */
static void trace_moves(struct vmb_client *c, struct side *s)
{
	enum { N = 4096 };
	struct vmb_trace_event *ev = malloc(N * sizeof(*ev));
	for (;;) {
		struct vmb_trace_read rd = {.events = (uint64_t)(uintptr_t)ev, .num_events = N};
		if (vmb_trace_read(c, &rd) || !rd.num_events)
			break;
		for (uint32_t i = 0; i < rd.num_events; i++)
			if (ev[i].kind == VMB_TRACE_EVICT && !ev[i].error) {
				s->moves++;
				s->move_ns += ev[i].end_ns - ev[i].ready_ns;
			}
	}
	free(ev);
}

static int run_side(const char *dev, uint64_t vram, unsigned int per, unsigned int passes, struct side *s)
{
	struct wl w;
	int r = wl_setup(&w, dev, vram, per);
	for (int v = 0; v < NVM && !r; v++) /* warm-up: every vm once */
		r = wl_step(&w, v);
	uint64_t eb0 = 0, rs0 = 0, eb1 = 0, rs1 = 0;
	struct vmb_trace_start ts = {.capacity = 1u << 16};
	if (!r)
		r = check(vmb_trace_start(w.c, &ts), "trace start");
	if (!r)
		r = region_counts(w.c, &eb0, &rs0);
	uint64_t t0 = now_ns();
	for (unsigned int p = 0; p < passes && !r; p++)
		for (int v = 0; v < NVM && !r; v++, s->steps++)
			r = wl_step(&w, v);
	uint64_t t1 = now_ns();
	if (!r)
		r = region_counts(w.c, &eb1, &rs1);
	if (!r) {
		trace_moves(w.c, s);
		s->ok = true;
		s->steps_per_s = (double)s->steps / ((double)(t1 - t0) / 1e9);
		s->evicted_bytes = eb1 - eb0;
		s->restores = rs1 - rs0;
	}
	if (w.c)
		vmb_client_close(w.c);
	return r;
}

/* memcpy() of @n BOs of 2 MiB between two buffers: ns (the best of 3). */
static double memcpy_ns(uint64_t n)
{
	char *a = malloc(BO_SIZE), *b = malloc(BO_SIZE);
	memset(a, 1, BO_SIZE);
	memset(b, 2, BO_SIZE);
	double best = INFINITY;
	for (int k = 0; k < 3; k++) {
		uint64_t t0 = now_ns();
		for (uint64_t i = 0; i < n; i++) {
			memcpy(i & 1 ? a : b, i & 1 ? b : a, BO_SIZE);
			__asm__ volatile("" ::: "memory");
		}
		double t = (double)(now_ns() - t0);
		if (t < best)
			best = t;
	}
	free(a);
	free(b);
	return best;
}

int cmd_bench_evict(bool json, bool quick)
{
	uint64_t vram = quick ? 32ull << 20 : 64ull << 20;
	unsigned int passes = quick ? 2 : 8;
	struct side over[NCASES] = {{0}}, fit[NCASES] = {{0}};
	double gbps[NCASES] = {0}, mgbps[NCASES] = {0};
	int err = 0;
	char name[32];

	for (int i = 0; i < NCASES && !err; i++) {
		uint64_t ws = (uint64_t)(factors[i] * (double)vram);
		unsigned int per = (unsigned int)(ws / BO_SIZE / NVM);
		if (per < 1)
			per = 1;
		if (per > MAX_PER)
			per = MAX_PER;
		fprintf(stderr, "bench evict: working set %.1fx VRAM (%u BOs of 2 MiB per vm, %d vms)\n", factors[i], per, NVM);
		snprintf(name, sizeof(name), "soft:%d", 40 + 2 * i);
		err = run_side(name, vram, per, passes, &over[i]);
		snprintf(name, sizeof(name), "soft:%d", 41 + 2 * i);
		if (!err)
			err = run_side(name, 4 * vram, per, passes, &fit[i]);
		uint64_t bytes = over[i].evicted_bytes + over[i].restores * BO_SIZE;
		if (!err && over[i].moves && over[i].move_ns) {
			gbps[i] = (double)bytes / (double)over[i].move_ns;
			mgbps[i] = (double)bytes / memcpy_ns(bytes / BO_SIZE);
		}
	}
	if (err)
		return 1;
	if (json) {
		printf("{\"bench\":\"evict\",\"quick\":%s,", quick ? "true" : "false");
		bench_json_machine();
		printf("\"vram_bytes\":%llu,\"vms\":%d,\"bo_bytes\":%llu,\"cases\":[", (unsigned long long)vram, NVM,
		       (unsigned long long)BO_SIZE);
		for (int i = 0; i < NCASES; i++) {
			struct side *o = &over[i], *f = &fit[i];
			printf("%s{\"working_set\":%.1f,\"steps_per_s\":", i ? "," : "", factors[i]);
			json_num(o->steps_per_s);
			printf(",\"fits_steps_per_s\":");
			json_num(f->steps_per_s);
			printf(",\"ratio\":");
			json_num(o->steps_per_s / f->steps_per_s);
			printf(",\"bytes_moved_per_exec\":");
			json_num((double)(o->evicted_bytes + o->restores * BO_SIZE) / (double)o->steps);
			printf(",\"move_jobs\":%llu,\"move_gb_per_s\":", (unsigned long long)o->moves);
			json_num(o->moves ? gbps[i] : NAN);
			printf(",\"memcpy_gb_per_s\":");
			json_num(o->moves ? mgbps[i] : NAN);
			printf(",\"move_vs_memcpy\":");
			json_num(o->moves ? gbps[i] / mgbps[i] : NAN);
			printf("}");
		}
		printf("]}\n");
		return 0;
	}
	bench_print_machine();
	printf("VRAM %llu MiB, %d non-LR vms, VRAM-only BOs of 2 MiB; a step: async UNMAP+MAP of one BO, an exec\n"
	       "behind it filling 64 KiB of each of the vm's BOs, waited for; vms in turn, %u passes\n\n",
	       (unsigned long long)(vram >> 20), NVM, passes);
	printf("%-8s %12s %12s %7s %14s %8s %12s %12s %8s\n", "set/VRAM", "steps/s", "fits steps/s", "ratio", "moved/exec",
	       "moves", "move GB/s", "memcpy GB/s", "vs cpy");
	bool goal = true;
	for (int i = 0; i < NCASES; i++) {
		struct side *o = &over[i], *f = &fit[i];
		char a[32], b[32];
		double moved = (double)(o->evicted_bytes + o->restores * BO_SIZE) / (double)o->steps;
		char fx[16];
		snprintf(fx, sizeof(fx), "%.1fx", factors[i]);
		printf("%-8s %12s %12s %6.2fx %10.2f MiB %8llu", fx, fmt_rate(o->steps_per_s, a, sizeof(a)),
		       fmt_rate(f->steps_per_s, b, sizeof(b)), o->steps_per_s / f->steps_per_s, moved / (1 << 20),
		       (unsigned long long)o->moves);
		if (o->moves) {
			printf(" %12.2f %12.2f %7.2fx\n", gbps[i], mgbps[i], gbps[i] / mgbps[i]);
			goal &= gbps[i] / mgbps[i] >= 0.7;
		} else {
			printf(" %12s %12s %8s\n", "-", "-", "-");
		}
	}
	printf("\ngoal: eviction copy bandwidth >= 0.7x memcpy of the same bytes: %s\n", goal ? "met" : "missed");
	printf("(the soft device's copy moves no bytes: its bandwidth is the eviction machinery's)\n");
	return 0;
}
