/* SPDX-License-Identifier: MIT */
/*
 * Description: red-black tree: random insert/erase against a bitmap model with the tree
 * validated after every operation, in-order traversal, next/prev, replace.
 * The random seed is printed; set VMB_SEED to replay a run.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "lib/harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/list.h"
#include "core/rbtree.h"

struct knode {
	struct vmb_rb_node rb;
	uint32_t key;
	bool in;
};

static uint64_t rng_state;

static uint64_t rng(void)
{
	return rnd_next(&rng_state); /* lib/harness.h */
}

static uint32_t rng_below(uint32_t n)
{
	return (uint32_t)(rng() % n);
}

static struct knode *kn(struct vmb_rb_node *n)
{
	return n ? vmb_container_of(n, struct knode, rb) : NULL;
}

/* Insert @k by key descent; returns false if its key is already there. */
static bool kinsert(struct vmb_rb_root *root, struct knode *k)
{
	struct vmb_rb_node **link = &root->node, *parent = NULL;

	while (*link) {
		parent = *link;
		if (k->key == kn(parent)->key)
			return false;
		link = k->key < kn(parent)->key ? &parent->left : &parent->right;
	}
	vmb_rb_link(&k->rb, parent, link);
	vmb_rb_insert_fixup(root, &k->rb);
	return true;
}

static struct knode *kfind(const struct vmb_rb_root *root, uint32_t key)
{
	struct vmb_rb_node *n = root->node;

	while (n) {
		if (key == kn(n)->key)
			return kn(n);
		n = key < kn(n)->key ? n->left : n->right;
	}
	return NULL;
}

/* The tree holds exactly the keys k[i].in, in order, reachable both ways. */
static void check_contents(const struct vmb_rb_root *root, const struct knode *k, uint32_t nkeys,
			   long count)
{
	struct vmb_rb_node *n = vmb_rb_first(root);
	long seen = 0;
	uint32_t i;

	for (i = 0; i < nkeys; i++) {
		if (!k[i].in)
			continue;
		assert_non_null(n);
		assert_int_equal(kn(n)->key, k[i].key);
		n = vmb_rb_next(n);
		seen++;
	}
	assert_null(n);
	assert_int_equal(seen, count);

	n = vmb_rb_last(root);
	for (i = nkeys; i-- > 0;) {
		if (!k[i].in)
			continue;
		assert_non_null(n);
		assert_int_equal(kn(n)->key, k[i].key);
		n = vmb_rb_prev(n);
	}
	assert_null(n);
}

/* Keys equal their index, so the array is the sorted model. */
static struct knode *knodes_new(uint32_t nkeys)
{
	struct knode *k = calloc(nkeys, sizeof(*k));
	uint32_t i;

	assert_non_null(k);
	for (i = 0; i < nkeys; i++)
		k[i].key = i;
	return k;
}

/*
 * @nkeys keys, @ops random inserts/erases (insert-biased while the tree is small, erase-biased
 * while it is large, so it breathes), vmb_rb_validate() every @every ops.
 */
static void random_run(uint32_t nkeys, uint32_t ops, uint32_t every)
{
	struct vmb_rb_root root = { NULL };
	struct knode *k = knodes_new(nkeys);
	long count = 0;
	uint32_t op, phase_len = nkeys * 2;

	for (op = 0; op < ops; op++) {
		bool grow = (op / phase_len) % 2 == 0;
		bool do_insert = rng_below(100) < (grow ? 70u : 30u);
		struct knode *x = &k[rng_below(nkeys)];

		if (do_insert) {
			bool ok = kinsert(&root, x);

			assert_int_equal(ok, !x->in);
			if (ok) {
				x->in = true;
				count++;
			}
		} else {
			struct knode *f = kfind(&root, x->key);

			assert_int_equal(f != NULL, x->in);
			if (f) {
				assert_ptr_equal(f, x);
				vmb_rb_erase(&root, &x->rb);
				x->in = false;
				count--;
			}
		}
		if (op % every == 0 || op == ops - 1) {
			long v = vmb_rb_validate(&root);

			if (v != count)
				fail_msg("op %u: validate %ld, expected %ld", op, v, count);
		}
		if (op % (every * 64) == 0)
			check_contents(&root, k, nkeys, count);
	}
	check_contents(&root, k, nkeys, count);

	/* Drain in random order, validating every step. */
	while (count) {
		struct knode *x = &k[rng_below(nkeys)];

		if (!x->in)
			continue;
		vmb_rb_erase(&root, &x->rb);
		x->in = false;
		count--;
		/* A full check costs O(count): every step while small, sampled while large. */
		if (count < 4096 || count % every == 0)
			assert_int_equal(vmb_rb_validate(&root), count);
	}
	assert_null(root.node);
	free(k);
}

/* Small key space: every single operation is followed by a full validation. */
static void test_random_validate_every_op(void **state)
{
	(void)state;
	random_run(2048, 200000, 1);
}

