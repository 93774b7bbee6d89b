// The parameter broadcast over gRPC: a ParameterService (the learner's side)
// and a ParameterSubscriber keeping an actor's ActingPolicy up to date, in one
// process on loopback.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <torch/types.h>

#include <chrono>
#include <cmath>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "actor/parameter_subscriber.h"
#include "common/tensor_codec.h"
#include "learner/parameter_server.h"
#include "learner/parameter_service.h"
#include "policy/acting_policy.h"
#include "policy/networks.h"

namespace softq {
namespace {

constexpr int64_t kObs = 2, kAct = 2;
const std::vector<int64_t> kHidden = {8};

// A ParameterService behind the learner's gRPC server (ParameterServer) on
// 127.0.0.1 (`port` 0: any free one).
struct LearnerEnd {
  explicit LearnerEnd(int port = 0, uint64_t incarnation = 0)
      : service(incarnation) {
    absl::StatusOr<std::unique_ptr<ParameterServer>> started =
        ParameterServer::Start("127.0.0.1", port, &service);
    EXPECT_TRUE(started.ok()) << started.status();
    if (started.ok()) {
      server = *std::move(started);
      bound_port = server->port();
    }
  }
  ~LearnerEnd() {
    service.Shutdown();
    if (server != nullptr) server->Shutdown(absl::Seconds(5));
  }
  std::string address() const { return absl::StrCat("127.0.0.1:", bound_port); }

  ParameterService service;
  int bound_port = 0;
  std::unique_ptr<ParameterServer> server;
};

// The parameters of a fresh sampling network.
NamedTensors FreshParameters() {
  SamplingNetwork network(kObs, kAct, kHidden);
  NamedTensors params;
  for (const auto& p : network->named_parameters()) {
    params.emplace_back(p.key(), p.value().detach().clone());
  }
  return params;
}

// Polls `done` every 10 ms for up to 10 s.
bool Eventually(const std::function<bool()>& done) {
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (!done()) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(10));
  }
  return true;
}

// The policy's actions for fixed observations and its deterministic latent.
torch::Tensor ActionsOf(ActingPolicy& policy) {
  return policy.Act(torch::linspace(-1, 1, 2 * kObs).view({2, kObs}));
}

ActingPolicy DeterministicPolicy() {
  return ActingPolicy(kObs, kAct, kHidden, /*seed=*/1,
                      {/*deterministic=*/true});
}

TEST(ParameterBroadcast, TheSubscriberTakesEachNewVersionAsItIsPublished) {
  LearnerEnd learner;
  ASSERT_NE(learner.server, nullptr);
  learner.service.Publish(FreshParameters(), 1, 0);
  ActingPolicy policy = DeterministicPolicy();
  ParameterSubscriber subscriber(learner.address(), &policy);
  ASSERT_TRUE(subscriber.WaitForParameters(absl::Seconds(10)));
  EXPECT_EQ(policy.version(), 1u);
  const torch::Tensor first = ActionsOf(policy);

  learner.service.Publish(FreshParameters(), 2, 40);
  ASSERT_TRUE(Eventually([&] { return policy.version() == 2; }));
  EXPECT_FALSE(torch::equal(ActionsOf(policy), first));
  EXPECT_EQ(subscriber.latest_learner_step(), 40u);
  EXPECT_EQ(subscriber.applied(), 2u);
  EXPECT_EQ(learner.service.subscribers(), 1);
}

TEST(ParameterBroadcast, NonFiniteParametersAreNeverSentAndTheHeldOnesKept) {
  LearnerEnd learner;
  learner.service.Publish(FreshParameters(), 1, 0);
  ActingPolicy policy = DeterministicPolicy();
  ParameterSubscriber subscriber(learner.address(), &policy);
  ASSERT_TRUE(subscriber.WaitForParameters(absl::Seconds(10)));
  const torch::Tensor held = ActionsOf(policy);

  NamedTensors diverged = FreshParameters();
  diverged[0].second[0][0] = std::nanf("");
  learner.service.Publish(diverged, 2, 10);
  EXPECT_EQ(learner.service.refused_publications(), 1u);
  EXPECT_EQ(learner.service.latest_version(), 1u);
  learner.service.Publish(FreshParameters(), 3, 20);
  ASSERT_TRUE(Eventually([&] { return policy.version() == 3; }));
  EXPECT_EQ(subscriber.rejected(), 0u);
  EXPECT_EQ(subscriber.applied(), 2u);
  EXPECT_FALSE(torch::equal(ActionsOf(policy), held));
}

