/* SPDX-License-Identifier: MIT */
/*
 * Description: restart mode (VMB_VM_CREATE_RESTART_MODE, bind.h) against full unwind, the
 * default. A 16-op call whose op k fails, for every k, with each kind of failure the source
 * document names: -ENOSPC (a PREFETCH to a full region), -ENOMEM (the N-th host allocation,
 * walked over N until the call succeeds), -EINTR (a signal during the wait of the op that
 * overlaps a pending bind of another queue). Full unwind: the errno, nothing changed, the same
 * call again succeeds. Restart mode: the errno, ops 0..k-1 done and nothing else, the cookie
 * says k (0: nothing done, no restart owed), the restart with the cookie does the rest. Then the
 * rules of a restart owed: other binds -EBUSY, queries and the GPU view work, a wrong cookie or
 * another call with the right one -EINVAL, giving up, destroying the vm; and an asynchronous
 * call's out-syncs, signalled only once its restart completes. A restart of a call mixing
 * BO-less ops (UNMAP, NULL, USERPTR, PREFETCH), UNMAP_ALL and a BO shared by another client that
 * let it go meanwhile completes.
 */
#include "lib/harness.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>

#include "core/alloc.h"
#include "core/client.h"
#include "dev/core.h"
#include "sync/fence.h" /* VMB_FENCE_CONDVAR: waits signals do not interrupt (TSan builds) */
#include "vm/vm.h"

#define NOPS 16
#define OP_SIZE (64 * KiB)
#define ADDR(i) (1 * GiB + (uint64_t)(i) * 16 * MiB)
#define PADDR (512 * MiB)
#define P_SIZE (1 * MiB)

struct fixture {
	struct vmb_client *c;
	uint32_t bo[NOPS], p;
};

static uint64_t load(const uint64_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }

static uint64_t pattern(unsigned int i) { return 0x5e570000ull + i; }

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	f->c = open_soft(64 * MiB, 64 * MiB);
	for (unsigned int i = 0; i < NOPS; i++) {
		f->bo[i] = bo_new(f->c, OP_SIZE, VMB_PLACE_VRAM | VMB_PLACE_SYSTEM);
		uint64_t v = pattern(i);
		bo_write64s(f->c, f->bo[i], 8, &v, 1);
	}
	f->p = bo_new(f->c, P_SIZE, VMB_PLACE_VRAM | VMB_PLACE_SYSTEM);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	vmb_alloc_fail_after(0);
	return fixture_close(f, f->c);
}

static uint32_t nmappings(struct fixture *f, uint32_t vm) { return vm_stats(f->c, vm).num_mappings; }

/* 16 MAPs of the BOs, each at its own address; op @prefetch_at (if < NOPS) a PREFETCH of P to
 * SYSTEM instead. */
static void make_ops(struct fixture *f, struct vmb_bind_op *ops, unsigned int prefetch_at)
{
	for (unsigned int i = 0; i < NOPS; i++)
		ops[i] = op_map(f->bo[i], 0, ADDR(i), OP_SIZE, 0);
	if (prefetch_at < NOPS)
		ops[prefetch_at] = op_prefetch(PADDR, P_SIZE, VMB_REGION_SYSTEM);
}

static struct vmb_vm_bind call_of(uint32_t vm, uint32_t queue, struct vmb_bind_op *ops, struct vmb_sync *syncs,
				  uint32_t nsyncs, bool async)
{
	return (struct vmb_vm_bind){.vm_id = vm, .queue_id = queue, .num_binds = NOPS,
				    .binds = (uint64_t)(uintptr_t)ops, .num_syncs = nsyncs,
				    .syncs = (uint64_t)(uintptr_t)syncs,
				    .flags = async ? VMB_VM_BIND_FLAG_ASYNC : 0};
}

/* The MAPs among ops 0..@done-1 are in place with their BO's contents, the later ones absent
 * (@skip: an op not to look at). */
static void check_done(struct fixture *f, uint32_t vm, const struct vmb_bind_op *ops, unsigned int done,
		       unsigned int skip)
{
	for (unsigned int i = 0; i < NOPS; i++) {
		if (ops[i].op != VMB_BIND_OP_MAP || i == skip)
			continue;
		uint64_t v = 0;
		int err = __gpu_rw(f->c, vm, ADDR(i), &v, 8, false);
		if (i < done) {
			assert_int_equal(err, 0);
			assert_int_equal(v, pattern(i));
		} else {
			assert_int_not_equal(err, 0);
		}
	}
}

static uint32_t bo_region(struct fixture *f, uint32_t bo)
{
	struct vmb_bo_query q = {.handle = bo};
	assert_int_equal(vmb_bo_query(f->c, &q), 0);
	return q.region;
}

/* A SYSTEM BO leaving less than P's size free there. */
static uint32_t fill_system(struct fixture *f)
{
	struct vmb_region_query rs = {.region = VMB_REGION_SYSTEM};
	assert_int_equal(vmb_region_query(f->c, &rs), 0);
	assert_true(rs.free > P_SIZE);
	return bo_new(f->c, rs.free - P_SIZE / 2, VMB_PLACE_SYSTEM);
}

/* ---- -ENOSPC: op k is a PREFETCH to a full region ---- */