/* 10^5 keys, 10^5 random operations, then a random drain of all of them. */
static void test_random_1e5_keys(void **state)
{
	(void)state;
	random_run(100000, 100000, 997);
}

/* Ascending, descending and alternating-ends insertion; erase always at the root. */
static void test_patterns(void **state)
{
	const uint32_t n = 4096;
	int pattern;

	(void)state;
	for (pattern = 0; pattern < 3; pattern++) {
		struct vmb_rb_root root = { NULL };
		struct knode *k = knodes_new(n);
		long count = 0;
		uint32_t i;

		for (i = 0; i < n; i++) {
			uint32_t idx = pattern == 0 ? i : pattern == 1 ? n - 1 - i :
				       (i % 2 ? n - 1 - i / 2 : i / 2);

			assert_true(kinsert(&root, &k[idx]));
			k[idx].in = true;
			count++;
			assert_int_equal(vmb_rb_validate(&root), count);
		}
		check_contents(&root, k, n, count);
		while (root.node) {
			struct knode *r = kn(root.node);

			vmb_rb_erase(&root, &r->rb);
			r->in = false;
			count--;
			assert_int_equal(vmb_rb_validate(&root), count);
		}
		assert_int_equal(count, 0);
		free(k);
	}
}

static void test_next_prev(void **state)
{
	const uint32_t n = 50000;
	struct vmb_rb_root root = { NULL };
	struct knode *k = knodes_new(n);
	long count = 0;
	uint32_t i;

	(void)state;
	assert_null(vmb_rb_first(&root));
	assert_null(vmb_rb_last(&root));
	assert_int_equal(vmb_rb_validate(&root), 0);
	for (i = 0; i < n; i++) {
		struct knode *x = &k[rng_below(n)];

		if (kinsert(&root, x)) {
			x->in = true;
			count++;
		}
	}
	assert_int_equal(vmb_rb_validate(&root), count);
	check_contents(&root, k, n, count);

	/* next/prev from every node agree with the sorted model. */
	for (i = 0; i < n; i++) {
		struct knode *nx = NULL, *pv = NULL;
		uint32_t j;

		if (!k[i].in)
			continue;
		for (j = i + 1; j < n; j++)
			if (k[j].in) {
				nx = &k[j];
				break;
			}
		for (j = i; j-- > 0;)
			if (k[j].in) {
				pv = &k[j];
				break;
			}
		assert_ptr_equal(kn(vmb_rb_next(&k[i].rb)), nx);
		assert_ptr_equal(kn(vmb_rb_prev(&k[i].rb)), pv);
		if (!nx)
			assert_ptr_equal(vmb_rb_last(&root), &k[i].rb);
		if (!pv)
			assert_ptr_equal(vmb_rb_first(&root), &k[i].rb);
	}
	free(k);
}

static void test_replace(void **state)
{
	const uint32_t n = 10000;
	struct vmb_rb_root root = { NULL };
	struct knode *a = knodes_new(n), *b = knodes_new(n);
	struct knode **cur = calloc(n, sizeof(*cur));
	long count = 0;
	uint32_t i, round;

	(void)state;
	assert_non_null(cur);
	for (i = 0; i < n; i += 2) {
		assert_true(kinsert(&root, &a[i]));
		a[i].in = b[i].in = true;
		cur[i] = &a[i];
		count++;
	}
	assert_int_equal(vmb_rb_validate(&root), count);

	/* Swap random nodes between the two copies; the root gets replaced too. */
	for (round = 0; round < 20000; round++) {
		uint32_t idx = round % 100 ? rng_below(n / 2) * 2 : kn(root.node)->key;
		struct knode *old = cur[idx], *new = old == &a[idx] ? &b[idx] : &a[idx];

		vmb_rb_replace(&root, &old->rb, &new->rb);
		cur[idx] = new;
		if (round % 50 == 0)
			assert_int_equal(vmb_rb_validate(&root), count);
	}
	assert_int_equal(vmb_rb_validate(&root), count);
	check_contents(&root, a, n, count);
	for (i = 0; i < n; i += 2)
		assert_ptr_equal(kfind(&root, i), cur[i]);

	/* Erase through the replacement nodes. */
	for (i = 0; i < n; i += 2) {
		vmb_rb_erase(&root, &cur[i]->rb);
		count--;
		if (i % 64 == 0)
			assert_int_equal(vmb_rb_validate(&root), count);
	}
	assert_null(root.node);
	free(cur);
	free(a);
	free(b);
}

