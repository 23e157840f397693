/* SPDX-License-Identifier: MIT */
/*
 * Description: the soft GPU runs command buffers: every command (stores, copy, fill, atomic
 * add, semaphore wait, user-fence signal, delay), execs once, twice and many times, many exec
 * queues over many vms, 8 threads binding and executing in one vm, NULL mappings (reads 0,
 * writes dropped), invalid VAs with and without a scratch page (fault, ban, -ECANCELED, the
 * fault queryable), READONLY writes, malformed commands, SEM_WAIT with every compare op (and the
 * op after the last malformed), the job timeout, a semaphore wait
 * satisfied by a bind's user fence on an LR vm (and not holding up another queue of its engine),
 * pipelining: an exec waits for a bind, an unbind waits for an exec (no fault, right data), a
 * rebind between two execs; closing the client while a job runs, and just after one finished;
 * engine threads that start with the first exec queue on their engine; every exec and
 * exec-queue call with bad arguments; two failing jobs on one queue (the first error stays, the
 * second job is cancelled); FILL/COPY of many time slices (exact results, faults midway) and of
 * terabytes (job timeout, queue destroy, the CPU API and other queues not held up); trace
 * records labelled with the submitting client's handles (two clients of one device); user-fence
 * waits tied to an exec queue (-EIO once it is banned, woken by the ban or the queue's destruction);
 * a BO whose handle is gone written by the GPU and read through its CPU mapping.
 */
#include "lib/harness.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/client.h" /* the device's user-fence event: who sleeps on it */
#include "dev/core.h"
#include "sync/fence.h" /* vmb_now_ns */
#include "sync/syncobj.h"
#include "vm/vm.h" /* a vm's lock, held by a test thread */

#define SEC 1000000000ll
#define MS 1000000ll

#define CMD_VA (1ull << 32)  /* where command buffers are mapped */
#define DATA_VA (2ull << 32) /* where the data BO is mapped */
/* The tests run on both soft shapes (make test: exec and exec-discrete): sizes of BOs and binds
 * are whole granules (G: 4 KiB, or 2 MiB on the discrete shape), and the BOs the CPU writes or
 * reads through a pointer (commands, data) are where the CPU maps them (place_cpu: SYSTEM on
 * the discrete shape); VRAM BOs are read and written through bo_read64()/bo_write64s(), and the
 * engines reach them through the device's copies. */
static uint64_t gran = 4096;
#define G(x) (((x) + gran - 1) / gran * gran)
#define CMD_SIZE G(64 * KiB)
#define DATA_SIZE (2 * MiB)

struct fixture {
	struct vmb_client *c;
	uint32_t vm, cmd_bo, data_bo, q;
	uint64_t *cmd;  /* CPU view of the command BO */
	uint8_t *data;  /* CPU view of the data BO */
};

static uint32_t exec_queue_new(struct vmb_client *c, uint32_t vm, uint16_t cls, uint16_t inst)
{
	struct vmb_exec_queue_create a = {.vm_id = vm, .engine = {.engine_class = cls, .engine_instance = inst}};
	assert_int_equal(vmb_exec_queue_create(c, &a), 0);
	assert_int_not_equal(a.exec_queue_id, 0);
	return a.exec_queue_id;
}

static void map_fixture(struct fixture *f, uint32_t vm)
{
	bind1(f->c, vm, op_map(f->cmd_bo, 0, CMD_VA, CMD_SIZE, VMB_BIND_FLAG_READONLY));
	bind1(f->c, vm, op_map(f->data_bo, 0, DATA_VA, DATA_SIZE, 0));
}

static int setup_flags(void **state, uint32_t vm_flags)
{
	struct fixture *f = calloc(1, sizeof(*f));
	f->c = open_soft(256 * MiB, 64 * MiB);
	gran = granule_of(f->c);
	f->vm = vm_new(f->c, vm_flags);
	f->cmd_bo = bo_new(f->c, CMD_SIZE, place_cpu(f->c));
	f->data_bo = bo_new(f->c, DATA_SIZE, place_cpu(f->c));
	f->cmd = bo_cpu(f->c, f->cmd_bo);
	f->data = bo_cpu(f->c, f->data_bo);
	map_fixture(f, f->vm);
	f->q = exec_queue_new(f->c, f->vm, VMB_ENGINE_CLASS_COMPUTE, 0);
	*state = f;
	return 0;
}

static int setup(void **state) { return setup_flags(state, 0); }
static int setup_lr(void **state) { return setup_flags(state, VMB_VM_CREATE_LR_MODE); }

static int teardown(void **state)
{
	struct fixture *f = *state;
	validate_client(f->c);
	assert_int_equal(vmb_client_close(f->c), 0);
	free(f);
	return 0;
}

static int __exec(struct vmb_client *c, uint32_t q, uint64_t va, struct vmb_sync *s, uint32_t ns)
{
	struct vmb_exec e = {.exec_queue_id = q, .address = va, .num_syncs = ns, .syncs = (uint64_t)(uintptr_t)s};
	return vmb_exec(c, &e);
}

/* Exec the buffer at word @at of the command BO, wait for it; returns the fence's error as
 * the queue reports it (0 or what banned it). */
static int run(struct fixture *f, uint32_t q, uint32_t at)
{
	uint32_t so = syncobj_new(f->c, 0);
	struct vmb_sync s = sync_out(so);
	assert_int_equal(__exec(f->c, q, CMD_VA + at * 8ull, &s, 1), 0);
	syncobj_wait1(f->c, so);
	struct vmb_exec_queue_query qq = {.exec_queue_id = q};
	assert_int_equal(vmb_exec_queue_query(f->c, &qq), 0);
	return qq.error;
}

static uint64_t load64(const uint64_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }

static uint64_t data64(struct fixture *f, uint64_t off) { return __atomic_load_n((uint64_t *)(f->data + off), __ATOMIC_ACQUIRE); }

/* The engines' memory in VRAM: stores, FILL, COPY (also from SYSTEM) and atomic adds land, read
 * back through the GPU view and the BO (on the discrete shape VRAM is not CPU-mappable: the
 * engines and both reads go through the device's copies). */
static void test_vram_data(void **state)
{
	struct fixture *f = *state;
	const uint64_t va = 13ull << 32;
	uint32_t bo = bo_new(f->c, G(64 * KiB), VMB_PLACE_VRAM);
	bind1(f->c, f->vm, op_map(bo, 0, va, G(64 * KiB), 0));
	struct vmb_bo_mmap m = {.handle = bo};
	assert_int_equal(vmb_bo_mmap(f->c, &m), vram_cpu_mappable(f->c) ? 0 : -EOPNOTSUPP);
	*(uint64_t *)(f->data + 512) = 0x5151515151515151ull; /* the data BO: a CPU-written source */
	uint32_t n = 0;
	vmb_cmd_store64(f->cmd, &n, va + 0, 0x1122334455667788ull);
	vmb_cmd_fill(f->cmd, &n, va + 4096, 8192, 0x5a5a5a5a); /* across a 4 KiB page */
	vmb_cmd_copy(f->cmd, &n, va + 64, va + 0, 8);
	vmb_cmd_copy(f->cmd, &n, va + 72, DATA_VA + 512, 8);
	vmb_cmd_atomic_add(f->cmd, &n, va + 128, 5);
	vmb_cmd_atomic_add(f->cmd, &n, va + 128, 7);
	vmb_cmd_copy(f->cmd, &n, DATA_VA + 520, va + 128, 8); /* VRAM -> the CPU's BO */
	vmb_cmd_end(f->cmd, &n);
	assert_int_equal(run(f, f->q, 0), 0);
	assert_int_equal(gpu_read64(f->c, f->vm, va), 0x1122334455667788ull);
	assert_int_equal(gpu_read64(f->c, f->vm, va + 64), 0x1122334455667788ull);
	assert_int_equal(gpu_read64(f->c, f->vm, va + 72), 0x5151515151515151ull);
	assert_int_equal(gpu_read64(f->c, f->vm, va + 4096 + 8184), 0x5a5a5a5a5a5a5a5aull);
	assert_int_equal(gpu_read64(f->c, f->vm, va + 4096 + 8192), 0);
	assert_int_equal(bo_read64(f->c, bo, 128), 12);
	assert_int_equal(data64(f, 520), 12);
}

static void test_commands(void **state)
{
	struct fixture *f = *state;
	uint32_t n = 0;
	memset(f->data, 0xaa, 8192);
	vmb_cmd_store64(f->cmd, &n, DATA_VA + 0, 0x1122334455667788ull);
	vmb_cmd_store32(f->cmd, &n, DATA_VA + 8, 0xcafef00d);
	vmb_cmd_fill(f->cmd, &n, DATA_VA + 4096, 4096, 0x5a5a5a5a);
	vmb_cmd_copy(f->cmd, &n, DATA_VA + 64, DATA_VA + 0, 16);
	vmb_cmd_atomic_add(f->cmd, &n, DATA_VA + 128, 5);
	vmb_cmd_atomic_add(f->cmd, &n, DATA_VA + 128, 7);
	vmb_cmd_emit(f->cmd, &n, VMB_CMD_HEADER(VMB_CMD_NOOP, 0));
	vmb_cmd_delay(f->cmd, &n, 1000000);
	vmb_cmd_ufence_signal(f->cmd, &n, DATA_VA + 256, 99);
	vmb_cmd_end(f->cmd, &n);
	*(uint64_t *)(f->data + 128) = 1000;
	int64_t t0 = vmb_now_ns();
	assert_int_equal(run(f, f->q, 0), 0);
	assert_true(vmb_now_ns() - t0 >= 1 * MS); /* the DELAY took the engine's time */
	assert_int_equal(data64(f, 0), 0x1122334455667788ull);
	assert_int_equal(*(uint32_t *)(f->data + 8), 0xcafef00d);
	assert_int_equal(*(uint32_t *)(f->data + 12), 0xaaaaaaaa); /* a 32-bit store is 32 bits */
	for (int i = 0; i < 4096; i += 4)
		assert_int_equal(*(uint32_t *)(f->data + 4096 + i), 0x5a5a5a5a);
	assert_memory_equal(f->data + 64, f->data, 16);
	assert_int_equal(data64(f, 128), 1012);
	assert_int_equal(data64(f, 256), 99);
	ufence_wait(f->c, (uint64_t *)(f->data + 256), 99);
	struct vmb_exec_queue_query qq = {.exec_queue_id = f->q};
	assert_int_equal(vmb_exec_queue_query(f->c, &qq), 0);
	assert_int_equal(qq.flags, 0);
	assert_int_equal(qq.jobs_done, 1);
}

static void test_exec_once_twice_many(void **state)
{
	struct fixture *f = *state;
	uint32_t n = 0;
	vmb_cmd_atomic_add(f->cmd, &n, DATA_VA, 1);
	vmb_cmd_end(f->cmd, &n);
	assert_int_equal(run(f, f->q, 0), 0);
	assert_int_equal(data64(f, 0), 1);
	assert_int_equal(run(f, f->q, 0), 0);
	assert_int_equal(data64(f, 0), 2);
	/* many, back to back, on one queue and the other engines, one final timeline point each */
	uint32_t qs[3] = {f->q, exec_queue_new(f->c, f->vm, VMB_ENGINE_CLASS_COMPUTE, 1),
			  exec_queue_new(f->c, f->vm, VMB_ENGINE_CLASS_COPY, 0)};
	uint32_t tl = syncobj_new(f->c, VMB_SYNCOBJ_CREATE_TIMELINE);
	for (int i = 0; i < 300; i++) {
		struct vmb_sync s = sync_tl_out(tl, (uint64_t)i + 1);
		assert_int_equal(__exec(f->c, qs[i % 3], CMD_VA, &s, 1), 0);
	}
	/* the timeline completes in order even though three queues signal it */
	assert_int_equal(__syncobj_wait1(f->c, tl, 300, 30 * SEC, 0), 0);
	assert_int_equal(data64(f, 0), 302);
}

static void test_many_queues_many_vms(void **state)
{
	struct fixture *f = *state;
	enum { VMS = 6, QS = 4 };
	uint32_t vms[VMS], qs[VMS][QS], so[VMS][QS];
	uint32_t n = 0;
	vmb_cmd_atomic_add(f->cmd, &n, DATA_VA + 8, 1);
	vmb_cmd_end(f->cmd, &n);
	for (int v = 0; v < VMS; v++) {
		vms[v] = vm_new(f->c, 0);
		map_fixture(f, vms[v]);
		for (int k = 0; k < QS; k++)
			qs[v][k] = exec_queue_new(f->c, vms[v], VMB_ENGINE_CLASS_COMPUTE, (uint16_t)(k & 1));
	}
	for (int rep = 0; rep < 5; rep++)
		for (int v = 0; v < VMS; v++)
			for (int k = 0; k < QS; k++) {
				so[v][k] = syncobj_new(f->c, 0);
				struct vmb_sync s = sync_out(so[v][k]);
				assert_int_equal(__exec(f->c, qs[v][k], CMD_VA, &s, 1), 0);
			}
	for (int v = 0; v < VMS; v++)
		for (int k = 0; k < QS; k++)
			syncobj_wait1(f->c, so[v][k]);
	/* every vm maps the same BO: every job added 1 to it */
	assert_int_equal(data64(f, 8), 5 * VMS * QS);
	/* a vm destroyed while its exec queues live: they keep its page tables */
	struct vmb_vm_destroy d = {.vm_id = vms[0]};
	assert_int_equal(vmb_vm_destroy(f->c, &d), 0);
	assert_int_equal(run(f, qs[0][0], 0), 0);
	assert_int_equal(data64(f, 8), 5 * VMS * QS + 1);
}

static void test_null_mapping(void **state)
{
	struct fixture *f = *state;
	uint64_t sparse = 3ull << 32;
	bind1(f->c, f->vm, op_null(sparse, 2 * MiB));
	uint32_t n = 0;
	vmb_cmd_store64(f->cmd, &n, sparse + 8, 1234); /* dropped */
	vmb_cmd_atomic_add(f->cmd, &n, sparse + 16, 5); /* dropped */
	vmb_cmd_copy(f->cmd, &n, DATA_VA, sparse, 64); /* reads zero */
	vmb_cmd_end(f->cmd, &n);
	memset(f->data, 0xff, 64);
	assert_int_equal(run(f, f->q, 0), 0);
	for (int i = 0; i < 64; i++)
		assert_int_equal(f->data[i], 0);
	assert_int_equal(gpu_read64(f->c, f->vm, sparse + 8), 0);
}

static void test_invalid_va(void **state)
{
	struct fixture *f = *state;
	uint64_t hole = 5ull << 32;
	uint32_t n = 0;
	vmb_cmd_store64(f->cmd, &n, DATA_VA, 1);
	vmb_cmd_store64(f->cmd, &n, hole + 16, 2);
	vmb_cmd_store64(f->cmd, &n, DATA_VA + 8, 3); /* not reached */
	vmb_cmd_end(f->cmd, &n);
	assert_int_equal(run(f, f->q, 0), -EFAULT);
	assert_int_equal(data64(f, 0), 1);
	assert_int_equal(data64(f, 8), 0);
	struct vmb_exec_queue_query qq = {.exec_queue_id = f->q};
	assert_int_equal(vmb_exec_queue_query(f->c, &qq), 0);
	assert_int_equal(qq.flags, VMB_EXEC_QUEUE_BANNED);
	assert_int_equal(qq.fault_addr, hole + 16);
	assert_int_equal(qq.fault_access, VMB_FAULT_WRITE);
	/* banned: later execs are refused */
	assert_int_equal(__exec(f->c, f->q, CMD_VA, NULL, 0), -ECANCELED);
	/* a read fault */
	n = 0;
	vmb_cmd_copy(f->cmd, &n, DATA_VA, hole, 8);
	vmb_cmd_end(f->cmd, &n);
	uint32_t q2 = exec_queue_new(f->c, f->vm, VMB_ENGINE_CLASS_COMPUTE, 0);
	assert_int_equal(run(f, q2, 0), -EFAULT);
	qq = (struct vmb_exec_queue_query){.exec_queue_id = q2};
	assert_int_equal(vmb_exec_queue_query(f->c, &qq), 0);
	assert_int_equal(qq.fault_access, VMB_FAULT_READ);
	assert_int_equal(qq.fault_addr, hole);
	/* the command buffer itself unmapped */
	uint32_t q3 = exec_queue_new(f->c, f->vm, VMB_ENGINE_CLASS_COPY, 0);
	uint32_t so = syncobj_new(f->c, 0);
	struct vmb_sync s = sync_out(so);
	assert_int_equal(__exec(f->c, q3, hole, &s, 1), 0);
	syncobj_wait1(f->c, so);
	qq = (struct vmb_exec_queue_query){.exec_queue_id = q3};
	assert_int_equal(vmb_exec_queue_query(f->c, &qq), 0);
	assert_int_equal(qq.error, -EFAULT);
	assert_int_equal(qq.fault_addr, hole);

	/* with a scratch page: no fault, reads give zero, writes are dropped */
	uint32_t vs = vm_new(f->c, VMB_VM_CREATE_SCRATCH_PAGE);
	map_fixture(f, vs);
	uint32_t qs = exec_queue_new(f->c, vs, VMB_ENGINE_CLASS_COMPUTE, 1);
	n = 0;
	vmb_cmd_store64(f->cmd, &n, hole + 16, 2);
	vmb_cmd_atomic_add(f->cmd, &n, hole + 24, 2);
	memset(f->data, 0xee, 8);
	vmb_cmd_copy(f->cmd, &n, DATA_VA, hole, 8);
	vmb_cmd_end(f->cmd, &n);
	assert_int_equal(run(f, qs, 0), 0);
	assert_int_equal(data64(f, 0), 0);
}

