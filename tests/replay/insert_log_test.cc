// The insert log alone (replay/insert_log.h): records come back as written,
// a torn tail is cut off and reported, corruption before the tail is DataLoss,
// Reset empties it, and with InsertLogOptions::fsync each record is
// fdatasync'ed, whole, before Append returns.
#include "replay/insert_log.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "tests/replay/fdatasync_spy.h"
#include "tests/replay/server_fixture.h"

namespace softq {
namespace {

using testing::MakeBatch;
using testing::ReadFile;
using testing::WriteFile;

constexpr uint64_t kFileHeader = 12;
constexpr uint64_t kRecordHeader = 28;

uint64_t FileSize(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
}

absl::Status Append(InsertLog* log, uint64_t first_key,
                    const proto::TransitionBatch& batch,
                    std::vector<float> priorities = {},
                    float default_priority = 1.5f) {
  const std::string bytes = batch.SerializeAsString();
  return log->Append(first_key, default_priority, priorities, bytes,
                     InsertLogPayloadCrc(priorities, bytes));
}

// Opens `path`, collecting the recovered records.
absl::StatusOr<std::unique_ptr<InsertLog>> OpenCollecting(
    const std::string& path, std::vector<InsertLogRecord>* records,
    InsertLogRecovery* recovery) {
  return InsertLog::Open(
      path, InsertLogOptions(),
      [records](InsertLogRecord&& r) {
        records->push_back(std::move(r));
        return absl::OkStatus();
      },
      recovery);
}

// A log at a fresh path with three records: keys 0..4 (priorities given),
// 5..10 and 11..13; returns the file offset where each record starts.
std::vector<uint64_t> WriteThree(const std::string& path) {
  std::vector<InsertLogRecord> none;
  absl::StatusOr<std::unique_ptr<InsertLog>> log =
      OpenCollecting(path, &none, nullptr);
  EXPECT_TRUE(log.ok()) << log.status();
  std::vector<uint64_t> offsets;
  offsets.push_back((*log)->bytes());
  EXPECT_TRUE(
      Append(log->get(), 0, MakeBatch(5, 0, 3, 2, 7), {1, 2, 3, 4, 5}).ok());
  offsets.push_back((*log)->bytes());
  EXPECT_TRUE(Append(log->get(), 5, MakeBatch(6, 5, 3, 2, 8)).ok());
  offsets.push_back((*log)->bytes());
  EXPECT_TRUE(Append(log->get(), 11, MakeBatch(3, 11, 3, 2, 7)).ok());
  offsets.push_back((*log)->bytes());
  EXPECT_EQ(FileSize(path), offsets.back());
  return offsets;
}

TEST(InsertLog, RecordsComeBackAsWrittenInOrder) {
  const std::string path = testing::TempDir("wal_roundtrip") + "/a.wal";
  WriteThree(path);
  std::vector<InsertLogRecord> records;
  InsertLogRecovery recovery;
  absl::StatusOr<std::unique_ptr<InsertLog>> log =
      OpenCollecting(path, &records, &recovery);
  ASSERT_TRUE(log.ok()) << log.status();
  EXPECT_EQ(recovery.records, 3u);
  EXPECT_EQ(recovery.transitions, 14u);
  EXPECT_EQ(recovery.torn_bytes, 0u);
  EXPECT_EQ(recovery.valid_bytes, FileSize(path));
  ASSERT_EQ(records.size(), 3u);
  EXPECT_EQ(records[0].first_key, 0u);
  EXPECT_EQ(records[0].priorities, (std::vector<float>{1, 2, 3, 4, 5}));
  EXPECT_EQ(records[0].default_priority, 1.5f);
  EXPECT_EQ(records[0].batch.SerializeAsString(),
            MakeBatch(5, 0, 3, 2, 7).SerializeAsString());
  EXPECT_EQ(records[1].first_key, 5u);
  EXPECT_TRUE(records[1].priorities.empty());
  EXPECT_EQ(records[1].batch.SerializeAsString(),
            MakeBatch(6, 5, 3, 2, 8).SerializeAsString());
  EXPECT_EQ(records[2].first_key, 11u);
  EXPECT_EQ(records[2].batch.rewards_size(), 3);
  // Appends go on after what was recovered.
  ASSERT_TRUE(Append(log->get(), 14, MakeBatch(1, 14)).ok());
  log->reset();
  records.clear();
  ASSERT_TRUE(OpenCollecting(path, &records, &recovery).ok());
  ASSERT_EQ(records.size(), 4u);
  EXPECT_EQ(records[3].first_key, 14u);
}

TEST(InsertLog, ANewLogHasOnlyItsHeader) {
  const std::string path = testing::TempDir("wal_new") + "/a.wal";
  std::vector<InsertLogRecord> records;
  InsertLogRecovery recovery;
  absl::StatusOr<std::unique_ptr<InsertLog>> log =
      OpenCollecting(path, &records, &recovery);
  ASSERT_TRUE(log.ok()) << log.status();
  EXPECT_EQ((*log)->bytes(), kFileHeader);
  EXPECT_EQ(FileSize(path), kFileHeader);
  EXPECT_EQ(recovery.records, 0u);
}

TEST(InsertLog, ATornLastRecordIsCutOffAndReported) {
  const std::string dir = testing::TempDir("wal_torn");
  // Cut inside the last record's header, inside its payload, one byte short.
  for (uint64_t keep : {uint64_t{1}, uint64_t{27}, uint64_t{40}, uint64_t{0}}) {
    const std::string path = absl::StrCat(dir, "/cut", keep, ".wal");
    const std::vector<uint64_t> offsets = WriteThree(path);
    const uint64_t cut_at =
        keep == 0 ? offsets[3] - 1 : offsets[2] + keep;  // inside record 3
    WriteFile(path, ReadFile(path).substr(0, cut_at));
    std::vector<InsertLogRecord> records;
    InsertLogRecovery recovery;
    absl::StatusOr<std::unique_ptr<InsertLog>> log =
        OpenCollecting(path, &records, &recovery);
    ASSERT_TRUE(log.ok()) << keep << ": " << log.status();
    EXPECT_EQ(records.size(), 2u) << keep;
    EXPECT_EQ(recovery.torn_offset, offsets[2]) << keep;
    EXPECT_EQ(recovery.torn_bytes, cut_at - offsets[2]) << keep;
    EXPECT_EQ(FileSize(path), offsets[2]) << "the tail is cut off";
    // New records follow the good ones and come back next time.
    ASSERT_TRUE(Append(log->get(), 11, MakeBatch(2, 11)).ok());
    log->reset();
    records.clear();
    ASSERT_TRUE(OpenCollecting(path, &records, &recovery).ok());
    ASSERT_EQ(records.size(), 3u);
    EXPECT_EQ(records[2].batch.rewards_size(), 2);
    EXPECT_EQ(recovery.torn_bytes, 0u);
  }
}

TEST(InsertLog, ABadLastRecordAndAZeroTailAreTorn) {
  const std::string dir = testing::TempDir("wal_bad_last");
  {
    const std::string path = dir + "/flip.wal";
    const std::vector<uint64_t> offsets = WriteThree(path);
    std::string data = ReadFile(path);
    data[offsets[3] - 2] ^= 0x10;  // the last record's payload
    WriteFile(path, data);
    std::vector<InsertLogRecord> records;
    InsertLogRecovery recovery;
    ASSERT_TRUE(OpenCollecting(path, &records, &recovery).ok());
    EXPECT_EQ(records.size(), 2u);
    EXPECT_EQ(recovery.torn_offset, offsets[2]);
  }
  {
    // A machine crash can leave allocated but unwritten (zero) blocks.
    const std::string path = dir + "/zeros.wal";
    const std::vector<uint64_t> offsets = WriteThree(path);
    WriteFile(path, ReadFile(path) + std::string(4096, '\0'));
    std::vector<InsertLogRecord> records;
    InsertLogRecovery recovery;
    ASSERT_TRUE(OpenCollecting(path, &records, &recovery).ok());
    EXPECT_EQ(records.size(), 3u);
    EXPECT_EQ(recovery.torn_bytes, 4096u);
    EXPECT_EQ(FileSize(path), offsets[3]);
  }
}

TEST(InsertLog, CorruptionBeforeTheLastRecordIsDataLoss) {
  const std::string dir = testing::TempDir("wal_corrupt");
  struct Case {
    const char* name;
    int record;   // which record to damage
    uint64_t at;  // byte offset inside it
  };
  for (const Case& c : {Case{"payload", 1, kRecordHeader + 5},
                        Case{"header", 1, 9}, Case{"first", 0, 30}}) {
    const std::string path = absl::StrCat(dir, "/", c.name, ".wal");
    const std::vector<uint64_t> offsets = WriteThree(path);
    std::string data = ReadFile(path);
    data[offsets[c.record] + c.at] ^= 0x01;
    WriteFile(path, data);
    std::vector<InsertLogRecord> records;
    absl::StatusOr<std::unique_ptr<InsertLog>> log =
        OpenCollecting(path, &records, nullptr);
    ASSERT_FALSE(log.ok()) << c.name;
    EXPECT_EQ(log.status().code(), absl::StatusCode::kDataLoss) << c.name;
    EXPECT_NE(
        log.status().message().find(absl::StrCat("offset ", offsets[c.record])),
        std::string::npos)
        << log.status();
    EXPECT_NE(log.status().message().find(path), std::string::npos);
    EXPECT_EQ(ReadFile(path), data) << "a corrupted log is left as it is";
  }
}

// An existing log shorter than its 12-byte header (cut by something, or a
// creation cut short) is started anew and reported with its size; a new log
// is not reported.
TEST(InsertLog, AnExistingLogShorterThanItsHeaderIsReported) {
  const std::string dir = testing::TempDir("log_short");
  const std::string path = dir + "/short.wal";
  ::unlink(path.c_str());
  std::vector<InsertLogRecord> records;
  InsertLogRecovery recovery;
  ASSERT_TRUE(OpenCollecting(path, &records, &recovery).ok());
  EXPECT_FALSE(recovery.short_file);
  ::unlink(path.c_str());
  WriteThree(path);
  const std::string whole = ReadFile(path);
  for (uint64_t size = 0; size < kFileHeader; ++size) {
    SCOPED_TRACE(size);
    WriteFile(path, whole.substr(0, size));
    ASSERT_EQ(FileSize(path), size);
    absl::StatusOr<std::unique_ptr<InsertLog>> log =
        OpenCollecting(path, &records, &recovery);
    ASSERT_TRUE(log.ok()) << log.status();
    EXPECT_TRUE(recovery.short_file);
    EXPECT_EQ(recovery.short_file_bytes, size);
    EXPECT_EQ(recovery.records, 0u);
    EXPECT_EQ((*log)->bytes(), kFileHeader);
  }
  EXPECT_TRUE(records.empty());
}

TEST(InsertLog, AFileOfAnotherKindIsRefused) {
  const std::string path = testing::TempDir("wal_other") + "/a.wal";
  WriteFile(path, "SOFTQRPL not a log at all");
  std::vector<InsertLogRecord> records;
  absl::StatusOr<std::unique_ptr<InsertLog>> log =
      OpenCollecting(path, &records, nullptr);
  ASSERT_FALSE(log.ok());
  EXPECT_EQ(log.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(log.status().message().find("not a version 1 insert log"),
            std::string::npos)
      << log.status();
}

TEST(InsertLog, AnApplyErrorStopsRecovery) {
  const std::string path = testing::TempDir("wal_apply") + "/a.wal";
  WriteThree(path);
  int calls = 0;
  absl::StatusOr<std::unique_ptr<InsertLog>> log = InsertLog::Open(
      path, InsertLogOptions(),
      [&calls](InsertLogRecord&&) {
        return ++calls == 2 ? absl::DataLossError("no room") : absl::OkStatus();
      },
      nullptr);
  ASSERT_FALSE(log.ok());
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(log.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(log.status().message().find("no room"), std::string::npos);
}

TEST(InsertLog, ResetEmptiesTheLog) {
  const std::string path = testing::TempDir("wal_reset") + "/a.wal";
  InsertLogOptions options;
  options.fsync = true;  // the fsync path works too
  absl::StatusOr<std::unique_ptr<InsertLog>> log = InsertLog::Open(
      path, options, [](InsertLogRecord&&) { return absl::OkStatus(); },
      nullptr);
  ASSERT_TRUE(log.ok()) << log.status();
  ASSERT_TRUE(Append(log->get(), 0, MakeBatch(4, 0)).ok());
  ASSERT_TRUE(Append(log->get(), 4, MakeBatch(4, 4)).ok());
  ASSERT_TRUE((*log)->Reset().ok());
  EXPECT_EQ((*log)->bytes(), kFileHeader);
  EXPECT_EQ(FileSize(path), kFileHeader);
  ASSERT_TRUE(Append(log->get(), 8, MakeBatch(2, 8)).ok());
  log->reset();
  std::vector<InsertLogRecord> records;
  ASSERT_TRUE(OpenCollecting(path, &records, nullptr).ok());
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].first_key, 8u);
}

TEST(InsertLog, DropBeforeKeepsTheRecordsAfterTheOffset) {
  const std::string path = testing::TempDir("wal_drop") + "/a.wal";
  const std::vector<uint64_t> offsets = WriteThree(path);
  std::vector<InsertLogRecord> ignored;
  absl::StatusOr<std::unique_ptr<InsertLog>> log =
      OpenCollecting(path, &ignored, nullptr);
  ASSERT_TRUE(log.ok()) << log.status();
  EXPECT_FALSE((*log)->DropBefore(offsets.back() + 1).ok());
  EXPECT_EQ((*log)->bytes(), offsets.back());  // unchanged by the refusal
  // Drop the first record: the second and third stay, appends go on after.
  ASSERT_TRUE((*log)->DropBefore(offsets[1]).ok());
  EXPECT_EQ((*log)->bytes(), kFileHeader + offsets.back() - offsets[1]);
  EXPECT_EQ(FileSize(path), (*log)->bytes());
  EXPECT_EQ(FileSize(path + ".tmp"), 0u);  // renamed away
  ASSERT_TRUE(Append(log->get(), 14, MakeBatch(2, 14)).ok());
  log->reset();
  std::vector<InsertLogRecord> records;
  ASSERT_TRUE(OpenCollecting(path, &records, nullptr).ok());
  ASSERT_EQ(records.size(), 3u);
  EXPECT_EQ(records[0].first_key, 5u);
  EXPECT_EQ(records[0].batch.rewards_size(), 6);
  EXPECT_EQ(records[1].first_key, 11u);
  EXPECT_EQ(records[2].first_key, 14u);
}

// --wal_fsync's promise (replay_server: "one fdatasync per batch"): with
// options.fsync every Append makes exactly one fdatasync(2) of the log, after
// its record is in the file and before Append returns; so do Reset and the cut
// of a torn tail at recovery. Without it the log is never synced. The calls
// are observed by tests/replay/fdatasync_spy.h on the real system call.
TEST(InsertLog, FsyncSyncsEachRecordWholeBeforeAppendReturns) {
  for (const bool fsync : {false, true}) {
    SCOPED_TRACE(fsync ? "fsync" : "no fsync");
    const std::string path =
        testing::TempDir(fsync ? "wal_fsync_on" : "wal_fsync_off") + "/a.wal";
    ::unlink(path.c_str());
    InsertLogOptions options;
    options.fsync = fsync;
    const auto ignore = [](InsertLogRecord&&) { return absl::OkStatus(); };
    absl::StatusOr<std::unique_ptr<InsertLog>> log =
        InsertLog::Open(path, options, ignore, nullptr);
    ASSERT_TRUE(log.ok()) << log.status();
    EXPECT_TRUE(testing::FdatasyncCalls(path).empty());
    size_t expected_calls = 0;
    for (int i = 0; i < 5; ++i) {
      ASSERT_TRUE(Append(log->get(), 4 * i, MakeBatch(4, 4 * i)).ok());
      if (fsync) ++expected_calls;
      const std::vector<testing::SyncCall> calls =
          testing::FdatasyncCalls(path);
      ASSERT_EQ(calls.size(), expected_calls) << "after append " << i;
      if (fsync) {
        // Synced with the whole record in the file, and it succeeded.
        EXPECT_EQ(calls.back().bytes, (*log)->bytes());
        EXPECT_EQ(calls.back().bytes, FileSize(path));
        EXPECT_EQ(calls.back().result, 0);
      }
    }
    ASSERT_TRUE((*log)->Reset().ok());
    if (fsync) ++expected_calls;
    std::vector<testing::SyncCall> calls = testing::FdatasyncCalls(path);
    ASSERT_EQ(calls.size(), expected_calls);
    if (fsync) {
      EXPECT_EQ(calls.back().bytes, kFileHeader);
    }

    // A torn tail cut off at recovery is synced too (once).
    ASSERT_TRUE(Append(log->get(), 20, MakeBatch(4, 20)).ok());
    if (fsync) ++expected_calls;
    const uint64_t whole = (*log)->bytes();
    log->reset();
    { std::ofstream(path, std::ios::binary | std::ios::app) << "torn"; }
    std::vector<InsertLogRecord> records;
    InsertLogRecovery recovery;
    log = InsertLog::Open(
        path, options,
        [&records](InsertLogRecord&& r) {
          records.push_back(std::move(r));
          return absl::OkStatus();
        },
        &recovery);
    ASSERT_TRUE(log.ok()) << log.status();
    EXPECT_EQ(records.size(), 1u);
    EXPECT_EQ(recovery.torn_bytes, 4u);
    if (fsync) ++expected_calls;
    calls = testing::FdatasyncCalls(path);
    ASSERT_EQ(calls.size(), expected_calls);
    if (fsync) {
      EXPECT_EQ(calls.back().bytes, whole);
    }
  }
}

}  // namespace
}  // namespace softq
