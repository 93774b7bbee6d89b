#include "actor/actor.h"

#include <torch/types.h>

#include <cstring>

namespace softq {

Actor::Actor(std::vector<std::unique_ptr<Environment>> envs,
             ActingPolicy* policy, TransitionSink* sink, ActorOptions options)
    : envs_(std::move(envs)),
      policy_(policy),
      sink_(sink),
      options_(options),
      spec_(envs_.front()->spec()) {
  const size_t n = envs_.size();
  observations_.resize(n * spec_.observation_dim);
  returns_.assign(n, 0.0);
  episode_ids_.resize(n);
  step_ids_.assign(n, 0);
  for (size_t i = 0; i < n; ++i) {
    const std::vector<float> obs = envs_[i]->Reset();
    std::memcpy(&observations_[i * spec_.observation_dim], obs.data(),
                obs.size() * sizeof(float));
    episode_ids_[i] =
        (static_cast<uint64_t>(options_.actor_id) << 40) | next_episode_id_++;
  }
}

absl::Status Actor::Step() {
  const int64_t n = static_cast<int64_t>(envs_.size());
  const int obs_dim = spec_.observation_dim, act_dim = spec_.action_dim;
  const torch::Tensor obs =
      torch::from_blob(observations_.data(), {n, obs_dim}, torch::kFloat32);
  const torch::Tensor actions = policy_->Act(obs).contiguous();
  const float* a = actions.data_ptr<float>();

  if (pending_steps_ == 0) {
    pending_.Clear();
    pending_.set_observation_dim(obs_dim);
    pending_.set_action_dim(act_dim);
    pending_.set_actor_id(options_.actor_id);
  }
  for (int64_t i = 0; i < n; ++i) {
    absl::StatusOr<StepResult> r =
        envs_[i]->Step({a + i * act_dim, size_t(act_dim)});
    if (!r.ok()) return r.status();
    float* current = &observations_[i * obs_dim];
    pending_.mutable_observations()->Add(current, current + obs_dim);
    pending_.mutable_actions()->Add(a + i * act_dim, a + (i + 1) * act_dim);
    pending_.add_rewards(r->reward);
    pending_.mutable_next_observations()->Add(r->observation.begin(),
                                              r->observation.end());
    pending_.add_dones(r->terminal);
    pending_.add_episode_ids(episode_ids_[i]);
    pending_.add_step_ids(step_ids_[i]++);
    returns_[i] += r->reward;
    if (r->terminal || r->truncated) {
      finished_returns_.push_back(returns_[i]);
      pending_.add_finished_returns(returns_[i]);  // the learner's evaluation
      returns_[i] = 0.0;
      ++episodes_;
      step_ids_[i] = 0;
      episode_ids_[i] =
          (static_cast<uint64_t>(options_.actor_id) << 40) | next_episode_id_++;
      const std::vector<float> first = envs_[i]->Reset();
      std::memcpy(current, first.data(), obs_dim * sizeof(float));
    } else {
      std::memcpy(current, r->observation.data(), obs_dim * sizeof(float));
    }
  }
  env_steps_ += n;
  if (++pending_steps_ >= options_.steps_per_write) return Flush();
  return absl::OkStatus();
}

absl::Status Actor::Flush() {
  if (pending_steps_ == 0) return absl::OkStatus();
  pending_steps_ = 0;
  return sink_->Write(std::move(pending_));
}

std::vector<double> Actor::TakeEpisodeReturns() {
  std::vector<double> out;
  out.swap(finished_returns_);
  return out;
}

}  // namespace softq