/* The exec events of queue @q in the trace, oldest first: their errors (the jobs' fence errors). */
static unsigned int exec_errors(struct vmb_client *c, uint32_t q, int *err, unsigned int max)
{
	struct vmb_trace_event ev[64];
	struct vmb_trace_read rd = {.events = (uint64_t)(uintptr_t)ev, .num_events = 64};
	assert_int_equal(vmb_trace_read(c, &rd), 0);
	unsigned int n = 0;
	for (uint32_t i = 0; i < rd.num_events; i++)
		if (ev[i].kind == VMB_TRACE_EXEC && ev[i].queue_id == q && n < max)
			err[n++] = ev[i].error;
	return n;
}

/* Two jobs on one queue, the second queued behind the first, which faults: the queue reports
 * the first fault (a second error must not overwrite it), and the second job never runs (its
 * marker store stays unwritten, its own fault is never taken); its fence signals -ECANCELED. */
static void test_two_faulting_jobs(void **state)
{
	struct fixture *f = *state;
	uint64_t hole = 5ull << 32, hole2 = 6ull << 32;
	struct vmb_trace_start ts = {.capacity = 64};
	assert_int_equal(vmb_trace_start(f->c, &ts), 0);
	uint32_t n = 0;
	vmb_cmd_store64(f->cmd, &n, hole + 16, 1); /* job 1: a write fault */
	vmb_cmd_end(f->cmd, &n);
	n = 64;
	vmb_cmd_store64(f->cmd, &n, DATA_VA, 0x5a5a); /* job 2: a marker, then a read fault */
	vmb_cmd_copy(f->cmd, &n, DATA_VA + 8, hole2 + 8, 8);
	vmb_cmd_end(f->cmd, &n);
	/* both queued before the first runs: the first waits for a gate */
	struct gate g = gate_new(f->c);
	uint32_t d1 = syncobj_new(f->c, 0), d2 = syncobj_new(f->c, 0);
	struct vmb_sync s1[2] = {sync_in(g.h), sync_out(d1)}, s2 = sync_out(d2);
	assert_int_equal(__exec(f->c, f->q, CMD_VA, s1, 2), 0);
	assert_int_equal(__exec(f->c, f->q, CMD_VA + 64 * 8, &s2, 1), 0);
	gate_open(&g);
	syncobj_wait1(f->c, d1);
	syncobj_wait1(f->c, d2);
	struct vmb_exec_queue_query qq = {.exec_queue_id = f->q};
	assert_int_equal(vmb_exec_queue_query(f->c, &qq), 0);
	assert_int_equal(qq.flags, VMB_EXEC_QUEUE_BANNED);
	assert_int_equal(qq.error, -EFAULT);
	assert_int_equal(qq.fault_addr, hole + 16);
	assert_int_equal(qq.fault_access, VMB_FAULT_WRITE);
	assert_int_equal(qq.jobs_done, 0);
	assert_int_equal(data64(f, 0), 0); /* the second job's commands never ran */
	int err[4];
	assert_int_equal(exec_errors(f->c, f->q, err, 4), 2);
	assert_int_equal(err[0], -EFAULT);
	assert_int_equal(err[1], -ECANCELED);
	assert_int_equal(__exec(f->c, f->q, CMD_VA, NULL, 0), -ECANCELED);
}

static void test_readonly_and_malformed(void **state)
{
	struct fixture *f = *state;
	uint32_t n = 0;
	vmb_cmd_store64(f->cmd, &n, CMD_VA + 4096, 1); /* the command BO is mapped READONLY */
	vmb_cmd_end(f->cmd, &n);
	assert_int_equal(run(f, f->q, 0), -EFAULT);
	struct vmb_exec_queue_query qq = {.exec_queue_id = f->q};
	assert_int_equal(vmb_exec_queue_query(f->c, &qq), 0);
	assert_int_equal(qq.fault_access, VMB_FAULT_WRITE);
	assert_int_equal(qq.fault_addr, CMD_VA + 4096);
	/* an ATOMIC_ADD there too: a write fault at its address, the word unchanged */
	n = 64;
	vmb_cmd_atomic_add(f->cmd, &n, CMD_VA + 4096 + 8, 3);
	vmb_cmd_end(f->cmd, &n);
	uint32_t qa = exec_queue_new(f->c, f->vm, VMB_ENGINE_CLASS_COMPUTE, 1);
	assert_int_equal(run(f, qa, 64), -EFAULT);
	qq = (struct vmb_exec_queue_query){.exec_queue_id = qa};
	assert_int_equal(vmb_exec_queue_query(f->c, &qq), 0);
	assert_int_equal(qq.fault_access, VMB_FAULT_WRITE);
	assert_int_equal(qq.fault_addr, CMD_VA + 4096 + 8);
	assert_int_equal(f->cmd[4096 / 8 + 1], 0);
	const uint64_t bad[][4] = {
		{0x77},                                          /* unknown opcode */
		{VMB_CMD_HEADER(VMB_CMD_NOOP, 0) | 1ull << 40}, /* reserved bits */
		{VMB_CMD_HEADER(VMB_CMD_NOOP, 1)},               /* a sub-op where none belongs */
		{VMB_CMD_HEADER(VMB_CMD_STORE64, 0), DATA_VA + 4, 1},
		{VMB_CMD_HEADER(VMB_CMD_SEM_WAIT, 9), DATA_VA, 0, ~0ull},
		{VMB_CMD_HEADER(VMB_CMD_FILL, 0), DATA_VA, 6, 0},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memcpy(f->cmd + 64, bad[i], sizeof(bad[i]));
		uint32_t q = exec_queue_new(f->c, f->vm, VMB_ENGINE_CLASS_COMPUTE, 0);
		if (run(f, q, 64) != -EINVAL)
			fail_msg("malformed case %zu did not give -EINVAL", i);
	}
}

/*
 * A batch whose SEM_WAIT waits for a word that an asynchronous bind writes as its out user
 * fence (the device's user-fence write notifies its event only for announced waiters: the
 * engine thread must have announced itself before its round read the word). Each round: the
 * exec is submitted, sometimes given time to put its engine to sleep on the event, then a bind
 * writes the word: committed in the call (its queue idle), or by a worker (the bind gated on
 * an imported eventfd, opened after the exec sleeps). A lost wake-up leaves the exec waiting:
 * its out-syncobj's 10 s wait fails with -ETIME.
 */
static void test_sem_wait_on_bind_ufence(void **state)
{
	struct fixture *f = *state;
	const uint64_t va = 17ull << 32;
	uint32_t bo = bo_new(f->c, G(4096), place_cpu(f->c)), bq = queue_new(f->c, f->vm);
	uint64_t *word = (uint64_t *)(f->data + 1024);
	for (uint64_t round = 1; round <= 120; round++) {
		uint32_t n = 0;
		vmb_cmd_sem_wait(f->cmd, &n, DATA_VA + 1024, VMB_UFENCE_OP_EQ, round, ~0ull);
		vmb_cmd_store64(f->cmd, &n, DATA_VA + 1032, round);
		vmb_cmd_end(f->cmd, &n);
		uint32_t so = syncobj_new(f->c, 0);
		struct vmb_sync es = sync_out(so);
		assert_int_equal(__exec(f->c, f->q, CMD_VA, &es, 1), 0);
		bool gated = round % 3 == 2;
		if (round % 2 || gated)
			usleep(500); /* the engine finds the word unwritten and sleeps on the event */
		struct vmb_bind_op op = round % 2 ? op_unmap(va, G(4096)) : op_map(bo, 0, va, G(4096), 0);
		struct vmb_sync bs[2] = {sync_ufence(word, round)};
		struct gate g = {.efd = -1};
		if (gated) {
			g = gate_new(f->c);
			bs[1] = sync_in(g.h);
		}
		assert_int_equal(__bind_async(f->c, f->vm, bq, &op, 1, bs, gated ? 2 : 1), 0);
		if (gated) {
			usleep(300);
			gate_open(&g);
		}
		int r = __syncobj_wait1(f->c, so, 0, 10 * SEC, 0);
		if (r || data64(f, 1032) != round)
			fail_msg("round %llu: exec wait %d, word %llu, store %llu", (unsigned long long)round, r,
				 (unsigned long long)load64(word), (unsigned long long)data64(f, 1032));
		struct vmb_syncobj_destroy d = {.handle = so};
		assert_int_equal(vmb_syncobj_destroy(f->c, &d), 0);
		if (gated) {
			d.handle = g.h;
			assert_int_equal(vmb_syncobj_destroy(f->c, &d), 0);
		}
	}
	struct vmb_bind_op op = op_unmap(va, G(4096));
	bind1(f->c, f->vm, op);
}

/*
 * SEM_WAIT takes every compare op of sync.h, EQ to LTE (the last): each passes at once when its
 * comparison holds (the job completes, the store after it lands); the op after LTE is a
 * malformed command (-EINVAL, the queue banned, the store not reached).
 */
static void test_sem_wait_every_op(void **state)
{
	struct fixture *f = *state;
	static const struct {
		uint32_t op;
		uint64_t value; /* against *addr == 10 */
		const char *name;
	} ops[] = {
		{VMB_UFENCE_OP_EQ, 10, "EQ"},  {VMB_UFENCE_OP_NEQ, 11, "NEQ"}, {VMB_UFENCE_OP_GT, 9, "GT"},
		{VMB_UFENCE_OP_GTE, 10, "GTE"}, {VMB_UFENCE_OP_LT, 11, "LT"},  {VMB_UFENCE_OP_LTE, 10, "LTE"},
	};
	*(uint64_t *)(f->data + 512) = 10;
	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		uint32_t n = 0;
		vmb_cmd_sem_wait(f->cmd, &n, DATA_VA + 512, ops[i].op, ops[i].value, ~0ull);
		vmb_cmd_store64(f->cmd, &n, DATA_VA + 520, i + 1);
		vmb_cmd_end(f->cmd, &n);
		int err = run(f, f->q, 0);
		if (err || data64(f, 520) != i + 1)
			fail_msg("SEM_WAIT %s: job error %d, store %llu", ops[i].name, err,
				 (unsigned long long)data64(f, 520));
	}
	/* the op after the last */
	uint32_t n = 0;
	vmb_cmd_sem_wait(f->cmd, &n, DATA_VA + 512, VMB_UFENCE_OP_LTE + 1, 10, ~0ull);
	vmb_cmd_store64(f->cmd, &n, DATA_VA + 520, 100);
	vmb_cmd_end(f->cmd, &n);
	uint32_t q = exec_queue_new(f->c, f->vm, VMB_ENGINE_CLASS_COMPUTE, 0);
	assert_int_equal(run(f, q, 0), -EINVAL);
	struct vmb_exec_queue_query qq = {.exec_queue_id = q};
	assert_int_equal(vmb_exec_queue_query(f->c, &qq), 0);
	assert_int_equal(qq.flags, VMB_EXEC_QUEUE_BANNED);
	assert_int_equal(data64(f, 520), sizeof(ops) / sizeof(ops[0]));
}

static void test_job_timeout(void **state)
{
	(void)state;
	struct vmb_client_opts o = {.vram_size = 64 * MiB, .system_size = 64 * MiB, .job_timeout_ms = 100};
	struct vmb_client *c;
	assert_int_equal(vmb_client_open("soft", &o, &c), 0);
	gran = granule_of(c);
	struct fixture g = {.c = c, .vm = vm_new(c, 0), .cmd_bo = bo_new(c, CMD_SIZE, place_cpu(c)),
			    .data_bo = bo_new(c, DATA_SIZE, place_cpu(c))};
	g.cmd = bo_cpu(c, g.cmd_bo);
	g.data = bo_cpu(c, g.data_bo);
	map_fixture(&g, g.vm);
	uint32_t n = 0;
	/* a semaphore nobody will release, on a vm whose jobs must end */
	vmb_cmd_sem_wait(g.cmd, &n, DATA_VA, VMB_UFENCE_OP_EQ, 1, ~0ull);
	vmb_cmd_end(g.cmd, &n);
	uint32_t q = exec_queue_new(c, g.vm, VMB_ENGINE_CLASS_COMPUTE, 0);
	int64_t t0 = vmb_now_ns();
	assert_int_equal(run(&g, q, 0), -ETIMEDOUT);
	int64_t took = vmb_now_ns() - t0;
	assert_true(took >= 100 * MS && took < 5 * SEC);
	assert_int_equal(__exec(c, q, CMD_VA, NULL, 0), -ECANCELED);
	/* a long DELAY too */
	n = 0;
	vmb_cmd_delay(g.cmd, &n, 10ull * SEC);
	vmb_cmd_end(g.cmd, &n);
	q = exec_queue_new(c, g.vm, VMB_ENGINE_CLASS_COMPUTE, 1);
	assert_int_equal(run(&g, q, 0), -ETIMEDOUT);
	assert_int_equal(vmb_client_close(c), 0);
}

/* ---- long commands: executed in chunks, one time slice at a time ---- */

/* A client with job timeout @timeout_ms, a vm with @vm_flags, the fixture's BOs mapped, a trace
 * on, and a queue. */
static struct fixture long_fixture(uint32_t timeout_ms, uint32_t vm_flags)
{
	struct vmb_client_opts o = {.vram_size = 64 * MiB, .system_size = 64 * MiB, .job_timeout_ms = timeout_ms};
	struct fixture g = {0};
	assert_int_equal(vmb_client_open("soft", &o, &g.c), 0);
	gran = granule_of(g.c);
	g.vm = vm_new(g.c, vm_flags);
	g.cmd_bo = bo_new(g.c, CMD_SIZE, place_cpu(g.c));
	g.data_bo = bo_new(g.c, DATA_SIZE, place_cpu(g.c));
	g.cmd = bo_cpu(g.c, g.cmd_bo);
	g.data = bo_cpu(g.c, g.data_bo);
	map_fixture(&g, g.vm);
	g.q = exec_queue_new(g.c, g.vm, VMB_ENGINE_CLASS_COMPUTE, 0);
	struct vmb_trace_start ts = {.capacity = 64};
	assert_int_equal(vmb_trace_start(g.c, &ts), 0);
	return g;
}

/* Wait for @so; a job that does not end within 20 s holds the engine (and, before commands
 * ran in slices, the device lock) for hours: no teardown could end, so give up the process. */
static void wait_or_abort(struct vmb_client *c, uint32_t so, const char *what)
{
	int err = __syncobj_wait1(c, so, 0, 20 * SEC, 0);
	if (err) {
		fprintf(stderr, "%s: the job's fence has not signalled after 20 s (%d): the engine hangs\n", what, err);
		abort();
	}
}

/* Exec the buffer at CMD_VA on g's queue; its fence's error (from the trace) once it ends. */
static int run_long(struct fixture *g, const char *what)
{
	uint32_t so = syncobj_new(g->c, 0);
	struct vmb_sync s = sync_out(so);
	assert_int_equal(__exec(g->c, g->q, CMD_VA, &s, 1), 0);
	wait_or_abort(g->c, so, what);
	int err[4];
	assert_int_equal(exec_errors(g->c, g->q, err, 4), 1);
	struct vmb_exec_queue_query qq = {.exec_queue_id = g->q};
	assert_int_equal(vmb_exec_queue_query(g->c, &qq), 0);
	assert_int_equal(qq.error, err[0]);
	return err[0];
}

/* FILL of 64 TiB through a scratch page (every write dropped): it used to run for hours in one
 * go under the device lock; it ends with -ETIMEDOUT. So does a COPY of 32 TiB. */
static void test_long_fill_and_copy_time_out(void **state)
{
	(void)state;
	struct fixture g = long_fixture(200, VMB_VM_CREATE_SCRATCH_PAGE);
	uint32_t n = 0;
	vmb_cmd_fill(g.cmd, &n, 1ull << 40, 1ull << 46, 0x11223344);
	vmb_cmd_end(g.cmd, &n);
	assert_int_equal(run_long(&g, "FILL 64 TiB"), -ETIMEDOUT);
	assert_int_equal(__exec(g.c, g.q, CMD_VA, NULL, 0), -ECANCELED);
	g.q = exec_queue_new(g.c, g.vm, VMB_ENGINE_CLASS_COPY, 0);
	n = 0;
	vmb_cmd_copy(g.cmd, &n, 1ull << 40, 1ull << 46, 1ull << 45);
	vmb_cmd_end(g.cmd, &n);
	assert_int_equal(run_long(&g, "COPY 32 TiB"), -ETIMEDOUT);
	assert_int_equal(vmb_client_close(g.c), 0);
}

/* A FILL over 64 GiB of a NULL mapping took 0.8 s and succeeded with a 200 ms job timeout: its
 * work counts like any other (COMMANDS.md: the job's modelled time), so it times out. */
static void test_long_fill_of_null_mapping_times_out(void **state)
{
	(void)state;
	struct fixture g = long_fixture(200, 0);
	bind1(g.c, g.vm, op_null(1ull << 40, 64 * GiB));
	uint32_t n = 0;
	vmb_cmd_fill(g.cmd, &n, 1ull << 40, 64 * GiB, 7);
	vmb_cmd_end(g.cmd, &n);
	assert_int_equal(run_long(&g, "FILL 64 GiB NULL"), -ETIMEDOUT);
	assert_int_equal(vmb_client_close(g.c), 0);
}

struct creator {
	struct vmb_client *c;
	atomic_int done; /* creates that returned 0 */
	atomic_bool over;
};

static void *create_bos(void *arg)
{
	struct creator *cr = arg;
	for (int i = 0; i < 16; i++) {
		struct vmb_bo_create a = {.size = G(64 * KiB), .placements = VMB_PLACE_SYSTEM};
		if (vmb_bo_create(cr->c, &a) == 0)
			atomic_fetch_add(&cr->done, 1);
	}
	atomic_store(&cr->over, true);
	return NULL;
}

