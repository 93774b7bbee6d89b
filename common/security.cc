#include "common/security.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace softq {
namespace {

// Credentials files are small; anything larger is not one.
constexpr size_t kMaxFileBytes = 1 << 20;

absl::StatusOr<std::string> ReadFlagFile(absl::string_view flag,
                                         const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--", flag, "=", path, ": cannot read it: ", std::strerror(errno)));
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad() || text.str().size() > kMaxFileBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--", flag, "=", path, ": cannot read it (or larger than 1 MiB)"));
  }
  return text.str();
}

absl::Status NeedsPem(absl::string_view flag, const std::string& path,
                      absl::string_view text, absl::string_view what,
                      absl::string_view label_suffix) {
  // "-----BEGIN CERTIFICATE-----", "-----BEGIN EC PRIVATE KEY-----", ...
  const size_t begin = text.find("-----BEGIN ");
  const bool found = begin != absl::string_view::npos &&
                     absl::StrContains(text.substr(begin), label_suffix) &&
                     absl::StrContains(text.substr(begin), "-----END ");
  if (found) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("--", flag, "=", path, ": holds no PEM ", what));
}

}  // namespace

absl::StatusOr<SecurityConfig> LoadSecurityConfig(const SecurityFiles& files) {
  const struct {
    const char* flag;
    const std::string* path;
  } all[] = {{"tls_ca", &files.tls_ca},
             {"tls_cert", &files.tls_cert},
             {"tls_key", &files.tls_key},
             {"auth_token_file", &files.auth_token_file}};
  int set = 0;
  for (const auto& f : all) set += f.path->empty() ? 0 : 1;
  if (set == 0) return SecurityConfig{};
  if (set < 4) {
    for (const auto& f : all) {
      if (!f.path->empty()) continue;
      return absl::InvalidArgumentError(absl::StrCat(
          "--", f.flag,
          " is not set: secure mode needs all four of --tls_ca, --tls_cert, "
          "--tls_key and --auth_token_file (none: insecure mode)"));
    }
  }
  SecurityConfig config;
  absl::StatusOr<std::string> ca = ReadFlagFile("tls_ca", files.tls_ca);
  if (!ca.ok()) return ca.status();
  if (absl::Status s = NeedsPem("tls_ca", files.tls_ca, *ca, "certificate",
                                "CERTIFICATE-----");
      !s.ok()) {
    return s;
  }
  absl::StatusOr<std::string> cert = ReadFlagFile("tls_cert", files.tls_cert);
  if (!cert.ok()) return cert.status();
  if (absl::Status s = NeedsPem("tls_cert", files.tls_cert, *cert,
                                "certificate", "CERTIFICATE-----");
      !s.ok()) {
    return s;
  }
  absl::StatusOr<std::string> key = ReadFlagFile("tls_key", files.tls_key);
  if (!key.ok()) return key.status();
  if (absl::Status s = NeedsPem("tls_key", files.tls_key, *key, "private key",
                                "PRIVATE KEY-----");
      !s.ok()) {
    return s;
  }
  absl::StatusOr<std::string> token =
      ReadFlagFile("auth_token_file", files.auth_token_file);
  if (!token.ok()) return token.status();
  const absl::string_view stripped = absl::StripAsciiWhitespace(*token);
  if (stripped.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--auth_token_file=", files.auth_token_file, ": the token is empty"));
  }
  for (char c : stripped) {
    if (c <= ' ' || c > '~') {
      return absl::InvalidArgumentError(
          absl::StrCat("--auth_token_file=", files.auth_token_file,
                       ": the token must be one line of printable ASCII "
                       "without spaces"));
    }
  }
  config.ca_pem = *std::move(ca);
  config.cert_pem = *std::move(cert);
  config.key_pem = *std::move(key);
  config.token = std::string(stripped);
  config.files = files;
  return config;
}

bool BearerTokenMatches(absl::string_view header, absl::string_view token) {
  if (token.empty() || !absl::ConsumePrefix(&header, "Bearer ")) return false;
  // Every byte of the expected token is looked at, whatever `header` holds.
  unsigned char differ = header.size() == token.size() ? 0 : 1;
  for (size_t i = 0; i < token.size(); ++i) {
    const unsigned char got = i < header.size() ? header[i] : 0;
    differ |= got ^ static_cast<unsigned char>(token[i]);
  }
  return differ == 0;
}

std::string InsecureWarning(absl::string_view program) {
  return absl::StrCat(program,
                      ": insecure: no TLS and no token (loopback development "
                      "only)");
}

}  // namespace softq
