/* SPDX-License-Identifier: MIT */
/*
 * vmbind: the command-line tool. `vmbind COMMAND [OPTIONS]`: info, demo, demo layout, bench
 * va|pt|bind|pipeline; `vmbind --help` lists them, `vmbind COMMAND --help` (or `vmbind help
 * COMMAND`) describes one and its options. Every command parses its options with getopt_long
 * through cli_getopt() below. Exit status: 0 done (and --help, on stdout), 1 the run failed,
 * 2 a usage error (an unknown command or option, a missing or malformed value, an argument
 * left over: a message that names it, and the usage, on stderr).
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* vmb_device_query's capability bits, as `vmbind info` names them */
static const char *const cap_names[] = {
	"async-bind", "lr-mode", "scratch-page", "null-bind", "userptr", "prefetch",
	"user-fence", "user-fence-bo", "timeline", "syncobj-fd", "bo-export", "exec",
	"vram-cpu-map", "restart-mode", "bo-chunk", "bo-vm", "queue-serial",
};

static int cmd_info(void)
{
	struct vmb_client *c;
	struct vmb_device_query d = {0};
	int err = vmb_client_open(NULL, NULL, &c);
	if (err) {
		fprintf(stderr, "vmbind: cannot open the device: %s\n", strerror(-err));
		return 1;
	}
	vmb_device_query(c, &d);
	printf("device      %s\nva bits     %u\npage sizes ", d.name, d.va_bits);
	for (int s = 12; s < 64; s++)
		if (d.page_sizes & (1ull << s)) {
			char b[32];
			printf(" %s", fmt_size(1ull << s, b, sizeof(b)));
		}
	printf("\n");
	char g[32];
	printf("min page    %s\nabi         %u.%u\nengines     %u\ncapabilities", fmt_size(d.min_page_size, g, sizeof(g)),
	       d.abi_version >> 16, d.abi_version & 0xffff, d.num_engines);
	for (unsigned int b = 0; b < 64; b++)
		if (d.capabilities & (1ull << b)) {
			if (b < sizeof(cap_names) / sizeof(cap_names[0]))
				printf(" %s", cap_names[b]);
			else
				printf(" bit%u", b);
		}
	printf("\nshape       %s\n", d.capabilities & VMB_CAP_VRAM_CPU_MAP ? "integrated (VRAM CPU-mappable)" :
	       "discrete (VRAM not CPU-mappable)");
	for (uint32_t r = 0; r < d.num_regions; r++) {
		struct vmb_region_query q = {.region = r};
		char a[32], b[32];
		vmb_region_query(c, &q);
		printf("region %-6s capacity %s, free %s", r == VMB_REGION_VRAM ? "VRAM" : "SYSTEM",
		       fmt_size(q.capacity, a, sizeof(a)), fmt_size(q.free, b, sizeof(b)));
		if (r == VMB_REGION_VRAM) /* eviction: BOs moved to SYSTEM to make room (this process) */
			printf(", evicted %llu BOs, %s, restored %u", (unsigned long long)q.evictions,
			       fmt_size(q.evicted_bytes, a, sizeof(a)), q.restores);
		printf("\n");
	}
	vmb_client_close(c);
	struct vmb_backend_query b = {0};
	for (b.index = 0; vmb_backend_query(&b) == 0; b.index++)
		printf("backend     %s: %s%s%s\n", b.name, b.available ? "available" : "not available (",
		       b.reason, b.available ? "" : ")");
	return 0;
}

/* ---- option parsing, shared by every command ------------------------------------------- */

static void print_usage(FILE *f, const struct cli_help *h)
{
	const char *u = h->usage;
	for (int first = 1; *u; first = 0) {
		size_t n = strcspn(u, "\n");
		fprintf(f, "%s%.*s\n", first ? "usage: " : "       ", (int)n, u);
		u += n + (u[n] == '\n');
	}
}

int cli_help(const struct cli_help *h)
{
	print_usage(stdout, h);
	printf("\n%s", h->text);
	return 0;
}

int cli_usage_error(const struct cli_help *h, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "vmbind%s%s: ", h->name[0] ? " " : "", h->name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	print_usage(stderr, h);
	fprintf(stderr, "Run 'vmbind%s%s --help' for more.\n", h->name[0] ? " " : "", h->name);
	return 2;
}

int cli_getopt(int argc, char **argv, const struct cli_help *h, const char *shortopts,
	       const struct option *longopts)
{
	char opts[32];
	int at = optind ? optind : 1; /* the argument getopt looks at now */
	snprintf(opts, sizeof(opts), "+:%s", shortopts);
	opterr = 0;
	int c = getopt_long(argc, argv, opts, longopts, NULL);
	if (c != '?' && c != ':')
		return c;
	const char *arg = at < argc ? argv[at] : "";
	int n = (int)strcspn(arg, "=");
	if (strncmp(arg, "--", 2))
		/* a short option, maybe in a cluster: name the letter */
		return cli_usage_error(h, c == ':' ? "option '-%c' needs a value" : "unknown option '-%c'",
				       optopt), '?';
	if (c == ':')
		return cli_usage_error(h, "option '%s' needs a value", arg), '?';
	if (optopt && arg[n] == '=')
		return cli_usage_error(h, "option '%.*s' takes no value", n, arg), '?';
	return cli_usage_error(h, "unknown option '%s'", arg), '?';
}

