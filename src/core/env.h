/* SPDX-License-Identifier: MIT */
/*
 * Environment knobs: every variable the library reads from the environment, with its bounds and
 * default, in one table (env.c), parsed by one function. docs/UAPI.md ("Environment") is the
 * user's copy of the table.
 *
 * A knob that is unset or empty takes its default. A set knob must be a plain decimal number
 * (sizes may end in K, M or G), without sign, blanks or other characters, within the knob's
 * bounds and, for sizes, a multiple of its unit. Anything else is -EINVAL from
 * vmb_client_open(), with one line on stderr naming the variable, its value and what it accepts:
 * a mistyped setting fails loudly instead of running with a value nobody asked for.
 *
 * No state and no lock: every lookup reads the environment again (at vmb_client_open()).
 */
#ifndef VMB_CORE_ENV_H
#define VMB_CORE_ENV_H

#include <stdbool.h>
#include <stdint.h>

enum vmb_env_knob {
	VMB_ENV_SOFT_VRAM,      /* bytes of the soft device's VRAM region */
	VMB_ENV_SOFT_SYSTEM,    /* bytes of its SYSTEM region */
	VMB_ENV_SOFT_PT_POOL,   /* bytes of its page-table pool */
	VMB_ENV_JOB_TIMEOUT_MS, /* GPU job timeout outside LR vms */
	VMB_ENV_SCHED_WORKERS,  /* scheduler worker threads per device */
	VMB_ENV_SCHED_SPIN_US,  /* how long an idle worker polls before it sleeps */
	VMB_ENV_SOFT_DISCRETE,  /* 1: the soft device's discrete shape (VMB_CLIENT_OPEN_DISCRETE) */
	VMB_ENV_COUNT
};

struct vmb_env_knob_info {
	const char *name;
	uint64_t min, max; /* inclusive */
	uint64_t def;      /* unset or empty */
	uint64_t align;    /* the value is a multiple of it (1: any) */
	bool size;         /* bytes: a K, M or G suffix is allowed */
	const char *unit;  /* for messages */
};

extern const struct vmb_env_knob_info vmb_env_knobs[VMB_ENV_COUNT];

/* Parses @s (the whole string) as a knob value: 0, or -EINVAL (empty, sign, blank, a character
 * that is not a digit or, with @size, one K/M/G suffix at the end), or -ERANGE (above 2^64 - 1). */
int vmb_env_parse(const char *s, bool size, uint64_t *out);

/* @v within knob @k's bounds and a multiple of its unit: 0 or -EINVAL. */
int vmb_env_check(enum vmb_env_knob k, uint64_t v);

/* Knob @k's value from the environment, or its default when unset or empty: 0, or -EINVAL (a
 * message on stderr says which variable, its value and what it accepts). */
int vmb_env_get(enum vmb_env_knob k, uint64_t *out);

#endif
