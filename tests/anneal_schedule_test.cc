// Specification of fine-tuning's annealing (SqlConfig::anneal_updates, the
// paper's Fig. 4 protocol): alpha = 1 / reward_scale falls log-linearly to
// final_alpha and the SVGD particle set shrinks linearly to 1 over the given
// updates; the particle split at small K (SplitParticles: fewer than 3
// particles move each along its own score, the kernel's self term); the agent
// following the schedule; the flags and their errors; and the CUDA-graph
// refusal.
#include <gtest/gtest.h>
#include <torch/optim/adam.h>
#include <torch/types.h>
#include <torch/utils.h>

#include <cmath>
#include <sstream>
#include <string>

#include "absl/flags/declare.h"
#include "absl/flags/flag.h"
#include "learner/amortized_svgd.h"
#include "learner/learner_setup.h"
#include "learner/sql_agent.h"
#include "learner/sql_config.h"
#include "learner/sql_flags.h"
#include "learner/sql_math.h"

ABSL_DECLARE_FLAG(int64_t, anneal_updates);
ABSL_DECLARE_FLAG(double, final_alpha);
ABSL_DECLARE_FLAG(bool, anneal_particles);
ABSL_DECLARE_FLAG(double, reward_scale);
ABSL_DECLARE_FLAG(std::string, algorithm);

