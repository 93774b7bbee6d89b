// A durable shard (Shard::Open): what it restores is its checkpoint plus the
// inserts logged after it, with the keys, counters and priorities they had; a
// checkpoint empties the log; a log that does not continue the checkpoint is
// refused; with DurabilityOptions.log.fsync (replay_server --wal_fsync) each
// insert is fdatasync'ed in the log before Insert returns.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>

#include "replay/checkpoint.h"
#include "replay/crc32.h"
#include "replay/insert_log.h"
#include "replay/shard.h"
#include "tests/replay/fdatasync_spy.h"
#include "tests/replay/server_fixture.h"

namespace softq {
namespace {

using testing::MakeBatch;
using testing::ReadFile;
using testing::WriteFile;

bool Exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

ShardOptions Options(const std::string& sampler) {
  ShardOptions options;
  options.shard_id = "d";
  options.capacity = 20;
  options.sampler = sampler;
  return options;
}

DurabilityOptions Durability(const std::string& dir) {
  DurabilityOptions d;
  d.checkpoint_path = CheckpointPath(dir, "d");
  d.log_path = InsertLogPath(dir, "d");
  return d;
}

// Inserts `n` transitions with ids from `first_id` as actor `actor`, with
// explicit priorities when `prioritized`.
void Insert(Shard* shard, int n, int first_id, uint32_t actor,
            bool with_priorities) {
  google::protobuf::RepeatedField<float> priorities;
  if (with_priorities) {
    for (int i = 0; i < n; ++i) priorities.Add(0.5f + first_id + i);
  }
  absl::StatusOr<KeyRange> keys = shard->Insert(
      MakeBatch(n, first_id, 3, 2, actor), priorities, absl::InfiniteFuture());
  ASSERT_TRUE(keys.ok()) << keys.status();
  ASSERT_EQ(keys->first_key, static_cast<uint64_t>(first_id));
}

// A checkpoint written elsewhere (the log stays as it is): the whole state
// as bytes.
std::string Snapshot(Shard* shard, const std::string& dir,
                     const std::string& name) {
  const std::string path = dir + "/" + name + ".ckpt";
  EXPECT_TRUE(shard->Checkpoint(path).ok());
  return ReadFile(path);
}

TEST(DurableShard, RestoresTheCheckpointPlusTheLoggedInserts) {
  for (const char* sampler_name : {"uniform", "prioritized"}) {
    const std::string sampler = sampler_name;
    const std::string dir = testing::TempDir("durable_" + sampler);
    ShardRecovery recovery;
    absl::StatusOr<std::unique_ptr<Shard>> shard =
        Shard::Open(Options(sampler), Durability(dir), &recovery);
    ASSERT_TRUE(shard.ok()) << shard.status();
    EXPECT_FALSE(recovery.checkpoint_found);
    Insert(shard->get(), 8, 0, 1, true);
    Insert(shard->get(), 5, 8, 2, false);
    ASSERT_TRUE((*shard)->Checkpoint(Durability(dir).checkpoint_path).ok());
    // After the checkpoint: default and explicit priorities, two actors, and
    // enough to wrap the ring (capacity 20, 31 inserted).
    Insert(shard->get(), 6, 13, 1, false);
    Insert(shard->get(), 7, 19, 2, true);
    Insert(shard->get(), 5, 26, 1, false);
    const std::string expected = Snapshot(shard->get(), dir, "before_kill");
    const TableInfo before = (*shard)->table().Info();
    const ActorCounts before_actors = (*shard)->table().Actors();
    shard->reset();  // as kill -9: no shutdown checkpoint

    absl::StatusOr<std::unique_ptr<Shard>> again =
        Shard::Open(Options(sampler), Durability(dir), &recovery);
    ASSERT_TRUE(again.ok()) << again.status();
    EXPECT_TRUE(recovery.checkpoint_found);
    EXPECT_EQ(recovery.checkpoint_items, 13u);
    EXPECT_EQ(recovery.records_replayed, 3u);
    EXPECT_EQ(recovery.transitions_replayed, 18u);
    EXPECT_EQ(recovery.records_skipped, 0u);
    EXPECT_EQ(recovery.log.torn_bytes, 0u);
    const TableInfo after = (*again)->table().Info();
    EXPECT_EQ(after.next_key, before.next_key);
    EXPECT_EQ(after.oldest_key, before.oldest_key);
    EXPECT_EQ((*again)->table().Actors().tracked, before_actors.tracked);
    // Items, keys, counters and priorities: byte-identical checkpoints.
    EXPECT_EQ(Snapshot(again->get(), dir, "after_restart"), expected)
        << sampler;
    // It goes on from the next key, and logs that too.
    Insert(again->get(), 2, 31, 3, false);
    const std::string expected2 = Snapshot(again->get(), dir, "before_kill2");
    again->reset();
    again = Shard::Open(Options(sampler), Durability(dir), &recovery);
    ASSERT_TRUE(again.ok()) << again.status();
    EXPECT_EQ(recovery.records_replayed, 4u);
    EXPECT_EQ(Snapshot(again->get(), dir, "after_restart2"), expected2);
  }
}

TEST(DurableShard, WithoutACheckpointTheLogAloneRestores) {
  const std::string dir = testing::TempDir("durable_log_only");
  absl::StatusOr<std::unique_ptr<Shard>> shard =
      Shard::Open(Options("prioritized"), Durability(dir), nullptr);
  ASSERT_TRUE(shard.ok()) << shard.status();
  Insert(shard->get(), 4, 0, 1, false);
  Insert(shard->get(), 4, 4, 1, true);
  const std::string expected = Snapshot(shard->get(), dir, "before_kill");
  shard->reset();
  EXPECT_FALSE(Exists(Durability(dir).checkpoint_path));
  ShardRecovery recovery;
  shard = Shard::Open(Options("prioritized"), Durability(dir), &recovery);
  ASSERT_TRUE(shard.ok()) << shard.status();
  EXPECT_FALSE(recovery.checkpoint_found);
  EXPECT_EQ(recovery.transitions_replayed, 8u);
  EXPECT_EQ(Snapshot(shard->get(), dir, "after_restart"), expected);
}

TEST(DurableShard, ACheckpointEmptiesTheLog) {
  const std::string dir = testing::TempDir("durable_truncate");
  const DurabilityOptions d = Durability(dir);
  absl::StatusOr<std::unique_ptr<Shard>> shard =
      Shard::Open(Options("uniform"), d, nullptr);
  ASSERT_TRUE(shard.ok()) << shard.status();
  const size_t empty = ReadFile(d.log_path).size();
  Insert(shard->get(), 10, 0, 1, false);
  EXPECT_GT(ReadFile(d.log_path).size(), empty);
  // A checkpoint to another path leaves the log alone.
  Snapshot(shard->get(), dir, "elsewhere");
  EXPECT_GT(ReadFile(d.log_path).size(), empty);
  ASSERT_TRUE((*shard)->Checkpoint(d.checkpoint_path).ok());
  EXPECT_EQ(ReadFile(d.log_path).size(), empty);
  shard->reset();
  ShardRecovery recovery;
  shard = Shard::Open(Options("uniform"), d, &recovery);
  ASSERT_TRUE(shard.ok()) << shard.status();
  EXPECT_EQ(recovery.checkpoint_items, 10u);
  EXPECT_EQ(recovery.log.records, 0u);
  EXPECT_EQ((*shard)->table().size(), 10u);
}

TEST(DurableShard, LoggedInsertsTheCheckpointHoldsAreSkipped) {
  // A kill between the checkpoint's rename and the log's reset leaves both.
  const std::string dir = testing::TempDir("durable_skip");
  const DurabilityOptions d = Durability(dir);
  absl::StatusOr<std::unique_ptr<Shard>> shard =
      Shard::Open(Options("prioritized"), d, nullptr);
  ASSERT_TRUE(shard.ok()) << shard.status();
  Insert(shard->get(), 6, 0, 1, true);
  Insert(shard->get(), 6, 6, 1, false);
  const std::string old_log = ReadFile(d.log_path);
  ASSERT_TRUE((*shard)->Checkpoint(d.checkpoint_path).ok());
  const std::string expected = Snapshot(shard->get(), dir, "checkpointed");
  shard->reset();
  WriteFile(d.log_path, old_log);
  ShardRecovery recovery;
  shard = Shard::Open(Options("prioritized"), d, &recovery);
  ASSERT_TRUE(shard.ok()) << shard.status();
  EXPECT_EQ(recovery.records_skipped, 2u);
  EXPECT_EQ(recovery.records_replayed, 0u);
  EXPECT_EQ(Snapshot(shard->get(), dir, "restarted"), expected);
}

TEST(DurableShard, ALogThatDoesNotContinueTheCheckpointIsDataLoss) {
  const std::string dir = testing::TempDir("durable_gap");
  const DurabilityOptions d = Durability(dir);
  absl::StatusOr<std::unique_ptr<Shard>> shard =
      Shard::Open(Options("uniform"), d, nullptr);
  ASSERT_TRUE(shard.ok()) << shard.status();
  Insert(shard->get(), 5, 0, 1, false);
  ASSERT_TRUE((*shard)->Checkpoint(d.checkpoint_path).ok());
  const std::string first_checkpoint = ReadFile(d.checkpoint_path);
  Insert(shard->get(), 5, 5, 1, false);
  ASSERT_TRUE((*shard)->Checkpoint(d.checkpoint_path).ok());
  Insert(shard->get(), 5, 10, 1, false);  // logged with keys 10..14
  shard->reset();
  WriteFile(d.checkpoint_path, first_checkpoint);  // ends at key 5
  const std::string log = ReadFile(d.log_path);
  shard = Shard::Open(Options("uniform"), d, nullptr);
  ASSERT_FALSE(shard.ok());
  EXPECT_EQ(shard.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(shard.status().message().find("next key is 5"), std::string::npos)
      << shard.status();
  EXPECT_EQ(ReadFile(d.log_path), log) << "nothing is cut off";
}

TEST(DurableShard, ALoggedPriorityThatInsertWouldRefuseIsDataLoss) {
  // A record whose checksums are right but whose first priority is NaN (a
  // writer bug, or an edited file): refused, never handed to the sampler.
  const std::string dir = testing::TempDir("durable_bad_priority");
  const DurabilityOptions d = Durability(dir);
  absl::StatusOr<std::unique_ptr<Shard>> shard =
      Shard::Open(Options("prioritized"), d, nullptr);
  ASSERT_TRUE(shard.ok()) << shard.status();
  Insert(shard->get(), 4, 0, 1, true);
  shard->reset();
  std::string log = ReadFile(d.log_path);
  // The file header (12 bytes), the record header (28), then the priorities.
  constexpr size_t kRecord = kEmptyInsertLogBytes, kPayload = kRecord + 28;
  ASSERT_GT(log.size(), kPayload + 4);
  const float nan = std::nanf("");
  std::memcpy(&log[kPayload], &nan, 4);
  const uint32_t payload_crc = Crc32c(0, &log[kPayload], log.size() - kPayload);
  std::memcpy(&log[kRecord + 20], &payload_crc, 4);
  const uint32_t header_crc = Crc32c(0, &log[kRecord], 24);
  std::memcpy(&log[kRecord + 24], &header_crc, 4);
  WriteFile(d.log_path, log);

  shard = Shard::Open(Options("prioritized"), d, nullptr);
  ASSERT_FALSE(shard.ok());
  EXPECT_EQ(shard.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(shard.status().message().find("logged priorities[0] is nan"),
            std::string::npos)
      << shard.status();
  EXPECT_EQ(ReadFile(d.log_path), log) << "nothing is cut off";
}

TEST(DurableShard, AFullLogWritesACheckpoint) {
  const std::string dir = testing::TempDir("durable_auto");
  DurabilityOptions d = Durability(dir);
  d.log_max_bytes = 500;  // a batch of 10 is about 450 bytes logged
  absl::StatusOr<std::unique_ptr<Shard>> shard =
      Shard::Open(Options("uniform"), d, nullptr);
  ASSERT_TRUE(shard.ok()) << shard.status();
  Insert(shard->get(), 10, 0, 1, false);
  EXPECT_FALSE(Exists(d.checkpoint_path));
  Insert(shard->get(), 10, 10, 1, false);
  ASSERT_TRUE(Exists(d.checkpoint_path));
  EXPECT_EQ(ReadCheckpoint(d.checkpoint_path, {20})->table->size(), 20u);
  Insert(shard->get(), 3, 20, 1, false);
  shard->reset();
  ShardRecovery recovery;
  shard = Shard::Open(Options("uniform"), d, &recovery);
  ASSERT_TRUE(shard.ok()) << shard.status();
  EXPECT_EQ(recovery.checkpoint_items, 20u);
  EXPECT_EQ(recovery.transitions_replayed, 3u);
  EXPECT_EQ((*shard)->table().Info().next_key, 23u);
}

// While alive, files this process writes cannot grow past `bytes`: a write
// beyond fails with EFBIG (SIGXFSZ ignored), as a full disk fails it with
// ENOSPC. Nothing may be printed meanwhile (stdout may be a longer file).
class FileSizeLimit {
 public:
  explicit FileSizeLimit(uint64_t bytes) {
    old_handler_ = ::signal(SIGXFSZ, SIG_IGN);
    ok_ = ::getrlimit(RLIMIT_FSIZE, &old_) == 0;
    rlimit limit = old_;
    limit.rlim_cur = static_cast<rlim_t>(bytes);
    ok_ = ok_ && ::setrlimit(RLIMIT_FSIZE, &limit) == 0;
  }
  ~FileSizeLimit() {
    ::setrlimit(RLIMIT_FSIZE, &old_);
    ::signal(SIGXFSZ, old_handler_);
  }
  bool ok() const { return ok_; }

 private:
  rlimit old_{};
  sighandler_t old_handler_;
  bool ok_ = false;
};

// A batch the insert log could not write (a full disk) is refused, naming the
// log, and nothing of it is stored: not in the table, the counters, a sample
// or the next checkpoint; its re-send is stored once.
TEST(DurableShard, ABatchTheLogCouldNotWriteIsNotStored) {
  for (const char* sampler_name : {"uniform", "prioritized"}) {
    const std::string sampler = sampler_name;
    SCOPED_TRACE(sampler);
    const std::string dir = testing::TempDir("durable_full_" + sampler);
    const DurabilityOptions d = Durability(dir);
    ::unlink(d.log_path.c_str());
    ::unlink(d.checkpoint_path.c_str());
    absl::StatusOr<std::unique_ptr<Shard>> shard =
        Shard::Open(Options(sampler), d, nullptr);
    ASSERT_TRUE(shard.ok()) << shard.status();
    Insert(shard->get(), 4, 0, 1, sampler == "prioritized");
    Snapshot(shard->get(), dir, "before");
    const std::string log_before = ReadFile(d.log_path);
    absl::StatusOr<KeyRange> refused;
    bool limited = false;
    {
      // Room for part of the next record only.
      FileSizeLimit limit(log_before.size() + 40);
      limited = limit.ok();
      refused = (*shard)->Insert(MakeBatch(3, 4, 3, 2, 2),
                                 google::protobuf::RepeatedField<float>(),
                                 absl::InfiniteFuture());
    }
    ASSERT_TRUE(limited);
    ASSERT_FALSE(refused.ok());
    EXPECT_EQ(refused.status().code(), absl::StatusCode::kInternal);
    EXPECT_NE(refused.status().message().find("not acknowledged"),
              std::string::npos)
        << refused.status();
    EXPECT_NE(refused.status().message().find(d.log_path), std::string::npos)
        << refused.status();
    EXPECT_EQ(ReadFile(d.log_path), log_before) << "the record is cut back";
    proto::ShardStats stats;
    (*shard)->Stats(&stats);
    EXPECT_EQ(stats.size(), 4u);
    EXPECT_EQ(stats.inserts_total(), 4u);
    ASSERT_EQ(stats.per_actor_size(), 1);
    EXPECT_EQ(stats.per_actor(0).actor_id(), 1u);
    EXPECT_EQ((*shard)->table().Info().next_key, 4u);
    proto::SampleResponse sample;
    ASSERT_TRUE(
        (*shard)->Sample(20, absl::InfiniteFuture(), nullptr, &sample).ok());
    for (uint64_t key : sample.keys()) EXPECT_LT(key, 4u);
    // The next checkpoint is the one before, but for the samples counted.
    const std::string after_path = dir + "/after.ckpt";
    ASSERT_TRUE((*shard)->Checkpoint(after_path).ok());
    absl::StatusOr<RestoredTable> after = ReadCheckpoint(after_path, {20});
    ASSERT_TRUE(after.ok()) << after.status();
    EXPECT_EQ(after->table->Info().next_key, 4u);
    EXPECT_EQ(after->table->Info().inserts_total, 4u);
    EXPECT_EQ(after->samples_total, 20u);
    absl::StatusOr<RestoredTable> first =
        ReadCheckpoint(dir + "/before.ckpt", {20});
    ASSERT_TRUE(first.ok()) << first.status();
    EXPECT_EQ(first->samples_total, 0u);
    // The client's re-send is stored once, with the next keys.
    Insert(shard->get(), 3, 4, 2, false);
    shard->reset();  // as kill -9
    ShardRecovery recovery;
    shard = Shard::Open(Options(sampler), d, &recovery);
    ASSERT_TRUE(shard.ok()) << shard.status();
    EXPECT_EQ(recovery.records_replayed, 2u);
    EXPECT_EQ((*shard)->table().Info().next_key, 7u);
    EXPECT_EQ((*shard)->table().Info().inserts_total, 7u);
  }
}

// An automatic checkpoint (the log past log_max_bytes) that fails is loud: one
// line on stderr naming the checkpoint's path and the error, and the count
// replay_server exports as softq_replay_checkpoint_failures_total. The insert
// is still acknowledged (it is logged), and the checkpoint is tried again
// after as many bytes.
TEST(DurableShard, AFailedAutomaticCheckpointIsReported) {
  const std::string dir = testing::TempDir("durable_auto_fails");
  DurabilityOptions d = Durability(dir);
  ::unlink(d.log_path.c_str());
  d.log_max_bytes = 500;  // a batch of 10 is about 450 bytes logged
  absl::StatusOr<std::unique_ptr<Shard>> shard =
      Shard::Open(Options("uniform"), d, nullptr);
  ASSERT_TRUE(shard.ok()) << shard.status();
  // A directory where the checkpoint goes: its rename into place fails.
  ::mkdir(d.checkpoint_path.c_str(), 0755);
  WriteFile(d.checkpoint_path + "/keep", "x");
  ASSERT_TRUE(Exists(d.checkpoint_path + "/keep"));
  Insert(shard->get(), 10, 0, 1, false);
  EXPECT_EQ((*shard)->checkpoint_failures(), 0u);
  ::testing::internal::CaptureStderr();
  Insert(shard->get(), 10, 10, 1, false);  // crosses 500 bytes
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ((*shard)->checkpoint_failures(), 1u);
  EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;
  EXPECT_NE(
      err.find("automatic checkpoint to " + d.checkpoint_path + " failed"),
      std::string::npos)
      << err;
  EXPECT_NE(err.find("Is a directory"), std::string::npos) << err;
  // Not tried again until as many bytes more are logged.
  ::testing::internal::CaptureStderr();
  Insert(shard->get(), 1, 20, 1, false);
  EXPECT_EQ(::testing::internal::GetCapturedStderr(), "");
  EXPECT_EQ((*shard)->checkpoint_failures(), 1u);
  // Every acknowledged insert is in the log.
  shard->reset();
  ShardRecovery recovery;
  d.checkpoint_path = dir + "/none.ckpt";
  shard = Shard::Open(Options("uniform"), d, &recovery);
  ASSERT_TRUE(shard.ok()) << shard.status();
  EXPECT_EQ(recovery.transitions_replayed, 21u);
}

// replay_server --wal_fsync (DurabilityOptions.log.fsync): every acknowledged
// insert (Insert returned OK) has had exactly one fdatasync(2) of the log, with
// its record in the file; after a kill (no shutdown checkpoint) the shard
// restores exactly what was acknowledged. Without the option nothing is synced
// and the same restore holds (for a process crash). fdatasync is observed on
// the real system call (tests/replay/fdatasync_spy.h).
TEST(DurableShard, WalFsyncSyncsEachInsertBeforeItIsAcknowledged) {
  for (const bool fsync : {false, true}) {
    SCOPED_TRACE(fsync ? "fsync" : "no fsync");
    const std::string dir =
        testing::TempDir(fsync ? "durable_fsync_on" : "durable_fsync_off");
    DurabilityOptions d = Durability(dir);
    ::unlink(d.log_path.c_str());
    ::unlink(d.checkpoint_path.c_str());
    d.log.fsync = fsync;
    absl::StatusOr<std::unique_ptr<Shard>> shard =
        Shard::Open(Options("prioritized"), d, nullptr);
    ASSERT_TRUE(shard.ok()) << shard.status();
    EXPECT_TRUE(testing::FdatasyncCalls(d.log_path).empty());
    for (int i = 0; i < 4; ++i) {
      Insert(shard->get(), 3, 3 * i, 1 + i % 2, i % 2 == 1);
      const std::vector<testing::SyncCall> calls =
          testing::FdatasyncCalls(d.log_path);
      ASSERT_EQ(calls.size(), fsync ? i + 1u : 0u) << "after insert " << i;
      if (fsync) {
        EXPECT_EQ(calls.back().bytes, ReadFile(d.log_path).size());
        EXPECT_EQ(calls.back().result, 0);
      }
    }
    const std::string acknowledged = Snapshot(shard->get(), dir, "acked");
    shard->reset();  // as kill -9: no shutdown checkpoint
    ShardRecovery recovery;
    shard = Shard::Open(Options("prioritized"), d, &recovery);
    ASSERT_TRUE(shard.ok()) << shard.status();
    EXPECT_FALSE(recovery.checkpoint_found);
    EXPECT_EQ(recovery.records_replayed, 4u);
    EXPECT_EQ(recovery.transitions_replayed, 12u);
    EXPECT_EQ(Snapshot(shard->get(), dir, "restored"), acknowledged);
    for (int i = 0; i < 12; ++i) {
      proto::TransitionBatch item;
      ASSERT_TRUE(
          (*shard)->table().Read({static_cast<uint64_t>(i)}, &item).ok());
      EXPECT_EQ(testing::CheckedId(item, 0), i);
    }
  }
}

}  // namespace
}  // namespace softq
