/* SPDX-License-Identifier: MIT */
/*
 * Description: typed interval tree (core/itree.h), both modes: random inserts (by key, after
 * or before a known node), replaces and removes against a brute-force array, every query
 * (iter_first / iter_next, floor, ceil) checked against a scan, validate after every operation,
 * with any intervals (VMB_ITREE_DEFINE) and with disjoint ones (VMB_ITREE_DEFINE_DISJOINT, which
 * never touches the subtree field); edge cases (empty tree, 0 and UINT64_MAX, nested, adjacent
 * and identical intervals; for the disjoint mode adjacent ones and queries from far below);
 * validate notices a wrong subtree maximum, a wrong order, an empty interval, a broken
 * red-black shape and, in the disjoint mode, two intervals that overlap (by one value, or with
 * equal starts). The random seed is printed; set VMB_SEED to replay a run.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "lib/harness.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/itree.h"

/* The node is not the first member, so a missing container conversion would show. */
struct ival {
	uint32_t id;
	bool in;
	struct vmb_rb_node rb;
	uint64_t start, last, max;
};

VMB_ITREE_DEFINE(iv, struct ival, rb, start, last, max)
VMB_ITREE_DEFINE_DISJOINT(dj, struct ival, rb, start, last)

/* One mode's functions, so that the random run and its checks serve both. */
struct mode {
	bool disjoint;
	void (*insert)(struct vmb_rb_root *root, struct ival *x);
	void (*insert_after)(struct vmb_rb_root *root, struct ival *pos, struct ival *x);
	void (*insert_before)(struct vmb_rb_root *root, struct ival *pos, struct ival *x);
	void (*replace)(struct vmb_rb_root *root, struct ival *victim, struct ival *repl);
	void (*remove)(struct vmb_rb_root *root, struct ival *x);
	struct ival *(*first)(const struct vmb_rb_root *root);
	struct ival *(*last)(const struct vmb_rb_root *root);
	struct ival *(*next)(const struct ival *x);
	struct ival *(*prev)(const struct ival *x);
	struct ival *(*iter_first)(const struct vmb_rb_root *root, uint64_t s, uint64_t l);
	struct ival *(*iter_next)(const struct ival *x, uint64_t s, uint64_t l);
	struct ival *(*floor)(const struct vmb_rb_root *root, uint64_t a, struct ival **above);
	struct ival *(*ceil)(const struct vmb_rb_root *root, uint64_t a);
	long (*validate)(const struct vmb_rb_root *root);
};

#define MODE(PFX, DISJOINT)                                                                            \
	{                                                                                              \
		DISJOINT, PFX##_insert, PFX##_insert_after, PFX##_insert_before, PFX##_replace,        \
		PFX##_remove, PFX##_first, PFX##_last, PFX##_next, PFX##_prev, PFX##_iter_first,       \
		PFX##_iter_next, PFX##_floor, PFX##_ceil, PFX##_validate                               \
	}

static const struct mode aug_mode = MODE(iv, false), disjoint_mode = MODE(dj, true);

/* What a disjoint tree's nodes hold in max from start to end: that mode has no such field. */
#define MAX_UNTOUCHED UINT64_C(0x5a5a5a5a5a5a5a5a)

static uint64_t rng_state;
static struct ival poison; /* what an out-parameter holds before a call that must set it */

static uint64_t rng_below(uint64_t n)
{
	return rnd_below(&rng_state, n); /* lib/harness.h */
}

/*
 * Coordinates: 0..coords-1 map onto the values 0..coords/2-1 and UINT64_MAX-coords/2+1..
 * UINT64_MAX, in order, so intervals crowd both ends of the space and some span the middle.
 * 512 of them for any intervals; a disjoint run spreads its nodes over 64 per node.
 */
#define COORDS 512u

static uint64_t coords = COORDS;

static uint64_t coord(uint64_t c)
{
	return c < coords / 2 ? c : UINT64_MAX - (coords - 1 - c);
}

