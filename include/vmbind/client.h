/* SPDX-License-Identifier: MIT */
/* Clients (opened devices), device and region queries. */
#ifndef VMBIND_CLIENT_H
#define VMBIND_CLIENT_H

#include <vmbind/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Options for vmb_client_open(): they configure the device instance the open makes (an open of a
 * live instance only checks them: -EBUSY). All zero = defaults. Sizes of 0 take the environment
 * (VMB_SOFT_VRAM, VMB_SOFT_SYSTEM, VMB_SOFT_PT_POOL: bytes, with an optional K/M/G suffix), else
 * the device's defaults (soft: 1 GiB VRAM, 1 GiB system, 256 MiB of page tables). A variable
 * that is set must be valid (docs/UAPI.md, "Environment", has every one and its bounds): a bad
 * value is -EINVAL, with a line on stderr.
 */
struct vmb_client_opts {
	uint64_t vram_size;    /* [in] bytes, multiple of 2 MiB */
	uint64_t system_size;  /* [in] bytes, multiple of 4 KiB */
	uint64_t pt_pool_size; /* [in] bytes of page-table memory, multiple of 4 KiB */
	uint32_t flags;        /* [in] VMB_CLIENT_OPEN_*; 0: the environment decides (VMB_SOFT_DISCRETE) */
	uint32_t job_timeout_ms; /* [in] GPU job timeout outside LR vms, ms; 0: VMB_JOB_TIMEOUT_MS or 5000 */
	uint64_t min_page_size; /* [in] the device's smallest page, its granularity (soft: VMB_PAGE_4K,
				 * or VMB_PAGE_2M as a GPU whose pages are 2 MiB at least); 0: 4 KiB */
	uint64_t reserved[3];
};

/*
 * struct vmb_client_opts.flags. DISCRETE: the soft device takes a discrete GPU's shape: 2 MiB
 * granularity (min_page_size 0 or VMB_PAGE_2M; VMB_PAGE_4K is -EINVAL), VRAM not CPU-mappable
 * (vmb_bo_mmap of a BO in VRAM: -EOPNOTSUPP; the GPU view reaches VRAM through the device's
 * copies), and vmb_device_query() reports no VMB_CAP_VRAM_CPU_MAP. Without the flag the
 * environment decides (VMB_SOFT_DISCRETE=1), else the integrated shape (4 KiB, VRAM mappable).
 */
#define VMB_CLIENT_OPEN_DISCRETE (1u << 0)

/*
 * Open a client of @device into *@out. @opts may be NULL.
 *
 * Device instances are per process and shared: @device names one, and the client attaches to
 * the process's live instance of that name, which is made on first use. "soft" (NULL: "soft")
 * and "soft:N", 1 <= N <= 63, are independent soft GPUs (each its own regions, page-table
 * memory, engines and scheduler); "soft:0" is "soft". Clients of one instance share its memory
 * and engines: a BO crosses between them by vmb_bo_export_fd()/vmb_bo_import_fd(); handles are
 * per client. An instance lives while a client of it is open or a BO of it is exported (an open
 * descriptor of vmb_bo_export_fd()): a later open of its name attaches to it.
 * @opts configures an instance when the open makes it. Opening a live instance with @opts: each
 * non-zero vram_size, system_size, pt_pool_size and job_timeout_ms must equal the instance's
 * (its region capacities, page-table memory, job timeout), and VMB_CLIENT_OPEN_DISCRETE needs a
 * discrete instance, else -EBUSY; zero fields and NULL
 * @opts attach to the instance as it is.
 * Returns: 0; -EINVAL (out NULL, bad options (unknown flags, DISCRETE with a 4 KiB min_page_size), a bad environment variable); -ENODEV (unknown or
 * unavailable backend, a malformed name: N empty, not decimal, with a leading zero, or above 63);
 * -EBUSY (@opts conflicts with the live instance); -ENOMEM (host memory, or address space for
 * the regions); -EAGAIN (the scheduler's threads could not start). It opens no file descriptor.
 *
 * fork(): a client belongs to the process that opened it. In a child that inherited it, every
 * call on it returns -EIO and touches nothing (the child's copy names the parent's BO memory,
 * objects and threads); vmb_client_close() there returns 0 and frees nothing. A child opens its
 * own client, which attaches to a new instance: the child never shares the parent's device.
 * (Detected through a pthread_atfork() handler: fork() and anything else that runs those
 * handlers; a raw clone() is not seen.)
 */
