/* SPDX-License-Identifier: MIT */
/* The user-fence comparison, shared by CPU waits and the GPU's SEM_WAIT; a job's out user fence. */
#ifndef VMB_SYNC_UFENCE_H
#define VMB_SYNC_UFENCE_H

#include <stdbool.h>
#include <stdint.h>
#include <vmbind/sync.h>

/* A user fence an out-sync writes: @value at @addr once the job is over. */
struct vmb_bo;
struct vmb_ufence_out {
	uint64_t addr, value;
	struct vmb_bo *bo; /* a fence in a BO: a pin on its pages (mem/bo.h), held until freed
			    * (vmb_ufences_free, vm/vm.h) */
};

/* (@v & @mask) OP (@value & @mask), OP a valid VMB_UFENCE_OP_*. */
static inline bool vmb_ufence_passes(uint32_t op, uint64_t v, uint64_t value, uint64_t mask)
{
	v &= mask;
	value &= mask;
	switch (op) {
	case VMB_UFENCE_OP_EQ: return v == value;
	case VMB_UFENCE_OP_NEQ: return v != value;
	case VMB_UFENCE_OP_GT: return v > value;
	case VMB_UFENCE_OP_GTE: return v >= value;
	case VMB_UFENCE_OP_LT: return v < value;
	default: return v <= value;
	}
}

#endif
