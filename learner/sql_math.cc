#include "learner/sql_math.h"

#include <cmath>

#include <torch/torch.h>

namespace softq::sql {

torch::Tensor SoftValue(const torch::Tensor& q_particles, int64_t action_dim) {
  const int64_t m = q_particles.size(-1);
  return torch::logsumexp(q_particles, /*dim=*/-1) +
         (static_cast<double>(action_dim) * std::log(2.0) - std::log(static_cast<double>(m)));
}

torch::Tensor SoftTdTarget(const torch::Tensor& rewards, const torch::Tensor& dones,
                           const torch::Tensor& next_value, double reward_scale,
                           double discount) {
  torch::NoGradGuard no_grad;
  // (One fused multiply-add: on a GPU each elementwise operation is a kernel launch.)
  return torch::addcmul(reward_scale * rewards, 1.0 - dones, next_value.detach(), discount);
}

torch::Tensor CriticLoss(const torch::Tensor& q, const torch::Tensor& target) {
  return 0.5 * torch::mse_loss(q, target);
}

torch::Tensor SquashCorrection(const torch::Tensor& actions) {
  return torch::log(1.0 - actions.pow(2) + 1e-6).sum(-1);
}

RbfKernel AdaptiveRbfKernel(const torch::Tensor& fixed, const torch::Tensor& updated) {
  torch::NoGradGuard no_grad;
  const int64_t batch = fixed.size(0);
  const int64_t k_fixed = fixed.size(1);
  const torch::Tensor diff = fixed.unsqueeze(2) - updated.unsqueeze(1);  // [B, Kx, Ky, D]
  const torch::Tensor dist_sq = diff.pow(2).sum(-1);                     // [B, Kx, Ky]
  // The lower median (as torch::median gives) by sorting each row: median(dim) on the CPU
  // loops over rows in 1.13, which costs more than the rest of the kernel together.
  const torch::Tensor flat = dist_sq.reshape({batch, -1});
  const torch::Tensor median_sq =
      std::get<0>(flat.sort(/*dim=*/1)).select(1, (flat.size(1) - 1) / 2);
  const torch::Tensor h =
      torch::clamp_min(median_sq / std::log(static_cast<double>(k_fixed)), 1e-3);
  const torch::Tensor h3 = h.view({batch, 1, 1});
  RbfKernel k;
  k.kappa = torch::exp(-dist_sq / h3);
  k.grad_x = -2.0 * diff / h3.unsqueeze(-1) * k.kappa.unsqueeze(-1);
  k.bandwidth = h;
  return k;
}

torch::Tensor SteinDirection(const RbfKernel& kernel, const torch::Tensor& grad_log_p) {
  torch::NoGradGuard no_grad;
  // sum_j kappa[b, j, i] * g[b, j, :] as a batched matmul: [B, Ky, Kx] @ [B, Kx, D].
  const double k_fixed = static_cast<double>(kernel.kappa.size(1));
  const torch::Tensor attraction = torch::bmm(kernel.kappa.transpose(1, 2), grad_log_p);
  const torch::Tensor repulsion = kernel.grad_x.sum(1);
  return (attraction + repulsion) / k_fixed;
}

torch::Tensor SvgdSurrogateLoss(const torch::Tensor& updated_actions,
                                const torch::Tensor& direction) {
  return -(direction.detach() * updated_actions).sum();
}

}  // namespace softq::sql
