#include "actor/replay_sink.h"

#include <iostream>

#include "common/shutdown.h"

namespace softq {

absl::Status ReplaySink::Write(proto::TransitionBatch batch) {
  while (true) {
    // Insert consumes its argument only when it returns OK or a permanent error.
    absl::Status s = writer_->Insert(batch);
    if (s.ok() || (!absl::IsDeadlineExceeded(s) && !absl::IsUnavailable(s))) return s;
    ++waits_;
    if (ShutdownRequested()) return absl::CancelledError("shutdown while waiting for replay");
    if (absl::IsUnavailable(s)) {
      std::cerr << "actor: replay unavailable, retrying: " << s.message() << std::endl;
      absl::SleepFor(absl::Milliseconds(500));
    }
  }
}

}  // namespace softq
