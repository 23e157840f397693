/* SPDX-License-Identifier: MIT */
/*
 * vm objects: creation, teardown, the GPU view (reads and writes through the page tables) and
 * the consistency check between the logical state (VA tree) and the physical one (page tables).
 * Locking: the caller holds the device lock for every function here.
 */
#include "vm/vm.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <vmbind/vm.h>

#include "core/alloc.h"
#include "dev/core.h"

int vmb_vm_new(struct vmb_device *dev, uint32_t flags, uint64_t va_size, uint64_t page_sizes,
	       struct vmb_vm **out)
{
	struct vmb_vm *vm = vmb_calloc(1, sizeof(*vm));
	if (!vm)
		return -ENOMEM;
	int err = dev->ops->vm_create(dev, va_size, page_sizes, flags & VMB_VM_CREATE_SCRATCH_PAGE, &vm->dvm,
				       &vm->gpu_base);
	if (err) {
		free(vm);
		return err;
	}
	vm->dev = dev;
	vm->serial = vmb_serial_next();
	vmb_mutex_init(&vm->lock);
	vmb_combine_init(&vm->combine);
	atomic_init(&vm->refs, 1);
	vm->flags = flags;
	atomic_init(&vm->banned, 0);
	atomic_init(&vm->exec_queued, false);
	vm->va_size = va_size;
	vm->page_sizes = page_sizes;
	vmb_va_tree_init(&vm->tree);
	vm->tree.granule = dev->min_page_size;
	vm->tree.floor = VMB_VM_UNMAP_FLOOR;
	if (vmb_va_reserve(&vm->tree, VMB_VM_UNMAP_RESERVE)) {
		vmb_va_tree_fini(&vm->tree);
		dev->ops->vm_destroy(dev, vm->dvm);
		free(vm);
		return -ENOMEM;
	}
	vmb_list_init(&vm->vm_bos);
	vmb_list_init(&vm->pending);
	vmb_list_init(&vm->orphans);
	vmb_list_init(&vm->restarts);
	vmb_list_init(&vm->default_queue.pending);
	vmb_handle_table_init(&vm->queues);
	pthread_mutex_init(&vm->faults.lock, NULL);
	*out = vm;
	return 0;
}

void vmb_vm_fault_record(struct vmb_vm *vm, const struct vmb_vm_fault *f)
{
	pthread_mutex_lock(&vm->faults.lock);
	if (vm->faults.n < VMB_VM_MAX_FAULTS)
		vm->faults.rec[vm->faults.n++] = *f;
	else
		vm->faults.dropped++;
	pthread_mutex_unlock(&vm->faults.lock);
}

uint32_t vmb_vm_faults_read(struct vmb_vm *vm, struct vmb_vm_fault *out, uint64_t *dropped)
{
	pthread_mutex_lock(&vm->faults.lock);
	uint32_t n = vm->faults.n;
	memcpy(out, vm->faults.rec, n * sizeof(*out));
	*dropped = vm->faults.dropped;
	pthread_mutex_unlock(&vm->faults.lock);
	return n;
}

void vmb_bind_queue_get(struct vmb_bind_queue *q)
{
	if (q->id)
		atomic_fetch_add(&q->refs, 1);
}

void vmb_bind_queue_put(struct vmb_bind_queue *q)
{
	if (q->id && atomic_fetch_sub(&q->refs, 1) == 1) {
		vmb_sched_entity_fini(&q->entity);
		free(q->spare); /* the last reference: no call holds the queue */
		free(q);
	}
}

bool vmb_vm_residency_unsettled(const struct vmb_vm *vm)
{
	return atomic_load(&vm->dev->misplaced) || atomic_load(&vm->dev->misplacing);
}

bool vmb_vm_exec_needs_lock(struct vmb_vm *vm)
{
	return !atomic_load_explicit(&vm->exec_queued, memory_order_acquire) || vmb_vm_residency_unsettled(vm);
}

void vmb_vm_exec_queued(struct vmb_vm *vm)
{
	if (atomic_load_explicit(&vm->exec_queued, memory_order_relaxed))
		return;
	vmb_lock_assert(vmb_lock_mode(&vm->lock) != VMB_LOCK_NONE);
	atomic_store_explicit(&vm->exec_queued, true, memory_order_release);
}

struct vmb_bind_queue *vmb_vm_queue(struct vmb_vm *vm, uint32_t id)
{
	return id ? vmb_handle_lookup(&vm->queues, id) : &vm->default_queue;
}

void vmb_vm_lock(struct vmb_vm *vm)
{
	vmb_lock_assert(vmb_lock_mode(&vm->dev->lock) == VMB_LOCK_SHARED);
	vmb_mutex_lock(&vm->lock);
}

void vmb_vm_unlock(struct vmb_vm *vm) { vmb_mutex_unlock(&vm->lock); }

void vmb_vm_close(struct vmb_vm *vm)
{
	vmb_vm_assert_locked(vm);
	vm->closed = true;
	vmb_vm_drain(vm);
	vmb_vm_put(vm);
}

