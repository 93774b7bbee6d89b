#include "env/registry.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace softq {
namespace {

// Filled during static initialisation, before any thread starts; read-only
// afterwards, so it needs no lock.
std::map<std::string, EnvRegistration, std::less<>>& Registry() {
  static auto* registry =
      new std::map<std::string, EnvRegistration, std::less<>>;
  return *registry;
}

}  // namespace

bool RegisterEnvironment(EnvRegistration registration) {
  const std::string name = registration.name;
  if (!Registry().emplace(name, std::move(registration)).second) {
    std::fprintf(stderr, "environment %s is registered twice\n", name.c_str());
    std::abort();
  }
  return true;
}

std::vector<EnvRegistration> RegisteredEnvironments() {
  std::vector<EnvRegistration> all;
  for (const auto& [name, registration] : Registry())
    all.push_back(registration);
  return all;
}

std::string EnvironmentHelp() {
  std::string help;
  for (const auto& [name, registration] : Registry()) {
    absl::StrAppend(&help, name, ": ", registration.help, "\n");
  }
  return help;
}

absl::StatusOr<std::unique_ptr<Environment>> MakeEnvironment(
    absl::string_view name, absl::string_view config, uint64_t seed) {
  auto it = Registry().find(name);
  if (it == Registry().end()) {
    std::vector<std::string> known;
    for (const auto& entry : Registry()) known.push_back(entry.first);
    return absl::InvalidArgumentError(absl::StrCat(
        "--env=", name,
        ": unknown environment (known: ", absl::StrJoin(known, ", "), ")"));
  }
  absl::StatusOr<EnvConfig> parsed = EnvConfig::Parse(config);
  if (!parsed.ok()) return parsed.status();
  absl::StatusOr<std::unique_ptr<Environment>> env =
      it->second.factory(*parsed, seed);
  if (!env.ok()) return env.status();
  if (absl::Status read = parsed->CheckAllRead(name); !read.ok()) return read;
  return env;
}

}  // namespace softq
