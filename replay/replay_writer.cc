#include "replay/replay_writer.h"

#include <algorithm>
#include <deque>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "replay/batch_check.h"
#include "replay/busy.h"

namespace softq {

using replay_client_internal::IsTransient;
using replay_client_internal::kMaxBackoff;
using replay_client_internal::kMinBackoff;
using replay_client_internal::ToChrono;

namespace {

int64_t PayloadBytes(const proto::TransitionBatch& b) {
  return 4 * static_cast<int64_t>(b.observations_size() +
                                  b.next_observations_size() +
                                  b.actions_size() + b.rewards_size()) +
         b.dones_size() + 12 * static_cast<int64_t>(b.episode_ids_size()) +
         8 * static_cast<int64_t>(b.finished_returns_size());
}

bool Mergeable(const proto::InsertRequest& a, const proto::InsertRequest& b) {
  return a.priorities_size() == 0 && b.priorities_size() == 0 &&
         a.batch().actor_id() == b.batch().actor_id() &&
         a.batch().observation_dim() == b.batch().observation_dim() &&
         a.batch().action_dim() == b.batch().action_dim() &&
         (a.batch().episode_ids_size() == 0) ==
             (b.batch().episode_ids_size() == 0);
}

}  // namespace

// Every non-const field is guarded by the writer's mu_.
struct ReplayWriter::Shard {
  std::string address;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<proto::ReplayShard::Stub> stub;
  // A queued message and how many of the caller's batches it carries.
  struct Message {
    // Heap-allocated, so a pointer to it stays valid while others come and go.
    std::unique_ptr<proto::InsertRequest> request;
    int batches = 1;
  };
  // Unacknowledged messages in order; the first `sent` are written on the
  // current stream.
  std::deque<Message> pending;
  size_t sent = 0;
  bool up = true;  // optimistic until a stream fails
  std::string last_error;
  grpc::ClientContext* context =
      nullptr;  // of the open stream, for cancellation

  // Batches the pending messages carry: what the window counts (a short sum:
  // the window itself bounds the messages).
  int Batches() const {
    int n = 0;
    for (const Message& m : pending) n += m.batches;
    return n;
  }
};

ReplayWriter::ReplayWriter(ReplayClientOptions options)
    : options_(std::move(options)) {}

absl::StatusOr<std::unique_ptr<ReplayWriter>> ReplayWriter::Create(
    ReplayClientOptions options) {
  if (absl::Status s = ValidateClientOptions(options); !s.ok()) return s;
  std::unique_ptr<ReplayWriter> writer(new ReplayWriter(std::move(options)));
  for (const std::string& address : writer->options_.addresses) {
    auto shard = std::make_unique<Shard>();
    shard->address = address;
    shard->channel = MakeReplayChannel(address, writer->options_.keepalive,
                                       writer->options_.security);
    shard->stub = proto::ReplayShard::NewStub(shard->channel);
    writer->shards_.push_back(std::move(shard));
  }
  for (size_t i = 0; i < writer->shards_.size(); ++i) {
    writer->threads_.emplace_back(
        [w = writer.get(), i] { w->Run(static_cast<int>(i)); });
  }
  return writer;
}

ReplayWriter::~ReplayWriter() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    for (auto& shard : shards_) {
      if (shard->context != nullptr) shard->context->TryCancel();
    }
  }
  for (std::thread& t : threads_) t.join();
}

bool ReplayWriter::AnyShardUpLocked() const {
  return std::any_of(shards_.begin(), shards_.end(),
                     [](const auto& s) { return s->up; });
}

std::string ReplayWriter::ShardErrorsLocked() const {
  std::vector<std::string> parts;
  for (const auto& shard : shards_) {
    parts.push_back(absl::StrCat(shard->address, " ", shard->up ? "up" : "down",
                                 shard->last_error.empty() ? "" : ": ",
                                 shard->last_error));
  }
  return absl::StrJoin(parts, "; ");
}

