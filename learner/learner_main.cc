// learner: samples batches from every replay shard, runs the soft Q and
// amortized SVGD updates, and publishes the sampling network to actors over
// ParameterService. Checkpoints every --checkpoint_interval updates and on
// SIGTERM, resuming from --checkpoint_dir at start; evaluates the policy
// (learner_evaluations.h) every --eval_interval updates; reports progress
// (progress_report.h) every --log_interval_s. This file holds the flags and
// the wiring; learner_setup.h makes the start-up choices, parameter_server.h
// runs the gRPC server.
//
// Prints "learner listening on <host>:<port>" once the parameter service
// serves. Exit status: 0 after SIGTERM, --max_updates or (with
// --stop_when_solved) --solved_evaluations solved evaluations in a row; 1 on a
// fatal error, after --max_nonfinite_updates updates in a row were skipped for
// a non-finite loss or gradient (one line naming it; no checkpoint, publication
// or export after it), or when --require_solved and the run did not end with
// --solved_evaluations solved evaluations in a row (the final one included);
// 2 for bad flags. Every evaluation rolls out fresh start states
// (EvaluationSeed of --seed and the update count).
#include <algorithm>
#include <iostream>

#include "absl/flags/flag.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/flags.h"
#include "common/malloc_policy.h"
#include "common/metrics.h"
#include "common/security_flags.h"
#include "common/shutdown.h"
#include "common/torch_threads.h"
#include "env/environment.h"
#include "env/registry.h"
#include "eval/evaluation.h"
#include "learner/learner.h"
#include "learner/learner_checkpoint.h"
#include "learner/learner_evaluations.h"
#include "learner/learner_setup.h"
#include "learner/parameter_server.h"
#include "learner/parameter_service.h"
#include "learner/priority_updater.h"
#include "learner/progress_report.h"
#include "learner/replay_batch_source.h"
#include "learner/replay_sizes.h"
#include "learner/sql_flags.h"
#include "replay/replay_channel.h"
#include "replay/replay_sampler.h"

ABSL_FLAG(std::string, replay, "",
          "comma-separated host:port of the replay shards");
ABSL_FLAG(std::string, host, "127.0.0.1",
          "address the parameter service listens on");
ABSL_FLAG(int32_t, port, 0,
          "parameter service port; 0 picks a free one (printed)");
ABSL_FLAG(std::string, device, "auto",
          "cpu, cuda, or auto (cuda when available)");
ABSL_FLAG(std::string, cuda_graph, "auto",
          "replay each update as one captured CUDA graph "
          "(learner/cuda_graph_update.h): auto (on "
          "a GPU when this build can capture graphs, else eager updates), true "
          "(a graph, or an "
          "error at start if the learner is not on a GPU or the build cannot), "
          "false (eager)");
ABSL_FLAG(
    int32_t, cuda_graph_streams, 0,
    "with a CUDA graph: 2 runs the critic's half of each update on a second "
    "stream "
    "beside the policy's (1.4-1.7x one stream on an H200), 1 runs it all on "
    "one; 0 (the "
    "default): 2 for sql, 1 for ddpg (whose halves depend on each other)");
ABSL_FLAG(std::string, env, "multigoal",
          "environment by name (sets dimensions, evaluation); actor_main "
          "--env=help lists them");
ABSL_FLAG(std::string, env_config, "",
          "the environment's parameters, key=value,key=value (README: "
          "Environments)");
ABSL_FLAG(std::string, init_from, "",
          "start from the networks of this learner checkpoint dir "
          "(fine-tuning; fresh optimizers)");
ABSL_FLAG(std::string, init_networks, "all",
          "with --init_from: all (Q and sampling network) or policy (sampling "
          "network only, "
          "Q fresh)");
ABSL_FLAG(int64_t, batch_size, 64, "minibatch size");
ABSL_FLAG(int32_t, prefetch, 16, "batches sampled ahead from the shards");
ABSL_FLAG(int64_t, publish_interval, 20,
          "updates between parameter publications");
