/* SPDX-License-Identifier: MIT */
/*
 * Helpers shared by the entry points: every public call checks its struct field by field
 * (reserved and pad zero, known flags), then takes the device lock, looks up handles, and
 * dispatches. Errors return before anything changes.
 */
#ifndef VMB_UAPI_UAPI_H
#define VMB_UAPI_UAPI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/client.h"

static inline bool vmb_all_zero(const void *p, size_t n)
{
	const uint8_t *b = p;
	for (size_t i = 0; i < n; i++)
		if (b[i])
			return false;
	return true;
}
#define VMB_ZERO(field) vmb_all_zero(&(field), sizeof(field))

static inline void vmb_lock(struct vmb_client *c) { vmb_dev_lock(c->dev); }
static inline void vmb_unlock(struct vmb_client *c) { vmb_dev_unlock(c->dev); }

/* a + b without wrapping past 2^64; false on overflow */
static inline bool vmb_add_ok(uint64_t a, uint64_t b, uint64_t *sum)
{
	return !__builtin_add_overflow(a, b, sum);
}

#define VMB_PAGE_MASK 4095ull

/* uapi/bo.c: at close, unmap every CPU mapping the application left (device lock held). */
void vmb_bo_cpu_maps_release(struct vmb_client *c);

#endif
