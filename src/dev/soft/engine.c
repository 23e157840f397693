/* SPDX-License-Identifier: MIT */
/* The soft GPU's engines; the design is in engine.h, the command set in vmbind/cmd.h. */
#include "dev/soft/engine.h"

#include <errno.h>
#include <sched.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <vmbind/cmd.h>
#include <vmbind/queue.h>
#include <vmbind/vm.h>

#include "core/alloc.h"
#include "core/sanitize.h"
#include "sync/ufence.h"

/*
 * Work (docs/COMMANDS.md): bytes touched. A command counts CMD_WORK for its fetch and decode,
 * FILL the bytes it writes, COPY the bytes it reads and writes, DELAY WORK_PER_NS per ns. A
 * job's modelled time is its work / WORK_PER_NS.
 */
#define WORK_PER_NS 2ull              /* the modelled bandwidth: 2 bytes per ns (2 GB/s) */
#define SLICE_WORK (1ull << 20)       /* a time slice: 1 MiB of work ... */
#define SLICE_NS ((int64_t)(SLICE_WORK / WORK_PER_NS)) /* ... = 0.52 ms of DELAY */
#define SLICE_MIN (64ull << 10)       /* ... ended after 64 KiB if the device lock is awaited */
#define CMD_WORK 1024ull              /* a fetch: ~0.5 us, as measured (a page walk or two) */
#define POLL_NS 1000000ll  /* a blocked engine looks again at least this often */
#define CHUNK 4096         /* FILL/COPY piece: read whole, then written */
#define KICK_WORK SLICE_MIN /* a slice run by a kicker (engine.h): an application's thread */

enum slice { RAN, BLOCKED, DONE, YIELD /* an Intel ARB_CHECK: the slice ends (run_slice) */ };

struct outcome {
	int error;
	uint64_t fault_addr;
	uint8_t access, type, level; /* the fault's: struct vmb_dev_exec.fault_* */
	int64_t wake_ns; /* BLOCKED/RAN: when to look again at the latest */
};

static void sleep_ns(int64_t ns)
{
	struct timespec ts = {.tv_sec = ns / 1000000000, .tv_nsec = ns % 1000000000};
	while (nanosleep(&ts, &ts) && errno == EINTR) {
	}
}

static int operands(uint32_t op)
{
	switch (op) {
	case VMB_CMD_NOOP: case VMB_CMD_BATCH_END: return 0;
	case VMB_CMD_DELAY: return 1;
	case VMB_CMD_STORE32: case VMB_CMD_STORE64: case VMB_CMD_ATOMIC_ADD: case VMB_CMD_UFENCE_SIGNAL: return 2;
	case VMB_CMD_COPY: case VMB_CMD_FILL: case VMB_CMD_SEM_WAIT: return 3;
	default: return -1;
	}
}

/* Kept out of ThreadSanitizer's view: the batch is read without a lock (engine.h). */
#if VMB_TSAN
#define ENGINE_NO_TSAN __attribute__((no_sanitize("thread")))
#else
#define ENGINE_NO_TSAN
#endif

ENGINE_NO_TSAN bool soft_batch_needs_thread(const volatile uint8_t *cmd)
{
	const volatile uint64_t *w = (const volatile uint64_t *)cmd;
	uintptr_t end = ((uintptr_t)cmd | 4095) + 1; /* the page's end: the next may be another's */
	uint64_t work = 0;

	if ((uintptr_t)cmd & 7)
		return false;
	while ((uintptr_t)(w + 1) <= end) {
		uint64_t h = w[0];
		uint32_t op = h & 0xff;
		int n = operands(op);
		if (n < 0 || (h >> 16) || op == VMB_CMD_BATCH_END || (uintptr_t)(w + 1 + n) > end)
			return false;
		work += CMD_WORK; /* as step() and bulk() charge it */
		if (op == VMB_CMD_DELAY && w[1])
			return true;
		if (op == VMB_CMD_FILL)
			work += w[2];
		else if (op == VMB_CMD_COPY)
			work += 2 * w[3];
		if (work >= KICK_WORK)
			return true;
		w += 1 + n;
	}
	return false;
}

