// learner: samples batches from every replay shard, runs the soft Q and
// amortized SVGD updates, and publishes the sampling network to actors over
// ParameterService. Checkpoints every --checkpoint_interval updates and on
// SIGTERM, resuming from --checkpoint_dir at start; evaluates on the multi-goal
// task every --eval_interval updates; writes a metrics CSV and one progress
// line every --log_interval_s.
//
// Prints "learner listening on <host>:<port>" once the parameter service
// serves. Exit status: 0 after SIGTERM, --max_updates or (with
// --stop_when_solved) --solved_evaluations solved evaluations in a row; 1 on a
// fatal error, or when --require_solved and the run did not end with
// --solved_evaluations solved evaluations in a row (the final one included);
// 2 for bad flags. Every evaluation rolls out fresh start states
// (EvaluationSeed of --seed and the update count).
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include <fstream>
#include <iostream>
#include <optional>

#include "absl/flags/flag.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/flags.h"
#include "common/metrics.h"
#include "common/shutdown.h"
#include "common/torch_threads.h"
#include "env/environment.h"
#include "env/registry.h"
#include "eval/evaluation.h"
#include "learner/learner.h"
#include "learner/learner_checkpoint.h"
#include "learner/parameter_service.h"
#include "learner/replay_batch_source.h"
#include "learner/sql_flags.h"
#include "replay/client.h"

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
ABSL_FLAG(std::string, rollouts_csv, "",
          "write the final evaluation's rollouts here");
ABSL_FLAG(std::string, export_torchscript, "",
          "write the final sampling network here (with --require_solved: only "
          "when the run learned)");
ABSL_FLAG(double, log_interval_s, 5.0, "seconds between progress lines");
ABSL_FLAG(int32_t, metrics_port, -1,
          "Prometheus /metrics port (0: any free, -1: off)");
ABSL_FLAG(int32_t, torch_threads, 1, "LibTorch intra-op threads");
ABSL_FLAG(int64_t, seed, 0,
          "random seed (networks, noise, the replay sampler's split over the "
          "shards)");

