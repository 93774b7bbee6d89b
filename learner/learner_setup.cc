#include "learner/learner_setup.h"

#include <torch/cuda.h>

#include "absl/strings/str_cat.h"
#include "learner/learner_checkpoint.h"

namespace softq {

absl::StatusOr<torch::Device> ChooseDevice(absl::string_view device) {
  if (device == "cuda" && !torch::cuda::is_available()) {
    return absl::InvalidArgumentError(
        "--device=cuda: this LibTorch sees no CUDA device");
  }
  return (device == "cuda" || (device == "auto" && torch::cuda::is_available()))
             ? torch::Device(torch::kCUDA)
             : torch::Device(torch::kCPU);
}

absl::StatusOr<uint64_t> StartNetworks(SqlAgent& agent,
                                       const NetworkStart& start,
                                       std::ostream& log) {
  uint64_t version = 0;
  if (!start.init_from.empty()) {
    if (absl::Status s = InitializeFromLearnerCheckpoint(
            agent, start.init_from,
            /*with_q=*/start.init_networks == "all");
        !s.ok()) {
      return absl::Status(
          s.code(),
          absl::StrCat("--init_from=", start.init_from, ": ", s.message()));
    }
    log << "learner: networks initialized from "
        << LearnerCheckpointPath(start.init_from) << " (" << start.init_networks
        << ")" << std::endl;
  }
  if (!start.checkpoint_dir.empty()) {
    absl::StatusOr<uint64_t> restored =
        RestoreLearnerCheckpoint(agent, start.checkpoint_dir);
    if (restored.ok()) {
      version = *restored;
      log << "learner: resumed from "
          << LearnerCheckpointPath(start.checkpoint_dir) << " at step "
          << agent.step() << ", version " << version << std::endl;
    } else if (!absl::IsNotFound(restored.status())) {
      return restored.status();
    }
  }
  if (const SqlConfig& c = agent.config(); c.anneal_updates > 0) {
    const ScheduledValues now = agent.scheduled();
    log << "learner: annealing over the first " << c.anneal_updates
        << " updates: alpha " << 1.0 / c.reward_scale << " to " << c.final_alpha
        << " (log-linear), SVGD particles " << c.kernel_particles << " to "
        << (c.anneal_particles ? 1 : c.kernel_particles)
        << " (linear); at step " << agent.step() << ": alpha " << now.alpha()
        << ", K " << now.kernel_particles << std::endl;
  }
  return version;
}

absl::StatusOr<GraphChoice> ChooseCudaGraph(SqlAgent& agent,
                                            absl::string_view flag, int streams,
                                            std::ostream& log) {
  // On a GPU an eager update is launch-bound (~200 updates/s whatever the
  // batch); its graph replays ~10x faster: the default wherever the build can
  // capture one.
  GraphChoice choice;
  choice.streams =
      streams != 0 ? streams
                   : CudaGraphUpdate::DefaultStreams(agent.config().algorithm);
  const bool cuda = agent.device().is_cuda();
  // A graph replays the constants and shapes of the update it captured: the
  // annealed reward scale and particle count would stay at their first values.
  if (const int64_t anneal = agent.config().anneal_updates; anneal > 0) {
    if (flag == "true") {
      return absl::InvalidArgumentError(absl::StrCat(
          "--anneal_updates=", anneal,
          " with --cuda_graph=true: a CUDA graph replays one update's reward "
          "scale and particle count, the schedule changes them (use "
          "--cuda_graph=auto or false)"));
    }
    if (flag == "auto" && cuda) {
      log << "learner: eager updates on the GPU: --anneal_updates changes "
             "the update's reward scale and particle count, which a CUDA "
             "graph fixes"
          << std::endl;
    }
    return choice;
  }
  if (flag == "true" ||
      (flag == "auto" && cuda && CudaGraphUpdate::Supported())) {
    absl::StatusOr<std::unique_ptr<CudaGraphUpdate>> g =
        CudaGraphUpdate::Create(&agent, /*warmup_updates=*/3, choice.streams);
    if (!g.ok()) {
      return absl::Status(
          g.status().code(),
          absl::StrCat("--cuda_graph=", flag, ": ", g.status().message()));
    }
    choice.graph = *std::move(g);
  } else if (flag == "auto" && cuda) {
    log << "learner: eager updates on the GPU: this build has no CUDA "
           "graphs (build with "
           "CMake against a CUDA LibTorch and CUDA's headers: "
           "deploy/gpu/README.md)"
        << std::endl;
  }
  return choice;
}

}  // namespace softq
