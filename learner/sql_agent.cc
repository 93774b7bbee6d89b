#include "learner/sql_agent.h"

#include "absl/strings/str_cat.h"
#include "common/flags.h"
#include "learner/sql_math.h"

namespace softq {

int64_t MovedParticles(int64_t kernel_particles, double kernel_update_ratio) {
  return static_cast<int64_t>(static_cast<double>(kernel_particles) *
                              kernel_update_ratio);
}

namespace {

// SVGD moves at least one particle and keeps at least two: with one kept
// particle the bandwidth's median heuristic divides by log(1) = 0.
absl::Status CheckParticleSplit(int64_t kernel_particles,
                                double kernel_update_ratio) {
  const int64_t moved = MovedParticles(kernel_particles, kernel_update_ratio);
  if (moved >= 1 && kernel_particles - moved >= 2) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      "--kernel_update_ratio=", kernel_update_ratio, ": moves ", moved,
      " of --kernel_particles=", kernel_particles, " and keeps ",
      kernel_particles - moved, "; SVGD needs at least 1 moved and 2 kept"));
}

}  // namespace

absl::Status ValidateSqlConfig(const SqlConfig& c) {
  absl::Status hidden_ok = absl::OkStatus();
  for (int64_t width : c.hidden) {
    if (width < 1)
      hidden_ok = FlagAtLeast("hidden", static_cast<double>(width), 1);
  }
  return CheckFlags({
      FlagInRange("observation_dim", c.observation_dim, 1, 4096),
      FlagInRange("action_dim", c.action_dim, 1, 256),
      hidden_ok,
      // 0 freezes the network: a negative control of the learning checks.
      FlagInRange("q_learning_rate", c.q_learning_rate, 0.0, 1.0),
      FlagInRange("policy_learning_rate", c.policy_learning_rate, 0.0, 1.0),
      FlagInRange("discount", c.discount, 0.0, 1.0),
      FlagInRange("reward_scale", c.reward_scale, 1e-9, 1e9),
      FlagInRange("value_particles", c.value_particles, 1, 1 << 16),
      FlagInRange("kernel_particles", c.kernel_particles, 2, 1 << 12),
      FlagInRange("kernel_update_ratio", c.kernel_update_ratio, 1e-6,
                  1.0 - 1e-6),
      CheckParticleSplit(c.kernel_particles, c.kernel_update_ratio),
      FlagAtLeast("target_update_interval", c.target_update_interval, 1),
      FlagInRange("target_tau", c.target_tau, 1e-6, 1.0),
      FlagInRange("svgd_repulsion", c.svgd_repulsion, 0.0, 100.0),
      c.algorithm == Algorithm::kDdpg && c.svgd_repulsion != 1.0
          ? absl::InvalidArgumentError(
                absl::StrCat("--svgd_repulsion=", c.svgd_repulsion,
                             ": DDPG has no SVGD step (--algorithm=sql only)"))
          : absl::OkStatus(),
  });
}

namespace {

// `module`, moved to `device` (the optimizers are built over the moved
// parameters).
template <typename ModuleHolder>
ModuleHolder OnDevice(ModuleHolder module, torch::Device device) {
  module->to(device);
  return module;
}

}  // namespace

SqlAgent::SqlAgent(const SqlConfig& config, torch::Device device)
    : config_(config),
      device_(device),
      q_(OnDevice(
          QNetwork(config.observation_dim, config.action_dim, config.hidden),
          device)),
      q_target_(OnDevice(
          QNetwork(config.observation_dim, config.action_dim, config.hidden),
          device)),
      policy_(OnDevice(SamplingNetwork(config.observation_dim,
                                       config.action_dim, config.hidden),
                       device)),
      policy_target_(OnDevice(SamplingNetwork(config.observation_dim,
                                              config.action_dim, config.hidden),
                              device)),
      q_optimizer_(q_->parameters(), config.q_learning_rate),
      policy_optimizer_(policy_->parameters(), config.policy_learning_rate) {
  one_ = torch::ones({}, torch::TensorOptions().device(device));
  CopyParameters(*q_, *q_target_);
  CopyParameters(*policy_, *policy_target_);
  for (auto& p : q_target_->parameters()) p.set_requires_grad(false);
  for (auto& p : policy_target_->parameters()) p.set_requires_grad(false);
}

UpdateNoise SqlAgent::DrawNoise(int64_t batch_size) const {
  const auto options = torch::TensorOptions().device(device_);
  UpdateNoise noise;
  noise.value_actions =
      torch::empty({config_.value_particles, config_.action_dim}, options)
          .uniform_(-1.0, 1.0);
  noise.policy_noise = torch::randn(
      {batch_size, config_.kernel_particles, config_.action_dim}, options);
  return noise;
}