/* A memory error of soft_gpu_access(): -EFAULT (nothing mapped: NOT_PRESENT) and -EACCES (a
 * write or atomic to a read-only leaf: WRITE_ACCESS) are both GPU page faults; @access is
 * VMB_FAULT_READ / WRITE / ATOMIC. */
static enum slice fault(struct outcome *o, int err, const struct soft_fault *f, uint8_t access)
{
	o->error = err == -EACCES || err == -EFAULT ? -EFAULT : err;
	o->fault_addr = f->addr;
	o->access = access;
	o->type = err == -EACCES ? VMB_FAULT_TYPE_WRITE_ACCESS : VMB_FAULT_TYPE_NOT_PRESENT;
	o->level = f->level;
	return DONE;
}

static enum slice malformed(struct outcome *o)
{
	o->error = -EINVAL;
	return DONE;
}

/* @w units of work done: counted for the job, taken from the slice's @budget. */
static void charge(struct soft_exec *job, uint64_t *budget, uint64_t w)
{
	job->work += w;
	*budget = *budget > w ? *budget - w : 0;
}

/* Threads other than engines wait for a lock the engine holds for a slice: the device lock (a
 * writer) or the walk lock of the job's vm's page tables (a commit, or a preparation linking a
 * table, which hold the vm's lock meanwhile). */
static bool lock_waited(struct vmb_device *dev, struct vmb_mutex *walk)
{
	return atomic_load_explicit(&dev->lock_waiters, memory_order_relaxed) || vmb_mutex_waiters(walk);
}

/* The slice is over: its work is done, or, once the job has done a slice's work (a long job),
 * someone waits for the device lock and the slice has done at least SLICE_MIN (then the engine
 * lets them in: let_waiters_in()). A job's first slice is whole: short jobs, the common case,
 * do not hand the lock over at every 64 KiB (bench pipeline 2.1x -> 1.8x when they did). */
static bool slice_over(struct soft_exec *job, uint64_t budget)
{
	return !budget || (budget <= SLICE_WORK - SLICE_MIN && job->work >= SLICE_WORK &&
			   lock_waited(job->dev, soft_vm_walk_lock(job->base.vm)));
}

/*
 * The FILL or COPY latched in job->cmd, from byte job->cmd_done on, in CHUNK pieces at the same
 * offsets an uninterrupted run takes, until it is over or the slice's @budget is spent; the
 * device lock shared and the walk lock held. A fault reports the first faulting address of the piece, as before.
 */
static enum slice bulk(struct soft_exec *job, struct outcome *o, uint64_t *budget)
{
	struct vmb_dev_vm *vm = job->base.vm;
	bool copy = (job->cmd[0] & 0xff) == VMB_CMD_COPY;
	uint64_t a = job->cmd[1], b = job->cmd[2], c = job->cmd[3];
	struct soft_fault fa = {0};
	uint64_t size = copy ? c : b;
	uint8_t buf[CHUNK];
	int err;

	if (!copy) {
		uint32_t v = (uint32_t)c;
		for (unsigned int i = 0; i < CHUNK / 4; i++)
			memcpy(buf + 4 * i, &v, 4);
	}
	while (job->cmd_done < size) {
		if (slice_over(job, *budget))
			return RAN; /* the rest in the job's next slice */
		uint64_t done = job->cmd_done, len = size - done < CHUNK ? size - done : CHUNK;
		if (copy && (err = soft_gpu_access(vm, b + done, buf, len, 0, &fa)))
			return fault(o, err, &fa, VMB_FAULT_READ);
		if ((err = soft_gpu_access(vm, a + done, buf, len, VMB_DEV_ACCESS_WRITE, &fa)))
			return fault(o, err, &fa, VMB_FAULT_WRITE);
		job->cmd_done = done + len;
		charge(job, budget, copy ? 2 * len : len);
	}
	job->in_cmd = false;
	job->pc += 32;
	return RAN;
}

/* One command at job->pc (or the rest of the FILL/COPY in progress there) within @budget, the
 * device lock shared and the walk lock held. */
static enum slice step(struct soft_exec *job, struct outcome *o, bool *ufence, uint64_t *budget)
{
	struct vmb_dev_vm *vm = job->base.vm;
	uint64_t w[4];
	struct soft_fault fa = {0};
	int err;

