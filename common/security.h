// What a softq process needs to run secured: the job's CA, its certificate and
// key (mutual TLS), and the job's secret token (sent on every call), loaded
// from the four files the launchers make (deploy/local/make_credentials.sh).
// All empty is insecure mode (loopback development). Plain data and pure
// functions, no gRPC (common/grpc_security.h makes credentials from it);
// thread-safe.
#ifndef SOFTQ_COMMON_SECURITY_H_
#define SOFTQ_COMMON_SECURITY_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace softq {

// The name every job certificate carries (subjectAltName DNS:softq-job):
// clients check the server's certificate under it, whatever host they dial.
inline constexpr char kJobCertificateName[] = "softq-job";

// Paths as given by the flags; all empty: insecure.
struct SecurityFiles {
  std::string tls_ca;           // --tls_ca: PEM CA bundle of the job
  std::string tls_cert;         // --tls_cert: PEM certificate (chain)
  std::string tls_key;          // --tls_key: its PEM private key
  std::string auth_token_file;  // --auth_token_file: the token, one line
};

// The loaded credentials. secure() exactly when all four are set.
struct SecurityConfig {
  std::string ca_pem;
  std::string cert_pem;
  std::string key_pem;
  std::string token;    // printable ASCII, no whitespace
  SecurityFiles files;  // where they were read from (for messages)
  bool secure() const { return !token.empty(); }
};

// Reads the four files: all paths empty gives the insecure config; some but
// not all set, a file that cannot be read, one with no PEM block of its kind,
// an empty token or one with characters other than printable ASCII:
// InvalidArgument, one line naming the flag ("--tls_key=PATH: ..."). Does not
// check that the key matches the certificate or that the CA signed it
// (CheckCredentialsWork in grpc_security.h does, with gRPC's own TLS).
absl::StatusOr<SecurityConfig> LoadSecurityConfig(const SecurityFiles& files);

// Whether `header` (an HTTP Authorization header's or gRPC "authorization"
// metadata's value) is "Bearer <token>", compared in time independent of
// where they differ. False for an empty token.
bool BearerTokenMatches(absl::string_view header, absl::string_view token);

// The line insecure mode prints at start:
// "<program>: insecure: no TLS and no token (loopback development only)".
std::string InsecureWarning(absl::string_view program);

}  // namespace softq

#endif  // SOFTQ_COMMON_SECURITY_H_
