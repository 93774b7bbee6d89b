// The MuJoCo swimmer's tasks (env/models/swimmer.xml, embedded at build time):
// three capsules in a viscous plane, two actuated hinges, run by MjcfEnv
// (env/mjcf_env.h) with the task terms below; this file holds only the tasks.
//   observation (10): qpos = [x, y, heading, hinge_1, hinge_2] (m, m, rad, rad,
//                     rad) and qvel = their rates (m/s, rad/s), head position
//                     included so that one policy network serves every task;
//   action (2):       hinge torques in [-1, 1] (x 150 gear); finite values
//                     outside are clipped, NaN/inf rejected;
//   dynamics:         4 MuJoCo steps of 10 ms per env step (RK4), deterministic
//                     given the seed of the start-state noise (U(-0.1, 0.1) on
//                     qpos; starts at rest: with little drag a random start
//                     velocity carries the body for a whole episode).
// Tasks, all with control cost 1e-4 ||a||^2 and measured at the centre of mass
// (not a point on the body: wagging in place moves a body point fast but the
// centre of mass barely):
//   kSpeed (pretraining, no goal): reward = planar speed.
//   kTarget (downstream): reward = progress toward `target` per second, +10
//     and terminal within 0.5 m of it.
//   kExplore (the paper's exploration swimmer): reward = |v_x|, speed along x
//     in either direction; + finish_reward and terminal once |x| >= finish.
// Episodes time out at max_steps (300; swimmer_explore 500). Not thread-safe
// (one owner), as every Environment.
#ifndef SOFTQ_ENV_SWIMMER_H_
#define SOFTQ_ENV_SWIMMER_H_

#include <array>
#include <memory>

#include "env/environment.h"
#include "env/mjcf_env.h"

namespace softq {

class SwimmerEnv : public Environment {
 public:
  enum class Task { kSpeed, kTarget, kExplore };
  static constexpr int kFrameSkip = 4;
  // swimmer_explore's defaults: the finish line at |x| = 1 m, which the
  // travelling-wave gait of tests/swimmer_test.cc crosses within 300 steps
  // from every start of seeds 0-4 (largest |x| 1.02-1.46 m; it veers, so
  // longer does not take it much further: 1.03-1.65 m in 500) and uniform
  // random actions never reach (0.18-0.47 m in 500 steps); 500 steps, the
  // paper's horizon, leave a learner room to get there; the bonus is
  // swimmer_target's arrival bonus.
  static constexpr double kDefaultFinish = 1.0;
  static constexpr double kDefaultFinishReward = 10.0;
  static constexpr int kExploreMaxSteps = 500;

  // The MJCF task of `task` (exposed for tests and tools).
  static MjcfTask TaskOf(Task task, int max_steps,
                         std::array<double, 2> target = {3.0, 3.0},
                         double finish = kDefaultFinish,
                         double finish_reward = kDefaultFinishReward);
  // The embedded model is checked by the tests; a load failure is reported.
  static absl::StatusOr<std::unique_ptr<SwimmerEnv>> Create(
      Task task, uint64_t seed, int max_steps = 300,
      std::array<double, 2> target = {3.0, 3.0}, double finish = kDefaultFinish,
      double finish_reward = kDefaultFinishReward);

  EnvSpec spec() const override { return env_->spec(); }
  void Seed(uint64_t seed) override { env_->Seed(seed); }
  std::vector<float> Reset() override { return env_->Reset(); }
  absl::StatusOr<StepResult> Step(absl::Span<const float> action) override {
    return env_->Step(action);
  }

  // Centre of mass (x, y) in metres; the distance to the target is measured
  // from it.
  std::array<double, 2> position() const { return env_->position(); }

 private:
  explicit SwimmerEnv(std::unique_ptr<MjcfEnv> env) : env_(std::move(env)) {}
  std::unique_ptr<MjcfEnv> env_;
};

}  // namespace softq

#endif  // SOFTQ_ENV_SWIMMER_H_
