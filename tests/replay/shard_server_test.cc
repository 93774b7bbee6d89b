// A replay_server process, driven over its RPCs: storage, eviction, sampling,
// the rate limiter, shutdown, and the replay_stats tool.
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/impl/codegen/client_unary_call.h>
#include <gtest/gtest.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <iostream>
#include <limits>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/grpc_status.h"
#include "tests/replay/server_fixture.h"

namespace softq {
namespace {

using testing::CheckedId;
using testing::InsertOnce;
using testing::MakeBatch;
using testing::ServerProcess;
using testing::StartServer;

proto::InsertRequest Request(proto::TransitionBatch batch,
                             uint64_t sequence = 1) {
  proto::InsertRequest r;
  r.set_sequence(sequence);
  *r.mutable_batch() = std::move(batch);
  return r;
}

absl::StatusOr<proto::SampleResponse> Sample(proto::ReplayShard::Stub* stub,
                                             uint32_t n,
                                             int64_t timeout_ms = 0) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(30));
  proto::SampleRequest request;
  request.set_batch_size(n);
  request.set_timeout_ms(timeout_ms);
  proto::SampleResponse response;
  const grpc::Status s = stub->Sample(&context, request, &response);
  if (!s.ok()) return FromGrpcStatus(s);
  return response;
}

// Polls the shard's stats (up to 10 s) until one Sample (or Insert) call
// waits on its rate limiter; whether one does.
bool OneCallBlocked(proto::ReplayShard::Stub* stub, bool sample) {
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (absl::Now() < deadline) {
    absl::StatusOr<proto::ShardStats> stats = testing::Stats(stub);
    if (stats.ok() && (sample ? stats->rate_limiter().blocked_samples()
                              : stats->rate_limiter().blocked_inserts()) == 1) {
      return true;
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
  return false;
}

TEST(ReplayShard, AcknowledgesAnInsertedBatchWithItsKeysAndCountsIt) {
  absl::StatusOr<ServerProcess> server =
      StartServer({"--capacity=100", "--shard_id=s7"});
  ASSERT_TRUE(server.ok()) << server.status();
  absl::StatusOr<proto::InsertResponse> r =
      InsertOnce(server->stub.get(), Request(MakeBatch(5, 0, 2, 2, 4)));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->code(), 0) << r->error();
  EXPECT_EQ(r->first_key(), 0u);
  EXPECT_EQ(r->count(), 5u);
  r = InsertOnce(server->stub.get(), Request(MakeBatch(3, 5, 2, 2, 4)));
  EXPECT_EQ(r->first_key(), 5u);
  absl::StatusOr<proto::ShardStats> stats = testing::Stats(server->stub.get());
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->shard_id(), "s7");
  EXPECT_EQ(stats->size(), 8u);
  EXPECT_EQ(stats->capacity(), 100u);
  EXPECT_EQ(stats->inserts_total(), 8u);
  ASSERT_EQ(stats->per_actor_size(), 1);
  EXPECT_EQ(stats->per_actor(0).actor_id(), 4u);
  EXPECT_EQ(stats->per_actor(0).inserted(), 8u);
  EXPECT_EQ(stats->observation_dim(), 2u);
  EXPECT_EQ(stats->sampler(), "uniform");
  EXPECT_GT(stats->resident_bytes(), 0u);
  absl::StatusOr<proto::SampleResponse> sample = Sample(server->stub.get(), 50);
  ASSERT_TRUE(sample.ok()) << sample.status();
  ASSERT_EQ(sample->keys_size(), 50);
  EXPECT_EQ(sample->table_size(), 8u);
  for (int i = 0; i < 50; ++i) {
    EXPECT_EQ(CheckedId(sample->batch(), i), static_cast<int>(sample->keys(i)));
    EXPECT_DOUBLE_EQ(sample->probabilities(i), 1.0 / 8);
  }
  EXPECT_EQ(testing::Stats(server->stub.get())->samples_total(), 50u);
}

