#include "learner/shard_replay.h"

#include "absl/time/clock.h"

namespace softq {

absl::StatusOr<std::unique_ptr<ShardReplay>> ShardReplay::Create(
    const ShardOptions& options, uint32_t batch_size) {
  absl::StatusOr<std::unique_ptr<Shard>> shard = Shard::Create(options);
  if (!shard.ok()) return shard.status();
  return std::unique_ptr<ShardReplay>(
      new ShardReplay(*std::move(shard), batch_size));
}

absl::Status ShardReplay::Write(proto::TransitionBatch batch) {
  return shard_->Insert(batch, /*priorities=*/{}, absl::InfiniteFuture())
      .status();
}

absl::StatusOr<TransitionTensors> ShardReplay::Next(absl::Duration timeout) {
  proto::SampleResponse sampled;
  if (absl::Status s = shard_->Sample(batch_size_, absl::Now() + timeout,
                                      /*cancelled=*/nullptr, &sampled);
      !s.ok()) {
    return s;
  }
  return DecodeTransitions(sampled.batch());
}

int64_t ShardReplay::size() const {
  return static_cast<int64_t>(shard_->table().size());
}

}  // namespace softq
