// What replay_bench's modes share (bench_support.h): test data, child
// servers, the client library measured, the table helpers.
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "bench/cpu_time.h"
#include "bench/replay/bench_support.h"
#include "proto/replay.grpc.pb.h"
#include "replay/replay_channel.h"
#include "replay/replay_sampler.h"
#include "replay/replay_writer.h"

namespace softq {
namespace replay_bench {

proto::TransitionBatch RandomBatch(uint32_t n, uint32_t od, uint32_t ad,
                                   std::mt19937* gen) {
  std::uniform_real_distribution<float> u(-1, 1);
  proto::TransitionBatch b;
  b.set_observation_dim(od);
  b.set_action_dim(ad);
  b.set_actor_id(1);
  for (uint32_t i = 0; i < n * od; ++i) b.add_observations(u(*gen));
  for (uint32_t i = 0; i < n * ad; ++i) b.add_actions(u(*gen));
  for (uint32_t i = 0; i < n; ++i) b.add_rewards(u(*gen));
  for (uint32_t i = 0; i < n * od; ++i) b.add_next_observations(u(*gen));
  for (uint32_t i = 0; i < n; ++i) b.add_dones(u(*gen) > 0.9f);
  // Ids as actors send them (the shard then stores and samples them): an
  // episode id per 32 steps, the step within its episode.
  for (uint32_t i = 0; i < n; ++i) {
    b.add_episode_ids((uint64_t{1} << 40) | i / 32);
    b.add_step_ids(i % 32);
  }
  return b;
}

uint64_t RawBytes(uint32_t od, uint32_t ad) {
  return (2ull * od + ad + 1) * 4 + 1 + kIdBytes;
}

std::vector<TaskSize> SelectedTaskSizes() {
  static constexpr TaskSize kTaskSizes[] = {{2, 2, "multi-goal"},
                                            {17, 2, "swimmer-like"},
                                            {27, 8, "quadruped"},
                                            {111, 8, "Ant with contacts"}};
  const std::vector<std::string> names =
      absl::StrSplit(absl::GetFlag(FLAGS_obs_sizes), ',');
  std::vector<TaskSize> out;
  for (const TaskSize& t : kTaskSizes) {
    if (std::find(names.begin(), names.end(), absl::StrCat(t.od)) !=
        names.end()) {
      out.push_back(t);
    }
  }
  return out;
}

// Inserts `batch` into an in-process shard until it holds its capacity.
absl::Status FillShard(Shard* shard, const proto::TransitionBatch& batch) {
  const google::protobuf::RepeatedField<float> none;
  while (shard->table().size() < shard->options().capacity) {
    if (absl::StatusOr<KeyRange> k =
            shard->Insert(batch, none, absl::Now() + absl::Seconds(60));
        !k.ok()) {
      return k.status();
    }
  }
  return absl::OkStatus();
}

std::vector<std::string> OnServerCpus(std::vector<std::string> argv) {
  const std::string cpus = absl::GetFlag(FLAGS_server_cpus);
  if (cpus.empty()) return argv;
  argv.insert(argv.begin(), {"/usr/bin/taskset", "-c", cpus});
  return argv;
}

absl::Status PinClient() {
  const std::string cpus = absl::GetFlag(FLAGS_client_cpus);
  if (cpus.empty()) return absl::OkStatus();
  cpu_set_t set;
  CPU_ZERO(&set);
  for (absl::string_view part : absl::StrSplit(cpus, ',')) {
    const std::vector<absl::string_view> ends = absl::StrSplit(part, '-');
    int first = -1, last = -1;
    if (ends.size() > 2 || !absl::SimpleAtoi(ends.front(), &first) ||
        !absl::SimpleAtoi(ends.back(), &last) || first < 0 || last < first ||
        last >= CPU_SETSIZE) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--client_cpus=", cpus, ": \"", part, "\" is not a CPU or a range"));
    }
    for (int c = first; c <= last; ++c) CPU_SET(c, &set);
  }
  if (::sched_setaffinity(0, sizeof(set), &set) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--client_cpus=", cpus, ": ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

std::string CpuPlacement() {
  const std::string servers = absl::GetFlag(FLAGS_server_cpus);
  const std::string clients = absl::GetFlag(FLAGS_client_cpus);
  if (servers.empty() && clients.empty()) {
    return "servers and clients where the scheduler puts them";
  }
  return absl::StrCat("servers on CPUs ", servers.empty() ? "any" : servers,
                      ", clients (this process) on CPUs ",
                      clients.empty() ? "any" : clients);
}

std::string FindServerBinary(const char* argv0) {
  if (!absl::GetFlag(FLAGS_server_binary).empty())
    return absl::GetFlag(FLAGS_server_binary);
  std::vector<std::string> candidates;
  if (const char* r = std::getenv("RUNFILES_DIR")) {
    candidates.push_back(absl::StrCat(r, "/softq/replay/replay_server"));
  }
  candidates.push_back(
      absl::StrCat(argv0, ".runfiles/softq/replay/replay_server"));
  candidates.push_back("replay/replay_server");
  candidates.push_back("bazel-bin/replay/replay_server");
  for (const std::string& c : candidates) {
    if (::access(c.c_str(), X_OK) == 0) return c;
  }
  return candidates.back();
}

absl::StatusOr<Server> Start(const std::vector<std::string>& argv,
                             const std::string& prefix) {
  absl::StatusOr<std::unique_ptr<ChildProcess>> p =
      ChildProcess::Start(OnServerCpus(argv));
  if (!p.ok()) return p.status();
  absl::StatusOr<std::string> line =
      (*p)->WaitForLine(prefix, absl::Seconds(60));
  if (!line.ok()) return line.status();
  absl::StatusOr<int> port = PortFromLine(*line);
  if (!port.ok()) return port.status();
  return Server{*std::move(p), absl::StrCat("127.0.0.1:", *port)};
}

// Batches to send: a few distinct random ones, cycled (generation is not
// measured).
std::vector<proto::InsertRequest> Requests(uint32_t od, uint32_t ad,
                                           uint32_t n) {
  std::mt19937 gen(1);
  std::vector<proto::InsertRequest> out(16);
  for (auto& r : out) *r.mutable_batch() = RandomBatch(n, od, ad, &gen);
  return out;
}

void CpuWindow::Start() {
  client_start_ = SelfCpuSeconds();
  server_start_ = ProcessCpuSeconds(server_pid);
}

void CpuWindow::Stop(uint64_t moved) {
  client_seconds = SelfCpuSeconds() - client_start_;
  server_seconds = ProcessCpuSeconds(server_pid) - server_start_;
  transitions = moved;
}

double CpuWindow::MicrosPerTransition() const {
  return transitions == 0
             ? 0
             : (client_seconds + server_seconds) * 1e6 / transitions;
}

// The shard through the client library actors use (acked, windowed stream).
double InsertShard(const std::string& address, uint32_t od, uint32_t ad,
                   uint64_t total, bool coalesce,
                   const SecurityConfig& security, CpuWindow* cpu) {
  const uint32_t n = absl::GetFlag(FLAGS_insert_batch);
  std::vector<proto::InsertRequest> requests = Requests(od, ad, n);
  // Actors hand their batches over (std::move): copies are made before the
  // clock starts.
  std::vector<proto::TransitionBatch> batches;
  for (uint64_t sent = 0, i = 0; sent < total; sent += n, ++i) {
    batches.push_back(requests[i % requests.size()].batch());
  }
  ReplayClientOptions options;
  options.addresses = {address};
  options.rpc_timeout = absl::Seconds(60);
  if (!coalesce) options.coalesce_bytes = 0;
  options.max_in_flight_batches = absl::GetFlag(FLAGS_max_in_flight);
  options.security = security;
  std::unique_ptr<ReplayWriter> writer = *ReplayWriter::Create(options);
  if (cpu != nullptr) {
    cpu->bytes_per_transition =
        static_cast<double>(requests[0].batch().ByteSizeLong()) / n;
    cpu->Start();
  }
  const absl::Time start = absl::Now();
  for (proto::TransitionBatch& batch : batches) {
    absl::Status s = writer->Insert(std::move(batch));
    if (!s.ok()) {
      std::cerr << "insert: " << s << std::endl;
      return 0;
    }
  }
  if (absl::Status s = writer->Flush(absl::Seconds(120)); !s.ok()) {
    std::cerr << "flush: " << s << std::endl;
    return 0;
  }
  const absl::Duration took = absl::Now() - start;
  if (cpu != nullptr) cpu->Stop(writer->acknowledged());
  return writer->acknowledged() / absl::ToDoubleSeconds(took);
}

// Transitions per second drawn by a loop of Sample(batch) RPCs (the same for
// shard and limit).
double SampleGrpc(const std::string& address, const SecurityConfig& security,
                  CpuWindow* cpu) {
  const uint32_t n = absl::GetFlag(FLAGS_sample_batch);
  auto stub = proto::ReplayShard::NewStub(
      MakeReplayChannel(address, absl::Seconds(10), security));
  proto::SampleRequest request;
  request.set_batch_size(n);
  request.set_timeout_ms(10000);
  uint64_t drawn = 0;
  size_t first_bytes = 0;
  if (cpu != nullptr) cpu->Start();
  const absl::Time start = absl::Now();
  const absl::Time end =
      start + absl::Seconds(absl::GetFlag(FLAGS_sample_seconds));
  while (absl::Now() < end) {
    grpc::ClientContext context;
    proto::SampleResponse response;
    if (!stub->Sample(&context, request, &response).ok()) return 0;
    if (drawn == 0) first_bytes = response.ByteSizeLong();
    drawn += response.batch().rewards_size();
  }
  const absl::Duration took = absl::Now() - start;
  if (cpu != nullptr) {
    cpu->Stop(drawn);
    cpu->bytes_per_transition = static_cast<double>(first_bytes) / n;
  }
  return drawn / absl::ToDoubleSeconds(took);
}

// The learner's path: ReplaySampler with background prefetch (learner_main's
// default, 16).
double SampleClient(const std::string& address, const SecurityConfig& security,
                    CpuWindow* cpu) {
  ReplayClientOptions options;
  options.addresses = {address};
  options.security = security;
  options.sample_rounds_in_flight = absl::GetFlag(FLAGS_sample_rounds);
  std::unique_ptr<ReplaySampler> sampler = *ReplaySampler::Create(
      options, absl::GetFlag(FLAGS_sample_batch), kPrefetch);
  uint64_t drawn = 0;
  if (cpu != nullptr) cpu->Start();
  const absl::Time start = absl::Now();
  const absl::Time end =
      start + absl::Seconds(absl::GetFlag(FLAGS_sample_seconds));
  while (absl::Now() < end) {
    absl::StatusOr<SampledBatch> b = sampler->Next(absl::Seconds(10));
    if (!b.ok()) return 0;
    drawn += b->keys.size();
  }
  const absl::Duration took = absl::Now() - start;
  if (cpu != nullptr) cpu->Stop(drawn);
  return drawn / absl::ToDoubleSeconds(took);
}

// The CPU's model name (/proc/cpuinfo), for the tables.
std::string CpuName() {
  FILE* f = std::fopen("/proc/cpuinfo", "r");
  if (f == nullptr) return "unknown CPU";
  char line[512];
  std::string name = "unknown CPU";
  while (std::fgets(line, sizeof(line), f) != nullptr) {
    if (std::strncmp(line, "model name", 10) == 0) {
      const char* colon = std::strchr(line, ':');
      if (colon != nullptr) {
        name = std::string(absl::StripAsciiWhitespace(colon + 1));
        break;
      }
    }
  }
  std::fclose(f);
  return name;
}

// The 1, 5 and 15 minute load averages (/proc/loadavg).
std::string LoadAverage() {
  FILE* f = std::fopen("/proc/loadavg", "r");
  if (f == nullptr) return "?";
  double a = 0, b = 0, c = 0;
  const int got = std::fscanf(f, "%lf %lf %lf", &a, &b, &c);
  std::fclose(f);
  return got == 3 ? absl::StrFormat("%.2f %.2f %.2f", a, b, c) : "?";
}

// The median of the repeats that worked (a failed one reads 0: its error is
// on stderr, and it is printed among the repeats).
double Median(std::vector<double> v) {
  v.erase(std::remove(v.begin(), v.end(), 0.0), v.end());
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

std::string Repeats(const std::vector<double>& v) {
  std::string out;
  for (double x : v)
    absl::StrAppendFormat(&out, "%s%.0f", out.empty() ? "" : " ", x);
  return out.empty() ? "-" : out;
}

}  // namespace replay_bench
}  // namespace softq
