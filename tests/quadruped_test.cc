// Specification of the quadruped tasks (env/quadruped.h): their specs, seeds,
// walls that stop the body, the hallway's width, the maze layouts, the goal,
// the time limit and each parameter's effect.
#include "env/quadruped.h"

#include <gtest/gtest.h>
#include <mujoco/mujoco.h>

#include <cmath>
#include <deque>
#include <random>
#include <set>
#include <string>
#include <utility>

#include "env/registry.h"

namespace softq {
namespace {

std::unique_ptr<MjcfEnv> Make(const std::string& name,
                              const std::string& config, uint64_t seed = 0) {
  absl::StatusOr<std::unique_ptr<Environment>> env =
      MakeEnvironment(name, config, seed);
  EXPECT_TRUE(env.ok()) << name << " " << config << ": " << env.status();
  if (!env.ok()) return nullptr;
  // Every quadruped task is an MjcfEnv; the tests reach into its simulation.
  auto* mjcf = dynamic_cast<MjcfEnv*>(env->get());
  EXPECT_NE(mjcf, nullptr);
  env->release();
  return std::unique_ptr<MjcfEnv>(mjcf);
}

int Body(const MjcfEnv& env, const char* name) {
  return mj_name2id(env.model(), mjOBJ_BODY, name);
}

std::vector<float> Zero() { return std::vector<float>(8, 0.0f); }

const char* const kTasks[][2] = {
    {"quadruped_speed", ""},
    {"quadruped_hallway", "width=wide"},
    {"quadruped_hallway", "width=narrow"},
    {"quadruped_maze", "layout=u"},
    {"quadruped_maze", "layout=blocked"},
};

TEST(Quadruped, EveryTaskHasTheDocumentedSpec) {
  for (const auto& [name, config] : kTasks) {
    auto env = Make(name, config);
    ASSERT_NE(env, nullptr);
    EXPECT_EQ(env->spec().observation_dim, 29) << name << " " << config;
    EXPECT_EQ(env->spec().action_dim, 8);
    EXPECT_EQ(env->spec().max_episode_steps, 500);
    const std::vector<float> obs = env->Reset();
    ASSERT_EQ(obs.size(), 29u);
    // qpos without x, y first: the torso's height near its 0.75 m start.
    EXPECT_NEAR(obs[0], 0.75, 0.1 + 1e-6);
    // The centre of mass's x, y last.
    EXPECT_FLOAT_EQ(obs[27], env->position()[0]);
    EXPECT_FLOAT_EQ(obs[28], env->position()[1]);
    const std::string sep = *config ? "," : "";
    auto blind = Make(name, config + sep + "observe_xy=false,max_steps=77");
    EXPECT_EQ(blind->spec().observation_dim, 27);  // 13 qpos + 14 qvel
    EXPECT_EQ(blind->spec().max_episode_steps, 77);
  }
}

TEST(Quadruped, IsDeterministicPerSeed) {
  for (const auto& [name, config] : kTasks) {
    auto a = Make(name, config, 3), b = Make(name, config, 3),
         c = Make(name, config, 4);
    const std::vector<float> start = a->Reset();
    EXPECT_EQ(start, b->Reset());
    EXPECT_NE(start, c->Reset());
    std::mt19937 rng(7);
    std::uniform_real_distribution<float> u(-1, 1);
    for (int t = 0; t < 30; ++t) {
      std::vector<float> action(8);
      for (float& x : action) x = u(rng);
      absl::StatusOr<StepResult> ra = a->Step(action), rb = b->Step(action);
      ASSERT_TRUE(ra.ok() && rb.ok());
      EXPECT_EQ(ra->observation, rb->observation);
      EXPECT_EQ(ra->reward, rb->reward);
      if (ra->terminal) break;
    }
  }
}

// Uniform random actions, 300 steps from seeds 0-4: the body moves and stays
// finite, and it rarely tips over (measured with this model: 1 of 20 starts
// flipped within 500 steps; the original ant's gear of 150 flipped 18 of 20,
// after 110 steps on average).
TEST(Quadruped, RandomActionsMoveItWithoutExplodingOrFlipping) {
  int upright = 0;
  for (uint64_t seed = 0; seed < 5; ++seed) {
    MjcfTask task = QuadrupedBaseTask();
    task.min_height = -1e9;  // no termination: see where it ends up
    task.max_height = 1e9;
    auto env = *MakeQuadruped("", task, seed);
    env->Reset();
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> u(-1, 1);
    for (int t = 0; t < 300; ++t) {
      std::vector<float> action(8);
      for (float& x : action) x = u(rng);
      absl::StatusOr<StepResult> r = env->Step(action);
      ASSERT_TRUE(r.ok());
      for (float v : r->observation) ASSERT_TRUE(std::isfinite(v));
      ASSERT_LT(std::abs(r->observation[0]), 2.0);  // height
    }
    const std::array<double, 2> p = env->position();
    EXPECT_GT(std::hypot(p[0], p[1]), 0.1) << "seed " << seed;
    EXPECT_LT(std::hypot(p[0], p[1]), 10.0) << "seed " << seed;
    // The torso's z axis, world z component: > 0 while upright.
    if (env->data()->xmat[9 * Body(*env, "torso") + 8] > 0) ++upright;
  }
  EXPECT_GE(upright, 4);
}

// The quadruped's weight (N).
double Weight(const MjcfEnv& env) {
  return mj_getTotalmass(env.model()) * 9.81;
}

// Pushes the torso horizontally along (dx, dy) with twice the body's weight
// (its feet's friction holds back at most about one weight) for `steps`
// steps; returns the centre of mass.
std::array<double, 2> Push(MjcfEnv& env, double dx, double dy, int steps) {
  const int torso = Body(env, "torso");
  const double force = 2 * Weight(env);
  for (int t = 0; t < steps; ++t) {
    env.data()->xfrc_applied[6 * torso + 0] = force * dx;
    env.data()->xfrc_applied[6 * torso + 1] = force * dy;
    absl::StatusOr<StepResult> r = env.Step(Zero());
    EXPECT_TRUE(r.ok()) << r.status();
    if (!r.ok() || r->terminal || r->truncated) break;
  }
  return env.position();
}

// No termination and a long time limit, so the push runs its course.
const char kEndless[] = "min_height=-1000,max_height=1000,max_steps=100000";

TEST(Quadruped, WallsStopTheBodyWhereTheOpenArenaDoesNot) {
  // Open arena: the push carries it far sideways.
  auto open = Make("quadruped_speed", kEndless);
  open->Reset();
  EXPECT_GT(Push(*open, 0, 1, 200)[1], 5.0);
  // Hallway: the left wall's inner face at y = width / 2.
  for (const auto& [width, face] :
       {std::pair<std::string, double>{"narrow", 1.0}, {"wide", 2.0}}) {
    auto env = Make("quadruped_hallway", "width=" + width + "," + kEndless);
    env->Reset();
    const std::array<double, 2> p = Push(*env, 0, 1, 200);
    EXPECT_LT(p[1], face) << width;        // the centre of mass stays inside
    EXPECT_GT(p[1], face - 1.2) << width;  // pressed against the wall
    // The wall stops sideways motion, not motion along the hallway.
    EXPECT_GT(Push(*env, 1, 0, 100)[0], 3.0) << width;
  }
  // U maze: the wall between the start and the goal row lies south of the
  // start, its face at y = -1.5 (a 3 m cell); the goal is behind it.
  auto maze = Make("quadruped_maze", std::string("layout=u,") + kEndless);
  maze->Reset();
  EXPECT_GT(Push(*maze, 0, -1, 200)[1], -1.5);
}

double WallY(const MjcfEnv& env, const char* name) {
  const int geom = mj_name2id(env.model(), mjOBJ_GEOM, name);
  EXPECT_GE(geom, 0) << name;
  return geom < 0 ? NAN : env.model()->geom_pos[3 * geom + 1];
}

TEST(Quadruped, HallwayWidthSetsTheWalls) {
  // Walls 0.5 m thick: centres half a thickness beyond the inner faces.
  for (const auto& [config, half_width] :
       {std::pair<std::string, double>{"", kWideHallway / 2},
        {"width=wide", kWideHallway / 2},
        {"width=narrow", kNarrowHallway / 2},
        {"width=3.5", 1.75}}) {
    auto env = Make("quadruped_hallway", config);
    ASSERT_NE(env, nullptr);
    EXPECT_DOUBLE_EQ(WallY(*env, "wall_left"), half_width + 0.25) << config;
    EXPECT_DOUBLE_EQ(WallY(*env, "wall_right"), -half_width - 0.25);
  }
  EXPECT_LT(kNarrowHallway, kWideHallway);
  for (const char* bad : {"width=slim", "width=0.5", "width=nan"}) {
    absl::Status status = MakeEnvironment("quadruped_hallway", bad, 0).status();
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_NE(status.message().find(bad), std::string::npos) << status;
  }
}

// Cells reachable from the start, through floor cells, in 4 directions.
std::set<std::pair<int, int>> Reachable(const std::vector<std::string>& rows) {
  std::deque<std::pair<int, int>> queue;
  for (int r = 0; r < static_cast<int>(rows.size()); ++r) {
    const size_t c = rows[r].find('r');
    if (c != std::string::npos) queue.push_back({r, static_cast<int>(c)});
  }
  std::set<std::pair<int, int>> seen(queue.begin(), queue.end());
  while (!queue.empty()) {
    const auto [r, c] = queue.front();
    queue.pop_front();
    for (const auto& [dr, dc] :
         {std::pair<int, int>{1, 0}, {-1, 0}, {0, 1}, {0, -1}}) {
      const int nr = r + dr, nc = c + dc;
      if (nr < 0 || nr >= static_cast<int>(rows.size()) || nc < 0 ||
          nc >= static_cast<int>(rows[nr].size()) || rows[nr][nc] == '#' ||
          !seen.insert({nr, nc}).second) {
        continue;
      }
      queue.push_back({nr, nc});
    }
  }
  return seen;
}

bool ReachesGoal(const std::vector<std::string>& rows) {
  for (const auto& [r, c] : Reachable(rows)) {
    if (rows[r][c] == 'g') return true;
  }
  return false;
}

TEST(Quadruped, MazeLayoutsDiffer) {
  const std::vector<std::string> u = MazeRows(MazeLayout::kU);
  const std::vector<std::string> blocked = MazeRows(MazeLayout::kBlocked);
  EXPECT_NE(u, blocked);
  EXPECT_TRUE(ReachesGoal(u));
  EXPECT_TRUE(ReachesGoal(blocked));
  // U: the goal is 2 cells south of the start, 6 cells along the corridor.
  EXPECT_EQ(MazeGoal(u, kMazeCell), (std::array<double, 2>{0, -6}));
  // Blocked: two passages leave the start toward the goal (row 1 above the
  // block, row 3 below); closing the lower one leaves no way to the goal.
  EXPECT_EQ(MazeGoal(blocked, kMazeCell), (std::array<double, 2>{12, 0}));
  EXPECT_EQ(blocked[1].substr(1, 3), "...");  // the upper passage, open
  EXPECT_EQ(blocked[2].substr(3, 2), "##");   // the block between them
  std::vector<std::string> lower_closed = blocked;
  lower_closed[3][3] = '#';
  EXPECT_FALSE(ReachesGoal(lower_closed));
  std::vector<std::string> upper_closed = blocked;
  upper_closed[1][2] = '#';
  EXPECT_TRUE(ReachesGoal(upper_closed));  // the upper one never mattered
  // The environments hold those walls and the goal site.
  auto env_u = Make("quadruped_maze", "layout=u");
  auto env_b = Make("quadruped_maze", "layout=blocked");
  EXPECT_NE(env_u->model()->ngeom, env_b->model()->ngeom);
  EXPECT_GE(mj_name2id(env_u->model(), mjOBJ_GEOM, "wall_2_2"), 0);
  EXPECT_LT(mj_name2id(env_b->model(), mjOBJ_GEOM, "wall_2_2"), 0);
  EXPECT_GE(mj_name2id(env_b->model(), mjOBJ_GEOM, "wall_1_4"), 0);
  env_u->Reset();
  env_b->Reset();
  EXPECT_EQ(env_u->target(), (std::array<double, 2>{0, -6}));
  EXPECT_EQ(env_b->target(), (std::array<double, 2>{12, 0}));
  absl::Status bad = MakeEnvironment("quadruped_maze", "layout=o", 0).status();
  EXPECT_EQ(bad.code(), absl::StatusCode::kInvalidArgument);
}

// Places the torso at (x, y), keeping its height and orientation.
void Teleport(MjcfEnv& env, double x, double y) {
  env.data()->qpos[0] = x;
  env.data()->qpos[1] = y;
  mj_forward(env.model(), env.data());
}

TEST(Quadruped, MazeGoalPaysItsBonusAndEndsTheEpisode) {
  auto blocked = Make("quadruped_maze", "layout=blocked");
  blocked->Reset();
  absl::StatusOr<StepResult> far = blocked->Step(Zero());
  ASSERT_TRUE(far.ok());
  EXPECT_FALSE(far->terminal);
  EXPECT_LT(far->reward, 1.0f);
  Teleport(*blocked, 12, 0);
  absl::StatusOr<StepResult> there = blocked->Step(Zero());
  ASSERT_TRUE(there.ok());
  EXPECT_TRUE(there->terminal);
  EXPECT_FALSE(there->truncated);
  EXPECT_GT(there->reward, 100.0f);  // 100 + the Gaussian's peak
  EXPECT_LT(there->reward, 102.0f);
  // U: no bonus by default, the Gaussian peaks at the goal.
  auto u = Make("quadruped_maze", "layout=u");
  u->Reset();
  const float start_reward = u->Step(Zero())->reward;
  Teleport(*u, 0, -6);
  absl::StatusOr<StepResult> at_goal = u->Step(Zero());
  ASSERT_TRUE(at_goal.ok());
  EXPECT_FALSE(at_goal->terminal);
  EXPECT_GT(at_goal->reward, 0.9f);
  EXPECT_LT(start_reward, 0.3f);  // exp(-2) + alive at 6 m
  EXPECT_GT(start_reward, 0.1f);
  auto u_bonus = Make("quadruped_maze", "layout=u,goal_reward=5");
  u_bonus->Reset();
  Teleport(*u_bonus, 0, -6);
  absl::StatusOr<StepResult> bonus = u_bonus->Step(Zero());
  EXPECT_TRUE(bonus->terminal);
  EXPECT_NEAR(bonus->reward, at_goal->reward + 5, 0.1);
}

TEST(Quadruped, TimeLimitIsATimeOut) {
  for (const auto& [name, config] : kTasks) {
    const std::string sep = *config ? "," : "";
    auto env = Make(name, config + sep + "max_steps=7");
    env->Reset();
    for (int t = 1; t <= 7; ++t) {
      absl::StatusOr<StepResult> r = env->Step(Zero());
      ASSERT_TRUE(r.ok());
      ASSERT_FALSE(r->terminal) << name << " step " << t;
      EXPECT_EQ(r->truncated, t == 7);
    }
    EXPECT_EQ(env->Step(Zero()).status().code(),
              absl::StatusCode::kFailedPrecondition);
  }
}

// The reward of one step from seed 0's start with `action`.
float FirstReward(const std::string& name, const std::string& config,
                  const std::vector<float>& action) {
  auto env = Make(name, config);
  env->Reset();
  absl::StatusOr<StepResult> r = env->Step(action);
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? r->reward : NAN;
}

TEST(Quadruped, EachParameterHasItsEffect) {
  const std::vector<float> ones(8, 1.0f);
  // ctrl_cost: c ||a||^2 with ||a||^2 = 8.
  EXPECT_NEAR(FirstReward("quadruped_speed", "ctrl_cost=0", ones) -
                  FirstReward("quadruped_speed", "ctrl_cost=0.5", ones),
              4.0, 1e-4);
  EXPECT_NEAR(FirstReward("quadruped_speed", "", ones) -
                  FirstReward("quadruped_speed", "ctrl_cost=0", ones),
              -0.005 * 8, 1e-4);
  // alive_bonus.
  EXPECT_NEAR(FirstReward("quadruped_hallway", "alive_bonus=1", Zero()) -
                  FirstReward("quadruped_hallway", "alive_bonus=0", Zero()),
              1.0, 1e-4);
  // max_height / min_height: a range the start lies outside ends at once.
  auto low = Make("quadruped_speed", "max_height=0.3");
  low->Reset();
  EXPECT_TRUE(low->Step(Zero())->terminal);
  auto high = Make("quadruped_speed", "min_height=2");
  high->Reset();
  EXPECT_TRUE(high->Step(Zero())->terminal);
  // direction: pushed toward -x, forward pays negatively, either positively.
  for (const auto& [direction, sign] :
       {std::pair<std::string, double>{"forward", -1}, {"either", 1}}) {
    auto env = Make("quadruped_hallway", "direction=" + direction);
    env->Reset();
    double ret = 0;
    const int torso = Body(*env, "torso");
    for (int t = 0; t < 20; ++t) {
      env->data()->xfrc_applied[6 * torso] = -2 * Weight(*env);
      absl::StatusOr<StepResult> r = env->Step(Zero());
      ASSERT_TRUE(r.ok()) << r.status();
      ASSERT_FALSE(r->terminal) << direction;
      ret += r->reward;
    }
    EXPECT_GT(sign * (ret - 20 * 0.05), 1.0) << direction;
  }
  // speed task: pays motion in any direction, the hallway only along x.
  {
    auto speed = Make("quadruped_speed", "");
    auto hallway = Make("quadruped_hallway", "width=wide");
    speed->Reset();
    hallway->Reset();
    double speed_ret = 0, hallway_ret = 0;
    for (int t = 0; t < 10; ++t) {
      for (MjcfEnv* env : {speed.get(), hallway.get()}) {
        env->data()->xfrc_applied[6 * Body(*env, "torso") + 1] =
            2 * Weight(*env);  // +y
      }
      absl::StatusOr<StepResult> rs = speed->Step(Zero()),
                                 rh = hallway->Step(Zero());
      ASSERT_TRUE(rs.ok() && rh.ok());
      ASSERT_FALSE(rs->terminal || rh->terminal);
      speed_ret += rs->reward;
      hallway_ret += rh->reward;
    }
    EXPECT_GT(speed_ret, hallway_ret + 5);
  }
  // gaussian_width and gaussian_weight: at the U maze's start, 6 m away.
  const float narrow =
      FirstReward("quadruped_maze", "gaussian_width=1", Zero());
  const float wide = FirstReward("quadruped_maze", "gaussian_width=6", Zero());
  EXPECT_NEAR(narrow, 0.05, 0.01);  // exp(-18) ~ 0, the alive bonus
  EXPECT_NEAR(wide, 0.05 + std::exp(-0.5), 0.05);
  EXPECT_NEAR(FirstReward("quadruped_maze",
                          "gaussian_weight=3,gaussian_width=6", Zero()) -
                  wide,
              2 * std::exp(-0.5), 0.1);
  // goal_radius: the U maze's start lies 6 m from its goal, inside a 7 m
  // radius and outside a 5 m one.
  auto reached = Make("quadruped_maze", "goal_reward=1,goal_radius=7");
  reached->Reset();
  EXPECT_TRUE(reached->Step(Zero())->terminal);
  auto not_reached = Make("quadruped_maze", "goal_reward=1,goal_radius=5");
  not_reached->Reset();
  EXPECT_FALSE(not_reached->Step(Zero())->terminal);
}

TEST(Quadruped, BadParametersAreOneLineErrorsNamingThem) {
  for (const auto& [name, config] :
       std::vector<std::pair<const char*, const char*>>{
           {"quadruped_speed", "ctrl_cost=x"},
           {"quadruped_speed", "observe_xy=maybe"},
           {"quadruped_hallway", "direction=up"},
           {"quadruped_maze", "gaussian_width=0"},
           {"quadruped_maze", "width=3"},  // the hallway's key
       }) {
    absl::Status status = MakeEnvironment(name, config, 0).status();
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << config;
    const std::string key =
        std::string(config).substr(0, std::string(config).find('='));
    EXPECT_NE(status.message().find(key), std::string::npos) << status;
  }
}

}  // namespace
}  // namespace softq
