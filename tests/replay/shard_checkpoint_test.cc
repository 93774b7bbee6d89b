// Checkpoints of a replay_server process: on demand and on SIGTERM, restored at
// start, and refused (one line, non-zero exit) when damaged.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/notification.h"
#include "replay/checkpoint.h"
#include "replay/insert_log.h"
#include "tests/replay/server_fixture.h"

namespace softq {
namespace {

using testing::InsertOnce;
using testing::MakeBatch;
using testing::ReadFile;
using testing::StartServer;

absl::StatusOr<proto::CheckpointResponse> Checkpoint(
    proto::ReplayShard::Stub* stub) {
  grpc::ClientContext context;
  proto::CheckpointResponse response;
  const grpc::Status s =
      stub->Checkpoint(&context, proto::CheckpointRequest(), &response);
  if (!s.ok()) return absl::InternalError(s.error_message());
  return response;
}

void Fill(proto::ReplayShard::Stub* stub) {
  for (int b = 0; b < 7; ++b) {
    proto::InsertRequest r;
    r.set_sequence(1);
    *r.mutable_batch() = MakeBatch(10, 10 * b, 3, 2, b % 2);
    for (int i = 0; i < 10; ++i) r.add_priorities(1.0f + b + i);
    ASSERT_EQ(InsertOnce(stub, r)->code(), 0);
  }
}

TEST(ReplayShardCheckpoint, KillAndRestartGivesIdenticalContents) {
  const std::string dir = testing::TempDir("kill_restart");
  const std::vector<std::string> flags = {
      "--capacity=50", "--sampler=prioritized", "--checkpoint_dir=" + dir,
      "--shard_id=k"};
  absl::StatusOr<testing::ServerProcess> server = StartServer(flags);
  ASSERT_TRUE(server.ok()) << server.status();
  Fill(server->stub.get());  // 70 inserted, 50 held: the ring has wrapped
  absl::StatusOr<proto::CheckpointResponse> first =
      Checkpoint(server->stub.get());
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->items(), 50u);
  EXPECT_EQ(first->path(), CheckpointPath(dir, "k"));
  const std::string before = ReadFile(first->path());
  const proto::ShardStats stats_before = *testing::Stats(server->stub.get());
  server->process.reset();  // SIGKILL: no shutdown checkpoint

