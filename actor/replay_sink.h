// ReplaySink: an actor's TransitionSink over the replay service
// (ReplayWriter, replay/replay_writer.h). Write blocks while the shards push
// back, retrying until the batch is queued or shutdown is requested: a slow
// replay slows the actor instead of growing its memory. Thread-compatible.
//
// AckedIdsFile: the identities of the transitions the replay acknowledged to
// this actor (actor_main --acked_ids_out), for tests that look each one up in
// what the shards hold.
#ifndef SOFTQ_ACTOR_REPLAY_SINK_H_
#define SOFTQ_ACTOR_REPLAY_SINK_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "actor/actor.h"
#include "proto/transition.pb.h"
#include "replay/replay_channel.h"
#include "replay/replay_writer.h"

namespace softq {

class ReplaySink : public TransitionSink {
 public:
  explicit ReplaySink(ReplayWriter* writer) : writer_(writer) {}

  // OK once queued; Cancelled if shutdown was requested while waiting; the
  // writer's error for a batch the shards refuse (InvalidArgument).
  absl::Status Write(proto::TransitionBatch batch) override;

  // Back-pressure waits so far (each up to the writer's rpc_timeout).
  int64_t waits() const { return waits_; }

 private:
  ReplayWriter* writer_;
  int64_t waits_ = 0;
};

// One line per acknowledged transition, "<actor_id> <episode_id> <step_id>\n"
// (decimal), appended when its acknowledgement arrives: pass Record to
// ReplayClientOptions::on_acknowledged, which reports each stored message once
// (a batch re-sent after a shard died is listed once, when a shard
// acknowledges it; one never acknowledged is never listed). Each message's
// lines go out in one write(2) before the writer counts the message, so the
// file survives kill -9 of the process and lists at least every transition
// acknowledged before the last one (the last one, too, unless the kill fell
// between its ack and its write). Thread-safe.
class AckedIdsFile {
 public:
  // Creates or truncates `path`; Internal (with errno text) when it cannot.
  static absl::StatusOr<std::unique_ptr<AckedIdsFile>> Create(
      const std::string& path);
  ~AckedIdsFile();
  AckedIdsFile(const AckedIdsFile&) = delete;
  AckedIdsFile& operator=(const AckedIdsFile&) = delete;

  // Appends `batch`'s transitions. A write error, or a batch without episode
  // and step ids, is kept for status() and ends recording.
  void Record(const proto::TransitionBatch& batch) ABSL_LOCKS_EXCLUDED(mu_);

  // The first error Record met, else OK.
  absl::Status status() const ABSL_LOCKS_EXCLUDED(mu_);
  // Transitions written so far.
  uint64_t transitions() const ABSL_LOCKS_EXCLUDED(mu_);
  const std::string& path() const { return path_; }

 private:
  AckedIdsFile(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}

  const std::string path_;
  const int fd_;
  mutable absl::Mutex mu_;
  absl::Status error_ ABSL_GUARDED_BY(mu_);
  uint64_t transitions_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace softq

#endif  // SOFTQ_ACTOR_REPLAY_SINK_H_
