// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* bubble-chamber: per-process events of monitored jobs (kernel side).
 *
 * One copy of these programs serves every monitored job on the node (see events.hpp for the sharing
 * design). Only raw tracepoints are used: kprobes, fentry and LSM programs are not available on our
 * kernels, and raw tracepoints need neither tracefs nor a perf event per CPU.
 *
 *   sched_process_fork  a tracked parent's new process is tracked in the parent's job slot
 *   sched_process_exec  argv, filename, exe and parent of a tracked process
 *   sched_process_exit  exit status, CPU and max RSS of a tracked process, read when its last thread exits
 *   sys_exit            open/openat/openat2/creat and connect (and, when a job asks, read/write bytes):
 *                       the arguments come from the task's saved user registers, so one program at syscall
 *                       exit sees both the arguments and the result (bc_events_syscalls.bpf.h)
 *
 * Filtering: the tracked map (tgid -> job slot) is looked up once per event, whatever the number of jobs,
 * behind a bitmap of tracked tgids that turns every other process away without a hash lookup.
 * Repeated opens and connects are counted in per-slot hash maps; only the first one of a path in a drain
 * interval sends its name through the slot's ring buffer. Every event that cannot be delivered is counted
 * in the slot's stats.
 *
 * Verifier cost: each program must load on kernels we have not seen, whose verifier may explore more
 * states than today's. Every program's figure (bpf_prog_info.verified_insns) is kept under a tenth of the
 * kernel's 1,000,000-instruction limit, and a test checks it (EventsVerifier in tests/unit/test_events.cpp).
 * What keeps it low: loops run under bpf_loop with their state in map values, not on the stack, and values a
 * loop branched on are read back from a map before the code after it (see struct walk_state).
 */
#include "vmlinux.h"

#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "cgroup_monitor/bpf/bc_events.h"

#ifndef __TARGET_ARCH_x86
#error "bc_events.bpf.c reads x86_64 syscall registers and numbers; port the NR_* and argument registers first"
#endif

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* x86_64 syscall numbers. */
#define NR_read 0
#define NR_write 1
#define NR_open 2
#define NR_pread64 17
#define NR_pwrite64 18
#define NR_readv 19
#define NR_writev 20
#define NR_connect 42
#define NR_creat 85
#define NR_openat 257
#define NR_preadv 295
#define NR_pwritev 296
#define NR_preadv2 327
#define NR_pwritev2 328
#define NR_openat2 437

#define AT_FDCWD -100
#define O_ACCMODE 00000003
#define O_WRONLY 00000001
#define O_RDWR 00000002
#define O_CREAT 00000100
#define O_TRUNC 00001000
#define O_APPEND 00002000
#define O_DIRECTORY 00200000
#define AF_UNIX 1
#define AF_INET 2
#define AF_INET6 10
#define EBADF 9
#define EEXIST 17
#define ENOTSOCK 88
#define EINPROGRESS 115
#define TS_COMPAT 0x0002

/* Set by the loader before load. */
const volatile __u32 page_size = 4096;

/* ---------------------------------------------------------------------------------------------------- */
/* Maps. All of them are pinned by the first monitor and shared by every monitor on the node.            */

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, BC_TRACKED_MAX);
  __type(key, __u32); /* tgid */
  __type(value, struct bc_tracked);
} tracked SEC(".maps");

/* One bit per tgid, set for every tgid in tracked (and perhaps a few that left it): the way out for the
 * node's other processes is an inlined array load, not a hash lookup. Set before an entry is added (by
 * user space through the mmapped array too, with atomic ors); cleared only when the process exits, since a
 * pid is not reused before that. A stale bit only sends a process to the hash lookup. */
struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(map_flags, BPF_F_MMAPABLE);
  __uint(max_entries, BC_TGID_LIMIT / 64);
  __type(key, __u32);
  __type(value, __u64);
} tracked_bits SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, BC_MAX_SLOTS);
  __type(key, __u32);
  __type(value, struct bc_slot_cfg);
} slot_cfg SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, BC_MAX_SLOTS);
  __type(key, __u32);
  __type(value, struct bc_slot_stats);
} slot_stats SEC(".maps");

/* User space only: who holds each slot. */
struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, BC_MAX_SLOTS);
  __type(key, __u32);
  __type(value, struct bc_slot_owner);
} slot_owner SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct bc_node_cfg);
} node_cfg SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, __u64);
} gen_counter SEC(".maps");

