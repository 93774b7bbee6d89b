// Client library of the replay service, used by actors (ReplayWriter) and the
// learner (ReplaySampler). Both talk to any number of shards (replay_server
// processes), never block without a deadline, and survive shards that go away.
#ifndef SOFTQ_REPLAY_CLIENT_H_
#define SOFTQ_REPLAY_CLIENT_H_

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/security.h"
#include "proto/replay.grpc.pb.h"
#include "replay/sampled_batch.h"

namespace softq {

struct ReplayClientOptions {
  // "host:port" of every shard; at least one.
  std::vector<std::string> addresses;
  // Longest any single call (RPC, back-pressure wait) may take.
  absl::Duration rpc_timeout = absl::Seconds(10);
  // HTTP/2 keepalive pings: a shard that stops answering without closing its
  // connection (a frozen process, a host gone, a partition) is found within
  // about twice this, its streams end and the writer re-sends their
  // unacknowledged batches. At least 1 s (what replay_server permits).
  absl::Duration keepalive = absl::Seconds(10);
  // Unacknowledged batches per shard before Insert blocks (back-pressure),
  // however many messages carry them (coalescing). It bounds how far an actor
  // runs ahead of a shard that holds its inserts back (rate limiter), and so
  // how stale its data is when stored.
  int max_in_flight_batches = 8;
  // ReplayWriter: a batch that finds its shard's last queued message not yet
  // sent joins it when both come from one actor and the message stays within
  // this many bytes of payload (fewer, larger messages for small batches;
  // nothing is held back to wait for others). 0 disables. Keep it well below
  // the shards' --max_message_bytes.
  int64_t coalesce_bytes = 256 << 10;
  // ReplaySampler: seeds its split of each batch over the shards (unset:
  // std::random_device). With shards started with --seed that hold the same
  // items, sample_rounds_in_flight 1, and every round answered in one RPC per
  // shard, the batches repeat (with more rounds in flight a shard may serve
  // them in either order).
  std::optional<uint64_t> sample_seed;
  // ReplaySampler: rounds of batches whose Sample RPCs are in flight at once
  // (at most one RPC per shard each, unless a round is wider than a shard
  // answers in one), so that the shards draw and send the next rounds while
  // the sampler decodes one. At least 1.
  int sample_rounds_in_flight = 4;
  // ReplayWriter: called once per message a shard acknowledges as stored (OK),
  // with that message's batch (all the caller's batches coalesced into it), on
  // the writer's ack thread and under the writer's lock, before acknowledged()
  // counts it and before Flush can return. A batch re-sent after a shard went
  // away is reported once, by the shard that acknowledges it; a batch never
  // acknowledged is never reported. Must be quick and must not call the writer.
  // Unset: nothing is called.
  std::function<void(const proto::TransitionBatch&)> on_acknowledged;
  // The job's credentials (common/security.h); default: insecure.
  SecurityConfig security;
};

// OK, or InvalidArgument naming the bad field
// ("ReplayClientOptions.addresses[1] ...").
absl::Status ValidateClientOptions(const ReplayClientOptions& options);

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

// Sampler used by the learner. A background thread draws batches ahead (up to
// `prefetch`, counting those ready and those on their way) in rounds of
// several batches, up to sample_rounds_in_flight rounds at once: each batch
// is split over the shards in proportion to their sizes (multinomially), each
// shard's parts of a round are fetched in one RPC, and each answer is decoded
// as it arrives straight into the rows of its batches (SampledBatch,
// replay/sample_decoder.h). Shards that are down or not yet sampleable are
// skipped and retried with backoff, as long as one shard answers.
//
// Thread-safe; the background thread is joined by the destructor.
class ReplaySampler {
 public:
  // batch_size >= 1, prefetch >= 1.
  static absl::StatusOr<std::unique_ptr<ReplaySampler>> Create(
      ReplayClientOptions options, int batch_size, int prefetch = 2);
  ~ReplaySampler();