namespace softq {
namespace {

// Transitions inserted into the shards so far: the actors' env steps.
int64_t EnvStepsSoFar(const std::vector<std::string>& shards) {
  absl::StatusOr<std::vector<proto::ShardStats>> stats =
      QueryStats(shards, absl::Seconds(2));
  if (!stats.ok()) return -1;
  int64_t total = 0;
  for (const proto::ShardStats& s : *stats) total += s.inserts_total();
  return total;
}

struct Progress {
  absl::Time last_time = absl::Now();
  int64_t last_step = 0;
  absl::Duration last_waited;  // ReplayBatchSource::waited() then
};

int Run(const char* program) {
  std::vector<std::string> shards =
      absl::StrSplit(absl::GetFlag(FLAGS_replay), ',', absl::SkipEmpty());
  const std::string device_flag = absl::GetFlag(FLAGS_device);
  absl::StatusOr<std::unique_ptr<Environment>> probe = MakeEnvironment(
      absl::GetFlag(FLAGS_env), absl::GetFlag(FLAGS_env_config), 0);
  if (!probe.ok()) return ReportFlagError(program, probe.status());
  const EnvSpec spec = (*probe)->spec();
  const bool multigoal = absl::GetFlag(FLAGS_env) == "multigoal";
  absl::StatusOr<SqlConfig> sql =
      SqlConfigFromFlags(spec.observation_dim, spec.action_dim);
  absl::Status flags_ok = CheckFlags({
      FlagAddressList("replay", absl::GetFlag(FLAGS_replay)),
      FlagInRange("port", absl::GetFlag(FLAGS_port), 0, 65535),
      FlagOneOf("device", device_flag, {"cpu", "cuda", "auto"}),
      FlagOneOf("cuda_graph", absl::GetFlag(FLAGS_cuda_graph),
                {"auto", "true", "false"}),
      FlagOneOf("init_networks", absl::GetFlag(FLAGS_init_networks),
                {"all", "policy"}),
      sql.status(),
      FlagInRange("batch_size", absl::GetFlag(FLAGS_batch_size), 1, 1 << 16),
      FlagInRange("prefetch", absl::GetFlag(FLAGS_prefetch), 1, 64),
      FlagAtLeast("publish_interval", absl::GetFlag(FLAGS_publish_interval), 1),
      FlagAtLeast("max_updates", absl::GetFlag(FLAGS_max_updates), 0),
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
  });
  if (!flags_ok.ok()) return ReportFlagError(program, flags_ok);
  if (device_flag == "cuda" && !torch::cuda::is_available()) {
    return ReportFlagError(
        program, absl::InvalidArgumentError(
                     "--device=cuda: this LibTorch sees no CUDA device"));
  }
  const torch::Device device =
      (device_flag == "cuda" ||
       (device_flag == "auto" && torch::cuda::is_available()))
          ? torch::Device(torch::kCUDA)
          : torch::Device(torch::kCPU);

  InstallShutdownHandlers();
  std::cout << "learner: device " << device.str() << ", "
            << ConfigureTorchThreads(absl::GetFlag(FLAGS_torch_threads))
            << std::endl;
  torch::manual_seed(absl::GetFlag(FLAGS_seed));
  SqlAgent agent(*sql, device);
  uint64_t version = 0;
  if (const std::string init = absl::GetFlag(FLAGS_init_from); !init.empty()) {
    if (absl::Status s = InitializeFromLearnerCheckpoint(
            agent, init,
            /*with_q=*/absl::GetFlag(FLAGS_init_networks) == "all");
        !s.ok()) {
      std::cerr << "learner: --init_from=" << init << ": " << s.message()
                << std::endl;
      return 1;
    }
    std::cout << "learner: networks initialized from "
              << LearnerCheckpointPath(init) << " ("
              << absl::GetFlag(FLAGS_init_networks) << ")" << std::endl;
  }
  const std::string checkpoint_dir = absl::GetFlag(FLAGS_checkpoint_dir);
  if (!checkpoint_dir.empty()) {
    absl::StatusOr<uint64_t> restored =
        RestoreLearnerCheckpoint(agent, checkpoint_dir);
    if (restored.ok()) {
      version = *restored;
      std::cout << "learner: resumed from "
                << LearnerCheckpointPath(checkpoint_dir) << " at step "
                << agent.step() << ", version " << version << std::endl;
    } else if (!absl::IsNotFound(restored.status())) {
      std::cerr << "learner: " << restored.status().message() << std::endl;
      return 1;
    }
  }

  // On a GPU an eager update is launch-bound (~200 updates/s whatever the
  // batch); its graph replays ~10x faster: the default wherever the build can
  // capture one.
  std::unique_ptr<CudaGraphUpdate> graph;
  const int graph_streams =
      absl::GetFlag(FLAGS_cuda_graph_streams) != 0
          ? absl::GetFlag(FLAGS_cuda_graph_streams)
          : CudaGraphUpdate::DefaultStreams(sql->algorithm);
  const std::string graph_flag = absl::GetFlag(FLAGS_cuda_graph);
  if (graph_flag == "true" || (graph_flag == "auto" && device.is_cuda() &&
                               CudaGraphUpdate::Supported())) {
    absl::StatusOr<std::unique_ptr<CudaGraphUpdate>> g =
        CudaGraphUpdate::Create(&agent, /*warmup_updates=*/3, graph_streams);
    if (!g.ok()) {
      return ReportFlagError(
          program, absl::Status(g.status().code(),
                                absl::StrCat("--cuda_graph=", graph_flag, ": ",
                                             g.status().message())));
    }
    graph = *std::move(g);
  } else if (graph_flag == "auto" && device.is_cuda()) {
    std::cout << "learner: eager updates on the GPU: this build has no CUDA "
                 "graphs (build with "
                 "CMake against a CUDA LibTorch and CUDA's headers: "
                 "deploy/gpu/README.md)"
              << std::endl;
  }

  std::unique_ptr<MetricsExporter> metrics;
  if (absl::GetFlag(FLAGS_metrics_port) >= 0) {
    absl::StatusOr<std::unique_ptr<MetricsExporter>> m = MetricsExporter::Start(
        absl::GetFlag(FLAGS_host), absl::GetFlag(FLAGS_metrics_port));
    if (!m.ok()) return ReportFlagError(program, m.status());
    metrics = *std::move(m);
    std::cout << "learner metrics on " << absl::GetFlag(FLAGS_host) << ":"
              << metrics->port() << std::endl;
  }

  ParameterService service;
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  int bound_port = 0;
  builder.AddListeningPort(
      absl::StrCat(absl::GetFlag(FLAGS_host), ":", absl::GetFlag(FLAGS_port)),
      grpc::InsecureServerCredentials(), &bound_port);
  // No SO_REUSEPORT: with it gRPC 1.51 adds a listener per extra poller on
  // the requested port, i.e. unadvertised ports of their own under --port=0.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.SetMaxSendMessageSize(256 << 20);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || bound_port == 0) {
    std::cerr << "learner: cannot listen on " << absl::GetFlag(FLAGS_host)
              << ":" << absl::GetFlag(FLAGS_port) << std::endl;
    return 1;
  }