/* Exits waiting for their task's last context switch, where the scheduler has added the final slice of
 * CPU time: at sched_process_exit the running slice is not in sum_exec_runtime yet, which for a process
 * living a millisecond can be all of its CPU. exiting_count lets sched_switch return at once when none wait. */
struct exit_pending {
  struct bc_ev_exit ev;
  __u64 runtime_at_exit; /* this thread's sum_exec_runtime when ev was filled */
  __u32 slot;
  __u32 epoch; /* the slot's epoch then: a slot handed to another job meanwhile gets nothing */
};

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 4096);
  __type(key, __u32); /* pid of the exiting thread */
  __type(value, struct exit_pending);
} exiting SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, __u64);
} exiting_count SEC(".maps");

/* User space only: identifies the object the pins came from. */
struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct bc_meta);
} meta SEC(".maps");

/* struct file * -> path hash, for read/write byte counting. LRU: closes are not traced. */
struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, BC_FILE_IDS_MAX);
  __type(key, __u64);
  __type(value, struct bc_file_id);
} file_ids SEC(".maps");

/* Per-slot inner maps, created by each monitor with its own sizes and put in these arrays. */
struct ring_inner {
  __uint(type, BPF_MAP_TYPE_RINGBUF);
  __uint(max_entries, BC_RING_TEMPLATE_BYTES);
};

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
  __uint(max_entries, BC_MAX_SLOTS);
  __type(key, __u32);
  __array(values, struct ring_inner);
} rings SEC(".maps");

struct files_inner {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, BC_FILE_AGG_MAX);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __uint(key_size, sizeof(struct bc_file_key)); /* sizes, not types: clang emits only a forward here */
  __uint(value_size, sizeof(struct bc_file_val));
};

/* Index slot * 2 + half: the kernel writes half cfg->active, user space drains the other one. */
struct {
  __uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
  __uint(max_entries, 2 * BC_MAX_SLOTS);
  __type(key, __u32);
  __array(values, struct files_inner);
} files SEC(".maps");

struct conns_inner {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, BC_CONN_AGG_MAX);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __uint(key_size, sizeof(struct bc_conn_key));
  __uint(value_size, sizeof(struct bc_conn_val));
};

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
  __uint(max_entries, 2 * BC_MAX_SLOTS);
  __type(key, __u32);
  __array(values, struct conns_inner);
} conns SEC(".maps");

/* The path walk's state. It lives in the per-CPU scratch map, not on the stack: the verifier knows nothing
 * of a map value's fields, so every iteration of a bpf_loop body looks alike to it and it checks the body
 * about once. Counters on the stack, which it tracks exactly, made it check every iteration as a new state,
 * and every state after the loop again (newer verifiers check callbacks until their states converge):
 * bc_exec cost 396,000 verified instructions that way, and bc_sys_exit over the 1,000,000 limit. */
struct walk_state {
  struct dentry* comp[BC_WALK_DEPTH];
  __u64 mnt;    /* struct mount * */
  __u64 dentry; /* struct dentry * */
  __u32 n;
  __u32 pos;
  __u32 truncated;
  __u32 finished;
};

/* Per-CPU scratch space: events too large for the 512-byte BPF stack are built here and copied into the
 * ring with bpf_ringbuf_output (bpf_ringbuf_reserve needs a constant size). */
struct path_scratch {
  char buf[BC_PATH_MAX + 64]; /* user path or sockaddr; slack for the hash's word reads */
  __u32 len;
  __u32 pad;
  struct walk_state walk;
  struct bc_ev_name name;
};

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct path_scratch);
} path_scratch SEC(".maps");

struct exec_scratch {
  struct walk_state walk;
  struct bc_ev_exec ev;
};

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct exec_scratch);
} exec_scratch SEC(".maps");

/* ---------------------------------------------------------------------------------------------------- */
/* Helpers.                                                                                             */

enum loss_kind { LOST_RING, LOST_FILES, LOST_CONNS, LOST_TRACKED, LOST_READ };

