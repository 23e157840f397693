/* SPDX-License-Identifier: MIT */
/* The soft GPU's engines; the design is in engine.h, the command set in vmbind/cmd.h. */
#include "dev/soft/engine.h"

#include <errno.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <vmbind/cmd.h>

#include "exec/exec.h"
#include "sync/ufence.h"

#define SLICE_CMDS 64
#define SLICE_NS 500000ll  /* the longest a DELAY holds the engine before others get a turn */
#define POLL_NS 1000000ll  /* a blocked engine looks again at least this often */
#define CHUNK 4096

enum slice { RAN, BLOCKED, DONE };

struct outcome {
	int error;
	uint64_t fault_addr;
	bool write;
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

/* A memory error of vmb_vm_rw: -EFAULT and -EACCES are both GPU page faults. */
static enum slice fault(struct outcome *o, int err, uint64_t addr, bool write)
{
	o->error = err == -EACCES || err == -EFAULT ? -EFAULT : err;
	o->fault_addr = addr;
	o->write = write;
	return DONE;
}

static enum slice malformed(struct outcome *o)
{
	o->error = -EINVAL;
	return DONE;
}

/* One command at job->pc, the device lock held. */
static enum slice step(struct vmb_exec_job *job, struct outcome *o, bool *ufence)
{
	struct vmb_vm *vm = job->q->vm;
	uint64_t w[4], fa = 0;
	int err;

	if ((err = vmb_vm_rw(vm, job->pc, w, 8, false, &fa)))
		return fault(o, err, fa, false);
	uint32_t op = w[0] & 0xff, sub = (w[0] >> 8) & 0xff;
	int n = operands(op);
	if (n < 0 || (w[0] >> 16) || (sub && op != VMB_CMD_SEM_WAIT))
		return malformed(o);
	if (n && (err = vmb_vm_rw(vm, job->pc + 8, &w[1], (uint64_t)n * 8, false, &fa)))
		return fault(o, err, fa, false);
	uint64_t a = w[1], b = w[2], c = w[3];
	uint8_t buf[CHUNK];

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
		if ((err = vmb_vm_rw(vm, a, &v, 4, true, &fa)))
			return fault(o, err, fa, true);
		break;
	}
	case VMB_CMD_STORE64:
	case VMB_CMD_UFENCE_SIGNAL:
		if (a & 7)
			return malformed(o);
		if ((err = vmb_vm_rw(vm, a, &b, 8, true, &fa)))
			return fault(o, err, fa, true);
		*ufence |= op == VMB_CMD_UFENCE_SIGNAL;
		break;
	case VMB_CMD_COPY: /* a = dst, b = src, c = size */
		for (uint64_t done = 0; done < c;) {
			uint64_t len = c - done < CHUNK ? c - done : CHUNK;
			if ((err = vmb_vm_rw(vm, b + done, buf, len, false, &fa)))
				return fault(o, err, fa, false);
			if ((err = vmb_vm_rw(vm, a + done, buf, len, true, &fa)))
				return fault(o, err, fa, true);
			done += len;
		}
		break;
	case VMB_CMD_FILL: { /* a = dst, b = size, c = value */
		uint32_t v = (uint32_t)c;
		if ((a & 3) || (b & 3))
			return malformed(o);
		for (unsigned int i = 0; i < CHUNK / 4; i++)
			memcpy(buf + 4 * i, &v, 4);
		for (uint64_t done = 0; done < b;) {
			uint64_t len = b - done < CHUNK ? b - done : CHUNK;
			if ((err = vmb_vm_rw(vm, a + done, buf, len, true, &fa)))
				return fault(o, err, fa, true);
			done += len;
		}
		break;
	}
	case VMB_CMD_ATOMIC_ADD: {
		uint64_t old;
		if (a & 7)
			return malformed(o);
		if ((err = vmb_vm_atomic_add(vm, a, b, &old)))
			return fault(o, err, a, true);
		break;
	}
	case VMB_CMD_SEM_WAIT: { /* a = addr, b = value, c = mask */
		uint64_t v;
		if ((a & 7) || sub > VMB_UFENCE_OP_LTE)
			return malformed(o);
		if ((err = vmb_vm_rw(vm, a, &v, 8, false, &fa)))
			return fault(o, err, fa, false);
		if (!vmb_ufence_passes(sub, v, b, c))
			return BLOCKED; /* pc stays: the wait runs again next time */
		break;
	}
	case VMB_CMD_DELAY:
		job->delay_end_ns = vmb_now_ns() + (int64_t)(a > INT64_MAX / 2 ? INT64_MAX / 2 : a);
		break;
	}
	job->pc += 8 * (uint64_t)(n + 1);
	return RAN;
}

/* Runs @job for one time slice. */
static enum slice run_slice(struct soft_engine *e, struct vmb_exec_job *job, struct outcome *o)
{
	struct vmb_exec_queue *q = job->q;
	int64_t now = vmb_now_ns();

