/* SPDX-License-Identifier: MIT */
/*
 * Description: exec queues with the Intel command set (VMB_EXEC_QUEUE_CMDSET_INTEL; vmbind/cmd.h,
 * docs/COMMANDS.md) on hand-written batches, as IGT's Xe tests write them: store dword and
 * qword (and IGT's xe_exec_basic batch), canonical addresses (the high half of the VA space
 * written sign-extended, in operands and as the exec's address), a batch at a 4-byte aligned
 * address, a jump forward and a loop, IGT's spinner (ARB_CHECK, a conditional end on a dword the
 * CPU writes, a jump back) ended by a CPU write without holding up another queue of its engine,
 * the vm's binds or the CPU API, and ended by the job timeout or the queue's destruction when
 * the CPU never writes; the conditional end and the polling semaphore wait with every compare
 * op; every malformed command (-EINVAL, the queue banned, later execs -ECANCELED) and faults
 * (-EFAULT, the fault's address); the exec queue's flags and the exec address rules.
 */
#include "lib/harness.h"

#include <pthread.h>
#include <sched.h>

#include "sync/fence.h" /* vmb_now_ns */

#define SEC 1000000000ll

#define CMD_VA (1ull << 32)   /* command buffers */
#define DATA_VA (2ull << 32)  /* the data BO */
#define HIGH_VA (1ull << 47)  /* the data BO again, in the high half: canonical 0xffff8000... */
static uint64_t gran = 4096;
#define G(x) (((x) + gran - 1) / gran * gran)
#define CMD_SIZE G(64 * KiB)
#define DATA_SIZE G(64 * KiB)

struct fixture {
	struct vmb_client *c;
	uint32_t vm, cmd_bo, data_bo, q;
	uint32_t *cmd;          /* CPU view of the command BO, in dwords */
	volatile uint32_t *data; /* CPU view of the data BO */
};

static uint32_t intel_queue(struct vmb_client *c, uint32_t vm, uint16_t cls, uint16_t inst)
{
	struct vmb_exec_queue_create a = {.vm_id = vm, .flags = VMB_EXEC_QUEUE_CMDSET_INTEL,
					  .engine = {.engine_class = cls, .engine_instance = inst}};
	assert_int_equal(vmb_exec_queue_create(c, &a), 0);
	assert_int_not_equal(a.exec_queue_id, 0);
	return a.exec_queue_id;
}

static struct fixture *fixture_new(uint32_t vm_flags, uint32_t timeout_ms)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct vmb_client_opts o = {.vram_size = 64 * MiB, .system_size = 64 * MiB, .job_timeout_ms = timeout_ms};
	assert_int_equal(vmb_client_open("soft", &o, &f->c), 0);
	gran = granule_of(f->c);
	f->vm = vm_new(f->c, vm_flags);
	f->cmd_bo = bo_new(f->c, CMD_SIZE, place_cpu(f->c));
	f->data_bo = bo_new(f->c, DATA_SIZE, place_cpu(f->c));
	f->cmd = bo_cpu(f->c, f->cmd_bo);
	f->data = bo_cpu(f->c, f->data_bo);
	bind1(f->c, f->vm, op_map(f->cmd_bo, 0, CMD_VA, CMD_SIZE, VMB_BIND_FLAG_READONLY));
	bind1(f->c, f->vm, op_map(f->data_bo, 0, DATA_VA, DATA_SIZE, 0));
	bind1(f->c, f->vm, op_map(f->data_bo, 0, HIGH_VA, DATA_SIZE, 0));
	f->q = intel_queue(f->c, f->vm, VMB_ENGINE_CLASS_COMPUTE, 0);
	return f;
}

static int setup(void **state)
{
	*state = fixture_new(0, 0);
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	validate_client(f->c);
	assert_int_equal(vmb_client_close(f->c), 0);
	free(f);
	return 0;
}

