// train_in_process: Algorithm 1 in one process (actor, in-memory replay,
// learner) on any environment, ending with an evaluation and, on the multi-goal
// task, optionally a CSV of its rollouts. Exit status: 0 when the run learned
// the multi-goal task (its last --solved_evaluations evaluations, the final one
// included, met the criterion; other environments: when training ran), 1 when
// not, 2 for bad flags.
#include <iostream>

#include "absl/flags/flag.h"
#include "common/flags.h"
#include "common/shutdown.h"
#include "common/torch_threads.h"
#include "env/environment.h"
#include "env/registry.h"
#include "learner/in_process_trainer.h"
#include "learner/sql_flags.h"

ABSL_FLAG(int64_t, seed, 0, "random seed");
ABSL_FLAG(std::string, env, "multigoal",
          "environment by name; actor_main --env=help lists them");
ABSL_FLAG(std::string, env_config, "",
          "the environment's parameters, key=value,key=value (README: "
          "Environments)");
ABSL_FLAG(
    double, action_noise, 0.0,
    "std of Gaussian exploration noise on actions (the DDPG baseline: ~0.2)");
ABSL_FLAG(int64_t, max_env_steps, 20000, "environment steps to train for");
ABSL_FLAG(int64_t, batch_size, 64, "minibatch size");
ABSL_FLAG(int64_t, min_replay_size, 100, "transitions before the first update");
ABSL_FLAG(int64_t, replay_capacity, 1000000, "replay capacity in transitions");
ABSL_FLAG(int64_t, eval_interval, 1000, "env steps between evaluations");
ABSL_FLAG(int32_t, eval_rollouts, 100, "rollouts per evaluation");
ABSL_FLAG(int32_t, solved_evaluations, softq::kSolvedEvaluationsRequired,
          "multigoal: consecutive evaluations (each of fresh rollouts) that "
          "must meet the criterion for the run to count as learned");
ABSL_FLAG(bool, stop_when_solved, false,
          "stop once --solved_evaluations consecutive evaluations meet the "
          "criterion");
ABSL_FLAG(std::string, trajectories_csv, "",
          "write the final evaluation's rollouts here");
ABSL_FLAG(int32_t, torch_threads, 1, "LibTorch intra-op threads");

int main(int argc, char** argv) {
  softq::RestartWithOpenBlasKernelsForThisCpu(argv);
  if (std::optional<int> code = softq::ParseFlags(
          argc, argv, "trains SQL on the multi-goal task in one process");
      code) {
    return *code;
  }
  absl::StatusOr<std::unique_ptr<softq::Environment>> probe =
      softq::MakeEnvironment(absl::GetFlag(FLAGS_env),
                             absl::GetFlag(FLAGS_env_config), 0);
  if (!probe.ok()) return softq::ReportFlagError(argv[0], probe.status());
  if (absl::GetFlag(FLAGS_env) == "external") {
    return softq::ReportFlagError(
        argv[0], absl::InvalidArgumentError(
                     "--env=external: a task only actors in other processes "
                     "step; train_in_process steps a C++ environment"));
  }
  const softq::EnvSpec spec = (*probe)->spec();
  absl::StatusOr<softq::SqlConfig> sql =
      softq::SqlConfigFromFlags(spec.observation_dim, spec.action_dim);
  absl::Status flags_ok = softq::CheckFlags({
      sql.status(),
      softq::FlagInRange("action_noise", absl::GetFlag(FLAGS_action_noise), 0.0,
                         10.0),
      softq::FlagInRange("torch_threads", absl::GetFlag(FLAGS_torch_threads), 1,
                         256),
  });
  if (!flags_ok.ok()) return softq::ReportFlagError(argv[0], flags_ok);

  softq::InProcessOptions options;
  options.sql = *sql;
  options.env = absl::GetFlag(FLAGS_env);
  options.env_config = absl::GetFlag(FLAGS_env_config);
  options.acting = {/*deterministic=*/sql->algorithm == softq::Algorithm::kDdpg,
                    absl::GetFlag(FLAGS_action_noise)};
  options.seed = absl::GetFlag(FLAGS_seed);
  options.max_env_steps = absl::GetFlag(FLAGS_max_env_steps);
  options.batch_size = absl::GetFlag(FLAGS_batch_size);
  options.min_replay_size = absl::GetFlag(FLAGS_min_replay_size);
  options.replay_capacity = absl::GetFlag(FLAGS_replay_capacity);
  options.eval_interval = absl::GetFlag(FLAGS_eval_interval);
  options.eval_rollouts = absl::GetFlag(FLAGS_eval_rollouts);
  options.solved_evaluations = absl::GetFlag(FLAGS_solved_evaluations);
  options.stop_when_solved = absl::GetFlag(FLAGS_stop_when_solved);
  options.trajectories_csv = absl::GetFlag(FLAGS_trajectories_csv);
  options.stop_requested = softq::ShutdownRequested;
  if (absl::Status s = softq::ValidateInProcessOptions(options); !s.ok()) {
    return softq::ReportFlagError(argv[0], s);
  }

  softq::InstallShutdownHandlers();
  std::cout << softq::ConfigureTorchThreads(absl::GetFlag(FLAGS_torch_threads))
            << std::endl;
  absl::StatusOr<softq::InProcessResult> result = softq::TrainInProcess(
      options, [](const std::string& line) { std::cout << line << std::endl; });
  if (!result.ok()) {
    std::cerr << "train_in_process: " << result.status() << std::endl;
    return 1;
  }
  std::cout << "final: env steps " << result->env_steps << ", updates "
            << result->updates << ", " << result->seconds
            << " s, first solved at " << result->first_solved_env_steps
            << " env steps, learned (" << options.solved_evaluations
            << " in a row) at " << result->learned_env_steps << "; "
            << result->final_summary << std::endl;
  // Stopped by SIGTERM/SIGINT: a clean stop, whatever the policy learned so
  // far.
  if (softq::ShutdownRequested() || absl::GetFlag(FLAGS_env) != "multigoal")
    return 0;
  return result->learned ? 0 : 1;
}
