// End to end in one process: the actor, the in-memory replay and the learner,
// wired as in Algorithm 1, learn a multimodal policy on the multi-goal task.
#include <gtest/gtest.h>
#include <torch/autograd.h>
#include <torch/types.h>
#include <torch/utils.h>

#include <iostream>
#include <string>
#include <vector>

#include "actor/actor.h"
#include "common/torch_threads.h"
#include "env/registry.h"
#include "learner/in_process_trainer.h"
#include "learner/learner.h"
#include "learner/sql_math.h"

namespace softq {
namespace {

class RecordingSink : public TransitionSink {
 public:
  absl::Status Write(proto::TransitionBatch batch) override {
    batches.push_back(std::move(batch));
    return absl::OkStatus();
  }
  std::vector<proto::TransitionBatch> batches;
};

TEST(Actor, StreamsConsistentTransitionsFromEveryEnvironment) {
  // The policy's initial weights come from LibTorch's default generator, which
  // is seeded at random per process. About one seed in twenty gives an
  // untrained policy that steers every episode into a goal, so nothing times
  // out: seeded, the test is the same every run.
  torch::manual_seed(0);
  std::vector<std::unique_ptr<Environment>> envs;
  for (int i = 0; i < 3; ++i)
    envs.push_back(*MakeEnvironment("multigoal", "", i));
  ActingPolicy policy(2, 2, {16}, 0);
  RecordingSink sink;
  Actor actor(std::move(envs), &policy, &sink,
              {.actor_id = 4, .steps_per_write = 2});
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(actor.Step().ok());
  EXPECT_EQ(actor.env_steps(), 300);
  ASSERT_EQ(sink.batches.size(), 50u);
  int64_t timeouts = 0;
  for (size_t b = 0; b < sink.batches.size(); ++b) {
    const proto::TransitionBatch& batch = sink.batches[b];
    EXPECT_EQ(batch.actor_id(), 4u);
    ASSERT_EQ(batch.rewards_size(), 6);  // 3 envs x 2 steps
    for (int i = 0; i < 3; ++i) {
      // Row i (step 1) continues into row i + 3 (step 2) unless the episode
      // ended.
      if (batch.step_ids(i + 3) != 0) {
        EXPECT_EQ(batch.episode_ids(i + 3), batch.episode_ids(i));
        EXPECT_EQ(batch.next_observations(2 * i),
                  batch.observations(2 * (i + 3)));
      }
    }
    for (int i = 0; i < 6; ++i) {
      if (batch.step_ids(i) == 29 && !batch.dones(i)) ++timeouts;
    }
  }
  EXPECT_GT(
      timeouts,
      0);  // a random policy times out, and time-outs are stored as not done
  EXPECT_GT(actor.episodes(), 0);
  EXPECT_EQ(static_cast<int64_t>(actor.TakeEpisodeReturns().size()),
            actor.episodes());
}

// n random multi-goal-shaped transitions, about a fifth of them terminal.
TransitionTensors RandomMultiGoalBatch(int64_t n) {
  TransitionTensors b;
  b.observations = torch::randn({n, 2});
  b.actions = torch::rand({n, 2}) * 2 - 1;
  b.rewards = torch::randn({n});
  b.next_observations = torch::randn({n, 2});
  b.dones = (torch::rand({n}) < 0.2).to(torch::kFloat32);
  return b;
}

// `optimizer`'s gathered gradients, parameter by parameter, against `expected`.
void ExpectFlatGradients(const FlatAdam& optimizer,
                         const std::vector<torch::Tensor>& params,
                         const std::vector<torch::Tensor>& expected,
                         const std::string& what) {
  int64_t offset = 0;
  for (size_t i = 0; i < params.size(); ++i) {
    const torch::Tensor got =
        optimizer.flat_gradients().narrow(0, offset, params[i].numel());
    EXPECT_TRUE(
        torch::allclose(got.view(params[i].sizes()), expected[i], 1e-4, 1e-6))
        << what << " parameter " << i;
    offset += params[i].numel();
  }
}

TEST(SqlAgent, PublishesACopyOfThePolicysParametersInTheirOrder) {
  torch::manual_seed(0);
  SqlAgent agent(SqlConfig{});
  const NamedTensors published = agent.PolicyParameters();
  const auto live = agent.policy()->named_parameters();
  ASSERT_EQ(published.size(), live.size());
  for (size_t i = 0; i < published.size(); ++i) {
    EXPECT_EQ(published[i].first, live[i].key());
    EXPECT_TRUE(published[i].second.device().is_cpu());
    EXPECT_FALSE(published[i].second.requires_grad());
    EXPECT_TRUE(torch::equal(published[i].second, live[i].value().detach()));
  }
  // An update moves the network, not what was published.
  const std::vector<torch::Tensor> before = [&] {
    std::vector<torch::Tensor> copies;
    for (const auto& [name, value] : published) copies.push_back(value.clone());
    return copies;
  }();
  agent.Update(RandomMultiGoalBatch(16));
  for (size_t i = 0; i < published.size(); ++i) {
    EXPECT_TRUE(torch::equal(published[i].second, before[i]))
        << published[i].first;
    EXPECT_FALSE(torch::equal(published[i].second, live[i].value().detach()))
        << published[i].first;
  }
}

TEST(SqlAgent, LearnsTheSameFromAPackedBatch) {
  // The replay service's batches arrive packed (fields as column views of one
  // tensor): updates on them equal updates on separate tensors holding the same
  // numbers.
  torch::manual_seed(5);
  SqlAgent separate(SqlConfig{});
  torch::manual_seed(5);
  SqlAgent packed(SqlConfig{});
  for (int i = 0; i < 3; ++i) {
    const TransitionTensors b = RandomMultiGoalBatch(16);
    const TransitionTensors views = PackedTransitions(
        torch::cat({b.observations, b.actions, b.rewards.unsqueeze(1),
                    b.next_observations, b.dones.unsqueeze(1)},
                   1),
        2, 2);
    ASSERT_FALSE(views.observations.is_contiguous());
    const UpdateNoise noise = separate.DrawNoise(16);
    separate.Update(b, noise);
    packed.Update(views, noise);
  }
  const auto a = separate.policy()->parameters(),
             b = packed.policy()->parameters();
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_TRUE(torch::allclose(a[i], b[i], 1e-6, 1e-7))
        << "policy parameter " << i;
  }
  const auto qa = separate.q()->parameters(), qb = packed.q()->parameters();
  for (size_t i = 0; i < qa.size(); ++i) {
    EXPECT_TRUE(torch::allclose(qa[i], qb[i], 1e-6, 1e-7))
        << "Q parameter " << i;
  }
}

TEST(SqlAgent, WritesOutThePolicysGradientsAsAutogradWouldFindThem) {
  // The update's policy gradients (a written-out backward pass into the
  // optimizer's slots) against autograd's gradients of the SVGD surrogate, with
  // the same noise.
  torch::manual_seed(8);
  SqlAgent agent(SqlConfig{});
  const TransitionTensors batch = RandomMultiGoalBatch(16);
  const UpdateNoise noise = agent.DrawNoise(16);
  const std::vector<torch::Tensor> params = agent.policy()->parameters();
  const std::vector<torch::Tensor> expected = torch::autograd::grad(
      {agent.PolicySurrogate(batch.observations, noise.policy_noise)}, params);
  agent.PolicyGradients(batch, noise);
  ExpectFlatGradients(agent.policy_optimizer(), params, expected, "policy");
}

TEST(SqlAgent, WritesOutQsGradientsAsAutogradWouldFindThem) {
  // The update's Q gradients (a written-out backward pass into the optimizer's
  // slots) against autograd's gradients of J_Q, with the same value actions.
  torch::manual_seed(9);
  SqlAgent agent(SqlConfig{});
  const TransitionTensors batch = RandomMultiGoalBatch(16);
  const UpdateNoise noise = agent.DrawNoise(16);
  const std::vector<torch::Tensor> params = agent.q()->parameters();
  const std::vector<torch::Tensor> expected = torch::autograd::grad(
      {agent.CriticLoss(batch, noise.value_actions)}, params);
  agent.CriticGradients(batch, noise);
  ExpectFlatGradients(agent.q_optimizer(), params, expected, "Q");
}

TEST(SqlAgent, WithoutSteinRepulsionFollowsTheKernelSmoothedScoreOnly) {
  // SqlConfig::svgd_repulsion = 0 (the ablation) drops the kernel-gradient
  // term of the SVGD direction: Delta(y_i) = mean_j kappa(x_j, y_i) score(x_j).
  torch::manual_seed(12);
  const torch::Tensor x = torch::randn({3, 5, 2}), y = torch::randn({3, 4, 2}),
                      g = torch::randn({3, 5, 2});
  const sql::RbfKernel k = sql::AdaptiveRbfKernel(x, y);
  EXPECT_TRUE(torch::allclose(
      sql::SteinDirection(k, x, y, g, /*scale=*/1.0, /*repulsion=*/0.0),
      torch::bmm(k.kappa.transpose(1, 2), g) / 5, 1e-5, 1e-6));
  // Half the weight: half the way between the two directions.
  EXPECT_TRUE(torch::allclose(sql::SteinDirection(k, x, y, g, 1.0, 0.5),
                              0.5 * (sql::SteinDirection(k, x, y, g) +
                                     sql::SteinDirection(k, x, y, g, 1.0, 0.0)),
                              1e-5, 1e-6));
  // Asked for the fused kernel, the loss gradient still honours the weight.
  sql::SvgdGradientOptions options;
  options.fused = true;
  options.repulsion = 0.0;
  EXPECT_TRUE(
      torch::allclose(sql::SvgdLossGradient(x, y, g, options).loss_gradient,
                      -sql::SteinDirection(k, x, y, g, 1.0, 0.0), 1e-5, 1e-6));

  // The agent's update takes it from its config, and its written-out policy
  // gradients still match autograd's of its surrogate.
  SqlConfig config;
  config.svgd_repulsion = 0.0;
  torch::manual_seed(8);
  SqlAgent ablated(config);
  torch::manual_seed(8);
  SqlAgent full(SqlConfig{});
  const TransitionTensors batch = RandomMultiGoalBatch(16);
  const UpdateNoise noise = ablated.DrawNoise(16);
  const std::vector<torch::Tensor> params = ablated.policy()->parameters();
  const std::vector<torch::Tensor> expected = torch::autograd::grad(
      {ablated.PolicySurrogate(batch.observations, noise.policy_noise)},
      params);
  ablated.PolicyGradients(batch, noise);
  ExpectFlatGradients(ablated.policy_optimizer(), params, expected,
                      "policy without repulsion");
  full.PolicyGradients(batch, noise);
  EXPECT_FALSE(torch::allclose(ablated.policy_optimizer().flat_gradients(),
                               full.policy_optimizer().flat_gradients(), 1e-3,
                               1e-5))
      << "the ablation changed nothing";
}

// Hands out one fixed batch.
class FixedBatch : public BatchSource {
 public:
  explicit FixedBatch(TransitionTensors batch) : batch_(std::move(batch)) {}
  absl::StatusOr<TransitionTensors> Next(absl::Duration) override {
    return batch_;
  }

