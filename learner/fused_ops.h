// Steps of the SQL update as single CUDA kernel launches, for sql_math.h to
// choose: what an update costs on a GPU is its launches.
//   FusedSteinDirection: AdaptiveRbfKernel, then SteinDirection (about 14
//   operations); FusedSoftTd: SoftValue, SoftTdTarget and CriticLoss's gradient
//   (about 9).
// Built only by CMake with nvcc (SOFTQ_CUDA_KERNELS, learner/kernel_launch.cu);
// elsewhere the *Supports functions are false. Thread-safe: no state.
#ifndef SOFTQ_LEARNER_FUSED_OPS_H_
#define SOFTQ_LEARNER_FUSED_OPS_H_

#include <torch/types.h>

namespace softq::sql {

// Whether this build has the kernel and it takes these tensors: float32 on a
// CUDA device, fixed x [B, Kx, D], updated y [B, Ky, D] and grad_log_p [B, Kx,
// D] with contiguous rows (any batch stride, so slices of one [B, K, D] tensor
// qualify), a state's kernel and scores within the block's shared memory.
bool FusedSteinSupports(const torch::Tensor& fixed,
                        const torch::Tensor& updated,
                        const torch::Tensor& grad_log_p);

struct FusedStein {
  torch::Tensor
      direction;  // scale * Delta, [B, Ky, D] (with pad_fixed [B, Kx + Ky, D])
  torch::Tensor bandwidth;  // h, [B]
};
// Precondition: FusedSteinSupports(fixed, updated, grad_log_p). With
// `squashed`, grad_log_p is Q's action gradient and the squashing's term is
// added (sql::SquashedScore); with `pad_fixed`, Kx rows of zeros precede each
// state's Ky directions. Launches on the current stream (so a CUDA graph can
// capture it); a failed launch throws c10::Error.
FusedStein FusedSteinDirection(const torch::Tensor& fixed,
                               const torch::Tensor& updated,
                               const torch::Tensor& grad_log_p, double scale,
                               bool squashed, bool pad_fixed);

// Whether this build has the kernel and it takes these tensors: float32 on one
// CUDA device, q, rewards and dones [B] (any stride), next_q [B, M] with
// contiguous rows.
bool FusedSoftTdSupports(const torch::Tensor& q, const torch::Tensor& next_q,
                         const torch::Tensor& rewards,
                         const torch::Tensor& dones);

struct FusedTd {
  torch::Tensor target;      // y [B]
  torch::Tensor q_gradient;  // dJ_Q/dq = (q - y) / B, [B]
};
// Precondition: FusedSoftTdSupports(...). Launches on the current stream; a
// failed launch throws c10::Error.
FusedTd FusedSoftTd(const torch::Tensor& q, const torch::Tensor& next_q,
                    const torch::Tensor& rewards, const torch::Tensor& dones,
                    double value_offset, double reward_scale, double discount);

// The kernels' host twins, for tests: the same argument packing and arithmetic,
// run on the CPU one logical GPU thread at a time, for float32 CPU tensors with
// the layouts the kernels take (any build; c10::Error for other tensors).
FusedStein FusedSteinDirectionOnHost(const torch::Tensor& fixed,
                                     const torch::Tensor& updated,
                                     const torch::Tensor& grad_log_p,
                                     double scale, bool squashed,
                                     bool pad_fixed);
FusedTd FusedSoftTdOnHost(const torch::Tensor& q, const torch::Tensor& next_q,
                          const torch::Tensor& rewards,
                          const torch::Tensor& dones, double value_offset,
                          double reward_scale, double discount);

}  // namespace softq::sql

#endif  // SOFTQ_LEARNER_FUSED_OPS_H_