	if (job->in_cmd)
		return bulk(job, o, budget);
	charge(job, budget, CMD_WORK);
	if ((err = soft_gpu_access(vm, job->pc, w, 8, 0, &fa)))
		return fault(o, err, &fa, VMB_FAULT_READ);
	uint32_t op = w[0] & 0xff, sub = (w[0] >> 8) & 0xff;
	int n = operands(op);
	if (n < 0 || (w[0] >> 16) || (sub && op != VMB_CMD_SEM_WAIT))
		return malformed(o);
	if (n && (err = soft_gpu_access(vm, job->pc + 8, &w[1], (uint64_t)n * 8, 0, &fa)))
		return fault(o, err, &fa, VMB_FAULT_READ);
	uint64_t a = w[1], b = w[2], c = w[3];

	switch (op) {
	case VMB_CMD_NOOP:
		break;
	case VMB_CMD_BATCH_END:
		o->error = 0;
		return DONE;
	case VMB_CMD_STORE32: {
		uint32_t v = (uint32_t)b;
		if (a & 3)
			return malformed(o);
		if ((err = soft_gpu_access(vm, a, &v, 4, VMB_DEV_ACCESS_WRITE, &fa)))
			return fault(o, err, &fa, VMB_FAULT_WRITE);
		break;
	}
	case VMB_CMD_STORE64:
	case VMB_CMD_UFENCE_SIGNAL:
		if (a & 7)
			return malformed(o);
		if ((err = soft_gpu_access(vm, a, &b, 8, VMB_DEV_ACCESS_WRITE, &fa)))
			return fault(o, err, &fa, VMB_FAULT_WRITE);
		*ufence |= op == VMB_CMD_UFENCE_SIGNAL;
		break;
	case VMB_CMD_FILL: /* a = dst, b = size, c = value */
	case VMB_CMD_COPY: /* a = dst, b = src, c = size */
		if (op == VMB_CMD_FILL && ((a & 3) || (b & 3)))
			return malformed(o);
		/* latched: the command goes on from here in later slices, whatever happens to the
		 * buffer meanwhile (as a GPU that has fetched it) */
		memcpy(job->cmd, w, sizeof(w));
		job->cmd_done = 0;
		job->in_cmd = true;
		return bulk(job, o, budget);
	case VMB_CMD_ATOMIC_ADD: {
		if (a & 7)
			return malformed(o);
		if ((err = soft_gpu_access(vm, a, &b, 8, VMB_DEV_ACCESS_ATOMIC_ADD, &fa)))
			return fault(o, err, &fa, VMB_FAULT_ATOMIC);
		break;
	}
	case VMB_CMD_SEM_WAIT: { /* a = addr, b = value, c = mask */
		uint64_t v;
		if ((a & 7) || sub > VMB_UFENCE_OP_LTE)
			return malformed(o);
		if ((err = soft_gpu_access(vm, a, &v, 8, 0, &fa)))
			return fault(o, err, &fa, VMB_FAULT_READ);
		if (!vmb_ufence_passes(sub, v, b, c))
			return BLOCKED; /* pc stays: the wait runs again next time */
		break;
	}
	case VMB_CMD_DELAY:
		job->delay_end_ns = vmb_now_ns() + (int64_t)(a > INT64_MAX / 2 ? INT64_MAX / 2 : a);
		/* a BATCH_END right after it is fetched now, as a command streamer prefetches: the job
		 * then ends with the DELAY, without taking the locks again for one word (a bind's
		 * commit often holds the vm's lock then: bench pipeline) */
		if (!soft_gpu_access(vm, job->pc + 16, w, 8, 0, &fa) && w[0] == VMB_CMD_BATCH_END) {
			charge(job, budget, CMD_WORK);
			job->end_after_delay = true;
		}
		break;
	}
	job->pc += 8 * (uint64_t)(n + 1);
	return RAN;
}

/*
 * The Intel command set (VMB_EXEC_QUEUE_CMDSET_INTEL, vmbind/cmd.h, docs/COMMANDS.md): dwords.
 * MI_OPCODE is the header's bits 23-31 (the client, bits 29-31, is 0 for MI commands).
 */
