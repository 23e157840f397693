/* SPDX-License-Identifier: MIT */
#include "core/alloc.h"

#include <stdlib.h>

/* Countdown per thread: the allocation that brings it from 1 to 0 fails. */
static _Thread_local unsigned long fail_countdown;

static int should_fail(void)
{
	if (fail_countdown == 0)
		return 0;
	return --fail_countdown == 0;
}

void *vmb_malloc(size_t size)
{
	return should_fail() ? NULL : malloc(size);
}

void *vmb_calloc(size_t n, size_t size)
{
	return should_fail() ? NULL : calloc(n, size);
}

void *vmb_realloc(void *p, size_t size)
{
	return should_fail() ? NULL : realloc(p, size);
}

unsigned long vmb_alloc_fail_after(unsigned long nth)
{
	unsigned long left = fail_countdown;
	fail_countdown = nth;
	return left;
}
