#include "replay/replay_channel.h"

#include <algorithm>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/grpc_security.h"
#include "common/grpc_status.h"

namespace softq {
namespace {

constexpr absl::Duration kMinKeepalive = absl::Seconds(1);

}  // namespace

std::shared_ptr<grpc::Channel> MakeReplayChannel(
    const std::string& address, absl::Duration keepalive,
    const SecurityConfig& security) {
  grpc::ChannelArguments args;
  const int keepalive_ms = static_cast<int>(
      absl::ToInt64Milliseconds(std::max(keepalive, kMinKeepalive)));
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, keepalive_ms);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, keepalive_ms);
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  args.SetMaxReceiveMessageSize(-1);
  args.SetMaxSendMessageSize(-1);
  return MakeChannel(address, security, args);
}

void PermitReplayKeepalive(grpc::ServerBuilder* builder) {
  builder->AddChannelArgument(
      GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS,
      static_cast<int>(absl::ToInt64Milliseconds(kMinKeepalive)));
  builder->AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder->AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 0);
}

absl::Status ValidateClientOptions(const ReplayClientOptions& options) {
  if (options.addresses.empty()) {
    return absl::InvalidArgumentError("ReplayClientOptions.addresses is empty");
  }
  for (size_t i = 0; i < options.addresses.size(); ++i) {
    const std::string& a = options.addresses[i];
    const size_t colon = a.rfind(':');
    int port = 0;
    if (colon == std::string::npos || colon == 0 ||
        !absl::SimpleAtoi(a.substr(colon + 1), &port) || port < 1 ||
        port > 65535) {
      return absl::InvalidArgumentError(
          absl::StrCat("ReplayClientOptions.addresses[", i, "] is \"", a,
                       "\", expected host:port with port 1..65535"));
    }
  }
  if (options.keepalive < kMinKeepalive) {
    return absl::InvalidArgumentError(
        absl::StrCat("ReplayClientOptions.keepalive is ",
                     absl::FormatDuration(options.keepalive),
                     ", expected >= ", absl::FormatDuration(kMinKeepalive)));
  }
  if (options.rpc_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "ReplayClientOptions.rpc_timeout is ",
        absl::FormatDuration(options.rpc_timeout), ", expected > 0"));
  }
  if (options.sample_rounds_in_flight < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("ReplayClientOptions.sample_rounds_in_flight is ",
                     options.sample_rounds_in_flight, ", expected >= 1"));
  }
  if (options.max_in_flight_batches < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("ReplayClientOptions.max_in_flight_batches is ",
                     options.max_in_flight_batches, ", expected >= 1"));
  }
  return absl::OkStatus();
}

namespace replay_client_internal {

absl::Status ShardError(const std::string& address, int index,
                        const grpc::Status& status) {
  const absl::Status s = FromGrpcStatus(status);
  return absl::Status(s.code(), absl::StrCat("shard addresses[", index, "] (",
                                             address, "): ", s.message()));
}

bool IsTransient(grpc::StatusCode code) {
  return code == grpc::StatusCode::UNAVAILABLE ||
         code == grpc::StatusCode::CANCELLED ||
         code == grpc::StatusCode::DEADLINE_EXCEEDED ||
         code == grpc::StatusCode::ABORTED ||
         code == grpc::StatusCode::UNKNOWN ||
         code == grpc::StatusCode::INTERNAL;
}

}  // namespace replay_client_internal

}  // namespace softq
