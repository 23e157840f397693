/* SPDX-License-Identifier: MIT */
/* vmbind: the command-line tool. `vmbind info`, `vmbind demo`, `vmbind bench va|pt [--json]`. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

/* vmb_device_query's capability bits, as `vmbind info` names them */
static const char *const cap_names[] = {
	"async-bind", "lr-mode", "scratch-page", "null-bind", "userptr", "prefetch",
	"user-fence", "user-fence-bo", "timeline", "syncobj-fd", "bo-export", "exec",
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
	printf("\n");
	for (uint32_t r = 0; r < d.num_regions; r++) {
		struct vmb_region_query q = {.region = r};
		char a[32], b[32];
		vmb_region_query(c, &q);
		printf("region %-6s capacity %s, free %s\n", r == VMB_REGION_VRAM ? "VRAM" : "SYSTEM",
		       fmt_size(q.capacity, a, sizeof(a)), fmt_size(q.free, b, sizeof(b)));
	}
	vmb_client_close(c);
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: vmbind info\n"
		   "       vmbind demo [--trace FILE] [--quick]\n"
		   "       vmbind demo layout\n"
		   "       vmbind bench va [--json] [--quick]\n"
		   "       vmbind bench pt [--json] [--quick]\n"
		   "       vmbind bench bind [--json] [--quick]\n"
		   "       vmbind bench pipeline [--json] [--quick]\n");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "info"))
		return cmd_info();
	if (!strcmp(argv[1], "demo"))
		return cmd_demo(argc - 1, argv + 1);
	if (!strcmp(argv[1], "bench"))
		return cmd_bench(argc - 1, argv + 1);
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		usage(stdout);
		return 0;
	}
	usage(stderr);
	return 2;
}
