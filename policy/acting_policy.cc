#include "policy/acting_policy.h"

#include <ATen/CPUGeneratorImpl.h>

#include "policy/named_parameters.h"

namespace softq {

ActingPolicy::ActingPolicy(int64_t observation_dim, int64_t action_dim,
                           const std::vector<int64_t>& hidden, uint64_t seed,
                           ActingOptions options)
    : options_(options),
      network_(observation_dim, action_dim, hidden),
      generator_(at::make_generator<at::CPUGeneratorImpl>(seed)) {
  network_->eval();
}

absl::Status ActingPolicy::SetParameters(const NamedTensors& params,
                                         uint64_t version) {
  return Load(params, version, /*newer_only=*/true);
}

absl::Status ActingPolicy::ReplaceParameters(const NamedTensors& params,
                                             uint64_t version) {
  return Load(params, version, /*newer_only=*/false);
}

absl::Status ActingPolicy::Load(const NamedTensors& params, uint64_t version,
                                bool newer_only) {
  absl::MutexLock lock(&mu_);
  if (newer_only && version <= version_) return absl::OkStatus();
  if (absl::Status s = LoadNamedParameters(params, *network_); !s.ok())
    return s;
  version_ = version;
  return absl::OkStatus();
}

torch::Tensor ActingPolicy::Act(const torch::Tensor& observations) {
  torch::NoGradGuard no_grad;
  absl::MutexLock lock(&mu_);
  const std::vector<int64_t> shape = {observations.size(0),
                                      network_->action_dim()};
  const torch::Tensor xi = options_.deterministic
                               ? torch::zeros(shape)
                               : at::normal(0.0, 1.0, shape, generator_);
  torch::Tensor actions = network_->forward(observations, xi);
  if (options_.action_noise > 0) {
    actions = (actions +
               options_.action_noise * at::normal(0.0, 1.0, shape, generator_))
                  .clamp(-1.0, 1.0);
  }
  return actions;
}

uint64_t ActingPolicy::version() const {
  absl::MutexLock lock(&mu_);
  return version_;
}

}  // namespace softq
