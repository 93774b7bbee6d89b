// The gRPC server of the learner's ParameterService: built with gRPC health
// checking and reflection, listening on exactly one port, stopped with a
// grace period, with the job's credentials (common/grpc_security.h) on that
// port. Thread-compatible: start and stop it from one thread.
#ifndef SOFTQ_LEARNER_PARAMETER_SERVER_H_
#define SOFTQ_LEARNER_PARAMETER_SERVER_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/security.h"
#include "learner/parameter_service.h"

namespace softq {

class ParameterServer {
 public:
  // Serves `service` (which outlives the server) on host:port, port 0 picking
  // a free one, secured by `security` (insecure when it is the insecure
  // config). Unavailable "cannot listen on host:port" when it cannot bind.
  static absl::StatusOr<std::unique_ptr<ParameterServer>> Start(
      const std::string& host, int port, ParameterService* service,
      const SecurityConfig& security = SecurityConfig());

  // The port it listens on.
  int port() const { return port_; }
  // Stops accepting calls and waits up to `grace` for those in flight (end
  // the service's streams first: ParameterService::Shutdown).
  void Shutdown(absl::Duration grace);

 private:
  ParameterServer(std::unique_ptr<grpc::Server> server, int port)
      : server_(std::move(server)), port_(port) {}

  std::unique_ptr<grpc::Server> server_;
  int port_;
};

}  // namespace softq

#endif  // SOFTQ_LEARNER_PARAMETER_SERVER_H_
