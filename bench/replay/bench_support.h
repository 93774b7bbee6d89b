// The parts of replay_bench (bench/replay/replay_bench.cc) its modes share:
// its flags, the test data, the child servers, the clients it measures (the
// actors' and the learner's, through the client library), the limit (a
// discarding server and bare-gRPC clients) and the Redis peer. Not
// thread-safe unless a function says so; a benchmark, not a library.
#ifndef SOFTQ_BENCH_REPLAY_BENCH_SUPPORT_H_
#define SOFTQ_BENCH_REPLAY_BENCH_SUPPORT_H_

#include <hiredis/hiredis.h>

#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/flags/declare.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/security.h"
#include "proto/replay.pb.h"
#include "replay/shard.h"
#include "tests/support/child_process.h"

ABSL_DECLARE_FLAG(std::string, mode);
ABSL_DECLARE_FLAG(std::string, credentials_dir);
ABSL_DECLARE_FLAG(double, cipher_bytes_per_second);
ABSL_DECLARE_FLAG(uint64_t, stall_capacity);
ABSL_DECLARE_FLAG(double, stall_insert_rate);
ABSL_DECLARE_FLAG(uint32_t, observation_dim);
ABSL_DECLARE_FLAG(uint32_t, action_dim);
ABSL_DECLARE_FLAG(uint32_t, sample_batch);
ABSL_DECLARE_FLAG(uint32_t, insert_batch);
ABSL_DECLARE_FLAG(std::string, obs_sizes);
ABSL_DECLARE_FLAG(std::string, batch_sizes);
ABSL_DECLARE_FLAG(int32_t, max_in_flight);
ABSL_DECLARE_FLAG(int32_t, sample_rounds);
ABSL_DECLARE_FLAG(uint64_t, capacity);
ABSL_DECLARE_FLAG(uint64_t, small_inserts);
ABSL_DECLARE_FLAG(uint64_t, large_inserts);
ABSL_DECLARE_FLAG(double, sample_seconds);
ABSL_DECLARE_FLAG(int32_t, repeats);
ABSL_DECLARE_FLAG(std::string, server_binary);
ABSL_DECLARE_FLAG(std::string, redis_binary);
ABSL_DECLARE_FLAG(bool, wal);
ABSL_DECLARE_FLAG(bool, wal_fsync);
ABSL_DECLARE_FLAG(std::string, server_cpus);
ABSL_DECLARE_FLAG(std::string, client_cpus);

namespace softq {
namespace replay_bench {

// learner_main's --prefetch default: the sampler's batches drawn ahead.
inline constexpr int kPrefetch = 16;

// `n` random transitions (values in [-1, 1], 1 in 10 done) with episode and
// step ids as actors send them.
proto::TransitionBatch RandomBatch(uint32_t n, uint32_t od, uint32_t ad,
                                   std::mt19937* gen);

// Raw bytes of one transition as an actor sends it: obs, act, reward,
// next_obs (floats), a done byte, its episode id (8 bytes) and step id (4).
inline constexpr uint64_t kIdBytes = 8 + 4;
uint64_t RawBytes(uint32_t od, uint32_t ad);

// The observation sizes of real tasks the bench measures, with their action
// sizes.
struct TaskSize {
  uint32_t od, ad;
  const char* task;
};
// Those that --obs_sizes names, in the order of the tasks.
std::vector<TaskSize> SelectedTaskSizes();

// Inserts `batch` into an in-process shard until it holds its capacity.
absl::Status FillShard(Shard* shard, const proto::TransitionBatch& batch);

// Batches to send: a few distinct random ones, cycled (generation is not
// measured).
std::vector<proto::InsertRequest> Requests(uint32_t od, uint32_t ad,
                                           uint32_t n);

// `argv` run on --server_cpus (through /usr/bin/taskset, which execs it: the
// same pid).
std::vector<std::string> OnServerCpus(std::vector<std::string> argv);
// Puts this process (every thread it starts from now on) on --client_cpus;
// InvalidArgument naming the flag for a bad list. Call before any thread.
absl::Status PinClient();
// Where the servers and the clients run, for the tables.
std::string CpuPlacement();

// --server_binary, else replay_server from the runfiles or bazel-bin.
std::string FindServerBinary(const char* argv0);

// A child server and the address it printed.
struct Server {
  std::unique_ptr<ChildProcess> process;
  std::string address;
};
// Starts `argv` and waits for its line starting with `prefix` (which ends
// with the port it listens on).
absl::StatusOr<Server> Start(const std::vector<std::string>& argv,
                             const std::string& prefix);

// The CPU's model name (/proc/cpuinfo) and the 1, 5 and 15 minute load
// averages (/proc/loadavg), for the tables.
std::string CpuName();
std::string LoadAverage();
// The median of the repeats that worked (a failed one reads 0: its error is
// on stderr, and it is printed among the repeats), and the repeats printed.
double Median(std::vector<double> v);
std::string Repeats(const std::vector<double>& v);

// The CPU time one measurement costs, inside its timed window only: this
// process's (the client's, every thread) and one server process's
// (bench/cpu_time.h), and what moved: transitions and their serialized bytes
// per transition (0 where not counted).
struct CpuWindow {
  pid_t server_pid = 0;
  double client_seconds = 0;
  double server_seconds = 0;
  uint64_t transitions = 0;
  double bytes_per_transition = 0;
  void Start();
  void Stop(uint64_t moved);
  // Microseconds of CPU (client + server) per transition.
  double MicrosPerTransition() const;