absl::Status ReplayWriter::Insert(proto::TransitionBatch batch) {
  if (absl::Status s = CheckTransitionBatch(batch); !s.ok()) return s;
  auto request = std::make_unique<proto::InsertRequest>();
  *request->mutable_batch() = std::move(batch);
  const absl::Time deadline = absl::Now() + options_.rpc_timeout;
  const size_t limit = static_cast<size_t>(options_.max_in_flight_batches);
  const int64_t bytes = PayloadBytes(request->batch());
  // A shard takes the batch while fewer than max_in_flight_batches of its
  // batches are unacknowledged, coalesced or not: merging into a queued message
  // must not let an actor run ahead of a shard that holds its inserts back (its
  // data would be stale by the time it is stored).
  auto takes = [&](const Shard& shard) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return shard.up && static_cast<size_t>(shard.Batches()) < limit;
  };
  absl::MutexLock lock(&mu_);
  // (No shard up: no wait, UNAVAILABLE at once; the caller retries as it
  // likes.)
  auto room = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (stopping_ || !error_.ok() || !AnyShardUpLocked()) return true;
    for (const auto& shard : shards_) {
      if (takes(*shard)) return true;
    }
    return false;
  };
  mu_.AwaitWithDeadline(absl::Condition(&room), deadline);
  if (!error_.ok()) return std::exchange(error_, absl::OkStatus());
  if (stopping_) return absl::CancelledError("the writer is being destroyed");
  const size_t n = shards_.size();
  for (size_t k = 0; k < n; ++k) {
    const size_t i = (next_shard_ + k) % n;
    Shard& shard = *shards_[i];
    if (!takes(shard)) continue;
    // Joins the last queued message if that one is not sent yet (coalescing).
    if (shard.pending.size() > shard.sent &&
        Mergeable(*shard.pending.back().request, *request) &&
        PayloadBytes(shard.pending.back().request->batch()) + bytes <=
            options_.coalesce_bytes) {
      shard.pending.back().request->mutable_batch()->MergeFrom(
          request->batch());
      ++shard.pending.back().batches;
    } else {
      shard.pending.push_back({std::move(request), 1});
    }
    next_shard_ = i + 1;
    return absl::OkStatus();
  }
  if (!AnyShardUpLocked()) {
    return absl::UnavailableError(
        absl::StrCat("no replay shard reachable: ", ShardErrorsLocked()));
  }
  return absl::DeadlineExceededError(absl::StrCat(
      "back-pressure: every live shard has ", limit,
      " unacknowledged batches after ",
      absl::FormatDuration(options_.rpc_timeout), ": ", ShardErrorsLocked()));
}

absl::Status ReplayWriter::Flush(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto done = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (stopping_ || !error_.ok() || !AnyShardUpLocked()) return true;
    for (const auto& shard : shards_) {
      if (!shard->pending.empty()) return false;
    }
    return true;
  };
  mu_.AwaitWithDeadline(absl::Condition(&done), absl::Now() + timeout);
  if (!error_.ok()) return std::exchange(error_, absl::OkStatus());
  int pending = 0;
  for (const auto& shard : shards_) pending += shard->Batches();
  if (pending == 0) return absl::OkStatus();
  if (!AnyShardUpLocked()) {
    return absl::UnavailableError(absl::StrCat(
        pending, " batches unacknowledged and no shard reachable: ",
        ShardErrorsLocked()));
  }
  return absl::DeadlineExceededError(
      absl::StrCat(pending, " batches unacknowledged after ",
                   absl::FormatDuration(timeout), ": ", ShardErrorsLocked()));
}

uint64_t ReplayWriter::acknowledged() const {
  absl::MutexLock lock(&mu_);
  return acknowledged_;
}

uint64_t ReplayWriter::resent_batches() const {
  absl::MutexLock lock(&mu_);
  return resent_;
}

size_t ReplayWriter::pending_batches() const {
  absl::MutexLock lock(&mu_);
  size_t n = 0;
  for (const auto& shard : shards_) n += shard->Batches();
  return n;
}

void ReplayWriter::RequeueLocked(int from) {
  Shard& source = *shards_[from];
  std::vector<Shard*> live;
  for (size_t i = 0; i < shards_.size(); ++i) {
    if (static_cast<int>(i) != from && shards_[i]->up)
      live.push_back(shards_[i].get());
  }
  if (live.empty() || source.pending.empty()) return;
  size_t k = 0;
  while (!source.pending.empty()) {
    resent_ += source.pending.front().batches;
    live[k++ % live.size()]->pending.push_back(
        std::move(source.pending.front()));
    source.pending.pop_front();
  }
  source.sent = 0;
}

