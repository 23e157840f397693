/* SPDX-License-Identifier: MIT */
/*
 * Description: VA tree split/merge planner, table driven. Each row gives the mappings to
 * start from, one MAP or UNMAP request, the steps the planner must produce and the tree that
 * must result. Every row is planned, checked step by step, walked, applied, validated,
 * compared, reverted (the tree must be the initial one, same nodes), re-applied and finished.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "vm/va.h"

#define PG UINT64_C(4096)
#define TOP (UINT64_MAX / PG)           /* last page of the 64-bit space */
#define T48 ((UINT64_C(1) << 36) - 1)   /* last page of a 48-bit space */
#define HOST UINT64_C(0x7f0000000)      /* a host page for USERPTR rows */

#define RO VMB_VA_READONLY
#define NUL VMB_VA_NULL
#define UP VMB_VA_USERPTR

enum { NOBO, A, B, C, D, NBOS };
static char bos[NBOS];

/* A mapping in pages: [s, l], BO id (NOBO for NULL/USERPTR), offset in pages, flags. */
struct m {
	bool set;
	uint64_t s, l;
	int bo;
	uint64_t off;
	uint32_t flags;
};

struct st {
	bool set;
	enum vmb_va_step_kind kind;
	struct m va, prev, next;
};

#define MAXM 16

struct row {
	const char *name;
	struct m init[MAXM];
	bool unmap;
	struct m req; /* for an unmap only s and l count */
	struct st steps[MAXM];
	struct m final[MAXM];
};

#define M(s_, l_, bo_, off_, fl_) { .set = true, .s = (s_), .l = (l_), .bo = (bo_), .off = (off_), .flags = (fl_) }
#define R(s_, l_) M(s_, l_, NOBO, 0, 0)
#define NO { .set = false }
#define MAP(va_) { .set = true, .kind = VMB_VA_STEP_MAP, .va = va_ }
#define UNMAP(va_) { .set = true, .kind = VMB_VA_STEP_UNMAP, .va = va_ }
#define REMAP(va_, p_, n_) { .set = true, .kind = VMB_VA_STEP_REMAP, .va = va_, .prev = p_, .next = n_ }

