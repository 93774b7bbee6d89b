// ReplaySink: an actor's TransitionSink over the replay service
// (replay/client.h). Write blocks while the shards push back, retrying until
// the batch is queued or shutdown is requested: a slow replay slows the actor
// instead of growing its memory. Thread-compatible.
#ifndef SOFTQ_ACTOR_REPLAY_SINK_H_
#define SOFTQ_ACTOR_REPLAY_SINK_H_

#include "actor/actor.h"
#include "replay/client.h"

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

}  // namespace softq

#endif  // SOFTQ_ACTOR_REPLAY_SINK_H_