/* While a long FILL runs (timeout 10 min: it would run for minutes), BOs can be created on
 * another thread (the device lock is not held for longer than a slice), and destroying the
 * queue stops the command at its next slice: its fence signals -ECANCELED. */
static void test_long_fill_leaves_device_usable_and_stops(void **state)
{
	(void)state;
	struct fixture g = long_fixture(600000, VMB_VM_CREATE_SCRATCH_PAGE);
	uint32_t n = 0;
	vmb_cmd_fill(g.cmd, &n, 1ull << 40, 1ull << 46, 0);
	vmb_cmd_end(g.cmd, &n);
	uint32_t so = syncobj_new(g.c, 0);
	struct vmb_sync s = sync_out(so);
	assert_int_equal(__exec(g.c, g.q, CMD_VA, &s, 1), 0);
	/* another queue of the same engine is not held up either */
	uint32_t q2 = exec_queue_new(g.c, g.vm, VMB_ENGINE_CLASS_COMPUTE, 0);
	n = 64;
	vmb_cmd_store64(g.cmd, &n, DATA_VA, 77);
	vmb_cmd_end(g.cmd, &n);
	uint32_t so2 = syncobj_new(g.c, 0);
	struct vmb_sync s2 = sync_out(so2);
	assert_int_equal(__exec(g.c, q2, CMD_VA + 64 * 8, &s2, 1), 0);
	struct creator cr = {.c = g.c};
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, create_bos, &cr), 0);
	for (int i = 0; i < 2000 && !atomic_load(&cr.over); i++)
		usleep(10000);
	if (!atomic_load(&cr.over)) {
		fprintf(stderr, "vmb_bo_create blocked for 20 s behind a running FILL\n");
		abort();
	}
	pthread_join(th, NULL);
	assert_int_equal(atomic_load(&cr.done), 16);
	wait_or_abort(g.c, so2, "a STORE64 on the FILL's engine");
	assert_int_equal(data64(&g, 0), 77);
	/* the FILL is still running (it would take minutes); the queue goes */
	assert_int_equal(__syncobj_wait1(g.c, so, 0, 0, 0), -ETIME);
	struct vmb_exec_queue_destroy d = {.exec_queue_id = g.q};
	assert_int_equal(vmb_exec_queue_destroy(g.c, &d), 0);
	wait_or_abort(g.c, so, "FILL after its queue was destroyed");
	int err[4];
	assert_int_equal(exec_errors(g.c, g.q, err, 4), 1);
	assert_int_equal(err[0], -ECANCELED);
	assert_int_equal(vmb_client_close(g.c), 0);
}

/* What COPY has always done, overlapping ranges included: 4 KiB pieces in ascending order,
 * each read whole, then written. */
static void model_copy(uint8_t *mem, uint64_t dst, uint64_t src, uint64_t size)
{
	uint8_t piece[4096];
	for (uint64_t done = 0; done < size; done += sizeof(piece)) {
		uint64_t len = size - done < sizeof(piece) ? size - done : sizeof(piece);
		memcpy(piece, mem + src + done, len);
		memcpy(mem + dst + done, piece, len);
	}
}

/* FILLs and COPYs of several time slices (MiBs) give exactly what one uninterrupted run gave:
 * odd sizes and offsets, overlapping copies both ways, and a fault in the middle of a command
 * reports the first address that faults (what came before it is written). */
static void test_fill_copy_across_slices(void **state)
{
	struct fixture *f = *state;
	const uint64_t big_va = 12ull << 32, size = 16 * MiB;
	uint32_t big = bo_new(f->c, size, place_cpu(f->c));
	uint8_t *mem = bo_cpu(f->c, big), *ref = malloc(size);
	assert_non_null(ref);
	bind1(f->c, f->vm, op_map(big, 0, big_va, size, 0));
	uint64_t seed = test_seed("fill_copy_across_slices");
	for (uint64_t i = 0; i < size; i += 8) {
		uint64_t r = rnd_next(&seed);
		memcpy(mem + i, &r, 8);
	}
	memcpy(ref, mem, size);
	const struct {
		bool fill;
		uint64_t dst, src, size; /* offsets in the BO; src is the value for FILL */
	} cmds[] = {
		{true, 4, 0xdeadbeef, 5 * MiB + 12},
		{false, 9 * MiB + 1, 3, 3 * MiB + 5},   /* apart, odd offsets */
		{false, 1 * MiB + 8, 1 * MiB, 3 * MiB + 100}, /* dst above src, overlapping */
		{false, 6 * MiB, 6 * MiB + 24, 4 * MiB + 4},  /* dst below src, overlapping */
		{true, 15 * MiB + 4092, 0x01020304, 4},
		{false, 7 * MiB + 3, 7 * MiB + 4099, 2 * MiB},
	};
	for (size_t k = 0; k < sizeof(cmds) / sizeof(cmds[0]); k++) {
		uint32_t n = 0;
		if (cmds[k].fill) {
			vmb_cmd_fill(f->cmd, &n, big_va + cmds[k].dst, cmds[k].size, (uint32_t)cmds[k].src);
			for (uint64_t i = 0; i < cmds[k].size; i += 4)
				memcpy(ref + cmds[k].dst + i, &(uint32_t){(uint32_t)cmds[k].src}, 4);
		} else {
			vmb_cmd_copy(f->cmd, &n, big_va + cmds[k].dst, big_va + cmds[k].src, cmds[k].size);
			model_copy(ref, cmds[k].dst, cmds[k].src, cmds[k].size);
		}
		vmb_cmd_end(f->cmd, &n);
		assert_int_equal(run(f, f->q, 0), 0);
		if (memcmp(mem, ref, size))
			fail_msg("command %zu: the BO differs from the reference", k);
	}

	/* faults in the middle: a vm where the BO's first 4 MiB are mapped at V, the next hole */
	uint32_t vm = vm_new(f->c, 0);
	map_fixture(f, vm);
	const uint64_t v = 13ull << 32, w = 14ull << 32;
	bind1(f->c, vm, op_map(big, 0, v, 4 * MiB, 0));
	bind1(f->c, vm, op_map(big, 8 * MiB, w, 8 * MiB, 0));
	uint32_t q = exec_queue_new(f->c, vm, VMB_ENGINE_CLASS_COMPUTE, 1);
	uint32_t n = 0;
	vmb_cmd_fill(f->cmd, &n, v + 4, 6 * MiB, 0x77777777);
	vmb_cmd_end(f->cmd, &n);
	assert_int_equal(run(f, q, 0), -EFAULT);
	struct vmb_exec_queue_query qq = {.exec_queue_id = q};
	assert_int_equal(vmb_exec_queue_query(f->c, &qq), 0);
	assert_int_equal(qq.fault_addr, v + 4 * MiB);
	assert_int_equal(qq.fault_access, VMB_FAULT_WRITE);
	for (uint64_t i = 4; i < 4 * MiB; i += 4)
		if (*(uint32_t *)(mem + i) != 0x77777777)
			fail_msg("FILL before the fault: word at %#llx not written", (unsigned long long)i);
	/* a read fault in the middle of a COPY's piece: the first byte that faults is reported */
	memcpy(ref, mem, size);
	q = exec_queue_new(f->c, vm, VMB_ENGINE_CLASS_COMPUTE, 1);
	n = 0;
	vmb_cmd_copy(f->cmd, &n, w, v + 100, 6 * MiB);
	vmb_cmd_end(f->cmd, &n);
	assert_int_equal(run(f, q, 0), -EFAULT);
	qq = (struct vmb_exec_queue_query){.exec_queue_id = q};
	assert_int_equal(vmb_exec_queue_query(f->c, &qq), 0);
	assert_int_equal(qq.fault_addr, v + 4 * MiB);
	assert_int_equal(qq.fault_access, VMB_FAULT_READ);
	uint64_t whole = (4 * MiB - 100) / 4096 * 4096; /* the pieces before the faulting one */
	assert_memory_equal(mem + 8 * MiB, ref + 100, whole);
	free(ref);
}

/* ---- LR: a semaphore wait released by a bind's user fence ---- */

static void test_lr_semaphore_on_bind_fence(void **state)
{
	struct fixture *f = *state;
	/* the user fence the bind writes lives in the data BO: the GPU waits on it at DATA_VA */
	uint64_t *fence_cpu = (uint64_t *)(f->data + 512);
	*fence_cpu = 0;
	uint64_t buf = 7ull << 32;
	uint32_t bo = bo_new(f->c, G(64 * KiB), VMB_PLACE_VRAM);
	uint32_t n = 0;
	vmb_cmd_sem_wait(f->cmd, &n, DATA_VA + 512, VMB_UFENCE_OP_GTE, 1, ~0ull);
	vmb_cmd_store64(f->cmd, &n, buf, 0xfeed); /* into the BO the bind maps */
	vmb_cmd_ufence_signal(f->cmd, &n, DATA_VA + 520, 2);
	vmb_cmd_end(f->cmd, &n);
	static uint64_t done;
	done = 0;
	struct vmb_sync s = sync_ufence(&done, 1);
	assert_int_equal(__exec(f->c, f->q, CMD_VA, &s, 1), 0);
	/* another queue on the same engine is not held up by the waiting one */
	uint32_t other = exec_queue_new(f->c, f->vm, VMB_ENGINE_CLASS_COMPUTE, 0);
	uint32_t n2 = 64;
	vmb_cmd_store64(f->cmd, &n2, DATA_VA + 600, 31);
	vmb_cmd_end(f->cmd, &n2);
	static uint64_t done2;
	done2 = 0;
	struct vmb_sync s2 = sync_ufence(&done2, 1);
	assert_int_equal(__exec(f->c, other, CMD_VA + 64 * 8, &s2, 1), 0);
	ufence_wait(f->c, &done2, 1);
	assert_int_equal(data64(f, 600), 31);
	/* an LR job may wait as long as it likes: still waiting after a while */
	usleep(50000);
	assert_int_equal(load64(&done), 0);
	/* the bind maps the BO and writes the fence the GPU waits on */
	struct vmb_bind_op op = op_map(bo, 0, buf, G(64 * KiB), 0);
	struct vmb_sync bs = sync_ufence(fence_cpu, 1);
	bind_async(f->c, f->vm, 0, &op, 1, &bs, 1);
	ufence_wait(f->c, &done, 1);
	ufence_wait(f->c, (uint64_t *)(f->data + 520), 2);
	assert_int_equal(bo_read64(f->c, bo, 0), 0xfeed);
	/* LR: exec out-syncs are user fences only */
	uint32_t so = syncobj_new(f->c, 0);
	struct vmb_sync bad = sync_out(so);
	assert_int_equal(__exec(f->c, f->q, CMD_VA, &bad, 1), -EOPNOTSUPP);
}

/* ---- pipelining ---- */

static void test_exec_waits_for_bind(void **state)
{
	struct fixture *f = *state;
	uint64_t buf = 9ull << 32;
	uint32_t bo = bo_new(f->c, G(64 * KiB), VMB_PLACE_VRAM);
	uint32_t bound = syncobj_new(f->c, 0), done = syncobj_new(f->c, 0);
	uint32_t n = 0;
	vmb_cmd_store64(f->cmd, &n, buf + 8, 0xabc);
	vmb_cmd_end(f->cmd, &n);
	/* the exec waits for the bind's out-fence */
	uint32_t q = queue_new(f->c, f->vm);
	struct vmb_bind_op hold = op_map(f->data_bo, 0, 11ull << 32, G(4096), 0);
	bind_async(f->c, f->vm, q, &hold, 1, NULL, 0); /* keep the bind queue busy a little */
	struct vmb_bind_op op = op_map(bo, 0, buf, G(64 * KiB), 0);
	struct vmb_sync bs = sync_out(bound);
	bind_async(f->c, f->vm, q, &op, 1, &bs, 1);
	struct vmb_sync es[2] = {sync_in(bound), sync_out(done)};
	assert_int_equal(__exec(f->c, f->q, CMD_VA, es, 2), 0);
	syncobj_wait1(f->c, done);
	assert_int_equal(run(f, f->q, 0), 0); /* not banned: no fault */
	assert_int_equal(bo_read64(f->c, bo, 8), 0xabc);
}

/*
 * An exec whose dependencies have signalled, handed to an idle engine, is started by the thread
 * that makes the call (once the call has dropped its locks), not by waking the engine's
 * thread: a short batch has run, and its fence signalled, when vmb_exec returns.
 */
static void test_idle_engine_runs_exec_in_call(void **state)
{
	struct fixture *f = *state;
	uint32_t done = syncobj_new(f->c, 0);
	for (uint64_t i = 1; i <= 100; i++) {
		uint32_t n = 0;
		vmb_cmd_store64(f->cmd, &n, DATA_VA + 8, i);
		vmb_cmd_end(f->cmd, &n);
		struct vmb_sync s = sync_out(done);
		assert_int_equal(__exec(f->c, f->q, CMD_VA, &s, 1), 0);
		if (__syncobj_wait1(f->c, done, 0, 0, 0) != 0 || data64(f, 8) != i)
			fail_msg("exec %llu: not done when the call returned", (unsigned long long)i);
	}
	assert_int_equal(run(f, f->q, 0), 0);
}

static void test_unbind_after_exec(void **state)
{
	struct fixture *f = *state;
	uint64_t buf = 9ull << 32;
	uint32_t bo = bo_new(f->c, G(64 * KiB), VMB_PLACE_VRAM);
	bind1(f->c, f->vm, op_map(bo, 0, buf, G(64 * KiB), 0));
	uint32_t n = 0;
	vmb_cmd_delay(f->cmd, &n, 50 * MS); /* a long job */
	for (int i = 0; i < 8; i++)
		vmb_cmd_store64(f->cmd, &n, buf + 8 * (uint64_t)i, 100 + (uint64_t)i);
	vmb_cmd_end(f->cmd, &n);
	uint32_t exec_done = syncobj_new(f->c, 0), unbound = syncobj_new(f->c, 0);
	struct vmb_sync es = sync_out(exec_done);
	assert_int_equal(__exec(f->c, f->q, CMD_VA, &es, 1), 0);
	/* the unbind is submitted at once, after the exec's fence */
	struct vmb_bind_op op = op_unmap(buf, G(64 * KiB));
	struct vmb_sync us[2] = {sync_in(exec_done), sync_out(unbound)};
	bind_async(f->c, f->vm, 0, &op, 1, us, 2);
	assert_int_equal(__syncobj_wait1(f->c, unbound, 0, 10 * MS, 0), -ETIME); /* still waiting */
	syncobj_wait1(f->c, unbound);
	struct vmb_exec_queue_query qq = {.exec_queue_id = f->q};
	assert_int_equal(vmb_exec_queue_query(f->c, &qq), 0);
	assert_int_equal(qq.flags, 0); /* no fault: the mapping outlived the job */
	for (int i = 0; i < 8; i++)
		assert_int_equal(bo_read64(f->c, bo, 8 * (uint64_t)i), 100 + (uint64_t)i);
	uint64_t v;
	assert_int_equal(__gpu_rw(f->c, f->vm, buf, &v, 8, false), -EFAULT); /* and now it is gone */
}

/* Who signalled a fence: a callback on it records its thread. */
struct signaller_cb {
	struct vmb_fence_cb cb;
	pthread_t thread;
	atomic_bool ran;
};

static void signaller_seen(struct vmb_fence *f, struct vmb_fence_cb *cb)
{
	(void)f;
	struct signaller_cb *s = vmb_container_of(cb, struct signaller_cb, cb);
	s->thread = pthread_self();
	atomic_store(&s->ran, true);
}

static int fence_of(void *arg, struct vmb_fence *f)
{
	vmb_fence_get(f);
	*(struct vmb_fence **)arg = f;
	return 0;
}

/* The fence a binary syncobj's job signals (a new reference). */
static struct vmb_fence *syncobj_job_fence(struct vmb_client *c, uint32_t h)
{
	struct vmb_fence *f = NULL;
	pthread_mutex_lock(&c->sync_lock);
	struct vmb_syncobj *so = vmb_handle_lookup(&c->syncobjs, h);
	assert_non_null(so);
	assert_int_equal(vmb_syncobj_for_each_dep(so, 0, fence_of, &f), 0);
	pthread_mutex_unlock(&c->sync_lock);
	assert_non_null(f);
	return f;
}

static void signaller_watch(struct signaller_cb *s, struct vmb_fence *f)
{
	atomic_init(&s->ran, false);
	assert_int_equal(vmb_fence_add_callback(f, &s->cb, signaller_seen), 0); /* not signalled yet */
}

static void signaller_wait(struct signaller_cb *s)
{
	int64_t end = vmb_now_ns() + 10 * SEC; /* a hang, not a timing */
	while (!atomic_load(&s->ran) && vmb_now_ns() < end)
		sched_yield();
	assert_true(atomic_load(&s->ran));
}

/*
 * An unbind whose last dependency is an exec commits on the engine's thread that ends the exec,
 * when the engine has nothing else to run (sched.h, "Run-here scopes"), instead of on a worker
 * woken for it: the thread that signals the exec's fence signals the unbind's too. The exec
 * waits on a semaphore that the CPU releases once the unbind is submitted, so that the engine's
 * thread, not the call's kick, ends it.
 */
