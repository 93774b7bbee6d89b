// SqlAgent: the Soft Q-Learning update step. Owns the Q network, its target
// copy, the sampling network (and its target copy, used by the DDPG baseline)
// and both Adam optimizers; one Update() is one critic step (soft Q) and one
// amortized-SVGD step of the sampling network, both from the same pre-update
// parameters, as in the authors' code. With Algorithm::kDdpg the same networks
// train as DDPG instead (see SqlConfig::algorithm; its update is in
// ddpg_update.cc). The loss builders are public so tests can check them
// against an independent implementation. An update whose losses or gradients
// are not all finite is skipped on the device (no host branch: the same in a
// CUDA graph): networks and optimizer state stay as they were, and Skipped()
// counts it and says why. Not thread-safe: one caller at a time.
//
// The configuration and its checks: sql_config.h; the SVGD step:
// amortized_svgd.h; the copy of parameters to the host: host_parameters.h.
#ifndef SOFTQ_LEARNER_SQL_AGENT_H_
#define SOFTQ_LEARNER_SQL_AGENT_H_

#include <torch/types.h>

#include <string>

#include "common/tensor_codec.h"
#include "learner/amortized_svgd.h"
#include "learner/flat_adam.h"
#include "learner/sql_config.h"
#include "policy/networks.h"

namespace softq {

// Scalars of one update, for logging.
struct UpdateMetrics {
  double critic_loss = 0;
  double mean_q = 0;
  double mean_target = 0;
  double policy_surrogate = 0;
  double kernel_bandwidth = 0;
};

// What an update leaves for those scalars, on the agent's device and unreduced:
// views of its own results, so recording them launches nothing (in a CUDA
// graph, no kernel per update); ReduceMetrics reduces them and synchronizes
// with the device. Undefined: 0.
struct UpdateMetricTensors {
  torch::Tensor q,
      target;  // [B]: mean_q, mean_target, and critic_loss = J_Q(q, target)
  // The policy's objective: 0-d under kDdpg; under kSql the surrogate
  // sum(svgd_loss_gradient * svgd_particles) (AmortizedSvgd).
  torch::Tensor policy_loss, svgd_particles, svgd_loss_gradient;
  torch::Tensor kernel_bandwidth;  // [B]: its mean
};
UpdateMetrics ReduceMetrics(const UpdateMetricTensors& metrics);

// What made an update non-finite: bits of SkippedUpdates::last_cause.
enum NonFiniteCause : int {
  kNonFiniteCriticLoss = 1,
  kNonFiniteCriticGradient = 2,
  kNonFinitePolicyLoss = 4,
  kNonFinitePolicyGradient = 8,
};
// "critic loss, critic gradient" for those bits ("none" for 0).
std::string NonFiniteCauses(int cause);

// The updates an agent skipped because a loss or a gradient was not finite
// (the critic's loss J_Q, the policy's objective, and either network's
// gradients are checked; one of them non-finite skips both networks' steps).
struct SkippedUpdates {
  int64_t total = 0;        // since the agent was made
  int64_t consecutive = 0;  // since its last applied update
  int last_cause = 0;       // the last skipped update's NonFiniteCause bits
  int64_t last_step = 0;    // that update's number (step() just after it)
};

// The random draws of one update: value_actions [M, D] uniform in [-1, 1]
// (shared by the batch, as in the reference), policy_noise [B, K, D] standard
// normal.
struct UpdateNoise {
  torch::Tensor value_actions;
  torch::Tensor policy_noise;
};

class SqlAgent {
 public:
  SqlAgent(const SqlConfig& config, torch::Device device = torch::kCPU);

  // One update on `batch` (any device; moved to the agent's, asynchronously
  // from pinned memory). Draws its own noise.
  void Update(const TransitionTensors& batch);
  void Update(const TransitionTensors& batch, const UpdateNoise& noise);
  // Prioritized replay: importance weights [B] (any device and floating type)
  // for the critic's loss of the following eager updates
  // (sql::WeightedCriticLoss), until set again; undefined: unweighted. A
  // CudaGraphUpdate sets its own (its Update's critic_weights) on every update.
  void SetCriticWeights(const torch::Tensor& weights);
  // The last update's unreduced metric tensors (q and the TD target [B] on the
  // device, among others); undefined before the first update.
  const UpdateMetricTensors& LastMetricTensors() const { return last_; }
  // Scalars of the last update (synchronizes with the device); zeros before the
  // first. A skipped update's are those it computed (non-finite ones).
  UpdateMetrics LastMetrics() const;
  // The updates skipped so far (reads the device's counters: synchronizes).
  SkippedUpdates Skipped() const;
  UpdateNoise DrawNoise(int64_t batch_size) const;

  // J_Q for `batch` with the given proposal actions; gradients flow into q()
  // only.
  torch::Tensor CriticLoss(const TransitionTensors& batch,
                           const torch::Tensor& value_actions,
                           UpdateMetricTensors* metrics = nullptr);
  // The policy objective for `observations` [B, O]: under kSql the SVGD
  // surrogate with noise [B, K, D]; under kDdpg -mean Q(s, f_phi(0; s)) (noise
  // unused). Gradients may reach q()'s parameters under kDdpg: Update() clears
  // them before the critic's backward pass.
  torch::Tensor PolicySurrogate(const torch::Tensor& observations,
                                const torch::Tensor& policy_noise);

