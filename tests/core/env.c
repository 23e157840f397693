/* SPDX-License-Identifier: MIT */
/*
 * Description: the environment knobs' parser and bounds (core/env.c): every class of bad value
 * (empty, sign, blank, another base, junk, a suffix where none is allowed, 64-bit overflow of
 * the digits or of the suffix, out of range, misaligned) and the good ones, then each knob read
 * from the environment: unset or empty gives the default, a bad value -EINVAL. The uAPI side
 * (vmb_client_open with each knob) is in tests/uapi/objects.c.
 */
#include "lib/harness.h"

#include <errno.h>

#include "core/env.h"

static void test_parse(void **state)
{
	(void)state;
	static const struct {
		const char *s;
		bool size;
		int err;
		uint64_t v;
	} cases[] = {
		{"0", false, 0, 0},
		{"5000", false, 0, 5000},
		{"18446744073709551615", false, 0, UINT64_MAX},
		{"007", false, 0, 7},
		{"2M", true, 0, 2 * MiB},
		{"4k", true, 0, 4 * KiB},
		{"1G", true, 0, GiB},
		{"17179869183G", true, 0, 17179869183ull << 30},
		{"", false, -EINVAL, 0},
		{"-1", false, -EINVAL, 0},
		{"+1", false, -EINVAL, 0},
		{" 1", false, -EINVAL, 0},
		{"1 ", false, -EINVAL, 0},
		{"0x10", false, -EINVAL, 0},
		{"1e3", false, -EINVAL, 0},
		{"12abc", false, -EINVAL, 0},
		{"abc", false, -EINVAL, 0},
		{"2M", false, -EINVAL, 0},  /* a suffix on a knob that is not a size */
		{"2MB", true, -EINVAL, 0},
		{"2T", true, -EINVAL, 0},
		{"M", true, -EINVAL, 0},
		{"1.5G", true, -EINVAL, 0},
		{"18446744073709551616", false, -ERANGE, 0},
		{"99999999999999999999999", false, -ERANGE, 0},
		{"17179869184G", true, -ERANGE, 0},
		{"99999999999999999999G", true, -ERANGE, 0},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint64_t v = 12345;
		int err = vmb_env_parse(cases[i].s, cases[i].size, &v);
		if (err != cases[i].err || (!err && v != cases[i].v))
			fail_msg("\"%s\" (size %d): %d, %llu; want %d, %llu", cases[i].s, cases[i].size, err,
				 (unsigned long long)v, cases[i].err, (unsigned long long)cases[i].v);
		if (err)
			assert_int_equal(v, 12345); /* untouched */
	}
}

static void test_bounds(void **state)
{
	(void)state;
	for (int k = 0; k < VMB_ENV_COUNT; k++) {
		const struct vmb_env_knob_info *i = &vmb_env_knobs[k];
		assert_non_null(i->name);
		assert_int_equal(vmb_env_check(k, i->min), 0);
		assert_int_equal(vmb_env_check(k, i->max), 0);
		assert_int_equal(vmb_env_check(k, i->def), 0);
		if (i->min)
			assert_int_equal(vmb_env_check(k, i->min - 1), -EINVAL);
		if (i->max < UINT64_MAX)
			assert_int_equal(vmb_env_check(k, i->max + 1), -EINVAL);
		if (i->align > 1)
			assert_int_equal(vmb_env_check(k, i->min + i->align / 2), -EINVAL);
	}
	/* the job timeout in ns fits in an int64_t at its largest */
	assert_true(vmb_env_knobs[VMB_ENV_JOB_TIMEOUT_MS].max <= INT64_MAX / 1000000);
	assert_true(vmb_env_knobs[VMB_ENV_SCHED_SPIN_US].max <= INT64_MAX / 1000);
}

static void test_get(void **state)
{
	(void)state;
	for (int k = 0; k < VMB_ENV_COUNT; k++) {
		const struct vmb_env_knob_info *i = &vmb_env_knobs[k];
		uint64_t v = 1;
		unsetenv(i->name);
		assert_int_equal(vmb_env_get(k, &v), 0);
		assert_int_equal(v, i->def);
		setenv(i->name, "", 1);
		assert_int_equal(vmb_env_get(k, &v), 0);
		assert_int_equal(v, i->def);
		char buf[32];
		snprintf(buf, sizeof(buf), "%llu", (unsigned long long)i->max);
		setenv(i->name, buf, 1);
		assert_int_equal(vmb_env_get(k, &v), 0);
		assert_int_equal(v, i->max);
		static const char *const bad[] = {"junk", "-1", "99999999999999999999999"};
		for (size_t b = 0; b < sizeof(bad) / sizeof(bad[0]); b++) {
			setenv(i->name, bad[b], 1);
			v = 7;
			assert_int_equal(vmb_env_get(k, &v), -EINVAL);
			assert_int_equal(v, 7);
		}
		snprintf(buf, sizeof(buf), "%llu", (unsigned long long)i->max + 1);
		setenv(i->name, buf, 1);
		assert_int_equal(vmb_env_get(k, &v), -EINVAL);
		unsetenv(i->name);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_bounds),
		cmocka_unit_test(test_get),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
