// ActingPolicy: an actor's local copy of the sampling network f_phi, with the
// version of the parameters it holds. The parameter feed (learner in-process,
// or a subscription thread) swaps new parameters in with SetParameters while
// the acting loop keeps calling Act. Thread-safe: both calls take the same
// mutex, so a step never sees half-copied weights.
#ifndef SOFTQ_POLICY_ACTING_POLICY_H_
#define SOFTQ_POLICY_ACTING_POLICY_H_

#include <cstdint>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "common/tensor_codec.h"
#include "policy/networks.h"

namespace softq {

// How actions are drawn: a = clip(f_phi(xi; s) + action_noise * eps, -1, 1),
// eps ~ N(0, I), with xi ~ N(0, I) (stochastic: SQL) or xi = 0 (deterministic:
// DDPG, whose exploration is action_noise alone; its evaluation uses no noise
// at all).
struct ActingOptions {
  bool deterministic = false;
  double action_noise = 0.0;
};

class ActingPolicy {
 public:
  ActingPolicy(int64_t observation_dim, int64_t action_dim,
               const std::vector<int64_t>& hidden, uint64_t seed,
               ActingOptions options = {});

  // Replaces the parameters if `version` is newer than the held one;
  // InvalidArgument (and no change) if names or shapes do not match the
  // network.
  absl::Status SetParameters(const NamedTensors& params, uint64_t version)
      ABSL_LOCKS_EXCLUDED(mu_);
  // The same whatever the held version: a restarted learner's versions start
  // over.
  absl::Status ReplaceParameters(const NamedTensors& params, uint64_t version)
      ABSL_LOCKS_EXCLUDED(mu_);

  // One action per row of `observations` [N, O], drawn as ActingOptions says:
  // [N, D], in
  // [-1, 1].
  torch::Tensor Act(const torch::Tensor& observations) ABSL_LOCKS_EXCLUDED(mu_);

  // The version of the held parameters; 0 until the first SetParameters.
  uint64_t version() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  absl::Status Load(const NamedTensors& params, uint64_t version,
                    bool newer_only) ABSL_LOCKS_EXCLUDED(mu_);

  const ActingOptions options_;
  mutable absl::Mutex mu_;
  SamplingNetwork network_ ABSL_GUARDED_BY(mu_);
  torch::Generator generator_ ABSL_GUARDED_BY(mu_);
  uint64_t version_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace softq

#endif  // SOFTQ_POLICY_ACTING_POLICY_H_
