/* SPDX-License-Identifier: MIT */
/*
 * Description: the checks of application memory (core/hostmem.c). vmb_host_word_in_data()
 * knows the main program's writable data (.data, .bss) without a system call, and nothing else:
 * not its read-only data, not RELRO (read-only after relocation), not the stack, the heap or an
 * mmap. vmb_host_word_writable() answers for every kind: true for the program's data, the stack,
 * the heap and a writable map; false for read-only data, RELRO, read-only and PROT_NONE maps and
 * an unmapped address (the system call's answer there).
 */
#include "lib/harness.h"

#include <stdlib.h>
#include <sys/mman.h>

#include "core/hostmem.h"

static uint64_t bss_word;                    /* .bss */
static uint64_t data_word = 7;               /* .data */
static const uint64_t rodata_word = 9;       /* .rodata: never writable */
static uint64_t *const relro_word = &bss_word; /* a relocated const: RELRO in a PIE (else .rodata) */
/* the volatile pointers keep the compiler from folding the addresses' uses away */
static const uint64_t *volatile rodata_ptr = &rodata_word;
static uint64_t *const *volatile relro_ptr = &relro_word;

static uint64_t addr(const volatile void *p)
{
	return (uint64_t)(uintptr_t)p;
}

static void test_in_data(void **state)
{
	(void)state;
	uint64_t stack_word = 0;
	uint64_t *heap = malloc(64);
	assert_non_null(heap);
	assert_true(vmb_host_word_in_data(addr(&bss_word)));
	assert_true(vmb_host_word_in_data(addr(&data_word)));
	assert_false(vmb_host_word_in_data(addr(rodata_ptr)));
	assert_false(vmb_host_word_in_data(addr(relro_ptr)));
	assert_false(vmb_host_word_in_data(addr(&stack_word)));
	assert_false(vmb_host_word_in_data(addr(heap)));
	assert_false(vmb_host_word_in_data(8));
	assert_false(vmb_host_word_in_data(UINT64_MAX - 7));
	free(heap);
}

static void test_writable(void **state)
{
	(void)state;
	uint64_t stack_word = 0;
	uint64_t *heap = malloc(64);
	void *rw = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	void *ro = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	void *none = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(heap && rw != MAP_FAILED && ro != MAP_FAILED && none != MAP_FAILED);
	assert_true(vmb_host_word_writable(addr(&bss_word)));
	assert_true(vmb_host_word_writable(addr(&data_word)));
	assert_true(vmb_host_word_writable(addr(&stack_word)));
	assert_true(vmb_host_word_writable(addr(heap)));
	assert_true(vmb_host_word_writable(addr(rw)));
	assert_false(vmb_host_word_writable(addr(rodata_ptr)));
	assert_false(vmb_host_word_writable(addr(relro_ptr)));
	assert_false(vmb_host_word_writable(addr(ro)));
	assert_false(vmb_host_word_writable(addr(none)));
	assert_false(vmb_host_word_writable(8));
	/* the check changes nothing */
	assert_int_equal(data_word, 7);
	assert_int_equal(*rodata_ptr, 9);
	munmap(rw, 4096);
	assert_false(vmb_host_word_writable(addr(rw)));
	munmap(ro, 4096);
	munmap(none, 4096);
	free(heap);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_in_data),
		cmocka_unit_test(test_writable),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