// A learner that sends what ParameterService refuses (an older learner, or
// another implementation): a Subscribe stream of the given messages.
class RawParameterService final : public proto::ParameterService::Service {
 public:
  explicit RawParameterService(std::vector<proto::NetworkParameters> messages)
      : messages_(std::move(messages)) {}
  grpc::Status Subscribe(
      grpc::ServerContext* context, const proto::SubscribeRequest*,
      grpc::ServerWriter<proto::NetworkParameters>* writer) override {
    for (const proto::NetworkParameters& m : messages_) writer->Write(m);
    while (!context->IsCancelled()) absl::SleepFor(absl::Milliseconds(10));
    return grpc::Status::OK;
  }

 private:
  const std::vector<proto::NetworkParameters> messages_;
};

proto::NetworkParameters Message(const NamedTensors& params, uint64_t version) {
  proto::NetworkParameters m;
  m.set_version(version);
  m.set_incarnation(7);
  EncodeNamedTensors(params, m.mutable_tensors());
  return m;
}

TEST(ParameterBroadcast, NonFiniteParametersAreRejectedAndTheHeldOnesKept) {
  NamedTensors diverged = FreshParameters();
  diverged[0].second[0][0] = std::nanf("");
  RawParameterService service(
      {Message(FreshParameters(), 1), Message(diverged, 2)});
  int port = 0;
  std::unique_ptr<grpc::Server> server =
      grpc::ServerBuilder()
          .AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                            &port)
          .RegisterService(&service)
          .BuildAndStart();
  ASSERT_NE(server, nullptr);
  {
    ActingPolicy policy = DeterministicPolicy();
    ParameterSubscriber subscriber(absl::StrCat("127.0.0.1:", port), &policy);
    ASSERT_TRUE(subscriber.WaitForParameters(absl::Seconds(10)));
    ASSERT_TRUE(Eventually([&] { return subscriber.rejected() == 1; }));
    EXPECT_EQ(policy.version(), 1u);
    EXPECT_TRUE(
        subscriber.network_mismatch().ok());  // the next version may be fine
  }
  server->Shutdown(std::chrono::system_clock::now());
}

