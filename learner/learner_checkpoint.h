// Learner checkpoints: the Q network, its target, the sampling network, both
// optimizers' state, the update step and the parameter version, in one LibTorch
// archive per save. Writes are atomic (temporary file, then rename): a reader
// sees the previous checkpoint or the new one, never half of one.
// Thread-compatible.
#ifndef SOFTQ_LEARNER_LEARNER_CHECKPOINT_H_
#define SOFTQ_LEARNER_LEARNER_CHECKPOINT_H_

#include <string>

#include "absl/status/statusor.h"
#include "learner/sql_agent.h"

namespace softq {

// The checkpoint file inside `dir`.
std::string LearnerCheckpointPath(const std::string& dir);

// Saves `agent` (step included) and `version` to LearnerCheckpointPath(dir),
// creating `dir`. FailedPrecondition, and nothing written (the previous
// checkpoint stays), when a network holds a NaN or an infinity.
absl::Status SaveLearnerCheckpoint(SqlAgent& agent, uint64_t version,
                                   const std::string& dir);

// Restores into `agent` (same architecture) and returns the saved version.
// NotFound when `dir` holds no checkpoint; DataLoss for a corrupted or
// incompatible file (another architecture, or optimizer state that is not
// FlatAdam's, e.g. torch::optim::Adam's), in which case `agent` is unchanged.
absl::StatusOr<uint64_t> RestoreLearnerCheckpoint(SqlAgent& agent,
                                                  const std::string& dir);

// Fine-tuning start: copies the sampling network (and its target) of the
// checkpoint in `dir` into `agent` (same architecture), and with `with_q` the Q
// network and its target too; the optimizers, step and version stay fresh.
// NotFound / DataLoss as for Restore; `agent` is unchanged on error.
absl::Status InitializeFromLearnerCheckpoint(SqlAgent& agent,
                                             const std::string& dir,
                                             bool with_q = true);

// Writes the sampling network as a TorchScript module whose
// forward(observations, noise) returns tanh(MLP([observations, noise])),
// loadable with torch.jit.load in Python.
absl::Status ExportSamplingNetworkTorchScript(SamplingNetwork& policy,
                                              const std::string& path);

}  // namespace softq

#endif  // SOFTQ_LEARNER_LEARNER_CHECKPOINT_H_