static __always_inline void count_loss(__u32 slot, enum loss_kind kind) {
  struct bc_slot_stats* s = bpf_map_lookup_elem(&slot_stats, &slot);
  if (!s) return;
  switch (kind) {
    case LOST_RING: __sync_fetch_and_add(&s->ring_lost, 1); break;
    case LOST_FILES: __sync_fetch_and_add(&s->files_lost, 1); break;
    case LOST_CONNS: __sync_fetch_and_add(&s->conns_lost, 1); break;
    case LOST_TRACKED: __sync_fetch_and_add(&s->tracked_lost, 1); break;
    case LOST_READ: __sync_fetch_and_add(&s->read_failed, 1); break;
  }
}

static __always_inline void count_key_added(__u32 slot) {
  struct bc_slot_stats* s = bpf_map_lookup_elem(&slot_stats, &slot);
  if (s) __sync_fetch_and_add(&s->keys_added, 1);
}

static __always_inline int maybe_tracked(__u32 tgid) {
  __u32 word = tgid / 64;
  __u64* w = bpf_map_lookup_elem(&tracked_bits, &word);
  return w && (*w & (1ULL << (tgid % 64)));
}

static __always_inline void mark_tracked(__u32 tgid) {
  __u32 word = tgid / 64;
  __u64* w = bpf_map_lookup_elem(&tracked_bits, &word);
  if (w) __sync_fetch_and_or(w, 1ULL << (tgid % 64));
}

static __always_inline void unmark_tracked(__u32 tgid) {
  __u32 word = tgid / 64;
  __u64* w = bpf_map_lookup_elem(&tracked_bits, &word);
  if (w) __sync_fetch_and_and(w, ~(1ULL << (tgid % 64)));
}

/* The slot of a tracked tgid, or NULL. Entries whose epoch is not the slot's current one were left by a
 * monitor that is gone: they are removed on sight. */
static __always_inline struct bc_slot_cfg* slot_of(__u32 tgid, struct bc_tracked** tp) {
  if (!maybe_tracked(tgid)) return NULL;
  struct bc_tracked* t = bpf_map_lookup_elem(&tracked, &tgid);
  if (!t) return NULL;
  __u32 slot = t->slot;
  struct bc_slot_cfg* cfg = bpf_map_lookup_elem(&slot_cfg, &slot);
  if (!cfg || cfg->epoch == 0 || cfg->epoch != t->epoch) {
    bpf_map_delete_elem(&tracked, &tgid);
    return NULL;
  }
  *tp = t;
  return cfg;
}

/* Sends to the slot's ring. Wakes the reader only when the ring is a quarter full: the monitor drains on
 * its tick anyway, and a wakeup per event would cost more than the event. */
static __always_inline int emit(__u32 slot, void* data, __u64 size) {
  void* ring = bpf_map_lookup_elem(&rings, &slot);
  if (!ring) return -1; /* slot being released: nobody reads it */
  __u64 flags = BPF_RB_NO_WAKEUP;
  if (bpf_ringbuf_query(ring, BPF_RB_AVAIL_DATA) > bpf_ringbuf_query(ring, BPF_RB_RING_SIZE) / 4)
    flags = BPF_RB_FORCE_WAKEUP;
  if (bpf_ringbuf_output(ring, data, size, flags)) {
    count_loss(slot, LOST_RING);
    return -1;
  }
  return 0;
}

#include "cgroup_monitor/bpf/bc_events_syscalls.bpf.h"

/* A no-op for the verifier's types (inlined): lets a raw tracepoint argument be read as the struct it is. */
extern void* bpf_rdonly_cast(const void* obj, __u32 btf_id) __ksym;

SEC("raw_tp/sys_exit")
int bc_sys_exit(struct bpf_raw_tracepoint_args* ctx) {
  /* This runs at every syscall exit of every process on the node, so the common way out costs no helper
   * call: the tracepoint's first argument is the task's saved user registers, read through a typed cast. */
  struct pt_regs* regs = bpf_rdonly_cast((void*)ctx->args[0], bpf_core_type_id_kernel(struct pt_regs));
  long nr = regs->orig_ax;
  int io = 0;
  switch (nr) {
    case NR_open:
    case NR_openat:
    case NR_openat2:
    case NR_creat:
    case NR_connect: break;
    case NR_read:
    case NR_write:
    case NR_pread64:
    case NR_pwrite64:
    case NR_readv:
    case NR_writev:
    case NR_preadv:
    case NR_pwritev:
    case NR_preadv2:
    case NR_pwritev2: {
      __u32 zero = 0;
      struct bc_node_cfg* ncfg = bpf_map_lookup_elem(&node_cfg, &zero);
      if (!ncfg || ncfg->io_slots == 0) return 0;
      io = 1;
      break;
    }
    default: return 0;
  }
  __u32 tgid = bpf_get_current_pid_tgid() >> 32;
  struct bc_tracked* t = NULL;
  struct bc_slot_cfg* cfg = slot_of(tgid, &t);
  if (!cfg || !t) return 0;
  struct task_struct* task = bpf_get_current_task_btf();
  /* 32-bit tasks use other syscall numbers. */
  if (task->thread_info.status & TS_COMPAT) return 0; /* a direct load: task is a BTF pointer */
  long ret = (long)ctx->args[1];
  if (io) on_io(task, regs, nr, ret, tgid, t, cfg);
  else if (nr == NR_connect) on_connect(task, regs, ret, tgid, t, cfg);
  else on_open(task, regs, nr, ret, tgid, t, cfg);
  return 0;
}