/* A random closed interval: mostly short, sometimes long. */
static void rand_interval(uint64_t *s, uint64_t *l)
{
	uint64_t a = rng_below(coords), len = rng_below(8) ? rng_below(8) : rng_below(coords);
	uint64_t b = a + len < coords ? a + len : coords - 1;

	*s = coord(a);
	*l = coord(b);
}

/* A random [*s, *l] inside [lo, hi] (lo <= hi) that holds @a (lo <= a <= hi): mostly short. */
static void interval_in(uint64_t lo, uint64_t hi, uint64_t a, uint64_t *s, uint64_t *l)
{
	uint64_t down = a - lo, up = hi - a;

	if (rng_below(16)) {
		down = down < 8 ? down : 7;
		up = up < 8 ? up : 7;
	}
	*s = a - (down < UINT64_MAX ? rng_below(down + 1) : rnd_next(&rng_state));
	*l = a + (up < UINT64_MAX ? rng_below(up + 1) : rnd_next(&rng_state));
}

static bool meets(const struct ival *x, uint64_t s, uint64_t l)
{
	return x->start <= l && x->last >= s;
}

/* The tree holds exactly the model's intervals, in an order of nondecreasing start. */
static void check_contents(const struct mode *m, const struct vmb_rb_root *root, const struct ival *v,
			   unsigned int n, long count)
{
	long seen = 0;
	const struct ival *x, *before = NULL;

	assert_int_equal(m->validate(root), count);
	for (x = m->first(root); x; before = x, x = m->next(x)) {
		assert_true(x >= v && x < v + n && x->in);
		assert_ptr_equal(m->prev(x), before);
		if (m->disjoint)
			assert_true(x->max == MAX_UNTOUCHED);
		seen++;
	}
	assert_int_equal(seen, count);
	assert_ptr_equal(m->last(root), before);
}

/* iter_first/iter_next give exactly the in-order sequence filtered by "meets [s, l]". */
static void check_query(const struct mode *m, const struct vmb_rb_root *root, const struct ival *v,
			unsigned int n, uint64_t s, uint64_t l)
{
	const struct ival *want = m->first(root), *got = m->iter_first(root, s, l);
	unsigned int brute = 0, found = 0;

	for (unsigned int i = 0; i < n; i++)
		brute += v[i].in && meets(&v[i], s, l);
	for (;;) {
		while (want && !meets(want, s, l))
			want = m->next(want);
		if (got != want)
			fail_msg("query [%#" PRIx64 ", %#" PRIx64 "]: got %p, want %p", s, l, (const void *)got,
				 (const void *)want);
		if (!got)
			break;
		found++;
		got = m->iter_next(got, s, l);
		want = m->next(want);
	}
	assert_int_equal(found, brute);
}

/* floor and ceil against a scan of the model. */
static void check_bounds(const struct mode *m, const struct vmb_rb_root *root, const struct ival *v,
			 unsigned int n, uint64_t a)
{
	struct ival *above = &poison;
	struct ival *fl = m->floor(root, a, &above), *ce = m->ceil(root, a);
	bool any_le = false, any_ge = false;
	uint64_t max_le = 0, min_ge = UINT64_MAX;

	for (unsigned int i = 0; i < n; i++) {
		if (!v[i].in)
			continue;
		if (v[i].start <= a && (!any_le || v[i].start > max_le)) {
			any_le = true;
			max_le = v[i].start;
		}
		if (v[i].start >= a && (!any_ge || v[i].start < min_ge)) {
			any_ge = true;
			min_ge = v[i].start;
		}
	}
	assert_int_equal(fl != NULL, any_le);
	if (fl) {
		assert_true(fl->start == max_le);
		assert_true(!m->next(fl) || m->next(fl)->start > a); /* the last of equal starts */
		assert_ptr_equal(above, m->next(fl));
	} else {
		assert_ptr_equal(above, m->first(root));
	}
	assert_int_equal(ce != NULL, any_ge);
	if (ce) {
		assert_true(ce->start == min_ge);
		assert_true(!m->prev(ce) || m->prev(ce)->start < a); /* the first of equal starts */
	}
	assert_ptr_equal(m->floor(root, a, NULL), fl);
}