void ReplayWriter::Run(int index) {
  Shard& shard = *shards_[index];
  // How long to wait before retrying a shard that said it was busy (at its
  // limit of streams): doubles while it stays busy.
  absl::Duration busy_backoff = kMinBackoff;
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      auto work = [this, &shard]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stopping_ || (shard.up && !shard.pending.empty());
      };
      mu_.Await(absl::Condition(&work));
      if (stopping_) return;
    }
    const grpc::Status status = Stream(index);
    const bool busy = IsShardBusy(status);
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) return;
      shard.up = false;
      shard.sent = 0;
      shard.last_error = status.error_message();
      if (status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED &&
          !busy && !shard.pending.empty()) {
        // The server refused a message as too large: drop it rather than resend
        // forever.
        error_ = absl::ResourceExhaustedError(
            absl::StrCat("shard ", shard.address,
                         " refused a batch: ", status.error_message()));
        shard.pending.pop_front();
        shard.up = true;
        continue;
      }
      RequeueLocked(index);
    }
    if (busy) {
      // Down for a while, its batches sent elsewhere; not retried at once.
      absl::MutexLock lock(&mu_);
      auto stop = [this]()
                      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_; };
      mu_.AwaitWithTimeout(absl::Condition(&stop), busy_backoff);
      busy_backoff = std::min(2 * busy_backoff, kMaxBackoff);
    } else {
      busy_backoff = kMinBackoff;
    }
    absl::Duration backoff = kMinBackoff;
    while (true) {
      {
        absl::MutexLock lock(&mu_);
        if (stopping_) return;
        RequeueLocked(index);  // another shard may have come back meanwhile
      }
      if (shard.channel->WaitForConnected(ToChrono(absl::Now() + backoff))) {
        absl::MutexLock lock(&mu_);
        shard.up = true;
        shard.last_error.clear();
        break;
      }
      backoff = std::min(2 * backoff, kMaxBackoff);
    }
  }
}

grpc::Status ReplayWriter::Stream(int index) {
  Shard& shard = *shards_[index];
  grpc::ClientContext context;
  std::unique_ptr<
      grpc::ClientReaderWriter<proto::InsertRequest, proto::InsertResponse>>
      stream = shard.stub->Insert(&context);
  bool broken = false;  // guarded by mu_
  {
    absl::MutexLock lock(&mu_);
    shard.context = &context;
    if (stopping_) context.TryCancel();
  }
  std::thread reader([&] { ReadAcks(index, stream.get(), &broken); });
  uint64_t sequence = 0;
  bool write_failed = false;
  std::vector<proto::InsertRequest*> requests;
  while (!write_failed) {
    requests.clear();
    {
      absl::MutexLock lock(&mu_);
      auto ready = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stopping_ || broken || shard.sent < shard.pending.size();
      };
      mu_.Await(absl::Condition(&ready));
      if (stopping_ || broken) break;
      // Everything queued goes out in one flush (buffer_hint on all but the
      // last).
      for (; shard.sent < shard.pending.size(); ++shard.sent) {
        proto::InsertRequest* request = shard.pending[shard.sent].request.get();
        request->set_sequence(++sequence);
        requests.push_back(request);
      }
    }
    for (size_t i = 0; i < requests.size(); ++i) {
      grpc::WriteOptions options;
      if (i + 1 < requests.size()) options.set_buffer_hint();
      if (!stream->Write(*requests[i], options)) {
        write_failed = true;
        break;
      }
    }
  }
  // After a failed write the call is over and the reader ends by itself,
  // keeping the server's status for Finish; otherwise the stream is cancelled.
  if (!write_failed) context.TryCancel();
  reader.join();
  grpc::Status status = stream->Finish();
  absl::MutexLock lock(&mu_);
  shard.context = nullptr;
  if (status.ok())
    return grpc::Status(grpc::StatusCode::UNAVAILABLE, "stream closed");
  return status;
}

void ReplayWriter::ReadAcks(
    int index,
    grpc::ClientReaderWriter<proto::InsertRequest, proto::InsertResponse>*
        stream,
    bool* broken) {
  Shard& shard = *shards_[index];
  proto::InsertResponse response;
  while (stream->Read(&response)) {
    absl::MutexLock lock(&mu_);
    if (shard.sent == 0 ||
        shard.pending.front().request->sequence() != response.sequence()) {
      shard.last_error =
          absl::StrCat("ack for unknown sequence ", response.sequence());
      *broken = true;
      return;
    }
    const auto code = static_cast<grpc::StatusCode>(response.code());
    if (code == grpc::StatusCode::OK) {
      if (options_.on_acknowledged) {
        options_.on_acknowledged(shard.pending.front().request->batch());
      }
      acknowledged_ += response.count();
    } else if (IsTransient(code)) {
      // The shard is going away or could not store the batch in time: resend
      // elsewhere.
      shard.last_error = response.error();
      *broken = true;
      return;
    } else {
      error_ =
          absl::Status(static_cast<absl::StatusCode>(code),
                       absl::StrCat("shard ", shard.address,
                                    " rejected a batch: ", response.error()));
    }
    shard.pending.pop_front();
    --shard.sent;
  }
  absl::MutexLock lock(&mu_);
  *broken = true;
}

}  // namespace softq
