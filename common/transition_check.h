// Validation of the wire format's TransitionBatch, without LibTorch: the replay
// shard and the tensor codec both call it, so bad input is rejected the same
// way everywhere.
#ifndef SOFTQ_COMMON_TRANSITION_CHECK_H_
#define SOFTQ_COMMON_TRANSITION_CHECK_H_

#include <cstdint>

#include "absl/status/status.h"
#include "proto/transition.pb.h"

namespace softq {

inline constexpr uint32_t kMaxObservationDim = 4096;
inline constexpr uint32_t kMaxActionDim = 256;
inline constexpr int64_t kMaxBatchTransitions = 1 << 20;
// The largest message a replay shard takes or sends by default
// (--max_message_bytes).
inline constexpr int64_t kDefaultMaxMessageBytes = int64_t{64} << 20;

// Bytes one transition adds to a TransitionBatch message, an upper estimate:
// its floats (observation, action, reward, next observation), done flag,
// episode and step ids, with their wire tags.
inline int64_t TransitionMessageBytes(int64_t observation_dim,
                                      int64_t action_dim) {
  return static_cast<int64_t>(sizeof(float)) *
             (2 * observation_dim + action_dim + 1) +
         24;
}
// The same for a sampled transition, with its key and probability.
inline int64_t SampledTransitionBytes(int64_t observation_dim,
                                      int64_t action_dim) {
  return TransitionMessageBytes(observation_dim, action_dim) + 16;
}

// Number of transitions in `batch` (rewards_size()); meaningful only once
// validated.
inline int64_t TransitionCount(const proto::TransitionBatch& batch) {
  return batch.rewards_size();
}

// OK when `batch` is well formed: dimensions in range, every array of the size
// the dimensions imply, at least one and at most kMaxBatchTransitions
// transitions, every float finite. Otherwise InvalidArgument naming the first
// bad field and its value.
absl::Status ValidateTransitionBatch(const proto::TransitionBatch& batch);
// The same without looking at the values (no finiteness check): the shape
// alone.
absl::Status ValidateTransitionShape(const proto::TransitionBatch& batch);

}  // namespace softq

#endif  // SOFTQ_COMMON_TRANSITION_CHECK_H_
