#include "eval/rollout.h"

#include <torch/types.h>

#include <cstring>

namespace softq {

absl::StatusOr<std::vector<double>> RollOut(
    ActingPolicy& policy, std::vector<std::unique_ptr<Environment>>& envs,
    const RolloutObserver& observe) {
  const int n = static_cast<int>(envs.size());
  const EnvSpec spec = envs.front()->spec();
  const int obs_dim = spec.observation_dim, act_dim = spec.action_dim;
  std::vector<float> obs(static_cast<size_t>(n) * obs_dim);
  for (int i = 0; i < n; ++i) {
    const std::vector<float> first = envs[i]->Reset();
    std::memcpy(&obs[i * obs_dim], first.data(), obs_dim * sizeof(float));
    if (observe) observe(i, first, nullptr);
  }
  std::vector<double> returns(n, 0.0);
  std::vector<bool> active(n, true);
  for (int step = 0; step < spec.max_episode_steps; ++step) {
    const torch::Tensor actions =
        policy.Act(torch::from_blob(obs.data(), {n, obs_dim}, torch::kFloat32))
            .contiguous();
    const float* a = actions.data_ptr<float>();
    bool any = false;
    for (int i = 0; i < n; ++i) {
      if (!active[i]) continue;
      absl::StatusOr<StepResult> r =
          envs[i]->Step({a + i * act_dim, size_t(act_dim)});
      if (!r.ok()) return r.status();
      returns[i] += r->reward;
      std::memcpy(&obs[i * obs_dim], r->observation.data(),
                  obs_dim * sizeof(float));
      if (observe) observe(i, r->observation, &*r);
      active[i] = !(r->terminal || r->truncated);
      any = any || active[i];
    }
    if (!any) break;
  }
  return returns;
}

}  // namespace softq