static void enospc_every_k(struct fixture *f, uint32_t mode, bool async)
{
	for (unsigned int k = 0; k < NOPS; k++) {
		uint32_t vm = vm_new(f->c, mode);
		bind1(f->c, vm, op_map(f->p, 0, PADDR, P_SIZE, 0));
		assert_int_equal(bo_region(f, f->p), VMB_REGION_VRAM);
		struct vmb_bind_op ops[NOPS];
		make_ops(f, ops, k);
		static uint64_t uf;
		uf = 0;
		struct vmb_sync s = sync_ufence(&uf, 7);
		struct vmb_vm_bind b = call_of(vm, 0, ops, &s, async, async);
		uint32_t filler = fill_system(f);
		assert_int_equal(vmb_vm_bind(f->c, &b), -ENOSPC);
		assert_int_equal(bo_region(f, f->p), VMB_REGION_VRAM);
		if (mode & VMB_VM_CREATE_RESTART_MODE) {
			/* ops 0..k-1 done; k = 0: nothing done, no restart owed */
			assert_int_equal(VMB_VM_BIND_RESTART_DONE(b.restart), k);
			assert_true(k == 0 ? b.restart == 0 : (b.restart >> 32) != 0);
			assert_int_equal(nmappings(f, vm), 1 + k);
			if (!async)
				check_done(f, vm, ops, k, NOPS);
		} else {
			assert_int_equal(b.restart, 0);
			assert_int_equal(nmappings(f, vm), 1); /* P's only: unwound */
			check_done(f, vm, ops, 0, NOPS);
		}
		assert_int_equal(load(&uf), 0); /* out-syncs: only when the whole call is done */
		if (!async) /* (the check wants no job pending) */
			validate_client(f->c);
		/* the application frees memory and restarts (restart mode: with the cookie) */
		bo_destroy1(f->c, filler);
		assert_int_equal(vmb_vm_bind(f->c, &b), 0);
		assert_int_equal(b.restart, 0);
		if (async)
			ufence_wait(f->c, &uf, 7);
		assert_int_equal(bo_region(f, f->p), VMB_REGION_SYSTEM);
		assert_int_equal(nmappings(f, vm), 1 + NOPS - 1);
		check_done(f, vm, ops, NOPS, NOPS);
		bind1(f->c, vm, op_prefetch(PADDR, P_SIZE, VMB_REGION_VRAM));
		vm_destroy1(f->c, vm);
	}
}

static void test_enospc_unwind(void **state)
{
	struct vmb_device_query d = {0};
	assert_int_equal(vmb_device_query(((struct fixture *)*state)->c, &d), 0);
	assert_true(d.capabilities & VMB_CAP_RESTART_MODE);
	assert_true(d.abi_version >= ((1u << 16) | 1u));
	enospc_every_k(*state, 0, false);
	enospc_every_k(*state, 0, true);
}

static void test_enospc_restart(void **state)
{
	enospc_every_k(*state, VMB_VM_CREATE_RESTART_MODE, false);
	enospc_every_k(*state, VMB_VM_CREATE_RESTART_MODE, true);
}

/* ---- -ENOMEM: the N-th host allocation fails, N = 1, 2, ... until the call succeeds ---- */

static void enomem_walk(struct fixture *f, uint32_t mode)
{
	bool seen[NOPS] = {false};
	unsigned int failures = 0;
	struct vmb_bind_op ops[NOPS];
	make_ops(f, ops, NOPS);
	for (unsigned long n = 1;; n++) {
		uint32_t vm = vm_new(f->c, mode);
		struct vmb_vm_bind b = call_of(vm, 0, ops, NULL, 0, false);
		vmb_alloc_fail_after(n);
		int err = vmb_vm_bind(f->c, &b);
		unsigned long left = vmb_alloc_fail_after(0);
		if (err) {
			assert_int_equal(err, -ENOMEM);
			failures++;
			unsigned int done = VMB_VM_BIND_RESTART_DONE(b.restart);
			if (mode & VMB_VM_CREATE_RESTART_MODE) {
				assert_true(done < NOPS);
				assert_true(done == 0 ? b.restart == 0 : (b.restart >> 32) != 0);
				seen[done] = true;
			} else {
				assert_int_equal(b.restart, 0);
			}
			assert_int_equal(nmappings(f, vm), done);
			check_done(f, vm, ops, done, NOPS);
			validate_client(f->c);
			/* nothing failing now: the same call (restart mode: its restart) completes */
			assert_int_equal(vmb_vm_bind(f->c, &b), 0);
			assert_int_equal(b.restart, 0);
		}
		assert_int_equal(nmappings(f, vm), NOPS);
		check_done(f, vm, ops, NOPS, NOPS);
		vm_destroy1(f->c, vm);
		if (!err && left)
			break; /* the call made fewer than n allocations: walked them all */
	}
	print_message("%u of the call's allocations failed it\n", failures);
	assert_true(failures >= NOPS); /* each op allocates its (vm, BO) link at least */
	if (mode & VMB_VM_CREATE_RESTART_MODE)
		for (unsigned int k = 0; k < NOPS; k++)
			assert_true(seen[k]);
}

static void test_enomem_unwind(void **state) { enomem_walk(*state, 0); }
static void test_enomem_restart(void **state) { enomem_walk(*state, VMB_VM_CREATE_RESTART_MODE); }

/* ---- -EINTR: op k waits for a pending bind of another queue; a signal ends the wait ---- */

#ifndef VMB_FENCE_CONDVAR
static void on_usr1(int sig) { (void)sig; }

struct call {
	struct vmb_client *c;
	struct vmb_vm_bind b;
	pthread_t th;
	atomic_int result;
};

#define RUNNING 1

static void *call_thread(void *arg)
{
	struct call *k = arg;
	atomic_store(&k->result, vmb_vm_bind(k->c, &k->b));
	return NULL;
}

static void eintr_every_k(struct fixture *f, uint32_t mode)
{
	struct sigaction sa = {.sa_handler = on_usr1}, old;
	sigemptyset(&sa.sa_mask);
	assert_int_equal(sigaction(SIGUSR1, &sa, &old), 0);
	for (unsigned int k = 0; k < NOPS; k++) {
		uint32_t vm = vm_new(f->c, mode);
		uint32_t q1 = queue_new(f->c, vm);
		struct gate g = gate_new(f->c);
		struct vmb_bind_op gated = op_map(f->p, 0, ADDR(k), OP_SIZE, 0);
		struct vmb_sync in = sync_in(g.h);
		bind_async(f->c, vm, q1, &gated, 1, &in, 1);
		struct vmb_bind_op ops[NOPS];
		make_ops(f, ops, NOPS);
		struct call *c = calloc(1, sizeof(*c));
		c->c = f->c;
		c->b = call_of(vm, 0, ops, NULL, 0, false);
		atomic_init(&c->result, RUNNING);
		assert_int_equal(pthread_create(&c->th, NULL, call_thread, c), 0);
		while (atomic_load(&c->result) == RUNNING) {
			pthread_kill(c->th, SIGUSR1);
			usleep(2000);
		}
		pthread_join(c->th, NULL);
		assert_int_equal(atomic_load(&c->result), -EINTR);
		unsigned int done = VMB_VM_BIND_RESTART_DONE(c->b.restart);
		if (mode & VMB_VM_CREATE_RESTART_MODE)
			assert_int_equal(done, k);
		else
			assert_int_equal(c->b.restart, 0);
		assert_int_equal(nmappings(f, vm), 1 + done); /* the gated bind's is in the tree */
		check_done(f, vm, ops, done, k);
		/* what it waited for completes; the call again (restart mode: its restart) */
		gate_open(&g);
		assert_int_equal(vmb_vm_bind(f->c, &c->b), 0);
		assert_int_equal(c->b.restart, 0);
		assert_int_equal(nmappings(f, vm), NOPS);
		check_done(f, vm, ops, NOPS, NOPS); /* op k replaced the gated mapping */
		validate_client(f->c);
		free(c);
		vm_destroy1(f->c, vm);
	}
	sigaction(SIGUSR1, &old, NULL);
}
#endif

