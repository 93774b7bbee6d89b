// replay_bench: insert and sample throughput of one replay shard over loopback
// at the observation sizes of real tasks (2, 17, 27, 111) and batches of 64
// and 256, through the client library the actors and the learner use
// (ReplayWriter, ReplaySampler), side by side with (a) the limit: the same
// traffic on bare gRPC to a server that acknowledges inserts without storing
// them and answers Sample with a prebuilt batch, with the writer's coalescing
// and window and the sampler's RPC sizes and RPCs in flight, and (b)
// redis-server holding the same transitions, a value per transition, MSET and
// MGET per batch pipelined as deep (skipped, and said so, without
// redis-server). Repeats with the systems alternating, medians; the CPU and
// the load average are printed with the table. Also the shard's resident
// memory at capacity against its raw bytes, and (--wal) insert throughput of
// a shard that logs every insert before acknowledging it, then its restart
// from the checkpoint it writes at SIGTERM: restore speed against reading the
// same file (the limit) and peak memory against the running shard's.
//
//   bazel run -c opt //bench/replay:replay_bench
//   bazel run -c opt //bench/replay:replay_bench -- --mode=checkpoint_stall
//     (Shard::Checkpoint of a full 1e6 x obs 100 shard, in process, while one
//     thread inserts and one samples batches of 256: the longest call of each)
//   bazel run -c opt //bench/replay:replay_bench -- --mode=security
//     --credentials_dir=DIR (deploy/local/make_credentials.sh DIR): two shards,
//     one insecure and one with mutual TLS and the job token, inserts and
//     samples of batches of 256, alternating, repeated; medians side by side
//     (bench/security_bench.sh)
//
// Every server is a child process on 127.0.0.1, stopped at the end.
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <hiredis/hiredis.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/flags.h"
#include "common/malloc_policy.h"
#include "common/row_layout.h"
#include "common/security.h"
#include "proto/replay.grpc.pb.h"
#include "replay/replay_channel.h"
#include "replay/replay_sampler.h"
#include "replay/replay_stats.h"
#include "replay/replay_writer.h"
#include "replay/shard.h"
#include "tests/support/child_process.h"

namespace {
int ReplayClientOptionsDefaultRounds() {
  return softq::ReplayClientOptions().sample_rounds_in_flight;
}
}  // namespace

ABSL_FLAG(std::string, mode, "bench",
          "bench, shard_sample (Shard::SamplePacked in one process from 1, 2 "
          "and 4 threads), checkpoint_stall (the longest insert and sample "
          "during a checkpoint of a full in-process shard), security (TLS + "
          "token against insecure, same run), or discard_server (internal)");
ABSL_FLAG(std::string, credentials_dir, "",
          "security: ca.crt, job.crt, job.key and token "
          "(deploy/local/make_credentials.sh)");
ABSL_FLAG(uint64_t, stall_capacity, 1000000,
          "checkpoint_stall: items (observation_dim 100) in the full shard");
ABSL_FLAG(double, stall_insert_rate, 0,
          "checkpoint_stall: transitions/s the inserting thread paces itself "
          "to; 0: flat out");
ABSL_FLAG(uint32_t, observation_dim, 2,
          "discard_server: dims of its Sample answer");
ABSL_FLAG(uint32_t, action_dim, 2, "discard_server: dims of its Sample answer");
ABSL_FLAG(uint32_t, sample_batch, 256, "transitions per sampled batch");
ABSL_FLAG(uint32_t, insert_batch, 256, "transitions per inserted batch");
ABSL_FLAG(std::string, obs_sizes, "2,17,27,111",
          "bench: the observation sizes measured, of 2 (multi-goal, action "
          "2), 17 (swimmer-like, action 2), 27 (quadruped, action 8) and 111 "
          "(Ant with contacts, action 8)");
ABSL_FLAG(std::string, batch_sizes, "64,256",
          "bench: the batch sizes measured (inserted and sampled), "
          "comma-separated");
ABSL_FLAG(int32_t, max_in_flight, 8, "ReplayWriter max_in_flight_batches");
ABSL_FLAG(int32_t, sample_rounds, ReplayClientOptionsDefaultRounds(),
          "ReplaySampler sample_rounds_in_flight (and the sample limit's RPCs "
          "in flight)");
ABSL_FLAG(uint64_t, capacity, 1000000, "shard capacity (and Redis key ring)");
ABSL_FLAG(uint64_t, small_inserts, 2000000,
          "transitions inserted per measurement at the small sizes");
ABSL_FLAG(uint64_t, large_inserts, 400000,
          "transitions inserted per measurement at observation_dim 100 "
          "(scaled by 100 / observation_dim, at most --small_inserts)");
ABSL_FLAG(double, sample_seconds, 1,
          "seconds of sampling per system and repeat");
ABSL_FLAG(int32_t, repeats, 3,
          "each measurement is repeated, systems alternating; median shown");
ABSL_FLAG(std::string, server_binary, "",
          "replay_server path (default: from runfiles)");
ABSL_FLAG(std::string, redis_binary, "/usr/bin/redis-server",
          "redis-server path");
ABSL_FLAG(bool, wal, true,
          "also insert into a shard with --checkpoint_dir (insert log on) in a "
          "temporary directory: the cost of durable acknowledgements");
ABSL_FLAG(bool, wal_fsync, false, "that shard also gets --wal_fsync");