 private:
  TransitionTensors batch_;
};

class CountingPublisher : public ParameterPublisher {
 public:
  void Publish(const NamedTensors&, uint64_t version,
               int64_t learner_step) override {
    ++publications;
    versions.push_back(version);
    steps.push_back(learner_step);
  }
  int publications = 0;
  std::vector<uint64_t> versions;
  std::vector<int64_t> steps;
};

// Fails with the given status.
class FailingSource : public BatchSource {
 public:
  explicit FailingSource(absl::Status status) : status_(std::move(status)) {}
  absl::StatusOr<TransitionTensors> Next(absl::Duration) override {
    return status_;
  }

 private:
  absl::Status status_;
};

TEST(Learner, PublishesVersionOneAtOnceThenEveryPublishInterval) {
  torch::manual_seed(0);
  SqlAgent agent(SqlConfig{});
  FixedBatch source(RandomMultiGoalBatch(8));
  CountingPublisher publisher;
  Learner learner(&agent, &source, &publisher, {/*publish_interval=*/3},
                  /*first_version=*/5);
  for (int i = 0; i < 7; ++i) ASSERT_TRUE(learner.Step(absl::Seconds(1)).ok());
  EXPECT_EQ(publisher.versions,
            (std::vector<uint64_t>{5, 6, 7}));  // at steps 0, 3 and 6
  EXPECT_EQ(publisher.steps, (std::vector<int64_t>{0, 3, 6}));
  EXPECT_EQ(learner.version(), 7u);
}

TEST(Learner, PassesTheSourcesErrorOnAndUpdatesNothing) {
  torch::manual_seed(0);
  SqlAgent agent(SqlConfig{});
  FailingSource source(
      absl::DeadlineExceededError("replay below its minimum size"));
  CountingPublisher publisher;
  Learner learner(&agent, &source, &publisher, {/*publish_interval=*/1});
  const absl::Status s = learner.Step(absl::Milliseconds(10));
  EXPECT_TRUE(absl::IsDeadlineExceeded(s)) << s;
  EXPECT_EQ(s.message(), "replay below its minimum size");
  EXPECT_EQ(agent.step(), 0);
  EXPECT_EQ(publisher.publications, 1);
}

TEST(Learner, RefusesABatchOfAnotherEnvironmentBeforeUpdating) {
  torch::manual_seed(0);
  SqlAgent agent(SqlConfig{});  // observation_dim 2, action_dim 2
  TransitionTensors wide = RandomMultiGoalBatch(8);
  wide.observations = torch::randn({8, 3});
  wide.next_observations = torch::randn({8, 3});
  FixedBatch source(wide);
  CountingPublisher publisher;
  Learner learner(&agent, &source, &publisher, {/*publish_interval=*/1});
  const torch::Tensor before = agent.policy()->parameters()[0].clone();
  const absl::Status s = learner.Step(absl::Seconds(1));
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("observations has shape [8, 3]"),
            std::string::npos)
      << s;
  EXPECT_EQ(agent.step(), 0);
  EXPECT_TRUE(torch::equal(agent.policy()->parameters()[0], before));
  EXPECT_EQ(publisher.publications, 1);  // only the initial version