#define MI_OPCODE(h) ((h) >> 23)
#define MI_COMPARE(h) (((h) >> 12) & 7)
#define MI_COMPARE_BITS (7u << 12)

/* The dwords of the command with header @h (the header included), 0 if it is malformed. */
static unsigned int mi_length(uint32_t h)
{
	switch (h) {
	case VMB_MI_NOOP: case VMB_MI_BATCH_BUFFER_END: case VMB_MI_ARB_CHECK: return 1;
	case VMB_MI_BATCH_BUFFER_START: return 3;
	case VMB_MI_STORE_DWORD_IMM: return 4;
	case VMB_MI_STORE_QWORD_IMM: return 5;
	}
	if (((h & ~MI_COMPARE_BITS) == VMB_MI_COND_BATCH_BUFFER_END ||
	     (h & ~MI_COMPARE_BITS) == VMB_MI_SEMAPHORE_WAIT) && MI_COMPARE(h) <= 5)
		return 4;
	return 0;
}

/* A command's address (low, high dwords): bits 0-47, bits 48-63 zero or the sign extension of
 * bit 47 (canonical), @align-aligned; false if not. */
static bool mi_address(uint32_t lo, uint32_t hi, uint32_t align, uint64_t *out)
{
	uint32_t top = hi >> 15; /* bits 47-63 */
	*out = (uint64_t)(hi & 0xffff) << 32 | lo;
	return (top <= 1 || top == 0x1ffff) && !(lo & (align - 1));
}

/* (@mem OP @data), OP the compare field of COND_BATCH_BUFFER_END and SEMAPHORE_WAIT (0-5). */
static bool mi_compare(uint32_t op, uint32_t mem, uint32_t data)
{
	switch (op) {
	case 0: return mem > data;
	case 1: return mem >= data;
	case 2: return mem < data;
	case 3: return mem <= data;
	case 4: return mem == data;
	default: return mem != data;
	}
}

/* One Intel command at job->pc within @budget, the device lock shared and the walk lock held;
 * *@wrote: it stored to memory. */
static enum slice step_intel(struct soft_exec *job, struct outcome *o, bool *wrote, uint64_t *budget)
{
	struct vmb_dev_vm *vm = job->base.vm;
	uint32_t d[5];
	uint64_t a;
	struct soft_fault fa = {0};
	int err;

	charge(job, budget, CMD_WORK);
	if ((err = soft_gpu_access(vm, job->pc, d, 4, 0, &fa)))
		return fault(o, err, &fa, VMB_FAULT_READ);
	unsigned int len = mi_length(d[0]);
	if (!len)
		return malformed(o);
	if (len > 1 && (err = soft_gpu_access(vm, job->pc + 4, &d[1], 4ull * (len - 1), 0, &fa)))
		return fault(o, err, &fa, VMB_FAULT_READ);

	switch (MI_OPCODE(d[0])) {
	case MI_OPCODE(VMB_MI_NOOP):
		break;
	case MI_OPCODE(VMB_MI_BATCH_BUFFER_END):
		o->error = 0;
		return DONE;
	case MI_OPCODE(VMB_MI_ARB_CHECK):
		job->pc += 4;
		return YIELD;
	case MI_OPCODE(VMB_MI_STORE_DWORD_IMM): { /* dword or qword: d[3], d[4] little-endian */
		uint32_t size = len == 5 ? 8 : 4;
		if (!mi_address(d[1], d[2], size, &a))
			return malformed(o);
		if ((err = soft_gpu_access(vm, a, &d[3], size, VMB_DEV_ACCESS_WRITE, &fa)))
			return fault(o, err, &fa, VMB_FAULT_WRITE);
		*wrote = true;
		break;
	}
	case MI_OPCODE(VMB_MI_COND_BATCH_BUFFER_END):
	case MI_OPCODE(VMB_MI_SEMAPHORE_WAIT): { /* d[1] = data, d[2..3] = address */
		uint32_t mem;
		if (!mi_address(d[2], d[3], 4, &a))
			return malformed(o);
		if ((err = soft_gpu_access(vm, a, &mem, 4, 0, &fa)))
			return fault(o, err, &fa, VMB_FAULT_READ);
		bool holds = mi_compare(MI_COMPARE(d[0]), mem, d[1]);
		if (MI_OPCODE(d[0]) == MI_OPCODE(VMB_MI_SEMAPHORE_WAIT) && !holds)
			return BLOCKED; /* pc stays: polled again next time, as SEM_WAIT */
		if (MI_OPCODE(d[0]) == MI_OPCODE(VMB_MI_COND_BATCH_BUFFER_END) && !holds) {
			o->error = 0; /* the batch ends (first level only: the job) */
			return DONE;
		}
		break;
	}
	case MI_OPCODE(VMB_MI_BATCH_BUFFER_START):
		if (!mi_address(d[1], d[2], 4, &a))
			return malformed(o);
		job->pc = a;
		return RAN;
	}
	job->pc += 4ull * len;
	return RAN;
}

