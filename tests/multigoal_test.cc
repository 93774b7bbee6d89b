// Specification of the multi-goal environment (shared/docs/soft_q_learning.md).
#include "env/multigoal.h"

#include <gtest/gtest.h>

#include <cmath>

#include "env/registry.h"

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

}  // namespace
}  // namespace softq
