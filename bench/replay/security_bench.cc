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
  const double cipher_rate = absl::GetFlag(FLAGS_cipher_bytes_per_second);
  std::cout << absl::StrFormat(
      "%-44s %14s %14s %9s   rounds (insecure / secure)\n",
      absl::StrCat("transitions/s (batches of ",
                   absl::GetFlag(FLAGS_insert_batch), ")"),
      "insecure", "TLS+token", "secure/in");
  // The CPU table comes after the throughput table: its lines are kept.
  std::string cpu_table = absl::StrFormat(
      "\n%-44s %9s %9s %9s %7s %9s %9s   rounds (insecure / secure)\n",
      "CPU us per transition (client + shard)", "insecure", "TLS+token",
      "secure/in", "bytes", "cipher", "bound");
  absl::StrAppend(
      &cpu_table,
      "# bytes: serialized per transition; cipher: 2 x bytes / "
      "--cipher_bytes_per_second (each byte encrypted once and decrypted "
      "once), in us;\n# bound: insecure / (insecure + cipher), the most "
      "secure/in could reach if the cipher were TLS's only cost\n");
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
      std::function<double(const std::string&, const SecurityConfig&,
                           CpuWindow*)>
          run;
      std::vector<double> in, sec;
      std::vector<double> in_cpu, sec_cpu;  // us per transition
      double bytes = 0;                     // serialized, per transition
    };
    std::vector<Measure> measures(3);
    measures[0].name = absl::StrCat("insert  ", dims, " (ReplayWriter)");
    measures[0].run = [&c](const std::string& a, const SecurityConfig& s,
                           CpuWindow* cpu) {
      return InsertShard(a, c.od, c.ad, c.inserts, true, s, cpu);
    };
    measures[1].name = absl::StrCat("sample  ", dims, " (RPC loop)");
    measures[1].run = [](const std::string& a, const SecurityConfig& s,
                         CpuWindow* cpu) { return SampleGrpc(a, s, cpu); };
    measures[2].name = absl::StrCat("sample  ", dims, " (ReplaySampler)");
    measures[2].run = [](const std::string& a, const SecurityConfig& s,
                         CpuWindow* cpu) { return SampleClient(a, s, cpu); };
    const auto run_insecure = [&](Measure& m) {
      CpuWindow cpu;
      cpu.server_pid = plain->process->pid();
      m.in.push_back(m.run(plain->address, SecurityConfig(), &cpu));
      m.in_cpu.push_back(cpu.MicrosPerTransition());
      if (cpu.bytes_per_transition > 0) m.bytes = cpu.bytes_per_transition;
    };
    const auto run_secure = [&](Measure& m) {
      CpuWindow cpu;
      cpu.server_pid = secure->process->pid();
      m.sec.push_back(m.run(secure->address, *security, &cpu));
      m.sec_cpu.push_back(cpu.MicrosPerTransition());
    };
    for (int r = 0; r < repeats; ++r) {
      std::cerr << "round " << r + 1 << "/" << repeats << " " << dims
                << std::endl;
      for (Measure& m : measures) {
        // Which goes first alternates from round to round.
        if (r % 2 == 0) {
          run_insecure(m);
          run_secure(m);
        } else {
          run_secure(m);
          run_insecure(m);
        }
      }
    }
    // ReplaySampler draws the same rows in the same SampleResponse.
    measures[2].bytes = measures[1].bytes;
    const auto rounds = [](const std::vector<double>& a,
                           const std::vector<double>& b, const char* format) {
      std::string out;
      for (size_t i = 0; i < a.size(); ++i) {
        absl::StrAppend(&out, i == 0 ? "" : " ",
                        absl::StrFormat(format, a[i], b[i]));
      }
      return out;
    };
    for (const Measure& m : measures) {
      std::cout << absl::StrFormat("%-44s %14.0f %14.0f %8.3fx   %s\n", m.name,
                                   Median(m.in), Median(m.sec),
                                   Median(m.sec) / Median(m.in),
                                   rounds(m.in, m.sec, "%.0f/%.0f"));
      // The cipher alone: each byte encrypted by its sender and decrypted by
      // its receiver, at one core's rate. If the CPU were all that limited
      // the insecure rate, secure/in could be at most in / (in + cipher).
      const double in_cpu = Median(m.in_cpu);
      const double cipher =
          cipher_rate > 0 && m.bytes > 0 ? 2 * m.bytes / cipher_rate * 1e6 : 0;
      absl::StrAppend(
          &cpu_table,
          absl::StrFormat(
              "%-44s %9.3f %9.3f %8.3fx %7s %9s %9s   %s\n", m.name, in_cpu,
              Median(m.sec_cpu), in_cpu / Median(m.sec_cpu),
              m.bytes > 0 ? absl::StrFormat("%.0f", m.bytes) : "-",
              cipher > 0 ? absl::StrFormat("%.3f", cipher) : "-",
              cipher > 0 ? absl::StrFormat("%.3fx", in_cpu / (in_cpu + cipher))
                         : "-",
              rounds(m.in_cpu, m.sec_cpu, "%.3f/%.3f")));
    }
    for (Server* s : {&*plain, &*secure}) {
      s->process->Signal(SIGTERM).IgnoreError();
      s->process->Wait(absl::Seconds(30)).IgnoreError();
    }
  }
  std::cout << cpu_table;
  return 0;
}

}  // namespace replay_bench
}  // namespace softq
