// For tests/torch_threads_test.cc: prints "start <pid> <BLAS line>" before
// RestartWithOpenBlasKernelsForThisCpu (twice when it restarts) and then
// "running <pid> <BLAS line>" and each argument on a line of its own ("arg
// <argument>").
#include <unistd.h>

#include <cstdio>

#include "common/torch_threads.h"

int main(int argc, char** argv) {
  std::printf("start %d %s\n", static_cast<int>(getpid()),
              softq::ConfigureTorchThreads(1).c_str());
  std::fflush(stdout);
  softq::RestartWithOpenBlasKernelsForThisCpu(argv);
  std::printf("running %d %s\n", static_cast<int>(getpid()),
              softq::ConfigureTorchThreads(1).c_str());
  for (int i = 1; i < argc; ++i) std::printf("arg %s\n", argv[i]);
  return 0;
}