namespace softq {
namespace {

// learner_main's --prefetch default: the sampler's batches drawn ahead.
constexpr int kPrefetch = 16;

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

// Raw bytes of one transition as an actor sends it: obs, act, reward,
// next_obs (floats), a done byte, its episode id (8 bytes) and step id (4).
constexpr uint64_t kIdBytes = 8 + 4;
uint64_t RawBytes(uint32_t od, uint32_t ad) {
  return (2ull * od + ad + 1) * 4 + 1 + kIdBytes;
}

// The observation sizes of real tasks the bench measures, with their action
// sizes.
struct TaskSize {
  uint32_t od, ad;
  const char* task;
};

// Those of kTaskSizes that --obs_sizes names, in that order.
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

// ------------------------------------------------------------------------
// discard server

class DiscardService final : public proto::ReplayShard::Service {
 public:
  DiscardService(uint32_t od, uint32_t ad) : od_(od), ad_(ad) {}
  // Acknowledges every message as a shard does, storing nothing.
  grpc::Status Insert(
      grpc::ServerContext*,
      grpc::ServerReaderWriter<proto::InsertResponse, proto::InsertRequest>*
          stream) override {
    proto::InsertRequest request;
    proto::InsertResponse response;
    while (stream->Read(&request)) {
      response.set_sequence(request.sequence());
      response.set_count(request.batch().rewards_size());
      if (!stream->Write(response)) break;
    }
    return grpc::Status::OK;
  }
  // Sizes as a full shard's, so that a ReplaySampler samples it.
  grpc::Status GetStats(grpc::ServerContext*, const proto::StatsRequest*,
                        proto::ShardStats* stats) override {
    stats->set_size(1000000);
    stats->set_capacity(1000000);
    stats->set_observation_dim(od_);
    stats->set_action_dim(ad_);
    return grpc::Status::OK;
  }
  // Answers with a prebuilt answer of the size and form asked for (built once
  // per size and form; the packed_rows form is what ReplaySampler asks for).
  grpc::Status Sample(grpc::ServerContext*, const proto::SampleRequest* request,
                      proto::SampleResponse* response) override {
    const uint32_t n = request->batch_size();
    const proto::SampleResponse* answer = nullptr;
    {
      absl::MutexLock lock(&mu_);
      std::unique_ptr<proto::SampleResponse>& a =
          answers_[{n, request->packed_rows()}];
      if (a == nullptr) {
        a = std::make_unique<proto::SampleResponse>();
        std::mt19937 gen(7);
        const proto::TransitionBatch batch = RandomBatch(n, od_, ad_, &gen);
        if (request->packed_rows()) {
          const RowLayout layout(od_, ad_);
          std::vector<float> rows(n * layout.width());
          for (uint32_t i = 0; i < n; ++i) {
            PackRow(batch, i, layout, rows.data() + i * layout.width());
          }
          a->set_observation_dim(od_);
          a->set_action_dim(ad_);
          a->set_rows(rows.data(), rows.size() * sizeof(float));
        } else {
          *a->mutable_batch() = batch;
        }
        for (uint32_t i = 0; i < n; ++i) {
          a->add_keys(i);
          a->add_probabilities(1.0 / n);
          if (request->packed_rows()) {
            a->add_episode_ids(batch.episode_ids(i));
            a->add_step_ids(batch.step_ids(i));
          }
        }
        a->set_table_size(n);
      }
      answer = a.get();  // never freed while the server runs
    }
    *response = *answer;
    return grpc::Status::OK;
  }

 private:
  const uint32_t od_, ad_;
  absl::Mutex mu_;
  // By batch size and packed_rows.
  std::map<std::pair<uint32_t, bool>, std::unique_ptr<proto::SampleResponse>>
      answers_ ABSL_GUARDED_BY(mu_);
};

int RunDiscardServer() {
  DiscardService service(absl::GetFlag(FLAGS_observation_dim),
                         absl::GetFlag(FLAGS_action_dim));
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                           &port);
  builder.SetMaxReceiveMessageSize(64 << 20);
  builder.SetMaxSendMessageSize(64 << 20);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr) return 1;
  std::cout << "discard_server listening on 127.0.0.1:" << port << std::endl;
  server->Wait();  // killed by the bench
  return 0;
}

// ------------------------------------------------------------------------------
// helpers

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

struct Server {
  std::unique_ptr<ChildProcess> process;
  std::string address;
};

absl::StatusOr<Server> Start(const std::vector<std::string>& argv,
                             const std::string& prefix) {
  absl::StatusOr<std::unique_ptr<ChildProcess>> p = ChildProcess::Start(argv);
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

// ---------------------------------------------------------------------------
// measurements

// The shard through the client library actors use (acked, windowed stream).
double InsertShard(const std::string& address, uint32_t od, uint32_t ad,
                   uint64_t total, bool coalesce,
                   const SecurityConfig& security = SecurityConfig()) {
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
  return writer->acknowledged() / absl::ToDoubleSeconds(absl::Now() - start);
}

// The limit of the writer's path: the same batches, coalesced as the writer
// coalesces at most (ReplayClientOptions::coalesce_bytes) into messages built
// before the clock starts, on one stream to a server that acknowledges each
// message without storing it, with at most --max_in_flight batches
// unacknowledged (the writer's window).
double InsertRaw(const std::string& address, uint32_t od, uint32_t ad,
                 uint64_t total) {
  const uint32_t n = absl::GetFlag(FLAGS_insert_batch);
  const int window = std::max(1, absl::GetFlag(FLAGS_max_in_flight));
  std::vector<proto::InsertRequest> batches = Requests(od, ad, n);
  const int64_t batch_bytes =
      static_cast<int64_t>(n) * ((2 * od + ad + 1) * 4 + 1);
  const int per_message = static_cast<int>(std::clamp<int64_t>(
      ReplayClientOptions().coalesce_bytes / batch_bytes, 1, window));
  std::vector<proto::InsertRequest> messages(batches.size());
  for (size_t m = 0; m < messages.size(); ++m) {
    for (int k = 0; k < per_message; ++k) {
      messages[m].mutable_batch()->MergeFrom(
          batches[(m + k) % batches.size()].batch());
    }
  }
  auto stub = proto::ReplayShard::NewStub(MakeReplayChannel(address));
  grpc::ClientContext context;
  absl::Mutex mu;
  int unacked = 0;     // batches; guarded by mu
  uint64_t acked = 0;  // transitions; guarded by mu
  const absl::Time start = absl::Now();
  auto stream = stub->Insert(&context);
  std::thread reader([&] {
    proto::InsertResponse response;
    while (stream->Read(&response)) {
      absl::MutexLock lock(&mu);
      unacked -= per_message;
      acked += response.count();
    }
  });
  uint64_t sent = 0;
  for (uint64_t i = 0; sent < total; ++i) {
    {
      absl::MutexLock lock(&mu);
      auto room = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
        return unacked + per_message <= window;
      };
      mu.Await(absl::Condition(&room));
      unacked += per_message;
    }
    proto::InsertRequest& r = messages[i % messages.size()];
    r.set_sequence(i + 1);
    if (!stream->Write(r)) break;
    sent += static_cast<uint64_t>(per_message) * n;
  }
  {
    absl::MutexLock lock(&mu);
    auto all = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { return unacked <= 0; };
    mu.AwaitWithTimeout(absl::Condition(&all), absl::Seconds(60));
  }
  const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  stream->WritesDone();
  reader.join();
  stream->Finish().IgnoreError();
  absl::MutexLock lock(&mu);
  return acked / seconds;
}

