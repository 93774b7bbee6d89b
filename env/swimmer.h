// A MuJoCo swimmer behind the Environment interface (env/models/swimmer.xml,
// embedded at build time): three capsules in a viscous plane, two actuated
// hinges.
//   observation (10): qpos = [x, y, heading, hinge_1, hinge_2] (m, m, rad, rad,
//   rad) and
//                     qvel = their rates (m/s, rad/s), head position included
//                     so that one policy network serves both tasks below;
//   action (2):       hinge torques in [-1, 1] (x 150 gear); finite values
//   outside are
//                     clipped, NaN/inf rejected;
//   dynamics:         4 MuJoCo steps of 10 ms per env step (RK4), deterministic
//   given the
//                     seed of the start-state noise (U(-0.1, 0.1) on qpos;
//                     starts at rest).
// Tasks: kSpeed (pretraining, no goal): reward = planar speed of the centre of
// mass in any direction - 1e-4 ||a||^2 (the centre of mass, not a point on the
// body: wagging in place moves a body point fast but the centre of mass
// barely). kTarget (downstream): reward = progress of the centre of mass toward
// `target` per second - 1e-4 ||a||^2, +10 and terminal within 0.5 m of it.
// Episodes time out at max_steps. Not thread-safe (one owner), as every
// Environment.
#ifndef SOFTQ_ENV_SWIMMER_H_
#define SOFTQ_ENV_SWIMMER_H_

#include <array>
#include <memory>
#include <random>

#include "env/environment.h"

struct mjModel_;
struct mjData_;

namespace softq {

class SwimmerEnv : public Environment {
 public:
  enum class Task { kSpeed, kTarget };
  static constexpr int kFrameSkip = 4;

  // InvalidArgument-free: the embedded model is checked by the tests; a load
  // failure is reported by Create.
  static absl::StatusOr<std::unique_ptr<SwimmerEnv>> Create(
      Task task, uint64_t seed, int max_steps = 300,
      std::array<double, 2> target = {3.0, 3.0});
  ~SwimmerEnv() override;

  EnvSpec spec() const override { return {10, 2, max_steps_}; }
  void Seed(uint64_t seed) override { rng_.seed(seed); }
  std::vector<float> Reset() override;
  absl::StatusOr<StepResult> Step(absl::Span<const float> action) override;

  // Centre of mass (x, y) in metres; the distance to the target is measured
  // from it.
  std::array<double, 2> position() const;

 private:
  SwimmerEnv(Task task, uint64_t seed, int max_steps,
             std::array<double, 2> target, mjModel_* model, mjData_* data);
  std::vector<float> Observation() const;
  double TargetDistance() const;

  Task task_;
  std::mt19937_64 rng_;
  int max_steps_;
  std::array<double, 2> target_;
  mjModel_* model_;
  mjData_* data_;
  int steps_ = 0;
  bool done_ = true;
};

}  // namespace softq

#endif  // SOFTQ_ENV_SWIMMER_H_
