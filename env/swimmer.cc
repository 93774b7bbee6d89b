#include "env/swimmer.h"

#include <utility>

#include "env/registry.h"

extern const char
    kSwimmerXml[];  // env/models/swimmer.xml, embedded by a genrule

namespace softq {

MjcfTask SwimmerEnv::TaskOf(Task task, int max_steps,
                            std::array<double, 2> target, double finish,
                            double finish_reward) {
  MjcfTask t;
  t.body = "head";  // the root of the chain: its subtree is the whole swimmer
  t.frame_skip = kFrameSkip;
  t.max_steps = max_steps;
  t.qpos_noise = 0.1;
  t.keep_root_xy = true;
  t.ctrl_cost = 1e-4;
  switch (task) {
    case Task::kSpeed:
      t.velocity_weight = 1;
      t.velocity = MjcfTask::Velocity::kPlanar;
      break;
    case Task::kTarget:
      t.target_point = target;
      t.progress_weight = 1;
      t.goal_radius = 0.5;
      t.goal_reward = 10;
      break;
    case Task::kExplore:
      t.velocity_weight = 1;
      t.velocity = MjcfTask::Velocity::kAbsX;
      t.finish = finish;
      t.finish_reward = finish_reward;
      break;
  }
  return t;
}

absl::StatusOr<std::unique_ptr<SwimmerEnv>> SwimmerEnv::Create(
    Task task, uint64_t seed, int max_steps, std::array<double, 2> target,
    double finish, double finish_reward) {
  absl::StatusOr<std::unique_ptr<MjcfEnv>> env = MjcfEnv::FromXml(
      kSwimmerXml, "swimmer.xml",
      TaskOf(task, max_steps, target, finish, finish_reward), seed);
  if (!env.ok()) return env.status();
  return std::unique_ptr<SwimmerEnv>(new SwimmerEnv(std::move(*env)));
}

namespace {

absl::StatusOr<std::unique_ptr<Environment>> MakeSwimmer(SwimmerEnv::Task task,
                                                         EnvConfig& config,
                                                         uint64_t seed) {
  absl::StatusOr<int> max_steps = config.Int(
      "max_steps",
      task == SwimmerEnv::Task::kExplore ? SwimmerEnv::kExploreMaxSteps : 300,
      1, 1000000);
  if (!max_steps.ok()) return max_steps.status();
  std::array<double, 2> target = {3.0, 3.0};
  double finish = SwimmerEnv::kDefaultFinish;
  double finish_reward = SwimmerEnv::kDefaultFinishReward;
  if (task == SwimmerEnv::Task::kTarget) {
    absl::StatusOr<double> x = config.Double("target_x", 3.0, -100, 100);
    if (!x.ok()) return x.status();
    absl::StatusOr<double> y = config.Double("target_y", 3.0, -100, 100);
    if (!y.ok()) return y.status();
    target = {*x, *y};
  }
  if (task == SwimmerEnv::Task::kExplore) {
    absl::StatusOr<double> f = config.Double("finish", finish, 0.01, 1000);
    if (!f.ok()) return f.status();
    absl::StatusOr<double> r =
        config.Double("finish_reward", finish_reward, -1e6, 1e6);
    if (!r.ok()) return r.status();
    finish = *f;
    finish_reward = *r;
  }
  absl::StatusOr<std::unique_ptr<SwimmerEnv>> env =
      SwimmerEnv::Create(task, seed, *max_steps, target, finish, finish_reward);
  if (!env.ok()) return env.status();
  return std::unique_ptr<Environment>(std::move(*env));
}

}  // namespace

SOFTQ_REGISTER_ENVIRONMENT(
    "swimmer_speed",
    "MuJoCo swimmer, reward = planar speed (obs 10, act 2); keys: max_steps "
    "(300)",
    [](EnvConfig& config, uint64_t seed) {
      return MakeSwimmer(SwimmerEnv::Task::kSpeed, config, seed);
    });
SOFTQ_REGISTER_ENVIRONMENT(
    "swimmer_target",
    "MuJoCo swimmer, reward = progress to a target, +10 within 0.5 m; keys: "
    "max_steps (300), target_x (3), target_y (3)",
    [](EnvConfig& config, uint64_t seed) {
      return MakeSwimmer(SwimmerEnv::Task::kTarget, config, seed);
    });
SOFTQ_REGISTER_ENVIRONMENT(
    "swimmer_explore",
    "MuJoCo swimmer, reward = |speed along x| (either way), bonus and "
    "terminal at |x| >= finish (obs 10, act 2); keys: max_steps (500), "
    "finish (1 m), finish_reward (10)",
    [](EnvConfig& config, uint64_t seed) {
      return MakeSwimmer(SwimmerEnv::Task::kExplore, config, seed);
    });

}  // namespace softq