/* Batch writers: append at dword *n of the command BO. */
static void emit(struct fixture *f, uint32_t *n, uint32_t w) { f->cmd[(*n)++] = w; }
static void emit_addr(struct fixture *f, uint32_t *n, uint64_t a)
{
	emit(f, n, (uint32_t)a);
	emit(f, n, (uint32_t)(a >> 32));
}
static void sdi(struct fixture *f, uint32_t *n, uint64_t addr, uint32_t v)
{
	emit(f, n, VMB_MI_STORE_DWORD_IMM);
	emit_addr(f, n, addr);
	emit(f, n, v);
}
static void sqi(struct fixture *f, uint32_t *n, uint64_t addr, uint64_t v)
{
	emit(f, n, VMB_MI_STORE_QWORD_IMM);
	emit_addr(f, n, addr);
	emit(f, n, (uint32_t)v);
	emit(f, n, (uint32_t)(v >> 32));
}
static void cond_end(struct fixture *f, uint32_t *n, uint32_t op, uint32_t data, uint64_t addr)
{
	emit(f, n, VMB_MI_COND_BATCH_BUFFER_END | op);
	emit(f, n, data);
	emit_addr(f, n, addr);
}
static void sem_wait(struct fixture *f, uint32_t *n, uint32_t op, uint32_t data, uint64_t addr)
{
	emit(f, n, VMB_MI_SEMAPHORE_WAIT | op);
	emit(f, n, data);
	emit_addr(f, n, addr);
}
static void jump(struct fixture *f, uint32_t *n, uint64_t addr)
{
	emit(f, n, VMB_MI_BATCH_BUFFER_START);
	emit_addr(f, n, addr);
}
static void end(struct fixture *f, uint32_t *n) { emit(f, n, VMB_MI_BATCH_BUFFER_END); }

/* The GPU VA of dword @at of the command BO. */
static uint64_t cmd_va(uint32_t at) { return CMD_VA + 4ull * at; }

static int __exec(struct vmb_client *c, uint32_t q, uint64_t va, struct vmb_sync *s, uint32_t ns)
{
	struct vmb_exec e = {.exec_queue_id = q, .address = va, .num_syncs = ns, .syncs = (uint64_t)(uintptr_t)s};
	return vmb_exec(c, &e);
}

static struct vmb_exec_queue_query queue_state(struct vmb_client *c, uint32_t q)
{
	struct vmb_exec_queue_query qq = {.exec_queue_id = q};
	assert_int_equal(vmb_exec_queue_query(c, &qq), 0);
	return qq;
}

/* Exec the batch at GPU VA @va on @q, wait for it; the queue's error (0, or what banned it). */
static int run_at(struct fixture *f, uint32_t q, uint64_t va)
{
	uint32_t so = syncobj_new(f->c, 0);
	struct vmb_sync s = sync_out(so);
	assert_int_equal(__exec(f->c, q, va, &s, 1), 0);
	syncobj_wait1(f->c, so);
	return queue_state(f->c, q).error;
}

static uint32_t data32(struct fixture *f, uint64_t off) { return __atomic_load_n(&f->data[off / 4], __ATOMIC_ACQUIRE); }

/* Stores of a dword and a qword, at plain and canonical addresses; the batch at an address that
 * is 4-byte but not 8-byte aligned, and IGT's xe_exec_basic batch (store dword, end). */
