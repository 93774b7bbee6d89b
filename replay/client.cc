#include "replay/client.h"

#include <grpcpp/generic/generic_stub.h>

#include <algorithm>
#include <random>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "common/grpc_security.h"
#include "common/grpc_status.h"
#include "common/transition_check.h"
#include "replay/batch_check.h"
#include "replay/busy.h"
#include "replay/sample_decoder.h"

namespace softq {
namespace {

constexpr absl::Duration kMinBackoff = absl::Milliseconds(100);
constexpr absl::Duration kMinKeepalive = absl::Seconds(1);
constexpr absl::Duration kMaxBackoff = absl::Seconds(1);
// How long one Sample RPC may wait in a shard's rate limiter before the round
// is retried.
constexpr absl::Duration kSampleWait = absl::Seconds(1);
// Sizes learned from GetStats are refreshed this often (responses also carry
// them).
constexpr absl::Duration kStatsMaxAge = absl::Seconds(1);

std::chrono::system_clock::time_point ToChrono(absl::Time t) {
  return absl::ToChronoTime(t);
}

// One unary call of a parallel fan-out over a completion queue.
template <typename Response>
struct AsyncCall {
  int shard = 0;
  grpc::ClientContext context;
  Response response;
  grpc::Status status;
  std::unique_ptr<grpc::ClientAsyncResponseReader<Response>> reader;
};

// Waits for every call started on `cq` (each tagged with its AsyncCall).
template <typename Response>
void AwaitAll(grpc::CompletionQueue* cq, size_t count) {
  for (size_t i = 0; i < count; ++i) {
    void* tag = nullptr;
    bool ok = false;
    if (!cq->Next(&tag, &ok)) break;
  }
}

// Rows one Sample RPC of the sampler asks for at most: a round's parts for a
// shard go out together, up to kMaxRowsPerSample rows and kMaxBytesPerSample
// bytes, never more than the shard holds room for (its capacity, the largest
// batch it accepts) unless one batch alone is larger, which the shard then
// refuses as it would that batch.
constexpr uint64_t kMaxRowsPerSample = 4096;
constexpr uint64_t kMaxBytesPerSample = uint64_t{8} << 20;
uint64_t RpcItems(uint64_t capacity, int batch_size, uint32_t observation_dim,
                  uint32_t action_dim) {
  const auto row_bytes = static_cast<uint64_t>(
      SampledTransitionBytes(observation_dim, action_dim));
  const uint64_t rows =
      std::min({capacity, kMaxRowsPerSample, kMaxBytesPerSample / row_bytes});
  return std::max<uint64_t>(batch_size, rows);
}

absl::Status ShardError(const std::string& address, int index,
                        const grpc::Status& status) {
  const absl::Status s = FromGrpcStatus(status);
  return absl::Status(s.code(), absl::StrCat("shard addresses[", index, "] (",
                                             address, "): ", s.message()));
}

bool IsTransient(grpc::StatusCode code) {
  return code == grpc::StatusCode::UNAVAILABLE ||
         code == grpc::StatusCode::CANCELLED ||
         code == grpc::StatusCode::DEADLINE_EXCEEDED ||
         code == grpc::StatusCode::ABORTED ||
         code == grpc::StatusCode::UNKNOWN ||
         code == grpc::StatusCode::INTERNAL;
}

}  // namespace

std::shared_ptr<grpc::Channel> MakeReplayChannel(
    const std::string& address, absl::Duration keepalive,
    const SecurityConfig& security) {
  grpc::ChannelArguments args;
  const int keepalive_ms = static_cast<int>(
      absl::ToInt64Milliseconds(std::max(keepalive, kMinKeepalive)));
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, keepalive_ms);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, keepalive_ms);
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  args.SetMaxReceiveMessageSize(-1);
  args.SetMaxSendMessageSize(-1);
  return MakeChannel(address, security, args);
}

