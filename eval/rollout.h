// RollOut: the evaluation loop. Steps a set of environments together, one
// batched policy.Act per step, from their start states to the end of one
// episode each. Thread-compatible: one caller at a time per policy and envs.
#ifndef SOFTQ_EVAL_ROLLOUT_H_
#define SOFTQ_EVAL_ROLLOUT_H_

#include <functional>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "env/environment.h"
#include "policy/acting_policy.h"

namespace softq {

// Sees rollout `i`'s first observation (step == nullptr) and then each step's
// result.
using RolloutObserver = std::function<void(
    int i, const std::vector<float>& observation, const StepResult* step)>;

// Resets every environment of `envs` (same spec, at least one) and steps them
// together until each episode ends or max_episode_steps. Returns each
// rollout's return; an environment's step error ends the whole rollout.
absl::StatusOr<std::vector<double>> RollOut(
    ActingPolicy& policy, std::vector<std::unique_ptr<Environment>>& envs,
    const RolloutObserver& observe = nullptr);

}  // namespace softq

#endif  // SOFTQ_EVAL_ROLLOUT_H_
