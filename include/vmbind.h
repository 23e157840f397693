/* SPDX-License-Identifier: MIT */
/* vmbind: asynchronous GPU VM_BIND in user space. The one header applications include. */
#ifndef VMBIND_H
#define VMBIND_H

#include <vmbind/types.h>
#include <vmbind/client.h>
#include <vmbind/bo.h>
#include <vmbind/vm.h>
#include <vmbind/bind.h>
#include <vmbind/sync.h>
#include <vmbind/queue.h>
#include <vmbind/cmd.h>
#include <vmbind/debug.h>
#include <vmbind/cuda.h>

#endif
