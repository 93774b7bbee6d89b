#include "learner/replay_batch_source.h"

#include "absl/time/clock.h"

namespace softq {

absl::StatusOr<TransitionTensors> ReplayBatchSource::Next(
    absl::Duration timeout) {
  const absl::Time start = absl::Now();
  absl::StatusOr<SampledBatch> sampled = sampler_->Next(timeout);
  waited_ += absl::Now() - start;
  if (!sampled.ok()) return sampled.status();
  // One packed tensor: on a GPU, one asynchronous copy from page-locked memory
  // per batch.
  absl::StatusOr<TransitionTensors> batch = DecodeTransitions(
      sampled->batch, DecodeOptions{/*packed=*/true, pin_memory_});
  if (!batch.ok()) return batch.status();
  sampled_ += batch->rewards.size(0);
  return batch;
}

}  // namespace softq