  ReplayClientOptions replay_options;
  replay_options.addresses = shards;
  replay_options.sample_seed = static_cast<uint64_t>(absl::GetFlag(FLAGS_seed));
  absl::StatusOr<std::unique_ptr<ReplaySampler>> sampler =
      ReplaySampler::Create(replay_options, absl::GetFlag(FLAGS_batch_size),
                            absl::GetFlag(FLAGS_prefetch));
  if (!sampler.ok()) {
    std::cerr << "learner: " << sampler.status() << std::endl;
    return 1;
  }
  ReplayBatchSource source(sampler->get(), device.is_cuda());
  Learner learner(&agent, &source, &service,
                  {absl::GetFlag(FLAGS_publish_interval)}, version + 1);
  if (graph != nullptr) {
    learner.UseCudaGraph(graph.get());
    std::cout << "learner: updates as a CUDA graph on " << graph_streams
              << " stream(s) (captured after 3 eager updates)" << std::endl;
  }
  std::cout << "learner listening on " << absl::GetFlag(FLAGS_host) << ":"
            << bound_port << std::endl;

  std::ofstream csv;
  if (!absl::GetFlag(FLAGS_metrics_csv).empty()) {
    csv.open(absl::GetFlag(FLAGS_metrics_csv), std::ios::app);
    csv << "wall_s,updates,updates_per_s,transitions_sampled,critic_loss,mean_"
           "q,"
           "policy_surrogate,kernel_bandwidth,version,eval_goals,eval_reached,"
           "replay_wait\n";
  }
  // DDPG is evaluated with its deterministic policy, SQL with its stochastic
  // one (the policy it learned is the distribution).
  ActingPolicy eval_policy(
      sql->observation_dim, sql->action_dim, sql->hidden,
      absl::GetFlag(FLAGS_seed) + 17,
      {/*deterministic=*/sql->algorithm == Algorithm::kDdpg});
  // The stopping rule (eval/evaluation.h), fed every evaluation.
  SolvedStreak streak(absl::GetFlag(FLAGS_solved_evaluations));
  // One evaluation (eval/evaluation.h) and the replay's insert count then
  // (-1: unknown). A failed one is reported and counts as an empty one.
  struct Step {
    Evaluation evaluation;
    int64_t env_steps = -1;
  };
  auto evaluate = [&]() {
    eval_policy.SetParameters(agent.PolicyParameters(), learner.version())
        .IgnoreError();
    Step e;
    e.env_steps = EnvStepsSoFar(shards);
    absl::StatusOr<Evaluation> r = Evaluate(
        eval_policy,
        {absl::GetFlag(FLAGS_env), absl::GetFlag(FLAGS_env_config),
         absl::GetFlag(FLAGS_eval_rollouts),
         EvaluationSeed(static_cast<uint64_t>(absl::GetFlag(FLAGS_seed)),
                        agent.step())});
    if (r.ok()) {
      e.evaluation = *std::move(r);
    } else {
      std::cerr << "learner: evaluation failed: " << r.status() << std::endl;
    }
    streak.Record(e.evaluation);
    return e;
  };
  std::ofstream eval_csv;
  if (!absl::GetFlag(FLAGS_eval_csv).empty()) {
    eval_csv.open(absl::GetFlag(FLAGS_eval_csv), std::ios::app);
    eval_csv
        << "updates,env_steps,wall_s,mean_return,return_stddev,goals_covered\n";
  }

