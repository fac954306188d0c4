/* openloop N [PATH]: N open+close of PATH; prints nanoseconds per pair on stdout.
 * openloop --rate N RATE DISTINCT_EVERY DIR: N opens at RATE per second; every DISTINCT_EVERY-th open is of a
 * new (missing) path under DIR, the others of one existing file; prints the rate reached. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int main(int argc, char** argv) {
  if (argc >= 6 && strcmp(argv[1], "--rate") == 0) {
    long n = atol(argv[2]);
    double rate = atof(argv[3]);
    long every = atol(argv[4]);
    const char* dir = argv[5];
    char path[4096];
    double t0 = now_s();
    for (long i = 0; i < n; i++) {
      if (every > 0 && i % every == 0) snprintf(path, sizeof path, "%s/missing-%ld", dir, i);
      else snprintf(path, sizeof path, "/etc/hostname");
      int fd = open(path, O_RDONLY);
      if (fd >= 0) close(fd);
      if ((i & 1023) == 0) {
        double ahead = (double)i / rate - (now_s() - t0);
        if (ahead > 0) usleep((useconds_t)(ahead * 1e6));
      }
    }
    printf("%.0f\n", (double)n / (now_s() - t0));
    return 0;
  }
  if (argc < 2) return 2;
  long n = atol(argv[1]);
  const char* path = argc > 2 ? argv[2] : "/etc/hostname";
  double t0 = now_s();
  for (long i = 0; i < n; i++) {
    int fd = open(path, O_RDONLY);
    if (fd >= 0) close(fd);
  }
  printf("%.1f\n", (now_s() - t0) * 1e9 / (double)n);
  return 0;
}
