/* SPDX-License-Identifier: MIT */
/*
 * Backends and device instances.
 *
 * The backend registry is a fixed table of what this build knows (registry.c): a name, a probe
 * (can it run here: 0, or -ENODEV with a reason) and a create. Each backend defines its own
 * descriptor in its folder (the soft one in dev/soft/soft.c); nothing outside src/dev/<backend>/
 * includes a backend's headers.
 *
 * Device instances are per process and shared: vmb_device_attach() gives the caller the live
 * instance of a name ("soft" = "soft:0", "soft:N" for 0 <= N <= VMB_DEVICE_INSTANCE_MAX), making
 * it on first use. An instance counts its users: each attached client and each exported BO
 * descriptor (uapi/prime.c); the last vmb_device_put() takes it off the list and destroys it
 * (core teardown, then the backend's destroy). Objects (BOs, vms) hold what they need of the
 * device; they live no longer than their last user (a client's close drops its objects; an
 * export holds its BO).
 *
 * Locking: one process-wide mutex protects the instance list and every instance's `users`
 * and `reg_link`. It is held while an instance is created (two first opens make one device),
 * never while one is destroyed. fork(): pthread_atfork handlers take it before the fork and
 * release it in the parent; the child gets a fresh unlocked mutex and an empty list (the
 * parent's instances, whose threads do not exist in the child, are left as inherited memory), so a child's
 * first open makes a new instance.
 */
#ifndef VMB_DEV_REGISTRY_H
#define VMB_DEV_REGISTRY_H

#include <stdint.h>

struct vmb_device;
struct vmb_client_opts;

/* The largest N of "name:N". */
#define VMB_DEVICE_INSTANCE_MAX 63u

struct vmb_backend {
	const char *name;
	/* 0 if the backend can run here, else -ENODEV and *@reason (a static string) */
	int (*probe)(const char **reason);
	/* a new device of this backend (without the core: vmb_device_core_init() is the registry's) */
	int (*create)(const struct vmb_client_opts *opts, struct vmb_device **out);
	/* instead of create, for a backend whose instance N is a device of its own (cuda:N):
	 * -ENODEV (with a line on stderr) if it has no device N */
	int (*create_at)(const struct vmb_client_opts *opts, uint32_t n, struct vmb_device **out);
};

/* Backend @i of the table, or NULL past its end. */
const struct vmb_backend *vmb_backend_at(uint32_t i);

/*
 * The process's instance of @name (NULL: "soft"), a new user of it: 0; -ENODEV (malformed name,
 * unknown or unavailable backend); -EBUSY (@opts conflicts with the live instance: a non-zero
 * size or timeout of @opts that differs from the instance's); what create and core init return.
 */
int vmb_device_attach(const char *name, const struct vmb_client_opts *opts, struct vmb_device **out);
/* One more user of a device that has one (an export). */
void vmb_device_get(struct vmb_device *dev);
/* One user fewer; the last one destroys the device (never call with the device lock held). */
void vmb_device_put(struct vmb_device *dev);

#endif