enum op_kind { OP_INSERT, OP_AFTER, OP_BEFORE, OP_REPLACE };

/* Any intervals: a start that keeps the order next to @pos, then a last. Always room. */
static bool pick_any(const struct mode *m, enum op_kind k, const struct ival *pos, struct ival *x)
{
	const struct ival *pv = pos ? m->prev(pos) : NULL, *nx = pos ? m->next(pos) : NULL;
	uint64_t lo = pv ? pv->start : 0, hi = nx ? nx->start : UINT64_MAX, len;

	switch (k) {
	case OP_INSERT:
		rand_interval(&x->start, &x->last);
		return true;
	case OP_AFTER:
		len = hi - pos->start;
		x->start = pos->start + (len ? rng_below(len < 64 ? len + 1 : 64) : 0);
		break;
	case OP_BEFORE:
		len = pos->start - lo;
		x->start = pos->start - (len ? rng_below(len < 64 ? len + 1 : 64) : 0);
		break;
	case OP_REPLACE:
		/* a replacement sorts where the victim did: between its neighbours */
		x->start = lo + rng_below(hi - lo < 64 ? hi - lo + 1 : 64);
		if (rng_below(2))
			x->start = pos->start;
		x->last = rng_below(3) ? x->start + rng_below(COORDS) : UINT64_MAX;
		if (x->last < x->start)
			x->last = UINT64_MAX;
		return true;
	}
	len = rng_below(4) ? rng_below(16) : rng_below(UINT64_MAX);
	x->last = x->start + len < x->start ? UINT64_MAX : x->start + len;
	return true;
}

/*
 * Disjoint intervals: one inside the free gap [lo, hi] where the operation puts it (by key:
 * around a random point, the gap found by a scan of the model; next to or instead of @pos: the
 * gap beside pos, or pos's with it); false if there is no room there.
 */
static bool pick_disjoint(const struct mode *m, enum op_kind k, const struct ival *v, unsigned int n,
			  const struct ival *pos, struct ival *x)
{
	const struct ival *pv = pos ? m->prev(pos) : NULL, *nx = pos ? m->next(pos) : NULL;
	uint64_t lo = 0, hi = UINT64_MAX, a;

	switch (k) {
	case OP_INSERT:
		a = coord(rng_below(coords));
		for (unsigned int i = 0; i < n; i++) {
			if (!v[i].in)
				continue;
			if (v[i].start <= a && a <= v[i].last)
				return false;
			if (v[i].last < a && v[i].last + 1 > lo)
				lo = v[i].last + 1;
			if (v[i].start > a && v[i].start - 1 < hi)
				hi = v[i].start - 1;
		}
		break;
	case OP_AFTER:
		if (pos->last == UINT64_MAX || (nx && nx->start == pos->last + 1))
			return false;
		lo = pos->last + 1;
		hi = nx ? nx->start - 1 : UINT64_MAX;
		a = lo + rng_below(hi - lo < 64 ? hi - lo + 1 : 64);
		break;
	case OP_BEFORE:
		if (pos->start == 0 || (pv && pv->last + 1 == pos->start))
			return false;
		lo = pv ? pv->last + 1 : 0;
		hi = pos->start - 1;
		a = hi - rng_below(hi - lo < 64 ? hi - lo + 1 : 64);
		break;
	case OP_REPLACE:
	default:
		lo = pv ? pv->last + 1 : 0;
		hi = nx ? nx->start - 1 : UINT64_MAX;
		a = rng_below(2) ? pos->start : pos->last;
		break;
	}
	interval_in(lo, hi, a, &x->start, &x->last);
	return true;
}

