// Specification of the DDPG baseline (SqlConfig::algorithm = kDdpg,
// learner/sql_agent.h) and of the deterministic acting mode it explores with
// (policy/acting_policy.h).
#include <gtest/gtest.h>
#include <torch/nn/module.h>
#include <torch/types.h>
#include <torch/utils.h>

#include "learner/sql_agent.h"
#include "policy/acting_policy.h"

namespace softq {
namespace {

SqlConfig DdpgConfig() {
  SqlConfig config;
  config.algorithm = Algorithm::kDdpg;
  config.observation_dim = 3;
  config.action_dim = 2;
  config.hidden = {16, 16};
  config.discount = 0.9;
  config.reward_scale = 2.0;
  return config;
}

TransitionTensors RandomBatch(int64_t n, int64_t observation_dim,
                              int64_t action_dim) {
  TransitionTensors b;
  b.observations = torch::randn({n, observation_dim});
  b.actions = torch::rand({n, action_dim}) * 2 - 1;
  b.rewards = torch::randn({n});
  b.next_observations = torch::randn({n, observation_dim});
  b.dones = (torch::rand({n}) < 0.3).to(torch::kFloat32);
  return b;
}

std::vector<torch::Tensor> Snapshot(torch::nn::Module& module) {
  std::vector<torch::Tensor> out;
  for (const auto& p : module.parameters()) out.push_back(p.detach().clone());
  return out;
}

TEST(Ddpg, CriticBootstrapsFromTheTargetPolicysDeterministicAction) {
  torch::manual_seed(0);
  SqlAgent agent(DdpgConfig());
  // Updates first, so that the online networks have moved away from the targets
  // (copied every 1000 updates): a target taken from the online ones would
  // differ.
  for (int i = 0; i < 20; ++i) agent.Update(RandomBatch(32, 3, 2));
  const TransitionTensors batch = RandomBatch(8, 3, 2);
  UpdateMetricTensors metrics;
  agent.CriticLoss(batch, torch::Tensor(), &metrics);
  torch::NoGradGuard no_grad;
  const torch::Tensor zero_latent = torch::zeros({8, 2});
  const auto bootstrap = [&](QNetwork& q, SamplingNetwork& policy) {
    const torch::Tensor next_action =
        policy->forward(batch.next_observations, zero_latent);
    return 2.0 * batch.rewards +
           0.9 * (1 - batch.dones) *
               q->forward(batch.next_observations, next_action);
  };
  const torch::Tensor expected =
      bootstrap(agent.q_target(), agent.policy_target());
  EXPECT_TRUE(torch::allclose(metrics.target, expected, 1e-5, 1e-6));
  EXPECT_FALSE(torch::allclose(
      metrics.target, bootstrap(agent.q(), agent.policy()), 1e-3, 1e-4));
}

TEST(Ddpg, PolicyStepLeavesTheCriticUpdateUntouched) {
  // The deterministic policy gradient runs through Q; Q's own step must come
  // from J_Q only.
  torch::manual_seed(1);
  SqlAgent ddpg(DdpgConfig());
  torch::manual_seed(1);
  SqlAgent critic_only(DdpgConfig());
  const TransitionTensors batch = RandomBatch(16, 3, 2);
  ddpg.Update(batch, ddpg.DrawNoise(16));
  critic_only.q_optimizer().ZeroGrad();
  critic_only.CriticLoss(batch, torch::Tensor()).backward();
  critic_only.q_optimizer().Step();
  const std::vector<torch::Tensor> a = Snapshot(*ddpg.q()),
                                   b = Snapshot(*critic_only.q());
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i)
    EXPECT_TRUE(torch::allclose(a[i], b[i])) << i;
}

TEST(Ddpg, PolicyGradientClimbsTheCritic) {
  torch::manual_seed(2);
  SqlAgent agent(DdpgConfig());
  const torch::Tensor observations = torch::randn({64, 3});
  auto q_of_policy = [&] {
    torch::NoGradGuard no_grad;
    return agent.q()
        ->forward(observations,
                  DeterministicAction(agent.policy(), observations))
        .mean()
        .item<double>();
  };
  const double before = q_of_policy();
  for (int i = 0; i < 50; ++i) {
    agent.policy_optimizer().ZeroGrad();
    agent.PolicySurrogate(observations, torch::Tensor()).backward();
    agent.policy_optimizer().Step();
  }
  EXPECT_GT(q_of_policy(), before + 1e-3);
}

TEST(Ddpg, TargetPolicyTracksThePolicyWithTheTargetRate) {
  SqlConfig config = DdpgConfig();
  config.target_tau = 0.25;
  torch::manual_seed(3);
  SqlAgent agent(config);
  const std::vector<torch::Tensor> target_before =
      Snapshot(*agent.policy_target());
  agent.Update(RandomBatch(16, 3, 2), agent.DrawNoise(16));
  const std::vector<torch::Tensor> policy = Snapshot(*agent.policy());
  const std::vector<torch::Tensor> target = Snapshot(*agent.policy_target());
  for (size_t i = 0; i < policy.size(); ++i) {
    EXPECT_TRUE(torch::allclose(
        target[i], 0.25 * policy[i] + 0.75 * target_before[i], 1e-5, 1e-6))
        << i;
  }
}

TEST(Ddpg, SqlLeavesTheTargetPolicyAlone) {
  SqlConfig config = DdpgConfig();
  config.algorithm = Algorithm::kSql;
  config.target_tau = 0.25;
  torch::manual_seed(4);
  SqlAgent agent(config);
  const std::vector<torch::Tensor> before = Snapshot(*agent.policy_target());
  agent.Update(RandomBatch(16, 3, 2), agent.DrawNoise(16));
  const std::vector<torch::Tensor> after = Snapshot(*agent.policy_target());
  for (size_t i = 0; i < before.size(); ++i)
    EXPECT_TRUE(torch::equal(before[i], after[i]));
}

TEST(DeterministicActing, WithoutNoiseActsWithTheZeroLatent) {
  ActingPolicy policy(3, 2, {16, 16}, /*seed=*/5, {/*deterministic=*/true});
  SamplingNetwork network(3, 2, std::vector<int64_t>{16, 16});
  NamedTensors params;
  for (const auto& p : network->named_parameters())
    params.emplace_back(p.key(), p.value());
  ASSERT_TRUE(policy.SetParameters(params, 1).ok());
  const torch::Tensor observations = torch::randn({10, 3});
  torch::NoGradGuard no_grad;
  EXPECT_TRUE(torch::allclose(policy.Act(observations),
                              DeterministicAction(network, observations)));
  EXPECT_TRUE(torch::equal(policy.Act(observations), policy.Act(observations)));
}

TEST(DeterministicActing, ActionNoiseExploresWithinTheActionBounds) {
  ActingPolicy policy(3, 2, {16, 16}, /*seed=*/6,
                      {/*deterministic=*/true, /*action_noise=*/2.0});
  const torch::Tensor observations = torch::randn({500, 3});
  const torch::Tensor a = policy.Act(observations),
                      b = policy.Act(observations);
  EXPECT_FALSE(torch::equal(a, b));
  EXPECT_LE(a.abs().max().item<float>(), 1.0f);
  // With noise of std 2, many actions land on the bounds after clipping.
  EXPECT_GT((a.abs() == 1.0f).sum().item<int64_t>(), 100);
}

}  // namespace
}  // namespace softq
