/* SPDX-License-Identifier: MIT */
/*
 * ---- the pending binds' ranges: an interval tree ----
 *
 * Binds of different queues are ordered only where their operations' ranges overlap: each
 * pending asynchronous job puts each of its ranges (what its operations touch, merged into
 * sorted disjoint ranges: for UNMAP_ALL the mappings it removes, found at prepare) in the tree,
 * so a 2-op bind at both ends of the vm is not ordered after a bind in the middle. The tree
 * (core/itree.h) is keyed by lo (equal keys in any order) and keeps each subtree's largest hi, so the overlaps
 * of a range are found in O(log n + k) (a scan of every pending bind took a third of the time
 * with 32 submitters). Device lock.
 */
#include <errno.h>
#include <stdlib.h>

#include "core/itree.h"
#include "vm/job.h"

VMB_ITREE_DEFINE(range_tree, struct job_range, node, lo, hi, sub_hi)

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
	for (unsigned int i = 0; i < job->nranges; i++)
		range_tree_insert(&vm->pending_ranges, &job->ranges[i]);
}

void ranges_remove(struct vmb_vm *vm, struct vmb_bind_job *job)
{
	for (unsigned int i = 0; i < job->nranges; i++)
		range_tree_remove(&vm->pending_ranges, &job->ranges[i]);
}

/*
 * Calls @fn for the job of each pending range in @root that meets [@lo, @hi] (until it returns
 * non-zero, which is returned); a job with several such ranges is met once per range.
 */
int ranges_each(const struct vmb_rb_root *root, uint64_t lo, uint64_t hi,
		int (*fn)(struct vmb_bind_job *p, void *arg), void *arg)
{
	for (struct job_range *p = range_tree_iter_first(root, lo, hi); p; p = range_tree_iter_next(p, lo, hi)) {
		int r = fn(p->job, arg);
		if (r)
			return r;
	}
	return 0;
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
	if (range_tree_validate(&vm->pending_ranges) != nranges)
		return -EUCLEAN;
	/* each node a range of its own job's array, that job pending */
	for (const struct job_range *j = range_tree_first(&vm->pending_ranges); j; j = range_tree_next(j))
		if (!j->job || j < j->job->ranges || j >= j->job->ranges + j->job->nranges ||
		    vmb_list_empty(&j->job->vm_link))
			return -EUCLEAN;
	return 0;
}
