// Evaluation on the multi-goal task: rolls out the sampling network from x_0
// many times (all rollouts stepped together, one batched forward per step) and
// counts the goals reached. The project's success criterion: every goal reached
// in >= 10% of rollouts and at least 90% of rollouts ending at some goal (a
// multimodal policy). A training run has learned the task when
// kSolvedEvaluationsRequired consecutive evaluations, each of fresh rollouts,
// meet it (SolvedStreak). Thread-compatible.
#ifndef SOFTQ_ACTOR_MULTIGOAL_EVALUATION_H_
#define SOFTQ_ACTOR_MULTIGOAL_EVALUATION_H_

#include <array>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "policy/acting_policy.h"

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

// The seed of the evaluation a run seeded `run_seed` makes at training step
// `step` (its updates or env steps): a different one at every step, so that
// successive evaluations roll out from fresh start states with fresh
// environment noise, not the same draws again. Step 0 gives run_seed + 1000.
uint64_t EvaluationSeed(uint64_t run_seed, int64_t step);

// Consecutive evaluations that must meet the criterion before a run counts as
// having learned the multi-goal task (and, with --stop_when_solved, stops): one
// pass can be a lucky draw near the 90% bar. A policy that reaches a goal in
// 89% of rollouts passes one evaluation of 100 rollouts 45% of the time, two in
// a row 21% (88%: 33% and 11%; 92%: 82% and 68%).
inline constexpr int kSolvedEvaluationsRequired = 2;

// The stopping rule of the multi-goal learning checks, shared by
// TrainInProcess (train_in_process, tests:sql_learning_test) and learner_main
// (the demo, tests:distributed_test): fed every evaluation of a run in order,
// Met() once the last `required` of them all met the criterion. Each
// evaluation must be of fresh rollouts (EvaluationSeed). A later evaluation
// that fails starts the count over.
class SolvedStreak {
 public:
  explicit SolvedStreak(int required = kSolvedEvaluationsRequired);

  // Counts `evaluation` in (the run's next one); returns Met().
  bool Record(const MultiGoalEvaluation& evaluation);
  bool Met() const { return streak_ >= required_; }
  int streak() const { return streak_; }  // solved evaluations in a row, now
  int required() const { return required_; }
  // "solved 1 of 2 in a row".
  std::string Summary() const;

 private:
  int required_;
  int streak_ = 0;
};

// CSV "rollout,step,x,y" for deploy/local/plot_multigoal.py.
absl::Status WriteTrajectoriesCsv(const MultiGoalEvaluation& evaluation,
                                  const std::string& path);

}  // namespace softq

#endif  // SOFTQ_ACTOR_MULTIGOAL_EVALUATION_H_
