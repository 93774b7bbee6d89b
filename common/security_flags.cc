#include "common/security_flags.h"

#include <iostream>
#include <string>

#include "absl/flags/flag.h"
#include "common/grpc_security.h"

ABSL_FLAG(std::string, tls_ca, "",
          "PEM CA certificate(s) of the job: peers' certificates must chain "
          "to it (with --tls_cert, --tls_key, --auth_token_file: secure mode; "
          "none of the four: insecure, loopback development only)");
ABSL_FLAG(std::string, tls_cert, "",
          "PEM certificate this process presents, as server and as client "
          "(subjectAltName DNS:softq-job)");
ABSL_FLAG(std::string, tls_key, "", "PEM private key of --tls_cert");
ABSL_FLAG(std::string, auth_token_file, "",
          "file holding the job's secret token (one line): sent on every "
          "call, required of every caller, and by /metrics");

namespace softq {

SecurityFiles SecurityFilesFromFlags() {
  return {absl::GetFlag(FLAGS_tls_ca), absl::GetFlag(FLAGS_tls_cert),
          absl::GetFlag(FLAGS_tls_key), absl::GetFlag(FLAGS_auth_token_file)};
}

absl::StatusOr<SecurityConfig> SecurityFromFlags() {
  absl::StatusOr<SecurityConfig> security =
      LoadSecurityConfig(SecurityFilesFromFlags());
  if (!security.ok()) return security.status();
  if (absl::Status s = CheckCredentialsWork(*security); !s.ok()) return s;
  return security;
}

void WarnIfInsecure(const SecurityConfig& security, absl::string_view program) {
  if (security.secure()) return;
  const size_t slash = program.rfind('/');
  std::cerr << InsecureWarning(slash == absl::string_view::npos
                                   ? program
                                   : program.substr(slash + 1))
            << std::endl;
}

}  // namespace softq
