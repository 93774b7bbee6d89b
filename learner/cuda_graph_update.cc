#include "learner/cuda_graph_update.h"

#include <optional>
#include <utility>
#include <vector>

#include "absl/memory/memory.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

#if SOFTQ_CUDA_GRAPHS
// Only what libc10_cuda/libtorch_cuda define or the device-generic c10 API: no
// inline call into the CUDA runtime, so nothing links against libcudart
// directly (a wheel's CUDA runtime is loaded by LibTorch itself).
#include <ATen/cuda/CUDAGraph.h>
#include <c10/core/Event.h>
#include <c10/core/StreamGuard.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAStream.h>
#endif

namespace softq {

#if SOFTQ_CUDA_GRAPHS

struct CudaGraphUpdate::State {
  State(SqlAgent* agent, int warmup_updates, c10::cuda::CUDAStream stream)
      : agent(agent), warmup_left(warmup_updates), stream(stream) {}

  SqlAgent* agent;
  int warmup_left;
  c10::cuda::CUDAStream
      stream;  // warm-up and capture run here, never on the default stream
  std::optional<c10::cuda::CUDAStream>
      critic_stream;  // with two streams: the critic's half
  // With two streams, also: the policy's weight and bias gradients beside its
  // backward pass.
  std::optional<c10::cuda::CUDAStream> gradient_stream;
  // ... and Q's weight and bias gradients beside the critic's backward pass.
  std::optional<c10::cuda::CUDAStream> critic_gradient_stream;
  int64_t batch_size = -1;  // fixed by the first batch
  bool draws_noise =
      true;  // fixed by the first call: noise drawn in the graph or given
  // Defined by the first call when it weighs the critic's loss (prioritized
  // replay): [B], the graph's input that the agent's critic_weights_ is.
  torch::Tensor weights;
  // The graph's batch input at a fixed address: one tensor [B, 2 O + D + 2]
  // holding observations | actions | reward | next observations | done, so that
  // a batch is one launch to copy in; `inputs` are views of its columns.
  torch::Tensor packed;
  TransitionTensors inputs;
  UpdateNoise noise;
  at::cuda::CUDAGraph graph;
  bool captured = false;
  bool capture_failed =
      false;  // a capture threw: the graph is unusable, Run refuses
};

namespace {

// Makes `waiting` wait for the work queued so far on `queued`.
void StreamWaits(const c10::cuda::CUDAStream& waiting,
                 const c10::cuda::CUDAStream& queued) {
  c10::Event event(c10::DeviceType::CUDA);
  event.record(queued);
  event.block(waiting);
}

// Side work on a stream of its own, forked from the current stream at each Run;
// Join makes the current stream wait for all of it. The work (and the tensors
// it holds) is kept until then, so no memory it reads is handed out again
// before it ran.
class StreamSideWork : public SideWork {
 public:
  explicit StreamSideWork(c10::cuda::CUDAStream side) : side_(side) {}
  void Run(std::function<void()> work) override {
    StreamWaits(side_, c10::cuda::getCurrentCUDAStream(side_.device_index()));
    {
      c10::StreamGuard on_side_stream(side_);
      work();
    }
    kept_.push_back(std::move(work));
  }
  // (Nothing to wait for if nothing ran: inside a capture, waiting on a stream
  // that never joined it is an error.)
  void Join() {
    if (kept_.empty()) return;
    StreamWaits(c10::cuda::getCurrentCUDAStream(side_.device_index()), side_);
    kept_.clear();
  }

