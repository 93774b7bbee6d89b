// The gRPC face of one shard (proto/replay.proto's ReplayShard): translates
// requests into Shard calls and results into responses, nothing else. Bad input
// gets a status (for Insert, a per-batch code in the InsertResponse) naming the
// field; the stream and the server go on.
//
// Thread-safe: gRPC calls the handlers concurrently; all state is in the Shard
// but the checkpoint in progress (under checkpoint_mu_).
#ifndef SOFTQ_REPLAY_SERVICE_H_
#define SOFTQ_REPLAY_SERVICE_H_

#include <grpcpp/support/byte_buffer.h>

#include <atomic>
#include <memory>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "proto/replay.grpc.pb.h"
#include "replay/shard.h"

namespace softq {

// Bounds on the threads clients can hold (each Insert stream holds two, each
// waiting call one: 1,000 idle streams made 2,012 threads, issue 29). A call
// beyond them is answered at once with RESOURCE_EXHAUSTED "replay shard busy:
// ..." (replay/busy.h) and holds nothing; the calls already admitted go on.
struct ServiceLimits {
  // Insert streams open at once (--max_insert_streams).
  int max_insert_streams = 256;
  // Sample and Checkpoint calls in progress at once, the calls that can wait
  // (--max_waiting_calls).
  int max_waiting_calls = 64;
};

class ReplayService final : public proto::ReplayShard::Service {
 public:
  // `shard` outlives the service. `checkpoint_path` empty: Checkpoint fails
  // with FAILED_PRECONDITION. `limits` >= 1 each.
  ReplayService(Shard* shard, std::string checkpoint_path,
                ServiceLimits limits = ServiceLimits());

  // Insert (served by InsertStream, below): stores each batch in order and
  // answers each with its sequence, code and keys. A batch without data, a
  // non-increasing sequence or bad transitions is answered with
  // INVALID_ARGUMENT and not stored. Ends with OK when the client closes its
  // side; a message that does not parse as an InsertRequest ends it with
  // INVALID_ARGUMENT naming the message (nothing of it is stored, nothing after
  // it is read).
  // Sample (served by SampleStream, below): one draw, answered with the
  // transitions as SampleResponse.batch or, asked packed_rows, as .rows.
  grpc::Status UpdatePriorities(
      grpc::ServerContext* context,
      const proto::UpdatePrioritiesRequest* request,
      proto::UpdatePrioritiesResponse* response) override;
  grpc::Status GetStats(grpc::ServerContext* context,
                        const proto::StatsRequest* request,
                        proto::ShardStats* response) override;
  // One checkpoint at a time: a call that arrives while one is being written
  // waits for it (up to its deadline) and returns that checkpoint's result
  // instead of writing another, so a flood of calls writes one file, not one
  // each (issue 29). The result it shares may not hold inserts acknowledged
  // after that write began.
  grpc::Status Checkpoint(grpc::ServerContext* context,
                          const proto::CheckpointRequest* request,
                          proto::CheckpointResponse* response) override;

 private:
  // Insert with the messages as bytes: the generated handler parses them
  // itself, and a message that does not parse ends its Read loop just as the
  // client's closing does, so the stream ended OK (issue 29).
  grpc::Status InsertStream(grpc::ServerContext* context,
                            grpc::ServerReaderWriter<proto::InsertResponse,
                                                     grpc::ByteBuffer>* stream);

  // Sample with its answer as bytes: the packed_rows form is written straight
  // from the table (Shard::SamplePacked), not built as a SampleResponse.
  grpc::Status SampleStream(
      grpc::ServerContext* context,
      grpc::ServerUnaryStreamer<proto::SampleRequest, grpc::ByteBuffer>*
          stream);

  // A checkpoint being written, and its result once `done` is notified.
  struct CheckpointRun {
    absl::Notification done;
    grpc::Status status;  // set before done
    proto::CheckpointResponse response;
  };

  // A slot of a limited kind of call, held while the call runs.
  class Slot;

  Shard* const shard_;
  const std::string checkpoint_path_;
  const ServiceLimits limits_;
  std::atomic<int> insert_streams_{0};
  std::atomic<int> waiting_calls_{0};
  absl::Mutex checkpoint_mu_;
  // The checkpoint being written now (null when none); the calls that arrive
  // meanwhile share it.
  std::shared_ptr<CheckpointRun> checkpoint_running_
      ABSL_GUARDED_BY(checkpoint_mu_);
};

}  // namespace softq

#endif  // SOFTQ_REPLAY_SERVICE_H_
