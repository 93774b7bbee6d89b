#include "env/mjcf_env.h"

#include <mujoco/mujoco.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "env/registry.h"

namespace softq {
namespace {

// MuJoCo's message ends with a newline at times; one line it is.
std::string OneLine(const char* message) {
  std::string line = message;
  std::replace(line.begin(), line.end(), '\n', ' ');
  while (!line.empty() && line.back() == ' ') line.pop_back();
  return line;
}

bool NeedsTarget(const MjcfTask& task) {
  return task.distance_weight != 0 || task.gaussian_weight != 0 ||
         task.progress_weight != 0 || task.goal_radius > 0 ||
         task.observe_target;
}

}  // namespace

absl::StatusOr<std::unique_ptr<MjcfEnv>> MjcfEnv::FromFile(
    const std::string& path, const MjcfTask& task, uint64_t seed) {
  char error[1000] = "";
  mjModel* model = mj_loadXML(path.c_str(), nullptr, error, sizeof(error));
  if (model == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("MJCF model ", path, " does not load: ", OneLine(error)));
  }
  std::unique_ptr<MjcfEnv> env(
      new MjcfEnv(task, seed, model, mj_makeData(model)));
  if (absl::Status resolved = env->Resolve(path); !resolved.ok()) {
    return resolved;
  }
  return env;
}

absl::StatusOr<std::unique_ptr<MjcfEnv>> MjcfEnv::FromXml(
    absl::string_view xml, absl::string_view name, const MjcfTask& task,
    uint64_t seed) {
  mjVFS vfs;
  mj_defaultVFS(&vfs);
  const int size = static_cast<int>(xml.size());
  if (mj_makeEmptyFileVFS(&vfs, "model.xml", size) != 0) {
    return absl::InternalError(
        absl::StrCat(name, ": cannot allocate the MuJoCo virtual file"));
  }
  std::memcpy(vfs.filedata[vfs.nfile - 1], xml.data(), size);
  char error[1000] = "";
  mjModel* model = mj_loadXML("model.xml", &vfs, error, sizeof(error));
  mj_deleteVFS(&vfs);
  if (model == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("MJCF model ", name, " does not load: ", OneLine(error)));
  }
  std::unique_ptr<MjcfEnv> env(
      new MjcfEnv(task, seed, model, mj_makeData(model)));
  if (absl::Status resolved = env->Resolve(name); !resolved.ok()) {
    return resolved;
  }
  return env;
}

MjcfEnv::MjcfEnv(const MjcfTask& task, uint64_t seed, mjModel_* model,
                 mjData_* data)
    : task_(task), rng_(seed), model_(model), data_(data) {}

MjcfEnv::~MjcfEnv() {
  mj_deleteData(data_);
  mj_deleteModel(model_);
}