static void test_eintr_unwind(void **state)
{
#ifndef VMB_FENCE_CONDVAR
	eintr_every_k(*state, 0);
#else
	(void)state;
	skip();
#endif
}

static void test_eintr_restart(void **state)
{
#ifndef VMB_FENCE_CONDVAR
	eintr_every_k(*state, VMB_VM_CREATE_RESTART_MODE);
#else
	(void)state;
	skip();
#endif
}

/* ---- the rules while a restart is owed ---- */

/* A restart-mode vm owing a restart for @ops (op 5 a PREFETCH that found SYSTEM full). */
static uint32_t vm_owing(struct fixture *f, struct vmb_bind_op *ops, struct vmb_vm_bind *b, uint32_t *filler)
{
	uint32_t vm = vm_new(f->c, VMB_VM_CREATE_RESTART_MODE);
	bind1(f->c, vm, op_map(f->p, 0, PADDR, P_SIZE, 0));
	make_ops(f, ops, 5);
	*b = call_of(vm, 0, ops, NULL, 0, false);
	*filler = fill_system(f);
	assert_int_equal(vmb_vm_bind(f->c, b), -ENOSPC);
	assert_int_equal(VMB_VM_BIND_RESTART_DONE(b->restart), 5);
	return vm;
}

static void test_restart_rules(void **state)
{
	struct fixture *f = *state;
	struct vmb_bind_op ops[NOPS];
	struct vmb_vm_bind b;
	uint32_t filler;
	uint32_t vm = vm_owing(f, ops, &b, &filler);
	uint32_t q1 = queue_new(f->c, vm);
	uint32_t other = vm_new(f->c, VMB_VM_CREATE_RESTART_MODE), plain = vm_new(f->c, 0);

	/* other binds on the vm, from any queue, sync or async, barriers too: -EBUSY */
	struct vmb_bind_op elsewhere = op_map(f->bo[0], 0, 3 * GiB, OP_SIZE, 0);
	assert_int_equal(__bind1(f->c, vm, elsewhere), -EBUSY);
	assert_int_equal(__bind_async(f->c, vm, q1, &elsewhere, 1, NULL, 0), -EBUSY);
	uint32_t so = syncobj_new(f->c, 0);
	struct vmb_sync out = sync_out(so);
	assert_int_equal(__bind_async(f->c, vm, q1, NULL, 0, &out, 1), -EBUSY);
	assert_int_equal(__bind1(f->c, vm, op_unmap(0, 1ull << 40)), -EBUSY);
	/* other vms are not held up */
	bind1(f->c, other, elsewhere);
	bind1(f->c, plain, elsewhere);
	/* queries and the GPU view work */
	assert_int_equal(nmappings(f, vm), 1 + 5);
	check_done(f, vm, ops, 5, NOPS);

	/* a wrong cookie, or the right one with another call: -EINVAL, the restart still owed */
	uint64_t cookie = b.restart;
	struct vmb_vm_bind w = b;
	w.restart = cookie ^ (1ull << 40);
	assert_int_equal(vmb_vm_bind(f->c, &w), -EINVAL);
	w.restart = cookie + 1; /* the count is the cookie's too */
	assert_int_equal(vmb_vm_bind(f->c, &w), -EINVAL);
	w = b;
	w.vm_id = other;
	assert_int_equal(vmb_vm_bind(f->c, &w), -EINVAL);
	w.vm_id = plain;
	assert_int_equal(vmb_vm_bind(f->c, &w), -EINVAL);
	w = b;
	w.queue_id = q1;
	assert_int_equal(vmb_vm_bind(f->c, &w), -EINVAL);
	w = b;
	w.num_binds = NOPS - 1;
	assert_int_equal(vmb_vm_bind(f->c, &w), -EINVAL);
	struct vmb_bind_op changed[NOPS];
	memcpy(changed, ops, sizeof(changed));
	changed[12].addr += 16 * MiB + OP_SIZE;
	w = b;
	w.binds = (uint64_t)(uintptr_t)changed;
	assert_int_equal(vmb_vm_bind(f->c, &w), -EINVAL);
	assert_int_equal(__bind1(f->c, vm, elsewhere), -EBUSY);
	validate_client(f->c);

	/* the restart: the rest done, binds taken again, the cookie spent */
	bo_destroy1(f->c, filler);
	assert_int_equal(vmb_vm_bind(f->c, &b), 0);
	assert_int_equal(b.restart, 0);
	check_done(f, vm, ops, NOPS, NOPS);
	assert_int_equal(bo_region(f, f->p), VMB_REGION_SYSTEM);
	bind1(f->c, vm, elsewhere);
	w = b;
	w.restart = cookie;
	assert_int_equal(vmb_vm_bind(f->c, &w), -EINVAL);
	bind1(f->c, vm, op_prefetch(PADDR, P_SIZE, VMB_REGION_VRAM));
	vm_destroy1(f->c, vm);

	/* giving up: the cookie, no ops, no syncs; ops 0..4 stay, binds are taken again */
	vm = vm_owing(f, ops, &b, &filler);
	struct vmb_vm_bind give_up = {.vm_id = vm, .restart = b.restart ^ 1};
	assert_int_equal(vmb_vm_bind(f->c, &give_up), -EINVAL);
	give_up.restart = b.restart;
	assert_int_equal(vmb_vm_bind(f->c, &give_up), 0);
	assert_int_equal(give_up.restart, 0);
	assert_int_equal(vmb_vm_bind(f->c, &b), -EINVAL); /* nothing owed now */
	bind1(f->c, vm, elsewhere);
	check_done(f, vm, ops, 5, NOPS);
	vm_destroy1(f->c, vm);
	bo_destroy1(f->c, filler);
	vm_destroy1(f->c, other);
	vm_destroy1(f->c, plain);
	validate_client(f->c);
}

