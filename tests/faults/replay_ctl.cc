// replay_ctl: what the fault tests need of a shard that replay_stats does not
// offer: its checkpoint, the identity of every item it holds, and a writer
// whose acknowledgements the test sees.
//
//   replay_ctl checkpoint HOST:PORT
//       asks the shard to write its checkpoint and prints
//       {"path":...,"items":N,"bytes":B}
//   replay_ctl ids HOST:PORT
//       asks the shard (started with --checkpoint_dir, on this machine) to
//       write its checkpoint, reads that file back with the replay library
//       (replay/checkpoint.h) and prints one line "<episode_id> <step_id>" per
//       item it holds, in key order (a transition stored twice, as
//       at-least-once delivery may, is listed twice). Exactly what the shard
//       held when the checkpoint was taken. Exit 1 when the shard stores no
//       episode/step ids.
//   replay_ctl insert HOST:PORT[,HOST:PORT...] ACTOR_ID SECONDS ACKED_PATH
//       writes batches of 16 transitions (observation 2, action 2) as actor
//       ACTOR_ID through a ReplayWriter (one unacknowledged batch per shard),
//       batch b holding episode id (ACTOR_ID << 40 | b), steps 0..15, for at
//       most SECONDS seconds, retrying while no shard answers; it stops early
//       once nothing has been acknowledged for 1 s after a first
//       acknowledgement (the shards are gone). Every
//       acknowledged transition is appended to ACKED_PATH as it is
//       acknowledged, one line "<actor_id> <episode_id> <step_id>" (one
//       write(2) per acknowledged message, so the file is whole up to the
//       last ack even if a shard is killed meanwhile). At the end (after a
//       flush of up to 2 s) prints {"batches":B,"acknowledged":N}: batches
//       0..B-1 were handed to the writer, N transitions acknowledged.
//
// --tls_ca, --tls_cert, --tls_key, --auth_token_file (before the command) call
// a secured job's shards (common/security_flags.h); none: insecure, said in
// one line on stderr. Exit 0 on success; 1 (one line on stderr naming the
// shard) when a call fails; 2 for a malformed command line. Deadline of each
// RPC: 30 s.
#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/flags.h"
#include "common/security.h"
#include "common/security_flags.h"
#include "proto/replay.grpc.pb.h"
#include "replay/checkpoint.h"
#include "replay/replay_channel.h"
#include "replay/replay_writer.h"