// The actors' finished episodes travel with their transitions
// (TransitionBatch.finished_returns): counted and kept for GetStats, never
// stored in the table or sampled; a refused batch's are not counted.
TEST(ReplayShard, KeepsTheLatestEpisodeReturnsOfStoredBatchesForItsStats) {
  absl::StatusOr<ServerProcess> server = StartServer({"--capacity=100000"});
  ASSERT_TRUE(server.ok()) << server.status();
  for (int i = 0; i < 1002; ++i) {
    proto::TransitionBatch batch = MakeBatch(2, 2 * i, 2, 2, 4);
    batch.add_finished_returns(i);
    ASSERT_EQ(InsertOnce(server->stub.get(), Request(batch))->code(), 0) << i;
  }
  proto::TransitionBatch bad = MakeBatch(2, 9000, 2, 2, 4);
  bad.add_finished_returns(1.0);
  bad.add_finished_returns(std::numeric_limits<double>::infinity());
  absl::StatusOr<proto::InsertResponse> r =
      InsertOnce(server->stub.get(), Request(bad));
  EXPECT_EQ(r->code(), static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT));
  EXPECT_EQ(r->error(),
            "TransitionBatch.finished_returns[1] is not finite (inf)");
  bad = MakeBatch(1, 9000, 2, 2, 4);
  bad.add_finished_returns(1.0);
  bad.add_finished_returns(2.0);
  r = InsertOnce(server->stub.get(), Request(bad));
  EXPECT_EQ(r->code(), static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT));
  EXPECT_EQ(r->error(),
            "TransitionBatch.finished_returns has 2 values, expected at most 1 "
            "(one per episode ending in it)");
  absl::StatusOr<proto::ShardStats> stats = testing::Stats(server->stub.get());
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->inserts_total(), 2004u);
  EXPECT_EQ(stats->episodes_total(), 1002u);
  ASSERT_EQ(stats->recent_returns_size(), 1000);
  EXPECT_EQ(stats->recent_returns(0), 2.0);  // the oldest two dropped
  EXPECT_EQ(stats->recent_returns(999), 1001.0);
  absl::StatusOr<proto::SampleResponse> sample = Sample(server->stub.get(), 64);
  ASSERT_TRUE(sample.ok()) << sample.status();
  EXPECT_EQ(sample->batch().finished_returns_size(), 0);
}

TEST(ReplayShard, EvictsTheOldestTransitionsAtCapacity) {
  absl::StatusOr<ServerProcess> server = StartServer({"--capacity=50"});
  ASSERT_TRUE(server.ok()) << server.status();
  for (int b = 0; b < 8; ++b) {
    ASSERT_EQ(
        InsertOnce(server->stub.get(), Request(MakeBatch(10, 10 * b)))->code(),
        0);
  }
  absl::StatusOr<proto::ShardStats> stats = testing::Stats(server->stub.get());
  EXPECT_EQ(stats->size(), 50u);
  EXPECT_EQ(stats->inserts_total(), 80u);
  absl::StatusOr<proto::SampleResponse> sample = Sample(server->stub.get(), 50);
  ASSERT_TRUE(sample.ok());
  std::set<int> seen;
  for (int i = 0; i < 50; ++i) {
    const int id = CheckedId(sample->batch(), i);
    EXPECT_GE(id, 30);  // ids 0..29 were evicted first
    EXPECT_LT(id, 80);
    seen.insert(id);
  }
  EXPECT_GT(seen.size(), 20u);
}