  FixedBatch right(RandomMultiGoalBatch(8));
  Learner same_env(&agent, &right, &publisher, {/*publish_interval=*/1});
  EXPECT_TRUE(same_env.Step(absl::Seconds(1)).ok());
  EXPECT_EQ(agent.step(), 1);
}

TEST(InProcessTraining, RefusesOptionsItCannotRunWithTheFieldsName) {
  InProcessOptions options;
  options.publish_interval = 0;
  absl::StatusOr<InProcessResult> result =
      TrainInProcess(options, [](const std::string&) {});
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(result.status().message().find("--publish_interval=0"),
            std::string::npos)
      << result.status();
  options.publish_interval = 1;
  options.replay_capacity = 0;
  EXPECT_NE(
      ValidateInProcessOptions(options).message().find("--replay_capacity"),
      std::string::npos);
}

TEST(InProcessTraining, WithFrozenNetworksNeverCountsAsLearned) {
  // An untrained (here: never trained) policy never meets the criterion, so
  // the run ends unlearned and says so.
  InProcessOptions options;
  options.sql.q_learning_rate = 0;
  options.sql.policy_learning_rate = 0;
  options.max_env_steps = 400;
  options.eval_interval = 200;
  options.eval_rollouts = 20;
  options.stop_when_solved = true;
  absl::StatusOr<InProcessResult> result =
      TrainInProcess(options, [](const std::string&) {});
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->env_steps, 400);
  EXPECT_EQ(result->evaluations, 2);  // the one at step 400 is the final one
  EXPECT_FALSE(result->learned);
  EXPECT_EQ(result->learned_env_steps, -1);
}