	o->wake_ns = now + POLL_NS;
	/* destroyed, or banned by an earlier job's error (which stays the queue's error): a job
	 * queued behind the one that failed ends before any of its commands runs */
	if (atomic_load(&q->killed) || atomic_load(&q->banned)) {
		o->error = -ECANCELED;
		return DONE;
	}
	if (!job->start_ns)
		job->start_ns = now;
	if (!q->lr && now - job->start_ns >= e->dev->job_timeout_ns) {
		o->error = -ETIMEDOUT;
		return DONE;
	}
	if (!q->lr && job->start_ns + e->dev->job_timeout_ns < o->wake_ns)
		o->wake_ns = job->start_ns + e->dev->job_timeout_ns;
	if (job->delay_end_ns) {
		if (now < job->delay_end_ns) {
			int64_t d = job->delay_end_ns - now;
			sleep_ns(d < SLICE_NS ? d : SLICE_NS); /* the engine is busy: modelled work */
			return RAN;
		}
		job->delay_end_ns = 0;
	}
	enum slice r = RAN;
	bool ufence = false;
	/* one lock hold for the slice's commands: taking the device lock per command made each
	 * exec queue up behind the binds' prepares and commits once per command */
	vmb_dev_lock(e->dev);
	for (int i = 0; i < SLICE_CMDS && r == RAN && !job->delay_end_ns; i++)
		r = step(job, o, &ufence);
	vmb_dev_unlock(e->dev);
	if (ufence)
		vmb_event_notify(&e->dev->ufence_ev);
	return r;
}

/* A job left the engine (e->lock held): the last one gives the CPU back to polling workers. */
static void job_gone(struct soft_engine *e)
{
	if (!--e->njobs)
		vmb_sched_cpu_user(&e->dev->sched, -1);
}

static void *engine_main(void *arg)
{
	struct soft_engine *e = arg;
	struct vmb_device *dev = e->dev;

	/* modelled work sleeps: wake on time, not 50 us late (the default timer slack) */
	prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);

	for (;;) {
		pthread_mutex_lock(&e->lock);
		while (!e->njobs && !e->stop)
			pthread_cond_wait(&e->cond, &e->lock);
		if (e->stop) {
			pthread_mutex_unlock(&e->lock);
			break;
		}
		unsigned int n = e->njobs;
		pthread_mutex_unlock(&e->lock);

		/* one round: each job gets a slice */
		uint32_t seen = vmb_event_read(&dev->ufence_ev);
		bool progress = false;
		int64_t wake = INT64_MAX;
		for (unsigned int i = 0; i < n; i++) {
			pthread_mutex_lock(&e->lock);
			struct vmb_exec_job *job = vmb_list_empty(&e->jobs)
							   ? NULL
							   : vmb_container_of(e->jobs.next, struct vmb_exec_job, link);
			if (job)
				vmb_list_del(&job->link);
			pthread_mutex_unlock(&e->lock);
			if (!job)
				break;
			struct outcome o = {0};
			enum slice r = run_slice(e, job, &o);
			if (r == DONE) {
				pthread_mutex_lock(&e->lock);
				job_gone(e);
				pthread_mutex_unlock(&e->lock);
				vmb_exec_job_finish(job, o.error, o.fault_addr, o.write);
				progress = true;
				continue;
			}
			progress |= r == RAN;
			if (o.wake_ns < wake)
				wake = o.wake_ns;
			pthread_mutex_lock(&e->lock);
			vmb_list_add_tail(&job->link, &e->jobs);
			pthread_mutex_unlock(&e->lock);
		}
		if (!progress)
			vmb_event_wait(&dev->ufence_ev, seen, wake, false);
	}
	/* stopping: whatever is left is cancelled */
	for (;;) {
		pthread_mutex_lock(&e->lock);
		struct vmb_exec_job *job =
			vmb_list_empty(&e->jobs) ? NULL : vmb_container_of(e->jobs.next, struct vmb_exec_job, link);
		if (job) {
			vmb_list_del(&job->link);
			job_gone(e);
		}
		pthread_mutex_unlock(&e->lock);
		if (!job)
			break;
		vmb_exec_job_finish(job, -ECANCELED, 0, false);
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
	if (pthread_create(&e->thread, NULL, engine_main, e)) {
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

void soft_engine_submit(struct soft_engine *e, struct vmb_exec_job *job)
{
	pthread_mutex_lock(&e->lock);
	if (e->stop) {
		/* teardown: a signaller handed this job over after the engine stopped */
		pthread_mutex_unlock(&e->lock);
		vmb_exec_job_finish(job, -ECANCELED, 0, false);
		return;
	}
	vmb_list_add_tail(&job->link, &e->jobs);
	if (!e->njobs++)
		vmb_sched_cpu_user(&e->dev->sched, 1); /* no polling worker in its way meanwhile */
	pthread_mutex_unlock(&e->lock);
	pthread_cond_signal(&e->cond);
	vmb_event_notify(&e->dev->ufence_ev); /* if it sleeps on the event */
}
