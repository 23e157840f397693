/* SPDX-License-Identifier: MIT */
/*
 * Introspection and the GPU view: reading and writing a vm's memory through its page tables
 * (the same translation path the GPU engines use), listing mappings, statistics, and checking
 * every internal structure. For tools, tests and debuggers.
 */
#ifndef VMBIND_DEBUG_H
#define VMBIND_DEBUG_H

#include <vmbind/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define VMB_ACCESS_WRITE (1u << 0)

struct vmb_vm_access {
	uint32_t vm_id; /* [in] */
	uint32_t flags; /* [in] VMB_ACCESS_WRITE, else read */
	uint64_t addr;  /* [in] GPU VA, any alignment */
	uint64_t size;  /* [in] bytes, addr + size must not overflow */
	uint64_t data;  /* [in] pointer to the caller's buffer (source or destination) */
	uint64_t reserved[2];
};
/*
 * Read or write @size bytes at GPU VA @addr as the GPU would. Returns: 0; -EFAULT (data 0 with
 * a size; a byte is unmapped, in a vm without SCRATCH_PAGE, where a scratch vm reads 0 and drops
 * writes); -EACCES (write to a READONLY mapping); -EINVAL (flags, reserved, addr + size
 * overflows); -ENOENT; -EIO (the vm is banned: the device failed to commit one of its binds, its
 * page tables are not to be trusted). On error, a write may have stored the bytes before the faulting one, as
 * a GPU would.
 */
VMB_API int vmb_vm_access(struct vmb_client *c, struct vmb_vm_access *args);

/* Mapping flags reported in struct vmb_mapping_info.flags. */
#define VMB_MAPPING_READONLY (1u << 0)
#define VMB_MAPPING_NULL (1u << 1)
#define VMB_MAPPING_USERPTR (1u << 2)

struct vmb_mapping_info {
	uint64_t addr;
	uint64_t range;
	uint64_t offset;     /* BO offset, or host address for USERPTR */
	uint64_t page_sizes; /* VMB_PAGE_* mask of the leaves used */
	uint32_t bo_handle;  /* 0 for NULL/USERPTR, or if the BO's handle was destroyed */
	uint32_t flags;      /* VMB_MAPPING_* */
	uint64_t reserved;
};

struct vmb_vm_query_mappings {
	uint32_t vm_id;        /* [in] */
	uint32_t num_mappings; /* [in] capacity of `mappings`; [out] number of mappings in the vm */
	uint64_t mappings;     /* [in] pointer to struct vmb_mapping_info[num_mappings], or 0 */
	uint64_t reserved[2];
};
/*
 * Lists mappings in address order: writes min(capacity, total) entries and sets num_mappings to
 * the total (call with 0 first to size the array). Returns: 0, -EINVAL (reserved), -ENOENT,
 * -EFAULT (mappings 0 with a non-zero num_mappings).
 */
VMB_API int vmb_vm_query_mappings(struct vmb_client *c, struct vmb_vm_query_mappings *args);

struct vmb_vm_stats {
	uint32_t vm_id; /* [in] */
	uint32_t pad;
	uint64_t num_mappings;    /* [out] */
	uint64_t bytes_mapped;    /* [out] sum of mapping ranges */
	uint64_t va_bytes;        /* [out] memory held by the VA manager */
	uint64_t pt_bytes;        /* [out] page-table memory of this vm */
	uint64_t pt_reserve_bytes; /* [out] page-table memory reserved for future splits */
	uint64_t pt_tables[4];    /* [out] tables per level (0 = leaf level) */
	uint64_t leaves[4];       /* [out] leaves of 4K, 64K, 2M, 1G */
	uint64_t reserved[4];
};
/* Returns: 0, -EINVAL, -ENOENT. */
VMB_API int vmb_vm_query_stats(struct vmb_client *c, struct vmb_vm_stats *args);

