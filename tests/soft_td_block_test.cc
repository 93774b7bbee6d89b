// The fused CUDA kernel's soft TD step (learner/soft_td_block.h and the
// argument packing in learner/fused_ops.cc), run on the CPU one transition at a
// time by its host twin, against the ATen operations it replaces
// (sql::SoftCriticGradient without the kernel, itself checked against J_Q's
// autograd gradient).
#include "learner/soft_td_block.h"

#include <gtest/gtest.h>
#include <torch/types.h>
#include <torch/utils.h>

#include <cmath>
#include <limits>

#include "learner/fused_ops.h"
#include "learner/sql_math.h"

namespace softq {
namespace {

constexpr int64_t kActionDim = 2;
constexpr double kRewardScale = 0.1, kDiscount = 0.99;

// The kernel's host twin: the device launch's argument packing, every
// transition's thread run on the CPU.
sql::CriticGradient RunOnHost(const torch::Tensor& q,
                              const torch::Tensor& next_q,
                              const torch::Tensor& rewards,
                              const torch::Tensor& dones) {
  const double value_offset = kActionDim * std::log(2.0) -
                              std::log(static_cast<double>(next_q.size(1)));
  sql::FusedTd td = sql::FusedSoftTdOnHost(
      q, next_q, rewards, dones, value_offset, kRewardScale, kDiscount);
  return {td.target, td.q_gradient};
}

TEST(SoftCriticGradient, IsTheCriticLossGradient) {
  torch::manual_seed(0);
  const torch::Tensor q = torch::randn({8}).requires_grad_(true);
  const torch::Tensor next_q = torch::randn({8, 16}) * 10;
  const torch::Tensor rewards = torch::randn({8});
  const torch::Tensor dones = (torch::rand({8}) < 0.3).to(torch::kFloat);
  const sql::CriticGradient step =
      sql::SoftCriticGradient(q, next_q, rewards, dones, kActionDim,
                              kRewardScale, kDiscount, /*fused=*/false);
  const torch::Tensor target =
      sql::SoftTdTarget(rewards, dones, sql::SoftValue(next_q, kActionDim),
                        kRewardScale, kDiscount);
  EXPECT_TRUE(torch::allclose(step.target, target));
  sql::CriticLoss(q, target).backward();
  EXPECT_TRUE(torch::allclose(step.q_gradient, q.grad()));
  EXPECT_FALSE(step.q_gradient.requires_grad());
}

TEST(SoftTdBlock, MatchesTheAtenOperationsOnStridedColumns) {
  torch::manual_seed(1);
  const int64_t b = 64;
  // rewards and dones as columns of one [B, 6] tensor, as the CUDA graph packs
  // a batch.
  const torch::Tensor packed = torch::randn({b, 6});
  packed.select(1, 5).copy_((torch::rand({b}) < 0.2).to(torch::kFloat));
  const torch::Tensor rewards = packed.select(1, 4) * 50,
                      dones = packed.select(1, 5);
  const torch::Tensor q = torch::randn({b}) * 20,
                      next_q = torch::randn({b, 16}) * 30;
  const sql::CriticGradient host =
      RunOnHost(q, next_q, rewards.contiguous(), dones);
  const sql::CriticGradient aten =
      sql::SoftCriticGradient(q, next_q, rewards, dones, kActionDim,
                              kRewardScale, kDiscount, /*fused=*/false);
  EXPECT_TRUE(torch::allclose(host.target, aten.target, 1e-5, 1e-5))
      << (host.target - aten.target).abs().max();
  EXPECT_TRUE(torch::allclose(host.q_gradient, aten.q_gradient, 1e-5, 1e-7));
  // The strided column itself gives the same numbers.
  torch::Tensor scaled = packed.clone();
  scaled.select(1, 4).mul_(50);
  const sql::CriticGradient strided =
      RunOnHost(q, next_q, scaled.select(1, 4), dones);
  EXPECT_TRUE(torch::equal(strided.target, host.target));
}

TEST(SoftTdBlock, InfiniteParticlesGiveAnInfiniteValueAsLogsumexpDoes) {
  const float inf = std::numeric_limits<float>::infinity();
  torch::Tensor next_q = torch::zeros({3, 4});
  next_q[0][1] = inf;     // +inf: V = +inf
  next_q[1].fill_(-inf);  // all -inf: V = -inf
  const torch::Tensor q = torch::zeros({3}), rewards = torch::zeros({3}),
                      dones = torch::zeros({3});
  const sql::CriticGradient host = RunOnHost(q, next_q, rewards, dones);
  const sql::CriticGradient aten =
      sql::SoftCriticGradient(q, next_q, rewards, dones, kActionDim,
                              kRewardScale, kDiscount, /*fused=*/false);
  EXPECT_EQ(host.target[0].item<float>(), inf);
  EXPECT_EQ(host.target[1].item<float>(), -inf);
  EXPECT_TRUE(torch::allclose(host.target, aten.target));
}

TEST(SoftTdBlock, ADoneTransitionIgnoresTheNextValue) {
  const torch::Tensor next_q = torch::full({1, 16}, 1e3);
  const sql::CriticGradient host = RunOnHost(
      torch::ones({1}), next_q, torch::full({1}, 5.0), torch::ones({1}));
  EXPECT_FLOAT_EQ(host.target.item<float>(), 0.5f);      // reward_scale * r
  EXPECT_FLOAT_EQ(host.q_gradient.item<float>(), 0.5f);  // (q - y) / B
}

}  // namespace
}  // namespace softq
