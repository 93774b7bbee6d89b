#include "common/transition_check.h"

#include <cmath>

#include "absl/strings/str_cat.h"

namespace softq {
namespace {

absl::Status CheckFinite(const char* field,
                         const google::protobuf::RepeatedField<float>& values) {
  for (int i = 0; i < values.size(); ++i) {
    if (!std::isfinite(values[i])) {
      return absl::InvalidArgumentError(
          absl::StrCat("TransitionBatch.", field, "[", i, "] is not finite (",
                       values[i], ")"));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckSize(const char* field, int64_t actual, int64_t expected) {
  if (actual != expected) {
    return absl::InvalidArgumentError(
        absl::StrCat("TransitionBatch.", field, " has ", actual,
                     " values, expected ", expected));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateTransitionShape(const proto::TransitionBatch& batch) {
  const uint32_t obs_dim = batch.observation_dim();
  const uint32_t act_dim = batch.action_dim();
  if (obs_dim < 1 || obs_dim > kMaxObservationDim) {
    return absl::InvalidArgumentError(
        absl::StrCat("TransitionBatch.observation_dim is ", obs_dim,
                     ", expected 1..", kMaxObservationDim));
  }
  if (act_dim < 1 || act_dim > kMaxActionDim) {
    return absl::InvalidArgumentError(
        absl::StrCat("TransitionBatch.action_dim is ", act_dim,
                     ", expected 1..", kMaxActionDim));
  }
  const int64_t n = TransitionCount(batch);
  if (n < 1 || n > kMaxBatchTransitions) {
    return absl::InvalidArgumentError(
        absl::StrCat("TransitionBatch.rewards has ", n,
                     " transitions, expected 1..", kMaxBatchTransitions));
  }
  for (const absl::Status& s : {
           CheckSize("observations", batch.observations_size(), n * obs_dim),
           CheckSize("actions", batch.actions_size(), n * act_dim),
           CheckSize("next_observations", batch.next_observations_size(),
                     n * obs_dim),
           CheckSize("dones", batch.dones_size(), n),
       }) {
    if (!s.ok()) return s;
  }
  if (!(batch.episode_ids_size() == 0 && batch.step_ids_size() == 0)) {
    if (absl::Status s = CheckSize("episode_ids", batch.episode_ids_size(), n);
        !s.ok()) {
      return s;
    }
    if (absl::Status s = CheckSize("step_ids", batch.step_ids_size(), n);
        !s.ok())
      return s;
  }
  if (batch.actor_id() > static_cast<uint32_t>(INT32_MAX)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "TransitionBatch.actor_id is ", batch.actor_id(), ", expected < 2^31"));
  }
  if (batch.finished_returns_size() > n) {
    return absl::InvalidArgumentError(absl::StrCat(
        "TransitionBatch.finished_returns has ", batch.finished_returns_size(),
        " values, expected at most ", n, " (one per episode ending in it)"));
  }
  return absl::OkStatus();
}

absl::Status ValidateTransitionBatch(const proto::TransitionBatch& batch) {
  if (absl::Status s = ValidateTransitionShape(batch); !s.ok()) return s;
  for (const absl::Status& s :
       {CheckFinite("observations", batch.observations()),
        CheckFinite("actions", batch.actions()),
        CheckFinite("rewards", batch.rewards()),
        CheckFinite("next_observations", batch.next_observations())}) {
    if (!s.ok()) return s;
  }
  for (int i = 0; i < batch.finished_returns_size(); ++i) {
    if (!std::isfinite(batch.finished_returns(i))) {
      return absl::InvalidArgumentError(
          absl::StrCat("TransitionBatch.finished_returns[", i,
                       "] is not finite (", batch.finished_returns(i), ")"));
    }
  }
  return absl::OkStatus();
}

}  // namespace softq
