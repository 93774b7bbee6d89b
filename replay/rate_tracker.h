// Events per second over a sliding window of whole seconds (for the shard's
// insert and sample rates). Not thread-safe: REQUIRES external synchronization.
#ifndef SOFTQ_REPLAY_RATE_TRACKER_H_
#define SOFTQ_REPLAY_RATE_TRACKER_H_

#include <array>
#include <cstdint>

#include "absl/time/time.h"

namespace softq {

class RateTracker {
 public:
  // `start`: when counting began (rates over a shorter uptime divide by the
  // uptime).
  explicit RateTracker(absl::Time start) : start_(start) {}

  // Adds `n` events at time `now` (non-decreasing across calls).
  void Add(uint64_t n, absl::Time now);
  // Events per second over the last kWindowSeconds whole seconds before `now`.
  double Rate(absl::Time now) const;

  static constexpr int kWindowSeconds = 5;

 private:
  static constexpr int kBuckets = kWindowSeconds + 2;
  absl::Time start_;
  std::array<uint64_t, kBuckets> counts_{};
  std::array<int64_t, kBuckets> second_{};  // the second each bucket counts
};

}  // namespace softq

#endif  // SOFTQ_REPLAY_RATE_TRACKER_H_
