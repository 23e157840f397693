/* SPDX-License-Identifier: MIT */
/*
 * Checks of application memory the library will touch later or on another thread (user fences,
 * MAP_USERPTR memory), so that a bad address is an errno at the call, not a crash afterwards.
 * Each is a point-in-time check: the application keeps the memory as it was until the library
 * is done with it (docs/UAPI.md).
 */
#ifndef VMB_CORE_HOSTMEM_H
#define VMB_CORE_HOSTMEM_H

#include <stdbool.h>
#include <stdint.h>

/*
 * 0 if every page of [@addr, @addr + @len) is mapped and allows reads (and writes if @write),
 * else -EFAULT. The pages are faulted in, as the access will need them. @addr page-aligned.
 */
int vmb_host_check(uint64_t addr, uint64_t len, bool write);

/*
 * Whether the 8-byte word at @addr (8-byte aligned) may be written now. Changes nothing. A word
 * of the main program's writable data (vmb_host_word_in_data) is, without a system call; any
 * other takes one (an atomic add of 0 by the kernel).
 */
bool vmb_host_word_writable(uint64_t addr);

/*
 * Whether the 8-byte word at @addr lies in the main program's writable data: its .data and .bss
 * (the PF_W load segments less RELRO), mapped readable and writable from exec to exit. Known
 * without a system call: the segments are read once, from the program headers. Only an
 * mprotect() or munmap() of its own data by the program itself would make this wrong, and that
 * is not seen (docs/UAPI.md). Shared libraries' data is not included (dlclose unmaps it).
 */
bool vmb_host_word_in_data(uint64_t addr);

#endif
