// replay_soak: a bounded soak of one replay shard. Starts a replay_server
// process, streams from --actors writers (one ReplayWriter each, its own actor
// id) while a sampling learner thread draws prioritized batches and updates
// their priorities, for --seconds. Prints the shard's RSS once the table has
// wrapped (start) and at the end, the client process's RSS, insert/sample
// rates, and every error; exit 1 when any call failed, the shard died, or the
// shard's RSS grew more than --max_rss_growth_mb after the start mark.
//
// With --durable_dir the shard keeps its insert log and checkpoints there
// (--checkpoint_dir; a checkpoint each --wal_max_bytes of log), is killed with
// SIGKILL at the end instead of SIGTERM, restarted from the folder, and must
// hold exactly what it held before the kill (size, inserts, per-actor counts).
//
//   bazel run -c opt //bench/soak:replay_soak -- --seconds=60 --actors=8
//   bazel run -c opt //bench/soak:replay_soak -- --seconds=60
//   --durable_dir=/tmp/soak
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <iostream>
#include <random>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "common/flags.h"
#include "replay/replay_channel.h"
#include "replay/replay_sampler.h"
#include "replay/replay_stats.h"
#include "replay/replay_writer.h"
#include "replay/shard.h"
#include "tests/support/child_process.h"

ABSL_FLAG(int32_t, seconds, 60, "soak duration");
ABSL_FLAG(int32_t, actors, 8, "writer streams (one ReplayWriter each)");
ABSL_FLAG(int32_t, batch, 64, "transitions per inserted batch");
ABSL_FLAG(int32_t, sample_batch, 256, "transitions per sampled batch");
ABSL_FLAG(uint64_t, capacity, 200000,
          "shard capacity (small, so the table wraps early)");
ABSL_FLAG(double, max_rss_growth_mb, 16,
          "allowed shard RSS growth after the table wrapped");
ABSL_FLAG(std::string, server_binary, "",
          "replay_server path (default: from runfiles)");
ABSL_FLAG(std::string, durable_dir, "",
          "shard --checkpoint_dir (insert log on); then kill -9, restart and "
          "compare");
ABSL_FLAG(uint64_t, wal_max_bytes, uint64_t{256} << 20,
          "with --durable_dir: the shard's --wal_max_bytes");

