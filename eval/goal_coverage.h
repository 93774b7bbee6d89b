// The multi-goal task's success criterion over one evaluation's rollouts:
// every goal reached in >= 10% of them and >= 90% ending at some goal (a
// multimodal policy). Plain data; thread-compatible.
#ifndef SOFTQ_EVAL_GOAL_COVERAGE_H_
#define SOFTQ_EVAL_GOAL_COVERAGE_H_

#include <array>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "env/environment.h"

namespace softq {

struct GoalCoverage {
  int rollouts = 0;
  std::array<int, 4> goal_counts = {0, 0, 0,
                                    0};  // rollouts that ended at each goal
  int reached_any = 0;
  // Positions visited by each rollout, x_0 first.
  std::vector<std::vector<std::array<float, 2>>> trajectories;

  // Counts rollout `i`'s observation (a RolloutObserver): the position, and
  // the goal where a step ends the episode terminally.
  void Observe(int i, const std::vector<float>& observation,
               const StepResult* step);

  bool Solved() const;
  int GoalsCovered() const;  // goals reached by >= 10% of rollouts
  // "goals 3/4 (+x 40, -x 30, +y 25, -y 5 of 100), reached 100%".
  std::string Summary() const;
};

// CSV "rollout,step,x,y" of `coverage.trajectories` (for
// deploy/local/plot_multigoal.py); Unavailable naming `path` if it cannot be
// written.
absl::Status WriteTrajectoriesCsv(const GoalCoverage& coverage,
                                  const std::string& path);

}  // namespace softq

#endif  // SOFTQ_EVAL_GOAL_COVERAGE_H_
