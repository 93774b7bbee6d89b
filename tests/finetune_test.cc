// Specification of fine-tuning from a pretrained learner checkpoint
// (learner_main --init_from, learner/learner_checkpoint.h) on the swimmer: the
// fine-tuning learner starts from the pretrained networks (same actions for the
// same inputs), with fresh optimizers and step; its annealing schedule
// (--anneal_updates) resumes from the run's own checkpoint at the point where
// it stopped.
#include <gtest/gtest.h>
#include <torch/types.h>
#include <torch/utils.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "env/environment.h"
#include "env/registry.h"
#include "learner/learner_checkpoint.h"
#include "learner/learner_setup.h"
#include "learner/sql_agent.h"
#include "policy/acting_policy.h"

namespace softq {
namespace {

SqlConfig SwimmerConfig(Algorithm algorithm = Algorithm::kSql) {
  SqlConfig config;
  config.algorithm = algorithm;
  config.observation_dim = 10;
  config.action_dim = 2;
  config.hidden = {32, 32};
  config.reward_scale = 30;
  return config;
}

std::string TempDir(const std::string& name) {
  const char* root = std::getenv("TEST_TMPDIR");
  const std::filesystem::path dir =
      std::filesystem::path(root != nullptr ? root : "/tmp") /
      ("finetune_test_" + name);
  std::filesystem::remove_all(dir);
  return dir.string();
}

// A few updates on random swimmer-shaped data, so the networks are no longer at
// their initialization.
void TrainABit(SqlAgent& agent, int updates = 20) {
  for (int i = 0; i < updates; ++i) {
    TransitionTensors b;
    b.observations = torch::randn({32, 10});
    b.actions = torch::rand({32, 2}) * 2 - 1;
    b.rewards = torch::rand({32});
    b.next_observations = torch::randn({32, 10});
    b.dones = torch::zeros({32});
    agent.Update(b);
  }
}

// Observations from the downstream task's start states.
torch::Tensor TargetTaskObservations(int n) {
  std::vector<float> flat;
  for (int i = 0; i < n; ++i) {
    absl::StatusOr<std::unique_ptr<Environment>> env =
        MakeEnvironment("swimmer_target", "", i);
    EXPECT_TRUE(env.ok());
    const std::vector<float> obs = (*env)->Reset();
    flat.insert(flat.end(), obs.begin(), obs.end());
  }
  return torch::tensor(flat).reshape({n, 10});
}

torch::Tensor ActionsOf(SqlAgent& agent, const torch::Tensor& observations,
                        ActingOptions options = {}) {
  ActingPolicy policy(10, 2, {32, 32}, /*seed=*/123, options);
  EXPECT_TRUE(policy.SetParameters(agent.PolicyParameters(), 1).ok());
  return policy.Act(observations);
}

TEST(FineTuning, StartsFromThePretrainedPolicy) {
  torch::manual_seed(0);
  SqlAgent pretrained(SwimmerConfig());
  TrainABit(pretrained);
  const std::string dir = TempDir("sql");
  ASSERT_TRUE(SaveLearnerCheckpoint(pretrained, /*version=*/7, dir).ok());

  torch::manual_seed(1);
  SqlAgent fine_tuned(SwimmerConfig());
  const torch::Tensor observations = TargetTaskObservations(16);
  ASSERT_FALSE(torch::equal(ActionsOf(fine_tuned, observations),
                            ActionsOf(pretrained, observations)));
  ASSERT_TRUE(InitializeFromLearnerCheckpoint(fine_tuned, dir).ok());
  // Same noise seed, same observations: the very same stochastic actions.
  EXPECT_TRUE(torch::equal(ActionsOf(fine_tuned, observations),
                           ActionsOf(pretrained, observations)));
  EXPECT_EQ(fine_tuned.step(), 0);  // a fresh run, not a resumption
  for (const auto& p : fine_tuned.q()->named_parameters()) {
    EXPECT_TRUE(torch::equal(
        p.value(), *pretrained.q()->named_parameters().find(p.key())));
  }
}

TEST(FineTuning, ADdpgLearnerCanStartFromAnSqlCheckpoint) {
  // Same networks: the deterministic policy of the fine-tuned learner is
  // f_phi(0; s) of the pretrained sampling network.
  torch::manual_seed(2);
  SqlAgent pretrained(SwimmerConfig());
  TrainABit(pretrained);
  const std::string dir = TempDir("ddpg");
  ASSERT_TRUE(SaveLearnerCheckpoint(pretrained, 1, dir).ok());
  SqlAgent ddpg(SwimmerConfig(Algorithm::kDdpg));
  ASSERT_TRUE(InitializeFromLearnerCheckpoint(ddpg, dir).ok());
  const torch::Tensor observations = TargetTaskObservations(8);
  EXPECT_TRUE(torch::equal(
      ActionsOf(ddpg, observations, {/*deterministic=*/true}),
      ActionsOf(pretrained, observations, {/*deterministic=*/true})));
}

TEST(FineTuning, PolicyOnlyKeepsAFreshCritic) {
  torch::manual_seed(6);
  SqlAgent pretrained(SwimmerConfig());
  TrainABit(pretrained);
  const std::string dir = TempDir("policy_only");
  ASSERT_TRUE(SaveLearnerCheckpoint(pretrained, 1, dir).ok());
  torch::manual_seed(7);
  SqlAgent fine_tuned(SwimmerConfig());
  const std::vector<torch::Tensor> fresh_q = fine_tuned.q()->parameters();
  std::vector<torch::Tensor> fresh_copy;
  for (const auto& p : fresh_q) fresh_copy.push_back(p.detach().clone());
  ASSERT_TRUE(
      InitializeFromLearnerCheckpoint(fine_tuned, dir, /*with_q=*/false).ok());
  const torch::Tensor observations = TargetTaskObservations(8);
  EXPECT_TRUE(torch::equal(ActionsOf(fine_tuned, observations),
                           ActionsOf(pretrained, observations)));
  const std::vector<torch::Tensor> q = fine_tuned.q()->parameters();
  for (size_t i = 0; i < q.size(); ++i)
    EXPECT_TRUE(torch::equal(q[i], fresh_copy[i])) << i;
}

TEST(FineTuning, RefusesACheckpointOfAnotherArchitecture) {
  torch::manual_seed(3);
  SqlConfig wide = SwimmerConfig();
  wide.hidden = {64, 64};
  SqlAgent pretrained(wide);
  const std::string dir = TempDir("wide");
  ASSERT_TRUE(SaveLearnerCheckpoint(pretrained, 1, dir).ok());
  SqlAgent agent(SwimmerConfig());
  const torch::Tensor observations = TargetTaskObservations(4);
  const torch::Tensor before = ActionsOf(agent, observations);
  const absl::Status s = InitializeFromLearnerCheckpoint(agent, dir);
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << s;
  EXPECT_TRUE(
      torch::equal(ActionsOf(agent, observations), before));  // unchanged
}

// An agent trained a bit and checkpointed with `version` into a fresh folder,
// and a second agent, initialized (and trained) differently, restored from that
// checkpoint.
struct SavedAndRestored {
  std::unique_ptr<SqlAgent> saved, restored;
  absl::StatusOr<uint64_t> version;
};

SavedAndRestored SaveAndRestore(const SqlConfig& config,
                                const std::string& name, uint64_t version) {
  SavedAndRestored out;
  torch::manual_seed(4);
  out.saved = std::make_unique<SqlAgent>(config);
  TrainABit(*out.saved);
  const std::string dir = TempDir(name);
  EXPECT_TRUE(SaveLearnerCheckpoint(*out.saved, version, dir).ok());
  torch::manual_seed(5);
  out.restored = std::make_unique<SqlAgent>(config);
  TrainABit(*out.restored,
            5);  // other parameters, moments and step, to be overwritten
  out.version = RestoreLearnerCheckpoint(*out.restored, dir);
  return out;
}

TEST(LearnerCheckpoint, RoundTripsTheDdpgTargetPolicy) {
  SqlConfig config = SwimmerConfig(Algorithm::kDdpg);
  config.target_tau = 0.1;
  SavedAndRestored agents = SaveAndRestore(config, "roundtrip", 3);
  ASSERT_TRUE(agents.version.ok()) << agents.version.status();
  EXPECT_EQ(*agents.version, 3u);
  EXPECT_EQ(agents.restored->step(), 20);
  const auto a = agents.saved->policy_target()->parameters();
  const auto b = agents.restored->policy_target()->parameters();
  for (size_t i = 0; i < a.size(); ++i)
    EXPECT_TRUE(torch::equal(a[i], b[i])) << i;
}

TEST(LearnerCheckpoint, ARestoredLearnerTakesTheSameNextStep) {
  // The next Adam step depends on the moments and bias corrections: equal
  // parameters after one more update show the optimizer state came back with
  // the networks.
  SavedAndRestored agents = SaveAndRestore(SwimmerConfig(), "next_step", 7);
  ASSERT_TRUE(agents.version.ok()) << agents.version.status();
  SqlAgent& agent = *agents.saved;
  SqlAgent& restored = *agents.restored;
  EXPECT_EQ(restored.q_optimizer().steps(), agent.q_optimizer().steps());

  TransitionTensors batch{torch::randn({32, 10}), torch::rand({32, 2}) * 2 - 1,
                          torch::rand({32}), torch::randn({32, 10}),
                          torch::zeros({32})};
  const UpdateNoise noise = agent.DrawNoise(32);
  agent.Update(batch, noise);
  restored.Update(batch, noise);
  for (auto [a, b] :
       {std::pair{agent.q()->parameters(), restored.q()->parameters()},
        std::pair{agent.policy()->parameters(),
                  restored.policy()->parameters()}}) {
    for (size_t i = 0; i < a.size(); ++i) {
      EXPECT_TRUE(torch::allclose(a[i], b[i], /*rtol=*/1e-6, /*atol=*/1e-8))
          << i;
    }
  }
}

// The paper's fine-tuning schedule (SqlConfig::anneal_updates) across a
// restart: a learner started with --init_from, checkpointed mid-schedule into
// its --checkpoint_dir and restarted from there (with --init_from still on its
// command line) continues at the same alpha and K as a run that never stopped.
TEST(FineTuning, AScheduleResumedMidwayContinuesWhereItStopped) {
  torch::manual_seed(8);
  SqlAgent pretrained(SwimmerConfig());
  TrainABit(pretrained, 25);  // the pretrained checkpoint's step is 25
  const std::string pretrained_dir = TempDir("schedule_pretrained");
  ASSERT_TRUE(SaveLearnerCheckpoint(pretrained, 3, pretrained_dir).ok());
  SqlConfig config = SwimmerConfig();
  config.kernel_particles = 16;
  config.anneal_updates = 30;  // alpha 1/30 to 0.001, K 16 to 1
  const NetworkStart start{pretrained_dir, "all",
                           TempDir("schedule_checkpoint")};

  // Uninterrupted: 40 updates through the schedule's end.
  std::vector<ScheduledValues> uninterrupted;
  {
    SqlAgent agent(config);
    std::ostringstream log;
    ASSERT_TRUE(StartNetworks(agent, {pretrained_dir, "all", ""}, log).ok());
    EXPECT_EQ(agent.step(), 0);  // fine-tuning counts from its own start
    EXPECT_NE(log.str().find("annealing over the first 30 updates"),
              std::string::npos)
        << log.str();
    for (int i = 0; i < 40; ++i) {
      uninterrupted.push_back(agent.scheduled());
      TrainABit(agent, 1);
    }
  }
  EXPECT_EQ(uninterrupted[0].reward_scale, 30.0);
  EXPECT_EQ(uninterrupted[0].kernel_particles, 16);
  EXPECT_EQ(uninterrupted[35].kernel_particles, 1);
  EXPECT_EQ(uninterrupted[35].reward_scale, 1000.0);

  // Stopped after 12 updates (its last checkpoint), then restarted.
  {
    SqlAgent first(config);
    std::ostringstream log;
    ASSERT_TRUE(StartNetworks(first, start, log).ok());
    EXPECT_EQ(first.step(), 0);
    TrainABit(first, 12);
    ASSERT_TRUE(SaveLearnerCheckpoint(first, 5, start.checkpoint_dir).ok());
  }
  SqlAgent resumed(config);
  std::ostringstream log;
  absl::StatusOr<uint64_t> version = StartNetworks(resumed, start, log);
  ASSERT_TRUE(version.ok()) << version.status();
  EXPECT_EQ(*version, 5u);
  ASSERT_EQ(resumed.step(), 12);
  EXPECT_NE(log.str().find("at step 12: alpha"), std::string::npos)
      << log.str();
  for (int i = 12; i < 40; ++i) {
    EXPECT_EQ(resumed.scheduled().reward_scale, uninterrupted[i].reward_scale)
        << i;
    EXPECT_EQ(resumed.scheduled().kernel_particles,
              uninterrupted[i].kernel_particles)
        << i;
    TrainABit(resumed, 1);
  }
}

}  // namespace
}  // namespace softq