struct vmb_client_validate {
	uint32_t flags; /* [in] must be 0 */
	uint32_t pad;
	uint64_t reserved;
};
/*
 * Checks every structure of the client's device (VA trees, page tables, allocators, handle
 * tables, and that each vm's page tables translate exactly its mappings; a banned vm's page
 * tables are not checked: they hold a prefix of its binds). Returns: 0,
 * -EUCLEAN (an inconsistency; details on stderr), -EBUSY (binds are still pending: their vms'
 * tree and page tables differ until they commit), -EINVAL.
 */
VMB_API int vmb_client_validate(struct vmb_client *c, struct vmb_client_validate *args);

/*
 * Tracing: a record of every bind and exec job (when it was submitted, started, ended), for
 * timelines such as Chrome's trace viewer / Perfetto. Recording goes to a ring the start call
 * allocates; when it is full, later events are counted as dropped. Binds that commit in the call
 * (synchronous ones, PREFETCH, the low-memory fallback) are not recorded, nor bind jobs submitted
 * before the start (tracing off, a job takes no time stamps). The ring is the
 * device's: every client of the device instance starts, stops and reads the same one. A record
 * names its vm and queue as the call that submitted the job named them: the submitting client's
 * handles (an exec's vm: the vm handle its exec queue was created on, even once destroyed).
 */
#define VMB_TRACE_BIND 0u
#define VMB_TRACE_EXEC 1u
#define VMB_TRACE_EVICT 2u /* a move job on no queue (ops: 0): an eviction (BOs moved to SYSTEM to make room in VRAM) or an exec's restore (evicted BOs moved back before it) */

struct vmb_trace_event {
	uint32_t kind;     /* VMB_TRACE_* */
	uint32_t queue_id; /* bind queue id in the vm (0: the vm's default) or exec queue handle */
	uint32_t vm_id;    /* the submitting client's vm handle */
	int32_t error;     /* what the job's fence signalled with */
	uint64_t submit_ns; /* CLOCK_MONOTONIC: the call */
	uint64_t ready_ns;  /* its dependencies (in-syncs, its queue's previous job) had signalled */
	uint64_t start_ns;  /* bind: its commit began; exec: its first time slice on the engine */
	uint64_t end_ns;    /* its fence signals (right after) */
	uint32_t engine;    /* exec: the engine's index in vmb_engines_query(); bind: 0 */
	uint32_t ops;       /* bind: operations; exec: 0 */
};

struct vmb_trace_start {
	uint32_t capacity; /* [in] events the ring holds; 0 stops tracing and frees it */
	uint32_t flags;    /* [in] must be 0 */
	uint64_t reserved;
};
/* Returns: 0, -EINVAL (flags, reserved, capacity > 2^24), -ENOMEM. Restarting empties the ring. */
VMB_API int vmb_trace_start(struct vmb_client *c, struct vmb_trace_start *args);

struct vmb_trace_read {
	uint64_t events;     /* [in] pointer to struct vmb_trace_event[num_events] */
	uint32_t num_events; /* [in] room; [out] events written (oldest first, taken off the ring) */
	uint32_t dropped;    /* [out] events lost to a full ring since the last read */
	uint64_t reserved;
};
/* Returns: 0, -EINVAL (reserved), -EFAULT (events 0 with room). */
VMB_API int vmb_trace_read(struct vmb_client *c, struct vmb_trace_read *args);

/*
 * Fault injection (as a kernel driver's debugfs knobs, but an API): make the N-th allocation of a
 * class fail, once or from then on, and list the library's allocation sites with how often each
 * was reached. Compiled into every build, release included: the cost when disarmed is a
 * thread-local test and a relaxed counter per allocation. For tests of an application's error
 * paths and of the library's own unwinding (tests/uapi/fault-harness.c, docs/RELIABILITY.md).
 *
 * Classes (bits of vmb_fault_inject.classes); each class fails with the errno its calls document:
 * HOST_ALLOC: the library's host-memory allocations (-ENOMEM); HOST_MAP: the host mappings it
 * creates for BO memory (-ENOMEM, as a failing mmap); THREAD: the threads it starts (-EAGAIN);
 * PT_PAGE: a page-table page taken from the device's pool outside its split reserve (-ENOMEM, as
 * an exhausted pool); COMMIT: a device's commit of a bind (the asynchronous half: bans the vm,
 * docs/UAPI.md "Failed commits"; @error, -EIO or -ENOMEM, is what it fails with).
 */
