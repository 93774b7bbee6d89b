// A MuJoCo environment built from any MJCF model (a file or text) and an
// MjcfTask: the task's reward terms, termination and observation parts are
// data, so a user runs their own robot with flags alone (registered as `mjcf`:
// --env=mjcf --env_config=model=PATH,key=value,...). Not thread-safe: one
// owner, as every Environment.
//
// Action: one value in [-1, 1] per actuator, rescaled linearly onto that
// actuator's ctrlrange (every actuator needs one); finite values outside are
// clipped, NaN/inf rejected naming the index.
// Step: frame_skip MuJoCo steps, then mj_forward for the derived quantities.
// "The body" below is MjcfTask::body (default: the first body under the world),
// "its centre of mass" is its subtree's (mjData.subtree_com: the body and all
// it carries), "the target" is a site's position or a fixed point, in the x-y
// plane; dt = frame_skip * timestep. Reward, summed:
//   velocity_weight * v    v: the centre of mass's displacement over the step
//                          / dt, along x, along y, |along x| or its planar
//                          length (MjcfTask::Velocity)
//   - distance_weight * d  d: planar distance from the centre of mass to the
//                          target after the step (m)
//   gaussian_weight * exp(-d^2 / (2 gaussian_width^2))
//   progress_weight * (d_before - d) / dt   (m/s toward the target)
//   - ctrl_cost * ||a||^2  a: the clipped action in [-1, 1]
//   alive_bonus            each step that does not end out of the height range
// then, on the float reward, + goal_reward when d < goal_radius (terminal) and
// + finish_reward when |x of the centre of mass| >= finish (terminal); either
// is off at radius / finish 0. Terminal too when the body's own height
// (xpos z) leaves [min_height, max_height]. The time limit max_steps is a
// truncation, not a terminal.
// Observation, in this order: qpos without the root's x and y (the first two
// coordinates of a free joint of a body on the world, and slide joints along x
// or y of such a body; keep_root_xy keeps them), qvel, then with
// observe_position the centre of mass (x, y), then with observe_target the
// target minus the centre of mass (x, y).
// Reset: qpos0 + U(-qpos_noise, qpos_noise) per coordinate (quaternions
// renormalised), qvel U(-qvel_noise, qvel_noise) (0: at rest), from a
// generator seeded by Seed/the factory's seed: deterministic per seed.
#ifndef SOFTQ_ENV_MJCF_ENV_H_
#define SOFTQ_ENV_MJCF_ENV_H_

#include <array>
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "env/environment.h"

struct mjModel_;
struct mjData_;

namespace softq {

struct MjcfTask {
  enum class Velocity { kPlanar, kX, kY, kAbsX };

  std::string body;    // the reference body; "": the first body under the world
  int frame_skip = 4;  // MuJoCo steps per environment step
  int max_steps = 1000;     // time limit (truncation)
  double qpos_noise = 0.1;  // reset noise, uniform half-widths
  double qvel_noise = 0.0;

  bool keep_root_xy = false;      // observe the root's x, y coordinates
  bool observe_position = false;  // append the centre of mass (x, y)
  bool observe_target = false;    // append target - centre of mass (x, y)

  double velocity_weight = 0;
  Velocity velocity = Velocity::kPlanar;

  // The target: this site (its current position) if named, else target_point.
  std::string target_site;
  std::optional<std::array<double, 2>> target_point;
  double distance_weight = 0;
  double gaussian_weight = 0;
  double gaussian_width = 1;  // m, > 0
  double progress_weight = 0;

  double ctrl_cost = 0;
  double alive_bonus = 0;
  double min_height = -std::numeric_limits<double>::infinity();
  double max_height = std::numeric_limits<double>::infinity();

  double goal_radius = 0;  // m; 0: no goal
  double goal_reward = 0;
  double finish = 0;  // m; 0: no finish line
  double finish_reward = 0;
};

class MjcfEnv : public Environment {
 public:
  // The model in the file at `path`. InvalidArgument, one line, when it does
  // not load (the path and MuJoCo's message), when the task names a body or
  // site the model lacks, when an actuator has no control range, when the
  // model has no actuators, or when a term needs a target and has none.
  static absl::StatusOr<std::unique_ptr<MjcfEnv>> FromFile(
      const std::string& path, const MjcfTask& task, uint64_t seed);
  // The same from MJCF text; `name` stands for it in errors. The text may not
  // <include> files or load meshes (it is loaded from memory).
  static absl::StatusOr<std::unique_ptr<MjcfEnv>> FromXml(
      absl::string_view xml, absl::string_view name, const MjcfTask& task,
      uint64_t seed);
  ~MjcfEnv() override;
  MjcfEnv(const MjcfEnv&) = delete;
  MjcfEnv& operator=(const MjcfEnv&) = delete;

  EnvSpec spec() const override;
  void Seed(uint64_t seed) override { rng_.seed(seed); }
  std::vector<float> Reset() override;
  absl::StatusOr<StepResult> Step(absl::Span<const float> action) override;

  // The body's centre of mass (x, y), m, current after Reset/Step.
  std::array<double, 2> position() const;
  // The body's own height (xpos z), m.
  double height() const;
  // The target (x, y), m; (0, 0) when the task has none.
  std::array<double, 2> target() const;

  // The simulation itself, for tests and tools (push a body, read a geom).
  // Changing the data between steps is the caller's business.
  const mjModel_* model() const { return model_; }
  mjData_* data() { return data_; }

 private:
  MjcfEnv(const MjcfTask& task, uint64_t seed, mjModel_* model, mjData_* data);
  absl::Status Resolve(absl::string_view name);
  std::vector<float> Observation() const;
  double TargetDistance() const;

  MjcfTask task_;
  std::mt19937_64 rng_;
  mjModel_* model_;
  mjData_* data_;
  int body_ = 1;
  int target_site_ = -1;
  std::vector<int> observed_qpos_;  // qpos indices in the observation
  std::vector<double> ctrl_mid_, ctrl_half_;
  int steps_ = 0;
  bool done_ = true;
};

}  // namespace softq

#endif  // SOFTQ_ENV_MJCF_ENV_H_