/* ---------------------------------------------------------------------------------------------------- */
/* Process lifecycle.                                                                                   */

SEC("raw_tp/sched_process_fork")
int bc_fork(struct bpf_raw_tracepoint_args* ctx) {
  /* Runs in the parent. A new thread has the parent's tgid and is not a new process. */
  __u32 tgid = bpf_get_current_pid_tgid() >> 32;
  struct bc_tracked* t = NULL;
  struct bc_slot_cfg* cfg = slot_of(tgid, &t);
  if (!cfg || !t) return 0;
  struct task_struct* child = (struct task_struct*)ctx->args[1];
  __u32 child_tgid = BPF_CORE_READ(child, tgid);
  if (child_tgid == tgid) return 0;

  __u32 zero = 0;
  __u64 gen = 1;
  __u64* counter = bpf_map_lookup_elem(&gen_counter, &zero);
  if (counter) gen = __sync_fetch_and_add(counter, 1) + 1;
  if ((__u32)gen == 0) gen = 1; /* 0 is for processes seeded by user space */
  struct bc_tracked nt = {.slot = t->slot, .epoch = t->epoch, .gen = (__u32)gen};
  mark_tracked(child_tgid); /* before the child can run: it is woken after this tracepoint */
  if (bpf_map_update_elem(&tracked, &child_tgid, &nt, BPF_ANY)) count_loss(t->slot, LOST_TRACKED);

  struct bc_ev_fork e = {};
  e.hdr.type = BC_EV_FORK;
  e.hdr.tgid = tgid;
  e.hdr.time_ns = bpf_ktime_get_boot_ns();
  e.child = child_tgid;
  e.child_gen = (__u32)gen;
  emit(t->slot, &e, sizeof(e));
  return 0;
}

SEC("raw_tp/sched_process_exec")
int bc_exec(struct bpf_raw_tracepoint_args* ctx) {
  __u32 tgid = bpf_get_current_pid_tgid() >> 32;
  struct bc_tracked* t = NULL;
  struct bc_slot_cfg* cfg = slot_of(tgid, &t);
  if (!cfg || !t) return 0;
  __u32 zero = 0;
  struct exec_scratch* s = bpf_map_lookup_elem(&exec_scratch, &zero);
  if (!s) return 0;
  struct bc_ev_exec* e = &s->ev;
  struct task_struct* task = bpf_get_current_task_btf();
  struct linux_binprm* bprm = (struct linux_binprm*)ctx->args[2];

  e->hdr.type = BC_EV_EXEC;
  e->hdr.tgid = tgid;
  e->hdr.time_ns = bpf_ktime_get_boot_ns();
  e->ppid = BPF_CORE_READ(task, real_parent, tgid);
  e->old_pid = (__u32)ctx->args[1];
  e->gen = t->gen;
  e->flags = 0;

  /* filename as given to execve */
  const char* filename = BPF_CORE_READ(bprm, filename);
  long r = bpf_probe_read_kernel_str(e->data, BC_PATH_MAX, filename);
  __u32 off = r > 1 ? (__u32)(r - 1) : 0;
  off &= BC_PATH_MAX - 1;
  e->filename_len = (__u16)off;

  /* exe: the executable's path, by the same walk as for open directories */
  __u32 exe_len = 0;
  struct file* exe = BPF_CORE_READ(task, mm, exe_file);
  if (exe) {
    __u32 truncated = 0;
    exe_len = walk_path(BPF_CORE_READ(exe, f_path.dentry), BPF_CORE_READ(exe, f_path.mnt), &e->data[off], &s->walk,
                        &truncated);
    if (truncated) e->flags |= BC_EXEC_EXE_TRUNCATED;
  }
  exe_len &= BC_PATH_MAX - 1;
  e->exe_len = (__u16)exe_len;
  off = (off + exe_len) & (2 * BC_PATH_MAX - 1);

  /* argv: the NUL-separated strings between arg_start and arg_end, fresh on the new stack */
  unsigned long arg_start = BPF_CORE_READ(task, mm, arg_start);
  unsigned long arg_end = BPF_CORE_READ(task, mm, arg_end);
  __u64 alen = arg_end > arg_start ? arg_end - arg_start : 0;
  if (alen > BC_ARGV_BYTES) {
    alen = BC_ARGV_BYTES;
    e->flags |= BC_EXEC_ARGV_TRUNCATED;
  }
  alen &= 2 * BC_ARGV_BYTES - 1;
  if (alen > BC_ARGV_BYTES) alen = BC_ARGV_BYTES;
  if (bpf_probe_read_user(&e->data[off], alen, (const void*)arg_start)) {
    alen = 0;
    count_loss(t->slot, LOST_READ);
  }
  e->argv_len = (__u16)alen;
  __u32 total = (off + (__u32)alen) & (BC_EXEC_DATA - 1);
  emit(t->slot, e, offsetof(struct bc_ev_exec, data) + total);
  return 0;
}

