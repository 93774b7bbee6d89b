#include "learner/replay_batch_source.h"

#include <utility>

#include "absl/time/clock.h"
#include "learner/sql_math.h"

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
  if (prioritized_.updater != nullptr) {
    keys_ = std::move(sampled->keys);
    shard_index_ = std::move(sampled->shard_index);
    probabilities_ = std::move(sampled->probabilities);
    total_size_ = sampled->total_size;
  }
  return batch;
}

torch::Tensor ReplayBatchSource::ImportanceWeights(int64_t update) {
  if (prioritized_.updater == nullptr || probabilities_.empty()) {
    return torch::Tensor();
  }
  const torch::Tensor p =
      torch::tensor(probabilities_, torch::TensorOptions(torch::kFloat64));
  return sql::ImportanceWeights(
      p, static_cast<double>(total_size_),
      sql::AnnealedBeta(prioritized_.beta0, update,
                        prioritized_.beta_anneal_updates));
}

void ReplayBatchSource::Updated(const torch::Tensor& q,
                                const torch::Tensor& target) {
  if (prioritized_.updater == nullptr || keys_.empty() || !q.defined() ||
      !target.defined() || q.numel() != static_cast<int64_t>(keys_.size())) {
    return;
  }
  const torch::Tensor p =
      sql::TdPriorities(q, target, prioritized_.epsilon).cpu().contiguous();
  PriorityUpdate update;
  update.priorities.assign(p.data_ptr<float>(),
                           p.data_ptr<float>() + p.numel());
  update.keys = std::move(keys_);
  update.shard_index = std::move(shard_index_);
  keys_.clear();
  shard_index_.clear();
  prioritized_.updater->Push(std::move(update));
}

}  // namespace softq