VMB_API int vmb_client_open(const char *device, const struct vmb_client_opts *opts,
			    struct vmb_client **out);
/*
 * Closes @c, destroying every object it still holds (a BO another client has a handle of, or
 * that is exported, lives on), and leaves its device instance (its last user destroys it). Calls of other threads still in flight on
 * @c keep it alive, as an ioctl keeps its file: close marks @c closing (a call starting after
 * that returns -ENODEV), ends their waits (vmb_syncobj_wait(), vmb_user_fence_wait() and binds
 * waiting in vmb_vm_bind() return -ENODEV), returns once they have all returned, and only then
 * frees. Using @c after close returned is undefined, as using a closed fd number is: -ENODEV is
 * certain only for calls already in flight when close began, so stop or join the threads that
 * may start calls on @c before closing it.
 * Returns: 0; -EINVAL (NULL); -ENODEV (another close of @c is under way). In a child process
 * that inherited @c across fork(): 0, and nothing is freed (the child's copy of the client's
 * memory, mappings and descriptors stays until it execs or exits).
 */
VMB_API int vmb_client_close(struct vmb_client *c);

/* The backends this build knows (vmb_client_open()'s device names), by index from 0. */
struct vmb_backend_query {
	uint32_t index;       /* [in] 0, 1, ... */
	uint32_t available;   /* [out] 1: it can be opened here; 0: not (reason says why) */
	char name[16];        /* [out] e.g. "soft" */
	char reason[48];      /* [out] why it is not available, e.g. "not built"; "" if available */
	uint64_t reserved[2]; /* [in] must be 0 */
};
/* Takes no client. Returns: 0, -EINVAL (q NULL, reserved), -ENOENT (index past the last backend). */
VMB_API int vmb_backend_query(struct vmb_backend_query *q);
/*
 * Capabilities (vmb_device_query.capabilities), as DRM's GET_CAP: a set bit says that the
 * library and the device offer the feature; a program checks the bit before it relies on it.
 */
#define VMB_CAP_ASYNC_BIND (1ull << 0)    /* VMB_VM_BIND_FLAG_ASYNC, bind queues (queue.h) */
#define VMB_CAP_LR_MODE (1ull << 1)       /* VMB_VM_CREATE_LR_MODE */
#define VMB_CAP_SCRATCH_PAGE (1ull << 2)  /* VMB_VM_CREATE_SCRATCH_PAGE */
#define VMB_CAP_NULL_BIND (1ull << 3)     /* VMB_BIND_FLAG_NULL: sparse ranges */
#define VMB_CAP_USERPTR (1ull << 4)       /* VMB_BIND_OP_MAP_USERPTR */
#define VMB_CAP_PREFETCH (1ull << 5)      /* VMB_BIND_OP_PREFETCH: BO moves between regions */
#define VMB_CAP_USER_FENCE (1ull << 6)    /* user fences at an address (VMB_SYNC_USER_FENCE) */
#define VMB_CAP_USER_FENCE_BO (1ull << 7) /* user fences in a BO (VMB_SYNC_BO_USER_FENCE,
					   * VMB_UFENCE_WAIT_BO): the device's (soft: yes;
					   * CUDA: no); without it -EOPNOTSUPP */
