// Every kind of bad input to a live replay_server gets a status naming the
// field, and the server keeps serving with its stored data unchanged.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/grpc_status.h"
#include "tests/replay/server_fixture.h"

namespace softq {
namespace {

using testing::CheckedId;
using testing::InsertOnce;
using testing::MakeBatch;

constexpr int kStored = 10;

class ReplayShardBadInput : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    absl::StatusOr<testing::ServerProcess> s =
        testing::StartServer({"--capacity=100", "--max_message_bytes=65536"});
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = new testing::ServerProcess(*std::move(s));
    proto::InsertRequest r;
    r.set_sequence(1);
    *r.mutable_batch() = MakeBatch(kStored, 0);
    ASSERT_EQ(InsertOnce(server_->stub.get(), r)->code(), 0);
  }
  static void TearDownTestSuite() { delete server_; }

  // The server answers, still holds exactly the first kStored transitions, and
  // serves them.
  void TearDown() override {
    absl::StatusOr<proto::ShardStats> stats =
        testing::Stats(server_->stub.get());
    ASSERT_TRUE(stats.ok()) << stats.status();
    EXPECT_EQ(stats->size(), static_cast<uint64_t>(kStored));
    EXPECT_EQ(stats->inserts_total(), static_cast<uint64_t>(kStored));
    proto::SampleResponse sample;
    ASSERT_TRUE(SampleStatus(30, 0, &sample).ok());
    for (int i = 0; i < 30; ++i) {
      const int id = CheckedId(sample.batch(), i);
      EXPECT_GE(id, 0);
      EXPECT_LT(id, kStored);
    }
  }

  static proto::InsertResponse Insert(const proto::InsertRequest& request) {
    absl::StatusOr<proto::InsertResponse> r =
        InsertOnce(server_->stub.get(), request);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : proto::InsertResponse();
  }
  static proto::InsertRequest WithBatch(proto::TransitionBatch batch) {
    proto::InsertRequest r;
    r.set_sequence(1);
    *r.mutable_batch() = std::move(batch);
    return r;
  }
  static void ExpectRejected(const proto::InsertResponse& r,
                             const std::string& field) {
    EXPECT_EQ(r.code(), static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT))
        << r.error();
    EXPECT_NE(r.error().find(field), std::string::npos) << r.error();
  }
  static grpc::Status SampleStatus(uint32_t n, int64_t timeout_ms,
                                   proto::SampleResponse* out) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(10));
    proto::SampleRequest request;
    request.set_batch_size(n);
    request.set_timeout_ms(timeout_ms);
    return server_->stub->Sample(&context, request, out);
  }
  static grpc::Status Update(const std::vector<uint64_t>& keys,
                             const std::vector<float>& p) {
    grpc::ClientContext context;
    proto::UpdatePrioritiesRequest request;
    for (uint64_t k : keys) request.add_keys(k);
    for (float x : p) request.add_priorities(x);
    proto::UpdatePrioritiesResponse response;
    return server_->stub->UpdatePriorities(&context, request, &response);
  }

  static testing::ServerProcess* server_;
};

testing::ServerProcess* ReplayShardBadInput::server_ = nullptr;

TEST_F(ReplayShardBadInput, RejectsTransitionWithWrongObservationSize) {
  ExpectRejected(Insert(WithBatch(MakeBatch(3, 100, 3, 2))), "observation_dim");
}

TEST_F(ReplayShardBadInput, RejectsTransitionWithWrongActionSize) {
  ExpectRejected(Insert(WithBatch(MakeBatch(3, 100, 2, 5))), "action_dim");
}

TEST_F(ReplayShardBadInput, RejectsNaNObservation) {
  proto::TransitionBatch b = MakeBatch(3, 100);
  b.set_observations(3, std::numeric_limits<float>::quiet_NaN());
  ExpectRejected(Insert(WithBatch(b)), "observations[3]");
}

