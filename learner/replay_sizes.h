// The task's sizes as the replay holds them, for a learner on `external`
// given none: a shard's table takes them from the first batch it stores (or
// its --observation_dim/--action_dim). Blocking; thread-compatible.
#ifndef SOFTQ_LEARNER_REPLAY_SIZES_H_
#define SOFTQ_LEARNER_REPLAY_SIZES_H_

#include <functional>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/security.h"

namespace softq {

struct ReplaySizes {
  int observation_dim = 0;
  int action_dim = 0;
};

// Asks every shard for its sizes each `poll` until one holds some, and returns
// them. A line on `log` every `report` while none does. CANCELLED once
// `stop()` is true; FAILED_PRECONDITION naming both shards when two hold
// different sizes. Shards that do not answer are waited for as empty ones.
// `security`: the credentials the shards are called with.
absl::StatusOr<ReplaySizes> WaitForReplaySizes(
    const std::vector<std::string>& shards, const SecurityConfig& security,
    const std::function<bool()>& stop, std::ostream& log,
    absl::Duration poll = absl::Milliseconds(500),
    absl::Duration report = absl::Seconds(10));

}  // namespace softq

#endif  // SOFTQ_LEARNER_REPLAY_SIZES_H_
