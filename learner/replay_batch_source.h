// ReplayBatchSource: the learner's BatchSource over the replay service
// (replay/replay_sampler.h): hands out the sampler's prefetched batches as one
// packed tensor each (TransitionTensors::packed), which takes over the
// sampler's rows as they are, or copies them once into page-locked memory when
// the learner runs on a GPU so that the batch is one asynchronous copy. The
// values are not checked again: the shards validated them when they were
// inserted. With PrioritizedReplay set it also gives each batch's importance
// weights (from the probabilities the sampler drew its rows with) and queues
// the priorities from its TD errors on a PriorityUpdater. Thread-compatible.
#ifndef SOFTQ_LEARNER_REPLAY_BATCH_SOURCE_H_
#define SOFTQ_LEARNER_REPLAY_BATCH_SOURCE_H_

#include <cstdint>
#include <vector>

#include "absl/time/time.h"
#include "learner/learner.h"
#include "learner/priority_updater.h"
#include "replay/replay_sampler.h"

namespace softq {

// Prioritized experience replay (Schaul et al. 2016) in the learner. alpha is
// the shards' own --priority_exponent (they raise priorities to it).
struct PrioritizedReplay {
  PriorityUpdater* updater = nullptr;    // null: off (uniform weights)
  double epsilon = 1e-3;                 // priority = |TD error| + epsilon
  double beta0 = 0.4;                    // importance exponent at update 0 ...
  int64_t beta_anneal_updates = 100000;  // ... annealed to 1 over these
};

class ReplayBatchSource : public BatchSource {
 public:
  ReplayBatchSource(ReplaySampler* sampler, bool pin_memory,
                    PrioritizedReplay prioritized = {})
      : sampler_(sampler), pin_memory_(pin_memory), prioritized_(prioritized) {}

  absl::StatusOr<TransitionTensors> Next(absl::Duration timeout) override;
  // sql::ImportanceWeights of the last batch at beta
  // sql::AnnealedBeta(beta0, update, beta_anneal_updates); undefined when
  // prioritized replay is off or before the first batch.
  torch::Tensor ImportanceWeights(int64_t update) override;
  // Queues sql::TdPriorities(q, target, epsilon) for the last batch's items
  // (copies them to the host: on a GPU this waits for the update).
  void Updated(const torch::Tensor& q, const torch::Tensor& target) override;

  // Transitions sampled so far.
  int64_t sampled() const { return sampled_; }
  // Time Next has spent waiting for the sampler: a learner that waits is held
  // back by the replay (its rate limiter, or shards that cannot keep up), not
  // by its updates.
  absl::Duration waited() const { return waited_; }

 private:
  ReplaySampler* sampler_;
  bool pin_memory_;
  PrioritizedReplay prioritized_;
  int64_t sampled_ = 0;
  absl::Duration waited_;
  // The last batch's items (prioritized replay only).
  std::vector<uint64_t> keys_;
  std::vector<int> shard_index_;
  std::vector<double> probabilities_;
  uint64_t total_size_ = 0;
};

}  // namespace softq

#endif  // SOFTQ_LEARNER_REPLAY_BATCH_SOURCE_H_
