// Specification of the multi-goal environment (shared/docs/soft_q_learning.md).
#include "env/multigoal.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "actor/multigoal_evaluation.h"
#include "env/registry.h"
#include "policy/acting_policy.h"

namespace softq {
namespace {

TEST(MultiGoal, StartsNearTheOrigin) {
  MultiGoalEnv env(1);
  for (int i = 0; i < 100; ++i) {
    const std::vector<float> x = env.Reset();
    ASSERT_EQ(x.size(), 2u);
    EXPECT_LT(std::abs(x[0]), 0.6f);
    EXPECT_LT(std::abs(x[1]), 0.6f);
  }
}

TEST(MultiGoal, SameSeedSameEpisode) {
  MultiGoalEnv a(5), b(5), c(6);
  EXPECT_EQ(a.Reset(), b.Reset());
  EXPECT_NE(a.Reset(), c.Reset());
}

TEST(MultiGoal, RewardIsActionCostPlusSquaredDistanceToNearestGoal) {
  MultiGoalEnv env(0);
  const std::vector<float> x = env.Reset();
  absl::StatusOr<StepResult> r = env.Step({0.5f, -0.25f});
  ASSERT_TRUE(r.ok());
  const float nx = x[0] + 0.5f, ny = x[1] - 0.25f;
  EXPECT_FLOAT_EQ(r->observation[0], nx);
  EXPECT_FLOAT_EQ(r->observation[1], ny);
  const float d2 =
      std::min({(nx - 5) * (nx - 5) + ny * ny, (nx + 5) * (nx + 5) + ny * ny,
                nx * nx + (ny - 5) * (ny - 5), nx * nx + (ny + 5) * (ny + 5)});
  EXPECT_NEAR(r->reward, -(30.0f * (0.25f + 0.0625f) + d2), 1e-4);
  EXPECT_FALSE(r->terminal);
  EXPECT_FALSE(r->truncated);
}

TEST(MultiGoal, ReachingAGoalEndsTheEpisodeWithABonus) {
  MultiGoalEnv env(0);
  env.Reset();
  StepResult r;
  for (int i = 0; i < 5; ++i) {
    absl::StatusOr<StepResult> s = env.Step({1.0f, 0.0f});
    ASSERT_TRUE(s.ok());
    r = *s;
    if (r.terminal) break;
  }
  ASSERT_TRUE(r.terminal);
  EXPECT_EQ(MultiGoalEnv::GoalAt(r.observation[0], r.observation[1]), 0);
  const float d2 = (r.observation[0] - 5) * (r.observation[0] - 5) +
                   r.observation[1] * r.observation[1];
  EXPECT_NEAR(r.reward, -(30.0f + d2) + 10.0f, 1e-4);
  EXPECT_EQ(env.Step({0.0f, 0.0f}).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(MultiGoal, ThirtyStepsIsATimeOutNotATerminal) {
  MultiGoalEnv env(0);
  env.Reset();
  for (int i = 1; i <= 30; ++i) {
    absl::StatusOr<StepResult> r = env.Step({0.0f, 0.0f});
    ASSERT_TRUE(r.ok());
    EXPECT_FALSE(r->terminal);
    EXPECT_EQ(r->truncated, i == 30);
  }
}

TEST(MultiGoal, ClipsActionsAndPosition) {
  MultiGoalEnv env(0);
  const std::vector<float> x = env.Reset();
  absl::StatusOr<StepResult> r = env.Step({3.0f, -3.0f});
  ASSERT_TRUE(r.ok());
  EXPECT_FLOAT_EQ(r->observation[0], x[0] + 1.0f);
  EXPECT_FLOAT_EQ(r->observation[1], x[1] - 1.0f);
  for (int i = 0; i < 10; ++i)
    r = env.Step({1.0f, 1.0f});  // diagonal misses every goal
  ASSERT_TRUE(r.ok());
  EXPECT_FLOAT_EQ(r->observation[0], 7.0f);
  EXPECT_FLOAT_EQ(r->observation[1], 7.0f);
}

TEST(MultiGoal, RejectsNonFiniteOrWrongSizeActions) {
  MultiGoalEnv env(0);
  env.Reset();
  EXPECT_EQ(env.Step({NAN, 0.0f}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(env.Step({0.0f, INFINITY}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(env.Step({0.0f}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(env.Step({0.0f, 0.0f})
                  .ok());  // the episode goes on after a rejected action
}

TEST(MultiGoal, UnknownEnvironmentNameIsAnError) {
  EXPECT_EQ(MakeEnvironment("cartpole", "", 0).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(MakeEnvironment("multigoal", "", 0).ok());
}

MultiGoalEvaluation Counts(int rollouts, std::array<int, 4> goals,
                           int reached_any) {
  MultiGoalEvaluation e;
  e.rollouts = rollouts;
  e.goal_counts = goals;
  e.reached_any = reached_any;
  return e;
}

TEST(MultiGoalEvaluation, SolvedNeedsEveryGoalInATenthAndSomeGoalInNineTenths) {
  EXPECT_TRUE(Counts(100, {25, 25, 25, 25}, 100).Solved());
  EXPECT_TRUE(
      Counts(100, {10, 10, 10, 60}, 90).Solved());  // both bounds exactly
  EXPECT_FALSE(
      Counts(100, {9, 11, 10, 60}, 90).Solved());  // one goal under a tenth
  EXPECT_EQ(Counts(100, {9, 11, 10, 60}, 90).GoalsCovered(), 3);
  EXPECT_FALSE(
      Counts(100, {10, 10, 10, 59}, 89).Solved());          // too few reach any
  EXPECT_FALSE(Counts(100, {100, 0, 0, 0}, 100).Solved());  // unimodal
  EXPECT_FALSE(Counts(0, {0, 0, 0, 0}, 0).Solved());
}

// Parameters that make a deterministic policy ({8} hidden) always move along
// +x: all weights 0, the output bias (10, 0).
NamedTensors AlwaysPlusX() {
  SamplingNetwork shape(2, 2, std::vector<int64_t>{8});
  NamedTensors params;
  for (const auto& p : shape->named_parameters()) {
    params.emplace_back(p.key(), torch::zeros_like(p.value()));
  }
  params.back().second = torch::tensor({10.0f, 0.0f});  // the last layer's bias
  return params;
}

TEST(EvaluateMultiGoal, CountsThePolicysGoalAndCallsAUnimodalPolicyUnsolved) {
  ActingPolicy policy(2, 2, {8}, /*seed=*/3, {/*deterministic=*/true});
  ASSERT_TRUE(policy.SetParameters(AlwaysPlusX(), 1).ok());
  const MultiGoalEvaluation e = EvaluateMultiGoal(policy, 50, /*seed=*/7);
  EXPECT_EQ(e.rollouts, 50);
  const int plus_x = MultiGoalEnv::GoalAt(5, 0);
  EXPECT_EQ(e.goal_counts[plus_x], 50) << e.Summary();
  EXPECT_EQ(e.reached_any, 50);
  EXPECT_EQ(e.GoalsCovered(), 1);
  EXPECT_FALSE(e.Solved());
  EXPECT_EQ(e.trajectories.size(), 50u);
}

TEST(EvaluateMultiGoal, AnUntrainedPolicyIsNotSolved) {
  torch::manual_seed(11);
  ActingPolicy policy(2, 2, {128, 128}, /*seed=*/11);
  EXPECT_FALSE(EvaluateMultiGoal(policy, 100, /*seed=*/7).Solved());
}

}  // namespace
}  // namespace softq
