/* floor MODE READY_FILE: attaches the empty programs of floor.bpf.o that MODE names, creates READY_FILE and
 * waits for SIGTERM. Modes:
 *   raw_all     our five raw tracepoints (sys_exit, sched_process_fork/exec/exit, sched_switch)
 *   raw_sys_exit  raw tracepoint sys_exit only
 *   tp_openat   syscalls:sys_enter_openat and sys_exit_openat
 *   tp_exit     syscalls:sys_exit_openat and sys_exit_connect (what per-syscall programs of ours would use)
 *   slow_path   syscalls:sys_exit_acct: the syscall tracing slow path for every task, no program run */
#include <bpf/libbpf.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t stop;
static void on_term(int sig) {
  (void)sig;
  stop = 1;
}

int main(int argc, char** argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: floor OBJECT MODE READY_FILE\n");
    return 2;
  }
  const char* mode = argv[2];
  const char* raw_all[] = {"raw_sys_exit", "raw_fork", "raw_exec", "raw_exit", "raw_switch", NULL};
  const char* raw_sys_exit[] = {"raw_sys_exit", NULL};
  const char* tp_openat[] = {"tp_enter_openat", "tp_exit_openat", NULL};
  const char* tp_exit[] = {"tp_exit_openat", "tp_exit_connect", NULL};
  const char* slow_path[] = {"tp_exit_acct", NULL};
  const char** want = !strcmp(mode, "raw_all")        ? raw_all
                      : !strcmp(mode, "raw_sys_exit") ? raw_sys_exit
                      : !strcmp(mode, "tp_openat")    ? tp_openat
                      : !strcmp(mode, "tp_exit")      ? tp_exit
                      : !strcmp(mode, "slow_path")    ? slow_path
                                                      : NULL;
  if (!want) {
    fprintf(stderr, "floor: unknown mode %s\n", mode);
    return 2;
  }
  struct bpf_object* obj = bpf_object__open_file(argv[1], NULL);
  if (!obj) {
    perror("floor: open");
    return 1;
  }
  struct bpf_program* prog;
  bpf_object__for_each_program(prog, obj) {
    int keep = 0;
    for (const char** w = want; *w; ++w) keep |= !strcmp(bpf_program__name(prog), *w);
    bpf_program__set_autoload(prog, keep);
  }
  if (bpf_object__load(obj)) {
    perror("floor: load");
    return 1;
  }
  bpf_object__for_each_program(prog, obj) {
    if (!bpf_program__autoload(prog)) continue;
    if (!bpf_program__attach(prog)) {
      fprintf(stderr, "floor: cannot attach %s\n", bpf_program__name(prog));
      return 1;
    }
  }
  signal(SIGTERM, on_term);
  signal(SIGINT, on_term);
  FILE* f = fopen(argv[3], "w");
  if (f) fclose(f);
  while (!stop) pause();
  bpf_object__close(obj);
  return 0;
}
