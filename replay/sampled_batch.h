// SampledBatch: one batch the learner draws from the replay shards
// (ReplaySampler, replay/replay_sampler.h), its transitions packed row by row
// in the layout of the learner's packed tensor (common/row_layout.h), so that
// handing it to LibTorch is one copy or none. A plain value: thread-compatible.
#ifndef SOFTQ_REPLAY_SAMPLED_BATCH_H_
#define SOFTQ_REPLAY_SAMPLED_BATCH_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <vector>

#include "common/row_layout.h"

namespace softq {

// An allocator whose resize leaves new floats uninitialized: every row of a
// sampled batch is written by its decoder, so zero-filling first would only
// cost memory bandwidth.
template <typename T>
struct UninitializedAllocator : std::allocator<T> {
  template <typename U>
  struct rebind {
    using other = UninitializedAllocator<U>;
  };
  UninitializedAllocator() = default;
  template <typename U>
  UninitializedAllocator(const UninitializedAllocator<U>&) {}  // NOLINT
  template <typename U>
  void construct(U* p) {
    ::new (static_cast<void*>(p)) U;
  }
  template <typename U, typename... Args>
  void construct(U* p, Args&&... args) {
    ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
  }
};

using SampledRows = std::vector<float, UninitializedAllocator<float>>;

struct SampledBatch {
  uint32_t observation_dim = 0;
  uint32_t action_dim = 0;
  // size() rows of layout().width() floats, row-major.
  SampledRows rows;
  // One per row, or both empty unless every row's shard stores them.
  std::vector<uint64_t> episode_ids;
  std::vector<uint32_t> step_ids;
  std::vector<uint64_t> keys;    // item key within its shard
  std::vector<int> shard_index;  // index into ReplayClientOptions::addresses
  // Overall probability of each item in one draw: P(shard) * P(item | shard),
  // with P(shard) = shard size / total size. Importance weight: (N * p)^-beta,
  // N = total_size.
  std::vector<double> probabilities;
  uint64_t total_size = 0;  // items held by the shards the batch was drawn from

  int size() const { return static_cast<int>(keys.size()); }
  RowLayout layout() const { return RowLayout(observation_dim, action_dim); }
  int64_t width() const { return layout().width(); }
  // Row i's fields (i < size()).
  const float* observation(int i) const { return rows.data() + i * width(); }
  const float* action(int i) const {
    return observation(i) + layout().action();
  }
  float reward(int i) const { return observation(i)[layout().reward()]; }
  const float* next_observation(int i) const {
    return observation(i) + layout().next_observation();
  }
  bool done(int i) const { return observation(i)[layout().done()] != 0.0f; }
};

}  // namespace softq

#endif  // SOFTQ_REPLAY_SAMPLED_BATCH_H_