ABSL_FLAG(int64_t, max_nonfinite_updates, 100,
          "stop (exit 1, one line naming the cause; no final checkpoint: the "
          "last good one stays) after this many updates in a row were "
          "skipped for a non-finite loss or gradient");
ABSL_FLAG(int64_t, max_updates, 0,
          "stop after this many updates (0: run until SIGTERM)");
ABSL_FLAG(int64_t, eval_interval, 1000,
          "updates between evaluations (0: none)");
ABSL_FLAG(int32_t, eval_rollouts, 100, "rollouts per evaluation");
ABSL_FLAG(int32_t, solved_evaluations, softq::kSolvedEvaluationsRequired,
          "multigoal: consecutive evaluations (each of fresh rollouts) that "
          "must meet the criterion for the run to count as learned");
ABSL_FLAG(bool, stop_when_solved, false,
          "stop once --solved_evaluations consecutive evaluations meet the "
          "criterion");
ABSL_FLAG(bool, require_solved, false,
          "exit 1 unless the run ends with --solved_evaluations consecutive "
          "solved evaluations (the final one included)");
ABSL_FLAG(std::string, checkpoint_dir, "",
          "checkpoint here and resume from here");
ABSL_FLAG(int64_t, checkpoint_interval, 1000, "updates between checkpoints");
ABSL_FLAG(std::string, metrics_csv, "",
          "append one row per progress line here");
ABSL_FLAG(std::string, eval_csv, "",
          "append one row per evaluation: updates, env steps, wall time, "
          "return, goals");
ABSL_FLAG(std::string, episodes_csv, "",
          "append one row per rollout of every evaluation: updates, env steps, "
          "rollout, return, steps, terminal (0/1), last step's reward, final "
          "observation (obs_0, ...): where each rollout ended");
ABSL_FLAG(std::string, rollouts_csv, "",
          "write the final evaluation's rollouts here");
ABSL_FLAG(std::string, export_torchscript, "",
          "write the final sampling network here (with --require_solved: only "
          "when the run learned)");
ABSL_FLAG(double, log_interval_s, 5.0, "seconds between progress lines");
ABSL_FLAG(std::string, metrics_host, "",
          "address /metrics listens on (e.g. a monitoring network's); empty: "
          "--host's");
ABSL_FLAG(int32_t, metrics_port, -1,
          "Prometheus /metrics port (0: any free, -1: off)");
ABSL_FLAG(int32_t, torch_threads, 1, "LibTorch intra-op threads");
ABSL_FLAG(bool, prioritized, false,
          "prioritized experience replay: send priorities |TD error| + "
          "--priority_epsilon to the shards in the background (run them with "
          "--sampler=prioritized; their --priority_exponent is alpha) and "
          "weigh the critic's loss by importance weights (in eager updates "
          "and CUDA graphs alike)");
ABSL_FLAG(double, priority_epsilon, 1e-3,
          "--prioritized: added to |TD error| so no item's priority is 0");
ABSL_FLAG(double, importance_beta, 0.4,
          "--prioritized: importance-weight exponent beta at the first update, "
          "annealed linearly to 1");
ABSL_FLAG(int64_t, importance_beta_updates, 100000,
          "--prioritized: updates over which beta reaches 1 (0: 1 at once)");
ABSL_FLAG(int32_t, priority_queue, 64,
          "--prioritized: batches of priorities queued for the shards; when "
          "full the oldest is dropped, never an update stalled");
ABSL_FLAG(int64_t, seed, 0,
          "random seed (networks, noise, the replay sampler's split over the "
          "shards)");