/* clang-format off */
static struct row rows[] = {
	/* ---- map ---- */
	{ "map: into an empty tree",
	  .init = { NO },
	  .req = M(0, 3, A, 0, 0),
	  .steps = { MAP(M(0, 3, A, 0, 0)) },
	  .final = { M(0, 3, A, 0, 0) } },
	{ "map: no overlap",
	  .init = { M(0, 1, A, 0, 0) },
	  .req = M(4, 5, B, 0, 0),
	  .steps = { MAP(M(4, 5, B, 0, 0)) },
	  .final = { M(0, 1, A, 0, 0), M(4, 5, B, 0, 0) } },
	{ "map: into a hole touching both neighbours",
	  .init = { M(0, 1, A, 0, 0), M(4, 5, C, 7, 0) },
	  .req = M(2, 3, B, 0, 0),
	  .steps = { MAP(M(2, 3, B, 0, 0)) },
	  .final = { M(0, 1, A, 0, 0), M(2, 3, B, 0, 0), M(4, 5, C, 7, 0) } },
	{ "map: same range same obj is a no-op",
	  .init = { M(0, 3, A, 5, RO) },
	  .req = M(0, 3, A, 5, RO),
	  .steps = { NO },
	  .final = { M(0, 3, A, 5, RO) } },
	{ "map: same range, NULL again, is a no-op",
	  .init = { M(2, 3, NOBO, 0, NUL) },
	  .req = M(2, 3, NOBO, 0, NUL),
	  .steps = { NO },
	  .final = { M(2, 3, NOBO, 0, NUL) } },
	{ "map: same range other bo",
	  .init = { M(0, 3, A, 0, 0) },
	  .req = M(0, 3, B, 0, 0),
	  .steps = { UNMAP(M(0, 3, A, 0, 0)), MAP(M(0, 3, B, 0, 0)) },
	  .final = { M(0, 3, B, 0, 0) } },
	{ "map: same range same bo other offset",
	  .init = { M(0, 3, A, 0, 0) },
	  .req = M(0, 3, A, 1, 0),
	  .steps = { UNMAP(M(0, 3, A, 0, 0)), MAP(M(0, 3, A, 1, 0)) },
	  .final = { M(0, 3, A, 1, 0) } },
	{ "map: same range same bo other flags",
	  .init = { M(0, 3, A, 0, 0) },
	  .req = M(0, 3, A, 0, RO),
	  .steps = { UNMAP(M(0, 3, A, 0, 0)), MAP(M(0, 3, A, 0, RO)) },
	  .final = { M(0, 3, A, 0, RO) } },
	{ "map: same range, BO over NULL",
	  .init = { M(0, 3, NOBO, 0, NUL) },
	  .req = M(0, 3, A, 0, 0),
	  .steps = { UNMAP(M(0, 3, NOBO, 0, NUL)), MAP(M(0, 3, A, 0, 0)) },
	  .final = { M(0, 3, A, 0, 0) } },
	{ "map: new covers old",
	  .init = { M(2, 3, A, 0, 0) },
	  .req = M(0, 5, B, 0, 0),
	  .steps = { UNMAP(M(2, 3, A, 0, 0)), MAP(M(0, 5, B, 0, 0)) },
	  .final = { M(0, 5, B, 0, 0) } },
	{ "map: new covers several, holes between",
	  .init = { M(0, 0, C, 0, 0), M(2, 3, A, 0, 0), M(5, 5, B, 9, 0), M(8, 9, D, 0, 0) },
	  .req = M(1, 7, B, 0, 0),
	  .steps = { UNMAP(M(2, 3, A, 0, 0)), UNMAP(M(5, 5, B, 9, 0)), MAP(M(1, 7, B, 0, 0)) },
	  .final = { M(0, 0, C, 0, 0), M(1, 7, B, 0, 0), M(8, 9, D, 0, 0) } },
	{ "map: new inside old (prev and next kept)",
	  .init = { M(0, 5, A, 0, 0) },
	  .req = M(2, 3, B, 0, 0),
	  .steps = { REMAP(M(0, 5, A, 0, 0), M(0, 1, A, 0, 0), M(4, 5, A, 4, 0)),
		     MAP(M(2, 3, B, 0, 0)) },
	  .final = { M(0, 1, A, 0, 0), M(2, 3, B, 0, 0), M(4, 5, A, 4, 0) } },
	{ "map: new inside old, same obj at matching offset (no merge)",
	  .init = { M(0, 5, A, 10, 0) },
	  .req = M(2, 3, A, 12, 0),
	  .steps = { REMAP(M(0, 5, A, 10, 0), M(0, 1, A, 10, 0), M(4, 5, A, 14, 0)),
		     MAP(M(2, 3, A, 12, 0)) },
	  .final = { M(0, 1, A, 10, 0), M(2, 3, A, 12, 0), M(4, 5, A, 14, 0) } },
	{ "map: overlaps old's front (next kept)",
	  .init = { M(2, 5, A, 0, 0) },
	  .req = M(0, 3, B, 0, 0),
	  .steps = { REMAP(M(2, 5, A, 0, 0), NO, M(4, 5, A, 2, 0)), MAP(M(0, 3, B, 0, 0)) },
	  .final = { M(0, 3, B, 0, 0), M(4, 5, A, 2, 0) } },
	{ "map: same start, shorter (next kept)",
	  .init = { M(0, 5, A, 3, RO) },
	  .req = M(0, 1, B, 0, 0),
	  .steps = { REMAP(M(0, 5, A, 3, RO), NO, M(2, 5, A, 5, RO)), MAP(M(0, 1, B, 0, 0)) },
	  .final = { M(0, 1, B, 0, 0), M(2, 5, A, 5, RO) } },
	{ "map: overlaps old's back (prev kept)",
	  .init = { M(0, 3, A, 0, 0) },
	  .req = M(2, 5, B, 0, 0),
	  .steps = { REMAP(M(0, 3, A, 0, 0), M(0, 1, A, 0, 0), NO), MAP(M(2, 5, B, 0, 0)) },
	  .final = { M(0, 1, A, 0, 0), M(2, 5, B, 0, 0) } },
	{ "map: same end, shorter (prev kept)",
	  .init = { M(0, 5, A, 0, 0) },
	  .req = M(4, 5, B, 0, 0),
	  .steps = { REMAP(M(0, 5, A, 0, 0), M(0, 3, A, 0, 0), NO), MAP(M(4, 5, B, 0, 0)) },
	  .final = { M(0, 3, A, 0, 0), M(4, 5, B, 0, 0) } },
	{ "map: spans many (prev kept, middle unmapped, next kept)",
	  .init = { M(0, 3, A, 0, 0), M(4, 4, NOBO, 0, NUL), M(6, 9, C, 8, 0) },
	  .req = M(2, 7, B, 0, 0),
	  .steps = { REMAP(M(0, 3, A, 0, 0), M(0, 1, A, 0, 0), NO),
		     UNMAP(M(4, 4, NOBO, 0, NUL)),
		     REMAP(M(6, 9, C, 8, 0), NO, M(8, 9, C, 10, 0)),
		     MAP(M(2, 7, B, 0, 0)) },
	  .final = { M(0, 1, A, 0, 0), M(2, 7, B, 0, 0), M(8, 9, C, 10, 0) } },
	{ "map: spans many, steps spill out of the inline array",
	  .init = { M(0, 1, A, 0, 0), M(2, 2, A, 2, 0), M(3, 3, B, 0, 0), M(4, 4, C, 0, 0),
		    M(5, 5, D, 0, 0), M(6, 6, A, 6, 0), M(7, 7, NOBO, 0, NUL), M(8, 8, B, 8, 0),
		    M(9, 9, C, 9, 0), M(10, 12, D, 0, 0) },
	  .req = M(1, 11, B, 100, RO),
	  .steps = { REMAP(M(0, 1, A, 0, 0), M(0, 0, A, 0, 0), NO),
		     UNMAP(M(2, 2, A, 2, 0)), UNMAP(M(3, 3, B, 0, 0)), UNMAP(M(4, 4, C, 0, 0)),
		     UNMAP(M(5, 5, D, 0, 0)), UNMAP(M(6, 6, A, 6, 0)),
		     UNMAP(M(7, 7, NOBO, 0, NUL)), UNMAP(M(8, 8, B, 8, 0)),
		     UNMAP(M(9, 9, C, 9, 0)),
		     REMAP(M(10, 12, D, 0, 0), NO, M(12, 12, D, 2, 0)),
		     MAP(M(1, 11, B, 100, RO)) },
	  .final = { M(0, 0, A, 0, 0), M(1, 11, B, 100, RO), M(12, 12, D, 2, 0) } },
	{ "map: NULL mapping split keeps offset 0",
	  .init = { M(0, 5, NOBO, 0, NUL) },
	  .req = M(2, 3, B, 0, 0),
	  .steps = { REMAP(M(0, 5, NOBO, 0, NUL), M(0, 1, NOBO, 0, NUL), M(4, 5, NOBO, 0, NUL)),
		     MAP(M(2, 3, B, 0, 0)) },
	  .final = { M(0, 1, NOBO, 0, NUL), M(2, 3, B, 0, 0), M(4, 5, NOBO, 0, NUL) } },
	{ "map: NULL over the front of a BO mapping",
	  .init = { M(0, 5, A, 0, 0) },
	  .req = M(0, 2, NOBO, 0, NUL),
	  .steps = { REMAP(M(0, 5, A, 0, 0), NO, M(3, 5, A, 3, 0)), MAP(M(0, 2, NOBO, 0, NUL)) },
	  .final = { M(0, 2, NOBO, 0, NUL), M(3, 5, A, 3, 0) } },
	{ "map: USERPTR split advances the host address",
	  .init = { M(0, 5, NOBO, HOST, UP) },
	  .req = M(2, 3, B, 0, 0),
	  .steps = { REMAP(M(0, 5, NOBO, HOST, UP), M(0, 1, NOBO, HOST, UP),
			   M(4, 5, NOBO, HOST + 4, UP)),
		     MAP(M(2, 3, B, 0, 0)) },
	  .final = { M(0, 1, NOBO, HOST, UP), M(2, 3, B, 0, 0), M(4, 5, NOBO, HOST + 4, UP) } },
	{ "map: at address 0, same range",
	  .init = { M(0, 0, A, 0, 0), M(1, 1, B, 0, 0) },
	  .req = M(0, 0, C, 3, 0),
	  .steps = { UNMAP(M(0, 0, A, 0, 0)), MAP(M(0, 0, C, 3, 0)) },
	  .final = { M(0, 0, C, 3, 0), M(1, 1, B, 0, 0) } },
	{ "map: at address 0 over the front",
	  .init = { M(0, 7, A, 0, 0) },
	  .req = M(0, 0, C, 0, 0),
	  .steps = { REMAP(M(0, 7, A, 0, 0), NO, M(1, 7, A, 1, 0)), MAP(M(0, 0, C, 0, 0)) },
	  .final = { M(0, 0, C, 0, 0), M(1, 7, A, 1, 0) } },
	{ "map: ending at the top of a 48-bit space (prev kept)",
	  .init = { M(T48 - 3, T48, A, 0, 0) },
	  .req = M(T48 - 1, T48, B, 0, 0),
	  .steps = { REMAP(M(T48 - 3, T48, A, 0, 0), M(T48 - 3, T48 - 2, A, 0, 0), NO),
		     MAP(M(T48 - 1, T48, B, 0, 0)) },
	  .final = { M(T48 - 3, T48 - 2, A, 0, 0), M(T48 - 1, T48, B, 0, 0) } },
	{ "map: last page of the 64-bit space, into a hole",
	  .init = { M(0, 0, A, 0, 0), M(TOP - 2, TOP - 1, C, 0, 0) },
	  .req = M(TOP, TOP, B, 1, 0),
	  .steps = { MAP(M(TOP, TOP, B, 1, 0)) },
	  .final = { M(0, 0, A, 0, 0), M(TOP - 2, TOP - 1, C, 0, 0), M(TOP, TOP, B, 1, 0) } },
	{ "map: top of the 64-bit space, same range",
	  .init = { M(TOP, TOP, A, 0, 0) },
	  .req = M(TOP, TOP, B, 0, 0),
	  .steps = { UNMAP(M(TOP, TOP, A, 0, 0)), MAP(M(TOP, TOP, B, 0, 0)) },
	  .final = { M(TOP, TOP, B, 0, 0) } },
	{ "map: top of the 64-bit space, prev kept",
	  .init = { M(TOP - 3, TOP, A, 0, 0) },
	  .req = M(TOP - 1, TOP, B, 0, 0),
	  .steps = { REMAP(M(TOP - 3, TOP, A, 0, 0), M(TOP - 3, TOP - 2, A, 0, 0), NO),
		     MAP(M(TOP - 1, TOP, B, 0, 0)) },
	  .final = { M(TOP - 3, TOP - 2, A, 0, 0), M(TOP - 1, TOP, B, 0, 0) } },
	{ "map: top of the 64-bit space, inside (next ends at UINT64_MAX)",
	  .init = { M(TOP - 5, TOP, A, 0, 0) },
	  .req = M(TOP - 3, TOP - 2, B, 0, 0),
	  .steps = { REMAP(M(TOP - 5, TOP, A, 0, 0), M(TOP - 5, TOP - 4, A, 0, 0),
			   M(TOP - 1, TOP, A, 4, 0)),
		     MAP(M(TOP - 3, TOP - 2, B, 0, 0)) },
	  .final = { M(TOP - 5, TOP - 4, A, 0, 0), M(TOP - 3, TOP - 2, B, 0, 0),
		     M(TOP - 1, TOP, A, 4, 0) } },
	{ "map: the whole 64-bit space",
	  .init = { M(0, 1, A, 0, 0), M(T48, T48, C, 0, 0), M(TOP, TOP, D, 0, 0) },
	  .req = M(0, TOP, NOBO, 0, NUL),
	  .steps = { UNMAP(M(0, 1, A, 0, 0)), UNMAP(M(T48, T48, C, 0, 0)),
		     UNMAP(M(TOP, TOP, D, 0, 0)), MAP(M(0, TOP, NOBO, 0, NUL)) },
	  .final = { M(0, TOP, NOBO, 0, NUL) } },
	{ "map: inside a mapping of the whole 64-bit space",
	  .init = { M(0, TOP, A, 0, 0) },
	  .req = M(T48, T48, B, 0, 0),
	  .steps = { REMAP(M(0, TOP, A, 0, 0), M(0, T48 - 1, A, 0, 0), M(T48 + 1, TOP, A, T48 + 1, 0)),
		     MAP(M(T48, T48, B, 0, 0)) },
	  .final = { M(0, T48 - 1, A, 0, 0), M(T48, T48, B, 0, 0), M(T48 + 1, TOP, A, T48 + 1, 0) } },

