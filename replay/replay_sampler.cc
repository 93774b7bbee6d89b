#include "replay/replay_sampler.h"

#include <grpcpp/generic/generic_stub.h>

#include <algorithm>
#include <deque>
#include <random>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "common/transition_check.h"
#include "replay/busy.h"
#include "replay/sample_decoder.h"

namespace softq {

using replay_client_internal::AsyncCall;
using replay_client_internal::AwaitAll;
using replay_client_internal::IsTransient;
using replay_client_internal::kMaxBackoff;
using replay_client_internal::kMinBackoff;
using replay_client_internal::ShardError;
using replay_client_internal::ToChrono;

namespace {

// How long one Sample RPC may wait in a shard's rate limiter before the round
// is retried.
constexpr absl::Duration kSampleWait = absl::Seconds(1);
// Sizes learned from GetStats are refreshed this often (responses also carry
// them).
constexpr absl::Duration kStatsMaxAge = absl::Seconds(1);

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

}  // namespace

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

// `queue`'s first element, taken out. Next uses it rather than a local: with
// Next's two returns GCC 12 moves such a StatusOr local into the return value
// and reports a false -Wmaybe-uninitialized; here the one return builds it in
// place.
template <typename T>
T PopFront(std::deque<T>& queue) {
  T front = std::move(queue.front());
  queue.pop_front();
  return front;
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
  return PopFront(ready_);
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

  // Each batch split multinomially over the shards by size, drawn as one
  // binomial per shard but the last (the rows left out of the shards before,
  // with the shard's share of the weight left), not one draw per row; batch b
  // takes its rows from eligible[0], then eligible[1], ... Each shard's parts
  // of the round go out together, in as few RPCs as RpcItems allows.
  std::vector<std::vector<uint32_t>> parts(  // parts[b][j]: from eligible[j]
      batches, std::vector<uint32_t>(eligible.size(), 0));
  for (std::vector<uint32_t>& part : parts) {
    int left = batch_size_;
    double rest = total;
    for (size_t j = 0; j + 1 < eligible.size() && left > 0; ++j) {
      const double p = std::clamp(weights[j] / rest, 0.0, 1.0);
      part[j] = std::binomial_distribution<int>(left, p)(split_gen_);
      left -= static_cast<int>(part[j]);
      rest -= weights[j];
    }
    part.back() += left;
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
      request.set_packed_rows(true);
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

}  // namespace softq