#define BC_THREADS_MAX 65536

struct threads_ctx {
  struct list_head* head;
  struct list_head* node;
  __u64 runtime, utime, stime;
  __u64 read_bytes, write_bytes;
};

static long threads_step(__u32 i, void* arg) {
  struct threads_ctx* c = arg;
  struct list_head* node = c->node;
  if (!node || node == c->head) return 1;
  struct task_struct* t = (struct task_struct*)((char*)node - bpf_core_field_offset(struct task_struct, thread_node));
  c->runtime += BPF_CORE_READ(t, se.sum_exec_runtime);
  c->utime += BPF_CORE_READ(t, utime);
  c->stime += BPF_CORE_READ(t, stime);
  if (bpf_core_field_exists(t->ioac)) { /* CONFIG_TASK_IO_ACCOUNTING */
    c->read_bytes += BPF_CORE_READ(t, ioac.read_bytes);
    c->write_bytes += BPF_CORE_READ(t, ioac.write_bytes);
  }
  c->node = BPF_CORE_READ(node, next);
  return 0;
}

SEC("raw_tp/sched_process_exit")
int bc_exit(struct bpf_raw_tracepoint_args* ctx) {
  __u32 tgid = bpf_get_current_pid_tgid() >> 32;
  struct bc_tracked* t = NULL;
  struct bc_slot_cfg* cfg = slot_of(tgid, &t);
  if (!cfg || !t) return 0;
  struct task_struct* task = bpf_get_current_task_btf();
  struct signal_struct* sig = BPF_CORE_READ(task, signal);
  /* do_exit decrements signal->live before this tracepoint: 0 means the last thread is leaving. */
  if (BPF_CORE_READ(sig, live.counter) != 0) return 0;

  struct bc_ev_exit e = {};
  e.hdr.type = BC_EV_EXIT;
  e.hdr.tgid = tgid;
  e.hdr.time_ns = bpf_ktime_get_boot_ns();
  e.gen = t->gen;
  e.exit_code = BPF_CORE_READ(task, exit_code);

  /* As thread_group_cputime(): threads already released are summed in signal, the others (this one, a zombie
   * leader, threads still on their way out) are on the thread list. bc_switch later adds this thread's last
   * slice; a thread still exiting on another CPU may add microseconds we do not see. */
  struct threads_ctx tc = {
      .head = (struct list_head*)((char*)sig + bpf_core_field_offset(struct signal_struct, thread_head))};
  tc.node = BPF_CORE_READ(sig, thread_head.next);
  bpf_loop(BC_THREADS_MAX, threads_step, &tc, 0);
  __u64 cpu = BPF_CORE_READ(sig, sum_sched_runtime) + tc.runtime;
  __u64 ut = BPF_CORE_READ(sig, utime) + tc.utime;
  __u64 st = BPF_CORE_READ(sig, stime) + tc.stime;
  e.cpu_ns = cpu;
  e.utime_ticks_ns = ut;
  e.stime_ticks_ns = st;
  /* As /proc/PID/io: the threads already released and the children reaped are in signal->ioac. A process
   * that lived less than a sampling interval gets its bytes from here, not its parent. */
  if (bpf_core_field_exists(sig->ioac)) {
    e.read_bytes = BPF_CORE_READ(sig, ioac.read_bytes) + tc.read_bytes;
    e.write_bytes = BPF_CORE_READ(sig, ioac.write_bytes) + tc.write_bytes;
  }

  /* getrusage's ru_maxrss: max(signal->maxrss, the mm's high-water mark). */
  __u64 pages = BPF_CORE_READ(sig, maxrss);
  struct mm_struct* mm = BPF_CORE_READ(task, mm);
  if (mm) {
    __u64 hiwater = BPF_CORE_READ(mm, hiwater_rss);
    if (hiwater > pages) pages = hiwater;
  }
  e.maxrss_bytes = pages * page_size;

  /* Sent by bc_switch once the task has left the CPU for good; at once if that cannot be arranged. */
  __u32 zero = 0;
  __u64* count = bpf_map_lookup_elem(&exiting_count, &zero);
  struct exit_pending pend = {
      .ev = e, .runtime_at_exit = BPF_CORE_READ(task, se.sum_exec_runtime), .slot = t->slot, .epoch = t->epoch};
  __u32 pid = (__u32)bpf_get_current_pid_tgid();
  if (count && bpf_map_update_elem(&exiting, &pid, &pend, BPF_ANY) == 0) __sync_fetch_and_add(count, 1);
  else emit(t->slot, &e, sizeof(e));
  bpf_map_delete_elem(&tracked, &tgid);
  unmark_tracked(tgid);
  return 0;
}

