// Specification of the generic MuJoCo environment (env/mjcf_env.h) on a tiny
// model written here to a temporary file, through MjcfEnv and through the
// registry (--env=mjcf), and of the swimmer tasks built on it
// (swimmer_explore; swimmer_speed and swimmer_target: tests/swimmer_test.cc).
#include "env/mjcf_env.h"

#include <gtest/gtest.h>
#include <mujoco/mujoco.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <utility>

#include "env/registry.h"
#include "env/swimmer.h"

namespace softq {
namespace {

// A puck on three slide joints (x, y: the planar root; z: a lift) carrying a
// spinning arm, no gravity, pushed by three motors with different control
// ranges. A site "beacon" at (2, 0). Observation by default: z, spin, 4
// velocities.
constexpr char kPuck[] = R"XML(
<mujoco model="puck">
  <option timestep="0.01" gravity="0 0 0"/>
  <worldbody>
    <site name="beacon" pos="2 0 0" size="0.05"/>
    <body name="puck" pos="0 0 0.5">
      <joint name="x" type="slide" axis="1 0 0" damping="1"/>
      <joint name="y" type="slide" axis="0 1 0" damping="1"/>
      <joint name="z" type="slide" axis="0 0 1" damping="1"/>
      <geom type="sphere" size="0.1" mass="1" contype="0" conaffinity="0"/>
      <body name="arm">
        <joint name="spin" type="hinge" axis="0 0 1"/>
        <geom type="capsule" fromto="0 0 0 0.3 0 0" size="0.02" mass="0.1"
              contype="0" conaffinity="0"/>
      </body>
    </body>
  </worldbody>
  <actuator>
    <motor name="push_x" joint="x" ctrllimited="true" ctrlrange="-2 2"/>
    <motor name="push_y" joint="y" ctrllimited="true" ctrlrange="-1 1"/>
    <motor name="lift" joint="z" ctrllimited="true" ctrlrange="0 4"/>
  </actuator>
</mujoco>
)XML";

std::string TmpDir() {
  const char* dir = std::getenv("TEST_TMPDIR");
  return dir ? dir : "/tmp";
}

std::string WriteFile(const std::string& name, const std::string& text) {
  const std::string path = TmpDir() + "/" + name;
  std::ofstream(path) << text;
  return path;
}

std::string PuckPath() {
  static const std::string path = WriteFile("puck.xml", kPuck);
  return path;
}

std::unique_ptr<MjcfEnv> Make(const MjcfTask& task, uint64_t seed = 0) {
  absl::StatusOr<std::unique_ptr<MjcfEnv>> env =
      MjcfEnv::FromFile(PuckPath(), task, seed);
  EXPECT_TRUE(env.ok()) << env.status();
  return env.ok() ? *std::move(env) : nullptr;
}

MjcfTask Quiet() {  // no reward term, no noise
  MjcfTask task;
  task.body = "puck";
  task.qpos_noise = 0;
  return task;
}

// Push along +x (or -x), nothing else: the lift at -1 is no force.
const std::vector<float> kPushX = {1, 0, -1};
const std::vector<float> kPullX = {-1, 0, -1};

double Dt(const MjcfTask& task) { return task.frame_skip * 0.01; }

TEST(MjcfEnv, SpecCountsTheObservationParts) {
  MjcfTask task = Quiet();
  auto env = Make(task);
  EXPECT_EQ(env->spec().observation_dim, 6);  // z, spin; 4 velocities
  EXPECT_EQ(env->spec().action_dim, 3);
  EXPECT_EQ(env->spec().max_episode_steps, 1000);
  EXPECT_EQ(env->Reset().size(), 6u);
  task.keep_root_xy = true;
  EXPECT_EQ(Make(task)->spec().observation_dim, 8);
  task.observe_position = true;
  task.observe_target = true;
  task.target_site = "beacon";
  auto with_target = Make(task);
  EXPECT_EQ(with_target->spec().observation_dim, 12);
  const std::vector<float> obs = with_target->Reset();
  ASSERT_EQ(obs.size(), 12u);
  const std::array<double, 2> p = with_target->position();
  EXPECT_FLOAT_EQ(obs[8], p[0]);  // the centre of mass
  EXPECT_FLOAT_EQ(obs[9], p[1]);
  EXPECT_NEAR(obs[10], 2 - p[0], 1e-6);  // the beacon minus the centre of mass
  EXPECT_NEAR(obs[11], 0 - p[1], 1e-6);
  // keep_root_xy puts x and y first, as qpos holds them.
  absl::StatusOr<StepResult> r = with_target->Step(kPushX);
  ASSERT_TRUE(r.ok());
  EXPECT_NEAR(r->observation[0], with_target->data()->qpos[0], 1e-6);
  EXPECT_GT(r->observation[0], 0);
}

TEST(MjcfEnv, IsDeterministicPerSeed) {
  MjcfTask task = Quiet();
  task.qpos_noise = 0.1;
  task.qvel_noise = 0.1;
  task.velocity_weight = 1;
  auto a = Make(task, 3), b = Make(task, 3), c = Make(task, 4);
  const std::vector<float> start = a->Reset();
  EXPECT_EQ(start, b->Reset());
  EXPECT_NE(start, c->Reset());
  for (int t = 0; t < 20; ++t) {
    const std::vector<float> action = {std::sin(0.3f * t), 0.5f, -0.2f};
    absl::StatusOr<StepResult> ra = a->Step(action), rb = b->Step(action);
    ASSERT_TRUE(ra.ok() && rb.ok());
    EXPECT_EQ(ra->observation, rb->observation);
    EXPECT_EQ(ra->reward, rb->reward);
  }
  c->Seed(3);  // reseeded: the same start as a fresh seed-3 environment
  EXPECT_EQ(c->Reset(), start);
}

TEST(MjcfEnv, ResetStartsAnEpisodeAndStepAfterItsEndFails) {
  MjcfTask task = Quiet();
  task.qpos_noise = 0.05;
  task.max_steps = 5;
  auto env = Make(task);
  env->Reset();
  for (int t = 1; t <= 5; ++t) {
    absl::StatusOr<StepResult> r = env->Step(kPushX);
    ASSERT_TRUE(r.ok());
    EXPECT_FALSE(r->terminal);
    EXPECT_EQ(r->truncated, t == 5);  // the time limit: a time-out
  }
  EXPECT_EQ(env->Step(kPushX).status().code(),
            absl::StatusCode::kFailedPrecondition);
  const std::vector<float> obs = env->Reset();
  EXPECT_LE(std::abs(obs[0]), 0.05f + 1e-6f);           // z: qpos0 (0) + noise
  for (int i = 2; i < 6; ++i) EXPECT_EQ(obs[i], 0.0f);  // at rest
  EXPECT_TRUE(env->Step(kPushX).ok());
}

TEST(MjcfEnv, RejectsNonFiniteActionsNamingThemAndClipsOutOfRange) {
  auto a = Make(Quiet()), b = Make(Quiet());
  a->Reset();
  b->Reset();
  absl::Status nan = a->Step({0, NAN, 0}).status();
  EXPECT_EQ(nan.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(nan.message().find("action[1]"), std::string::npos) << nan;
  absl::Status inf = a->Step({0, 0, -INFINITY}).status();
  EXPECT_NE(inf.message().find("action[2]"), std::string::npos) << inf;
  EXPECT_EQ(a->Step({0, 0}).status().code(),
            absl::StatusCode::kInvalidArgument);
  absl::StatusOr<StepResult> clipped = a->Step({5, -7, 3});
  absl::StatusOr<StepResult> bounded = b->Step({1, -1, 1});
  ASSERT_TRUE(clipped.ok() && bounded.ok());
  EXPECT_EQ(clipped->observation, bounded->observation);
}

TEST(MjcfEnv, ActionsAreRescaledOntoEachActuatorsControlRange) {
  auto env = Make(Quiet());
  env->Reset();
  ASSERT_TRUE(env->Step({0.5f, -0.5f, -1}).ok());
  EXPECT_DOUBLE_EQ(env->data()->ctrl[0], 1.0);   // [-2, 2]
  EXPECT_DOUBLE_EQ(env->data()->ctrl[1], -0.5);  // [-1, 1]
  EXPECT_DOUBLE_EQ(env->data()->ctrl[2], 0.0);   // [0, 4]
  ASSERT_TRUE(env->Step({0, 0, 0.5f}).ok());
  EXPECT_DOUBLE_EQ(env->data()->ctrl[2], 3.0);
}

// One step's reward next to the centre of mass's displacement in it.
struct Moved {
  float reward;
  double dx, dy;
};
Moved StepAndMeasure(MjcfEnv& env, const std::vector<float>& action) {
  const std::array<double, 2> before = env.position();
  absl::StatusOr<StepResult> r = env.Step(action);
  EXPECT_TRUE(r.ok()) << r.status();
  const std::array<double, 2> after = env.position();
  return {r.ok() ? r->reward : NAN, after[0] - before[0], after[1] - before[1]};
}

TEST(MjcfEnv, VelocityTermIsTheCentreOfMassDisplacementPerSecond) {
  for (MjcfTask::Velocity axis :
       {MjcfTask::Velocity::kX, MjcfTask::Velocity::kY,
        MjcfTask::Velocity::kAbsX, MjcfTask::Velocity::kPlanar}) {
    MjcfTask task = Quiet();
    task.velocity_weight = 2;
    task.velocity = axis;
    auto forward = Make(task), backward = Make(task);
    forward->Reset();
    backward->Reset();
    for (int t = 0; t < 10; ++t) {
      const Moved f = StepAndMeasure(*forward, {1, 0.5f, -1});
      const Moved b = StepAndMeasure(*backward, {-1, 0.5f, -1});
      ASSERT_GT(f.dx, 0);
      ASSERT_LT(b.dx, 0);
      ASSERT_GT(f.dy, 0);
      switch (axis) {
        case MjcfTask::Velocity::kX:  // signed: backward is paid negatively
          EXPECT_NEAR(f.reward, 2 * f.dx / Dt(task), 1e-4);
          EXPECT_NEAR(b.reward, 2 * b.dx / Dt(task), 1e-4);
          EXPECT_LT(b.reward, 0);
          break;
        case MjcfTask::Velocity::kY:
          EXPECT_NEAR(f.reward, 2 * f.dy / Dt(task), 1e-4);
          break;
        case MjcfTask::Velocity::kAbsX:  // either direction pays
          EXPECT_NEAR(b.reward, 2 * -b.dx / Dt(task), 1e-4);
          EXPECT_GT(b.reward, 0);
          break;
        case MjcfTask::Velocity::kPlanar:
          EXPECT_NEAR(f.reward, 2 * std::hypot(f.dx, f.dy) / Dt(task), 1e-4);
          EXPECT_GT(f.reward, 2 * f.dx / Dt(task));
          break;
      }
    }
  }
}

TEST(MjcfEnv, DistanceTermsMeasureTheWayToTheTarget) {
  MjcfTask distance = Quiet(), gaussian = Quiet(), progress = Quiet();
  distance.target_site = "beacon";  // (2, 0)
  distance.distance_weight = 1;
  gaussian.target_point = std::array<double, 2>{2, 0};
  gaussian.gaussian_weight = 3;
  gaussian.gaussian_width = 0.5;
  progress.target_site = "beacon";
  progress.progress_weight = 1;
  auto d = Make(distance), g = Make(gaussian), p = Make(progress);
  auto away = Make(progress);
  for (MjcfEnv* env : {d.get(), g.get(), p.get(), away.get()}) env->Reset();
  // The centre of mass (puck and arm) starts a little east of the origin.
  const double start = std::hypot(p->position()[0] - 2, p->position()[1]);
  double last_d = -1e9, last_g = -1, total_progress = 0;
  for (int t = 0; t < 20; ++t) {
    const float rd = StepAndMeasure(*d, kPushX).reward;
    const double dist = std::hypot(d->position()[0] - 2, d->position()[1]);
    EXPECT_NEAR(rd, -dist, 1e-5);  // negative distance, rising on approach
    EXPECT_GT(rd, last_d);
    last_d = rd;
    const float rg = StepAndMeasure(*g, kPushX).reward;
    EXPECT_NEAR(rg, 3 * std::exp(-dist * dist / (2 * 0.25)), 1e-5);
    EXPECT_GT(rg, last_g);
    last_g = rg;
    const Moved mp = StepAndMeasure(*p, kPushX);
    EXPECT_NEAR(mp.reward, mp.dx / Dt(progress), 1e-4);  // toward, along x
    EXPECT_GT(mp.reward, 0);
    total_progress += mp.reward * Dt(progress);
    EXPECT_LT(StepAndMeasure(*away, kPullX).reward, 0);  // away: negative
  }
  // Progress per second telescopes to the distance covered.
  EXPECT_NEAR(total_progress,
              start - std::hypot(p->position()[0] - 2, p->position()[1]), 1e-4);
}

TEST(MjcfEnv, ControlCostAndAliveBonus) {
  MjcfTask task = Quiet();
  task.ctrl_cost = 0.5;
  auto env = Make(task);
  env->Reset();
  // ||a||^2 of the clipped action in [-1, 1], not of the rescaled control.
  EXPECT_NEAR(env->Step({1, -0.5f, -1})->reward, -0.5 * 2.25, 1e-6);
  EXPECT_NEAR(env->Step({3, 0, 0})->reward, -0.5, 1e-6);
  task.alive_bonus = 0.25;
  auto alive = Make(task);
  alive->Reset();
  EXPECT_NEAR(alive->Step({0, 0, 0})->reward, 0.25, 1e-6);
  EXPECT_NEAR(alive->Step({1, 0, 0})->reward, 0.25 - 0.5, 1e-6);
}

TEST(MjcfEnv, LeavingTheHeightRangeIsTerminalWithoutTheAliveBonus) {
  MjcfTask task = Quiet();
  task.min_height = 0.4;
  task.max_height = 0.7;
  task.alive_bonus = 1;
  auto env = Make(task);
  env->Reset();
  EXPECT_NEAR(env->height(), 0.5, 1e-9);
  int steps = 0;
  for (;; ++steps) {
    absl::StatusOr<StepResult> r = env->Step({0, 0, 1});  // lift
    ASSERT_TRUE(r.ok());
    if (r->terminal) {
      EXPECT_FALSE(r->truncated);
      EXPECT_GT(env->height(), 0.7);
      EXPECT_EQ(r->reward, 0.0f);
      break;
    }
    EXPECT_EQ(r->reward, 1.0f);
    ASSERT_LT(steps, 100) << "never left the height range";
  }
  EXPECT_GT(steps, 0);
  // Without the lift it stays in range: the time limit ends it.
  task.max_steps = 50;
  auto resting = Make(task);
  resting->Reset();
  for (int t = 1; t <= 50; ++t) {
    absl::StatusOr<StepResult> r = resting->Step({0, 0, -1});
    ASSERT_TRUE(r.ok());
    EXPECT_FALSE(r->terminal);
    EXPECT_EQ(r->truncated, t == 50);
  }
}

TEST(MjcfEnv, GoalBonusEndsTheEpisodeWithinTheRadius) {
  MjcfTask task = Quiet();
  task.target_site = "beacon";
  task.goal_radius = 0.5;
  task.goal_reward = 7;
  auto env = Make(task);
  env->Reset();
  for (int t = 0;; ++t) {
    absl::StatusOr<StepResult> r = env->Step(kPushX);
    ASSERT_TRUE(r.ok());
    const double dist = std::hypot(env->position()[0] - 2, 0);
    EXPECT_EQ(r->terminal, dist < 0.5);
    if (r->terminal) {
      EXPECT_EQ(r->reward, 7.0f);
      EXPECT_FALSE(r->truncated);
      break;
    }
    EXPECT_EQ(r->reward, 0.0f);
    ASSERT_LT(t, 200) << "never reached the beacon";
  }
}

TEST(MjcfEnv, FinishLineOnEitherSideEndsTheEpisodeWithItsBonus) {
  for (const std::vector<float>& action : {kPushX, kPullX}) {
    MjcfTask task = Quiet();
    task.finish = 1.0;
    task.finish_reward = 3;
    auto env = Make(task);
    env->Reset();
    for (int t = 0;; ++t) {
      absl::StatusOr<StepResult> r = env->Step(action);
      ASSERT_TRUE(r.ok());
      EXPECT_EQ(r->terminal, std::abs(env->position()[0]) >= 1.0);
      if (r->terminal) {
        EXPECT_EQ(r->reward, 3.0f);
        break;
      }
      ASSERT_LT(t, 200) << "never crossed the line";
    }
  }
}

void ExpectInvalid(const absl::Status& status,
                   std::initializer_list<std::string> named) {
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  const std::string message(status.message());
  EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  for (const std::string& part : named) {
    EXPECT_NE(message.find(part), std::string::npos)
        << "'" << message << "' does not name '" << part << "'";
  }
}

TEST(MjcfEnv, BadModelsAndTasksAreOneLineErrorsNamingTheCulprit) {
  const std::string missing = TmpDir() + "/no_such_robot.xml";
  ExpectInvalid(MjcfEnv::FromFile(missing, Quiet(), 0).status(), {missing});
  const std::string broken = WriteFile("broken.xml", "<mujoco><worldbody>");
  absl::Status parse = MjcfEnv::FromFile(broken, Quiet(), 0).status();
  ExpectInvalid(parse, {broken, "does not load"});
  EXPECT_GT(parse.message().size(),
            std::string("MJCF model  does not load: ").size() + broken.size())
      << "MuJoCo's message is missing: " << parse;
  MjcfTask task = Quiet();
  task.body = "torso";
  ExpectInvalid(MjcfEnv::FromFile(PuckPath(), task, 0).status(),
                {"torso", PuckPath()});
  task = Quiet();
  task.target_site = "lighthouse";
  ExpectInvalid(MjcfEnv::FromFile(PuckPath(), task, 0).status(),
                {"lighthouse"});
  task = Quiet();
  task.gaussian_weight = 1;  // and no target
  ExpectInvalid(MjcfEnv::FromFile(PuckPath(), task, 0).status(), {"target"});
  std::string unlimited = kPuck;
  unlimited.replace(unlimited.find("ctrllimited=\"true\" ctrlrange=\"-1 1\""),
                    35, "");
  ExpectInvalid(
      MjcfEnv::FromXml(unlimited, "unlimited.xml", Quiet(), 0).status(),
      {"push_y", "control range", "unlimited.xml"});
  ExpectInvalid(
      MjcfEnv::FromXml("<mujoco><worldbody><body><joint type='slide'/><geom "
                       "size='1'/></body></worldbody></mujoco>",
                       "still.xml", MjcfTask(), 0)
          .status(),
      {"no actuators", "still.xml"});
}

TEST(MjcfEnv, RegisteredAsMjcfWithAKeyPerTerm) {
  const std::string model = "model=" + PuckPath();
  absl::StatusOr<std::unique_ptr<Environment>> env = MakeEnvironment(
      "mjcf",
      model +
          ",body=puck,velocity=x,velocity_weight=2,ctrl_cost=0.5,alive_bonus="
          "0.25,max_steps=9,frame_skip=2,qpos_noise=0,keep_root_xy=true,"
          "target_site=beacon,observe_target=true,observe_position=true",
      0);
  ASSERT_TRUE(env.ok()) << env.status();
  EXPECT_EQ((*env)->spec().observation_dim, 12);
  EXPECT_EQ((*env)->spec().max_episode_steps, 9);
  // The same task built directly gives the same rewards.
  MjcfTask task = Quiet();
  task.velocity = MjcfTask::Velocity::kX;
  task.velocity_weight = 2;
  task.ctrl_cost = 0.5;
  task.alive_bonus = 0.25;
  task.max_steps = 9;
  task.frame_skip = 2;
  task.keep_root_xy = true;
  task.target_site = "beacon";
  task.observe_target = true;
  task.observe_position = true;
  auto direct = Make(task);
  EXPECT_EQ((*env)->Reset(), direct->Reset());
  for (int t = 0; t < 9; ++t) {
    absl::StatusOr<StepResult> a = (*env)->Step(kPushX),
                               b = direct->Step(kPushX);
    ASSERT_TRUE(a.ok() && b.ok());
    EXPECT_EQ(a->reward, b->reward);
    EXPECT_EQ(a->observation, b->observation);
    EXPECT_EQ(a->truncated, t == 8);
  }
  // Every other key is read too (an unread key would be an error).
  EXPECT_TRUE(MakeEnvironment(
                  "mjcf",
                  model +
                      ",qvel_noise=0.1,target_x=1,target_y=2,distance_weight="
                      "1,gaussian_weight=1,gaussian_width=2,progress_weight="
                      "1,min_height=-5,max_height=5,goal_radius=0.1,goal_"
                      "reward=1,finish=10,finish_reward=1",
                  0)
                  .ok());
}

TEST(MjcfEnv, RegistryErrorsNameTheKey) {
  ExpectInvalid(MakeEnvironment("mjcf", "", 0).status(), {"model="});
  ExpectInvalid(MakeEnvironment("mjcf", "body=puck", 0).status(), {"model="});
  const std::string model = "model=" + PuckPath();
  ExpectInvalid(MakeEnvironment("mjcf", model + ",body=wheel", 0).status(),
                {"wheel"});
  ExpectInvalid(MakeEnvironment("mjcf", model + ",velocity=up", 0).status(),
                {"velocity=up"});
  ExpectInvalid(MakeEnvironment("mjcf", model + ",ctrl_cost=lots", 0).status(),
                {"ctrl_cost=lots"});
  ExpectInvalid(
      MakeEnvironment("mjcf", model + ",velocty_weight=1", 0).status(),
      {"velocty_weight"});
  ExpectInvalid(
      MakeEnvironment("mjcf", "model=/nonexistent/robot.xml", 0).status(),
      {"/nonexistent/robot.xml"});
  ExpectInvalid(
      MakeEnvironment("mjcf", model + ",gaussian_weight=1", 0).status(),
      {"target"});
}

// swimmer_explore: |v_x| either way, the finish line on both sides.
std::vector<float> Wave(int t, double lag) {  // lag < 0 swims -x
  return {static_cast<float>(std::sin(0.1 * t)),
          static_cast<float>(std::sin(0.1 * t - lag))};
}

TEST(SwimmerExplore, PaysSpeedAlongXInEitherDirectionAndEndsAtTheFinish) {
  absl::StatusOr<std::unique_ptr<Environment>> made =
      MakeEnvironment("swimmer_explore", "", 0);
  ASSERT_TRUE(made.ok()) << made.status();
  EXPECT_EQ((*made)->spec().observation_dim, 10);
  EXPECT_EQ((*made)->spec().action_dim, 2);
  EXPECT_EQ((*made)->spec().max_episode_steps, 500);
  // Each way a start it gets over the line from (measured: the forward wave
  // reaches |x| 1.02-1.46 m from seeds 0-4, the reversed one veers toward -y
  // and reaches 0.83-1.30).
  for (auto [lag, seed] : {std::pair<double, int>{0.5, 2}, {-0.5, 1}}) {
    {
      // Far finish: every step pays |v_x| >= 0 less the small control cost.
      auto far = *SwimmerEnv::Create(SwimmerEnv::Task::kExplore, seed, 300,
                                     {3, 3}, /*finish=*/1000, 10);
      far->Reset();
      double ret = 0;
      for (int t = 0; t < 300; ++t) {
        const std::array<double, 2> before = far->position();
        const float r = far->Step(Wave(t, lag))->reward;
        const double dx = far->position()[0] - before[0];
        EXPECT_NEAR(
            r,
            std::abs(dx) / 0.04 - 1e-4 * (Wave(t, lag)[0] * Wave(t, lag)[0] +
                                          Wave(t, lag)[1] * Wave(t, lag)[1]),
            1e-4);
        ret += r;
      }
      EXPECT_EQ(far->position()[0] > 0, lag > 0);
      EXPECT_GT(ret, 10);
      // The default finish (1 m): crossed within 300 steps, +10, terminal.
      absl::StatusOr<std::unique_ptr<Environment>> env =
          MakeEnvironment("swimmer_explore", "", seed);
      ASSERT_TRUE(env.ok());
      (*env)->Reset();
      bool finished = false;
      for (int t = 0; t < 300 && !finished; ++t) {
        absl::StatusOr<StepResult> r = (*env)->Step(Wave(t, lag));
        ASSERT_TRUE(r.ok());
        finished = r->terminal;
        if (finished) {
          EXPECT_GT(r->reward, 10.0f);
        }
      }
      EXPECT_TRUE(finished) << "lag " << lag << " seed " << seed;
    }
  }
  // A swimmer at rest neither earns nor finishes.
  auto still = *SwimmerEnv::Create(SwimmerEnv::Task::kExplore, 0, 300);
  still->Reset();
  double ret = 0;
  for (int t = 0; t < 300; ++t) {
    absl::StatusOr<StepResult> r = still->Step({0, 0});
    ASSERT_TRUE(r.ok());
    EXPECT_FALSE(r->terminal);
    ret += r->reward;
  }
  EXPECT_LT(ret, 1.0);
  ExpectInvalid(MakeEnvironment("swimmer_explore", "finish=0", 0).status(),
                {"finish=0"});
}

}  // namespace
}  // namespace softq