/* @x's interval for an operation of kind @k at @pos; false if there is no room for one. */
static bool pick(const struct mode *m, enum op_kind k, const struct ival *v, unsigned int n,
		 const struct ival *pos, struct ival *x)
{
	return m->disjoint ? pick_disjoint(m, k, v, n, pos, x) : pick_any(m, k, pos, x);
}

/* A random in-tree node (the model holds @count of them), or NULL if the tree is empty. */
static struct ival *random_in(struct ival *v, unsigned int n, long count)
{
	if (!count)
		return NULL;
	for (;;) {
		struct ival *x = &v[rng_below(n)];

		if (x->in)
			return x;
	}
}

static struct ival *random_out(struct ival *v, unsigned int n, long count)
{
	if (count == (long)n)
		return NULL;
	for (;;) {
		struct ival *x = &v[rng_below(n)];

		if (!x->in)
			return x;
	}
}

/*
 * @n nodes, @ops random operations (insert-biased while the tree is small, remove-biased
 * while it is large); validate after every operation, the queries every @every.
 */
static void random_run(const struct mode *m, unsigned int n, unsigned int ops, unsigned int every)
{
	struct vmb_rb_root root = {NULL};
	struct ival *v = calloc(n, sizeof(*v));
	long count = 0;

	assert_non_null(v);
	coords = m->disjoint ? 64u * n : COORDS;
	for (unsigned int i = 0; i < n; i++) {
		v[i].id = i;
		v[i].max = MAX_UNTOUCHED;
	}
	for (unsigned int op = 0; op < ops; op++) {
		bool grow = (op / (2 * n)) % 2 == 0;
		unsigned int what = (unsigned int)rng_below(100);
		struct ival *pos = random_in(v, n, count), *x = random_out(v, n, count);

		/* junk in the free node's max, as a reused node would have (not in the mode without) */
		if (x && !m->disjoint)
			x->max = rng_below(2) ? UINT64_MAX : 0;
		if (x && what < (grow ? 60u : 30u)) {
			enum op_kind k = what % 3 == 1 ? OP_AFTER : OP_BEFORE;

			if (!pos || what % 3 == 0)
				k = OP_INSERT;

			if (!pick(m, k, v, n, pos, x))
				continue; /* no room there: nothing changed */
			if (k == OP_INSERT)
				m->insert(&root, x);
			else if (k == OP_AFTER)
				m->insert_after(&root, pos, x);
			else
				m->insert_before(&root, pos, x);
			x->in = true;
			count++;
		} else if (x && pos && what < 75) {
			pick(m, OP_REPLACE, v, n, pos, x); /* pos's own room at least */
			m->replace(&root, pos, x);
			pos->in = false;
			x->in = true;
		} else if (pos) {
			m->remove(&root, pos);
			pos->in = false;
			count--;
		}
		if (m->validate(&root) != count)
			fail_msg("op %u: validate %ld, expected %ld", op, m->validate(&root), count);
		if (op % every == 0) {
			uint64_t s, l;

			check_contents(m, &root, v, n, count);
			rand_interval(&s, &l);
			check_query(m, &root, v, n, s, l);
			check_query(m, &root, v, n, s, s);
			check_query(m, &root, v, n, l, l);
			check_query(m, &root, v, n, 0, UINT64_MAX);
			check_bounds(m, &root, v, n, s);
			check_bounds(m, &root, v, n, l);
			if (pos && pos->in) {
				check_bounds(m, &root, v, n, pos->start);
				check_query(m, &root, v, n, pos->start, pos->start);
				check_query(m, &root, v, n, pos->last, pos->last);
			}
		}
	}
	/* drain */
	for (struct ival *x; (x = random_in(v, n, count));) {
		m->remove(&root, x);
		x->in = false;
		count--;
		assert_int_equal(m->validate(&root), count);
	}
	assert_null(root.node);
	free(v);
}

/* *state: the mode (each test is registered once per mode) */
static void test_random_small(void **state)
{
	random_run(*state, 64, 100000, 1);
}

static void test_random_large(void **state)
{
	random_run(*state, 2000, 60000, 61);
}

/* ---- edge cases ---- */

