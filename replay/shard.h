// One replay shard without the network: a Table (storage), a Sampler (policy)
// and a RateLimiter, kept consistent under one lock, plus the accounting the
// stats report. replay/service.h only translates between the wire and this
// class.
//
// Thread-safe: every public method may be called concurrently. Insert and
// Sample may block in the rate limiter (releasing the lock) until their
// deadline.
#ifndef SOFTQ_REPLAY_SHARD_H_
#define SOFTQ_REPLAY_SHARD_H_

#include <memory>
#include <random>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "proto/replay.pb.h"
#include "replay/checkpoint.h"
#include "replay/rate_limiter.h"
#include "replay/rate_tracker.h"
#include "replay/sampler.h"
#include "replay/table.h"

namespace softq {

struct ShardOptions {
  std::string shard_id = "0";
  uint64_t capacity = 1000000;
  // 0: fixed by the first insert.
  uint32_t observation_dim = 0;
  uint32_t action_dim = 0;
  std::string sampler = "uniform";  // or "prioritized"
  double priority_exponent = 0.6;   // alpha, prioritized only
  RateLimiterOptions rate_limiter;
};

class Shard {
 public:
  // Validates `options` (InvalidArgument naming the flag) and builds an empty
  // shard.
  static absl::StatusOr<std::unique_ptr<Shard>> Create(
      const ShardOptions& options);

  // Builds a shard holding the contents of the checkpoint at `path`. NotFound
  // when there is none; DataLoss when it is corrupted; InvalidArgument when its
  // capacity or dimensions differ from `options`.
  static absl::StatusOr<std::unique_ptr<Shard>> Restore(
      const ShardOptions& options, const std::string& path);

  // Stores `batch` whole with `priorities` (empty: the current maximum; else
  // one per transition, finite and > 0), after the rate limiter admits it.
  // Returns its keys; InvalidArgument naming the field for bad input (nothing
  // stored), DEADLINE_EXCEEDED or CANCELLED from the wait.
  absl::StatusOr<KeyRange> Insert(
      const proto::TransitionBatch& batch,
      const google::protobuf::RepeatedField<float>& priorities,
      absl::Time deadline, const CancelledFn& cancelled = nullptr)
      ABSL_LOCKS_EXCLUDED(mu_);

  // Draws `batch_size` in [1, capacity] items with replacement into `out`
  // (batch, keys, probabilities, table_size), after the rate limiter admits it.
  absl::Status Sample(uint32_t batch_size, absl::Time deadline,
                      const CancelledFn& cancelled, proto::SampleResponse* out)
      ABSL_LOCKS_EXCLUDED(mu_);

  // Sets priorities by key; evicted keys are counted as missing.
  // InvalidArgument (nothing changed) when the arrays differ in length, exceed
  // 1e6, hold a priority that is not finite and > 0, or a key this shard never
  // gave out (unknown key).
  absl::Status UpdatePriorities(const proto::UpdatePrioritiesRequest& request,
                                proto::UpdatePrioritiesResponse* out)
      ABSL_LOCKS_EXCLUDED(mu_);

  // Fills every field of `out`. Never waits on the rate limiter.
  void Stats(proto::ShardStats* out) const ABSL_LOCKS_EXCLUDED(mu_);

  // Writes the checkpoint to `path` (replay/checkpoint.h). Inserts and samples
  // wait while it runs.
  absl::StatusOr<CheckpointWritten> Checkpoint(const std::string& path)
      ABSL_LOCKS_EXCLUDED(mu_);

  // Ends current and future rate-limiter waits with CANCELLED (shutdown).
  void Cancel() ABSL_LOCKS_EXCLUDED(mu_);

  const Table& table() const { return *table_; }
  const ShardOptions& options() const { return options_; }

 private:
  Shard(const ShardOptions& options, std::unique_ptr<Table> table,
        std::unique_ptr<Sampler> sampler);

  const ShardOptions options_;
  const absl::Time start_;
  mutable absl::Mutex mu_;
  // The table has its own lock too; it changes only under mu_, which keeps it
  // consistent with the sampler.
  const std::unique_ptr<Table> table_;
  const std::unique_ptr<Sampler> sampler_ ABSL_PT_GUARDED_BY(mu_);
  RateLimiter rate_limiter_;  // guarded by mu_ (passed to each call)
  std::mt19937_64 gen_ ABSL_GUARDED_BY(mu_);
  uint64_t samples_total_ ABSL_GUARDED_BY(mu_) = 0;
  RateTracker insert_rate_ ABSL_GUARDED_BY(mu_);
  RateTracker sample_rate_ ABSL_GUARDED_BY(mu_);
};

// Resident set size of this process in bytes (from /proc/self/statm), 0 if
// unknown.
uint64_t ResidentBytes();

}  // namespace softq

#endif  // SOFTQ_REPLAY_SHARD_H_