	/* ---- unmap ---- */
	{ "unmap: empty tree",
	  .init = { NO },
	  .unmap = true, .req = R(0, TOP),
	  .steps = { NO },
	  .final = { NO } },
	{ "unmap: a hole",
	  .init = { M(0, 1, A, 0, 0), M(6, 7, C, 0, 0) },
	  .unmap = true, .req = R(2, 5),
	  .steps = { NO },
	  .final = { M(0, 1, A, 0, 0), M(6, 7, C, 0, 0) } },
	{ "unmap: exact",
	  .init = { M(0, 1, A, 0, 0), M(2, 3, B, 0, 0), M(4, 5, C, 0, 0) },
	  .unmap = true, .req = R(2, 3),
	  .steps = { UNMAP(M(2, 3, B, 0, 0)) },
	  .final = { M(0, 1, A, 0, 0), M(4, 5, C, 0, 0) } },
	{ "unmap: covers old",
	  .init = { M(2, 3, A, 0, 0) },
	  .unmap = true, .req = R(0, 9),
	  .steps = { UNMAP(M(2, 3, A, 0, 0)) },
	  .final = { NO } },
	{ "unmap: splitting one mapping in the middle",
	  .init = { M(0, 5, A, 0, 0) },
	  .unmap = true, .req = R(2, 3),
	  .steps = { REMAP(M(0, 5, A, 0, 0), M(0, 1, A, 0, 0), M(4, 5, A, 4, 0)) },
	  .final = { M(0, 1, A, 0, 0), M(4, 5, A, 4, 0) } },
	{ "unmap: old's front (next kept)",
	  .init = { M(2, 5, A, 0, RO) },
	  .unmap = true, .req = R(0, 3),
	  .steps = { REMAP(M(2, 5, A, 0, RO), NO, M(4, 5, A, 2, RO)) },
	  .final = { M(4, 5, A, 2, RO) } },
	{ "unmap: old's back (prev kept)",
	  .init = { M(0, 3, A, 0, 0) },
	  .unmap = true, .req = R(2, 5),
	  .steps = { REMAP(M(0, 3, A, 0, 0), M(0, 1, A, 0, 0), NO) },
	  .final = { M(0, 1, A, 0, 0) } },
	{ "unmap: spans many",
	  .init = { M(0, 3, A, 0, 0), M(4, 4, NOBO, 0, NUL), M(6, 9, C, 8, 0) },
	  .unmap = true, .req = R(2, 7),
	  .steps = { REMAP(M(0, 3, A, 0, 0), M(0, 1, A, 0, 0), NO),
		     UNMAP(M(4, 4, NOBO, 0, NUL)),
		     REMAP(M(6, 9, C, 8, 0), NO, M(8, 9, C, 10, 0)) },
	  .final = { M(0, 1, A, 0, 0), M(8, 9, C, 10, 0) } },
	{ "unmap: spans many, steps spill out of the inline array",
	  .init = { M(0, 0, A, 0, 0), M(1, 1, A, 1, 0), M(2, 2, B, 0, 0), M(3, 3, C, 0, 0),
		    M(4, 4, D, 0, 0), M(5, 5, A, 5, 0), M(6, 6, NOBO, 0, NUL), M(7, 7, B, 7, 0),
		    M(8, 8, C, 8, 0), M(9, 9, D, 9, 0) },
	  .unmap = true, .req = R(0, 9),
	  .steps = { UNMAP(M(0, 0, A, 0, 0)), UNMAP(M(1, 1, A, 1, 0)), UNMAP(M(2, 2, B, 0, 0)),
		     UNMAP(M(3, 3, C, 0, 0)), UNMAP(M(4, 4, D, 0, 0)), UNMAP(M(5, 5, A, 5, 0)),
		     UNMAP(M(6, 6, NOBO, 0, NUL)), UNMAP(M(7, 7, B, 7, 0)),
		     UNMAP(M(8, 8, C, 8, 0)), UNMAP(M(9, 9, D, 9, 0)) },
	  .final = { NO } },
	{ "unmap: NULL mapping split keeps offset 0",
	  .init = { M(0, 5, NOBO, 0, NUL) },
	  .unmap = true, .req = R(1, 1),
	  .steps = { REMAP(M(0, 5, NOBO, 0, NUL), M(0, 0, NOBO, 0, NUL), M(2, 5, NOBO, 0, NUL)) },
	  .final = { M(0, 0, NOBO, 0, NUL), M(2, 5, NOBO, 0, NUL) } },
	{ "unmap: USERPTR front advances the host address",
	  .init = { M(4, 9, NOBO, HOST, UP | RO) },
	  .unmap = true, .req = R(0, 5),
	  .steps = { REMAP(M(4, 9, NOBO, HOST, UP | RO), NO, M(6, 9, NOBO, HOST + 2, UP | RO)) },
	  .final = { M(6, 9, NOBO, HOST + 2, UP | RO) } },
	{ "unmap: at address 0",
	  .init = { M(0, 3, A, 0, 0) },
	  .unmap = true, .req = R(0, 0),
	  .steps = { REMAP(M(0, 3, A, 0, 0), NO, M(1, 3, A, 1, 0)) },
	  .final = { M(1, 3, A, 1, 0) } },
	{ "unmap: top of a 48-bit space",
	  .init = { M(T48 - 7, T48, A, 0, 0) },
	  .unmap = true, .req = R(T48 - 3, T48),
	  .steps = { REMAP(M(T48 - 7, T48, A, 0, 0), M(T48 - 7, T48 - 4, A, 0, 0), NO) },
	  .final = { M(T48 - 7, T48 - 4, A, 0, 0) } },
	{ "unmap: top of the 64-bit space, middle",
	  .init = { M(TOP - 3, TOP, A, 0, 0) },
	  .unmap = true, .req = R(TOP - 2, TOP - 1),
	  .steps = { REMAP(M(TOP - 3, TOP, A, 0, 0), M(TOP - 3, TOP - 3, A, 0, 0),
			   M(TOP, TOP, A, 3, 0)) },
	  .final = { M(TOP - 3, TOP - 3, A, 0, 0), M(TOP, TOP, A, 3, 0) } },
	{ "unmap: the whole 64-bit space",
	  .init = { M(0, 0, A, 0, 0), M(T48, T48 + 1, B, 0, 0), M(TOP, TOP, NOBO, 0, NUL) },
	  .unmap = true, .req = R(0, TOP),
	  .steps = { UNMAP(M(0, 0, A, 0, 0)), UNMAP(M(T48, T48 + 1, B, 0, 0)),
		     UNMAP(M(TOP, TOP, NOBO, 0, NUL)) },
	  .final = { NO } },
};
/* clang-format on */