 private:
  c10::cuda::CUDAStream side_;
  std::vector<std::function<void()>> kept_;
};

}  // namespace

bool CudaGraphUpdate::Supported() { return true; }

// The device part of one update on the current stream; with a critic stream,
// the critic's half forks onto it and joins back (inside a capture, the fork
// and join are graph edges).
void CudaGraphUpdate::StepNetworks(State& s) {
  SqlAgent& agent = *s.agent;
  // In the graph: each replay draws afresh (the default CUDA generator is
  // registered with every captured graph, which advances its offset on replay).
  // Each half draws its own noise on its own stream, so the policy's half does
  // not wait for the critic's.
  if (!s.critic_stream.has_value()) {
    if (s.draws_noise) {
      s.noise.policy_noise.normal_();
      s.noise.value_actions.uniform_(-1.0, 1.0);
    }
    agent.StepNetworks(s.inputs, s.noise);
    return;
  }
  const c10::cuda::CUDAStream critic = *s.critic_stream;
  const c10::cuda::CUDAStream main =
      c10::cuda::getCurrentCUDAStream(critic.device_index());
  StreamWaits(critic, main);  // the critic's half sees the inputs
  if (s.draws_noise) s.noise.policy_noise.normal_();
  StreamSideWork beside_backward(*s.gradient_stream);
  // The optimizers' step counts off the critical path: beside the policy's
  // backward pass, and first on the critic's stream.
  beside_backward.Run([&agent] { agent.policy_optimizer().CountNextStep(); });
  {
    c10::StreamGuard on_critic_stream(critic);
    agent.q_optimizer().CountNextStep();
  }
  agent.PolicyGradients(s.inputs, s.noise, &beside_backward);
  // The non-finite guard (SqlAgent::StepNetworks): each half checks its loss
  // and its whole gradients on its own stream; the critic's stream then waits
  // for the policy's check (which also orders Q's step after the policy's read
  // of Q), records the verdict, and both steps take it: both skipped, or both
  // taken. No host branch: the graph replays the same kernels either way.
  beside_backward.Join();
  agent.CheckPolicyHalf();
  c10::Event policy_checked(c10::DeviceType::CUDA);
  policy_checked.record(main);
  c10::Event verdict(c10::DeviceType::CUDA);
  {
    c10::StreamGuard on_critic_stream(critic);
    if (s.draws_noise) s.noise.value_actions.uniform_(-1.0, 1.0);
    StreamSideWork beside_critic_backward(*s.critic_gradient_stream);
    agent.CriticGradients(s.inputs, s.noise, &beside_critic_backward);
    beside_critic_backward.Join();
    agent.CheckCriticHalf();
    policy_checked.block(critic);
    agent.RecordChecks();
    verdict.record(critic);
    agent.q_optimizer().Step(agent.skip_);
  }
  verdict.block(main);
  agent.policy_optimizer().Step(agent.skip_);
  StreamWaits(main, critic);
}

absl::StatusOr<std::unique_ptr<CudaGraphUpdate::State>>
CudaGraphUpdate::NewState(SqlAgent* agent, int warmup_updates, int streams) {
  const c10::DeviceIndex index = agent->device().has_index()
                                     ? agent->device().index()
                                     : c10::cuda::current_device();
  auto state = std::make_unique<State>(
      agent, warmup_updates, c10::cuda::getStreamFromPool(false, index));
  if (streams == 2) {
    state->critic_stream = c10::cuda::getStreamFromPool(false, index);
    state->gradient_stream = c10::cuda::getStreamFromPool(false, index);
    state->critic_gradient_stream = c10::cuda::getStreamFromPool(false, index);
  }
  return state;
}

absl::Status CudaGraphUpdate::Run(const TransitionTensors& batch,
                                  const UpdateNoise* noise,
                                  const torch::Tensor& critic_weights) {
  State& s = *state_;
  if (s.capture_failed) {
    return absl::FailedPreconditionError(
        "CUDA graph update: its capture failed earlier (that update's error "
        "said why); "
        "update eagerly instead");
  }
  SqlAgent& agent = *s.agent;
  const int64_t size = batch.observations.size(0);
  if (s.batch_size >= 0 && size != s.batch_size) {
    return absl::InvalidArgumentError(absl::StrCat(
        "batch of ", size, " transitions; the CUDA graph was captured for ",
        s.batch_size));
  }
  const bool weighted = critic_weights.defined();
  if (weighted &&
      (critic_weights.dim() != 1 || critic_weights.size(0) != size)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "critic weights of shape [",
        absl::StrJoin(critic_weights.sizes(), ", "), "] for a batch of ", size,
        " transitions; expected [", size, "]"));
  }
  if (s.batch_size >= 0 && s.weights.defined() != weighted) {
    return absl::FailedPreconditionError(absl::StrCat(
        "CUDA graph update: ",
        weighted ? "critic weights" : "no critic weights",
        " given; every update must pass them or none, as the first did (the "
        "graph was captured ",
        s.weights.defined() ? "weighing" : "not weighing",
        " the critic's loss)"));
  }
  try {
    if (s.batch_size < 0) {
      s.batch_size = size;
      s.draws_noise = noise == nullptr;
      const int64_t o = agent.config().observation_dim,
                    d = agent.config().action_dim;
      s.packed = torch::empty({size, RowLayout(o, d).width()},
                              torch::TensorOptions().device(agent.device()));
      s.inputs = PackedTransitions(s.packed, o, d);
      s.noise = agent.DrawNoise(size);
      if (weighted) {
        s.weights = torch::empty({size}, torch::TensorOptions()
                                             .dtype(torch::kFloat32)
                                             .device(agent.device()));
      }
    } else if (s.draws_noise != (noise == nullptr)) {
      return absl::FailedPreconditionError(
          absl::StrCat("CUDA graph update: ",
                       s.draws_noise ? "noise given" : "no noise given",
                       "; every update must pass noise or none, as the first "
                       "did (the graph ",
                       s.draws_noise ? "draws its own" : "copies it in", ")"));
    }
    // The batch in one launch: a copy of a packed batch (from page-locked host
    // memory, asynchronous, its allocator keeping it until the copy ran), a
    // concatenation on the device, or one copy of the concatenation in
    // page-locked memory.
    if (batch.packed.defined() && batch.packed.sizes() == s.packed.sizes()) {
      s.packed.copy_(batch.packed, /*non_blocking=*/true);
    } else {
      const std::vector<torch::Tensor> columns = {
          batch.observations, batch.actions, batch.rewards.unsqueeze(1),
          batch.next_observations, batch.dones.unsqueeze(1)};
      if (batch.observations.device() == s.packed.device()) {
        torch::cat_out(s.packed, columns, 1);
      } else {
        s.packed.copy_(torch::cat(columns, 1).pin_memory(),
                       /*non_blocking=*/true);
      }
    }
    if (noise != nullptr) {
      s.noise.value_actions.copy_(noise->value_actions, true);
      s.noise.policy_noise.copy_(noise->policy_noise, true);
    }
    // The warm-up updates and the capture read the weights where every
    // replay's are copied to.
    if (weighted) s.weights.copy_(critic_weights, /*non_blocking=*/true);
    agent.critic_weights_ = s.weights;
    if (!s.captured) {
      const c10::cuda::CUDAStream current =
          c10::cuda::getCurrentCUDAStream(s.stream.device_index());
      StreamWaits(s.stream, current);
      {
        c10::StreamGuard on_side_stream(s.stream);
        // Warm-up on the same streams as the capture: each stream's lazy setup
        // (cuBLAS workspaces) happens before it.
        if (s.warmup_left > 0) {
          StepNetworks(s);
          --s.warmup_left;
        } else {
          s.graph.capture_begin();
          try {
            StepNetworks(s);
          } catch (const c10::Error&) {
            // End the stream's capture mode (whatever the graph it gives), so
            // that later CUDA work on it does not join a capture that never
            // ends.
            s.capture_failed = true;
            try {
              s.graph.capture_end();
            } catch (const c10::Error&) {
            }
            throw;
          }
          s.graph.capture_end();
          s.captured = true;
        }
      }
      StreamWaits(current, s.stream);
    }
    // Capture records the kernels without running them: this update, too, is a
    // replay.
    if (s.captured) s.graph.replay();
    agent.FinishUpdate();
  } catch (const c10::Error& e) {
    return absl::InternalError(
        absl::StrCat("CUDA graph update: ", e.what_without_backtrace()));
  }
  return absl::OkStatus();
}

