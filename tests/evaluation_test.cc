// Specification of eval/: the rollout loop, the multi-goal criterion, one
// evaluation on any environment, EvaluationSeed and the stopping rule.
#include "eval/evaluation.h"

#include <gtest/gtest.h>
#include <torch/types.h>
#include <torch/utils.h>

#include <cmath>
#include <numeric>

#include "env/multigoal.h"
#include "eval/goal_coverage.h"
#include "learner/learner_evaluations.h"
#include "policy/acting_policy.h"
#include "policy/networks.h"

namespace softq {
namespace {

GoalCoverage Counts(int rollouts, std::array<int, 4> goals, int reached_any) {
  GoalCoverage e;
  e.rollouts = rollouts;
  e.goal_counts = goals;
  e.reached_any = reached_any;
  return e;
}

TEST(GoalCoverage, SolvedNeedsEveryGoalInATenthAndSomeGoalInNineTenths) {
  EXPECT_TRUE(Counts(100, {25, 25, 25, 25}, 100).Solved());
  EXPECT_TRUE(
      Counts(100, {10, 10, 10, 60}, 90).Solved());  // both bounds exactly
  EXPECT_FALSE(
      Counts(100, {9, 11, 10, 60}, 90).Solved());  // one goal under a tenth
  EXPECT_EQ(Counts(100, {9, 11, 10, 60}, 90).GoalsCovered(), 3);
  EXPECT_FALSE(
      Counts(100, {10, 10, 10, 59}, 89).Solved());          // too few reach any
  EXPECT_FALSE(Counts(100, {100, 0, 0, 0}, 100).Solved());  // unimodal
  EXPECT_FALSE(Counts(0, {0, 0, 0, 0}, 0).Solved());
}

// Parameters that make a deterministic policy ({8} hidden) always move along
// +x: all weights 0, the output bias (10, 0).
NamedTensors AlwaysPlusX() {
  SamplingNetwork shape(2, 2, std::vector<int64_t>{8});
  NamedTensors params;
  for (const auto& p : shape->named_parameters()) {
    params.emplace_back(p.key(), torch::zeros_like(p.value()));
  }
  params.back().second = torch::tensor({10.0f, 0.0f});  // the last layer's bias
  return params;
}

TEST(Evaluate, CountsThePolicysGoalAndCallsAUnimodalPolicyUnsolved) {
  ActingPolicy policy(2, 2, {8}, /*seed=*/3, {/*deterministic=*/true});
  ASSERT_TRUE(policy.SetParameters(AlwaysPlusX(), 1).ok());
  const absl::StatusOr<Evaluation> e =
      Evaluate(policy, {"multigoal", "", 50, /*seed=*/7});
  ASSERT_TRUE(e.ok()) << e.status();
  ASSERT_TRUE(e->goals.has_value());
  EXPECT_EQ(e->goals->rollouts, 50);
  const int plus_x = MultiGoalEnv::GoalAt(5, 0);
  EXPECT_EQ(e->goals->goal_counts[plus_x], 50) << e->Summary();
  EXPECT_EQ(e->goals->reached_any, 50);
  EXPECT_EQ(e->GoalsCovered(), 1);
  EXPECT_FALSE(e->Solved());
  EXPECT_EQ(e->goals->trajectories.size(), 50u);
  EXPECT_EQ(e->returns.size(), 50u);
  EXPECT_EQ(e->Summary().rfind("goals 1/4 (+x 50, -x 0, +y 0, -y 0 of 50), "
                               "reached 100%, return ",
                               0),
            0u)
      << e->Summary();
}

TEST(Evaluate, AnUntrainedPolicyIsNotSolved) {
  torch::manual_seed(11);
  ActingPolicy policy(2, 2, {128, 128}, /*seed=*/11);
  const absl::StatusOr<Evaluation> e =
      Evaluate(policy, {"multigoal", "", 100, /*seed=*/7});
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_FALSE(e->Solved());
}

TEST(Evaluate, GivesTheReturnsMeanAndStddevOnAnyEnvironment) {
  torch::manual_seed(5);
  ActingPolicy policy(10, 2, {16}, /*seed=*/5);
  const absl::StatusOr<Evaluation> e =
      Evaluate(policy, {"swimmer_speed", "max_steps=20", 3, /*seed=*/1});
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_FALSE(e->goals.has_value());  // no criterion but the multi-goal one
  EXPECT_FALSE(e->Solved());
  ASSERT_EQ(e->returns.size(), 3u);
  const double mean =
      std::accumulate(e->returns.begin(), e->returns.end(), 0.0) / 3;
  double sq = 0;
  for (double r : e->returns) sq += (r - mean) * (r - mean);
  EXPECT_DOUBLE_EQ(e->mean_return, mean);
  EXPECT_DOUBLE_EQ(e->return_stddev, std::sqrt(sq / 3));
  EXPECT_NE(e->Summary().find("over 3 rollouts"), std::string::npos)
      << e->Summary();
}

TEST(Evaluate, SaysHowEachRolloutEndedTimeOutOrTerminalBonus) {
  torch::manual_seed(5);
  ActingPolicy policy(10, 2, {16}, /*seed=*/5);
  // A finish line 1 cm away: every rollout crosses it on some step, a
  // terminal step paying the finish reward, at x beyond +-0.01.
  absl::StatusOr<Evaluation> e = Evaluate(
      policy,
      {"swimmer_explore", "max_steps=200,finish=0.01,finish_reward=7", 4, 3});
  ASSERT_TRUE(e.ok()) << e.status();
  ASSERT_EQ(e->ends.size(), 4u);
  for (const RolloutEnd& end : e->ends) {
    EXPECT_TRUE(end.terminal);
    EXPECT_GT(end.steps, 0);
    EXPECT_LT(end.steps, 200);
    EXPECT_GT(end.last_reward, 6.99);  // the bonus, less <= 2e-4 control cost
    ASSERT_EQ(end.final_observation.size(), 10u);
  }
  // No finish line within reach: every rollout runs to the time limit.
  e = Evaluate(policy, {"swimmer_explore", "max_steps=20,finish=50", 3, 3});
  ASSERT_TRUE(e.ok()) << e.status();
  ASSERT_EQ(e->ends.size(), 3u);
  for (const RolloutEnd& end : e->ends) {
    EXPECT_FALSE(end.terminal);
    EXPECT_EQ(end.steps, 20);
    EXPECT_LT(end.last_reward, 7.0);
  }
}

TEST(Evaluate, RejectsAnUnknownEnvironmentOrNoRollouts) {
  ActingPolicy policy(2, 2, {8}, /*seed=*/3);
  EXPECT_EQ(Evaluate(policy, {"cartpole", "", 5, 0}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Evaluate(policy, {"multigoal", "", 0, 0}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

Evaluation Solved(bool solved) {
  Evaluation e;
  e.goals = Counts(100,
                   solved ? std::array<int, 4>{25, 25, 25, 25}
                          : std::array<int, 4>{100, 0, 0, 0},
                   100);
  return e;
}

TEST(SolvedStreak, NeedsTwoSolvedEvaluationsInARowAndStartsOverOnAMiss) {
  SolvedStreak streak;  // kSolvedEvaluationsRequired
  ASSERT_EQ(streak.required(), 2);
  EXPECT_FALSE(streak.Record(Solved(true)));  // one lucky draw is not enough
  EXPECT_EQ(streak.Summary(), "solved 1 of 2 in a row");
  EXPECT_FALSE(streak.Record(Solved(false)));
  EXPECT_EQ(streak.streak(), 0);
  EXPECT_FALSE(streak.Record(Solved(true)));
  EXPECT_TRUE(streak.Record(Solved(true)));
  EXPECT_TRUE(streak.Met());
  EXPECT_TRUE(streak.Record(Solved(true)));
  EXPECT_FALSE(streak.Record(Solved(false)));  // a later miss: not met now
  EXPECT_FALSE(streak.Met());
  SolvedStreak one(1);
  EXPECT_TRUE(one.Record(Solved(true)));
  EXPECT_FALSE(one.Record(Evaluation()));  // no goals: never solved
}

TEST(EvaluationSeed, GivesEachEvaluationOfARunFreshStartStates) {
  EXPECT_EQ(EvaluationSeed(0, 0), 1000u);
  EXPECT_NE(EvaluationSeed(0, 1000), EvaluationSeed(0, 2000));
  EXPECT_NE(EvaluationSeed(0, 1000), EvaluationSeed(1, 1000));
  // Two evaluations of one policy at successive steps start from other
  // positions (x_0 plus noise), not the same draws again.
  torch::manual_seed(3);
  ActingPolicy policy(2, 2, {16}, /*seed=*/3);
  const absl::StatusOr<Evaluation> a =
      Evaluate(policy, {"multigoal", "", 5, EvaluationSeed(0, 1000)});
  const absl::StatusOr<Evaluation> b =
      Evaluate(policy, {"multigoal", "", 5, EvaluationSeed(0, 2000)});
  ASSERT_TRUE(a.ok() && b.ok());
  for (int i = 0; i < 5; ++i) {
    EXPECT_NE(a->goals->trajectories[i][0], b->goals->trajectories[i][0])
        << "rollout " << i;
  }
}

// The learner's evaluation of `external`: each shard's episodes since the last
// call, once each, the latest of what it keeps; a restarted shard counts anew.
TEST(ActorEpisodeReturns, TakesEachShardsEpisodesSinceTheLastCallOnce) {
  auto shard = [](const std::string& id, uint64_t total,
                  std::vector<double> recent) {
    proto::ShardStats s;
    s.set_shard_id(id);
    s.set_episodes_total(total);
    for (double r : recent) s.add_recent_returns(r);
    return s;
  };
  absl::flat_hash_map<std::string, uint64_t> seen;
  EXPECT_EQ(
      ActorEpisodeReturns({shard("a", 2, {1, 2}), shard("b", 1, {5})}, &seen),
      (std::vector<double>{1, 2, 5}));
  EXPECT_EQ(
      ActorEpisodeReturns({shard("a", 2, {1, 2}), shard("b", 1, {5})}, &seen),
      std::vector<double>{});
  EXPECT_EQ(ActorEpisodeReturns({shard("a", 4, {1, 2, 3, 4}),
                                 shard("b", 3, {6, 7})},  // keeps 2 of 3 new
                                &seen),
            (std::vector<double>{3, 4, 6, 7}));
  EXPECT_EQ(ActorEpisodeReturns({shard("a", 1, {9})}, &seen),  // restarted
            std::vector<double>{9});
  const Evaluation e =
      EvaluationOfReturns({1, 3}, EvaluationSource::kActorEpisodes);
  EXPECT_EQ(e.mean_return, 2);
  EXPECT_EQ(e.return_stddev, 1);
  EXPECT_EQ(e.Summary(), "return 2.00 +- 1.00 over 2 actor episodes");
  EXPECT_EQ(EvaluationOfReturns({}, EvaluationSource::kActorEpisodes).Summary(),
            "no actor episode finished since the last one");
}

}  // namespace
}  // namespace softq
