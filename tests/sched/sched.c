/* SPDX-License-Identifier: MIT */
/*
 * Description: the scheduler's run-here scopes (sched.h): a job whose last dependency is
 * signalled by a thread inside a scope runs on that thread when the scope ends (not on a
 * worker), at most VMB_SCHED_HERE_MAX per scope, those made ready while they run included (the
 * others go to the workers); a scope that ends without running hands them to the workers; a
 * claimed job cannot be claimed by anyone else; and, randomized (the seed is printed), each
 * entity's jobs still run in submission order whoever signals their dependencies, in a scope or
 * not.
 */
#include "lib/harness.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

#include "core/alloc.h"
#include "sched/sched.h"
#include "sync/fence.h"

struct tjob {
	struct vmb_sched_job sj;
	struct vmb_fence *done; /* the test's reference on sj.done */
	pthread_t ran_on;
	atomic_int runs;
	atomic_bool released;   /* the scheduler is done with it (the memory is the test's) */
	int entity, seq;
	bool in_section;        /* run() ran inside a signalling section */
};

/* The randomized test's log: per entity, the seq of each job in the order they ran. */
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static int *log_seq[8];
static int log_n[8];

static int tjob_run(struct vmb_sched_job *sj)
{
	struct tjob *t = vmb_container_of(sj, struct tjob, sj);
	t->ran_on = pthread_self();
	t->in_section = vmb_in_signalling();
	if (log_seq[t->entity]) {
		pthread_mutex_lock(&log_lock);
		log_seq[t->entity][log_n[t->entity]++] = t->seq;
		pthread_mutex_unlock(&log_lock);
	}
	atomic_fetch_add(&t->runs, 1);
	return 0;
}

static void tjob_release(struct vmb_sched_job *sj)
{
	struct tjob *t = vmb_container_of(sj, struct tjob, sj);
	vmb_sched_job_fini(sj);
	atomic_store(&t->released, true); /* last: the test may reuse the memory now */
}

static const struct vmb_sched_job_ops tjob_ops = {.run = tjob_run, .release = tjob_release};

static void tjob_init(struct tjob *t, struct vmb_sched *s)
{
	memset(t, 0, sizeof(*t));
	assert_int_equal(vmb_sched_job_init(&t->sj, s, &tjob_ops), 0);
	atomic_init(&t->runs, 0);
	atomic_init(&t->released, false);
	t->done = t->sj.done;
	vmb_fence_get(t->done);
}

static void tjob_wait(struct tjob *t)
{
	/* a hang, not a timing: 10 s */
	int64_t end = vmb_now_ns() + 10000000000ll;
	assert_int_equal(vmb_fence_wait(t->done, end, false), 0);
	while (!atomic_load(&t->released) && vmb_now_ns() < end)
		sched_yield(); /* its release comes right after the signal */
	assert_true(atomic_load(&t->released));
	assert_int_equal(atomic_load(&t->runs), 1);
}

static void tjob_put(struct tjob *t)
{
	vmb_fence_unref(t->done);
}

static void signal_fence(struct vmb_fence *f)
{
	vmb_signalling_begin();
	assert_int_equal(vmb_fence_signal(f, 0), 0);
	vmb_signalling_end();
}

/* @t, submitted, waiting for a new fence: returned, for the caller to signal. */
static struct vmb_fence *tjob_waiting(struct tjob *t, struct vmb_sched *s)
{
	struct vmb_fence *f = vmb_fence_create();
	assert_non_null(f);
	tjob_init(t, s);
	assert_int_equal(vmb_sched_job_add_dep(&t->sj, f), 0);
	vmb_sched_submit(&t->sj);
	return f;
}

static int setup(void **state)
{
	struct vmb_sched *s = calloc(1, sizeof(*s));
	assert_non_null(s);
	assert_int_equal(vmb_sched_init(s, 2, NULL), 0);
	*state = s;
	return 0;
}

static int teardown(void **state)
{
	vmb_sched_fini(*state);
	free(*state);
	return 0;
}

/* A job made ready by the scope's thread runs there, at the scope's end, in a signalling
 * section as on a worker; not before the end (it is claimed: nobody else may take it). */
