/* SPDX-License-Identifier: MIT */
/*
 * Benchmarks: `vmbind bench va [--json] [--quick]` and `vmbind bench pt [--json] [--quick]`
 * (bench bind: bench-bind.c; bench pipeline: demo-kv.c; bench handles: bench-handles.c).
 * Each measures our code and a peer side by side in the same run and prints the ratio; results
 * and their analysis are in docs/PERFORMANCE.md.
 *
 * bench va: random map / unmap / remap of 1-8 pages of 4 KiB with N live mappings. One
 *   pre-generated list of operations is replayed by three sides:
 *     - the VA manager alone: plan + apply + fini on a struct vmb_va_tree (src/vm/va.h);
 *     - the public path: one vmb_vm_bind() with one MAP or UNMAP per operation, on the soft
 *       device (validation, planning, page-table prepare and commit, clean-up);
 *     - the Linux kernel: mmap(MAP_FIXED) of anonymous memory inside a PROT_NONE reservation
 *       (map: PROT_READ|PROT_WRITE; unmap: PROT_NONE again, which keeps the reservation);
 *     - the Linux kernel, plainly (issue 16: the faster peer): unmap is munmap(), map is
 *       mmap(MAP_FIXED_NOREPLACE) into the hole, remap is mmap(MAP_FIXED) over the mapping; no
 *       reservation, so the kernel never splits or merges a PROT_NONE area.
 *   The goals are stated against the faster kernel peer at each N.
 *   Mappings live in slots of 16 pages (the mapping at the slot's start, at most 8 pages), so
 *   neighbours never touch and nothing merges; there are 2N slots, half of them mapped.
 *   Each side runs in a process of its own (the plain kernel peer's hole stays a hole, and no
 *   side's memory is in another's mm). Each first builds the N mappings (untimed); then the
 *   sides take R rounds (VA_ROUNDS) in turn, the first side rotating from round to round (ours,
 *   kernel, kernel munmap, ours, ...). In a round a side runs M/R operations timed in batches of
 *   BATCH (the op rate: per-operation clock reads would cost a large part of a VA-manager
 *   operation), then M/R more timed one by one (latency percentiles per kind; these include one
 *   clock_gettime() pair, whose cost is printed). Every figure of a side is the median of its
 *   rounds' (min..max printed), and the goals are computed from the medians: a slow spell of
 *   the machine spoils a round of one side, not the side or the goal.
 *   The kernel side needs two VMAs per mapping (the mapping and the PROT_NONE gap after it): when
 *   vm.max_map_count is too low it is raised for that run (root) and put back, else the kernel
 *   column reads "n/a (max_map_count)".
 *
 * bench pt: MAP then UNMAP of a 1 GiB VRAM BO (one 1 GiB buddy block) in vms whose leaves are
 *   limited to 4 KiB, to 4 KiB-64 KiB, to 4 KiB-2 MiB, or may be any size (a 1 GiB leaf), through
 *   vmb_vm_bind() and through the internal page-table API (vmb_pt_prepare/commit/prep_release)
 *   on a pool of its own; the leaf entries written are compared with a plain loop storing as
 *   many bytes as the tables (leaf entries and an entry per table below the root), a page's
 *   worth at a time, into a buffer as large as the page tables (issue 16: the same bytes in the
 *   same footprint). Page-table memory is read from vmb_vm_stats after a 1 GiB MAP.
 *
 * Progress goes to stderr; results (a table, or one JSON object with --json) to stdout. The exit
 * status is 1 only if a side fails; a missed goal is a result.
 */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench-util.h"
#include "cli.h"
#include "dev/soft/pt.h"
#include "vm/va.h"

#define KiB (1ull << 10)
#define MiB (1ull << 20)
#define GiB (1ull << 30)
#define PAGE 4096ull

/* bench va */
#define SLOT_PAGES 16u
#define SLOT_BYTES (SLOT_PAGES * PAGE)
#define MAX_PAGES 8u
#define BATCH 16u
#define VA_BASE GiB /* GPU VA of slot 0 */
#define BO_BYTES (64 * MiB)
#define BO_PAGES ((uint32_t)(BO_BYTES / PAGE))
#define SEED 0x76d6b696e64ull
#define MAX_ROWS 4
#define VA_ROUNDS 5        /* rounds per N (VMB_BENCH_VA_ROUNDS); --quick: 3 */
#define VA_MAX_ROUNDS 15
#define VA_WARM_DIV 8      /* a round starts with (ops a phase) / 8 untimed ops */
#define KERNEL_MAP_COUNT 2200000ul /* enough for 2 VMAs per mapping at N = 10^6 */
#define KSLAB_MIN_LIVE 10000u

/* bench pt */
#define PT_VA (4 * GiB) /* 1 GiB aligned */
#define PT_CASES 4

struct opts {
	bool json, quick;
};

/* ---- clock, random numbers, statistics --------------------------------------------------- */


/* Keeps the compiler from dropping stores to memory nobody reads. */
static void clobber(void *p)
{
#if defined(__GNUC__)
	__asm__ __volatile__("" : : "r"(p) : "memory");
#else
	volatile char sink = *(volatile char *)p;
	(void)sink;
#endif
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return (x > y) - (x < y);
}


/* @q-quantile (0..1) of @n samples, sorted in place; NaN when there are none. */
static double quantile_u32(uint32_t *v, size_t n, double q)
{
	if (!n)
		return NAN;
	qsort(v, n, sizeof(*v), cmp_u32);
	return v[(size_t)(q * (double)(n - 1) + 0.5)];
}



struct rng {
	uint64_t s;
};