torch::Tensor SqlAgent::NextQParticles(const TransitionTensors& batch,
                                       const torch::Tensor& value_actions) {
  torch::NoGradGuard no_grad;
  const int64_t b = batch.observations.size(0);
  const int64_t m = value_actions.size(0);
  const torch::Tensor next_obs = batch.next_observations.unsqueeze(1).expand(
      {b, m, batch.next_observations.size(1)});
  const torch::Tensor actions =
      value_actions.unsqueeze(0).expand({b, m, config_.action_dim});
  return q_target_->forward(next_obs, actions);
}

torch::Tensor SqlAgent::CriticTarget(const TransitionTensors& batch,
                                     const torch::Tensor& value_actions) {
  torch::NoGradGuard no_grad;
  const torch::Tensor next_value =
      config_.algorithm == Algorithm::kDdpg
          ? q_target_->forward(
                batch.next_observations,
                DeterministicAction(policy_target_, batch.next_observations))
          : sql::SoftValue(NextQParticles(batch, value_actions),
                           config_.action_dim);
  return sql::SoftTdTarget(batch.rewards, batch.dones, next_value,
                           config_.reward_scale, config_.discount);
}

torch::Tensor SqlAgent::CriticLoss(const TransitionTensors& batch,
                                   const torch::Tensor& value_actions,
                                   UpdateMetricTensors* metrics) {
  const torch::Tensor target = CriticTarget(batch, value_actions);
  const torch::Tensor q = q_->forward(batch.observations, batch.actions);
  if (metrics != nullptr) {
    metrics->q = q.detach();
    metrics->target = target;
  }
  return sql::CriticLoss(q, target);
}