#define VMB_CAP_TIMELINE (1ull << 8)      /* timeline syncobjs */
#define VMB_CAP_SYNCOBJ_FD (1ull << 9)    /* vmb_syncobj_export_fd / vmb_syncobj_import_fd */
#define VMB_CAP_BO_EXPORT (1ull << 10)    /* vmb_bo_export_fd / vmb_bo_import_fd */
#define VMB_CAP_EXEC (1ull << 11)         /* exec queues and vmb_exec (queue.h, cmd.h) */
#define VMB_CAP_VRAM_CPU_MAP (1ull << 12) /* vmb_bo_mmap of a BO in VRAM (integrated shape);
					   * without it (discrete): -EOPNOTSUPP */
#define VMB_CAP_RESTART_MODE (1ull << 13) /* VMB_VM_CREATE_RESTART_MODE (vm.h, bind.h) */
#define VMB_CAP_BO_CHUNK (1ull << 14)     /* vmb_bo_create/vmb_bo_query chunk_size (bo.h),
					   * vmb_vm_create's gpu_base and va_size out (vm.h) */
#define VMB_CAP_BO_VM (1ull << 15)        /* vmb_bo_create's vm_id: BOs private to a vm (bo.h) */
#define VMB_CAP_QUEUE_SERIAL (1ull << 16) /* queues' serials (queue.h): vmb_vm_bind's queue_serial,
					   * vmb_bind_queue_destroy's serial, vmb_exec's and
					   * vmb_user_fence_wait's exec_queue_serial */

struct vmb_device_query {
	char name[16];       /* [out] "soft" */
	uint32_t va_bits;    /* [out] bits of GPU virtual address (48) */
	uint32_t num_regions; /* [out] VMB_REGION_COUNT */
	uint64_t page_sizes; /* [out] VMB_PAGE_* mask of GPU page sizes */
	uint32_t num_engines; /* [out] engines (vmb_engines_query lists them) */
	uint32_t abi_version; /* [out] the library's VMB_ABI_VERSION: major << 16 | minor (types.h) */
	uint64_t min_page_size; /* [out] the smallest of page_sizes: the device's granularity, the
				 * unit of every vm, bind and BO size, address and offset */
	uint64_t capabilities; /* [out] VMB_CAP_* */
	uint64_t reserved;   /* [in] must be 0 */
};
/* Out fields are not read (any value in). Returns: 0, -EINVAL (reserved). */
VMB_API int vmb_device_query(struct vmb_client *c, struct vmb_device_query *q);

/* The device's engines, as struct vmb_engine (queue.h): class and instance. */
struct vmb_engines_query {
	uint64_t engines;     /* [in] pointer to struct vmb_engine[num_engines], or 0 */
	uint32_t num_engines; /* [in] room at `engines`; [out] how many the device has */
	uint32_t pad;
	uint64_t reserved[2];
};
/* Returns: 0; -EINVAL (pad, reserved); -EFAULT (engines 0 with num_engines). Fills at most
 * num_engines entries and sets num_engines to the device's count. */
VMB_API int vmb_engines_query(struct vmb_client *c, struct vmb_engines_query *q);

struct vmb_region_query {
	uint32_t region;        /* [in] VMB_REGION_* */
	uint32_t pad;
	uint64_t capacity;      /* [out] bytes */
	uint64_t free;          /* [out] bytes */
	uint64_t min_alignment; /* [out] smallest allocation unit */
	uint64_t evictions;     /* [out] VRAM: BOs moved to SYSTEM to make room, so far; else 0 */
	uint64_t evicted_bytes; /* [out] VRAM: their bytes */
	uint32_t restores;      /* [out] VRAM: evicted BOs moved back (their placements exclude
				 * SYSTEM), so far, modulo 2^32; else 0 */
	uint32_t reserved;      /* [in] must be 0 */
};
/* Returns: 0, -EINVAL (unknown region, non-zero pad/reserved). */
VMB_API int vmb_region_query(struct vmb_client *c, struct vmb_region_query *q);

#ifdef __cplusplus
}
#endif
#endif
