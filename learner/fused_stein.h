// The adaptive-kernel Stein direction of sql_math.h (AdaptiveRbfKernel, then
// SteinDirection) as one CUDA kernel launch instead of about fourteen operations: what an
// update costs on a GPU is its launches. Built only by CMake with nvcc (SOFTQ_CUDA_KERNELS,
// learner/stein_kernel.cu); elsewhere FusedSteinSupports() is false. sql::SvgdLossGradient
// chooses it. Thread-safe: no state.
#ifndef SOFTQ_LEARNER_FUSED_STEIN_H_
#define SOFTQ_LEARNER_FUSED_STEIN_H_

#include <torch/types.h>

namespace softq::sql {

// Whether this build has the kernel and it takes these tensors: float32 on a CUDA device,
// fixed x [B, Kx, D], updated y [B, Ky, D] and grad_log_p [B, Kx, D] with contiguous rows
// (any batch stride, so slices of one [B, K, D] tensor qualify), a state's kernel and scores
// within the block's shared memory.
bool FusedSteinSupports(const torch::Tensor& fixed, const torch::Tensor& updated,
                        const torch::Tensor& grad_log_p);

struct FusedStein {
  torch::Tensor direction;  // scale * Delta, [B, Ky, D]
  torch::Tensor bandwidth;  // h, [B]
};
// Precondition: FusedSteinSupports(fixed, updated, grad_log_p). Launches on the current
// stream (so a CUDA graph can capture it); a failed launch throws c10::Error.
FusedStein FusedSteinDirection(const torch::Tensor& fixed, const torch::Tensor& updated,
                               const torch::Tensor& grad_log_p, double scale);

}  // namespace softq::sql

#endif  // SOFTQ_LEARNER_FUSED_STEIN_H_
