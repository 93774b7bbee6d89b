// actor: steps --num_envs environments with its local copy of the sampling
// network (one batched forward per step), streams the transitions to the replay
// shards (blocking when they push back), and swaps in the learner's newest
// parameters between steps. Waits for the first parameters before stepping.
// Reports env steps/s, episode returns and its parameter lag every
// --report_interval_s. SIGTERM: flushes what is queued and exits 0.
#include <iostream>
#include <numeric>

#include "absl/flags/flag.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "actor/actor.h"
#include "actor/parameter_subscriber.h"
#include "actor/replay_sink.h"
#include "common/flags.h"
#include "common/metrics.h"
#include "common/security_flags.h"
#include "common/shutdown.h"
#include "common/torch_threads.h"
#include "common/transition_check.h"
#include "env/registry.h"
#include "replay/replay_channel.h"
#include "replay/replay_stats.h"
#include "replay/replay_writer.h"

ABSL_FLAG(std::string, replay, "",
          "comma-separated host:port of the replay shards");
ABSL_FLAG(std::string, learner, "",
          "host:port of the learner's parameter service");
ABSL_FLAG(int32_t, actor_id, 0, "this actor's id, in [0, 2^31)");
ABSL_FLAG(std::string, env, "multigoal",
          "environment by name; --env=help lists them and their keys");
ABSL_FLAG(std::string, env_config, "",
          "the environment's parameters, key=value,key=value (README: "
          "Environments)");
ABSL_FLAG(int32_t, num_envs, 4, "environments stepped together");
ABSL_FLAG(
    int32_t, steps_per_write, 16,
    "env steps gathered into one replay message (x num_envs transitions; "
    "fewer, larger "
    "messages: 16 keeps the network cost under 5%, bench/actor_learner_bench)");
ABSL_FLAG(int32_t, max_in_flight_batches, 8,
          "replay batches per shard not yet acknowledged before the actor "
          "waits: how far it may "
          "run ahead of shards that hold inserts back (its data's staleness)");
ABSL_FLAG(std::string, hidden, "128,128",
          "hidden widths of the sampling network");
ABSL_FLAG(
    bool, deterministic_policy, false,
    "act with f(0; s) instead of f(xi; s), xi ~ N(0, I) (the DDPG baseline)");
ABSL_FLAG(double, action_noise, 0.0,
          "std of Gaussian noise added to each action, then clipped to [-1, 1] "
          "(DDPG: ~0.2)");
ABSL_FLAG(int64_t, max_env_steps, 0,
          "stop after this many env steps (0: until SIGTERM)");
ABSL_FLAG(double, max_steps_per_second, 0,
          "throttle env steps/s (0: as fast as possible)");
ABSL_FLAG(double, report_interval_s, 5.0, "seconds between report lines");
ABSL_FLAG(int32_t, metrics_port, -1,
          "Prometheus /metrics port (0: any free, -1: off)");
ABSL_FLAG(std::string, metrics_host, "127.0.0.1",
          "address of the /metrics endpoint");
ABSL_FLAG(int64_t, seed, 0, "random seed (combined with --actor_id)");
ABSL_FLAG(std::string, acked_ids_out, "",
          "file to list every transition the replay acknowledges, one line "
          "'actor_id episode_id step_id' each, appended as the acks arrive "
          "(for tests; empty: none)");