namespace softq {
namespace {

// The flags checked together (`sql`: SqlConfigFromFlags's result): OK, or
// InvalidArgument naming the first bad flag.
absl::Status CheckLearnerFlags(const absl::Status& sql) {
  return CheckFlags({
      FlagAddressList("replay", absl::GetFlag(FLAGS_replay)),
      FlagInRange("port", absl::GetFlag(FLAGS_port), 0, 65535),
      FlagOneOf("device", absl::GetFlag(FLAGS_device), {"cpu", "cuda", "auto"}),
      FlagOneOf("cuda_graph", absl::GetFlag(FLAGS_cuda_graph),
                {"auto", "true", "false"}),
      FlagOneOf("init_networks", absl::GetFlag(FLAGS_init_networks),
                {"all", "policy"}),
      sql,
      FlagInRange("batch_size", absl::GetFlag(FLAGS_batch_size), 1, 1 << 16),
      FlagInRange("prefetch", absl::GetFlag(FLAGS_prefetch), 1, 64),
      FlagAtLeast("publish_interval", absl::GetFlag(FLAGS_publish_interval), 1),
      FlagAtLeast("max_updates", absl::GetFlag(FLAGS_max_updates), 0),
      FlagAtLeast("max_nonfinite_updates",
                  absl::GetFlag(FLAGS_max_nonfinite_updates), 1),
      FlagAtLeast("eval_interval", absl::GetFlag(FLAGS_eval_interval), 0),
      FlagAtLeast("eval_rollouts", absl::GetFlag(FLAGS_eval_rollouts), 1),
      FlagInRange("solved_evaluations", absl::GetFlag(FLAGS_solved_evaluations),
                  1, 1000),
      FlagAtLeast("checkpoint_interval",
                  absl::GetFlag(FLAGS_checkpoint_interval), 1),
      FlagInRange("log_interval_s", absl::GetFlag(FLAGS_log_interval_s), 0.01,
                  3600),
      FlagInRange("metrics_port", absl::GetFlag(FLAGS_metrics_port), -1, 65535),
      FlagInRange("torch_threads", absl::GetFlag(FLAGS_torch_threads), 1, 256),
      FlagInRange("cuda_graph_streams", absl::GetFlag(FLAGS_cuda_graph_streams),
                  0, 2),
      FlagInRange("priority_epsilon", absl::GetFlag(FLAGS_priority_epsilon),
                  1e-12, 1e6),
      FlagInRange("importance_beta", absl::GetFlag(FLAGS_importance_beta), 0.0,
                  1.0),
      FlagAtLeast("importance_beta_updates",
                  absl::GetFlag(FLAGS_importance_beta_updates), 0),
      FlagInRange("priority_queue", absl::GetFlag(FLAGS_priority_queue), 1,
                  1 << 16),
  });
}

// Writes the learner checkpoint to --checkpoint_dir (if set); false, with the
// error on stderr, when it could not.
bool SaveCheckpoint(SqlAgent& agent, const Learner& learner) {
  const std::string dir = absl::GetFlag(FLAGS_checkpoint_dir);
  if (dir.empty()) return true;
  if (absl::Status s = SaveLearnerCheckpoint(agent, learner.version(), dir);
      !s.ok()) {
    std::cerr << "learner: " << s.message() << std::endl;
    return false;
  }
  return true;
}

// The training loop: updates until SIGTERM, --max_updates or (with
// --stop_when_solved) a met streak; evaluates every --eval_interval updates,
// checkpoints every --checkpoint_interval, reports every --log_interval_s.
// Returns 0, 1 after an update failed, or kStoppedNonFinite after
// --max_nonfinite_updates skipped updates in a row (its line printed).
constexpr int kStoppedNonFinite = -1;
int Train(SqlAgent& agent, Learner& learner, const ReplayBatchSource& source,
          LearnerEvaluations& evaluations, ProgressReport& report,
          const ParameterService& service, absl::Time start) {
  absl::Status waiting = absl::OkStatus();
  while (!ShutdownRequested()) {
    const int64_t max_updates = absl::GetFlag(FLAGS_max_updates);
    if (max_updates > 0 && agent.step() >= max_updates) break;
    absl::Status m = learner.Step(absl::Milliseconds(500));
    if (m.ok()) {
      waiting = absl::OkStatus();
      const int64_t step = agent.step();
      const int64_t eval_interval = absl::GetFlag(FLAGS_eval_interval);
      if (eval_interval > 0 && step % eval_interval == 0) {
        evaluations.Evaluate(agent, learner.version());
        evaluations.Report(step, absl::ToDoubleSeconds(absl::Now() - start));
        if (evaluations.streak().Met() &&
            absl::GetFlag(FLAGS_stop_when_solved)) {
          break;
        }
      }
      if (step % absl::GetFlag(FLAGS_checkpoint_interval) == 0) {
        SaveCheckpoint(agent, learner);
      }
    } else if (absl::IsDeadlineExceeded(m)) {
      waiting = m;
    } else if (absl::IsAborted(m)) {
      const std::string dir = absl::GetFlag(FLAGS_checkpoint_dir);
      std::cerr << "learner: stopped: " << m.message()
                << " (--max_nonfinite_updates="
                << absl::GetFlag(FLAGS_max_nonfinite_updates) << "); "
                << (dir.empty() ? std::string("no checkpoint written")
                                : "last good checkpoint kept in " + dir)
                << std::endl;
      return kStoppedNonFinite;
    } else {
      std::cerr << "learner: step failed: " << m << std::endl;
      return 1;
    }
    report.MaybeReport(agent, source, learner.version(), evaluations.last(),
                       waiting, service.subscribers(),
                       service.refused_publications());
  }
  return 0;
}

// After training: the final publication and checkpoint, the final evaluation
// (the last one when it was made at this update: a fresh draw of the same
// policy could land on the other side of the 10% bar; else one more, counted
// into the streak) and its line, the rollouts CSV and the TorchScript export.
// Returns 1 if the checkpoint or the export failed, else 0.
int Finish(SqlAgent& agent, Learner& learner, LearnerEvaluations& evaluations,
           int64_t start_step, absl::Time start) {
  int exit_code = 0;
  if (agent.step() > start_step) learner.Publish();
  if (!absl::GetFlag(FLAGS_checkpoint_dir).empty()) {
    if (!SaveCheckpoint(agent, learner)) {
      exit_code = 1;
    } else {
      std::cout << "learner: checkpoint at step " << agent.step()
                << ", version " << learner.version() << std::endl;
    }
  }
  const Evaluation final_eval =
      evaluations.last_update() == agent.step()
          ? *evaluations.last()
          : evaluations.Evaluate(agent, learner.version());
  const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  std::cout << absl::StrFormat(
                   "learner: final: %d updates in %.1fs (%.1f upd/s), %s%s",
                   agent.step() - start_step, seconds,
                   (agent.step() - start_step) / std::max(1e-9, seconds),
                   final_eval.Summary(), evaluations.StreakSuffix())
            << std::endl;
  if (final_eval.goals && !absl::GetFlag(FLAGS_rollouts_csv).empty()) {
    if (absl::Status s = WriteTrajectoriesCsv(
            *final_eval.goals, absl::GetFlag(FLAGS_rollouts_csv));
        !s.ok()) {
      std::cerr << "learner: " << s.message() << std::endl;
    }
  }
  // Under --require_solved only a learned policy is exported: a run that
  // failed leaves no sampling network to be taken for its result.
  const std::string export_path = absl::GetFlag(FLAGS_export_torchscript);
  if (!export_path.empty() && absl::GetFlag(FLAGS_require_solved) &&
      !evaluations.streak().Met()) {
    std::cout << "learner: not learned (" << evaluations.streak().Summary()
              << "): no TorchScript export" << std::endl;
  } else if (!export_path.empty()) {
    if (absl::Status s =
            ExportSamplingNetworkTorchScript(agent.policy(), export_path);
        !s.ok()) {
      std::cerr << "learner: " << s.message() << std::endl;
      exit_code = 1;
    }
  }
  return exit_code;
}

// The wiring: flags checked, start-up choices (learner_setup.h), the metrics
// and parameter servers, the replay sampler, then Train and Finish.
int Run(const char* program) {
  const std::vector<std::string> shards =
      absl::StrSplit(absl::GetFlag(FLAGS_replay), ',', absl::SkipEmpty());
  absl::StatusOr<std::unique_ptr<Environment>> probe = MakeEnvironment(
      absl::GetFlag(FLAGS_env), absl::GetFlag(FLAGS_env_config), 0);
  if (!probe.ok()) return ReportFlagError(program, probe.status());
  const EnvSpec spec = (*probe)->spec();
  // `external` without sizes: the flags are checked with placeholder sizes,
  // the real ones read from the replay below.
  const bool sizes_from_replay = spec.observation_dim == 0;
  absl::StatusOr<SqlConfig> sql =
      SqlConfigFromFlags(sizes_from_replay ? 1 : spec.observation_dim,
                         sizes_from_replay ? 1 : spec.action_dim);
  if (absl::Status s = CheckLearnerFlags(sql.status()); !s.ok()) {
    return ReportFlagError(program, s);
  }
  absl::StatusOr<SecurityConfig> security = SecurityFromFlags();
  if (!security.ok()) return ReportFlagError(program, security.status());
  absl::StatusOr<torch::Device> device =
      ChooseDevice(absl::GetFlag(FLAGS_device));
  if (!device.ok()) return ReportFlagError(program, device.status());

  InstallShutdownHandlers();
  if (sizes_from_replay) {
    absl::StatusOr<ReplaySizes> sizes =
        WaitForReplaySizes(shards, *security, ShutdownRequested, std::cout);
    if (!sizes.ok()) {
      std::cerr << "learner: " << sizes.status().message() << std::endl;
      return absl::IsCancelled(sizes.status()) ? 0 : 1;
    }
    sql->observation_dim = sizes->observation_dim;
    sql->action_dim = sizes->action_dim;
    std::cout << "learner: external: observation_dim " << sizes->observation_dim
              << ", action_dim " << sizes->action_dim
              << ", read from the replay" << std::endl;
  }
  std::cout << "learner: device " << device->str() << ", "
            << ConfigureTorchThreads(absl::GetFlag(FLAGS_torch_threads))
            << std::endl;
  torch::manual_seed(absl::GetFlag(FLAGS_seed));
  SqlAgent agent(*sql, *device);
  absl::StatusOr<uint64_t> version = StartNetworks(
      agent,
      {absl::GetFlag(FLAGS_init_from), absl::GetFlag(FLAGS_init_networks),
       absl::GetFlag(FLAGS_checkpoint_dir)},
      std::cout);
  if (!version.ok()) {
    std::cerr << "learner: " << version.status().message() << std::endl;
    return 1;
  }
  absl::StatusOr<GraphChoice> graph =
      ChooseCudaGraph(agent, absl::GetFlag(FLAGS_cuda_graph),
                      absl::GetFlag(FLAGS_cuda_graph_streams), std::cout);
  if (!graph.ok()) return ReportFlagError(program, graph.status());
  WarnIfInsecure(*security, program);

  std::unique_ptr<MetricsExporter> metrics;
  if (absl::GetFlag(FLAGS_metrics_port) >= 0) {
    const std::string metrics_host = absl::GetFlag(FLAGS_metrics_host).empty()
                                         ? absl::GetFlag(FLAGS_host)
                                         : absl::GetFlag(FLAGS_metrics_host);
    absl::StatusOr<std::unique_ptr<MetricsExporter>> m = MetricsExporter::Start(
        metrics_host, absl::GetFlag(FLAGS_metrics_port), security->token);
    if (!m.ok()) return ReportFlagError(program, m.status());
    metrics = *std::move(m);
    std::cout << "learner metrics on " << metrics_host << ":" << metrics->port()
              << std::endl;
  }
  ParameterService service;
  absl::StatusOr<std::unique_ptr<ParameterServer>> server =
      ParameterServer::Start(absl::GetFlag(FLAGS_host),
                             absl::GetFlag(FLAGS_port), &service, *security);
  if (!server.ok()) {
    std::cerr << "learner: " << server.status().message() << std::endl;
    return 1;
  }

  ReplayClientOptions replay_options;
  replay_options.addresses = shards;
  replay_options.security = *security;
  replay_options.sample_seed = static_cast<uint64_t>(absl::GetFlag(FLAGS_seed));
  absl::StatusOr<std::unique_ptr<ReplaySampler>> sampler =
      ReplaySampler::Create(replay_options, absl::GetFlag(FLAGS_batch_size),
                            absl::GetFlag(FLAGS_prefetch));
  if (!sampler.ok()) {
    std::cerr << "learner: " << sampler.status() << std::endl;
    return 1;
  }
  // --prioritized: priorities go back to the shards on the updater's thread.
  std::unique_ptr<PriorityUpdater> priorities;
  PrioritizedReplay prioritized;
  if (absl::GetFlag(FLAGS_prioritized)) {
    ReplaySampler* replay = sampler->get();
    priorities = std::make_unique<PriorityUpdater>(
        [replay](const PriorityUpdate& u) {
          return replay->UpdatePriorities(u.keys, u.shard_index, u.priorities);
        },
        absl::GetFlag(FLAGS_priority_queue));
    prioritized = {priorities.get(), absl::GetFlag(FLAGS_priority_epsilon),
                   absl::GetFlag(FLAGS_importance_beta),
                   absl::GetFlag(FLAGS_importance_beta_updates)};
    std::cout << "learner: prioritized replay (priorities |TD error| + "
              << prioritized.epsilon << ", beta " << prioritized.beta0
              << " to 1 over " << prioritized.beta_anneal_updates << " updates)"
              << std::endl;
  }
  ReplayBatchSource source(sampler->get(), device->is_cuda(), prioritized);
  Learner learner(&agent, &source, &service,
                  {absl::GetFlag(FLAGS_publish_interval),
                   absl::GetFlag(FLAGS_max_nonfinite_updates)},
                  *version + 1);
  if (graph->graph != nullptr) {
    learner.UseCudaGraph(graph->graph.get());
    std::cout << "learner: updates as a CUDA graph on " << graph->streams
              << " stream(s) (captured after 3 eager updates)" << std::endl;
  }
  std::cout << "learner listening on " << absl::GetFlag(FLAGS_host) << ":"
            << (*server)->port() << std::endl;

  const absl::Time start = absl::Now();
  const int64_t start_step = agent.step();
  ProgressReport report({absl::Seconds(absl::GetFlag(FLAGS_log_interval_s)),
                         absl::GetFlag(FLAGS_metrics_csv), metrics.get(),
                         /*annealing=*/sql->anneal_updates > 0},
                        start, start_step);
  LearnerEvaluations evaluations(
      *sql,
      {absl::GetFlag(FLAGS_env), absl::GetFlag(FLAGS_env_config),
       absl::GetFlag(FLAGS_eval_rollouts),
       static_cast<uint64_t>(absl::GetFlag(FLAGS_seed)),
       absl::GetFlag(FLAGS_solved_evaluations), absl::GetFlag(FLAGS_eval_csv),
       absl::GetFlag(FLAGS_episodes_csv), shards, *security});
  int exit_code =
      Train(agent, learner, source, evaluations, report, service, start);
  if (exit_code == kStoppedNonFinite) {
    // Poison or divergence: no final publication, checkpoint or export.
    exit_code = 1;
  } else {
    exit_code = std::max(
        exit_code, Finish(agent, learner, evaluations, start_step, start));
  }
  service.Shutdown();
  if (priorities != nullptr) {
    std::cout << "learner: priorities sent " << priorities->sent()
              << ", dropped " << priorities->dropped() << ", failed "
              << priorities->failed()
              << (priorities->failed() > 0
                      ? " (last: " + priorities->last_error().ToString() + ")"
                      : std::string())
              << std::endl;
    priorities.reset();  // joins its thread before the sampler goes
  }
  sampler->reset();
  (*server)->Shutdown(absl::Seconds(2));
  if (exit_code == 0 && absl::GetFlag(FLAGS_require_solved) &&
      !evaluations.streak().Met()) {
    exit_code = 1;
  }
  return exit_code;
}

}  // namespace
}  // namespace softq

int main(int argc, char** argv) {
  softq::KeepFreedMemoryForReuse();
  softq::RestartWithOpenBlasKernelsForThisCpu(argv);
  if (auto code = softq::ParseFlags(argc, argv,
                                    "the SQL learner: --replay=host:port,...");
      code) {
    return *code;
  }
  return softq::Run(argv[0]);
}
