#include "common/flags.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <iostream>

#include "absl/flags/commandlineflag.h"
#include "absl/flags/reflection.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace softq {
namespace {

void PrintHelp(absl::string_view program) {
  std::cout << program << ": " << absl::ProgramUsageMessage() << "\n\nFlags:\n";
  std::vector<const absl::CommandLineFlag*> flags;
  for (const auto& [name, flag] : absl::GetAllFlags()) {
    if (absl::StrContains(flag->Filename(), "/absl/")) continue;
    flags.push_back(flag);
  }
  std::sort(flags.begin(), flags.end(),
            [](auto* a, auto* b) { return a->Name() < b->Name(); });
  for (const absl::CommandLineFlag* flag : flags) {
    std::cout << "  --" << flag->Name() << " (" << flag->Help()
              << ") default: " << flag->DefaultValue() << "\n";
  }
}

}  // namespace

absl::StatusOr<std::vector<std::string>> ParseFlagsFromArgs(int argc,
                                                            char** argv) {
  std::vector<std::string> positional;
  for (int i = 1; i < argc; ++i) {
    absl::string_view arg = argv[i];
    if (arg == "--") {
      for (++i; i < argc; ++i) positional.emplace_back(argv[i]);
      break;
    }
    if (!absl::ConsumePrefix(&arg, "--") && !absl::ConsumePrefix(&arg, "-")) {
      positional.emplace_back(arg);
      continue;
    }
    std::string name(arg);
    std::optional<std::string> value;
    if (size_t eq = arg.find('='); eq != absl::string_view::npos) {
      name = std::string(arg.substr(0, eq));
      value = std::string(arg.substr(eq + 1));
    }
    absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
    if (flag == nullptr && !value.has_value() && absl::StartsWith(name, "no")) {
      absl::CommandLineFlag* negated =
          absl::FindCommandLineFlag(name.substr(2));
      if (negated != nullptr && negated->IsOfType<bool>()) {
        flag = negated;
        name = name.substr(2);
        value = "false";
      }
    }
    if (flag == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("unknown flag --", name));
    }
    if (!value.has_value()) {
      if (flag->IsOfType<bool>()) {
        value = "true";
      } else if (i + 1 < argc) {
        value = argv[++i];
      } else {
        return absl::InvalidArgumentError(
            absl::StrCat("--", name, " needs a value"));
      }
    }
    std::string error;
    if (!flag->ParseFrom(*value, &error)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--", name, "=", *value, ": ", error.empty() ? "malformed" : error));
    }
  }
  return positional;
}

std::optional<int> ParseFlags(int argc, char** argv, absl::string_view usage) {
  absl::SetProgramUsageMessage(usage);
  const absl::string_view program = argc > 0 ? argv[0] : "softq";
  for (int i = 1; i < argc; ++i) {
    const absl::string_view arg = argv[i];
    if (arg == "--help" || arg == "-help" || arg == "-h") {
      PrintHelp(program);
      return 0;
    }
  }
  absl::StatusOr<std::vector<std::string>> positional =
      ParseFlagsFromArgs(argc, argv);
  if (!positional.ok()) return ReportFlagError(program, positional.status());
  if (!positional->empty()) {
    return ReportFlagError(
        program, absl::InvalidArgumentError(
                     absl::StrCat("unexpected argument \"", positional->front(),
                                  "\" (flags are written --name=value)")));
  }
  return std::nullopt;
}

int ReportFlagError(absl::string_view program, const absl::Status& status) {
  std::cerr << program << ": " << status.message() << std::endl;
  return kFlagErrorExitCode;
}

namespace {

// Whole numbers (integer flags, bounds like INT32_MAX) in full; others as
// absl::StrCat does.
std::string FormatNumber(double x) {
  if (std::trunc(x) == x && std::fabs(x) < 9.007199254740992e15) {
    return absl::StrCat(static_cast<int64_t>(x));
  }
  return absl::StrCat(x);
}

}  // namespace

absl::Status FlagAtLeast(absl::string_view flag, double value, double min) {
  if (value >= min) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("--", flag, "=", FormatNumber(value), ": must be at least ",
                   FormatNumber(min)));
}

absl::Status FlagInRange(absl::string_view flag, double value, double min,
                         double max) {
  if (value >= min && value <= max) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("--", flag, "=", FormatNumber(value), ": must be in [",
                   FormatNumber(min), ", ", FormatNumber(max), "]"));
}

absl::Status FlagOneOf(absl::string_view flag, absl::string_view value,
                       std::initializer_list<absl::string_view> allowed) {
  for (absl::string_view a : allowed) {
    if (value == a) return absl::OkStatus();
  }
  return absl::InvalidArgumentError(absl::StrCat("--", flag, "=", value,
                                                 ": must be one of ",
                                                 absl::StrJoin(allowed, ", ")));
}

absl::Status FlagAddressList(absl::string_view flag, absl::string_view value) {
  if (value.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", flag, " is empty: expected host:port,..."));
  }
  for (absl::string_view address : absl::StrSplit(value, ',')) {
    const size_t colon = address.rfind(':');
    int port = 0;
    if (colon == absl::string_view::npos || colon == 0 ||
        !absl::SimpleAtoi(address.substr(colon + 1), &port) || port < 1 ||
        port > 65535) {
      return absl::InvalidArgumentError(
          absl::StrCat("--", flag, "=", value, ": \"", address,
                       "\" is not host:port with port 1..65535"));
    }
  }
  return absl::OkStatus();
}

absl::Status FlagAddress(absl::string_view flag, absl::string_view value) {
  if (absl::StrContains(value, ',')) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--", flag, "=", value, ": expected one host:port, not a list"));
  }
  return FlagAddressList(flag, value);
}

absl::StatusOr<std::vector<int64_t>> FlagWidthList(absl::string_view flag,
                                                   absl::string_view value) {
  std::vector<int64_t> widths;
  for (absl::string_view w : absl::StrSplit(value, ',', absl::SkipEmpty())) {
    int64_t width = 0;
    if (!absl::SimpleAtoi(w, &width) || width < 1 || width > 65536) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--", flag, "=", value, ": expected positive widths like 128,128"));
    }
    widths.push_back(width);
  }
  return widths;
}

absl::Status CheckFlags(std::initializer_list<absl::Status> checks) {
  for (const absl::Status& s : checks) {
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

}  // namespace softq
