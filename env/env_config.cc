#include "env/env_config.h"

#include <cmath>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace softq {

absl::StatusOr<EnvConfig> EnvConfig::Parse(absl::string_view text) {
  EnvConfig config;
  if (text.empty()) return config;
  for (absl::string_view item : absl::StrSplit(text, ',')) {
    const size_t eq = item.find('=');
    if (eq == absl::string_view::npos || eq == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("--env_config: '", item, "' is not key=value"));
    }
    const std::string key(item.substr(0, eq));
    if (!config.values_.emplace(key, std::string(item.substr(eq + 1))).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("--env_config: ", key, " is given twice"));
    }
  }
  return config;
}

absl::Status EnvConfig::Bad(absl::string_view key,
                            absl::string_view why) const {
  auto it = values_.find(key);
  return absl::InvalidArgumentError(
      absl::StrCat("--env_config: ", key, "=", it->second, ": ", why));
}

bool EnvConfig::Has(absl::string_view key) const {
  return values_.find(key) != values_.end();
}

absl::StatusOr<double> EnvConfig::Double(absl::string_view key, double fallback,
                                         double min, double max) {
  read_.emplace(key);
  auto it = values_.find(key);
  if (it == values_.end()) return fallback;
  double value;
  if (!absl::SimpleAtod(it->second, &value) || !std::isfinite(value)) {
    return Bad(key, "not a finite number");
  }
  if (value < min || value > max) {
    return Bad(key, absl::StrCat("outside [", min, ", ", max, "]"));
  }
  return value;
}

absl::StatusOr<int> EnvConfig::Int(absl::string_view key, int fallback, int min,
                                   int max) {
  read_.emplace(key);
  auto it = values_.find(key);
  if (it == values_.end()) return fallback;
  int value;
  if (!absl::SimpleAtoi(it->second, &value)) return Bad(key, "not an integer");
  if (value < min || value > max) {
    return Bad(key, absl::StrCat("outside [", min, ", ", max, "]"));
  }
  return value;
}

absl::StatusOr<bool> EnvConfig::Bool(absl::string_view key, bool fallback) {
  read_.emplace(key);
  auto it = values_.find(key);
  if (it == values_.end()) return fallback;
  bool value;
  if (!absl::SimpleAtob(it->second, &value)) return Bad(key, "not true/false");
  return value;
}

std::string EnvConfig::String(absl::string_view key,
                              absl::string_view fallback) {
  read_.emplace(key);
  auto it = values_.find(key);
  return it == values_.end() ? std::string(fallback) : it->second;
}

absl::StatusOr<std::string> EnvConfig::Choice(
    absl::string_view key, std::initializer_list<const char*> choices) {
  const std::string value = String(key, *choices.begin());
  for (const char* choice : choices) {
    if (value == choice) return value;
  }
  return Bad(key, absl::StrCat("not one of ", absl::StrJoin(choices, ", ")));
}

absl::Status EnvConfig::CheckAllRead(absl::string_view env) const {
  for (const auto& [key, value] : values_) {
    if (read_.count(key) == 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--env_config: ", key, "=", value, ": ", env, " has no key ", key));
    }
  }
  return absl::OkStatus();
}

}  // namespace softq
