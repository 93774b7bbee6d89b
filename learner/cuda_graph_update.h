// CudaGraphUpdate: an SqlAgent's updates as one replayed CUDA graph. On a GPU a
// small SQL update is a few hundred kernel launches, and their CPU cost, not
// the GPU's work, bounds updates/s; a captured graph replays them as one
// launch. The first `warmup_updates` updates run eagerly on a side stream (lazy
// initialization such as cuBLAS workspaces must happen before capture), the
// next one is captured on that stream and replayed; from then on each update
// copies its batch into the graph's input (one launch: one packed tensor) and
// replays, and the graph draws the noise itself. Every call is one real update,
// the same computation as SqlAgent::Update.
//
// With two streams, the critic's half of the update (its loss, backward pass
// and Adam step) runs on a second stream, concurrently with the policy's half:
// a small update is a chain of tiny kernels, and two chains side by side take
// less time than one after the other. Q's Adam step waits for the policy's
// half, which reads Q. Each half's weight and bias gradients run on a stream of
// their own beside its backward pass (SideWork).
//
// Needs a build against a CUDA LibTorch with CUDA's headers (the CMake build
// defines SOFTQ_CUDA_GRAPHS when it finds them); elsewhere Create says
// Unimplemented. Not thread-safe; the agent outlives this object and is not
// updated by other means meanwhile.
#ifndef SOFTQ_LEARNER_CUDA_GRAPH_UPDATE_H_
#define SOFTQ_LEARNER_CUDA_GRAPH_UPDATE_H_

#include <memory>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/tensor_codec.h"
#include "learner/sql_agent.h"

namespace softq {

class CudaGraphUpdate {
 public:
  // InvalidArgument for warmup_updates < 1, streams other than 1 or 2, or 2
  // streams for the DDPG baseline (its halves are not independent:
  // SqlAgent::PolicyGradients), FailedPrecondition for an agent that is not on
  // a CUDA device, Unimplemented in a build without CUDA graph support (checked
  // in this order).
  static absl::StatusOr<std::unique_ptr<CudaGraphUpdate>> Create(
      SqlAgent* agent, int warmup_updates = 3, int streams = 1);
  ~CudaGraphUpdate();
  CudaGraphUpdate(const CudaGraphUpdate&) = delete;
  CudaGraphUpdate& operator=(const CudaGraphUpdate&) = delete;

  // One update on `batch` (float32, on the agent's device or on the host,
  // copied asynchronously). `critic_weights`, when defined: prioritized
  // replay's importance weights [B] for the critic's loss (any floating type
  // and device, as SqlAgent::SetCriticWeights), copied into the graph's own
  // input. InvalidArgument, and no update, when the batch's size differs from
  // the first batch's (the graph's shapes are fixed) or the weights' from the
  // batch's; Internal with LibTorch's message if capture or replay fails.
  // After a failed capture every later call is FailedPrecondition.
  absl::Status Update(const TransitionTensors& batch,
                      const torch::Tensor& critic_weights = {});
  // The same with the given noise (as SqlAgent::Update(batch, noise)) copied
  // in, e.g. to compare with eager updates. The first update decides, for the
  // noise and the weights alike: all pass them or none (FailedPrecondition,
  // and no update, otherwise).
  absl::Status Update(const TransitionTensors& batch, const UpdateNoise& noise,
                      const torch::Tensor& critic_weights = {});

  // Whether the graph has been captured (from update warmup_updates + 1 on).
  bool captured() const;
  // The noise the last update used (for checks; empty before the first update).
  UpdateNoise last_noise() const;

  // Whether this build can capture CUDA graphs at all.
  static bool Supported();
  // The streams to ask Create for when the user names none: 2 for SQL (the
  // critic's half beside the policy's, 1.6x one stream on an H200), 1 for the
  // DDPG baseline.
  static int DefaultStreams(Algorithm algorithm);

 private:
  struct State;
  // The per-build part of Create, once the agent is known to be on CUDA.
  static absl::StatusOr<std::unique_ptr<State>> NewState(SqlAgent* agent,
                                                         int warmup_updates,
                                                         int streams);
  explicit CudaGraphUpdate(std::unique_ptr<State> state);
  // The device part of one update (SqlAgent::StepNetworks) on `state`'s
  // streams.
  static void StepNetworks(State& state);
  // `noise` null: fresh noise drawn in place; `critic_weights` undefined:
  // unweighted.
  absl::Status Run(const TransitionTensors& batch, const UpdateNoise* noise,
                   const torch::Tensor& critic_weights);
  std::unique_ptr<State> state_;
};

}  // namespace softq

#endif  // SOFTQ_LEARNER_CUDA_GRAPH_UPDATE_H_