TEST(ReplayShard, PrioritizedSamplingFrequenciesMatchPriorities) {
  // A fixed seed: with a random one the chi-square bar (p = 0.001) failed
  // about one run in a thousand (seen once, chi = 17.98).
  absl::StatusOr<ServerProcess> server =
      StartServer({"--capacity=10", "--sampler=prioritized",
                   "--priority_exponent=1", "--seed=29"});
  ASSERT_TRUE(server.ok()) << server.status();
  proto::InsertRequest request = Request(MakeBatch(4, 0));
  for (float p : {1.0f, 2.0f, 3.0f, 4.0f}) request.add_priorities(p);
  ASSERT_EQ(InsertOnce(server->stub.get(), request)->code(), 0);
  std::vector<int> counts(4, 0);
  const int n = 20000;
  for (int round = 0; round < n / 10;
       ++round) {  // batch_size is at most the capacity
    absl::StatusOr<proto::SampleResponse> sample =
        Sample(server->stub.get(), 10);
    ASSERT_TRUE(sample.ok()) << sample.status();
    for (int i = 0; i < 10; ++i) {
      const int key = static_cast<int>(sample->keys(i));
      ++counts[key];
      ASSERT_NEAR(sample->probabilities(i), (key + 1) / 10.0, 1e-9);
    }
  }
  double chi = 0;
  for (int k = 0; k < 4; ++k) {
    const double e = n * (k + 1) / 10.0;
    chi += (counts[k] - e) * (counts[k] - e) / e;
  }
  EXPECT_LT(chi, 16.27);  // 3 degrees of freedom, p = 0.001

  // After an update, key 0 carries 97/100 of the mass.
  grpc::ClientContext context;
  proto::UpdatePrioritiesRequest update;
  update.add_keys(0);
  update.add_priorities(91.0f);
  proto::UpdatePrioritiesResponse updated;
  ASSERT_TRUE(server->stub->UpdatePriorities(&context, update, &updated).ok());
  EXPECT_EQ(updated.updated(), 1u);
  int zero = 0;
  for (int round = 0; round < 200; ++round) {
    absl::StatusOr<proto::SampleResponse> sample =
        Sample(server->stub.get(), 10);
    ASSERT_TRUE(sample.ok()) << sample.status();
    for (int i = 0; i < 10; ++i) zero += sample->keys(i) == 0;
  }
  EXPECT_NEAR(zero / 2000.0, 91.0 / 100.0, 0.03);
}

TEST(ReplayShard, SampleWaitsForMinSizeAndIsReleasedByAnInsert) {
  absl::StatusOr<ServerProcess> server =
      StartServer({"--capacity=100", "--min_size_to_sample=10"});
  ASSERT_TRUE(server.ok()) << server.status();
  ASSERT_EQ(InsertOnce(server->stub.get(), Request(MakeBatch(5, 0)))->code(),
            0);
  absl::StatusOr<proto::SampleResponse> blocked;
  absl::Time returned;
  std::thread sampler([&] {
    blocked = Sample(server->stub.get(), 4, /*timeout_ms=*/20000);
    returned = absl::Now();
  });
  EXPECT_TRUE(OneCallBlocked(server->stub.get(), /*sample=*/true));
  const absl::Time inserted = absl::Now();
  ASSERT_EQ(InsertOnce(server->stub.get(), Request(MakeBatch(5, 5)))->code(),
            0);
  sampler.join();
  ASSERT_TRUE(blocked.ok()) << blocked.status();
  EXPECT_GE(returned, inserted);
  EXPECT_LT(returned - inserted, absl::Seconds(2));
  EXPECT_EQ(blocked->keys_size(), 4);
}

TEST(ReplayShard, BlockedSampleEndsWithDeadlineExceededAtItsTimeout) {
  absl::StatusOr<ServerProcess> server =
      StartServer({"--capacity=100", "--min_size_to_sample=10"});
  ASSERT_TRUE(server.ok()) << server.status();
  const absl::Time start = absl::Now();
  absl::StatusOr<proto::SampleResponse> r =
      Sample(server->stub.get(), 4, /*timeout_ms=*/300);
  const absl::Duration took = absl::Now() - start;
  EXPECT_TRUE(absl::IsDeadlineExceeded(r.status())) << r.status();
  // At its timeout (a timed wait may wake a fraction of a millisecond early).
  EXPECT_GE(took, absl::Milliseconds(295));
  EXPECT_LT(took, absl::Seconds(2));
  // timeout_ms = 0: do not wait at all.
  EXPECT_TRUE(
      absl::IsDeadlineExceeded(Sample(server->stub.get(), 1, 0).status()));
}

