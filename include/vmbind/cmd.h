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
 * Either way the exec queue is banned: later execs on it fail with -ECANCELED. A fault is also
 * kept in the vm's fault log (vm.h, vmb_vm_query_faults).
 *
 * An exec queue created with VMB_EXEC_QUEUE_CMDSET_INTEL runs Intel's MI commands instead
 * (VMB_MI_*, at the end of this header).
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

/*
 * The Intel command set of an exec queue created with VMB_EXEC_QUEUE_CMDSET_INTEL (docs/COMMANDS.md,
 * "The Intel command set"): little-endian dwords, a header dword then its operands, the batch
 * 4-byte aligned. An address is two dwords, low then high: bits 0-47, and bits 48-63 either 0 or
 * the sign extension of bit 47 (the canonical form: vmb_mi_canonical()). Any other header, a
 * misaligned address or an address with other top bits is malformed (-EINVAL, the queue banned).
 *
 *   header                        operands                 effect
 *   VMB_MI_NOOP                   -                        nothing
 *   VMB_MI_BATCH_BUFFER_END       -                        the job is done
 *   VMB_MI_ARB_CHECK              -                        ends the job's time slice
 *   VMB_MI_STORE_DWORD_IMM        addr lo, hi, value       *(u32 *)addr = value (4-aligned)
 *   VMB_MI_STORE_QWORD_IMM        addr lo, hi, lo, hi      *(u64 *)addr = value (8-aligned)
 *   VMB_MI_COND_BATCH_BUFFER_END  data, addr lo, hi        | VMB_MI_COMPARE_*: the job goes on
 *     while (*(u32 *)addr OP data) holds (4-aligned; unsigned), and ends (as BATCH_BUFFER_END)
 *     once it does not: with VMB_MI_COMPARE_GT (0) and data 0, it ends when the dword is 0
 *   VMB_MI_BATCH_BUFFER_START     addr lo, hi              the next command is at addr (a jump:
 *     first level only; 4-aligned)
 *   VMB_MI_SEMAPHORE_WAIT         data, addr lo, hi        | VMB_MI_COMPARE_*: polls until
 *     (*(u32 *)addr OP data) holds (4-aligned; unsigned), as SEM_WAIT
 */
#define VMB_MI_NOOP 0x00000000u
#define VMB_MI_ARB_CHECK 0x02800000u
#define VMB_MI_BATCH_BUFFER_END 0x05000000u
#define VMB_MI_SEMAPHORE_WAIT 0x0e008002u        /* MI_SEMAPHORE_WAIT, polling mode, length 2 */
#define VMB_MI_STORE_DWORD_IMM 0x10000002u
#define VMB_MI_STORE_QWORD_IMM 0x10200003u
#define VMB_MI_BATCH_BUFFER_START 0x18800101u    /* PPGTT, length 1 */
#define VMB_MI_COND_BATCH_BUFFER_END 0x1b200002u /* with compare, length 2 */
/* The comparison of COND_BATCH_BUFFER_END and SEMAPHORE_WAIT (bits 12-14): memory OP data. */
#define VMB_MI_COMPARE_GT (0u << 12)
#define VMB_MI_COMPARE_GTE (1u << 12)
#define VMB_MI_COMPARE_LT (2u << 12)
#define VMB_MI_COMPARE_LTE (3u << 12)
#define VMB_MI_COMPARE_EQ (4u << 12)
#define VMB_MI_COMPARE_NEQ (5u << 12)

/* @va (below 2^48) in the canonical form: bits 48-63 copy bit 47. */
static inline uint64_t vmb_mi_canonical(uint64_t va)
{
	return (va & (1ull << 47)) ? va | 0xffff000000000000ull : va;
}

#ifdef __cplusplus
}
#endif
#endif
