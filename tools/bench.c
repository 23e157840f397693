/* SPDX-License-Identifier: MIT */
/* Benchmarks: vmbind bench va|pt. (being written) */
#include <stdio.h>

#include "cli.h"

int cmd_bench(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "vmbind bench: not built yet\n");
	return 2;
}