TEST(ReplayShard, SamplesPerInsertRatioHoldsInsertsBackUntilSampled) {
  // offset 1, band [-1, 3]: after 4 inserted transitions the next insert waits.
  absl::StatusOr<ServerProcess> server = StartServer(
      {"--capacity=100", "--samples_per_insert=1", "--error_buffer=2"});
  ASSERT_TRUE(server.ok()) << server.status();
  grpc::ClientContext context;
  auto stream = server->stub->Insert(&context);
  proto::InsertResponse response;
  ASSERT_TRUE(stream->Write(Request(MakeBatch(4, 0), 1)));
  ASSERT_TRUE(stream->Read(&response));
  EXPECT_EQ(response.code(), 0);
  ASSERT_TRUE(stream->Write(Request(MakeBatch(1, 4), 2)));
  absl::Time acked;
  std::thread reader([&] {
    stream->Read(&response);
    acked = absl::Now();
  });
  EXPECT_TRUE(OneCallBlocked(server->stub.get(), /*sample=*/false));
  const absl::Time sampled = absl::Now();
  ASSERT_TRUE(Sample(server->stub.get(), 3).ok());
  reader.join();
  EXPECT_GE(acked, sampled);
  EXPECT_EQ(response.sequence(), 2u);
  EXPECT_EQ(response.code(), 0);
  stream->WritesDone();
  EXPECT_TRUE(stream->Finish().ok());
}

TEST(ReplayShard, SigtermEndsBlockedCallsAndExitsZero) {
  absl::StatusOr<ServerProcess> server =
      StartServer({"--min_size_to_sample=5"});
  ASSERT_TRUE(server.ok()) << server.status();
  absl::StatusOr<proto::SampleResponse> blocked;
  absl::Time answered;
  std::thread sampler([&] {
    blocked = Sample(server->stub.get(), 1, 60000);
    answered = absl::Now();
  });
  EXPECT_TRUE(OneCallBlocked(server->stub.get(), /*sample=*/true));
  const absl::Time signalled = absl::Now();
  ASSERT_TRUE(server->process->Signal(SIGTERM).ok());
  absl::StatusOr<int> code = server->process->Wait(absl::Seconds(10));
  sampler.join();
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 0);
  // Ended by the shard's shutdown, not by gRPC's 5 s grace period.
  EXPECT_TRUE(absl::IsCancelled(blocked.status())) << blocked.status();
  EXPECT_NE(blocked.status().message().find("shutting down"), std::string::npos)
      << blocked.status();
  std::cout << "blocked call ended " << answered - signalled
            << " and server exited " << absl::Now() - signalled
            << " after SIGTERM" << std::endl;
}

TEST(ReplayServer, AnswersHealthChecksAndReflection) {
  absl::StatusOr<ServerProcess> server = StartServer({});
  ASSERT_TRUE(server.ok()) << server.status();
  std::shared_ptr<grpc::Channel> channel =
      grpc::CreateChannel(server->address, grpc::InsecureChannelCredentials());
  // grpc.health.v1.Health/Check with an empty request (the whole server):
  // SERVING = 1.
  const grpc::internal::RpcMethod check("/grpc.health.v1.Health/Check",
                                        grpc::internal::RpcMethod::NORMAL_RPC);
  grpc::ClientContext context;
  grpc::Slice empty;
  grpc::ByteBuffer request(&empty, 1), response;
  const grpc::Status s = grpc::internal::BlockingUnaryCall(
      channel.get(), check, &context, request, &response);
  ASSERT_TRUE(s.ok()) << s.error_message();
  grpc::Slice slice;
  ASSERT_TRUE(response.DumpToSingleSlice(&slice).ok());
  EXPECT_EQ(slice.size(), 2u);
  EXPECT_EQ(slice.begin()[0], 0x08);  // field 1 (status), varint
  EXPECT_EQ(slice.begin()[1], 0x01);  // SERVING

  // grpc.reflection.v1alpha.ServerReflection: list_services (field 7) lists
  // ReplayShard.
  grpc::GenericStub generic(channel);
  grpc::CompletionQueue cq;
  grpc::ClientContext reflection_context;
  void* tag;
  bool ok;
  auto call = generic.PrepareCall(
      &reflection_context,
      "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", &cq);
  call->StartCall(reinterpret_cast<void*>(1));
  ASSERT_TRUE(cq.Next(&tag, &ok) && ok);
  const char list[] = {0x3a, 0x01, '*'};
  grpc::Slice list_slice(list, sizeof(list));
  grpc::ByteBuffer list_request(&list_slice, 1);
  call->Write(list_request, reinterpret_cast<void*>(2));
  ASSERT_TRUE(cq.Next(&tag, &ok) && ok);
  grpc::ByteBuffer reply;
  call->Read(&reply, reinterpret_cast<void*>(3));
  ASSERT_TRUE(cq.Next(&tag, &ok) && ok);
  grpc::Slice reply_slice;
  ASSERT_TRUE(reply.DumpToSingleSlice(&reply_slice).ok());
  const std::string text(reinterpret_cast<const char*>(reply_slice.begin()),
                         reply_slice.size());
  EXPECT_NE(text.find("softq.proto.ReplayShard"), std::string::npos);
  reflection_context.TryCancel();
  grpc::Status finish;
  call->Finish(&finish, reinterpret_cast<void*>(4));
  while (cq.Next(&tag, &ok) && tag != reinterpret_cast<void*>(4)) {
  }
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }
}

