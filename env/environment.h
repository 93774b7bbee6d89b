// The environment interface every actor steps: reset, step, specs, seeding.
// Observations and actions are flat float vectors; no LibTorch here. An
// Environment is not thread-safe: one actor thread owns it.
#ifndef SOFTQ_ENV_ENVIRONMENT_H_
#define SOFTQ_ENV_ENVIRONMENT_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace softq {

struct EnvSpec {
  int observation_dim = 0;
  int action_dim = 0;  // actions live in [-1, 1]^action_dim
  int max_episode_steps =
      0;  // the time limit; reaching it is a time-out, not a terminal
};

struct StepResult {
  std::vector<float> observation;
  float reward = 0;
  bool terminal = false;  // the episode ended in a terminal state: no bootstrap
  bool truncated = false;  // the time limit was reached: bootstrap, then reset
};

class Environment {
 public:
  virtual ~Environment() = default;
  virtual EnvSpec spec() const = 0;
  // Reseeds the environment's random number generator (start states).
  virtual void Seed(uint64_t seed) = 0;
  // Starts an episode; returns the first observation.
  virtual std::vector<float> Reset() = 0;
  // Applies `action`. InvalidArgument (naming the action) if its size is wrong
  // or it holds NaN/inf; finite values outside [-1, 1] are clipped.
  // FailedPrecondition after the episode ended and before Reset().
  virtual absl::StatusOr<StepResult> Step(absl::Span<const float> action) = 0;
};

}  // namespace softq

#endif  // SOFTQ_ENV_ENVIRONMENT_H_
