// How a shard says it is at its limit of concurrent Insert streams or waiting
// calls (replay_server --max_insert_streams, --max_waiting_calls):
// RESOURCE_EXHAUSTED with a message that starts with kShardBusyPrefix. Clients
// (replay/replay_writer.h, replay/replay_sampler.h) retry such a refusal later,
// like an unreachable shard; any other RESOURCE_EXHAUSTED (a message too large)
// is about the request itself.
// Pure, thread-safe.
#ifndef SOFTQ_REPLAY_BUSY_H_
#define SOFTQ_REPLAY_BUSY_H_

#include <grpcpp/support/status.h>

#include "absl/strings/match.h"
#include "absl/strings/string_view.h"

namespace softq {

inline constexpr absl::string_view kShardBusyPrefix = "replay shard busy: ";

// True for a shard's at-its-limit refusal.
inline bool IsShardBusy(const grpc::Status& status) {
  return status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED &&
         absl::StartsWith(status.error_message(), kShardBusyPrefix);
}

}  // namespace softq

#endif  // SOFTQ_REPLAY_BUSY_H_
