// GoogleTest's main for the tests that run much LibTorch math: OpenBLAS's
// kernels for this CPU first (common/torch_threads.h), then every test.
#include <gtest/gtest.h>

#include "common/torch_threads.h"

int main(int argc, char** argv) {
  softq::RestartWithOpenBlasKernelsForThisCpu(argv);
  testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
