// The limit replay_bench compares the shard with: a server that acknowledges
// inserts without storing them and answers Sample with a prebuilt batch, and
// the bare-gRPC clients that drive it the way the client library drives a
// shard.
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <iostream>
#include <map>
#include <memory>
#include <random>
#include <thread>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "bench/replay/bench_support.h"
#include "common/row_layout.h"
#include "proto/replay.grpc.pb.h"
#include "replay/replay_channel.h"
#include "replay/replay_sampler.h"

namespace softq {
namespace replay_bench {

class DiscardService final : public proto::ReplayShard::Service {
 public:
  DiscardService(uint32_t od, uint32_t ad) : od_(od), ad_(ad) {}
  // Acknowledges every message as a shard does, storing nothing.
  grpc::Status Insert(
      grpc::ServerContext*,
      grpc::ServerReaderWriter<proto::InsertResponse, proto::InsertRequest>*
          stream) override {
    proto::InsertRequest request;
    proto::InsertResponse response;
    while (stream->Read(&request)) {
      response.set_sequence(request.sequence());
      response.set_count(request.batch().rewards_size());
      if (!stream->Write(response)) break;
    }
    return grpc::Status::OK;
  }
  // Sizes as a full shard's, so that a ReplaySampler samples it.
  grpc::Status GetStats(grpc::ServerContext*, const proto::StatsRequest*,
                        proto::ShardStats* stats) override {
    stats->set_size(1000000);
    stats->set_capacity(1000000);
    stats->set_observation_dim(od_);
    stats->set_action_dim(ad_);
    return grpc::Status::OK;
  }
  // Answers with a prebuilt answer of the size and form asked for (built once
  // per size and form; the packed_rows form is what ReplaySampler asks for).
  grpc::Status Sample(grpc::ServerContext*, const proto::SampleRequest* request,
                      proto::SampleResponse* response) override {
    const uint32_t n = request->batch_size();
    const proto::SampleResponse* answer = nullptr;
    {
      absl::MutexLock lock(&mu_);
      std::unique_ptr<proto::SampleResponse>& a =
          answers_[{n, request->packed_rows()}];
      if (a == nullptr) {
        a = std::make_unique<proto::SampleResponse>();
        std::mt19937 gen(7);
        const proto::TransitionBatch batch = RandomBatch(n, od_, ad_, &gen);
        if (request->packed_rows()) {
          const RowLayout layout(od_, ad_);
          std::vector<float> rows(n * layout.width());
          for (uint32_t i = 0; i < n; ++i) {
            PackRow(batch, i, layout, rows.data() + i * layout.width());
          }
          a->set_observation_dim(od_);
          a->set_action_dim(ad_);
          a->set_rows(rows.data(), rows.size() * sizeof(float));
        } else {
          *a->mutable_batch() = batch;
        }
        for (uint32_t i = 0; i < n; ++i) {
          a->add_keys(i);
          a->add_probabilities(1.0 / n);
          if (request->packed_rows()) {
            a->add_episode_ids(batch.episode_ids(i));
            a->add_step_ids(batch.step_ids(i));
          }
        }
        a->set_table_size(n);
      }
      answer = a.get();  // never freed while the server runs
    }
    *response = *answer;
    return grpc::Status::OK;
  }

 private:
  const uint32_t od_, ad_;
  absl::Mutex mu_;
  // By batch size and packed_rows.
  std::map<std::pair<uint32_t, bool>, std::unique_ptr<proto::SampleResponse>>
      answers_ ABSL_GUARDED_BY(mu_);
};

int RunDiscardServer() {
  DiscardService service(absl::GetFlag(FLAGS_observation_dim),
                         absl::GetFlag(FLAGS_action_dim));
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                           &port);
  builder.SetMaxReceiveMessageSize(64 << 20);
  builder.SetMaxSendMessageSize(64 << 20);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr) return 1;
  std::cout << "discard_server listening on 127.0.0.1:" << port << std::endl;
  server->Wait();  // killed by the bench
  return 0;
}

