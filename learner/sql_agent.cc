#include "learner/sql_agent.h"

#include <utility>

#include "learner/host_parameters.h"
#include "learner/sql_math.h"

namespace softq {

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
      policy_optimizer_(policy_->parameters(), config.policy_learning_rate),
      scheduled_(ScheduleAt(config, 0)) {
  const auto on_device = torch::TensorOptions().device(device);
  one_ = torch::ones({}, on_device);
  checks_ = torch::ones({4}, on_device.dtype(torch::kBool));
  cause_bits_ = torch::tensor({1.0, 2.0, 4.0, 8.0}, torch::kFloat64).to(device);
  skip_ = torch::zeros({}, on_device);
  skipped_ = torch::zeros({5}, on_device.dtype(torch::kFloat64));
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
      {batch_size, scheduled_.kernel_particles, config_.action_dim}, options);
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
          ? DdpgNextValue(batch)
          : sql::SoftValue(NextQParticles(batch, value_actions),
                           config_.action_dim);
  return sql::SoftTdTarget(batch.rewards, batch.dones, next_value,
                           scheduled_.reward_scale, config_.discount);
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
  CheckPolicyHalf();
  CheckCriticHalf();
  RecordChecks();
  q_optimizer_.Step(skip_);
  policy_optimizer_.Step(skip_);
}

void SqlAgent::CheckCriticHalf() {
  torch::NoGradGuard no_grad;
  checks_.narrow(0, 0, 2).copy_(
      torch::stack({torch::isfinite(sql::CriticLoss(last_.q, last_.target)),
                    q_optimizer_.GradientsFinite()}));
}

void SqlAgent::CheckPolicyHalf() {
  torch::NoGradGuard no_grad;
  const torch::Tensor loss =
      config_.algorithm == Algorithm::kDdpg
          ? last_.policy_loss
          : sql::SvgdSurrogate(last_.svgd_particles, last_.svgd_loss_gradient);
  checks_.narrow(0, 2, 2).copy_(torch::stack(
      {torch::isfinite(loss), policy_optimizer_.GradientsFinite()}));
}

void SqlAgent::RecordChecks() {
  torch::NoGradGuard no_grad;
  const torch::Tensor failed = checks_.logical_not();
  const torch::Tensor skip = failed.any();
  skip_.copy_(skip);
  // skipped_ = [total, consecutive, last cause, last skipped index, updates].
  const torch::Tensor bad = skip.to(torch::kFloat64);
  const torch::Tensor updates = skipped_[4] + 1;
  skipped_.copy_(torch::stack(
      {skipped_[0] + bad, (skipped_[1] + 1) * bad,
       torch::where(skip, (failed * cause_bits_).sum(), skipped_[2]),
       torch::where(skip, updates, skipped_[3]), updates}));
}

SkippedUpdates SqlAgent::Skipped() const {
  const torch::Tensor host = skipped_.cpu();
  const auto v = host.accessor<double, 1>();
  SkippedUpdates out;
  out.total = static_cast<int64_t>(v[0]);
  out.consecutive = static_cast<int64_t>(v[1]);
  out.last_cause = static_cast<int>(v[2]);
  // step_ and the update index advance together: the last skipped update was
  // (updates - its index) updates ago.
  if (out.total > 0) out.last_step = step_ - static_cast<int64_t>(v[4] - v[3]);
  return out;
}

std::string NonFiniteCauses(int cause) {
  std::string out;
  for (const auto& [bit, name] :
       {std::pair{kNonFiniteCriticLoss, "critic loss"},
        std::pair{kNonFiniteCriticGradient, "critic gradient"},
        std::pair{kNonFinitePolicyLoss, "policy loss"},
        std::pair{kNonFinitePolicyGradient, "policy gradient"}}) {
    if ((cause & bit) == 0) continue;
    if (!out.empty()) out += ", ";
    out += name;
  }
  return out.empty() ? "none" : out;
}

void SqlAgent::PolicyGradients(const TransitionTensors& batch,
                               const UpdateNoise& noise, SideWork* aside) {
  policy_optimizer_.ZeroGrad();
  if (config_.algorithm == Algorithm::kDdpg) {
    DdpgPolicyGradients(batch);
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
    DdpgCriticGradients(batch, noise);
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
      config_.action_dim, scheduled_.reward_scale, config_.discount,
      config_.fused_kernels);
  last_.q = q;
  last_.target = step.target;
  // Prioritized replay: dJ_Q/dq of the weighted loss,
  // sql::WeightedCriticLossGradient (q_gradient is (q - y) / B).
  const torch::Tensor q_gradient = critic_weights_.defined()
                                       ? step.q_gradient * critic_weights_
                                       : step.q_gradient;
  SideWork at_once;
  q_->ParameterGradients(kept, q_gradient, q_optimizer_.GradientSlots(),
                         aside != nullptr ? *aside : at_once);
}

void SqlAgent::SetCriticWeights(const torch::Tensor& weights) {
  critic_weights_ = weights.defined() ? weights.to(device_, torch::kFloat32,
                                                   /*non_blocking=*/false)
                                      : torch::Tensor();
}

void SqlAgent::FinishUpdate() {
  ++step_;
  scheduled_ = ScheduleAt(config_, step_);
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
  return ParametersOnHost(*policy_);
}

}  // namespace softq
