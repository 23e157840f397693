/* SPDX-License-Identifier: MIT */
/*
 * Description: page-table stress through the pt.h API: random multi-op binds, two binds
 * prepared before either commits (committed in either order, as two bind queues will), injected
 * allocation failures, two vms sharing one pool, 1G/2M/64K/4K leaves over a window crossing a
 * root-table slot, all against a per-page model. Env: VMB_SEED (printed), STEPS,
 * MIDVALIDATE=1 (also validate between prepare and commit: expected to report the pins).
 */
#include "lib/harness.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dev/soft/pt.h"

#define WBASE (512 * GiB - 2 * GiB)
#define WSIZE (4 * GiB)
#define WPAGES (WSIZE / 4096)

#define CHECK(c)                                                                                  \
	do {                                                                                      \
		if (!(c)) {                                                                       \
			fail_msg("%s:%d: %s (seed %" PRIu64 ", step %d)", __FILE__, __LINE__, #c, \
				 seed, step);                                                     \
		}                                                                                 \
	} while (0)

static uint64_t seed, rs;
static int step;
static bool midvalidate;

static uint64_t rnd(void) { return rnd_next(&rs); }
static uint64_t below(uint64_t n) { return n ? rnd() % n : 0; }

struct vm {
	struct vmb_pt pt;
	uint64_t *model; /* 0 none, 1 NULL, else pa | 2 | (ro ? 4 : 0) */
};

struct bop {
	struct vmb_pt_op op;
	struct vmb_extent ext[6];
	struct vmb_backing b;
};

struct bind {
	struct vm *vm;
	struct bop ops[4];
	int n;
	struct vmb_pt_prep prep;
};

static void gen_backing(struct bop *o, uint64_t len)
{
	static const uint64_t al[] = { 4 * KiB, 64 * KiB, 2 * MiB, 1 * GiB };
	uint64_t off = 0, need = len + below(4) * 4 * KiB * below(64);
	unsigned int n = 0;
	while (off < need && n < 6) {
		uint64_t size;
		if (n == 5) {
			size = need - off;
		} else {
			switch (below(4)) {
			case 0: size = (1 + below(40)) * 4 * KiB; break;
			case 1: size = (1 + below(20)) * 64 * KiB; break;
			case 2: size = (1 + below(3)) * 2 * MiB; break;
			default: size = need - off; break;
			}
		}
		uint64_t a = al[below(4)];
		uint64_t pa = (below(1ull << 28) * 4096) & ~(a - 1);
		if (n && below(4) == 0) /* physically adjacent to the previous extent */
			pa = o->ext[n - 1].pa + o->ext[n - 1].size;
		if (below(3) == 0) /* make big leaves possible */
			pa = (below(512) * GiB) | (pa & (below(2) ? 0 : (GiB - 1) & ~(2 * MiB - 1)));
		o->ext[n] = (struct vmb_extent){ .off = off, .pa = pa, .size = size };
		off += size;
		n++;
	}
	o->b = vmb_soft_backing(o->ext, n);
	o->op.backing = &o->b;
	uint64_t slack = (off - len) / 4096;
	o->op.offset = below(slack + 1) * 4096;
}

static void gen_op(struct bop *o)
{
	static const uint64_t g[] = { 4 * KiB, 64 * KiB, 2 * MiB, 1 * GiB };
	unsigned int gi = (unsigned int)below(16);
	uint64_t gran = g[gi < 6 ? 0 : gi < 11 ? 1 : gi < 15 ? 2 : 3];
	uint64_t start = below(WSIZE / gran) * gran;
	uint64_t len = (1 + below(gran == GiB ? 2 : 40)) * gran;
	if (below(5) == 0)
		start += below(16) * 4096;
	if (start >= WSIZE) /* the nudge above went past the window (seed 17555153260: an op with
			     * last < start, and the model written out of bounds) */
		start = WSIZE - 4096;
	if (below(5) == 0)
		len += below(16) * 4096;
	if (start + len > WSIZE)
		len = WSIZE - start;
	if (len == 0) {
		start = 0;
		len = 4096;
	}
	memset(o, 0, sizeof(*o));
	o->op.start = WBASE + start;
	o->op.last = WBASE + start + len - 1;
	unsigned int k = (unsigned int)below(8);
	if (k < 2) {
		o->op.kind = VMB_PT_OP_CLEAR;
	} else if (k < 3) {
		o->op.kind = VMB_PT_OP_MAP;
		o->op.flags = VMB_PT_OP_NULL;
	} else {
		o->op.kind = VMB_PT_OP_MAP;
		o->op.flags = below(4) == 0 ? VMB_PT_OP_READONLY : 0;
		gen_backing(o, len);
	}
}

