#include "env/quadruped.h"

#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "env/registry.h"

extern const char
    kQuadrupedXml[];  // env/models/quadruped.xml, embedded by a genrule

namespace softq {
namespace {

// Walls collide with every body geom (contype 1 there; geoms of the world
// never collide with each other). They are smooth: their priority makes their
// friction (0.1) the contact's, so a body pressed against one slides down it
// instead of climbing it on the legs' friction of 1.
std::string WallBox(absl::string_view name, double x, double y, double half_x,
                    double half_y) {
  return absl::StrCat("<geom name=\"", name,
                      "\" type=\"box\" contype=\"1\" conaffinity=\"1\" "
                      "condim=\"3\" priority=\"1\" friction=\"0.1 0.005 "
                      "0.0001\" rgba=\"0.45 0.4 0.35 1\" pos=\"",
                      x, " ", y, " ", kWallHeight / 2, "\" size=\"", half_x,
                      " ", half_y, " ", kWallHeight / 2, "\"/>\n");
}

// The cell (row, column) of `mark` in `rows`; {-1, -1} if absent.
std::array<int, 2> Find(const std::vector<std::string>& rows, char mark) {
  for (int r = 0; r < static_cast<int>(rows.size()); ++r) {
    const size_t c = rows[r].find(mark);
    if (c != std::string::npos) return {r, static_cast<int>(c)};
  }
  return {-1, -1};
}

}  // namespace

std::vector<std::string> MazeRows(MazeLayout layout) {
  switch (layout) {
    case MazeLayout::kU:
      return {
          "#####",  //
          "#r..#",  //
          "###.#",  //
          "#g..#",  //
          "#####",
      };
    case MazeLayout::kBlocked:
      return {
          "#######",  // the upper passage (row 1) ends at the wall in
          "#...#.#",  // column 4; the lower one (row 3) runs on to below
          "#r.##g#",  // the goal
          "#.....#",  //
          "#######",
      };
  }
  return {};
}

std::string QuadrupedXml(absl::string_view arena) {
  std::string xml = kQuadrupedXml;
  const size_t end = xml.rfind("</worldbody>");  // the last: not a comment
  xml.insert(end, std::string(arena));
  return xml;
}

std::string HallwayArena(double width) {
  const double thickness = 0.5, half_length = 100;
  const double y = width / 2 + thickness / 2;
  return WallBox("wall_left", 0, y, half_length, thickness / 2) +
         WallBox("wall_right", 0, -y, half_length, thickness / 2);
}

std::array<double, 2> MazeGoal(const std::vector<std::string>& rows,
                               double cell) {
  const std::array<int, 2> start = Find(rows, 'r'), goal = Find(rows, 'g');
  return {(goal[1] - start[1]) * cell, (start[0] - goal[0]) * cell};
}

std::string MazeArena(const std::vector<std::string>& rows, double cell) {
  const std::array<int, 2> start = Find(rows, 'r');
  std::string arena;
  for (int r = 0; r < static_cast<int>(rows.size()); ++r) {
    for (int c = 0; c < static_cast<int>(rows[r].size()); ++c) {
      if (rows[r][c] != '#') continue;
      absl::StrAppend(
          &arena,
          WallBox(absl::StrCat("wall_", r, "_", c), (c - start[1]) * cell,
                  (start[0] - r) * cell, cell / 2, cell / 2));
    }
  }
  const std::array<double, 2> goal = MazeGoal(rows, cell);
  absl::StrAppend(&arena, "<site name=\"goal\" type=\"sphere\" size=\"0.3\" ",
                  "rgba=\"0.2 0.8 0.2 1\" pos=\"", goal[0], " ", goal[1],
                  " 0.3\"/>\n");
  return arena;
}

MjcfTask QuadrupedBaseTask() {
  MjcfTask task;
  task.body = "torso";
  task.frame_skip = 5;
  task.max_steps = 500;
  task.qpos_noise = 0.1;
  task.qvel_noise = 0.1;
  task.observe_position = true;
  task.ctrl_cost = 0.005;
  task.alive_bonus = 0.05;
  task.min_height = 0.2;
  task.max_height = 1.0;
  return task;
}

absl::StatusOr<std::unique_ptr<MjcfEnv>> MakeQuadruped(absl::string_view arena,
                                                       const MjcfTask& task,
                                                       uint64_t seed) {
  return MjcfEnv::FromXml(QuadrupedXml(arena), "quadruped.xml", task, seed);
}

namespace {

// The keys every quadruped task takes, onto QuadrupedBaseTask().
absl::StatusOr<MjcfTask> CommonTask(EnvConfig& config) {
  MjcfTask task = QuadrupedBaseTask();
  absl::StatusOr<int> max_steps =
      config.Int("max_steps", task.max_steps, 1, 100000000);
  if (!max_steps.ok()) return max_steps.status();
  task.max_steps = *max_steps;
  absl::StatusOr<bool> observe_xy = config.Bool("observe_xy", true);
  if (!observe_xy.ok()) return observe_xy.status();
  task.observe_position = *observe_xy;
  struct Key {
    const char* name;
    double* field;
  };
  for (const Key& key : {Key{"ctrl_cost", &task.ctrl_cost},
                         Key{"alive_bonus", &task.alive_bonus},
                         Key{"min_height", &task.min_height},
                         Key{"max_height", &task.max_height}}) {
    absl::StatusOr<double> value = config.Double(key.name, *key.field);
    if (!value.ok()) return value.status();
    *key.field = *value;
  }
  return task;
}

absl::StatusOr<std::unique_ptr<Environment>> Finish(
    absl::StatusOr<std::unique_ptr<MjcfEnv>> env) {
  if (!env.ok()) return env.status();
  return std::unique_ptr<Environment>(std::move(*env));
}

absl::StatusOr<std::unique_ptr<Environment>> MakeSpeed(EnvConfig& config,
                                                       uint64_t seed) {
  absl::StatusOr<MjcfTask> task = CommonTask(config);
  if (!task.ok()) return task.status();
  task->velocity_weight = 1;
  task->velocity = MjcfTask::Velocity::kPlanar;
  return Finish(MakeQuadruped("", *task, seed));
}

absl::StatusOr<std::unique_ptr<Environment>> MakeHallway(EnvConfig& config,
                                                         uint64_t seed) {
  absl::StatusOr<MjcfTask> task = CommonTask(config);
  if (!task.ok()) return task.status();
  const std::string width_text = config.String("width", "wide");
  double width = 0;
  if (width_text == "wide") {
    width = kWideHallway;
  } else if (width_text == "narrow") {
    width = kNarrowHallway;
  } else if (!absl::SimpleAtod(width_text, &width) || !(width >= 1.0) ||
             !(width <= 50.0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--env_config: width=", width_text,
                     ": not wide, narrow or metres in [1, 50]"));
  }
  absl::StatusOr<std::string> direction =
      config.Choice("direction", {"forward", "either"});
  if (!direction.ok()) return direction.status();
  task->velocity_weight = 1;
  task->velocity = *direction == "forward" ? MjcfTask::Velocity::kX
                                           : MjcfTask::Velocity::kAbsX;
  return Finish(MakeQuadruped(HallwayArena(width), *task, seed));
}

absl::StatusOr<std::unique_ptr<Environment>> MakeMaze(EnvConfig& config,
                                                      uint64_t seed) {
  absl::StatusOr<MjcfTask> task = CommonTask(config);
  if (!task.ok()) return task.status();
  absl::StatusOr<std::string> layout =
      config.Choice("layout", {"u", "blocked"});
  if (!layout.ok()) return layout.status();
  const bool blocked = *layout == "blocked";
  absl::StatusOr<double> width =
      config.Double("gaussian_width", kMazeCell, 0.01, 1000);
  if (!width.ok()) return width.status();
  absl::StatusOr<double> weight =
      config.Double("gaussian_weight", 1.0, -1e6, 1e6);
  if (!weight.ok()) return weight.status();
  absl::StatusOr<double> goal_reward =
      config.Double("goal_reward", blocked ? 100.0 : 0.0, -1e6, 1e6);
  if (!goal_reward.ok()) return goal_reward.status();
  absl::StatusOr<double> goal_radius =
      config.Double("goal_radius", 1.0, 0.01, 100);
  if (!goal_radius.ok()) return goal_radius.status();
  task->target_site = "goal";
  task->gaussian_weight = *weight;
  task->gaussian_width = *width;
  task->goal_reward = *goal_reward;
  task->goal_radius = *goal_reward != 0 ? *goal_radius : 0;
  const std::vector<std::string> rows =
      MazeRows(blocked ? MazeLayout::kBlocked : MazeLayout::kU);
  return Finish(MakeQuadruped(MazeArena(rows, kMazeCell), *task, seed));
}

}  // namespace

