/* SPDX-License-Identifier: MIT */
#include "core/alloc.h"
#include "core/lock.h" /* VMB_TLS_FAST */

#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/*
 * A countdown (one per thread for host memory, threads and page-table pages): the hit of a site
 * of a class in @mask that brings it from 1 to 0 fails; with persist, that one and every later
 * one fail (firing) until the countdown is re-armed or disarmed.
 */
struct countdown {
	unsigned long left;
	unsigned long injected; /* failures since the last arming */
	unsigned int mask;      /* 1 << enum vmb_site_class */
	bool persist;
	bool firing;
};

static _Thread_local VMB_TLS_FAST struct countdown host_cd, thread_cd, pt_cd;

#define HOST_MASK ((1u << VMB_SITE_HOST_ALLOC) | (1u << VMB_SITE_HOST_MAP))

/* Whether hits are counted (see alloc.h); set once by the first debug call, never cleared. */
static atomic_bool counting;

static void site_hit(struct vmb_alloc_site *s)
{
	/* A relaxed load and store, not an atomic add: no locked instruction on a path every bind
	 * takes; two threads racing on one site may lose a count, never turn it back to 0. */
	unsigned long h = atomic_load_explicit(&s->hits, memory_order_relaxed);
	if (atomic_load_explicit(&counting, memory_order_relaxed))
		atomic_store_explicit(&s->hits, h + 1, memory_order_relaxed);
	else if (!h)
		atomic_store_explicit(&s->hits, 1, memory_order_relaxed);
}

static bool countdown_fires(struct countdown *c, const struct vmb_alloc_site *s)
{
	if (!(c->mask & (1u << s->cls)))
		return false;
	if (!c->firing) {
		if (c->left == 0 || --c->left)
			return false;
		c->firing = c->persist;
	}
	c->injected++;
	return true;
}

static unsigned long countdown_arm(struct countdown *c, unsigned int mask, unsigned long nth, bool persist,
				   unsigned long *injected)
{
	unsigned long left = c->left;
	if (injected)
		*injected = c->injected;
	c->left = nth;
	c->injected = 0;
	c->mask = mask;
	c->persist = persist && nth;
	c->firing = false;
	return left;
}

/* The linker's bounds of the section; weak: a program linking only the parts of the static
 * library without sites has no section (both NULL, an empty list). */
extern struct vmb_alloc_site __start_vmb_alloc_sites[] __attribute__((weak, visibility("hidden")));
extern struct vmb_alloc_site __stop_vmb_alloc_sites[] __attribute__((weak, visibility("hidden")));

struct vmb_alloc_site *vmb_sites_begin(void) { return __start_vmb_alloc_sites; }
struct vmb_alloc_site *vmb_sites_end(void) { return __stop_vmb_alloc_sites; }

void vmb_sites_count(bool on)
{
	atomic_store(&counting, on);
}

void vmb_sites_reset(void)
{
	for (struct vmb_alloc_site *s = vmb_sites_begin(); s < vmb_sites_end(); s++)
		atomic_store_explicit(&s->hits, 0, memory_order_relaxed);
}

/* Depth of nested signalling sections of the calling thread. */
static _Thread_local VMB_TLS_FAST unsigned int signalling_depth;

/* Depth of locks held by the calling thread that signalling paths may take (the device lock). */
_Thread_local VMB_TLS_FAST unsigned int vmb_nowait_depth_; /* core/lock.h changes it inline too */

void vmb_signalling_begin(void) { signalling_depth++; }
void vmb_nowait_begin(void) { vmb_nowait_depth_++; }
void vmb_nowait_end(void) { vmb_nowait_depth_--; }

void vmb_may_wait(void)
{
#ifndef NDEBUG
	if (signalling_depth || vmb_nowait_depth_) {
		fprintf(stderr, "vmbind: waiting %s\n",
			signalling_depth ? "inside a signalling section" : "with the device lock held");
		abort();
	}
#endif
}
void vmb_signalling_end(void) { signalling_depth--; }
bool vmb_in_signalling(void) { return signalling_depth != 0; }

static bool host_should_fail(struct vmb_alloc_site *s)
{
#ifndef NDEBUG
	if (signalling_depth) {
		fprintf(stderr, "vmbind: allocation inside a signalling section (%s:%u)\n", s->file, s->line);
		abort();
	}
#endif
	site_hit(s);
	return countdown_fires(&host_cd, s);
}

void *vmb_malloc_at(struct vmb_alloc_site *s, size_t size)
{
	return host_should_fail(s) ? NULL : malloc(size);
}

