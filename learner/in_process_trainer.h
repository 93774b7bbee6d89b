// Algorithm 1 in one process: an Actor on the environment writes into a
// ShardReplay (an in-memory replay::Shard), a Learner samples from it and
// publishes to the actor's ActingPolicy. Same actor, learner and replay shard
// classes as the distributed system; only the wiring differs.
// Thread-compatible.
#ifndef SOFTQ_LEARNER_IN_PROCESS_TRAINER_H_
#define SOFTQ_LEARNER_IN_PROCESS_TRAINER_H_

#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "eval/evaluation.h"
#include "learner/sql_agent.h"
#include "policy/acting_policy.h"

namespace softq {

struct InProcessOptions {
  SqlConfig sql;
  std::string env =
      "multigoal";  // any MakeEnvironment name; only multigoal has a criterion
  std::string env_config;  // its parameters, key=value,...
  ActingOptions acting;  // exploration (DDPG: deterministic plus action noise)
  int num_envs = 1;
  int64_t max_env_steps = 40000;
  int64_t batch_size = 64;
  int64_t min_replay_size = 100;  // transitions before the first update
  int64_t replay_capacity = 1000000;
  int updates_per_step = 1;  // gradient steps per env step
  int64_t publish_interval =
      1;  // updates between parameter publications to the actor
  int64_t eval_interval =
      1000;  // env steps between evaluations (0: only at the end)
  int eval_rollouts = 100;  // each evaluation of fresh ones (EvaluationSeed)
  // Multi-goal: consecutive evaluations meeting the criterion for the run to
  // count as learned (SolvedStreak).
  int solved_evaluations = kSolvedEvaluationsRequired;
  bool stop_when_solved =
      false;  // end once `solved_evaluations` in a row met the criterion
  uint64_t seed = 0;
  std::string trajectories_csv;  // final evaluation's rollouts, if set
  // Polled between env steps; true ends training early (then the final
  // evaluation runs as usual). Empty: never. train_in_process passes
  // ShutdownRequested (SIGTERM/SIGINT).
  std::function<bool()> stop_requested;
};

struct InProcessResult {
  int64_t env_steps = 0;
  int64_t updates = 0;
  double seconds = 0;
  int64_t first_solved_env_steps =
      -1;  // -1: never met the criterion (multigoal only)
  // Where `solved_evaluations` evaluations in a row first met it (-1: never).
  int64_t learned_env_steps = -1;
  // The run ended with its last `solved_evaluations` evaluations (the final one
  // included) meeting the criterion: the multi-goal task learned.
  bool learned = false;
  int evaluations = 0;  // the final one included
  Evaluation final_evaluation;
  std::string final_summary;  // its summary, with the streak on multigoal
  // The sampling network's parameters at the end (SqlAgent::PolicyParameters),
  // for a closer look at the policy than its return.
  NamedTensors final_policy;
};

// InvalidArgument naming the first bad field (SqlConfig's as
// ValidateSqlConfig does, the others as their train_in_process flags), else
// OK.
absl::Status ValidateInProcessOptions(const InProcessOptions& options);

// Trains; `log` receives one progress line per evaluation. Evaluations use the
// learned policy without exploration noise (deterministic under kDdpg), each
// from fresh start states (EvaluationSeed of the env step count); the final one
// is the last in-loop evaluation when that ran at the last env step, else one
// more. InvalidArgument for bad options.
absl::StatusOr<InProcessResult> TrainInProcess(
    const InProcessOptions& options,
    const std::function<void(const std::string&)>& log);

}  // namespace softq

#endif  // SOFTQ_LEARNER_IN_PROCESS_TRAINER_H_
