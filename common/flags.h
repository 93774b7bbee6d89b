// Command-line handling shared by every binary: absl flags parsed without
// absl's own exit-on-error path, and range checks that name the flag. A
// binary's main does
//
//   if (std::optional<int> code = softq::ParseFlags(argc, argv, "usage...");
//   code) return *code; if (absl::Status s =
//   softq::CheckFlags({softq::FlagPositive("batch_size", ...)}); !s.ok())
//     return softq::ReportFlagError(argv[0], s);
//
// so a malformed flag is one line on stderr and exit status 2. Not thread-safe:
// call from main before starting threads.
#ifndef SOFTQ_COMMON_FLAGS_H_
#define SOFTQ_COMMON_FLAGS_H_

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace softq {

// Exit status for a malformed command line.
inline constexpr int kFlagErrorExitCode = 2;

// Parses every "--name=value", "--name value", "--name"/"--noname" (booleans)
// in argv into the registered absl flags. Returns the positional arguments, or
// InvalidArgument naming the unknown flag or the flag whose value does not
// parse.
absl::StatusOr<std::vector<std::string>> ParseFlagsFromArgs(int argc,
                                                            char** argv);

// Sets the usage message, parses argv and handles --help. Returns nullopt to go
// on, or the exit status main should return: 0 after --help, kFlagErrorExitCode
// after printing a one-line error (also for positional arguments, which no
// binary takes).
std::optional<int> ParseFlags(int argc, char** argv, absl::string_view usage);

// Prints "<program>: <message>" on stderr and returns kFlagErrorExitCode.
int ReportFlagError(absl::string_view program, const absl::Status& status);

// Range checks: OK, or InvalidArgument "--<flag>=<value>: <requirement>".
absl::Status FlagAtLeast(absl::string_view flag, double value, double min);
absl::Status FlagInRange(absl::string_view flag, double value, double min,
                         double max);
absl::Status FlagOneOf(absl::string_view flag, absl::string_view value,
                       std::initializer_list<absl::string_view> allowed);
// A "host:port" list, comma-separated, non-empty, each port in 1..65535.
absl::Status FlagAddressList(absl::string_view flag, absl::string_view value);
// One "host:port" (a list is refused).
absl::Status FlagAddress(absl::string_view flag, absl::string_view value);

// Layer widths written "128,128": each in 1..65536 (an empty list is no hidden
// layer), or InvalidArgument "--<flag>=<value>: expected positive widths like
// 128,128".
absl::StatusOr<std::vector<int64_t>> FlagWidthList(absl::string_view flag,
                                                   absl::string_view value);

// The first non-OK status of `checks`, or OK.
absl::Status CheckFlags(std::initializer_list<absl::Status> checks);

}  // namespace softq

#endif  // SOFTQ_COMMON_FLAGS_H_
