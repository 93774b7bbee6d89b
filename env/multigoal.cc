#include "env/multigoal.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "env/registry.h"

namespace softq {

std::vector<float> MultiGoalEnv::Reset() {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (float& p : position_)
    p = std::clamp(0.1f * normal(rng_), -kBound, kBound);
  steps_ = 0;
  done_ = false;
  return {position_[0], position_[1]};
}

float MultiGoalEnv::PositionReward(float x, float y) {
  float best = std::numeric_limits<float>::infinity();
  for (const auto& g : kGoals) {
    best = std::min(best, (x - g[0]) * (x - g[0]) + (y - g[1]) * (y - g[1]));
  }
  return -best;
}

int MultiGoalEnv::GoalAt(float x, float y) {
  for (int i = 0; i < static_cast<int>(kGoals.size()); ++i) {
    const float dx = x - kGoals[i][0], dy = y - kGoals[i][1];
    if (std::sqrt(dx * dx + dy * dy) < kGoalRadius) return i;
  }
  return -1;
}

absl::StatusOr<StepResult> MultiGoalEnv::Step(absl::Span<const float> action) {
  if (action.size() != 2) {
    return absl::InvalidArgumentError(absl::StrCat(
        "action has ", action.size(), " values, multigoal expects 2"));
  }
  for (size_t i = 0; i < 2; ++i) {
    if (!std::isfinite(action[i])) {
      return absl::InvalidArgumentError(
          absl::StrCat("action[", i, "] is not finite"));
    }
  }
  if (done_)
    return absl::FailedPreconditionError(
        "multigoal: Step() after the episode ended");
  const float ax = std::clamp(action[0], -1.0f, 1.0f);
  const float ay = std::clamp(action[1], -1.0f, 1.0f);
  position_[0] = std::clamp(position_[0] + ax, -kBound, kBound);
  position_[1] = std::clamp(position_[1] + ay, -kBound, kBound);
  ++steps_;
  StepResult result;
  result.observation = {position_[0], position_[1]};
  result.reward = -kActionCost * (ax * ax + ay * ay) +
                  PositionReward(position_[0], position_[1]);
  if (GoalAt(position_[0], position_[1]) >= 0) {
    result.reward += kGoalReward;
    result.terminal = true;
  } else if (steps_ >= kMaxSteps) {
    result.truncated = true;
  }
  done_ = result.terminal || result.truncated;
  return result;
}

SOFTQ_REGISTER_ENVIRONMENT(
    "multigoal",
    "the paper's multi-goal point mass (obs 2, act 2, 30 steps); no keys",
    [](EnvConfig&,
       uint64_t seed) -> absl::StatusOr<std::unique_ptr<Environment>> {
      return std::make_unique<MultiGoalEnv>(seed);
    });

}  // namespace softq