#define NROWS (sizeof(rows) / sizeof(rows[0]))

static uint64_t m_start(const struct m *m)
{
	return m->s * PG;
}

static uint64_t m_last(const struct m *m)
{
	return m->l * PG + (PG - 1); /* no overflow: l <= TOP */
}

static struct vmb_va_obj m_obj(const struct m *m)
{
	struct vmb_va_obj o = { m->bo ? &bos[m->bo] : NULL, m->off * PG, m->flags };

	return o;
}

static unsigned int count_m(const struct m *m)
{
	unsigned int n = 0;

	while (n < MAXM && m[n].set)
		n++;
	return n;
}

static unsigned int count_st(const struct st *s)
{
	unsigned int n = 0;

	while (n < MAXM && s[n].set)
		n++;
	return n;
}

static void check_va(const struct vmb_va *va, const struct m *m, const char *what, unsigned int i)
{
	struct vmb_va_obj o = m_obj(m);

	if (!va)
		fail_msg("%s %u: missing, expected [%#llx, %#llx]", what, i,
			 (unsigned long long)m_start(m), (unsigned long long)m_last(m));
	if (va->start != m_start(m) || va->last != m_last(m) || va->obj.bo != o.bo ||
	    va->obj.offset != o.offset || va->obj.flags != o.flags)
		fail_msg("%s %u: got [%#llx, %#llx] bo %p off %#llx fl %#x, expected [%#llx, %#llx] "
			 "bo %p off %#llx fl %#x",
			 what, i, (unsigned long long)va->start, (unsigned long long)va->last,
			 va->obj.bo, (unsigned long long)va->obj.offset, va->obj.flags,
			 (unsigned long long)m_start(m), (unsigned long long)m_last(m), o.bo,
			 (unsigned long long)o.offset, o.flags);
}