uint64_t vmb_bo_vm_mappings(const struct vmb_bo *bo)
{
	const struct vmb_list *pos;
	uint64_t n = 0;
	vmb_lock_assert_excl(&bo->dev->lock);
	vmb_list_for_each(pos, &bo->vm_bos)
		n += vmb_container_of(pos, struct vmb_vm_bo, bo_link)->nvas;
	return n;
}

void vmb_vm_put(struct vmb_vm *vm)
{
	if (atomic_fetch_sub(&vm->refs, 1) == 1)
		vmb_vm_free(vm);
}

void vmb_vm_unlink_bos(struct vmb_vm *vm)
{
	struct vmb_list *pos;
	vmb_dev_assert_cross(vm->dev);
	vmb_list_for_each(pos, &vm->vm_bos)
		vmb_list_del(&vmb_container_of(pos, struct vmb_vm_bo, vm_link)->bo_link);
	vm->unlinked = true;
}

void vmb_vm_free(struct vmb_vm *vm)
{
	struct vmb_list *pos, *tmp;
	struct vmb_bind_queue *q;
	uint32_t h;

	/* the last reference goes under the device lock exclusive (client close, an exec queue's
	 * end), shared (a bind call that held the vm while it was closed) or none (vmb_vm_destroy,
	 * after its lock, which unlinked its BOs: vmb_vm_unlink_bos); in the latter cases
	 * vmb_vm_close() drained it already and nothing can be pending since */
	if (!vmb_list_empty(&vm->pending))
		vmb_vm_drain(vm);
	vmb_sched_entity_fini(&vm->default_queue.entity);
	free(vm->default_queue.spare);
	vmb_fence_unref(vm->move_last);
	vmb_fence_unref(vm->resident_last);
	vmb_vm_kept_free(vm);
	for (h = 0; (q = vmb_handle_pop(&vm->queues, &h));)
		vmb_bind_queue_put(q);
	vmb_handle_table_fini(&vm->queues);

	/* First the vm leaves every BO's list of vms, so that nothing reaches it any more: under a
	 * device lock, other vms bind meanwhile (the cross lock) */
	if (!vm->unlinked) {
		vmb_dev_cross_lock(vm->dev);
		vmb_vm_unlink_bos(vm);
		vmb_dev_cross_unlock(vm->dev);
	}
	/* Then the page tables: the device frees every table and reserve at once (vmb_vm_destroy:
	 * with no device lock held). Then the BOs' references, perhaps their last ones (their memory
	 * freed with no lock needed, as at vmb_bo_destroy). */
	vm->dev->ops->vm_destroy(vm->dev, vm->dvm);
	vmb_list_for_each_safe(pos, tmp, &vm->vm_bos) {
		struct vmb_vm_bo *vb = vmb_container_of(pos, struct vmb_vm_bo, vm_link);
		vmb_bo_put(vb->bo);
		free(vb);
	}
	vmb_va_tree_fini(&vm->tree);
	vmb_list_for_each_safe(pos, tmp, &vm->restarts) /* owed, none running (no call holds the vm) */
		free(vmb_container_of(pos, struct vmb_vm_restart, link));
	vmb_combine_fini(&vm->combine);
	vmb_mutex_fini(&vm->lock);
	pthread_mutex_destroy(&vm->faults.lock);
	free(vm);
}

void vmb_vm_ban(struct vmb_vm *vm, int err)
{
	if (atomic_load(&vm->banned))
		return;
	atomic_store(&vm->banned, err);
	vm->dev->ops->vm_ban(vm->dvm);
}

int vmb_vm_rw(struct vmb_vm *vm, uint64_t addr, void *data, uint64_t size, bool write, uint64_t *fault)
{
	vmb_vm_assert_locked(vm);
	if (atomic_load(&vm->banned))
		return -EIO;
	return vm->dev->ops->vm_access(vm->dvm, addr, data, size, write ? VMB_DEV_ACCESS_WRITE : 0, fault);
}

/* Byte @delta of mapping @va translates to byte @off + @delta of @b (its BO's backing, or its
 * userptr's), with the mapping's flags. */
static int check_translation(struct vmb_vm *vm, const struct vmb_va *va, const struct vmb_backing *b,
			     uint64_t off, uint64_t delta)
{
	bool null = va->obj.flags & VMB_VA_NULL;
	uint32_t flags = (va->obj.flags & VMB_VA_READONLY ? VMB_MAP_READONLY : 0) | (null ? VMB_MAP_NULL : 0);
	return vm->dev->ops->map_check(vm->dvm, va->start + delta, null ? NULL : b, off + delta, flags);
}

