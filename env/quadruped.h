// The quadruped tasks (env/models/quadruped.xml, embedded at build time: the
// ant of Schulman et al. 2015, 8 actuators): the model text with an arena of
// walls, a goal site and a floor generated here as MJCF around the same body
// (MuJoCo 2.2.2 has no model-editing API), run by MjcfEnv (env/mjcf_env.h).
// Pure functions and factories; the environments they return are not
// thread-safe (one owner), as every Environment.
//
// Every task: 5 MuJoCo steps of 10 ms per env step (0.05 s); start qpos0 +
// U(-0.1, 0.1) per coordinate, qvel U(-0.1, 0.1); reward terms measured at the
// torso's subtree centre of mass (the whole body's); control cost
// 0.005 ||a||^2 and alive bonus 0.05 (rllab's ant); terminal when the torso's
// height leaves [0.2, 1.0] m (rllab's range: passive, it settles at 0.37 m;
// under uniform random actions it stays within 0.36-0.86 m: jumps end it);
// time limit 500 steps (the paper's MuJoCo horizon).
// Observation (29): qpos without the torso's x, y (13: z, quaternion, 8 joint
// angles), qvel (14), then the centre of mass's x, y (m; the point the rewards
// measure, MjcfTask::observe_position). Position is observed in every task, not
// only the mazes that need it (a Gaussian reward around a fixed target is a
// function of it), so that one network pretrained on quadruped_speed fits every
// downstream task (the paper fine-tunes it on all three); observe_xy=false
// drops it (27).
#ifndef SOFTQ_ENV_QUADRUPED_H_
#define SOFTQ_ENV_QUADRUPED_H_

#include <array>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "env/mjcf_env.h"

namespace softq {

// Hallway widths between the walls' inner faces (m). The quadruped spans
// about 1.3 m across when walking along the hallway, 1.9 m turned 45 degrees:
// the narrow hallway lets it through but not turned, the wide one leaves it
// free to turn.
inline constexpr double kWideHallway = 4.0;
inline constexpr double kNarrowHallway = 2.0;
inline constexpr double kWallHeight = 1.5;  // m, twice the torso's start
// A maze cell (m): corridors one cell wide leave the quadruped room to turn.
inline constexpr double kMazeCell = 3.0;

enum class MazeLayout {
  // start (r) and goal (g) at the ends of a U: the goal lies 2 cells from the
  // start behind a wall, 6 cells along the corridor.
  kU,
  // the paper's exploration maze: two passages from the start toward the
  // goal, around a block; the upper one is blocked, the lower one leads on.
  kBlocked,
};

// The layout's rows, '#' wall, '.' floor, 'r' the start (the origin), 'g' the
// goal; row 0 is north (+y), column 0 west (-x).
std::vector<std::string> MazeRows(MazeLayout layout);

// quadruped.xml with `arena` (MJCF elements) inserted into its worldbody.
std::string QuadrupedXml(absl::string_view arena);
// Two walls along x, their inner faces at y = +-width/2, from x = -100 to 100.
std::string HallwayArena(double width);
// One wall box per '#' cell of `rows` (each cell `cell` m square, the start
// cell centred on the origin) and a site "goal" at the goal cell's centre.
std::string MazeArena(const std::vector<std::string>& rows, double cell);
// The goal cell's centre (x, y) for `rows` (m).
std::array<double, 2> MazeGoal(const std::vector<std::string>& rows,
                               double cell);

// The task every quadruped environment starts from (the header's common
// settings, no reward term but the control cost and the alive bonus).
MjcfTask QuadrupedBaseTask();

// The quadruped in `arena` with `task`; errors as MjcfEnv::FromXml.
absl::StatusOr<std::unique_ptr<MjcfEnv>> MakeQuadruped(absl::string_view arena,
                                                       const MjcfTask& task,
                                                       uint64_t seed);

}  // namespace softq

#endif  // SOFTQ_ENV_QUADRUPED_H_
