// Specification of the MuJoCo swimmer environment (env/swimmer.h).
#include "env/swimmer.h"

#include <gtest/gtest.h>

#include <cmath>

namespace softq {
namespace {

std::unique_ptr<SwimmerEnv> Make(SwimmerEnv::Task task, uint64_t seed,
                                 int max_steps = 300) {
  absl::StatusOr<std::unique_ptr<SwimmerEnv>> env =
      SwimmerEnv::Create(task, seed, max_steps);
  EXPECT_TRUE(env.ok()) << env.status();
  return *std::move(env);
}

// A travelling wave down the body (the tail lags the middle by 0.5 rad, period
// 63 steps): a swimming gait, ~1.9 m in 300 steps.
std::vector<float> Gait(int t) {
  return {static_cast<float>(std::sin(0.1 * t)),
          static_cast<float>(std::sin(0.1 * t - 0.5))};
}

TEST(Swimmer, ObservationsHaveTheDocumentedShape) {
  auto env = Make(SwimmerEnv::Task::kSpeed, 0);
  EXPECT_EQ(env->spec().observation_dim, 10);
  EXPECT_EQ(env->spec().action_dim, 2);
  EXPECT_EQ(env->Reset().size(), 10u);
  absl::StatusOr<StepResult> r = env->Step({0.5f, -0.5f});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->observation.size(), 10u);
}

TEST(Swimmer, DynamicsAreDeterministicUnderASeed) {
  auto a = Make(SwimmerEnv::Task::kSpeed, 3),
       b = Make(SwimmerEnv::Task::kSpeed, 3);
  auto c = Make(SwimmerEnv::Task::kSpeed, 4);
  EXPECT_EQ(a->Reset(), b->Reset());
  EXPECT_NE(a->Reset(), c->Reset());
  b->Reset();
  for (int t = 0; t < 50; ++t) {
    absl::StatusOr<StepResult> ra = a->Step(Gait(t)), rb = b->Step(Gait(t));
    ASSERT_TRUE(ra.ok() && rb.ok());
    EXPECT_EQ(ra->observation, rb->observation);
    EXPECT_EQ(ra->reward, rb->reward);
  }
}

TEST(Swimmer, ResetIsHonoured) {
  auto env = Make(SwimmerEnv::Task::kSpeed, 1, /*max_steps=*/20);
  env->Reset();
  for (int t = 0; t < 20; ++t) ASSERT_TRUE(env->Step(Gait(t)).ok());
  EXPECT_EQ(env->Step(Gait(0)).status().code(),
            absl::StatusCode::kFailedPrecondition);
  const std::vector<float> obs = env->Reset();
  for (float v : obs)
    EXPECT_LE(std::abs(v), 0.1f + 1e-6f);  // start state: noise only
  EXPECT_TRUE(env->Step(Gait(0)).ok());
}

TEST(Swimmer, TimeLimitIsATimeOutNotATerminal) {
  auto env = Make(SwimmerEnv::Task::kSpeed, 1, /*max_steps=*/10);
  env->Reset();
  for (int t = 1; t <= 10; ++t) {
    absl::StatusOr<StepResult> r = env->Step(Gait(t));
    ASSERT_TRUE(r.ok());
    EXPECT_FALSE(r->terminal);
    EXPECT_EQ(r->truncated, t == 10);
  }
}

TEST(Swimmer, RejectsNonFiniteAndClipsOutOfRangeActions) {
  auto a = Make(SwimmerEnv::Task::kSpeed, 2),
       b = Make(SwimmerEnv::Task::kSpeed, 2);
  a->Reset();
  b->Reset();
  EXPECT_EQ(a->Step({NAN, 0.0f}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(a->Step({0.0f, INFINITY}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(a->Step({0.0f}).status().code(),
            absl::StatusCode::kInvalidArgument);
  absl::StatusOr<StepResult> clipped = a->Step({5.0f, -7.0f});
  absl::StatusOr<StepResult> bounded = b->Step({1.0f, -1.0f});
  ASSERT_TRUE(clipped.ok() && bounded.ok());
  EXPECT_EQ(clipped->observation, bounded->observation);
}

TEST(Swimmer, AGaitSwimsAndEarnsSpeedRewardWhileStillnessDoesNot) {
  auto swim = Make(SwimmerEnv::Task::kSpeed, 0),
       still = Make(SwimmerEnv::Task::kSpeed, 0);
  swim->Reset();
  still->Reset();
  double swim_return = 0, still_return = 0;
  for (int t = 0; t < 200; ++t) {
    swim_return += swim->Step(Gait(t))->reward;
    still_return += still->Step({0.0f, 0.0f})->reward;
  }
  const auto p = swim->position();
  EXPECT_GT(std::hypot(p[0], p[1]), 0.3);
  EXPECT_GT(swim_return, 2 * still_return + 1.0);
}

TEST(Swimmer, WaggingInPlaceEarnsLittleOfTheSpeedReward) {
  // Both hinges flipped every step: the body thrashes but its centre of mass
  // stays put.
  auto wag = Make(SwimmerEnv::Task::kSpeed, 0),
       swim = Make(SwimmerEnv::Task::kSpeed, 0);
  wag->Reset();
  swim->Reset();
  double wag_return = 0, swim_return = 0;
  for (int t = 0; t < 200; ++t) {
    const float sign = t % 2 ? 1.0f : -1.0f;
    wag_return += wag->Step({sign, sign})->reward;
    swim_return += swim->Step(Gait(t))->reward;
  }
  EXPECT_LT(wag_return, swim_return / 3);
}

TEST(Swimmer, TargetTaskRewardsProgressTowardTheTarget) {
  auto env = Make(SwimmerEnv::Task::kTarget, 0);
  env->Reset();
  // Reward is (distance before - distance after) / dt - control cost, summed:
  // telescopes.
  const auto p0 = env->position();
  double total = 0;
  for (int t = 0; t < 100; ++t) total += env->Step(Gait(t))->reward;
  const auto p1 = env->position();
  const double progress =
      std::hypot(p0[0] - 3, p0[1] - 3) - std::hypot(p1[0] - 3, p1[1] - 3);
  EXPECT_NEAR(total, progress / 0.04 - 100 * 1e-4 * 1.0, 0.2);
}

}  // namespace
}  // namespace softq