TEST(ParameterBroadcast, AnotherNetworksParametersAreReportedAsAMismatch) {
  LearnerEnd learner;
  SamplingNetwork wider(
      kObs, kAct, std::vector<int64_t>{16});  // a learner with other --hidden
  NamedTensors params;
  for (const auto& p : wider->named_parameters())
    params.emplace_back(p.key(), p.value().detach());
  learner.service.Publish(params, 1, 0);
  ActingPolicy policy = DeterministicPolicy();
  ParameterSubscriber subscriber(learner.address(), &policy);
  ASSERT_TRUE(Eventually([&] { return !subscriber.network_mismatch().ok(); }));
  EXPECT_EQ(subscriber.network_mismatch().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_NE(subscriber.network_mismatch().message().find("shape"),
            std::string::npos)
      << subscriber.network_mismatch();
  EXPECT_EQ(policy.version(), 0u);
}

TEST(ParameterBroadcast,
     ARestartedLearnersVersionsAreTakenThoughTheyStartOver) {
  auto learner = std::make_unique<LearnerEnd>();
  for (uint64_t v = 1; v <= 5; ++v)
    learner->service.Publish(FreshParameters(), v, 20 * v);
  ActingPolicy policy = DeterministicPolicy();
  ParameterSubscriber subscriber(learner->address(), &policy);
  ASSERT_TRUE(Eventually([&] { return policy.version() == 5; }));
  const torch::Tensor before = ActionsOf(policy);

  // The learner dies and a fresh one (no checkpoint) comes back on the same
  // port.
  const int port = learner->bound_port;
  const uint64_t old_incarnation = learner->service.incarnation();
  learner.reset();
  learner = std::make_unique<LearnerEnd>(port);
  ASSERT_EQ(learner->bound_port, port);
  ASSERT_NE(learner->service.incarnation(), old_incarnation);
  learner->service.Publish(FreshParameters(), 1, 0);
  ASSERT_TRUE(Eventually([&] { return policy.version() == 1; }))
      << "still acting with version " << policy.version()
      << " of the learner that died";
  EXPECT_FALSE(torch::equal(ActionsOf(policy), before));
  // And from then on its versions as they come.
  learner->service.Publish(FreshParameters(), 2, 20);
  EXPECT_TRUE(Eventually([&] { return policy.version() == 2; }));
}

TEST(ParameterBroadcast, TheSameLearnerResendsNothingOlderAfterAReconnect) {
  LearnerEnd learner(0, /*incarnation=*/7);
  learner.service.Publish(FreshParameters(), 3, 0);
  grpc::ClientContext context;
  context.set_deadline(
      absl::ToChronoTime(absl::Now() + absl::Milliseconds(500)));
  proto::SubscribeRequest request;
  request.set_min_version(3);
  request.set_incarnation(7);
  auto stub = proto::ParameterService::NewStub(grpc::CreateChannel(
      learner.address(), grpc::InsecureChannelCredentials()));
  auto reader = stub->Subscribe(&context, request);
  proto::NetworkParameters message;
  EXPECT_FALSE(
      reader->Read(&message));  // nothing newer than 3 until the deadline
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);

  grpc::ClientContext other;
  request.set_incarnation(
      8);  // versions of another learner: the latest is sent
  auto from_start = stub->Subscribe(&other, request);
  ASSERT_TRUE(from_start->Read(&message));
  EXPECT_EQ(message.version(), 3u);
  EXPECT_EQ(message.incarnation(), 7u);
  other.TryCancel();
  from_start->Finish().IgnoreError();
}

TEST(ParameterService, GetLatestIsNotFoundBeforeAPublicationThenTheNewest) {
  LearnerEnd learner;
  auto stub = proto::ParameterService::NewStub(grpc::CreateChannel(
      learner.address(), grpc::InsecureChannelCredentials()));
  proto::NetworkParameters latest;
  {
    grpc::ClientContext context;
    EXPECT_EQ(stub->GetLatest(&context, proto::GetLatestRequest(), &latest)
                  .error_code(),
              grpc::StatusCode::NOT_FOUND);
  }
  learner.service.Publish(FreshParameters(), 1, 0);
  learner.service.Publish(FreshParameters(), 2, 30);
  grpc::ClientContext context;
  ASSERT_TRUE(
      stub->GetLatest(&context, proto::GetLatestRequest(), &latest).ok());
  EXPECT_EQ(latest.version(), 2u);
  EXPECT_EQ(latest.learner_step(), 30u);
  EXPECT_EQ(latest.incarnation(), learner.service.incarnation());
  EXPECT_EQ(latest.tensors_size(), static_cast<int>(FreshParameters().size()));
}

TEST(ParameterService, ShutdownEndsOpenStreamsAndRefusesNewOnes) {
  LearnerEnd learner;
  learner.service.Publish(FreshParameters(), 1, 0);
  auto stub = proto::ParameterService::NewStub(grpc::CreateChannel(
      learner.address(), grpc::InsecureChannelCredentials()));
  grpc::ClientContext open;
  auto reader = stub->Subscribe(&open, proto::SubscribeRequest());
  proto::NetworkParameters message;
  ASSERT_TRUE(reader->Read(&message));
  learner.service.Shutdown();
  EXPECT_FALSE(reader->Read(&message));
  EXPECT_TRUE(reader->Finish().ok());
  grpc::ClientContext later;
  auto refused = stub->Subscribe(&later, proto::SubscribeRequest());
  EXPECT_FALSE(refused->Read(&message));
  EXPECT_EQ(refused->Finish().error_code(), grpc::StatusCode::UNAVAILABLE);
}

}  // namespace
}  // namespace softq