// The limit of the sampler's path: Sample RPCs of the sizes ReplaySampler
// sends (SampleRoundBatches batches of --sample_batch per RPC), as many in
// flight as its rounds, to a server answering with a prebuilt batch; the
// answers are received as bytes and dropped (no decoding).
double SampleRawPrefetch(const std::string& address, uint32_t od, uint32_t ad) {
  const uint32_t n = absl::GetFlag(FLAGS_sample_batch);
  const int in_flight = absl::GetFlag(FLAGS_sample_rounds);
  const int rows = n * SampleRoundBatches(n, kPrefetch, in_flight, od, ad);
  grpc::GenericStub stub(MakeReplayChannel(address));
  proto::SampleRequest request;
  request.set_batch_size(rows);
  request.set_timeout_ms(10000);
  request.set_packed_rows(true);  // as ReplaySampler asks
  const std::string bytes = request.SerializeAsString();
  struct Call {
    grpc::ClientContext context;
    grpc::ByteBuffer answer;
    grpc::Status status;
    std::unique_ptr<grpc::ClientAsyncResponseReader<grpc::ByteBuffer>> reader;
  };
  grpc::CompletionQueue cq;
  auto start_call = [&]() {
    auto call = new Call;
    grpc::Slice slice(bytes);
    call->reader =
        stub.PrepareUnaryCall(&call->context, "/softq.proto.ReplayShard/Sample",
                              grpc::ByteBuffer(&slice, 1), &cq);
    call->reader->StartCall();
    call->reader->Finish(&call->answer, &call->status, call);
  };
  uint64_t drawn = 0;
  bool failed = false;
  const absl::Time start = absl::Now();
  const absl::Time end =
      start + absl::Seconds(absl::GetFlag(FLAGS_sample_seconds));
  for (int i = 0; i < in_flight; ++i) start_call();
  int pending = in_flight;
  while (pending > 0) {
    void* tag = nullptr;
    bool ok = false;
    if (!cq.Next(&tag, &ok)) break;
    std::unique_ptr<Call> call(static_cast<Call*>(tag));
    --pending;
    if (!call->status.ok()) failed = true;
    drawn += rows;
    if (absl::Now() < end && !failed) {
      start_call();
      ++pending;
    }
  }
  const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  cq.Shutdown();
  void* tag = nullptr;
  bool ok = false;
  while (cq.Next(&tag, &ok)) {
  }
  return failed ? 0 : drawn / seconds;
}

// Transitions per second drawn by a loop of Sample(batch) RPCs (the same for
// shard and limit).
double SampleGrpc(const std::string& address,
                  const SecurityConfig& security = SecurityConfig()) {
  const uint32_t n = absl::GetFlag(FLAGS_sample_batch);
  auto stub = proto::ReplayShard::NewStub(
      MakeReplayChannel(address, absl::Seconds(10), security));
  proto::SampleRequest request;
  request.set_batch_size(n);
  request.set_timeout_ms(10000);
  uint64_t drawn = 0;
  const absl::Time start = absl::Now();
  const absl::Time end =
      start + absl::Seconds(absl::GetFlag(FLAGS_sample_seconds));
  while (absl::Now() < end) {
    grpc::ClientContext context;
    proto::SampleResponse response;
    if (!stub->Sample(&context, request, &response).ok()) return 0;
    drawn += response.batch().rewards_size();
  }
  return drawn / absl::ToDoubleSeconds(absl::Now() - start);
}

// The learner's path: ReplaySampler with background prefetch (learner_main's
// default, 16).
double SampleClient(const std::string& address,
                    const SecurityConfig& security = SecurityConfig()) {
  ReplayClientOptions options;
  options.addresses = {address};
  options.security = security;
  options.sample_rounds_in_flight = absl::GetFlag(FLAGS_sample_rounds);
  std::unique_ptr<ReplaySampler> sampler = *ReplaySampler::Create(
      options, absl::GetFlag(FLAGS_sample_batch), kPrefetch);
  uint64_t drawn = 0;
  const absl::Time start = absl::Now();
  const absl::Time end =
      start + absl::Seconds(absl::GetFlag(FLAGS_sample_seconds));
  while (absl::Now() < end) {
    absl::StatusOr<SampledBatch> b = sampler->Next(absl::Seconds(10));
    if (!b.ok()) return 0;
    drawn += b->keys.size();
  }
  return drawn / absl::ToDoubleSeconds(absl::Now() - start);
}

class Redis {
 public:
  explicit Redis(int port) { c_ = redisConnect("127.0.0.1", port); }
  ~Redis() {
    if (c_ != nullptr) redisFree(c_);
  }
  bool ok() const { return c_ != nullptr && c_->err == 0; }
  redisContext* get() { return c_; }

 private:
  redisContext* c_;
};

// Each transition is one Redis value (its row: observation, action, reward,
// next observation, done byte) under key "t<slot>", slot = index % capacity,
// as a shard's ring holds it. Keys and values are made before the clock
// starts; one MSET per batch, pipelined --max_in_flight deep (the writer's
// window) on one connection.
double InsertRedis(Redis* redis, uint32_t od, uint32_t ad, uint64_t total,
                   const std::vector<std::string>& keys) {
  const uint32_t n = absl::GetFlag(FLAGS_insert_batch);
  const int depth = std::max(1, absl::GetFlag(FLAGS_max_in_flight));
  const uint64_t item = RawBytes(od, ad);
  std::vector<proto::InsertRequest> requests = Requests(od, ad, n);
  std::vector<std::string> values(requests.size(), std::string(n * item, 0));
  for (size_t r = 0; r < requests.size(); ++r) {
    const proto::TransitionBatch& b = requests[r].batch();
    for (uint32_t t = 0; t < n; ++t) {
      char* p = values[r].data() + t * item;
      std::memcpy(p, b.observations().data() + t * od, od * 4);
      p += od * 4;
      std::memcpy(p, b.actions().data() + t * ad, ad * 4);
      p += ad * 4;
      std::memcpy(p, b.rewards().data() + t, 4);
      p += 4;
      std::memcpy(p, b.next_observations().data() + t * od, od * 4);
      p += od * 4;
      *p++ = b.dones(t) ? 1 : 0;
      const uint64_t episode = b.episode_ids(t);
      const uint32_t step = b.step_ids(t);
      std::memcpy(p, &episode, 8);
      std::memcpy(p + 8, &step, 4);
    }
  }
  std::vector<const char*> argv(2 * n + 1);
  std::vector<size_t> lengths(2 * n + 1);
  argv[0] = "MSET";
  lengths[0] = 4;
  const uint64_t batches = (total + n - 1) / n;
  uint64_t key = 0;
  auto append = [&](uint64_t i) {
    const std::string& v = values[i % values.size()];
    for (uint32_t t = 0; t < n; ++t, ++key) {
      const std::string& k = keys[key % keys.size()];
      argv[1 + 2 * t] = k.data();
      lengths[1 + 2 * t] = k.size();
      argv[2 + 2 * t] = v.data() + t * item;
      lengths[2 + 2 * t] = item;
    }
    redisAppendCommandArgv(redis->get(), static_cast<int>(argv.size()),
                           argv.data(), lengths.data());
  };
  const absl::Time start = absl::Now();
  uint64_t appended = 0;
  for (; appended < std::min<uint64_t>(depth, batches); ++appended) {
    append(appended);
  }
  for (uint64_t done = 0; done < batches; ++done) {
    void* reply = nullptr;
    if (redisGetReply(redis->get(), &reply) != REDIS_OK) return 0;
    freeReplyObject(reply);
    if (appended < batches) append(appended++);
  }
  return batches * n / absl::ToDoubleSeconds(absl::Now() - start);
}

