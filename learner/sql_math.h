// The Soft Q-Learning math as pure functions on tensors (Haarnoja et al. 2017;
// formulas in shared/docs/soft_q_learning.md). No modules, no optimizers, no
// randomness: callers pass the sampled actions in, so every function is
// deterministic and testable on its own. Thread-safe (no state).
#ifndef SOFTQ_LEARNER_SQL_MATH_H_
#define SOFTQ_LEARNER_SQL_MATH_H_

#include <torch/types.h>

namespace softq::sql {

// Importance-sampled soft value with a uniform proposal on [-1, 1]^action_dim:
//   V = logsumexp_j q[..., j] - log M + action_dim * log 2,  M = q.size(-1).
// `q_particles` is [..., M]; returns [...]. Stable for large |q|.
torch::Tensor SoftValue(const torch::Tensor& q_particles, int64_t action_dim);

// TD target y = reward_scale * r + (1 - done) * discount * next_value, with no
// gradient.
torch::Tensor SoftTdTarget(const torch::Tensor& rewards,
                           const torch::Tensor& dones,
                           const torch::Tensor& next_value, double reward_scale,
                           double discount);

// J_Q = mean(0.5 * (target - q)^2).
torch::Tensor CriticLoss(const torch::Tensor& q, const torch::Tensor& target);

// Prioritized replay (Schaul et al. 2016). The critic's loss with importance
// weights w [B]: J_Q = mean(0.5 * w * (target - q)^2), formed as CriticLoss of
// sqrt(w) * q and sqrt(w) * target, so that with every w = 1 it is CriticLoss's
// exact number. Its gradient dJ_Q/dq = w * (q - target) / B (no gradient), with
// w = 1 CriticLossGradient's exact number.
torch::Tensor WeightedCriticLoss(const torch::Tensor& q,
                                 const torch::Tensor& target,
                                 const torch::Tensor& weights);
torch::Tensor WeightedCriticLossGradient(const torch::Tensor& q,
                                         const torch::Tensor& target,
                                         const torch::Tensor& weights);

// Importance weights w_i = (N * P(i))^-beta / max_j (N * P(j))^-beta for the
// probabilities [B] with which each row was drawn (over all shards) from N
// items; float64 [B] in (0, 1], no gradient. beta in [0, 1].
torch::Tensor ImportanceWeights(const torch::Tensor& probabilities,
                                double total_size, double beta);

// beta annealed linearly from `beta0` at update 0 to 1 at `anneal_updates`
// (and after); anneal_updates <= 0: 1 at once.
double AnnealedBeta(double beta0, int64_t update, int64_t anneal_updates);

// Priorities from the TD errors: |target - q| + epsilon, float32 [B], no
// gradient (the shard raises them to its --priority_exponent alpha).
torch::Tensor TdPriorities(const torch::Tensor& q, const torch::Tensor& target,
                           double epsilon);

// dJ_Q/dq = (q - target) / B for q and target [B], no gradient.
torch::Tensor CriticLossGradient(const torch::Tensor& q,
                                 const torch::Tensor& target);

// The soft critic's step without forming J_Q: the target y =
// SoftTdTarget(rewards, dones, SoftValue(next_q, action_dim), ...) and dJ_Q/dq
// = (q - y) / B, so that `q.backward(q_gradient)` gives J_Q's gradients. q,
// rewards, dones [B]; next_q [B, M]; no gradient flows through either result.
// With `fused`, one CUDA kernel where FusedSoftTdSupports() takes the tensors,
// else the operations above: the same numbers up to float rounding.
struct CriticGradient {
  torch::Tensor target;      // [B]
  torch::Tensor q_gradient;  // [B]
};
CriticGradient SoftCriticGradient(const torch::Tensor& q,
                                  const torch::Tensor& next_q,
                                  const torch::Tensor& rewards,
                                  const torch::Tensor& dones,
                                  int64_t action_dim, double reward_scale,
                                  double discount, bool fused = true);

// The score of the sampling network's target, grad_a [Q(s, a) + sum_d log(1 -
// a_d^2 + 1e-6)] (Q plus the log-Jacobian correction of the tanh squashing),
// from `q_gradient` = dQ/da: q_gradient - 2a / (1 - a^2 + 1e-6). Both are [...,
// D]; no gradient flows through it.
torch::Tensor SquashedScore(const torch::Tensor& q_gradient,
                            const torch::Tensor& actions);

// Adaptive-bandwidth RBF kernel between fixed particles x [B, Kx, D] and
// updated particles y [B, Ky, D]: kappa = exp(-||x - y||^2 / h), h = max(median
// / log Kx, 1e-3) with the (lower) median of the Kx*Ky squared distances taken
// per state. Gradients are stopped. `kappa` is [B, Kx, Ky].
struct RbfKernel {
  torch::Tensor kappa;
  torch::Tensor bandwidth;  // h, [B]
};
RbfKernel AdaptiveRbfKernel(const torch::Tensor& fixed,
                            const torch::Tensor& updated);

// Stein variational direction for each updated particle y_i, with `kernel` the
// kernel between `fixed` x [B, Kx, D] and `updated` y [B, Ky, D]:
//   Delta(y_i) = mean_j [ kappa(x_j, y_i) * grad_log_p(x_j) + grad_{x_j}
//   kappa(x_j, y_i) ],
// grad_{x_j} kappa(x_j, y_i) = -2 (x_j - y_i) / h * kappa(x_j, y_i).
// `grad_log_p` is [B, Kx, D]; returns scale * Delta, [B, Ky, D]. No gradient
// flows through it. `repulsion` weighs the second, repulsive term (the
// kernel's gradient, which keeps the particles apart): 1 is SVGD, 0 leaves
// the kernel-smoothed score alone (an ablation: SqlConfig::svgd_repulsion).
torch::Tensor SteinDirection(const RbfKernel& kernel,
                             const torch::Tensor& fixed,
                             const torch::Tensor& updated,
                             const torch::Tensor& grad_log_p,
                             double scale = 1.0, double repulsion = 1.0);

// The amortized SVGD surrogate's gradient with respect to the updated
// particles: d/dy [-sum(stop_grad(Delta) * y)] = -Delta, with Delta from the
// adaptive kernel above. `updated.backward(loss_gradient)` then gives the
// surrogate's parameter gradients without forming the surrogate. The same
// numbers, up to float rounding, from one CUDA kernel
// (`fused`, where FusedSteinSupports() takes the tensors: a build with
// SOFTQ_CUDA_KERNELS) or from the operations above.
struct SvgdGradientOptions {
  // grad_log_p is Q's action gradient: the squashing's term is added first
  // (SquashedScore).
  bool squashed = false;
  // The gradient for all Kx + Ky particles, [B, Kx + Ky, D], zero for the fixed
  // ones (for a backward pass from one forward pass over both, without a
  // slice's backward).
  bool pad_fixed = false;
  bool fused = true;
  // SteinDirection's weight of the repulsive term. The fused kernel computes
  // SVGD's direction only (weight 1): with any other weight the operations
  // above run instead, whatever `fused` says.
  double repulsion = 1.0;
};
struct SvgdGradient {
  torch::Tensor loss_gradient;  // -Delta, [B, Ky, D] (or padded)
  torch::Tensor bandwidth;      // h, [B]
};
SvgdGradient SvgdLossGradient(const torch::Tensor& fixed,
                              const torch::Tensor& updated,
                              const torch::Tensor& grad_log_p,
                              const SvgdGradientOptions& options = {});

// SVGD with no kept particle (SplitParticles for K < 3): each particle a_i is
// its own particle set, and its direction is the kernel's self term,
//   Delta(a_i) = kappa(a_i, a_i) * g(a_i) + grad_x kappa(x, a_i) at x = a_i
//              = g(a_i)
// for any RBF kernel (kappa(a, a) = 1 and its gradient vanishes there): no
// bandwidth, no repulsion (whatever its weight), gradient ascent on log p.
// Returns the surrogate's gradient -Delta for `particles` [B, K, D] with
// `grad_log_p` [B, K, D] taken at them (the squashing's term added first when
// `squashed`), and a bandwidth of 0 per state ([B]: there is no kernel). No
// gradient flows through it.
SvgdGradient SelfSvgdLossGradient(const torch::Tensor& particles,
                                  const torch::Tensor& grad_log_p,
                                  bool squashed = false);

// The surrogate's value from its gradient: sum(loss_gradient * particles), a
// scalar with a gradient into whatever `particles` has one into.
torch::Tensor SvgdSurrogate(const torch::Tensor& particles,
                            const torch::Tensor& loss_gradient);

}  // namespace softq::sql

#endif  // SOFTQ_LEARNER_SQL_MATH_H_
