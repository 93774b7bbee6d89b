// Evaluate: a policy rolled out in fresh environments of any kind; the returns
// and, on the multi-goal task, the goal criterion. SolvedStreak: the stopping
// rule fed those evaluations. Thread-compatible.
#ifndef SOFTQ_EVAL_EVALUATION_H_
#define SOFTQ_EVAL_EVALUATION_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "eval/goal_coverage.h"
#include "policy/acting_policy.h"

namespace softq {

struct EvaluationOptions {
  std::string env = "multigoal";  // a MakeEnvironment name
  std::string env_config;         // its parameters, key=value,...
  int rollouts = 100;
  // Rollout i's environment is seeded seed * 1000003 + i (EvaluationSeed).
  uint64_t seed = 0;
};

// Where an evaluation's returns come from: rollouts of the policy made for it
// (Evaluate), or episodes the actors finished with the policies they were
// acting with (a task only they can step: the learner on `external`).
enum class EvaluationSource { kRollouts, kActorEpisodes };

// How one rollout ended: what tells a run that reached a goal or crossed a
// finish line (a terminal step paying the task's bonus) and where (the final
// observation holds the position on the swimmer and quadruped tasks).
struct RolloutEnd {
  int steps = 0;           // env steps taken
  bool terminal = false;   // ended in a terminal state (not the time limit)
  double last_reward = 0;  // the reward of its last step
  std::vector<float> final_observation;
};

// One evaluation. The learner and the in-process trainer both evaluate through
// Evaluate and stop on SolvedStreak.
struct Evaluation {
  EvaluationSource source = EvaluationSource::kRollouts;
  std::vector<double> returns;   // one per rollout or episode
  std::vector<RolloutEnd> ends;  // one per rollout (Evaluate only)
  double mean_return = 0;
  double return_stddev = 0;
  std::optional<GoalCoverage> goals;  // the multi-goal task only

  // The multi-goal criterion met; false on any other task.
  bool Solved() const { return goals && goals->Solved(); }
  int GoalsCovered() const { return goals ? goals->GoalsCovered() : 0; }
  // Multi-goal: "goals 4/4 (...), reached 95%, return -12.3"; else
  // "return 1.23 +- 0.45 over 100 rollouts" (or "... actor episodes").
  std::string Summary() const;
};

// Rolls out `options.rollouts` (>= 1) fresh environments (MakeEnvironment) with
// `policy`. InvalidArgument for a bad name or config or no rollouts; an
// environment's step error otherwise.
absl::StatusOr<Evaluation> Evaluate(ActingPolicy& policy,
                                    const EvaluationOptions& options);

// The mean and standard deviation of `returns` (zeros when empty).
Evaluation EvaluationOfReturns(
    std::vector<double> returns,
    EvaluationSource source = EvaluationSource::kRollouts);

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
// Met() once the last `required` of them all were Solved(). Each evaluation
// must be of fresh rollouts (EvaluationSeed). A later evaluation that fails
// starts the count over; on other tasks it is never met.
class SolvedStreak {
 public:
  explicit SolvedStreak(int required = kSolvedEvaluationsRequired);

  // Counts `evaluation` in (the run's next one); returns Met().
  bool Record(const Evaluation& evaluation);
  bool Met() const { return streak_ >= required_; }
  int streak() const { return streak_; }  // solved evaluations in a row, now
  int required() const { return required_; }
  // "solved 1 of 2 in a row".
  std::string Summary() const;

 private:
  int required_;
  int streak_ = 0;
};

}  // namespace softq

#endif  // SOFTQ_EVAL_EVALUATION_H_
