// replay_bench: insert and sample throughput of one replay shard over loopback
// at the observation sizes of real tasks (2, 17, 27, 111) and batches of 64
// and 256, through the client library the actors and the learner use
// (ReplayWriter, ReplaySampler), side by side with (a) the limit: the same
// traffic to a server that acknowledges inserts without storing them and
// answers Sample with a prebuilt batch, on bare gRPC with the writer's
// coalescing and window and the sampler's RPC sizes and RPCs in flight, or
// through the client library itself, whichever is faster, and (b)
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
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "bench/replay/bench_support.h"
#include "common/flags.h"
#include "common/malloc_policy.h"
#include "replay/replay_sampler.h"
#include "replay/replay_stats.h"
#include "replay/shard.h"

namespace softq {
namespace replay_bench {
namespace {

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

// One row of the table: each system's results, one per repeat. The limit of
// a repeat is the faster of the bare-gRPC client (`raw`) and the client
// library against the limit's server (`library`): whichever moves the bytes
// faster, so that it is an upper bound for the library against the shard.
struct Row {
  explicit Row(std::string name) : name(std::move(name)) {}
  std::string name;
  std::vector<double> shard, raw, library, redis;

  std::vector<double> Limit() const {
    std::vector<double> out = raw;
    for (size_t i = 0; i < out.size() && i < library.size(); ++i) {
      out[i] = std::max(out[i], library[i]);
    }
    return out;
  }
  // Each repeat's limit as raw/library.
  std::string LimitRepeats() const {
    std::string out;
    for (size_t i = 0; i < raw.size() && i < library.size(); ++i) {
      absl::StrAppendFormat(&out, "%s%.0f/%.0f", i == 0 ? "" : " ", raw[i],
                            library[i]);
    }
    return out;
  }
};

int RunBench(const char* argv0) {
  const std::string server_binary = FindServerBinary(argv0);
  // This binary, for the limit's server (by its path: through taskset,
  // /proc/self/exe would be taskset's).
  char self[4096] = {};
  if (::readlink("/proc/self/exe", self, sizeof(self) - 1) <= 0) {
    std::cerr << "cannot read /proc/self/exe\n";
    return 1;
  }
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
        Start({self, "--mode=discard_server",
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
      absl::StatusOr<std::unique_ptr<ChildProcess>> p = ChildProcess::Start(
          OnServerCpus({redis_binary, "--port", absl::StrCat(redis_port),
                        "--bind", "127.0.0.1", "--save", "", "--appendonly",
                        "no", "--loglevel", "warning"}));
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
      // The writer against the limit's server.
      Row insert_library(
          absl::StrCat("insert ", at, ": ReplayWriter, limit's server"));
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
        insert.raw.push_back(InsertRaw(discard->address, c.od, c.ad, inserts));
        insert.library.push_back(InsertShard(discard->address, c.od, c.ad,
                                             inserts, /*coalesce=*/true));
        if (redis != nullptr) {
          insert.redis.push_back(
              InsertRedis(redis.get(), c.od, c.ad, inserts, keys));
        }
        if (wal_shard.ok()) {
          wal.shard.push_back(InsertShard(wal_shard->address, c.od, c.ad,
                                          inserts, /*coalesce=*/true));
        }
        sample.shard.push_back(SampleClient(shard->address));
        sample.raw.push_back(SampleRawPrefetch(discard->address, c.od, c.ad));
        sample.library.push_back(SampleClient(discard->address));
        if (redis != nullptr) {
          sample.redis.push_back(
              SampleRedis(redis.get(), c.od, c.ad, capacity, keys));
        }
      }
      rows.push_back(insert);
      if (wal_shard.ok()) {
        wal.raw = insert.raw;
        wal.library = insert.library;
        wal.redis = insert.redis;
        rows.push_back(wal);
      }
      insert_library.shard = insert.library;
      insert_library.raw = insert.raw;
      insert_library.library = insert.library;
      rows.push_back(insert_library);
      rows.push_back(sample);
      decode.shard = sample.library;
      decode.raw = sample.raw;
      decode.library = sample.library;
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
      "CPU: %s, %d cores online (%s); load average (1/5/15 min) %s before, %s "
      "after\nshard capacity %d, filled before timing; %d repeats, systems "
      "alternating, median shown; %g s of sampling per system and repeat; "
      "every transition carries an episode id and a step id, as actors send "
      "them, stored and sampled with it\n"
      "limit: insert = the same batches coalesced into messages of up to "
      "%d KiB, one stream, at most %d batches unacknowledged, to a server that "
      "acknowledges without storing; sample = Sample RPCs of ReplaySampler's "
      "sizes in the packed_rows form it asks for, as many in flight (%d), "
      "answers received as bytes, not decoded (raw); 'limit's server' rows: "
      "ReplayWriter and ReplaySampler against that server instead of the "
      "shard (library); each repeat's limit is the faster of raw and "
      "library\n"
      "redis: %s\n\n",
      CpuName(), std::thread::hardware_concurrency(), CpuPlacement(),
      load_before, LoadAverage(), capacity, repeats,
      absl::GetFlag(FLAGS_sample_seconds),
      ReplayClientOptions().coalesce_bytes >> 10,
      absl::GetFlag(FLAGS_max_in_flight), absl::GetFlag(FLAGS_sample_rounds),
      have_redis
          ? "a value per transition (its row, done byte and ids); one MSET per "
            "batch pipelined as deep as "
            "the writer's window, one MGET per batch pipelined as deep as the "
            "sampler's batches in flight, decoded into packed rows; keys and "
            "values made before the clock starts"
          : absl::StrCat("skipped (no ", redis_binary, ")"));
  std::cout << absl::StrFormat("%-62s %12s %12s %12s %8s %8s   %s\n",
                               "transitions/s (median)", "replay", "limit",
                               "redis", "/limit", "/redis",
                               "repeats: replay | limit (raw/library) | redis");
  for (const Row& r : rows) {
    const double shard = Median(r.shard), limit = Median(r.Limit());
    const std::string redis = r.redis.empty()
                                  ? (have_redis ? "-" : "skipped")
                                  : absl::StrFormat("%.0f", Median(r.redis));
    const std::string vs_redis =
        r.redis.empty() ? "-"
                        : absl::StrFormat("%.2fx", shard / Median(r.redis));
    std::cout << absl::StrFormat(
        "%-62s %12.0f %12.0f %12s %7.2fx %8s   %s | %s | %s\n", r.name, shard,
        limit, redis, shard / limit, vs_redis, Repeats(r.shard),
        r.LimitRepeats(), Repeats(r.redis));
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
}  // namespace replay_bench
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
  if (absl::Status s = softq::replay_bench::PinClient(); !s.ok()) {
    std::cerr << s.message() << std::endl;
    return 2;
  }
  absl::SetMutexDeadlockDetectionMode(
      absl::OnDeadlockCycle::kIgnore);  // as in replay_server
  if (absl::GetFlag(FLAGS_mode) == "discard_server")
    return softq::replay_bench::RunDiscardServer();
  if (absl::GetFlag(FLAGS_mode) == "checkpoint_stall")
    return softq::replay_bench::RunCheckpointStall();
  if (absl::GetFlag(FLAGS_mode) == "shard_sample")
    return softq::replay_bench::RunShardSample();
  if (absl::GetFlag(FLAGS_mode) == "security")
    return softq::replay_bench::RunSecurityBench(argv[0]);
  return softq::replay_bench::RunBench(argv[0]);
}
