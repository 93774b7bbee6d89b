// replay_bench --mode=shard_sample: Shard::SamplePacked in this process, no
// RPC, from 1, 2 and 4 threads.
#include <algorithm>
#include <atomic>
#include <iostream>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "bench/replay/bench_support.h"
#include "replay/replay_sampler.h"
#include "replay/shard.h"

namespace softq {
namespace replay_bench {

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

}  // namespace replay_bench
}  // namespace softq
