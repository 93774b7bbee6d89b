#include "env/swimmer.h"

#include <mujoco/mujoco.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "env/registry.h"

extern const char
    kSwimmerXml[];  // env/models/swimmer.xml, embedded by a genrule

namespace softq {

absl::StatusOr<std::unique_ptr<SwimmerEnv>> SwimmerEnv::Create(
    Task task, uint64_t seed, int max_steps, std::array<double, 2> target) {
  mjVFS vfs;
  mj_defaultVFS(&vfs);
  const int size = static_cast<int>(std::strlen(kSwimmerXml));
  if (mj_makeEmptyFileVFS(&vfs, "swimmer.xml", size) != 0) {
    return absl::InternalError(
        "swimmer: cannot allocate the MuJoCo virtual file");
  }
  std::memcpy(vfs.filedata[vfs.nfile - 1], kSwimmerXml, size);
  char error[1000] = "";
  mjModel* model = mj_loadXML("swimmer.xml", &vfs, error, sizeof(error));
  mj_deleteVFS(&vfs);
  if (model == nullptr)
    return absl::InternalError(absl::StrCat("swimmer model: ", error));
  mjData* data = mj_makeData(model);
  return std::unique_ptr<SwimmerEnv>(
      new SwimmerEnv(task, seed, max_steps, target, model, data));
}

SwimmerEnv::SwimmerEnv(Task task, uint64_t seed, int max_steps,
                       std::array<double, 2> target, mjModel_* model,
                       mjData_* data)
    : task_(task),
      rng_(seed),
      max_steps_(max_steps),
      target_(target),
      model_(model),
      data_(data) {}

SwimmerEnv::~SwimmerEnv() {
  mj_deleteData(data_);
  mj_deleteModel(model_);
}

std::vector<float> SwimmerEnv::Observation() const {
  std::vector<float> obs;
  obs.reserve(10);
  for (int i = 0; i < model_->nq; ++i)
    obs.push_back(static_cast<float>(data_->qpos[i]));
  for (int i = 0; i < model_->nv; ++i)
    obs.push_back(static_cast<float>(data_->qvel[i]));
  return obs;
}

// subtree_com of body 1 (the head, parent of the whole chain): the swimmer's
// centre of mass, current after mj_forward.
std::array<double, 2> SwimmerEnv::position() const {
  return {data_->subtree_com[3], data_->subtree_com[4]};
}

double SwimmerEnv::TargetDistance() const {
  const std::array<double, 2> p = position();
  return std::hypot(p[0] - target_[0], p[1] - target_[1]);
}

std::vector<float> SwimmerEnv::Reset() {
  mj_resetData(model_, data_);
  std::uniform_real_distribution<double> noise(-0.1, 0.1);
  for (int i = 0; i < model_->nq; ++i) data_->qpos[i] += noise(rng_);
  // At rest: with little drag a random start velocity carries the body for a
  // whole episode, and the speed task would pay for it.
  mj_forward(model_, data_);
  steps_ = 0;
  done_ = false;
  return Observation();
}

absl::StatusOr<StepResult> SwimmerEnv::Step(absl::Span<const float> action) {
  if (action.size() != 2) {
    return absl::InvalidArgumentError(absl::StrCat(
        "action has ", action.size(), " values, swimmer expects 2"));
  }
  for (size_t i = 0; i < action.size(); ++i) {
    if (!std::isfinite(action[i])) {
      return absl::InvalidArgumentError(
          absl::StrCat("action[", i, "] is not finite"));
    }
  }
  if (done_)
    return absl::FailedPreconditionError(
        "swimmer: Step() after the episode ended");
  double control_cost = 0;
  for (int i = 0; i < 2; ++i) {
    const double a = std::clamp(static_cast<double>(action[i]), -1.0, 1.0);
    data_->ctrl[i] = a;
    control_cost += 1e-4 * a * a;
  }
  const std::array<double, 2> before = position();
  const double distance_before = TargetDistance();
  for (int i = 0; i < kFrameSkip; ++i) mj_step(model_, data_);
  mj_forward(
      model_,
      data_);  // derived quantities (the centre of mass) for the new state
  const double dt = kFrameSkip * model_->opt.timestep;
  const std::array<double, 2> after = position();
  ++steps_;
  StepResult result;
  result.observation = Observation();
  if (task_ == Task::kSpeed) {
    result.reward = static_cast<float>(
        std::hypot(after[0] - before[0], after[1] - before[1]) / dt -
        control_cost);
  } else {
    const double distance = TargetDistance();
    result.reward =
        static_cast<float>((distance_before - distance) / dt - control_cost);
    if (distance < 0.5) {
      result.reward += 10.0f;
      result.terminal = true;
    }
  }
  result.truncated = !result.terminal && steps_ >= max_steps_;
  done_ = result.terminal || result.truncated;
  return result;
}

namespace {

absl::StatusOr<std::unique_ptr<Environment>> MakeSwimmer(SwimmerEnv::Task task,
                                                         EnvConfig& config,
                                                         uint64_t seed) {
  absl::StatusOr<int> max_steps = config.Int("max_steps", 300, 1, 1000000);
  if (!max_steps.ok()) return max_steps.status();
  std::array<double, 2> target = {3.0, 3.0};
  if (task == SwimmerEnv::Task::kTarget) {
    absl::StatusOr<double> x = config.Double("target_x", 3.0, -100, 100);
    if (!x.ok()) return x.status();
    absl::StatusOr<double> y = config.Double("target_y", 3.0, -100, 100);
    if (!y.ok()) return y.status();
    target = {*x, *y};
  }
  absl::StatusOr<std::unique_ptr<SwimmerEnv>> env =
      SwimmerEnv::Create(task, seed, *max_steps, target);
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

}  // namespace softq
