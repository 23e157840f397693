/* SPDX-License-Identifier: MIT */
#include "core/hostmem.h"

#include <errno.h>
#include <linux/futex.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#define PAGE 4096u

/*
 * MADV_POPULATE_READ/WRITE faults the range in as the access would: ENOMEM where nothing is
 * mapped, EINVAL where the protection forbids the access (or the mapping is device memory), or
 * where the kernel is older than 5.14 and knows neither advice. That last case is told apart by
 * asking for a page that is surely readable (the stack's); there only the older check remains:
 * mapped, whatever the protection (mincore() fails with ENOMEM on any page not mapped).
 */
int vmb_host_check(uint64_t addr, uint64_t len, bool write)
{
	if (!madvise((void *)(uintptr_t)addr, len, write ? MADV_POPULATE_WRITE : MADV_POPULATE_READ))
		return 0;
	if (errno != EINVAL)
		return -EFAULT;
	unsigned char probe[1] = {0};
	if (!madvise((void *)((uintptr_t)probe & ~(uintptr_t)(PAGE - 1)), PAGE, MADV_POPULATE_READ))
		return -EFAULT; /* the advice works: the range's protection (or kind) is the problem */
	unsigned char vec[1024];
	while (len) {
		uint64_t n = len < sizeof(vec) * PAGE ? len : sizeof(vec) * PAGE;
		if (mincore((void *)(uintptr_t)addr, n, vec) < 0)
			return -EFAULT;
		addr += n;
		len -= n;
	}
	return 0;
}

/*
 * A FUTEX_WAKE_OP that wakes nobody and adds 0 to the word's first half: the kernel does that
 * read-modify-write atomically (it changes nothing, also against a concurrent write of an earlier
 * fence at the same address) and fails with EFAULT unless the page is mapped writable. Private
 * futex keys need no page lookup: no mmap lock, cheaper than mincore() on the bind path.
 */
bool vmb_host_word_writable(uint64_t addr)
{
	uint32_t *w = (uint32_t *)(uintptr_t)addr;
	return syscall(SYS_futex, w, FUTEX_WAKE_OP | FUTEX_PRIVATE_FLAG, 0, (void *)0, w,
		       FUTEX_OP(FUTEX_OP_ADD, 0, FUTEX_OP_CMP_EQ, 0)) >= 0;
}