/* The tree holds exactly @m, in order, and lookups agree. */
static void check_tree(const struct vmb_va_tree *t, const struct m *m)
{
	unsigned int n = count_m(m), i;
	const struct vmb_va *va = vmb_va_first(t);

	assert_int_equal(vmb_va_tree_validate(t), 0);
	assert_int_equal(t->count, n);
	for (i = 0; i < n; i++, va = vmb_va_next(va)) {
		check_va(va, &m[i], "tree", i);
		assert_ptr_equal(vmb_va_lookup(t, va->start), va);
		assert_ptr_equal(vmb_va_lookup(t, va->last), va);
		assert_ptr_equal(vmb_va_find_first(t, va->start, va->last), va);
		if (va->start && (!i || m_last(&m[i - 1]) + 1 < va->start)) {
			assert_null(vmb_va_lookup(t, va->start - 1));
			assert_ptr_equal(vmb_va_find_first(t, va->start - 1, va->start), va);
		}
		if (i && m_last(&m[i - 1]) + 1 < va->start)
			assert_null(vmb_va_find_first(t, m_last(&m[i - 1]) + 1, va->start - 1));
		if (va->last != UINT64_MAX && (i + 1 == n || m_last(&m[i]) + 1 < m_start(&m[i + 1])))
			assert_null(vmb_va_lookup(t, va->last + 1));
	}
	assert_null(va);
}

