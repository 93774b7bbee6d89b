// replay_bench --mode=security: inserts and samples of a shard with mutual
// TLS and the job token against an insecure one, same run.
#include <signal.h>

#include <algorithm>
#include <functional>
#include <iostream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "bench/replay/bench_support.h"
#include "common/security.h"

namespace softq {
namespace replay_bench {

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

}  // namespace replay_bench
}  // namespace softq
