/* SPDX-License-Identifier: MIT */
/* Backends and the process's device instances; the design and the lock are in registry.h. */
#include "dev/registry.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <vmbind/client.h>

#include "core/list.h"
#include "dev/core.h"

/* Each backend defines its descriptor in its own folder. */
extern const struct vmb_backend vmb_backend_soft;
#ifdef VMB_HAVE_CUDA
extern const struct vmb_backend vmb_backend_cuda;
#else

/* A backend this build does not include: listed, never available. */
static int not_built(const char **reason)
{
	*reason = "not built";
	return -ENODEV;
}
static int no_create(const struct vmb_client_opts *opts, struct vmb_device **out)
{
	(void)opts;
	(void)out;
	return -ENODEV;
}
static const struct vmb_backend vmb_backend_cuda = {.name = "cuda", .probe = not_built, .create = no_create};
#endif

static const struct vmb_backend *const backends[] = {&vmb_backend_soft, &vmb_backend_cuda};

const struct vmb_backend *vmb_backend_at(uint32_t i)
{
	return i < sizeof(backends) / sizeof(backends[0]) ? backends[i] : NULL;
}

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct vmb_list instances = {&instances, &instances};
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void fork_prepare(void) { pthread_mutex_lock(&reg_lock); }
static void fork_parent(void) { pthread_mutex_unlock(&reg_lock); }
static void fork_child(void)
{
	/* the parent's instances stay as inherited memory; the child starts with none */
	pthread_mutex_init(&reg_lock, NULL);
	vmb_list_init(&instances);
}
static int atfork_err;
static void atfork_register(void) { atfork_err = pthread_atfork(fork_prepare, fork_parent, fork_child); }

/* "name" or "name:N" (N decimal, no sign, no leading zero, <= VMB_DEVICE_INSTANCE_MAX): the
 * backend and N, or -ENODEV. */
static int parse_name(const char *name, const struct vmb_backend **be, uint32_t *n)
{
	const char *colon = strchr(name, ':');
	size_t len = colon ? (size_t)(colon - name) : strlen(name);
	const struct vmb_backend *b;

	*be = NULL;
	for (uint32_t i = 0; (b = vmb_backend_at(i)); i++)
		if (strlen(b->name) == len && !memcmp(b->name, name, len))
			*be = b;
	if (!*be)
		return -ENODEV;
	*n = 0;
	if (!colon)
		return 0;
	const char *d = colon + 1;
	if (!*d || (d[0] == '0' && d[1]))
		return -ENODEV;
	for (; *d; d++) {
		if (*d < '0' || *d > '9')
			return -ENODEV;
		*n = *n * 10 + (uint32_t)(*d - '0');
		if (*n > VMB_DEVICE_INSTANCE_MAX)
			return -ENODEV;
	}
	return 0;
}

/* A non-zero setting of @o that differs from the live instance's. */
static bool conflicts(const struct vmb_device *dev, const struct vmb_client_opts *o)
{
	return (o->vram_size && o->vram_size != dev->region_capacity[VMB_REGION_VRAM]) ||
	       (o->system_size && o->system_size != dev->region_capacity[VMB_REGION_SYSTEM]) ||
	       (o->pt_pool_size && o->pt_pool_size != dev->pt_pool_size) ||
	       (o->job_timeout_ms && (int64_t)o->job_timeout_ms * 1000000 != dev->job_timeout_ns) ||
	       (o->min_page_size && o->min_page_size != dev->min_page_size) ||
	       /* discrete: VRAM that the CPU cannot map (dev->caps has no VMB_CAP_VRAM_CPU_MAP) */
	       ((o->flags & VMB_CLIENT_OPEN_DISCRETE) && (dev->caps & VMB_CAP_VRAM_CPU_MAP));
}

int vmb_device_attach(const char *name, const struct vmb_client_opts *opts, struct vmb_device **out)
{
	const struct vmb_backend *be;
	const char *reason;
	struct vmb_device *dev = NULL;
	struct vmb_list *pos;
	uint32_t n;
	int err;

	if ((err = parse_name(name ? name : "soft", &be, &n)))
		return err;
	pthread_once(&atfork_once, atfork_register);
	if (atfork_err)
		return -atfork_err;
	pthread_mutex_lock(&reg_lock);
	vmb_list_for_each(pos, &instances) {
		struct vmb_device *d = vmb_container_of(pos, struct vmb_device, reg_link);
		if (d->backend == be && d->instance == n)
			dev = d;
	}
	if (dev) {
		err = opts && conflicts(dev, opts) ? -EBUSY : 0;
		if (!err)
			dev->users++;
	} else if ((err = be->probe(&reason))) {
		/* a backend that cannot run here says why (vmb_backend_query has it too) */
		fprintf(stderr, "vmbind: cannot open %s: %s\n", name ? name : "soft", reason);
	} else if (!(err = be->create_at ? be->create_at(opts, n, &dev) : be->create(opts, &dev))) {
		if ((err = vmb_device_core_init(dev, opts))) {
			dev->ops->destroy(dev);
		} else {
			dev->backend = be;
			dev->instance = n;
			dev->users = 1;
			vmb_list_add_tail(&dev->reg_link, &instances);
		}
	}
	pthread_mutex_unlock(&reg_lock);
	if (!err)
		*out = dev;
	return err;
}

void vmb_device_get(struct vmb_device *dev)
{
	pthread_mutex_lock(&reg_lock);
	dev->users++;
	pthread_mutex_unlock(&reg_lock);
}

void vmb_device_put(struct vmb_device *dev)
{
	pthread_mutex_lock(&reg_lock);
	bool last = --dev->users == 0;
	if (last)
		vmb_list_del(&dev->reg_link);
	pthread_mutex_unlock(&reg_lock);
	if (last) {
		vmb_device_core_fini(dev);
		dev->ops->destroy(dev);
	}
}
