#include "eval/evaluation.h"

#include <algorithm>
#include <cmath>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "env/registry.h"
#include "eval/rollout.h"

namespace softq {

std::string Evaluation::Summary() const {
  if (goals) {
    return absl::StrFormat("%s, return %.1f", goals->Summary(), mean_return);
  }
  if (source == EvaluationSource::kActorEpisodes) {
    if (returns.empty()) return "no actor episode finished since the last one";
    return absl::StrFormat("return %.2f +- %.2f over %d actor episodes",
                           mean_return, return_stddev, returns.size());
  }
  return absl::StrFormat("return %.2f +- %.2f over %d rollouts", mean_return,
                         return_stddev, returns.size());
}

absl::StatusOr<Evaluation> Evaluate(ActingPolicy& policy,
                                    const EvaluationOptions& options) {
  if (options.rollouts < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("evaluation rollouts ", options.rollouts, ": at least 1"));
  }
  std::vector<std::unique_ptr<Environment>> envs;
  for (int i = 0; i < options.rollouts; ++i) {
    absl::StatusOr<std::unique_ptr<Environment>> env = MakeEnvironment(
        options.env, options.env_config, options.seed * 1000003 + i);
    if (!env.ok()) return env.status();
    envs.push_back(*std::move(env));
  }
  Evaluation result;
  result.ends.resize(options.rollouts);
  if (options.env == "multigoal") {
    result.goals.emplace();
    result.goals->rollouts = options.rollouts;
    result.goals->trajectories.resize(options.rollouts);
  }
  const RolloutObserver observe =
      [&result](int i, const std::vector<float>& observation,
                const StepResult* step) {
        RolloutEnd& end = result.ends[i];
        end.final_observation = observation;
        if (step != nullptr) {
          ++end.steps;
          end.terminal = step->terminal;
          end.last_reward = step->reward;
        }
        if (result.goals) result.goals->Observe(i, observation, step);
      };
  absl::StatusOr<std::vector<double>> returns = RollOut(policy, envs, observe);
  if (!returns.ok()) return returns.status();
  Evaluation summary = EvaluationOfReturns(*std::move(returns));
  summary.goals = std::move(result.goals);
  summary.ends = std::move(result.ends);
  return summary;
}

Evaluation EvaluationOfReturns(std::vector<double> returns,
                               EvaluationSource source) {
  Evaluation result;
  result.source = source;
  result.returns = std::move(returns);
  if (result.returns.empty()) return result;
  const double n = static_cast<double>(result.returns.size());
  double sum = 0, sq = 0;
  for (double r : result.returns) sum += r;
  result.mean_return = sum / n;
  for (double r : result.returns) {
    sq += (r - result.mean_return) * (r - result.mean_return);
  }
  result.return_stddev = std::sqrt(sq / n);
  return result;
}

uint64_t EvaluationSeed(uint64_t run_seed, int64_t step) {
  // Evaluate seeds rollout i's environment with seed * 1000003 + i: distinct
  // steps give disjoint environment seeds.
  return run_seed + 1000 + 7919 * static_cast<uint64_t>(step);
}

SolvedStreak::SolvedStreak(int required) : required_(std::max(1, required)) {}

bool SolvedStreak::Record(const Evaluation& evaluation) {
  streak_ = evaluation.Solved() ? streak_ + 1 : 0;
  return Met();
}

std::string SolvedStreak::Summary() const {
  return absl::StrFormat("solved %d of %d in a row",
                         std::min(streak_, required_), required_);
}

}  // namespace softq