// The multi-goal learning check, for each seed: training stops only after two
// consecutive evaluations (each of 100 fresh rollouts) meet the criterion, and
// the final (exported) policy is the one that met it the second time.
class MultiGoalLearning : public ::testing::TestWithParam<uint64_t> {};

TEST_P(MultiGoalLearning, ReachesAllFourGoalsOnTwoEvaluationsInARow) {
  std::cout << ConfigureTorchThreads(1) << std::endl;
  InProcessOptions options;
  options.seed = GetParam();
  options.max_env_steps = 15000;
  options.eval_interval = 1000;
  options.stop_when_solved = true;
  absl::StatusOr<InProcessResult> result = TrainInProcess(
      options, [](const std::string& line) { std::cout << line << std::endl; });
  ASSERT_TRUE(result.ok()) << result.status();
  std::cout << "seed " << options.seed << ": first solved at "
            << result->first_solved_env_steps << " env steps, learned at "
            << result->learned_env_steps << ", " << result->updates
            << " updates, " << result->seconds << " s" << std::endl;
  EXPECT_TRUE(result->learned) << result->final_summary;
  EXPECT_EQ(result->learned_env_steps, result->env_steps);  // stopped there
  EXPECT_GE(result->learned_env_steps,
            result->first_solved_env_steps + options.eval_interval);
  EXPECT_TRUE(result->final_evaluation.Solved())
      << result->final_evaluation.Summary();
}

INSTANTIATE_TEST_SUITE_P(TwoSeeds, MultiGoalLearning,
                         ::testing::Values(uint64_t{0}, uint64_t{1}));

}  // namespace
}  // namespace softq
