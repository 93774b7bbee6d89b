// End to end in one process on the MuJoCo swimmer: a short SQL pretraining run
// on the speed task (no goal) clears a bar that two negative controls with the
// same budget fall short of: the same run with the learning rates at zero
// (nothing learned), and with the Stein repulsive term removed from the SVGD
// direction (SqlConfig::svgd_repulsion = 0, the kernel-gradient term). The bar
// has two parts, since the return alone cannot tell the second control from
// SQL: without repulsion the sampling network collapses onto one
// near-deterministic gait that earns *more* speed return in this budget (below)
// but is no longer the energy-based policy SQL learns. So a run must (1) earn
// more return than the untrained policy and (2) stay a stochastic policy (the
// spread of its actions). Deterministic under its seed (one thread, MuJoCo and
// LibTorch seeded). Each run is its own test, for the BUILD's shards.
#include <gtest/gtest.h>
#include <torch/types.h>

#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "common/torch_threads.h"
#include "env/environment.h"
#include "env/registry.h"
#include "eval/rollout.h"
#include "learner/in_process_trainer.h"
#include "policy/acting_policy.h"

namespace softq {
namespace {

// Env steps of each training run (4 envs, one update per env step after the
// first 1,000: 4,004 updates).
constexpr int64_t kTrainingEnvSteps = 5000;

// The bar, from runs of this file's setup with seeds 0 / 1 / 2 (mean return of
// the final 10 evaluation rollouts; spread as ActionSpread below):
//
//   env steps (updates)  3,000 (2,004)  4,000 (3,004)  5,000 (4,004)
//   return
//     untrained          9.4/3.1/3.5    (no updates: the same at any budget)
//     SQL               11.0/8.9/10.8  11.2/8.3/12.9  12.8/9.5/13.9
//     learning rates 0                                 9.4/3.5/3.6
//     no repulsion       9.3/1.7/3.9   20.1/1.1/4.3   14.7/13.8/9.7
//   spread
//     untrained, lr 0    .074/.054/.059 (unchanged parameters)
//     SQL               .443/.458/.410 .429/.455/.406 .434/.456/.388
//     no repulsion      .024/.019/.019 .019/.011/.010 .020/.025/.017
//
// (1) return > untrained + kImprovement: at 5,000 steps SQL gains 3.3 / 6.4 /
// 10.4, the frozen run -0.1 / +0.4 / +0.1 (seed 0, this test's: SQL passes by
// 1.8, the frozen run falls short by 1.6). Fewer steps leave seed 0's SQL run
// too close to the bar (+1.6 at 3,000, +1.7 at 4,000). From 5,000 steps on no
// return bar that SQL clears fails the run without repulsion: it gains 5.2 /
// 10.7 / 6.2 (13-31 at 8,000: 22.2 / 34.3 / 16.5 against SQL's 12.0 / 11.7 /
// 13.5); shorter, its return is erratic (seed 1: 1.7, 1.1, then 13.8).
constexpr double kImprovement = 1.5;
// (2) spread > kMinSpread: SQL 0.39-0.46 at every budget (twice the bar);
// without repulsion 0.010-0.025 (under an eighth of it, 0.006-0.007 at 8,000
// steps); the untrained and frozen policies 0.054-0.074.
constexpr double kMinSpread = 0.2;

InProcessOptions SpeedPretraining(int64_t env_steps) {
  InProcessOptions options;
  options.env = "swimmer_speed";
  options.sql.observation_dim = 10;
  options.sql.action_dim = 2;
  options.sql.reward_scale =
      100;  // deploy/local/finetune_experiment.py's setting
  options.seed = 0;
  options.num_envs =
      4;  // as one actor of the distributed runs, one update per env step
  options.updates_per_step = 4;
  options.min_replay_size = 1000;
  options.max_env_steps = env_steps;
  options.eval_interval = 0;  // only the final evaluation
  options.eval_rollouts = 10;
  return options;
}

// How stochastic the policy with `params` is where it goes: the standard
// deviation of its actions over 16 draws of xi at each of the states of 4
// rollouts of its own (every 10th), averaged over the states and the action's
// two dimensions. A policy collapsed onto one action per state: about 0.
double ActionSpread(const NamedTensors& params) {
  ActingPolicy policy(10, 2, {128, 128}, /*seed=*/5);
  EXPECT_TRUE(policy.SetParameters(params, 1).ok());
  std::vector<std::unique_ptr<Environment>> envs;
  for (int i = 0; i < 4; ++i) {
    envs.push_back(*MakeEnvironment("swimmer_speed", "", 555 + i));
  }
  std::vector<float> states;
  int seen = 0;
  const absl::StatusOr<std::vector<double>> returns = RollOut(
      policy, envs,
      [&](int, const std::vector<float>& observation, const StepResult*) {
        if (seen++ % 10 == 0) {
          states.insert(states.end(), observation.begin(), observation.end());
        }
      });
  EXPECT_TRUE(returns.ok()) << returns.status();
  const int64_t n = static_cast<int64_t>(states.size()) / 10, draws = 16;
  const torch::Tensor s = torch::from_blob(states.data(), {n, 10});
  const torch::Tensor actions =
      policy.Act(s.repeat_interleave(draws, 0)).view({n, draws, 2});
  return actions.std(1).mean().item<double>();
}

struct Outcome {
  double mean_return = 0;
  double spread = 0;
};

Outcome Train(const InProcessOptions& options, const std::string& name) {
  absl::StatusOr<InProcessResult> result = TrainInProcess(
      options, [](const std::string& line) { std::cout << line << std::endl; });
  EXPECT_TRUE(result.ok()) << result.status();
  if (!result.ok()) return {};
  const Outcome run = {result->final_evaluation.mean_return,
                       ActionSpread(result->final_policy)};
  std::cout << name << " after " << result->updates
            << " updates: " << result->final_summary << ", action spread "
            << run.spread << std::endl;
  return run;
}

// The same seed and start, stopped before the first update.
Outcome Untrained() {
  std::cout << ConfigureTorchThreads(1) << std::endl;
  return Train(SpeedPretraining(500), "untrained");
}

bool ClearsTheBar(const Outcome& untrained, const Outcome& run) {
  return run.mean_return > untrained.mean_return + kImprovement &&
         run.spread > kMinSpread;
}

TEST(SwimmerLearning, ShortSqlPretrainingImprovesTheSpeedReturn) {
  const Outcome untrained = Untrained();
  const Outcome trained = Train(SpeedPretraining(kTrainingEnvSteps), "SQL");
  EXPECT_GT(trained.mean_return, untrained.mean_return + kImprovement);
  EXPECT_GT(trained.spread, kMinSpread);
  EXPECT_TRUE(ClearsTheBar(untrained, trained));
}

TEST(SwimmerLearning, NegativeControlWithTheLearningRatesAtZeroFallsShort) {
  const Outcome untrained = Untrained();
  InProcessOptions options = SpeedPretraining(kTrainingEnvSteps);
  options.sql.q_learning_rate = 0;
  options.sql.policy_learning_rate = 0;
  const Outcome frozen = Train(options, "learning rates 0");
  EXPECT_FALSE(ClearsTheBar(untrained, frozen));
  // By a clear margin: at most a third of the return bar gained.
  EXPECT_LT(frozen.mean_return, untrained.mean_return + kImprovement / 3);
}

TEST(SwimmerLearning, NegativeControlWithoutTheSteinRepulsionFallsShort) {
  const Outcome untrained = Untrained();
  InProcessOptions options = SpeedPretraining(kTrainingEnvSteps);
  options.sql.svgd_repulsion = 0;
  const Outcome collapsed = Train(options, "no Stein repulsion");
  EXPECT_FALSE(ClearsTheBar(untrained, collapsed));
  // By a clear margin: under a quarter of the spread bar.
  EXPECT_LT(collapsed.spread, kMinSpread / 4);
}

}  // namespace
}  // namespace softq