  // The next prefetched batch. DEADLINE_EXCEEDED after `timeout` (with the last
  // reason no batch could be drawn, e.g. "no shard answers" or the rate
  // limiter), or a permanent error a shard returned (e.g. INVALID_ARGUMENT for
  // a batch size above a shard's capacity).
  absl::StatusOr<SampledBatch> Next(absl::Duration timeout)
      ABSL_LOCKS_EXCLUDED(mu_);

  // Sets priorities of sampled items (parallel arrays, as returned in
  // SampledBatch), one RPC per shard concerned, in parallel. InvalidArgument
  // for mismatched lengths or a bad shard index; the first shard error
  // otherwise (naming the shard). Keys already evicted are not an error.
  absl::Status UpdatePriorities(const std::vector<uint64_t>& keys,
                                const std::vector<int>& shard_index,
                                const std::vector<float>& priorities);

 private:
  struct Shard;
  struct Round;
  struct Call;
  ReplaySampler(ReplayClientOptions options, int batch_size, int prefetch);
  void Run() ABSL_LOCKS_EXCLUDED(mu_);
  // Starts a round of at most `count` batches on `cq` (fewer when its rows
  // would make large RPCs). Transient problems (no shard can be sampled)
  // return UNAVAILABLE.
  absl::StatusOr<std::unique_ptr<Round>> StartRound(int count,
                                                    grpc::CompletionQueue* cq)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Takes one finished call: decodes its answer into its round, or notes its
  // shard's failure.
  void Finished(Call* call) ABSL_LOCKS_EXCLUDED(mu_);
  // A round whose calls have all finished: its batches, or the first error.
  absl::StatusOr<std::vector<SampledBatch>> Complete(Round* round);
  void RefreshSizes() ABSL_LOCKS_EXCLUDED(mu_);

  const ReplayClientOptions options_;
  const int batch_size_;
  const int prefetch_;
  std::mt19937_64 split_gen_;  // options_.sample_seed; owned by Run's thread
  std::vector<std::unique_ptr<Shard>>
      shards_;  // fixed after Create; owned by Run's thread
  mutable absl::Mutex mu_;
  std::deque<absl::StatusOr<SampledBatch>> ready_ ABSL_GUARDED_BY(mu_);
  absl::Status last_error_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  // Contexts of RPCs in flight, cancelled by the destructor.
  std::vector<grpc::ClientContext*> in_flight_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

// Batches in one round of a ReplaySampler with these settings (each shard's
// share of a round travels in one RPC): about 1 MiB of rows, and at most
// prefetch / rounds_in_flight (rounded up) so that the rounds overlap; at
// least 1. Pure; for benchmarks that mimic the sampler's RPCs.
int SampleRoundBatches(int batch_size, int prefetch, int rounds_in_flight,
                       uint32_t observation_dim, uint32_t action_dim);

// Stats of every shard, queried in parallel; connection attempts are retried
// until `timeout`. UNAVAILABLE (or the call's status) naming the first shard
// that did not answer.
absl::StatusOr<std::vector<proto::ShardStats>> QueryStats(
    const std::vector<std::string>& addresses, absl::Duration timeout,
    const SecurityConfig& security = SecurityConfig());
// Same, one result per shard, for tools that show partial answers.
std::vector<absl::StatusOr<proto::ShardStats>> QueryStatsEach(
    const std::vector<std::string>& addresses, absl::Duration timeout,
    const SecurityConfig& security = SecurityConfig());

// Channel to a shard with the client's settings (short reconnect backoff, no
// client-side message size limit, keepalive pings every `keepalive`) and
// `security`'s credentials (common/grpc_security.h).
std::shared_ptr<grpc::Channel> MakeReplayChannel(
    const std::string& address, absl::Duration keepalive = absl::Seconds(10),
    const SecurityConfig& security = SecurityConfig());

// What a replay server's builder needs to accept those pings (as often as
// every second, also on connections without calls).
void PermitReplayKeepalive(grpc::ServerBuilder* builder);

}  // namespace softq

#endif  // SOFTQ_REPLAY_CLIENT_H_
