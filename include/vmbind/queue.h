/* SPDX-License-Identifier: MIT */
/*
 * Bind queues and exec queues: argument shapes.
 *
 * These structs are final so that clients, the daemon's wire format and later issues share one
 * shape; exec queues' entry points arrive with the soft GPU's engines.
 */
#ifndef VMBIND_QUEUE_H
#define VMBIND_QUEUE_H

#include <vmbind/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A bind queue ("bind engine"): binds on one queue complete in submission order. */
struct vmb_bind_queue_create {
	uint32_t vm_id;    /* [in] */
	uint32_t flags;    /* [in] none defined yet: must be 0 */
	uint32_t queue_id; /* [out] non-zero; 0 names the vm's default queue */
	uint32_t pad;
	uint64_t reserved[2];
};

struct vmb_bind_queue_destroy {
	uint32_t vm_id;    /* [in] */
	uint32_t queue_id; /* [in] */
	uint64_t reserved;
};

struct vmb_client;
/* 0; -EINVAL (flags, pad, reserved); -ENOENT (vm); -ENOMEM. */
VMB_API int vmb_bind_queue_create(struct vmb_client *c, struct vmb_bind_queue_create *args);
/*
 * 0; -EINVAL (reserved; queue 0, the default queue, lives as long as its vm); -ENOENT.
 * Binds already submitted on the queue still run, in order, once their in-syncs signal.
 */
VMB_API int vmb_bind_queue_destroy(struct vmb_client *c, struct vmb_bind_queue_destroy *args);

/* Engine classes of a device (struct vmb_engine.engine_class). */
#define VMB_ENGINE_CLASS_COMPUTE 0u
#define VMB_ENGINE_CLASS_COPY 1u

struct vmb_engine {
	uint16_t engine_class;    /* VMB_ENGINE_CLASS_* */
	uint16_t engine_instance; /* index within the class */
	uint32_t pad;
};

/* An exec queue: GPU jobs on one engine, through one vm. */
struct vmb_exec_queue_create {
	uint32_t vm_id;           /* [in] */
	uint32_t flags;           /* [in] none defined yet: must be 0 */
	struct vmb_engine engine; /* [in] */
	uint32_t exec_queue_id;   /* [out] */
	uint32_t pad;
	uint64_t reserved[2];
};

struct vmb_exec_queue_destroy {
	uint32_t exec_queue_id; /* [in] */
	uint32_t pad;
	uint64_t reserved;
};

/* Submit one command buffer, fetched by the engine at its GPU VA. */
struct vmb_exec {
	uint32_t exec_queue_id; /* [in] */
	uint32_t num_syncs;     /* [in] entries at `syncs` (struct vmb_sync, bind.h) */
	uint64_t syncs;         /* [in] pointer to struct vmb_sync[num_syncs] */
	uint64_t address;       /* [in] GPU VA of the command buffer */
	uint32_t flags;         /* [in] none defined yet: must be 0 */
	uint32_t pad;
	uint64_t reserved[2];
};

#ifdef __cplusplus
}
#endif
#endif
