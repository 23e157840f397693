/* SPDX-License-Identifier: MIT */
/*
 * `vmbind bench handles [--json] [--quick]`: handle create/destroy under churn with N live
 * handles (issue 16 item 5), N = 10^3, 10^4, 10^5, 10^6 and a full table of 2^20 slots with one
 * free (the case where a scan for a free slot is longest). Each timed pair destroys a handle
 * chosen at random among the N live ones and creates one in its place, so N stays constant. One
 * random sequence drives every side. Every table side does the same job: the destroy reads the
 * handle's slot and refuses a free one (as a stale handle is refused), the create returns a
 * handle naming the object.
 *   - table:       vmb_handle_remove() + vmb_handle_alloc() on a struct vmb_handle_table (the
 *                  FIFO free list of src/core/handle.c), the library's own cost per handle;
 *   - array_fifo:  the peer with the same reuse rule: an array of slots and a ring of free
 *                  slot indices (a freed handle is reused last);
 *   - array_lifo:  the strongest peer: an array of slots and a stack of free indices (a freed
 *                  handle is reused at once: no protection of stale handles, the least work);
 *   - scan:        the cyclic scan for a free slot that the table used before (a reference,
 *                  kept here to show the change in the same run);
 *   - syncobj:     vmb_syncobj_destroy() + vmb_syncobj_create() through the public API
 *                  (entry, lock, the object's allocation and the handle);
 *   - malloc:      free() + malloc() of an object of struct vmb_syncobj's size, initialised as
 *                  the library does (calloc, its mutex, its lists): the syncobj's peer.
 * Each side runs ROUNDS times, the sides' order rotating; a round times BATCHES batches of
 * BATCH pairs (fewer pairs per batch when one batch takes over 1 ms: the scan at a full
 * table); a side's figure is the median ns per pair over every batch of every round, its
 * spread the min..max of the rounds' medians.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench-util.h"
#include "cli.h"
#include "core/handle.h"
#include "sync/syncobj.h"

#define ROUNDS 3
#define BATCH 1000u
#define MAX_BATCHES 200u
#define FULL_N ((1u << 20) - 1) /* a table of 2^20 slots, one free */
#define SEED 0x68616e646c6573ull

enum side { S_TABLE, S_FIFO, S_LIFO, S_SCAN, S_SYNCOBJ, S_MALLOC, S_SIDES };
static const char *const side_key[S_SIDES] = {"table", "array_fifo", "array_lifo", "scan", "syncobj", "malloc"};
static const char *const side_what[S_SIDES] = {
	"vmb_handle_table (FIFO free list)", "array + ring of free slots (same reuse rule)",
	"array + stack of free slots (reuse at once)", "cyclic scan (the table before issue 16)",
	"vmb_syncobj_destroy + vmb_syncobj_create", "free + malloc of the same object (calloc + mutex)"};

struct side_res {
	bool ok;
	double ns, lo, hi; /* median ns per pair; min..max of the rounds' medians */
};

struct row {
	uint32_t n;
	struct side_res s[S_SIDES];
};

