#include "replay/service.h"

#include <algorithm>
#include <deque>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/grpc_status.h"
#include "replay/busy.h"

namespace softq {
namespace {

constexpr int64_t kMaxSampleTimeoutMs = 3600000;

absl::Time Deadline(const grpc::ServerContext* context) {
  const auto deadline = context->deadline();
  if (deadline == std::chrono::system_clock::time_point::max()) {
    return absl::InfiniteFuture();
  }
  return absl::FromChrono(deadline);
}

// The indices of Insert and Sample among ReplayShard's methods
// (proto/replay.proto).
constexpr int kInsertMethodIndex = 0;
constexpr int kSampleMethodIndex = 1;

void DeleteBytes(void* bytes) { delete[] static_cast<char*>(bytes); }

}  // namespace

// Takes one of `limit` slots counted by `count` for the life of a call, or
// says why not (ok() false).
class ReplayService::Slot {
 public:
  Slot(std::atomic<int>* count, int limit, const char* what, const char* flag)
      : count_(count) {
    if (count_->fetch_add(1) < limit) return;
    count_->fetch_sub(1);
    count_ = nullptr;
    refusal_ = grpc::Status(
        grpc::StatusCode::RESOURCE_EXHAUSTED,
        absl::StrCat(kShardBusyPrefix, "it serves at most ", limit, " ", what,
                     " at once (", flag, "); retry later"));
  }
  ~Slot() {
    if (count_ != nullptr) count_->fetch_sub(1);
  }
  Slot(const Slot&) = delete;
  Slot& operator=(const Slot&) = delete;
  bool ok() const { return count_ != nullptr; }
  const grpc::Status& refusal() const { return refusal_; }

 private:
  std::atomic<int>* count_;
  grpc::Status refusal_;
};

ReplayService::ReplayService(Shard* shard, std::string checkpoint_path,
                             ServiceLimits limits)
    : shard_(shard),
      checkpoint_path_(std::move(checkpoint_path)),
      limits_(limits) {
  MarkMethodStreamed(
      kInsertMethodIndex,
      new grpc::internal::BidiStreamingHandler<ReplayService, grpc::ByteBuffer,
                                               proto::InsertResponse>(
          [](ReplayService* service, grpc::ServerContext* context,
             grpc::ServerReaderWriter<proto::InsertResponse, grpc::ByteBuffer>*
                 stream) { return service->InsertStream(context, stream); },
          this));
  MarkMethodStreamed(
      kSampleMethodIndex,
      new grpc::internal::StreamedUnaryHandler<proto::SampleRequest,
                                               grpc::ByteBuffer>(
          [this](
              grpc::ServerContext* context,
              grpc::ServerUnaryStreamer<proto::SampleRequest, grpc::ByteBuffer>*
                  stream) { return SampleStream(context, stream); }));
}

grpc::Status ReplayService::InsertStream(
    grpc::ServerContext* context,
    grpc::ServerReaderWriter<proto::InsertResponse, grpc::ByteBuffer>* stream) {
  // Refused before its second thread starts or anything is read.
  const Slot slot(&insert_streams_, limits_.max_insert_streams,
                  "Insert streams", "--max_insert_streams");
  if (!slot.ok()) return slot.refusal();
  const CancelledFn cancelled = [context] { return context->IsCancelled(); };
  // Acks go out from a second thread so reading the next batch never waits for
  // a write. (buffer_hint on queued acks would save flushes, but gRPC 1.51's
  // sync server then holds them back and the client stalls.)
  absl::Mutex mu;
  std::deque<proto::InsertResponse> acks;  // guarded by mu
  bool reading_done = false;               // guarded by mu
  bool write_failed = false;               // guarded by mu
  std::thread writer([&] {
    std::vector<proto::InsertResponse> batch;
    while (true) {
      {
        absl::MutexLock lock(&mu);
        auto ready = [&] { return reading_done || !acks.empty(); };
        mu.Await(absl::Condition(&ready));
        if (acks.empty()) return;  // reading_done
        batch.assign(std::make_move_iterator(acks.begin()),
                     std::make_move_iterator(acks.end()));
        acks.clear();
      }
      for (const proto::InsertResponse& ack : batch) {
        if (!stream->Write(ack)) {
          absl::MutexLock lock(&mu);
          write_failed = true;
          return;
        }
      }
    }
  });
  proto::InsertRequest request;
  uint64_t last_sequence = 0;
  bool first = true;
  grpc::Status ended = grpc::Status::OK;
  grpc::ByteBuffer message;
  for (uint64_t n = 1; stream->Read(&message); ++n) {
    const size_t bytes = message.Length();
    if (const grpc::Status parsed =
            grpc::SerializationTraits<proto::InsertRequest>::Deserialize(
                &message, &request);
        !parsed.ok()) {
      ended = grpc::Status(
          grpc::StatusCode::INVALID_ARGUMENT,
          absl::StrCat("Insert stream message ", n, " (", bytes,
                       " bytes) does not parse as an InsertRequest; nothing "
                       "of it is stored and the stream ends here"));
      break;
    }
    proto::InsertResponse response;
    response.set_sequence(request.sequence());
    absl::StatusOr<KeyRange> keys;
    if (!first && request.sequence() <= last_sequence) {
      keys = absl::InvalidArgumentError(
          absl::StrCat("InsertRequest.sequence is ", request.sequence(),
                       ", expected > ", last_sequence));
    } else if (!request.has_batch()) {
      keys = absl::InvalidArgumentError("InsertRequest.batch is empty");
    } else {
      keys = shard_->Insert(request.batch(), request.priorities(),
                            Deadline(context), cancelled);
    }
    if (keys.ok()) {
      first = false;
      last_sequence = request.sequence();
      response.set_first_key(keys->first_key);
      response.set_count(keys->count);
    } else {
      response.set_code(static_cast<int32_t>(keys.status().code()));
      response.set_error(std::string(keys.status().message()));
    }
    absl::MutexLock lock(&mu);
    if (write_failed) break;
    acks.push_back(std::move(response));
  }
  {
    absl::MutexLock lock(&mu);
    reading_done = true;
  }
  writer.join();
  return ended;
}

grpc::Status ReplayService::SampleStream(
    grpc::ServerContext* context,
    grpc::ServerUnaryStreamer<proto::SampleRequest, grpc::ByteBuffer>* stream) {
  const Slot slot(&waiting_calls_, limits_.max_waiting_calls,
                  "Sample and Checkpoint calls", "--max_waiting_calls");
  if (!slot.ok()) return slot.refusal();
  proto::SampleRequest request;
  if (!stream->Read(&request)) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "the SampleRequest does not parse");
  }
  if (request.timeout_ms() < 0 || request.timeout_ms() > kMaxSampleTimeoutMs) {
    return grpc::Status(
        grpc::StatusCode::INVALID_ARGUMENT,
        absl::StrCat("SampleRequest.timeout_ms is ", request.timeout_ms(),
                     ", expected 0..", kMaxSampleTimeoutMs));
  }
  const absl::Time deadline =
      std::min(Deadline(context),
               absl::Now() + absl::Milliseconds(request.timeout_ms()));
  const auto cancelled = [context] { return context->IsCancelled(); };
  grpc::ByteBuffer answer;
  if (request.packed_rows()) {
    absl::StatusOr<PackedSample> packed =
        shard_->SamplePacked(request.batch_size(), deadline, cancelled);
    if (!packed.ok()) return ToGrpcStatus(packed.status());
    const size_t size = packed->size;
    grpc::Slice slice(packed->bytes.release(), size, DeleteBytes);
    answer = grpc::ByteBuffer(&slice, 1);
  } else {
    proto::SampleResponse response;
    if (absl::Status s = shard_->Sample(request.batch_size(), deadline,
                                        cancelled, &response);
        !s.ok()) {
      return ToGrpcStatus(s);
    }
    bool own = false;
    if (grpc::Status s =
            grpc::SerializationTraits<proto::SampleResponse>::Serialize(
                response, &answer, &own);
        !s.ok()) {
      return s;
    }
  }
  // Sent with the status, in one batch.
  stream->Write(answer, grpc::WriteOptions().set_last_message());
  return grpc::Status::OK;
}

