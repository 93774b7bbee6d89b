// ReplayBatchSource: the learner's BatchSource over the replay service
// (replay/client.h): takes the sampler's prefetched batches and decodes them
// (validated) into one packed tensor each (TransitionTensors::packed),
// page-locked when the learner runs on a GPU so that the batch is one
// asynchronous copy. Thread-compatible.
#ifndef SOFTQ_LEARNER_REPLAY_BATCH_SOURCE_H_
#define SOFTQ_LEARNER_REPLAY_BATCH_SOURCE_H_

#include "absl/time/time.h"
#include "learner/learner.h"
#include "replay/client.h"

namespace softq {

class ReplayBatchSource : public BatchSource {
 public:
  ReplayBatchSource(ReplaySampler* sampler, bool pin_memory)
      : sampler_(sampler), pin_memory_(pin_memory) {}

  absl::StatusOr<TransitionTensors> Next(absl::Duration timeout) override;

  // Transitions sampled so far.
  int64_t sampled() const { return sampled_; }
  // Time Next has spent waiting for the sampler: a learner that waits is held
  // back by the replay (its rate limiter, or shards that cannot keep up), not
  // by its updates.
  absl::Duration waited() const { return waited_; }

 private:
  ReplaySampler* sampler_;
  bool pin_memory_;
  int64_t sampled_ = 0;
  absl::Duration waited_;
};

}  // namespace softq

#endif  // SOFTQ_LEARNER_REPLAY_BATCH_SOURCE_H_
