#include "replay/rate_tracker.h"

#include <algorithm>

namespace softq {

void RateTracker::Add(uint64_t n, absl::Time now) {
  const int64_t second = absl::ToUnixSeconds(now);
  const int i = static_cast<int>(second % kBuckets);
  if (second_[i] != second) {
    second_[i] = second;
    counts_[i] = 0;
  }
  counts_[i] += n;
}

double RateTracker::Rate(absl::Time now) const {
  const int64_t second = absl::ToUnixSeconds(now);
  uint64_t total = 0;
  for (int i = 0; i < kBuckets; ++i) {
    // Whole seconds only: [second - window, second).
    if (second_[i] >= second - kWindowSeconds && second_[i] < second)
      total += counts_[i];
  }
  const double span =
      std::min<double>(kWindowSeconds, absl::ToDoubleSeconds(now - start_));
  return span > 0.5 ? static_cast<double>(total) / span : 0.0;
}

}  // namespace softq