namespace softq {
namespace {

// The final flush left `pending` batches unacknowledged. When the shards say
// their rate limiter is holding inserts back (the learner has stopped sampling,
// as at the end of a run), that is expected and is said as such; any other
// cause is reported as the error it is.
void ReportUnflushed(const std::string& tag, const absl::Status& flush,
                     const std::vector<std::string>& shards,
                     const SecurityConfig& security, size_t pending) {
  std::vector<std::string> limited;
  double samples_per_insert = 0;
  const std::vector<absl::StatusOr<proto::ShardStats>> stats =
      QueryStatsEach(shards, absl::Seconds(1), security);
  for (size_t i = 0; i < stats.size(); ++i) {
    if (stats[i].ok() && stats[i]->rate_limiter().blocked_inserts() > 0) {
      limited.push_back(shards[i]);
      samples_per_insert = stats[i]->rate_limiter().samples_per_insert();
    }
  }
  if (absl::IsDeadlineExceeded(flush) && !limited.empty()) {
    std::cout << tag << pending << " batches left unstored: shard(s) "
              << absl::StrJoin(limited, ", ")
              << " hold inserts until the learner samples (samples_per_insert "
              << samples_per_insert
              << "); every acknowledged transition is stored" << std::endl;
    return;
  }
  std::cerr << tag << "replay flush: " << flush << std::endl;
}

// A write's batch (--num_envs x --steps_per_write transitions) within what a
// shard takes in one message: kMaxBatchTransitions, and the shards' default
// --max_message_bytes.
absl::Status CheckBatchSize(const EnvSpec& spec) {
  const int64_t envs = absl::GetFlag(FLAGS_num_envs);
  const int64_t steps = absl::GetFlag(FLAGS_steps_per_write);
  const int64_t transitions = envs * steps;
  const int64_t bytes =
      transitions *
      TransitionMessageBytes(spec.observation_dim, spec.action_dim);
  if (transitions <= kMaxBatchTransitions && bytes <= kDefaultMaxMessageBytes) {
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(
      absl::StrFormat("--steps_per_write=%d: with --num_envs=%d a write is %d "
                      "transitions (%.0f MiB); a shard "
                      "takes at most %d (and %d MiB) in one message",
                      steps, envs, transitions, bytes / 1048576.0,
                      kMaxBatchTransitions, kDefaultMaxMessageBytes >> 20));
}

// The actor's series (those of python/softq/actor.py too): set when the
// endpoint starts, so that a scrape before the first report finds them, and at
// every report.
void PublishMetrics(MetricsExporter* metrics, int64_t env_steps, double rate,
                    double mean_return, int64_t episodes, uint64_t version,
                    uint64_t acknowledged) {
  metrics->Set("softq_actor_env_steps_total", env_steps,
               "environment steps taken, over all of the actor's envs");
  metrics->Set("softq_actor_env_steps_per_second", rate,
               "environment steps per second since the last report");
  metrics->Set("softq_actor_episode_return", mean_return,
               "mean return of the episodes finished since the last report");
  metrics->Set("softq_actor_episodes_total", episodes, "episodes finished");
  metrics->Set("softq_actor_parameter_version", version,
               "version of the sampling network's parameters in use");
  metrics->Set("softq_actor_transitions_acknowledged_total", acknowledged,
               "transitions the replay shards acknowledged");
}

int Run(const char* program) {
  absl::StatusOr<std::vector<int64_t>> hidden =
      FlagWidthList("hidden", absl::GetFlag(FLAGS_hidden));
  absl::Status flags_ok = CheckFlags({
      FlagAddressList("replay", absl::GetFlag(FLAGS_replay)),
      FlagAddress("learner", absl::GetFlag(FLAGS_learner)),
      FlagInRange("actor_id", absl::GetFlag(FLAGS_actor_id), 0, INT32_MAX),
      FlagInRange("num_envs", absl::GetFlag(FLAGS_num_envs), 1, 4096),
      FlagInRange("steps_per_write", absl::GetFlag(FLAGS_steps_per_write), 1,
                  10000),
      FlagInRange("max_in_flight_batches",
                  absl::GetFlag(FLAGS_max_in_flight_batches), 1, 1024),
      hidden.status(),
      FlagInRange("action_noise", absl::GetFlag(FLAGS_action_noise), 0.0, 10.0),
      FlagAtLeast("max_env_steps", absl::GetFlag(FLAGS_max_env_steps), 0),
      FlagAtLeast("max_steps_per_second",
                  absl::GetFlag(FLAGS_max_steps_per_second), 0),
      FlagInRange("report_interval_s", absl::GetFlag(FLAGS_report_interval_s),
                  0.01, 3600),
      FlagInRange("metrics_port", absl::GetFlag(FLAGS_metrics_port), -1, 65535),
  });
  if (!flags_ok.ok()) return ReportFlagError(program, flags_ok);
  if (absl::GetFlag(FLAGS_env) == "external") {
    return ReportFlagError(
        program, absl::InvalidArgumentError(
                     "--env=external: a task only Python actors step (python3 "
                     "-m softq.actor); actor_main steps a C++ environment"));
  }
  absl::StatusOr<SecurityConfig> security = SecurityFromFlags();
  if (!security.ok()) return ReportFlagError(program, security.status());
  InstallShutdownHandlers();
  const int actor_id = absl::GetFlag(FLAGS_actor_id);
  const std::string tag = absl::StrCat("actor ", actor_id, ": ");
  std::cout << tag << ConfigureTorchThreads(1) << std::endl;

  std::unique_ptr<MetricsExporter> metrics;
  if (absl::GetFlag(FLAGS_metrics_port) >= 0) {
    absl::StatusOr<std::unique_ptr<MetricsExporter>> m = MetricsExporter::Start(
        absl::GetFlag(FLAGS_metrics_host), absl::GetFlag(FLAGS_metrics_port),
        security->token);
    if (!m.ok()) return ReportFlagError(program, m.status());
    metrics = *std::move(m);
    PublishMetrics(metrics.get(), 0, 0, 0, 0, 0, 0);  // until the first report
    std::cout << tag << "metrics on port " << metrics->port() << std::endl;
  }

  const uint64_t seed = absl::GetFlag(FLAGS_seed) * 1000003 + actor_id;
  std::vector<std::unique_ptr<Environment>> envs;
  for (int i = 0; i < absl::GetFlag(FLAGS_num_envs); ++i) {
    absl::StatusOr<std::unique_ptr<Environment>> env =
        MakeEnvironment(absl::GetFlag(FLAGS_env),
                        absl::GetFlag(FLAGS_env_config), seed * 7919 + i);
    if (!env.ok()) return ReportFlagError(program, env.status());
    envs.push_back(*std::move(env));
  }
  const EnvSpec spec = envs.front()->spec();
  if (absl::Status s = CheckBatchSize(spec); !s.ok())
    return ReportFlagError(program, s);
  // Created before the writer, whose ack threads write to it: outlives them.
  std::unique_ptr<AckedIdsFile> acked_ids;
  if (!absl::GetFlag(FLAGS_acked_ids_out).empty()) {
    absl::StatusOr<std::unique_ptr<AckedIdsFile>> file =
        AckedIdsFile::Create(absl::GetFlag(FLAGS_acked_ids_out));
    if (!file.ok()) {
      return ReportFlagError(
          program, absl::InvalidArgumentError(absl::StrCat(
                       "--acked_ids_out: ", file.status().message())));
    }
    acked_ids = *std::move(file);
  }
  WarnIfInsecure(*security, program);
  ActingPolicy policy(spec.observation_dim, spec.action_dim, *hidden, seed,
                      {absl::GetFlag(FLAGS_deterministic_policy),
                       absl::GetFlag(FLAGS_action_noise)});
  ParameterSubscriber subscriber(absl::GetFlag(FLAGS_learner), &policy,
                                 *security);
  std::cout << tag << "waiting for parameters from "
            << absl::GetFlag(FLAGS_learner) << std::endl;
  // The learner trains a network this actor cannot run: one line, exit 1
  // (waiting would stall the learner too, which then never gets data).
  const auto network_mismatch = [&tag, &subscriber] {
    const absl::Status s = subscriber.network_mismatch();
    if (s.ok()) return false;
    std::cerr << tag
              << "the learner's sampling network does not fit this actor's ("
              << s.message()
              << "): run the actors with the learner's --env and --hidden"
              << std::endl;
    return true;
  };
  while (!subscriber.WaitForParameters(absl::Seconds(1))) {
    if (ShutdownRequested()) return 0;
    if (network_mismatch()) return 1;
  }
  std::cout << tag << "got parameters version " << policy.version()
            << std::endl;

  ReplayClientOptions options;
  options.addresses =
      absl::StrSplit(absl::GetFlag(FLAGS_replay), ',', absl::SkipEmpty());
  // A back-pressure wait gives up after 1 s (ReplaySink retries, checking for
  // SIGTERM in between), so SIGTERM is honoured within seconds even when no
  // shard answers.
  options.rpc_timeout = absl::Seconds(1);
  options.max_in_flight_batches = absl::GetFlag(FLAGS_max_in_flight_batches);
  options.security = *security;
  if (acked_ids != nullptr) {
    options.on_acknowledged =
        [file = acked_ids.get()](const proto::TransitionBatch& batch) {
          file->Record(batch);
        };
  }
  absl::StatusOr<std::unique_ptr<ReplayWriter>> writer =
      ReplayWriter::Create(options);
  if (!writer.ok()) {
    std::cerr << tag << writer.status() << std::endl;
    return 1;
  }
  ReplaySink sink(writer->get());
  Actor actor(
      std::move(envs), &policy, &sink,
      {static_cast<uint32_t>(actor_id), absl::GetFlag(FLAGS_steps_per_write)});

  const absl::Time start = absl::Now();
  absl::Time last_report = start;
  int64_t last_steps = 0;
  std::vector<double> returns;
  int exit_code = 0;
  const double max_rate = absl::GetFlag(FLAGS_max_steps_per_second);
  while (!ShutdownRequested()) {
    const int64_t max_steps = absl::GetFlag(FLAGS_max_env_steps);
    if (max_steps > 0 && actor.env_steps() >= max_steps) break;
    if (absl::Status s = actor.Step(); !s.ok()) {
      if (absl::IsCancelled(s)) break;
      std::cerr << tag << "step failed: " << s << std::endl;
      exit_code = 1;
      break;
    }
    if (max_rate > 0) {
      const absl::Time due =
          start + absl::Seconds(actor.env_steps() / max_rate);
      if (due > absl::Now() && WaitForShutdown(due - absl::Now())) break;
    }
    for (double r : actor.TakeEpisodeReturns()) returns.push_back(r);
    const absl::Time now = absl::Now();
    if (now - last_report >=
        absl::Seconds(absl::GetFlag(FLAGS_report_interval_s))) {
      if (network_mismatch()) {
        exit_code = 1;
        break;
      }
      const double rate = (actor.env_steps() - last_steps) /
                          absl::ToDoubleSeconds(now - last_report);
      const double mean_return =
          returns.empty()
              ? 0
              : std::accumulate(returns.begin(), returns.end(), 0.0) /
                    returns.size();
      const uint64_t version = policy.version();
      std::cout << absl::StrFormat(
                       "%senv steps %8d  %7.1f steps/s  episodes %6d  return "
                       "%7.1f  version %d  "
                       "learner step %d  acked %d  waits %d",
                       tag, actor.env_steps(), rate, actor.episodes(),
                       mean_return, version, subscriber.latest_learner_step(),
                       (*writer)->acknowledged(), sink.waits())
                << std::endl;
      if (metrics != nullptr) {
        PublishMetrics(metrics.get(), actor.env_steps(), rate, mean_return,
                       actor.episodes(), version, (*writer)->acknowledged());
      }
      returns.clear();
      last_report = now;
      last_steps = actor.env_steps();
    }
  }
  if (absl::Status s = actor.Flush(); !s.ok() && !absl::IsCancelled(s)) {
    std::cerr << tag << "flush: " << s << std::endl;
  }
  if (absl::Status s = (*writer)->Flush(absl::Seconds(2)); !s.ok()) {
    ReportUnflushed(tag, s, options.addresses, options.security,
                    (*writer)->pending_batches());
  }
  std::cout << tag << "stopped after " << actor.env_steps() << " env steps, "
            << (*writer)->acknowledged() << " transitions acknowledged"
            << std::endl;
  if (acked_ids != nullptr) {
    if (absl::Status s = acked_ids->status(); !s.ok()) {
      std::cerr << tag << "--acked_ids_out: " << s << std::endl;
      exit_code = 1;
    }
  }
  return exit_code;
}

}  // namespace
}  // namespace softq

int main(int argc, char** argv) {
  softq::RestartWithOpenBlasKernelsForThisCpu(argv);
  if (auto code = softq::ParseFlags(argc, argv,
                                    "an SQL actor: --replay=... --learner=...");
      code) {
    return *code;
  }
  if (absl::GetFlag(FLAGS_env) == "help") {
    std::cout << softq::EnvironmentHelp();
    return 0;
  }
  return softq::Run(argv[0]);
}