// Random transitions, one MGET of --sample_batch keys per batch (the key
// lists drawn before the clock starts), pipelined as deep as ReplaySampler's
// batches in flight, each reply decoded into the packed rows of a
// SampledBatch as the sampler's answers are.
double SampleRedis(Redis* redis, uint32_t od, uint32_t ad, uint64_t held,
                   const std::vector<std::string>& keys) {
  const uint32_t n = absl::GetFlag(FLAGS_sample_batch);
  const int rounds = absl::GetFlag(FLAGS_sample_rounds);
  const int depth = rounds * SampleRoundBatches(n, kPrefetch, rounds, od, ad);
  std::mt19937_64 gen(3);
  std::uniform_int_distribution<uint64_t> pick(0, held - 1);
  std::vector<std::vector<const char*>> argv(64);
  std::vector<std::vector<size_t>> lengths(64);
  for (size_t m = 0; m < argv.size(); ++m) {
    argv[m].push_back("MGET");
    lengths[m].push_back(4);
    for (uint32_t t = 0; t < n; ++t) {
      const std::string& k = keys[pick(gen)];
      argv[m].push_back(k.data());
      lengths[m].push_back(k.size());
    }
  }
  const uint64_t item = RawBytes(od, ad);
  uint64_t drawn = 0;
  uint64_t next = 0;
  auto append = [&]() {
    const size_t m = next++ % argv.size();
    redisAppendCommandArgv(redis->get(), static_cast<int>(argv[m].size()),
                           argv[m].data(), lengths[m].data());
  };
  const absl::Time start = absl::Now();
  const absl::Time end =
      start + absl::Seconds(absl::GetFlag(FLAGS_sample_seconds));
  for (int i = 0; i < depth; ++i) append();
  for (int pending = depth; pending > 0; --pending) {
    void* r = nullptr;
    if (redisGetReply(redis->get(), &r) != REDIS_OK) return 0;
    redisReply* reply = static_cast<redisReply*>(r);
    SampledBatch batch;
    batch.observation_dim = od;
    batch.action_dim = ad;
    batch.rows.resize(static_cast<size_t>(n) * batch.width());
    batch.episode_ids.resize(n);
    batch.step_ids.resize(n);
    if (reply->type == REDIS_REPLY_ARRAY && reply->elements == n) {
      for (uint32_t t = 0; t < n; ++t) {
        const redisReply* v = reply->element[t];
        if (v->type != REDIS_REPLY_STRING || v->len != item) continue;
        float* row = batch.rows.data() + t * batch.width();
        const char* done = v->str + item - kIdBytes - 1;
        std::memcpy(row, v->str, done - v->str);
        row[batch.width() - 1] = *done != 0 ? 1.0f : 0.0f;
        std::memcpy(&batch.episode_ids[t], done + 1, 8);
        std::memcpy(&batch.step_ids[t], done + 9, 4);
        ++drawn;
      }
    }
    freeReplyObject(reply);
    if (absl::Now() < end) {
      append();
      ++pending;
    }
  }
  return drawn / absl::ToDoubleSeconds(absl::Now() - start);
}

absl::StatusOr<proto::ShardStats> ShardStats(const std::string& address) {
  absl::StatusOr<std::vector<proto::ShardStats>> s =
      QueryStats({address}, absl::Seconds(10));
  if (!s.ok()) return s.status();
  return s->front();
}

struct ProcMemory {
  double anon = 0, file = 0;  // bytes
  double peak = 0;            // VmHWM: the most resident memory so far
};

// RssAnon, RssFile and VmHWM of `pid` from /proc/<pid>/status.
ProcMemory ReadProcMemory(pid_t pid) {
  ProcMemory m;
  FILE* f = std::fopen(absl::StrCat("/proc/", pid, "/status").c_str(), "r");
  if (f == nullptr) return m;
  char line[256];
  while (std::fgets(line, sizeof(line), f) != nullptr) {
    double kb = 0;
    if (std::sscanf(line, "RssAnon: %lf", &kb) == 1) m.anon = kb * 1024;
    if (std::sscanf(line, "RssFile: %lf", &kb) == 1) m.file = kb * 1024;
    if (std::sscanf(line, "VmHWM: %lf", &kb) == 1) m.peak = kb * 1024;
  }
  std::fclose(f);
  return m;
}

// Seconds to read `path` into newly allocated memory of its size (what a
// restore must at least do: read the file and commit as much memory); its size
// in `bytes`. Negative when it cannot be read.
double SecondsToRead(const std::string& path, double* bytes) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return -1;
  std::fseek(f, 0, SEEK_END);
  const size_t size = static_cast<size_t>(std::ftell(f));
  std::fseek(f, 0, SEEK_SET);
  const absl::Time start = absl::Now();
  std::unique_ptr<char[]> memory(
      new char[size]);  // pages committed by the read
  size_t total = 0, n = 0;
  while (total < size &&
         (n = std::fread(memory.get() + total, 1,
                         std::min<size_t>(size - total, 1 << 20), f)) > 0) {
    total += n;
  }
  const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  std::fclose(f);
  *bytes = static_cast<double>(total);
  return seconds;
}

// A shard with --checkpoint_dir=`dir` stopped by SIGTERM (it checkpoints its
// full table), then started again from that checkpoint: one line of the
// restore table, or why not.
std::string RestoreRow(Server shard, const std::string& server_binary,
                       uint64_t capacity, const std::string& dir,
                       const std::string& dims) {
  const ProcMemory running = ReadProcMemory(shard.process->pid());
  shard.process->Signal(SIGTERM).IgnoreError();
  if (absl::StatusOr<int> code = shard.process->Wait(absl::Seconds(120));
      !code.ok() || *code != 0) {
    return absl::StrCat(dims, ": the shard did not stop cleanly: ",
                        code.ok() ? absl::StrCat("exit ", *code)
                                  : std::string(code.status().message()));
  }
  const std::string checkpoint = absl::StrCat(dir, "/replay-0.ckpt");
  double bytes = 0;
  // Twice, keeping the second: the file is then in the page cache for both.
  SecondsToRead(checkpoint, &bytes);
  const double read_s = SecondsToRead(checkpoint, &bytes);
  if (read_s < 0) return absl::StrCat(dims, ": no checkpoint at ", checkpoint);
  const absl::Time start = absl::Now();
  absl::StatusOr<Server> restarted =
      Start({server_binary, "--port=0", absl::StrCat("--capacity=", capacity),
             absl::StrCat("--checkpoint_dir=", dir)},
            "replay_server listening on ");
  const double restore_s = absl::ToDoubleSeconds(absl::Now() - start);
  if (!restarted.ok()) {
    return absl::StrCat(dims, ": no restart: ", restarted.status().message());
  }
  const ProcMemory restored = ReadProcMemory(restarted->process->pid());
  restarted->process.reset();  // SIGKILL: no second checkpoint
  return absl::StrFormat(
      "%-20s %10.1f %14.0f %16.0f %8.2fx %14.1f %12.1f %8.2fx", dims,
      bytes / 1e6, bytes / 1e6 / read_s, bytes / 1e6 / restore_s,
      read_s / restore_s, restored.peak / 1e6,
      running.anon / 1e6 + running.file / 1e6,
      restored.peak / (running.anon + running.file));
}

