// Launchers of the project's fused CUDA kernels (learner/kernel_launch.cu, built with nvcc
// by CMake when SOFTQ_CUDA_KERNELS is on; learner/fused_ops.h is the tensor-level API).
// No CUDA or LibTorch types here, so plain C++ callers need no CUDA headers. Each launches
// on `stream` (a cudaStream_t) and returns nullptr, or the CUDA runtime's message for a
// launch that failed.
#ifndef SOFTQ_LEARNER_KERNEL_LAUNCH_H_
#define SOFTQ_LEARNER_KERNEL_LAUNCH_H_

#include <cstdint>

#include "learner/soft_td_block.h"

namespace softq::stein {

// Float32 device pointers; state b's particles start at fixed + b * fixed_batch_stride (and
// likewise for the others), each state's rows contiguous, `d` floats apart.
struct LaunchArgs {
  int batch, kx, ky, d;
  const float* fixed;
  int64_t fixed_batch_stride;
  const float* updated;
  int64_t updated_batch_stride;
  const float* grad_log_p;
  int64_t grad_batch_stride;
  float* direction;  // [batch, pad_rows + ky, d], contiguous
  float* bandwidth;  // [batch]
  float scale;
  float negative_inverse_log_kx;
  bool squashed;     // as BlockArgs
  int pad_rows;
};

// The most shared memory one state's block may use, and the most threads it runs.
constexpr int kMaxScratchBytes = 48 * 1024;
constexpr int kMaxBlockThreads = 256;

// One block per state.
const char* LaunchSteinDirection(const LaunchArgs& args, void* stream);

}  // namespace softq::stein

namespace softq::soft_td {

// One thread per transition.
const char* LaunchSoftTd(const Args& args, void* stream);

}  // namespace softq::soft_td

#endif  // SOFTQ_LEARNER_KERNEL_LAUNCH_H_