static void test_store(void **state)
{
	struct fixture *f = *state;
	uint32_t n = 1; /* the batch at CMD_VA + 4 */
	emit(f, &n, VMB_MI_NOOP);
	sdi(f, &n, DATA_VA + 4, 0xc0ffee);
	sqi(f, &n, DATA_VA + 8, 0x1122334455667788ull);
	sdi(f, &n, vmb_mi_canonical(HIGH_VA + 16), 0xabcd);           /* 0xffff8000 high dword */
	sqi(f, &n, vmb_mi_canonical(HIGH_VA + 24), 0x8877665544332211ull);
	sdi(f, &n, HIGH_VA + 32, 0x5555);                              /* bits 48-63 zero: accepted */
	end(f, &n);
	assert_true(vmb_mi_canonical(HIGH_VA) == 0xffff800000000000ull);
	assert_int_equal(run_at(f, f->q, cmd_va(1)), 0);
	assert_int_equal(data32(f, 4), 0xc0ffee);
	assert_int_equal(data32(f, 8), 0x55667788);
	assert_int_equal(data32(f, 12), 0x11223344);
	assert_int_equal(data32(f, 16), 0xabcd);
	assert_int_equal(data32(f, 24), 0x44332211);
	assert_int_equal(data32(f, 28), 0x88776655);
	assert_int_equal(data32(f, 32), 0x5555);
	assert_int_equal(data32(f, 0), 0);
	assert_int_equal(data32(f, 36), 0);
	/* the batch in the high half, named canonically (and not) by the exec */
	struct vmb_bind_op op = op_map(f->cmd_bo, 0, HIGH_VA + 64 * MiB, CMD_SIZE, VMB_BIND_FLAG_READONLY);
	bind1(f->c, f->vm, op);
	n = 256;
	sdi(f, &n, DATA_VA + 40, 0x40);
	end(f, &n);
	assert_int_equal(run_at(f, f->q, vmb_mi_canonical(HIGH_VA + 64 * MiB + 1024)), 0);
	assert_int_equal(data32(f, 40), 0x40);
	f->data[10] = 0;
	assert_int_equal(run_at(f, f->q, HIGH_VA + 64 * MiB + 1024), 0);
	assert_int_equal(data32(f, 40), 0x40);
	assert_int_equal(queue_state(f->c, f->q).jobs_done, 3);
}

/* A jump forward over a store that would fault, and a loop: a jump back to conditional ends on
 * flags, the first of which the loop's body clears, so the second pass ends the batch. */
static void test_jump(void **state)
{
	struct fixture *f = *state;
	uint64_t hole = 5ull << 32;
	uint32_t n = 0;
	jump(f, &n, cmd_va(16));
	sdi(f, &n, hole, 1); /* skipped */
	n = 16;
	sdi(f, &n, DATA_VA, 7);
	end(f, &n);
	assert_int_equal(run_at(f, f->q, CMD_VA), 0);
	assert_int_equal(data32(f, 0), 7);

	f->data[16] = 1;
	f->data[17] = 1;
	f->data[18] = 1;
	n = 64;
	uint32_t top = n;
	cond_end(f, &n, VMB_MI_COMPARE_GT, 0, DATA_VA + 72);
	cond_end(f, &n, VMB_MI_COMPARE_GT, 0, DATA_VA + 68);
	cond_end(f, &n, VMB_MI_COMPARE_GT, 0, DATA_VA + 64);
	sdi(f, &n, DATA_VA + 64, 0);
	sdi(f, &n, DATA_VA + 80, 0x1234); /* the first pass only */
	jump(f, &n, cmd_va(top));
	assert_int_equal(run_at(f, f->q, cmd_va(top)), 0);
	assert_int_equal(data32(f, 64), 0);
	assert_int_equal(data32(f, 68), 1);
	assert_int_equal(data32(f, 80), 0x1234);
}

/* The conditional end with every compare op: the job goes on (the marker store after it lands)
 * exactly when (memory OP data) holds. */
static void test_cond_end_every_op(void **state)
{
	struct fixture *f = *state;
	const struct {
		uint32_t op, mem, data;
		bool goes_on;
	} cases[] = {
		{VMB_MI_COMPARE_GT, 5, 4, true},   {VMB_MI_COMPARE_GT, 4, 4, false},
		{VMB_MI_COMPARE_GT, 0, 0, false},  {VMB_MI_COMPARE_GT, 0xffffffffu, 0, true},
		{VMB_MI_COMPARE_GTE, 4, 4, true},  {VMB_MI_COMPARE_GTE, 3, 4, false},
		{VMB_MI_COMPARE_LT, 3, 4, true},   {VMB_MI_COMPARE_LT, 4, 4, false},
		{VMB_MI_COMPARE_LTE, 4, 4, true},  {VMB_MI_COMPARE_LTE, 5, 4, false},
		{VMB_MI_COMPARE_EQ, 4, 4, true},   {VMB_MI_COMPARE_EQ, 5, 4, false},
		{VMB_MI_COMPARE_NEQ, 5, 4, true},  {VMB_MI_COMPARE_NEQ, 4, 4, false},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		f->data[1] = cases[i].mem;
		f->data[2] = 0;
		uint32_t n = 0;
		cond_end(f, &n, cases[i].op, cases[i].data, DATA_VA + 4);
		sdi(f, &n, DATA_VA + 8, 1);
		end(f, &n);
		assert_int_equal(run_at(f, f->q, CMD_VA), 0);
		if (data32(f, 8) != (cases[i].goes_on ? 1u : 0u))
			fail_msg("case %zu: op %u, memory %u, data %u: marker %u", i, cases[i].op >> 12, cases[i].mem,
				 cases[i].data, data32(f, 8));
	}
}