static void test_destroy_while_owed(void **state)
{
	struct fixture *f = *state;
	struct vmb_bind_op ops[NOPS];
	struct vmb_vm_bind b;
	uint32_t filler;
	uint32_t vm = vm_owing(f, ops, &b, &filler);
	vm_destroy1(f->c, vm);
	assert_int_equal(vmb_vm_bind(f->c, &b), -EINVAL); /* no vm owes it */
	b.restart = 0;
	assert_int_equal(vmb_vm_bind(f->c, &b), -ENOENT);
	bo_destroy1(f->c, filler);
	validate_client(f->c);
}

/* The vm's reference count (the handle's, plus one per call holding it across a wait). */
static uint32_t vm_refs(struct vmb_client *c, uint32_t h)
{
	vmb_dev_lock(c->dev);
	struct vmb_vm *v = vmb_handle_lookup(&c->vms, h);
	uint32_t r = v ? v->refs : 0;
	vmb_dev_unlock(c->dev);
	return r;
}

/*
 * A restart running (its first op, a PREFETCH, waits for a gated bind of another vm that maps
 * the BO it moves: a PREFETCH follows every pending bind of each vm that maps its BOs): another
 * restart with the same cookie, giving it up
 * and any other bind get -EBUSY; once the gate opens it completes.
 */
struct restart_call {
	struct vmb_client *c;
	struct vmb_vm_bind b;
	atomic_int result;
};

static void *restart_thread(void *arg)
{
	struct restart_call *r = arg;
	atomic_store(&r->result, vmb_vm_bind(r->c, &r->b));
	return NULL;
}

static void test_restart_running(void **state)
{
	struct fixture *f = *state;
	uint32_t vm = vm_new(f->c, VMB_VM_CREATE_RESTART_MODE), vm2 = vm_new(f->c, 0);
	bind1(f->c, vm, op_map(f->p, 0, PADDR, P_SIZE, 0));
	struct vmb_bind_op ops[NOPS];
	make_ops(f, ops, 3);
	struct restart_call *r = calloc(1, sizeof(*r));
	r->c = f->c;
	r->b = call_of(vm, 0, ops, NULL, 0, false);
	uint32_t filler = fill_system(f);
	assert_int_equal(vmb_vm_bind(f->c, &r->b), -ENOSPC);
	assert_int_equal(VMB_VM_BIND_RESTART_DONE(r->b.restart), 3);
	bo_destroy1(f->c, filler);
	struct gate g = gate_new(f->c);
	struct vmb_bind_op gated = op_map(f->p, 0, 3 * GiB, P_SIZE, 0);
	struct vmb_sync in = sync_in(g.h);
	bind_async(f->c, vm2, 0, &gated, 1, &in, 1);
	struct vmb_vm_bind same = r->b;
	atomic_init(&r->result, 1);
	assert_int_equal(vm_refs(f->c, vm), 1);
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, restart_thread, r), 0);
	/* the restart holds the vm while it waits: it has claimed the cookie */
	for (int i = 0; i < 10000 && vm_refs(f->c, vm) != 2; i++)
		usleep(1000);
	assert_int_equal(vm_refs(f->c, vm), 2);
	assert_int_equal(atomic_load(&r->result), 1);
	assert_int_equal(vmb_vm_bind(f->c, &same), -EBUSY);
	struct vmb_vm_bind give_up = {.vm_id = vm, .restart = same.restart};
	assert_int_equal(vmb_vm_bind(f->c, &give_up), -EBUSY);
	assert_int_equal(__bind1(f->c, vm, op_map(f->bo[0], 0, 3 * GiB, OP_SIZE, 0)), -EBUSY);
	gate_open(&g);
	pthread_join(th, NULL);
	assert_int_equal(atomic_load(&r->result), 0);
	assert_int_equal(r->b.restart, 0);
	check_done(f, vm, ops, NOPS, NOPS);
	assert_int_equal(vmb_vm_bind(f->c, &same), -EINVAL); /* spent */
	bind1(f->c, vm, op_map(f->bo[0], 0, 3 * GiB, OP_SIZE, 0));
	free(r);
	vm_destroy1(f->c, vm);
	vm_destroy1(f->c, vm2);
}

/*
 * A call that began before another call failed may finish after it (UAPI.md, "Concurrency":
 * the binds refused with -EBUSY are those made after the failed call returned), but the restart
 * the failed call owes stays owed: the vm still refuses new binds, and the restart completes.
 * B: a new 2-op call whose second op waits for a gated bind of another queue that it overlaps;
 * meanwhile A fails with -ENOMEM after its first ops (its own thread's N-th allocation); then the
 * gate opens and B completes.
 */