void PermitReplayKeepalive(grpc::ServerBuilder* builder) {
  builder->AddChannelArgument(
      GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS,
      static_cast<int>(absl::ToInt64Milliseconds(kMinKeepalive)));
  builder->AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder->AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 0);
}

absl::Status ValidateClientOptions(const ReplayClientOptions& options) {
  if (options.addresses.empty()) {
    return absl::InvalidArgumentError("ReplayClientOptions.addresses is empty");
  }
  for (size_t i = 0; i < options.addresses.size(); ++i) {
    const std::string& a = options.addresses[i];
    const size_t colon = a.rfind(':');
    int port = 0;
    if (colon == std::string::npos || colon == 0 ||
        !absl::SimpleAtoi(a.substr(colon + 1), &port) || port < 1 ||
        port > 65535) {
      return absl::InvalidArgumentError(
          absl::StrCat("ReplayClientOptions.addresses[", i, "] is \"", a,
                       "\", expected host:port with port 1..65535"));
    }
  }
  if (options.keepalive < kMinKeepalive) {
    return absl::InvalidArgumentError(
        absl::StrCat("ReplayClientOptions.keepalive is ",
                     absl::FormatDuration(options.keepalive),
                     ", expected >= ", absl::FormatDuration(kMinKeepalive)));
  }
  if (options.rpc_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "ReplayClientOptions.rpc_timeout is ",
        absl::FormatDuration(options.rpc_timeout), ", expected > 0"));
  }
  if (options.sample_rounds_in_flight < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("ReplayClientOptions.sample_rounds_in_flight is ",
                     options.sample_rounds_in_flight, ", expected >= 1"));
  }
  if (options.max_in_flight_batches < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("ReplayClientOptions.max_in_flight_batches is ",
                     options.max_in_flight_batches, ", expected >= 1"));
  }
  return absl::OkStatus();
}

// ----------------------------------------------------------------------------
// ReplayWriter

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

// ---------------------------------------------------------------------------
// ReplaySampler

// Touched only by the sampler's thread (and UpdatePriorities, which reads the
// stub).
struct ReplaySampler::Shard {
  std::string address;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<proto::ReplayShard::Stub> stub;
  // Sample with its answer as bytes, for the sample decoder.
  std::unique_ptr<grpc::GenericStub> generic;
  bool known = false;  // size fields valid
  uint64_t size = 0;
  uint64_t capacity = 0;
  uint32_t observation_dim = 0, action_dim = 0;  // 0 until it holds data
  uint64_t min_size = 1;
  absl::Time stats_time = absl::InfinitePast();
  absl::Time retry_at = absl::InfinitePast();
  absl::Duration backoff = kMinBackoff;
  std::string last_error;
};

// One Sample RPC of a round: its answer's rows fill `runs`.
struct ReplaySampler::Call {
  Round* round = nullptr;
  int shard = 0;  // index into shards_
  std::vector<RowRun> runs;
  grpc::ClientContext context;
  grpc::ByteBuffer request;  // the serialized SampleRequest
  grpc::ByteBuffer answer;
  grpc::Status status;
  std::unique_ptr<grpc::ClientAsyncResponseReader<grpc::ByteBuffer>> reader;
};

// Batches drawn together, their calls in flight; owned by Run's thread.
struct ReplaySampler::Round {
  Round(int count, int batch_size)
      : count(count), assembler(count, batch_size) {}
  const int count;
  SampleAssembler assembler;
  std::vector<std::unique_ptr<Call>> calls;
  size_t pending = 0;                     // calls not finished
  std::vector<double> shard_probability;  // P(shard), by index into shards_
  uint64_t total_size = 0;
  absl::Status error;  // the first call's that failed
};

