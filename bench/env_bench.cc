// env_bench: environment steps per second on one thread (a per-core figure)
// for each body in the environment registry, in three settings:
//   step    the body's Step alone: random actions drawn before the clock
//           starts, Reset inside the clock whenever an episode ends;
//   actor   an Actor stepping --num_envs copies with the batched sampling
//           network (ActingPolicy, --hidden as actor_main's default) choosing
//           the actions, transitions discarded;
//   stream  the same actor writing its transitions to a replay shard (a
//           replay_server child process on 127.0.0.1, one per body) through
//           ReplaySink/ReplayWriter, as actor_main does; stream/actor is the
//           ratio.
// Each setting is measured --repeats times for --seconds, interleaved (step,
// actor, stream, step, ...); the table gives medians, the ratio being the
// median of each repeat's stream/actor. Beside them: EnvPool's published MuJoCo
// Ant figure per core (another machine), and the targets of issue 26 (a
// quadruped* body's step >= that figure; stream >= 0.85x actor) as PASS/MISS.
// The "cores" columns are CPU seconds per wall second: the bench process
// (LibTorch on 1 thread, plus the replay client's gRPC threads when streaming)
// and, when streaming, "+" the shard process's, which may run on other cores.
//
//   bazel run -c opt //bench:env_bench -- --envs=multigoal,swimmer_speed
//   bash bench/env_bench.sh   # writes bench/results/env/env_bench.txt
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "actor/actor.h"
#include "actor/replay_sink.h"
#include "bench/cpu_time.h"
#include "common/flags.h"
#include "common/torch_threads.h"
#include "env/registry.h"
#include "policy/acting_policy.h"
#include "replay/replay_channel.h"
#include "replay/replay_writer.h"
#include "tests/support/child_process.h"

ABSL_FLAG(std::string, envs, "",
          "bodies to measure, comma-separated registry names (default: every "
          "registered environment that builds with an empty --env_config, "
          "mjcf excepted)");
ABSL_FLAG(double, seconds, 10, "seconds per measurement");
ABSL_FLAG(int32_t, repeats, 3, "measurements per setting; the table: medians");
ABSL_FLAG(int32_t, num_envs, 4,
          "environments per actor (actor_main's default)");
ABSL_FLAG(int32_t, steps_per_write, 16,
          "actor steps per replay message (actor_main's default)");
ABSL_FLAG(int32_t, max_in_flight_batches, 8,
          "unacknowledged replay batches before the actor waits (actor_main's "
          "default)");
ABSL_FLAG(std::string, hidden, "128,128",
          "hidden widths of the sampling network (actor_main's default)");
ABSL_FLAG(uint64_t, replay_capacity, 100000,
          "transitions each replay shard holds (FIFO beyond)");
ABSL_FLAG(std::string, replay_server, "",
          "replay_server binary (default: from runfiles)");
ABSL_FLAG(std::string, commit, "",
          "commit to print in the header (default: git rev-parse HEAD in "
          "the workspace bazel run was called from)");