static void test_here_runs_on_signaller(void **state)
{
	struct vmb_sched *s = *state;
	for (int i = 0; i < 50; i++) {
		struct tjob t;
		struct vmb_fence *f = tjob_waiting(&t, s);
		vmb_sched_here_begin();
		vmb_sched_here_begin(); /* nested: only the outermost end runs it */
		signal_fence(f);
		vmb_sched_here_end(true);
		assert_int_equal(atomic_load(&t.runs), 0);
		assert_false(vmb_sched_job_claim(&t.sj)); /* a drain would wait for its fence */
		vmb_sched_here_end(true);
		/* ran in the call, on this thread: its fence has signalled already */
		assert_true(vmb_fence_is_signalled(t.done));
		assert_int_equal(atomic_load(&t.runs), 1);
		assert_true(pthread_equal(t.ran_on, pthread_self()));
		assert_true(t.in_section);
		assert_true(atomic_load(&t.released));
		tjob_put(&t);
		vmb_fence_unref(f);
	}
}

/* A scope's end may keep its jobs on the thread (claimed: no worker takes them, a drain cannot
 * claim them) until a flush, which runs them here; or hands them to the workers. */
static void test_here_keep_then_flush(void **state)
{
	struct vmb_sched *s = *state;
	for (int run = 0; run < 2; run++) {
		struct tjob t;
		struct vmb_fence *f = tjob_waiting(&t, s);
		vmb_sched_here_begin();
		signal_fence(f);
		assert_int_equal(vmb_sched_here_kept(), 0); /* the scope is still open */
		assert_true(vmb_sched_here_end_keep());
		assert_int_equal(vmb_sched_here_kept(), 1);
		usleep(20000); /* a worker that could take it has had the time to */
		assert_int_equal(atomic_load(&t.runs), 0);
		assert_false(vmb_sched_job_claim(&t.sj));
		vmb_sched_here_flush(run);
		assert_int_equal(vmb_sched_here_kept(), 0);
		tjob_wait(&t);
		if (run)
			assert_true(pthread_equal(t.ran_on, pthread_self()));
		else
			assert_false(pthread_equal(t.ran_on, pthread_self()));
		vmb_sched_here_flush(true); /* nothing kept: nothing happens */
		tjob_put(&t);
		vmb_fence_unref(f);
	}
}

/* A flush with a deadline runs the first kept job whatever the time; once the deadline has
 * passed, the others go to the workers. */
static void test_here_flush_until(void **state)
{
	struct vmb_sched *s = *state;
	struct vmb_fence *f = vmb_fence_create();
	struct tjob t[2];
	for (int i = 0; i < 2; i++) {
		tjob_init(&t[i], s);
		assert_int_equal(vmb_sched_job_add_dep(&t[i].sj, f), 0);
		vmb_sched_submit(&t[i].sj);
	}
	vmb_sched_here_begin();
	signal_fence(f);
	assert_true(vmb_sched_here_end_keep());
	assert_int_equal(vmb_sched_here_kept(), 2);
	vmb_sched_here_flush_until(vmb_now_ns()); /* passed by the time the first has run */
	assert_int_equal(vmb_sched_here_kept(), 0);
	for (int i = 0; i < 2; i++)
		tjob_wait(&t[i]);
	assert_true(pthread_equal(t[0].ran_on, pthread_self()));
	assert_false(pthread_equal(t[1].ran_on, pthread_self()));
	for (int i = 0; i < 2; i++)
		tjob_put(&t[i]);
	vmb_fence_unref(f);
}

/* Without a scope, the same job goes to a worker. */
static void test_no_scope_runs_on_worker(void **state)
{
	struct vmb_sched *s = *state;
	struct tjob t;
	struct vmb_fence *f = tjob_waiting(&t, s);
	signal_fence(f);
	tjob_wait(&t);
	assert_false(pthread_equal(t.ran_on, pthread_self()));
	tjob_put(&t);
	vmb_fence_unref(f);
}

/* Bounded: the first VMB_SCHED_HERE_MAX jobs made ready run here, the others (and one made
 * ready by a job run here) on the workers. */
