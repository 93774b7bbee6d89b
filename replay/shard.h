// One replay shard without the network: a Table (storage), a Sampler (policy)
// and a RateLimiter, kept consistent under one lock, plus the accounting the
// stats report. replay/service.h only translates between the wire and this
// class.
//
// Thread-safe: every public method may be called concurrently. Insert and
// Sample may block in the rate limiter (releasing the lock) until their
// deadline; while both kinds wait for the lock they take turns, so a caller
// of one kind flat out does not starve the other.
//
// Durability (Shard::Open): a shard opened with a checkpoint path and an insert
// log writes every stored batch to the log (replay/insert_log.h) before Insert
// returns, so an acknowledged insert survives kill -9 of the process; a
// checkpoint to that path drops the logged inserts it holds.
//
// Checkpoints do not stop the world: the header is taken at one instant (the
// snapshot) and the items are copied under the lock a slice of
// kCheckpointSliceItems at a time, written without it. An insert that evicts
// items of the snapshot not yet copied first copies them aside for the
// checkpoint (up to kCheckpointSavedBytes, then it waits for the writes); the
// log keeps every insert after the snapshot, so checkpoint + log stays exact.
#ifndef SOFTQ_REPLAY_SHARD_H_
#define SOFTQ_REPLAY_SHARD_H_

#include <atomic>
#include <deque>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/transition_check.h"
#include "proto/replay.pb.h"
#include "replay/batch_check.h"
#include "replay/checkpoint.h"
#include "replay/insert_log.h"
#include "replay/packed_sample.h"
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
  // A Sample's response stays within this many bytes (the server's
  // --max_message_bytes): a larger batch_size is InvalidArgument.
  uint64_t max_sample_bytes = kDefaultMaxMessageBytes;
  // Magnitude bounds on what Insert stores (--max_abs_observation,
  // --max_abs_reward): a batch with a value beyond them is refused whole.
  BatchLimits limits = DefaultShardLimits();
  // Actor ids counted one by one in the stats (--max_tracked_actors, 1 ..
  // kMaxTrackedActors); later ids are counted together (ShardStats'
  // other_actors_inserted).
  uint64_t max_tracked_actors = kDefaultTrackedActors;
  // Seeds the draws of Sample, mixed with shard_id (so shards given one seed
  // draw differently): equal seeds and equal inserts give equal samples.
  // 0: a seed from std::random_device.
  uint64_t seed = 0;
};

// Where a durable shard keeps its state (Shard::Open).
struct DurabilityOptions {
  std::string checkpoint_path;  // CheckpointPath(dir, shard_id)
  std::string log_path;         // InsertLogPath(dir, shard_id)
  InsertLogOptions log;
  // When the log grows past this many bytes, the insert that crossed it writes
  // a checkpoint (and so empties the log) before returning, unless one is
  // running. 0: never.
  uint64_t log_max_bytes = uint64_t{1} << 30;
};

// What Shard::Open found.
struct ShardRecovery {
  bool checkpoint_found = false;
  uint64_t checkpoint_items = 0;
  // Log records already held by the checkpoint (a checkpoint written just
  // before the kill, with the log not yet emptied).
  uint64_t records_skipped = 0;
  // Logged inserts re-inserted on top of the checkpoint.
  uint64_t records_replayed = 0;
  uint64_t transitions_replayed = 0;
  InsertLogRecovery log;
};

