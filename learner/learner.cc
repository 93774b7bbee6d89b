#include "learner/learner.h"

#include "absl/strings/str_cat.h"

namespace softq {

Learner::Learner(SqlAgent* agent, BatchSource* source,
                 ParameterPublisher* publisher, LearnerOptions options,
                 uint64_t first_version)
    : agent_(agent),
      source_(source),
      publisher_(publisher),
      options_(options),
      version_(first_version - 1) {
  Publish();
}

absl::Status Learner::Step(absl::Duration timeout) {
  absl::StatusOr<TransitionTensors> batch = source_->Next(timeout);
  if (!batch.ok()) return batch.status();
  const SqlConfig& config = agent_->config();
  absl::Status shapes =
      CheckTransitionShapes(*batch, config.observation_dim, config.action_dim);
  if (shapes.ok() && batch->observations.size(0) == 0) {
    shapes = absl::InvalidArgumentError(
        "TransitionTensors.observations has no rows");
  }
  if (!shapes.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "batch: ", shapes.message(), " (the learner's observation_dim ",
        config.observation_dim, ", action_dim ", config.action_dim,
        ": do the actors run the learner's --env?)"));
  }
  if (graph_ != nullptr) {
    if (absl::Status s = graph_->Update(*batch); !s.ok()) return s;
  } else {
    try {
      agent_->Update(*batch);
    } catch (const c10::Error& e) {
      return absl::InternalError(
          absl::StrCat("update: ", e.what_without_backtrace()));
    }
  }
  if (agent_->step() % options_.publish_interval == 0) Publish();
  return absl::OkStatus();
}

void Learner::Publish() {
  ++version_;
  publisher_->Publish(agent_->PolicyParameters(), version_, agent_->step());
}

}  // namespace softq
