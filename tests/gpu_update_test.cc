// The learner's GPU paths against what the CPU tests establish. On a CUDA
// device: the update's gradients (one policy pass for all particles, the fused
// kernels, the written-out backward passes) are the CPU update's up to float
// rounding; a CUDA graph replays the eager update, importance weights
// included; the fused kernels give the ATen operations' numbers; FlatAdam
// takes torch::optim::Adam's steps. Every
// case skips without a CUDA device (Debian's LibTorch is CPU-only); on a GPU
// host, deploy/gpu/run_on_cuda_host.sh builds this test with CMake and runs it
// (`check`), and its demo's learner leaves out what a failed case covers. A
// poisoned batch (an infinite reward) is skipped on the device, eagerly and
// inside a replayed graph: the networks and optimizers stay as they were.
#include <gtest/gtest.h>
#include <torch/cuda.h>
#include <torch/nn/module.h>
#include <torch/optim/adam.h>
#include <torch/types.h>
#include <torch/utils.h>

#include <algorithm>
#include <limits>
#include <memory>
#include <vector>

#include "learner/cuda_graph_update.h"
#include "learner/flat_adam.h"
#include "learner/fused_ops.h"
#include "learner/sql_agent.h"
#include "learner/sql_math.h"

namespace softq {
namespace {

#define SKIP_WITHOUT_CUDA() \
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device"

// A multi-goal-sized batch (observations 2, actions 2) drawn on the CPU.
TransitionTensors RandomBatch(int64_t batch) {
  return {torch::randn({batch, 2}), torch::rand({batch, 2}) * 2 - 1,
          torch::randn({batch}), torch::randn({batch, 2}),
          (torch::rand({batch}) < 0.1).to(torch::kFloat)};
}

TransitionTensors On(const TransitionTensors& t, const torch::Device& device) {
  return {t.observations.to(device), t.actions.to(device), t.rewards.to(device),
          t.next_observations.to(device), t.dones.to(device)};
}

UpdateNoise On(const UpdateNoise& n, const torch::Device& device) {
  return {n.value_actions.to(device), n.policy_noise.to(device)};
}

SqlConfig Config(bool fused_kernels) {
  SqlConfig config;
  config.fused_kernels = fused_kernels;
  return config;
}

// Gives `to` the parameters of `from` (networks and target networks).
void CopyAgent(SqlAgent& from, SqlAgent& to) {
  torch::NoGradGuard no_grad;
  const auto copy = [](const torch::nn::Module& a, torch::nn::Module& b) {
    const std::vector<torch::Tensor> pa = a.parameters(), pb = b.parameters();
    ASSERT_EQ(pa.size(), pb.size());
    for (size_t i = 0; i < pa.size(); ++i) pb[i].copy_(pa[i]);
  };
  copy(*from.q(), *to.q());
  copy(*from.q_target(), *to.q_target());
  copy(*from.policy(), *to.policy());
  copy(*from.policy_target(), *to.policy_target());
}

// ||a - b|| / ||b|| over the gradients of two copies of one network (a on any
// device).
double RelativeGradientDifference(const torch::nn::Module& a,
                                  const torch::nn::Module& b) {
  double difference = 0, norm = 0;
  const std::vector<torch::Tensor> pa = a.parameters(), pb = b.parameters();
  for (size_t i = 0; i < pa.size(); ++i) {
    const torch::Tensor ga = pa[i].grad().cpu(), gb = pb[i].grad();
    difference += (ga - gb).pow(2).sum().item<double>();
    norm += gb.pow(2).sum().item<double>();
  }
  return std::sqrt(difference / norm);
}

TEST(GpuUpdate, GradientsAreTheCpuUpdatesUpToRounding) {
  SKIP_WITHOUT_CUDA();
  for (bool fused : {true, false}) {
    SCOPED_TRACE(fused ? "fused kernels" : "ATen operations");
    torch::manual_seed(0);
    SqlAgent cpu(Config(fused), torch::kCPU);
    SqlAgent gpu(Config(fused), torch::kCUDA);
    CopyAgent(cpu, gpu);
    const TransitionTensors batch = RandomBatch(64);
    const UpdateNoise noise = cpu.DrawNoise(64);
    cpu.PolicyGradients(batch, noise);
    cpu.CriticGradients(batch, noise);
    gpu.PolicyGradients(On(batch, torch::kCUDA), On(noise, torch::kCUDA));
    gpu.CriticGradients(On(batch, torch::kCUDA), On(noise, torch::kCUDA));
    EXPECT_LT(RelativeGradientDifference(*gpu.q(), *cpu.q()), 1e-4);
    EXPECT_LT(RelativeGradientDifference(*gpu.policy(), *cpu.policy()), 1e-3);
  }
}

// A CUDA graph on `streams` streams replays the eager update: two agents from
// the same parameters take 10 updates on the same batches and noise, with the
// fused kernels and without. `weighted`: with prioritized replay's importance
// weights too, new ones for every update (host tensors, as the learner's
// batch source gives them), set on the eager agent and passed to the graph.
void ExpectAGraphReplaysTheEagerUpdates(int streams, bool weighted = false) {
  for (bool fused : {true, false}) {
    SCOPED_TRACE(testing::Message() << "fused kernels " << fused);
    torch::manual_seed(0);
    SqlAgent eager(Config(fused), torch::kCUDA);
    torch::manual_seed(0);
    SqlAgent graphed(Config(fused), torch::kCUDA);
    absl::StatusOr<std::unique_ptr<CudaGraphUpdate>> graph =
        CudaGraphUpdate::Create(&graphed, /*warmup_updates=*/3, streams);
    ASSERT_TRUE(graph.ok()) << graph.status();
    // 3 warm-up updates, 1 captured, 6 replayed.
    for (int i = 0; i < 10; ++i) {
      const TransitionTensors batch = On(RandomBatch(64), torch::kCUDA);
      const UpdateNoise noise = eager.DrawNoise(64);
      const torch::Tensor weights =
          weighted ? 0.1 + torch::rand({64}) : torch::Tensor();
      eager.SetCriticWeights(weights);
      eager.Update(batch, noise);
      const absl::Status s = (*graph)->Update(batch, noise, weights);
      ASSERT_TRUE(s.ok()) << s;
    }
    EXPECT_TRUE((*graph)->captured());
    EXPECT_EQ(graphed.step(), eager.step());
    for (const auto& [a, b] :
         {std::pair{eager.q()->parameters(), graphed.q()->parameters()},
          std::pair{eager.policy()->parameters(),
                    graphed.policy()->parameters()}}) {
      for (size_t i = 0; i < a.size(); ++i) {
        EXPECT_LE((a[i] - b[i]).abs().max().item<double>(), 1e-5)
            << "parameter " << i;
      }
    }
    // Noise given to the first update must be given to every one; so must
    // weights, and of the batch's size; an update refused changes nothing.
    const TransitionTensors batch = On(RandomBatch(64), torch::kCUDA);
    const UpdateNoise noise = eager.DrawNoise(64);
    EXPECT_EQ((*graph)->Update(batch).code(),
              absl::StatusCode::kFailedPrecondition);
    EXPECT_EQ((*graph)
                  ->Update(batch, noise,
                           weighted ? torch::Tensor() : torch::ones({64}))
                  .code(),
              absl::StatusCode::kFailedPrecondition);
    if (weighted) {
      const absl::Status wrong_size =
          (*graph)->Update(batch, noise, torch::ones({32}));
      EXPECT_EQ(wrong_size.code(), absl::StatusCode::kInvalidArgument);
      EXPECT_NE(wrong_size.message().find("critic weights"), std::string::npos)
          << wrong_size;
    }
    EXPECT_EQ(graphed.step(), 10);
  }
}

// A CUDA graph on `streams` streams that draws its own noise draws new noise on
// every replay.
void ExpectAGraphToDrawItsNoiseAnewOnEveryReplay(int streams) {
  SqlAgent agent(SqlConfig{}, torch::kCUDA);
  absl::StatusOr<std::unique_ptr<CudaGraphUpdate>> graph =
      CudaGraphUpdate::Create(&agent, /*warmup_updates=*/3, streams);
  ASSERT_TRUE(graph.ok()) << graph.status();
  const TransitionTensors batch = On(RandomBatch(64), torch::kCUDA);
  for (int i = 0; i < 5; ++i)
    ASSERT_TRUE((*graph)->Update(batch).ok());  // to a replay
  ASSERT_TRUE((*graph)->captured());
  const UpdateNoise before = (*graph)->last_noise();
  ASSERT_TRUE((*graph)->Update(batch).ok());
  const UpdateNoise after = (*graph)->last_noise();
  EXPECT_FALSE(torch::equal(before.policy_noise, after.policy_noise));
  EXPECT_FALSE(torch::equal(before.value_actions, after.value_actions));
  EXPECT_EQ(agent.step(), 6);
}

#define SKIP_WITHOUT_CUDA_GRAPHS()   \
  SKIP_WITHOUT_CUDA();               \
  if (!CudaGraphUpdate::Supported()) \
  GTEST_SKIP() << "this build has no CUDA graphs"

// One case per stream count: run_on_cuda_host.sh runs the learner on one
// stream, or without a graph, by which of these fail.
TEST(GpuCudaGraph, OnOneStreamReplaysTheEagerUpdates) {
  SKIP_WITHOUT_CUDA_GRAPHS();
  ExpectAGraphReplaysTheEagerUpdates(1);
}

TEST(GpuCudaGraph, OnTwoStreamsReplaysTheEagerUpdates) {
  SKIP_WITHOUT_CUDA_GRAPHS();
  ExpectAGraphReplaysTheEagerUpdates(2);
}

// Prioritized replay's importance weights reach the graph's critic loss.
TEST(GpuCudaGraph, OnOneStreamReplaysTheWeightedEagerUpdates) {
  SKIP_WITHOUT_CUDA_GRAPHS();
  ExpectAGraphReplaysTheEagerUpdates(1, /*weighted=*/true);
}

TEST(GpuCudaGraph, OnTwoStreamsReplaysTheWeightedEagerUpdates) {
  SKIP_WITHOUT_CUDA_GRAPHS();
  ExpectAGraphReplaysTheEagerUpdates(2, /*weighted=*/true);
}

TEST(GpuCudaGraph, OnOneStreamDrawsItsOwnNoiseAnewOnEveryReplay) {
  SKIP_WITHOUT_CUDA_GRAPHS();
  ExpectAGraphToDrawItsNoiseAnewOnEveryReplay(1);
}

TEST(GpuCudaGraph, OnTwoStreamsDrawsItsOwnNoiseAnewOnEveryReplay) {
  SKIP_WITHOUT_CUDA_GRAPHS();
  ExpectAGraphToDrawItsNoiseAnewOnEveryReplay(2);
}

// Clones of the parameters of Q and the sampling network.
std::vector<torch::Tensor> NetworkParameters(SqlAgent& agent) {
  std::vector<torch::Tensor> out;
  for (const torch::Tensor& p : agent.q()->parameters())
    out.push_back(p.detach().clone());
  for (const torch::Tensor& p : agent.policy()->parameters())
    out.push_back(p.detach().clone());
  return out;
}

bool SameParameters(const std::vector<torch::Tensor>& a,
                    const std::vector<torch::Tensor>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (!torch::equal(a[i], b[i])) return false;
  return true;
}

// `streams` 0: eager updates on the GPU (FlatAdam's fused kernel told to skip
// by its found_inf); 1 or 2: a CUDA graph, the poison arriving in a replay.
// The poisoned update changes nothing (the next good one gives what an agent
// that never saw the poison gives) and is counted.
void ExpectAPoisonedUpdateToBeSkippedOnTheGpu(int streams) {
  torch::manual_seed(0);
  SqlAgent agent(SqlConfig{}, torch::kCUDA);
  torch::manual_seed(0);
  SqlAgent clean(SqlConfig{}, torch::kCUDA);
  std::unique_ptr<CudaGraphUpdate> graph;
  if (streams > 0) {
    absl::StatusOr<std::unique_ptr<CudaGraphUpdate>> made =
        CudaGraphUpdate::Create(&agent, /*warmup_updates=*/3, streams);
    ASSERT_TRUE(made.ok()) << made.status();
    graph = *std::move(made);
  }
  const auto update = [&](const TransitionTensors& batch,
                          const UpdateNoise& noise) {
    if (graph == nullptr) {
      agent.Update(batch, noise);
    } else {
      ASSERT_TRUE(graph->Update(batch, noise).ok());
    }
  };
  for (int i = 0; i < 5; ++i) {  // to a replay
    const TransitionTensors batch = On(RandomBatch(64), torch::kCUDA);
    const UpdateNoise noise = clean.DrawNoise(64);
    update(batch, noise);
    clean.Update(batch, noise);
  }
  if (graph != nullptr) {
    ASSERT_TRUE(graph->captured());
  }
  const std::vector<torch::Tensor> before = NetworkParameters(agent);
  TransitionTensors poisoned = RandomBatch(64);
  poisoned.rewards[7] = std::numeric_limits<float>::infinity();
  update(On(poisoned, torch::kCUDA), clean.DrawNoise(64));
  EXPECT_TRUE(SameParameters(NetworkParameters(agent), before));
  EXPECT_EQ(agent.q_optimizer().steps(), 5);
  EXPECT_EQ(agent.policy_optimizer().steps(), 5);
  SkippedUpdates skipped = agent.Skipped();
  EXPECT_EQ(skipped.total, 1);
  EXPECT_EQ(skipped.consecutive, 1);
  EXPECT_EQ(skipped.last_step, 6);
  EXPECT_NE(skipped.last_cause & kNonFiniteCriticLoss, 0);

  const TransitionTensors batch = On(RandomBatch(64), torch::kCUDA);
  const UpdateNoise noise = clean.DrawNoise(64);
  update(batch, noise);
  clean.Update(batch, noise);
  EXPECT_EQ(agent.Skipped().consecutive, 0);
  EXPECT_EQ(agent.q_optimizer().steps(), 6);
  const std::vector<torch::Tensor> a = NetworkParameters(agent),
                                   b = NetworkParameters(clean);
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_LE((a[i] - b[i]).abs().max().item<double>(), 1e-5)
        << "parameter " << i;
  }
}

TEST(GpuUpdate, SkipsAPoisonedUpdateEagerly) {
  SKIP_WITHOUT_CUDA();
  ExpectAPoisonedUpdateToBeSkippedOnTheGpu(0);
}

TEST(GpuCudaGraph, OnOneStreamSkipsAPoisonedUpdateInAReplay) {
  SKIP_WITHOUT_CUDA_GRAPHS();
  ExpectAPoisonedUpdateToBeSkippedOnTheGpu(1);
}

TEST(GpuCudaGraph, OnTwoStreamsSkipsAPoisonedUpdateInAReplay) {
  SKIP_WITHOUT_CUDA_GRAPHS();
  ExpectAPoisonedUpdateToBeSkippedOnTheGpu(2);
}

TEST(GpuFusedKernels, TheSteinKernelGivesTheAtenOperationsNumbers) {
  SKIP_WITHOUT_CUDA();
  // The update's slices: K = 32 particles per state, the first 16 fixed.
  torch::manual_seed(0);
  for (int64_t batch : {1, 64, 1024}) {
    SCOPED_TRACE(testing::Message() << "batch " << batch);
    const torch::Tensor all = torch::rand({batch, 32, 2}, torch::kCUDA) * 2 - 1;
    const torch::Tensor fixed = all.slice(1, 0, 16), updated = all.slice(1, 16);
    const torch::Tensor grad_log_p =
        torch::randn({batch, 16, 2}, torch::kCUDA) * 5;
    if (!sql::FusedSteinSupports(fixed, updated, grad_log_p)) {
      GTEST_SKIP() << "this build has no fused kernels";
    }
    const auto run = [&](bool fused) {
      return sql::SvgdLossGradient(
          fixed, updated, grad_log_p,
          {/*squashed=*/true, /*pad_fixed=*/true, fused});
    };
    const sql::SvgdGradient aten = run(false), kernel = run(true);
    EXPECT_TRUE(torch::allclose(kernel.bandwidth, aten.bandwidth, 1e-5, 1e-6));
    EXPECT_TRUE(
        torch::allclose(kernel.loss_gradient, aten.loss_gradient, 1e-4, 1e-4))
        << (kernel.loss_gradient - aten.loss_gradient).abs().max();
  }
}

TEST(GpuFusedKernels, TheSoftTdKernelGivesTheAtenOperationsNumbers) {
  SKIP_WITHOUT_CUDA();
  torch::manual_seed(0);
  for (int64_t batch : {1, 64, 1024}) {
    SCOPED_TRACE(testing::Message() << "batch " << batch);
    // Rewards and dones as strided columns, as the CUDA graph packs a batch.
    const torch::Tensor packed = torch::randn({batch, 8}, torch::kCUDA);
    const torch::Tensor rewards = packed.select(1, 6);
    const torch::Tensor dones = packed.select(1, 7).gt(1.5).to(torch::kFloat);
    const torch::Tensor q = torch::randn({batch}, torch::kCUDA) * 20;
    const torch::Tensor next_q = torch::randn({batch, 16}, torch::kCUDA) * 30;
    if (!sql::FusedSoftTdSupports(q, next_q, rewards, dones)) {
      GTEST_SKIP() << "this build has no fused kernels";
    }
    const auto run = [&](bool fused) {
      return sql::SoftCriticGradient(q, next_q, rewards, dones, 2, 0.1, 0.99,
                                     fused);
    };
    const sql::CriticGradient aten = run(false), kernel = run(true);
    EXPECT_TRUE(torch::allclose(kernel.target, aten.target, 1e-5, 1e-5))
        << (kernel.target - aten.target).abs().max();
    EXPECT_TRUE(
        torch::allclose(kernel.q_gradient, aten.q_gradient, 1e-5, 1e-7));
  }
}

TEST(GpuFlatAdam, TakesTorchAdamsStepsOnTheDevice) {
  SKIP_WITHOUT_CUDA();
  torch::manual_seed(0);
  SqlAgent agent(SqlConfig{}, torch::kCUDA);
  std::vector<torch::Tensor> start, gradients;
  for (const torch::Tensor& p : agent.q()->parameters()) {
    start.push_back(p.detach().clone());
    gradients.push_back(torch::randn_like(p));
  }
  const auto copies = [&] {
    std::vector<torch::Tensor> out;
    for (const torch::Tensor& p : start)
      out.push_back(p.clone().requires_grad_(true));
    return out;
  };
  std::vector<torch::Tensor> adam_params = copies(), flat_params = copies();
  torch::optim::Adam adam(adam_params, torch::optim::AdamOptions(3e-4));
  FlatAdam flat(flat_params, 3e-4);  // on a GPU: LibTorch's fused Adam kernel
  for (int step = 1; step <= 20; ++step) {
    flat.ZeroGrad();
    for (size_t i = 0; i < start.size(); ++i) {
      adam_params[i].mutable_grad() = gradients[i] / step;
      flat_params[i].mutable_grad() = gradients[i] / step;
    }
    adam.step();
    flat.Step();
  }
  EXPECT_EQ(flat.steps(), 20);
  for (size_t i = 0; i < start.size(); ++i) {
    EXPECT_LE((adam_params[i] - flat_params[i]).abs().max().item<double>(),
              1e-5)
        << "parameter " << i;
    EXPECT_GT((flat_params[i] - start[i]).abs().max().item<double>(), 1e-3)
        << "moved";
  }
}

}  // namespace
}  // namespace softq
