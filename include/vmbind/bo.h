/* SPDX-License-Identifier: MIT */
/*
 * Buffer objects. A BO has a size, allowed placements and a current region; its contents are
 * never lost: its memory is its own pages, which a move (PREFETCH) does not copy or replace, so
 * writes through the CPU pointer or the GPU during a move all land. A BO handle can be
 * destroyed while the BO is still mapped in a vm or for the CPU: the memory, and its room in
 * the region, live until the last of the handle, its GPU mappings and its CPU mapping is gone.
 * A BO belongs to its device; handles are per client, and one BO may have a handle in several
 * clients of its device (vmb_bo_export_fd / vmb_bo_import_fd below): it lives until the last of
 * them, their mappings and its exported descriptors is gone. CPU mappings: each client's
 * vmb_bo_mmap calls are its own (counted per client: a client unmaps only what it mapped, and
 * closing it leaves another client's mapping working); all clients of one BO get the same pointer.
 */
#ifndef VMBIND_BO_H
#define VMBIND_BO_H

#include <vmbind/types.h>

#ifdef __cplusplus
extern "C" {
#endif

struct vmb_bo_create {
	uint64_t size;       /* [in] bytes, > 0, a multiple of the min_alignment of every region
			      * placements allows (vmb_region_query; each a multiple of the
			      * device's minimum page size) */
	uint32_t placements; /* [in] VMB_PLACE_* mask, non-zero; placed in VRAM if allowed and free,
			      * else SYSTEM if allowed and free, else (VRAM allowed) at first use */
	uint32_t flags;      /* [in] none defined: must be 0 */
	uint32_t handle;     /* [out] */
	uint32_t vm_id;      /* [in] 0, or a vm of the client the BO is private to (below;
			      * VMB_CAP_BO_VM; was pad) */
	uint64_t chunk_size; /* [in] the BO's chunk (below): 0 = the device's default; else a power
			      * of two, a multiple of the device's minimum page size, dividing size
			      * (VMB_CAP_BO_CHUNK; was reserved[0]) */
	uint64_t reserved;
};
/*
 * Chunks: a BO is memory in pieces of chunk_size bytes (a device such as CUDA allocates each as
 * one physical allocation, and can map and unmap only whole ones), and a bind maps and unmaps it
 * in whole chunks: a MAP's bo_offset and range, and the BO offset at which any UNMAP or MAP cuts
 * an existing mapping of it, are multiples of its chunk size (vmb_vm_bind: -EINVAL, nothing
 * changed; removing whole mappings is never refused). vmb_bo_query reports the chunk size. 0 is
 * the device's default: the soft device, its minimum page size (binds cut anywhere on the
 * granularity, as before chunks existed); CUDA, the whole BO (one allocation: the fastest
 * whole-BO bind; then the BO is mapped and unmapped whole). Larger chunks make whole-BO binds
 * cheaper on such a device, smaller ones allow finer partial unbinds. The soft device accepts
 * any chunk_size above and enforces the same rule (it places the memory as without one).
 * (A BO created without backing, below, and chunk_size 0: the minimum page size until it gets
 * one.)
 */
/*
 * A private BO (vm_id non-zero, as Xe's GEM_CREATE vm_id): it may be mapped in that vm only. A
 * MAP of it into any other vm is -EINVAL (vmb_vm_bind), decided where the bind looks the BO up,
 * so a handle destroyed and taken by a private BO meanwhile is refused, never mapped; and so
 * after its vm is destroyed, into every vm, one that takes the same id included (a vm is never
 * another). Imported into another client (vmb_bo_import_fd), it stays private to its vm: no vm
 * of that client maps it.
 */
/* Returns: 0, -EINVAL, -ENOENT (vm_id names no vm of the client), -ENOSPC (larger than every
 * allowed region's capacity; or SYSTEM alone allowed and it has no room), -ENOMEM (host memory, or the process's limit on mappings: see
 * UAPI.md, Known limits). Contents are zero. A BO that may live in VRAM is created past the room
 * its regions have now without a backing, and gets one when first needed: its first bind that
 * maps it (-ENOSPC there if no allowed region has room then) or its first CPU map; `region` of
 * vmb_bo_query names then the region it is to get first (UAPI.md, "Residency"). When VRAM is
 * full, a BO nothing uses (no LR vm binds it, no job of a vm that binds it is pending or running;
 * on a device whose kernels the library does not see, CUDA: no vm binds it) may be evicted to
 * SYSTEM, whatever its placements, contents kept; one whose placements exclude SYSTEM comes back
 * at the next bind that maps it or before the next exec of a vm that maps it. */
VMB_API int vmb_bo_create(struct vmb_client *c, struct vmb_bo_create *args);

struct vmb_bo_destroy {
	uint32_t handle; /* [in] */
	uint32_t pad;
	uint64_t reserved;
};
/*
 * Destroys the handle. GPU mappings and a CPU mapping keep the BO (see above): the CPU pointer
 * stays valid, shows the BO's memory and is not given to another BO until vmb_bo_munmap with
 * handle 0 and that pointer (or vmb_client_close).
 * Returns: 0, -EINVAL, -ENOENT.
 */
VMB_API int vmb_bo_destroy(struct vmb_client *c, struct vmb_bo_destroy *args);

struct vmb_bo_query {
	uint32_t handle;     /* [in] */
	uint32_t pad;
	uint64_t size;       /* [out] */
	uint32_t placements; /* [out] */
	uint32_t region;     /* [out] current VMB_REGION_* */
	uint32_t vm_mappings; /* [out] live GPU mappings of this BO, all vms */
	uint32_t pad2;
	uint64_t chunk_size; /* [out] its chunk size (vmb_bo_create): the granularity of its binds;
			      * was reserved[0], whose value in is not read */
	uint64_t reserved;
};
/* Returns: 0, -EINVAL, -ENOENT. */
VMB_API int vmb_bo_query(struct vmb_client *c, struct vmb_bo_query *args);

struct vmb_bo_mmap {
	uint32_t handle; /* [in] */
	uint32_t flags;  /* [in] none defined: must be 0 */
	uint64_t ptr;    /* [out] CPU address of the contents (size bytes, read/write) */
	uint64_t reserved;
};
/*
 * Map the BO's contents for the CPU. Repeated maps return the same pointer (counted); the
 * pointer stays valid across moves (it maps the BO's own pages, which do not move) and after
 * vmb_bo_destroy, until its last vmb_bo_munmap. vmb_client_close unmaps what is left.
 * A device without VMB_CAP_VRAM_CPU_MAP (the soft device's discrete shape) does not map a BO
 * that is in VRAM (or moving there): -EOPNOTSUPP; read and write it through the GPU view
 * (vmb_vm_access) or place it in SYSTEM. A pointer taken while the BO was in SYSTEM stays valid
 * if it moves to VRAM later (the soft device's pages are host memory). The device decides
 * (its backing_cpu_map): a device whose memory is its own allocations, not host pages the
 * library can map (CUDA), may refuse every region, SYSTEM too.
 * Returns: 0, -EINVAL, -ENOENT, -ENOMEM (host memory, or the process's limit on mappings),
 * -EOPNOTSUPP (a BO in VRAM on a device without VMB_CAP_VRAM_CPU_MAP, or any BO of a device
 * that does not map its memory for the CPU).
 */
VMB_API int vmb_bo_mmap(struct vmb_client *c, struct vmb_bo_mmap *args);

struct vmb_bo_munmap {
	uint32_t handle; /* [in] the BO, or 0: the mapping is named by ptr alone */
	uint32_t pad;
	uint64_t ptr;    /* [in] the pointer vmb_bo_mmap returned */
	uint64_t reserved;
};
/*
 * Drops one vmb_bo_mmap of the BO; the last one unmaps the pointer (and frees the BO if its
 * handle and GPU mappings are gone). With handle 0, ptr alone names the mapping: any CPU
 * mapping of the client's BOs, those whose handle was destroyed included (the only way to
 * unmap those).
 * Returns: 0, -EINVAL (pad or reserved non-zero; ptr is not this BO's mapping, or the BO is not
 * mapped; with handle 0: ptr is no CPU mapping of the client), -ENOENT (handle not 0 and
 * unknown).
 */
VMB_API int vmb_bo_munmap(struct vmb_client *c, struct vmb_bo_munmap *args);

/*
 * Sharing a BO between clients, as DRM PRIME: vmb_bo_export_fd() gives a file descriptor that
 * names the BO; vmb_bo_import_fd() in a client of the same device instance (vmb_client_open())
 * gives that client a handle of the same BO: one object, its memory shared (a write through one
 * client's CPU pointer or GPU mapping is seen through the other's). The descriptor holds the BO
 * (and keeps its device instance alive) until the application has closed every copy of it; the
 * library then drops its reference shortly after (a watcher thread sees the close), so the BO's
 * room in its region returns once its handles and mappings are gone too. The descriptor is a
 * socket (one end of a socketpair): the application may dup it, poll it or pass it on, but
 * must not read, write or shut it down. Each export makes a new descriptor.
 */
struct vmb_bo_export_fd {
	uint32_t handle; /* [in] */
	uint32_t flags;  /* [in] none defined: must be 0 */
	int32_t fd;      /* [out] a new descriptor, close-on-exec */
	uint32_t pad;
	uint64_t reserved[2];
};
/* Returns: 0, -EINVAL (flags, pad, reserved), -ENOENT, -EMFILE, -ENFILE (no file descriptor
 * left), -ENOMEM, -ENOSPC (the system's limit of epoll watches), -EAGAIN (the watcher thread
 * could not start). */
VMB_API int vmb_bo_export_fd(struct vmb_client *c, struct vmb_bo_export_fd *args);

struct vmb_bo_import_fd {
	int32_t fd;      /* [in] a descriptor from vmb_bo_export_fd() (or a duplicate of it) */
	uint32_t flags;  /* [in] none defined: must be 0 */
	uint32_t handle; /* [out] the client's handle of the BO */
	uint32_t pad;
	uint64_t reserved[2];
};
/*
 * A BO the client already has a handle of gives that handle (no new reference); otherwise a new
 * handle, which holds the BO as vmb_bo_create's does (vmb_bo_destroy drops it).
 * Returns: 0, -EINVAL (flags, pad, reserved; fd is not a BO descriptor of this process's
 * vmbind: another kind of file, or a BO exported in a parent before fork()), -EBADF (fd is not
 * an open descriptor), -EXDEV (the BO belongs to another device instance than the client's),
 * -ENOMEM.
 */
VMB_API int vmb_bo_import_fd(struct vmb_client *c, struct vmb_bo_import_fd *args);

#ifdef __cplusplus
}
#endif
#endif