// Names to ids, the observed coordinates and the actuator ranges; checks the
// task against the model.
absl::Status MjcfEnv::Resolve(absl::string_view name) {
  const std::string where = absl::StrCat(" in MJCF model ", name);
  if (task_.body.empty()) {
    body_ = -1;
    for (int b = 1; b < model_->nbody && body_ < 0; ++b) {
      if (model_->body_parentid[b] == 0) body_ = b;
    }
    if (body_ < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("no body under the world", where));
    }
  } else {
    body_ = mj_name2id(model_, mjOBJ_BODY, task_.body.c_str());
    if (body_ < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("no body named '", task_.body, "'", where));
    }
  }
  if (!task_.target_site.empty()) {
    target_site_ = mj_name2id(model_, mjOBJ_SITE, task_.target_site.c_str());
    if (target_site_ < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("no site named '", task_.target_site, "'", where));
    }
  } else if (NeedsTarget(task_) && !task_.target_point.has_value()) {
    return absl::InvalidArgumentError(
        absl::StrCat("a distance, Gaussian, progress, goal or observed-target "
                     "term needs a target (a site or a point)",
                     where));
  }
  if (task_.frame_skip < 1 || task_.max_steps < 1 ||
      !(task_.gaussian_width > 0)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "frame_skip and max_steps must be >= 1 and "
        "gaussian_width > 0, got ",
        task_.frame_skip, ", ", task_.max_steps, ", ", task_.gaussian_width));
  }
  if (model_->nu == 0) {
    return absl::InvalidArgumentError(absl::StrCat("no actuators", where));
  }
  for (int i = 0; i < model_->nu; ++i) {
    const double lo = model_->actuator_ctrlrange[2 * i];
    const double hi = model_->actuator_ctrlrange[2 * i + 1];
    if (!model_->actuator_ctrllimited[i] || !(hi > lo)) {
      const char* actuator = mj_id2name(model_, mjOBJ_ACTUATOR, i);
      return absl::InvalidArgumentError(absl::StrCat(
          "actuator ", i, " '", actuator ? actuator : "", "'",
          " has no control range (set ctrllimited=\"true\" and ctrlrange)",
          where));
    }
    ctrl_mid_.push_back((lo + hi) / 2);
    ctrl_half_.push_back((hi - lo) / 2);
  }
  // The root's planar coordinates: free joints and x/y slides of bodies on
  // the world.
  std::vector<bool> dropped(model_->nq, false);
  if (!task_.keep_root_xy) {
    for (int j = 0; j < model_->njnt; ++j) {
      if (model_->body_parentid[model_->jnt_bodyid[j]] != 0) continue;
      const int adr = model_->jnt_qposadr[j];
      const mjtNum* axis = model_->jnt_axis + 3 * j;
      if (model_->jnt_type[j] == mjJNT_FREE) {
        dropped[adr] = dropped[adr + 1] = true;
      } else if (model_->jnt_type[j] == mjJNT_SLIDE && axis[2] == 0 &&
                 (axis[0] == 0 || axis[1] == 0)) {
        dropped[adr] = true;
      }
    }
  }
  for (int i = 0; i < model_->nq; ++i) {
    if (!dropped[i]) observed_qpos_.push_back(i);
  }
  return absl::OkStatus();
}

EnvSpec MjcfEnv::spec() const {
  const int dim = static_cast<int>(observed_qpos_.size()) + model_->nv +
                  (task_.observe_position ? 2 : 0) +
                  (task_.observe_target ? 2 : 0);
  return {dim, model_->nu, task_.max_steps};
}

std::array<double, 2> MjcfEnv::position() const {
  return {data_->subtree_com[3 * body_], data_->subtree_com[3 * body_ + 1]};
}

double MjcfEnv::height() const { return data_->xpos[3 * body_ + 2]; }

std::array<double, 2> MjcfEnv::target() const {
  if (target_site_ >= 0) {
    return {data_->site_xpos[3 * target_site_],
            data_->site_xpos[3 * target_site_ + 1]};
  }
  return task_.target_point.value_or(std::array<double, 2>{0, 0});
}

double MjcfEnv::TargetDistance() const {
  const std::array<double, 2> p = position(), t = target();
  return std::hypot(p[0] - t[0], p[1] - t[1]);
}

std::vector<float> MjcfEnv::Observation() const {
  std::vector<float> obs;
  obs.reserve(spec().observation_dim);
  for (int i : observed_qpos_)
    obs.push_back(static_cast<float>(data_->qpos[i]));
  for (int i = 0; i < model_->nv; ++i) {
    obs.push_back(static_cast<float>(data_->qvel[i]));
  }
  if (task_.observe_position) {
    const std::array<double, 2> p = position();
    obs.push_back(static_cast<float>(p[0]));
    obs.push_back(static_cast<float>(p[1]));
  }
  if (task_.observe_target) {
    const std::array<double, 2> p = position(), t = target();
    obs.push_back(static_cast<float>(t[0] - p[0]));
    obs.push_back(static_cast<float>(t[1] - p[1]));
  }
  return obs;
}

std::vector<float> MjcfEnv::Reset() {
  mj_resetData(model_, data_);
  if (task_.qpos_noise > 0) {
    std::uniform_real_distribution<double> noise(-task_.qpos_noise,
                                                 task_.qpos_noise);
    for (int i = 0; i < model_->nq; ++i) data_->qpos[i] += noise(rng_);
    for (int j = 0; j < model_->njnt; ++j) {
      const int adr = model_->jnt_qposadr[j];
      if (model_->jnt_type[j] == mjJNT_FREE)
        mju_normalize4(data_->qpos + adr + 3);
      if (model_->jnt_type[j] == mjJNT_BALL) mju_normalize4(data_->qpos + adr);
    }
  }
  if (task_.qvel_noise > 0) {
    std::uniform_real_distribution<double> noise(-task_.qvel_noise,
                                                 task_.qvel_noise);
    for (int i = 0; i < model_->nv; ++i) data_->qvel[i] = noise(rng_);
  }
  mj_forward(model_, data_);
  steps_ = 0;
  done_ = false;
  return Observation();
}