TEST(ReplayServer, ABadFlagIsOneLineAndExitStatusTwo) {
  absl::StatusOr<std::unique_ptr<ChildProcess>> p = ChildProcess::Start(
      {"/bin/sh", "-c",
       testing::ServerBinary() + " --port=0 --sampler=lifo 2>&1"});
  ASSERT_TRUE(p.ok());
  absl::StatusOr<std::string> line = (*p)->WaitForLine("", absl::Seconds(10));
  ASSERT_TRUE(line.ok()) << line.status();
  EXPECT_NE(line->find("--sampler=lifo"), std::string::npos) << *line;
  EXPECT_EQ(*(*p)->Wait(absl::Seconds(10)), 2);
}

TEST(ReplayStats, PrintsATableAndJsonForEveryShard) {
  absl::StatusOr<ServerProcess> a =
      StartServer({"--shard_id=alpha", "--capacity=100"});
  absl::StatusOr<ServerProcess> b =
      StartServer({"--shard_id=beta", "--capacity=100"});
  ASSERT_TRUE(a.ok() && b.ok());
  absl::StatusOr<proto::InsertResponse> inserted =
      InsertOnce(a->stub.get(), Request(MakeBatch(7, 0, 2, 2, 3)));
  ASSERT_TRUE(inserted.ok()) << inserted.status();
  ASSERT_EQ(inserted->code(), 0);
  const std::string tool =
      absl::StrCat(std::getenv("TEST_SRCDIR"), "/softq/replay/replay_stats");
  const std::string shards =
      absl::StrCat(" --shards=", a->address, ",", b->address);
  absl::StatusOr<std::unique_ptr<ChildProcess>> p =
      ChildProcess::Start({"/bin/sh", "-c", tool + shards + " 2>&1"});
  ASSERT_TRUE(p.ok());
  absl::StatusOr<std::string> row =
      (*p)->WaitForLine("alpha", absl::Seconds(10));
  ASSERT_TRUE(row.ok()) << row.status();
  EXPECT_NE(row->find("7/100"), std::string::npos) << *row;
  EXPECT_TRUE(
      (*p)->WaitForLine("       per actor (id:inserted) 3:7", absl::Seconds(5))
          .ok());
  EXPECT_TRUE((*p)->WaitForLine("beta", absl::Seconds(5)).ok());
  EXPECT_EQ(*(*p)->Wait(absl::Seconds(10)), 0);

  p = ChildProcess::Start({"/bin/sh", "-c", tool + shards + " --json 2>&1"});
  row = (*p)->WaitForLine("{\"shards\":[", absl::Seconds(10));
  ASSERT_TRUE(row.ok()) << row.status();
  EXPECT_NE(row->find("\"shard_id\":\"alpha\""), std::string::npos) << *row;
  EXPECT_NE(row->find("\"size\":\"7\""), std::string::npos) << *row;
  EXPECT_EQ(*(*p)->Wait(absl::Seconds(10)), 0);
}

