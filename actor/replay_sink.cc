#include "actor/replay_sink.h"

#include <iostream>

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

}  // namespace softq