static struct ival *mk(struct ival *x, uint64_t s, uint64_t l)
{
	x->start = s;
	x->last = l;
	x->max = 0;
	x->in = true;
	return x;
}

/* The intervals met by [s, l], in order, by index into @v: checked against @want (ends with -1). */
static void expect(const struct mode *m, const struct vmb_rb_root *root, const struct ival *v, uint64_t s,
		   uint64_t l, const int *want)
{
	const struct ival *x = m->iter_first(root, s, l);
	unsigned int i = 0;

	for (; x; x = m->iter_next(x, s, l), i++) {
		if (want[i] < 0)
			fail_msg("[%#" PRIx64 ", %#" PRIx64 "]: more than %u results", s, l, i);
		if (x != &v[want[i]])
			fail_msg("[%#" PRIx64 ", %#" PRIx64 "]: result %u is v[%td], want v[%d]", s, l, i, x - v,
				 want[i]);
	}
	if (want[i] >= 0)
		fail_msg("[%#" PRIx64 ", %#" PRIx64 "]: %u results, want more", s, l, i);
}

#define EXPECT(s, l, ...) expect(&aug_mode, &root, v, (s), (l), (const int[]){__VA_ARGS__, -1})
#define DEXPECT(s, l, ...) expect(&disjoint_mode, &root, v, (s), (l), (const int[]){__VA_ARGS__, -1})
#define NONE -1

static void test_empty(void **state)
{
	(void)state;
	struct vmb_rb_root root = {NULL};
	struct ival *above = &poison;

	assert_int_equal(iv_validate(&root), 0);
	assert_null(iv_first(&root));
	assert_null(iv_last(&root));
	assert_null(iv_iter_first(&root, 0, UINT64_MAX));
	assert_null(iv_floor(&root, UINT64_MAX, &above));
	assert_null(above);
	assert_null(iv_ceil(&root, 0));
}

static void test_ends_of_the_space(void **state)
{
	(void)state;
	struct vmb_rb_root root = {NULL};
	struct ival v[4];

	iv_insert(&root, mk(&v[0], 0, 0));
	iv_insert(&root, mk(&v[1], UINT64_MAX, UINT64_MAX));
	EXPECT(0, 0, 0);
	EXPECT(UINT64_MAX, UINT64_MAX, 1);
	EXPECT(1, UINT64_MAX - 1, NONE);
	EXPECT(0, UINT64_MAX, 0, 1);
	iv_insert(&root, mk(&v[2], 0, UINT64_MAX)); /* all of it: after [0, 0] */
	assert_int_equal(iv_validate(&root), 3);
	assert_true(root.node && iv_entry(root.node)->max == UINT64_MAX);
	EXPECT(0, 0, 0, 2);
	EXPECT(5, 5, 2);
	EXPECT(UINT64_MAX, UINT64_MAX, 2, 1);
	EXPECT(UINT64_MAX - 1, UINT64_MAX, 2, 1);
	assert_ptr_equal(iv_floor(&root, 0, NULL), &v[2]);
	assert_ptr_equal(iv_ceil(&root, 0), &v[0]);
	assert_ptr_equal(iv_ceil(&root, 1), &v[1]);
	assert_ptr_equal(iv_floor(&root, UINT64_MAX - 1, NULL), &v[2]);
	/* taking the all-covering one out brings every maximum back down */
	iv_remove(&root, &v[2]);
	assert_int_equal(iv_validate(&root), 2);
	EXPECT(5, 5, NONE);
	iv_remove(&root, &v[1]);
	assert_int_equal(iv_validate(&root), 1);
	assert_true(iv_entry(root.node)->max == 0);
	EXPECT(1, UINT64_MAX, NONE);
	EXPECT(0, UINT64_MAX, 0);
}

