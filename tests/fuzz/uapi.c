/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the whole uAPI, structure-aware, against a shadow model.
 *
 * Each input opens its own client (small regions, 50 ms job timeout) and is decoded into up to
 * MAX_STEPS calls over live handles: the harness keeps small tables of the vms, BOs, bind
 * queues, exec queues and syncobjs it created and picks among them by index, so most calls hit
 * real objects; now and then one field is made wrong on purpose (a pad, a flag, an alignment, a
 * handle, a sync...). Every call's result is compared with what the documented rules
 * (docs/UAPI.md) predict for its arguments: the exact errno when the arguments are invalid, or
 * success up to the resource errors the rules allow (-ENOMEM, -ENOSPC, ...); whatever the rules
 * predict, an errno outside the entry point's documented list (the Returns: clause of its header,
 * compiled in as errno-lists.h) is a failure. Now and then the harness also makes an allocation
 * of the call fail (vmb_debug_fault_inject(), once, the calling thread's: a host allocation or
 * mapping, a page-table page, a thread): the call may then fail with -ENOMEM (-EAGAIN for a
 * thread) but must change nothing, and an unbind must not fail at all (docs/UAPI.md, "Unbind
 * under memory pressure").
 *
 * The model, per vm, is one entry per page of a 16 MiB window at the bottom of the VA space
 * (every address the fuzzer maps lies there): what the page maps (a page of which BO, a page of
 * application memory, NULL, nothing), READONLY, and which mapping (node) it belongs to. Binds
 * are applied to it in submission order when the call succeeds, synchronous or not: the vm's
 * queries show submitted binds at once, and binds of one queue, and overlapping binds of any
 * queues, commit in submission order, so once everything has completed the GPU view is the
 * model. Every BO page and every page of the application memory used for MAP_USERPTR starts
 * with a tag naming it, written through the CPU; nothing ever writes the first 64 bytes of a
 * page afterwards (GPU writes and vmb_vm_access writes stay at offsets >= 64), so a read of the
 * first 8 bytes of a page through the GPU view tells what it maps.
 *
 * Checked after every call: the result; after every bind, the vm's mappings
 * (vmb_vm_query_mappings: node by node, addresses, offsets, handles, flags) and statistics; after
 * a synchronous bind, the GPU view of the pages it touched; every GPU-view access of a vm with
 * no bind in flight; now and then (a query step) each live vm's fault log, which only grows.
 * Every CHECK_EVERY steps and at the end: everything outstanding is waited for (a barrier on
 * every bind queue, every syncobj, the user fences), with bounded timeouts (a hang is a
 * failure), then vmb_client_validate() must return 0 and the GPU view of every vm,
 * the BOs (contents through the CPU, region, mapping counts) and the syncobjs' values must match
 * the model. The client is closed at the end (must return 0). Any violation aborts.
 *
 * The fuzzer never blocks: syncobj and user-fence waits use zero or tiny timeouts, except the
 * bounded ones of the checkpoints; in-fences the harness controls (imported eventfds, "gates")
 * are all opened before any call that may wait in the call (synchronous binds, PREFETCH, LR
 * vms with in-syncs, a call whose host allocation may fail); GPU jobs are short and never wait
 * on a condition that cannot become true on an LR vm (non-LR jobs end at the 50 ms timeout).
 *
 * Command buffers live in one BO per vm, mapped READONLY above the window (CMD_VA), never
 * written by the GPU, one slot per exec. Values the GPU writes into the window have every byte
 * in [0x80, 0xfe] (atomic adds add multiples of 2^16, copies move whole aligned words), and tags
 * too, so no word of the window ever decodes as a command other than a NOOP or a malformed one:
 * an exec pointed into the window (non-LR vms only, bounded by the job timeout) cannot write.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include <vmbind.h>

#include "errno-lists.h" /* each entry point's documented errnos, generated from its header */

/* The harness's own checking code is left out of the coverage libFuzzer steers by: its loops
 * would drown the library's edges in features and slow every run down. */
#define NOCOV __attribute__((no_sanitize("coverage")))

#define PG UINT64_C(4096)
#define WIN_PAGES 4096u /* the window: [0, 16 MiB) */
#define WIN_END ((uint64_t)WIN_PAGES * PG)
#define CMD_VA WIN_END
#define CMD_SLOT_WORDS 64u
#define CMD_SLOTS 256u
#define CMD_SIZE ((uint64_t)CMD_SLOTS * CMD_SLOT_WORDS * 8) /* 128 KiB */
#define CMD_END (CMD_VA + CMD_SIZE)
#define FAR_VA (CMD_END + 64 * PG) /* never mapped */
#define VA_MAX (UINT64_C(1) << 48)
#define MAX_VMS 4
#define MAX_BQ 3
#define MAX_BOBJ 100 /* BOs created per input (the tag holds 7 bits of the index) */
#define MAX_LIVE_BOS 12
#define MAX_SYNCS 10
#define MAX_EXQ 6
#define MAX_GATES 2
#define MAX_STEPS 240
#define CHECK_EVERY 60
#define UPTR_PAGES 64u
#define UF_SLOTS 1024u
#define UF_RESERVE 64u /* kept for the checkpoints' barriers */
#define MAX_OPS 12
#define MAX_SY 6
#define WAIT_NS (10ll * 1000000000) /* a checkpoint wait longer than this is a hang */

/* ---- failures ---- */

static unsigned int step_no;
static const char *step_what = "open";

#define CHECK(cond, ...)                                                                         \
	do {                                                                                     \
		if (!(cond)) {                                                                   \
			fprintf(stderr, "uapi fuzz: step %u (%s): check failed: %s: ", step_no,  \
				step_what, #cond);                                               \
			fprintf(stderr, __VA_ARGS__);                                            \
			fputc('\n', stderr);                                                     \
			abort();                                                                 \
		}                                                                                \
	} while (0)

static bool inj_nomem; /* an allocation (inj_class) of this step's main call may fail */
static bool inj_fired; /* it did (the disarm said so) */
static bool trace; /* VMB_FUZZ_TRACE=1: one line per step and per bind, to read a reproducer */
static unsigned long inj_nth;
static unsigned int inj_class; /* VMB_INJECT_*: HOST_ALLOC | HOST_MAP, PT_PAGE or THREAD */

/* Resource errors a valid call may still return. */
enum {
	A_NOMEM = 1u << 0,
	A_NOSPC = 1u << 1,
	A_TIME = 1u << 2,
	A_CANCELED = 1u << 3,
	A_INVAL = 1u << 4,
	A_BUSY = 1u << 5,
	A_AGAIN = 1u << 6,
	A_IO = 1u << 7,
};

NOCOV static unsigned int errno_bit(int e)
{
	switch (e) {
	case -ENOMEM: return A_NOMEM;
	case -ENOSPC: return A_NOSPC;
	case -ETIME: return A_TIME;
	case -ECANCELED: return A_CANCELED;
	case -EINVAL: return A_INVAL;
	case -EBUSY: return A_BUSY;
	case -EAGAIN: return A_AGAIN;
	case -EIO: return A_IO;
	default: return 0;
	}
}

/*
 * The errnos entry point vmb_<call> documents (@call up to its first blank: "vm_bind (commands)"
 * is vmb_vm_bind), 0-terminated: its header's "Returns:" list, which tools/errno-lists.py turns
 * into errno-lists.h at build time and keeps equal to docs/UAPI.md's.
 */
NOCOV static const int *documented_errnos(const char *call)
{
	char name[64];
	snprintf(name, sizeof(name), "vmb_%.*s", (int)strcspn(call, " "), call);
	for (size_t i = 0; i < sizeof(vmb_errno_lists) / sizeof(vmb_errno_lists[0]); i++)
		if (strcmp(vmb_errno_lists[i].name, name) == 0)
			return vmb_errno_lists[i].errnos;
	return NULL;
}

/* @ret must be 0 or in @call's documented list, and @want, or one of @allow. */
NOCOV static void expect(const char *call, int ret, int want, unsigned int allow)
{
	const int *documented = documented_errnos(call);
	bool known = ret == 0;

	CHECK(documented, "%s: no entry point vmb_%s in the headers' errno lists", call, call);
	for (const int *e = documented; *e; e++)
		known |= ret == *e;
	CHECK(known, "%s returned %d (%s), which its header's Returns: list does not have", call, ret,
	      strerror(-ret));
	if (inj_nomem) /* a failed allocation may come before any later check */
		allow |= inj_class == VMB_INJECT_THREAD ? A_AGAIN : A_NOMEM;
	CHECK(ret == want || (errno_bit(ret) & allow), "%s returned %d (%s), the rules say %d (%s), allow %#x", call,
	      ret, ret ? strerror(-ret) : "ok", want, want ? strerror(-want) : "ok", allow);
}

/* ---- signals ----
 *
 * A call that waits (a synchronous bind behind pending work, an LR vm's in-syncs, the waits)
 * returns -EINTR when a signal comes, having changed nothing, and the application calls again:
 * the library's documented answer. libFuzzer's -timeout watchdog is such a signal (SIGALRM,
 * every timeout/2 + 1 seconds), which once in a long run made a bind return -EINTR where this
 * harness wanted success (regressions/uapi/bind-eintr-watchdog). So that the path runs on every
 * input and not once an hour, a thread sends the fuzzing thread SIGRTMIN + 3 (a handler that does
 * nothing, no SA_RESTART) every VMB_FUZZ_SIGNAL_US microseconds (default 300; 0: none) while an
 * input runs, and every call that may wait goes through RESTART(), which calls again on -EINTR.
 */
static unsigned long restarts;
static atomic_ulong signals_sent;
static atomic_bool input_running;
static pthread_t fuzz_thread;
static long signal_us = 300;

#define RESTART(ret, call)                                                                       \
	do {                                                                                     \
		(ret) = (call);                                                                  \
	} while ((ret) == -EINTR && ++restarts)

static void on_signal(int sig)
{
	(void)sig;
}

static void *signal_main(void *arg)
{
	(void)arg;
	struct timespec d = {.tv_sec = signal_us / 1000000, .tv_nsec = (signal_us % 1000000) * 1000};
	for (;;) {
		nanosleep(&d, NULL);
		if (atomic_load(&input_running)) {
			pthread_kill(fuzz_thread, SIGRTMIN + 3);
			atomic_fetch_add(&signals_sent, 1);
		}
	}
	return NULL;
}

static void signal_stats(void)
{
	fprintf(stderr, "uapi fuzz: %lu signals sent, %lu calls restarted after -EINTR\n",
		(unsigned long)atomic_load(&signals_sent), restarts);
}

static void start_signals(void)
{
	const char *e = getenv("VMB_FUZZ_SIGNAL_US");
	if (e)
		signal_us = strtol(e, NULL, 10);
	if (signal_us <= 0)
		return;
	struct sigaction sa = {.sa_handler = on_signal};
	sigemptyset(&sa.sa_mask);
	CHECK(sigaction(SIGRTMIN + 3, &sa, NULL) == 0, "sigaction");
	fuzz_thread = pthread_self();
	pthread_t t;
	CHECK(pthread_create(&t, NULL, signal_main, NULL) == 0, "pthread_create");
	pthread_detach(t);
	atexit(signal_stats);
}

/* ---- input ----
 *
 * 3 header bytes (client options, a seed for bulk values), then steps of 3 bytes (what, a
 * host-allocation failure to inject or not, the length of its arguments) and their argument
 * bytes. A step reads its arguments with u8(): zeros past their end. Zero bytes ask for the
 * common valid call: a fault is injected when a "fault byte" (fb()) is high.
 */

static const uint8_t *in_p, *arg_p;
static size_t in_n, arg_n;
static uint64_t rng_state;

NOCOV static uint8_t in8(void)
{
	if (!in_n)
		return 0;
	in_n--;
	return *in_p++;
}

NOCOV static uint8_t u8(void)
{
	if (!arg_n)
		return 0;
	arg_n--;
	return *arg_p++;
}

/* A byte that chooses whether to make a call wrong: low (and 0) means valid. */
NOCOV static uint8_t fb(void)
{
	return (uint8_t)(255u - u8());
}

NOCOV static uint16_t u16(void)
{
	uint16_t v = u8();
	return (uint16_t)(v | (uint16_t)u8() << 8);
}

NOCOV static uint32_t below(uint32_t n)
{
	return n ? (uint32_t)u16() % n : 0;
}

/* Bulk values: a generator seeded from the input. */
NOCOV static uint64_t rnd(void)
{
	uint64_t z = (rng_state += UINT64_C(0x9e3779b97f4a7c15));
	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

/* Values the GPU writes: every byte in [0x80, 0xfe] (see the top of the file). */
NOCOV static uint64_t safe64(void)
{
	uint64_t r = rnd(), v = 0;
	for (int i = 0; i < 8; i++)
		v |= (uint64_t)(0x80u + (unsigned int)((r >> (8 * i)) & 0xff) % 0x7fu) << (8 * i);
	return v;
}

NOCOV static uint32_t safe32(void)
{
	return (uint32_t)safe64();
}

/* ---- memory the harness owns ---- */

static uint8_t *uptr;    /* UPTR_PAGES pages of application memory for MAP_USERPTR */
static uint64_t *ufmem;  /* UF_SLOTS user-fence slots */
static unsigned int uf_next;
static int memfd_plain = -1; /* a plain file: poll() reports it readable at once */

/* Tags: every byte has its top bit set. kind 1: a BO page, 2: an application-memory page. */
NOCOV static uint64_t tag_of(unsigned int kind, unsigned int serial, unsigned int page)
{
	return UINT64_C(0xB0B0B0B0) << 32 | (uint64_t)(0x80u | kind) << 24 | (uint64_t)(0x80u | (serial & 0x7f)) << 16 |
	       (uint64_t)(0x80u | ((page >> 7) & 0x7f)) << 8 | (0x80u | (page & 0x7f));
}

static uint8_t *ro_page;   /* a page mapped read-only */
static uint8_t *none_page; /* a page mapped PROT_NONE */

NOCOV static bool in_page(uint64_t addr, const uint8_t *page)
{
	return addr >= (uint64_t)(uintptr_t)page && addr < (uint64_t)(uintptr_t)page + PG;
}

/* Memory the library may read: the harness only ever names its own memory, page 0 / 1, or the
 * PROT_NONE page. */
NOCOV static bool host_mapped(uint64_t addr)
{
	return addr >= 65536 && !in_page(addr, none_page);
}

/* An out user fence must be writable (the library writes it later, from a worker thread). */
NOCOV static bool host_writable(uint64_t addr)
{
	return host_mapped(addr) && !in_page(addr, ro_page);
}

static uint64_t *uf_take(bool reserve)
{
	/* the last slot is the target of faulty syncs: never handed out */
	if (uf_next >= UF_SLOTS - 1 - (reserve ? 0 : UF_RESERVE))
		return NULL;
	return &ufmem[uf_next++];
}

/* ---- the model ---- */

enum { K_NONE, K_BO, K_NULL, K_UPTR };

struct mpage {
	uint8_t kind, ro;
	uint16_t idx;  /* K_BO: the BO's index in bobjs */
	uint32_t off;  /* K_BO: page in the BO; K_UPTR: page of uptr */
	uint32_t node; /* pages of one mapping share it; 0 when unmapped */
};

struct bobj {
	uint32_t handle; /* 0 once the handle is destroyed (mappings may keep the BO) */
	uint32_t pages, placements, region;
	uint8_t *cpu;    /* while the handle lives and cpu_maps > 0 */
	uint32_t cpu_maps;
	bool moving;     /* an asynchronous PREFETCH may still move it (to region) */
};

struct fvm {
	bool used, live;  /* used && !live: destroyed, its exec queues hold it (and its cmd BO) */
	uint32_t id, flags;
	uint64_t va_size; /* as created (0: the whole space) */
	uint32_t queues[MAX_BQ];
	unsigned int nq;
	bool has_cmd, dirty; /* dirty: an asynchronous bind may still be in flight */
	bool reserve_short; /* an injected failure may have kept its unmap reserve from refilling */
	uint32_t cmd_bo;
	uint64_t *cmd_cpu;
	unsigned int cmd_next, nexq;
	bool had_exq; /* exec queues (and their jobs) may hold it after vm_destroy */
	uint32_t faults_seen; /* its fault log's length at the last check: it only grows */
	uint64_t first_fault; /* the log's first record's address, once there is one */
	struct mpage pg[WIN_PAGES];
};

struct fsync {
	uint32_t handle;
	bool tl, submitted, signalled; /* binary: has a fence; that fence is known signalled */
	uint64_t last, seen;           /* timeline: last point added, highest value seen */
	int gate_fd;                   /* >= 0: an imported eventfd the harness has not written */
};

struct fexq {
	uint32_t id;
	int vm; /* slot in vms */
	bool lr, banned, intel; /* intel: VMB_EXEC_QUEUE_CMDSET_INTEL */
	uint64_t nexec;
};

struct ufrec {
	uint64_t *addr;
	uint64_t value;
	uint32_t exq_id; /* an exec's (its queue), or 0: a bind's */
};

static struct vmb_client *C;
static uint64_t opt_vram, opt_sys, opt_pool;
static struct bobj bobjs[MAX_BOBJ];
static unsigned int nbobj;
static struct fvm vms[MAX_VMS];
static struct fsync syncs[MAX_SYNCS];
static unsigned int nsyncs;
static struct fexq exqs[MAX_EXQ];
static unsigned int nexqs;
static struct ufrec ufrecs[UF_SLOTS];
static unsigned int nufrecs;
static uint32_t node_ctr;
static bool counts_loose; /* a destroyed vm may still be held by exec queues or jobs */
static struct mpage scratch[WIN_PAGES];
static struct vmb_mapping_info qm[WIN_PAGES + 4];

NOCOV static void m_cut(struct mpage *m, uint32_t at)
{
	if (at == 0 || at >= WIN_PAGES || !m[at].kind || !m[at - 1].kind || m[at].node != m[at - 1].node)
		return;
	uint32_t old = m[at].node, id = ++node_ctr;
	for (uint32_t p = at; p < WIN_PAGES && m[p].kind && m[p].node == old; p++)
		m[p].node = id;
}

NOCOV static void m_set(struct mpage *m, uint32_t s, uint32_t n, uint8_t kind, uint8_t ro, uint16_t idx, uint32_t off)
{
	CHECK(s < WIN_PAGES && n <= WIN_PAGES - s, "harness: range outside the window");
	m_cut(m, s);
	m_cut(m, s + n);
	uint32_t id = kind ? ++node_ctr : 0;
	for (uint32_t i = 0; i < n; i++)
		m[s + i] = (struct mpage){.kind = kind, .ro = ro, .idx = idx,
					  .off = kind == K_BO || kind == K_UPTR ? off + i : 0, .node = id};
}

NOCOV static uint64_t page_tag(const struct mpage *p)
{
	return p->kind == K_BO ? tag_of(1, p->idx, p->off) : p->kind == K_UPTR ? tag_of(2, 0, p->off) : 0;
}

/* ---- lookups in the harness's tables ---- */

NOCOV static bool bo_handle_live(uint32_t h)
{
	if (!h)
		return false;
	for (unsigned int i = 0; i < nbobj; i++)
		if (bobjs[i].handle == h)
			return true;
	for (int v = 0; v < MAX_VMS; v++)
		if (vms[v].used && vms[v].has_cmd && vms[v].cmd_bo == h)
			return true;
	return false;
}

NOCOV static int bobj_of(uint32_t h)
{
	for (unsigned int i = 0; h && i < nbobj; i++)
		if (bobjs[i].handle == h)
			return (int)i;
	return -1;
}

NOCOV static unsigned int live_bos(void)
{
	unsigned int n = 0;
	for (unsigned int i = 0; i < nbobj; i++)
		n += bobjs[i].handle != 0;
	return n;
}

static int pick_bo(void)
{
	unsigned int n = live_bos(), k;
	if (!n)
		return -1;
	k = below(n);
	for (unsigned int i = 0; i < nbobj; i++)
		if (bobjs[i].handle && k-- == 0)
			return (int)i;
	return -1;
}

static int pick_vm(void)
{
	int live[MAX_VMS], n = 0;
	for (int v = 0; v < MAX_VMS; v++)
		if (vms[v].live)
			live[n++] = v;
	return n ? live[below((uint32_t)n)] : -1;
}

NOCOV static struct fvm *vm_by_id(uint32_t id)
{
	for (int v = 0; v < MAX_VMS; v++)
		if (vms[v].live && vms[v].id == id)
			return &vms[v];
	return NULL;
}

NOCOV static bool vm_has_queue(const struct fvm *v, uint32_t q)
{
	for (unsigned int i = 0; i < v->nq; i++)
		if (v->queues[i] == q)
			return true;
	return false;
}

NOCOV static struct fsync *sync_of(uint32_t h)
{
	for (unsigned int i = 0; h && i < nsyncs; i++)
		if (syncs[i].handle == h)
			return &syncs[i];
	return NULL;
}

NOCOV static struct fexq *exq_of(uint32_t id)
{
	for (unsigned int i = 0; id && i < nexqs; i++)
		if (exqs[i].id == id)
			return &exqs[i];
	return NULL;
}

/* A handle value none of @live_fn's objects has (0 included, sometimes). */
static uint32_t bad_handle(bool (*live_fn)(uint32_t), bool zero_ok)
{
	static const uint32_t far[] = {0x7fffffffu, 0xffffffffu, 4096u, 100u};
	uint8_t k = u8();
	if (zero_ok && (k & 3) == 0)
		return 0;
	for (uint32_t h = 1 + (uint32_t)(k >> 2) % 24, tries = 0; tries < 32; h++, tries++)
		if (!live_fn(h))
			return h;
	return far[k & 3];
}

static bool vm_id_live(uint32_t h) { return vm_by_id(h) != NULL; }
static bool sync_live(uint32_t h) { return sync_of(h) != NULL; }
static bool exq_live(uint32_t h) { return exq_of(h) != NULL; }

/* ---- gates: in-fences the harness opens ---- */

static void open_gates(void)
{
	for (unsigned int i = 0; i < nsyncs; i++) {
		if (syncs[i].gate_fd < 0)
			continue;
		uint64_t one = 1;
		CHECK(write(syncs[i].gate_fd, &one, sizeof(one)) == (ssize_t)sizeof(one), "gate write");
		close(syncs[i].gate_fd);
		syncs[i].gate_fd = -1;
	}
}

static unsigned int gates_closed(void)
{
	unsigned int n = 0;
	for (unsigned int i = 0; i < nsyncs; i++)
		n += syncs[i].gate_fd >= 0;
	return n;
}

/* ---- checks against the model ---- */

/* The GPU view of page @p of @v must be what the model says (no bind in flight there). */
NOCOV static void check_gpu_page(struct fvm *v, uint32_t p, bool probe_write)
{
	const struct mpage *m = &v->pg[p];
	bool scratch_vm = v->flags & VMB_VM_CREATE_SCRATCH_PAGE;
	uint64_t val = 0x1111111111111111ull;
	struct vmb_vm_access a = {.vm_id = v->id, .addr = p * PG, .size = 8, .data = (uint64_t)(uintptr_t)&val};
	int ret = vmb_vm_access(C, &a);

	if (m->kind == K_NONE) {
		CHECK(ret == (scratch_vm ? 0 : -EFAULT), "vm %u page %u unmapped: read gave %d", v->id, p, ret);
		if (scratch_vm)
			CHECK(val == 0, "vm %u page %u unmapped, scratch: read %#llx", v->id, p, (unsigned long long)val);
	} else {
		CHECK(ret == 0, "vm %u page %u (kind %u): read gave %d", v->id, p, m->kind, ret);
		CHECK(val == page_tag(m), "vm %u page %u (kind %u idx %u off %u): read %#llx, want %#llx", v->id, p,
		      m->kind, m->idx, m->off, (unsigned long long)val, (unsigned long long)page_tag(m));
	}
	if (!probe_write)
		return;
	val = safe64();
	a.addr = p * PG + 64 + 8 * (rnd() % 500);
	a.flags = VMB_ACCESS_WRITE;
	ret = vmb_vm_access(C, &a);
	int want = m->kind == K_NONE ? (scratch_vm ? 0 : -EFAULT) : m->ro ? -EACCES : 0;
	CHECK(ret == want, "vm %u page %u (kind %u ro %u): write gave %d, want %d", v->id, p, m->kind, m->ro, ret, want);
}

/*
 * The vm's fault log (vmb_vm_query_faults), which jobs fill behind the harness's back: the
 * field rules (flags, pad, reserved, faults 0 with room, in @k's bits), then the log itself:
 * at most VMB_VM_MAX_FAULTS and nothing dropped below that, only growing, its first record
 * never changing, every record well formed (a soft VA, an access, type and level the header
 * has, WRITE_ACCESS never a read, a queue id, pad and reserved 0).
 */
NOCOV static void check_faults(struct fvm *v, uint8_t k)
{
	static struct vmb_vm_fault rec[VMB_VM_MAX_FAULTS + 1];
	struct vmb_vm_query_faults q = {.vm_id = v->id};
	int want = 0;
	switch (k >> 5) {
	case 1: q.flags = 1u << (k & 31); want = -EINVAL; break;
	case 2: q.pad = 1; want = -EINVAL; break;
	case 3: q.reserved[k & 1] = 1; want = -EINVAL; break;
	case 4: q.num_faults = 1 + (k & 7); want = -EFAULT; break;
	}
	int ret = vmb_vm_query_faults(C, &q);
	expect("vm_query_faults", ret, want, 0);
	if (want)
		return;
	q.num_faults = VMB_VM_MAX_FAULTS + 1;
	q.faults = (uint64_t)(uintptr_t)rec;
	CHECK(vmb_vm_query_faults(C, &q) == 0, "query_faults");
	uint32_t n = q.num_faults;
	CHECK(n <= VMB_VM_MAX_FAULTS && (n == VMB_VM_MAX_FAULTS || !q.dropped) && n >= v->faults_seen,
	      "vm %u: %u faults (%u before), %llu dropped", v->id, n, v->faults_seen, (unsigned long long)q.dropped);
	CHECK(!v->faults_seen || rec[0].addr == v->first_fault, "vm %u: first fault %#llx, was %#llx", v->id,
	      (unsigned long long)rec[0].addr, (unsigned long long)v->first_fault);
	for (uint32_t i = 0; i < n; i++) {
		const struct vmb_vm_fault *f = &rec[i];
		CHECK(f->addr < (UINT64_C(1) << 48) && f->access <= VMB_FAULT_ATOMIC &&
			      f->type <= VMB_FAULT_TYPE_WRITE_ACCESS && f->level < 4 &&
			      !(f->type == VMB_FAULT_TYPE_WRITE_ACCESS && f->access == VMB_FAULT_READ) &&
			      f->exec_queue_id && !f->pad && !f->reserved,
		      "vm %u fault %u: addr %#llx access %u type %u level %u queue %u", v->id, i,
		      (unsigned long long)f->addr, f->access, f->type, f->level, f->exec_queue_id);
	}
	v->faults_seen = n;
	if (n)
		v->first_fault = rec[0].addr;
}

/* The vm's mappings, node by node, and its statistics, against the model (submitted state). */
NOCOV static void check_mappings(struct fvm *v)
{
	struct vmb_vm_query_mappings q = {.vm_id = v->id};
	int ret = vmb_vm_query_mappings(C, &q);
	CHECK(ret == 0, "query_mappings: %d", ret);
	uint32_t total = q.num_mappings;
	CHECK(total <= WIN_PAGES + 1, "%u mappings", total);
	q.num_mappings = total;
	q.mappings = (uint64_t)(uintptr_t)qm;
	CHECK(vmb_vm_query_mappings(C, &q) == 0 && q.num_mappings == total, "query_mappings again");

	uint32_t i = 0, p = 0;
	uint64_t bytes = 0;
	while (p < WIN_PAGES) {
		const struct mpage *m = &v->pg[p];
		if (!m->kind) {
			p++;
			continue;
		}
		uint32_t s = p;
		while (p < WIN_PAGES && v->pg[p].kind && v->pg[p].node == m->node)
			p++;
		CHECK(i < total, "vm %u: model node at page %u, the vm has only %u mappings", v->id, s, total);
		const struct vmb_mapping_info *e = &qm[i++];
		uint64_t off = m->kind == K_BO ? (uint64_t)m->off * PG
			       : m->kind == K_UPTR ? (uint64_t)(uintptr_t)uptr + (uint64_t)m->off * PG : 0;
		uint32_t flags = (m->ro ? VMB_MAPPING_READONLY : 0) | (m->kind == K_NULL ? VMB_MAPPING_NULL : 0) |
				 (m->kind == K_UPTR ? VMB_MAPPING_USERPTR : 0);
		uint32_t h = m->kind == K_BO ? bobjs[m->idx].handle : 0;
		CHECK(e->addr == s * PG && e->range == (uint64_t)(p - s) * PG && e->offset == off && e->flags == flags &&
			      e->bo_handle == h,
		      "vm %u mapping %u: [%#llx +%#llx] off %#llx flags %#x bo %u; model [%#llx +%#llx] off %#llx "
		      "flags %#x bo %u",
		      v->id, i - 1, (unsigned long long)e->addr, (unsigned long long)e->range,
		      (unsigned long long)e->offset, e->flags, e->bo_handle, (unsigned long long)(s * PG),
		      (unsigned long long)((p - s) * PG), (unsigned long long)off, flags, h);
		/* the leaves used: none yet while the bind that makes them is in flight */
		CHECK((e->page_sizes || v->dirty) && !(e->page_sizes & ~(VMB_PAGE_4K | VMB_PAGE_64K | VMB_PAGE_2M | VMB_PAGE_1G)),
		      "mapping %u page sizes %#llx", i - 1, (unsigned long long)e->page_sizes);
		bytes += (uint64_t)(p - s) * PG;
	}
	if (v->has_cmd) {
		CHECK(i < total, "vm %u: the command mapping is missing", v->id);
		const struct vmb_mapping_info *e = &qm[i++];
		CHECK(e->addr == CMD_VA && e->range == CMD_SIZE && e->offset == 0 && e->flags == VMB_MAPPING_READONLY &&
			      e->bo_handle == v->cmd_bo,
		      "vm %u: the command mapping is [%#llx +%#llx] flags %#x bo %u", v->id,
		      (unsigned long long)e->addr, (unsigned long long)e->range, e->flags, e->bo_handle);
		bytes += CMD_SIZE;
	}
	CHECK(i == total, "vm %u: %u mappings, the model has %u", v->id, total, i);

	struct vmb_vm_stats st = {.vm_id = v->id};
	CHECK(vmb_vm_query_stats(C, &st) == 0, "query_stats");
	CHECK(st.num_mappings == total && st.bytes_mapped == bytes, "vm %u stats: %llu mappings %llu bytes, want %u %llu",
	      v->id, (unsigned long long)st.num_mappings, (unsigned long long)st.bytes_mapped, total,
	      (unsigned long long)bytes);
}

/* Whole-vm GPU check (nothing in flight): a few pages of every mapping and hole. */
NOCOV static void check_gpu(struct fvm *v)
{
	uint32_t p = 0;
	while (p < WIN_PAGES) {
		uint32_t s = p;
		const struct mpage *m = &v->pg[p];
		while (p < WIN_PAGES && v->pg[p].kind == m->kind && (!m->kind || v->pg[p].node == m->node))
			p++;
		uint32_t n = p - s;
		check_gpu_page(v, s, true);
		if (n > 1)
			check_gpu_page(v, p - 1, true);
		if (n > 2)
			check_gpu_page(v, s + 1 + (uint32_t)(rnd() % (n - 2)), false);
		if (n > 3)
			check_gpu_page(v, s + n / 2, false);
	}
	/* beyond the window and the command area: nothing */
	struct vmb_vm_access a = {.vm_id = v->id, .addr = FAR_VA, .size = 8};
	uint64_t val = 1;
	a.data = (uint64_t)(uintptr_t)&val;
	int ret = vmb_vm_access(C, &a);
	CHECK(ret == (v->flags & VMB_VM_CREATE_SCRATCH_PAGE ? 0 : -EFAULT), "read past the window: %d", ret);
}

NOCOV static void check_bo(unsigned int i)
{
	struct bobj *b = &bobjs[i];
	struct vmb_bo_query q = {.handle = b->handle};
	CHECK(vmb_bo_query(C, &q) == 0, "bo_query of a live BO");
	/* a BO that may live in VRAM may be evicted to SYSTEM when a bind needs room, whatever its
	 * placements, and restored to an allowed region later (UAPI.md, "Residency") */
	bool evictable = b->placements & VMB_PLACE_VRAM;
	CHECK(q.size == b->pages * PG && q.placements == b->placements &&
		      (q.region == b->region || (b->moving && (b->placements & (1u << q.region))) ||
		       (evictable && (q.region == VMB_REGION_SYSTEM || (b->placements & (1u << q.region))))),
	      "BO %u: size %llu placements %#x region %u, model %llu %#x %u", b->handle, (unsigned long long)q.size,
	      q.placements, q.region, (unsigned long long)(b->pages * PG), b->placements, b->region);
	uint32_t maps = 0;
	for (int v = 0; v < MAX_VMS; v++) {
		if (!vms[v].live)
			continue;
		for (uint32_t p = 0; p < WIN_PAGES; p++)
			maps += vms[v].pg[p].kind == K_BO && vms[v].pg[p].idx == i &&
				(p == 0 || vms[v].pg[p - 1].node != vms[v].pg[p].node);
	}
	CHECK(counts_loose ? q.vm_mappings >= maps : q.vm_mappings == maps, "BO %u: %u mappings, the model has %u%s",
	      b->handle, q.vm_mappings, maps, counts_loose ? " or more" : "");
}

NOCOV static void check_bo_cpu(unsigned int i)
{
	struct bobj *b = &bobjs[i];
	if (!b->cpu)
		return;
	for (uint32_t p = 0; p < b->pages; p++) {
		uint64_t v = __atomic_load_n((uint64_t *)(b->cpu + p * PG), __ATOMIC_RELAXED);
		CHECK(v == tag_of(1, i, p), "BO %u page %u: CPU view %#llx, want %#llx", b->handle, p,
		      (unsigned long long)v, (unsigned long long)tag_of(1, i, p));
	}
}

NOCOV static void check_syncobj_values(bool all_done)
{
	for (unsigned int i = 0; i < nsyncs; i++) {
		struct fsync *s = &syncs[i];
		uint64_t v = 12345;
		struct vmb_syncobj_array a = {.handles = (uint64_t)(uintptr_t)&s->handle,
					      .points = (uint64_t)(uintptr_t)&v, .count = 1};
		CHECK(vmb_syncobj_query(C, &a) == 0, "syncobj_query");
		if (s->tl) {
			CHECK(v >= s->seen && v <= s->last, "timeline %u: value %llu, seen %llu, last %llu", s->handle,
			      (unsigned long long)v, (unsigned long long)s->seen, (unsigned long long)s->last);
			CHECK(!all_done || v == s->last, "timeline %u: value %llu once all done, last %llu", s->handle,
			      (unsigned long long)v, (unsigned long long)s->last);
			s->seen = v;
		} else {
			CHECK(v <= 1, "binary syncobj %u: value %llu", s->handle, (unsigned long long)v);
			CHECK(s->submitted || v == 0, "binary syncobj %u without a fence: value %llu", s->handle,
			      (unsigned long long)v);
			CHECK(!(s->submitted && (s->signalled || all_done)) || v == 1,
			      "binary syncobj %u: signalled fence, value %llu", s->handle, (unsigned long long)v);
			if (v == 1)
				s->signalled = true;
		}
		if (!all_done || (s->tl ? !s->last : !s->submitted))
			continue;
		/* everything has completed: no fence is pending (vmb_syncobj_query_status) */
		int32_t st = 0;
		struct vmb_syncobj_status q = {.handles = (uint64_t)(uintptr_t)&s->handle, .count = 1,
					       .points = s->tl ? (uint64_t)(uintptr_t)&s->last : 0,
					       .status = (uint64_t)(uintptr_t)&st};
		CHECK(vmb_syncobj_query_status(C, &q) == 0, "syncobj_query_status");
		CHECK(st != 0, "syncobj %u (point %llu): pending once all done", s->handle, (unsigned long long)s->last);
	}
}

NOCOV static int wait_ufence(uint64_t *addr, uint64_t value, int64_t timeout)
{
	struct vmb_user_fence_wait w = {.addr = (uint64_t)(uintptr_t)addr, .value = value, .mask = ~0ull,
					.timeout = timeout, .op = VMB_UFENCE_OP_EQ};
	int ret;
	RESTART(ret, vmb_user_fence_wait(C, &w));
	return ret;
}

/* Wait for everything outstanding, then check the whole client against the model. */
static void checkpoint(void)
{
	const char *saved = step_what;
	step_what = "checkpoint";
	open_gates();
	/* a barrier on every bind queue of every vm */
	for (int vi = 0; vi < MAX_VMS; vi++) {
		struct fvm *v = &vms[vi];
		if (!v->live)
			continue;
		for (unsigned int k = 0; k <= v->nq; k++) {
			uint64_t *slot = uf_take(true);
			if (!slot)
				break; /* slots spent (many checkpoints): the validate loop below still waits */
			struct vmb_sync s = {.type = VMB_SYNC_USER_FENCE, .flags = VMB_SYNC_FLAG_SIGNAL,
					     .addr = (uint64_t)(uintptr_t)slot, .value = 0x5a5a};
			struct vmb_vm_bind b = {.vm_id = v->id, .queue_id = k ? v->queues[k - 1] : 0, .num_syncs = 1,
						.syncs = (uint64_t)(uintptr_t)&s, .flags = VMB_VM_BIND_FLAG_ASYNC};
			int ret;
			RESTART(ret, vmb_vm_bind(C, &b));
			CHECK(ret == 0, "barrier on vm %u queue %u: %d", v->id, b.queue_id, ret);
			ret = wait_ufence(slot, 0x5a5a, WAIT_NS);
			CHECK(ret == 0, "barrier on vm %u queue %u did not signal: %d", v->id, b.queue_id, ret);
		}
	}
	/* every syncobj with a fence */
	uint32_t hs[MAX_SYNCS];
	uint64_t pts[MAX_SYNCS];
	uint32_t n = 0;
	for (unsigned int i = 0; i < nsyncs; i++) {
		if (syncs[i].tl ? syncs[i].last == 0 : !syncs[i].submitted)
			continue;
		hs[n] = syncs[i].handle;
		pts[n++] = syncs[i].tl ? syncs[i].last : 0;
	}
	if (n) {
		struct vmb_syncobj_wait w = {.handles = (uint64_t)(uintptr_t)hs, .points = (uint64_t)(uintptr_t)pts,
					     .count = n, .timeout_ns = WAIT_NS,
					     .flags = VMB_SYNCOBJ_WAIT_ALL | VMB_SYNCOBJ_WAIT_RELATIVE};
		int ret;
		RESTART(ret, vmb_syncobj_wait(C, &w));
		CHECK(ret == 0, "waiting for %u syncobjs: %d", n, ret);
	}
	/* user fences: every bind's, and the execs' of queues that still exist */
	for (unsigned int i = 0; i < nufrecs; i++) {
		if (ufrecs[i].exq_id && !exq_of(ufrecs[i].exq_id))
			continue;
		int ret = wait_ufence(ufrecs[i].addr, ufrecs[i].value, WAIT_NS);
		CHECK(ret == 0, "user fence %u (%s %u) = %#llx, want %#llx: %d", i, ufrecs[i].exq_id ? "exec queue" : "bind",
		      ufrecs[i].exq_id, (unsigned long long)*ufrecs[i].addr, (unsigned long long)ufrecs[i].value, ret);
	}
	/* binds of queues that are gone: validate says -EBUSY until they have committed */
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		struct vmb_client_validate cv = {0};
		int ret = vmb_client_validate(C, &cv);
		if (ret != -EBUSY) {
			CHECK(ret == 0, "vmb_client_validate: %d", ret);
			break;
		}
		clock_gettime(CLOCK_MONOTONIC, &t1);
		CHECK((t1.tv_sec - t0.tv_sec) * 1000000000ll + (t1.tv_nsec - t0.tv_nsec) < WAIT_NS,
		      "binds still pending after 10 s");
		struct timespec d = {0, 100000};
		nanosleep(&d, NULL);
	}
	for (int vi = 0; vi < MAX_VMS; vi++) {
		if (!vms[vi].live)
			continue;
		vms[vi].dirty = false;
		check_mappings(&vms[vi]);
		check_gpu(&vms[vi]);
	}
	for (unsigned int i = 0; i < nbobj; i++) {
		bobjs[i].moving = false; /* every PREFETCH has committed */
		if (!bobjs[i].handle)
			continue;
		check_bo(i);
		check_bo_cpu(i);
	}
	check_syncobj_values(true);
	for (unsigned int i = 0; trace && i < nexqs; i++) {
		struct vmb_exec_queue_query qq = {.exec_queue_id = exqs[i].id};
		CHECK(vmb_exec_queue_query(C, &qq) == 0, "exec_queue_query");
		fprintf(stderr, "  exec queue %u: %llu of %llu jobs done, flags %#x error %d fault %#llx\n", qq.exec_queue_id,
			(unsigned long long)qq.jobs_done, (unsigned long long)exqs[i].nexec, qq.flags, qq.error,
			(unsigned long long)qq.fault_addr);
	}
	step_what = saved;
}

/* ---- objects ---- */


static unsigned int nomem_ok(void)
{
	return inj_nomem ? A_NOMEM : 0;
}

/*
 * Around a step's main calls: the inj_nth-th hit of a site of class inj_class (VMB_INJECT_*) of the
 * calling thread fails, through the public vmb_debug_fault_inject(): always once (a persistent
 * arming would make every later call of the step fail, the harness's own checks included) and
 * with the thread's scope (COMMIT, the one process-wide class, would fail the workers' commits
 * and ban vms: its arming is only ever checked and disarmed, do_fault_api()). disarm() runs
 * after every armed call, and every input ends with disarm_all(): nothing stays armed past the
 * call it was meant for. inj_fired: the arming injected its failure.
 */
static void arm(void)
{
	if (!inj_nomem)
		return;
	struct vmb_fault_inject a = {.classes = inj_class, .flags = VMB_INJECT_ONCE, .nth = inj_nth,
				     .scope = VMB_INJECT_SCOPE_THREAD};
	int ret = vmb_debug_fault_inject(C, &a);
	CHECK(ret == 0, "arming class %#x at %lu: %d", inj_class, inj_nth, ret);
	CHECK(a.left == 0, "arming class %#x: the previous arming was still on (%llu to go)", inj_class,
	      (unsigned long long)a.left);
}

static void disarm(void)
{
	if (!inj_nomem)
		return;
	struct vmb_fault_inject a = {.classes = inj_class};
	int ret = vmb_debug_fault_inject(C, &a);
	CHECK(ret == 0 && a.injected <= 1 && (a.injected == 0 || a.left == 0),
	      "disarming class %#x: %d, left %llu, injected %llu", inj_class, ret, (unsigned long long)a.left,
	      (unsigned long long)a.injected);
	inj_fired |= a.injected != 0;
}

/* Every thread-scope countdown of the fuzzing thread off (the end of an input). */
static void disarm_all(void)
{
	static const unsigned int cls[] = {VMB_INJECT_HOST_ALLOC | VMB_INJECT_HOST_MAP, VMB_INJECT_THREAD,
					   VMB_INJECT_PT_PAGE};
	for (unsigned int i = 0; i < sizeof(cls) / sizeof(cls[0]); i++) {
		struct vmb_fault_inject a = {.classes = cls[i]};
		CHECK(vmb_debug_fault_inject(C, &a) == 0, "disarming class %#x", cls[i]);
	}
}


static void do_bo_create(void)
{
	uint8_t k = u8(), f = fb();
	uint32_t pages;
	switch (k & 7) {
	case 3: pages = 512; break; /* 2 MiB: huge leaves */
	case 4: pages = 1 + below(64); break;
	case 5: pages = 16 * (1 + below(8)); break;
	case 6: pages = 1 + below(256); break;
	case 7: pages = 1 + below(1024); break;
	default: pages = 1 + below(16); break;
	}
	static const uint32_t place[] = {VMB_PLACE_VRAM, VMB_PLACE_SYSTEM, VMB_PLACE_VRAM | VMB_PLACE_SYSTEM,
					 VMB_PLACE_VRAM};
	struct vmb_bo_create a = {.size = pages * PG, .placements = place[(k >> 3) & 3]};
	int want = 0;
	if (f < 16) {
		switch (f & 7) {
		case 0: a.flags = 1; break;
		case 1: a.vm_id = bad_handle(vm_id_live, false); break; /* private to no vm */
		case 2: a.reserved = 1; break;
		case 3: a.placements = 0; break;
		case 4: a.placements |= 4; break;
		case 5: a.size = 0; break;
		case 6: a.size += 2048; break;
		default: a.chunk_size = 7; break; /* not a power of two */
		}
		want = (f & 7) == 1 ? -ENOENT : -EINVAL;
	}
	if (!want && (live_bos() >= MAX_LIVE_BOS || nbobj >= MAX_BOBJ))
		return;
	arm();
	int ret = vmb_bo_create(C, &a);
	disarm();
	expect("bo_create", ret, want, want ? 0 : A_NOSPC | nomem_ok());
	if (ret)
		return;
	CHECK(a.handle && !bo_handle_live(a.handle), "bo_create: handle %u", a.handle);
	struct bobj *b = &bobjs[nbobj];
	*b = (struct bobj){.handle = a.handle, .pages = pages, .placements = a.placements};
	struct vmb_bo_query q = {.handle = a.handle};
	CHECK(vmb_bo_query(C, &q) == 0, "bo_query");
	CHECK(q.size == a.size && q.placements == a.placements && (a.placements & (1u << q.region)) &&
		      q.vm_mappings == 0,
	      "new BO: size %llu placements %#x region %u mappings %u", (unsigned long long)q.size, q.placements,
	      q.region, q.vm_mappings);
	/* VRAM first when allowed */
	b->region = q.region;
	struct vmb_bo_mmap m = {.handle = a.handle};
	ret = vmb_bo_mmap(C, &m);
	expect("bo_mmap", ret, 0, A_NOMEM);
	if (ret) {
		struct vmb_bo_destroy d = {.handle = a.handle};
		CHECK(vmb_bo_destroy(C, &d) == 0, "bo_destroy");
		return;
	}
	b->cpu = (uint8_t *)(uintptr_t)m.ptr;
	b->cpu_maps = 1;
	/* contents start zeroed (the first word of every page, the first and last pages fully);
	 * the tags go in with one write fault per page */
	for (uint32_t p = 0; p < pages; p++) {
		uint64_t *w = (uint64_t *)(b->cpu + p * PG);
		uint64_t old = __atomic_exchange_n(w, tag_of(1, nbobj, p), __ATOMIC_RELAXED);
		CHECK(old == 0, "new BO %u: page %u word 0 is %#llx", a.handle, p, (unsigned long long)old);
		for (unsigned int j = 1; (p == 0 || p == pages - 1) && j < 512; j++)
			CHECK(w[j] == 0, "new BO %u: page %u word %u is %#llx", a.handle, p, j, (unsigned long long)w[j]);
	}
	nbobj++;
}

static void do_bo_destroy(void)
{
	struct vmb_bo_destroy d = {0};
	uint8_t f = fb();
	int i = pick_bo(), want = 0;
	if (i >= 0)
		d.handle = bobjs[i].handle;
	if (i < 0 || f < 24) {
		switch (f & 3) {
		case 0: d.pad = 1; want = -EINVAL; break;
		case 1: d.reserved = 1; want = -EINVAL; break;
		default: d.handle = bad_handle(bo_handle_live, true); want = -ENOENT; break;
		}
	}
	int ret = vmb_bo_destroy(C, &d);
	expect("bo_destroy", ret, want, 0);
	if (!ret) {
		struct bobj *b = &bobjs[i];
		/* the CPU mapping outlives the handle, with the contents, until munmap by pointer */
		check_bo_cpu((unsigned int)i);
		for (uint32_t n = b->cpu_maps; b->cpu && (f & 0x80) == 0; n--) {
			struct vmb_bo_munmap m = {.ptr = (uint64_t)(uintptr_t)b->cpu};
			expect("bo_munmap (destroyed handle)", vmb_bo_munmap(C, &m), n ? 0 : -EINVAL, 0);
			if (!n)
				break;
		}
		b->handle = 0;
		b->cpu = NULL;
		b->cpu_maps = 0;
	}
}

static void do_bo_misc(void)
{
	uint8_t k = u8();
	int i = pick_bo();
	if (i < 0)
		return;
	struct bobj *b = &bobjs[i];
	switch (k & 3) {
	case 0: { /* another CPU map: the same pointer */
		struct vmb_bo_mmap m = {.handle = b->handle};
		int want = 0;
		if (k & 0x80) {
			if (k & 0x40)
				m.flags = 1;
			else
				m.reserved = 1;
			want = -EINVAL;
		}
		int ret = vmb_bo_mmap(C, &m);
		expect("bo_mmap", ret, want, want ? 0 : A_NOMEM);
		if (ret)
			return;
		CHECK(!b->cpu || m.ptr == (uint64_t)(uintptr_t)b->cpu, "bo_mmap gave another pointer");
		b->cpu = (uint8_t *)(uintptr_t)m.ptr;
		b->cpu_maps++;
		check_bo_cpu((unsigned int)i);
		break;
	}
	case 1: { /* unmap one CPU map */
		struct vmb_bo_munmap m = {.handle = b->handle, .ptr = (uint64_t)(uintptr_t)b->cpu};
		int want = b->cpu ? 0 : -EINVAL;
		if (k & 0x80) {
			switch ((k >> 4) & 3) {
			case 0: m.pad = 1; want = -EINVAL; break;
			case 1: m.reserved = 1; want = -EINVAL; break;
			case 2: m.ptr += PG; want = -EINVAL; break;
			default: m.handle = bad_handle(bo_handle_live, false); want = -ENOENT; break;
			}
		} else if (k & 0x40) {
			m.handle = 0; /* the mapping named by its pointer alone */
		}
		int ret = vmb_bo_munmap(C, &m);
		expect("bo_munmap", ret, want, 0);
		if (!ret && --b->cpu_maps == 0)
			b->cpu = NULL;
		break;
	}
	default: { /* query */
		struct vmb_bo_query q = {.handle = b->handle};
		int want = 0;
		if (k & 0x80) {
			switch ((k >> 4) & 3) {
			case 0: q.pad = 1; want = -EINVAL; break;
			case 1: q.pad2 = 1; want = -EINVAL; break;
			case 2: q.reserved = 1; want = -EINVAL; break;
			default: q.handle = bad_handle(bo_handle_live, true); want = -ENOENT; break;
			}
			expect("bo_query", vmb_bo_query(C, &q), want, 0);
			break;
		}
		check_bo((unsigned int)i);
		check_bo_cpu((unsigned int)i);
		break;
	}
	}
}

static int sync_bind1(uint32_t vm, struct vmb_bind_op *op)
{
	struct vmb_vm_bind b = {.vm_id = vm, .num_binds = 1, .binds = (uint64_t)(uintptr_t)op};
	int ret;
	RESTART(ret, vmb_vm_bind(C, &b));
	return ret;
}

static void do_vm_create(void)
{
	int slot = -1;
	for (int v = 0; v < MAX_VMS && slot < 0; v++)
		if (!vms[v].used)
			slot = v;
	uint8_t k = u8(), f = fb();
	static const uint64_t sizes[] = {0, CMD_END, UINT64_C(1) << 30, 0};
	static const uint64_t psz[] = {0,
				       VMB_PAGE_4K,
				       VMB_PAGE_4K | VMB_PAGE_64K,
				       VMB_PAGE_4K | VMB_PAGE_2M,
				       VMB_PAGE_4K | VMB_PAGE_64K | VMB_PAGE_2M | VMB_PAGE_1G,
				       0,
				       0,
				       VMB_PAGE_4K | VMB_PAGE_2M | VMB_PAGE_1G};
	struct vmb_vm_create a = {.flags = k & 3, .va_size = sizes[(k >> 2) & 3], .page_sizes = psz[(k >> 4) & 7]};
	int want = 0;
	if (f < 20) {
		switch (f % 7) {
		case 0: a.flags |= 8; break; /* the first unknown flag */
		case 1: a.reserved = 1; break;
		case 2: a.va_size = VA_MAX + PG; break;
		case 3: a.va_size = CMD_END + 100; break;
		case 4: a.page_sizes = VMB_PAGE_2M; break;
		case 5: a.page_sizes = VMB_PAGE_4K | (PG << 1); break;
		default: a.page_sizes = VMB_PAGE_4K | (UINT64_C(1) << 39); break;
		}
		want = -EINVAL;
	}
	if (!want && slot < 0)
		return;
	arm();
	int ret = vmb_vm_create(C, &a);
	disarm();
	/* the root page table comes from the device's page-table pool: a small pool may be full */
	expect("vm_create", ret, want, want ? 0 : nomem_ok() | (opt_pool <= (256u << 10) ? A_NOMEM : 0));
	if (ret)
		return;
	CHECK(a.vm_id && !vm_by_id(a.vm_id), "vm_create: id %u", a.vm_id);
	struct fvm *v = &vms[slot];
	memset(v, 0, offsetof(struct fvm, pg));
	memset(v->pg, 0, sizeof(v->pg));
	v->used = v->live = true;
	v->id = a.vm_id;
	v->flags = a.flags;
	v->va_size = a.va_size ? a.va_size : VA_MAX;

	/* the command BO, READONLY above the window */
	struct vmb_bo_create bc = {.size = CMD_SIZE, .placements = VMB_PLACE_SYSTEM | VMB_PLACE_VRAM};
	arm();
	ret = vmb_bo_create(C, &bc);
	disarm();
	expect("bo_create (commands)", ret, 0, A_NOSPC | nomem_ok());
	if (ret)
		return;
	struct vmb_bo_mmap m = {.handle = bc.handle};
	struct vmb_bind_op op = {.op = VMB_BIND_OP_MAP, .flags = VMB_BIND_FLAG_READONLY, .bo_handle = bc.handle,
				 .addr = CMD_VA, .range = CMD_SIZE};
	ret = vmb_bo_mmap(C, &m);
	expect("bo_mmap (commands)", ret, 0, A_NOMEM);
	if (!ret) {
		arm();
		ret = sync_bind1(v->id, &op);
		disarm();
		expect("vm_bind (commands)", ret, 0, A_NOMEM);
	}
	if (ret) {
		struct vmb_bo_destroy d = {.handle = bc.handle};
		CHECK(vmb_bo_destroy(C, &d) == 0, "bo_destroy (commands)");
		return;
	}
	v->has_cmd = true;
	v->reserve_short = inj_fired; /* a failure may have hit the command bind's refill */
	v->cmd_bo = bc.handle;
	v->cmd_cpu = (uint64_t *)(uintptr_t)m.ptr;
}

/* Drop the harness's view of a destroyed vm's slot once nothing can run through it. */
static void vm_slot_release(struct fvm *v)
{
	if (v->has_cmd) {
		struct vmb_bo_destroy d = {.handle = v->cmd_bo};
		CHECK(vmb_bo_destroy(C, &d) == 0, "bo_destroy (commands)");
	}
	v->used = v->live = false;
	v->has_cmd = false;
}

static void do_vm_destroy(void)
{
	uint8_t f = fb();
	int vi = pick_vm(), want = 0;
	struct vmb_vm_destroy d = {0};
	if (vi >= 0)
		d.vm_id = vms[vi].id;
	if (vi < 0 || f < 24) {
		switch (f % 3) {
		case 0: d.pad = 1; want = -EINVAL; break;
		case 1: d.reserved = 1; want = -EINVAL; break;
		default: d.vm_id = bad_handle(vm_id_live, true); want = -ENOENT; break;
		}
	}
	int ret = vmb_vm_destroy(C, &d);
	expect("vm_destroy", ret, want, 0);
	if (ret)
		return;
	struct fvm *v = &vms[vi];
	v->live = false;
	if (v->had_exq)
		counts_loose = true; /* exec queues or their jobs may keep it, and its mappings */
	if (!v->nexq)
		vm_slot_release(v);
}

static void do_bind_queue(bool create)
{
	uint8_t f = fb();
	int vi = pick_vm(), want = 0;
	struct fvm *v = vi >= 0 ? &vms[vi] : NULL;
	if (create) {
		struct vmb_bind_queue_create a = {.vm_id = v ? v->id : 0};
		if (!v || f < 24) {
			switch (f % 4) {
			case 0: a.flags = 1; want = -EINVAL; break;
			case 1: a.pad = 1; want = -EINVAL; break;
			case 2: a.reserved = 1; want = -EINVAL; break;
			default: a.vm_id = bad_handle(vm_id_live, true); want = -ENOENT; break;
			}
		}
		a.serial = f; /* out: not read */
		if (!want && v->nq >= MAX_BQ)
			return;
		arm();
		int ret = vmb_bind_queue_create(C, &a);
		disarm();
		expect("bind_queue_create", ret, want, want ? 0 : nomem_ok());
		if (ret)
			return;
		CHECK(a.queue_id && !vm_has_queue(v, a.queue_id), "bind_queue_create: id %u", a.queue_id);
		v->queues[v->nq++] = a.queue_id;
		return;
	}
	struct vmb_bind_queue_destroy d = {.vm_id = v ? v->id : 0};
	unsigned int qi = v && v->nq ? below(v->nq) : 0;
	if (v && v->nq)
		d.queue_id = v->queues[qi];
	if (!v || !v->nq || f < 24) {
		switch (f % 4) {
		case 0: d.serial = UINT64_MAX; want = d.queue_id ? -ENOENT : -EINVAL; break; /* no queue's */
		case 1: d.queue_id = 0; want = -EINVAL; break; /* the default queue */
		case 2: d.vm_id = bad_handle(vm_id_live, true); want = d.queue_id ? -ENOENT : -EINVAL; break;
		default: d.queue_id = 50 + (f & 7); want = -ENOENT; break;
		}
	}
	int ret = vmb_bind_queue_destroy(C, &d);
	expect("bind_queue_destroy", ret, want, 0);
	if (!ret)
		v->queues[qi] = v->queues[--v->nq];
}

/* ---- syncs ---- */

static void do_syncobj_create(void)
{
	uint8_t k = u8();
	if (nsyncs >= MAX_SYNCS)
		return;
	struct fsync *s = &syncs[nsyncs];
	if ((k & 7) == 7 && gates_closed() < MAX_GATES) {
		/* a gate: an imported eventfd, signalled when the harness writes it */
		int fd = eventfd(0, EFD_CLOEXEC);
		CHECK(fd >= 0, "eventfd");
		struct vmb_syncobj_fd a = {.fd = fd};
		arm();
		int ret = vmb_syncobj_import_fd(C, &a);
		disarm();
		expect("syncobj_import_fd", ret, 0, nomem_ok());
		if (ret) {
			close(fd);
			return;
		}
		*s = (struct fsync){.handle = a.handle, .submitted = true, .gate_fd = fd};
		nsyncs++;
		return;
	}
	struct vmb_syncobj_create a = {.flags = k & 3};
	int want = 0;
	if ((k & 0xf8) == 0xf8) {
		if (k & 4)
			a.flags |= 4;
		else
			a.reserved = 1;
		want = -EINVAL;
	}
	arm();
	int ret = vmb_syncobj_create(C, &a);
	disarm();
	expect("syncobj_create", ret, want, want ? 0 : nomem_ok());
	if (ret)
		return;
	CHECK(a.handle && !sync_of(a.handle), "syncobj_create: handle %u", a.handle);
	bool tl = a.flags & VMB_SYNCOBJ_CREATE_TIMELINE, sig = (a.flags & VMB_SYNCOBJ_CREATE_SIGNALED) && !tl;
	*s = (struct fsync){.handle = a.handle, .tl = tl, .submitted = sig, .signalled = sig, .gate_fd = -1};
	nsyncs++;
}

static void sync_remove(struct fsync *s)
{
	if (s->gate_fd >= 0) {
		/* the gate's fence stays with whatever waits on it: open it */
		uint64_t one = 1;
		CHECK(write(s->gate_fd, &one, sizeof(one)) == (ssize_t)sizeof(one), "gate write");
		close(s->gate_fd);
	}
	*s = syncs[--nsyncs];
}

static int pick_sync(int want_tl /* -1 any, 0 binary, 1 timeline */)
{
	int cand[MAX_SYNCS], n = 0;
	for (unsigned int i = 0; i < nsyncs; i++)
		if (want_tl < 0 || syncs[i].tl == (want_tl == 1))
			cand[n++] = (int)i;
	return n ? cand[below((uint32_t)n)] : -1;
}

static void do_syncobj_destroy(void)
{
	uint8_t f = fb();
	int i = pick_sync(-1), want = 0;
	struct vmb_syncobj_destroy d = {.handle = i >= 0 ? syncs[i].handle : 0};
	if (i < 0 || f < 24) {
		switch (f % 3) {
		case 0: d.pad = 1; want = -EINVAL; break;
		case 1: d.reserved = 1; want = -EINVAL; break;
		default: d.handle = bad_handle(sync_live, true); want = -ENOENT; break;
		}
	}
	int ret = vmb_syncobj_destroy(C, &d);
	expect("syncobj_destroy", ret, want, 0);
	if (!ret)
		sync_remove(&syncs[i]);
}

/* reset / signal (binary), timeline signal, query: arrays of 1-3 handles. */
static void do_syncobj_array(void)
{
	uint8_t k = u8(), f = fb();
	unsigned int op = k & 3, n = 1 + (k >> 2) % 3;
	uint32_t h[3];
	uint64_t pts[3];
	int idx[3];
	if (!nsyncs)
		return;
	for (unsigned int j = 0; j < n; j++) {
		int want_tl = op == 2 ? 1 : op == 3 ? -1 : 0;
		idx[j] = (k & 0x40) ? pick_sync(-1) : pick_sync(want_tl);
		if (idx[j] < 0)
			idx[j] = pick_sync(-1);
		h[j] = syncs[idx[j]].handle;
		pts[j] = 0;
	}
	/* timeline points: above each timeline's last, increasing within the call */
	for (unsigned int j = 0; j < n && op == 2; j++) {
		uint64_t base = syncs[idx[j]].last;
		for (unsigned int i = 0; i < j; i++)
			if (h[i] == h[j] && pts[i] > base)
				base = pts[i];
		pts[j] = base + 1 + below(3);
		if (j && (k & 0x80) && base > syncs[idx[j]].last)
			pts[j] = syncs[idx[j]].last + 1 + (k & 1); /* not above an earlier one: -EINVAL */
	}
	struct vmb_syncobj_array a = {.handles = (uint64_t)(uintptr_t)h, .count = n,
				      .points = op >= 2 ? (uint64_t)(uintptr_t)pts : 0};
	if (f < 32) {
		switch (f & 7) {
		case 0: a.flags = 1; break;
		case 1: a.reserved = 1; break;
		case 2: a.count = 0; break;
		case 3: a.count = 1025; break;
		case 4: a.points = a.points ? 0 : (uint64_t)(uintptr_t)pts; break;
		case 5: a.handles = 0; break;
		case 6: h[below(n)] = bad_handle(sync_live, true); break;
		default: if (op == 2) pts[0] = syncs[idx[0]].last; break;
		}
	}
	/* the rules, in order */
	int want = 0;
	if (a.flags || a.reserved || a.count == 0 || a.count > 1024 || (op >= 2) != (a.points != 0))
		want = -EINVAL;
	else if (!a.handles)
		want = -EFAULT;
	for (unsigned int j = 0; !want && j < n; j++)
		if (!sync_of(h[j]))
			want = -ENOENT;
	for (unsigned int j = 0; !want && j < n; j++) {
		struct fsync *s = sync_of(h[j]);
		if (op <= 1 && s->tl)
			want = -EINVAL;
		if (op == 2 && (!s->tl || pts[j] <= s->last))
			want = -EINVAL;
		/* the same timeline twice: its points go up in the array too */
		for (unsigned int i = 0; op == 2 && i < j; i++)
			if (h[i] == h[j] && pts[i] >= pts[j])
				want = -EINVAL;
	}
	int ret;
	static const char *const names[] = {"syncobj_reset", "syncobj_signal", "syncobj_timeline_signal", "syncobj_query"};
	arm();
	switch (op) {
	case 0: ret = vmb_syncobj_reset(C, &a); break;
	case 1: ret = vmb_syncobj_signal(C, &a); break;
	case 2: ret = vmb_syncobj_timeline_signal(C, &a); break;
	default: ret = vmb_syncobj_query(C, &a); break;
	}
	disarm();
	expect(names[op], ret, want, want ? 0 : nomem_ok());
	if (ret)
		return;
	for (unsigned int j = 0; j < n; j++) {
		struct fsync *s = sync_of(h[j]);
		switch (op) {
		case 0: s->submitted = s->signalled = false; break;
		case 1: s->submitted = s->signalled = true; break;
		case 2: if (pts[j] > s->last) s->last = pts[j]; break; /* the timeline's last point */
		default:
			if (s->tl) {
				CHECK(pts[j] >= s->seen && pts[j] <= s->last, "timeline %u value %llu, seen %llu, last %llu",
				      s->handle, (unsigned long long)pts[j], (unsigned long long)s->seen,
				      (unsigned long long)s->last);
				s->seen = pts[j];
			} else {
				CHECK(pts[j] <= 1 && (s->submitted || !pts[j]) && (!s->signalled || pts[j] == 1),
				      "binary syncobj %u: value %llu (fence %d, signalled %d)", s->handle,
				      (unsigned long long)pts[j], s->submitted, s->signalled);
			}
			break;
		}
	}
}

static void do_syncobj_wait(void)
{
	uint8_t k = u8(), f = fb();
	unsigned int n = 1 + (k & 3) % 3;
	uint32_t h[3];
	uint64_t pts[3];
	if (!nsyncs)
		return;
	bool any_tl = false;
	for (unsigned int j = 0; j < n; j++) {
		struct fsync *s = &syncs[pick_sync(-1)];
		h[j] = s->handle;
		pts[j] = s->tl ? 1 + below((uint32_t)(s->last + 2)) : 0;
		any_tl |= s->tl;
	}
	struct vmb_syncobj_wait w = {.handles = (uint64_t)(uintptr_t)h, .count = n,
				     .points = any_tl || (k & 0x80) ? (uint64_t)(uintptr_t)pts : 0,
				     .flags = (k >> 2) & 0xf};
	/* never block: relative 0 or a few microseconds, or an absolute deadline in the past */
	if (w.flags & VMB_SYNCOBJ_WAIT_RELATIVE)
		w.timeout_ns = (k & 0x40) ? 20000 : 0;
	else
		w.timeout_ns = (k & 0x40) ? 1 : 0;
	if (f < 32) {
		switch (f & 7) {
		case 0: w.flags |= 0x10; break;
		case 1: w.pad = 1; break;
		case 2: w.reserved = 1; break;
		case 3: w.count = 0; break;
		case 4: w.handles = 0; break;
		case 5: h[below(n)] = bad_handle(sync_live, true); break;
		case 6: w.flags |= VMB_SYNCOBJ_WAIT_RELATIVE; w.timeout_ns = -1; break;
		default: pts[0] = syncs[0].tl ? 0 : 1; h[0] = syncs[0].handle; break;
		}
	}
	int want = 0;
	bool not_submitted = false;
	if (w.pad || w.reserved || (w.flags & ~0xfu) || w.count == 0 || w.count > 1024)
		want = -EINVAL;
	else if (!w.handles)
		want = -EFAULT;
	else if ((w.flags & VMB_SYNCOBJ_WAIT_RELATIVE) && w.timeout_ns < 0)
		want = -EINVAL;
	for (unsigned int j = 0; !want && j < n; j++)
		if (!sync_of(h[j]))
			want = -ENOENT;
	for (unsigned int j = 0; !want && j < n; j++) {
		struct fsync *s = sync_of(h[j]);
		uint64_t p = w.points ? pts[j] : 0;
		if (s->tl ? p == 0 : p != 0)
			want = -EINVAL;
		not_submitted |= s->tl ? p > s->last : !s->submitted;
	}
	/* either flag waits for the submission (as DRM): then a timeout */
	if (!want && not_submitted && !(w.flags & (VMB_SYNCOBJ_WAIT_FOR_SUBMIT | VMB_SYNCOBJ_WAIT_AVAILABLE)))
		want = -EINVAL;
	arm();
	int ret;
	RESTART(ret, vmb_syncobj_wait(C, &w));
	disarm();
	unsigned int allow = want ? 0 : A_TIME | nomem_ok();
	expect("syncobj_wait", ret, want, allow);
	if (!ret && !(w.flags & VMB_SYNCOBJ_WAIT_ALL))
		CHECK(w.first_signaled < n, "first_signaled %u of %u", w.first_signaled, n);
}

static void do_syncobj_transfer(void)
{
	uint8_t k = u8(), f = fb();
	int si = pick_sync(-1), di = pick_sync(-1);
	if (si < 0)
		return;
	struct fsync *s = &syncs[si], *d = &syncs[di];
	struct vmb_syncobj_transfer t = {.src_handle = s->handle, .dst_handle = d->handle,
					 .src_point = s->tl ? 1 + below((uint32_t)s->last + 1) : 0,
					 .dst_point = d->tl ? d->last + 1 + (k & 3) : 0};
	if (f < 32) {
		switch (f & 7) {
		case 0: t.flags = 1; break;
		case 1: t.pad = 1; break;
		case 2: t.reserved = 1; break;
		case 3: t.src_handle = bad_handle(sync_live, true); break;
		case 4: t.dst_handle = bad_handle(sync_live, true); break;
		case 5: t.src_point = s->tl ? 0 : 1; break;
		case 6: t.dst_point = d->tl ? d->last : 1; break;
		default: break;
		}
	}
	int want = 0;
	struct fsync *ss = sync_of(t.src_handle), *ds = sync_of(t.dst_handle);
	if (t.flags || t.pad || t.reserved)
		want = -EINVAL;
	else if (!ss || !ds)
		want = -ENOENT;
	else if ((ss->tl ? !t.src_point : t.src_point != 0) || (ds->tl ? !t.dst_point : t.dst_point != 0) ||
		 (ds->tl && t.dst_point <= ds->last))
		want = -EINVAL;
	else if (ss->tl ? t.src_point > ss->last : !ss->submitted)
		want = -EINVAL; /* nothing submitted there */
	arm();
	int ret = vmb_syncobj_transfer(C, &t);
	disarm();
	expect("syncobj_transfer", ret, want, want ? 0 : nomem_ok());
	if (ret)
		return;
	if (ds->tl) {
		ds->last = t.dst_point;
	} else {
		ds->submitted = true;
		ds->signalled = !ss->tl && ss->signalled;
	}
}

static void do_syncobj_fd(void)
{
	uint8_t k = u8();
	int i = pick_sync(-1);
	if ((k & 3) == 0 || i < 0) {
		/* import: a readable eventfd, or descriptors that cannot be */
		int fd = -1, want = 0;
		switch ((k >> 2) & 3) {
		case 0: case 1: {
			fd = eventfd(1, EFD_CLOEXEC);
			CHECK(fd >= 0, "eventfd");
			break;
		}
		case 2: want = -EBADF; break;
		default: fd = memfd_plain; break; /* poll() says a plain file is readable: signalled */
		}
		struct vmb_syncobj_fd a = {.fd = fd};
		if (!want && (k & 0x80)) {
			a.point = 1;
			want = -EINVAL;
		}
		int ret = vmb_syncobj_import_fd(C, &a);
		expect("syncobj_import_fd", ret, want, want ? 0 : nomem_ok());
		if (fd >= 0 && fd != memfd_plain)
			close(fd);
		if (ret)
			return;
		if (nsyncs < MAX_SYNCS) {
			syncs[nsyncs++] = (struct fsync){.handle = a.handle, .submitted = true, .gate_fd = -1};
		} else {
			struct vmb_syncobj_destroy d = {.handle = a.handle};
			CHECK(vmb_syncobj_destroy(C, &d) == 0, "syncobj_destroy");
		}
		return;
	}
	struct fsync *s = &syncs[i];
	struct vmb_syncobj_fd a = {.handle = s->handle, .point = s->tl ? 1 + below((uint32_t)s->last + 1) : 0};
	if (k & 0x80) {
		switch ((k >> 4) & 3) {
		case 0: a.flags = 1; break;
		case 1: a.reserved = 1; break;
		case 2: a.handle = bad_handle(sync_live, true); break;
		default: a.point = s->tl ? 0 : 1; break;
		}
	}
	int want = 0;
	struct fsync *t = sync_of(a.handle);
	if (a.flags || a.pad || a.reserved)
		want = -EINVAL;
	else if (!t)
		want = -ENOENT;
	else if ((t->tl ? !a.point : a.point != 0) || (t->tl ? a.point > t->last : !t->submitted))
		want = -EINVAL;
	int ret = vmb_syncobj_export_fd(C, &a);
	expect("syncobj_export_fd", ret, want, want ? 0 : nomem_ok());
	if (ret)
		return;
	struct pollfd p = {.fd = a.fd, .events = POLLIN};
	int pr;
	while ((pr = poll(&p, 1, 0)) < 0 && errno == EINTR)
		; /* a signal of ours came while nothing was ready (found by the long run of 2026-12-01) */
	CHECK(pr >= 0, "poll: %s", strerror(errno));
	if (t->signalled && !t->tl)
		CHECK(p.revents & POLLIN, "exported fd of a signalled syncobj is not readable");
	if ((k & 0x40) && nsyncs < MAX_SYNCS) {
		struct vmb_syncobj_fd b = {.fd = a.fd};
		ret = vmb_syncobj_import_fd(C, &b);
		expect("syncobj_import_fd", ret, 0, nomem_ok());
		if (!ret)
			syncs[nsyncs++] = (struct fsync){.handle = b.handle, .submitted = true, .gate_fd = -1};
	}
	close(a.fd);
}

static void do_ufence_wait(void)
{
	uint8_t k = u8(), f = fb();
	struct vmb_user_fence_wait w = {.mask = ~0ull, .op = (uint16_t)(k % 6)};
	uint64_t *addr = NULL;
	int bo = -1; /* the fence named as (BO, offset): VMB_UFENCE_WAIT_BO */
	if ((k & 0x30) == 0x30) {
		/* a BO's memory, where UFENCE_SIGNAL commands write: by its CPU map, or by (BO, offset) */
		int i = pick_bo();
		uint64_t off = i >= 0 ? below(bobjs[i].pages) * PG + 64 + 8 * below(500) : 0;
		if (i >= 0 && (k & 1)) {
			bo = i;
			w.flags = VMB_UFENCE_WAIT_BO;
			w.bo_handle = bobjs[i].handle;
			w.addr = off;
		} else if (i >= 0 && bobjs[i].cpu) {
			addr = (uint64_t *)(bobjs[i].cpu + off);
		}
	}
	if (!addr && nufrecs) {
		struct ufrec *r = &ufrecs[below(nufrecs)];
		addr = r->addr;
		w.value = (k & 0x40) ? r->value : r->value + 1;
	}
	if (!addr && bo < 0)
		addr = &ufmem[below(UF_SLOTS)];
	if (bo < 0)
		w.addr = (uint64_t)(uintptr_t)addr;
	if (k & 0x80) {
		w.flags |= VMB_UFENCE_WAIT_ABSTIME;
		w.timeout = 1; /* long past */
	}
	if (f < 40) {
		switch (f % 8) {
		case 0: w.op = 6 + (f & 1); break;
		case 1: w.flags |= 4; break;
		case 2: w.bo_handle = (1u << 20) + 1; break; /* no BO's: -EINVAL without WAIT_BO, else -ENOENT */
		case 3: w.exec_queue_serial = UINT64_MAX; break; /* no queue's (-EINVAL without a queue) */
		case 4: w.addr = 0; break;
		case 5: w.addr += 4; break;
		case 6: w.addr = 8; break; /* not mapped */
		default: /* read-only memory (it can wait there), or PROT_NONE memory */
			w.addr = (uint64_t)(uintptr_t)((f / 8) & 1 ? ro_page : none_page) + 8 * (f / 16);
			break;
		}
	}
	/* tied to an exec queue (-EIO once it is banned, unless the comparison holds), or to a
	 * handle none has; now and then a pad */
	uint8_t qk = u8();
	if (nexqs && (qk & 3) == 1)
		w.exec_queue_id = exqs[below(nexqs)].id;
	else if ((qk & 3) == 2)
		w.exec_queue_id = bad_handle(exq_live, false);
	else if ((qk & 0xf) == 3)
		w.pad = 1;
	int want = 0;
	bool in_bo = w.flags & VMB_UFENCE_WAIT_BO;
	if ((w.exec_queue_serial && !w.exec_queue_id) || w.pad || (w.flags & ~3u) || w.op > 5 || (w.addr & 7) ||
	    (in_bo ? !w.bo_handle : w.bo_handle || !w.addr))
		want = -EINVAL;
	else if (in_bo && !bo_handle_live(w.bo_handle))
		want = -ENOENT;
	else if (in_bo && w.addr + 8 > (uint64_t)bobjs[bobj_of(w.bo_handle)].pages * PG)
		want = -EINVAL; /* (a live handle here is one of the harness's BOs: bo above) */
	else if (!in_bo && !host_mapped(w.addr))
		want = -EFAULT;
	else if (w.exec_queue_id && (!exq_of(w.exec_queue_id) || w.exec_queue_serial))
		want = -ENOENT;
	struct fexq *q = want ? NULL : exq_of(w.exec_queue_id);
	int ret;
	RESTART(ret, vmb_user_fence_wait(C, &w));
	expect("user_fence_wait", ret, want, want ? 0 : A_TIME | (q ? A_IO : 0));
	CHECK(!(q && q->banned) || ret != -ETIME, "user_fence_wait on banned exec queue %u: -ETIME", q->id);
	if (ret == -EIO) {
		/* its queue is banned: the queue says so from now on */
		struct vmb_exec_queue_query qq = {.exec_queue_id = q->id};
		CHECK(vmb_exec_queue_query(C, &qq) == 0 && (qq.flags & VMB_EXEC_QUEUE_BANNED),
		      "user_fence_wait -EIO, exec queue %u flags %#x", q->id, qq.flags);
		q->banned = true;
	}
	if (!want && !(w.flags & VMB_UFENCE_WAIT_ABSTIME))
		CHECK(w.timeout == 0, "relative timeout left %lld", (long long)w.timeout);
}

/*
 * vmb_syncobj_query_status: 1-3 entries (a timeline at a point up to 2 above its last). The model
 * cannot tell which fences failed (execs fault, binds are cancelled by a vm's destruction), so it
 * checks what it knows: the status is 0 (pending), 1 or an errno the work can end with; it
 * agrees with the values vmb_syncobj_query reads before (completed there: not pending) and after
 * (not pending: completed there); a binary syncobj with no fence, a point above the timeline's
 * last, is pending; a fence known signalled is not.
 */
static void do_syncobj_status(void)
{
	uint8_t k = u8(), f = fb();
	unsigned int n = 1 + (k & 3) % 3;
	uint32_t h[3];
	uint64_t pts[3], before[3], after[3];
	int32_t st[3];
	bool any_tl = false;
	if (!nsyncs)
		return;
	for (unsigned int j = 0; j < n; j++) {
		struct fsync *s = &syncs[pick_sync(-1)];
		h[j] = s->handle;
		pts[j] = s->tl ? 1 + below((uint32_t)(s->last + 2)) : 0;
		any_tl |= s->tl;
	}
	struct vmb_syncobj_status a = {.handles = (uint64_t)(uintptr_t)h, .count = n,
				       .points = any_tl || (k & 0x80) ? (uint64_t)(uintptr_t)pts : 0,
				       .status = (uint64_t)(uintptr_t)st};
	if (f < 32) {
		switch (f & 7) {
		case 0: a.flags = 1u << (f >> 5); break;
		case 1: a.reserved[(f >> 3) & 1] = 1; break;
		case 2: a.count = (f & 8) ? 0 : VMB_SYNCOBJ_ARRAY_MAX + 1; break;
		case 3: a.handles = 0; break;
		case 4: a.status = 0; break;
		case 5: h[below(n)] = bad_handle(sync_live, true); break;
		case 6: a.points = 0; break;
		default: { /* a point that does not fit its kind */
			struct fsync *s = sync_of(h[0]);
			pts[0] = s->tl ? 0 : 1;
			a.points = (uint64_t)(uintptr_t)pts;
			break;
		}
		}
	}
	int want = 0;
	if (a.flags || a.reserved[0] || a.reserved[1] || a.count == 0 || a.count > VMB_SYNCOBJ_ARRAY_MAX)
		want = -EINVAL;
	else if (!a.handles || !a.status)
		want = -EFAULT;
	for (unsigned int j = 0; !want && j < n; j++)
		if (!sync_of(h[j]))
			want = -ENOENT;
	for (unsigned int j = 0; !want && j < n; j++) {
		uint64_t p = a.points ? pts[j] : 0;
		if (sync_of(h[j])->tl ? p == 0 : p != 0)
			want = -EINVAL;
	}
	/* the values around it (a query of the same handles, the right kind of call) */
	struct vmb_syncobj_array q = {.handles = (uint64_t)(uintptr_t)h, .points = (uint64_t)(uintptr_t)before, .count = n};
	if (!want)
		CHECK(vmb_syncobj_query(C, &q) == 0, "syncobj_query before the status");
	for (unsigned int j = 0; j < n; j++)
		st[j] = 0x7777;
	arm();
	int ret = vmb_syncobj_query_status(C, &a);
	disarm();
	expect("syncobj_query_status", ret, want, want ? 0 : nomem_ok());
	if (ret)
		return;
	q.points = (uint64_t)(uintptr_t)after;
	CHECK(vmb_syncobj_query(C, &q) == 0, "syncobj_query after the status");
	for (unsigned int j = 0; j < n; j++) {
		struct fsync *s = sync_of(h[j]);
		uint64_t p = s->tl ? pts[j] : 1;
		CHECK(st[j] == 0 || st[j] == 1 || st[j] == -ECANCELED || st[j] == -EFAULT || st[j] == -EINVAL ||
			      st[j] == -ETIMEDOUT,
		      "syncobj %u (%s, point %llu): status %d", s->handle, s->tl ? "timeline" : "binary",
		      (unsigned long long)pts[j], st[j]);
		CHECK(before[j] < p || st[j] != 0, "syncobj %u point %llu: value %llu before, status pending", s->handle,
		      (unsigned long long)p, (unsigned long long)before[j]);
		CHECK(st[j] == 0 || after[j] >= p, "syncobj %u point %llu: status %d, value %llu after", s->handle,
		      (unsigned long long)p, st[j], (unsigned long long)after[j]);
		if (s->tl)
			CHECK(pts[j] <= s->last || st[j] == 0, "timeline %u point %llu above the last %llu: status %d",
			      s->handle, (unsigned long long)pts[j], (unsigned long long)s->last, st[j]);
		else
			CHECK((s->submitted || st[j] == 0) && (!s->signalled || st[j] != 0),
			      "binary syncobj %u (fence %d, signalled %d): status %d", s->handle, s->submitted,
			      s->signalled, st[j]);
	}
}

/* ---- the sync array of a bind or an exec ---- */

struct syncgen {
	struct vmb_sync s[MAX_SY + 2];
	unsigned int n;
	uint64_t *uf[MAX_SY + 2]; /* slots of out user fences */
};

/* 0-3 syncs, valid for a call on a vm with @lr. */
static void gen_syncs(struct syncgen *g, bool lr)
{
	uint8_t k = u8();
	unsigned int n = k & 3;
	uint64_t planned[MAX_SYNCS] = {0}; /* timeline points this call adds */
	g->n = 0;
	for (unsigned int i = 0; i < n; i++) {
		struct vmb_sync *s = &g->s[g->n];
		uint8_t kind = u8();
		memset(s, 0, sizeof(*s));
		switch (kind % 6) {
		case 0: { /* in: a binary syncobj with a fence */
			int j = pick_sync(0);
			if (j < 0 || !syncs[j].submitted)
				continue;
			*s = (struct vmb_sync){.type = VMB_SYNC_SYNCOBJ, .handle = syncs[j].handle};
			break;
		}
		case 1: { /* in: a timeline point */
			int j = pick_sync(1);
			if (j < 0 || !syncs[j].last)
				continue;
			*s = (struct vmb_sync){.type = VMB_SYNC_TIMELINE_SYNCOBJ, .handle = syncs[j].handle,
					       .value = 1 + below((uint32_t)syncs[j].last)};
			break;
		}
		case 2: { /* out: a binary syncobj (LR vms: rarely, -EOPNOTSUPP) */
			int j = pick_sync(0);
			if (j < 0 || (lr && (kind & 0xe0)))
				continue;
			*s = (struct vmb_sync){.type = VMB_SYNC_SYNCOBJ, .flags = VMB_SYNC_FLAG_SIGNAL,
					       .handle = syncs[j].handle};
			break;
		}
		case 3: { /* out: a new timeline point, above the last and this call's */
			int j = pick_sync(1);
			if (j < 0 || (lr && (kind & 0xe0)))
				continue;
			uint64_t base = planned[j] ? planned[j] : syncs[j].last, point = base + 1 + (kind >> 6);
			if ((kind & 0x30) == 0x30 && planned[j])
				point = syncs[j].last + 1; /* not above this call's earlier point: -EINVAL */
			else
				planned[j] = point;
			*s = (struct vmb_sync){.type = VMB_SYNC_TIMELINE_SYNCOBJ, .flags = VMB_SYNC_FLAG_SIGNAL,
					       .handle = syncs[j].handle, .value = point};
			break;
		}
		default: { /* out: a user fence */
			uint64_t *slot = uf_take(false);
			if (!slot)
				continue;
			*s = (struct vmb_sync){.type = VMB_SYNC_USER_FENCE, .flags = VMB_SYNC_FLAG_SIGNAL,
					       .addr = (uint64_t)(uintptr_t)slot, .value = 1 + (rnd() & 0xffffff)};
			g->uf[g->n] = slot;
			break;
		}
		}
		if (s->type != VMB_SYNC_USER_FENCE)
			g->uf[g->n] = NULL;
		g->n++;
	}
}

/* One wrong sync (appended, or replacing one): the rules decide what the call returns. */
static void sync_fault(struct syncgen *g)
{
	uint8_t f = u8();
	unsigned int at = g->n && (f & 0x80) ? below(g->n) : g->n;
	struct vmb_sync *s = &g->s[at];
	int j;
	if (at == g->n) {
		g->uf[g->n++] = NULL;
		*s = (struct vmb_sync){.type = VMB_SYNC_USER_FENCE, .flags = VMB_SYNC_FLAG_SIGNAL,
				       .addr = (uint64_t)(uintptr_t)&ufmem[UF_SLOTS - 1], .value = 1};
	}
	switch (f % 19) {
	case 0: s->pad = 1; break;
	case 1: s->reserved[f & 1] = 1; break;
	case 2: s->flags |= 2; break;
	case 3: s->type = 4 + (f & 1); break;
	case 4: *s = (struct vmb_sync){.type = VMB_SYNC_SYNCOBJ}; break;               /* handle 0 */
	case 5: *s = (struct vmb_sync){.type = VMB_SYNC_SYNCOBJ, .handle = 1, .addr = 8}; break;
	case 6: *s = (struct vmb_sync){.type = VMB_SYNC_SYNCOBJ, .handle = 1, .value = 3}; break;
	case 7: *s = (struct vmb_sync){.type = VMB_SYNC_TIMELINE_SYNCOBJ, .handle = 1}; break; /* point 0 */
	case 8: s->type = VMB_SYNC_USER_FENCE; s->handle = 0; s->addr = 0; s->flags = VMB_SYNC_FLAG_SIGNAL; break;
	case 9: *s = (struct vmb_sync){.type = VMB_SYNC_USER_FENCE, .flags = VMB_SYNC_FLAG_SIGNAL,
				       .addr = (uint64_t)(uintptr_t)&ufmem[UF_SLOTS - 1] + 4}; break;
	case 10: *s = (struct vmb_sync){.type = VMB_SYNC_USER_FENCE, .flags = VMB_SYNC_FLAG_SIGNAL, .handle = 1,
					.addr = (uint64_t)(uintptr_t)&ufmem[UF_SLOTS - 1]}; break;
	case 11: *s = (struct vmb_sync){.type = VMB_SYNC_USER_FENCE, /* in: the library does not wait on these */
					.addr = (uint64_t)(uintptr_t)&ufmem[UF_SLOTS - 1], .value = 1}; break;
	case 12: *s = (struct vmb_sync){.type = VMB_SYNC_SYNCOBJ, .flags = f & 0x40 ? VMB_SYNC_FLAG_SIGNAL : 0,
					.handle = bad_handle(sync_live, false)}; break;
	case 13: /* the type names the other kind */
		if ((j = pick_sync(-1)) < 0)
			break;
		*s = syncs[j].tl ? (struct vmb_sync){.type = VMB_SYNC_SYNCOBJ, .handle = syncs[j].handle}
				 : (struct vmb_sync){.type = VMB_SYNC_TIMELINE_SYNCOBJ, .handle = syncs[j].handle, .value = 1};
		break;
	case 14: /* in: a binary syncobj with nothing submitted */
		if ((j = pick_sync(0)) < 0)
			break;
		*s = (struct vmb_sync){.type = VMB_SYNC_SYNCOBJ, .handle = syncs[j].handle};
		break;
	case 15: /* in: a timeline point not submitted yet */
		if ((j = pick_sync(1)) < 0)
			break;
		*s = (struct vmb_sync){.type = VMB_SYNC_TIMELINE_SYNCOBJ, .handle = syncs[j].handle,
				       .value = syncs[j].last + 1 + (f & 1)};
		break;
	case 16: /* out: a point not above the last */
		if ((j = pick_sync(1)) < 0 || !syncs[j].last)
			break;
		*s = (struct vmb_sync){.type = VMB_SYNC_TIMELINE_SYNCOBJ, .flags = VMB_SYNC_FLAG_SIGNAL,
				       .handle = syncs[j].handle, .value = syncs[j].last - (f & 1 ? 0 : syncs[j].last - 1)};
		break;
	case 17: { /* a user fence in a BO: unknown BO, handle 0, unaligned, past the end, or in */
		int b = pick_bo();
		uint32_t h = b >= 0 && (f & 0x20) ? bobjs[b].handle : bad_handle(bo_handle_live, true);
		uint64_t end = b >= 0 ? (uint64_t)bobjs[b].pages * 4096 : 4096;
		*s = (struct vmb_sync){.type = VMB_SYNC_BO_USER_FENCE, .handle = h, .value = 1,
				       .flags = f & 0x40 ? VMB_SYNC_FLAG_SIGNAL : 0,
				       .addr = f & 0x10 ? end - 8 + 8 * (f & 1) : 8 * (f & 1) + 4 * !!(f & 2)};
		if ((s->flags & VMB_SYNC_FLAG_SIGNAL) && s->addr + 8 <= end && !(s->addr & 7) && s->handle == h &&
		    b >= 0 && h == bobjs[b].handle)
			s->addr = end; /* the valid one is past the end, so the call fails and writes nothing */
		break;
	}
	default: { /* out user fence where nothing is mapped, in read-only memory, in PROT_NONE memory */
		const uint8_t *page = (f / 19) % 3 == 1 ? ro_page : (f / 19) % 3 == 2 ? none_page : NULL;
		*s = (struct vmb_sync){.type = VMB_SYNC_USER_FENCE, .flags = VMB_SYNC_FLAG_SIGNAL,
				       .addr = page ? (uint64_t)(uintptr_t)page + 8 * (f / 57) : 8, .value = 1};
		break;
	}
	}
	if (s->type != VMB_SYNC_USER_FENCE || !(s->flags & VMB_SYNC_FLAG_SIGNAL) || !host_writable(s->addr) ||
	    (s->addr & 7) || s->addr == (uint64_t)(uintptr_t)&ufmem[UF_SLOTS - 1])
		g->uf[at] = NULL;
}

/* The rules for a sync array (shapes, lookups, state); *@outs: syncobj out-syncs. */
NOCOV static int ref_syncs(const struct vmb_sync *s, unsigned int n, unsigned int *outs)
{
	*outs = 0;
	for (unsigned int i = 0; i < n; i++) {
		if (s[i].pad || s[i].reserved[0] || s[i].reserved[1] || (s[i].flags & ~VMB_SYNC_FLAG_SIGNAL))
			return -EINVAL;
		switch (s[i].type) {
		case VMB_SYNC_SYNCOBJ:
			if (!s[i].handle || s[i].addr || s[i].value)
				return -EINVAL;
			break;
		case VMB_SYNC_TIMELINE_SYNCOBJ:
			if (!s[i].handle || s[i].addr || !s[i].value)
				return -EINVAL;
			break;
		case VMB_SYNC_USER_FENCE:
		case VMB_SYNC_BO_USER_FENCE:
			if (s[i].type == VMB_SYNC_USER_FENCE ? s[i].handle || !s[i].addr : !s[i].handle)
				return -EINVAL;
			if (s[i].addr & 7)
				return -EINVAL;
			if (!(s[i].flags & VMB_SYNC_FLAG_SIGNAL))
				return -EOPNOTSUPP;
			break;
		default:
			return -EINVAL;
		}
	}
	for (unsigned int i = 0; i < n; i++) {
		if (s[i].type == VMB_SYNC_BO_USER_FENCE && !bo_handle_live(s[i].handle))
			return -ENOENT;
		if (s[i].type == VMB_SYNC_USER_FENCE || s[i].type == VMB_SYNC_BO_USER_FENCE)
			continue;
		struct fsync *o = sync_of(s[i].handle);
		if (!o)
			return -ENOENT;
		if ((s[i].type == VMB_SYNC_TIMELINE_SYNCOBJ) != o->tl)
			return -EINVAL;
	}
	for (unsigned int i = 0; i < n; i++) {
		if (s[i].type == VMB_SYNC_USER_FENCE) {
			if (!host_writable(s[i].addr))
				return -EFAULT;
			continue;
		}
		if (s[i].type == VMB_SYNC_BO_USER_FENCE) { /* inside the BO (the harness names its own) */
			int b = bobj_of(s[i].handle);
			if (b >= 0 && s[i].addr + 8 > (uint64_t)bobjs[b].pages * 4096)
				return -EINVAL;
			continue;
		}
		struct fsync *o = sync_of(s[i].handle);
		if (!(s[i].flags & VMB_SYNC_FLAG_SIGNAL)) {
			if (o->tl ? s[i].value > o->last : !o->submitted)
				return -EINVAL;
		} else {
			(*outs)++;
			if (o->tl && s[i].value <= o->last)
				return -EINVAL;
			/* the same timeline twice among the out-syncs: its points go up in the array */
			for (unsigned int j = 0; o->tl && j < i; j++)
				if (s[j].type == VMB_SYNC_TIMELINE_SYNCOBJ && (s[j].flags & VMB_SYNC_FLAG_SIGNAL) &&
				    s[j].handle == s[i].handle && s[j].value >= s[i].value)
					return -EINVAL;
		}
	}
	return 0;
}

/* A successful call: its out-syncs now hold its fence. */
static void syncs_done(const struct syncgen *g, uint32_t exq_id)
{
	for (unsigned int i = 0; i < g->n; i++) {
		const struct vmb_sync *s = &g->s[i];
		if (s->type == VMB_SYNC_USER_FENCE) {
			if (g->uf[i]) {
				CHECK(nufrecs < UF_SLOTS, "harness: user-fence records");
				ufrecs[nufrecs++] = (struct ufrec){.addr = g->uf[i], .value = s->value, .exq_id = exq_id};
			}
			continue;
		}
		if (!(s->flags & VMB_SYNC_FLAG_SIGNAL) || s->type == VMB_SYNC_BO_USER_FENCE)
			continue;
		struct fsync *o = sync_of(s->handle);
		if (o->tl) {
			if (s->value > o->last)
				o->last = s->value; /* every point the call added is submitted */
		} else {
			o->submitted = true;
			o->signalled = false;
		}
	}
}

/* ---- VM_BIND ---- */

static uint32_t pick_len(uint32_t max)
{
	uint32_t n;
	if (max == 0)
		return 0;
	switch (u8() & 7) {
	case 0: case 1: case 2: n = 1 + below(max < 16 ? max : 16); break;
	case 3: n = 16 * (1 + below(8)); break;
	case 4: n = 512; break;
	case 5: n = max; break;
	default: n = 1 + below(max); break;
	}
	return n > max ? max : n;
}

static uint32_t pick_page(uint32_t n, uint32_t hint)
{
	uint32_t a = below(WIN_PAGES - n + 1);
	switch (u8() & 3) {
	case 1: a &= ~15u; break;
	case 2: a &= ~511u; break;
	case 3: a = (a & ~511u) | (hint & 511u); break;
	default: break;
	}
	return a + n > WIN_PAGES ? WIN_PAGES - n : a;
}

static void gen_op(struct vmb_bind_op *op)
{
	uint8_t k = u8();
	memset(op, 0, sizeof(*op));
	int bi = -1;
	unsigned int kind = k % 16;
	if ((kind <= 6 || kind == 14) && (bi = pick_bo()) < 0)
		kind = kind == 14 ? 11 : 7;
	switch (kind) {
	case 0: case 1: case 2: case 3: case 4: case 5: case 6: { /* MAP a BO */
		struct bobj *b = &bobjs[bi];
		uint32_t off = 0;
		switch (u8() & 7) {
		case 0: case 1: case 2: off = 0; break;
		case 3: off = below(b->pages) & ~15u; break;
		case 4: off = below(b->pages) & ~511u; break;
		default: off = below(b->pages); break;
		}
		uint32_t n = pick_len(b->pages - off), a = pick_page(n, off);
		*op = (struct vmb_bind_op){.op = VMB_BIND_OP_MAP, .bo_handle = b->handle, .bo_offset = off * PG,
					   .addr = a * PG, .range = n * PG,
					   .flags = (k & 0x30) == 0x30 ? VMB_BIND_FLAG_READONLY : 0};
		break;
	}
	case 7: case 8: { /* NULL */
		uint32_t n = pick_len(WIN_PAGES), a = pick_page(n, 0);
		*op = (struct vmb_bind_op){.op = VMB_BIND_OP_MAP, .flags = VMB_BIND_FLAG_NULL, .addr = a * PG,
					   .range = n * PG};
		break;
	}
	case 9: case 10: { /* application memory */
		uint32_t u = below(UPTR_PAGES), n = pick_len(UPTR_PAGES - u), a = pick_page(n, u);
		*op = (struct vmb_bind_op){.op = VMB_BIND_OP_MAP_USERPTR, .userptr = (uint64_t)(uintptr_t)uptr + u * PG,
					   .addr = a * PG, .range = n * PG,
					   .flags = (k & 0x30) == 0x30 ? VMB_BIND_FLAG_READONLY : 0};
		break;
	}
	case 11: case 12: case 13: { /* UNMAP */
		uint32_t n = pick_len(WIN_PAGES), a = pick_page(n, 0);
		*op = (struct vmb_bind_op){.op = VMB_BIND_OP_UNMAP, .addr = a * PG, .range = n * PG};
		break;
	}
	case 14:
		*op = (struct vmb_bind_op){.op = VMB_BIND_OP_UNMAP_ALL, .bo_handle = bobjs[bi].handle};
		break;
	default: { /* PREFETCH */
		uint32_t n = pick_len(WIN_PAGES), a = pick_page(n, 0);
		*op = (struct vmb_bind_op){.op = VMB_BIND_OP_PREFETCH, .addr = a * PG, .range = n * PG,
					   .region = (k >> 4) & 1};
		break;
	}
	}
}

/* One wrong field of one operation. */
static void op_fault(struct vmb_bind_op *op, const struct fvm *v)
{
	uint8_t f = u8();
	int bi;
	switch (f % 14) {
	case 0: op->reserved[f & 1] = 1; break;
	case 1: op->op = 5 + (f >> 4); break;
	case 2: op->flags |= 4u << (f >> 6); break;
	case 3:
		if (op->op == VMB_BIND_OP_UNMAP_ALL)
			op->bo_offset = PG;
		else
			op->addr |= 2048;
		break;
	case 4:
		if (op->op == VMB_BIND_OP_UNMAP_ALL)
			op->addr = PG;
		else
			op->range = (f & 0x10) ? 0 : op->range + 8;
		break;
	case 5: /* a field the op does not use */
		switch (op->op) {
		case VMB_BIND_OP_MAP: if (f & 0x10) op->region = 1; else op->userptr = PG; break;
		case VMB_BIND_OP_MAP_USERPTR: op->bo_offset = PG; break;
		case VMB_BIND_OP_UNMAP: op->bo_handle = 1; break;
		case VMB_BIND_OP_UNMAP_ALL: op->range = PG; break;
		default: op->bo_handle = 1; break;
		}
		break;
	case 6: /* NULL with a BO, an offset or READONLY; NULL on USERPTR */
		if (op->op == VMB_BIND_OP_MAP_USERPTR) {
			op->flags |= VMB_BIND_FLAG_NULL;
		} else {
			*op = (struct vmb_bind_op){.op = VMB_BIND_OP_MAP, .flags = VMB_BIND_FLAG_NULL, .addr = 0, .range = PG};
			switch ((f >> 4) & 3) {
			case 0: op->bo_handle = 1; break;
			case 1: op->bo_offset = PG; break;
			default: op->flags |= VMB_BIND_FLAG_READONLY; break;
			}
		}
		break;
	case 7: /* addr + range overflows */
		if (op->op == VMB_BIND_OP_UNMAP_ALL)
			*op = (struct vmb_bind_op){.op = VMB_BIND_OP_UNMAP};
		op->addr = UINT64_MAX - PG + 1;
		op->range = 2 * PG;
		break;
	case 8: /* past the end of the vm */
		if (op->op == VMB_BIND_OP_UNMAP_ALL)
			*op = (struct vmb_bind_op){.op = VMB_BIND_OP_UNMAP};
		if (op->op == VMB_BIND_OP_MAP_USERPTR)
			op->userptr = (uint64_t)(uintptr_t)uptr;
		op->addr = v->va_size - PG;
		op->range = 2 * PG;
		op->bo_offset = 0;
		break;
	case 9: /* an unknown BO */
		if (op->op != VMB_BIND_OP_MAP || (op->flags & VMB_BIND_FLAG_NULL))
			*op = (struct vmb_bind_op){.op = VMB_BIND_OP_UNMAP_ALL};
		op->bo_handle = bad_handle(bo_handle_live, false);
		break;
	case 10: /* past the end of the BO */
		if ((bi = pick_bo()) < 0)
			break;
		*op = (struct vmb_bind_op){.op = VMB_BIND_OP_MAP, .bo_handle = bobjs[bi].handle,
					   .bo_offset = (f & 0x10) ? bobjs[bi].pages * PG : PG,
					   .addr = 0, .range = bobjs[bi].pages * PG};
		break;
	case 11: /* application memory that is not mapped, PROT_NONE, or read-only under a writable mapping */
		*op = (struct vmb_bind_op){.op = VMB_BIND_OP_MAP_USERPTR, .userptr = PG, .addr = 0, .range = PG};
		if (f & 0x20) {
			op->userptr = (uint64_t)(uintptr_t)none_page;
			op->flags = f & 0x40 ? VMB_BIND_FLAG_READONLY : 0;
		} else if (f & 0x40) {
			op->userptr = (uint64_t)(uintptr_t)ro_page;
		}
		break;
	case 12:
		if (op->op == VMB_BIND_OP_PREFETCH)
			op->region = 2 + (f >> 5);
		else
			op->userptr = op->op == VMB_BIND_OP_MAP_USERPTR ? op->userptr + 100 : op->userptr;
		break;
	default: /* USERPTR overflowing */
		*op = (struct vmb_bind_op){.op = VMB_BIND_OP_MAP_USERPTR, .userptr = UINT64_MAX - PG + 1, .addr = 0,
					   .range = 2 * PG};
		break;
	}
}

NOCOV static bool add_ok(uint64_t a, uint64_t b)
{
	return a + b >= a;
}

NOCOV static int ref_op_shape(const struct vmb_bind_op *op)
{
	if (op->reserved[0] || op->reserved[1] || (op->flags & ~(VMB_BIND_FLAG_READONLY | VMB_BIND_FLAG_NULL)))
		return -EINVAL;
	switch (op->op) {
	case VMB_BIND_OP_MAP:
		if (op->userptr || op->region)
			return -EINVAL;
		if (op->flags & VMB_BIND_FLAG_NULL) {
			if (op->bo_handle || op->bo_offset || (op->flags & VMB_BIND_FLAG_READONLY))
				return -EINVAL;
		} else if (!op->bo_handle || (op->bo_offset & (PG - 1)) || !add_ok(op->bo_offset, op->range)) {
			return -EINVAL;
		}
		break;
	case VMB_BIND_OP_MAP_USERPTR:
		if (op->bo_handle || op->bo_offset || op->region || (op->flags & VMB_BIND_FLAG_NULL) || !op->userptr ||
		    (op->userptr & (PG - 1)) || !add_ok(op->userptr, op->range))
			return -EINVAL;
		break;
	case VMB_BIND_OP_UNMAP:
		if (op->flags || op->bo_handle || op->bo_offset || op->userptr || op->region)
			return -EINVAL;
		break;
	case VMB_BIND_OP_UNMAP_ALL:
		return op->flags || !op->bo_handle || op->bo_offset || op->userptr || op->region || op->addr || op->range
			       ? -EINVAL
			       : 0;
	case VMB_BIND_OP_PREFETCH:
		if (op->flags || op->bo_handle || op->bo_offset || op->userptr || op->region >= VMB_REGION_COUNT)
			return -EINVAL;
		break;
	default:
		return -EINVAL;
	}
	if (!op->range || (op->addr & (PG - 1)) || (op->range & (PG - 1)) || !add_ok(op->addr, op->range))
		return -EINVAL;
	return 0;
}

/* The documented rules for a VM_BIND call, in their order; 0: nothing wrong with the arguments. */
NOCOV static int ref_bind(const struct vmb_vm_bind *b, const struct vmb_bind_op *ops, const struct vmb_sync *sy)
{
	unsigned int outs;
	int e;
	if (b->pad || b->reserved || b->restart || (b->flags & ~VMB_VM_BIND_FLAG_ASYNC))
		return -EINVAL;
	if (b->num_binds > VMB_VM_BIND_MAX_OPS || b->num_syncs > VMB_VM_BIND_MAX_SYNCS)
		return -EINVAL;
	bool async = b->flags & VMB_VM_BIND_FLAG_ASYNC;
	if ((b->num_binds == 0 && b->num_syncs == 0) || (!async && b->num_syncs) || (b->num_binds == 0 && !async))
		return -EINVAL;
	if ((b->num_binds && !b->binds) || (b->num_syncs && !b->syncs))
		return -EFAULT;
	for (uint32_t i = 0; i < b->num_binds; i++)
		if ((e = ref_op_shape(&ops[i])))
			return e;
	if ((e = ref_syncs(sy, b->num_syncs, &outs)))
		return e;
	struct fvm *v = vm_by_id(b->vm_id);
	if (!v || (b->queue_id && !vm_has_queue(v, b->queue_id)) || b->queue_serial) /* no queue's serial */
		return -ENOENT;
	for (uint32_t i = 0; i < b->num_binds; i++) {
		const struct vmb_bind_op *op = &ops[i];
		if (op->bo_handle && !bo_handle_live(op->bo_handle))
			return -ENOENT;
		if (op->op == VMB_BIND_OP_UNMAP_ALL)
			continue;
		if (op->addr + op->range > v->va_size)
			return -EINVAL;
		if (op->op == VMB_BIND_OP_MAP && op->bo_handle && op->bo_offset + op->range > bobjs[bobj_of(op->bo_handle)].pages * PG)
			return -EINVAL;
	}
	if ((v->flags & VMB_VM_CREATE_LR_MODE) && outs)
		return -EOPNOTSUPP;
	return 0;
}

/* Run the operations on the model (scratch): the engine's own failures, in order. */
NOCOV static int sim_ops(const struct vmb_bind_op *ops, unsigned int n, uint32_t *moves, unsigned int *nmoves,
		   uint32_t *move_to)
{
	*nmoves = 0;
	for (unsigned int i = 0; i < n; i++) {
		const struct vmb_bind_op *op = &ops[i];
		uint32_t s = (uint32_t)(op->addr / PG), cnt = (uint32_t)(op->range / PG);
		if (op->op != VMB_BIND_OP_UNMAP_ALL)
			CHECK(op->addr + op->range <= WIN_END, "harness: a valid op outside the window");
		switch (op->op) {
		case VMB_BIND_OP_MAP:
			if (op->flags & VMB_BIND_FLAG_NULL)
				m_set(scratch, s, cnt, K_NULL, 0, 0, 0);
			else
				m_set(scratch, s, cnt, K_BO, !!(op->flags & VMB_BIND_FLAG_READONLY),
				      (uint16_t)bobj_of(op->bo_handle), (uint32_t)(op->bo_offset / PG));
			break;
		case VMB_BIND_OP_MAP_USERPTR:
			if (op->userptr < (uint64_t)(uintptr_t)uptr ||
			    op->userptr + op->range > (uint64_t)(uintptr_t)uptr + UPTR_PAGES * PG)
				return -EFAULT; /* the harness names only its memory or page 1 */
			m_set(scratch, s, cnt, K_UPTR, !!(op->flags & VMB_BIND_FLAG_READONLY), 0,
			      (uint32_t)((op->userptr - (uint64_t)(uintptr_t)uptr) / PG));
			break;
		case VMB_BIND_OP_UNMAP:
			m_set(scratch, s, cnt, K_NONE, 0, 0, 0);
			break;
		case VMB_BIND_OP_UNMAP_ALL: {
			int bi = bobj_of(op->bo_handle);
			for (uint32_t p = 0; p < WIN_PAGES; p++)
				if (scratch[p].kind == K_BO && scratch[p].idx == bi)
					scratch[p] = (struct mpage){0};
			break;
		}
		case VMB_BIND_OP_PREFETCH:
			for (uint32_t p = s; p < s + cnt; p++) {
				if (scratch[p].kind != K_BO)
					continue;
				if (!(bobjs[scratch[p].idx].placements & (1u << op->region)))
					return -EINVAL;
				CHECK(*nmoves < MAX_OPS * WIN_PAGES, "harness: moves");
				moves[*nmoves] = scratch[p].idx;
				move_to[(*nmoves)++] = op->region;
			}
			break;
		}
	}
	return 0;
}

/* Pages of @v whose GPU view must match the model after a synchronous bind of @ops. */
NOCOV static void check_bind_pages(struct fvm *v, const struct vmb_bind_op *ops, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++) {
		if (ops[i].op == VMB_BIND_OP_UNMAP_ALL)
			continue;
		uint32_t s = (uint32_t)(ops[i].addr / PG), l = s + (uint32_t)(ops[i].range / PG) - 1;
		check_gpu_page(v, s, true);
		if (l != s)
			check_gpu_page(v, l, true);
		if (l - s > 2)
			check_gpu_page(v, s + 1 + (uint32_t)(rnd() % (l - s - 1)), false);
	}
}

/*
 * Unbind under memory pressure (docs/UAPI.md): the mapping pieces an unmap-only call keeps (a
 * trim keeps one, a split inside a mapping two), each drawn from the vm's reserve of 16 mapping
 * records while allocation fails; -1 if an op is not an unmap.
 */
NOCOV static int unmap_pieces(const struct fvm *v, const struct vmb_bind_op *ops, unsigned int n)
{
	static struct mpage m[WIN_PAGES];
	int pieces = 0;
	memcpy(m, v->pg, sizeof(m));
	for (unsigned int i = 0; i < n; i++) {
		if (ops[i].op == VMB_BIND_OP_UNMAP_ALL) {
			int bi = bobj_of(ops[i].bo_handle);
			for (uint32_t p = 0; p < WIN_PAGES; p++)
				if (m[p].kind == K_BO && m[p].idx == bi)
					m[p] = (struct mpage){0};
			continue;
		}
		if (ops[i].op != VMB_BIND_OP_UNMAP)
			return -1;
		uint32_t s = (uint32_t)(ops[i].addr / PG), e = s + (uint32_t)(ops[i].range / PG);
		pieces += s > 0 && m[s].kind && m[s - 1].kind && m[s].node == m[s - 1].node;
		pieces += e < WIN_PAGES && m[e].kind && m[e - 1].kind && m[e].node == m[e - 1].node;
		m_set(m, s, e - s, K_NONE, 0, 0, 0);
	}
	return pieces;
}

static void do_bind(void)
{
	static struct vmb_bind_op ops[MAX_OPS];
	static uint32_t moves[MAX_OPS * WIN_PAGES], move_to[MAX_OPS * WIN_PAGES];
	struct syncgen g;
	uint8_t k = u8(), f = fb();
	int vi = pick_vm();
	if (vi < 0)
		return;
	struct fvm *v = &vms[vi];
	bool async = k & 1;
	unsigned int n = (k & 0x80) ? 9 + ((k >> 1) & 3) : 1 + ((k >> 1) & 3);
	if (async && (k & 0x78) == 0x78)
		n = 0; /* a barrier */
	for (unsigned int i = 0; i < n; i++)
		gen_op(&ops[i]);
	g.n = 0;
	if (async)
		gen_syncs(&g, v->flags & VMB_VM_CREATE_LR_MODE);
	if (n == 0 && g.n == 0) {
		uint64_t *slot = uf_take(false);
		if (!slot)
			return;
		g.s[0] = (struct vmb_sync){.type = VMB_SYNC_USER_FENCE, .flags = VMB_SYNC_FLAG_SIGNAL,
					   .addr = (uint64_t)(uintptr_t)slot, .value = 77};
		g.uf[0] = slot;
		g.n = 1;
	}
	struct vmb_vm_bind b = {.vm_id = v->id, .num_binds = n, .binds = (uint64_t)(uintptr_t)ops,
				.flags = async ? VMB_VM_BIND_FLAG_ASYNC : 0};
	uint8_t qk = u8();
	if (v->nq && (qk & 1))
		b.queue_id = v->queues[(qk >> 1) % v->nq];
	/* now and then, one thing wrong */
	bool null_syncs = false;
	if (f < 40) {
		switch (f % 20) {
		case 0: b.pad = 1; break;
		case 1: /* reserved, restart (was reserved[2]) or a serial that is no queue's */
			if (f % 3 == 0)
				b.reserved = 1;
			else if (f % 3 == 1)
				b.restart = 1;
			else
				b.queue_serial = UINT64_MAX;
			break;
		case 2: b.flags |= 2; break;
		case 3: b.num_binds = VMB_VM_BIND_MAX_OPS + 1; break;
		case 4: if (n) b.binds = 0; break;
		case 5: b.vm_id = bad_handle(vm_id_live, true); break;
		case 6: b.queue_id = 40 + (f & 7); break;
		case 7: /* a synchronous call with syncs */
			if (!g.n) {
				g.s[0] = (struct vmb_sync){.type = VMB_SYNC_USER_FENCE, .flags = VMB_SYNC_FLAG_SIGNAL,
							   .addr = (uint64_t)(uintptr_t)&ufmem[UF_SLOTS - 1], .value = 1};
				g.uf[0] = NULL;
				g.n = 1;
			}
			b.flags &= ~VMB_VM_BIND_FLAG_ASYNC;
			break;
		case 8: b.num_binds = 0; b.flags = 0; g.n = 0; break;
		case 9: b.flags |= VMB_VM_BIND_FLAG_ASYNC; b.num_syncs = VMB_VM_BIND_MAX_SYNCS + 1; break;
		case 10: b.flags |= VMB_VM_BIND_FLAG_ASYNC; sync_fault(&g); null_syncs = f & 0x20; break;
		default:
			if (n)
				op_fault(&ops[below(n)], v);
			break;
		}
	}
	if (b.num_syncs == 0)
		b.num_syncs = g.n;
	b.syncs = g.n && !null_syncs ? (uint64_t)(uintptr_t)g.s : 0;
	async = b.flags & VMB_VM_BIND_FLAG_ASYNC;

	int want = ref_bind(&b, ops, g.s);
	unsigned int allow = 0, nmoves = 0;
	bool prefetch = false, unmap_only = true;
	if (!want) {
		for (unsigned int i = 0; i < b.num_binds; i++) {
			prefetch |= ops[i].op == VMB_BIND_OP_PREFETCH;
			unmap_only &= ops[i].op == VMB_BIND_OP_UNMAP || ops[i].op == VMB_BIND_OP_UNMAP_ALL;
		}
		memcpy(scratch, v->pg, sizeof(scratch));
		want = sim_ops(ops, b.num_binds, moves, &nmoves, move_to);
		/* page tables may run out (never for unmaps: their tables are reserved), a region too */
		allow = (unmap_only ? 0 : A_NOMEM) | (prefetch ? A_NOSPC : 0) | nomem_ok();
		if (want == -EINVAL || want == -EFAULT)
			allow |= A_NOMEM | (prefetch ? A_NOSPC : 0); /* an earlier op may fail first */
	}
	/* an unbind that cannot fail for lack of memory, whatever fails (docs/UAPI.md, "Unbind under
	 * memory pressure"): up to 8 ops that keep few pieces, up to 4 syncs, no timeline out-point
	 * (one may need the timeline's spare record, out while an earlier point is pending), on a vm
	 * whose reserve is known full */
	bool unmap_strict = !want && unmap_only && b.num_binds && b.num_binds <= 8 && b.num_syncs <= 4 &&
			    !v->reserve_short;
	for (unsigned int i = 0; unmap_strict && i < b.num_syncs; i++)
		unmap_strict = !(g.s[i].type == VMB_SYNC_TIMELINE_SYNCOBJ && (g.s[i].flags & VMB_SYNC_FLAG_SIGNAL));
	if (unmap_strict) {
		int pieces = unmap_pieces(v, ops, b.num_binds);
		unmap_strict = pieces >= 0 && pieces <= 12;
	}
	/* calls that may wait in the call: open the gates first, or the fuzzer would block */
	bool lr = v->flags & VMB_VM_CREATE_LR_MODE;
	if (!async || prefetch || inj_nomem || (lr && g.n))
		open_gates();
	arm();
	int ret;
	RESTART(ret, vmb_vm_bind(C, &b));
	disarm();
	if (trace) {
		fprintf(stderr, "  vm_bind vm %u queue %u flags %#x: %d (rules: %d)\n", b.vm_id, b.queue_id, b.flags, ret, want);
		for (uint32_t i = 0; i < b.num_binds && i < MAX_OPS; i++)
			fprintf(stderr, "    op %u flags %#x bo %u offset %#llx userptr %#llx addr %#llx range %#llx region %u\n",
				ops[i].op, ops[i].flags, ops[i].bo_handle, (unsigned long long)ops[i].bo_offset,
				(unsigned long long)ops[i].userptr, (unsigned long long)ops[i].addr,
				(unsigned long long)ops[i].range, ops[i].region);
		for (uint32_t i = 0; i < b.num_syncs && i < g.n; i++)
			fprintf(stderr, "    sync type %u flags %#x handle %u addr %#llx value %llu\n", g.s[i].type,
				g.s[i].flags, g.s[i].handle, (unsigned long long)g.s[i].addr,
				(unsigned long long)g.s[i].value);
	}
	expect("vm_bind", ret, want, allow);
	CHECK(!unmap_strict || ret != -ENOMEM, "an unbind failed for lack of memory (class %#x failing: %d)",
	      inj_nomem ? inj_class : 0, inj_nomem && inj_fired);
	if (!ret)
		v->reserve_short = inj_nomem && inj_fired; /* the refill may be what failed */
	if (!ret) {
		memcpy(v->pg, scratch, sizeof(scratch));
		for (unsigned int i = 0; i < nmoves; i++) {
			bobjs[moves[i]].region = move_to[i];
			/* an asynchronous PREFETCH moves it when its job commits, after its device copy:
			 * vmb_bo_query shows the region it is in until then */
			bobjs[moves[i]].moving |= async;
		}
		syncs_done(&g, 0);
		if (prefetch && !async) {
			/* it ran in the call, after the pending binds of its vm (and of the vms that
			 * map the BOs it moves: not modelled, they stay as they were) */
			v->dirty = false;
		} else if (async) {
			v->dirty = true; /* a PREFETCH too: device work, pending after the call */
		}
	}
	check_mappings(v);
	if (!ret && !async)
		check_bind_pages(v, ops, b.num_binds);
}

/* ---- the GPU view ---- */

static void do_access(void)
{
	static uint8_t buf[3 * 4096];
	uint8_t k = u8(), f = fb();
	int vi = pick_vm();
	if (vi < 0)
		return;
	struct fvm *v = &vms[vi];
	bool write = k & 1;
	uint32_t p = below(WIN_PAGES);
	struct vmb_vm_access a = {.vm_id = v->id, .data = (uint64_t)(uintptr_t)buf};
	if (write) {
		/* inside one page, never its first 64 bytes */
		uint32_t off = 64 + below(4096 - 64);
		a.addr = p * PG + off;
		a.size = 1 + below(4096 - off);
		a.flags = VMB_ACCESS_WRITE;
		for (uint64_t i = 0; i < a.size; i += 8) {
			uint64_t val = safe64();
			memcpy(buf + i, &val, a.size - i < 8 ? a.size - i : 8);
		}
	} else {
		a.addr = p * PG + ((k & 2) ? below(4096) : 0);
		a.size = (k & 4) ? 1 + below(sizeof(buf)) : 8;
		if (a.addr + a.size > WIN_END)
			a.size = WIN_END - a.addr;
	}
	if (f < 24) {
		switch (f % 6) {
		case 0: a.flags |= 2; break;
		case 1: a.reserved[f & 1] = 1; break;
		case 2: a.addr = UINT64_MAX - 4; a.size = 16; break;
		case 3: a.data = 0; break;
		case 4: a.vm_id = bad_handle(vm_id_live, true); break;
		default: a.addr = v->va_size - 4; a.size = 8; break; /* off the end of the vm */
		}
	}
	int want = 0;
	if ((a.flags & ~VMB_ACCESS_WRITE) || a.reserved[0] || a.reserved[1] || !add_ok(a.addr, a.size))
		want = -EINVAL;
	else if (a.size && !a.data)
		want = -EFAULT;
	else if (!vm_by_id(a.vm_id))
		want = -ENOENT;
	bool exact = !want && !v->dirty && a.addr + a.size <= WIN_END;
	if (!want && !exact) {
		int ret = vmb_vm_access(C, &a);
		CHECK(ret == 0 || ret == -EFAULT || ret == -EACCES, "vm_access: %d", ret);
		if (a.addr >= CMD_END && !(v->flags & VMB_VM_CREATE_SCRATCH_PAGE))
			CHECK(ret == -EFAULT, "vm_access past everything mapped: %d", ret);
		return;
	}
	if (exact) {
		/* the first page of the range that faults decides */
		bool scratch_vm = v->flags & VMB_VM_CREATE_SCRATCH_PAGE;
		for (uint64_t pg = a.addr / PG; a.size && pg <= (a.addr + a.size - 1) / PG && !want; pg++) {
			const struct mpage *m = &v->pg[pg];
			if (m->kind == K_NONE && !scratch_vm)
				want = -EFAULT;
			else if (write && m->kind != K_NONE && m->kind != K_NULL && m->ro)
				want = -EACCES;
		}
	}
	int ret = vmb_vm_access(C, &a);
	expect("vm_access", ret, want, 0);
	if (ret || write || !exact)
		return;
	/* the first word of every page read is its tag; NULL and (scratch) holes read 0 */
	for (uint64_t pg = (a.addr + PG - 1) / PG; pg * PG + 8 <= a.addr + a.size; pg++) {
		uint64_t val;
		memcpy(&val, buf + (pg * PG - a.addr), 8);
		CHECK(val == page_tag(&v->pg[pg]), "vm %u page %llu: read %#llx, want %#llx", v->id,
		      (unsigned long long)pg, (unsigned long long)val, (unsigned long long)page_tag(&v->pg[pg]));
	}
	if (a.addr % PG < 8 && a.size >= 8 - a.addr % PG) {
		/* a read starting inside a tag */
		uint64_t t = page_tag(&v->pg[a.addr / PG]);
		size_t len = 8 - a.addr % PG;
		CHECK(!memcmp(buf, (const uint8_t *)&t + a.addr % PG, len), "partial tag read at %#llx",
		      (unsigned long long)a.addr);
	}
}

/* ---- exec queues and execs ---- */

static void do_exec_queue_create(void)
{
	uint8_t k = u8(), f = fb();
	int vi = pick_vm(), want = 0;
	static const struct vmb_engine eng[] = {{VMB_ENGINE_CLASS_COMPUTE, 0, 0},
						{VMB_ENGINE_CLASS_COMPUTE, 1, 0},
						{VMB_ENGINE_CLASS_COPY, 0, 0},
						{VMB_ENGINE_CLASS_COMPUTE, 0, 0}};
	struct vmb_exec_queue_create a = {.vm_id = vi >= 0 ? vms[vi].id : 0, .engine = eng[k & 3],
					  .flags = (k & 0x40) ? VMB_EXEC_QUEUE_CMDSET_INTEL : 0};
	if (vi < 0 || f < 24) {
		switch (f % 6) {
		case 0: a.flags |= 2u << (f >> 5); want = -EINVAL; break; /* (1: the Intel command set) */
		case 1: a.pad = 1; want = -EINVAL; break;
		case 2: a.reserved = 1; want = -EINVAL; break;
		case 3: a.engine.engine_instance = 2 + (f & 1); want = -EINVAL; break;
		case 4: a.engine.engine_class = 2; want = -EINVAL; break;
		default: a.vm_id = bad_handle(vm_id_live, true); want = -ENOENT; break;
		}
	}
	if (!want && nexqs >= MAX_EXQ)
		return;
	arm();
	int ret = vmb_exec_queue_create(C, &a);
	disarm();
	expect("exec_queue_create", ret, want, want ? 0 : nomem_ok());
	if (ret)
		return;
	CHECK(a.exec_queue_id && !exq_of(a.exec_queue_id), "exec_queue_create: id %u", a.exec_queue_id);
	exqs[nexqs++] = (struct fexq){.id = a.exec_queue_id, .vm = vi,
				      .lr = vms[vi].flags & VMB_VM_CREATE_LR_MODE,
				      .intel = a.flags & VMB_EXEC_QUEUE_CMDSET_INTEL};
	vms[vi].nexq++;
	vms[vi].had_exq = true;
}

static void do_exec_queue_destroy(void)
{
	int want = 0;
	uint8_t f = fb();
	unsigned int i = nexqs ? below(nexqs) : 0;
	struct vmb_exec_queue_destroy d = {.exec_queue_id = nexqs ? exqs[i].id : 0};
	if (!nexqs || f < 24) {
		switch (f % 3) {
		case 0: d.pad = 1; want = -EINVAL; break;
		case 1: d.reserved = 1; want = -EINVAL; break;
		default: d.exec_queue_id = bad_handle(exq_live, true); want = -ENOENT; break;
		}
	}
	int ret = vmb_exec_queue_destroy(C, &d);
	expect("exec_queue_destroy", ret, want, 0);
	if (ret)
		return;
	struct fvm *v = &vms[exqs[i].vm];
	exqs[i] = exqs[--nexqs];
	if (--v->nexq == 0 && !v->live)
		vm_slot_release(v);
}

static void do_exec_queue_query(void)
{
	uint8_t f = fb();
	if (!nexqs)
		return;
	struct fexq *q = &exqs[below(nexqs)];
	struct vmb_exec_queue_query a = {.exec_queue_id = q->id};
	int want = 0;
	if (f < 24) {
		if (f & 1) {
			a.reserved[f & 2 ? 1 : 0] = 1;
			want = -EINVAL;
		} else {
			a.exec_queue_id = bad_handle(exq_live, true);
			want = -ENOENT;
		}
	}
	int ret = vmb_exec_queue_query(C, &a);
	expect("exec_queue_query", ret, want, 0);
	if (ret)
		return;
	CHECK(!(a.flags & ~VMB_EXEC_QUEUE_BANNED), "exec queue flags %#x", a.flags);
	CHECK(!(a.flags & VMB_EXEC_QUEUE_BANNED) == !a.error, "exec queue flags %#x error %d", a.flags, a.error);
	CHECK(a.error == 0 || a.error == -EFAULT || a.error == -EINVAL || a.error == -ETIMEDOUT, "exec queue error %d",
	      a.error);
	CHECK(a.error != -ETIMEDOUT || !q->lr, "an LR exec queue timed out");
	CHECK(a.error != -EFAULT || a.fault_access <= VMB_FAULT_WRITE, "fault access %u", a.fault_access);
	CHECK(a.jobs_done <= q->nexec, "%llu jobs done of %llu", (unsigned long long)a.jobs_done,
	      (unsigned long long)q->nexec);
	CHECK(!q->banned || (a.flags & VMB_EXEC_QUEUE_BANNED), "a ban went away");
	q->banned = a.flags & VMB_EXEC_QUEUE_BANNED;
}

/* A page of the window for a command: mostly one mapped (writable, for a write) in the model,
 * now and then any (a fault, or with a scratch page nothing). Commands use bytes 64..4095. */
NOCOV static uint64_t cmd_page(const struct fvm *v, bool write)
{
	uint32_t p = (uint32_t)(rnd() % WIN_PAGES);
	if ((rnd() & 31) == 0)
		return p * PG;
	for (uint32_t i = 0; i < WIN_PAGES; i++) {
		const struct mpage *m = &v->pg[(p + i) % WIN_PAGES];
		if (m->kind != K_NONE && !(write && m->ro))
			return (uint64_t)((p + i) % WIN_PAGES) * PG;
	}
	return p * PG;
}

/* Writes a command list at @b; returns its length in words. */
static uint32_t gen_commands(struct fvm *v, uint64_t *b, bool lr)
{
	uint32_t n = 0, cmds = 1 + (u8() & 7);
	for (uint32_t c = 0; c < cmds; c++) {
		uint8_t k = u8();
		uint64_t page = cmd_page(v, true), rpage = cmd_page(v, false);
		/* faults and malformed commands end the job and ban the queue: now and then only */
		if ((k & 15) == 11 || (k & 15) == 12)
			k = (k & 0xc0) == 0xc0 ? k : (uint8_t)(k & 0xf0);
		switch (k & 15) {
		case 0:
			vmb_cmd_emit(b, &n, VMB_CMD_HEADER(VMB_CMD_NOOP, 0));
			break;
		case 1: case 2:
			vmb_cmd_store64(b, &n, page + 64 + 8 * (rnd() % 504), safe64());
			break;
		case 3:
			vmb_cmd_store32(b, &n, page + 64 + 4 * (rnd() % 1008), safe32());
			break;
		case 4: {
			uint64_t a = rnd() % 1008, len = rnd() % (1008 - a + 1);
			vmb_cmd_fill(b, &n, page + 64 + 4 * a, 4 * len, safe32());
			break;
		}
		case 5: {
			uint64_t a = rnd() % 504, len = rnd() % (504 - a + 1);
			uint64_t src = (k & 0x70) == 0x70 ? 8 * (rnd() % (WIN_END / 8 - len)) : rpage + 8 * (rnd() % (512 - len));
			vmb_cmd_copy(b, &n, page + 64 + 8 * a, src, 8 * len);
			break;
		}
		case 6: case 7:
			vmb_cmd_atomic_add(b, &n, page + 64 + 8 * (rnd() % 504), (1 + rnd() % 0xffff) << 16);
			break;
		case 8:
			vmb_cmd_ufence_signal(b, &n, page + 64 + 8 * (rnd() % 504), safe64());
			break;
		case 9:
			vmb_cmd_delay(b, &n, rnd() % 100001);
			break;
		case 10: { /* a wait that is always satisfied: mask 0 with EQ, GTE or LTE */
			static const uint32_t ops[] = {VMB_UFENCE_OP_EQ, VMB_UFENCE_OP_GTE, VMB_UFENCE_OP_LTE};
			vmb_cmd_sem_wait(b, &n, rpage + 8 * (rnd() % 512), ops[rnd() % 3], rnd(), 0);
			break;
		}
		case 11: /* far away: a fault (or dropped, with a scratch page) */
			if ((k & 0x30) == 0x30 && !(lr && (v->flags & VMB_VM_CREATE_SCRATCH_PAGE))) {
				/* long: up to 64 TiB over memory never mapped. A fault at once, or with a
				 * scratch page a job that ends at its timeout (-ETIMEDOUT, a ban) while the
				 * device and the other queues go on; never a stall (issue 11, item 1). An LR
				 * job has no timeout: not there with a scratch page. */
				static const uint64_t sizes[] = {1ull << 30, 1ull << 40, 1ull << 46, ~0ull << 3};
				uint64_t sz = sizes[rnd() % 4];
				if (rnd() & 1)
					vmb_cmd_fill(b, &n, FAR_VA, sz, safe32());
				else
					vmb_cmd_copy(b, &n, FAR_VA, FAR_VA + (rnd() & 1 ? 1ull << 20 : 0), sz);
			} else if (k & 0x10)
				vmb_cmd_store64(b, &n, FAR_VA + 8 * (rnd() % 64), safe64());
			else
				vmb_cmd_copy(b, &n, page + 64, FAR_VA, 64);
			break;
		case 12: /* malformed */
			switch ((k >> 4) & 7) {
			case 0: vmb_cmd_emit(b, &n, 0x09 + (rnd() % 6)); break;
			case 1: vmb_cmd_emit(b, &n, VMB_CMD_HEADER(VMB_CMD_NOOP, 0) | 1u << 16); break;
			case 2: vmb_cmd_emit(b, &n, VMB_CMD_HEADER(VMB_CMD_STORE64, 1)); break;
			case 3: vmb_cmd_store64(b, &n, page + 64 + 4, safe64()); break;
			case 4: vmb_cmd_fill(b, &n, page + 64, 6, safe32()); break;
			case 5: vmb_cmd_sem_wait(b, &n, page + 64, 6 + (rnd() % 200), 0, 0); break;
			case 6: vmb_cmd_atomic_add(b, &n, page + 66, 1u << 16); break;
			default: vmb_cmd_store32(b, &n, page + 66, safe32()); break;
			}
			break;
		case 13: /* a real wait: non-LR only, it may last until the job timeout */
			if (!lr && (k & 0x70) == 0x70)
				vmb_cmd_sem_wait(b, &n, page + 64 + 8 * (rnd() % 504), (uint32_t)(rnd() % 6), safe64(),
						 rnd());
			else
				vmb_cmd_emit(b, &n, VMB_CMD_HEADER(VMB_CMD_NOOP, 0));
			break;
		default:
			vmb_cmd_atomic_add(b, &n, page + 64 + 8 * (rnd() % 504), (1 + rnd() % 0xffff) << 16);
			break;
		}
	}
	vmb_cmd_end(b, &n);
	CHECK(n <= CMD_SLOT_WORDS, "harness: %u command words", n);
	return n;
}

/*
 * An Intel queue's command list (VMB_EXEC_QUEUE_CMDSET_INTEL, vmbind/cmd.h VMB_MI_*) at @b, the
 * slot at GPU VA @va: dwords, a NOOP first (so a batch may start at @va + 4 too), then random MI
 * commands, BATCH_BUFFER_END. The same rules as gen_commands(): writes at offsets >= 64 of values
 * whose bytes are in [0x80, 0xfe]; faults and malformed headers now and then; on an LR queue no
 * wait that may not be satisfied and no loop (no timeout there). Every operand dword is an
 * address (low dwords below 0x01100000, high ones 0 or 0xffff8000) or a value with a byte >=
 * 0x80: a batch entered at a wrong dword decodes as NOOPs, the real commands or a malformed one.
 */
static uint32_t gen_intel_commands(struct fvm *v, uint32_t *b, uint64_t va, bool lr)
{
	uint32_t n = 0, cmds = 1 + (u8() & 7);
	static const uint32_t always[][2] = {{VMB_MI_COMPARE_GTE, 0}, {VMB_MI_COMPARE_LTE, 0xffffffffu}};
#define MI_ADDR(a) do { uint64_t a_ = (a); b[n++] = (uint32_t)a_; b[n++] = (uint32_t)(a_ >> 32); } while (0)
	b[n++] = VMB_MI_NOOP;
	for (uint32_t c = 0; c < cmds; c++) {
		uint8_t k = u8();
		uint64_t page = cmd_page(v, true), rpage = cmd_page(v, false);
		uint32_t data = (rnd() & 1) ? safe32() : (rnd() & 1) ? 0 : 0xffffffffu;
		if ((k & 15) == 10 || (k & 15) == 11)
			k = (k & 0xc0) == 0xc0 ? k : (uint8_t)(k & 0xf0);
		switch (k & 15) {
		case 0:
			b[n++] = VMB_MI_NOOP;
			break;
		case 1:
			b[n++] = VMB_MI_ARB_CHECK;
			break;
		case 4: case 5: {
			uint64_t val = safe64();
			b[n++] = VMB_MI_STORE_QWORD_IMM;
			MI_ADDR(page + 64 + 8 * (rnd() % 504));
			b[n++] = (uint32_t)val;
			b[n++] = (uint32_t)(val >> 32);
			break;
		}
		case 6: /* the job goes on while the dword compares so, else ends there */
			b[n++] = VMB_MI_COND_BATCH_BUFFER_END | (uint32_t)(rnd() % 6) << 12;
			b[n++] = data;
			MI_ADDR(rpage + 4 * (rnd() % 1024));
			break;
		case 7: /* a wait: always satisfied, or (non-LR, now and then) any, up to the timeout */
			if (lr || (k & 0x70) != 0x70) {
				unsigned int w = rnd() & 1;
				b[n++] = VMB_MI_SEMAPHORE_WAIT | always[w][0];
				b[n++] = always[w][1];
			} else {
				b[n++] = VMB_MI_SEMAPHORE_WAIT | (uint32_t)(rnd() % 6) << 12;
				b[n++] = data;
			}
			MI_ADDR(rpage + 4 * (rnd() % 1024));
			break;
		case 8: /* a jump to the next command, in canonical form or not */
			b[n++] = VMB_MI_BATCH_BUFFER_START;
			MI_ADDR(va + 4 * (n + 2));
			break;
		case 9: /* a jump back to the start: a loop until the job timeout (non-LR, now and then) */
			if (!lr && (k & 0x70) == 0x70) {
				b[n++] = VMB_MI_BATCH_BUFFER_START;
				MI_ADDR(va);
			} else {
				b[n++] = VMB_MI_ARB_CHECK;
			}
			break;
		case 10: /* far away: a fault (or dropped, with a scratch page), canonical high half too */
			b[n++] = VMB_MI_STORE_DWORD_IMM;
			MI_ADDR((k & 0x10) ? vmb_mi_canonical((UINT64_C(1) << 47) + 4 * (rnd() % 1024))
					   : FAR_VA + 4 * (rnd() % 1024));
			b[n++] = safe32();
			break;
		case 11: /* malformed */
			switch ((k >> 4) & 3) {
			case 0: b[n++] = (uint32_t)rnd() | 0x80000000u; break;            /* no such command */
			case 1: b[n++] = VMB_MI_SEMAPHORE_WAIT | (6u + (k >> 6 & 1)) << 12; /* compare op */
				b[n++] = data; MI_ADDR(rpage); break;
			case 2: b[n++] = VMB_MI_STORE_DWORD_IMM;                           /* top bits */
				b[n++] = (uint32_t)(page + 64); b[n++] = 0x00010000u; b[n++] = safe32(); break;
			default: b[n++] = VMB_MI_STORE_QWORD_IMM;                          /* misaligned */
				MI_ADDR(page + 68); b[n++] = safe32(); b[n++] = safe32(); break;
			}
			break;
		default: /* 2, 3, 12-15 */
			b[n++] = VMB_MI_STORE_DWORD_IMM;
			MI_ADDR(page + 64 + 4 * (rnd() % 1008));
			b[n++] = safe32();
			break;
		}
	}
#undef MI_ADDR
	b[n++] = VMB_MI_BATCH_BUFFER_END;
	CHECK(n <= 2 * CMD_SLOT_WORDS, "harness: %u Intel command dwords", n);
	return n;
}

static void do_exec(void)
{
	uint8_t k = u8(), f = fb();
	struct syncgen g;
	if (!nexqs)
		return;
	struct fexq *q = &exqs[below(nexqs)];
	struct fvm *v = &vms[q->vm];
	struct vmb_exec e = {.exec_queue_id = q->id};
	/*
	 * A command slot of the vm's command BO; or nothing mapped (a fault at once; with a scratch
	 * page, zeros: NOOPs until the job timeout); or the window (NOOPs and malformed words, until
	 * the timeout at worst). An LR job has no timeout: only slots there, or a fault.
	 */
	unsigned int where = k & 7;
	bool scratch_vm = v->flags & VMB_VM_CREATE_SCRATCH_PAGE;
	if (where < 6 && !(v->has_cmd && v->cmd_next < CMD_SLOTS))
		where = 6;
	if (q->lr && where >= 6 && scratch_vm)
		return;
	if (where < 6) {
		uint64_t *slot = v->cmd_cpu + (size_t)v->cmd_next * CMD_SLOT_WORDS;
		e.address = CMD_VA + (uint64_t)v->cmd_next * CMD_SLOT_WORDS * 8;
		if (q->intel) {
			gen_intel_commands(v, (uint32_t *)slot, e.address, q->lr);
			e.address += (k & 0x40) ? 4 : 0; /* past the NOOP: 4-byte aligned is enough */
		} else {
			gen_commands(v, slot, q->lr);
		}
		v->cmd_next++;
	} else if (where == 6 || q->lr) {
		e.address = FAR_VA + 8 * (rnd() % 64);
		if (q->intel && (k & 0x40)) /* the canonical high half: nothing there */
			e.address = vmb_mi_canonical((UINT64_C(1) << 47) + 8 * (rnd() % 64));
	} else {
		e.address = 8 * (rnd() % (WIN_END / 8));
	}
	gen_syncs(&g, q->lr);
	if (f < 32) {
		switch (f % 9) {
		case 0: e.flags = 1; break;
		case 1: e.pad = 1; break;
		case 2: /* reserved, or a serial that is no queue's */
			if (f & 1)
				e.reserved = 1;
			else
				e.exec_queue_serial = UINT64_MAX;
			break;
		case 3: e.address |= q->intel ? ((f & 0x10) ? 2 : UINT64_C(1) << (48 + (f >> 5))) : 4; break;
		case 4: e.num_syncs = VMB_EXEC_MAX_SYNCS + 1; break;
		case 5: e.exec_queue_id = bad_handle(exq_live, true); break;
		default: sync_fault(&g); break;
		}
	}
	if (!e.num_syncs)
		e.num_syncs = g.n;
	e.syncs = g.n ? (uint64_t)(uintptr_t)g.s : 0;
	if (f < 32 && f % 9 == 8 && g.n)
		e.syncs = 0;
	/* the rules, in order */
	int want = 0;
	unsigned int outs = 0, allow = 0;
	if (e.flags || e.pad || e.reserved || e.num_syncs > VMB_EXEC_MAX_SYNCS || (e.address & 3))
		want = -EINVAL;
	else if (e.num_syncs && !e.syncs)
		want = -EFAULT;
	else if (!(want = ref_syncs(g.s, e.num_syncs, &outs))) {
		struct fexq *t = e.exec_queue_serial ? NULL : exq_of(e.exec_queue_id); /* no queue's serial */
		uint64_t top = e.address >> 47;
		/* once the queue is known: an Intel one's top bits 0 or canonical, any other's 8-byte
		 * alignment (an unknown queue is no Intel one) */
		bool bad_addr = t && t->intel ? top > 1 && top != 0x1ffff : (e.address & 7) != 0;
		if (bad_addr)
			want = -EINVAL;
		else if (!t)
			want = -ENOENT;
		else if (t->banned)
			want = -ECANCELED;
		else if (t->lr && outs)
			want = -EOPNOTSUPP;
		if (t && !t->banned && !bad_addr)
			allow = A_CANCELED | nomem_ok(); /* banned meanwhile, for all we know */
	}
	arm();
	int ret;
	RESTART(ret, vmb_exec(C, &e));
	disarm();
	if (trace)
		fprintf(stderr, "  exec queue %u (vm %u%s%s) at %#llx, %u syncs: %d (rules: %d)\n", e.exec_queue_id, v->id,
			q->lr ? ", LR" : "", q->intel ? ", Intel" : "", (unsigned long long)e.address, e.num_syncs, ret, want);
	expect("exec", ret, want, allow);
	if (ret == -ECANCELED)
		q->banned = true;
	if (ret)
		return;
	q->nexec++;
	syncs_done(&g, q->id);
}

/* ---- odds and ends ---- */

static void do_queries(void)
{
	uint8_t k = u8();
	switch (k & 3) {
	case 0: {
		struct vmb_device_query d = {0};
		if (k & 0x80)
			d.reserved = 1;
		int ret = vmb_device_query(C, &d);
		expect("device_query", ret, k & 0x80 ? -EINVAL : 0, 0);
		if (!ret)
			CHECK(!strcmp(d.name, "soft") && d.va_bits == 48 && d.num_regions == 2 && d.num_engines == 3 &&
				      (d.page_sizes & VMB_PAGE_4K) && d.min_page_size == VMB_PAGE_4K &&
				      d.abi_version == VMB_ABI_VERSION && (d.capabilities & VMB_CAP_ASYNC_BIND),
			      "device_query");
		break;
	}
	case 1: {
		struct vmb_engine eng[4];
		struct vmb_engines_query q = {.engines = (uint64_t)(uintptr_t)eng, .num_engines = (k >> 2) & 3};
		int want = 0;
		if (k & 0x80) {
			q.engines = 0;
			want = q.num_engines ? -EFAULT : 0;
		}
		int ret = vmb_engines_query(C, &q);
		expect("engines_query", ret, want, 0);
		if (!ret)
			CHECK(q.num_engines == 3, "%u engines", q.num_engines);
		break;
	}
	case 2: {
		struct vmb_region_query r = {.region = (k >> 2) & 3};
		int ret = vmb_region_query(C, &r);
		expect("region_query", ret, r.region < 2 ? 0 : -EINVAL, 0);
		if (!ret)
			CHECK(r.capacity == (r.region == VMB_REGION_VRAM ? opt_vram : opt_sys) && r.free <= r.capacity &&
				      r.min_alignment >= PG,
			      "region %u: capacity %llu free %llu align %llu", r.region, (unsigned long long)r.capacity,
			      (unsigned long long)r.free, (unsigned long long)r.min_alignment);
		break;
	}
	default:
		for (int v = 0; v < MAX_VMS; v++)
			if (vms[v].live) {
				check_mappings(&vms[v]);
				check_faults(&vms[v], k);
			}
		check_syncobj_values(false);
		break;
	}
}

static void do_trace(void)
{
	uint8_t k = u8();
	if (k & 1) {
		struct vmb_trace_start t = {.capacity = (k >> 1) & 63};
		int want = 0;
		if (k & 0x80) {
			t.capacity = (1u << 24) + 1;
			want = -EINVAL;
		}
		arm();
		int ret = vmb_trace_start(C, &t);
		disarm();
		expect("trace_start", ret, want, want ? 0 : nomem_ok());
		return;
	}
	struct vmb_trace_event ev[16];
	struct vmb_trace_read r = {.events = (uint64_t)(uintptr_t)ev, .num_events = (k >> 1) & 15};
	int ret = vmb_trace_read(C, &r);
	expect("trace_read", ret, 0, 0);
	CHECK(r.num_events <= ((k >> 1) & 15u), "trace_read: %u events", r.num_events);
	for (uint32_t i = 0; i < r.num_events; i++) {
		const struct vmb_trace_event *e = &ev[i];
		CHECK(e->kind <= VMB_TRACE_EXEC, "trace kind %u", e->kind);
		CHECK(e->submit_ns <= e->end_ns && e->start_ns <= e->end_ns, "trace times %llu %llu %llu",
		      (unsigned long long)e->submit_ns, (unsigned long long)e->start_ns, (unsigned long long)e->end_ns);
		CHECK(e->kind == VMB_TRACE_EXEC ? (e->error == 0 || e->error == -EFAULT || e->error == -EINVAL ||
						   e->error == -ETIMEDOUT || e->error == -ECANCELED)
						: (e->error == 0 || e->error == -ECANCELED),
		      "trace error %d (kind %u)", e->error, e->kind);
		CHECK(e->kind == VMB_TRACE_EXEC ? e->engine < 3 && e->ops == 0 : e->engine == 0, "trace event fields");
	}
}

/*
 * The fault-injection entry points themselves: vmb_debug_fault_sites (sizes, then the list: ids
 * in order, one class each, names NUL-terminated), and vmb_debug_fault_inject's rules. A valid
 * arming here (persistent ones too, and COMMIT's process-wide one, with an nth no workload
 * reaches in between) is disarmed at once, and the disarm must say it injected nothing.
 */
static void do_fault_api(void)
{
	static struct vmb_fault_site sites[1024];
	uint8_t k = u8(), f = fb();
	if (k & 1) {
		struct vmb_fault_sites q = {0};
		int ret = vmb_debug_fault_sites(C, &q);
		expect("debug_fault_sites", ret, 0, 0);
		uint32_t total = q.num_sites;
		CHECK(total > 0 && total <= 1024, "%u fault sites", total);
		q = (struct vmb_fault_sites){.num_sites = 1 + below(total), .sites = (uint64_t)(uintptr_t)sites,
					     .flags = (k & 2) ? VMB_INJECT_SITES_RESET : 0};
		int want = 0;
		if (f < 32) {
			switch (f & 3) {
			case 0: q.flags |= 2u << (f >> 5); break;
			case 1: q.reserved[(f >> 2) & 1] = 1; break;
			default: q.sites = 0; want = -EFAULT; break;
			}
			if (want == 0)
				want = -EINVAL;
		}
		uint32_t room = q.num_sites;
		ret = vmb_debug_fault_sites(C, &q);
		expect("debug_fault_sites", ret, want, 0);
		if (ret)
			return;
		CHECK(q.num_sites == total, "fault sites: %u, then %u", total, q.num_sites);
		for (uint32_t i = 0; i < room; i++) {
			const struct vmb_fault_site *e = &sites[i];
			CHECK(e->id == i && e->site_class && !(e->site_class & (e->site_class - 1)) &&
				      e->site_class <= VMB_INJECT_COMMIT && e->line && e->file[0] &&
				      memchr(e->file, 0, sizeof(e->file)) && memchr(e->func, 0, sizeof(e->func)),
			      "fault site %u: id %u class %#x line %u", i, e->id, e->site_class, e->line);
		}
		return;
	}
	static const uint32_t classes[] = {VMB_INJECT_HOST_ALLOC, VMB_INJECT_HOST_MAP,
					   VMB_INJECT_HOST_ALLOC | VMB_INJECT_HOST_MAP, VMB_INJECT_THREAD,
					   VMB_INJECT_PT_PAGE, VMB_INJECT_COMMIT};
	uint32_t cls = classes[(k >> 1) % 6];
	bool commit = cls == VMB_INJECT_COMMIT;
	struct vmb_fault_inject a = {.classes = cls, .flags = (k & 0x80) ? VMB_INJECT_PERSISTENT : VMB_INJECT_ONCE,
				     .nth = commit ? UINT64_C(1) << 40 : 1 + below(1000),
				     .scope = commit ? VMB_INJECT_SCOPE_PROCESS : VMB_INJECT_SCOPE_THREAD,
				     .error = commit ? ((k & 0x40) ? -EIO : -ENOMEM) : 0};
	int want = 0;
	if (f < 64) {
		want = -EINVAL;
		switch (f % 10) {
		case 0: a.classes = 0; break;
		case 1: a.classes |= 1u << (5 + (f >> 4)); break;
		case 2: a.classes = commit ? VMB_INJECT_THREAD | VMB_INJECT_PT_PAGE : cls | VMB_INJECT_COMMIT; break;
		case 3: a.flags = (f & 16) ? VMB_INJECT_ONCE | VMB_INJECT_PERSISTENT : 4; break;
		case 4: a.flags = 0; break;            /* none with nth */
		case 5: a.nth = 0; break;              /* flags without nth */
		case 6: a.scope = commit ? VMB_INJECT_SCOPE_THREAD : (f & 16) ? VMB_INJECT_SCOPE_PROCESS : 2; break;
		case 7: a.error = commit ? -EINVAL : -EIO; break;
		case 8: a.reserved[(f >> 4) & 1] = 1; break;
		default: /* a valid disarm: nothing was armed */
			a.nth = 0;
			a.flags = 0;
			a.error = 0;
			want = 0;
			break;
		}
	}
	int ret = vmb_debug_fault_inject(C, &a);
	expect("debug_fault_inject", ret, want, 0);
	if (ret)
		return;
	CHECK(a.left == 0, "fault_inject class %#x: a previous arming had %llu to go", a.classes,
	      (unsigned long long)a.left);
	if (!a.nth)
		return;
	uint64_t nth = a.nth;
	struct vmb_fault_inject d = {.classes = a.classes, .scope = a.scope};
	ret = vmb_debug_fault_inject(C, &d);
	CHECK(ret == 0 && d.injected == 0 && d.left && d.left <= nth && (commit || d.left == nth),
	      "disarming class %#x armed at %llu: %d, left %llu, injected %llu", a.classes, (unsigned long long)nth, ret,
	      (unsigned long long)d.left, (unsigned long long)d.injected);
}

static void do_validate(void)
{
	struct vmb_client_validate cv = {0};
	uint8_t k = u8();
	if (k & 0x80)
		cv.flags = 1;
	int ret = vmb_client_validate(C, &cv);
	expect("client_validate", ret, k & 0x80 ? -EINVAL : 0, k & 0x80 ? 0 : A_BUSY);
}

/* ---- one input ---- */

static double now_us(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

static void init_once(void)
{
	if (uptr)
		return;
	/* Every input opens a client, which starts the scheduler's workers (and an engine's thread
	 * with the first exec queue on it), and closes it. Under ASan a thread's start and exit cost grows with its stack: 256 KiB stacks
	 * instead of the default 8 MiB made the fuzzer 10% faster. The library's deepest path
	 * (the page-table walks) needs a few KiB. */
	pthread_attr_t at;
	CHECK(pthread_attr_init(&at) == 0 && pthread_attr_setstacksize(&at, 256 << 10) == 0 &&
		      pthread_setattr_default_np(&at) == 0,
	      "thread stack size");
	pthread_attr_destroy(&at);
	uptr = mmap(NULL, UPTR_PAGES * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ufmem = mmap(NULL, UF_SLOTS * 8, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(uptr != MAP_FAILED && ufmem != MAP_FAILED, "mmap");
	ro_page = mmap(NULL, PG, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	none_page = mmap(NULL, PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(ro_page != MAP_FAILED && none_page != MAP_FAILED, "mmap");
	memfd_plain = memfd_create("vmbind-fuzz-plain", MFD_CLOEXEC);
	CHECK(memfd_plain >= 0, "memfd_create");
	start_signals();
}

static void reset_state(void)
{
	memset(uptr, 0, UPTR_PAGES * PG);
	for (unsigned int p = 0; p < UPTR_PAGES; p++)
		*(uint64_t *)(uptr + p * PG) = tag_of(2, 0, p);
	memset(ufmem, 0, UF_SLOTS * 8);
	uf_next = 0;
	nufrecs = 0;
	nbobj = 0;
	nsyncs = 0;
	nexqs = 0;
	node_ctr = 0;
	counts_loose = false;
	for (int v = 0; v < MAX_VMS; v++)
		vms[v].used = vms[v].live = false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint64_t vram[] = {16 << 20, 32 << 20, 64 << 20, 32 << 20};
	static const uint64_t sys[] = {16 << 20, 64 << 20};
	static const uint64_t pool[] = {64 << 10, 256 << 10, 4 << 20, 16 << 20, 4 << 20, 4 << 20, 1 << 20, 4 << 20};

	init_once();
	reset_state();
	trace = getenv("VMB_FUZZ_TRACE") != NULL;
	in_p = data;
	in_n = size;
	step_no = 0;
	step_what = "open";
	uint8_t cfg = in8();
	rng_state = ((uint64_t)in8() << 8 | in8()) * UINT64_C(0x9e3779b97f4a7c15) + 1;
	opt_vram = vram[cfg & 3];
	opt_sys = sys[(cfg >> 2) & 1];
	opt_pool = pool[(cfg >> 3) & 7];
	struct vmb_client_opts opts = {.vram_size = opt_vram, .system_size = opt_sys, .pt_pool_size = opt_pool,
				       .job_timeout_ms = 50};
	int ret = vmb_client_open("soft", &opts, &C);
	CHECK(ret == 0, "vmb_client_open: %d", ret);
	atomic_store(&input_running, true);

	for (step_no = 1; in_n && step_no <= MAX_STEPS; step_no++) {
		double t0 = trace ? now_us() : 0;
		uint8_t op = in8(), inj = in8(), len = in8();
		arg_p = in_p;
		arg_n = len < in_n ? len : in_n;
		in_p += arg_n;
		in_n -= arg_n;
		/* an allocation of this step's main call may fail (the calling thread's): the 1st to
		 * 12th host allocation or mapping, the 1st or 2nd page-table page, the 1st thread,
		 * the 1st host mapping */
		inj_nomem = inj >= 240;
		inj_fired = false;
		inj_nth = 1u + (255u - inj);
		inj_class = VMB_INJECT_HOST_ALLOC | VMB_INJECT_HOST_MAP;
		if (inj == 243 || inj == 242) {
			inj_class = VMB_INJECT_PT_PAGE;
			inj_nth = 244u - inj;
		} else if (inj == 241) {
			inj_class = VMB_INJECT_THREAD;
			inj_nth = 1;
		} else if (inj == 240) {
			inj_class = VMB_INJECT_HOST_MAP;
			inj_nth = 1;
		}
		switch (op % 64) {
		case 0: case 1: case 2: case 3: case 4: case 5: case 6: case 7: case 8: case 9: case 10: case 11:
		case 12: case 13: case 14: case 15: case 16: case 17: case 18: case 19: case 20: case 21:
			step_what = "bind"; do_bind(); break;
		case 22: case 23: case 24: case 25: step_what = "bo_create"; do_bo_create(); break;
		case 26: step_what = "bo_destroy"; do_bo_destroy(); break;
		case 27: step_what = "bo_misc"; do_bo_misc(); break;
		case 28: case 29: step_what = "vm_create"; do_vm_create(); break;
		case 30: step_what = "vm_destroy"; do_vm_destroy(); break;
		case 31: step_what = "bind_queue_create"; do_bind_queue(true); break;
		case 32: step_what = "bind_queue_destroy"; do_bind_queue(false); break;
		case 33: case 34: step_what = "syncobj_create"; do_syncobj_create(); break;
		case 35: step_what = "syncobj_destroy"; do_syncobj_destroy(); break;
		case 36: case 37: step_what = "syncobj_array"; do_syncobj_array(); break;
		case 38: step_what = "syncobj_wait"; do_syncobj_wait(); break;
		case 39: step_what = "syncobj_transfer"; do_syncobj_transfer(); break;
		case 40: step_what = "syncobj_fd"; do_syncobj_fd(); break;
		case 41: step_what = "user_fence_wait"; do_ufence_wait(); break;
		case 42: case 43: step_what = "exec_queue_create"; do_exec_queue_create(); break;
		case 44: step_what = "exec_queue_destroy"; do_exec_queue_destroy(); break;
		case 45: step_what = "exec_queue_query"; do_exec_queue_query(); break;
		case 46: case 47: case 48: case 49: case 50: case 51: step_what = "exec"; do_exec(); break;
		case 52: case 53: case 54: step_what = "vm_access"; do_access(); break;
		case 55: step_what = "queries"; do_queries(); break;
		case 56: step_what = "trace"; do_trace(); break;
		case 57: step_what = "validate"; do_validate(); break;
		case 58: step_what = "open_gates"; open_gates(); break;
		case 60: step_what = "syncobj_query_status"; do_syncobj_status(); break;
		case 61: step_what = "fault_api"; inj_nomem = false; do_fault_api(); break;
		case 59: step_what = "checkpoint"; inj_nomem = false; checkpoint(); break;
		default: step_what = "bind"; do_bind(); break;
		}
		inj_nomem = false;
		if (step_no % CHECK_EVERY == 0)
			checkpoint();
		if (trace)
			fprintf(stderr, "step %u: %s (op %u, %zu argument bytes%s): %.0f us\n", step_no, step_what, op % 64,
				(size_t)len, inj >= 240 ? ", allocation failure" : "", now_us() - t0);
	}
	step_what = "end";
	disarm_all();
	checkpoint();
	atomic_store(&input_running, false);
	if (trace)
		signal_stats();
	ret = vmb_client_close(C);
	CHECK(ret == 0, "vmb_client_close: %d", ret);
	C = NULL;
	for (unsigned int i = 0; i < nsyncs; i++)
		if (syncs[i].gate_fd >= 0)
			close(syncs[i].gate_fd);
	return 0;
}