#define VMB_INJECT_HOST_ALLOC (1u << 0)
#define VMB_INJECT_HOST_MAP (1u << 1)
#define VMB_INJECT_THREAD (1u << 2)
#define VMB_INJECT_PT_PAGE (1u << 3)
#define VMB_INJECT_COMMIT (1u << 4)

#define VMB_INJECT_ONCE (1u << 0)       /* the nth hit fails, the others succeed */
#define VMB_INJECT_PERSISTENT (1u << 1) /* the nth hit and every later one fail until re-armed */

#define VMB_INJECT_SCOPE_THREAD 0u  /* hits of the calling thread only */
#define VMB_INJECT_SCOPE_PROCESS 1u /* hits of every thread (COMMIT: commits run in the library's workers) */

struct vmb_fault_inject {
	uint32_t classes;  /* [in] VMB_INJECT_HOST_ALLOC and/or _HOST_MAP (one countdown), or one other class */
	uint32_t flags;    /* [in] VMB_INJECT_ONCE or _PERSISTENT with nth; 0 with nth 0 (disarm) */
	uint64_t nth;      /* [in] 1 = the next hit of a site of the classes; 0 disarms */
	uint32_t scope;    /* [in] VMB_INJECT_SCOPE_PROCESS for COMMIT, _THREAD for the others */
	int32_t error;     /* [in] arming COMMIT: -EIO or -ENOMEM; else 0 */
	uint64_t left;     /* [out] hits the previous arming of this countdown still had to go (0: it fired, or was off) */
	uint64_t injected; /* [out] failures the previous arming injected */
	uint64_t reserved[2];
};
/*
 * Arms (or disarms, nth 0) the countdown of @classes: re-arming replaces the previous arming of
 * the same countdown and reports what it did. A once arming that fired is spent: later hits
 * succeed. The countdowns of the calling thread (scope THREAD) are the thread's own: arming one
 * never affects another thread's calls, nor the library's own threads (scheduler workers,
 * engines), whose countdowns are never armed. Returns: 0, -EINVAL (classes 0, unknown or from two countdowns; flags
 * unknown, both, none with nth or set without; scope not the class's; error not -EIO or -ENOMEM
 * when arming COMMIT, not 0 when disarming or for the others; reserved).
 */
VMB_API int vmb_debug_fault_inject(struct vmb_client *c, struct vmb_fault_inject *args);

struct vmb_fault_site {
	uint32_t id;         /* index in the library's list, the same for every call of this build */
	uint32_t site_class; /* one VMB_INJECT_* class bit */
	uint64_t hits;       /* times reached by any thread since load or the last reset; not 0 once reached */
	uint32_t line;       /* source line of the call */
	uint32_t pad;
	char file[64];       /* source file (from src/), NUL-terminated, truncated from the left */
	char func[48];       /* enclosing function, NUL-terminated, truncated */
	uint64_t reserved;
};

#define VMB_INJECT_SITES_RESET (1u << 0) /* zero every hit count after copying them out */

struct vmb_fault_sites {
	uint32_t flags;     /* [in] VMB_INJECT_SITES_RESET */
	uint32_t num_sites; /* [in] capacity of `sites`; [out] number of sites in the library */
	uint64_t sites;     /* [in] pointer to struct vmb_fault_site[num_sites], or 0 */
	uint64_t reserved[2];
};
/*
 * Lists every allocation site of the library (each call of an allocation, mapping, thread start,
 * page-table page take or device commit that fault injection can fail), reached or not, as
 * vmb_vm_query_mappings lists (call with 0 first to size the array). Hit counts are process-wide
 * and exact from the first fault-injection call of the process on (before it, a reached site
 * shows 1); concurrent hits of one site may be counted once. Returns: 0, -EINVAL (flags,
 * reserved), -EFAULT (sites 0 with a non-zero num_sites).
 */
VMB_API int vmb_debug_fault_sites(struct vmb_client *c, struct vmb_fault_sites *args);

#ifdef __cplusplus
}
#endif
#endif
