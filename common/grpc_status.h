// Conversion between absl::Status (inside the system) and grpc::Status (at the
// RPC edge). Codes map one to one; messages are kept. Pure functions,
// thread-safe.
#ifndef SOFTQ_COMMON_GRPC_STATUS_H_
#define SOFTQ_COMMON_GRPC_STATUS_H_

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace softq {

inline grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      std::string(status.message()));
}

inline absl::Status FromGrpcStatus(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      status.error_message());
}

}  // namespace softq

#endif  // SOFTQ_COMMON_GRPC_STATUS_H_
