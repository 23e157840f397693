/* SPDX-License-Identifier: MIT */
/* Description: the public header compiles alone, pedantic C11, and links against libvmbind.so. */
#include <vmbind.h>
#include <errno.h>

int main(void)
{
	struct vmb_client *c = 0;
	/* the shapes a daemon will carry over a socket have fixed sizes */
	_Static_assert(sizeof(struct vmb_bind_op) == 64, "bind op is 64 bytes");
	_Static_assert(sizeof(struct vmb_sync) == 48, "sync is 48 bytes");
	_Static_assert(sizeof(struct vmb_vm_bind) == 64, "vm_bind is 64 bytes");
	_Static_assert(sizeof(struct vmb_syncobj_wait) == 48, "syncobj_wait is 48 bytes");
	_Static_assert(sizeof(struct vmb_user_fence_wait) == 56, "user_fence_wait is 56 bytes");
	_Static_assert(sizeof(struct vmb_exec) == 48, "exec is 48 bytes");
	_Static_assert(sizeof(struct vmb_exec_queue_create) == 40, "exec_queue_create is 40 bytes");
	_Static_assert(sizeof(struct vmb_device_query) == 64, "device_query is 64 bytes");
	_Static_assert(sizeof(struct vmb_client_opts) == 64, "client_opts is 64 bytes");
	if (vmb_client_open("nope", 0, &c) != -ENODEV)
		return 1;
	if (vmb_client_open(0, 0, &c) != 0)
		return 1;
	return vmb_client_close(c) == 0 ? 0 : 1;
}