void *vmb_malloc_aligned_at(struct vmb_alloc_site *s, size_t align, size_t size)
{
	return host_should_fail(s) ? NULL : aligned_alloc(align, size);
}

void *vmb_calloc_at(struct vmb_alloc_site *s, size_t n, size_t size)
{
	return host_should_fail(s) ? NULL : calloc(n, size);
}

void *vmb_realloc_at(struct vmb_alloc_site *s, void *p, size_t size)
{
	return host_should_fail(s) ? NULL : realloc(p, size);
}

void vmb_memcache_init(struct vmb_memcache *c)
{
	for (unsigned int i = 0; i < VMB_MEMCACHE_SLOTS; i++)
		atomic_init(&c->slot[i], NULL);
}

void vmb_memcache_put(struct vmb_memcache *c, void *p)
{
	for (unsigned int i = 0; p && i < VMB_MEMCACHE_SLOTS; i++) {
		void *none = NULL;
		if (!atomic_load_explicit(&c->slot[i], memory_order_relaxed) &&
		    atomic_compare_exchange_strong(&c->slot[i], &none, p))
			return;
	}
	free(p);
}

void *vmb_memcache_get(struct vmb_memcache *c)
{
	if (vmb_fault_armed())
		return NULL;
	for (unsigned int i = 0; i < VMB_MEMCACHE_SLOTS; i++) {
		if (!atomic_load_explicit(&c->slot[i], memory_order_relaxed))
			continue;
		void *p = atomic_exchange(&c->slot[i], NULL);
		if (p)
			return p;
	}
	return NULL;
}

void *vmb_memcache_zalloc_at(struct vmb_memcache *c, struct vmb_alloc_site *s, size_t size)
{
	void *p = vmb_memcache_get(c);

	if (!p)
		return vmb_calloc_at(s, 1, size);
	memset(p, 0, size);
	return p;
}

void vmb_memcache_fini(struct vmb_memcache *c)
{
	for (unsigned int i = 0; i < VMB_MEMCACHE_SLOTS; i++)
		free(atomic_exchange(&c->slot[i], NULL));
}

void vmb_hugebump_init(struct vmb_hugebump *b)
{
	b->cur = b->end = NULL;
	b->chunks = NULL;
	b->bytes = 0;
}

