#include "eval/goal_coverage.h"

#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "env/multigoal.h"

namespace softq {

void GoalCoverage::Observe(int i, const std::vector<float>& observation,
                           const StepResult* step) {
  if (static_cast<int>(trajectories.size()) <= i) trajectories.resize(i + 1);
  trajectories[i].push_back({observation[0], observation[1]});
  if (step != nullptr && step->terminal) {
    ++goal_counts[MultiGoalEnv::GoalAt(observation[0], observation[1])];
    ++reached_any;
  }
}

int GoalCoverage::GoalsCovered() const {
  int covered = 0;
  for (int c : goal_counts) covered += (c * 10 >= rollouts) ? 1 : 0;
  return covered;
}

bool GoalCoverage::Solved() const {
  return rollouts > 0 && GoalsCovered() == 4 &&
         reached_any * 10 >= rollouts * 9;
}

std::string GoalCoverage::Summary() const {
  return absl::StrFormat(
      "goals %d/4 (+x %d, -x %d, +y %d, -y %d of %d), reached %d%%",
      GoalsCovered(), goal_counts[0], goal_counts[1], goal_counts[2],
      goal_counts[3], rollouts, rollouts ? 100 * reached_any / rollouts : 0);
}

absl::Status WriteTrajectoriesCsv(const GoalCoverage& coverage,
                                  const std::string& path) {
  std::ofstream out(path);
  if (!out) return absl::UnavailableError(absl::StrCat("cannot write ", path));
  out << "rollout,step,x,y\n";
  for (size_t i = 0; i < coverage.trajectories.size(); ++i) {
    const auto& t = coverage.trajectories[i];
    for (size_t s = 0; s < t.size(); ++s) {
      out << i << "," << s << "," << t[s][0] << "," << t[s][1] << "\n";
    }
  }
  out.close();
  if (!out) return absl::UnavailableError(absl::StrCat("error writing ", path));
  return absl::OkStatus();
}

}  // namespace softq