// One ERROR row per shard that did not answer, naming its address and why:
// nothing listens (a closed loopback port), the name does not resolve (.invalid
// never does, RFC 6761), or a socket that takes the connection and never
// speaks HTTP/2 (listening, never accepted: the kernel completes the
// handshake).
TEST(ReplayStats, SaysWhyEachShardDidNotAnswer) {
  const std::string refused = absl::StrCat("127.0.0.1:", UnusedLoopbackPort());
  const std::string unknown = "no-such-host.invalid:5000";
  const int silent_fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(silent_fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(::bind(silent_fd, reinterpret_cast<sockaddr*>(&addr), len), 0);
  ASSERT_EQ(::listen(silent_fd, SOMAXCONN), 0);
  ASSERT_EQ(::getsockname(silent_fd, reinterpret_cast<sockaddr*>(&addr), &len),
            0);
  const std::string silent = absl::StrCat("127.0.0.1:", ntohs(addr.sin_port));
  // This machine's resolver must fail the name for the row to say so.
  addrinfo* resolved = nullptr;
  const bool resolves =
      ::getaddrinfo("no-such-host.invalid", "5000", nullptr, &resolved) == 0;
  if (resolved != nullptr) ::freeaddrinfo(resolved);

  const std::string tool =
      absl::StrCat(std::getenv("TEST_SRCDIR"), "/softq/replay/replay_stats");
  absl::StatusOr<std::unique_ptr<ChildProcess>> p = ChildProcess::Start(
      {"/bin/sh", "-c",
       absl::StrCat(tool, " --timeout_ms=1500 --shards=", refused, ",", unknown,
                    ",", silent, " 2>&1")});
  ASSERT_TRUE(p.ok());
  absl::StatusOr<std::string> row = (*p)->WaitForLine("?", absl::Seconds(20));
  ASSERT_TRUE(row.ok()) << row.status();
  EXPECT_NE(row->find(refused), std::string::npos) << *row;
  EXPECT_NE(row->find("connection refused: nothing listens on " + refused),
            std::string::npos)
      << *row;
  row = (*p)->WaitForLine("?", absl::Seconds(20));
  ASSERT_TRUE(row.ok()) << row.status();
  EXPECT_NE(row->find(unknown), std::string::npos) << *row;
  if (resolves) {
    std::cerr << "no-such-host.invalid resolves here: its row is " << *row
              << std::endl;
  } else {
    EXPECT_NE(row->find("unknown host: no-such-host.invalid does not resolve"),
              std::string::npos)
        << *row;
  }
  row = (*p)->WaitForLine("?", absl::Seconds(20));
  ASSERT_TRUE(row.ok()) << row.status();
  EXPECT_NE(row->find(silent), std::string::npos) << *row;
  // "accepts connections but did not answer within 1.5s"; or, once gRPC's
  // attempts have filled the never-accepted backlog, "no connection to ...
  // within 1.5s": a timeout either way.
  EXPECT_NE(row->find("timeout: "), std::string::npos) << *row;
  EXPECT_NE(row->find(" within 1.5s"), std::string::npos) << *row;
  EXPECT_EQ(*(*p)->Wait(absl::Seconds(20)), 1);

  p = ChildProcess::Start(
      {"/bin/sh", "-c",
       absl::StrCat(tool, " --json --timeout_ms=1500 --shards=", refused, ",",
                    silent, " 2>&1")});
  ASSERT_TRUE(p.ok());
  row = (*p)->WaitForLine("{\"shards\":[", absl::Seconds(20));
  ASSERT_TRUE(row.ok()) << row.status();
  EXPECT_NE(row->find("\"reason\":\"refused\""), std::string::npos) << *row;
  EXPECT_NE(row->find("\"reason\":\"timeout\""), std::string::npos) << *row;
  EXPECT_EQ(*(*p)->Wait(absl::Seconds(20)), 1);
  ::close(silent_fd);
}

}  // namespace
}  // namespace softq
