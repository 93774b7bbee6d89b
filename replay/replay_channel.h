// The replay client library's settings (ReplayClientOptions, checked by
// ValidateClientOptions) and its gRPC channel to a shard (MakeReplayChannel;
// PermitReplayKeepalive for the server). Pure functions: thread-safe.
#ifndef SOFTQ_REPLAY_REPLAY_CHANNEL_H_
#define SOFTQ_REPLAY_REPLAY_CHANNEL_H_

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/security.h"
#include "proto/replay.grpc.pb.h"

namespace softq {

// Settings of ReplayWriter (replay/replay_writer.h) and ReplaySampler
// (replay/replay_sampler.h).
struct ReplayClientOptions {
  // "host:port" of every shard; at least one.
  std::vector<std::string> addresses;
  // Longest any single call (RPC, back-pressure wait) may take.
  absl::Duration rpc_timeout = absl::Seconds(10);
  // HTTP/2 keepalive pings: a shard that stops answering without closing its
  // connection (a frozen process, a host gone, a partition) is found within
  // about twice this, its streams end and the writer re-sends their
  // unacknowledged batches. At least 1 s (what replay_server permits).
  absl::Duration keepalive = absl::Seconds(10);
  // Unacknowledged batches per shard before Insert blocks (back-pressure),
  // however many messages carry them (coalescing). It bounds how far an actor
  // runs ahead of a shard that holds its inserts back (rate limiter), and so
  // how stale its data is when stored.
  int max_in_flight_batches = 8;
  // ReplayWriter: a batch that finds its shard's last queued message not yet
  // sent joins it when both come from one actor and the message stays within
  // this many bytes of payload (fewer, larger messages for small batches;
  // nothing is held back to wait for others). 0 disables. Keep it well below
  // the shards' --max_message_bytes.
  int64_t coalesce_bytes = 256 << 10;
  // ReplaySampler: seeds its split of each batch over the shards (unset:
  // std::random_device). With shards started with --seed that hold the same
  // items, sample_rounds_in_flight 1, and every round answered in one RPC per
  // shard, the batches repeat (with more rounds in flight a shard may serve
  // them in either order).
  std::optional<uint64_t> sample_seed;
  // ReplaySampler: rounds of batches whose Sample RPCs are in flight at once
  // (at most one RPC per shard each, unless a round is wider than a shard
  // answers in one), so that the shards draw and send the next rounds while
  // the sampler decodes one. At least 1.
  int sample_rounds_in_flight = 4;
  // ReplayWriter: called once per message a shard acknowledges as stored (OK),
  // with that message's batch (all the caller's batches coalesced into it), on
  // the writer's ack thread and under the writer's lock, before acknowledged()
  // counts it and before Flush can return. A batch re-sent after a shard went
  // away is reported once, by the shard that acknowledges it; a batch never
  // acknowledged is never reported. Must be quick and must not call the writer.
  // Unset: nothing is called.
  std::function<void(const proto::TransitionBatch&)> on_acknowledged;
  // The job's credentials (common/security.h); default: insecure.
  SecurityConfig security;
};

// OK, or InvalidArgument naming the bad field
// ("ReplayClientOptions.addresses[1] ...").
absl::Status ValidateClientOptions(const ReplayClientOptions& options);

// Channel to a shard with the client's settings (short reconnect backoff, no
// client-side message size limit, keepalive pings every `keepalive`) and
// `security`'s credentials (common/grpc_security.h).
std::shared_ptr<grpc::Channel> MakeReplayChannel(
    const std::string& address, absl::Duration keepalive = absl::Seconds(10),
    const SecurityConfig& security = SecurityConfig());

// What a replay server's builder needs to accept those pings (as often as
// every second, also on connections without calls).
void PermitReplayKeepalive(grpc::ServerBuilder* builder);

// Internal to the replay client library (replay_writer.cc, replay_sampler.cc,
// replay_stats.cc): helpers they share. Not for other callers.
namespace replay_client_internal {

inline constexpr absl::Duration kMinBackoff = absl::Milliseconds(100);
inline constexpr absl::Duration kMaxBackoff = absl::Seconds(1);

inline std::chrono::system_clock::time_point ToChrono(absl::Time t) {
  return absl::ToChronoTime(t);
}

// One unary call of a parallel fan-out over a completion queue.
template <typename Response>
struct AsyncCall {
  int shard = 0;
  grpc::ClientContext context;
  Response response;
  grpc::Status status;
  std::unique_ptr<grpc::ClientAsyncResponseReader<Response>> reader;
};

// Waits for every call started on `cq` (each tagged with its AsyncCall).
template <typename Response>
void AwaitAll(grpc::CompletionQueue* cq, size_t count) {
  for (size_t i = 0; i < count; ++i) {
    void* tag = nullptr;
    bool ok = false;
    if (!cq->Next(&tag, &ok)) break;
  }
}

// `status` as an absl::Status whose message names the shard
// ("shard addresses[<index>] (<address>): ...").
absl::Status ShardError(const std::string& address, int index,
                        const grpc::Status& status);

// Whether a call that failed with `code` may succeed when retried (on this
// shard or another).
bool IsTransient(grpc::StatusCode code);

}  // namespace replay_client_internal

}  // namespace softq

#endif  // SOFTQ_REPLAY_REPLAY_CHANNEL_H_