namespace {

constexpr char kSampleMethod[] = "/softq.proto.ReplayShard/Sample";
// A round holds about this many bytes of rows (fewer, larger RPCs for small
// rows; several rounds in flight for large ones).
constexpr int64_t kRoundBytes = int64_t{1} << 20;

grpc::ByteBuffer SerializedRequest(const proto::SampleRequest& request) {
  grpc::Slice slice(request.SerializeAsString());
  return grpc::ByteBuffer(&slice, 1);
}

}  // namespace

int SampleRoundBatches(int batch_size, int prefetch, int rounds_in_flight,
                       uint32_t observation_dim, uint32_t action_dim) {
  const int64_t batch_bytes =
      std::max<int64_t>(1, batch_size) *
      SampledTransitionBytes(observation_dim, action_dim);
  const int64_t rounds = std::max(1, rounds_in_flight);
  const int64_t share = (prefetch + rounds - 1) / rounds;
  return static_cast<int>(std::max<int64_t>(
      1, std::min<int64_t>(share, kRoundBytes / batch_bytes)));
}

ReplaySampler::ReplaySampler(ReplayClientOptions options, int batch_size,
                             int prefetch)
    : options_(std::move(options)),
      batch_size_(batch_size),
      prefetch_(prefetch),
      split_gen_(options_.sample_seed.value_or(std::random_device()())) {}

absl::StatusOr<std::unique_ptr<ReplaySampler>> ReplaySampler::Create(
    ReplayClientOptions options, int batch_size, int prefetch) {
  if (absl::Status s = ValidateClientOptions(options); !s.ok()) return s;
  if (batch_size < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "ReplaySampler batch_size is ", batch_size, ", expected >= 1"));
  }
  if (prefetch < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "ReplaySampler prefetch is ", prefetch, ", expected >= 1"));
  }
  std::unique_ptr<ReplaySampler> sampler(
      new ReplaySampler(std::move(options), batch_size, prefetch));
  for (const std::string& address : sampler->options_.addresses) {
    auto shard = std::make_unique<Shard>();
    shard->address = address;
    shard->channel = MakeReplayChannel(address, sampler->options_.keepalive,
                                       sampler->options_.security);
    shard->stub = proto::ReplayShard::NewStub(shard->channel);
    shard->generic = std::make_unique<grpc::GenericStub>(shard->channel);
    sampler->shards_.push_back(std::move(shard));
  }
  sampler->thread_ = std::thread([s = sampler.get()] { s->Run(); });
  return sampler;
}

ReplaySampler::~ReplaySampler() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    for (grpc::ClientContext* context : in_flight_) context->TryCancel();
  }
  thread_.join();
}

absl::StatusOr<SampledBatch> ReplaySampler::Next(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return !ready_.empty();
  };
  if (!mu_.AwaitWithDeadline(absl::Condition(&ready), absl::Now() + timeout)) {
    return absl::DeadlineExceededError(
        absl::StrCat("no replay batch within ", absl::FormatDuration(timeout),
                     last_error_.ok() ? "" : ": ", last_error_.message()));
  }
  absl::StatusOr<SampledBatch> batch = std::move(ready_.front());
  ready_.pop_front();
  return batch;
}

