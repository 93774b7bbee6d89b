// Specification of learner/shard_replay: the in-process trainer's replay, one
// replay::Shard behind the actor's TransitionSink and the learner's
// BatchSource.
#include "learner/shard_replay.h"

#include <gtest/gtest.h>
#include <torch/types.h>

#include <cmath>

namespace softq {
namespace {

proto::TransitionBatch Batch(int n, float first_reward) {
  proto::TransitionBatch batch;
  batch.set_observation_dim(2);
  batch.set_action_dim(2);
  for (int i = 0; i < n; ++i) {
    batch.add_observations(i);
    batch.add_observations(i);
    batch.add_actions(0);
    batch.add_actions(0);
    batch.add_rewards(first_reward + i);
    batch.add_next_observations(i);
    batch.add_next_observations(i);
    batch.add_dones(false);
  }
  return batch;
}

TEST(ShardReplay, StoresWholeBatchesAndEvictsOldestAtCapacity) {
  ShardOptions options;
  options.capacity = 5;
  options.observation_dim = 2;
  options.action_dim = 2;
  options.rate_limiter.min_size_to_sample = 3;
  options.seed = 1;
  absl::StatusOr<std::unique_ptr<ShardReplay>> replay =
      ShardReplay::Create(options, /*batch_size=*/5);
  ASSERT_TRUE(replay.ok()) << replay.status();
  EXPECT_EQ((*replay)->Next(absl::ZeroDuration()).status().code(),
            absl::StatusCode::kDeadlineExceeded);
  ASSERT_TRUE((*replay)->Write(Batch(4, 0)).ok());
  ASSERT_TRUE((*replay)->Write(Batch(4, 10)).ok());  // rewards 10..13
  EXPECT_EQ((*replay)->size(), 5);
  absl::StatusOr<TransitionTensors> sample = (*replay)->Next(absl::Seconds(1));
  ASSERT_TRUE(sample.ok()) << sample.status();
  EXPECT_EQ(sample->rewards.size(0), 5);
  EXPECT_EQ(sample->observations.sizes(), (std::vector<int64_t>{5, 2}));
  // Holds rewards {3, 10, 11, 12, 13}: 0, 1 and 2 were evicted.
  EXPECT_TRUE((sample->rewards >= 3).all().item<bool>());
  proto::TransitionBatch bad = Batch(4, 20);
  bad.set_rewards(0, NAN);
  EXPECT_EQ((*replay)->Write(bad).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ((*replay)->size(), 5);
}

TEST(ShardReplay, SameSeedSameBatches) {
  ShardOptions options;
  options.capacity = 100;
  options.seed = 7;
  auto a = ShardReplay::Create(options, 16);
  auto b = ShardReplay::Create(options, 16);
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_TRUE((*a)->Write(Batch(50, 0)).ok());
  ASSERT_TRUE((*b)->Write(Batch(50, 0)).ok());
  absl::StatusOr<TransitionTensors> x = (*a)->Next(absl::Seconds(1));
  absl::StatusOr<TransitionTensors> y = (*b)->Next(absl::Seconds(1));
  ASSERT_TRUE(x.ok() && y.ok());
  EXPECT_TRUE(torch::equal(x->rewards, y->rewards));
}

}  // namespace
}  // namespace softq
