// ReplayWriter: an actor's inserts into the replay shards, acknowledged per
// batch, with back-pressure and re-sends to a live shard when one goes away;
// never blocks without a deadline. Thread-safe.
#ifndef SOFTQ_REPLAY_REPLAY_WRITER_H_
#define SOFTQ_REPLAY_REPLAY_WRITER_H_

#include <grpcpp/grpcpp.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "proto/replay.grpc.pb.h"
#include "replay/replay_channel.h"

namespace softq {

// Writer used by an actor. Spreads batches over the shards round robin, streams
// them with per-batch acknowledgements, and blocks (back-pressure) while every
// live shard has max_in_flight_batches unacknowledged batches. When a shard
// goes away its unacknowledged batches are re-sent to a live shard, and the
// shard is reconnected with backoff; delivery is therefore at least once (a
// batch whose ack was lost in the crash may be stored twice). Queued batches of
// one actor may travel as one message (coalesce_bytes); a shard that rejects
// such a message rejects all the batches in it.
//
// Thread-safe. One background thread per shard (plus one per open stream for
// the acks), all joined by the destructor, which does not flush: call Flush
// first to keep pending batches.
class ReplayWriter {
 public:
  static absl::StatusOr<std::unique_ptr<ReplayWriter>> Create(
      ReplayClientOptions options);
  ~ReplayWriter();

  // Validates `batch` (InvalidArgument naming the field) and queues it for a
  // shard. Blocks on back-pressure for at most rpc_timeout: then
  // DEADLINE_EXCEEDED; UNAVAILABLE naming the shards, without waiting, while
  // none is reachable (a shard that refused a stream as busy, replay/busy.h,
  // counts as unreachable until a backoff of 0.1 to 1 s has passed).
  // Also returns (once) an error a shard gave an earlier batch, e.g.
  // INVALID_ARGUMENT for dimensions that differ from the table's; that batch
  // was dropped, and this call's batch is not queued (insert it again to
  // store it).
  absl::Status Insert(proto::TransitionBatch batch) ABSL_LOCKS_EXCLUDED(mu_);

  // Waits until every queued batch is acknowledged: OK, DEADLINE_EXCEEDED after
  // `timeout` (naming the shards' last errors), UNAVAILABLE as soon as no shard
  // is reachable, or a shard's earlier error as for Insert.
  absl::Status Flush(absl::Duration timeout) ABSL_LOCKS_EXCLUDED(mu_);

  // Transitions acknowledged (stored) so far.
  uint64_t acknowledged() const ABSL_LOCKS_EXCLUDED(mu_);
  // Batches re-sent after a shard went away.
  uint64_t resent_batches() const ABSL_LOCKS_EXCLUDED(mu_);
  // Batches queued and not yet acknowledged.
  size_t pending_batches() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  struct Shard;
  explicit ReplayWriter(ReplayClientOptions options);
  void Run(int index) ABSL_LOCKS_EXCLUDED(mu_);
  // One stream's life: sends pending batches, reads acks, returns when the
  // stream breaks or the writer stops.
  grpc::Status Stream(int index) ABSL_LOCKS_EXCLUDED(mu_);
  void ReadAcks(int index,
                grpc::ClientReaderWriter<proto::InsertRequest,
                                         proto::InsertResponse>* stream,
                bool* broken) ABSL_LOCKS_EXCLUDED(mu_);
  // Moves `from`'s unacknowledged batches to live shards, if any.
  void RequeueLocked(int from) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::string ShardErrorsLocked() const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // Whether some shard's stream is up (or not yet found down).
  bool AnyShardUpLocked() const ABSL_SHARED_LOCKS_REQUIRED(mu_);

  const ReplayClientOptions options_;
  mutable absl::Mutex mu_;
  std::vector<std::unique_ptr<Shard>> shards_;  // fixed size after Create
  size_t next_shard_ ABSL_GUARDED_BY(mu_) = 0;  // round-robin cursor
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status error_ ABSL_GUARDED_BY(mu_);  // reported once by Insert/Flush
  uint64_t acknowledged_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t resent_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<std::thread> threads_;
};

}  // namespace softq

#endif  // SOFTQ_REPLAY_REPLAY_WRITER_H_