static void test_here_bounded(void **state)
{
	struct vmb_sched *s = *state;
	enum { N = VMB_SCHED_HERE_MAX + 2 };
	struct vmb_fence *f = vmb_fence_create();
	struct tjob t[N], after;
	for (int i = 0; i < N; i++) {
		tjob_init(&t[i], s);
		assert_int_equal(vmb_sched_job_add_dep(&t[i].sj, f), 0);
	}
	/* made ready by t[0]'s signal, while the scope's jobs run */
	tjob_init(&after, s);
	assert_int_equal(vmb_sched_job_add_dep(&after.sj, t[0].done), 0);
	vmb_sched_submit(&after.sj);
	for (int i = 0; i < N; i++)
		vmb_sched_submit(&t[i].sj);
	vmb_sched_here_begin();
	signal_fence(f); /* callbacks run in the order added: t[0], t[1], ... */
	vmb_sched_here_end(true);
	for (int i = 0; i < N; i++)
		tjob_wait(&t[i]);
	tjob_wait(&after);
	int here = 0;
	for (int i = 0; i < N; i++)
		here += pthread_equal(t[i].ran_on, pthread_self()) != 0;
	assert_int_equal(here, VMB_SCHED_HERE_MAX);
	for (int i = 0; i < VMB_SCHED_HERE_MAX; i++)
		assert_true(pthread_equal(t[i].ran_on, pthread_self()));
	assert_false(pthread_equal(after.ran_on, pthread_self()));
	for (int i = 0; i < N; i++)
		tjob_put(&t[i]);
	tjob_put(&after);
	vmb_fence_unref(f);
}

/* A job made ready by a job the scope runs joins it while the budget lasts (an unmap, then the
 * map that waited for it); the next one goes to a worker. */
static void test_here_chain(void **state)
{
	struct vmb_sched *s = *state;
	enum { N = VMB_SCHED_HERE_MAX + 1 };
	struct vmb_fence *f = vmb_fence_create();
	struct tjob t[N];
	for (int i = 0; i < N; i++) {
		tjob_init(&t[i], s);
		assert_int_equal(vmb_sched_job_add_dep(&t[i].sj, i ? t[i - 1].done : f), 0);
	}
	for (int i = N - 1; i >= 0; i--)
		vmb_sched_submit(&t[i].sj);
	vmb_sched_here_begin();
	signal_fence(f);
	vmb_sched_here_end(true);
	for (int i = 0; i < VMB_SCHED_HERE_MAX; i++) {
		assert_true(atomic_load(&t[i].released)); /* ran in the call */
		assert_true(pthread_equal(t[i].ran_on, pthread_self()));
	}
	tjob_wait(&t[N - 1]);
	assert_false(pthread_equal(t[N - 1].ran_on, pthread_self()));
	for (int i = 0; i < N; i++)
		tjob_put(&t[i]);
	vmb_fence_unref(f);
}

/* A scope that ends with run == false hands its jobs to the workers; claimable again before. */
static void test_here_hand_over(void **state)
{
	struct vmb_sched *s = *state;
	struct tjob t;
	struct vmb_fence *f = tjob_waiting(&t, s);
	vmb_sched_here_begin();
	signal_fence(f);
	vmb_sched_here_end(false);
	tjob_wait(&t);
	assert_false(pthread_equal(t.ran_on, pthread_self()));
	tjob_put(&t);
	vmb_fence_unref(f);
}

/* A job claimed by someone else (a vm drain) before it becomes ready is not taken by the scope. */
static void test_claimed_job_skipped(void **state)
{
	struct vmb_sched *s = *state;
	struct tjob t;
	struct vmb_fence *f = tjob_waiting(&t, s);
	assert_true(vmb_sched_job_claim(&t.sj));
	vmb_sched_here_begin();
	signal_fence(f); /* the last dependency: the job is someone else's already */
	vmb_sched_here_end(true);
	assert_int_equal(atomic_load(&t.runs), 0);
	assert_false(vmb_fence_is_signalled(t.done));
	vmb_sched_run_claimed(&t.sj);
	tjob_wait(&t);
	assert_true(pthread_equal(t.ran_on, pthread_self()));
	tjob_put(&t);
	vmb_fence_unref(f);
}

/*
 * Randomized: E entities of J jobs each (FIFO per entity: vmb_sched_job_after), each job also
 * waiting for a random one of X outside fences, which three threads signal in a random order,
 * each signal in a run-here scope or not, ending it with run or hand-over at random; workers
 * run their jobs in scopes too. Every job runs once, and each entity's jobs in order.
 */
enum { E = 4, J = 64, X = 24, SIGNALLERS = 3 };

