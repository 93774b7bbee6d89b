#include "learner/sql_math.h"

#include <torch/types.h>
#include <torch/utils.h>

#include <cmath>

#include "learner/fused_ops.h"

namespace softq::sql {
namespace {

// SoftValue's constant for M particles: action_dim * log 2 - log M.
double SoftValueOffset(int64_t action_dim, int64_t particles) {
  return static_cast<double>(action_dim) * std::log(2.0) -
         std::log(static_cast<double>(particles));
}

}  // namespace

torch::Tensor SoftValue(const torch::Tensor& q_particles, int64_t action_dim) {
  return torch::logsumexp(q_particles, /*dim=*/-1) +
         SoftValueOffset(action_dim, q_particles.size(-1));
}

torch::Tensor SoftTdTarget(const torch::Tensor& rewards,
                           const torch::Tensor& dones,
                           const torch::Tensor& next_value, double reward_scale,
                           double discount) {
  torch::NoGradGuard no_grad;
  // One fused multiply-add (on a GPU each elementwise operation is a kernel
  // launch), and rsub, since `1.0 - dones` in C++ is two operations (a fill and
  // a subtraction).
  return torch::addcmul(reward_scale * rewards, torch::rsub(dones, 1.0),
                        next_value.detach(), discount);
}

torch::Tensor CriticLoss(const torch::Tensor& q, const torch::Tensor& target) {
  return 0.5 * torch::mse_loss(q, target);
}

torch::Tensor CriticLossGradient(const torch::Tensor& q,
                                 const torch::Tensor& target) {
  torch::NoGradGuard no_grad;
  return (q.detach() - target) / static_cast<double>(q.size(0));
}

torch::Tensor WeightedCriticLoss(const torch::Tensor& q,
                                 const torch::Tensor& target,
                                 const torch::Tensor& weights) {
  const torch::Tensor root = weights.to(q.scalar_type()).sqrt();
  return CriticLoss(root * q, root * target);
}

torch::Tensor WeightedCriticLossGradient(const torch::Tensor& q,
                                         const torch::Tensor& target,
                                         const torch::Tensor& weights) {
  torch::NoGradGuard no_grad;
  return CriticLossGradient(q, target) * weights.to(q.scalar_type());
}

torch::Tensor ImportanceWeights(const torch::Tensor& probabilities,
                                double total_size, double beta) {
  torch::NoGradGuard no_grad;
  const torch::Tensor w =
      (probabilities.to(torch::kFloat64) * total_size).pow(-beta);
  return w / w.max();
}

double AnnealedBeta(double beta0, int64_t update, int64_t anneal_updates) {
  if (anneal_updates <= 0 || update >= anneal_updates) return 1.0;
  return beta0 + (1.0 - beta0) * static_cast<double>(update) /
                     static_cast<double>(anneal_updates);
}

torch::Tensor TdPriorities(const torch::Tensor& q, const torch::Tensor& target,
                           double epsilon) {
  torch::NoGradGuard no_grad;
  return ((target - q.detach()).abs() + epsilon).to(torch::kFloat32);
}

CriticGradient SoftCriticGradient(const torch::Tensor& q,
                                  const torch::Tensor& next_q,
                                  const torch::Tensor& rewards,
                                  const torch::Tensor& dones,
                                  int64_t action_dim, double reward_scale,
                                  double discount, bool fused) {
  torch::NoGradGuard no_grad;
  const torch::Tensor q_value = q.detach();
  if (fused && FusedSoftTdSupports(q_value, next_q, rewards, dones)) {
    FusedTd td = FusedSoftTd(q_value, next_q, rewards, dones,
                             SoftValueOffset(action_dim, next_q.size(-1)),
                             reward_scale, discount);
    return {std::move(td.target), std::move(td.q_gradient)};
  }
  torch::Tensor target = SoftTdTarget(
      rewards, dones, SoftValue(next_q, action_dim), reward_scale, discount);
  torch::Tensor q_gradient = CriticLossGradient(q_value, target);
  return {std::move(target), std::move(q_gradient)};
}

torch::Tensor SquashedScore(const torch::Tensor& q_gradient,
                            const torch::Tensor& actions) {
  torch::NoGradGuard no_grad;
  // The correction's gradient in closed form: three operations where
  // differentiating the log-density through autograd takes about a dozen.
  return torch::addcdiv(q_gradient, actions,
                        torch::rsub(actions.pow(2), 1.0 + 1e-6), -2.0);
}

RbfKernel AdaptiveRbfKernel(const torch::Tensor& fixed,
                            const torch::Tensor& updated) {
  torch::NoGradGuard no_grad;
  const int64_t batch = fixed.size(0);
  const int64_t k_fixed = fixed.size(1);
  const torch::Tensor diff =
      fixed.unsqueeze(2) - updated.unsqueeze(1);      // [B, Kx, Ky, D]
  const torch::Tensor dist_sq = diff.pow(2).sum(-1);  // [B, Kx, Ky]
  // The lower median (as torch::median gives): the ((n - 1) / 2 + 1)-th
  // smallest of each row, by selection (kthvalue), not by sorting the row (10x
  // the time on a CPU core).
  const torch::Tensor flat = dist_sq.reshape({batch, -1});
  const torch::Tensor median_sq =
      std::get<0>(flat.kthvalue((flat.size(1) - 1) / 2 + 1, /*dim=*/1));
  // -h = min(-median / log Kx, -1e-3): negated, so that kappa is one division
  // and exp.
  const torch::Tensor negative_h = torch::clamp_max(
      median_sq * (-1.0 / std::log(static_cast<double>(k_fixed))), -1e-3);
  RbfKernel k;
  k.kappa = torch::exp(dist_sq / negative_h.view({batch, 1, 1}));
  k.bandwidth = negative_h.neg();
  return k;
}

torch::Tensor SteinDirection(const RbfKernel& kernel,
                             const torch::Tensor& fixed,
                             const torch::Tensor& updated,
                             const torch::Tensor& grad_log_p, double scale,
                             double repulsion) {
  torch::NoGradGuard no_grad;
  // Summing the kernel's gradient over j in closed form (no [B, Kx, Ky, D]
  // tensor):
  //   sum_j grad_{x_j} kappa_ji = -2/h (sum_j kappa_ji x_j - y_i sum_j
  //   kappa_ji), so Kx * Delta = kappa^T (g - 2/h x) + 2/h * y * colsum(kappa):
  //   five operations. The repulsive term's two parts (-2/h x inside, the
  //   colsum term outside) are scaled by `repulsion`.
  const int64_t batch = fixed.size(0);
  const double k_fixed = static_cast<double>(fixed.size(1));
  const torch::Tensor h = kernel.bandwidth.view({batch, 1});
  if (repulsion == 0.0) {
    // bmm, not baddbmm with beta 0: on this LibTorch's CPU that returned NaN
    // now and then (8 of 300 runs of sql_learning_test's repulsion test).
    return torch::bmm(kernel.kappa.transpose(1, 2), grad_log_p)
        .mul_(scale / k_fixed);
  }
  const torch::Tensor pulled =
      torch::addcdiv(grad_log_p, fixed, h.unsqueeze(-1), -2.0 * repulsion);
  const torch::Tensor weight =
      kernel.kappa.sum(1) / h;  // [B, Ky]: colsum(kappa) / h
  return torch::baddbmm(
      updated * weight.unsqueeze(-1), kernel.kappa.transpose(1, 2), pulled,
      /*beta=*/2.0 * repulsion * scale / k_fixed, /*alpha=*/scale / k_fixed);
}

SvgdGradient SvgdLossGradient(const torch::Tensor& fixed,
                              const torch::Tensor& updated,
                              const torch::Tensor& grad_log_p,
                              const SvgdGradientOptions& options) {
  if (options.fused && options.repulsion == 1.0 &&
      FusedSteinSupports(fixed, updated, grad_log_p)) {
    FusedStein fused =
        FusedSteinDirection(fixed, updated, grad_log_p, /*scale=*/-1.0,
                            options.squashed, options.pad_fixed);
    return {std::move(fused.direction), std::move(fused.bandwidth)};
  }
  torch::NoGradGuard no_grad;
  const torch::Tensor score =
      options.squashed ? SquashedScore(grad_log_p, fixed) : grad_log_p;
  const RbfKernel kernel = AdaptiveRbfKernel(fixed, updated);
  torch::Tensor gradient = SteinDirection(kernel, fixed, updated, score,
                                          /*scale=*/-1.0, options.repulsion);
  if (options.pad_fixed) {
    gradient = torch::constant_pad_nd(
        gradient, {0, 0, fixed.size(1), 0});  // zero rows first
  }
  return {std::move(gradient), kernel.bandwidth};
}

SvgdGradient SelfSvgdLossGradient(const torch::Tensor& particles,
                                  const torch::Tensor& grad_log_p,
                                  bool squashed) {
  torch::NoGradGuard no_grad;
  const torch::Tensor score =
      squashed ? SquashedScore(grad_log_p, particles.detach()) : grad_log_p;
  return {score.neg(), torch::zeros({particles.size(0)}, particles.options())};
}

torch::Tensor SvgdSurrogate(const torch::Tensor& particles,
                            const torch::Tensor& loss_gradient) {
  // (A dot product: one operation where multiplying and summing are two.)
  return torch::dot(loss_gradient.detach().reshape({-1}),
                    particles.reshape({-1}));
}

}  // namespace softq::sql