/* The polling semaphore wait: with every compare op, a job whose comparison holds passes at once;
 * one that does not waits (without holding up another queue of its engine) until the CPU
 * writes the dword. */
static void test_semaphore_wait(void **state)
{
	struct fixture *f = *state;
	const struct {
		uint32_t op, mem, data;
	} pass[] = {
		{VMB_MI_COMPARE_GT, 5, 4}, {VMB_MI_COMPARE_GTE, 4, 4}, {VMB_MI_COMPARE_LT, 3, 4},
		{VMB_MI_COMPARE_LTE, 4, 4}, {VMB_MI_COMPARE_EQ, 4, 4}, {VMB_MI_COMPARE_NEQ, 5, 4},
	};
	for (size_t i = 0; i < sizeof(pass) / sizeof(pass[0]); i++) {
		f->data[1] = pass[i].mem;
		f->data[2] = 0;
		uint32_t n = 0;
		sem_wait(f, &n, pass[i].op, pass[i].data, DATA_VA + 4);
		sdi(f, &n, DATA_VA + 8, 1);
		end(f, &n);
		assert_int_equal(run_at(f, f->q, CMD_VA), 0);
		assert_int_equal(data32(f, 8), 1);
	}
	/* waits for the CPU's write; another queue on the engine runs meanwhile */
	f->data[1] = 0;
	f->data[2] = 0;
	uint32_t n = 0;
	sem_wait(f, &n, VMB_MI_COMPARE_EQ, 9, DATA_VA + 4);
	sdi(f, &n, DATA_VA + 8, 2);
	end(f, &n);
	uint32_t so = syncobj_new(f->c, 0);
	struct vmb_sync s = sync_out(so);
	assert_int_equal(__exec(f->c, f->q, CMD_VA, &s, 1), 0);
	uint32_t other = intel_queue(f->c, f->vm, VMB_ENGINE_CLASS_COMPUTE, 0);
	n = 64;
	sdi(f, &n, DATA_VA + 12, 3);
	end(f, &n);
	assert_int_equal(run_at(f, other, cmd_va(64)), 0);
	assert_int_equal(data32(f, 12), 3);
	assert_int_equal(__syncobj_wait1(f->c, so, 0, 0, 0), -ETIME);
	assert_int_equal(data32(f, 8), 0);
	__atomic_store_n(&f->data[1], 9, __ATOMIC_RELEASE);
	syncobj_wait1(f->c, so);
	assert_int_equal(data32(f, 8), 2);
	assert_int_equal(queue_state(f->c, f->q).error, 0);
}

/*
 * IGT's spinner (lib/xe/xe_spin.c): store "started", then loop { ARB_CHECK; end the batch unless
 * the end dword is above 0; jump back }. It runs until the CPU writes 0 there; meanwhile another
 * queue of its engine, a bind on its vm and the GPU view are not held up. Without ARB_CHECK
 * (IGT_SPIN_NO_PREEMPTION) likewise, on the other compute engine.
 */
static void spinner(struct fixture *f, uint32_t at, uint64_t start, uint64_t endw, bool preempt)
{
	uint32_t n = at;
	sdi(f, &n, start, 0xc0ffee);
	uint32_t loop = n;
	if (preempt)
		emit(f, &n, VMB_MI_ARB_CHECK);
	cond_end(f, &n, VMB_MI_COMPARE_GT, 0, endw);
	jump(f, &n, vmb_mi_canonical(cmd_va(loop)));
}