static void test_nested_adjacent_identical(void **state)
{
	(void)state;
	struct vmb_rb_root root = {NULL};
	struct ival v[9];

	iv_insert(&root, mk(&v[0], 0, 100));  /* nested: 0 > 1 > 2 */
	iv_insert(&root, mk(&v[1], 10, 20));
	iv_insert(&root, mk(&v[2], 15, 15));
	iv_insert(&root, mk(&v[3], 50, 200)); /* overlaps 0's end */
	iv_insert(&root, mk(&v[4], 201, 300)); /* adjacent to 3 */
	iv_insert(&root, mk(&v[5], 400, 400)); /* identical: 5, 6, 7 in insertion order */
	iv_insert(&root, mk(&v[6], 400, 400));
	iv_insert(&root, mk(&v[7], 400, 400));
	assert_int_equal(iv_validate(&root), 8);

	EXPECT(15, 15, 0, 1, 2);
	EXPECT(16, 16, 0, 1);
	EXPECT(21, 49, 0);
	EXPECT(101, 101, 3);
	EXPECT(200, 200, 3);
	EXPECT(201, 201, 4);
	EXPECT(200, 201, 3, 4);
	EXPECT(301, 399, NONE);
	EXPECT(400, 400, 5, 6, 7);
	EXPECT(0, UINT64_MAX, 0, 1, 2, 3, 4, 5, 6, 7);
	EXPECT(100, 400, 0, 3, 4, 5, 6, 7);
	/* iter_next from a node that does not meet the range itself */
	assert_ptr_equal(iv_iter_next(&v[4], 0, 15), NULL);
	assert_ptr_equal(iv_iter_next(&v[1], 150, 250), &v[3]);
	assert_ptr_equal(iv_iter_next(&v[4], 0, UINT64_MAX), &v[5]);

	assert_ptr_equal(iv_floor(&root, 400, NULL), &v[7]); /* the last of equal starts */
	assert_ptr_equal(iv_ceil(&root, 400), &v[5]);         /* the first */
	assert_ptr_equal(iv_ceil(&root, 301), &v[5]);
	assert_null(iv_ceil(&root, 401));
	struct ival *above = NULL;
	assert_ptr_equal(iv_floor(&root, 300, &above), &v[4]);
	assert_ptr_equal(above, &v[5]);

	/* the middle identical one goes; the others keep their order */
	iv_remove(&root, &v[6]);
	assert_int_equal(iv_validate(&root), 7);
	EXPECT(400, 400, 5, 7);
	/* a replacement with a longer last raises its ancestors' maxima, a shorter one lowers them */
	iv_replace(&root, &v[2], mk(&v[8], 15, 1000));
	assert_int_equal(iv_validate(&root), 7);
	EXPECT(999, 1000, 8);
	EXPECT(15, 15, 0, 1, 8);
	iv_replace(&root, &v[8], mk(&v[2], 15, 15));
	assert_int_equal(iv_validate(&root), 7);
	EXPECT(999, 1000, NONE);
	/* linked next to a known node: no descent */
	iv_insert_after(&root, &v[4], mk(&v[6], 300, 301));
	EXPECT(300, 300, 4, 6);
	EXPECT(301, 301, 6);
	assert_ptr_equal(iv_next(&v[4]), &v[6]);
	iv_remove(&root, &v[6]);
	iv_insert_before(&root, &v[0], mk(&v[6], 0, 0));
	assert_ptr_equal(iv_first(&root), &v[6]);
	assert_int_equal(iv_validate(&root), 8);
	EXPECT(0, 0, 6, 0);
}