TEST_F(ReplayShardBadInput, RejectsInfiniteReward) {
  proto::TransitionBatch b = MakeBatch(3, 100);
  b.set_rewards(2, std::numeric_limits<float>::infinity());
  ExpectRejected(Insert(WithBatch(b)), "rewards[2]");
}

// Poison (issue 29): finite but absurd values are refused whole, naming the
// field, the index and the flag that bounds it (defaults 1e6).
TEST_F(ReplayShardBadInput, RejectsAnObservationBeyondItsBound) {
  proto::TransitionBatch b = MakeBatch(3, 100);
  b.set_observations(3, 1e30f);
  ExpectRejected(Insert(WithBatch(b)), "observations[3]");
  b = MakeBatch(3, 100);
  b.set_next_observations(4, -2e6f);
  ExpectRejected(Insert(WithBatch(b)), "next_observations[4]");
  EXPECT_NE(Insert(WithBatch(b)).error().find("--max_abs_observation"),
            std::string::npos);
}

TEST_F(ReplayShardBadInput, RejectsARewardBeyondItsBound) {
  proto::TransitionBatch b = MakeBatch(3, 100);
  b.set_rewards(1, 3e38f);
  ExpectRejected(Insert(WithBatch(b)), "rewards[1]");
  EXPECT_NE(Insert(WithBatch(b)).error().find("--max_abs_reward"),
            std::string::npos);
}

TEST_F(ReplayShardBadInput, RejectsAnInsertRequestWithoutABatch) {
  proto::InsertRequest r;
  r.set_sequence(1);
  ExpectRejected(Insert(r), "InsertRequest.batch");
}

TEST_F(ReplayShardBadInput, RejectsABatchWithNoTransitions) {
  ExpectRejected(Insert(WithBatch(MakeBatch(0, 0))), "rewards");
}

TEST_F(ReplayShardBadInput, RejectsArraysOfInconsistentLength) {
  proto::TransitionBatch b = MakeBatch(3, 100);
  b.add_actions(0.5f);
  ExpectRejected(Insert(WithBatch(b)), "actions");
}

TEST_F(ReplayShardBadInput, RejectsANonPositiveInsertPriority) {
  proto::InsertRequest r = WithBatch(MakeBatch(2, 100));
  r.add_priorities(1.0f);
  r.add_priorities(-2.0f);
  ExpectRejected(Insert(r), "InsertRequest.priorities[1]");
}

TEST_F(ReplayShardBadInput, RejectsANonIncreasingSequenceOnAStream) {
  grpc::ClientContext context;
  auto stream = server_->stub->Insert(&context);
  proto::InsertRequest bad =
      WithBatch(MakeBatch(2, 100, 3, 3));  // rejected: dims
  bad.set_sequence(5);
  proto::InsertResponse response;
  ASSERT_TRUE(stream->Write(bad) && stream->Read(&response));
  ExpectRejected(response, "observation_dim");
  proto::InsertRequest stale = WithBatch(MakeBatch(2, 100, 3, 3));
  stale.set_sequence(5);
  // Sequence 5 was not accepted, so 5 is still valid; dims then fail again.
  ASSERT_TRUE(stream->Write(stale) && stream->Read(&response));
  ExpectRejected(response, "observation_dim");
  stream->WritesDone();
  EXPECT_TRUE(stream->Finish().ok());
}

TEST_F(ReplayShardBadInput, RejectsAnOversizeMessageAndKeepsServing) {
  proto::TransitionBatch b =
      MakeBatch(5000, 100);  // ~140 KB > --max_message_bytes=65536
  absl::StatusOr<proto::InsertResponse> r =
      InsertOnce(server_->stub.get(), WithBatch(b));
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(absl::IsResourceExhausted(r.status())) << r.status();
}

TEST_F(ReplayShardBadInput, RejectsSampleBatchSizeZero) {
  proto::SampleResponse out;
  const grpc::Status s = SampleStatus(0, 0, &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("SampleRequest.batch_size"),
            std::string::npos);
}

TEST_F(ReplayShardBadInput, RejectsSampleBatchSizeAboveTheTableSize) {
  proto::SampleResponse out;
  const grpc::Status s = SampleStatus(101, 0, &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("SampleRequest.batch_size is 101"),
            std::string::npos);
}

