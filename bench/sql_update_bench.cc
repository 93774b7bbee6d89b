// SQL updates per second at the reference sizes, C++ (SqlAgent::Update) side by
// side with the same update in Python PyTorch (tests/sql_reference.py, the
// user's alternative) on the same device (--device), in one run. Each row uses
// the same thread settings on both sides. A second table times the optimizer
// step alone over the same networks' parameters: LibTorch's torch::optim::Adam
// (a few ops per tensor) vs the FlatAdam the agent uses (one flat buffer).
//
//   bazel run //bench:sql_update_bench -- --threads=1,2 --batch_sizes=64
#include <torch/cuda.h>
#include <torch/nn/module.h>
#include <torch/optim/adam.h>
#include <torch/types.h>
#include <torch/utils.h>

#include <algorithm>
#include <cstdio>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "bench/op_census.h"
#include "common/flags.h"
#include "common/torch_compat.h"
#include "common/torch_threads.h"
#include "learner/cuda_graph_update.h"
#include "learner/fused_ops.h"
#include "learner/sql_agent.h"
#include "learner/sql_math.h"

ABSL_FLAG(int32_t, updates, 500, "timed updates per measurement");
ABSL_FLAG(
    std::string, threads, "1,2",
    "LibTorch thread counts to measure (OpenBLAS runs one thread, as in the "
    "binaries: its "
    "threads beside LibTorch's made 2 threads 3x slower than 1 on 2 cores)");
ABSL_FLAG(std::string, batch_sizes, "64", "minibatch sizes to measure");
ABSL_FLAG(std::string, python, "/usr/bin/python3",
          "Python with PyTorch, for the peer");
ABSL_FLAG(std::string, reference, "",
          "tests/sql_reference.py (default: from runfiles)");
ABSL_FLAG(std::string, device, "cpu", "cpu or cuda: where the C++ updates run");
ABSL_FLAG(bool, cuda_graph, false,
          "also time the updates replayed as a CUDA graph");
ABSL_FLAG(
    std::string, graph_streams, "1,2",
    "with --cuda_graph: the graph's stream counts to time (a column each)");
ABSL_FLAG(std::string, fused_kernels, "1",
          "on a CUDA device: 1, 0 or 1,0: the C++ updates with the fused "
          "kernels (where the "
          "build has them), without, or both (a column each)");
ABSL_FLAG(bool, op_names, false,
          "list the tensor operations of one update by name");