static void wait_started(struct fixture *f, uint64_t off)
{
	int64_t until = vmb_now_ns() + 10 * SEC;
	while (data32(f, off) != 0xc0ffee) {
		if (vmb_now_ns() > until)
			fail_msg("the spinner did not start");
		sched_yield();
	}
}

static void test_spinner(void **state)
{
	struct fixture *f = *state;
	uint32_t q1 = intel_queue(f->c, f->vm, VMB_ENGINE_CLASS_COMPUTE, 1);
	f->data[1] = 0xffffffffu; /* end */
	f->data[3] = 0xffffffffu;
	spinner(f, 0, DATA_VA, DATA_VA + 4, true);
	spinner(f, 64, DATA_VA + 8, DATA_VA + 12, false);
	uint32_t s0 = syncobj_new(f->c, 0), s1 = syncobj_new(f->c, 0);
	struct vmb_sync o0 = sync_out(s0), o1 = sync_out(s1);
	assert_int_equal(__exec(f->c, f->q, CMD_VA, &o0, 1), 0);
	assert_int_equal(__exec(f->c, q1, cmd_va(64), &o1, 1), 0);
	wait_started(f, 0);
	wait_started(f, 8);

	/* another queue on the first spinner's engine, a bind on the vm, the GPU view */
	uint32_t other = intel_queue(f->c, f->vm, VMB_ENGINE_CLASS_COMPUTE, 0);
	uint32_t n = 128;
	sdi(f, &n, DATA_VA + 16, 0x16);
	end(f, &n);
	assert_int_equal(run_at(f, other, cmd_va(128)), 0);
	assert_int_equal(data32(f, 16), 0x16);
	bind1(f->c, f->vm, op_map(f->data_bo, 0, 3ull << 32, DATA_SIZE, 0));
	assert_int_equal(gpu_read64(f->c, f->vm, (3ull << 32) + 16), 0x16);
	assert_int_equal(__syncobj_wait1(f->c, s0, 0, 0, 0), -ETIME);
	assert_int_equal(__syncobj_wait1(f->c, s1, 0, 0, 0), -ETIME);

	__atomic_store_n(&f->data[1], 0, __ATOMIC_RELEASE);
	syncobj_wait1(f->c, s0);
	__atomic_store_n(&f->data[3], 0, __ATOMIC_RELEASE);
	syncobj_wait1(f->c, s1);
	assert_int_equal(queue_state(f->c, f->q).error, 0);
	assert_int_equal(queue_state(f->c, q1).error, 0);
	assert_int_equal(queue_state(f->c, q1).jobs_done, 1);
}

/* A spinner nobody ends: the job timeout ends it (-ETIMEDOUT, the queue banned); on an LR vm (no
 * timeout) destroying its queue does (-ECANCELED). */
static void test_spinner_timeout_and_destroy(void **state)
{
	(void)state;
	struct fixture *f = fixture_new(0, 200);
	f->data[1] = 1;
	spinner(f, 0, DATA_VA, DATA_VA + 4, true);
	assert_int_equal(run_at(f, f->q, CMD_VA), -ETIMEDOUT);
	assert_int_equal(queue_state(f->c, f->q).flags, VMB_EXEC_QUEUE_BANNED);
	assert_int_equal(__exec(f->c, f->q, CMD_VA, NULL, 0), -ECANCELED);
	validate_client(f->c);
	assert_int_equal(vmb_client_close(f->c), 0);
	free(f);

	f = fixture_new(VMB_VM_CREATE_LR_MODE, 200);
	f->data[1] = 1;
	spinner(f, 0, DATA_VA, DATA_VA + 4, false);
	uint64_t *uf = calloc(1, 8);
	assert_non_null(uf);
	struct vmb_sync s = sync_ufence(uf, 1);
	assert_int_equal(__exec(f->c, f->q, CMD_VA, &s, 1), 0);
	wait_started(f, 0);
	usleep(400 * 1000); /* past the 200 ms timeout, which LR jobs do not have */
	assert_int_equal(*(volatile uint64_t *)uf, 0);
	struct vmb_exec_queue_destroy d = {.exec_queue_id = f->q};
	assert_int_equal(vmb_exec_queue_destroy(f->c, &d), 0);
	ufence_wait(f->c, uf, 1);
	free(uf);
	validate_client(f->c);
	assert_int_equal(vmb_client_close(f->c), 0);
	free(f);
}

