/* SPDX-License-Identifier: MIT */
/* What the benchmarks share: clocks, statistics, number formatting. */
#include "bench-util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

double median_double(double *v, size_t n)
{
	if (!n)
		return NAN;
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Cost of the clock read pair that brackets every individually timed operation. */
double timer_overhead_ns(void)
{
	double v[1001];
	for (size_t i = 0; i < 1001; i++) {
		uint64_t a = now_ns(), b = now_ns();
		v[i] = (double)(b - a);
	}
	return median_double(v, 1001);
}

const char *fmt_rate(double v, char *buf, size_t n)
{
	if (isnan(v))
		snprintf(buf, n, "n/a");
	else if (v >= 1e9)
		snprintf(buf, n, "%.2fG", v / 1e9);
	else if (v >= 1e6)
		snprintf(buf, n, "%.2fM", v / 1e6);
	else if (v >= 1e3)
		snprintf(buf, n, "%.1fk", v / 1e3);
	else
		snprintf(buf, n, "%.0f", v);
	return buf;
}

const char *fmt_ns(double ns, char *buf, size_t n)
{
	if (isnan(ns))
		snprintf(buf, n, "n/a");
	else if (ns >= 1e6)
		snprintf(buf, n, "%.2f ms", ns / 1e6);
	else if (ns >= 1e4)
		snprintf(buf, n, "%.1f us", ns / 1e3);
	else
		snprintf(buf, n, "%.0f ns", ns);
	return buf;
}

/* A JSON number, or null for NaN. */
void json_num(double v)
{
	if (isnan(v) || isinf(v))
		printf("null");
	else if (v < 9e15 && v > -9e15 && v == (double)(int64_t)v)
		printf("%lld", (long long)v);
	else
		printf("%.6g", v);
}