  const absl::Time start = absl::Now();
  const int64_t start_step = agent.step();
  Progress progress;
  progress.last_step = start_step;
  UpdateMetrics last;
  Step last_eval;
  int64_t last_eval_step = -1;
  absl::Status waiting = absl::OkStatus();
  int exit_code = 0;
  while (!ShutdownRequested()) {
    const int64_t max_updates = absl::GetFlag(FLAGS_max_updates);
    if (max_updates > 0 && agent.step() >= max_updates) break;
    absl::Status m = learner.Step(absl::Milliseconds(500));
    if (m.ok()) {
      waiting = absl::OkStatus();
      const int64_t step = agent.step();
      const int64_t eval_interval = absl::GetFlag(FLAGS_eval_interval);
      if (eval_interval > 0 && step % eval_interval == 0) {
        last_eval = evaluate();
        last_eval_step = step;
        std::cout << absl::StrFormat("learner: eval at update %d: %s%s", step,
                                     last_eval.evaluation.Summary(),
                                     multigoal ? ", " + streak.Summary() : "")
                  << std::endl;
        if (eval_csv.is_open()) {
          eval_csv << absl::StrFormat(
                          "%d,%d,%.2f,%.4f,%.4f,%d\n", step,
                          last_eval.env_steps,
                          absl::ToDoubleSeconds(absl::Now() - start),
                          last_eval.evaluation.mean_return,
                          last_eval.evaluation.return_stddev,
                          last_eval.evaluation.GoalsCovered())
                   << std::flush;
        }
        if (streak.Met() && absl::GetFlag(FLAGS_stop_when_solved)) break;
      }
      if (!checkpoint_dir.empty() &&
          step % absl::GetFlag(FLAGS_checkpoint_interval) == 0) {
        if (absl::Status s =
                SaveLearnerCheckpoint(agent, learner.version(), checkpoint_dir);
            !s.ok()) {
          std::cerr << "learner: " << s.message() << std::endl;
        }
      }
    } else if (absl::IsDeadlineExceeded(m)) {
      waiting = m;
    } else {
      std::cerr << "learner: step failed: " << m << std::endl;
      exit_code = 1;
      break;
    }
    const absl::Time now = absl::Now();
    if (now - progress.last_time >=
        absl::Seconds(absl::GetFlag(FLAGS_log_interval_s))) {
      last = agent.LastMetrics();
      const double rate = (agent.step() - progress.last_step) /
                          absl::ToDoubleSeconds(now - progress.last_time);
      const double wall = absl::ToDoubleSeconds(now - start);
      const double wait_share = absl::FDivDuration(
          source.waited() - progress.last_waited, now - progress.last_time);
      std::cout << absl::StrFormat(
                       "learner: %7.1fs  updates %7d  %6.1f upd/s  replay wait "
                       "%3.0f%%  sampled %9d  "
                       "critic %.4f  Q %.2f  version %d%s%s",
                       wall, agent.step(), rate, 100 * wait_share,
                       source.sampled(), last.critic_loss, last.mean_q,
                       learner.version(),
                       last_eval_step >= 0
                           ? "  eval " + last_eval.evaluation.Summary()
                           : "",
                       waiting.ok()
                           ? ""
                           : "  waiting: " + std::string(waiting.message()))
                << std::endl;
      if (csv.is_open()) {
        csv << absl::StrFormat(
                   "%.2f,%d,%.2f,%d,%.6f,%.4f,%.4f,%.6f,%d,%d,%d,%.3f\n", wall,
                   agent.step(), rate, source.sampled(), last.critic_loss,
                   last.mean_q, last.policy_surrogate, last.kernel_bandwidth,
                   learner.version(), last_eval.evaluation.GoalsCovered(),
                   last_eval.evaluation.goals
                       ? last_eval.evaluation.goals->reached_any
                       : 0,
                   wait_share)
            << std::flush;
      }
      if (metrics != nullptr) {
        metrics->Set("softq_learner_updates_total", agent.step(),
                     "gradient updates done");
        metrics->Set("softq_learner_updates_per_second", rate,
                     "gradient updates per second since the last report");
        metrics->Set("softq_learner_transitions_sampled_total",
                     source.sampled(), "transitions sampled from the replay");
        metrics->Set("softq_learner_replay_wait_seconds_total",
                     absl::ToDoubleSeconds(source.waited()),
                     "seconds spent waiting for batches from the replay");
        metrics->Set("softq_learner_critic_loss", last.critic_loss,
                     "soft Q loss of the last update");
        metrics->Set("softq_learner_parameter_version", learner.version(),
                     "version of the last published parameters");
        metrics->Set("softq_learner_eval_goals_covered",
                     last_eval.evaluation.GoalsCovered(),
                     "multigoal: goals reached in the last evaluation");
        metrics->Set("softq_learner_parameter_subscribers",
                     service.subscribers(),
                     "actors subscribed to the parameter stream");
      }
      progress = {now, agent.step(), source.waited()};
    }
  }