static void test_unbind_after_exec_runs_on_engine(void **state)
{
	struct fixture *f = *state;
	uint64_t buf = 9ull << 32;
	uint32_t bo = bo_new(f->c, G(64 * KiB), VMB_PLACE_VRAM);
	bind1(f->c, f->vm, op_map(bo, 0, buf, G(64 * KiB), 0));
	uint32_t n = 0;
	vmb_cmd_sem_wait(f->cmd, &n, DATA_VA + 16, VMB_UFENCE_OP_EQ, 1, ~0ull);
	vmb_cmd_store64(f->cmd, &n, buf, 77);
	vmb_cmd_end(f->cmd, &n);
	uint32_t exec_done = syncobj_new(f->c, 0), unbound = syncobj_new(f->c, 0);
	struct vmb_sync es = sync_out(exec_done);
	assert_int_equal(__exec(f->c, f->q, CMD_VA, &es, 1), 0);
	struct vmb_bind_op op = op_unmap(buf, G(64 * KiB));
	struct vmb_sync us[2] = {sync_in(exec_done), sync_out(unbound)};
	bind_async(f->c, f->vm, 0, &op, 1, us, 2);
	struct vmb_fence *xf = syncobj_job_fence(f->c, exec_done), *uf = syncobj_job_fence(f->c, unbound);
	struct signaller_cb xs, ub;
	signaller_watch(&xs, xf);
	signaller_watch(&ub, uf);
	__atomic_store_n((uint64_t *)(f->data + 16), 1, __ATOMIC_RELEASE); /* the exec may go on */
	syncobj_wait1(f->c, unbound);
	signaller_wait(&xs);
	signaller_wait(&ub);
	assert_false(pthread_equal(xs.thread, pthread_self()));
	if (!pthread_equal(xs.thread, ub.thread))
		fail_msg("the unbind was committed by another thread than the engine's that ended the exec");
	assert_int_equal(bo_read64(f->c, bo, 0), 77);
	uint64_t v;
	assert_int_equal(__gpu_rw(f->c, f->vm, buf, &v, 8, false), -EFAULT); /* unmapped */
	vmb_fence_unref(xf);
	vmb_fence_unref(uf);
}

/*
 * The set-up of the tests below: a 64 KiB VRAM BO mapped at @buf in the fixture's vm, and at the
 * start of the command buffer a job that waits for DATA_VA + 16 to read 1, then ends. Returns
 * the command buffer's next free slot (in words).
 */
static uint32_t held_job_setup(struct fixture *f, uint64_t buf, uint32_t *bo)
{
	*bo = bo_new(f->c, G(64 * KiB), VMB_PLACE_VRAM);
	bind1(f->c, f->vm, op_map(*bo, 0, buf, G(64 * KiB), 0));
	uint32_t n = 0;
	vmb_cmd_sem_wait(f->cmd, &n, DATA_VA + 16, VMB_UFENCE_OP_EQ, 1, ~0ull);
	vmb_cmd_end(f->cmd, &n);
	return n;
}

/*
 * The same while the engine has another job (blocked on a semaphore): the engine's thread hands
 * the unbind to a worker; the bind of another queue waiting for the unbind then commits on that
 * same worker, which signalled its dependency (no second worker woken), not on the engine's
 * thread.
 */
static void test_bind_after_bind_runs_on_worker(void **state)
{
	struct fixture *f = *state;
	uint64_t buf = 9ull << 32, other = 10ull << 32;
	uint32_t bo;
	uint32_t n = held_job_setup(f, buf, &bo);
	uint32_t at = n; /* the other exec: held until the end */
	vmb_cmd_sem_wait(f->cmd, &n, DATA_VA + 24, VMB_UFENCE_OP_EQ, 1, ~0ull);
	vmb_cmd_end(f->cmd, &n);
	uint32_t q2 = exec_queue_new(f->c, f->vm, VMB_ENGINE_CLASS_COMPUTE, 0); /* the same engine */
	uint32_t exec_done = syncobj_new(f->c, 0), held = syncobj_new(f->c, 0);
	uint32_t unbound = syncobj_new(f->c, 0), mapped = syncobj_new(f->c, 0);
	struct vmb_sync hs = sync_out(held);
	assert_int_equal(__exec(f->c, q2, CMD_VA + at * 8ull, &hs, 1), 0);
	struct vmb_sync es = sync_out(exec_done);
	assert_int_equal(__exec(f->c, f->q, CMD_VA, &es, 1), 0);
	struct vmb_bind_op op = op_unmap(buf, G(64 * KiB));
	struct vmb_sync us[2] = {sync_in(exec_done), sync_out(unbound)};
	bind_async(f->c, f->vm, 0, &op, 1, us, 2);
	uint32_t bq = queue_new(f->c, f->vm);
	struct vmb_bind_op op2 = op_map(bo, 0, other, G(64 * KiB), 0);
	struct vmb_sync ms[2] = {sync_in(unbound), sync_out(mapped)};
	bind_async(f->c, f->vm, bq, &op2, 1, ms, 2);
	struct vmb_fence *xf = syncobj_job_fence(f->c, exec_done), *uf = syncobj_job_fence(f->c, unbound),
			 *mf = syncobj_job_fence(f->c, mapped);
	struct signaller_cb xs, ub, mb;
	signaller_watch(&xs, xf);
	signaller_watch(&ub, uf);
	signaller_watch(&mb, mf);
	__atomic_store_n((uint64_t *)(f->data + 16), 1, __ATOMIC_RELEASE); /* the first exec may end */
	syncobj_wait1(f->c, mapped);
	signaller_wait(&xs);
	signaller_wait(&ub);
	signaller_wait(&mb);
	__atomic_store_n((uint64_t *)(f->data + 24), 1, __ATOMIC_RELEASE); /* and the other */
	syncobj_wait1(f->c, held);
	assert_false(pthread_equal(ub.thread, pthread_self()));
	if (pthread_equal(xs.thread, ub.thread))
		fail_msg("the engine's thread committed the unbind while it had another job");
	if (!pthread_equal(ub.thread, mb.thread))
		fail_msg("the map was committed by another thread than the worker that committed the unbind");
	uint64_t v;
	assert_int_equal(__gpu_rw(f->c, f->vm, buf, &v, 8, false), -EFAULT);
	assert_int_equal(__gpu_rw(f->c, f->vm, other, &v, 8, false), 0);
	vmb_fence_unref(xf);
	vmb_fence_unref(uf);
	vmb_fence_unref(mf);
}

/*
 * The engine has another job, in a DELAY, when an exec ends: the engine's thread keeps the unbind
 * that waited for the exec and commits it in that DELAY, when it would sleep (engine.h), not on
 * a worker woken for it. (Before: a worker committed it; the assertion on the thread failed.)
 */
static void test_unbind_after_exec_runs_in_engine_delay(void **state)
{
	struct fixture *f = *state;
	uint64_t buf = 9ull << 32;
	uint32_t bo;
	uint32_t n = held_job_setup(f, buf, &bo);
	uint32_t at = n; /* the other exec: a long DELAY, on the same engine */
	vmb_cmd_delay(f->cmd, &n, 200 * 1000000ull);
	vmb_cmd_end(f->cmd, &n);
	uint32_t q2 = exec_queue_new(f->c, f->vm, VMB_ENGINE_CLASS_COMPUTE, 0);
	uint32_t exec_done = syncobj_new(f->c, 0), delayed = syncobj_new(f->c, 0), unbound = syncobj_new(f->c, 0);
	struct vmb_sync es = sync_out(exec_done);
	assert_int_equal(__exec(f->c, f->q, CMD_VA, &es, 1), 0);
	struct vmb_sync ds = sync_out(delayed);
	assert_int_equal(__exec(f->c, q2, CMD_VA + at * 8ull, &ds, 1), 0);
	struct vmb_bind_op op = op_unmap(buf, G(64 * KiB));
	struct vmb_sync us[2] = {sync_in(exec_done), sync_out(unbound)};
	bind_async(f->c, f->vm, 0, &op, 1, us, 2);
	struct vmb_fence *xf = syncobj_job_fence(f->c, exec_done), *uf = syncobj_job_fence(f->c, unbound),
			 *df = syncobj_job_fence(f->c, delayed);
	struct signaller_cb xs, ub;
	signaller_watch(&xs, xf);
	signaller_watch(&ub, uf);
	__atomic_store_n((uint64_t *)(f->data + 16), 1, __ATOMIC_RELEASE); /* the first exec may end */
	syncobj_wait1(f->c, unbound);
	signaller_wait(&xs);
	signaller_wait(&ub);
	bool in_delay = !vmb_fence_is_signalled(df); /* the DELAY (200 ms) still running */
	syncobj_wait1(f->c, delayed);
	if (!pthread_equal(xs.thread, ub.thread))
		fail_msg("the unbind was committed by another thread than the engine's, which was in a DELAY");
	assert_true(in_delay);
	uint64_t v;
	assert_int_equal(__gpu_rw(f->c, f->vm, buf, &v, 8, false), -EFAULT); /* unmapped */
	vmb_fence_unref(xf);
	vmb_fence_unref(uf);
	vmb_fence_unref(df);
}

/* A thread that holds a vm's lock from when it is asked until it is released. */
struct lock_holder {
	struct vmb_mutex *lock;
	struct vmb_vm *commit; /* also hold what a commit on this vm holds beside its lock (NULL: no) */
	atomic_int state; /* 0 idle, 1 asked, 2 holding, 3 released, 4 let go by itself (10 s) */
	struct vmb_fence_cb cb;
};

static void *lock_holder_main(void *arg)
{
	struct lock_holder *h = arg;
	int64_t end = vmb_now_ns() + 10 * SEC;
	while (atomic_load(&h->state) != 1 && vmb_now_ns() < end)
		sched_yield();
	vmb_mutex_lock(h->lock);
	const struct vmb_device_ops *ops = h->commit ? h->commit->dev->ops : NULL;
	if (ops && ops->commit_begin) /* dev/device.h: the device's own lock of its page tables */
		ops->commit_begin(h->commit->dvm);
	atomic_store(&h->state, 2);
	while (atomic_load(&h->state) != 3 && vmb_now_ns() < end)
		sched_yield();
	int held = 2;
	atomic_compare_exchange_strong(&h->state, &held, 4);
	if (ops && ops->commit_end)
		ops->commit_end(h->commit->dvm);
	vmb_mutex_unlock(h->lock);
	return NULL;
}

/* The exec's fence signals (on the engine's thread, before its run-here scope ends): the holder
 * takes the vm's lock now, so that the unbind run at the scope's end waits for it. */
static void lock_holder_ask(struct vmb_fence *f, struct vmb_fence_cb *cb)
{
	(void)f;
	struct lock_holder *h = vmb_container_of(cb, struct lock_holder, cb);
	atomic_store(&h->state, 1);
	int64_t end = vmb_now_ns() + 10 * SEC;
	while (atomic_load(&h->state) != 2 && vmb_now_ns() < end)
		sched_yield();
}

/* Starts a thread that holds the fixture's vm's lock (@commit: and what a bind's commit holds
 * beside it: the soft device's walk lock once an exec was queued on the vm), and returns once it
 * holds it. */
static void lock_hold(struct fixture *f, struct lock_holder *h, pthread_t *th, bool commit)
{
	*h = (struct lock_holder){.state = 1};
	struct vmb_vm *vm = vmb_handle_lookup(&f->c->vms, f->vm); /* no vm is created or destroyed meanwhile */
	assert_non_null(vm);
	h->lock = &vm->lock;
	h->commit = commit ? vm : NULL;
	assert_int_equal(pthread_create(th, NULL, lock_holder_main, h), 0);
	int64_t end = vmb_now_ns() + 10 * SEC;
	while (atomic_load(&h->state) != 2 && vmb_now_ns() < end)
		sched_yield();
	assert_int_equal(atomic_load(&h->state), 2);
}

static void vm_lock_hold(struct fixture *f, struct lock_holder *h, pthread_t *th) { lock_hold(f, h, th, false); }

/* The holder lets the lock go (it does after 10 s anyway); joined. */
static void vm_lock_release(struct lock_holder *h, pthread_t th)
{
	atomic_store(&h->state, 3);
	pthread_join(th, NULL);
}

/* The vm's first exec (its submission takes the vm's lock: exec/exec.h), storing @v at
 * DATA_VA + 56, run to its end. */
static void first_exec(struct fixture *f, uint64_t v)
{
	uint32_t n = 0;
	vmb_cmd_store64(f->cmd, &n, DATA_VA + 56, v);
	vmb_cmd_end(f->cmd, &n);
	assert_int_equal(run(f, f->q, 0), 0);
	assert_int_equal(data64(f, 56), v);
}

/*
 * An exec's submission takes its vm's lock only for the vm's first exec (and while BOs are
 * misplaced: exec/exec.h): later exec calls return while another thread holds the vm's lock (a
 * bind's preparation or commit), and their jobs run. (Before: every exec call took the vm's
 * lock; the call below returned only once the holder let go by itself after 10 s.)
 */
static void test_exec_call_does_not_wait_for_vm_lock(void **state)
{
	struct fixture *f = *state;
	first_exec(f, 9);
	uint32_t n = 0;
	vmb_cmd_store64(f->cmd, &n, DATA_VA + 56, 10);
	vmb_cmd_end(f->cmd, &n);
	uint32_t q2 = exec_queue_new(f->c, f->vm, VMB_ENGINE_CLASS_COMPUTE, 0);
	uint32_t done = syncobj_new(f->c, 0), done2 = syncobj_new(f->c, 0);
	struct vmb_sync es = sync_out(done), es2 = sync_out(done2);
	struct lock_holder h;
	pthread_t th;
	vm_lock_hold(f, &h, &th);
	int r = __exec(f->c, f->q, CMD_VA, &es, 1);
	int r2 = __exec(f->c, q2, CMD_VA, &es2, 1); /* another queue's first exec, same vm */
	int held = atomic_load(&h.state);
	int w = r || r2 ? -1 : __syncobj_wait1(f->c, done2, 0, 2 * SEC, 0);
	vm_lock_release(&h, th);
	assert_int_equal(r, 0);
	assert_int_equal(r2, 0);
	if (held != 2)
		fail_msg("the exec calls returned only once the vm's lock was let go");
	assert_int_equal(w, 0); /* the jobs ran meanwhile */
	syncobj_wait1(f->c, done);
	assert_int_equal(data64(f, 56), 10);
}

/*
 * Nor, on a busy engine (an idle one would start the job in the call: sched.h, "Deferred
 * starts"), for a bind's commit, which holds the device's own lock of the page tables beside the
 * vm's (dev/device.h commit_begin; soft: the walk lock, which engines hold for a time slice):
 * the device's hint of an exec (exec_hint: where its batch starts, a prefault) only tries it.
 * The job runs once the commit is over. (Before: the soft hint waited for the walk lock, and the
 * exec call with it until the holder let go by itself after 10 s.)
 */
static void test_exec_call_does_not_wait_for_a_commit(void **state)
{
	struct fixture *f = *state;
	first_exec(f, 11);
	uint32_t n = 0;
	/* the engine busy until the test lets this job go */
	vmb_cmd_sem_wait(f->cmd, &n, DATA_VA + 16, VMB_UFENCE_OP_EQ, 1, ~0ull);
	vmb_cmd_end(f->cmd, &n);
	uint32_t at = n;
	vmb_cmd_store64(f->cmd, &n, DATA_VA + 56, 12);
	vmb_cmd_end(f->cmd, &n);
	assert_int_equal(__exec(f->c, f->q, CMD_VA, NULL, 0), 0);
	uint32_t done = syncobj_new(f->c, 0);
	struct vmb_sync es = sync_out(done);
	struct lock_holder h;
	pthread_t th;
	lock_hold(f, &h, &th, true);
	int r = __exec(f->c, f->q, CMD_VA + at * 8ull, &es, 1);
	int held = atomic_load(&h.state);
	vm_lock_release(&h, th);
	__atomic_store_n((uint64_t *)(f->data + 16), 1, __ATOMIC_RELEASE); /* the first job ends */
	assert_int_equal(r, 0);
	if (held != 2)
		fail_msg("the exec call returned only once the commit's locks were let go");
	syncobj_wait1(f->c, done);
	assert_int_equal(data64(f, 56), 12);
}

/*
 * A BATCH_END right after a DELAY is fetched with the DELAY (COMMANDS.md): the job ends when the
 * DELAY does without taking its vm's lock again, so a thread holding that lock meanwhile (a
 * bind's commit) does not hold up the job's end. (Before: its fence waited for the lock; the
 * wait below timed out.)
 */
static void test_end_after_delay_needs_no_lock(void **state)
{
	struct fixture *f = *state;
	uint32_t n = 0;
	vmb_cmd_store64(f->cmd, &n, DATA_VA + 40, 1); /* started: the DELAY's slice holds the lock */
	vmb_cmd_delay(f->cmd, &n, 20 * MS);
	vmb_cmd_end(f->cmd, &n);
	uint32_t done = syncobj_new(f->c, 0);
	struct vmb_sync es = sync_out(done);
	assert_int_equal(__exec(f->c, f->q, CMD_VA, &es, 1), 0);
	int64_t end = vmb_now_ns() + 10 * SEC;
	while (!data64(f, 40) && vmb_now_ns() < end)
		sched_yield();
	assert_int_equal(data64(f, 40), 1);
	struct lock_holder h;
	pthread_t th;
	vm_lock_hold(f, &h, &th);
	int r = __syncobj_wait1(f->c, done, 0, 2 * SEC, 0); /* the holder lets go after 10 s */
	vm_lock_release(&h, th);
	if (r)
		fail_msg("the job did not end while its vm's lock was held (%d)", r);
	syncobj_wait1(f->c, done);
}

/*
 * An engine's time slices read the page tables under their own walk lock, not the vm's lock
 * (dev/soft/engine.h): a job runs its commands while another thread holds the vm's lock (a
 * bind's preparation in the call). The job waits on a semaphore until the lock is held, then
 * stores and ends. (Before: each slice took the vm's lock; the wait below timed out.)
 */