absl::StatusOr<StepResult> MjcfEnv::Step(absl::Span<const float> action) {
  if (static_cast<int>(action.size()) != model_->nu) {
    return absl::InvalidArgumentError(absl::StrCat("action has ", action.size(),
                                                   " values, the model has ",
                                                   model_->nu, " actuators"));
  }
  for (size_t i = 0; i < action.size(); ++i) {
    if (!std::isfinite(action[i])) {
      return absl::InvalidArgumentError(
          absl::StrCat("action[", i, "] is not finite"));
    }
  }
  if (done_) {
    return absl::FailedPreconditionError(
        "MJCF environment: Step() after the episode ended");
  }
  double control_cost = 0;
  for (int i = 0; i < model_->nu; ++i) {
    const double a = std::clamp(static_cast<double>(action[i]), -1.0, 1.0);
    data_->ctrl[i] = ctrl_mid_[i] + a * ctrl_half_[i];
    control_cost += task_.ctrl_cost * a * a;
  }
  const std::array<double, 2> before = position();
  const double distance_before =
      task_.progress_weight != 0 ? TargetDistance() : 0;
  for (int i = 0; i < task_.frame_skip; ++i) mj_step(model_, data_);
  mj_forward(model_, data_);  // derived quantities for the new state
  const double dt = task_.frame_skip * model_->opt.timestep;
  const std::array<double, 2> after = position();
  ++steps_;

  StepResult result;
  result.observation = Observation();
  const double z = height();
  const bool fell = !(z >= task_.min_height && z <= task_.max_height);
  double shaped = 0;
  if (task_.velocity_weight != 0) {
    const double vx = (after[0] - before[0]) / dt;
    const double vy = (after[1] - before[1]) / dt;
    double v = 0;
    switch (task_.velocity) {
      case MjcfTask::Velocity::kPlanar:
        v = std::hypot(after[0] - before[0], after[1] - before[1]) / dt;
        break;
      case MjcfTask::Velocity::kX:
        v = vx;
        break;
      case MjcfTask::Velocity::kY:
        v = vy;
        break;
      case MjcfTask::Velocity::kAbsX:
        v = std::abs(vx);
        break;
    }
    shaped += task_.velocity_weight * v;
  }
  const double distance = NeedsTarget(task_) ? TargetDistance() : 0;
  if (task_.distance_weight != 0) shaped -= task_.distance_weight * distance;
  if (task_.gaussian_weight != 0) {
    const double w = task_.gaussian_width;
    shaped +=
        task_.gaussian_weight * std::exp(-distance * distance / (2 * w * w));
  }
  if (task_.progress_weight != 0) {
    shaped += task_.progress_weight * ((distance_before - distance) / dt);
  }
  if (task_.alive_bonus != 0 && !fell) shaped += task_.alive_bonus;
  shaped -= control_cost;
  result.reward = static_cast<float>(shaped);
  if (task_.goal_radius > 0 && distance < task_.goal_radius) {
    result.reward += static_cast<float>(task_.goal_reward);
    result.terminal = true;
  }
  if (task_.finish > 0 && std::abs(after[0]) >= task_.finish) {
    result.reward += static_cast<float>(task_.finish_reward);
    result.terminal = true;
  }
  if (fell) result.terminal = true;
  result.truncated = !result.terminal && steps_ >= task_.max_steps;
  done_ = result.terminal || result.truncated;
  return result;
}

