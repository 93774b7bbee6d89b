#include "learner/sql_config.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace softq {
namespace {

// Whole numbers in full (1000000, not 1e+06), as common/flags writes them.
std::string Number(double x) {
  if (std::trunc(x) == x && std::fabs(x) < 9.007199254740992e15) {
    return absl::StrCat(static_cast<int64_t>(x));
  }
  return absl::StrCat(x);
}

absl::Status Bad(absl::string_view field, double value,
                 absl::string_view requirement) {
  return absl::InvalidArgumentError(
      absl::StrCat("SqlConfig.", field, "=", Number(value), ": ", requirement));
}

absl::Status AtLeast(absl::string_view field, double value, double min) {
  if (value >= min) return absl::OkStatus();
  return Bad(field, value, absl::StrCat("must be at least ", Number(min)));
}

absl::Status InRange(absl::string_view field, double value, double min,
                     double max) {
  if (value >= min && value <= max) return absl::OkStatus();
  return Bad(field, value,
             absl::StrCat("must be in [", Number(min), ", ", Number(max), "]"));
}

// SVGD moves at least one particle and keeps at least two: with one kept
// particle the bandwidth's median heuristic divides by log(1) = 0.
absl::Status CheckParticleSplit(int64_t kernel_particles,
                                double kernel_update_ratio) {
  const int64_t moved = MovedParticles(kernel_particles, kernel_update_ratio);
  if (moved >= 1 && kernel_particles - moved >= 2) return absl::OkStatus();
  return Bad("kernel_update_ratio", kernel_update_ratio,
             absl::StrCat("moves ", moved,
                          " of SqlConfig.kernel_particles=", kernel_particles,
                          " and keeps ", kernel_particles - moved,
                          "; SVGD needs at least 1 moved and 2 kept"));
}

// The schedule's fields, checked only when it is on (anneal_updates > 0).
absl::Status CheckSchedule(const SqlConfig& c) {
  if (c.anneal_updates == 0) return absl::OkStatus();
  if (c.algorithm == Algorithm::kDdpg) {
    return Bad("anneal_updates", static_cast<double>(c.anneal_updates),
               "DDPG has no temperature or SVGD particles to anneal "
               "(SqlConfig.algorithm=sql only)");
  }
  if (c.final_alpha > 1.0 / c.reward_scale) {
    return Bad("final_alpha", c.final_alpha,
               absl::StrCat("must be at most the starting alpha (SqlConfig."
                            "reward_scale=",
                            Number(c.reward_scale), ": alpha ",
                            1.0 / c.reward_scale, ")"));
  }
  return absl::OkStatus();
}

}  // namespace

ParticleSplit SplitParticles(int64_t kernel_particles,
                             double kernel_update_ratio) {
  if (kernel_particles < 3) return {0, kernel_particles};
  const int64_t moved =
      std::clamp<int64_t>(MovedParticles(kernel_particles, kernel_update_ratio),
                          1, kernel_particles - 2);
  return {kernel_particles - moved, moved};
}

ScheduledValues ScheduleAt(const SqlConfig& c, int64_t update) {
  const int64_t n = c.anneal_updates;
  if (n <= 0) return {c.reward_scale, c.kernel_particles};
  if (update >= n) {
    return {1.0 / c.final_alpha, c.anneal_particles ? 1 : c.kernel_particles};
  }
  const int64_t t = std::max<int64_t>(update, 0);
  // 1 / alpha(t) = reward_scale * (reward_scale * final_alpha)^(-t / N):
  // pow(x, 0) is exactly 1, so update 0 takes reward_scale itself.
  const double reward_scale =
      c.reward_scale *
      std::pow(c.reward_scale * c.final_alpha,
               -static_cast<double>(t) / static_cast<double>(n));
  // 1 + round((K0 - 1) (N - t) / N) in integers, halves rounded up.
  const int64_t k =
      c.anneal_particles
          ? 1 + ((c.kernel_particles - 1) * (n - t) * 2 + n) / (2 * n)
          : c.kernel_particles;
  return {reward_scale, k};
}

int64_t MovedParticles(int64_t kernel_particles, double kernel_update_ratio) {
  return static_cast<int64_t>(static_cast<double>(kernel_particles) *
                              kernel_update_ratio);
}

absl::Status ValidateSqlConfig(const SqlConfig& c) {
  absl::Status hidden_ok = absl::OkStatus();
  for (int64_t width : c.hidden) {
    if (width < 1) hidden_ok = AtLeast("hidden", static_cast<double>(width), 1);
  }
  for (absl::Status s : {
           InRange("observation_dim", c.observation_dim, 1, 4096),
           InRange("action_dim", c.action_dim, 1, 256),
           hidden_ok,
           // 0 freezes the network: a negative control of the learning checks.
           InRange("q_learning_rate", c.q_learning_rate, 0.0, 1.0),
           InRange("policy_learning_rate", c.policy_learning_rate, 0.0, 1.0),
           InRange("discount", c.discount, 0.0, 1.0),
           InRange("reward_scale", c.reward_scale, 1e-9, 1e9),
           InRange("value_particles", c.value_particles, 1, 1 << 16),
           InRange("kernel_particles", c.kernel_particles, 2, 1 << 12),
           InRange("kernel_update_ratio", c.kernel_update_ratio, 1e-6,
                   1.0 - 1e-6),
           CheckParticleSplit(c.kernel_particles, c.kernel_update_ratio),
           AtLeast("target_update_interval", c.target_update_interval, 1),
           InRange("target_tau", c.target_tau, 1e-6, 1.0),
           InRange("svgd_repulsion", c.svgd_repulsion, 0.0, 100.0),
           c.algorithm == Algorithm::kDdpg && c.svgd_repulsion != 1.0
               ? Bad("svgd_repulsion", c.svgd_repulsion,
                     "DDPG has no SVGD step (SqlConfig.algorithm=sql only)")
               : absl::OkStatus(),
           // At most 2^40: the particle schedule's integer arithmetic,
           // (K - 1) * N * 2, stays far inside int64.
           InRange("anneal_updates", static_cast<double>(c.anneal_updates), 0,
                   1099511627776.0),
           InRange("final_alpha", c.final_alpha, 1e-9, 1e9),
           CheckSchedule(c),
       }) {
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

}  // namespace softq
