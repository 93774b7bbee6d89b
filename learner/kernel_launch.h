// Launchers of the project's fused CUDA kernels (learner/kernel_launch.cu,
// built with nvcc by CMake when SOFTQ_CUDA_KERNELS is on; learner/fused_ops.h
// is the tensor-level API). No CUDA or LibTorch types here, so plain C++
// callers need no CUDA headers. Each launches on `stream` (a cudaStream_t) and
// returns nullptr, or the CUDA runtime's message for a launch that failed.
#ifndef SOFTQ_LEARNER_KERNEL_LAUNCH_H_
#define SOFTQ_LEARNER_KERNEL_LAUNCH_H_

#include <cstdint>

#include "learner/soft_td_block.h"
#include "learner/stein_block.h"

namespace softq::stein {

// The most shared memory one state's block may use, and the most threads it
// runs.
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