// --mode=checkpoint_stall: --repeats checkpoints of a full shard to a file
// under $TMPDIR while one thread inserts and one samples; per checkpoint its
// time and the longest insert and sample that overlapped it.
int RunCheckpointStall() {
  ShardOptions options;
  options.capacity = absl::GetFlag(FLAGS_stall_capacity);
  options.observation_dim = 100;
  options.action_dim = 2;
  options.seed = 1;
  absl::StatusOr<std::unique_ptr<Shard>> shard = Shard::Create(options);
  if (!shard.ok()) {
    std::cerr << shard.status() << std::endl;
    return 1;
  }
  std::mt19937 gen(1);
  const uint32_t n = absl::GetFlag(FLAGS_insert_batch);
  const proto::TransitionBatch batch = RandomBatch(n, 100, 2, &gen);
  const google::protobuf::RepeatedField<float> none;
  auto insert = [&]() {
    return (*shard)->Insert(batch, none, absl::Now() + absl::Seconds(60));
  };
  if (absl::Status s = FillShard(shard->get(), batch); !s.ok()) {
    std::cerr << s << std::endl;
    return 1;
  }
  const char* tmp = std::getenv("TMPDIR");
  std::string dir =
      absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/replay_bench_stall_XXXXXX");
  if (::mkdtemp(dir.data()) == nullptr) {
    std::cerr << "cannot create a directory for the checkpoint\n";
    return 1;
  }
  const std::string path = dir + "/replay-0.ckpt";
  const double rate = absl::GetFlag(FLAGS_stall_insert_rate);
  std::cout << absl::StrFormat(
      "checkpoint of a full shard, %d x obs 100 act 2, while 1 thread inserts "
      "(%s) and 1 samples batches of %d; then the same threads as long with "
      "no checkpoint (baseline)\n%-8s %10s %14s %10s %18s %10s %18s   %10s "
      "%18s %10s %18s\n",
      options.capacity,
      rate > 0 ? absl::StrCat(rate, " transitions/s") : std::string("flat out"),
      n, "repeat", "file MB", "checkpoint ms", "inserts", "longest insert ms",
      "samples", "longest sample ms", "inserts", "baseline insert", "samples",
      "baseline sample");
  // One window of the two threads: with a checkpoint (its time) or without
  // one for `length` (the baseline: what the same threads stall on this
  // machine with no checkpoint). False on error, printed.
  struct Window {
    absl::Duration took, longest_insert, longest_sample;
    uint64_t inserts = 0, samples = 0, file_bytes = 0;
  };
  auto window = [&](bool checkpoint, absl::Duration length, Window* w) -> bool {
    std::atomic<bool> done{false};
    absl::Mutex mu;
    absl::Status error;
    auto loop = [&](auto call, absl::Duration* longest, uint64_t* count,
                    double per_second) {
      absl::Time due = absl::Now();
      while (!done.load()) {
        if (per_second > 0) {
          due += absl::Seconds(n / per_second);
          absl::SleepFor(due - absl::Now());
        }
        const absl::Time start = absl::Now();
        const absl::Status s = call();
        const absl::Duration took = absl::Now() - start;
        absl::MutexLock lock(&mu);
        if (!s.ok()) {
          error = s;
          return;
        }
        *longest = std::max(*longest, took);
        ++*count;
      }
    };
    std::thread inserter(
        loop, [&] { return insert().status(); }, &w->longest_insert,
        &w->inserts, rate);
    std::thread sampler(
        loop,
        [&] {
          proto::SampleResponse response;
          return (*shard)->Sample(absl::GetFlag(FLAGS_sample_batch),
                                  absl::Now() + absl::Seconds(60), nullptr,
                                  &response);
        },
        &w->longest_sample, &w->samples, 0.0);
    absl::SleepFor(absl::Milliseconds(200));
    {
      absl::MutexLock lock(&mu);
      w->longest_insert = w->longest_sample = absl::ZeroDuration();
      w->inserts = w->samples = 0;
    }
    const absl::Time start = absl::Now();
    absl::Status status;
    if (checkpoint) {
      absl::StatusOr<CheckpointWritten> written = (*shard)->Checkpoint(path);
      if (written.ok()) w->file_bytes = written->bytes;
      status = written.status();
    } else {
      absl::SleepFor(length);
    }
    w->took = absl::Now() - start;
    done = true;  // calls stalled by the checkpoint end after it: counted
    inserter.join();
    sampler.join();
    if (!status.ok() || !error.ok()) {
      std::cerr << (status.ok() ? error : status) << std::endl;
      return false;
    }
    return true;
  };
  for (int r = 0; r < absl::GetFlag(FLAGS_repeats); ++r) {
    Window with, without;
    if (!window(true, absl::ZeroDuration(), &with) ||
        !window(false, with.took, &without)) {
      return 1;
    }
    std::cout << absl::StrFormat(
        "%-8d %10.1f %14.1f %10d %18.1f %10d %18.1f   %10d %18.1f %10d "
        "%18.1f\n",
        r + 1, with.file_bytes / 1e6, absl::ToDoubleMilliseconds(with.took),
        with.inserts, absl::ToDoubleMilliseconds(with.longest_insert),
        with.samples, absl::ToDoubleMilliseconds(with.longest_sample),
        without.inserts, absl::ToDoubleMilliseconds(without.longest_insert),
        without.samples, absl::ToDoubleMilliseconds(without.longest_sample));
  }
  ::unlink(path.c_str());
  ::rmdir(dir.c_str());
  return 0;
}