  // StepNetworks' two halves before the optimizer steps (Update runs them in
  // this order): each sets its network's gradients (the policy's, then Q's) and
  // records its metrics. They see the same pre-update parameters. Under kSql
  // they are independent on the device: the policy's reads Q's parameters and
  // writes the policy's gradients; the critic's reads them too and writes Q's.
  // So they may run concurrently (CudaGraphUpdate's two streams) as long as Q's
  // step waits for the policy's half. Under kDdpg the policy's backward pass
  // also adds into Q's gradients, which the critic's then drops: in order.
  // Under kSql both backward passes are written out
  // (MlpImpl::ParameterGradients) into the optimizers' gradient slots; `aside`
  // (default: at once) runs the layers' weight and bias gradients that the rest
  // of the pass does not wait for. Join it before the optimizer's step.
  void PolicyGradients(const TransitionTensors& device_batch,
                       const UpdateNoise& noise, SideWork* aside = nullptr);
  void CriticGradients(const TransitionTensors& device_batch,
                       const UpdateNoise& noise, SideWork* aside = nullptr);

  QNetwork& q() { return q_; }
  QNetwork& q_target() { return q_target_; }
  SamplingNetwork& policy() { return policy_; }
  SamplingNetwork& policy_target() { return policy_target_; }
  FlatAdam& q_optimizer() { return q_optimizer_; }
  FlatAdam& policy_optimizer() { return policy_optimizer_; }
  const SqlConfig& config() const { return config_; }
  torch::Device device() const { return device_; }
  // Updates done so far, skipped ones included (restored from checkpoints by
  // the learner). The target networks follow their schedule on skipped updates
  // too, from the unchanged networks, and so does the annealing.
  int64_t step() const { return step_; }
  void set_step(int64_t step) {
    step_ = step;
    scheduled_ = ScheduleAt(config_, step_);
  }
  // The reward scale (1 / alpha) and the SVGD particle count K the next eager
  // update uses and DrawNoise draws for: ScheduleAt(config(), step()), which
  // is config()'s reward_scale and kernel_particles without a schedule
  // (SqlConfig::anneal_updates). A CudaGraphUpdate replays the values of the
  // update it captured and does not follow a schedule (learner_setup.h's
  // ChooseCudaGraph refuses the two together).
  const ScheduledValues& scheduled() const { return scheduled_; }

  // A copy of the sampling network's parameters on the CPU, for publication to
  // actors (views of one host tensor, made by one device-to-host copy).
  NamedTensors PolicyParameters() const;

 private:
  friend class CudaGraphUpdate;  // replays StepNetworks as a CUDA graph

  // `batch` on the agent's device (asynchronous copies from pinned memory).
  TransitionTensors BatchOnDevice(const TransitionTensors& batch) const;
  // The device part of an update: both losses, both backward passes, the
  // finiteness checks, both Adam steps (skipped together on a non-finite
  // check), the metric tensors. No host synchronization and no host state that
  // changes from call to call, so a CUDA graph can capture it.
  void StepNetworks(const TransitionTensors& device_batch,
                    const UpdateNoise& noise);
  // The finiteness checks of an update, on the device, after its halves (each
  // after its half's gradients are complete, on that half's stream): the
  // critic's loss and Q's gradients, the policy's objective and its gradients.
  // RecordChecks, after both, sets skip_ (1: skip both steps) and the counters
  // Skipped() reads. Then q_optimizer_.Step(skip_),
  // policy_optimizer_.Step(skip_).
  void CheckCriticHalf();
  void CheckPolicyHalf();
  void RecordChecks();
  // The score of the policy's target under kSql, without the squashing's term
  // (SoftQSvgdOptions adds it): Q's action gradient.
  Score SoftQScore();
  // Q's target at the M value particles for each next observation, [B, M]
  // (kSql).
  torch::Tensor NextQParticles(const TransitionTensors& batch,
                               const torch::Tensor& value_actions);
  // The critic's TD target y [B], no gradient.
  torch::Tensor CriticTarget(const TransitionTensors& batch,
                             const torch::Tensor& value_actions);
  // kSql's SVGD step, computed as this agent's device prefers.
  SvgdOptions SoftQSvgdOptions() const;
  // kDdpg (ddpg_update.cc): the next state's value Q'(s', mu'(s')) [B], no
  // gradient; the policy objective -mean Q(s, f_phi(0; s)); and the two halves
  // of StepNetworks (PolicyGradients, CriticGradients; optimizers zeroed).
  torch::Tensor DdpgNextValue(const TransitionTensors& batch);
  torch::Tensor DdpgPolicyLoss(const torch::Tensor& observations);
  void DdpgPolicyGradients(const TransitionTensors& device_batch);
  void DdpgCriticGradients(const TransitionTensors& device_batch,
                           const UpdateNoise& noise);
  // The host part: counts the update, refreshes the target networks when
  // due and moves the annealing on.
  void FinishUpdate();

  SqlConfig config_;
  torch::Device device_;
  QNetwork q_;
  QNetwork q_target_;
  SamplingNetwork policy_;
  SamplingNetwork
      policy_target_;  // read by kDdpg only; kept in step with q_target_
  FlatAdam q_optimizer_;
  FlatAdam policy_optimizer_;
  int64_t step_ = 0;
  ScheduledValues scheduled_;  // ScheduleAt(config_, step_)
  UpdateMetricTensors last_;
  torch::Tensor critic_weights_;  // [B] float32 on the device, or undefined
  torch::Tensor
      one_;  // 1: seeds kDdpg's policy backward pass (saves a fill per update)
  // On the device. checks_: bool [4], the last update's checks in
  // NonFiniteCause's order, true where finite; cause_bits_: float64 [4], those
  // bits. skip_: 0-d float32, 1 when the last update was skipped (FlatAdam's
  // found_inf). skipped_: float64 [5]: total, consecutive, last cause, the
  // last skipped update's index, updates run (indices count from 1 in this
  // agent's life).
  torch::Tensor checks_, cause_bits_, skip_, skipped_;
};

}  // namespace softq

#endif  // SOFTQ_LEARNER_SQL_AGENT_H_
