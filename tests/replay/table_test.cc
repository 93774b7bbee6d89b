#include "replay/table.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <limits>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "common/row_layout.h"
#include "replay/memory_limit.h"
#include "replay/shard.h"
#include "tests/replay/server_fixture.h"

namespace softq {
namespace {

using testing::CheckedId;
using testing::MakeBatch;

TEST(Table, StoresABatchWholeAndReadsItBackByKey) {
  Table table(10, 0, 0);
  absl::StatusOr<KeyRange> keys = table.Insert(MakeBatch(4, 100, 3, 2));
  ASSERT_TRUE(keys.ok()) << keys.status();
  EXPECT_EQ(keys->first_key, 0u);
  EXPECT_EQ(keys->count, 4u);
  proto::TransitionBatch out;
  ASSERT_TRUE(table.Read({3, 0, 3}, &out).ok());
  ASSERT_EQ(out.rewards_size(), 3);
  EXPECT_EQ(CheckedId(out, 0), 103);
  EXPECT_EQ(CheckedId(out, 1), 100);
  EXPECT_EQ(CheckedId(out, 2), 103);
  EXPECT_EQ(table.Info().observation_dim, 3u);
}

TEST(Table, EvictsTheOldestItemsFirstWhenFull) {
  Table table(5, 2, 2);
  ASSERT_TRUE(table.Insert(MakeBatch(3, 0)).ok());
  ASSERT_TRUE(table.Insert(MakeBatch(4, 3)).ok());  // wraps around the ring
  const TableInfo info = table.Info();
  EXPECT_EQ(info.size, 5u);
  EXPECT_EQ(info.oldest_key, 2u);
  EXPECT_EQ(info.next_key, 7u);
  EXPECT_EQ(info.inserts_total, 7u);
  EXPECT_FALSE(table.Contains(1));
  proto::TransitionBatch out;
  EXPECT_TRUE(absl::IsNotFound(table.Read({1}, &out)));
  ASSERT_TRUE(table.Read({2, 3, 4, 5, 6}, &out).ok());
  for (int i = 0; i < 5; ++i) EXPECT_EQ(CheckedId(out, i), i + 2);
  for (uint64_t slot = 0; slot < 5; ++slot) {
    EXPECT_EQ(table.SlotOfKey(table.KeyOfSlot(slot)), slot);
  }
}

TEST(Table, RejectsWrongObservationSizeAndKeepsItsContents) {
  Table table(10, 2, 2);
  ASSERT_TRUE(table.Insert(MakeBatch(2, 0)).ok());
  absl::StatusOr<KeyRange> bad = table.Insert(MakeBatch(2, 50, 3, 2));
  EXPECT_TRUE(absl::IsInvalidArgument(bad.status()));
  EXPECT_NE(bad.status().message().find("observation_dim"), std::string::npos);
  EXPECT_EQ(table.size(), 2u);
  proto::TransitionBatch out;
  ASSERT_TRUE(table.Read({0, 1}, &out).ok());
  EXPECT_EQ(CheckedId(out, 1), 1);
}

TEST(Table, RejectsANonFiniteValueWithoutStoringAnyOfTheBatch) {
  Table table(10, 2, 2);
  proto::TransitionBatch batch = MakeBatch(3, 0);
  batch.set_next_observations(5, std::numeric_limits<float>::quiet_NaN());
  absl::StatusOr<KeyRange> bad = table.Insert(batch);
  EXPECT_TRUE(absl::IsInvalidArgument(bad.status()));
  EXPECT_NE(bad.status().message().find("next_observations[5]"),
            std::string::npos);
  EXPECT_EQ(table.size(), 0u);
}

TEST(Table, RejectsABatchLargerThanItsCapacity) {
  Table table(3, 2, 2);
  EXPECT_TRUE(absl::IsInvalidArgument(table.Insert(MakeBatch(4, 0)).status()));
  EXPECT_EQ(table.size(), 0u);
}

TEST(Table, CountsInsertsPerActorAndAllocatesOnce) {
  Table table(100, 2, 2);
  const uint64_t bytes = table.Info().storage_bytes;
  // A row of 2 + 2 + 1 + 2 floats and the done flag as a float.
  EXPECT_EQ(bytes, 100u * 8 * sizeof(float));
  ASSERT_TRUE(table.Insert(MakeBatch(3, 0, 2, 2, /*actor_id=*/7)).ok());
  ASSERT_TRUE(table.Insert(MakeBatch(2, 3, 2, 2, /*actor_id=*/9)).ok());
  ASSERT_TRUE(table.Insert(MakeBatch(1, 5, 2, 2, /*actor_id=*/7)).ok());
  const TableInfo info = table.Info();
  const ActorCounts actors = table.Actors();
  EXPECT_EQ(actors.tracked.at(7), 4u);
  EXPECT_EQ(actors.tracked.at(9), 2u);
  EXPECT_EQ(actors.other, 0u);
  EXPECT_EQ(info.storage_bytes, bytes);
}

TEST(Table, CountsActorsOneByOneUpToItsBoundAndTheRestTogether) {
  Table table(1000, 2, 2);
  table.SetMaxTrackedActors(3);
  for (uint32_t actor : {50u, 10u, 30u, 20u, 40u, 10u, 20u}) {
    ASSERT_TRUE(table.Insert(MakeBatch(2, 0, 2, 2, actor)).ok());
  }
  ActorCounts actors = table.Actors();
  // The first three ids seen, one by one; 20 and 40 together (6 transitions).
  EXPECT_EQ(actors.tracked,
            (std::map<uint32_t, uint64_t>{{10, 4}, {30, 2}, {50, 2}}));
  EXPECT_EQ(actors.other, 6u);
  // A lower bound folds the highest ids into the rest.
  table.SetMaxTrackedActors(1);
  actors = table.Actors();
  EXPECT_EQ(actors.tracked, (std::map<uint32_t, uint64_t>{{10, 4}}));
  EXPECT_EQ(actors.other, 10u);
  EXPECT_EQ(table.Info().inserts_total, 14u);
}

// 200k distinct actor ids made every Sample copy 200k counts under the lock
// (0.13 -> 14.7 ms, issue 29): the counts are bounded and Sample copies none.
TEST(Shard, SampleTimeDoesNotGrowWithTheNumberOfActors) {
  ShardOptions options;
  options.capacity = 1000;
  absl::StatusOr<std::unique_ptr<Shard>> shard = Shard::Create(options);
  ASSERT_TRUE(shard.ok()) << shard.status();
  const google::protobuf::RepeatedField<float> none;
  proto::TransitionBatch batch = MakeBatch(1, 0);
  for (uint32_t actor = 0; actor < 200000; ++actor) {
    batch.set_actor_id(actor);
    ASSERT_TRUE((*shard)->Insert(batch, none, absl::InfiniteFuture()).ok());
  }
  std::vector<double> ms;
  for (int i = 0; i < 51; ++i) {
    proto::SampleResponse out;
    const absl::Time start = absl::Now();
    ASSERT_TRUE(
        (*shard)->Sample(1, absl::InfiniteFuture(), nullptr, &out).ok());
    ms.push_back(absl::ToDoubleMilliseconds(absl::Now() - start));
  }
  std::sort(ms.begin(), ms.end());
  EXPECT_LT(ms[25], 1.0) << "median Sample time in ms";
  proto::ShardStats stats;
  (*shard)->Stats(&stats);
  EXPECT_EQ(stats.per_actor_size(), static_cast<int>(kDefaultTrackedActors));
  EXPECT_EQ(stats.other_actors_inserted(), 200000 - kDefaultTrackedActors);
  EXPECT_EQ(stats.max_tracked_actors(), kDefaultTrackedActors);
  // Without the per-actor list (the metrics refresh): the other count only.
  proto::ShardStats brief;
  (*shard)->Stats(&brief, /*per_actor=*/false);
  EXPECT_EQ(brief.per_actor_size(), 0);
  EXPECT_EQ(brief.other_actors_inserted(), 200000 - kDefaultTrackedActors);
}

// This process's resident memory, from /proc/self/statm.
int64_t ResidentBytes() {
  std::ifstream statm("/proc/self/statm");
  int64_t total_pages = 0, resident_pages = 0;
  statm >> total_pages >> resident_pages;
  return resident_pages * sysconf(_SC_PAGESIZE);
}

TEST(Table, CommitsMemoryAsItFillsNotWhenCreated) {
  const int64_t before = ResidentBytes();
  Table table(1'000'000, 32,
              8);  // 1e6 x (2 x 32 + 8 + 1) floats: 293 MB reserved
  ASSERT_TRUE(table.Insert(MakeBatch(4, 0, 32, 8)).ok());
  EXPECT_GT(table.Info().storage_bytes, 290'000'000u);
  EXPECT_LT(ResidentBytes() - before, 64 << 20);
  proto::TransitionBatch out;
  ASSERT_TRUE(table.Read({3}, &out).ok());
  EXPECT_EQ(CheckedId(out, 0), 3);
}

TEST(Table, RefusesStorageBeyondTheProcessMemoryNamingTheSizesAndTheLimit) {
  const absl::Status fits = Table::CheckStorageFits(100'000, 100, 2);  // 81 MB
  EXPECT_TRUE(fits.ok()) << fits;
  const absl::Status too_big =
      Table::CheckStorageFits(1'000'000'000'000, 100, 2);
  EXPECT_TRUE(absl::IsResourceExhausted(too_big)) << too_big;
  EXPECT_NE(too_big.message().find("capacity 1000000000000"), std::string::npos)
      << too_big;
  EXPECT_NE(too_big.message().find(ProcessMemoryLimit().source),
            std::string::npos)
      << too_big;
  // No overflow: capacity x bytes per item beyond 2^64 is refused too.
  EXPECT_TRUE(absl::IsResourceExhausted(
      Table::CheckStorageFits(UINT64_MAX / 8, 100, 2)));

  // Create refuses such a table up front; one that fits has its sizes at once.
  const absl::StatusOr<std::unique_ptr<Table>> refused_table =
      Table::Create(1'000'000'000'000, 100, 2);
  EXPECT_TRUE(absl::IsResourceExhausted(refused_table.status()))
      << refused_table.status();
  const absl::StatusOr<std::unique_ptr<Table>> created =
      Table::Create(1000, 100, 2);
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_EQ((*created)->Info().observation_dim, 100u);

  // A table whose sizes come with its first insert refuses that insert and
  // keeps serving.
  Table table(1'000'000'000'000, 0, 0);
  const absl::StatusOr<KeyRange> refused =
      table.Insert(MakeBatch(2, 0, 100, 2));
  EXPECT_TRUE(absl::IsResourceExhausted(refused.status())) << refused.status();
  EXPECT_EQ(table.size(), 0u);
  EXPECT_EQ(table.Info().observation_dim, 0u);
}

// A cgroup limit file in the test's temporary directory, holding `contents`.
std::string CgroupFile(const std::string& name, const std::string& contents) {
  const std::string path = std::string(std::getenv("TEST_TMPDIR")) + "/" + name;
  std::ofstream(path) << contents;
  return path;
}

// A capacity whose table (observation and action of size 1: 17 bytes per item)
// takes ~42% of this process's memory limit and a prioritized sampler (36 bytes
// per item) ~90%: each fits alone, both do not.
uint64_t CapacityFittingTableAndSamplerOnlyAlone() {
  return ProcessMemoryLimit().bytes / 40;
}

TEST(Table, CountsTheMemoryKeptBesideItPerItem) {
  const uint64_t capacity = CapacityFittingTableAndSamplerOnlyAlone();
  EXPECT_TRUE(Table::CheckStorageFits(capacity, 1, 1).ok());
  const absl::Status both =
      Table::CheckStorageFits(capacity, 1, 1, /*ids=*/false, 36);
  EXPECT_TRUE(absl::IsResourceExhausted(both)) << both;
  EXPECT_NE(both.message().find("36 bytes per item beside it"),
            std::string::npos)
      << both;

  // A table sized by its first insert counts them there, refusing the insert.
  Table table(capacity, 0, 0, /*first_key=*/0, /*bytes_beside_per_item=*/36);
  const absl::StatusOr<KeyRange> refused = table.Insert(MakeBatch(2, 0, 1, 1));
  EXPECT_TRUE(absl::IsResourceExhausted(refused.status())) << refused.status();
  EXPECT_EQ(table.size(), 0u);
}

TEST(ShardCreate, RefusesATableAndPrioritizedSamplerThatFitOnlyAlone) {
  ShardOptions options;
  options.capacity = CapacityFittingTableAndSamplerOnlyAlone();
  options.observation_dim = 1;
  options.action_dim = 1;
  options.sampler = "prioritized";
  // Refused before either is allocated (this would otherwise commit ~90% of the
  // memory).
  const absl::StatusOr<std::unique_ptr<Shard>> shard = Shard::Create(options);
  ASSERT_FALSE(shard.ok());
  EXPECT_TRUE(absl::IsResourceExhausted(shard.status())) << shard.status();
  EXPECT_EQ(shard.status().message().find("--capacity="), 0u) << shard.status();
}

TEST(MemoryLimit, ReadsACgroupLimitAndIgnoresUnlimitedOrMissingOnes) {
  EXPECT_EQ(ReadCgroupMemoryLimit(CgroupFile("v2", "536870912\n")),
            uint64_t{536870912});
  EXPECT_EQ(ReadCgroupMemoryLimit(CgroupFile("v2_max", "max\n")), std::nullopt);
  EXPECT_EQ(ReadCgroupMemoryLimit(
                CgroupFile("v1_unlimited", "9223372036854771712\n")),
            std::nullopt);
  EXPECT_EQ(ReadCgroupMemoryLimit(std::string(std::getenv("TEST_TMPDIR")) +
                                  "/absent"),
            std::nullopt);
  const MemoryLimit limit = ProcessMemoryLimit();
  EXPECT_GT(limit.bytes,
            uint64_t{1} << 28);  // any machine that runs these tests
  EXPECT_FALSE(limit.source.empty());
}

TEST(Table, KeepsEpisodeAndStepIdsWhenSent) {
  Table table(4, 2, 2);
  proto::TransitionBatch batch = MakeBatch(2, 0);
  batch.add_episode_ids(11);
  batch.add_episode_ids(12);
  batch.add_step_ids(0);
  batch.add_step_ids(1);
  ASSERT_TRUE(table.Insert(batch).ok());
  proto::TransitionBatch out;
  ASSERT_TRUE(table.Read({1}, &out).ok());
  ASSERT_EQ(out.episode_ids_size(), 1);
  EXPECT_EQ(out.episode_ids(0), 12u);
  EXPECT_EQ(out.step_ids(0), 1u);
}

TEST(Table, ReadsRowsWholeAsItStoresThemAndTheirIds) {
  Table table(4, 3, 2);
  ASSERT_TRUE(table.Insert(MakeBatch(2, 100, 3, 2)).ok());  // keys 0, 1
  proto::TransitionBatch batch = MakeBatch(4, 102, 3, 2);   // keys 2..5
  for (int i = 2; i < 6; ++i) {
    batch.add_episode_ids(50 + i);
    batch.add_step_ids(i);
  }
  ASSERT_TRUE(table.Insert(batch).ok());  // 0 and 1 evicted
  const RowLayout layout(3, 2);
  const std::vector<uint64_t> keys = {5, 2, 5};
  std::vector<float> rows(keys.size() * layout.width());
  std::vector<uint64_t> episodes(keys.size());
  std::vector<uint32_t> steps(keys.size());
  ASSERT_TRUE(table
                  .ReadRows(keys, reinterpret_cast<char*>(rows.data()),
                            reinterpret_cast<char*>(episodes.data()),
                            reinterpret_cast<char*>(steps.data()))
                  .ok());
  std::vector<float> expected(layout.width());
  for (size_t i = 0; i < keys.size(); ++i) {
    PackRow(batch, static_cast<int64_t>(keys[i]) - 2, layout, expected.data());
    EXPECT_EQ(std::vector<float>(rows.begin() + i * layout.width(),
                                 rows.begin() + (i + 1) * layout.width()),
              expected)
        << "key " << keys[i];
    EXPECT_EQ(episodes[i], 50 + keys[i]);
    EXPECT_EQ(steps[i], keys[i]);
  }
  // A key evicted, or no room for the ids it stores: refused, nothing written.
  std::vector<float> untouched(layout.width(), -7.0f);
  const absl::Status evicted =
      table.ReadRows({1}, reinterpret_cast<char*>(untouched.data()),
                     reinterpret_cast<char*>(episodes.data()),
                     reinterpret_cast<char*>(steps.data()));
  EXPECT_TRUE(absl::IsNotFound(evicted)) << evicted;
  const absl::Status no_room = table.ReadRows(
      {2}, reinterpret_cast<char*>(untouched.data()), nullptr, nullptr);
  EXPECT_TRUE(absl::IsFailedPrecondition(no_room)) << no_room;
  EXPECT_EQ(untouched, std::vector<float>(layout.width(), -7.0f));
}

// Reads share the table's lock: a read goes on while another holds it (the
// shard's concurrent Samples copy their rows side by side), and an insert
// waits for both.
TEST(Table, ReadsShareTheLockAndAnInsertWaitsForThem) {
  Table table(10, 0, 0);
  ASSERT_TRUE(table.Insert(MakeBatch(4, 100)).ok());
  absl::Notification held, release, second_read, inserted;
  std::thread first([&] {
    proto::TransitionBatch out;
    EXPECT_TRUE(table
                    .Read({0}, &out,
                          [&] {
                            held.Notify();
                            release.WaitForNotification();
                          })
                    .ok());
  });
  held.WaitForNotification();
  std::thread second([&] {
    proto::TransitionBatch out;
    EXPECT_TRUE(table.Read({1, 2}, &out).ok());
    EXPECT_EQ(out.rewards_size(), 2);
    second_read.Notify();
  });
  EXPECT_TRUE(second_read.WaitForNotificationWithTimeout(absl::Seconds(30)))
      << "a read waited for another read";
  std::thread writer([&] {
    EXPECT_TRUE(table.Insert(MakeBatch(1, 200)).ok());
    inserted.Notify();
  });
  EXPECT_FALSE(inserted.WaitForNotificationWithTimeout(absl::Milliseconds(200)))
      << "an insert went on while a read held the table";
  release.Notify();
  first.join();
  second.join();
  writer.join();
  EXPECT_EQ(table.size(), 5u);
}

}  // namespace
}  // namespace softq