static void test_other_call_keeps_owed_restart(void **state)
{
	struct fixture *f = *state;
	uint32_t vm = vm_new(f->c, VMB_VM_CREATE_RESTART_MODE), q2 = queue_new(f->c, vm);
	struct gate g = gate_new(f->c);
	struct vmb_bind_op gated = op_map(f->bo[0], 0, 3 * GiB, OP_SIZE, 0);
	struct vmb_sync in = sync_in(g.h);
	bind_async(f->c, vm, q2, &gated, 1, &in, 1);
	struct vmb_bind_op bops[2] = {op_map(f->bo[1], 0, 3 * GiB + 64 * MiB, OP_SIZE, 0),
				      op_map(f->bo[2], 0, 3 * GiB, OP_SIZE, 0)};
	struct restart_call *r = calloc(1, sizeof(*r));
	r->c = f->c;
	r->b = (struct vmb_vm_bind){.vm_id = vm, .num_binds = 2, .binds = (uint64_t)(uintptr_t)bops};
	atomic_init(&r->result, 1);
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, restart_thread, r), 0);
	/* B waits in its second op (it holds the vm meanwhile) */
	for (int i = 0; i < 10000 && vm_refs(f->c, vm) != 2; i++)
		usleep(1000);
	assert_int_equal(vm_refs(f->c, vm), 2);
	/* A: the N-th allocation of its thread fails, N the first that leaves ops done */
	struct vmb_bind_op ops[NOPS];
	make_ops(f, ops, NOPS);
	struct vmb_vm_bind a;
	int err = 0;
	for (unsigned long n = 1; n < 1000; n++) {
		a = call_of(vm, 0, ops, NULL, 0, false);
		vmb_alloc_fail_after(n);
		err = vmb_vm_bind(f->c, &a);
		vmb_alloc_fail_after(0);
		if (err != -ENOMEM || VMB_VM_BIND_RESTART_DONE(a.restart))
			break;
		assert_int_equal(a.restart, 0); /* op 0 failed: nothing done, none owed */
	}
	assert_int_equal(err, -ENOMEM);
	unsigned int done = VMB_VM_BIND_RESTART_DONE(a.restart);
	assert_true(done >= 1 && done < NOPS);
	assert_int_equal(__bind1(f->c, vm, op_map(f->bo[3], 0, 4 * GiB, OP_SIZE, 0)), -EBUSY);
	assert_int_equal(atomic_load(&r->result), 1); /* B still waits */
	gate_open(&g);
	pthread_join(th, NULL);
	assert_int_equal(atomic_load(&r->result), 0); /* B began before A failed */
	/* the restart is still owed: new binds refused, A's restart completes it */
	assert_int_equal(__bind1(f->c, vm, op_map(f->bo[3], 0, 4 * GiB, OP_SIZE, 0)), -EBUSY);
	assert_int_equal(vmb_vm_bind(f->c, &a), 0);
	assert_int_equal(a.restart, 0);
	check_done(f, vm, ops, NOPS, NOPS);
	bind1(f->c, vm, op_map(f->bo[3], 0, 4 * GiB, OP_SIZE, 0));
	free(r);
	vm_destroy1(f->c, vm);
}

/*
 * Two calls each owed a restart: B (2 ops) began before A failed, waits in its second op for a
 * gated bind it overlaps, and fails there too (its second op's BO destroyed while it waited:
 * -ENOENT). Each call keeps its own cookie: A's restart completes A (it failed -EINVAL when B's
 * cookie replaced A's); the vm refuses new binds until B's restart is given up too.
 */
static void test_two_calls_each_owed(void **state)
{
	struct fixture *f = *state;
	uint32_t vm = vm_new(f->c, VMB_VM_CREATE_RESTART_MODE), q2 = queue_new(f->c, vm);
	struct gate g = gate_new(f->c);
	struct vmb_bind_op gated = op_map(f->bo[0], 0, 3 * GiB, OP_SIZE, 0);
	struct vmb_sync in = sync_in(g.h);
	bind_async(f->c, vm, q2, &gated, 1, &in, 1);
	uint32_t doomed = bo_new(f->c, OP_SIZE, VMB_PLACE_VRAM | VMB_PLACE_SYSTEM);
	struct vmb_bind_op bops[2] = {op_map(f->bo[1], 0, 3 * GiB + 64 * MiB, OP_SIZE, 0),
				      op_map(doomed, 0, 3 * GiB, OP_SIZE, 0)};
	struct restart_call *r = calloc(1, sizeof(*r));
	r->c = f->c;
	r->b = (struct vmb_vm_bind){.vm_id = vm, .num_binds = 2, .binds = (uint64_t)(uintptr_t)bops};
	atomic_init(&r->result, 1);
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, restart_thread, r), 0);
	for (int i = 0; i < 10000 && vm_refs(f->c, vm) != 2; i++)
		usleep(1000);
	assert_int_equal(vm_refs(f->c, vm), 2); /* B waits in its second op */
	struct vmb_bind_op ops[NOPS];
	make_ops(f, ops, NOPS);
	struct vmb_vm_bind a;
	int err = 0;
	for (unsigned long n = 1; n < 1000; n++) {
		a = call_of(vm, 0, ops, NULL, 0, false);
		vmb_alloc_fail_after(n);
		err = vmb_vm_bind(f->c, &a);
		vmb_alloc_fail_after(0);
		if (err != -ENOMEM || VMB_VM_BIND_RESTART_DONE(a.restart))
			break;
	}
	assert_int_equal(err, -ENOMEM);
	unsigned int done = VMB_VM_BIND_RESTART_DONE(a.restart);
	assert_true(done >= 1 && done < NOPS);
	bo_destroy1(f->c, doomed); /* B's second op fails once its wait ends */
	gate_open(&g);
	pthread_join(th, NULL);
	assert_int_equal(atomic_load(&r->result), -ENOENT);
	assert_int_equal(VMB_VM_BIND_RESTART_DONE(r->b.restart), 1);
	assert_int_not_equal(r->b.restart, a.restart);
	assert_int_equal(__bind1(f->c, vm, op_map(f->bo[3], 0, 4 * GiB, OP_SIZE, 0)), -EBUSY);
	/* A's restart completes A; B's still owed */
	assert_int_equal(vmb_vm_bind(f->c, &a), 0);
	assert_int_equal(a.restart, 0);
	check_done(f, vm, ops, NOPS, NOPS);
	assert_int_equal(__bind1(f->c, vm, op_map(f->bo[3], 0, 4 * GiB, OP_SIZE, 0)), -EBUSY);
	/* B's restart fails its lookup (its BO is gone): it can only be given up */
	struct vmb_vm_bind again = r->b;
	assert_int_equal(vmb_vm_bind(f->c, &again), -ENOENT);
	assert_int_equal(again.restart, r->b.restart);
	struct vmb_vm_bind give_up = {.vm_id = vm, .restart = r->b.restart};
	assert_int_equal(vmb_vm_bind(f->c, &give_up), 0);
	assert_int_equal(give_up.restart, 0);
	give_up.restart = r->b.restart;
	assert_int_equal(vmb_vm_bind(f->c, &give_up), -EINVAL); /* spent */
	bind1(f->c, vm, op_map(f->bo[3], 0, 4 * GiB, OP_SIZE, 0));
	validate_client(f->c);
	free(r);
	vm_destroy1(f->c, vm);
}

/* An asynchronous call: ops before the failing one are jobs of their own; the call's
 * out-syncobj gets a fence, and its user fence is written, only by the restart that completes
 * it, once every op has committed. */