/* A chunk of VMB_HUGEBUMP_CHUNK bytes, aligned on its size (a huge page can back it whole). */
static char *hugebump_chunk(void)
{
	const size_t sz = VMB_HUGEBUMP_CHUNK;
	char *raw = mmap(NULL, 2 * sz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char *a;

	if (raw == MAP_FAILED)
		return NULL;
	a = (char *)(((uintptr_t)raw + sz - 1) & ~(uintptr_t)(sz - 1));
	if (a > raw)
		munmap(raw, (size_t)(a - raw));
	munmap(a + sz, (size_t)(raw + sz - a));
	(void)madvise(a, sz, MADV_HUGEPAGE); /* a hint: fine if refused */
	return a;
}

void *vmb_hugebump_alloc_at(struct vmb_alloc_site *s, struct vmb_hugebump *b, size_t size)
{
	char *p;

	size = (size + 15) & ~(size_t)15;
	if (host_should_fail(s) || size > VMB_HUGEBUMP_MAX)
		return NULL;
	if ((size_t)(b->end - b->cur) < size) {
		char *c = hugebump_chunk();

		if (!c)
			return NULL;
		*(void **)c = b->chunks; /* the chain takes the chunk's first 64 bytes */
		b->chunks = c;
		b->bytes += VMB_HUGEBUMP_CHUNK;
		b->cur = c + 64;
		b->end = c + VMB_HUGEBUMP_CHUNK;
	}
	p = b->cur;
	b->cur += size;
	return p;
}

void vmb_hugebump_fini(struct vmb_hugebump *b)
{
	while (b->chunks) {
		void *c = b->chunks;

		b->chunks = *(void **)c;
		munmap(c, VMB_HUGEBUMP_CHUNK);
	}
	vmb_hugebump_init(b);
}

bool vmb_map_should_fail_at(struct vmb_alloc_site *s)
{
	return host_should_fail(s);
}

unsigned long vmb_alloc_fail_after(unsigned long nth)
{
	return countdown_arm(&host_cd, HOST_MASK, nth, false, NULL);
}

unsigned long vmb_alloc_fail_from(unsigned long nth)
{
	return countdown_arm(&host_cd, HOST_MASK, nth, true, NULL);
}

bool vmb_alloc_failing(void)
{
	return host_cd.firing;
}

bool vmb_fault_armed(void)
{
	return host_cd.left || host_cd.firing || pt_cd.left || pt_cd.firing;
}

int vmb_thread_create_at(struct vmb_alloc_site *s, pthread_t *t, void *(*fn)(void *), void *arg)
{
	site_hit(s);
	if (countdown_fires(&thread_cd, s))
		return EAGAIN;
	/* born with every asynchronous signal blocked (a thread inherits its creator's mask): a
	 * signal sent to the process runs the application's handler on one of its own threads,
	 * interrupting its call, never on ours; faults and the like still reach their handlers */
	static const int sync_signals[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS, SIGABRT};
	sigset_t block, old;
	sigfillset(&block);
	for (size_t i = 0; i < sizeof(sync_signals) / sizeof(sync_signals[0]); i++)
		sigdelset(&block, sync_signals[i]);
	pthread_sigmask(SIG_BLOCK, &block, &old);
	int err = pthread_create(t, NULL, fn, arg);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return err;
}

unsigned long vmb_thread_fail_after(unsigned long nth)
{
	return countdown_arm(&thread_cd, 1u << VMB_SITE_THREAD, nth, false, NULL);
}

bool vmb_pt_page_should_fail_at(struct vmb_alloc_site *s)
{
	site_hit(s);
	return countdown_fires(&pt_cd, s);
}

/* Process-wide (see alloc.h): the commit that brings the countdown from 1 to 0 fails; with
 * commit_persist, every later one too (commit_firing). */
static atomic_ulong commit_countdown;
static atomic_int commit_err;
static atomic_bool commit_persist;
static atomic_bool commit_firing;
static atomic_ulong commit_injected;
static atomic_ulong commit_failed;

static unsigned long commit_arm(unsigned long nth, bool persist, int err, unsigned long *injected)
{
	unsigned long left = atomic_exchange(&commit_countdown, 0);
	atomic_store(&commit_firing, false);
	atomic_store(&commit_err, err);
	atomic_store(&commit_persist, persist && nth);
	unsigned long inj = atomic_exchange(&commit_injected, 0);
	if (injected)
		*injected = inj;
	atomic_store(&commit_countdown, nth);
	return left;
}

unsigned long vmb_commit_fail_after(unsigned long nth, int err)
{
	return commit_arm(nth, false, err, NULL);
}

int vmb_commit_should_fail_at(struct vmb_alloc_site *s)
{
	site_hit(s);
	if (atomic_load_explicit(&commit_firing, memory_order_relaxed))
		goto fail;
	unsigned long n = atomic_load_explicit(&commit_countdown, memory_order_relaxed);
	while (n) {
		if (atomic_compare_exchange_weak(&commit_countdown, &n, n - 1)) {
			if (n != 1)
				return 0;
			if (atomic_load(&commit_persist))
				atomic_store(&commit_firing, true);
			goto fail;
		}
	}
	return 0;
fail:
	atomic_fetch_add(&commit_injected, 1);
	return atomic_load(&commit_err);
}

unsigned long vmb_fault_arm(unsigned int mask, unsigned long nth, bool persist, int err, unsigned long *injected)
{
	if (mask == (1u << VMB_SITE_COMMIT))
		return commit_arm(nth, persist, err, injected);
	if (mask == (1u << VMB_SITE_THREAD))
		return countdown_arm(&thread_cd, mask, nth, persist, injected);
	if (mask == (1u << VMB_SITE_PT_PAGE))
		return countdown_arm(&pt_cd, mask, nth, persist, injected);
	return countdown_arm(&host_cd, mask & HOST_MASK, nth, persist, injected);
}

void vmb_commit_failed_note(void)
{
	atomic_fetch_add(&commit_failed, 1);
}

unsigned long vmb_commit_failed_count(void)
{
	return atomic_load(&commit_failed);
}

/* Process-wide, as the commit hook: the copy that brings the countdown from 1 to 0 fails. */
static atomic_ulong copy_countdown;
static atomic_int copy_err;
static atomic_bool copy_held;

unsigned long vmb_copy_fail_after(unsigned long nth, int err)
{
	atomic_store(&copy_err, err);
	return atomic_exchange(&copy_countdown, nth);
}

int vmb_copy_should_fail(void)
{
	unsigned long n = atomic_load_explicit(&copy_countdown, memory_order_relaxed);
	while (n) {
		if (atomic_compare_exchange_weak(&copy_countdown, &n, n - 1))
			return n == 1 ? atomic_load(&copy_err) : 0;
	}
	return 0;
}

void vmb_copy_hold(bool on)
{
	atomic_store(&copy_held, on);
}

bool vmb_copy_held(void)
{
	return atomic_load(&copy_held);
}
