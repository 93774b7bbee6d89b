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
  try {
    // Prioritized replay: weights in, priorities out (on a graph's replay, its
    // metric tensors hold that update's values).
    const torch::Tensor weights = source_->ImportanceWeights(agent_->step());
    if (graph_ != nullptr) {
      if (absl::Status s = graph_->Update(*batch, weights); !s.ok()) return s;
    } else {
      agent_->SetCriticWeights(weights);
      agent_->Update(*batch);
    }
    const UpdateMetricTensors& last = agent_->LastMetricTensors();
    source_->Updated(last.q, last.target);
  } catch (const c10::Error& e) {
    return absl::InternalError(
        absl::StrCat("update: ", e.what_without_backtrace()));
  }
  const bool publish = agent_->step() % options_.publish_interval == 0;
  if (options_.max_skipped_updates > 0 &&
      (publish || !agent_->device().is_cuda())) {
    const SkippedUpdates skipped = agent_->Skipped();
    if (skipped.consecutive >= options_.max_skipped_updates) {
      return SkippedUpdatesError(skipped, agent_->step());
    }
  }
  if (publish) Publish();
  return absl::OkStatus();
}

absl::Status SkippedUpdatesError(const SkippedUpdates& skipped, int64_t step) {
  return absl::AbortedError(absl::StrCat(
      skipped.consecutive, " updates in a row skipped: non-finite ",
      NonFiniteCauses(skipped.last_cause), ", the last at update ",
      skipped.last_step, "; the parameters are update ",
      step - skipped.consecutive, "'s"));
}

void Learner::Publish() {
  ++version_;
  publisher_->Publish(agent_->PolicyParameters(), version_, agent_->step());
}

}  // namespace softq
