#include "actor/multigoal_evaluation.h"

#include <algorithm>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "actor/return_evaluation.h"
#include "env/multigoal.h"

namespace softq {

int MultiGoalEvaluation::GoalsCovered() const {
  int covered = 0;
  for (int c : goal_counts) covered += (c * 10 >= rollouts) ? 1 : 0;
  return covered;
}

bool MultiGoalEvaluation::Solved() const {
  return rollouts > 0 && GoalsCovered() == 4 &&
         reached_any * 10 >= rollouts * 9;
}

std::string MultiGoalEvaluation::Summary() const {
  return absl::StrFormat(
      "goals %d/4 (+x %d, -x %d, +y %d, -y %d of %d), reached %d%%, return "
      "%.1f",
      GoalsCovered(), goal_counts[0], goal_counts[1], goal_counts[2],
      goal_counts[3], rollouts, rollouts ? 100 * reached_any / rollouts : 0,
      mean_return);
}

uint64_t EvaluationSeed(uint64_t run_seed, int64_t step) {
  // EvaluateMultiGoal seeds rollout i's environment with seed * 1000003 + i:
  // distinct steps give disjoint environment seeds.
  return run_seed + 1000 + 7919 * static_cast<uint64_t>(step);
}

SolvedStreak::SolvedStreak(int required) : required_(std::max(1, required)) {}

bool SolvedStreak::Record(const MultiGoalEvaluation& evaluation) {
  streak_ = evaluation.Solved() ? streak_ + 1 : 0;
  return Met();
}

std::string SolvedStreak::Summary() const {
  return absl::StrFormat("solved %d of %d in a row",
                         std::min(streak_, required_), required_);
}

MultiGoalEvaluation EvaluateMultiGoal(ActingPolicy& policy, int rollouts,
                                      uint64_t seed) {
  MultiGoalEvaluation result;
  result.rollouts = rollouts;
  result.trajectories.resize(rollouts);
  std::vector<std::unique_ptr<Environment>> envs;
  for (int i = 0; i < rollouts; ++i) {
    envs.push_back(std::make_unique<MultiGoalEnv>(seed * 1000003 + i));
  }
  absl::StatusOr<std::vector<double>> returns = RollOut(
      policy, envs,
      [&result](int i, const std::vector<float>& obs, const StepResult* step) {
        result.trajectories[i].push_back({obs[0], obs[1]});
        if (step != nullptr && step->terminal) {
          ++result.goal_counts[MultiGoalEnv::GoalAt(obs[0], obs[1])];
          ++result.reached_any;
        }
      });
  // A tanh policy's actions are always valid: RollOut cannot fail here.
  if (returns.ok() && rollouts > 0) {
    double total = 0;
    for (double r : *returns) total += r;
    result.mean_return = total / rollouts;
  }
  return result;
}

absl::Status WriteTrajectoriesCsv(const MultiGoalEvaluation& evaluation,
                                  const std::string& path) {
  std::ofstream out(path);
  if (!out) return absl::UnavailableError(absl::StrCat("cannot write ", path));
  out << "rollout,step,x,y\n";
  for (size_t i = 0; i < evaluation.trajectories.size(); ++i) {
    const auto& t = evaluation.trajectories[i];
    for (size_t s = 0; s < t.size(); ++s) {
      out << i << "," << s << "," << t[s][0] << "," << t[s][1] << "\n";
    }
  }
  out.close();
  if (!out) return absl::UnavailableError(absl::StrCat("error writing ", path));
  return absl::OkStatus();
}

}  // namespace softq