static void test_slices_run_while_vm_lock_held(void **state)
{
	struct fixture *f = *state;
	uint32_t n = 0;
	vmb_cmd_sem_wait(f->cmd, &n, DATA_VA + 16, VMB_UFENCE_OP_EQ, 1, ~0ull);
	vmb_cmd_store64(f->cmd, &n, DATA_VA + 48, 7);
	vmb_cmd_end(f->cmd, &n);
	uint32_t done = syncobj_new(f->c, 0);
	struct vmb_sync es = sync_out(done);
	assert_int_equal(__exec(f->c, f->q, CMD_VA, &es, 1), 0);
	struct lock_holder h;
	pthread_t th;
	vm_lock_hold(f, &h, &th);
	__atomic_store_n((uint64_t *)(f->data + 16), 1, __ATOMIC_RELEASE); /* the job may go on */
	int r = __syncobj_wait1(f->c, done, 0, 2 * SEC, 0); /* the holder lets go after 10 s */
	uint64_t stored = data64(f, 48);
	vm_lock_release(&h, th);
	if (r)
		fail_msg("the job did not run while its vm's lock was held (%d)", r);
	assert_int_equal(stored, 7);
	syncobj_wait1(f->c, done);
}

/*
 * While the engine's thread commits a bind in its run-here scope, the engine is nobody's: an exec
 * handed to it then (by a call, on another vm) is started by the call's kick at once, not after
 * the bind. The bind is held in its commit by a thread that holds its vm's lock.
 */
static void test_engine_free_while_its_thread_binds(void **state)
{
	struct fixture *f = *state;
	uint64_t buf = 9ull << 32;
	uint32_t bo;
	uint32_t n = held_job_setup(f, buf, &bo);
	uint32_t at = n; /* the other vm's exec: a store */
	vmb_cmd_store64(f->cmd, &n, DATA_VA + 32, 5);
	vmb_cmd_end(f->cmd, &n);
	uint32_t vm2 = vm_new(f->c, 0);
	map_fixture(f, vm2);
	uint32_t q2 = exec_queue_new(f->c, vm2, VMB_ENGINE_CLASS_COMPUTE, 0); /* the same engine */
	uint32_t exec_done = syncobj_new(f->c, 0), unbound = syncobj_new(f->c, 0), other = syncobj_new(f->c, 0);
	struct vmb_sync es = sync_out(exec_done);
	assert_int_equal(__exec(f->c, f->q, CMD_VA, &es, 1), 0);
	struct vmb_bind_op op = op_unmap(buf, G(64 * KiB));
	struct vmb_sync us[2] = {sync_in(exec_done), sync_out(unbound)};
	bind_async(f->c, f->vm, 0, &op, 1, us, 2);
	struct lock_holder h = {.state = 0};
	struct vmb_vm *vm = vmb_handle_lookup(&f->c->vms, f->vm); /* no vm is created or destroyed meanwhile */
	assert_non_null(vm);
	h.lock = &vm->lock;
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, lock_holder_main, &h), 0);
	struct vmb_fence *xf = syncobj_job_fence(f->c, exec_done);
	assert_int_equal(vmb_fence_add_callback(xf, &h.cb, lock_holder_ask), 0);
	__atomic_store_n((uint64_t *)(f->data + 16), 1, __ATOMIC_RELEASE); /* the exec may end */
	syncobj_wait1(f->c, exec_done);
	/* the unbind waits for the vm's lock on the engine's thread (the engine idle, nobody's) */
	int64_t end = vmb_now_ns() + 10 * SEC;
	while ((atomic_load(&h.state) != 2 || !vmb_mutex_waiters(h.lock)) && vmb_now_ns() < end)
		sched_yield();
	assert_int_equal(atomic_load(&h.state), 2);
	assert_true(vmb_mutex_waiters(h.lock));
	assert_int_equal(__syncobj_wait1(f->c, unbound, 0, 0, 0), -ETIME);
	struct vmb_sync os = sync_out(other);
	assert_int_equal(__exec(f->c, q2, CMD_VA + at * 8ull, &os, 1), 0);
	int done = __syncobj_wait1(f->c, other, 0, 0, 0);
	atomic_store(&h.state, 3);
	pthread_join(th, NULL);
	if (done != 0)
		fail_msg("the exec handed to the engine while its thread committed a bind did not run in the call (%d)", done);
	syncobj_wait1(f->c, unbound);
	syncobj_wait1(f->c, other);
	assert_int_equal(data64(f, 32), 5);
	vmb_fence_unref(xf);
}

/* A thread that destroys a vm once asked (from a fence callback on the engine's thread). */
struct destroyer {
	struct vmb_client *c;
	uint32_t vm;
	atomic_int state; /* 0 idle, 1 asked, 2 destroying, 3 done */
	int err;
	struct vmb_fence_cb cb;
};

static void *destroyer_main(void *arg)
{
	struct destroyer *d = arg;
	int64_t end = vmb_now_ns() + 10 * SEC;
	while (atomic_load(&d->state) != 1 && vmb_now_ns() < end)
		sched_yield();
	atomic_store(&d->state, 2);
	struct vmb_vm_destroy a = {.vm_id = d->vm};
	d->err = vmb_vm_destroy(d->c, &a);
	atomic_store(&d->state, 3);
	return NULL;
}

/* The exec's fence signals on the engine's thread, its unbind claimed for the thread's run-here
 * scope: the vm is destroyed now, before the scope ends (a while given to the destroy to reach
 * its drain, which must wait for the claimed unbind rather than run it or skip it). */
static void destroyer_ask(struct vmb_fence *f, struct vmb_fence_cb *cb)
{
	(void)f;
	struct destroyer *d = vmb_container_of(cb, struct destroyer, cb);
	atomic_store(&d->state, 1);
	int64_t end = vmb_now_ns() + 10 * SEC;
	while (atomic_load(&d->state) < 2 && vmb_now_ns() < end)
		sched_yield();
	for (int i = 0; i < 2000 && atomic_load(&d->state) != 3; i++)
		sched_yield();
}

/*
 * A vm destroyed while the engine's thread holds its unbind in a run-here scope (the exec it
 * waited for just ended): the destroy completes, the unbind's fence signals (committed by the
 * engine's thread, or cancelled by the drain if it came first), nothing is run twice or freed
 * early (ASan), the exec queue still holding the vm.
 */
static void test_vm_destroyed_while_engine_holds_its_unbind(void **state)
{
	struct fixture *f = *state;
	uint64_t buf = 9ull << 32;
	uint32_t bo = bo_new(f->c, G(64 * KiB), VMB_PLACE_VRAM);
	uint32_t n = 0;
	vmb_cmd_sem_wait(f->cmd, &n, DATA_VA + 16, VMB_UFENCE_OP_EQ, 1, ~0ull);
	vmb_cmd_end(f->cmd, &n);
	for (int round = 0; round < 6; round++) {
		__atomic_store_n((uint64_t *)(f->data + 16), 0, __ATOMIC_RELEASE);
		uint32_t vm2 = vm_new(f->c, 0);
		map_fixture(f, vm2);
		bind1(f->c, vm2, op_map(bo, 0, buf, G(64 * KiB), 0));
		uint32_t q2 = exec_queue_new(f->c, vm2, VMB_ENGINE_CLASS_COMPUTE, 0);
		uint32_t exec_done = syncobj_new(f->c, 0), unbound = syncobj_new(f->c, 0);
		struct vmb_sync es = sync_out(exec_done);
		assert_int_equal(__exec(f->c, q2, CMD_VA, &es, 1), 0);
		struct vmb_bind_op op = op_unmap(buf, G(64 * KiB));
		struct vmb_sync us[2] = {sync_in(exec_done), sync_out(unbound)};
		bind_async(f->c, vm2, 0, &op, 1, us, 2);
		struct destroyer *d = calloc(1, sizeof(*d)); /* not on the stack: a failure leaves the thread */
		assert_non_null(d);
		d->c = f->c;
		d->vm = vm2;
		pthread_t th;
		assert_int_equal(pthread_create(&th, NULL, destroyer_main, d), 0);
		struct vmb_fence *xf = syncobj_job_fence(f->c, exec_done);
		assert_int_equal(vmb_fence_add_callback(xf, &d->cb, destroyer_ask), 0);
		__atomic_store_n((uint64_t *)(f->data + 16), 1, __ATOMIC_RELEASE); /* the exec may end */
		pthread_join(th, NULL);
		assert_int_equal(d->err, 0);
		int err = __syncobj_wait1(f->c, unbound, 0, 10 * SEC, 0);
		if (err && err != -ECANCELED)
			fail_msg("round %d: the unbind's fence: %d", round, err);
		syncobj_wait1(f->c, exec_done);
		struct vmb_exec_queue_destroy qd = {.exec_queue_id = q2};
		assert_int_equal(vmb_exec_queue_destroy(f->c, &qd), 0);
		vmb_fence_unref(xf);
		free(d);
		validate_client(f->c);
	}
}

static void test_rebind_between_execs(void **state)
{
	struct fixture *f = *state;
	uint64_t src = 9ull << 32;
	uint32_t a = bo_new(f->c, G(64 * KiB), VMB_PLACE_VRAM), b = bo_new(f->c, G(64 * KiB), VMB_PLACE_SYSTEM);
	bo_write64s(f->c, a, 8, (uint64_t[]){0xaaaa}, 1);
	bo_write64s(f->c, b, 8, (uint64_t[]){0xbbbb}, 1);
	bind1(f->c, f->vm, op_map(a, 0, src, G(64 * KiB), 0));
	uint32_t n = 0;
	vmb_cmd_delay(f->cmd, &n, 10 * MS);
	vmb_cmd_copy(f->cmd, &n, DATA_VA, src, 8);
	vmb_cmd_end(f->cmd, &n);
	n = 64;
	vmb_cmd_copy(f->cmd, &n, DATA_VA + 8, src, 8);
	vmb_cmd_end(f->cmd, &n);
	uint32_t e1 = syncobj_new(f->c, 0), rb = syncobj_new(f->c, 0), e2 = syncobj_new(f->c, 0);
	struct vmb_sync s1 = sync_out(e1);
	assert_int_equal(__exec(f->c, f->q, CMD_VA, &s1, 1), 0);
	struct vmb_bind_op op = op_map(b, 0, src, G(64 * KiB), 0);
	struct vmb_sync bs[2] = {sync_in(e1), sync_out(rb)};
	bind_async(f->c, f->vm, 0, &op, 1, bs, 2);
	uint32_t q2 = exec_queue_new(f->c, f->vm, VMB_ENGINE_CLASS_COMPUTE, 1);
	struct vmb_sync s2[2] = {sync_in(rb), sync_out(e2)};
	assert_int_equal(__exec(f->c, q2, CMD_VA + 64 * 8, s2, 2), 0);
	syncobj_wait1(f->c, e2);
	assert_int_equal(data64(f, 0), 0xaaaa); /* the first exec saw the old BO */
	assert_int_equal(data64(f, 8), 0xbbbb); /* the second the new one */
}

/* ---- 8 threads, one vm ---- */

struct worker {
	struct fixture *f;
	int t;
	int err;
};

static void *bind_exec_worker(void *arg)
{
	struct worker *w = arg;
	struct fixture *f = w->f;
	uint64_t va = (16ull + (uint64_t)w->t) << 32;
	uint32_t bo = bo_new(f->c, G(64 * KiB), VMB_PLACE_VRAM);
	uint32_t q = exec_queue_new(f->c, f->vm, VMB_ENGINE_CLASS_COMPUTE, (uint16_t)(w->t & 1));
	uint32_t bq = queue_new(f->c, f->vm);
	/* each thread's own command buffer: 64 words at its slot of the command BO */
	uint32_t at = 128 + 16 * (uint32_t)w->t, n = at;
	vmb_cmd_atomic_add(f->cmd, &n, va, 1);
	vmb_cmd_end(f->cmd, &n);
	uint32_t unbound = syncobj_new(f->c, 0);
	for (int i = 0; i < 100 && !w->err; i++) {
		uint32_t bound = syncobj_new(f->c, 0), done = syncobj_new(f->c, 0);
		struct vmb_bind_op op = op_map(bo, 0, va, G(64 * KiB), 0);
		struct vmb_sync bs = sync_out(bound);
		w->err = __bind_async(f->c, f->vm, bq, &op, 1, &bs, 1);
		struct vmb_sync es[2] = {sync_in(bound), sync_out(done)};
		if (!w->err)
			w->err = __exec(f->c, q, CMD_VA + at * 8ull, es, 2);
		struct vmb_bind_op un = op_unmap(va, G(64 * KiB));
		struct vmb_sync us[2] = {sync_in(done), sync_out(unbound)};
		if (!w->err)
			w->err = __bind_async(f->c, f->vm, bq, &un, 1, us, 2);
		if (!w->err)
			w->err = __syncobj_wait1(f->c, done, 0, 30 * SEC, 0);
	}
	if (!w->err) /* the last unmap */
		w->err = __syncobj_wait1(f->c, unbound, 0, 30 * SEC, 0);
	struct vmb_exec_queue_query qq = {.exec_queue_id = q};
	if (!w->err)
		w->err = vmb_exec_queue_query(f->c, &qq);
	if (!w->err && (qq.flags || bo_read64(f->c, bo, 0) != 100))
		w->err = -EUCLEAN;
	return NULL;
}

static void test_threads_bind_and_exec(void **state)
{
	struct fixture *f = *state;
	struct worker w[8];
	pthread_t th[8];
	for (int t = 0; t < 8; t++) {
		w[t] = (struct worker){.f = f, .t = t};
		assert_int_equal(pthread_create(&th[t], NULL, bind_exec_worker, &w[t]), 0);
	}
	for (int t = 0; t < 8; t++) {
		pthread_join(th[t], NULL);
		assert_int_equal(w[t].err, 0);
	}
	/* every thread's binds are done: the vm holds the fixture's two mappings only */
	assert_int_equal(vm_stats(f->c, f->vm).num_mappings, 2);
}

/* ---- bad arguments ---- */

static void test_bad_args(void **state)
{
	struct fixture *f = *state;
	struct vmb_exec_queue_create qc = {.vm_id = f->vm};
	qc.flags = 2; /* 1: VMB_EXEC_QUEUE_CMDSET_INTEL (tests/exec/intel.c) */
	assert_int_equal(vmb_exec_queue_create(f->c, &qc), -EINVAL);
	qc = (struct vmb_exec_queue_create){.vm_id = f->vm, .pad = 1};
	assert_int_equal(vmb_exec_queue_create(f->c, &qc), -EINVAL);
	qc = (struct vmb_exec_queue_create){.vm_id = f->vm, .reserved = 1};
	assert_int_equal(vmb_exec_queue_create(f->c, &qc), -EINVAL);
	qc = (struct vmb_exec_queue_create){.vm_id = f->vm, .engine = {.engine_class = 2}};
	assert_int_equal(vmb_exec_queue_create(f->c, &qc), -EINVAL);
	qc = (struct vmb_exec_queue_create){.vm_id = f->vm, .engine = {.engine_instance = 2}};
	assert_int_equal(vmb_exec_queue_create(f->c, &qc), -EINVAL);
	qc = (struct vmb_exec_queue_create){.vm_id = f->vm, .engine = {.pad = 1}};
	assert_int_equal(vmb_exec_queue_create(f->c, &qc), -EINVAL);
	qc = (struct vmb_exec_queue_create){.vm_id = 999};
	assert_int_equal(vmb_exec_queue_create(f->c, &qc), -ENOENT);
	assert_int_equal(vmb_exec_queue_create(NULL, &qc), -EINVAL);

	struct vmb_exec e;
	const struct {
		const char *name;
		struct vmb_exec e;
		int err;
	} cases[] = {
		{"flags", {.flags = 1}, -EINVAL},
		{"pad", {.pad = 1}, -EINVAL},
		{"reserved", {.reserved = 1}, -EINVAL},
		{"exec_queue_serial not the queue's", {.exec_queue_serial = UINT64_MAX}, -ENOENT},
		{"misaligned", {.address = CMD_VA + 4}, -EINVAL},
		{"too many syncs", {.num_syncs = VMB_EXEC_MAX_SYNCS + 1, .syncs = 1}, -EINVAL},
		{"NULL syncs", {.num_syncs = 1}, -EFAULT},
		{"unknown queue", {.exec_queue_id = 999}, -ENOENT},
		{"unknown syncobj", {.num_syncs = 1, .syncs = 2}, -ENOENT},
		{"user fence as in-sync", {.num_syncs = 1, .syncs = 3}, -EOPNOTSUPP},
		{"out user fence read-only", {.num_syncs = 1, .syncs = 4}, -EFAULT},
	};
	static uint64_t uf;
	void *ro = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(ro != MAP_FAILED);
	struct vmb_sync unknown = sync_in(4242), ufin = {.type = VMB_SYNC_USER_FENCE, .addr = (uint64_t)(uintptr_t)&uf};
	struct vmb_sync ufro = {.type = VMB_SYNC_USER_FENCE, .flags = VMB_SYNC_FLAG_SIGNAL, .addr = (uint64_t)(uintptr_t)ro};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		e = cases[i].e;
		if (!e.exec_queue_id)
			e.exec_queue_id = f->q;
		if (!e.address)
			e.address = CMD_VA;
		if (e.syncs == 1)
			e.syncs = (uint64_t)(uintptr_t)&unknown;
		else if (e.syncs == 2)
			e.syncs = (uint64_t)(uintptr_t)&unknown;
		else if (e.syncs == 3)
			e.syncs = (uint64_t)(uintptr_t)&ufin;
		else if (e.syncs == 4)
			e.syncs = (uint64_t)(uintptr_t)&ufro;
		int err = vmb_exec(f->c, &e);
		if (err != cases[i].err)
			fail_msg("%s: got %d, expected %d", cases[i].name, err, cases[i].err);
	}
	assert_int_equal(vmb_exec(NULL, &e), -EINVAL);
	munmap(ro, 4096);
	struct vmb_exec_queue_destroy d = {.exec_queue_id = f->q, .pad = 1};
	assert_int_equal(vmb_exec_queue_destroy(f->c, &d), -EINVAL);
	d = (struct vmb_exec_queue_destroy){.exec_queue_id = 999};
	assert_int_equal(vmb_exec_queue_destroy(f->c, &d), -ENOENT);
	struct vmb_exec_queue_query qq = {.exec_queue_id = f->q, .reserved = {1}};
	assert_int_equal(vmb_exec_queue_query(f->c, &qq), -EINVAL);
	qq = (struct vmb_exec_queue_query){.exec_queue_id = 999};
	assert_int_equal(vmb_exec_queue_query(f->c, &qq), -ENOENT);
	/* the queue was not banned by any of it */
	uint32_t n = 0;
	vmb_cmd_end(f->cmd, &n);
	assert_int_equal(run(f, f->q, 0), 0);
}

