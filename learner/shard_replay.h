// ShardReplay: the single-process trainer's replay, one in-memory replay::Shard
// behind the actor's TransitionSink and the learner's BatchSource.
// Thread-safe: the Shard is.
#ifndef SOFTQ_LEARNER_SHARD_REPLAY_H_
#define SOFTQ_LEARNER_SHARD_REPLAY_H_

#include <cstdint>
#include <memory>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "actor/actor.h"
#include "learner/learner.h"
#include "replay/shard.h"

namespace softq {

// The same table, sampler and rate limiter a replay_server serves
// (replay/shard.h), without the network.
class ShardReplay : public TransitionSink, public BatchSource {
 public:
  // A shard built with `options` (Shard::Create: InvalidArgument for bad
  // options) whose Next draws `batch_size` transitions.
  static absl::StatusOr<std::unique_ptr<ShardReplay>> Create(
      const ShardOptions& options, uint32_t batch_size);

  // Stores the whole batch, or nothing (InvalidArgument naming the field).
  // Never waits unless options.rate_limiter sets samples_per_insert.
  absl::Status Write(proto::TransitionBatch batch) override;
  // A batch drawn by the shard's sampler, decoded (validated); DeadlineExceeded
  // after `timeout` while the rate limiter refuses (below min_size_to_sample).
  absl::StatusOr<TransitionTensors> Next(absl::Duration timeout) override;

  // Transitions held now.
  int64_t size() const;
  const Shard& shard() const { return *shard_; }

 private:
  ShardReplay(std::unique_ptr<Shard> shard, uint32_t batch_size)
      : shard_(std::move(shard)), batch_size_(batch_size) {}

  const std::unique_ptr<Shard> shard_;
  const uint32_t batch_size_;
};

}  // namespace softq

#endif  // SOFTQ_LEARNER_SHARD_REPLAY_H_