 private:
  double client_start_ = 0;
  double server_start_ = 0;
};

// Transitions/s of the client library: `total` transitions inserted through
// ReplayWriter (the actors' client; `coalesce` false: no coalescing), Sample
// RPCs of --sample_batch in a loop, and ReplaySampler with background
// prefetch (the learner's client) for --sample_seconds. 0 on an error
// (printed). A `cpu` given is started and stopped with the clock.
double InsertShard(const std::string& address, uint32_t od, uint32_t ad,
                   uint64_t total, bool coalesce,
                   const SecurityConfig& security = SecurityConfig(),
                   CpuWindow* cpu = nullptr);
double SampleGrpc(const std::string& address,
                  const SecurityConfig& security = SecurityConfig(),
                  CpuWindow* cpu = nullptr);
double SampleClient(const std::string& address,
                    const SecurityConfig& security = SecurityConfig(),
                    CpuWindow* cpu = nullptr);

// The limit (limit.cc): the discarding server (--mode=discard_server, which
// answers Sample with a prebuilt batch of --observation_dim and --action_dim),
// and bare-gRPC clients to it with the writer's coalescing and window and the
// sampler's RPC sizes and RPCs in flight.
int RunDiscardServer();
double InsertRaw(const std::string& address, uint32_t od, uint32_t ad,
                 uint64_t total);
double SampleRawPrefetch(const std::string& address, uint32_t od, uint32_t ad);

// The Redis peer (redis_peer.cc): a connection to redis-server on 127.0.0.1.
class Redis {
 public:
  explicit Redis(int port);
  ~Redis();
  Redis(const Redis&) = delete;
  Redis& operator=(const Redis&) = delete;
  bool ok() const { return c_ != nullptr && c_->err == 0; }
  redisContext* get() { return c_; }

 private:
  redisContext* c_;
};
// `total` transitions, a value each under keys[slot] (`keys`: one per slot of
// the ring), one MSET per batch pipelined --max_in_flight deep.
double InsertRedis(Redis* redis, uint32_t od, uint32_t ad, uint64_t total,
                   const std::vector<std::string>& keys);
// Random transitions of the `held`, one MGET per batch pipelined as deep as
// ReplaySampler's batches in flight, decoded into packed rows.
double SampleRedis(Redis* redis, uint32_t od, uint32_t ad, uint64_t held,
                   const std::vector<std::string>& keys);

// The modes other than the default comparison (each file of its name).
int RunCheckpointStall();
int RunSecurityBench(const char* argv0);
int RunShardSample();

}  // namespace replay_bench
}  // namespace softq

#endif  // SOFTQ_BENCH_REPLAY_BENCH_SUPPORT_H_
