// external: an environment that only the actors step, in another process or
// language (the Python actor, python/softq). It carries the task's sizes, which
// the learner needs to build its networks (both 0 when not given: the learner
// reads them from the replay), and nothing else: Reset gives zeros and Step
// fails. The learner evaluates it from the actors' finished episodes
// (learner/learner_evaluations.h).
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "env/environment.h"
#include "env/registry.h"

namespace softq {
namespace {

class ExternalEnv : public Environment {
 public:
  explicit ExternalEnv(EnvSpec spec) : spec_(spec) {}
  EnvSpec spec() const override { return spec_; }
  void Seed(uint64_t) override {}
  std::vector<float> Reset() override {
    return std::vector<float>(spec_.observation_dim, 0.0f);
  }
  absl::StatusOr<StepResult> Step(absl::Span<const float>) override {
    return absl::FailedPreconditionError(
        "external: stepped by the actors only (their report lines and "
        "softq_actor_episode_return metrics give the returns)");
  }

 private:
  const EnvSpec spec_;
};

absl::StatusOr<std::unique_ptr<Environment>> MakeExternal(EnvConfig& config,
                                                          uint64_t) {
  EnvSpec spec;
  if (config.Has("observation_dim") != config.Has("action_dim")) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--env_config: external takes both observation_dim and action_dim "
        "(e.g. observation_dim=3,action_dim=1) or neither (sizes from the "
        "replay); missing ",
        config.Has("observation_dim") ? "action_dim" : "observation_dim"));
  }
  if (!config.Has("observation_dim")) {
    spec.observation_dim = spec.action_dim = 0;
    spec.max_episode_steps = 1;
    return std::make_unique<ExternalEnv>(spec);
  }
  absl::StatusOr<int> obs = config.Int("observation_dim", 0, 1, 4096);
  if (!obs.ok()) return obs.status();
  absl::StatusOr<int> act = config.Int("action_dim", 0, 1, 256);
  if (!act.ok()) return act.status();
  spec.observation_dim = *obs;
  spec.action_dim = *act;
  // One step, so that a rollout steps it and says why it cannot, instead of
  // reporting zero returns from empty rollouts.
  spec.max_episode_steps = 1;
  return std::make_unique<ExternalEnv>(spec);
}

}  // namespace

SOFTQ_REGISTER_ENVIRONMENT(
    "external",
    "a task stepped only by the actors (python3 -m softq.actor): its sizes; "
    "keys: observation_dim, action_dim (both, or neither: the learner reads "
    "them from the replay's first stored batch)",
    MakeExternal);

}  // namespace softq
