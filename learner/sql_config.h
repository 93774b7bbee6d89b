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
};

// Checks every field: OK, or InvalidArgument
// "SqlConfig.<field>=<value>: <requirement>" for the first bad one (each field
// has the flag of the same name: learner/sql_flags.h phrases it as that flag).
absl::Status ValidateSqlConfig(const SqlConfig& config);

// How many of the K particles SVGD moves: floor(K * ratio); the other K - moved
// are kept (the kernel's fixed particles). A valid config moves at least 1 and
// keeps at least 2.
int64_t MovedParticles(int64_t kernel_particles, double kernel_update_ratio);

}  // namespace softq

#endif  // SOFTQ_LEARNER_SQL_CONFIG_H_
