#include "learner/replay_batch_source.h"

#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/tensor_codec.h"
#include "learner/sql_math.h"

namespace softq {

absl::StatusOr<TransitionTensors> ReplayBatchSource::Next(
    absl::Duration timeout) {
  const absl::Time start = absl::Now();
  absl::StatusOr<SampledBatch> sampled = sampler_->Next(timeout);
  waited_ += absl::Now() - start;
  if (!sampled.ok()) return sampled.status();
  // The sampler's rows are already the packed layout: the tensor takes them
  // over (no copy), or, for a GPU, one copy into page-locked memory so that
  // the batch's copy to the device is asynchronous.
  const int64_t n = sampled->size();
  const int64_t width = sampled->width();
  if (sampled->rows.size() != static_cast<size_t>(n * width)) {
    return absl::InternalError(
        absl::StrCat("replay batch: ", sampled->rows.size(), " floats for ", n,
                     " rows of width ", width));
  }
  torch::Tensor packed;
  if (pin_memory_) {
    packed = torch::empty(
        {n, width},
        torch::TensorOptions().dtype(torch::kFloat32).pinned_memory(true));
    std::memcpy(packed.data_ptr<float>(), sampled->rows.data(),
                sampled->rows.size() * sizeof(float));
  } else {
    auto* rows = new SampledRows(std::move(sampled->rows));
    packed = torch::from_blob(
        rows->data(), {n, width}, [rows](void*) { delete rows; },
        torch::TensorOptions().dtype(torch::kFloat32));
  }
  TransitionTensors batch =
      PackedTransitions(packed, sampled->observation_dim, sampled->action_dim);
  sampled_ += n;
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
