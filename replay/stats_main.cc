// replay_stats: queries replay shards over RPC and prints one row per shard.
//
//   replay_stats --shards=127.0.0.1:5000,127.0.0.1:5001 [--json]
//   [--timeout_ms=3000]
//
// Exit 0 when every shard answered, 1 when some did not (their rows say why), 2
// for a bad flag. A shard that did not answer gets one ERROR row naming its
// address and why: "connection refused: nothing listens on ADDRESS", "unknown
// host: HOST does not resolve (...)", "timeout: ADDRESS accepts connections but
// did not answer within T" (or "timeout: no connection to ADDRESS within T"),
// else the call's error; with --json its "reason" is refused, unknown_host,
// timeout or error.
#include <fcntl.h>
#include <google/protobuf/util/json_util.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <future>
#include <iostream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/flags.h"
#include "common/security_flags.h"
#include "replay/replay_stats.h"

ABSL_FLAG(std::string, shards, "", "comma-separated host:port of the shards");
ABSL_FLAG(bool, json, false, "print JSON instead of a table");
ABSL_FLAG(int32_t, timeout_ms, 3000, "per-query deadline");

namespace softq {
namespace {

std::string Mb(uint64_t bytes) {
  return absl::StrFormat("%.1f", bytes / 1048576.0);
}

// Why a shard did not answer: "reason" for --json, and the row's text.
struct Failure {
  std::string reason;  // refused, unknown_host, timeout or error
  std::string text;
};

// The outcome of one TCP connection attempt within `timeout`: 0 when
// connected, else the errno (ETIMEDOUT when the time ran out).
int TryConnect(const addrinfo& ai, absl::Duration timeout) {
  const int fd =
      ::socket(ai.ai_family, ai.ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
               ai.ai_protocol);
  if (fd < 0) return errno;
  int error = 0;
  if (::connect(fd, ai.ai_addr, ai.ai_addrlen) != 0) {
    error = errno;
    if (error == EINPROGRESS) {
      pollfd p{fd, POLLOUT, 0};
      const int ready = ::poll(&p, 1,
                               static_cast<int>(std::max<int64_t>(
                                   1, absl::ToInt64Milliseconds(timeout))));
      socklen_t len = sizeof(error);
      if (ready <= 0) {
        error = ETIMEDOUT;
      } else if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &len) != 0) {
        error = errno;
      }
    }
  }
  ::close(fd);
  return error;
}

// Finds out why the shard at `address` did not answer `call_error`: resolves
// its host and tries a TCP connection to each of the host's addresses.
Failure Diagnose(const std::string& address, const absl::Status& call_error,
                 absl::Duration timeout, bool secure) {
  const size_t colon = address.rfind(':');
  std::string host = address.substr(0, colon);
  const std::string port = address.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  const std::string fallback(call_error.message());
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* list = nullptr;
  const int gai = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &list);
  if (gai != 0) {
    const std::string why =
        gai == EAI_SYSTEM ? std::strerror(errno) : ::gai_strerror(gai);
    return {"unknown_host", absl::StrCat("unknown host: ", host,
                                         " does not resolve (", why, ")")};
  }
  int refused = 0, timed_out = 0, connected = 0, tried = 0;
  std::string other;
  for (const addrinfo* ai = list; ai != nullptr; ai = ai->ai_next) {
    ++tried;
    const int error = TryConnect(*ai, timeout);
    if (error == 0) {
      ++connected;
      break;
    }
    if (error == ECONNREFUSED) {
      ++refused;
    } else if (error == ETIMEDOUT) {
      ++timed_out;
    } else {
      other = std::strerror(error);
    }
  }
  ::freeaddrinfo(list);
  const std::string t = absl::FormatDuration(timeout);
  if (connected > 0) {
    if (absl::IsUnavailable(call_error) ||
        absl::IsDeadlineExceeded(call_error)) {
      return {"timeout",
              absl::StrCat("timeout: ", address,
                           " accepts connections but did not answer within ", t,
                           " (", fallback, ")",
                           secure ? ""
                                  : "; a secured shard answers only clients "
                                    "with the job's --tls_* and "
                                    "--auth_token_file")};
    }
    return {"error", fallback};
  }
  if (refused == tried) {
    return {"refused",
            absl::StrCat("connection refused: nothing listens on ", address)};
  }
  if (timed_out > 0) {
    return {"timeout",
            absl::StrCat("timeout: no connection to ", address, " within ", t)};
  }
  return {"error", absl::StrCat("cannot connect to ", address, ": ", other)};
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
  absl::StatusOr<SecurityConfig> security = SecurityFromFlags();
  if (!security.ok()) return ReportFlagError(argv[0], security.status());
  WarnIfInsecure(*security, argv[0]);
  const std::vector<std::string> addresses = absl::StrSplit(shards, ',');
  const std::vector<absl::StatusOr<proto::ShardStats>> stats = QueryStatsEach(
      addresses, absl::Milliseconds(absl::GetFlag(FLAGS_timeout_ms)),
      *security);
  // Each shard that did not answer is looked at in parallel (a connection
  // attempt waits up to --timeout_ms).
  std::vector<std::future<Failure>> probes(stats.size());
  for (size_t i = 0; i < stats.size(); ++i) {
    if (stats[i].ok()) continue;
    probes[i] = std::async(std::launch::async, Diagnose, addresses[i],
                           stats[i].status(),
                           absl::Milliseconds(absl::GetFlag(FLAGS_timeout_ms)),
                           security->secure());
  }
  std::vector<Failure> failures(stats.size());
  for (size_t i = 0; i < stats.size(); ++i) {
    if (probes[i].valid()) failures[i] = probes[i].get();
  }
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
        std::string message = failures[i].text;
        for (char& c : message) {
          if (c == '"' || c == '\\' || c < 0x20) c = ' ';
        }
        row =
            absl::StrCat("{\"address\":\"", addresses[i], "\",\"reason\":\"",
                         failures[i].reason, "\",\"error\":\"", message, "\"}");
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
                                   failures[i].text);
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
    if (s.other_actors_inserted() > 0) {
      actors.push_back(absl::StrCat("other:", s.other_actors_inserted(),
                                    " (ids beyond the first ",
                                    s.max_tracked_actors(), ")"));
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