struct snap {
	unsigned int n;
	const struct vmb_va *node[MAXM];
	struct vmb_va copy[MAXM];
};

static void take_snap(const struct vmb_va_tree *t, struct snap *s)
{
	const struct vmb_va *va;

	s->n = 0;
	for (va = vmb_va_first(t); va; va = vmb_va_next(va)) {
		assert_true(s->n < MAXM);
		s->node[s->n] = va;
		s->copy[s->n] = *va;
		s->n++;
	}
}

/* The tree holds the snapshot's very nodes with unchanged contents. */
static void check_snap(const struct vmb_va_tree *t, const struct snap *s)
{
	const struct vmb_va *va = vmb_va_first(t);
	unsigned int i;

	assert_int_equal(vmb_va_tree_validate(t), 0);
	assert_int_equal(t->count, s->n);
	for (i = 0; i < s->n; i++, va = vmb_va_next(va)) {
		assert_ptr_equal(va, s->node[i]);
		assert_true(va->start == s->copy[i].start && va->last == s->copy[i].last);
		assert_true(va->obj.bo == s->copy[i].obj.bo && va->obj.offset == s->copy[i].obj.offset &&
			    va->obj.flags == s->copy[i].obj.flags);
		assert_int_equal(va->priv, s->copy[i].priv);
	}
	assert_null(va);
}

static bool in_snap(const struct snap *s, const struct vmb_va *va)
{
	unsigned int i;

	for (i = 0; i < s->n; i++)
		if (s->node[i] == va)
			return true;
	return false;
}

static void check_new_node(const struct vmb_va *va, const struct snap *s)
{
	assert_false(in_snap(s, va));
	assert_int_equal(va->priv, 0);
	assert_true(vmb_list_empty(&va->bo_link));
}

struct walk {
	unsigned int n, maps, remaps, unmaps;
	const struct vmb_va_step *seen[MAXM];
};

