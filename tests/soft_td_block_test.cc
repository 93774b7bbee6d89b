// The fused CUDA kernel's soft TD step (learner/soft_td_block.h), run on the CPU one
// transition at a time, against the ATen operations it replaces (sql::SoftCriticGradient
// without the kernel, itself checked against J_Q's autograd gradient).
#include "learner/soft_td_block.h"

#include <cmath>
#include <limits>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "learner/sql_math.h"

namespace softq {
namespace {

constexpr int64_t kActionDim = 2;
constexpr double kRewardScale = 0.1, kDiscount = 0.99;

// The element function over every transition, on the host. `packed` holds rewards and dones
// as columns, strided as in the CUDA graph's packed batch.
sql::CriticGradient RunOnHost(const torch::Tensor& q, const torch::Tensor& next_q,
                              const torch::Tensor& rewards, const torch::Tensor& dones) {
  const int64_t b = q.size(0), m = next_q.size(1);
  sql::CriticGradient out{torch::empty({b}), torch::empty({b})};
  soft_td::Args a{};
  a.batch = static_cast<int>(b);
  a.particles = static_cast<int>(m);
  a.next_q = next_q.data_ptr<float>();
  a.next_q_stride = next_q.stride(0);
  a.q = q.data_ptr<float>();
  a.q_stride = q.stride(0);
  a.rewards = rewards.data_ptr<float>();
  a.rewards_stride = rewards.stride(0);
  a.dones = dones.data_ptr<float>();
  a.dones_stride = dones.stride(0);
  a.reward_scale = static_cast<float>(kRewardScale);
  a.discount = static_cast<float>(kDiscount);
  a.value_offset = static_cast<float>(kActionDim * std::log(2.0) - std::log(double(m)));
  a.loss_scale = static_cast<float>(1.0 / double(b));
  a.target = out.target.data_ptr<float>();
  a.q_gradient = out.q_gradient.data_ptr<float>();
  for (int i = 0; i < a.batch; ++i) soft_td::SoftTdElement(a, i);
  return out;
}

TEST(SoftCriticGradient, IsTheCriticLossGradient) {
  torch::manual_seed(0);
  const torch::Tensor q = torch::randn({8}).requires_grad_(true);
  const torch::Tensor next_q = torch::randn({8, 16}) * 10;
  const torch::Tensor rewards = torch::randn({8});
  const torch::Tensor dones = (torch::rand({8}) < 0.3).to(torch::kFloat);
  const sql::CriticGradient step = sql::SoftCriticGradient(
      q, next_q, rewards, dones, kActionDim, kRewardScale, kDiscount, /*fused=*/false);
  const torch::Tensor target = sql::SoftTdTarget(
      rewards, dones, sql::SoftValue(next_q, kActionDim), kRewardScale, kDiscount);
  EXPECT_TRUE(torch::allclose(step.target, target));
  sql::CriticLoss(q, target).backward();
  EXPECT_TRUE(torch::allclose(step.q_gradient, q.grad()));
  EXPECT_FALSE(step.q_gradient.requires_grad());
}

TEST(SoftTdBlock, MatchesTheAtenOperationsOnStridedColumns) {
  torch::manual_seed(1);
  const int64_t b = 64;
  // rewards and dones as columns of one [B, 6] tensor, as the CUDA graph packs a batch.
  const torch::Tensor packed = torch::randn({b, 6});
  packed.select(1, 5).copy_((torch::rand({b}) < 0.2).to(torch::kFloat));
  const torch::Tensor rewards = packed.select(1, 4) * 50, dones = packed.select(1, 5);
  const torch::Tensor q = torch::randn({b}) * 20, next_q = torch::randn({b, 16}) * 30;
  const sql::CriticGradient host = RunOnHost(q, next_q, rewards.contiguous() * 1, dones);
  const sql::CriticGradient aten = sql::SoftCriticGradient(
      q, next_q, rewards, dones, kActionDim, kRewardScale, kDiscount, /*fused=*/false);
  EXPECT_TRUE(torch::allclose(host.target, aten.target, 1e-5, 1e-5))
      << (host.target - aten.target).abs().max();
  EXPECT_TRUE(torch::allclose(host.q_gradient, aten.q_gradient, 1e-5, 1e-7));
  // The strided views themselves give the same numbers.
  const sql::CriticGradient strided = RunOnHost(q, next_q, packed.select(1, 4).mul(50), dones);
  EXPECT_TRUE(torch::equal(strided.target, host.target));
}

TEST(SoftTdBlock, InfiniteParticlesGiveAnInfiniteValueAsLogsumexpDoes) {
  const float inf = std::numeric_limits<float>::infinity();
  torch::Tensor next_q = torch::zeros({3, 4});
  next_q[0][1] = inf;    // +inf: V = +inf
  next_q[1].fill_(-inf);  // all -inf: V = -inf
  const torch::Tensor q = torch::zeros({3}), rewards = torch::zeros({3}), dones = torch::zeros({3});
  const sql::CriticGradient host = RunOnHost(q, next_q, rewards, dones);
  const sql::CriticGradient aten = sql::SoftCriticGradient(
      q, next_q, rewards, dones, kActionDim, kRewardScale, kDiscount, /*fused=*/false);
  EXPECT_EQ(host.target[0].item<float>(), inf);
  EXPECT_EQ(host.target[1].item<float>(), -inf);
  EXPECT_TRUE(torch::allclose(host.target, aten.target));
}

TEST(SoftTdBlock, ADoneTransitionIgnoresTheNextValue) {
  const torch::Tensor next_q = torch::full({1, 16}, 1e3);
  const sql::CriticGradient host =
      RunOnHost(torch::ones({1}), next_q, torch::full({1}, 5.0), torch::ones({1}));
  EXPECT_FLOAT_EQ(host.target.item<float>(), 0.5f);  // reward_scale * r
  EXPECT_FLOAT_EQ(host.q_gradient.item<float>(), 0.5f);  // (q - y) / B
}

}  // namespace
}  // namespace softq