namespace softq {
namespace {

SqlConfig Annealing(double reward_scale, int64_t particles, int64_t updates) {
  SqlConfig config;
  config.reward_scale = reward_scale;
  config.kernel_particles = particles;
  config.anneal_updates = updates;
  return config;
}

TEST(AnnealSchedule, AlphaFallsLogLinearlyToTheFinalAlphaThenStays) {
  const SqlConfig c = Annealing(/*reward_scale=*/10, 32, /*updates=*/1000);
  // alpha 0.1 at the start, 0.001 at the end: 0.01 halfway (the geometric
  // mean), 0.1 * 0.01^(1/4) a quarter of the way.
  EXPECT_EQ(ScheduleAt(c, 0).reward_scale, 10.0);  // exactly the flag's
  EXPECT_NEAR(ScheduleAt(c, 500).alpha(), 0.01, 1e-12);
  EXPECT_NEAR(ScheduleAt(c, 250).alpha(), 0.1 * std::pow(0.01, 0.25), 1e-12);
  EXPECT_NEAR(ScheduleAt(c, 999).alpha(), 0.1 * std::pow(0.01, 0.999), 1e-12);
  EXPECT_EQ(ScheduleAt(c, 1000).reward_scale, 1000.0);
  EXPECT_EQ(ScheduleAt(c, 1000000).reward_scale, 1000.0);
  // log alpha is linear in the update: equal steps of log alpha.
  const double step =
      std::log(ScheduleAt(c, 1).alpha() / ScheduleAt(c, 0).alpha());
  for (int64_t t : {10, 400, 998}) {
    EXPECT_NEAR(
        std::log(ScheduleAt(c, t + 1).alpha() / ScheduleAt(c, t).alpha()), step,
        1e-9)
        << t;
  }
  EXPECT_NEAR(step, std::log(0.01) / 1000, 1e-12);
}

TEST(AnnealSchedule, ParticlesShrinkLinearlyToOneThenStay) {
  const SqlConfig c = Annealing(10, 32, 1000);
  EXPECT_EQ(ScheduleAt(c, 0).kernel_particles, 32);
  // 1 + round(31 * (1000 - t) / 1000), halves up.
  EXPECT_EQ(ScheduleAt(c, 500).kernel_particles, 17);  // 1 + round(15.5)
  EXPECT_EQ(ScheduleAt(c, 250).kernel_particles, 24);  // 1 + round(23.25)
  EXPECT_EQ(ScheduleAt(c, 984).kernel_particles, 1);   // 1 + round(0.496)
  EXPECT_EQ(ScheduleAt(c, 983).kernel_particles, 2);   // 1 + round(0.527)
  EXPECT_EQ(ScheduleAt(c, 1000).kernel_particles, 1);
  EXPECT_EQ(ScheduleAt(c, 5000).kernel_particles, 1);
  int64_t previous = 32;
  for (int64_t t = 0; t <= 1000; ++t) {
    const int64_t k = ScheduleAt(c, t).kernel_particles;
    EXPECT_LE(k, previous) << t;
    EXPECT_GE(k, previous - 1) << t;  // one particle at a time
    EXPECT_NEAR(static_cast<double>(k), 32.0 - 31.0 * t / 1000, 0.5) << t;
    previous = k;
  }
}

TEST(AnnealSchedule,
     ParticlesStayWithoutAnnealParticlesAndNothingMovesWithout) {
  SqlConfig c = Annealing(10, 16, 100);
  c.anneal_particles = false;
  EXPECT_EQ(ScheduleAt(c, 50).kernel_particles, 16);
  EXPECT_EQ(ScheduleAt(c, 500).kernel_particles, 16);
  EXPECT_NEAR(ScheduleAt(c, 50).alpha(), 0.01, 1e-12);
  const SqlConfig none = Annealing(0.1, 32, 0);  // the default: no schedule
  for (int64_t t : {0, 1, 1000000}) {
    EXPECT_EQ(ScheduleAt(none, t).reward_scale, 0.1);
    EXPECT_EQ(ScheduleAt(none, t).kernel_particles, 32);
  }
}

TEST(ParticleSplit, KeepsAValidConfigsSplitAndClampsSmallSets) {
  EXPECT_EQ(SplitParticles(32, 0.5).moved, 16);
  EXPECT_EQ(SplitParticles(32, 0.5).fixed, 16);
  EXPECT_EQ(SplitParticles(3, 0.5).moved, 1);
  EXPECT_EQ(SplitParticles(3, 0.5).fixed, 2);
  // The schedule passes through sizes a config could not take: SVGD keeps
  // moving at least 1 and keeping at least 2 while K >= 3.
  EXPECT_EQ(SplitParticles(4, 0.2).moved, 1);  // floor(0.8) = 0, raised to 1
  EXPECT_EQ(SplitParticles(5, 0.9).fixed, 2);  // floor(4.5) = 4, lowered to 3
  EXPECT_EQ(SplitParticles(5, 0.9).moved, 3);
  // Fewer than 3: none kept, all moved (each along its own score).
  EXPECT_EQ(SplitParticles(2, 0.5).fixed, 0);
  EXPECT_EQ(SplitParticles(2, 0.5).moved, 2);
  EXPECT_EQ(SplitParticles(1, 0.5).fixed, 0);
  EXPECT_EQ(SplitParticles(1, 0.5).moved, 1);
  for (int64_t k = 3; k <= 64; ++k) {
    for (double r : {0.01, 0.25, 0.5, 0.75, 0.99}) {
      const ParticleSplit s = SplitParticles(k, r);
      EXPECT_EQ(s.fixed + s.moved, k);
      EXPECT_GE(s.moved, 1);
      EXPECT_GE(s.fixed, 2);
      const int64_t moved = MovedParticles(k, r);
      if (moved >= 1 && k - moved >= 2) {
        EXPECT_EQ(s.moved, moved) << k << " " << r;
      }
    }
  }
}

TEST(SelfSvgdLossGradient, IsTheNegatedScoreWhateverTheKernel) {
  torch::manual_seed(1);
  const torch::Tensor a = torch::rand({4, 1, 2}, torch::kFloat64) * 1.8 - 0.9;
  const torch::Tensor g = torch::randn({4, 1, 2}, torch::kFloat64);
  const sql::SvgdGradient self = sql::SelfSvgdLossGradient(a, g);
  EXPECT_TRUE(torch::equal(self.loss_gradient, -g));
  EXPECT_TRUE(torch::equal(self.bandwidth, torch::zeros({4}, a.options())));
  // One particle that is both the fixed and the updated one: the Stein
  // direction's sum has the self term alone, for any bandwidth.
  for (double h : {0.01, 1.0, 100.0}) {
    sql::RbfKernel kernel;
    kernel.kappa = torch::ones({4, 1, 1}, a.options());
    kernel.bandwidth = torch::full({4}, h, a.options());
    EXPECT_TRUE(torch::allclose(sql::SteinDirection(kernel, a, a, g), g)) << h;
  }
  const sql::SvgdGradient squashed =
      sql::SelfSvgdLossGradient(a, g, /*squashed=*/true);
  EXPECT_TRUE(
      torch::allclose(squashed.loss_gradient, -sql::SquashedScore(g, a)));
}

TEST(AmortizedSvgd, WithFewerThanThreeParticlesMovesEachAlongItsOwnScore) {
  torch::manual_seed(2);
  SamplingNetwork policy(1, 2, std::vector<int64_t>{16, 16});
  const Score gaussian = [](const torch::Tensor&, const torch::Tensor& a) {
    return -4.0 * a;
  };
  const torch::Tensor obs = torch::randn({5, 1});
  for (int64_t k : {1, 2}) {
    for (bool one_pass : {false, true}) {
      const torch::Tensor noise = torch::randn({5, k, 2});
      const AmortizedSvgdStep step =
          AmortizedSvgd(policy, gaussian, obs, noise, 0.5,
                        SvgdOptions{/*squashed_score=*/false, one_pass});
      ASSERT_EQ(step.particles.sizes(), noise.sizes());
      EXPECT_TRUE(step.particles.requires_grad());
      EXPECT_TRUE(
          torch::allclose(step.loss_gradient, 4.0 * step.particles.detach()));
      EXPECT_TRUE(torch::equal(step.bandwidth, torch::zeros({5})));
    }
  }
}

TEST(AmortizedSvgd, WithOneParticleTheSamplingNetworkNarrowsOntoTheMode) {
  // K = 1, the particle schedule's end: gradient ascent on log p for every
  // noise value, so the network maps all noise to the target's mode, (0.5,
  // -0.3) here (a Gaussian's score): a single value, as the paper's
  // fine-tuning narrows the sampling network.
  torch::manual_seed(6);
  SamplingNetwork policy(1, 2, std::vector<int64_t>{32, 32});
  const torch::Tensor mode = torch::tensor({0.5, -0.3});
  const Score gaussian = [&mode](const torch::Tensor&, const torch::Tensor& a) {
    return -10.0 * (a - mode);
  };
  torch::optim::Adam adam(policy->parameters(), 3e-3);
  const torch::Tensor obs = torch::zeros({64, 1});
  for (int i = 0; i < 600; ++i) {
    adam.zero_grad();
    AmortizedSvgdLoss(policy, gaussian, obs, torch::randn({64, 1, 2}), 0.5)
        .backward();
    adam.step();
  }
  torch::NoGradGuard no_grad;
  const torch::Tensor a =
      policy->forward(torch::zeros({256, 1}), torch::randn({256, 2}));
  EXPECT_LT((a - mode).abs().max().item<double>(), 0.05);
}

// A few updates of an agent with K particles on random data: finite losses,
// none skipped, the policy's parameters moved.
TEST(SqlAgent, UpdatesWithOneTwoAndThreeParticlesStayFinite) {
  for (int64_t k : {1, 2, 3}) {
    torch::manual_seed(3);
    SqlConfig config;
    config.observation_dim = 3;
    config.hidden = {16, 16};
    config.kernel_particles = 32;
    config.reward_scale = 1000;  // alpha 0.001, the schedule's end
    SqlAgent agent(config);
    std::vector<torch::Tensor> before;
    for (const auto& p : agent.policy()->parameters())
      before.push_back(p.detach().clone());
    for (int i = 0; i < 10; ++i) {
      TransitionTensors b{torch::randn({16, 3}), torch::rand({16, 2}) * 2 - 1,
                          torch::rand({16}), torch::randn({16, 3}),
                          torch::zeros({16})};
      UpdateNoise noise = agent.DrawNoise(16);
      noise.policy_noise = torch::randn({16, k, 2});
      agent.Update(b, noise);
      const UpdateMetrics m = agent.LastMetrics();
      EXPECT_TRUE(std::isfinite(m.critic_loss)) << k;
      EXPECT_TRUE(std::isfinite(m.policy_surrogate)) << k;
      EXPECT_TRUE(std::isfinite(m.kernel_bandwidth)) << k;
    }
    EXPECT_EQ(agent.Skipped().total, 0) << k;
    double moved = 0;
    const auto after = agent.policy()->parameters();
    for (size_t i = 0; i < after.size(); ++i)
      moved += (after[i] - before[i]).abs().sum().item<double>();
    EXPECT_GT(moved, 0.0) << k;
  }
}

TransitionTensors RandomBatch(int64_t n) {
  return {torch::randn({n, 3}), torch::rand({n, 2}) * 2 - 1, torch::rand({n}),
          torch::randn({n, 3}), torch::zeros({n})};
}

TEST(SqlAgent, FollowsTheScheduleThroughItsEndWithoutNonFiniteUpdates) {
  torch::manual_seed(4);
  SqlConfig config = Annealing(/*reward_scale=*/30, /*particles=*/8, 40);
  config.observation_dim = 3;
  config.hidden = {16, 16};
  SqlAgent agent(config);
  for (int64_t t = 0; t < 50; ++t) {
    const ScheduledValues want = ScheduleAt(config, t);
    EXPECT_EQ(agent.scheduled().reward_scale, want.reward_scale) << t;
    EXPECT_EQ(agent.scheduled().kernel_particles, want.kernel_particles) << t;
    EXPECT_EQ(agent.DrawNoise(4).policy_noise.size(1), want.kernel_particles);
    agent.Update(RandomBatch(16));
    EXPECT_TRUE(std::isfinite(agent.LastMetrics().policy_surrogate)) << t;
  }
  EXPECT_EQ(agent.scheduled().kernel_particles, 1);
  EXPECT_EQ(agent.scheduled().reward_scale, 1000.0);
  EXPECT_EQ(agent.Skipped().total, 0);
  agent.set_step(20);
  EXPECT_EQ(agent.scheduled().reward_scale,
            ScheduleAt(config, 20).reward_scale);
}

TEST(SqlAgent, TheCriticsTargetUsesTheScheduledRewardScale) {
  torch::manual_seed(5);
  SqlConfig config = Annealing(/*reward_scale=*/2, 8, 10);
  config.observation_dim = 3;
  config.hidden = {16, 16};
  config.discount = 0;  // y = reward_scale * r
  SqlAgent agent(config);
  const TransitionTensors batch = RandomBatch(8);
  for (int64_t step : {0, 5, 10}) {
    agent.set_step(step);
    agent.Update(batch);
    EXPECT_TRUE(
        torch::allclose(agent.LastMetricTensors().target,
                        ScheduleAt(config, step).reward_scale * batch.rewards))
        << step;
  }
}

TEST(SqlConfig, RefusesABadScheduleNamingTheField) {
  SqlConfig config = Annealing(0.1, 32, -1);
  EXPECT_EQ(ValidateSqlConfig(config).message(),
            "SqlConfig.anneal_updates=-1: must be in [0, 1099511627776]");
  config.anneal_updates = 100;
  config.final_alpha = 0;
  EXPECT_EQ(ValidateSqlConfig(config).message(),
            "SqlConfig.final_alpha=0: must be in [1e-09, 1000000000]");
  config.final_alpha = 20;  // above the starting alpha, 1 / 0.1 = 10
  EXPECT_EQ(ValidateSqlConfig(config).message(),
            "SqlConfig.final_alpha=20: must be at most the starting alpha "
            "(SqlConfig.reward_scale=0.1: alpha 10)");
  config.final_alpha = 10;  // alpha constant, only K anneals
  EXPECT_TRUE(ValidateSqlConfig(config).ok());
  config.final_alpha = 0.001;
  config.algorithm = Algorithm::kDdpg;
  const absl::Status ddpg = ValidateSqlConfig(config);
  EXPECT_NE(ddpg.message().find("SqlConfig.anneal_updates=100"),
            std::string::npos)
      << ddpg;
  config.anneal_updates = 0;  // no schedule: the other fields are not read
  config.final_alpha = 20;
  EXPECT_TRUE(ValidateSqlConfig(config).ok());
}

TEST(SqlFlags, ReadTheScheduleAndPhraseItsErrorsAsFlags) {
  absl::SetFlag(&FLAGS_reward_scale, 30.0);
  absl::SetFlag(&FLAGS_anneal_updates, 2000);
  absl::SetFlag(&FLAGS_final_alpha, 0.002);
  absl::SetFlag(&FLAGS_anneal_particles, false);
  absl::StatusOr<SqlConfig> c = SqlConfigFromFlags(3, 2);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->anneal_updates, 2000);
  EXPECT_EQ(c->final_alpha, 0.002);
  EXPECT_FALSE(c->anneal_particles);
  absl::SetFlag(&FLAGS_final_alpha, 0.5);
  EXPECT_EQ(SqlConfigFromFlags(3, 2).status().message(),
            "--final_alpha=0.5: must be at most the starting alpha "
            "(--reward_scale=30: alpha 0.0333333)");
  absl::SetFlag(&FLAGS_final_alpha, 0.001);
  absl::SetFlag(&FLAGS_algorithm, "ddpg");
  EXPECT_EQ(SqlConfigFromFlags(3, 2).status().message().rfind(
                "--anneal_updates=2000: ", 0),
            0u);
  absl::SetFlag(&FLAGS_algorithm, "sql");
  absl::SetFlag(&FLAGS_anneal_updates, -5);
  EXPECT_EQ(SqlConfigFromFlags(3, 2).status().message(),
            "--anneal_updates=-5: must be in [0, 1099511627776]");
  absl::SetFlag(&FLAGS_anneal_updates, 0);
  absl::SetFlag(&FLAGS_reward_scale, 0.1);
  absl::SetFlag(&FLAGS_anneal_particles, true);
}

TEST(ChooseCudaGraph, RefusesAGraphWithAScheduleNamingBothFlags) {
  SqlConfig config = Annealing(10, 8, 100);
  config.observation_dim = 3;
  config.hidden = {8};
  SqlAgent agent(config);
  std::ostringstream log;
  absl::StatusOr<GraphChoice> forced =
      ChooseCudaGraph(agent, "true", /*streams=*/0, log);
  EXPECT_EQ(forced.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(forced.status().message().rfind(
                "--anneal_updates=100 with --cuda_graph=true: ", 0),
            0u)
      << forced.status();
  EXPECT_EQ(std::string(forced.status().message()).find('\n'),
            std::string::npos);
  for (const char* flag : {"auto", "false"}) {
    absl::StatusOr<GraphChoice> eager = ChooseCudaGraph(agent, flag, 0, log);
    ASSERT_TRUE(eager.ok()) << flag << eager.status();
    EXPECT_EQ(eager->graph, nullptr) << flag;
  }
}

}  // namespace
}  // namespace softq
