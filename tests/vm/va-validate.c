/* SPDX-License-Identifier: MIT */
/*
 * Description: the VA tree's checker finds what it must. A valid tree of three mappings is
 * corrupted one way at a time (the B+tree's height and keys, counts, an empty or misaligned interval,
 * overlapping neighbours, unknown or contradictory flags, a BO where none belongs and none where
 * one must, the node cache, the byte count); each corruption gives -EUCLEAN and, undone, 0
 * again. A checker that cannot fail proves nothing: this is what makes the others' "validate
 * after every step" mean something. And planning with its allocations failing: -ENOMEM, the
 * tree as it was.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>

#include "core/alloc.h"
#include "vm/va.h"

#define PG UINT64_C(4096)

static char bo_a, bo_b;

static void map(struct vmb_va_tree *t, uint64_t s, uint64_t l, void *bo, uint32_t flags)
{
	struct vmb_va_plan p;
	struct vmb_va_obj obj = {.bo = bo, .flags = flags};
	vmb_va_plan_init(&p);
	assert_int_equal(vmb_va_plan_map(t, &p, s, l, &obj), 0);
	vmb_va_apply(t, &p);
	vmb_va_plan_fini(t, &p);
}

static struct vmb_va *nth(struct vmb_va_tree *t, int n)
{
	struct vmb_va *va = vmb_va_first(t);
	while (n-- > 0)
		va = vmb_va_next(va);
	return va;
}

#define BAD(expr_set, expr_undo)                                                                 \
	do {                                                                                     \
		expr_set;                                                                        \
		assert_int_equal(vmb_va_tree_validate(&t), -EUCLEAN);                            \
		expr_undo;                                                                       \
		assert_int_equal(vmb_va_tree_validate(&t), 0);                                   \
	} while (0)

static void test_each_corruption_is_found(void **state)
{
	(void)state;
	struct vmb_va_tree t;
	vmb_va_tree_init(&t);
	map(&t, 0, 4 * PG - 1, &bo_a, 0);
	map(&t, 8 * PG, 9 * PG - 1, NULL, VMB_VA_NULL);
	map(&t, 16 * PG, 20 * PG - 1, &bo_b, VMB_VA_READONLY);
	assert_int_equal(t.count, 3);
	assert_int_equal(vmb_va_tree_validate(&t), 0);
	struct vmb_va *a = nth(&t, 0), *n = nth(&t, 1), *b = nth(&t, 2);
	fprintf(stderr, "(the checker's complaints below are expected)\n");

	/* the B+tree's shape: a wrong height, a mapping held under a key that is not its start */
	BAD(t.bt.height++, t.bt.height--);
	BAD(a->bt.leaf->key[0] += PG, a->bt.leaf->key[0] -= PG);
	/* counts */
	BAD(t.count++, t.count--);
	/* intervals */
	uint64_t keep = a->start;
	BAD(a->start = 5 * PG, a->start = keep); /* start > last: empty (a freed node's look) */
	keep = a->last;
	BAD(a->last = 4 * PG - 2, a->last = keep); /* not page aligned */
	keep = n->start;
	BAD(n->start = 8 * PG + 512, n->start = keep);
	keep = a->last;
	BAD(a->last = 9 * PG - 1, a->last = keep); /* runs into the next mapping */
	/* flags and objects */
	BAD(b->obj.flags |= 1u << 7, b->obj.flags &= ~(1u << 7));
	BAD(n->obj.flags |= VMB_VA_USERPTR, n->obj.flags &= ~VMB_VA_USERPTR);
	BAD(n->obj.bo = &bo_a, n->obj.bo = NULL);
	BAD(a->obj.bo = NULL, a->obj.bo = &bo_a);
	/* the node cache and the byte count */
	BAD(t.free_count++, t.free_count--);
	size_t bytes = t.node_bytes;
	BAD(t.node_bytes = 0, t.node_bytes = bytes);
	vmb_va_tree_fini(&t);
}

/* Planning allocates (nodes, longer step arrays): each failure is -ENOMEM, the tree untouched. */
static void test_allocation_failures(void **state)
{
	(void)state;
	struct vmb_va_tree t;
	struct vmb_va_plan p;
	struct vmb_va_obj obj = {.bo = &bo_a};
	vmb_va_tree_init(&t);

	/* an empty tree has no node cache yet: the MAP's node */
	vmb_va_plan_init(&p);
	vmb_alloc_fail_after(1);
	assert_int_equal(vmb_va_plan_map(&t, &p, 0, PG - 1, &obj), -ENOMEM);
	vmb_alloc_fail_after(0);
	vmb_va_plan_fini(&t, &p);
	assert_int_equal(t.count, 0);
	assert_int_equal(vmb_va_tree_validate(&t), 0);

	/* ten mappings; one unmap over all of them needs more steps than a plan holds inline */
	for (uint64_t i = 0; i < 10; i++)
		map(&t, 2 * i * PG, (2 * i + 1) * PG - 1, i & 1 ? &bo_a : &bo_b, 0);
	vmb_va_plan_init(&p);
	vmb_alloc_fail_after(1);
	assert_int_equal(vmb_va_plan_unmap(&t, &p, 0, 20 * PG - 1), -ENOMEM);
	vmb_alloc_fail_after(0);
	vmb_va_plan_fini(&t, &p);
	assert_int_equal(t.count, 10);
	assert_int_equal(vmb_va_tree_validate(&t), 0);
	/* and a map over all of them: the same, then it goes through */
	vmb_va_plan_init(&p);
	vmb_alloc_fail_after(1);
	assert_int_equal(vmb_va_plan_map(&t, &p, 0, 20 * PG - 1, &obj), -ENOMEM);
	vmb_alloc_fail_after(0);
	vmb_va_plan_fini(&t, &p);
	assert_int_equal(t.count, 10);
	assert_int_equal(vmb_va_tree_validate(&t), 0);
	map(&t, 0, 20 * PG - 1, &bo_a, 0);
	assert_int_equal(t.count, 1);
	assert_int_equal(vmb_va_tree_validate(&t), 0);
	vmb_va_tree_fini(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_each_corruption_is_found),
		cmocka_unit_test(test_allocation_failures),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
