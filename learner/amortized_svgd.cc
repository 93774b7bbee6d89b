#include "learner/amortized_svgd.h"

#include "learner/sql_config.h"
#include "learner/sql_math.h"

namespace softq {

AmortizedSvgdStep AmortizedSvgd(SamplingNetwork& policy, const Score& score,
                                const torch::Tensor& observations,
                                const torch::Tensor& policy_noise,
                                double update_ratio, const SvgdOptions& options,
                                MlpActivations* keep) {
  const int64_t b = observations.size(0);
  const int64_t k = policy_noise.size(1);
  const int64_t k_fixed = SplitParticles(k, update_ratio).fixed;
  const torch::Tensor obs =
      observations.unsqueeze(1).expand({b, k, observations.size(1)});
  const torch::Tensor obs_fixed = obs.slice(1, 0, k_fixed);
  torch::Tensor fixed, updated, particles;
  // The pass whose particles the gradient flows back through: recorded, or
  // kept.
  const auto pass = [&policy, keep](const torch::Tensor& o,
                                    const torch::Tensor& n) {
    return keep != nullptr ? policy->ForwardKeeping(o, n, keep)
                           : policy->forward(o, n);
  };
  if (k_fixed == 0) {
    // Fewer than 3 particles: each moves along its own score (the kernel's
    // self term), one pass either way.
    particles = pass(obs, policy_noise);
    const torch::Tensor at = particles.detach();
    sql::SvgdGradient gradient =
        sql::SelfSvgdLossGradient(at, score(obs, at), options.squashed_score);
    return {std::move(particles), std::move(gradient.loss_gradient),
            std::move(gradient.bandwidth)};
  }
  if (options.one_forward_pass) {
    particles = pass(obs, policy_noise);
    fixed = particles.slice(1, 0, k_fixed).detach();
    updated = particles.slice(1, k_fixed);
  } else {
    // The fixed particles need no graph through the policy: drawn without one,
    // they halve the backward pass.
    {
      torch::NoGradGuard no_grad;
      fixed = policy->forward(obs_fixed, policy_noise.slice(1, 0, k_fixed));
    }
    updated = pass(obs.slice(1, k_fixed), policy_noise.slice(1, k_fixed));
    particles = updated;
  }
  sql::SvgdGradientOptions gradient_options;
  gradient_options.squashed = options.squashed_score;
  gradient_options.pad_fixed =
      options.one_forward_pass;  // no slice in the backward pass
  gradient_options.fused = options.fused_kernel;
  gradient_options.repulsion = options.repulsion;
  sql::SvgdGradient gradient = sql::SvgdLossGradient(
      fixed, updated.detach(), score(obs_fixed, fixed), gradient_options);
  return {std::move(particles), std::move(gradient.loss_gradient),
          std::move(gradient.bandwidth)};
}

torch::Tensor AmortizedSvgdLoss(SamplingNetwork& policy, const Score& score,
                                const torch::Tensor& observations,
                                const torch::Tensor& policy_noise,
                                double update_ratio, torch::Tensor* bandwidth,
                                const SvgdOptions& options) {
  const AmortizedSvgdStep step = AmortizedSvgd(
      policy, score, observations, policy_noise, update_ratio, options);
  if (bandwidth != nullptr) *bandwidth = step.bandwidth.mean();
  return sql::SvgdSurrogate(step.particles, step.loss_gradient);
}

}  // namespace softq