namespace softq {
namespace {

constexpr char kUsage[] =
    "usage: replay_ctl [--tls_ca=F --tls_cert=F --tls_key=F "
    "--auth_token_file=F] checkpoint HOST:PORT | ids HOST:PORT | "
    "insert HOST:PORT[,...] ACTOR_ID SECONDS ACKED_PATH";

std::shared_ptr<grpc::Channel> Channel(const std::string& address,
                                       const SecurityConfig& security) {
  return MakeReplayChannel(address, absl::Seconds(10), security);
}

void SetDeadline(grpc::ClientContext* context) {
  context->set_deadline(std::chrono::system_clock::now() +
                        std::chrono::seconds(30));
  context->set_wait_for_ready(true);
}

absl::StatusOr<proto::CheckpointResponse> Checkpoint(
    proto::ReplayShard::Stub* stub) {
  grpc::ClientContext context;
  SetDeadline(&context);
  proto::CheckpointResponse response;
  const grpc::Status s =
      stub->Checkpoint(&context, proto::CheckpointRequest(), &response);
  if (!s.ok()) return absl::UnavailableError(s.error_message());
  return response;
}

int PrintCheckpoint(const std::string& address,
                    const SecurityConfig& security) {
  auto stub = proto::ReplayShard::NewStub(Channel(address, security));
  absl::StatusOr<proto::CheckpointResponse> r = Checkpoint(stub.get());
  if (!r.ok()) {
    std::cerr << "replay_ctl: " << address << ": " << r.status().message()
              << std::endl;
    return 1;
  }
  std::cout << "{\"path\":\"" << r->path() << "\",\"items\":" << r->items()
            << ",\"bytes\":" << r->bytes() << "}" << std::endl;
  return 0;
}

int PrintIds(const std::string& address, const SecurityConfig& security) {
  auto stub = proto::ReplayShard::NewStub(Channel(address, security));
  const auto fail = [&address](const absl::Status& s) {
    std::cerr << "replay_ctl: " << address << ": " << s << std::endl;
    return 1;
  };
  absl::StatusOr<proto::CheckpointResponse> written = Checkpoint(stub.get());
  if (!written.ok()) return fail(written.status());
  grpc::ClientContext context;
  SetDeadline(&context);
  proto::ShardStats stats;
  if (grpc::Status s = stub->GetStats(&context, proto::StatsRequest(), &stats);
      !s.ok()) {
    return fail(absl::UnavailableError(s.error_message()));
  }
  CheckpointExpectation expected;
  expected.capacity = stats.capacity();
  absl::StatusOr<RestoredTable> restored =
      ReadCheckpoint(written->path(), expected);
  if (!restored.ok()) return fail(restored.status());
  const TableInfo info = restored->table->Info();
  if (info.size > 0 && !info.has_ids) {
    return fail(absl::FailedPreconditionError(
        absl::StrCat(written->path(), " holds no episode/step ids")));
  }
  std::string out;
  out.reserve(info.size * 24);
  absl::Status s =
      restored->table->ForEachItem([&out](uint64_t, const ItemView& item) {
        absl::StrAppend(&out, item.episode_id, " ", item.step_id, "\n");
        return absl::OkStatus();
      });
  if (!s.ok()) return fail(s);
  std::cout << out << std::flush;
  return 0;
}

// Appends "<actor> <episode> <step>" lines of acknowledged batches to a file.
class AckedLines {
 public:
  explicit AckedLines(int fd) : fd_(fd) {}
  void Record(const proto::TransitionBatch& batch) {
    std::string lines;
    for (int i = 0; i < batch.episode_ids_size(); ++i) {
      absl::StrAppend(&lines, batch.actor_id(), " ", batch.episode_ids(i), " ",
                      batch.step_ids(i), "\n");
    }
    absl::MutexLock lock(&mu_);
    size_t done = 0;
    while (done < lines.size() && error_ == 0) {
      const ssize_t w = ::write(fd_, lines.data() + done, lines.size() - done);
      if (w < 0 && errno != EINTR) error_ = errno;
      if (w > 0) done += static_cast<size_t>(w);
    }
  }
  int error() {
    absl::MutexLock lock(&mu_);
    return error_;
  }