namespace softq {
namespace {

std::string ServerBinary(const char* argv0) {
  if (!absl::GetFlag(FLAGS_server_binary).empty())
    return absl::GetFlag(FLAGS_server_binary);
  for (std::string c :
       {absl::StrCat(argv0, ".runfiles/softq/replay/replay_server"),
        std::string("bazel-bin/replay/replay_server")}) {
    if (::access(c.c_str(), X_OK) == 0) return c;
  }
  return "replay_server";
}

proto::TransitionBatch RandomBatch(std::mt19937& gen, int n,
                                   uint32_t actor_id) {
  std::uniform_real_distribution<float> u(-1, 1);
  proto::TransitionBatch b;
  b.set_observation_dim(2);
  b.set_action_dim(2);
  b.set_actor_id(actor_id);
  for (int i = 0; i < n; ++i) {
    for (int j = 0; j < 2; ++j) b.add_observations(7 * u(gen));
    for (int j = 0; j < 2; ++j) b.add_actions(u(gen));
    b.add_rewards(u(gen));
    for (int j = 0; j < 2; ++j) b.add_next_observations(7 * u(gen));
    b.add_dones(false);
  }
  return b;
}

double Mb(uint64_t bytes) { return bytes / 1048576.0; }

int Main(int argc, char** argv) {
  if (auto code = ParseFlags(argc, argv, "soak of one replay shard"); code)
    return *code;
  if (absl::Status s = CheckFlags(
          {FlagInRange("seconds", absl::GetFlag(FLAGS_seconds), 5, 86400),
           FlagInRange("actors", absl::GetFlag(FLAGS_actors), 1, 256),
           FlagInRange("batch", absl::GetFlag(FLAGS_batch), 1, 100000),
           FlagInRange("sample_batch", absl::GetFlag(FLAGS_sample_batch), 1,
                       100000)});
      !s.ok()) {
    return ReportFlagError(argv[0], s);
  }
  const std::string durable_dir = absl::GetFlag(FLAGS_durable_dir);
  std::vector<std::string> server_argv = {
      ServerBinary(argv[0]), "--port=0", "--sampler=prioritized",
      absl::StrCat("--capacity=", absl::GetFlag(FLAGS_capacity)),
      "--min_size_to_sample=1000"};
  if (!durable_dir.empty()) {
    server_argv.push_back(absl::StrCat("--checkpoint_dir=", durable_dir));
    server_argv.push_back(
        absl::StrCat("--wal_max_bytes=", absl::GetFlag(FLAGS_wal_max_bytes)));
  }
  std::string address;
  // A durable shard first restores its checkpoint and log: up to 5 minutes.
  auto start_shard = [&] {
    return StartListening(server_argv, "replay_server listening on ",
                          absl::Minutes(5), &address);
  };
  absl::StatusOr<std::unique_ptr<ChildProcess>> server = start_shard();
  if (!server.ok()) {
    std::cerr << "replay_soak: " << server.status() << std::endl;
    return 1;
  }
  ReplayClientOptions options;
  options.addresses = {address};

  std::atomic<bool> stop{false};
  std::atomic<uint64_t> errors{0}, acked{0}, sampled{0}, updates{0};
  std::vector<std::thread> threads;
  for (int a = 0; a < absl::GetFlag(FLAGS_actors); ++a) {
    threads.emplace_back([&, a] {
      absl::StatusOr<std::unique_ptr<ReplayWriter>> w =
          ReplayWriter::Create(options);
      if (!w.ok()) {
        std::cerr << "writer " << a << ": " << w.status() << std::endl;
        ++errors;
        return;
      }
      std::mt19937 gen(a);
      std::vector<proto::TransitionBatch> batches;
      for (int i = 0; i < 16; ++i)
        batches.push_back(RandomBatch(gen, absl::GetFlag(FLAGS_batch), a));
      for (size_t i = 0; !stop.load(); ++i) {
        if (absl::Status s = (*w)->Insert(batches[i % batches.size()]);
            !s.ok()) {
          std::cerr << "writer " << a << ": " << s << std::endl;
          ++errors;
        }
      }
      if (absl::Status s = (*w)->Flush(absl::Seconds(10)); !s.ok()) {
        std::cerr << "writer " << a << " flush: " << s << std::endl;
        ++errors;
      }
      acked += (*w)->acknowledged();
    });
  }
  threads.emplace_back([&] {  // the learner
    absl::StatusOr<std::unique_ptr<ReplaySampler>> sampler =
        ReplaySampler::Create(options, absl::GetFlag(FLAGS_sample_batch), 4);
    if (!sampler.ok()) {
      ++errors;
      return;
    }
    std::mt19937 gen(99);
    std::uniform_real_distribution<float> u(0.1f, 10.0f);
    while (!stop.load()) {
      absl::StatusOr<SampledBatch> b = (*sampler)->Next(absl::Seconds(5));
      if (!b.ok()) {
        std::cerr << "sampler: " << b.status() << std::endl;
        ++errors;
        continue;
      }
      sampled += b->keys.size();
      std::vector<float> p(b->keys.size());
      for (float& x : p) x = u(gen);
      if (absl::Status s =
              (*sampler)->UpdatePriorities(b->keys, b->shard_index, p);
          !s.ok()) {
        std::cerr << "update priorities: " << s << std::endl;
        ++errors;
      }
      ++updates;
    }
  });

  const absl::Time start = absl::Now();
  const absl::Time end = start + absl::Seconds(absl::GetFlag(FLAGS_seconds));
  uint64_t rss_start = 0, rss_max = 0;
  double t_start = 0;
  proto::ShardStats last;
  std::printf("%7s %10s %10s %10s %10s %9s\n", "t_s", "size", "inserts",
              "insert/s", "sample/s", "RSS_MB");
  while (absl::Now() < end && (*server)->running()) {
    absl::SleepFor(absl::Seconds(5));
    absl::StatusOr<std::vector<proto::ShardStats>> st =
        QueryStats({address}, absl::Seconds(5));
    if (!st.ok()) {
      std::cerr << "stats: " << st.status() << std::endl;
      ++errors;
      continue;
    }
    last = (*st)[0];
    const double t = absl::ToDoubleSeconds(absl::Now() - start);
    if (rss_start == 0 && last.inserts_total() >= 2 * last.capacity()) {
      rss_start = last.resident_bytes();
      t_start = t;
    }
    if (rss_start != 0)
      rss_max = std::max<uint64_t>(rss_max, last.resident_bytes());
    std::printf("%7.1f %10lu %10lu %10.0f %10.0f %9.1f\n", t, last.size(),
                last.inserts_total(), last.insert_rate(), last.sample_rate(),
                Mb(last.resident_bytes()));
    std::fflush(stdout);
  }
  const double elapsed = absl::ToDoubleSeconds(absl::Now() - start);
  stop = true;
  for (std::thread& t : threads) t.join();
  // Final counters after every writer flushed: acknowledged <= inserted must
  // hold. Nothing writes or samples any more: these are also the stats a
  // restart must reproduce.
  const absl::StatusOr<std::vector<proto::ShardStats>> final_stats =
      QueryStats({address}, absl::Seconds(5));
  uint64_t inserted_final = 0;
  if (final_stats.ok()) {
    inserted_final = (*final_stats)[0].inserts_total();
  } else {
    ++errors;
  }
  const bool alive = (*server)->running();
  bool restored_ok = true;
  std::string restored_line;
  if (!durable_dir.empty()) {
    // Everything is flushed and acknowledged: kill -9, restart from the folder,
    // compare.
    const absl::StatusOr<std::vector<proto::ShardStats>>& before = final_stats;
    (*server)->Signal(SIGKILL).IgnoreError();
    (*server)->Wait(absl::Seconds(10)).IgnoreError();
    const absl::Time restart = absl::Now();
    server = start_shard();
    absl::StatusOr<std::vector<proto::ShardStats>> after =
        server.ok()
            ? QueryStats({address}, absl::Seconds(5))
            : absl::StatusOr<std::vector<proto::ShardStats>>(server.status());
    if (!before.ok() || !after.ok()) {
      std::cerr << "durable restart: "
                << (before.ok() ? after.status() : before.status())
                << std::endl;
      restored_ok = false;
    } else {
      const proto::ShardStats& b = (*before)[0];
      const proto::ShardStats& a = (*after)[0];
      uint64_t per_actor_before = 0, per_actor_after = 0;
      for (const auto& x : b.per_actor()) per_actor_before += x.inserted();
      for (const auto& x : a.per_actor()) per_actor_after += x.inserted();
      restored_ok = a.size() == b.size() &&
                    a.inserts_total() == b.inserts_total() &&
                    per_actor_after == per_actor_before;
      restored_line = absl::StrFormat(
          "  kill -9 and restart from %s in %.1f s: size %lu (before %lu), "
          "inserts %lu "
          "(before %lu), per-actor total %lu (before %lu)\n",
          durable_dir, absl::ToDoubleSeconds(absl::Now() - restart), a.size(),
          b.size(), a.inserts_total(), b.inserts_total(), per_actor_after,
          per_actor_before);
    }
  }
  absl::StatusOr<int> code = absl::UnknownError("no shard");
  if (server.ok()) {
    (*server)->Signal(SIGTERM).IgnoreError();
    code = (*server)->Wait(absl::Seconds(30));
  }
  const uint64_t rss_end = last.resident_bytes();
  const double growth = rss_start ? Mb(rss_end) - Mb(rss_start) : 0;
  std::printf(
      "soak: %.0f s, %d actor streams, 1 shard (capacity %lu), sampling "
      "learner\n"
      "  inserted %lu transitions (%.0f/s), acknowledged %lu; sampled %lu "
      "(%.0f/s), %lu "
      "priority updates\n"
      "  shard RSS: %.1f MB when the table had wrapped (t=%.0f s), %.1f MB at "
      "the end, max %.1f "
      "MB (growth %+.1f MB)\n"
      "  client RSS at the end %.1f MB; errors %lu; shard exit %s\n",
      elapsed, absl::GetFlag(FLAGS_actors), last.capacity(), inserted_final,
      inserted_final / elapsed, acked.load(), sampled.load(),
      sampled.load() / elapsed, updates.load(), Mb(rss_start), t_start,
      Mb(rss_end), Mb(rss_max), growth, Mb(ResidentBytes()), errors.load(),
      code.ok() ? absl::StrCat(*code).c_str() : "none");
  std::printf("%s", restored_line.c_str());
  const bool ok = errors.load() == 0 && alive && restored_ok && code.ok() &&
                  *code == 0 && rss_start != 0 &&
                  growth <= absl::GetFlag(FLAGS_max_rss_growth_mb) &&
                  acked.load() <= inserted_final;
  std::printf("soak: %s\n", ok ? "PASS" : "FAIL");
  return ok ? 0 : 1;
}

}  // namespace
}  // namespace softq

int main(int argc, char** argv) { return softq::Main(argc, argv); }