static void test_async_out_syncs(void **state)
{
	struct fixture *f = *state;
	uint32_t vm = vm_new(f->c, VMB_VM_CREATE_RESTART_MODE);
	bind1(f->c, vm, op_map(f->p, 0, PADDR, P_SIZE, 0));
	struct gate g = gate_new(f->c);
	uint32_t so = syncobj_new(f->c, 0);
	static uint64_t uf;
	uf = 0;
	struct vmb_sync s[3] = {sync_in(g.h), sync_out(so), sync_ufence(&uf, 9)};
	struct vmb_bind_op ops[NOPS];
	make_ops(f, ops, 9);
	struct vmb_vm_bind b = call_of(vm, 0, ops, s, 3, true);
	uint32_t filler = fill_system(f);
	assert_int_equal(vmb_vm_bind(f->c, &b), -ENOSPC);
	assert_int_equal(VMB_VM_BIND_RESTART_DONE(b.restart), 9);
	assert_int_equal(nmappings(f, vm), 1 + 9);
	/* the out-syncobj has no fence: nothing submitted to wait for */
	assert_int_equal(__syncobj_wait1(f->c, so, 0, 0, 0), -EINVAL);
	bo_destroy1(f->c, filler);
	assert_int_equal(vmb_vm_bind(f->c, &b), 0);
	/* the in-sync holds the first op's job, so every later one: nothing signalled yet */
	usleep(10000);
	assert_int_equal(load(&uf), 0);
	assert_int_equal(__syncobj_wait1(f->c, so, 0, 0, 0), -ETIME);
	gate_open(&g);
	ufence_wait(f->c, &uf, 9);
	syncobj_wait1(f->c, so);
	check_done(f, vm, ops, NOPS, NOPS);
	assert_int_equal(bo_region(f, f->p), VMB_REGION_SYSTEM);
	bind1(f->c, vm, op_prefetch(PADDR, P_SIZE, VMB_REGION_VRAM));
	vm_destroy1(f->c, vm);
}

/*
 * A vm banned while it owes a restart (op 0 of the failed ASYNC call, gated, fails its commit
 * once the gate opens) owes none any more: a bind is refused with -EIO as on any banned vm, not
 * -EBUSY for the restart owed; the cookie names nothing (-EINVAL), nor can it be given up.
 * @give_up_first: the cookie is tried before any other bind (each call drops what a banned vm
 * owes: this one on its own).
 */
static void banned_while_owed(struct fixture *f, bool give_up_first)
{
	uint32_t vm = vm_new(f->c, VMB_VM_CREATE_RESTART_MODE);
	bind1(f->c, vm, op_map(f->p, 0, PADDR, P_SIZE, 0));
	struct gate g = gate_new(f->c);
	struct vmb_sync in = sync_in(g.h);
	struct vmb_bind_op ops[NOPS];
	make_ops(f, ops, 3);
	struct vmb_vm_bind b = call_of(vm, 0, ops, &in, 1, true);
	uint32_t filler = fill_system(f);
	assert_int_equal(vmb_vm_bind(f->c, &b), -ENOSPC);
	assert_int_equal(VMB_VM_BIND_RESTART_DONE(b.restart), 3);
	struct vmb_fault_inject fi = {.classes = VMB_INJECT_COMMIT, .flags = VMB_INJECT_ONCE, .nth = 1,
				      .scope = VMB_INJECT_SCOPE_PROCESS, .error = -ENOMEM};
	assert_int_equal(vmb_debug_fault_inject(f->c, &fi), 0);
	gate_open(&g);
	uint64_t v;
	while (__gpu_rw(f->c, vm, PADDR, &v, 8, false) != -EIO) /* the commit of op 0 bans it */
		sched_yield();
	struct vmb_fault_inject off = {.classes = VMB_INJECT_COMMIT, .scope = VMB_INJECT_SCOPE_PROCESS};
	assert_int_equal(vmb_debug_fault_inject(f->c, &off), 0);
	assert_int_equal(off.injected, 1);
	bo_destroy1(f->c, filler);
	uint64_t cookie = b.restart;
	struct vmb_vm_bind give_up = {.vm_id = vm, .restart = cookie};
	if (give_up_first)
		assert_int_equal(vmb_vm_bind(f->c, &give_up), -EINVAL);
	assert_int_equal(__bind1(f->c, vm, op_map(f->bo[3], 0, 4 * GiB, OP_SIZE, 0)), -EIO);
	assert_int_equal(__bind1(f->c, vm, op_unmap(0, 1ull << 40)), -EIO);
	assert_int_equal(vmb_vm_bind(f->c, &b), -EINVAL); /* owed no more */
	assert_int_equal(b.restart, cookie);
	assert_int_equal(vmb_vm_bind(f->c, &give_up), -EINVAL);
	b.restart = 0;
	assert_int_equal(vmb_vm_bind(f->c, &b), -EIO);
	vm_destroy1(f->c, vm);
	validate_client(f->c);
}

static void test_banned_while_owed(void **state)
{
	banned_while_owed(*state, false);
	banned_while_owed(*state, true);
}

/*
 * The call's queue destroyed while the restart is owed, and its id handed to a new queue (ids
 * come back once the vm's other free ids are used up): the restart names the id, not the queue
 * the call ran on, so it fails the lookup (-ENOENT) and can only be given up. Run on the new
 * queue, its last op's job would not follow ops 0..2 (held on the old queue behind a gated bind)
 * and its user fence would be written before they commit.
 */
