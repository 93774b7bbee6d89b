// QueryStats, QueryStatsEach: every replay shard's stats (GetStats), queried
// in parallel within a deadline. Thread-safe (no shared state).
#ifndef SOFTQ_REPLAY_REPLAY_STATS_H_
#define SOFTQ_REPLAY_REPLAY_STATS_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/security.h"
#include "proto/replay.pb.h"

namespace softq {

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

}  // namespace softq

#endif  // SOFTQ_REPLAY_REPLAY_STATS_H_
