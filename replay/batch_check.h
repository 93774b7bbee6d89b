// Fast acceptance test for TransitionBatch on the insert hot path.
// ValidateTransitionBatch (common/transition_check.h) is the reference; this
// gives the same verdict with a branch-free, vectorizable finiteness scan, and
// falls back to the reference to produce its exact error message when the batch
// is bad. Pure, thread-safe.
#ifndef SOFTQ_REPLAY_BATCH_CHECK_H_
#define SOFTQ_REPLAY_BATCH_CHECK_H_

#include "absl/status/status.h"
#include "proto/transition.pb.h"

namespace softq {

// Same result as ValidateTransitionBatch(batch), faster when the batch is good.
absl::Status CheckTransitionBatch(const proto::TransitionBatch& batch);

}  // namespace softq

#endif  // SOFTQ_REPLAY_BATCH_CHECK_H_
