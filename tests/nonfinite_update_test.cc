// The learner refuses poison (issue 29): an update whose loss or gradient is
// not finite is skipped (networks and optimizer state as they were) and
// counted; the Learner stops after max_skipped_updates of them in a row with
// one line naming the cause; the parameter service never stores non-finite
// parameters; a checkpoint of a diverged network is not written.
#include <gtest/gtest.h>
#include <torch/nn/module.h>
#include <torch/types.h>
#include <torch/utils.h>

#include <cmath>
#include <deque>
#include <filesystem>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "learner/flat_adam.h"
#include "learner/host_parameters.h"
#include "learner/learner.h"
#include "learner/learner_checkpoint.h"
#include "learner/parameter_service.h"
#include "learner/sql_agent.h"

namespace softq {
namespace {

constexpr int64_t kBatch = 32;

SqlConfig Config(Algorithm algorithm) {
  SqlConfig config;  // multi-goal sized: observations 2, actions 2
  config.algorithm = algorithm;
  config.hidden = {32, 32};
  return config;
}

TransitionTensors GoodBatch(int64_t batch = kBatch) {
  return {torch::rand({batch, 2}) * 2 - 1, torch::rand({batch, 2}) * 2 - 1,
          torch::randn({batch}), torch::rand({batch, 2}) * 2 - 1,
          (torch::rand({batch}) < 0.1).to(torch::kFloat)};
}

// The poison of issue 29's probe, each kind alone: an infinite reward, a finite
// but absurd reward (3e38), finite but absurd observations (1e30).
enum class Poison { kInfiniteReward, kHugeReward, kHugeObservations };

std::string Name(Poison poison) {
  switch (poison) {
    case Poison::kInfiniteReward:
      return "infinite reward";
    case Poison::kHugeReward:
      return "reward 3e38";
    case Poison::kHugeObservations:
      return "observations 1e30";
  }
  return "?";
}

TransitionTensors PoisonBatch(Poison poison) {
  TransitionTensors batch = GoodBatch();
  switch (poison) {
    case Poison::kInfiniteReward:
      batch.rewards[3] = std::numeric_limits<float>::infinity();
      break;
    case Poison::kHugeReward:
      batch.rewards.fill_(3e38);
      break;
    case Poison::kHugeObservations:
      batch.observations.fill_(1e30);
      batch.next_observations.fill_(1e30);
      break;
  }
  return batch;
}

// Every parameter of the four networks, in order (clones).
std::vector<torch::Tensor> Networks(SqlAgent& agent) {
  std::vector<torch::Tensor> out;
  for (torch::nn::Module* m : std::vector<torch::nn::Module*>{
           &*agent.q(), &*agent.q_target(), &*agent.policy(),
           &*agent.policy_target()}) {
    for (const torch::Tensor& p : m->parameters())
      out.push_back(p.detach().clone());
  }
  return out;
}

void ExpectSame(const std::vector<torch::Tensor>& a,
                const std::vector<torch::Tensor>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i)
    EXPECT_TRUE(torch::equal(a[i], b[i])) << "tensor " << i;
}

// Two agents from the same seed take the same good update; one then gets a
// poisoned batch. Its networks stay those of the other, and so does its
// optimizer state: the next good update (same batch, same noise) leaves both
// agents equal again.
void ExpectAPoisonedUpdateToBeSkipped(Algorithm algorithm, Poison poison) {
  SCOPED_TRACE(Name(poison));
  torch::manual_seed(0);
  SqlAgent poisoned(Config(algorithm));
  torch::manual_seed(0);
  SqlAgent clean(Config(algorithm));
  const TransitionTensors first = GoodBatch();
  const UpdateNoise first_noise = clean.DrawNoise(kBatch);
  poisoned.Update(first, first_noise);
  clean.Update(first, first_noise);
  ExpectSame(Networks(poisoned), Networks(clean));

  poisoned.Update(PoisonBatch(poison), poisoned.DrawNoise(kBatch));
  ExpectSame(Networks(poisoned), Networks(clean));
  EXPECT_EQ(poisoned.q_optimizer().steps(), 1);
  EXPECT_EQ(poisoned.policy_optimizer().steps(), 1);
  const SkippedUpdates skipped = poisoned.Skipped();
  EXPECT_EQ(skipped.total, 1);
  EXPECT_EQ(skipped.consecutive, 1);
  EXPECT_EQ(skipped.last_step, 2);
  EXPECT_NE(skipped.last_cause & kNonFiniteCriticLoss, 0)
      << NonFiniteCauses(skipped.last_cause);
  EXPECT_EQ(poisoned.step(), 2);  // the step counts it (skipped() says so)

  const TransitionTensors next = GoodBatch();
  const UpdateNoise next_noise = clean.DrawNoise(kBatch);
  poisoned.Update(next, next_noise);
  clean.Update(next, next_noise);
  ExpectSame(Networks(poisoned), Networks(clean));
  EXPECT_EQ(poisoned.Skipped().total, 1);
  EXPECT_EQ(poisoned.Skipped().consecutive, 0);
  EXPECT_EQ(clean.Skipped().total, 0);
  for (const torch::Tensor& p : Networks(poisoned))
    EXPECT_TRUE(torch::isfinite(p).all().item<bool>());
}

TEST(NonFiniteUpdate, SqlSkipsAPoisonedBatchAndLeavesItsStateUnchanged) {
  for (Poison poison : {Poison::kInfiniteReward, Poison::kHugeReward,
                        Poison::kHugeObservations}) {
    ExpectAPoisonedUpdateToBeSkipped(Algorithm::kSql, poison);
  }
}

TEST(NonFiniteUpdate, DdpgSkipsAPoisonedBatchAndLeavesItsStateUnchanged) {
  for (Poison poison : {Poison::kInfiniteReward, Poison::kHugeReward,
                        Poison::kHugeObservations}) {
    ExpectAPoisonedUpdateToBeSkipped(Algorithm::kDdpg, poison);
  }
}

TEST(NonFiniteUpdate, NamesTheCauses) {
  EXPECT_EQ(NonFiniteCauses(0), "none");
  EXPECT_EQ(NonFiniteCauses(kNonFiniteCriticLoss | kNonFinitePolicyGradient),
            "critic loss, policy gradient");
}

TEST(FlatAdam, AStepFlaggedNonFiniteChangesNothing) {
  std::vector<torch::Tensor> params = {torch::randn({3, 2}).requires_grad_(),
                                       torch::randn({4}).requires_grad_()};
  FlatAdam adam(params, 1e-2);
  const auto step = [&](float flag) {
    adam.ZeroGrad();
    params[0].mutable_grad() = torch::randn({3, 2});
    params[1].mutable_grad() = torch::randn({4});
    adam.CountNextStep();  // as the CUDA graph's second stream does
    adam.Step(torch::full({}, flag));
  };
  step(0);
  const torch::Tensor before = adam.flat_parameters().clone();
  params[1].mutable_grad() = torch::full({4}, NAN);
  step(1);
  EXPECT_TRUE(torch::equal(adam.flat_parameters(), before));
  EXPECT_EQ(adam.steps(), 1);
  step(0);
  EXPECT_FALSE(torch::equal(adam.flat_parameters(), before));
  EXPECT_EQ(adam.steps(), 2);
}

TEST(FlatAdam, SaysWhetherItsGradientsAreFinite) {
  std::vector<torch::Tensor> params = {torch::randn({3}).requires_grad_()};
  FlatAdam adam(params, 1e-2);
  adam.ZeroGrad();
  EXPECT_TRUE(adam.GradientsFinite().item<bool>());  // none: zeros
  params[0].mutable_grad() = torch::tensor({1.0f, INFINITY, 0.0f});
  EXPECT_FALSE(adam.GradientsFinite().item<bool>());
}

// Hands out the queued batches, then DeadlineExceeded.
class QueueSource : public BatchSource {
 public:
  void Add(TransitionTensors batch, int times = 1) {
    for (int i = 0; i < times; ++i) batches_.push_back(batch);
  }
  absl::StatusOr<TransitionTensors> Next(absl::Duration) override {
    if (batches_.empty()) return absl::DeadlineExceededError("empty");
    TransitionTensors b = batches_.front();
    batches_.pop_front();
    return b;
  }