/* validate() notices each kind of damage, and the tree is whole again once it is undone. */
static void test_validate_detects(void **state)
{
	(void)state;
	struct vmb_rb_root root = {NULL};
	struct ival v[32];
	struct vmb_rb_node *r;
	struct ival *x;
	uint64_t keep;

	for (unsigned int i = 0; i < 32; i++)
		iv_insert(&root, mk(&v[i], 10 * i, 10 * i + 5));
	assert_int_equal(iv_validate(&root), 32);
	r = root.node;
	x = iv_entry(r->left->left);

	keep = x->max; /* a subtree maximum off by one */
	x->max = keep + 1;
	assert_int_equal(iv_validate(&root), -1);
	x->max = keep;
	keep = iv_entry(r)->max;
	iv_entry(r)->max = keep - 1;
	assert_int_equal(iv_validate(&root), -1);
	iv_entry(r)->max = keep;
	assert_int_equal(iv_validate(&root), 32);

	keep = x->start; /* empty: start > last */
	x->start = x->last + 1;
	assert_int_equal(iv_validate(&root), -1);
	x->start = keep;

	r->parent_color &= ~(uintptr_t)1; /* red root */
	assert_int_equal(iv_validate(&root), -1);
	r->parent_color |= 1;
	assert_int_equal(iv_validate(&root), 32);

	/*
	 * Out of order where no parent and child show it: the node right before the root
	 * (rightmost of its left subtree) moved past the root. Every last is the same, so no
	 * maximum changes.
	 */
	root.node = NULL;
	for (unsigned int i = 0; i < 32; i++)
		iv_insert(&root, mk(&v[i], 10 * i, 1000));
	assert_int_equal(iv_validate(&root), 32);
	r = root.node;
	x = iv_prev(iv_entry(r));
	keep = x->start;
	x->start = iv_entry(r)->start + 1;
	assert_int_equal(iv_validate(&root), -1);
	x->start = keep;
	assert_int_equal(iv_validate(&root), 32);
}

/* ---- the disjoint mode ---- */

static void test_disjoint_edges(void **state)
{
	(void)state;
	struct vmb_rb_root root = {NULL};
	struct ival v[7], *above = &poison;

	assert_int_equal(dj_validate(&root), 0);
	assert_null(dj_iter_first(&root, 0, UINT64_MAX));
	assert_null(dj_floor(&root, 5, &above));
	assert_null(above);
	assert_null(dj_ceil(&root, 0));

	dj_insert(&root, mk(&v[0], 0, 0)); /* the bottom value */
	dj_insert(&root, mk(&v[1], UINT64_MAX, UINT64_MAX)); /* the top one */
	dj_insert(&root, mk(&v[2], 1, 9)); /* adjacent to 0 */
	dj_insert(&root, mk(&v[3], 10, 10)); /* adjacent to 2 */
	dj_insert(&root, mk(&v[4], 100, UINT64_MAX - 1)); /* adjacent to 1 */
	assert_int_equal(dj_validate(&root), 5);
	DEXPECT(0, 0, 0);
	DEXPECT(0, 1, 0, 2);
	DEXPECT(5, 5, 2); /* inside: the floor holds it */
	DEXPECT(9, 10, 2, 3);
	DEXPECT(11, 99, NONE); /* the floor ends below, its successor starts above */
	DEXPECT(11, 100, 4);
	DEXPECT(UINT64_MAX - 1, UINT64_MAX, 4, 1);
	DEXPECT(UINT64_MAX, UINT64_MAX, 1);
	DEXPECT(0, UINT64_MAX, 0, 2, 3, 4, 1);
	/* iter_next from a node below [s, l] by more than one interval: a new descent */
	assert_ptr_equal(dj_iter_next(&v[0], 10, 10), &v[3]);
	assert_ptr_equal(dj_iter_next(&v[0], 50, 200), &v[4]);
	assert_null(dj_iter_next(&v[0], 11, 99));
	assert_ptr_equal(dj_iter_next(&v[2], 10, 10), &v[3]);
	assert_null(dj_iter_next(&v[3], 0, 5)); /* from a node past the range */
	assert_null(dj_iter_next(&v[1], 0, UINT64_MAX));
	assert_ptr_equal(dj_floor(&root, 50, &above), &v[3]);
	assert_ptr_equal(above, &v[4]);
	assert_ptr_equal(dj_ceil(&root, 11), &v[4]);
	assert_ptr_equal(dj_ceil(&root, UINT64_MAX), &v[1]);

	/* a replacement with a longer last, then a shorter one elsewhere in its gap */
	dj_replace(&root, &v[3], mk(&v[5], 10, 99));
	assert_int_equal(dj_validate(&root), 5);
	DEXPECT(50, 50, 5);
	DEXPECT(99, 100, 5, 4);
	dj_replace(&root, &v[5], mk(&v[3], 20, 20));
	assert_int_equal(dj_validate(&root), 5);
	DEXPECT(10, 19, NONE);
	/* linked next to a known node, filling the gaps on both sides of v[3] */
	dj_insert_after(&root, &v[3], mk(&v[5], 21, 99));
	dj_insert_before(&root, &v[3], mk(&v[6], 10, 19));
	assert_int_equal(dj_validate(&root), 7);
	assert_ptr_equal(dj_next(&v[3]), &v[5]);
	assert_ptr_equal(dj_prev(&v[3]), &v[6]);
	DEXPECT(9, 21, 2, 6, 3, 5);
	dj_remove(&root, &v[0]);
	assert_int_equal(dj_validate(&root), 6);
	assert_ptr_equal(dj_first(&root), &v[2]);
	DEXPECT(0, 0, NONE);
	/* no node's max was written: the mode has no such field */
	for (unsigned int i = 0; i < 7; i++)
		assert_true(v[i].max == 0);
}

