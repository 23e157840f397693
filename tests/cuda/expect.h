/* SPDX-License-Identifier: MIT */
/*
 * The checks of the CUDA test programs (plain programs, no cmocka: the GPU machine builds them
 * by hand, tests/cuda/run-on-gpu.sh). EXPECT and EXPECT_EQ count a failure in `failed` and
 * return from the case; CHECK_EQ counts one and goes on.
 */
#ifndef VMB_TESTS_CUDA_EXPECT_H
#define VMB_TESTS_CUDA_EXPECT_H

#include <stddef.h>
#include <stdio.h>
#include <string.h>

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

#endif