// Items a checkpoint copies per hold of the shard's lock.
inline constexpr uint64_t kCheckpointSliceItems = 2048;
// Bytes of items evicted during a checkpoint that inserts save for it before
// they wait for the checkpoint's writes instead.
inline constexpr uint64_t kCheckpointSavedBytes = uint64_t{256} << 20;

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

  // A durable shard: the checkpoint at `durability.checkpoint_path` (or an
  // empty shard when there is none), then every insert in the log at
  // `durability.log_path` whose keys come after it, re-inserted in order with
  // the priorities they were given. From then on Insert logs each batch before
  // returning, and Checkpoint(durability.checkpoint_path) empties the log.
  // Priority updates are not logged: those made since the last checkpoint are
  // lost. DataLoss when the checkpoint or the log is corrupted or the log does
  // not continue the checkpoint (a gap in the keys); InvalidArgument as for
  // Restore. `recovery` (may be null) says what was restored.
  static absl::StatusOr<std::unique_ptr<Shard>> Open(
      const ShardOptions& options, const DurabilityOptions& durability,
      ShardRecovery* recovery);

  // Stores `batch` whole with `priorities` (empty: the current maximum; else
  // one per transition, finite and > 0), after the rate limiter admits it.
  // Returns its keys; InvalidArgument naming the field for bad input, a value
  // beyond ShardOptions::limits included (nothing stored), DEADLINE_EXCEEDED or
  // CANCELLED from the wait. A durable shard appends the batch to its log
  // before storing it and returns OK only once it is in both; when the log
  // cannot be written it returns Internal naming the log's file and nothing of
  // the batch is stored (not sampled, counted or checkpointed; a re-send is
  // stored once).
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
  // As Sample, but the answer in its packed_rows form (SampleRequest), built
  // straight from the table (replay/packed_sample.h).
  absl::StatusOr<PackedSample> SamplePacked(uint32_t batch_size,
                                            absl::Time deadline,
                                            const CancelledFn& cancelled)
      ABSL_LOCKS_EXCLUDED(mu_);

  // Sets priorities by key; evicted keys are counted as missing.
  // InvalidArgument (nothing changed) when the arrays differ in length, exceed
  // 1e6, hold a priority that is not finite and > 0, or a key this shard never
  // gave out (unknown key).
  absl::Status UpdatePriorities(const proto::UpdatePrioritiesRequest& request,
                                proto::UpdatePrioritiesResponse* out)
      ABSL_LOCKS_EXCLUDED(mu_);

  // Fills every field of `out` (per_actor only with `per_actor`: up to
  // max_tracked_actors entries copied under the table's lock, which the
  // once-a-second metrics refresh skips). Never waits on the rate limiter.
  void Stats(proto::ShardStats* out, bool per_actor = true) const
      ABSL_LOCKS_EXCLUDED(mu_);

  // Writes the checkpoint of the shard as it is when called to `path`
  // (replay/checkpoint.h). Inserts and samples go on while it runs, except for
  // a slice's copy (about a millisecond); an insert that evicts items not yet
  // copied copies them aside first (waiting for the writes once
  // kCheckpointSavedBytes are aside). Checkpoints run one at a time. On a
  // durable shard, a checkpoint to its checkpoint path then drops the logged
  // inserts it holds (Internal if that fails; the checkpoint is written, and
  // those records are skipped at recovery).
  absl::StatusOr<CheckpointWritten> Checkpoint(const std::string& path)
      ABSL_LOCKS_EXCLUDED(mu_);

  // Automatic checkpoints (DurabilityOptions::log_max_bytes) that failed so
  // far. Each failure also writes one line to stderr naming the checkpoint's
  // path and the error.
  uint64_t checkpoint_failures() const ABSL_LOCKS_EXCLUDED(mu_);

  // Ends current and future rate-limiter waits with CANCELLED (shutdown).
  void Cancel() ABSL_LOCKS_EXCLUDED(mu_);

  const Table& table() const { return *table_; }
  const ShardOptions& options() const { return options_; }

 private:
  Shard(const ShardOptions& options, std::unique_ptr<Table> table,
        std::unique_ptr<Sampler> sampler);

  // Re-inserts one logged batch during Open (skipped when the table already
  // holds its keys).
  absl::Status ApplyLoggedLocked(InsertLogRecord&& record,
                                 ShardRecovery* recovery)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<CheckpointWritten> CheckpointInSlices(const std::string& path)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(checkpoint_mu_) ABSL_LOCKS_EXCLUDED(mu_);
  // The items of the running checkpoint's snapshot an insert of `n` items
  // evicts that are neither copied nor saved yet: [*from, *to).
  void UnsavedEvictionsLocked(uint64_t n, uint64_t* from, uint64_t* to) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // True when an insert of `n` items may go on now: SaveEvictionsLocked has
  // room for what it evicts.
  bool CanSaveEvictionsLocked(uint64_t n) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Encodes those items into saved_ for the checkpoint. REQUIRES:
  // CanSaveEvictionsLocked(n).
  void SaveEvictionsLocked(uint64_t n) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Inserts and samples take turns at mu_ while both kinds wait: absl::Mutex is
  // not fair, and a caller that takes it again as soon as it lets go (an
  // insert stream flat out) would keep the other kind waiting for tens of ms.
  // A caller counts itself in waiting_ before taking mu_, then
  // AwaitTurnLocked: it goes on unless the other kind waits and the last one
  // let in was of its own kind.
  enum Kind { kInsertKind = 0, kSampleKind = 1 };
  void AwaitTurnLocked(Kind kind) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // What a Sample drew, before its rows are read.
  struct Draw {
    std::vector<uint64_t> keys;
    std::vector<double> probabilities;  // of each item within this shard
    uint64_t table_size = 0;
    TableInfo info;
  };
  // InvalidArgument unless 1 <= batch_size <= capacity.
  absl::Status CheckSampleSize(uint32_t batch_size) const;
  // A Sample's part under mu_, once counted in waiting_: its turn, the rate
  // limiter, the size check and the draw, counted.
  absl::Status DrawLocked(uint32_t batch_size, absl::Time deadline,
                          const CancelledFn& cancelled, Draw* draw)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A Sample: the draw under mu_, then `read(draw, release)`, which reads the
  // drawn rows from the table and calls `release` (mu_'s) once it holds the
  // table's lock. Its error (a key not held) is returned as Internal.
  using ReadFn = std::function<absl::Status(
      const Draw& draw, const std::function<void()>& release)>;
  absl::Status DrawAndRead(uint32_t batch_size, absl::Time deadline,
                           const CancelledFn& cancelled, const ReadFn& read)
      ABSL_LOCKS_EXCLUDED(mu_);

  const ShardOptions options_;
  const absl::Time start_;
  // Held for a whole checkpoint (they run one at a time); taken before mu_.
  absl::Mutex checkpoint_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  mutable absl::Mutex mu_;
  // Keys [copy_cursor_, copy_end_) of the running checkpoint's snapshot are
  // not written yet (empty when none runs); of those, [copy_cursor_,
  // saved_end_) were evicted by inserts, which saved them first, encoded in
  // the checkpoint's layout, in saved_ (in key order, saved_bytes_ in all).
  struct SavedItems {
    uint64_t first_key = 0;
    uint64_t end_key = 0;
    std::string bytes;
  };
  std::atomic<int> waiting_[2] = {};  // callers of each Kind not yet let in
  Kind last_turn_ ABSL_GUARDED_BY(mu_) = kSampleKind;
  uint64_t copy_cursor_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t copy_end_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t saved_end_ ABSL_GUARDED_BY(mu_) = 0;
  CheckpointHeader copy_header_ ABSL_GUARDED_BY(mu_);
  std::deque<SavedItems> saved_ ABSL_GUARDED_BY(mu_);
  uint64_t saved_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  // The table has its own lock too; it changes only under mu_, which keeps it
  // consistent with the sampler.
  const std::unique_ptr<Table> table_;
  const std::unique_ptr<Sampler> sampler_ ABSL_PT_GUARDED_BY(mu_);
  RateLimiter rate_limiter_;  // guarded by mu_ (passed to each call)
  std::mt19937_64 gen_ ABSL_GUARDED_BY(mu_);
  uint64_t samples_total_ ABSL_GUARDED_BY(mu_) = 0;
  RateTracker insert_rate_ ABSL_GUARDED_BY(mu_);
  RateTracker sample_rate_ ABSL_GUARDED_BY(mu_);
  // The actors' finished episodes (TransitionBatch.finished_returns) of stored
  // batches: their count, and the latest kRecentReturns returns.
  static constexpr size_t kRecentReturns = 1000;
  uint64_t episodes_total_ ABSL_GUARDED_BY(mu_) = 0;
  std::deque<double> recent_returns_ ABSL_GUARDED_BY(mu_);
  // Durable shards only (set by Open before the shard is shared).
  std::unique_ptr<InsertLog> log_;
  DurabilityOptions durability_;
  // Non-OK when the log holds a record the table refused and it could not be
  // taken back: inserts are refused until a checkpoint empties the log.
  absl::Status log_error_ ABSL_GUARDED_BY(mu_);
  uint64_t checkpoint_failures_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t checkpoints_written_ ABSL_GUARDED_BY(mu_) = 0;
  // Log length at which the next automatic checkpoint is tried.
  uint64_t auto_checkpoint_bytes_ ABSL_GUARDED_BY(mu_) = 0;
};

// Resident set size of this process in bytes (from /proc/self/statm), 0 if
// unknown.
uint64_t ResidentBytes();

}  // namespace softq

#endif  // SOFTQ_REPLAY_SHARD_H_
