/* SPDX-License-Identifier: MIT */
/* The per-thread list of held locks (core/lock.h); debug builds only. */
#include "core/lock.h"

#ifndef NDEBUG
#include <stdio.h>
#include <stdlib.h>

#define HELD_MAX 16 /* deepest nesting: device, vm, shared, and the leaf locks are not noted */

static _Thread_local VMB_TLS_FAST struct held {
	const void *l;
	enum vmb_lock_mode mode;
} held[HELD_MAX];
static _Thread_local VMB_TLS_FAST unsigned int nheld;

void vmb_lock_check(bool ok, const char *what, const char *func)
{
	if (!ok) {
		fprintf(stderr, "vmbind: %s: lock rule broken: %s\n", func, what);
		abort();
	}
}

enum vmb_lock_mode vmb_lock_mode(const void *l)
{
	for (unsigned int i = 0; i < nheld; i++)
		if (held[i].l == l)
			return held[i].mode;
	return VMB_LOCK_NONE;
}

void vmb_lock_note(const void *l, enum vmb_lock_mode mode)
{
	vmb_lock_check(vmb_lock_mode(l) == VMB_LOCK_NONE, "lock taken twice by one thread", "vmb_lock_note");
	vmb_lock_check(nheld < HELD_MAX, "too many locks held", "vmb_lock_note");
	held[nheld++] = (struct held){.l = l, .mode = mode};
}

void vmb_lock_unnote(const void *l)
{
	for (unsigned int i = nheld; i-- > 0;) {
		if (held[i].l == l) {
			held[i] = held[--nheld];
			return;
		}
	}
	vmb_lock_check(false, "lock released that the thread does not hold", "vmb_lock_unnote");
}
#endif