static void test_trace(void **state)
{
	struct fixture *f = *state;
	struct vmb_trace_start ts = {.capacity = 4, .flags = 1};
	assert_int_equal(vmb_trace_start(f->c, &ts), -EINVAL);
	ts = (struct vmb_trace_start){.capacity = 4, .reserved = 1};
	assert_int_equal(vmb_trace_start(f->c, &ts), -EINVAL);
	ts = (struct vmb_trace_start){.capacity = (1u << 24) + 1};
	assert_int_equal(vmb_trace_start(f->c, &ts), -EINVAL);
	ts = (struct vmb_trace_start){.capacity = 4};
	assert_int_equal(vmb_trace_start(f->c, &ts), 0);
	uint32_t n = 0;
	vmb_cmd_delay(f->cmd, &n, 1 * MS);
	vmb_cmd_end(f->cmd, &n);
	uint32_t bound = syncobj_new(f->c, 0);
	struct vmb_bind_op op = op_map(f->data_bo, 0, 10ull << 32, G(64 * KiB), 0);
	struct vmb_sync bs = sync_out(bound);
	bind_async(f->c, f->vm, 0, &op, 1, &bs, 1);
	uint32_t so = syncobj_new(f->c, 0);
	struct vmb_sync es[2] = {sync_in(bound), sync_out(so)};
	assert_int_equal(__exec(f->c, f->q, CMD_VA, es, 2), 0);
	syncobj_wait1(f->c, so);
	for (int i = 0; i < 4; i++) /* 4 more execs: the ring (4) overflows by 2 */
		assert_int_equal(run(f, f->q, 0), 0);
	struct vmb_trace_event ev[8];
	struct vmb_trace_read rd = {.events = (uint64_t)(uintptr_t)ev, .num_events = 8, .reserved = 1};
	assert_int_equal(vmb_trace_read(f->c, &rd), -EINVAL);
	rd = (struct vmb_trace_read){.num_events = 1};
	assert_int_equal(vmb_trace_read(f->c, &rd), -EFAULT);
	rd = (struct vmb_trace_read){.events = (uint64_t)(uintptr_t)ev, .num_events = 8};
	assert_int_equal(vmb_trace_read(f->c, &rd), 0);
	assert_int_equal(rd.num_events, 4);
	assert_int_equal(rd.dropped, 2);
	assert_int_equal(ev[0].kind, VMB_TRACE_BIND);
	assert_int_equal(ev[0].vm_id, f->vm);
	assert_int_equal(ev[0].ops, 1);
	assert_int_equal(ev[1].kind, VMB_TRACE_EXEC);
	assert_int_equal(ev[1].queue_id, f->q);
	for (int i = 0; i < 4; i++) {
		assert_true(ev[i].submit_ns <= ev[i].ready_ns && ev[i].ready_ns <= ev[i].start_ns &&
			    ev[i].start_ns <= ev[i].end_ns);
		assert_int_equal(ev[i].error, 0);
	}
	/* the exec waited for the bind: it started after the bind's fence, and ran 1 ms */
	assert_true(ev[1].start_ns >= ev[0].end_ns);
	assert_true(ev[1].end_ns - ev[1].start_ns >= 1 * MS);
	rd = (struct vmb_trace_read){.events = (uint64_t)(uintptr_t)ev, .num_events = 8};
	assert_int_equal(vmb_trace_read(f->c, &rd), 0);
	assert_int_equal(rd.num_events, 0);
	assert_int_equal(rd.dropped, 0);
	ts = (struct vmb_trace_start){0}; /* off */
	assert_int_equal(vmb_trace_start(f->c, &ts), 0);
	assert_int_equal(run(f, f->q, 0), 0);
	assert_int_equal(vmb_trace_read(f->c, &rd), 0);
	assert_int_equal(rd.num_events, 0);
}

/*
 * A trace records the bind jobs submitted while it is on: a bind submitted before the start
 * (held back by a gate) that ends after it leaves no record (a job not traced at submission
 * takes no time stamps: tracing off costs an asynchronous bind no clock reads); one submitted
 * after the start, behind it on the same queue, is recorded.
 */
static void test_trace_from_start(void **state)
{
	struct fixture *f = *state;
	struct gate g = gate_new(f->c);
	uint32_t b1 = syncobj_new(f->c, 0), b2 = syncobj_new(f->c, 0);
	struct vmb_bind_op op1 = op_map(f->data_bo, 0, 10ull << 32, G(64 * KiB), 0);
	struct vmb_bind_op op2 = op_map(f->data_bo, 0, 11ull << 32, G(64 * KiB), 0);
	struct vmb_sync s1[2] = {sync_in(g.h), sync_out(b1)}, s2 = sync_out(b2);
	bind_async(f->c, f->vm, 0, &op1, 1, s1, 2); /* tracing off: pending on the gate */
	struct vmb_trace_start ts = {.capacity = 8};
	assert_int_equal(vmb_trace_start(f->c, &ts), 0);
	bind_async(f->c, f->vm, 0, &op2, 1, &s2, 1); /* behind the first on the queue */
	gate_open(&g);
	syncobj_wait1(f->c, b1);
	syncobj_wait1(f->c, b2);
	struct vmb_trace_event ev[8];
	struct vmb_trace_read rd = {.events = (uint64_t)(uintptr_t)ev, .num_events = 8};
	assert_int_equal(vmb_trace_read(f->c, &rd), 0);
	assert_int_equal(rd.num_events, 1);
	assert_int_equal(ev[0].kind, VMB_TRACE_BIND);
	assert_true(ev[0].submit_ns && ev[0].submit_ns <= ev[0].ready_ns && ev[0].ready_ns <= ev[0].start_ns &&
		    ev[0].start_ns <= ev[0].end_ns);
	ts = (struct vmb_trace_start){0};
	assert_int_equal(vmb_trace_start(f->c, &ts), 0);
}

/*
 * Trace records name the vm and the queue by the submitting client's handles: objects store no
 * client's handle, the entry point labels the job. Two clients of one device (one trace ring,
 * read by either); the second one's handles differ from the first one's. An exec queue whose
 * vm's handle was destroyed still labels its jobs with that handle (the queue keeps the vm).
 */
static void test_trace_labels_per_client(void **state)
{
	struct fixture *f = *state;
	struct vmb_client *b = open_soft(256 * MiB, 64 * MiB);
	uint32_t n = 0;
	vmb_cmd_end(f->cmd, &n);
	uint32_t b_cmd = bo_new(b, CMD_SIZE, place_cpu(b));
	uint64_t *b_cmdp = bo_cpu(b, b_cmd);
	n = 0;
	vmb_cmd_end(b_cmdp, &n);
	uint32_t vx = vm_new(b, 0), vy = vm_new(b, 0);
	uint32_t bq = queue_new(b, vy);
	uint32_t eq_x = exec_queue_new(b, vx, VMB_ENGINE_CLASS_COMPUTE, 0);
	uint32_t eq_y = exec_queue_new(b, vy, VMB_ENGINE_CLASS_COMPUTE, 0);
	/* the labels tell the clients apart only if their handles differ */
	assert_int_not_equal(vy, f->vm);
	assert_int_not_equal(eq_y, f->q);
	(void)eq_x;

	struct vmb_trace_start ts = {.capacity = 16};
	assert_int_equal(vmb_trace_start(f->c, &ts), 0);
	uint32_t so = syncobj_new(b, 0);
	struct vmb_bind_op op = op_map(b_cmd, 0, CMD_VA, CMD_SIZE, VMB_BIND_FLAG_READONLY);
	struct vmb_sync s = sync_out(so);
	bind_async(b, vy, bq, &op, 1, &s, 1);
	syncobj_wait1(b, so);
	for (int i = 0; i < 2; i++) {
		if (i == 1) { /* the vm's handle goes; the queue keeps the vm */
			struct vmb_vm_destroy d = {.vm_id = vy};
			assert_int_equal(vmb_vm_destroy(b, &d), 0);
		}
		so = syncobj_new(b, 0);
		s = sync_out(so);
		assert_int_equal(__exec(b, eq_y, CMD_VA, &s, 1), 0);
		syncobj_wait1(b, so);
	}
	assert_int_equal(run(f, f->q, 0), 0);

	struct vmb_trace_event ev[8];
	struct vmb_trace_read rd = {.events = (uint64_t)(uintptr_t)ev, .num_events = 8};
	assert_int_equal(vmb_trace_read(b, &rd), 0); /* the device's ring: either client reads it */
	assert_int_equal(rd.num_events, 4);
	assert_int_equal(ev[0].kind, VMB_TRACE_BIND);
	assert_int_equal(ev[0].vm_id, vy);
	assert_int_equal(ev[0].queue_id, bq);
	for (int i = 1; i < 3; i++) {
		assert_int_equal(ev[i].kind, VMB_TRACE_EXEC);
		assert_int_equal(ev[i].vm_id, vy);
		assert_int_equal(ev[i].queue_id, eq_y);
		assert_int_equal(ev[i].error, 0);
	}
	assert_int_equal(ev[3].kind, VMB_TRACE_EXEC);
	assert_int_equal(ev[3].vm_id, f->vm);
	assert_int_equal(ev[3].queue_id, f->q);
	ts = (struct vmb_trace_start){0};
	assert_int_equal(vmb_trace_start(f->c, &ts), 0);
	validate_client(b);
	assert_int_equal(vmb_client_close(b), 0);
}

static void test_destroy_queue_with_jobs(void **state)
{
	struct fixture *f = *state;
	uint32_t n = 0;
	vmb_cmd_delay(f->cmd, &n, 10ull * SEC);
	vmb_cmd_end(f->cmd, &n);
	uint32_t running = syncobj_new(f->c, 0), waiting = syncobj_new(f->c, 0);
	struct vmb_sync s1 = sync_out(running), s2 = sync_out(waiting);
	assert_int_equal(__exec(f->c, f->q, CMD_VA, &s1, 1), 0);
	assert_int_equal(__exec(f->c, f->q, CMD_VA, &s2, 1), 0);
	usleep(20000);
	struct vmb_exec_queue_destroy d = {.exec_queue_id = f->q};
	int64_t t0 = vmb_now_ns();
	assert_int_equal(vmb_exec_queue_destroy(f->c, &d), 0);
	syncobj_wait1(f->c, waiting);
	syncobj_wait1(f->c, running);
	assert_true(vmb_now_ns() - t0 < 2 * SEC); /* the 10 s job was stopped */
}

/* A failed job's queue shows the ban and the fault by the time any of the job's out-syncs is
 * seen: its out user fence, its syncobj, or a job on another queue that waited for it (the
 * device's fence callback records the fault before the job's completion path runs). */
static void test_fault_record_visible_with_out_syncs(void **state)
{
	struct fixture *f = *state;
	uint64_t hole = 5ull << 32;
	for (int i = 0; i < 20; i++) {
		uint32_t q = exec_queue_new(f->c, f->vm, VMB_ENGINE_CLASS_COMPUTE, (uint16_t)(i & 1));
		uint32_t q2 = exec_queue_new(f->c, f->vm, VMB_ENGINE_CLASS_COPY, 0);
		uint32_t n = 0;
		vmb_cmd_store64(f->cmd, &n, hole + 8 * (uint64_t)i, 1);
		vmb_cmd_end(f->cmd, &n);
		vmb_cmd_end(f->cmd, &n); /* at CMD_VA + 32: the other queue's job */
		uint64_t *uf = calloc(1, 8);
		assert_non_null(uf);
		uint32_t so = syncobj_new(f->c, 0), so2 = syncobj_new(f->c, 0);
		struct vmb_sync s[2] = {sync_out(so), sync_ufence(uf, 1)};
		assert_int_equal(__exec(f->c, q, CMD_VA, s, 2), 0);
		struct vmb_sync s2[2] = {sync_in(so), sync_out(so2)};
		assert_int_equal(__exec(f->c, q2, CMD_VA + 32, s2, 2), 0);
		struct vmb_exec_queue_query qq = {.exec_queue_id = q};
		switch (i % 3) {
		case 0: ufence_wait(f->c, uf, 1); break;
		case 1: syncobj_wait1(f->c, so); break;
		default: syncobj_wait1(f->c, so2); break;
		}
		assert_int_equal(vmb_exec_queue_query(f->c, &qq), 0);
		assert_int_equal(qq.flags, VMB_EXEC_QUEUE_BANNED);
		assert_int_equal(qq.error, -EFAULT);
		assert_int_equal(qq.fault_addr, hole + 8 * (uint64_t)i);
		assert_int_equal(qq.fault_access, VMB_FAULT_WRITE);
		struct vmb_exec_queue_destroy d = {.exec_queue_id = q};
		assert_int_equal(vmb_exec_queue_destroy(f->c, &d), 0);
		d.exec_queue_id = q2;
		syncobj_wait1(f->c, so2);
		assert_int_equal(vmb_exec_queue_destroy(f->c, &d), 0);
		free(uf);
	}
}

/* Destroying a queue ends its jobs that still wait for their in-syncs with -ECANCELED; their out
 * user fences are written all the same, as for every other way a job ends (one completion
 * path), so a thread waiting on one is not left waiting for good. */
static void test_destroy_queue_writes_waiting_jobs_ufences(void **state)
{
	struct fixture *f = *state;
	uint32_t n = 0;
	vmb_cmd_end(f->cmd, &n);
	struct gate g = gate_new(f->c);
	uint32_t so = syncobj_new(f->c, 0);
	uint64_t *uf = calloc(1, 8);
	assert_non_null(uf);
	struct vmb_sync s[3] = {sync_in(g.h), sync_out(so), sync_ufence(uf, 7)};
	assert_int_equal(__exec(f->c, f->q, CMD_VA, s, 3), 0);
	struct vmb_exec_queue_destroy d = {.exec_queue_id = f->q};
	assert_int_equal(vmb_exec_queue_destroy(f->c, &d), 0);
	assert_int_equal(__syncobj_wait1(f->c, so, 0, 10ll * SEC, 0), 0);
	assert_int_equal(__ufence_wait(f->c, uf, 7, VMB_UFENCE_OP_EQ, 10ll * SEC), 0);
	gate_open(&g);
	free(uf);
}

/* A user-fence wait tied to exec queue @q (0: none), on @loc for @value, relative timeout @ns. */
static int __ufence_wait_q(struct vmb_client *c, uint32_t q, uint64_t *loc, uint64_t value, int64_t ns)
{
	struct vmb_user_fence_wait w = {.addr = (uint64_t)(uintptr_t)loc, .value = value, .mask = ~0ull,
					.timeout = ns, .op = VMB_UFENCE_OP_EQ, .exec_queue_id = q};
	return vmb_user_fence_wait(c, &w);
}

/* Once a thread sleeps on the device's user-fence event (no engine does here: the job waits for
 * its gate, not on the engine), open the gate or destroy the queue. The event counts its
 * sleepers with futexes only: under ThreadSanitizer (a condition variable) it acts after 100 ms
 * instead, and the wait sees the ban when it begins or once woken: -EIO either way. */
struct waker {
	struct vmb_client *c;
	struct gate *g;
	uint32_t destroy_q;
};

static void *wake_when_waiting(void *arg)
{
	struct waker *w = arg;
	int64_t until = vmb_now_ns() + 100 * MS;
#ifndef VMB_FENCE_CONDVAR
	until += 3600 * SEC;
#endif
	while (!atomic_load(&w->c->dev->ufence_ev.waiters) && vmb_now_ns() < until)
		sched_yield();
	if (w->g) {
		gate_open(w->g);
	} else {
		struct vmb_exec_queue_destroy d = {.exec_queue_id = w->destroy_q};
		assert_int_equal(vmb_exec_queue_destroy(w->c, &d), 0);
	}
	return NULL;
}

/*
 * A user-fence wait tied to an exec queue (Xe's exec_queue_id): on a value that is never written,
 * it ends with -EIO once the queue is banned, whether the ban comes while it sleeps (a faulting
 * job behind a gate; the ban wakes it) or before it begins (then at once, timeout 0 too), and
 * when the queue is destroyed while it sleeps; a value that holds still passes on a banned
 * queue (the comparison first, as Xe); an unknown queue is -ENOENT; a queue in good standing
 * leaves the wait to its timeout.
 */
