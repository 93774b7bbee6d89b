// LocalReplay: the replay memory D of the single-process trainer. A
// preallocated ring of float tensors (FIFO eviction at capacity) that the actor
// writes into (TransitionSink) and the learner samples uniformly from
// (BatchSource). The distributed system uses the replay service (replay/)
// instead; this is its in-process stand-in with the same interfaces.
// Thread-safe.
#ifndef SOFTQ_LEARNER_LOCAL_REPLAY_H_
#define SOFTQ_LEARNER_LOCAL_REPLAY_H_

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "actor/actor.h"
#include "learner/learner.h"

namespace softq {

class LocalReplay : public TransitionSink, public BatchSource {
 public:
  // `min_size`: Next() waits until the table holds this many transitions.
  LocalReplay(int64_t capacity, int64_t observation_dim, int64_t action_dim,
              int64_t batch_size, int64_t min_size, uint64_t seed);

  // Validates and stores the whole batch, or nothing (InvalidArgument).
  absl::Status Write(proto::TransitionBatch batch) override
      ABSL_LOCKS_EXCLUDED(mu_);
  // A uniform batch, with replacement; DeadlineExceeded while below min_size.
  absl::StatusOr<TransitionTensors> Next(absl::Duration timeout) override
      ABSL_LOCKS_EXCLUDED(mu_);

  int64_t size() const ABSL_LOCKS_EXCLUDED(mu_);
  int64_t inserted() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  const int64_t capacity_, observation_dim_, action_dim_, batch_size_,
      min_size_;
  mutable absl::Mutex mu_;
  TransitionTensors storage_ ABSL_GUARDED_BY(mu_);  // each [capacity, ...]
  torch::Generator generator_ ABSL_GUARDED_BY(mu_);
  int64_t size_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t next_ ABSL_GUARDED_BY(mu_) = 0;  // slot of the next write
  int64_t inserted_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace softq

#endif  // SOFTQ_LEARNER_LOCAL_REPLAY_H_