struct rnd {
	struct vmb_fence *x[X];
	unsigned int order[X];
	atomic_uint next; /* the next entry of order[] to signal */
	uint64_t seed;
};

struct signaller {
	struct rnd *r;
	uint64_t seed;
};

static void *signaller_main(void *arg)
{
	struct signaller *g = arg;
	for (;;) {
		unsigned int i = atomic_fetch_add(&g->r->next, 1);
		if (i >= X)
			break;
		uint64_t v = rnd_next(&g->seed);
		bool scope = v & 1, run = v & 2;
		if (scope)
			vmb_sched_here_begin();
		vmb_signalling_begin();
		vmb_fence_signal(g->r->x[g->r->order[i]], 0);
		vmb_signalling_end();
		if (scope)
			vmb_sched_here_end(run);
		if (v & 4)
			sched_yield();
	}
	return NULL;
}

static void test_entity_order_random(void **state)
{
	struct vmb_sched *s = *state;
	uint64_t seed = test_seed("test_entity_order_random") | 1;
	for (int round = 0; round < 20; round++) {
		struct rnd r = {.seed = seed};
		struct vmb_sched_entity ent[E] = {0};
		struct tjob *t = calloc((size_t)E * J, sizeof(*t));
		assert_non_null(t);
		for (int e = 0; e < E; e++) {
			log_seq[e] = calloc(J, sizeof(int));
			log_n[e] = 0;
		}
		for (int i = 0; i < X; i++) {
			r.x[i] = vmb_fence_create();
			r.order[i] = (unsigned int)i;
		}
		for (int i = X - 1; i > 0; i--) { /* a random signal order */
			unsigned int k = (unsigned int)(rnd_next(&seed) % (uint64_t)(i + 1)), tmp = r.order[i];
			r.order[i] = r.order[k];
			r.order[k] = tmp;
		}
		atomic_init(&r.next, 0);
		/* submitted interleaved across entities, as bind queues are */
		for (int j = 0; j < J; j++)
			for (int e = 0; e < E; e++) {
				struct tjob *x = &t[e * J + j];
				tjob_init(x, s);
				x->entity = e;
				x->seq = j;
				assert_int_equal(vmb_sched_job_add_dep(&x->sj, r.x[rnd_next(&seed) % X]), 0);
				assert_int_equal(vmb_sched_job_after(&x->sj, &ent[e]), 0);
				vmb_sched_entity_push(&ent[e], &x->sj);
				vmb_sched_submit(&x->sj);
			}
		pthread_t th[SIGNALLERS];
		struct signaller g[SIGNALLERS];
		for (int i = 0; i < SIGNALLERS; i++) {
			g[i] = (struct signaller){.r = &r, .seed = rnd_next(&seed) | 1};
			assert_int_equal(pthread_create(&th[i], NULL, signaller_main, &g[i]), 0);
		}
		for (int i = 0; i < SIGNALLERS; i++)
			pthread_join(th[i], NULL);
		for (int i = 0; i < E * J; i++)
			tjob_wait(&t[i]);
		for (int e = 0; e < E; e++) {
			assert_int_equal(log_n[e], J);
			for (int j = 0; j < J; j++)
				if (log_seq[e][j] != j)
					fail_msg("seed %llu round %d: entity %d ran job %d at place %d",
						 (unsigned long long)r.seed, round, e, log_seq[e][j], j);
			free(log_seq[e]);
			log_seq[e] = NULL;
			vmb_sched_entity_fini(&ent[e]);
		}
		for (int i = 0; i < E * J; i++)
			tjob_put(&t[i]);
		for (int i = 0; i < X; i++)
			vmb_fence_unref(r.x[i]);
		free(t);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_here_runs_on_signaller, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_scope_runs_on_worker, setup, teardown),
		cmocka_unit_test_setup_teardown(test_here_keep_then_flush, setup, teardown),
		cmocka_unit_test_setup_teardown(test_here_flush_until, setup, teardown),
		cmocka_unit_test_setup_teardown(test_here_bounded, setup, teardown),
		cmocka_unit_test_setup_teardown(test_here_chain, setup, teardown),
		cmocka_unit_test_setup_teardown(test_here_hand_over, setup, teardown),
		cmocka_unit_test_setup_teardown(test_claimed_job_skipped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_entity_order_random, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
