// The learner's evaluations of its sampling network (eval/evaluation.h), the
// stopping rule they feed, and their report (a stdout line, an --eval_csv
// row). Thread-compatible.
#ifndef SOFTQ_LEARNER_LEARNER_EVALUATIONS_H_
#define SOFTQ_LEARNER_LEARNER_EVALUATIONS_H_

#include <cstdint>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "common/security.h"
#include "eval/evaluation.h"
#include "learner/sql_agent.h"
#include "policy/acting_policy.h"
#include "proto/replay.pb.h"

namespace softq {

struct LearnerEvaluationOptions {
  std::string env;  // a MakeEnvironment name and its parameters
  std::string env_config;
  int rollouts = 100;
  uint64_t seed = 0;  // the run's
  int solved_evaluations = kSolvedEvaluationsRequired;
  std::string eval_csv;  // appended to; "": none
  // Appended to, one row per rollout of every evaluation (RolloutEnd):
  // updates, env steps, rollout, return, steps, terminal, last reward, the
  // final observation (obs_0, ...); "": none. No rows on `external`.
  std::string episodes_csv;
  std::vector<std::string> shards;  // asked for their insert counts
  SecurityConfig security;          // to call them with
};

// The returns of the episodes the actors finished since the last call, from
// every shard's stats (ShardStats.recent_returns, the latest of its
// episodes_total); `seen` holds each shard's episodes_total at the last call.
std::vector<double> ActorEpisodeReturns(
    const std::vector<proto::ShardStats>& stats,
    absl::flat_hash_map<std::string, uint64_t>* seen);

// On `external` (a task only the actors step) an evaluation is the actors'
// episodes finished since the last one (ActorEpisodeReturns). Elsewhere, each
// evaluation is of fresh rollouts (EvaluationSeed of the run's seed and
// the update count); its CSV row carries the replay's env-step count at the
// time. DDPG is evaluated with its deterministic policy, SQL with its
// stochastic one (the policy it learned is the distribution).
class LearnerEvaluations {
 public:
  LearnerEvaluations(const SqlConfig& sql, LearnerEvaluationOptions options);

  // Evaluates `agent`'s sampling network now, as parameter `version`; counts
  // it into streak() and keeps it as last(). A failed evaluation prints
  // "learner: evaluation failed: ..." on stderr and counts as an empty one.
  const Evaluation& Evaluate(const SqlAgent& agent, uint64_t version);

  // Reports last(), made at update `update`, `wall_s` into the run:
  // "learner: eval at update N: <summary>[, solved k of m in a row]" and its
  // --eval_csv row and --episodes_csv rows. REQUIRES: an evaluation was made.
  void Report(int64_t update, double wall_s);

  const Evaluation* last() const { return last_ ? &*last_ : nullptr; }
  // The update count last() was made at; -1 before the first.
  int64_t last_update() const { return last_update_; }
  const SolvedStreak& streak() const { return streak_; }
  // ", solved k of m in a row" on the multi-goal task; "" elsewhere.
  std::string StreakSuffix() const;

 private:
  const LearnerEvaluationOptions options_;
  const bool multigoal_;
  const bool external_;
  absl::flat_hash_map<std::string, uint64_t> episodes_seen_;  // per shard id
  ActingPolicy policy_;
  SolvedStreak streak_;
  std::optional<Evaluation> last_;
  int64_t last_update_ = -1;
  int64_t last_env_steps_ = -1;  // the replay's inserts at last_ (-1: unknown)
  std::ofstream csv_;
  std::ofstream episodes_csv_;
};

}  // namespace softq

#endif  // SOFTQ_LEARNER_LEARNER_EVALUATIONS_H_
