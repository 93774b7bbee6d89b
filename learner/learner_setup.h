// The learner's start-up choices from its flags: the device, the networks'
// starting point, CUDA graph or eager updates. Each prints what it chose on
// `log`. Thread-compatible.
#ifndef SOFTQ_LEARNER_LEARNER_SETUP_H_
#define SOFTQ_LEARNER_LEARNER_SETUP_H_

#include <torch/types.h>

#include <cstdint>
#include <memory>
#include <ostream>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "learner/cuda_graph_update.h"
#include "learner/sql_agent.h"

namespace softq {

// --device: "cpu", "cuda" or "auto" (cuda when LibTorch sees a device).
// InvalidArgument "--device=cuda: this LibTorch sees no CUDA device".
absl::StatusOr<torch::Device> ChooseDevice(absl::string_view device);

struct NetworkStart {
  std::string init_from;  // a learner checkpoint dir to start from; "": none
  std::string init_networks = "all";  // "all" (Q and policy) or "policy"
  std::string checkpoint_dir;  // the run's own: resumed when one is there
};

// Sets `agent`'s networks per `start`: init_from's first, then the run's own
// checkpoint over them when checkpoint_dir holds one (its step, and with it
// the annealing's point, SqlConfig::anneal_updates, comes back too; init_from
// leaves the step at 0). Prints the annealing's span and its values at the
// start step when there is one. Returns the restored parameter version (0:
// nothing restored). An error's message is the line to
// print after "learner: " ("--init_from=DIR: ..." or the checkpoint's).
absl::StatusOr<uint64_t> StartNetworks(SqlAgent& agent,
                                       const NetworkStart& start,
                                       std::ostream& log);

struct GraphChoice {
  std::unique_ptr<CudaGraphUpdate> graph;  // null: eager updates
  int streams = 1;                         // the graph's streams
};

// --cuda_graph: "auto" (a graph on a GPU where the build can capture one),
// "true" (a graph, or the error), "false" (eager); `streams` as
// --cuda_graph_streams (0: CudaGraphUpdate::DefaultStreams). Errors keep
// CudaGraphUpdate::Create's code, phrased "--cuda_graph=<flag>: ...". An agent
// with an annealing schedule (SqlConfig::anneal_updates) takes eager updates:
// "auto" chooses them, "true" is InvalidArgument "--anneal_updates=N with
// --cuda_graph=true: ...".
absl::StatusOr<GraphChoice> ChooseCudaGraph(SqlAgent& agent,
                                            absl::string_view flag, int streams,
                                            std::ostream& log);

}  // namespace softq

#endif  // SOFTQ_LEARNER_LEARNER_SETUP_H_
