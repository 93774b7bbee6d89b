#include "actor/replay_sink.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "common/shutdown.h"

namespace softq {

absl::Status ReplaySink::Write(proto::TransitionBatch batch) {
  bool reported = false;
  while (true) {
    // Insert consumes its argument only when it returns OK or a permanent
    // error.
    absl::Status s = writer_->Insert(batch);
    if (s.ok() || (!absl::IsDeadlineExceeded(s) && !absl::IsUnavailable(s)))
      return s;
    ++waits_;
    if (ShutdownRequested())
      return absl::CancelledError("shutdown while waiting for replay");
    if (absl::IsUnavailable(s)) {  // no shard reachable: Insert did not wait
      if (!reported) {
        std::cerr << "actor: replay unavailable, retrying every 0.5 s: "
                  << s.message() << std::endl;
        reported = true;
      }
      if (WaitForShutdown(absl::Milliseconds(500))) {
        return absl::CancelledError("shutdown while waiting for replay");
      }
    }
  }
}

absl::StatusOr<std::unique_ptr<AckedIdsFile>> AckedIdsFile::Create(
    const std::string& path) {
  const int fd = ::open(
      path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) {
    return absl::InternalError(
        absl::StrCat("open ", path, ": ", std::strerror(errno)));
  }
  return std::unique_ptr<AckedIdsFile>(new AckedIdsFile(path, fd));
}

AckedIdsFile::~AckedIdsFile() { ::close(fd_); }

void AckedIdsFile::Record(const proto::TransitionBatch& batch) {
  const int n = batch.rewards_size();
  absl::MutexLock lock(&mu_);
  if (!error_.ok()) return;
  if (batch.episode_ids_size() != n || batch.step_ids_size() != n) {
    error_ = absl::InvalidArgumentError(
        absl::StrCat(path_, ": an acknowledged batch of ", n,
                     " transitions carries ", batch.episode_ids_size(),
                     " episode ids and ", batch.step_ids_size(), " step ids"));
    return;
  }
  std::string lines;
  lines.reserve(static_cast<size_t>(n) * 32);
  for (int i = 0; i < n; ++i) {
    absl::StrAppend(&lines, batch.actor_id(), " ", batch.episode_ids(i), " ",
                    batch.step_ids(i), "\n");
  }
  size_t done = 0;
  while (done < lines.size()) {
    const ssize_t w = ::write(fd_, lines.data() + done, lines.size() - done);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) {
      error_ = absl::InternalError(
          absl::StrCat("write ", path_, ": ", std::strerror(errno)));
      return;
    }
    done += static_cast<size_t>(w);
  }
  transitions_ += static_cast<uint64_t>(n);
}

absl::Status AckedIdsFile::status() const {
  absl::MutexLock lock(&mu_);
  return error_;
}

uint64_t AckedIdsFile::transitions() const {
  absl::MutexLock lock(&mu_);
  return transitions_;
}

}  // namespace softq