namespace {

std::vector<int> ParseList(const std::string& s) {
  std::vector<int> out;
  for (absl::string_view part : absl::StrSplit(s, ',', absl::SkipEmpty())) {
    int v = 0;
    if (absl::SimpleAtoi(part, &v) && v > 0) out.push_back(v);
  }
  return out;
}

// Seconds per call of `fn`, timed over `calls` calls after max(5, calls / 10)
// warm-up calls, with the device's queued work included.
double SecondsPerCall(int calls, const torch::Device& device,
                      const std::function<void()>& fn) {
  for (int i = 0; i < std::max(5, calls / 10); ++i) fn();
  softq::torch_compat::Synchronize(device);
  const absl::Time start = absl::Now();
  for (int i = 0; i < calls; ++i) fn();
  softq::torch_compat::Synchronize(device);
  return absl::ToDoubleSeconds(absl::Now() - start) / calls;
}

// A random multi-goal-sized batch, on `device` (resident there, as prefetched
// batches would be).
softq::TransitionTensors RandomBatch(int batch, const torch::Device& device) {
  softq::TransitionTensors t;
  t.observations = torch::randn({batch, 2}).to(device);
  t.actions = (torch::rand({batch, 2}) * 2 - 1).to(device);
  t.rewards = torch::randn({batch}).to(device);
  t.next_observations = torch::randn({batch, 2}).to(device);
  t.dones = torch::zeros({batch}).to(device);
  return t;
}

softq::SqlConfig BenchConfig(bool fused_kernels) {
  softq::SqlConfig config;
  config.fused_kernels = fused_kernels;
  return config;
}

// C++ updates per second; with `graph_streams` > 0, through a CudaGraphUpdate
// on that many streams (its error if it has none).
absl::StatusOr<double> CppUpdatesPerSecond(int updates, int batch,
                                           const torch::Device& device,
                                           int graph_streams,
                                           bool fused_kernels) {
  torch::manual_seed(0);
  softq::SqlAgent agent(BenchConfig(fused_kernels), device);
  const softq::TransitionTensors t = RandomBatch(batch, device);
  if (graph_streams == 0)
    return 1.0 / SecondsPerCall(updates, device, [&] { agent.Update(t); });
  absl::StatusOr<std::unique_ptr<softq::CudaGraphUpdate>> g =
      softq::CudaGraphUpdate::Create(&agent, /*warmup_updates=*/3,
                                     graph_streams);
  if (!g.ok()) return g.status();
  absl::Status failed;
  const double seconds = SecondsPerCall(updates, device, [&] {
    if (failed.ok()) failed = (*g)->Update(t);
  });
  if (!failed.ok()) return failed;
  return 1.0 / seconds;
}

// The tensor operations of one eager update at `batch` (after three warm-up
// updates), as OpCensus counts them: what a GPU launches one or more kernels
// for.
std::pair<int64_t, std::map<std::string, int64_t>> OperationsPerUpdate(
    int batch, const torch::Device& device) {
  torch::manual_seed(0);
  softq::SqlAgent agent(softq::SqlConfig{}, device);
  const softq::TransitionTensors t = RandomBatch(batch, device);
  for (int i = 0; i < 3; ++i) agent.Update(t);
  softq::OpCensus census;
  agent.Update(t);
  return {census.total(), census.by_name()};
}

struct KernelTiming {
  double aten_us;
  double fused_us;  // < 0: the fused kernel does not take these tensors here
};

// The SVGD step's gradient as the update on a GPU asks for it (K = 32
// particles, the first 16 fixed, slices of one [B, 32, 2] tensor; Q's action
// gradient in, the squashing's term added, the gradient padded to all 32):
// sql::SvgdLossGradient by ATen operations vs by the fused CUDA kernel, per
// call.
KernelTiming SteinDirectionMicros(int calls, int batch,
                                  const torch::Device& device) {
  torch::manual_seed(0);
  const torch::Tensor all =
      torch::rand({batch, 32, 2}, torch::TensorOptions().device(device)) * 2 -
      1;
  const torch::Tensor fixed = all.slice(1, 0, 16), updated = all.slice(1, 16);
  const torch::Tensor grad_log_p =
      torch::randn({batch, 16, 2}, all.options()) * 5;
  const auto run = [&](bool fused) {
    return softq::sql::SvgdLossGradient(
        fixed, updated, grad_log_p,
        {/*squashed=*/true, /*pad_fixed=*/true, fused});
  };
  KernelTiming t{1e6 * SecondsPerCall(calls, device, [&] { run(false); }),
                 -1.0};
  if (!softq::sql::FusedSteinSupports(fixed, updated, grad_log_p)) return t;
  t.fused_us = 1e6 * SecondsPerCall(calls, device, [&] { run(true); });
  return t;
}

// The critic's soft TD step (target and J_Q's gradient) at the update's shapes
// (M = 16 value particles; rewards and dones strided like the CUDA graph's
// packed batch): the ATen operations vs the fused CUDA kernel, per call.
KernelTiming SoftTdMicros(int calls, int batch, const torch::Device& device) {
  torch::manual_seed(0);
  const auto options = torch::TensorOptions().device(device);
  const torch::Tensor packed = torch::randn({batch, 8}, options);
  const torch::Tensor rewards = packed.select(1, 6);
  const torch::Tensor dones = packed.select(1, 7).gt(1.5).to(torch::kFloat);
  const torch::Tensor q = torch::randn({batch}, options);
  const torch::Tensor next_q = torch::randn({batch, 16}, options);
  const auto run = [&](bool fused) {
    return softq::sql::SoftCriticGradient(q, next_q, rewards, dones, 2, 0.1,
                                          0.99, fused);
  };
  KernelTiming t{1e6 * SecondsPerCall(calls, device, [&] { run(false); }),
                 -1.0};
  if (!softq::sql::FusedSoftTdSupports(q, next_q, rewards, dones)) return t;
  t.fused_us = 1e6 * SecondsPerCall(calls, device, [&] { run(true); });
  return t;
}

// A fused kernel beside the ATen operations it replaces, one row per batch size
// (that the two agree is tests/gpu_update_test's GpuFusedKernels).
void PrintKernelTable(const std::string& title, const std::vector<int>& batches,
                      const std::function<KernelTiming(int batch)>& time) {
  std::cout << "\n" << title << ", same run\n";
  std::cout << absl::StrFormat("%6s %14s %18s %8s\n", "batch", "ATen ops us",
                               "fused kernel us", "ratio");
  for (int batch : batches) {
    const KernelTiming t = time(batch);
    if (t.fused_us < 0) {
      std::cout << absl::StrFormat(
          "%6d %14.1f %18s %8s  %s\n", batch, t.aten_us, "n/a", "",
          "(no fused kernel in this build or on this device)");
      continue;
    }
    std::cout << absl::StrFormat("%6d %14.1f %18.1f %7.2fx\n", batch, t.aten_us,
                                 t.fused_us, t.aten_us / t.fused_us);
  }
}

struct OptimizerTiming {
  double torch_adam_us, flat_adam_us;
};

// Microseconds per optimizer step over copies of an SqlAgent's Q and
// sampling-network parameters, gradients handed over as backward would,
// torch::optim::Adam vs FlatAdam, both from the same parameters on the same
// gradients (that they take the same steps is tests/flat_adam_test, and on a
// GPU tests/gpu_update_test).
OptimizerTiming OptimizerStepMicros(int steps, const torch::Device& device) {
  torch::manual_seed(0);
  softq::SqlAgent agent(softq::SqlConfig{}, device);
  std::vector<torch::Tensor> start, gradients;
  for (torch::nn::Module* m :
       {static_cast<torch::nn::Module*>(agent.q().get()),
        static_cast<torch::nn::Module*>(agent.policy().get())}) {
    for (const torch::Tensor& p : m->parameters()) {
      start.push_back(p.detach().clone());
      gradients.push_back(torch::randn_like(p));
    }
  }
  auto copies = [&] {
    std::vector<torch::Tensor> out;
    for (const torch::Tensor& p : start)
      out.push_back(p.clone().requires_grad_(true));
    return out;
  };
  std::vector<torch::Tensor> adam_params = copies(), flat_params = copies();
  torch::optim::Adam adam(adam_params, torch::optim::AdamOptions(3e-4));
  softq::FlatAdam flat(flat_params, 3e-4);
  // Neither optimizer writes to the gradients, so both can be handed the same
  // tensors.
  auto hand_over = [&](std::vector<torch::Tensor>& params) {
    for (size_t i = 0; i < params.size(); ++i)
      params[i].mutable_grad() = gradients[i];
  };
  const double torch_adam = SecondsPerCall(steps, device, [&] {
    hand_over(adam_params);
    adam.step();
  });
  const double flat_adam = SecondsPerCall(steps, device, [&] {
    flat.ZeroGrad();
    hand_over(flat_params);
    flat.Step();
  });
  return {1e6 * torch_adam, 1e6 * flat_adam};
}

// The same update in Python PyTorch, on `device` ("cpu" or "cuda"); -1 when it
// printed no rate (no such interpreter, or no torch for it).
double PythonUpdatesPerSecond(const std::string& python,
                              const std::string& script, int updates, int batch,
                              int threads, const std::string& device) {
  const std::string cmd = absl::StrFormat(
      "OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=%d %s %s bench %d %d %d %s",
      threads, python, script, updates, batch, threads, device);
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(cmd.c_str(), "r"), pclose);
  if (!pipe) return -1;
  char line[256];
  double rate = -1;
  while (fgets(line, sizeof(line), pipe.get()) != nullptr) {
    std::sscanf(line, "updates_per_second %lf", &rate);
  }
  return rate;
}

}  // namespace