 private:
  std::deque<TransitionTensors> batches_;
};

class RecordingPublisher : public ParameterPublisher {
 public:
  void Publish(const NamedTensors& params, uint64_t version, int64_t) override {
    published.emplace_back(version, params);
  }
  std::vector<std::pair<uint64_t, NamedTensors>> published;
};

TEST(NonFiniteLearner, StopsAfterMaxSkippedUpdatesInARowNamingTheCause) {
  torch::manual_seed(0);
  SqlAgent agent(Config(Algorithm::kSql));
  QueueSource source;
  RecordingPublisher publisher;
  Learner learner(&agent, &source, &publisher,
                  {/*publish_interval=*/2, /*max_skipped_updates=*/5});
  source.Add(GoodBatch(), 3);
  // A good batch ends a streak: 4 skipped, 1 applied, then 5 skipped stop it.
  source.Add(PoisonBatch(Poison::kHugeReward), 4);
  source.Add(GoodBatch());
  source.Add(PoisonBatch(Poison::kHugeReward), 5);
  for (int i = 0; i < 12; ++i) {
    ASSERT_TRUE(learner.Step(absl::ZeroDuration()).ok()) << "update " << i + 1;
  }
  std::vector<torch::Tensor> kept = Networks(agent);
  const absl::Status stop = learner.Step(absl::ZeroDuration());
  EXPECT_TRUE(absl::IsAborted(stop)) << stop;
  EXPECT_EQ(std::string(stop.message()),
            "5 updates in a row skipped: non-finite critic loss, the last at "
            "update 13; the parameters are update 8's");
  EXPECT_EQ(stop.message().find('\n'), absl::string_view::npos);
  ExpectSame(Networks(agent), kept);
  EXPECT_EQ(agent.Skipped().total, 9);
  // Published: version 1 at construction, then after updates 2, 4, ..., 12
  // (none after the stop), all finite.
  ASSERT_EQ(publisher.published.size(), 7u);
  for (const auto& [version, params] : publisher.published)
    EXPECT_TRUE(CheckFinite(params).ok()) << "version " << version;
}

TEST(NonFiniteLearner, NeverStopsWithoutALimit) {
  SqlAgent agent(Config(Algorithm::kSql));
  QueueSource source;
  RecordingPublisher publisher;
  Learner learner(&agent, &source, &publisher, {1, /*max_skipped_updates=*/0});
  source.Add(PoisonBatch(Poison::kInfiniteReward), 20);
  for (int i = 0; i < 20; ++i)
    ASSERT_TRUE(learner.Step(absl::ZeroDuration()).ok());
  EXPECT_EQ(agent.Skipped().consecutive, 20);
}

NamedTensors Parameters(float first) {
  return {{"w", torch::tensor({first, 2.0f})}, {"b", torch::ones({1})}};
}

TEST(ParameterServiceRefuses, NonFiniteParametersAreCountedAndNeverStored) {
  ParameterService service;
  service.Publish(Parameters(1), 1, 10);
  service.Publish(Parameters(NAN), 2, 20);
  service.Publish(Parameters(INFINITY), 3, 30);
  EXPECT_EQ(service.latest_version(), 1u);
  EXPECT_EQ(service.refused_publications(), 2u);
  proto::NetworkParameters latest;
  ASSERT_TRUE(service.GetLatest(nullptr, nullptr, &latest).ok());
  EXPECT_EQ(latest.version(), 1u);
  service.Publish(Parameters(4), 4, 40);
  EXPECT_EQ(service.latest_version(), 4u);
}

TEST(CheckFinite, NamesTheFirstNonFiniteValue) {
  EXPECT_TRUE(CheckFinite(Parameters(1)).ok());
  const absl::Status s = CheckFinite(
      {{"w", torch::ones({2})}, {"b", torch::tensor({0.0f, 1.0f, NAN})}});
  EXPECT_TRUE(absl::IsFailedPrecondition(s)) << s;
  EXPECT_EQ(std::string(s.message()), "non-finite parameter b[2] = nan");
}

TEST(NonFiniteCheckpoint, ADivergedNetworkIsNotWrittenOverTheLastGoodOne) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  const std::string dir =
      std::string(tmp != nullptr ? tmp : "/tmp") + "/nonfinite_checkpoint";
  std::filesystem::remove_all(dir);
  SqlAgent agent(Config(Algorithm::kSql));
  agent.Update(GoodBatch());
  ASSERT_TRUE(SaveLearnerCheckpoint(agent, 7, dir).ok());
  const std::vector<torch::Tensor> good = Networks(agent);
  {
    torch::NoGradGuard no_grad;
    agent.policy()->parameters()[0][0][0] = NAN;
  }
  const absl::Status s = SaveLearnerCheckpoint(agent, 8, dir);
  EXPECT_TRUE(absl::IsFailedPrecondition(s)) << s;
  EXPECT_NE(s.message().find("policy: non-finite parameter"),
            absl::string_view::npos)
      << s;
  SqlAgent restored(Config(Algorithm::kSql));
  absl::StatusOr<uint64_t> version = RestoreLearnerCheckpoint(restored, dir);
  ASSERT_TRUE(version.ok()) << version.status();
  EXPECT_EQ(*version, 7u);
  ExpectSame(Networks(restored), good);
}

}  // namespace
}  // namespace softq