namespace {

// Reads `key` into `*out` (unchanged when absent).
absl::Status ReadDouble(EnvConfig& config, absl::string_view key, double* out,
                        double min = -1e300, double max = 1e300) {
  absl::StatusOr<double> value = config.Double(key, *out, min, max);
  if (!value.ok()) return value.status();
  *out = *value;
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Environment>> MakeMjcf(EnvConfig& config,
                                                      uint64_t seed) {
  if (!config.Has("model")) {
    return absl::InvalidArgumentError(
        "--env_config: mjcf needs model=PATH (an MJCF file)");
  }
  const std::string path = config.String("model", "");
  MjcfTask task;
  task.body = config.String("body", "");
  task.target_site = config.String("target_site", "");
  absl::StatusOr<int> frame_skip = config.Int("frame_skip", 4, 1, 1000);
  if (!frame_skip.ok()) return frame_skip.status();
  task.frame_skip = *frame_skip;
  absl::StatusOr<int> max_steps = config.Int("max_steps", 1000, 1, 100000000);
  if (!max_steps.ok()) return max_steps.status();
  task.max_steps = *max_steps;
  absl::StatusOr<bool> keep_root_xy = config.Bool("keep_root_xy", false);
  if (!keep_root_xy.ok()) return keep_root_xy.status();
  task.keep_root_xy = *keep_root_xy;
  absl::StatusOr<bool> observe_position =
      config.Bool("observe_position", false);
  if (!observe_position.ok()) return observe_position.status();
  task.observe_position = *observe_position;
  absl::StatusOr<bool> observe_target = config.Bool("observe_target", false);
  if (!observe_target.ok()) return observe_target.status();
  task.observe_target = *observe_target;
  absl::StatusOr<std::string> velocity =
      config.Choice("velocity", {"planar", "x", "y", "abs_x"});
  if (!velocity.ok()) return velocity.status();
  task.velocity = *velocity == "x"       ? MjcfTask::Velocity::kX
                  : *velocity == "y"     ? MjcfTask::Velocity::kY
                  : *velocity == "abs_x" ? MjcfTask::Velocity::kAbsX
                                         : MjcfTask::Velocity::kPlanar;
  if (config.Has("target_x") || config.Has("target_y")) {
    std::array<double, 2> point = {0, 0};
    if (absl::Status s = ReadDouble(config, "target_x", &point[0]); !s.ok())
      return s;
    if (absl::Status s = ReadDouble(config, "target_y", &point[1]); !s.ok())
      return s;
    task.target_point = point;
  }
  const double kHuge = 1e300;
  struct Key {
    const char* name;
    double* field;
    double min;
  };
  const Key keys[] = {
      {"qpos_noise", &task.qpos_noise, 0},
      {"qvel_noise", &task.qvel_noise, 0},
      {"velocity_weight", &task.velocity_weight, -kHuge},
      {"distance_weight", &task.distance_weight, -kHuge},
      {"gaussian_weight", &task.gaussian_weight, -kHuge},
      {"gaussian_width", &task.gaussian_width, 1e-9},
      {"progress_weight", &task.progress_weight, -kHuge},
      {"ctrl_cost", &task.ctrl_cost, -kHuge},
      {"alive_bonus", &task.alive_bonus, -kHuge},
      {"min_height", &task.min_height, -kHuge},
      {"max_height", &task.max_height, -kHuge},
      {"goal_radius", &task.goal_radius, 0},
      {"goal_reward", &task.goal_reward, -kHuge},
      {"finish", &task.finish, 0},
      {"finish_reward", &task.finish_reward, -kHuge},
  };
  for (const Key& key : keys) {
    if (!config.Has(key.name)) continue;  // the defaults may be +-inf
    if (absl::Status s = ReadDouble(config, key.name, key.field, key.min);
        !s.ok()) {
      return s;
    }
  }
  absl::StatusOr<std::unique_ptr<MjcfEnv>> env =
      MjcfEnv::FromFile(path, task, seed);
  if (!env.ok()) return env.status();
  return std::unique_ptr<Environment>(std::move(*env));
}

}  // namespace

SOFTQ_REGISTER_ENVIRONMENT(
    "mjcf",
    "your MuJoCo model, reward terms from keys (README: Environments); keys: "
    "model (required: an MJCF file), body (first under the world), "
    "frame_skip (4), max_steps (1000), qpos_noise (0.1), qvel_noise (0), "
    "keep_root_xy (false), observe_position (false), velocity "
    "(planar|x|y|abs_x), velocity_weight (0), "
    "target_site or target_x/target_y, observe_target (false), "
    "distance_weight (0), gaussian_weight (0), gaussian_width (1), "
    "progress_weight (0), ctrl_cost (0), alive_bonus (0), min_height, "
    "max_height (none), goal_radius (0: off), goal_reward (0), finish (0: "
    "off), finish_reward (0)",
    MakeMjcf);

}  // namespace softq
