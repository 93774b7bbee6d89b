#include "replay/batch_check.h"

#include <gtest/gtest.h>

#include <limits>

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

}  // namespace
}  // namespace softq
