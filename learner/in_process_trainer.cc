#include "learner/in_process_trainer.h"

#include <numeric>

#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "actor/actor.h"
#include "learner/learner.h"
#include "learner/local_replay.h"

namespace softq {
namespace {

// Publishes straight into the actor's policy.
class PolicyFeed : public ParameterPublisher {
 public:
  explicit PolicyFeed(ActingPolicy* policy) : policy_(policy) {}
  void Publish(const NamedTensors& params, uint64_t version, int64_t) override {
    // Same network shapes on both sides: loading cannot fail.
    policy_->SetParameters(params, version).IgnoreError();
  }

 private:
  ActingPolicy* policy_;
};

}  // namespace

absl::StatusOr<InProcessResult> TrainInProcess(
    const InProcessOptions& options, const std::function<void(const std::string&)>& log) {
  if (absl::Status s = ValidateSqlConfig(options.sql); !s.ok()) return s;
  if (options.env != "multigoal") {
    return absl::InvalidArgumentError("--env: the in-process trainer evaluates multigoal only");
  }
  torch::manual_seed(options.seed);
  std::vector<std::unique_ptr<Environment>> envs;
  for (int i = 0; i < options.num_envs; ++i) {
    absl::StatusOr<std::unique_ptr<Environment>> env =
        MakeEnvironment(options.env, options.seed * 7919 + i);
    if (!env.ok()) return env.status();
    envs.push_back(*std::move(env));
  }
  const SqlConfig& sql = options.sql;
  SqlAgent agent(sql);
  ActingPolicy policy(sql.observation_dim, sql.action_dim, sql.hidden, options.seed + 1);
  LocalReplay replay(options.replay_capacity, sql.observation_dim, sql.action_dim,
                     options.batch_size, options.min_replay_size, options.seed + 2);
  PolicyFeed feed(&policy);
  Learner learner(&agent, &replay, &feed, {options.publish_interval});
  Actor actor(std::move(envs), &policy, &replay, {});

  InProcessResult result;
  const absl::Time start = absl::Now();
  int64_t next_eval = options.eval_interval > 0 ? options.eval_interval : -1;
  while (actor.env_steps() < options.max_env_steps) {
    if (options.stop_requested && options.stop_requested()) break;
    if (absl::Status s = actor.Step(); !s.ok()) return s;
    if (replay.size() >= options.min_replay_size) {
      for (int u = 0; u < options.updates_per_step; ++u) {
        if (absl::Status s = learner.Step(absl::ZeroDuration()); !s.ok()) return s;
      }
    }
    if (next_eval > 0 && actor.env_steps() >= next_eval) {
      next_eval += options.eval_interval;
      MultiGoalEvaluation eval =
          EvaluateMultiGoal(policy, options.eval_rollouts, options.seed + 1000);
      const std::vector<double> returns = actor.TakeEpisodeReturns();
      const double mean_return =
          returns.empty() ? 0 : std::accumulate(returns.begin(), returns.end(), 0.0) / returns.size();
      log(absl::StrFormat("env steps %6d  updates %6d  %5.1f updates/s  train return %7.1f  eval %s",
                          actor.env_steps(), agent.step(),
                          agent.step() / std::max(1e-9, absl::ToDoubleSeconds(absl::Now() - start)),
                          mean_return, eval.Summary()));
      if (eval.Solved() && result.first_solved_env_steps < 0) {
        result.first_solved_env_steps = actor.env_steps();
        if (options.stop_when_solved) {
          result.final_evaluation = std::move(eval);
          break;
        }
      }
    }
  }
  result.env_steps = actor.env_steps();
  result.updates = agent.step();
  result.seconds = absl::ToDoubleSeconds(absl::Now() - start);
  if (result.final_evaluation.rollouts == 0) {
    result.final_evaluation =
        EvaluateMultiGoal(policy, options.eval_rollouts, options.seed + 1000);
    if (result.final_evaluation.Solved() && result.first_solved_env_steps < 0) {
      result.first_solved_env_steps = result.env_steps;
    }
  }
  if (!options.trajectories_csv.empty()) {
    if (absl::Status s = WriteTrajectoriesCsv(result.final_evaluation, options.trajectories_csv);
        !s.ok()) {
      return s;
    }
  }
  return result;
}

}  // namespace softq
