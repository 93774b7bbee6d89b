// replay_bench's flags (declared in bench_support.h).
#include <cstdint>
#include <string>

#include "absl/flags/flag.h"
#include "bench/replay/bench_support.h"
#include "replay/replay_channel.h"

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
ABSL_FLAG(double, cipher_bytes_per_second, 0,
          "security: what one core encrypts per second with the TLS cipher "
          "(bench/security_bench.sh measures it with openssl speed); 0: no "
          "cipher-only bound printed");
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
ABSL_FLAG(std::string, server_cpus, "",
          "CPUs (a taskset -c list, e.g. 1) that every server the bench starts "
          "runs on: shards, the limit's server, redis-server; empty: where the "
          "scheduler puts them");
ABSL_FLAG(std::string, client_cpus, "",
          "CPUs (e.g. 0) that this process, whose threads are the clients, "
          "runs on; empty: where the scheduler puts it");
