// SqlAgent: the Soft Q-Learning update step. Owns the Q network, its target
// copy, the sampling network (and its target copy, used by the DDPG baseline)
// and both Adam optimizers; one Update() is one critic step (soft Q) and one
// amortized-SVGD step of the sampling network, both from the same pre-update
// parameters, as in the authors' code. With Algorithm::kDdpg the same networks
// train as DDPG instead (see SqlConfig::algorithm). The loss builders are
// public so tests can check them against an independent implementation. Not
// thread-safe: one caller at a time.
#ifndef SOFTQ_LEARNER_SQL_AGENT_H_
#define SOFTQ_LEARNER_SQL_AGENT_H_

#include <torch/torch.h>

#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "common/tensor_codec.h"
#include "learner/flat_adam.h"
#include "policy/networks.h"

namespace softq {

// kSql: soft Q-learning with amortized SVGD (the paper). kDdpg: the paper's
// baseline, with the same networks: the deterministic policy mu(s) = f_phi(0;
// s), critic target reward_scale * r + discount * Q'(s', mu'(s')) (mu' the
// target sampling network), and the deterministic policy gradient of -Q(s,
// mu(s)); exploration noise is the actor's business.
enum class Algorithm { kSql, kDdpg };

// Hyperparameters; defaults are the paper's multi-goal settings.
struct SqlConfig {
  Algorithm algorithm = Algorithm::kSql;
  int64_t observation_dim = 2;
  int64_t action_dim = 2;
  std::vector<int64_t> hidden = {128, 128};
  double q_learning_rate = 3e-4;
  double policy_learning_rate = 3e-4;
  double discount = 0.99;
  double reward_scale = 0.1;         // plays the part of 1 / alpha
  int64_t value_particles = 16;      // M: importance samples of the soft value
  int64_t kernel_particles = 32;     // K: SVGD particles per state
  double kernel_update_ratio = 0.5;  // share of the K particles that are moved
  int64_t target_update_interval =
      1000;                 // hard copy period, in updates (tau == 1)
  double target_tau = 1.0;  // < 1: Polyak averaging every update instead
  // On a CUDA device, the project's fused kernels (learner/fused_ops.h) where
  // the build has them; false: LibTorch's operations only. The same numbers up
  // to float rounding.
  bool fused_kernels = true;
  // kSql, an ablation: the weight of the repulsive term of the SVGD direction
  // (the kernel's gradient, which spreads the sampling network's particles
  // apart; sql::SteinDirection). 1 (the default) is the paper's amortized
  // SVGD; 0 removes the term, leaving the kernel-smoothed score, which pulls
  // every particle toward Q's modes: a policy that collapses instead of
  // covering them. Eager and CUDA-graph updates honour any weight; the fused
  // Stein kernel computes weight 1 only, so with another the update takes
  // LibTorch's operations for that step (fused_kernels or not).
  double svgd_repulsion = 1.0;
};

// Checks every field; InvalidArgument names the first bad one.
absl::Status ValidateSqlConfig(const SqlConfig& config);

// How many of the K particles SVGD moves: floor(K * ratio); the other K - moved
// are kept (the kernel's fixed particles). A valid config moves at least 1 and
// keeps at least 2.
int64_t MovedParticles(int64_t kernel_particles, double kernel_update_ratio);

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

// The random draws of one update: value_actions [M, D] uniform in [-1, 1]
// (shared by the batch, as in the reference), policy_noise [B, K, D] standard
// normal.
struct UpdateNoise {
  torch::Tensor value_actions;
  torch::Tensor policy_noise;
};

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

class SqlAgent {
 public:
  SqlAgent(const SqlConfig& config, torch::Device device = torch::kCPU);

  // One update on `batch` (any device; moved to the agent's, asynchronously
  // from pinned memory). Draws its own noise.
  void Update(const TransitionTensors& batch);
  void Update(const TransitionTensors& batch, const UpdateNoise& noise);
  // Scalars of the last update (synchronizes with the device); zeros before the
  // first.
  UpdateMetrics LastMetrics() const;
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
  // Updates done so far (restored from checkpoints by the learner).
  int64_t step() const { return step_; }
  void set_step(int64_t step) { step_ = step; }

  // A copy of the sampling network's parameters on the CPU, for publication to
  // actors (views of one host tensor, made by one device-to-host copy).
  NamedTensors PolicyParameters() const;

 private:
  friend class CudaGraphUpdate;  // replays StepNetworks as a CUDA graph

  // `batch` on the agent's device (asynchronous copies from pinned memory).
  TransitionTensors BatchOnDevice(const TransitionTensors& batch) const;
  // The device part of an update: both losses, both backward passes, both Adam
  // steps, the metric tensors. No host synchronization and no host state that
  // changes from call to call, so a CUDA graph can capture it.
  void StepNetworks(const TransitionTensors& device_batch,
                    const UpdateNoise& noise);
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
  // kDdpg's policy objective, -mean Q(s, f_phi(0; s)).
  torch::Tensor DdpgPolicyLoss(const torch::Tensor& observations);
  // The host part: counts the update and refreshes the target networks when
  // due.
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
  UpdateMetricTensors last_;
  torch::Tensor
      one_;  // 1: seeds kDdpg's policy backward pass (saves a fill per update)
};

// Amortized SVGD: draws K = policy_noise.size(1) actions per observation from
// `policy`, splits them into fixed (the first K - int(K * update_ratio), no
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
// particles, loss_gradient, ...).
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

#endif  // SOFTQ_LEARNER_SQL_AGENT_H_