/* The disjoint validate() notices each kind of damage, overlaps included. */
static void test_disjoint_validate_detects(void **state)
{
	(void)state;
	struct vmb_rb_root root = {NULL};
	struct ival v[32], *x, *y, *top;
	uint64_t keep;

	for (unsigned int i = 0; i < 32; i++) /* adjacent intervals are disjoint */
		dj_insert(&root, mk(&v[i], 10 * i, 10 * i + 9));
	assert_int_equal(dj_validate(&root), 32);
	x = dj_entry(root.node->left->left);
	y = dj_next(x);

	keep = x->last; /* overlaps its successor by one value */
	x->last = y->start;
	assert_int_equal(dj_validate(&root), -1);
	x->last = keep;
	keep = y->start; /* equal starts */
	y->start = x->start;
	assert_int_equal(dj_validate(&root), -1);
	y->start = keep;
	assert_int_equal(dj_validate(&root), 32);

	keep = x->start; /* empty: start > last */
	x->start = x->last + 1;
	assert_int_equal(dj_validate(&root), -1);
	x->start = keep;

	root.node->parent_color &= ~(uintptr_t)1; /* red root */
	assert_int_equal(dj_validate(&root), -1);
	root.node->parent_color |= 1;
	assert_int_equal(dj_validate(&root), 32);

	/*
	 * Out of order, overlapping nothing: with gaps between the intervals, the node right
	 * before the root moves into the gap right after it.
	 */
	root.node = NULL;
	for (unsigned int i = 0; i < 32; i++)
		dj_insert(&root, mk(&v[i], 10 * i, 10 * i + 4));
	top = dj_entry(root.node);
	x = dj_prev(top);
	keep = x->start;
	x->start = x->last = top->last + 1;
	assert_int_equal(dj_validate(&root), -1);
	x->start = keep;
	x->last = keep + 4;
	assert_int_equal(dj_validate(&root), 32);
}

/* A test run with @mode as its state, named after both. */
#define IN_MODE(fn, mode) {#fn " (" #mode ")", fn, NULL, NULL, (void *)&(mode)}

int main(void)
{
	const struct CMUnitTest tests[] = {
		IN_MODE(test_random_small, aug_mode),
		IN_MODE(test_random_large, aug_mode),
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_ends_of_the_space),
		cmocka_unit_test(test_nested_adjacent_identical),
		cmocka_unit_test(test_validate_detects),
		IN_MODE(test_random_small, disjoint_mode),
		IN_MODE(test_random_large, disjoint_mode),
		cmocka_unit_test(test_disjoint_edges),
		cmocka_unit_test(test_disjoint_validate_detects),
	};

	rng_state = test_seed("core-itree");
	return cmocka_run_group_tests(tests, NULL, NULL);
}