/* vmb_rb_validate() notices broken trees. */
static void test_validate_detects(void **state)
{
	struct vmb_rb_root root = { NULL };
	struct knode *k = knodes_new(64);
	struct vmb_rb_node *r;
	uint32_t i;

	(void)state;
	for (i = 0; i < 64; i++)
		assert_true(kinsert(&root, &k[i]));
	assert_int_equal(vmb_rb_validate(&root), 64);

	r = root.node;
	r->parent_color &= ~(uintptr_t)1; /* red root */
	assert_int_equal(vmb_rb_validate(&root), -1);
	r->parent_color |= 1;
	assert_int_equal(vmb_rb_validate(&root), 64);

	r->left->parent_color ^= 1; /* black height differs between root's sides */
	assert_int_equal(vmb_rb_validate(&root), -1);
	r->left->parent_color ^= 1;

	r->left->parent_color = (uintptr_t)r->right | (r->left->parent_color & 1); /* bad parent */
	assert_int_equal(vmb_rb_validate(&root), -1);
	r->left->parent_color = (uintptr_t)r | (r->left->parent_color & 1);
	assert_int_equal(vmb_rb_validate(&root), 64);
	free(k);
}

/* ---- augmented: an interval tree (largest end per subtree) against brute force ---- */

struct inode {
	struct vmb_rb_node rb;
	uint32_t lo, hi, sub_hi;
	bool in;
};

static struct inode *in_of(const struct vmb_rb_node *n)
{
	return n ? vmb_container_of(n, struct inode, rb) : NULL;
}

static bool in_recompute(struct vmb_rb_node *n)
{
	struct inode *x = in_of(n);
	uint32_t m = x->hi;
	if (n->left && in_of(n->left)->sub_hi > m)
		m = in_of(n->left)->sub_hi;
	if (n->right && in_of(n->right)->sub_hi > m)
		m = in_of(n->right)->sub_hi;
	bool changed = m != x->sub_hi;
	x->sub_hi = m;
	return changed;
}

static void in_copy(struct vmb_rb_node *to, const struct vmb_rb_node *from)
{
	in_of(to)->sub_hi = in_of(from)->sub_hi;
}

static const struct vmb_rb_augment in_aug = {.recompute = in_recompute, .copy = in_copy};

/* Every node's sub_hi is the largest hi of its subtree (recomputed here from scratch). */
static uint32_t in_check(const struct vmb_rb_node *n)
{
	if (!n)
		return 0;
	uint32_t l = in_check(n->left), r = in_check(n->right), m = in_of(n)->hi;
	m = l > m ? l : m;
	m = r > m ? r : m;
	assert_int_equal(in_of(n)->sub_hi, m);
	return m;
}

static unsigned int in_overlaps(const struct vmb_rb_node *n, uint32_t lo, uint32_t hi)
{
	if (!n || in_of(n)->sub_hi < lo)
		return 0;
	unsigned int c = in_overlaps(n->left, lo, hi);
	if (in_of(n)->lo > hi)
		return c;
	return c + (in_of(n)->hi >= lo) + in_overlaps(n->right, lo, hi);
}

/* Random inserts (equal starts allowed) and erases; after each, the tree's values, and an
 * overlap count against a scan of every live interval. */
static void test_augmented_intervals(void **state)
{
	(void)state;
	enum { N = 1500, OPS = 60000 };
	struct inode *v = calloc(N, sizeof(*v));
	struct vmb_rb_root root = {NULL};
	long count = 0;
	assert_non_null(v);
	for (unsigned int op = 0; op < OPS; op++) {
		struct inode *x = &v[rng_below(N)];
		if (!x->in) {
			x->lo = rng_below(100000);
			x->hi = x->lo + (rng_below(8) ? rng_below(300) : rng_below(30000));
			struct vmb_rb_node **link = &root.node, *parent = NULL;
			while (*link) {
				parent = *link;
				link = x->lo < in_of(parent)->lo ? &parent->left : &parent->right;
			}
			x->sub_hi = UINT32_MAX; /* stale: the insert must set it */
			vmb_rb_insert_aug(&root, &x->rb, parent, link, &in_aug);
			x->in = true;
			count++;
		} else {
			vmb_rb_erase_aug(&root, &x->rb, &in_aug);
			x->in = false;
			count--;
		}
		if (count < 200 || op % 50 == 0) {
			assert_int_equal(vmb_rb_validate(&root), count);
			in_check(root.node);
		}
		uint32_t qlo = rng_below(100000), qhi = qlo + rng_below(2000);
		unsigned int want = 0;
		for (unsigned int i = 0; i < N; i++)
			want += v[i].in && v[i].lo <= qhi && v[i].hi >= qlo;
		assert_int_equal(in_overlaps(root.node, qlo, qhi), want);
	}
	free(v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_random_validate_every_op),
		cmocka_unit_test(test_random_1e5_keys),
		cmocka_unit_test(test_patterns),
		cmocka_unit_test(test_next_prev),
		cmocka_unit_test(test_replace),
		cmocka_unit_test(test_validate_detects),
		cmocka_unit_test(test_augmented_intervals),
	};
	rng_state = test_seed("rbtree");
	return cmocka_run_group_tests(tests, NULL, NULL);
}