namespace softq {
namespace {

// EnvPool's README ("MuJoCo Highest FPS", EnvPool (async), Laptop (12)):
// Ant-v3, envpool 0.6.1.post1, 12-thread Intel i7-8750H. Its FPS counts
// physics frames: env steps times frame_skip, 5 for MuJoCo (EnvPool's
// docs/content/benchmark.rst).
constexpr double kEnvPoolAntFps = 105126;
constexpr double kEnvPoolCores = 12;
constexpr double kEnvPoolFrameSkip = 5;
constexpr double kEnvPoolPerCore = kEnvPoolAntFps / kEnvPoolCores;  // 8,760.5
constexpr double kStreamTarget = 0.85;

class DiscardSink : public TransitionSink {
 public:
  absl::Status Write(proto::TransitionBatch) override {
    return absl::OkStatus();
  }
};

struct Rate {
  double steps_per_second = 0;
  double cores = 0;        // this process: CPU seconds per wall second
  double child_cores = 0;  // the child process (the shard), the same
};

// Times `step` (which returns the env steps it made, or an error) for
// `seconds` of wall time; `child` (or 0) is a process whose CPU time counts.
template <typename StepFn>
absl::StatusOr<Rate> Time(double seconds, pid_t child, StepFn step) {
  int64_t steps = 0;
  const double cpu0 = SelfCpuSeconds();
  const double child0 = child != 0 ? ProcessCpuSeconds(child) : 0;
  const absl::Time start = absl::Now();
  const absl::Time end = start + absl::Seconds(seconds);
  absl::Time now = start;
  while (now < end) {
    absl::StatusOr<int64_t> n = step();
    if (!n.ok()) return n.status();
    steps += *n;
    now = absl::Now();
  }
  const double wall = absl::ToDoubleSeconds(now - start);
  const double cpu = SelfCpuSeconds() - cpu0;
  const double child_cpu = child != 0 ? ProcessCpuSeconds(child) - child0 : 0;
  return Rate{steps / wall, cpu / wall, child_cpu / wall};
}

absl::StatusOr<std::vector<std::unique_ptr<Environment>>> MakeEnvs(
    const std::string& name, int n, uint64_t seed) {
  std::vector<std::unique_ptr<Environment>> envs;
  for (int i = 0; i < n; ++i) {
    absl::StatusOr<std::unique_ptr<Environment>> env =
        MakeEnvironment(name, "", seed * 1000 + i);
    if (!env.ok()) return env.status();
    envs.push_back(*std::move(env));
  }
  return envs;
}

// (a) The body's Step alone, 32 steps between clock reads; Reset when an
// episode ends.
absl::StatusOr<Rate> StepAlone(const std::string& name, double seconds,
                               uint64_t seed) {
  absl::StatusOr<std::vector<std::unique_ptr<Environment>>> envs =
      MakeEnvs(name, 1, seed);
  if (!envs.ok()) return envs.status();
  Environment& env = *envs->front();
  const int dim = env.spec().action_dim;
  constexpr int kActions = 4096;
  std::mt19937_64 gen(seed);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  std::vector<float> actions(static_cast<size_t>(kActions) * dim);
  for (float& a : actions) a = uniform(gen);
  env.Reset();
  int64_t next = 0;
  auto step32 = [&]() -> absl::StatusOr<int64_t> {
    for (int i = 0; i < 32; ++i, ++next) {
      const float* a = &actions[(next % kActions) * dim];
      absl::StatusOr<StepResult> r = env.Step({a, static_cast<size_t>(dim)});
      if (!r.ok()) return r.status();
      if (r->terminal || r->truncated) env.Reset();
    }
    return 32;
  };
  // Warm-up: caches, and the first episodes' allocations.
  for (int i = 0; i < 64; ++i) {
    if (absl::StatusOr<int64_t> n = step32(); !n.ok()) return n.status();
  }
  return Time(seconds, 0, step32);
}

// (b) and (c): an Actor over `num_envs` copies writing to `sink`.
absl::StatusOr<Rate> ActorRate(const std::string& name, double seconds,
                               uint64_t seed, uint32_t actor_id,
                               TransitionSink* sink, pid_t child) {
  absl::StatusOr<std::vector<std::unique_ptr<Environment>>> envs =
      MakeEnvs(name, absl::GetFlag(FLAGS_num_envs), seed);
  if (!envs.ok()) return envs.status();
  const EnvSpec spec = envs->front()->spec();
  absl::StatusOr<std::vector<int64_t>> hidden =
      FlagWidthList("hidden", absl::GetFlag(FLAGS_hidden));
  if (!hidden.ok()) return hidden.status();
  ActingPolicy policy(spec.observation_dim, spec.action_dim, *hidden, seed);
  Actor actor(*std::move(envs), &policy, sink,
              {actor_id, absl::GetFlag(FLAGS_steps_per_write)});
  const int64_t per_step = absl::GetFlag(FLAGS_num_envs);
  auto step = [&]() -> absl::StatusOr<int64_t> {
    if (absl::Status s = actor.Step(); !s.ok()) return s;
    return per_step;
  };
  for (int i = 0; i < 4 * absl::GetFlag(FLAGS_steps_per_write); ++i) {
    if (absl::StatusOr<int64_t> n = step(); !n.ok()) return n.status();
  }
  return Time(seconds, child, step);
}

struct Row {
  std::string name;
  EnvSpec spec;
  std::vector<Rate> step, actor, stream;
  std::vector<double> ratio;  // stream / actor, per repeat
  // The same per CPU second of this process (the shard's not counted): the
  // ratio a busy machine, which takes CPU time from the bench, disturbs less.
  std::vector<double> cpu_ratio;
};

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

std::vector<double> Steps(const std::vector<Rate>& rates) {
  std::vector<double> out;
  for (const Rate& r : rates) out.push_back(r.steps_per_second);
  return out;
}

std::vector<double> Cores(const std::vector<Rate>& rates) {
  std::vector<double> out;
  for (const Rate& r : rates) out.push_back(r.cores);
  return out;
}

// Steps per CPU second of this process, per measurement.
std::vector<double> StepsPerCpuSecond(const std::vector<Rate>& rates) {
  std::vector<double> out;
  for (const Rate& r : rates) {
    out.push_back(r.cores > 0 ? r.steps_per_second / r.cores : 0);
  }
  return out;
}

std::vector<double> ChildCores(const std::vector<Rate>& rates) {
  std::vector<double> out;
  for (const Rate& r : rates) out.push_back(r.child_cores);
  return out;
}

// One body: its shard, then --repeats rounds of step, actor, stream.
absl::Status Measure(const std::string& binary, Row* row) {
  const double seconds = absl::GetFlag(FLAGS_seconds);
  std::string address;
  absl::StatusOr<std::unique_ptr<ChildProcess>> shard = StartListening(
      {binary, "--port=0",
       absl::StrCat("--capacity=", absl::GetFlag(FLAGS_replay_capacity))},
      "replay_server listening on", absl::Seconds(30), &address);
  if (!shard.ok()) return shard.status();
  ReplayClientOptions options;
  options.addresses = {address};
  options.rpc_timeout = absl::Seconds(1);  // as actor_main
  options.max_in_flight_batches = absl::GetFlag(FLAGS_max_in_flight_batches);
  absl::StatusOr<std::unique_ptr<ReplayWriter>> writer =
      ReplayWriter::Create(options);
  if (!writer.ok()) return writer.status();
  ReplaySink sink(writer->get());
  DiscardSink discard;
  absl::Status status;
  for (int r = 0; r < absl::GetFlag(FLAGS_repeats) && status.ok(); ++r) {
    absl::StatusOr<Rate> step = StepAlone(row->name, seconds, r + 1);
    if (!step.ok()) {
      status = step.status();
      break;
    }
    absl::StatusOr<Rate> actor =
        ActorRate(row->name, seconds, r + 1, 0, &discard, 0);
    if (!actor.ok()) {
      status = actor.status();
      break;
    }
    // A new actor id each repeat: its episode ids do not repeat the last's.
    absl::StatusOr<Rate> stream =
        ActorRate(row->name, seconds, r + 1, r + 1, &sink, (*shard)->pid());
    if (!stream.ok()) {
      status = stream.status();
      break;
    }
    // Untimed: what is still in flight reaches the shard before the next row.
    status = (*writer)->Flush(absl::Seconds(30));
    row->step.push_back(*step);
    row->actor.push_back(*actor);
    row->stream.push_back(*stream);
    row->ratio.push_back(stream->steps_per_second / actor->steps_per_second);
    row->cpu_ratio.push_back((stream->steps_per_second / stream->cores) /
                             (actor->steps_per_second / actor->cores));
    std::cout << absl::StrFormat(
                     "  %s repeat %d: steps/s (cores) step %.0f (%.2f), actor "
                     "%.0f (%.2f), stream %.0f (%.2f+%.2f)\n",
                     row->name, r + 1, step->steps_per_second, step->cores,
                     actor->steps_per_second, actor->cores,
                     stream->steps_per_second, stream->cores,
                     stream->child_cores)
              << std::flush;
  }
  writer->reset();
  (*shard)->Signal(SIGTERM).IgnoreError();
  (*shard)->Wait(absl::Seconds(10)).IgnoreError();
  if (!status.ok()) {
    return absl::Status(status.code(),
                        absl::StrCat(row->name, ": ", status.message()));
  }
  return absl::OkStatus();
}

// Output of `command`'s stdout with the trailing newline removed; "" on error.
std::string CommandOutput(const std::string& command) {
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return "";
  std::string out;
  char buffer[4096];
  size_t n;
  while ((n = fread(buffer, 1, sizeof(buffer), pipe)) > 0)
    out.append(buffer, n);
  pclose(pipe);
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

// The commit line: --commit, else HEAD of the workspace `bazel run` started
// from, with the paths that differ from it (uncommitted changes also built
// into this binary).
std::string CommitLine() {
  if (!absl::GetFlag(FLAGS_commit).empty()) return absl::GetFlag(FLAGS_commit);
  const char* workspace = std::getenv("BUILD_WORKSPACE_DIRECTORY");
  if (workspace == nullptr) return "unknown (not started by bazel run)";
  const std::string git = absl::StrCat("git -C '", workspace, "' ");
  const std::string head = CommandOutput(git + "rev-parse HEAD 2>/dev/null");
  if (head.empty()) return "unknown (git rev-parse failed)";
  const std::string changed =
      CommandOutput(git + "status --porcelain 2>/dev/null");
  if (changed.empty()) return absl::StrCat(head, " (working tree clean)");
  std::vector<std::string> paths;
  for (absl::string_view line : absl::StrSplit(changed, '\n')) {
    if (line.size() > 3) paths.emplace_back(line.substr(3));
  }
  return absl::StrCat(head, " (working tree differs in ", paths.size(),
                      " paths: ", absl::StrJoin(paths, " "), ")");
}

std::string CpuModel() {
  std::ifstream in("/proc/cpuinfo");
  std::string line, model = "unknown";
  int logical = 0;
  while (std::getline(in, line)) {
    if (absl::StartsWith(line, "processor")) ++logical;
    if (model == "unknown" && absl::StartsWith(line, "model name")) {
      const size_t colon = line.find(':');
      if (colon != std::string::npos) {
        model = std::string(absl::StripAsciiWhitespace(line.substr(colon + 1)));
      }
    }
  }
  return absl::StrCat(model, " (", logical, " logical CPUs in /proc/cpuinfo)");
}

// The bodies to measure: --envs, else every registered one that builds with
// an empty config (mjcf needs a model; others that fail are listed in
// `skipped`).
absl::StatusOr<std::vector<std::string>> Bodies(std::string* skipped) {
  std::vector<std::string> names;
  if (!absl::GetFlag(FLAGS_envs).empty()) {
    names = absl::StrSplit(absl::GetFlag(FLAGS_envs), ',', absl::SkipEmpty());
    for (const std::string& name : names) {
      if (absl::StatusOr<std::unique_ptr<Environment>> env =
              MakeEnvironment(name, "", 0);
          !env.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat("--envs: ", env.status().message()));
      }
    }
    return names;
  }
  for (const EnvRegistration& r : RegisteredEnvironments()) {
    if (r.name == "mjcf") {
      absl::StrAppend(skipped, " mjcf (needs a model)");
      continue;
    }
    if (absl::StatusOr<std::unique_ptr<Environment>> env =
            MakeEnvironment(r.name, "", 0);
        !env.ok()) {
      absl::StrAppend(skipped, " ", r.name, " (", env.status().message(), ")");
      continue;
    }
    names.push_back(r.name);
  }
  return names;
}

bool IsQuadruped(const std::string& name) {
  return absl::StartsWith(name, "quadruped");
}

// PASS/MISS of `value` >= `target`.
const char* Check(double value, double target) {
  return value >= target ? "PASS" : "MISS";
}

void PrintTable(const std::vector<Row>& rows) {
  constexpr char kFormat[] =
      "%-18s %7s %11s %11s %11s %11s %7s %7s %6s %9s %9s %7s %7s %9s\n";
  const std::string header = absl::StrFormat(
      kFormat, "body", "obs/act", "step", "step", "actor", "stream", "ratio",
      "ratio", "cores", "cores", "EnvPool", "step>=", "step>=", "stream>=");
  std::cout << header
            << absl::StrFormat(
                   kFormat, "", "", "alone", "per CPU s", "+policy", "to shard",
                   "str/act", "per CPU", "actor", "stream", "Ant/core",
                   absl::StrFormat("%.0f", kEnvPoolPerCore),
                   absl::StrFormat("%.0f", kEnvPoolPerCore / kEnvPoolFrameSkip),
                   absl::StrFormat("%.2fx", kStreamTarget))
            << std::string(header.size() - 1, '-') << "\n";
  for (const Row& row : rows) {
    const double step = Median(Steps(row.step));
    const double ratio = Median(row.ratio);
    const bool quadruped = IsQuadruped(row.name);
    std::cout << absl::StrFormat(
        kFormat, row.name,
        absl::StrCat(row.spec.observation_dim, "/", row.spec.action_dim),
        absl::StrFormat("%.0f", step),
        absl::StrFormat("%.0f", Median(StepsPerCpuSecond(row.step))),
        absl::StrFormat("%.0f", Median(Steps(row.actor))),
        absl::StrFormat("%.0f", Median(Steps(row.stream))),
        absl::StrFormat("%.2fx", ratio),
        absl::StrFormat("%.2fx", Median(row.cpu_ratio)),
        absl::StrFormat("%.2f", Median(Cores(row.actor))),
        absl::StrFormat("%.2f+%.2f", Median(Cores(row.stream)),
                        Median(ChildCores(row.stream))),
        absl::StrFormat("%.0f", kEnvPoolPerCore),
        quadruped ? Check(step, kEnvPoolPerCore) : "-",
        quadruped ? Check(step, kEnvPoolPerCore / kEnvPoolFrameSkip) : "-",
        Check(ratio, kStreamTarget));
  }
}

int Run(const char* argv0) {
  std::string binary = absl::GetFlag(FLAGS_replay_server);
  if (binary.empty())
    binary = std::string(argv0) + ".runfiles/softq/replay/replay_server";
  std::string skipped;
  absl::StatusOr<std::vector<std::string>> bodies = Bodies(&skipped);
  if (!bodies.ok()) return ReportFlagError(argv0, bodies.status());
  if (bodies->empty()) {
    return ReportFlagError(argv0,
                           absl::InvalidArgumentError("no body to measure"));
  }

  const double seconds = absl::GetFlag(FLAGS_seconds);
  const int repeats = absl::GetFlag(FLAGS_repeats);
  std::cout << "env_bench: env steps/s on one thread (per core), median of "
            << repeats << " x " << seconds << " s per setting\n"
            << "commit: " << CommitLine() << "\n"
            << "cpu: " << CpuModel() << "\n"
            << ConfigureTorchThreads(1) << "\n"
            << absl::StrFormat(
                   "actor: %d envs, sampling network %s, %d steps per replay "
                   "message, %d batches in flight; shard: replay_server on "
                   "127.0.0.1, capacity %d, one per body\n",
                   absl::GetFlag(FLAGS_num_envs), absl::GetFlag(FLAGS_hidden),
                   absl::GetFlag(FLAGS_steps_per_write),
                   absl::GetFlag(FLAGS_max_in_flight_batches),
                   absl::GetFlag(FLAGS_replay_capacity))
            << "bodies: " << absl::StrJoin(*bodies, ",")
            << (skipped.empty() ? "" : absl::StrCat("; skipped:", skipped))
            << "\n\nmeasurements, in the order taken:\n"
            << std::flush;

  std::vector<Row> rows;
  for (const std::string& name : *bodies) {
    Row row;
    row.name = name;
    row.spec = (*MakeEnvironment(name, "", 0))->spec();
    if (absl::Status s = Measure(binary, &row); !s.ok()) {
      std::cerr << "env_bench: " << s << std::endl;
      return 1;
    }
    rows.push_back(std::move(row));
  }

  std::cout << "\n";
  PrintTable(rows);
  std::cout << absl::StrFormat(
      "\nstep: the body's Step alone, random actions, resets included; per "
      "CPU s: its steps per CPU second of this process. actor: "
      "an Actor over %d copies, actions from the sampling network, "
      "transitions discarded. stream: the same, writing to the shard. "
      "ratio: median of stream/actor per repeat; per CPU: of their steps per "
      "CPU s of this process (less disturbed by other load; the target "
      "check uses the first). cores: CPU s per wall s of this process "
      "(stream: this process + the shard process).\n",
      absl::GetFlag(FLAGS_num_envs));
  std::cout << absl::StrFormat(
      "EnvPool Ant/core: EnvPool Ant, published, 12-core laptop, another "
      "machine: %.0f FPS (EnvPool async, Ant-v3, envpool 0.6.1.post1, "
      "12-thread i7-8750H; its README and docs/content/benchmark.rst) / %.0f "
      "= %.0f per core. EnvPool's FPS counts frames, env steps x frame_skip "
      "%.0f: %.0f Ant env steps/s per core.\n"
      "step>=%.0f: a quadruped* body's step alone against the per-core "
      "figure as issue 26 states it (frames taken as env steps). "
      "step>=%.0f: against EnvPool's Ant env steps per core (like for like "
      "where the body, as Ant, makes %.0f MuJoCo steps per env step).\n",
      kEnvPoolAntFps, kEnvPoolCores, kEnvPoolPerCore, kEnvPoolFrameSkip,
      kEnvPoolPerCore / kEnvPoolFrameSkip, kEnvPoolPerCore,
      kEnvPoolPerCore / kEnvPoolFrameSkip, kEnvPoolFrameSkip);
  if (std::none_of(rows.begin(), rows.end(),
                   [](const Row& row) { return IsQuadruped(row.name); })) {
    std::cout << "quadruped step target: no quadruped* body measured\n";
  }
  return 0;
}

}  // namespace
}  // namespace softq

