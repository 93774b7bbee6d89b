// gRPC credentials of a SecurityConfig (common/security.h). Secure: mutual
// TLS against the job's CA (servers require and verify the client's
// certificate; clients check the server's under the name softq-job) and the
// job's token as "authorization: Bearer <token>" metadata on every call,
// checked by the server before any handler runs (UNAUTHENTICATED when missing
// or wrong; the token is consumed, handlers never see it). Insecure config:
// insecure credentials. Thread-safe.
#ifndef SOFTQ_COMMON_GRPC_SECURITY_H_
#define SOFTQ_COMMON_GRPC_SECURITY_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/security.h"

namespace softq {

// For grpc::ServerBuilder::AddListeningPort: every service on that port
// (health and reflection included) is covered.
std::shared_ptr<grpc::ServerCredentials> MakeServerCredentials(
    const SecurityConfig& security);

// A channel to `address` with `args` (the target name override added when
// secure).
std::shared_ptr<grpc::Channel> MakeChannel(
    const std::string& address, const SecurityConfig& security,
    grpc::ChannelArguments args = grpc::ChannelArguments());

// Secure configs: a TLS handshake with itself over 127.0.0.1 within
// `timeout`. InvalidArgument naming --tls_key when the key is not the
// certificate's, --tls_cert when the CA did not sign it for softq-job. OK for
// the insecure config. Call before serving (a server would not start).
absl::Status CheckCredentialsWork(const SecurityConfig& security,
                                  absl::Duration timeout = absl::Seconds(10));

}  // namespace softq

#endif  // SOFTQ_COMMON_GRPC_SECURITY_H_
