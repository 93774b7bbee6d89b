// replay_bench --mode=checkpoint_stall: the longest insert and sample during a
// checkpoint of a full in-process shard, against the same calls without one.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <random>
#include <string>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "bench/replay/bench_support.h"
#include "replay/shard.h"

namespace softq {
namespace replay_bench {

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

}  // namespace replay_bench
}  // namespace softq
