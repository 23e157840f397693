/* SPDX-License-Identifier: MIT */
/* What the benchmarks share (bench-util.c). */
#ifndef VMB_TOOLS_BENCH_UTIL_H
#define VMB_TOOLS_BENCH_UTIL_H

#include <stddef.h>
#include <stdint.h>

uint64_t now_ns(void);                          /* CLOCK_MONOTONIC */
int cmp_double(const void *a, const void *b);   /* for qsort */
double median_double(double *v, size_t n);      /* sorts v */
double timer_overhead_ns(void);                 /* a clock_gettime() pair */
const char *fmt_rate(double v, char *buf, size_t n); /* "1.23M" */
const char *fmt_ns(double ns, char *buf, size_t n);  /* "123 ns", "1.2 us", ... */
void json_num(double v);                        /* a JSON number, or null */
void json_num_array(const double *v, size_t n); /* [a,b,...] of json_num() */
/*
 * The machine and the build, printed by every benchmark: CPU model, CPUs online and usable,
 * kernel; meson's buildtype and optimization, NDEBUG, the compiler. bench_print_machine(): one
 * "machine: ..." and one "build: ..." line; bench_json_machine(): the keys
 * "machine":{"cpu","cpus_online","cpus_usable","kernel"},"build":{"buildtype","optimization",
 * "ndebug","compiler"} followed by a comma, to be put inside the benchmark's JSON object.
 */
void bench_print_machine(void);
void bench_json_machine(void);

#endif
