// replay_stats: queries replay shards over RPC and prints one row per shard.
//
//   replay_stats --shards=127.0.0.1:5000,127.0.0.1:5001 [--json]
//   [--timeout_ms=3000]
//
// Exit 0 when every shard answered, 1 when some did not (their rows say why), 2
// for a bad flag.
#include <google/protobuf/util/json_util.h>

#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/flags.h"
#include "replay/client.h"

ABSL_FLAG(std::string, shards, "", "comma-separated host:port of the shards");
ABSL_FLAG(bool, json, false, "print JSON instead of a table");
ABSL_FLAG(int32_t, timeout_ms, 3000, "per-query deadline");

namespace softq {
namespace {

std::string Mb(uint64_t bytes) {
  return absl::StrFormat("%.1f", bytes / 1048576.0);
}

int Main(int argc, char** argv) {
  if (std::optional<int> code =
          ParseFlags(argc, argv, "prints the stats of replay shards");
      code) {
    return *code;
  }
  const std::string shards = absl::GetFlag(FLAGS_shards);
  if (absl::Status s =
          CheckFlags({FlagAddressList("shards", shards),
                      FlagInRange("timeout_ms", absl::GetFlag(FLAGS_timeout_ms),
                                  1, 600000)});
      !s.ok()) {
    return ReportFlagError(argv[0], s);
  }
  const std::vector<std::string> addresses = absl::StrSplit(shards, ',');
  const std::vector<absl::StatusOr<proto::ShardStats>> stats = QueryStatsEach(
      addresses, absl::Milliseconds(absl::GetFlag(FLAGS_timeout_ms)));
  bool all_ok = true;
  if (absl::GetFlag(FLAGS_json)) {
    std::vector<std::string> rows;
    for (size_t i = 0; i < stats.size(); ++i) {
      std::string row;
      if (stats[i].ok()) {
        google::protobuf::util::JsonPrintOptions options;
        options.always_print_primitive_fields = true;
        options.preserve_proto_field_names = true;
        std::string json;
        if (!google::protobuf::util::MessageToJsonString(*stats[i], &json,
                                                         options)
                 .ok()) {
          json = "{}";
        }
        row = absl::StrCat("{\"address\":\"", addresses[i],
                           "\",\"stats\":", json, "}");
      } else {
        all_ok = false;
        std::string message(stats[i].status().message());
        for (char& c : message) {
          if (c == '"' || c == '\\' || c < 0x20) c = ' ';
        }
        row = absl::StrCat("{\"address\":\"", addresses[i], "\",\"error\":\"",
                           message, "\"}");
      }
      rows.push_back(row);
    }
    std::cout << "{\"shards\":[" << absl::StrJoin(rows, ",") << "]}"
              << std::endl;
    return all_ok ? 0 : 1;
  }
  std::cout << absl::StrFormat(
      "%-6s %-21s %-19s %10s %10s %9s %9s %-11s %-24s %9s %8s %8s\n", "shard",
      "address", "size/capacity", "inserts", "samples", "insert/s", "sample/s",
      "sampler", "rate limiter", "store MB", "RSS MB", "uptime");
  uint64_t size = 0, capacity = 0, inserts = 0, samples = 0;
  double insert_rate = 0, sample_rate = 0;
  for (size_t i = 0; i < stats.size(); ++i) {
    if (!stats[i].ok()) {
      all_ok = false;
      std::cout << absl::StrFormat("%-6s %-21s ERROR %s\n", "?", addresses[i],
                                   stats[i].status().message());
      continue;
    }
    const proto::ShardStats& s = *stats[i];
    const proto::RateLimiterState& rl = s.rate_limiter();
    std::cout << absl::StrFormat(
        "%-6s %-21s %-19s %10d %10d %9.0f %9.0f %-11s %-24s %9s %8s %7.0fs\n",
        s.shard_id(), addresses[i], absl::StrCat(s.size(), "/", s.capacity()),
        s.inserts_total(), s.samples_total(), s.insert_rate(), s.sample_rate(),
        s.sampler(),
        absl::StrFormat("min %d spi %g±%g blk %d/%d", rl.min_size_to_sample(),
                        rl.samples_per_insert(), rl.error_buffer(),
                        rl.blocked_inserts(), rl.blocked_samples()),
        Mb(s.storage_bytes()), Mb(s.resident_bytes()), s.uptime_seconds());
    std::vector<std::string> actors;
    for (const proto::ActorCount& a : s.per_actor()) {
      actors.push_back(absl::StrCat(a.actor_id(), ":", a.inserted()));
    }
    if (!actors.empty()) {
      std::cout << "       per actor (id:inserted) "
                << absl::StrJoin(actors, " ") << "\n";
    }
    size += s.size();
    capacity += s.capacity();
    inserts += s.inserts_total();
    samples += s.samples_total();
    insert_rate += s.insert_rate();
    sample_rate += s.sample_rate();
  }
  std::cout << absl::StrFormat("%-6s %-21s %-19s %10d %10d %9.0f %9.0f\n",
                               "total", "", absl::StrCat(size, "/", capacity),
                               inserts, samples, insert_rate, sample_rate);
  std::cout.flush();
  return all_ok ? 0 : 1;
}

}  // namespace
}  // namespace softq

int main(int argc, char** argv) { return softq::Main(argc, argv); }
