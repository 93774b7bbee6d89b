// Amortized SVGD, the sampling network's update under SQL: particles drawn
// from the network, moved along the Stein direction toward the target as the
// gradient of a surrogate loss. Pure functions; thread-compatible.
#ifndef SOFTQ_LEARNER_AMORTIZED_SVGD_H_
#define SOFTQ_LEARNER_AMORTIZED_SVGD_H_

#include <torch/types.h>

#include <functional>

#include "policy/networks.h"

namespace softq {

// Score of the target: the gradient of its log-density with respect to the
// actions, at actions [B, Kf, D] (no autograd graph) for observations [B, Kf,
// O]: returns [B, Kf, D].
using Score = std::function<torch::Tensor(const torch::Tensor& observations,
                                          const torch::Tensor& actions)>;

// How AmortizedSvgd computes its step.
struct SvgdOptions {
  // `score` gives Q's action gradient only, and the target also has the tanh
  // squashing's log-Jacobian: its term is added inside (sql::SquashedScore;
  // free in the fused kernel).
  bool squashed_score = false;
  // How, with the same numbers up to rounding: the fixed and updated particles
  // from one policy pass; sql::SvgdLossGradient's fused kernel where it
  // applies.
  bool one_forward_pass = false;
  bool fused_kernel = false;
  double repulsion = 1.0;  // SqlConfig::svgd_repulsion
};

// Amortized SVGD: draws K = policy_noise.size(1) actions per observation from
// `policy`, splits them into fixed (the first SplitParticles(K,
// update_ratio).fixed, K - int(K * update_ratio) for a valid config; no
// gradient) and updated particles, and returns the Stein direction Delta toward
// the target whose score is `score` as the gradient of the surrogate
// -sum(stop_grad(Delta) * updated) with respect to the policy's output:
// `particles.backward(loss_gradient)` gives the surrogate's gradients on
// `policy`. The fixed particles are drawn in a forward pass of their own
// without a graph (less arithmetic; `particles` are the updated ones), or, with
// `one_forward_pass`, in one pass with the updated ones (fewer operations, as a
// GPU prefers; `particles` are all K, the fixed ones with zero gradient). With
// `keep`, no pass records a graph: the policy's pass of `particles` keeps its
// activations there instead, for SamplingNetworkImpl::ParameterGradients(*keep,
// particles, loss_gradient, ...). With K < 3 (a particle schedule's end, down
// to 1) no particle is fixed: all K are updated, each along its own score
// (sql::SelfSvgdLossGradient: the kernel's self term), `particles` are all K
// from one pass whatever `one_forward_pass` says, and the bandwidth is 0.
struct AmortizedSvgdStep {
  torch::Tensor
      particles;  // [B, Ky or K, D], with the graph into `policy` (or `keep`)
  torch::Tensor loss_gradient;  // the same shape, no graph: -Delta (and zeros)
  torch::Tensor bandwidth;      // the kernel's h per state, [B]
};
AmortizedSvgdStep AmortizedSvgd(SamplingNetwork& policy, const Score& score,
                                const torch::Tensor& observations,
                                const torch::Tensor& policy_noise,
                                double update_ratio,
                                const SvgdOptions& options = {},
                                MlpActivations* keep = nullptr);
// The surrogate itself, sum(loss_gradient * particles) (a scalar whose gradient
// flows into `policy` only); `bandwidth`, if given, receives the mean kernel
// bandwidth (0-d).
torch::Tensor AmortizedSvgdLoss(SamplingNetwork& policy, const Score& score,
                                const torch::Tensor& observations,
                                const torch::Tensor& policy_noise,
                                double update_ratio,
                                torch::Tensor* bandwidth = nullptr,
                                const SvgdOptions& options = {});

}  // namespace softq

#endif  // SOFTQ_LEARNER_AMORTIZED_SVGD_H_