static void model_apply(struct vm *v, const struct vmb_pt_op *op)
{
	uint64_t first = (op->start - WBASE) / 4096, n = (op->last - op->start + 1) / 4096;
	if (op->kind == VMB_PT_OP_CLEAR) {
		memset(v->model + first, 0, n * 8);
		return;
	}
	if (op->flags & VMB_PT_OP_NULL) {
		for (uint64_t i = 0; i < n; i++)
			v->model[first + i] = 1;
		return;
	}
	struct vmb_backing_cursor c;
	vmb_backing_seek(&c, op->backing, op->offset);
	uint64_t ro = (op->flags & VMB_PT_OP_READONLY) ? 4 : 0;
	for (uint64_t i = 0; i < n; i++) {
		uint64_t contig, pa = vmb_backing_pa(&c, &contig);
		v->model[first + i] = pa | 2 | ro;
		if (i + 1 < n)
			vmb_backing_advance(&c, 4096);
	}
}

static void check_page(struct vm *v, uint64_t pg)
{
	struct vmb_pt_walk w;
	uint64_t va = WBASE + pg * 4096 + (pg * 8 % 4096), m = v->model[pg];
	int err = vmb_pt_translate(&v->pt, va, &w);
	if (m == 0) {
		CHECK(err == -EFAULT);
		return;
	}
	CHECK(err == 0);
	CHECK(w.null == (m == 1));
	if (m != 1) {
		CHECK(w.pa == (m & ~0xfffull) + (va & 4095));
		CHECK(w.writable == !(m & 4));
		/* the leaf must be as aligned as its size says */
		CHECK(((w.pa - (va & (w.page_size - 1))) & (w.page_size - 1)) == 0);
	}
}

static void check_range(struct vm *v, const struct vmb_pt_op *op)
{
	uint64_t first = (op->start - WBASE) / 4096, n = (op->last - op->start + 1) / 4096;
	uint64_t stride = n > 65536 ? n / 65536 : 1;
	for (uint64_t i = 0; i < n; i += stride)
		check_page(v, first + i);
	check_page(v, first + n - 1);
	if (first)
		check_page(v, first - 1);
	if (first + n < WPAGES)
		check_page(v, first + n);
}

static void validate(struct vm *v)
{
	CHECK(vmb_pt_validate(&v->pt) == 0);
}

struct snap {
	uint64_t allocated, reserved, tables[4], leaves[4], vres;
};
static void snap(struct snap *s, struct vmb_pt_pool *p, struct vm *v)
{
	s->allocated = vmb_pt_pool_in_use(p);
	s->reserved = p->reserved;
	memcpy(s->tables, v->pt.tables, sizeof(s->tables));
	memcpy(s->leaves, v->pt.leaves, sizeof(s->leaves));
	s->vres = v->pt.reserved;
}

static int prepare_bind(struct bind *b, struct vmb_pt_pool *p, bool inject)
{
	struct snap before;
	snap(&before, p, b->vm);
	if (inject)
		p->fail_after = (uint32_t)(1 + below(8));
	for (int i = 0; i < b->n; i++) {
		int err = vmb_pt_prepare(&b->vm->pt, &b->ops[i].op, &b->prep);
		if (err) {
			CHECK(err == -ENOMEM);
			p->fail_after = 0;
			vmb_pt_prep_release(&b->vm->pt, &b->prep);
			struct snap after;
			snap(&after, p, b->vm);
			CHECK(memcmp(&before, &after, sizeof(before)) == 0);
			return err;
		}
	}
	p->fail_after = 0;
	return 0;
}

