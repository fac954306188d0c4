// Test helper: burns this process's own CPU clock (not wall time, which a loaded machine stretches).
#pragma once

#include <ctime>

inline void burn_cpu(long long ns) {
  timespec cpu{};
  volatile unsigned long x = 0;
  do {
    for (int i = 0; i < 100000; ++i) x = x + 1;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu);
  } while (cpu.tv_sec * 1'000'000'000LL + cpu.tv_nsec < ns);
}
