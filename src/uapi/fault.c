/* SPDX-License-Identifier: MIT */
/*
 * Fault injection, the public face (include/vmbind/debug.h): validates an arming and passes it to
 * core/alloc.c, which owns the countdowns and the site records; lists the sites. Holds no lock and
 * no state of its own: the countdowns are per thread (COMMIT's process-wide, atomic) and the
 * sites' counters relaxed atomics, so the client is only entered, as every call does.
 */
#include <errno.h>
#include <stdatomic.h>
#include <string.h>
#include <vmbind/debug.h>

#include "core/alloc.h"
#include "uapi/uapi.h"

_Static_assert(VMB_INJECT_HOST_ALLOC == 1u << VMB_SITE_HOST_ALLOC, "class bits are 1 << site class");
_Static_assert(VMB_INJECT_HOST_MAP == 1u << VMB_SITE_HOST_MAP, "class bits are 1 << site class");
_Static_assert(VMB_INJECT_THREAD == 1u << VMB_SITE_THREAD, "class bits are 1 << site class");
_Static_assert(VMB_INJECT_PT_PAGE == 1u << VMB_SITE_PT_PAGE, "class bits are 1 << site class");
_Static_assert(VMB_INJECT_COMMIT == 1u << VMB_SITE_COMMIT, "class bits are 1 << site class");

#define HOST_CLASSES (VMB_INJECT_HOST_ALLOC | VMB_INJECT_HOST_MAP)

static bool arming_valid(const struct vmb_fault_inject *a)
{
	if (!VMB_ZERO(a->reserved))
		return false;
	if (!a->classes || (a->classes & ~HOST_CLASSES &&
			    a->classes != VMB_INJECT_THREAD && a->classes != VMB_INJECT_PT_PAGE &&
			    a->classes != VMB_INJECT_COMMIT))
		return false;
	if (a->nth ? a->flags != VMB_INJECT_ONCE && a->flags != VMB_INJECT_PERSISTENT : a->flags != 0)
		return false;
	if (a->classes == VMB_INJECT_COMMIT)
		return a->scope == VMB_INJECT_SCOPE_PROCESS &&
		       (a->nth ? a->error == -EIO || a->error == -ENOMEM : a->error == 0);
	return a->scope == VMB_INJECT_SCOPE_THREAD && a->error == 0;
}

VMB_ENTRY(vmb_debug_fault_inject, struct vmb_fault_inject, args)
{
	if (!arming_valid(args))
		return -EINVAL;
	vmb_sites_count(true);
	unsigned long injected = 0;
	args->left = vmb_fault_arm(args->classes, args->nth, args->flags == VMB_INJECT_PERSISTENT, args->error,
				   &injected);
	args->injected = injected;
	return 0;
}

/* Copies @src into @dst, keeping its tail if it is too long (a path's file name is its end). */
static void copy_tail(char *dst, size_t room, const char *src)
{
	size_t n = strlen(src);
	if (n >= room)
		src += n - (room - 1);
	memcpy(dst, src, strlen(src) + 1);
}

VMB_ENTRY(vmb_debug_fault_sites, struct vmb_fault_sites, args)
{
	if (args->flags & ~VMB_INJECT_SITES_RESET || !VMB_ZERO(args->reserved))
		return -EINVAL;
	if (args->num_sites && !args->sites)
		return -EFAULT;
	vmb_sites_count(true);
	struct vmb_alloc_site *b = vmb_sites_begin(), *e = vmb_sites_end();
	uint32_t i = 0;
	for (struct vmb_alloc_site *s = b; s < e && i < args->num_sites; s++, i++) {
		struct vmb_fault_site out = {
			.id = i,
			.site_class = 1u << s->cls,
			.hits = atomic_load_explicit(&s->hits, memory_order_relaxed),
			.line = s->line,
		};
		const char *src = strstr(s->file, "src/");
		copy_tail(out.file, sizeof(out.file), src ? src : s->file);
		strncpy(out.func, s->func, sizeof(out.func) - 1);
		int err = vmb_copy_to_app_u64(args->sites, i, &out, sizeof(out));
		if (err)
			return err;
	}
	if (args->flags & VMB_INJECT_SITES_RESET)
		vmb_sites_reset();
	args->num_sites = (uint32_t)(e - b);
	return 0;
}
