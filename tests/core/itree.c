/* SPDX-License-Identifier: MIT */
/*
 * Description: typed interval tree (core/itree.h): random inserts (by key, after or before a
 * known node), replaces and removes against a brute-force array, every query (iter_first /
 * iter_next, floor, ceil) checked against a scan, validate after every operation; edge cases
 * (empty tree, 0 and UINT64_MAX, nested, adjacent and identical intervals); validate notices
 * a wrong subtree maximum, a wrong order, an empty interval and a broken red-black shape.
 * The random seed is printed; set VMB_SEED to replay a run.
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

static uint64_t rng_state;
static struct ival poison; /* what an out-parameter holds before a call that must set it */

static uint64_t rng_below(uint64_t n)
{
	return rnd_below(&rng_state, n); /* lib/harness.h */
}

/*
 * Coordinates: 0..COORDS-1 map onto the values 0..COORDS/2-1 and UINT64_MAX-COORDS/2+1..
 * UINT64_MAX, in order, so intervals crowd both ends of the space and some span the middle.
 */
#define COORDS 512u

static uint64_t coord(uint64_t c)
{
	return c < COORDS / 2 ? c : UINT64_MAX - (COORDS - 1 - c);
}

/* A random closed interval: mostly short, sometimes long. */
static void rand_interval(uint64_t *s, uint64_t *l)
{
	uint64_t a = rng_below(COORDS), len = rng_below(8) ? rng_below(8) : rng_below(COORDS);
	uint64_t b = a + len < COORDS ? a + len : COORDS - 1;

	*s = coord(a);
	*l = coord(b);
}

static bool meets(const struct ival *x, uint64_t s, uint64_t l)
{
	return x->start <= l && x->last >= s;
}

/* The tree holds exactly the model's intervals, in an order of nondecreasing start. */
static void check_contents(const struct vmb_rb_root *root, const struct ival *v, unsigned int n, long count)
{
	long seen = 0;
	const struct ival *x, *before = NULL;

	assert_int_equal(iv_validate(root), count);
	for (x = iv_first(root); x; before = x, x = iv_next(x)) {
		assert_true(x >= v && x < v + n && x->in);
		assert_ptr_equal(iv_prev(x), before);
		seen++;
	}
	assert_int_equal(seen, count);
	assert_ptr_equal(iv_last(root), before);
}

/* iter_first/iter_next give exactly the in-order sequence filtered by "meets [s, l]". */
static void check_query(const struct vmb_rb_root *root, const struct ival *v, unsigned int n, uint64_t s,
			uint64_t l)
{
	const struct ival *want = iv_first(root), *got = iv_iter_first(root, s, l);
	unsigned int brute = 0, found = 0;

	for (unsigned int i = 0; i < n; i++)
		brute += v[i].in && meets(&v[i], s, l);
	for (;;) {
		while (want && !meets(want, s, l))
			want = iv_next(want);
		if (got != want)
			fail_msg("query [%#" PRIx64 ", %#" PRIx64 "]: got %p, want %p", s, l, (const void *)got,
				 (const void *)want);
		if (!got)
			break;
		found++;
		got = iv_iter_next(got, s, l);
		want = iv_next(want);
	}
	assert_int_equal(found, brute);
}

/* floor and ceil against a scan of the model. */
static void check_bounds(const struct vmb_rb_root *root, const struct ival *v, unsigned int n, uint64_t a)
{
	struct ival *above = &poison;
	struct ival *fl = iv_floor(root, a, &above), *ce = iv_ceil(root, a);
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
		assert_true(!iv_next(fl) || iv_next(fl)->start > a); /* the last of equal starts */
		assert_ptr_equal(above, iv_next(fl));
	} else {
		assert_ptr_equal(above, iv_first(root));
	}
	assert_int_equal(ce != NULL, any_ge);
	if (ce) {
		assert_true(ce->start == min_ge);
		assert_true(!iv_prev(ce) || iv_prev(ce)->start < a); /* the first of equal starts */
	}
	assert_ptr_equal(iv_floor(root, a, NULL), fl);
}

/* A free node's interval with a start that keeps the order if it is linked right after @pos. */
static void interval_after(const struct ival *pos, struct ival *x)
{
	const struct ival *nx = iv_next(pos);
	uint64_t hi = nx ? nx->start : UINT64_MAX, len;

	x->start = pos->start + (hi > pos->start ? rng_below(hi - pos->start < 64 ? hi - pos->start + 1 : 64) : 0);
	len = rng_below(4) ? rng_below(16) : rng_below(UINT64_MAX);
	x->last = x->start + len < x->start ? UINT64_MAX : x->start + len;
}

