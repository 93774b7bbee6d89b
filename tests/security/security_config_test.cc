// The job's credentials as files (LoadSecurityConfig) and the token compare
// (BearerTokenMatches); /metrics behind the token: tests/metrics_test.cc.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <string>

#include "common/security.h"

namespace softq {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr char kCert[] =
    "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
constexpr char kKey[] =
    "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n";

std::string WriteFile(const std::string& name, const std::string& text) {
  const char* dir = std::getenv("TEST_TMPDIR");
  const std::string path =
      std::string(dir != nullptr ? dir : "/tmp") + "/" + name;
  std::ofstream(path) << text;
  return path;
}

SecurityFiles Files(const std::string& token_text) {
  return {WriteFile("ca.crt", kCert), WriteFile("job.crt", kCert),
          WriteFile("job.key", kKey), WriteFile("token", token_text)};
}

// The one-line error of loading `files` ("" when it loads).
std::string Error(const SecurityFiles& files) {
  return std::string(LoadSecurityConfig(files).status().message());
}

TEST(BearerTokenMatches, OnlyTheExactToken) {
  EXPECT_TRUE(BearerTokenMatches("Bearer s3cret", "s3cret"));
  EXPECT_FALSE(BearerTokenMatches("Bearer s3cres", "s3cret"));
  EXPECT_FALSE(BearerTokenMatches("Bearer s3cre", "s3cret"));  // a prefix
  EXPECT_FALSE(BearerTokenMatches("Bearer s3cret2", "s3cret"));
  EXPECT_FALSE(BearerTokenMatches("s3cret", "s3cret"));  // no scheme
  EXPECT_FALSE(BearerTokenMatches("Basic s3cret", "s3cret"));
  EXPECT_FALSE(BearerTokenMatches("Bearer ", ""));  // no token: never
  EXPECT_FALSE(BearerTokenMatches("", ""));
}

TEST(LoadSecurityConfig, NoFlagsIsInsecure) {
  absl::StatusOr<SecurityConfig> config = LoadSecurityConfig({});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_FALSE(config->secure());
}

TEST(LoadSecurityConfig, AllFourLoadTheTokenStripped) {
  absl::StatusOr<SecurityConfig> config =
      LoadSecurityConfig(Files(" abc123\n"));
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_TRUE(config->secure());
  EXPECT_EQ(config->token, "abc123");
  EXPECT_EQ(config->cert_pem, kCert);
}

TEST(LoadSecurityConfig, PartialFlagsNameTheMissingOne) {
  SecurityFiles files = Files("abc");
  files.tls_key.clear();
  absl::StatusOr<SecurityConfig> config = LoadSecurityConfig(files);
  ASSERT_TRUE(absl::IsInvalidArgument(config.status()));
  EXPECT_THAT(Error(files), StartsWith("--tls_key is not set"));
}

TEST(LoadSecurityConfig, BadFilesNameTheirFlag) {
  SecurityFiles files = Files("");
  EXPECT_THAT(Error(files), StartsWith("--auth_token_file="));
  files = Files("two words");
  EXPECT_THAT(Error(files), HasSubstr("one line of printable ASCII"));
  files = Files("abc");
  files.tls_key = WriteFile("not_a_key", kCert);
  EXPECT_THAT(Error(files), StartsWith("--tls_key="));
  files = Files("abc");
  files.tls_ca = WriteFile("not_a_ca", "hello\n");
  EXPECT_THAT(Error(files), StartsWith("--tls_ca="));
  files = Files("abc");
  files.tls_cert = "/nonexistent/job.crt";
  EXPECT_THAT(Error(files),
              StartsWith("--tls_cert=/nonexistent/job.crt: cannot read it"));
}

}  // namespace
}  // namespace softq