#define TASK_DEAD 0x00000080

/* struct task_struct's state field was renamed in 5.14. */
struct task_struct___pre514 {
  long state;
} __attribute__((preserve_access_index));

static __always_inline unsigned int task_state(struct task_struct* t) {
  if (bpf_core_field_exists(t->__state)) return BPF_CORE_READ(t, __state);
  return (unsigned int)BPF_CORE_READ((struct task_struct___pre514*)t, state);
}

SEC("raw_tp/sched_switch")
int bc_switch(struct bpf_raw_tracepoint_args* ctx) {
  __u32 zero = 0;
  __u64* count = bpf_map_lookup_elem(&exiting_count, &zero);
  if (!count || *count == 0) return 0; /* the common case: one array load */
#if defined(BC_TEST_VERIFIER_REFUSES)
    /* Built only for the tests of the failure path: objects the verifier refuses, in the two ways it refuses.
     * bc_events_refused.bpf.o reads past a map value ("invalid access", found at once); bc_events_too_complex
     * .bpf.o has a loop the verifier walks iteration by iteration, too long for its instruction limit ("BPF
     * program is too large"), as a kernel whose verifier finds one of our programs too complex
     * would refuse it. */
#if BC_TEST_VERIFIER_REFUSES == 1
  if (*(count + 1) == 42) return 1;
#else
  __u64 acc = 0;
#pragma clang loop unroll(disable)
  for (__u32 i = 0; i < (1u << 20); i++) {
    if (*(volatile __u64*)count & (1ULL << (i & 63))) acc++;
  }
  if (acc == 42) return 1;
#endif
#endif
  struct task_struct* prev = (struct task_struct*)ctx->args[1];
  __u32 pid = BPF_CORE_READ(prev, pid);
  struct exit_pending* p = bpf_map_lookup_elem(&exiting, &pid);
  if (!p) return 0;
  if (!(task_state(prev) & TASK_DEAD)) return 0; /* preempted while exiting: it runs again */
  __u64 runtime = BPF_CORE_READ(prev, se.sum_exec_runtime);
  if (runtime > p->runtime_at_exit) p->ev.cpu_ns += runtime - p->runtime_at_exit;
  __u32 slot = p->slot;
  struct bc_slot_cfg* cfg = bpf_map_lookup_elem(&slot_cfg, &slot);
  if (cfg && cfg->epoch == p->epoch) emit(slot, &p->ev, sizeof(p->ev));
  if (bpf_map_delete_elem(&exiting, &pid) == 0) __sync_fetch_and_sub(count, 1);
  return 0;
}