/* Every malformed command: -EINVAL, the queue banned (later execs -ECANCELED), the commands
 * before it done; a store and a jump to an unmapped address, a batch running into one: -EFAULT
 * with the fault's address. */
static void test_malformed_and_faults(void **state)
{
	struct fixture *f = *state;
	const struct {
		const char *what;
		uint32_t w[6];
	} bad[] = {
		{"MI_USER_INTERRUPT (not in the set)", {0x01000000u}},
		{"PIPE_CONTROL (a 3D command)", {0x7a000004u, 0, 0, 0, 0, 0}},
		{"NOOP with an id", {0x00400001u}},
		{"BATCH_BUFFER_END with length bits", {0x05000001u}},
		{"ARB_CHECK with low bits", {0x02800001u}},
		{"STORE_DWORD in the global GTT", {VMB_MI_STORE_DWORD_IMM | 1u << 22, (uint32_t)DATA_VA, 2, 1}},
		{"STORE_DWORD length 3 without the qword bit", {0x10000003u, (uint32_t)DATA_VA, 2, 1, 1}},
		{"STORE_QWORD bit with length 2", {0x10200002u, (uint32_t)DATA_VA, 2, 1}},
		{"STORE_DWORD misaligned", {VMB_MI_STORE_DWORD_IMM, (uint32_t)DATA_VA + 2, 2, 1}},
		{"STORE_QWORD misaligned", {VMB_MI_STORE_QWORD_IMM, (uint32_t)DATA_VA + 4, 2, 1, 1}},
		{"STORE_DWORD to a non-canonical address", {VMB_MI_STORE_DWORD_IMM, 0, 0x00018000u, 1}},
		{"STORE_DWORD, top bits neither 0 nor bit 47", {VMB_MI_STORE_DWORD_IMM, 0, 0xffff0000u, 1}},
		{"COND_BATCH_BUFFER_END without compare", {0x1b000002u, 0, (uint32_t)DATA_VA, 2}},
		{"COND_BATCH_BUFFER_END op 6", {VMB_MI_COND_BATCH_BUFFER_END | 6u << 12, 0, (uint32_t)DATA_VA, 2}},
		{"COND_BATCH_BUFFER_END misaligned", {VMB_MI_COND_BATCH_BUFFER_END, 0, (uint32_t)DATA_VA + 1, 2}},
		{"COND_BATCH_BUFFER_END length 1", {0x1b200001u, 0, (uint32_t)DATA_VA}},
		{"BATCH_BUFFER_START second level", {VMB_MI_BATCH_BUFFER_START | 1u << 22, (uint32_t)CMD_VA, 1}},
		{"BATCH_BUFFER_START in the global GTT", {0x18800001u, (uint32_t)CMD_VA, 1}},
		{"BATCH_BUFFER_START misaligned", {VMB_MI_BATCH_BUFFER_START, (uint32_t)CMD_VA + 2, 1}},
		{"SEMAPHORE_WAIT signal mode", {VMB_MI_SEMAPHORE_WAIT & ~(1u << 15), 0, (uint32_t)DATA_VA, 2}},
		{"SEMAPHORE_WAIT op 7", {VMB_MI_SEMAPHORE_WAIT | 7u << 12, 0, (uint32_t)DATA_VA, 2}},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint32_t q = intel_queue(f->c, f->vm, VMB_ENGINE_CLASS_COPY, 0);
		f->data[0] = 0;
		uint32_t n = 0;
		sdi(f, &n, DATA_VA, 1); /* before the bad command: done */
		memcpy(f->cmd + n, bad[i].w, sizeof(bad[i].w));
		n += 6;
		sdi(f, &n, DATA_VA, 2); /* never reached */
		end(f, &n);
		int err = run_at(f, q, CMD_VA);
		if (err != -EINVAL || data32(f, 0) != 1)
			fail_msg("%s: error %d, marker %u", bad[i].what, err, data32(f, 0));
		assert_int_equal(queue_state(f->c, q).flags, VMB_EXEC_QUEUE_BANNED);
		assert_int_equal(__exec(f->c, q, CMD_VA, NULL, 0), -ECANCELED);
		struct vmb_exec_queue_destroy d = {.exec_queue_id = q};
		assert_int_equal(vmb_exec_queue_destroy(f->c, &d), 0);
	}

	const struct {
		uint64_t at; /* the fault's address */
		bool write;
	} faults[] = {{5ull << 32, true}, {6ull << 32, false}, {CMD_VA + CMD_SIZE, false}};
	for (size_t i = 0; i < 3; i++) {
		uint32_t q = intel_queue(f->c, f->vm, VMB_ENGINE_CLASS_COPY, 0);
		uint32_t n = 0;
		if (i == 0)
			sdi(f, &n, faults[i].at, 1);
		else if (i == 1)
			jump(f, &n, faults[i].at);
		else
			jump(f, &n, CMD_VA + CMD_SIZE - 8); /* two NOOPs, then off the end */
		end(f, &n);
		f->cmd[CMD_SIZE / 4 - 2] = VMB_MI_NOOP;
		f->cmd[CMD_SIZE / 4 - 1] = VMB_MI_NOOP;
		assert_int_equal(run_at(f, q, CMD_VA), -EFAULT);
		struct vmb_exec_queue_query qq = queue_state(f->c, q);
		assert_int_equal(qq.fault_addr, faults[i].at);
		assert_int_equal(qq.fault_access, faults[i].write ? VMB_FAULT_WRITE : VMB_FAULT_READ);
	}
}

