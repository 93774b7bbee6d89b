#include "replay/replay_stats.h"

#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "proto/replay.grpc.pb.h"
#include "replay/replay_channel.h"

namespace softq {

using replay_client_internal::AsyncCall;
using replay_client_internal::AwaitAll;
using replay_client_internal::ShardError;
using replay_client_internal::ToChrono;

std::vector<absl::StatusOr<proto::ShardStats>> QueryStatsEach(
    const std::vector<std::string>& addresses, absl::Duration timeout,
    const SecurityConfig& security) {
  grpc::CompletionQueue cq;
  std::vector<std::unique_ptr<AsyncCall<proto::ShardStats>>> calls;
  std::vector<std::unique_ptr<proto::ReplayShard::Stub>> stubs;
  const absl::Time deadline = absl::Now() + timeout;
  for (size_t i = 0; i < addresses.size(); ++i) {
    stubs.push_back(proto::ReplayShard::NewStub(
        MakeReplayChannel(addresses[i], absl::Seconds(10), security)));
    auto call = std::make_unique<AsyncCall<proto::ShardStats>>();
    call->shard = static_cast<int>(i);
    call->context.set_deadline(ToChrono(deadline));
    // A connection attempt that fails once (a loaded machine) is retried until
    // the deadline.
    call->context.set_wait_for_ready(true);
    call->reader =
        stubs.back()->AsyncGetStats(&call->context, proto::StatsRequest(), &cq);
    call->reader->Finish(&call->response, &call->status, call.get());
    calls.push_back(std::move(call));
  }
  AwaitAll<proto::ShardStats>(&cq, calls.size());
  std::vector<absl::StatusOr<proto::ShardStats>> out;
  for (const auto& call : calls) {
    if (call->status.ok()) {
      out.push_back(std::move(call->response));
    } else if (call->status.error_code() ==
               grpc::StatusCode::DEADLINE_EXCEEDED) {
      out.push_back(absl::UnavailableError(absl::StrCat(
          "shard addresses[", call->shard, "] (", addresses[call->shard],
          ") did not answer within ", absl::FormatDuration(timeout), ": ",
          call->status.error_message())));
    } else {
      out.push_back(
          ShardError(addresses[call->shard], call->shard, call->status));
    }
  }
  return out;
}

absl::StatusOr<std::vector<proto::ShardStats>> QueryStats(
    const std::vector<std::string>& addresses, absl::Duration timeout,
    const SecurityConfig& security) {
  if (addresses.empty())
    return absl::InvalidArgumentError("QueryStats: addresses is empty");
  std::vector<proto::ShardStats> out;
  for (absl::StatusOr<proto::ShardStats>& s :
       QueryStatsEach(addresses, timeout, security)) {
    if (!s.ok()) return s.status();
    out.push_back(*std::move(s));
  }
  return out;
}

}  // namespace softq
