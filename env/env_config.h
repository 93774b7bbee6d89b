// An environment's parameters, from --env_config=key=value,key=value: parsed
// once, read by the environment's factory with typed getters that name the key
// and value on a bad one, and checked at the end for keys nothing read (a typo
// is an error, not a silent default). Not thread-safe: one factory reads it.
#ifndef SOFTQ_ENV_ENV_CONFIG_H_
#define SOFTQ_ENV_ENV_CONFIG_H_

#include <map>
#include <set>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace softq {

class EnvConfig {
 public:
  // "" is no keys. InvalidArgument naming an item without '=', an empty key or
  // a key given twice.
  static absl::StatusOr<EnvConfig> Parse(absl::string_view text);

  // Each getter returns the value of `key`, or `fallback` when it is absent,
  // and marks the key read. InvalidArgument ("--env_config: key=value: ...")
  // when the value does not parse or lies outside [min, max].
  absl::StatusOr<double> Double(absl::string_view key, double fallback,
                                double min = -1e300, double max = 1e300);
  absl::StatusOr<int> Int(absl::string_view key, int fallback, int min,
                          int max);
  absl::StatusOr<bool> Bool(absl::string_view key, bool fallback);
  std::string String(absl::string_view key, absl::string_view fallback);
  // One of `choices` (the first is the fallback); names them on another value.
  absl::StatusOr<std::string> Choice(
      absl::string_view key, std::initializer_list<const char*> choices);
  bool Has(absl::string_view key) const;

  // InvalidArgument naming the first key no getter asked for, and `env`.
  absl::Status CheckAllRead(absl::string_view env) const;

 private:
  absl::Status Bad(absl::string_view key, absl::string_view why) const;

  std::map<std::string, std::string, std::less<>> values_;
  std::set<std::string, std::less<>> read_;
};

}  // namespace softq

#endif  // SOFTQ_ENV_ENV_CONFIG_H_