// The limit of the writer's path: the same batches, coalesced as the writer
// coalesces at most (ReplayClientOptions::coalesce_bytes) into messages built
// before the clock starts, on one stream to a server that acknowledges each
// message without storing it, with at most --max_in_flight batches
// unacknowledged (the writer's window).
double InsertRaw(const std::string& address, uint32_t od, uint32_t ad,
                 uint64_t total) {
  const uint32_t n = absl::GetFlag(FLAGS_insert_batch);
  const int window = std::max(1, absl::GetFlag(FLAGS_max_in_flight));
  std::vector<proto::InsertRequest> batches = Requests(od, ad, n);
  const int64_t batch_bytes =
      static_cast<int64_t>(n) * ((2 * od + ad + 1) * 4 + 1);
  const int per_message = static_cast<int>(std::clamp<int64_t>(
      ReplayClientOptions().coalesce_bytes / batch_bytes, 1, window));
  std::vector<proto::InsertRequest> messages(batches.size());
  for (size_t m = 0; m < messages.size(); ++m) {
    for (int k = 0; k < per_message; ++k) {
      messages[m].mutable_batch()->MergeFrom(
          batches[(m + k) % batches.size()].batch());
    }
  }
  auto stub = proto::ReplayShard::NewStub(MakeReplayChannel(address));
  grpc::ClientContext context;
  absl::Mutex mu;
  int unacked = 0;     // batches; guarded by mu
  uint64_t acked = 0;  // transitions; guarded by mu
  const absl::Time start = absl::Now();
  auto stream = stub->Insert(&context);
  std::thread reader([&] {
    proto::InsertResponse response;
    while (stream->Read(&response)) {
      absl::MutexLock lock(&mu);
      unacked -= per_message;
      acked += response.count();
    }
  });
  uint64_t sent = 0;
  for (uint64_t i = 0; sent < total; ++i) {
    {
      absl::MutexLock lock(&mu);
      auto room = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
        return unacked + per_message <= window;
      };
      mu.Await(absl::Condition(&room));
      unacked += per_message;
    }
    proto::InsertRequest& r = messages[i % messages.size()];
    r.set_sequence(i + 1);
    if (!stream->Write(r)) break;
    sent += static_cast<uint64_t>(per_message) * n;
  }
  {
    absl::MutexLock lock(&mu);
    auto all = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { return unacked <= 0; };
    mu.AwaitWithTimeout(absl::Condition(&all), absl::Seconds(60));
  }
  const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  stream->WritesDone();
  reader.join();
  stream->Finish().IgnoreError();
  absl::MutexLock lock(&mu);
  return acked / seconds;
}

// The limit of the sampler's path: Sample RPCs of the sizes ReplaySampler
// sends (SampleRoundBatches batches of --sample_batch per RPC), as many in
// flight as its rounds, to a server answering with a prebuilt batch; the
// answers are received as bytes and dropped (no decoding).
double SampleRawPrefetch(const std::string& address, uint32_t od, uint32_t ad) {
  const uint32_t n = absl::GetFlag(FLAGS_sample_batch);
  const int in_flight = absl::GetFlag(FLAGS_sample_rounds);
  const int rows = n * SampleRoundBatches(n, kPrefetch, in_flight, od, ad);
  grpc::GenericStub stub(MakeReplayChannel(address));
  proto::SampleRequest request;
  request.set_batch_size(rows);
  request.set_timeout_ms(10000);
  request.set_packed_rows(true);  // as ReplaySampler asks
  const std::string bytes = request.SerializeAsString();
  struct Call {
    grpc::ClientContext context;
    grpc::ByteBuffer answer;
    grpc::Status status;
    std::unique_ptr<grpc::ClientAsyncResponseReader<grpc::ByteBuffer>> reader;
  };
  grpc::CompletionQueue cq;
  auto start_call = [&]() {
    auto call = new Call;
    grpc::Slice slice(bytes);
    call->reader =
        stub.PrepareUnaryCall(&call->context, "/softq.proto.ReplayShard/Sample",
                              grpc::ByteBuffer(&slice, 1), &cq);
    call->reader->StartCall();
    call->reader->Finish(&call->answer, &call->status, call);
  };
  uint64_t drawn = 0;
  bool failed = false;
  const absl::Time start = absl::Now();
  const absl::Time end =
      start + absl::Seconds(absl::GetFlag(FLAGS_sample_seconds));
  for (int i = 0; i < in_flight; ++i) start_call();
  int pending = in_flight;
  while (pending > 0) {
    void* tag = nullptr;
    bool ok = false;
    if (!cq.Next(&tag, &ok)) break;
    std::unique_ptr<Call> call(static_cast<Call*>(tag));
    --pending;
    if (!call->status.ok()) failed = true;
    drawn += rows;
    if (absl::Now() < end && !failed) {
      start_call();
      ++pending;
    }
  }
  const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  cq.Shutdown();
  void* tag = nullptr;
  bool ok = false;
  while (cq.Next(&tag, &ok)) {
  }
  return failed ? 0 : drawn / seconds;
}

}  // namespace replay_bench
}  // namespace softq
