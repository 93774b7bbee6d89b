// CPU time used so far, for benchmarks that report CPU per unit of work:
// this process's (every thread) and another process's, read from /proc.
// Thread-safe (no state).
#ifndef SOFTQ_BENCH_CPU_TIME_H_
#define SOFTQ_BENCH_CPU_TIME_H_

#include <sys/types.h>

namespace softq {

// CPU seconds this process has used, all threads (CLOCK_PROCESS_CPUTIME_ID).
double SelfCpuSeconds();

// CPU seconds (user + system) process `pid` has used, from /proc/PID/stat,
// in clock ticks; 0 if unreadable.
double ProcessCpuSeconds(pid_t pid);

}  // namespace softq

#endif  // SOFTQ_BENCH_CPU_TIME_H_