// Mutual TLS and the job token against insecure: two shards of the same
// flags, the same inserts and samples alternating between them, medians of
// --repeats rounds side by side.
int RunSecurityBench(const char* argv0) {
  const std::string dir = absl::GetFlag(FLAGS_credentials_dir);
  absl::StatusOr<SecurityConfig> security = LoadSecurityConfig(
      {dir + "/ca.crt", dir + "/job.crt", dir + "/job.key", dir + "/token"});
  if (dir.empty() || !security.ok()) {
    std::cerr << "--credentials_dir=" << dir << ": "
              << (dir.empty() ? "needed (deploy/local/make_credentials.sh DIR)"
                              : std::string(security.status().message()))
              << std::endl;
    return 2;
  }
  const std::string server_binary = FindServerBinary(argv0);
  const uint64_t capacity = absl::GetFlag(FLAGS_capacity);
  const int repeats = std::max(1, absl::GetFlag(FLAGS_repeats));
  const auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  std::cout << absl::StrFormat(
      "%-44s %14s %14s %9s   rounds (insecure / secure)\n",
      absl::StrCat("transitions/s (batches of ",
                   absl::GetFlag(FLAGS_insert_batch), ")"),
      "insecure", "TLS+token", "secure/in");
  struct Config {
    uint32_t od, ad;
    uint64_t inserts;
  };
  for (const Config& c : {Config{2, 2, absl::GetFlag(FLAGS_small_inserts)},
                          Config{100, 2, absl::GetFlag(FLAGS_large_inserts)}}) {
    const std::vector<std::string> base = {
        server_binary, "--port=0", absl::StrCat("--capacity=", capacity)};
    std::vector<std::string> secured = base;
    for (const std::string& f :
         {"--tls_ca=" + dir + "/ca.crt", "--tls_cert=" + dir + "/job.crt",
          "--tls_key=" + dir + "/job.key",
          "--auth_token_file=" + dir + "/token"}) {
      secured.push_back(f);
    }
    absl::StatusOr<Server> plain = Start(base, "replay_server listening on ");
    absl::StatusOr<Server> secure =
        Start(secured, "replay_server listening on ");
    if (!plain.ok() || !secure.ok()) {
      std::cerr << "cannot start the shards: " << plain.status() << " "
                << secure.status() << "\n";
      return 1;
    }
    // Filled once, untimed (the table's pages committed), as RunBench does.
    InsertShard(plain->address, c.od, c.ad, capacity, true);
    InsertShard(secure->address, c.od, c.ad, capacity, true, *security);
    const std::string dims = absl::StrFormat("obs %d act %d", c.od, c.ad);
    struct Measure {
      std::string name;
      std::function<double(const std::string&, const SecurityConfig&)> run;
      std::vector<double> in, sec;
    };
    std::vector<Measure> measures = {
        {absl::StrCat("insert  ", dims, " (ReplayWriter)"),
         [&c](const std::string& a, const SecurityConfig& s) {
           return InsertShard(a, c.od, c.ad, c.inserts, true, s);
         },
         {},
         {}},
        {absl::StrCat("sample  ", dims, " (RPC loop)"),
         [](const std::string& a, const SecurityConfig& s) {
           return SampleGrpc(a, s);
         },
         {},
         {}},
        {absl::StrCat("sample  ", dims, " (ReplaySampler)"),
         [](const std::string& a, const SecurityConfig& s) {
           return SampleClient(a, s);
         },
         {},
         {}},
    };
    for (int r = 0; r < repeats; ++r) {
      std::cerr << "round " << r + 1 << "/" << repeats << " " << dims
                << std::endl;
      for (Measure& m : measures) {
        // Which goes first alternates from round to round.
        if (r % 2 == 0) {
          m.in.push_back(m.run(plain->address, SecurityConfig()));
          m.sec.push_back(m.run(secure->address, *security));
        } else {
          m.sec.push_back(m.run(secure->address, *security));
          m.in.push_back(m.run(plain->address, SecurityConfig()));
        }
      }
    }
    for (const Measure& m : measures) {
      std::string rounds;
      for (size_t i = 0; i < m.in.size(); ++i) {
        absl::StrAppendFormat(&rounds, "%s%.0f/%.0f", i == 0 ? "" : " ",
                              m.in[i], m.sec[i]);
      }
      std::cout << absl::StrFormat("%-44s %14.0f %14.0f %8.3fx   %s\n", m.name,
                                   median(m.in), median(m.sec),
                                   median(m.sec) / median(m.in), rounds);
    }
    for (Server* s : {&*plain, &*secure}) {
      s->process->Signal(SIGTERM).IgnoreError();
      s->process->Wait(absl::Seconds(30)).IgnoreError();
    }
  }
  return 0;
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

// One row of the table: each system's results, one per repeat.
struct Row {
  explicit Row(std::string name) : name(std::move(name)) {}
  std::string name;
  std::vector<double> shard, limit, redis;
};

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

// --mode=shard_sample: Shard::SamplePacked in this process, no RPC, on a full
// shard (capacity --capacity, ids stored) at each of --obs_sizes, asking for
// the rows of one ReplaySampler round per call, from 1, 2 and 4 threads at
// once (the shard's server serves concurrent Sample calls on as many threads):
// rows/s summed over the threads, median of --repeats windows of
// --sample_seconds.
int RunShardSample() {
  const uint32_t n = absl::GetFlag(FLAGS_sample_batch);
  const int repeats = std::max(1, absl::GetFlag(FLAGS_repeats));
  std::cout << absl::StrFormat(
      "CPU: %s, %d cores online; load average (1/5/15 min) %s before\n"
      "Shard::SamplePacked in one process (no RPC) on a full shard of %d "
      "transitions with ids; each call asks for one ReplaySampler round's "
      "rows (prefetch %d, %d rounds in flight, batches of %d); rows/s summed "
      "over the threads, median of %d windows of %g s (all printed)\n"
      "%-34s %10s %14s %14s %14s   %s\n",
      CpuName(), std::thread::hardware_concurrency(), LoadAverage(),
      absl::GetFlag(FLAGS_capacity), kPrefetch,
      absl::GetFlag(FLAGS_sample_rounds), n, repeats,
      absl::GetFlag(FLAGS_sample_seconds), "rows/s (median)", "rows/call",
      "1 thread", "2 threads", "4 threads", "windows: 1 | 2 | 4 threads");
  for (const auto& [od, ad, task] : SelectedTaskSizes()) {
    ShardOptions options;
    options.capacity = absl::GetFlag(FLAGS_capacity);
    options.seed = 1;
    options.rate_limiter.min_size_to_sample = 1;
    absl::StatusOr<std::unique_ptr<Shard>> shard = Shard::Create(options);
    if (!shard.ok()) {
      std::cerr << shard.status() << std::endl;
      return 1;
    }
    std::mt19937 gen(1);
    if (absl::Status s = FillShard(
            shard->get(),
            RandomBatch(absl::GetFlag(FLAGS_insert_batch), od, ad, &gen));
        !s.ok()) {
      std::cerr << s << std::endl;
      return 1;
    }
    const uint32_t rows =
        n * static_cast<uint32_t>(SampleRoundBatches(
                n, kPrefetch, absl::GetFlag(FLAGS_sample_rounds), od, ad));
    std::string line = absl::StrFormat("obs %d act %d", od, ad);
    std::string windows;
    std::vector<double> medians;
    for (int threads : {1, 2, 4}) {
      std::vector<double> rates;
      for (int r = 0; r < repeats; ++r) {
        std::atomic<uint64_t> total{0};
        absl::Mutex mu;
        absl::Status error;
        const absl::Time end =
            absl::Now() + absl::Seconds(absl::GetFlag(FLAGS_sample_seconds));
        const absl::Time start = absl::Now();
        std::vector<std::thread> pool;
        for (int t = 0; t < threads; ++t) {
          pool.emplace_back([&] {
            uint64_t mine = 0;
            while (absl::Now() < end) {
              absl::StatusOr<PackedSample> s =
                  (*shard)->SamplePacked(rows, absl::InfiniteFuture(), nullptr);
              if (!s.ok()) {
                absl::MutexLock lock(&mu);
                error = s.status();
                break;
              }
              mine += rows;
            }
            total += mine;
          });
        }
        for (std::thread& t : pool) t.join();
        if (!error.ok()) {
          std::cerr << error << std::endl;
          return 1;
        }
        rates.push_back(total.load() /
                        absl::ToDoubleSeconds(absl::Now() - start));
      }
      medians.push_back(Median(rates));
      absl::StrAppend(&windows, threads == 1 ? "" : " | ", Repeats(rates));
    }
    std::cout << absl::StrFormat("%-34s %10d %14.0f %14.0f %14.0f   %s\n", line,
                                 rows, medians[0], medians[1], medians[2],
                                 windows);
  }
  return 0;
}

int RunBench(const char* argv0) {
  const std::string server_binary = FindServerBinary(argv0);
  const uint64_t capacity = absl::GetFlag(FLAGS_capacity);
  const int repeats = std::max(1, absl::GetFlag(FLAGS_repeats));
  const std::string redis_binary = absl::GetFlag(FLAGS_redis_binary);
  const bool have_redis = ::access(redis_binary.c_str(), X_OK) == 0;
  std::vector<uint32_t> batch_sizes;
  for (absl::string_view b :
       absl::StrSplit(absl::GetFlag(FLAGS_batch_sizes), ',')) {
    uint32_t n = 0;
    if (!absl::SimpleAtoi(b, &n) || n < 1) {
      std::cerr << "--batch_sizes: \"" << b << "\" is not a batch size\n";
      return 2;
    }
    batch_sizes.push_back(n);
  }
  const std::string load_before = LoadAverage();
  std::vector<Row> rows;
  std::vector<std::string> memory, restores;
  for (const TaskSize& c : SelectedTaskSizes()) {
    // About as many bytes per insert measurement at every size.
    const uint64_t inserts = std::max<uint64_t>(
        1, std::min(absl::GetFlag(FLAGS_small_inserts),
                    absl::GetFlag(FLAGS_large_inserts) * 100 / c.od));
    // No --observation_dim: the storage is allocated by the first insert, so
    // the RSS of the empty shard is the process's own baseline (gRPC,
    // libraries).
    absl::StatusOr<Server> shard = Start(
        {server_binary, "--port=0", absl::StrCat("--capacity=", capacity)},
        "replay_server listening on ");
    absl::StatusOr<Server> discard =
        Start({"/proc/self/exe", "--mode=discard_server",
               absl::StrCat("--observation_dim=", c.od),
               absl::StrCat("--action_dim=", c.ad)},
              "discard_server listening on ");
    if (!shard.ok() || !discard.ok()) {
      std::cerr << "cannot start servers: " << shard.status() << " "
                << discard.status() << "\n";
      return 1;
    }
    // The same shard with its insert log on (--checkpoint_dir), in a fresh
    // directory under $TMPDIR.
    absl::StatusOr<Server> wal_shard = absl::UnavailableError("--wal=false");
    std::string wal_dir;
    if (absl::GetFlag(FLAGS_wal)) {
      const char* tmp = std::getenv("TMPDIR");
      std::string pattern = absl::StrCat(tmp != nullptr ? tmp : "/tmp",
                                         "/replay_bench_wal_XXXXXX");
      if (::mkdtemp(pattern.data()) == nullptr) {
        std::cerr << "cannot create a directory for the insert log\n";
        return 1;
      }
      wal_dir = pattern;
      std::vector<std::string> args = {
          server_binary, "--port=0", absl::StrCat("--capacity=", capacity),
          absl::StrCat("--checkpoint_dir=", wal_dir),
          // Measure the log, not checkpoints of a full table.
          "--wal_max_bytes=0"};
      if (absl::GetFlag(FLAGS_wal_fsync)) args.push_back("--wal_fsync");
      wal_shard = Start(args, "replay_server listening on ");
      if (!wal_shard.ok()) {
        std::cerr << "cannot start the shard with an insert log: "
                  << wal_shard.status() << "\n";
        return 1;
      }
    }
    std::unique_ptr<ChildProcess> redis_process;
    std::unique_ptr<Redis> redis;
    std::vector<std::string> keys;
    if (have_redis) {
      const int redis_port = UnusedLoopbackPort();
      absl::StatusOr<std::unique_ptr<ChildProcess>> p =
          ChildProcess::Start({redis_binary, "--port", absl::StrCat(redis_port),
                               "--bind", "127.0.0.1", "--save", "",
                               "--appendonly", "no", "--loglevel", "warning"});
      if (!p.ok()) {
        std::cerr << "cannot start " << redis_binary << ": " << p.status()
                  << "\n";
        return 1;
      }
      redis_process = *std::move(p);
      for (int i = 0; i < 200; ++i) {
        redis = std::make_unique<Redis>(redis_port);
        if (redis->ok()) break;
        absl::SleepFor(absl::Milliseconds(25));
      }
      if (!redis->ok()) {
        std::cerr << "cannot reach redis-server on 127.0.0.1:" << redis_port
                  << "\n";
        return 1;
      }
      keys.reserve(capacity);
      for (uint64_t i = 0; i < capacity; ++i)
        keys.push_back(absl::StrCat("t", i));
    }
    const uint64_t empty_rss = ShardStats(shard->address)->resident_bytes();
    // Every store filled once to capacity, untimed (a shard commits its
    // table's memory as it first fills it), so that every timed round
    // measures the steady state, the ring overwriting its oldest items.
    absl::SetFlag(&FLAGS_insert_batch, 256);
    InsertShard(shard->address, c.od, c.ad, capacity, /*coalesce=*/true);
    if (wal_shard.ok()) {
      InsertShard(wal_shard->address, c.od, c.ad, capacity, /*coalesce=*/true);
    }
    if (redis != nullptr) InsertRedis(redis.get(), c.od, c.ad, capacity, keys);
    const std::string dims =
        absl::StrFormat("obs %d act %d (%s)", c.od, c.ad, c.task);
    for (uint32_t n : batch_sizes) {
      // The measurements read the batch size from these flags.
      absl::SetFlag(&FLAGS_insert_batch, n);
      absl::SetFlag(&FLAGS_sample_batch, n);
      const std::string at = absl::StrFormat("%s, batch %d", dims, n);
      Row insert(absl::StrCat("insert ", at, ": ReplayWriter"));
      Row wal(absl::StrCat("insert ", at, ": ReplayWriter, WAL",
                           absl::GetFlag(FLAGS_wal_fsync) ? "+fsync" : ""));
      Row sample(absl::StrCat("sample ", at, ": ReplaySampler"));
      // The sampler against the limit's server: its own cost (decoding)
      // beside the transport's, without the shard's.
      Row decode(
          absl::StrCat("sample ", at, ": ReplaySampler, limit's server"));
      for (int r = 0; r < repeats; ++r) {
        std::cerr << "round " << r + 1 << "/" << repeats << " " << at
                  << std::endl;
        insert.shard.push_back(InsertShard(shard->address, c.od, c.ad, inserts,
                                           /*coalesce=*/true));
        insert.limit.push_back(
            InsertRaw(discard->address, c.od, c.ad, inserts));
        if (redis != nullptr) {
          insert.redis.push_back(
              InsertRedis(redis.get(), c.od, c.ad, inserts, keys));
        }
        if (wal_shard.ok()) {
          wal.shard.push_back(InsertShard(wal_shard->address, c.od, c.ad,
                                          inserts, /*coalesce=*/true));
        }
        sample.shard.push_back(SampleClient(shard->address));
        sample.limit.push_back(SampleRawPrefetch(discard->address, c.od, c.ad));
        decode.shard.push_back(SampleClient(discard->address));
        if (redis != nullptr) {
          sample.redis.push_back(
              SampleRedis(redis.get(), c.od, c.ad, capacity, keys));
        }
      }
      rows.push_back(insert);
      if (wal_shard.ok()) {
        wal.limit = insert.limit;
        wal.redis = insert.redis;
        rows.push_back(wal);
      }
      rows.push_back(sample);
      decode.limit = sample.limit;
      rows.push_back(decode);
    }
    if (c.od == 2) {
      absl::StatusOr<proto::ShardStats> stats = ShardStats(shard->address);
      if (stats.ok()) {
        const double raw =
            static_cast<double>(stats->size()) * RawBytes(c.od, c.ad);
        const ProcMemory m = ReadProcMemory(shard->process->pid());
        memory.push_back(absl::StrFormat(
            "shard memory at capacity: %d transitions obs 2 act 2 (raw %.1f "
            "MB) -> RSS %.1f MB "
            "= %.2fx raw (of which anonymous %.1f MB = %.2fx raw, "
            "shared-library pages %.1f "
            "MB); empty shard RSS %.1f MB, (RSS - empty RSS)/raw = %.2fx; "
            "table storage %.1f MB",
            stats->size(), raw / 1e6, stats->resident_bytes() / 1e6,
            stats->resident_bytes() / raw, m.anon / 1e6, m.anon / raw,
            m.file / 1e6, empty_rss / 1e6,
            (static_cast<double>(stats->resident_bytes()) - empty_rss) / raw,
            stats->storage_bytes() / 1e6));
      }
    }
    redis.reset();
    if (redis_process != nullptr) {
      redis_process->Signal(SIGTERM).IgnoreError();
      redis_process->Wait(absl::Seconds(10)).IgnoreError();
    }
    shard->process->Signal(SIGTERM).IgnoreError();
    shard->process->Wait(absl::Seconds(30)).IgnoreError();
    discard->process.reset();
    if (wal_shard.ok()) {
      restores.push_back(
          RestoreRow(*std::move(wal_shard), server_binary, capacity, wal_dir,
                     absl::StrFormat("obs %d act %d", c.od, c.ad)));
      const std::string files[] = {absl::StrCat(wal_dir, "/replay-0.wal"),
                                   absl::StrCat(wal_dir, "/replay-0.ckpt")};
      for (const std::string& f : files) ::unlink(f.c_str());
      ::rmdir(wal_dir.c_str());
    }
  }
  std::cout << absl::StrFormat(
      "CPU: %s, %d cores online; load average (1/5/15 min) %s before, %s "
      "after\nshard capacity %d, filled before timing; %d repeats, systems "
      "alternating, median shown; %g s of sampling per system and repeat; "
      "every transition carries an episode id and a step id, as actors send "
      "them, stored and sampled with it\n"
      "limit: insert = the same batches coalesced into messages of up to "
      "%d KiB, one stream, at most %d batches unacknowledged, to a server that "
      "acknowledges without storing; sample = Sample RPCs of ReplaySampler's "
      "sizes in the packed_rows form it asks for, as many in flight (%d), "
      "answers received as bytes, not decoded; "
      "'limit's server': ReplaySampler sampling that server (its prebuilt "
      "answers) instead of the shard\n"
      "redis: %s\n\n",
      CpuName(), std::thread::hardware_concurrency(), load_before,
      LoadAverage(), capacity, repeats, absl::GetFlag(FLAGS_sample_seconds),
      ReplayClientOptions().coalesce_bytes >> 10,
      absl::GetFlag(FLAGS_max_in_flight), absl::GetFlag(FLAGS_sample_rounds),
      have_redis
          ? "a value per transition (its row, done byte and ids); one MSET per "
            "batch pipelined as deep as "
            "the writer's window, one MGET per batch pipelined as deep as the "
            "sampler's batches in flight, decoded into packed rows; keys and "
            "values made before the clock starts"
          : absl::StrCat("skipped (no ", redis_binary, ")"));
  std::cout << absl::StrFormat(
      "%-62s %12s %12s %12s %8s %8s   %s\n", "transitions/s (median)", "replay",
      "limit", "redis", "/limit", "/redis", "repeats: replay | limit | redis");
  for (const Row& r : rows) {
    const double shard = Median(r.shard), limit = Median(r.limit);
    const std::string redis = r.redis.empty()
                                  ? (have_redis ? "-" : "skipped")
                                  : absl::StrFormat("%.0f", Median(r.redis));
    const std::string vs_redis =
        r.redis.empty() ? "-"
                        : absl::StrFormat("%.2fx", shard / Median(r.redis));
    std::cout << absl::StrFormat(
        "%-62s %12.0f %12.0f %12s %7.2fx %8s   %s | %s | %s\n", r.name, shard,
        limit, redis, shard / limit, vs_redis, Repeats(r.shard),
        Repeats(r.limit), Repeats(r.redis));
  }
  for (const std::string& m : memory) std::cout << m << std::endl;
  if (!restores.empty()) {
    std::cout << absl::StrFormat(
        "\ncheckpoint restore at capacity (SIGTERM's checkpoint; the shard "
        "restarted from it) vs\nreading the file into new memory (the limit); "
        "the file in the page cache both ways\n%-20s %10s %14s %16s %9s %14s "
        "%12s %9s\n",
        "", "file MB", "read MB/s", "restore MB/s", "/read", "peak RSS MB",
        "running MB", "/running");
    for (const std::string& r : restores) std::cout << r << "\n";
  }
  return 0;
}

}  // namespace
}  // namespace softq

int main(int argc, char** argv) {
  // As the shard and the learner whose sampler it measures (and the limit's
  // server and client, which run in this process too).
  softq::KeepFreedMemoryForReuse();
  if (std::optional<int> code =
          softq::ParseFlags(argc, argv, "replay shard benchmark");
      code) {
    return *code;
  }
  absl::SetMutexDeadlockDetectionMode(
      absl::OnDeadlockCycle::kIgnore);  // as in replay_server
  if (absl::GetFlag(FLAGS_mode) == "discard_server")
    return softq::RunDiscardServer();
  if (absl::GetFlag(FLAGS_mode) == "checkpoint_stall")
    return softq::RunCheckpointStall();
  if (absl::GetFlag(FLAGS_mode) == "shard_sample")
    return softq::RunShardSample();
  if (absl::GetFlag(FLAGS_mode) == "security")
    return softq::RunSecurityBench(argv[0]);
  return softq::RunBench(argv[0]);
}
