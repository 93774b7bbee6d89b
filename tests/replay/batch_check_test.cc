#include "replay/batch_check.h"

#include <gtest/gtest.h>

#include <limits>

#include "absl/strings/str_cat.h"
#include "common/transition_check.h"
#include "tests/replay/server_fixture.h"

namespace softq {
namespace {

using testing::MakeBatch;

// The fast check must agree with the reference, message included, on every
// input.
void ExpectSameVerdict(const proto::TransitionBatch& batch) {
  const absl::Status fast = CheckTransitionBatch(batch);
  const absl::Status reference = ValidateTransitionBatch(batch);
  EXPECT_EQ(fast, reference);
}

TEST(CheckTransitionBatch, AcceptsWhatTheReferenceAccepts) {
  ExpectSameVerdict(MakeBatch(1, 0, 1, 1));
  ExpectSameVerdict(MakeBatch(37, 0, 100, 2));
  EXPECT_TRUE(CheckTransitionBatch(MakeBatch(37, 0, 100, 2)).ok());
}

TEST(CheckTransitionBatch, FindsANonFiniteValueAnywhereInTheArrays) {
  const proto::TransitionBatch good =
      MakeBatch(9, 0, 7, 3);  // 63 floats: body + tail
  for (float bad : {std::numeric_limits<float>::quiet_NaN(),
                    std::numeric_limits<float>::infinity(),
                    -std::numeric_limits<float>::infinity()}) {
    for (int i = 0; i < 63; ++i) {
      proto::TransitionBatch b = good;
      b.set_observations(i, bad);
      EXPECT_FALSE(CheckTransitionBatch(b).ok()) << i;
      ExpectSameVerdict(b);
      b = good;
      b.set_next_observations(i, bad);
      ExpectSameVerdict(b);
    }
    proto::TransitionBatch b = good;
    b.set_actions(26, bad);
    ExpectSameVerdict(b);
    b = good;
    b.set_rewards(8, bad);
    ExpectSameVerdict(b);
  }
}

TEST(CheckTransitionBatch, RejectsMalformedShapesLikeTheReference) {
  proto::TransitionBatch b = MakeBatch(4, 0);
  b.add_dones(true);
  ExpectSameVerdict(b);
  b = MakeBatch(4, 0);
  b.set_observation_dim(0);
  ExpectSameVerdict(b);
  b = MakeBatch(4, 0);
  b.add_episode_ids(1);
  ExpectSameVerdict(b);
  b = MakeBatch(4, 0);
  b.set_actor_id(1u << 31);
  ExpectSameVerdict(b);
  ExpectSameVerdict(proto::TransitionBatch());
}

BatchLimits Bounds(float observation, float reward) {
  BatchLimits limits;
  limits.max_abs_observation = observation;
  limits.max_abs_reward = reward;
  return limits;
}

TEST(CheckTransitionBatch, TakesAtMostOneFiniteEpisodeReturnPerTransition) {
  proto::TransitionBatch b = MakeBatch(3, 0);
  for (double r : {1.0, -2.0, 3.5}) b.add_finished_returns(r);
  EXPECT_TRUE(CheckTransitionBatch(b).ok());
  ExpectSameVerdict(b);
  b.add_finished_returns(4.0);
  EXPECT_FALSE(CheckTransitionBatch(b).ok());
  ExpectSameVerdict(b);
  b = MakeBatch(3, 0);
  b.add_finished_returns(std::numeric_limits<double>::quiet_NaN());
  EXPECT_FALSE(CheckTransitionBatch(b).ok());
  ExpectSameVerdict(b);
}

TEST(CheckTransitionBatch, RefusesAnObservationBeyondItsBoundNamingIt) {
  // 9 transitions of 7-float observations: 63 floats, SIMD body and tail.
  const proto::TransitionBatch good = MakeBatch(9, 0, 7, 3);
  const BatchLimits limits = Bounds(100, 1000);
  ASSERT_TRUE(CheckTransitionBatch(good, limits).ok());
  for (int i = 0; i < 63; ++i) {
    for (float bad : {100.01f, -101.0f, 1e30f, -3e38f}) {
      proto::TransitionBatch b = good;
      b.set_observations(i, bad);
      const absl::Status s = CheckTransitionBatch(b, limits);
      EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << i;
      EXPECT_NE(s.message().find(absl::StrCat("observations[", i, "]")),
                std::string::npos)
          << s.message();
      EXPECT_NE(s.message().find("--max_abs_observation"), std::string::npos);
      // The reference finds nothing wrong: the bound is the shard's own.
      EXPECT_TRUE(ValidateTransitionBatch(b).ok());
      b = good;
      b.set_next_observations(i, bad);
      EXPECT_NE(CheckTransitionBatch(b, limits).message().find(
                    absl::StrCat("next_observations[", i, "]")),
                std::string::npos);
    }
  }
}

TEST(CheckTransitionBatch, AcceptsValuesAtTheBoundAndBoundsOnlyWhatItNames) {
  proto::TransitionBatch b = MakeBatch(20, 0, 4, 2);
  const BatchLimits limits = Bounds(100, 1000);
  b.set_observations(70, 100.0f);
  b.set_next_observations(3, -100.0f);
  b.set_rewards(19, -1000.0f);
  b.set_actions(5, 1e30f);  // actions are bounded by finiteness only
  EXPECT_TRUE(CheckTransitionBatch(b, limits).ok());
  b.set_rewards(7, 1000.5f);
  const absl::Status s = CheckTransitionBatch(b, limits);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("rewards[7]"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("--max_abs_reward"), std::string::npos);
}

TEST(CheckTransitionBatch,
     ReportsNonFiniteValuesAsTheReferenceDoesUnderBounds) {
  proto::TransitionBatch b = MakeBatch(9, 0, 7, 3);
  b.set_observations(40, std::numeric_limits<float>::quiet_NaN());
  b.set_rewards(2, 1e30f);
  EXPECT_EQ(CheckTransitionBatch(b, Bounds(100, 1000)),
            ValidateTransitionBatch(b));
}

TEST(CheckTransitionBatch, ShardsBoundObservationsAndRewardsByDefault) {
  const BatchLimits defaults = DefaultShardLimits();
  EXPECT_EQ(defaults.max_abs_observation, 1e6f);
  EXPECT_EQ(defaults.max_abs_reward, 1e6f);
  EXPECT_TRUE(CheckBatchLimits(defaults).ok());
  EXPECT_FALSE(CheckBatchLimits(Bounds(0, 1)).ok());
  EXPECT_FALSE(CheckBatchLimits(Bounds(1, -1)).ok());
  EXPECT_FALSE(
      CheckBatchLimits(Bounds(1, std::numeric_limits<float>::infinity())).ok());
  EXPECT_NE(CheckBatchLimits(Bounds(std::numeric_limits<float>::quiet_NaN(), 1))
                .message()
                .find("--max_abs_observation"),
            std::string::npos);
}

}  // namespace
}  // namespace softq
