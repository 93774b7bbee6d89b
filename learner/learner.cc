#include "learner/learner.h"

namespace softq {

Learner::Learner(SqlAgent* agent, BatchSource* source, ParameterPublisher* publisher,
                 LearnerOptions options, uint64_t first_version)
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
  if (graph_ != nullptr) {
    if (absl::Status s = graph_->Update(*batch); !s.ok()) return s;
  } else {
    agent_->Update(*batch);
  }
  if (agent_->step() % options_.publish_interval == 0) Publish();
  return absl::OkStatus();
}

void Learner::Publish() {
  ++version_;
  publisher_->Publish(agent_->PolicyParameters(), version_, agent_->step());
}

}  // namespace softq