/* splitmix64: the index of the handle each pair replaces */
static inline uint64_t mix(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static inline uint32_t pick(uint64_t *s, uint32_t n)
{
	return (uint32_t)(((mix(s) >> 32) * (uint64_t)n) >> 32);
}

/* ---- the sides: state, fill (untimed), pairs, teardown ------------------------------------- */

static _Alignas(16) char object[16]; /* what the table sides store */

struct state {
	uint32_t n;
	uint32_t *h; /* the N live handles (slot index + 1) */
	/* table */
	struct vmb_handle_table t;
	/* array sides and scan */
	void **slots;
	uint32_t cap, *free_idx, free_n, free_head; /* lifo: stack of free_n; fifo: ring from free_head */
	uint32_t next;                               /* scan: where the next search starts */
	/* syncobj */
	struct vmb_client *c;
	/* malloc */
	struct vmb_syncobj **objs;
};

static uint32_t cap_for(uint32_t n)
{
	uint32_t cap = 16;
	while (cap <= n) /* the table grows when full: n live in the smallest power of 2 above n */
		cap *= 2;
	return cap;
}

static int arrays_fill(struct state *st, bool with_free)
{
	st->cap = cap_for(st->n);
	st->slots = calloc(st->cap, sizeof(*st->slots));
	st->free_idx = with_free ? malloc(st->cap * sizeof(*st->free_idx)) : NULL;
	if (!st->slots || (with_free && !st->free_idx))
		return -ENOMEM;
	for (uint32_t i = 0; i < st->n; i++) {
		st->slots[i] = object;
		st->h[i] = i + 1;
	}
	st->free_n = st->free_head = 0;
	if (with_free)
		for (uint32_t i = st->n; i < st->cap; i++)
			st->free_idx[st->free_n++] = i;
	st->next = st->n;
	return 0;
}

static void malloc_one(struct vmb_syncobj **out)
{
	struct vmb_syncobj *s = calloc(1, sizeof(*s));
	if (!s)
		abort();
	atomic_init(&s->refs, 1);
	pthread_mutex_init(&s->lock, NULL);
	vmb_list_init(&s->points);
	vmb_list_init(&s->waiters);
	*out = s;
}

static void malloc_free(struct vmb_syncobj *s)
{
	pthread_mutex_destroy(&s->lock);
	free(s);
}

static int side_fill(enum side sd, struct state *st)
{
	int err = 0;
	switch (sd) {
	case S_TABLE:
		vmb_handle_table_init(&st->t);
		for (uint32_t i = 0; i < st->n && !err; i++)
			err = vmb_handle_alloc(&st->t, object, &st->h[i]);
		return err;
	case S_FIFO:
	case S_LIFO:
		return arrays_fill(st, true);
	case S_SCAN:
		return arrays_fill(st, false);
	case S_SYNCOBJ:
		if ((err = vmb_client_open(NULL, NULL, &st->c)))
			return err;
		for (uint32_t i = 0; i < st->n && !err; i++) {
			struct vmb_syncobj_create a = {0};
			err = vmb_syncobj_create(st->c, &a);
			st->h[i] = a.handle;
		}
		return err;
	case S_MALLOC:
		if (!(st->objs = malloc(st->n * sizeof(*st->objs))))
			return -ENOMEM;
		for (uint32_t i = 0; i < st->n; i++)
			malloc_one(&st->objs[i]);
		return 0;
	default:
		return -EINVAL;
	}
}

static void side_teardown(enum side sd, struct state *st)
{
	switch (sd) {
	case S_TABLE:
		vmb_handle_table_fini(&st->t);
		break;
	case S_SYNCOBJ:
		if (st->c)
			vmb_client_close(st->c); /* destroys the syncobjs left */
		st->c = NULL;
		break;
	case S_MALLOC:
		if (st->objs)
			for (uint32_t i = 0; i < st->n; i++)
				malloc_free(st->objs[i]);
		free(st->objs);
		st->objs = NULL;
		break;
	default:
		free(st->slots);
		free(st->free_idx);
		st->slots = NULL;
		st->free_idx = NULL;
		break;
	}
}

/* @count pairs of side @sd; 0 or a negative errno */
static int side_pairs(enum side sd, struct state *st, uint64_t *rng, uint32_t count)
{
	uint32_t n = st->n, *h = st->h;
	switch (sd) {
	case S_TABLE:
		for (uint32_t j = 0; j < count; j++) {
			uint32_t k = pick(rng, n);
			if (!vmb_handle_remove(&st->t, h[k]) || vmb_handle_alloc(&st->t, object, &h[k]))
				return -EIO;
		}
		return 0;
	case S_FIFO: {
		uint32_t cap = st->cap, mask = cap - 1, *ring = st->free_idx;
		for (uint32_t j = 0; j < count; j++) {
			uint32_t k = pick(rng, n), i = h[k] - 1;
			if (!st->slots[i]) /* the same job as the table's: a stale handle is refused */
				return -EIO;
			st->slots[i] = NULL;
			ring[(st->free_head + st->free_n++) & mask] = i;
			i = ring[st->free_head];
			st->free_head = (st->free_head + 1) & mask;
			st->free_n--;
			st->slots[i] = object;
			h[k] = i + 1;
		}
		return 0;
	}
	case S_LIFO:
		for (uint32_t j = 0; j < count; j++) {
			uint32_t k = pick(rng, n), i = h[k] - 1;
			if (!st->slots[i])
				return -EIO;
			st->slots[i] = NULL;
			st->free_idx[st->free_n++] = i;
			i = st->free_idx[--st->free_n];
			st->slots[i] = object;
			h[k] = i + 1;
		}
		return 0;
	case S_SCAN:
		for (uint32_t j = 0; j < count; j++) {
			uint32_t k = pick(rng, n), i = st->next;
			if (!st->slots[h[k] - 1])
				return -EIO;
			st->slots[h[k] - 1] = NULL;
			while (st->slots[i])
				if (++i == st->cap)
					i = 0;
			st->slots[i] = object;
			st->next = i + 1 == st->cap ? 0 : i + 1;
			h[k] = i + 1;
		}
		return 0;
	case S_SYNCOBJ:
		for (uint32_t j = 0; j < count; j++) {
			uint32_t k = pick(rng, n);
			struct vmb_syncobj_destroy d = {.handle = h[k]};
			struct vmb_syncobj_create a = {0};
			int err = vmb_syncobj_destroy(st->c, &d);
			if (err || (err = vmb_syncobj_create(st->c, &a)))
				return err;
			h[k] = a.handle;
		}
		return 0;
	case S_MALLOC:
		for (uint32_t j = 0; j < count; j++) {
			uint32_t k = pick(rng, n);
			malloc_free(st->objs[k]);
			malloc_one(&st->objs[k]);
		}
		return 0;
	default:
		return -EINVAL;
	}
}

/* One round of side @sd: fills, times the batches into @ns (count into *@nb), tears down. */
static int side_round(enum side sd, uint32_t n, uint32_t batches, uint64_t seed, double *ns, size_t *nb)
{
	struct state st = {.n = n};
	uint64_t rng = seed;
	int err = -ENOMEM;
	*nb = 0;
	if (!(st.h = malloc((size_t)n * sizeof(*st.h))))
		return err;
	if ((err = side_fill(sd, &st)))
		goto out;
	uint32_t batch = BATCH;
	for (uint32_t b = 0; b < batches; b++) {
		uint64_t t0 = now_ns();
		if ((err = side_pairs(sd, &st, &rng, batch)))
			goto out;
		double dt = (double)(now_ns() - t0);
		ns[(*nb)++] = dt / batch;
		if (b == 0 && dt > 1e6) { /* slow (the scan of a full table): about 1 ms a batch, 20 of them */
			batch = (uint32_t)fmax(1.0, batch * 1e6 / dt);
			batches = batches < 20 ? batches : 20;
		}
	}
out:
	side_teardown(sd, &st);
	free(st.h);
	return err;
}

static double ratio(const struct side_res *a, const struct side_res *b)
{
	return a->ok && b->ok ? a->ns / b->ns : NAN;
}

struct goal {
	const char *what;
	double value, target;
};

int cmd_bench_handles(bool json, bool quick)
{
	static const uint32_t full_n[] = {1000, 10000, 100000, 1000000, FULL_N};
	static const uint32_t quick_n[] = {1000, 10000, 16383};
	const uint32_t *ns = quick ? quick_n : full_n;
	size_t rows = quick ? 3 : 5;
	uint32_t batches = quick ? 20 : MAX_BATCHES;
	struct row row[5];
	double *all = malloc((size_t)ROUNDS * MAX_BATCHES * sizeof(*all));
	int status = 0;

	if (!all) {
		fprintf(stderr, "bench handles: out of memory\n");
		return 1;
	}
	for (size_t r = 0; r < rows; r++) {
		row[r].n = ns[r];
		size_t total[S_SIDES] = {0};
		double *per = malloc((size_t)S_SIDES * ROUNDS * MAX_BATCHES * sizeof(*per));
		if (!per) {
			free(all);
			fprintf(stderr, "bench handles: out of memory\n");
			return 1;
		}
		for (int s = 0; s < S_SIDES; s++)
			row[r].s[s] = (struct side_res){.ok = true, .lo = INFINITY, .hi = -INFINITY};
		for (int round = 0; round < ROUNDS; round++) {
			fprintf(stderr, "bench handles: N = %u, round %d/%d\n", ns[r], round + 1, ROUNDS);
			for (int i = 0; i < S_SIDES; i++) {
				int s = (i + round) % S_SIDES; /* rotate the order */
				struct side_res *x = &row[r].s[s];
				size_t nb;
				if (!x->ok)
					continue;
				double *at = per + ((size_t)s * ROUNDS * MAX_BATCHES) + total[s];
				int err = side_round((enum side)s, ns[r], batches, SEED + r * 7919 + (uint64_t)round, at, &nb);
				if (err) {
					fprintf(stderr, "bench handles: %s at N = %u: %s\n", side_key[s], ns[r], strerror(-err));
					x->ok = false;
					status = 1;
					continue;
				}
				memcpy(all, at, nb * sizeof(*all));
				double m = median_double(all, nb);
				x->lo = fmin(x->lo, m);
				x->hi = fmax(x->hi, m);
				total[s] += nb;
			}
		}
		for (int s = 0; s < S_SIDES; s++)
			if (row[r].s[s].ok)
				row[r].s[s].ns = median_double(per + ((size_t)s * ROUNDS * MAX_BATCHES), total[s]);
		free(per);
	}
	free(all);

	const struct row *m6 = &row[rows - 1];
	for (size_t r = 0; r < rows; r++)
		if (row[r].n == 1000000)
			m6 = &row[r];
	char g0[96], g1[96];
	snprintf(g0, sizeof(g0), "table create+destroy, ns per pair at N = %u", m6->n);
	snprintf(g1, sizeof(g1), "table create+destroy, ns per pair, full table (N = %u)", row[rows - 1].n);
	const struct goal goals[] = {
		{g0, m6->s[S_TABLE].ok ? m6->s[S_TABLE].ns : NAN, 100},
		{g1, row[rows - 1].s[S_TABLE].ok ? row[rows - 1].s[S_TABLE].ns : NAN, 100},
	};
	size_t ngoals = sizeof(goals) / sizeof(goals[0]);

	if (json) {
		printf("{\"bench\":\"handles\",\"quick\":%s,", quick ? "true" : "false");
		bench_json_machine();
		printf("\"rounds\":%d,\"batch\":%u,\"batches\":%u,\"object_bytes\":%zu,\"rows\":[", ROUNDS, BATCH, batches,
		       sizeof(struct vmb_syncobj));
		for (size_t r = 0; r < rows; r++) {
			printf("%s{\"n\":%u,\"cap\":%u,\"sides\":{", r ? "," : "", row[r].n, cap_for(row[r].n));
			for (int s = 0; s < S_SIDES; s++) {
				const struct side_res *x = &row[r].s[s];
				printf("%s\"%s\":{\"ns_per_pair\":", s ? "," : "", side_key[s]);
				json_num(x->ok ? x->ns : NAN);
				printf(",\"round_min\":");
				json_num(x->ok ? x->lo : NAN);
				printf(",\"round_max\":");
				json_num(x->ok ? x->hi : NAN);
				printf("}");
			}
			printf("},\"ratios\":{\"table_vs_array_fifo\":");
			json_num(ratio(&row[r].s[S_TABLE], &row[r].s[S_FIFO]));
			printf(",\"table_vs_array_lifo\":");
			json_num(ratio(&row[r].s[S_TABLE], &row[r].s[S_LIFO]));
			printf(",\"scan_vs_table\":");
			json_num(ratio(&row[r].s[S_SCAN], &row[r].s[S_TABLE]));
			printf(",\"syncobj_vs_malloc\":");
			json_num(ratio(&row[r].s[S_SYNCOBJ], &row[r].s[S_MALLOC]));
			printf("}}");
		}
		printf("],\"goals\":[");
		for (size_t i = 0; i < ngoals; i++) {
			bool met = !isnan(goals[i].value) && goals[i].value <= goals[i].target;
			printf("%s{\"goal\":\"%s\",\"value\":", i ? "," : "", goals[i].what);
			json_num(goals[i].value);
			printf(",\"target\":");
			json_num(goals[i].target);
			printf(",\"compare\":\"<=\",\"met\":%s}", met ? "true" : "false");
		}
		printf("]}\n");
		return status;
	}

	printf("vmbind bench handles%s: destroy a random one of N live handles and create one, per pair (ns);\n"
	       "median over %d rounds x %u batches of %u pairs (min..max of the rounds' medians)\n",
	       quick ? " --quick" : "", ROUNDS, batches, BATCH);
	bench_print_machine();
	for (int s = 0; s < S_SIDES; s++)
		printf("  %-11s %s\n", side_key[s], side_what[s]);
	printf("\n%8s %8s", "N", "cap");
	for (int s = 0; s < S_SIDES; s++)
		printf(" %21s", side_key[s]);
	printf("\n");
	for (size_t r = 0; r < rows; r++) {
		printf("%8u %8u", row[r].n, cap_for(row[r].n));
		for (int s = 0; s < S_SIDES; s++) {
			const struct side_res *x = &row[r].s[s];
			char b[64];
			if (!x->ok)
				snprintf(b, sizeof(b), "failed");
			else
				snprintf(b, sizeof(b), "%.0f (%.0f..%.0f)", x->ns, x->lo, x->hi);
			printf(" %21s", b);
		}
		printf("\n");
	}
	printf("\nratios: table/array_fifo, table/array_lifo, scan/table, syncobj/malloc\n");
	for (size_t r = 0; r < rows; r++)
		printf("%8u   %6.2f   %6.2f   %8.1f   %6.2f\n", row[r].n, ratio(&row[r].s[S_TABLE], &row[r].s[S_FIFO]),
		       ratio(&row[r].s[S_TABLE], &row[r].s[S_LIFO]), ratio(&row[r].s[S_SCAN], &row[r].s[S_TABLE]),
		       ratio(&row[r].s[S_SYNCOBJ], &row[r].s[S_MALLOC]));
	printf("\ngoals:\n");
	for (size_t i = 0; i < ngoals; i++) {
		bool met = !isnan(goals[i].value) && goals[i].value <= goals[i].target;
		printf("  %-62s %-8.4g (goal <= %g): %s\n", goals[i].what, goals[i].value, goals[i].target,
		       isnan(goals[i].value) ? "n/a" : met ? "met" : "MISSED");
	}
	if (quick)
		printf("(--quick: a smoke run; the goals are meant for N = 10^6)\n");
	return status;
}
