// A replay_server bounds the threads clients can hold (issue 29: 1,000 idle
// Insert streams made 2,012 threads): the Insert stream or waiting call beyond
// --max_insert_streams or --max_waiting_calls is refused at once with
// RESOURCE_EXHAUSTED, and the clients already served keep working.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "replay/busy.h"
#include "replay/replay_channel.h"
#include "replay/replay_sampler.h"
#include "replay/replay_writer.h"
#include "tests/replay/server_fixture.h"

namespace softq {
namespace {

using testing::MakeBatch;
using testing::StartServer;

using Stream =
    grpc::ClientReaderWriter<proto::InsertRequest, proto::InsertResponse>;

// An open Insert stream with its context.
struct OpenStream {
  std::unique_ptr<grpc::ClientContext> context =
      std::make_unique<grpc::ClientContext>();
  std::unique_ptr<Stream> stream;
  uint64_t sequence = 0;
};

OpenStream Open(proto::ReplayShard::Stub* stub) {
  OpenStream s;
  s.context->set_deadline(std::chrono::system_clock::now() +
                          std::chrono::seconds(60));
  s.stream = stub->Insert(s.context.get());
  return s;
}

// Sends one batch of `n` on `s` and returns its ack's code, or -1 when the
// stream ended instead.
int InsertOn(OpenStream& s, int n, int first_id) {
  proto::InsertRequest request;
  request.set_sequence(++s.sequence);
  *request.mutable_batch() = MakeBatch(n, first_id);
  proto::InsertResponse response;
  if (!s.stream->Write(request) || !s.stream->Read(&response)) return -1;
  return response.code();
}

// Why `s` ended (its status), for a failure message.
std::string Ended(OpenStream& s) {
  s.stream->WritesDone();
  const grpc::Status status = s.stream->Finish();
  return absl::StrCat("the stream ended: ", status.error_code(), " ",
                      status.error_message());
}

int Threads(pid_t pid) {
  std::ifstream status(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(status, line)) {
    if (absl::StartsWith(line, "Threads:")) return std::stoi(line.substr(8));
  }
  return -1;
}

TEST(ReplayServerLimits,
     RefusesTheInsertStreamBeyondItsLimitAndKeepsTheOthers) {
  absl::StatusOr<testing::ServerProcess> server =
      StartServer({"--capacity=10000", "--max_insert_streams=3"});
  ASSERT_TRUE(server.ok()) << server.status();
  std::vector<OpenStream> admitted;
  for (int i = 0; i < 3; ++i) {
    admitted.push_back(Open(server->stub.get()));
    ASSERT_EQ(InsertOn(admitted.back(), 2, 10 * i), 0)
        << i << " " << Ended(admitted.back());
  }
  // The fourth: refused at once, nothing of it stored.
  OpenStream extra = Open(server->stub.get());
  EXPECT_EQ(InsertOn(extra, 2, 100), -1);
  const grpc::Status refused = extra.stream->Finish();
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_TRUE(IsShardBusy(refused)) << refused.error_message();
  EXPECT_NE(refused.error_message().find("--max_insert_streams"),
            std::string::npos)
      << refused.error_message();
  // The first three go on.
  for (int i = 0; i < 3; ++i) EXPECT_EQ(InsertOn(admitted[i], 3, 200 + i), 0);
  EXPECT_EQ(testing::Stats(server->stub.get())->size(), 3u * 2 + 3u * 3);
  // A closed stream frees its place.
  admitted[0].stream->WritesDone();
  ASSERT_TRUE(admitted[0].stream->Finish().ok());
  OpenStream next = Open(server->stub.get());
  EXPECT_EQ(InsertOn(next, 1, 300), 0);
  EXPECT_EQ(testing::Stats(server->stub.get())->size(), 16u);
  for (OpenStream* s : {&admitted[1], &admitted[2], &next}) {
    s->stream->WritesDone();
    EXPECT_TRUE(s->stream->Finish().ok());
  }
}

TEST(ReplayServerLimits, RefusedStreamsHoldNoThreads) {
  absl::StatusOr<testing::ServerProcess> server =
      StartServer({"--capacity=10000", "--max_insert_streams=4"});
  ASSERT_TRUE(server.ok()) << server.status();
  std::vector<OpenStream> admitted;
  for (int i = 0; i < 4; ++i) {
    admitted.push_back(Open(server->stub.get()));
    ASSERT_EQ(InsertOn(admitted.back(), 1, i), 0) << Ended(admitted.back());
  }
  const int before = Threads(server->process->pid());
  // 200 more idle streams, kept open by the client: each refused.
  std::vector<OpenStream> idle;
  for (int i = 0; i < 200; ++i) {
    idle.push_back(Open(server->stub.get()));
    idle.back().stream->Write(proto::InsertRequest());
  }
  int refused = 0;
  for (OpenStream& s : idle) {
    proto::InsertResponse r;
    EXPECT_FALSE(s.stream->Read(&r));
    refused +=
        s.stream->Finish().error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED;
  }
  EXPECT_EQ(refused, 200);
  absl::SleepFor(absl::Milliseconds(200));
  const int after = Threads(server->process->pid());
  // Without the limit: 2 threads per stream, 400 more.
  EXPECT_LT(after, before + 20) << "threads before " << before;
  for (int i = 0; i < 4; ++i) EXPECT_EQ(InsertOn(admitted[i], 1, 10 + i), 0);
}

TEST(ReplayServerLimits, RefusesTheWaitingCallBeyondItsLimitAndKeepsTheOthers) {
  absl::StatusOr<testing::ServerProcess> server =
      StartServer({"--capacity=10000", "--min_size_to_sample=100",
                   "--max_waiting_calls=2"});
  ASSERT_TRUE(server.ok()) << server.status();
  // Two Samples wait for the table to hold 100.
  std::vector<grpc::Status> waited(2);
  std::vector<std::thread> samplers;
  for (int i = 0; i < 2; ++i) {
    samplers.emplace_back([&, i] {
      grpc::ClientContext context;
      proto::SampleRequest request;
      request.set_batch_size(5);
      request.set_timeout_ms(20000);
      proto::SampleResponse response;
      waited[i] = server->stub->Sample(&context, request, &response);
    });
  }
  for (int tries = 0; tries < 500; ++tries) {
    if (testing::Stats(server->stub.get())->rate_limiter().blocked_samples() ==
        2)
      break;
    absl::SleepFor(absl::Milliseconds(10));
  }
  ASSERT_EQ(
      testing::Stats(server->stub.get())->rate_limiter().blocked_samples(), 2u);
  // The third: refused at once.
  grpc::ClientContext context;
  proto::SampleRequest request;
  request.set_batch_size(5);
  request.set_timeout_ms(20000);
  proto::SampleResponse response;
  const absl::Time start = absl::Now();
  const grpc::Status refused =
      server->stub->Sample(&context, request, &response);
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_TRUE(IsShardBusy(refused)) << refused.error_message();
  EXPECT_NE(refused.error_message().find("--max_waiting_calls"),
            std::string::npos);
  // The two waiting ones are served once the table holds enough.
  OpenStream s = Open(server->stub.get());
  ASSERT_EQ(InsertOn(s, 100, 0), 0) << Ended(s);
  for (std::thread& t : samplers) t.join();
  for (const grpc::Status& w : waited) EXPECT_TRUE(w.ok()) << w.error_message();
  s.stream->WritesDone();
  EXPECT_TRUE(s.stream->Finish().ok());
}

// The client library retries a busy shard later instead of dropping the batch
// (a RESOURCE_EXHAUSTED stream otherwise means a message too large).
TEST(ReplayServerLimits, AWriterRetriesABusyShardAndLosesNothing) {
  absl::StatusOr<testing::ServerProcess> server =
      StartServer({"--capacity=10000", "--max_insert_streams=1"});
  ASSERT_TRUE(server.ok()) << server.status();
  OpenStream holder = Open(server->stub.get());
  ASSERT_EQ(InsertOn(holder, 1, 0), 0) << Ended(holder);
  ReplayClientOptions options;
  options.addresses = {server->address};
  absl::StatusOr<std::unique_ptr<ReplayWriter>> writer =
      ReplayWriter::Create(options);
  ASSERT_TRUE(writer.ok()) << writer.status();
  ASSERT_TRUE((*writer)->Insert(MakeBatch(7, 100)).ok());
  absl::SleepFor(absl::Milliseconds(500));  // refused as busy meanwhile
  holder.stream->WritesDone();
  ASSERT_TRUE(holder.stream->Finish().ok());
  // While the shard is held for busy, Flush says UNAVAILABLE (no shard
  // reachable), as for a shard that is down; the batch waits and then goes.
  absl::Status flushed;
  const absl::Time give_up = absl::Now() + absl::Seconds(20);
  do {
    flushed = (*writer)->Flush(absl::Seconds(5));
    if (absl::IsUnavailable(flushed)) absl::SleepFor(absl::Milliseconds(50));
  } while (absl::IsUnavailable(flushed) && absl::Now() < give_up);
  EXPECT_TRUE(flushed.ok()) << flushed;
  EXPECT_EQ((*writer)->acknowledged(), 7u);
  EXPECT_EQ(testing::Stats(server->stub.get())->size(), 8u);
}

// The learner's sampler likewise skips a shard at its limit of waiting calls
// and retries it, instead of ending with its RESOURCE_EXHAUSTED.
TEST(ReplayServerLimits, ASamplerRetriesABusyShard) {
  absl::StatusOr<testing::ServerProcess> server =
      StartServer({"--capacity=10000", "--samples_per_insert=1",
                   "--error_buffer=5", "--max_waiting_calls=1"});
  ASSERT_TRUE(server.ok()) << server.status();
  OpenStream s = Open(server->stub.get());
  ASSERT_EQ(InsertOn(s, 10, 0), 0) << Ended(s);
  const auto sample = [&](int64_t timeout_ms) {
    grpc::ClientContext context;
    proto::SampleRequest request;
    request.set_batch_size(1);
    request.set_timeout_ms(timeout_ms);
    proto::SampleResponse response;
    return server->stub->Sample(&context, request, &response);
  };
  // Sample up to the ratio's allowance; then the one waiting call: a Sample
  // the rate limiter holds.
  int drawn = 0;
  while (sample(0).ok() && drawn < 1000) ++drawn;
  ASSERT_LT(drawn, 1000);
  grpc::Status held;
  std::thread holder([&] { held = sample(20000); });
  for (int tries = 0; tries < 500; ++tries) {
    if (testing::Stats(server->stub.get())->rate_limiter().blocked_samples() ==
        1)
      break;
    absl::SleepFor(absl::Milliseconds(10));
  }
  ReplayClientOptions options;
  options.addresses = {server->address};
  absl::StatusOr<std::unique_ptr<ReplaySampler>> sampler =
      ReplaySampler::Create(options, /*batch_size=*/4, /*prefetch=*/1);
  ASSERT_TRUE(sampler.ok()) << sampler.status();
  absl::SleepFor(absl::Milliseconds(500));  // refused as busy meanwhile
  ASSERT_EQ(InsertOn(s, 100, 10), 0);       // releases the held Sample
  holder.join();
  EXPECT_TRUE(held.ok()) << held.error_message();
  absl::StatusOr<SampledBatch> batch = (*sampler)->Next(absl::Seconds(20));
  ASSERT_TRUE(batch.ok()) << batch.status();
  EXPECT_EQ(batch->keys.size(), 4u);
  sampler->reset();
  s.stream->WritesDone();
  EXPECT_TRUE(s.stream->Finish().ok());
}

}  // namespace
}  // namespace softq