static void test_ufence_wait_on_banned_queue(void **state)
{
	struct fixture *f = *state;
	uint64_t hole = 5ull << 32;
	uint64_t *never = calloc(1, 8), *done = calloc(1, 8);
	assert_non_null(never);
	assert_non_null(done);
	assert_int_equal(__ufence_wait_q(f->c, f->q, never, 1, 0), -ETIME);
	assert_int_equal(__ufence_wait_q(f->c, f->q + 100, never, 1, 0), -ENOENT);
	assert_int_equal(__ufence_wait_q(f->c, f->q, never, 0, 0), 0);

	/* banned while the wait sleeps: the job faults once the gate opens, and some modelled work
	 * later (handing the job to its engine wakes the user-fence waiters: only the ban's own
	 * wake-up ends the wait then) */
	uint32_t n = 0;
	vmb_cmd_delay(f->cmd, &n, 50 * MS);
	vmb_cmd_store64(f->cmd, &n, hole, 1);
	vmb_cmd_end(f->cmd, &n);
	struct gate g = gate_new(f->c);
	struct vmb_sync s = sync_in(g.h);
	assert_int_equal(__exec(f->c, f->q, CMD_VA, &s, 1), 0);
	struct waker wk = {.c = f->c, .g = &g};
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, wake_when_waiting, &wk), 0);
	assert_int_equal(__ufence_wait_q(f->c, f->q, never, 1, 10 * SEC), -EIO);
	pthread_join(t, NULL);
	struct vmb_exec_queue_query qq = {.exec_queue_id = f->q};
	assert_int_equal(vmb_exec_queue_query(f->c, &qq), 0);
	assert_int_equal(qq.flags, VMB_EXEC_QUEUE_BANNED);
	/* banned before: at once, whatever the timeout; a value that holds passes */
	assert_int_equal(__ufence_wait_q(f->c, f->q, never, 1, 0), -EIO);
	assert_int_equal(__ufence_wait_q(f->c, f->q, never, 1, -1), -EIO);
	assert_int_equal(__ufence_wait_q(f->c, f->q, never, 0, 0), 0);

	/* a job's out user fence on another queue: passes, not tied to the banned one */
	uint32_t q2 = exec_queue_new(f->c, f->vm, VMB_ENGINE_CLASS_COPY, 0);
	n = 64;
	vmb_cmd_end(f->cmd, &n);
	struct vmb_sync u = sync_ufence(done, 3);
	assert_int_equal(__exec(f->c, q2, CMD_VA + 64 * 8, &u, 1), 0);
	assert_int_equal(__ufence_wait_q(f->c, q2, done, 3, 10 * SEC), 0);

	/* destroyed while the wait sleeps: the wait holds the queue it looked up, which is killed */
	wk = (struct waker){.c = f->c, .destroy_q = q2};
	assert_int_equal(pthread_create(&t, NULL, wake_when_waiting, &wk), 0);
	assert_int_equal(__ufence_wait_q(f->c, q2, never, 1, 10 * SEC), -EIO);
	pthread_join(t, NULL);
	assert_int_equal(__ufence_wait_q(f->c, q2, never, 1, 0), -ENOENT);
	free(never);
	free(done);
}

/*
 * A CPU mapping keeps its BO (as a DRM mmap outlives GEM_CLOSE): a BO bound in the vm and mapped,
 * its handle destroyed, is still written by the GPU and read through the mapping, after its
 * unbind too; vmb_bo_munmap with handle 0 and the pointer releases it (a second time, or an
 * unknown pointer: -EINVAL); one left mapped goes with the client (teardown; ASan: no leak).
 */
static void test_cpu_map_keeps_bo_for_gpu_writes(void **state)
{
	struct fixture *f = *state;
	uint64_t va = 3ull << 32;
	uint32_t kept[2];
	uint64_t *p[2];
	for (int i = 0; i < 2; i++) {
		kept[i] = bo_new(f->c, G(64 * KiB), place_cpu(f->c));
		p[i] = bo_cpu(f->c, kept[i]);
		bind1(f->c, f->vm, op_map(kept[i], 0, va + (uint64_t)i * G(64 * KiB), G(64 * KiB), 0));
		struct vmb_bo_destroy d = {.handle = kept[i]};
		assert_int_equal(vmb_bo_destroy(f->c, &d), 0);
	}
	uint32_t n = 0;
	vmb_cmd_store64(f->cmd, &n, va + 8, 0x1234);
	vmb_cmd_fill(f->cmd, &n, va + G(64 * KiB), G(64 * KiB), 0x5a5a5a5a);
	vmb_cmd_end(f->cmd, &n);
	assert_int_equal(run(f, f->q, 0), 0);
	assert_int_equal(load64(&p[0][1]), 0x1234);
	assert_int_equal(load64(&p[1][G(64 * KiB) / 8 - 1]), 0x5a5a5a5a5a5a5a5aull);
	bind1(f->c, f->vm, op_unmap(va, 2 * G(64 * KiB)));
	assert_int_equal(load64(&p[0][1]), 0x1234);
	struct vmb_bo_munmap u = {.ptr = (uint64_t)(uintptr_t)p[0]};
	assert_int_equal(vmb_bo_munmap(f->c, &u), 0);
	assert_int_equal(vmb_bo_munmap(f->c, &u), -EINVAL);
	u.ptr = (uint64_t)(uintptr_t)f->cmd + 8;
	assert_int_equal(vmb_bo_munmap(f->c, &u), -EINVAL);
	u.ptr = (uint64_t)(uintptr_t)&u;
	assert_int_equal(vmb_bo_munmap(f->c, &u), -EINVAL);
	/* p[1] stays mapped: the client's close unmaps it and frees the BO */
}

/* Closing the client while a job runs: the job's release (on the engine thread) drops the last
 * reference on the vm, which puts that vm's BOs; the client's own puts must not race with it
 * (ThreadSanitizer saw both write a BO's refcount once the close put BOs without the lock). */
static void test_close_with_running_job(void **state)
{
	struct fixture *f = *state;
	uint32_t n = 0;
	vmb_cmd_delay(f->cmd, &n, 10ull * SEC);
	vmb_cmd_end(f->cmd, &n);
	uint32_t so = syncobj_new(f->c, 0);
	struct vmb_sync s = sync_out(so);
	assert_int_equal(__exec(f->c, f->q, CMD_VA, &s, 1), 0);
	usleep(20000); /* running on its engine */
	validate_client(f->c);
	assert_int_equal(vmb_client_close(f->c), 0);
	free(f);
}

/* Closing the client just after a job's fence let a bind run: the engine thread that finished
 * the job was still signalling (making the dependent unbind ready wakes a scheduler worker)
 * when the close stopped the scheduler and destroyed its condition variable; the engines were
 * stopped only after it (ThreadSanitizer: pthread_cond_signal racing pthread_cond_destroy,
 * about one run in two with one iteration). Teardown stops the engines first. */
static void test_close_while_job_finishes(void **state)
{
	(void)state;
	for (int i = 0; i < 40; i++) {
		struct fixture g = {.c = open_soft(64 * MiB, 16 * MiB)};
		gran = granule_of(g.c);
		g.vm = vm_new(g.c, 0);
		g.cmd_bo = bo_new(g.c, CMD_SIZE, place_cpu(g.c));
		g.data_bo = bo_new(g.c, DATA_SIZE, place_cpu(g.c));
		g.cmd = bo_cpu(g.c, g.cmd_bo);
		map_fixture(&g, g.vm);
		uint32_t q = exec_queue_new(g.c, g.vm, VMB_ENGINE_CLASS_COMPUTE, (uint16_t)(i & 1));
		uint32_t n = 0;
		vmb_cmd_store64(g.cmd, &n, DATA_VA, (uint64_t)i);
		vmb_cmd_end(g.cmd, &n);
		uint32_t exec_done = syncobj_new(g.c, 0), unbound = syncobj_new(g.c, 0);
		struct vmb_sync es = sync_out(exec_done);
		assert_int_equal(__exec(g.c, q, CMD_VA, &es, 1), 0);
		struct vmb_bind_op op = op_unmap(DATA_VA, DATA_SIZE);
		struct vmb_sync us[2] = {sync_in(exec_done), sync_out(unbound)};
		bind_async(g.c, g.vm, 0, &op, 1, us, 2);
		syncobj_wait1(g.c, unbound);
		assert_int_equal(vmb_client_close(g.c), 0); /* at once: the engine may still be signalling */
	}
}

/*
 * Run-here scopes against teardown and order (sched.h, "Run-here scopes"): a bind queue's four
 * binds (map, unmap, map, unmap of one range) wait for an exec, so the engine's thread that ends
 * the exec claims the first for its scope and a queue's later ones follow on whoever signals
 * their predecessor; each writes its own word and one shared word of a fence BO's CPU map (the
 * user fences of sync.c's CPU-map path), and a bind on the default queue waits for the last.
 * Right after the exec is released: nothing, vmb_vm_destroy, vmb_bind_queue_destroy or
 * vmb_client_close, in turns. Every fence signals (10 s: a hang), the shared word ends at the
 * last bind's value (a later bind of the queue never ran before an earlier), nothing is used
 * after it is freed (ASan, TSan); the close returns.
 */
static void test_here_order_with_teardown(void **state)
{
	(void)state;
	for (int i = 0; i < 32; i++) {
		int variant = i % 4;
		struct fixture g = {.c = open_soft(64 * MiB, 16 * MiB)};
		gran = granule_of(g.c);
		g.vm = vm_new(g.c, 0);
		g.cmd_bo = bo_new(g.c, CMD_SIZE, place_cpu(g.c));
		g.data_bo = bo_new(g.c, DATA_SIZE, place_cpu(g.c));
		g.cmd = bo_cpu(g.c, g.cmd_bo);
		g.data = bo_cpu(g.c, g.data_bo);
		map_fixture(&g, g.vm);
		uint32_t q = exec_queue_new(g.c, g.vm, VMB_ENGINE_CLASS_COMPUTE, (uint16_t)(i & 1));
		uint32_t bq = queue_new(g.c, g.vm), fbo = bo_new(g.c, G(64 * KiB), place_cpu(g.c));
		uint32_t bo = bo_new(g.c, G(64 * KiB), VMB_PLACE_VRAM);
		uint64_t *p = bo_cpu(g.c, fbo), buf = 9ull << 32;
		uint32_t n = 0;
		vmb_cmd_sem_wait(g.cmd, &n, DATA_VA + 16, VMB_UFENCE_OP_EQ, 1, ~0ull);
		vmb_cmd_store64(g.cmd, &n, DATA_VA + 8, (uint64_t)i);
		vmb_cmd_end(g.cmd, &n);
		uint32_t exec_done = syncobj_new(g.c, 0), last = syncobj_new(g.c, 0), after = syncobj_new(g.c, 0);
		struct vmb_sync es = sync_out(exec_done);
		assert_int_equal(__exec(g.c, q, CMD_VA, &es, 1), 0);
		for (uint64_t k = 1; k <= 4; k++) {
			struct vmb_bind_op op = k & 1 ? op_map(bo, 0, buf, G(64 * KiB), 0) : op_unmap(buf, G(64 * KiB));
			struct vmb_sync s[4] = {sync_ufence(&p[0], k), sync_ufence(&p[k], k), sync_in(exec_done),
						sync_out(last)};
			bind_async(g.c, g.vm, bq, &op, 1, s, k == 1 ? 3 : k == 4 ? 4 : 2);
		}
		struct vmb_bind_op nop = op_null(buf + G(64 * KiB), G(64 * KiB));
		struct vmb_sync as[2] = {sync_in(last), sync_out(after)};
		bind_async(g.c, g.vm, 0, &nop, 1, as, 2);
		__atomic_store_n((uint64_t *)(g.data + 16), 1, __ATOMIC_RELEASE); /* the exec may end */
		if (variant == 3) {
			assert_int_equal(vmb_client_close(g.c), 0); /* at once: jobs claimed or not yet */
			continue;
		}
		if (variant == 1) {
			struct vmb_vm_destroy d = {.vm_id = g.vm};
			assert_int_equal(vmb_vm_destroy(g.c, &d), 0);
		} else if (variant == 2) {
			struct vmb_bind_queue_destroy d = {.vm_id = g.vm, .queue_id = bq};
			assert_int_equal(vmb_bind_queue_destroy(g.c, &d), 0);
		}
		syncobj_wait1(g.c, exec_done);
		syncobj_wait1(g.c, last); /* -ECANCELED after vmb_vm_destroy */
		syncobj_wait1(g.c, after);
		for (uint64_t k = 1; k <= 4; k++)
			ufence_wait(g.c, &p[k], k);
		if (__atomic_load_n(&p[0], __ATOMIC_ACQUIRE) != 4)
			fail_msg("iteration %d (variant %d): the shared fence word ends at %llu, not the last bind's 4", i,
				 variant, (unsigned long long)p[0]);
		if (variant != 1) {
			assert_int_equal(syncobj_error(g.c, last), 0);
			uint64_t v;
			assert_int_equal(__gpu_rw(g.c, g.vm, buf, &v, 8, false), -EFAULT); /* the last unmap */
		}
		validate_client(g.c);
		assert_int_equal(vmb_client_close(g.c), 0);
	}
}