/*
 * Before a slice of a long job takes the device lock: if threads wait for it (a CPU call, a
 * bind's commit; engines do not count, vmb_dev_lock_engine()), let them have it first. A mutex is not fair: the engine, unlocking and
 * locking again at once, would keep winning it, and one long command would hold up the CPU API
 * for as long as it runs. Bounded: after a slice's time the engine takes its turn anyway.
 */
static void let_waiters_in(struct vmb_device *dev, struct vmb_mutex *walk)
{
	if (!lock_waited(dev, walk))
		return;
	int64_t until = vmb_now_ns() + SLICE_NS;
	while (lock_waited(dev, walk) && vmb_now_ns() < until)
		sched_yield();
}

/* Runs @job for one time slice: at most @slice_work of work, or a slice of a DELAY; on the
 * engine's thread (@thread), a DELAY first commits the binds that the thread's earlier job ends
 * kept (job_end_here), in the time the engine would sleep. */
static enum slice run_slice(struct soft_engine *e, struct soft_exec *job, struct outcome *o, uint64_t slice_work,
			    bool thread)
{
	int64_t now = vmb_now_ns();

	o->wake_ns = now + POLL_NS;
	/* cancelled: its queue destroyed, or banned by an earlier job's error (the exec layer sets
	 * it then before the job comes here): a job queued behind the one that failed ends before
	 * any of its commands runs */
	if (atomic_load(&job->base.cancel)) {
		o->error = -ECANCELED;
		return DONE;
	}
	if (!job->base.start_ns)
		job->base.start_ns = now;
	/* the job's time: wall-clock since its first slice, or the modelled time of its work
	 * (which a FILL of a NULL mapping or a scratch page takes no real time for) */
	int64_t tmo = e->dev->job_timeout_ns;
	int64_t start = job->base.start_ns;
	if (!job->base.lr && (now - start >= tmo || job->work / WORK_PER_NS >= (uint64_t)tmo)) {
		o->error = -ETIMEDOUT;
		return DONE;
	}
	if (!job->base.lr && start + tmo < o->wake_ns)
		o->wake_ns = start + tmo;
	if (job->delay_end_ns) {
		if (now < job->delay_end_ns && thread && vmb_sched_here_kept()) {
			/* no lock held: as a worker would run them; the time counts as the DELAY's. Those
			 * that the DELAY has no time left for go to the workers */
			vmb_sched_here_flush_until(job->delay_end_ns);
			int64_t t = vmb_now_ns();
			int64_t ran = (t < job->delay_end_ns ? t : job->delay_end_ns) - now;
			job->work += (uint64_t)ran * WORK_PER_NS;
			now = t;
		}
		if (now < job->delay_end_ns) {
			int64_t d = job->delay_end_ns - now;
			d = d < SLICE_NS ? d : SLICE_NS;
			sleep_ns(d); /* the engine is busy: modelled work */
			job->work += (uint64_t)d * WORK_PER_NS;
			return RAN;
		}
		job->delay_end_ns = 0;
		if (job->end_after_delay) {
			o->error = 0;
			return DONE;
		}
	}
	enum slice r = RAN;
	bool ufence = false, wrote = false;
	uint64_t budget = slice_work;
	/* one lock hold for the slice's commands: taking the device lock per command made each
	 * exec queue up behind the binds' prepares and commits once per command. Whoever waits
	 * for the lock gets it between two slices. The page tables' walk lock, not the vm's lock
	 * (engine.h): binds prepare meanwhile */
	struct vmb_mutex *walk = soft_vm_walk_lock(job->base.vm);
	if (job->work >= SLICE_WORK)
		let_waiters_in(e->dev, walk);
	vmb_dev_lock_engine(e->dev);
	vmb_mutex_lock_nocount(walk);
	while (r == RAN && !slice_over(job, budget) && !job->delay_end_ns)
		r = job->base.intel ? step_intel(job, o, &wrote, &budget) : step(job, o, &ufence, &budget);
	vmb_mutex_unlock(walk);
	vmb_dev_unlock(e->dev);
	if (ufence)
		vmb_event_notify(&e->dev->ufence_ev);
	/* an ARB_CHECK ends the slice; a job that stored nothing in it (a spinner polling a dword
	 * the CPU writes) counts as waiting, so an engine with nothing else to do sleeps until the
	 * next user-fence write or poll instead of spinning with it */
	if (r == YIELD)
		r = wrote ? RAN : BLOCKED;
	return r;
}