/* Every page of small mappings; 64 evenly spaced pages and the last of large ones. */
static int check_mapping(struct vmb_vm *vm, const struct vmb_va *va)
{
	struct vmb_device *dev = vm->dev;
	uint64_t range = va->last - va->start + 1, pages = range / 4096, step = pages <= 64 ? 1 : pages / 64;
	struct vmb_backing user;
	const struct vmb_backing *b = NULL;
	uint64_t off = va->obj.offset;
	int err = 0;

	if (va->obj.flags & VMB_VA_USERPTR) {
		/* the job's backing is gone: the same memory again (the soft device allocates nothing) */
		if ((err = dev->ops->backing_userptr(dev, va->obj.offset, range, &user)))
			return err;
		b = &user;
		off = 0;
	} else if (!(va->obj.flags & VMB_VA_NULL)) {
		const struct vmb_vm_bo *vb = va->obj.bo;
		b = &vb->bo->backing;
	}
	for (uint64_t p = 0; p < pages && !err; p += step)
		err = check_translation(vm, va, b, off, p * 4096);
	if (!err)
		err = check_translation(vm, va, b, off, range - 4096);
	if (b == &user)
		dev->ops->backing_userptr_free(dev, &user);
	return err;
}

int vmb_vm_validate(struct vmb_vm *vm)
{
	vmb_vm_assert_locked(vm);
	const struct vmb_device_ops *ops = vm->dev->ops;
	struct vmb_dev_vm_stats st = {0};
	uint64_t bytes = 0, leaf_bytes, in_lists = 0, with_bo = 0;
	struct vmb_list *pos;
	int err;

	int perr = vmb_vm_pending_validate(vm);
	if (perr)
		return perr;
	if (!vmb_list_empty(&vm->pending))
		return -EBUSY; /* tree and page tables differ until the pending jobs commit */
	if (vmb_vm_remaps_pending(vm))
		return -EBUSY; /* another vm's move re-maps here: its preparation pins our tables */
	if (vm->nremaps) { /* counts the pending moves that re-map here (vm.h): none is */
		fprintf(stderr, "vm: nremaps %u with no move pending\n", vm->nremaps);
		return -EUCLEAN;
	}
	/* a banned vm's page tables hold a prefix of its binds (vm.h): only the tree is checked */
	bool phys = !atomic_load(&vm->banned);
	if ((err = vmb_va_tree_validate(&vm->tree)) || (phys && (err = ops->vm_validate(vm->dvm))))
		return err;
	for (struct vmb_va *va = vmb_va_first(&vm->tree); va; va = vmb_va_next(va)) {
		uint64_t range = va->last - va->start + 1;
		bytes += range;
		if (va->last >= vm->va_size) {
			fprintf(stderr, "vm: mapping ends at 0x%llx, past the vm\n", (unsigned long long)va->last);
			return -EUCLEAN;
		}
		with_bo += va->obj.bo != NULL;
		if (phys && (err = check_mapping(vm, va)))
			return err;
	}
	if (bytes != vm->bytes_mapped) {
		fprintf(stderr, "vm: bytes_mapped %llu, tree holds %llu\n", (unsigned long long)vm->bytes_mapped,
			(unsigned long long)bytes);
		return -EUCLEAN;
	}
	/* the page tables map exactly as many bytes as the tree: no stray leaf anywhere */
	ops->vm_stats(vm->dvm, &st);
	leaf_bytes = st.leaves[0] * 4096 + st.leaves[1] * 65536 + st.leaves[2] * (2ull << 20) +
		     st.leaves[3] * (1ull << 30);
	if (phys && leaf_bytes != bytes) {
		fprintf(stderr, "vm: page tables map %llu bytes, the tree %llu\n", (unsigned long long)leaf_bytes,
			(unsigned long long)bytes);
		return -EUCLEAN;
	}
	vmb_list_for_each(pos, &vm->vm_bos) {
		struct vmb_vm_bo *vb = vmb_container_of(pos, struct vmb_vm_bo, vm_link);
		struct vmb_list *v;
		uint64_t n = 0;
		vmb_list_for_each(v, &vb->vas) {
			struct vmb_va *va = vmb_container_of(v, struct vmb_va, bo_link);
			if (va->obj.bo != vb || vmb_va_lookup(&vm->tree, va->start) != va) {
				fprintf(stderr, "vm: vm_bo lists a mapping that is not its own or not in the tree\n");
				return -EUCLEAN;
			}
			n++;
		}
		if (n == 0 || vb->vm != vm || n != vb->nvas) {
			fprintf(stderr, "vm: vm_bo with no mappings, of another vm, or counting %llu of %llu\n",
				(unsigned long long)vb->nvas, (unsigned long long)n);
			return -EUCLEAN;
		}
		in_lists += n;
	}
	if (in_lists != with_bo) {
		fprintf(stderr, "vm: %llu BO mappings in the tree, %llu in vm_bo lists\n", (unsigned long long)with_bo,
			(unsigned long long)in_lists);
		return -EUCLEAN;
	}
	return 0;
}

void vmb_ufences_put(struct vmb_ufence_out *ufs, unsigned int n)
{
	for (unsigned int i = 0; ufs && i < n; i++)
		if (ufs[i].bo)
			vmb_bo_mem_put(ufs[i].bo);
}

void vmb_ufences_free(struct vmb_ufence_out *ufs, unsigned int n)
{
	vmb_ufences_put(ufs, n);
	free(ufs);
}
