#include "learner/learner.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace softq {
namespace {

// InvalidArgument naming the first field of `batch` whose shape is not the agent's.
absl::Status CheckBatchShape(const TransitionTensors& batch, const SqlConfig& config) {
  const int64_t n = batch.observations.dim() == 2 ? batch.observations.size(0) : -1;
  const std::pair<const char*, const torch::Tensor*> fields[] = {
      {"observations", &batch.observations},
      {"actions", &batch.actions},
      {"rewards", &batch.rewards},
      {"next_observations", &batch.next_observations},
      {"dones", &batch.dones}};
  const std::vector<int64_t> expected[] = {{n, config.observation_dim},
                                           {n, config.action_dim},
                                           {n},
                                           {n, config.observation_dim},
                                           {n}};
  for (int i = 0; i < 5; ++i) {
    const torch::Tensor& t = *fields[i].second;
    if (n >= 1 && t.defined() && t.sizes() == at::IntArrayRef(expected[i])) continue;
    const std::string shape =
        t.defined() ? absl::StrCat("[", absl::StrJoin(t.sizes(), ", "), "]") : "missing";
    return absl::InvalidArgumentError(absl::StrCat(
        "batch ", fields[i].first, " is ", shape, "; the learner expects [",
        absl::StrJoin(expected[i], ", "), "] (observation_dim ", config.observation_dim,
        ", action_dim ", config.action_dim, ": do the actors run the learner's --env?)"));
  }
  return absl::OkStatus();
}

}  // namespace

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
  if (absl::Status s = CheckBatchShape(*batch, agent_->config()); !s.ok()) return s;
  if (graph_ != nullptr) {
    if (absl::Status s = graph_->Update(*batch); !s.ok()) return s;
  } else {
    try {
      agent_->Update(*batch);
    } catch (const c10::Error& e) {
      return absl::InternalError(absl::StrCat("update: ", e.what_without_backtrace()));
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