void ReplaySampler::Run() {
  grpc::CompletionQueue cq;
  std::vector<std::unique_ptr<Round>> rounds;  // in flight
  int on_the_way = 0;                          // their batches
  int round_size = 1;                          // the last round's batches
  absl::Time retry_at = absl::InfinitePast();
  while (true) {
    bool stopping = false;
    // New rounds while the prefetch has room; with rounds on their way, only
    // for a whole round (not one small round per batch the learner takes).
    while (static_cast<int>(rounds.size()) < options_.sample_rounds_in_flight &&
           absl::Now() >= retry_at) {
      int room = 0;
      {
        absl::MutexLock lock(&mu_);
        stopping = stopping_;
        room = prefetch_ - static_cast<int>(ready_.size()) - on_the_way;
      }
      if (stopping || room <= 0 || (!rounds.empty() && room < round_size)) {
        break;
      }
      absl::StatusOr<std::unique_ptr<Round>> round = StartRound(room, &cq);
      if (!round.ok()) {
        absl::MutexLock lock(&mu_);
        if (IsTransient(static_cast<grpc::StatusCode>(round.status().code()))) {
          last_error_ = round.status();
          retry_at = absl::Now() + absl::Milliseconds(20);
        } else {
          ready_.push_back(round.status());
          last_error_ = absl::OkStatus();
        }
        break;
      }
      on_the_way += (*round)->count;
      round_size = (*round)->count;
      rounds.push_back(*std::move(round));
    }
    if (rounds.empty()) {
      absl::MutexLock lock(&mu_);
      if (stopping_) break;
      if (absl::Now() < retry_at) {
        // A brief pause before the next attempt; the destructor's stopping_
        // cuts it short.
        auto stop = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
          return stopping_;
        };
        mu_.AwaitWithDeadline(absl::Condition(&stop), retry_at);
      } else {
        auto room = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
          return stopping_ || static_cast<int>(ready_.size()) < prefetch_;
        };
        mu_.Await(absl::Condition(&room));
      }
      continue;
    }
    void* tag = nullptr;
    bool ok = false;
    if (!cq.Next(&tag, &ok)) break;  // not shut down yet: never
    Call* call = static_cast<Call*>(tag);
    Finished(call);
    Round* round = call->round;
    if (--round->pending > 0) continue;
    auto it = std::find_if(rounds.begin(), rounds.end(),
                           [round](const auto& r) { return r.get() == round; });
    std::unique_ptr<Round> done = std::move(*it);
    rounds.erase(it);
    on_the_way -= done->count;
    absl::StatusOr<std::vector<SampledBatch>> batches = Complete(done.get());
    absl::MutexLock lock(&mu_);
    if (batches.ok()) {
      for (SampledBatch& b : *batches) ready_.push_back(std::move(b));
      last_error_ = absl::OkStatus();
    } else if (!IsTransient(
                   static_cast<grpc::StatusCode>(batches.status().code()))) {
      ready_.push_back(batches.status());
      last_error_ = absl::OkStatus();
    } else {
      last_error_ = batches.status();
      retry_at = absl::Now() + absl::Milliseconds(20);
    }
  }
  cq.Shutdown();
  void* tag = nullptr;
  bool ok = false;
  while (cq.Next(&tag, &ok)) {
  }
}

void ReplaySampler::RefreshSizes() {
  const absl::Time now = absl::Now();
  grpc::CompletionQueue cq;
  std::vector<std::unique_ptr<AsyncCall<proto::ShardStats>>> calls;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    for (size_t i = 0; i < shards_.size(); ++i) {
      Shard& shard = *shards_[i];
      if (now < shard.retry_at ||
          (shard.known && now - shard.stats_time < kStatsMaxAge)) {
        continue;
      }
      auto call = std::make_unique<AsyncCall<proto::ShardStats>>();
      call->shard = static_cast<int>(i);
      call->context.set_deadline(
          ToChrono(now + std::min(options_.rpc_timeout, absl::Seconds(2))));
      call->reader =
          shard.stub->AsyncGetStats(&call->context, proto::StatsRequest(), &cq);
      call->reader->Finish(&call->response, &call->status, call.get());
      in_flight_.push_back(&call->context);
      calls.push_back(std::move(call));
    }
  }
  if (calls.empty()) return;
  AwaitAll<proto::ShardStats>(&cq, calls.size());
  absl::MutexLock lock(&mu_);
  for (const auto& call : calls) {
    in_flight_.erase(
        std::find(in_flight_.begin(), in_flight_.end(), &call->context));
    Shard& shard = *shards_[call->shard];
    if (call->status.ok()) {
      shard.known = true;
      shard.size = call->response.size();
      shard.capacity = call->response.capacity();
      shard.observation_dim = call->response.observation_dim();
      shard.action_dim = call->response.action_dim();
      shard.min_size = std::max<uint64_t>(
          1, call->response.rate_limiter().min_size_to_sample());
      shard.stats_time = now;
      shard.backoff = kMinBackoff;
      shard.last_error.clear();
    } else {
      shard.known = false;
      shard.retry_at = now + shard.backoff;
      shard.backoff = std::min(2 * shard.backoff, kMaxBackoff);
      shard.last_error = call->status.error_message();
    }
  }
}

