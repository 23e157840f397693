/* SPDX-License-Identifier: MIT */
/*
 * Description: the B+tree (core/btree.h) against a sorted array: random inserts (by key, after
 * or before a known item), replaces (with a key that sorts in the same place), removes, with
 * the key space narrow (dense neighbours, many splits and merges) and wide; after every
 * operation validate, the count, floor (and above) of random keys and of each key's
 * neighbours, first/last, and every next/prev/key in order. Also: ascending fills pack their
 * leaves, the node cache accounting (reserve, trim, the count of nodes an insert may use is
 * enough), validate notices a broken tree, and equal keys, replaces that move a key past other
 * items, and inserts past a known item. The random seed is printed; set VMB_SEED to
 * replay a run.
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

#include "core/btree.h"
#include "core/list.h"

struct obj {
	uint32_t id;
	struct vmb_bt_item it; /* not first: a missing conversion would show */
	uint64_t key;
};

static uint64_t rng_state;

static uint64_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static struct obj *O(struct vmb_bt_item *it)
{
	return it ? vmb_container_of(it, struct obj, it) : NULL;
}

/* The model: objects in the tree, sorted by key. */
struct model {
	struct obj **a;
	size_t n;
};

static size_t model_lower(const struct model *m, uint64_t k) /* first index with key >= k */
{
	size_t lo = 0, hi = m->n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (m->a[mid]->key < k)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static void model_insert(struct model *m, struct obj *o)
{
	size_t i = model_lower(m, o->key);

	memmove(&m->a[i + 1], &m->a[i], (m->n - i) * sizeof(*m->a));
	m->a[i] = o;
	m->n++;
}

static void model_remove_at(struct model *m, size_t i)
{
	memmove(&m->a[i], &m->a[i + 1], (m->n - i - 1) * sizeof(*m->a));
	m->n--;
}

static void check_floor(struct vmb_bt *t, const struct model *m, uint64_t k)
{
	struct vmb_bt_item *above = (void *)1;
	struct obj *f = O(vmb_bt_floor(t, k, &above));
	size_t i = model_lower(m, k); /* the first >= k */
	struct obj *want_floor, *want_above;

	if (i < m->n && m->a[i]->key == k) {
		want_floor = m->a[i];
		want_above = i + 1 < m->n ? m->a[i + 1] : NULL;
	} else {
		want_floor = i ? m->a[i - 1] : NULL;
		want_above = i < m->n ? m->a[i] : NULL;
	}
	if (f != want_floor || O(above) != want_above)
		fail_msg("floor(%llu): got %p/%p, want %p/%p", (unsigned long long)k, (void *)f,
			 (void *)O(above), (void *)want_floor, (void *)want_above);
}

static void check_all(struct vmb_bt *t, const struct model *m, uint64_t span)
{
	struct vmb_bt_item *it;
	size_t i;

	assert_int_equal(vmb_bt_validate(t), (long)m->n);
	assert_int_equal(t->count, m->n);
	assert_ptr_equal(O(vmb_bt_first(t)), m->n ? m->a[0] : NULL);
	assert_ptr_equal(O(vmb_bt_last(t)), m->n ? m->a[m->n - 1] : NULL);
	for (i = 0, it = vmb_bt_first(t); i < m->n; i++, it = vmb_bt_next(it)) {
		assert_ptr_equal(O(it), m->a[i]);
		assert_true(vmb_bt_key(it) == m->a[i]->key);
		assert_ptr_equal(O(vmb_bt_prev(it)), i ? m->a[i - 1] : NULL);
	}
	assert_null(it);
	for (i = 0; i < 8; i++)
		check_floor(t, m, rnd() % (span + 2));
}

static void run(uint64_t span, unsigned int ops, unsigned int check_every)
{
	struct vmb_bt t;
	struct model m = {calloc(span + 1, sizeof(struct obj *)), 0};
	struct obj *pool = calloc(span + 1, sizeof(*pool));
	struct obj **free_objs = calloc(span + 1, sizeof(*free_objs));
	size_t nfree = 0, peak = 0;
	unsigned int op;

	assert_non_null(m.a);
	assert_non_null(pool);
	assert_non_null(free_objs);
	for (size_t i = 0; i <= span; i++) {
		pool[i].id = (uint32_t)i;
		free_objs[nfree++] = &pool[i];
	}
	vmb_bt_init(&t);
	for (op = 0; op < ops; op++) {
		unsigned int kind = (unsigned int)(rnd() % 10);
		/* phases: grow, then shrink, then churn */
		bool grow = (op / (ops / 6 + 1)) % 2 == 0;

		if (m.n == 0 || (kind < 5 && grow) || (kind < 3 && !grow)) {
			uint64_t k = rnd() % (span + 1);
			size_t i = model_lower(&m, k);
			struct obj *o;

			if (i < m.n && m.a[i]->key == k)
				continue;
			if (!nfree)
				continue;
			o = free_objs[--nfree];
			o->key = k;
			assert_int_equal(vmb_bt_reserve(&t, vmb_bt_insert_cost(&t)), 0);
			switch (rnd() % 3) {
			case 0:
				vmb_bt_insert(&t, k, &o->it);
				break;
			case 1: /* after the floor, if any */
				if (i > 0)
					vmb_bt_insert_after(&t, &m.a[i - 1]->it, k, &o->it);
				else
					vmb_bt_insert(&t, k, &o->it);
				break;
			default:
				if (i < m.n)
					vmb_bt_insert_before(&t, &m.a[i]->it, k, &o->it);
				else
					vmb_bt_insert(&t, k, &o->it);
				break;
			}
			model_insert(&m, o);
		} else if (kind < 7) {
			size_t i = (size_t)(rnd() % m.n);
			/* a new key strictly between the neighbours */
			uint64_t lo = i ? m.a[i - 1]->key + 1 : 0;
			uint64_t hi = i + 1 < m.n ? m.a[i + 1]->key - 1 : span;
			uint64_t k = lo + rnd() % (hi - lo + 1);
			struct obj *o;

			if (!nfree)
				continue;
			o = free_objs[--nfree];
			o->key = k;
			vmb_bt_replace(&t, &m.a[i]->it, k, &o->it);
			free_objs[nfree++] = m.a[i];
			m.a[i] = o;
		} else {
			size_t i = (size_t)(rnd() % m.n);

			vmb_bt_remove(&t, &m.a[i]->it);
			free_objs[nfree++] = m.a[i];
			model_remove_at(&m, i);
		}
		if (m.n > peak)
			peak = m.n;
		if (op % check_every == 0 || m.n < 40)
			check_all(&t, &m, span);
		/* now and then, give the cache back */
		if (rnd() % 64 == 0)
			vmb_bt_trim(&t, 0);
	}
	check_all(&t, &m, span);
	/* and empty it */
	while (m.n) {
		size_t i = (size_t)(rnd() % m.n);

		vmb_bt_remove(&t, &m.a[i]->it);
		model_remove_at(&m, i);
		if (m.n % 97 == 0)
			check_all(&t, &m, span);
	}
	check_all(&t, &m, span);
	assert_null(t.root);
	assert_int_equal(t.height, 0);
	printf("span %llu: %u ops, peak %zu items, %zu nodes cached at the end\n",
	       (unsigned long long)span, ops, peak, t.free_count);
	vmb_bt_fini(&t);
	assert_int_equal(t.nodes, 0);
	free(m.a);
	free(pool);
	free(free_objs);
}

static void test_random_dense(void **state)
{
	(void)state;
	run(400, 40000, 1);
}

static void test_random_wide(void **state)
{
	(void)state;
	run(20000, 60000, 97);
}

static void test_ascending_fill_packs_leaves(void **state)
{
	(void)state;
	enum { W = VMB_BT_WIDTH, N = 4 * W * W };
	static struct obj o[N];
	struct vmb_bt t;
	size_t i;

	vmb_bt_init(&t);
	for (i = 0; i < N; i++) {
		size_t before = t.free_count;

		assert_int_equal(vmb_bt_reserve(&t, vmb_bt_insert_cost(&t)), 0);
		before = t.free_count;
		o[i].key = i * 4096;
		if (i)
			vmb_bt_insert_after(&t, &o[i - 1].it, o[i].key, &o[i].it);
		else
			vmb_bt_insert(&t, o[i].key, &o[i].it);
		assert_true(before - t.free_count <= vmb_bt_insert_cost(&t));
	}
	assert_int_equal(vmb_bt_validate(&t), N);
	/* 4W full leaves, 4 full internal nodes and a root: nothing half empty */
	assert_int_equal(t.nodes - t.free_count, 4 * W + 4 + 1);
	assert_int_equal(t.height, 3);
	vmb_bt_fini(&t);
}

static void test_validate_finds_breakage(void **state)
{
	(void)state;
	enum { N = 2 * VMB_BT_WIDTH + 36 }; /* o[N / 2] and o[0] in different leaves */
	static struct obj o[N];
	struct vmb_bt t;
	struct vmb_bt_node *leaf;
	size_t i;

	vmb_bt_init(&t);
	for (i = 0; i < N; i++) {
		assert_int_equal(vmb_bt_reserve(&t, vmb_bt_insert_cost(&t)), 0);
		o[i].key = i * 2;
		vmb_bt_insert(&t, o[i].key, &o[i].it);
	}
	assert_int_equal(vmb_bt_validate(&t), N);
	fprintf(stderr, "(the checker's complaints below are expected)\n");
	leaf = o[N / 2].it.leaf;
	leaf->key[0]++; /* no longer the parent's copy, or out of order */
	assert_int_equal(vmb_bt_validate(&t), -1);
	leaf->key[0]--;
	o[N / 2].it.leaf = o[0].it.leaf;
	assert_int_equal(vmb_bt_validate(&t), -1);
	o[N / 2].it.leaf = leaf;
	t.count++;
	assert_int_equal(vmb_bt_validate(&t), -1);
	t.count--;
	t.free_count++;
	assert_int_equal(vmb_bt_validate(&t), -1);
	t.free_count--;
	assert_int_equal(vmb_bt_validate(&t), N);
	vmb_bt_fini(&t);
}

/* Keys in order and each item under its own key (o[].key). */
static void check_order(const struct vmb_bt *t, size_t n)
{
	struct vmb_bt_item *it;
	uint64_t prev = 0;
	size_t k = 0;

	assert_int_equal(vmb_bt_validate(t), (long)n);
	for (it = vmb_bt_first(t); it; it = vmb_bt_next(it), k++) {
		assert_true(O(it)->key >= prev);
		assert_int_equal(vmb_bt_key(it), O(it)->key);
		prev = O(it)->key;
	}
	assert_int_equal(k, n);
}

/*
 * What vm/va.c needs beyond a plain B+tree (its "Removed in place"): equal keys; a replace
 * whose key moves past 35 items across leaves, and back, taking no node; inserts after or
 * before an item that land past the items whose keys sort below or above theirs.
 */
static void test_equal_keys_moving_replace(void **state)
{
	(void)state;
	enum { N = 200 };
	static struct obj o[N + 4];
	struct vmb_bt t;
	size_t i, taken, nodes;

	vmb_bt_init(&t);
	for (i = 0; i < N; i++) {
		assert_int_equal(vmb_bt_reserve(&t, vmb_bt_insert_cost(&t)), 0);
		o[i].key = i * 10;
		vmb_bt_insert(&t, o[i].key, &o[i].it);
	}
	/* an equal key: the floor is the last item of that key in order */
	assert_int_equal(vmb_bt_reserve(&t, vmb_bt_insert_cost(&t)), 0);
	o[N].key = 500;
	vmb_bt_insert(&t, o[N].key, &o[N].it);
	check_order(&t, N + 1);
	assert_ptr_equal(vmb_bt_floor(&t, 500, NULL), &o[N].it);
	assert_ptr_equal(vmb_bt_prev(&o[N].it), &o[50].it);

	/* o[10] (key 100) replaced by o[N + 1] under 455: 110..450 move back a slot */
	taken = t.taken;
	nodes = t.nodes;
	o[N + 1].key = 455;
	vmb_bt_replace(&t, &o[10].it, o[N + 1].key, &o[N + 1].it);
	check_order(&t, N + 1);
	assert_ptr_equal(vmb_bt_next(&o[9].it), &o[11].it);
	assert_ptr_equal(vmb_bt_next(&o[45].it), &o[N + 1].it);
	assert_ptr_equal(vmb_bt_next(&o[N + 1].it), &o[46].it);
	assert_ptr_equal(vmb_bt_floor(&t, 200, NULL), &o[20].it);
	/* and back */
	vmb_bt_replace(&t, &o[N + 1].it, o[10].key, &o[10].it);
	check_order(&t, N + 1);
	assert_ptr_equal(vmb_bt_next(&o[9].it), &o[10].it);
	assert_ptr_equal(vmb_bt_next(&o[10].it), &o[11].it);
	assert_ptr_equal(vmb_bt_next(&o[45].it), &o[46].it);
	assert_int_equal(t.taken, taken);
	assert_int_equal(t.nodes, nodes);

	/* after o[10] but past 110..130; before o[30] but back past 210..290 */
	assert_int_equal(vmb_bt_reserve(&t, 2 * vmb_bt_insert_cost(&t)), 0);
	o[N + 2].key = 135;
	vmb_bt_insert_after(&t, &o[10].it, o[N + 2].key, &o[N + 2].it);
	o[N + 3].key = 205;
	vmb_bt_insert_before(&t, &o[30].it, o[N + 3].key, &o[N + 3].it);
	check_order(&t, N + 3);
	assert_ptr_equal(vmb_bt_next(&o[13].it), &o[N + 2].it);
	assert_ptr_equal(vmb_bt_next(&o[20].it), &o[N + 3].it);
	vmb_bt_fini(&t);
}

/*
 * Tagged keys and hints (vm/va.c's "Leaves tell extents"): with tag 0xf, keys order by key & ~0xf
 * alone and come back whole; a hint from vmb_bt_floor_ref() lets an update find its item without
 * reading the item's leaf link (cleared here to prove it), and a hint that is wrong, or older than
 * a trim, falls back to the link.
 */
static void test_tagged_keys_and_hints(void **state)
{
	(void)state;
	enum { N = 100 };
	static struct obj o[N + 2];
	struct vmb_bt t;
	struct vmb_bt_ref f, a;
	struct vmb_bt_node *saved;
	size_t i;

	vmb_bt_init(&t);
	t.tag = 0xf;
	for (i = 0; i < N; i++) {
		assert_int_equal(vmb_bt_reserve(&t, vmb_bt_insert_cost(&t)), 0);
		o[i].key = (i * 16) | (0xf - i % 16); /* tags against the order */
		vmb_bt_insert(&t, o[i].key, &o[i].it);
	}
	assert_int_equal(vmb_bt_validate(&t), N);
	for (i = 0; i < N; i++) {
		vmb_bt_floor_ref(&t, i * 16 + 3, UINT64_MAX, &f, &a);
		assert_ptr_equal(f.it, &o[i].it);
		assert_true(f.key == o[i].key);
		assert_ptr_equal(a.it, i + 1 < N ? &o[i + 1].it : NULL);
		assert_true(a.key == (i + 1 < N ? o[i + 1].key : UINT64_MAX));
		/* above past a bound: its key, and its item only from the floor's own leaf */
		vmb_bt_floor_ref(&t, i * 16 + 3, 0, &f, &a);
		assert_ptr_equal(f.it, &o[i].it);
		assert_true(a.key == (i + 1 < N ? o[i + 1].key : UINT64_MAX));
		assert_true(a.it == NULL || a.it == &o[i + 1].it);
		assert_ptr_equal(vmb_bt_floor(&t, i * 16, NULL), &o[i].it);
		assert_true(vmb_bt_key(&o[i].it) == o[i].key);
	}
	/* an equal key under another tag goes after o[40] (insert), before o[41] */
	assert_int_equal(vmb_bt_reserve(&t, vmb_bt_insert_cost(&t)), 0);
	o[N].key = 40 * 16 + 1;
	vmb_bt_insert(&t, o[N].key, &o[N].it);
	assert_ptr_equal(vmb_bt_next(&o[40].it), &o[N].it);
	assert_ptr_equal(vmb_bt_next(&o[N].it), &o[41].it);

	/* a fresh hint: the item's own link is not read */
	vmb_bt_floor_ref(&t, 70 * 16, UINT64_MAX, &f, &a);
	assert_ptr_equal(f.it, &o[70].it);
	saved = o[70].it.leaf;
	o[70].it.leaf = NULL;
	assert_int_equal(vmb_bt_reserve(&t, vmb_bt_insert_cost(&t)), 0);
	o[N + 1].key = 70 * 16 + 8;
	o[70].it.leaf = NULL;
	vmb_bt_insert_after_hint(&t, &o[70].it, &f.hint, o[N + 1].key, &o[N + 1].it);
	o[70].it.leaf = saved;
	assert_ptr_equal(vmb_bt_next(&o[70].it), &o[N + 1].it);
	assert_int_equal(vmb_bt_validate(&t), N + 2);
	vmb_bt_remove(&t, &o[N + 1].it);
	vmb_bt_floor_ref(&t, 70 * 16, UINT64_MAX, &f, &a);
	saved = o[70].it.leaf;
	o[70].it.leaf = NULL;
	vmb_bt_remove_hint(&t, &o[70].it, &f.hint);
	o[70].it.leaf = saved;
	assert_int_equal(vmb_bt_validate(&t), N);
	assert_ptr_equal(vmb_bt_next(&o[69].it), &o[71].it);

	/* a hint of the wrong leaf, and one older than a trim: the link decides */
	vmb_bt_floor_ref(&t, 0, UINT64_MAX, &f, &a);
	vmb_bt_remove_hint(&t, &o[90].it, &f.hint);
	assert_int_equal(vmb_bt_validate(&t), N - 1);
	vmb_bt_floor_ref(&t, 80 * 16, UINT64_MAX, &f, &a);
	for (i = 0; i < 30; i++)
		vmb_bt_remove(&t, &o[i].it); /* merges give nodes back */
	vmb_bt_trim(&t, 0);
	assert_true(f.hint.frees != t.frees);
	vmb_bt_remove_hint(&t, &o[80].it, &f.hint);
	assert_int_equal(vmb_bt_validate(&t), N - 32);
	assert_ptr_equal(vmb_bt_next(&o[79].it), &o[81].it);
	assert_ptr_equal(vmb_bt_floor(&t, 91 * 16 - 1, NULL), &o[89].it);
	vmb_bt_fini(&t);
}

/*
 * Node memory (btree.h): nodes are malloc'd up to 2 MiB of them, then carved from huge-page
 * chunks; trimming keeps a chunk's nodes aside (spare) and the next reserve takes them back
 * before carving or allocating; fini gives everything back. A tree of 300000 items in random
 * order, emptied, trimmed, reserved again, validated at each stage.
 */
static void test_huge_chunk_nodes(void **state)
{
	const size_t n = 300000;
	struct obj *objs = calloc(n, sizeof(*objs));
	struct vmb_bt t;
	size_t i, huge, spare;

	(void)state;
	assert_non_null(objs);
	rng_state = 0x9e3779b97f4a7c15ull;
	vmb_bt_init(&t);
	for (i = 0; i < n; i++) {
		objs[i].id = (uint32_t)i;
		objs[i].key = rnd();
		assert_int_equal(vmb_bt_reserve(&t, vmb_bt_insert_cost(&t)), 0);
		vmb_bt_insert(&t, objs[i].key, &objs[i].it);
	}
	assert_int_equal(vmb_bt_validate(&t), (long)n);
	assert_true(t.malloc_bytes >= VMB_HUGEBUMP_CHUNK);
	assert_true(t.malloc_bytes < VMB_HUGEBUMP_CHUNK + 2 * sizeof(struct vmb_bt_node));
	assert_true(t.huge.bytes > 0);
	assert_true(t.nodes * sizeof(struct vmb_bt_node) <= vmb_bt_bytes(&t));
	/* every node, malloc'd or from a chunk, on a 64-byte boundary: 16 whole cache lines
	 * (btree.h, "Node memory") */
	for (i = 0; i < n; i++) {
		const struct vmb_bt_node *x;

		for (x = objs[i].it.leaf; x; x = x->parent)
			assert_int_equal((uintptr_t)x % 64, 0);
	}
	/* the last item went into a leaf from a chunk or from malloc: either way found again */
	assert_ptr_equal(vmb_bt_floor(&t, objs[n - 1].key, NULL), &objs[n - 1].it);

	for (i = 0; i < n; i++)
		vmb_bt_remove(&t, &objs[i].it);
	assert_null(t.root);
	huge = t.huge.bytes;
	vmb_bt_trim(&t, 0);
	assert_int_equal(t.malloc_bytes, 0); /* every malloc'd node freed */
	assert_int_equal(t.huge.bytes, huge); /* chunks stay */
	assert_true(t.spare_count > 0);
	assert_int_equal(t.nodes, 0);
	assert_int_equal(vmb_bt_validate(&t), 0);
	spare = t.spare_count;
	assert_int_equal(vmb_bt_reserve(&t, 5), 0);
	assert_int_equal(t.spare_count, spare - 5);
	assert_int_equal(t.malloc_bytes, 0);
	assert_int_equal(t.huge.bytes, huge);
	assert_int_equal(vmb_bt_validate(&t), 0);
	/* a spare node works as any other */
	assert_int_equal(vmb_bt_reserve(&t, vmb_bt_insert_cost(&t)), 0);
	vmb_bt_insert(&t, 42, &objs[0].it);
	assert_ptr_equal(vmb_bt_floor(&t, 42, NULL), &objs[0].it);
	assert_int_equal(vmb_bt_validate(&t), 1);
	vmb_bt_fini(&t);
	assert_int_equal(vmb_bt_bytes(&t), 0);
	assert_int_equal(t.spare_count, 0);
	free(objs);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_random_dense),
		cmocka_unit_test(test_random_wide),
		cmocka_unit_test(test_ascending_fill_packs_leaves),
		cmocka_unit_test(test_validate_finds_breakage),
		cmocka_unit_test(test_equal_keys_moving_replace),
		cmocka_unit_test(test_tagged_keys_and_hints),
		cmocka_unit_test(test_huge_chunk_nodes),
	};

	rng_state = test_seed("core-btree") | 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
