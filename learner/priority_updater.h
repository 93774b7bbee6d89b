// PriorityUpdater: sends prioritized replay's new priorities to the shards in
// the background, so that an update never waits on an RPC. Push queues one
// batch's priorities (a bounded queue: when full, the oldest queued batch is
// dropped and counted, never the caller blocked); one thread drains the queue
// through `send` (ReplaySampler::UpdatePriorities in the learner). Thread-safe;
// the thread is joined by the destructor, which sends nothing more.
#ifndef SOFTQ_LEARNER_PRIORITY_UPDATER_H_
#define SOFTQ_LEARNER_PRIORITY_UPDATER_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace softq {

// One batch's new priorities, parallel arrays as in SampledBatch.
struct PriorityUpdate {
  std::vector<uint64_t> keys;
  std::vector<int> shard_index;
  std::vector<float> priorities;
};

class PriorityUpdater {
 public:
  using Send = std::function<absl::Status(const PriorityUpdate&)>;
  // `send` is called on the updater's thread only, one update at a time.
  // max_queued >= 1.
  PriorityUpdater(Send send, int max_queued);
  ~PriorityUpdater() ABSL_LOCKS_EXCLUDED(mu_);

  // Queues `update` without blocking (drops the oldest queued one when full).
  void Push(PriorityUpdate update) ABSL_LOCKS_EXCLUDED(mu_);
  // Waits until everything queued so far has been sent: OK, or
  // DEADLINE_EXCEEDED after `timeout`.
  absl::Status Flush(absl::Duration timeout) ABSL_LOCKS_EXCLUDED(mu_);

  uint64_t sent() const ABSL_LOCKS_EXCLUDED(mu_);     // updates sent OK
  uint64_t dropped() const ABSL_LOCKS_EXCLUDED(mu_);  // dropped when full
  uint64_t failed() const ABSL_LOCKS_EXCLUDED(mu_);   // send returned an error
  absl::Status last_error() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  void Run() ABSL_LOCKS_EXCLUDED(mu_);

  const Send send_;
  const size_t max_queued_;
  mutable absl::Mutex mu_;
  std::deque<PriorityUpdate> queue_ ABSL_GUARDED_BY(mu_);
  bool sending_ ABSL_GUARDED_BY(mu_) = false;  // one taken off, not yet sent
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t sent_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t dropped_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t failed_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Status last_error_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

}  // namespace softq

#endif  // SOFTQ_LEARNER_PRIORITY_UPDATER_H_
