// The learner's batch source over a real shard process: decoded batches of what
// the shard holds, the transitions counted, and the time spent waiting for the
// replay.
#include "learner/replay_batch_source.h"

#include <gtest/gtest.h>

#include <memory>

#include "absl/time/clock.h"
#include "replay/replay_channel.h"
#include "replay/replay_sampler.h"
#include "replay/replay_writer.h"
#include "tests/replay/server_fixture.h"

namespace softq {
namespace {

using testing::MakeBatch;
using testing::ServerProcess;
using testing::StartServer;

struct Source {
  ServerProcess shard;
  std::unique_ptr<ReplaySampler> sampler;
  std::unique_ptr<ReplayBatchSource> source;
};

// A source of batches of 16 over one shard holding `transitions` (MakeBatch's
// ids 0..).
std::unique_ptr<Source> StartSource(int transitions) {
  absl::StatusOr<ServerProcess> shard = StartServer({"--capacity=1000"});
  EXPECT_TRUE(shard.ok()) << shard.status();
  if (!shard.ok()) return nullptr;
  auto s = std::make_unique<Source>();
  s->shard = *std::move(shard);
  ReplayClientOptions options;
  options.addresses = {s->shard.address};
  if (transitions > 0) {
    std::unique_ptr<ReplayWriter> writer = *ReplayWriter::Create(options);
    EXPECT_TRUE(writer->Insert(MakeBatch(transitions, 0)).ok());
    EXPECT_TRUE(writer->Flush(absl::Seconds(10)).ok());
  }
  s->sampler =
      *ReplaySampler::Create(options, /*batch_size=*/16, /*prefetch=*/2);
  s->source = std::make_unique<ReplayBatchSource>(s->sampler.get(),
                                                  /*pin_memory=*/false);
  return s;
}

TEST(ReplayBatchSource, CountsTheTimeItWaitsOnAnEmptyReplay) {
  std::unique_ptr<Source> s = StartSource(0);
  ASSERT_NE(s, nullptr);
  const absl::Duration timeout = absl::Milliseconds(300);
  EXPECT_TRUE(absl::IsDeadlineExceeded(s->source->Next(timeout).status()));
  EXPECT_GE(s->source->waited(), timeout);
  EXPECT_EQ(s->source->sampled(), 0);
}

TEST(ReplayBatchSource, HandsOutPrefetchedBatchesWithoutWaiting) {
  std::unique_ptr<Source> s = StartSource(100);
  ASSERT_NE(s, nullptr);
  absl::StatusOr<TransitionTensors> first = s->source->Next(absl::Seconds(20));
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->rewards.size(0), 16);
  EXPECT_EQ(first->observations.size(0), 16);
  EXPECT_TRUE(first->packed.defined());
  EXPECT_EQ(s->source->sampled(), 16);

  absl::SleepFor(
      absl::Milliseconds(500));  // the sampler refills its prefetch meanwhile
  const absl::Duration before = s->source->waited();
  ASSERT_TRUE(s->source->Next(absl::Seconds(20)).ok());
  EXPECT_LT(s->source->waited() - before, absl::Milliseconds(250));
  EXPECT_EQ(s->source->sampled(), 32);
}

}  // namespace
}  // namespace softq