TEST_F(ReplayShardBadInput, RejectsANegativeSampleTimeout) {
  proto::SampleResponse out;
  const grpc::Status s = SampleStatus(1, -5, &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("SampleRequest.timeout_ms"),
            std::string::npos);
}

TEST_F(ReplayShardBadInput, RejectsAnUnknownItemKey) {
  const grpc::Status s = Update({1, 999}, {1.0f, 1.0f});
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("UpdatePrioritiesRequest.keys[1] is 999"),
            std::string::npos)
      << s.error_message();
}

TEST_F(ReplayShardBadInput, RejectsPriorityArraysOfDifferentLength) {
  const grpc::Status s = Update({1, 2}, {1.0f});
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("UpdatePrioritiesRequest.priorities"),
            std::string::npos);
}

TEST_F(ReplayShardBadInput, RejectsANaNPriority) {
  const grpc::Status s = Update({1}, {std::numeric_limits<float>::quiet_NaN()});
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("UpdatePrioritiesRequest.priorities[0]"),
            std::string::npos);
}

TEST_F(ReplayShardBadInput, SurvivesAClientThatVanishesMidStream) {
  auto context = std::make_unique<grpc::ClientContext>();
  auto stream = server_->stub->Insert(context.get());
  ASSERT_TRUE(stream->Write(WithBatch(MakeBatch(2, 100, 9, 9))));
  context->TryCancel();
  stream->Finish().IgnoreError();
}

// Writes `messages` (raw bytes each) on an Insert stream, closes the sending
// side, and returns how the stream ended, after counting the acks.
grpc::Status RawInsertStream(const std::string& address,
                             const std::vector<std::string>& messages,
                             int* acks) {
  std::shared_ptr<grpc::Channel> channel =
      grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(10));
  const grpc::internal::RpcMethod method(
      "/softq.proto.ReplayShard/Insert",
      grpc::internal::RpcMethod::BIDI_STREAMING);
  std::unique_ptr<grpc::ClientReaderWriter<grpc::ByteBuffer, grpc::ByteBuffer>>
      stream(grpc::internal::ClientReaderWriterFactory<
             grpc::ByteBuffer, grpc::ByteBuffer>::Create(channel.get(), method,
                                                         &context));
  for (const std::string& bytes : messages) {
    grpc::Slice slice(bytes);
    grpc::ByteBuffer message(&slice, 1);
    if (!stream->Write(message)) break;  // the server ended the call
  }
  stream->WritesDone();
  grpc::ByteBuffer reply;
  *acks = 0;
  while (stream->Read(&reply)) ++*acks;
  return stream->Finish();
}

TEST_F(ReplayShardBadInput, EndsAStreamWithAnUnparseableMessageNotOk) {
  // Field 1 (sequence) whose varint never ends: no InsertRequest parses.
  const std::string garbage("\x08\xff\xff\xff", 4);
  int acks = 0;
  grpc::Status s = RawInsertStream(server_->address, {garbage}, &acks);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
      << s.error_message();
  EXPECT_NE(s.error_message().find("InsertRequest"), std::string::npos)
      << s.error_message();
  EXPECT_EQ(acks, 0);

  // After a rejected (so not stored) batch: that one is answered, then the
  // stream ends the same way and nothing after the garbage is read.
  proto::InsertRequest rejected = WithBatch(MakeBatch(2, 100, 3, 3));  // dims
  const std::string bytes = rejected.SerializeAsString();
  s = RawInsertStream(server_->address, {bytes, garbage, bytes}, &acks);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
      << s.error_message();
  EXPECT_NE(s.error_message().find("message 2"), std::string::npos)
      << s.error_message();
  EXPECT_EQ(acks, 1);
}

