// Specification of flag handling: malformed flags are errors naming the flag.
#include "common/flags.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/flags/flag.h"

ABSL_FLAG(int, test_batch_size, 64, "a test flag");
ABSL_FLAG(bool, test_verbose, false, "a test bool");
ABSL_FLAG(std::string, test_name, "x", "a test string");

namespace softq {
namespace {

using ::testing::HasSubstr;

absl::StatusOr<std::vector<std::string>> Parse(std::vector<std::string> args) {
  std::vector<char*> argv;
  static std::string program = "prog";
  argv.push_back(program.data());
  for (std::string& a : args) argv.push_back(a.data());
  return ParseFlagsFromArgs(static_cast<int>(argv.size()), argv.data());
}

TEST(Flags, ParsesEqualsSpaceAndBooleanForms) {
  ASSERT_TRUE(
      Parse({"--test_batch_size=128", "--test_verbose", "--test_name", "abc"})
          .ok());
  EXPECT_EQ(absl::GetFlag(FLAGS_test_batch_size), 128);
  EXPECT_TRUE(absl::GetFlag(FLAGS_test_verbose));
  EXPECT_EQ(absl::GetFlag(FLAGS_test_name), "abc");
  ASSERT_TRUE(Parse({"--notest_verbose"}).ok());
  EXPECT_FALSE(absl::GetFlag(FLAGS_test_verbose));
}

TEST(Flags, MalformedValueNamesTheFlag) {
  auto result = Parse({"--test_batch_size=abc"});
  ASSERT_FALSE(result.ok());
  EXPECT_THAT(std::string(result.status().message()),
              HasSubstr("--test_batch_size=abc"));
}

TEST(Flags, UnknownFlagIsNamed) {
  auto result = Parse({"--no_such_flag=1"});
  ASSERT_FALSE(result.ok());
  EXPECT_THAT(std::string(result.status().message()),
              HasSubstr("unknown flag --no_such_flag"));
}

TEST(Flags, MissingValueIsAnError) {
  auto result = Parse({"--test_name"});
  ASSERT_FALSE(result.ok());
  EXPECT_THAT(std::string(result.status().message()),
              HasSubstr("needs a value"));
}

TEST(Flags, PositionalArgumentsAreReturned) {
  auto result = Parse({"extra", "--test_batch_size=3"});
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(*result, std::vector<std::string>{"extra"});
}

TEST(Flags, RangeChecksNameFlagAndValue) {
  EXPECT_TRUE(FlagAtLeast("batch_size", 1, 1).ok());
  EXPECT_THAT(std::string(FlagAtLeast("batch_size", 0, 1).message()),
              HasSubstr("--batch_size=0"));
  EXPECT_FALSE(FlagInRange("discount", 1.5, 0, 1).ok());
  EXPECT_TRUE(FlagInRange("discount", 0.99, 0, 1).ok());
  EXPECT_TRUE(FlagOneOf("device", "cpu", {"cpu", "cuda"}).ok());
  EXPECT_THAT(
      std::string(FlagOneOf("device", "tpu", {"cpu", "cuda"}).message()),
      HasSubstr("--device=tpu"));
}

TEST(Flags, RangeErrorsWriteWholeNumbersInFull) {
  EXPECT_EQ(FlagInRange("actor_id", -3, 0, 2147483647).message(),
            "--actor_id=-3: must be in [0, 2147483647]");
  EXPECT_EQ(FlagAtLeast("batch_size", 0, 1048576).message(),
            "--batch_size=0: must be at least 1048576");
  EXPECT_EQ(FlagInRange("discount", 1.5, 0, 0.999).message(),
            "--discount=1.5: must be in [0, 0.999]");
}

TEST(Flags, AddressListRequiresHostAndPort) {
  EXPECT_TRUE(FlagAddressList("shards", "127.0.0.1:5000,localhost:6000").ok());
  EXPECT_FALSE(FlagAddressList("shards", "").ok());
  EXPECT_FALSE(FlagAddressList("shards", "127.0.0.1").ok());
  EXPECT_FALSE(FlagAddressList("shards", "127.0.0.1:0").ok());
  EXPECT_FALSE(FlagAddressList("shards", "127.0.0.1:70000").ok());
  EXPECT_FALSE(FlagAddressList("shards", ":5000").ok());
}

TEST(Flags, AddressTakesOneHostAndPortNotAList) {
  EXPECT_TRUE(FlagAddress("learner", "127.0.0.1:7100").ok());
  EXPECT_EQ(
      FlagAddress("learner", "127.0.0.1:1,127.0.0.1:2").message(),
      "--learner=127.0.0.1:1,127.0.0.1:2: expected one host:port, not a list");
  EXPECT_FALSE(FlagAddress("learner", "nocolon").ok());
}

TEST(Flags, WidthListParsesPositiveWidthsAndNamesTheFlag) {
  EXPECT_EQ(*FlagWidthList("hidden", "128,64"),
            (std::vector<int64_t>{128, 64}));
  EXPECT_TRUE(FlagWidthList("hidden", "")->empty());
  for (const char* bad : {"128,0", "128,x", "-5", "70000"}) {
    absl::StatusOr<std::vector<int64_t>> widths = FlagWidthList("hidden", bad);
    ASSERT_FALSE(widths.ok()) << bad;
    EXPECT_THAT(std::string(widths.status().message()),
                HasSubstr(std::string("--hidden=") + bad));
  }
}

TEST(Flags, CheckFlagsReturnsFirstFailure) {
  absl::Status s = CheckFlags({FlagAtLeast("a", 1, 0), FlagAtLeast("b", -1, 0),
                               FlagAtLeast("c", -1, 0)});
  EXPECT_THAT(std::string(s.message()), HasSubstr("--b="));
}

}  // namespace
}  // namespace softq
