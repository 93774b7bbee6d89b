// ReplaySampler: the learner's batches, drawn from all replay shards in
// proportion to their sizes and prefetched in the background, as long as one
// shard answers; never blocks without a deadline. Thread-safe.
#ifndef SOFTQ_REPLAY_REPLAY_SAMPLER_H_
#define SOFTQ_REPLAY_REPLAY_SAMPLER_H_

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <deque>
#include <memory>
#include <random>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "replay/replay_channel.h"
#include "replay/sampled_batch.h"

namespace softq {

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

}  // namespace softq

#endif  // SOFTQ_REPLAY_REPLAY_SAMPLER_H_