/* The job is over: its result into the request, then its fence, as a GPU's hardware fence (the
 * exec layer's callback may free the request: a reference on the fence is held across). */
static void job_end(struct soft_exec *job, const struct outcome *o)
{
	struct vmb_fence *done = job->base.done;
	int error = o->error;
	job->base.error = error;
	job->base.fault_addr = o->fault_addr;
	job->base.fault_access = o->access;
	job->base.fault_type = o->type;
	job->base.fault_level = o->level;
	vmb_fence_get(done);
	vmb_signalling_begin();
	vmb_fence_signal(done, error);
	vmb_signalling_end();
	vmb_fence_unref(done);
}

/* A job left the engine (e->lock held): the last one gives the CPU back to polling workers. */
static void job_gone(struct soft_engine *e)
{
	if (!--e->njobs)
		atomic_fetch_sub(&e->dev->cpu_busy, 1);
}

/*
 * A job ended on the engine's own thread: a bind that waited for it (the unmap after the
 * exec's last read) becomes ready here, in a run-here scope (sched.h), and runs on this thread
 * once the fence is out, instead of waking a worker, if the engine has nothing else to run then.
 * Else the thread keeps it (claimed) and commits it in its next DELAY, when it would sleep
 * (run_slice), or hands it to the workers at the end of a round with no DELAY ahead (engine_main):
 * the engine's jobs go first, and no worker is woken while the engine's next job runs.
 * Meanwhile the engine is nobody's (SOFT_OWNER_NONE): a job handed to it then is started by its
 * kicker at once, not after the binds. True if a kicker took the engine: the thread's round ends
 * there (the caller owns the engine no more; engine_main waits for the kicker).
 */
static bool job_end_here(struct soft_engine *e, struct soft_exec *job, const struct outcome *o)
{
	vmb_sched_here_begin();
	job_end(job, o);
	pthread_mutex_lock(&e->lock);
	bool idle = !e->njobs && !e->stop;
	if (idle)
		e->owner = SOFT_OWNER_NONE;
	pthread_mutex_unlock(&e->lock);
	if (!idle) {
		vmb_sched_here_end_keep();
		return false;
	}
	vmb_sched_here_end(true);
	pthread_mutex_lock(&e->lock);
	bool lost = e->owner == SOFT_OWNER_KICKER;
	if (e->owner == SOFT_OWNER_NONE)
		e->owner = SOFT_OWNER_THREAD;
	pthread_mutex_unlock(&e->lock);
	return lost;
}

/* One round: each of the first @n jobs gets a slice of @slice_work. Whether one progressed;
 * *@wake: when to look again at the latest; *@delay (may be NULL): a job left in a DELAY. The
 * caller owns the engine: its thread (@thread), or a kicker. */
