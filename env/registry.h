// Environments by name. Each environment file registers a factory at static
// initialisation (SOFTQ_REGISTER_ENVIRONMENT; no central list to edit);
// MakeEnvironment finds it and hands it the parsed --env_config. Registration
// runs before main; lookups are read-only afterwards and thread-safe.
#ifndef SOFTQ_ENV_REGISTRY_H_
#define SOFTQ_ENV_REGISTRY_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "env/env_config.h"
#include "env/environment.h"

namespace softq {

// Builds an environment from its parameters; reads only through `config` so
// that unread keys can be reported.
using EnvFactory = std::function<absl::StatusOr<std::unique_ptr<Environment>>(
    EnvConfig& config, uint64_t seed)>;

struct EnvRegistration {
  std::string name;
  std::string help;  // one line: the task and its --env_config keys
  EnvFactory factory;
};

// Adds `registration`; returns true (for the macro's static). A name given
// twice aborts at start-up: two files claim one name, a build error in effect.
bool RegisterEnvironment(EnvRegistration registration);

// Every registered environment, sorted by name.
std::vector<EnvRegistration> RegisteredEnvironments();

// `name` built with `config` ("key=value,..."; "" for the defaults) and the
// start-state seed. InvalidArgument, one line naming the culprit, for an
// unknown name, a malformed config, a bad value or a key `name` does not take.
absl::StatusOr<std::unique_ptr<Environment>> MakeEnvironment(
    absl::string_view name, absl::string_view config, uint64_t seed);

// The registry's listing, one environment per line, for --env=help.
std::string EnvironmentHelp();

}  // namespace softq

#define SOFTQ_ENV_CONCAT_INNER(a, b) a##b
#define SOFTQ_ENV_CONCAT(a, b) SOFTQ_ENV_CONCAT_INNER(a, b)
// SOFTQ_REGISTER_ENVIRONMENT("name", "help", factory) at namespace scope in a
// file of a cc_library with alwayslink = 1.
#define SOFTQ_REGISTER_ENVIRONMENT(name, help, factory)                 \
  static const bool SOFTQ_ENV_CONCAT(softq_env_registered_, __LINE__) = \
      ::softq::RegisterEnvironment({name, help, factory})

#endif  // SOFTQ_ENV_REGISTRY_H_
