/* Structures shared by bc_events.bpf.c (kernel side) and events.cpp (user space).
 *
 * No kernel types here: only fixed-width integers and arrays, so the same bytes mean the same thing on
 * both sides. Every struct is laid out without implicit padding (checked by static asserts in events.cpp).
 * Bump BC_LAYOUT_VERSION whenever a struct, a map or a constant below changes: the pinned objects of a
 * different layout are then never reused (see "version" in events.hpp).
 */
#ifndef BC_EVENTS_H
#define BC_EVENTS_H

#ifndef __bpf__
#include <linux/types.h>
#endif

#define BC_LAYOUT_VERSION 3

/* Node-wide limits. */
#define BC_MAX_SLOTS 64       /* concurrent monitored jobs per node (one slot each) */
#define BC_TRACKED_MAX 65536  /* tracked processes per node, all jobs together */
#define BC_TGID_LIMIT 4194304 /* PID_MAX_LIMIT on 64-bit: every tgid is below it */
#define BC_FILE_AGG_MAX 65536 /* distinct (process, path) pairs per job per drain interval */
#define BC_CONN_AGG_MAX 16384 /* distinct (process, peer) pairs per job per drain interval */
/* Aggregate maps are not preallocated: memory follows use, not capacity. */
#define BC_FILE_IDS_MAX 65536             /* open files remembered for read/write byte counting (LRU) */
#define BC_RING_TEMPLATE_BYTES (1u << 20) /* inner ring size used when the kernel needs equal sizes */

/* Path and argv bounds. Powers of two: the BPF side masks offsets with them. */
#define BC_PATH_MAX 4096               /* bytes of a path (PATH_MAX) */
#define BC_NAME_DATA (2 * BC_PATH_MAX) /* directory part + relative part of a resolved name */
#define BC_WALK_DEPTH 64               /* dentry components walked up from a directory */
#define BC_WALK_STEPS 80               /* walk iterations including mount crossings */
#define BC_ARGV_BYTES 4096             /* bytes of argv captured at exec (NUL separated) */
#define BC_ARGV_MAX_ARGS 64            /* user space keeps at most this many arguments */
#define BC_EXEC_DATA (4 * BC_PATH_MAX) /* filename + exe + argv */
#define BC_UNIX_PATH_MAX 108           /* sizeof(sockaddr_un.sun_path) */

/* Ring buffer events. Every event starts with bc_ev_hdr. Times are CLOCK_BOOTTIME nanoseconds
 * (bpf_ktime_get_boot_ns); user space converts them to the Unix epoch. */
enum bc_event_type {
  BC_EV_FORK = 1,
  BC_EV_EXEC = 2,
  BC_EV_EXIT = 3,
  BC_EV_NAME = 4, /* announces the string behind an aggregate's hash (file path or unix socket path) */
};

struct bc_ev_hdr {
  __u32 type;
  __u32 tgid;    /* the process the event is about (fork: the parent) */
  __u64 time_ns; /* CLOCK_BOOTTIME */
};

struct bc_ev_fork {
  struct bc_ev_hdr hdr;
  __u32 child;
  __u32 child_gen;
};

#define BC_EXEC_ARGV_TRUNCATED 1u /* argv longer than BC_ARGV_BYTES */
#define BC_EXEC_EXE_TRUNCATED 2u  /* exe path deeper or longer than the walk allows */

struct bc_ev_exec {
  struct bc_ev_hdr hdr;
  __u32 ppid;
  __u32 old_pid; /* thread that called exec (differs from tgid when a non-leader thread execs) */
  __u32 gen;
  __u32 flags;        /* BC_EXEC_* */
  __u16 filename_len; /* bytes, no NUL: the path given to execve */
  __u16 exe_len;      /* bytes, no NUL: mm->exe_file resolved by a dentry walk, as /proc/PID/exe */
  __u16 argv_len;     /* bytes of NUL-separated argv */
  __u16 pad;
  char data[BC_EXEC_DATA]; /* filename, exe, argv, back to back */
};

struct bc_ev_exit {
  struct bc_ev_hdr hdr;
  __u32 gen;
  __s32 exit_code;      /* raw wait status: (code << 8) | signal, 0x80 when a core was dumped */
  __u64 cpu_ns;         /* sum_exec_runtime of every thread: what getrusage reports as utime + stime */
  __u64 utime_ticks_ns; /* tick-sampled user and system time (task utime/stime), to split cpu_ns */
  __u64 stime_ticks_ns;
  __u64 maxrss_bytes; /* signal->maxrss, which the kernel updates at group exit from the mm hiwater */
  __u64 read_bytes;   /* storage I/O as /proc/PID/io counts it: every thread and every child it reaped */
  __u64 write_bytes;
};

