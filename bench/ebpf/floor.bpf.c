// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Empty programs for the ebpf bench's floors: what the kernel charges for running any program on a hook,
 * before our programs do any work. floor.c attaches the set a mode names. */
#include <bpf/bpf_helpers.h>
#include <linux/bpf.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Our hooks (bc_events.bpf.c), as raw tracepoints. */
SEC("raw_tp/sys_exit") int raw_sys_exit(void* ctx) { return 0; }
SEC("raw_tp/sched_process_fork") int raw_fork(void* ctx) { return 0; }
SEC("raw_tp/sched_process_exec") int raw_exec(void* ctx) { return 0; }
SEC("raw_tp/sched_process_exit") int raw_exit(void* ctx) { return 0; }
SEC("raw_tp/sched_switch") int raw_switch(void* ctx) { return 0; }

/* Per-syscall tracepoints of the calls we look at. */
SEC("tp/syscalls/sys_enter_openat") int tp_enter_openat(void* ctx) { return 0; }
SEC("tp/syscalls/sys_exit_openat") int tp_exit_openat(void* ctx) { return 0; }
SEC("tp/syscalls/sys_exit_connect") int tp_exit_connect(void* ctx) { return 0; }

/* A syscall no workload makes: its tracepoint only turns on the syscall tracing slow path
 * (SYSCALL_WORK_SYSCALL_TRACEPOINT) for every task. */
SEC("tp/syscalls/sys_exit_acct") int tp_exit_acct(void* ctx) { return 0; }
