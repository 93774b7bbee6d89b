#include "actor/acting_policy.h"

#include <ATen/CPUGeneratorImpl.h>

#include "learner/sql_agent.h"

namespace softq {

ActingPolicy::ActingPolicy(int64_t observation_dim, int64_t action_dim,
                           const std::vector<int64_t>& hidden, uint64_t seed)
    : network_(observation_dim, action_dim, hidden),
      generator_(at::make_generator<at::CPUGeneratorImpl>(seed)) {
  network_->eval();
}

absl::Status ActingPolicy::SetParameters(const NamedTensors& params, uint64_t version) {
  absl::MutexLock lock(&mu_);
  if (version <= version_) return absl::OkStatus();
  if (absl::Status s = LoadNamedParameters(params, *network_); !s.ok()) return s;
  version_ = version;
  return absl::OkStatus();
}

torch::Tensor ActingPolicy::Act(const torch::Tensor& observations) {
  torch::NoGradGuard no_grad;
  absl::MutexLock lock(&mu_);
  const torch::Tensor noise = at::normal(
      0.0, 1.0, {observations.size(0), network_->action_dim()}, generator_);
  return network_->forward(observations, noise);
}

uint64_t ActingPolicy::version() const {
  absl::MutexLock lock(&mu_);
  return version_;
}

}  // namespace softq