  server = StartServer(flags);
  ASSERT_TRUE(server.ok()) << server.status();
  const proto::ShardStats stats_after = *testing::Stats(server->stub.get());
  EXPECT_EQ(stats_after.size(), 50u);
  EXPECT_EQ(stats_after.inserts_total(), stats_before.inserts_total());
  ASSERT_EQ(stats_after.per_actor_size(), 2);
  EXPECT_EQ(stats_after.per_actor(1).inserted(),
            stats_before.per_actor(1).inserted());
  // A new checkpoint of the restored shard is byte-identical: items, keys,
  // priorities.
  ASSERT_TRUE(Checkpoint(server->stub.get()).ok());
  EXPECT_EQ(ReadFile(first->path()), before);
  // And it goes on from the next key.
  proto::InsertRequest r;
  r.set_sequence(1);
  *r.mutable_batch() = MakeBatch(1, 70, 3, 2);
  EXPECT_EQ(InsertOnce(server->stub.get(), r)->first_key(), 70u);
}

TEST(ReplayShardCheckpoint, SigtermWritesACheckpointAndExitsZero) {
  const std::string dir = testing::TempDir("sigterm");
  // Without the insert log, which alone would bring the transitions back.
  const std::vector<std::string> flags = {
      "--capacity=100", "--checkpoint_dir=" + dir, "--wal=false"};
  absl::StatusOr<testing::ServerProcess> server = StartServer(flags);
  ASSERT_TRUE(server.ok()) << server.status();
  Fill(server->stub.get());
  ASSERT_TRUE(server->process->Signal(SIGTERM).ok());
  EXPECT_EQ(*server->process->Wait(absl::Seconds(20)), 0);
  server = StartServer(flags);
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_EQ(testing::Stats(server->stub.get())->size(), 70u);
}

TEST(ReplayShardCheckpoint, AShardStoppedBeforeItsFirstInsertRestarts) {
  // Its checkpoint holds no dimensions yet (--observation_dim=0: set by the
  // first insert), with the insert log and without.
  for (const std::string wal : {"--wal=true", "--wal=false"}) {
    const std::string dir = testing::TempDir("empty" + wal.substr(6));
    const std::vector<std::string> flags = {"--capacity=100",
                                            "--checkpoint_dir=" + dir, wal};
    absl::StatusOr<testing::ServerProcess> server = StartServer(flags);
    ASSERT_TRUE(server.ok()) << server.status();
    ASSERT_TRUE(server->process->Signal(SIGTERM).ok());
    EXPECT_EQ(*server->process->Wait(absl::Seconds(20)), 0);
    server = StartServer(flags);
    ASSERT_TRUE(server.ok()) << wal << ": " << server.status();
    Fill(server->stub.get());
    EXPECT_EQ(testing::Stats(server->stub.get())->size(), 70u) << wal;
  }
}

// Fills a shard in `dir`, checkpoints it, kills it (no shutdown checkpoint)
// and returns the checkpoint's path.
absl::StatusOr<std::string> CheckpointOfAKilledShard(const std::string& dir) {
  absl::StatusOr<testing::ServerProcess> server =
      StartServer({"--capacity=100", "--checkpoint_dir=" + dir});
  if (!server.ok()) return server.status();
  Fill(server->stub.get());
  absl::StatusOr<proto::CheckpointResponse> written =
      Checkpoint(server->stub.get());
  if (!written.ok()) return written.status();
  return written->path();  // `server` is killed on return
}

// Starts the server on a damaged checkpoint; returns its exit code and first
// line.
std::pair<int, std::string> StartOnDamaged(const std::string& dir) {
  absl::StatusOr<std::unique_ptr<ChildProcess>> p = ChildProcess::Start(
      {"/bin/sh", "-c",
       absl::StrCat(testing::ServerBinary(),
                    " --port=0 --capacity=100 --checkpoint_dir=", dir,
                    " 2>&1")});
  if (!p.ok()) return {-1, ""};
  absl::StatusOr<std::string> line = (*p)->WaitForLine("", absl::Seconds(10));
  absl::StatusOr<int> code = (*p)->Wait(absl::Seconds(10));
  return {code.ok() ? *code : -1, line.ok() ? *line : ""};
}

TEST(ReplayShardCheckpoint, ACorruptedCheckpointIsRefusedWithOneLine) {
  const std::string dir = testing::TempDir("corrupt");
  const absl::StatusOr<std::string> path = CheckpointOfAKilledShard(dir);
  ASSERT_TRUE(path.ok()) << path.status();
  std::string data = ReadFile(*path);
  data[data.size() / 2] ^= 0x01;
  std::ofstream(*path, std::ios::binary | std::ios::trunc) << data;
  const auto [code, line] = StartOnDamaged(dir);
  EXPECT_EQ(code, 1);
  EXPECT_NE(line.find("checksum mismatch"), std::string::npos) << line;
}

TEST(ReplayShardCheckpoint, ATruncatedCheckpointIsRefusedWithOneLine) {
  const std::string dir = testing::TempDir("truncated");
  const absl::StatusOr<std::string> path = CheckpointOfAKilledShard(dir);
  ASSERT_TRUE(path.ok()) << path.status();
  const std::string data = ReadFile(*path);
  std::ofstream(*path, std::ios::binary | std::ios::trunc)
      << data.substr(0, data.size() - 100);
  const auto [code, line] = StartOnDamaged(dir);
  EXPECT_EQ(code, 1);
  EXPECT_NE(line.find("truncated"), std::string::npos) << line;
}

TEST(ReplayShardCheckpoint,
     KillWithoutACheckpointKeepsEveryAcknowledgedInsert) {
  // Every acknowledged insert is in the insert log before its ack.
  const std::string dir = testing::TempDir("kill_no_checkpoint");
  const std::vector<std::string> flags = {
      "--capacity=50", "--sampler=prioritized", "--checkpoint_dir=" + dir,
      "--shard_id=w"};
  absl::StatusOr<testing::ServerProcess> server = StartServer(flags);
  ASSERT_TRUE(server.ok()) << server.status();
  Fill(server->stub.get());  // 70 acknowledged, 50 held
  const proto::ShardStats before = *testing::Stats(server->stub.get());
  server->process.reset();  // SIGKILL
  server = StartServer(flags);
  ASSERT_TRUE(server.ok()) << server.status();
  const proto::ShardStats after = *testing::Stats(server->stub.get());
  EXPECT_EQ(after.size(), 50u);
  EXPECT_EQ(after.inserts_total(), 70u);
  ASSERT_EQ(after.per_actor_size(), before.per_actor_size());
  for (int i = 0; i < after.per_actor_size(); ++i) {
    EXPECT_EQ(after.per_actor(i).inserted(), before.per_actor(i).inserted());
  }
  proto::InsertRequest r;
  r.set_sequence(1);
  *r.mutable_batch() = MakeBatch(1, 70, 3, 2);
  EXPECT_EQ(InsertOnce(server->stub.get(), r)->first_key(), 70u);
}

// Runs the server with `flags` until it exits (up to 10 s); returns its exit
// code (-1 when it did not exit: it was serving) and its stdout and stderr
// lines.
std::pair<int, std::vector<std::string>> RunToExit(
    const std::vector<std::string>& flags) {
  std::string command = absl::StrCat(testing::ServerBinary(), " --port=0");
  for (const std::string& flag : flags) absl::StrAppend(&command, " ", flag);
  absl::StatusOr<std::unique_ptr<ChildProcess>> p =
      ChildProcess::Start({"/bin/sh", "-c", command + " 2>&1"});
  if (!p.ok()) return {-1, {}};
  std::vector<std::string> lines;
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (true) {
    absl::StatusOr<std::string> line =
        (*p)->WaitForLine("", deadline - absl::Now());
    if (!line.ok()) break;
    lines.push_back(*line);
  }
  absl::StatusOr<int> code = (*p)->Wait(deadline - absl::Now());
  return {code.ok() ? *code : -1, lines};
}

// A --checkpoint_dir no file can be created in is refused at start like a bad
// flag (one line naming it, exit 2), with the insert log off as with it on:
// with --wal=false nothing else writes there before the first checkpoint.
TEST(ReplayShardCheckpoint, ACheckpointDirThatCannotBeWrittenIsRefusedAtStart) {
  std::vector<std::string> dirs = {"/proc"};  // not even root creates files
  if (::geteuid() != 0) {
    const std::string read_only = testing::TempDir("read_only");
    ASSERT_EQ(::chmod(read_only.c_str(), 0555), 0);
    dirs.push_back(read_only);
  }
  for (const std::string& dir : dirs) {
    for (const char* wal : {"--wal=false", "--wal=true"}) {
      SCOPED_TRACE(absl::StrCat(dir, " ", wal));
      const auto [code, lines] =
          RunToExit({wal, "--capacity=100", "--checkpoint_dir=" + dir});
      EXPECT_EQ(code, 2);
      ASSERT_EQ(lines.size(), 1u) << absl::StrJoin(lines, "\n");
      EXPECT_NE(lines[0].find("--checkpoint_dir=" + dir), std::string::npos)
          << lines[0];
      EXPECT_NE(lines[0].find("cannot create a file"), std::string::npos)
          << lines[0];
    }
  }
}

// An insert log cut shorter than its header (acknowledged inserts gone) is
// reported at start: one line naming the file and its size.
TEST(ReplayShardCheckpoint, AnInsertLogShorterThanItsHeaderIsReportedAtStart) {
  const std::string dir = testing::TempDir("short_log");
  {
    absl::StatusOr<testing::ServerProcess> server =
        StartServer({"--capacity=100", "--checkpoint_dir=" + dir});
    ASSERT_TRUE(server.ok()) << server.status();
    Fill(server->stub.get());
  }  // killed: the inserts are in the log only
  const std::string path = InsertLogPath(dir, "0");
  ASSERT_GT(ReadFile(path).size(), 200u);
  ASSERT_EQ(::truncate(path.c_str(), 5), 0);
  absl::StatusOr<std::unique_ptr<ChildProcess>> p = ChildProcess::Start(
      {"/bin/sh", "-c",
       absl::StrCat(testing::ServerBinary(), " --port=0 --capacity=100",
                    " --checkpoint_dir=", dir, " 2>&1")});
  ASSERT_TRUE(p.ok()) << p.status();
  std::vector<std::string> lines;
  while (true) {
    absl::StatusOr<std::string> line = (*p)->WaitForLine("", absl::Seconds(10));
    ASSERT_TRUE(line.ok()) << line.status() << absl::StrJoin(lines, "\n");
    if (absl::StartsWith(*line, "replay_server listening")) break;
    lines.push_back(*line);
  }
  int reported = 0;
  for (const std::string& line : lines) {
    if (line.find(path) != std::string::npos &&
        line.find("was 5 bytes") != std::string::npos) {
      ++reported;
    }
  }
  EXPECT_EQ(reported, 1) << absl::StrJoin(lines, "\n");
}

TEST(ReplayShardCheckpoint, ACorruptedInsertLogIsRefusedWithOneLine) {
  const std::string dir = testing::TempDir("corrupt_log");
  absl::StatusOr<testing::ServerProcess> server =
      StartServer({"--capacity=100", "--checkpoint_dir=" + dir});
  ASSERT_TRUE(server.ok());
  Fill(server->stub.get());
  server->process.reset();
  const std::string path = InsertLogPath(dir, "0");
  std::string data = ReadFile(path);
  ASSERT_GT(data.size(), 200u);
  data[100] ^= 0x01;  // inside the first record
  std::ofstream(path, std::ios::binary | std::ios::trunc) << data;
  const auto [code, line] = StartOnDamaged(dir);
  EXPECT_EQ(code, 1);
  EXPECT_NE(line.find("insert log"), std::string::npos) << line;
  EXPECT_NE(line.find("checksum"), std::string::npos) << line;
}

// 502 Checkpoint calls wrote 502 files in 15 s (issue 29): calls that arrive
// while a checkpoint is being written share its result instead of writing
// again.
TEST(ReplayShardCheckpoint,
     ConcurrentCheckpointCallsWriteOnceAndShareTheResult) {
  const std::string dir = testing::TempDir("concurrent_checkpoints");
  absl::StatusOr<testing::ServerProcess> server =
      StartServer({"--capacity=200000", "--checkpoint_dir=" + dir,
                   "--wal=false", "--shard_id=c"});
  ASSERT_TRUE(server.ok()) << server.status();
  // 200,000 transitions of 64-float observations: a ~105 MB checkpoint, long
  // enough for every call below to arrive while it is written.
  for (int b = 0; b < 10; ++b) {
    proto::InsertRequest r;
    r.set_sequence(1);
    *r.mutable_batch() = MakeBatch(20000, 20000 * b, 64, 2);
    absl::StatusOr<proto::InsertResponse> ack =
        InsertOnce(server->stub.get(), r);
    ASSERT_TRUE(ack.ok()) << ack.status();
    ASSERT_EQ(ack->code(), 0) << ack->error();
  }
  constexpr int kCalls = 8;
  std::vector<absl::StatusOr<proto::CheckpointResponse>> results(
      kCalls, absl::UnknownError("not called"));
  {
    absl::Notification go;
    std::vector<std::thread> threads;
    for (int i = 0; i < kCalls; ++i) {
      threads.emplace_back([&, i] {
        go.WaitForNotification();
        results[i] = Checkpoint(server->stub.get());
      });
    }
    go.Notify();
    for (std::thread& t : threads) t.join();
  }
  for (int i = 0; i < kCalls; ++i) {
    ASSERT_TRUE(results[i].ok()) << i << ": " << results[i].status();
    EXPECT_EQ(results[i]->path(), CheckpointPath(dir, "c"));
    EXPECT_EQ(results[i]->items(), 200000u);
    EXPECT_EQ(results[i]->bytes(), results[0]->bytes());
  }
  // One write (two if a call came late, after the first write ended).
  const uint64_t written =
      testing::Stats(server->stub.get())->checkpoints_total();
  EXPECT_GE(written, 1u);
  EXPECT_LE(written, 2u) << "checkpoints written for " << kCalls
                         << " concurrent calls";
  // Not a cache: a call after they ended writes again.
  ASSERT_TRUE(Checkpoint(server->stub.get()).ok());
  EXPECT_EQ(testing::Stats(server->stub.get())->checkpoints_total(),
            written + 1);
}

}  // namespace
}  // namespace softq