TEST_F(ReplayShardBadInput, CheckpointWithoutADirectoryIsAFailedPrecondition) {
  grpc::ClientContext context;
  proto::CheckpointResponse response;
  const grpc::Status s = server_->stub->Checkpoint(
      &context, proto::CheckpointRequest(), &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(s.error_message().find("--checkpoint_dir"), std::string::npos);
}

TEST(ReplayShardLimits, RefusesASampleLargerThanAMessageAndCountsNothing) {
  absl::StatusOr<testing::ServerProcess> server =
      testing::StartServer({"--capacity=100000", "--max_message_bytes=65536"});
  ASSERT_TRUE(server.ok()) << server.status();
  proto::InsertRequest r;
  r.set_sequence(1);
  *r.mutable_batch() = MakeBatch(kStored, 0);
  ASSERT_EQ(InsertOnce(server->stub.get(), r)->code(), 0);
  const auto sample = [&](uint32_t n) {
    grpc::ClientContext context;
    proto::SampleRequest request;
    request.set_batch_size(n);
    proto::SampleResponse out;
    return server->stub->Sample(&context, request, &out);
  };
  const grpc::Status s = sample(5000);  // ~5000 x 70 bytes > 64 KiB
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("SampleRequest.batch_size is 5000"),
            std::string::npos)
      << s.error_message();
  EXPECT_EQ(testing::Stats(server->stub.get())->samples_total(), 0u);
  EXPECT_TRUE(sample(100).ok());
  EXPECT_EQ(testing::Stats(server->stub.get())->samples_total(), 100u);
}

TEST(ReplayShardLimits, RefusesAStreamsRepeatedSequenceAndStoresItOnce) {
  absl::StatusOr<testing::ServerProcess> server =
      testing::StartServer({"--capacity=100"});
  ASSERT_TRUE(server.ok()) << server.status();
  grpc::ClientContext context;
  auto stream = server->stub->Insert(&context);
  proto::InsertRequest request;
  request.set_sequence(5);
  *request.mutable_batch() = MakeBatch(4, 0);
  proto::InsertResponse response;
  ASSERT_TRUE(stream->Write(request) && stream->Read(&response));
  EXPECT_EQ(response.code(), 0) << response.error();
  // The same batch again (a resend): refused, naming the sequence.
  ASSERT_TRUE(stream->Write(request) && stream->Read(&response));
  EXPECT_EQ(response.code(),
            static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT));
  EXPECT_NE(response.error().find("sequence"), std::string::npos)
      << response.error();
  stream->WritesDone();
  EXPECT_TRUE(stream->Finish().ok());
  EXPECT_EQ(testing::Stats(server->stub.get())->size(), 4u);
}

TEST(ReplayShardLimits, TakesTheMagnitudeBoundsFromItsFlags) {
  absl::StatusOr<testing::ServerProcess> server = testing::StartServer(
      {"--capacity=100", "--max_abs_observation=10", "--max_abs_reward=1e9"});
  ASSERT_TRUE(server.ok()) << server.status();
  proto::InsertRequest r;
  r.set_sequence(1);
  *r.mutable_batch() = MakeBatch(3, 0);
  r.mutable_batch()->set_observations(5, 10.5f);
  absl::StatusOr<proto::InsertResponse> refused =
      InsertOnce(server->stub.get(), r);
  ASSERT_TRUE(refused.ok()) << refused.status();
  EXPECT_EQ(refused->code(),
            static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT));
  EXPECT_NE(refused->error().find("observations[5]"), std::string::npos)
      << refused->error();
  EXPECT_EQ(testing::Stats(server->stub.get())->size(), 0u);
  // Within the bounds: -10 observations, a reward of 5e8.
  *r.mutable_batch() = MakeBatch(3, 0);
  r.mutable_batch()->set_observations(5, -10.0f);
  r.mutable_batch()->set_rewards(2, 5e8f);
  absl::StatusOr<proto::InsertResponse> stored =
      InsertOnce(server->stub.get(), r);
  ASSERT_TRUE(stored.ok()) << stored.status();
  EXPECT_EQ(stored->code(), 0) << stored->error();
  EXPECT_EQ(testing::Stats(server->stub.get())->size(), 3u);
}

}  // namespace
}  // namespace softq