static void walk_map(void *priv, const struct vmb_va_step *s)
{
	struct walk *w = priv;

	assert_int_equal(s->kind, VMB_VA_STEP_MAP);
	w->maps++;
	if (w->n < MAXM)
		w->seen[w->n] = s;
	w->n++;
}

static void walk_remap(void *priv, const struct vmb_va_step *s)
{
	struct walk *w = priv;

	assert_int_equal(s->kind, VMB_VA_STEP_REMAP);
	w->remaps++;
	if (w->n < MAXM)
		w->seen[w->n] = s;
	w->n++;
}

static void walk_unmap(void *priv, const struct vmb_va_step *s)
{
	struct walk *w = priv;

	assert_int_equal(s->kind, VMB_VA_STEP_UNMAP);
	w->unmaps++;
	if (w->n < MAXM)
		w->seen[w->n] = s;
	w->n++;
}

static int plan_row(struct vmb_va_tree *t, struct vmb_va_plan *p, const struct row *r)
{
	struct vmb_va_obj o = m_obj(&r->req);

	if (r->unmap)
		return vmb_va_plan_unmap(t, p, m_start(&r->req), m_last(&r->req));
	return vmb_va_plan_map(t, p, m_start(&r->req), m_last(&r->req), &o);
}

static void test_row(void **state)
{
	const struct row *r = *state;
	const struct vmb_va_ops ops = { walk_map, walk_remap, walk_unmap };
	unsigned int n_init = count_m(r->init), n_steps = count_st(r->steps), i;
	unsigned int want[3] = { 0, 0, 0 };
	struct vmb_va_tree t;
	struct vmb_va_plan p;
	struct walk w;
	struct snap s;
	size_t bytes, nodes;

	vmb_va_tree_init(&t);
	vmb_va_plan_init(&p);
	assert_int_equal(vmb_va_tree_validate(&t), 0);

	/* Build the initial tree, each mapping planned into a hole. */
	for (i = 0; i < n_init; i++) {
		struct vmb_va_obj o = m_obj(&r->init[i]);

		assert_int_equal(vmb_va_plan_map(&t, &p, m_start(&r->init[i]), m_last(&r->init[i]), &o), 0);
		assert_int_equal(p.n, 1);
		assert_int_equal(p.steps[0].kind, VMB_VA_STEP_MAP);
		vmb_va_apply(&t, &p);
		vmb_va_plan_fini(&t, &p);
		assert_int_equal(vmb_va_tree_validate(&t), 0);
	}
	check_tree(&t, r->init);
	take_snap(&t, &s);
	bytes = t.node_bytes;
	nodes = t.count + t.free_count;

	/* A plan that is abandoned leaves everything as it was. */
	assert_int_equal(plan_row(&t, &p, r), 0);
	vmb_va_plan_fini(&t, &p);
	check_snap(&t, &s);
	if (t.node_bytes == bytes)
		assert_int_equal(t.count + t.free_count, nodes);

	/* Plan and check each step. */
	assert_int_equal(plan_row(&t, &p, r), 0);
	check_snap(&t, &s); /* planning does not touch the tree */
	assert_false(p.applied);
	if (p.n != n_steps)
		fail_msg("%u steps, expected %u", p.n, n_steps);
	if (n_steps > VMB_VA_PLAN_INLINE)
		assert_ptr_not_equal(p.steps, p.inline_steps);
	else
		assert_ptr_equal(p.steps, p.inline_steps);
	for (i = 0; i < n_steps; i++) {
		const struct vmb_va_step *st = &p.steps[i];
		const struct st *e = &r->steps[i];

		if (st->kind != e->kind)
			fail_msg("step %u: kind %d, expected %d", i, st->kind, e->kind);
		want[st->kind]++;
		check_va(st->va, &e->va, "step va", i);
		if (st->kind == VMB_VA_STEP_MAP) {
			assert_int_equal(i, n_steps - 1);
			check_new_node(st->va, &s);
			assert_null(st->prev);
			assert_null(st->next);
			continue;
		}
		assert_true(in_snap(&s, st->va));
		if (st->kind == VMB_VA_STEP_UNMAP) {
			assert_null(st->prev);
			assert_null(st->next);
			continue;
		}
		assert_true(st->prev || st->next);
		if (e->prev.set) {
			check_va(st->prev, &e->prev, "step prev", i);
			check_new_node(st->prev, &s);
		} else {
			assert_null(st->prev);
		}
		if (e->next.set) {
			check_va(st->next, &e->next, "step next", i);
			check_new_node(st->next, &s);
		} else {
			assert_null(st->next);
		}
	}

	/* Walk: one callback per step, in order. */
	memset(&w, 0, sizeof(w));
	vmb_va_plan_walk(&p, &ops, &w);
	assert_int_equal(w.n, n_steps);
	assert_int_equal(w.maps, want[VMB_VA_STEP_MAP]);
	assert_int_equal(w.remaps, want[VMB_VA_STEP_REMAP]);
	assert_int_equal(w.unmaps, want[VMB_VA_STEP_UNMAP]);
	for (i = 0; i < n_steps && i < MAXM; i++)
		assert_ptr_equal(w.seen[i], &p.steps[i]);

	/* Apply, revert, apply again. */
	vmb_va_apply(&t, &p);
	assert_true(p.applied);
	check_tree(&t, r->final);
	vmb_va_revert(&t, &p);
	assert_false(p.applied);
	check_snap(&t, &s);
	vmb_va_apply(&t, &p);
	check_tree(&t, r->final);
	vmb_va_plan_fini(&t, &p);
	assert_int_equal(p.n, 0);
	assert_false(p.applied);
	assert_ptr_equal(p.steps, p.inline_steps);
	check_tree(&t, r->final);
	if (t.node_bytes == bytes)
		assert_int_equal(t.count + t.free_count, nodes);
	assert_true((t.count + t.free_count) * vmb_va_node_size() <= t.node_bytes);

	/* The same request again is a no-op (a hole to unmap, or the exact mapping). */
	assert_int_equal(plan_row(&t, &p, r), 0);
	assert_int_equal(p.n, 0);
	vmb_va_plan_fini(&t, &p);

	vmb_va_tree_fini(&t);
	assert_int_equal(t.node_bytes, 0);
	assert_int_equal(t.count, 0);
}