static bool run_round(struct soft_engine *e, unsigned int n, uint64_t slice_work, int64_t *wake, bool thread,
		      bool *delay)
{
	bool progress = false;
	for (unsigned int i = 0; i < n; i++) {
		pthread_mutex_lock(&e->lock);
		struct soft_exec *job =
			vmb_list_empty(&e->jobs) ? NULL : vmb_container_of(e->jobs.next, struct soft_exec, link);
		if (job)
			vmb_list_del(&job->link);
		pthread_mutex_unlock(&e->lock);
		if (!job)
			break;
		struct outcome o = {0};
		enum slice r = run_slice(e, job, &o, slice_work, thread);
		if (r == DONE) {
			pthread_mutex_lock(&e->lock);
			job_gone(e);
			pthread_mutex_unlock(&e->lock);
			progress = true;
			if (!thread)
				job_end(job, &o);
			else if (job_end_here(e, job, &o))
				break; /* a kicker has the engine now */
			continue;
		}
		progress |= r == RAN;
		if (delay && job->delay_end_ns)
			*delay = true;
		if (o.wake_ns < *wake)
			*wake = o.wake_ns;
		pthread_mutex_lock(&e->lock);
		vmb_list_add_tail(&job->link, &e->jobs);
		pthread_mutex_unlock(&e->lock);
	}
	return progress;
}

/* A kicker's turn (engine.h): the first round of the jobs handed to the idle engine, on the
 * thread that handed them over, no lock held; then the engine goes back to its thread. */
static void engine_kicked(struct vmb_sched_kick *k)
{
	struct soft_engine *e = vmb_container_of(k, struct soft_engine, kick);
	int64_t wake = INT64_MAX;

	pthread_mutex_lock(&e->lock);
	unsigned int n = e->stop ? 0 : e->njobs; /* stopping: the thread cancels them */
	pthread_mutex_unlock(&e->lock);
	run_round(e, n, KICK_WORK, &wake, false, NULL);
	pthread_mutex_lock(&e->lock);
	e->owner = SOFT_OWNER_NONE;
	/* a stop waiting for the kicker: woken under the lock (once it is dropped, the stop may
	 * free the engine). Jobs left: their thread is woken once the lock is dropped, so that it
	 * does not wake only to wait for the lock (a second wake-up; on a busy machine it ran on
	 * the kicker's CPU in between); `waking` keeps a stop from freeing the engine meanwhile */
	bool signal = e->njobs && !e->stop;
	if (e->stop)
		pthread_cond_broadcast(&e->cond);
	else if (signal)
		atomic_fetch_add_explicit(&e->waking, 1, memory_order_relaxed);
	pthread_mutex_unlock(&e->lock);
	if (signal) {
		pthread_cond_signal(&e->cond);
		atomic_fetch_sub_explicit(&e->waking, 1, memory_order_release);
	}
}

static void *engine_main(void *arg)
{
	struct soft_engine *e = arg;
	struct vmb_device *dev = e->dev;

	unsigned int kept_rounds = 0; /* rounds that kept binds waited through without a DELAY */

	/* modelled work sleeps: wake on time, not 50 us late (the default timer slack) */
	prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);

	for (;;) {
		pthread_mutex_lock(&e->lock);
		if (vmb_sched_here_kept() && (!e->njobs || e->owner == SOFT_OWNER_KICKER || e->stop)) {
			/* never kept across a wait (a vm drain may wait for them) */
			pthread_mutex_unlock(&e->lock);
			vmb_sched_here_flush(false);
			kept_rounds = 0;
			continue;
		}
		while ((!e->njobs || e->owner == SOFT_OWNER_KICKER) && !e->stop) {
			if (e->owner == SOFT_OWNER_THREAD)
				e->owner = SOFT_OWNER_NONE; /* idle: a kicker may take it */
			pthread_cond_wait(&e->cond, &e->lock);
		}
		if (e->stop) {
			while (e->owner == SOFT_OWNER_KICKER)
				pthread_cond_wait(&e->cond, &e->lock);
			e->owner = SOFT_OWNER_THREAD;
			pthread_mutex_unlock(&e->lock);
			break;
		}
		e->owner = SOFT_OWNER_THREAD;
		unsigned int n = e->njobs;
		pthread_mutex_unlock(&e->lock);

		/* announced before the round reads memory: a user fence the device writes meanwhile
		 * (a bind's, dev/core.c) then notifies the event it may sleep on below */
		vmb_event_announce(&dev->ufence_ev);
		uint32_t seen = vmb_event_read(&dev->ufence_ev);
		int64_t wake = INT64_MAX;
		bool delay = false;
		bool progress = run_round(e, n, SLICE_WORK, &wake, true, &delay);
		/* binds kept by job ends (job_end_here) wait for a DELAY, at most one more round (the
		 * job after the one that ended starts in it: its first slice reaches its DELAY); with
		 * none ahead they go now: here if the engine has no job (the thread would sleep), else
		 * to the workers */
		if (!vmb_sched_here_kept()) {
			kept_rounds = 0;
		} else if (!delay) {
			pthread_mutex_lock(&e->lock);
			bool busy = e->njobs;
			pthread_mutex_unlock(&e->lock);
			if (!busy || ++kept_rounds > 1) {
				vmb_sched_here_flush(!busy);
				kept_rounds = 0;
			}
		}
		if (!progress) {
			vmb_sched_here_flush(false); /* never kept across a wait */
			kept_rounds = 0;
			vmb_event_wait(&dev->ufence_ev, seen, wake, false);
		}
		vmb_event_retire(&dev->ufence_ev);
	}
	vmb_sched_here_flush(false); /* stopping: kept binds go to the workers */
	/* stopping: whatever is left is cancelled */
	for (;;) {
		pthread_mutex_lock(&e->lock);
		struct soft_exec *job =
			vmb_list_empty(&e->jobs) ? NULL : vmb_container_of(e->jobs.next, struct soft_exec, link);
		if (job) {
			vmb_list_del(&job->link);
			job_gone(e);
		}
		pthread_mutex_unlock(&e->lock);
		if (!job)
			break;
		job_end(job, &(struct outcome){.error = -ECANCELED});
	}
	return NULL;
}

