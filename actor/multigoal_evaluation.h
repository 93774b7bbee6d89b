// Evaluation on the multi-goal task: rolls out the sampling network from x_0
// many times (all rollouts stepped together, one batched forward per step) and
// counts the goals reached. The project's success criterion: every goal reached
// in >= 10% of rollouts and some goal in
// >= 90% (a multimodal policy). Thread-compatible.
#ifndef SOFTQ_ACTOR_MULTIGOAL_EVALUATION_H_
#define SOFTQ_ACTOR_MULTIGOAL_EVALUATION_H_

#include <array>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "actor/acting_policy.h"

namespace softq {

struct MultiGoalEvaluation {
  int rollouts = 0;
  std::array<int, 4> goal_counts = {0, 0, 0,
                                    0};  // rollouts that ended at each goal
  int reached_any = 0;
  double mean_return = 0;
  // Positions visited by each rollout, x_0 first.
  std::vector<std::vector<std::array<float, 2>>> trajectories;

  bool Solved() const;
  int GoalsCovered() const;  // goals reached by >= 10% of rollouts
  std::string Summary() const;
};

MultiGoalEvaluation EvaluateMultiGoal(ActingPolicy& policy, int rollouts,
                                      uint64_t seed);

// CSV "rollout,step,x,y" for deploy/local/plot_multigoal.py.
absl::Status WriteTrajectoriesCsv(const MultiGoalEvaluation& evaluation,
                                  const std::string& path);

}  // namespace softq

#endif  // SOFTQ_ACTOR_MULTIGOAL_EVALUATION_H_
