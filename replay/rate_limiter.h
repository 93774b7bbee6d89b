// Rate limiter of a shard (after Reverb's): sampling is refused until the table
// holds min_size_to_sample items, and, when samples_per_insert > 0, the
// difference
//   diff = inserts * samples_per_insert - samples            (in samples)
// is kept within [offset - error_buffer, offset + error_buffer], where
// offset = min_size_to_sample * samples_per_insert: an insert waits while diff
// is above the band, a sample while it is below.
//
// Decision that differs from Reverb: a whole batch is admitted when the band
// allows its first item, so one call may overshoot the band by its own size.
// Checking the whole batch would deadlock as soon as a batch is wider than the
// band (a 256-sample batch against a 100-sample buffer could never be
// admitted). Also unlike Reverb, Restore() re-centres the counters on the band,
// so a restored shard never comes back with inserts blocked.
//
// Thread-safety: the limiter is guarded by its owner's mutex (the shard's),
// which every method takes as its first argument and REQUIRES held (as in
// Reverb, so clang's -Wthread-safety checks the callers).
#ifndef SOFTQ_REPLAY_RATE_LIMITER_H_
#define SOFTQ_REPLAY_RATE_LIMITER_H_

#include <cstdint>
#include <functional>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace softq {

struct RateLimiterOptions {
  // Items the table must hold before any sample (>= 1).
  uint64_t min_size_to_sample = 1;
  // Target samples per inserted item; 0 disables the ratio (only the minimum
  // size applies).
  double samples_per_insert = 0;
  // Half-width of the allowed band around the target, in samples (>= 0).
  double error_buffer = 0;
};

// Snapshot for stats.
struct RateLimiterInfo {
  RateLimiterOptions options;
  uint64_t inserts = 0;  // counted by the limiter (reset by Restore)
  uint64_t samples = 0;
  uint32_t blocked_inserts = 0;  // calls waiting now
  uint32_t blocked_samples = 0;
};

// Cancellation probe for a waiting call (e.g. the RPC's IsCancelled); may be
// empty.
using CancelledFn = std::function<bool()>;

class RateLimiter {
 public:
  // OK, or InvalidArgument naming the flag: min_size_to_sample in [1,
  // capacity], samples_per_insert >= 0, error_buffer >= 0, and error_buffer >=
  // 1 when the ratio is on (an empty band admits nothing).
  static absl::Status Validate(const RateLimiterOptions& options,
                               uint64_t capacity);

  explicit RateLimiter(RateLimiterOptions options);

  // Blocks until an insert is allowed, `deadline` passes (DEADLINE_EXCEEDED),
  // `cancelled` returns true or Cancel() is called (CANCELLED). Releases `mu`
  // while waiting.
  absl::Status AwaitCanInsert(absl::Mutex* mu, absl::Time deadline,
                              const CancelledFn& cancelled)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  // Same for a sample from a table holding `size` items; `size` is re-read via
  // Inserted().
  absl::Status AwaitCanSample(absl::Mutex* mu, absl::Time deadline,
                              const CancelledFn& cancelled)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);

  // Non-blocking checks.
  bool CanInsert(absl::Mutex* mu) const ABSL_SHARED_LOCKS_REQUIRED(mu);
  bool CanSample(absl::Mutex* mu) const ABSL_SHARED_LOCKS_REQUIRED(mu);

  // Records `n` items stored; the table now holds `size`. Wakes waiting
  // samplers.
  void Inserted(absl::Mutex* mu, uint64_t n, uint64_t size)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  // Records `n` items sampled. Wakes waiting inserters.
  void Sampled(absl::Mutex* mu, uint64_t n) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  // After a restore of a table holding `size` items: counters placed at the
  // centre of the band (inserts = size, samples as if the ratio had been kept
  // exactly).
  void Restore(absl::Mutex* mu, uint64_t size)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);

  // Ends every current and future wait with CANCELLED (shutdown). Irreversible.
  void Cancel(absl::Mutex* mu) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);

  RateLimiterInfo Info(absl::Mutex* mu) const ABSL_SHARED_LOCKS_REQUIRED(mu);

 private:
  absl::Status Await(absl::Mutex* mu, bool insert, absl::Time deadline,
                     const CancelledFn& cancelled)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  bool CanInsertLocked() const;
  bool CanSampleLocked() const;
  double Diff() const;

  const RateLimiterOptions options_;
  // Guarded by the owner's mutex (the `mu` argument of every method).
  uint64_t size_ = 0;     // items in the table
  uint64_t inserts_ = 0;  // items inserted, as counted here
  uint64_t samples_ = 0;  // items sampled, as counted here
  uint32_t blocked_inserts_ = 0;
  uint32_t blocked_samples_ = 0;
  bool cancelled_ = false;
};

}  // namespace softq

#endif  // SOFTQ_REPLAY_RATE_LIMITER_H_
