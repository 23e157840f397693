/* SPDX-License-Identifier: MIT */
/* The vmbind CLI's subcommands, and the option parsing they share (vmbind.c). */
#ifndef VMB_TOOLS_CLI_H
#define VMB_TOOLS_CLI_H

#include <getopt.h>
#include <stdbool.h>
#include <vmbind.h>

int cmd_demo(int argc, char **argv);        /* demo-kv.c: the main demo */
int cmd_demo_layout(int argc, char **argv); /* demo.c: VA layout, page sizes, the GPU view */
int cmd_bench_pipeline(bool json, bool quick, int lookahead);
int cmd_bench(int argc, char **argv);
/* `vmbind bench bind [--json] [--quick]` (bench-bind.c). */
int cmd_bench_bind(bool json, bool quick);
/* Its throughput part's submitters: @threads threads over @queues queues (0: the default, 4 and
 * 8); 0 or -EINVAL (more than 64 threads or 32 queues). */
int bench_bind_layout(unsigned int threads, unsigned int queues);
/* `vmbind bench handles [--json] [--quick]` (bench-handles.c). */
int cmd_bench_handles(bool json, bool quick);
int cmd_bench_evict(bool json, bool quick); /* bench-evict.c */
/* `vmbind bench cuda [--json] [--quick]` (bench-cuda.c; without cuda.h a stub: 77). */
int cmd_bench_cuda(bool json, bool quick);
/* Prints the vm's mappings as a table and its page-table statistics. */
void print_layout(struct vmb_client *c, uint32_t vm);
const char *fmt_size(uint64_t bytes, char *buf, size_t n);

/*
 * A command's help. @name: the words after "vmbind" ("demo layout"); @usage: its synopsis, one
 * "vmbind ..." line per form, '\n' between; @summary: one line for `vmbind --help`; @text: what
 * it does and every option, for `vmbind NAME --help`.
 */
struct cli_help {
	const char *name, *usage, *summary, *text;
};
extern const struct cli_help cli_help_demo, cli_help_demo_layout;                   /* demo*.c */
extern const struct cli_help cli_help_bench, cli_help_bench_va, cli_help_bench_pt, cli_help_bench_bind,
	cli_help_bench_pipeline, cli_help_bench_handles, cli_help_bench_evict,
	cli_help_bench_cuda;                              /* bench.c */

/* The usage and the text of @h on stdout (for --help); returns 0, the exit status. */
int cli_help(const struct cli_help *h);
/* "vmbind NAME: MESSAGE", the usage and where the help is, on stderr; returns 2, the exit status. */
int cli_usage_error(const struct cli_help *h, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/*
 * getopt_long over a command's arguments, argv[0] being the command's last word: set optind to 0
 * before the first call. Options end at the first argument that is not one. Returns the option
 * (a long option's val), -1 past the options (argv[optind] is the first argument left), or '?'
 * once it has printed the usage error of @h (an unknown option, a missing or unwanted value).
 * @shortopts: getopt's, without a leading '+' or ':'.
 */
int cli_getopt(int argc, char **argv, const struct cli_help *h, const char *shortopts,
	       const struct option *longopts);
/* No argument left after the options: 0; else the usage error naming the first (2). */
int cli_no_args(int argc, char **argv, const struct cli_help *h);
/* The value of option @opt as a decimal integer in [min, max] into *out: 0, or a usage error (2). */
int cli_number(const struct cli_help *h, const char *opt, const char *s, long long min, long long max,
	       long long *out);

#endif
