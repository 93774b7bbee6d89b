#include "learner/in_process_trainer.h"

#include <algorithm>
#include <limits>
#include <numeric>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "actor/actor.h"
#include "common/flags.h"
#include "env/registry.h"
#include "eval/evaluation.h"
#include "learner/learner.h"
#include "learner/shard_replay.h"

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

absl::Status ValidateInProcessOptions(const InProcessOptions& o) {
  return CheckFlags({
      ValidateSqlConfig(o.sql),
      FlagInRange("num_envs", o.num_envs, 1, 4096),
      FlagAtLeast("max_env_steps", static_cast<double>(o.max_env_steps), 1),
      FlagInRange("batch_size", static_cast<double>(o.batch_size), 1, 1 << 20),
      FlagAtLeast("min_replay_size", static_cast<double>(o.min_replay_size), 1),
      FlagAtLeast("replay_capacity", static_cast<double>(o.replay_capacity), 1),
      // The replay shard draws at most its capacity per batch.
      o.batch_size <= o.replay_capacity
          ? absl::OkStatus()
          : absl::InvalidArgumentError(absl::StrCat(
                "--batch_size=", o.batch_size,
                ": more than --replay_capacity=", o.replay_capacity)),
      FlagAtLeast("updates_per_step", o.updates_per_step, 0),
      FlagAtLeast("publish_interval", static_cast<double>(o.publish_interval),
                  1),
      FlagAtLeast("eval_interval", static_cast<double>(o.eval_interval), 0),
      FlagAtLeast("eval_rollouts", o.eval_rollouts, 1),
      FlagInRange("solved_evaluations", o.solved_evaluations, 1, 1000),
  });
}

absl::StatusOr<InProcessResult> TrainInProcess(
    const InProcessOptions& options,
    const std::function<void(const std::string&)>& log) {
  if (absl::Status s = ValidateInProcessOptions(options); !s.ok()) return s;
  torch::manual_seed(options.seed);
  std::vector<std::unique_ptr<Environment>> envs;
  for (int i = 0; i < options.num_envs; ++i) {
    absl::StatusOr<std::unique_ptr<Environment>> env = MakeEnvironment(
        options.env, options.env_config, options.seed * 7919 + i);
    if (!env.ok()) return env.status();
    envs.push_back(*std::move(env));
  }
  const SqlConfig& sql = options.sql;
  SqlAgent agent(sql);
  ActingPolicy policy(sql.observation_dim, sql.action_dim, sql.hidden,
                      options.seed + 1, options.acting);
  ActingPolicy eval_policy(
      sql.observation_dim, sql.action_dim, sql.hidden, options.seed + 3,
      {/*deterministic=*/sql.algorithm == Algorithm::kDdpg});
  SolvedStreak streak(options.solved_evaluations);
  InProcessResult result;
  // One evaluation of the current parameters at `env_steps` (fresh rollouts),
  // counted into the stopping rule.
  struct Step {
    int64_t env_steps = 0;
    Evaluation evaluation;
  };
  auto evaluate = [&](int64_t env_steps) -> absl::StatusOr<Step> {
    eval_policy
        .SetParameters(agent.PolicyParameters(), eval_policy.version() + 1)
        .IgnoreError();
    absl::StatusOr<Evaluation> e = Evaluate(
        eval_policy, {options.env, options.env_config, options.eval_rollouts,
                      EvaluationSeed(options.seed, env_steps)});
    if (!e.ok()) return e.status();
    if (e->Solved() && result.first_solved_env_steps < 0) {
      result.first_solved_env_steps = env_steps;
    }
    if (streak.Record(*e) && result.learned_env_steps < 0) {
      result.learned_env_steps = env_steps;
    }
    ++result.evaluations;
    return Step{env_steps, *std::move(e)};
  };
  // The progress line's evaluation: its summary, and the streak on the
  // multi-goal task.
  auto summary = [&](const Evaluation& e) {
    return e.goals ? absl::StrCat(e.Summary(), ", ", streak.Summary())
                   : e.Summary();
  };
  // The replay: one in-memory shard, sampled uniformly once it holds
  // min_replay_size transitions.
  ShardOptions shard;
  shard.capacity = static_cast<uint64_t>(options.replay_capacity);
  shard.observation_dim = static_cast<uint32_t>(sql.observation_dim);
  shard.action_dim = static_cast<uint32_t>(sql.action_dim);
  shard.rate_limiter.min_size_to_sample = static_cast<uint64_t>(
      std::min(options.min_replay_size, options.replay_capacity));
  shard.max_sample_bytes = std::numeric_limits<uint64_t>::max();  // no wire
  shard.seed = options.seed + 2;  // not 0: that would draw a random seed
  absl::StatusOr<std::unique_ptr<ShardReplay>> replay =
      ShardReplay::Create(shard, static_cast<uint32_t>(options.batch_size));
  if (!replay.ok()) return replay.status();
  PolicyFeed feed(&policy);
  Learner learner(&agent, replay->get(), &feed, {options.publish_interval});
  Actor actor(std::move(envs), &policy, replay->get(), {});

  std::optional<Step> final_eval;
  std::optional<Step> last_eval;
  const absl::Time start = absl::Now();
  int64_t next_eval = options.eval_interval > 0 ? options.eval_interval : -1;
  while (actor.env_steps() < options.max_env_steps) {
    if (options.stop_requested && options.stop_requested()) break;
    if (absl::Status s = actor.Step(); !s.ok()) return s;
    if ((*replay)->size() >= options.min_replay_size) {
      for (int u = 0; u < options.updates_per_step; ++u) {
        if (absl::Status s = learner.Step(absl::ZeroDuration()); !s.ok())
          return s;
      }
    }
    if (next_eval > 0 && actor.env_steps() >= next_eval) {
      next_eval += options.eval_interval;
      absl::StatusOr<Step> eval = evaluate(actor.env_steps());
      if (!eval.ok()) return eval.status();
      const std::vector<double> returns = actor.TakeEpisodeReturns();
      const double mean_return =
          returns.empty()
              ? 0
              : std::accumulate(returns.begin(), returns.end(), 0.0) /
                    returns.size();
      log(absl::StrFormat(
          "env steps %6d  updates %6d  %5.1f updates/s  train return %7.1f  "
          "eval %s",
          actor.env_steps(), agent.step(),
          agent.step() /
              std::max(1e-9, absl::ToDoubleSeconds(absl::Now() - start)),
          mean_return, summary(eval->evaluation)));
      last_eval = *std::move(eval);
      if (options.stop_when_solved && streak.Met()) break;
    }
  }
  result.env_steps = actor.env_steps();
  result.updates = agent.step();
  result.seconds = absl::ToDoubleSeconds(absl::Now() - start);
  // An evaluation of these very parameters is the final one (a fresh draw of
  // the same policy could land on the other side of a bar); else one more.
  if (last_eval && last_eval->env_steps == result.env_steps) {
    final_eval = *std::move(last_eval);
  } else {
    absl::StatusOr<Step> eval = evaluate(result.env_steps);
    if (!eval.ok()) return eval.status();
    final_eval = *std::move(eval);
  }
  result.learned = streak.Met();
  result.final_summary = summary(final_eval->evaluation);
  result.final_evaluation = std::move(final_eval->evaluation);
  result.final_policy = agent.PolicyParameters();
  if (result.final_evaluation.goals && !options.trajectories_csv.empty()) {
    if (absl::Status s = WriteTrajectoriesCsv(*result.final_evaluation.goals,
                                              options.trajectories_csv);
        !s.ok()) {
      return s;
    }
  }
  return result;
}

}  // namespace softq
