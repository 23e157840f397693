/* SPDX-License-Identifier: MIT */
#include "core/hostmem.h"

#include <errno.h>
#include <link.h>
#include <linux/futex.h>
#include <pthread.h>
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
 * The main program's writable data: the PT_LOAD segments with PF_W (.data, .bss and what the
 * linker puts with them), less PT_GNU_RELRO, which the dynamic loader makes read-only after
 * relocation (taken out rounded out to whole pages, whatever the loader rounds). The kernel maps
 * them at exec and nothing unmaps them: the main program is never unloaded. Written once, under
 * data_once; read-only after it (pthread_once orders the reads).
 */
#define DATA_SPANS 4
struct data_span {
	uintptr_t lo, hi; /* [lo, hi) */
};
static struct data_span data_spans[DATA_SPANS];
static unsigned int data_nspans;
static pthread_once_t data_once = PTHREAD_ONCE_INIT;

static void data_span_add(uintptr_t lo, uintptr_t hi)
{
	if (lo < hi && data_nspans < DATA_SPANS) /* more: left out, those words take the check */
		data_spans[data_nspans++] = (struct data_span){lo, hi};
}

/* The first object dl_iterate_phdr() reports is the main program (also in a static one). */
static int data_of_main_program(struct dl_phdr_info *info, size_t size, void *arg)
{
	(void)size;
	(void)arg;
	uintptr_t rlo = 0, rhi = 0;
	for (unsigned int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type == PT_GNU_RELRO) {
			rlo = (info->dlpi_addr + ph->p_vaddr) & ~(uintptr_t)(PAGE - 1);
			rhi = (info->dlpi_addr + ph->p_vaddr + ph->p_memsz + PAGE - 1) & ~(uintptr_t)(PAGE - 1);
		}
	}
	for (unsigned int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_W) || !ph->p_memsz)
			continue;
		uintptr_t lo = info->dlpi_addr + ph->p_vaddr, hi = lo + ph->p_memsz;
		if (rhi <= lo || rlo >= hi) {
			data_span_add(lo, hi);
			continue;
		}
		data_span_add(lo, rlo); /* the parts on either side of RELRO */
		data_span_add(rhi, hi);
	}
	return 1; /* the main program only */
}

static void data_find(void)
{
	dl_iterate_phdr(data_of_main_program, NULL);
}

bool vmb_host_word_in_data(uint64_t addr)
{
	pthread_once(&data_once, data_find);
	for (unsigned int i = 0; i < data_nspans; i++) {
		if (addr >= data_spans[i].lo && addr < data_spans[i].hi && data_spans[i].hi - addr >= 8)
			return true;
	}
	return false;
}

/*
 * A FUTEX_WAKE_OP that wakes nobody and adds 0 to the word's first half: the kernel does that
 * read-modify-write atomically (it changes nothing, also against a concurrent write of an earlier
 * fence at the same address) and fails with EFAULT unless the page is mapped writable. Private
 * futex keys need no page lookup: no mmap lock, cheaper than mincore() on the bind path.
 */
bool vmb_host_word_writable(uint64_t addr)
{
	if (vmb_host_word_in_data(addr))
		return true;
	uint32_t *w = (uint32_t *)(uintptr_t)addr;
	return syscall(SYS_futex, w, FUTEX_WAKE_OP | FUTEX_PRIVATE_FLAG, 0, (void *)0, w,
		       FUTEX_OP(FUTEX_OP_ADD, 0, FUTEX_OP_CMP_EQ, 0)) >= 0;
}
