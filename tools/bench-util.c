/* SPDX-License-Identifier: MIT */
/* What the benchmarks share: clocks, statistics, number formatting, the machine and the build. */
#include "bench-util.h"

#include <math.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

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

void json_num_array(const double *v, size_t n)
{
	printf("[");
	for (size_t i = 0; i < n; i++) {
		printf("%s", i ? "," : "");
		json_num(v[i]);
	}
	printf("]");
}

#ifndef VMB_BUILDTYPE
#define VMB_BUILDTYPE "unknown"
#endif
#ifndef VMB_OPTIMIZATION
#define VMB_OPTIMIZATION "unknown"
#endif

struct machine {
	char cpu[128], kernel[160];
	long online, usable;
};

static void machine_read(struct machine *m)
{
	snprintf(m->cpu, sizeof(m->cpu), "unknown");
	FILE *f = fopen("/proc/cpuinfo", "r");
	char line[256];
	while (f && fgets(line, sizeof(line), f)) {
		char *colon = strchr(line, ':');
		if (strncmp(line, "model name", 10) || !colon)
			continue;
		colon += 1 + (colon[1] == ' ');
		colon[strcspn(colon, "\n")] = 0;
		snprintf(m->cpu, sizeof(m->cpu), "%s", colon);
		break;
	}
	if (f)
		fclose(f);
	m->online = sysconf(_SC_NPROCESSORS_ONLN);
	cpu_set_t set;
	m->usable = sched_getaffinity(0, sizeof(set), &set) ? m->online : CPU_COUNT(&set);
	struct utsname u;
	if (uname(&u))
		snprintf(m->kernel, sizeof(m->kernel), "unknown");
	else
		snprintf(m->kernel, sizeof(m->kernel), "%s %s", u.sysname, u.release);
}

static int ndebug(void)
{
#ifdef NDEBUG
	return 1;
#else
	return 0;
#endif
}

static const char *compiler(void)
{
#if defined(__clang__)
	return "clang " __clang_version__;
#elif defined(__GNUC__)
	return "gcc " __VERSION__;
#else
	return "unknown";
#endif
}

void bench_print_machine(void)
{
	struct machine m;
	machine_read(&m);
	printf("machine: %s, %ld CPUs online, %ld usable, %s\n", m.cpu, m.online, m.usable, m.kernel);
	printf("build: buildtype %s, optimization %s, %s, %s\n", VMB_BUILDTYPE, VMB_OPTIMIZATION,
	       ndebug() ? "NDEBUG (assertions off)" : "assertions on", compiler());
}

/* @s as a JSON string (the few characters that need escaping here: quote and backslash). */
static void json_str(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			putchar('\\');
		if ((unsigned char)*s >= 0x20)
			putchar(*s);
	}
	putchar('"');
}

void bench_json_machine(void)
{
	struct machine m;
	machine_read(&m);
	printf("\"machine\":{\"cpu\":");
	json_str(m.cpu);
	printf(",\"cpus_online\":%ld,\"cpus_usable\":%ld,\"kernel\":", m.online, m.usable);
	json_str(m.kernel);
	printf("},\"build\":{\"buildtype\":");
	json_str(VMB_BUILDTYPE);
	printf(",\"optimization\":");
	json_str(VMB_OPTIMIZATION);
	printf(",\"ndebug\":%s,\"compiler\":", ndebug() ? "true" : "false");
	json_str(compiler());
	printf("},");
}