static void test_restart_queue_id_reused(void **state)
{
	struct fixture *f = *state;
	uint32_t vm = vm_new(f->c, VMB_VM_CREATE_RESTART_MODE);
	uint32_t q = queue_new(f->c, vm);
	/* VRAM held by a BO bound in an LR vm (never evicted): op 3's VRAM-only BO finds no room */
	uint32_t lr = vm_new(f->c, VMB_VM_CREATE_LR_MODE);
	uint32_t vfill = bo_new(f->c, 40 * MiB, VMB_PLACE_VRAM), big = bo_new(f->c, 40 * MiB, VMB_PLACE_VRAM);
	bind1(f->c, lr, op_map(vfill, 0, 0, 40 * MiB, 0));
	struct gate g = gate_new(f->c);
	static uint64_t uf;
	uf = 0;
	struct vmb_sync s[2] = {sync_in(g.h), sync_ufence(&uf, 9)};
	struct vmb_bind_op ops[NOPS];
	make_ops(f, ops, NOPS);
	ops[3] = op_map(big, 0, ADDR(3), OP_SIZE, 0);
	struct vmb_vm_bind b = call_of(vm, q, ops, s, 2, true);
	assert_int_equal(vmb_vm_bind(f->c, &b), -ENOSPC);
	assert_int_equal(VMB_VM_BIND_RESTART_DONE(b.restart), 3);
	/* ops 0..2 are jobs held by the gate (the first waits for it, the others follow it on the
	 * queue); the restart's own in-sync is signalled (the syncobj's fence replaced) */
	struct vmb_syncobj_array sig = {.handles = (uint64_t)(uintptr_t)&g.h, .count = 1};
	assert_int_equal(vmb_syncobj_signal(f->c, &sig), 0);
	bind1(f->c, lr, op_unmap(0, 40 * MiB));
	bo_destroy1(f->c, vfill);
	struct vmb_bind_queue_destroy d = {.vm_id = vm, .queue_id = q};
	assert_int_equal(vmb_bind_queue_destroy(f->c, &d), 0);
	uint32_t ids[64], n = 0;
	do {
		struct vmb_bind_queue_create qc = {.vm_id = vm};
		assert_int_equal(vmb_bind_queue_create(f->c, &qc), 0);
		ids[n++] = qc.queue_id;
	} while (ids[n - 1] != q && n < 64);
	assert_int_equal(ids[n - 1], q); /* the id names another queue now */
	uint64_t cookie = b.restart;
	assert_int_equal(vmb_vm_bind(f->c, &b), -ENOENT);
	assert_int_equal(b.restart, cookie); /* still owed */
	struct vmb_vm_bind give_up = {.vm_id = vm, .restart = cookie};
	assert_int_equal(vmb_vm_bind(f->c, &give_up), 0);
	gate_open(&g);
	/* ops 0..2 commit once the gate opens; nothing wrote the call's fence */
	for (unsigned int i = 0; i < 3; i++) {
		uint64_t v = 0;
		while (__gpu_rw(f->c, vm, ADDR(i), &v, 8, false) == -EFAULT)
			sched_yield();
		assert_int_equal(v, pattern(i));
	}
	assert_int_equal(load(&uf), 0);
	for (uint32_t i = 0; i < n; i++) {
		struct vmb_bind_queue_destroy dq = {.vm_id = vm, .queue_id = ids[i]};
		assert_int_equal(vmb_bind_queue_destroy(f->c, &dq), 0);
	}
	vm_destroy1(f->c, vm);
	vm_destroy1(f->c, lr);
	bo_destroy1(f->c, big);
	validate_client(f->c);
}

/* The same with a BO: op 5's BO destroyed while the restart is owed and its handle given to a
 * new BO: the restart fails (-ENOENT) rather than map the new BO there. */
static void test_restart_bo_handle_reused(void **state)
{
	struct fixture *f = *state;
	uint32_t vm = vm_new(f->c, VMB_VM_CREATE_RESTART_MODE);
	uint32_t lr = vm_new(f->c, VMB_VM_CREATE_LR_MODE);
	uint32_t vfill = bo_new(f->c, 40 * MiB, VMB_PLACE_VRAM), big = bo_new(f->c, 40 * MiB, VMB_PLACE_VRAM);
	bind1(f->c, lr, op_map(vfill, 0, 0, 40 * MiB, 0));
	uint32_t doomed = bo_new(f->c, OP_SIZE, VMB_PLACE_SYSTEM);
	struct vmb_bind_op ops[NOPS];
	make_ops(f, ops, NOPS);
	ops[3] = op_map(big, 0, ADDR(3), OP_SIZE, 0);
	ops[5] = op_map(doomed, 0, ADDR(5), OP_SIZE, 0);
	struct vmb_vm_bind b = call_of(vm, 0, ops, NULL, 0, false);
	assert_int_equal(vmb_vm_bind(f->c, &b), -ENOSPC);
	assert_int_equal(VMB_VM_BIND_RESTART_DONE(b.restart), 3);
	bind1(f->c, lr, op_unmap(0, 40 * MiB));
	bo_destroy1(f->c, vfill);
	bo_destroy1(f->c, doomed);
	uint32_t bos[256], n = 0;
	do
		bos[n++] = bo_new(f->c, OP_SIZE, VMB_PLACE_SYSTEM);
	while (bos[n - 1] != doomed && n < 256);
	assert_int_equal(bos[n - 1], doomed); /* the handle names another BO now */
	uint64_t cookie = b.restart;
	assert_int_equal(vmb_vm_bind(f->c, &b), -ENOENT);
	assert_int_equal(b.restart, cookie); /* still owed */
	assert_int_equal(nmappings(f, vm), 3);
	struct vmb_vm_bind give_up = {.vm_id = vm, .restart = cookie};
	assert_int_equal(vmb_vm_bind(f->c, &give_up), 0);
	for (uint32_t i = 0; i < n; i++)
		bo_destroy1(f->c, bos[i]);
	vm_destroy1(f->c, vm);
	vm_destroy1(f->c, lr);
	bo_destroy1(f->c, big);
	validate_client(f->c);
}

/* The vm destroyed while its restart runs (waiting in its first op, a PREFETCH behind a gated
 * bind of another vm): the restart fails with -ENOENT and owes nothing (restart 0); its record
 * goes with it (ASan: no leak), the cookie names nothing. */