AmortizedSvgdStep AmortizedSvgd(SamplingNetwork& policy, const Score& score,
                                const torch::Tensor& observations,
                                const torch::Tensor& policy_noise,
                                double update_ratio, const SvgdOptions& options,
                                MlpActivations* keep) {
  const int64_t b = observations.size(0);
  const int64_t k = policy_noise.size(1);
  const int64_t k_fixed = k - MovedParticles(k, update_ratio);
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

namespace {

double Mean(const torch::Tensor& t) {
  return t.defined() ? t.mean().item<double>() : 0.0;
}

}  // namespace

UpdateMetrics ReduceMetrics(const UpdateMetricTensors& m) {
  UpdateMetrics out;
  if (m.q.defined() && m.target.defined()) {
    out.critic_loss = sql::CriticLoss(m.q, m.target).item<double>();
  }
  out.mean_q = Mean(m.q);
  out.mean_target = Mean(m.target);
  if (m.policy_loss.defined()) {
    out.policy_surrogate = m.policy_loss.item<double>();
  } else if (m.svgd_particles.defined()) {
    out.policy_surrogate =
        sql::SvgdSurrogate(m.svgd_particles, m.svgd_loss_gradient)
            .item<double>();
  }
  out.kernel_bandwidth = Mean(m.kernel_bandwidth);
  return out;
}

Score SqlAgent::SoftQScore() {
  QNetwork& q = q_;
  return [&q](const torch::Tensor& obs, const torch::Tensor& actions) {
    return q->ActionGradient(obs, actions);
  };
}

SvgdOptions SqlAgent::SoftQSvgdOptions() const {
  SvgdOptions options;
  options.squashed_score = true;
  // On a GPU an update costs its kernel launches, not its arithmetic: one
  // forward pass.
  options.one_forward_pass = device_.is_cuda();
  options.fused_kernel = config_.fused_kernels;
  options.repulsion = config_.svgd_repulsion;
  return options;
}

torch::Tensor SqlAgent::DdpgPolicyLoss(const torch::Tensor& observations) {
  return -q_->forward(observations, DeterministicAction(policy_, observations))
              .mean();
}

torch::Tensor SqlAgent::PolicySurrogate(const torch::Tensor& observations,
                                        const torch::Tensor& policy_noise) {
  if (config_.algorithm == Algorithm::kDdpg)
    return DdpgPolicyLoss(observations);
  return AmortizedSvgdLoss(policy_, SoftQScore(), observations, policy_noise,
                           config_.kernel_update_ratio, nullptr,
                           SoftQSvgdOptions());
}

void SqlAgent::Update(const TransitionTensors& batch) {
  Update(batch, DrawNoise(batch.observations.size(0)));
}

UpdateMetrics SqlAgent::LastMetrics() const { return ReduceMetrics(last_); }

void SqlAgent::Update(const TransitionTensors& batch,
                      const UpdateNoise& noise) {
  StepNetworks(BatchOnDevice(batch), noise);
  FinishUpdate();
}

TransitionTensors SqlAgent::BatchOnDevice(
    const TransitionTensors& host_batch) const {
  if (host_batch.packed.defined() && host_batch.packed.device() != device_) {
    return PackedTransitions(
        host_batch.packed.to(device_, /*non_blocking=*/true),
        config_.observation_dim, config_.action_dim);
  }
  TransitionTensors batch = host_batch;
  if (batch.observations.device() != device_) {
    batch.packed = torch::Tensor();
    batch.observations = batch.observations.to(device_, /*non_blocking=*/true);
    batch.actions = batch.actions.to(device_, true);
    batch.rewards = batch.rewards.to(device_, true);
    batch.next_observations = batch.next_observations.to(device_, true);
    batch.dones = batch.dones.to(device_, true);
  }
  return batch;
}

void SqlAgent::StepNetworks(const TransitionTensors& batch,
                            const UpdateNoise& noise) {
  PolicyGradients(batch, noise);
  CriticGradients(batch, noise);
  q_optimizer_.Step();
  policy_optimizer_.Step();
}

void SqlAgent::PolicyGradients(const TransitionTensors& batch,
                               const UpdateNoise& noise, SideWork* aside) {
  policy_optimizer_.ZeroGrad();
  if (config_.algorithm == Algorithm::kDdpg) {
    const torch::Tensor loss = DdpgPolicyLoss(batch.observations);
    last_.policy_loss = loss.detach();
    loss.backward(one_);
    return;
  }
  // The backward pass from the surrogate's gradient (no surrogate formed),
  // written out into the optimizer's gradient slots: no autograd graph, no
  // gradients gathered at the step.
  MlpActivations kept;
  const AmortizedSvgdStep step = AmortizedSvgd(
      policy_, SoftQScore(), batch.observations, noise.policy_noise,
      config_.kernel_update_ratio, SoftQSvgdOptions(), &kept);
  last_.svgd_particles = step.particles;
  last_.svgd_loss_gradient = step.loss_gradient;
  last_.kernel_bandwidth = step.bandwidth;
  SideWork at_once;
  policy_->ParameterGradients(kept, step.particles, step.loss_gradient,
                              policy_optimizer_.GradientSlots(),
                              aside != nullptr ? *aside : at_once);
}

void SqlAgent::CriticGradients(const TransitionTensors& batch,
                               const UpdateNoise& noise, SideWork* aside) {
  // Under kDdpg the policy's backward pass ran through Q and left gradients on
  // Q's parameters: dropped here.
  q_optimizer_.ZeroGrad();
  if (config_.algorithm == Algorithm::kDdpg) {
    const torch::Tensor q = q_->forward(batch.observations, batch.actions);
    const torch::Tensor target = CriticTarget(batch, noise.value_actions);
    last_.q = q.detach();
    last_.target = target;
    q.backward(sql::CriticLossGradient(q, target));
    return;
  }
  // J_Q's gradient with respect to q seeds the backward pass, written out as
  // the policy's (no autograd graph; straight into the optimizer's gradient
  // slots). J_Q itself is never formed (ReduceMetrics computes it from q and
  // the target when asked).
  MlpActivations kept;
  const torch::Tensor q =
      q_->ForwardKeeping(batch.observations, batch.actions, &kept);
  const sql::CriticGradient step = sql::SoftCriticGradient(
      q, NextQParticles(batch, noise.value_actions), batch.rewards, batch.dones,
      config_.action_dim, config_.reward_scale, config_.discount,
      config_.fused_kernels);
  last_.q = q;
  last_.target = step.target;
  SideWork at_once;
  q_->ParameterGradients(kept, step.q_gradient, q_optimizer_.GradientSlots(),
                         aside != nullptr ? *aside : at_once);
}

void SqlAgent::FinishUpdate() {
  ++step_;
  const bool ddpg = config_.algorithm == Algorithm::kDdpg;
  if (config_.target_tau < 1.0) {
    CopyParameters(*q_, *q_target_, config_.target_tau);
    if (ddpg) CopyParameters(*policy_, *policy_target_, config_.target_tau);
  } else if (step_ % config_.target_update_interval == 0) {
    CopyParameters(*q_, *q_target_);
    if (ddpg) CopyParameters(*policy_, *policy_target_);
  }
}

NamedTensors SqlAgent::PolicyParameters() const {
  // One copy to the host for all of them (on a GPU one wait for the device, not
  // one per tensor), then each a view of its stretch of that copy.
  const auto named = policy_->named_parameters();
  std::vector<torch::Tensor> pieces;
  for (const auto& item : named)
    pieces.push_back(item.value().detach().reshape({-1}));
  const torch::Tensor host = torch::cat(pieces).to(torch::kCPU);
  NamedTensors params;
  int64_t offset = 0;
  for (const auto& item : named) {
    const int64_t n = item.value().numel();
    params.emplace_back(item.key(),
                        host.narrow(0, offset, n).view(item.value().sizes()));
    offset += n;
  }
  return params;
}

}  // namespace softq
