/* SPDX-License-Identifier: MIT */
/*
 * The checks of the CUDA test programs (plain programs, no cmocka: the GPU machine builds them
 * by hand, tests/cuda/run-on-gpu.sh). EXPECT and EXPECT_EQ count a failure in `failed` and
 * return from the case; CHECK_EQ counts one and goes on.
 */
#ifndef VMB_TESTS_CUDA_EXPECT_H
#define VMB_TESTS_CUDA_EXPECT_H

#include <stdio.h>

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

#endif
