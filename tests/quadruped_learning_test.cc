// End to end in one process on the quadruped's pretraining task
// (quadruped_speed, 200-step episodes): a short SQL run clears the untrained
// policy's return by a margin that the same run with the learning rates at
// zero (nothing learned) does not. The run is train_in_process's with
// --env=quadruped_speed --env_config=max_steps=200 --reward_scale=30
// --q_learning_rate=0.001 --min_replay_size=1000 --eval_interval=0
// --eval_rollouts=10 (one environment, one update per env step).
// Deterministic under its seed (one thread, MuJoCo and LibTorch seeded). Each
// run is its own test, for the BUILD's shards.
#include <gtest/gtest.h>
#include <torch/types.h>

#include <iostream>
#include <string>

#include "common/torch_threads.h"
#include "learner/in_process_trainer.h"

namespace softq {
namespace {

// Env steps of each training run (7,001 updates after the first 1,000 steps).
constexpr int64_t kTrainingEnvSteps = 8000;

// The bar, from runs of this setup with seeds 0 / 1 / 2 (mean return of the
// final 10 evaluation rollouts of 200 steps):
//
//                       seed 0   seed 1   seed 2
//   untrained (500)      20.8     37.9     28.9
//   SQL (8,000)         123.8    150.5    165.5   gain 103 / 113 / 137
//   learning rates 0     20.5     37.3     29.0   gain -0.3 / -0.6 / 0.0
//
// (alive bonus 0.05 x 200 = 10 of each; the rest is speed). return >
// untrained + kImprovement: seed 0's SQL run (this test's) passes by 53, the
// frozen run falls short by 50 (and gains under a third of the bar).
constexpr double kImprovement = 50;

InProcessOptions SpeedPretraining(int64_t env_steps) {
  InProcessOptions options;
  options.env = "quadruped_speed";
  options.env_config = "max_steps=200";
  options.sql.observation_dim = 29;
  options.sql.action_dim = 8;
  options.sql.reward_scale = 30;
  options.sql.q_learning_rate = 1e-3;
  options.seed = 0;
  options.min_replay_size = 1000;
  options.max_env_steps = env_steps;
  options.eval_interval = 0;  // only the final evaluation
  options.eval_rollouts = 10;
  return options;
}

double Train(const InProcessOptions& options, const std::string& name) {
  absl::StatusOr<InProcessResult> result = TrainInProcess(
      options, [](const std::string& line) { std::cout << line << std::endl; });
  EXPECT_TRUE(result.ok()) << result.status();
  if (!result.ok()) return 0;
  std::cout << name << " after " << result->updates
            << " updates: " << result->final_summary << std::endl;
  return result->final_evaluation.mean_return;
}

// The same seed and start, stopped before the first update.
double Untrained() {
  std::cout << ConfigureTorchThreads(1) << std::endl;
  return Train(SpeedPretraining(500), "untrained");
}

TEST(QuadrupedLearning, ShortSqlPretrainingImprovesTheSpeedReturn) {
  const double untrained = Untrained();
  const double trained = Train(SpeedPretraining(kTrainingEnvSteps), "SQL");
  EXPECT_GT(trained, untrained + kImprovement);
}

TEST(QuadrupedLearning, NegativeControlWithTheLearningRatesAtZeroFallsShort) {
  const double untrained = Untrained();
  InProcessOptions options = SpeedPretraining(kTrainingEnvSteps);
  options.sql.q_learning_rate = 0;
  options.sql.policy_learning_rate = 0;
  const double frozen = Train(options, "learning rates 0");
  // By a clear margin: at most a third of the bar gained.
  EXPECT_LT(frozen, untrained + kImprovement / 3);
}

}  // namespace
}  // namespace softq