 private:
  const int fd_;
  absl::Mutex mu_;
  int error_ ABSL_GUARDED_BY(mu_) = 0;
};

proto::TransitionBatch MakeBatch(uint32_t actor_id, uint64_t index) {
  constexpr int kRows = 16;
  proto::TransitionBatch b;
  b.set_observation_dim(2);
  b.set_action_dim(2);
  b.set_actor_id(actor_id);
  for (int i = 0; i < kRows; ++i) {
    const float x = static_cast<float>(index % 1000) * 0.001f;
    b.add_observations(x);
    b.add_observations(static_cast<float>(i));
    b.add_actions(0.5f);
    b.add_actions(-0.5f);
    b.add_rewards(x);
    b.add_next_observations(x);
    b.add_next_observations(static_cast<float>(i + 1));
    b.add_dones(i == kRows - 1);
    b.add_episode_ids((static_cast<uint64_t>(actor_id) << 40) | index);
    b.add_step_ids(static_cast<uint32_t>(i));
  }
  return b;
}

int Insert(const std::string& addresses, uint32_t actor_id, double seconds,
           const std::string& acked_path, const SecurityConfig& security) {
  const int fd =
      ::open(acked_path.c_str(),
             O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) {
    std::cerr << "replay_ctl: " << acked_path << ": " << std::strerror(errno)
              << std::endl;
    return 1;
  }
  AckedLines acked(fd);
  ReplayClientOptions options;
  options.addresses = absl::StrSplit(addresses, ',', absl::SkipEmpty());
  options.rpc_timeout = absl::Milliseconds(200);
  options.max_in_flight_batches = 1;
  options.security = security;
  options.on_acknowledged = [&acked](const proto::TransitionBatch& batch) {
    acked.Record(batch);
  };
  uint64_t batches = 0;
  uint64_t acknowledged = 0;
  int code = 0;
  {
    absl::StatusOr<std::unique_ptr<ReplayWriter>> writer =
        ReplayWriter::Create(options);
    if (!writer.ok()) {
      std::cerr << "replay_ctl: " << writer.status() << std::endl;
      ::close(fd);
      return 2;
    }
    const absl::Time end = absl::Now() + absl::Seconds(seconds);
    proto::TransitionBatch next = MakeBatch(actor_id, batches);
    uint64_t acked_before = 0;
    absl::Time progress = absl::Now();
    while (absl::Now() < end) {
      // Once acknowledged, nothing more for 1 s: the shards are gone.
      const uint64_t acked_now = (*writer)->acknowledged();
      if (acked_now != acked_before) {
        acked_before = acked_now;
        progress = absl::Now();
      } else if (acked_now > 0 && absl::Now() - progress > absl::Seconds(1)) {
        break;
      }
      absl::Status s = (*writer)->Insert(next);
      if (s.ok()) {
        next = MakeBatch(actor_id, ++batches);
      } else if (absl::IsUnavailable(s)) {
        absl::SleepFor(absl::Milliseconds(50));  // no shard up: Insert did
                                                 // not wait
      } else if (!absl::IsDeadlineExceeded(s)) {
        std::cerr << "replay_ctl: " << s << std::endl;
        code = 1;
        break;
      }
    }
    (*writer)->Flush(absl::Seconds(2)).IgnoreError();
    acknowledged = (*writer)->acknowledged();
  }  // the writer's threads are joined: no more Record calls
  if (acked.error() != 0) {
    std::cerr << "replay_ctl: write " << acked_path << ": "
              << std::strerror(acked.error()) << std::endl;
    code = 1;
  }
  ::close(fd);
  std::cout << "{\"batches\":" << batches
            << ",\"acknowledged\":" << acknowledged << "}" << std::endl;
  return code;
}

int Main(int argc, char** argv) {
  absl::StatusOr<std::vector<std::string>> parsed =
      ParseFlagsFromArgs(argc, argv);
  if (!parsed.ok()) return ReportFlagError("replay_ctl", parsed.status());
  absl::StatusOr<SecurityConfig> security = SecurityFromFlags();
  if (!security.ok()) return ReportFlagError("replay_ctl", security.status());
  WarnIfInsecure(*security, "replay_ctl");
  const std::vector<std::string>& args = *parsed;
  if (args.size() == 2 && args[0] == "checkpoint")
    return PrintCheckpoint(args[1], *security);
  if (args.size() == 2 && args[0] == "ids") return PrintIds(args[1], *security);
  uint32_t actor_id = 0;
  double seconds = 0;
  if (args.size() == 5 && args[0] == "insert" &&
      absl::SimpleAtoi(args[2], &actor_id) && actor_id < (1u << 31) &&
      absl::SimpleAtod(args[3], &seconds) && seconds > 0 && seconds < 3600) {
    return Insert(args[1], actor_id, seconds, args[4], *security);
  }
  std::cerr << "replay_ctl: " << kUsage << std::endl;
  return 2;
}

}  // namespace
}  // namespace softq

int main(int argc, char** argv) { return softq::Main(argc, argv); }