static unsigned int threads_now(void)
{
	DIR *d = opendir("/proc/self/task");
	assert_non_null(d);
	unsigned int n = 0;
	for (struct dirent *e; (e = readdir(d));)
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

/*
 * A job that reaches a DELAY before its first slice could end needs its engine's thread anyway:
 * handed to an idle engine by a call in a kick scope, it is not kept for the scope's kick (which
 * would run its first commands on the calling thread and then wake the engine's thread all the
 * same): the engine's thread runs it while the scope is still open. A job without one is kept
 * for the kick, as before (dev/soft/engine.h, "Starting without a wake-up"). Before: the DELAY
 * job waited for the scope's end like the other (the store not done after 10 s).
 */
static void test_delay_job_not_kept_for_kick(void **state)
{
	struct fixture *f = *state;
	uint32_t n = 0;
	vmb_cmd_store64(f->cmd, &n, DATA_VA + 8, 1);
	vmb_cmd_end(f->cmd, &n);
	uint32_t at = n;
	vmb_cmd_store64(f->cmd, &n, DATA_VA + 16, 2);
	vmb_cmd_delay(f->cmd, &n, 1 * MS);
	vmb_cmd_end(f->cmd, &n);
	uint32_t a = syncobj_new(f->c, 0), b = syncobj_new(f->c, 0);
	struct vmb_sync sa = sync_out(a), sb = sync_out(b);
	vmb_sched_kick_begin();
	assert_int_equal(__exec(f->c, f->q, CMD_VA, &sa, 1), 0);
	/* kept for the scope's kick: the engine is the scope's, nobody runs the store meanwhile */
	assert_int_equal(data64(f, 8), 0);
	vmb_sched_kick_end();
	assert_int_equal(data64(f, 8), 1); /* the kick ran it at the scope's end */
	syncobj_wait1(f->c, a);
	vmb_sched_kick_begin();
	assert_int_equal(__exec(f->c, f->q, CMD_VA + at * 8ull, &sb, 1), 0);
	int64_t end = vmb_now_ns() + 10 * SEC; /* a hang, not a timing */
	while (data64(f, 16) != 2 && vmb_now_ns() < end)
		sched_yield();
	uint64_t v = data64(f, 16);
	vmb_sched_kick_end();
	if (v != 2)
		fail_msg("the DELAY job was kept for the call's kick: the engine's thread did not run it");
	syncobj_wait1(f->c, b);
}

/* An engine's thread starts with the first exec queue on it, once, and stops with the client. */
static void test_engine_threads_start_on_demand(void **state)
{
	(void)state;
	unsigned int before = threads_now();
	struct vmb_client *c = open_soft(64 * MiB, 64 * MiB);
	unsigned int opened = threads_now();
	assert_true(opened > before); /* the scheduler's workers */
	uint32_t vm = vm_new(c, 0);
	assert_int_equal(threads_now(), opened);
	uint32_t q1 = exec_queue_new(c, vm, VMB_ENGINE_CLASS_COMPUTE, 0);
	assert_int_equal(threads_now(), opened + 1);
	uint32_t q2 = exec_queue_new(c, vm, VMB_ENGINE_CLASS_COMPUTE, 0);
	assert_int_equal(threads_now(), opened + 1); /* the same engine */
	struct vmb_exec_queue_destroy d = {.exec_queue_id = q1};
	assert_int_equal(vmb_exec_queue_destroy(c, &d), 0);
	d.exec_queue_id = q2;
	assert_int_equal(vmb_exec_queue_destroy(c, &d), 0);
	assert_int_equal(threads_now(), opened + 1); /* it stays until the client closes */
	/* a failed create on a missing engine starts nothing */
	struct vmb_exec_queue_create a = {.vm_id = vm, .engine = {.engine_class = VMB_ENGINE_CLASS_COPY, .engine_instance = 7}};
	assert_int_equal(vmb_exec_queue_create(c, &a), -EINVAL);
	a.vm_id = vm + 100;
	a.engine.engine_instance = 0;
	assert_int_equal(vmb_exec_queue_create(c, &a), -ENOENT);
	assert_int_equal(threads_now(), opened + 1);
	exec_queue_new(c, vm, VMB_ENGINE_CLASS_COPY, 0);
	assert_int_equal(threads_now(), opened + 2);
	validate_client(c);
	assert_int_equal(vmb_client_close(c), 0);
	assert_int_equal(threads_now(), before);
}

/* ---- the vm's fault log (vmb_vm_query_faults) ---- */

/* The log of @vm into @out (room for @cap), its count returned; *@dropped (may be NULL). */
static uint32_t faults_of(struct vmb_client *c, uint32_t vm, struct vmb_vm_fault *out, uint32_t cap,
			  uint64_t *dropped)
{
	struct vmb_vm_query_faults q = {.vm_id = vm, .num_faults = cap, .faults = (uint64_t)(uintptr_t)out};
	assert_int_equal(vmb_vm_query_faults(c, &q), 0);
	if (dropped)
		*dropped = q.dropped;
	return q.num_faults;
}

static void exec_queue_destroy1(struct vmb_client *c, uint32_t q)
{
	struct vmb_exec_queue_destroy d = {.exec_queue_id = q};
	assert_int_equal(vmb_exec_queue_destroy(c, &d), 0);
}

/* Every errno of the entry point: flags, pad, reserved (-EINVAL), an unknown vm (-ENOENT), an
 * array 0 with room (-EFAULT, even with nothing to write); a new vm's log is empty. */
static void test_fault_log_errnos(void **state)
{
	struct fixture *f = *state;
	struct vmb_vm_fault rec[2];
	struct vmb_vm_query_faults q = {.vm_id = f->vm, .flags = 1};
	assert_int_equal(vmb_vm_query_faults(f->c, &q), -EINVAL);
	q = (struct vmb_vm_query_faults){.vm_id = f->vm, .pad = 1};
	assert_int_equal(vmb_vm_query_faults(f->c, &q), -EINVAL);
	q = (struct vmb_vm_query_faults){.vm_id = f->vm, .reserved[1] = 1};
	assert_int_equal(vmb_vm_query_faults(f->c, &q), -EINVAL);
	q = (struct vmb_vm_query_faults){.vm_id = f->vm + 100};
	assert_int_equal(vmb_vm_query_faults(f->c, &q), -ENOENT);
	q = (struct vmb_vm_query_faults){.vm_id = f->vm, .num_faults = 1};
	assert_int_equal(vmb_vm_query_faults(f->c, &q), -EFAULT);
	q = (struct vmb_vm_query_faults){.vm_id = f->vm, .num_faults = 2, .faults = (uint64_t)(uintptr_t)rec,
					 .dropped = 7};
	assert_int_equal(vmb_vm_query_faults(f->c, &q), 0);
	assert_int_equal(q.num_faults, 0);
	assert_int_equal(q.dropped, 0);
	/* a clean job records nothing */
	uint32_t n = 0;
	vmb_cmd_store64(f->cmd, &n, DATA_VA, 1);
	vmb_cmd_end(f->cmd, &n);
	assert_int_equal(run(f, f->q, 0), 0);
	assert_int_equal(faults_of(f->c, f->vm, rec, 2, NULL), 0);
}

/*
 * Faults of jobs go in the vm's log, oldest first, with what faulted: a write where nothing is
 * mapped at all (no root entry: level 3), a read past the data BO (no entry at level 1), an
 * atomic on the READONLY command BO (WRITE_ACCESS at its leaf), the queue that ran each. A job
 * cancelled behind a fault and a malformed command record nothing. Partial reads give the
 * oldest; the log outlives the queues, and goes with the vm.
 */
static void test_fault_log_records(void **state)
{
	struct fixture *f = *state;
	const uint64_t far = 7ull << 40; /* 7 TiB: root entry 14, nothing there */
	uint32_t n = 0;
	vmb_cmd_store64(f->cmd, &n, far + 24, 1);
	vmb_cmd_end(f->cmd, &n);
	n = 64;
	vmb_cmd_copy(f->cmd, &n, DATA_VA, DATA_VA + DATA_SIZE + 4096 + 8, 8);
	vmb_cmd_end(f->cmd, &n);
	n = 128;
	vmb_cmd_atomic_add(f->cmd, &n, CMD_VA + 4096 + 16, 1);
	vmb_cmd_end(f->cmd, &n);
	n = 192;
	vmb_cmd_emit(f->cmd, &n, 0x77); /* malformed */
	uint32_t q1 = f->q;
	uint32_t q2 = exec_queue_new(f->c, f->vm, VMB_ENGINE_CLASS_COMPUTE, 1);
	uint32_t q3 = exec_queue_new(f->c, f->vm, VMB_ENGINE_CLASS_COPY, 0);
	uint32_t q4 = exec_queue_new(f->c, f->vm, VMB_ENGINE_CLASS_COMPUTE, 0);
	/* q1: the fault, and a second faulting job queued behind it (cancelled, never runs) */
	struct gate g = gate_new(f->c);
	uint32_t d1 = syncobj_new(f->c, 0), d2 = syncobj_new(f->c, 0);
	struct vmb_sync s1[2] = {sync_in(g.h), sync_out(d1)}, s2 = sync_out(d2);
	assert_int_equal(__exec(f->c, q1, CMD_VA, s1, 2), 0);
	assert_int_equal(__exec(f->c, q1, CMD_VA + 64 * 8, &s2, 1), 0);
	gate_open(&g);
	syncobj_wait1(f->c, d1);
	syncobj_wait1(f->c, d2);
	assert_int_equal(run(f, q2, 64), -EFAULT);
	assert_int_equal(run(f, q3, 128), -EFAULT);
	assert_int_equal(run(f, q4, 192), -EINVAL);

	struct vmb_vm_fault rec[8];
	memset(rec, 0xee, sizeof(rec));
	uint64_t dropped = 1;
	assert_int_equal(faults_of(f->c, f->vm, rec, 0, &dropped), 3); /* count only */
	assert_int_equal(dropped, 0);
	assert_int_equal(faults_of(f->c, f->vm, rec, 2, NULL), 3);     /* the oldest two */
	assert_int_equal(rec[0].addr, far + 24);
	assert_int_equal(rec[1].addr, DATA_VA + DATA_SIZE + 4096 + 8);
	assert_int_equal(rec[2].addr, 0xeeeeeeeeeeeeeeeeull);            /* not written */
	assert_int_equal(faults_of(f->c, f->vm, rec, 8, NULL), 3);
	assert_int_equal(rec[0].addr, far + 24);
	assert_int_equal(rec[0].exec_queue_id, q1);
	assert_int_equal(rec[0].access, VMB_FAULT_WRITE);
	assert_int_equal(rec[0].type, VMB_FAULT_TYPE_NOT_PRESENT);
	assert_int_equal(rec[0].level, 3);
	assert_int_equal(rec[1].exec_queue_id, q2);
	assert_int_equal(rec[1].access, VMB_FAULT_READ);
	assert_int_equal(rec[1].type, VMB_FAULT_TYPE_NOT_PRESENT);
	assert_int_equal(rec[1].level, 1);
	assert_int_equal(rec[2].addr, CMD_VA + 4096 + 16);
	assert_int_equal(rec[2].exec_queue_id, q3);
	assert_int_equal(rec[2].access, VMB_FAULT_ATOMIC);
	assert_int_equal(rec[2].type, VMB_FAULT_TYPE_WRITE_ACCESS);
	assert_true(rec[2].level <= 1); /* the command BO's leaf: 4K/64K, or 2M on the discrete shape */
	for (int i = 0; i < 3; i++) {
		assert_int_equal(rec[i].pad, 0);
		assert_int_equal(rec[i].reserved, 0);
	}
	assert_int_equal(rec[3].addr, 0xeeeeeeeeeeeeeeeeull);
	/* the queue's own report agrees: an atomic is a write there */
	struct vmb_exec_queue_query qq = {.exec_queue_id = q3};
	assert_int_equal(vmb_exec_queue_query(f->c, &qq), 0);
	assert_int_equal(qq.fault_access, VMB_FAULT_WRITE);

	/* the queues go, the log stays */
	exec_queue_destroy1(f->c, q2);
	exec_queue_destroy1(f->c, q3);
	exec_queue_destroy1(f->c, q4);
	assert_int_equal(faults_of(f->c, f->vm, rec, 8, NULL), 3);
	assert_int_equal(rec[1].exec_queue_id, q2);
	/* another vm's log is its own */
	uint32_t vm2 = vm_new(f->c, 0);
	assert_int_equal(faults_of(f->c, vm2, rec, 8, NULL), 0);
	/* the vm goes (q1 still holds it): its log with it */
	vm_destroy1(f->c, f->vm);
	struct vmb_vm_query_faults q = {.vm_id = f->vm};
	assert_int_equal(vmb_vm_query_faults(f->c, &q), -ENOENT);
	vm_destroy1(f->c, vm2);
}

/* The log keeps the first VMB_VM_MAX_FAULTS faults and counts the rest as dropped. */
static void test_fault_log_cap(void **state)
{
	struct fixture *f = *state;
	const uint64_t far = 7ull << 40;
	const uint32_t jobs = VMB_VM_MAX_FAULTS + 5;
	for (uint32_t i = 0; i < jobs; i++) {
		uint32_t n = 64 * (i % 8);
		vmb_cmd_store32(f->cmd, &n, far + 4 * i, 1);
		vmb_cmd_end(f->cmd, &n);
		uint32_t q = exec_queue_new(f->c, f->vm, VMB_ENGINE_CLASS_COMPUTE, 0);
		assert_int_equal(run(f, q, 64 * (i % 8)), -EFAULT);
		exec_queue_destroy1(f->c, q);
	}
	static struct vmb_vm_fault rec[VMB_VM_MAX_FAULTS + 8];
	uint64_t dropped = 0;
	assert_int_equal(faults_of(f->c, f->vm, rec, VMB_VM_MAX_FAULTS + 8, &dropped), VMB_VM_MAX_FAULTS);
	assert_int_equal(dropped, 5);
	for (uint32_t i = 0; i < VMB_VM_MAX_FAULTS; i++) {
		assert_int_equal(rec[i].addr, far + 4 * i);
		assert_int_equal(rec[i].access, VMB_FAULT_WRITE);
	}
}

/*
 * The log attacked while it fills (s16-attack4): FL_T threads each run FL_J faulting jobs (a
 * fresh exec queue each: a fault bans its queue), every job a store to its own address, while the
 * main thread queries the log in a loop. Each snapshot: at most VMB_VM_MAX_FAULTS records, the
 * count never going down, what an earlier snapshot held never changing (oldest first, nothing
 * dropped below the cap), dropped 0 until the log is full. At the end: the cap kept, every other fault dropped, each kept record a
 * distinct job's address.
 */
#define FL_T 4
#define FL_J 20
#define FL_FAR (7ull << 40)

struct fl_thread {
	struct vmb_client *c;
	uint32_t vm;
	int t, err;
	atomic_bool *done;
};

static void *fl_run(void *arg)
{
	struct fl_thread *p = arg;
	for (int j = 0; j < FL_J && !p->err; j++) {
		uint32_t at = 64u * (uint32_t)(p->t * FL_J + j);
		struct vmb_exec_queue_create a = {.vm_id = p->vm, .engine = {.engine_class = VMB_ENGINE_CLASS_COMPUTE}};
		if ((p->err = vmb_exec_queue_create(p->c, &a)))
			break;
		struct vmb_syncobj_create sc = {.flags = 0};
		if ((p->err = vmb_syncobj_create(p->c, &sc)))
			break;
		struct vmb_sync s = sync_out(sc.handle);
		p->err = __exec(p->c, a.exec_queue_id, CMD_VA + at * 8ull, &s, 1);
		if (!p->err)
			p->err = __syncobj_wait1(p->c, sc.handle, 0, 10ll * 1000000000, 0);
		struct vmb_exec_queue_query qq = {.exec_queue_id = a.exec_queue_id};
		if (!p->err && !(p->err = vmb_exec_queue_query(p->c, &qq)) && qq.error != -EFAULT)
			p->err = 1000 + qq.error; /* the job must have faulted */
		struct vmb_exec_queue_destroy d = {.exec_queue_id = a.exec_queue_id};
		if (!p->err)
			p->err = vmb_exec_queue_destroy(p->c, &d);
		struct vmb_syncobj_destroy sd = {.handle = sc.handle};
		if (!p->err)
			p->err = vmb_syncobj_destroy(p->c, &sd);
	}
	atomic_store(p->done, true);
	return NULL;
}

static void test_fault_log_concurrent(void **state)
{
	struct fixture *f = *state;
	for (uint32_t k = 0; k < FL_T * FL_J; k++) {
		uint32_t n = 64 * k;
		vmb_cmd_store32(f->cmd, &n, FL_FAR + 8ull * k, (uint32_t)k);
		vmb_cmd_end(f->cmd, &n);
	}
	const size_t one = sizeof(struct vmb_vm_fault);

	static struct fl_thread p[FL_T];
	static atomic_bool done[FL_T];
	pthread_t th[FL_T];
	for (int t = 0; t < FL_T; t++) {
		atomic_init(&done[t], false);
		p[t] = (struct fl_thread){.c = f->c, .vm = f->vm, .t = t, .done = &done[t]};
		assert_int_equal(pthread_create(&th[t], NULL, fl_run, &p[t]), 0);
	}
	static struct vmb_vm_fault seen[VMB_VM_MAX_FAULTS], cur[VMB_VM_MAX_FAULTS];
	uint32_t nseen = 0;
	uint64_t queries = 0;
	for (bool all = false; !all; queries++) {
		all = true;
		for (int t = 0; t < FL_T; t++)
			all &= atomic_load(&done[t]);
		uint64_t dropped = 0;
		uint32_t n = faults_of(f->c, f->vm, cur, VMB_VM_MAX_FAULTS, &dropped);
		assert_true(n <= VMB_VM_MAX_FAULTS);
		assert_true(n >= nseen);
		if (n < VMB_VM_MAX_FAULTS)
			assert_int_equal(dropped, 0);
		assert_memory_equal(cur, seen, nseen * one);
		memcpy(seen, cur, n * one);
		nseen = n;
	}
	for (int t = 0; t < FL_T; t++) {
		pthread_join(th[t], NULL);
		assert_int_equal(p[t].err, 0);
	}
	uint64_t dropped = 0;
	assert_int_equal(faults_of(f->c, f->vm, cur, VMB_VM_MAX_FAULTS, &dropped), VMB_VM_MAX_FAULTS);
	assert_int_equal(dropped, FL_T * FL_J - VMB_VM_MAX_FAULTS);
	assert_memory_equal(cur, seen, nseen * one);
	static bool hit[FL_T * FL_J];
	memset(hit, 0, sizeof(hit));
	for (uint32_t i = 0; i < VMB_VM_MAX_FAULTS; i++) {
		assert_true(cur[i].addr >= FL_FAR && cur[i].addr < FL_FAR + 8ull * FL_T * FL_J);
		uint64_t k = (cur[i].addr - FL_FAR) / 8;
		assert_int_equal(cur[i].addr, FL_FAR + 8 * k);
		assert_false(hit[k]);
		hit[k] = true;
		assert_int_equal(cur[i].access, VMB_FAULT_WRITE);
		assert_int_equal(cur[i].type, VMB_FAULT_TYPE_NOT_PRESENT);
	}
	print_message("fault log: %llu queries while it filled\n", (unsigned long long)queries);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_commands, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fault_log_errnos, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fault_log_records, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fault_log_cap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fault_log_concurrent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_idle_engine_runs_exec_in_call, setup, teardown),
		cmocka_unit_test_setup_teardown(test_vram_data, setup, teardown),
		cmocka_unit_test_setup_teardown(test_exec_once_twice_many, setup, teardown),
		cmocka_unit_test_setup_teardown(test_many_queues_many_vms, setup, teardown),
		cmocka_unit_test_setup_teardown(test_null_mapping, setup, teardown),
		cmocka_unit_test_setup_teardown(test_invalid_va, setup, teardown),
		cmocka_unit_test_setup_teardown(test_two_faulting_jobs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_readonly_and_malformed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sem_wait_every_op, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sem_wait_on_bind_ufence, setup, teardown),
		cmocka_unit_test(test_job_timeout),
		cmocka_unit_test_setup_teardown(test_fill_copy_across_slices, setup, teardown),
		cmocka_unit_test(test_long_fill_and_copy_time_out),
		cmocka_unit_test(test_long_fill_of_null_mapping_times_out),
		cmocka_unit_test(test_long_fill_leaves_device_usable_and_stops),
		cmocka_unit_test_setup_teardown(test_lr_semaphore_on_bind_fence, setup_lr, teardown),
		cmocka_unit_test_setup_teardown(test_exec_waits_for_bind, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unbind_after_exec, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unbind_after_exec_runs_on_engine, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bind_after_bind_runs_on_worker, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unbind_after_exec_runs_in_engine_delay, setup, teardown),
		cmocka_unit_test_setup_teardown(test_engine_free_while_its_thread_binds, setup, teardown),
		cmocka_unit_test_setup_teardown(test_end_after_delay_needs_no_lock, setup, teardown),
		cmocka_unit_test_setup_teardown(test_slices_run_while_vm_lock_held, setup, teardown),
		cmocka_unit_test_setup_teardown(test_exec_call_does_not_wait_for_vm_lock, setup, teardown),
		cmocka_unit_test_setup_teardown(test_exec_call_does_not_wait_for_a_commit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_vm_destroyed_while_engine_holds_its_unbind, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rebind_between_execs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_threads_bind_and_exec, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_args, setup, teardown),
		cmocka_unit_test_setup_teardown(test_destroy_queue_with_jobs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_destroy_queue_writes_waiting_jobs_ufences, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ufence_wait_on_banned_queue, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cpu_map_keeps_bo_for_gpu_writes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fault_record_visible_with_out_syncs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_trace, setup, teardown),
		cmocka_unit_test_setup_teardown(test_trace_from_start, setup, teardown),
		cmocka_unit_test_setup_teardown(test_trace_labels_per_client, setup, teardown),
		cmocka_unit_test_setup(test_close_with_running_job, setup),
		cmocka_unit_test(test_close_while_job_finishes),
		cmocka_unit_test(test_here_order_with_teardown),
		cmocka_unit_test(test_engine_threads_start_on_demand),
		cmocka_unit_test_setup_teardown(test_delay_job_not_kept_for_kick, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
