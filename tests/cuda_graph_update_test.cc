// CudaGraphUpdate where no graph can be captured (this machine: a CPU
// LibTorch). Its equivalence with eager updates on a GPU is checked by
// tests/gpu_update_test (run on the GPU host by deploy/gpu/run_on_cuda_host.sh
// check), which needs a device.
#include "learner/cuda_graph_update.h"

#include <gtest/gtest.h>
#include <torch/cuda.h>
#include <torch/types.h>

namespace softq {
namespace {

TEST(CudaGraphUpdateTest, RefusesAnAgentOnTheCpuNamingItsDevice) {
  SqlAgent agent(SqlConfig{}, torch::kCPU);
  absl::StatusOr<std::unique_ptr<CudaGraphUpdate>> graph =
      CudaGraphUpdate::Create(&agent);
  ASSERT_FALSE(graph.ok());
  EXPECT_EQ(graph.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(graph.status().message().find("on cpu"), std::string::npos)
      << graph.status().message();
}

TEST(CudaGraphUpdateTest, RefusesAStreamCountOtherThanOneOrTwo) {
  SqlAgent agent(SqlConfig{},
                 torch::kCPU);  // (arguments are checked before the device)
  for (int streams : {0, 3}) {
    absl::StatusOr<std::unique_ptr<CudaGraphUpdate>> graph =
        CudaGraphUpdate::Create(&agent, /*warmup_updates=*/3, streams);
    ASSERT_FALSE(graph.ok());
    EXPECT_EQ(graph.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(graph.status().message().find("streams"), std::string::npos);
  }
}

TEST(CudaGraphUpdateTest, RunsTheDdpgBaselineOnOneStreamOnly) {
  // Its policy pass adds into Q's gradients: the halves are not independent.
  SqlConfig config;
  config.algorithm = Algorithm::kDdpg;
  SqlAgent agent(config,
                 torch::kCPU);  // (arguments are checked before the device)
  absl::StatusOr<std::unique_ptr<CudaGraphUpdate>> graph =
      CudaGraphUpdate::Create(&agent, /*warmup_updates=*/3, /*streams=*/2);
  ASSERT_FALSE(graph.ok());
  EXPECT_EQ(graph.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(graph.status().message().find("DDPG"), std::string::npos);
  EXPECT_NE(CudaGraphUpdate::Create(&agent, 3, /*streams=*/1).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(CudaGraphUpdateTest, DefaultsToTwoStreamsForSqlAndOneForDdpgBothAccepted) {
  EXPECT_EQ(CudaGraphUpdate::DefaultStreams(Algorithm::kSql), 2);
  EXPECT_EQ(CudaGraphUpdate::DefaultStreams(Algorithm::kDdpg), 1);
  for (Algorithm algorithm : {Algorithm::kSql, Algorithm::kDdpg}) {
    SqlConfig config;
    config.algorithm = algorithm;
    SqlAgent agent(config,
                   torch::kCPU);  // (arguments are checked before the device)
    EXPECT_EQ(CudaGraphUpdate::Create(
                  &agent, 3, CudaGraphUpdate::DefaultStreams(algorithm))
                  .status()
                  .code(),
              absl::StatusCode::kFailedPrecondition);
  }
}

TEST(CudaGraphUpdateTest, ABuildWithoutCudaGraphsSaysSoOnACudaAgent) {
  if (CudaGraphUpdate::Supported())
    GTEST_SKIP() << "this build has CUDA graphs";
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  SqlAgent agent(SqlConfig{}, torch::kCUDA);
  absl::StatusOr<std::unique_ptr<CudaGraphUpdate>> graph =
      CudaGraphUpdate::Create(&agent);
  ASSERT_FALSE(graph.ok());
  EXPECT_EQ(graph.status().code(), absl::StatusCode::kUnimplemented);
}

TEST(CudaGraphUpdateTest, SplitUpdateKeepsTheStepCountAndTargetSchedule) {
  // The update is split into a device part (captured) and a host part (step
  // count, target copies); the eager path runs both, so the schedule of hard
  // target copies is unchanged.
  SqlConfig config;
  config.target_update_interval = 2;
  SqlAgent agent(config, torch::kCPU);
  TransitionTensors batch{torch::randn({8, 2}), torch::rand({8, 2}) * 2 - 1,
                          torch::randn({8}), torch::randn({8, 2}),
                          torch::zeros({8})};
  auto q_equals_target = [&] {
    const auto q = agent.q()->parameters();
    const auto target = agent.q_target()->parameters();
    for (size_t i = 0; i < q.size(); ++i) {
      if (!torch::equal(q[i], target[i])) return false;
    }
    return true;
  };
  agent.Update(batch);
  EXPECT_EQ(agent.step(), 1);
  EXPECT_FALSE(q_equals_target());
  agent.Update(batch);
  EXPECT_EQ(agent.step(), 2);
  EXPECT_TRUE(q_equals_target());
}

}  // namespace
}  // namespace softq
