#include "actor/multigoal_evaluation.h"

#include <fstream>

#include <torch/torch.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "actor/multigoal.h"

namespace softq {

int MultiGoalEvaluation::GoalsCovered() const {
  int covered = 0;
  for (int c : goal_counts) covered += (c * 10 >= rollouts) ? 1 : 0;
  return covered;
}

bool MultiGoalEvaluation::Solved() const {
  return rollouts > 0 && GoalsCovered() == 4 && reached_any * 10 >= rollouts * 9;
}

std::string MultiGoalEvaluation::Summary() const {
  return absl::StrFormat("goals %d/4 (+x %d, -x %d, +y %d, -y %d of %d), reached %d%%, return %.1f",
                         GoalsCovered(), goal_counts[0], goal_counts[1], goal_counts[2],
                         goal_counts[3], rollouts, rollouts ? 100 * reached_any / rollouts : 0,
                         mean_return);
}

MultiGoalEvaluation EvaluateMultiGoal(ActingPolicy& policy, int rollouts, uint64_t seed) {
  MultiGoalEvaluation result;
  result.rollouts = rollouts;
  result.trajectories.resize(rollouts);
  std::vector<MultiGoalEnv> envs;
  std::vector<float> obs(2 * rollouts);
  std::vector<bool> active(rollouts, true);
  double total_return = 0;
  for (int i = 0; i < rollouts; ++i) {
    envs.emplace_back(seed * 1000003 + i);
    const std::vector<float> first = envs[i].Reset();
    obs[2 * i] = first[0];
    obs[2 * i + 1] = first[1];
    result.trajectories[i].push_back({first[0], first[1]});
  }
  for (int step = 0; step < MultiGoalEnv::kMaxSteps; ++step) {
    const torch::Tensor actions =
        policy.Act(torch::from_blob(obs.data(), {rollouts, 2}, torch::kFloat32)).contiguous();
    const float* a = actions.data_ptr<float>();
    bool any = false;
    for (int i = 0; i < rollouts; ++i) {
      if (!active[i]) continue;
      absl::StatusOr<StepResult> r = envs[i].Step({a + 2 * i, 2});
      if (!r.ok()) {  // Cannot happen with a tanh policy; end the rollout if it does.
        active[i] = false;
        continue;
      }
      obs[2 * i] = r->observation[0];
      obs[2 * i + 1] = r->observation[1];
      result.trajectories[i].push_back({obs[2 * i], obs[2 * i + 1]});
      total_return += r->reward;
      if (r->terminal) {
        const int goal = MultiGoalEnv::GoalAt(obs[2 * i], obs[2 * i + 1]);
        ++result.goal_counts[goal];
        ++result.reached_any;
      }
      active[i] = !(r->terminal || r->truncated);
      any = any || active[i];
    }
    if (!any) break;
  }
  result.mean_return = rollouts ? total_return / rollouts : 0;
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
