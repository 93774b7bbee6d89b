// Fast acceptance test for TransitionBatch on the insert hot path, and the
// shard's magnitude bounds (poison: finite but absurd values, issue 29).
// ValidateTransitionBatch (common/transition_check.h) is the reference for the
// shape and finiteness; this gives the same verdict, plus the bounds, with one
// branch-free, vectorizable scan, and falls back to a slow path to produce the
// exact error message when the batch is bad. Pure, thread-safe.
#ifndef SOFTQ_REPLAY_BATCH_CHECK_H_
#define SOFTQ_REPLAY_BATCH_CHECK_H_

#include <limits>

#include "absl/status/status.h"
#include "proto/transition.pb.h"

namespace softq {

// replay_server's defaults for --max_abs_observation and --max_abs_reward.
inline constexpr double kDefaultMaxAbsObservation = 1e6;
inline constexpr double kDefaultMaxAbsReward = 1e6;

// The largest magnitudes a shard stores. A value v passes when |v| <= bound;
// the bounds must be > 0 (std::numeric_limits<float>::max(): finite is enough).
struct BatchLimits {
  // observations and next_observations (--max_abs_observation).
  float max_abs_observation = std::numeric_limits<float>::max();
  // rewards (--max_abs_reward).
  float max_abs_reward = std::numeric_limits<float>::max();
};

// The bounds a shard applies by default (kDefaultMaxAbs*).
BatchLimits DefaultShardLimits();

// OK, or InvalidArgument naming the flag, when `limits` are usable bounds.
absl::Status CheckBatchLimits(const BatchLimits& limits);

// Same result as ValidateTransitionBatch(batch), faster when the batch is good;
// then, for a batch that passes it, InvalidArgument naming the first value
// beyond `limits` ("TransitionBatch.observations[5] is 1e+30, beyond ...").
absl::Status CheckTransitionBatch(const proto::TransitionBatch& batch,
                                  const BatchLimits& limits = BatchLimits());

}  // namespace softq

#endif  // SOFTQ_REPLAY_BATCH_CHECK_H_
