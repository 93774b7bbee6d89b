// Evaluation by return, for any environment: rolls out the sampling network in
// `rollouts` fresh environments (stepped together, one batched forward per
// step) from their start states to the end of one episode each. RollOut is the
// loop, shared with the multi-goal evaluation. Thread-compatible.
#ifndef SOFTQ_ACTOR_RETURN_EVALUATION_H_
#define SOFTQ_ACTOR_RETURN_EVALUATION_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "env/environment.h"
#include "policy/acting_policy.h"

namespace softq {

struct ReturnEvaluation {
  std::vector<double> returns;  // one per rollout
  double mean = 0;
  double stddev = 0;
  std::string Summary() const;
};

// Sees rollout `i`'s first observation (step == nullptr) and then each step's
// result.
using RolloutObserver = std::function<void(
    int i, const std::vector<float>& observation, const StepResult* step)>;

// Resets every environment of `envs` (same spec, at least one) and steps them
// together, one batched policy.Act per step, until each episode ends or
// max_episode_steps. Returns each rollout's return; an environment's step error
// ends the whole evaluation.
absl::StatusOr<std::vector<double>> RollOut(
    ActingPolicy& policy, std::vector<std::unique_ptr<Environment>>& envs,
    const RolloutObserver& observe = nullptr);

// `rollouts` fresh environments `env` with `config` (MakeEnvironment), rolled
// out once each. InvalidArgument for a bad name or config; an environment's
// step error otherwise.
absl::StatusOr<ReturnEvaluation> EvaluateReturn(ActingPolicy& policy,
                                                const std::string& env,
                                                const std::string& config,
                                                int rollouts, uint64_t seed);

}  // namespace softq

#endif  // SOFTQ_ACTOR_RETURN_EVALUATION_H_