static void test_destroy_while_restart_runs(void **state)
{
	struct fixture *f = *state;
	uint32_t vm = vm_new(f->c, VMB_VM_CREATE_RESTART_MODE), vm2 = vm_new(f->c, 0);
	bind1(f->c, vm, op_map(f->p, 0, PADDR, P_SIZE, 0));
	struct vmb_bind_op ops[NOPS];
	make_ops(f, ops, 3);
	struct restart_call *r = calloc(1, sizeof(*r));
	r->c = f->c;
	r->b = call_of(vm, 0, ops, NULL, 0, false);
	uint32_t filler = fill_system(f);
	assert_int_equal(vmb_vm_bind(f->c, &r->b), -ENOSPC);
	assert_int_equal(VMB_VM_BIND_RESTART_DONE(r->b.restart), 3);
	uint64_t cookie = r->b.restart;
	bo_destroy1(f->c, filler);
	struct gate g = gate_new(f->c);
	struct vmb_bind_op gated = op_map(f->p, 0, 3 * GiB, P_SIZE, 0);
	struct vmb_sync in = sync_in(g.h);
	bind_async(f->c, vm2, 0, &gated, 1, &in, 1);
	atomic_init(&r->result, 1);
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, restart_thread, r), 0);
	for (int i = 0; i < 10000 && vm_refs(f->c, vm) != 2; i++)
		usleep(1000);
	assert_int_equal(vm_refs(f->c, vm), 2); /* the restart waits, holding the vm */
	vm_destroy1(f->c, vm);
	gate_open(&g);
	pthread_join(th, NULL);
	assert_int_equal(atomic_load(&r->result), -ENOENT);
	assert_int_equal(r->b.restart, 0);
	r->b.restart = cookie;
	assert_int_equal(vmb_vm_bind(f->c, &r->b), -EINVAL);
	free(r);
	vm_destroy1(f->c, vm2);
	validate_client(f->c);
}

/*
 * A restart of a call whose ops have no BO (UNMAP, NULL, USERPTR, PREFETCH) beside an UNMAP_ALL
 * and a MAP of a BO another client made and shared (imported, its handle in this client): the
 * serials of the BO-less ops are stable and the shared BO stays the same object when its
 * creator's handle and descriptor are gone, so the restart completes every op (atksync; guard,
 * no bug found).
 */
static void test_restart_mixed_ops_shared_bo(void **state)
{
	struct fixture *f = *state;
	uint32_t vm = vm_new(f->c, VMB_VM_CREATE_RESTART_MODE);
	bind1(f->c, vm, op_map(f->p, 0, PADDR, P_SIZE, 0));
	uint32_t lr = vm_new(f->c, VMB_VM_CREATE_LR_MODE);
	uint32_t vfill = bo_new(f->c, 40 * MiB, VMB_PLACE_VRAM), big = bo_new(f->c, 40 * MiB, VMB_PLACE_VRAM);
	bind1(f->c, lr, op_map(vfill, 0, 0, 40 * MiB, 0));
	struct vmb_client *other = NULL;
	assert_int_equal(vmb_client_open("soft", NULL, &other), 0);
	uint32_t xb = bo_new(other, OP_SIZE, VMB_PLACE_SYSTEM);
	uint64_t xv = 0x5a5a0005ull;
	bo_write64s(other, xb, 8, &xv, 1);
	struct vmb_bo_export_fd ex = {.handle = xb};
	assert_int_equal(vmb_bo_export_fd(other, &ex), 0);
	struct vmb_bo_import_fd im = {.fd = ex.fd};
	assert_int_equal(vmb_bo_import_fd(f->c, &im), 0);
	uint64_t *user = aligned_alloc(OP_SIZE, OP_SIZE);
	assert_non_null(user);
	user[0] = 0x5a5a0002ull;
	struct vmb_bind_op ops[NOPS];
	make_ops(f, ops, NOPS);
	ops[0] = op_unmap(ADDR(0), OP_SIZE);
	ops[1] = op_null(ADDR(1), OP_SIZE);
	ops[2] = op_userptr(user, ADDR(2), OP_SIZE, 0);
	ops[3] = op_map(big, 0, ADDR(3), OP_SIZE, 0); /* no room in VRAM: -ENOSPC */
	ops[4] = op_prefetch(PADDR, P_SIZE, VMB_REGION_SYSTEM);
	ops[5] = op_map(im.handle, 0, ADDR(5), OP_SIZE, 0);
	ops[6] = op_unmap_all(f->bo[6]);
	struct vmb_vm_bind b = call_of(vm, 0, ops, NULL, 0, false);
	assert_int_equal(vmb_vm_bind(f->c, &b), -ENOSPC);
	assert_int_equal(VMB_VM_BIND_RESTART_DONE(b.restart), 3);
	bind1(f->c, lr, op_unmap(0, 40 * MiB));
	bo_destroy1(f->c, vfill);
	/* the creator lets go of the shared BO: this client's handle alone holds it */
	bo_destroy1(other, xb);
	close(ex.fd);
	assert_int_equal(vmb_client_close(other), 0);
	assert_int_equal(vmb_vm_bind(f->c, &b), 0);
	assert_int_equal(b.restart, 0);
	assert_int_equal(gpu_read64(f->c, vm, ADDR(2)), 0x5a5a0002ull);
	assert_int_equal(gpu_read64(f->c, vm, ADDR(5)), xv);
	assert_int_equal(bo_region(f, f->p), VMB_REGION_SYSTEM);
	for (unsigned int i = 7; i < NOPS; i++)
		assert_int_equal(gpu_read64(f->c, vm, ADDR(i)), pattern(i));
	vm_destroy1(f->c, vm);
	vm_destroy1(f->c, lr);
	bo_destroy1(f->c, big);
	bo_destroy1(f->c, im.handle);
	free(user);
	validate_client(f->c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_enospc_unwind, setup, teardown),
		cmocka_unit_test_setup_teardown(test_enospc_restart, setup, teardown),
		cmocka_unit_test_setup_teardown(test_enomem_unwind, setup, teardown),
		cmocka_unit_test_setup_teardown(test_enomem_restart, setup, teardown),
		cmocka_unit_test_setup_teardown(test_eintr_unwind, setup, teardown),
		cmocka_unit_test_setup_teardown(test_eintr_restart, setup, teardown),
		cmocka_unit_test_setup_teardown(test_restart_rules, setup, teardown),
		cmocka_unit_test_setup_teardown(test_destroy_while_owed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_restart_running, setup, teardown),
		cmocka_unit_test_setup_teardown(test_other_call_keeps_owed_restart, setup, teardown),
		cmocka_unit_test_setup_teardown(test_two_calls_each_owed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_async_out_syncs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_banned_while_owed, setup, teardown),

		cmocka_unit_test_setup_teardown(test_restart_queue_id_reused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_restart_bo_handle_reused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_destroy_while_restart_runs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_restart_mixed_ops_shared_bo, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