/* An empty plan applies, reverts and walks as nothing. */
static void test_empty_plan(void **state)
{
	const struct vmb_va_ops none = { NULL, NULL, NULL };
	struct vmb_va_tree t;
	struct vmb_va_plan p;

	(void)state;
	vmb_va_tree_init(&t);
	vmb_va_plan_init(&p);
	assert_int_equal(vmb_va_plan_unmap(&t, &p, 0, UINT64_MAX), 0);
	assert_int_equal(p.n, 0);
	vmb_va_plan_walk(&p, &none, NULL);
	vmb_va_apply(&t, &p);
	vmb_va_revert(&t, &p);
	vmb_va_apply(&t, &p);
	vmb_va_plan_fini(&t, &p);
	assert_int_equal(vmb_va_tree_validate(&t), 0);
	assert_int_equal(t.node_bytes, 0);
	vmb_va_tree_fini(&t);
}

/* A plan whose steps are walked with NULL callbacks, and validate() catching a bad tree. */
static void test_validate_detects(void **state)
{
	const struct vmb_va_ops none = { NULL, NULL, NULL };
	struct vmb_va_obj o = { &bos[A], 0, 0 };
	struct vmb_va_tree t;
	struct vmb_va_plan p;
	struct vmb_va *va;

	(void)state;
	vmb_va_tree_init(&t);
	vmb_va_plan_init(&p);
	assert_int_equal(vmb_va_plan_map(&t, &p, 0, 2 * PG - 1, &o), 0);
	vmb_va_plan_walk(&p, &none, NULL);
	vmb_va_apply(&t, &p);
	vmb_va_plan_fini(&t, &p);
	assert_int_equal(vmb_va_plan_map(&t, &p, 4 * PG, 6 * PG - 1, &o), 0);
	vmb_va_apply(&t, &p);
	vmb_va_plan_fini(&t, &p);
	assert_int_equal(vmb_va_tree_validate(&t), 0);

	va = vmb_va_first(&t);
	fprintf(stderr, "(four validation errors expected below)\n");
	va->last += 1; /* misaligned */
	assert_int_equal(vmb_va_tree_validate(&t), -EUCLEAN);
	va->last -= 1;
	va->last += 4 * PG; /* overlaps the next one */
	assert_int_equal(vmb_va_tree_validate(&t), -EUCLEAN);
	va->last -= 4 * PG;
	va->obj.flags = VMB_VA_NULL; /* NULL with a bo */
	assert_int_equal(vmb_va_tree_validate(&t), -EUCLEAN);
	va->obj.flags = 0;
	t.count++;
	assert_int_equal(vmb_va_tree_validate(&t), -EUCLEAN);
	t.count--;
	assert_int_equal(vmb_va_tree_validate(&t), 0);
	vmb_va_tree_fini(&t);
}

int main(void)
{
	struct CMUnitTest tests[NROWS + 2];
	unsigned int i;

	for (i = 0; i < NROWS; i++) {
		tests[i] = (struct CMUnitTest){ .name = rows[i].name,
						.test_func = test_row,
						.initial_state = &rows[i] };
	}
	tests[NROWS] = (struct CMUnitTest){ .name = "empty plan", .test_func = test_empty_plan };
	tests[NROWS + 1] =
		(struct CMUnitTest){ .name = "validate detects", .test_func = test_validate_detects };
	return cmocka_run_group_tests(tests, NULL, NULL);
}
