#include "learner/replay_batch_source.h"

namespace softq {

absl::StatusOr<TransitionTensors> ReplayBatchSource::Next(absl::Duration timeout) {
  absl::StatusOr<SampledBatch> sampled = sampler_->Next(timeout);
  if (!sampled.ok()) return sampled.status();
  absl::StatusOr<TransitionTensors> batch = DecodeTransitions(sampled->batch);
  if (!batch.ok()) return batch.status();
  sampled_ += batch->rewards.size(0);
  if (pin_memory_) {
    batch->observations = batch->observations.pin_memory();
    batch->actions = batch->actions.pin_memory();
    batch->rewards = batch->rewards.pin_memory();
    batch->next_observations = batch->next_observations.pin_memory();
    batch->dones = batch->dones.pin_memory();
  }
  return batch;
}

}  // namespace softq
