/* SPDX-License-Identifier: MIT */
/*
 * The checks of the CUDA test programs (plain programs, no cmocka: the GPU machine builds them
 * by hand, tests/cuda/run-on-gpu.sh). EXPECT and EXPECT_EQ count a failure in `failed` and
 * return from the case; CHECK_EQ counts one and goes on.
 */
#ifndef VMB_TESTS_CUDA_EXPECT_H
#define VMB_TESTS_CUDA_EXPECT_H

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int failed;

#define EXPECT(cond)                                                                               \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			printf("  FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);                   \
			failed++;                                                                  \
			return;                                                                    \
		}                                                                                  \
	} while (0)
#define EXPECT_EQ(a, b)                                                                            \
	do {                                                                                       \
		long long a_ = (long long)(a), b_ = (long long)(b);                                \
		if (a_ != b_) {                                                                    \
			printf("  FAIL %s:%d: %s == %lld, want %lld\n", __FILE__, __LINE__, #a, a_, b_); \
			failed++;                                                                  \
			return;                                                                    \
		}                                                                                  \
	} while (0)
#define CHECK_EQ(a, b)                                                                             \
	do {                                                                                       \
		long long a_ = (long long)(a), b_ = (long long)(b);                                \
		if (a_ != b_) {                                                                    \
			printf("FAIL %s:%d: %s == %lld, want %lld\n", __FILE__, __LINE__, #a, a_, b_); \
			failed++;                                                                  \
		}                                                                                  \
	} while (0)

/* A case: its name (the program's first argument runs it alone) and its body. */
struct expect_case {
	const char *name;
	void (*fn)(void);
};
#define CASE(f) {#f, f}

/* Runs each of @cases (or only the one @argv[1] names), @before each (may be NULL), printing its
 * name and its outcome. */
static inline void run_cases(const struct expect_case *cases, size_t n, int argc, char **argv, void (*before)(void))
{
	for (size_t i = 0; i < n; i++) {
		if (argc > 1 && strcmp(argv[1], cases[i].name))
			continue;
		int was = failed;
		printf("-- %s\n", cases[i].name);
		if (before)
			before();
		cases[i].fn();
		printf("%s %s\n", failed == was ? "ok  " : "FAIL", cases[i].name);
	}
}

/* A call run on a thread of its own, given 10 s (a bound that only catches a hang). */
struct bounded_call {
	int (*fn)(void *);
	void *arg;
	int ret, done; /* done: atomic */
};

static inline void *bounded_main(void *arg)
{
	struct bounded_call *b = arg;
	b->ret = b->fn(b->arg);
	__atomic_store_n(&b->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

/* @fn(@arg)'s result, or -ETIMEDOUT: it had not returned after 10 s; then the u64 at @gate is
 * set to 1 (the test's gate opens, which lets the call finish) and the thread joined. */
static inline int bounded(int (*fn)(void *), void *arg, volatile uint64_t *gate)
{
	struct bounded_call b = {.fn = fn, .arg = arg};
	pthread_t t;
	if (pthread_create(&t, NULL, bounded_main, &b))
		return -EAGAIN;
	for (int i = 0; i < 10000 && !__atomic_load_n(&b.done, __ATOMIC_ACQUIRE); i++)
		usleep(1000);
	bool hung = !__atomic_load_n(&b.done, __ATOMIC_ACQUIRE);
	if (hung)
		__atomic_store_n(gate, 1, __ATOMIC_RELEASE);
	pthread_join(t, NULL);
	return hung ? -ETIMEDOUT : b.ret;
}

#endif
