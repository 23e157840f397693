/* SPDX-License-Identifier: MIT */
/*
 * A client: an opened device and the handle tables naming its objects (BOs, vms, syncobjs),
 * and its life: the calls in flight, close, fork.
 *
 * Every entry point that takes a client runs between vmb_client_enter() and
 * vmb_client_leave() (VMB_ENTRY in uapi/uapi.h does both), as an ioctl holds its file:
 *   - `calls` counts the calls in flight, by thread slot (vmb_thread_id(), core/lock.h: each
 *     count on cache lines of its own, so that calls of many threads on many cores do not all
 *     write one line twice); `closing` is set once by vmb_client_close(). A call that enters
 *     after that fails with -ENODEV. Close then fires `stop` (every wait of a call in flight
 *     returns -ENODEV: syncobj waits, user-fence waits, binds waiting in the call), waits until
 *     it is the only call left, and only then tears the client down: nothing a call in flight
 *     touches is freed under it.
 *   - `fork_gen` is the process's fork generation (vmb_fork_gen, bumped by a pthread_atfork
 *     child handler) when the client was opened: in a child that inherited the client every
 *     call fails with -EIO before touching anything (the child's copy of the client names the
 *     parent's memory: shared BO pages, threads that exist only in the parent). A relaxed load of
 *     a global, not a getpid() system call, on the path of every call.
 *
 * Locking: `bos`, `bo_names`, `cpu_maps`, `vms` and `execqs` are protected by the device lock (dev->lock); `syncobjs` by
 * `sync_lock`, so that syncobj calls never wait for a bind being prepared. `calls` and
 * `closing` are atomic: entering is an add to the thread's count, then a load of `closing`
 * (both sequentially consistent, as close's store of `closing` and its loads of the counts: one
 * side sees the other); leaving while the client is open a load and a subtract, after which the
 * call touches the client no more. A call that sees `closing` set leaves under `life_lock` and
 * broadcasts `life_cond`; close checks the counts under `life_lock` and waits on `life_cond`
 * with a timeout of VMB_CLIENT_CLOSE_POLL_NS (a call that saw `closing` clear just before close
 * set it leaves without a broadcast), so the closer's last check and the last leaver's unlock
 * are ordered before the free.
 */
#ifndef VMB_CORE_CLIENT_H
#define VMB_CORE_CLIENT_H

#include <errno.h>
#include <stdatomic.h>

#include "core/handle.h"
#include "core/lock.h"
#include "core/rbtree.h"
#include "dev/device.h"
#include "sync/stop.h"

#define VMB_CLIENT_CLOSE_POLL_NS 1000000 /* 1 ms */

struct vmb_client {
	struct vmb_device *dev;
	struct vmb_handle_table bos; /* struct vmb_bo * (a reference each) */
	struct vmb_rb_root bo_names; /* the same BOs' handles, by BO (uapi/bo.c) */
	/* the client's CPU mappings of BOs, by address, destroyed handles included (uapi/bo.c) */
	struct vmb_rb_root cpu_maps;
	/* the nodes of cpu_maps: changed with it (the device lock exclusive), read without a lock by
	 * a call's out user fence (uapi/sync.c: none, no lookup) */
	atomic_uint ncpu_maps;
	struct vmb_handle_table vms; /* struct vmb_vm * */
	struct vmb_handle_table execqs; /* the queue and its vm's handle (uapi/exec.c) */
	pthread_mutex_t sync_lock;
	struct vmb_handle_table syncobjs; /* struct vmb_syncobj * */

	unsigned int fork_gen;     /* vmb_fork_gen at open (immutable) */
	atomic_uint closing;       /* set once by vmb_client_close() */
	pthread_mutex_t life_lock; /* leaving once closing; close's check */
	pthread_cond_t life_cond;  /* broadcast at each such leave */
	struct vmb_stop stop;      /* fired by close: waits in flight return -ENODEV */
	struct vmb_rwlock_slot calls[VMB_RWLOCK_SLOTS]; /* calls in flight, by thread slot */
};

/* Bumped in every child process that fork() creates (pthread_atfork). */
extern atomic_uint vmb_fork_gen;

/* Registers the fork handler (once per process) and sets up the life fields of @c: 0, -ENOMEM. */
int vmb_client_life_init(struct vmb_client *c);
void vmb_client_life_fini(struct vmb_client *c);
void vmb_client_leave_closing(struct vmb_client *c);
/*
 * For vmb_client_close(), inside its own enter/leave: marks the client closing, stops the
 * waits in flight, and returns once every other call has left (0), or -ENODEV if another close
 * came first. Then the caller leaves and tears down: no other call can be in flight.
 */
int vmb_client_close_begin(struct vmb_client *c);

/* True in a process that inherited @c across fork(). */
static inline bool vmb_client_forked(const struct vmb_client *c)
{
	return atomic_load_explicit(&vmb_fork_gen, memory_order_relaxed) != c->fork_gen;
}

static inline atomic_long *vmb_client_calls(struct vmb_client *c)
{
	return &c->calls[vmb_thread_id() % VMB_RWLOCK_SLOTS].readers;
}

/* The calls in flight (a caller's own included). */
static inline long vmb_client_calls_in(struct vmb_client *c)
{
	long n = 0;
	for (unsigned int i = 0; i < VMB_RWLOCK_SLOTS; i++)
		n += atomic_load_explicit(&c->calls[i].readers, memory_order_seq_cst);
	return n;
}

static inline void vmb_client_leave(struct vmb_client *c)
{
	if (atomic_load_explicit(&c->closing, memory_order_seq_cst)) {
		vmb_client_leave_closing(c);
		return;
	}
	/* the last touch of the client: close, if it began meanwhile, polls for this */
	atomic_fetch_sub_explicit(vmb_client_calls(c), 1, memory_order_release);
}

/* A call begins: 0, -EINVAL (no client), -EIO (inherited across fork), -ENODEV (closing). */
static inline int vmb_client_enter(struct vmb_client *c)
{
	if (!c)
		return -EINVAL;
	if (vmb_client_forked(c))
		return -EIO;
	atomic_fetch_add_explicit(vmb_client_calls(c), 1, memory_order_seq_cst);
	if (atomic_load_explicit(&c->closing, memory_order_seq_cst)) {
		vmb_client_leave_closing(c);
		return -ENODEV;
	}
	return 0;
}

#endif