enum bc_name_kind { BC_NAME_FILE = 1, BC_NAME_UNIX = 2 };
#define BC_NAME_TRUNCATED 1u

struct bc_ev_name {
  struct bc_ev_hdr hdr;
  __u64 hash;
  __u32 kind;  /* bc_name_kind */
  __u32 flags; /* BC_NAME_TRUNCATED */
  __u32 len;   /* bytes in data, no NUL */
  __u32 pad;
  char data[BC_NAME_DATA];
};

/* In-kernel aggregates. Keys carry the process generation so that a reused pid never merges with the
 * process that had it before. One map per job slot and per half (double-buffered, see events.hpp). */
struct bc_file_key {
  __u64 hash; /* of the path string, seeded with the directory it is relative to */
  __u32 tgid;
  __u32 gen;
};

#define BC_FILE_READ 1u
#define BC_FILE_WRITE 2u
#define BC_FILE_CREATE 4u
#define BC_FILE_TRUNC 8u
#define BC_FILE_APPEND 16u
#define BC_FILE_DIRECTORY 32u

struct bc_file_val {
  __u64 first_ns; /* CLOCK_BOOTTIME of the first open in this interval */
  __u64 opens;    /* successful opens */
  __u64 failed;   /* failed opens */
  __u64 read_bytes;
  __u64 write_bytes;
  __u32 flags;     /* BC_FILE_* of every open, OR-ed */
  __u32 announced; /* the BC_EV_NAME for this hash went out in this interval */
};

struct bc_conn_key {
  __u8 addr[16]; /* IPv4 in the first 4 bytes, IPv6 all 16, unix: the 8-byte hash of the path */
  __u32 tgid;
  __u32 gen;
  __u16 family; /* AF_INET, AF_INET6, AF_UNIX */
  __u16 port;   /* host byte order */
  __u16 type;   /* SOCK_STREAM, SOCK_DGRAM, ... (0 if the fd was not a socket) */
  __u16 pad;
};

struct bc_conn_val {
  __u64 first_ns;
  __u64 count;       /* connect calls */
  __u64 failed;      /* returned an error other than EINPROGRESS */
  __u64 in_progress; /* non-blocking connect that returned EINPROGRESS: outcome not seen */
  __u32 announced;
  __u32 pad;
};

/* tgid -> slot. epoch must equal the slot's current epoch, so entries a crashed monitor left behind stay
 * inert once its slot is given to another job. */
struct bc_tracked {
  __u32 slot;
  __u32 epoch;
  __u32 gen;
  __u32 pad;
};

#define BC_SLOT_IO_BYTES 1u

struct bc_slot_cfg {
  __u32 epoch;  /* 0: slot unused */
  __u32 active; /* which half of the double-buffered aggregate maps the kernel writes (0 or 1) */
  __u32 flags;  /* BC_SLOT_* */
  __u32 pad;
};

/* Per slot, per CPU: every event the kernel side could not deliver. */
struct bc_slot_stats {
  __u64 ring_lost;    /* bpf_ringbuf_output failed (ring full) */
  __u64 files_lost;   /* file aggregate map full */
  __u64 conns_lost;   /* connect aggregate map full */
  __u64 tracked_lost; /* tracked-tgid map full: a forked child could not be tracked */
  __u64 read_failed;  /* a path or address could not be read from user memory */
  __u64 keys_added;   /* new keys in the file and connect aggregate maps, so that user space need not scan
                         an idle job's empty maps (a scan walks every bucket) to find nothing */
};

struct bc_slot_owner {
  __u32 pid;         /* monitor process holding the slot, 0 when free */
  __u32 last_epoch;  /* the epoch handed out last; the next owner gets last_epoch + 1 */
  __u64 start_ticks; /* its start time (field 22 of /proc/PID/stat), against pid reuse */
};

/* Written by user space only (under the slot lock). */
struct bc_node_cfg {
  __u32 io_slots; /* slots with BC_SLOT_IO_BYTES: read/write syscalls are looked at only when > 0 */
  __u32 pad;
};

struct bc_file_id {
  __u64 hash; /* file aggregate hash of the open that created this struct file */
  __u32 slot;
  __u32 pad;
};

struct bc_meta {
  __u64 tag; /* hash of the BPF object's bytes and BC_LAYOUT_VERSION */
  __u32 layout;
  __u32 max_slots;
};

#endif /* BC_EVENTS_H */
