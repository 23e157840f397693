/* SPDX-License-Identifier: MIT */
/* The vmbind CLI's subcommands. */
#ifndef VMB_TOOLS_CLI_H
#define VMB_TOOLS_CLI_H

#include <stdbool.h>
#include <vmbind.h>

int cmd_demo(int argc, char **argv);        /* demo-kv.c: the main demo */
int cmd_demo_layout(int argc, char **argv); /* demo.c: VA layout, page sizes, the GPU view */
int cmd_bench_pipeline(bool json, bool quick);
int cmd_bench(int argc, char **argv);
/* `vmbind bench bind [--json] [--quick]` (bench-bind.c). */
int cmd_bench_bind(bool json, bool quick);
/* Prints the vm's mappings as a table and its page-table statistics. */
void print_layout(struct vmb_client *c, uint32_t vm);
const char *fmt_size(uint64_t bytes, char *buf, size_t n);

#endif