int main(int argc, char** argv) {
  softq::RestartWithOpenBlasKernelsForThisCpu(argv);
  if (auto code = softq::ParseFlags(
          argc, argv,
          "env steps/s per core of each registered body: the step alone, an "
          "actor with the batched policy, the actor streaming to a replay "
          "shard");
      code) {
    return *code;
  }
  if (absl::Status s = softq::CheckFlags(
          {softq::FlagAtLeast("seconds", absl::GetFlag(FLAGS_seconds), 0.1),
           softq::FlagInRange("repeats", absl::GetFlag(FLAGS_repeats), 1, 100),
           softq::FlagInRange("num_envs", absl::GetFlag(FLAGS_num_envs), 1,
                              4096),
           softq::FlagInRange("steps_per_write",
                              absl::GetFlag(FLAGS_steps_per_write), 1, 4096),
           softq::FlagInRange("max_in_flight_batches",
                              absl::GetFlag(FLAGS_max_in_flight_batches), 1,
                              1024),
           softq::FlagAtLeast("replay_capacity",
                              absl::GetFlag(FLAGS_replay_capacity), 1),
           softq::FlagWidthList("hidden", absl::GetFlag(FLAGS_hidden))
               .status()});
      !s.ok()) {
    return softq::ReportFlagError(argv[0], s);
  }
  return softq::Run(argv[0]);
}