/* The flag and the exec address: unknown flags -EINVAL; an Intel queue's batch is 4-byte aligned
 * and canonical (or below 2^48), a plain queue's still 8-byte aligned. */
static void test_queue_and_exec_args(void **state)
{
	struct fixture *f = *state;
	struct vmb_exec_queue_create a = {.vm_id = f->vm, .flags = 1u << 1};
	assert_int_equal(vmb_exec_queue_create(f->c, &a), -EINVAL);
	a.flags = VMB_EXEC_QUEUE_CMDSET_INTEL | 1u << 31;
	assert_int_equal(vmb_exec_queue_create(f->c, &a), -EINVAL);
	a = (struct vmb_exec_queue_create){.vm_id = f->vm};
	assert_int_equal(vmb_exec_queue_create(f->c, &a), 0);
	uint32_t plain = a.exec_queue_id;
	uint32_t n = 1;
	end(f, &n);
	assert_int_equal(__exec(f->c, f->q, CMD_VA + 2, NULL, 0), -EINVAL);
	assert_int_equal(__exec(f->c, f->q, CMD_VA | 1ull << 48, NULL, 0), -EINVAL);
	assert_int_equal(__exec(f->c, f->q, 0xffff000000000000ull | CMD_VA, NULL, 0), -EINVAL);
	assert_int_equal(__exec(f->c, plain, CMD_VA + 4, NULL, 0), -EINVAL);
	assert_int_equal(__exec(f->c, f->q + 100, CMD_VA + 4, NULL, 0), -EINVAL); /* an unknown queue is no Intel one */
	assert_int_equal(__exec(f->c, f->q + 100, CMD_VA, NULL, 0), -ENOENT);
	assert_int_equal(run_at(f, f->q, CMD_VA + 4), 0);
	assert_int_equal(queue_state(f->c, f->q).flags, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_store, setup, teardown),
		cmocka_unit_test_setup_teardown(test_jump, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cond_end_every_op, setup, teardown),
		cmocka_unit_test_setup_teardown(test_semaphore_wait, setup, teardown),
		cmocka_unit_test_setup_teardown(test_spinner, setup, teardown),
		cmocka_unit_test(test_spinner_timeout_and_destroy),
		cmocka_unit_test_setup_teardown(test_malformed_and_faults, setup, teardown),
		cmocka_unit_test_setup_teardown(test_queue_and_exec_args, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