absl::StatusOr<std::unique_ptr<ReplaySampler::Round>> ReplaySampler::StartRound(
    int count, grpc::CompletionQueue* cq) {
  RefreshSizes();
  std::vector<int> eligible;
  std::vector<double> weights;
  std::vector<std::string> reasons;
  const absl::Time now = absl::Now();
  for (size_t i = 0; i < shards_.size(); ++i) {
    const Shard& shard = *shards_[i];
    if (!shard.known || now < shard.retry_at) {
      reasons.push_back(
          absl::StrCat(shard.address, ": down (", shard.last_error, ")"));
    } else if (shard.size < shard.min_size) {
      reasons.push_back(absl::StrCat(shard.address, ": holds ", shard.size,
                                     " of ", shard.min_size,
                                     " needed to sample"));
    } else {
      eligible.push_back(static_cast<int>(i));
      weights.push_back(static_cast<double>(shard.size));
    }
  }
  if (eligible.empty()) {
    return absl::UnavailableError(absl::StrCat(
        "no replay shard can be sampled: ", absl::StrJoin(reasons, "; ")));
  }
  double total = 0;
  for (double w : weights) total += w;

  // The round's size: at most `count` batches, about kRoundBytes of rows, and
  // a share of the prefetch that lets sample_rounds_in_flight rounds overlap.
  const Shard& first = *shards_[eligible.front()];
  const int batches = std::min(
      count, SampleRoundBatches(batch_size_, prefetch_,
                                options_.sample_rounds_in_flight,
                                first.observation_dim, first.action_dim));

  // Each batch split multinomially over the shards by size; batch b takes its
  // rows from eligible[0], then eligible[1], ... Each shard's parts of the
  // round go out together, in as few RPCs as RpcItems allows.
  std::discrete_distribution<int> pick(weights.begin(), weights.end());
  std::vector<std::vector<uint32_t>> parts(  // parts[b][j]: from eligible[j]
      batches, std::vector<uint32_t>(eligible.size(), 0));
  for (std::vector<uint32_t>& part : parts) {
    for (int i = 0; i < batch_size_; ++i) ++part[pick(split_gen_)];
  }
  auto round = std::make_unique<Round>(batches, batch_size_);
  round->total_size = static_cast<uint64_t>(total);
  round->shard_probability.assign(shards_.size(), 0.0);
  const absl::Duration wait = std::min(kSampleWait, options_.rpc_timeout);
  for (size_t j = 0; j < eligible.size(); ++j) {
    const Shard& shard = *shards_[eligible[j]];
    round->shard_probability[eligible[j]] = weights[j] / total;
    const uint64_t limit = RpcItems(shard.capacity, batch_size_,
                                    shard.observation_dim, shard.action_dim);
    std::unique_ptr<Call> call;
    uint64_t rows = 0;  // in `call`
    auto send = [&]() {
      proto::SampleRequest request;
      request.set_batch_size(static_cast<uint32_t>(rows));
      request.set_timeout_ms(absl::ToInt64Milliseconds(wait));
      call->context.set_deadline(
          ToChrono(absl::Now() + wait + options_.rpc_timeout));
      call->request = SerializedRequest(request);
      round->calls.push_back(std::move(call));
      rows = 0;
    };
    for (int b = 0; b < batches; ++b) {
      uint32_t offset = 0;
      for (size_t k = 0; k < j; ++k) offset += parts[b][k];
      for (uint32_t need = parts[b][j]; need > 0;) {
        if (call == nullptr) {
          call = std::make_unique<Call>();
          call->round = round.get();
          call->shard = eligible[j];
        }
        const auto take =
            static_cast<uint32_t>(std::min<uint64_t>(need, limit - rows));
        call->runs.push_back(
            RowRun{b, static_cast<int>(offset), static_cast<int>(take)});
        offset += take;
        need -= take;
        rows += take;
        if (rows == limit) send();
      }
    }
    if (call != nullptr) send();
  }
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) {
      return absl::CancelledError("the sampler is being destroyed");
    }
    for (const std::unique_ptr<Call>& call : round->calls) {
      in_flight_.push_back(&call->context);
    }
  }
  // Prepared only now that the round is sure to run: a call prepared and never
  // started would leak its request's buffer. A context the destructor cancels
  // before its call exists cancels the call as it starts (it ends CANCELLED).
  round->pending = round->calls.size();
  for (const std::unique_ptr<Call>& call : round->calls) {
    call->reader = shards_[call->shard]->generic->PrepareUnaryCall(
        &call->context, kSampleMethod, call->request, cq);
    call->reader->StartCall();
    call->reader->Finish(&call->answer, &call->status, call.get());
  }
  return round;
}