SOFTQ_REGISTER_ENVIRONMENT(
    "quadruped_speed",
    "MuJoCo quadruped (ant), empty arena, reward = planar speed of the centre "
    "of mass + 0.05 alive - 0.005||a||^2, terminal if the torso leaves "
    "[0.2, 1] m (obs 29, act 8); keys: max_steps (500), ctrl_cost (0.005), "
    "alive_bonus (0.05), min_height (0.2), max_height (1), observe_xy (true)",
    MakeSpeed);
SOFTQ_REGISTER_ENVIRONMENT(
    "quadruped_hallway",
    "quadruped between two walls along x, reward = speed along +x (obs 29, "
    "act 8); keys: width (wide = 4 m|narrow = 2 m|metres), direction "
    "(forward|either: |v_x|), and quadruped_speed's",
    MakeHallway);
SOFTQ_REGISTER_ENVIRONMENT(
    "quadruped_maze",
    "quadruped in a maze of 3 m cells, reward = gaussian_weight * "
    "exp(-d^2/2w^2) around the goal (obs 29, act 8); keys: layout (u|blocked: "
    "the upper of two passages blocked), gaussian_width (3), gaussian_weight "
    "(1), goal_reward (u 0, blocked 100: terminal within goal_radius), "
    "goal_radius (1), and quadruped_speed's",
    MakeMaze);

}  // namespace softq