/* splitmix64 */
static uint64_t rng_next(struct rng *r)
{
	uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Uniform in [0, n), n > 0. */
static uint32_t rng_below(struct rng *r, uint32_t n)
{
	return (uint32_t)(((rng_next(r) >> 32) * n) >> 32);
}

/* ---- output helpers ---------------------------------------------------------------------- */




static const char *verdict(bool met)
{
	return met ? "met" : "MISSED";
}

/* ---- bench va: the workload -------------------------------------------------------------- */

enum { K_MAP, K_UNMAP, K_REMAP, K_KINDS, K_ALL = K_KINDS };
static const char *const kind_name[K_KINDS + 1] = {"map", "unmap", "remap", "all"};

struct wop {
	uint32_t slot;
	uint8_t kind;     /* K_* */
	uint8_t pages;    /* MAP, REMAP: size of the new mapping; UNMAP: size of the one removed */
	uint16_t pad;
	uint32_t bo_page; /* MAP, REMAP: BO offset in pages */
};

struct workload {
	size_t live, slots, m;
	struct wop *pop; /* `live` MAPs that build the starting state (untimed) */
	struct wop *ops; /* m: the rounds' warm-up, rate and latency phases, in order */
	size_t kinds[K_KINDS];
	size_t live_end;
	double mean_pages; /* of the mappings live at the end */
};

/* Which slots are mapped: list[0, nmapped) are, list[nmapped, n) are free; pos inverts list. */
struct slotset {
	uint32_t *list, *pos, *bo_page;
	uint8_t *pages;
	size_t n, nmapped;
};

static void slot_swap(struct slotset *s, size_t a, size_t b)
{
	uint32_t x = s->list[a], y = s->list[b];
	s->list[a] = y;
	s->pos[y] = (uint32_t)a;
	s->list[b] = x;
	s->pos[x] = (uint32_t)b;
}

static void gen_map(struct slotset *s, struct rng *r, struct wop *o)
{
	size_t i = s->nmapped + rng_below(r, (uint32_t)(s->n - s->nmapped));
	slot_swap(s, i, s->nmapped);
	uint32_t slot = s->list[s->nmapped++];
	uint8_t pages = (uint8_t)(1 + rng_below(r, MAX_PAGES));
	*o = (struct wop){.slot = slot, .kind = K_MAP, .pages = pages,
			  .bo_page = rng_below(r, BO_PAGES - pages + 1)};
	s->pages[slot] = pages;
	s->bo_page[slot] = o->bo_page;
}

static void gen_unmap(struct slotset *s, struct rng *r, struct wop *o)
{
	uint32_t slot = s->list[rng_below(r, (uint32_t)s->nmapped)];
	*o = (struct wop){.slot = slot, .kind = K_UNMAP, .pages = s->pages[slot]};
	slot_swap(s, s->pos[slot], s->nmapped - 1);
	s->nmapped--;
	s->pages[slot] = 0;
}

/* Map over a live mapping: a new BO offset and a size at least the old one (so it is replaced
 * whole: the live count stays exact on every side, and the kernel merges nothing). */
static void gen_remap(struct slotset *s, struct rng *r, struct wop *o)
{
	uint32_t slot = s->list[rng_below(r, (uint32_t)s->nmapped)];
	uint8_t old = s->pages[slot];
	uint8_t pages = (uint8_t)(old + rng_below(r, MAX_PAGES - old + 1));
	uint32_t choices = BO_PAGES - pages + 1, bo = rng_below(r, choices);
	if (pages == old && bo == s->bo_page[slot])
		bo = (bo + 1) % choices; /* an identical map would be a no-op */
	*o = (struct wop){.slot = slot, .kind = K_REMAP, .pages = pages, .bo_page = bo};
	s->pages[slot] = pages;
	s->bo_page[slot] = bo;
}

static void slotset_free(struct slotset *s)
{
	free(s->list);
	free(s->pos);
	free(s->bo_page);
	free(s->pages);
}

static void workload_free(struct workload *w)
{
	free(w->pop);
	free(w->ops);
	memset(w, 0, sizeof(*w));
}

/*
 * @live mappings in 2 * @live slots, then @m operations that keep the count at live +- 1:
 * above it unmap, below it map, at it map, unmap or remap with equal odds (so about 40% maps,
 * 40% unmaps, 20% remaps).
 */
static int workload_make(struct workload *w, size_t live, size_t m, uint64_t seed)
{
	struct slotset s = {.n = 2 * live};
	struct rng r = {seed};

	memset(w, 0, sizeof(*w));
	w->live = live;
	w->slots = s.n;
	w->m = m;
	s.list = malloc(s.n * sizeof(*s.list));
	s.pos = malloc(s.n * sizeof(*s.pos));
	s.bo_page = calloc(s.n, sizeof(*s.bo_page));
	s.pages = calloc(s.n, sizeof(*s.pages));
	w->pop = malloc(live * sizeof(*w->pop));
	w->ops = malloc(m * sizeof(*w->ops));
	if (!s.list || !s.pos || !s.bo_page || !s.pages || !w->pop || !w->ops) {
		slotset_free(&s);
		workload_free(w);
		return -ENOMEM;
	}
	for (size_t i = 0; i < s.n; i++)
		s.list[i] = s.pos[i] = (uint32_t)i;
	for (size_t i = 0; i < live; i++)
		gen_map(&s, &r, &w->pop[i]);
	for (size_t i = 0; i < m; i++) {
		struct wop *o = &w->ops[i];
		if (s.nmapped > live) {
			gen_unmap(&s, &r, o);
		} else if (s.nmapped < live) {
			gen_map(&s, &r, o);
		} else {
			switch (rng_below(&r, 3)) {
			case 0: gen_map(&s, &r, o); break;
			case 1: gen_unmap(&s, &r, o); break;
			default: gen_remap(&s, &r, o); break;
			}
		}
		w->kinds[o->kind]++;
	}
	uint64_t pages = 0;
	for (size_t i = 0; i < s.nmapped; i++)
		pages += s.pages[s.list[i]];
	w->live_end = s.nmapped;
	w->mean_pages = s.nmapped ? (double)pages / (double)s.nmapped : 0;
	slotset_free(&s);
	return 0;
}

/* ---- bench va: running one side ---------------------------------------------------------- */

struct side {
	const char *name;
	int (*op)(void *ctx, const struct wop *o); /* 0 or a negative errno */
	void *ctx;
};

struct lat {
	double p50, p99;
};

/*
 * One side's result: for one round (side_phase), or over all rounds (va_aggregate: each figure
 * the median of the rounds', with the rounds' op rates and all-ops p50s kept for min..max).
 */
struct side_res {
	bool ok;
	char why[96];  /* when !ok */
	double ops_per_s, ns_per_op, populate_s;
	struct lat lat[K_KINDS + 1];
	unsigned int rounds;                  /* aggregated over */
	double round_ops_per_s[VA_MAX_ROUNDS];
	double round_p50[VA_MAX_ROUNDS];      /* all ops */
};

/* Per-kind buffers for the latency phase. */
struct latbuf {
	uint32_t *v[K_KINDS + 1];
	size_t n[K_KINDS + 1];
};

static int latbuf_init(struct latbuf *b, size_t m)
{
	memset(b, 0, sizeof(*b));
	for (int k = 0; k <= K_KINDS; k++)
		if (!(b->v[k] = malloc(m * sizeof(uint32_t))))
			return -ENOMEM;
	return 0;
}

static void latbuf_fini(struct latbuf *b)
{
	for (int k = 0; k <= K_KINDS; k++)
		free(b->v[k]);
}

static void side_fail(struct side_res *r, const char *phase, int err)
{
	r->ok = false;
	snprintf(r->why, sizeof(r->why), "failed in %s: %s", phase, strerror(-err));
}

/* The untimed build-up of the N mappings (wall time in populate_s). */
static void side_populate(const struct side *s, const struct workload *w, struct side_res *r)
{
	uint64_t t0 = now_ns();
	int err;

	memset(r, 0, sizeof(*r));
	for (size_t i = 0; i < w->live; i++)
		if ((err = s->op(s->ctx, &w->pop[i]))) {
			side_fail(r, "populate", err);
			return;
		}
	r->populate_s = (double)(now_ns() - t0) / 1e9;
	r->ok = true;
}

/*
 * One round: ops[@lo, @lo + @warm) untimed (a side resumes on caches the other sides used: these
 * bring its own lines back), ops[lo, lo + @c) (lo past the warm-up) timed in batches of BATCH
 * (the op rate), then ops[lo + @c, lo + 2 @c) timed one by one (latency per kind). Every side
 * replays the same ops in order.
 */
static void side_phase(const struct side *s, const struct workload *w, struct latbuf *lb, size_t lo, size_t warm,
		       size_t c, struct side_res *r)
{
	const struct wop *ops = w->ops;
	uint64_t total = 0;
	int err = 0;

	memset(r, 0, sizeof(*r));
	for (size_t i = lo; i < lo + warm && !err; i++)
		err = s->op(s->ctx, &ops[i]);
	if (err) {
		side_fail(r, "the warm-up", err);
		return;
	}
	lo += warm;
	for (size_t i = lo; i < lo + c; i += BATCH) {
		size_t end = i + BATCH < lo + c ? i + BATCH : lo + c;
		uint64_t a = now_ns();
		for (size_t j = i; j < end && !err; j++)
			err = s->op(s->ctx, &ops[j]);
		total += now_ns() - a;
		if (err) {
			side_fail(r, "the rate phase", err);
			return;
		}
	}
	r->ops_per_s = (double)c * 1e9 / (double)total;
	r->ns_per_op = (double)total / (double)c;

	memset(lb->n, 0, sizeof(lb->n));
	for (size_t i = lo + c; i < lo + 2 * c; i++) {
		uint64_t a = now_ns();
		err = s->op(s->ctx, &ops[i]);
		uint64_t d = now_ns() - a;
		if (err) {
			side_fail(r, "the latency phase", err);
			return;
		}
		uint32_t v = d > UINT32_MAX ? UINT32_MAX : (uint32_t)d;
		lb->v[ops[i].kind][lb->n[ops[i].kind]++] = v;
		lb->v[K_ALL][lb->n[K_ALL]++] = v;
	}
	for (int k = 0; k <= K_KINDS; k++) {
		r->lat[k].p50 = quantile_u32(lb->v[k], lb->n[k], 0.50);
		r->lat[k].p99 = quantile_u32(lb->v[k], lb->n[k], 0.99);
	}
	r->ok = true;
}

/* Side 1: the VA manager alone. */
struct va_side {
	struct vmb_va_tree tree;
};

static int va_side_op(void *ctx, const struct wop *o)
{
	struct va_side *v = ctx;
	struct vmb_va_plan p;
	uint64_t start = VA_BASE + (uint64_t)o->slot * SLOT_BYTES, last = start + o->pages * PAGE - 1;
	int err;

	vmb_va_plan_init(&p);
	if (o->kind == K_UNMAP) {
		err = vmb_va_plan_unmap(&v->tree, &p, start, last);
	} else {
		/* any non-NULL pointer stands for the BO: the VA manager never dereferences it */
		struct vmb_va_obj obj = {.bo = v, .offset = (uint64_t)o->bo_page * PAGE};
		err = vmb_va_plan_map(&v->tree, &p, start, last, &obj);
	}
	if (err)
		return err;
	vmb_va_apply(&v->tree, &p);
	vmb_va_plan_fini(&v->tree, &p);
	return 0;
}

/* Side 2: vmb_vm_bind() on the soft device. */
struct bind_side {
	struct vmb_client *c;
	uint32_t vm, bo;
};

static int bind_side_op(void *ctx, const struct wop *o)
{
	struct bind_side *b = ctx;
	struct vmb_bind_op op = {.addr = VA_BASE + (uint64_t)o->slot * SLOT_BYTES, .range = o->pages * PAGE};
	if (o->kind == K_UNMAP) {
		op.op = VMB_BIND_OP_UNMAP;
	} else {
		op.op = VMB_BIND_OP_MAP;
		op.bo_handle = b->bo;
		op.bo_offset = (uint64_t)o->bo_page * PAGE;
	}
	struct vmb_vm_bind args = {.vm_id = b->vm, .num_binds = 1, .binds = (uint64_t)(uintptr_t)&op};
	return vmb_vm_bind(b->c, &args);
}

static int bind_side_open(struct bind_side *b, size_t slots)
{
	/* page tables: one level-0 table per 2 MiB of slots, a level-1 one per GiB; 25% slack */
	uint64_t span = (uint64_t)slots * SLOT_BYTES;
	uint64_t tables = span / (2 * MiB) + span / GiB + 16;
	struct vmb_client_opts o = {.vram_size = 2 * BO_BYTES, .system_size = 64 * MiB,
				    .pt_pool_size = (tables + tables / 4) * PAGE};
	struct vmb_vm_create vc = {0};
	struct vmb_bo_create bc = {.size = BO_BYTES, .placements = VMB_PLACE_VRAM};
	int err = vmb_client_open("soft", &o, &b->c);
	if (err)
		return err;
	if ((err = vmb_vm_create(b->c, &vc)) || (err = vmb_bo_create(b->c, &bc))) {
		vmb_client_close(b->c);
		return err;
	}
	b->vm = vc.vm_id;
	b->bo = bc.handle;
	return 0;
}

/* Side 3: the kernel's mmap on a reservation; side 4 (plain): munmap, and mmap into the hole. */
struct kern_side {
	char *base;
	size_t size;
	bool plain;
};

static int kern_side_op(void *ctx, const struct wop *o)
{
	struct kern_side *k = ctx;
	char *addr = k->base + (size_t)o->slot * SLOT_BYTES;
	size_t len = o->pages * PAGE;
	void *p;
	if (k->plain) {
		/* a careful application: munmap; a map into a hole may not replace anything (the
		 * hole is ours: anything else there is an error, not a silent replacement); a remap
		 * replaces the old mapping in one call */
		if (o->kind == K_UNMAP)
			return munmap(addr, len) ? -errno : 0;
		int fixed = o->kind == K_MAP ? MAP_FIXED_NOREPLACE : MAP_FIXED;
		p = mmap(addr, len, PROT_READ | PROT_WRITE, fixed | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p != MAP_FAILED && p != addr) { /* a kernel without MAP_FIXED_NOREPLACE: a hint */
			munmap(p, len);
			return -EEXIST;
		}
		return p == MAP_FAILED ? -errno : 0;
	}
	if (o->kind == K_UNMAP)
		p = mmap(addr, len, PROT_NONE, MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	else
		p = mmap(addr, len, PROT_READ | PROT_WRITE, MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	return p == MAP_FAILED ? -errno : 0;
}

static bool read_ulong(const char *path, unsigned long *v)
{
	FILE *f = fopen(path, "r");
	bool ok = f && fscanf(f, "%lu", v) == 1;
	if (f)
		fclose(f);
	return ok;
}

static bool write_ulong(const char *path, unsigned long v)
{
	FILE *f = fopen(path, "w");
	if (!f)
		return false;
	bool ok = fprintf(f, "%lu\n", v) > 0;
	return fclose(f) == 0 && ok;
}

#define MAP_COUNT_PATH "/proc/sys/vm/max_map_count"

/* vm.max_map_count: raised for one kernel run if needed (and allowed), then put back. */
struct mapcount {
	unsigned long old;
	bool raised;
};

static bool mapcount_ensure(struct mapcount *mc, unsigned long need)
{
	mc->raised = false;
	if (!read_ulong(MAP_COUNT_PATH, &mc->old))
		return false;
	if (mc->old >= need)
		return true;
	if (!write_ulong(MAP_COUNT_PATH, need > KERNEL_MAP_COUNT ? need : KERNEL_MAP_COUNT))
		return false;
	mc->raised = true;
	return true;
}

static void mapcount_restore(struct mapcount *mc)
{
	if (mc->raised && !write_ulong(MAP_COUNT_PATH, mc->old))
		fprintf(stderr, "bench: could not restore %s to %lu\n", MAP_COUNT_PATH, mc->old);
	mc->raised = false;
}

/* Bytes of kernel slab objects named @name (active objects x object size), from /proc/slabinfo. */
static bool slab_bytes(const char *name, uint64_t *bytes, unsigned long *objsize)
{
	FILE *f = fopen("/proc/slabinfo", "r");
	char line[512];
	bool found = false;
	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f)) {
		char n[64];
		unsigned long active, total, size;
		if (sscanf(line, "%63s %lu %lu %lu", n, &active, &total, &size) == 4 && !strcmp(n, name)) {
			*bytes = (uint64_t)active * size;
			*objsize = size;
			found = true;
		}
	}
	fclose(f);
	return found;
}

struct kslab {
	bool ok;
	uint64_t vma, maple;
	unsigned long vma_size, maple_size;
};

static void kslab_read(struct kslab *k)
{
	k->ok = slab_bytes("vm_area_struct", &k->vma, &k->vma_size) &&
		slab_bytes("maple_node", &k->maple, &k->maple_size);
}

/* ---- bench va: one N, all sides, in rounds ----------------------------------------------- */

struct va_row {
	size_t n, m, slots, live_end; /* m: ops a phase, over all rounds */
	unsigned int rounds;
	size_t warm;                  /* untimed ops at each round's start */
	double mean_pages;
	size_t kinds[K_KINDS];
	struct side_res va, bind, kern;
	struct side_res kern_plain;   /* munmap + mmap(MAP_FIXED_NOREPLACE), no reservation */
	size_t sizeof_va;
	double va_bytes_per_map;      /* VA manager alone: node_bytes / count */
	double vm_va_bytes_per_map;   /* full path: vmb_vm_stats.va_bytes / num_mappings */
	double vm_pt_bytes_per_map;   /* full path: page tables / num_mappings */
	bool kslab_ok;
	double kslab_per_map;         /* vm_area_struct + maple_node growth per live mapping */
	unsigned long vma_objsize;
	bool kern_na;                 /* the kernel run was not possible: max_map_count */
	bool kern_plain_na;
};

/* The faster of the two kernel peers (by op rate), or NULL if neither ran. */
static const struct side_res *kern_best(const struct va_row *r)
{
	if (!r->kern.ok)
		return r->kern_plain.ok ? &r->kern_plain : NULL;
	return r->kern_plain.ok && r->kern_plain.ops_per_s > r->kern.ops_per_s ? &r->kern_plain : &r->kern;
}

enum { S_VA, S_BIND, S_KERN, S_KERN_PLAIN, S_SIDES };
static const char *const side_label[S_SIDES] = {"VA manager", "vm_bind", "kernel mmap", "kernel munmap"};

static struct side_res *row_side(struct va_row *row, int k)
{
	struct side_res *r[S_SIDES] = {&row->va, &row->bind, &row->kern, &row->kern_plain};
	return r[k];
}

/*
 * One side's state, in a process of its own (va_child): the four sides of one N are alive at
 * once and run their rounds in turn, each in its own address space, so that the plain kernel
 * peer's hole stays a hole (nothing the other sides map can land there) and no side's memory
 * counts in another's mm. Setup happens at populate; a side that failed is not run again.
 */
struct side_state {
	int kind;
	struct side s;
	struct va_side va;
	struct bind_side b;
	struct kern_side k;
	void *resv;    /* kernel sides: the reservation (munmap'd at once by the plain peer) */
	bool open;
};

static int state_open(struct side_state *st, const struct workload *w)
{
	switch (st->kind) {
	case S_VA:
		st->s = (struct side){"VA manager", va_side_op, &st->va};
		vmb_va_tree_init(&st->va.tree);
		break;
	case S_BIND: {
		int err = bind_side_open(&st->b, w->slots);
		if (err)
			return err;
		st->s = (struct side){"vm_bind", bind_side_op, &st->b};
		break;
	}
	default:
		st->k = (struct kern_side){.size = w->slots * SLOT_BYTES + SLOT_BYTES, .plain = st->kind == S_KERN_PLAIN};
		st->resv = mmap(NULL, st->k.size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (st->resv == MAP_FAILED)
			return -errno;
		/* 64 KiB aligned, like the GPU side's slots */
		st->k.base = (char *)(((uintptr_t)st->resv + SLOT_BYTES - 1) & ~(uintptr_t)(SLOT_BYTES - 1));
		/* the plain peer: a range reserved, then unmapped, a hole no other mapping takes
		 * (this process maps nothing else while the side runs) */
		if (st->k.plain)
			munmap(st->resv, st->k.size);
		st->s = (struct side){st->k.plain ? "kernel munmap" : "kernel", kern_side_op, &st->k};
		break;
	}
	st->open = true;
	return 0;
}

/* The checks and memory figures at the end, into @row; frees the side. */
static void state_finish(struct side_state *st, const struct workload *w, struct va_row *row)
{
	struct side_res *res = row_side(row, st->kind);
	if (!st->open)
		return;
	if (st->kind == S_VA) {
		struct vmb_va_tree *t = &st->va.tree;
		if (res->ok && (t->count != w->live_end || vmb_va_tree_validate(t))) {
			res->ok = false;
			snprintf(res->why, sizeof(res->why), "tree inconsistent at the end (count %zu)", t->count);
		}
		row->sizeof_va = vmb_va_node_size();
		row->va_bytes_per_map = t->count ? (double)vmb_va_node_bytes(t) / (double)t->count : NAN;
		vmb_va_tree_fini(t);
	} else if (st->kind == S_BIND) {
		struct vmb_vm_stats vs = {.vm_id = st->b.vm};
		if (res->ok && !vmb_vm_query_stats(st->b.c, &vs)) {
			if (vs.num_mappings != w->live_end) {
				res->ok = false;
				snprintf(res->why, sizeof(res->why), "%llu mappings at the end, expected %zu",
					 (unsigned long long)vs.num_mappings, w->live_end);
			}
			row->vm_va_bytes_per_map = (double)vs.va_bytes / (double)vs.num_mappings;
			row->vm_pt_bytes_per_map = (double)vs.pt_bytes / (double)vs.num_mappings;
		}
		/* the full consistency check is O(mapped bytes); it is quick at these sizes */
		struct vmb_client_validate val = {0};
		if (res->ok && w->live <= 100000 && vmb_client_validate(st->b.c, &val)) {
			res->ok = false;
			snprintf(res->why, sizeof(res->why), "vmb_client_validate failed");
		}
		vmb_client_close(st->b.c);
	} else {
		munmap(st->resv, st->k.size);
	}
	st->open = false;
}

/* What the parent asks a side's process; the answer is a struct side_res (populate, a round) or
 * the struct va_row the side filled in (finish). */
enum { CMD_POPULATE, CMD_ROUND, CMD_FINISH };
struct va_cmd {
	int what;
	size_t lo, warm, c;
};

static bool io_all(int fd, void *buf, size_t n, bool wr)
{
	char *p = buf;
	while (n) {
		ssize_t d = wr ? write(fd, p, n) : read(fd, p, n);
		if (d < 0 && errno == EINTR)
			continue;
		if (d <= 0)
			return false;
		p += d;
		n -= (size_t)d;
	}
	return true;
}

static void va_child(int kind, const struct workload *w, size_t c, int in, int out)
{
	struct side_state st = {.kind = kind};
	struct va_row row;
	struct side_res res;
	struct latbuf lb;
	struct va_cmd cmd;
	bool failed = false;
	int err;

	memset(&row, 0, sizeof(row));
	row.vm_va_bytes_per_map = row.vm_pt_bytes_per_map = NAN;
	if (latbuf_init(&lb, c ? c : 1))
		_exit(1);
	while (io_all(in, &cmd, sizeof(cmd), false)) {
		if (cmd.what == CMD_FINISH) {
			state_finish(&st, w, &row);
			io_all(out, &row, sizeof(row), true);
			break;
		}
		if (failed) {
			memset(&res, 0, sizeof(res));
			snprintf(res.why, sizeof(res.why), "failed earlier");
		} else if (cmd.what == CMD_POPULATE) {
			struct kslab before, after;
			if ((err = state_open(&st, w))) {
				memset(&res, 0, sizeof(res));
				side_fail(&res, "setup", err);
			} else {
				kslab_read(&before);
				side_populate(&st.s, w, &res);
				kslab_read(&after);
				/* slab counts move in whole slabs and per-CPU caches: meaningless for a
				 * few mappings */
				if (kind == S_KERN && res.ok && before.ok && after.ok && w->live >= KSLAB_MIN_LIVE) {
					row.kslab_ok = true;
					row.kslab_per_map = ((double)after.vma + (double)after.maple - (double)before.vma -
							     (double)before.maple) / (double)w->live;
					row.vma_objsize = after.vma_size;
				}
			}
		} else {
			side_phase(&st.s, w, &lb, cmd.lo, cmd.warm, cmd.c, &res);
		}
		failed |= !res.ok;
		*row_side(&row, kind) = res; /* the last answer: finish's checks look at ok */
		if (!io_all(out, &res, sizeof(res), true))
			break;
	}
	latbuf_fini(&lb);
	_exit(0);
}

struct va_proc {
	pid_t pid;
	int to, from;
	bool on;   /* runs, and has not failed */
};

static int va_spawn(struct va_proc *p, int kind, const struct workload *w, size_t c)
{
	int a[2], b[2];
	if (pipe(a))
		return -errno;
	if (pipe(b)) {
		int err = -errno;
		close(a[0]);
		close(a[1]);
		return err;
	}
	fflush(stdout);
	fflush(stderr);
	p->pid = fork();
	if (p->pid == 0) {
		close(a[1]);
		close(b[0]);
		va_child(kind, w, c, a[0], b[1]);
	}
	int err = p->pid < 0 ? -errno : 0;
	close(a[0]);
	close(b[1]);
	if (err) {
		close(a[1]);
		close(b[0]);
		return err;
	}
	p->to = a[1];
	p->from = b[0];
	p->on = true;
	return 0;
}

/* Ask @p for @cmd; its answer of @n bytes into @ans. false: the process is gone. */
static bool va_ask(struct va_proc *p, const struct va_cmd *cmd, void *ans, size_t n)
{
	return io_all(p->to, (void *)cmd, sizeof(*cmd), true) && io_all(p->from, ans, n, false);
}

static void va_reap(struct va_proc *p)
{
	close(p->to);
	close(p->from);
	waitpid(p->pid, NULL, 0);
}

/* The medians of @k's rounds [0, n) into @agg (populate_s already there). */
static void va_aggregate(struct side_res *agg, const struct side_res *round, unsigned int n)
{
	double v[VA_MAX_ROUNDS];
	agg->rounds = n;
	for (unsigned int i = 0; i < n; i++) {
		agg->round_ops_per_s[i] = round[i].ops_per_s;
		agg->round_p50[i] = round[i].lat[K_ALL].p50;
	}
	for (unsigned int i = 0; i < n; i++)
		v[i] = round[i].ops_per_s;
	agg->ops_per_s = median_double(v, n);
	agg->ns_per_op = 1e9 / agg->ops_per_s;
	for (int k = 0; k <= K_KINDS; k++) {
		for (unsigned int i = 0; i < n; i++)
			v[i] = round[i].lat[k].p50;
		agg->lat[k].p50 = median_double(v, n);
		for (unsigned int i = 0; i < n; i++)
			v[i] = round[i].lat[k].p99;
		agg->lat[k].p99 = median_double(v, n);
	}
}

/*
 * One N: every side chosen (@want[k]) in a process of its own, populated one after the other,
 * then @rounds rounds of @warm untimed, @c rate and @c latency ops each, the sides in turn within a round and the
 * first side rotating from round to round (ours, kernel, kernel munmap, ours, ...), so that a
 * slow spell of the machine hits one round of a side, not the side. Each figure of a side is the
 * median of its rounds'.
 */
static void va_run_row(const struct workload *w, const bool *want, unsigned int rounds, size_t warm, size_t c,
		       struct va_row *row)
{
	struct va_proc p[S_SIDES] = {0};
	static struct side_res round[S_SIDES][VA_MAX_ROUNDS];
	struct mapcount mc;
	struct va_cmd cmd = {0};

	row->vm_va_bytes_per_map = row->vm_pt_bytes_per_map = NAN;
	/* the reservation peer needs two VMAs per mapping (it and the PROT_NONE gap after it), the
	 * plain one one, plus the process's own; each side's process has its own count */
	bool can[S_SIDES] = {true, true, true, true};
	bool raised = want[S_KERN] || want[S_KERN_PLAIN];
	if (raised && !mapcount_ensure(&mc, 2 * w->live + 65536)) {
		can[S_KERN] = false;
		row->kern_na = want[S_KERN];
		if (!mapcount_ensure(&mc, w->live + 65536)) {
			can[S_KERN_PLAIN] = false;
			row->kern_plain_na = want[S_KERN_PLAIN];
		}
	}
	for (int k = 0; k < S_SIDES; k++) {
		struct side_res *res = row_side(row, k);
		memset(res, 0, sizeof(*res));
		if (!want[k])
			continue;
		if (!can[k]) {
			snprintf(res->why, sizeof(res->why), "n/a (max_map_count)");
			continue;
		}
		int err = va_spawn(&p[k], k, w, c);
		if (err)
			side_fail(res, "fork", err);
	}
	for (int k = 0; k < S_SIDES; k++) {
		if (!p[k].on)
			continue;
		fprintf(stderr, "bench va: N = %zu: %s populate...\n", w->live, side_label[k]);
		cmd.what = CMD_POPULATE;
		if (!va_ask(&p[k], &cmd, row_side(row, k), sizeof(struct side_res)))
			snprintf(row_side(row, k)->why, sizeof(row_side(row, k)->why), "its process died");
		p[k].on = row_side(row, k)->ok;
	}
	for (unsigned int r = 0; r < rounds; r++) {
		fprintf(stderr, "bench va: N = %zu: round %u/%u\n", w->live, r + 1, rounds);
		for (int j = 0; j < S_SIDES; j++) {
			int k = (int)((r + (unsigned int)j) % S_SIDES);
			struct side_res *res = row_side(row, k);
			if (!p[k].on)
				continue;
			cmd = (struct va_cmd){.what = CMD_ROUND, .lo = r * (warm + 2 * c), .warm = warm, .c = c};
			if (!va_ask(&p[k], &cmd, &round[k][r], sizeof(round[k][r])))
				snprintf(round[k][r].why, sizeof(round[k][r].why), "its process died");
			if (!round[k][r].ok) {
				res->ok = false;
				memcpy(res->why, round[k][r].why, sizeof(res->why));
				p[k].on = false;
			}
		}
	}
	for (int k = 0; k < S_SIDES; k++) {
		struct side_res *res = row_side(row, k);
		if (p[k].on)
			va_aggregate(res, round[k], rounds);
		if (!p[k].pid)
			continue;
		/* a failed side's process still frees what it set up */
		struct va_row got;
		bool ok = res->ok;
		cmd.what = CMD_FINISH;
		if (va_ask(&p[k], &cmd, &got, sizeof(got))) {
			struct side_res *g = row_side(&got, k);
			if (ok && !g->ok) {
				res->ok = false;
				memcpy(res->why, g->why, sizeof(res->why));
			}
			if (k == S_VA) {
				row->sizeof_va = got.sizeof_va;
				row->va_bytes_per_map = got.va_bytes_per_map;
			} else if (k == S_BIND) {
				row->vm_va_bytes_per_map = got.vm_va_bytes_per_map;
				row->vm_pt_bytes_per_map = got.vm_pt_bytes_per_map;
			} else if (k == S_KERN) {
				row->kslab_ok = got.kslab_ok && res->ok;
				row->kslab_per_map = got.kslab_per_map;
				row->vma_objsize = got.vma_objsize;
			}
		} else if (ok) {
			res->ok = false;
			snprintf(res->why, sizeof(res->why), "its process died at the end");
		}
		va_reap(&p[k]);
	}
	if (raised)
		mapcount_restore(&mc);
}

static void print_side(const char *name, const struct side_res *r)
{
	char a[32], b[16];
	if (!r->ok) {
		printf("  %-16s %s\n", name, r->why);
		return;
	}
	printf("  %-16s %8s %8s ", name, fmt_rate(r->ops_per_s, a, sizeof(a)), fmt_ns(r->ns_per_op, b, sizeof(b)));
	for (int k = 0; k <= K_KINDS; k++)
		printf("  %6.0f/%-7.0f", r->lat[k].p50, r->lat[k].p99);
	printf(" %6.2f s\n", r->populate_s);
}

static double ratio_of(const struct side_res *a, const struct side_res *b)
{
	return a->ok && b->ok ? a->ops_per_s / b->ops_per_s : NAN;
}

/* Round by round (rounds of one N run close together, side after side), @a's op rate over @b's. */
static unsigned int round_ratios(const struct side_res *a, const struct side_res *b, double *v)
{
	if (!a->ok || !b->ok || a->rounds != b->rounds)
		return 0;
	for (unsigned int i = 0; i < a->rounds; i++)
		v[i] = a->round_ops_per_s[i] / b->round_ops_per_s[i];
	return a->rounds;
}

static void min_max(const double *v, unsigned int n, double *lo, double *hi)
{
	*lo = *hi = n ? v[0] : NAN;
	for (unsigned int i = 1; i < n; i++) {
		*lo = v[i] < *lo ? v[i] : *lo;
		*hi = v[i] > *hi ? v[i] : *hi;
	}
}

static void print_rounds(const struct va_row *r)
{
	const struct side_res *s[] = {&r->va, &r->bind, &r->kern, &r->kern_plain};
	static const char *const name[] = {"VA manager", "vm_bind", "kernel mmap", "kernel munmap"};
	double v[VA_MAX_ROUNDS], lo, hi;
	char a[32], b[32];
	bool any = false;
	printf("  op/s, min..max of the rounds:");
	for (int k = 0; k < 4; k++) {
		if (!s[k]->ok || !s[k]->rounds)
			continue;
		min_max(s[k]->round_ops_per_s, s[k]->rounds, &lo, &hi);
		printf("%s %s %s..%s", any ? "," : "", name[k], fmt_rate(lo, a, sizeof(a)), fmt_rate(hi, b, sizeof(b)));
		any = true;
	}
	printf("\n");
	const struct side_res *best = kern_best(r);
	unsigned int n = best ? round_ratios(&r->bind, best, v) : 0;
	if (n) {
		min_max(v, n, &lo, &hi);
		printf("  vm_bind / faster kernel peer, round by round: %.2fx..%.2fx (median of the op rates: %.2fx)\n", lo,
		       hi, ratio_of(&r->bind, best));
	}
}

static void print_va_row(const struct va_row *r)
{
	char rv[32], rb[32];
	double all = (double)(r->kinds[K_MAP] + r->kinds[K_UNMAP] + r->kinds[K_REMAP]);
	size_t c = r->m / r->rounds;
	printf("N = %zu live mappings: %zu slots of 64 KiB; %u rounds of %zu untimed + %zu + %zu ops (%.0f%% map, "
	       "%.0f%% unmap, %.0f%% remap); mean %.1f pages/mapping\n",
	       r->n, r->slots, r->rounds, r->warm, c, c, 100.0 * (double)r->kinds[K_MAP] / all,
	       100.0 * (double)r->kinds[K_UNMAP] / all, 100.0 * (double)r->kinds[K_REMAP] / all, r->mean_pages);
	printf("  %-16s %8s %8s   %-14s %-14s %-14s %-14s %s\n", "side", "op/s", "ns/op", "map p50/p99", "unmap p50/p99",
	       "remap p50/p99", "all p50/p99", "populate");
	print_side("VA manager", &r->va);
	print_side("vm_bind (full)", &r->bind);
	print_side("kernel mmap", &r->kern);
	print_side("kernel munmap", &r->kern_plain);
	snprintf(rv, sizeof(rv), "%.2fx", ratio_of(&r->va, &r->kern));
	snprintf(rb, sizeof(rb), "%.2fx", ratio_of(&r->bind, &r->kern));
	printf("  ours/kernel mmap (op rate): VA manager %s, vm_bind %s\n", r->kern.ok ? rv : "n/a", r->kern.ok ? rb : "n/a");
	snprintf(rv, sizeof(rv), "%.2fx", ratio_of(&r->va, &r->kern_plain));
	snprintf(rb, sizeof(rb), "%.2fx", ratio_of(&r->bind, &r->kern_plain));
	printf("  ours/kernel munmap (op rate): VA manager %s, vm_bind %s; the faster kernel peer: %s\n",
	       r->kern_plain.ok ? rv : "n/a", r->kern_plain.ok ? rb : "n/a",
	       !kern_best(r) ? "none" : kern_best(r) == &r->kern ? "kernel mmap" : "kernel munmap");
	print_rounds(r);
	printf("  memory per live mapping: VA manager %.1f B (sizeof(struct vmb_va) %zu B); vm_bind vm: VA %.1f B + "
	       "page tables %.1f B",
	       r->va_bytes_per_map, r->sizeof_va, r->vm_va_bytes_per_map, r->vm_pt_bytes_per_map);
	if (r->kslab_ok)
		printf(";\n    kernel: slab growth (vm_area_struct of %lu B + maple_node) %.1f B = 2 VMAs of %.1f B", r->vma_objsize,
		       r->kslab_per_map, r->kslab_per_map / 2);
	printf("\n\n");
}

static void json_side(const char *key, const struct side_res *r)
{
	printf("\"%s\":", key);
	if (!r->ok) {
		printf("{\"error\":\"%s\"}", r->why);
		return;
	}
	printf("{\"ops_per_s\":");
	json_num(r->ops_per_s);
	printf(",\"ns_per_op\":");
	json_num(r->ns_per_op);
	printf(",\"populate_s\":");
	json_num(r->populate_s);
	printf(",\"latency_ns\":{");
	for (int k = 0; k <= K_KINDS; k++) {
		printf("%s\"%s\":{\"p50\":", k ? "," : "", kind_name[k]);
		json_num(r->lat[k].p50);
		printf(",\"p99\":");
		json_num(r->lat[k].p99);
		printf("}");
	}
	printf("},\"rounds\":{\"ops_per_s\":");
	json_num_array(r->round_ops_per_s, r->rounds);
	printf(",\"all_p50\":");
	json_num_array(r->round_p50, r->rounds);
	printf("}}");
}

static void json_round_ratios(const char *key, const struct side_res *a, const struct side_res *b)
{
	double v[VA_MAX_ROUNDS];
	unsigned int n = b ? round_ratios(a, b, v) : 0;
	printf(",\"%s\":", key);
	json_num_array(v, n);
}

static void json_va_row(const struct va_row *r)
{
	printf("{\"n\":%zu,\"slots\":%zu,\"ops\":%zu,\"mix\":{\"map\":%zu,\"unmap\":%zu,\"remap\":%zu},\"mean_pages\":",
	       r->n, r->slots, r->m, r->kinds[K_MAP], r->kinds[K_UNMAP], r->kinds[K_REMAP]);
	json_num(r->mean_pages);
	printf(",");
	json_side("va_manager", &r->va);
	printf(",");
	json_side("vm_bind", &r->bind);
	printf(",");
	json_side("kernel", &r->kern);
	printf(",");
	json_side("kernel_munmap", &r->kern_plain);
	printf(",\"ratio_va_manager_kernel\":");
	json_num(ratio_of(&r->va, &r->kern));
	printf(",\"ratio_vm_bind_kernel\":");
	json_num(ratio_of(&r->bind, &r->kern));
	printf(",\"ratio_va_manager_kernel_munmap\":");
	json_num(ratio_of(&r->va, &r->kern_plain));
	printf(",\"ratio_vm_bind_kernel_munmap\":");
	json_num(ratio_of(&r->bind, &r->kern_plain));
	const struct side_res *best = kern_best(r);
	printf(",\"kernel_faster\":\"%s\",\"ratio_va_manager_kernel_faster\":", !best ? "" : best == &r->kern ? "kernel" : "kernel_munmap");
	json_num(best ? ratio_of(&r->va, best) : NAN);
	printf(",\"ratio_vm_bind_kernel_faster\":");
	json_num(best ? ratio_of(&r->bind, best) : NAN);
	json_round_ratios("ratio_va_manager_kernel_faster_rounds", &r->va, best);
	json_round_ratios("ratio_vm_bind_kernel_faster_rounds", &r->bind, best);
	printf(",\"memory\":{\"sizeof_vmb_va\":%zu,\"va_manager_bytes_per_mapping\":", r->sizeof_va);
	json_num(r->va_bytes_per_map);
	printf(",\"vm_va_bytes_per_mapping\":");
	json_num(r->vm_va_bytes_per_map);
	printf(",\"vm_pt_bytes_per_mapping\":");
	json_num(r->vm_pt_bytes_per_map);
	printf(",\"kernel_slab_bytes_per_mapping\":");
	json_num(r->kslab_ok ? r->kslab_per_map : NAN);
	printf("}}");
}

struct goal {
	const char *what;
	double value, target;
	bool at_most; /* value <= target, else value >= target */
};

static bool goal_met(const struct goal *g)
{
	return !isnan(g->value) && (g->at_most ? g->value <= g->target : g->value >= g->target);
}

static void print_goals(const struct goal *g, size_t n)
{
	printf("goals:\n");
	for (size_t i = 0; i < n; i++) {
		if (isnan(g[i].value))
			printf("  %-62s n/a   (goal %s %g)\n", g[i].what, g[i].at_most ? "<=" : ">=", g[i].target);
		else
			printf("  %-62s %-8.4g (goal %s %g): %s\n", g[i].what, g[i].value, g[i].at_most ? "<=" : ">=",
			       g[i].target, verdict(goal_met(&g[i])));
	}
}

static void json_goals(const struct goal *g, size_t n)
{
	printf("\"goals\":[");
	for (size_t i = 0; i < n; i++) {
		printf("%s{\"goal\":\"%s\",\"value\":", i ? "," : "", g[i].what);
		json_num(g[i].value);
		printf(",\"target\":");
		json_num(g[i].target);
		printf(",\"compare\":\"%s\",\"met\":%s}", g[i].at_most ? "<=" : ">=", goal_met(&g[i]) ? "true" : "false");
	}
	printf("]");
}

static double growth_of(const struct side_res *lo, const struct side_res *hi)
{
	return lo->ok && hi->ok ? hi->ns_per_op / lo->ns_per_op : NAN;
}

static int bench_va(const struct opts *o)
{
	static const size_t full_n[] = {1000, 10000, 100000, 1000000};
	static const size_t quick_n[] = {1000, 10000};
	const size_t *ns = o->quick ? quick_n : full_n;
	size_t rows = o->quick ? 2 : 4, m = o->quick ? 21000 : 200000;
	unsigned int rounds = o->quick ? 3 : VA_ROUNDS;
	/* For profiling one size or one side: VMB_BENCH_VA_N=<N> runs that N alone,
	 * VMB_BENCH_VA_SIDES=va|bind|kernel (comma list) runs those sides alone, and with
	 * VMB_BENCH_VA_N, VMB_BENCH_VA_OPS=<m> times m ops a phase; the goals then mean little.
	 * VMB_BENCH_VA_ROUNDS=<r> (1-15): the m ops of each phase in r rounds (default 5);
	 * VMB_BENCH_VA_WARM=<w>: w untimed ops at each round's start (default m / r / 8). */
	size_t one_n[1];
	const char *env_n = getenv("VMB_BENCH_VA_N"), *env_sides = getenv("VMB_BENCH_VA_SIDES");
	const char *env_r = getenv("VMB_BENCH_VA_ROUNDS");
	if (env_n && *env_n) {
		one_n[0] = strtoull(env_n, NULL, 0);
		if (one_n[0] > 0 && one_n[0] <= 1000000) {
			ns = one_n;
			rows = 1;
		}
		const char *env_m = getenv("VMB_BENCH_VA_OPS"); /* ops per phase (default 200000) */
		if (env_m && strtoull(env_m, NULL, 0) > 0)
			m = strtoull(env_m, NULL, 0);
	}
	if (env_r && strtoul(env_r, NULL, 0) >= 1 && strtoul(env_r, NULL, 0) <= VA_MAX_ROUNDS)
		rounds = (unsigned int)strtoul(env_r, NULL, 0);
	size_t c = m / rounds; /* ops a round, in each of the two phases */
	if (!c)
		c = 1;
	m = c * rounds;
	size_t warm = c / VA_WARM_DIV; /* untimed, at each round's start */
	const char *env_w = getenv("VMB_BENCH_VA_WARM"); /* ops, 0 for none */
	if (env_w && *env_w)
		warm = strtoull(env_w, NULL, 0);
	bool want[S_SIDES] = {!env_sides || strstr(env_sides, "va"), !env_sides || strstr(env_sides, "bind"),
			      !env_sides || strstr(env_sides, "kernel"), !env_sides || strstr(env_sides, "kernel")};
	struct va_row row[MAX_ROWS];
	double overhead = timer_overhead_ns();
	/* a side's process that dies must not take the bench with it (va_ask sees the error) */
	void (*old_pipe)(int) = signal(SIGPIPE, SIG_IGN);

	for (size_t i = 0; i < rows; i++) {
		struct workload w;
		struct va_row *r = &row[i];
		memset(r, 0, sizeof(*r));
		if (workload_make(&w, ns[i], rounds * (warm + 2 * c), SEED + i)) {
			signal(SIGPIPE, old_pipe);
			fprintf(stderr, "bench: out of memory\n");
			return 1;
		}
		r->n = ns[i];
		r->m = m;
		r->rounds = rounds;
		r->warm = warm;
		r->slots = w.slots;
		r->live_end = w.live_end;
		r->mean_pages = w.mean_pages;
		memcpy(r->kinds, w.kinds, sizeof(r->kinds));
		va_run_row(&w, want, rounds, warm, c, r);
		workload_free(&w);
	}
	signal(SIGPIPE, old_pipe);

	/* goals, against the faster kernel peer: the op rate at 10^5 (quick: the largest N) and at
	 * the last N, growth first -> last row, memory */
	const struct va_row *at = &row[rows - 1];
	for (size_t i = 0; i < rows; i++)
		if (row[i].n == 100000)
			at = &row[i];
	const struct va_row *first = &row[0], *last = &row[rows - 1];
	const struct side_res *at_best = kern_best(at), *last_best = kern_best(last);
	char g0[96], g1[96], g2[96], g3[96], g4[96], g5[96];
	snprintf(g0, sizeof(g0), "vm_bind op rate / faster kernel peer's at N = %zu", at->n);
	snprintf(g1, sizeof(g1), "VA manager op rate / faster kernel peer's at N = %zu", at->n);
	snprintf(g5, sizeof(g5), "vm_bind op rate / faster kernel peer's at N = %zu", last->n);
	snprintf(g2, sizeof(g2), "VA manager ns/op growth, N = %zu -> %zu", first->n, last->n);
	snprintf(g3, sizeof(g3), "vm_bind ns/op growth, N = %zu -> %zu", first->n, last->n);
	snprintf(g4, sizeof(g4), "VA manager bytes per live mapping (N = %zu)", last->n);
	struct goal goals[] = {
		{g0, at_best ? ratio_of(&at->bind, at_best) : NAN, 3, false},
		{g1, at_best ? ratio_of(&at->va, at_best) : NAN, 3, false},
		{g5, last_best ? ratio_of(&last->bind, last_best) : NAN, 2, false},
		{g2, growth_of(&first->va, &last->va), 2.5, true},
		{g3, growth_of(&first->bind, &last->bind), 2, true},
		{g4, last->va_bytes_per_map, 128, true},
	};
	size_t ngoals = sizeof(goals) / sizeof(goals[0]);
	double kgrowth = growth_of(&first->kern, &last->kern);
	int status = 0; /* 1 if a side failed; a missed goal is a result, not a failure */
	for (size_t i = 0; i < rows; i++)
		if (!row[i].va.ok || !row[i].bind.ok || (!row[i].kern.ok && !row[i].kern_na) ||
		    (!row[i].kern_plain.ok && !row[i].kern_plain_na))
			status = 1;

	if (o->json) {
		printf("{\"bench\":\"va\",\"quick\":%s,", o->quick ? "true" : "false");
		bench_json_machine();
		printf("\"ops\":%zu,\"rounds\":%u,\"ops_per_round\":%zu,\"warmup_per_round\":%zu,\"batch\":%u,"
		       "\"timer_overhead_ns\":", m, rounds, c, warm, BATCH);
		json_num(overhead);
		printf(",\"slot_bytes\":%llu,\"max_pages\":%u,\"rows\":[", SLOT_BYTES, MAX_PAGES);
		for (size_t i = 0; i < rows; i++) {
			printf("%s", i ? "," : "");
			json_va_row(&row[i]);
		}
		printf("],\"growth\":{\"from\":%zu,\"to\":%zu,\"va_manager\":", first->n, last->n);
		json_num(growth_of(&first->va, &last->va));
		printf(",\"vm_bind\":");
		json_num(growth_of(&first->bind, &last->bind));
		printf(",\"kernel\":");
		json_num(kgrowth);
		printf(",\"kernel_munmap\":");
		json_num(growth_of(&first->kern_plain, &last->kern_plain));
		printf("},");
		json_goals(goals, ngoals);
		printf("}\n");
		return status;
	}

	printf("vmbind bench va%s: random map/unmap/remap of 1-%u pages of 4 KiB, one pre-generated list replayed by\n"
	       "  VA manager     plan + apply + fini on a struct vmb_va_tree (no page tables)\n"
	       "  vm_bind        vmb_vm_bind() with one MAP/UNMAP op, soft device, 64 MiB VRAM BO (4 KiB leaves)\n"
	       "  kernel mmap    mmap(MAP_FIXED) RW / PROT_NONE inside a PROT_NONE reservation\n"
	       "  kernel munmap  munmap / mmap(MAP_FIXED_NOREPLACE) RW into the hole (remap: mmap(MAP_FIXED)), no reservation\n"
	       "Each side runs in a process of its own; after the untimed build-up of the N mappings (populate,\n"
	       "wall time) the sides take %u rounds in turn, the first side rotating. In a round: %zu untimed ops\n"
	       "(the side's lines back in the caches); op/s: %zu ops timed in batches of %u; p50/p99 (ns): %zu more\n"
	       "ops timed one by one, including a clock_gettime() pair of %.0f ns. Every figure is the median of\n"
	       "the rounds'. Goals are against the faster of the two kernel peers (by median op rate).\n",
	       o->quick ? " --quick" : "", MAX_PAGES, rounds, warm, c, BATCH, c, overhead);
	bench_print_machine();
	printf("\n");
	for (size_t i = 0; i < rows; i++)
		print_va_row(&row[i]);
	printf("per-op cost growth, N = %zu -> %zu (ns/op): VA manager %.2fx, vm_bind %.2fx, kernel ", first->n, last->n,
	       growth_of(&first->va, &last->va), growth_of(&first->bind, &last->bind));
	if (isnan(kgrowth))
		printf("n/a");
	else
		printf("%.2fx", kgrowth);
	printf(", kernel munmap %.2fx\n", growth_of(&first->kern_plain, &last->kern_plain));
	printf("memory: the kernel needs a vm_area_struct (~184-200 B) plus maple-tree nodes per VMA, and here two\n"
	       "VMAs per mapping (the mapping and the PROT_NONE gap before the next one).\n\n");
	print_goals(goals, ngoals);
	if (o->quick)
		printf("(--quick: a smoke run; the goals are meant for N = 10^5 and 10^3 -> 10^6)\n");
	return status;
}

/* ---- bench pt ------------------------------------------------------------------------------ */

struct pt_case {
	const char *name;    /* the leaf sizes the vm may use */
	uint64_t page_sizes; /* 0: all the device has */
};

static const struct pt_case pt_cases[PT_CASES] = {
	{"4K", VMB_PAGE_4K},
	{"4K-64K", VMB_PAGE_4K | VMB_PAGE_64K},
	{"4K-2M", VMB_PAGE_4K | VMB_PAGE_64K | VMB_PAGE_2M},
	{"4K-1G", 0},
};

struct pt_row {
	uint64_t entries;                                /* leaf entries of the timed MAP */
	uint64_t leaves[4], tables[4], pt_bytes, reserve_bytes; /* vmb_vm_stats of a 1 GiB MAP */
	double map_cold, map_warm, unmap_warm;           /* vm_bind, ns */
	double d_map_cold, d_prep, d_commit, d_release, d_map, d_clear; /* internal pt API, ns */
	double store_cold, store_warm;                   /* plain store loop, ns */
	uint64_t store_bytes, store_buffer;              /* what it writes, where (bytes) */
	bool ok;
	char why[96];
};

static int pt_bind_once(struct vmb_client *c, uint32_t vm, struct vmb_bind_op *op, double *ns)
{
	struct vmb_vm_bind b = {.vm_id = vm, .num_binds = 1, .binds = (uint64_t)(uintptr_t)op};
	uint64_t t = now_ns();
	int err = vmb_vm_bind(c, &b);
	*ns = (double)(now_ns() - t);
	return err;
}

/* MAP and UNMAP of @size of BO @bo through vmb_vm_bind(), @reps rounds. */
static int pt_case_bind(struct vmb_client *c, uint32_t bo, uint64_t size, const struct pt_case *pc, unsigned int reps,
			double *tmp, struct pt_row *row)
{
	struct vmb_vm_create vc = {.page_sizes = pc->page_sizes};
	struct vmb_bind_op map = {.op = VMB_BIND_OP_MAP, .bo_handle = bo, .addr = PT_VA, .range = size};
	struct vmb_bind_op unmap = {.op = VMB_BIND_OP_UNMAP, .addr = PT_VA, .range = size};
	double *unmaps = tmp + reps;
	int err = vmb_vm_create(c, &vc);
	if (err)
		return err;
	for (unsigned int r = 0; r < reps && !err; r++) {
		if ((err = pt_bind_once(c, vc.vm_id, &map, &tmp[r])))
			break;
		if (r == 0) {
			struct vmb_vm_stats st = {.vm_id = vc.vm_id};
			struct vmb_client_validate val = {0};
			if ((err = vmb_vm_query_stats(c, &st)) || (err = vmb_client_validate(c, &val)))
				break;
			row->entries = st.leaves[0] + 16 * st.leaves[1] + st.leaves[2] + st.leaves[3];
		}
		err = pt_bind_once(c, vc.vm_id, &unmap, &unmaps[r]);
	}
	struct vmb_vm_destroy vd = {.vm_id = vc.vm_id};
	vmb_vm_destroy(c, &vd);
	if (err)
		return err;
	row->map_cold = tmp[0];
	row->map_warm = median_double(tmp + 1, reps - 1);
	row->unmap_warm = median_double(unmaps + 1, reps - 1);
	return 0;
}

/* Page-table memory of a 1 GiB MAP of BO @bo (1 GiB) in a fresh vm of this case. */
static int pt_case_mem(struct vmb_client *c, uint32_t bo, const struct pt_case *pc, struct pt_row *row)
{
	struct vmb_vm_create vc = {.page_sizes = pc->page_sizes};
	struct vmb_bind_op map = {.op = VMB_BIND_OP_MAP, .bo_handle = bo, .addr = PT_VA, .range = GiB};
	struct vmb_vm_bind b = {.num_binds = 1, .binds = (uint64_t)(uintptr_t)&map};
	struct vmb_vm_stats st = {0};
	int err = vmb_vm_create(c, &vc);
	if (err)
		return err;
	b.vm_id = st.vm_id = vc.vm_id;
	if (!(err = vmb_vm_bind(c, &b)) && !(err = vmb_vm_query_stats(c, &st))) {
		memcpy(row->leaves, st.leaves, sizeof(row->leaves));
		memcpy(row->tables, st.pt_tables, sizeof(row->tables));
		row->pt_bytes = st.pt_bytes;
		row->reserve_bytes = st.pt_reserve_bytes;
	}
	struct vmb_vm_destroy vd = {.vm_id = vc.vm_id};
	vmb_vm_destroy(c, &vd);
	return err;
}

/* The same MAP and CLEAR through the internal page-table API, on a pool of its own. */
static int pt_case_direct(uint64_t size, const struct pt_case *pc, unsigned int reps, double *tmp, struct pt_row *row)
{
	struct vmb_pt_pool pool;
	struct vmb_pt pt;
	struct vmb_extent ext = {.off = 0, .pa = vmb_pa(VMB_PA_APERTURE_VRAM, 0), .size = size};
	struct vmb_backing back = vmb_soft_backing(&ext, 1);
	struct vmb_pt_op map = {.kind = VMB_PT_OP_MAP, .start = PT_VA, .last = PT_VA + size - 1, .backing = &back};
	struct vmb_pt_op clr = {.kind = VMB_PT_OP_CLEAR, .start = PT_VA, .last = PT_VA + size - 1};
	double *prep = tmp, *commit = tmp + reps, *rel = tmp + 2 * reps, *clear = tmp + 3 * reps, *total = tmp + 4 * reps;
	int err = vmb_pt_pool_init(&pool, 64 * MiB);
	if (err)
		return err;
	if ((err = vmb_pt_init(&pt, &pool, pc->page_sizes ? pc->page_sizes : VMB_PT_SIZES_ALL))) {
		vmb_pt_pool_fini(&pool);
		return err;
	}
	for (unsigned int r = 0; r < reps; r++) {
		struct vmb_pt_prep p = {0}, q = {0};
		uint64_t t0 = now_ns();
		if ((err = vmb_pt_prepare(&pt, &map, &p))) {
			vmb_pt_prep_release(&pt, &p);
			break;
		}
		uint64_t t1 = now_ns();
		vmb_pt_commit(&pt, &map, &p);
		uint64_t t2 = now_ns();
		vmb_pt_prep_release(&pt, &p);
		uint64_t t3 = now_ns();
		if (r == 0 && (err = vmb_pt_validate(&pt)))
			break;
		uint64_t t4 = now_ns();
		if ((err = vmb_pt_prepare(&pt, &clr, &q))) {
			vmb_pt_prep_release(&pt, &q);
			break;
		}
		vmb_pt_commit(&pt, &clr, &q);
		vmb_pt_prep_release(&pt, &q);
		uint64_t t5 = now_ns();
		prep[r] = (double)(t1 - t0);
		commit[r] = (double)(t2 - t1);
		rel[r] = (double)(t3 - t2);
		total[r] = (double)(t3 - t0);
		clear[r] = (double)(t5 - t4);
	}
	vmb_pt_fini(&pt);
	vmb_pt_pool_fini(&pool);
	if (err)
		return err;
	row->d_map_cold = total[0];
	row->d_prep = median_double(prep + 1, reps - 1);
	row->d_commit = median_double(commit + 1, reps - 1);
	row->d_release = median_double(rel + 1, reps - 1);
	row->d_map = median_double(total + 1, reps - 1);
	row->d_clear = median_double(clear + 1, reps - 1);
	return 0;
}

/*
 * The peer: a loop storing @n incrementing uint64_t (as entries would be), first touch then
 * warm, in a buffer of @pages pages: in runs of one page's worth (512 entries, a table's), the
 * runs spread evenly over the buffer, as the tables lie in their pool's pages.
 */
static void store_entries(uint64_t *a, size_t n, size_t pages, uint64_t v)
{
	size_t per = PAGE / sizeof(uint64_t), runs = (n + per - 1) / per;
	for (size_t j = 0, done = 0; j < runs; j++) {
		uint64_t *p = a + (j * pages / runs) * per;
		size_t k = n - done < per ? n - done : per;
		for (size_t i = 0; i < k; i++, v += PAGE)
			p[i] = v;
		done += k;
	}
	clobber(a);
}

/*
 * The store loop of a case (issue 16: a fair peer): as many bytes as the MAP's tables write
 * (its leaf entries, and an entry per table below the root), into a buffer as large as its
 * page tables (row->pt_bytes, of a 1 GiB MAP, scaled to @size).
 */
static int pt_case_store(uint64_t size, unsigned int reps, double *tmp, struct pt_row *row)
{
	uint64_t tables = row->tables[0] + row->tables[1] + row->tables[2] + row->tables[3];
	size_t n = (size_t)(row->entries + (tables > 1 ? tables - 1 : 0) * size / GiB);
	size_t bytes = (n * sizeof(uint64_t) + PAGE - 1) & ~(size_t)(PAGE - 1);
	size_t tbytes = (size_t)(row->pt_bytes * size / GiB + PAGE - 1) & ~(size_t)(PAGE - 1);
	bytes = tbytes > bytes ? tbytes : bytes;
	uint64_t *a = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (a == MAP_FAILED)
		return -ENOMEM;
	for (unsigned int r = 0; r < reps; r++) {
		uint64_t t = now_ns();
		store_entries(a, n, bytes / PAGE, 0x3 + r);
		tmp[r] = (double)(now_ns() - t);
	}
	munmap(a, bytes);
	row->store_cold = tmp[0];
	row->store_warm = median_double(tmp + 1, reps - 1);
	row->store_bytes = n * sizeof(uint64_t);
	row->store_buffer = bytes;
	return 0;
}

/* Leaf-entry bytes per second. */
static double entry_rate(const struct pt_row *r, double ns)
{
	return (double)r->entries * 8 * 1e9 / ns;
}

static double kib(uint64_t b)
{
	return (double)b / (double)KiB;
}

static int bench_pt(const struct opts *o)
{
	uint64_t size = o->quick ? 256 * MiB : GiB;
	unsigned int reps = o->quick ? 8 : 30;
	/* room for a 1 GiB BO (memory lines) and the timed one; VRAM is only touched when used */
	struct vmb_client_opts co = {.vram_size = 2 * GiB + size, .system_size = 64 * MiB};
	struct vmb_client *c;
	struct vmb_bo_create bc = {.size = size, .placements = VMB_PLACE_VRAM};
	struct vmb_bo_create bg = {.size = GiB, .placements = VMB_PLACE_VRAM};
	struct pt_row rows[PT_CASES];
	double *tmp = malloc(5 * reps * sizeof(double));
	int err;

	if (!tmp)
		return 1;
	if ((err = vmb_client_open("soft", &co, &c)) || (err = vmb_bo_create(c, &bc)) ||
	    (size != GiB && (err = vmb_bo_create(c, &bg)))) {
		fprintf(stderr, "bench pt: setup failed: %s\n", strerror(-err));
		free(tmp);
		return 1;
	}
	for (int i = 0; i < PT_CASES; i++) {
		struct pt_row *r = &rows[i];
		memset(r, 0, sizeof(*r));
		fprintf(stderr, "bench pt: leaves %s...\n", pt_cases[i].name);
		if ((err = pt_case_bind(c, bc.handle, size, &pt_cases[i], reps, tmp, r)))
			snprintf(r->why, sizeof(r->why), "vm_bind: %s", strerror(-err));
		else if ((err = pt_case_direct(size, &pt_cases[i], reps, tmp, r)))
			snprintf(r->why, sizeof(r->why), "pt API: %s", strerror(-err));
		else if ((err = pt_case_mem(c, size == GiB ? bc.handle : bg.handle, &pt_cases[i], r)))
			snprintf(r->why, sizeof(r->why), "1 GiB map: %s", strerror(-err));
		else if ((err = pt_case_store(size, reps, tmp, r)))
			snprintf(r->why, sizeof(r->why), "store loop: %s", strerror(-err));
		r->ok = !err;
	}
	vmb_client_close(c);
	free(tmp);

	/* Memory per mapped GiB, without the root table (one 4 KiB table per vm, whatever it maps). */
	double mem[PT_CASES];
	for (int i = 0; i < PT_CASES; i++)
		mem[i] = rows[i].ok ? (double)(rows[i].pt_bytes - PAGE) : NAN;
	struct goal goals[] = {
		{"4K vm: entry write rate / store loop (warm/warm)",
		 rows[0].ok ? rows[0].store_warm / rows[0].map_warm : NAN, 0.7, false},
		{"4K-64K vm: entry write rate / store loop (warm/warm)",
		 rows[1].ok ? rows[1].store_warm / rows[1].map_warm : NAN, 0.7, false},
		{"4K vm: UNMAP / MAP (warm)", rows[0].ok ? rows[0].unmap_warm / rows[0].map_warm : NAN, 1.2, true},
		{"4K-64K vm: UNMAP / MAP (warm)", rows[1].ok ? rows[1].unmap_warm / rows[1].map_warm : NAN, 1.2, true},
		{"4K vm: page-table MiB per mapped GiB (root excluded)", mem[0] / (double)MiB, 2.1, true},
		{"4K-2M vm: page-table KiB per mapped GiB (root excluded)", mem[2] / (double)KiB, 8, true},
	};
	size_t ngoals = sizeof(goals) / sizeof(goals[0]);
	int status = 0;
	for (int i = 0; i < PT_CASES; i++)
		if (!rows[i].ok)
			status = 1;

	if (o->json) {
		printf("{\"bench\":\"pt\",\"quick\":%s,", o->quick ? "true" : "false");
		bench_json_machine();
		printf("\"bytes_mapped\":%llu,\"rounds\":%u,\"cases\":[", (unsigned long long)size, reps);
		for (int i = 0; i < PT_CASES; i++) {
			const struct pt_row *r = &rows[i];
			printf("%s{\"leaves_allowed\":\"%s\",\"page_sizes\":%llu", i ? "," : "", pt_cases[i].name,
			       (unsigned long long)pt_cases[i].page_sizes);
			if (!r->ok) {
				printf(",\"error\":\"%s\"}", r->why);
				continue;
			}
			printf(",\"entries\":%llu,\"entry_bytes\":%llu", (unsigned long long)r->entries,
			       (unsigned long long)r->entries * 8);
			printf(",\"vm_bind_ns\":{\"map_cold\":");
			json_num(r->map_cold);
			printf(",\"map_warm\":");
			json_num(r->map_warm);
			printf(",\"unmap_warm\":");
			json_num(r->unmap_warm);
			printf("},\"pt_api_ns\":{\"map_cold\":");
			json_num(r->d_map_cold);
			printf(",\"prepare\":");
			json_num(r->d_prep);
			printf(",\"commit\":");
			json_num(r->d_commit);
			printf(",\"release\":");
			json_num(r->d_release);
			printf(",\"map\":");
			json_num(r->d_map);
			printf(",\"clear\":");
			json_num(r->d_clear);
			printf("},\"library_overhead_ns\":");
			json_num(r->map_warm - r->d_map);
			printf(",\"store_loop_ns\":{\"cold\":");
			json_num(r->store_cold);
			printf(",\"warm\":");
			json_num(r->store_warm);
			printf(",\"bytes_written\":%llu,\"buffer_bytes\":%llu", (unsigned long long)r->store_bytes,
			       (unsigned long long)r->store_buffer);
			printf("},\"entry_bytes_per_s\":{\"vm_bind_warm\":");
			json_num(entry_rate(r, r->map_warm));
			printf(",\"pt_commit_warm\":");
			json_num(entry_rate(r, r->d_commit));
			printf(",\"store_loop_warm\":");
			json_num(entry_rate(r, r->store_warm));
			printf(",\"store_loop_cold\":");
			json_num(entry_rate(r, r->store_cold));
			printf("},\"ratio_vm_bind_store_warm\":");
			json_num(r->store_warm / r->map_warm);
			printf(",\"memory_1gib\":{\"leaves\":{\"4K\":%llu,\"64K\":%llu,\"2M\":%llu,\"1G\":%llu}",
			       (unsigned long long)r->leaves[0], (unsigned long long)r->leaves[1],
			       (unsigned long long)r->leaves[2], (unsigned long long)r->leaves[3]);
			printf(",\"pt_bytes\":%llu,\"pt_bytes_without_root\":", (unsigned long long)r->pt_bytes);
			json_num(mem[i]);
			printf(",\"pt_reserve_bytes\":%llu,\"tables_by_level\":[%llu,%llu,%llu,%llu]}}",
			       (unsigned long long)r->reserve_bytes, (unsigned long long)r->tables[0],
			       (unsigned long long)r->tables[1], (unsigned long long)r->tables[2],
			       (unsigned long long)r->tables[3]);
		}
		printf("],");
		json_goals(goals, ngoals);
		printf("}\n");
		return status;
	}

	char sz[32];
	printf("vmbind bench pt%s: MAP then UNMAP of %s of a VRAM BO (one buddy block) at GPU VA 4 GiB, %u rounds;\n"
	       "cold = round 1 (first touch of page-table memory), warm = median of the other rounds.\n"
	       "entries = leaf entries written (a 64K leaf is 16 entries), 8 bytes each; the peer is a loop storing as\n"
	       "many bytes as the tables (leaf entries + one entry per table below the root), in runs of a page, into\n"
	       "a buffer as large as the page tables, fresh (cold) then the same (warm).\n",
	       o->quick ? " --quick" : "", fmt_size(size, sz, sizeof(sz)), reps);
	bench_print_machine();
	printf("\n");
	printf("%-7s %9s %11s | %-26s %10s | %-20s | %-22s | %s\n", "sizes", "entries", "entry bytes",
	       "vm_bind MAP cold / warm", "UNMAP warm", "MAP entry GiB/s warm", "store loop cold / warm", "MAP/store");
	for (int i = 0; i < PT_CASES; i++) {
		const struct pt_row *r = &rows[i];
		char a[16], b[16], d[16], e[16], f[16];
		if (!r->ok) {
			printf("%-7s %s\n", pt_cases[i].name, r->why);
			continue;
		}
		char cw[40], sw[40];
		snprintf(cw, sizeof(cw), "%s / %s", fmt_ns(r->map_cold, a, sizeof(a)), fmt_ns(r->map_warm, b, sizeof(b)));
		snprintf(sw, sizeof(sw), "%s / %s", fmt_ns(r->store_cold, d, sizeof(d)), fmt_ns(r->store_warm, e, sizeof(e)));
		printf("%-7s %9llu %11s | %-26s %10s | %20.2f | %-22s | %.3fx\n", pt_cases[i].name,
		       (unsigned long long)r->entries, fmt_size(r->entries * 8, sz, sizeof(sz)), cw,
		       fmt_ns(r->unmap_warm, f, sizeof(f)), entry_rate(r, r->map_warm) / (double)GiB, sw,
		       r->store_warm / r->map_warm);
	}
	printf("\nstore loop, GiB/s of entries: ");
	for (int i = 0; i < PT_CASES; i++)
		if (rows[i].ok)
			printf("%s%s cold %.2f / warm %.2f", i ? "; " : "", pt_cases[i].name,
			       entry_rate(&rows[i], rows[i].store_cold) / (double)GiB,
			       entry_rate(&rows[i], rows[i].store_warm) / (double)GiB);
	printf("\n\ninternal pt API (vmb_pt_prepare + commit + prep_release on a pool of its own; warm medians):\n");
	printf("%-7s %12s %12s %12s %12s %12s %14s | %-22s | %s\n", "sizes", "MAP cold", "prepare", "commit", "release",
	       "MAP total", "commit GiB/s", "vm_bind MAP - pt MAP", "CLEAR total");
	for (int i = 0; i < PT_CASES; i++) {
		const struct pt_row *r = &rows[i];
		char a[16], b[16], d[16], e[16], f[16], g[16], h[16];
		if (!r->ok)
			continue;
		printf("%-7s %12s %12s %12s %12s %12s %14.2f | %-22s | %s\n", pt_cases[i].name,
		       fmt_ns(r->d_map_cold, a, sizeof(a)), fmt_ns(r->d_prep, b, sizeof(b)),
		       fmt_ns(r->d_commit, d, sizeof(d)), fmt_ns(r->d_release, e, sizeof(e)),
		       fmt_ns(r->d_map, f, sizeof(f)), entry_rate(r, r->d_commit) / (double)GiB,
		       fmt_ns(r->map_warm - r->d_map, g, sizeof(g)), fmt_ns(r->d_clear, h, sizeof(h)));
	}
	printf("\nmemory (vmb_vm_stats after a MAP of 1 GiB, also with --quick; per mapped GiB without the root table,\n"
	       "4 KiB per vm whatever it maps; the split reserve is accounted in the pool, not allocated):\n");
	printf("%-7s %-14s %12s %18s %15s   %s\n", "sizes", "leaves used", "pt_bytes", "per GiB w/o root",
	       "split reserve", "tables L3/L2/L1/L0");
	for (int i = 0; i < PT_CASES; i++) {
		static const char *const leaf_name[4] = {"4K", "64K", "2M", "1G"};
		const struct pt_row *r = &rows[i];
		char used[64] = "";
		if (!r->ok)
			continue;
		for (int k = 0; k < 4; k++)
			if (r->leaves[k])
				snprintf(used + strlen(used), sizeof(used) - strlen(used), "%s%llu x %s", used[0] ? " + " : "",
					 (unsigned long long)r->leaves[k], leaf_name[k]);
		printf("%-7s %-14s %8.0f KiB %14.0f KiB %11.0f KiB   %llu/%llu/%llu/%llu\n", pt_cases[i].name, used,
		       kib(r->pt_bytes), mem[i] / (double)KiB, kib(r->reserve_bytes), (unsigned long long)r->tables[3],
		       (unsigned long long)r->tables[2], (unsigned long long)r->tables[1], (unsigned long long)r->tables[0]);
	}
	printf("\n");
	print_goals(goals, ngoals);
	if (o->quick)
		printf("(--quick: a smoke run; the store-loop goal is meant for the 1 GiB run)\n");
	return status;
}

/* ---- entry ----------------------------------------------------------------------------------- */

#define BENCH_OPTIONS                                                                                   \
	"options:\n"                                                                                    \
	"  --json        one JSON object on stdout instead of the table (progress stays on stderr)\n"  \
	"  --quick       a smoke run: small sizes, few samples (the goals are meant for the full run)\n" \
	"  -h, --help    this text\n"

const struct cli_help cli_help_bench = {
	.name = "bench",
	.usage = "vmbind bench va|pt|bind|pipeline|handles|evict|cuda [--json] [--quick]",
	.summary = "the benchmarks (each: vmbind bench NAME --help)",
	.text = "Benchmarks on the soft device. Each runs our code and a peer side by side in one run and\n"
		"prints the ratio and whether its goals are met; results and analysis: docs/PERFORMANCE.md.\n"
		"Progress goes to stderr, results to stdout. Exit status 1 only if a side fails: a missed\n"
		"goal is a result.\n"
		"\n"
		"benchmarks:\n"
		"  va          the VA manager, the public bind path and Linux mmap, N live mappings\n"
		"  pt          page-table writes of a 1 GiB MAP per leaf size, against a store loop\n"
		"  bind        asynchronous against synchronous VM_BIND: latency, arrays, throughput\n"
		"  pipeline    the demo's workload with asynchronous and with synchronous binds\n"
		"  handles     handle create/destroy with 10^3 to 10^6 live handles, against array free lists\n"
		"  evict       bind + exec with the working set at 0.5x to 2x VRAM, against everything fitting\n"
		"  cuda        the CUDA device against the raw driver (a GPU; exit 77 without one)\n"
		"\n" BENCH_OPTIONS,
};

const struct cli_help cli_help_bench_va = {
	.name = "bench va",
	.usage = "vmbind bench va [--json] [--quick]",
	.summary = "VA manager, public bind path and Linux mmap: random map/unmap/remap",
	.text = "Random map, unmap and remap of 1-8 pages of 4 KiB with N live mappings (N = 10^3 to 10^6;\n"
		"--quick: smaller), one list of operations replayed by three sides: the VA manager alone,\n"
		"the public path (one vmb_vm_bind() per operation), and the Linux kernel two ways (mmap(MAP_FIXED)\n"
		"in a PROT_NONE reservation; plain munmap and mmap(MAP_FIXED_NOREPLACE)). Operations per\n"
		"second and latency percentiles per kind, medians of 5 rounds in which the sides take turns\n"
		"(--quick: 3); goals against the faster kernel peer.\n"
		"\n" BENCH_OPTIONS,
};

const struct cli_help cli_help_bench_pt = {
	.name = "bench pt",
	.usage = "vmbind bench pt [--json] [--quick]",
	.summary = "page tables: MAP then UNMAP of 1 GiB per leaf size, against a store loop",
	.text = "MAP then UNMAP of a 1 GiB VRAM BO in vms whose leaves are limited to 4 KiB, 64 KiB, 2 MiB\n"
		"or any size, through vmb_vm_bind() and through the internal page-table API, compared with\n"
		"a plain loop storing as many entries; the page-table memory of a 1 GiB MAP.\n"
		"\n" BENCH_OPTIONS,
};

const struct cli_help cli_help_bench_bind = {
	.name = "bench bind",
	.usage = "vmbind bench bind [--json] [--quick] [--threads N] [--queues Q]",
	.summary = "asynchronous against synchronous VM_BIND: latency, arrays, throughput",
	.text = "The same binds asynchronously and synchronously, side by side: latency of one op (call, and\n"
		"call -> out-fence signalled), arrays of 1 to 1000 ops per call, and throughput of bind\n"
		"queues driven by several threads; the ratio asynchronous / synchronous of each.\n"
		"\n" BENCH_OPTIONS
		"  --threads N   throughput: N submitting threads (1-64, default 4)\n"
		"  --queues Q    throughput: Q bind queues, on one vm and on Q vms (1-32, default 8)\n",
};

const struct cli_help cli_help_bench_pipeline = {
	.name = "bench pipeline",
	.usage = "vmbind bench pipeline [--json] [--quick] [--lookahead N]",
	.summary = "the demo's workload: async binds, the best sync schedule, compute alone; bind -> exec handoff",
	.text = "The demo's KV-cache workload (vmbind demo) four ways: asynchronous binds, synchronous binds\n"
		"(naive, and with a lookahead: the best synchronous schedule), and compute alone with every\n"
		"chunk mapped before the clock (the floor); a second case whose compute lasts as long as the\n"
		"binds. Median of 3 runs (--quick: 1 of 48 steps), and the time from a bind signalled to the\n"
		"exec that waits for it starting on its engine.\n"
		"\n" BENCH_OPTIONS
		"  --lookahead N the lookahead sync side unmaps a chunk N steps after its last reader was\n"
		"                submitted, waiting for that job (1-8: the BO pool's slack; default 8, the\n"
		"                strongest on the 16-core machine and on 2 cores)\n",
};

const struct cli_help cli_help_bench_handles = {
	.name = "bench handles",
	.usage = "vmbind bench handles [--json] [--quick]",
	.summary = "handle create/destroy under churn, 10^3 to 10^6 live handles, against array free lists",
	.text = "Destroy a random one of N live handles and create one in its place (N = 10^3 to 10^6, and a\n"
		"full table of 2^20 slots), ns per pair: the library's handle table, an array with a ring\n"
		"and one with a stack of free slots, the cyclic scan it replaced, vmb_syncobj_destroy +\n"
		"create, and free + malloc of the same object.\n"
		"\n" BENCH_OPTIONS,
};

const struct cli_help cli_help_bench_evict = {
	.name = "bench evict",
	.usage = "vmbind bench evict [--json] [--quick]",
	.summary = "bind + exec under VRAM overcommit (0.5x to 2x), against the same when it all fits",
	.text = "8 non-LR vms share a working set of VRAM-only BOs at 0.5x, 1x, 1.5x and 2x VRAM; each step\n"
		"an asynchronous rebind of one BO and an exec behind it, vms in turn (evicting the idle\n"
		"ones, restoring the stepping one). Steps per second against the same on a device whose\n"
		"VRAM holds it all, bytes moved per exec, and the eviction jobs' bandwidth against memcpy()\n"
		"of the same bytes (goal >= 0.7x; the soft copy moves no bytes: the machinery's cost).\n"
		"\n" BENCH_OPTIONS,
};

const struct cli_help cli_help_bench_cuda = {
	.name = "bench cuda",
	.usage = "vmbind bench cuda [--json] [--quick]",
	.summary = "the CUDA device against the raw driver: bind cost, handoffs, stream-ordered unbind, grow",
	.text = "On GPU 0 (exit 77 without libcuda or a GPU): a 1 GiB bind per chunk size against the raw\n"
		"map + set-access calls, the async bind call, bind done -> waiting stream, kernel done ->\n"
		"unbind via vmb_cuda_stream_signal against cuStreamSynchronize + cuMemUnmap, and a\n"
		"grow-and-compute loop against inline synchronous mapping, in rounds; cheap calls while\n"
		"a 512-chunk bind commits (the device lock) (tools/bench-cuda.c).\n"
		"\n" BENCH_OPTIONS,
};

#ifndef VMB_BENCH_CUDA
int cmd_bench_cuda(bool json, bool quick)
{
	(void)json;
	(void)quick;
	fprintf(stderr, "vmbind bench cuda: not built (no cuda.h at build time)\n");
	return 77;
}
#endif

int cmd_bench(int argc, char **argv)
{
	static const struct option help_only[] = {{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
	static const struct option opts[] = {{"json", no_argument, NULL, 'j'},
					     {"quick", no_argument, NULL, 'q'},
					     {"threads", required_argument, NULL, 't'},
					     {"queues", required_argument, NULL, 'Q'},
					     {"lookahead", required_argument, NULL, 'L'},
					     {"help", no_argument, NULL, 'h'},
					     {NULL, 0, NULL, 0}};
	static const struct cli_help *const benches[] = {&cli_help_bench_va, &cli_help_bench_pt,
							 &cli_help_bench_bind, &cli_help_bench_pipeline,
							 &cli_help_bench_handles, &cli_help_bench_evict,
							 &cli_help_bench_cuda};
	const struct cli_help *h = NULL;
	struct opts o = {0};
	long long threads = 0, queues = 0, lookahead = 8; /* the strongest sync schedule */
	int c;

	optind = 0;
	if ((c = cli_getopt(argc, argv, &cli_help_bench, "h", help_only)) != -1)
		return c == 'h' ? cli_help(&cli_help_bench) : 2;
	if (optind >= argc)
		return cli_usage_error(&cli_help_bench, "which benchmark?");
	for (size_t i = 0; i < sizeof(benches) / sizeof(benches[0]); i++)
		if (!strcmp(argv[optind], benches[i]->name + strlen("bench ")))
			h = benches[i];
	if (!h)
		return cli_usage_error(&cli_help_bench, "no benchmark '%s'", argv[optind]);
	argc -= optind;
	argv += optind;
	optind = 0;
	while ((c = cli_getopt(argc, argv, h, "h", opts)) != -1) {
		if (c == 'j')
			o.json = true;
		else if (c == 'q')
			o.quick = true;
		else if ((c == 't' || c == 'Q') && h != &cli_help_bench_bind)
			return cli_usage_error(h, "--threads and --queues are options of bench bind");
		else if (c == 't' && cli_number(h, "--threads", optarg, 1, 64, &threads))
			return 2;
		else if (c == 'Q' && cli_number(h, "--queues", optarg, 1, 32, &queues))
			return 2;
		else if (c == 'L' && h != &cli_help_bench_pipeline)
			return cli_usage_error(h, "--lookahead is an option of bench pipeline");
		else if (c == 'L' && cli_number(h, "--lookahead", optarg, 1, 8, &lookahead))
			return 2;
		else if (c != 't' && c != 'Q' && c != 'L')
			return c == 'h' ? cli_help(h) : 2;
	}
	if (bench_bind_layout((unsigned int)threads, (unsigned int)queues))
		return 2;
	if (cli_no_args(argc, argv, h))
		return 2;
	if (h == &cli_help_bench_va)
		return bench_va(&o);
	if (h == &cli_help_bench_pt)
		return bench_pt(&o);
	if (h == &cli_help_bench_bind)
		return cmd_bench_bind(o.json, o.quick);
	if (h == &cli_help_bench_handles)
		return cmd_bench_handles(o.json, o.quick);
	if (h == &cli_help_bench_evict)
		return cmd_bench_evict(o.json, o.quick);
	if (h == &cli_help_bench_cuda)
		return cmd_bench_cuda(o.json, o.quick);
	return cmd_bench_pipeline(o.json, o.quick, (int)lookahead);
}
