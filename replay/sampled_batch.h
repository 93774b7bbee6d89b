// SampledBatch: one batch the learner draws from the replay shards
// (ReplaySampler, replay/replay_sampler.h), its transitions packed row by row
// in the layout of the learner's packed tensor (common/tensor_codec.h,
// TransitionTensors::packed), so that handing it to LibTorch is one copy or
// none. A plain value: thread-compatible.
#ifndef SOFTQ_REPLAY_SAMPLED_BATCH_H_
#define SOFTQ_REPLAY_SAMPLED_BATCH_H_

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <new>
#include <vector>

namespace softq {

// Columns of one sampled row: observation (O) | action (D) | reward | next
// observation (O) | done (1.0 or 0.0). Equals PackedWidth in tensor_codec.h.
inline int64_t SampledRowWidth(uint32_t observation_dim, uint32_t action_dim) {
  return 2 * static_cast<int64_t>(observation_dim) + action_dim + 2;
}

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

// memcpy of one row's field: the sizes of small observations and actions (up
// to 4 floats) as fixed-size copies the compiler inlines, larger ones through
// memcpy. At observation 2 a call per field cost as much as moving the row.
inline void CopyField(void* to, const void* from, size_t bytes) {
  switch (bytes) {
    case 4:
      std::memcpy(to, from, 4);
      return;
    case 8:
      std::memcpy(to, from, 8);
      return;
    case 12:
      std::memcpy(to, from, 12);
      return;
    case 16:
      std::memcpy(to, from, 16);
      return;
    default:
      std::memcpy(to, from, bytes);
  }
}

struct SampledBatch {
  uint32_t observation_dim = 0;
  uint32_t action_dim = 0;
  // size() rows of width() floats, row-major (SampledRowWidth).
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
  int64_t width() const { return SampledRowWidth(observation_dim, action_dim); }
  // Row i's fields (i < size()).
  const float* observation(int i) const { return rows.data() + i * width(); }
  const float* action(int i) const { return observation(i) + observation_dim; }
  float reward(int i) const { return action(i)[action_dim]; }
  const float* next_observation(int i) const {
    return action(i) + action_dim + 1;
  }
  bool done(int i) const { return observation(i)[width() - 1] != 0.0f; }
};

}  // namespace softq

#endif  // SOFTQ_REPLAY_SAMPLED_BATCH_H_
