// The multi-goal task of the paper (Fig. 3; the authors'
// environments/multigoal.py): a point in the plane moves by its action (a
// velocity in [-1, 1]^2), position clipped to [-7, 7]^2; four goals at (+-5,
// 0), (0, +-5). Reward -(30 ||a||^2 + min_g ||x' - g||^2), +10 and the episode
// ends when a goal is within distance 1. x_0 = clip(0.1 N(0, I)); 30 steps at
// most.
#ifndef SOFTQ_ENV_MULTIGOAL_H_
#define SOFTQ_ENV_MULTIGOAL_H_

#include <array>
#include <random>

#include "env/environment.h"

namespace softq {

class MultiGoalEnv : public Environment {
 public:
  static constexpr int kMaxSteps = 30;
  static constexpr float kBound = 7.0f;
  static constexpr float kGoalRadius = 1.0f;
  static constexpr float kGoalReward = 10.0f;
  static constexpr float kActionCost = 30.0f;
  static constexpr std::array<std::array<float, 2>, 4> kGoals = {
      {{5.0f, 0.0f}, {-5.0f, 0.0f}, {0.0f, 5.0f}, {0.0f, -5.0f}}};

  explicit MultiGoalEnv(uint64_t seed = 0) : rng_(seed) {}

  EnvSpec spec() const override { return {2, 2, kMaxSteps}; }
  void Seed(uint64_t seed) override { rng_.seed(seed); }
  std::vector<float> Reset() override;
  absl::StatusOr<StepResult> Step(absl::Span<const float> action) override;

  // Index of the goal within kGoalRadius of `position`, or -1.
  static int GoalAt(float x, float y);
  // The reward's position part, -min_g ||x - g||^2 (for plotting the
  // landscape).
  static float PositionReward(float x, float y);

 private:
  std::mt19937_64 rng_;
  std::array<float, 2> position_ = {0, 0};
  int steps_ = 0;
  bool done_ = true;
};

}  // namespace softq

#endif  // SOFTQ_ENV_MULTIGOAL_H_