int cli_no_args(int argc, char **argv, const struct cli_help *h)
{
	if (optind < argc)
		return cli_usage_error(h, "unexpected argument '%s'", argv[optind]);
	return 0;
}

int cli_number(const struct cli_help *h, const char *opt, const char *s, long long min, long long max,
	       long long *out)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (!*s || *end)
		return cli_usage_error(h, "%s: '%s' is not a number", opt, s);
	if (errno || v < min || v > max)
		return cli_usage_error(h, "%s: %s is out of range (%lld to %lld)", opt, s, min, max);
	*out = v;
	return 0;
}

/* ---- the commands ------------------------------------------------------------------------ */

static const struct option help_only[] = {{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};

static const struct cli_help help_info = {
	.name = "info",
	.usage = "vmbind info",
	.summary = "the device: its name, GPU VA bits, page sizes, memory regions",
	.text = "The device that a client opens by default (\"soft\"): its name, the bits of its GPU virtual\n"
		"addresses, the page sizes its page tables map, and each memory region's capacity and free bytes.\n"
		"\n"
		"options:\n"
		"  -h, --help    this text\n",
};

static int run_info(int argc, char **argv)
{
	int c;
	optind = 0;
	while ((c = cli_getopt(argc, argv, &help_info, "h", help_only)) != -1)
		if (c == 'h')
			return cli_help(&help_info);
		else
			return 2;
	if (cli_no_args(argc, argv, &help_info))
		return 2;
	return cmd_info();
}

static const struct cli_help help_main = {
	.name = "",
	.usage = "vmbind COMMAND [OPTIONS]\nvmbind COMMAND --help\nvmbind help [COMMAND]",
	.summary = "",
	.text = "",
};

static const struct cli_help help_help = {
	.name = "help",
	.usage = "vmbind help [COMMAND]",
	.summary = "the commands, or what COMMAND does and its options (as COMMAND --help)",
	.text = "Without COMMAND, the list of commands (as vmbind --help); with it, what the command does\n"
		"and every option it takes (as vmbind COMMAND --help). COMMAND may have two words\n"
		"(vmbind help bench va).\n"
		"\n"
		"options:\n"
		"  -h, --help    this text\n",
};

/* Every command's help, in the order of `vmbind --help`. */
static const struct cli_help *const all_help[] = {
	&help_info, &cli_help_demo, &cli_help_demo_layout, &cli_help_bench, &cli_help_bench_va, &cli_help_bench_pt,
	&cli_help_bench_bind, &cli_help_bench_pipeline, &cli_help_bench_handles, &cli_help_bench_evict, &cli_help_bench_cuda, &help_help, NULL};

static int main_help(void)
{
	print_usage(stdout, &help_main);
	printf("\nvmbind runs the library's demos and benchmarks on the soft GPU.\n\ncommands:\n");
	for (int i = 0; all_help[i]; i++) {
		const struct cli_help *h = all_help[i];
		/* the command with its options (its first form: the others have entries of their own),
		 * then what it does; `bench` is its four benchmarks */
		if (h != &cli_help_bench)
			printf("  %.*s\n      %s\n", (int)strcspn(h->usage, "\n"), h->usage, h->summary);
	}
	printf("\noptions (of vmbind, and of every command):\n"
	       "  -h, --help    the list of commands; after a command, what it does and its options\n"
	       "\n"
	       "vmbind COMMAND --help (or vmbind help COMMAND) says what each option does.\n"
	       "Exit status: 0 done, 1 the run failed (or a demo's check), 2 a usage error.\n");
	return 0;
}

static int run_help(int argc, char **argv)
{
	int c;
	char name[64];
	optind = 0;
	while ((c = cli_getopt(argc, argv, &help_help, "h", help_only)) != -1)
		if (c == 'h')
			return cli_help(&help_help);
		else
			return 2;
	if (optind >= argc)
		return main_help();
	snprintf(name, sizeof(name), "%s", argv[optind]);
	if (optind + 1 < argc)
		snprintf(name, sizeof(name), "%s %s", argv[optind], argv[optind + 1]);
	if (optind + 2 < argc)
		return cli_usage_error(&help_help, "unexpected argument '%s'", argv[optind + 2]);
	for (int i = 0; all_help[i]; i++)
		if (!strcmp(all_help[i]->name, name))
			return cli_help(all_help[i]);
	return cli_usage_error(&help_help, "no command '%s'", name);
}

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*run)(int argc, char **argv);
	} commands[] = {{"info", run_info}, {"demo", cmd_demo}, {"bench", cmd_bench}, {"help", run_help}};
	int c;

	optind = 0;
	while ((c = cli_getopt(argc, argv, &help_main, "h", help_only)) != -1)
		if (c == 'h')
			return main_help();
		else
			return 2;
	if (optind >= argc)
		return cli_usage_error(&help_main, "no command");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(argv[optind], commands[i].name))
			return commands[i].run(argc - optind, argv + optind);
	return cli_usage_error(&help_main, "no command '%s'", argv[optind]);
}
