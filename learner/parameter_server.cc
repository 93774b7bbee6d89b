#include "learner/parameter_server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>

#include <chrono>

#include "absl/strings/str_cat.h"
#include "common/grpc_security.h"

namespace softq {

absl::StatusOr<std::unique_ptr<ParameterServer>> ParameterServer::Start(
    const std::string& host, int port, ParameterService* service,
    const SecurityConfig& security) {
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  int bound_port = 0;
  builder.AddListeningPort(absl::StrCat(host, ":", port),
                           MakeServerCredentials(security), &bound_port);
  // No SO_REUSEPORT: with it gRPC 1.51 adds a listener per extra poller on
  // the requested port, i.e. unadvertised ports of their own under --port=0.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.SetMaxSendMessageSize(256 << 20);
  builder.RegisterService(service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || bound_port == 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", host, ":", port));
  }
  return std::unique_ptr<ParameterServer>(
      new ParameterServer(std::move(server), bound_port));
}

void ParameterServer::Shutdown(absl::Duration grace) {
  server_->Shutdown(std::chrono::system_clock::now() +
                    absl::ToChronoMilliseconds(grace));
}

}  // namespace softq
