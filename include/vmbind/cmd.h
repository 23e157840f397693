/* SPDX-License-Identifier: MIT */
/*
 * The soft GPU's command set: what an exec's command buffer holds. The engine fetches the buffer
 * through the vm's page tables at the exec's GPU VA, as hardware does, and runs commands until
 * BATCH_END. Every address in a command is a GPU VA of the same vm.
 *
 * Encoding: a command is a header word (u64) followed by its operands (u64 each):
 *   header = opcode (bits 0-7) | sub-op (bits 8-15, SEM_WAIT's compare op) | 0 (bits 16-63)
 *
 *   opcode             operands                       effect
 *   NOOP               -                              nothing
 *   STORE32            addr, value                    *(u32 *)addr = value (4-byte aligned)
 *   STORE64            addr, value                    *(u64 *)addr = value (8-byte aligned)
 *   COPY               dst, src, size                 copy size bytes, in ascending 4 KiB
 *                                                     pieces (overlap: docs/COMMANDS.md)
 *   FILL               dst, size, value               size bytes (multiple of 4, dst 4-aligned)
 *                                                     of the low 32 bits of value repeated
 *   ATOMIC_ADD         addr, value                    *(u64 *)addr += value, atomically (8-aligned)
 *   SEM_WAIT           addr, value, mask              wait until (*(u64 *)addr & mask) OP
 *                                                     (value & mask), OP = VMB_UFENCE_OP_* in
 *                                                     the sub-op; the engine runs other queues
 *                                                     meanwhile
 *   UFENCE_SIGNAL      addr, value                    *(u64 *)addr = value (8-aligned), then
 *                                                     wake CPU waiters (vmb_user_fence_wait)
 *   DELAY              ns                             the engine is busy for ns (modelled work,
 *                                                     time-sliced with the engine's other queues)
 *
 * Work: an engine runs its jobs in time slices of work (bytes touched: 1 KiB per command,
 * FILL's bytes, COPY's bytes read and written, DELAY 2 bytes per ns), 1 MiB each; a FILL or
 * COPY of any size spans as many slices as it needs. The job timeout counts the larger of the
 * job's wall-clock time and its work's modelled time (2 GB/s). See docs/COMMANDS.md.
 *   BATCH_END          -                              the job is done
 *
 * A fault (an address not mapped in a vm without a scratch page, a write to a READONLY
 * mapping, a command buffer that runs off its mapping) ends the job with -EFAULT; a malformed
 * command (unknown opcode, non-zero reserved bits, misalignment, bad sub-op) with -EINVAL.
 * Either way the exec queue is banned: later execs on it fail with -ECANCELED.
 */
#ifndef VMBIND_CMD_H
#define VMBIND_CMD_H

#include <vmbind/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define VMB_CMD_NOOP 0x00u
#define VMB_CMD_STORE32 0x01u
#define VMB_CMD_STORE64 0x02u
#define VMB_CMD_COPY 0x03u
#define VMB_CMD_FILL 0x04u
#define VMB_CMD_ATOMIC_ADD 0x05u
#define VMB_CMD_SEM_WAIT 0x06u
#define VMB_CMD_UFENCE_SIGNAL 0x07u
#define VMB_CMD_DELAY 0x08u
#define VMB_CMD_BATCH_END 0x0fu

#define VMB_CMD_HEADER(op, sub) ((uint64_t)(op) | (uint64_t)(sub) << 8)

/*
 * Writing a command buffer: vmb_cmd_*() append to @b (a CPU pointer to the buffer, e.g. a BO's
 * CPU mapping) at word *@n and advance *@n. The caller sizes the buffer.
 */
static inline void vmb_cmd_emit(uint64_t *b, uint32_t *n, uint64_t w) { b[(*n)++] = w; }

static inline void vmb_cmd_store64(uint64_t *b, uint32_t *n, uint64_t addr, uint64_t value)
{
	vmb_cmd_emit(b, n, VMB_CMD_HEADER(VMB_CMD_STORE64, 0));
	vmb_cmd_emit(b, n, addr);
	vmb_cmd_emit(b, n, value);
}
static inline void vmb_cmd_store32(uint64_t *b, uint32_t *n, uint64_t addr, uint32_t value)
{
	vmb_cmd_emit(b, n, VMB_CMD_HEADER(VMB_CMD_STORE32, 0));
	vmb_cmd_emit(b, n, addr);
	vmb_cmd_emit(b, n, value);
}
static inline void vmb_cmd_copy(uint64_t *b, uint32_t *n, uint64_t dst, uint64_t src, uint64_t size)
{
	vmb_cmd_emit(b, n, VMB_CMD_HEADER(VMB_CMD_COPY, 0));
	vmb_cmd_emit(b, n, dst);
	vmb_cmd_emit(b, n, src);
	vmb_cmd_emit(b, n, size);
}
static inline void vmb_cmd_fill(uint64_t *b, uint32_t *n, uint64_t dst, uint64_t size, uint32_t value)
{
	vmb_cmd_emit(b, n, VMB_CMD_HEADER(VMB_CMD_FILL, 0));
	vmb_cmd_emit(b, n, dst);
	vmb_cmd_emit(b, n, size);
	vmb_cmd_emit(b, n, value);
}
static inline void vmb_cmd_atomic_add(uint64_t *b, uint32_t *n, uint64_t addr, uint64_t value)
{
	vmb_cmd_emit(b, n, VMB_CMD_HEADER(VMB_CMD_ATOMIC_ADD, 0));
	vmb_cmd_emit(b, n, addr);
	vmb_cmd_emit(b, n, value);
}
static inline void vmb_cmd_sem_wait(uint64_t *b, uint32_t *n, uint64_t addr, uint32_t op, uint64_t value,
				    uint64_t mask)
{
	vmb_cmd_emit(b, n, VMB_CMD_HEADER(VMB_CMD_SEM_WAIT, op));
	vmb_cmd_emit(b, n, addr);
	vmb_cmd_emit(b, n, value);
	vmb_cmd_emit(b, n, mask);
}
static inline void vmb_cmd_ufence_signal(uint64_t *b, uint32_t *n, uint64_t addr, uint64_t value)
{
	vmb_cmd_emit(b, n, VMB_CMD_HEADER(VMB_CMD_UFENCE_SIGNAL, 0));
	vmb_cmd_emit(b, n, addr);
	vmb_cmd_emit(b, n, value);
}
static inline void vmb_cmd_delay(uint64_t *b, uint32_t *n, uint64_t ns)
{
	vmb_cmd_emit(b, n, VMB_CMD_HEADER(VMB_CMD_DELAY, 0));
	vmb_cmd_emit(b, n, ns);
}
static inline void vmb_cmd_end(uint64_t *b, uint32_t *n) { vmb_cmd_emit(b, n, VMB_CMD_HEADER(VMB_CMD_BATCH_END, 0)); }

#ifdef __cplusplus
}
#endif
#endif