static void interval_before(const struct ival *pos, struct ival *x)
{
	const struct ival *pv = iv_prev(pos);
	uint64_t lo = pv ? pv->start : 0, len;

	x->start = pos->start - (pos->start > lo ? rng_below(pos->start - lo < 64 ? pos->start - lo + 1 : 64) : 0);
	len = rng_below(4) ? rng_below(16) : rng_below(UINT64_MAX);
	x->last = x->start + len < x->start ? UINT64_MAX : x->start + len;
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
static void random_run(unsigned int n, unsigned int ops, unsigned int every)
{
	struct vmb_rb_root root = {NULL};
	struct ival *v = calloc(n, sizeof(*v));
	long count = 0;

	assert_non_null(v);
	for (unsigned int i = 0; i < n; i++)
		v[i].id = i;
	for (unsigned int op = 0; op < ops; op++) {
		bool grow = (op / (2 * n)) % 2 == 0;
		unsigned int what = (unsigned int)rng_below(100);
		struct ival *pos = random_in(v, n, count), *x = random_out(v, n, count);

		/* junk in the free node's max, as a reused node would have */
		if (x)
			x->max = rng_below(2) ? UINT64_MAX : 0;
		if (x && what < (grow ? 60u : 30u)) {
			if (!pos || what % 3 == 0) {
				rand_interval(&x->start, &x->last);
				iv_insert(&root, x);
			} else if (what % 3 == 1) {
				interval_after(pos, x);
				iv_insert_after(&root, pos, x);
			} else {
				interval_before(pos, x);
				iv_insert_before(&root, pos, x);
			}
			x->in = true;
			count++;
		} else if (x && pos && what < 75) {
			/* a replacement sorts where the victim did: between its neighbours */
			const struct ival *pv = iv_prev(pos), *nx = iv_next(pos);
			uint64_t lo = pv ? pv->start : 0, hi = nx ? nx->start : UINT64_MAX;

			x->start = lo + rng_below(hi - lo < 64 ? hi - lo + 1 : 64);
			if (rng_below(2))
				x->start = pos->start;
			x->last = rng_below(3) ? x->start + rng_below(COORDS) : UINT64_MAX;
			if (x->last < x->start)
				x->last = UINT64_MAX;
			iv_replace(&root, pos, x);
			pos->in = false;
			x->in = true;
		} else if (pos) {
			iv_remove(&root, pos);
			pos->in = false;
			count--;
		}
		if (iv_validate(&root) != count)
			fail_msg("op %u: validate %ld, expected %ld", op, iv_validate(&root), count);
		if (op % every == 0) {
			uint64_t s, l;

			check_contents(&root, v, n, count);
			rand_interval(&s, &l);
			check_query(&root, v, n, s, l);
			check_query(&root, v, n, s, s);
			check_query(&root, v, n, l, l);
			check_query(&root, v, n, 0, UINT64_MAX);
			check_bounds(&root, v, n, s);
			check_bounds(&root, v, n, l);
			if (pos && pos->in) {
				check_bounds(&root, v, n, pos->start);
				check_query(&root, v, n, pos->start, pos->start);
				check_query(&root, v, n, pos->last, pos->last);
			}
		}
	}
	/* drain */
	for (struct ival *x; (x = random_in(v, n, count));) {
		iv_remove(&root, x);
		x->in = false;
		count--;
		assert_int_equal(iv_validate(&root), count);
	}
	assert_null(root.node);
	free(v);
}

static void test_random_small(void **state)
{
	(void)state;
	random_run(64, 100000, 1);
}

static void test_random_large(void **state)
{
	(void)state;
	random_run(2000, 60000, 61);
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
static void expect(const struct vmb_rb_root *root, const struct ival *v, uint64_t s, uint64_t l, const int *want)
{
	const struct ival *x = iv_iter_first(root, s, l);
	unsigned int i = 0;

	for (; x; x = iv_iter_next(x, s, l), i++) {
		if (want[i] < 0)
			fail_msg("[%#" PRIx64 ", %#" PRIx64 "]: more than %u results", s, l, i);
		if (x != &v[want[i]])
			fail_msg("[%#" PRIx64 ", %#" PRIx64 "]: result %u is v[%td], want v[%d]", s, l, i, x - v,
				 want[i]);
	}
	if (want[i] >= 0)
		fail_msg("[%#" PRIx64 ", %#" PRIx64 "]: %u results, want more", s, l, i);
}

#define EXPECT(s, l, ...) expect(&root, v, (s), (l), (const int[]){__VA_ARGS__, -1})
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_random_small),
		cmocka_unit_test(test_random_large),
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_ends_of_the_space),
		cmocka_unit_test(test_nested_adjacent_identical),
		cmocka_unit_test(test_validate_detects),
	};

	rng_state = test_seed("core-itree");
	return cmocka_run_group_tests(tests, NULL, NULL);
}