void ReplaySampler::Finished(Call* call) {
  {
    absl::MutexLock lock(&mu_);
    in_flight_.erase(
        std::find(in_flight_.begin(), in_flight_.end(), &call->context));
  }
  Round& round = *call->round;
  Shard& shard = *shards_[call->shard];
  if (call->status.ok()) {
    if (!round.error.ok()) return;  // the round is lost anyway
    uint64_t table_size = 0;
    const absl::Status s =
        round.assembler.Add(&call->answer, call->runs, call->shard,
                            round.shard_probability[call->shard], &table_size);
    call->answer.Clear();
    if (s.ok()) {
      shard.size = table_size;
      return;
    }
    round.error = absl::Status(
        s.code(), absl::StrCat("shard addresses[", call->shard, "] (",
                               shard.address, "): ", s.message()));
    shard.known = false;  // refresh its stats before the next round
    shard.last_error = std::string(s.message());
    return;
  }
  // A shard at its limit of waiting calls is retried like one that is down.
  const grpc::Status status = IsShardBusy(call->status)
                                  ? grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                                 call->status.error_message())
                                  : call->status;
  if (round.error.ok())
    round.error = ShardError(shard.address, call->shard, status);
  // Down, busy, or held back by its rate limiter: skipped for a backoff, so
  // that the next rounds draw from the other shards.
  if (status.error_code() == grpc::StatusCode::UNAVAILABLE ||
      status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
    if (shard.known) {
      shard.retry_at = absl::Now() + shard.backoff;
      shard.backoff = std::min(2 * shard.backoff, kMaxBackoff);
    }
    shard.known = false;
  } else {
    shard.known = false;  // refresh its stats before the next round
  }
  shard.last_error = call->status.error_message();
}

absl::StatusOr<std::vector<SampledBatch>> ReplaySampler::Complete(
    Round* round) {
  if (!round->error.ok()) return round->error;
  return std::move(round->assembler).Finish(round->total_size);
}

