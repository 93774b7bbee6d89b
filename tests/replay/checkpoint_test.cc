#include "replay/checkpoint.h"

#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <sstream>

#include "replay/crc32.h"
#include "replay/memory_limit.h"
#include "replay/sampler.h"
#include "replay/shard.h"
#include "tests/replay/server_fixture.h"

namespace softq {
namespace {

using testing::MakeBatch;
using testing::ReadFile;
using testing::WriteFile;

std::unique_ptr<Shard> FilledShard(const std::string& sampler) {
  ShardOptions options;
  options.capacity = 8;
  options.sampler = sampler;
  std::unique_ptr<Shard> shard = *Shard::Create(options);
  google::protobuf::RepeatedField<float> none;
  google::protobuf::RepeatedField<float> priorities;
  for (int i = 0; i < 5; ++i) priorities.Add(1.0f + i);
  EXPECT_TRUE(
      shard
          ->Insert(MakeBatch(5, 0, 2, 2, 3), priorities, absl::InfiniteFuture())
          .ok());
  EXPECT_TRUE(
      shard->Insert(MakeBatch(6, 5, 2, 2, 4), none, absl::InfiniteFuture())
          .ok());
  return shard;
}

TEST(Crc32, MatchesTheStandardCheckValueAndComposes) {
  EXPECT_EQ(Crc32(0, "123456789", 9), 0xCBF43926u);
  EXPECT_EQ(Crc32(Crc32(0, "12345", 5), "6789", 4), 0xCBF43926u);
}

TEST(Crc32c, MatchesTheStandardCheckValueAndComposes) {
  EXPECT_EQ(Crc32c(0, "123456789", 9), 0xE3069283u);
  EXPECT_EQ(Crc32c(Crc32c(0, "12345", 5), "6789", 4), 0xE3069283u);
  // Pieces of every alignment and length give the checksum of the whole.
  std::string data(4099, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 37);
  const uint32_t whole = Crc32c(0, data.data(), data.size());
  for (size_t cut :
       {size_t{1}, size_t{7}, size_t{8}, size_t{13}, size_t{4096}}) {
    EXPECT_EQ(Crc32c(Crc32c(0, data.data(), cut), data.data() + cut,
                     data.size() - cut),
              whole)
        << cut;
  }
  EXPECT_NE(whole, Crc32(0, data.data(), data.size()));
}

TEST(Checkpoint, RestoresIdenticalContentsCountersAndPriorities) {
  const std::string path = testing::TempDir("ckpt_roundtrip") + "/a.ckpt";
  std::unique_ptr<Shard> shard = FilledShard("prioritized");
  absl::StatusOr<CheckpointWritten> written = shard->Checkpoint(path);
  ASSERT_TRUE(written.ok()) << written.status();
  EXPECT_EQ(written->items, 8u);
  ShardOptions options = shard->options();
  absl::StatusOr<std::unique_ptr<Shard>> restored =
      Shard::Restore(options, path);
  ASSERT_TRUE(restored.ok()) << restored.status();
  const TableInfo a = shard->table().Info(), b = (*restored)->table().Info();
  EXPECT_EQ(a.oldest_key, b.oldest_key);
  EXPECT_EQ(a.next_key, b.next_key);
  EXPECT_EQ(a.inserts_total, b.inserts_total);
  EXPECT_EQ(shard->table().Actors().tracked,
            (*restored)->table().Actors().tracked);
  // Writing the restored shard gives the same bytes: same items, priorities and
  // counters.
  const std::string again = testing::TempDir("ckpt_roundtrip") + "/b.ckpt";
  ASSERT_TRUE((*restored)->Checkpoint(again).ok());
  EXPECT_EQ(ReadFile(path), ReadFile(again));
}

// The writer and the reader agree on the actor limit (kMaxTrackedActors): a
// table at the limit, plus its `other` count, is written and read back; one
// beyond it is refused when writing, not when reading (issue 29: the writer
// took more actors than its reader, 2^24).
TEST(Checkpoint, WritesAndReadsBackATableAtTheActorLimit) {
  const std::string path = testing::TempDir("ckpt_actor_limit") + "/a.ckpt";
  Table table(10, 2, 2);
  ASSERT_TRUE(table.Insert(MakeBatch(4, 0)).ok());
  ActorCounts actors;
  for (uint32_t id = 0; id < kMaxTrackedActors; ++id) {
    actors.tracked.emplace_hint(actors.tracked.end(), id * 2, id + 1);
  }
  actors.other = 77;
  table.SetMaxTrackedActors(kMaxTrackedActors);
  table.SetCounters(4, actors);
  std::unique_ptr<Sampler> sampler = *MakeSampler("uniform", 10, 0.6);
  absl::StatusOr<CheckpointWritten> written =
      WriteCheckpoint(path, table, *sampler, 0);
  ASSERT_TRUE(written.ok()) << written.status();
  absl::StatusOr<RestoredTable> read = ReadCheckpoint(path, {10, 2, 2, 0});
  ASSERT_TRUE(read.ok()) << read.status();
  const ActorCounts counts = read->table->Actors();
  EXPECT_EQ(counts.tracked.size(), kMaxTrackedActors);
  EXPECT_TRUE(counts.tracked == actors.tracked);
  EXPECT_EQ(counts.other, 77u);
}

TEST(Checkpoint, RefusesAtWriteTimeATableBeyondTheActorLimit) {
  const std::string path = testing::TempDir("ckpt_actor_over") + "/a.ckpt";
  Table table(10, 2, 2);
  ASSERT_TRUE(table.Insert(MakeBatch(4, 0)).ok());
  std::unique_ptr<Sampler> sampler = *MakeSampler("uniform", 10, 0.6);
  ASSERT_TRUE(WriteCheckpoint(path, table, *sampler, 0).ok());
  const std::string good = ReadFile(path);
  ActorCounts actors;
  for (uint32_t id = 0; id <= kMaxTrackedActors; ++id) {
    actors.tracked.emplace_hint(actors.tracked.end(), id, 1);
  }
  table.SetCounters(4, actors);
  absl::StatusOr<CheckpointWritten> written =
      WriteCheckpoint(path, table, *sampler, 0);
  ASSERT_FALSE(written.ok()) << "written, and then its reader refuses it: "
                             << ReadCheckpoint(path, {10, 2, 2, 0}).status();
  EXPECT_EQ(written.status().code(), absl::StatusCode::kFailedPrecondition)
      << written.status();
  EXPECT_NE(written.status().message().find("1048577 actor ids"),
            std::string::npos)
      << written.status();
  // Nothing written: the earlier checkpoint is intact, no temporary file left.
  EXPECT_EQ(ReadFile(path), good);
  EXPECT_EQ(ReadFile(path + ".tmp"), "");
}

TEST(Checkpoint, RefusesATruncatedFile) {
  const std::string path = testing::TempDir("ckpt_truncated") + "/a.ckpt";
  ASSERT_TRUE(FilledShard("uniform")->Checkpoint(path).ok());
  const std::string data = ReadFile(path);
  for (size_t keep :
       {size_t{0}, size_t{10}, data.size() / 2, data.size() - 1}) {
    WriteFile(path, data.substr(0, keep));
    absl::StatusOr<RestoredTable> r = ReadCheckpoint(path, {8});
    EXPECT_TRUE(absl::IsDataLoss(r.status())) << keep << ": " << r.status();
    EXPECT_NE(r.status().message().find("truncated"), std::string::npos)
        << r.status();
  }
}

TEST(Checkpoint, RefusesAFileWithAFlippedByte) {
  const std::string path = testing::TempDir("ckpt_corrupt") + "/a.ckpt";
  ASSERT_TRUE(FilledShard("uniform")->Checkpoint(path).ok());
  const std::string data = ReadFile(path);
  for (size_t at :
       {size_t{3}, size_t{100}, data.size() - 20, data.size() - 2}) {
    std::string bad = data;
    bad[at] ^= 0x10;
    WriteFile(path, bad);
    absl::StatusOr<RestoredTable> r = ReadCheckpoint(path, {8});
    EXPECT_TRUE(absl::IsDataLoss(r.status())) << at << ": " << r.status();
  }
}

// The bytes of a small checkpoint (capacity 8, dimensions 2 and 2, keys [0, 5),
// not wrapped) written at `path`.
std::string SmallCheckpoint(const std::string& path) {
  ShardOptions options;
  options.capacity = 8;
  std::unique_ptr<Shard> shard = *Shard::Create(options);
  EXPECT_TRUE(
      shard->Insert(MakeBatch(5, 0, 2, 2, 3), {}, absl::InfiniteFuture()).ok());
  EXPECT_TRUE(shard->Checkpoint(path).ok());
  return ReadFile(path);
}

// `data` with `n` bytes at `offset` (header: magic 8, version, dims, flags 4
// each, then capacity 8) replaced by `value` and its checksum made right again.
std::string WithHeaderField(const std::string& data, size_t offset,
                            const void* value, size_t n) {
  std::string edited = data;
  std::memcpy(&edited[offset], value, n);
  const uint32_t crc = Crc32(0, edited.data(), edited.size() - 4);
  std::memcpy(&edited[edited.size() - 4], &crc, 4);
  return edited;
}

TEST(Checkpoint, AHeaderNamingAnotherTableIsRefusedBeforeAllocatingIt) {
  // Capacity 2^40 (and then dimensions 4096 x 256) with the checksum made
  // right: the reader must not try to allocate that table.
  const std::string path = testing::TempDir("ckpt_huge") + "/a.ckpt";
  const std::string data = SmallCheckpoint(path);
  const uint64_t huge = uint64_t{1} << 40;
  WriteFile(path, WithHeaderField(data, 24, &huge, 8));
  absl::StatusOr<RestoredTable> r = ReadCheckpoint(path, {8});
  EXPECT_TRUE(absl::IsInvalidArgument(r.status())) << r.status();
  EXPECT_NE(r.status().message().find("capacity 1099511627776"),
            std::string::npos)
      << r.status();

  const uint32_t dims[2] = {4096, 256};
  WriteFile(path, WithHeaderField(data, 12, dims, 8));
  r = ReadCheckpoint(path, {8, 2, 2});
  EXPECT_TRUE(absl::IsInvalidArgument(r.status())) << r.status();
  EXPECT_NE(r.status().message().find("observation_dim 4096"),
            std::string::npos)
      << r.status();
}

TEST(Checkpoint,
     ATableThatFitsOnlyWithoutItsSamplerIsRefusedBeforeAllocatingIt) {
  // The header says capacity limit / 40: the table (2 + 2 + 2 + 1 floats and a
  // byte: 29 bytes per item) fits alone, but not with a prioritized sampler's
  // 36 bytes per item.
  const std::string path = testing::TempDir("ckpt_sampler") + "/a.ckpt";
  const uint64_t capacity = ProcessMemoryLimit().bytes / 40;
  WriteFile(path, WithHeaderField(SmallCheckpoint(path), 24, &capacity, 8));
  ASSERT_TRUE(Table::CheckStorageFits(capacity, 2, 2).ok());
  const absl::StatusOr<RestoredTable> r = ReadCheckpoint(
      path, {capacity, 0, 0, SamplerBytesPerItem("prioritized")});
  EXPECT_TRUE(absl::IsResourceExhausted(r.status())) << r.status();
  EXPECT_NE(r.status().message().find("beside"), std::string::npos)
      << r.status();
}

TEST(Checkpoint, ReportsAMissingFileAsNotFound) {
  EXPECT_TRUE(absl::IsNotFound(
      ReadCheckpoint("/nonexistent/replay.ckpt", {8}).status()));
}

}  // namespace
}  // namespace softq