static void test_stress(void **state)
{
	(void)state;
	seed = test_seed("pt stress");
	rs = seed;
	int steps = getenv("STEPS") ? atoi(getenv("STEPS")) : 2000;
	midvalidate = getenv("MIDVALIDATE") != NULL;

	struct vmb_pt_pool pool;
	CHECK(vmb_pt_pool_init(&pool, 256 * MiB) == 0);
	struct vm vms[2];
	for (int i = 0; i < 2; i++) {
		CHECK(vmb_pt_init(&vms[i].pt, &pool, i ? (VMB_PT_SIZE_4K | VMB_PT_SIZE_64K | VMB_PT_SIZE_2M) : VMB_PT_SIZES_ALL) == 0);
		vms[i].model = calloc(WPAGES, 8);
		CHECK(vms[i].model);
	}
	static struct bind A, B;
	uint64_t failures = 0, pairs = 0;
	for (step = 0; step < steps; step++) {
		struct vm *v = &vms[below(2)];
		bool pair = below(2);
		memset(&A, 0, sizeof(A));
		memset(&B, 0, sizeof(B));
		A.vm = B.vm = v;
		A.n = 1 + (int)below(4);
		B.n = 1 + (int)below(4);
		for (int i = 0; i < A.n; i++)
			gen_op(&A.ops[i]);
		for (int i = 0; i < B.n; i++)
			gen_op(&B.ops[i]);
		bool inject = below(6) == 0;
		if (prepare_bind(&A, &pool, inject && !pair)) {
			failures++;
			validate(v);
			continue;
		}
		bool have_b = false;
		if (pair) {
			pairs++;
			if (prepare_bind(&B, &pool, inject))
				failures++;
			else
				have_b = true;
		}
		if (midvalidate)
			validate(v);
		/* commit order: A then B (one queue) or B then A (two queues); release orders vary */
		struct bind *first = &A, *second = have_b ? &B : NULL;
		if (have_b && below(2)) {
			first = &B;
			second = &A;
		}
		for (int i = 0; i < first->n; i++) {
			vmb_pt_commit(&v->pt, &first->ops[i].op, &first->prep);
			model_apply(v, &first->ops[i].op);
			if (midvalidate)
				validate(v);
		}
		if (second && below(2)) {
			vmb_pt_prep_release(&v->pt, &first->prep);
			first = NULL;
		}
		if (second) {
			for (int i = 0; i < second->n; i++) {
				vmb_pt_commit(&v->pt, &second->ops[i].op, &second->prep);
				model_apply(v, &second->ops[i].op);
			}
			vmb_pt_prep_release(&v->pt, &second->prep);
		}
		if (first)
			vmb_pt_prep_release(&v->pt, &first->prep);
		validate(v);
		for (int i = 0; i < A.n; i++)
			check_range(v, &A.ops[i].op);
		for (int i = 0; i < B.n && have_b; i++)
			check_range(v, &B.ops[i].op);
		for (int k = 0; k < 256; k++)
			check_page(v, below(WPAGES));
		if (step % 200 == 199)
			for (int i = 0; i < 2; i++)
				for (uint64_t pg = 0; pg < WPAGES; pg++)
					check_page(&vms[i], pg);
	}
	/* clear everything: the roots alone remain */
	for (int i = 0; i < 2; i++) {
		struct vmb_pt_op op = { .kind = VMB_PT_OP_CLEAR, .start = 0, .last = (1ull << 48) - 1 };
		struct vmb_pt_prep prep;
		memset(&prep, 0, sizeof(prep));
		CHECK(vmb_pt_prepare(&vms[i].pt, &op, &prep) == 0);
		vmb_pt_commit(&vms[i].pt, &op, &prep);
		vmb_pt_prep_release(&vms[i].pt, &prep);
		validate(&vms[i]);
		CHECK(vms[i].pt.reserved == 0);
	}
	CHECK(vmb_pt_pool_in_use(&pool) == 2 && pool.reserved == 0);
	printf("pt stress: %d steps, %" PRIu64 " paired binds, %" PRIu64 " injected failures, peak %" PRIu64 " pages: OK\n",
	       steps, pairs, failures, pool.peak);
	for (int i = 0; i < 2; i++) {
		vmb_pt_fini(&vms[i].pt);
		free(vms[i].model);
	}
	CHECK(pool.allocated == 0);
	vmb_pt_pool_fini(&pool);
}

int main(void)
{
	const struct CMUnitTest tests[] = {cmocka_unit_test(test_stress)};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