absl::Status ReplaySampler::UpdatePriorities(
    const std::vector<uint64_t>& keys, const std::vector<int>& shard_index,
    const std::vector<float>& priorities) {
  if (keys.size() != shard_index.size() || keys.size() != priorities.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "UpdatePriorities: keys has ", keys.size(), " values, shard_index ",
        shard_index.size(), ", priorities ", priorities.size(),
        "; expected equal lengths"));
  }
  std::vector<proto::UpdatePrioritiesRequest> requests(shards_.size());
  for (size_t i = 0; i < keys.size(); ++i) {
    if (shard_index[i] < 0 ||
        shard_index[i] >= static_cast<int>(shards_.size())) {
      return absl::InvalidArgumentError(
          absl::StrCat("UpdatePriorities: shard_index[", i, "] is ",
                       shard_index[i], ", expected 0..", shards_.size() - 1));
    }
    requests[shard_index[i]].add_keys(keys[i]);
    requests[shard_index[i]].add_priorities(priorities[i]);
  }
  grpc::CompletionQueue cq;
  std::vector<std::unique_ptr<AsyncCall<proto::UpdatePrioritiesResponse>>>
      calls;
  for (size_t i = 0; i < shards_.size(); ++i) {
    if (requests[i].keys_size() == 0) continue;
    auto call = std::make_unique<AsyncCall<proto::UpdatePrioritiesResponse>>();
    call->shard = static_cast<int>(i);
    call->context.set_deadline(ToChrono(absl::Now() + options_.rpc_timeout));
    call->reader = shards_[i]->stub->AsyncUpdatePriorities(&call->context,
                                                           requests[i], &cq);
    call->reader->Finish(&call->response, &call->status, call.get());
    calls.push_back(std::move(call));
  }
  AwaitAll<proto::UpdatePrioritiesResponse>(&cq, calls.size());
  for (const auto& call : calls) {
    if (!call->status.ok()) {
      return ShardError(shards_[call->shard]->address, call->shard,
                        call->status);
    }
  }
  return absl::OkStatus();
}

// -------------------------------------------------------------------------------
// QueryStats

std::vector<absl::StatusOr<proto::ShardStats>> QueryStatsEach(
    const std::vector<std::string>& addresses, absl::Duration timeout,
    const SecurityConfig& security) {
  grpc::CompletionQueue cq;
  std::vector<std::unique_ptr<AsyncCall<proto::ShardStats>>> calls;
  std::vector<std::unique_ptr<proto::ReplayShard::Stub>> stubs;
  const absl::Time deadline = absl::Now() + timeout;
  for (size_t i = 0; i < addresses.size(); ++i) {
    stubs.push_back(proto::ReplayShard::NewStub(
        MakeReplayChannel(addresses[i], absl::Seconds(10), security)));
    auto call = std::make_unique<AsyncCall<proto::ShardStats>>();
    call->shard = static_cast<int>(i);
    call->context.set_deadline(ToChrono(deadline));
    // A connection attempt that fails once (a loaded machine) is retried until
    // the deadline.
    call->context.set_wait_for_ready(true);
    call->reader =
        stubs.back()->AsyncGetStats(&call->context, proto::StatsRequest(), &cq);
    call->reader->Finish(&call->response, &call->status, call.get());
    calls.push_back(std::move(call));
  }
  AwaitAll<proto::ShardStats>(&cq, calls.size());
  std::vector<absl::StatusOr<proto::ShardStats>> out;
  for (const auto& call : calls) {
    if (call->status.ok()) {
      out.push_back(std::move(call->response));
    } else if (call->status.error_code() ==
               grpc::StatusCode::DEADLINE_EXCEEDED) {
      out.push_back(absl::UnavailableError(absl::StrCat(
          "shard addresses[", call->shard, "] (", addresses[call->shard],
          ") did not answer within ", absl::FormatDuration(timeout), ": ",
          call->status.error_message())));
    } else {
      out.push_back(
          ShardError(addresses[call->shard], call->shard, call->status));
    }
  }
  return out;
}

absl::StatusOr<std::vector<proto::ShardStats>> QueryStats(
    const std::vector<std::string>& addresses, absl::Duration timeout,
    const SecurityConfig& security) {
  if (addresses.empty())
    return absl::InvalidArgumentError("QueryStats: addresses is empty");
  std::vector<proto::ShardStats> out;
  for (absl::StatusOr<proto::ShardStats>& s :
       QueryStatsEach(addresses, timeout, security)) {
    if (!s.ok()) return s.status();
    out.push_back(*std::move(s));
  }
  return out;
}

}  // namespace softq
