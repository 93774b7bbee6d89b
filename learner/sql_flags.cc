#include "learner/sql_flags.h"

#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_replace.h"
#include "common/flags.h"

ABSL_FLAG(std::string, algorithm, "sql",
          "sql (soft Q-learning, the paper) or ddpg (the baseline: "
          "deterministic f(0; s))");
ABSL_FLAG(std::string, hidden, "128,128",
          "hidden layer widths of both networks");
ABSL_FLAG(double, q_learning_rate, 3e-4,
          "Adam learning rate of the Q network (0: frozen)");
ABSL_FLAG(double, policy_learning_rate, 3e-4,
          "Adam learning rate of the sampling network (0: frozen)");
ABSL_FLAG(double, discount, 0.99, "discount factor gamma, in [0, 1]");
ABSL_FLAG(double, reward_scale, 0.1,
          "reward scale (the inverse temperature 1/alpha)");
ABSL_FLAG(int64_t, value_particles, 16,
          "importance samples M of the soft value");
ABSL_FLAG(int64_t, kernel_particles, 32, "SVGD particles K per state");
ABSL_FLAG(double, kernel_update_ratio, 0.5,
          "share of the K particles moved by SVGD");
ABSL_FLAG(int64_t, target_update_interval, 1000,
          "updates between hard target copies");
ABSL_FLAG(double, target_tau, 1.0,
          "Polyak rate of the target (1: hard copy at interval)");
ABSL_FLAG(double, svgd_repulsion, 1.0,
          "ablation: weight of the repulsive (kernel-gradient) term of the "
          "SVGD direction; 1 is the paper's SQL, 0 removes it (sql only)");
ABSL_FLAG(int64_t, anneal_updates, 0,
          "fine-tuning (sql only): over this many updates alpha = "
          "1/--reward_scale falls log-linearly to --final_alpha and (with "
          "--anneal_particles) the SVGD particles shrink linearly from "
          "--kernel_particles to 1, then both stay there; counted from the "
          "run's first update, resumed with its checkpoint (eager updates "
          "only); 0: no schedule");
ABSL_FLAG(double, final_alpha, 1e-3,
          "--anneal_updates: the temperature alpha reached at its end (at most "
          "1/--reward_scale)");
ABSL_FLAG(bool, anneal_particles, true,
          "--anneal_updates: shrink the SVGD particle set to 1 over the same "
          "updates (false: --kernel_particles throughout)");
ABSL_FLAG(
    bool, fused_kernels, true,
    "on a CUDA device, the project's fused kernels where the build has them "
    "(SOFTQ_CUDA_KERNELS); false: LibTorch's operations only (the same "
    "numbers)");

namespace softq {

absl::StatusOr<SqlConfig> SqlConfigFromFlags(int64_t observation_dim,
                                             int64_t action_dim) {
  SqlConfig c;
  c.observation_dim = observation_dim;
  c.action_dim = action_dim;
  absl::StatusOr<std::vector<int64_t>> hidden =
      FlagWidthList("hidden", absl::GetFlag(FLAGS_hidden));
  if (!hidden.ok()) return hidden.status();
  c.hidden = *std::move(hidden);
  const std::string algorithm = absl::GetFlag(FLAGS_algorithm);
  if (absl::Status s = FlagOneOf("algorithm", algorithm, {"sql", "ddpg"});
      !s.ok())
    return s;
  c.algorithm = algorithm == "ddpg" ? Algorithm::kDdpg : Algorithm::kSql;
  c.q_learning_rate = absl::GetFlag(FLAGS_q_learning_rate);
  c.policy_learning_rate = absl::GetFlag(FLAGS_policy_learning_rate);
  c.discount = absl::GetFlag(FLAGS_discount);
  c.reward_scale = absl::GetFlag(FLAGS_reward_scale);
  c.value_particles = absl::GetFlag(FLAGS_value_particles);
  c.kernel_particles = absl::GetFlag(FLAGS_kernel_particles);
  c.kernel_update_ratio = absl::GetFlag(FLAGS_kernel_update_ratio);
  c.target_update_interval = absl::GetFlag(FLAGS_target_update_interval);
  c.target_tau = absl::GetFlag(FLAGS_target_tau);
  c.fused_kernels = absl::GetFlag(FLAGS_fused_kernels);
  c.svgd_repulsion = absl::GetFlag(FLAGS_svgd_repulsion);
  c.anneal_updates = absl::GetFlag(FLAGS_anneal_updates);
  c.final_alpha = absl::GetFlag(FLAGS_final_alpha);
  c.anneal_particles = absl::GetFlag(FLAGS_anneal_particles);
  if (absl::Status s = ValidateSqlConfig(c); !s.ok()) {
    // Every field has the flag of its name: "SqlConfig.discount=2: ..." is
    // "--discount=2: ..." on the command line.
    return absl::Status(
        s.code(), absl::StrReplaceAll(s.message(), {{"SqlConfig.", "--"}}));
  }
  return c;
}

}  // namespace softq
