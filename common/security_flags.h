// The four security flags every softq process that serves or calls gRPC takes:
// --tls_ca, --tls_cert, --tls_key, --auth_token_file (all set: mutual TLS and
// the job token; none: insecure mode). Defined here once; a binary links this
// and calls SecurityFromFlags after ParseFlags. Not thread-safe: call from
// main.
#ifndef SOFTQ_COMMON_SECURITY_FLAGS_H_
#define SOFTQ_COMMON_SECURITY_FLAGS_H_

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/security.h"

namespace softq {

// The flags' paths.
SecurityFiles SecurityFilesFromFlags();

// Loads and checks the credentials the flags name (LoadSecurityConfig, then
// CheckCredentialsWork): InvalidArgument naming the flag (ReportFlagError
// makes it the one line and exit 2).
absl::StatusOr<SecurityConfig> SecurityFromFlags();

// In insecure mode prints InsecureWarning(basename of `program`) on stderr.
// Call once every flag is checked (a bad flag stays the only line).
void WarnIfInsecure(const SecurityConfig& security, absl::string_view program);

}  // namespace softq

#endif  // SOFTQ_COMMON_SECURITY_FLAGS_H_