#else  // !SOFTQ_CUDA_GRAPHS

struct CudaGraphUpdate::State {
  bool captured = false;
  UpdateNoise noise;
};

bool CudaGraphUpdate::Supported() { return false; }

absl::StatusOr<std::unique_ptr<CudaGraphUpdate::State>>
CudaGraphUpdate::NewState(SqlAgent*, int, int) {
  return absl::UnimplementedError(
      "CUDA graphs: this build has none (build with CMake against a CUDA "
      "LibTorch and CUDA's "
      "headers: deploy/gpu/README.md)");
}

absl::Status CudaGraphUpdate::Run(const TransitionTensors&, const UpdateNoise*,
                                  const torch::Tensor&) {
  return absl::UnimplementedError("CUDA graphs: this build has none");
}

#endif  // SOFTQ_CUDA_GRAPHS

int CudaGraphUpdate::DefaultStreams(Algorithm algorithm) {
  return algorithm == Algorithm::kDdpg ? 1 : 2;
}

absl::StatusOr<std::unique_ptr<CudaGraphUpdate>> CudaGraphUpdate::Create(
    SqlAgent* agent, int warmup_updates, int streams) {
  if (warmup_updates < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "warmup_updates is ", warmup_updates, ", must be at least 1"));
  }
  if (streams != 1 && streams != 2) {
    return absl::InvalidArgumentError(
        absl::StrCat("streams is ", streams, ", must be 1 or 2"));
  }
  if (streams == 2 && agent->config().algorithm == Algorithm::kDdpg) {
    return absl::InvalidArgumentError(
        "streams is 2: the DDPG baseline's policy pass adds into Q's "
        "gradients, which the "
        "critic's half then drops; it runs on one stream");
  }
  if (!agent->device().is_cuda()) {
    return absl::FailedPreconditionError(
        absl::StrCat("CUDA graphs need the learner on a CUDA device; it is on ",
                     agent->device().str()));
  }
  absl::StatusOr<std::unique_ptr<State>> state =
      NewState(agent, warmup_updates, streams);
  if (!state.ok()) return state.status();
  return absl::WrapUnique(new CudaGraphUpdate(*std::move(state)));
}

bool CudaGraphUpdate::captured() const { return state_->captured; }

UpdateNoise CudaGraphUpdate::last_noise() const {
  return {state_->noise.value_actions.defined()
              ? state_->noise.value_actions.clone()
              : torch::Tensor(),
          state_->noise.policy_noise.defined()
              ? state_->noise.policy_noise.clone()
              : torch::Tensor()};
}

absl::Status CudaGraphUpdate::Update(const TransitionTensors& batch,
                                     const torch::Tensor& critic_weights) {
  return Run(batch, nullptr, critic_weights);
}

absl::Status CudaGraphUpdate::Update(const TransitionTensors& batch,
                                     const UpdateNoise& noise,
                                     const torch::Tensor& critic_weights) {
  return Run(batch, &noise, critic_weights);
}

CudaGraphUpdate::CudaGraphUpdate(std::unique_ptr<State> state)
    : state_(std::move(state)) {}
CudaGraphUpdate::~CudaGraphUpdate() = default;

}  // namespace softq
