#include "actor/return_evaluation.h"

#include <cmath>
#include <cstring>

#include <torch/torch.h>

#include "absl/strings/str_format.h"
#include "actor/environment.h"

namespace softq {

std::string ReturnEvaluation::Summary() const {
  return absl::StrFormat("return %.2f +- %.2f over %d rollouts", mean, stddev, returns.size());
}

absl::StatusOr<ReturnEvaluation> EvaluateReturn(ActingPolicy& policy, const std::string& name,
                                                int rollouts, uint64_t seed) {
  std::vector<std::unique_ptr<Environment>> envs;
  for (int i = 0; i < rollouts; ++i) {
    absl::StatusOr<std::unique_ptr<Environment>> env = MakeEnvironment(name, seed * 1000003 + i);
    if (!env.ok()) return env.status();
    envs.push_back(*std::move(env));
  }
  const EnvSpec spec = envs.front()->spec();
  const int obs_dim = spec.observation_dim, act_dim = spec.action_dim;
  std::vector<float> obs(static_cast<size_t>(rollouts) * obs_dim);
  for (int i = 0; i < rollouts; ++i) {
    const std::vector<float> first = envs[i]->Reset();
    std::memcpy(&obs[i * obs_dim], first.data(), obs_dim * sizeof(float));
  }
  ReturnEvaluation result;
  result.returns.assign(rollouts, 0.0);
  std::vector<bool> active(rollouts, true);
  for (int step = 0; step < spec.max_episode_steps; ++step) {
    const torch::Tensor actions =
        policy.Act(torch::from_blob(obs.data(), {rollouts, obs_dim}, torch::kFloat32)).contiguous();
    const float* a = actions.data_ptr<float>();
    bool any = false;
    for (int i = 0; i < rollouts; ++i) {
      if (!active[i]) continue;
      absl::StatusOr<StepResult> r = envs[i]->Step({a + i * act_dim, size_t(act_dim)});
      if (!r.ok()) return r.status();
      result.returns[i] += r->reward;
      std::memcpy(&obs[i * obs_dim], r->observation.data(), obs_dim * sizeof(float));
      active[i] = !(r->terminal || r->truncated);
      any = any || active[i];
    }
    if (!any) break;
  }
  double sum = 0, sq = 0;
  for (double r : result.returns) sum += r;
  result.mean = sum / rollouts;
  for (double r : result.returns) sq += (r - result.mean) * (r - result.mean);
  result.stddev = std::sqrt(sq / rollouts);
  return result;
}

}  // namespace softq
