/* SPDX-License-Identifier: MIT */
/* Environment knobs: the table and the one parser (env.h says the rules). */
#include "core/env.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#define KiB (1ull << 10)
#define MiB (1ull << 20)
#define GiB (1ull << 30)

/* Keep docs/UAPI.md ("Environment") in step with this table. */
const struct vmb_env_knob_info vmb_env_knobs[VMB_ENV_COUNT] = {
	[VMB_ENV_SOFT_VRAM] = {"VMB_SOFT_VRAM", 2 * MiB, 1ull << 46, 1 * GiB, 2 * MiB, true, "bytes"},
	[VMB_ENV_SOFT_SYSTEM] = {"VMB_SOFT_SYSTEM", 4 * KiB, 1ull << 46, 1 * GiB, 4 * KiB, true, "bytes"},
	[VMB_ENV_SOFT_PT_POOL] = {"VMB_SOFT_PT_POOL", 64 * KiB, 1ull << 46, 256 * MiB, 4 * KiB, true, "bytes"},
	/* the bounds of struct vmb_client_opts.job_timeout_ms: ms * 10^6 fits in an int64_t */
	[VMB_ENV_JOB_TIMEOUT_MS] = {"VMB_JOB_TIMEOUT_MS", 1, UINT32_MAX, 5000, 1, false, "milliseconds"},
	/* struct vmb_sched holds at most 8 */
	[VMB_ENV_SCHED_WORKERS] = {"VMB_SCHED_WORKERS", 1, 8, 2, 1, false, "threads"},
	[VMB_ENV_SCHED_SPIN_US] = {"VMB_SCHED_SPIN_US", 0, 1000000, 50, 1, false, "microseconds"},
	[VMB_ENV_SOFT_DISCRETE] = {"VMB_SOFT_DISCRETE", 0, 1, 0, 1, false, "0: integrated, 1: discrete"},
};

int vmb_env_parse(const char *s, bool size, uint64_t *out)
{
	uint64_t v = 0;
	const char *p = s;

	if (*p < '0' || *p > '9')
		return -EINVAL; /* empty, a sign, a blank, a letter: strtoull would take "-1" and " 1" */
	for (; *p >= '0' && *p <= '9'; p++) {
		if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, (uint64_t)(*p - '0'), &v))
			return -ERANGE;
	}
	unsigned int shift = 0;
	if (size) {
		switch (*p) {
		case 'K': case 'k': shift = 10; p++; break;
		case 'M': case 'm': shift = 20; p++; break;
		case 'G': case 'g': shift = 30; p++; break;
		default: break;
		}
	}
	if (*p)
		return -EINVAL;
	if (v > UINT64_MAX >> shift)
		return -ERANGE;
	*out = v << shift;
	return 0;
}

int vmb_env_check(enum vmb_env_knob k, uint64_t v)
{
	const struct vmb_env_knob_info *i = &vmb_env_knobs[k];
	return v < i->min || v > i->max || v % i->align ? -EINVAL : 0;
}

int vmb_env_get(enum vmb_env_knob k, uint64_t *out)
{
	const struct vmb_env_knob_info *i = &vmb_env_knobs[k];
	const char *s = getenv(i->name);
	uint64_t v;

	if (!s || !*s) {
		*out = i->def;
		return 0;
	}
	int err = vmb_env_parse(s, i->size, &v);
	const char *why = err == -ERANGE ? "too large" : err ? "not a number" : "out of range";
	if (!err && !(err = vmb_env_check(k, v))) {
		*out = v;
		return 0;
	}
	fprintf(stderr, "vmbind: %s=\"%s\" is %s: it takes %llu to %llu (%s", i->name, s, why,
		(unsigned long long)i->min,
		(unsigned long long)i->max, i->unit);
	if (i->align > 1)
		fprintf(stderr, ", a multiple of %llu", (unsigned long long)i->align);
	fprintf(stderr, "%s); unset, the default is %llu\n", i->size ? "; suffix K, M or G allowed" : "",
		(unsigned long long)i->def);
	return -EINVAL;
}