int soft_engine_start(struct soft_engine *e, struct vmb_device *dev, struct vmb_engine desc)
{
	memset(e, 0, sizeof(*e));
	e->dev = dev;
	e->desc = desc;
	pthread_mutex_init(&e->lock, NULL);
	pthread_cond_init(&e->cond, NULL);
	vmb_list_init(&e->jobs);
	e->owner = SOFT_OWNER_NONE;
	atomic_init(&e->waking, 0);
	e->kick.func = engine_kicked;
	if (vmb_thread_create(&e->thread, engine_main, e)) {
		pthread_mutex_destroy(&e->lock);
		pthread_cond_destroy(&e->cond);
		return -EAGAIN;
	}
	e->started = true;
	return 0;
}

void soft_engine_stop(struct soft_engine *e)
{
	if (!e->started || e->joined)
		return;
	pthread_mutex_lock(&e->lock);
	e->stop = true;
	pthread_cond_signal(&e->cond);
	pthread_mutex_unlock(&e->lock);
	vmb_event_notify(&e->dev->ufence_ev); /* if it sleeps on the event */
	pthread_join(e->thread, NULL);
	/* a kicker that saw jobs left may still be signalling the condition variable (engine_kicked) */
	while (atomic_load_explicit(&e->waking, memory_order_acquire))
		sched_yield();
	e->joined = true;
}

void soft_engine_release(struct soft_engine *e)
{
	if (!e->started)
		return;
	pthread_mutex_destroy(&e->lock);
	pthread_cond_destroy(&e->cond);
	e->started = false;
}

void soft_engine_submit(struct soft_engine *e, struct soft_exec *job)
{
	pthread_mutex_lock(&e->lock);
	if (e->stop) {
		/* teardown: a signaller handed this job over after the engine stopped */
		pthread_mutex_unlock(&e->lock);
		job_end(job, &(struct outcome){.error = -ECANCELED});
		return;
	}
	/* idle (no job, nobody running slices): the thread handing it over starts it, later, at
	 * the end of its kick scope, if it has one open */
	bool kick = !job->needs_thread && !e->njobs && e->owner == SOFT_OWNER_NONE && vmb_sched_kick_defer(&e->kick);
	if (kick)
		e->owner = SOFT_OWNER_KICKER;
	vmb_list_add_tail(&job->link, &e->jobs);
	if (!e->njobs++)
		atomic_fetch_add(&e->dev->cpu_busy, 1); /* no polling worker in its way meanwhile */
	pthread_mutex_unlock(&e->lock);
	if (kick)
		return;
	pthread_cond_signal(&e->cond);
	vmb_event_notify(&e->dev->ufence_ev); /* if it sleeps on the event */
}