  // Shut down: final publication, checkpoint, exports, then the server.
  if (agent.step() > start_step) learner.Publish();
  if (!checkpoint_dir.empty()) {
    if (absl::Status s =
            SaveLearnerCheckpoint(agent, learner.version(), checkpoint_dir);
        !s.ok()) {
      std::cerr << "learner: " << s.message() << std::endl;
      exit_code = 1;
    } else {
      std::cout << "learner: checkpoint at step " << agent.step()
                << ", version " << learner.version() << std::endl;
    }
  }
  // The evaluation that stopped the run (or one at the last update) is the
  // final one: a fresh draw of the same policy could land on the other side of
  // the 10% bar. Else one more, counted into the streak.
  const Evaluation final_eval = last_eval_step == agent.step()
                                    ? last_eval.evaluation
                                    : evaluate().evaluation;
  std::cout << absl::StrFormat(
                   "learner: final: %d updates in %.1fs (%.1f upd/s), %s%s",
                   agent.step() - start_step,
                   absl::ToDoubleSeconds(absl::Now() - start),
                   (agent.step() - start_step) /
                       std::max(1e-9,
                                absl::ToDoubleSeconds(absl::Now() - start)),
                   final_eval.Summary(),
                   multigoal ? ", " + streak.Summary() : "")
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
  const bool learned = streak.Met();
  if (!absl::GetFlag(FLAGS_export_torchscript).empty() &&
      absl::GetFlag(FLAGS_require_solved) && !learned) {
    std::cout << "learner: not learned (" << streak.Summary()
              << "): no TorchScript export" << std::endl;
  } else if (!absl::GetFlag(FLAGS_export_torchscript).empty()) {
    if (absl::Status s = ExportSamplingNetworkTorchScript(
            agent.policy(), absl::GetFlag(FLAGS_export_torchscript));
        !s.ok()) {
      std::cerr << "learner: " << s.message() << std::endl;
      exit_code = 1;
    }
  }
  service.Shutdown();
  sampler->reset();
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  if (exit_code == 0 && absl::GetFlag(FLAGS_require_solved) && !learned) {
    exit_code = 1;
  }
  return exit_code;
}

}  // namespace
}  // namespace softq

int main(int argc, char** argv) {
  softq::RestartWithOpenBlasKernelsForThisCpu(argv);
  if (auto code = softq::ParseFlags(argc, argv,
                                    "the SQL learner: --replay=host:port,...");
      code) {
    return *code;
  }
  return softq::Run(argv[0]);
}
