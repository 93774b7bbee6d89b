// Learner: the training loop's step, independent of where batches come from and
// where parameters go. Each Step() takes one batch from a BatchSource, runs one
// SqlAgent update, and every `publish_interval` updates publishes the sampling
// network with a new version. In one process the source is an in-memory replay
// and the publisher an actor's policy; in a cluster they are the replay client
// and the parameter service. Updates with a non-finite loss or gradient are
// skipped by the agent (SqlAgent::Skipped); after `max_skipped_updates` of them
// in a row the learner stops (Step returns Aborted). Not thread-safe.
#ifndef SOFTQ_LEARNER_LEARNER_H_
#define SOFTQ_LEARNER_LEARNER_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/tensor_codec.h"
#include "learner/cuda_graph_update.h"
#include "learner/sql_agent.h"

namespace softq {

// Supplies training batches. Next blocks up to `timeout` (DeadlineExceeded
// after it, e.g. while the replay is below its minimum size). Implementations
// say their thread-safety.
class BatchSource {
 public:
  virtual ~BatchSource() = default;
  virtual absl::StatusOr<TransitionTensors> Next(absl::Duration timeout) = 0;
  // Prioritized replay. Importance weights [B] for the batch Next last
  // returned, weighing the critic's loss (`update`: the agent's updates so far,
  // for annealing); undefined (the default): unweighted.
  virtual torch::Tensor ImportanceWeights(int64_t update) {
    (void)update;
    return torch::Tensor();
  }
  // Called after the update on that batch with its q and TD targets [B] (on
  // the agent's device), e.g. to send new priorities. Default: nothing.
  virtual void Updated(const torch::Tensor& q, const torch::Tensor& target) {
    (void)q;
    (void)target;
  }
};

// Receives each published version of the sampling network.
class ParameterPublisher {
 public:
  virtual ~ParameterPublisher() = default;
  virtual void Publish(const NamedTensors& params, uint64_t version,
                       int64_t learner_step) = 0;
};

struct LearnerOptions {
  int64_t publish_interval = 100;  // updates between publications
  // Consecutive skipped updates (a non-finite loss or gradient: poison in the
  // replay, or a diverged network) after which Step returns Aborted; 0: never.
  // Read after every update on the CPU, and at each publication on a GPU
  // (where reading the device's counter synchronizes, as a publication does
  // anyway): there the stop may come up to publish_interval - 1 updates later.
  int64_t max_skipped_updates = 100;
};

class Learner {
 public:
  // `agent`, `source` and `publisher` outlive the learner. Publishes version 1
  // (the initial parameters) at construction, so actors can start before the
  // first update.
  Learner(SqlAgent* agent, BatchSource* source, ParameterPublisher* publisher,
          LearnerOptions options, uint64_t first_version = 1);

  // Waits up to `timeout` for a batch, updates, maybe publishes. The source's
  // error (e.g. DeadlineExceeded) is returned unchanged and nothing is updated;
  // so is a CUDA graph's. A batch whose shapes are not the agent's
  // observation_dim/action_dim (actors on another
  // --env) is InvalidArgument naming the field, before any update; a LibTorch
  // error inside the update is Internal. Aborted once max_skipped_updates
  // updates in a row were skipped, its message one line naming the cause and
  // the update ("100 updates in a row skipped: non-finite critic loss, critic
  // gradient, the last at update 1234; the parameters are update 1134's");
  // nothing is published then.
  absl::Status Step(absl::Duration timeout);

  // From now on updates through `graph` (made for this learner's agent; it
  // outlives the learner) instead of SqlAgent::Update, the source's
  // ImportanceWeights (prioritized replay) copied into the graph's input.
  void UseCudaGraph(CudaGraphUpdate* graph) { graph_ = graph; }

  // Publishes the current parameters with the next version.
  void Publish();

  uint64_t version() const { return version_; }
  SqlAgent& agent() { return *agent_; }

 private:
  SqlAgent* agent_;
  BatchSource* source_;
  ParameterPublisher* publisher_;
  LearnerOptions options_;
  uint64_t version_;
  CudaGraphUpdate* graph_ = nullptr;
};

// The Aborted status Learner::Step returns for `skipped` (consecutive >= 1)
// at agent step `step`.
absl::Status SkippedUpdatesError(const SkippedUpdates& skipped, int64_t step);

}  // namespace softq

#endif  // SOFTQ_LEARNER_LEARNER_H_