grpc::Status ReplayService::UpdatePriorities(
    grpc::ServerContext*, const proto::UpdatePrioritiesRequest* request,
    proto::UpdatePrioritiesResponse* response) {
  return ToGrpcStatus(shard_->UpdatePriorities(*request, response));
}

grpc::Status ReplayService::GetStats(grpc::ServerContext*,
                                     const proto::StatsRequest*,
                                     proto::ShardStats* response) {
  shard_->Stats(response);
  return grpc::Status::OK;
}

grpc::Status ReplayService::Checkpoint(grpc::ServerContext* context,
                                       const proto::CheckpointRequest*,
                                       proto::CheckpointResponse* response) {
  if (checkpoint_path_.empty()) {
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                        "the shard was started without --checkpoint_dir");
  }
  const Slot slot(&waiting_calls_, limits_.max_waiting_calls,
                  "Sample and Checkpoint calls", "--max_waiting_calls");
  if (!slot.ok()) return slot.refusal();
  std::shared_ptr<CheckpointRun> run;
  bool writer = false;
  {
    absl::MutexLock lock(&checkpoint_mu_);
    if (checkpoint_running_ == nullptr) {
      checkpoint_running_ = std::make_shared<CheckpointRun>();
      writer = true;
    }
    run = checkpoint_running_;
  }
  if (writer) {
    absl::StatusOr<CheckpointWritten> written =
        shard_->Checkpoint(checkpoint_path_);
    if (written.ok()) {
      run->response.set_path(written->path);
      run->response.set_items(written->items);
      run->response.set_bytes(written->bytes);
    } else {
      run->status = ToGrpcStatus(written.status());
    }
    {
      absl::MutexLock lock(&checkpoint_mu_);
      checkpoint_running_ = nullptr;
    }
    run->done.Notify();
  } else if (!run->done.WaitForNotificationWithDeadline(Deadline(context))) {
    return grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED,
                        "a checkpoint is being written; its result did not "
                        "come within the call's deadline");
  }
  if (!run->status.ok()) return run->status;
  *response = run->response;
  return grpc::Status::OK;
}

}  // namespace softq