int main(int argc, char** argv) {
  softq::RestartWithOpenBlasKernelsForThisCpu(argv);
  if (auto code =
          softq::ParseFlags(argc, argv, "SQL update throughput, C++ vs Python");
      code) {
    return *code;
  }
  std::string script = absl::GetFlag(FLAGS_reference);
  if (script.empty())
    script = std::string(argv[0]) + ".runfiles/softq/tests/sql_reference.py";
  const int updates = absl::GetFlag(FLAGS_updates);
  const std::string device_flag = absl::GetFlag(FLAGS_device);
  if (device_flag != "cpu" &&
      !(device_flag == "cuda" && torch::cuda::is_available())) {
    return softq::ReportFlagError(
        argv[0],
        absl::InvalidArgumentError(
            "--device=" + device_flag +
            ": expected cpu, or cuda on a machine with a CUDA device"));
  }
  const torch::Device device(device_flag == "cuda" ? torch::kCUDA
                                                   : torch::kCPU);
  std::cout << "SQL update: Q and policy (128,128), M=16 value particles, K=32 "
               "kernel "
               "particles, multi-goal sizes (obs 2, action 2)\n";
  const bool graph = absl::GetFlag(FLAGS_cuda_graph);
  const std::vector<int> graph_streams =
      graph ? ParseList(absl::GetFlag(FLAGS_graph_streams))
            : std::vector<int>{};
  // The fused-kernel settings to time: the first for the eager column.
  std::vector<bool> fused;
  for (absl::string_view v :
       absl::StrSplit(absl::GetFlag(FLAGS_fused_kernels), ',')) {
    if (v != "0" && v != "1") {
      return softq::ReportFlagError(
          argv[0], absl::InvalidArgumentError(absl::StrCat(
                       "--fused_kernels=", absl::GetFlag(FLAGS_fused_kernels),
                       ": expected 1, 0, 1,0 or 0,1")));
    }
    fused.push_back(v == "1");
  }
  // A column per graph variant: streams, with or without the fused kernels.
  std::vector<std::pair<int, bool>> variants;
  std::string graph_columns;
  for (bool f : fused) {
    for (int streams : graph_streams) {
      variants.emplace_back(streams, f);
      absl::StrAppend(
          &graph_columns,
          absl::StrFormat(" %24s",
                          absl::StrCat("graph ", streams, " stream",
                                       f ? "" : " unfused", " upd/s")));
    }
  }
  std::cout << absl::StrFormat(
      "%6s %8s %14s%s %14s %8s  %s\n", "batch", "threads",
      fused.front() ? "C++ upd/s" : "C++ unfused", graph_columns,
      "Python upd/s", "ratio", "C++ runtime");
  std::string graph_error;
  for (int batch : ParseList(absl::GetFlag(FLAGS_batch_sizes))) {
    for (int threads : ParseList(absl::GetFlag(FLAGS_threads))) {
      const std::string runtime = softq::ConfigureTorchThreads(threads);
      const double cpp = *CppUpdatesPerSecond(
          updates, batch, device, /*graph_streams=*/0, fused.front());
      std::string graph_cells;
      for (const auto& [streams, f] : variants) {
        absl::StatusOr<double> g =
            CppUpdatesPerSecond(updates, batch, device, streams, f);
        absl::StrAppend(
            &graph_cells,
            absl::StrFormat(" %24s",
                            g.ok() ? absl::StrFormat("%.1f", *g) : "n/a"));
        if (!g.ok())
          graph_error =
              absl::StrCat(streams, " stream(s): ", g.status().message());
      }
      const double py =
          PythonUpdatesPerSecond(absl::GetFlag(FLAGS_python), script, updates,
                                 batch, threads, device_flag);
      // (No Python figure, e.g. no torch for that interpreter: n/a, not a
      // ratio.)
      std::cout << absl::StrFormat(
                       "%6d %8d %14.1f%s %14s %8s  %s\n", batch, threads, cpp,
                       graph_cells,
                       py > 0 ? absl::StrFormat("%.1f", py) : "n/a",
                       py > 0 ? absl::StrFormat("%.2fx", cpp / py) : "n/a",
                       runtime)
                << std::flush;
    }
  }
  if (!graph_error.empty()) std::cout << "CUDA graph: " << graph_error << "\n";
  const auto [operations, by_name] = OperationsPerUpdate(64, device);
  std::cout << "\nTensor operations per update (batch 64, eager; on a GPU each "
               "is one or more "
               "kernel launches): "
            << operations << "\n";
  if (absl::GetFlag(FLAGS_op_names)) {
    std::vector<std::pair<int64_t, std::string>> sorted;
    for (const auto& [name, count] : by_name) sorted.emplace_back(-count, name);
    std::sort(sorted.begin(), sorted.end());
    for (const auto& [count, name] : sorted) {
      std::cout << absl::StrFormat("%8d  %s\n", -count, name);
    }
  }
  const std::vector<int> batches = ParseList(absl::GetFlag(FLAGS_batch_sizes));
  PrintKernelTable(
      "SVGD step's gradient (squashing term, kernel, bandwidth, direction; 16 "
      "fixed and 16 updated particles per state)",
      batches, [&](int batch) {
        return SteinDirectionMicros(10 * updates, batch, device);
      });
  PrintKernelTable(
      "Soft TD step (target and the critic loss's gradient; M = 16)", batches,
      [&](int batch) { return SoftTdMicros(10 * updates, batch, device); });
  std::cout << "\nOptimizer step (gradients handed over, then step) over the Q "
               "and sampling "
               "networks' parameters, same run\n";
  std::cout << absl::StrFormat("%8s %18s %18s %8s\n", "threads",
                               "torch::optim::Adam us", "FlatAdam us", "ratio");
  for (int threads : ParseList(absl::GetFlag(FLAGS_threads))) {
    softq::ConfigureTorchThreads(threads);
    const OptimizerTiming t = OptimizerStepMicros(20 * updates, device);
    std::cout << absl::StrFormat(
        "%8d %18.1f %18.1f %7.2fx\n", threads, t.torch_adam_us, t.flat_adam_us,
        t.flat_adam_us > 0 ? t.torch_adam_us / t.flat_adam_us : 0.0);
  }
  return 0;
}
