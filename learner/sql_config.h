// SqlConfig: the learner's hyperparameters (the algorithm, the networks'
// shape, the update's constants) and their validation, phrased by the config's
// fields. Plain data; thread-compatible.
#ifndef SOFTQ_LEARNER_SQL_CONFIG_H_
#define SOFTQ_LEARNER_SQL_CONFIG_H_

#include <cstdint>
#include <vector>

#include "absl/status/status.h"

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
  // Fine-tuning's annealing (the paper's Fig. 4 protocol; kSql only): over
  // the first anneal_updates updates the temperature alpha = 1 / reward_scale
  // falls log-linearly from 1 / reward_scale to final_alpha and, with
  // anneal_particles, the SVGD particle set shrinks linearly from
  // kernel_particles to 1; afterwards both stay at their final values
  // (ScheduleAt). The count is the agent's step: a fine-tuning run
  // (learner_main --init_from) starts it at 0 and a resumed one restores it
  // from its checkpoint. 0 (the default): no schedule, reward_scale and
  // kernel_particles throughout.
  int64_t anneal_updates = 0;
  double final_alpha = 1e-3;
  bool anneal_particles = true;
};

// Checks every field: OK, or InvalidArgument
// "SqlConfig.<field>=<value>: <requirement>" for the first bad one (each field
// has the flag of the same name: learner/sql_flags.h phrases it as that flag).
absl::Status ValidateSqlConfig(const SqlConfig& config);

// How many of the K particles SVGD moves: floor(K * ratio); the other K - moved
// are kept (the kernel's fixed particles). A valid config moves at least 1 and
// keeps at least 2.
int64_t MovedParticles(int64_t kernel_particles, double kernel_update_ratio);

// The split of K particles an update uses (AmortizedSvgd). SVGD's direction
// needs a moved particle and two kept ones (the bandwidth divides by log of the
// kept count), so for K >= 3 the moved count is MovedParticles clamped to
// [1, K - 2]: a valid config's split is MovedParticles' unchanged (and with
// ratio 0.5 so is every K >= 3 of a particle schedule). For K < 3 (1 or 2)
// none is kept: `fixed` is 0 and each particle moves along its own SVGD
// direction, the kernel's self term, kappa(a, a) * score(a) + grad_x kappa(x,
// a) at x = a, which is score(a) for any RBF kernel (kappa(a, a) = 1, its
// gradient 0 there): gradient ascent on the target's log-density, the
// one-particle limit of SVGD (sql::SelfSvgdLossGradient). K = 2 could split
// into one kept and one moved particle, but with one kept particle the
// bandwidth's median heuristic divides by log 1 = 0.
struct ParticleSplit {
  int64_t fixed = 0;
  int64_t moved = 0;
};
ParticleSplit SplitParticles(int64_t kernel_particles,
                             double kernel_update_ratio);

// The values update t uses (t >= 0: the agent's step before it), with N =
// anneal_updates, alpha0 = 1 / reward_scale and K0 = kernel_particles:
//   alpha(t) = alpha0 * (final_alpha / alpha0)^(t / N) for t < N, final_alpha
//              from N on;
//   K(t) = 1 + round((K0 - 1) * (N - t) / N) (halves up) for t < N, 1 from N
//          on (K0 throughout without anneal_particles).
// The reward scale is 1 / alpha(t): exactly reward_scale at t = 0 and
// 1 / final_alpha from N on. With N = 0: reward_scale and K0 at every t.
struct ScheduledValues {
  double reward_scale = 0;
  int64_t kernel_particles = 0;
  double alpha() const { return 1.0 / reward_scale; }
};
ScheduledValues ScheduleAt(const SqlConfig& config, int64_t update);

}  // namespace softq

#endif  // SOFTQ_LEARNER_SQL_CONFIG_H_
