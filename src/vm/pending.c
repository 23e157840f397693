/* SPDX-License-Identifier: MIT */
/*
 * ---- the pending binds' ranges: an interval tree ----
 *
 * Binds of different queues are ordered only where their operations' ranges overlap: each
 * pending asynchronous job puts each of its ranges (what its operations touch, merged into
 * sorted disjoint ranges: for UNMAP_ALL the mappings it removes, found at prepare) in the tree,
 * so a 2-op bind at both ends of the vm is not ordered after a bind in the middle. The tree is
 * keyed by lo (equal keys in any order) and keeps each subtree's largest hi, so the overlaps
 * of a range are found in O(log n + k) (a scan of every pending bind took a third of the time
 * with 32 submitters). Device lock.
 */
#include <errno.h>
#include <stdlib.h>

#include "vm/job.h"

static struct job_range *range_of(const struct vmb_rb_node *n)
{
	return n ? vmb_container_of(n, struct job_range, node) : NULL;
}

static bool range_recompute(struct vmb_rb_node *n)
{
	struct job_range *j = range_of(n);
	uint64_t m = j->hi;
	if (n->left && range_of(n->left)->sub_hi > m)
		m = range_of(n->left)->sub_hi;
	if (n->right && range_of(n->right)->sub_hi > m)
		m = range_of(n->right)->sub_hi;
	bool changed = m != j->sub_hi;
	j->sub_hi = m;
	return changed;
}

static void range_copy(struct vmb_rb_node *to, const struct vmb_rb_node *from)
{
	range_of(to)->sub_hi = range_of(from)->sub_hi;
}

static const struct vmb_rb_augment range_aug = {.recompute = range_recompute, .copy = range_copy};

static int range_cmp(const void *a, const void *b)
{
	const struct job_range *x = a, *y = b;
	return x->lo < y->lo ? -1 : x->lo > y->lo;
}

/* Sorts the job's ranges and merges those that overlap or touch: sorted and disjoint. */
void ranges_merge(struct vmb_bind_job *job)
{
	unsigned int n = 0;
	if (job->nranges > 1)
		qsort(job->ranges, job->nranges, sizeof(*job->ranges), range_cmp);
	for (unsigned int i = 0; i < job->nranges; i++) {
		struct job_range *r = &job->ranges[i];
		if (n && r->lo <= job->ranges[n - 1].hi + 1) {
			if (r->hi > job->ranges[n - 1].hi)
				job->ranges[n - 1].hi = r->hi;
		} else {
			job->ranges[n++] = *r;
		}
	}
	job->nranges = n;
}

void ranges_insert(struct vmb_vm *vm, struct vmb_bind_job *job)
{
	for (unsigned int i = 0; i < job->nranges; i++) {
		struct job_range *r = &job->ranges[i];
		struct vmb_rb_node **link = &vm->pending_ranges.node, *parent = NULL;
		while (*link) {
			parent = *link;
			link = r->lo < range_of(parent)->lo ? &parent->left : &parent->right;
		}
		vmb_rb_insert_aug(&vm->pending_ranges, &r->node, parent, link, &range_aug);
	}
}

void ranges_remove(struct vmb_vm *vm, struct vmb_bind_job *job)
{
	for (unsigned int i = 0; i < job->nranges; i++)
		vmb_rb_erase_aug(&vm->pending_ranges, &job->ranges[i].node, &range_aug);
}

/*
 * Calls @fn for the job of each pending range under @n that meets [@lo, @hi] (until it returns
 * non-zero, which is returned); a job with several such ranges is met once per range. The
 * recursion follows the tree's height: O(log n).
 */
int ranges_each(const struct vmb_rb_node *n, uint64_t lo, uint64_t hi,
		       int (*fn)(struct vmb_bind_job *p, void *arg), void *arg)
{
	while (n && range_of(n)->sub_hi >= lo) {
		int r = ranges_each(n->left, lo, hi, fn, arg);
		struct job_range *p = range_of(n);
		if (r || p->lo > hi)
			return r; /* everything to the right starts even later */
		if (p->hi >= lo && (r = fn(p->job, arg)))
			return r;
		n = n->right;
	}
	return 0;
}

static long ranges_check(const struct vmb_rb_node *n, uint64_t *max)
{
	if (!n) {
		*max = 0;
		return 0;
	}
	uint64_t l, r;
	long cl = ranges_check(n->left, &l), cr = ranges_check(n->right, &r);
	const struct job_range *j = range_of(n);
	uint64_t m = j->hi > l ? j->hi : l;
	m = m > r ? m : r;
	*max = m;
	/* a node of a job's own array, that job pending */
	bool owned = j->job && j >= j->job->ranges && j < j->job->ranges + j->job->nranges &&
		     !vmb_list_empty(&j->job->vm_link);
	if (cl < 0 || cr < 0 || !owned || j->lo > j->hi || j->sub_hi != m ||
	    (n->left && range_of(n->left)->lo > j->lo) || (n->right && range_of(n->right)->lo < j->lo))
		return -1;
	return cl + cr + 1;
}

int vmb_vm_pending_validate(struct vmb_vm *vm)
{
	long nranges = 0;
	struct vmb_list *pos;
	vmb_list_for_each(pos, &vm->pending) {
		const struct vmb_bind_job *job = vmb_container_of(pos, struct vmb_bind_job, vm_link);
		/* each job's ranges sorted and disjoint (not even touching: they were merged) */
		for (unsigned int i = 0; i < job->nranges; i++) {
			const struct job_range *r = &job->ranges[i];
			if (r->job != job || r->lo > r->hi || (i && r->lo <= job->ranges[i - 1].hi + 1))
				return -EUCLEAN;
		}
		nranges += job->nranges;
	}
	uint64_t max;
	if (vmb_rb_validate(&vm->pending_ranges) != nranges || ranges_check(vm->pending_ranges.node, &max) != nranges)
		return -EUCLEAN;
	return 0;
}
